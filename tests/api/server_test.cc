// SPDX-License-Identifier: MIT
#include "reqmon/api/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>
#include <string>

#include "reqmon/aggregator/aggregator.h"

namespace reqmon {
namespace {

namespace fs = std::filesystem;

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// A minimal HTTP/1.1 client over a raw socket: one request, reads Content-Length bytes.
Response Http(uint16_t port, const std::string& method, const std::string& target,
              const std::string& host = "127.0.0.1") {
  Response r;
  const bool v6 = host.find(':') != std::string::npos;
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int rc;
  if (v6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    inet_pton(AF_INET6, host.c_str(), &a.sin6_addr);
    rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, host.c_str(), &a.sin_addr);
    rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0) {
    close(fd);
    return r;
  }
  const std::string req = method + " " + target +
                          " HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string data;
  char buf[65536];
  size_t head_end = std::string::npos;
  size_t want = std::string::npos;
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (head_end == std::string::npos && (head_end = data.find("\r\n\r\n")) != std::string::npos) {
      std::string head = data.substr(0, head_end);
      size_t pos = head.find("\r\n");
      r.status = std::stoi(head.substr(9, 3));
      while (pos != std::string::npos && pos < head.size()) {
        const size_t next = head.find("\r\n", pos + 2);
        const std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos
                                                                                : next - pos - 2);
        const size_t colon = line.find(':');
        if (colon != std::string::npos) {
          std::string name = line.substr(0, colon);
          for (char& c : name) c = static_cast<char>(tolower(c));
          std::string value = line.substr(colon + 1);
          while (!value.empty() && value.front() == ' ') value.erase(0, 1);
          r.headers[name] = value;
        }
        pos = next;
      }
      if (r.headers.count("content-length")) want = std::stoul(r.headers["content-length"]);
    }
    if (head_end != std::string::npos && want != std::string::npos &&
        data.size() >= head_end + 4 + want) {
      break;
    }
  }
  close(fd);
  if (head_end != std::string::npos) r.body = data.substr(head_end + 4);
  return r;
}

uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/reqmon_web_XXXXXX";
    web_ = mkdtemp(dir);
    std::ofstream(web_ + "/index.html") << "<html>dash</html>";
    std::ofstream(web_ + "/app.js") << "console.log(1)";
    std::ofstream(web_ + "/style.css") << "body{}";
    std::ofstream(web_ + "/../reqmon_secret_" + fs::path(web_).filename().string()) << "TOPSECRETDATA";
    AggregatorOptions o;
    o.wall_offset_ns = WallOffsetNow();
    agg_ = std::make_unique<Aggregator>(o);
    for (int i = 0; i < 5; ++i) {
      HttpTransaction tx;
      tx.pid = 42;
      tx.request_start_ns = 1'000'000'000ull + i;
      tx.response_end_ns = tx.request_start_ns + 2'000'000;
      tx.method = "GET";
      tx.path = "/items/" + std::to_string(i);
      tx.status = i == 4 ? 404 : 200;
      agg_->OnTransaction(tx);
    }
    ApiServerOptions so;
    so.port = 0;
    so.web_dir = web_;
    server_ = std::make_unique<ApiServer>(*agg_, so);
    server_->Start();
    port_ = server_->port();
  }
  void TearDown() override {
    server_.reset();
    fs::remove(web_ + "/../reqmon_secret_" + fs::path(web_).filename().string());
    fs::remove_all(web_);
  }
  std::string web_;
  std::unique_ptr<Aggregator> agg_;
  std::unique_ptr<ApiServer> server_;
  uint16_t port_ = 0;
};

nlohmann::ordered_json Json(const Response& r) {
  return nlohmann::ordered_json::parse(r.body);
}

TEST_F(ApiServerTest, Metrics) {
  const Response r = Http(port_, "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  EXPECT_EQ(r.body.substr(0, 13), R"({"cpu_usage":)");
  EXPECT_TRUE(Json(r).contains("memory_usage"));
}

TEST_F(ApiServerTest, Stats) {
  const Response r = Http(port_, "GET", "/stats");
  ASSERT_EQ(r.status, 200);
  const std::string prefix =
      R"({"total_requests":5,"average_response_time":2.0,"status_codes":{"200":4,"404":1},"min_res)";
  EXPECT_EQ(r.body.substr(0, prefix.size()), prefix);
  EXPECT_EQ(Json(r)["routes"][0]["route"], "/items/{id}");
}

TEST_F(ApiServerTest, Requests) {
  Response r = Http(port_, "GET", "/requests");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Json(r)["count"], 5);
  r = Http(port_, "GET", "/requests?limit=2");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Json(r)["requests"].size(), 2u);
  EXPECT_EQ(Json(r)["requests"][0]["path"], "/items/4");
  for (const char* bad : {"abc", "-1", "0", "", "1.5", "99999999999"}) {
    r = Http(port_, "GET", std::string("/requests?limit=") + bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(Json(r)["error"], "invalid limit");
  }
}

