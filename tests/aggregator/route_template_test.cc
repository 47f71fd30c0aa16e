// SPDX-License-Identifier: MIT
#include "reqmon/aggregator/route_template.h"

#include <gtest/gtest.h>

namespace reqmon {
namespace {

TEST(RouteTemplateTest, Cases) {
  struct Case {
    const char* in;
    const char* out;
  } cases[] = {
      {"", "/"},
      {"/", "/"},
      {"/metrics", "/metrics"},
      {"/users/42", "/users/{id}"},
      {"/users/42/", "/users/{id}/"},
      {"/users/42/orders/7", "/users/{id}/orders/{id}"},
      {"/items/550e8400-e29b-41d4-a716-446655440000", "/items/{id}"},
      {"/items/550E8400-E29B-41D4-A716-446655440000/x", "/items/{id}/x"},
      {"/blob/0123456789abcdef", "/blob/{id}"},          // 16 hex
      {"/blob/0123456789abcde", "/blob/0123456789abcde"},  // 15 hex: kept
      {"/blob/deadbeefdeadbeefdeadbeefdeadbeefdeadbeef", "/blob/{id}"},
      {"/v1/users", "/v1/users"},
      {"/a//b", "/a//b"},
      {"/cafe", "/cafe"},
      {"/550e8400-e29b-41d4-a716-44665544000g", "/550e8400-e29b-41d4-a716-44665544000g"},
      {"/files/report.pdf", "/files/report.pdf"},
      {"/123", "/{id}"},
  };
  for (const auto& c : cases) EXPECT_EQ(TemplatePath(c.in), c.out) << c.in;
}

TEST(RouteTemplateTest, IdSegments) {
  EXPECT_TRUE(IsIdSegment("0"));
  EXPECT_FALSE(IsIdSegment(""));
  EXPECT_FALSE(IsIdSegment("12a"));
  EXPECT_TRUE(IsIdSegment("ABCDEF0123456789"));
}

}  // namespace
}  // namespace reqmon
