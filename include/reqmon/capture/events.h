// SPDX-License-Identifier: MIT
#pragma once
/// Decoding of raw ABI records (from the ring buffer or a capture file) and the interface every
/// consumer of them implements. The record bytes are not aligned for the structs, so headers
/// are copied out with memcpy; the payload is a view into the record and is only valid during
/// the call.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "reqmon/abi.h"

namespace reqmon {

/// Receives decoded records in order. Called from a single thread.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void OnData(const rq_data_event& ev, std::string_view payload) = 0;
  virtual void OnConn(const rq_conn_event& ev) = 0;
  virtual void OnProc(const rq_proc_event& ev) { (void)ev; }
  /// Records were lost before this point of the stream (RQ_EV_LOST: the kernel's in-band
  /// marker, or the recorder's count in a capture file).
  virtual void OnLost(const rq_lost_event& ev) { (void)ev; }
};

/// Checks one raw record and hands it to `sink`. Returns false, with a reason in `*error`, for a
/// record that is too short, of an unknown type, or whose payload length disagrees with its size;
/// nothing is delivered then. `abi_version` is that of the records (a capture file's header
/// says; live records are RQ_ABI_VERSION): data records before version 3 are 8 bytes shorter.
bool DispatchRecord(const void* data, size_t len, EventSink& sink, std::string* error,
                    uint32_t abi_version = RQ_ABI_VERSION);

}  // namespace reqmon
