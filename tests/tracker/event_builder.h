// SPDX-License-Identifier: MIT
#pragma once
/// Test helpers that build real ABI records (the exact bytes the kernel writes: the fixed struct
/// followed by the payload prefix) and feed them through DispatchRecord into a
/// ConnectionTracker, so the whole user-space pipeline runs without a kernel.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "reqmon/abi.h"
#include "reqmon/capture/events.h"
#include "reqmon/parser/transaction.h"
#include "reqmon/tracker/connection_tracker.h"

namespace reqmon::testing {

using Record = std::vector<uint8_t>;

/// Builds records for one (pid, fd) with a simulated monotonic clock: every record gets
/// ts_enter = previous ts_exit + 1000 and ts_exit = ts_enter + 500.
class EventBuilder {
 public:
  explicit EventBuilder(uint32_t pid = 4242, int32_t fd = 7, uint64_t start_ns = 1'000'000)
      : pid_(pid), fd_(fd), now_(start_ns) {
    ep_.family = 2;
    ep_.laddr[0] = 127;
    ep_.laddr[3] = 1;
    ep_.raddr[0] = 10;
    ep_.raddr[3] = 9;
    ep_.lport = 8080;
    ep_.rport = 51234;
  }

  void set_pid(uint32_t pid) { pid_ = pid; }
  /// The next ingress data record says its bytes were queued `ns` before its read's exit.
  void QueuedFor(uint64_t ns) { queued_for_ = ns; }
  void set_fd(int32_t fd) { fd_ = fd; }
  /// The next data record carries these flags (enum rq_data_flags).
  void FlagNext(uint8_t flags) { next_flags_ = flags; }
  uint64_t last_enter() const { return last_enter_; }
  uint64_t last_exit() const { return last_exit_; }
  const rq_endpoints& ep() const { return ep_; }
  rq_endpoints& ep() { return ep_; }

  /// A data record carrying `captured` as its payload. `bytes` is the syscall's return value
  /// (-1: the payload size); bytes beyond the payload are uncaptured.
  Record Data(rq_direction dir, std::string_view captured, int64_t bytes = -1,
              rq_syscall sc = RQ_SYS_READ, rq_role role = RQ_ROLE_UNKNOWN) {
    rq_data_event ev{};
    Stamp(&ev.h, RQ_EV_DATA);
    ev.ep = ep_;
    ev.bytes = bytes < 0 ? static_cast<int64_t>(captured.size()) : bytes;
    ev.payload_len = static_cast<uint32_t>(captured.size());
    ev.direction = static_cast<uint8_t>(dir);
    if (sc == RQ_SYS_READ && dir == RQ_DIR_EGRESS) sc = RQ_SYS_WRITE;
    ev.syscall = static_cast<uint8_t>(sc);
    ev.role = static_cast<uint8_t>(role);
    ev.flags = next_flags_;
    next_flags_ = 0;
    if (dir == RQ_DIR_INGRESS && queued_for_) {
      ev.ts_queued = ev.h.ts_exit - queued_for_;
      queued_for_ = 0;
    }
    Record r(sizeof(ev) + captured.size());
    std::memcpy(r.data(), &ev, sizeof(ev));
    if (!captured.empty()) std::memcpy(r.data() + sizeof(ev), captured.data(), captured.size());
    return r;
  }
  Record In(std::string_view captured, int64_t bytes = -1) {
    return Data(RQ_DIR_INGRESS, captured, bytes);
  }
  Record Out(std::string_view captured, int64_t bytes = -1) {
    return Data(RQ_DIR_EGRESS, captured, bytes);
  }
  /// sendfile(2) of `bytes` bytes: nothing captured.
  Record Sendfile(int64_t bytes) { return Data(RQ_DIR_EGRESS, {}, bytes, RQ_SYS_SENDFILE); }

