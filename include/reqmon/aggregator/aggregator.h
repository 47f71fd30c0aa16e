// SPDX-License-Identifier: MIT
#pragma once
/// The aggregator: counts, latency statistics, rates, a 15-minute 1 s series, per-route and
/// per-process breakdowns, recent requests and system samples; plus the renderers for the API.
///
/// Time model. Transactions carry CLOCK_MONOTONIC ns; the aggregator converts them to wall time
/// with the offset given at construction (realtime_ns - monotonic_ns, see WallOffsetNow()).
/// A transaction is placed in the wall-clock second in which it completed (response_end_ns, or
/// request_start_ns when incomplete). The "current second" is the latest second seen either in a
/// transaction or in Tick(now). Rates over N s are the requests of the N *completed* seconds
/// before the current one, divided by N; the series ends at the current (partial) second.
/// So replaying a capture gives a deterministic series driven by capture timestamps, and in live
/// mode the app calls Tick(monotonic now) every second so rates decay to 0 when traffic stops.
/// Late transactions (older than the current second) still count in their second's counts if it
/// is within the 15 minutes, but not in that second's percentiles (computed at rollover).
///
/// "requests" everywhere means complete transactions (with a status); incomplete ones
/// (tx.incomplete) are counted apart and have no latency.

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "reqmon/aggregator/batch_lock.h"
#include "reqmon/aggregator/histogram.h"
#include "reqmon/aggregator/process_identity.h"
#include "reqmon/aggregator/system_sampler.h"
#include "reqmon/parser/transaction.h"

