// SPDX-License-Identifier: MIT
// Several hosts through Prometheus (labels "prometheus" and "bpf", root): two real reqmon
// instances observe two different real servers (nginx in front of a slow upstream, and
// python3 -m http.server); a real Prometheus (Debian's package, loopback only, a temporary data
// folder, a generated configuration scraping both every second with an instance label each)
// collects them; known traffic is driven; and Prometheus's HTTP query API must agree with what
// was driven and with each reqmon's /stats: the sum across instances, each instance's count and
// status classes, the target label, and latency quantiles from histogram_quantile (to the
// histogram's bucket resolution). The Grafana dashboard's queries must all evaluate. Every wait
// is bounded.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <regex>

#include "../app/app_support.h"
#include "reqmon/capture/bpf_capture.h"

namespace reqmon {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// reqmon's duration histogram buckets (seconds), as in docs/api.md.
const double kLe[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

// The bucket [lower, upper] holding v seconds.
std::pair<double, double> Bucket(double v) {
  double lower = 0;
  for (double le : kLe) {
    if (v <= le) return {lower, le};
    lower = le;
  }
  return {10, INFINITY};
}

// Prometheus interpolates inside the bucket where the quantile's rank falls; reqmon's /stats
// percentile (nearest rank, from a log histogram with < 1% error) falls in the same bucket, up
// to that 1% at a bucket's edge.
bool SameBucket(double prom_s, double stats_ms) {
  const double s = stats_ms / 1000.0;
  for (double v : {s * 0.99, s, s * 1.01}) {
    auto [lo, hi] = Bucket(v);
    if (prom_s >= lo - 1e-9 && prom_s <= hi + 1e-9) return true;
  }
  return false;
}

class ReqmonInstance {
 public:
  ReqmonInstance(const std::vector<std::string>& args, const fs::path& dir, const std::string& tag)
      : port_(testing::FreePort()), err_(dir / (tag + ".err")) {
    std::vector<std::string> argv = {testing::ReqmonBinary(), "--listen",
                                     "127.0.0.1:" + std::to_string(port_), "--log-file", "none"};
    argv.insert(argv.end(), args.begin(), args.end());
    proc_.Start(argv, err_.string());
  }
  bool Ready() { return testing::WaitForApi(port_); }
  int port() const { return port_; }
  std::string err() const { return testing::ReadFile(err_); }
  json Stats() const {
    return testing::GetJson("http://127.0.0.1:" + std::to_string(port_) + "/stats");
  }
  json StatsWhenTotal(int n) const {
    json s;
    for (int i = 0; i < 100; ++i) {
      s = Stats();
      if (s["total_requests"].get<int>() >= n) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return Stats();
  }

 private:
  int port_;
  fs::path err_;
  testing::Process proc_;
};

class Prometheus {
 public:
  Prometheus(const fs::path& dir, const std::vector<std::pair<std::string, int>>& targets)
      : dir_(dir / "prometheus"), port_(testing::FreePort()) {
    fs::create_directories(dir_ / "data");
    std::ofstream cfg(dir_ / "prometheus.yml");
    cfg << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        << "scrape_configs:\n  - job_name: reqmon\n    metrics_path: /metrics/prometheus\n"
        << "    static_configs:\n";
    for (const auto& [instance, port] : targets)
      cfg << "      - targets: ['127.0.0.1:" << port << "']\n        labels: {instance: '"
          << instance << "'}\n";
    cfg.close();
    proc_.Start({"prometheus", "--config.file=" + (dir_ / "prometheus.yml").string(),
                 "--storage.tsdb.path=" + (dir_ / "data").string(),
                 "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"},
                (dir_ / "prometheus.log").string());
  }
  bool Ready() {
    for (int i = 0; i < 300; ++i) {  // 30 s
      int code = 0;
      testing::HttpGet(Url("/-/ready"), &code);
      if (code == 200) return true;
      if (!proc_.Running()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  std::string Url(const std::string& p) const {
    return "http://127.0.0.1:" + std::to_string(port_) + p;
  }
  std::string log() const { return testing::ReadFile(dir_ / "prometheus.log"); }
  // An instant query; the "data" object, or null when Prometheus refused it (*error set).
  json Query(const std::string& q, std::string* error = nullptr) const {
    int code = 0;
    std::string body = testing::HttpGet(Url("/api/v1/query"), &code,
                                        "-G --data-urlencode 'query=" + q + "'");
    json j = json::parse(body, nullptr, false);
    if (code != 200 || j.is_discarded() || j["status"] != "success") {
      if (error) *error = std::to_string(code) + ": " + body;
      return json();
    }
    return j["data"];
  }
  // label value of `by` (or "" for a single unlabelled result) -> value.
  std::map<std::string, double> Vector(const std::string& q, const std::string& by = "") const {
    std::map<std::string, double> out;
    json d = Query(q);
    if (d.is_null()) return out;
    for (const auto& r : d["result"])
      out[by.empty() ? "" : r["metric"].value(by, "")] = std::stod(r["value"][1].get<std::string>());
    return out;
  }
  double Scalar(const std::string& q) const {
    auto v = Vector(q);
    return v.count("") ? v[""] : NAN;
  }

 private:
  fs::path dir_;
  int port_;
  testing::Process proc_;
};

TEST(PrometheusEndToEnd, TwoReqmonsScrapedByARealPrometheusAgreeWithTheirStats) {
  if (std::string why = CheckBpfPrerequisites(); !why.empty()) {
    std::printf("SKIPPED (BPF not available): %s\n", why.c_str());
    GTEST_SKIP() << why;
  }
  if (!testing::HaveBinary("prometheus")) GTEST_SKIP() << "prometheus is not installed";
  fs::path dir = testing::MakeTempDir("prom-e2e");
  struct Cleanup {
    fs::path d;
    ~Cleanup() { fs::remove_all(d); }
  } cleanup{dir};

  testing::SlowUpstream upstream;
  testing::Nginx nginx(2, upstream.port());
  testing::PythonHttpServer py;
  ReqmonInstance a({"--pid", std::to_string(nginx.master_pid())}, dir, "nginx");
  ReqmonInstance b({"--pid", std::to_string(py.pid())}, dir, "python");
  ASSERT_TRUE(a.Ready()) << a.err();
  ASSERT_TRUE(b.Ready()) << b.err();
  Prometheus prom(dir, {{"nginx-host", a.port()}, {"python-host", b.port()}});
  ASSERT_TRUE(prom.Ready()) << prom.log();

  // Known traffic: nginx 24 slow (10..40 ms through the upstream) + 6 fast + 3 errors; python
  // 20 hits + 5 misses.
  std::vector<std::string> slow, fast, errors, hits, misses;
  for (int i = 0; i < 24; ++i) slow.push_back(nginx.url("/slow/" + std::to_string(i)));
  for (int i = 0; i < 6; ++i) fast.push_back(nginx.url("/api/v" + std::to_string(i)));
  for (int i = 0; i < 3; ++i) errors.push_back(nginx.url("/status/500"));
  for (int i = 0; i < 20; ++i) hits.push_back(py.url("/index.html?i=" + std::to_string(i)));
  for (int i = 0; i < 5; ++i) misses.push_back(py.url("/missing/" + std::to_string(i)));
  ASSERT_EQ(testing::Curl(slow, true), 24);
  ASSERT_EQ(testing::Curl(fast, false), 6);
  ASSERT_EQ(testing::Curl(errors, true), 3);
  ASSERT_EQ(testing::Curl(hits, true), 20);
  ASSERT_EQ(testing::Curl(misses, false), 5);
  const int n_nginx = 33, n_py = 25;

  json sa = a.StatsWhenTotal(n_nginx), sb = b.StatsWhenTotal(n_py);
  ASSERT_EQ(sa["total_requests"], n_nginx);
  ASSERT_EQ(sb["total_requests"], n_py);

  // Wait (bounded) until Prometheus has scraped the final figures.
  double total = NAN;
  for (int i = 0; i < 150; ++i) {  // 30 s
    total = prom.Scalar("sum(reqmon_http_requests_total)");
    if (total == n_nginx + n_py) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(total, n_nginx + n_py) << prom.log();

  auto per_instance = prom.Vector("sum by (instance) (reqmon_http_requests_total)", "instance");
  EXPECT_EQ(per_instance, (std::map<std::string, double>{{"nginx-host", n_nginx},
                                                         {"python-host", n_py}}));
  EXPECT_EQ(per_instance["nginx-host"], sa["total_requests"].get<double>());
  EXPECT_EQ(per_instance["python-host"], sb["total_requests"].get<double>());

  // Status classes per instance, as in each /stats.
  for (const auto& [inst, s] : {std::pair<std::string, json>{"nginx-host", sa}, {"python-host", sb}}) {
    auto cls = prom.Vector("sum by (status) (reqmon_http_requests_total{instance=\"" + inst + "\"})",
                           "status");
    std::map<std::string, double> want;
    for (const auto& [k, v] : s["status_classes"].items())
      if (v.get<int>() > 0) want[k] = v.get<double>();
    EXPECT_EQ(cls, want) << inst;
  }
  EXPECT_EQ(prom.Vector("sum by (status) (reqmon_http_requests_total{instance=\"nginx-host\"})",
                        "status"),
            (std::map<std::string, double>{{"2xx", 30}, {"5xx", 3}}));
  // The target label: each reqmon's one --pid target.
  EXPECT_EQ(prom.Vector("sum by (target) (reqmon_http_requests_total{instance=\"nginx-host\"})", "target"),
            (std::map<std::string, double>{{"pid:" + std::to_string(nginx.master_pid()), n_nginx}}));
  EXPECT_EQ(prom.Scalar("sum(reqmon_target_http_requests_total{instance=\"python-host\"})"), n_py);
  EXPECT_EQ(prom.Scalar("sum(reqmon_lost_events_total)"), 0);

  // Latency quantiles from the histogram, against each /stats and against the traffic.
  for (const auto& [inst, s] : {std::pair<std::string, json>{"nginx-host", sa}, {"python-host", sb}}) {
    for (const auto& [q, key] : {std::pair<std::string, std::string>{"0.5", "p50"}, {"0.9", "p90"}}) {
      const double v = prom.Scalar("histogram_quantile(" + q +
                                   ", sum by (le) (reqmon_http_request_duration_seconds_bucket{instance=\"" +
                                   inst + "\"}))");
      const double st = s["percentiles"][key].get<double>();
      std::printf("%s %s: Prometheus %.4f s, /stats %.3f ms\n", inst.c_str(), key.c_str(), v, st);
      EXPECT_TRUE(SameBucket(v, st)) << inst << " " << key << ": Prometheus " << v
                                     << " s, /stats " << st << " ms";
      // The per-target histogram gives the same.
      const double vt = prom.Scalar("histogram_quantile(" + q +
                                    ", sum by (le) (reqmon_target_http_request_duration_seconds_bucket{instance=\"" +
                                    inst + "\"}))");
      EXPECT_NEAR(vt, v, 1e-9) << inst << " " << key;
    }
  }
  // What was driven: 24 of nginx's 33 requests took 10-40 ms, half of them over 25 ms (the
  // upstream sleeps 10, 20, 30, 40 ms in turn), so the 90th percentile is in (25 ms, 50 ms].
  const double p90 = prom.Scalar(
      "histogram_quantile(0.9, sum by (le) (reqmon_http_request_duration_seconds_bucket{instance=\"nginx-host\"}))");
  EXPECT_GT(p90, 0.025);
  EXPECT_LE(p90, 0.05);
  const double count_slow = prom.Scalar(
      "sum(reqmon_http_request_duration_seconds_count{instance=\"nginx-host\",route=\"/slow/{id}\"})");
  EXPECT_EQ(count_slow, 24);
  const double sum_slow = prom.Scalar(
      "sum(reqmon_http_request_duration_seconds_sum{instance=\"nginx-host\",route=\"/slow/{id}\"})");
  EXPECT_GT(sum_slow, 24 * 0.010);  // at least the upstream's sleeps (10+20+30+40 ms)*6 = 0.6 s
  EXPECT_GT(sum_slow, 0.6);
  EXPECT_LT(sum_slow, 0.6 + 24 * 0.05);

  // Process-level series: both servers' processes with CPU and RSS.
  auto rss = prom.Vector("count by (instance) (reqmon_process_resident_memory_bytes > 0)", "instance");
  EXPECT_GE(rss["nginx-host"], 1);
  EXPECT_GE(rss["python-host"], 1);

  // The Grafana dashboard's queries all evaluate (with its variables filled in).
  json dash = json::parse(testing::ReadFile(fs::path(REQMON_SOURCE_DIR) / "deploy/grafana/reqmon-dashboard.json"));
  int checked = 0;
  for (const auto& p : dash["panels"]) {
    for (const auto& t : p["targets"]) {
      std::string e = t["expr"];
      e = std::regex_replace(e, std::regex(R"(\$instance|\$target)"), ".*");
      e = std::regex_replace(e, std::regex(R"(\$__rate_interval|\$__range)"), "1m");
      std::string err;
      json d = prom.Query(e, &err);
      EXPECT_FALSE(d.is_null()) << p["title"] << ": " << e << ": " << err;
      if (!d.is_null()) ++checked;
    }
  }
  EXPECT_GT(checked, 10);
  // The dashboard's status-class panel has a series for each class driven (2xx, 4xx, 5xx). (Its
  // rates may be 0 here: a counter first scraped at its final value has no increase; rate()
  // needs two scrapes of a series, so wait for them, bounded.)
  size_t classes = 0;
  for (int i = 0; i < 50 && classes < 3; ++i) {
    classes = prom.Vector("sum by (status) (rate(reqmon_http_requests_total[1m]))", "status").size();
    if (classes < 3) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(classes, 3u);
}

}  // namespace
}  // namespace reqmon
