// SPDX-License-Identifier: MIT
// reqmon: observe a web server's HTTP traffic from the kernel and serve live statistics.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "demo.h"
#include "options.h"
#include "pipeline.h"
#include "reqmon/abi.h"
#include "reqmon/aggregator/aggregator.h"
#include "reqmon/aggregator/request_log.h"
#include "reqmon/aggregator/system_sampler.h"
#include "reqmon/alerts/notifier.h"
#include "reqmon/alerts/rules.h"
#include "reqmon/alerts/service.h"
#include "reqmon/analytics/analyzer.h"
#include "reqmon/api/server.h"
#include "reqmon/capture/bpf_capture.h"
#include "reqmon/capture/capture_file.h"
#include "reqmon/capture/targets.h"
#include "reqmon/parser/query_redaction.h"

namespace reqmon {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

void InstallSignals() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking poll returns at once
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int Fail(const std::string& msg, int code = 1) {
  std::fprintf(stderr, "reqmon: %s\n", msg.c_str());
  return code;
}

uint64_t MonoNow() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + ts.tv_nsec;
}

// The capture's view of TLS coverage, for /stats.
std::vector<TlsProcessInfo> TlsInfo(const BpfCapture& cap) {
  std::vector<TlsProcessInfo> out;
  for (const TlsProcess& p : cap.TlsProcesses())
    out.push_back({static_cast<uint32_t>(p.pid), p.comm, p.covered, p.library, p.probes, p.reason,
                   p.links});
  return out;
}

// Starts the API server, or returns nullptr with *error.
std::unique_ptr<ApiServer> StartApi(const Options& o, Aggregator& agg,
                                    const alerts::AlertService* alerting,
                                    const analytics::AnalyticsService& analytics,
                                    std::string* error) {
  if (o.no_api) return nullptr;
  ApiServerOptions ao;
  if (!ParseListen(o.listen, &ao.host, &ao.port, error)) return nullptr;
  ao.web_dir = o.web_dir;
  ao.token = o.token;
  ao.start_ready = !o.replay.empty();  // live: ready once the capture is attached
  auto api = std::make_unique<ApiServer>(agg, ao);
  api->AddJsonEndpoint("/alerts", [alerting] {
    return alerting ? alerting->engine().AlertsJson().dump()
                    : std::string(R"({"rules":0,"active":[],"history":[]})");
  });
  if (alerting) api->AddPrometheusText([alerting] { return alerting->engine().PrometheusText(); });
  const analytics::Analyzer& an = analytics.analyzer();
  api->AddJsonEndpoint("/analytics", [&an] { return an.Json().dump(); });
  api->AddPrometheusText([&an] { return an.PrometheusText(); });
  try {
    api->Start();
  } catch (const std::exception& e) {
    *error = e.what();
    return nullptr;
  }
  return api;
}

// Analytics' figures become the alert signals utilization, hours_to_full and anomaly.
void FeedAlerts(alerts::AlertService* alerting, const analytics::AnalyticsService& analytics) {
  if (!alerting) return;
  alerting->SetEnricher([&an = analytics.analyzer()](alerts::SecondSample* s) {
    s->utilization_percent = an.UtilizationPercent();
    s->hours_to_full = an.HoursToFull();
    s->anomaly_score = an.AnomalyScore();
  });
}

// Opens the request log, or returns nullptr with *error.
std::unique_ptr<RequestLog> OpenLog(const Options& o, const std::string& path, int64_t offset,
                                    std::string* error) {
  RequestLogOptions lo;
  lo.path = path;
  lo.sample_every = static_cast<uint32_t>(o.log_requests);
  lo.system_interval_s = o.log_interval;
  lo.max_file_bytes = static_cast<size_t>(o.log_max_bytes);
  lo.max_files = static_cast<size_t>(o.log_keep);
  lo.wall_offset_ns = offset;
  try {
    return std::make_unique<RequestLog>(lo);
  } catch (const std::exception& e) {
    *error = e.what();
    return nullptr;
  }
}

