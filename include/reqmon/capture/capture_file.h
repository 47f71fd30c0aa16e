// SPDX-License-Identifier: MIT
#pragma once
/// The capture file: every record the kernel handed over, stored verbatim so that a replay feeds
/// the same bytes through the same pipeline. Format (little-endian), version 2 (version 1 files,
/// whose records are ABI 1 or 2, have the same header and are read too):
///
///   offset 0   char[8]  magic "RQMONCAP"
///          8   u32      file format version (2: records of ABI 3, whose data records carry
///                       ts_queued; 1: ABI 1 or 2)
///         12   u32      RQ_ABI_VERSION of the records
///         16   i64      realtime offset: CLOCK_REALTIME - CLOCK_MONOTONIC in ns when recording
///                       started (record timestamps are CLOCK_MONOTONIC; add this for wall time)
///         24   u32      payload prefix limit the records were captured with (bytes)
///         28   u32      reserved, 0
///   then records, each:  u32 length, then `length` bytes of one ABI record (abi.h), starting
///                        with struct rq_event_header. Type RQ_EV_LOST records (written by the
///                        recorder, not the kernel) carry the kernel's lost-event count so far.
///
/// A reader reports a foreign or truncated file as one line naming the file and byte offset.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace reqmon {

inline constexpr char kCaptureMagic[8] = {'R', 'Q', 'M', 'O', 'N', 'C', 'A', 'P'};
inline constexpr uint32_t kCaptureVersion = 2;
inline constexpr size_t kCaptureHeaderSize = 32;
/// Largest record a reader accepts (header plus the largest payload, with room to spare).
inline constexpr uint32_t kMaxRecordSize = 1 << 20;

struct CaptureInfo {
  uint32_t version = kCaptureVersion;
  uint32_t abi_version = 0;  ///< records' ABI; the writer writes RQ_ABI_VERSION unless this is
                             ///< an older one (records copied from an older file)
  int64_t realtime_offset_ns = 0;
  uint32_t payload_limit = 0;
};

/// Appends records to a capture file. Not thread-safe; used from the drain thread.
class CaptureWriter {
 public:
  /// Creates (truncates) `path` and writes the file header. nullptr and `*error` on failure.
  static std::unique_ptr<CaptureWriter> Create(const std::string& path, const CaptureInfo& info,
                                               std::string* error);
  ~CaptureWriter();
  /// Appends one record. Returns false (and remembers the error) when the write fails.
  bool Write(const void* record, uint32_t len);
  /// Flushes buffered records to the file.
  bool Flush();
  const std::string& error() const { return error_; }
  uint64_t records() const { return records_; }

 private:
  CaptureWriter() = default;
  FILE* file_ = nullptr;
  std::string path_;
  std::string error_;
  uint64_t records_ = 0;
};

/// Reads a capture file record by record.
class CaptureReader {
 public:
  /// Opens `path` and checks its header. nullptr and a one-line `*error` on failure.
  static std::unique_ptr<CaptureReader> Open(const std::string& path, std::string* error);
  ~CaptureReader();
  const CaptureInfo& info() const { return info_; }
  /// Reads the next record into `*record` (a view valid until the next call). Returns false at the
  /// end of the file; then `error()` is empty for a clean end and names the byte offset of a
  /// truncated or corrupt record otherwise.
  bool Next(std::string_view* record);
  const std::string& error() const { return error_; }
  /// Byte offset of the next record.
  uint64_t offset() const { return offset_; }

 private:
  CaptureReader() = default;
  bool CheckRecord(size_t have_len, uint32_t len, uint64_t left);
  FILE* file_ = nullptr;
  std::string path_;
  CaptureInfo info_;
  std::string error_;
  std::vector<char> buf_;
  uint64_t offset_ = 0;
  // A regular file is mapped and read in place (the replay benchmark's hot path); pipes and
  // other streams are read with stdio.
  const char* map_ = nullptr;
  uint64_t map_size_ = 0;
};

/// CLOCK_REALTIME - CLOCK_MONOTONIC now, in ns.
int64_t RealtimeOffsetNs();

}  // namespace reqmon
