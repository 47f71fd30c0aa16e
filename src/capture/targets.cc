// SPDX-License-Identifier: MIT
#include "reqmon/capture/targets.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace reqmon {
namespace {

std::vector<pid_t> AllPids(const std::string& proc_root) {
  std::vector<pid_t> pids;
  DIR* d = opendir(proc_root.c_str());
  if (!d) return pids;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long v = std::strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0' && v > 0) pids.push_back(static_cast<pid_t>(v));
  }
  closedir(d);
  return pids;
}

// Parent PID from /proc/PID/stat ("pid (comm) state ppid ..."; comm may hold spaces or ')').
pid_t ParentPid(const std::string& proc_root, pid_t pid) {
  std::ifstream in(proc_root + "/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return -1;
  size_t close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 1));
  std::string state;
  pid_t ppid = -1;
  rest >> state >> ppid;
  return ppid;
}

// Inodes of TCP sockets in LISTEN state on `port` in one /proc/.../net/tcp{,6} table.
void ListeningInodes(const std::string& table, uint16_t port, std::unordered_set<uint64_t>* out) {
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string sl, local, remote, st, txrx, trtm, retr, uid, timeout, inode;
    f >> sl >> local >> remote >> st >> txrx >> trtm >> retr >> uid >> timeout >> inode;
    if (st != "0A") continue;  // TCP_LISTEN
    size_t colon = local.rfind(':');
    if (colon == std::string::npos) continue;
    if (std::strtoul(local.c_str() + colon + 1, nullptr, 16) != port) continue;
    out->insert(std::strtoull(inode.c_str(), nullptr, 10));
  }
}

}  // namespace

bool ProcessExists(const std::string& proc_root, pid_t pid) {
  struct stat st;
  return pid > 0 && stat((proc_root + "/" + std::to_string(pid)).c_str(), &st) == 0;
}

std::vector<pid_t> ProcessTree(const std::string& proc_root, pid_t root) {
  std::unordered_map<pid_t, std::vector<pid_t>> children;
  for (pid_t p : AllPids(proc_root)) children[ParentPid(proc_root, p)].push_back(p);
  std::vector<pid_t> out;
  if (!ProcessExists(proc_root, root)) return out;
  std::vector<pid_t> stack{root};
  std::unordered_set<pid_t> seen;
  while (!stack.empty()) {
    pid_t p = stack.back();
    stack.pop_back();
    if (!seen.insert(p).second) continue;
    out.push_back(p);
    auto it = children.find(p);
    if (it != children.end()) stack.insert(stack.end(), it->second.begin(), it->second.end());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string ProcessComm(const std::string& proc_root, pid_t pid) {
  std::ifstream in(proc_root + "/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

std::vector<pid_t> ProcessesByComm(const std::string& proc_root, const std::string& name) {
  std::vector<pid_t> out;
  std::string want = name.substr(0, 15);
  for (pid_t p : AllPids(proc_root))
    if (ProcessComm(proc_root, p) == want) out.push_back(p);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<pid_t> ProcessesListeningOn(const std::string& proc_root, uint16_t port) {
  // Listening sockets are looked up per network namespace (each process sees its own
  // /proc/PID/net/tcp), then matched against each process's socket fds.
  std::unordered_map<std::string, std::unordered_set<uint64_t>> by_netns;
  std::vector<pid_t> out;
  for (pid_t p : AllPids(proc_root)) {
    std::string base = proc_root + "/" + std::to_string(p);
    char ns[64] = {};
    ssize_t n = readlink((base + "/ns/net").c_str(), ns, sizeof(ns) - 1);
    std::string key = n > 0 ? std::string(ns, n) : base;
    auto it = by_netns.find(key);
    if (it == by_netns.end()) {
      std::unordered_set<uint64_t> inodes;
      ListeningInodes(base + "/net/tcp", port, &inodes);
      ListeningInodes(base + "/net/tcp6", port, &inodes);
      it = by_netns.emplace(key, std::move(inodes)).first;
    }
    if (it->second.empty()) continue;
    DIR* d = opendir((base + "/fd").c_str());
    if (!d) continue;
    bool match = false;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      char link[64] = {};
      ssize_t m = readlink((base + "/fd/" + e->d_name).c_str(), link, sizeof(link) - 1);
      if (m <= 8 || std::strncmp(link, "socket:[", 8) != 0) continue;
      if (it->second.count(std::strtoull(link + 8, nullptr, 10))) {
        match = true;
        break;
      }
    }
    closedir(d);
    if (match) out.push_back(p);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<uint64_t> CgroupTreeIds(const std::string& path, std::string* error) {
  std::vector<uint64_t> ids;
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    *error = "no cgroup directory at " + path;
    return ids;
  }
  if (access((path + "/cgroup.procs").c_str(), F_OK) != 0) {
    *error = path + " is not a cgroup v2 directory (it has no cgroup.procs)";
    return ids;
  }
  std::vector<std::string> stack{path};
  while (!stack.empty()) {
    std::string dir = stack.back();
    stack.pop_back();
    if (stat(dir.c_str(), &st) != 0) continue;
    ids.push_back(st.st_ino);
    DIR* d = opendir(dir.c_str());
    if (!d) continue;
    while (dirent* e = readdir(d)) {
      if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
      stack.push_back(dir + "/" + e->d_name);
    }
    closedir(d);
  }
  return ids;
}

}  // namespace reqmon
