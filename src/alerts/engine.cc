// SPDX-License-Identifier: MIT
#include "reqmon/alerts/engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

#include "reqmon/aggregator/aggregator.h"

namespace reqmon::alerts {

namespace {

constexpr int64_t kSeconds = 900;  // the per-second ring: 15 minutes
constexpr int64_t kMinutes = 720;  // the per-minute ring: 12 hours
constexpr std::array<double, 13> kBoundsMs = {1,   2.5, 5,    10,   25,   50,   100,
                                              250, 500, 1000, 2500, 5000, 10000};

int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
size_t Mod(int64_t a, int64_t n) { return static_cast<size_t>(((a % n) + n) % n); }

// Prometheus' histogram_quantile over the non-cumulative buckets.
std::optional<double> Quantile(const Counts& c, double q) {
  uint64_t total = 0;
  for (uint64_t b : c.buckets) total += b;
  if (total == 0) return std::nullopt;
  const double rank = q * static_cast<double>(total);
  uint64_t cum = 0;
  for (size_t i = 0; i < c.buckets.size(); ++i) {
    const uint64_t before = cum;
    cum += c.buckets[i];
    if (static_cast<double>(cum) >= rank && c.buckets[i] > 0) {
      if (i >= kBoundsMs.size()) return kBoundsMs.back();  // +Inf: the highest finite bound
      const double lo = i == 0 ? 0 : kBoundsMs[i - 1], hi = kBoundsMs[i];
      return lo +
             (hi - lo) * (rank - static_cast<double>(before)) / static_cast<double>(c.buckets[i]);
    }
  }
  return kBoundsMs.back();
}

// Requests slower than bound_ms (a bucket bound): those above its bucket.
uint64_t Slow(const Counts& c, double bound_ms) {
  uint64_t slow = 0;
  for (size_t i = 0; i < c.buckets.size(); ++i)
    if (i >= kBoundsMs.size() || kBoundsMs[i] > bound_ms + 1e-9) slow += c.buckets[i];
  return slow;
}

struct Gauge {
  uint32_t n = 0;                     // samples with system figures
  double cpu = 0, mem = 0, disk = 0;  // sums
  int64_t first_sec = 0, last_sec = 0;
  uint64_t first_used = 0, last_used = 0, last_free = 0;
  uint64_t lost = 0;
  uint32_t util_n = 0, htf_n = 0;  // analytics: samples with a figure, and the sums
  double util = 0, htf = 0;
  bool has_anomaly = false;
  double anomaly = 0;  // the largest
  void Add(const SecondSample& s) {
    lost += s.lost_events;
    if (s.utilization_percent) {
      ++util_n;
      util += *s.utilization_percent;
    }
    if (s.hours_to_full) {
      ++htf_n;
      htf += *s.hours_to_full;
    }
    if (s.anomaly_score) {
      anomaly = has_anomaly ? std::max(anomaly, *s.anomaly_score) : *s.anomaly_score;
      has_anomaly = true;
    }
    if (!s.has_system) return;
    if (n == 0) {
      first_sec = s.sec;
      first_used = s.disk_used_bytes;
    }
    ++n;
    cpu += s.cpu_percent;
    mem += s.memory_percent;
    disk += s.disk_percent;
    last_sec = s.sec;
    last_used = s.disk_used_bytes;
    last_free = s.disk_free_bytes;
  }
  void Merge(const Gauge& o) {  // o is later than *this
    lost += o.lost;
    util_n += o.util_n;
    util += o.util;
    htf_n += o.htf_n;
    htf += o.htf;
    if (o.has_anomaly) {
      anomaly = has_anomaly ? std::max(anomaly, o.anomaly) : o.anomaly;
      has_anomaly = true;
    }
    if (o.n == 0) return;
    if (n == 0) {
      first_sec = o.first_sec;
      first_used = o.first_used;
    }
    n += o.n;
    cpu += o.cpu;
    mem += o.mem;
    disk += o.disk;
    last_sec = o.last_sec;
    last_used = o.last_used;
    last_free = o.last_free;
  }
};

// One ring of seconds and one of minutes, of any summable T.
template <typename T>
struct Ring {
  std::vector<T> sec = std::vector<T>(kSeconds);
  std::vector<int64_t> sec_tag = std::vector<int64_t>(kSeconds, INT64_MIN);
  std::vector<T> min = std::vector<T>(kMinutes);
  std::vector<int64_t> min_tag = std::vector<int64_t>(kMinutes, INT64_MIN);

