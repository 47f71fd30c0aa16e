// SPDX-License-Identifier: MIT
#pragma once
/// The estimators behind GET /analytics, pure functions of their samples (no clock, no state):
/// - the Universal Scalability Law fitted to (concurrency, throughput) points (capacity);
/// - a least-squares line through a time series (time to exhaustion);
/// - a robust baseline, median and MAD, and the score of a new value against it (anomalies).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace reqmon::analytics {

// --- Universal Scalability Law -------------------------------------------------------------

/// One second of load: mean requests in the system N (waiting plus being served, by Little's law:
/// the time the second's requests spent in the system divided by the second) and throughput X
/// (requests completed per second).
struct LoadPoint {
  double concurrency = 0;
  double throughput = 0;
};

/// X(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1)).
struct UslModel {
  double lambda = 0;  ///< throughput of one request in the system alone (requests/s)
  double sigma = 0;   ///< contention (serialised share), >= 0
  double kappa = 0;   ///< coherency (crosstalk) cost, >= 0
  double r2 = 0;      ///< coefficient of determination of the fit, on throughput

  double Throughput(double n) const;
  /// The concurrency at which throughput peaks: sqrt((1 - sigma) / kappa); 1 when sigma >= 1;
  /// nullopt when kappa = 0 (throughput only approaches lambda / sigma).
  std::optional<double> PeakConcurrency() const;
  /// The peak throughput (kappa > 0 or sigma >= 1), or the asymptote lambda / sigma (kappa = 0);
  /// nullopt when neither contention nor coherency was seen (sigma = kappa = 0).
  std::optional<double> PeakThroughput() const;
  /// Concurrency needed for throughput x on the rising side of the curve (nullopt beyond peak).
  std::optional<double> ConcurrencyAt(double x) const;
  /// Expected response time (waiting plus serving, seconds) at throughput x: N(x) / x.
  std::optional<double> LatencyAt(double x) const;
};

struct UslFit {
  /// "ok"; "insufficient load variation" (fewer than min_levels distinct load levels);
  /// "no saturation seen" (the fit found neither contention nor coherency: no finite capacity).
  std::string status;
  bool ok() const { return status == "ok"; }
  UslModel model;     ///< set when status is "ok" or "no saturation seen"
  int levels = 0;     ///< distinct load levels among the points
  size_t points = 0;  ///< points used
};

/// The load level of a concurrency: half-octave bins (1, 1.4, 2, 2.8, 4, 5.7, 8 ...); every
/// concurrency below 0.5 is one level. Used to count "distinct load levels".
int LoadLevel(double concurrency);

/// Fits the USL by least squares. Points with no throughput or no concurrency are ignored. A
/// level counts when at least `min_points_per_level` points fall in it; fewer than `min_levels`
/// levels give status "insufficient load variation" and no model. The fit is linear least squares
/// on N/X = (1 + sigma (N-1) + kappa N (N-1)) / lambda with sigma, kappa >= 0 (every subset of
/// the two terms is tried; the one with the least squared throughput error wins), refined by
/// Gauss-Newton steps on the throughput error. Deterministic: the same points give the same model.
UslFit FitUsl(const std::vector<LoadPoint>& points, int min_levels = 6,
              int min_points_per_level = 2);

// --- least squares trend ---------------------------------------------------------------------

/// y = intercept + slope * t.
struct LineFit {
  double slope = 0, intercept = 0, r2 = 0;
  size_t points = 0;
};
/// Ordinary least squares; nullopt with fewer than 3 points or no spread in t.
std::optional<LineFit> FitLine(const std::vector<double>& t, const std::vector<double>& y);

/// A forecast of when a growing quantity reaches its limit.
struct Exhaustion {
  /// "ok"; "insufficient history" (less than min_span of samples); "not growing" (slope <= 0);
  /// "poor fit" (r2 below min_r2: the trend does not explain the samples); "at limit".
  std::string status;
  bool ok() const { return status == "ok"; }
  double hours = 0;        ///< hours until the fitted line reaches `limit` from now (status ok)
  double slope_per_hour = 0;
  double r2 = 0;
  double window_hours = 0;  ///< span of the samples used
  size_t points = 0;
};
/// Fits y over t (seconds) and projects when it reaches `limit`, counted from `now`. Samples older
/// than now - max_span_s are ignored; a span under min_span_s gives "insufficient history".
Exhaustion ForecastExhaustion(const std::vector<double>& t, const std::vector<double>& y,
                              double limit, double now, double min_span_s = 3600,
                              double max_span_s = 6 * 3600, double min_r2 = 0.6);

// --- robust baseline -----------------------------------------------------------------------

struct Baseline {
  double median = 0;
  double mad = 0;  ///< median absolute deviation (raw, not scaled)
  size_t points = 0;
};
/// Median and MAD; nullopt for no values.
std::optional<Baseline> RobustBaseline(std::vector<double> values);
/// The robust z-score of x: (x - median) / (1.4826 * max(MAD, floor)), where `floor` keeps a
/// perfectly steady baseline (MAD 0) from turning every wobble into an anomaly.
double RobustScore(const Baseline& b, double x, double floor);

}  // namespace reqmon::analytics
