// SPDX-License-Identifier: MIT
// Live HTTP/2 (label "bpf"; root): real servers and real clients on loopback, observed by the
// real reqmon binary. nginx with `listen ... http2` in the clear driven by h2load (10 streams a
// connection) and curl --http2-prior-knowledge: exact counts, status codes and per-route counts
// against nginx's access log, latencies consistent with h2load's. gRPC (Python grpcio client and
// server, nginx grpc_pass in front, and the server observed directly): exact counts per method and
// grpc-status. A gRPC connection
// opened before attach: counted, what could not be decoded reported as such, nothing invented.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "../support/h2_servers.h"
#include "app_support.h"
#include "reqmon/aggregator/route_template.h"

namespace reqmon {
namespace {

using nlohmann::json;
using testing::GrpcServer;
using testing::NginxH2c;

std::map<std::string, int> Routes(const json& st) {
  std::map<std::string, int> m;
  for (const auto& r : st["routes"]) {
    m[r["method"].get<std::string>() + " " + r["route"].get<std::string>()] += r["count"].get<int>();
  }
  return m;
}

// "1.5ms" / "229us" / "1.2s" -> ms.
double ToMs(const std::string& v) {
  const double x = std::atof(v.c_str());
  if (v.find("us") != std::string::npos) return x / 1000;
  if (v.find("ms") != std::string::npos) return x;
  return x * 1000;
}

/// Runs the gRPC client script; returns its outcomes counted by code name ("OK", "NOT_FOUND").
std::map<std::string, int> GrpcClient(int port, const std::string& groups) {
  std::string out = testing::Run(testing::SystemPython() + " -c \"$RQ_GRPC_CLIENT\" " +
                                 std::to_string(port) + " " + groups + " 2>&1");
  std::map<std::string, int> n;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) ++n[line];
  return n;
}

class Http2LiveTest : public testing::LiveReqmonTest {
 protected:
  void SetUp() override {
    LiveReqmonTest::SetUp();
    if (IsSkipped()) return;
    setenv("RQ_GRPC_CLIENT", testing::kGrpcClientScript, 1);
  }
  // Polls until total + incomplete reaches n.
  json StatsWhenSeen(int n) {
    for (int i = 0; i < 100; ++i) {
      json st = testing::GetJson(Url("/stats"));
      if (st["total_requests"].get<int>() + st["incomplete_requests"].get<int>() >= n) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    // Nothing more may arrive, and the counter sections are published once a second.
    std::this_thread::sleep_for(std::chrono::milliseconds(1300));
    return testing::GetJson(Url("/stats"));
  }
  void NginxHttp2IsExact(bool tls);
  void LargeHeaderBlocksAndBodies(bool tls);
};

// nginx with HTTP/2 in the clear (h2c, prior knowledge) or over TLS (ALPN h2; the plaintext
// comes from OpenSSL): h2load with 10 streams a connection and curl, counted exactly.
void Http2LiveTest::NginxHttp2IsExact(bool tls) {
  if (!testing::HaveBinary("h2load")) GTEST_SKIP() << "h2load (nghttp2-client) not installed";
  NginxH2c ngx(0, tls);
  StartReqmon({"--pid", std::to_string(ngx.master_pid())});
  const std::string out = testing::Run("h2load -n 300 -c 3 -m 10 " + ngx.url("/api/users/7") + " " +
                                       ngx.url("/status/500") + " " + ngx.url("/index.html") + " 2>&1");
  ASSERT_NE(out.find("300 done"), std::string::npos) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(time for request:\s+(\S+)\s+(\S+)\s+(\S+))"))) << out;
  const double client_max = ToMs(m[2]), client_mean = ToMs(m[3]);
  // curl: four requests, one prior-knowledge connection each.
  for (const char* p : {"/api/orders/1", "/api/orders/2", "/status/201", "/missing"})
    testing::Run(std::string("curl -s ") + (tls ? "-k --http2" : "--http2-prior-knowledge") +
                 " -o /dev/null '" + ngx.url(p) + "'");

  const json st = StatsWhenSeen(304);
  // What nginx logged, by route template and status.
  std::map<std::string, int> want_routes, want_codes;
  std::istringstream log(testing::ReadFile(ngx.access_log()));
  std::string method, uri, status, time, proto;
  int lines = 0;
  while (log >> method >> uri >> status >> time >> proto) {
    ++lines;
    EXPECT_EQ(proto, "HTTP/2.0");
    ++want_routes[method + " " + TemplatePath(uri)];
    ++want_codes[status];
  }
  ASSERT_EQ(lines, 304);
  EXPECT_EQ(st["total_requests"], 304) << st.dump();
  EXPECT_EQ(st["incomplete_requests"], 0);
  EXPECT_EQ(Routes(st), want_routes);
  std::map<std::string, int> codes = st["status_codes"];
  EXPECT_EQ(codes, want_codes);
  EXPECT_EQ(st["protocols"], json({{"HTTP/2", 304}}));
  EXPECT_EQ(st["unknown_paths"], 0);
  EXPECT_EQ(st["unparsed"]["bytes"], 0);
  EXPECT_EQ(st["http2"]["hpack_errors"], 0);
  EXPECT_EQ(st["http2"]["via_preface"], 7);
  // The server's side of each exchange is inside the client's.
  const double avg = st["average_response_time"].get<double>();
  EXPECT_GT(avg, 0);
  EXPECT_LE(avg, client_mean * 1.5 + 1.0) << "client mean " << client_mean;
  EXPECT_LE(st["max_response_time"].get<double>(), client_max + 5.0) << "client max " << client_max;
  const json req = testing::GetJson(Url("/requests?limit=5"));
  for (const auto& r : req["requests"]) EXPECT_EQ(r["protocol"], "HTTP/2");
  const std::string prom = testing::HttpGet(Url("/metrics/prometheus"));
  EXPECT_NE(prom.find("reqmon_http_requests_by_protocol_total{protocol=\"HTTP/2\"} 304"),
            std::string::npos);
  EXPECT_EQ(st["tls"]["requests"], tls ? 304 : 0);
  if (tls) {
    EXPECT_EQ(st["capture"]["kernel_tls_unbound"], 0);
  }
}

TEST_F(Http2LiveTest, H2cNginxWithH2loadAndCurlIsExact) { NginxHttp2IsExact(false); }

TEST_F(Http2LiveTest, HttpsH2NginxWithH2loadAndCurlIsExact) { NginxHttp2IsExact(true); }

// Capture size: header blocks larger than the payload prefix both ways (a 9,000-character request
// header from h2load and curl, a 9,000-character response header from nginx), and bodies far
// larger than it (1 MiB). The kernel follows the frames (bpf/h2frames.bpf.h): header blocks are
// copied whole, DATA payloads are left out, so every request is exact and no header table is
// reset. The same traffic with the plain prefix (--no-h2-frames) loses header blocks: that is
// what this test would see without the frame walk.
void Http2LiveTest::LargeHeaderBlocksAndBodies(bool tls) {
  if (!testing::HaveBinary("h2load")) GTEST_SKIP() << "h2load (nghttp2-client) not installed";
  // Letters and digits in a fixed scramble: Huffman coding keeps them above 5 bits each, so the
  // encoded field is still well over 4 KiB.
  std::string big;
  for (int i = 0; i < 9000; ++i) big += "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[(i * 7919 + i / 13) % 62];
  // nginx reads a configuration token of at most 4 KiB: the value is built from three.
  const std::string extra = "    location /bighdr/ { set $a \"" + big.substr(0, 3000) + "\"; set $b \"" +
                            big.substr(3000, 3000) + "\"; set $c \"" + big.substr(6000) +
                            "\"; add_header X-Big $a$b$c; return 200 'ok\\n'; }\n";
  NginxH2c ngx(0, tls, extra);
  {
    std::ofstream f(ngx.html_dir() / "big.bin", std::ios::binary);
    const std::string chunk(64 << 10, 'x');
    for (int i = 0; i < 16; ++i) f << chunk;
  }
  auto drive = [&](int n) {
    const std::string out = testing::Run("h2load -n " + std::to_string(n) + " -c 2 -m 10 -H 'x-big: " + big + "' " +
                                         ngx.url("/big.bin") + " " + ngx.url("/bighdr/1") + " " +
                                         ngx.url("/api/users/3") + " 2>&1");
    EXPECT_NE(out.find(std::to_string(n) + " done"), std::string::npos) << out.substr(0, 2000);
    for (const char* p : {"/big.bin", "/bighdr/2"})
      testing::Run(std::string("curl -s ") + (tls ? "-k --http2" : "--http2-prior-knowledge") +
                   " -H 'x-big: " + big + "' -o /dev/null '" + ngx.url(p) + "'");
  };
  StartReqmon({"--pid", std::to_string(ngx.master_pid())});
  drive(90);
  const json st = StatsWhenSeen(92);
  std::map<std::string, int> want_routes, want_codes;
  std::istringstream log(testing::ReadFile(ngx.access_log()));
  std::string method, uri, status, time, proto;
  int lines = 0, big_files = 0;
  while (log >> method >> uri >> status >> time >> proto) {
    ++lines;
    ++want_routes[method + " " + TemplatePath(uri)];
    ++want_codes[status];
    if (uri == "/big.bin") ++big_files;
  }
  ASSERT_EQ(lines, 92);
  EXPECT_EQ(st["total_requests"], 92) << st.dump();
  EXPECT_EQ(st["incomplete_requests"], 0);
  EXPECT_EQ(Routes(st), want_routes);
  std::map<std::string, int> codes = st["status_codes"];
  EXPECT_EQ(codes, want_codes);
  EXPECT_EQ(st["unknown_paths"], 0);
  EXPECT_EQ(st["unparsed"]["bytes"], 0);
  EXPECT_EQ(st["http2"]["hpack_resets"], 0) << st["http2"].dump();
  EXPECT_EQ(st["http2"]["hpack_errors"], 0);
  EXPECT_EQ(st["http2"]["framing_losses"], 0);
  EXPECT_EQ(st["http2"]["unknown_status"], 0);
  EXPECT_EQ(st["capture"]["kernel_h2_frames_lost"], 0) << st["capture"].dump();
  // Every 1 MiB body was counted from its frame headers, not copied.
  EXPECT_GE(st["http2"]["data_bytes_not_copied"].get<uint64_t>(), uint64_t{1} << 20) << st["http2"].dump();
  EXPECT_GE(st["http2"]["data_bytes_not_copied"].get<uint64_t>(), static_cast<uint64_t>(big_files) << 20);
  EXPECT_GE(st["capture"]["kernel_body_bytes_not_copied"].get<uint64_t>(),
            static_cast<uint64_t>(big_files) << 20);
  EXPECT_EQ(st["protocols"], json({{"HTTP/2", 92}}));

  // The same traffic copied as the plain 4 KiB prefix: header blocks are cut.
  reqmon_.reset();
  StartReqmon({"--pid", std::to_string(ngx.master_pid()), "--no-h2-frames"});
  drive(30);
  const json plain = StatsWhenSeen(32);
  EXPECT_GT(plain["http2"]["hpack_resets"].get<int>() + plain["unknown_paths"].get<int>(), 0)
      << plain["http2"].dump();
  EXPECT_EQ(plain["http2"]["data_bytes_not_copied"], 0);
}

TEST_F(Http2LiveTest, LargeHeaderBlocksAndBodiesOverH2cAreExact) { LargeHeaderBlocksAndBodies(false); }

TEST_F(Http2LiveTest, LargeHeaderBlocksAndBodiesOverTlsAreExact) { LargeHeaderBlocksAndBodies(true); }

// curl --http2 on http:// asks for "Upgrade: h2c": the HTTP/1.1 request becomes stream 1 and is
// answered in HTTP/2; later requests on the connection are ordinary streams.
TEST_F(Http2LiveTest, UpgradeH2cFromHttp11IsExact) {
  testing::H2cUpgradeServer server;
  StartReqmon({"--pid", std::to_string(server.pid())});
  int versions_2 = 0;
  for (const char* p : {"/up/1", "/up/2", "/missing/1"}) {
    const std::string out = testing::Run("curl -s --http2 -o /dev/null -w '%{http_version}' '" +
                                         server.url(p) + "'");
    versions_2 += out == "2";
  }
  // Two requests on one upgraded connection: stream 1 (upgrade), then stream 3.
  testing::Run("curl -s --http2 -o /dev/null '" + server.url("/up/3") + "' -o /dev/null '" +
               server.url("/up/4") + "'");
  ASSERT_EQ(versions_2, 3);
  std::map<std::string, int> want_routes, want_codes;
  const json st = StatsWhenSeen(5);
  std::istringstream log(testing::ReadFile(server.log_file()));
  std::string path, status;
  int lines = 0;
  while (log >> path >> status) {
    ++lines;
    ++want_routes["GET " + TemplatePath(path)];
    ++want_codes[status];
  }
  ASSERT_EQ(lines, 5);
  EXPECT_EQ(st["total_requests"], 5) << st.dump();
  EXPECT_EQ(Routes(st), want_routes);
  std::map<std::string, int> codes = st["status_codes"];
  EXPECT_EQ(codes, want_codes);
  EXPECT_EQ(st["protocols"], json({{"HTTP/2", 5}}));
  EXPECT_EQ(st["incomplete_requests"], 0);
  EXPECT_EQ(st["unparsed"]["bytes"], 0);
  EXPECT_EQ(st["http2"]["via_upgrade"], 4);
}

TEST_F(Http2LiveTest, GrpcCallsExactPerMethodAndStatus) {
  GrpcServer backend;
  NginxH2c ngx(backend.port());
  StartReqmon({"--pid", std::to_string(ngx.master_pid())});
  auto outcome = GrpcClient(ngx.port(), "SayHello:20 Find:7 Fail:3");
  ASSERT_EQ(outcome["OK"], 20);
  ASSERT_EQ(outcome["NOT_FOUND"], 7);
  ASSERT_EQ(outcome["INTERNAL"], 3);
  const json st = StatsWhenSeen(30);
  EXPECT_EQ(st["total_requests"], 30) << st.dump();
  EXPECT_EQ(st["status_codes"], json({{"200", 30}}));  // a failed call is HTTP 200
  EXPECT_EQ(st["grpc"]["calls"], 30);
  EXPECT_EQ(st["grpc"]["status_codes"], json({{"0", 20}, {"13", 3}, {"5", 7}}));
  std::map<std::string, json> by_method;
  for (const auto& g : st["grpc"]["methods"]) {
    EXPECT_EQ(g["service"], "demo.Greeter");
    by_method[g["method"].get<std::string>()] = g["status_codes"];
  }
  EXPECT_EQ(by_method["SayHello"], json({{"0", 20}}));
  EXPECT_EQ(by_method["Find"], json({{"5", 7}}));
  EXPECT_EQ(by_method["Fail"], json({{"13", 3}}));
  std::map<std::string, int> routes = Routes(st);
  EXPECT_EQ(routes["POST /demo.Greeter/SayHello"], 20);
  EXPECT_EQ(routes["POST /demo.Greeter/Find"], 7);
  // The client's channel began after attach; nginx's connections to the backend are client
  // role, not parsed.
  EXPECT_EQ(st["http2"]["midstream"], 0) << st["http2"].dump();
  EXPECT_EQ(st["http2"]["connections"], 1) << st["http2"].dump();  // the client's channel
  const std::string prom = testing::HttpGet(Url("/metrics/prometheus"));
  EXPECT_NE(prom.find("reqmon_grpc_requests_total{service=\"demo.Greeter\",method=\"Find\","
                      "grpc_status=\"5\"} 7"),
            std::string::npos)
      << prom;
}

// The gRPC server itself observed (no proxy in front): grpc writes each response as one sendmsg of
// many iovecs (a frame header and a payload each), which the kernel copies up to RQ_MAX_IOV:
// every call counted exactly, per method and grpc-status, and nothing lost from the header tables.
TEST_F(Http2LiveTest, GrpcServerObservedDirectlyIsExact) {
  GrpcServer server;
  StartReqmon({"--pid", std::to_string(server.pid())});
  auto outcome = GrpcClient(server.port(), "SayHello:10 Find:5 Fail:2");
  ASSERT_EQ(outcome["OK"], 10);
  ASSERT_EQ(outcome["NOT_FOUND"], 5);
  ASSERT_EQ(outcome["INTERNAL"], 2);
  const json st = StatsWhenSeen(17);
  EXPECT_EQ(st["total_requests"], 17) << st.dump();
  EXPECT_EQ(st["incomplete_requests"], 0) << st.dump();
  EXPECT_EQ(st["grpc"]["calls"], 17);
  EXPECT_EQ(st["grpc"]["status_codes"], json({{"0", 10}, {"13", 2}, {"5", 5}}));
  std::map<std::string, int> per_method;
  for (const auto& g : st["grpc"]["methods"]) per_method[g["method"]] = g["count"];
  EXPECT_EQ(per_method, (std::map<std::string, int>{{"SayHello", 10}, {"Find", 5}, {"Fail", 2}}));
  EXPECT_EQ(st["http2"]["hpack_resets"], 0) << st["http2"].dump();
  EXPECT_EQ(st["http2"]["framing_losses"], 0) << st["http2"].dump();
  EXPECT_EQ(st["unknown_paths"], 0);
}

// A gRPC channel opened (and used) before reqmon attached, used again after: its requests are
// counted by status; the client's header table is unknown, so paths that referenced it are
// reported as "(unknown)" and counted; the server's answers (nginx encodes without the dynamic
// table) give the grpc-status exactly.
TEST_F(Http2LiveTest, ConnectionOpenBeforeAttachIsCountedWithoutInventing) {
  GrpcServer backend;
  NginxH2c ngx(backend.port());
  const std::string flag = (dir_ / "go").string();
  testing::Process client({testing::SystemPython(), "-c", testing::kGrpcClientScript,
                           std::to_string(ngx.port()), "--pause", flag, "SayHello:5",
                           "SayHello:7", "Find:3"},
                          (dir_ / "client.out").string());
  for (int i = 0; i < 200 && testing::ReadFile(dir_ / "client.out").find("PAUSED") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_NE(testing::ReadFile(dir_ / "client.out").find("PAUSED"), std::string::npos);
  StartReqmon({"--pid", std::to_string(ngx.master_pid())});
  std::ofstream(flag) << "go\n";
  ASSERT_EQ(client.Wait(20000), 0) << testing::ReadFile(dir_ / "client.out");
  const std::string out = testing::ReadFile(dir_ / "client.out");
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 16) << out;  // 15 outcomes + PAUSED
  const json st = StatsWhenSeen(10);
  ASSERT_TRUE(reqmon_->Running());
  EXPECT_EQ(st["total_requests"], 10) << st.dump();
  EXPECT_EQ(st["incomplete_requests"], 0);
  EXPECT_EQ(st["status_codes"], json({{"200", 10}}));
  EXPECT_EQ(st["grpc"]["status_codes"], json({{"0", 7}, {"5", 3}}));
  int unknown = 0, known = 0;
  for (const auto& [route, n] : Routes(st)) {
    if (route.find("(unknown)") != std::string::npos) {
      unknown += n;
    } else {
      EXPECT_TRUE(route == "POST /demo.Greeter/SayHello" || route == "POST /demo.Greeter/Find")
          << route;
      known += n;
    }
  }
  EXPECT_EQ(known + unknown, 10);
  EXPECT_EQ(st["unknown_paths"], unknown);
  EXPECT_GE(st["http2"]["midstream"].get<int>(), 1) << st.dump();
}

}  // namespace
}  // namespace reqmon
