// SPDX-License-Identifier: MIT
// The HTTP/1.x parser alone: one HttpConnection fed the data records of the input (framing:
// fuzz_records.h; connection bits, opens and closes are ignored). The first byte chooses the
// role the connection starts with (server, client, unknown: inferred from the bytes).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_records.h"
#include "fuzz_sink.h"
#include "reqmon/parser/http1/http_connection.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace reqmon;
  if (size < 1) return 0;
  const rq_role role = static_cast<rq_role>(data[0] % 3);
  fuzz::CheckingSink sink;
  HttpCounters counters;
  HttpConnection::Options options;
  options.max_pending = 4;
  options.max_url = 32;
  options.parse_client = true;
  HttpConnection conn;
  rq_endpoints ep{};
  conn.Reset(fuzz::RecordBuilder::kPid, 10, 1, role, ep, options, &counters, &sink);
  fuzz::RecordBuilder builder;
  fuzz::ForEachDataRecord(data + 1, size - 1, builder,
                          [&](const rq_data_event& ev, std::string_view payload) {
                            conn.OnData(ev, payload);
                            if (!conn.h2c_upgrade().active) return true;
                            // The tracker hands the connection to HTTP/2 here; read what it
                            // would take over.
                            for (char c : conn.h2c_upgrade().tail)
                              sink.checksum += static_cast<unsigned char>(c);
                            return false;
                          });
  conn.Finish(builder.now());
  return 0;
}
