// SPDX-License-Identifier: MIT
#include "reqmon/parser/http1/http_connection.h"

#include "reqmon/parser/http1/simple_message.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace reqmon {
namespace {

// Uncaptured Content-Length body bytes are fed to llhttp as zeros from here: the body is
// consumed without looking at it, so this keeps the parser's position exact.
constexpr size_t kZeroChunk = 64 * 1024;
const char kZeros[kZeroChunk] = {};

struct Token {
  const char* text;
  size_t len;
};
constexpr Token kMethods[] = {
    {"GET ", 4},     {"POST ", 5},    {"HEAD ", 5},    {"PUT ", 4},     {"DELETE ", 7},
    {"PATCH ", 6},   {"OPTIONS ", 8}, {"CONNECT ", 8}, {"TRACE ", 6},
};

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

// An "Upgrade:" header naming h2c in the record that carried the request head (heads are
// small: one record).
bool ContainsH2c(std::string_view rec) {
  static constexpr std::string_view kName = "\nupgrade:";
  for (size_t i = 0; i + kName.size() <= rec.size(); ++i) {
    size_t k = 0;
    while (k < kName.size() && Lower(rec[i + k]) == kName[k]) ++k;
    if (k < kName.size()) continue;
    for (size_t j = i + k; j + 3 <= rec.size() && rec[j] != '\r' && rec[j] != '\n'; ++j) {
      if (Lower(rec[j]) == 'h' && rec[j + 1] == '2' && Lower(rec[j + 2]) == 'c') return true;
    }
  }
  return false;
}

}  // namespace

bool StartsLikeMessage(std::string_view payload) {
  if (payload.empty()) return false;
  for (const Token& t : kMethods)
    if (payload.size() < t.len && std::memcmp(payload.data(), t.text, payload.size()) == 0)
      return true;
  return payload.size() < 7 && std::memcmp(payload.data(), "HTTP/1.", payload.size()) == 0;
}

bool StartsWithRequest(std::string_view payload) {
  if (payload.size() < 4) return false;
  for (const Token& t : kMethods) {
    if (payload.size() >= t.len && std::memcmp(payload.data(), t.text, t.len) == 0) return true;
  }
  return false;
}

bool StartsWithResponse(std::string_view payload) {
  return payload.size() >= 7 && std::memcmp(payload.data(), "HTTP/1.", 7) == 0;
}

// ---------------------------------------------------------------------------------------------
// llhttp callbacks. parser->data points at the Stream.

const llhttp_settings_t& HttpConnection::Settings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = &HttpConnection::OnMessageBegin;
    s.on_url = &HttpConnection::OnUrl;
    s.on_headers_complete = &HttpConnection::OnHeadersComplete;
    s.on_message_complete = &HttpConnection::OnMessageComplete;
    s.on_chunk_header = &HttpConnection::OnChunkHeader;
    s.on_chunk_complete = &HttpConnection::OnChunkComplete;
    return s;
  }();
  return settings;
}

int HttpConnection::OnMessageBegin(llhttp_t* p) {
  Stream& s = *static_cast<Stream*>(p->data);
  // llhttp 8.1 clears its Content-Length after a message only when the connection stays open;
  // with lenient keep-alive it parses on, and the Content-Length of a bodiless response before
  // (HEAD, 1xx, 204, 304) would have the next one's digits added to it.
  p->content_length = 0;
  s.in_message = true;
  s.headers_done = false;
  s.upgrade_next = false;
  s.in_chunk_data = false;
  s.msg_start_ts = s.cur_exit;
  s.msg_start_enter = s.cur_enter;
  s.msg_start_queued = s.cur_queued;
  s.url.clear();
  return 0;
}

int HttpConnection::OnUrl(llhttp_t* p, const char* at, size_t len) {
  Stream& s = *static_cast<Stream*>(p->data);
  size_t room = s.conn->options_.max_url - std::min(s.url.size(), s.conn->options_.max_url);
  s.url.append(at, std::min(len, room));
  return 0;
}

