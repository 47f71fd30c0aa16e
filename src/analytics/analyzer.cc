// SPDX-License-Identifier: MIT
#include "reqmon/analytics/analyzer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "reqmon/aggregator/aggregator.h"

namespace reqmon::analytics {

namespace {

// Prometheus' histogram_quantile over non-cumulative buckets (ms); nullopt without requests.
std::optional<double> QuantileMs(const std::vector<uint64_t>& buckets, double q) {
  uint64_t total = 0;
  for (uint64_t b : buckets) total += b;
  if (total == 0) return std::nullopt;
  const double rank = q * static_cast<double>(total);
  uint64_t cum = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    const uint64_t before = cum;
    cum += buckets[i];
    if (static_cast<double>(cum) >= rank && buckets[i] > 0) {
      if (i >= kPromBucketsSeconds.size()) return kPromBucketsSeconds.back() * 1000;
      const double lo = i == 0 ? 0 : kPromBucketsSeconds[i - 1] * 1000;
      const double hi = kPromBucketsSeconds[i] * 1000;
      return lo + (hi - lo) * (rank - static_cast<double>(before)) /
                      static_cast<double>(buckets[i]);
    }
  }
  return kPromBucketsSeconds.back() * 1000;
}

std::string Round(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

// Two significant figures for people: 38, 4.2, 1200.
std::string About(double v) {
  if (v >= 100) return Round(std::round(v / std::pow(10, std::floor(std::log10(v)) - 1)) *
                                 std::pow(10, std::floor(std::log10(v)) - 1), 0);
  if (v >= 10) return Round(v, 0);
  return Round(v, 1);
}

nlohmann::ordered_json Opt(const std::optional<double>& v, int digits = 3) {
  if (!v || !std::isfinite(*v)) return nullptr;
  const double f = std::pow(10, digits);
  return std::round(*v * f) / f;
}

}  // namespace

struct Analyzer::State {
  struct Scope {
    std::deque<std::pair<int64_t, LoadPoint>> points;  // (sec, point), seconds with traffic
    std::deque<std::pair<int64_t, double>> recent;     // (sec, requests) incl. idle seconds
    CapacityEstimate est;
    int64_t last_sec = 0;
    int64_t fitted_at = -1;  // second of the last fit
  };
  std::map<std::string, Scope> scopes;  // "" = host

  struct Minute {
    int64_t start = 0;
    bool has_system = false;
    double memory_percent = 0;
    double disk_used = 0, disk_total = 0;
    double rps = 0;
  };
  std::deque<Minute> minutes;  // closed minutes, oldest first
  // The minute being filled.
  int64_t cur_minute = -1;
  double mem_sum = 0;
  int mem_n = 0;
  uint64_t disk_used = 0, disk_free = 0;
  bool has_disk = false;
  double requests = 0;
  std::map<std::string, RouteSecond> route_acc;

