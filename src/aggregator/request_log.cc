// SPDX-License-Identifier: MIT
#include "reqmon/aggregator/request_log.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <ctime>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/spdlog.h>

namespace reqmon {

/// Wraps the rotating file sink and counts completed flushes so Flush() can wait for the async
/// worker (spdlog 1.10's async flush does not wait).
class RequestLog::NotifyingSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  NotifyingSink(const std::string& path, size_t max_bytes, size_t max_files)
      : file_(std::make_shared<spdlog::sinks::rotating_file_sink_st>(path, max_bytes,
                                                                      max_files)) {}
  uint64_t flushes() {
    std::lock_guard<std::mutex> l(fmu_);
    return flushes_;
  }
  bool WaitFlushes(uint64_t target, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> l(fmu_);
    return cv_.wait_for(l, timeout, [&] { return flushes_ >= target; });
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override { file_->log(msg); }
  void flush_() override {
    file_->flush();
    std::lock_guard<std::mutex> l(fmu_);
    ++flushes_;
    cv_.notify_all();
  }
  void set_pattern_(const std::string& pattern) override { file_->set_pattern(pattern); }
  void set_formatter_(std::unique_ptr<spdlog::formatter> f) override {
    file_->set_formatter(std::move(f));
  }

 private:
  std::shared_ptr<spdlog::sinks::rotating_file_sink_st> file_;
  std::mutex fmu_;
  std::condition_variable cv_;
  uint64_t flushes_ = 0;
};

namespace {
std::atomic<int> g_instance{0};
}

RequestLog::RequestLog(RequestLogOptions opts) : opts_(std::move(opts)) {
  // A batch is written whole into one file, which rotates before a batch that would take it past
  // max_file_bytes: batches of at most a quarter of it keep each file within its size and at
  // least three quarters full.
  opts_.batch_bytes = std::max<size_t>(1, std::min(opts_.batch_bytes, opts_.max_file_bytes / 4));
  name_ = "reqmon_request_log_" + std::to_string(g_instance.fetch_add(1));
  try {
    sink_ = std::make_shared<NotifyingSink>(opts_.path, opts_.max_file_bytes,
                                            opts_.max_files);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot open request log " + opts_.path + ": " + e.what());
  }
  pool_ = std::make_shared<spdlog::details::thread_pool>(opts_.queue_size, 1);
  logger_ = std::make_shared<spdlog::async_logger>(
      name_, sink_, pool_,
      opts_.drop_when_full ? spdlog::async_overflow_policy::overrun_oldest
                           : spdlog::async_overflow_policy::block);
  // Lines carry their own timestamps (the event's time, not the logging time), formatted here.
  logger_->set_pattern("%v");
  logger_->set_level(spdlog::level::info);
  logger_->flush_on(spdlog::level::off);
  spdlog::register_logger(logger_);
  spdlog::flush_every(std::chrono::seconds(1));
}

RequestLog::~RequestLog() { Close(); }

void RequestLog::Close() {
  if (!logger_) return;
  Flush();
  spdlog::drop(name_);
  logger_.reset();
  pool_.reset();  // joins the worker after it drains the queue
  sink_.reset();
}

void RequestLog::Flush() {
  if (!logger_) return;
  {
    std::lock_guard<std::mutex> l(batch_mu_);
    SubmitBatchLocked();
  }
  const uint64_t target = sink_->flushes() + 1;
  logger_->flush();
  sink_->WaitFlushes(target, std::chrono::seconds(5));
}

namespace {

// Writes ms with up to 3 decimals, trailing zeros and dot stripped (printf's %.3f rounding), at
// p (room for 64 characters); returns the end.
char* PutResponseTime(double ms, char* p) {
  if (!std::isfinite(ms) || ms < 0) ms = 0;
  char* end = std::to_chars(p, p + 64, ms, std::chars_format::fixed, 3).ptr;
  while (end > p && end[-1] == '0') --end;
  if (end > p && end[-1] == '.') --end;
  return end;
}

// The same text as PutResponseTime(ns / 1e6) ("%.3f" with trailing zeros dropped), in integer
// arithmetic: a fifth of the cost. Ties (exactly 500 ns past a microsecond) and durations too
// long to be exact in a double take the floating-point path, so the rounding stays the same.
char* PutDurationNs(uint64_t ns, char* p) {
  const uint64_t rem = ns % 1000;
  if (rem == 500 || ns >= (uint64_t{1} << 50)) return PutResponseTime(static_cast<double>(ns) / 1e6, p);
  const uint64_t us = ns / 1000 + (rem > 500);
  char* end = std::to_chars(p, p + 32, us / 1000).ptr;
  unsigned frac = static_cast<unsigned>(us % 1000);
  if (frac != 0) {
    *end++ = '.';
    *end++ = static_cast<char>('0' + frac / 100);
    *end++ = static_cast<char>('0' + frac / 10 % 10);
    *end++ = static_cast<char>('0' + frac % 10);
    while (end[-1] == '0') --end;
  }
  return end;
}

char* Put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

// The "Request: ..." text of tx (without time or newline) is at most RequestBound(tx) characters:
// 76 of fixed text and status, two durations of at most 64 (the room their writers are given).
size_t RequestBound(const HttpTransaction& tx) {
  return 76 + 2 * 64 + tx.method.size() + tx.path.size() + tx.query.size();
}

char* PutRequest(const HttpTransaction& tx, char* p) {
  p = Put(p, "Request: Method=");
  p = Put(p, tx.method);
  p = Put(p, ", URL=");
  p = Put(p, tx.path);
  if (!tx.query.empty()) {
    *p++ = '?';
    p = Put(p, tx.query);
  }
  p = Put(p, ", Status=");
  if (tx.incomplete) {
    p = Put(p, "incomplete");
  } else {
    p = std::to_chars(p, p + 16, tx.status).ptr;
  }
  p = Put(p, ", Response Time=");
  p = PutDurationNs(tx.response_ns(), p);
  p = Put(p, "ms");
  // How long it waited before the server read it (issue #14), when measured.
  if (tx.queue_ns > 0 && !tx.incomplete) {
    p = Put(p, ", Queue Time=");
    p = PutDurationNs(tx.queue_ns, p);
    p = Put(p, "ms");
  }
  return p;
}

// Appends what put() writes (at most `bound` characters) to *out, with one size change each way.
template <typename PutFn>
void AppendPut(std::string* out, size_t bound, PutFn put) {
  const size_t at = out->size();
  out->resize(at + bound);
  char* end = put(out->data() + at);
  out->resize(static_cast<size_t>(end - out->data()));
}

}  // namespace

std::string RequestLog::FormatResponseTime(double ms) {
  std::string s;
  AppendPut(&s, 64, [&](char* p) { return PutResponseTime(ms, p); });
  return s;
}

std::string RequestLog::FormatDurationNs(uint64_t ns) {
  std::string s;
  AppendPut(&s, 64, [&](char* p) { return PutDurationNs(ns, p); });
  return s;
}

std::string RequestLog::FormatRequest(const HttpTransaction& tx) {
  std::string s;
  AppendPut(&s, RequestBound(tx), [&](char* p) { return PutRequest(tx, p); });
  return s;
}

std::string RequestLog::FormatSystem(double cpu, double mem) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "CPU Usage: %.1f%%, Memory Usage: %.1f%%", cpu, mem);
  return buf;
}

