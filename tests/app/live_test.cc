// SPDX-License-Identifier: MIT
// Live, end to end (label "bpf"): the real reqmon binary observes real servers while a real
// client drives a known number of requests; /stats must show exactly that many, with the right
// status codes, and response times that agree with the server's own access-log timing. Also:
// target selection by name, cgroup and later exec; lost events reported, never silent; nothing
// left attached after SIGTERM; clear errors without privileges.
// Skipped, with the reason printed, only where BPF is genuinely not permitted.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <regex>
#include <set>
#include <thread>

#include "app_support.h"
#include "reqmon/capture/bpf_capture.h"
#include "reqmon/capture/targets.h"

namespace reqmon {
namespace {

using nlohmann::json;
using testing::Curl;
using testing::GetJson;
namespace fs = std::filesystem;

// IDs of the loaded BPF programs that carry reqmon's program names.
std::set<int> ReqmonPrograms() {
  std::string out = testing::Run("bpftool prog show 2>/dev/null");
  std::set<int> ids;
  std::istringstream in(out);
  std::string line;
  static const std::regex name(R"(^(\d+): \w+ +name (sys_enter_|sys_exit_|sched_process_|sock_recv_len|sock_send_len|inet_sock_set_st|ssl_)\w*)");
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_search(line, m, name)) ids.insert(std::stoi(m[1]));
  return ids;
}

using LiveTest = testing::LiveReqmonTest;

TEST_F(LiveTest, NginxExactCountsAndTimingAgreesWithAccessLog) {
  std::set<int> before = ReqmonPrograms();
  testing::SlowUpstream upstream;
  testing::Nginx nginx(2, upstream.port());
  StartReqmon({"--pid", std::to_string(nginx.master_pid())});
  std::set<int> ours_progs;
  for (int id : ReqmonPrograms())
    if (!before.count(id)) ours_progs.insert(id);
  // Every program of the default build: socket send and receive, TCP state changes, fork, exec
  // and exit (attached), and the 7 TLS uprobe programs (loaded; attached per process using TLS).
  EXPECT_EQ(ours_progs.size(), 13u);

  std::vector<std::string> slow, api, missing, errors;
  for (int i = 0; i < 24; ++i) slow.push_back(nginx.url("/slow/" + std::to_string(i)));
  for (int i = 0; i < 10; ++i) api.push_back(nginx.url("/api/v" + std::to_string(i)));
  for (int i = 0; i < 5; ++i) missing.push_back(nginx.url("/missing/" + std::to_string(i)));
  for (int i = 0; i < 3; ++i) errors.push_back(nginx.url("/status/500"));
  ASSERT_EQ(Curl(slow, true), 24);     // keep-alive; nginx proxies each to the upstream
  ASSERT_EQ(Curl(api, false), 10);     // a connection per request
  ASSERT_EQ(Curl(missing, true), 5);
  ASSERT_EQ(Curl(errors, false), 3);

  json s = StatsWhenTotal(42);
  EXPECT_EQ(s["total_requests"], 42);
  EXPECT_EQ(s["status_codes"], json::parse(R"({"200": 34, "404": 5, "500": 3})"));
  EXPECT_EQ(s["incomplete_requests"], 0);
  EXPECT_EQ(s["lost_events"], 0);
  // nginx's own connections to the upstream are client-side: not counted as served requests.
  int slow_count = 0;
  for (const auto& r : s["routes"])
    if (r["route"] == "/slow/{id}") slow_count = r["count"];
  EXPECT_EQ(slow_count, 24);

  // Response times agree with nginx's own $request_time (ms resolution) from its access log.
  std::ifstream log(nginx.access_log());
  std::string line;
  double sum = 0;
  int n = 0;
  while (std::getline(log, line)) {
    sum += std::stod(line.substr(line.rfind(' ') + 1)) * 1000.0;
    ++n;
  }
  ASSERT_EQ(n, 42);
  double nginx_avg = sum / n, ours = s["average_response_time"].get<double>();
  std::printf("average response time: reqmon %.3f ms, nginx access log %.3f ms\n", ours, nginx_avg);
  EXPECT_NEAR(ours, nginx_avg, std::max(1.0, nginx_avg * 0.05));
  EXPECT_GT(ours, 5.0);  // the slow upstream really shows

  // Per process: the workers served everything, the master nothing.
  int by_worker = 0;
  for (const auto& p : s["processes"]) {
    EXPECT_NE(p["pid"].get<int>(), nginx.master_pid());
    by_worker += p["count"].get<int>();
  }
  EXPECT_EQ(by_worker, 42);

  // /metrics has real host figures.
  json m = GetJson(Url("/metrics"));
  EXPECT_GT(m["memory_usage"].get<double>(), 0.0);
  EXPECT_LE(m["cpu_usage"].get<double>(), 100.0);

  // SIGTERM: a clean exit, nothing left attached, every request in the log.
  EXPECT_EQ(reqmon_->Signal(SIGTERM, 10000), 0);
  // The kernel frees detached programs after an RCU grace period: give it a few seconds.
  std::set<int> after;
  for (int i = 0; i < 100; ++i) {
    after = ReqmonPrograms();
    bool any = false;
    for (int id : ours_progs) any = any || after.count(id);
    if (!any) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (int id : ours_progs) EXPECT_FALSE(after.count(id)) << "program " << id << " still loaded";
  std::string logtext = testing::ReadFile(dir_ / "monitor_logs.txt");
  static const std::regex req_line(
      R"(^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - Request: Method=GET, URL=/slow/\d+, Status=200, Response Time=\d+(\.\d{1,3})?ms(, Queue Time=\d+(\.\d{1,3})?ms)?$)");
  static const std::regex cpu_line(
      R"(^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - CPU Usage: \d+\.\d%, Memory Usage: \d+\.\d%$)");
  int slow_lines = 0, cpu_lines = 0, request_lines = 0;
  std::istringstream in(logtext);
  while (std::getline(in, line)) {
    slow_lines += std::regex_match(line, req_line);
    cpu_lines += std::regex_match(line, cpu_line);
    request_lines += line.find(" - Request: ") != std::string::npos;
  }
  EXPECT_EQ(slow_lines, 24) << logtext.substr(0, 2000);
  EXPECT_EQ(request_lines, 42);
  EXPECT_GE(cpu_lines, 1);
}

TEST_F(LiveTest, PythonHttpServerExactCounts) {
  testing::PythonHttpServer py;
  StartReqmon({"--pid", std::to_string(py.pid())});
  std::vector<std::string> urls;
  for (int i = 0; i < 15; ++i) urls.push_back(py.url("/index.html?n=" + std::to_string(i)));
  for (int i = 0; i < 4; ++i) urls.push_back(py.url("/nothing-here-" + std::to_string(i)));
  ASSERT_EQ(Curl(urls, true), 19);
  json s = StatsWhenTotal(19);
  EXPECT_EQ(s["total_requests"], 19);
  EXPECT_EQ(s["status_codes"], json::parse(R"({"200": 15, "404": 4})"));
  json r = GetJson(Url("/requests?limit=19"));
  json list = r.is_array() ? r : r["requests"];
  ASSERT_EQ(list.size(), 19u);
  std::set<std::string> queries;
  for (const auto& q : list)
    if (q["path"] == "/index.html") queries.insert(q["query"].get<std::string>());
  EXPECT_EQ(queries.size(), 15u);
}

TEST_F(LiveTest, CommPicksUpAServerStartedLater) {
  // reqmon first, nginx afterwards: its exec matches --comm, and its workers are followed.
  StartReqmon({"--comm", "nginx"});
  testing::Nginx nginx;
  std::vector<std::string> urls;
  for (int i = 0; i < 12; ++i) urls.push_back(nginx.url("/api/late" + std::to_string(i)));
  ASSERT_EQ(Curl(urls, true), 12);
  json s = StatsWhenTotal(12);
  EXPECT_EQ(s["total_requests"], 12);
}

TEST_F(LiveTest, PortPicksUpAServerRestartedOnItFromItsFirstRequest) {
  int port;
  {
    testing::PythonHttpServer first;
    port = first.port();
    StartReqmon({"--port", std::to_string(port)});
  }
  // Another server on the same port (a restart): observed from its listen() on, so that the
  // requests right after it starts count, not only those after reqmon's next scan of /proc.
  testing::PythonHttpServer second(port);
  std::vector<std::string> urls(5, second.url("/index.html"));
  ASSERT_EQ(Curl(urls, false), 5);
  json s = StatsWhenTotal(5);
  EXPECT_EQ(s["total_requests"], 5);
}

TEST_F(LiveTest, CgroupSelectsItsProcesses) {
  std::string root = fs::exists("/sys/fs/cgroup/unified/cgroup.procs") ? "/sys/fs/cgroup/unified"
                                                                         : "/sys/fs/cgroup";
  if (!fs::exists(root + "/cgroup.procs")) GTEST_SKIP() << "no cgroup v2 hierarchy mounted";
  fs::path cg = fs::path(root) / ("reqmon-test-" + std::to_string(getpid()));
  ASSERT_TRUE(fs::create_directory(cg)) << cg;
  {
    testing::PythonHttpServer inside, outside;
    std::ofstream(cg / "cgroup.procs") << inside.pid() << "\n";
    StartReqmon({"--cgroup", cg.string()});
    std::vector<std::string> in_urls, out_urls;
    for (int i = 0; i < 7; ++i) in_urls.push_back(inside.url("/index.html"));
    for (int i = 0; i < 5; ++i) out_urls.push_back(outside.url("/index.html"));
    ASSERT_EQ(Curl(in_urls, true), 7);
    ASSERT_EQ(Curl(out_urls, true), 5);
    json s = StatsWhenTotal(7);
    EXPECT_EQ(s["total_requests"], 7);
    reqmon_.reset();
    // Move the server back out so that the cgroup can be removed.
    std::ofstream(fs::path(root) / "cgroup.procs") << inside.pid() << "\n";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  fs::remove(cg);
}

TEST_F(LiveTest, LostEventsAreReportedNeverSilent) {
  testing::Nginx nginx;
  // A 1 MiB ring buffer and a consumer stopped while the server is busy with 20,000 requests
  // (some 10 MB of records: bodies would not do, the kernel leaves those it can frame in place).
  testing::Process rq({testing::ReqmonBinary(), "--pid", std::to_string(nginx.master_pid()),
                       "--ring-buffer-mb", "1", "--payload-bytes", "16384", "--no-api",
                       "--log-file", "none", "--duration", "6", "--print-stats"},
                      (dir_ / "lost.out").string());
  // Stopped only once attached (it says so): loading the programs can take a while on a busy
  // machine, and a consumer stopped before attaching would see nothing to lose.
  for (int i = 0; i < 300 && testing::ReadFile(dir_ / "lost.out").find("observing") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  kill(rq.pid(), SIGSTOP);
  int status = -1;
  testing::Run("ab -q -k -n 20000 -c 8 " + nginx.url("/api/lost") + " >/dev/null 2>&1", &status);
  kill(rq.pid(), SIGCONT);
  ASSERT_EQ(rq.Wait(20000), 0);
  std::string out = testing::ReadFile(dir_ / "lost.out");
  size_t brace = out.find('{');
  ASSERT_NE(brace, std::string::npos) << out;
  json s = json::parse(out.substr(brace));
  EXPECT_GT(s["lost_events"].get<int>(), 0) << out.substr(0, brace);
  EXPECT_NE(out.find("events were lost"), std::string::npos) << out.substr(0, brace);
  EXPECT_LT(s["total_requests"].get<int>(), 20000);
}

TEST_F(LiveTest, ConnectionsOpenBeforeAttachAreObservedFromThenOn) {
  testing::Nginx nginx;
  // A keep-alive connection that makes one request before reqmon attaches and five after.
  static const char* kClient = R"PY(
import os, socket, sys, time
port, ready, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
def get(path):
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"\n"):
        data += s.recv(4096)
get("/api/before")
open(ready, "w").close()
deadline = time.time() + 30
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.02)
for i in range(5):
    get("/api/after%d" % i)
s.close()
)PY";
  fs::path ready = dir_ / "ready", go = dir_ / "go";
  testing::Process client({"python3", "-c", kClient, std::to_string(nginx.port()), ready.string(),
                           go.string()});
  for (int i = 0; i < 200 && !fs::exists(ready); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  ASSERT_TRUE(fs::exists(ready));
  StartReqmon({"--pid", std::to_string(nginx.master_pid())});
  std::ofstream(go).close();
  ASSERT_EQ(client.Wait(20000), 0);
  json s = StatsWhenTotal(5);
  EXPECT_EQ(s["total_requests"], 5);
  std::set<std::string> paths;
  json r = GetJson(Url("/requests?limit=10"));
  for (const auto& q : (r.is_array() ? r : r["requests"])) paths.insert(q["path"]);
  EXPECT_EQ(paths, (std::set<std::string>{"/api/after0", "/api/after1", "/api/after2",
                                          "/api/after3", "/api/after4"}));
}

TEST_F(LiveTest, AllObservesEveryServer) {
  testing::Nginx nginx;
  testing::PythonHttpServer py;
  StartReqmon({"--all"});
  std::vector<std::string> a, b;
  for (int i = 0; i < 6; ++i) a.push_back(nginx.url("/api/all" + std::to_string(i)));
  for (int i = 0; i < 4; ++i) b.push_back(py.url("/index.html"));
  ASSERT_EQ(Curl(a, true), 6);
  ASSERT_EQ(Curl(b, true), 4);
  json s = StatsWhenTotal(10);
  // Other servers on the machine may add requests; ours are all there, by route.
  int nginx_routes = 0, py_routes = 0;
  for (const auto& r : s["routes"]) {
    std::string route = r["route"];
    if (route.rfind("/api/all", 0) == 0) nginx_routes += r["count"].get<int>();
    if (route == "/index.html") py_routes += r["count"].get<int>();
  }
  EXPECT_EQ(nginx_routes, 6);
  EXPECT_GE(py_routes, 4);
}

TEST(LiveErrors, WithoutPrivilegesAOneLineError) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root to drop to an unprivileged user";
  int status = -1;
  std::string out = testing::Run("setpriv --reuid=65534 --regid=65534 --clear-groups " +
                                     testing::ReqmonBinary() + " --pid 1 --no-api 2>&1",
                                 &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find("needs root"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

TEST(LiveErrors, UnknownPidAndUnusedPort) {
  if (!CheckBpfPrerequisites().empty()) GTEST_SKIP() << CheckBpfPrerequisites();
  int status = -1;
  std::string err;
  testing::RunReqmon("--pid 999999 --no-api", &status, &err);
  EXPECT_EQ(status, 1);
  EXPECT_NE(err.find("no process with PID 999999"), std::string::npos) << err;
  testing::RunReqmon("--port " + std::to_string(testing::FreePort()) + " --no-api", &status, &err);
  EXPECT_EQ(status, 1);
  EXPECT_NE(err.find("no process is listening on TCP port"), std::string::npos) << err;
}

TEST(LiveErrors, BusyApiPortIsReportedBeforeAttaching) {
  if (!CheckBpfPrerequisites().empty()) GTEST_SKIP() << CheckBpfPrerequisites();
  testing::PythonHttpServer py;  // holds a port
  int status = -1;
  std::string err;
  testing::RunReqmon("--pid " + std::to_string(py.pid()) + " --listen 127.0.0.1:" +
                         std::to_string(py.port()) + " --log-file none",
                     &status, &err);
  EXPECT_EQ(status, 1);
  EXPECT_NE(err.find("Address already in use"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

}  // namespace
}  // namespace reqmon

namespace reqmon {
namespace {

// Safe to expose: Authorization and Cookie values never appear anywhere reqmon shows or writes;
// secret-looking query values are redacted in /requests and the log unless --show-query, and
// --redact-query drops every value.
TEST_F(LiveTest, SecretsAreNeverShown) {
  testing::Nginx nginx;
  auto drive = [&] {
    testing::Run("curl -s -o /dev/null -H 'Authorization: Bearer s3cr3t-auth-value' "
                 "-H 'Cookie: sid=s3cr3t-cookie-value' '" +
                 nginx.url("/api/login?user=ann&token=s3cr3t-query-value&page=2") + "'");
  };
  auto everything = [&] {
    return testing::HttpGet(Url("/requests")) + testing::HttpGet(Url("/stats")) +
           testing::HttpGet(Url("/metrics/prometheus")) + testing::HttpGet(Url("/series"));
  };
  StartReqmon({"--pid", std::to_string(nginx.master_pid())});
  drive();
  StatsWhenTotal(1);
  std::string shown = everything();
  EXPECT_EQ(shown.find("s3cr3t"), std::string::npos) << shown.substr(0, 2000);
  json r = GetJson(Url("/requests"));
  ASSERT_EQ(r["count"], 1);
  EXPECT_EQ(r["requests"][0]["query"], "user=ann&token=REDACTED&page=2");
  ASSERT_EQ(reqmon_->Signal(SIGTERM, 10000), 0);
  std::string log = testing::ReadFile(dir_ / "monitor_logs.txt");
  EXPECT_EQ(log.find("s3cr3t"), std::string::npos) << log;
  EXPECT_NE(log.find("URL=/api/login?user=ann&token=REDACTED&page=2,"), std::string::npos) << log;

  StartReqmon({"--pid", std::to_string(nginx.master_pid()), "--show-query"}, "none");
  drive();
  StatsWhenTotal(1);
  EXPECT_EQ(GetJson(Url("/requests"))["requests"][0]["query"],
            "user=ann&token=s3cr3t-query-value&page=2");
  shown = everything();
  EXPECT_EQ(shown.find("s3cr3t-auth"), std::string::npos);
  EXPECT_EQ(shown.find("s3cr3t-cookie"), std::string::npos);
  ASSERT_EQ(reqmon_->Signal(SIGTERM, 10000), 0);

  StartReqmon({"--pid", std::to_string(nginx.master_pid()), "--redact-query"}, "none");
  drive();
  StatsWhenTotal(1);
  EXPECT_EQ(GetJson(Url("/requests"))["requests"][0]["query"], "user&token&page");
}

}  // namespace
}  // namespace reqmon

namespace reqmon {
namespace {

// Hardening: a client that writes slowly, so that nginx's first read brings only the first
// bytes of the method, is counted; nginx's access log is the ground truth.
TEST_F(LiveTest, SlowFirstReadIsCounted) {
  testing::Nginx nginx;
  StartReqmon({"--pid", std::to_string(nginx.master_pid())});
  int st = 0;
  std::string out = testing::Run(std::string("python3 -c \"") + R"PY(
import socket, sys, time
port = int(sys.argv[1])
for first, rest in [(b'G', b'ET /api/slow1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
                    (b'GE', b'T /api/slow2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
                    (b'POS', b'T /api/slow3 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi')]:
    s = socket.create_connection(('127.0.0.1', port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(first)
    time.sleep(0.3)
    s.sendall(rest)
    data = b''
    while True:
        b = s.recv(4096)
        if not b: break
        data += b
    print(data.split(b'\r\n')[0].decode())
    s.close()
)PY" + "\" " + std::to_string(nginx.port()), &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 3) << out;
  json s = StatsWhenTotal(3);
  std::ifstream log(nginx.access_log());
  int lines = 0;
  for (std::string line; std::getline(log, line);) ++lines;
  EXPECT_EQ(lines, 3);
  EXPECT_EQ(s["total_requests"], lines);
  EXPECT_EQ(s["unparsed"]["bytes"], 0);
  std::set<std::string> paths;
  const json recent = GetJson(Url("/requests"));
  for (const auto& e : recent["requests"]) paths.insert(e["path"].get<std::string>());
  EXPECT_EQ(paths, (std::set<std::string>{"/api/slow1", "/api/slow2", "/api/slow3"}));
}

}  // namespace
}  // namespace reqmon

namespace reqmon {
namespace {

// Hardening: what the server answered is what reqmon counts. A request whose head is longer than
// the captured prefix (a 48 KiB cookie) and garbage bytes are both answered 400 by nginx, and
// both are counted, as nginx's access log has them.
TEST_F(LiveTest, AnsweredOversizedHeadAndGarbageAreCounted) {
  testing::Nginx nginx;
  StartReqmon({"--pid", std::to_string(nginx.master_pid())});
  int st = 0;
  std::string out = testing::Run(std::string("python3 -c \"") + R"PY(
import socket, sys
port = int(sys.argv[1])
for req in [b'GET /big-cookie HTTP/1.1\r\nHost: x\r\nCookie: c=' + b'a' * (48 * 1024) + b'\r\nConnection: close\r\n\r\n',
            b'\x01\x02\x03 junk that is no request\r\n\r\n']:
    s = socket.create_connection(('127.0.0.1', port))
    s.sendall(req)
    data = b''
    s.settimeout(5)
    try:
        while True:
            b = s.recv(4096)
            if not b: break
            data += b
    except socket.timeout:
        pass
    print(data.split(b'\r\n')[0].decode(errors='replace'))
    s.close()
)PY" + "\" " + std::to_string(nginx.port()), &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;
  EXPECT_NE(out.find("400"), std::string::npos) << out;
  json s = StatsWhenTotal(2);
  std::ifstream log(nginx.access_log());
  int lines = 0, bad = 0;
  for (std::string line; std::getline(log, line);) {
    ++lines;
    bad += line.find(" 400 ") != std::string::npos;
  }
  EXPECT_EQ(lines, 2);
  EXPECT_EQ(bad, 2);
  EXPECT_EQ(s["total_requests"], lines);
  EXPECT_EQ(s["status_codes"], json::parse(R"({"400": 2})"));
  std::set<std::string> methods;
  const json recent = GetJson(Url("/requests"));
  for (const auto& e : recent["requests"]) methods.insert(e["method"].get<std::string>() + " " + e["path"].get<std::string>());
  EXPECT_EQ(methods, (std::set<std::string>{"GET /big-cookie", "(unparsed) (unparsed)"}));
}

}  // namespace
}  // namespace reqmon

namespace reqmon {
namespace {

// A client that resets its connection (SO_LINGER 0) closes the server's socket in softirq,
// outside any syscall of the server's, and the server's own close() then changes no TCP state:
// the close is reported for the process that last read or wrote on the socket (its storage names
// it). So a request left unanswered is counted incomplete at once, not when the fd is reused,
// and no connection stays open in reqmon after the server is done with it.
const char* kResetClient = R"PY(
import socket, struct, sys, time
port, path, read_answer = int(sys.argv[1]), sys.argv[2], sys.argv[3] == '1'
s = socket.create_connection(('127.0.0.1', port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
s.sendall(('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % path).encode())
if read_answer:
    print(s.recv(65536).split(b'\r\n')[0].decode())
else:
    time.sleep(0.005)
s.close()
)PY";

TEST_F(LiveTest, ResetConnectionsCloseAtOnce) {
  testing::Nginx nginx;
  StartReqmon({"--pid", std::to_string(nginx.master_pid())});
  for (int i = 0; i < 3; ++i) {  // answered, then reset while nginx keeps it alive
    int st = 0;
    std::string out = testing::Run("python3 -c \"" + std::string(kResetClient) + "\" " +
                                   std::to_string(nginx.port()) + " /api/reset 1", &st);
    ASSERT_EQ(st, 0) << out;
    EXPECT_EQ(out, "HTTP/1.1 200 OK\n");
  }
  const json s = StatsWhen([](const json& j) {
    return j["total_requests"] == 3 && Closed(j, 3);
  });
  EXPECT_EQ(s["total_requests"], 3);
  EXPECT_EQ(s["incomplete_requests"], 0);
  EXPECT_TRUE(Closed(s, 3)) << "a reset connection was never closed: " << s["capture"].dump();
}

TEST_F(LiveTest, RequestLeftUnansweredByAResetIsIncompleteAtOnce) {
  testing::SlowUpstream slow;  // answers /api/3 after 40 ms: the client has reset by then
  StartReqmon({"--port", std::to_string(slow.port())});
  int st = 0;
  std::string out = testing::Run("python3 -c \"" + std::string(kResetClient) + "\" " +
                                 std::to_string(slow.port()) + " /api/3 0", &st);
  ASSERT_EQ(st, 0) << out;
  // No other connection follows, so the fd is never reused: only the reset can close it.
  const json s = StatsWhen([](const json& j) {
    return j["incomplete_requests"] == 1 && Closed(j, 1);
  });
  EXPECT_EQ(s["incomplete_requests"], 1);
  EXPECT_EQ(s["total_requests"], 0);
  EXPECT_TRUE(Closed(s, 1)) << s["capture"].dump();
}

// --log-max-size and --log-keep: the request log rotates at its size into monitor_logs.1.txt
// (the newest) ... and keeps that many; what is kept is the newest requests, in order.
TEST_F(LiveTest, RequestLogRotatesAtItsSize) {
  testing::Nginx nginx;
  StartReqmon({"--pid", std::to_string(nginx.master_pid()), "--log-max-size", "4KiB",
               "--log-keep", "2"});
  const int n = 300;
  int st = 0;
  const std::string out = testing::Run(
      "python3 -c \"import http.client, sys\n"
      "c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]))\n"
      "for i in range(int(sys.argv[2])):\n"
      "    c.request('GET', '/api/r%d' % i); c.getresponse().read()\n\" " +
          std::to_string(nginx.port()) + " " + std::to_string(n),
      &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_EQ(StatsWhenTotal(n)["total_requests"], n);
  EXPECT_EQ(reqmon_->Signal(SIGTERM, 10000), 0);  // flushes the log
  EXPECT_TRUE(fs::exists(dir_ / "monitor_logs.1.txt"));
  EXPECT_TRUE(fs::exists(dir_ / "monitor_logs.2.txt"));
  EXPECT_FALSE(fs::exists(dir_ / "monitor_logs.3.txt"));
  std::vector<int> seen;
  for (const char* name : {"monitor_logs.2.txt", "monitor_logs.1.txt", "monitor_logs.txt"}) {
    EXPECT_LE(fs::file_size(dir_ / name), 4096u) << name;
    std::istringstream in(testing::ReadFile(dir_ / name));
    for (std::string line; std::getline(in, line);) {
      const size_t at = line.find("URL=/api/r");
      if (at != std::string::npos) seen.push_back(std::stoi(line.substr(at + 10)));
    }
  }
  ASSERT_GT(seen.size(), 60u);
  EXPECT_EQ(seen.back(), n - 1);
  for (size_t i = 1; i < seen.size(); ++i) ASSERT_EQ(seen[i], seen[i - 1] + 1) << "a gap at " << i;
}

// A server that reads late: by the time it reads, the client's request and its reset have both
// arrived. The socket is closed already, but the request is still queued and the read returns it;
// only the read after it fails. The close is reported after the bytes the server reads, not at
// the reset, so the request belongs to the connection it came on and is counted incomplete at
// once (the server's answer fails), instead of opening a connection that nothing closes.
const char* kLateReader = R"PY(
import socket, sys, time
ls = socket.create_server(('127.0.0.1', int(sys.argv[1])))
while True:
    s, _ = ls.accept()
    try:
        while True:
            time.sleep(0.2)
            if not s.recv(65536):
                break
            s.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n')
    except OSError:
        pass
    s.close()
)PY";

// Two requests on one connection: the first is answered, the second is sent with the reset
// right behind it and read by the server after the reset closed the socket.
const char* kKeepAliveResetClient = R"PY(
import socket, struct, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
s.sendall(b'GET /first HTTP/1.1\r\nHost: x\r\n\r\n')
print(s.recv(65536).split(b'\r\n')[0].decode())
s.sendall(b'GET /second HTTP/1.1\r\nHost: x\r\n\r\n')
s.close()
)PY";

class LateReader : public testing::PythonScriptServer {
 public:
  LateReader() : PythonScriptServer(kLateReader, "late reader") {}
};

TEST_F(LiveTest, RequestReadAfterTheResetBelongsToItsConnection) {
  LateReader server;
  StartReqmon({"--port", std::to_string(server.port())});
  int st = 0;
  std::string out = testing::Run("python3 -c \"" + std::string(kResetClient) + "\" " +
                                 std::to_string(server.port()) + " /unanswered 0", &st);
  ASSERT_EQ(st, 0) << out;
  const json s = StatsWhen([](const json& j) {
    return j["incomplete_requests"] == 1 && Closed(j, 1);
  });
  EXPECT_EQ(s["incomplete_requests"], 1);
  EXPECT_EQ(s["total_requests"], 0);
  EXPECT_TRUE(Closed(s, 1)) << "the request read after the reset opened a connection: " << s["capture"].dump();
}

TEST_F(LiveTest, KeepAliveRequestReadAfterTheResetBelongsToItsConnection) {
  LateReader server;
  StartReqmon({"--port", std::to_string(server.port())});
  int st = 0;
  std::string out = testing::Run("python3 -c \"" + std::string(kKeepAliveResetClient) + "\" " +
                                 std::to_string(server.port()), &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_EQ(out, "HTTP/1.1 200 OK\n");
  const json s = StatsWhen([](const json& j) {
    return j["total_requests"] == 1 && j["incomplete_requests"] == 1 &&
           Closed(j, 1);
  });
  EXPECT_EQ(s["total_requests"], 1);
  EXPECT_EQ(s["incomplete_requests"], 1);
  EXPECT_TRUE(Closed(s, 1)) << "the request read after the reset opened a connection: " << s["capture"].dump();
}

// A server that answers one request, then closes without reading what came next: the client's
// second request and its reset are still queued. The reset closed the socket while bytes were
// unread, so the close waited for the reads that never came; the server's close of a socket in
// CLOSE changes no TCP state. The socket's destruction ends the connection.
const char* kClosesUnread = R"PY(
import socket, sys, time
ls = socket.create_server(('127.0.0.1', int(sys.argv[1])))
while True:
    s, _ = ls.accept()
    try:
        s.recv(65536)
        s.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n')
        time.sleep(0.3)
    except OSError:
        pass
    s.close()
)PY";

TEST_F(LiveTest, ResetSocketClosedUnreadEndsItsConnection) {
  testing::PythonScriptServer server(kClosesUnread, "server");
  StartReqmon({"--port", std::to_string(server.port())});
  int st = 0;
  std::string out = testing::Run("python3 -c \"" + std::string(kKeepAliveResetClient) + "\" " +
                                 std::to_string(server.port()), &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_EQ(out, "HTTP/1.1 200 OK\n");
  const json s = StatsWhen([](const json& j) {
    return j["total_requests"] == 1 && Closed(j, 1);
  });
  EXPECT_EQ(s["total_requests"], 1);
  EXPECT_EQ(s["incomplete_requests"], 0);  // the server never read the second request
  EXPECT_TRUE(Closed(s, 1)) << "the connection closed unread stayed open: " << s["capture"].dump();
}

}  // namespace
}  // namespace reqmon
