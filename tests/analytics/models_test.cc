// SPDX-License-Identifier: MIT
// The estimators on synthetic data with known answers: the USL fit recovers lambda, sigma and
// kappa; flat load is refused; trends give the right time to exhaustion; MAD scores outliers.
#include "reqmon/analytics/models.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace reqmon::analytics {
namespace {

// Points on the curve of `m` at the given concurrencies, `per_level` seconds each, with
// multiplicative Gaussian noise on throughput and concurrency.
std::vector<LoadPoint> Ramp(const UslModel& m, const std::vector<double>& levels, int per_level,
                            double noise, uint32_t seed = 7) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0, noise);
  std::vector<LoadPoint> out;
  for (double n : levels)
    for (int i = 0; i < per_level; ++i)
      out.push_back({n * (1 + g(rng)), m.Throughput(n) * (1 + g(rng))});
  return out;
}

TEST(Usl, RecoversKnownParametersExactly) {
  UslModel truth{100, 0.05, 0.002, 0};
  const auto pts = Ramp(truth, {1, 2, 4, 8, 16, 32, 64}, 3, 0);
  const UslFit f = FitUsl(pts);
  ASSERT_TRUE(f.ok()) << f.status;
  EXPECT_NEAR(f.model.lambda, 100, 0.01);
  EXPECT_NEAR(f.model.sigma, 0.05, 1e-4);
  EXPECT_NEAR(f.model.kappa, 0.002, 1e-5);
  EXPECT_GT(f.model.r2, 0.9999);
  EXPECT_EQ(f.levels, 7);
}

TEST(Usl, RecoversKnownParametersFromNoisyData) {
  UslModel truth{250, 0.08, 0.0008, 0};
  const auto pts = Ramp(truth, {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48}, 10, 0.03);
  const UslFit f = FitUsl(pts);
  ASSERT_TRUE(f.ok()) << f.status;
  EXPECT_NEAR(f.model.lambda, 250, 250 * 0.05);
  EXPECT_NEAR(f.model.sigma, 0.08, 0.02);
  EXPECT_NEAR(f.model.kappa, 0.0008, 0.0004);
  // The figures reported from the model: within a few percent of the truth's.
  EXPECT_NEAR(*f.model.PeakThroughput(), *truth.PeakThroughput(), *truth.PeakThroughput() * 0.05);
  EXPECT_NEAR(*f.model.PeakConcurrency(), *truth.PeakConcurrency(),
              *truth.PeakConcurrency() * 0.2);
}

TEST(Usl, ContentionOnlyGivesTheAsymptote) {
  UslModel truth{50, 0.1, 0, 0};
  const UslFit f = FitUsl(Ramp(truth, {1, 2, 4, 6, 8, 12, 16, 32}, 4, 0));
  ASSERT_TRUE(f.ok()) << f.status;
  EXPECT_NEAR(f.model.kappa, 0, 1e-9);
  EXPECT_FALSE(f.model.PeakConcurrency());
  EXPECT_NEAR(*f.model.PeakThroughput(), 500, 1);  // lambda / sigma
}

// A server of W workers that each take D seconds: throughput W/D once N >= W, and the requests
// beyond W wait. The fit's peak must be near W/D (what the live test checks on a real server).
TEST(Usl, HardPlateauOfAWorkerPool) {
  const double w = 4, d = 0.05;
  std::vector<LoadPoint> pts;
  for (double n : {1, 2, 3, 4, 6, 8, 12, 16})
    for (int i = 0; i < 5; ++i) pts.push_back({n, std::min(n, w) / d});
  const UslFit f = FitUsl(pts);
  ASSERT_TRUE(f.ok()) << f.status;
  EXPECT_NEAR(*f.model.PeakThroughput(), w / d, w / d * 0.2);
}

