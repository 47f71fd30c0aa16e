// SPDX-License-Identifier: MIT
#include "pipeline.h"

#include <algorithm>
#include <cstring>

#include "reqmon/abi.h"
#include "reqmon/capture/events.h"

namespace reqmon {

Pipeline::Pipeline(TransactionSink& out, CaptureWriter* recorder, TrackerConfig config)
    : out_(out), tracker_(out, config), recorder_(recorder) {}

void Pipeline::OnRecord(const void* data, size_t len) {
  ++records_;
  if (recorder_) recorder_->Write(data, static_cast<uint32_t>(len));
  if (len >= sizeof(rq_lost_event)) {
    uint32_t type;
    std::memcpy(&type, data, sizeof(type));
    if (type == RQ_EV_LOST) {
      rq_lost_event ev;
      std::memcpy(&ev, data, sizeof(ev));
      recorded_lost_ = std::max<uint64_t>(recorded_lost_, ev.lost);
    }
  }
  std::string err;
  if (!DispatchRecord(data, len, tracker_, &err, abi_version_)) {
    if (bad_records_++ == 0) first_error_ = err;
  }
}

std::map<std::string, uint64_t> Pipeline::Counters() const {
  const TrackerCounters& tc = tracker_.counters();
  return {{"records", records_},
          {"malformed_records", bad_records_},
          {"connections_opened", tc.connections_opened},
          {"connections_evicted", tc.connections_evicted},
          {"data_bytes", tc.data_bytes},
          {"http_answered_unparsed", tc.http.answered_unparsed},
          {"http_orphan_responses", tc.http.orphan_responses},
          {"loss_marks", tc.loss_marks},
          {"loss_resyncs", tc.loss_resyncs},
          {"tls_records", tc.tls_records},
          {"tls_connections", tc.tls_connections},
          {"tls_ciphertext_dropped", tc.tls_ciphertext_dropped}};
}

std::map<std::string, uint64_t> Pipeline::Http2Counters() const {
  const reqmon::Http2Counters& c = tracker_.counters().http2;
  return {{"connections", c.connections},
          {"via_preface", c.via_preface},
          {"via_upgrade", c.via_upgrade},
          {"midstream", c.midstream},
          {"streams", c.streams},
          {"grpc_calls", c.grpc_calls},
          {"rst_streams", c.rst_streams},
          {"goaways", c.goaways},
          {"refused_streams", c.refused_streams},
          {"hpack_resets", c.hpack_resets},
          {"hpack_errors", c.hpack_errors},
          {"undecoded_fields", c.undecoded_fields},
          {"unknown_paths", c.unknown_paths},
          {"unknown_status", c.unknown_status},
          {"gap_bytes_skipped", c.gap_bytes_skipped},
          {"framing_losses", c.framing_losses},
          {"data_bytes_not_copied", c.data_bytes_not_copied},
          {"fields_not_decoded", c.fields_not_decoded},
          {"stream_overflow", c.stream_overflow}};
}

}  // namespace reqmon
