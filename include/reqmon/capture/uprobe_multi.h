// SPDX-License-Identifier: MIT
#pragma once
/// uprobe_multi links (kernel 6.6+): many uprobes in one BPF link, each offset with a cookie the
/// program reads with bpf_get_attach_cookie(). libbpf 1.1 (Debian 12) has no API for them, so
/// the link is made with the bpf() call itself, and whether the kernel has them is probed the
/// way later libbpf does.
///
/// Why reqmon uses them for its OpenSSL probes: the kernel detaches a link in one wait for all
/// its uprobes (~40 ms here) where a perf-event uprobe takes one wait each (~90 ms), and attaches
/// it without creating a perf event and a trace event per probe (docs/performance.md, "TLS
/// probes of processes that come and go").

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>

namespace reqmon {

/// BPF_TRACE_UPROBE_MULTI: the attach type a program is loaded with to be attached this way.
inline constexpr int kBpfTraceUprobeMulti = 48;

/// Whether the kernel makes uprobe_multi links that filter by process (checked once, then
/// remembered). Kernels 6.6 to 6.8 have the links but filtered by thread, not by process, which
/// would miss every thread but the first of a server: those count as not having them. False
/// with *why (for --verbose) when they are not usable.
bool UprobeMultiUsable(std::string* why = nullptr);

/// Attaches the program `prog_fd` (loaded with kBpfTraceUprobeMulti) at `offsets` of the file
/// at `path` (file offsets), in process `pid` only, each offset with the cookie at the same index;
/// on returns (uretprobes) when `retprobe`. Returns the link's fd, or -errno.
int AttachUprobeMulti(int prog_fd, const std::string& path, std::span<const uint64_t> offsets,
                      std::span<const uint64_t> cookies, bool retprobe, pid_t pid);

}  // namespace reqmon
