// SPDX-License-Identifier: MIT
// Live capture (label "bpf"): the real eBPF programs observe a real nginx (by its master PID;
// the workers do the I/O) and a real python3 http.server, a real client (curl) drives a known
// number of requests, and exactly that many requests' and responses' bytes are in the capture.
// Skipped, with the reason printed, only where BPF is genuinely not permitted.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>

#include "../support/servers.h"
#include "reqmon/abi.h"
#include "reqmon/capture/bpf_capture.h"
#include "reqmon/capture/capture_file.h"
#include "reqmon/capture/targets.h"

namespace reqmon {
namespace {

namespace fs = std::filesystem;
using testing::Curl;

size_t CountOccurrences(std::string_view hay, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = hay.find(needle); pos != std::string_view::npos;
       pos = hay.find(needle, pos + needle.size()))
    ++n;
  return n;
}

/// Collects every record the capture hands over, and writes each one to a capture file.
struct Collector {
  std::vector<std::string> records;
  std::unique_ptr<CaptureWriter> writer;
  static void OnRecord(void* ctx, const void* data, size_t len) {
    auto* c = static_cast<Collector*>(ctx);
    c->records.emplace_back(static_cast<const char*>(data), len);
    if (c->writer) c->writer->Write(data, len);
  }
  /// Calls f(event, record) for each record of `type`, read as a T.
  template <typename T, typename F>
  void ForEach(uint32_t type, F&& f) const {
    for (const auto& r : records) {
      rq_event_header h;
      std::memcpy(&h, r.data(), sizeof(h));
      if (h.type != type) continue;
      T ev;
      std::memcpy(&ev, r.data(), sizeof(ev));
      f(ev, r);
    }
  }
  std::vector<rq_data_event> Data(uint8_t direction, std::string* joined_payloads) const {
    std::vector<rq_data_event> out;
    ForEach<rq_data_event>(RQ_EV_DATA, [&](const rq_data_event& ev, const std::string& r) {
      if (ev.direction != direction) return;
      out.push_back(ev);
      joined_payloads->append(r.data() + sizeof(ev), ev.payload_len);
      joined_payloads->push_back('\x01');  // keep records apart
    });
    return out;
  }
  std::vector<rq_conn_event> Conns(uint32_t type) const {
    std::vector<rq_conn_event> out;
    ForEach<rq_conn_event>(type, [&](const rq_conn_event& ev, const std::string&) {
      out.push_back(ev);
    });
    return out;
  }
  size_t CountConn(uint32_t type) const { return Conns(type).size(); }
};

class LiveCaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = CheckBpfPrerequisites(); !why.empty()) {
      std::printf("SKIPPED (BPF not available): %s\n", why.c_str());
      GTEST_SKIP() << why;
    }
    if (!testing::HaveBinary("curl")) GTEST_SKIP() << "curl is not installed (scripts/setup.sh)";
    dir_ = testing::MakeTempDir("live");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::unique_ptr<BpfCapture> Attach(CaptureConfig cfg) {
    std::string err;
    CaptureInfo info;
    info.realtime_offset_ns = RealtimeOffsetNs();
    info.payload_limit = cfg.payload_bytes;
    collector_.writer = CaptureWriter::Create((dir_ / "live.rqcap").string(), info, &err);
    EXPECT_TRUE(collector_.writer) << err;
    auto cap = BpfCapture::Start(cfg, &Collector::OnRecord, &collector_, &err);
    if (!cap && err.find("not permitted") != std::string::npos) {
      std::printf("SKIPPED (BPF not permitted): %s\n", err.c_str());
      return nullptr;
    }
    EXPECT_TRUE(cap) << err;
    return cap;
  }

  // Drains until no record has arrived for 300 ms.
  void Drain(BpfCapture* cap) {
    int quiet = 0;
    while (quiet < 300) {
      int n = cap->Poll(10);
      ASSERT_GE(n, 0);
      quiet = n > 0 ? 0 : quiet + 10;
    }
  }

  void TlsPlaintextCaptured(bool compat);

  fs::path dir_;
  Collector collector_;
};

