// SPDX-License-Identifier: MIT
#include "reqmon/alerts/rules.h"

#include <yaml-cpp/yaml.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace reqmon::alerts {

namespace {

struct SignalInfo {
  const char* name;
  Signal signal;
  bool requests;  ///< computed from requests (min_requests and scopes apply)
};
constexpr std::array<SignalInfo, 15> kSignals = {{
    {"cpu_percent", Signal::kCpuPercent, false},
    {"memory_percent", Signal::kMemoryPercent, false},
    {"disk_percent", Signal::kDiskPercent, false},
    {"disk_hours_to_full", Signal::kDiskHoursToFull, false},
    {"error_ratio", Signal::kErrorRatio, true},
    {"p95_ms", Signal::kP95Ms, true},
    {"p99_ms", Signal::kP99Ms, true},
    {"request_rate", Signal::kRequestRate, true},
    {"request_rate_change", Signal::kRequestRateChange, true},
    {"lost_events", Signal::kLostEvents, false},
    {"process_down", Signal::kProcessDown, false},
    {"latency", Signal::kLatency, true},
    {"utilization", Signal::kUtilization, false},
    {"hours_to_full", Signal::kHoursToFull, false},
    {"anomaly", Signal::kAnomaly, false},
}};

// Latency objectives must be one of the histogram's bucket bounds (ms), so that reqmon and the
// PromQL rules count the same requests as slow.
constexpr std::array<double, 13> kBucketMs = {1,   2.5, 5,    10,   25,   50,   100,
                                              250, 500, 1000, 2500, 5000, 10000};

constexpr int64_t kMaxSpanS = 12 * 3600;  // the minute ring's reach

const std::set<std::string>& KnownKeys() {
  static const std::set<std::string> k = {
      "name",   "signal",          "window",   "above",        "below",      "clear",
      "for",    "keep_firing_for", "severity", "min_requests", "summary",    "route",
      "target", "process",         "baseline", "slo",          "latency_ms", "burn"};
  return k;
}

class Parser {
 public:
  Parser(std::string file, std::vector<std::string>* errors)
      : file_(std::move(file)), errors_(errors) {}

  void Error(const YAML::Node& at, const std::string& what) { Error(at.Mark().line + 1, what); }
  void Error(int line, const std::string& what) {
    std::string one = file_ + ":" + std::to_string(line) + ": ";
    for (char c : what) one += c == '\n' ? std::string("\\n") : std::string(1, c);  // one line
    errors_->push_back(std::move(one));
  }

  bool Scalar(const YAML::Node& n, const std::string& key) {
    if (n.IsScalar()) return true;
    Error(n, "'" + key + "' must be a single value");
    return false;
  }
  bool Number(const YAML::Node& n, const std::string& key, double* out) {
    if (!Scalar(n, key)) return false;
    const std::string& s = n.Scalar();
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !std::isfinite(v)) {
      Error(n, "'" + key + "' must be a number, not '" + s + "'");
      return false;
    }
    *out = v;
    return true;
  }
  bool Duration(const YAML::Node& n, const std::string& key, int64_t* out) {
    if (!Scalar(n, key)) return false;
    if (!ParseDuration(n.Scalar(), out)) {
      Error(n, "'" + key + "' must be a duration such as 30s, 5m or 1h, not '" + n.Scalar() + "'");
      return false;
    }
    return true;
  }

