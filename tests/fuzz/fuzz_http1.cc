// SPDX-License-Identifier: MIT
// The HTTP/1.x parser alone: HttpConnection fed the data records of the input (framing:
// fuzz_records.h; connection bits, opens and closes are ignored). The first byte chooses the
// role the connection starts with (server, client, unknown: inferred from the bytes).
//
// Differential: the same records go to a second connection that reads every message with llhttp
// (Options::simple_messages off). Reading whole simple messages without llhttp must change
// nothing: the same transactions, field by field, the same unparsed bytes and the same counters.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_records.h"
#include "fuzz_sink.h"
#include "reqmon/parser/http1/http_connection.h"

namespace {

// Every field of every transaction and unparsed report, as text, after the checks of
// CheckingSink.
class RecordingSink : public reqmon::fuzz::CheckingSink {
 public:
  void OnTransaction(const reqmon::HttpTransaction& tx) override {
    CheckingSink::OnTransaction(tx);
    log += "T " + tx.method + " " + tx.path + "?" + tx.query + " " + std::to_string(tx.status) +
           " " + std::to_string(tx.request_start_ns) + " " + std::to_string(tx.response_end_ns) +
           " " + std::to_string(tx.queue_ns) + " " + std::to_string(tx.request_bytes) + " " +
           std::to_string(tx.response_bytes) + " " + std::to_string(tx.incomplete) +
           std::to_string(tx.truncated) + std::to_string(tx.tls) + " " +
           std::to_string(static_cast<int>(tx.protocol)) + " " + std::to_string(tx.role) + "\n";
  }
  void OnUnparsed(const reqmon::UnparsedBytes& u) override {
    CheckingSink::OnUnparsed(u);
    log += "U " + std::to_string(u.bytes) + " " + std::to_string(u.resync) + "\n";
  }
  std::string log;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace reqmon;
  if (size < 1) return 0;
  const rq_role role = static_cast<rq_role>(data[0] % 3);
  RecordingSink sink[2];
  HttpCounters counters[2];
  HttpConnection conn[2];
  for (int k = 0; k < 2; ++k) {
    HttpConnection::Options options;
    options.max_pending = 4;
    options.max_url = 32;
    options.parse_client = true;
    options.simple_messages = k == 0;
    rq_endpoints ep{};
    conn[k].Reset(fuzz::RecordBuilder::kPid, 10, 1, role, ep, options, &counters[k], &sink[k]);
  }
  fuzz::RecordBuilder builder;
  fuzz::ForEachDataRecord(data + 1, size - 1, builder,
                          [&](const rq_data_event& ev, std::string_view payload) {
                            bool upgraded = false;
                            for (int k = 0; k < 2; ++k) {
                              conn[k].OnData(ev, payload);
                              if (!conn[k].h2c_upgrade().active) continue;
                              // The tracker hands the connection to HTTP/2 here; read what it
                              // would take over.
                              for (char c : conn[k].h2c_upgrade().tail)
                                sink[k].checksum += static_cast<unsigned char>(c);
                              upgraded = true;
                            }
                            return !upgraded;
                          });
  for (int k = 0; k < 2; ++k) conn[k].Finish(builder.now());
  if (sink[0].log != sink[1].log ||
      std::memcmp(&counters[0], &counters[1], sizeof(HttpCounters)) != 0 ||
      conn[0].h2c_upgrade().active != conn[1].h2c_upgrade().active) {
    std::fprintf(stderr, "fuzz: simple messages read otherwise than by llhttp\n--- simple:\n%s"
                 "--- llhttp:\n%s", sink[0].log.c_str(), sink[1].log.c_str());
    std::abort();
  }
  return 0;
}
