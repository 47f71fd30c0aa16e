// SPDX-License-Identifier: MIT
#pragma once
/// HTTP/2 reconstruction for one TCP connection (RFC 9113): frame reassembly per direction, a
/// stream table, one nghttp2 HPACK inflater per direction, a transaction per stream.
///
/// Contract, in short (the HTTP/1.x contract in reqmon/parser/http1/http_connection.h applies where
/// not said otherwise; the tracker picks this parser per connection):
///  - Start::kPreface: the connection began with the client preface ("PRI * HTTP/2.0..."),
///    which the request direction's first bytes must carry. Start::kUpgrade: HTTP/1.1 request
///    with "Upgrade: h2c" answered by 101; AddUpgradeStream() registers that request as stream
///    1, whose response arrives as HTTP/2; the client's preface follows. Start::kMidstream: the
///    connection was open before attach; the first record starts at a frame boundary
///    (LooksLikeHttp2Frames) and both HPACK tables are unknown. Except when that first record
///    was a server's SETTINGS and the other direction then starts with the client preface
///    before any header block was seen: servers that speak first (gRPC, nghttpd) on a new
///    connection; the tables are then known (fresh) and it counts as kPreface.
///  - Frames may be split across records and many frames may share one record. A record's
///    uncaptured tail (ev.bytes > payload.size()) is a gap: inside a DATA payload (or any
///    payload whose content does not matter: PING, WINDOW_UPDATE, unknown types) it is skipped
///    exactly by the frame length. Inside a HEADERS/CONTINUATION block the header block is lost:
///    the stream is counted with what is known (method/path "(unknown)", status 0), the
///    direction's inflater is reset and the direction becomes "unsynced" (below). A gap that
///    runs past the end of a frame loses the framing: records are skipped (counted unparsed)
///    until one starts with plausible frames, and the direction becomes unsynced.
///  - Records with RQ_DATA_H2_FRAMES (the kernel followed the frames, bpf/h2frames.bpf.h) carry the
///    frames with every DATA payload left out: a DATA frame is counted by the length in its
///    header and ends there (its END_STREAM takes effect at once, so a response whose last DATA
///    payload spans records ends at the record with that frame's header). Such a record has no
///    gap. RQ_DATA_H2_START says it begins at a frame boundary: a direction that lost its place
///    takes it up there (as at a record that LooksLikeHttp2Frames); one that disagrees (is in
///    the middle of a frame) loses its place first. Records without the flag are the plain
///    prefix, followed from wherever the direction is.
///  - Unsynced HPACK (caught mid-connection, or after a reset): the dynamic-table entries added
///    before are unknown. Each header block is rewritten before decoding: fields that reference
///    an unknown entry are dropped (an unknown name with a literal value is kept in the table
///    under a placeholder name, so later indices still line up), the rest decodes exactly with a
///    fresh inflater whose table holds only entries added since. A missing :path/:method is
///    reported as "(unknown)" and counted (Http2Counters::unknown_paths); nothing is invented.
///    Once the fresh table is full, older entries are certainly evicted and the direction is
///    synced again.
///  - A transaction per stream: emitted when the response's END_STREAM is seen (the response
///    trailers, if any, included; gRPC's grpc-status read from them), as incomplete when the
///    stream is reset (RST_STREAM in either direction), refused by GOAWAY, or open at Finish.
///    request_start_ns is the ts_exit of the record with the first byte of the request's
///    HEADERS; response_end_ns that of the record with the last byte of the response's
///    END_STREAM frame. Sizes count frames on the wire (9-byte headers and padding included)
///    that belong to the stream.
///
/// Memory is bounded: header blocks are buffered up to Options::max_header_block bytes (a
/// longer block is treated as a gap), at most Options::max_streams streams are tracked (the
/// oldest is emitted as incomplete beyond that); DATA payloads are never buffered.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "reqmon/abi.h"
#include "reqmon/parser/common.h"
#include "reqmon/parser/transaction.h"

struct nghttp2_hd_inflater;

