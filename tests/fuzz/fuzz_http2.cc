// SPDX-License-Identifier: MIT
// The HTTP/2 parser alone (frames, streams, nghttp2's HPACK inflaters): one Http2Connection fed
// the data records of the input (framing: fuzz_records.h; only data records count). The first
// byte chooses how the connection was recognised (preface, h2c upgrade, caught mid-way) and its
// role.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_records.h"
#include "fuzz_sink.h"
#include "reqmon/parser/http2/http2_connection.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace reqmon;
  if (size < 1) return 0;
  const Http2Start start = static_cast<Http2Start>(data[0] % 3);
  const rq_role role = start == Http2Start::kMidstream ? RQ_ROLE_UNKNOWN
                       : (data[0] & 0x10)              ? RQ_ROLE_CLIENT
                                                       : RQ_ROLE_SERVER;
  fuzz::CheckingSink sink;
  HttpCounters http;
  Http2Counters counters;
  Http2Connection::Options options;
  options.max_streams = 8;
  options.max_url = 32;
  options.max_header_block = 4096;
  options.parse_client = true;
  Http2Connection conn;
  rq_endpoints ep{};
  conn.Reset(fuzz::RecordBuilder::kPid, 10, 1, role, ep, start, options, &http, &counters, &sink);
  if (start == Http2Start::kUpgrade) conn.AddUpgradeStream("GET", "/upgrade?x=1", 1000, 100);
  fuzz::RecordBuilder builder;
  fuzz::ForEachDataRecord(data + 1, size - 1, builder,
                          [&](const rq_data_event& ev, std::string_view payload) {
                            conn.OnData(ev, payload);
                            return true;
                          });
  conn.Finish(builder.now());
  return 0;
}
