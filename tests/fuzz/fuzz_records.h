// SPDX-License-Identifier: MIT
#pragma once
/// The framing that the record-stream fuzz targets (tracker, http1, http2) read their input in,
/// and the builder that turns it into real ABI records (the bytes the kernel writes), so that
/// libFuzzer mutates connections and payloads rather than struct layouts.
///
/// Input: a sequence of ops, each 4 header bytes then a payload:
///   byte 0  op:   bits 0-1 connection (fd 10 + n of pid 100), bits 2-4 kind (Kind below),
///                 bit 5 TLS plaintext (RQ_DATA_TLS), bit 6 the kernel says "server",
///                 bit 7 another peer (remote port) for the same fd
///   byte 1-2      payload length, little-endian (cut to what is left of the input)
///   byte 3  gap:  uncaptured bytes after the payload: 0-127 as is, 128-255 (n - 127) KiB
///   payload
/// tests/fuzz/make_seeds.py writes seeds in this framing from tests/data/*.rqcap.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "reqmon/abi.h"

namespace reqmon::fuzz {

enum Kind : uint8_t {
  kIngress = 0,      ///< data read by the process
  kEgress = 1,       ///< data written by the process
  kOpenServer = 2,   ///< RQ_EV_OPEN, accepted
  kOpenClient = 3,   ///< RQ_EV_OPEN, connected
  kClose = 4,        ///< RQ_EV_CLOSE
  kExit = 5,         ///< RQ_EV_PROC exit of pid 100
  kRaw = 6,          ///< the payload is one raw record, given to DispatchRecord as it is
  kSendfile = 7,     ///< egress, nothing captured: bytes = payload length + gap
};

struct Op {
  uint8_t conn = 0;
  Kind kind = kIngress;
  bool tls = false;
  bool server_hint = false;
  bool other_peer = false;
  uint64_t gap = 0;
  std::string_view payload;
};

/// Reads ops from the fuzzer's input; a trailing partial header ends the input.
class OpReader {
 public:
  OpReader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool Next(Op* op) {
    if (end_ - p_ < 4) return false;
    const uint8_t b = p_[0];
    size_t len = p_[1] | (static_cast<size_t>(p_[2]) << 8);
    const uint8_t g = p_[3];
    p_ += 4;
    if (len > static_cast<size_t>(end_ - p_)) len = end_ - p_;
    op->conn = b & 3;
    op->kind = static_cast<Kind>((b >> 2) & 7);
    op->tls = b & 0x20;
    op->server_hint = b & 0x40;
    op->other_peer = b & 0x80;
    op->gap = g < 128 ? g : static_cast<uint64_t>(g - 127) * 1024;
    op->payload = std::string_view(reinterpret_cast<const char*>(p_), len);
    p_ += len;
    return true;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

/// Builds the ABI records of an op with a simulated clock (every record 1 us after the last).
class RecordBuilder {
 public:
  static constexpr uint32_t kPid = 100;

  /// The record for `op` in `*out`; false for kinds that make none.
  bool Build(const Op& op, std::vector<uint8_t>* out) {
    now_ += 1000;
    out->clear();
    switch (op.kind) {
      case kIngress:
      case kEgress:
      case kSendfile: {
        rq_data_event ev{};
        Stamp(&ev.h, RQ_EV_DATA, op.conn);
        ev.ep = Endpoints(op);
        const bool sendfile = op.kind == kSendfile;
        const std::string_view payload = sendfile ? std::string_view() : op.payload;
        ev.bytes = static_cast<int64_t>(sendfile ? op.payload.size() + op.gap + 1
                                                 : payload.size() + op.gap);
        ev.payload_len = static_cast<uint32_t>(payload.size());
        ev.direction = op.kind == kIngress ? RQ_DIR_INGRESS : RQ_DIR_EGRESS;
        ev.syscall = sendfile ? RQ_SYS_SENDFILE
                     : op.tls ? (op.kind == kIngress ? RQ_SYS_SSL_READ : RQ_SYS_SSL_WRITE)
                              : (op.kind == kIngress ? RQ_SYS_READ : RQ_SYS_WRITE);
        ev.role = op.server_hint ? RQ_ROLE_SERVER : RQ_ROLE_UNKNOWN;
        ev.flags = op.tls ? RQ_DATA_TLS : 0;
        if (ev.bytes == 0) ev.bytes = 1, ev.flags = RQ_DATA_TLS_CIPHER, ev.payload_len = 0;
        Put(ev, ev.payload_len == 0 ? std::string_view() : payload, out);
        return true;
      }
      case kOpenServer:
      case kOpenClient:
      case kClose: {
        rq_conn_event ev{};
        Stamp(&ev.h, op.kind == kClose ? RQ_EV_CLOSE : RQ_EV_OPEN, op.conn);
        ev.ep = Endpoints(op);
        ev.role = op.kind == kOpenServer ? RQ_ROLE_SERVER
                  : op.kind == kOpenClient ? RQ_ROLE_CLIENT
                                           : RQ_ROLE_UNKNOWN;
        ev.syscall = op.kind == kOpenServer ? RQ_SYS_ACCEPT4
                     : op.kind == kOpenClient ? RQ_SYS_CONNECT
                                              : RQ_SYS_CLOSE;
        Put(ev, {}, out);
        return true;
      }
      case kExit: {
        rq_proc_event ev{};
        Stamp(&ev.h, RQ_EV_PROC, 0);
        ev.h.fd = -1;
        ev.kind = RQ_PROC_EXIT;
        Put(ev, {}, out);
        return true;
      }
      case kRaw:
        out->assign(op.payload.begin(), op.payload.end());
        return true;
    }
    return false;
  }

  uint64_t now() const { return now_; }

 private:
  void Stamp(rq_event_header* h, uint32_t type, uint8_t conn) {
    h->type = type;
    h->pid = kPid;
    h->tid = kPid;
    h->fd = 10 + conn;
    h->ts_enter = now_;
    h->ts_exit = now_ + 500;
  }
  static rq_endpoints Endpoints(const Op& op) {
    rq_endpoints ep{};
    ep.family = 2;
    ep.laddr[0] = 127;
    ep.laddr[3] = 1;
    ep.raddr[0] = 10;
    ep.raddr[3] = static_cast<uint8_t>(1 + op.conn);
    ep.lport = 8080;
    ep.rport = static_cast<uint16_t>(40000 + op.conn + (op.other_peer ? 100 : 0));
    return ep;
  }
  template <typename Ev>
  static void Put(const Ev& ev, std::string_view payload, std::vector<uint8_t>* out) {
    out->resize(sizeof(ev) + payload.size());
    std::memcpy(out->data(), &ev, sizeof(ev));
    if (!payload.empty()) std::memcpy(out->data() + sizeof(ev), payload.data(), payload.size());
  }

  uint64_t now_ = 1'000'000'000;
};

/// Feeds the data records of the ops in [data, data + size) (ingress, egress, sendfile; other
/// kinds are skipped) to on_data(ev, payload) until it returns false. The parser targets (http1,
/// http2) read their input this way.
template <typename OnData>
void ForEachDataRecord(const uint8_t* data, size_t size, RecordBuilder& builder, OnData on_data) {
  OpReader reader(data, size);
  Op op;
  std::vector<uint8_t> record;
  while (reader.Next(&op)) {
    if (op.kind != kIngress && op.kind != kEgress && op.kind != kSendfile) continue;
    builder.Build(op, &record);
    rq_data_event ev;
    std::memcpy(&ev, record.data(), sizeof(ev));
    if (!on_data(ev, std::string_view(reinterpret_cast<const char*>(record.data()) + sizeof(ev),
                                      ev.payload_len)))
      return;
  }
}

}  // namespace reqmon::fuzz
