// SPDX-License-Identifier: MIT
#pragma once
/// Sends alerts to the tools people already run, from its own thread: Alertmanager-style
/// webhooks (payload version "4", as Alertmanager's webhook receiver sends it) and a real
/// Alertmanager's POST /api/v2/alerts (firing alerts re-sent every resend interval with endsAt
/// a few intervals ahead, endsAt = the resolution time once resolved).
///
/// A dead or slow receiver never blocks the caller: Notify() and Resend() only queue. Each
/// receiver has its own bounded FIFO (the oldest message is dropped when it is full); the head
/// of a receiver's queue is retried with exponential back-off; connect, send and receive each
/// time out. Plain HTTP/1.1 only (http:// URLs: loopback or a trusted network).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "reqmon/alerts/engine.h"

namespace reqmon::alerts {

struct NotifierOptions {
  std::vector<std::string> webhooks;  ///< http://host:port/path, each gets every transition
  std::string alertmanager;           ///< http://host:port (the /api/v2/alerts path is added)
  std::string external_url;           ///< reqmon's dashboard URL (generatorURL, externalURL)
  size_t queue_capacity = 256;        ///< per receiver
  int timeout_ms = 5000;              ///< connect, and each send/receive
  int max_attempts = 8;               ///< then the message is dropped (counted)
  int backoff_initial_ms = 500;       ///< doubles per failed attempt ...
  int backoff_max_ms = 30000;         ///< ... up to this
  int resend_s = 60;                  ///< Alertmanager: firing alerts re-sent this often
};

/// Counters, for /stats-like reporting and tests.
struct NotifierStats {
  uint64_t sent = 0;     ///< accepted (2xx)
  uint64_t retries = 0;  ///< failed attempts that were retried
  uint64_t failed = 0;   ///< given up after max_attempts
  uint64_t dropped = 0;  ///< pushed out of a full queue
};

/// "http://127.0.0.1:9093/x" -> host, port, path; false (and *error) when not a plain http URL.
bool ParseHttpUrl(const std::string& url, std::string* host, uint16_t* port, std::string* path,
                  std::string* error);
/// POSTs a JSON body; returns the HTTP status, or -1 with *error. Blocks up to ~3 x timeout_ms,
/// or until *cancel (optional) becomes true.
int HttpPostJson(const std::string& url, const std::string& body, int timeout_ms,
                 std::string* error, const std::atomic<bool>* cancel = nullptr);
/// RFC 3339 UTC: "2024-11-22T10:00:00Z".
std::string Rfc3339(int64_t unix_sec);
/// The Alertmanager webhook payload (version "4") for one transition.
std::string WebhookPayload(const AlertEvent& e, const std::string& external_url);

class Notifier {
 public:
  explicit Notifier(NotifierOptions opts);
  ~Notifier();  ///< stops the thread at once (a POST in progress is abandoned, queued ones dropped)
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  /// Queues a transition for every webhook and for the Alertmanager. Never blocks on I/O.
  void Notify(const AlertEvent& e);
  /// Alertmanager: re-sends the firing alerts when resend_s has passed since the last time.
  void Resend(const std::vector<ActiveAlert>& active, int64_t now_unix);
  NotifierStats stats() const;
  bool enabled() const { return !receivers_.empty(); }

 private:
  struct Message {
    uint64_t id = 0;
    std::string body;
    int attempts = 0;
  };
  struct Receiver {
    std::string url;
    std::deque<Message> queue;
    std::chrono::steady_clock::time_point next_try{};
    int backoff_ms = 0;
  };
  void Enqueue(Receiver& r, std::string body);
  void Loop();
  std::string AlertmanagerBody(const std::map<std::string, std::string>& labels,
                               const std::string& summary, int64_t starts, int64_t ends) const;

  NotifierOptions opts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Receiver> receivers_;  ///< webhooks, then the Alertmanager (last) if any
  bool stop_ = false;
  std::atomic<bool> cancel_{false};  ///< aborts a POST in progress when stopping
  NotifierStats stats_;
  int64_t last_resend_ = 0;
  uint64_t next_id_ = 0;
  std::thread thread_;
};

}  // namespace reqmon::alerts
