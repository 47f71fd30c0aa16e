// SPDX-License-Identifier: MIT
// Alerts end to end (label "bpf"): a real nginx made to fail (requests answered 500), observed by
// the real reqmon with a rules file of short windows; a webhook receiver on loopback that answers
// 500 to its first POST and 200 afterwards (so the firing notification is retried); and a real
// Alertmanager (Debian's prometheus-alertmanager) started on a free loopback port. After the
// failure the alert fires everywhere (and is re-sent to Alertmanager while it fires); after
// recovery it resolves everywhere and sits in the history.
#include <gtest/gtest.h>

#include <regex>

#include "../app/app_support.h"

namespace reqmon::testing {
namespace {

using nlohmann::json;

// Records every POST body as one JSON line {"status": answered, "body": ...}; 500 first, then 200.
constexpr const char* kReceiver = R"(
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
out = open(sys.argv[2], "a", buffering=1)
calls = [0]
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode()
        calls[0] += 1
        code = 500 if calls[0] == 1 else 200
        out.write(json.dumps({"status": code, "body": json.loads(body)}) + "\n")
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
)";

constexpr const char* kAlertmanager = "/usr/bin/prometheus-alertmanager";

class AlertsLive : public LiveReqmonTest {
 protected:
  void SetUp() override {
    LiveReqmonTest::SetUp();
    if (IsSkipped()) return;
    if (!fs::exists(kAlertmanager)) {
      std::printf("SKIPPED: %s is not installed (scripts/setup.sh)\n", kAlertmanager);
      GTEST_SKIP() << kAlertmanager << " is not installed";
    }
  }

  std::vector<json> Webhooks() {
    std::vector<json> out;
    std::istringstream in(ReadFile(dir_ / "webhooks.jsonl"));
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(json::parse(line));
    return out;
  }
  json AmAlerts(int port) {
    int code = 0;
    std::string body =
        HttpGet("http://127.0.0.1:" + std::to_string(port) + "/api/v2/alerts", &code);
    return code == 200 ? json::parse(body) : json::array();
  }
};

TEST_F(AlertsLive, FailingServerFiresWebhookAndAlertmanagerThenResolvesIntoHistory) {
  Nginx nginx;
  // The webhook receiver.
  const int hook_port = FreePort();
  Process hook(
      {"python3", "-c", kReceiver, std::to_string(hook_port), (dir_ / "webhooks.jsonl").string()});
  // A real Alertmanager, no clustering, its storage in the temporary folder.
  const int am_port = FreePort();
  std::ofstream(dir_ / "am.yml") << "route:\n  receiver: \"null\"\n  group_wait: 1s\n"
                                    "receivers:\n  - name: \"null\"\n";
  Process am(
      {kAlertmanager, "--config.file=" + (dir_ / "am.yml").string(),
       "--storage.path=" + (dir_ / "am-data").string(),
       "--web.listen-address=127.0.0.1:" + std::to_string(am_port), "--cluster.listen-address="},
      (dir_ / "am.log").string());
  ASSERT_TRUE(WaitForPort(hook_port)) << "webhook receiver did not start";
  ASSERT_TRUE(WaitForPort(am_port)) << ReadFile(dir_ / "am.log");

  std::ofstream(dir_ / "rules.yaml") << R"(rules:
  - name: HighErrorRate
    signal: error_ratio
    window: 5s
    above: 20
    clear: 10
    for: 2s
    keep_firing_for: 2s
    min_requests: 10
    severity: critical
    summary: "5xx share {{value}}% over 5s"
)";
  StartReqmon({"--pid", std::to_string(nginx.master_pid()), "--alert-rules",
               (dir_ / "rules.yaml").string(), "--alert-webhook",
               "http://127.0.0.1:" + std::to_string(hook_port) + "/hook", "--alertmanager",
               "http://127.0.0.1:" + std::to_string(am_port), "--alert-resend", "2"});

