// SPDX-License-Identifier: MIT
#include "reqmon/alerts/service.h"

#include <algorithm>

namespace reqmon::alerts {

namespace {

uint64_t Sub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

template <typename Buckets>
void AddBuckets(Counts* c, const Buckets& b) {
  for (size_t i = 0; i < std::min(b.size(), Counts::kBuckets); ++i) c->buckets[i] += b[i];
}

}  // namespace

SnapshotFeed::SnapshotFeed(std::vector<std::string> scope_keys) : keys_(std::move(scope_keys)) {}

SecondSample SnapshotFeed::Next(const StatsSnapshot& snap, int64_t sec) {
  // Cumulative counts per scope, from the snapshot.
  std::map<std::string, Counts> cur;
  Counts& total = cur[""];
  total.requests = snap.total.count;
  total.errors = snap.total.classes[4];
  for (const RouteSummary& r : snap.routes) AddBuckets(&total, r.duration_buckets);
  for (const std::string& key : keys_) {
    Counts& c = cur[key];
    const size_t colon = key.find(':');
    const std::string kind = key.substr(0, colon), value = key.substr(colon + 1);
    if (kind == "route") {
      for (const RouteSummary& r : snap.routes) {
        if (r.method + " " + r.route != value) continue;
        c.requests += r.s.count;
        c.errors += r.s.classes[4];
        AddBuckets(&c, r.duration_buckets);
      }
    } else if (kind == "target") {
      for (const TargetSummary& t : snap.targets) {
        if (t.name != value) continue;
        c.requests += t.s.count;
        c.errors += t.s.classes[4];
        AddBuckets(&c, t.duration_buckets);
      }
    } else if (kind == "process") {
      for (const ProcessSummary& p : snap.processes) {
        if (p.comm != value) continue;
        c.requests += p.s.count;
        c.errors += p.s.classes[4];
      }
    }
  }
  SecondSample s;
  s.sec = sec;
  for (const auto& [key, c] : cur) {
    const Counts& p = prev_[key];
    Counts d;
    d.requests = Sub(c.requests, p.requests);
    d.errors = std::min(Sub(c.errors, p.errors), d.requests);
    for (size_t i = 0; i < Counts::kBuckets; ++i) d.buckets[i] = Sub(c.buckets[i], p.buckets[i]);
    if (key.empty())
      s.total = d;
    else
      s.scoped[key] = d;
  }
  prev_ = std::move(cur);
  s.lost_events = Sub(snap.lost_events, prev_lost_);
  prev_lost_ = std::max(prev_lost_, snap.lost_events);
  if (snap.system.valid) {
    s.has_system = true;
    s.cpu_percent = snap.system.cpu_percent;
    s.memory_percent = snap.system.memory_percent;
    s.disk_percent = snap.system.disk_percent;
    s.disk_used_bytes = snap.system.disk_used_bytes;
    s.disk_free_bytes = snap.system.disk_free_bytes;
  }
  // process_down: a target that had a live process and has none now (no successor matched it).
  if (snap.identification) {
    auto name = [&](int target) -> std::string {
      const size_t i = target >= 0 ? static_cast<size_t>(target) + 1 : 0;
      return i < snap.target_names.size() && i > 0 ? snap.target_names[i] : "";
    };
    std::set<std::string> alive;
    for (const ProcessSample& p : snap.system.processes) {
      if (!p.alive) continue;
      auto it = snap.sampled_identities.find(p.pid);
      if (it != snap.sampled_identities.end() && !name(it->second.target).empty())
        alive.insert(name(it->second.target));
    }
    for (const ProcessSummary& p : snap.processes)
      if (p.sampled && p.alive && !name(p.target).empty()) alive.insert(name(p.target));
    seen_alive_.insert(alive.begin(), alive.end());
    for (const std::string& t : seen_alive_) s.targets_down[t] = alive.count(t) ? 0 : 1;
  }
  return s;
}

std::string LogLine(const AlertEvent& e) {
  std::string line = std::string("ALERT ") +
                     (e.kind == AlertEvent::kFiring ? "firing" : "resolved") + ": " + e.name +
                     " (" + SeverityName(e.severity) + ") " + e.summary;
  if (e.kind == AlertEvent::kResolved) line += ", peak " + FormatValue(e.peak);
  return line;
}

AlertService::AlertService(RuleSet rules, const Aggregator& agg, RequestLog* log,
                           Notifier* notifier)
    : agg_(agg),
      log_(log),
      notifier_(notifier),
      engine_(std::move(rules)),
      feed_(engine_.ScopeKeys()) {}

std::vector<AlertEvent> AlertService::Tick(int64_t sec) {
  SecondSample sample = feed_.Next(agg_.Snapshot(), sec);
  if (enrich_) enrich_(&sample);
  std::vector<AlertEvent> events = engine_.Step(sample);
  for (const AlertEvent& e : events) {
    if (log_)
      log_->LogLine(
          static_cast<int64_t>(e.kind == AlertEvent::kFiring ? e.started : e.ended) * 1000000000,
          LogLine(e));
    if (notifier_) notifier_->Notify(e);
  }
  if (notifier_) notifier_->Resend(engine_.Active(), sec);
  return events;
}

void ReplayClock::OnTransaction(const HttpTransaction& tx) {
  uint64_t ts = tx.response_end_ns ? tx.response_end_ns : tx.request_start_ns;
  const int64_t wall = static_cast<int64_t>(ts) + offset_;
  const int64_t sec = wall <= 0 ? 0 : wall / 1000000000;
  if (last_sec_ < 0) last_sec_ = sec;
  // Every second up to the transaction's, evaluated before it counts (a gap: its last 15 minutes).
  if (sec > last_sec_) {
    const int64_t from = std::max(last_sec_, sec - 900);
    for (int64_t s = from; s < sec; ++s) tick_(s);
    last_sec_ = sec;
  }
  next_.OnTransaction(tx);
}

void ReplayClock::Finish(int extra_s) {
  if (last_sec_ < 0) return;
  for (int64_t s = last_sec_; s <= last_sec_ + extra_s; ++s) tick_(s);
}

}  // namespace reqmon::alerts
