// SPDX-License-Identifier: MIT
// The deployment files (label "unit"): the Kubernetes manifests parsed as YAML (Debian's yq turns
// them into JSON) and checked for the fields that make a least-privilege DaemonSet work; the
// Dockerfile checked statically (no container engine here: stages, non-root build, runtime
// libraries, web files, entrypoint); the Prometheus scrape configuration checked by promtool;
// the Grafana dashboard parsed and its queries checked against the metrics reqmon serves. Every
// reqmon flag the files use must exist in `reqmon --help`.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "../support/servers.h"

namespace reqmon {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

fs::path Src(const std::string& rel) { return fs::path(REQMON_SOURCE_DIR) / rel; }

// Every YAML document of a file, as JSON.
std::vector<json> Yaml(const std::string& rel) {
  if (!testing::HaveBinary("yq")) return {};
  int st = -1;
  std::string out = testing::Run("yq -c . '" + Src(rel).string() + "' 2>&1", &st);
  EXPECT_EQ(st, 0) << out;
  std::vector<json> docs;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line != "null") docs.push_back(json::parse(line));
  return docs;
}

json Find(const std::vector<json>& docs, const std::string& kind) {
  for (const auto& d : docs)
    if (d.value("kind", "") == kind) return d;
  return json();
}

std::string Help() {
  static std::string help = testing::Run(std::string(REQMON_BINARY) + " --help 2>&1");
  return help;
}

void ExpectFlagsExist(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a.rfind("--", 0) == 0) {
      EXPECT_NE(Help().find(a.substr(0, a.find('=')) + " "), std::string::npos)
          << a << " is not a reqmon flag";
    }
  }
}

class Manifests : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::HaveBinary("yq")) GTEST_SKIP() << "yq is not installed (scripts/setup.sh installs it)";
  }
};

TEST_F(Manifests, DaemonSetHasTheLeastPrivilegeThatWorks) {
  auto docs = Yaml("deploy/kubernetes/daemonset.yaml");
  json ds = Find(docs, "DaemonSet");
  ASSERT_FALSE(ds.is_null());
  EXPECT_EQ(ds["apiVersion"], "apps/v1");
  const json& pod = ds["spec"]["template"]["spec"];
  EXPECT_EQ(ds["spec"]["selector"]["matchLabels"], ds["spec"]["template"]["metadata"]["labels"]);
  EXPECT_EQ(pod["hostPID"], true);
  EXPECT_NE(pod.value("hostNetwork", false), true);
  ASSERT_EQ(pod["containers"].size(), 1u);
  const json& c = pod["containers"][0];

  // Capabilities, not privileged mode; everything else dropped.
  const json& sc = c["securityContext"];
  EXPECT_NE(sc.value("privileged", false), true);
  std::set<std::string> add = sc["capabilities"]["add"].get<std::set<std::string>>();
  EXPECT_EQ(add, (std::set<std::string>{"BPF", "PERFMON", "SYS_RESOURCE"}));
  EXPECT_EQ(sc["capabilities"]["drop"], json::array({"ALL"}));
  EXPECT_EQ(sc["allowPrivilegeEscalation"], false);
  EXPECT_EQ(sc["readOnlyRootFilesystem"], true);
  // The privileged fallback for kernels without CAP_BPF/CAP_PERFMON is documented.
  std::string text = testing::ReadFile(Src("deploy/kubernetes/daemonset.yaml"));
  EXPECT_NE(text.find("privileged: true"), std::string::npos);
  EXPECT_NE(text.find("5.8"), std::string::npos);

  // Host paths, mounted read-only where reqmon expects them.
  std::map<std::string, std::string> host_path;  // volume name -> host path
  std::string token_volume;                       // the Secret with the API's bearer token
  for (const auto& v : pod["volumes"]) {
    if (v.contains("hostPath")) host_path[v["name"]] = v["hostPath"]["path"];
    if (v.contains("secret") && v["secret"]["secretName"] == "reqmon-token") token_volume = v["name"];
  }
  std::map<std::string, std::string> mounted;  // host path -> mount path
  for (const auto& m : c["volumeMounts"]) {
    if (m["name"] == token_volume) {
      // Listening on 0.0.0.0 needs a token: the Secret's, read-only, where --token-file says.
      EXPECT_EQ(m.value("readOnly", false), true) << m;
      auto args = c["args"].get<std::vector<std::string>>();
      auto it = std::find(args.begin(), args.end(), "--token-file");
      ASSERT_NE(it, args.end());
      ASSERT_NE(it + 1, args.end());
      EXPECT_EQ(*(it + 1), m["mountPath"].get<std::string>() + "/token");
      continue;
    }
    ASSERT_TRUE(host_path.count(m["name"])) << m;
    EXPECT_EQ(m.value("readOnly", false), true) << m;
    mounted[host_path[m["name"]]] = m["mountPath"];
  }
  EXPECT_EQ(mounted["/proc"], "/host/proc");
  EXPECT_EQ(mounted["/sys/kernel/btf"], "/sys/kernel/btf");
  EXPECT_EQ(mounted["/sys/fs/cgroup"], "/sys/fs/cgroup");
  EXPECT_TRUE(mounted.count("/sys/kernel/tracing") || mounted.count("/sys/kernel/debug"));

  // Arguments: the host's /proc, listening on all addresses, a selector.
  std::vector<std::string> args = c["args"].get<std::vector<std::string>>();
  auto arg = [&](const std::string& flag) {
    auto it = std::find(args.begin(), args.end(), flag);
    return it == args.end() || it + 1 == args.end() ? std::string("<missing>") : *(it + 1);
  };
  EXPECT_EQ(arg("--proc-root"), "/host/proc");
  EXPECT_EQ(arg("--listen"), "0.0.0.0:9100");
  EXPECT_TRUE(std::count(args.begin(), args.end(), "--all") ||
              std::count(args.begin(), args.end(), "--comm"));
  ExpectFlagsExist(args);

  // The port, resources, and probes on /healthz.
  int port = 0;
  std::string port_name;
  for (const auto& p : c["ports"]) {
    if (p["containerPort"] == 9100) {
      port = 9100;
      port_name = p.value("name", "");
    }
  }
  EXPECT_EQ(port, 9100);
  for (const char* k : {"requests", "limits"})
    for (const char* r : {"cpu", "memory"})
      EXPECT_TRUE(c["resources"][k].contains(r)) << k << "." << r;
  for (const char* probe : {"livenessProbe", "readinessProbe"}) {
    ASSERT_TRUE(c.contains(probe)) << probe;
    const json& g = c[probe]["httpGet"];
    EXPECT_EQ(g["path"], "/healthz") << probe;
    EXPECT_TRUE(g["port"] == 9100 || (g["port"].is_string() && g["port"] == port_name)) << probe;
  }
}

