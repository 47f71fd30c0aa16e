// SPDX-License-Identifier: MIT
#pragma once
/// One HTTP request/response exchange reconstructed from socket bytes: what the parser hands to
/// the aggregator.

#include <cstdint>
#include <string>

#include "reqmon/abi.h"

namespace reqmon {

/// The wire protocol a transaction was carried by.
enum class HttpProtocol : uint8_t { kHttp10 = 0, kHttp11 = 1, kHttp2 = 2 };
/// "HTTP/1.0", "HTTP/1.1" or "HTTP/2".
inline const char* ProtocolName(HttpProtocol p) {
  switch (p) {
    case HttpProtocol::kHttp10: return "HTTP/1.0";
    case HttpProtocol::kHttp2: return "HTTP/2";
    default: return "HTTP/1.1";
  }
}

struct HttpTransaction {
  uint32_t pid = 0;           ///< tgid of the process that handled the request
  int32_t fd = -1;            ///< its socket fd
  uint64_t request_start_ns = 0;  ///< CLOCK_MONOTONIC exit of the syscall that read the request's first byte
  uint64_t response_end_ns = 0;   ///< CLOCK_MONOTONIC exit of the syscall that wrote the response's last byte (0 if incomplete)
  std::string method;         ///< "GET", "POST", ...
  std::string path;           ///< request target without the query, e.g. "/users/42"
  std::string query;          ///< the part after '?', without the '?' (empty when none)
  int status = 0;             ///< response status; 0 when incomplete
  bool incomplete = false;    ///< connection closed (or stream lost) before the response ended
  uint64_t request_bytes = 0;   ///< request size on the wire: head + body
  uint64_t response_bytes = 0;  ///< response size on the wire: head + body
  rq_endpoints ep{};          ///< local and remote address of the connection
  /// The stream lost its place (uncaptured bytes in a chunked body or head, or a parse error)
  /// after the response head was parsed: status is known, response_end_ns is the record where
  /// the place was lost and response_bytes counts up to the end of that record.
  bool truncated = false;
  /// RQ_ROLE_SERVER (the observed process answered the request) or RQ_ROLE_CLIENT (it sent the
  /// request; only emitted when the tracker is configured to parse client connections).
  uint8_t role = RQ_ROLE_SERVER;
  /// Unique per tracked connection (pid, fd, generation): a reused fd gets a new id.
  uint64_t connection_id = 0;
  /// The request travelled over TLS: its bytes are the plaintext of the TLS library
  /// (RQ_DATA_TLS records).
  bool tls = false;

  // --- protocol and gRPC (HTTP/2, issue #11) ---------------------------------------------------
  /// Wire protocol of the exchange.
  HttpProtocol protocol = HttpProtocol::kHttp11;
  /// HTTP/2 only: the stream id (0 for HTTP/1.x).
  uint32_t stream_id = 0;
  /// HTTP/2 only: the request's header block could not be fully decoded (connection caught
  /// mid-way or a gap broke the HPACK table); method and/or path are then "(unknown)".
  bool headers_unknown = false;
  /// gRPC (HTTP/2 with content-type application/grpc... on the request or the response):
  /// service and method are split from the path "/package.Service/Method" ("(unknown)" when the
  /// path could not be decoded); grpc_status is the grpc-status trailer (-1: none decoded).
  bool is_grpc = false;
  std::string grpc_service;
  std::string grpc_method;
  int grpc_status = -1;

  /// Queue time (issue #14): how long the request waited on the host before the server's first
  /// read of it: from its arrival (the connection's handshake completing for a new connection,
  /// its first bytes being queued on the socket for a keep-alive one) to request_start_ns. 0 when
  /// not measured (compat build, TLS plaintext, a connection open before attach, old captures).
  /// Not part of response_ns(), which stays the serving time.
  uint64_t queue_ns = 0;

  /// Response time in nanoseconds (response_end_ns - request_start_ns), 0 when incomplete.
  uint64_t response_ns() const {
    return incomplete || response_end_ns < request_start_ns ? 0
                                                            : response_end_ns - request_start_ns;
  }
  /// The same in milliseconds.
  double response_ms() const { return static_cast<double>(response_ns()) / 1e6; }
};

/// Non-HTTP or undecodable bytes seen on an observed connection, for the "unparsed" counters.
struct UnparsedBytes {
  uint32_t pid = 0;
  uint64_t bytes = 0;
  bool resync = false;  ///< true when an HTTP stream lost its place and had to resynchronise
};

/// Receives transactions in the order their responses completed. Single-threaded.
class TransactionSink {
 public:
  virtual ~TransactionSink() = default;
  virtual void OnTransaction(const HttpTransaction& tx) = 0;
  virtual void OnUnparsed(const UnparsedBytes& u) { (void)u; }
  /// The calls from here to EndBatch() come as one batch (records drained from the kernel
  /// together), from the thread that calls OnTransaction: a sink may hold its lock across them,
  /// so its readers on other threads wait for the batch's end. Batches do not nest.
  virtual void BeginBatch() {}
  virtual void EndBatch() {}
};

}  // namespace reqmon