TEST_F(LiveCaptureTest, NginxByMasterPidKeepAliveAndNot) {
  testing::Nginx nginx;
  CaptureConfig cfg;
  cfg.pids = {nginx.master_pid()};
  auto cap = Attach(cfg);
  if (!cap) GTEST_SKIP() << "BPF not permitted";
  EXPECT_STREQ(cap->variant(), "default");  // this kernel (6.18) takes the default build

  std::vector<std::string> ka, closed;
  for (int i = 0; i < 20; ++i) ka.push_back(nginx.url("/api/ka" + std::to_string(i)));
  for (int i = 0; i < 10; ++i) closed.push_back(nginx.url("/api/cl" + std::to_string(i)));
  ASSERT_EQ(Curl(ka, true), 20);
  ASSERT_EQ(Curl(closed, false), 10);
  // A 100 kB static file goes out by sendfile: size only.
  ASSERT_EQ(Curl({nginx.url("/big.bin")}, false), 1);
  Drain(cap.get());

  std::string in, out;
  auto ingress = collector_.Data(RQ_DIR_INGRESS, &in);
  auto egress = collector_.Data(RQ_DIR_EGRESS, &out);
  EXPECT_EQ(CountOccurrences(in, "GET /api/ka"), 20u);
  EXPECT_EQ(CountOccurrences(in, "GET /api/cl"), 10u);
  EXPECT_EQ(CountOccurrences(in, "GET /big.bin HTTP/1.1"), 1u);
  EXPECT_EQ(CountOccurrences(out, "HTTP/1.1 200 OK"), 31u);

  // Every data record is on a TCP socket of the nginx port, from a worker, never the master.
  std::set<uint32_t> pids;
  uint64_t sendfile_bytes = 0;
  auto workers = ProcessTree("/proc", nginx.master_pid());
  for (const auto* evs : {&ingress, &egress}) {
    for (const auto& ev : *evs) {
      EXPECT_EQ(ev.ep.lport, nginx.port());
      EXPECT_EQ(ev.ep.family, 2);
      const uint8_t loopback[16] = {127, 0, 0, 1};
      EXPECT_EQ(std::memcmp(ev.ep.laddr, loopback, 16), 0) << "local address";
      EXPECT_EQ(std::memcmp(ev.ep.raddr, loopback, 16), 0) << "remote address";
      EXPECT_NE(ev.ep.rport, 0);
      EXPECT_LE(ev.h.ts_enter, ev.h.ts_exit);
      EXPECT_LE(ev.payload_len, static_cast<uint32_t>(ev.bytes));
      pids.insert(ev.h.pid);
      if (ev.syscall == RQ_SYS_SENDFILE) {
        EXPECT_EQ(ev.payload_len, 0u);
        sendfile_bytes += ev.bytes;
      }
    }
  }
  EXPECT_EQ(sendfile_bytes, 100000u);
  EXPECT_FALSE(pids.count(nginx.master_pid()));
  for (uint32_t p : pids)
    EXPECT_NE(std::find(workers.begin(), workers.end(), static_cast<pid_t>(p)), workers.end());
  // 1 keep-alive connection + 11 one-shot ones were closed by the workers. The default build
  // has no record for an accept: a connection opens with its first bytes.
  EXPECT_EQ(collector_.CountConn(RQ_EV_OPEN), 0u);
  EXPECT_EQ(collector_.CountConn(RQ_EV_CLOSE), 12u);
  std::set<std::pair<uint32_t, int32_t>> data_conns;
  for (const auto* evs : {&ingress, &egress})
    for (const auto& ev : *evs) data_conns.insert({ev.h.pid, ev.h.fd});
  for (const auto& c : collector_.Conns(RQ_EV_CLOSE)) {
    EXPECT_EQ(c.ep.lport, nginx.port());
    EXPECT_NE(c.ep.rport, 0);
    EXPECT_TRUE(data_conns.count({c.h.pid, c.h.fd})) << "close of an fd that carried no data";
  }
  EXPECT_EQ(cap->Counters().lost, 0u);

  // Replay: the recorded file gives back the same records, byte for byte.
  collector_.writer.reset();
  std::string err;
  auto rd = CaptureReader::Open((dir_ / "live.rqcap").string(), &err);
  ASSERT_TRUE(rd) << err;
  std::string_view rec;
  size_t i = 0;
  while (rd->Next(&rec)) {
    ASSERT_LT(i, collector_.records.size());
    EXPECT_EQ(rec, collector_.records[i]);
    ++i;
  }
  EXPECT_EQ(i, collector_.records.size());
  EXPECT_EQ(rd->error(), "");
}

