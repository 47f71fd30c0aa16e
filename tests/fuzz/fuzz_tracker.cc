// SPDX-License-Identifier: MIT
// The record stream into the tracker, as the capture pipeline feeds it (src/app/pipeline.cc):
// raw ABI records through DispatchRecord into a ConnectionTracker, whose connections run the
// HTTP/1.x parser and move to the HTTP/2 one on a preface, HTTP/2 frames or an h2c upgrade.
// Input framing: fuzz_records.h. Four connections of one process, client parsing on.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_records.h"
#include "fuzz_sink.h"
#include "reqmon/capture/events.h"
#include "reqmon/parser/query_redaction.h"
#include "reqmon/tracker/connection_tracker.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace reqmon;
  fuzz::CheckingSink sink;
  QueryRedactor redactor(sink, QueryMode::kRedactSecrets);  // the app's order: tracker, redactor
  TrackerConfig config;
  config.max_connections = 3;  // eviction too: four fds share three slots
  config.max_pending_per_connection = 8;
  config.max_url_bytes = 64;
  config.parse_client_connections = true;
  ConnectionTracker tracker(redactor, config);
  fuzz::OpReader reader(data, size);
  fuzz::RecordBuilder builder;
  fuzz::Op op;
  std::vector<uint8_t> record;
  std::string err;
  size_t n = 0;
  while (reader.Next(&op)) {
    if (!builder.Build(op, &record)) continue;
    DispatchRecord(record.data(), record.size(), tracker, &err);
    if (++n % 16 == 0) tracker.Compact(1);
  }
  tracker.FinishAll();
  tracker.Compact(0);
  return 0;
}
