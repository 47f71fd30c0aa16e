// SPDX-License-Identifier: MIT
#include "reqmon/api/query.h"

#include <gtest/gtest.h>

namespace reqmon {
namespace {

TEST(ParseLimit, PositiveIntegersUpToTheCapacity) {
  EXPECT_EQ(ParseLimit("1", 500), 1u);
  EXPECT_EQ(ParseLimit("25", 500), 25u);
  EXPECT_EQ(ParseLimit("007", 500), 7u);
  EXPECT_EQ(ParseLimit("1000", 500), 500u);
  EXPECT_EQ(ParseLimit("999999999", 500), 500u);
}

TEST(ParseLimit, AnythingElseIsInvalid) {
  for (const char* bad : {"", "0", "000", "-1", "+1", " 1", "1 ", "1.5", "abc", "1e3", "0x10",
                          "1234567890", "99999999999999999999"}) {
    EXPECT_EQ(ParseLimit(bad, 500), std::nullopt) << bad;
  }
  EXPECT_EQ(ParseLimit(std::string_view("1\0", 2), 500), std::nullopt);
}

}  // namespace
}  // namespace reqmon