namespace reqmon {

/// Counters of the HTTP/2 stage, summed over all connections (transactions are also counted in
/// HttpCounters::transactions / incomplete).
struct Http2Counters {
  uint64_t connections = 0;       ///< connections parsed as HTTP/2
  uint64_t via_preface = 0;       ///< of which began with the client preface (h2c prior knowledge, TLS ALPN h2)
  uint64_t via_upgrade = 0;       ///< of which switched by "Upgrade: h2c" + 101
  uint64_t midstream = 0;         ///< of which were caught mid-connection (open before attach)
  uint64_t streams = 0;           ///< transactions emitted from HTTP/2 streams
  uint64_t grpc_calls = 0;        ///< of which gRPC
  uint64_t rst_streams = 0;       ///< RST_STREAM frames
  uint64_t goaways = 0;           ///< GOAWAY frames
  uint64_t refused_streams = 0;   ///< streams above a GOAWAY's last stream id, ended incomplete
  uint64_t hpack_resets = 0;      ///< inflaters reset because a gap or error broke the table
  uint64_t hpack_errors = 0;      ///< header blocks nghttp2 could not decode
  uint64_t undecoded_fields = 0;  ///< header fields dropped because they named unknown entries
  uint64_t unknown_paths = 0;     ///< requests reported with path "(unknown)"
  uint64_t unknown_status = 0;    ///< responses whose :status could not be decoded (status 0)
  uint64_t gap_bytes_skipped = 0; ///< uncaptured bytes skipped exactly inside frame payloads
  uint64_t framing_losses = 0;    ///< times a direction lost its frame boundaries
  uint64_t stream_overflow = 0;   ///< streams dropped (as incomplete) beyond max_streams
  /// DATA payload bytes the kernel left out (RQ_DATA_H2_FRAMES records), counted by their headers
  uint64_t data_bytes_not_copied = 0;
  /// header fields not decoded: outside the header table and of no name a transaction reads
  uint64_t fields_not_decoded = 0;
};

/// How an HTTP/2 connection was recognised.
enum class Http2Start : uint8_t { kPreface, kUpgrade, kMidstream };

/// The client connection preface.
inline constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// True when `payload` starts with the client preface, or is a prefix of it at least 4 bytes
/// long ("PRI "; a shorter record could be the start of POST, PUT or PATCH).
bool StartsWithHttp2Preface(std::string_view payload);
/// True when `payload` (the captured prefix of `bytes` bytes) starts at an HTTP/2 frame boundary:
/// a chain of plausible frame headers (known type, sizes and stream ids that fit the type) that
/// tiles the captured bytes, the last frame possibly running into the uncaptured tail.
bool LooksLikeHttp2Frames(std::string_view payload, uint64_t bytes);

/// One connection's HTTP/2 state. Not copyable; keep it at a stable address, recycle with
/// Reset(). Single-threaded.
class Http2Connection {
 public:
  struct Options {
    size_t max_streams = 1024;         ///< streams tracked per connection
    size_t max_url = 8192;             ///< :path bytes kept
    size_t max_header_block = 256 * 1024;  ///< header block bytes buffered
    bool parse_client = false;         ///< also reconstruct client-role connections
  };

  Http2Connection();
  ~Http2Connection();
  Http2Connection(const Http2Connection&) = delete;
  Http2Connection& operator=(const Http2Connection&) = delete;

  /// Starts a connection in this object. `role` is SERVER/CLIENT, or UNKNOWN for kMidstream (then
  /// assumed SERVER until a decoded header block says otherwise). Counters and sink must outlive
  /// this object.
  void Reset(uint32_t pid, int32_t fd, uint64_t connection_id, rq_role role,
             const rq_endpoints& ep, Http2Start start, const Options& options,
             HttpCounters* http, Http2Counters* counters, TransactionSink* sink);

  /// Start::kUpgrade: the HTTP/1.1 request that asked for the upgrade becomes stream 1.
  void AddUpgradeStream(std::string_view method, std::string_view target, uint64_t start_ns,
                        uint64_t request_bytes);

  /// Feeds one data record (see the HttpConnection contract).
  void OnData(const rq_data_event& ev, std::string_view payload);

  /// Ends the connection: every stream without a complete response is emitted as incomplete.
  void Finish(uint64_t ts_ns);

  /// Records may have been lost since the last one fed (the ring buffer was full): both
  /// directions lose their framing (as after a gap past a frame's end): records are skipped
  /// until one starts with plausible frames, and the header tables are reset. Streams stay
  /// paired by their ids; one whose end was lost is incomplete at Finish.
  void OnRecordsLost();

  rq_role role() const { return role_; }
  size_t open_streams() const { return streams_.size(); }
  void UpdateEndpoints(const rq_endpoints& ep) {
    if (ep_.family == 0 || ep_.lport == 0) ep_ = ep;
  }

