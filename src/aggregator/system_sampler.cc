// SPDX-License-Identifier: MIT
#include "reqmon/aggregator/system_sampler.h"

#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>

namespace reqmon {
namespace {

bool ReadFile(const std::string& path, std::string* out) {
  FILE* f = std::fopen(path.c_str(), "re");
  if (!f) return false;
  out->clear();
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  std::fclose(f);
  return true;
}

uint64_t MonoNow() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// "sda1" is a partition of "sda", "nvme0n1p2" of "nvme0n1", "mmcblk0p1" of "mmcblk0".
bool IsPartition(const std::string& name, const std::set<std::string>& all) {
  if (name.empty() || !IsDigit(name.back())) return false;
  size_t end = name.size();
  while (end > 0 && IsDigit(name[end - 1])) --end;
  std::string base = name.substr(0, end);
  if (all.count(base)) return true;
  if (!base.empty() && base.back() == 'p' && all.count(base.substr(0, base.size() - 1))) {
    return true;
  }
  return false;
}

}  // namespace

SystemSampler::SystemSampler(SamplerOptions opts)
    : opts_(std::move(opts)), clk_tck_(sysconf(_SC_CLK_TCK)), page_size_(sysconf(_SC_PAGESIZE)) {
  if (clk_tck_ <= 0) clk_tck_ = 100;
  if (page_size_ <= 0) page_size_ = 4096;
  prev_cpu_ = ReadCpu();
}

SystemSampler::CpuTimes SystemSampler::ReadCpu() const {
  CpuTimes t;
  std::string s;
  if (!ReadFile(opts_.proc_root + "/stat", &s)) return t;
  if (s.compare(0, 4, "cpu ") != 0) return t;
  std::istringstream in(s.substr(4, s.find('\n') - 4));
  uint64_t v[10] = {0};
  int n = 0;
  while (n < 10 && (in >> v[n])) ++n;
  if (n < 4) return t;
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in
  // user/nice, so psutil leaves it out of the total.
  uint64_t total = 0;
  for (int i = 0; i < std::min(n, 8); ++i) total += v[i];
  t.ok = true;
  t.total = total;
  t.busy = total - v[3] - (n > 4 ? v[4] : 0);
  return t;
}

SystemSample SystemSampler::Sample(const std::vector<uint32_t>& pids, uint64_t now_mono_ns) {
  SystemSample out;
  out.mono_ns = now_mono_ns ? now_mono_ns : MonoNow();
  out.valid = true;
  const double dt =
      have_prev_ && out.mono_ns > prev_ns_ ? static_cast<double>(out.mono_ns - prev_ns_) / 1e9 : 0;

  // Host CPU.
  CpuTimes cpu = ReadCpu();
  if (cpu.ok && prev_cpu_.ok && cpu.total > prev_cpu_.total) {
    const double all = static_cast<double>(cpu.total - prev_cpu_.total);
    const double busy = cpu.busy >= prev_cpu_.busy ? static_cast<double>(cpu.busy - prev_cpu_.busy)
                                                   : 0.0;
    out.cpu_percent = std::min(100.0, busy / all * 100.0);
  }
  if (cpu.ok) prev_cpu_ = cpu;

  // Memory.
  std::string s;
  if (ReadFile(opts_.proc_root + "/meminfo", &s)) {
    std::istringstream in(s);
    std::string line;
    uint64_t total = 0, avail = 0, free = 0, buffers = 0, cached = 0;
    bool have_avail = false;
    while (std::getline(in, line)) {
      char key[64];
      unsigned long long kb = 0;
      if (std::sscanf(line.c_str(), "%63[^:]: %llu", key, &kb) != 2) continue;
      if (!std::strcmp(key, "MemTotal")) total = kb * 1024;
      else if (!std::strcmp(key, "MemAvailable")) avail = kb * 1024, have_avail = true;
      else if (!std::strcmp(key, "MemFree")) free = kb * 1024;
      else if (!std::strcmp(key, "Buffers")) buffers = kb * 1024;
      else if (!std::strcmp(key, "Cached")) cached = kb * 1024;
    }
    if (!have_avail) avail = free + buffers + cached;
    if (avail > total) avail = total;
    out.memory_total_bytes = total;
    out.memory_available_bytes = avail;
    out.memory_used_bytes = total - avail;
    if (total > 0) out.memory_percent = static_cast<double>(total - avail) / total * 100.0;
  }

  // Disk usage.
  out.disk_path = opts_.disk_path;
  struct statvfs vfs {};
  if (!opts_.disk_path.empty() && statvfs(opts_.disk_path.c_str(), &vfs) == 0) {
    const uint64_t fr = vfs.f_frsize ? vfs.f_frsize : vfs.f_bsize;
    out.disk_total_bytes = static_cast<uint64_t>(vfs.f_blocks) * fr;
    out.disk_free_bytes = static_cast<uint64_t>(vfs.f_bavail) * fr;
    out.disk_used_bytes = static_cast<uint64_t>(vfs.f_blocks - vfs.f_bfree) * fr;
    const uint64_t denom = out.disk_used_bytes + out.disk_free_bytes;
    if (denom > 0) out.disk_percent = static_cast<double>(out.disk_used_bytes) / denom * 100.0;
  }

  // Disk I/O: whole disks only (no partitions, loop, ram or device-mapper devices).
  if (ReadFile(opts_.proc_root + "/diskstats", &s)) {
    struct Row {
      std::string name;
      uint64_t rc, rs, wc, ws;
    };
    std::vector<Row> rows;
    std::set<std::string> names;
    std::istringstream in(s);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      unsigned maj, min;
      Row r{};
      uint64_t rmerged, rms, wmerged;
      if (!(ls >> maj >> min >> r.name >> r.rc >> rmerged >> r.rs >> rms >> r.wc >> wmerged >>
            r.ws)) {
        continue;
      }
      names.insert(r.name);
      rows.push_back(std::move(r));
    }
    for (const Row& r : rows) {
      if (r.name.rfind("loop", 0) == 0 || r.name.rfind("ram", 0) == 0 ||
          r.name.rfind("dm-", 0) == 0 || r.name.rfind("zram", 0) == 0 ||
          IsPartition(r.name, names)) {
        continue;
      }
      out.disk_read_count += r.rc;
      out.disk_write_count += r.wc;
      out.disk_read_bytes += r.rs * 512;
      out.disk_write_bytes += r.ws * 512;
    }
  }

