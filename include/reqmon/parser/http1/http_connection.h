// SPDX-License-Identifier: MIT
#pragma once
/// HTTP/1.x reconstruction for one TCP connection: two incremental llhttp parsers (one per
/// direction) and a stitcher that pairs responses with requests in order (pipelining).
///
/// Contract, in short:
///  - Feed every data record of the connection, in order, to HttpConnection::OnData. The
///    payload is the captured prefix; `ev.bytes - payload.size()` more bytes were transferred
///    but not captured (a "gap"; sendfile records are all gap).
///  - Server role (accepted, or inferred): ingress carries requests, egress responses. Client
///    role: the reverse; client connections are only parsed when Options::parse_client is set
///    (otherwise their bytes are counted in HttpCounters::client_bytes and nothing is emitted).
///  - Unknown role (accepted, or open before attach): the role is inferred from the first record
///    that starts with a request method token ("GET ", "POST ", ...) or "HTTP/1."; until then
///    every byte is unparsed. A record that is only the beginning of one ("GE": a slow client, a
///    small first segment) is held and joined to the next record of the same direction.
///  - A gap inside a Content-Length (or read-until-close) body, or ending inside the data of one
///    chunk of a chunked body, is skipped exactly. A gap anywhere else (head, chunk sizes or
///    trailers, past the end of a message), an llhttp error, or non-HTTP bytes make the
///    stream lose its place: a response whose head was parsed is finished at that record as a
///    *truncated* transaction; a partial response without a parsed head ends its request as
///    *incomplete*; then the stream skips (and counts as unparsed) whole records until one starts
///    with a message start (a method token followed by a space for requests, "HTTP/1." for
///    responses).
///  - A response is paired with the oldest unanswered request, unless that request was read after
///    the response began to be written (then the request is not its match: the response is an
///    orphan, e.g. of a request sent before attach, and is dropped and counted).
///  - What the server answered is what counts: on a server connection, request-direction bytes
///    that were not a parseable request (garbage, a head longer than the captured prefix) and
///    that a response then answers make one transaction, with the method and target when the
///    head's start was parsed and "(unparsed)" otherwise.
///  - 1xx responses (100-continue) do not answer a request; their bytes are added to the final
///    response's size. 101 Switching Protocols, or a 2xx answering CONNECT, ends HTTP on the
///    connection: later bytes are counted as unparsed. Except for "Upgrade: h2c": a 101 answering
///    a request that asked for h2c is not emitted; h2c_upgrade() then holds that request (it is
///    HTTP/2's stream 1) and the bytes after the 101's head, for the tracker to hand the
///    connection to the HTTP/2 parser (reqmon/parser/http2/http2_connection.h).
///  - Transactions are emitted to the TransactionSink when their response completes, or at
///    Finish (close, process exit, eviction) with incomplete=true and status 0.
///
/// Timing: request_start_ns is the ts_exit of the record that carried the request's first byte;
/// response_end_ns the ts_exit of the record that carried (or skipped, as a gap) the response's
/// last byte. Sizes count wire bytes, gaps included.
///
/// Memory is bounded: the request target is kept up to Options::max_url bytes, at most
/// Options::max_pending unanswered requests are kept (the oldest is dropped and counted beyond
/// that), and no body bytes are ever buffered. Steady-state parsing does not allocate.

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "reqmon/abi.h"
#include "reqmon/parser/common.h"
#include "reqmon/parser/transaction.h"

namespace reqmon {

/// One connection's HTTP state. Not copyable or movable (llhttp keeps a pointer back to it);
/// keep it at a stable address and recycle it with Reset().
class HttpConnection {
 public:
  struct Options {
    size_t max_pending = 1024;  ///< unanswered requests kept per connection
    size_t max_url = 8192;      ///< request-target bytes kept (longer targets are cut)
    bool parse_client = false;  ///< also reconstruct client-role (outbound) transactions
    /// Read a record that is one whole simple message without llhttp (simple_message.h); off
    /// only to compare the two readings in tests.
    bool simple_messages = true;
  };

  HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  /// Starts a new connection in this object. `role` comes from RQ_EV_OPEN (SERVER/CLIENT) or is
  /// RQ_ROLE_UNKNOWN for a connection found already open. `counters` and `sink` must outlive
  /// this object (or the next Reset). Keeps allocated capacity.
  void Reset(uint32_t pid, int32_t fd, uint64_t connection_id, rq_role role,
             const rq_endpoints& ep, const Options& options, HttpCounters* counters,
             TransactionSink* sink);

