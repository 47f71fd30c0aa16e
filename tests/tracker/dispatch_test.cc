// SPDX-License-Identifier: MIT
// DispatchRecord: validation of raw records and decoding of unaligned buffers.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "event_builder.h"
#include "reqmon/capture/events.h"

namespace reqmon::testing {
namespace {

class CountingSink : public EventSink {
 public:
  void OnData(const rq_data_event& ev, std::string_view payload) override {
    ++data;
    last_data = ev;
    last_payload.assign(payload);
  }
  void OnConn(const rq_conn_event& ev) override {
    ++conn;
    last_conn = ev;
  }
  void OnProc(const rq_proc_event& ev) override {
    ++proc;
    last_proc = ev;
  }
  void OnLost(const rq_lost_event& ev) override {
    ++lost;
    last_lost = ev.lost;
  }
  int data = 0, conn = 0, proc = 0, lost = 0;
  uint64_t last_lost = 0;
  rq_data_event last_data{};
  rq_conn_event last_conn{};
  rq_proc_event last_proc{};
  std::string last_payload;
  int total() const { return data + conn + proc + lost; }
};

bool Dispatch(const Record& r, EventSink& sink, std::string* error, size_t misalign = 3) {
  std::vector<uint8_t> buf(r.size() + misalign);
  if (!r.empty()) std::memcpy(buf.data() + misalign, r.data(), r.size());
  return DispatchRecord(buf.data() + misalign, r.size(), sink, error);
}

TEST(DispatchTest, DecodesDataRecordAtUnalignedAddress) {
  EventBuilder b(11, 22);
  CountingSink sink;
  std::string err;
  for (size_t mis = 0; mis < 8; ++mis) {
    ASSERT_TRUE(Dispatch(b.Out("HTTP/1.1 200 OK\r\n", 1000), sink, &err, mis)) << err;
  }
  EXPECT_EQ(sink.data, 8);
  EXPECT_EQ(sink.last_data.h.pid, 11u);
  EXPECT_EQ(sink.last_data.h.fd, 22);
  EXPECT_EQ(sink.last_data.bytes, 1000);
  EXPECT_EQ(sink.last_data.payload_len, 17u);
  EXPECT_EQ(sink.last_data.direction, RQ_DIR_EGRESS);
  EXPECT_EQ(sink.last_data.h.ts_exit, b.last_exit());
  EXPECT_EQ(sink.last_payload, "HTTP/1.1 200 OK\r\n");
}

TEST(DispatchTest, DecodesConnProcAndEmptyPayload) {
  EventBuilder b;
  CountingSink sink;
  std::string err;
  ASSERT_TRUE(Dispatch(b.Open(RQ_ROLE_SERVER), sink, &err)) << err;
  EXPECT_EQ(sink.last_conn.role, RQ_ROLE_SERVER);
  EXPECT_EQ(sink.last_conn.h.type, RQ_EV_OPEN);
  ASSERT_TRUE(Dispatch(b.Close(), sink, &err)) << err;
  EXPECT_EQ(sink.last_conn.h.type, RQ_EV_CLOSE);
  ASSERT_TRUE(Dispatch(b.Proc(RQ_PROC_EXIT), sink, &err)) << err;
  EXPECT_EQ(sink.last_proc.kind, RQ_PROC_EXIT);
  ASSERT_TRUE(Dispatch(b.Sendfile(123456), sink, &err)) << err;
  EXPECT_EQ(sink.last_payload, "");
  EXPECT_EQ(sink.last_data.syscall, RQ_SYS_SENDFILE);
  EXPECT_EQ(sink.conn, 2);
  EXPECT_EQ(sink.proc, 1);
  EXPECT_EQ(sink.data, 1);
}

TEST(DispatchTest, DeliversLostCountRecord) {
  rq_lost_event ev{};
  ev.h.type = RQ_EV_LOST;
  ev.lost = 5;
  Record r(sizeof(ev));
  std::memcpy(r.data(), &ev, sizeof(ev));
  CountingSink sink;
  std::string err;
  EXPECT_TRUE(Dispatch(r, sink, &err)) << err;
  EXPECT_EQ(sink.lost, 1);
  EXPECT_EQ(sink.last_lost, 5u);
  sink.lost = 0;
  r.resize(sizeof(rq_event_header) + 2);
  EXPECT_FALSE(Dispatch(r, sink, &err));
}

void ExpectRejected(const Record& r, const char* what) {
  CountingSink sink;
  std::string err;
  EXPECT_FALSE(Dispatch(r, sink, &err)) << what;
  EXPECT_FALSE(err.empty()) << what;
  EXPECT_EQ(sink.total(), 0) << what;
}

TEST(DispatchTest, RejectsBadRecordsWithAMessage) {
  EventBuilder b;
  ExpectRejected({}, "empty");
  ExpectRejected(Record(10, 0), "shorter than a header");
  Record r = b.In("GET / HTTP/1.1\r\n\r\n");
  ExpectRejected(Record(r.begin(), r.begin() + sizeof(rq_event_header) + 8), "short data");
  ExpectRejected(Record(r.begin(), r.end() - 1), "payload cut");
  Record longer = r;
  longer.push_back('x');
  ExpectRejected(longer, "trailing bytes");
  // payload_len > bytes.
  Record bad = b.In("GET / HTTP/1.1\r\n\r\n", 5);
  ExpectRejected(bad, "payload_len > bytes");
  Record neg = b.In("", -1);
  int64_t minus = -11;
  std::memcpy(neg.data() + offsetof(rq_data_event, bytes), &minus, sizeof(minus));
  ExpectRejected(neg, "negative bytes");
  Record dir = b.In("x");
  dir[offsetof(rq_data_event, direction)] = 7;
  ExpectRejected(dir, "direction");
  Record unknown = b.Close();
  uint32_t type = 99;
  std::memcpy(unknown.data(), &type, sizeof(type));
  ExpectRejected(unknown, "unknown type");
  Record conn = b.Open(RQ_ROLE_SERVER);
  conn.resize(sizeof(rq_conn_event) - 1);
  ExpectRejected(conn, "short conn");
  Record proc = b.Proc(RQ_PROC_EXIT);
  proc.resize(sizeof(rq_proc_event) - 4);
  ExpectRejected(proc, "short proc");
  // nullptr error pointer is allowed.
  CountingSink sink;
  EXPECT_FALSE(DispatchRecord(bad.data(), bad.size(), sink, nullptr));
}

TEST(DispatchTest, RandomGarbageNeverCrashesThePipeline) {
  std::mt19937 rng(20240601);
  RecordingSink tx_sink;
  ConnectionTracker tracker(tx_sink);
  EventBuilder b;
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    Record r;
    if (i % 3 == 0) {
      // Valid-looking data records with random payloads: must pass and be counted unparsed.
      std::string junk(rng() % 200, '\0');
      for (char& c : junk) c = static_cast<char>(rng());
      b.set_fd(static_cast<int32_t>(rng() % 8));
      r = b.Data(static_cast<rq_direction>(rng() % 2), junk, junk.size() + rng() % 3);
    } else {
      r.resize(rng() % 300);
      for (uint8_t& c : r) c = static_cast<uint8_t>(rng());
      if (r.size() >= 4 && (rng() % 2)) {
        uint32_t type = 1 + rng() % 5;
        std::memcpy(r.data(), &type, sizeof(type));
      }
    }
    std::string err;
    if (DispatchRecord(r.data(), r.size(), tracker, &err)) {
      ++accepted;
    } else {
      EXPECT_FALSE(err.empty());
    }
  }
  EXPECT_GT(accepted, 6000);
  tracker.FinishAll();
  EXPECT_EQ(tracker.counters().connections_open, 0u);
}

}  // namespace
}  // namespace reqmon::testing

