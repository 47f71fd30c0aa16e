// SPDX-License-Identifier: MIT
#include "reqmon/capture/capture_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "reqmon/abi.h"

namespace reqmon {
namespace {

void PutU32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void PutI64(char* p, int64_t v) { std::memcpy(p, &v, 8); }
uint32_t GetU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
int64_t GetI64(const char* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

int64_t RealtimeOffsetNs() {
  timespec rt{}, mono{};
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  return (static_cast<int64_t>(rt.tv_sec) - mono.tv_sec) * 1000000000LL + (rt.tv_nsec - mono.tv_nsec);
}

std::unique_ptr<CaptureWriter> CaptureWriter::Create(const std::string& path, const CaptureInfo& info,
                                                     std::string* error) {
  // Captures hold payload prefixes (request heads, cookies, tokens): owner-only, whatever the
  // umask, and a file that was already there loses any wider mode too.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) fchmod(fd, 0600);
  FILE* f = fd >= 0 ? fdopen(fd, "wb") : nullptr;
  if (!f && fd >= 0) ::close(fd);
  if (!f) {
    *error = path + ": cannot create capture file: " + std::strerror(errno);
    return nullptr;
  }
  char hdr[kCaptureHeaderSize] = {};
  std::memcpy(hdr, kCaptureMagic, 8);
  // Records copied from an older file keep saying what they are; everything else is this ABI's.
  PutU32(hdr + 8, info.version >= 1 && info.version <= kCaptureVersion ? info.version
                                                                       : kCaptureVersion);
  PutU32(hdr + 12, info.abi_version >= 1 && info.abi_version <= RQ_ABI_VERSION ? info.abi_version
                                                                               : RQ_ABI_VERSION);
  PutI64(hdr + 16, info.realtime_offset_ns);
  PutU32(hdr + 24, info.payload_limit);
  if (std::fwrite(hdr, 1, sizeof(hdr), f) != sizeof(hdr)) {
    *error = path + ": cannot write capture header: " + std::strerror(errno);
    std::fclose(f);
    return nullptr;
  }
  std::unique_ptr<CaptureWriter> w(new CaptureWriter());
  w->file_ = f;
  w->path_ = path;
  return w;
}

CaptureWriter::~CaptureWriter() {
  if (file_) std::fclose(file_);
}

bool CaptureWriter::Write(const void* record, uint32_t len) {
  char lenbuf[4];
  PutU32(lenbuf, len);
  if (std::fwrite(lenbuf, 1, 4, file_) != 4 || std::fwrite(record, 1, len, file_) != len) {
    if (error_.empty()) error_ = path_ + ": write failed: " + std::strerror(errno);
    return false;
  }
  ++records_;
  return true;
}

bool CaptureWriter::Flush() {
  if (std::fflush(file_) != 0) {
    if (error_.empty()) error_ = path_ + ": flush failed: " + std::strerror(errno);
    return false;
  }
  return true;
}

std::unique_ptr<CaptureReader> CaptureReader::Open(const std::string& path, std::string* error) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    *error = path + ": cannot open capture file: " + std::strerror(errno);
    return nullptr;
  }
  char hdr[kCaptureHeaderSize];
  size_t got = std::fread(hdr, 1, sizeof(hdr), f);
  if (std::memcmp(hdr, kCaptureMagic, got < 8 ? got : 8) != 0 || got == 0) {
    *error = path + ": not a reqmon capture file (bad magic at byte offset 0)";
    std::fclose(f);
    return nullptr;
  }
  if (got < sizeof(hdr)) {
    *error = path + ": truncated capture header at byte offset " + std::to_string(got) + " (need " +
             std::to_string(kCaptureHeaderSize) + " bytes)";
    std::fclose(f);
    return nullptr;
  }
  std::unique_ptr<CaptureReader> r(new CaptureReader());
  r->info_.version = GetU32(hdr + 8);
  r->info_.abi_version = GetU32(hdr + 12);
  r->info_.realtime_offset_ns = GetI64(hdr + 16);
  r->info_.payload_limit = GetU32(hdr + 24);
  if (r->info_.version < 1 || r->info_.version > kCaptureVersion) {
    *error = path + ": unsupported capture format version " + std::to_string(r->info_.version) +
             " at byte offset 8 (this reqmon reads versions 1 to " +
             std::to_string(kCaptureVersion) + ")";
    std::fclose(f);
    return nullptr;
  }
  // ABI 1 records have the layout of ABI 2 with zero flags; ABI 3 data records are 8 bytes
  // longer (ts_queued). DispatchRecord reads each by its version.
  if (r->info_.abi_version < 1 || r->info_.abi_version > RQ_ABI_VERSION) {
    *error = path + ": unsupported record ABI version " + std::to_string(r->info_.abi_version) +
             " at byte offset 12 (this reqmon reads versions 1 to " +
             std::to_string(RQ_ABI_VERSION) + ")";
    std::fclose(f);
    return nullptr;
  }
  r->file_ = f;
  r->path_ = path;
  r->offset_ = kCaptureHeaderSize;
  r->buf_.resize(64 * 1024);
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    void* m = mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE, fileno(f), 0);
    if (m != MAP_FAILED) {
      madvise(m, st.st_size, MADV_SEQUENTIAL);
      r->map_ = static_cast<const char*>(m);
      r->map_size_ = st.st_size;
    }
  }
  return r;
}

CaptureReader::~CaptureReader() {
  if (map_) munmap(const_cast<char*>(map_), map_size_);
  if (file_) std::fclose(file_);
}

// Checks one record's framing: `have_len` bytes of its length field, its length, and `left`
// bytes after the length field. Sets error_ and returns false when the record is cut or corrupt.
bool CaptureReader::CheckRecord(size_t have_len, uint32_t len, uint64_t left) {
  if (have_len < 4) {
    error_ = path_ + ": truncated record length at byte offset " + std::to_string(offset_);
  } else if (len < sizeof(rq_event_header) || len > kMaxRecordSize) {
    error_ = path_ + ": corrupt record length " + std::to_string(len) + " at byte offset " +
             std::to_string(offset_);
  } else if (left < len) {
    error_ = path_ + ": truncated record at byte offset " + std::to_string(offset_) + " (need " +
             std::to_string(len) + " bytes, " + std::to_string(left) + " left)";
  }
  return error_.empty();
}

bool CaptureReader::Next(std::string_view* record) {
  if (!file_ || !error_.empty()) return false;
  if (map_) {
    const uint64_t left = map_size_ - offset_;
    if (left == 0) return false;  // clean end
    const uint32_t len = left >= 4 ? GetU32(map_ + offset_) : 0;
    if (!CheckRecord(left < 4 ? left : 4, len, left - (left < 4 ? left : 4))) return false;
    *record = std::string_view(map_ + offset_ + 4, len);
    offset_ += 4 + len;
    return true;
  }
  char lenbuf[4];
  size_t got = std::fread(lenbuf, 1, 4, file_);
  if (got == 0) return false;  // clean end
  const uint32_t len = got == 4 ? GetU32(lenbuf) : 0;
  if (!CheckRecord(got, len, kMaxRecordSize)) return false;
  if (buf_.size() < len) buf_.resize(len);
  got = std::fread(buf_.data(), 1, len, file_);
  if (!CheckRecord(4, len, got)) return false;
  offset_ += 4 + len;
  *record = std::string_view(buf_.data(), len);
  return true;
}

}  // namespace reqmon
