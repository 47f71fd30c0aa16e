// SPDX-License-Identifier: MIT
// The real reqmon binary with rules files: mistakes are reported one line each (exit 2) before
// anything starts; --replay evaluates rules over the capture's own time.
#include <gtest/gtest.h>

#include <algorithm>

#include "../app/app_support.h"
#include "../tracker/event_builder.h"
#include "reqmon/capture/capture_file.h"

namespace reqmon::testing {
namespace {

class AlertsApp : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("alerts-app"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  fs::path dir_;
};

TEST_F(AlertsApp, ARulesFileWithMistakesGetsOneLineEachAndExitCode2) {
  const std::string rules = Write("rules.yaml", R"(rules:
  - name: HighErrorRate
    signal: error_ratio
    window: 5m
    above: five
  - name: Slow
    signal: p99_ms
    window: 5 min
    above: 500
    severity: urgent
)");
  int status = -1;
  std::string err;
  RunReqmon("--replay " + TestData("nginx.rqcap") + " --print-stats --alert-rules " + rules,
            &status, &err);
  EXPECT_EQ(status, 2);
  EXPECT_EQ(err, "reqmon: " + rules +
                     ":5: 'above' must be a number, not 'five'\n"
                     "reqmon: " +
                     rules +
                     ":8: 'window' must be a duration such as 30s, 5m or 1h, "
                     "not '5 min'\n"
                     "reqmon: " +
                     rules +
                     ":10: 'severity' must be notice, warning or critical, "
                     "not 'urgent'\n");
  // Broken YAML and a missing file: one line each too.
  RunReqmon("--replay " + TestData("nginx.rqcap") + " --alert-rules " +
                Write("broken.yaml", "rules:\n  - name: [\n"),
            &status, &err);
  EXPECT_EQ(status, 2);
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(err.find("broken.yaml:3: not valid YAML"), std::string::npos) << err;
  RunReqmon("--replay " + TestData("nginx.rqcap") + " --alert-rules /nonexistent/rules.yaml",
            &status, &err);
  EXPECT_EQ(status, 2);
  EXPECT_EQ(err, "reqmon: /nonexistent/rules.yaml: cannot read the rules file\n");
  RunReqmon("--replay " + TestData("nginx.rqcap") + " --alertmanager https://am:9093", &status,
            &err);
  EXPECT_EQ(status, 2);
  EXPECT_EQ(err, "reqmon: https://am:9093: only plain http:// URLs are supported\n");
}

TEST_F(AlertsApp, TheBuiltInRulesPrintAsAFileThatLoads) {
  int status = -1;
  const std::string yaml = RunReqmon("--print-alert-rules", &status);
  ASSERT_EQ(status, 0);
  EXPECT_NE(yaml.find("  - name: HighErrorRate\n"), std::string::npos) << yaml;
  const std::string rules = Write("builtin.yaml", yaml);
  std::string err;
  RunReqmon("--replay " + TestData("nginx.rqcap") + " --print-stats --alert-rules " + rules,
            &status, &err);
  EXPECT_EQ(status, 0) << err;
  EXPECT_EQ(err, "");
}

TEST_F(AlertsApp, ReplayEvaluatesRulesOverCaptureTime) {
  // The capture holds 2 answers of 500 among 31 complete requests, all within 2 s.
  const std::string rules = Write("rules.yaml", R"(rules:
  - name: Errors
    signal: error_ratio
    window: 10s
    above: 5
    severity: critical
    summary: "5xx share {{value}}% over {{window}}"
  - name: TooFewRequests
    signal: error_ratio
    window: 10s
    above: 5
    min_requests: 1000
)");
  const std::string log = (dir_ / "monitor_logs.txt").string();
  int status = -1;
  std::string out = RunReqmon("--replay " + TestData("nginx.rqcap") + " --print-stats --log-file " +
                                  log + " --alert-rules " + rules,
                              &status);
  ASSERT_EQ(status, 0);
  EXPECT_EQ(nlohmann::json::parse(out)["total_requests"], 31);
  std::string text = ReadFile(log);
  std::vector<std::string> alerts;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find(" - ALERT ") != std::string::npos) alerts.push_back(line.substr(22));
  EXPECT_EQ(alerts,
            std::vector<std::string>{"ALERT firing: Errors (critical) 5xx share 6.5% over 10s"})
      << text;
  // The same capture replayed twice gives the same alert lines at the same (capture) times.
  const std::string log2 = (dir_ / "again.txt").string();
  RunReqmon("--replay " + TestData("nginx.rqcap") + " --print-stats --log-file " + log2 +
                " --alert-rules " + rules,
            &status);
  auto only_alerts = [](const std::string& t) {
    std::string out;
    std::istringstream in(t);
    for (std::string line; std::getline(in, line);)
      if (line.find(" - ALERT ") != std::string::npos) out += line + "\n";
    return out;
  };
  EXPECT_EQ(only_alerts(ReadFile(log2)), only_alerts(text));
  // --alert-rules none: no alert lines.
  const std::string log3 = (dir_ / "none.txt").string();
  RunReqmon("--replay " + TestData("nginx.rqcap") + " --print-stats --log-file " + log3 +
                " --alert-rules none",
            &status);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(only_alerts(ReadFile(log3)), "");
}

TEST_F(AlertsApp, ServesAlertsJsonAndPrometheusGaugeAfterAReplay) {
  const std::string rules = Write("rules.yaml", R"(rules:
  - name: Errors
    signal: error_ratio
    window: 10s
    above: 5
    severity: critical
    summary: "5xx share {{value}}% over {{window}}"
    route: "GET /status/{id}"
  - name: Quiet
    signal: request_rate
    window: 10s
    above: 1000
)");
  const int port = FreePort();
  Process rq({ReqmonBinary(), "--replay", TestData("nginx.rqcap"), "--listen",
              "127.0.0.1:" + std::to_string(port), "--duration", "20", "--alert-rules", rules},
             (dir_ / "reqmon.err").string());
  ASSERT_TRUE(WaitForApi(port)) << ReadFile(dir_ / "reqmon.err");
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  nlohmann::json j = GetJson(base + "/alerts");
  EXPECT_EQ(j["rules"], 2);
  ASSERT_EQ(j["active"].size(), 1u) << j.dump();
  const auto& a = j["active"][0];
  EXPECT_EQ(a["name"], "Errors");
  EXPECT_EQ(a["state"], "firing");
  EXPECT_EQ(a["severity"], "critical");
  EXPECT_EQ(a["value"], 50.0);  // 2 of the route's 4 requests answered 500
  EXPECT_EQ(a["summary"], "5xx share 50% over 10s");
  EXPECT_EQ(a["labels"],
            (nlohmann::json{
                {"alertname", "Errors"}, {"route", "GET /status/{id}"}, {"severity", "critical"}}));
  EXPECT_TRUE(a["since"].is_string());
  EXPECT_TRUE(j["history"].empty());
  std::string prom = HttpGet(base + "/metrics/prometheus");
  EXPECT_NE(prom.find("# TYPE reqmon_alerts gauge\nreqmon_alerts{alertname=\"Errors\",alertstate="
                      "\"firing\",route=\"GET /status/{id}\",severity=\"critical\"} 1\n"),
            std::string::npos)
      << prom;
  int code = 0;
  HttpGet(base + "/alerts", &code, "-X POST");
  EXPECT_EQ(code, 405);
}

// A capture built record by record (tests/tracker/event_builder.h): 40 s of 10 requests a second
// on one keep-alive connection, half of them answered 500 during seconds 10..19. Replayed, the
// rule goes pending, fires after `for`, holds through its hysteresis, resolves after
// keep_firing_for, all at exact capture seconds.
TEST_F(AlertsApp, ReplayedFailureFiresAndResolvesAtCaptureTime) {
  constexpr int64_t kWall = 1700000000;  // capture second 0 is this Unix second
  const std::string cap = (dir_ / "failure.rqcap").string();
  {
    CaptureInfo info;
    info.realtime_offset_ns = (kWall - 1) * 1000000000LL;  // monotonic 1 s is kWall
    info.payload_limit = 4096;
    std::string err;
    auto w = CaptureWriter::Create(cap, info, &err);
    ASSERT_TRUE(w) << err;
    auto put = [&](const Record& r) { w->Write(r.data(), static_cast<uint32_t>(r.size())); };
    for (int sec = 0; sec < 40; ++sec) {
      EventBuilder b(4242, 7, static_cast<uint64_t>(1 + sec) * 1000000000ULL);
      if (sec == 0) put(b.Open(RQ_ROLE_SERVER));
      for (int i = 0; i < 10; ++i) {
        const bool fail = sec >= 10 && sec < 20 && i % 2 == 0;
        put(b.In("GET /orders/" + std::to_string(i) + " HTTP/1.1\r\nHost: shop\r\n\r\n"));
        put(b.Out(fail ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops"
                       : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
      }
      if (sec == 39) put(b.Close());
    }
    ASSERT_TRUE(w->Flush()) << w->error();
  }
  const std::string rules = Write("rules.yaml", R"(rules:
  - name: OrdersFailing
    signal: error_ratio
    window: 5s
    above: 20
    clear: 10
    for: 2s
    keep_firing_for: 3s
    min_requests: 10
    severity: critical
    summary: "5xx share {{value}}% over {{window}}"
)");
  const int port = FreePort();
  Process rq({ReqmonBinary(), "--replay", cap, "--listen", "127.0.0.1:" + std::to_string(port),
              "--duration", "20", "--alert-rules", rules, "--log-file",
              (dir_ / "monitor_logs.txt").string()},
             (dir_ / "reqmon.err").string());
  ASSERT_TRUE(WaitForApi(port)) << ReadFile(dir_ / "reqmon.err");
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  EXPECT_EQ(GetJson(base + "/stats")["total_requests"], 400);
  nlohmann::json j = GetJson(base + "/alerts");
  EXPECT_TRUE(j["active"].empty()) << j.dump();
  ASSERT_EQ(j["history"].size(), 1u) << j.dump();
  const auto& h = j["history"][0];
  EXPECT_EQ(h["name"], "OrdersFailing");
  // Second 12: 15 of the last 50 requests failed (30 % > 20): pending; firing 2 s later. The
  // share falls to 10 % (not past `clear`) only at second 23 (one failing second left in the
  // window); it last held at 22, so it resolves at 22 + 3.
  EXPECT_EQ(h["started_unix"], kWall + 14);
  EXPECT_EQ(h["ended_unix"], kWall + 25);
  EXPECT_EQ(h["peak"], 50.0);
  const std::string log = ReadFile(dir_ / "monitor_logs.txt");
  const size_t fired =
      log.find(" - ALERT firing: OrdersFailing (critical) 5xx share 50% over 5s\n");
  const size_t resolved =
      log.find(" - ALERT resolved: OrdersFailing (critical) 5xx share 0% over 5s, peak 50\n");
  std::string alert_lines;
  for (size_t at = log.find(" - ALERT"); at != std::string::npos; at = log.find(" - ALERT", at + 1))
    alert_lines += log.substr(at, log.find('\n', at) - at + 1);
  EXPECT_NE(fired, std::string::npos) << alert_lines;
  EXPECT_NE(resolved, std::string::npos);
  EXPECT_LT(fired, resolved);
}

}  // namespace
}  // namespace reqmon::testing
