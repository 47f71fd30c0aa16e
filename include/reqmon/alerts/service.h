// SPDX-License-Identifier: MIT
#pragma once
/// Wiring between the aggregator and the alert engine:
/// - SnapshotFeed turns the aggregator's cumulative snapshots into per-second samples;
/// - AlertService does, once a second: snapshot -> sample -> engine -> monitor_logs.txt lines
///   and notifications;
/// - ReplayClock drives the service with a capture's own time during --replay.

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "reqmon/aggregator/aggregator.h"
#include "reqmon/aggregator/request_log.h"
#include "reqmon/alerts/engine.h"
#include "reqmon/alerts/notifier.h"

namespace reqmon::alerts {

/// Not thread-safe: one caller (the service).
class SnapshotFeed {
 public:
  explicit SnapshotFeed(std::vector<std::string> scope_keys);
  /// The requests, lost events and host figures since the previous call, as the sample of `sec`.
  SecondSample Next(const StatsSnapshot& snap, int64_t sec);

 private:
  std::vector<std::string> keys_;
  std::map<std::string, Counts> prev_;
  uint64_t prev_lost_ = 0;
  std::set<std::string> seen_alive_;  ///< targets that had a live process at some point
};

/// "ALERT firing: HighErrorRate (critical) 5xx share 7.2% over 5m" /
/// "ALERT resolved: HighErrorRate (critical) 5xx share 0.4% over 5m, peak 7.2".
std::string LogLine(const AlertEvent& e);

/// Thread safety: Tick() from one thread (the sampler thread live, the replay loop offline);
/// engine() queries from any.
class AlertService {
 public:
  /// `log` and `notifier` may be null; all must outlive the service.
  AlertService(RuleSet rules, const Aggregator& agg, RequestLog* log, Notifier* notifier);
  /// Evaluates at wall second `sec`; returns the transitions (already logged and queued).
  std::vector<AlertEvent> Tick(int64_t sec);
  const AlertEngine& engine() const { return engine_; }
  /// Sets the log for the alert lines; before the first Tick().
  void SetLog(RequestLog* log) { log_ = log; }
  /// Adds figures computed elsewhere (analytics: utilization, hours_to_full, anomaly) to each
  /// second's sample before the rules see it; before the first Tick().
  void SetEnricher(std::function<void(SecondSample*)> enrich) { enrich_ = std::move(enrich); }

 private:
  const Aggregator& agg_;
  RequestLog* log_;
  Notifier* notifier_;
  AlertEngine engine_;
  SnapshotFeed feed_;
  std::function<void(SecondSample*)> enrich_;
};

/// A TransactionSink in front of the replay's sinks: whenever a transaction belongs to a later
/// (capture) second than the last one, the service ticks for each second in between first.
class ReplayClock : public TransactionSink {
 public:
  ReplayClock(TransactionSink& next, AlertService& service, int64_t wall_offset_ns)
      : next_(next),
        tick_([&service](int64_t sec) { service.Tick(sec); }),
        offset_(wall_offset_ns) {}
  /// Calls `tick` instead (several services ticked in order, e.g. analytics then alerts).
  ReplayClock(TransactionSink& next, std::function<void(int64_t)> tick, int64_t wall_offset_ns)
      : next_(next), tick_(std::move(tick)), offset_(wall_offset_ns) {}
  void OnTransaction(const HttpTransaction& tx) override;
  void OnUnparsed(const UnparsedBytes& u) override { next_.OnUnparsed(u); }
  // No batches here: a tick reads the aggregator, which a batch holds locked.
  /// Ticks the last second, then `extra_s` more (idle) seconds. Call after the last record.
  void Finish(int extra_s = 0);

 private:
  TransactionSink& next_;
  std::function<void(int64_t)> tick_;
  int64_t offset_;
  int64_t last_sec_ = -1;
};

}  // namespace reqmon::alerts