  struct RouteMinute {
    uint64_t requests = 0;
    double p95 = 0, error_share = 0;
  };
  std::map<std::string, std::deque<RouteMinute>> baselines;
  std::vector<Anomaly> anomalies;
  std::vector<Forecast> forecasts;
  int64_t last_sec = -1;
};

Analyzer::Analyzer(AnalyzerOptions opts) : st_(std::make_unique<State>()), opts_(opts) {}
Analyzer::~Analyzer() = default;

namespace {

void AddRoute(RouteSecond* acc, const RouteSecond& r) {
  acc->requests += r.requests;
  acc->errors += r.errors;
  if (acc->duration_buckets.size() < r.duration_buckets.size())
    acc->duration_buckets.resize(r.duration_buckets.size());
  for (size_t i = 0; i < r.duration_buckets.size(); ++i)
    acc->duration_buckets[i] += r.duration_buckets[i];
}

}  // namespace

void Analyzer::Step(const Second& s) {
  std::lock_guard<std::mutex> lock(mu_);
  State& st = *st_;
  if (s.sec <= st.last_sec) return;
  st.last_sec = s.sec;

  // --- load points and capacity, per scope -----------------------------------------------
  auto feed = [&](const std::string& name, const ScopeLoad& l) {
    State::Scope& sc = st.scopes[name];
    sc.last_sec = s.sec;
    if (l.requests > 0)
      sc.points.push_back({s.sec, {l.in_system_s, l.requests}});
    sc.recent.push_back({s.sec, l.requests});
  };
  feed("", s.host);
  for (const auto& [name, l] : s.targets)
    if (st.scopes.count(name) || st.scopes.size() <= opts_.max_targets) feed(name, l);
  for (auto& [name, sc] : st.scopes) {
    while (!sc.points.empty() &&
           sc.points.front().first <= s.sec - static_cast<int64_t>(opts_.load_window_s))
      sc.points.pop_front();
    while (!sc.recent.empty() && sc.recent.front().first <= s.sec - opts_.utilization_window_s)
      sc.recent.pop_front();
    CapacityEstimate& e = sc.est;
    if (sc.fitted_at < 0 || s.sec - sc.fitted_at >= opts_.refit_every_s) {
      std::vector<LoadPoint> pts;
      pts.reserve(sc.points.size());
      for (const auto& p : sc.points) pts.push_back(p.second);
      e.fit = FitUsl(pts, opts_.min_levels, opts_.min_points_per_level);
      sc.fitted_at = s.sec;
    }
    e.capacity_rps.reset();
    e.concurrency_at_peak.reset();
    e.utilization.reset();
    e.latency_now_ms.reset();
    double sum = 0;
    for (const auto& r : sc.recent) sum += r.second;
    // Seconds this scope was not fed count as idle.
    e.now_rps = sum / opts_.utilization_window_s;
    if (e.fit.ok()) {
      e.capacity_rps = e.fit.model.PeakThroughput();
      e.concurrency_at_peak = e.fit.model.PeakConcurrency();
      if (e.capacity_rps && *e.capacity_rps > 0) e.utilization = e.now_rps / *e.capacity_rps;
      if (e.now_rps > 0) {
        if (auto lat = e.fit.model.LatencyAt(e.now_rps)) e.latency_now_ms = *lat * 1000;
      }
    }
  }

  // --- minutes: forecasts and baselines --------------------------------------------------
  const int64_t minute = s.sec / 60;
  if (st.cur_minute >= 0 && minute != st.cur_minute) {
    State::Minute m;
    m.start = st.cur_minute * 60;
    m.has_system = st.mem_n > 0;
    m.memory_percent = st.mem_n ? st.mem_sum / st.mem_n : 0;
    m.disk_used = static_cast<double>(st.disk_used);
    m.disk_total = static_cast<double>(st.disk_used + st.disk_free);
    m.rps = st.requests / 60.0;
    st.minutes.push_back(m);
    const int64_t keep = static_cast<int64_t>(opts_.forecast_max_hours * 3600) + 60;
    while (!st.minutes.empty() && st.minutes.front().start < m.start - keep) st.minutes.pop_front();

    // Anomalies of the closed minute against the baselines of the minutes before it.
    st.anomalies.clear();
    for (const auto& [route, acc] : st.route_acc) {
      if (acc.requests < opts_.anomaly_min_requests) continue;
      State::RouteMinute rm;
      rm.requests = acc.requests;
      rm.p95 = QuantileMs(acc.duration_buckets, 0.95).value_or(0);
      rm.error_share = static_cast<double>(acc.errors) / static_cast<double>(acc.requests);
      auto it = st.baselines.find(route);
      if (it == st.baselines.end()) {
        if (st.baselines.size() >= opts_.max_routes) continue;
        it = st.baselines.emplace(route, std::deque<State::RouteMinute>{}).first;
      }
      auto& hist = it->second;
      if (hist.size() >= opts_.baseline_min_minutes) {
        std::vector<double> p95s, errs;
        for (const auto& h : hist) {
          p95s.push_back(h.p95);
          errs.push_back(h.error_share);
        }
        // Latency: a floor of 5 % of the median (a steady route's MAD can be 0).
        const Baseline bl = *RobustBaseline(p95s);
        const double ls = RobustScore(bl, rm.p95, std::max(0.05 * bl.median, 0.1));
        if (ls >= opts_.anomaly_threshold)
          st.anomalies.push_back({route, "latency_p95_ms", m.start, rm.p95, bl.median, bl.mad, ls,
                                  rm.requests});
        // Error share: the floor is the binomial spread of the minute's own count, so a few
        // errors among few requests are not an anomaly (rate-aware).
        const Baseline be = *RobustBaseline(errs);
        const double p = std::clamp(be.median, 0.01, 0.99);
        const double binom = std::sqrt(p * (1 - p) / static_cast<double>(rm.requests)) / 1.4826;
        const double es = RobustScore(be, rm.error_share, std::max(binom, 0.005));
        if (es >= opts_.anomaly_threshold)
          st.anomalies.push_back({route, "error_share", m.start, rm.error_share, be.median, be.mad,
                                  es, rm.requests});
      }
      hist.push_back(rm);
      while (hist.size() > opts_.baseline_minutes) hist.pop_front();
    }
    std::sort(st.anomalies.begin(), st.anomalies.end(),
              [](const Anomaly& a, const Anomaly& b) {
                return a.score != b.score ? a.score > b.score : a.route < b.route;
              });

    // Forecasts, once a minute.
    st.forecasts.clear();
    const double now = static_cast<double>(m.start + 60);
    std::vector<double> t, mem, disk, rps;
    double disk_total = 0, mem_now = 0, disk_now = 0, rps_now = 0;
    std::vector<double> ts, tr;
    for (const State::Minute& x : st.minutes) {
      const double mid = static_cast<double>(x.start + 30);
      if (x.has_system) {
        t.push_back(mid);
        mem.push_back(x.memory_percent);
        disk.push_back(x.disk_used);
        disk_total = x.disk_total;
        mem_now = x.memory_percent;
        disk_now = x.disk_used;
      }
      tr.push_back(mid);
      rps.push_back(x.rps);
      rps_now = x.rps;
    }
    const double lo = opts_.forecast_min_hours * 3600, hi = opts_.forecast_max_hours * 3600;
    auto add = [&](const std::string& res, const std::vector<double>& tt,
                   const std::vector<double>& yy, double cur, double limit,
                   const std::string& unit) {
      Forecast f;
      f.resource = res;
      f.scope = "host";
      f.current = cur;
      f.limit = limit;
      f.unit = unit;
      f.e = ForecastExhaustion(tt, yy, limit, now, lo, hi, opts_.forecast_min_r2);
      st.forecasts.push_back(f);
    };
    add("memory", t, mem, mem_now, 100.0, "percent");
    add("disk", t, disk, disk_now, disk_total, "bytes");
    const auto& host = st.scopes[""].est;
    if (host.capacity_rps) {
      add("request_rate", tr, rps, rps_now, *host.capacity_rps, "requests_per_second");
    } else {
      Forecast f;
      f.resource = "request_rate";
      f.scope = "host";
      f.current = rps_now;
      f.unit = "requests_per_second";
      f.e.status = "no capacity estimate";
      st.forecasts.push_back(f);
    }
    st.route_acc.clear();
    st.requests = 0;
    st.mem_sum = 0;
    st.mem_n = 0;
  }
  // Before the first minute closes: every forecast says why there is none yet.
  if (st.forecasts.empty()) {
    for (const char* res : {"memory", "disk", "request_rate"}) {
      Forecast f;
      f.resource = res;
      f.scope = "host";
      f.unit = f.resource == "memory" ? "percent"
               : f.resource == "disk" ? "bytes"
                                      : "requests_per_second";
      f.e.status = "insufficient history";
      st.forecasts.push_back(f);
    }
  }
  st.cur_minute = minute;
  st.requests += s.host.requests;
  if (s.has_system) {
    st.mem_sum += s.memory_percent;
    ++st.mem_n;
    st.disk_used = s.disk_used_bytes;
    st.disk_free = s.disk_free_bytes;
  }
  for (const auto& [route, r] : s.routes) AddRoute(&st.route_acc[route], r);
}

CapacityEstimate Analyzer::Capacity(const std::string& target) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = st_->scopes.find(target);
  if (it == st_->scopes.end()) {
    CapacityEstimate e;
    e.fit.status = "insufficient load variation";
    return e;
  }
  return it->second.est;
}

