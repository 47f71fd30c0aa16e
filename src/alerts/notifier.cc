// SPDX-License-Identifier: MIT
#include "reqmon/alerts/notifier.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

namespace reqmon::alerts {

namespace {

using Clock = std::chrono::steady_clock;

// Waits for `events` on fd; false on timeout, error, or when *cancel becomes true (checked every
// 100 ms, so that stopping reqmon never waits for a slow receiver's timeout).
bool WaitFd(int fd, short events, int timeout_ms, const std::atomic<bool>* cancel) {
  pollfd p{fd, events, 0};
  for (int left = timeout_ms; left > 0;) {
    if (cancel && cancel->load()) return false;
    const int slice = std::min(left, 100);
    int n = poll(&p, 1, slice);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n > 0) return (p.revents & (events | POLLHUP | POLLERR)) != 0;
    left -= slice;
  }
  return false;
}

std::string Fingerprint(const std::map<std::string, std::string>& labels) {
  // FNV-1a over the sorted labels, as 16 hex digits (Alertmanager's own is a hash as well).
  uint64_t h = 1469598103934665603ull;
  for (const auto& [k, v] : labels) {
    for (char c : k + '\xff' + v + '\xfe') {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

bool ParseHttpUrl(const std::string& url, std::string* host, uint16_t* port, std::string* path,
                  std::string* error) {
  const std::string scheme = "http://";
  if (url.compare(0, scheme.size(), scheme) != 0) {
    *error = url + ": only plain http:// URLs are supported";
    return false;
  }
  std::string rest = url.substr(scheme.size());
  const size_t slash = rest.find('/');
  *path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string hp = rest.substr(0, slash);
  *port = 80;
  std::string h = hp;
  if (!hp.empty() && hp[0] == '[') {
    const size_t close = hp.find(']');
    if (close == std::string::npos) {
      *error = url + ": bad IPv6 address";
      return false;
    }
    h = hp.substr(1, close - 1);
    hp = hp.substr(close + 1);
    if (!hp.empty() && hp[0] != ':') {
      *error = url + ": bad host";
      return false;
    }
    if (!hp.empty()) hp = "x" + hp;  // keep the ":port" for below
  }
  if (const size_t colon = hp.rfind(':'); colon != std::string::npos) {
    const std::string p = hp.substr(colon + 1);
    char* end = nullptr;
    const long v = std::strtol(p.c_str(), &end, 10);
    if (p.empty() || *end != '\0' || v <= 0 || v > 65535) {
      *error = url + ": bad port '" + p + "'";
      return false;
    }
    *port = static_cast<uint16_t>(v);
    if (h == hp) h = hp.substr(0, colon);
  }
  if (h.empty()) {
    *error = url + ": no host";
    return false;
  }
  *host = h;
  return true;
}

int HttpPostJson(const std::string& url, const std::string& body, int timeout_ms,
                 std::string* error, const std::atomic<bool>* cancel) {
  std::string host, path;
  uint16_t port = 0;
  if (!ParseHttpUrl(url, &host, &port, &path, error)) return -1;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0) {
    *error = host + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      *error = std::string("connect: ") + std::strerror(errno);
      close(fd);
      fd = -1;
      continue;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (!WaitFd(fd, POLLOUT, timeout_ms, cancel) ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
      *error = std::string("connect: ") + (soerr ? std::strerror(soerr) : "timed out");
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) return -1;
  const std::string hostport =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  std::string req = "POST " + path + " HTTP/1.1\r\nHost: " + hostport +
                    "\r\nUser-Agent: reqmon\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  size_t off = 0;
  while (off < req.size()) {
    if (!WaitFd(fd, POLLOUT, timeout_ms, cancel)) {
      *error = "send timed out";
      close(fd);
      return -1;
    }
    ssize_t n = send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) {
      *error = std::string("send: ") + std::strerror(errno);
      close(fd);
      return -1;
    }
    off += static_cast<size_t>(n);
  }
  std::string resp;
  char buf[4096];
  while (resp.find("\r\n") == std::string::npos && resp.size() < 65536) {
    if (!WaitFd(fd, POLLIN, timeout_ms, cancel)) {
      *error = "no answer in time";
      close(fd);
      return -1;
    }
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  // "HTTP/1.1 200 OK"
  if (resp.compare(0, 5, "HTTP/") != 0 || resp.find(' ') == std::string::npos) {
    *error = "not an HTTP answer";
    return -1;
  }
  return std::atoi(resp.c_str() + resp.find(' ') + 1);
}

std::string Rfc3339(int64_t unix_sec) {
  const time_t t = static_cast<time_t>(unix_sec);
  tm u{};
  gmtime_r(&t, &u);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &u);
  return buf;
}

std::string WebhookPayload(const AlertEvent& e, const std::string& external_url) {
  using nlohmann::ordered_json;
  const bool firing = e.kind == AlertEvent::kFiring;
  ordered_json annotations = {{"summary", e.summary}};
  ordered_json alert = {{"status", firing ? "firing" : "resolved"},
                        {"labels", e.labels},
                        {"annotations", annotations},
                        {"startsAt", Rfc3339(e.started)},
                        {"endsAt", firing ? "0001-01-01T00:00:00Z" : Rfc3339(e.ended)},
                        {"generatorURL", external_url},
                        {"fingerprint", Fingerprint(e.labels)}};
  ordered_json j = {{"version", "4"},
                    {"groupKey", "{}:{alertname=\"" + e.name + "\"}"},
                    {"truncatedAlerts", 0},
                    {"status", firing ? "firing" : "resolved"},
                    {"receiver", "reqmon"},
                    {"groupLabels", {{"alertname", e.name}}},
                    {"commonLabels", e.labels},
                    {"commonAnnotations", annotations},
                    {"externalURL", external_url},
                    {"alerts", ordered_json::array({alert})}};
  return j.dump();
}

Notifier::Notifier(NotifierOptions opts) : opts_(std::move(opts)) {
  for (const auto& w : opts_.webhooks) receivers_.push_back(Receiver{w, {}, {}, 0});
  if (!opts_.alertmanager.empty()) {
    std::string base = opts_.alertmanager;
    while (!base.empty() && base.back() == '/') base.pop_back();
    receivers_.push_back(Receiver{base + "/api/v2/alerts", {}, {}, 0});
  }
  if (!receivers_.empty()) thread_ = std::thread([this] { Loop(); });
}

Notifier::~Notifier() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cancel_ = true;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string Notifier::AlertmanagerBody(const std::map<std::string, std::string>& labels,
                                       const std::string& summary, int64_t starts,
                                       int64_t ends) const {
  nlohmann::ordered_json a = {{"labels", labels},
                              {"annotations", {{"summary", summary}}},
                              {"startsAt", Rfc3339(starts)},
                              {"endsAt", Rfc3339(ends)},
                              {"generatorURL", opts_.external_url}};
  return nlohmann::ordered_json::array({a}).dump();
}

void Notifier::Enqueue(Receiver& r, std::string body) {
  if (r.queue.size() >= opts_.queue_capacity) {
    r.queue.pop_front();
    ++stats_.dropped;
  }
  r.queue.push_back(Message{++next_id_, std::move(body), 0});
}

void Notifier::Notify(const AlertEvent& e) {
  if (receivers_.empty()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    const size_t webhooks = opts_.webhooks.size();
    if (webhooks) {
      const std::string payload = WebhookPayload(e, opts_.external_url);
      for (size_t i = 0; i < webhooks; ++i) Enqueue(receivers_[i], payload);
    }
    if (!opts_.alertmanager.empty()) {
      // Firing: endsAt a few resend intervals ahead (Alertmanager resolves it by itself if
      // reqmon goes away); resolved: endsAt is when it ended.
      const int64_t ends =
          e.kind == AlertEvent::kFiring ? e.started + 4 * std::max(opts_.resend_s, 15) : e.ended;
      Enqueue(receivers_.back(), AlertmanagerBody(e.labels, e.summary, e.started, ends));
    }
  }
  cv_.notify_all();
}

void Notifier::Resend(const std::vector<ActiveAlert>& active, int64_t now) {
  if (opts_.alertmanager.empty()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (now - last_resend_ < opts_.resend_s) return;
    last_resend_ = now;
    for (const ActiveAlert& a : active) {
      if (a.state != AlertState::kFiring) continue;
      Enqueue(receivers_.back(), AlertmanagerBody(a.labels, a.summary, a.since,
                                                  now + 4 * std::max(opts_.resend_s, 15)));
    }
  }
  cv_.notify_all();
}

NotifierStats Notifier::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

void Notifier::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    // The receiver whose head is due first.
    Receiver* next = nullptr;
    for (Receiver& r : receivers_)
      if (!r.queue.empty() && (!next || r.next_try < next->next_try)) next = &r;
    if (!next) {
      cv_.wait(l);
      continue;
    }
    if (next->next_try > Clock::now()) {
      cv_.wait_until(l, next->next_try);
      continue;
    }
    const std::string url = next->url, body = next->queue.front().body;
    const uint64_t id = next->queue.front().id;
    l.unlock();
    std::string error;
    const int code = HttpPostJson(url, body, opts_.timeout_ms, &error, &cancel_);
    l.lock();
    // The receiver may have dropped the message meanwhile (full queue): only pop if it is
    // still the head we sent.
    if (next->queue.empty() || next->queue.front().id != id) continue;
    if (code >= 200 && code < 300) {
      ++stats_.sent;
      next->queue.pop_front();
      next->backoff_ms = 0;
      next->next_try = Clock::now();
      continue;
    }
    Message& m = next->queue.front();
    if (++m.attempts >= opts_.max_attempts) {
      ++stats_.failed;
      next->queue.pop_front();
      next->backoff_ms = 0;
      next->next_try = Clock::now();
      continue;
    }
    ++stats_.retries;
    next->backoff_ms = next->backoff_ms == 0 ? opts_.backoff_initial_ms
                                             : std::min(next->backoff_ms * 2, opts_.backoff_max_ms);
    next->next_try = Clock::now() + std::chrono::milliseconds(next->backoff_ms);
  }
}

}  // namespace reqmon::alerts
