// SPDX-License-Identifier: MIT
#include "reqmon/tracker/connection_tracker.h"

#include <algorithm>

namespace reqmon {
namespace {

// The role byte of a record as a role: anything but SERVER or CLIENT (a corrupt or foreign
// capture file) is UNKNOWN. Checked before the cast: a value outside the enum's range is
// undefined behaviour.
rq_role RoleOf(uint8_t role) {
  return role == RQ_ROLE_SERVER || role == RQ_ROLE_CLIENT ? static_cast<rq_role>(role)
                                                          : RQ_ROLE_UNKNOWN;
}

}  // namespace

ConnectionTracker::ConnectionTracker(TransactionSink& sink, TrackerConfig config)
    : sink_(sink), config_(config) {
  if (config_.max_connections == 0) config_.max_connections = 1;
  conn_options_.max_pending = std::max<size_t>(1, config_.max_pending_per_connection);
  conn_options_.max_url = config_.max_url_bytes;
  conn_options_.parse_client = config_.parse_client_connections;
  h2_options_.max_streams = conn_options_.max_pending;
  h2_options_.max_url = config_.max_url_bytes;
  h2_options_.parse_client = config_.parse_client_connections;
  index_.reserve(std::min<size_t>(config_.max_connections, 4096));
}

ConnectionTracker::~ConnectionTracker() = default;

uint32_t ConnectionTracker::Find(uint64_t key) {
  if (cached_slot_ != kNone && cached_key_ == key) return cached_slot_;
  auto it = index_.find(key);
  if (it == index_.end()) return kNone;
  cached_key_ = key;
  cached_slot_ = it->second;
  return it->second;
}

void ConnectionTracker::Unlink(uint32_t i) {
  Slot& s = *slots_[i];
  if (s.prev != kNone) slots_[s.prev]->next = s.next; else lru_head_ = s.next;
  if (s.next != kNone) slots_[s.next]->prev = s.prev; else lru_tail_ = s.prev;
  s.prev = s.next = kNone;
}

void ConnectionTracker::PushFront(uint32_t i) {
  Slot& s = *slots_[i];
  s.prev = kNone;
  s.next = lru_head_;
  if (lru_head_ != kNone) slots_[lru_head_]->prev = i;
  lru_head_ = i;
  if (lru_tail_ == kNone) lru_tail_ = i;
}

void ConnectionTracker::Touch(uint32_t i) {
  if (lru_head_ == i) return;
  Unlink(i);
  PushFront(i);
}

uint32_t ConnectionTracker::Start(uint64_t key, uint32_t pid, int32_t fd, rq_role role,
                                  const rq_endpoints& ep) {
  if (index_.size() >= config_.max_connections && lru_tail_ != kNone) {
    ++counters_.connections_evicted;
    Finish(lru_tail_, 0);
  }
  uint32_t i;
  if (!free_.empty()) {
    i = free_.back();
    free_.pop_back();
  } else if (!released_.empty()) {
    i = released_.back();
    released_.pop_back();
    slots_[i] = std::make_unique<Slot>();
  } else {
    i = static_cast<uint32_t>(slots_.size());
    slots_.push_back(std::make_unique<Slot>());
  }
  Slot& s = *slots_[i];
  s.key = key;
  s.used = true;
  s.is_h2 = false;
  s.probed = false;
  s.tls = false;
  s.loss_epoch = loss_epoch_;  // nothing of it came before the losses known so far
  s.conn.Reset(pid, fd, next_connection_id_++, role, ep, conn_options_, &counters_.http, &sink_);
  PushFront(i);
  index_.emplace(key, i);
  ++per_pid_[pid];
  ++counters_.connections_opened;
  counters_.connections_open = index_.size();
  cached_key_ = key;
  cached_slot_ = i;
  return i;
}

void ConnectionTracker::Finish(uint32_t i, uint64_t ts_ns) {
  Slot& s = *slots_[i];
  if (!s.used) return;
  // Forget the slot before emitting, so a sink that looks at the tracker sees a stable state.
  s.used = false;
  Unlink(i);
  index_.erase(s.key);
  const uint32_t pid = static_cast<uint32_t>(s.key >> 32);
  auto it = per_pid_.find(pid);
  if (it != per_pid_.end() && --it->second == 0) per_pid_.erase(it);
  if (cached_slot_ == i) cached_slot_ = kNone;
  counters_.connections_open = index_.size();
  if (s.is_h2) {
    s.h2->Finish(ts_ns);
  } else {
    s.conn.Finish(ts_ns);
  }
  free_.push_back(i);
}

void ConnectionTracker::Close(uint32_t i, uint64_t ts_ns) {
  ++counters_.connections_closed;
  Finish(i, ts_ns);
}

void ConnectionTracker::OnData(const rq_data_event& ev, std::string_view payload) {
  // Ciphertext is never parsed: the kernel only says it saw some. The plaintext comes from the
  // TLS library as records of their own (RQ_DATA_TLS), parsed like any other bytes.
  if (ev.flags & RQ_DATA_TLS_CIPHER) {
    ++counters_.tls_connections;
    return;
  }
  ++counters_.data_records;
  if (ev.flags & RQ_DATA_TLS) ++counters_.tls_records;
  if (ev.bytes > 0) counters_.data_bytes += static_cast<uint64_t>(ev.bytes);
  const uint64_t key = Key(ev.h.pid, ev.h.fd);
  uint32_t i = Find(key);
  if (i != kNone && slots_[i]->conn.OtherConnection(ev.ep)) {
    // The fd was closed and reused without its close being seen.
    Close(i, ev.h.ts_exit);
    i = kNone;
  }
  if (i == kNone) {
    i = Start(key, ev.h.pid, ev.h.fd, RoleOf(ev.role), ev.ep);
  } else {
    Touch(i);
    slots_[i]->conn.UpdateEndpoints(ev.ep);
  }
  Slot& s = *slots_[i];
  if (ev.flags & RQ_DATA_TLS) {
    s.tls = true;
  } else if (s.tls) [[unlikely]] {
    // Plain bytes on a connection whose plaintext comes from the TLS library: ciphertext that the
    // kernel read after a reset had closed the socket and dropped its TLS mark (lighttpd reading
    // the rest of a client's close_notify after the client's RST). Never parsed.
    ++counters_.tls_ciphertext_dropped;
    return;
  }
  if (s.loss_epoch != loss_epoch_) [[unlikely]] {
    // Records were lost since this connection's last record: some of them may have been its.
    s.loss_epoch = loss_epoch_;
    ++counters_.loss_resyncs;
    if (s.is_h2) {
      s.h2->OnRecordsLost();
    } else {
      s.conn.OnRecordsLost();
    }
  }
  if (s.is_h2) {
    s.h2->UpdateEndpoints(ev.ep);
    s.h2->OnData(ev, payload);
    return;
  }
  if ((!s.probed || s.conn.role() == RQ_ROLE_UNKNOWN) && ProbeHttp2(s, ev, payload)) return;
  s.conn.OnData(ev, payload);
  if (s.conn.h2c_upgrade().active) [[unlikely]] {
    const HttpConnection::H2cUpgrade up = s.conn.h2c_upgrade();
    SwitchToHttp2(s, Http2Start::kUpgrade, s.conn.role());
    s.h2->AddUpgradeStream(up.method, up.target, up.start_ns, up.request_bytes);
    if (!up.tail.empty() || up.tail_gap > 0) {
      rq_data_event rest = ev;
      rest.bytes = static_cast<int64_t>(up.tail.size() + up.tail_gap);
      s.h2->OnData(rest, up.tail);
    }
  }
}

bool ConnectionTracker::ProbeHttp2(Slot& s, const rq_data_event& ev, std::string_view payload) {
  const bool first = !s.probed;
  s.probed = true;
  const bool ingress = ev.direction == RQ_DIR_INGRESS;
  // Client-role connections are not parsed unless asked for: HttpConnection counts their bytes.
  const bool skip_client = !config_.parse_client_connections;
  if (StartsWithHttp2Preface(payload)) {
    if (!ingress && skip_client) return false;
    SwitchToHttp2(s, Http2Start::kPreface, ingress ? RQ_ROLE_SERVER : RQ_ROLE_CLIENT);
  } else if (s.conn.role() == RQ_ROLE_CLIENT && skip_client) {
    return false;
  } else if ((first || s.conn.role() == RQ_ROLE_UNKNOWN) && !StartsWithRequest(payload) &&
             !StartsWithResponse(payload) &&
             // The kernel followed frames from this record's start (it checked every header), or
             // the captured bytes are frames.
             ((ev.flags & (RQ_DATA_H2_FRAMES | RQ_DATA_H2_START)) ==
                  (RQ_DATA_H2_FRAMES | RQ_DATA_H2_START) ||
              LooksLikeHttp2Frames(payload, ev.bytes > 0 ? static_cast<uint64_t>(ev.bytes) : 0))) {
    SwitchToHttp2(s, Http2Start::kMidstream, s.conn.role());
  } else {
    return false;
  }
  s.h2->OnData(ev, payload);
  return true;
}

void ConnectionTracker::SwitchToHttp2(Slot& s, Http2Start start, rq_role role) {
  if (!s.h2) s.h2 = std::make_unique<Http2Connection>();
  const uint64_t id = s.conn.connection_id();
  const rq_endpoints ep = s.conn.endpoints();
  // Requests the HTTP/1.x parser still holds (none, normally) end here.
  s.conn.Finish(0);
  s.h2->Reset(static_cast<uint32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xffffffffu), id,
              role, ep, start, h2_options_, &counters_.http, &counters_.http2, &sink_);
  s.is_h2 = true;
}

