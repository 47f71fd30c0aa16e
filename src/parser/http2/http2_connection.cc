// SPDX-License-Identifier: MIT
#include "reqmon/parser/http2/http2_connection.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>

namespace reqmon {
namespace {

enum FrameType : uint8_t {
  kData = 0x0, kHeaders = 0x1, kPriority = 0x2, kRstStream = 0x3, kSettings = 0x4,
  kPushPromise = 0x5, kPing = 0x6, kGoaway = 0x7, kWindowUpdate = 0x8, kContinuation = 0x9,
};
constexpr uint8_t kFlagEndStream = 0x1;
constexpr uint8_t kFlagAck = 0x1;
constexpr uint8_t kFlagEndHeaders = 0x4;
constexpr uint8_t kFlagPadded = 0x8;
constexpr uint8_t kFlagPriority = 0x20;

constexpr std::string_view kUnknown = "(unknown)";
// Name given to table entries whose real name is unknown (unsynced HPACK). One byte, so that
// our table never holds more bytes than the peer's (see RewriteUnsynced).
constexpr std::string_view kPlaceholderName = "?";
// Header tables may grow to what SETTINGS_HEADER_TABLE_SIZE allows; we observe, so accept any
// size update up to this.
constexpr size_t kMaxTableSettings = 1u << 20;
// Entries of HPACK's static table (RFC 7541 Appendix A); dynamic entries follow.
constexpr uint64_t kStaticEntries = 61;

uint32_t Be24(const uint8_t* p) { return (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2]; }
uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

/// A :method a server could accept: a token (RFC 9110 §5.6.2), not empty.
bool IsMethodToken(std::string_view v) {
  if (v.empty()) return false;
  for (const unsigned char c : v) {
    if (c <= 0x20 || c >= 0x7f || std::strchr("\"(),/:;<=>?@[\\]{}", c) != nullptr) return false;
  }
  return true;
}

/// A :path a server could accept: not empty, no spaces or control characters (RFC 9113 §8.2.1,
/// §8.3.1). HPACK carries any bytes; these would also forge lines in monitor_logs.txt.
bool IsPath(std::string_view v) {
  if (v.empty()) return false;
  for (const unsigned char c : v) {
    if (c <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

/// Protocol rules a frame header must satisfy whatever its content (RFC 9113 §6).
bool FrameHeaderValid(uint32_t len, uint8_t type, uint8_t flags, uint32_t sid) {
  switch (type) {
    case kData: case kHeaders: case kContinuation: case kPushPromise:
      return sid != 0;
    case kPriority: return sid != 0 && len == 5;
    case kRstStream: return sid != 0 && len == 4;
    case kSettings: return sid == 0 && len % 6 == 0 && (!(flags & kFlagAck) || len == 0);
    case kPing: return sid == 0 && len == 8;
    case kGoaway: return sid == 0 && len >= 8;
    case kWindowUpdate: return len == 4;
    default: return true;  // unknown types are ignored (RFC 9113 §4.1)
  }
}

/// Decodes an HPACK integer with an N-bit prefix (RFC 7541 §5.1).
bool HpackInt(const uint8_t*& p, const uint8_t* end, int prefix, uint64_t* out) {
  if (p >= end) return false;
  const uint8_t mask = static_cast<uint8_t>((1u << prefix) - 1);
  uint64_t v = *p++ & mask;
  if (v < mask) {
    *out = v;
    return true;
  }
  int shift = 0;
  while (p < end) {
    const uint8_t b = *p++;
    v += uint64_t{b & 0x7fu} << shift;
    if (!(b & 0x80)) {
      *out = v;
      return true;
    }
    shift += 7;
    if (shift > 28) return false;
  }
  return false;
}

/// Skips an HPACK string literal (RFC 7541 §5.2).
bool HpackString(const uint8_t*& p, const uint8_t* end) {
  uint64_t n = 0;
  if (!HpackInt(p, end, 7, &n) || n > static_cast<uint64_t>(end - p)) return false;
  p += n;
  return true;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

int ParseInt(std::string_view v) {
  if (v.empty() || v.size() > 9) return -1;
  int n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

/// The names of the fields a transaction reads (Http2Connection::Inflate's `take`), plainly and
/// as HPACK's Huffman code writes them (RFC 7541 Appendix B; a given string has one encoding). A
/// field that does not enter the header table and has none of these names is not decoded.
class NeededNames {
 public:
  NeededNames() {
    for (std::string_view n : {":method", ":path", ":status", "content-type", "grpc-status"}) {
      plain_.emplace_back(n);
      huffman_.push_back(Huffman(n));
      if (huffman_.back().empty()) huffman_ok_ = false;
    }
  }
  /// `raw`: a name string as it was sent (Huffman-coded or not).
  bool Literal(std::string_view raw, bool huffman) const {
    if (huffman && !huffman_ok_) return true;  // no codes to compare with: decode them all
    for (const std::string& h : huffman ? huffman_ : plain_) {
      if (huffman ? raw == h : IEquals(raw, h)) return true;
    }
    return false;
  }
  /// A name from the header table (decoded).
  static bool Decoded(std::string_view name) {
    return (!name.empty() && name[0] == ':') || IEquals(name, "content-type") ||
           IEquals(name, "grpc-status");
  }

 private:
  // The Huffman code of `s`, from nghttp2's own encoder: a field "x: s" never indexed is
  // 0x10, the name (1 byte of length, "x"), then the value: its H bit, length and bytes.
  static std::string Huffman(std::string_view s) {
    nghttp2_hd_deflater* def = nullptr;
    std::string out;
    if (nghttp2_hd_deflate_new(&def, 4096) != 0) return out;
    nghttp2_nv nv{};
    nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>("x"));
    nv.namelen = 1;
    nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(s.data()));
    nv.valuelen = s.size();
    nv.flags = NGHTTP2_NV_FLAG_NO_INDEX;
    uint8_t buf[128];
    const ssize_t n = nghttp2_hd_deflate_hd(def, buf, sizeof(buf), &nv, 1);
    nghttp2_hd_deflate_del(def);
    if (n >= 4 && buf[0] == 0x10 && buf[1] == 1 && buf[2] == 'x' && (buf[3] & 0x80) &&
        static_cast<ssize_t>(4 + (buf[3] & 0x7f)) == n)
      out.assign(reinterpret_cast<const char*>(buf + 4), buf[3] & 0x7f);
    return out;
  }
  std::vector<std::string> plain_, huffman_;
  bool huffman_ok_ = true;
};

const NeededNames& Needed() {
  static const NeededNames n;
  return n;
}

}  // namespace

bool StartsWithHttp2Preface(std::string_view payload) {
  if (payload.size() >= kHttp2Preface.size()) return payload.substr(0, kHttp2Preface.size()) == kHttp2Preface;
  // "PRI " starts no other request; a shorter record could be the start of POST/PUT/PATCH.
  return payload.size() >= 4 && kHttp2Preface.substr(0, payload.size()) == payload;
}

bool LooksLikeHttp2Frames(std::string_view payload, uint64_t bytes) {
  if (payload.size() < 9) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(payload.data());
  size_t off = 0;
  int frames = 0;
  while (off + 9 <= payload.size()) {
    const uint32_t len = Be24(p + off);
    const uint8_t type = p[off + 3], flags = p[off + 4];
    const uint32_t raw_sid = Be32(p + off + 5);
    if (type > kContinuation || (raw_sid & 0x80000000u) || len > (1u << 20)) return false;
    if (!FrameHeaderValid(len, type, flags, raw_sid)) return false;
    ++frames;
    off += 9 + len;
  }
  if (frames == 0) return false;
  if (off == payload.size()) return true;
  // The last frame (or the next header) runs past the capture: fine if the syscall had more.
  return off > payload.size() ? off <= std::max<uint64_t>(bytes, payload.size())
                              : bytes > payload.size();
}

// ---------------------------------------------------------------------------------------------

Http2Connection::Http2Connection() = default;

Http2Connection::~Http2Connection() {
  if (in_.inflater) nghttp2_hd_inflate_del(in_.inflater);
  if (out_.inflater) nghttp2_hd_inflate_del(out_.inflater);
}

void Http2Connection::ResetInflater(Dir& d, bool unsynced) {
  if (d.inflater) nghttp2_hd_inflate_del(d.inflater);
  d.inflater = nullptr;
  nghttp2_hd_inflate_new(&d.inflater);
  if (d.inflater) nghttp2_hd_inflate_change_table_size(d.inflater, kMaxTableSettings);
  d.unsynced = unsynced;
}

void Http2Connection::Reset(uint32_t pid, int32_t fd, uint64_t connection_id, rq_role role,
                            const rq_endpoints& ep, Http2Start start, const Options& options,
                            HttpCounters* http, Http2Counters* counters, TransactionSink* sink) {
  pid_ = pid;
  fd_ = fd;
  connection_id_ = connection_id;
  tls_ = false;
  role_guessed_ = role != RQ_ROLE_SERVER && role != RQ_ROLE_CLIENT;
  role_ = role_guessed_ ? RQ_ROLE_SERVER : role;
  ep_ = ep;
  options_ = options;
  if (options_.max_streams == 0) options_.max_streams = 1;
  http_ = http;
  counters_ = counters;
  sink_ = sink;
  active_ = true;
  cur_exit_ = 0;
  cur_queued_ = 0;
  streams_.clear();
  const bool mid = start == Http2Start::kMidstream;
  midstream_ = mid;
  blocks_ = 0;
  for (Dir* d : {&in_, &out_}) {
    d->fed = false;
    d->hdr_got = 0;
    d->got = 0;
    d->len = 0;
    d->preface_got = 0;
    d->payload.clear();
    d->block.clear();
    d->in_block = false;
    d->block_damaged = false;
    d->damaged = false;
    ResetInflater(*d, mid);
  }
  in_.from_client = role_ == RQ_ROLE_SERVER;
  out_.from_client = !in_.from_client;
  Dir& client = in_.from_client ? in_ : out_;
  Dir& server = in_.from_client ? out_ : in_;
  client.state = mid ? Dir::kHeader : Dir::kPreface;
  server.state = Dir::kHeader;
  ++counters_->connections;
  if (start == Http2Start::kPreface) ++counters_->via_preface;
  if (start == Http2Start::kUpgrade) ++counters_->via_upgrade;
  if (mid) ++counters_->midstream;
}

void Http2Connection::AddUpgradeStream(std::string_view method, std::string_view target,
                                       uint64_t start_ns, uint64_t request_bytes) {
  Stream& s = Open(1);
  s.requested = true;
  s.req_done = true;
  s.method.assign(method);
  s.target.assign(target.substr(0, options_.max_url));
  s.start_ns = start_ns;
  s.req_bytes = request_bytes;
}

void Http2Connection::CountUnparsed(uint64_t bytes, bool resync) {
  ReportUnparsed(http_, sink_, pid_, bytes, resync);
}

Http2Connection::Dir& Http2Connection::DirFor(const rq_data_event& ev) {
  return ev.direction == RQ_DIR_INGRESS ? in_ : out_;
}

void Http2Connection::OnData(const rq_data_event& ev, std::string_view payload) {
  if (!active_) return;
  if (ev.flags & RQ_DATA_TLS) tls_ = true;
  uint64_t bytes = ev.bytes > 0 ? static_cast<uint64_t>(ev.bytes) : 0;
  if (bytes < payload.size()) bytes = payload.size();
  Dir& d = DirFor(ev);
  if (!d.fed && midstream_ && StartsWithHttp2Preface(payload)) [[unlikely]] {
    // The first record was the server's SETTINGS, sent on accept: this is a new connection.
    midstream_ = false;
    d.state = Dir::kPreface;
    d.preface_got = 0;
    role_guessed_ = false;
    role_ = &d == &in_ ? RQ_ROLE_SERVER : RQ_ROLE_CLIENT;
    in_.from_client = role_ == RQ_ROLE_SERVER;
    out_.from_client = !in_.from_client;
    if (blocks_ == 0) {
      ResetInflater(in_, false);
      ResetInflater(out_, false);
      --counters_->midstream;
      ++counters_->via_preface;
    }
  }
  d.fed = true;
  if (role_ == RQ_ROLE_CLIENT && !options_.parse_client) {
    http_->client_bytes += bytes;
    return;
  }
  cur_exit_ = ev.h.ts_exit;
  cur_queued_ = ev.ts_queued;
  // The kernel follows the frames (DATA payloads left out) and says where it starts.
  const bool framed = (ev.flags & RQ_DATA_H2_FRAMES) != 0;
  const bool aligned = framed && (ev.flags & RQ_DATA_H2_START) != 0;
  if (aligned && d.state != Dir::kLost &&
      !(d.state == Dir::kHeader && d.hdr_got == 0) &&
      !(d.state == Dir::kPreface && d.preface_got == 0)) [[unlikely]] {
    // The kernel takes up the frames at this record, where this side is inside a frame: one of
    // the two lost its place. The kernel checked every frame header of the record.
    LoseFraming(d, 0);
  }
  if (d.state == Dir::kLost) {
    if (framed ? !aligned : !LooksLikeHttp2Frames(payload, bytes)) {
      CountUnparsed(bytes, true);
      return;
    }
    // Header blocks may have been in the lost bytes: the table is unknown from here.
    ++http_->resyncs;
    ++counters_->hpack_resets;
    d.state = Dir::kHeader;
    d.hdr_got = 0;
    d.in_block = false;
    ResetInflater(d, true);
    if (d.from_client && payload.size() >= kHttp2Preface.size() && StartsWithHttp2Preface(payload)) {
      d.state = Dir::kPreface;
      d.preface_got = 0;
    }
  }
  d.elided = framed;
  Consume(d, payload.data(), payload.size());
  if (!framed && bytes > payload.size()) Skip(d, bytes - payload.size());
}

void Http2Connection::Consume(Dir& d, const char* data, size_t len) {
  const auto* p = reinterpret_cast<const uint8_t*>(data);
  while (len > 0 && active_) {
    switch (d.state) {
      case Dir::kLost:
        CountUnparsed(len, true);
        return;
      case Dir::kPreface: {
        const size_t n = std::min(len, kHttp2Preface.size() - d.preface_got);
        if (std::memcmp(p, kHttp2Preface.data() + d.preface_got, n) != 0) {
          LoseFraming(d, len);
          return;
        }
        d.preface_got += n;
        p += n;
        len -= n;
        if (d.preface_got == kHttp2Preface.size()) d.state = Dir::kHeader;
        break;
      }
      case Dir::kHeader: {
        if (d.hdr_got == 0) {
          d.hdr_ts = cur_exit_;
          d.hdr_queued = cur_queued_;
        }
        const size_t n = std::min(len, sizeof(d.hdr) - d.hdr_got);
        std::memcpy(d.hdr + d.hdr_got, p, n);
        d.hdr_got += n;
        p += n;
        len -= n;
        if (d.hdr_got == sizeof(d.hdr)) FrameStart(d);
        break;
      }
      case Dir::kPayload: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(len, d.len - d.got));
        if (d.buffer) d.payload.append(reinterpret_cast<const char*>(p), n);
        d.got += static_cast<uint32_t>(n);
        p += n;
        len -= n;
        if (d.got == d.len) FrameEnd(d);
        break;
      }
    }
  }
}

void Http2Connection::Skip(Dir& d, uint64_t gap) {
  while (gap > 0 && active_) {
    if (d.state == Dir::kPayload) {
      const uint64_t n = std::min<uint64_t>(gap, d.len - d.got);
      if (d.buffer) d.damaged = true;
      d.got += static_cast<uint32_t>(n);
      gap -= n;
      counters_->gap_bytes_skipped += n;
      http_->gap_bytes_skipped += n;
      if (d.got == d.len) FrameEnd(d);
      continue;
    }
    if (d.state == Dir::kLost) {
      CountUnparsed(gap, true);
      return;
    }
    // Frame headers (or the preface) were not captured: the frame boundaries are lost.
    LoseFraming(d, gap);
    return;
  }
}

void Http2Connection::OnRecordsLost() {
  if (!active_) return;
  for (Dir* d : {&in_, &out_}) {
    if (d->state != Dir::kLost) LoseFraming(*d, 0);
  }
}

void Http2Connection::LoseFraming(Dir& d, uint64_t lost_bytes) {
  ++counters_->framing_losses;
  ++http_->stream_losses;
  if (d.in_block) {
    // The rest of this header block is gone: account for the stream with what is known.
    d.block_damaged = true;
    HeaderBlockDone(d);
  }
  d.state = Dir::kLost;
  d.hdr_got = 0;
  d.in_block = false;
  d.payload.clear();
  CountUnparsed(lost_bytes, true);
}

void Http2Connection::FrameStart(Dir& d) {
  d.len = Be24(d.hdr);
  d.type = d.hdr[3];
  d.flags = d.hdr[4];
  d.sid = Be32(d.hdr + 5) & 0x7fffffffu;
  d.hdr_got = 0;
  d.got = 0;
  d.damaged = false;
  d.payload.clear();
  if (!FrameHeaderValid(d.len, d.type, d.flags, d.sid) ||
      (d.in_block && (d.type != kContinuation || d.sid != d.block_sid)) ||
      (!d.in_block && d.type == kContinuation)) {
    LoseFraming(d, 9);
    return;
  }
  d.frame_ts = d.hdr_ts;
  d.frame_queued = d.hdr_queued;
  switch (d.type) {
    case kHeaders: case kContinuation: case kPushPromise: case kRstStream: case kGoaway:
      d.buffer = d.len <= options_.max_header_block;
      if (!d.buffer) d.damaged = true;
      break;
    default:
      d.buffer = false;
  }
  if (d.type == kData) Account(d, d.sid, 9 + uint64_t{d.len});
  d.state = Dir::kPayload;
  if (d.type == kData && d.elided) {
    // The kernel left the payload out, wherever it falls: the frame is complete.
    d.got = d.len;
    counters_->data_bytes_not_copied += d.len;
  }
  if (d.got == d.len) FrameEnd(d);
}

void Http2Connection::Account(Dir& d, uint32_t sid, uint64_t bytes) {
  Stream* s = Find(sid);
  if (s == nullptr) return;
  (d.from_client ? s->req_bytes : s->resp_bytes) += bytes;
}

void Http2Connection::FrameEnd(Dir& d) {
  d.state = Dir::kHeader;
  const auto* p = reinterpret_cast<const uint8_t*>(d.payload.data());
  const size_t n = d.payload.size();
  switch (d.type) {
    case kData:
      if (d.flags & kFlagEndStream) {
        if (Stream* s = Find(d.sid)) EndStream(d, *s);
      }
      break;
    case kHeaders:
    case kPushPromise: {
      size_t skip = 0, pad = 0;
      if (!d.damaged) {
        if (d.flags & kFlagPadded) {
          pad = n > 0 ? p[0] : 0;
          skip = 1;
        }
        if (d.type == kHeaders && (d.flags & kFlagPriority)) skip += 5;
        if (d.type == kPushPromise) skip += 4;
        if (skip + pad > n) d.damaged = true;
      }
      d.in_block = true;
      d.block_damaged = d.damaged;
      d.block_push = d.type == kPushPromise;
      d.block_end_stream = d.type == kHeaders && (d.flags & kFlagEndStream);
      d.block_sid = d.sid;
      d.block_ts = d.frame_ts;
      d.block_queued = d.frame_queued;
      d.block_wire = 9 + uint64_t{d.len};
      d.block.clear();
      if (!d.damaged) d.block.assign(d.payload, skip, n - skip - pad);
      if (d.flags & kFlagEndHeaders) HeaderBlockDone(d);
      break;
    }
    case kContinuation:
      d.block_wire += 9 + uint64_t{d.len};
      if (d.damaged || d.block.size() + n > options_.max_header_block) d.block_damaged = true;
      if (!d.block_damaged) d.block.append(d.payload);
      if (d.flags & kFlagEndHeaders) HeaderBlockDone(d);
      break;
    case kRstStream:
      ++counters_->rst_streams;
      if (Stream* s = Find(d.sid)) {
        (d.from_client ? s->req_bytes : s->resp_bytes) += 13;
        Emit(*s, /*incomplete=*/true);
        Remove(d.sid);
      }
      break;
    case kGoaway:
      ++counters_->goaways;
      if (!d.damaged && n >= 4 && !d.from_client) {
        // Streams the server will not process (above its last stream id) end here.
        const uint32_t last = Be32(p) & 0x7fffffffu;
        for (size_t i = 0; i < streams_.size();) {
          if (streams_[i].id > last) {
            ++counters_->refused_streams;
            Emit(streams_[i], /*incomplete=*/true);
            streams_.erase(streams_.begin() + static_cast<ptrdiff_t>(i));
          } else {
            ++i;
          }
        }
      }
      break;
    default:
      break;
  }
  d.payload.clear();
}

Http2Connection::Stream* Http2Connection::Find(uint32_t id) {
  for (Stream& s : streams_) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

Http2Connection::Stream& Http2Connection::Open(uint32_t id) {
  if (streams_.size() >= options_.max_streams) {
    ++counters_->stream_overflow;
    Emit(streams_.front(), /*incomplete=*/true);
    streams_.erase(streams_.begin());
  }
  streams_.emplace_back();
  Stream& s = streams_.back();
  s.id = id;
  return s;
}

void Http2Connection::Remove(uint32_t id) {
  for (size_t i = 0; i < streams_.size(); ++i) {
    if (streams_[i].id == id) {
      streams_.erase(streams_.begin() + static_cast<ptrdiff_t>(i));
      return;
    }
  }
}

void Http2Connection::EndStream(Dir& d, Stream& s) {
  if (d.from_client) {
    s.req_done = true;
    return;
  }
  if (!s.resp_headers) {
    // END_STREAM without a (decodable) final response head.
    s.status_unknown = true;
    ++counters_->unknown_status;
  }
  const uint32_t id = s.id;
  Emit(s, /*incomplete=*/false);
  Remove(id);
}

void Http2Connection::HeaderBlockDone(Dir& d) {
  d.in_block = false;
  ++blocks_;
  Fields f;
  bool decoded = false;
  if (d.block_damaged) {
    // The block's bytes were not all captured: whatever it added to the table is unknown.
    ++counters_->hpack_resets;
    ResetInflater(d, true);
  } else if (Inflate(d, d.block, &f)) {
    decoded = true;
  } else {
    ++counters_->hpack_errors;
    ++counters_->hpack_resets;
    ResetInflater(d, true);
    f = Fields{};
  }
  d.block.clear();
  if (d.block_push) return;  // a promised request: decoded to keep the table, not a transaction

  if (role_guessed_ && decoded && (f.has_method || f.has_status)) {
    // Caught mid-connection with no role from the kernel: the first decoded head says who is
    // the client.
    role_guessed_ = false;
    const bool request = f.has_method;
    if (request != d.from_client) {
      role_ = role_ == RQ_ROLE_SERVER ? RQ_ROLE_CLIENT : RQ_ROLE_SERVER;
      in_.from_client = !in_.from_client;
      out_.from_client = !out_.from_client;
      if (role_ == RQ_ROLE_CLIENT && !options_.parse_client) return;
    }
  }

  Stream* s = Find(d.block_sid);
  if (d.from_client) {
    if (s != nullptr && s->requested) {
      // Request trailers.
      s->req_bytes += d.block_wire;
      if (d.block_end_stream) s->req_done = true;
      return;
    }
    if (s == nullptr) s = &Open(d.block_sid);
    s->requested = true;
    s->start_ns = d.block_ts;
    s->queued_ns = d.block_queued;
    s->method = f.has_method ? f.method : std::string(kUnknown);
    s->target = f.has_path ? f.path.substr(0, options_.max_url) : std::string(kUnknown);
    s->headers_unknown = !f.has_method || !f.has_path;
    if (!f.has_path) ++counters_->unknown_paths;
    s->grpc = f.content_type.rfind("application/grpc", 0) == 0;
    s->req_bytes += d.block_wire;
    if (d.block_end_stream) s->req_done = true;
    return;
  }
  if (s == nullptr) {
    // A response on a stream whose request was sent before attach (or lost).
    ++http_->orphan_responses;
    return;
  }
  s->resp_bytes += d.block_wire;
  if (f.has_status && f.status >= 100 && f.status < 200) {
    ++http_->interim_responses;
    return;
  }
  if (!s->resp_headers) {
    s->resp_headers = true;
    if (f.has_status) {
      s->status = f.status;
    } else {
      s->status_unknown = true;
      ++counters_->unknown_status;
    }
  }
  if (f.grpc_status >= 0) s->grpc_status = f.grpc_status;
  // The response says gRPC too (the request's content-type may not have been decodable).
  if (f.content_type.rfind("application/grpc", 0) == 0) s->grpc = true;
  if (d.block_end_stream) {
    const uint32_t id = s->id;
    Emit(*s, /*incomplete=*/false);
    Remove(id);
  }
}

bool Http2Connection::Inflate(Dir& d, std::string_view block, Fields* f) {
  if (d.inflater == nullptr) return false;
  auto take = [&](const nghttp2_nv& nv) {
    const std::string_view name(reinterpret_cast<const char*>(nv.name), nv.namelen);
    const std::string_view value(reinterpret_cast<const char*>(nv.value), nv.valuelen);
    if (name.empty()) return;
    if (name[0] == ':') {
      // A method or path no server accepts is not decoded: "(unknown)", as when HPACK failed.
      if (name == ":method" && !IsMethodToken(value)) {
        ++counters_->undecoded_fields;
      } else if (name == ":method") {
        f->method.assign(value);
        f->has_method = true;
      } else if (name == ":path" && !IsPath(value)) {
        ++counters_->undecoded_fields;
      } else if (name == ":path") {
        f->path.assign(value.substr(0, options_.max_url));
        f->has_path = true;
      } else if (name == ":status") {
        f->status = ParseInt(value);
        f->has_status = f->status >= 0;
      }
    } else if (name == kPlaceholderName) {
      ++counters_->undecoded_fields;
    } else if (IEquals(name, "content-type")) {
      f->content_type.assign(value);
    } else if (IEquals(name, "grpc-status")) {
      f->grpc_status = ParseInt(value);
    }
  };
  // Feeds `n` bytes; in_final ends the block.
  auto feed = [&](const uint8_t* p, size_t n, bool final) {
    for (;;) {
      nghttp2_nv nv;
      int flags = 0;
      const ssize_t rv = nghttp2_hd_inflate_hd2(d.inflater, &nv, &flags, p, n, final ? 1 : 0);
      if (rv < 0) return false;
      p += rv;
      n -= static_cast<size_t>(rv);
      if (flags & NGHTTP2_HD_INFLATE_EMIT) take(nv);
      if (flags & NGHTTP2_HD_INFLATE_FINAL) {
        nghttp2_hd_inflate_end_headers(d.inflater);
        return true;
      }
      if (!(flags & NGHTTP2_HD_INFLATE_EMIT) && n == 0) return true;
    }
  };
  const auto* p = reinterpret_cast<const uint8_t*>(block.data());
  const uint8_t* end = p + block.size();
  if (!d.unsynced) {
    // Fields that do not enter the table (literal without indexing, never indexed) and that no
    // transaction reads are not decoded: a 9 KB cookie costs nothing then. Everything else is
    // fed as it is, in runs. A representation that does not parse goes to nghttp2 as it is.
    const uint8_t* run = p;
    while (p < end) {
      const uint8_t* start = p;
      const uint8_t b = *p;
      uint64_t index = 0;
      if ((b & 0x80) || (b & 0xe0) == 0x20) {  // indexed field, table size update
        if (!HpackInt(p, end, (b & 0x80) ? 7 : 5, &index)) break;
        continue;
      }
      const bool incremental = (b & 0xc0) == 0x40;
      if (!HpackInt(p, end, incremental ? 6 : 4, &index)) break;
      const uint8_t* name = p;
      if (index == 0 && !HpackString(p, end)) break;
      const uint8_t* name_end = p;
      if (!HpackString(p, end)) break;
      if (incremental) continue;
      bool needed = true;
      if (index != 0) {
        // A dynamic entry may have been added earlier in this block: the table must be current.
        if (index > kStaticEntries && start > run) {
          if (!feed(run, static_cast<size_t>(start - run), false)) return false;
          run = start;
        }
        const nghttp2_nv* nv = nghttp2_hd_inflate_get_table_entry(d.inflater, index);
        needed = nv == nullptr ||
                 NeededNames::Decoded(std::string_view(reinterpret_cast<const char*>(nv->name), nv->namelen));
      } else {
        const uint8_t* q = name;
        uint64_t n = 0;
        const bool huffman = *q & 0x80;
        if (HpackInt(q, name_end, 7, &n) && n == static_cast<uint64_t>(name_end - q))
          needed = Needed().Literal(std::string_view(reinterpret_cast<const char*>(q), n), huffman);
      }
      if (needed) continue;
      if (start > run && !feed(run, static_cast<size_t>(start - run), false)) return false;
      run = p;
      ++counters_->fields_not_decoded;
    }
    return feed(run, static_cast<size_t>(end - run), true);
  }

  // Unsynced: one representation at a time, so that the count of known entries is current for
  // each; references to entries added before the table was lost are dropped (RFC 7541 §6).
  std::string rewritten;
  while (p < end) {
    const uint8_t* start = p;
    const uint8_t b = *p;
    const size_t known = nghttp2_hd_inflate_get_num_table_entries(d.inflater);
    uint64_t index = 0;
    rewritten.clear();
    if (b & 0x80) {  // indexed field
      if (!HpackInt(p, end, 7, &index)) return false;
      if (index > known) {
        ++counters_->undecoded_fields;
        continue;
      }
    } else if ((b & 0xe0) == 0x20) {  // dynamic table size update
      if (!HpackInt(p, end, 5, &index)) return false;
    } else {
      const bool incremental = (b & 0xc0) == 0x40;
      const uint8_t* name_start = p;
      if (!HpackInt(p, end, incremental ? 6 : 4, &index)) return false;
      const uint8_t* name_end = p;
      if (index == 0 && !HpackString(p, end)) return false;
      (void)name_start;
      (void)name_end;
      const uint8_t* value_start = p;
      if (!HpackString(p, end)) return false;
      if (index > known) {
        ++counters_->undecoded_fields;
        if (!incremental) continue;  // a value of unknown meaning, not added to the table
        // The peer's table gains an entry here: add one with a placeholder name so that later
        // indices still line up.
        rewritten.push_back(0x40);
        rewritten.push_back(static_cast<char>(kPlaceholderName.size()));
        rewritten.append(kPlaceholderName);
        rewritten.append(reinterpret_cast<const char*>(value_start),
                         static_cast<size_t>(p - value_start));
        if (!feed(reinterpret_cast<const uint8_t*>(rewritten.data()), rewritten.size(), false))
          return false;
        continue;
      }
    }
    if (!feed(start, static_cast<size_t>(p - start), false)) return false;
  }
  if (!feed(p, 0, true)) return false;
  // Once our table (a prefix of the peer's, newest first, never larger in bytes) is full, the
  // entries from before are certainly evicted.
  const size_t size = nghttp2_hd_inflate_get_dynamic_table_size(d.inflater);
  const size_t max = nghttp2_hd_inflate_get_max_dynamic_table_size(d.inflater);
  if (size + 32 > max) d.unsynced = false;
  return true;
}

void Http2Connection::Emit(Stream& s, bool incomplete) {
  tx_.pid = pid_;
  tx_.fd = fd_;
  tx_.connection_id = connection_id_;
  tx_.ep = ep_;
  tx_.role = static_cast<uint8_t>(role_);
  tx_.tls = tls_;
  tx_.request_start_ns = s.start_ns;
  tx_.queue_ns = s.queued_ns && s.queued_ns < s.start_ns ? s.start_ns - s.queued_ns : 0;
  tx_.response_end_ns = incomplete ? 0 : cur_exit_;
  tx_.method = s.method;
  if (s.target == kUnknown) {
    tx_.path.assign(kUnknown);
    tx_.query.clear();
  } else {
    SplitTarget(s.target, &tx_.path, &tx_.query);
  }
  tx_.status = incomplete ? 0 : s.status;
  tx_.incomplete = incomplete;
  tx_.truncated = !incomplete && s.status_unknown;
  tx_.request_bytes = s.req_bytes;
  tx_.response_bytes = s.resp_bytes;
  tx_.protocol = HttpProtocol::kHttp2;
  tx_.stream_id = s.id;
  tx_.headers_unknown = s.headers_unknown;
  tx_.is_grpc = s.grpc;
  tx_.grpc_service.clear();
  tx_.grpc_method.clear();
  tx_.grpc_status = s.grpc ? s.grpc_status : -1;
  if (s.grpc && tx_.path.size() > 1 && tx_.path[0] == '/') {
    const size_t slash = tx_.path.find('/', 1);
    if (slash != std::string::npos) {
      tx_.grpc_service.assign(tx_.path, 1, slash - 1);
      tx_.grpc_method.assign(tx_.path, slash + 1);
    }
  } else if (s.grpc) {
    tx_.grpc_service.assign(kUnknown);
    tx_.grpc_method.assign(kUnknown);
  }
  ++http_->transactions;
  if (incomplete) ++http_->incomplete;
  if (tx_.truncated) ++http_->truncated;
  ++counters_->streams;
  if (s.grpc) ++counters_->grpc_calls;
  sink_->OnTransaction(tx_);
}

void Http2Connection::Finish(uint64_t ts_ns) {
  (void)ts_ns;
  if (!active_) return;
  for (Stream& s : streams_) {
    if (s.requested) Emit(s, /*incomplete=*/true);
  }
  streams_.clear();
  active_ = false;
}

}  // namespace reqmon
