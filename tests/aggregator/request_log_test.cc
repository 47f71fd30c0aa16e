// SPDX-License-Identifier: MIT
#include "reqmon/aggregator/request_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "test_util.h"

namespace reqmon {
namespace {

using testing::kOffset;
using testing::Mono;
using testing::Tx;

std::string TempDir() {
  char dir[] = "/tmp/reqmon_log_XXXXXX";
  return mkdtemp(dir);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(RequestLogTest, ResponseTimeFormat) {
  EXPECT_EQ(RequestLog::FormatResponseTime(120), "120");
  EXPECT_EQ(RequestLog::FormatResponseTime(0.532), "0.532");
  EXPECT_EQ(RequestLog::FormatResponseTime(1.5), "1.5");
  EXPECT_EQ(RequestLog::FormatResponseTime(1.50049), "1.5");
  EXPECT_EQ(RequestLog::FormatResponseTime(0), "0");
  EXPECT_EQ(RequestLog::FormatResponseTime(10.0004), "10");
  EXPECT_EQ(RequestLog::FormatResponseTime(2.0005), "2.001");  // %.3f rounding of 2.0005...
}

// Request lines format durations in integers; the text must equal the "%.3f" formatting.
TEST(RequestLogTest, IntegerDurationFormatEqualsFloatingPoint) {
  std::mt19937_64 rng(20261123);
  std::vector<uint64_t> cases = {0, 1, 499, 500, 501, 999, 1000, 1499, 1500, 1501, 999999, 1000000,
                                 1000500, 2000500, 123456789, 5000000000, 86400000000000};
  for (int i = 0; i < 200000; ++i) cases.push_back(rng() % (i % 2 ? 100000000 : 10000000000000));
  for (uint64_t ns : cases)
    ASSERT_EQ(RequestLog::FormatDurationNs(ns),
              RequestLog::FormatResponseTime(static_cast<double>(ns) / 1e6))
        << ns << " ns";
}

TEST(RequestLogTest, LinesAreByteExact) {
  setenv("TZ", "UTC", 1);
  tzset();
  const std::string dir = TempDir();
  RequestLogOptions o;
  o.path = dir + "/monitor_logs.txt";
  o.wall_offset_ns = kOffset;
  {
    RequestLog log(o);
    SystemSample s;
    s.valid = true;
    s.mono_ns = Mono(0);
    s.cpu_percent = 25.5;
    s.memory_percent = 50.2;
    log.OnSystemSample(s);
    log.OnTransaction(Tx(60, 120, 200, "/metrics"));
    auto q = Tx(61.5, 0.532, 404, "/users/1");
    q.query = "a=1&b=2";
    log.OnTransaction(q);
    log.OnTransaction(testing::Incomplete(62));
    s.mono_ns = Mono(30);  // within 60 s of the last CPU line: skipped
    log.OnSystemSample(s);
    s.mono_ns = Mono(60);
    s.cpu_percent = 3.04;
    s.memory_percent = 99.96;
    log.OnSystemSample(s);
    log.Flush();
    const std::string want =
        "2024-11-22 10:00:00 - CPU Usage: 25.5%, Memory Usage: 50.2%\n"
        "2024-11-22 10:01:00 - Request: Method=GET, URL=/metrics, Status=200, Response Time=120ms\n"
        "2024-11-22 10:01:01 - Request: Method=GET, URL=/users/1?a=1&b=2, Status=404, Response "
        "Time=0.532ms\n"
        "2024-11-22 10:01:02 - Request: Method=GET, URL=/slow, Status=incomplete, Response "
        "Time=0ms\n"
        "2024-11-22 10:01:00 - CPU Usage: 3.0%, Memory Usage: 100.0%\n";
    EXPECT_EQ(ReadAll(o.path), want);
    log.OnTransaction(Tx(63, 1, 200, "/after"));
  }
  // Destruction flushes.
  EXPECT_NE(ReadAll(o.path).find("URL=/after,"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// A line is written into room sized from its fields: the longest fields and the widest numbers
// fit, and give the same text as putting the pieces together one by one.
TEST(RequestLogTest, WidestFieldsFitTheirLine) {
  HttpTransaction tx;
  tx.method = std::string(300, 'M');
  tx.path = "/" + std::string(8190, 'p');
  tx.query = std::string(8191, 'q');
  tx.request_start_ns = 0;
  tx.response_end_ns = UINT64_MAX;  // the floating-point path of the duration
  tx.queue_ns = UINT64_MAX;
  for (int status : {INT32_MIN, -1, 0, 200, 999, INT32_MAX}) {
    tx.status = status;
    const std::string want = "Request: Method=" + tx.method + ", URL=" + tx.path + "?" + tx.query +
                             ", Status=" + std::to_string(status) + ", Response Time=" +
                             RequestLog::FormatDurationNs(tx.response_ns()) +
                             "ms, Queue Time=" + RequestLog::FormatDurationNs(tx.queue_ns) + "ms";
    EXPECT_EQ(RequestLog::FormatRequest(tx), want) << status;
  }
  EXPECT_EQ(RequestLog::FormatDurationNs(UINT64_MAX),
            RequestLog::FormatResponseTime(static_cast<double>(UINT64_MAX) / 1e6));
}

TEST(RequestLogTest, SamplingOneInN) {
  const std::string dir = TempDir();
  RequestLogOptions o;
  o.path = dir + "/log.txt";
  o.sample_every = 3;
  o.system_interval_s = 0;
  RequestLog log(o);
  for (int i = 0; i < 9; ++i) log.OnTransaction(Tx(i, 1, 200, "/p" + std::to_string(i)));
  SystemSample s;
  log.OnSystemSample(s);
  log.Close();
  const std::string all = ReadAll(o.path);
  EXPECT_NE(all.find("URL=/p0,"), std::string::npos);
  EXPECT_NE(all.find("URL=/p3,"), std::string::npos);
  EXPECT_NE(all.find("URL=/p6,"), std::string::npos);
  EXPECT_EQ(all.find("URL=/p1,"), std::string::npos);
  EXPECT_EQ(all.find("CPU"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// Within a batch the log takes its lock once; a line logged from another thread meanwhile (an
// alert) waits for the batch's end and comes after all of its lines, even those already handed
// to the writer inside the batch.
TEST(RequestLogTest, BatchLinesStayTogether) {
  const std::string dir = TempDir();
  RequestLogOptions o;
  o.path = dir + "/log.txt";
  o.system_interval_s = 0;
  o.batch_bytes = 300;  // a few lines: batches are submitted inside the drained batch too
  RequestLog log(o);
  log.BeginBatch();
  for (int i = 0; i < 20; ++i) log.OnTransaction(Tx(i, 1, 200, "/b" + std::to_string(i)));
  std::thread other([&] { log.LogLine(0, "ALERT line"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (int i = 20; i < 40; ++i) log.OnTransaction(Tx(i, 1, 200, "/b" + std::to_string(i)));
  log.EndBatch();
  other.join();
  log.OnTransaction(Tx(50, 1, 200, "/after"));
  log.Close();
  const std::string all = ReadAll(o.path);
  size_t last = 0;
  for (int i = 0; i < 40; ++i) {
    const size_t at = all.find("URL=/b" + std::to_string(i) + ",");
    ASSERT_NE(at, std::string::npos) << i;
    EXPECT_GT(at, last) << i;
    last = at;
  }
  const size_t alert = all.find("ALERT line");
  ASSERT_NE(alert, std::string::npos);
  EXPECT_GT(alert, last);
  EXPECT_GT(all.find("URL=/after,"), alert);
  std::filesystem::remove_all(dir);
}

// The log rotates at max_file_bytes into monitor_logs.1.txt (the newest) ... max_files: no file
// grows past the limit, none beyond max_files is kept, and the kept files hold the newest lines
// in order, without a gap.
TEST(RequestLogTest, RotatesAtItsSizeAndKeepsTheNewestFiles) {
  const std::string dir = TempDir();
  RequestLogOptions o;
  o.path = dir + "/monitor_logs.txt";
  o.wall_offset_ns = kOffset;
  o.system_interval_s = 0;
  o.max_file_bytes = 4096;
  o.max_files = 2;
  const int n = 1000;  // ~90 bytes a line: ~22 files' worth
  {
    RequestLog log(o);
    for (int i = 0; i < n; ++i) log.OnTransaction(Tx(60 + i * 0.001, 1, 200, "/r" + std::to_string(i)));
  }
  namespace fs = std::filesystem;
  ASSERT_TRUE(fs::exists(dir + "/monitor_logs.1.txt"));
  ASSERT_TRUE(fs::exists(dir + "/monitor_logs.2.txt"));
  EXPECT_FALSE(fs::exists(dir + "/monitor_logs.3.txt"));
  std::vector<int> seen;
  for (const std::string name : {"monitor_logs.2.txt", "monitor_logs.1.txt", "monitor_logs.txt"}) {
    EXPECT_LE(fs::file_size(dir + "/" + name), o.max_file_bytes) << name;
    std::istringstream in(ReadAll(dir + "/" + name));
    for (std::string line; std::getline(in, line);) {
      const size_t at = line.find("URL=/r");
      ASSERT_NE(at, std::string::npos) << line;
      seen.push_back(std::stoi(line.substr(at + 6)));
    }
  }
  ASSERT_GT(seen.size(), 60u);
  EXPECT_EQ(seen.back(), n - 1);
  for (size_t i = 1; i < seen.size(); ++i) ASSERT_EQ(seen[i], seen[i - 1] + 1) << "a gap at " << i;
  std::filesystem::remove_all(dir);
}

TEST(RequestLogTest, OffLogsNothing) {
  const std::string dir = TempDir();
  RequestLogOptions o;
  o.path = dir + "/log.txt";
  o.sample_every = 0;
  RequestLog log(o);
  log.OnTransaction(Tx(1, 1));
  log.Close();
  EXPECT_EQ(ReadAll(o.path), "");
  std::filesystem::remove_all(dir);
}

TEST(RequestLogTest, UnwritablePathThrows) {
  // A regular file where a directory should be: spdlog cannot create the path.
  const std::string dir = TempDir();
  std::ofstream(dir + "/file") << "x";
  RequestLogOptions o;
  o.path = dir + "/file/log.txt";
  EXPECT_THROW(RequestLog log(o), std::runtime_error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace reqmon
