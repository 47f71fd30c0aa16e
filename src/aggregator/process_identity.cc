// SPDX-License-Identifier: MIT
#include "reqmon/aggregator/process_identity.h"

#include <time.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace reqmon {

namespace {

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsContainerId(std::string_view s) { return s.size() == 64 && IsHex(s); }

// "pod" + UID (8-4-4-4-12 hex, '-' or '_' separated) somewhere in a component; the UID with
// dashes, or "".
std::string PodUid(std::string_view comp) {
  for (size_t at = comp.find("pod"); at != std::string_view::npos; at = comp.find("pod", at + 1)) {
    std::string_view rest = comp.substr(at + 3);
    if (rest.size() < 36) continue;
    std::string uid(rest.substr(0, 36));
    bool ok = true;
    for (size_t i = 0; i < 36 && ok; ++i) {
      char& c = uid[i];
      if (i == 8 || i == 13 || i == 18 || i == 23) {
        ok = c == '-' || c == '_';
        c = '-';
      } else {
        ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      }
    }
    // The UID ends the component or is followed by ".slice".
    if (ok && (rest.size() == 36 || rest.substr(36) == ".slice")) return uid;
  }
  return "";
}

// The container id in one path component, with the runtime its prefix names.
bool ComponentId(std::string_view comp, std::string* id, std::string* runtime) {
  if (comp.size() > 6 && comp.substr(comp.size() - 6) == ".scope") comp.remove_suffix(6);
  static const std::pair<std::string_view, std::string_view> kPrefixes[] = {
      {"cri-containerd-", "containerd"}, {"containerd-", "containerd"}, {"docker-", "docker"},
      {"crio-", "cri-o"},                {"libpod-", "podman"}};
  for (const auto& [prefix, rt] : kPrefixes) {
    if (comp.size() == prefix.size() + 64 && comp.substr(0, prefix.size()) == prefix &&
        IsContainerId(comp.substr(prefix.size()))) {
      *id = std::string(comp.substr(prefix.size()));
      *runtime = std::string(rt);
      return true;
    }
  }
  if (IsContainerId(comp)) {
    *id = std::string(comp);
    runtime->clear();
    return true;
  }
  return false;
}

ContainerIdentity ParsePath(std::string_view path) {
  ContainerIdentity out;
  bool saw_docker = false, saw_libpod = false;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view comp = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (comp.empty() || comp == "..") continue;
    if (comp == "docker") saw_docker = true;
    if (comp.find("libpod") != std::string_view::npos) saw_libpod = true;
    if (std::string uid = PodUid(comp); !uid.empty()) out.pod_uid = uid;
    std::string id, rt;
    if (ComponentId(comp, &id, &rt)) {  // the deepest one wins (nested containers)
      out.container_id = id;
      out.runtime = rt;
    }
  }
  if (!out.container_id.empty() && out.runtime.empty()) {
    out.runtime = !out.pod_uid.empty() ? "kubernetes"
                  : saw_docker         ? "docker"
                  : saw_libpod         ? "podman"
                                       : "unknown";
  }
  if (out.container_id.empty() && !out.pod_uid.empty()) out.runtime = "kubernetes";
  if (out.on_host()) out.runtime = "host";
  return out;
}

std::string ReadSmall(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t MonoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// comm and ppid from /proc/PID/stat ("pid (comm) state ppid ...").
bool ReadStat(const std::string& proc_root, uint32_t pid, std::string* comm, uint32_t* ppid) {
  std::string s = ReadSmall(proc_root + "/" + std::to_string(pid) + "/stat");
  size_t open = s.find('('), close = s.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return false;
  *comm = s.substr(open + 1, close - open - 1);
  std::istringstream rest(s.substr(close + 1));
  std::string state;
  long pp = 0;
  if (!(rest >> state >> pp)) return false;
  *ppid = pp > 0 ? static_cast<uint32_t>(pp) : 0;
  return true;
}

}  // namespace

// Calls fn(line) for each line of text; stops early when fn returns true.
template <typename Fn>
void ForEachLine(std::string_view text, Fn fn) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    if (fn(text.substr(pos, nl - pos))) return;
    pos = nl + 1;
  }
}

std::string CgroupV2Path(std::string_view text) {
  std::string out;
  ForEachLine(text, [&](std::string_view line) {
    if (line.substr(0, 3) != "0::") return false;
    out = std::string(line.substr(3));
    return true;
  });
  return out;
}

ContainerIdentity ParseContainerIdentity(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (!text.empty() && text.front() == '/') return ParsePath(text);  // a bare path
  // The v2 line first, then the v1 lines (hybrid hosts put containers in v1 only).
  std::vector<std::string_view> paths;
  std::string_view v2;
  bool have_v2 = false;
  ForEachLine(text, [&](std::string_view line) {
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) return false;
    std::string_view path = line.substr(c2 + 1);
    if (line.substr(0, c2 + 1) == "0::") {
      v2 = path;
      have_v2 = true;
    } else {
      paths.push_back(path);
    }
    return false;
  });
  if (have_v2) {
    ContainerIdentity id = ParsePath(v2);
    if (!id.on_host()) return id;
  }
  for (std::string_view p : paths) {
    ContainerIdentity id = ParsePath(p);
    if (!id.on_host()) return id;
  }
  ContainerIdentity host;
  host.runtime = "host";
  return host;
}

