// SPDX-License-Identifier: MIT
#pragma once
// The userspace pipeline shared by live capture and replay: raw records -> (optional recorder)
// -> DispatchRecord -> ConnectionTracker -> HTTP parser -> a TransactionSink.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "reqmon/capture/capture_file.h"
#include "reqmon/parser/transaction.h"
#include "reqmon/tracker/connection_tracker.h"

#include "reqmon/abi.h"

namespace reqmon {

class Pipeline {
 public:
  /// `out` and `recorder` (may be null) must outlive the pipeline.
  Pipeline(TransactionSink& out, CaptureWriter* recorder, TrackerConfig config = {});

  /// Handles one raw record. Malformed records are counted and skipped.
  void OnRecord(const void* data, size_t len);
  /// A RecordCallback (bpf_capture.h) for BpfCapture::Start, ctx = this.
  static void OnRecordThunk(void* ctx, const void* data, size_t len) {
    static_cast<Pipeline*>(ctx)->OnRecord(data, len);
  }
  /// A BatchCallback (bpf_capture.h), ctx = this: the sink's BeginBatch()/EndBatch().
  static void OnBatchThunk(void* ctx, bool begin) {
    Pipeline* p = static_cast<Pipeline*>(ctx);
    if (begin) {
      p->out_.BeginBatch();
    } else {
      p->out_.EndBatch();
    }
  }

  /// The ABI version of the records that follow (a replayed capture's; RQ_ABI_VERSION live).
  void set_abi_version(uint32_t v) { abi_version_ = v; }

  ConnectionTracker& tracker() { return tracker_; }
  uint64_t records() const { return records_; }
  uint64_t bad_records() const { return bad_records_; }
  /// The first malformed record's reason ("" when none).
  const std::string& first_error() const { return first_error_; }
  /// The counters live capture and replay both publish in /stats' "capture" section.
  std::map<std::string, uint64_t> Counters() const;
  /// The HTTP/2 counters, published in /stats' "http2" section.
  std::map<std::string, uint64_t> Http2Counters() const;
  /// Lost-event count carried by RQ_EV_LOST records of a replayed capture.
  uint64_t recorded_lost() const { return recorded_lost_; }

 private:
  TransactionSink& out_;
  ConnectionTracker tracker_;
  CaptureWriter* recorder_;
  uint64_t records_ = 0;
  uint64_t bad_records_ = 0;
  uint64_t recorded_lost_ = 0;
  uint32_t abi_version_ = RQ_ABI_VERSION;
  std::string first_error_;
};

}  // namespace reqmon
