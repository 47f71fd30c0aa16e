// SPDX-License-Identifier: MIT
#pragma once
/// Analytics over what the aggregator publishes: capacity (the Universal Scalability Law fitted
/// online to per-second load), time to exhaustion (memory, disk, request rate against capacity)
/// and per-route anomalies against robust baselines. GET /analytics renders it (docs/api.md).
///
/// Determinism: the analyzer has no clock. Step(second) takes one second's sample; the same
/// samples give the same figures (tests and --replay drive it with capture time, live mode with
/// the wall clock once a second).

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reqmon/analytics/models.h"

namespace reqmon {
struct StatsSnapshot;
class Aggregator;
}

namespace reqmon::analytics {

/// Requests of one scope completed during one second.
struct ScopeLoad {
  double requests = 0;         ///< complete requests
  double in_system_s = 0;      ///< their time in the system: serving plus queue time, summed
  double serving_s = 0;        ///< serving time alone, summed
};

/// One route's requests during one second.
struct RouteSecond {
  uint64_t requests = 0, errors = 0;      ///< errors: 5xx
  std::vector<uint64_t> duration_buckets;  ///< non-cumulative, kPromBucketsSeconds + +Inf
};

/// What the analyzer is fed once a second.
struct Second {
  int64_t sec = 0;  ///< wall-clock second (Unix time)
  ScopeLoad host;
  std::map<std::string, ScopeLoad> targets;  ///< by target name
  std::map<std::string, RouteSecond> routes;  ///< "GET /users/{id}"; only routes with traffic
  bool has_system = false;
  double memory_percent = 0;
  uint64_t disk_used_bytes = 0, disk_free_bytes = 0;
};

struct AnalyzerOptions {
  size_t load_window_s = 3600;       ///< per-second load points kept for the fit
  int min_levels = 6;                ///< distinct load levels needed for a capacity estimate
  int min_points_per_level = 2;      ///< seconds a level needs to count
  int utilization_window_s = 10;     ///< "now": mean throughput over these seconds
  double forecast_min_hours = 1;     ///< least squares over at least ...
  double forecast_max_hours = 6;     ///< ... and at most this much history
  double forecast_min_r2 = 0.6;      ///< an acceptable fit
  size_t baseline_minutes = 60;      ///< sliding window of the per-route baselines
  size_t baseline_min_minutes = 10;  ///< minutes a baseline needs before it flags anything
  uint64_t anomaly_min_requests = 20;  ///< a minute with fewer requests is no evidence
  double anomaly_threshold = 3.5;    ///< robust z-score that flags an anomaly
  size_t max_targets = 16;           ///< scopes fitted besides the host
  int refit_every_s = 5;             ///< the model is refitted this often (a fit of an hour of
                                     ///< points takes a few ms); utilisation is updated each second
  size_t max_routes = 200;           ///< routes with baselines
};

/// One scope's capacity.
struct CapacityEstimate {
  UslFit fit;
  double now_rps = 0;                    ///< mean throughput over the utilisation window
  std::optional<double> capacity_rps;    ///< status ok: the peak (or asymptote) of the model
  std::optional<double> concurrency_at_peak;
  std::optional<double> utilization;     ///< now_rps / capacity_rps
  std::optional<double> latency_now_ms;  ///< expected response time at now_rps
};

struct Forecast {
  std::string resource;  ///< "memory", "disk", "request_rate"
  std::string scope;     ///< "host" or a target name
  Exhaustion e;
  double current = 0, limit = 0;
  std::string unit;      ///< "percent", "bytes", "requests_per_second"
};

struct Anomaly {
  std::string route;
  std::string signal;  ///< "latency_p95_ms" or "error_share"
  int64_t minute = 0;  ///< Unix time of the minute's start
  double value = 0, baseline = 0, mad = 0, score = 0;
  uint64_t requests = 0;
};

/// Thread safety: Step() from one thread; the queries from any (one mutex).
class Analyzer {
 public:
  explicit Analyzer(AnalyzerOptions opts = {});
  ~Analyzer();
  Analyzer(const Analyzer&) = delete;
  Analyzer& operator=(const Analyzer&) = delete;

  /// Takes one second's sample. Samples older than the last are ignored.
  void Step(const Second& s);

  CapacityEstimate Capacity(const std::string& target = "") const;  ///< "" = host
  std::vector<Forecast> Forecasts() const;
  std::vector<Anomaly> Anomalies() const;  ///< of the last complete minute
  /// Alert signals: the host's utilisation in %, the fewest hours to full of the ok forecasts,
  /// the largest anomaly score (each nullopt when there is none).
  std::optional<double> UtilizationPercent() const;
  std::optional<double> HoursToFull() const;
  std::optional<double> AnomalyScore() const;

  /// GET /analytics (docs/api.md).
  nlohmann::ordered_json Json() const;
  /// reqmon_capacity_* and reqmon_forecast_* gauges, reqmon_anomaly_score.
  std::string PrometheusText() const;

 private:
  struct State;
  std::unique_ptr<State> st_;
  AnalyzerOptions opts_;
  mutable std::mutex mu_;
};

/// Turns the aggregator's cumulative snapshots into per-second samples. Not thread-safe.
class SnapshotDiffer {
 public:
  Second Next(const StatsSnapshot& snap, int64_t sec);

 private:
  struct Cum {
    double requests = 0, in_system_s = 0, serving_s = 0;
  };
  std::map<std::string, Cum> prev_scopes_;
  struct RouteCum {
    uint64_t requests = 0, errors = 0;
    std::vector<uint64_t> buckets;
  };
  std::map<std::string, RouteCum> prev_routes_;
  bool first_ = true;
};

/// The analyzer fed once a second from an aggregator's snapshots (live: the sampler thread;
/// --replay: the capture's own seconds). Tick() from one thread; analyzer() from any.
class AnalyticsService {
 public:
  explicit AnalyticsService(const Aggregator& agg, AnalyzerOptions opts = {})
      : agg_(agg), analyzer_(opts) {}
  void Tick(int64_t sec);
  const Analyzer& analyzer() const { return analyzer_; }

 private:
  const Aggregator& agg_;
  SnapshotDiffer differ_;
  Analyzer analyzer_;
};

/// "about 38 req/s at most; now 31 req/s, 82 %", "disk full in about 5 h": the figures in words.
std::string CapacitySentence(const CapacityEstimate& c);
std::string ForecastSentence(const Forecast& f);

}  // namespace reqmon::analytics
