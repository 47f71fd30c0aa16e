// SPDX-License-Identifier: MIT
// JSON and Prometheus renderers of the aggregator (field reference: docs/api.md).
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "aggregator_internal.h"
#include "reqmon/aggregator/aggregator.h"

namespace reqmon {

using nlohmann::ordered_json;

namespace {

double Round(double v, int decimals) {
  if (!std::isfinite(v)) return 0.0;
  const double m = std::pow(10.0, decimals);
  return std::round(v * m) / m;
}

ordered_json Classes(const std::array<uint64_t, 5>& c) {
  ordered_json j = ordered_json::object();
  for (size_t i = 0; i < 5; ++i) j[std::to_string(i + 1) + "xx"] = c[i];
  return j;
}

ordered_json Percentiles(const LatencySummary& s) {
  return ordered_json{{"p50", Round(s.p50_ms, 3)},
                      {"p90", Round(s.p90_ms, 3)},
                      {"p95", Round(s.p95_ms, 3)},
                      {"p99", Round(s.p99_ms, 3)}};
}

// Queue time: how long requests waited before the server read them (issue #14).
ordered_json QueueTime(const LatencySummary& s) {
  return ordered_json{{"count", s.queue_count},
                      {"average", Round(s.queue_avg_ms, 3)},
                      {"p50", Round(s.queue_p50_ms, 3)},
                      {"p99", Round(s.queue_p99_ms, 3)}};
}

ordered_json Rates(const LatencySummary& s) {
  return ordered_json{
      {"1s", Round(s.rate_1s, 3)}, {"10s", Round(s.rate_10s, 3)}, {"60s", Round(s.rate_60s, 3)}};
}

// The per-route / per-process block.
void Summary(const LatencySummary& s, ordered_json& j) {
  j["count"] = s.count;
  j["incomplete"] = s.incomplete;
  j["average_response_time"] = Round(s.avg_ms, 2);
  j["min_response_time"] = Round(s.min_ms, 3);
  j["max_response_time"] = Round(s.max_ms, 3);
  j["percentiles"] = Percentiles(s);
  j["queue_time"] = QueueTime(s);
  j["status_classes"] = Classes(s.classes);
  j["rates"] = Rates(s);
  j["request_bytes"] = s.request_bytes;
  j["response_bytes"] = s.response_bytes;
}

// Replaces invalid UTF-8 and control characters so label values stay parseable.
std::string SanitizeUtf8(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  size_t i = 0;
  while (i < v.size()) {
    const auto c = static_cast<unsigned char>(v[i]);
    if (c < 0x80) {
      out += (c < 0x20 && c != '\n') || c == 0x7f ? '?' : static_cast<char>(c);
      ++i;
      continue;
    }
    size_t len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (c >= 0xf5) len = 0;
    bool ok = len > 0 && i + len <= v.size();
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(v[i + k]) & 0xc0) == 0x80;
    }
    if (ok) {
      out.append(v.substr(i, len));
      i += len;
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

std::string Label(std::string_view v) { return PromEscapeLabel(SanitizeUtf8(v)); }

// A grpc-status as a JSON key / label value: the number, or "unknown" when none was seen.
std::string GrpcStatusLabel(int code) { return code < 0 ? "unknown" : std::to_string(code); }

void Family(std::string& out, std::string_view name, std::string_view type,
            std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

ordered_json Aggregator::MetricsJson() const {
  SystemSample s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s = last_sample_;
  }
  ordered_json j;
  j["cpu_usage"] = Round(s.cpu_percent, 1);
  j["memory_usage"] = Round(s.memory_percent, 1);
  j["memory"] = ordered_json{{"total_bytes", s.memory_total_bytes},
                             {"available_bytes", s.memory_available_bytes},
                             {"used_bytes", s.memory_used_bytes}};
  j["disk"] = ordered_json{{"path", s.disk_path},
                           {"total_bytes", s.disk_total_bytes},
                           {"used_bytes", s.disk_used_bytes},
                           {"free_bytes", s.disk_free_bytes},
                           {"usage_percent", Round(s.disk_percent, 1)},
                           {"read_bytes", s.disk_read_bytes},
                           {"write_bytes", s.disk_write_bytes},
                           {"read_count", s.disk_read_count},
                           {"write_count", s.disk_write_count},
                           {"read_bytes_per_sec", Round(s.disk_read_bytes_per_sec, 1)},
                           {"write_bytes_per_sec", Round(s.disk_write_bytes_per_sec, 1)}};
  j["network"] = ordered_json{{"rx_bytes", s.net_rx_bytes},
                              {"tx_bytes", s.net_tx_bytes},
                              {"rx_packets", s.net_rx_packets},
                              {"tx_packets", s.net_tx_packets},
                              {"rx_bytes_per_sec", Round(s.net_rx_bytes_per_sec, 1)},
                              {"tx_bytes_per_sec", Round(s.net_tx_bytes_per_sec, 1)}};
  ordered_json procs = ordered_json::array();
  for (const ProcessSample& p : s.processes) {
    procs.push_back(ordered_json{{"pid", p.pid},
                                 {"comm", p.comm},
                                 {"alive", p.alive},
                                 {"cpu_usage", Round(p.cpu_percent, 1)},
                                 {"memory_rss_bytes", p.rss_bytes}});
  }
  j["processes"] = std::move(procs);
  j["sampled_at"] = s.valid ? ordered_json(FormatIsoLocal(static_cast<int64_t>(s.mono_ns) +
                                                          opts_.wall_offset_ns))
                            : ordered_json(nullptr);
  return j;
}

ordered_json Aggregator::StatsJson() const {
  const StatsSnapshot snap = Snapshot();
  const LatencySummary& t = snap.total;
  ordered_json j;
  j["total_requests"] = t.count;
  j["average_response_time"] = Round(t.avg_ms, 2);
  ordered_json codes = ordered_json::object();
  for (const auto& [code, n] : snap.status_codes) codes[std::to_string(code)] = n;
  j["status_codes"] = std::move(codes);
  j["min_response_time"] = Round(t.min_ms, 3);
  j["max_response_time"] = Round(t.max_ms, 3);
  j["percentiles"] = Percentiles(t);
  j["queue_time"] = QueueTime(t);
  j["status_classes"] = Classes(t.classes);
  j["rates"] = Rates(t);
  j["incomplete_requests"] = t.incomplete;
  j["request_bytes"] = t.request_bytes;
  j["response_bytes"] = t.response_bytes;
  j["unparsed"] = ordered_json{{"bytes", snap.unparsed_bytes}, {"resyncs", snap.unparsed_resyncs}};
  j["lost_events"] = snap.lost_events;
  {
    // TLS: the share of requests that came over TLS, the processes whose TLS library is
    // hooked, and those whose TLS reqmon cannot see (their HTTPS requests are missing).
    ordered_json hooked = ordered_json::array(), uncovered = ordered_json::array();
    for (const TlsProcessInfo& p : snap.tls_processes) {
      if (p.covered)
        hooked.push_back(
            {{"pid", p.pid}, {"comm", p.comm}, {"library", p.library}, {"probes", p.probes},
             {"links", p.links}});
      else
        uncovered.push_back({{"pid", p.pid}, {"comm", p.comm}, {"reason", p.reason}});
    }
    j["tls"] = ordered_json{
        {"requests", snap.tls_requests},
        {"share", t.count ? Round(static_cast<double>(snap.tls_requests) / t.count, 4) : 0.0},
        {"hooked_processes", std::move(hooked)}};
    j["tls_not_covered"] = std::move(uncovered);
  }
  ordered_json protocols = ordered_json::object();
  for (size_t i = 0; i < snap.protocols.size(); ++i) {
    if (snap.protocols[i] > 0) protocols[ProtocolName(static_cast<HttpProtocol>(i))] = snap.protocols[i];
  }
  j["protocols"] = std::move(protocols);
  j["unknown_paths"] = snap.unknown_paths;
  {
    ordered_json g;
    g["calls"] = snap.grpc_calls;
    ordered_json codes = ordered_json::object();
    for (const auto& [code, n] : snap.grpc_status_codes) codes[GrpcStatusLabel(code)] = n;
    g["status_codes"] = std::move(codes);
    ordered_json methods = ordered_json::array();
    for (const GrpcMethodSummary& m : snap.grpc_methods) {
      ordered_json e;
      e["service"] = m.service;
      e["method"] = m.method;
      e["count"] = m.count;
      e["incomplete"] = m.incomplete;
      e["average_response_time"] = Round(m.avg_ms, 2);
      ordered_json bs = ordered_json::object();
      for (const auto& [code, n] : m.by_status) bs[GrpcStatusLabel(code)] = n;
      e["status_codes"] = std::move(bs);
      methods.push_back(std::move(e));
    }
    g["methods"] = std::move(methods);
    j["grpc"] = std::move(g);
  }
  for (const auto& [section, counters] : snap.extra) {
    if (j.contains(section) || section == "routes" || section == "processes") continue;
    ordered_json c = ordered_json::object();
    for (const auto& [k, v] : counters) c[k] = v;
    j[section] = std::move(c);
  }
  if (snap.identification) {
    ordered_json targets = ordered_json::array();
    for (const TargetSummary& t : snap.targets) {
      ordered_json e;
      e["target"] = t.name;
      e["kind"] = t.kind;
      e["processes"] = t.processes;
      Summary(t.s, e);
      targets.push_back(std::move(e));
    }
    j["targets"] = std::move(targets);
  }
  ordered_json routes = ordered_json::array();
  for (const RouteSummary& r : snap.routes) {
    ordered_json e;
    e["method"] = r.method;
    e["route"] = r.route;
    Summary(r.s, e);
    routes.push_back(std::move(e));
  }
  j["routes"] = std::move(routes);
  ordered_json procs = ordered_json::array();
  for (const ProcessSummary& p : snap.processes) {
    ordered_json e;
    e["pid"] = p.pid;
    e["comm"] = p.comm;
    Summary(p.s, e);
    e["cpu_usage"] = p.sampled ? ordered_json(Round(p.cpu_percent, 1)) : ordered_json(nullptr);
    e["memory_rss_bytes"] = p.sampled ? ordered_json(p.rss_bytes) : ordered_json(nullptr);
    e["alive"] = p.sampled ? ordered_json(p.alive) : ordered_json(nullptr);
    if (p.exited_group) e["exited_processes"] = p.exited_processes;
    if (snap.identification) {
      const bool known = p.identified && p.target >= 0 &&
                         static_cast<size_t>(p.target) + 1 < snap.target_names.size();
      e["target"] = known ? snap.target_names[p.target + 1] : std::string("other");
      e["container_id"] = p.container.container_id;
      e["pod_uid"] = p.container.pod_uid;
      e["container_runtime"] = p.identified ? p.container.runtime : std::string();
    }
    procs.push_back(std::move(e));
  }
  j["processes"] = std::move(procs);
  return j;
}

ordered_json Aggregator::SeriesJson() const {
  ordered_json ts = ordered_json::array(), req = ordered_json::array(),
               inc = ordered_json::array(), p50 = ordered_json::array(),
               p95 = ordered_json::array(), p99 = ordered_json::array(),
               cpu = ordered_json::array(), mem = ordered_json::array(),
               rx = ordered_json::array(), tx = ordered_json::array();
  std::array<ordered_json, 5> cls;
  for (auto& c : cls) c = ordered_json::array();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cur_sec_ >= 0) {
      const int64_t start =
          std::max(first_sec_, cur_sec_ - static_cast<int64_t>(kSeriesSeconds) + 1);
      // The current second's percentiles are computed live from its histogram.
      double live[3] = {0, 0, 0};
      if (sec_hist_->count() > 0) {
        const double qs[3] = {0.5, 0.95, 0.99};
        sec_hist_->Quantiles(qs, 3, live);
      }
      for (int64_t s = start; s <= cur_sec_; ++s) {
        const Slot& sl = slots_[static_cast<size_t>(s) % kSeriesSeconds];
        const SysSlot& ss = sys_slots_[static_cast<size_t>(s) % kSeriesSeconds];
        const bool ok = sl.sec == s;
        ts.push_back(s);
        req.push_back(ok ? sl.requests : 0);
        inc.push_back(ok ? sl.incomplete : 0);
        for (size_t c = 0; c < 5; ++c) cls[c].push_back(ok ? sl.classes[c] : 0);
        if (ok && s == cur_sec_ && sec_hist_->count() > 0) {
          p50.push_back(Round(live[0] / 1e6, 3));
          p95.push_back(Round(live[1] / 1e6, 3));
          p99.push_back(Round(live[2] / 1e6, 3));
        } else if (ok && sl.has_p) {
          p50.push_back(Round(sl.p50, 3));
          p95.push_back(Round(sl.p95, 3));
          p99.push_back(Round(sl.p99, 3));
        } else {
          p50.push_back(nullptr);
          p95.push_back(nullptr);
          p99.push_back(nullptr);
        }
        const bool sys = ss.sec == s;
        cpu.push_back(sys ? ordered_json(Round(ss.cpu, 1)) : ordered_json(nullptr));
        mem.push_back(sys ? ordered_json(Round(ss.mem, 1)) : ordered_json(nullptr));
        rx.push_back(sys ? ordered_json(Round(ss.rx, 1)) : ordered_json(nullptr));
        tx.push_back(sys ? ordered_json(Round(ss.tx, 1)) : ordered_json(nullptr));
      }
    }
  }
  ordered_json j;
  j["interval_seconds"] = 1;
  j["timestamps"] = std::move(ts);
  j["requests"] = std::move(req);
  j["incomplete"] = std::move(inc);
  for (size_t c = 0; c < 5; ++c) j["status_" + std::to_string(c + 1) + "xx"] = std::move(cls[c]);
  j["p50_ms"] = std::move(p50);
  j["p95_ms"] = std::move(p95);
  j["p99_ms"] = std::move(p99);
  j["cpu_usage"] = std::move(cpu);
  j["memory_usage"] = std::move(mem);
  j["net_rx_bytes_per_sec"] = std::move(rx);
  j["net_tx_bytes_per_sec"] = std::move(tx);
  return j;
}

ordered_json Aggregator::RequestsJson(size_t limit) const {
  const std::vector<RecentRequest> recent = Recent(limit);
  ordered_json arr = ordered_json::array();
  for (const RecentRequest& r : recent) {
    ordered_json e;
    e["time"] = FormatIsoLocal(static_cast<int64_t>(r.request_start_ns) + opts_.wall_offset_ns);
    e["pid"] = r.pid;
    e["method"] = r.method;
    e["path"] = r.path;
    e["query"] = r.query;
    e["status"] = r.incomplete ? ordered_json(nullptr) : ordered_json(r.status);
    e["incomplete"] = r.incomplete;
    e["tls"] = r.tls;
    e["response_time_ms"] = r.incomplete ? ordered_json(nullptr)
                                         : ordered_json(Round(r.response_ms, 3));
    e["request_bytes"] = r.request_bytes;
    e["response_bytes"] = r.response_bytes;
    e["local"] = FormatEndpoint(r.ep, true);
    e["remote"] = FormatEndpoint(r.ep, false);
    e["protocol"] = ProtocolName(r.protocol);
    e["grpc"] = r.is_grpc ? ordered_json{{"service", r.grpc_service},
                                         {"method", r.grpc_method},
                                         {"status", r.grpc_status >= 0 ? ordered_json(r.grpc_status)
                                                                       : ordered_json(nullptr)}}
                          : ordered_json(nullptr);
    arr.push_back(std::move(e));
  }
  ordered_json j;
  j["count"] = arr.size();
  j["requests"] = std::move(arr);
  return j;
}

std::string Aggregator::PrometheusText() const {
  const StatsSnapshot snap = Snapshot();
  std::string out;
  out.reserve(4096 + snap.routes.size() * 2048);
  auto it = std::back_inserter(out);
  static const char* kClass[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

  std::vector<std::string> tnames;  // escaped, [0] "other", [i + 1] target i
  for (const std::string& n : snap.target_names) tnames.push_back(Label(n));
  auto target_of = [&](int t) -> const std::string& {
    const size_t ti = t >= 0 && static_cast<size_t>(t) + 1 < tnames.size() ? t + 1 : 0;
    return tnames[ti];
  };
  // Identification on: process-level series carry the target and the container identity.
  auto proc_labels = [&](int t, const ContainerIdentity& c) {
    if (!snap.identification) return std::string();
    return fmt::format(",target=\"{}\",container_id=\"{}\",pod_uid=\"{}\"", target_of(t),
                       Label(c.container_id), Label(c.pod_uid));
  };

  Family(out, "reqmon_http_requests_total", "counter",
         snap.identification
             ? "Complete HTTP requests observed, by method, route template, status class and the "
               "target that selected the serving process."
             : "Complete HTTP requests observed, by method, route template and status class.");
  for (const RouteSummary& r : snap.routes) {
    const std::string m = Label(r.method), rt = Label(r.route);
    if (snap.identification) {
      for (size_t ti = 0; ti < r.classes_by_target.size() && ti < tnames.size(); ++ti) {
        for (size_t c = 0; c < 5; ++c) {
          if (r.classes_by_target[ti][c] == 0) continue;
          fmt::format_to(it,
                         "reqmon_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\","
                         "target=\"{}\"}} {}\n",
                         m, rt, kClass[c], tnames[ti], r.classes_by_target[ti][c]);
        }
      }
      continue;
    }
    for (size_t c = 0; c < 5; ++c) {
      if (r.s.classes[c] == 0) continue;
      fmt::format_to(it, "reqmon_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}\n",
                     m, rt, kClass[c], r.s.classes[c]);
    }
  }
  Family(out, "reqmon_http_responses_total", "counter",
         "Complete HTTP requests observed, by exact status code.");
  for (const auto& [code, n] : snap.status_codes) {
    fmt::format_to(it, "reqmon_http_responses_total{{code=\"{}\"}} {}\n", code, n);
  }
  Family(out, "reqmon_process_http_requests_total", "counter",
         "Complete HTTP requests observed, by serving process and status class.");
  for (const ProcessSummary& p : snap.processes) {
    if (p.exited_group) continue;  // folded pids: their own series ended, no new one starts
    const std::string comm = Label(p.comm);
    const std::string extra = proc_labels(p.identified ? p.target : -1, p.container);
    for (size_t c = 0; c < 5; ++c) {
      if (p.s.classes[c] == 0) continue;
      fmt::format_to(it, "reqmon_process_http_requests_total{{pid=\"{}\",comm=\"{}\",status=\"{}\"{}}} {}\n",
                     p.pid, comm, kClass[c], extra, p.s.classes[c]);
    }
  }
  if (snap.identification) {
    Family(out, "reqmon_target_http_requests_total", "counter",
           "Complete HTTP requests observed, by the target (--pid/--comm/--port/--cgroup/--all) "
           "that selected the serving process, and status class.");
    for (const TargetSummary& t : snap.targets) {
      const std::string tn = Label(t.name);
      for (size_t c = 0; c < 5; ++c) {
        fmt::format_to(it, "reqmon_target_http_requests_total{{target=\"{}\",status=\"{}\"}} {}\n",
                       tn, kClass[c], t.s.classes[c]);
      }
    }
    Family(out, "reqmon_target_http_request_duration_seconds", "histogram",
           "Response time of complete HTTP requests, by target.");
    for (const TargetSummary& t : snap.targets) {
      const std::string tn = Label(t.name);
      uint64_t cum = 0;
      for (size_t b = 0; b < kPromBucketsSeconds.size(); ++b) {
        cum += t.duration_buckets[b];
        fmt::format_to(it,
                       "reqmon_target_http_request_duration_seconds_bucket{{target=\"{}\",le=\"{}\"}} {}\n",
                       tn, kPromBucketsSeconds[b], cum);
      }
      cum += t.duration_buckets.back();
      fmt::format_to(it,
                     "reqmon_target_http_request_duration_seconds_bucket{{target=\"{}\",le=\"+Inf\"}} {}\n"
                     "reqmon_target_http_request_duration_seconds_sum{{target=\"{}\"}} {}\n"
                     "reqmon_target_http_request_duration_seconds_count{{target=\"{}\"}} {}\n",
                     tn, cum, tn, t.duration_sum_s, tn, t.s.count);
    }
  }
  Family(out, "reqmon_http_request_duration_seconds", "histogram",
         "Response time of complete HTTP requests (first request byte read to last response byte "
         "written), by method and route template.");
  for (const RouteSummary& r : snap.routes) {
    if (r.s.count == 0) continue;
    const std::string m = Label(r.method), rt = Label(r.route);
    uint64_t cum = 0;
    for (size_t b = 0; b < kPromBucketsSeconds.size(); ++b) {
      cum += r.duration_buckets[b];
      fmt::format_to(it,
                     "reqmon_http_request_duration_seconds_bucket{{method=\"{}\",route=\"{}\",le=\"{}\"}} {}\n",
                     m, rt, kPromBucketsSeconds[b], cum);
    }
    cum += r.duration_buckets.back();
    fmt::format_to(it,
                   "reqmon_http_request_duration_seconds_bucket{{method=\"{}\",route=\"{}\",le=\"+Inf\"}} {}\n"
                   "reqmon_http_request_duration_seconds_sum{{method=\"{}\",route=\"{}\"}} {}\n"
                   "reqmon_http_request_duration_seconds_count{{method=\"{}\",route=\"{}\"}} {}\n",
                   m, rt, cum, m, rt, r.duration_sum_s, m, rt, r.s.count);
  }
  // Queue time (issue #14): a summary per route, whose _sum / _count is the mean wait.
  Family(out, "reqmon_http_queue_time_seconds", "summary",
         "Time complete HTTP requests waited before the server first read them (listen backlog or "
         "receive queue), by method and route template; requests with a measured wait only.");
  for (const RouteSummary& r : snap.routes) {
    if (r.s.queue_count == 0) continue;
    const std::string m = Label(r.method), rt = Label(r.route);
    fmt::format_to(it,
                   "reqmon_http_queue_time_seconds{{method=\"{}\",route=\"{}\",quantile=\"0.5\"}} {}\n"
                   "reqmon_http_queue_time_seconds{{method=\"{}\",route=\"{}\",quantile=\"0.99\"}} {}\n"
                   "reqmon_http_queue_time_seconds_sum{{method=\"{}\",route=\"{}\"}} {}\n"
                   "reqmon_http_queue_time_seconds_count{{method=\"{}\",route=\"{}\"}} {}\n",
                   m, rt, r.s.queue_p50_ms / 1e3, m, rt, r.s.queue_p99_ms / 1e3, m, rt,
                   r.s.queue_avg_ms * static_cast<double>(r.s.queue_count) / 1e3, m, rt,
                   r.s.queue_count);
  }
  Family(out, "reqmon_http_requests_by_protocol_total", "counter",
         "Complete HTTP requests observed, by protocol (HTTP/1.0, HTTP/1.1, HTTP/2).");
  for (size_t i = 0; i < snap.protocols.size(); ++i) {
    fmt::format_to(it, "reqmon_http_requests_by_protocol_total{{protocol=\"{}\"}} {}\n",
                   ProtocolName(static_cast<HttpProtocol>(i)), snap.protocols[i]);
  }
  Family(out, "reqmon_http_unknown_path_requests_total", "counter",
         "HTTP/2 requests whose path could not be decoded (connection open before attach, or "
         "header bytes not captured); counted under the route \"(unknown)\".");
  fmt::format_to(it, "reqmon_http_unknown_path_requests_total {}\n", snap.unknown_paths);
  Family(out, "reqmon_grpc_requests_total", "counter",
         "Complete gRPC calls observed, by service, method and grpc-status (\"unknown\": no "
         "grpc-status trailer).");
  for (const GrpcMethodSummary& m : snap.grpc_methods) {
    const std::string sv = Label(m.service), me = Label(m.method);
    for (const auto& [code, n] : m.by_status) {
      fmt::format_to(it,
                     "reqmon_grpc_requests_total{{service=\"{}\",method=\"{}\",grpc_status=\"{}\"}} {}\n",
                     sv, me, GrpcStatusLabel(code), n);
    }
  }
  Family(out, "reqmon_http_incomplete_requests_total", "counter",
         "HTTP requests whose connection closed before the response ended.");
  fmt::format_to(it, "reqmon_http_incomplete_requests_total {}\n", snap.total.incomplete);
  Family(out, "reqmon_http_request_bytes_total", "counter", "HTTP request bytes (head + body).");
  fmt::format_to(it, "reqmon_http_request_bytes_total {}\n", snap.total.request_bytes);
  Family(out, "reqmon_http_response_bytes_total", "counter", "HTTP response bytes (head + body).");
  fmt::format_to(it, "reqmon_http_response_bytes_total {}\n", snap.total.response_bytes);
  Family(out, "reqmon_http_tls_requests_total", "counter",
         "Complete HTTP requests that travelled over TLS (plaintext from the TLS library).");
  fmt::format_to(it, "reqmon_http_tls_requests_total {}\n", snap.tls_requests);
  size_t uncovered = 0;
  for (const TlsProcessInfo& p : snap.tls_processes) uncovered += p.covered ? 0 : 1;
  Family(out, "reqmon_tls_not_covered_processes", "gauge",
         "Observed processes whose TLS reqmon cannot see (their HTTPS requests are missing).");
  fmt::format_to(it, "reqmon_tls_not_covered_processes {}\n", uncovered);
  Family(out, "reqmon_lost_events_total", "counter",
         "Kernel records dropped because the ring buffer was full.");
  fmt::format_to(it, "reqmon_lost_events_total {}\n", snap.lost_events);
  Family(out, "reqmon_unparsed_bytes_total", "counter",
         "Bytes on observed connections that were not parsed as HTTP.");
  fmt::format_to(it, "reqmon_unparsed_bytes_total {}\n", snap.unparsed_bytes);
  Family(out, "reqmon_unparsed_resyncs_total", "counter",
         "Times an HTTP stream lost its place and resynchronised.");
  fmt::format_to(it, "reqmon_unparsed_resyncs_total {}\n", snap.unparsed_resyncs);
  if (!snap.extra.empty()) {
    Family(out, "reqmon_stat", "gauge", "Internal reqmon counters, by section and name.");
    for (const auto& [section, counters] : snap.extra) {
      for (const auto& [k, v] : counters) {
        fmt::format_to(it, "reqmon_stat{{section=\"{}\",name=\"{}\"}} {}\n", Label(section),
                       Label(k), v);
      }
    }
  }

  const SystemSample& s = snap.system;
  auto gauge = [&](std::string_view name, std::string_view help, double v) {
    Family(out, name, "gauge", help);
    fmt::format_to(it, "{} {}\n", name, v);
  };
  auto counter = [&](std::string_view name, std::string_view help, uint64_t v) {
    Family(out, name, "counter", help);
    fmt::format_to(it, "{} {}\n", name, v);
  };
  gauge("reqmon_host_cpu_usage_percent", "Host CPU busy percent over the last sample interval.",
        Round(s.cpu_percent, 1));
  gauge("reqmon_host_memory_usage_percent", "Host memory in use, (total - available) / total.",
        Round(s.memory_percent, 1));
  gauge("reqmon_host_memory_total_bytes", "Host memory total.",
        static_cast<double>(s.memory_total_bytes));
  gauge("reqmon_host_memory_available_bytes", "Host memory available.",
        static_cast<double>(s.memory_available_bytes));
  Family(out, "reqmon_host_disk_total_bytes", "gauge", "Size of the monitored filesystem.");
  fmt::format_to(it, "reqmon_host_disk_total_bytes{{path=\"{}\"}} {}\n", Label(s.disk_path),
                 s.disk_total_bytes);
  Family(out, "reqmon_host_disk_used_bytes", "gauge", "Used bytes of the monitored filesystem.");
  fmt::format_to(it, "reqmon_host_disk_used_bytes{{path=\"{}\"}} {}\n", Label(s.disk_path),
                 s.disk_used_bytes);
  counter("reqmon_host_disk_read_bytes_total", "Bytes read from whole disks.", s.disk_read_bytes);
  counter("reqmon_host_disk_written_bytes_total", "Bytes written to whole disks.",
          s.disk_write_bytes);
  counter("reqmon_host_network_receive_bytes_total", "Bytes received on all interfaces.",
          s.net_rx_bytes);
  counter("reqmon_host_network_transmit_bytes_total", "Bytes sent on all interfaces.",
          s.net_tx_bytes);
  Family(out, "reqmon_process_cpu_usage_percent", "gauge",
         "CPU percent of an observed process over the last sample interval (100 = one core).");
  auto sample_labels = [&](uint32_t pid) {
    if (!snap.identification) return std::string();
    auto f = snap.sampled_identities.find(pid);
    return f == snap.sampled_identities.end() ? proc_labels(-1, ContainerIdentity{})
                                              : proc_labels(f->second.target, f->second.container);
  };
  for (const ProcessSample& p : s.processes) {
    fmt::format_to(it, "reqmon_process_cpu_usage_percent{{pid=\"{}\",comm=\"{}\"{}}} {}\n", p.pid,
                   Label(p.comm), sample_labels(p.pid), Round(p.cpu_percent, 1));
  }
  Family(out, "reqmon_process_resident_memory_bytes", "gauge",
         "Resident set size of an observed process.");
  for (const ProcessSample& p : s.processes) {
    fmt::format_to(it, "reqmon_process_resident_memory_bytes{{pid=\"{}\",comm=\"{}\"{}}} {}\n",
                   p.pid, Label(p.comm), sample_labels(p.pid), p.rss_bytes);
  }
  return out;
}

}  // namespace reqmon