  Record Open(rq_role role) {
    rq_conn_event ev{};
    Stamp(&ev.h, RQ_EV_OPEN);
    ev.ep = ep_;
    ev.role = static_cast<uint8_t>(role);
    ev.syscall = role == RQ_ROLE_CLIENT ? RQ_SYS_CONNECT : RQ_SYS_ACCEPT4;
    return Bytes(ev);
  }
  Record Close() {
    rq_conn_event ev{};
    Stamp(&ev.h, RQ_EV_CLOSE);
    ev.ep = ep_;
    ev.syscall = RQ_SYS_CLOSE;
    return Bytes(ev);
  }
  /// The kernel's marker: records were lost before this one, `lost` so far.
  Record Lost(uint64_t lost) {
    rq_lost_event ev{};
    Stamp(&ev.h, RQ_EV_LOST);
    ev.h.fd = -1;
    ev.lost = lost;
    return Bytes(ev);
  }
    Record Proc(rq_proc_kind kind) {
    rq_proc_event ev{};
    Stamp(&ev.h, RQ_EV_PROC);
    ev.h.fd = -1;
    ev.kind = kind;
    std::memcpy(ev.comm, "server", 7);
    return Bytes(ev);
  }

 private:
  template <typename T>
  static Record Bytes(const T& ev) {
    Record r(sizeof(T));
    std::memcpy(r.data(), &ev, sizeof(T));
    return r;
  }
  void Stamp(rq_event_header* h, rq_event_type type) {
    h->type = type;
    h->pid = pid_;
    h->tid = pid_;
    h->fd = fd_;
    last_enter_ = now_ + 1000;
    last_exit_ = last_enter_ + 500;
    now_ = last_exit_;
    h->ts_enter = last_enter_;
    h->ts_exit = last_exit_;
  }

  uint32_t pid_;
  int32_t fd_;
  uint64_t queued_for_ = 0;
  uint8_t next_flags_ = 0;
  uint64_t now_;
  uint64_t last_enter_ = 0;
  uint64_t last_exit_ = 0;
  rq_endpoints ep_{};
};

/// Records everything the parser emits.
class RecordingSink : public TransactionSink {
 public:
  void OnTransaction(const HttpTransaction& tx) override { txs.push_back(tx); }
  void OnUnparsed(const UnparsedBytes& u) override {
    unparsed += u.bytes;
    if (u.resync) resync_unparsed += u.bytes;
    ++unparsed_calls;
  }
  std::vector<HttpTransaction> txs;
  uint64_t unparsed = 0;
  uint64_t resync_unparsed = 0;
  uint64_t unparsed_calls = 0;
};

/// A tracker, its sink and a builder; Feed() pushes a record through DispatchRecord. The
/// record is copied to an odd address first, as ring-buffer records are not aligned.
class Harness {
 public:
  explicit Harness(TrackerConfig config = {}) : tracker(sink, config) {}

  void Feed(const Record& r) {
    std::vector<uint8_t> buf(r.size() + 1);
    std::memcpy(buf.data() + 1, r.data(), r.size());
    std::string error;
    EXPECT_TRUE(DispatchRecord(buf.data() + 1, r.size(), tracker, &error)) << error;
  }
  /// Feeds ingress/egress bytes; returns the record's ts_exit.
  uint64_t In(std::string_view s, int64_t bytes = -1) {
    Feed(b.In(s, bytes));
    return b.last_exit();
  }
  uint64_t Out(std::string_view s, int64_t bytes = -1) {
    Feed(b.Out(s, bytes));
    return b.last_exit();
  }

  /// Feeds a record with flags (e.g. RQ_DATA_H2_FRAMES: `s` is what the kernel copied of
  /// `bytes`).
  uint64_t Flagged(rq_direction dir, std::string_view s, int64_t bytes, uint8_t flags) {
    b.FlagNext(flags);
    Feed(b.Data(dir, s, bytes));
    return b.last_exit();
  }

  const HttpCounters& http() const { return tracker.counters().http; }

  RecordingSink sink;
  ConnectionTracker tracker;
  EventBuilder b;
};

}  // namespace reqmon::testing