int RunReplay(const Options& o) {
  std::string err;
  auto reader = CaptureReader::Open(o.replay, &err);
  if (!reader) return Fail(err);
  AggregatorOptions aopts;
  aopts.wall_offset_ns = reader->info().realtime_offset_ns;
  Aggregator agg(aopts);
  FanoutSink out;
  out.Add(&agg);
  std::unique_ptr<RequestLog> log;
  if (!o.log_file.empty() && o.log_file != "none") {
    log = OpenLog(o, o.log_file, aopts.wall_offset_ns, &err);
    if (!log) return Fail(err);
    out.Add(log.get());
  }
  // Rules are evaluated over the capture's own time (no notifications are sent for the past).
  std::unique_ptr<alerts::AlertService> alerting;
  if (o.alerts_on) alerting = std::make_unique<alerts::AlertService>(o.rules, agg, log.get(), nullptr);
  // Analytics and alerts see the capture's seconds, in that order.
  analytics::AnalyticsService analytics(agg);
  FeedAlerts(alerting.get(), analytics);
  alerts::ReplayClock clock(
      out,
      [&](int64_t sec) {
        analytics.Tick(sec);
        if (alerting) alerting->Tick(sec);
      },
      aopts.wall_offset_ns);
  QueryRedactor redactor(clock, o.query_mode());
  Pipeline pipe(redactor, nullptr);
  pipe.set_abi_version(reader->info().abi_version);
  std::string_view rec;
  while (reader->Next(&rec)) pipe.OnRecord(rec.data(), rec.size());
  pipe.tracker().FinishAll();
  clock.Finish();
  agg.SetLostEvents(pipe.recorded_lost());
  agg.SetCounters("capture", pipe.Counters());
  agg.SetCounters("http2", pipe.Http2Counters());
  if (log) log->Flush();
  int code = 0;
  if (!reader->error().empty()) {
    std::fprintf(stderr, "reqmon: %s\n", reader->error().c_str());
    code = 2;
  }
  if (pipe.bad_records())
    std::fprintf(stderr, "reqmon: %s: skipped %llu malformed records (first: %s)\n",
                 o.replay.c_str(), static_cast<unsigned long long>(pipe.bad_records()),
                 pipe.first_error().c_str());
  if (o.print_stats || o.print_analytics) {
    if (o.print_stats) std::printf("%s\n", agg.StatsJson().dump(2).c_str());
    if (o.print_analytics) std::printf("%s\n", analytics.analyzer().Json().dump(2).c_str());
    return code;
  }
  // Serve the replayed figures until interrupted.
  auto api = StartApi(o, agg, alerting.get(), analytics, &err);
  if (!api && !o.no_api) return Fail(err);
  if (api)
    std::fprintf(stderr, "reqmon: replayed %s (%llu records); serving on http://%s/ (Ctrl-C to "
                 "stop)\n", o.replay.c_str(), static_cast<unsigned long long>(pipe.records()),
                 api->address().c_str());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.duration);
  while (!g_stop && (o.duration <= 0 || std::chrono::steady_clock::now() < deadline))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (api) api->Stop();
  return code;
}

