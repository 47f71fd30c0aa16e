// SPDX-License-Identifier: MIT
#include "reqmon/parser/common.h"

#include <algorithm>

namespace reqmon {

void ReportUnparsed(HttpCounters* counters, TransactionSink* sink, uint32_t pid, uint64_t bytes,
                    bool resync) {
  if (bytes == 0) return;
  counters->unparsed_bytes += bytes;
  UnparsedBytes u;
  u.pid = pid;
  u.bytes = bytes;
  u.resync = resync;
  sink->OnUnparsed(u);
}

namespace {

// `s` into `*out`, control characters percent-encoded: llhttp takes a tab or form feed in a
// request target, and a target must reach /requests and monitor_logs.txt as one visible line.
void AssignVisible(std::string_view s, std::string* out) {
  const auto control = [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  };
  if (std::none_of(s.begin(), s.end(), control)) {
    out->assign(s.data(), s.size());
    return;
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  out->clear();
  for (const char c : s) {
    if (control(c)) {
      const auto u = static_cast<unsigned char>(c);
      out->push_back('%');
      out->push_back(kHex[u >> 4]);
      out->push_back(kHex[u & 15]);
    } else {
      out->push_back(c);
    }
  }
}

}  // namespace

void SplitTarget(std::string_view target, std::string* path, std::string* query) {
  size_t hash = target.find('#');
  if (hash != std::string_view::npos) target = target.substr(0, hash);
  size_t q = target.find('?');
  if (q == std::string_view::npos) {
    AssignVisible(target, path);
    query->clear();
  } else {
    AssignVisible(target.substr(0, q), path);
    AssignVisible(target.substr(q + 1), query);
  }
}

}  // namespace reqmon