TEST(Usl, RefusesFlatLoad) {
  UslModel truth{100, 0.05, 0.002, 0};
  // Five levels only, however many seconds.
  UslFit f = FitUsl(Ramp(truth, {1, 2, 4, 8, 16}, 50, 0.01));
  EXPECT_EQ(f.status, "insufficient load variation");
  EXPECT_EQ(f.levels, 5);
  EXPECT_FALSE(f.ok());
  // One level with noise around it.
  f = FitUsl(Ramp(truth, {6}, 600, 0.05));
  EXPECT_EQ(f.status, "insufficient load variation");
  EXPECT_LE(f.levels, 2);
  // A single stray second does not make a level.
  auto pts = Ramp(truth, {1, 2, 4, 8, 16}, 5, 0);
  pts.push_back({32, truth.Throughput(32)});
  EXPECT_EQ(FitUsl(pts).status, "insufficient load variation");
  // Idle seconds are no points.
  pts.push_back({0, 0});
  pts.push_back({32, truth.Throughput(32)});
  EXPECT_TRUE(FitUsl(pts).ok());
  EXPECT_EQ(FitUsl({}).status, "insufficient load variation");
}

TEST(Usl, LinearScalingHasNoCapacity) {
  UslModel truth{100, 0, 0, 0};
  const UslFit f = FitUsl(Ramp(truth, {1, 2, 3, 4, 6, 8, 12}, 3, 0));
  EXPECT_EQ(f.status, "no saturation seen");
  EXPECT_FALSE(f.ok());
}

TEST(Usl, LatencyAtLoad) {
  UslModel m{100, 0.05, 0.002, 0};
  // One request in the system (throughput lambda) takes 1 / lambda; latency grows towards the
  // peak; none is expected beyond it.
  EXPECT_NEAR(*m.ConcurrencyAt(100), 1, 1e-9);
  EXPECT_NEAR(*m.LatencyAt(100), 0.01, 1e-9);
  const double peak = *m.PeakThroughput();
  const double n_half = *m.ConcurrencyAt(peak / 2);
  EXPECT_NEAR(m.Throughput(n_half), peak / 2, 1e-6);
  EXPECT_GT(*m.LatencyAt(0.9 * peak), *m.LatencyAt(0.5 * peak));
  EXPECT_FALSE(m.LatencyAt(peak * 1.01));
  EXPECT_NEAR(*m.ConcurrencyAt(peak * (1 - 1e-12)), *m.PeakConcurrency(), 0.5);
}

TEST(Usl, SameInputSameModel) {
  UslModel truth{80, 0.03, 0.001, 0};
  const auto pts = Ramp(truth, {1, 2, 4, 6, 8, 12, 16, 24}, 6, 0.05);
  const UslFit a = FitUsl(pts), b = FitUsl(pts);
  EXPECT_EQ(a.model.lambda, b.model.lambda);
  EXPECT_EQ(a.model.sigma, b.model.sigma);
  EXPECT_EQ(a.model.kappa, b.model.kappa);
}

TEST(Forecast, LinearGrowthGivesTimeToFull) {
  // Disk at 50 % growing 2 %/h, sampled once a minute over 3 hours: full in 25 h.
  std::vector<double> t, y;
  const double now = 1'000'000;
  for (int m = 0; m <= 180; ++m) {
    t.push_back(now - (180 - m) * 60.0);
    y.push_back(50 - 6 + m * (2.0 / 60));
  }
  Exhaustion e = ForecastExhaustion(t, y, 100, now);
  ASSERT_TRUE(e.ok()) << e.status;
  EXPECT_NEAR(e.hours, 25, 0.01);
  EXPECT_NEAR(e.slope_per_hour, 2, 1e-6);
  EXPECT_NEAR(e.r2, 1, 1e-9);
  EXPECT_NEAR(e.window_hours, 3, 1e-9);
}