  /// Feeds one data record of this connection. `payload` is the captured prefix of ev.bytes.
  void OnData(const rq_data_event& ev, std::string_view payload);

  /// Ends the connection: completes a read-until-close response, emits a response whose head
  /// was parsed but whose body did not end as truncated, reports every unanswered request as
  /// incomplete. `ts_ns` is the time of the close (unused for timing of incomplete
  /// transactions, which have response_end_ns 0). The object is idle afterwards.
  void Finish(uint64_t ts_ns);

  /// Records may have been lost since the last one fed (the ring buffer was full): whole
  /// messages, or parts of them, of either direction. Nothing read before is paired with what
  /// comes after: a response whose head was parsed is finished as truncated, every unanswered
  /// request is reported as incomplete, and both directions skip records until one starts with
  /// a message start (as after a gap). A response that then answers a request from before is
  /// an orphan (dropped and counted), never another request's.
  void OnRecordsLost();

  /// Set when a 101 answered an "Upgrade: h2c" request: the connection is HTTP/2 from the byte
  /// after the 101's head on. `tail` is the rest of the record that carried the 101 (captured),
  /// `tail_gap` its uncaptured bytes.
  struct H2cUpgrade {
    bool active = false;
    std::string method, target;
    uint64_t start_ns = 0, request_bytes = 0;
    std::string tail;
    uint64_t tail_gap = 0;
  };
  const H2cUpgrade& h2c_upgrade() const { return h2c_; }

  rq_role role() const { return role_; }
  uint64_t connection_id() const { return connection_id_; }
  const rq_endpoints& endpoints() const { return ep_; }
  size_t pending_requests() const { return pending_count_; }
  /// Sets the endpoints if they were unknown (all-zero family), and the local port if it was
  /// not bound yet (a connect is seen before its port is chosen).
  void UpdateEndpoints(const rq_endpoints& ep) {
    if (ep_.family == 0 || (ep_.lport == 0 && !OtherConnection(ep))) ep_ = ep;
  }
  /// Whether `ep` belongs to another TCP connection than this one: another peer, or another
  /// local port once both are known. Unknown endpoints (family 0) match anything. This is how a
  /// reused fd is told apart when its close or open was not seen.
  bool OtherConnection(const rq_endpoints& ep) const {
    if (ep.family == 0 || ep_.family == 0) return false;
    if (ep.family != ep_.family || ep.rport != ep_.rport ||
        std::memcmp(ep.raddr, ep_.raddr, sizeof(ep.raddr)) != 0)
      return true;
    return ep.lport != 0 && ep_.lport != 0 && ep.lport != ep_.lport;
  }

 private:
  /// One direction's parser state.
  struct Stream {
    llhttp_t parser;
    HttpConnection* conn = nullptr;
    bool is_request = false;
    bool synced = false;        ///< false: skipping records until a message start
    bool ever_synced = false;   ///< distinguishes "lost" from "never found HTTP yet"
    bool skipped_while_lost = false;  ///< whole messages may have been skipped since the loss
    bool in_message = false;    ///< on_message_begin seen, message not complete
    bool headers_done = false;  ///< on_headers_complete seen for the current message
    bool complete = false;      ///< set by on_message_complete, consumed by Feed
    bool upgrade_next = false;  ///< response: the connection switches protocols after it
    bool in_chunk_data = false; ///< inside a chunk's data (parser.content_length = remaining)
    bool req_pushed = false;    ///< request stream: current message was queued
    uint64_t msg_bytes = 0;     ///< wire bytes of the current message so far
    uint64_t msg_start_ts = 0;  ///< ts_exit of the record holding the message's first byte
    uint64_t msg_start_enter = 0;  ///< ts_enter of that record
    uint64_t msg_start_queued = 0;  ///< ts_queued of that record (0: not known)
    uint64_t cur_queued = 0;        ///< ts_queued of the record being fed
    uint64_t cur_enter = 0;     ///< ts_enter of the record being fed
    uint64_t cur_exit = 0;      ///< ts_exit of the record being fed
    uint64_t req_seq = 0;       ///< request stream: sequence number of the pending entry
    std::string url;            ///< request target accumulated by on_url
    std::string_view record;    ///< captured payload of the record being fed
  };

  /// An unanswered request.
  struct Pending {
    uint64_t seq = 0;
    uint64_t start_ns = 0;
    uint64_t queued_ns = 0;      ///< when its first bytes were queued on the socket (0: unknown)
    uint64_t bytes = 0;
    uint64_t interim_bytes = 0;  ///< 1xx responses written for it
    uint8_t method = 0;
    uint8_t minor = 1;           ///< HTTP/1.<minor>
    bool h2c = false;            ///< asked to upgrade to h2c
    bool unparsed = false;       ///< not a parseable request: method "(unparsed)"
    std::string url;
  };

