// SPDX-License-Identifier: MIT
// capture_repeat: assembles a large capture from a recorded one, for the replay benchmark
// (scripts/bench.sh). Writes the input's records `times` times; each repetition is shifted in
// time past the previous one, so the result reads like one long recording of the same traffic.
//   capture_repeat IN.rqcap OUT.rqcap TIMES
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "reqmon/abi.h"
#include "reqmon/capture/capture_file.h"

int main(int argc, char** argv) {
  using namespace reqmon;
  if (argc != 4) {
    std::fprintf(stderr, "usage: capture_repeat IN.rqcap OUT.rqcap TIMES\n");
    return 2;
  }
  long times = std::strtol(argv[3], nullptr, 10);
  if (times < 1) {
    std::fprintf(stderr, "capture_repeat: TIMES must be a positive number\n");
    return 2;
  }
  std::string err;
  auto in = CaptureReader::Open(argv[1], &err);
  if (!in) {
    std::fprintf(stderr, "capture_repeat: %s\n", err.c_str());
    return 1;
  }
  std::vector<std::string> records;
  uint64_t first = 0, last = 0;
  std::string_view rec;
  while (in->Next(&rec)) {
    rq_event_header h;
    std::memcpy(&h, rec.data(), sizeof(h));
    if (h.type == RQ_EV_LOST) continue;
    if (!first) first = h.ts_enter;
    last = std::max<uint64_t>(last, h.ts_exit);
    records.emplace_back(rec);
  }
  if (!in->error().empty()) {
    std::fprintf(stderr, "capture_repeat: %s\n", in->error().c_str());
    return 1;
  }
  auto out = CaptureWriter::Create(argv[2], in->info(), &err);
  if (!out) {
    std::fprintf(stderr, "capture_repeat: %s\n", err.c_str());
    return 1;
  }
  const uint64_t span = last - first + 1000000;  // 1 ms apart
  for (long i = 0; i < times; ++i) {
    for (auto& r : records) {
      rq_event_header h;
      std::memcpy(&h, r.data(), sizeof(h));
      h.ts_enter += i ? span : 0;
      h.ts_exit += i ? span : 0;
      std::memcpy(r.data(), &h, sizeof(h));
      // A data record's queue time moves with it (ABI 3+: ts_queued after the header; 0 stays
      // "unknown"), so that repeats wait as long as the original.
      if (i && h.type == RQ_EV_DATA && in->info().abi_version >= 3 && r.size() >= sizeof(rq_data_event)) {
        uint64_t q;
        std::memcpy(&q, r.data() + offsetof(rq_data_event, ts_queued), sizeof(q));
        if (q) {
          q += span;
          std::memcpy(r.data() + offsetof(rq_data_event, ts_queued), &q, sizeof(q));
        }
      }
      if (!out->Write(r.data(), static_cast<uint32_t>(r.size()))) {
        std::fprintf(stderr, "capture_repeat: %s\n", out->error().c_str());
        return 1;
      }
    }
  }
  out->Flush();
  std::printf("%zu records x %ld = %llu records\n", records.size(), times,
              static_cast<unsigned long long>(records.size()) * times);
  return 0;
}
