// SPDX-License-Identifier: MIT
// HTTP/2 reconstruction from byte constants, through the real tracker (records built as the
// kernel writes them): framing, splits at every offset, CONTINUATION, padding, RST_STREAM,
// GOAWAY, interleaved streams, gaps (DATA skipped exactly; a header block lost resets HPACK),
// connections caught mid-way, h2c upgrade, gRPC.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "../tracker/event_builder.h"
#include "http2_test_util.h"

namespace reqmon {
namespace {

using testing::Harness;
namespace h2 = testing::h2;

std::map<uint32_t, const HttpTransaction*> ByStream(const std::vector<HttpTransaction>& txs) {
  std::map<uint32_t, const HttpTransaction*> m;
  for (const auto& t : txs) m[t.stream_id] = &t;
  return m;
}

TEST(Http2, PrefaceThenOneExchange) {
  Harness h;
  h2::Encoder req, resp;
  const std::string hb = req.Headers(1, h2::Get("/api/users/42?x=1"), true);
  const uint64_t t0 = h.In(h2::ClientStart() + hb);
  h.Out(h2::ServerStart());
  const std::string rh = resp.Headers(1, h2::Status(200), false);
  const std::string body = h2::Data(1, "hello", true);
  const uint64_t t1 = h.Out(rh + body);
  ASSERT_EQ(h.sink.txs.size(), 1u);
  const HttpTransaction& t = h.sink.txs[0];
  EXPECT_EQ(t.protocol, HttpProtocol::kHttp2);
  EXPECT_EQ(t.stream_id, 1u);
  EXPECT_EQ(t.method, "GET");
  EXPECT_EQ(t.path, "/api/users/42");
  EXPECT_EQ(t.query, "x=1");
  EXPECT_EQ(t.status, 200);
  EXPECT_FALSE(t.incomplete);
  EXPECT_FALSE(t.headers_unknown);
  EXPECT_FALSE(t.is_grpc);
  EXPECT_EQ(t.request_start_ns, t0);
  EXPECT_EQ(t.response_end_ns, t1);
  EXPECT_EQ(t.request_bytes, hb.size());
  EXPECT_EQ(t.response_bytes, rh.size() + body.size());
  EXPECT_EQ(t.role, RQ_ROLE_SERVER);
  EXPECT_EQ(h.tracker.counters().http2.via_preface, 1u);
  EXPECT_EQ(h.http().unparsed_bytes, 0u);
}

// Ten streams interleaved both ways (responses in reverse order, bodies split into frames, the
// dynamic table in use), fed cut into two records at every offset of each direction.
struct Conversation {
  std::string in, out;
  std::map<uint32_t, std::pair<std::string, int>> want;  // stream -> path, status
};

Conversation Interleaved(int n) {
  Conversation c;
  h2::Encoder req, resp;
  c.in = h2::ClientStart();
  for (int i = 0; i < n; ++i) {
    const uint32_t sid = 1 + 2 * i;
    const std::string path = "/items/" + std::to_string(i);
    c.in += req.Headers(sid, h2::Get(path), true);
    c.want[sid] = {path, i % 3 == 0 ? 404 : 200};
  }
  c.out = h2::ServerStart();
  for (int i = n - 1; i >= 0; --i) {
    const uint32_t sid = 1 + 2 * i;
    c.out += resp.Headers(sid, h2::Status(c.want[sid].second), false);
    c.out += h2::Data(sid, std::string(10 + i, 'a'), false);
  }
  for (int i = 0; i < n; ++i) c.out += h2::Data(1 + 2 * i, "end", true);
  return c;
}

void ExpectConversation(const Harness& h, const Conversation& c, const std::string& what) {
  ASSERT_EQ(h.sink.txs.size(), c.want.size()) << what;
  auto m = ByStream(h.sink.txs);
  for (const auto& [sid, w] : c.want) {
    ASSERT_TRUE(m.count(sid)) << what << " stream " << sid;
    EXPECT_EQ(m[sid]->path, w.first) << what;
    EXPECT_EQ(m[sid]->status, w.second) << what;
    EXPECT_EQ(m[sid]->method, "GET") << what;
    EXPECT_FALSE(m[sid]->incomplete) << what;
  }
  EXPECT_EQ(h.http().unparsed_bytes, 0u) << what;
  EXPECT_EQ(h.tracker.counters().http2.hpack_errors, 0u) << what;
}

TEST(Http2, InterleavedStreamsSplitAtEveryOffset) {
  const Conversation c = Interleaved(10);
  {
    Harness h;
    h.In(c.in);
    h.Out(c.out);
    ExpectConversation(h, c, "whole");
  }
  // The first record must hold at least "PRI " to be told from the start of POST/PUT/PATCH.
  for (size_t k = 4; k < c.in.size(); ++k) {
    Harness h;
    h.In(c.in.substr(0, k));
    h.In(c.in.substr(k));
    h.Out(c.out);
    ExpectConversation(h, c, "ingress cut at " + std::to_string(k));
  }
  for (size_t k = 1; k < c.out.size(); ++k) {
    Harness h;
    h.In(c.in);
    h.Out(c.out.substr(0, k));
    h.Out(c.out.substr(k));
    ExpectConversation(h, c, "egress cut at " + std::to_string(k));
  }
}

TEST(Http2, RandomCutsIntoManyRecords) {
  const Conversation c = Interleaved(25);
  std::mt19937 rng(11);
  for (int round = 0; round < 50; ++round) {
    Harness h;
    size_t i = 0, o = 0;
    while (i < c.in.size() || o < c.out.size()) {
      // Requests go first so that every response has its request.
      if (i < c.in.size()) {
        size_t n = std::min<size_t>(c.in.size() - i, 1 + rng() % 40);
        if (i == 0) n = std::max<size_t>(n, 4);  // "PRI " at least (see above)
        h.In(c.in.substr(i, n));
        i += n;
      } else {
        const size_t n = std::min<size_t>(c.out.size() - o, 1 + rng() % 40);
        h.Out(c.out.substr(o, n));
        o += n;
      }
    }
    ExpectConversation(h, c, "round " + std::to_string(round));
  }
}

TEST(Http2, ContinuationPaddingAndPriority) {
  Harness h;
  h2::Encoder req, resp;
  const std::string block = req.Block(h2::Get("/continued/path"));
  ASSERT_GT(block.size(), 6u);
  // HEADERS: PADDED (3 bytes of padding) + PRIORITY, first 5 bytes of the block; then two
  // CONTINUATIONs.
  std::string hp = std::string("\x03", 1) + h2::Be32(0) + std::string("\x10", 1) + block.substr(0, 5) +
                   std::string(3, '\0');
  std::string in = h2::ClientStart() +
                   h2::Frame(h2::HEADERS, h2::PADDED | h2::PRIORITY_FLAG | h2::END_STREAM, 1, hp) +
                   h2::Frame(h2::CONTINUATION, 0, 1, block.substr(5, 3)) +
                   h2::Frame(h2::CONTINUATION, h2::END_HEADERS, 1, block.substr(8));
  h.In(in);
  // A padded DATA frame ends the response.
  std::string padded = std::string("\x04", 1) + "body" + std::string(4, '\0');
  h.Out(h2::ServerStart() + resp.Headers(1, h2::Status(201), false) +
        h2::Frame(h2::DATA, h2::PADDED | h2::END_STREAM, 1, padded));
  ASSERT_EQ(h.sink.txs.size(), 1u);
  EXPECT_EQ(h.sink.txs[0].path, "/continued/path");
  EXPECT_EQ(h.sink.txs[0].status, 201);
  EXPECT_EQ(h.tracker.counters().http2.hpack_errors, 0u);
}

TEST(Http2, RstStreamEndsTheStreamIncomplete) {
  Harness h;
  h2::Encoder req, resp;
  std::string in = h2::ClientStart();
  in += req.Headers(1, h2::Get("/a"), true);  // one statement each: the encoder's order matters
  in += req.Headers(3, h2::Get("/b"), true);
  h.In(in);
  h.Out(h2::ServerStart() + resp.Headers(1, h2::Status(200), true));
  h.In(h2::Rst(3));  // the client cancels /b
  ASSERT_EQ(h.sink.txs.size(), 2u);
  EXPECT_EQ(h.sink.txs[0].path, "/a");
  EXPECT_FALSE(h.sink.txs[0].incomplete);
  EXPECT_EQ(h.sink.txs[1].path, "/b");
  EXPECT_TRUE(h.sink.txs[1].incomplete);
  EXPECT_EQ(h.sink.txs[1].status, 0);
  EXPECT_EQ(h.tracker.counters().http2.rst_streams, 1u);
  EXPECT_EQ(h.http().incomplete, 1u);
}

TEST(Http2, GoawayRefusesLaterStreamsAndCloseEndsTheRest) {
  Harness h;
  h2::Encoder req, resp;
  std::string in = h2::ClientStart();
  for (uint32_t sid : {1u, 3u, 5u}) in += req.Headers(sid, h2::Get("/" + std::to_string(sid)), true);
  h.In(in);
  h.Out(h2::ServerStart() + h2::Frame(h2::GOAWAY, 0, 0, h2::Be32(3) + h2::Be32(0)));
  ASSERT_EQ(h.sink.txs.size(), 1u);
  EXPECT_EQ(h.sink.txs[0].path, "/5");
  EXPECT_TRUE(h.sink.txs[0].incomplete);
  h.Out(resp.Headers(1, h2::Status(200), true));
  h.Feed(h.b.Close());
  ASSERT_EQ(h.sink.txs.size(), 3u);
  EXPECT_EQ(h.sink.txs[1].path, "/1");
  EXPECT_EQ(h.sink.txs[1].status, 200);
  EXPECT_EQ(h.sink.txs[2].path, "/3");
  EXPECT_TRUE(h.sink.txs[2].incomplete);
  EXPECT_EQ(h.tracker.counters().http2.refused_streams, 1u);
}

TEST(Http2, GapInsideDataIsSkippedExactly) {
  Harness h;
  h2::Encoder req, resp;
  std::string in = h2::ClientStart();
  in += req.Headers(1, h2::Get("/big"), true);
  in += req.Headers(3, h2::Get("/small"), true);
  h.In(in);
  const std::string head = h2::ServerStart() + resp.Headers(1, h2::Status(200), false);
  const std::string big = h2::Data(1, std::string(16000, 'x'), true);
  // Only the first 100 bytes of the big DATA frame were captured; the record had all of it.
  const std::string captured = head + big.substr(0, 100);
  const uint64_t t_big = h.Out(captured, static_cast<int64_t>(head.size() + big.size()));
  const std::string small = resp.Headers(3, h2::Status(404), true);
  h.Out(small);
  ASSERT_EQ(h.sink.txs.size(), 2u);
  EXPECT_EQ(h.sink.txs[0].path, "/big");
  EXPECT_EQ(h.sink.txs[0].status, 200);
  EXPECT_EQ(h.sink.txs[0].response_end_ns, t_big);
  EXPECT_EQ(h.sink.txs[0].response_bytes, head.size() - h2::ServerStart().size() + big.size());
  EXPECT_EQ(h.sink.txs[1].path, "/small");
  EXPECT_EQ(h.sink.txs[1].status, 404);
  EXPECT_EQ(h.tracker.counters().http2.gap_bytes_skipped, big.size() - 100);
  EXPECT_EQ(h.http().unparsed_bytes, 0u);
}

// A request header block that was not fully captured breaks the request direction's table: the
// stream is counted with an unknown path, the inflater is reset, later blocks that reference
// entries from before are reported unknown, and blocks that do not decode exactly. No path is
// ever invented.
TEST(Http2, GapInHeaderBlockResetsHpackAndCountsHonestly) {
  using namespace h2;
  Harness h;
  h.In(ClientStart());
  // Stream 1: :path /secret/1 and x-tenant: acme, both added to the table (entries 63, 62).
  std::string b1 = Indexed(2) + Indexed(6) + LitInc(4, "/secret/1") + LitIncNew("x-tenant", "acme");
  std::string f1 = Frame(HEADERS, END_HEADERS | END_STREAM, 1, b1);
  h.In(f1.substr(0, 9 + 4), static_cast<int64_t>(f1.size()));  // the block's tail not captured
  // Stream 3 refers to both old entries (:path /secret/1 = 63, x-tenant = 62): unknown.
  h.In(Frame(HEADERS, END_HEADERS | END_STREAM, 3, Indexed(2) + Indexed(6) + Indexed(63) + Indexed(62)));
  // Stream 5 adds a new :path (now entry 62): decodable; stream 7 refers to it: decodable.
  h.In(Frame(HEADERS, END_HEADERS | END_STREAM, 5, Indexed(2) + LitInc(4, "/public/5")));
  h.In(Frame(HEADERS, END_HEADERS | END_STREAM, 7, Indexed(3) + Indexed(62)));
  // Stream 9 refers to index 64: the old :path /secret/1 after the shift. Unknown.
  h.In(Frame(HEADERS, END_HEADERS | END_STREAM, 9, Indexed(2) + Indexed(64)));
  Encoder resp;
  h.Out(ServerStart());
  for (uint32_t sid : {1u, 3u, 5u, 7u, 9u}) h.Out(resp.Headers(sid, Status(200), true));
  ASSERT_EQ(h.sink.txs.size(), 5u);
  auto m = ByStream(h.sink.txs);
  EXPECT_EQ(m[1]->path, "(unknown)");
  EXPECT_TRUE(m[1]->headers_unknown);
  EXPECT_EQ(m[3]->path, "(unknown)");
  EXPECT_EQ(m[3]->method, "GET");
  EXPECT_EQ(m[5]->path, "/public/5");
  EXPECT_EQ(m[7]->path, "/public/5");
  EXPECT_EQ(m[7]->method, "POST");
  EXPECT_FALSE(m[7]->headers_unknown);
  EXPECT_EQ(m[9]->path, "(unknown)");
  for (const auto& t : h.sink.txs) EXPECT_EQ(t.status, 200);
  const Http2Counters& c = h.tracker.counters().http2;
  EXPECT_EQ(c.hpack_resets, 1u);
  EXPECT_EQ(c.unknown_paths, 3u);
  EXPECT_EQ(c.hpack_errors, 0u);
  EXPECT_GE(c.undecoded_fields, 3u);
}

// A connection that was open before attach: no preface, role unknown, both tables unknown.
// Requests are counted; every reported path is the true one or "(unknown)".
TEST(Http2, CaughtMidConnectionCountsWithoutInventing) {
  using namespace h2;
  Encoder req, resp;
  std::map<uint32_t, std::string> truth;
  // Before attach: 20 exchanges warm both tables (not fed).
  for (uint32_t i = 0; i < 20; ++i) {
    req.Headers(1 + 2 * i, Get("/warm/" + std::to_string(i % 4)), true);
    resp.Headers(1 + 2 * i, Status(200), true);
  }
  Harness h;
  std::string in, out;
  for (uint32_t i = 20; i < 40; ++i) {
    const uint32_t sid = 1 + 2 * i;
    truth[sid] = "/warm/" + std::to_string(i % 4);
    in += req.Headers(sid, Get(truth[sid]), true);
  }
  for (uint32_t i = 20; i < 40; ++i) out += resp.Headers(1 + 2 * i, Status(i % 5 == 0 ? 500 : 200), true);
  h.In(in);
  h.Out(out);
  ASSERT_EQ(h.sink.txs.size(), 20u);
  for (const auto& t : h.sink.txs) {
    EXPECT_TRUE(t.path == truth[t.stream_id] || t.path == "(unknown)") << t.path;
    EXPECT_TRUE(t.method == "GET" || t.method == "(unknown)") << t.method;
    const uint32_t i = (t.stream_id - 1) / 2;
    EXPECT_EQ(t.status, i % 5 == 0 ? 500 : 200);
    EXPECT_EQ(t.protocol, HttpProtocol::kHttp2);
  }
  EXPECT_EQ(h.tracker.counters().http2.midstream, 1u);
  EXPECT_EQ(h.tracker.counters().http2.hpack_errors, 0u);
}

// Caught mid-connection: references to entries from before attach stay unknown until the
// entries added since have filled the table (4096 bytes); from then on every index is known.
TEST(Http2, UnknownTableBecomesExactOnceRefilled) {
  using namespace h2;
  Harness h;
  Encoder resp;
  uint32_t sid = 101;
  auto request = [&](const std::string& block) {
    h.In(Frame(HEADERS, END_HEADERS | END_STREAM, sid, block));
    h.Out(resp.Headers(sid, Status(200), true));
    sid += 2;
  };
  request(Indexed(2) + Indexed(70));  // :path from before attach
  // New entries: :path /refilled (32 + 5 + 9 = 46 bytes) and 27 of 32 + 8 + 110 = 150 bytes:
  // 4096 in all, more than 4096 - 32, so every entry from before attach has been evicted.
  std::string fill = Indexed(2) + LitInc(4, "/refilled");
  for (int i = 0; i < 27; ++i) fill += LitIncNew("x-fill" + std::to_string(i % 10) + "x", std::string(110, 'a' + i % 26));
  request(fill);
  request(Indexed(2) + Indexed(61 + 28));  // the oldest of the new entries: /refilled
  ASSERT_EQ(h.sink.txs.size(), 3u);
  EXPECT_EQ(h.sink.txs[0].path, "(unknown)");
  EXPECT_EQ(h.sink.txs[1].path, "/refilled");
  EXPECT_EQ(h.sink.txs[2].path, "/refilled");
  EXPECT_FALSE(h.sink.txs[2].headers_unknown);
  EXPECT_EQ(h.tracker.counters().http2.hpack_errors, 0u);
}

TEST(Http2, MidConnectionRecordStartingInsideAFrameWaitsForABoundary) {
  using namespace h2;
  Encoder req, resp;
  Harness h;
  const std::string data = Data(1, std::string(300, 'z'), false);
  h.In(data.substr(50));  // the tail of a DATA frame: not recognisable, counted unparsed
  EXPECT_EQ(h.sink.txs.size(), 0u);
  h.In(req.Headers(3, Get("/x"), true));
  h.Out(resp.Headers(3, Status(204), true));
  ASSERT_EQ(h.sink.txs.size(), 1u);
  EXPECT_EQ(h.sink.txs[0].status, 204);
  EXPECT_GT(h.http().unparsed_bytes, 0u);
}

// Servers such as nghttpd and gRPC's send their SETTINGS as soon as they accept, before the
// client's preface is read: a new connection all the same, decoded exactly.
TEST(Http2, ServerThatSpeaksFirstIsANewConnection) {
  Harness h;  // no open event: the default build does not report accepts
  h2::Encoder req, resp;
  h.Out(h2::ServerStart());
  std::string in = h2::ClientStart();
  in += req.Headers(1, h2::Get("/first"), true);
  h.In(in);
  h.Out(resp.Headers(1, h2::Status(200), true));
  ASSERT_EQ(h.sink.txs.size(), 1u);
  EXPECT_EQ(h.sink.txs[0].path, "/first");
  EXPECT_FALSE(h.sink.txs[0].headers_unknown);
  EXPECT_EQ(h.tracker.counters().http2.via_preface, 1u);
  EXPECT_EQ(h.tracker.counters().http2.midstream, 0u);
}

TEST(Http2, UpgradeH2cTurnsTheFirstRequestIntoStream1) {
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  const std::string up =
      "GET /upgraded?q=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
      "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n";
  const uint64_t t0 = h.In(up);
  h2::Encoder resp, req;
  const std::string sw = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
  h.Out(sw + h2::ServerStart());
  h.In(h2::ClientStart());
  const uint64_t t1 = h.Out(resp.Headers(1, h2::Status(200), false) + h2::Data(1, "ok", true));
  h.In(req.Headers(3, h2::Get("/second"), true));
  h.Out(resp.Headers(3, h2::Status(404), true));
  ASSERT_EQ(h.sink.txs.size(), 2u);
  EXPECT_EQ(h.sink.txs[0].stream_id, 1u);
  EXPECT_EQ(h.sink.txs[0].method, "GET");
  EXPECT_EQ(h.sink.txs[0].path, "/upgraded");
  EXPECT_EQ(h.sink.txs[0].query, "q=1");
  EXPECT_EQ(h.sink.txs[0].status, 200);
  EXPECT_EQ(h.sink.txs[0].protocol, HttpProtocol::kHttp2);
  EXPECT_EQ(h.sink.txs[0].request_start_ns, t0);
  EXPECT_EQ(h.sink.txs[0].response_end_ns, t1);
  EXPECT_EQ(h.sink.txs[0].request_bytes, up.size());
  EXPECT_EQ(h.sink.txs[1].path, "/second");
  EXPECT_EQ(h.sink.txs[1].status, 404);
  EXPECT_EQ(h.tracker.counters().http2.via_upgrade, 1u);
  EXPECT_EQ(h.http().unparsed_bytes, 0u);
}

// The server's bytes (101, its SETTINGS, stream 1's answer) cut at every offset.
TEST(Http2, UpgradeH2cSplitAtEveryOffset) {
  const std::string up =
      "GET /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
      "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n";
  h2::Encoder resp;
  std::string out = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
  out += h2::ServerStart();
  const size_t preface_end = out.size();
  out += resp.Headers(1, h2::Status(200), false);
  out += h2::Data(1, "ok", true);
  for (size_t k = 1; k < out.size(); ++k) {
    Harness h;
    // An accepted connection (compat build): HTTP/1.x is parsed from its first byte, so the 101
    // may be cut anywhere.
    h.Feed(h.b.Open(RQ_ROLE_SERVER));
    h.In(up);
    h.Out(out.substr(0, k));
    if (k >= preface_end) h.In(h2::ClientStart());
    h.Out(out.substr(k));
    if (k < preface_end) h.In(h2::ClientStart());
    ASSERT_EQ(h.sink.txs.size(), 1u) << k;
    EXPECT_EQ(h.sink.txs[0].path, "/u") << k;
    EXPECT_EQ(h.sink.txs[0].status, 200) << k;
    EXPECT_EQ(h.sink.txs[0].protocol, HttpProtocol::kHttp2) << k;
    EXPECT_EQ(h.http().unparsed_bytes, 0u) << k;
  }
}

// Outbound HTTP/2 (the observed process is the client): counted as client bytes, or parsed
// when client parsing is on.
TEST(Http2, ClientRoleConnections) {
  for (bool parse : {false, true}) {
    TrackerConfig cfg;
    cfg.parse_client_connections = parse;
    Harness h(cfg);
    h.Feed(h.b.Open(RQ_ROLE_CLIENT));
    h2::Encoder req, resp;
    h.Out(h2::ClientStart() + req.Headers(1, h2::Get("/upstream"), true));
    h.In(h2::ServerStart() + resp.Headers(1, h2::Status(503), true));
    if (!parse) {
      EXPECT_TRUE(h.sink.txs.empty());
      EXPECT_GT(h.http().client_bytes, 0u);
      EXPECT_EQ(h.tracker.counters().http2.connections, 0u);
      continue;
    }
    ASSERT_EQ(h.sink.txs.size(), 1u);
    EXPECT_EQ(h.sink.txs[0].role, RQ_ROLE_CLIENT);
    EXPECT_EQ(h.sink.txs[0].path, "/upstream");
    EXPECT_EQ(h.sink.txs[0].status, 503);
  }
}

TEST(Http2, WebSocketUpgradeStaysHttp1) {
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In("GET /ws/h2c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  h.Out("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  h.In("\x81\x05hello");
  ASSERT_EQ(h.sink.txs.size(), 1u);
  EXPECT_EQ(h.sink.txs[0].status, 101);
  EXPECT_EQ(h.sink.txs[0].protocol, HttpProtocol::kHttp11);
  EXPECT_EQ(h.tracker.counters().http2.connections, 0u);
}

TEST(Http2, GrpcServiceMethodAndStatusFromTrailers) {
  Harness h;
  h2::Encoder req, resp;
  auto call = [](const std::string& path) {
    return h2::Headers{{":method", "POST"}, {":scheme", "http"}, {":path", path},
                       {":authority", "localhost"}, {"content-type", "application/grpc"},
                       {"te", "trailers"}};
  };
  const std::string msg("\x00\x00\x00\x00\x03" "abc", 8);
  std::string in = h2::ClientStart();
  in += req.Headers(1, call("/demo.Greeter/SayHello"), false);
  in += h2::Data(1, msg, true);
  in += req.Headers(3, call("/demo.Greeter/Find"), false);
  in += h2::Data(3, msg, true);
  h.In(in);
  // Stream 1: headers, a message, trailers with grpc-status 0. Stream 3: trailers-only NOT_FOUND.
  std::string out = h2::ServerStart();
  out += resp.Headers(1, {{":status", "200"}, {"content-type", "application/grpc"}}, false);
  out += h2::Data(1, msg, false);
  out += resp.Headers(1, {{"grpc-status", "0"}}, true);
  out += resp.Headers(3, {{":status", "200"}, {"content-type", "application/grpc"},
                          {"grpc-status", "5"}, {"grpc-message", "no such thing"}}, true);
  h.Out(out);
  ASSERT_EQ(h.sink.txs.size(), 2u);
  auto m = ByStream(h.sink.txs);
  EXPECT_TRUE(m[1]->is_grpc);
  EXPECT_EQ(m[1]->grpc_service, "demo.Greeter");
  EXPECT_EQ(m[1]->grpc_method, "SayHello");
  EXPECT_EQ(m[1]->grpc_status, 0);
  EXPECT_EQ(m[1]->status, 200);
  EXPECT_EQ(m[3]->grpc_method, "Find");
  EXPECT_EQ(m[3]->grpc_status, 5);
  EXPECT_EQ(m[3]->status, 200);
  EXPECT_EQ(h.tracker.counters().http2.grpc_calls, 2u);
}

TEST(Http2, GarbageAfterThePrefaceNeverCrashes) {
  std::mt19937 rng(5);
  for (int round = 0; round < 200; ++round) {
    Harness h;
    std::string junk(1 + rng() % 300, '\0');
    for (auto& ch : junk) ch = static_cast<char>(rng());
    h.In(h2::ClientStart() + junk);
    std::string junk2(1 + rng() % 300, '\0');
    for (auto& ch : junk2) ch = static_cast<char>(rng());
    h.Out(junk2, static_cast<int64_t>(junk2.size() + rng() % 1000));
    h.In(junk);
    h.Feed(h.b.Close());
    for (const auto& t : h.sink.txs) EXPECT_TRUE(t.incomplete || t.status >= 0);
  }
}

// HPACK carries any bytes: a :method that is no token (empty; found by tests/fuzz/fuzz_http2.cc)
// or a :path with spaces or control characters (a line break would forge a line of
// monitor_logs.txt) is not taken as decoded: "(unknown)", as for a header block that failed.
TEST(Http2, MethodOrPathNoServerAcceptsIsUnknown) {
  Harness h;
  h2::Encoder req, resp;
  h.In(h2::ClientStart());
  h.Out(h2::ServerStart());
  const h2::Headers bad[] = {
      {{":method", ""}, {":scheme", "http"}, {":path", "/a"}},
      {{":method", "GET\r\n2024-11-22 10:00:00 - Request: Method=GET"}, {":path", "/b"}},
      {{":method", "GET"}, {":scheme", "http"}, {":path", "/c\nRequest: Method=GET, URL=/x"}},
      {{":method", "G ET"}, {":path", ""}},
  };
  uint32_t sid = 1;
  for (const h2::Headers& hs : bad) {
    h.In(req.Headers(sid, hs, true));
    h.Out(resp.Headers(sid, h2::Status(400), true));
    sid += 2;
  }
  ASSERT_EQ(h.sink.txs.size(), 4u);
  EXPECT_EQ(h.sink.txs[0].method, "(unknown)");
  EXPECT_EQ(h.sink.txs[0].path, "/a");
  EXPECT_EQ(h.sink.txs[1].method, "(unknown)");
  EXPECT_EQ(h.sink.txs[1].path, "/b");
  EXPECT_EQ(h.sink.txs[2].method, "GET");
  EXPECT_EQ(h.sink.txs[2].path, "(unknown)");
  EXPECT_EQ(h.sink.txs[3].method, "(unknown)");
  EXPECT_EQ(h.sink.txs[3].path, "(unknown)");
  for (const HttpTransaction& t : h.sink.txs) {
    EXPECT_TRUE(t.headers_unknown);
    EXPECT_EQ(t.status, 400);
  }
  EXPECT_EQ(h.tracker.counters().http2.undecoded_fields, 5u);
}

TEST(Http2, Http1ProtocolVersionIsReported) {
  Harness h;
  h.In("GET /a HTTP/1.0\r\n\r\n");
  h.Out("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
  h.In("GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
  h.Out("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(h.sink.txs.size(), 2u);
  EXPECT_EQ(h.sink.txs[0].protocol, HttpProtocol::kHttp10);
  EXPECT_EQ(h.sink.txs[1].protocol, HttpProtocol::kHttp11);
  EXPECT_STREQ(ProtocolName(h.sink.txs[0].protocol), "HTTP/1.0");
}

}  // namespace
}  // namespace reqmon

namespace reqmon {
namespace {

// Queue time (issue #14): a stream waited from when the record with its HEADERS' first byte was
// queued; a stream whose record carries no arrival has none.
TEST(Http2, QueueTimeFromTheHeadersRecord) {
  Harness h;
  h2::Encoder req, resp;
  h.b.QueuedFor(300'000);
  h.In(h2::ClientStart() + req.Headers(1, h2::Get("/a"), true));
  h.Out(h2::ServerStart() + resp.Headers(1, h2::Status(200), true));
  h.In(req.Headers(3, h2::Get("/b"), true));
  h.Out(resp.Headers(3, h2::Status(200), true));
  auto m = ByStream(h.sink.txs);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[1]->queue_ns, 300'000u);
  EXPECT_EQ(m[3]->queue_ns, 0u);
}

}  // namespace
}  // namespace reqmon

namespace reqmon {
namespace {

// Records whose frames the kernel followed (RQ_DATA_H2_FRAMES, bpf/h2frames.bpf.h): DATA payloads
// left out wherever they fall. The parser must make of them exactly what it makes of the whole
// bytes, cut anywhere.
constexpr uint8_t kFramed = RQ_DATA_H2_FRAMES, kFramedStart = RQ_DATA_H2_FRAMES | RQ_DATA_H2_START;

// Feeds `raw` (one direction's bytes) cut at the given offsets, as the kernel sends them.
void FeedElided(Harness& h, rq_direction dir, h2::KernelFrames& k, std::string_view raw,
                const std::vector<size_t>& cuts) {
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(raw.size());
  for (size_t to : ends) {
    if (to <= from) continue;
    bool start = false;
    const std::string rec = k.Take(raw.substr(from, to - from), &start);
    h.Flagged(dir, rec, static_cast<int64_t>(to - from), start ? kFramedStart : kFramed);
    from = to;
  }
}

uint64_t DataPayloadBytes(std::string_view raw, size_t skip_preface) {
  uint64_t n = 0;
  for (size_t off = skip_preface; off + 9 <= raw.size();) {
    const auto* p = reinterpret_cast<const uint8_t*>(raw.data() + off);
    const uint32_t len = (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2];
    if (p[3] == h2::DATA) n += len;
    off += 9 + len;
  }
  return n;
}

TEST(Http2Elided, KernelFramesWithoutDataPayloadsSplitAtEveryOffset) {
  Conversation c = Interleaved(10);
  // Bodies worth leaving out: a 20,000-byte DATA frame on stream 1 before its END_STREAM.
  c.out = c.out.substr(0, c.out.size() - h2::Data(1, "end", true).size() * 10);
  c.out += h2::Data(1, std::string(20000, 'b'), false);
  for (int i = 0; i < 10; ++i) c.out += h2::Data(1 + 2 * i, "end", true);
  Harness whole;
  whole.In(c.in);
  whole.Out(c.out);
  ExpectConversation(whole, c, "whole bytes");
  auto want = ByStream(whole.sink.txs);
  const uint64_t data = DataPayloadBytes(c.out, 0);
  ASSERT_GT(data, 20000u);

  auto check = [&](const Harness& h, const std::string& what) {
    ExpectConversation(h, c, what);
    auto got = ByStream(h.sink.txs);
    for (const auto& [sid, t] : want) {
      EXPECT_EQ(got[sid]->response_bytes, t->response_bytes) << what << " stream " << sid;
      EXPECT_EQ(got[sid]->request_bytes, t->request_bytes) << what << " stream " << sid;
    }
    EXPECT_EQ(h.tracker.counters().http2.data_bytes_not_copied, data) << what;
    EXPECT_EQ(h.tracker.counters().http2.gap_bytes_skipped, 0u) << what;
    EXPECT_EQ(h.tracker.counters().http2.framing_losses, 0u) << what;
  };
  {
    Harness h;
    h2::KernelFrames kin(true), kout(false);
    FeedElided(h, RQ_DIR_INGRESS, kin, c.in, {});
    FeedElided(h, RQ_DIR_EGRESS, kout, c.out, {});
    check(h, "one record each way");
  }
  for (size_t k = 1; k < c.out.size(); k += (k > 600 && k < c.out.size() - 600) ? 97 : 1) {
    Harness h;
    h2::KernelFrames kin(true), kout(false);
    FeedElided(h, RQ_DIR_INGRESS, kin, c.in, {});
    FeedElided(h, RQ_DIR_EGRESS, kout, c.out, {k});
    check(h, "egress cut at " + std::to_string(k));
  }
  for (size_t k = 4; k < c.in.size(); ++k) {
    Harness h;
    h2::KernelFrames kin(true), kout(false);
    FeedElided(h, RQ_DIR_INGRESS, kin, c.in, {k});
    FeedElided(h, RQ_DIR_EGRESS, kout, c.out, {});
    check(h, "ingress cut at " + std::to_string(k));
  }
  // Many small records and then the rest: frame headers split everywhere.
  std::mt19937 rng(5);
  for (int round = 0; round < 30; ++round) {
    std::vector<size_t> cuts;
    for (size_t at = 0; at < c.out.size();) {
      at += 1 + rng() % 30;
      if (at > 700 && at < c.out.size() - 100) at += 5000;
      cuts.push_back(std::min(at, c.out.size()));
    }
    Harness h;
    h2::KernelFrames kin(true), kout(false);
    FeedElided(h, RQ_DIR_INGRESS, kin, c.in, {});
    FeedElided(h, RQ_DIR_EGRESS, kout, c.out, cuts);
    check(h, "round " + std::to_string(round));
  }
}

// A direction that lost its place (records were lost) takes it up at the kernel's next record
// that begins at a frame boundary, not before; a framed record that does not begin at one is
// counted as unparsed.
TEST(Http2Elided, LostDirectionTakesUpAtTheKernelsFrameBoundary) {
  Harness h;
  h2::Encoder req, resp;
  h2::KernelFrames kin(true), kout(false);
  FeedElided(h, RQ_DIR_INGRESS, kin, h2::ClientStart() + req.Headers(1, h2::Get("/a"), true), {});
  FeedElided(h, RQ_DIR_EGRESS, kout, h2::ServerStart() + resp.Headers(1, h2::Status(200), false), {});
  // Stream 1's DATA frame: its header's first 4 bytes, records lost, then the rest (not at a
  // boundary).
  const std::string d1 = h2::Data(1, std::string(5000, 'x'), true);
  bool start = false;
  const std::string first = kout.Take(std::string_view(d1).substr(0, 4), &start);
  h.Flagged(RQ_DIR_EGRESS, first, 4, start ? kFramedStart : kFramed);
  h.Feed(h.b.Lost(3));
  const std::string rest = kout.Take(std::string_view(d1).substr(4), &start);
  EXPECT_FALSE(start);
  h.Flagged(RQ_DIR_EGRESS, rest, static_cast<int64_t>(d1.size() - 4), kFramed);
  EXPECT_EQ(h.tracker.counters().http2.framing_losses, 2u);  // both directions, at the loss
  EXPECT_EQ(h.http().unparsed_bytes, d1.size() - 4);
  const uint64_t resyncs = h.http().resyncs;
  // Stream 3 from a boundary: taken up (its header block decodes from the static table only
  // where it refers to entries from before: no path is invented).
  FeedElided(h, RQ_DIR_INGRESS, kin, req.Headers(3, h2::Get("/b"), true), {});
  const std::string r3 = resp.Headers(3, h2::Status(404), false) + h2::Data(3, std::string(3000, 'y'), true);
  FeedElided(h, RQ_DIR_EGRESS, kout, r3, {});
  EXPECT_EQ(h.http().resyncs, resyncs + 2);
  auto m = ByStream(h.sink.txs);
  ASSERT_TRUE(m.count(3));
  EXPECT_FALSE(m[3]->incomplete);
  EXPECT_TRUE(m[3]->path == "/b" || m[3]->path == "(unknown)") << m[3]->path;
  EXPECT_TRUE(m[3]->status == 404 || m[3]->status == 0) << m[3]->status;
  EXPECT_EQ(m[3]->response_bytes, r3.size());  // the left-out DATA payload included
}

// The kernel takes up frames at a record where this side is inside a frame: the two disagree;
// this side loses its place and takes up the kernel's (which checked every header in the record).
TEST(Http2Elided, KernelStartInsideAFrameLosesThisSidesPlaceFirst) {
  Harness h;
  h2::Encoder req, resp;
  h.In(h2::ClientStart() + req.Headers(1, h2::Get("/a"), true) + req.Headers(3, h2::Get("/b"), true));
  const std::string head = h2::ServerStart() + resp.Headers(1, h2::Status(200), false);
  // A DATA frame of 100 bytes whose header alone was captured, then a record the kernel says
  // starts at a frame boundary: this side still expects 100 - 0 payload bytes.
  h.Out(head + h2::Data(1, std::string(100, 'x'), true).substr(0, 9), static_cast<int64_t>(head.size() + 9));
  h2::KernelFrames kout(false);
  FeedElided(h, RQ_DIR_EGRESS, kout, resp.Headers(3, h2::Status(201), true), {});
  EXPECT_EQ(h.tracker.counters().http2.framing_losses, 1u);
  auto m = ByStream(h.sink.txs);
  ASSERT_TRUE(m.count(3));
  EXPECT_FALSE(m[3]->incomplete);
}

// A connection open before attach whose first record the kernel framed (a DATA header whose
// payload it left out, then a HEADERS frame): recognised as HTTP/2 from the flag.
TEST(Http2Elided, FramedFirstRecordOfAConnectionFromBeforeAttach) {
  Harness h;
  h2::Encoder resp;
  const std::string raw = h2::Data(7, std::string(30000, 'z'), false) +
                          resp.Headers(9, h2::Status(200), true);
  h2::KernelFrames k(false);
  bool start = false;
  const std::string rec = k.Take(raw, &start);
  ASSERT_TRUE(start);
  ASSERT_LT(rec.size(), 200u);
  h.Flagged(RQ_DIR_EGRESS, rec, static_cast<int64_t>(raw.size()), kFramedStart);
  EXPECT_EQ(h.tracker.counters().http2.connections, 1u);
  EXPECT_EQ(h.tracker.counters().http2.midstream, 1u);
  EXPECT_EQ(h.tracker.counters().http2.data_bytes_not_copied, 30000u);
  EXPECT_EQ(h.http().orphan_responses, 1u);  // stream 9's request was before attach
}

}  // namespace
}  // namespace reqmon

namespace reqmon {
namespace {

// A field that never enters the header table, as nghttp2 writes it with NO_INDEX: never indexed,
// and its name Huffman-coded where that is shorter.
std::string NeverIndexed(const std::string& name, const std::string& value) {
  nghttp2_hd_deflater* d = nullptr;
  nghttp2_hd_deflate_new(&d, 4096);
  nghttp2_nv nv{};
  nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
  nv.namelen = name.size();
  nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(value.data()));
  nv.valuelen = value.size();
  nv.flags = NGHTTP2_NV_FLAG_NO_INDEX;
  std::string out(nghttp2_hd_deflate_bound(d, &nv, 1), '\0');
  const ssize_t n = nghttp2_hd_deflate_hd(d, reinterpret_cast<uint8_t*>(out.data()), out.size(), &nv, 1);
  nghttp2_hd_deflate_del(d);
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

// Fields outside the header table whose names no transaction reads (a 9,000-byte header) are not
// decoded; the ones it reads are, whether their names come Huffman-coded (grpc-status), plain
// (content-type) or from the table.
TEST(Http2, FieldsNoTransactionReadsAreNotDecoded) {
  Harness h;
  h2::Encoder req;
  h.In(h2::ClientStart() + req.Headers(1, {{":method", "POST"}, {":scheme", "http"},
                                            {":path", "/demo.Greeter/Hello"},
                                            {":authority", "x"}, {"content-type", "application/grpc"}},
                                       false) +
       h2::Data(1, std::string(5, '\0'), true));
  const std::string big(9000, 'q');
  const std::string head = h2::Indexed(8) /* :status 200 */ + NeverIndexed("x-big", big) +
                           '\x00' + h2::Str("content-type") + h2::Str("application/grpc");
  const std::string trailers = NeverIndexed("grpc-status", "5") + NeverIndexed("x-big", big) +
                               NeverIndexed("grpc-message", "not found");
  ASSERT_EQ(static_cast<uint8_t>(trailers[0]), 0x10);
  ASSERT_TRUE(static_cast<uint8_t>(trailers[1]) & 0x80) << "grpc-status's name Huffman-coded";
  h.Out(h2::ServerStart() + h2::Frame(h2::HEADERS, h2::END_HEADERS, 1, head) +
        h2::Data(1, std::string(5, '\0'), false) +
        h2::Frame(h2::HEADERS, h2::END_HEADERS | h2::END_STREAM, 1, trailers));
  ASSERT_EQ(h.sink.txs.size(), 1u);
  const HttpTransaction& t = h.sink.txs[0];
  EXPECT_EQ(t.status, 200);
  EXPECT_TRUE(t.is_grpc);
  EXPECT_EQ(t.grpc_status, 5);
  EXPECT_EQ(t.grpc_service, "demo.Greeter");
  const Http2Counters& c = h.tracker.counters().http2;
  EXPECT_EQ(c.fields_not_decoded, 3u);  // x-big twice, grpc-message
  EXPECT_EQ(c.hpack_errors, 0u);
  EXPECT_EQ(c.hpack_resets, 0u);
}

}  // namespace
}  // namespace reqmon

namespace reqmon {
namespace {

// A field outside the table whose name is a dynamic entry added earlier in the same block: the
// name is looked up in the table as it is at that field (content-type, just added), not as it
// was before the block (x-old), so the field is read, not skipped.
TEST(Http2, SkippingLooksUpNamesAddedEarlierInTheSameBlock) {
  Harness h;
  h2::Encoder req;
  std::string in = h2::ClientStart();
  in += req.Headers(1, h2::Get("/a"), true);  // in this order: the second refers to the first
  in += req.Headers(3, h2::Get("/b"), true);
  h.In(in);
  // Stream 1's response adds "x-old" (dynamic entry 62).
  h.Out(h2::ServerStart() +
        h2::Frame(h2::HEADERS, h2::END_HEADERS | h2::END_STREAM, 1,
                  h2::Indexed(8) + h2::LitIncNew("x-old", "v")));
  // Stream 3's: "content-type: text/plain" added (now 62; x-old 63), then a never-indexed field
  // named by index 62 with the gRPC content type.
  const std::string block = h2::Indexed(8) + h2::LitIncNew("content-type", "text/plain") +
                            std::string("\x1f\x2f", 2) + h2::Str("application/grpc");
  const uint64_t skipped_before = h.tracker.counters().http2.fields_not_decoded;
  h.Out(h2::Frame(h2::HEADERS, h2::END_HEADERS | h2::END_STREAM, 3, block));
  auto m = ByStream(h.sink.txs);
  ASSERT_TRUE(m.count(3));
  EXPECT_TRUE(m[3]->is_grpc);
  EXPECT_EQ(h.tracker.counters().http2.fields_not_decoded, skipped_before);  // none of this block's
  EXPECT_EQ(h.tracker.counters().http2.hpack_errors, 0u);
}

}  // namespace
}  // namespace reqmon
