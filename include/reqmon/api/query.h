// SPDX-License-Identifier: MIT
#pragma once
/// The API's query parameters, parsed apart from the HTTP server so that they can be tested and
/// fuzzed without one (tests/api/query_test.cc, tests/fuzz/fuzz_query.cc).

#include <cstddef>
#include <optional>
#include <string_view>

namespace reqmon {

/// /requests?limit=N: how many of the latest transactions to answer. `text` is the parameter's
/// (already percent-decoded) value: a positive decimal integer of at most 9 digits, nothing
/// else. Returns min(N, cap), or nullopt when `text` is not such a number (the server answers
/// 400 "invalid limit").
std::optional<size_t> ParseLimit(std::string_view text, size_t cap);

}  // namespace reqmon
