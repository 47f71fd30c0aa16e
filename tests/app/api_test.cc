// SPDX-License-Identifier: MIT
// API (label "api"): a real reqmon listening on loopback, serving a capture recorded from a real
// nginx, queried with a real HTTP client (curl). Every endpoint's JSON shape and values; the
// Prometheus text checked by a real parser (promtool, from Debian's prometheus package).
#include <gtest/gtest.h>

#include <numeric>

#include "app_support.h"

namespace reqmon {
namespace {

using nlohmann::json;
using testing::GetJson;
using testing::HttpGet;
namespace fs = std::filesystem;

class ApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    port_ = testing::FreePort();
    dir_ = testing::MakeTempDir("api");
    int status = -1;
    expected_ = json::parse(testing::RunReqmon(
        "--replay " + testing::TestData("nginx.rqcap") + " --print-stats", &status));
    proc_ = new testing::Process(
        {testing::ReqmonBinary(), "--replay", testing::TestData("nginx.rqcap"), "--listen",
         "127.0.0.1:" + std::to_string(port_)},
        (dir_ / "reqmon.log").string());
    ASSERT_TRUE(testing::WaitForApi(port_)) << testing::ReadFile(dir_ / "reqmon.log");
  }
  static void TearDownTestSuite() {
    delete proc_;
    fs::remove_all(dir_);
  }
  static std::string Url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  static inline int port_ = 0;
  static inline fs::path dir_;
  static inline json expected_;
  static inline testing::Process* proc_ = nullptr;
};

TEST_F(ApiTest, MetricsStartsWithTheOriginalKeys) {
  int code = 0;
  std::string body = HttpGet(Url("/metrics"), &code);
  ASSERT_EQ(code, 200);
  auto m = nlohmann::ordered_json::parse(body);
  auto it = m.begin();
  EXPECT_EQ(it.key(), "cpu_usage");
  EXPECT_EQ((++it).key(), "memory_usage");
  EXPECT_GE(m["cpu_usage"].get<double>(), 0.0);
  EXPECT_LE(m["cpu_usage"].get<double>(), 100.0);
  // A replay carries no system samples, so the figures are there but zero; the live test checks
  // real values.
  EXPECT_GE(m["memory_usage"].get<double>(), 0.0);
  EXPECT_LE(m["memory_usage"].get<double>(), 100.0);
  EXPECT_NE(body.find("\"cpu_usage\":"), std::string::npos);
  EXPECT_EQ(body.rfind("{\"cpu_usage\":", 0), 0u) << body.substr(0, 80);
}

TEST_F(ApiTest, StatsMatchesTheReplayedCapture) {
  int code = 0;
  std::string body = HttpGet(Url("/stats"), &code);
  ASSERT_EQ(code, 200);
  EXPECT_EQ(body.rfind("{\"total_requests\":31,\"average_response_time\":", 0), 0u)
      << body.substr(0, 120);
  json s = json::parse(body);
  EXPECT_EQ(s["total_requests"], 31);
  EXPECT_EQ(s["status_codes"], json::parse(R"({"200": 24, "201": 2, "404": 3, "500": 2})"));
  for (const char* k : {"average_response_time", "min_response_time", "max_response_time",
                        "percentiles", "status_classes", "incomplete_requests", "routes",
                        "processes", "lost_events", "unparsed"})
    EXPECT_EQ(s[k], expected_[k]) << k;
  for (const char* p : {"p50", "p90", "p95", "p99"}) EXPECT_TRUE(s["percentiles"][p].is_number());
  EXPECT_LE(s["percentiles"]["p50"].get<double>(), s["percentiles"]["p99"].get<double>());
  EXPECT_EQ(s["status_classes"]["2xx"], 26);
  EXPECT_EQ(s["status_classes"]["4xx"], 3);
  EXPECT_EQ(s["status_classes"]["5xx"], 2);
  for (const char* r : {"1s", "10s", "60s"}) EXPECT_TRUE(s["rates"][r].is_number()) << r;
  ASSERT_FALSE(s["processes"].empty());
  int by_process = 0;
  for (const auto& p : s["processes"]) by_process += p["count"].get<int>();
  EXPECT_EQ(by_process, 31);
}