TEST_F(Manifests, ServiceForScraping) {
  auto docs = Yaml("deploy/kubernetes/service.yaml");
  json svc = Find(docs, "Service");
  ASSERT_FALSE(svc.is_null());
  json ds = Find(Yaml("deploy/kubernetes/daemonset.yaml"), "DaemonSet");
  EXPECT_EQ(svc["metadata"]["namespace"], ds["metadata"]["namespace"]);
  // The selector picks the DaemonSet's pods.
  const json& labels = ds["spec"]["template"]["metadata"]["labels"];
  for (const auto& [k, v] : svc["spec"]["selector"].items()) EXPECT_EQ(labels[k], v) << k;
  ASSERT_EQ(svc["spec"]["ports"].size(), 1u);
  EXPECT_EQ(svc["spec"]["ports"][0]["port"], 9100);
  const json& a = svc["metadata"]["annotations"];
  EXPECT_EQ(a["prometheus.io/scrape"], "true");
  EXPECT_EQ(a["prometheus.io/port"], "9100");
  EXPECT_EQ(a["prometheus.io/path"], "/metrics/prometheus");
}

TEST(Dockerfile, MultiStageNonRootBuildSmallRuntime) {
  std::string df = testing::ReadFile(Src("Dockerfile"));
  ASSERT_FALSE(df.empty());
  // Split into stages at each FROM (instructions are case-insensitive; ours are upper case).
  std::vector<std::string> stages;
  std::vector<std::string> froms;
  std::istringstream in(df);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("FROM ", 0) == 0) {
      froms.push_back(line);
      stages.emplace_back();
    }
    if (!stages.empty()) stages.back() += line + "\n";
  }
  ASSERT_EQ(stages.size(), 2u) << df;
  static const std::regex from_re(R"(^FROM debian:bookworm(-slim)?(@sha256:[0-9a-f]{64})? AS (\w+)$)");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(froms[0], m, from_re)) << froms[0];
  const std::string build_name = m[3];
  ASSERT_TRUE(std::regex_match(froms[1], m, from_re)) << froms[1];

  // Build stage: a non-root USER before anything is built.
  const std::string& build = stages[0];
  static const std::regex user_re(R"(\nUSER (\S+)\n)");
  ASSERT_TRUE(std::regex_search(build, m, user_re)) << build;
  EXPECT_NE(m[1], "root");
  EXPECT_NE(m[1], "0");
  const size_t user_at = static_cast<size_t>(m.position(0));
  EXPECT_LT(user_at, build.find("cmake --build")) << "the build runs as root";
  EXPECT_LT(user_at, build.find("npm ci"));
  EXPECT_NE(build.find("-DREQMON_BUILD_TESTS=OFF"), std::string::npos);

  // Runtime stage: only the runtime libraries, the binary and the dashboard's files.
  const std::string& rt = stages[1];
  for (const char* lib : {"libbpf1", "libelf1", "zlib1g", "libpistache0", "libspdlog", "libfmt",
                          "libyaml-cpp"})
    EXPECT_NE(rt.find(lib), std::string::npos) << lib;
  for (const char* tool : {"-dev", "clang", "cmake", "build-essential", "npm", "nodejs", "llvm"})
    EXPECT_EQ(rt.find(tool), std::string::npos) << tool << " in the runtime stage";
  EXPECT_NE(rt.find("--no-install-recommends"), std::string::npos);
  EXPECT_NE(rt.find("rm -rf /var/lib/apt/lists"), std::string::npos);
  EXPECT_NE(rt.find("COPY --from=" + build_name + " /home/builder/reqmon/build/reqmon "),
            std::string::npos);
  static const std::regex web_re("COPY --from=" + build_name + R"( \S+/web (\S+)\n)");
  ASSERT_TRUE(std::regex_search(rt, m, web_re)) << rt;
  // reqmon finds its dashboard in <prefix>/share/reqmon/web beside <prefix>/bin/reqmon.
  EXPECT_EQ(m[1], "/usr/local/share/reqmon/web");
  static const std::regex ep_re(R"re(\nENTRYPOINT \["/usr/local/bin/reqmon"\]\n)re");
  EXPECT_TRUE(std::regex_search(rt, ep_re)) << rt;
  static const std::regex cmd_re(R"re(\nCMD (\[.*\])\n)re");
  ASSERT_TRUE(std::regex_search(rt, m, cmd_re)) << rt;
  ExpectFlagsExist(json::parse(m[1].str()).get<std::vector<std::string>>());
  EXPECT_NE(rt.find("EXPOSE 9100"), std::string::npos);

  // The build context leaves out build folders, node_modules and VCS data.
  std::string ignore = testing::ReadFile(Src(".dockerignore"));
  for (const char* p : {"\nbuild\n", "\nbuild-*\n", "\nweb/node_modules\n", "\n.git\n"})
    EXPECT_NE(ignore.find(p), std::string::npos) << p;
  // Every file the build needs is inside the context.
  for (const char* p : {"CMakeLists.txt", "bpf/reqmon.bpf.c", "web/package-lock.json", "web/index.html"})
    EXPECT_TRUE(fs::exists(Src(p))) << p;
}

