// SPDX-License-Identifier: MIT
// Live, as root (label "bpf"): the container case without a container engine. A real
// `python3 -m http.server` runs in its own PID, mount and network namespaces (unshare and
// ip netns); it listens on the namespace's own loopback, and curl runs inside the same network
// namespace, so no traffic leaves it. The real reqmon binary observes it from the host by its
// host PID, and by a cgroup named the way containerd names a Kubernetes container's, and must
// count exactly what was driven and label the process with its container identity. A second
// test gives one reqmon three targets (a PID, a port, a cgroup) and checks that each request
// is attributed to the target that selected its server.
// Namespaces and cgroups are removed even when a check fails (RAII), and leftovers of crashed
// runs (named after a PID that is gone) are removed first.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <regex>
#include <set>

#include "../app/app_support.h"
#include "reqmon/capture/bpf_capture.h"

namespace reqmon {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const std::string kContainerId =
    "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";
const std::string kPodUid = "0b6f2d0e-8c1a-4e3b-9d5f-7a2c4e6b8d10";

std::string CgroupRoot() {
  if (fs::exists("/sys/fs/cgroup/unified/cgroup.procs")) return "/sys/fs/cgroup/unified";
  if (fs::exists("/sys/fs/cgroup/cgroup.procs") && fs::exists("/sys/fs/cgroup/cgroup.controllers"))
    return "/sys/fs/cgroup";
  return "";
}

bool PidAlive(pid_t p) { return p > 0 && (kill(p, 0) == 0 || errno != ESRCH); }

// Removes namespaces and cgroups left by earlier runs that crashed (their PID is gone).
void RemoveLeftovers() {
  static const std::regex name(R"(reqmon-test-(\d+))");
  std::smatch m;
  std::istringstream in(testing::Run("ip netns list 2>/dev/null"));
  std::string line;
  while (std::getline(in, line))
    if (std::regex_search(line, m, name) && !PidAlive(std::stoi(m[1])))
      testing::Run("ip netns del " + m[0].str() + " 2>/dev/null");
  std::string root = CgroupRoot();
  if (root.empty()) return;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    std::string n = e.path().filename().string();
    if (std::regex_match(n, m, name) && !PidAlive(std::stoi(m[1]))) {
      std::vector<fs::path> dirs;
      for (const auto& d : fs::recursive_directory_iterator(e.path(), ec))
        if (d.is_directory()) dirs.push_back(d.path());
      std::sort(dirs.rbegin(), dirs.rend());
      for (const auto& d : dirs) rmdir(d.c_str());
      rmdir(e.path().c_str());
    }
  }
}

// A network namespace with its loopback up; deleted on destruction.
class NetNs {
 public:
  explicit NetNs(const std::string& tag) : name_("reqmon-test-" + std::to_string(getpid()) + tag) {
    int st = -1;
    testing::Run("ip netns add " + name_ + " 2>&1", &st);
    ok_ = st == 0;
    testing::Run("ip netns exec " + name_ + " ip link set lo up 2>&1", &st);
    ok_ = ok_ && st == 0;
  }
  ~NetNs() { testing::Run("ip netns del " + name_ + " 2>/dev/null"); }
  const std::string& name() const { return name_; }
  bool ok() const { return ok_; }
  std::string Exec(const std::string& cmd) const { return "ip netns exec " + name_ + " " + cmd; }

 private:
  std::string name_;
  bool ok_ = false;
};