std::vector<Forecast> Analyzer::Forecasts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return st_->forecasts;
}

std::vector<Anomaly> Analyzer::Anomalies() const {
  std::lock_guard<std::mutex> lock(mu_);
  return st_->anomalies;
}

std::optional<double> Analyzer::UtilizationPercent() const {
  const CapacityEstimate e = Capacity("");
  if (!e.utilization) return std::nullopt;
  return *e.utilization * 100;
}

std::optional<double> Analyzer::HoursToFull() const {
  std::optional<double> best;
  for (const Forecast& f : Forecasts())
    if (f.e.ok() && (!best || f.e.hours < *best)) best = f.e.hours;
  return best;
}

std::optional<double> Analyzer::AnomalyScore() const {
  std::optional<double> best;
  for (const Anomaly& a : Anomalies())
    if (!best || a.score > *best) best = a.score;
  return best;
}

std::string CapacitySentence(const CapacityEstimate& c) {
  if (!c.capacity_rps) {
    if (c.fit.status == "insufficient load variation")
      return "no capacity estimate yet: the load has not varied enough (" +
             std::to_string(c.fit.levels) + " of 6 load levels seen)";
    return "no capacity estimate: throughput still grows with load (no saturation seen)";
  }
  std::string s = "about " + About(*c.capacity_rps) + " req/s at most";
  s += "; now " + About(c.now_rps) + " req/s";
  if (c.utilization) s += ", " + Round(*c.utilization * 100, 0) + " %";
  return s;
}