TEST_F(ApiTest, RequestsListsTheMostRecent) {
  json r = GetJson(Url("/requests?limit=5"));
  json list = r.is_array() ? r : r["requests"];
  ASSERT_EQ(list.size(), 5u);
  for (const auto& q : list) {
    for (const char* k : {"time", "pid", "method", "path", "status", "response_time_ms"})
      EXPECT_TRUE(q.contains(k)) << k << " in " << q.dump();
  }
  // The last thing driven was two GETs of /big.bin.
  EXPECT_EQ(list[0]["path"], "/big.bin");
  EXPECT_EQ(list[0]["status"], 200);
  EXPECT_EQ(list[0]["response_bytes"].get<uint64_t>() > 100000, true);
  // Full addresses: the server's loopback port and the client's.
  EXPECT_EQ(list[0]["local"].get<std::string>().rfind("127.0.0.1:", 0), 0u) << list[0].dump();
  EXPECT_EQ(list[0]["remote"].get<std::string>().rfind("127.0.0.1:", 0), 0u) << list[0].dump();
  json all = GetJson(Url("/requests?limit=1000"));
  json all_list = all.is_array() ? all : all["requests"];
  EXPECT_EQ(all_list.size(), 31u);
  int code = 0;
  std::string body = HttpGet(Url("/requests?limit=abc"), &code);
  EXPECT_EQ(code, 400);
  EXPECT_TRUE(json::parse(body).contains("error"));
}

TEST_F(ApiTest, SeriesHasTheReplayedSeconds) {
  json s = GetJson(Url("/series"));
  ASSERT_TRUE(s.contains("timestamps")) << s.dump().substr(0, 300);
  size_t n = s["timestamps"].size();
  ASSERT_GT(n, 0u);
  uint64_t total = 0;
  for (auto& [k, v] : s.items()) {
    if (v.is_array()) {
      EXPECT_EQ(v.size(), n) << k;
    }
  }
  for (const auto& c : s["requests"]) total += c.get<uint64_t>();
  EXPECT_EQ(total, 31u);
}

TEST_F(ApiTest, PrometheusTextPassesPromtoolAndCountsMatch) {
  if (!testing::HaveBinary("promtool")) GTEST_SKIP() << "promtool not installed (scripts/setup.sh)";
  int code = 0;
  std::string text = HttpGet(Url("/metrics/prometheus"), &code);
  ASSERT_EQ(code, 200);
  std::string ctype = testing::Run("curl -s -o /dev/null -w '%{content_type}' " + Url("/metrics/prometheus"));
  EXPECT_NE(ctype.find("text/plain"), std::string::npos) << ctype;
  EXPECT_NE(ctype.find("0.0.4"), std::string::npos) << ctype;
  fs::path f = dir_ / "metrics.prom";
  std::ofstream(f) << text;
  int status = -1;
  std::string out = testing::Run("promtool check metrics < " + f.string() + " 2>&1", &status);
  EXPECT_EQ(status, 0) << out;
  // Sum the request counter and the histogram count with a tiny exposition reader.
  double requests = 0, hist_count = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("reqmon_http_requests_total{", 0) == 0)
      requests += std::stod(line.substr(line.rfind(' ') + 1));
    if (line.rfind("reqmon_http_request_duration_seconds_count", 0) == 0)
      hist_count += std::stod(line.substr(line.rfind(' ') + 1));
  }
  EXPECT_EQ(requests, 31);
  EXPECT_EQ(hist_count, 31);
  EXPECT_NE(text.find("# TYPE reqmon_http_request_duration_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("reqmon_http_request_duration_seconds_bucket{"), std::string::npos);
  EXPECT_NE(text.find("le=\"+Inf\""), std::string::npos);
  EXPECT_NE(text.find("reqmon_host_cpu_usage_percent"), std::string::npos);
}

TEST_F(ApiTest, HealthzNotFoundAndWrongMethod) {
  int code = 0;
  json h = json::parse(HttpGet(Url("/healthz"), &code));
  EXPECT_EQ(code, 200);
  EXPECT_EQ(h["status"], "ok");
  std::string body = HttpGet(Url("/no/such/thing"), &code);
  EXPECT_EQ(code, 404);
  EXPECT_EQ(json::parse(body)["error"], "not found");
  body = HttpGet(Url("/stats"), &code, "-X POST");
  EXPECT_EQ(code, 405);
  EXPECT_TRUE(json::parse(body).contains("error"));
  std::string headers = testing::Run("curl -s -D - -o /dev/null -X DELETE " + Url("/metrics"));
  EXPECT_NE(headers.find("Allow: GET"), std::string::npos) << headers;
}

TEST_F(ApiTest, DashboardIsServed) {
  int code = 0;
  std::string html = HttpGet(Url("/"), &code);
  EXPECT_EQ(code, 200);
  EXPECT_NE(html.find("<html"), std::string::npos);
  std::string ctype = testing::Run("curl -s -o /dev/null -w '%{content_type}' " + Url("/"));
  EXPECT_NE(ctype.find("text/html"), std::string::npos);
}

}  // namespace
}  // namespace reqmon

