// SPDX-License-Identifier: MIT
#pragma once
/// The loader: opens, configures, loads and attaches bpf/reqmon.bpf.c, fills the target maps
/// from the chosen PIDs, names, ports and cgroups, and drains the ring buffer. Everything it
/// attached is detached when the object is destroyed (and by the kernel if the process dies,
/// since every attachment is held by a file descriptor of this process).

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "reqmon/capture/tls_probes.h"

namespace reqmon {

struct CaptureConfig {
  std::vector<pid_t> pids;           ///< --pid: these processes and all their descendants
  std::vector<std::string> comms;    ///< --comm: processes with this name, now and later
  std::vector<uint16_t> ports;       ///< --port: processes listening on this TCP port
  std::vector<std::string> cgroups;  ///< --cgroup: cgroup v2 directories (and their subtrees)
  bool all = false;                  ///< --all: every process except reqmon
  uint32_t payload_bytes = 4096;     ///< payload prefix copied per syscall (1..RQ_MAX_PAYLOAD)
  uint32_t ring_buffer_mb = 8;      ///< ring buffer size, MiB (power of two)
  std::string proc_root = "/proc";
  bool verbose = false;              ///< print libbpf's own messages
  bool force_compat = false;         ///< load the compat build even where the default one works
  bool tls = true;                   ///< attach OpenSSL uprobes in observed processes
  /// Measure queue time (bpf/queue.bpf.c, default build): false attaches neither its
  /// sk_data_ready nor its inet_sock_set_state program, and records carry no ts_queued.
  bool queue_time = true;
  /// Follow HTTP/2 frames and copy them without DATA payloads (bpf/h2frames.bpf.h); false copies
  /// HTTP/2 records as the plain prefix, like any other.
  bool h2_frames = true;
};

struct CaptureCounters {
  uint64_t lost = 0;       ///< records the ring buffer had no room for
  uint64_t data = 0;       ///< data records submitted
  uint64_t truncated = 0;  ///< data records cut to the payload prefix
  uint64_t conn = 0;       ///< open/close records submitted
  uint64_t tls_data = 0;   ///< TLS plaintext records submitted
  uint64_t tls_cipher_bytes = 0;  ///< TLS ciphertext bytes seen, not copied
  uint64_t tls_unbound = 0;       ///< TLS plaintext dropped: connection unknown
  uint64_t body_skipped_bytes = 0;  ///< body bytes of a known length (HTTP/2 DATA payloads too) counted, not copied
  uint64_t h2_lost = 0;             ///< HTTP/2 records in which the kernel lost its place in the frames
};

/// Called for each record, in ring-buffer order, on the thread that calls Poll().
using RecordCallback = void (*)(void* ctx, const void* data, size_t len);
/// Called (with Start's ctx) with begin = true before the first record a Poll() hands over and
/// with false after its last, and in between every kBatchRecords records: the records of one
/// drain as a batch, for sinks that lock once per batch.
using BatchCallback = void (*)(void* ctx, bool begin);
inline constexpr uint32_t kBatchRecords = 1024;

class BpfCapture {
 public:
  /// Checks privileges and kernel support, resolves targets, loads and attaches. On failure
  /// returns nullptr and a one-line `*error` naming the cause and what to do.
  static std::unique_ptr<BpfCapture> Start(const CaptureConfig& config, RecordCallback cb,
                                           void* ctx, std::string* error);
  ~BpfCapture();
  BpfCapture(const BpfCapture&) = delete;
  BpfCapture& operator=(const BpfCapture&) = delete;

  /// Waits up to `timeout_ms` for a wake-up, then drains every record waiting. Records are
  /// submitted without wake-ups (see bpf/reqmon.bpf.c), so call this every few milliseconds.
  /// Returns the number of records handled, or a negative errno.
  int Poll(int timeout_ms);
  /// Brackets each Poll()'s records with `cb` (see BatchCallback). Call before the first Poll().
  void SetBatchCallback(BatchCallback cb);

  /// Re-resolves --comm, --port and --cgroup targets (processes that started matching later).
  void RefreshTargets();

  /// PIDs in the kernel's target map now.
  std::vector<pid_t> TargetPids() const;

  CaptureCounters Counters() const;
  /// Processes whose TLS is hooked, and those whose TLS is not covered (see tls_probes.h).
  std::vector<TlsProcess> TlsProcesses() const;
  /// TLS uprobes attached right now.
  size_t TlsLinks() const;
  const CaptureConfig& config() const { return config_; }
  /// Which build of the programs the kernel took: "default" (6.2+) or "compat".
  const char* variant() const;

 private:
  struct Impl;
  explicit BpfCapture(const CaptureConfig& config);
  CaptureConfig config_;
  std::unique_ptr<Impl> impl_;
};

/// Checks that reqmon can load BPF here without trying: root or the capabilities, BTF present.
/// Returns "" when it can, else the one-line reason.
std::string CheckBpfPrerequisites();

/// The verifier's reason for rejecting a program, from a message libbpf printed with its load
/// log ("-- BEGIN PROG LOAD LOG --" ... "-- END PROG LOAD LOG --"): the log's last line before
/// the statistics. "" when the message holds no load log.
std::string VerifierReason(const std::string& libbpf_message);

}  // namespace reqmon