int HttpConnection::OnHeadersComplete(llhttp_t* p) {
  Stream& s = *static_cast<Stream*>(p->data);
  HttpConnection& c = *s.conn;
  s.headers_done = true;
  if (s.is_request) {
    Pending& r = c.PushPending();
    r.start_ns = s.msg_start_ts;
    r.queued_ns = s.msg_start_queued;
    r.method = p->method;
    r.minor = p->http_minor;
    r.h2c = p->upgrade && ContainsH2c(s.record);
    r.url.assign(s.url);
    r.bytes = 0;
    r.interim_bytes = 0;
    s.req_seq = r.seq;
    s.req_pushed = true;
    return 0;
  }
  const int status = p->status_code;
  if (status == 101) {
    s.upgrade_next = true;
    return 2;  // no body; the rest of the connection is another protocol
  }
  if (status < 200 || status == 204 || status == 304) return 1;  // never a body
  const Pending* req = c.MatchFront(s.msg_start_enter);
  if (req != nullptr) {
    if (req->method == HTTP_HEAD) return 1;
    if (req->method == HTTP_CONNECT && status < 300) {
      s.upgrade_next = true;
      return 2;  // tunnel established
    }
  }
  return 0;
}

int HttpConnection::OnChunkHeader(llhttp_t* p) {
  // parser->content_length now holds the chunk size and counts down while its data is consumed.
  static_cast<Stream*>(p->data)->in_chunk_data = p->content_length > 0;
  return 0;
}

int HttpConnection::OnChunkComplete(llhttp_t* p) {
  static_cast<Stream*>(p->data)->in_chunk_data = false;
  return 0;
}

int HttpConnection::OnMessageComplete(llhttp_t* p) {
  Stream& s = *static_cast<Stream*>(p->data);
  s.complete = true;
  // Pausing makes llhttp_execute return with the exact end of the message.
  return HPE_PAUSED;
}

// ---------------------------------------------------------------------------------------------

HttpConnection::HttpConnection() {
  req_.conn = this;
  req_.is_request = true;
  resp_.conn = this;
  resp_.is_request = false;
  llhttp_init(&req_.parser, HTTP_REQUEST, &Settings());
  llhttp_init(&resp_.parser, HTTP_RESPONSE, &Settings());
  req_.parser.data = &req_;
  resp_.parser.data = &resp_;
}

void HttpConnection::ResetStream(Stream& s, bool synced) {
  llhttp_reset(&s.parser);
  // Keep parsing after "Connection: close" / HTTP/1.0: we observe, we do not enforce.
  llhttp_set_lenient_keep_alive(&s.parser, 1);
  s.synced = synced;
  s.ever_synced = synced;
  s.skipped_while_lost = false;
  s.in_message = false;
  s.headers_done = false;
  s.complete = false;
  s.upgrade_next = false;
  s.in_chunk_data = false;
  s.msg_bytes = 0;
  s.msg_start_ts = 0;
  s.msg_start_enter = 0;
  s.msg_start_queued = 0;
  s.cur_enter = 0;
  s.cur_exit = 0;
  s.cur_queued = 0;
  s.req_seq = 0;
  s.req_pushed = false;
  s.url.clear();
}

void HttpConnection::Reset(uint32_t pid, int32_t fd, uint64_t connection_id, rq_role role,
                           const rq_endpoints& ep, const Options& options,
                           HttpCounters* counters, TransactionSink* sink) {
  pid_ = pid;
  fd_ = fd;
  connection_id_ = connection_id;
  role_ = role;
  ep_ = ep;
  options_ = options;
  if (options_.max_pending == 0) options_.max_pending = 1;
  counters_ = counters;
  sink_ = sink;
  upgraded_ = false;
  held_.clear();
  unanswered_ = Pending{};
  tls_ = false;
  active_ = true;
  last_resp_ts_ = 0;
  h2c_.active = false;
  h2c_.tail.clear();
  h2c_.tail_gap = 0;
  const bool known = role == RQ_ROLE_SERVER || role == RQ_ROLE_CLIENT;
  ResetStream(req_, known);
  ResetStream(resp_, known);
  pending_head_ = 0;
  pending_count_ = 0;
  next_seq_ = 0;
}

