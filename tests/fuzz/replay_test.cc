// SPDX-License-Identifier: MIT
// Runs every fuzz target over its checked-in inputs: seeds/<target>/ (and, for the capture
// reader, tests/data/*.rqcap) and regressions/<target>/, the inputs of crashes the fuzzers found
// and that were fixed. A target aborts on a failed check; the sanitizer build turns memory and
// undefined-behaviour errors into failures too.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ostream>
#include <string>
#include <vector>

#define REQMON_FUZZ_DECLARE(name) \
  extern "C" int ReqmonFuzz_##name(const uint8_t* data, size_t size);
REQMON_FUZZ_DECLARE(tracker)
REQMON_FUZZ_DECLARE(http1)
REQMON_FUZZ_DECLARE(http2)
REQMON_FUZZ_DECLARE(capture)
REQMON_FUZZ_DECLARE(rules)
REQMON_FUZZ_DECLARE(query)

namespace {

namespace fs = std::filesystem;

struct Target {
  const char* name;
  int (*run)(const uint8_t*, size_t);
};

std::vector<fs::path> Inputs(const std::string& name) {
  std::vector<fs::path> files;
  for (const char* kind : {"seeds", "regressions"}) {
    const fs::path dir = fs::path(REQMON_FUZZ_DIR) / kind / name;
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) files.push_back(e.path());
  }
  if (name == "capture") {
    for (const auto& e : fs::directory_iterator(REQMON_TEST_DATA))
      if (e.path().extension() == ".rqcap") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void PrintTo(const Target& t, std::ostream* os) { *os << t.name; }

class FuzzReplay : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzReplay, CheckedInInputs) {
  const Target& t = GetParam();
  const std::vector<fs::path> files = Inputs(t.name);
  ASSERT_FALSE(files.empty()) << "no seeds for " << t.name;
  for (const fs::path& f : files) {
    SCOPED_TRACE(f.string());
    std::ifstream in(f, std::ios::binary);
    ASSERT_TRUE(in) << f;
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(t.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay,
                         ::testing::Values(Target{"tracker", ReqmonFuzz_tracker},
                                           Target{"http1", ReqmonFuzz_http1},
                                           Target{"http2", ReqmonFuzz_http2},
                                           Target{"capture", ReqmonFuzz_capture},
                                           Target{"rules", ReqmonFuzz_rules},
                                           Target{"query", ReqmonFuzz_query}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
