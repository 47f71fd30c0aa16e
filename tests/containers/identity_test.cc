// SPDX-License-Identifier: MIT
// Container identity from /proc/PID/cgroup text as container runtimes and Kubernetes write it,
// target attribution through the parent chain on a fake /proc, and the aggregator's per-target
// figures and labels.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "reqmon/aggregator/aggregator.h"
#include "reqmon/aggregator/process_identity.h"

namespace reqmon {
namespace {

namespace fs = std::filesystem;

const std::string kId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kId2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
const std::string kUid = "6f1c2e3d-4b5a-4c7d-8e9f-0a1b2c3d4e5f";

// A target of one kind with one field set (the others keep their defaults).
template <typename M = uint32_t, typename V = uint32_t>
TargetSpec Spec(TargetKind kind, M TargetSpec::*field = nullptr, V value = {}) {
  TargetSpec t;
  t.kind = kind;
  if (field != nullptr) t.*field = value;
  return t;
}

TEST(ContainerIdentity, ContainerdUnderKubepodsSystemdDriver) {
  auto id = ParseContainerIdentity(
      "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f1c2e3d_4b5a_4c7d_8e9f_"
      "0a1b2c3d4e5f.slice/cri-containerd-" + kId + ".scope\n");
  EXPECT_EQ(id.container_id, kId);
  EXPECT_EQ(id.pod_uid, kUid);
  EXPECT_EQ(id.runtime, "containerd");
  EXPECT_FALSE(id.on_host());
}

TEST(ContainerIdentity, BestEffortAndGuaranteedPods) {
  auto be = ParseContainerIdentity(
      "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod6f1c2e3d_4b5a_4c7d_"
      "8e9f_0a1b2c3d4e5f.slice/crio-" + kId + ".scope");
  EXPECT_EQ(be.pod_uid, kUid);
  EXPECT_EQ(be.container_id, kId);
  EXPECT_EQ(be.runtime, "cri-o");
  auto g = ParseContainerIdentity("0::/kubepods.slice/kubepods-pod6f1c2e3d_4b5a_4c7d_8e9f_"
                                  "0a1b2c3d4e5f.slice/docker-" + kId + ".scope\n");
  EXPECT_EQ(g.pod_uid, kUid);
  EXPECT_EQ(g.runtime, "docker");
}

TEST(ContainerIdentity, KubepodsCgroupfsDriver) {
  auto id = ParseContainerIdentity("0::/kubepods/burstable/pod" + kUid + "/" + kId + "\n");
  EXPECT_EQ(id.pod_uid, kUid);
  EXPECT_EQ(id.container_id, kId);
  EXPECT_EQ(id.runtime, "kubernetes");
}

TEST(ContainerIdentity, PodCgroupWithoutContainer) {
  auto id = ParseContainerIdentity(
      "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f1c2e3d_4b5a_4c7d_8e9f_"
      "0a1b2c3d4e5f.slice\n");
  EXPECT_EQ(id.pod_uid, kUid);
  EXPECT_EQ(id.container_id, "");
  EXPECT_EQ(id.runtime, "kubernetes");
}

TEST(ContainerIdentity, DockerCgroupfsAndSystemd) {
  auto a = ParseContainerIdentity("0::/docker/" + kId + "\n");
  EXPECT_EQ(a.container_id, kId);
  EXPECT_EQ(a.pod_uid, "");
  EXPECT_EQ(a.runtime, "docker");
  auto b = ParseContainerIdentity("0::/system.slice/docker-" + kId + ".scope\n");
  EXPECT_EQ(b.container_id, kId);
  EXPECT_EQ(b.runtime, "docker");
  auto c = ParseContainerIdentity("0::/user.slice/user-1000.slice/user@1000.service/user.slice/"
                                  "libpod-" + kId + ".scope/container\n");
  EXPECT_EQ(c.container_id, kId);
  EXPECT_EQ(c.runtime, "podman");
}

TEST(ContainerIdentity, HybridHostWithContainerInV1Only) {
  // cgroup v1 + an unused unified hierarchy: the v2 line is "/", the id is in the v1 lines.
  auto id = ParseContainerIdentity(
      "12:pids:/docker/" + kId + "\n11:memory:/docker/" + kId + "\n1:name=systemd:/docker/" +
      kId + "\n0::/\n");
  EXPECT_EQ(id.container_id, kId);
  EXPECT_EQ(id.runtime, "docker");
}

TEST(ContainerIdentity, NestedContainersTakeTheInnermost) {
  auto id = ParseContainerIdentity("0::/docker/" + kId + "/docker/" + kId2 + "\n");
  EXPECT_EQ(id.container_id, kId2);
}

TEST(ContainerIdentity, SeenFromAnotherCgroupNamespace) {
  // reqmon in a DaemonSet pod reading the host's /proc: paths relative to its own namespace.
  auto id = ParseContainerIdentity(
      "0::/../../kubepods-besteffort-pod6f1c2e3d_4b5a_4c7d_8e9f_0a1b2c3d4e5f.slice/"
      "cri-containerd-" + kId + ".scope\n");
  EXPECT_EQ(id.container_id, kId);
  EXPECT_EQ(id.pod_uid, kUid);
}

TEST(ContainerIdentity, HostProcesses) {
  for (const std::string text :
       {"0::/\n", "0::/system.slice/nginx.service\n", "0::/user.slice/user-0.slice/session-3.scope\n",
        "4:memory:/process_api/5bd3560f44565c06553bba9ab7acd840\n0::/\n", "", "garbage"}) {
    auto id = ParseContainerIdentity(text);
    EXPECT_TRUE(id.on_host()) << text;
    EXPECT_EQ(id.container_id, "") << text;
    EXPECT_EQ(id.pod_uid, "") << text;
    EXPECT_EQ(id.runtime, "host") << text;
  }
  // Near misses: 63 hex digits, upper case, a 64-hex prefix in a longer name.
  EXPECT_TRUE(ParseContainerIdentity("0::/docker/" + kId.substr(1) + "\n").on_host());
  std::string upper = kId;
  for (auto& c : upper) c = static_cast<char>(std::toupper(c));
  EXPECT_TRUE(ParseContainerIdentity("0::/docker/" + upper + "\n").on_host());
  EXPECT_TRUE(ParseContainerIdentity("0::/system.slice/docker-" + kId + "x.scope\n").on_host());
}

TEST(ContainerIdentity, CgroupV2PathLine) {
  EXPECT_EQ(CgroupV2Path("5:pids:/a\n0::/system.slice/x.service\n"), "/system.slice/x.service");
  EXPECT_EQ(CgroupV2Path("5:pids:/a\n"), "");
}

// A fake /proc: each process has stat (comm, ppid) and cgroup.
class FakeProc {
 public:
  FakeProc() {
    char tmpl[] = "/tmp/reqmon-fakeproc-XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  ~FakeProc() { fs::remove_all(root_); }
  void Add(uint32_t pid, uint32_t ppid, const std::string& comm, const std::string& cgroup) {
    fs::create_directories(root_ / std::to_string(pid));
    std::ofstream(root_ / std::to_string(pid) / "stat")
        << pid << " (" << comm << ") S " << ppid << " " << pid << " 0 0 -1 4194560 0 0\n";
    std::ofstream(root_ / std::to_string(pid) / "cgroup") << "0::" << cgroup << "\n";
  }
  std::string root() const { return root_.string(); }

 private:
  fs::path root_;
};

TEST(ProcessClassifier, WalksTheParentChainToTheTargetThatSelectedIt) {
  FakeProc proc;
  proc.Add(1, 0, "systemd", "/init.scope");
  proc.Add(100, 1, "nginx", "/system.slice/nginx.service");      // master
  proc.Add(101, 100, "nginx", "/system.slice/nginx.service");    // worker
  proc.Add(200, 1, "gunicorn", "/system.slice/app.service");     // master
  proc.Add(201, 200, "python3", "/system.slice/app.service");    // worker, renamed
  proc.Add(300, 1, "containerd-shim", "/system.slice/containerd.service");
  proc.Add(301, 300, "python3", "/kubepods/burstable/pod" + kUid + "/" + kId);
  proc.Add(400, 1, "node", "/system.slice/other.service");
  proc.Add(500, 1, "sshd", "/system.slice/ssh.service");
  std::vector<TargetSpec> t = {Spec(TargetKind::kPid, &TargetSpec::pid, 100),
                               Spec(TargetKind::kComm, &TargetSpec::comm, "gunicorn"),
                               Spec(TargetKind::kPort, &TargetSpec::port, 8080),
                               Spec(TargetKind::kCgroup, &TargetSpec::cgroup_dir,
                                    "/sys/fs/cgroup/kubepods")};
  int port_lookups = 0;
  ProcessClassifier c(proc.root(), t, [&](uint16_t port) {
    ++port_lookups;
    return port == 8080 ? std::vector<int>{400} : std::vector<int>{};
  });
  EXPECT_EQ(c.Classify(100).target, 0);
  EXPECT_EQ(c.Classify(101).target, 0);   // descendant of --pid 100
  EXPECT_EQ(c.Classify(200).target, 1);
  EXPECT_EQ(c.Classify(201).target, 1);   // parent named gunicorn
  EXPECT_EQ(c.Classify(400).target, 2);   // listens on 8080
  EXPECT_EQ(c.Classify(500).target, -1);  // nothing selected it
  EXPECT_EQ(c.Classify(999).target, -1);  // gone
  EXPECT_LE(port_lookups, 2);             // cached for a second
  auto id = c.Classify(301);
  EXPECT_EQ(id.container.container_id, kId);
  EXPECT_EQ(id.container.pod_uid, kUid);
  EXPECT_EQ(id.cgroup, "/kubepods/burstable/pod" + kUid + "/" + kId);
  EXPECT_EQ(c.TargetNames(), (std::vector<std::string>{"pid:100", "comm:gunicorn", "port:8080",
                                                        "cgroup:/sys/fs/cgroup/kubepods"}));
  const std::string mount = ProcessClassifier::Cgroup2MountPoint();
  if (!mount.empty()) {
    std::vector<TargetSpec> tc = {Spec(TargetKind::kPid, &TargetSpec::pid, 100),
                                  Spec(TargetKind::kCgroup, &TargetSpec::cgroup_dir,
                                       mount + "/kubepods")};
    ProcessClassifier cc(proc.root(), tc);
    EXPECT_EQ(cc.Classify(301).target, 1);  // in <mount>/kubepods/...
    EXPECT_EQ(cc.Classify(400).target, -1);
  }
}

TEST(ProcessClassifier, AllIsTheFallbackAndASingleTargetTakesEverything) {
  FakeProc proc;
  proc.Add(1, 0, "systemd", "/init.scope");
  proc.Add(10, 1, "nginx", "/");
  proc.Add(20, 1, "httpd", "/");
  ProcessClassifier c(proc.root(), {Spec(TargetKind::kComm, &TargetSpec::comm, "httpd"),
                                    Spec(TargetKind::kAll)});
  EXPECT_EQ(c.Classify(20).target, 0);
  EXPECT_EQ(c.Classify(10).target, 1);
  ProcessClassifier single(proc.root(), {Spec(TargetKind::kComm, &TargetSpec::comm, "httpd")});
  EXPECT_EQ(single.Classify(10).target, 0);
  ProcessClassifier none(proc.root(), {});
  EXPECT_EQ(none.Classify(10).target, -1);
}

HttpTransaction Tx(uint32_t pid, int status, double ms) {
  HttpTransaction tx;
  tx.pid = pid;
  tx.method = "GET";
  tx.path = "/x";
  tx.status = status;
  tx.request_start_ns = 1000000000ULL;
  tx.response_end_ns = tx.request_start_ns + static_cast<uint64_t>(ms * 1e6);
  return tx;
}

TEST(AggregatorIdentification, PerTargetFiguresAndLabels) {
  Aggregator agg;
  std::vector<TargetSpec> t = {Spec(TargetKind::kPid, &TargetSpec::pid, 100),
                               Spec(TargetKind::kComm, &TargetSpec::comm, "py")};
  agg.SetIdentification(t, [](uint32_t pid) {
    ProcessIdentity id;
    id.target = pid < 200 ? 0 : pid < 300 ? 1 : -1;
    if (pid == 201) {
      id.container.container_id = kId;
      id.container.pod_uid = kUid;
      id.container.runtime = "containerd";
    } else {
      id.container.runtime = "host";
    }
    return id;
  });
  for (int i = 0; i < 3; ++i) agg.OnTransaction(Tx(101, 200, 2));
  agg.OnTransaction(Tx(102, 500, 2));
  for (int i = 0; i < 4; ++i) agg.OnTransaction(Tx(201, 404, 30));
  agg.OnTransaction(Tx(300, 200, 1));
  auto s = agg.StatsJson();
  ASSERT_TRUE(s.contains("targets"));
  ASSERT_EQ(s["targets"].size(), 3u);
  EXPECT_EQ(s["targets"][0]["target"], "pid:100");
  EXPECT_EQ(s["targets"][0]["kind"], "pid");
  EXPECT_EQ(s["targets"][0]["count"], 4);
  EXPECT_EQ(s["targets"][0]["processes"], 2);
  EXPECT_EQ(s["targets"][0]["status_classes"]["5xx"], 1);
  EXPECT_EQ(s["targets"][1]["target"], "comm:py");
  EXPECT_EQ(s["targets"][1]["count"], 4);
  EXPECT_EQ(s["targets"][1]["status_classes"]["4xx"], 4);
  EXPECT_NEAR(s["targets"][1]["percentiles"]["p50"].get<double>(), 30.0, 0.5);
  EXPECT_EQ(s["targets"][2]["target"], "other");
  EXPECT_EQ(s["targets"][2]["count"], 1);
  bool saw = false;
  for (const auto& p : s["processes"]) {
    if (p["pid"] == 201) {
      saw = true;
      EXPECT_EQ(p["target"], "comm:py");
      EXPECT_EQ(p["container_id"], kId);
      EXPECT_EQ(p["pod_uid"], kUid);
      EXPECT_EQ(p["container_runtime"], "containerd");
    }
    if (p["pid"] == 101) {
      EXPECT_EQ(p["container_id"], "");
    }
  }
  EXPECT_TRUE(saw);
  const std::string text = agg.PrometheusText();
  EXPECT_NE(text.find("reqmon_http_requests_total{method=\"GET\",route=\"/x\",status=\"2xx\",target=\"pid:100\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("reqmon_http_requests_total{method=\"GET\",route=\"/x\",status=\"4xx\",target=\"comm:py\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("reqmon_http_requests_total{method=\"GET\",route=\"/x\",status=\"2xx\",target=\"other\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("reqmon_process_http_requests_total{pid=\"201\",comm=\"\",status=\"4xx\",target=\"comm:py\",container_id=\"" + kId + "\",pod_uid=\"" + kUid + "\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("reqmon_target_http_requests_total{target=\"pid:100\",status=\"5xx\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("reqmon_target_http_request_duration_seconds_bucket{target=\"comm:py\",le=\"0.05\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("reqmon_target_http_request_duration_seconds_bucket{target=\"comm:py\",le=\"0.025\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("reqmon_target_http_request_duration_seconds_count{target=\"pid:100\"} 4\n"), std::string::npos);
}

TEST(AggregatorIdentification, OffByDefault) {
  Aggregator agg;
  agg.OnTransaction(Tx(101, 200, 2));
  auto s = agg.StatsJson();
  EXPECT_FALSE(s.contains("targets"));
  EXPECT_FALSE(s["processes"][0].contains("container_id"));
  EXPECT_EQ(agg.PrometheusText().find("target="), std::string::npos);
}

}  // namespace
}  // namespace reqmon
