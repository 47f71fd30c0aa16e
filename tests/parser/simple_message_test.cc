// SPDX-License-Identifier: MIT
// Whole simple messages read without llhttp (simple_message.h): what the scan takes and what it
// leaves to llhttp, and that HttpConnection gives exactly the same with it as without it, on
// messages of every kind, whole, cut at every byte, and with their bodies left uncaptured.
#include "reqmon/parser/http1/simple_message.h"

#include <gtest/gtest.h>
#include <llhttp.h>

#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "reqmon/parser/http1/http_connection.h"

namespace reqmon {
namespace {

constexpr std::string_view kNginx200 =
    "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 06 Dec 2026 06:41:00 GMT\r\n"
    "Content-Type: application/octet-stream\r\nContent-Length: 17\r\nConnection: keep-alive\r\n"
    "\r\nhello from nginx\n";
constexpr std::string_view kWrkGet = "GET / HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n";

TEST(SimpleMessageScan, TakesTheCommonRequestAndResponse) {
  SimpleMessage m;
  ASSERT_TRUE(ScanSimpleMessage(kWrkGet, true, &m));
  EXPECT_EQ(m.head_len, kWrkGet.size());
  EXPECT_EQ(m.content_length, 0u);
  EXPECT_EQ(m.method, HTTP_GET);
  EXPECT_EQ(m.minor, 1);
  EXPECT_EQ(m.target, "/");

  ASSERT_TRUE(ScanSimpleMessage(kNginx200, false, &m));
  EXPECT_EQ(m.head_len, kNginx200.size() - 17);
  EXPECT_EQ(m.content_length, 17u);
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.minor, 1);

