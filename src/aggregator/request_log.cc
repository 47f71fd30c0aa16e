// SPDX-License-Identifier: MIT
#include "reqmon/aggregator/request_log.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
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
  logger_->set_pattern("%Y-%m-%d %H:%M:%S - %v");
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
  const uint64_t target = sink_->flushes() + 1;
  logger_->flush();
  sink_->WaitFlushes(target, std::chrono::seconds(5));
}

std::string RequestLog::FormatResponseTime(double ms) {
  if (!std::isfinite(ms) || ms < 0) ms = 0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", ms);
  std::string s(buf);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::string RequestLog::FormatRequest(const HttpTransaction& tx) {
  std::string s = "Request: Method=";
  s += tx.method;
  s += ", URL=";
  s += tx.path;
  if (!tx.query.empty()) {
    s += '?';
    s += tx.query;
  }
  s += ", Status=";
  s += tx.incomplete ? std::string("incomplete") : std::to_string(tx.status);
  s += ", Response Time=";
  s += FormatResponseTime(tx.response_ms());
  s += "ms";
  return s;
}

std::string RequestLog::FormatSystem(double cpu, double mem) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "CPU Usage: %.1f%%, Memory Usage: %.1f%%", cpu, mem);
  return buf;
}

static spdlog::log_clock::time_point WallTime(uint64_t mono_ns, int64_t offset) {
  const int64_t wall = static_cast<int64_t>(mono_ns) + offset;
  return spdlog::log_clock::time_point(std::chrono::duration_cast<spdlog::log_clock::duration>(
      std::chrono::nanoseconds(wall)));
}

void RequestLog::OnTransaction(const HttpTransaction& tx) {
  if (!logger_ || opts_.sample_every == 0) return;
  if (seen_++ % opts_.sample_every != 0) return;
  const std::string line = FormatRequest(tx);
  logger_->log(WallTime(tx.request_start_ns, opts_.wall_offset_ns), spdlog::source_loc{},
               spdlog::level::info, line);
}

void RequestLog::OnSystemSample(const SystemSample& s) {
  if (!logger_ || opts_.system_interval_s <= 0) return;
  if (logged_system_ &&
      s.mono_ns < last_system_ns_ + static_cast<uint64_t>(opts_.system_interval_s) * 1000000000ull) {
    return;
  }
  logged_system_ = true;
  last_system_ns_ = s.mono_ns;
  logger_->log(WallTime(s.mono_ns, opts_.wall_offset_ns), spdlog::source_loc{},
               spdlog::level::info, FormatSystem(s.cpu_percent, s.memory_percent));
}

}  // namespace reqmon
