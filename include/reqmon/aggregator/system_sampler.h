// SPDX-License-Identifier: MIT
#pragma once
/// Host and process resource sampling from /proc, with psutil's formulas.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace reqmon {

/// One observed process at one sample.
struct ProcessSample {
  uint32_t pid = 0;
  std::string comm;          ///< /proc/PID/comm without the newline
  double cpu_percent = 0.0;  ///< (utime+stime) delta / wall delta * 100 (can exceed 100 on SMP);
                             ///< 0 on the first sample of a pid, like psutil
  uint64_t rss_bytes = 0;    ///< /proc/PID/statm resident pages * page size
  bool alive = false;        ///< false when /proc/PID is gone (the other fields are then 0)
};

/// What SystemSampler::Sample returns. Rates are per second over the time since the previous
/// Sample() call (0 on the first call); cumulative counters are as read.
struct SystemSample {
  uint64_t mono_ns = 0;       ///< CLOCK_MONOTONIC time of the sample
  bool valid = false;         ///< false until the first successful Sample()
  double cpu_percent = 0.0;   ///< host CPU busy % since the previous sample (psutil.cpu_percent)
  double memory_percent = 0.0;  ///< (MemTotal - MemAvailable) / MemTotal * 100
  uint64_t memory_total_bytes = 0;
  uint64_t memory_available_bytes = 0;
  uint64_t memory_used_bytes = 0;  ///< MemTotal - MemAvailable

  std::string disk_path;        ///< mount point given to statvfs
  uint64_t disk_total_bytes = 0;
  uint64_t disk_used_bytes = 0;  ///< (f_blocks - f_bfree) * f_frsize, like psutil
  uint64_t disk_free_bytes = 0;  ///< f_bavail * f_frsize
  double disk_percent = 0.0;     ///< used / (used + free) * 100, like psutil
  uint64_t disk_read_bytes = 0;  ///< /proc/diskstats, whole disks only, sectors * 512
  uint64_t disk_write_bytes = 0;
  uint64_t disk_read_count = 0;
  uint64_t disk_write_count = 0;
  double disk_read_bytes_per_sec = 0.0;
  double disk_write_bytes_per_sec = 0.0;

  uint64_t net_rx_bytes = 0;    ///< /proc/net/dev summed over all interfaces (lo included)
  uint64_t net_tx_bytes = 0;
  uint64_t net_rx_packets = 0;
  uint64_t net_tx_packets = 0;
  double net_rx_bytes_per_sec = 0.0;
  double net_tx_bytes_per_sec = 0.0;

  std::vector<ProcessSample> processes;  ///< one per pid asked for, in the order asked
};

struct SamplerOptions {
  std::string proc_root = "/proc";  ///< the app's --proc-root
  std::string disk_path = "/";      ///< mount point for disk usage (statvfs)
};

/// Reads <proc_root>/stat, meminfo, diskstats, net/dev and <proc_root>/PID/{stat,statm,comm}.
/// Not thread-safe: one thread (the app's 1 s sampling timer) calls Sample(). The constructor
/// takes a first CPU reading so the first Sample() already has a delta, as psutil does.
class SystemSampler {
 public:
  explicit SystemSampler(SamplerOptions opts = {});

  /// Samples the host and the given pids. now_mono_ns = 0 means "read CLOCK_MONOTONIC".
  /// Missing or unreadable files leave their fields at 0; never throws.
  SystemSample Sample(const std::vector<uint32_t>& pids, uint64_t now_mono_ns = 0);

  const SamplerOptions& options() const { return opts_; }

 private:
  struct CpuTimes {
    bool ok = false;
    uint64_t total = 0;
    uint64_t busy = 0;
  };
  struct ProcPrev {
    uint64_t ticks = 0;
    uint64_t mono_ns = 0;
  };
  CpuTimes ReadCpu() const;

  SamplerOptions opts_;
  long clk_tck_;
  long page_size_;
  CpuTimes prev_cpu_;
  bool have_prev_ = false;
  uint64_t prev_ns_ = 0;
  uint64_t prev_disk_r_ = 0, prev_disk_w_ = 0, prev_rx_ = 0, prev_tx_ = 0;
  std::map<uint32_t, ProcPrev> prev_proc_;
};

}  // namespace reqmon