 private:
  /// One direction of the connection.
  struct Dir {
    bool from_client = false;  ///< carries requests (client to server)
    bool fed = false;          ///< a record was fed to this direction
    enum State : uint8_t { kPreface, kHeader, kPayload, kLost } state = kHeader;
    size_t preface_got = 0;
    uint8_t hdr[9] = {};
    size_t hdr_got = 0;
    uint32_t len = 0;          ///< current frame's payload length
    uint8_t type = 0;
    uint8_t flags = 0;
    uint32_t sid = 0;
    uint32_t got = 0;          ///< payload bytes consumed
    bool elided = false;       ///< the record being fed has no DATA payloads (RQ_DATA_H2_FRAMES)
    uint64_t hdr_ts = 0;       ///< ts_exit of the record with the frame header's first byte
    uint64_t hdr_queued = 0;   ///< that record's ts_queued (when its bytes arrived; 0: unknown)
    uint64_t frame_queued = 0;  ///< the same, for the current frame
    uint64_t block_queued = 0;  ///< the same, for the HEADERS frame of the current block
    uint64_t frame_ts = 0;     ///< the same, for the current frame
    bool buffer = false;       ///< payload is buffered (HEADERS, CONTINUATION, SETTINGS, ...)
    bool damaged = false;      ///< part of the buffered payload was not captured
    std::string payload;       ///< buffered payload of the current frame
    // Header block in progress (HEADERS + CONTINUATIONs).
    bool in_block = false;
    bool block_damaged = false;
    bool block_end_stream = false;
    bool block_push = false;   ///< PUSH_PROMISE's block (decoded, no transaction)
    uint32_t block_sid = 0;
    uint64_t block_ts = 0;     ///< ts_exit of the record with the HEADERS frame's first byte
    uint64_t block_wire = 0;   ///< wire bytes of the block's frames
    std::string block;
    // HPACK.
    nghttp2_hd_inflater* inflater = nullptr;
    bool unsynced = false;     ///< entries added before the inflater was (re)made are unknown
  };

  struct Stream {
    uint32_t id = 0;
    bool requested = false;    ///< request HEADERS seen
    bool req_done = false;     ///< request END_STREAM seen
    bool resp_headers = false; ///< response headers (non-1xx) seen
    bool resp_done = false;
    bool headers_unknown = false;
    bool status_unknown = false;
    bool grpc = false;
    int status = 0;
    int grpc_status = -1;
    uint64_t start_ns = 0;
    uint64_t queued_ns = 0;  ///< when the record with its HEADERS' first byte arrived (0: unknown)
    uint64_t req_bytes = 0, resp_bytes = 0;
    std::string method;
    std::string target;
  };

  /// Decoded header fields of one block, the ones a transaction needs.
  struct Fields {
    std::string method, path, content_type;
    int status = -1;
    int grpc_status = -1;
    bool has_method = false, has_path = false, has_status = false;
  };

  Dir& DirFor(const rq_data_event& ev);
  void Consume(Dir& d, const char* data, size_t len);
  void Skip(Dir& d, uint64_t gap);
  void FrameStart(Dir& d);
  void FrameEnd(Dir& d);
  void LoseFraming(Dir& d, uint64_t lost_bytes);
  void HeaderBlockDone(Dir& d);
  /// Decodes one complete header block with the direction's inflater (rewriting it first when
  /// the table is unsynced); false when nghttp2 rejects it.
  bool Inflate(Dir& d, std::string_view block, Fields* out);
  void ResetInflater(Dir& d, bool unsynced);
  Stream* Find(uint32_t id);
  Stream& Open(uint32_t id);
  void Account(Dir& d, uint32_t sid, uint64_t bytes);
  void EndStream(Dir& d, Stream& s);
  void Emit(Stream& s, bool incomplete);
  void Remove(uint32_t id);
  void CountUnparsed(uint64_t bytes, bool resync);

  Dir in_;   ///< ingress
  Dir out_;  ///< egress
  std::vector<Stream> streams_;
  uint32_t pid_ = 0;
  int32_t fd_ = -1;
  uint64_t connection_id_ = 0;
  rq_role role_ = RQ_ROLE_SERVER;
  bool role_guessed_ = false;  ///< midstream with unknown role: may flip once
  bool midstream_ = false;     ///< started as Http2Start::kMidstream
  uint64_t blocks_ = 0;        ///< header blocks seen on this connection
  bool active_ = false;
  bool tls_ = false;           ///< plaintext of a TLS connection seen (RQ_DATA_TLS)
  uint64_t cur_exit_ = 0;      ///< ts_exit of the record being fed
  uint64_t cur_queued_ = 0;    ///< ts_queued of the record being fed
  rq_endpoints ep_{};
  Options options_;
  HttpCounters* http_ = nullptr;
  Http2Counters* counters_ = nullptr;
  TransactionSink* sink_ = nullptr;
  HttpTransaction tx_;
};

}  // namespace reqmon
