// SPDX-License-Identifier: MIT
#pragma once
// Private state types of Aggregator, shared by aggregator.cc and render.cc.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "reqmon/aggregator/aggregator.h"

namespace reqmon {

inline constexpr size_t kRateSlots = 64;

struct Aggregator::RateRing {
  std::array<int64_t, kRateSlots> sec;
  std::array<uint32_t, kRateSlots> n{};
  RateRing() { sec.fill(-1); }
  void Add(int64_t s, int64_t cur) {
    if (s + static_cast<int64_t>(kRateSlots) - 1 < cur) return;
    const size_t i = static_cast<size_t>(s) % kRateSlots;
    if (sec[i] != s) {
      sec[i] = s;
      n[i] = 0;
    }
    ++n[i];
  }
  double Rate(int64_t cur, int window) const {
    uint64_t sum = 0;
    for (int k = 1; k <= window; ++k) {
      const int64_t s = cur - k;
      if (s < 0) break;
      const size_t i = static_cast<size_t>(s) % kRateSlots;
      if (sec[i] == s) sum += n[i];
    }
    return static_cast<double>(sum) / window;
  }
};

struct Aggregator::Stats {
  uint64_t count = 0, incomplete = 0, sum_ns = 0, req_bytes = 0, resp_bytes = 0;
  std::array<uint64_t, 5> classes{};
  LogHistogram hist;
  RateRing rate;
  uint64_t queue_count = 0, queue_sum_ns = 0;
  std::unique_ptr<LogHistogram> queue_hist;  ///< allocated with the first measured queue time

  void Add(const HttpTransaction& tx, uint64_t dur_ns, int cls, int64_t sec, int64_t cur) {
    req_bytes += tx.request_bytes;
    resp_bytes += tx.response_bytes;
    if (tx.incomplete) {
      ++incomplete;
      return;
    }
    ++count;
    sum_ns += dur_ns;
    hist.Record(dur_ns);
    if (tx.queue_ns > 0) {
      ++queue_count;
      queue_sum_ns += tx.queue_ns;
      if (!queue_hist) queue_hist = std::make_unique<LogHistogram>();
      queue_hist->Record(tx.queue_ns);
    }
    if (cls >= 0) ++classes[cls];
    rate.Add(sec, cur);
  }

  /// Adds o's counts and distributions (not its rates: o is an exited process's, folded in).
  void Merge(const Stats& o) {
    count += o.count;
    incomplete += o.incomplete;
    sum_ns += o.sum_ns;
    req_bytes += o.req_bytes;
    resp_bytes += o.resp_bytes;
    for (size_t c = 0; c < classes.size(); ++c) classes[c] += o.classes[c];
    hist.Merge(o.hist);
    queue_count += o.queue_count;
    queue_sum_ns += o.queue_sum_ns;
    if (o.queue_hist) {
      if (!queue_hist) queue_hist = std::make_unique<LogHistogram>();
      queue_hist->Merge(*o.queue_hist);
    }
  }
};

struct Aggregator::Route {
  std::string method, route;
  Stats st;
  std::array<uint64_t, kPromBucketsSeconds.size() + 1> prom{};
  std::vector<std::array<uint64_t, 5>> by_target;  ///< identification on: [0] other, [i+1]
};

struct Aggregator::Process {
  uint32_t pid = 0;
  std::string comm;
  Stats st;
  bool sampled = false, alive = false;
  double cpu = 0;
  uint64_t rss = 0;
  bool identified = false;
  int target = -1;
  ContainerIdentity container;
  uint64_t folded = 0;  ///< an exited group (Aggregator::FoldExitedLocked): processes folded in
};

struct Aggregator::Slot {
  int64_t sec = -1;
  uint32_t requests = 0, incomplete = 0;
  std::array<uint32_t, 5> classes{};
  bool has_p = false;
  float p50 = 0, p95 = 0, p99 = 0;
};

struct Aggregator::GrpcMethod {
  std::string service, method;
  uint64_t count = 0, incomplete = 0, sum_ns = 0;
  std::map<int, uint64_t> by_status;  ///< grpc-status -> complete calls (-1: none)
};

struct Aggregator::SysSlot {
  int64_t sec = -1;
  float cpu = 0, mem = 0;
  double rx = 0, tx = 0;
};

}  // namespace reqmon
