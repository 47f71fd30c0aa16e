// SPDX-License-Identifier: MIT
#pragma once
/// The common case of HTTP/1.x, read without llhttp: one whole message in one record, with a
/// plain head and a body framed by Content-Length (or none). HttpConnection tries it first at a
/// message boundary, where llhttp holds no state, and hands everything else to llhttp.
///
/// The scan accepts a strict subset of what llhttp accepts, and gives what llhttp would have
/// given for it (method, target, version, status, framing). Whatever is unusual is not accepted,
/// and llhttp then reads the record from its first byte:
///  - a request line other than `METHOD SP target SP HTTP/1.0|1.1 CRLF`, with METHOD one of GET,
///    HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE (not CONNECT) and a target that starts with
///    '/' and holds only URI characters (no '#', no control characters, nothing above 0x7e);
///  - a status line other than `HTTP/1.0|1.1 SP 3 digits SP reason CRLF` with a status of 200 to
///    599 other than 204 and 304 (1xx, 101, 204 and 304 frame their bodies differently);
///  - a header line other than `token ":" value CRLF`, a value with a control character (tab
///    aside) or a byte above 0x7e, or obs-fold;
///  - Transfer-Encoding, Upgrade, a second Content-Length, or one that is not 1 to 15 digits
///    after optional spaces;
///  - a response without Content-Length (its body would end with the connection);
///  - a bare LF anywhere in the head.

#include <cstdint>
#include <string_view>

namespace reqmon {

struct SimpleMessage {
  uint32_t head_len = 0;        ///< bytes up to and including the blank line
  uint64_t content_length = 0;  ///< 0 when the request gives none
  uint8_t method = 0;           ///< llhttp_method_t (requests)
  uint8_t minor = 1;            ///< HTTP/1.<minor>
  uint16_t status = 0;          ///< responses
  std::string_view target;      ///< requests: the request target, within the scanned bytes
};

/// Reads the head at the start of `data` (a request when `request`, else a response). True when
/// the whole head is in `data` and is of the kind above; `*out` then describes the message.
/// Does not look past the head.
bool ScanSimpleMessage(std::string_view data, bool request, SimpleMessage* out);

}  // namespace reqmon