// A cgroup v2 directory (with sub-directories `leaf`); processes left in it are moved back to
// the root and the directories removed on destruction.
class CgroupDir {
 public:
  CgroupDir(const std::string& root, const std::string& tag, const std::string& leaf = "")
      : root_(root), top_(fs::path(root) / ("reqmon-test-" + std::to_string(getpid()) + tag)) {
    leaf_ = leaf.empty() ? top_ : top_ / leaf;
    std::error_code ec;
    fs::create_directories(leaf_, ec);
    ok_ = !ec;
  }
  ~CgroupDir() {
    for (int i = 0; i < 50; ++i) {
      std::string procs = testing::ReadFile(leaf_ / "cgroup.procs");
      if (procs.empty()) break;
      std::istringstream in(procs);
      std::string p;
      while (in >> p) std::ofstream(fs::path(root_) / "cgroup.procs") << p << "\n";
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (fs::path d = leaf_; d.string().size() >= top_.string().size(); d = d.parent_path())
      rmdir(d.c_str());
  }
  bool ok() const { return ok_; }
  const fs::path& top() const { return top_; }
  bool Move(pid_t pid) const {
    std::ofstream f(leaf_ / "cgroup.procs");
    f << pid << "\n";
    f.flush();
    return f.good();
  }

 private:
  std::string root_;
  fs::path top_, leaf_;
  bool ok_ = false;
};

// python3 -m http.server as PID 1 of its own PID namespace, with its own mount namespace (and
// /proc), in `ns`'s network namespace, on 127.0.0.1:8080 there.
class NamespacedServer {
 public:
  NamespacedServer(const NetNs& ns, const fs::path& dir) : ns_(ns), dir_(dir / "docroot") {
    fs::create_directories(dir_);
    std::ofstream(dir_ / "index.html") << "<html>hello from a namespace</html>\n";
    proc_.Start({"ip", "netns", "exec", ns.name(), "unshare", "--pid", "--fork", "--mount-proc",
                 "--kill-child", "python3", "-m", "http.server", "8080", "--bind", "127.0.0.1",
                 "--directory", dir_.string()},
                (dir / "server.log").string());
    // The host PID of the server: the child of unshare, once it has exec'd python3.
    for (int i = 0; i < 200 && host_pid_ <= 0; ++i) {
      std::string kids = testing::ReadFile("/proc/" + std::to_string(proc_.pid()) + "/task/" +
                                           std::to_string(proc_.pid()) + "/children");
      int kid = std::atoi(kids.c_str());
      if (kid > 0 && testing::ReadFile("/proc/" + std::to_string(kid) + "/comm").rfind("python", 0) == 0)
        host_pid_ = kid;
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    for (int i = 0; i < 200 && host_pid_ > 0; ++i) {
      if (Get({"/"}) == 1) {
        ready_ = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~NamespacedServer() {
    if (host_pid_ > 0) kill(host_pid_, SIGKILL);  // PID 1 of its namespace ignores SIGTERM
    proc_.Stop();
  }
  bool ready() const { return ready_; }
  pid_t host_pid() const { return host_pid_; }
  // Fetches the paths over one keep-alive connection from inside the network namespace;
  // returns how many got a response.
  int Get(const std::vector<std::string>& paths) const {
    std::string args;
    for (const auto& p : paths) args += " -o /dev/null 'http://127.0.0.1:8080" + p + "'";
    std::string out = testing::Run(ns_.Exec("curl -s --max-time 10 -w 'RQCODE:%{http_code}\\n'" +
                                            args + " 2>/dev/null"));
    int n = 0;
    for (size_t at = out.find("RQCODE:"); at != std::string::npos; at = out.find("RQCODE:", at + 1))
      n += out.compare(at + 7, 3, "000") != 0;
    return n;
  }

 private:
  const NetNs& ns_;
  fs::path dir_;
  testing::Process proc_;
  pid_t host_pid_ = -1;
  bool ready_ = false;
};

std::string NsLink(pid_t pid, const char* ns) {
  std::error_code ec;
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/" + ns, ec).string();
}

class NamespaceTest : public testing::LiveReqmonTest {
 protected:
  void SetUp() override {
    testing::LiveReqmonTest::SetUp();
    if (IsSkipped()) return;
    for (const char* b : {"ip", "unshare", "python3", "curl"})
      if (!testing::HaveBinary(b)) GTEST_SKIP() << b << " is not installed";
    RemoveLeftovers();
  }
  void ExpectInOwnNamespaces(pid_t host_pid) {
    for (const char* ns : {"pid", "mnt", "net"})
      EXPECT_NE(NsLink(host_pid, ns), NsLink(getpid(), ns)) << ns;
    std::string status = testing::ReadFile("/proc/" + std::to_string(host_pid) + "/status");
    std::smatch m;
    static const std::regex nspid(R"(NSpid:\s+(\d+)\s+(\d+)\n)");
    ASSERT_TRUE(std::regex_search(status, m, nspid)) << status;
    EXPECT_EQ(std::stoi(m[1]), host_pid);
    EXPECT_EQ(m[2], "1");  // PID 1 inside its namespace
  }
  // Drives 15 hits and 4 misses; returns the paths' count that got answers.
  static int Drive(const NamespacedServer& srv) {
    std::vector<std::string> paths;
    for (int i = 0; i < 15; ++i) paths.push_back("/index.html?n=" + std::to_string(i));
    for (int i = 0; i < 4; ++i) paths.push_back("/missing-" + std::to_string(i));
    return srv.Get(paths);
  }
};

TEST_F(NamespaceTest, ObservedFromTheHostByHostPid) {
  NetNs ns("p");
  ASSERT_TRUE(ns.ok());
  NamespacedServer srv(ns, dir_);
  ASSERT_TRUE(srv.ready()) << testing::ReadFile(dir_ / "server.log");
  ExpectInOwnNamespaces(srv.host_pid());
  // The server is not reachable from the host's loopback: its port is in its own namespace.
  EXPECT_FALSE(testing::PortOpen(8080) &&
               testing::Run("ss -Hltnp 'sport = :8080' 2>/dev/null").find(
                   "pid=" + std::to_string(srv.host_pid())) != std::string::npos);

  StartReqmon({"--pid", std::to_string(srv.host_pid())});
  ASSERT_EQ(Drive(srv), 19);
  json s = StatsWhenTotal(19);
  EXPECT_EQ(s["total_requests"], 19);
  EXPECT_EQ(s["status_codes"], json::parse(R"({"200": 15, "404": 4})"));
  EXPECT_EQ(s["incomplete_requests"], 0);
  ASSERT_EQ(s["processes"].size(), 1u) << s["processes"].dump();
  const json& p = s["processes"][0];
  EXPECT_EQ(p["pid"], srv.host_pid());  // host PIDs, not the namespace's 1
  EXPECT_EQ(p["count"], 19);
  EXPECT_EQ(p["target"], "pid:" + std::to_string(srv.host_pid()));
  EXPECT_EQ(p["container_id"], "");
  ASSERT_EQ(s["targets"].size(), 1u);
  EXPECT_EQ(s["targets"][0]["count"], 19);
  // Local addresses are the namespace's loopback.
  json r = testing::GetJson(Url("/requests?limit=19"));
  ASSERT_EQ(r["requests"].size(), 19u);
  // (the port only: the address part is checked by the capture tests)
  for (const auto& q : r["requests"]) EXPECT_TRUE(q["local"].get<std::string>().ends_with(":8080")) << q;
}

TEST_F(NamespaceTest, ObservedFromTheHostByCgroupWithContainerIdentity) {
  std::string root = CgroupRoot();
  if (root.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy mounted";
  NetNs ns("c");
  ASSERT_TRUE(ns.ok());
  // Named like a Kubernetes container's cgroup under containerd's systemd driver.
  std::string pod = kPodUid;
  std::replace(pod.begin(), pod.end(), '-', '_');
  CgroupDir cg(root, "c", "kubepods-besteffort-pod" + pod + ".slice/cri-containerd-" +
                               kContainerId + ".scope");
  ASSERT_TRUE(cg.ok());
  NamespacedServer srv(ns, dir_);
  ASSERT_TRUE(srv.ready()) << testing::ReadFile(dir_ / "server.log");
  ExpectInOwnNamespaces(srv.host_pid());
  ASSERT_TRUE(cg.Move(srv.host_pid()));
  testing::PythonHttpServer outside;  // same host, another cgroup: not observed

  StartReqmon({"--cgroup", cg.top().string()});
  ASSERT_EQ(Drive(srv), 19);
  std::vector<std::string> out_urls(6, outside.url("/index.html"));
  ASSERT_EQ(testing::Curl(out_urls, true), 6);
  json s = StatsWhenTotal(19);
  EXPECT_EQ(s["total_requests"], 19);
  EXPECT_EQ(s["status_codes"], json::parse(R"({"200": 15, "404": 4})"));
  ASSERT_EQ(s["processes"].size(), 1u) << s["processes"].dump();
  const json& p = s["processes"][0];
  EXPECT_EQ(p["pid"], srv.host_pid());
  EXPECT_EQ(p["container_id"], kContainerId);
  EXPECT_EQ(p["pod_uid"], kPodUid);
  EXPECT_EQ(p["container_runtime"], "containerd");
  EXPECT_EQ(p["target"], "cgroup:" + cg.top().string());
  int code = 0;
  std::string prom = testing::HttpGet(Url("/metrics/prometheus"), &code);
  ASSERT_EQ(code, 200);
  EXPECT_NE(prom.find("reqmon_process_http_requests_total{pid=\"" + std::to_string(srv.host_pid()) +
                      "\",comm=\"python3\",status=\"2xx\",target=\"cgroup:" + cg.top().string() +
                      "\",container_id=\"" + kContainerId + "\",pod_uid=\"" + kPodUid + "\"} 15\n"),
            std::string::npos)
      << prom;
  // Stop reqmon before the server goes, so the cgroup empties and can be removed.
  reqmon_.reset();
}

TEST_F(NamespaceTest, SeveralTargetsAreKeptApart) {
  std::string root = CgroupRoot();
  if (root.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy mounted";
  NetNs ns("m");
  ASSERT_TRUE(ns.ok());
  CgroupDir cg(root, "m", "docker-" + kContainerId + ".scope");
  ASSERT_TRUE(cg.ok());
  NamespacedServer srv(ns, dir_);
  ASSERT_TRUE(srv.ready()) << testing::ReadFile(dir_ / "server.log");
  ASSERT_TRUE(cg.Move(srv.host_pid()));
  testing::Nginx nginx;              // --pid: its master; the workers are its children
  testing::PythonHttpServer py;      // --port
  StartReqmon({"--pid", std::to_string(nginx.master_pid()), "--port", std::to_string(py.port()),
               "--cgroup", cg.top().string()});
  std::vector<std::string> n_urls, p_urls;
  for (int i = 0; i < 12; ++i) n_urls.push_back(nginx.url("/api/n" + std::to_string(i)));
  for (int i = 0; i < 3; ++i) n_urls.push_back(nginx.url("/status/500"));
  for (int i = 0; i < 7; ++i) p_urls.push_back(py.url("/index.html"));
  ASSERT_EQ(testing::Curl(n_urls, true), 15);
  ASSERT_EQ(testing::Curl(p_urls, false), 7);
  ASSERT_EQ(Drive(srv), 19);
  json s = StatsWhenTotal(41);
  EXPECT_EQ(s["total_requests"], 41);
  const std::string tn = "pid:" + std::to_string(nginx.master_pid()),
                    tp = "port:" + std::to_string(py.port()), tc = "cgroup:" + cg.top().string();
  ASSERT_EQ(s["targets"].size(), 3u) << s["targets"].dump();  // no "other": all attributed
  EXPECT_EQ(s["targets"][0]["target"], tn);
  EXPECT_EQ(s["targets"][0]["count"], 15);
  EXPECT_EQ(s["targets"][0]["status_classes"]["5xx"], 3);
  EXPECT_EQ(s["targets"][0]["status_classes"]["2xx"], 12);
  EXPECT_GE(s["targets"][0]["processes"], 1);
  EXPECT_EQ(s["targets"][1]["target"], tp);
  EXPECT_EQ(s["targets"][1]["count"], 7);
  EXPECT_EQ(s["targets"][1]["processes"], 1);
  EXPECT_EQ(s["targets"][2]["target"], tc);
  EXPECT_EQ(s["targets"][2]["kind"], "cgroup");
  EXPECT_EQ(s["targets"][2]["count"], 19);
  EXPECT_EQ(s["targets"][2]["status_classes"]["4xx"], 4);
  for (const auto& p : s["processes"]) {
    if (p["pid"] == srv.host_pid()) {
      EXPECT_EQ(p["target"], tc);
      EXPECT_EQ(p["container_id"], kContainerId);
      EXPECT_EQ(p["container_runtime"], "docker");
    } else if (p["pid"] == py.pid()) {
      EXPECT_EQ(p["target"], tp);
    } else {
      EXPECT_EQ(p["target"], tn) << p.dump();
    }
  }
  int code = 0;
  std::string prom = testing::HttpGet(Url("/metrics/prometheus"), &code);
  ASSERT_EQ(code, 200);
  for (const auto& [t, cls, n] : std::vector<std::tuple<std::string, std::string, int>>{
           {tn, "2xx", 12}, {tn, "5xx", 3}, {tp, "2xx", 7}, {tc, "2xx", 15}, {tc, "4xx", 4}})
    EXPECT_NE(prom.find("reqmon_target_http_requests_total{target=\"" + t + "\",status=\"" + cls +
                        "\"} " + std::to_string(n) + "\n"),
              std::string::npos)
        << t << " " << cls;
  EXPECT_NE(prom.find("reqmon_http_requests_total{method=\"GET\",route=\"/index.html\",status=\"2xx\",target=\"" + tp + "\"} 7\n"),
            std::string::npos) << prom.substr(0, 3000);
  reqmon_.reset();
}

}  // namespace
}  // namespace reqmon
