// SPDX-License-Identifier: MIT
// The state machine driven by synthetic per-second samples: the sample's second is the clock.
#include "reqmon/alerts/engine.h"

#include <gtest/gtest.h>

#include <set>

namespace reqmon::alerts {
namespace {

constexpr int64_t kT0 = 1700000000;

RuleSet Parse(const std::string& yaml) {
  RuleSet rs;
  std::vector<std::string> errors;
  EXPECT_TRUE(ParseRules(yaml, "test.yaml", &rs, &errors)) << (errors.empty() ? "" : errors[0]);
  return rs;
}

// `requests` requests in the second, `errors` of them 5xx, all taking `ms` (bucket of that bound).
SecondSample Traffic(int64_t sec, uint64_t requests, uint64_t errors, size_t bucket = 5) {
  SecondSample s;
  s.sec = sec;
  s.total.requests = requests;
  s.total.errors = errors;
  s.total.buckets[bucket] = requests;
  return s;
}

SecondSample Cpu(int64_t sec, double cpu) {
  SecondSample s;
  s.sec = sec;
  s.has_system = true;
  s.cpu_percent = cpu;
  return s;
}

struct Events {
  std::vector<std::pair<int64_t, AlertEvent>> events;
  void Add(int64_t t, std::vector<AlertEvent> ev) {
    for (auto& e : ev) events.emplace_back(t, std::move(e));
  }
};

const char* kCpuRule = R"(rules:
  - name: HighCpu
    signal: cpu_percent
    window: 1s
    above: 85
    clear: 75
    for: 10s
    keep_firing_for: 5s
    severity: warning
    summary: "CPU {{value}}%"
)";

TEST(Engine, PendingThenFiringAfterForThenResolvedAfterKeepFiringFor) {
  AlertEngine eng(Parse(kCpuRule));
  Events run;
  int64_t t = kT0;
  for (int i = 0; i < 5; ++i, ++t) run.Add(t, eng.Step(Cpu(t, 50)));
  EXPECT_TRUE(eng.Active().empty());
  const int64_t hot = t;
  for (int i = 0; i < 10; ++i, ++t) {
    run.Add(t, eng.Step(Cpu(t, 90)));
    ASSERT_EQ(eng.Active().size(), 1u);
    EXPECT_EQ(eng.Active()[0].state, AlertState::kPending) << i;
    EXPECT_EQ(eng.Active()[0].since, hot);
  }
  EXPECT_TRUE(run.events.empty());
  run.Add(t, eng.Step(Cpu(t, 92)));  // `for` (10 s) has elapsed
  ASSERT_EQ(run.events.size(), 1u);
  EXPECT_EQ(run.events[0].first, hot + 10);
  EXPECT_EQ(run.events[0].second.kind, AlertEvent::kFiring);
  EXPECT_EQ(run.events[0].second.summary, "CPU 92%");
  EXPECT_EQ(run.events[0].second.labels.at("severity"), "warning");
  EXPECT_EQ(eng.Active()[0].state, AlertState::kFiring);
  ++t;
  // The condition ends; keep_firing_for (5 s) counts from the last second it held (hot + 10).
  for (int i = 0; i < 4; ++i, ++t) run.Add(t, eng.Step(Cpu(t, 40)));
  EXPECT_EQ(run.events.size(), 1u);
  EXPECT_EQ(eng.Active().size(), 1u);
  run.Add(t, eng.Step(Cpu(t, 40)));
  ASSERT_EQ(run.events.size(), 2u);
  EXPECT_EQ(run.events[1].second.kind, AlertEvent::kResolved);
  EXPECT_EQ(run.events[1].second.ended, hot + 15);
  EXPECT_EQ(run.events[1].second.peak, 92);
  EXPECT_TRUE(eng.Active().empty());
  auto h = eng.History();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].started, hot + 10);
  EXPECT_EQ(h[0].ended, hot + 15);
  EXPECT_EQ(h[0].peak, 92);
}

