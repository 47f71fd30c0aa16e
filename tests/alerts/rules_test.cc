// SPDX-License-Identifier: MIT
#include "reqmon/alerts/rules.h"

#include <gtest/gtest.h>

#include <random>
#include <regex>

namespace reqmon::alerts {
namespace {

std::vector<std::string> Errors(const std::string& yaml) {
  RuleSet rs;
  std::vector<std::string> errors;
  ParseRules(yaml, "rules.yaml", &rs, &errors);
  return errors;
}

TEST(Rules, DurationsParseAndFormat) {
  int64_t s = -1;
  EXPECT_TRUE(ParseDuration("30s", &s));
  EXPECT_EQ(s, 30);
  EXPECT_TRUE(ParseDuration("1h30m", &s));
  EXPECT_EQ(s, 5400);
  EXPECT_TRUE(ParseDuration("0", &s));
  EXPECT_EQ(s, 0);
  for (const char* bad : {"", "5", "m", "5x", "-5m", "1.5h", "5m3"})
    EXPECT_FALSE(ParseDuration(bad, &s)) << bad;
  EXPECT_EQ(FormatDuration(300), "5m");
  EXPECT_EQ(FormatDuration(3600), "1h");
  EXPECT_EQ(FormatDuration(45), "45s");
}

TEST(Rules, AFullRuleParses) {
  RuleSet rs;
  std::vector<std::string> errors;
  ASSERT_TRUE(ParseRules(R"(rules:
  - name: HighErrorRate
    signal: error_ratio
    window: 5m
    above: 5
    clear: 3
    for: 1m
    keep_firing_for: 2m
    severity: critical
    min_requests: 600
    summary: "5xx share {{value}}% over 5m"
    route: "GET /api/{id}"
  - name: Budget
    signal: latency
    slo: 99.9
    latency_ms: 500
)",
                         "r.yaml", &rs, &errors))
      << errors[0];
  ASSERT_EQ(rs.rules.size(), 2u);
  const Rule& r = rs.rules[0];
  EXPECT_EQ(r.name, "HighErrorRate");
  EXPECT_EQ(r.signal, Signal::kErrorRatio);
  EXPECT_EQ(r.window_s, 300);
  EXPECT_TRUE(r.above);
  EXPECT_EQ(r.threshold, 5);
  EXPECT_EQ(r.clear, 3);
  EXPECT_EQ(r.for_s, 60);
  EXPECT_EQ(r.keep_firing_for_s, 120);
  EXPECT_EQ(r.severity, Severity::kCritical);
  EXPECT_EQ(r.min_requests, 600u);
  EXPECT_EQ(r.scope_kind, "route");
  EXPECT_EQ(r.scope_value, "GET /api/{id}");
  EXPECT_EQ(r.line, 2);
  const Rule& slo = rs.rules[1];
  EXPECT_EQ(slo.slo, 99.9);
  ASSERT_EQ(slo.burn.size(), 2u);  // the SRE workbook's pairs
  EXPECT_EQ(slo.burn[0].long_s, 3600);
  EXPECT_EQ(slo.burn[0].short_s, 300);
  EXPECT_DOUBLE_EQ(slo.burn[0].factor, 14.4);
  EXPECT_EQ(slo.burn[1].long_s, 6 * 3600);
  EXPECT_EQ(slo.burn[1].short_s, 1800);
  EXPECT_DOUBLE_EQ(slo.burn[1].factor, 6);
}

TEST(Rules, TheBuiltInRulesParse) {
  RuleSet rs;
  std::vector<std::string> errors;
  EXPECT_TRUE(ParseRules(DefaultRulesYaml(), "builtin", &rs, &errors))
      << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(rs.rules.size(), DefaultRules().rules.size());
  EXPECT_GE(rs.rules.size(), 7u);
  for (const Rule& r : rs.rules) {
    if (r.signal == Signal::kCpuPercent) {
      EXPECT_EQ(r.threshold, 85);
      EXPECT_EQ(r.clear, 75);
      EXPECT_EQ(r.for_s, 600);
    }
  }
}

TEST(Rules, EachMistakeIsOneLineWithFileAndLine) {
  auto e = Errors(R"(rules:
  - name: A
    signal: cpu_percent
    above: lots
  - name: B
    signal: cpu_percnt
    above: 1
  - name: A
    signal: error_ratio
    window: 5 minutes
    above: 2
    clear: 3
    severty: critical
)");
  ASSERT_EQ(e.size(), 6u) << ::testing::PrintToString(e);
  EXPECT_EQ(e[0], "rules.yaml:4: 'above' must be a number, not 'lots'");
  EXPECT_EQ(e[1].rfind("rules.yaml:6: unknown signal 'cpu_percnt' (known: cpu_percent", 0), 0u)
      << e[1];
  EXPECT_EQ(e[2], "rules.yaml:13: unknown key 'severty'");
  EXPECT_EQ(e[3], "rules.yaml:8: a rule named 'A' already exists");
  EXPECT_EQ(e[4].rfind("rules.yaml:10: 'window' must be a duration", 0), 0u) << e[4];
  EXPECT_EQ(e[5],
            "rules.yaml:12: 'clear' must not be above 'above' (it is where a firing alert ends)");
  // and 'clear' above 'above' is reported too once the window is fixed
  auto e2 = Errors("rules:\n  - name: A\n    signal: error_ratio\n    above: 2\n    clear: 3\n");
  ASSERT_EQ(e2.size(), 1u);
  EXPECT_EQ(e2[0],
            "rules.yaml:5: 'clear' must not be above 'above' (it is where a firing alert ends)");
}

TEST(Rules, StructuralMistakes) {
  EXPECT_EQ(
      Errors("rules: [\n"),
      std::vector<std::string>{"rules.yaml:2: not valid YAML: end of sequence flow not found"});
  EXPECT_EQ(Errors("- name: a\n"),
            std::vector<std::string>{"rules.yaml:1: expected a top-level 'rules:' list"});
  EXPECT_EQ(
      Errors("rules:\n  - name: A\n    signal: cpu_percent\n"),
      std::vector<std::string>{"rules.yaml:2: the rule needs exactly one of 'above' or 'below'"});
  EXPECT_EQ(
      Errors("rules:\n  - signal: cpu_percent\n    above: 1\n    route: GET /\n"),
      (std::vector<std::string>{
          "rules.yaml:2: the rule has no 'name'",
          "rules.yaml:2: signal 'cpu_percent' is host-wide: it takes no route/target/process"}));
  EXPECT_EQ(
      Errors("rules:\n  - name: S\n    signal: latency\n    slo: 99\n    latency_ms: 300\n").size(),
      1u);  // not a bucket bound
  EXPECT_EQ(
      Errors("rules:\n  - name: S\n    signal: error_ratio\n    slo: 99.9\n    above: 1\n").size(),
      1u);
  EXPECT_TRUE(Errors("rules:\n").empty());  // an empty list is fine
  // Found by fuzz_rules: a count past 2^64 was converted (undefined behaviour) instead of refused.
  for (const char* bad : {"-1", "1.5", "18446744073709551616", "6e76"})
    EXPECT_EQ(Errors(std::string("rules:\n  - name: A\n    signal: cpu_percent\n    above: 1\n"
                                 "    min_requests: ") + bad + "\n"),
              std::vector<std::string>{
                  "rules.yaml:5: 'min_requests' must be a whole number from 0 to 2^64-1"})
        << bad;
  EXPECT_TRUE(Errors("rules:\n  - name: A\n    signal: cpu_percent\n    above: 1\n"
                     "    min_requests: 1000000\n").empty());
  EXPECT_EQ(
      Errors("rules:\n  - name: A\n    signal: cpu_percent\n    above: |\n      1\n      2\n"),
      std::vector<std::string>{"rules.yaml:4: 'above' must be a number, not '1\\n2\\n'"});
}

// Bad input never crashes: the built-in file with random bytes deleted, replaced or inserted
// (seeded) is either accepted or reported as "FILE:LINE: what", one line per mistake.
TEST(Rules, MangledFilesGiveOneLineErrorsNeverACrash) {
  const std::string good = DefaultRulesYaml();
  const std::string alphabet = "abz019:-_ .{}[]\"'#&*!|>\n\t%@`";
  std::mt19937 rng(13);
  const std::regex line(R"(^m\.yaml:[0-9]+: .+$)");
  int rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text = good;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const size_t at = rng() % text.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0:
          text.erase(at, 1 + rng() % 8);
          break;
        case 1:
          text[at] = c;
          break;
        default:
          text.insert(at, 1, c);
          break;
      }
    }
    RuleSet rs;
    std::vector<std::string> errors;
    bool ok = false;
    ASSERT_NO_THROW(ok = ParseRules(text, "m.yaml", &rs, &errors)) << text;
    EXPECT_EQ(ok, errors.empty());
    if (!ok) ++rejected;
    for (const std::string& e : errors) {
      EXPECT_TRUE(std::regex_match(e, line)) << e;
      EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    }
  }
  EXPECT_GT(rejected, 1000);  // the mutations do break the file
}

}  // namespace
}  // namespace reqmon::alerts
