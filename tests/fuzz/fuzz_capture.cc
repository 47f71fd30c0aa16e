// SPDX-License-Identifier: MIT
// The capture file reader (src/capture/capture_file.cc): the input is a whole capture file. It
// is read through both of the reader's paths, the mapped regular file and the stdio stream (a
// pipe), and every record goes on to DispatchRecord and a tracker, as `reqmon --replay` does.
// Both paths must read the same records and end with the same error.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_sink.h"
#include "reqmon/capture/capture_file.h"
#include "reqmon/capture/events.h"
#include "reqmon/tracker/connection_tracker.h"

namespace {

struct Result {
  bool opened = false;
  std::vector<std::string> records;
  std::string error;
};

bool WriteAll(int fd, const uint8_t* data, size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

Result Read(const std::string& path, bool replay) {
  Result r;
  std::string err;
  auto reader = reqmon::CaptureReader::Open(path, &err);
  if (!reader) {
    r.error = err;
    return r;
  }
  r.opened = true;
  reqmon::fuzz::CheckingSink sink;
  reqmon::TrackerConfig config;
  config.max_connections = 16;
  config.parse_client_connections = true;
  reqmon::ConnectionTracker tracker(sink, config);
  std::string_view rec;
  while (reader->Next(&rec)) {
    r.records.emplace_back(rec);
    if (replay) reqmon::DispatchRecord(rec.data(), rec.size(), tracker, &err);
  }
  tracker.FinishAll();
  r.error = reader->error();
  return r;
}

// The error text names the file; compare what follows the path.
std::string Tail(const std::string& error, const std::string& path) {
  return error.compare(0, path.size(), path) == 0 ? error.substr(path.size()) : error;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A regular file (mapped by the reader).
  const int mfd = memfd_create("rqcap", MFD_CLOEXEC);
  if (mfd < 0 || !WriteAll(mfd, data, size)) std::abort();
  const std::string mpath = "/proc/self/fd/" + std::to_string(mfd);
  const Result mapped = Read(mpath, true);
  close(mfd);

  // A pipe (read with stdio), when the input fits in the pipe's buffer.
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) std::abort();
  fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
  const long cap = fcntl(p[1], F_GETPIPE_SZ);
  if (cap > 0 && size <= static_cast<size_t>(cap)) {
    if (!WriteAll(p[1], data, size)) std::abort();
    close(p[1]);
    const std::string ppath = "/proc/self/fd/" + std::to_string(p[0]);
    const Result piped = Read(ppath, false);
    if (piped.opened != mapped.opened || piped.records != mapped.records ||
        Tail(piped.error, ppath) != Tail(mapped.error, mpath)) {
      std::fprintf(stderr, "fuzz: the pipe read %zu records (%s), the map %zu (%s)\n",
                   piped.records.size(), piped.error.c_str(), mapped.records.size(),
                   mapped.error.c_str());
      std::abort();
    }
  } else {
    close(p[1]);
  }
  close(p[0]);
  return 0;
}
