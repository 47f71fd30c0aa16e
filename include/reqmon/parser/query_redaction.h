// SPDX-License-Identifier: MIT
#pragma once
/// Query strings carry secrets (?token=, ?api_key=, ?password=...). Before a transaction reaches
/// anything that stores or shows it (the aggregator's /requests, the request log), the values of
/// parameters whose names look secret are replaced by REDACTED; --show-query keeps every value,
/// --redact-query drops them all. Request headers (Authorization, Cookie) are never kept by the
/// parser in the first place.

#include <string>
#include <string_view>

#include "reqmon/parser/transaction.h"

namespace reqmon {

enum class QueryMode {
  kRedactSecrets,  ///< default: values of secret-looking parameters become REDACTED
  kShow,           ///< --show-query: every value as sent
  kDropValues,     ///< --redact-query: names only ("page&token")
};

/// Whether a query parameter's name looks like it carries a secret (token, key, password,
/// secret, session, auth, signature, credential...; case-insensitive, as part of the name).
bool SecretParameterName(std::string_view name);

/// The query with values redacted by `mode` (the query itself when nothing changes).
std::string RedactQuery(std::string_view query, QueryMode mode);

/// A TransactionSink that redacts each transaction's query, then hands it on.
class QueryRedactor : public TransactionSink {
 public:
  /// `next` must outlive this object.
  QueryRedactor(TransactionSink& next, QueryMode mode) : next_(next), mode_(mode) {}
  void OnTransaction(const HttpTransaction& tx) override;
  void OnUnparsed(const UnparsedBytes& u) override { next_.OnUnparsed(u); }
  void BeginBatch() override { next_.BeginBatch(); }
  void EndBatch() override { next_.EndBatch(); }

 private:
  TransactionSink& next_;
  QueryMode mode_;
  HttpTransaction copy_;  ///< reused: redacted transactions allocate nothing once warm
};

}  // namespace reqmon
