// SPDX-License-Identifier: MIT
// Apache httpd, live (label "bpf"): the real reqmon observes a real Apache (Debian's apache2, with
// mod_ssl) by its master's PID, under its two common process models: the event MPM (processes of
// threads; a keep-alive connection can move between threads) and prefork (a process per
// connection). The same traffic goes to its plain and its TLS port: curl with keep-alive and
// without, 200/404/500 and a 100 kB file, ab with keep-alive and without. Apache's own access
// log is the ground truth: reqmon must count what it logged, request for request and status for
// status, with nothing left unanswered, unbound or unparsed.
//
// mod_ssl reads through a BIO of its own, which reads ahead: a connection's first request can come
// in with the handshake, outside SSL_read, on a worker thread that has made no SSL call yet. Until
// reqmon remembered that read (bpf/tls.bpf.h, tls_on_socket), that request had no socket to go to
// (kernel_tls_unbound) and its response came alone (http_orphan_responses).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "app_support.h"

namespace reqmon {
namespace {

using nlohmann::json;
using testing::Curl;
using testing::GetJson;

// What Apache logged: requests in all, over TLS, per status, and their mean time in ms.
struct AccessLog {
  int total = 0;
  int tls = 0;
  std::map<std::string, int> statuses;
  double mean_ms = 0;
};

AccessLog ReadAccessLog(const testing::fs::path& p, int tls_port) {
  AccessLog a;
  std::ifstream in(p);
  std::string line;
  double sum_us = 0;
  while (std::getline(in, line)) {
    // "%p %r %>s %D": port, method, target, protocol, status, µs
    std::istringstream f(line);
    int port = 0;
    std::string method, target, proto, status;
    double us = 0;
    if (!(f >> port >> method >> target >> proto >> status >> us)) continue;
    ++a.total;
    a.tls += port == tls_port;
    ++a.statuses[status];
    sum_us += us;
  }
  if (a.total) a.mean_ms = sum_us / a.total / 1000.0;
  return a;
}

int RunLoad(const std::string& cmd) {
  int st = 0;
  testing::Run(cmd + " >/dev/null 2>&1", &st);
  return st;
}

class ApacheLiveTest : public testing::LiveReqmonTest,
                       public ::testing::WithParamInterface<const char*> {};

TEST_P(ApacheLiveTest, CountsWhatApacheLoggedOverHttpAndHttps) {
  if (!testing::HaveBinary("apache2")) GTEST_SKIP() << "no apache2 (scripts/setup.sh installs it)";
  testing::Apache apache(GetParam());
  StartReqmon({"--pid", std::to_string(apache.master_pid())});

  for (bool tls : {false, true}) {
    auto url = [&](const std::string& p) { return tls ? apache.tls_url(p) : apache.url(p); };
    std::vector<std::string> api, missing, errors;
    for (int i = 0; i < 10; ++i) api.push_back(url("/api/v" + std::to_string(i)));
    for (int i = 0; i < 3; ++i) missing.push_back(url("/missing/" + std::to_string(i)));
    for (int i = 0; i < 2; ++i) errors.push_back(url("/status/500"));
    ASSERT_EQ(Curl(api, true), 10);  // keep-alive, on one connection
    ASSERT_EQ(Curl(missing, false), 3);
    ASSERT_EQ(Curl(errors, true), 2);
    ASSERT_EQ(Curl({url("/big.bin")}, false), 1);
    // Load on a few keep-alive connections at once (fewer than the processes or threads Apache
    // keeps spare, so that it forks none while the test runs). ab, not wrk: wrk stops with
    // requests in flight, and a response Apache writes to a connection the client has reset
    // (close with a response unread) fails, but is logged all the same.
    ASSERT_EQ(RunLoad("ab -q -k -n 3000 -c 4 " + url("/api/ab-k")), 0);
  }
  ASSERT_EQ(RunLoad("ab -q -n 300 -c 4 " + apache.url("/api/ab")), 0);  // a connection each
  const int sent = 2 * (10 + 3 + 2 + 1 + 3000) + 300;

  // Apache logs a request once it has answered it; wait until reqmon and the log agree, or 10 s.
  AccessLog log;
  json s;
  for (int i = 0; i < 100; ++i) {
    log = ReadAccessLog(apache.access_log(), apache.tls_port());
    s = GetJson(Url("/stats"));
    if (log.total > 0 && s["total_requests"].get<int>() == log.total) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // capture counters published
  log = ReadAccessLog(apache.access_log(), apache.tls_port());
  s = GetJson(Url("/stats"));
  std::printf("%s: Apache logged %d requests (%d over TLS); reqmon counted %d (%d over TLS)\n",
              GetParam(), log.total, log.tls, s["total_requests"].get<int>(),
              s["tls"]["requests"].get<int>());
  ASSERT_EQ(log.total, sent);
  EXPECT_EQ(s["total_requests"], log.total);
  EXPECT_EQ(s["tls"]["requests"], log.tls);
  json statuses = json::object();
  for (const auto& [code, n] : log.statuses) statuses[code] = n;
  EXPECT_EQ(s["status_codes"], statuses);
  EXPECT_EQ(s["incomplete_requests"], 0);
  EXPECT_EQ(s["lost_events"], 0);
  EXPECT_EQ(s["unparsed"]["bytes"], 0);
  EXPECT_EQ(s["capture"]["kernel_tls_unbound"], 0);
  EXPECT_EQ(s["capture"]["http_orphan_responses"], 0);
  EXPECT_EQ(s["capture"]["connections_open"], 0);

  // The workers served everything, the master nothing.
  int by_workers = 0;
  for (const auto& p : s["processes"]) {
    EXPECT_NE(p["pid"].get<int>(), apache.master_pid());
    by_workers += p["count"].get<int>();
  }
  EXPECT_EQ(by_workers, log.total);

  // Response times agree with Apache's own %D.
  double ours = s["average_response_time"].get<double>();
  std::printf("average response time: reqmon %.3f ms, Apache's access log %.3f ms\n", ours,
              log.mean_ms);
  EXPECT_NEAR(ours, log.mean_ms, std::max(0.5, log.mean_ms * 0.1));
}

INSTANTIATE_TEST_SUITE_P(Mpm, ApacheLiveTest, ::testing::Values("event", "prefork"),
                         [](const ::testing::TestParamInfo<const char*>& i) {
                           return std::string(i.param);
                         });

}  // namespace
}  // namespace reqmon
