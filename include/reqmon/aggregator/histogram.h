// SPDX-License-Identifier: MIT
#pragma once
/// Fixed-memory log-bucketed latency histogram (HDR-style: exponent + top 6 mantissa bits).

#include <array>
#include <cstddef>
#include <cstdint>

namespace reqmon {

/// Records unsigned integer values (reqmon records nanoseconds) into 2240 buckets: values below
/// 64 are exact, larger values fall into buckets whose width is 1/64 of their lower bound, so a
/// quantile reported as the bucket midpoint is within 0.8% of the exact order statistic.
/// Values >= 2^40 (about 1100 s in ns) are clamped into the top bucket. 17.5 KiB, no allocation.
/// Not thread-safe: the owner synchronises.
class LogHistogram {
 public:
  static constexpr int kSubBits = 6;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  static constexpr int kMaxExp = 40;
  static constexpr uint64_t kMaxValue = (uint64_t{1} << kMaxExp) - 1;
  static constexpr size_t kBuckets = kSub + (kMaxExp - kSubBits) * kSub;

  /// Bucket index of v (clamped to kMaxValue).
  static size_t Index(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    if (v > kMaxValue) v = kMaxValue;
    const int e = 63 - __builtin_clzll(v);
    return static_cast<size_t>(kSub + static_cast<uint64_t>(e - kSubBits) * kSub +
                               ((v >> (e - kSubBits)) & (kSub - 1)));
  }
  /// Smallest value of bucket i.
  static uint64_t BucketLow(size_t i);
  /// Number of integer values in bucket i.
  static uint64_t BucketWidth(size_t i);

  void Record(uint64_t v) {
    ++counts_[Index(v)];
    ++count_;
    sum_ += v;
    if (v < min_) min_ = v;
    if (v > max_) max_ = v;
  }
  /// The q-quantile (0 < q <= 1) by nearest rank (the ceil(q*n)-th smallest value), reported as
  /// the midpoint of its bucket clamped to [min, max]. 0 when empty.
  double Quantile(double q) const;
  /// Several quantiles in one pass; qs must be ascending.
  void Quantiles(const double* qs, size_t n, double* out) const;
  void Reset();
  void Merge(const LogHistogram& o);

  uint64_t count() const { return count_; }
  uint64_t sum() const { return sum_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace reqmon
