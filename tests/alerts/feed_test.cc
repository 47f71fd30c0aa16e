// SPDX-License-Identifier: MIT
// SnapshotFeed: the aggregator's cumulative snapshots become per-second samples.
#include <gtest/gtest.h>

#include "reqmon/alerts/service.h"

namespace reqmon::alerts {
namespace {

StatsSnapshot Snap(uint64_t ok, uint64_t errors, uint64_t lost) {
  StatsSnapshot s;
  s.total.count = ok + errors;
  s.total.classes[1] = ok;
  s.total.classes[4] = errors;
  s.lost_events = lost;
  RouteSummary r;
  r.method = "GET";
  r.route = "/api/{id}";
  r.s.count = ok + errors;
  r.s.classes[4] = errors;
  r.duration_buckets[3] = ok + errors;
  s.routes.push_back(r);
  return s;
}

TEST(SnapshotFeed, TurnsCumulativeCountsIntoPerSecondDeltas) {
  SnapshotFeed feed({"route:GET /api/{id}", "route:GET /other"});
  SecondSample a = feed.Next(Snap(90, 10, 0), 100);
  EXPECT_EQ(a.sec, 100);
  EXPECT_EQ(a.total.requests, 100u);
  EXPECT_EQ(a.total.errors, 10u);
  EXPECT_EQ(a.total.buckets[3], 100u);
  SecondSample b = feed.Next(Snap(120, 30, 5), 101);
  EXPECT_EQ(b.total.requests, 50u);
  EXPECT_EQ(b.total.errors, 20u);
  EXPECT_EQ(b.scoped.at("route:GET /api/{id}").requests, 50u);
  EXPECT_EQ(b.scoped.at("route:GET /api/{id}").buckets[3], 50u);
  EXPECT_EQ(b.scoped.at("route:GET /other").requests, 0u);
  EXPECT_EQ(b.lost_events, 5u);
  EXPECT_FALSE(b.has_system);
}

TEST(SnapshotFeed, ATargetWhoseProcessesAreAllGoneIsDown) {
  SnapshotFeed feed({});
  StatsSnapshot s;
  s.identification = true;
  s.target_names = {"other", "pid 100", "comm gunicorn"};
  s.system.valid = true;
  s.system.cpu_percent = 42;
  ProcessSample p{100, "nginx", 0, 0, true}, q{200, "gunicorn", 0, 0, true};
  s.system.processes = {p, q};
  s.sampled_identities[100].target = 0;
  s.sampled_identities[200].target = 1;
  SecondSample a = feed.Next(s, 1);
  EXPECT_TRUE(a.has_system);
  EXPECT_EQ(a.cpu_percent, 42);
  EXPECT_EQ(a.targets_down, (std::map<std::string, int>{{"pid 100", 0}, {"comm gunicorn", 0}}));
  // nginx is gone; gunicorn was replaced by a successor (pid 300) matching its target.
  s.system.processes = {ProcessSample{300, "gunicorn", 0, 0, true}};
  s.sampled_identities.clear();
  s.sampled_identities[300].target = 1;
  SecondSample b = feed.Next(s, 2);
  EXPECT_EQ(b.targets_down, (std::map<std::string, int>{{"pid 100", 1}, {"comm gunicorn", 0}}));

  AlertEngine eng([] {
    RuleSet rs;
    std::vector<std::string> errors;
    ParseRules("rules:\n  - name: Down\n    signal: process_down\n    above: 0\n", "t", &rs,
               &errors);
    return rs;
  }());
  EXPECT_TRUE(eng.Step(a).empty());
  auto ev = eng.Step(b);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, AlertEvent::kFiring);
  EXPECT_EQ(ev[0].value, 1);
}

}  // namespace
}  // namespace reqmon::alerts
