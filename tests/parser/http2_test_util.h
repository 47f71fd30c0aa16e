// SPDX-License-Identifier: MIT
#pragma once
// Building HTTP/2 bytes for tests: frames (RFC 9113 §4.1), header blocks from nghttp2's HPACK
// deflater (the same encoder curl, nghttp and h2load use), and hand-made HPACK representations
// (RFC 7541 §6) where a test needs a precise one (dynamic-table references).

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace reqmon::testing::h2 {

inline constexpr uint8_t DATA = 0, HEADERS = 1, PRIORITY = 2, RST_STREAM = 3, SETTINGS = 4,
                         PUSH_PROMISE = 5, PING = 6, GOAWAY = 7, WINDOW_UPDATE = 8,
                         CONTINUATION = 9;
inline constexpr uint8_t END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8,
                         PRIORITY_FLAG = 0x20;

inline std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

inline std::string Frame(uint8_t type, uint8_t flags, uint32_t sid, std::string_view payload) {
  std::string f;
  const uint32_t n = static_cast<uint32_t>(payload.size());
  f += static_cast<char>(n >> 16);
  f += static_cast<char>(n >> 8);
  f += static_cast<char>(n);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  f += Be32(sid);
  f += payload;
  return f;
}

inline const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The client preface and an empty SETTINGS.
inline std::string ClientStart() { return kPreface + Frame(SETTINGS, 0, 0, ""); }
/// A server's SETTINGS (max concurrent streams 100) and the ACK of the client's.
inline std::string ServerStart() {
  return Frame(SETTINGS, 0, 0, std::string("\x00\x03\x00\x00\x00\x64", 6)) +
         Frame(SETTINGS, ACK, 0, "");
}
inline std::string Rst(uint32_t sid, uint32_t code = 8) { return Frame(RST_STREAM, 0, sid, Be32(code)); }
inline std::string Data(uint32_t sid, std::string_view body, bool end) {
  return Frame(DATA, end ? END_STREAM : 0, sid, body);
}

using Headers = std::vector<std::pair<std::string, std::string>>;

/// One direction's HPACK encoder.
class Encoder {
 public:
  Encoder() { nghttp2_hd_deflate_new(&d_, 4096); }
  ~Encoder() { nghttp2_hd_deflate_del(d_); }
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  std::string Block(const Headers& hs) {
    std::vector<nghttp2_nv> nva;
    for (const auto& [n, v] : hs) {
      nghttp2_nv nv{};
      nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>(n.data()));
      nv.namelen = n.size();
      nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(v.data()));
      nv.valuelen = v.size();
      nv.flags = NGHTTP2_NV_FLAG_NONE;
      nva.push_back(nv);
    }
    std::string out(nghttp2_hd_deflate_bound(d_, nva.data(), nva.size()), '\0');
    const ssize_t n = nghttp2_hd_deflate_hd(d_, reinterpret_cast<uint8_t*>(out.data()), out.size(),
                                            nva.data(), nva.size());
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
  }
  /// A HEADERS frame (END_HEADERS, and END_STREAM when `end`).
  std::string Headers(uint32_t sid, const h2::Headers& hs, bool end) {
    return Frame(HEADERS, END_HEADERS | (end ? END_STREAM : 0), sid, Block(hs));
  }

 private:
  nghttp2_hd_deflater* d_ = nullptr;
};

inline h2::Headers Get(const std::string& path) {
  return {{":method", "GET"}, {":scheme", "http"}, {":authority", "127.0.0.1"}, {":path", path},
          {"user-agent", "test/1"}, {"accept", "*/*"}};
}
inline h2::Headers Status(int code) {
  return {{":status", std::to_string(code)}, {"server", "test"}, {"content-type", "text/plain"}};
}

// Hand-made HPACK representations (values shorter than 127 bytes, no Huffman).
inline std::string Indexed(uint32_t i) { return std::string(1, static_cast<char>(0x80 | i)); }
inline std::string Str(std::string_view v) { return static_cast<char>(v.size()) + std::string(v); }
/// Literal with incremental indexing, indexed name (index < 63).
inline std::string LitInc(uint32_t name_index, std::string_view v) {
  return static_cast<char>(0x40 | name_index) + Str(v);
}
/// Literal with incremental indexing, new name.
inline std::string LitIncNew(std::string_view name, std::string_view v) {
  return '\x40' + Str(name) + Str(v);
}
/// Literal without indexing, indexed name (index < 15).
inline std::string LitNoIdx(uint32_t name_index, std::string_view v) {
  return static_cast<char>(name_index) + Str(v);
}

/// What bpf/h2frames.bpf.h makes of one direction's records once it follows the frames: each
/// record's bytes with the DATA payloads left out (their headers kept), and whether the record
/// begins at a frame boundary (RQ_DATA_H2_START). A model of the kernel side, for feeding the
/// parser what the kernel sends.
class KernelFrames {
 public:
  /// `preface`: the direction starts with the client preface.
  explicit KernelFrames(bool preface) : mode_(preface ? kCopy : kHeader), left_(preface ? 24 : 0) {}

  std::string Take(std::string_view rec, bool* start) {
    *start = first_ || (mode_ == kHeader && have_ == 0);
    first_ = false;
    std::string out;
    size_t i = 0;
    while (i < rec.size()) {
      const size_t avail = rec.size() - i;
      if (mode_ == kHeader) {
        const size_t n = std::min<size_t>(avail, 9 - have_);
        out.append(rec.substr(i, n));
        hdr_.append(rec.substr(i, n));
        have_ += n;
        i += n;
        if (have_ < 9) continue;
        const auto* h = reinterpret_cast<const uint8_t*>(hdr_.data());
        left_ = (uint32_t{h[0]} << 16) | (uint32_t{h[1]} << 8) | h[2];
        mode_ = left_ == 0 ? kHeader : h[3] == DATA ? kSkip : kCopy;
        have_ = 0;
        hdr_.clear();
        continue;
      }
      const size_t n = std::min<size_t>(avail, left_);
      if (mode_ == kCopy) out.append(rec.substr(i, n));
      left_ -= static_cast<uint32_t>(n);
      i += n;
      if (left_ == 0) mode_ = kHeader;
    }
    return out;
  }

 private:
  enum Mode { kHeader, kCopy, kSkip } mode_;
  uint32_t left_;
  size_t have_ = 0;
  std::string hdr_;
  bool first_ = true;
};

}  // namespace reqmon::testing::h2