  ASSERT_TRUE(ScanSimpleMessage(
      "POST /a/b?x=1&y=%20z HTTP/1.0\r\ncontent-length:  3\r\nX-Empty:\r\n\r\nabc", true, &m));
  EXPECT_EQ(m.method, HTTP_POST);
  EXPECT_EQ(m.minor, 0);
  EXPECT_EQ(m.target, "/a/b?x=1&y=%20z");
  EXPECT_EQ(m.content_length, 3u);
  // The head alone is enough: the body is not looked at.
  ASSERT_TRUE(ScanSimpleMessage("HTTP/1.0 404 Not Found\r\nContent-Length: 99\r\n\r\n", false, &m));
  EXPECT_EQ(m.status, 404);
  EXPECT_EQ(m.content_length, 99u);
}

TEST(SimpleMessageScan, LeavesEverythingElseToLlhttp) {
  const std::pair<std::string_view, bool> cases[] = {
      {"GET / HTTP/1.1\r\nHost: a\r\n", true},                        // head not ended
      {"GET / HTTP/1.1\r\nHost: a\r\n\r", true},                      // cut in the blank line
      {"CONNECT a:443 HTTP/1.1\r\n\r\n", true},                       // a tunnel
      {"GET http://a/ HTTP/1.1\r\n\r\n", true},                       // absolute form
      {"OPTIONS * HTTP/1.1\r\n\r\n", true},                           // asterisk form
      {"GET /a#frag HTTP/1.1\r\n\r\n", true},                         // a fragment
      {"GET /a\tb HTTP/1.1\r\n\r\n", true},                           // a control character
      {"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", true},                       // above 0x7e
      {"GET  / HTTP/1.1\r\n\r\n", true},                              // two spaces
      {"GET / HTTP/2.0\r\n\r\n", true},                               // not HTTP/1.x
      {"GET / HTTP/1.1\n\r\n", true},                                 // bare LF
      {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", true},                   // space before the colon
      {"GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n", true},            // obs-fold
      {"GET / HTTP/1.1\r\nA: \x01\r\n\r\n", true},                    // control in a value
      {"GET / HTTP/1.1\r\nA: \xff\r\n\r\n", true},                    // obs-text
      {"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n", true},               // may switch protocols
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", true},
      {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", true},
      {"POST / HTTP/1.1\r\nContent-Length: 1 \r\n\r\nx", true},       // trailing space
      {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", true},
      {"POST / HTTP/1.1\r\nContent-Length: 1234567890123456\r\n\r\n", true},
      {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\n\r\n", false},                             // ends with the connection
      {"HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false},
      {"HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false},           // no reason's space
      {"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", false},
      {"HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", false},
      {kWrkGet, false},                                               // a request as a response
      {kNginx200, true},                                              // and the other way
      {"", true},
      {"", false},
  };
  for (const auto& [text, request] : cases) {
    SimpleMessage m;
    EXPECT_FALSE(ScanSimpleMessage(text, request, &m)) << text;
  }
}

// -----------------------------------------------------------------------------------------------
// HttpConnection with and without the scan, on the same records.

struct Rec {
  rq_direction dir;
  std::string bytes;
  uint64_t gap = 0;  // uncaptured bytes after `bytes`
};

class LogSink : public TransactionSink {
 public:
  void OnTransaction(const HttpTransaction& tx) override {
    log += "T " + tx.method + " " + tx.path + "?" + tx.query + " " + std::to_string(tx.status) +
           " " + std::to_string(tx.request_start_ns) + " " + std::to_string(tx.response_end_ns) +
           " " + std::to_string(tx.queue_ns) + " " + std::to_string(tx.request_bytes) + " " +
           std::to_string(tx.response_bytes) + " " + std::to_string(tx.incomplete) +
           std::to_string(tx.truncated) + " " + std::to_string(static_cast<int>(tx.protocol)) +
           "\n";
  }
  void OnUnparsed(const UnparsedBytes& u) override {
    log += "U " + std::to_string(u.bytes) + " " + std::to_string(u.resync) + "\n";
  }
  std::string log;
};

std::string CountersText(const HttpCounters& c) {
  std::string s;
  for (uint64_t v : {c.transactions, c.truncated, c.incomplete, c.unparsed_bytes, c.resyncs,
                     c.stream_losses, c.parse_errors, c.gap_bytes_skipped, c.orphan_responses,
                     c.answered_unparsed, c.pending_overflow, c.interim_responses, c.upgrades})
    s += std::to_string(v) + " ";
  return s;
}

// Everything one connection reports for `recs`, read with or without the scan.
std::string Run(const std::vector<Rec>& recs, rq_role role, bool simple, uint64_t* taken) {
  LogSink sink;
  HttpCounters counters;
  HttpConnection conn;
  HttpConnection::Options o;
  o.simple_messages = simple;
  o.max_url = 16;
  rq_endpoints ep{};
  conn.Reset(100, 5, 1, role, ep, o, &counters, &sink);
  uint64_t now = 1'000'000;
  for (const Rec& r : recs) {
    rq_data_event ev{};
    ev.h.type = RQ_EV_DATA;
    ev.h.pid = 100;
    ev.h.fd = 5;
    ev.h.ts_enter = now + 1000;
    ev.h.ts_exit = now + 1500;
    ev.ts_queued = now + 500;
    now += 1500;
    ev.bytes = static_cast<int64_t>(r.bytes.size() + r.gap);
    ev.payload_len = static_cast<uint32_t>(r.bytes.size());
    ev.direction = static_cast<uint8_t>(r.dir);
    ev.syscall = RQ_SYS_READ;
    conn.OnData(ev, r.bytes);
  }
  conn.Finish(now);
  if (taken != nullptr) *taken = counters.transactions;
  return sink.log + "counters " + CountersText(counters) +
         " h2c " + std::to_string(conn.h2c_upgrade().active) + "\n";
}

void ExpectSame(const std::vector<Rec>& recs, const std::string& what) {
  for (rq_role role : {RQ_ROLE_SERVER, RQ_ROLE_UNKNOWN, RQ_ROLE_CLIENT}) {
    const std::string with = Run(recs, role, true, nullptr);
    const std::string without = Run(recs, role, false, nullptr);
    ASSERT_EQ(with, without) << what << " (role " << role << ")";
  }
}

std::vector<std::string> Requests() {
  return {
      std::string(kWrkGet),
      "GET /a/very/long/path/beyond/max_url?q=1 HTTP/1.1\r\nHost: a\r\n\r\n",
      "HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n",
      "POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789",
      "PUT /p HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
      "DELETE /d?x HTTP/1.1\r\nConnection: close\r\n\r\n",
      "OPTIONS * HTTP/1.1\r\n\r\n",
      "CONNECT a:443 HTTP/1.1\r\n\r\n",
      "GET /u HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
      "GET /c HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n",
      "POST /chunk HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      "GET /bad HTTP/1.1\r\nHost : a\r\n\r\n",
      "GET /bad2 HTTP/1.1\nHost: a\n\n",
      "GET /t\tab HTTP/1.1\r\n\r\n",
      "POST /dup HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
      "garbage that is no request\r\n\r\n",
  };
}

std::vector<std::string> Responses() {
  return {
      std::string(kNginx200),
      "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
      "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 500 Oops\r\ncontent-length: 4096\r\n\r\n" + std::string(4096, 'b'),
      "HTTP/1.1 100 Continue\r\n\r\n",
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
      "HTTP/1.1 204 No Content\r\n\r\n",
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
  };
}

TEST(SimpleMessageConnection, SameAsLlhttpOnEveryPairWholeAndCut) {
  uint64_t compared = 0;
  for (const std::string& req : Requests()) {
    for (const std::string& resp : Responses()) {
      // Whole records, twice over (keep-alive), then the pair again after a response to HEAD.
      ExpectSame({{RQ_DIR_INGRESS, req}, {RQ_DIR_EGRESS, resp}, {RQ_DIR_INGRESS, req},
                  {RQ_DIR_EGRESS, resp}},
                 req + " | " + resp);
      // Pipelined: both requests in one read.
      ExpectSame({{RQ_DIR_INGRESS, req + req}, {RQ_DIR_EGRESS, resp}, {RQ_DIR_EGRESS, resp}},
                 "pipelined " + req + " | " + resp);
      // Each record cut in two at every byte.
      for (size_t cut = 1; cut < req.size(); cut += (req.size() > 64 ? 7 : 1)) {
        ExpectSame({{RQ_DIR_INGRESS, req.substr(0, cut)}, {RQ_DIR_INGRESS, req.substr(cut)},
                    {RQ_DIR_EGRESS, resp}},
                   "request cut at " + std::to_string(cut) + ": " + req);
      }
      for (size_t cut = 1; cut < resp.size(); cut += (resp.size() > 200 ? 97 : 1)) {
        ExpectSame({{RQ_DIR_INGRESS, req}, {RQ_DIR_EGRESS, resp.substr(0, cut)},
                    {RQ_DIR_EGRESS, resp.substr(cut)}},
                   "response cut at " + std::to_string(cut) + ": " + resp);
        // The rest left uncaptured, as the kernel leaves a body (or more than it should).
        ExpectSame({{RQ_DIR_INGRESS, req}, {RQ_DIR_EGRESS, resp.substr(0, cut), resp.size() - cut},
                    {RQ_DIR_INGRESS, req}, {RQ_DIR_EGRESS, resp}},
                   "response captured to " + std::to_string(cut) + ": " + resp);
        ExpectSame({{RQ_DIR_INGRESS, req},
                    {RQ_DIR_EGRESS, resp.substr(0, cut), resp.size() - cut + 1}},
                   "response with one byte more uncaptured at " + std::to_string(cut));
      }
      compared += 1;
    }
  }
  EXPECT_EQ(compared, Requests().size() * Responses().size());
}

TEST(SimpleMessageConnection, SameAsLlhttpWhateverCameBefore) {
  // What a message leaves behind in the stream (llhttp's fields, the start of the last message)
  // is read when the next head breaks off: every request after every other.
  const std::string resp(kNginx200);
  for (const std::string& first : Requests()) {
    for (const std::string& second : Requests()) {
      ExpectSame({{RQ_DIR_INGRESS, first}, {RQ_DIR_EGRESS, resp}, {RQ_DIR_INGRESS, second},
                  {RQ_DIR_EGRESS, resp}, {RQ_DIR_INGRESS, second.substr(0, second.size() / 2)},
                  {RQ_DIR_INGRESS, "\x01broken"}, {RQ_DIR_EGRESS, resp}},
                 first + " then " + second);
    }
  }
  // Found by fuzz_http1: the empty line llhttp skips after a message counts with the next one.
  for (const std::string& req : Requests()) {
    ExpectSame({{RQ_DIR_INGRESS, req + "\r\n"}, {RQ_DIR_EGRESS, resp + "\n"}, {RQ_DIR_INGRESS, req},
                {RQ_DIR_EGRESS, resp}},
               "empty lines after " + req);
  }
  // Found by fuzz_http1: a request line broken before its version, after a simple message.
  ExpectSame({{RQ_DIR_INGRESS, std::string(kWrkGet)}, {RQ_DIR_EGRESS, resp},
              {RQ_DIR_INGRESS, "GET /a?page H=T3PT/1.1\r\nHost: a\r\n\r\n"}, {RQ_DIR_EGRESS, resp}},
             "broken request line");
}

TEST(SimpleMessageConnection, TakesTheCommonCaseAndGivesItsFields) {
  // The test above cannot fail by both readings being wrong the same way: here the scan's own
  // reading of the common case, against what the bytes say.
  LogSink sink;
  HttpCounters counters;
  HttpConnection conn;
  rq_endpoints ep{};
  conn.Reset(100, 5, 1, RQ_ROLE_SERVER, ep, HttpConnection::Options{}, &counters, &sink);
  rq_data_event ev{};
  ev.h.type = RQ_EV_DATA;
  ev.h.ts_enter = 10;
  ev.h.ts_exit = 20;
  ev.ts_queued = 5;
  ev.direction = RQ_DIR_INGRESS;
  const std::string req = "POST /x?y=1 HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc";
  ev.bytes = static_cast<int64_t>(req.size());
  conn.OnData(ev, req);
  ev.h.ts_enter = 30;
  ev.h.ts_exit = 40;
  ev.direction = RQ_DIR_EGRESS;
  const std::string head = "HTTP/1.1 201 Created\r\nContent-Length: 4096\r\n\r\n";
  ev.bytes = static_cast<int64_t>(head.size() + 4096);  // the body left in the kernel
  conn.OnData(ev, head);
  EXPECT_EQ(sink.log, "T POST /x?y=1 201 20 40 15 " + std::to_string(req.size()) + " " +
                          std::to_string(head.size() + 4096) + " 00 0\n");
  EXPECT_EQ(counters.gap_bytes_skipped, 4096u);
  EXPECT_EQ(counters.transactions, 1u);
}

}  // namespace
}  // namespace reqmon
