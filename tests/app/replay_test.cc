// SPDX-License-Identifier: MIT
// Replay (label "replay"): captures recorded from real servers (scripts/record-test-captures.sh)
// go through the real binary's replay pipeline. Totals, status counts and per-route counts must
// be exactly what was driven, and latencies must match the capture's own timestamps, computed
// here independently of the parser.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <random>

#include "app_support.h"
#include "reqmon/abi.h"
#include "reqmon/capture/capture_file.h"

namespace reqmon {
namespace {

using nlohmann::json;
using testing::RunReqmon;
using testing::TestData;
namespace fs = std::filesystem;

// Latencies of sequential (non-pipelined) traffic from the records alone: on each connection a
// request is a run of ingress records followed by a run of egress records; its latency is the
// exit of the run's last egress record minus the exit of its first ingress record.
std::vector<double> LatenciesFromCapture(const std::string& path) {
  std::string err;
  auto rd = CaptureReader::Open(path, &err);
  EXPECT_TRUE(rd) << err;
  struct Conn {
    uint64_t first_in = 0, last_out = 0;
    bool in_request = false, answered = false;
  };
  std::map<std::pair<uint32_t, int32_t>, Conn> conns;
  std::vector<double> out;
  auto flush = [&](Conn& c) {
    if (c.answered) out.push_back((c.last_out - c.first_in) / 1e6);
    c = Conn{};
  };
  std::string_view rec;
  while (rd->Next(&rec)) {
    rq_event_header h;
    std::memcpy(&h, rec.data(), sizeof(h));
    auto key = std::make_pair(h.pid, h.fd);
    if (h.type == RQ_EV_OPEN || h.type == RQ_EV_CLOSE) {
      flush(conns[key]);
      continue;
    }
    if (h.type != RQ_EV_DATA) continue;
    rq_data_event ev;
    std::memcpy(&ev, rec.data(), sizeof(ev));
    Conn& c = conns[key];
    if (ev.direction == RQ_DIR_INGRESS) {
      if (c.answered) flush(c);
      if (!c.in_request) {
        c.in_request = true;
        c.first_in = ev.h.ts_exit;
      }
    } else if (c.in_request) {
      c.answered = true;
      c.last_out = ev.h.ts_exit;
    }
  }
  for (auto& [k, c] : conns) flush(c);
  return out;
}

class ReplayTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReplayTest, ExactCountsAndTimestampLatencies) {
  const std::string name = GetParam();
  std::ifstream ef(TestData(name + ".expected.json"));
  json expected = json::parse(ef);
  int status = -1;
  std::string err;
  std::string out = RunReqmon("--replay " + TestData(name + ".rqcap") + " --print-stats", &status, &err);
  ASSERT_EQ(status, 0) << err;
  EXPECT_EQ(err, "");
  json stats = json::parse(out);

  // The original's keys come first, in the original's order.
  auto ordered = nlohmann::ordered_json::parse(out);
  auto it = ordered.begin();
  EXPECT_EQ(it.key(), "total_requests");
  EXPECT_EQ((++it).key(), "average_response_time");
  EXPECT_EQ((++it).key(), "status_codes");

  EXPECT_EQ(stats["total_requests"], expected["total_requests"]);
  EXPECT_EQ(stats["status_codes"], expected["status_codes"]);
  EXPECT_EQ(stats["incomplete_requests"], 0);
  EXPECT_EQ(stats["unparsed"]["bytes"], 0);
  EXPECT_EQ(stats["lost_events"], 0);
  EXPECT_EQ(stats["capture"]["connections_opened"], expected["connections"]);
  EXPECT_EQ(stats["capture"]["malformed_records"], 0);
  std::map<std::string, int> routes;
  for (const auto& r : stats["routes"])
    routes[r["method"].get<std::string>() + " " + r["route"].get<std::string>()] = r["count"];
  std::map<std::string, int> want = expected["routes"];
  EXPECT_EQ(routes, want);

