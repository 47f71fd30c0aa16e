// SPDX-License-Identifier: MIT
#pragma once
/// Alert rules: what they say, the YAML file they come from, and the built-in defaults.
/// The file format and the defaults are described in README.md ("Alerts").

#include <cstdint>
#include <string>
#include <vector>

namespace reqmon::alerts {

enum class Signal {
  kCpuPercent,         ///< host CPU busy %, mean over the window
  kMemoryPercent,      ///< host memory in use %, mean over the window
  kDiskPercent,        ///< monitored filesystem used %, mean over the window
  kDiskHoursToFull,    ///< free bytes / growth per hour over the window (no verdict if not growing)
  kErrorRatio,         ///< 5xx share of complete requests in the window, in percent
  kP95Ms,              ///< 95th percentile of response time over the window (histogram buckets)
  kP99Ms,              ///< 99th percentile
  kRequestRate,        ///< requests per second over the window
  kRequestRateChange,  ///< % change of the request rate against the window just before
  kLostEvents,         ///< events lost by the kernel ring buffer during the window
  kProcessDown,        ///< targets whose observed processes are all gone, with no successor
  kLatency,            ///< SLO rules only: share of requests slower than latency_ms
  // Analytics (issue #14, src/analytics): fed in SecondSample when analytics runs.
  kUtilization,        ///< throughput / estimated capacity of the host, %, mean over the window
  kHoursToFull,        ///< fewest hours to exhaustion of the forecasts (memory, disk, request
                       ///< rate), mean over the window; no verdict without a forecast
  kAnomaly,            ///< largest per-route anomaly score (robust z) seen in the window
};

enum class Severity { kNotice, kWarning, kCritical };

/// One pair of the SRE workbook's multi-window burn-rate alerts: the error budget burns at more
/// than `factor` times the sustainable rate over both the long and the short window.
struct BurnWindow {
  int64_t long_s = 3600;
  int64_t short_s = 300;
  double factor = 14.4;
};

struct Rule {
  std::string name;
  Signal signal = Signal::kErrorRatio;
  int64_t window_s = 300;
  bool above = true;     ///< true: `above` (enter when value > threshold); false: `below`
  double threshold = 0;  ///< enter threshold
  double clear = 0;      ///< exit threshold (hysteresis); equals threshold when not given
  int64_t for_s = 0;     ///< the condition holds this long before firing (pending until then)
  int64_t keep_firing_for_s = 0;  ///< stays firing this long after the condition ends
  Severity severity = Severity::kWarning;
  uint64_t min_requests = 0;  ///< fewer requests in the window: no verdict
  std::string summary;        ///< "{{value}}" is replaced by the value
  std::string scope_kind;     ///< "", "route" ("GET /users/{id}"), "target" or "process" (comm)
  std::string scope_value;
  int64_t baseline_s = 0;        ///< > 0: the value is signal(window) / signal(baseline before it)
  double slo = 0;                ///< > 0: a burn-rate rule with this objective (e.g. 99.9)
  double latency_ms = 0;         ///< latency SLO: requests slower than this are "bad"
  std::vector<BurnWindow> burn;  ///< SLO pairs (default: 1h/5m x14.4, 6h/30m x6)
  int line = 0;                  ///< where the rule starts in its file (0: built in)
};

struct RuleSet {
  std::vector<Rule> rules;
};

const char* SignalName(Signal s);
const char* SeverityName(Severity s);
/// "30s", "5m", "1h", "2d", "1h30m", "0"; false when malformed.
bool ParseDuration(const std::string& text, int64_t* seconds);
/// "300" -> "5m", "90" -> "90s", "5400" -> "90m", "3600" -> "1h".
std::string FormatDuration(int64_t seconds);

/// Parses a rules file's text. Every mistake adds one line "FILE:LINE: what is wrong" to
/// *errors (parsing goes on past a bad rule, so one run lists them all). Returns errors->empty().
bool ParseRules(const std::string& yaml_text, const std::string& file_name, RuleSet* out,
                std::vector<std::string>* errors);
/// Reads and parses a file ("FILE: cannot read: ..." when unreadable).
bool LoadRules(const std::string& path, RuleSet* out, std::vector<std::string>* errors);
/// The built-in rules (active without --alert-rules); see README.md for the table.
RuleSet DefaultRules();
/// The built-in rules as YAML (the same text DefaultRules() parses).
const char* DefaultRulesYaml();

}  // namespace reqmon::alerts
