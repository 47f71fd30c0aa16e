// SPDX-License-Identifier: MIT
#include "reqmon/parser/query_redaction.h"

#include <array>
#include <cctype>

namespace reqmon {
namespace {

// Words that mark a secret wherever they appear in a name ("access_token", "xsessionid").
constexpr std::array<std::string_view, 10> kAnywhere = {
    "token", "secret", "session", "sessid", "passw", "signature", "credential", "private",
    "cookie", "apikey"};
// Short words that do only as a whole part of the name split at non-alphanumerics ("key",
// "access_key", "x-auth", "sig"), not inside another word ("monkey", "design", "zipcode").
constexpr std::array<std::string_view, 9> kWholePart = {"key", "pass", "pwd", "auth", "sig",
                                                       "jwt", "otp", "code", "sid"};

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

}  // namespace

bool SecretParameterName(std::string_view name) {
  std::string lower;
  lower.reserve(name.size());
  for (char c : name) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  for (std::string_view w : kAnywhere)
    if (lower.find(w) != std::string::npos) return true;
  size_t i = 0;
  while (i < lower.size()) {
    while (i < lower.size() && !IsAlnum(lower[i])) ++i;
    size_t j = i;
    while (j < lower.size() && IsAlnum(lower[j])) ++j;
    std::string_view part(lower.data() + i, j - i);
    for (std::string_view w : kWholePart)
      if (part == w) return true;
    i = j;
  }
  return false;
}

std::string RedactQuery(std::string_view query, QueryMode mode) {
  if (mode == QueryMode::kShow || query.empty()) return std::string(query);
  std::string out;
  out.reserve(query.size());
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view part = query.substr(pos, amp - pos);
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      out.append(part);
    } else {
      std::string_view name = part.substr(0, eq);
      out.append(name);
      if (mode == QueryMode::kRedactSecrets) {
        out.push_back('=');
        if (SecretParameterName(name)) out.append("REDACTED");
        else out.append(part.substr(eq + 1));
      }
    }
    if (amp == query.size()) break;
    out.push_back('&');
    pos = amp + 1;
  }
  return out;
}

void QueryRedactor::OnTransaction(const HttpTransaction& tx) {
  if (mode_ == QueryMode::kShow || tx.query.empty()) return next_.OnTransaction(tx);
  std::string q = RedactQuery(tx.query, mode_);
  if (q == tx.query) return next_.OnTransaction(tx);
  copy_ = tx;
  copy_.query = std::move(q);
  next_.OnTransaction(copy_);
}

}  // namespace reqmon
