// SPDX-License-Identifier: MIT
#include "reqmon/aggregator/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace reqmon {
namespace {

double Exact(const std::vector<uint64_t>& sorted, double q) {
  size_t rank = static_cast<size_t>(std::ceil(q * sorted.size()));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]);
}

void CheckAgainstExact(std::vector<uint64_t> values) {
  auto h = std::make_unique<LogHistogram>();
  for (uint64_t v : values) h->Record(v);
  std::sort(values.begin(), values.end());
  for (double q : {0.01, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0}) {
    const double exact = Exact(values, q);
    const double got = h->Quantile(q);
    EXPECT_LE(std::fabs(got - exact), exact * 0.01) << "q=" << q << " exact=" << exact;
  }
  EXPECT_EQ(h->min(), values.front());
  EXPECT_EQ(h->max(), values.back());
  EXPECT_EQ(h->count(), values.size());
}

TEST(LogHistogramTest, RelativeErrorBoundOnLogNormalData) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> d(std::log(2e6), 1.5);  // around 2 ms in ns
  std::vector<uint64_t> v;
  for (int i = 0; i < 200000; ++i) v.push_back(static_cast<uint64_t>(d(rng)) + 1);
  CheckAgainstExact(v);
}

TEST(LogHistogramTest, RelativeErrorBoundOnUniformWideRange) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20; ++round) {
    std::uniform_int_distribution<int> exp_d(0, 36);
    std::vector<uint64_t> v;
    const int n = 1 + static_cast<int>(rng() % 5000);
    for (int i = 0; i < n; ++i) {
      const uint64_t hi = uint64_t{1} << exp_d(rng);
      v.push_back(std::uniform_int_distribution<uint64_t>(0, hi)(rng));
    }
    CheckAgainstExact(v);
  }
}

TEST(LogHistogramTest, SmallValuesAreExact) {
  LogHistogram h;
  for (uint64_t v = 0; v < 64; ++v) h.Record(v);
  EXPECT_EQ(h.Quantile(0.5), 31.0);
  EXPECT_EQ(h.Quantile(1.0), 63.0);
}

TEST(LogHistogramTest, BucketsCoverTheirValues) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t v = rng() >> (rng() % 64);
    const size_t idx = LogHistogram::Index(v);
    ASSERT_LT(idx, LogHistogram::kBuckets);
    const uint64_t c = std::min(v, LogHistogram::kMaxValue);
    EXPECT_LE(LogHistogram::BucketLow(idx), c);
    EXPECT_LT(c, LogHistogram::BucketLow(idx) + LogHistogram::BucketWidth(idx));
  }
}

TEST(LogHistogramTest, EmptyResetAndMerge) {
  LogHistogram a, b;
  EXPECT_EQ(a.Quantile(0.5), 0.0);
  a.Record(1000);
  b.Record(3000);
  a.Merge(b);
  EXPECT_EQ(a.count(), 2u);
  EXPECT_EQ(a.min(), 1000u);
  EXPECT_EQ(a.max(), 3000u);
  a.Reset();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.Quantile(0.99), 0.0);
}

}  // namespace
}  // namespace reqmon