namespace reqmon {

struct AggregatorOptions {
  int64_t wall_offset_ns = 0;        ///< realtime_ns - monotonic_ns (WallOffsetNow() in live mode)
  size_t max_routes = 500;           ///< distinct method+template routes; then one "other" route
  size_t max_processes = 1000;       ///< distinct pids; then one "other" process (pid 0)
  size_t max_exited_processes = 64;  ///< exited pids kept apart; older ones are folded into
                                     ///< one entry per comm (a server that reloads or recycles
                                     ///< its workers)
  size_t max_exited_groups = 64;     ///< distinct comms of folded processes; then "other"
  size_t route_cache_size = 10000;   ///< raw "METHOD path" (<= 512 bytes) -> route cache;
                                     ///< cleared when full
  size_t recent_capacity = 1000;     ///< recent requests kept for GET /requests
  size_t max_grpc_methods = 500;     ///< distinct gRPC service/method pairs; then one "other"
};

/// CLOCK_REALTIME - CLOCK_MONOTONIC, now, in ns.
int64_t WallOffsetNow();

/// Latency/count summary of a set of transactions (global, one route or one process).
struct LatencySummary {
  uint64_t count = 0;       ///< complete requests
  uint64_t incomplete = 0;  ///< incomplete transactions
  double avg_ms = 0, min_ms = 0, max_ms = 0;
  double p50_ms = 0, p90_ms = 0, p95_ms = 0, p99_ms = 0;
  std::array<uint64_t, 5> classes{};  ///< 1xx, 2xx, 3xx, 4xx, 5xx
  uint64_t request_bytes = 0, response_bytes = 0;
  double rate_1s = 0, rate_10s = 0, rate_60s = 0;  ///< requests per second
  /// Queue time (HttpTransaction::queue_ns) of the complete requests that have one measured.
  uint64_t queue_count = 0;
  double queue_avg_ms = 0, queue_p50_ms = 0, queue_p99_ms = 0;
};

/// Upper bounds (seconds) of the Prometheus duration histogram; +Inf is implicit.
inline constexpr std::array<double, 13> kPromBucketsSeconds = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

struct RouteSummary {
  std::string method;  ///< "GET"...; "OTHER" for the overflow route
  std::string route;   ///< template, e.g. "/users/{id}"; "other" for the overflow route
  LatencySummary s;
  std::array<uint64_t, kPromBucketsSeconds.size() + 1> duration_buckets{};  ///< non-cumulative
  double duration_sum_s = 0;
  /// With identification on: complete requests per class, per target; index 0 is "other"
  /// (no target matched), index i + 1 the target i. Shorter than the target list when the
  /// last targets have none.
  std::vector<std::array<uint64_t, 5>> classes_by_target;
};

struct ProcessSummary {
  uint32_t pid = 0;  ///< 0 for the overflow process and for exited groups
  std::string comm;
  bool exited_group = false;  ///< exited processes of this comm folded together (pid 0)
  uint64_t exited_processes = 0;  ///< exited_group: how many
  LatencySummary s;
  bool sampled = false;  ///< a system sample has covered this pid
  bool alive = false;
  double cpu_percent = 0;
  uint64_t rss_bytes = 0;
  bool identified = false;  ///< identification is on and this pid has been classified
  int target = -1;          ///< index into StatsSnapshot::targets' configured list, -1: other
  ContainerIdentity container;
};

/// One target's figures (identification on): the processes it selected, summed.
struct TargetSummary {
  std::string name;  ///< TargetSpec::Name(), or "other" for processes no target matched
  std::string kind;  ///< TargetSpec::KindName(), or "other"
  LatencySummary s;
  uint64_t processes = 0;  ///< observed processes attributed to it
  std::array<uint64_t, kPromBucketsSeconds.size() + 1> duration_buckets{};  ///< non-cumulative
  double duration_sum_s = 0;
};

/// A process whose TLS reqmon hooks (covered), or whose TLS it cannot see (with the reason).
struct TlsProcessInfo {
  uint32_t pid = 0;
  std::string comm;
  bool covered = false;
  std::string library;  ///< the file hooked, when covered
  std::string probes;   ///< where in it, when covered (OpenSslProbePlan::Describe())
  std::string reason;   ///< why not, when not covered
  std::string links;    ///< how the probes are attached, when covered: "uprobe_multi" or "uprobe"
};

/// gRPC calls of one service/method (HTTP/2 with content-type application/grpc).
struct GrpcMethodSummary {
  std::string service;  ///< "pkg.Service"; "other" for the overflow entry
  std::string method;   ///< "Method"; "other" for the overflow entry
  uint64_t count = 0;       ///< complete calls
  uint64_t incomplete = 0;  ///< reset or unanswered calls
  double avg_ms = 0;
  /// Complete calls by grpc-status (-1: the response carried no grpc-status), ascending.
  std::vector<std::pair<int, uint64_t>> by_status;
};

/// Everything /stats and /metrics/prometheus need, copied under the lock.
struct StatsSnapshot {
  LatencySummary total;
  std::vector<std::pair<int, uint64_t>> status_codes;  ///< in order of first appearance
  uint64_t unparsed_bytes = 0, unparsed_resyncs = 0, lost_events = 0;
  uint64_t tls_requests = 0;               ///< complete requests that travelled over TLS
  std::vector<TlsProcessInfo> tls_processes;  ///< SetTlsProcesses
  std::map<std::string, std::map<std::string, uint64_t>> extra;  ///< SetCounters sections
  std::vector<RouteSummary> routes;        ///< sorted by count desc, then method, route
  std::vector<ProcessSummary> processes;   ///< sorted by count desc, then pid
  SystemSample system;                     ///< the latest system sample
  int64_t wall_offset_ns = 0;
  bool identification = false;             ///< SetIdentification was called
  /// Identification on: one per configured target in order, then "other" when it has traffic.
  std::vector<TargetSummary> targets;
  std::vector<std::string> target_names;   ///< index 0 "other", i + 1 the target i
  /// Identification on: the identity of each pid of `system.processes`.
  std::map<uint32_t, ProcessIdentity> sampled_identities;

