// SPDX-License-Identifier: MIT
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "reqmon/aggregator/aggregator.h"
#include "test_util.h"

namespace reqmon {
namespace {

using testing::kOffset;
using testing::Mono;
using testing::Tx;

using testing::Opts;

TEST(RenderTest, StatsStartsExactlyLikeTheOriginal) {
  Aggregator agg(Opts());
  // 100 + 110 + 120 + 130 + 142.5 = 602.5 -> 120.5 ms average.
  agg.OnTransaction(Tx(0.1, 100, 200));
  agg.OnTransaction(Tx(0.2, 110, 200));
  agg.OnTransaction(Tx(0.3, 120, 404));
  agg.OnTransaction(Tx(0.4, 130, 200));
  agg.OnTransaction(Tx(0.5, 142.5, 200));
  const std::string dump = agg.StatsJson().dump();
  const std::string prefix =
      R"({"total_requests":5,"average_response_time":120.5,"status_codes":{"200":4,"404":1},)";
  EXPECT_EQ(dump.substr(0, prefix.size()), prefix) << dump;
  const auto j = agg.StatsJson();
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  const std::vector<std::string> want = {
      "total_requests", "average_response_time", "status_codes", "min_response_time",
      "max_response_time", "percentiles", "queue_time", "status_classes", "rates", "incomplete_requests",
      "request_bytes", "response_bytes", "unparsed", "lost_events", "tls", "tls_not_covered",
      "protocols", "unknown_paths", "grpc", "routes", "processes"};
  EXPECT_EQ(keys, want);
  EXPECT_EQ(j["percentiles"].dump().substr(0, 7), R"({"p50":)");
  EXPECT_EQ(j["rates"].size(), 3u);
  EXPECT_EQ(j["routes"][0]["route"], "/users/{id}");
  EXPECT_FALSE(j.contains("series"));
}

// HTTP/2 and gRPC: the protocol breakdown, the gRPC table by method and grpc-status, unknown
// paths, and the same in /requests and Prometheus.
TEST(RenderTest, ProtocolsAndGrpc) {
  Aggregator agg(Opts());
  agg.OnTransaction(Tx(0.1, 10, 200));  // HTTP/1.1
  HttpTransaction old = Tx(0.1, 10, 200);
  old.protocol = HttpProtocol::kHttp10;
  agg.OnTransaction(old);
  auto grpc = [](int grpc_status, const std::string& method) {
    HttpTransaction t = Tx(0.2, 5, 200, "/demo.Greeter/" + method);
    t.method = "POST";
    t.protocol = HttpProtocol::kHttp2;
    t.stream_id = 3;
    t.is_grpc = true;
    t.grpc_service = "demo.Greeter";
    t.grpc_method = method;
    t.grpc_status = grpc_status;
    return t;
  };
  agg.OnTransaction(grpc(0, "SayHello"));
  agg.OnTransaction(grpc(0, "SayHello"));
  agg.OnTransaction(grpc(5, "Find"));
  HttpTransaction unknown = Tx(0.3, 5, 200, "(unknown)");
  unknown.protocol = HttpProtocol::kHttp2;
  unknown.headers_unknown = true;
  agg.OnTransaction(unknown);
  const auto j = agg.StatsJson();
  EXPECT_EQ(j["protocols"].dump(), R"({"HTTP/1.0":1,"HTTP/1.1":1,"HTTP/2":4})");
  EXPECT_EQ(j["unknown_paths"], 1);
  EXPECT_EQ(j["grpc"]["calls"], 3);
  EXPECT_EQ(j["grpc"]["status_codes"].dump(), R"({"0":2,"5":1})");
  ASSERT_EQ(j["grpc"]["methods"].size(), 2u);
  EXPECT_EQ(j["grpc"]["methods"][0]["method"], "SayHello");
  EXPECT_EQ(j["grpc"]["methods"][0]["count"], 2);
  EXPECT_EQ(j["grpc"]["methods"][1]["status_codes"].dump(), R"({"5":1})");
  const auto r = agg.RequestsJson(10);
  EXPECT_EQ(r["requests"][0]["protocol"], "HTTP/2");
  EXPECT_TRUE(r["requests"][0]["grpc"].is_null());
  EXPECT_EQ(r["requests"][1]["grpc"].dump(), R"({"service":"demo.Greeter","method":"Find","status":5})");
  EXPECT_EQ(r["requests"][5]["protocol"], "HTTP/1.1");
  const std::string prom = agg.PrometheusText();
  EXPECT_NE(prom.find("reqmon_http_requests_by_protocol_total{protocol=\"HTTP/2\"} 4\n"), std::string::npos);
  EXPECT_NE(prom.find("reqmon_grpc_requests_total{service=\"demo.Greeter\",method=\"Find\",grpc_status=\"5\"} 1\n"),
            std::string::npos);
  EXPECT_NE(prom.find("reqmon_http_unknown_path_requests_total 1\n"), std::string::npos);
}

TEST(RenderTest, StatsAverageRoundedToTwoDecimals) {
  Aggregator agg(Opts());
  agg.OnTransaction(Tx(0.1, 1.0, 200));
  agg.OnTransaction(Tx(0.1, 1.0, 200));
  agg.OnTransaction(Tx(0.1, 2.0, 200));
  EXPECT_EQ(agg.StatsJson()["average_response_time"].dump(), "1.33");
}

TEST(RenderTest, EmptyStats) {
  Aggregator agg(Opts());
  const std::string dump = agg.StatsJson().dump();
  const std::string prefix =
      R"({"total_requests":0,"average_response_time":0.0,"status_codes":{},)";
  EXPECT_EQ(dump.substr(0, prefix.size()), prefix);
}

TEST(RenderTest, ExtraCounterSectionsInStats) {
  Aggregator agg(Opts());
  agg.SetCounters("capture", {{"events", 3}});
  const auto j = agg.StatsJson();
  EXPECT_EQ(j["capture"]["events"], 3);
}

TEST(RenderTest, MetricsStartsExactlyLikeTheOriginal) {
  Aggregator agg(Opts());
  SystemSample s;
  s.valid = true;
  s.mono_ns = Mono(1);
  s.cpu_percent = 23.4567;
  s.memory_percent = 55.79;
  s.disk_path = "/";
  s.processes.push_back({100, "srv", 1.25, 1 << 20, true});
  agg.OnSystemSample(s);
  const std::string dump = agg.MetricsJson().dump();
  EXPECT_EQ(dump.substr(0, 41), R"({"cpu_usage":23.5,"memory_usage":55.8,"me)") << dump;
  const auto j = agg.MetricsJson();
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"cpu_usage", "memory_usage", "memory", "disk",
                                            "network", "processes", "sampled_at"}));
  EXPECT_EQ(j["processes"][0]["comm"], "srv");
}

