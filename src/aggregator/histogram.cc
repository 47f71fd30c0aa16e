// SPDX-License-Identifier: MIT
#include "reqmon/aggregator/histogram.h"

#include <algorithm>
#include <cmath>

namespace reqmon {

uint64_t LogHistogram::BucketLow(size_t i) {
  if (i < kSub) return i;
  const uint64_t j = i - kSub;
  const uint64_t shift = j / kSub;
  return (kSub + j % kSub) << shift;
}

uint64_t LogHistogram::BucketWidth(size_t i) {
  if (i < kSub) return 1;
  return uint64_t{1} << ((i - kSub) / kSub);
}

double LogHistogram::Quantile(double q) const {
  double out = 0;
  Quantiles(&q, 1, &out);
  return out;
}

void LogHistogram::Quantiles(const double* qs, size_t n, double* out) const {
  if (count_ == 0) {
    std::fill(out, out + n, 0.0);
    return;
  }
  size_t qi = 0;
  uint64_t cum = 0;
  auto rank_of = [&](double q) {
    double r = std::ceil(q * static_cast<double>(count_));
    if (r < 1) r = 1;
    if (r > static_cast<double>(count_)) r = static_cast<double>(count_);
    return static_cast<uint64_t>(r);
  };
  for (size_t i = 0; i < kBuckets && qi < n; ++i) {
    if (counts_[i] == 0) continue;
    cum += counts_[i];
    while (qi < n && cum >= rank_of(qs[qi])) {
      const double mid = static_cast<double>(BucketLow(i)) +
                         static_cast<double>(BucketWidth(i) - 1) / 2.0;
      out[qi] = std::clamp(mid, static_cast<double>(min()), static_cast<double>(max_));
      ++qi;
    }
  }
  for (; qi < n; ++qi) out[qi] = static_cast<double>(max_);
}

void LogHistogram::Reset() {
  if (count_ == 0) return;
  counts_.fill(0);
  count_ = sum_ = max_ = 0;
  min_ = UINT64_MAX;
}

void LogHistogram::Merge(const LogHistogram& o) {
  for (size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
}

}  // namespace reqmon