// "2024-11-22 10:01:00 - " in local time; localtime_r only when the second changes.
void RequestLog::AppendTime(int64_t wall_ns, std::string* out) {
  int64_t sec = wall_ns >= 0 ? wall_ns / 1000000000 : (wall_ns - 999999999) / 1000000000;
  if (sec != cached_sec_) {
    time_t t = static_cast<time_t>(sec);
    struct tm tm;
    localtime_r(&t, &tm);
    cached_time_len_ = std::strftime(cached_time_, sizeof cached_time_, "%Y-%m-%d %H:%M:%S - ", &tm);
    cached_sec_ = sec;
  }
  out->append(cached_time_, cached_time_len_);
}

void RequestLog::SubmitBatchLocked() {
  if (batch_.empty()) return;
  batch_.pop_back();  // the logger ends the message with its own newline
  logger_->log(spdlog::level::info, spdlog::string_view_t(batch_.data(), batch_.size()));
  batch_.clear();
}

void RequestLog::OnTransaction(const HttpTransaction& tx) {
  if (!logger_ || opts_.sample_every == 0) return;
  if (seen_++ % opts_.sample_every != 0) return;
  auto l = batch_lock_.LockUnlessBatch();
  if (batch_.empty()) batch_started_ns_ = tx.request_start_ns;
  AppendTime(static_cast<int64_t>(tx.request_start_ns) + opts_.wall_offset_ns, &batch_);
  AppendPut(&batch_, RequestBound(tx) + 1, [&](char* p) {
    p = PutRequest(tx, p);
    *p++ = '\n';
    return p;
  });
  if (batch_.size() >= opts_.batch_bytes) SubmitBatchLocked();
}

void RequestLog::Pump(uint64_t now_mono_ns) {
  if (!logger_) return;
  std::lock_guard<std::mutex> l(batch_mu_);
  if (!batch_.empty() &&
      now_mono_ns >= batch_started_ns_ + static_cast<uint64_t>(opts_.batch_ms) * 1000000ull)
    SubmitBatchLocked();
}

void RequestLog::OnSystemSample(const SystemSample& s) {
  if (!logger_ || opts_.system_interval_s <= 0) return;
  if (logged_system_ &&
      s.mono_ns < last_system_ns_ + static_cast<uint64_t>(opts_.system_interval_s) * 1000000000ull) {
    return;
  }
  logged_system_ = true;
  last_system_ns_ = s.mono_ns;
  std::lock_guard<std::mutex> l(batch_mu_);
  SubmitBatchLocked();  // request lines logged before this one stay before it
  std::string line;
  AppendTime(static_cast<int64_t>(s.mono_ns) + opts_.wall_offset_ns, &line);
  line += FormatSystem(s.cpu_percent, s.memory_percent);
  logger_->log(spdlog::level::info, line);
}

void RequestLog::LogLine(int64_t wall_ns, const std::string& text) {
  if (!logger_) return;
  std::lock_guard<std::mutex> l(batch_mu_);
  SubmitBatchLocked();
  std::string line;
  AppendTime(wall_ns, &line);
  line += text;
  logger_->log(spdlog::level::info, line);
}

}  // namespace reqmon
