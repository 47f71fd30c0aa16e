// SPDX-License-Identifier: MIT
// Workers that come and go, live (label "bpf"): a real gunicorn with --max-requests replaces each
// sync worker after a few dozen requests, so that under load its master forks new workers all the
// time and the old ones exit. reqmon, attached by the master's PID, follows each new worker from
// its fork.
//  - Plain HTTP is seen from the worker's first instruction (the kernel adds the child to the
//    targets in the fork tracepoint): every request gunicorn logged must be counted. Workers
//    forked while reqmon loaded its programs, before that tracepoint was attached, went unseen
//    for their whole life (520 of 600 here) until the --pid tree was walked again after attach.
//  - HTTPS needs the worker's own uprobes, attached from user space once its fork is seen, so
//    a request a worker served before they were in would not be seen. Where the kernel has
//    uprobe_multi links (6.9+) the attach takes well under a millisecond, and a gunicorn worker
//    starts serving some milliseconds after its fork: every HTTPS request must be counted too.
//    (With a perf-event uprobe per probe, the attach took 10-450 ms under such churn, and the
//    detach ~90 ms a probe; docs/performance.md.)
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <thread>

#include "app_support.h"
#include "reqmon/capture/uprobe_multi.h"

namespace reqmon {
namespace {

using nlohmann::json;
using testing::GetJson;

int LoggedRequests(const testing::fs::path& p) {
  std::ifstream in(p);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) n += line.find("GET /") != std::string::npos;
  return n;
}

class GunicornLiveTest : public testing::LiveReqmonTest {
 protected:
  // Sends `per_client` requests from each of 4 curl processes at once (a connection each: sync
  // workers close it); returns /stats once reqmon's count stopped growing.
  json Drive(const testing::Gunicorn& g, int per_client) {
    std::vector<std::thread> clients;
    for (int c = 0; c < 4; ++c)
      clients.emplace_back([&, c] {
        testing::Run("curl -sk -o /dev/null '" + g.url("/c" + std::to_string(c)) + "/[1-" +
                     std::to_string(per_client) + "]' 2>/dev/null");
      });
    for (auto& t : clients) t.join();
    return StatsWhenSettled();
  }
  static int Workers(const json& s) {
    int n = 0;
    for (const auto& p : s["processes"]) n += p["count"].get<int>() > 0;
    return n;
  }
  // A gunicorn of 3 workers, each replaced after 40 requests, observed by its master's PID under
  // 600 requests from 4 clients: every request it logged must be counted. *out: /stats then.
  void CountsAllUnderChurn(bool tls, json* out) {
    testing::Gunicorn g(3, 40, tls);
    StartReqmon({"--pid", std::to_string(g.master_pid())});
    json s = Drive(g, 150);
    *out = s;
    const int logged = LoggedRequests(g.access_log());
    std::printf("gunicorn logged %d%s, reqmon counted %d, served by %d workers\n", logged,
                tls ? " over HTTPS" : "", s["total_requests"].get<int>(), Workers(s));
    ASSERT_EQ(logged, 600);
    EXPECT_EQ(s["total_requests"], logged);
    EXPECT_EQ(s["status_codes"]["200"], logged);
    EXPECT_EQ(s["incomplete_requests"], 0);
    EXPECT_EQ(s["lost_events"], 0);
    EXPECT_GE(Workers(s), 3 + 600 / 40 - 3);  // workers replaced as they went
  }
};

TEST_F(GunicornLiveTest, PlainRequestsOfWorkersForkedUnderLoadAreAllCounted) {
  if (!testing::HaveBinary("gunicorn"))
    GTEST_SKIP() << "no gunicorn (scripts/setup.sh installs it)";
  json s;
  ASSERT_NO_FATAL_FAILURE(CountsAllUnderChurn(false, &s));
  EXPECT_EQ(s["capture"]["connections_open"], 0);
}

TEST_F(GunicornLiveTest, HttpsRequestsOfWorkersForkedUnderLoadAreAllCounted) {
  if (!testing::HaveBinary("gunicorn"))
    GTEST_SKIP() << "no gunicorn (scripts/setup.sh installs it)";
  std::string why;
  if (!UprobeMultiUsable(&why))
    GTEST_SKIP() << "no uprobe_multi links (" << why << "): a worker's first HTTPS requests may "
                 << "be served before its probes are in";
  json s;
  ASSERT_NO_FATAL_FAILURE(CountsAllUnderChurn(true, &s));
  EXPECT_EQ(s["tls"]["requests"], 600);
  EXPECT_EQ(s["capture"]["kernel_tls_unbound"], 0);
  // The master and the 3 live workers are hooked (a fourth worker if one was being replaced),
  // by two links each; the exited workers are not.
  EXPECT_GE(s["tls"]["hooked_processes"].size(), 4u) << s["tls"].dump();
  EXPECT_LE(s["tls"]["hooked_processes"].size(), 5u) << s["tls"].dump();
  for (const auto& h : s["tls"]["hooked_processes"]) EXPECT_EQ(h["links"], "uprobe_multi");
}

}  // namespace
}  // namespace reqmon
