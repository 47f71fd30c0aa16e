// SPDX-License-Identifier: MIT
// lighttpd, live (label "bpf"): the real reqmon observes a real lighttpd (one process, an event
// loop, OpenSSL through mod_openssl) on a plain and a TLS port. lighttpd ends a keep-alive
// connection every 100 requests; wrk then closes with its own close_notify and a reset, and
// lighttpd reads the rest of that alert after the reset has closed the socket and the kernel has
// dropped the socket's TLS mark. Those ciphertext bytes came as plain bytes and were parsed:
// 4,773-4,884 unparsed bytes and 252-258 resyncs in 1 s of wrk, before the tracker learnt that
// plain bytes on a connection whose plaintext comes from the TLS library are ciphertext.
// lighttpd buffers its access log, so the clients' own counts are the ground truth here.
#include <gtest/gtest.h>

#include <regex>

#include "app_support.h"

namespace reqmon {
namespace {

using nlohmann::json;
using testing::GetJson;

// wrk's "N requests in ..." line; -1 when absent.
int WrkCompleted(const std::string& out) {
  std::smatch m;
  static const std::regex re(R"((\d+) requests in )");
  return std::regex_search(out, m, re) ? std::stoi(m[1]) : -1;
}

using LighttpdLiveTest = testing::LiveReqmonTest;

TEST_F(LighttpdLiveTest, CountsPlainAndTlsAndNeverParsesCiphertext) {
  if (!testing::HaveBinary("lighttpd"))
    GTEST_SKIP() << "no lighttpd (scripts/setup.sh installs it)";
  testing::Lighttpd server(100);
  StartReqmon({"--pid", std::to_string(server.pid())});
  int st = 0;
  for (const std::string& url : {server.url("/index.html"), server.tls_url("/index.html")}) {
    testing::Run("ab -q -k -n 1000 -c 4 " + url + " >/dev/null 2>&1", &st);
    ASSERT_EQ(st, 0) << url;
  }
  json s = StatsWhenTotal(2000);
  EXPECT_EQ(s["total_requests"], 2000);
  EXPECT_EQ(s["tls"]["requests"], 1000);

  // wrk over TLS: connections ended by the server every 100 requests, closed by wrk with an
  // alert and a reset.
  std::string out = testing::Run("wrk -t1 -c4 -d1s " + server.tls_url("/index.html") + " 2>&1");
  const int completed = WrkCompleted(out);
  ASSERT_GT(completed, 0) << out;
  s = StatsWhenSettled();
  const int tls = s["tls"]["requests"].get<int>() - 1000;
  std::printf("wrk completed %d over TLS, reqmon counted %d; ciphertext records dropped %d\n",
              completed, tls, s["capture"].value("tls_ciphertext_dropped", 0));
  EXPECT_GE(tls, completed);
  EXPECT_LE(tls, completed + 4);  // answered as wrk stopped, not read by it
  EXPECT_EQ(s["unparsed"]["bytes"], 0);
  EXPECT_EQ(s["unparsed"]["resyncs"], 0);
  EXPECT_EQ(s["capture"]["http_orphan_responses"], 0);
  EXPECT_EQ(s["lost_events"], 0);
  EXPECT_GT(s["capture"].value("tls_ciphertext_dropped", 0), 0);  // the case did come up
}

}  // namespace
}  // namespace reqmon
