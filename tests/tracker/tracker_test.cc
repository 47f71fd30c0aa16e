// SPDX-License-Identifier: MIT
// ConnectionTracker: connection lifecycle, generations, eviction, through DispatchRecord.
#include "reqmon/tracker/connection_tracker.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <string>

#include "event_builder.h"

namespace reqmon::testing {
namespace {

constexpr std::string_view kGet = "GET /api/v1/items?page=2 HTTP/1.1\r\nHost: x\r\n\r\n";
constexpr std::string_view kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";

TEST(TrackerTest, OpenDataCloseEndToEnd) {
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  EXPECT_EQ(h.tracker.counters().connections_open, 1u);
  uint64_t t0 = h.In(kGet);
  uint64_t t1 = h.Out(kOk);
  h.Feed(h.b.Close());
  ASSERT_EQ(h.sink.txs.size(), 1u);
  const HttpTransaction& tx = h.sink.txs[0];
  EXPECT_EQ(tx.method, "GET");
  EXPECT_EQ(tx.path, "/api/v1/items");
  EXPECT_EQ(tx.query, "page=2");
  EXPECT_EQ(tx.status, 200);
  EXPECT_EQ(tx.pid, 4242u);
  EXPECT_EQ(tx.fd, 7);
  EXPECT_EQ(tx.request_start_ns, t0);
  EXPECT_EQ(tx.response_end_ns, t1);
  EXPECT_EQ(tx.request_bytes, kGet.size());
  EXPECT_EQ(tx.response_bytes, kOk.size());
  EXPECT_EQ(tx.ep.lport, 8080);
  EXPECT_EQ(tx.ep.family, 2);
  const TrackerCounters& c = h.tracker.counters();
  EXPECT_EQ(c.connections_open, 0u);
  EXPECT_EQ(c.connections_opened, 1u);
  EXPECT_EQ(c.connections_closed, 1u);
  EXPECT_EQ(c.data_records, 2u);
  EXPECT_EQ(c.data_bytes, kGet.size() + kOk.size());
  EXPECT_EQ(c.http.transactions, 1u);
  EXPECT_EQ(h.tracker.size(), 0u);
}

// A reset closes a TLS socket and the kernel drops its TLS mark; what the server reads after
// that (the rest of a client's close_notify: lighttpd) comes as plain bytes. On a connection
// whose plaintext came from the TLS library they are ciphertext: dropped, never parsed.
TEST(TrackerTest, PlainBytesOnATlsConnectionAreCiphertextNotParsed) {
  Harness h;
  h.b.FlagNext(RQ_DATA_TLS);
  h.In(kGet);
  h.b.FlagNext(RQ_DATA_TLS);
  h.Out(kOk);
  h.In(std::string_view("\x5d\xc1\xc5\x5d\x20\xd1\xa9\x59\x20\xb5\x57\x1f\x00\x99", 14));
  h.Feed(h.b.Close());
  ASSERT_EQ(h.sink.txs.size(), 1u);
  EXPECT_FALSE(h.sink.txs[0].incomplete);
  const TrackerCounters& c = h.tracker.counters();
  EXPECT_EQ(c.tls_ciphertext_dropped, 1u);
  EXPECT_EQ(c.http.unparsed_bytes, 0u);
  EXPECT_EQ(c.http.transactions, 1u);
  // The same bytes on a plain connection are what they are: unparsed.
  Harness plain;
  plain.In(kGet);
  plain.Out(kOk);
  plain.In(std::string_view("\x5d\xc1\xc5\x5d\x20\xd1\xa9\x59\x20\xb5\x57\x1f\x00\x99", 14));
  plain.Feed(plain.b.Close());
  EXPECT_EQ(plain.tracker.counters().tls_ciphertext_dropped, 0u);
  EXPECT_GT(plain.tracker.counters().http.unparsed_bytes, 0u);
}

TEST(TrackerTest, CloseWithUnansweredRequestsReportsIncomplete) {
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
  h.Out("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(h.sink.txs.size(), 1u);
  h.Feed(h.b.Close());
  ASSERT_EQ(h.sink.txs.size(), 2u);
  EXPECT_EQ(h.sink.txs[1].path, "/b");
  EXPECT_TRUE(h.sink.txs[1].incomplete);
  EXPECT_EQ(h.sink.txs[1].status, 0);
  EXPECT_EQ(h.http().incomplete, 1u);
}

TEST(TrackerTest, FdReuseStartsACleanGeneration) {
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In("GET /old HTTP/1.1\r\n\r\n");
  h.In("POST /half HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc");  // half a request
  // The fd is closed without us seeing it (lost record) and reused by a new accept.
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  ASSERT_EQ(h.sink.txs.size(), 2u);
  EXPECT_EQ(h.sink.txs[0].path, "/old");
  EXPECT_TRUE(h.sink.txs[0].incomplete);
  EXPECT_TRUE(h.sink.txs[1].incomplete);
  const uint64_t old_id = h.sink.txs[0].connection_id;
  // The new connection parses from a clean state: no leftover body bytes expected.
  h.In(kGet);
  h.Out(kOk);
  ASSERT_EQ(h.sink.txs.size(), 3u);
  EXPECT_EQ(h.sink.txs[2].status, 200);
  EXPECT_FALSE(h.sink.txs[2].incomplete);
  EXPECT_NE(h.sink.txs[2].connection_id, old_id);
  EXPECT_EQ(h.tracker.counters().connections_open, 1u);
  EXPECT_EQ(h.tracker.counters().connections_opened, 2u);
  EXPECT_EQ(h.http().unparsed_bytes, 0u);
}

// The default build sees no accept: a reused fd is told apart by its new peer.
TEST(TrackerTest, ReusedFdWithAnotherPeerStartsANewConnection) {
  Harness h;
  h.In("GET /old HTTP/1.1\r\n\r\n");  // answered never: its connection ends unseen
  h.b.ep().rport = 51999;                // the next accept got the same fd
  h.In(kGet);
  h.Out(kOk);
  ASSERT_EQ(h.sink.txs.size(), 2u);
  EXPECT_EQ(h.sink.txs[0].path, "/old");
  EXPECT_TRUE(h.sink.txs[0].incomplete);
  EXPECT_EQ(h.sink.txs[1].status, 200);
  EXPECT_FALSE(h.sink.txs[1].incomplete);
  EXPECT_NE(h.sink.txs[1].connection_id, h.sink.txs[0].connection_id);
  EXPECT_EQ(h.tracker.counters().connections_opened, 2u);
  EXPECT_EQ(h.tracker.counters().connections_closed, 1u);
  EXPECT_EQ(h.tracker.counters().connections_open, 1u);
}

// A close record that names other endpoints than the fd's connection (a state change seen in
// the wrong context) leaves the connection alone; one with the same endpoints ends it.
TEST(TrackerTest, CloseOfOtherEndpointsIsIgnored) {
  Harness h;
  h.In(kGet);
  rq_endpoints mine = h.b.ep();
  h.b.ep().raddr[3] = 77;
  h.Feed(h.b.Close());
  EXPECT_EQ(h.tracker.counters().connections_open, 1u);
  h.b.ep() = mine;
  h.Out(kOk);
  ASSERT_EQ(h.sink.txs.size(), 1u);
  EXPECT_FALSE(h.sink.txs[0].incomplete);
  h.Feed(h.b.Close());
  EXPECT_EQ(h.tracker.counters().connections_open, 0u);
  EXPECT_EQ(h.tracker.counters().connections_closed, 1u);
}

// A connect is seen before its local port is chosen: the port filled in later is the same
// connection, not a reuse.
TEST(TrackerTest, ConnectBeforeItsPortIsBoundIsOneConnection) {
  Harness h;
  const uint16_t port = h.b.ep().lport;
  h.b.ep().lport = 0;
  h.Feed(h.b.Open(RQ_ROLE_CLIENT));
  h.b.ep().lport = port;
  h.Out("GET /up HTTP/1.1\r\n\r\n");
  h.In("HTTP/1.1 204 No Content\r\n\r\n");
  EXPECT_EQ(h.tracker.counters().connections_opened, 1u);
  EXPECT_EQ(h.tracker.counters().connections_closed, 0u);
  h.b.ep().lport = port + 1;  // now a different local port is another connection
  h.Out("GET /up HTTP/1.1\r\n\r\n");
  EXPECT_EQ(h.tracker.counters().connections_opened, 2u);
}

TEST(TrackerTest, CloseThenReuseAfterClose) {
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In(kGet);
  h.Out(kOk);
  h.Feed(h.b.Close());
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In(kGet);
  h.Out(kOk);
  ASSERT_EQ(h.sink.txs.size(), 2u);
  EXPECT_NE(h.sink.txs[0].connection_id, h.sink.txs[1].connection_id);
}

TEST(TrackerTest, CloseOfUnknownConnectionIsIgnored) {
  Harness h;
  h.Feed(h.b.Close());
  EXPECT_EQ(h.tracker.counters().connections_closed, 0u);
  EXPECT_TRUE(h.sink.txs.empty());
}

TEST(TrackerTest, DataWithoutOpenAttachesMidConnection) {
  Harness h;
  h.Out("tail of some response body");
  EXPECT_EQ(h.tracker.counters().connections_open, 1u);
  h.In(kGet);
  h.Out(kOk);
  ASSERT_EQ(h.sink.txs.size(), 1u);
  EXPECT_EQ(h.sink.txs[0].status, 200);
  EXPECT_EQ(h.http().unparsed_bytes, 26u);
}

// A role byte that is no role (a corrupt capture file; found by tests/fuzz/fuzz_capture.cc) is
// an unknown role, inferred from the bytes: before, it was cast to rq_role (undefined behaviour)
// and the transaction carried it.
TEST(TrackerTest, RoleByteThatIsNoRoleIsUnknown) {
  for (uint8_t bad : {3, 50, 255}) {
    Harness h;
    Record open = h.b.Open(RQ_ROLE_SERVER);
    open[offsetof(rq_conn_event, role)] = bad;
    h.Feed(open);
    h.In(kGet);
    h.Out(kOk);
    h.b.set_fd(8);  // a connection found open: the role comes from its first data record
    Record in = h.b.In(kGet);
    in[offsetof(rq_data_event, role)] = bad;
    h.Feed(in);
    h.Out(kOk);
    ASSERT_EQ(h.sink.txs.size(), 2u) << int(bad);
    for (const HttpTransaction& tx : h.sink.txs) {
      EXPECT_EQ(tx.role, RQ_ROLE_SERVER) << int(bad);
      EXPECT_EQ(tx.status, 200);
    }
  }
}

TEST(TrackerTest, ProcessExitDropsItsConnectionsOnly) {
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In(kGet);
  h.b.set_fd(8);
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In(kGet);
  h.b.set_pid(999);
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In(kGet);
  EXPECT_EQ(h.tracker.size(), 3u);
  h.b.set_pid(4242);
  h.Feed(h.b.Proc(RQ_PROC_FORK));  // not an exit: nothing happens
  EXPECT_EQ(h.tracker.size(), 3u);
  h.Feed(h.b.Proc(RQ_PROC_EXIT));
  EXPECT_EQ(h.tracker.size(), 1u);
  ASSERT_EQ(h.sink.txs.size(), 2u);
  for (const HttpTransaction& tx : h.sink.txs) {
    EXPECT_EQ(tx.pid, 4242u);
    EXPECT_TRUE(tx.incomplete);
  }
  // pid 999 is untouched and still parses.
  h.b.set_pid(999);
  h.Out(kOk);
  ASSERT_EQ(h.sink.txs.size(), 3u);
  EXPECT_EQ(h.sink.txs[2].pid, 999u);
  EXPECT_EQ(h.sink.txs[2].status, 200);
}

TEST(TrackerTest, EvictsLeastRecentlyUsed) {
  TrackerConfig cfg;
  cfg.max_connections = 3;
  Harness h(cfg);
  for (int fd = 1; fd <= 3; ++fd) {
    h.b.set_fd(fd);
    h.Feed(h.b.Open(RQ_ROLE_SERVER));
    h.In("GET /fd" + std::to_string(fd) + " HTTP/1.1\r\n\r\n");
  }
  h.b.set_fd(1);
  h.In("");  // touch fd 1: fd 2 is now the least recently used
  h.b.set_fd(4);
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  EXPECT_EQ(h.tracker.size(), 3u);
  EXPECT_EQ(h.tracker.counters().connections_evicted, 1u);
  ASSERT_EQ(h.sink.txs.size(), 1u);
  EXPECT_EQ(h.sink.txs[0].path, "/fd2");
  EXPECT_TRUE(h.sink.txs[0].incomplete);
  // fd 1 and 3 still answer.
  for (int fd : {1, 3}) {
    h.b.set_fd(fd);
    h.Out(kOk);
  }
  ASSERT_EQ(h.sink.txs.size(), 3u);
  EXPECT_EQ(h.sink.txs[1].path, "/fd1");
  EXPECT_EQ(h.sink.txs[2].path, "/fd3");
  h.tracker.FinishAll();
  EXPECT_EQ(h.tracker.size(), 0u);
  EXPECT_EQ(h.tracker.counters().connections_open, 0u);
}

TEST(TrackerTest, ManyConnectionsInterleaved) {
  Harness h;
  const int kConns = 500;
  for (int fd = 0; fd < kConns; ++fd) {
    h.b.set_fd(fd);
    h.Feed(h.b.Open(RQ_ROLE_SERVER));
  }
  for (int round = 0; round < 3; ++round) {
    for (int fd = 0; fd < kConns; ++fd) {
      h.b.set_fd(fd);
      h.In("GET /c/" + std::to_string(fd) + " HTTP/1.1\r\n\r\n");
    }
    for (int fd = kConns - 1; fd >= 0; --fd) {
      h.b.set_fd(fd);
      h.Out(kOk);
    }
  }
  ASSERT_EQ(h.sink.txs.size(), 3u * kConns);
  for (const HttpTransaction& tx : h.sink.txs) {
    EXPECT_EQ(tx.path, "/c/" + std::to_string(tx.fd));
    EXPECT_EQ(tx.status, 200);
  }
}

TEST(TrackerTest, ClientConnectionsCountedNotParsedByDefault) {
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_CLIENT));
  h.Out(kGet);
  h.In(kOk);
  h.Feed(h.b.Close());
  EXPECT_TRUE(h.sink.txs.empty());
  EXPECT_EQ(h.http().client_bytes, kGet.size() + kOk.size());

