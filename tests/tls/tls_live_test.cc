// SPDX-License-Identifier: MIT
// HTTPS, live (label "bpf"): the real reqmon observes real TLS servers (nginx, Python's ssl
// module, Node.js https) while real clients (curl, Python's http.client) send a known number of
// requests with a certificate the test makes. The counts must be exact and the same as the same
// traffic gives over plain HTTP; ciphertext must never be parsed or reported as unparsed noise;
// a process whose TLS reqmon cannot hook (GnuTLS) must be named.
#include <gtest/gtest.h>
#include <sys/utsname.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "app_support.h"
#include "reqmon/capture/targets.h"
#include "reqmon/capture/tls_probes.h"
#include "reqmon/capture/uprobe_multi.h"

namespace reqmon {
namespace {

using nlohmann::json;
using testing::Curl;
using testing::GetJson;
namespace fs = std::filesystem;

class TlsLiveTest : public testing::LiveReqmonTest {
 protected:
  // Requests per (path, over TLS or not) and their response bytes, from GET /requests.
  struct PathCount {
    int count = 0;
    uint64_t response_bytes = 0;
  };
  std::map<std::pair<std::string, bool>, PathCount> ByPathAndTls() {
    json r = GetJson(Url("/requests?limit=1000"));
    std::map<std::pair<std::string, bool>, PathCount> out;
    for (const auto& e : r["requests"]) {
      auto& pc = out[{e["path"].get<std::string>(), e["tls"].get<bool>()}];
      ++pc.count;
      pc.response_bytes += e["response_bytes"].get<uint64_t>();
    }
    return out;
  }
  void ExactCountsFrom(testing::TlsServer::Kind kind, const char* comm_hint);
  // /stats once total_requests reached n and the capture counters (published once a second)
  // have been published since.
  json SettledStats(int n) {
    StatsWhenTotal(n);
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    return GetJson(Url("/stats"));
  }
  static int Lines(const fs::path& p) {
    std::ifstream in(p);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) ++n;
    return n;
  }
};

// One nginx, 2 workers, a plain and a TLS port, attached by its master's PID. The same requests
// go to both ports: keep-alive and a connection per request, 200/201/404/500, a 100 kB file that
// OpenSSL writes in many records (and that can make SSL_write block and be repeated).
TEST_F(TlsLiveTest, NginxHttpsCountsExactlyLikePlainHttpAndReplaysTheSame) {
  testing::Nginx nginx(2, 0, /*tls=*/true);
  const fs::path cap = dir_ / "https.rqcap";
  StartReqmon({"--pid", std::to_string(nginx.master_pid()), "--record", cap.string()});
  std::string err = testing::ReadFile(dir_ / "reqmon.err");
  EXPECT_NE(err.find("TLS hooked in 3"), std::string::npos) << err;

  auto drive = [&](auto url) {
    std::vector<std::string> api, missing, errors, big, created;
    for (int i = 0; i < 10; ++i) api.push_back(url("/api/v" + std::to_string(i)));
    for (int i = 0; i < 5; ++i) missing.push_back(url("/missing/" + std::to_string(i)));
    for (int i = 0; i < 3; ++i) errors.push_back(url("/status/500"));
    for (int i = 0; i < 2; ++i) big.push_back(url("/big.bin"));
    for (int i = 0; i < 3; ++i) created.push_back(url("/status/201"));
    EXPECT_EQ(Curl(api, true), 10);
    EXPECT_EQ(Curl(missing, false), 5);
    EXPECT_EQ(Curl(errors, true), 3);
    EXPECT_EQ(Curl(big, true), 2);
    EXPECT_EQ(Curl(created, false), 3);
  };
  drive([&](const std::string& p) { return nginx.tls_url(p); });
  drive([&](const std::string& p) { return nginx.url(p); });

  json s = SettledStats(46);
  EXPECT_EQ(s["total_requests"], 46);
  EXPECT_EQ(s["status_codes"], json::parse(R"({"200": 24, "404": 10, "500": 6, "201": 6})"));
  EXPECT_EQ(s["incomplete_requests"], 0);
  EXPECT_EQ(s["lost_events"], 0);
  EXPECT_EQ(s["tls"]["requests"], 23);
  EXPECT_DOUBLE_EQ(s["tls"]["share"].get<double>(), 0.5);
  // Nothing of the ciphertext was parsed: no unparsed bytes, no resyncs.
  EXPECT_EQ(s["unparsed"]["bytes"], 0);
  EXPECT_EQ(s["unparsed"]["resyncs"], 0);
  EXPECT_GT(s["capture"]["kernel_tls_ciphertext_bytes"].get<uint64_t>(), 200000u);
  EXPECT_EQ(s["capture"]["kernel_tls_unbound"], 0);
  EXPECT_EQ(s["tls_not_covered"].size(), 0u);
  EXPECT_EQ(s["tls"]["hooked_processes"].size(), 3u);
  // Each names where its probes are: the plan for the libssl it maps, which for Debian's
  // OpenSSL 3 is one probe on each internal function (probe_site_test.cc pins that plan).
  for (const auto& h : s["tls"]["hooked_processes"]) {
    const std::string lib = h["library"];
    OpenSslSymbols syms;
    std::string err;
    ASSERT_TRUE(FindOpenSslSymbols(lib, &syms, &err)) << err;
    const OpenSslProbePlan plan = PlanOpenSslProbes(lib, syms);
    EXPECT_EQ(h["probes"], plan.Describe()) << lib;
    // Two uprobe_multi links where the kernel has them, else a link each; from 6.9 on, it has.
    std::string why;
    EXPECT_EQ(h["links"], UprobeMultiUsable(&why) ? "uprobe_multi" : "uprobe") << lib << why;
    utsname u{};
    int major = 0, minor = 0;
    if (uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
        (major > 6 || (major == 6 && minor >= 9))) {
      EXPECT_EQ(h["links"], "uprobe_multi") << u.release << ": " << why;
    }
    if (plan.read_inner) {
      EXPECT_NE(h["probes"].get<std::string>().find("SSL_read+SSL_read_ex@"), std::string::npos);
      EXPECT_EQ(h["probes"].get<std::string>().find("SSL_read@"), std::string::npos);
    }
  }
  // nginx's own access log agrees on the count.
  EXPECT_EQ(Lines(nginx.access_log()), 46);

  // Every path: as many requests, and as many response bytes, over TLS as over plain HTTP.
  auto by = ByPathAndTls();
  std::set<std::string> paths;
  for (const auto& [k, v] : by) paths.insert(k.first);
  EXPECT_EQ(paths.size(), 10u + 5 + 1 + 1 + 1);
  for (const auto& p : paths) {
    const PathCount tls = by[std::make_pair(p, true)], plain = by[std::make_pair(p, false)];
    EXPECT_EQ(tls.count, plain.count) << p;
    EXPECT_EQ(tls.response_bytes, plain.response_bytes) << p;
  }
  const PathCount big = by[std::make_pair(std::string("/big.bin"), true)];
  EXPECT_EQ(big.count, 2);
  EXPECT_GT(big.response_bytes, 200000u);

  // The recording replays to the same statistics.
  ASSERT_EQ(reqmon_->Signal(SIGTERM, 10000), 0);
  int st = 0;
  std::string replay_err;
  std::string out = testing::RunReqmon("--replay " + cap.string() + " --print-stats", &st,
                                       &replay_err);
  ASSERT_EQ(st, 0) << replay_err;
  json r = json::parse(out);
  EXPECT_EQ(r["total_requests"], s["total_requests"]);
  EXPECT_EQ(r["status_codes"], s["status_codes"]);
  EXPECT_EQ(r["tls"]["requests"], s["tls"]["requests"]);
  // Routes agree in everything but their rates, which are relative to each run's current second.
  auto without_rates = [](json routes) {
    for (auto& e : routes) e.erase("rates");
    return routes;
  };
  EXPECT_EQ(without_rates(r["routes"]), without_rates(s["routes"]));
  EXPECT_EQ(r["response_bytes"], s["response_bytes"]);
  EXPECT_EQ(r["unparsed"], s["unparsed"]);
}

// Python's ssl module (libssl.so.3 through the _ssl extension: SSL_read_ex/SSL_write_ex) and
// Node.js (OpenSSL inside the node executable, with memory BIOs: its socket I/O happens outside
// the SSL calls).
void TlsLiveTest::ExactCountsFrom(testing::TlsServer::Kind kind, const char* comm_hint) {
  testing::TlsServer server(kind);
  StartReqmon({"--pid", std::to_string(server.pid())});
  std::vector<std::string> ok, missing;
  for (int i = 0; i < 8; ++i) ok.push_back(server.url("/items/" + std::to_string(i)));
  for (int i = 0; i < 3; ++i) missing.push_back(server.url("/status/404"));
  ASSERT_EQ(Curl(ok, true), 8);
  ASSERT_EQ(Curl(missing, false), 3);
  json s = SettledStats(11);
  EXPECT_EQ(s["total_requests"], 11) << comm_hint;
  EXPECT_EQ(s["status_codes"], json::parse(R"({"200": 8, "404": 3})"));
  EXPECT_EQ(s["tls"]["requests"], 11);
  EXPECT_EQ(s["incomplete_requests"], 0);
  EXPECT_EQ(s["unparsed"]["bytes"], 0);
  EXPECT_EQ(s["capture"]["kernel_tls_unbound"], 0);
  ASSERT_EQ(s["tls"]["hooked_processes"].size(), 1u);
  EXPECT_EQ(s["tls"]["hooked_processes"][0]["pid"], server.pid());
}

TEST_F(TlsLiveTest, PythonSslServer) { ExactCountsFrom(testing::TlsServer::kPython, "python"); }

TEST_F(TlsLiveTest, NodeHttpsServer) {
  if (!testing::HaveBinary("node")) GTEST_SKIP() << "no node";
  ExactCountsFrom(testing::TlsServer::kNode, "node");
}

// A TLS connection opened (and used) before reqmon attached is counted from its next request:
// no handshake is needed.
TEST_F(TlsLiveTest, ConnectionOpenedBeforeAttachIsCountedFromThenOn) {
  testing::Nginx nginx(1, 0, true);
  const fs::path flag = dir_ / "go", out = dir_ / "client.out";
  testing::Process client({"python3", "-c", R"PY(
import http.client, os, ssl, sys, time
port, flag = int(sys.argv[1]), sys.argv[2]
c = http.client.HTTPSConnection('127.0.0.1', port, context=ssl._create_unverified_context())
c.request('GET', '/api/early'); c.getresponse().read()
print('ready', flush=True)
while not os.path.exists(flag): time.sleep(0.05)
for i in range(3):
    c.request('GET', '/api/late%d' % i); c.getresponse().read()
print('done', flush=True)
)PY", std::to_string(nginx.tls_port()), flag.string()}, out.string());
  for (int i = 0; i < 200 && testing::ReadFile(out).find("ready") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_NE(testing::ReadFile(out).find("ready"), std::string::npos) << testing::ReadFile(out);
  StartReqmon({"--pid", std::to_string(nginx.master_pid())});
  std::ofstream(flag) << "go";
  ASSERT_EQ(client.Wait(20000), 0) << testing::ReadFile(out);
  json s = SettledStats(3);
  EXPECT_EQ(s["total_requests"], 3);
  EXPECT_EQ(s["tls"]["requests"], 3);
  EXPECT_EQ(s["unparsed"]["bytes"], 0);
  std::set<std::string> paths;
  const json recent = GetJson(Url("/requests"));
  for (const auto& e : recent["requests"]) paths.insert(e["path"].get<std::string>());
  EXPECT_EQ(paths, (std::set<std::string>{"/api/late0", "/api/late1", "/api/late2"}));
}

// A TLS server that starts after reqmon (--comm finds it), and workers forked after attach
// (nginx re-forks them on SIGHUP): their probes are attached as they appear.
TEST_F(TlsLiveTest, ServerStartedAfterAttachAndWorkersForkedLater) {
  StartReqmon({"--comm", "rqtls-nginx"});
  testing::Nginx nginx(2, 0, true, "rqtls-nginx");
  // The new server is found within the 1 s refresh; its probes follow at once.
  json s;
  for (int i = 0; i < 50; ++i) {
    s = GetJson(Url("/stats"));
    if (s["tls"]["hooked_processes"].size() >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(s["tls"]["hooked_processes"].size(), 3u) << s["tls"].dump();
  std::vector<std::string> urls;
  for (int i = 0; i < 4; ++i) urls.push_back(nginx.tls_url("/api/first" + std::to_string(i)));
  ASSERT_EQ(Curl(urls, true), 4);
  EXPECT_EQ(StatsWhenTotal(4)["total_requests"], 4);

  // SIGHUP: the master forks two new workers and the old ones exit.
  std::vector<pid_t> before = ProcessTree("/proc", nginx.master_pid());
  nginx.Signal(SIGHUP);
  std::vector<pid_t> now;
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    now = ProcessTree("/proc", nginx.master_pid());
    int fresh = 0, old = 0;
    for (pid_t p : now) {
      if (p == nginx.master_pid()) continue;
      bool was = std::find(before.begin(), before.end(), p) != before.end();
      (was ? old : fresh)++;
    }
    if (fresh == 2 && old == 0) break;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::vector<std::string> later, close;
  for (int i = 0; i < 5; ++i) later.push_back(nginx.tls_url("/api/later" + std::to_string(i)));
  for (int i = 0; i < 3; ++i) close.push_back(nginx.tls_url("/missing/" + std::to_string(i)));
  ASSERT_EQ(Curl(later, true), 5);
  ASSERT_EQ(Curl(close, false), 3);
  s = StatsWhenTotal(12);
  EXPECT_EQ(s["total_requests"], 12);
  EXPECT_EQ(s["status_codes"], json::parse(R"({"200": 9, "404": 3})"));
  EXPECT_EQ(s["tls"]["requests"], 12);
  EXPECT_EQ(s["unparsed"]["bytes"], 0);
  // The later requests were served by the new workers.
  int by_new = 0;
  for (const auto& p : s["processes"])
    if (std::find(before.begin(), before.end(), p["pid"].get<pid_t>()) == before.end())
      by_new += p["count"].get<int>();
  EXPECT_EQ(by_new, 8);
}

// GnuTLS is not hooked: the start-up line and /stats name the process and why; its ciphertext is
// neither counted as requests nor reported as unparsed noise.
TEST_F(TlsLiveTest, UncoveredTlsLibraryIsNamed) {
  if (!testing::HaveBinary("gnutls-serv")) GTEST_SKIP() << "no gnutls-serv (Debian's gnutls-bin)";
  testing::TlsServer server(testing::TlsServer::kGnuTls);
  StartReqmon({"--pid", std::to_string(server.pid())});
  std::string err = testing::ReadFile(dir_ / "reqmon.err");
  EXPECT_NE(err.find("TLS of process " + std::to_string(server.pid()) + " (gnutls-serv) is not "
                     "covered: uses GnuTLS"), std::string::npos) << err;
  std::vector<std::string> urls;
  for (int i = 0; i < 3; ++i) urls.push_back(server.url("/"));
  ASSERT_EQ(Curl(urls, false), 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  json s = GetJson(Url("/stats"));
  EXPECT_EQ(s["total_requests"], 0);
  EXPECT_EQ(s["unparsed"]["bytes"], 0);
  EXPECT_GE(s["capture"]["tls_connections"].get<int>(), 3);
  ASSERT_EQ(s["tls_not_covered"].size(), 1u) << s.dump();
  EXPECT_EQ(s["tls_not_covered"][0]["pid"], server.pid());
  EXPECT_NE(s["tls_not_covered"][0]["reason"].get<std::string>().find("GnuTLS"),
            std::string::npos);
  std::string prom = testing::HttpGet(Url("/metrics/prometheus"));
  EXPECT_NE(prom.find("reqmon_tls_not_covered_processes 1"), std::string::npos);
}

// A TLS server that reads late: the client's request and its reset have both arrived by the time
// it reads. The socket is closed already, but the ciphertext is still queued: SSL_read reads it
// (the read that empties the queue is where a plain connection's close is reported) and returns
// the request's plaintext only after that. The close is reported after the plaintext, so the
// request belongs to its connection and is counted incomplete (the server's answer fails),
// instead of opening a connection that nothing closes.
const char* kTlsLateReader = R"PY(
import socket, ssl, sys, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
ls = socket.create_server(('127.0.0.1', int(sys.argv[1])))
while True:
    c, _ = ls.accept()
    try:
        s = ctx.wrap_socket(c, server_side=True)
        time.sleep(0.3)
        if s.recv(65536):
            s.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n')
        s.recv(65536)
    except OSError:
        pass
    c.close()
)PY";

const char* kTlsResetClient = R"PY(
import socket, ssl, struct, sys
ctx = ssl._create_unverified_context()
raw = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else the reset drops a request Nagle held
s = ctx.wrap_socket(raw, server_hostname='localhost')
s.sendall(b'GET /unanswered HTTP/1.1\r\nHost: x\r\n\r\n')
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
s.close()
print('sent')
)PY";

TEST_F(TlsLiveTest, RequestReadAfterTheResetBelongsToItsConnection) {
  const fs::path certs = testing::MakeTempDir("tls-late");
  testing::MakeCertificate(certs);
  testing::PythonScriptServer server(kTlsLateReader, "TLS late reader",
                                     {(certs / "cert.pem").string(), (certs / "key.pem").string()});
  StartReqmon({"--port", std::to_string(server.port())});
  int st = 0;
  const std::string out = testing::Run("python3 -c \"" + std::string(kTlsResetClient) + "\" " +
                                       std::to_string(server.port()), &st);
  ASSERT_EQ(st, 0) << out;
  const json s = StatsWhen([](const json& j) {
    return j["incomplete_requests"] == 1 && Closed(j, 1);
  });
  fs::remove_all(certs);
  EXPECT_EQ(s["incomplete_requests"], 1) << s["capture"].dump();
  EXPECT_EQ(s["total_requests"], 0);
  EXPECT_EQ(s["capture"]["kernel_tls_unbound"], 0);
  EXPECT_TRUE(Closed(s, 1)) << "the request read after the reset opened a connection: "
                            << s["capture"].dump();
}

}  // namespace
}  // namespace reqmon