  // --- protocols and gRPC (HTTP/2) -----------------------------------------------------------
  /// Complete requests by protocol, indexed by HttpProtocol (HTTP/1.0, HTTP/1.1, HTTP/2).
  std::array<uint64_t, 3> protocols{};
  /// Requests (complete or not) whose path could not be decoded (HTTP/2 caught mid-connection or
  /// after a gap): reported with path "(unknown)".
  uint64_t unknown_paths = 0;
  uint64_t grpc_calls = 0;  ///< complete gRPC calls
  std::vector<std::pair<int, uint64_t>> grpc_status_codes;  ///< by grpc-status, ascending
  std::vector<GrpcMethodSummary> grpc_methods;  ///< sorted by count desc, then service, method
};

/// One entry of GET /requests.
struct RecentRequest {
  uint64_t request_start_ns = 0;  ///< monotonic
  uint32_t pid = 0;
  std::string method, path, query;
  int status = 0;
  bool incomplete = false;
  bool tls = false;
  double response_ms = 0;
  uint64_t request_bytes = 0, response_bytes = 0;
  rq_endpoints ep{};
  HttpProtocol protocol = HttpProtocol::kHttp11;
  bool is_grpc = false;
  std::string grpc_service, grpc_method;
  int grpc_status = -1;
};

/// Thread safety: every public method may be called from any thread; one mutex guards the state.
/// Intended use: the pipeline thread calls OnTransaction/OnUnparsed (cheap, no allocation in the
/// common path), the app's 1 s timer calls Tick/OnSystemSample/SetLostEvents/SetCounters, and
/// the HTTP handler threads call the renderers (they copy a snapshot under the lock and build
/// the JSON outside it).
class Aggregator : public TransactionSink {
 public:
  explicit Aggregator(AggregatorOptions opts = {});
  ~Aggregator() override;
  Aggregator(const Aggregator&) = delete;
  Aggregator& operator=(const Aggregator&) = delete;

  // --- input -------------------------------------------------------------------------------
  void OnTransaction(const HttpTransaction& tx) override;
  void OnUnparsed(const UnparsedBytes& u) override;
  /// Holds the lock from here to EndBatch(): one lock per drained batch, not per transaction.
  /// The pipeline thread may call no other method in between.
  void BeginBatch() override { batch_.Begin(); }
  void EndBatch() override { batch_.End(); }
  /// Advances the current second to now (monotonic ns); call every second in live mode.
  void Tick(uint64_t now_monotonic_ns);
  /// Stores the latest system sample: /metrics, the series (cpu, memory, net per second) and the
  /// per-process CPU/RSS/comm of the pids it covers.
  void OnSystemSample(const SystemSample& s);
  /// The kernel's lost-record counter (absolute value, not a delta).
  void SetLostEvents(uint64_t n);
  /// Replaces the generic counter section `section` (rendered as a top-level object in /stats
  /// and as reqmon_stat{section,name} in Prometheus). Names must not collide with /stats keys.
  void SetCounters(const std::string& section, const std::map<std::string, uint64_t>& counters);
  /// The processes whose TLS is hooked or not covered (live capture; see tls_probes.h).
  void SetTlsProcesses(std::vector<TlsProcessInfo> processes);
  /// Names a pid (e.g. from exec events) before the sampler sees it.
  void SetProcessName(uint32_t pid, const std::string& comm);
  /// Turns on identification: each new pid is classified once with `identify` (normally
  /// ProcessClassifier::Classify; called under the aggregator's lock, so it must not call back),
  /// its target and container identity are kept, and /stats gets "targets" and per-process
  /// "target"/"container_id"/"pod_uid"; Prometheus gets target/container labels. Call before
  /// the first transaction. Off by default (replays: the pids belong to another time).
  using ProcessIdentifier = std::function<ProcessIdentity(uint32_t pid)>;
  void SetIdentification(std::vector<TargetSpec> targets, ProcessIdentifier identify);

  // --- queries -----------------------------------------------------------------------------
  /// Pids seen in transactions (for SystemSampler::Sample), ascending, overflow bucket excluded.
  std::vector<uint32_t> ObservedPids() const;
  StatsSnapshot Snapshot() const;
  /// Up to `limit` most recent transactions, newest first.
  std::vector<RecentRequest> Recent(size_t limit) const;
  const AggregatorOptions& options() const { return opts_; }

  // --- renderers (see docs/api.md) -----------------------------------------------------------
  nlohmann::ordered_json MetricsJson() const;          ///< GET /metrics
  nlohmann::ordered_json StatsJson() const;            ///< GET /stats
  nlohmann::ordered_json SeriesJson() const;           ///< GET /series
  nlohmann::ordered_json RequestsJson(size_t limit) const;  ///< GET /requests?limit=N
  std::string PrometheusText() const;                  ///< GET /metrics/prometheus

  static constexpr size_t kSeriesSeconds = 900;