std::string TargetSpec::KindName() const {
  switch (kind) {
    case TargetKind::kPid: return "pid";
    case TargetKind::kComm: return "comm";
    case TargetKind::kPort: return "port";
    case TargetKind::kCgroup: return "cgroup";
    case TargetKind::kAll: break;
  }
  return "all";
}

std::string TargetSpec::Name() const {
  switch (kind) {
    case TargetKind::kPid: return "pid:" + std::to_string(pid);
    case TargetKind::kComm: return "comm:" + comm;
    case TargetKind::kPort: return "port:" + std::to_string(port);
    case TargetKind::kCgroup: return "cgroup:" + cgroup_dir;
    case TargetKind::kAll: break;
  }
  return "all";
}

std::string ProcessClassifier::Cgroup2MountPoint() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream after(line.substr(dash + 3));
    std::string fstype;
    after >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream before(line.substr(0, dash));
    std::string id, parent, dev, root, mount;
    if (before >> id >> parent >> dev >> root >> mount) return mount;
  }
  return "";
}

ProcessClassifier::ProcessClassifier(std::string proc_root, std::vector<TargetSpec> targets,
                                     ListenersFn listeners)
    : proc_root_(std::move(proc_root)), targets_(std::move(targets)),
      listeners_(std::move(listeners)) {
  namespace fs = std::filesystem;
  cg_dirs_.resize(targets_.size());
  bool any_cgroup = false;
  for (size_t i = 0; i < targets_.size(); ++i) {
    if (targets_[i].kind != TargetKind::kCgroup) continue;
    any_cgroup = true;
    std::error_code ec;
    fs::path p = fs::weakly_canonical(targets_[i].cgroup_dir, ec);
    std::string s = ec ? targets_[i].cgroup_dir : p.string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    cg_dirs_[i] = s;
  }
  if (any_cgroup) cg_mount_ = Cgroup2MountPoint();
}

std::vector<std::string> ProcessClassifier::TargetNames() const {
  std::vector<std::string> out;
  for (const auto& t : targets_) out.push_back(t.Name());
  return out;
}

bool ProcessClassifier::ListensOn(uint16_t port, uint32_t pid) {
  if (!listeners_) return false;
  PortCache& c = ports_[port];
  const int64_t now = MonoNs();
  if (c.pids.count(pid)) return true;
  if (c.read_at_ns >= 0 && now - c.read_at_ns < 1000000000) return false;
  c.pids.clear();
  for (int p : listeners_(port)) c.pids.insert(static_cast<uint32_t>(p));
  c.read_at_ns = now;
  return c.pids.count(pid) > 0;
}

ProcessIdentity ProcessClassifier::Classify(uint32_t pid) {
  ProcessIdentity out;
  const std::string cg_text = ReadSmall(proc_root_ + "/" + std::to_string(pid) + "/cgroup");
  out.container = ParseContainerIdentity(cg_text);
  out.cgroup = CgroupV2Path(cg_text);
  out.comm = ReadSmall(proc_root_ + "/" + std::to_string(pid) + "/comm");
  while (!out.comm.empty() && out.comm.back() == '\n') out.comm.pop_back();
  if (targets_.empty()) return out;
  if (targets_.size() == 1) {
    out.target = 0;
    return out;
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::string full_cg;
  if (!cg_mount_.empty() && !out.cgroup.empty() && out.cgroup.rfind("/..", 0) != 0) {
    full_cg = cg_mount_ + (out.cgroup == "/" ? "" : out.cgroup);
  }
  uint32_t cur = pid;
  for (int depth = 0; depth < 64 && cur > 0; ++depth) {
    std::string comm;
    uint32_t ppid = 0;
    const bool have_stat = ReadStat(proc_root_, cur, &comm, &ppid);
    for (size_t i = 0; i < targets_.size(); ++i) {
      const TargetSpec& t = targets_[i];
      bool match = false;
      switch (t.kind) {
        case TargetKind::kPid: match = cur == t.pid; break;
        case TargetKind::kComm: match = have_stat && comm == t.comm.substr(0, 15); break;
        case TargetKind::kPort: match = ListensOn(t.port, cur); break;
        case TargetKind::kCgroup:
          match = depth == 0 && !full_cg.empty() &&
                  (full_cg == cg_dirs_[i] || full_cg.rfind(cg_dirs_[i] + "/", 0) == 0);
          break;
        case TargetKind::kAll: break;
      }
      if (match) {
        out.target = static_cast<int>(i);
        return out;
      }
    }
    if (!have_stat || ppid == cur) break;
    cur = ppid;
  }
  for (size_t i = 0; i < targets_.size(); ++i) {
    if (targets_[i].kind == TargetKind::kAll) {
      out.target = static_cast<int>(i);
      break;
    }
  }
  return out;
}

}  // namespace reqmon
