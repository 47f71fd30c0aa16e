// SPDX-License-Identifier: MIT
// The real reqmon binary with rules files: mistakes are reported one line each (exit 2) before
// anything starts; --replay evaluates rules over the capture's own time.
#include <gtest/gtest.h>

#include <algorithm>

#include "../app/app_support.h"

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

}  // namespace
}  // namespace reqmon::testing