 private:
  struct RateRing;
  struct Stats;
  struct Route;
  struct Process;
  struct Slot;
  struct SysSlot;
  struct GrpcMethod;
  struct StrHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  int64_t WallSec(uint64_t mono_ns) const;
  void AdvanceLocked(int64_t sec);
  uint32_t RouteIndexLocked(const HttpTransaction& tx);
  uint32_t RouteIndexSlowLocked(const HttpTransaction& tx);
  Process& ProcessLocked(uint32_t pid);
  void SummarizeLocked(const Stats& st, LatencySummary* out) const;
  const ProcessIdentity& IdentityLocked(uint32_t pid);

  AggregatorOptions opts_;
  mutable std::mutex mu_;
  BatchLock batch_{mu_};  ///< mu_ held from BeginBatch() to EndBatch()

  std::unique_ptr<Stats> total_;
  std::array<uint64_t, 1000> status_counts_{};
  std::vector<int> status_order_;

  std::vector<std::unique_ptr<Route>> routes_;
  std::unordered_map<std::string, uint32_t, StrHash, std::equal_to<>> route_by_name_;
  std::unordered_map<std::string, uint32_t, StrHash, std::equal_to<>> route_cache_;
  std::string key_scratch_;
  int32_t other_route_ = -1;
  // The last transaction's route: a server under load answers runs of the same request, and
  // these two compares skip building the key and hashing it.
  std::string last_method_, last_path_;
  uint32_t last_route_ = 0;
  bool has_last_route_ = false;
  // The last transaction's process, for the same reason.
  Process* last_proc_ = nullptr;

  std::unordered_map<uint32_t, std::unique_ptr<Process>> procs_;
  std::unordered_map<uint32_t, std::string> names_;
  std::deque<uint32_t> exited_;  ///< pids in the order the sampler found them gone
  std::map<std::string, std::unique_ptr<Process>, std::less<>> exited_groups_;  ///< by comm
  /// The groups the last kMaxFoldedRemembered folded pids went into, for their late records.
  std::unordered_map<uint32_t, Process*> folded_into_;
  std::deque<uint32_t> folded_order_;
  static constexpr size_t kMaxFoldedRemembered = 1024;
  void FoldExitedLocked();
  void RememberFoldedLocked(uint32_t pid, Process* group);

  std::vector<Slot> slots_;
  std::vector<SysSlot> sys_slots_;
  std::unique_ptr<LogHistogram> sec_hist_;
  int64_t cur_sec_ = -1;
  int64_t first_sec_ = -1;

  std::vector<RecentRequest> recent_;
  size_t recent_next_ = 0;
  size_t recent_size_ = 0;

  ProcessIdentifier identify_;
  std::vector<TargetSpec> targets_;
  std::vector<std::unique_ptr<Stats>> target_stats_;  ///< [0] other, [i + 1] target i
  std::vector<std::array<uint64_t, kPromBucketsSeconds.size() + 1>> target_prom_;
  std::unordered_map<uint32_t, ProcessIdentity> idents_;  ///< bounded: cleared when large

  std::array<uint64_t, 3> protocols_{};
  uint64_t unknown_paths_ = 0;
  std::vector<std::unique_ptr<GrpcMethod>> grpc_;
  std::unordered_map<std::string, uint32_t, StrHash, std::equal_to<>> grpc_by_name_;
  int32_t grpc_other_ = -1;
  void GrpcLocked(const HttpTransaction& tx, uint64_t dur_ns);

  uint64_t unparsed_bytes_ = 0, unparsed_resyncs_ = 0, lost_events_ = 0;
  uint64_t tls_requests_ = 0;
  std::vector<TlsProcessInfo> tls_processes_;
  std::map<std::string, std::map<std::string, uint64_t>> extra_;
  SystemSample last_sample_;
};

/// "1.2.3.4:80" or "[::1]:8080" for the local (local=true) or remote side of ep.
std::string FormatEndpoint(const rq_endpoints& ep, bool local);
/// ISO-8601 local time with milliseconds and UTC offset: "2024-11-22T10:00:00.123+01:00".
std::string FormatIsoLocal(int64_t wall_ns);
/// Escapes a Prometheus label value (backslash, double quote, newline).
std::string PromEscapeLabel(std::string_view v);

}  // namespace reqmon
