// SPDX-License-Identifier: MIT
// Live (label "bpf"): the kernel copies heads, not bodies whose length it knows
// (bpf/framing.bpf.h), and every request is still framed exactly. A server that controls how its
// responses reach the socket (tests/support/framing_server.py) answers bodies of many sizes (0,
// 1, around the head window and the payload prefix, 1 MiB) in one write, in several after a head
// written alone, by sendfile after a head written alone (as nginx with sendfile on), and as
// iovecs of one sendmsg (head and body apart as nginx writes them, the head cut, the body's start
// with the head), chunked bodies, HEAD, 204 and 304 with a Content-Length, uploads, and pipelined
// requests whose responses share one write (plain, and as iovecs). Its own log is the ground
// truth: reqmon must report every request with the same method, path, status and request and
// response sizes, parse nothing wrongly, and have left most body bytes uncopied.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <thread>

#include "app_support.h"

namespace reqmon {
namespace {

using nlohmann::json;
using testing::GetJson;
namespace fs = std::filesystem;

using FramingLiveTest = testing::LiveReqmonTest;

// The client: keep-alive connections through http.client (which reads HEAD, 204, 304 and chunked
// answers right), then pipelined requests on a raw socket, all written at once.
constexpr const char* kClient = R"PY(
import http.client, socket, sys
port = int(sys.argv[1])
sizes = [0, 1, 100, 1023, 1024, 1025, 4095, 4096, 4097, 16383, 16384, 16385, 65536, 1 << 20]
c = http.client.HTTPConnection('127.0.0.1', port)
def get(method, path, body=None):
    c.request(method, path, body=body)
    r = c.getresponse()
    r.read()
for n in sizes:
    get('GET', '/len/%d' % n)
    get('GET', '/split/%d' % n)
    get('GET', '/iov/%d' % n)
    get('GET', '/iovsplit/%d' % n)
    get('GET', '/iovmix/%d' % n)
    get('GET', '/sendfile/%d' % n)
for n in [0, 1, 999, 1000, 1001, 5000, 300000]:
    get('GET', '/chunked/%d' % n)
for s in [204, 304, 200]:
    get('GET', '/status/%d' % s)
for n in [0, 1, 4097, 1 << 20]:
    get('POST', '/upload', body=b'u' * n)
c.close()
# HEAD on its own connection: the responses after it still count exactly.
c = http.client.HTTPConnection('127.0.0.1', port)
for n in [10, 5000, 70000]:
    get('HEAD', '/len/%d' % n)
    get('GET', '/len/%d' % n)
c.close()
# Pipelined: five requests in one write, answered in one write (within the payload prefix: the
# heads of responses written together beyond it are not captured, see docs/performance.md).
s = socket.create_connection(('127.0.0.1', port))
reqs = [b'GET /len/%d HTTP/1.1\r\nHost: x\r\n\r\n' % n for n in [10, 1500, 0, 2000]]
reqs.append(b'GET /len/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
s.sendall(b''.join(reqs))
while s.recv(1 << 20):
    pass
s.close()
# A HEAD pipelined behind a GET (the kernel sees no HEAD at the start of a read), its head
# written alone, then a response whose head is written alone and its body by sendfile: the
# HEAD's head announces 5000 bytes that never come.
s = socket.create_connection(('127.0.0.1', port))
s.sendall(b'GET /len/10 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /sendfile/5000 HTTP/1.1\r\nHost: x\r\n\r\n'
          b'GET /sendfile/300 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
while s.recv(1 << 20):
    pass
s.close()
# The same, answered in one sendmsg of each response's head and body as iovecs of their own.
s = socket.create_connection(('127.0.0.1', port))
reqs = [b'GET /iov/%d HTTP/1.1\r\nHost: x\r\n\r\n' % n for n in [10, 1500, 0]]
reqs.append(b'GET /iov/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
s.sendall(b''.join(reqs))
while s.recv(1 << 20):
    pass
s.close()
print('done')
)PY";

TEST_F(FramingLiveTest, BodiesOfEverySizeChunkedHeadAndPipelinedAreFramedExactly) {
  const int port = testing::FreePort();
  const fs::path log = dir_ / "server.log";
  testing::Process server({"python3", std::string(REQMON_SOURCE_DIR) + "/tests/support/framing_server.py",
                           std::to_string(port), log.string()},
                          (dir_ / "server.err").string());
  ASSERT_TRUE(testing::WaitForPort(port)) << testing::ReadFile(dir_ / "server.err");
  StartReqmon({"--pid", std::to_string(server.pid())});

  int st = 0;
  std::string out = testing::Run(std::string("python3 -c \"") + kClient + "\" " + std::to_string(port) + " 2>&1", &st);
  ASSERT_EQ(st, 0) << out;

  // The server's log: one line per request it answered.
  std::multiset<std::string> expected;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) expected.insert(line);
  ASSERT_EQ(expected.size(), 14u * 6 + 7 + 3 + 4 + 6 + 5 + 3 + 4);

  json stats = StatsWhenTotal(static_cast<int>(expected.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // capture counters: once a second
  stats = GetJson(Url("/stats"));
  EXPECT_EQ(stats["total_requests"], expected.size());
  EXPECT_EQ(stats["unparsed"]["bytes"], 0);
  EXPECT_EQ(stats["incomplete_requests"], 0);

  std::multiset<std::string> seen;
  const json recent = GetJson(Url("/requests?limit=1000"));
  for (const auto& e : recent["requests"])
    seen.insert(e["method"].get<std::string>() + " " + e["path"].get<std::string>() + " " +
                std::to_string(e["status"].is_number() ? e["status"].get<int>() : 0) + " " +
                std::to_string(e["request_bytes"].get<uint64_t>()) + " " +
                std::to_string(e["response_bytes"].get<uint64_t>()));
  std::string missing, extra;
  for (const auto& l : expected)
    if (seen.count(l) < expected.count(l)) missing += "  " + l + "\n";
  for (const auto& l : seen)
    if (expected.count(l) < seen.count(l)) extra += "  " + l + "\n";
  EXPECT_EQ(seen, expected) << "the server answered, reqmon did not report:\n" << missing
                            << "reqmon reported, the server did not answer:\n" << extra;

  // The kernel left the bodies it could frame uncopied: at least most of the 1 MiB downloads
  // written with their heads and of the 1 MiB upload.
  const json& cap = stats["capture"];
  ASSERT_TRUE(cap.contains("kernel_body_bytes_not_copied")) << cap.dump();
  EXPECT_GT(cap["kernel_body_bytes_not_copied"].get<uint64_t>(), 2u << 20) << cap.dump();
  EXPECT_EQ(stats["lost_events"], 0);

  // A head written on its own and its body in writes of their own (Python's http.server does
  // so): the kernel scans the head and leaves every byte of the body uncopied.
  const uint64_t before = cap["kernel_body_bytes_not_copied"].get<uint64_t>();
  out = testing::Run("python3 -c \"import http.client, sys\n"
                     "c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]))\n"
                     "for _ in range(3):\n"
                     "    c.request('GET', '/split/1048576'); assert len(c.getresponse().read()) == 1 << 20\n"
                     "print('done')\" " + std::to_string(port) + " 2>&1", &st);
  ASSERT_EQ(st, 0) << out;
  StatsWhenTotal(static_cast<int>(expected.size()) + 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  stats = GetJson(Url("/stats"));
  EXPECT_EQ(stats["total_requests"], expected.size() + 3);
  EXPECT_EQ(stats["unparsed"]["bytes"], 0);
  EXPECT_GE(stats["capture"]["kernel_body_bytes_not_copied"].get<uint64_t>() - before, 3u << 20)
      << stats["capture"].dump();
  EXPECT_EQ(stats["lost_events"], 0);
}

}  // namespace
}  // namespace reqmon
