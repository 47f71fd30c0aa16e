// SPDX-License-Identifier: MIT
// The analyzer driven by per-second samples with known answers.
#include "reqmon/analytics/analyzer.h"

#include <gtest/gtest.h>

#include "reqmon/aggregator/aggregator.h"

namespace reqmon::analytics {
namespace {

constexpr int64_t kT0 = 1'700'000'000 / 60 * 60;

// A second of a W-worker server with handler delay D under `clients` closed-loop clients.
Second Pool(int64_t sec, double clients, double w = 4, double d = 0.05) {
  Second s;
  s.sec = sec;
  const double x = std::min(clients, w) / d;
  s.host.requests = x;
  s.host.serving_s = x * d;
  s.host.in_system_s = clients;  // Little: N = X R, R = wait + D
  s.targets["pid 1"] = s.host;
  return s;
}

TEST(Analyzer, CapacityOfARampAndUtilisationNow) {
  Analyzer a;
  int64_t t = kT0;
  for (double c : {1, 2, 3, 4, 6, 8, 12, 16})
    for (int i = 0; i < 5; ++i) a.Step(Pool(t++, c));
  for (int i = 0; i < 20; ++i) a.Step(Pool(t++, 2));  // now: 40 req/s
  const CapacityEstimate e = a.Capacity();
  ASSERT_EQ(e.fit.status, "ok");
  EXPECT_NEAR(*e.capacity_rps, 80, 16);
  EXPECT_NEAR(e.now_rps, 40, 1e-9);
  EXPECT_NEAR(*e.utilization, 40 / *e.capacity_rps, 1e-9);
  EXPECT_NEAR(*a.UtilizationPercent(), 100 * 40 / *e.capacity_rps, 1e-9);
  EXPECT_TRUE(e.latency_now_ms);
  EXPECT_EQ(a.Capacity("pid 1").fit.status, "ok");
  const auto j = a.Json();
  EXPECT_EQ(j["capacity"]["status"], "ok");
  EXPECT_TRUE(j["capacity"]["requests_per_second"].is_number());
  for (const char* k : {"lambda", "sigma", "kappa", "r2"})
    EXPECT_TRUE(j["capacity"]["model"][k].is_number()) << k;
  ASSERT_EQ(j["targets"].size(), 1u);
  EXPECT_EQ(j["targets"][0]["target"], "pid 1");
  EXPECT_NE(j["capacity"]["summary"].get<std::string>().find("req/s at most; now 40 req/s"),
            std::string::npos)
      << j["capacity"]["summary"];
  const std::string prom = a.PrometheusText();
  EXPECT_NE(prom.find("reqmon_capacity_requests_per_second{target=\"host\"}"), std::string::npos);
  EXPECT_NE(prom.find("reqmon_capacity_utilization{target=\"pid 1\"}"), std::string::npos);
}

TEST(Analyzer, FlatLoadIsRefusedInWords) {
  Analyzer a;
  for (int i = 0; i < 600; ++i) a.Step(Pool(kT0 + i, 3));
  const CapacityEstimate e = a.Capacity();
  EXPECT_EQ(e.fit.status, "insufficient load variation");
  EXPECT_FALSE(e.capacity_rps);
  EXPECT_FALSE(a.UtilizationPercent());
  const auto j = a.Json();
  EXPECT_TRUE(j["capacity"]["requests_per_second"].is_null());
  EXPECT_EQ(j["capacity"]["status"], "insufficient load variation");
  EXPECT_NE(j["capacity"]["summary"].get<std::string>().find("not varied enough"),
            std::string::npos);
}

TEST(Analyzer, ForecastsMemoryAndDiskFromTheirTrend) {
  AnalyzerOptions o;
  Analyzer a(o);
  // Two hours: memory 40 % + 5 %/h; disk 100 GB total, used 50 GB + 10 GB/h.
  const int64_t secs = 2 * 3600 + 60;
  for (int64_t i = 0; i <= secs; ++i) {
    Second s;
    s.sec = kT0 + i;
    s.has_system = true;
    s.memory_percent = 40 + 5.0 * i / 3600;
    const double used = 50e9 + 10e9 * i / 3600;
    s.disk_used_bytes = static_cast<uint64_t>(used);
    s.disk_free_bytes = static_cast<uint64_t>(100e9 - used);
    a.Step(s);
  }
  std::map<std::string, Forecast> by;
  for (const Forecast& f : a.Forecasts()) by[f.resource] = f;
  ASSERT_TRUE(by["memory"].e.ok()) << by["memory"].e.status;
  EXPECT_NEAR(by["memory"].e.hours, (100 - 50) / 5.0, 0.1);
  ASSERT_TRUE(by["disk"].e.ok()) << by["disk"].e.status;
  EXPECT_NEAR(by["disk"].e.hours, (100 - 70) / 10.0, 0.1);
  EXPECT_NEAR(by["disk"].e.r2, 1, 1e-6);
  EXPECT_EQ(by["request_rate"].e.status, "no capacity estimate");
  EXPECT_NEAR(*a.HoursToFull(), 3, 0.1);
  EXPECT_EQ(ForecastSentence(by["disk"]), "disk full in about 3.0 h");
  EXPECT_NE(a.PrometheusText().find("reqmon_forecast_hours_to_full{resource=\"disk\""),
            std::string::npos);
}

TEST(Analyzer, NoForecastBeforeAnHour) {
  Analyzer a;
  for (int64_t i = 0; i < 1800; ++i) {
    Second s;
    s.sec = kT0 + i;
    s.has_system = true;
    s.memory_percent = 10 + i * 0.01;
    a.Step(s);
  }
  for (const Forecast& f : a.Forecasts()) {
    if (f.resource == "memory") {
      EXPECT_EQ(f.e.status, "insufficient history");
    }
  }
  EXPECT_FALSE(a.HoursToFull());
}

// Route latency steady at ~20 ms for half an hour, then one minute at ~200 ms: flagged; the
// quiet route with few requests is never judged.
TEST(Analyzer, FlagsARouteThatLeavesItsBaseline) {
  Analyzer a;
  auto second = [](int64_t sec, size_t bucket, uint64_t errors) {
    Second s;
    s.sec = sec;
    RouteSecond r;
    r.requests = 10;
    r.errors = errors;
    r.duration_buckets.assign(kPromBucketsSeconds.size() + 1, 0);
    r.duration_buckets[bucket] = 10;
    s.routes["GET /a"] = r;
    RouteSecond q = r;
    q.requests = 0;
    if (sec % 60 == 0) {
      q.requests = 1;
      q.duration_buckets[bucket] = 1;
      q.duration_buckets[kPromBucketsSeconds.size()] = sec > kT0 + 1800 ? 1 : 0;
      s.routes["GET /quiet"] = q;
    }
    return s;
  };
  int64_t t = kT0;
  for (; t < kT0 + 1800; ++t) a.Step(second(t, 4, 0));  // (10, 25] ms
  EXPECT_TRUE(a.Anomalies().empty());
  for (; t < kT0 + 1860; ++t) a.Step(second(t, 7, 0));  // (100, 250] ms
  a.Step(second(t++, 4, 0));                             // closes the minute
  auto an = a.Anomalies();
  ASSERT_EQ(an.size(), 1u);
  EXPECT_EQ(an[0].route, "GET /a");
  EXPECT_EQ(an[0].signal, "latency_p95_ms");
  EXPECT_GT(an[0].value, 100);
  EXPECT_GT(an[0].score, 3.5);
  EXPECT_EQ(*a.AnomalyScore(), an[0].score);
  // Errors: 1 in 600 a minute is normal; then half the minute fails.
  for (; t < kT0 + 1920; ++t) a.Step(second(t, 4, t % 60 == 7 ? 1 : 0));
  for (; t < kT0 + 1980; ++t) a.Step(second(t, 4, 5));
  a.Step(second(t++, 4, 0));
  an = a.Anomalies();
  ASSERT_EQ(an.size(), 1u);
  EXPECT_EQ(an[0].signal, "error_share");
  EXPECT_NEAR(an[0].value, 0.5, 1e-9);
  const auto j = a.Json();
  ASSERT_EQ(j["anomalies"].size(), 1u);
  EXPECT_EQ(j["anomalies"][0]["route"], "GET /a");
}

TEST(Analyzer, SnapshotDifferGivesPerSecondLoad) {
  SnapshotDiffer d;
  StatsSnapshot snap;
  snap.total.count = 100;
  snap.total.avg_ms = 50;
  snap.total.queue_count = 100;
  snap.total.queue_avg_ms = 10;
  Second s = d.Next(snap, kT0);
  EXPECT_EQ(s.host.requests, 0);  // the first snapshot is the baseline
  snap.total.count = 120;
  snap.total.avg_ms = (100 * 50 + 20 * 100) / 120.0;  // 20 more at 100 ms
  snap.total.queue_count = 120;
  snap.total.queue_avg_ms = (100 * 10 + 20 * 30) / 120.0;  // that waited 30 ms
  s = d.Next(snap, kT0 + 1);
  EXPECT_NEAR(s.host.requests, 20, 1e-9);
  EXPECT_NEAR(s.host.serving_s, 2, 1e-9);
  EXPECT_NEAR(s.host.in_system_s, 2.6, 1e-9);
}

}  // namespace
}  // namespace reqmon::analytics