bool HttpConnection::InferRole(const rq_data_event& ev, std::string_view payload) {
  const bool ingress = ev.direction == RQ_DIR_INGRESS;
  if (StartsWithRequest(payload)) {
    role_ = ingress ? RQ_ROLE_SERVER : RQ_ROLE_CLIENT;
  } else if (StartsWithResponse(payload)) {
    role_ = ingress ? RQ_ROLE_CLIENT : RQ_ROLE_SERVER;
  } else {
    return false;
  }
  return true;
}

void HttpConnection::CountUnparsed(uint64_t bytes, bool resync) {
  ReportUnparsed(counters_, sink_, pid_, bytes, resync);
}

void HttpConnection::OnData(const rq_data_event& ev, std::string_view payload) {
  if (!active_) return;
  if (ev.flags & RQ_DATA_TLS) tls_ = true;
  uint64_t bytes = ev.bytes > 0 ? static_cast<uint64_t>(ev.bytes) : 0;
  if (bytes < payload.size()) bytes = payload.size();
  if (role_ == RQ_ROLE_UNKNOWN) [[unlikely]] {
    if (!held_.empty()) {
      // The bytes held from the last record, and these: one message start, read in two.
      std::string joined = held_;
      const rq_data_event first = held_ev_;
      held_.clear();
      if (ev.direction == first.direction) {
        joined.append(payload);
        rq_data_event both = ev;
        both.h.ts_enter = first.h.ts_enter;  // the message began with the first read
        both.h.ts_exit = first.h.ts_exit;
        both.ts_queued = first.ts_queued;
        both.bytes = static_cast<int64_t>(first.bytes) + static_cast<int64_t>(bytes);
        both.payload_len = static_cast<uint32_t>(joined.size());
        if (InferRole(both, joined)) return OnData(both, joined);
        CountUnparsed(first.bytes + bytes, false);
        return;
      }
      CountUnparsed(first.bytes, false);
    }
    if (!InferRole(ev, payload)) {
      // A first read that brought only the beginning of a method or of "HTTP/1." (a slow
      // client, a small first segment): hold it for the next read.
      if (bytes == payload.size() && StartsLikeMessage(payload)) {
        held_.assign(payload);
        held_ev_ = ev;
        return;
      }
      CountUnparsed(bytes, false);
      if (ev.direction == RQ_DIR_INGRESS) NoteUnparsedRequest(bytes, ev.h.ts_enter, nullptr);
      return;
    }
  }
  if (role_ == RQ_ROLE_CLIENT && !options_.parse_client) {
    counters_->client_bytes += bytes;
    return;
  }
  if (upgraded_) {
    CountUnparsed(bytes, false);
    return;
  }
  const bool ingress = ev.direction == RQ_DIR_INGRESS;
  Stream& s = (ingress == (role_ == RQ_ROLE_SERVER)) ? req_ : resp_;
  if (!s.is_request) last_resp_ts_ = ev.h.ts_exit;
  s.cur_enter = ev.h.ts_enter;
  s.cur_exit = ev.h.ts_exit;
  s.cur_queued = ev.ts_queued;

  if (!s.synced) {
    const bool start = s.is_request ? StartsWithRequest(payload) : StartsWithResponse(payload);
    if (!start) {
      s.skipped_while_lost = true;
      CountUnparsed(bytes, s.ever_synced);
      if (s.is_request && role_ == RQ_ROLE_SERVER) NoteUnparsedRequest(bytes, ev.h.ts_enter, nullptr);
      return;
    }
    Resync(s, ev);
  }
  const uint64_t gap = bytes - payload.size();
  if (!s.in_message && options_.simple_messages && TakeSimpleMessage(s, payload, gap)) return;
  s.record = payload;
  if (!Feed(s, payload.data(), payload.size())) {
    if (h2c_.active) {
      h2c_.tail_gap = gap;
    } else {
      CountUnparsed(gap, !upgraded_);
    }
    return;
  }
  if (gap != 0) SkipGap(s, gap);
}