  TrackerConfig cfg;
  cfg.parse_client_connections = true;
  Harness c(cfg);
  c.Feed(c.b.Open(RQ_ROLE_CLIENT));
  c.Out(kGet);
  c.In(kOk);
  ASSERT_EQ(c.sink.txs.size(), 1u);
  EXPECT_EQ(c.sink.txs[0].role, RQ_ROLE_CLIENT);
  EXPECT_EQ(c.sink.txs[0].status, 200);
}

TEST(TrackerTest, SendfileThroughDispatch) {
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In("GET /video HTTP/1.1\r\n\r\n");
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 7340032\r\n\r\n";
  h.Out(head);
  h.Feed(h.b.Sendfile(7340032));
  uint64_t t = h.b.last_exit();
  ASSERT_EQ(h.sink.txs.size(), 1u);
  EXPECT_EQ(h.sink.txs[0].response_bytes, head.size() + 7340032);
  EXPECT_EQ(h.sink.txs[0].response_end_ns, t);
  EXPECT_EQ(h.http().unparsed_bytes, 0u);
}

TEST(TrackerTest, PayloadPrefixTruncatedByKernel) {
  // The kernel copies only RQ_DEFAULT_PAYLOAD bytes of a 10000-byte write.
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In(kGet);
  std::string body(10000 - 41, 'b');  // 41: the head below
  std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\n\r\n" + body;
  ASSERT_EQ(resp.size(), 10000u);
  h.Out(std::string_view(resp).substr(0, RQ_DEFAULT_PAYLOAD), resp.size());
  h.In(kGet);
  h.Out(kOk);
  ASSERT_EQ(h.sink.txs.size(), 2u);
  EXPECT_EQ(h.sink.txs[0].response_bytes, 10000u);
  EXPECT_EQ(h.sink.txs[1].status, 200);
}

}  // namespace
}  // namespace reqmon::testing

