// SPDX-License-Identifier: MIT
#pragma once
/// The alert engine: rules evaluated once a second over per-second signal samples, with the
/// state machine of Prometheus' alerting rules (inactive -> pending -> firing -> resolved) plus
/// hysteresis (a firing or pending alert holds until the value crosses `clear`, not `above`).
///
/// Determinism: the engine has no clock of its own. Step(sample) stores the sample and evaluates
/// every rule at sample.sec, so the same samples give the same alerts (tests and --replay drive
/// it with capture time; live mode with the wall clock, once a second).
///
/// History: a per-second ring (15 minutes) and a per-minute ring (12 hours) per scope; windows
/// up to 15 minutes are summed from seconds, longer ones from whole minutes.

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "reqmon/alerts/rules.h"

namespace reqmon::alerts {

/// Request counts of one second (or a sum of seconds) for one scope.
struct Counts {
  static constexpr size_t kBuckets = 14;     ///< kPromBucketsSeconds + the +Inf bucket
  uint64_t requests = 0;                     ///< complete requests
  uint64_t errors = 0;                       ///< of which 5xx
  std::array<uint64_t, kBuckets> buckets{};  ///< non-cumulative duration buckets (may be all 0)
  void Add(const Counts& o);
};

/// What the engine is fed once a second.
struct SecondSample {
  int64_t sec = 0;                       ///< wall-clock second (Unix time) the sample closes
  Counts total;                          ///< requests completed during the second
  std::map<std::string, Counts> scoped;  ///< "route:GET /a", "target:pid 12", "process:nginx"
  bool has_system = false;               ///< the host figures below are set
  double cpu_percent = 0, memory_percent = 0, disk_percent = 0;
  uint64_t disk_used_bytes = 0, disk_free_bytes = 0;
  uint64_t lost_events = 0;                 ///< lost during the second
  std::map<std::string, int> targets_down;  ///< target name -> 1 when its processes are all gone
  /// Analytics (src/analytics), when it runs and has a figure: the host's utilisation of its
  /// estimated capacity (%), the fewest hours to exhaustion, the largest anomaly score.
  std::optional<double> utilization_percent, hours_to_full, anomaly_score;
};

enum class AlertState { kInactive, kPending, kFiring };

/// A transition worth telling someone about.
struct AlertEvent {
  enum Kind { kFiring, kResolved } kind = kFiring;
  std::string name;
  Severity severity = Severity::kWarning;
  std::map<std::string, std::string> labels;  ///< alertname, severity, scope
  std::string summary;                        ///< rendered with the current value
  int64_t started = 0;                        ///< when it began firing (Unix s)
  int64_t ended = 0;                          ///< resolved: when (Unix s)
  double value = 0, peak = 0;
};

struct ActiveAlert {
  std::string name;
  Severity severity = Severity::kWarning;
  AlertState state = AlertState::kPending;
  int64_t since = 0;  ///< pending: since when the condition holds; firing: since when it fires
  double value = 0, peak = 0;
  std::string summary;
  std::map<std::string, std::string> labels;
};

struct HistoryEntry {
  std::string name;
  Severity severity = Severity::kWarning;
  int64_t started = 0, ended = 0;
  double peak = 0;
  std::string summary;
  std::map<std::string, std::string> labels;
};

/// "{{value}}" replaced: 7.2, 0.034, 1250.
std::string RenderSummary(const std::string& tmpl, double value, const Rule& r);
std::string FormatValue(double v);

/// Thread safety: Step() from one thread (the sampler or the replay loop); the queries from any.
class AlertEngine {
 public:
  explicit AlertEngine(RuleSet rules, size_t history_capacity = 100);
  ~AlertEngine();
  AlertEngine(const AlertEngine&) = delete;
  AlertEngine& operator=(const AlertEngine&) = delete;

  /// Stores the sample and evaluates every rule at sample.sec; returns the transitions (firing,
  /// resolved) in rule order. A sample older than the last one is ignored.
  std::vector<AlertEvent> Step(const SecondSample& sample);
  /// The value a rule has now (nullopt: no verdict, e.g. too few requests). For tests.
  std::optional<double> Value(const std::string& rule_name) const;

  std::vector<ActiveAlert> Active() const;    ///< pending and firing, in rule order
  std::vector<HistoryEntry> History() const;  ///< resolved alerts, newest first
  const RuleSet& rules() const { return rules_; }
  /// GET /alerts (docs/api.md).
  nlohmann::ordered_json AlertsJson() const;
  /// reqmon_alerts{alertname,alertstate,severity,...} 1 per active alert (Prometheus' ALERTS).
  std::string PrometheusText() const;
  /// The scope keys ("route:GET /a") the rules need in SecondSample::scoped.
  std::vector<std::string> ScopeKeys() const;

 private:
  struct Store;
  struct RuleState;
  struct Verdict;
  /// The rule's value at `now` and whether its condition enters / holds (no value: no verdict).
  Verdict EvaluateLocked(const Rule& r, int64_t now) const;

  RuleSet rules_;
  size_t history_capacity_;
  mutable std::mutex mu_;
  std::unique_ptr<Store> store_;
  std::vector<RuleState> states_;
  std::deque<HistoryEntry> history_;
  int64_t last_sec_ = -1;
};

}  // namespace reqmon::alerts