void HttpConnection::AfterUpgrade(const char* data, size_t len) {
  if (h2c_.active) {
    h2c_.tail.assign(data, len);
  } else {
    CountUnparsed(len, false);
  }
}

bool HttpConnection::Feed(Stream& s, const char* data, size_t len) {
  while (len > 0) {
    const llhttp_errno_t err = llhttp_execute(&s.parser, data, len);
    if (err == HPE_OK) {
      s.msg_bytes += len;
      return true;
    }
    const char* pos = llhttp_get_error_pos(&s.parser);
    size_t used = (pos != nullptr && pos >= data && pos <= data + len) ? pos - data : 0;
    s.msg_bytes += used;
    data += used;
    len -= used;
    if (err == HPE_PAUSED) {
      llhttp_resume(&s.parser);
      if (s.complete) {
        MessageComplete(s, s.cur_exit);
        if (upgraded_) {
          AfterUpgrade(data, len);
          return false;
        }
      }
      continue;
    }
    if (err == HPE_PAUSED_UPGRADE) {
      // A request asked for an upgrade (or CONNECT); whether it happens is up to the response.
      // Keep parsing HTTP; a 101 (or CONNECT 2xx) stops the connection's parsing.
      llhttp_resume_after_upgrade(&s.parser);
      if (s.in_message) {
        // on_message_complete was not run (on_headers_complete returned 2).
        s.complete = true;
        MessageComplete(s, s.cur_exit);
      }
      if (upgraded_) {
        AfterUpgrade(data, len);
        return false;
      }
      continue;
    }
    ++counters_->parse_errors;
    LoseSync(s, s.cur_exit, len);
    return false;
  }
  return true;
}

bool HttpConnection::TakeSimpleMessage(Stream& s, std::string_view payload, uint64_t gap) {
  SimpleMessage m;
  if (!ScanSimpleMessage(payload, s.is_request, &m)) return false;
  const uint64_t total = m.head_len + m.content_length;
  if (payload.size() + gap != total) return false;  // more than one message, or less
  if (!s.is_request) {
    // A response to HEAD or CONNECT is framed otherwise: llhttp's, with on_headers_complete.
    const Pending* req = MatchFront(s.cur_enter);
    if (req != nullptr && (req->method == HTTP_HEAD || req->method == HTTP_CONNECT)) return false;
  }
  // What on_message_begin leaves behind (the stream keeps it after the message, as there), and
  // what llhttp leaves in the fields this file reads of it (MessageComplete and EmitAnswered
  // read a response's; NoteUnparsedRequest a request's, while the next head is cut short).
  s.msg_start_ts = s.cur_exit;
  s.msg_start_enter = s.cur_enter;
  s.msg_start_queued = s.cur_queued;
  s.parser.http_major = 1;
  s.parser.http_minor = m.minor;
  if (s.is_request) {
    // What on_url, on_headers_complete and on_message_complete would do.
    Pending& r = PushPending();
    r.start_ns = s.cur_exit;
    r.queued_ns = s.cur_queued;
    r.method = m.method;
    r.minor = m.minor;
    r.h2c = false;
    r.url.assign(m.target.substr(0, options_.max_url));
    r.bytes = s.msg_bytes + total;  // with the empty lines llhttp skipped before it
    r.interim_bytes = 0;
    s.msg_bytes = 0;
    s.req_seq = r.seq;
    s.parser.method = m.method;
  } else {
    s.parser.status_code = m.status;
    s.msg_bytes += total;
    MessageComplete(s, s.cur_exit);
  }
  counters_->gap_bytes_skipped += gap;
  return true;
}

bool HttpConnection::FeedZeros(Stream& s, uint64_t n) {
  counters_->gap_bytes_skipped += n;
  while (n > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, kZeroChunk));
    n -= chunk;
    if (!Feed(s, kZeros, chunk)) {
      CountUnparsed(n, !upgraded_);
      return false;
    }
  }
  return true;
}

