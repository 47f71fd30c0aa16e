// SPDX-License-Identifier: MIT
#pragma once
/// monitor_logs.txt: the original's request and CPU/memory log lines, via an async spdlog logger
/// with a rotating file sink. Line formats (byte-exact with the original):
///   2024-11-22 10:00:00 - CPU Usage: 25.5%, Memory Usage: 50.2%
///   2024-11-22 10:01:00 - Request: Method=GET, URL=/metrics, Status=200, Response Time=120ms
/// The timestamp is the event's own local wall time (request start for requests, sample time for
/// CPU/memory lines), not the time the line was written.

#include <cstdint>
#include <climits>
#include <memory>
#include <mutex>
#include <string>

#include "reqmon/aggregator/batch_lock.h"
#include "reqmon/aggregator/system_sampler.h"
#include "reqmon/parser/transaction.h"

namespace spdlog {
class logger;
namespace details {
class thread_pool;
}
}  // namespace spdlog

namespace reqmon {

struct RequestLogOptions {
  std::string path = "monitor_logs.txt";
  int64_t wall_offset_ns = 0;      ///< realtime_ns - monotonic_ns, as given to the Aggregator
  uint32_t sample_every = 1;       ///< log 1 request in N; 0 = no request lines
  int system_interval_s = 60;      ///< seconds between CPU/memory lines; <= 0 = none
  size_t max_file_bytes = 10 * 1024 * 1024;  ///< rotate at this size
  size_t max_files = 3;            ///< rotated files kept (monitor_logs.1.txt ...)
  size_t queue_size = 8192;        ///< async queue entries
  bool drop_when_full = false;     ///< true: overrun oldest queued lines instead of blocking
  size_t batch_bytes = 256 * 1024;  ///< request lines are handed over in batches of this size
                                    ///< (at most max_file_bytes / 4)
  int batch_ms = 200;              ///< ... or when Pump() finds the batch this old
};

/// Thread safety: OnTransaction and Pump from the pipeline thread, OnSystemSample from the
/// sampling thread; Flush/Close from any thread. Request lines are formatted on the pipeline
/// thread into a batch that goes to the async logger as one message (one queue hand-off and one
/// wake-up of the writer thread per batch, not per line): when it reaches batch_bytes, when
/// Pump() finds it older than batch_ms, before a CPU/memory line, and on Flush(). Lines keep the
/// order of the calls. The file is flushed at least every second, on Flush() and on Close().
class RequestLog : public TransactionSink {
 public:
  /// Opens (creates or appends to) the file. Throws std::runtime_error when it cannot.
  explicit RequestLog(RequestLogOptions opts);
  ~RequestLog() override;
  RequestLog(const RequestLog&) = delete;
  RequestLog& operator=(const RequestLog&) = delete;

  /// Logs a "Request:" line for every sample_every-th transaction (incomplete: Status=incomplete).
  void OnTransaction(const HttpTransaction& tx) override;
  /// Holds the batch's lock from here to EndBatch(): one lock per drained batch, not per line.
  void BeginBatch() override { batch_lock_.Begin(); }
  void EndBatch() override { batch_lock_.End(); }
  /// Hands the pending batch to the writer if it is older than batch_ms. Call it from the
  /// pipeline thread's loop (every few ms); cheap when there is nothing to do.
  void Pump(uint64_t now_mono_ns);
  /// Logs a "CPU Usage:" line when system_interval_s has passed (in sample time) since the last
  /// one; the first sample always logs.
  void OnSystemSample(const SystemSample& s);
  /// Logs "<time of wall_ns> - <text>" (e.g. the alert lines), after the request lines logged
  /// before the call. Any thread.
  void LogLine(int64_t wall_ns, const std::string& text);
  /// Blocks until every line logged before the call is written and flushed (5 s at most).
  void Flush();
  /// Flushes and closes; later calls are no-ops.
  void Close();

  /// "120", "0.532", "1.5": milliseconds with up to 3 decimals, trailing zeros and dot stripped.
  static std::string FormatResponseTime(double ms);
  /// FormatResponseTime(ns / 1e6), computed in integers (what request lines use).
  static std::string FormatDurationNs(uint64_t ns);
  /// The part after "<timestamp> - ": "Request: Method=GET, URL=/a?b=1, Status=200, Response
  /// Time=120ms".
  static std::string FormatRequest(const HttpTransaction& tx);
  /// "CPU Usage: 25.5%, Memory Usage: 50.2%".
  static std::string FormatSystem(double cpu_percent, double memory_percent);

 private:
  class NotifyingSink;
  RequestLogOptions opts_;
  std::shared_ptr<spdlog::details::thread_pool> pool_;
  std::shared_ptr<NotifyingSink> sink_;
  std::shared_ptr<spdlog::logger> logger_;
  std::string name_;
  uint64_t seen_ = 0;
  bool logged_system_ = false;
  uint64_t last_system_ns_ = 0;

  // The batch of formatted request lines, and the cached "YYYY-MM-DD HH:MM:SS" of one second.
  void SubmitBatchLocked();
  void AppendTime(int64_t wall_ns, std::string* out);
  std::mutex batch_mu_;
  BatchLock batch_lock_{batch_mu_};  ///< batch_mu_ held from BeginBatch() to EndBatch()
  std::string batch_;
  uint64_t batch_started_ns_ = 0;
  int64_t cached_sec_ = INT64_MIN;
  char cached_time_[32] = {};
  size_t cached_time_len_ = 0;
};

/// Forwards every call to each sink in turn (e.g. the Aggregator and the RequestLog).
class FanoutSink : public TransactionSink {
 public:
  void Add(TransactionSink* s) { sinks_[n_++] = s; }
  void OnTransaction(const HttpTransaction& tx) override {
    for (size_t i = 0; i < n_; ++i) sinks_[i]->OnTransaction(tx);
  }
  void OnUnparsed(const UnparsedBytes& u) override {
    for (size_t i = 0; i < n_; ++i) sinks_[i]->OnUnparsed(u);
  }
  void BeginBatch() override {
    for (size_t i = 0; i < n_; ++i) sinks_[i]->BeginBatch();
  }
  void EndBatch() override {
    for (size_t i = n_; i-- > 0;) sinks_[i]->EndBatch();
  }

 private:
  TransactionSink* sinks_[8] = {};
  size_t n_ = 0;
};

}  // namespace reqmon
