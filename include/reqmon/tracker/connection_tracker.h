// SPDX-License-Identifier: MIT
#pragma once
/// ConnectionTracker: the EventSink that follows TCP connections of observed processes and runs
/// each one's bytes through a protocol parser, emitting HttpTransaction objects to a
/// TransactionSink. Every connection starts with the HTTP/1.x parser (HttpConnection,
/// reqmon/parser/http1/http_connection.h) and moves to the HTTP/2 one (Http2Connection,
/// reqmon/parser/http2/http2_connection.h) for good when its first record carries the client
/// preface, when its first records (role still unknown: open before attach) are HTTP/2 frames,
/// or when a 101 answers an "Upgrade: h2c" request.
///
/// Usage:
///   MySink sink;                                   // implements TransactionSink
///   ConnectionTracker tracker(sink, TrackerConfig{});
///   std::string err;
///   DispatchRecord(record, len, tracker, &err);    // for every raw ABI record, in order
///   ...
///   tracker.FinishAll();                           // end of a replay / shutdown
///   const TrackerCounters& c = tracker.counters();
///
/// Connections are keyed by (pid, fd). Each tracked connection gets a new connection id (the
/// "generation"), so a reused fd never inherits state:
///  - RQ_EV_OPEN on a key already tracked finishes the old connection first (its unanswered
///    requests are emitted as incomplete), then starts a new one with the role from the event.
///  - RQ_EV_CLOSE finishes the connection and forgets it; a close for an unknown key is ignored.
///  - RQ_EV_PROC with kind RQ_PROC_EXIT finishes every connection of that pid.
///  - RQ_EV_DATA for an unknown key starts tracking a connection that was open before attach,
///    with the role the kernel reported (usually RQ_ROLE_UNKNOWN: inferred from the bytes).
///  - RQ_EV_LOST (records were lost before this point, on any connection) with a higher count
///    than seen so far: every connection tracked then is resynchronised at its next record
///    (HttpConnection::OnRecordsLost, Http2Connection::OnRecordsLost) before that record is
///    parsed, so that no request is paired with a response across the lost records; counted in
///    TrackerCounters::loss_marks and loss_resyncs.
/// At most TrackerConfig::max_connections are tracked; beyond that the least recently used one
/// is finished (as on close) and counted in TrackerCounters::connections_evicted.
///
/// Single-threaded: call everything from the thread that drains records.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "reqmon/abi.h"
#include "reqmon/capture/events.h"
#include "reqmon/parser/http2/http2_connection.h"
#include "reqmon/parser/http1/http_connection.h"
#include "reqmon/parser/transaction.h"

namespace reqmon {

struct TrackerConfig {
  size_t max_connections = 65536;      ///< tracked at once; the LRU one is evicted beyond
  size_t max_pending_per_connection = 1024;  ///< unanswered requests kept per connection
  size_t max_url_bytes = 8192;         ///< request-target bytes kept per request
  /// Also reconstruct transactions of connections the process opened (RQ_ROLE_CLIENT), emitted
  /// with HttpTransaction::role == RQ_ROLE_CLIENT. Off by default: their bytes are only counted
  /// in HttpCounters::client_bytes.
  bool parse_client_connections = false;
};

/// Everything the tracker counts, for the aggregator and /metrics. Monotonic except
/// connections_open.
struct TrackerCounters {
  uint64_t connections_open = 0;     ///< tracked right now
  uint64_t connections_opened = 0;   ///< started tracking (open events and attach)
  uint64_t connections_closed = 0;   ///< finished by close, reuse of the fd, or process exit
  uint64_t connections_evicted = 0;  ///< finished because max_connections was reached
  uint64_t data_records = 0;         ///< data records seen
  uint64_t data_bytes = 0;           ///< bytes those records transferred (captured or not)
  uint64_t tls_records = 0;          ///< of which TLS plaintext from the TLS library
  uint64_t tls_connections = 0;      ///< connections whose TLS ciphertext the kernel saw (and
                                     ///< did not copy: RQ_DATA_TLS_CIPHER)
  uint64_t tls_ciphertext_dropped = 0;  ///< plain records on a TLS connection: ciphertext the
                                        ///< kernel no longer knew as such (read after a reset
                                        ///< closed the socket), never parsed
  uint64_t loss_marks = 0;           ///< RQ_EV_LOST records that raised the lost count
  uint64_t loss_resyncs = 0;         ///< connections resynchronised because records were lost
  HttpCounters http;                 ///< transactions, unparsed bytes, resyncs, truncated, ...
  Http2Counters http2;               ///< HTTP/2 connections, streams, HPACK resets, ...
};

class ConnectionTracker : public EventSink {
 public:
  /// `sink` must outlive the tracker.
  explicit ConnectionTracker(TransactionSink& sink, TrackerConfig config = {});
  ~ConnectionTracker() override;
  ConnectionTracker(const ConnectionTracker&) = delete;
  ConnectionTracker& operator=(const ConnectionTracker&) = delete;