void HttpConnection::SkipGap(Stream& s, uint64_t gap) {
  llhttp_t& p = s.parser;
  if (s.in_message && s.headers_done) {
    if (p.flags & F_CHUNKED) {
      // Inside one chunk's data the remaining size is known: skip exactly when the gap ends
      // within it. Anything else (chunk sizes, trailers) cannot be skipped.
      if (s.in_chunk_data && gap <= p.content_length) {
        FeedZeros(s, gap);
        return;
      }
    } else if (p.flags & F_CONTENT_LENGTH) {
      const uint64_t n = std::min<uint64_t>(gap, p.content_length);
      gap -= n;
      if (!FeedZeros(s, n)) {
        CountUnparsed(gap, !upgraded_);
        return;
      }
    } else if (!s.is_request && llhttp_message_needs_eof(&p)) {
      // Body delimited by the close: nothing in it needs parsing.
      s.msg_bytes += gap;
      counters_->gap_bytes_skipped += gap;
      return;
    }
  }
  if (gap == 0) return;
  LoseSync(s, s.cur_exit, gap);
}

void HttpConnection::LoseSync(Stream& s, uint64_t ts_exit, uint64_t lost_bytes) {
  ++counters_->stream_losses;
  bool attributed = false;
  if (s.in_message) {
    if (s.is_request) {
      if (s.req_pushed) {
        if (Pending* r = BySeq(s.req_seq)) r->bytes = s.msg_bytes + lost_bytes;
        attributed = true;
      }
    } else if (Pending* req = MatchFront(s.msg_start_enter)) {
      if (s.headers_done) {
        EmitAnswered(*req, s.parser.status_code, ts_exit,
                     s.msg_bytes + lost_bytes + req->interim_bytes, /*truncated=*/true);
        attributed = true;
      } else {
        EmitIncomplete(*req);
      }
      PopPending();
    }
  } else {
    // Lost at a message boundary: whole messages may be in the lost bytes.
    s.skipped_while_lost = true;
  }
  if (!attributed && s.is_request && role_ == RQ_ROLE_SERVER)
    NoteUnparsedRequest(s.msg_bytes + lost_bytes, s.msg_start_enter ? s.msg_start_enter : ts_exit,
                        s.in_message ? &s : nullptr);
  s.synced = false;
  s.in_message = false;
  s.headers_done = false;
  s.complete = false;
  s.upgrade_next = false;
  s.in_chunk_data = false;
  s.req_pushed = false;
  s.msg_bytes = 0;
  s.url.clear();
  if (!attributed) CountUnparsed(lost_bytes, true);
}

void HttpConnection::Resync(Stream& s, const rq_data_event& ev) {
  const bool was_synced = s.ever_synced;
  const bool skipped = s.skipped_while_lost;
  const uint64_t enter = s.cur_enter, exit = s.cur_exit, queued = s.cur_queued;
  ResetStream(s, true);
  s.cur_enter = enter;
  s.cur_exit = exit;
  s.cur_queued = queued;
  if (!was_synced) return;
  ++counters_->resyncs;
  if (s.is_request || !skipped) return;
  // Whole responses were skipped: this response answers the latest request read before it
  // began (exact for non-pipelined traffic); older unanswered requests lost their responses.
  while (pending_count_ > 1) {
    const Pending& next = pending_[(pending_head_ + 1) % pending_.size()];
    if (next.start_ns > ev.h.ts_enter) break;
    EmitIncomplete(*Front());
    PopPending();
  }
}

