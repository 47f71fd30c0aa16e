// SPDX-License-Identifier: MIT
// Query redaction: values of secret-looking parameters are replaced by REDACTED before anything
// stores or shows a transaction; --show-query keeps them, --redact-query drops every value.
#include "reqmon/parser/query_redaction.h"

#include <gtest/gtest.h>

#include <vector>

namespace reqmon {
namespace {

TEST(QueryRedactionTest, SecretLookingNames) {
  for (const char* n : {"token", "access_token", "api_key", "apikey", "APIKey", "key", "password",
                        "passwd", "pass", "pwd", "secret", "client_secret", "session", "sessionid",
                        "PHPSESSID", "auth", "x-auth", "signature", "sig", "X-Amz-Signature",
                        "credential", "jwt", "otp", "code", "sid", "private_key"})
    EXPECT_TRUE(SecretParameterName(n)) << n;
  for (const char* n : {"page", "q", "id", "sort", "monkey", "design", "zipcode", "passage_id",
                        "lang", "limit", "keyboard_layout_name_x"})
    EXPECT_FALSE(SecretParameterName(n)) << n;
}

TEST(QueryRedactionTest, RedactsOnlySecretValuesByDefault) {
  EXPECT_EQ(RedactQuery("page=2&token=abc123&q=shoes", QueryMode::kRedactSecrets),
            "page=2&token=REDACTED&q=shoes");
  EXPECT_EQ(RedactQuery("api_key=k&password=p", QueryMode::kRedactSecrets),
            "api_key=REDACTED&password=REDACTED");
  EXPECT_EQ(RedactQuery("flag&x=1&&y=", QueryMode::kRedactSecrets), "flag&x=1&&y=");
  EXPECT_EQ(RedactQuery("token=", QueryMode::kRedactSecrets), "token=REDACTED");
  EXPECT_EQ(RedactQuery("", QueryMode::kRedactSecrets), "");
  EXPECT_EQ(RedactQuery("a=b=c&secret=x=y", QueryMode::kRedactSecrets), "a=b=c&secret=REDACTED");
}

TEST(QueryRedactionTest, ShowAndDropModes) {
  EXPECT_EQ(RedactQuery("page=2&token=abc", QueryMode::kShow), "page=2&token=abc");
  EXPECT_EQ(RedactQuery("page=2&token=abc&flag", QueryMode::kDropValues), "page&token&flag");
}

// The sink adapter hands on redacted transactions and leaves the others untouched.
TEST(QueryRedactionTest, RedactorSinkRedactsWhatItHandsOn) {
  struct Collect : TransactionSink {
    std::vector<HttpTransaction> got;
    void OnTransaction(const HttpTransaction& tx) override { got.push_back(tx); }
  } out;
  QueryRedactor r(out, QueryMode::kRedactSecrets);
  HttpTransaction tx;
  tx.path = "/login";
  tx.query = "user=ann&session=s3cr3t";
  r.OnTransaction(tx);
  tx.query = "page=1";
  r.OnTransaction(tx);
  ASSERT_EQ(out.got.size(), 2u);
  EXPECT_EQ(out.got[0].query, "user=ann&session=REDACTED");
  EXPECT_EQ(out.got[0].path, "/login");
  EXPECT_EQ(out.got[1].query, "page=1");
}

}  // namespace
}  // namespace reqmon