// The compat build (for kernels before 6.5) captures the same, byte for byte in the payloads.
TEST_F(LiveCaptureTest, CompatBuildCapturesTheSame) {
  testing::Nginx nginx;
  CaptureConfig cfg;
  cfg.pids = {nginx.master_pid()};
  cfg.force_compat = true;
  auto cap = Attach(cfg);
  if (!cap) GTEST_SKIP() << "BPF not permitted";
  EXPECT_STREQ(cap->variant(), "compat");
  std::vector<std::string> urls;
  for (int i = 0; i < 9; ++i) urls.push_back(nginx.url("/api/compat" + std::to_string(i)));
  ASSERT_EQ(Curl(urls, true), 9);
  ASSERT_EQ(Curl({nginx.url("/big.bin")}, false), 1);
  Drain(cap.get());
  std::string in, out;
  auto ingress = collector_.Data(RQ_DIR_INGRESS, &in);
  collector_.Data(RQ_DIR_EGRESS, &out);
  EXPECT_EQ(CountOccurrences(in, "GET /api/compat"), 9u);
  EXPECT_EQ(CountOccurrences(out, "HTTP/1.1 200 OK"), 10u);
  const uint8_t loopback[16] = {127, 0, 0, 1};
  for (const auto& ev : ingress) {
    EXPECT_EQ(ev.ep.lport, nginx.port());
    EXPECT_EQ(std::memcmp(ev.ep.laddr, loopback, 16), 0);
  }
  EXPECT_EQ(collector_.CountConn(RQ_EV_OPEN), 2u);
}

// TLS in both builds: the plaintext of HTTPS requests and responses arrives as RQ_DATA_TLS records
// with the TLS connection's fd and endpoints; its ciphertext never arrives, only one payload-less
// RQ_DATA_TLS_CIPHER marker per connection; the plain port of the same nginx is unaffected.
void LiveCaptureTest::TlsPlaintextCaptured(bool compat) {
  Collector& collector = collector_;
  testing::Nginx nginx(2, 0, /*tls=*/true);
  CaptureConfig cfg;
  cfg.pids = {nginx.master_pid()};
  cfg.force_compat = compat;
  auto cap = Attach(cfg);
  if (!cap) GTEST_SKIP() << "BPF not permitted";
  EXPECT_STREQ(cap->variant(), compat ? "compat" : "default");
  std::vector<std::string> urls;
  for (int i = 0; i < 7; ++i) urls.push_back(nginx.tls_url("/api/tls" + std::to_string(i)));
  ASSERT_EQ(Curl(urls, true), 7);
  ASSERT_EQ(Curl({nginx.tls_url("/big.bin")}, false), 1);
  ASSERT_EQ(Curl({nginx.url("/api/plain")}, false), 1);
  Drain(cap.get());
  std::string tls_in, tls_out, plain_in;
  uint64_t tls_out_bytes = 0;
  int markers = 0;
  collector.ForEach<rq_data_event>(RQ_EV_DATA, [&](const rq_data_event& ev, const std::string& r) {
    std::string_view payload(r.data() + sizeof(ev), ev.payload_len);
    if (ev.flags & RQ_DATA_TLS_CIPHER) {
      ++markers;
      EXPECT_EQ(ev.payload_len, 0u);
      EXPECT_EQ(ev.ep.lport, nginx.tls_port())
          << "syscall " << int(ev.syscall) << " dir " << int(ev.direction) << " bytes "
          << ev.bytes << " fd " << ev.h.fd << " pid " << ev.h.pid << " rport " << ev.ep.rport
          << " family " << ev.ep.family;
      return;
    }
    if (ev.flags & RQ_DATA_TLS) {
      EXPECT_EQ(ev.ep.lport, nginx.tls_port());
      EXPECT_GE(ev.h.fd, 0);
      EXPECT_EQ(ev.syscall, ev.direction == RQ_DIR_INGRESS ? RQ_SYS_SSL_READ : RQ_SYS_SSL_WRITE);
      (ev.direction == RQ_DIR_INGRESS ? tls_in : tls_out).append(payload).push_back('\x01');
      if (ev.direction == RQ_DIR_EGRESS) tls_out_bytes += ev.bytes;
      return;
    }
    // Plain records: only the plain port's, never TLS ciphertext.
    EXPECT_EQ(ev.ep.lport, nginx.port())
        << "syscall " << int(ev.syscall) << " dir " << int(ev.direction) << " bytes " << ev.bytes
        << " fd " << ev.h.fd << " payload " << payload.substr(0, 16);
    if (ev.direction == RQ_DIR_INGRESS) plain_in.append(payload);
  });
  EXPECT_EQ(CountOccurrences(tls_in, "GET /api/tls"), 7u);
  EXPECT_EQ(CountOccurrences(tls_in, "GET /big.bin"), 1u);
  EXPECT_EQ(CountOccurrences(tls_out, "HTTP/1.1 200 OK"), 8u);
  EXPECT_GT(tls_out_bytes, 100000u);  // the 100 kB body, counted once
  EXPECT_LT(tls_out_bytes, 100000u + 8 * 400);
  EXPECT_EQ(CountOccurrences(plain_in, "GET /api/plain"), 1u);
  EXPECT_EQ(markers, 2);  // one per TLS connection
  EXPECT_EQ(cap->Counters().tls_unbound, 0u);
}