  void ParseRule(const YAML::Node& n, std::set<std::string>* names, RuleSet* out) {
    const int line = n.Mark().line + 1;
    if (!n.IsMap()) {
      Error(n, "a rule must be a mapping (name: ..., signal: ...)");
      return;
    }
    const size_t errors_before = errors_->size();
    Rule r;
    r.line = line;
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string key = it->first.as<std::string>("");
      if (!KnownKeys().count(key)) Error(it->first, "unknown key '" + key + "'");
    }
    bool has_signal = false, signal_requests = false;
    if (auto v = n["name"]; !v) {
      Error(line, "the rule has no 'name'");
    } else if (Scalar(v, "name")) {
      r.name = v.Scalar();
      bool ok = !r.name.empty() && !std::isdigit(static_cast<unsigned char>(r.name[0]));
      for (char c : r.name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
      if (!ok)
        Error(v,
              "'name' must be letters, digits and _ (not starting with a digit): '" + r.name + "'");
      else if (!names->insert(r.name).second)
        Error(v, "a rule named '" + r.name + "' already exists");
    }
    if (auto v = n["signal"]; !v) {
      Error(line, "the rule has no 'signal'");
    } else if (Scalar(v, "signal")) {
      std::string known;
      for (const auto& s : kSignals) {
        if (v.Scalar() == s.name) {
          r.signal = s.signal;
          has_signal = true;
          signal_requests = s.requests;
        }
        known += known.empty() ? "" : ", ";
        known += s.name;
      }
      if (!has_signal) Error(v, "unknown signal '" + v.Scalar() + "' (known: " + known + ")");
    }
    if (auto v = n["window"]) Duration(v, "window", &r.window_s);
    if (r.window_s <= 0) Error(n["window"] ? n["window"] : n, "'window' must be at least 1s");
    if (auto v = n["for"]) Duration(v, "for", &r.for_s);
    if (auto v = n["keep_firing_for"]) Duration(v, "keep_firing_for", &r.keep_firing_for_s);
    if (auto v = n["severity"]; v && Scalar(v, "severity")) {
      const std::string& s = v.Scalar();
      if (s == "notice")
        r.severity = Severity::kNotice;
      else if (s == "warning")
        r.severity = Severity::kWarning;
      else if (s == "critical")
        r.severity = Severity::kCritical;
      else
        Error(v, "'severity' must be notice, warning or critical, not '" + s + "'");
    }
    if (auto v = n["min_requests"]) {
      double d = 0;
      if (Number(v, "min_requests", &d)) {
        // 2^64 and beyond do not fit the count (their conversion is undefined).
        if (d < 0 || d != std::floor(d) || d >= 18446744073709551616.0)
          Error(v, "'min_requests' must be a whole number from 0 to 2^64-1");
        else
          r.min_requests = static_cast<uint64_t>(d);
      }
    }
    if (auto v = n["summary"]; v && Scalar(v, "summary")) r.summary = v.Scalar();
    int scopes = 0;
    for (const char* k : {"route", "target", "process"}) {
      if (auto v = n[k]; v && Scalar(v, k)) {
        ++scopes;
        r.scope_kind = k;
        r.scope_value = v.Scalar();
        if (r.scope_value.empty()) Error(v, std::string("'") + k + "' must not be empty");
      }
    }
    if (scopes > 1) Error(line, "a rule has at most one scope (route, target or process)");
    if (auto v = n["baseline"]) Duration(v, "baseline", &r.baseline_s);
    if (auto v = n["slo"]) Number(v, "slo", &r.slo);
    if (auto v = n["latency_ms"]) Number(v, "latency_ms", &r.latency_ms);

    const bool has_above = static_cast<bool>(n["above"]), has_below = static_cast<bool>(n["below"]);
    if (r.slo != 0 || n["slo"]) {
      if (r.slo <= 0 || r.slo >= 100)
        Error(n["slo"], "'slo' must be a percentage between 0 and 100, e.g. 99.9");
      if (has_signal && r.signal != Signal::kErrorRatio && r.signal != Signal::kLatency)
        Error(n["signal"], "an 'slo' rule's signal must be error_ratio or latency");
      if (has_above || has_below || n["clear"] || n["baseline"])
        Error(line,
              "an 'slo' rule takes no above/below/clear/baseline: it fires on its burn windows");
      r.burn = {{3600, 300, 14.4}, {6 * 3600, 1800, 6}};
      if (auto b = n["burn"]) {
        r.burn.clear();
        if (!b.IsSequence() || b.size() == 0) {
          Error(b, "'burn' must be a list of {long: 1h, short: 5m, factor: 14.4}");
        } else {
          for (const auto& p : b) {
            BurnWindow w;
            if (!p.IsMap() || !p["long"] || !p["short"] || !p["factor"]) {
              Error(p, "each 'burn' entry needs long, short and factor");
              continue;
            }
            Duration(p["long"], "long", &w.long_s);
            Duration(p["short"], "short", &w.short_s);
            Number(p["factor"], "factor", &w.factor);
            if (w.short_s <= 0 || w.long_s < w.short_s)
              Error(p, "a burn window's 'short' must be > 0 and not longer than 'long'");
            if (w.long_s > kMaxSpanS) Error(p["long"], "a burn window is at most 12h");
            if (w.factor <= 0) Error(p["factor"], "'factor' must be > 0");
            r.burn.push_back(w);
          }
        }
      }
      r.above = true;
      r.threshold = r.clear = r.burn.empty() ? 1 : r.burn.front().factor;
      r.window_s = r.burn.empty() ? 3600 : r.burn.front().long_s;
    } else {
      if (n["burn"]) Error(n["burn"], "'burn' needs 'slo'");
      if (has_signal && r.signal == Signal::kLatency)
        Error(n["signal"], "signal 'latency' is for slo rules (slo: 99, latency_ms: 500)");
      if (has_above == has_below) {
        Error(line, "the rule needs exactly one of 'above' or 'below'");
      } else {
        r.above = has_above;
        Number(n[has_above ? "above" : "below"], has_above ? "above" : "below", &r.threshold);
        r.clear = r.threshold;
        if (auto c = n["clear"]; c && Number(c, "clear", &r.clear)) {
          if (r.above && r.clear > r.threshold)
            Error(c, "'clear' must not be above 'above' (it is where a firing alert ends)");
          if (!r.above && r.clear < r.threshold)
            Error(c, "'clear' must not be below 'below' (it is where a firing alert ends)");
        }
      }
    }
    if (n["latency_ms"] && (r.signal != Signal::kLatency))
      Error(n["latency_ms"], "'latency_ms' is for the latency signal");
    if (r.signal == Signal::kLatency && has_signal) {
      bool bound = false;
      for (double b : kBucketMs) bound = bound || std::fabs(b - r.latency_ms) < 1e-9;
      if (!bound)
        Error(n["latency_ms"] ? n["latency_ms"] : n,
              "'latency_ms' must be one of the histogram's bounds: 1, 2.5, 5, 10, 25, 50, 100, "
              "250, 500, 1000, 2500, 5000, 10000");
    }
    if (has_signal && !signal_requests && r.signal != Signal::kProcessDown && !r.scope_kind.empty())
      Error(line, "signal '" + std::string(SignalName(r.signal)) +
                      "' is host-wide: it takes no route/target/process");
    if (r.signal == Signal::kProcessDown && !r.scope_kind.empty() && r.scope_kind != "target")
      Error(line, "process_down can be scoped to a target only");
    if (r.scope_kind == "process" &&
        (r.signal == Signal::kP95Ms || r.signal == Signal::kP99Ms || r.signal == Signal::kLatency))
      Error(line, "latency signals can be scoped to a route or a target, not a process");
    if (n["baseline"] && r.baseline_s > 0 &&
        (r.signal != Signal::kP95Ms && r.signal != Signal::kP99Ms &&
         r.signal != Signal::kErrorRatio && r.signal != Signal::kRequestRate))
      Error(n["baseline"], "'baseline' works with p95_ms, p99_ms, error_ratio and request_rate");
    const int64_t span =
        r.window_s * (r.signal == Signal::kRequestRateChange ? 2 : 1) + r.baseline_s;
    if (span > kMaxSpanS)
      Error(line, "the rule looks back " + FormatDuration(span) + "; at most 12h");
    if (r.summary.empty()) r.summary = r.name + ": " + SignalName(r.signal) + " {{value}}";
    if (errors_->size() == errors_before) out->rules.push_back(std::move(r));
  }