namespace reqmon::analytics {
namespace {

// The request rate against capacity: a pool of capacity 80 req/s, ramped once to find it, then
// traffic growing 20 req/s per hour for two hours (from 20 to 60 req/s): at capacity in about an
// hour more.
TEST(Analyzer, RequestRateReachesCapacity) {
  AnalyzerOptions o;
  o.load_window_s = 3 * 3600;  // the ramp stays in the fit (by default, the last hour's load)
  Analyzer a(o);
  int64_t t = kT0;
  for (double c : {1, 2, 3, 4, 6, 8, 12, 16})
    for (int i = 0; i < 5; ++i) a.Step(Pool(t++, c));
  const int64_t start = t;
  for (; t < start + 2 * 3600 + 60; ++t) {
    const double x = 20 + 20.0 * (t - start) / 3600;  // requests this second
    Second s;
    s.sec = t;
    s.host.requests = x;
    s.host.serving_s = x * 0.05;
    s.host.in_system_s = x * 0.05;
    a.Step(s);
  }
  const CapacityEstimate e = a.Capacity();
  ASSERT_TRUE(e.capacity_rps) << e.fit.status;
  Forecast rate;
  for (const Forecast& f : a.Forecasts())
    if (f.resource == "request_rate") rate = f;
  ASSERT_TRUE(rate.e.ok()) << rate.e.status;
  // The first minute (the ramp's) is in the fit too: about 20 req/s per hour.
  EXPECT_NEAR(rate.e.slope_per_hour, 20, 1.5);
  EXPECT_GT(rate.e.r2, 0.9);  // the ramp's minute lies off the line
  EXPECT_NEAR(rate.limit, *e.capacity_rps, 1);  // the capacity of the last minute's close
  // From about 60 req/s now to the capacity at about 20 req/s per hour.
  EXPECT_NEAR(rate.e.hours, (rate.limit - 60) / rate.e.slope_per_hour, 0.25);
}

}  // namespace
}  // namespace reqmon::analytics