TEST(Forecast, NoisyGrowthStillFitsWithItsQuality) {
  std::mt19937 rng(3);
  std::normal_distribution<double> g(0, 0.5);
  std::vector<double> t, y;
  const double now = 50'000;
  for (int m = 0; m <= 120; ++m) {
    t.push_back(now - (120 - m) * 60.0);
    y.push_back(40 + m * (5.0 / 60) + g(rng));
  }
  Exhaustion e = ForecastExhaustion(t, y, 100, now);
  ASSERT_TRUE(e.ok()) << e.status;
  EXPECT_NEAR(e.hours, 50.0 / 5, 0.5);  // at now the line is at 50: 50 more at 5/h
  EXPECT_GT(e.r2, 0.9);
  EXPECT_LT(e.r2, 1);
}

TEST(Forecast, RefusesWhatItCannotTell) {
  std::vector<double> t, y;
  const double now = 100'000;
  // Shrinking: no forecast.
  for (int m = 0; m <= 90; ++m) {
    t.push_back(now - (90 - m) * 60.0);
    y.push_back(80 - m * 0.1);
  }
  EXPECT_EQ(ForecastExhaustion(t, y, 100, now).status, "not growing");
  // Noise around a level with a slight upward drift: the line explains nothing.
  std::mt19937 rng(5);
  std::normal_distribution<double> g(0, 5);
  for (size_t i = 0; i < y.size(); ++i) y[i] = 50 + i * 0.001 + g(rng);
  const Exhaustion poor = ForecastExhaustion(t, y, 100, now);
  EXPECT_TRUE(poor.status == "poor fit" || poor.status == "not growing") << poor.status;
  EXPECT_LT(poor.r2, 0.6);
  // Half an hour of history when an hour is needed.
  std::vector<double> ts(t.end() - 30, t.end()), ys(30, 1);
  for (size_t i = 0; i < ys.size(); ++i) ys[i] = 10 + i;
  EXPECT_EQ(ForecastExhaustion(ts, ys, 100, now).status, "insufficient history");
  // Only the last 6 hours count: an old flat stretch does not dilute a recent climb.
  std::vector<double> tl, yl;
  for (int m = 0; m <= 12 * 60; ++m) {
    tl.push_back(now - (12 * 60 - m) * 60.0);
    yl.push_back(m < 6 * 60 ? 10 : 10 + (m - 6 * 60) * (1.0 / 60));
  }
  const Exhaustion recent = ForecastExhaustion(tl, yl, 100, now);
  ASSERT_TRUE(recent.ok()) << recent.status;
  EXPECT_NEAR(recent.slope_per_hour, 1, 0.01);
  EXPECT_NEAR(recent.hours, 84, 0.5);
}

TEST(Baseline, MedianAndMad) {
  auto b = RobustBaseline({1, 2, 3, 4, 100});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->median, 3);
  EXPECT_EQ(b->mad, 1);  // |1-3|,|2-3|,|3-3|,|4-3|,|100-3| -> 2,1,0,1,97 -> 1
  b = RobustBaseline({1, 2, 3, 4});
  EXPECT_EQ(b->median, 2.5);
  EXPECT_FALSE(RobustBaseline({}));
}

TEST(Baseline, ScoresOutliersNotWobbles) {
  std::vector<double> p95;
  std::mt19937 rng(11);
  std::normal_distribution<double> g(100, 5);
  for (int i = 0; i < 60; ++i) p95.push_back(g(rng));
  p95[10] = 900;  // one past outlier does not move the baseline
  const Baseline b = *RobustBaseline(p95);
  EXPECT_NEAR(b.median, 100, 3);
  EXPECT_LT(std::fabs(RobustScore(b, 106, 0.1)), 2);
  EXPECT_GT(RobustScore(b, 200, 0.1), 3.5);
  // A perfectly steady baseline: the floor keeps a small change from scoring sky-high.
  const Baseline flat = *RobustBaseline(std::vector<double>(30, 50));
  EXPECT_EQ(flat.mad, 0);
  EXPECT_LT(RobustScore(flat, 51, 2.5), 1);
  EXPECT_GT(RobustScore(flat, 80, 2.5), 3.5);
}

}  // namespace
}  // namespace reqmon::analytics
