// SPDX-License-Identifier: MIT
#include "reqmon/analytics/models.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>

namespace reqmon::analytics {

namespace {

// Solves the k x k system a x = b (k <= 3) by Gaussian elimination with partial pivoting; false
// when singular.
bool Solve(std::array<std::array<double, 3>, 3> a, std::array<double, 3> b, int k,
           std::array<double, 3>* x) {
  for (int c = 0; c < k; ++c) {
    int p = c;
    for (int r = c + 1; r < k; ++r)
      if (std::fabs(a[r][c]) > std::fabs(a[p][c])) p = r;
    if (std::fabs(a[p][c]) < 1e-300) return false;
    std::swap(a[p], a[c]);
    std::swap(b[p], b[c]);
    for (int r = c + 1; r < k; ++r) {
      const double f = a[r][c] / a[c][c];
      for (int j = c; j < k; ++j) a[r][j] -= f * a[c][j];
      b[r] -= f * b[c];
    }
  }
  for (int c = k - 1; c >= 0; --c) {
    double s = b[c];
    for (int j = c + 1; j < k; ++j) s -= a[c][j] * (*x)[j];
    (*x)[c] = s / a[c][c];
  }
  for (int c = 0; c < k; ++c)
    if (!std::isfinite((*x)[c])) return false;
  return true;
}

double Sse(const UslModel& m, const std::vector<LoadPoint>& pts) {
  double s = 0;
  for (const LoadPoint& p : pts) {
    const double r = p.throughput - m.Throughput(p.concurrency);
    s += r * r;
  }
  return s;
}

// Levenberg-Marquardt on the throughput error, sigma and kappa kept >= 0.
UslModel Refine(UslModel m, const std::vector<LoadPoint>& pts) {
  double sse = Sse(m, pts), mu = 1e-3;
  for (int it = 0; it < 200; ++it) {
    std::array<std::array<double, 3>, 3> jtj{};
    std::array<double, 3> jtr{};
    for (const LoadPoint& p : pts) {
      const double n = p.concurrency;
      const double d = 1 + m.sigma * (n - 1) + m.kappa * n * (n - 1);
      const double f = m.lambda * n / d;
      const std::array<double, 3> j = {n / d, -m.lambda * n * (n - 1) / (d * d),
                                       -m.lambda * n * n * (n - 1) / (d * d)};
      const double r = p.throughput - f;
      for (int a = 0; a < 3; ++a) {
        jtr[a] += j[a] * r;
        for (int b = 0; b < 3; ++b) jtj[a][b] += j[a] * j[b];
      }
    }
    bool improved = false;
    while (mu < 1e12) {
      auto a = jtj;
      for (int d = 0; d < 3; ++d) a[d][d] += mu * std::max(jtj[d][d], 1e-12);
      std::array<double, 3> step{};
      if (!Solve(a, jtr, 3, &step)) {
        mu *= 10;
        continue;
      }
      UslModel t = m;
      t.lambda = m.lambda + step[0];
      t.sigma = std::max(0.0, m.sigma + step[1]);
      t.kappa = std::max(0.0, m.kappa + step[2]);
      if (t.lambda <= 0) {
        mu *= 10;
        continue;
      }
      const double s = Sse(t, pts);
      if (s < sse) {
        const double gain = sse - s;
        m = t;
        sse = s;
        mu = std::max(mu / 10, 1e-12);
        improved = gain > 1e-12 * (sse + 1e-300);
        break;
      }
      mu *= 10;
    }
    if (!improved) break;
  }
  return m;
}

}  // namespace

double UslModel::Throughput(double n) const {
  const double d = 1 + sigma * (n - 1) + kappa * n * (n - 1);
  return d > 0 ? lambda * n / d : 0;
}

std::optional<double> UslModel::PeakConcurrency() const {
  if (sigma >= 1) return 1.0;
  if (kappa <= 0) return std::nullopt;
  return std::sqrt((1 - sigma) / kappa);
}

std::optional<double> UslModel::PeakThroughput() const {
  if (auto n = PeakConcurrency()) return Throughput(*n);
  if (sigma > 0) return lambda / sigma;
  return std::nullopt;
}

std::optional<double> UslModel::ConcurrencyAt(double x) const {
  if (x <= 0 || lambda <= 0) return std::nullopt;
  if (auto peak = PeakThroughput(); peak && x > *peak) return std::nullopt;
  // x (1 + sigma (N-1) + kappa N (N-1)) = lambda N:
  // kappa x N^2 + (x (sigma - kappa) - lambda) N + x (1 - sigma) = 0; the smaller positive root.
  const double a = kappa * x, b = x * (sigma - kappa) - lambda, c = x * (1 - sigma);
  if (a <= 0) {
    if (b >= 0) return std::nullopt;
    return -c / b;
  }
  const double disc = b * b - 4 * a * c;
  if (disc < 0) return PeakConcurrency();  // x within rounding of the peak
  const double q = -0.5 * (b - std::sqrt(disc));  // numerically stable form
  const double r1 = q / a, r2 = c / q;
  const double n = std::min(r1 > 0 ? r1 : INFINITY, r2 > 0 ? r2 : INFINITY);
  if (!std::isfinite(n)) return std::nullopt;
  return n;
}

std::optional<double> UslModel::LatencyAt(double x) const {
  auto n = ConcurrencyAt(x);
  if (!n) return std::nullopt;
  return *n / x;
}

int LoadLevel(double concurrency) {
  if (concurrency < 0.5) return -3;
  return static_cast<int>(std::lround(2 * std::log2(concurrency)));
}

UslFit FitUsl(const std::vector<LoadPoint>& points, int min_levels, int min_points_per_level) {
  UslFit out;
  std::vector<LoadPoint> pts;
  std::map<int, int> levels;
  for (const LoadPoint& p : points) {
    if (!(p.concurrency > 0) || !(p.throughput > 0) || !std::isfinite(p.concurrency) ||
        !std::isfinite(p.throughput))
      continue;
    pts.push_back(p);
    ++levels[LoadLevel(p.concurrency)];
  }
  for (const auto& [level, n] : levels) out.levels += n >= min_points_per_level ? 1 : 0;
  out.points = pts.size();
  if (out.levels < min_levels) {
    out.status = "insufficient load variation";
    return out;
  }
  // Linear least squares on y = N / X = a + b (N - 1) + c N (N - 1), a = 1 / lambda,
  // b = sigma / lambda, c = kappa / lambda, with b, c >= 0: each subset of {b, c} is solved and
  // the feasible one with the smallest throughput error is the start of the refinement.
  bool have = false;
  UslModel best;
  double best_sse = 0;
  for (int mask = 0; mask < 4; ++mask) {
    std::array<int, 3> cols{0, 0, 0};
    int k = 0;
    cols[k++] = 0;
    if (mask & 1) cols[k++] = 1;
    if (mask & 2) cols[k++] = 2;
    std::array<std::array<double, 3>, 3> ata{};
    std::array<double, 3> aty{};
    for (const LoadPoint& p : pts) {
      const double n = p.concurrency;
      const std::array<double, 3> basis = {1, n - 1, n * (n - 1)};
      const double y = n / p.throughput;
      for (int i = 0; i < k; ++i) {
        aty[i] += basis[cols[i]] * y;
        for (int j = 0; j < k; ++j) ata[i][j] += basis[cols[i]] * basis[cols[j]];
      }
    }
    std::array<double, 3> x{};
    if (!Solve(ata, aty, k, &x)) continue;
    std::array<double, 3> coef{};
    bool feasible = true;
    for (int i = 0; i < k; ++i) {
      coef[cols[i]] = x[i];
      if (x[i] < 0 || (i == 0 && x[i] <= 0)) feasible = false;
    }
    if (!feasible) continue;
    UslModel m;
    m.lambda = 1 / coef[0];
    m.sigma = coef[1] / coef[0];
    m.kappa = coef[2] / coef[0];
    const double sse = Sse(m, pts);
    if (!have || sse < best_sse) {
      have = true;
      best = m;
      best_sse = sse;
    }
  }
  if (!have) {
    out.status = "insufficient load variation";
    return out;
  }
  UslModel m = Refine(best, pts);
  // A coherency term too small to bend the curve within the observed load is noise: without it
  // the model says "approaches lambda / sigma" instead of inventing a peak far beyond the data.
  double max_n = 0;
  for (const LoadPoint& p : pts) max_n = std::max(max_n, p.concurrency);
  if (m.kappa * max_n * max_n < 1e-6 * (1 + m.sigma * max_n)) m.kappa = 0;
  if (m.sigma * max_n < 1e-9) m.sigma = 0;
  double mean = 0;
  for (const LoadPoint& p : pts) mean += p.throughput;
  mean /= static_cast<double>(pts.size());
  double sst = 0;
  for (const LoadPoint& p : pts) sst += (p.throughput - mean) * (p.throughput - mean);
  m.r2 = sst > 0 ? 1 - Sse(m, pts) / sst : 0;
  out.model = m;
  // Neither contention nor coherency: throughput still grows linearly, no capacity to report.
  out.status = m.PeakThroughput() && *m.PeakThroughput() < 1e3 * m.lambda ? "ok"
                                                                         : "no saturation seen";
  return out;
}

std::optional<LineFit> FitLine(const std::vector<double>& t, const std::vector<double>& y) {
  const size_t n = std::min(t.size(), y.size());
  if (n < 3) return std::nullopt;
  double mt = 0, my = 0;
  for (size_t i = 0; i < n; ++i) {
    mt += t[i];
    my += y[i];
  }
  mt /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double stt = 0, sty = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    stt += (t[i] - mt) * (t[i] - mt);
    sty += (t[i] - mt) * (y[i] - my);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (stt <= 0) return std::nullopt;
  LineFit f;
  f.points = n;
  f.slope = sty / stt;
  f.intercept = my - f.slope * mt;
  f.r2 = syy > 0 ? (sty * sty) / (stt * syy) : 0;
  return f;
}

Exhaustion ForecastExhaustion(const std::vector<double>& t, const std::vector<double>& y,
                              double limit, double now, double min_span_s, double max_span_s,
                              double min_r2) {
  Exhaustion e;
  std::vector<double> tt, yy;
  for (size_t i = 0; i < std::min(t.size(), y.size()); ++i) {
    if (t[i] < now - max_span_s || t[i] > now || !std::isfinite(y[i])) continue;
    tt.push_back((t[i] - now) / 3600.0);  // hours before now: well conditioned
    yy.push_back(y[i]);
  }
  if (!tt.empty()) e.window_hours = -*std::min_element(tt.begin(), tt.end());
  e.points = tt.size();
  if (tt.size() < 3 || e.window_hours * 3600 < min_span_s * 0.98) {
    e.status = "insufficient history";
    return e;
  }
  auto f = FitLine(tt, yy);
  if (!f) {
    e.status = "insufficient history";
    return e;
  }
  e.slope_per_hour = f->slope;
  e.r2 = f->r2;
  const double at_now = f->intercept;  // t = 0 is now
  if (f->slope <= 0) {
    e.status = "not growing";
    return e;
  }
  if (f->r2 < min_r2) {
    e.status = "poor fit";
    return e;
  }
  if (at_now >= limit) {
    e.status = "at limit";
    return e;
  }
  e.status = "ok";
  e.hours = (limit - at_now) / f->slope;
  return e;
}

std::optional<Baseline> RobustBaseline(std::vector<double> values) {
  if (values.empty()) return std::nullopt;
  auto median = [](std::vector<double>& v) {
    const size_t n = v.size();
    std::nth_element(v.begin(), v.begin() + n / 2, v.end());
    double m = v[n / 2];
    if (n % 2 == 0) m = (m + *std::max_element(v.begin(), v.begin() + n / 2)) / 2;
    return m;
  };
  Baseline b;
  b.points = values.size();
  b.median = median(values);
  for (double& v : values) v = std::fabs(v - b.median);
  b.mad = median(values);
  return b;
}

double RobustScore(const Baseline& b, double x, double floor) {
  const double scale = 1.4826 * std::max(b.mad, floor);
  if (scale <= 0) return 0;
  return (x - b.median) / scale;
}

}  // namespace reqmon::analytics