  // Latencies agree with the capture's own timestamps.
  auto lat = LatenciesFromCapture(TestData(name + ".rqcap"));
  ASSERT_EQ(lat.size(), expected["total_requests"].get<size_t>());
  double sum = 0, mn = 1e18, mx = 0;
  for (double v : lat) {
    sum += v;
    mn = std::min(mn, v);
    mx = std::max(mx, v);
  }
  EXPECT_NEAR(stats["average_response_time"].get<double>(), sum / lat.size(), 0.006);
  EXPECT_NEAR(stats["min_response_time"].get<double>(), mn, 0.0006);
  EXPECT_NEAR(stats["max_response_time"].get<double>(), mx, 0.0006);
  std::sort(lat.begin(), lat.end());
  double p50 = lat[(lat.size() - 1) / 2];
  EXPECT_NEAR(stats["percentiles"]["p50"].get<double>(), p50, p50 * 0.02 + 0.002);
}

// Reading a checked-in capture gives back exactly the records that were recorded: writing them
// out again reproduces the file byte for byte.
TEST_P(ReplayTest, RecordsComeBackByteForByte) {
  const std::string path = TestData(GetParam() + ".rqcap");
  std::string err;
  auto rd = CaptureReader::Open(path, &err);
  ASSERT_TRUE(rd) << err;
  auto tmp = testing::MakeTempDir("rt");
  auto w = CaptureWriter::Create((tmp / "copy.rqcap").string(),
                                 CaptureInfo{rd->info().version, rd->info().abi_version,
                                             rd->info().realtime_offset_ns,
                                             rd->info().payload_limit},
                                 &err);
  ASSERT_TRUE(w) << err;
  std::string_view rec;
  size_t n = 0;
  std::map<uint32_t, size_t> types;
  while (rd->Next(&rec)) {
    ASSERT_TRUE(w->Write(rec.data(), rec.size()));
    rq_event_header h;
    std::memcpy(&h, rec.data(), sizeof(h));
    ++types[h.type];
    ++n;
  }
  EXPECT_EQ(rd->error(), "");
  w.reset();
  EXPECT_EQ(testing::ReadFile(tmp / "copy.rqcap"), testing::ReadFile(path));
  EXPECT_GT(types[RQ_EV_DATA], 0u);
  EXPECT_GT(types[RQ_EV_OPEN], 0u);
  EXPECT_GT(types[RQ_EV_CLOSE], 0u);
  fs::remove_all(tmp);
}

// Captures recorded before queue time (record ABI 1 and 2) still replay: no queue time, and
// /analytics says in words why it gives no capacity (a short capture at one load level) instead
// of guessing. The same capture gives the same analytics every time.
TEST_P(ReplayTest, OlderCapturesHaveNoQueueTimeAndAnalyticsRefusesToGuess) {
  const std::string cap = TestData(GetParam() + ".rqcap");
  int status = 0;
  std::string err;
  const std::string out =
      RunReqmon("--replay " + cap + " --print-stats --print-analytics --log-file none", &status, &err);
  ASSERT_EQ(status, 0) << err;
  // Two documents: /stats, then /analytics.
  const size_t split = out.find("\n}\n{");
  ASSERT_NE(split, std::string::npos) << out.substr(0, 200);
  const auto stats = nlohmann::json::parse(out.substr(0, split + 2));
  const auto an = nlohmann::json::parse(out.substr(split + 3));
  EXPECT_GT(stats["total_requests"].get<int>(), 0);
  EXPECT_EQ(stats["queue_time"]["count"], 0);
  EXPECT_EQ(an["capacity"]["status"], "insufficient load variation");
  EXPECT_TRUE(an["capacity"]["requests_per_second"].is_null());
  EXPECT_TRUE(an["capacity"]["utilization"].is_null());
  // A few seconds of capture: no forecast (none yet, or each saying why not).
  for (const auto& f : an["forecasts"]) {
    EXPECT_NE(f["status"], "ok") << f.dump();
    EXPECT_TRUE(f["hours_to_full"].is_null());
  }
  EXPECT_TRUE(an["anomalies"].is_array());
  const std::string again =
      RunReqmon("--replay " + cap + " --print-stats --print-analytics --log-file none", &status, &err);
  EXPECT_EQ(again.substr(split + 3), out.substr(split + 3));
}

INSTANTIATE_TEST_SUITE_P(RealServers, ReplayTest, ::testing::Values("nginx", "python"));

// HTTP/2 captures (scripts/record-test-captures.sh h2c grpc): nginx over h2c driven by h2load
// with 10 streams a connection, and gRPC calls through nginx. The expected figures are what the
// live run reported (checked there against nginx's log and the gRPC client); the replay must
// give exactly the same statistics, latencies included.
class Http2ReplayTest : public ::testing::TestWithParam<std::string> {};

TEST_P(Http2ReplayTest, SameStatisticsAsTheLiveRun) {
  const std::string name = GetParam();
  std::ifstream ef(TestData(name + ".expected.json"));
  const json want = json::parse(ef);
  int status = -1;
  std::string err;
  const std::string out =
      RunReqmon("--replay " + TestData(name + ".rqcap") + " --print-stats", &status, &err);
  ASSERT_EQ(status, 0) << err;
  const json st = json::parse(out);
  for (const char* k : {"total_requests", "incomplete_requests", "status_codes", "protocols",
                        "average_response_time", "min_response_time", "max_response_time",
                        "percentiles"}) {
    EXPECT_EQ(st[k], want[k]) << k;
  }
  std::map<std::string, int> routes;
  for (const auto& r : st["routes"])
    routes[r["method"].get<std::string>() + " " + r["route"].get<std::string>()] = r["count"];
  std::map<std::string, int> want_routes = want["routes"];
  EXPECT_EQ(routes, want_routes);
  EXPECT_EQ(st["grpc"]["status_codes"], want["grpc_status_codes"]);
  json grpc = json::object();
  for (const auto& m : st["grpc"]["methods"])
    grpc[m["service"].get<std::string>() + "/" + m["method"].get<std::string>()] = m["status_codes"];
  EXPECT_EQ(grpc, want["grpc_methods"]);
  EXPECT_EQ(st["capture"]["connections_opened"], want["connections"]);
  EXPECT_EQ(st["unparsed"]["bytes"], 0);
  EXPECT_EQ(st["unknown_paths"], 0);
  EXPECT_EQ(st["http2"]["hpack_errors"], 0);
  EXPECT_EQ(st["http2"]["framing_losses"], 0);
  EXPECT_GT(st["http2"]["connections"].get<int>(), 0);
  // Recorded from the kernel's frame walk (bpf/h2frames.bpf.h): DATA payloads were left out.
  EXPECT_GT(st["http2"]["data_bytes_not_copied"].get<int>(), 0);
}

INSTANTIATE_TEST_SUITE_P(RealHttp2Servers, Http2ReplayTest, ::testing::Values("h2c", "grpc"));

TEST(ReplayErrors, TruncatedCaptureReportsOffsetAndKeepsWhatWasRead) {
  auto tmp = testing::MakeTempDir("trunc");
  std::string full = testing::ReadFile(TestData("nginx.rqcap"));
  std::ofstream(tmp / "cut.rqcap", std::ios::binary) << full.substr(0, full.size() * 2 / 3);
  int status = -1;
  std::string err;
  std::string out = RunReqmon("--replay " + (tmp / "cut.rqcap").string() + " --print-stats", &status, &err);
  EXPECT_EQ(status, 2);
  EXPECT_NE(err.find("cut.rqcap: truncated record at byte offset"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  json stats = json::parse(out);
  EXPECT_GT(stats["total_requests"].get<int>(), 5);
  EXPECT_LT(stats["total_requests"].get<int>(), 31);
  fs::remove_all(tmp);
}

TEST(ReplayErrors, ForeignAndMissingFilesAreOneLineErrors) {
  int status = -1;
  std::string err;
  RunReqmon("--replay " + std::string(REQMON_SOURCE_DIR) + "/README.md --print-stats", &status, &err);
  EXPECT_EQ(status, 1);
  EXPECT_NE(err.find("README.md: not a reqmon capture file (bad magic at byte offset 0)"),
            std::string::npos)
      << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  RunReqmon("--replay /nonexistent/x.rqcap --print-stats", &status, &err);
  EXPECT_EQ(status, 1);
  EXPECT_NE(err.find("/nonexistent/x.rqcap: cannot open capture file"), std::string::npos) << err;
}

TEST(ReplayErrors, GarbageRecordsAreSkippedAndCounted) {
  // A valid header followed by records of garbage bytes, then the real nginx records.
  auto tmp = testing::MakeTempDir("garbage");
  std::string full = testing::ReadFile(TestData("nginx.rqcap"));
  std::string mixed = full.substr(0, kCaptureHeaderSize);
  std::mt19937 rng(3);
  for (int i = 0; i < 50; ++i) {
    uint32_t len = 24 + rng() % 300;
    std::string rec(len, '\0');
    for (auto& c : rec) c = static_cast<char>(rng());
    uint32_t type = 1 + rng() % 3;  // plausible types with nonsense inside
    std::memcpy(rec.data(), &type, 4);
    mixed.append(reinterpret_cast<const char*>(&len), 4);
    mixed += rec;
  }
  mixed += full.substr(kCaptureHeaderSize);
  std::ofstream(tmp / "mixed.rqcap", std::ios::binary) << mixed;
  int status = -1;
  std::string err;
  std::string out = RunReqmon("--replay " + (tmp / "mixed.rqcap").string() + " --print-stats", &status, &err);
  EXPECT_EQ(status, 0) << err;
  json stats = json::parse(out);
  EXPECT_GT(stats["capture"]["malformed_records"].get<int>(), 0);
  EXPECT_NE(err.find("malformed records"), std::string::npos) << err;
  // The real traffic after the garbage is still counted exactly.
  EXPECT_EQ(stats["total_requests"], 31);
  fs::remove_all(tmp);
}

TEST(Cli, BadFlagsAreOneLineErrors) {
  int status = -1;
  std::string err;
  RunReqmon("--bogus", &status, &err);
  EXPECT_EQ(status, 2);
  EXPECT_NE(err.find("--bogus"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  RunReqmon("--payload-bytes 0 --replay x", &status, &err);
  EXPECT_EQ(status, 2);
  EXPECT_NE(err.find("payload-bytes"), std::string::npos) << err;
  RunReqmon("--replay " + TestData("nginx.rqcap") + " --pid 1", &status, &err);
  EXPECT_EQ(status, 2);
  EXPECT_NE(err.find("--replay"), std::string::npos) << err;
  RunReqmon("--print-stats", &status, &err);
  EXPECT_EQ(status, 2);
  for (const char* bad : {"--log-max-size 1KiB", "--log-max-size ten", "--log-max-size -5",
                          "--log-keep 101", "--log-keep x"}) {
    RunReqmon(std::string(bad) + " --replay " + TestData("nginx.rqcap"), &status, &err);
    EXPECT_EQ(status, 2) << bad;
    EXPECT_NE(err.find(std::string(bad).substr(0, 10)), std::string::npos) << bad << ": " << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << bad << ": " << err;
  }
  RunReqmon("--log-max-size 512KiB --log-keep 0 --log-file none --replay " + TestData("nginx.rqcap") +
                " --print-stats",
            &status, &err);
  EXPECT_EQ(status, 0) << err;
  std::string help = RunReqmon("--help", &status, &err);
  EXPECT_EQ(status, 0);
  EXPECT_NE(help.find("EXAMPLES"), std::string::npos);
  EXPECT_NE(help.find("--pid"), std::string::npos);
  std::string version = RunReqmon("--version", &status, &err);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(version.rfind("reqmon ", 0), 0u) << version;
}

}  // namespace
}  // namespace reqmon
