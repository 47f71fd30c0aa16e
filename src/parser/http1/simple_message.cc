// SPDX-License-Identifier: MIT
#include "reqmon/parser/http1/simple_message.h"

#include <llhttp.h>

#include <array>
#include <cstring>

namespace reqmon {
namespace {

enum : uint8_t { kToken = 1, kValue = 2, kTarget = 4 };

constexpr std::array<uint8_t, 256> MakeClasses() {
  std::array<uint8_t, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] |= kToken | kTarget;
  for (int c = 'a'; c <= 'z'; ++c) t[c] |= kToken | kTarget;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] |= kToken | kTarget;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<uint8_t>(c)] |= kToken;
  // URI characters that llhttp's strict URL states take in a path and a query ('#' aside).
  for (char c : std::string_view("-._~:/?[]@!$&'()*+,;=%")) t[static_cast<uint8_t>(c)] |= kTarget;
  for (int c = 0x20; c <= 0x7e; ++c) t[c] |= kValue;
  t['\t'] |= kValue;
  return t;
}
constexpr std::array<uint8_t, 256> kClass = MakeClasses();

bool Is(char c, uint8_t cls) { return (kClass[static_cast<uint8_t>(c)] & cls) != 0; }

struct Method {
  std::string_view token;  // with its space
  uint8_t id;
};
constexpr Method kMethods[] = {
    {"GET ", HTTP_GET},         {"POST ", HTTP_POST},   {"HEAD ", HTTP_HEAD},
    {"PUT ", HTTP_PUT},         {"DELETE ", HTTP_DELETE}, {"PATCH ", HTTP_PATCH},
    {"OPTIONS ", HTTP_OPTIONS}, {"TRACE ", HTTP_TRACE},
};

// "HTTP/1.0" or "HTTP/1.1" at p (8 bytes available): the minor version, or -1.
int Version(const char* p) {
  if (std::memcmp(p, "HTTP/1.", 7) != 0) return -1;
  if (p[7] == '0') return 0;
  if (p[7] == '1') return 1;
  return -1;
}

bool EqualsLower(std::string_view name, std::string_view lower) {
  if (name.size() != lower.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    if (c != lower[i]) return false;
  }
  return true;
}

// The request line at the start of d; *pos is left after its CRLF.
bool RequestLine(std::string_view d, size_t* pos, SimpleMessage* out) {
  const Method* m = nullptr;
  for (const Method& k : kMethods) {
    if (d.size() > k.token.size() && std::memcmp(d.data(), k.token.data(), k.token.size()) == 0) {
      m = &k;
      break;
    }
  }
  if (m == nullptr) return false;
  size_t i = m->token.size();
  const size_t target_start = i;
  if (i >= d.size() || d[i] != '/') return false;
  while (i < d.size() && Is(d[i], kTarget)) ++i;
  // " HTTP/1.x\r\n"
  if (i + 11 > d.size() || d[i] != ' ') return false;
  const int minor = Version(d.data() + i + 1);
  if (minor < 0 || d[i + 9] != '\r' || d[i + 10] != '\n') return false;
  out->method = m->id;
  out->minor = static_cast<uint8_t>(minor);
  out->target = d.substr(target_start, i - target_start);
  *pos = i + 11;
  return true;
}

// The status line at the start of d; *pos is left after its CRLF.
bool StatusLine(std::string_view d, size_t* pos, SimpleMessage* out) {
  // "HTTP/1.x 200 "
  if (d.size() < 13) return false;
  const int minor = Version(d.data());
  if (minor < 0 || d[8] != ' ' || d[12] != ' ') return false;
  uint16_t status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (d[i] < '0' || d[i] > '9') return false;
    status = static_cast<uint16_t>(status * 10 + (d[i] - '0'));
  }
  if (status < 200 || status > 599 || status == 204 || status == 304) return false;
  size_t i = 13;
  while (i < d.size() && d[i] != '\r') {
    if (!Is(d[i], kValue)) return false;
    ++i;
  }
  if (i + 1 >= d.size() || d[i + 1] != '\n') return false;
  out->minor = static_cast<uint8_t>(minor);
  out->status = status;
  *pos = i + 2;
  return true;
}

}  // namespace

bool ScanSimpleMessage(std::string_view d, bool request, SimpleMessage* out) {
  *out = SimpleMessage{};
  size_t i = 0;
  if (!(request ? RequestLine(d, &i, out) : StatusLine(d, &i, out))) return false;
  bool have_length = false;
  for (;;) {
    if (i + 2 > d.size()) return false;
    if (d[i] == '\r') {
      if (d[i + 1] != '\n') return false;
      i += 2;
      break;
    }
    const size_t name_start = i;
    while (i < d.size() && Is(d[i], kToken)) ++i;
    if (i == name_start || i >= d.size() || d[i] != ':') return false;
    const std::string_view name = d.substr(name_start, i - name_start);
    ++i;
    const size_t value_start = i;
    while (i < d.size() && d[i] != '\r') {
      if (!Is(d[i], kValue)) return false;
      ++i;
    }
    if (i + 1 >= d.size() || d[i + 1] != '\n') return false;
    const std::string_view value = d.substr(value_start, i - value_start);
    i += 2;
    // The names llhttp frames a message by (or switches protocols by).
    const char first = static_cast<char>(name[0] | 0x20);
    if (first == 'c' && EqualsLower(name, "content-length")) {
      if (have_length) return false;
      size_t k = 0;
      while (k < value.size() && (value[k] == ' ' || value[k] == '\t')) ++k;
      const size_t digits = value.size() - k;
      if (digits == 0 || digits > 15) return false;
      uint64_t n = 0;
      for (; k < value.size(); ++k) {
        if (value[k] < '0' || value[k] > '9') return false;
        n = n * 10 + static_cast<uint64_t>(value[k] - '0');
      }
      out->content_length = n;
      have_length = true;
    } else if ((first == 't' && EqualsLower(name, "transfer-encoding")) ||
               (first == 'u' && EqualsLower(name, "upgrade"))) {
      return false;
    }
  }
  if (!request && !have_length) return false;
  if (i > UINT32_MAX) return false;
  out->head_len = static_cast<uint32_t>(i);
  return true;
}

}  // namespace reqmon