  // Network: /proc/net/dev summed over every interface, as psutil.net_io_counters().
  if (ReadFile(opts_.proc_root + "/net/dev", &s)) {
    std::istringstream in(s);
    std::string line;
    while (std::getline(in, line)) {
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::istringstream ls(line.substr(colon + 1));
      uint64_t f[16] = {0};
      int n = 0;
      while (n < 16 && (ls >> f[n])) ++n;
      if (n < 10) continue;
      out.net_rx_bytes += f[0];
      out.net_rx_packets += f[1];
      out.net_tx_bytes += f[8];
      out.net_tx_packets += f[9];
    }
  }

  if (dt > 0) {
    auto rate = [dt](uint64_t now, uint64_t prev) {
      return now >= prev ? static_cast<double>(now - prev) / dt : 0.0;
    };
    out.disk_read_bytes_per_sec = rate(out.disk_read_bytes, prev_disk_r_);
    out.disk_write_bytes_per_sec = rate(out.disk_write_bytes, prev_disk_w_);
    out.net_rx_bytes_per_sec = rate(out.net_rx_bytes, prev_rx_);
    out.net_tx_bytes_per_sec = rate(out.net_tx_bytes, prev_tx_);
  }
  prev_disk_r_ = out.disk_read_bytes;
  prev_disk_w_ = out.disk_write_bytes;
  prev_rx_ = out.net_rx_bytes;
  prev_tx_ = out.net_tx_bytes;
  prev_ns_ = out.mono_ns;
  have_prev_ = true;

  // Processes.
  std::map<uint32_t, ProcPrev> next_prev;
  out.processes.reserve(pids.size());
  for (uint32_t pid : pids) {
    ProcessSample p;
    p.pid = pid;
    const std::string dir = opts_.proc_root + "/" + std::to_string(pid);
    std::string stat;
    if (ReadFile(dir + "/stat", &stat)) {
      const size_t rp = stat.rfind(')');
      const size_t lp = stat.find('(');
      if (rp != std::string::npos && lp != std::string::npos && lp < rp) {
        p.alive = true;
        // Fields after ") ": state(3) ppid(4) ... utime(14) stime(15).
        std::istringstream in(stat.substr(rp + 1));
        std::string tok;
        uint64_t utime = 0, stime = 0;
        for (int field = 3; field <= 15 && (in >> tok); ++field) {
          if (field == 14) utime = std::strtoull(tok.c_str(), nullptr, 10);
          if (field == 15) stime = std::strtoull(tok.c_str(), nullptr, 10);
        }
        const uint64_t ticks = utime + stime;
        auto it = prev_proc_.find(pid);
        if (it != prev_proc_.end() && out.mono_ns > it->second.mono_ns &&
            ticks >= it->second.ticks) {
          const double secs = static_cast<double>(ticks - it->second.ticks) / clk_tck_;
          const double wall = static_cast<double>(out.mono_ns - it->second.mono_ns) / 1e9;
          p.cpu_percent = secs / wall * 100.0;
        }
        next_prev[pid] = ProcPrev{ticks, out.mono_ns};
        std::string comm;
        if (ReadFile(dir + "/comm", &comm)) {
          while (!comm.empty() && (comm.back() == '\n' || comm.back() == '\r')) comm.pop_back();
          p.comm = comm;
        } else {
          p.comm = stat.substr(lp + 1, rp - lp - 1);
        }
      }
      std::string statm;
      if (p.alive && ReadFile(dir + "/statm", &statm)) {
        unsigned long long size = 0, resident = 0;
        if (std::sscanf(statm.c_str(), "%llu %llu", &size, &resident) == 2) {
          p.rss_bytes = resident * static_cast<uint64_t>(page_size_);
        }
      }
    }
    out.processes.push_back(std::move(p));
  }
  prev_proc_ = std::move(next_prev);
  return out;
}

}  // namespace reqmon