  void OnData(const rq_data_event& ev, std::string_view payload) override;
  void OnConn(const rq_conn_event& ev) override;
  void OnProc(const rq_proc_event& ev) override;
  void OnLost(const rq_lost_event& ev) override;

  /// Finishes every tracked connection (unanswered requests become incomplete transactions).
  void FinishAll();

  /// Releases the state of closed connections beyond `keep` reusable slots, so that memory
  /// taken by a burst of connections is given back once they are gone. Call it now and then
  /// (the app: once a second); cheap when there is nothing to release.
  size_t Compact(size_t keep = 256);  ///< returns how many slots it released

  const TrackerCounters& counters() const { return counters_; }
  const TrackerConfig& config() const { return config_; }
  /// Connections tracked right now.
  size_t size() const { return index_.size(); }

 private:
  static constexpr uint32_t kNone = ~0u;
  struct Slot {
    HttpConnection conn;                  ///< HTTP/1.x; also holds the endpoints
    std::unique_ptr<Http2Connection> h2;  ///< made the first time the slot carries HTTP/2
    bool is_h2 = false;                   ///< the connection is parsed by h2
    bool probed = false;                  ///< its first data record was checked for HTTP/2
    bool tls = false;                     ///< it carried TLS plaintext from the TLS library
    uint64_t loss_epoch = 0;              ///< the tracker's loss_epoch_ it was last synced to
    uint64_t key = 0;
    uint32_t prev = kNone;  ///< LRU list: towards most recently used
    uint32_t next = kNone;  ///< towards least recently used
    bool used = false;
  };

  static uint64_t Key(uint32_t pid, int32_t fd) {
    return (static_cast<uint64_t>(pid) << 32) | static_cast<uint32_t>(fd);
  }
  uint32_t Find(uint64_t key);
  uint32_t Start(uint64_t key, uint32_t pid, int32_t fd, rq_role role, const rq_endpoints& ep);
  void Finish(uint32_t slot, uint64_t ts_ns);
  /// Checks a record of a connection still on HTTP/1.x for the start of HTTP/2; true when the
  /// connection moved to HTTP/2 (the record was fed to it).
  bool ProbeHttp2(Slot& s, const rq_data_event& ev, std::string_view payload);
  /// Moves the connection to HTTP/2.
  void SwitchToHttp2(Slot& s, Http2Start start, rq_role role);
  /// Finish() for a connection that ended (close, fd reuse, exit, shutdown), counted as closed.
  void Close(uint32_t slot, uint64_t ts_ns);
  void Unlink(uint32_t slot);
  void PushFront(uint32_t slot);
  void Touch(uint32_t slot);

  TransactionSink& sink_;
  TrackerConfig config_;
  HttpConnection::Options conn_options_;
  Http2Connection::Options h2_options_;
  TrackerCounters counters_;
  std::vector<std::unique_ptr<Slot>> slots_;  ///< stable addresses (llhttp points into them)
  std::vector<uint32_t> free_;      ///< closed slots, allocated, ready for reuse
  std::vector<uint32_t> released_;  ///< closed slots whose state Compact() released
  std::unordered_map<uint64_t, uint32_t> index_;
  std::unordered_map<uint32_t, uint32_t> per_pid_;  ///< connections per pid, for exits
  uint32_t lru_head_ = kNone;  ///< most recently used
  uint32_t lru_tail_ = kNone;  ///< least recently used
  uint64_t next_connection_id_ = 1;
  uint64_t lost_seen_ = 0;   ///< highest lost count of an RQ_EV_LOST record
  uint64_t loss_epoch_ = 0;  ///< bumped by each RQ_EV_LOST that raised it
  uint64_t cached_key_ = ~0ull;  ///< one-entry lookup cache (records come in runs)
  uint32_t cached_slot_ = kNone;
};

}  // namespace reqmon
