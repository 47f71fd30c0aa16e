// SPDX-License-Identifier: MIT
#include "options.h"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "reqmon/alerts/notifier.h"

namespace reqmon {
namespace {

int Fail(const std::string& msg, int code) {
  std::fprintf(stderr, "reqmon: %s\n", msg.c_str());
  return code;
}

// Whether an address (as given to --listen) only reaches this host.
bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// The bearer token of --token-file: its first line, without surrounding blanks.
bool ReadToken(const std::string& path, std::string* token, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "--token-file " + path + ": cannot read it: " + std::strerror(errno);
    return false;
  }
  std::getline(in, *token);
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!token->empty() && blank(token->back())) token->pop_back();
  size_t lead = 0;
  while (lead < token->size() && blank((*token)[lead])) ++lead;
  token->erase(0, lead);
  if (token->size() < 16) {
    *error = "--token-file " + path + ": the token (its first line) must be at least 16 "
             "characters; make one with: head -c 24 /dev/urandom | base64 > " + path;
    return false;
  }
  return true;
}

}  // namespace

bool ParseListen(const std::string& s, std::string* host, uint16_t* port, std::string* error) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) {
    *error = "--listen " + s + ": expected ADDRESS:PORT, e.g. 127.0.0.1:9100";
    return false;
  }
  std::string h = s.substr(0, colon), p = s.substr(colon + 1);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty()) h = "0.0.0.0";
  char* end = nullptr;
  long v = std::strtol(p.c_str(), &end, 10);
  if (p.empty() || *end != '\0' || v < 0 || v > 65535) {
    *error = "--listen " + s + ": bad port '" + p + "'";
    return false;
  }
  *host = h;
  *port = static_cast<uint16_t>(v);
  return true;
}

namespace {

std::string DefaultWebDir(const char* argv0) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  std::vector<fs::path> candidates;
  if (!ec) {
    candidates.push_back(exe.parent_path() / "web");            // installed beside the binary
    candidates.push_back(exe.parent_path().parent_path() / "web");  // build/ inside the repo
    candidates.push_back(exe.parent_path().parent_path() / "share/reqmon/web");
  }
  candidates.push_back(fs::path(REQMON_SOURCE_DIR) / "web");
  for (const auto& c : candidates)
    if (fs::exists(c / "index.html", ec)) return c.string();
  (void)argv0;
  return (fs::path(REQMON_SOURCE_DIR) / "web").string();
}

}  // namespace