namespace reqmon::testing {
namespace {

// Records of ABI 1 and 2 (capture files recorded before queue time) are 8 bytes shorter: read
// by their version, they give the same event with no queue time and the same payload.
TEST(DispatchTest, ReadsAbi2DataRecordsWithoutQueueTime) {
  EventBuilder b;
  b.QueuedFor(5000);
  const Record v3 = b.In("GET / HTTP/1.1\r\n\r\n");
  Record v2(v3.begin(), v3.begin() + RQ_DATA_EVENT_SIZE_V2);
  v2.insert(v2.end(), v3.begin() + sizeof(rq_data_event), v3.end());
  CountingSink a, c;
  std::string err;
  ASSERT_TRUE(DispatchRecord(v3.data(), v3.size(), a, &err)) << err;
  ASSERT_TRUE(DispatchRecord(v2.data(), v2.size(), c, &err, 2)) << err;
  EXPECT_EQ(a.last_data.ts_queued, a.last_data.h.ts_exit - 5000);
  EXPECT_EQ(c.last_data.ts_queued, 0u);
  EXPECT_EQ(a.last_payload, c.last_payload);
  EXPECT_EQ(c.last_payload, "GET / HTTP/1.1\r\n\r\n");
  // A v2 record read as v3 (or the reverse) does not add up: rejected, not misread.
  EXPECT_FALSE(DispatchRecord(v2.data(), v2.size(), c, &err));
  EXPECT_FALSE(DispatchRecord(v3.data(), v3.size(), c, &err, 2));
}

}  // namespace
}  // namespace reqmon::testing