int RunLive(Options o) {
  std::string err;
  // Fail fast on the things a user can fix without privileges.
  if (std::string why = CheckBpfPrerequisites(); !why.empty()) return Fail(why);

  std::unique_ptr<Demo> demo;
  if (o.demo) {
    demo = Demo::Start(&err);
    if (!demo) return Fail(err);
    o.pids.push_back(demo->server_pid());
    std::fprintf(stderr, "reqmon: no target given: observing a demo server (python3 http.server, "
                 "PID %d, http://127.0.0.1:%d/) with light traffic\n",
                 demo->server_pid(), demo->port());
  }

  // Each observed process is attributed to the target that selected it and labelled with its
  // container identity (see reqmon/aggregator/process_identity.h).
  std::vector<TargetSpec> specs;
  auto add_spec = [&specs](TargetKind kind) -> TargetSpec& {
    specs.emplace_back();
    specs.back().kind = kind;
    return specs.back();
  };
  for (int p : o.pids) add_spec(TargetKind::kPid).pid = static_cast<uint32_t>(p);
  for (const auto& c : o.comms) add_spec(TargetKind::kComm).comm = c;
  for (int p : o.ports) add_spec(TargetKind::kPort).port = static_cast<uint16_t>(p);
  for (const auto& c : o.cgroups) add_spec(TargetKind::kCgroup).cgroup_dir = c;
  if (o.all) add_spec(TargetKind::kAll);
  ProcessClassifier classifier(o.proc_root, specs, [root = o.proc_root](uint16_t port) {
    std::vector<int> out;
    for (pid_t p : ProcessesListeningOn(root, port)) out.push_back(p);
    return out;
  });

  AggregatorOptions aopts;
  aopts.wall_offset_ns = RealtimeOffsetNs();
  Aggregator agg(aopts);
  agg.SetIdentification(specs, [&classifier](uint32_t pid) { return classifier.Classify(pid); });
  FanoutSink out;
  out.Add(&agg);


  std::unique_ptr<CaptureWriter> recorder;
  if (!o.record.empty()) {
    CaptureInfo info;
    info.realtime_offset_ns = aopts.wall_offset_ns;
    info.payload_limit = o.payload_bytes;
    recorder = CaptureWriter::Create(o.record, info, &err);
    if (!recorder) return Fail(err);
  }
  QueryRedactor redactor(out, o.query_mode());
  Pipeline pipe(redactor, recorder.get());

  // Alerts: evaluated once a second on the sampler thread; notifications from their own thread.
  std::unique_ptr<alerts::Notifier> notifier;
  std::unique_ptr<alerts::AlertService> alerting;
  if (o.alerts_on) {
    alerts::NotifierOptions no;
    no.webhooks = o.alert_webhooks;
    no.alertmanager = o.alertmanager;
    no.resend_s = o.alert_resend;
    no.external_url = "http://" + o.listen + "/";
    notifier = std::make_unique<alerts::Notifier>(no);
    alerting = std::make_unique<alerts::AlertService>(o.rules, agg, nullptr, notifier.get());
  }
  analytics::AnalyticsService analytics(agg);
  FeedAlerts(alerting.get(), analytics);

  // The API first: a busy port is reported before anything is attached.
  auto api = StartApi(o, agg, alerting.get(), analytics, &err);
  if (!api && !o.no_api) return Fail(err);

  CaptureConfig cc;
  for (int p : o.pids) cc.pids.push_back(p);
  cc.comms = o.comms;
  for (int p : o.ports) cc.ports.push_back(static_cast<uint16_t>(p));
  cc.cgroups = o.cgroups;
  cc.all = o.all;
  cc.payload_bytes = o.payload_bytes;
  cc.ring_buffer_mb = o.ring_buffer_mb;
  cc.proc_root = o.proc_root;
  cc.verbose = o.verbose;
  cc.tls = !o.no_tls;
  cc.queue_time = !o.no_queue_time;
  cc.h2_frames = !o.no_h2_frames;
  auto cap = BpfCapture::Start(cc, &Pipeline::OnRecordThunk, &pipe, &err);
  if (!cap) {
    if (api) api->Stop();
    return Fail(err);
  }
  cap->SetBatchCallback(&Pipeline::OnBatchThunk);
  // The log is opened once the targets are known to be good, so that a failed start leaves no
  // empty log behind. Records reach the sinks only from Poll(), below.
  std::unique_ptr<RequestLog> log;
  if (o.log_file != "none") {
    log = OpenLog(o, o.log_file.empty() ? "monitor_logs.txt" : o.log_file, aopts.wall_offset_ns,
                  &err);
    if (!log) {
      if (api) api->Stop();
      return Fail(err);
    }
    out.Add(log.get());
    if (alerting) alerting->SetLog(log.get());  // before the sampler thread starts
  }
  for (pid_t p : cap->TargetPids()) agg.SetProcessName(p, ProcessComm(o.proc_root, p));
  agg.SetTlsProcesses(TlsInfo(*cap));
  if (api) api->SetReady(true);
  size_t hooked = 0;
  for (const TlsProcess& p : cap->TlsProcesses()) hooked += p.covered ? 1 : 0;
  std::fprintf(stderr, "reqmon: observing %zu process(es) (%s eBPF build; TLS hooked in %zu); "
               "dashboard at http://%s/\n", cap->TargetPids().size(), cap->variant(), hooked,
               api ? api->address().c_str() : "(off)");

  // Once a second, off the drain thread: system sample, rates, target refresh, kernel counters.
  std::atomic<bool> sampler_stop{false};
  std::thread sampler([&] {
    SamplerOptions so;
    so.proc_root = o.proc_root;
    SystemSampler sampler(so);
    // The first CPU figure needs a full second of /proc/stat deltas behind it.
    for (int i = 0; i < 10 && !sampler_stop; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    while (!sampler_stop) {
      std::vector<uint32_t> pids;
      std::set<uint32_t> seen;
      for (pid_t p : cap->TargetPids()) seen.insert(p);
      for (uint32_t p : agg.ObservedPids()) seen.insert(p);
      pids.assign(seen.begin(), seen.end());
      SystemSample s = sampler.Sample(pids);
      agg.OnSystemSample(s);
      agg.Tick(MonoNow());
      CaptureCounters kc = cap->Counters();
      agg.SetLostEvents(kc.lost);
      agg.SetTlsProcesses(TlsInfo(*cap));
      if (log) log->OnSystemSample(s);
      const int64_t sec = (static_cast<int64_t>(MonoNow()) + aopts.wall_offset_ns) / 1000000000;
      analytics.Tick(sec);
      if (alerting) alerting->Tick(sec);
      if (!cc.comms.empty() || !cc.ports.empty() || !cc.cgroups.empty()) cap->RefreshTargets();
      for (int i = 0; i < 10 && !sampler_stop; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  // The drain loop: records arrive without wake-ups, except the one that takes the backlog past
  // 256 KiB, so under load batches are bounded by that and the timer drains the trickle. 20 ms,
  // not 5: a wake-up costs ~60 us of CPU here, and at 5 ms the timer, not the backlog, set the
  // pace below ~150k requests/s (reqmon idle: 8 ms of CPU a second at 5 ms, 3 at 20 ms; a 4 KiB
  // file at 40k req/s: 1.2-1.4 us of CPU a request at 5 ms, 0.8-1.3 at 20 ms, the same p99).
  auto start = std::chrono::steady_clock::now();
  auto next_publish = start;
  uint64_t last_lost_written = 0;
  // The recorder keeps the kernel's lost-event count in the capture when it changes.
  auto record_lost = [&](uint64_t lost) {
    if (lost == last_lost_written) return;
    rq_lost_event le{};
    le.h.type = RQ_EV_LOST;
    le.h.fd = -1;
    le.h.ts_enter = le.h.ts_exit = MonoNow();
    le.lost = lost;
    recorder->Write(&le, sizeof(le));
    last_lost_written = lost;
  };
  int rc = 0;
  while (!g_stop) {
    int n = cap->Poll(20);
    if (n < 0 && n != -EINTR) {
      rc = 1;
      std::fprintf(stderr, "reqmon: ring buffer poll failed: %s\n", std::strerror(-n));
      break;
    }
    if (log) log->Pump(MonoNow());
    auto now = std::chrono::steady_clock::now();
    if (now >= next_publish) {
      next_publish = now + std::chrono::seconds(1);
      // Give back the memory of connections that are gone (a burst of them, say).
      if (pipe.tracker().Compact() > 0) malloc_trim(0);
      CaptureCounters kc = cap->Counters();
      auto counters = pipe.Counters();
      counters["kernel_data_records"] = kc.data;
      counters["kernel_truncated_records"] = kc.truncated;
      counters["kernel_connection_records"] = kc.conn;
      counters["kernel_tls_records"] = kc.tls_data;
      counters["kernel_tls_ciphertext_bytes"] = kc.tls_cipher_bytes;
      counters["kernel_tls_unbound"] = kc.tls_unbound;
      counters["kernel_body_bytes_not_copied"] = kc.body_skipped_bytes;
      counters["kernel_h2_frames_lost"] = kc.h2_lost;
      counters["tls_uprobes"] = cap->TlsLinks();
      counters["connections_open"] = pipe.tracker().counters().connections_open;
      counters["targets"] = cap->TargetPids().size();
      agg.SetCounters("capture", counters);
      agg.SetCounters("http2", pipe.Http2Counters());
      if (recorder) {
        record_lost(kc.lost);
        recorder->Flush();
      }
    }
    if (o.duration > 0 && now - start >= std::chrono::duration<double>(o.duration)) break;
  }

  // Drain what is left, finish open connections, stop in reverse order.
  while (cap->Poll(0) > 0) {
  }
  sampler_stop = true;
  sampler.join();
  CaptureCounters kc = cap->Counters();
  cap.reset();  // detaches every program
  pipe.tracker().FinishAll();
  agg.SetLostEvents(kc.lost);
  if (recorder) {
    record_lost(kc.lost);
    recorder->Flush();
    if (!recorder->error().empty()) std::fprintf(stderr, "reqmon: %s\n", recorder->error().c_str());
  }
  if (log) log->Flush();
  if (api) api->Stop();
  if (kc.lost)
    std::fprintf(stderr, "reqmon: %llu events were lost (the ring buffer was full); raise "
                 "--ring-buffer-mb\n", static_cast<unsigned long long>(kc.lost));
  if (o.print_stats) std::printf("%s\n", agg.StatsJson().dump(2).c_str());
  if (o.print_analytics) std::printf("%s\n", analytics.analyzer().Json().dump(2).c_str());
  return rc;
}

}  // namespace
}  // namespace reqmon

int main(int argc, char** argv) {
  using namespace reqmon;
  Options o;
  if (int code = ParseOptions(argc, argv, &o); code >= 0) return code;
  InstallSignals();
  if (!o.replay.empty()) return RunReplay(o);
  return RunLive(o);
}