TEST(Engine, PendingThatDoesNotLastNeverFires) {
  AlertEngine eng(Parse(kCpuRule));
  Events run;
  int64_t t = kT0;
  for (int i = 0; i < 5; ++i, ++t) run.Add(t, eng.Step(Cpu(t, 95)));
  run.Add(t, eng.Step(Cpu(t, 60)));  // below clear: back to inactive
  EXPECT_TRUE(eng.Active().empty());
  ++t;
  for (int i = 0; i < 5; ++i, ++t) run.Add(t, eng.Step(Cpu(t, 95)));
  EXPECT_TRUE(run.events.empty());
  EXPECT_EQ(eng.Active()[0].since, t - 5);  // pending started over
}

TEST(Engine, HoveringAtTheThresholdFiresOnceNotRepeatedly) {
  AlertEngine eng(Parse(R"(rules:
  - name: Hover
    signal: cpu_percent
    window: 1s
    above: 85
    clear: 75
    for: 3s
)"));
  Events run;
  int64_t t = kT0;
  for (int i = 0; i < 600; ++i, ++t) run.Add(t, eng.Step(Cpu(t, i % 2 ? 84.0 : 86.0)));
  ASSERT_EQ(run.events.size(), 1u);
  EXPECT_EQ(run.events[0].second.kind, AlertEvent::kFiring);
  // Without hysteresis (clear = above) the same signal never gets past pending: `for` resets.
  AlertEngine plain(
      Parse("rules:\n  - name: P\n    signal: cpu_percent\n    window: 1s\n"
            "    above: 85\n    for: 3s\n"));
  Events r2;
  for (int i = 0; i < 600; ++i) r2.Add(kT0 + i, plain.Step(Cpu(kT0 + i, i % 2 ? 84.0 : 86.0)));
  EXPECT_TRUE(r2.events.empty());
}

TEST(Engine, KeepFiringForBridgesShortDips) {
  AlertEngine eng(Parse(R"(rules:
  - name: Errors
    signal: error_ratio
    window: 1s
    above: 10
    keep_firing_for: 10s
)"));
  Events run;
  int64_t t = kT0;
  for (int cycle = 0; cycle < 10; ++cycle) {
    for (int i = 0; i < 3; ++i, ++t) run.Add(t, eng.Step(Traffic(t, 100, 50)));
    for (int i = 0; i < 5; ++i, ++t) run.Add(t, eng.Step(Traffic(t, 100, 0)));
  }
  ASSERT_EQ(run.events.size(), 1u);  // one firing, no flapping
  for (int i = 0; i < 11; ++i, ++t) run.Add(t, eng.Step(Traffic(t, 100, 0)));
  ASSERT_EQ(run.events.size(), 2u);
  EXPECT_EQ(run.events[1].second.kind, AlertEvent::kResolved);
}

TEST(Engine, MinRequestsGivesNoVerdictOnLittleTraffic) {
  AlertEngine eng(Parse(R"(rules:
  - name: Errors
    signal: error_ratio
    window: 10s
    above: 2
    min_requests: 120
)"));
  Events run;
  int64_t t = kT0;
  for (int i = 0; i < 30; ++i, ++t) run.Add(t, eng.Step(Traffic(t, 10, 10)));  // 100 per 10 s
  EXPECT_TRUE(run.events.empty());
  EXPECT_FALSE(eng.Value("Errors").has_value());
  for (int i = 0; i < 10; ++i, ++t) run.Add(t, eng.Step(Traffic(t, 13, 13)));  // 130 per 10 s
  ASSERT_EQ(run.events.size(), 1u);
  EXPECT_DOUBLE_EQ(*eng.Value("Errors"), 100.0);
  // Traffic stops: no verdict, so the alert resolves instead of sticking.
  for (int i = 0; i < 20; ++i, ++t) run.Add(t, eng.Step(Traffic(t, 0, 0)));
  ASSERT_EQ(run.events.size(), 2u);
  EXPECT_EQ(run.events[1].second.kind, AlertEvent::kResolved);
}

TEST(Engine, WindowedSignals) {
  AlertEngine eng(Parse(R"(rules:
  - name: P99
    signal: p99_ms
    window: 10s
    above: 1000
  - name: Rate
    signal: request_rate
    window: 10s
    above: 1000
  - name: Drop
    signal: request_rate_change
    window: 10s
    below: -50
  - name: Lost
    signal: lost_events
    window: 10s
    above: 0
  - name: Spike
    signal: p99_ms
    window: 10s
    baseline: 30s
    above: 2
)"));
  int64_t t = kT0;
  for (int i = 0; i < 40; ++i, ++t) eng.Step(Traffic(t, 100, 0, 5));  // all in (25, 50] ms
  EXPECT_NEAR(*eng.Value("P99"), 25 + 25 * 0.99, 1e-6);
  EXPECT_DOUBLE_EQ(*eng.Value("Rate"), 100);
  EXPECT_DOUBLE_EQ(*eng.Value("Drop"), 0);
  EXPECT_DOUBLE_EQ(*eng.Value("Spike"), 1);
  for (int i = 0; i < 10; ++i, ++t) {
    SecondSample s = Traffic(t, 20, 0, 7);  // slower, (100, 250] ms, and fewer
    s.lost_events = i == 3 ? 7 : 0;
    eng.Step(s);
  }
  EXPECT_NEAR(*eng.Value("P99"), 100 + 150 * 0.99, 1e-6);
  EXPECT_DOUBLE_EQ(*eng.Value("Rate"), 20);
  EXPECT_DOUBLE_EQ(*eng.Value("Drop"), -80);
  EXPECT_DOUBLE_EQ(*eng.Value("Lost"), 7);
  EXPECT_NEAR(*eng.Value("Spike"), (100 + 150 * 0.99) / (25 + 25 * 0.99), 1e-6);
  std::vector<std::string> firing;
  for (const auto& a : eng.Active()) firing.push_back(a.name);
  EXPECT_EQ(firing, (std::vector<std::string>{"Drop", "Lost", "Spike"}));
}

TEST(Engine, BurnRateNeedsBothWindowsOfAPair) {
  // SLO 99 %: budget 1 %. One pair, 60 s and 10 s, factor 10 (a 10 % error ratio).
  AlertEngine eng(Parse(R"(rules:
  - name: Budget
    signal: error_ratio
    slo: 99
    burn:
      - {long: 60s, short: 10s, factor: 10}
    severity: critical
)"));
  Events run;
  int64_t t = kT0;
  for (int i = 0; i < 60; ++i, ++t) run.Add(t, eng.Step(Traffic(t, 100, 0)));
  // A 12 s burst of 50 % errors: the short window burns at once (50x), the long one passes 10x
  // only after 12 s (12 * 50 / 6000 = 10 %).
  for (int i = 0; i < 12; ++i, ++t) {
    run.Add(t, eng.Step(Traffic(t, 100, 50)));
    if (i < 11) {
      EXPECT_TRUE(run.events.empty()) << i;
    }
  }
  run.Add(t, eng.Step(Traffic(t, 100, 50)));
  ++t;
  ASSERT_EQ(run.events.size(), 1u);
  EXPECT_EQ(run.events[0].second.kind, AlertEvent::kFiring);
  // Errors stop: the short window clears within 10 s though the long one still burns.
  for (int i = 0; i < 10; ++i, ++t) run.Add(t, eng.Step(Traffic(t, 100, 0)));
  ASSERT_EQ(run.events.size(), 2u);
  EXPECT_EQ(run.events[1].second.kind, AlertEvent::kResolved);
}

TEST(Engine, LongBurnWindowsUseTheMinuteRing) {
  // The workbook's default pairs: 1h/5m at 14.4x, 6h/30m at 6x, SLO 99.9 %.
  AlertEngine eng(
      Parse("rules:\n  - name: Slow\n    signal: latency\n    slo: 99.9\n"
            "    latency_ms: 250\n"));
  Events run;
  int64_t t = kT0 - kT0 % 60;
  for (int i = 0; i < 7 * 3600; ++i, ++t) run.Add(t, eng.Step(Traffic(t, 10, 0, 5)));
  EXPECT_TRUE(run.events.empty());
  // 1 % slower than 250 ms: 10x the budget: above 6x but under 14.4x; after 30 min the short
  // window of the second pair is there, and the 6 h window needs 6x: 36 min of it.
  int64_t start = t;
  for (int i = 0; i < 3 * 3600 && run.events.empty(); ++i, ++t)
    run.Add(t, eng.Step(Traffic(t, 100, 0, i % 100 == 0 ? 8 : 5)));
  ASSERT_EQ(run.events.size(), 1u);
  const int64_t took = run.events[0].first - start;
  EXPECT_GT(took, 30 * 60);
  EXPECT_LT(took, 3 * 3600);
}

TEST(Engine, ScopedRulesOnlySeeTheirScope) {
  AlertEngine eng(Parse(R"(rules:
  - name: RouteErrors
    signal: error_ratio
    window: 5s
    above: 50
    route: "GET /api/{id}"
)"));
  EXPECT_EQ(eng.ScopeKeys(), std::vector<std::string>{"route:GET /api/{id}"});
  int64_t t = kT0;
  for (int i = 0; i < 5; ++i, ++t) eng.Step(Traffic(t, 100, 100));  // errors elsewhere
  EXPECT_TRUE(eng.Active().empty());
  for (int i = 0; i < 5; ++i, ++t) {
    SecondSample s = Traffic(t, 100, 0);
    s.scoped["route:GET /api/{id}"].requests = 10;
    s.scoped["route:GET /api/{id}"].errors = 9;
    eng.Step(s);
  }
  ASSERT_EQ(eng.Active().size(), 1u);
  EXPECT_EQ(eng.Active()[0].labels.at("route"), "GET /api/{id}");
  EXPECT_NE(eng.PrometheusText().find(
                "reqmon_alerts{alertname=\"RouteErrors\",alertstate=\"firing\",route=\"GET "
                "/api/{id}\",severity=\"warning\"} 1"),
            std::string::npos)
      << eng.PrometheusText();
}

TEST(Engine, HistoryIsBoundedNewestFirst) {
  AlertEngine eng(Parse("rules:\n  - name: C\n    signal: cpu_percent\n    window: 1s\n"
                        "    above: 50\n"),
                  3);
  int64_t t = kT0;
  for (int i = 0; i < 10; ++i) {
    eng.Step(Cpu(t++, 90));
    eng.Step(Cpu(t++, 10));
  }
  auto h = eng.History();
  ASSERT_EQ(h.size(), 3u);
  EXPECT_GT(h[0].started, h[1].started);
  auto j = eng.AlertsJson();
  EXPECT_EQ(j["history"].size(), 3u);
  EXPECT_EQ(j["active"].size(), 0u);
}

}  // namespace
}  // namespace reqmon::alerts

namespace reqmon::alerts {
namespace {

TEST(Engine, DiskHoursToFullFromTheWindowsTrend) {
  AlertEngine eng(Parse(R"(rules:
  - name: DiskFullSoon
    signal: disk_hours_to_full
    window: 10m
    below: 8
    clear: 12
)"));
  std::vector<AlertEvent> ev;
  // 1 MB/s onto a disk with 20 GB free: full in 20000 s (5.6 h).
  for (int i = 0; i < 600; ++i) {
    SecondSample s;
    s.sec = kT0 + i;
    s.has_system = true;
    s.disk_used_bytes = 1000000000ull + 1000000ull * i;
    s.disk_free_bytes = 20000000000ull - 1000000ull * i;
    for (auto& e : eng.Step(s)) ev.push_back(e);
  }
  ASSERT_TRUE(eng.Value("DiskFullSoon").has_value());
  EXPECT_NEAR(*eng.Value("DiskFullSoon"), (20000000000.0 - 599e6) / 1e6 / 3600, 1e-6);
  ASSERT_EQ(ev.size(), 1u);
  // Growth stops: no verdict, so it resolves.
  for (int i = 600; i < 1300; ++i) {
    SecondSample s;
    s.sec = kT0 + i;
    s.has_system = true;
    s.disk_used_bytes = 1599000000ull;
    s.disk_free_bytes = 19401000000ull;
    for (auto& e : eng.Step(s)) ev.push_back(e);
  }
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].kind, AlertEvent::kResolved);
}

}  // namespace
}  // namespace reqmon::alerts

namespace reqmon::alerts {
namespace {

// The built-in rules on a realistic day: 20 quiet minutes, 10 minutes of 10 % 5xx answered
// slowly, then recovery. Each rule involved fires once and resolves once; the others stay quiet.
TEST(Engine, TheBuiltInRulesOnAnIncident) {
  AlertEngine eng(DefaultRules());
  std::vector<std::pair<int64_t, AlertEvent>> ev;
  int64_t t = kT0;
  auto run = [&](int seconds, uint64_t errors, size_t bucket) {
    for (int i = 0; i < seconds; ++i, ++t) {
      SecondSample s = Traffic(t, 10, errors, bucket);
      s.has_system = true;
      s.cpu_percent = 30;
      s.memory_percent = 40;
      s.disk_used_bytes = 1000000000;
      s.disk_free_bytes = 9000000000;
      for (auto& e : eng.Step(s)) ev.emplace_back(t, std::move(e));
    }
  };
  run(20 * 60, 0, 4);  // 10 req/s within 25 ms
  EXPECT_TRUE(ev.empty());
  run(10 * 60, 1, 7);  // 10 % 5xx, within 250 ms
  run(30 * 60, 0, 4);
  std::map<std::string, std::vector<AlertEvent::Kind>> by_rule;
  for (const auto& [when, e] : ev) by_rule[e.name].push_back(e.kind);
  const std::vector<AlertEvent::Kind> once = {AlertEvent::kFiring, AlertEvent::kResolved};
  EXPECT_EQ(by_rule.size(), 3u);
  EXPECT_EQ(by_rule["ErrorRateHigh"], once);
  EXPECT_EQ(by_rule["HighErrorRate"], once);
  EXPECT_EQ(by_rule["LatencyP99Spike"], once);
  EXPECT_TRUE(eng.Active().empty());
  EXPECT_EQ(eng.History().size(), 3u);
}

}  // namespace
}  // namespace reqmon::alerts

namespace reqmon::alerts {
namespace {

// The analytics signals (issue #14): utilisation of the estimated capacity, hours to full and
// the anomaly score come in the sample; no figure is no verdict.
TEST(Engine, AnalyticsSignals) {
  AlertEngine eng(Parse(R"(rules:
  - name: NearCapacity
    signal: utilization
    window: 10s
    above: 80
    clear: 70
    for: 5s
    severity: warning
  - name: FullSoon
    signal: hours_to_full
    window: 1s
    below: 8
    clear: 12
    severity: critical
  - name: Odd
    signal: anomaly
    window: 1m
    above: 3.5
    severity: notice
)"));
  int64_t t = kT0;
  for (int i = 0; i < 5; ++i, ++t) eng.Step(Traffic(t, 10, 0));
  EXPECT_FALSE(eng.Value("NearCapacity"));
  EXPECT_FALSE(eng.Value("FullSoon"));
  EXPECT_FALSE(eng.Value("Odd"));
  std::vector<AlertEvent> fired;
  for (int i = 0; i < 20; ++i, ++t) {
    SecondSample s = Traffic(t, 10, 0);
    s.utilization_percent = 90;
    s.hours_to_full = 5;
    if (i == 3) s.anomaly_score = 6.5;
    for (auto& e : eng.Step(s)) fired.push_back(e);
  }
  EXPECT_NEAR(*eng.Value("NearCapacity"), 90, 1e-9);
  EXPECT_NEAR(*eng.Value("FullSoon"), 5, 1e-9);
  EXPECT_NEAR(*eng.Value("Odd"), 6.5, 1e-9);
  std::set<std::string> names;
  for (const auto& e : fired)
    if (e.kind == AlertEvent::kFiring) names.insert(e.name);
  EXPECT_EQ(names, (std::set<std::string>{"NearCapacity", "FullSoon", "Odd"}));
}

}  // namespace
}  // namespace reqmon::alerts