std::string ForecastSentence(const Forecast& f) {
  const std::string what = f.resource == "request_rate" ? "request rate at capacity"
                                                         : f.resource + " full";
  if (!f.e.ok()) return f.resource + ": " + f.e.status;
  const double h = f.e.hours;
  std::string when;
  if (h < 1)
    when = "about " + Round(std::max(1.0, std::round(h * 60)), 0) + " min";
  else if (h < 48)
    when = "about " + About(h) + " h";
  else
    when = "about " + About(h / 24) + " days";
  return what + " in " + when;
}

nlohmann::ordered_json Analyzer::Json() const {
  using json = nlohmann::ordered_json;
  auto capacity = [](const CapacityEstimate& e) {
    json c;
    c["requests_per_second"] = Opt(e.capacity_rps, 2);
    c["concurrency_at_peak"] = Opt(e.concurrency_at_peak, 2);
    c["utilization"] = Opt(e.utilization, 3);
    c["now_requests_per_second"] = std::round(e.now_rps * 100) / 100;
    c["latency_now_ms"] = Opt(e.latency_now_ms, 2);
    if (e.fit.ok() || e.fit.status == "no saturation seen") {
      c["model"] = {{"lambda", e.fit.model.lambda}, {"sigma", e.fit.model.sigma},
                    {"kappa", e.fit.model.kappa}, {"r2", e.fit.model.r2}};
    } else {
      c["model"] = nullptr;
    }
    // The latency the model expects at a few loads short of capacity.
    json at = json::array();
    if (e.capacity_rps)
      for (double u : {0.5, 0.7, 0.8, 0.9, 0.95}) {
        const double x = u * *e.capacity_rps;
        auto lat = e.fit.model.LatencyAt(x);
        at.push_back({{"utilization", u},
                      {"requests_per_second", std::round(x * 100) / 100},
                      {"latency_ms", Opt(lat ? std::optional<double>(*lat * 1000) : std::nullopt,
                                         2)}});
      }
    c["latency_at"] = at;
    c["status"] = e.fit.status;
    c["levels"] = e.fit.levels;
    c["points"] = e.fit.points;
    c["summary"] = CapacitySentence(e);
    return c;
  };
  json out;
  std::vector<std::pair<std::string, CapacityEstimate>> scopes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, sc] : st_->scopes) scopes.push_back({name, sc.est});
  }
  CapacityEstimate host;
  host.fit.status = "insufficient load variation";
  for (const auto& [name, e] : scopes)
    if (name.empty()) host = e;
  out["capacity"] = capacity(host);
  json fc = json::array();
  for (const Forecast& f : Forecasts()) {
    json j;
    j["resource"] = f.resource;
    j["scope"] = f.scope;
    j["status"] = f.e.status;
    j["hours_to_full"] = f.e.ok() ? json(std::round(f.e.hours * 100) / 100) : json(nullptr);
    j["current"] = f.current;
    j["limit"] = f.limit;
    j["unit"] = f.unit;
    j["slope_per_hour"] = f.e.slope_per_hour;
    j["r2"] = std::round(f.e.r2 * 1000) / 1000;
    j["window_hours"] = std::round(f.e.window_hours * 100) / 100;
    j["points"] = f.e.points;
    j["summary"] = ForecastSentence(f);
    fc.push_back(j);
  }
  out["forecasts"] = fc;
  json an = json::array();
  for (const Anomaly& a : Anomalies())
    an.push_back({{"route", a.route},
                  {"signal", a.signal},
                  {"minute", a.minute},
                  {"value", a.value},
                  {"baseline", a.baseline},
                  {"mad", a.mad},
                  {"score", std::round(a.score * 100) / 100},
                  {"requests", a.requests}});
  out["anomalies"] = an;
  json targets = json::array();
  for (const auto& [name, e] : scopes) {
    if (name.empty()) continue;
    json t;
    t["target"] = name;
    t["capacity"] = capacity(e);
    targets.push_back(t);
  }
  out["targets"] = targets;
  return out;
}

