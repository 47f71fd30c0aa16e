// SPDX-License-Identifier: MIT
#pragma once
/// Finding the processes to observe from /proc and cgroupfs: descendants of a PID, processes by
/// name, processes listening on a TCP port (in any network namespace), cgroup v2 trees.
/// All functions read `proc_root` (normally "/proc"; the host's /proc when run in a container).

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace reqmon {

/// True when `proc_root`/`pid` exists.
bool ProcessExists(const std::string& proc_root, pid_t pid);

/// `pid` and every process below it in the process tree.
std::vector<pid_t> ProcessTree(const std::string& proc_root, pid_t pid);

/// Processes whose comm (the 15-character name in /proc/PID/comm) equals `name`.
std::vector<pid_t> ProcessesByComm(const std::string& proc_root, const std::string& name);

/// Processes holding a TCP socket listening on `port` (IPv4 or IPv6, any address), looking at
/// each process's own network namespace.
std::vector<pid_t> ProcessesListeningOn(const std::string& proc_root, uint16_t port);

/// cgroup v2 ids (directory inode numbers) of `path` and every cgroup below it. `path` is a
/// directory under the cgroup2 mount. Empty with `*error` set if it is not one.
std::vector<uint64_t> CgroupTreeIds(const std::string& path, std::string* error);

/// The process's comm, or "" if it is gone.
std::string ProcessComm(const std::string& proc_root, pid_t pid);

}  // namespace reqmon