TEST_F(LiveCaptureTest, TlsPlaintextDefaultBuild) { TlsPlaintextCaptured(false); }

TEST_F(LiveCaptureTest, TlsPlaintextCompatBuild) { TlsPlaintextCaptured(true); }

// A connect by the observed process (nginx to its upstream) is a client-side open, with the
// upstream as the remote end; nginx's close of it ends it.
TEST_F(LiveCaptureTest, UpstreamConnectIsAClientOpen) {
  testing::SlowUpstream upstream;
  testing::Nginx nginx(2, upstream.port());
  CaptureConfig cfg;
  cfg.pids = {nginx.master_pid()};
  auto cap = Attach(cfg);
  if (!cap) GTEST_SKIP() << "BPF not permitted";
  ASSERT_EQ(Curl({nginx.url("/slow/1"), nginx.url("/slow/2")}, false), 2);
  Drain(cap.get());
  auto opens = collector_.Conns(RQ_EV_OPEN);
  ASSERT_EQ(opens.size(), 2u);  // nginx opens a new upstream connection per request
  for (const auto& o : opens) {
    EXPECT_EQ(o.role, RQ_ROLE_CLIENT);
    EXPECT_EQ(o.syscall, RQ_SYS_CONNECT);
    EXPECT_EQ(o.ep.rport, upstream.port());
  }
  // The upstream's requests go out of the same (pid, fd) the connect named.
  std::string out;
  size_t on_opened = 0;
  for (const auto& ev : collector_.Data(RQ_DIR_EGRESS, &out))
    for (const auto& o : opens)
      on_opened += ev.h.pid == o.h.pid && ev.h.fd == o.h.fd && ev.ep.rport == upstream.port();
  EXPECT_EQ(on_opened, 2u);
  EXPECT_EQ(cap->Counters().lost, 0u);
}

TEST_F(LiveCaptureTest, NginxWorkersForkedAfterAttachAreFollowed) {
  testing::Nginx nginx;
  CaptureConfig cfg;
  cfg.pids = {nginx.master_pid()};
  auto cap = Attach(cfg);
  if (!cap) GTEST_SKIP() << "BPF not permitted";
  auto before = ProcessTree("/proc", nginx.master_pid());
  // SIGHUP: the master re-reads its config and forks new workers; the old ones exit.
  kill(nginx.master_pid(), SIGHUP);
  std::vector<pid_t> after;
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    after = ProcessTree("/proc", nginx.master_pid());
    bool all_new = after.size() == before.size();
    for (pid_t p : after)
      if (p != nginx.master_pid() && std::count(before.begin(), before.end(), p)) all_new = false;
    if (all_new) break;
  }
  std::vector<std::string> urls;
  for (int i = 0; i < 15; ++i) urls.push_back(nginx.url("/api/new" + std::to_string(i)));
  ASSERT_EQ(Curl(urls, true), 15);
  Drain(cap.get());
  std::string in;
  auto ingress = collector_.Data(RQ_DIR_INGRESS, &in);
  EXPECT_EQ(CountOccurrences(in, "GET /api/new"), 15u);
  for (const auto& ev : ingress)
    EXPECT_EQ(std::count(before.begin(), before.end(), static_cast<pid_t>(ev.h.pid)), 0)
        << "request served by an old worker";
  size_t forks = 0;
  collector_.ForEach<rq_proc_event>(RQ_EV_PROC, [&](const rq_proc_event& pe, const std::string&) {
    if (pe.kind != RQ_PROC_FORK) return;
    EXPECT_EQ(pe.ppid, static_cast<uint32_t>(nginx.master_pid()));
    ++forks;
  });
  EXPECT_GE(forks, 2u);
}