void HttpConnection::MessageComplete(Stream& s, uint64_t ts_exit) {
  s.complete = false;
  s.in_message = false;
  s.headers_done = false;
  const uint64_t bytes = s.msg_bytes;
  s.msg_bytes = 0;
  if (s.is_request) {
    if (s.req_pushed) {
      if (Pending* r = BySeq(s.req_seq)) r->bytes = bytes;
      s.req_pushed = false;
    }
    s.url.clear();
    return;
  }
  const int status = s.parser.status_code;
  Pending* req = MatchFront(s.msg_start_enter);
  if (status >= 100 && status < 200 && status != 101) {
    ++counters_->interim_responses;
    if (req != nullptr) req->interim_bytes += bytes;
    return;
  }
  if (req == nullptr && unanswered_.bytes > 0 && role_ == RQ_ROLE_SERVER &&
      unanswered_.start_ns <= s.msg_start_enter) {
    ++counters_->answered_unparsed;
    EmitAnswered(unanswered_, status, ts_exit, bytes, /*truncated=*/false);
    unanswered_ = Pending{};
    return;
  }
  if (req != nullptr) unanswered_ = Pending{};  // what came before it got no answer of its own
  if (req == nullptr) {
    ++counters_->orphan_responses;
  } else if (status == 101 && req->h2c) {
    // HTTP/2 from here on; this request is its stream 1 (RFC 7540 §3.2).
    h2c_.active = true;
    h2c_.method = llhttp_method_name(static_cast<llhttp_method_t>(req->method));
    h2c_.target = req->url;
    h2c_.start_ns = req->start_ns;
    h2c_.request_bytes = req->bytes;
    h2c_.tail.clear();
    h2c_.tail_gap = 0;
    PopPending();
  } else {
    EmitAnswered(*req, status, ts_exit, bytes + req->interim_bytes, /*truncated=*/false);
    PopPending();
  }
  if (s.upgrade_next) {
    s.upgrade_next = false;
    upgraded_ = true;
    ++counters_->upgrades;
  }
}

void HttpConnection::Finish(uint64_t ts_ns) {
  (void)ts_ns;
  if (!active_) return;
  if (!held_.empty()) {
    CountUnparsed(held_.size(), false);
    held_.clear();
  }
  if (!upgraded_ && resp_.synced && resp_.in_message && resp_.headers_done) {
    if (llhttp_message_needs_eof(&resp_.parser)) {
      llhttp_finish(&resp_.parser);
      if (resp_.complete) MessageComplete(resp_, last_resp_ts_);
    }
    if (resp_.in_message) {
      if (Pending* req = MatchFront(resp_.msg_start_enter)) {
        EmitAnswered(*req, resp_.parser.status_code, last_resp_ts_,
                     resp_.msg_bytes + req->interim_bytes, /*truncated=*/true);
        PopPending();
      }
      resp_.in_message = false;
    }
  }
  while (pending_count_ > 0) {
    EmitIncomplete(*Front());
    PopPending();
  }
  active_ = false;
}

void HttpConnection::OnRecordsLost() {
  if (!active_ || upgraded_) return;
  ++counters_->stream_losses;
  if (!held_.empty()) {
    CountUnparsed(held_.size(), false);
    held_.clear();
  }
  // The response first: one whose head was parsed answers the oldest request (as at a gap).
  for (Stream* s : {&resp_, &req_}) {
    if (!s->synced) {
      s->skipped_while_lost = true;
      continue;
    }
    if (s->in_message) {
      LoseSync(*s, s->cur_exit, 0);
      --counters_->stream_losses;  // one loss for the connection, counted above
    } else {
      s->synced = false;
    }
    s->skipped_while_lost = true;
  }
  while (pending_count_ > 0) {
    EmitIncomplete(*Front());
    PopPending();
  }
  unanswered_ = Pending{};
}

// ---------------------------------------------------------------------------------------------
// Pending requests.

HttpConnection::Pending* HttpConnection::BySeq(uint64_t seq) {
  if (pending_count_ == 0) return nullptr;
  const uint64_t first = pending_[pending_head_].seq;
  if (seq < first || seq - first >= pending_count_) return nullptr;
  return &pending_[(pending_head_ + (seq - first)) % pending_.size()];
}

