// SPDX-License-Identifier: MIT
// DispatchRecord: validation and decoding of raw ABI records (include/reqmon/capture/events.h).
#include <cstring>
#include <string>

#include "reqmon/abi.h"
#include "reqmon/capture/events.h"

namespace reqmon {
namespace {

bool Fail(std::string* error, std::string msg) {
  if (error != nullptr) *error = std::move(msg);
  return false;
}

std::string Sizes(size_t len, size_t want) {
  return std::to_string(len) + " bytes, need " + std::to_string(want);
}

}  // namespace

bool DispatchRecord(const void* data, size_t len, EventSink& sink, std::string* error,
                    uint32_t abi_version) {
  if (data == nullptr || len < sizeof(rq_event_header)) {
    return Fail(error, "record too short for a header: " + Sizes(len, sizeof(rq_event_header)));
  }
  const auto* bytes = static_cast<const unsigned char*>(data);
  rq_event_header h;
  std::memcpy(&h, bytes, sizeof(h));
  switch (h.type) {
    case RQ_EV_DATA: {
      // ABI 1 and 2 records end before ts_queued (read as 0).
      const size_t head = abi_version >= 3 ? sizeof(rq_data_event) : RQ_DATA_EVENT_SIZE_V2;
      if (len < head) {
        return Fail(error, "data record too short: " + Sizes(len, head));
      }
      // Copied with a constant size (a variable-length copy into a zeroed event compiled to
      // rep stos + rep movs, 8% of a replay); older records get ts_queued 0.
      rq_data_event ev;
      if (abi_version >= 3) [[likely]] {
        std::memcpy(&ev, bytes, sizeof(rq_data_event));
      } else {
        std::memset(&ev, 0, sizeof(ev));
        std::memcpy(&ev, bytes, RQ_DATA_EVENT_SIZE_V2);
      }
      if (len - head != ev.payload_len) {
        return Fail(error, "data record size " + std::to_string(len) + " != " +
                               std::to_string(head) + " + payload_len " +
                               std::to_string(ev.payload_len));
      }
      if (ev.bytes < 0 || static_cast<uint64_t>(ev.bytes) < ev.payload_len) {
        return Fail(error, "data record payload_len " + std::to_string(ev.payload_len) +
                               " exceeds bytes " + std::to_string(ev.bytes));
      }
      if (ev.direction != RQ_DIR_INGRESS && ev.direction != RQ_DIR_EGRESS) {
        return Fail(error, "data record has unknown direction " + std::to_string(ev.direction));
      }
      sink.OnData(ev, std::string_view(reinterpret_cast<const char*>(bytes) + head,
                                       ev.payload_len));
      return true;
    }
    case RQ_EV_OPEN:
    case RQ_EV_CLOSE: {
      if (len < sizeof(rq_conn_event)) {
        return Fail(error, "connection record too short: " + Sizes(len, sizeof(rq_conn_event)));
      }
      rq_conn_event ev;
      std::memcpy(&ev, bytes, sizeof(ev));
      sink.OnConn(ev);
      return true;
    }
    case RQ_EV_PROC: {
      if (len < sizeof(rq_proc_event)) {
        return Fail(error, "process record too short: " + Sizes(len, sizeof(rq_proc_event)));
      }
      rq_proc_event ev;
      std::memcpy(&ev, bytes, sizeof(ev));
      sink.OnProc(ev);
      return true;
    }
    case RQ_EV_LOST: {
      if (len < sizeof(rq_lost_event)) {
        return Fail(error, "lost-count record too short: " + Sizes(len, sizeof(rq_lost_event)));
      }
      rq_lost_event ev;
      std::memcpy(&ev, bytes, sizeof(ev));
      sink.OnLost(ev);
      return true;
    }
    default:
      return Fail(error, "unknown record type " + std::to_string(h.type) + " (" +
                             std::to_string(len) + " bytes)");
  }
}

}  // namespace reqmon
