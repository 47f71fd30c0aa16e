// SPDX-License-Identifier: MIT
#include "reqmon/aggregator/aggregator.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cstdio>

#include "aggregator_internal.h"
#include "reqmon/aggregator/route_template.h"

namespace reqmon {

namespace {

// Longer raw paths are templated every time rather than cached (bounds the cache's memory).
constexpr size_t kMaxCachedKey = 512;

constexpr std::array<uint64_t, kPromBucketsSeconds.size()> MakePromNs() {
  std::array<uint64_t, kPromBucketsSeconds.size()> a{};
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<uint64_t>(kPromBucketsSeconds[i] * 1e9 + 0.5);
  }
  return a;
}
constexpr auto kPromNs = MakePromNs();

int64_t TimespecNs(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

int64_t WallOffsetNow() {
  // Read monotonic on both sides of realtime and use the midpoint.
  const int64_t m1 = TimespecNs(CLOCK_MONOTONIC);
  const int64_t r = TimespecNs(CLOCK_REALTIME);
  const int64_t m2 = TimespecNs(CLOCK_MONOTONIC);
  return r - (m1 + (m2 - m1) / 2);
}

Aggregator::Aggregator(AggregatorOptions opts)
    : opts_(opts),
      total_(std::make_unique<Stats>()),
      slots_(kSeriesSeconds),
      sys_slots_(kSeriesSeconds),
      sec_hist_(std::make_unique<LogHistogram>()),
      recent_(opts.recent_capacity) {
  if (opts_.max_routes == 0) opts_.max_routes = 1;
  route_cache_.reserve(std::min<size_t>(opts_.route_cache_size, 1 << 16));
  route_by_name_.reserve(opts_.max_routes + 1);
  key_scratch_.reserve(256);
  status_order_.reserve(64);
}

Aggregator::~Aggregator() = default;

int64_t Aggregator::WallSec(uint64_t mono_ns) const {
  const int64_t wall = static_cast<int64_t>(mono_ns) + opts_.wall_offset_ns;
  return wall <= 0 ? 0 : wall / 1000000000;
}

void Aggregator::AdvanceLocked(int64_t sec) {
  if (sec <= cur_sec_) return;
  if (cur_sec_ >= 0) {
    Slot& s = slots_[static_cast<size_t>(cur_sec_) % kSeriesSeconds];
    if (s.sec == cur_sec_ && sec_hist_->count() > 0) {
      const double qs[3] = {0.5, 0.95, 0.99};
      double out[3];
      sec_hist_->Quantiles(qs, 3, out);
      s.has_p = true;
      s.p50 = static_cast<float>(out[0] / 1e6);
      s.p95 = static_cast<float>(out[1] / 1e6);
      s.p99 = static_cast<float>(out[2] / 1e6);
    }
  } else {
    first_sec_ = sec;
  }
  sec_hist_->Reset();
  cur_sec_ = sec;
  Slot& n = slots_[static_cast<size_t>(sec) % kSeriesSeconds];
  n = Slot{};
  n.sec = sec;
}

uint32_t Aggregator::RouteIndexLocked(const HttpTransaction& tx) {
  if (has_last_route_ && tx.path == last_path_ && tx.method == last_method_) return last_route_;
  const uint32_t idx = RouteIndexSlowLocked(tx);
  last_method_.assign(tx.method);
  last_path_.assign(tx.path);
  last_route_ = idx;
  has_last_route_ = true;
  return idx;
}

uint32_t Aggregator::RouteIndexSlowLocked(const HttpTransaction& tx) {
  key_scratch_.assign(tx.method);
  key_scratch_ += ' ';
  key_scratch_ += tx.path;
  auto it = route_cache_.find(std::string_view(key_scratch_));
  if (it != route_cache_.end()) return it->second;

  std::string name = tx.method;
  name += ' ';
  name += TemplatePath(tx.path);
  uint32_t idx;
  auto rit = route_by_name_.find(std::string_view(name));
  if (rit != route_by_name_.end()) {
    idx = rit->second;
  } else if (routes_.size() < opts_.max_routes) {
    auto r = std::make_unique<Route>();
    r->method = tx.method;
    r->route = name.substr(tx.method.size() + 1);
    idx = static_cast<uint32_t>(routes_.size());
    routes_.push_back(std::move(r));
    route_by_name_.emplace(name, idx);
  } else {
    if (other_route_ < 0) {
      auto r = std::make_unique<Route>();
      r->method = "OTHER";
      r->route = "other";
      other_route_ = static_cast<int32_t>(routes_.size());
      routes_.push_back(std::move(r));
    }
    idx = static_cast<uint32_t>(other_route_);
  }
  if (key_scratch_.size() <= kMaxCachedKey) {
    if (route_cache_.size() >= opts_.route_cache_size) route_cache_.clear();
    route_cache_.emplace(key_scratch_, idx);
  }
  return idx;
}

Aggregator::Process& Aggregator::ProcessLocked(uint32_t pid) {
  if (last_proc_ != nullptr && last_proc_->pid == pid) return *last_proc_;
  auto it = procs_.find(pid);
  if (it != procs_.end()) {
    last_proc_ = it->second.get();
    return *last_proc_;
  }
  // A late record of a folded pid (records drain within milliseconds of the sample that found it
  // gone) goes to its group: a new entry would be folded again and counted twice there. Only the
  // last 1,024 folded pids are remembered: a new process would have that pid only after the pid
  // space wrapped around (4,194,304 pids by default).
  if (auto f = folded_into_.find(pid); f != folded_into_.end()) return *f->second;
  if (procs_.size() >= opts_.max_processes) {
    pid = 0;
    it = procs_.find(0);
    if (it != procs_.end()) return *it->second;
  }
  auto p = std::make_unique<Process>();
  p->pid = pid;
  if (identify_ && pid != 0) {
    const ProcessIdentity& id = IdentityLocked(pid);
    p->identified = true;
    p->target = id.target;
    p->container = id.container;
    if (!id.comm.empty()) p->comm = id.comm;
  }
  if (pid == 0) {
    p->comm = "other";
  } else if (auto n = names_.find(pid); n != names_.end()) {
    p->comm = n->second;
  }
  Process& ref = *p;
  procs_.emplace(pid, std::move(p));
  return ref;
}

void Aggregator::OnTransaction(const HttpTransaction& tx) {
  const bool inc = tx.incomplete;
  uint64_t ts = inc ? std::max(tx.request_start_ns, tx.response_end_ns) : tx.response_end_ns;
  if (ts == 0) ts = tx.request_start_ns;
  const int64_t sec = WallSec(ts);
  const uint64_t dur = tx.response_ns();
  const int cls = (!inc && tx.status >= 100 && tx.status < 600) ? tx.status / 100 - 1 : -1;

  auto lock = batch_.LockUnlessBatch();
  AdvanceLocked(sec);

  if (sec > cur_sec_ - static_cast<int64_t>(kSeriesSeconds)) {
    Slot& sl = slots_[static_cast<size_t>(sec) % kSeriesSeconds];
    if (sl.sec == sec) {
      if (inc) {
        ++sl.incomplete;
      } else {
        ++sl.requests;
        if (cls >= 0) ++sl.classes[cls];
        if (sec == cur_sec_) sec_hist_->Record(dur);
      }
    }
  }

  total_->Add(tx, dur, cls, sec, cur_sec_);
  if (tx.tls && !inc) ++tls_requests_;
  if (!inc && tx.status >= 0 && tx.status < static_cast<int>(status_counts_.size())) {
    if (status_counts_[tx.status]++ == 0) status_order_.push_back(tx.status);
  }

  Route& r = *routes_[RouteIndexLocked(tx)];
  r.st.Add(tx, dur, cls, sec, cur_sec_);
  size_t bucket = 0;
  if (!inc) {
    while (bucket < kPromNs.size() && dur > kPromNs[bucket]) ++bucket;
    ++r.prom[bucket];
  }

  Process& proc = ProcessLocked(tx.pid);
  proc.st.Add(tx, dur, cls, sec, cur_sec_);
  if (identify_) {
    // The overflow process (pid 0) mixes pids: look each one up in the identity cache.
    const int t = proc.pid != 0 ? proc.target : IdentityLocked(tx.pid).target;
    const size_t ti = t >= 0 && static_cast<size_t>(t) < targets_.size()
                          ? static_cast<size_t>(t) + 1 : 0;
    target_stats_[ti]->Add(tx, dur, cls, sec, cur_sec_);
    if (!inc) {
      ++target_prom_[ti][bucket];
      if (cls >= 0) {
        if (r.by_target.size() <= ti) r.by_target.resize(ti + 1);
        ++r.by_target[ti][cls];
      }
    }
  }

  if (!inc) ++protocols_[static_cast<size_t>(tx.protocol) % protocols_.size()];
  if (tx.headers_unknown && tx.path == "(unknown)") ++unknown_paths_;
  if (tx.is_grpc) [[unlikely]] GrpcLocked(tx, dur);

  if (!recent_.empty()) {
    RecentRequest& e = recent_[recent_next_];
    e.request_start_ns = tx.request_start_ns;
    e.pid = tx.pid;
    e.method.assign(tx.method);
    e.path.assign(tx.path);
    e.query.assign(tx.query);
    e.status = tx.status;
    e.incomplete = inc;
    e.tls = tx.tls;
    e.response_ms = static_cast<double>(dur) / 1e6;
    e.request_bytes = tx.request_bytes;
    e.response_bytes = tx.response_bytes;
    e.ep = tx.ep;
    e.protocol = tx.protocol;
    e.is_grpc = tx.is_grpc;
    if (tx.is_grpc) {
      e.grpc_service.assign(tx.grpc_service);
      e.grpc_method.assign(tx.grpc_method);
    } else {
      e.grpc_service.clear();
      e.grpc_method.clear();
    }
    e.grpc_status = tx.grpc_status;
    recent_next_ = (recent_next_ + 1) % recent_.size();
    if (recent_size_ < recent_.size()) ++recent_size_;
  }
}

void Aggregator::SetTlsProcesses(std::vector<TlsProcessInfo> processes) {
  std::lock_guard<std::mutex> lock(mu_);
  tls_processes_ = std::move(processes);
}

void Aggregator::GrpcLocked(const HttpTransaction& tx, uint64_t dur_ns) {
  key_scratch_.assign(tx.grpc_service);
  key_scratch_ += '/';
  key_scratch_ += tx.grpc_method;
  uint32_t idx;
  auto it = grpc_by_name_.find(std::string_view(key_scratch_));
  if (it != grpc_by_name_.end()) {
    idx = it->second;
  } else if (grpc_.size() < opts_.max_grpc_methods) {
    auto g = std::make_unique<GrpcMethod>();
    g->service = tx.grpc_service;
    g->method = tx.grpc_method;
    idx = static_cast<uint32_t>(grpc_.size());
    grpc_.push_back(std::move(g));
    grpc_by_name_.emplace(key_scratch_, idx);
  } else {
    if (grpc_other_ < 0) {
      auto g = std::make_unique<GrpcMethod>();
      g->service = g->method = "other";
      grpc_other_ = static_cast<int32_t>(grpc_.size());
      grpc_.push_back(std::move(g));
    }
    idx = static_cast<uint32_t>(grpc_other_);
  }
  GrpcMethod& g = *grpc_[idx];
  if (tx.incomplete) {
    ++g.incomplete;
    return;
  }
  ++g.count;
  g.sum_ns += dur_ns;
  ++g.by_status[tx.grpc_status];
}

void Aggregator::OnUnparsed(const UnparsedBytes& u) {
  auto lock = batch_.LockUnlessBatch();
  unparsed_bytes_ += u.bytes;
  if (u.resync) ++unparsed_resyncs_;
}

void Aggregator::Tick(uint64_t now_monotonic_ns) {
  const int64_t sec = WallSec(now_monotonic_ns);
  std::lock_guard<std::mutex> lock(mu_);
  AdvanceLocked(sec);
}

void Aggregator::OnSystemSample(const SystemSample& s) {
  const int64_t sec = WallSec(s.mono_ns);
  std::lock_guard<std::mutex> lock(mu_);
  last_sample_ = s;
  SysSlot& ss = sys_slots_[static_cast<size_t>(sec) % kSeriesSeconds];
  ss.sec = sec;
  ss.cpu = static_cast<float>(s.cpu_percent);
  ss.mem = static_cast<float>(s.memory_percent);
  ss.rx = s.net_rx_bytes_per_sec;
  ss.tx = s.net_tx_bytes_per_sec;
  for (const ProcessSample& p : s.processes) {
    if (identify_ && p.pid != 0 && p.alive) IdentityLocked(p.pid);
    if (!p.comm.empty()) names_[p.pid] = p.comm;
    auto it = procs_.find(p.pid);
    if (it == procs_.end() || p.pid == 0) continue;
    Process& pr = *it->second;
    if (!p.alive && (pr.alive || !pr.sampled)) exited_.push_back(p.pid);
    pr.sampled = true;
    pr.alive = p.alive;
    pr.cpu = p.cpu_percent;
    pr.rss = p.rss_bytes;
    if (!p.comm.empty()) pr.comm = p.comm;
  }
  FoldExitedLocked();
}

// Each process keeps two latency histograms (~35 KiB). A server that reloads, or recycles its
// workers after N requests, leaves a new exited pid behind each time: past the newest
// max_exited_processes, the oldest are folded into one entry per comm, so that memory and the
// per-second sampling stay bounded by the live processes, and every count stays in processes[]
// under the same comm (what alert rules on a process sum). Not into "other" (the overflow past
// max_processes), and the groups have no Prometheus series: a folded pid's own series just ends,
// where a series that took its counts would jump.
void Aggregator::FoldExitedLocked() {
  while (exited_.size() > opts_.max_exited_processes) {
    const uint32_t pid = exited_.front();
    exited_.pop_front();
    auto it = procs_.find(pid);
    if (it == procs_.end() || it->second->alive) continue;  // folded already, or pid reused
    std::unique_ptr<Process> gone = std::move(it->second);
    procs_.erase(it);
    if (last_proc_ == gone.get()) last_proc_ = nullptr;
    // The comm's own group if it has one or there is room for one, else "other".
    const bool room = exited_groups_.size() < opts_.max_exited_groups;
    const std::string key = room || exited_groups_.count(gone->comm) ? gone->comm : "other";
    std::unique_ptr<Process>& group = exited_groups_[key];
    if (!group) {
      group = std::make_unique<Process>();
      group->comm = key;
      group->sampled = true;
      group->identified = gone->identified;
      group->target = gone->target;
    }
    if (group->target != gone->target) group->target = -1;  // of several targets
    ++group->folded;
    group->st.Merge(gone->st);
    names_.erase(pid);
    idents_.erase(pid);
    RememberFoldedLocked(pid, group.get());
  }
}

void Aggregator::RememberFoldedLocked(uint32_t pid, Process* group) {
  if (folded_into_.insert_or_assign(pid, group).second) folded_order_.push_back(pid);
  if (folded_order_.size() > kMaxFoldedRemembered) {
    folded_into_.erase(folded_order_.front());
    folded_order_.pop_front();
  }
}

void Aggregator::SetLostEvents(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  lost_events_ = n;
}

void Aggregator::SetCounters(const std::string& section,
                             const std::map<std::string, uint64_t>& counters) {
  std::lock_guard<std::mutex> lock(mu_);
  extra_[section] = counters;
}

void Aggregator::SetProcessName(uint32_t pid, const std::string& comm) {
  std::lock_guard<std::mutex> lock(mu_);
  names_[pid] = comm;
  if (auto it = procs_.find(pid); it != procs_.end() && pid != 0) it->second->comm = comm;
}

void Aggregator::SetIdentification(std::vector<TargetSpec> targets, ProcessIdentifier identify) {
  std::lock_guard<std::mutex> lock(mu_);
  targets_ = std::move(targets);
  identify_ = std::move(identify);
  target_stats_.clear();
  for (size_t i = 0; i <= targets_.size(); ++i) target_stats_.push_back(std::make_unique<Stats>());
  target_prom_.assign(targets_.size() + 1, {});
  idents_.clear();
}

const ProcessIdentity& Aggregator::IdentityLocked(uint32_t pid) {
  auto it = idents_.find(pid);
  if (it != idents_.end()) return it->second;
  if (idents_.size() >= 65536) idents_.clear();
  ProcessIdentity id = identify_ ? identify_(pid) : ProcessIdentity{};
  return idents_.emplace(pid, std::move(id)).first->second;
}

std::vector<uint32_t> Aggregator::ObservedPids() const {
  std::vector<uint32_t> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out.reserve(procs_.size());
    for (const auto& [pid, p] : procs_) {
      if (pid != 0) out.push_back(pid);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void Aggregator::SummarizeLocked(const Stats& st, LatencySummary* o) const {
  o->count = st.count;
  o->incomplete = st.incomplete;
  o->classes = st.classes;
  o->request_bytes = st.req_bytes;
  o->response_bytes = st.resp_bytes;
  if (st.count > 0) {
    o->avg_ms = static_cast<double>(st.sum_ns) / static_cast<double>(st.count) / 1e6;
    o->min_ms = static_cast<double>(st.hist.min()) / 1e6;
    o->max_ms = static_cast<double>(st.hist.max()) / 1e6;
    const double qs[4] = {0.5, 0.9, 0.95, 0.99};
    double out[4];
    st.hist.Quantiles(qs, 4, out);
    o->p50_ms = out[0] / 1e6;
    o->p90_ms = out[1] / 1e6;
    o->p95_ms = out[2] / 1e6;
    o->p99_ms = out[3] / 1e6;
  }
  o->queue_count = st.queue_count;
  if (st.queue_count > 0 && st.queue_hist) {
    o->queue_avg_ms =
        static_cast<double>(st.queue_sum_ns) / static_cast<double>(st.queue_count) / 1e6;
    const double qs[2] = {0.5, 0.99};
    double out[2];
    st.queue_hist->Quantiles(qs, 2, out);
    o->queue_p50_ms = out[0] / 1e6;
    o->queue_p99_ms = out[1] / 1e6;
  }
  if (cur_sec_ >= 0) {
    o->rate_1s = st.rate.Rate(cur_sec_, 1);
    o->rate_10s = st.rate.Rate(cur_sec_, 10);
    o->rate_60s = st.rate.Rate(cur_sec_, 60);
  }
}

StatsSnapshot Aggregator::Snapshot() const {
  StatsSnapshot snap;
  std::lock_guard<std::mutex> lock(mu_);
  SummarizeLocked(*total_, &snap.total);
  // Global rates from the series ring (it covers 15 minutes, the per-stats ring 64 s).
  if (cur_sec_ >= 0) {
    auto rate = [&](int window) {
      uint64_t sum = 0;
      for (int k = 1; k <= window; ++k) {
        const int64_t s = cur_sec_ - k;
        if (s < 0) break;
        const Slot& sl = slots_[static_cast<size_t>(s) % kSeriesSeconds];
        if (sl.sec == s) sum += sl.requests;
      }
      return static_cast<double>(sum) / window;
    };
    snap.total.rate_1s = rate(1);
    snap.total.rate_10s = rate(10);
    snap.total.rate_60s = rate(60);
  }
  snap.status_codes.reserve(status_order_.size());
  for (int code : status_order_) snap.status_codes.emplace_back(code, status_counts_[code]);
  snap.unparsed_bytes = unparsed_bytes_;
  snap.unparsed_resyncs = unparsed_resyncs_;
  snap.lost_events = lost_events_;
  snap.tls_requests = tls_requests_;
  snap.tls_processes = tls_processes_;
  snap.extra = extra_;
  snap.routes.reserve(routes_.size());
  for (const auto& r : routes_) {
    RouteSummary rs;
    rs.method = r->method;
    rs.route = r->route;
    SummarizeLocked(r->st, &rs.s);
    rs.duration_buckets = r->prom;
    rs.duration_sum_s = static_cast<double>(r->st.sum_ns) / 1e9;
    rs.classes_by_target = r->by_target;
    snap.routes.push_back(std::move(rs));
  }
  snap.processes.reserve(procs_.size());
  for (const auto& [pid, p] : procs_) {
    ProcessSummary ps;
    ps.pid = pid;
    ps.comm = p->comm;
    SummarizeLocked(p->st, &ps.s);
    ps.sampled = p->sampled;
    ps.alive = p->alive;
    ps.cpu_percent = p->cpu;
    ps.rss_bytes = p->rss;
    ps.identified = p->identified;
    ps.target = p->target;
    ps.container = p->container;
    snap.processes.push_back(std::move(ps));
  }
  for (const auto& [comm, g] : exited_groups_) {
    ProcessSummary ps;
    ps.comm = comm;
    ps.exited_group = true;
    ps.exited_processes = g->folded;
    SummarizeLocked(g->st, &ps.s);
    ps.sampled = true;
    ps.identified = g->identified;
    ps.target = g->target;
    snap.processes.push_back(std::move(ps));
  }
  snap.identification = static_cast<bool>(identify_);
  if (identify_) {
    std::vector<uint64_t> nprocs(targets_.size() + 1, 0);
    for (const auto& [pid, p] : procs_) {
      if (pid == 0) continue;
      const size_t ti = p->target >= 0 && static_cast<size_t>(p->target) < targets_.size()
                            ? static_cast<size_t>(p->target) + 1 : 0;
      ++nprocs[ti];
    }
    snap.target_names.push_back("other");
    for (const TargetSpec& t : targets_) snap.target_names.push_back(t.Name());
    for (size_t k = 1; k <= targets_.size() + 1; ++k) {
      const size_t ti = k % (targets_.size() + 1);  // the targets in order, then "other"
      const Stats& st = *target_stats_[ti];
      if (ti == 0 && st.count + st.incomplete == 0 && nprocs[0] == 0) continue;
      TargetSummary ts;
      ts.name = snap.target_names[ti];
      ts.kind = ti == 0 ? "other" : targets_[ti - 1].KindName();
      SummarizeLocked(st, &ts.s);
      ts.processes = nprocs[ti];
      ts.duration_buckets = target_prom_[ti];
      ts.duration_sum_s = static_cast<double>(st.sum_ns) / 1e9;
      snap.targets.push_back(std::move(ts));
    }
    for (const ProcessSample& ps : last_sample_.processes) {
      if (auto it = idents_.find(ps.pid); it != idents_.end()) {
        snap.sampled_identities[ps.pid] = it->second;
      }
    }
  }
  snap.system = last_sample_;
  snap.wall_offset_ns = opts_.wall_offset_ns;
  snap.protocols = protocols_;
  snap.unknown_paths = unknown_paths_;
  {
    std::map<int, uint64_t> codes;
    for (const auto& g : grpc_) {
      GrpcMethodSummary gs;
      gs.service = g->service;
      gs.method = g->method;
      gs.count = g->count;
      gs.incomplete = g->incomplete;
      gs.avg_ms = g->count ? static_cast<double>(g->sum_ns) / static_cast<double>(g->count) / 1e6 : 0;
      for (const auto& [code, n] : g->by_status) {
        gs.by_status.emplace_back(code, n);
        codes[code] += n;
      }
      snap.grpc_calls += g->count;
      snap.grpc_methods.push_back(std::move(gs));
    }
    snap.grpc_status_codes.assign(codes.begin(), codes.end());
  }
  std::sort(snap.grpc_methods.begin(), snap.grpc_methods.end(), [](const auto& a, const auto& b) {
    const uint64_t ta = a.count + a.incomplete, tb = b.count + b.incomplete;
    if (ta != tb) return ta > tb;
    if (a.service != b.service) return a.service < b.service;
    return a.method < b.method;
  });
  // Sorting happens under the lock too, but it is cheap next to the summaries.
  std::sort(snap.routes.begin(), snap.routes.end(), [](const auto& a, const auto& b) {
    const uint64_t ta = a.s.count + a.s.incomplete, tb = b.s.count + b.s.incomplete;
    if (ta != tb) return ta > tb;
    if (a.route != b.route) return a.route < b.route;
    return a.method < b.method;
  });
  std::sort(snap.processes.begin(), snap.processes.end(), [](const auto& a, const auto& b) {
    const uint64_t ta = a.s.count + a.s.incomplete, tb = b.s.count + b.s.incomplete;
    if (ta != tb) return ta > tb;
    return a.pid < b.pid;
  });
  return snap;
}

std::vector<RecentRequest> Aggregator::Recent(size_t limit) const {
  std::vector<RecentRequest> out;
  std::lock_guard<std::mutex> lock(mu_);
  const size_t n = std::min(limit, recent_size_);
  out.reserve(n);
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (recent_next_ + recent_.size() - 1 - k) % recent_.size();
    out.push_back(recent_[i]);
  }
  return out;
}

std::string FormatEndpoint(const rq_endpoints& ep, bool local) {
  const uint8_t* addr = local ? ep.laddr : ep.raddr;
  const uint16_t port = local ? ep.lport : ep.rport;
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ep.family == AF_INET6) {
    inet_ntop(AF_INET6, addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(port);
  }
  if (ep.family == AF_INET) {
    inet_ntop(AF_INET, addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port);
  }
  return "";
}

std::string FormatIsoLocal(int64_t wall_ns) {
  if (wall_ns < 0) wall_ns = 0;
  const time_t secs = static_cast<time_t>(wall_ns / 1000000000);
  const int ms = static_cast<int>((wall_ns / 1000000) % 1000);
  tm lt{};
  localtime_r(&secs, &lt);
  char date[32];
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &lt);
  const long off = lt.tm_gmtoff;
  const long aoff = off < 0 ? -off : off;
  char out[64];
  snprintf(out, sizeof out, "%s.%03d%c%02ld:%02ld", date, ms, off < 0 ? '-' : '+', aoff / 3600,
           (aoff % 3600) / 60);
  return out;
}

std::string PromEscapeLabel(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace reqmon