  auto active = [&](const std::string& state) {
    const json j = GetJson(Url("/alerts"));
    for (const auto& a : j["active"])
      if (a["name"] == "HighErrorRate" && a["state"] == state) return true;
    return false;
  };
  // The failure: mostly 500s, for at most 40 s (bounded), until reqmon says it fires.
  std::vector<std::string> failing;
  for (int i = 0; i < 8; ++i) failing.push_back(nginx.url("/status/500"));
  failing.push_back(nginx.url("/"));
  bool fired = false;
  for (int round = 0; round < 80 && !fired; ++round) {
    Curl(failing, true);
    fired = active("firing");
    if (!fired) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_TRUE(fired) << GetJson(Url("/alerts")).dump() << ReadFile(dir_ / "reqmon.err");
  json a = GetJson(Url("/alerts"))["active"][0];
  EXPECT_EQ(a["severity"], "critical");
  EXPECT_EQ(a["labels"]["alertname"], "HighErrorRate");
  EXPECT_GT(a["value"].get<double>(), 20.0);
  EXPECT_NE(a["summary"].get<std::string>().find("5xx share"), std::string::npos);
  EXPECT_NE(HttpGet(Url("/metrics/prometheus"))
                .find("reqmon_alerts{alertname=\"HighErrorRate\",alertstate=\"firing\","
                      "severity=\"critical\"} 1"),
            std::string::npos);

  // The webhook: the first POST got 500, the same firing payload was retried and accepted.
  std::vector<json> hooks;
  for (int i = 0; i < 100 && hooks.size() < 2; ++i) {
    hooks = Webhooks();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GE(hooks.size(), 2u) << ReadFile(dir_ / "reqmon.err");
  EXPECT_EQ(hooks[0]["status"], 500);
  EXPECT_EQ(hooks[1]["status"], 200);
  EXPECT_EQ(hooks[0]["body"], hooks[1]["body"]);
  const json& fire = hooks[1]["body"];
  EXPECT_EQ(fire["version"], "4");
  EXPECT_EQ(fire["status"], "firing");
  ASSERT_EQ(fire["alerts"].size(), 1u);
  EXPECT_EQ(fire["alerts"][0]["labels"]["alertname"], "HighErrorRate");
  EXPECT_EQ(fire["alerts"][0]["labels"]["severity"], "critical");
  EXPECT_TRUE(fire["alerts"][0]["annotations"].contains("summary"));
  EXPECT_TRUE(fire["alerts"][0].contains("startsAt"));

  // The Alertmanager lists it as active.
  bool listed = false;
  for (int i = 0; i < 100 && !listed; ++i) {
    for (const auto& x : AmAlerts(am_port))
      listed = listed ||
               (x["labels"]["alertname"] == "HighErrorRate" && x["status"]["state"] == "active");
    if (!listed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(listed) << AmAlerts(am_port).dump() << ReadFile(dir_ / "am.log");
  // While it fires, reqmon re-sends it (--alert-resend 2): Alertmanager's endsAt moves ahead.
  auto am_ends = [&]() -> std::string {
    for (const auto& x : AmAlerts(am_port))
      if (x["labels"]["alertname"] == "HighErrorRate") return x["endsAt"];
    return "";
  };
  const std::string ends0 = am_ends();
  bool resent = false;
  for (int round = 0; round < 30 && !resent; ++round) {
    Curl(failing, true);                           // keep it failing meanwhile
    resent = !ends0.empty() && am_ends() > ends0;  // RFC 3339 UTC strings sort by time
    if (!resent) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  EXPECT_TRUE(resent) << ends0 << " -> " << am_ends();

  // Recovery: only 200s, until reqmon resolves it (at most 40 s).
  std::vector<std::string> healthy(10, nginx.url("/"));
  bool resolved = false;
  for (int round = 0; round < 80 && !resolved; ++round) {
    Curl(healthy, true);
    json j = GetJson(Url("/alerts"));
    resolved = j["active"].empty() && !j["history"].empty();
    if (!resolved) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_TRUE(resolved) << GetJson(Url("/alerts")).dump();
  json h = GetJson(Url("/alerts"))["history"][0];
  EXPECT_EQ(h["name"], "HighErrorRate");
  EXPECT_EQ(h["severity"], "critical");
  EXPECT_GT(h["peak"].get<double>(), 20.0);
  EXPECT_LE(h["started_unix"].get<int64_t>(), h["ended_unix"].get<int64_t>());
  EXPECT_EQ(HttpGet(Url("/metrics/prometheus")).find("reqmon_alerts{"), std::string::npos);

  // The webhook got the resolution; the Alertmanager no longer holds it as active.
  bool hook_resolved = false;
  for (int i = 0; i < 100 && !hook_resolved; ++i) {
    for (const auto& x : Webhooks())
      hook_resolved = hook_resolved || (x["status"] == 200 && x["body"]["status"] == "resolved");
    if (!hook_resolved) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(hook_resolved);
  bool am_resolved = false;
  for (int i = 0; i < 100 && !am_resolved; ++i) {
    am_resolved = true;
    for (const auto& x : AmAlerts(am_port))
      if (x["labels"]["alertname"] == "HighErrorRate" && x["status"]["state"] == "active")
        am_resolved = false;
    if (!am_resolved) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(am_resolved) << AmAlerts(am_port).dump();

  // monitor_logs.txt: one firing and one resolved line, in the original's line style.
  reqmon_->Signal(SIGINT);
  std::string log = ReadFile(dir_ / "monitor_logs.txt");
  std::regex fired_re(
      R"(\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - ALERT firing: HighErrorRate \(critical\) 5xx share [0-9.]+% over 5s\n)");
  std::regex resolved_re(
      R"(\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - ALERT resolved: HighErrorRate \(critical\) 5xx share [0-9.]+% over 5s, peak [0-9.]+\n)");
  EXPECT_TRUE(std::regex_search(log, fired_re)) << log.substr(0, 2000);
  EXPECT_TRUE(std::regex_search(log, resolved_re));
  size_t firing_lines = 0;
  for (size_t at = log.find("ALERT firing"); at != std::string::npos;
       at = log.find("ALERT firing", at + 1))
    ++firing_lines;
  EXPECT_EQ(firing_lines, 1u);
}

// process_down: the observed nginx (master and workers) exits and nothing replaces it.
TEST_F(AlertsLive, ProcessDownFiresWhenTheObservedServerIsGone) {
  auto nginx = std::make_unique<Nginx>();
  std::ofstream(dir_ / "rules.yaml") << R"(rules:
  - name: ServerGone
    signal: process_down
    above: 0
    for: 2s
    severity: critical
    summary: "{{value}} target(s) lost every observed process"
)";
  const pid_t master = nginx->master_pid();
  StartReqmon({"--pid", std::to_string(master), "--alert-rules", (dir_ / "rules.yaml").string()});
  // Traffic while it is up, and a few seconds for the sampler to see its processes alive.
  for (int i = 0; i < 5; ++i) {
    Curl({nginx->url("/"), nginx->url("/api/x")}, true);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_TRUE(GetJson(Url("/alerts"))["active"].empty());
  nginx.reset();  // stops master and workers
  bool fired = false;
  json j;
  for (int i = 0; i < 100 && !fired; ++i) {
    j = GetJson(Url("/alerts"));
    for (const auto& a : j["active"])
      fired = fired || (a["name"] == "ServerGone" && a["state"] == "firing");
    if (!fired) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(fired) << j.dump() << ReadFile(dir_ / "reqmon.err");
  EXPECT_EQ(j["active"][0]["summary"], "1 target(s) lost every observed process");
}

}  // namespace
}  // namespace reqmon::testing
