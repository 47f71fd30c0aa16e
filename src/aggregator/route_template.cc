// SPDX-License-Identifier: MIT
#include "reqmon/aggregator/route_template.h"

namespace reqmon {
namespace {

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < 36; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!IsHex(s[i])) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool IsIdSegment(std::string_view seg) {
  if (seg.empty()) return false;
  bool digits = true, hex = true;
  for (char c : seg) {
    if (c < '0' || c > '9') digits = false;
    if (!IsHex(c)) hex = false;
  }
  if (digits) return true;
  if (hex && seg.size() >= 16) return true;
  return IsUuid(seg);
}

std::string TemplatePath(std::string_view path) {
  if (path.empty()) return "/";
  std::string out;
  out.reserve(path.size());
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view seg = path.substr(i, j - i);
    if (IsIdSegment(seg)) {
      out += "{id}";
    } else {
      out += seg;
    }
    if (j < path.size()) out += '/';
    i = j + 1;
  }
  return out;
}

}  // namespace reqmon
