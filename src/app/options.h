// SPDX-License-Identifier: MIT
#pragma once
// reqmon's command line: the options, their parsing, and every check that can be made before
// anything starts (bad flags, conflicting flags, a token file, an exposed --listen, the alert
// rules and receivers): one line per mistake and exit code 2.

#include <cstdint>
#include <string>
#include <vector>

#include "reqmon/abi.h"
#include "reqmon/alerts/rules.h"
#include "reqmon/parser/query_redaction.h"

namespace reqmon {

struct Options {
  std::vector<int> pids;
  std::vector<std::string> comms;
  std::vector<int> ports;
  std::vector<std::string> cgroups;
  bool all = false;
  std::string record;
  std::string replay;
  bool print_stats = false;
  bool print_analytics = false;  ///< --print-analytics: GET /analytics' JSON
  std::string listen = "127.0.0.1:9100";
  bool no_api = false;
  std::string log_file;
  int log_interval = 60;
  int log_requests = 1;
  uint64_t log_max_bytes = 10 * 1024 * 1024;  ///< --log-max-size: rotate the log at this size
  int log_keep = 3;                           ///< --log-keep: rotated files kept
  uint32_t payload_bytes = RQ_DEFAULT_PAYLOAD;
  uint32_t ring_buffer_mb = 8;
  std::string proc_root = "/proc";
  std::string web_dir;
  double duration = 0;
  bool demo = false;
  bool verbose = false;
  bool no_tls = false;
  bool no_queue_time = false;
  bool no_h2_frames = false;
  std::string token_file;
  bool no_auth = false;
  bool show_query = false;
  bool redact_query = false;
  std::string token;  ///< read from token_file
  QueryMode query_mode() const {
    return show_query ? QueryMode::kShow : redact_query ? QueryMode::kDropValues
                                                        : QueryMode::kRedactSecrets;
  }
  std::string alert_rules;                  // "" built-in rules, "none" off, else a file
  std::vector<std::string> alert_webhooks;
  std::string alertmanager;
  int alert_resend = 60;
  bool print_alert_rules = false;
  bool alerts_on = true;
  alerts::RuleSet rules;                    // loaded and checked before anything starts
};


/// Parses and checks the command line into *o. Returns -1 to go on, or the exit code (0 after
/// --help, --version or --print-alert-rules; 2 after a one-line error on stderr).
int ParseOptions(int argc, char** argv, Options* o);

/// "127.0.0.1:9100", "[::1]:9100", "localhost:9100", ":9100" (all IPv4 addresses).
bool ParseListen(const std::string& s, std::string* host, uint16_t* port, std::string* error);

}  // namespace reqmon