std::string Analyzer::PrometheusText() const {
  std::string out;
  std::vector<std::pair<std::string, CapacityEstimate>> scopes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, sc] : st_->scopes) scopes.push_back({name, sc.est});
  }
  auto num = [](double v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.6g", v);
    return std::string(buf);
  };
  auto gauge = [&](const char* name, const char* help,
                   const std::vector<std::pair<std::string, double>>& rows) {
    if (rows.empty()) return;
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n";
    for (const auto& [labels, v] : rows) out += std::string(name) + labels + " " + num(v) + "\n";
  };
  auto label = [](const std::string& target) {
    return "{target=\"" + PromEscapeLabel(target.empty() ? "host" : target) + "\"}";
  };
  std::vector<std::pair<std::string, double>> cap, util, peak, lambda, sigma, kappa, r2;
  for (const auto& [name, e] : scopes) {
    if (e.capacity_rps) cap.push_back({label(name), *e.capacity_rps});
    if (e.utilization) util.push_back({label(name), *e.utilization});
    if (e.concurrency_at_peak) peak.push_back({label(name), *e.concurrency_at_peak});
    if (e.fit.ok()) {
      lambda.push_back({label(name), e.fit.model.lambda});
      sigma.push_back({label(name), e.fit.model.sigma});
      kappa.push_back({label(name), e.fit.model.kappa});
      r2.push_back({label(name), e.fit.model.r2});
    }
  }
  gauge("reqmon_capacity_requests_per_second",
        "Estimated peak throughput (Universal Scalability Law fit).", cap);
  gauge("reqmon_capacity_utilization", "Current throughput / estimated capacity (0..1).", util);
  gauge("reqmon_capacity_concurrency_at_peak", "Requests in the system at peak throughput.", peak);
  gauge("reqmon_capacity_usl_lambda", "USL lambda (requests/s of one request alone).", lambda);
  gauge("reqmon_capacity_usl_sigma", "USL sigma (contention).", sigma);
  gauge("reqmon_capacity_usl_kappa", "USL kappa (coherency).", kappa);
  gauge("reqmon_capacity_usl_r2", "R^2 of the USL fit.", r2);
  std::vector<std::pair<std::string, double>> hours;
  for (const Forecast& f : Forecasts())
    if (f.e.ok())
      hours.push_back({"{resource=\"" + f.resource + "\",scope=\"" + PromEscapeLabel(f.scope) +
                           "\"}",
                       f.e.hours});
  gauge("reqmon_forecast_hours_to_full",
        "Hours until the resource reaches its limit (least-squares trend).", hours);
  std::vector<std::pair<std::string, double>> scores;
  for (const Anomaly& a : Anomalies())
    scores.push_back({"{route=\"" + PromEscapeLabel(a.route) + "\",signal=\"" + a.signal + "\"}",
                      a.score});
  gauge("reqmon_anomaly_score", "Robust z-score of the last minute against the route's baseline.",
        scores);
  return out;
}

