// SPDX-License-Identifier: MIT
// Seeded randomized test: a keep-alive conversation (sequential and pipelined exchanges of many
// shapes) is cut into records at random points, some records losing an uncaptured suffix inside
// Content-Length bodies or chunk data, and fed through DispatchRecord -> ConnectionTracker. Whatever the cuts,
// the same transactions must come out, with timestamps of the records that carried the first
// request byte and the last response byte.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "event_builder.h"

namespace reqmon::testing {
namespace {

struct Exchange {
  std::string request;
  std::string response;  // interim responses included
  std::string method, path, query;
  int status = 0;
  // Byte ranges [begin, end) of Content-Length bodies, relative to request/response.
  std::vector<std::pair<size_t, size_t>> req_bodies, resp_bodies;
};

std::string Body(std::mt19937& rng, size_t n) {
  std::string s(n, 'a');
  for (char& c : s) c = static_cast<char>('a' + rng() % 26);
  return s;
}

Exchange MakeExchange(std::mt19937& rng, int i) {
  Exchange e;
  e.path = "/r/" + std::to_string(i);
  if (rng() % 3 == 0) e.query = "k=" + std::to_string(rng() % 1000);
  const std::string target = e.path + (e.query.empty() ? "" : "?" + e.query);
  auto cl_response = [&](int status, size_t n) {
    std::string head = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " +
                       std::to_string(n) + "\r\nServer: t\r\n\r\n";
    if (n) e.resp_bodies.push_back({e.response.size() + head.size(),
                                    e.response.size() + head.size() + n});
    e.response += head + Body(rng, n);
    e.status = status;
  };
  switch (rng() % 8) {
    case 0:
    case 1: {  // GET, Content-Length response
      e.method = "GET";
      e.request = "GET " + target + " HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n";
      cl_response(200, rng() % 3000);
      break;
    }
    case 2: {  // POST with a body
      e.method = "POST";
      size_t n = 1 + rng() % 2000;
      std::string head = "POST " + target + " HTTP/1.1\r\nContent-Length: " + std::to_string(n) +
                         "\r\n\r\n";
      e.req_bodies.push_back({head.size(), head.size() + n});
      e.request = head + Body(rng, n);
      cl_response(201, rng() % 50);
      break;
    }
    case 3: {  // chunked response
      e.method = "GET";
      e.request = "GET " + target + " HTTP/1.1\r\n\r\n";
      e.response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
      int chunks = rng() % 4;
      for (int c = 0; c < chunks; ++c) {
        size_t n = 1 + rng() % 300;
        char hex[16];
        snprintf(hex, sizeof hex, "%zx", n);
        e.response += std::string(hex) + "\r\n";
        // Chunk data: an uncaptured suffix ending in it can be skipped exactly too.
        e.resp_bodies.push_back({e.response.size(), e.response.size() + n});
        e.response += Body(rng, n) + "\r\n";
      }
      e.response += "0\r\n\r\n";
      e.status = 200;
      break;
    }
    case 4: {  // HEAD
      e.method = "HEAD";
      e.request = "HEAD " + target + " HTTP/1.1\r\n\r\n";
      e.response = "HTTP/1.1 200 OK\r\nContent-Length: 4242\r\n\r\n";
      e.status = 200;
      break;
    }
    case 5: {  // 204 / 304
      e.method = rng() % 2 ? "DELETE" : "GET";
      e.request = e.method + " " + target + " HTTP/1.1\r\n\r\n";
      if (rng() % 2) {
        e.response = "HTTP/1.1 204 No Content\r\n\r\n";
        e.status = 204;
      } else {
        e.response = "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n";
        e.status = 304;
      }
      break;
    }
    case 6: {  // 100-continue
      e.method = "PUT";
      size_t n = 1 + rng() % 500;
      std::string head = "PUT " + target + " HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: " +
                         std::to_string(n) + "\r\n\r\n";
      e.req_bodies.push_back({head.size(), head.size() + n});
      e.request = head + Body(rng, n);
      e.response = "HTTP/1.1 100 Continue\r\n\r\n";
      cl_response(200, rng() % 100);
      break;
    }
    default: {  // HTTP/1.0 style, big body
      e.method = "GET";
      e.request = "GET " + target + " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
      cl_response(404, 5000 + rng() % 20000);
      break;
    }
  }
  return e;
}

/// Cuts `stream` into records and feeds them; `ts_of[i]` gets the ts_exit of the record that
/// carried byte i. `bodies` are ranges an uncaptured suffix may fall in.
void FeedCut(Harness& h, std::mt19937& rng, rq_direction dir, const std::string& stream,
             const std::vector<std::pair<size_t, size_t>>& bodies, std::vector<uint64_t>* ts_of,
             int max_cut) {
  // body_start[i]: start of the Content-Length body holding byte i, or npos.
  std::vector<size_t> body_start(stream.size(), std::string::npos);
  for (const auto& [b, e] : bodies) {
    for (size_t i = b; i < e; ++i) body_start[i] = b;
  }
  ts_of->assign(stream.size(), 0);
  size_t pos = 0;
  while (pos < stream.size()) {
    size_t n = 1 + rng() % max_cut;
    if (rng() % 10 == 0) n = 1;
    size_t end = std::min(stream.size(), pos + n);
    size_t captured_end = end;
    if (body_start[end - 1] != std::string::npos && rng() % 3 == 0) {
      size_t lo = std::max(pos, body_start[end - 1]);
      captured_end = lo + rng() % (end - lo + 1);
    }
    std::string_view cap(stream.data() + pos, captured_end - pos);
    h.Feed(h.b.Data(dir, cap, static_cast<int64_t>(end - pos),
                    cap.empty() ? RQ_SYS_SENDFILE : RQ_SYS_READ));
    for (size_t i = pos; i < end; ++i) (*ts_of)[i] = h.b.last_exit();
    pos = end;
  }
}

void RunConversation(uint32_t seed, int max_cut) {
  SCOPED_TRACE("seed " + std::to_string(seed) + " max_cut " + std::to_string(max_cut));
  std::mt19937 rng(seed);
  Harness h;
  h.Feed(h.b.Open(RQ_ROLE_SERVER));
  std::vector<Exchange> all;
  std::vector<uint64_t> start_ts, end_ts;
  int id = 0;
  while (all.size() < 60) {
    // A group of 1 (sequential) or several (pipelined) exchanges.
    int group = rng() % 3 == 0 ? 1 + rng() % 6 : 1;
    std::string reqs, resps;
    std::vector<std::pair<size_t, size_t>> req_bodies, resp_bodies;
    std::vector<size_t> req_at, resp_end_at;
    for (int g = 0; g < group; ++g) {
      Exchange e = MakeExchange(rng, id++);
      for (auto [b, en] : e.req_bodies) req_bodies.push_back({reqs.size() + b, reqs.size() + en});
      for (auto [b, en] : e.resp_bodies) {
        resp_bodies.push_back({resps.size() + b, resps.size() + en});
      }
      req_at.push_back(reqs.size());
      reqs += e.request;
      resps += e.response;
      resp_end_at.push_back(resps.size() - 1);
      all.push_back(std::move(e));
    }
    std::vector<uint64_t> req_ts, resp_ts;
    FeedCut(h, rng, RQ_DIR_INGRESS, reqs, req_bodies, &req_ts, max_cut);
    FeedCut(h, rng, RQ_DIR_EGRESS, resps, resp_bodies, &resp_ts, max_cut);
    for (int g = 0; g < group; ++g) {
      start_ts.push_back(req_ts[req_at[g]]);
      end_ts.push_back(resp_ts[resp_end_at[g]]);
    }
  }
  h.Feed(h.b.Close());
  ASSERT_EQ(h.sink.txs.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    SCOPED_TRACE("exchange " + std::to_string(i));
    const HttpTransaction& tx = h.sink.txs[i];
    const Exchange& e = all[i];
    EXPECT_EQ(tx.method, e.method);
    EXPECT_EQ(tx.path, e.path);
    EXPECT_EQ(tx.query, e.query);
    EXPECT_EQ(tx.status, e.status);
    EXPECT_FALSE(tx.incomplete);
    EXPECT_FALSE(tx.truncated);
    EXPECT_EQ(tx.request_bytes, e.request.size());
    EXPECT_EQ(tx.response_bytes, e.response.size());
    EXPECT_EQ(tx.request_start_ns, start_ts[i]);
    EXPECT_EQ(tx.response_end_ns, end_ts[i]);
  }
  EXPECT_EQ(h.http().unparsed_bytes, 0u);
  EXPECT_EQ(h.http().stream_losses, 0u);
  EXPECT_EQ(h.http().orphan_responses, 0u);
}

// REQMON_CUT_SEEDS=<n> runs n seeds instead of 40 (for soak runs).
TEST(StreamCutTest, RandomCutsGiveTheSameTransactions) {
  uint32_t seeds = 40;
  if (const char* env = std::getenv("REQMON_CUT_SEEDS")) seeds = std::strtoul(env, nullptr, 10);
  for (uint32_t seed = 1; seed <= seeds; ++seed) {
    RunConversation(seed, seed % 4 == 0 ? 3 : 700);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(StreamCutTest, WholeMessagesInOneRecord) {
  RunConversation(4242, 100000);
}

}  // namespace
}  // namespace reqmon::testing