HttpConnection::Pending& HttpConnection::PushPending() {
  if (pending_count_ >= options_.max_pending) {
    ++counters_->pending_overflow;
    PopPending();
  }
  if (pending_count_ == pending_.size()) {
    // Grow the ring, keeping order; strings are moved, not copied.
    std::vector<Pending> bigger(std::max<size_t>(4, pending_.size() * 2));
    for (size_t i = 0; i < pending_count_; ++i) {
      bigger[i] = std::move(pending_[(pending_head_ + i) % pending_.size()]);
    }
    pending_.swap(bigger);
    pending_head_ = 0;
  }
  Pending& p = pending_[(pending_head_ + pending_count_) % pending_.size()];
  ++pending_count_;
  p.seq = next_seq_++;
  return p;
}

void HttpConnection::PopPending() {
  if (pending_count_ == 0) return;
  pending_head_ = (pending_head_ + 1) % pending_.size();
  --pending_count_;
}

HttpConnection::Pending* HttpConnection::MatchFront(uint64_t resp_enter_ns) {
  Pending* front = Front();
  if (front == nullptr || front->start_ns > resp_enter_ns) return nullptr;
  return front;
}

void HttpConnection::NoteUnparsedRequest(uint64_t bytes, uint64_t ts_enter, const Stream* partial) {
  if (bytes == 0) return;
  if (unanswered_.bytes == 0) {
    unanswered_.start_ns = ts_enter;
    unanswered_.queued_ns = 0;
    unanswered_.unparsed = true;
    unanswered_.url = "(unparsed)";
    unanswered_.seq = ~0ull;
  }
  unanswered_.bytes += bytes;
  if (partial != nullptr && partial->in_message && !partial->url.empty() && unanswered_.unparsed) {
    // The head's start was parsed: its method and target are known.
    unanswered_.unparsed = false;
    unanswered_.method = static_cast<uint8_t>(partial->parser.method);
    unanswered_.minor = static_cast<uint8_t>(partial->parser.http_minor);
    unanswered_.url = partial->url;
    unanswered_.start_ns = partial->msg_start_ts;
  }
}

void HttpConnection::FillRequest(const Pending& req) {
  tx_.pid = pid_;
  tx_.fd = fd_;
  tx_.connection_id = connection_id_;
  tx_.ep = ep_;
  tx_.role = static_cast<uint8_t>(role_);
  tx_.tls = tls_;
  tx_.request_start_ns = req.start_ns;
  tx_.queue_ns = req.queued_ns && req.queued_ns < req.start_ns ? req.start_ns - req.queued_ns : 0;
  const char* name = req.unparsed ? "(unparsed)"
                                  : llhttp_method_name(static_cast<llhttp_method_t>(req.method));
  tx_.method.assign(name);
  SplitTarget(req.url, &tx_.path, &tx_.query);
  tx_.request_bytes = req.bytes;
  tx_.protocol = req.minor == 0 ? HttpProtocol::kHttp10 : HttpProtocol::kHttp11;
  if (req_.req_pushed && req_.req_seq == req.seq && req.bytes == 0) {
    tx_.request_bytes = req_.msg_bytes;  // body still arriving (early response)
  }
}

void HttpConnection::EmitAnswered(Pending& req, int status, uint64_t end_ns, uint64_t resp_bytes,
                                  bool truncated) {
  FillRequest(req);
  // The exchange's version is the lower of the two: an HTTP/1.0 server answers 1.1 clients.
  if (resp_.parser.http_major == 1 && resp_.parser.http_minor == 0) tx_.protocol = HttpProtocol::kHttp10;
  tx_.status = status;
  tx_.response_end_ns = end_ns;
  tx_.response_bytes = resp_bytes;
  tx_.incomplete = false;
  tx_.truncated = truncated;
  ++counters_->transactions;
  if (truncated) ++counters_->truncated;
  sink_->OnTransaction(tx_);
}

void HttpConnection::EmitIncomplete(Pending& req) {
  FillRequest(req);
  tx_.status = 0;
  tx_.response_end_ns = 0;
  tx_.response_bytes = req.interim_bytes;
  tx_.incomplete = true;
  tx_.truncated = false;
  ++counters_->transactions;
  ++counters_->incomplete;
  sink_->OnTransaction(tx_);
}

}  // namespace reqmon