TEST(PrometheusConfig, PromtoolAcceptsTheStaticConfigAndK8sExampleParses) {
  if (!testing::HaveBinary("promtool")) GTEST_SKIP() << "promtool is not installed";
  int st = -1;
  // promtool wants the bearer token file the config names to exist: check a copy beside one.
  const fs::path tmp = testing::MakeTempDir("promcfg");
  std::string cfg = testing::ReadFile(Src("deploy/prometheus/prometheus.yml"));
  const std::string cred = "/etc/prometheus/reqmon-token";
  ASSERT_NE(cfg.find(cred), std::string::npos);
  cfg.replace(cfg.find(cred), cred.size(), (tmp / "reqmon-token").string());
  std::ofstream(tmp / "prometheus.yml") << cfg;
  std::ofstream(tmp / "reqmon-token") << "a-token-for-promtool-0123456789\n";
  std::string out = testing::Run("promtool check config '" + (tmp / "prometheus.yml").string() +
                                     "' 2>&1", &st);
  EXPECT_EQ(st, 0) << out;
  fs::remove_all(tmp);
  if (!testing::HaveBinary("yq")) GTEST_SKIP() << "yq is not installed";
  auto docs = Yaml("deploy/prometheus/prometheus.yml");
  ASSERT_EQ(docs.size(), 1u);
  int static_hosts = 0;
  for (const auto& sc : docs[0]["scrape_configs"]) {
    EXPECT_EQ(sc["metrics_path"], "/metrics/prometheus");
    for (const auto& s : sc.value("static_configs", json::array())) static_hosts += s["targets"].size();
  }
  EXPECT_GE(static_hosts, 2);  // several hosts
  auto k8s = Yaml("deploy/prometheus/prometheus-kubernetes.yml");
  ASSERT_EQ(k8s.size(), 1u);
  bool sd = false;
  for (const auto& sc : k8s[0]["scrape_configs"]) {
    EXPECT_EQ(sc["metrics_path"], "/metrics/prometheus");
    for (const auto& k : sc.value("kubernetes_sd_configs", json::array())) {
      sd = true;
      EXPECT_EQ(k["role"], "endpoints");
      EXPECT_EQ(k["namespaces"]["names"], json::array({"reqmon"}));  // the DaemonSet's
    }
  }
  EXPECT_TRUE(sd);
}

