// SPDX-License-Identifier: MIT
#pragma once
// Helpers shared by the aggregator tests.

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "reqmon/aggregator/aggregator.h"
#include "reqmon/parser/transaction.h"

namespace reqmon::testing {

/// 2024-11-22 10:00:00 UTC.
inline constexpr int64_t kWallBase = 1732269600;
/// Monotonic time of kWallBase.
inline constexpr uint64_t kMonoBase = 1000ull * 1000000000ull;
inline constexpr int64_t kOffset = (kWallBase - 1000) * 1000000000ll;

inline uint64_t Mono(double secs_after_base) {
  return kMonoBase + static_cast<uint64_t>(secs_after_base * 1e9);
}

inline HttpTransaction Tx(double start_s, double ms, int status = 200,
                          const std::string& path = "/users/42", const std::string& method = "GET",
                          uint32_t pid = 100) {
  HttpTransaction tx;
  tx.pid = pid;
  tx.fd = 5;
  tx.request_start_ns = Mono(start_s);
  tx.response_end_ns = tx.request_start_ns + static_cast<uint64_t>(ms * 1e6);
  tx.method = method;
  tx.path = path;
  tx.status = status;
  tx.request_bytes = 100;
  tx.response_bytes = 1000;
  tx.ep.family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", tx.ep.laddr);
  inet_pton(AF_INET, "10.0.0.7", tx.ep.raddr);
  tx.ep.lport = 8080;
  tx.ep.rport = 51234;
  return tx;
}

inline HttpTransaction Incomplete(double start_s, const std::string& path = "/slow") {
  HttpTransaction tx = Tx(start_s, 0, 0, path);
  tx.incomplete = true;
  tx.response_end_ns = 0;
  tx.status = 0;
  return tx;
}

/// Aggregator options with the test clock's wall offset.
inline AggregatorOptions Opts() {
  AggregatorOptions o;
  o.wall_offset_ns = kOffset;
  return o;
}

}  // namespace reqmon::testing
