// SPDX-License-Identifier: MIT
// Capacity and queue time on a server whose capacity is known by construction (issue #14): W
// worker threads that each accept one connection, wait D seconds and answer, so at most W / D
// requests a second; driven by a real load generator (wrk) at rising concurrency. reqmon's USL
// estimate must be within 20 % of the plateau wrk measured, and its serving plus queue time
// within 25 % of the latency wrk's clients measured. The ramp is recorded; its replay gives the
// same estimate.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "app_support.h"

namespace reqmon::testing {
namespace {

constexpr int kWorkers = 4;
constexpr double kDelayS = 0.025;  // capacity 160 requests/s

// W threads, each: accept, read the head, sleep D, answer, close (HTTP/1.1 with
// Connection: close, so every request is a new connection that waits in the listen backlog
// while all workers are busy).
constexpr const char* kServer = R"PY(
import socket, sys, threading, time
port, workers, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(512)
body = b"ok"
head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
def work():
    while True:
        c, _ = ls.accept()
        try:
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = c.recv(4096)
                if not d:
                    break
                buf += d
            if buf:
                time.sleep(delay)
                c.sendall(head + body)
        except OSError:
            pass
        finally:
            c.close()
for _ in range(workers):
    threading.Thread(target=work, daemon=True).start()
print("ready", flush=True)
while True:
    time.sleep(3600)
)PY";

// A free port in 19000-19999.
int PortInRange() {
  for (int i = 0; i < 1000; ++i) {
    const int p = 19000 + (getpid() + i * 37) % 1000;
    if (!PortOpen(p)) return p;
  }
  return 0;
}

struct WrkRun {
  int connections = 0;
  double rps = 0;         // Requests/sec
  double latency_ms = 0;  // mean
  double requests = 0;
};

double ToMs(double v, const std::string& unit) {
  if (unit == "us") return v / 1000;
  if (unit == "s") return v * 1000;
  return v;
}

WrkRun Wrk(int port, int connections, int seconds) {
  WrkRun r;
  r.connections = connections;
  const std::string out = Run("wrk -t1 -c" + std::to_string(connections) + " -d" +
                              std::to_string(seconds) + "s -H 'Connection: close' " +
                              "http://127.0.0.1:" + std::to_string(port) + "/ 2>&1");
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"(Requests/sec:\s+([0-9.]+))")))
    r.rps = std::stod(m[1]);
  if (std::regex_search(out, m, std::regex(R"(Latency\s+([0-9.]+)(us|ms|s))")))
    r.latency_ms = ToMs(std::stod(m[1]), m[2]);
  if (std::regex_search(out, m, std::regex(R"((\d+) requests in)"))) r.requests = std::stod(m[1]);
  return r;
}

class CapacityLiveTest : public LiveReqmonTest {};

TEST_F(CapacityLiveTest, UslEstimateMatchesAWorkerPoolsKnownCapacity) {
  if (!HaveBinary("wrk") || !HaveBinary("python3")) GTEST_SKIP() << "needs wrk and python3";
  const int port = PortInRange();
  ASSERT_NE(port, 0);
  std::ofstream(dir_ / "pool.py") << kServer;
  Process server({"python3", (dir_ / "pool.py").string(), std::to_string(port),
                  std::to_string(kWorkers), std::to_string(kDelayS)},
                 (dir_ / "pool.out").string());
  ASSERT_TRUE(WaitForPort(port));
  const fs::path cap = dir_ / "ramp.rqcap";
  StartReqmon({"--pid", std::to_string(server.pid()), "--record", cap.string()});

  // The ramp: 1 to 16 connections, a few seconds each (bounded: about 45 s of load).
  std::vector<WrkRun> runs;
  for (int c : {1, 2, 3, 4, 6, 8, 12, 16}) runs.push_back(Wrk(port, c, 5));
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // the last seconds sampled
  const nlohmann::json an = GetJson(Url("/analytics"));
  const nlohmann::json stats = GetJson(Url("/stats"));

  double plateau = 0, lat_sum = 0, req_sum = 0;
  for (const WrkRun& r : runs) {
    std::printf("wrk -c%-2d %7.1f req/s  %7.2f ms  (%g requests)\n", r.connections, r.rps,
                r.latency_ms, r.requests);
    plateau = std::max(plateau, r.rps);
    lat_sum += r.latency_ms * r.requests;
    req_sum += r.requests;
  }
  ASSERT_GT(req_sum, 0);
  const double client_ms = lat_sum / req_sum;
  // The server is what it claims: the plateau is near W / D (Python's own overhead lowers it).
  EXPECT_NEAR(plateau, kWorkers / kDelayS, kWorkers / kDelayS * 0.2);

  std::printf("reqmon /analytics capacity: %s\n", an["capacity"].dump().c_str());
  ASSERT_EQ(an["capacity"]["status"], "ok") << an.dump(2);
  const double estimate = an["capacity"]["requests_per_second"].get<double>();
  EXPECT_NEAR(estimate, plateau, plateau * 0.2) << an["capacity"].dump(2);
  EXPECT_GE(an["capacity"]["levels"].get<int>(), 6);
  // Per target too.
  ASSERT_EQ(an["targets"].size(), 1u);
  EXPECT_EQ(an["targets"][0]["capacity"]["status"], "ok");

  // Serving time as before (the handler's delay), and the wait before it measured apart.
  const double serving = stats["average_response_time"].get<double>();
  const double queue = stats["queue_time"]["average"].get<double>();
  std::printf("reqmon: serving %.2f ms + queue %.2f ms = %.2f ms; clients %.2f ms\n", serving,
              queue, serving + queue, client_ms);
  EXPECT_NEAR(serving, kDelayS * 1000, kDelayS * 1000 * 0.25);
  EXPECT_GT(stats["queue_time"]["count"].get<double>(), 0.9 * stats["total_requests"].get<double>());
  EXPECT_NEAR(serving + queue, client_ms, client_ms * 0.25);
  // Under saturation most of the time is waiting: the old figure alone would be far off.
  EXPECT_LT(serving, 0.6 * client_ms);

  // Replay of the recorded ramp: the same estimate, every time.
  reqmon_.reset();
  int status = 0;
  std::string err;
  const std::string a = RunReqmon("--replay " + cap.string() + " --print-analytics --log-file none",
                                  &status, &err);
  ASSERT_EQ(status, 0) << err;
  const std::string b = RunReqmon("--replay " + cap.string() + " --print-analytics --log-file none",
                                  &status, &err);
  EXPECT_EQ(a, b);
  const nlohmann::json ra = nlohmann::json::parse(a);
  ASSERT_EQ(ra["capacity"]["status"], "ok") << ra.dump(2);
  const double replayed = ra["capacity"]["requests_per_second"].get<double>();
  std::printf("replayed estimate %.1f req/s (live %.1f)\n", replayed, estimate);
  EXPECT_NEAR(replayed, estimate, estimate * 0.1);
  EXPECT_NEAR(replayed, plateau, plateau * 0.2);
}

}  // namespace
}  // namespace reqmon::testing