TEST(PrometheusAlertRules, PromtoolChecksAndTestsTheRulesWhichUseReqmonsMetrics) {
  if (!testing::HaveBinary("promtool")) GTEST_SKIP() << "promtool is not installed";
  int st = -1;
  std::string out = testing::Run("promtool check rules '" +
                                     Src("deploy/prometheus/reqmon-alerts.yml").string() + "' 2>&1",
                                 &st);
  EXPECT_EQ(st, 0) << out;
  // The unit tests (firing, too little traffic, hysteresis, keep_firing_for, disk, lost events).
  out = testing::Run("cd '" + Src("deploy/prometheus").string() +
                         "' && promtool test rules reqmon-alerts.test.yml 2>&1",
                     &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_NE(out.find("SUCCESS"), std::string::npos) << out;
  // The same alert names as reqmon's built-in rules, and only metrics reqmon serves.
  const std::string rules = testing::ReadFile(Src("deploy/prometheus/reqmon-alerts.yml"));
  const std::string builtin = testing::ReadFile(Src("src/alerts/rules.cc"));
  for (const char* name : {"HighCpu", "HighMemory", "DiskFullSoon", "ErrorRateHigh",
                           "HighErrorRate", "LatencyP99Spike", "LostEvents"}) {
    EXPECT_NE(rules.find(std::string("alert: ") + name + "\n"), std::string::npos) << name;
    EXPECT_NE(builtin.find(std::string("name: ") + name + "\n"), std::string::npos) << name;
  }
  const std::string render = testing::ReadFile(Src("src/aggregator/render.cc"));
  static const std::regex metric(R"(reqmon_[a-z_]+)");
  for (std::sregex_iterator it(rules.begin(), rules.end(), metric), end; it != end; ++it) {
    std::string name = it->str();
    if (name == "reqmon_alerts") continue;  // a file name in the header comment
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (name.size() > strlen(suffix) && name.ends_with(suffix)) name.resize(name.size() - strlen(suffix));
    EXPECT_NE(render.find("\"" + name), std::string::npos) << name;
  }
}

TEST(GrafanaDashboard, ValidJsonUsingReqmonsMetrics) {
  json d = json::parse(testing::ReadFile(Src("deploy/grafana/reqmon-dashboard.json")));
  EXPECT_FALSE(d["title"].get<std::string>().empty());
  EXPECT_FALSE(d["uid"].get<std::string>().empty());
  ASSERT_TRUE(d["panels"].is_array());
  std::set<int> ids;
  std::string all;
  for (const auto& p : d["panels"]) {
    EXPECT_TRUE(ids.insert(p["id"].get<int>()).second) << "duplicate panel id " << p["id"];
    for (const char* k : {"x", "y", "w", "h"}) EXPECT_TRUE(p["gridPos"][k].is_number()) << p["title"];
    ASSERT_FALSE(p["targets"].empty()) << p["title"];
    for (const auto& t : p["targets"]) all += t["expr"].get<std::string>() + "\n";
  }
  // What the issue asks the dashboard to show.
  EXPECT_NE(all.find("sum by (status) (rate(reqmon_http_requests_total"), std::string::npos);
  EXPECT_NE(all.find("histogram_quantile(0.99, sum by (le) (rate(reqmon_http_request_duration_seconds_bucket"),
            std::string::npos);
  for (const char* m : {"reqmon_process_cpu_usage_percent", "reqmon_process_resident_memory_bytes",
                        "reqmon_lost_events_total"})
    EXPECT_NE(all.find(m), std::string::npos) << m;
  // Every metric it queries is one reqmon serves (the renderer's source names them all).
  std::string render = testing::ReadFile(Src("src/aggregator/render.cc"));
  static const std::regex metric(R"(reqmon_[a-z_]+)");
  int n = 0;
  for (std::sregex_iterator it(all.begin(), all.end(), metric), end; it != end; ++it, ++n) {
    std::string name = it->str();
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (name.size() > strlen(suffix) && name.ends_with(suffix)) name.resize(name.size() - strlen(suffix));
    EXPECT_NE(render.find("\"" + name), std::string::npos) << name;
  }
  EXPECT_GT(n, 10);
  // The instance and target variables the queries use exist.
  std::set<std::string> vars;
  for (const auto& v : d["templating"]["list"]) vars.insert(v["name"]);
  for (const char* v : {"datasource", "instance", "target"}) EXPECT_TRUE(vars.count(v)) << v;
}

}  // namespace
}  // namespace reqmon
