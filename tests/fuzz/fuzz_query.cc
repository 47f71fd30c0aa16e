// SPDX-License-Identifier: MIT
// Query parameters: the API's (/requests?limit=, src/api/query.cc) and those of captured request
// targets (the path/query split and the redaction of secret values, src/parser/).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "reqmon/api/query.h"
#include "reqmon/parser/common.h"
#include "reqmon/parser/query_redaction.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace reqmon;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // limit: 1..cap for a positive number, nothing else.
  for (size_t cap : {size_t{0}, size_t{1}, size_t{500}}) {
    const std::optional<size_t> n = ParseLimit(text, cap);
    if (n && (*n > cap || (cap > 0 && *n == 0))) std::abort();
    if (n && (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos))
      std::abort();
  }

  // A captured target: path and query, then the query redacted three ways.
  std::string path, query;
  SplitTarget(text, &path, &query);
  // Control characters become %XX: at most three bytes for one.
  if (path.size() + query.size() > 3 * text.size()) std::abort();
  if (RedactQuery(query, QueryMode::kShow) != query) std::abort();
  const std::string redacted = RedactQuery(query, QueryMode::kRedactSecrets);
  if (RedactQuery(redacted, QueryMode::kRedactSecrets) != redacted) std::abort();
  const std::string names = RedactQuery(query, QueryMode::kDropValues);
  if (names.size() > query.size()) std::abort();
  SecretParameterName(text);
  return 0;
}