  void ParseDocument(const std::string& text, RuleSet* out) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
      Error(e.mark.line + 1, "not valid YAML: " + e.msg);
      return;
    }
    if (!root.IsMap() || !root["rules"]) {
      Error(root.IsDefined() && !root.IsNull() ? root.Mark().line + 1 : 1,
            "expected a top-level 'rules:' list");
      return;
    }
    for (auto it = root.begin(); it != root.end(); ++it) {
      const std::string key = it->first.as<std::string>("");
      if (key != "rules")
        Error(it->first, "unknown top-level key '" + key + "' (expected 'rules')");
    }
    const YAML::Node rules = root["rules"];
    if (rules.IsNull()) return;  // an empty list: alerting with no rules
    if (!rules.IsSequence()) {
      Error(rules, "'rules' must be a list of rules");
      return;
    }
    std::set<std::string> names;
    for (const auto& n : rules) ParseRule(n, &names, out);
  }

 private:
  std::string file_;
  std::vector<std::string>* errors_;
};

}  // namespace

const char* SignalName(Signal s) {
  for (const auto& i : kSignals)
    if (i.signal == s) return i.name;
  return "?";
}

const char* SeverityName(Severity s) {
  switch (s) {
    case Severity::kNotice:
      return "notice";
    case Severity::kWarning:
      return "warning";
    case Severity::kCritical:
      return "critical";
  }
  return "?";
}

