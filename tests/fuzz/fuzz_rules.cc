// SPDX-License-Identifier: MIT
// The alert rules file (src/alerts/rules.cc, yaml-cpp): any text must give rules or error lines,
// never an exception or a crash. Durations too: what ParseDuration accepts, FormatDuration
// writes back as the same number of seconds (up to 9 digits of them).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "reqmon/alerts/rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace reqmon::alerts;
  const std::string text(reinterpret_cast<const char*>(data), size);
  RuleSet rules;
  std::vector<std::string> errors;
  const bool ok = ParseRules(text, "fuzz.yml", &rules, &errors);
  if (ok != errors.empty()) std::abort();
  for (const std::string& e : errors) {
    if (e.find('\n') != std::string::npos) {
      std::fprintf(stderr, "fuzz: an error of more than one line: %s\n", e.c_str());
      std::abort();
    }
  }
  if (size <= 32) {
    int64_t s = 0;
    if (ParseDuration(text, &s)) {
      int64_t back = -1;
      // Beyond 9 digits of seconds FormatDuration's text is for messages only ("32514359490s"
      // does not read back: numbers have at most 9 digits).
      if (s < 0 || (s <= 999999999 && (!ParseDuration(FormatDuration(s), &back) || back != s))) {
        std::fprintf(stderr, "fuzz: duration '%s' = %lld s, written back as '%s'\n", text.c_str(),
                     static_cast<long long>(s), FormatDuration(s).c_str());
        std::abort();
      }
    }
  }
  return 0;
}