  static int OnMessageBegin(llhttp_t* p);
  static int OnUrl(llhttp_t* p, const char* at, size_t len);
  static int OnHeadersComplete(llhttp_t* p);
  static int OnMessageComplete(llhttp_t* p);
  static int OnChunkHeader(llhttp_t* p);
  static int OnChunkComplete(llhttp_t* p);
  static const llhttp_settings_t& Settings();

  void ResetStream(Stream& s, bool synced);
  /// Runs `data` through the stream's parser. Returns false when the stream lost its place or
  /// the connection switched protocols (the remainder of `data` has then been accounted for).
  bool Feed(Stream& s, const char* data, size_t len);
  /// The record (its captured bytes and `gap` more) is one whole simple message at a message
  /// boundary: taken as llhttp would take it, without llhttp. False: nothing was changed.
  bool TakeSimpleMessage(Stream& s, std::string_view payload, uint64_t gap);
  /// Feeds `n` zero bytes (uncaptured body bytes); false if the stream lost its place.
  bool FeedZeros(Stream& s, uint64_t n);
  /// Handles the uncaptured bytes of the record just fed.
  void SkipGap(Stream& s, uint64_t gap);
  /// The stream lost its place in the record ending at `ts_exit`, `lost_bytes` of which could
  /// not be parsed; finishes or drops the partial message.
  void LoseSync(Stream& s, uint64_t ts_exit, uint64_t lost_bytes);
  /// Re-arms the parser of a stream at a record that starts with a message start.
  void Resync(Stream& s, const rq_data_event& ev);
  void MessageComplete(Stream& s, uint64_t ts_exit);
  void CountUnparsed(uint64_t bytes, bool resync);
  /// The bytes after a protocol switch: kept for HTTP/2 (h2c), else counted unparsed.
  void AfterUpgrade(const char* data, size_t len);
  bool InferRole(const rq_data_event& ev, std::string_view payload);

  // Pending queue (ring buffer indexed by sequence number).
  Pending* Front() { return pending_count_ ? &pending_[pending_head_] : nullptr; }
  Pending* BySeq(uint64_t seq);
  Pending& PushPending();
  void PopPending();
  /// The oldest unanswered request if a response that began at `resp_enter_ns` can answer it.
  Pending* MatchFront(uint64_t resp_enter_ns);
  void EmitAnswered(Pending& req, int status, uint64_t end_ns, uint64_t resp_bytes,
                    bool truncated);
  void EmitIncomplete(Pending& req);
  void FillRequest(const Pending& req);

  Stream req_;
  Stream resp_;
  std::vector<Pending> pending_;
  size_t pending_head_ = 0;
  size_t pending_count_ = 0;
  uint64_t next_seq_ = 0;

  uint32_t pid_ = 0;
  int32_t fd_ = -1;
  uint64_t connection_id_ = 0;
  rq_role role_ = RQ_ROLE_UNKNOWN;
  bool upgraded_ = false;
  bool active_ = false;
  bool tls_ = false;  ///< plaintext of a TLS connection seen (RQ_DATA_TLS)
  /// Role unknown: a first read that was only the beginning of a message start ("GE"), held
  /// for the next read of the same direction (at most 8 bytes, see StartsLikeMessage).
  std::string held_;
  rq_data_event held_ev_{};
  /// Request-direction bytes that were not a parseable request since the last answered one
  /// (garbage, or a head cut by uncaptured bytes): a response that answers nothing else answers
  /// them, and counts. Method and target are kept when the head's start was parsed.
  Pending unanswered_;
  void NoteUnparsedRequest(uint64_t bytes, uint64_t ts_enter, const Stream* partial);
  uint64_t last_resp_ts_ = 0;  ///< ts_exit of the last response-direction record
  rq_endpoints ep_{};
  Options options_;
  HttpCounters* counters_ = nullptr;
  TransactionSink* sink_ = nullptr;
  HttpTransaction tx_;  ///< reused for every emitted transaction
  H2cUpgrade h2c_;
};

/// True when `payload` starts with a request method token followed by a space ("GET ", ...).
bool StartsWithRequest(std::string_view payload);

/// True when `payload` is a proper prefix of a method token and its space ("GE", "POS") or of
/// "HTTP/1.": a message start cut short by a small read.
bool StartsLikeMessage(std::string_view payload);
/// True when `payload` starts with "HTTP/1.".
bool StartsWithResponse(std::string_view payload);

}  // namespace reqmon
