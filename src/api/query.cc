// SPDX-License-Identifier: MIT
#include "reqmon/api/query.h"

#include <algorithm>

namespace reqmon {

std::optional<size_t> ParseLimit(std::string_view text, size_t cap) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  size_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  if (n == 0) return std::nullopt;
  return std::min(n, cap);
}

}  // namespace reqmon