namespace reqmon {
namespace {

// Compact() gives back the state of closed connections and the tracker keeps working after.
TEST(TrackerCompactTest, ReleasesClosedConnectionsAndReusesTheirSlots) {
  struct Count : TransactionSink {
    int n = 0;
    void OnTransaction(const HttpTransaction&) override { ++n; }
  } sink;
  ConnectionTracker t(sink);
  auto open = [&](int fd) {
    rq_conn_event ev{};
    ev.h.type = RQ_EV_OPEN;
    ev.h.pid = 7;
    ev.h.fd = fd;
    ev.role = RQ_ROLE_SERVER;
    t.OnConn(ev);
  };
  auto close = [&](int fd) {
    rq_conn_event ev{};
    ev.h.type = RQ_EV_CLOSE;
    ev.h.pid = 7;
    ev.h.fd = fd;
    t.OnConn(ev);
  };
  for (int fd = 0; fd < 1000; ++fd) open(fd);
  EXPECT_EQ(t.size(), 1000u);
  EXPECT_EQ(t.Compact(10), 0u);  // nothing closed yet
  for (int fd = 0; fd < 1000; ++fd) close(fd);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.Compact(10), 990u);
  EXPECT_EQ(t.Compact(10), 0u);
  for (int fd = 0; fd < 1200; ++fd) open(fd);  // reuses kept, released and new slots
  EXPECT_EQ(t.size(), 1200u);
  for (int fd = 0; fd < 1200; ++fd) close(fd);
  EXPECT_EQ(t.counters().connections_closed, 2200u);
}

}  // namespace
}  // namespace reqmon

namespace reqmon::testing {
namespace {

// Queue time (issue #14): from when the request's first bytes were queued to its first read;
// the serving time (response_ns) is unchanged; a request whose record carries no arrival has
// none; a request read in two parts takes its first part's.
TEST(TrackerTest, QueueTimeComesFromTheRequestsFirstRecord) {
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.b.QueuedFor(700'000);
  const uint64_t t0 = h.In(kGet);
  const uint64_t t1 = h.Out(kOk);
  h.In(kGet);  // no arrival known
  h.Out(kOk);
  h.b.QueuedFor(200'000);
  h.In("GET /a HTTP/1.1\r\n");
  h.In("Host: x\r\n\r\n");
  h.Out(kOk);
  h.Feed(h.b.Close());
  ASSERT_EQ(h.sink.txs.size(), 3u);
  EXPECT_EQ(h.sink.txs[0].queue_ns, 700'000u);
  EXPECT_EQ(h.sink.txs[0].response_ns(), t1 - t0);
  EXPECT_EQ(h.sink.txs[1].queue_ns, 0u);
  EXPECT_EQ(h.sink.txs[2].queue_ns, 200'000u);
}

}  // namespace
}  // namespace reqmon::testing