TEST_F(ApiServerTest, SeriesHealthAndPrometheus) {
  Response r = Http(port_, "GET", "/series");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Json(r)["timestamps"].size(), Json(r)["requests"].size());
  r = Http(port_, "GET", "/healthz");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Json(r)["status"], "ok");
  r = Http(port_, "GET", "/metrics/prometheus");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type").substr(0, 25), "text/plain; version=0.0.4");
  EXPECT_NE(r.body.find("reqmon_http_requests_total{method=\"GET\",route=\"/items/{id}\",status=\"2xx\"} 4"),
            std::string::npos);
}

TEST_F(ApiServerTest, NotFoundAndMethodNotAllowed) {
  Response r = Http(port_, "GET", "/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Json(r)["error"], "not found");
  EXPECT_EQ(Json(r)["path"], "/nope");
  r = Http(port_, "POST", "/stats");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers.at("allow"), "GET");
  EXPECT_EQ(Json(r)["error"], "method not allowed");
  r = Http(port_, "DELETE", "/metrics/prometheus");
  EXPECT_EQ(r.status, 405);
  r = Http(port_, "POST", "/nope");
  EXPECT_EQ(r.status, 404);
}

TEST_F(ApiServerTest, StaticFiles) {
  Response r = Http(port_, "GET", "/");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<html>dash</html>");
  EXPECT_EQ(r.headers.at("content-type").substr(0, 9), "text/html");
  r = Http(port_, "GET", "/app.js");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type").substr(0, 15), "text/javascript");
  r = Http(port_, "GET", "/style.css");
  EXPECT_EQ(r.headers.at("content-type").substr(0, 8), "text/css");
  const std::string secret = "reqmon_secret_" + fs::path(web_).filename().string();
  for (const std::string& t : std::vector<std::string>{"/../" + secret, "/./../" + secret, "/missing.html",
                               "/%2e%2e/" + secret}) {
    r = Http(port_, "GET", t);
    EXPECT_EQ(r.status, 404) << t;
    EXPECT_EQ(r.body.find("TOPSECRETDATA"), std::string::npos) << r.body;
  }
}

TEST(ApiServerLifecycleTest, MissingWebDirGives404Json) {
  Aggregator agg;
  ApiServerOptions so;
  so.port = 0;
  so.web_dir = "/nonexistent/reqmon/web";
  ApiServer server(agg, so);
  server.Start();
  const Response r = Http(server.port(), "GET", "/");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "not found");
}

TEST(ApiServerLifecycleTest, BusyPortGivesClearError) {
  Aggregator agg;
  ApiServerOptions so;
  so.port = FreePort();
  ApiServer a(agg, so);
  a.Start();
  ApiServer b(agg, so);
  try {
    b.Start();
    FAIL() << "second Start should throw";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot listen on 127.0.0.1:" + std::to_string(so.port) + ": Address already in use");
  }
}

TEST(ApiServerLifecycleTest, StopIsPromptAndPortReusable) {
  Aggregator agg;
  ApiServerOptions so;
  so.port = FreePort();
  auto threads = [] {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/task")) ++n;
    return n;
  };
  const size_t before = threads();
  for (int round = 0; round < 3; ++round) {
    ApiServer s(agg, so);
    s.Start();
    EXPECT_EQ(Http(so.port, "GET", "/healthz").status, 200);
    const auto t0 = std::chrono::steady_clock::now();
    s.Stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
    s.Stop();  // idempotent
    EXPECT_EQ(threads(), before) << "server threads left running after Stop()";
  }
}

TEST(ApiServerLifecycleTest, Ipv6Loopback) {
  const int probe = socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool ok = probe >= 0 && bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  if (probe >= 0) close(probe);
  if (!ok) GTEST_SKIP() << "no IPv6 loopback";
  Aggregator agg;
  ApiServerOptions so;
  so.host = "::1";
  so.port = 0;
  ApiServer s(agg, so);
  s.Start();
  EXPECT_EQ(s.address(), "[::1]:" + std::to_string(s.port()));
  EXPECT_EQ(Http(s.port(), "GET", "/healthz", "::1").status, 200);
}

}  // namespace
}  // namespace reqmon