  template <typename F>
  void Update(int64_t s, F&& f) {
    size_t i = Mod(s, kSeconds);
    if (sec_tag[i] != s) {
      sec[i] = T{};
      sec_tag[i] = s;
    }
    f(sec[i]);
    const int64_t m = FloorDiv(s, 60);
    i = Mod(m, kMinutes);
    if (min_tag[i] != m) {
      min[i] = T{};
      min_tag[i] = m;
    }
    f(min[i]);
  }
  // The seconds (end - len, end]; from whole minutes when len is longer than the second ring.
  template <typename M>
  T Sum(int64_t end, int64_t len, M&& merge) const {
    T out{};
    if (len <= kSeconds) {
      for (int64_t s = end - len + 1; s <= end; ++s) {
        const size_t i = Mod(s, kSeconds);
        if (sec_tag[i] == s) merge(out, sec[i]);
      }
      return out;
    }
    const int64_t last = FloorDiv(end, 60), first = last - (len + 59) / 60 + 1;
    for (int64_t m = std::max(first, last - kMinutes + 1); m <= last; ++m) {
      const size_t i = Mod(m, kMinutes);
      if (min_tag[i] == m) merge(out, min[i]);
    }
    return out;
  }
};

void MergeCounts(Counts& a, const Counts& b) { a.Add(b); }
void MergeGauge(Gauge& a, const Gauge& b) { a.Merge(b); }

}  // namespace

void Counts::Add(const Counts& o) {
  requests += o.requests;
  errors += o.errors;
  for (size_t i = 0; i < kBuckets; ++i) buckets[i] += o.buckets[i];
}

std::string FormatValue(double v) {
  char buf[64];
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  const double a = std::fabs(v);
  if (a >= 100 || v == std::floor(v))
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else if (a >= 1)
    std::snprintf(buf, sizeof buf, "%.1f", v);
  else
    std::snprintf(buf, sizeof buf, "%.2g", v);
  return buf;
}

std::string RenderSummary(const std::string& tmpl, double value, const Rule& r) {
  std::string out = tmpl;
  auto replace = [&out](const std::string& key, const std::string& with) {
    for (size_t at = out.find(key); at != std::string::npos; at = out.find(key, at + with.size()))
      out.replace(at, key.size(), with);
  };
  replace("{{value}}", FormatValue(value));
  replace("{{window}}", FormatDuration(r.window_s));
  return out;
}

struct AlertEngine::Store {
  std::map<std::string, Ring<Counts>> counts;  // "" total, "route:GET /a" ...
  Ring<Gauge> gauges;
  std::map<std::string, int> targets_down;
};

struct AlertEngine::RuleState {
  AlertState state = AlertState::kInactive;
  int64_t since = 0;      // pending since
  int64_t fired_at = 0;   // firing since
  int64_t last_hold = 0;  // last step the condition held
  bool has_value = false;
  double value = 0, peak = 0;
};

AlertEngine::AlertEngine(RuleSet rules, size_t history_capacity)
    : rules_(std::move(rules)),
      history_capacity_(history_capacity),
      store_(std::make_unique<Store>()),
      states_(rules_.rules.size()) {
  store_->counts[""];
  for (const std::string& k : ScopeKeys()) store_->counts[k];
}

AlertEngine::~AlertEngine() = default;

std::vector<std::string> AlertEngine::ScopeKeys() const {
  std::set<std::string> keys;
  for (const Rule& r : rules_.rules)
    if (!r.scope_kind.empty() && r.signal != Signal::kProcessDown)
      keys.insert(r.scope_kind + ":" + r.scope_value);
  return {keys.begin(), keys.end()};
}

struct AlertEngine::Verdict {
  bool has = false;  // false: no verdict (too little traffic, no data)
  double value = 0;
  bool enter = false;  // beyond the enter threshold (SLO: a burn pair holds)
  bool hold = false;   // beyond the clear threshold (SLO: a burn pair holds)
};

AlertEngine::Verdict AlertEngine::EvaluateLocked(const Rule& r, int64_t now) const {
  const Store& st = *store_;
  auto counts = [&](int64_t end, int64_t len) {
    const std::string key = r.scope_kind.empty() ? "" : r.scope_kind + ":" + r.scope_value;
    auto it = st.counts.find(key);
    return it == st.counts.end() ? Counts{} : it->second.Sum(end, len, MergeCounts);
  };
  auto gauge = [&](int64_t end, int64_t len) { return st.gauges.Sum(end, len, MergeGauge); };
  // The signal over (end - len, end]; min_reqs applies to request counts.
  auto value = [&](int64_t end, int64_t len, uint64_t min_reqs) -> std::optional<double> {
    switch (r.signal) {
      case Signal::kCpuPercent:
      case Signal::kMemoryPercent:
      case Signal::kDiskPercent: {
        const Gauge g = gauge(end, len);
        if (g.n == 0) return std::nullopt;
        const double sum = r.signal == Signal::kCpuPercent      ? g.cpu
                           : r.signal == Signal::kMemoryPercent ? g.mem
                                                                : g.disk;
        return sum / g.n;
      }
      case Signal::kDiskHoursToFull: {
        const Gauge g = gauge(end, len);
        if (g.n < 2 || g.last_sec <= g.first_sec || g.last_used <= g.first_used)
          return std::nullopt;
        const double per_s = static_cast<double>(g.last_used - g.first_used) /
                             static_cast<double>(g.last_sec - g.first_sec);
        return static_cast<double>(g.last_free) / per_s / 3600.0;
      }
      case Signal::kLostEvents:
        return static_cast<double>(gauge(end, len).lost);
      case Signal::kUtilization: {
        const Gauge g = gauge(end, len);
        if (g.util_n == 0) return std::nullopt;
        return g.util / g.util_n;
      }
      case Signal::kHoursToFull: {
        const Gauge g = gauge(end, len);
        if (g.htf_n == 0) return std::nullopt;
        return g.htf / g.htf_n;
      }
      case Signal::kAnomaly: {
        const Gauge g = gauge(end, len);
        if (!g.has_anomaly) return std::nullopt;
        return g.anomaly;
      }
      case Signal::kProcessDown: {
        if (!r.scope_kind.empty()) {
          auto it = st.targets_down.find(r.scope_value);
          return it == st.targets_down.end() ? 0.0 : it->second;
        }
        double n = 0;
        for (const auto& [t, d] : st.targets_down) n += d;
        return n;
      }
      case Signal::kErrorRatio: {
        const Counts c = counts(end, len);
        if (c.requests == 0 || c.requests < min_reqs) return std::nullopt;
        return 100.0 * static_cast<double>(c.errors) / static_cast<double>(c.requests);
      }
      case Signal::kP95Ms:
      case Signal::kP99Ms: {
        const Counts c = counts(end, len);
        if (c.requests == 0 || c.requests < min_reqs) return std::nullopt;
        return Quantile(c, r.signal == Signal::kP95Ms ? 0.95 : 0.99);
      }
      case Signal::kRequestRate: {
        const Counts c = counts(end, len);
        if (c.requests < min_reqs) return std::nullopt;
        return static_cast<double>(c.requests) / static_cast<double>(len);
      }
      case Signal::kRequestRateChange: {
        const Counts cur = counts(end, len), prev = counts(end - len, len);
        if (prev.requests == 0 || prev.requests < min_reqs) return std::nullopt;
        return 100.0 * (static_cast<double>(cur.requests) - static_cast<double>(prev.requests)) /
               static_cast<double>(prev.requests);
      }
      case Signal::kLatency: {
        const Counts c = counts(end, len);
        if (c.requests == 0 || c.requests < min_reqs) return std::nullopt;
        return static_cast<double>(Slow(c, r.latency_ms)) / static_cast<double>(c.requests);
      }
    }
    return std::nullopt;
  };

  if (r.slo > 0) {
    // Multi-window burn rate: a pair holds when both its windows burn faster than its factor.
    const double budget = 1.0 - r.slo / 100.0;
    std::optional<double> best;
    bool any = false;
    for (const BurnWindow& w : r.burn) {
      auto bad = [&](int64_t len, uint64_t min_reqs) -> std::optional<double> {
        const Counts c = counts(now, len);
        if (c.requests == 0 || c.requests < min_reqs) return std::nullopt;
        const double b = r.signal == Signal::kLatency ? static_cast<double>(Slow(c, r.latency_ms))
                                                      : static_cast<double>(c.errors);
        return b / static_cast<double>(c.requests) / budget;
      };
      const auto bl = bad(w.long_s, 0), bs = bad(w.short_s, r.min_requests);
      if (!bl || !bs) continue;
      const double both = std::min(*bl, *bs);
      if (!best || both > *best) best = both;
      any = any || (*bl > w.factor && *bs > w.factor);
    }
    if (!best) return {};
    return {true, *best, any, any};
  }
  auto v = value(now, r.window_s, r.min_requests);
  if (v && r.baseline_s > 0) {
    auto base = value(now - r.window_s, r.baseline_s, 1);
    v = base && *base > 0 ? std::optional<double>(*v / *base) : std::nullopt;
  }
  if (!v) return {};
  return {true, *v, r.above ? *v > r.threshold : *v < r.threshold,
          r.above ? *v > r.clear : *v < r.clear};
}

std::vector<AlertEvent> AlertEngine::Step(const SecondSample& s) {
  std::vector<AlertEvent> events;
  std::lock_guard<std::mutex> lock(mu_);
  if (s.sec < last_sec_) return events;
  last_sec_ = s.sec;
  Store& st = *store_;
  st.counts[""].Update(s.sec, [&](Counts& c) { c.Add(s.total); });
  for (const auto& [key, c] : s.scoped) {
    auto it = st.counts.find(key);
    if (it != st.counts.end()) it->second.Update(s.sec, [&](Counts& x) { x.Add(c); });
  }
  st.gauges.Update(s.sec, [&](Gauge& g) { g.Add(s); });
  st.targets_down = s.targets_down;

  const int64_t now = s.sec;
  for (size_t i = 0; i < rules_.rules.size(); ++i) {
    const Rule& r = rules_.rules[i];
    RuleState& rs = states_[i];
    const Verdict v = EvaluateLocked(r, now);
    if (v.has) {
      rs.has_value = true;
      rs.value = v.value;
    }
    auto worse = [&](double a, double b) { return r.above ? std::max(a, b) : std::min(a, b); };
    std::map<std::string, std::string> labels = {{"alertname", r.name},
                                                 {"severity", SeverityName(r.severity)}};
    if (!r.scope_kind.empty()) labels[r.scope_kind] = r.scope_value;

    if (rs.state == AlertState::kInactive) {
      if (v.enter) {
        rs.state = AlertState::kPending;
        rs.since = now;
        rs.peak = v.value;
      }
    } else if (rs.state == AlertState::kPending) {
      if (!v.hold)
        rs.state = AlertState::kInactive;
      else
        rs.peak = worse(rs.peak, v.value);
    }
    if (rs.state == AlertState::kPending && now - rs.since >= r.for_s) {
      rs.state = AlertState::kFiring;
      rs.fired_at = rs.last_hold = now;
      AlertEvent e;
      e.kind = AlertEvent::kFiring;
      e.name = r.name;
      e.severity = r.severity;
      e.labels = labels;
      e.summary = RenderSummary(r.summary, rs.value, r);
      e.started = now;
      e.value = rs.value;
      e.peak = rs.peak;
      events.push_back(std::move(e));
    } else if (rs.state == AlertState::kFiring) {
      if (v.hold) {
        rs.last_hold = now;
        rs.peak = worse(rs.peak, v.value);
      } else if (now - rs.last_hold >= r.keep_firing_for_s) {
        rs.state = AlertState::kInactive;
        AlertEvent e;
        e.kind = AlertEvent::kResolved;
        e.name = r.name;
        e.severity = r.severity;
        e.labels = labels;
        e.summary = RenderSummary(r.summary, rs.value, r);
        e.started = rs.fired_at;
        e.ended = now;
        e.value = rs.value;
        e.peak = rs.peak;
        HistoryEntry h;
        h.name = r.name;
        h.severity = r.severity;
        h.started = rs.fired_at;
        h.ended = now;
        h.peak = rs.peak;
        h.summary = RenderSummary(r.summary, rs.peak, r);
        h.labels = labels;
        history_.push_front(std::move(h));
        while (history_.size() > history_capacity_) history_.pop_back();
        events.push_back(std::move(e));
      }
    }
  }
  return events;
}

std::optional<double> AlertEngine::Value(const std::string& rule_name) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Rule& r : rules_.rules) {
    if (r.name != rule_name) continue;
    const Verdict v = EvaluateLocked(r, last_sec_);
    return v.has ? std::optional<double>(v.value) : std::nullopt;
  }
  return std::nullopt;
}

