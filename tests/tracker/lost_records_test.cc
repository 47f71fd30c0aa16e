// SPDX-License-Identifier: MIT
// Records lost in the kernel (ring buffer full), marked in band by RQ_EV_LOST: no request is
// ever paired with another request's response across the lost records.
#include <gtest/gtest.h>

#include <string>

#include "event_builder.h"

namespace reqmon::testing {
namespace {

constexpr std::string_view kA = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
constexpr std::string_view kB = "GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
constexpr std::string_view kC = "GET /c HTTP/1.1\r\nHost: x\r\n\r\n";
constexpr std::string_view k200 = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
constexpr std::string_view k404 = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
constexpr std::string_view k503 = "HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n\r\n";

// The transactions of the sink as "path status" (status 0: incomplete).
std::vector<std::string> Seen(const RecordingSink& sink) {
  std::vector<std::string> out;
  for (const HttpTransaction& tx : sink.txs)
    out.push_back(tx.path + " " + std::to_string(tx.incomplete ? 0 : tx.status));
  return out;
}

using V = std::vector<std::string>;

// The case faults.sh found: /a's response lost, /b's exchange arrives. Without the marker /b's
// 404 answered /a.
TEST(LostRecordsTest, LostResponseDoesNotShiftThePairing) {
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In(kA);
  h.b.Out(k200);  // built (the clock moves) but never delivered: lost
  h.Feed(h.b.Lost(1));
  h.In(kB);
  h.Out(k404);
  h.In(kC);
  h.Out(k503);
  EXPECT_EQ(Seen(h.sink), (V{"/a 0", "/b 404", "/c 503"}));
  EXPECT_EQ(h.tracker.counters().loss_marks, 1u);
  EXPECT_EQ(h.tracker.counters().loss_resyncs, 1u);
}

// The response to /a and the request /b both lost: /b's response has no request to answer and
// is dropped, never given to /a.
TEST(LostRecordsTest, LostResponseAndRequestLeaveAnOrphanNotAMispair) {
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In(kA);
  h.b.Out(k200);
  h.b.In(kB);
  h.Feed(h.b.Lost(2));
  h.Out(k404);
  h.In(kC);
  h.Out(k503);
  EXPECT_EQ(Seen(h.sink), (V{"/a 0", "/c 503"}));
  EXPECT_EQ(h.http().orphan_responses, 1u);
}

// A request lost: its response arrives with nothing unanswered before it.
TEST(LostRecordsTest, LostRequestLeavesAnOrphan) {
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In(kA);
  h.Out(k200);
  h.b.In(kB);
  h.Feed(h.b.Lost(1));
  h.Out(k404);
  h.In(kC);
  h.Out(k503);
  EXPECT_EQ(Seen(h.sink), (V{"/a 200", "/c 503"}));
  EXPECT_EQ(h.http().orphan_responses, 1u);
}

// A response whose head came before the loss keeps its status (the head is its own); the
// rest of its body may be gone: it is finished as truncated.
TEST(LostRecordsTest, ResponseHeadBeforeTheLossIsTruncated) {
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In(kA);
  h.Out("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nxxxx");
  h.b.Out(std::string(1000, 'x'));
  h.Feed(h.b.Lost(1));
  h.Out(std::string(1000, 'x'));  // the rest of the body: skipped, not HTTP
  h.In(kB);
  h.Out(k404);
  EXPECT_EQ(Seen(h.sink), (V{"/a 200", "/b 404"}));
  ASSERT_EQ(h.sink.txs.size(), 2u);
  EXPECT_TRUE(h.sink.txs[0].truncated);
}

// Only connections open at the marker are resynchronised, each once; a marker repeating a
// count already seen (the recorder's) changes nothing; a later connection is not touched.
TEST(LostRecordsTest, OnlyConnectionsOpenAtTheLossAreResynchronisedOnce) {
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In(kA);
  h.Out(k200);
  h.Feed(h.b.Lost(3));
  h.Feed(h.b.Lost(3));
  h.In(kB);
  h.Out(k404);
  h.In(kC);
  h.Out(k503);
  h.b.set_fd(8);
  h.b.ep().rport = 40000;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In(kA);
  h.Out(k200);
  EXPECT_EQ(Seen(h.sink), (V{"/a 200", "/b 404", "/c 503", "/a 200"}));
  EXPECT_EQ(h.tracker.counters().loss_marks, 1u);
  EXPECT_EQ(h.tracker.counters().loss_resyncs, 1u);
  EXPECT_EQ(h.http().incomplete, 0u);
}

// Pipelined requests in flight at the loss: none of them is paired with a response from after
// it; requests read after the loss pair exactly.
TEST(LostRecordsTest, PipelinedRequestsInFlightAreIncomplete) {
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  h.In(std::string(kA) + std::string(kB));
  h.Out(k200);  // answers /a
  h.Feed(h.b.Lost(1));
  h.Out(k404);  // /b's, or another's: it cannot be told, so it answers nothing
  h.In(kC);
  h.Out(k503);
  EXPECT_EQ(Seen(h.sink), (V{"/a 200", "/b 0", "/c 503"}));
}

}  // namespace
}  // namespace reqmon::testing