TEST(RenderTest, RequestsJson) {
  setenv("TZ", "UTC", 1);
  tzset();
  Aggregator agg(Opts());
  auto tx = Tx(60.123, 12.3456, 201, "/a", "POST");
  tx.query = "x=1";
  agg.OnTransaction(tx);
  HttpTransaction v6 = Tx(61, 1);
  v6.ep.family = AF_INET6;
  inet_pton(AF_INET6, "::1", v6.ep.laddr);
  inet_pton(AF_INET6, "2001:db8::2", v6.ep.raddr);
  agg.OnTransaction(v6);
  const auto j = agg.RequestsJson(10);
  ASSERT_EQ(j["count"], 2);
  const auto& r = j["requests"][1];
  EXPECT_EQ(r["time"], "2024-11-22T10:01:00.123+00:00");
  EXPECT_EQ(r["pid"], 100);
  EXPECT_EQ(r["method"], "POST");
  EXPECT_EQ(r["path"], "/a");
  EXPECT_EQ(r["query"], "x=1");
  EXPECT_EQ(r["status"], 201);
  EXPECT_EQ(r["response_time_ms"], 12.346);
  EXPECT_EQ(r["request_bytes"], 100);
  EXPECT_EQ(r["response_bytes"], 1000);
  EXPECT_EQ(r["local"], "127.0.0.1:8080");
  EXPECT_EQ(r["remote"], "10.0.0.7:51234");
  EXPECT_EQ(j["requests"][0]["local"], "[::1]:8080");
  EXPECT_EQ(j["requests"][0]["remote"], "[2001:db8::2]:51234");
}