void AnalyticsService::Tick(int64_t sec) { analyzer_.Step(differ_.Next(agg_.Snapshot(), sec)); }

Second SnapshotDiffer::Next(const StatsSnapshot& snap, int64_t sec) {
  Second s;
  s.sec = sec;
  auto cum = [](const LatencySummary& l) {
    Cum c;
    c.requests = static_cast<double>(l.count);
    c.serving_s = l.avg_ms * static_cast<double>(l.count) / 1000;
    c.in_system_s = c.serving_s + l.queue_avg_ms * static_cast<double>(l.queue_count) / 1000;
    return c;
  };
  auto diff = [&](const std::string& key, const LatencySummary& l) {
    const Cum c = cum(l);
    const Cum p = prev_scopes_[key];
    prev_scopes_[key] = c;
    ScopeLoad d;
    if (first_) return d;
    d.requests = std::max(0.0, c.requests - p.requests);
    d.serving_s = std::max(0.0, c.serving_s - p.serving_s);
    d.in_system_s = std::max(0.0, c.in_system_s - p.in_system_s);
    if (d.requests == 0) d.serving_s = d.in_system_s = 0;
    return d;
  };
  s.host = diff("", snap.total);
  for (const TargetSummary& t : snap.targets) s.targets[t.name] = diff("target:" + t.name, t.s);
  for (const RouteSummary& r : snap.routes) {
    const std::string key = r.method + " " + r.route;
    RouteCum c;
    c.requests = r.s.count;
    c.errors = r.s.classes[4];
    c.buckets.assign(r.duration_buckets.begin(), r.duration_buckets.end());
    RouteCum& p = prev_routes_[key];
    if (!first_ && c.requests > p.requests) {
      RouteSecond d;
      d.requests = c.requests - p.requests;
      d.errors = c.errors > p.errors ? std::min(c.errors - p.errors, d.requests) : 0;
      d.duration_buckets.resize(c.buckets.size());
      for (size_t i = 0; i < c.buckets.size(); ++i)
        d.duration_buckets[i] =
            i < p.buckets.size() && c.buckets[i] > p.buckets[i] ? c.buckets[i] - p.buckets[i]
            : i < p.buckets.size()                              ? 0
                                                                : c.buckets[i];
      s.routes[key] = std::move(d);
    }
    p = std::move(c);
  }
  first_ = false;
  if (snap.system.valid) {
    s.has_system = true;
    s.memory_percent = snap.system.memory_percent;
    s.disk_used_bytes = snap.system.disk_used_bytes;
    s.disk_free_bytes = snap.system.disk_free_bytes;
  }
  return s;
}

}  // namespace reqmon::analytics