bool ParseDuration(const std::string& text, int64_t* seconds) {
  if (text == "0") {
    *seconds = 0;
    return true;
  }
  int64_t total = 0;
  size_t i = 0;
  if (text.empty()) return false;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
    if (j == i || j == text.size() || j - i > 9) return false;
    const int64_t n = std::stoll(text.substr(i, j - i));
    int64_t unit = 0;
    switch (text[j]) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      default:
        return false;
    }
    total += n * unit;
    i = j + 1;
  }
  *seconds = total;
  return true;
}

std::string FormatDuration(int64_t s) {
  if (s > 0 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s > 0 && s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

bool ParseRules(const std::string& yaml_text, const std::string& file_name, RuleSet* out,
                std::vector<std::string>* errors) {
  const size_t before = errors->size();
  Parser parser(file_name, errors);
  try {
    parser.ParseDocument(yaml_text, out);
  } catch (const YAML::Exception& e) {  // anything yaml-cpp throws past the checks above
    parser.Error(e.mark.line + 1, "cannot read the rules: " + e.msg);
  } catch (const std::exception& e) {
    parser.Error(1, std::string("cannot read the rules: ") + e.what());
  }
  return errors->size() == before;
}

bool LoadRules(const std::string& path, RuleSet* out, std::vector<std::string>* errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors->push_back(path + ": cannot read the rules file");
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseRules(ss.str(), path, out, errors);
}

const char* DefaultRulesYaml() {
  return R"YAML(# reqmon's built-in alert rules (after Netdata's health.d defaults).
rules:
  - name: HighCpu
    signal: cpu_percent
    window: 1m
    above: 85
    clear: 75
    for: 10m
    keep_firing_for: 1m
    severity: warning
    summary: "host CPU {{value}}% (1m mean)"
  - name: HighMemory
    signal: memory_percent
    window: 1m
    above: 90
    clear: 80
    for: 5m
    keep_firing_for: 1m
    severity: warning
    summary: "host memory {{value}}% in use"
  - name: DiskFullSoon
    signal: disk_hours_to_full
    window: 30m
    below: 8
    clear: 12
    for: 5m
    severity: critical
    summary: "disk full in {{value}} h at the last 30m's rate"
  - name: ErrorRateHigh
    signal: error_ratio
    window: 5m
    above: 2
    clear: 1
    for: 1m
    keep_firing_for: 2m
    min_requests: 600
    severity: warning
    summary: "5xx share {{value}}% over 5m"
  - name: HighErrorRate
    signal: error_ratio
    window: 5m
    above: 5
    clear: 3
    for: 1m
    keep_firing_for: 2m
    min_requests: 600
    severity: critical
    summary: "5xx share {{value}}% over 5m"
  - name: LatencyP99Spike
    signal: p99_ms
    window: 5m
    baseline: 10m
    above: 2
    clear: 1.5
    for: 2m
    keep_firing_for: 2m
    min_requests: 600
    severity: warning
    summary: "p99 {{value}}x its 10m baseline"
  - name: LostEvents
    signal: lost_events
    window: 1m
    above: 0
    keep_firing_for: 5m
    severity: warning
    summary: "{{value}} events lost in 1m: raise --ring-buffer-mb"
  - name: ProcessDown
    signal: process_down
    window: 1s
    above: 0
    for: 30s
    severity: critical
    summary: "{{value}} target(s) lost every observed process"
)YAML";
}

RuleSet DefaultRules() {
  RuleSet rs;
  std::vector<std::string> errors;
  ParseRules(DefaultRulesYaml(), "(built-in rules)", &rs, &errors);
  return rs;  // the unit tests check that the built-in rules parse without errors
}

}  // namespace reqmon::alerts
