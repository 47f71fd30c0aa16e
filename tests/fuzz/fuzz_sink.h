// SPDX-License-Identifier: MIT
#pragma once
/// A TransactionSink for the fuzz targets: reads every field of what it is given (so that
/// AddressSanitizer sees a dangling or short string) and checks what must hold for any input.

#include <cstdlib>
#include <cstdio>
#include <string>

#include "reqmon/parser/transaction.h"

namespace reqmon::fuzz {

class CheckingSink : public TransactionSink {
 public:
  void OnTransaction(const HttpTransaction& tx) override {
    ++transactions;
    for (const std::string* s : {&tx.method, &tx.path, &tx.query, &tx.grpc_service,
                                 &tx.grpc_method})
      for (char c : *s) checksum += static_cast<unsigned char>(c);
    checksum += tx.status + tx.request_bytes + tx.response_bytes + tx.response_ns();
    Check(!tx.method.empty(), "a transaction without a method");
    // What reaches /requests and monitor_logs.txt is one line: no control characters.
    for (const std::string* s : {&tx.method, &tx.path, &tx.query})
      for (unsigned char c : *s) Check(c >= 0x20 && c != 0x7f, "a control character in a target");
    for (unsigned char c : tx.method) Check(c > 0x20, "a space in a method");
    Check(!tx.incomplete || tx.status == 0, "an incomplete transaction with a status");
    Check(tx.role == RQ_ROLE_SERVER || tx.role == RQ_ROLE_CLIENT, "a transaction without a role");
  }
  void OnUnparsed(const UnparsedBytes& u) override { unparsed += u.bytes; }

  uint64_t transactions = 0;
  uint64_t unparsed = 0;
  uint64_t checksum = 0;

 private:
  static void Check(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "fuzz: %s\n", what);
    std::abort();
  }
};

}  // namespace reqmon::fuzz
