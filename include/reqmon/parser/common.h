// SPDX-License-Identifier: MIT
#pragma once
/// What the protocol parsers (reqmon/parser/http1/, reqmon/parser/http2/) share: the HTTP
/// stage's counters, the one accounting of unparsed bytes, and how a request target is split.

#include <cstdint>
#include <string>
#include <string_view>

#include "reqmon/parser/transaction.h"

namespace reqmon {

/// Counters of the HTTP stage, summed over all connections. Plain integers; read them from the
/// thread that feeds the records.
struct HttpCounters {
  uint64_t transactions = 0;      ///< transactions emitted (all kinds)
  uint64_t truncated = 0;         ///< of which finished early because the stream lost its place
  uint64_t incomplete = 0;        ///< of which without a response (close/exit/evict/lost)
  uint64_t unparsed_bytes = 0;    ///< bytes skipped: non-HTTP, lost place, after an upgrade
  uint64_t resyncs = 0;           ///< times a stream that had lost its place found a message start
  uint64_t stream_losses = 0;     ///< times a stream lost its place (gap, parse error)
  uint64_t parse_errors = 0;      ///< llhttp errors (a subset of stream_losses)
  uint64_t gap_bytes_skipped = 0; ///< uncaptured body bytes skipped exactly
  uint64_t orphan_responses = 0;  ///< responses with no matching request (dropped)
  /// Responses to bytes that were not a parseable request (garbage, a head longer than the
  /// captured prefix): counted as transactions, because the server answered them.
  uint64_t answered_unparsed = 0;
  uint64_t pending_overflow = 0;  ///< unanswered requests dropped because of the per-connection cap
  uint64_t interim_responses = 0; ///< 1xx responses (not transactions)
  uint64_t upgrades = 0;          ///< connections that switched protocols (101, CONNECT)
  uint64_t client_bytes = 0;      ///< bytes of client-role connections not parsed
};

/// Counts `bytes` that were not parsed (HttpCounters::unparsed_bytes) and tells the sink: the one
/// accounting of unparsed bytes that the HTTP/1.x and HTTP/2 connections share.
void ReportUnparsed(HttpCounters* counters, TransactionSink* sink, uint32_t pid, uint64_t bytes,
                    bool resync);

/// Splits a request target into path and query (without '?'; a '#' fragment is dropped).
/// Control characters (a tab or form feed, which llhttp accepts) are percent-encoded.
void SplitTarget(std::string_view target, std::string* path, std::string* query);

}  // namespace reqmon
