// SPDX-License-Identifier: MIT
// The notifier's pieces without a receiver: URLs, the webhook payload, and a dead receiver that
// costs the caller nothing (bounded queue, retries, then given up).
#include "reqmon/alerts/notifier.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "reqmon/alerts/service.h"

namespace reqmon::alerts {
namespace {

TEST(Notifier, ParsesPlainHttpUrlsOnly) {
  std::string host, path, err;
  uint16_t port = 0;
  ASSERT_TRUE(ParseHttpUrl("http://127.0.0.1:9093", &host, &port, &path, &err));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 9093);
  EXPECT_EQ(path, "/");
  ASSERT_TRUE(ParseHttpUrl("http://[::1]:8080/hook?x=1", &host, &port, &path, &err));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 8080);
  EXPECT_EQ(path, "/hook?x=1");
  ASSERT_TRUE(ParseHttpUrl("http://alerts.local/h", &host, &port, &path, &err));
  EXPECT_EQ(port, 80);
  EXPECT_FALSE(ParseHttpUrl("https://x/", &host, &port, &path, &err));
  EXPECT_EQ(err, "https://x/: only plain http:// URLs are supported");
  EXPECT_FALSE(ParseHttpUrl("http://x:99999/", &host, &port, &path, &err));
  EXPECT_FALSE(ParseHttpUrl("http://:80/", &host, &port, &path, &err));
}

AlertEvent Event(AlertEvent::Kind kind) {
  AlertEvent e;
  e.kind = kind;
  e.name = "HighErrorRate";
  e.severity = Severity::kCritical;
  e.labels = {{"alertname", "HighErrorRate"}, {"severity", "critical"}, {"route", "GET /a"}};
  e.summary = "5xx share 7.2% over 5m";
  e.started = 1732269600;  // 2024-11-22T10:00:00Z
  e.ended = kind == AlertEvent::kResolved ? 1732270140 : 0;
  e.value = 7.2;
  e.peak = 9.1;
  return e;
}

TEST(Notifier, WebhookPayloadIsAlertmanagersVersion4) {
  auto j = nlohmann::json::parse(WebhookPayload(Event(AlertEvent::kFiring), "http://h:9100/"));
  EXPECT_EQ(j["version"], "4");
  EXPECT_EQ(j["status"], "firing");
  EXPECT_EQ(j["groupLabels"]["alertname"], "HighErrorRate");
  EXPECT_EQ(j["commonLabels"]["route"], "GET /a");
  EXPECT_EQ(j["externalURL"], "http://h:9100/");
  ASSERT_EQ(j["alerts"].size(), 1u);
  const auto& a = j["alerts"][0];
  EXPECT_EQ(a["status"], "firing");
  EXPECT_EQ(a["labels"]["severity"], "critical");
  EXPECT_EQ(a["annotations"]["summary"], "5xx share 7.2% over 5m");
  EXPECT_EQ(a["startsAt"], "2024-11-22T10:00:00Z");
  EXPECT_EQ(a["endsAt"], "0001-01-01T00:00:00Z");
  EXPECT_EQ(a["fingerprint"].get<std::string>().size(), 16u);
  auto r = nlohmann::json::parse(WebhookPayload(Event(AlertEvent::kResolved), ""));
  EXPECT_EQ(r["status"], "resolved");
  EXPECT_EQ(r["alerts"][0]["endsAt"], "2024-11-22T10:09:00Z");
  EXPECT_EQ(r["alerts"][0]["fingerprint"], a["fingerprint"]);
  EXPECT_EQ(LogLine(Event(AlertEvent::kFiring)),
            "ALERT firing: HighErrorRate (critical) 5xx share 7.2% over 5m");
  EXPECT_EQ(LogLine(Event(AlertEvent::kResolved)),
            "ALERT resolved: HighErrorRate (critical) 5xx share 7.2% over 5m, peak 9.1");
}

// A loopback port with nothing listening.
int DeadPort() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

TEST(Notifier, ADeadReceiverIsRetriedThenGivenUpAndItsQueueStaysBounded) {
  NotifierOptions o;
  o.webhooks = {"http://127.0.0.1:" + std::to_string(DeadPort()) + "/hook"};
  o.queue_capacity = 2;
  o.max_attempts = 3;
  o.backoff_initial_ms = 10;
  o.backoff_max_ms = 20;
  o.timeout_ms = 500;
  Notifier n(o);
  for (int i = 0; i < 10; ++i) n.Notify(Event(AlertEvent::kFiring));  // only queues
  NotifierStats s;
  for (int i = 0; i < 200; ++i) {
    s = n.stats();
    if (s.failed + s.dropped == 10) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_EQ(s.sent, 0u);
  EXPECT_EQ(s.failed + s.dropped, 10u);
  EXPECT_GE(s.dropped, 7u);  // at most 2 queued (+1 being sent) at any time
  EXPECT_GE(s.failed, 1u);
  EXPECT_GE(s.retries, 2 * s.failed);  // each given-up message was tried 3 times
}

TEST(Notifier, StoppingDoesNotWaitForAReceiverThatNeverAnswers) {
  // A listening socket that accepts (the kernel completes the handshake) but never answers.
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(ls, 8), 0);
  socklen_t len = sizeof a;
  getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len);
  NotifierOptions o;
  o.webhooks = {"http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/"};
  o.timeout_ms = 60000;  // the receiver would hold a POST for a minute
  auto n = std::make_unique<Notifier>(o);
  n->Notify(Event(AlertEvent::kFiring));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the POST is waiting
  const auto t0 = std::chrono::steady_clock::now();
  n.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  close(ls);
}

TEST(Notifier, HttpPostReportsWhyItFailed) {
  std::string err;
  EXPECT_EQ(HttpPostJson("http://127.0.0.1:" + std::to_string(DeadPort()) + "/", "{}", 500, &err),
            -1);
  EXPECT_NE(err.find("connect"), std::string::npos) << err;
}

}  // namespace
}  // namespace reqmon::alerts
