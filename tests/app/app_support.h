// SPDX-License-Identifier: MIT
#pragma once
// Helpers for tests that run the real reqmon binary: start it, wait for its API, fetch JSON with
// a real HTTP client (curl).

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../support/servers.h"
#include "reqmon/capture/bpf_capture.h"

namespace reqmon::testing {

inline std::string ReqmonBinary() { return REQMON_BINARY; }
inline std::string TestData(const std::string& name) {
  return std::string(REQMON_TEST_DATA) + "/" + name;
}

/// Fetches a URL with curl; *code gets the HTTP status (0 when unreachable).
inline std::string HttpGet(const std::string& url, int* code = nullptr,
                           const std::string& extra = "") {
  std::string out = Run("curl -s --max-time 10 " + extra + " -w '\\nRQCODE:%{http_code}' '" + url +
                        "' 2>/dev/null");
  size_t at = out.rfind("\nRQCODE:");
  int c = 0;
  if (at != std::string::npos) {
    c = std::atoi(out.c_str() + at + 8);
    out.resize(at);
  }
  if (code) *code = c;
  return out;
}

inline nlohmann::json GetJson(const std::string& url) {
  int code = 0;
  std::string body = HttpGet(url, &code);
  if (code != 200) throw std::runtime_error(url + " answered " + std::to_string(code) + ": " + body);
  return nlohmann::json::parse(body);
}

/// Waits until reqmon's /healthz answers 200.
inline bool WaitForApi(int port, int timeout_ms = 15000) {
  for (int waited = 0; waited < timeout_ms; waited += 100) {
    int code = 0;
    HttpGet("http://127.0.0.1:" + std::to_string(port) + "/healthz", &code);
    if (code == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

/// Runs reqmon to completion with arguments; returns stdout, *status the exit code, *err stderr.
inline std::string RunReqmon(const std::string& args, int* status, std::string* err = nullptr) {
  fs::path errf = fs::temp_directory_path() / ("reqmon-err-" + std::to_string(getpid()));
  std::string out = Run(ReqmonBinary() + " " + args + " 2>" + errf.string(), status);
  if (err) *err = ReadFile(errf);
  fs::remove(errf);
  return out;
}

/// Base fixture for live tests of the real binary: skips (printing why) where BPF cannot load,
/// gives a temporary folder and a free API port, starts reqmon and waits until it is attached.
class LiveReqmonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = CheckBpfPrerequisites(); !why.empty()) {
      std::printf("SKIPPED (BPF not available): %s\n", why.c_str());
      GTEST_SKIP() << why;
    }
    dir_ = MakeTempDir("live-e2e");
    api_port_ = FreePort();
  }
  void TearDown() override {
    reqmon_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  /// Starts reqmon with `args`, its API on the free port and its log at `log_file` ("" for a
  /// monitor_logs.txt in the temporary folder, "none" for no log).
  void StartReqmon(std::vector<std::string> args, std::string log_file = "") {
    if (log_file.empty()) log_file = (dir_ / "monitor_logs.txt").string();
    std::vector<std::string> argv = {ReqmonBinary(), "--listen",
                                     "127.0.0.1:" + std::to_string(api_port_), "--log-file",
                                     log_file};
    argv.insert(argv.end(), args.begin(), args.end());
    reqmon_ = std::make_unique<Process>(argv, (dir_ / "reqmon.err").string());
    ASSERT_TRUE(WaitForApi(api_port_)) << ReadFile(dir_ / "reqmon.err");
  }
  std::string Url(const std::string& p) const {
    return "http://127.0.0.1:" + std::to_string(api_port_) + p;
  }
  /// Polls /stats until total_requests reaches `n` (or 10 s pass), then returns it.
  nlohmann::json StatsWhenTotal(int n) {
    for (int i = 0; i < 100; ++i) {
      if (GetJson(Url("/stats"))["total_requests"].get<int>() >= n) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // nothing more may arrive
    return GetJson(Url("/stats"));
  }
  /// Polls /stats until ok(stats) holds (or 5 s pass), then returns the last one read.
  nlohmann::json StatsWhen(const std::function<bool(const nlohmann::json&)>& ok) {
    nlohmann::json s;
    for (int i = 0; i < 50; ++i) {
      s = GetJson(Url("/stats"));
      if (ok(s)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return s;
  }
  /// Polls /stats until total_requests stops growing (the same in two reads 300 ms apart, or
  /// 15 s pass), then returns /stats once the capture's counters, published once a second, have
  /// been published since. For a load whose exact count only the client knows.
  nlohmann::json StatsWhenSettled() {
    int last = -1;
    for (int i = 0; i < 50; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      const int n = GetJson(Url("/stats"))["total_requests"].get<int>();
      if (n == last) break;
      last = n;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    return GetJson(Url("/stats"));
  }
  /// Whether /stats (`j`) shows at least `opened` connections opened and none open. The capture's
  /// counters are published once a second: connections_open is 0 before the first publication
  /// too, so 0 open alone proves nothing.
  static bool Closed(const nlohmann::json& j, int opened) {
    return j["capture"]["connections_opened"] >= opened && j["capture"]["connections_open"] == 0;
  }

  fs::path dir_;
  int api_port_ = 0;
  std::unique_ptr<Process> reqmon_;
};

}  // namespace reqmon::testing
