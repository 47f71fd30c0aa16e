// SPDX-License-Identifier: MIT
#pragma once
/// Turning raw request paths into bounded route templates.

#include <string>
#include <string_view>

namespace reqmon {

/// True when a path segment is an identifier: all decimal digits, a UUID (8-4-4-4-12 hex), or
/// at least 16 hex digits.
bool IsIdSegment(std::string_view seg);

/// The route template of a path: every identifier segment becomes "{id}", e.g.
/// "/users/42/orders/550e8400-e29b-41d4-a716-446655440000" -> "/users/{id}/orders/{id}".
/// An empty path gives "/". Other characters, empty segments and a trailing slash are kept.
std::string TemplatePath(std::string_view path);

}  // namespace reqmon
