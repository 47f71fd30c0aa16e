// SPDX-License-Identifier: MIT
#pragma once
/// Who an observed process is: its container (from its cgroup path) and the target (--pid,
/// --comm, --port, --cgroup, --all) that selected it.
///
/// Container identity. /proc/PID/cgroup names the process's cgroup; container runtimes put each
/// container in a cgroup named after its 64-hex id, and Kubernetes puts each pod in a cgroup
/// named after its UID:
///   systemd driver: /kubepods.slice/kubepods-burstable.slice/
///                   kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope
///   cgroupfs driver: /kubepods/burstable/pod<uid>/<id>
///   docker: /docker/<id>  or  /system.slice/docker-<id>.scope;  cri-o: crio-<id>.scope;
///   podman: libpod-<id>.scope
/// The cgroup v2 line ("0::") is used first, then the v1 lines (hybrid hosts). Paths may start
/// with "/.." when read from inside another cgroup namespace (a DaemonSet's pod): the names are
/// the same. A process with neither is on the host: empty id and pod UID, runtime "host".
///
/// Target attribution. A process is attributed to the first target (in command-line order)
/// that matches it or, failing that, its nearest ancestor (parent chain from /proc/PID/stat):
/// --pid P matches P itself (so its descendants through the walk), --comm N a process named N,
/// --port N a process listening on N, --cgroup D a process whose cgroup is D or below it (the
/// process itself only); --all matches any process, last. With a single target every process
/// belongs to it.

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace reqmon {

struct ContainerIdentity {
  std::string container_id;  ///< 64 lowercase hex digits; "" on the host
  std::string pod_uid;       ///< Kubernetes pod UID with dashes; "" outside a pod
  std::string runtime;       ///< "docker", "containerd", "cri-o", "podman", "kubernetes"
                             ///< (a pod cgroup without a recognised runtime), or "host"
  bool on_host() const { return container_id.empty() && pod_uid.empty(); }
};

/// Parses the text of /proc/PID/cgroup (one or more "hierarchy:controllers:path" lines) or a
/// bare cgroup path.
ContainerIdentity ParseContainerIdentity(std::string_view proc_cgroup);

/// The cgroup v2 path ("0::<path>") of /proc/PID/cgroup text, or "" when there is none.
std::string CgroupV2Path(std::string_view proc_cgroup);

enum class TargetKind { kPid, kComm, kPort, kCgroup, kAll };

struct TargetSpec {
  TargetKind kind = TargetKind::kAll;
  uint32_t pid = 0;        ///< kPid
  std::string comm;        ///< kComm
  uint16_t port = 0;       ///< kPort
  std::string cgroup_dir;  ///< kCgroup: the directory as given (under the cgroup2 mount)
  /// "pid:1234", "comm:nginx", "port:8080", "cgroup:/sys/fs/cgroup/x", "all".
  std::string Name() const;
  std::string KindName() const;  ///< "pid", "comm", "port", "cgroup", "all"
};

/// What the aggregator keeps about an observed process.
struct ProcessIdentity {
  int target = -1;  ///< index into the target list, -1 when none matched
  ContainerIdentity container;
  std::string cgroup;  ///< the cgroup v2 path, "" when unknown
  std::string comm;    ///< the process's name when classified, "" when unknown
};

/// Classifies processes against a target list by reading <proc_root>/PID/{stat,cgroup}.
/// Thread-safe (one internal mutex); each call reads a handful of small /proc files.
class ProcessClassifier {
 public:
  /// Processes listening on a TCP port (normally reqmon::ProcessesListeningOn).
  using ListenersFn = std::function<std::vector<int>(uint16_t port)>;

  ProcessClassifier(std::string proc_root, std::vector<TargetSpec> targets,
                    ListenersFn listeners = {});

  ProcessIdentity Classify(uint32_t pid);
  const std::vector<TargetSpec>& targets() const { return targets_; }
  std::vector<std::string> TargetNames() const;

  /// Where cgroup2 is mounted, read from /proc/self/mountinfo ("" when it is not): the
  /// --cgroup directories are compared with <mount point><process's cgroup path>.
  static std::string Cgroup2MountPoint();

 private:
  bool ListensOn(uint16_t port, uint32_t pid);

  std::string proc_root_;
  std::vector<TargetSpec> targets_;
  ListenersFn listeners_;
  std::string cg_mount_;
  std::vector<std::string> cg_dirs_;  ///< canonical --cgroup directories, one per target
  std::mutex mu_;
  struct PortCache {
    std::set<uint32_t> pids;
    int64_t read_at_ns = -1;
  };
  std::map<uint16_t, PortCache> ports_;
};

}  // namespace reqmon