namespace reqmon {
namespace {

// Safe to expose: the dashboard's files carry a strict Content-Security-Policy.
TEST_F(ApiTest, EveryResponseCarriesAStrictContentSecurityPolicy) {
  for (const char* path : {"/", "/app.js", "/stats", "/metrics/prometheus"}) {
    std::string headers = testing::Run("curl -s -D - -o /dev/null " + Url(path));
    EXPECT_NE(headers.find("Content-Security-Policy: default-src 'none'; script-src 'self';"),
              std::string::npos) << path << "\n" << headers;
    EXPECT_NE(headers.find("X-Content-Type-Options: nosniff"), std::string::npos) << path;
  }
}

// --token-file: every data endpoint wants the bearer token (401 JSON without it), /healthz does
// not (probes), the dashboard's files hold no data and stay open.
TEST(ApiAuthTest, TokenFileGuardsTheDataEndpoints) {
  const int port = testing::FreePort();
  const fs::path dir = testing::MakeTempDir("auth");
  const std::string token = "t0ken-for-the-api-test-0123456789";
  std::ofstream(dir / "token") << token << "\n";
  testing::Process proc({testing::ReqmonBinary(), "--replay", testing::TestData("nginx.rqcap"),
                         "--listen", "0.0.0.0:" + std::to_string(port), "--token-file",
                         (dir / "token").string()},
                        (dir / "reqmon.log").string());
  ASSERT_TRUE(testing::WaitForApi(port)) << testing::ReadFile(dir / "reqmon.log");
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  for (const char* path : {"/stats", "/metrics", "/requests", "/series", "/metrics/prometheus"}) {
    int code = 0;
    std::string body = HttpGet(base + path, &code);
    EXPECT_EQ(code, 401) << path;
    EXPECT_EQ(json::parse(body)["error"], "unauthorized") << body;
    HttpGet(base + path, &code, "-H 'Authorization: Bearer wrong-token-wrong-token-xx'");
    EXPECT_EQ(code, 401) << path;
    HttpGet(base + path, &code, "-H 'Authorization: Bearer " + token + "'");
    EXPECT_EQ(code, 200) << path;
  }
  int code = 0;
  HttpGet(base + "/healthz", &code);
  EXPECT_EQ(code, 200);
  HttpGet(base + "/", &code);
  EXPECT_EQ(code, 200);
  std::string hdr = testing::Run("curl -s -D - -o /dev/null " + base + "/stats");
  EXPECT_NE(hdr.find("WWW-Authenticate: Bearer"), std::string::npos) << hdr;
  fs::remove_all(dir);
}

// Listening beyond loopback without a token is refused, in one line, unless --no-auth says so;
// a missing or too short token file is a one-line error too.
TEST(ApiAuthTest, ExposedWithoutTokenIsRefused) {
  const std::string cap = testing::TestData("nginx.rqcap");
  int st = 0;
  std::string err;
  testing::RunReqmon("--replay " + cap + " --listen 0.0.0.0:" + std::to_string(testing::FreePort()) +
                         " --duration 1",
                     &st, &err);
  EXPECT_EQ(st, 2);
  EXPECT_NE(err.find("--token-file"), std::string::npos) << err;
  EXPECT_NE(err.find("--no-auth"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  testing::RunReqmon("--replay " + cap + " --listen 0.0.0.0:" + std::to_string(testing::FreePort()) +
                         " --no-auth --duration 0.5",
                     &st, &err);
  EXPECT_EQ(st, 0) << err;
  testing::RunReqmon("--replay " + cap + " --token-file /nonexistent/token --print-stats", &st, &err);
  EXPECT_EQ(st, 2);
  EXPECT_NE(err.find("--token-file /nonexistent/token: cannot read it"), std::string::npos) << err;
  const fs::path dir = testing::MakeTempDir("auth2");
  std::ofstream(dir / "short") << "abc\n";
  testing::RunReqmon("--replay " + cap + " --token-file " + (dir / "short").string() +
                         " --print-stats", &st, &err);
  EXPECT_EQ(st, 2);
  EXPECT_NE(err.find("at least 16 characters"), std::string::npos) << err;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace reqmon