std::vector<ActiveAlert> AlertEngine::Active() const {
  std::vector<ActiveAlert> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < rules_.rules.size(); ++i) {
    const Rule& r = rules_.rules[i];
    const RuleState& rs = states_[i];
    if (rs.state == AlertState::kInactive) continue;
    ActiveAlert a;
    a.name = r.name;
    a.severity = r.severity;
    a.state = rs.state;
    a.since = rs.state == AlertState::kFiring ? rs.fired_at : rs.since;
    a.value = rs.value;
    a.peak = rs.peak;
    a.summary = RenderSummary(r.summary, rs.value, r);
    a.labels = {{"alertname", r.name}, {"severity", SeverityName(r.severity)}};
    if (!r.scope_kind.empty()) a.labels[r.scope_kind] = r.scope_value;
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<HistoryEntry> AlertEngine::History() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {history_.begin(), history_.end()};
}

namespace {
std::string Iso(int64_t sec) { return FormatIsoLocal(sec * 1000000000); }
double JsonNumber(double v) { return std::isfinite(v) ? v : 0.0; }
}  // namespace

nlohmann::ordered_json AlertEngine::AlertsJson() const {
  using nlohmann::ordered_json;
  ordered_json active = ordered_json::array(), history = ordered_json::array();
  for (const ActiveAlert& a : Active()) {
    active.push_back({{"name", a.name},
                      {"severity", SeverityName(a.severity)},
                      {"state", a.state == AlertState::kFiring ? "firing" : "pending"},
                      {"since", Iso(a.since)},
                      {"since_unix", a.since},
                      {"value", JsonNumber(a.value)},
                      {"summary", a.summary},
                      {"labels", a.labels}});
  }
  for (const HistoryEntry& h : History()) {
    history.push_back({{"name", h.name},
                       {"severity", SeverityName(h.severity)},
                       {"started", Iso(h.started)},
                       {"ended", Iso(h.ended)},
                       {"started_unix", h.started},
                       {"ended_unix", h.ended},
                       {"peak", JsonNumber(h.peak)},
                       {"summary", h.summary},
                       {"labels", h.labels}});
  }
  return {{"rules", rules_.rules.size()}, {"active", active}, {"history", history}};
}

std::string AlertEngine::PrometheusText() const {
  std::string out =
      "# HELP reqmon_alerts Active alerts, 1 each, by rule and state (like Prometheus' ALERTS).\n"
      "# TYPE reqmon_alerts gauge\n";
  for (const ActiveAlert& a : Active()) {
    out += "reqmon_alerts{alertname=\"" + PromEscapeLabel(a.name) + "\",alertstate=\"" +
           (a.state == AlertState::kFiring ? "firing" : "pending") + "\"";
    for (const auto& [k, v] : a.labels)
      if (k != "alertname") out += "," + k + "=\"" + PromEscapeLabel(v) + "\"";
    out += "} 1\n";
  }
  return out;
}

}  // namespace reqmon::alerts