TEST_F(LiveCaptureTest, PythonHttpServer) {
  testing::PythonHttpServer py;
  CaptureConfig cfg;
  cfg.pids = {py.pid()};
  auto cap = Attach(cfg);
  if (!cap) GTEST_SKIP() << "BPF not permitted";
  std::vector<std::string> urls;
  for (int i = 0; i < 12; ++i) urls.push_back(py.url("/index.html?i=" + std::to_string(i)));
  urls.push_back(py.url("/missing"));
  // http.server speaks HTTP/1.0: every request on its own connection either way.
  ASSERT_EQ(Curl(urls, true), 13);
  Drain(cap.get());
  std::string in, out;
  collector_.Data(RQ_DIR_INGRESS, &in);
  collector_.Data(RQ_DIR_EGRESS, &out);
  EXPECT_EQ(CountOccurrences(in, "GET /index.html?i="), 12u);
  EXPECT_EQ(CountOccurrences(in, "GET /missing"), 1u);
  EXPECT_EQ(CountOccurrences(out, "HTTP/1.0 200 OK"), 12u);
  EXPECT_EQ(CountOccurrences(out, "HTTP/1.0 404"), 1u);
  // Each connection ends with the server's shutdown/close; accepts have no record of their own.
  EXPECT_EQ(collector_.CountConn(RQ_EV_CLOSE), 13u);
  EXPECT_EQ(cap->Counters().lost, 0u);
}

TEST_F(LiveCaptureTest, Ipv6EndpointsCarryAllSixteenBytes) {
  // python3 http.server on [::1]; curl to it over IPv6.
  int port = testing::FreePort();
  testing::Process py({"python3", "-m", "http.server", std::to_string(port), "--bind", "::1"});
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    up = testing::Run("curl -s -o /dev/null -w '%{http_code}' 'http://[::1]:" + std::to_string(port) +
                      "/'") == "200";
  }
  ASSERT_TRUE(up) << "python3 http.server on [::1] did not start";
  CaptureConfig cfg;
  cfg.pids = {py.pid()};
  auto cap = Attach(cfg);
  if (!cap) GTEST_SKIP() << "BPF not permitted";
  std::string url = "http://[::1]:" + std::to_string(port) + "/";
  ASSERT_EQ(Curl({url, url, url}, true), 3);
  Drain(cap.get());
  std::string in;
  auto ingress = collector_.Data(RQ_DIR_INGRESS, &in);
  ASSERT_FALSE(ingress.empty());
  const uint8_t v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  for (const auto& ev : ingress) {
    EXPECT_EQ(ev.ep.family, 10);
    EXPECT_EQ(ev.ep.lport, port);
    EXPECT_EQ(std::memcmp(ev.ep.laddr, v6_loopback, 16), 0);
    EXPECT_EQ(std::memcmp(ev.ep.raddr, v6_loopback, 16), 0);
  }
  EXPECT_EQ(CountOccurrences(in, "GET / HTTP/1.1"), 3u);
}

TEST_F(LiveCaptureTest, UnknownPidAndUnusedPortAreClearErrors) {
  CaptureConfig cfg;
  cfg.pids = {999999};
  std::string err;
  EXPECT_FALSE(BpfCapture::Start(cfg, &Collector::OnRecord, &collector_, &err));
  EXPECT_NE(err.find("no process with PID 999999"), std::string::npos) << err;
  CaptureConfig cfg2;
  cfg2.ports = {static_cast<uint16_t>(testing::FreePort())};
  EXPECT_FALSE(BpfCapture::Start(cfg2, &Collector::OnRecord, &collector_, &err));
  EXPECT_NE(err.find("no process is listening on TCP port"), std::string::npos) << err;
}

TEST_F(LiveCaptureTest, PortAndCommSelectTheServer) {
  testing::Nginx nginx;
  CaptureConfig cfg;
  cfg.ports = {static_cast<uint16_t>(nginx.port())};
  auto cap = Attach(cfg);
  if (!cap) GTEST_SKIP() << "BPF not permitted";
  auto targets = cap->TargetPids();
  auto tree = ProcessTree("/proc", nginx.master_pid());
  std::sort(targets.begin(), targets.end());
  EXPECT_EQ(targets, tree);
  ASSERT_EQ(Curl({nginx.url("/api/port1"), nginx.url("/api/port2")}, true), 2);
  Drain(cap.get());
  std::string in;
  collector_.Data(RQ_DIR_INGRESS, &in);
  EXPECT_EQ(CountOccurrences(in, "GET /api/port"), 2u);
}

}  // namespace
}  // namespace reqmon