void ConnectionTracker::OnConn(const rq_conn_event& ev) {
  const uint64_t key = Key(ev.h.pid, ev.h.fd);
  const uint32_t i = Find(key);
  if (ev.h.type == RQ_EV_OPEN) {
    if (i != kNone) Close(i, ev.h.ts_exit);
    Start(key, ev.h.pid, ev.h.fd, RoleOf(ev.role), ev.ep);
  } else if (ev.h.type == RQ_EV_CLOSE) {
    // A close naming other endpoints than the fd's connection is not about it.
    if (i != kNone && !slots_[i]->conn.OtherConnection(ev.ep)) Close(i, ev.h.ts_exit);
  }
}

void ConnectionTracker::OnProc(const rq_proc_event& ev) {
  if (ev.kind != RQ_PROC_EXIT) return;
  if (per_pid_.find(ev.h.pid) == per_pid_.end()) return;
  std::vector<uint32_t> victims;
  for (const auto& [key, slot] : index_) {
    if (static_cast<uint32_t>(key >> 32) == ev.h.pid) victims.push_back(slot);
  }
  for (uint32_t i : victims) Close(i, ev.h.ts_exit);
}

void ConnectionTracker::OnLost(const rq_lost_event& ev) {
  // The kernel's marker and the recorder's count (capture files) may repeat a count: only a
  // higher one says that more was lost.
  if (ev.lost <= lost_seen_) return;
  lost_seen_ = ev.lost;
  ++loss_epoch_;
  ++counters_.loss_marks;
}

size_t ConnectionTracker::Compact(size_t keep) {
  size_t n = 0;
  while (free_.size() > keep) {
    const uint32_t i = free_.back();
    free_.pop_back();
    slots_[i].reset();
    released_.push_back(i);
    ++n;
  }
  return n;
}

void ConnectionTracker::FinishAll() {
  while (lru_tail_ != kNone) Close(lru_tail_, 0);
}

}  // namespace reqmon