TEST(RenderTest, PromEscape) {
  EXPECT_EQ(PromEscapeLabel("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

std::string Prometheus() {
  Aggregator agg(Opts());
  agg.SetProcessName(100, "we\"ird");
  agg.OnTransaction(Tx(0.1, 0.4, 200, "/users/1"));
  agg.OnTransaction(Tx(0.1, 30, 404, "/a\"b\\c"));
  agg.OnTransaction(Tx(0.1, 20000, 500, "/bad\xff\x01utf8", "PUT"));
  agg.OnTransaction(testing::Incomplete(0.2));
  agg.OnUnparsed({100, 42, true});
  agg.SetLostEvents(3);
  agg.SetCounters("capture", {{"events", 5}});
  SystemSample s;
  s.valid = true;
  s.mono_ns = Mono(1);
  s.cpu_percent = 12.5;
  s.disk_path = "/";
  s.processes.push_back({100, "we\"ird", 1.5, 4096, true});
  agg.OnSystemSample(s);
  return agg.PrometheusText();
}

TEST(RenderTest, PrometheusContent) {
  const std::string t = Prometheus();
  EXPECT_NE(t.find("# TYPE reqmon_http_requests_total counter\n"), std::string::npos);
  EXPECT_NE(t.find("reqmon_http_requests_total{method=\"GET\",route=\"/users/{id}\",status=\"2xx\"} 1\n"),
            std::string::npos) << t;
  EXPECT_NE(t.find("route=\"/a\\\"b\\\\c\""), std::string::npos);
  EXPECT_NE(t.find("reqmon_http_request_duration_seconds_bucket{method=\"GET\",route=\"/users/{id}\",le=\"0.001\"} 1\n"),
            std::string::npos);
  EXPECT_NE(t.find("reqmon_http_request_duration_seconds_bucket{method=\"PUT\",route=\"/bad??utf8\",le=\"10\"} 0\n"),
            std::string::npos) << t;
  EXPECT_NE(t.find("reqmon_http_request_duration_seconds_bucket{method=\"PUT\",route=\"/bad??utf8\",le=\"+Inf\"} 1\n"),
            std::string::npos);
  EXPECT_NE(t.find("reqmon_http_incomplete_requests_total 1\n"), std::string::npos);
  EXPECT_NE(t.find("reqmon_lost_events_total 3\n"), std::string::npos);
  EXPECT_NE(t.find("reqmon_unparsed_bytes_total 42\n"), std::string::npos);
  EXPECT_NE(t.find("reqmon_host_cpu_usage_percent 12.5\n"), std::string::npos);
  EXPECT_NE(t.find("reqmon_process_resident_memory_bytes{pid=\"100\",comm=\"we\\\"ird\"} 4096\n"),
            std::string::npos);
}

TEST(RenderTest, PrometheusPassesPromtool) {
  const char* promtool = "/usr/bin/promtool";
  if (access(promtool, X_OK) != 0) {
    std::printf("promtool not found at %s: skipping\n", promtool);
    GTEST_SKIP() << "promtool not installed";
  }
  char path[] = "/tmp/reqmon_prom_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  for (const std::string& text : {Prometheus(), Aggregator(Opts()).PrometheusText()}) {
    std::ofstream(path) << text;
    const std::string cmd = std::string(promtool) + " check metrics < " + path + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    const int rc = pclose(p);
    EXPECT_EQ(rc, 0) << out << "\n---\n" << text;
  }
  unlink(path);
}

}  // namespace
}  // namespace reqmon