int ParseOptions(int argc, char** argv, Options* o) {
  CLI::App app{
      "reqmon: see what a web server is doing - requests per second, response times, status "
      "codes, CPU and memory - from the kernel, without touching the server."};
  app.footer(R"(EXAMPLES (as root, see PRIVILEGES; --replay needs none):
  reqmon                          demo: observe a small local web server with light traffic
  reqmon --pid $(pgrep -o nginx)  observe nginx (the master's PID; workers are followed)
  reqmon --port 8080              observe whatever listens on TCP port 8080
  reqmon --comm gunicorn --record cap.rqcap --duration 60
  reqmon --replay cap.rqcap --print-stats
  reqmon --comm nginx --alert-rules rules.yaml --alertmanager http://127.0.0.1:9093
Then open http://127.0.0.1:9100/ ; JSON at /metrics, /stats, /requests, /alerts; Prometheus at
/metrics/prometheus.

PRIVILEGES: live capture needs root, or CAP_BPF + CAP_PERFMON (+ CAP_SYS_RESOURCE on kernels
before 5.11), and a kernel with BTF. --replay needs none.)");
  app.get_formatter()->column_width(34);
  app.set_version_flag("--version", "reqmon " REQMON_VERSION);

  auto* targets = app.add_option_group("Targets", "which processes to observe (combinable)");
  targets->add_option("-p,--pid", o->pids, "a process and all its descendants (repeatable)")
      ->check(CLI::PositiveNumber);
  targets->add_option("-c,--comm", o->comms, "processes with this name, now and later (repeatable)");
  targets->add_option("--port", o->ports, "processes listening on this TCP port (repeatable)")
      ->check(CLI::Range(1, 65535));
  targets->add_option("--cgroup", o->cgroups, "processes in this cgroup v2 directory (repeatable)")
      ->check(CLI::ExistingDirectory);
  targets->add_flag("-a,--all", o->all, "every process on the host (except reqmon)");

  app.add_option("--record", o->record, "also write every captured event to this capture file");
  app.add_option("--replay", o->replay, "read events from a capture file instead of the kernel");
  app.add_flag("--print-stats", o->print_stats,
               "print the /stats JSON and exit (after the replay, or after --duration)");
  app.add_flag("--print-analytics", o->print_analytics,
               "print the GET /analytics JSON and exit (with --replay, or after --duration)");
  app.add_option("--listen", o->listen, "address:port of the dashboard and API")
      ->capture_default_str();
  app.add_flag("--no-api", o->no_api, "do not serve the dashboard and API");
  app.add_option("--token-file", o->token_file,
                 "a bearer token (the file's first line) the API requires; needed to --listen "
                 "beyond loopback");
  app.add_flag("--no-auth", o->no_auth, "serve the API beyond loopback without a token");
  auto* show = app.add_flag("--show-query", o->show_query,
                            "show query values that look secret (token=, key=...) as sent");
  app.add_flag("--redact-query", o->redact_query, "drop every query value, keep the names")
      ->excludes(show);
  app.add_option("--log-file", o->log_file,
                 "request and CPU/memory log (default monitor_logs.txt when live; 'none' for off)");
  app.add_option("--log-interval", o->log_interval, "seconds between CPU/memory log lines")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_option("--log-requests", o->log_requests,
                 "log 1 in N requests (1: every request, 0: none)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  app.add_option("--log-max-size", o->log_max_bytes,
                 "rotate the log when it reaches this size (4KiB to 1TiB; e.g. 512KiB, 10MiB)")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(uint64_t{4096}, uint64_t{1} << 40))
      ->default_str("10MiB");
  app.add_option("--log-keep", o->log_keep,
                 "rotated log files kept (monitor_logs.1.txt ...; 0: the log starts over instead)")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app.add_option("--payload-bytes", o->payload_bytes,
                 "payload bytes captured per syscall (1.." + std::to_string(RQ_MAX_PAYLOAD) + ")")
      ->check(CLI::Range(1, RQ_MAX_PAYLOAD))
      ->capture_default_str();
  app.add_option("--ring-buffer-mb", o->ring_buffer_mb, "ring buffer size in MiB (a power of two)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--proc-root", o->proc_root, "where the host's /proc is (in a container)")
      ->check(CLI::ExistingDirectory)
      ->capture_default_str();
  app.add_option("--web-dir", o->web_dir, "folder of the dashboard's files");
  app.add_option("--duration", o->duration, "stop after this many seconds (0: run until Ctrl-C)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--no-tls", o->no_tls,
               "attach no uprobes to TLS libraries (HTTPS requests are then not seen)");
  app.add_flag("--no-h2-frames", o->no_h2_frames,
               "copy HTTP/2 records as the plain --payload-bytes prefix, instead of following their "
               "frames in the kernel (header blocks whole, DATA payloads left out)");
  app.add_flag("--no-queue-time", o->no_queue_time,
               "do not measure how long requests wait before the server reads them (queue_time)");
  auto* alerting = app.add_option_group("Alerts", "rules, and where alerts go (README: Alerts)");
  alerting->add_option("--alert-rules", o->alert_rules,
                       "YAML rules file (default: the built-in rules; 'none': no alerting)");
  alerting->add_option("--alert-webhook", o->alert_webhooks,
                       "POST Alertmanager-style webhooks here on firing and resolution (repeatable)");
  alerting->add_option("--alertmanager", o->alertmanager,
                       "push alerts to this Alertmanager (http://host:9093)");
  alerting->add_option("--alert-resend", o->alert_resend,
                       "seconds between re-sends of firing alerts to the Alertmanager")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  alerting->add_flag("--print-alert-rules", o->print_alert_rules,
                     "print the built-in rules as a rules file and exit");
  app.add_flag("-v,--verbose", o->verbose, "print libbpf's messages (the verifier log on failure)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    for (char& c : what)
      if (c == '\n') c = ' ';
    std::fprintf(stderr, "reqmon: %s (see reqmon --help)\n", what.c_str());
    return 2;
  }

  if (o->print_alert_rules) {
    std::fputs(alerts::DefaultRulesYaml(), stdout);
    return 0;
  }
  bool has_target = !o->pids.empty() || !o->comms.empty() || !o->ports.empty() ||
                    !o->cgroups.empty() || o->all;
  if (!o->replay.empty() && (has_target || !o->record.empty()))
    return Fail("--replay reads a capture file: it takes no --pid/--comm/--port/--cgroup/--all "
                "or --record", 2);
  if (o->print_stats && o->replay.empty() && o->duration <= 0)
    return Fail("--print-stats needs --replay FILE, or --duration SECONDS for a live run", 2);
  if (o->print_analytics && o->replay.empty() && o->duration <= 0)
    return Fail("--print-analytics needs --replay FILE, or --duration SECONDS for a live run", 2);
  if (o->web_dir.empty()) o->web_dir = DefaultWebDir(argv[0]);
  if (!o->token_file.empty()) {
    std::string err;
    if (!ReadToken(o->token_file, &o->token, &err)) return Fail(err, 2);
  }
  if (!o->no_api && o->token.empty() && !o->no_auth) {
    std::string host, err;
    uint16_t port = 0;
    if (!ParseListen(o->listen, &host, &port, &err)) return Fail(err, 2);
    if (!IsLoopback(host))
      return Fail("--listen " + o->listen + " serves the API beyond this host: give --token-file "
                  "FILE (a bearer token the API then requires) or, on a trusted network, "
                  "--no-auth", 2);
  }
  // The rules and receivers are checked before anything starts: one line per mistake, exit 2.
  {
    std::vector<std::string> errors;
    o->alerts_on = o->alert_rules != "none";
    if (!o->alerts_on) {
      if (!o->alert_webhooks.empty() || !o->alertmanager.empty())
        errors.push_back("--alert-rules none turns alerting off: drop --alert-webhook/--alertmanager");
    } else if (o->alert_rules.empty()) {
      o->rules = alerts::DefaultRules();
    } else {
      alerts::LoadRules(o->alert_rules, &o->rules, &errors);
    }
    std::vector<std::string> urls = o->alert_webhooks;
    if (!o->alertmanager.empty()) urls.push_back(o->alertmanager);
    for (const std::string& u : urls) {
      std::string host, path, why;
      uint16_t port = 0;
      if (!alerts::ParseHttpUrl(u, &host, &port, &path, &why)) errors.push_back(why);
    }
    for (const std::string& e : errors) std::fprintf(stderr, "reqmon: %s\n", e.c_str());
    if (!errors.empty()) return 2;
  }
  o->demo = o->replay.empty() && !has_target;

  return -1;
}

}  // namespace reqmon
