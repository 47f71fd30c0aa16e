// SPDX-License-Identifier: MIT
#pragma once
/// The HTTP API (Pistache): JSON endpoints, Prometheus text and the dashboard's static files.
/// Endpoints and their JSON: docs/api.md.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace reqmon {

class Aggregator;

struct ApiServerOptions {
  std::string host = "127.0.0.1";  ///< IPv4 or IPv6 literal ("::1", "::"), or "localhost"
  uint16_t port = 9100;            ///< 0 = pick a free ephemeral port (see ApiServer::port())
  std::string web_dir;             ///< dashboard files (index.html ...); empty = none
  int threads = 2;                 ///< Pistache worker threads
  bool start_ready = true;         ///< false: /healthz answers 503 "starting" until SetReady(true)
  /// Non-empty: every JSON and Prometheus endpoint but /healthz needs "Authorization: Bearer
  /// <token>" and answers 401 JSON without it (the dashboard's own files, which hold no data,
  /// stay open; the dashboard sends the token it was given in its URL's #token=...).
  std::string token;
};

/// Serves GET /metrics, /stats, /requests?limit=N, /series, /metrics/prometheus, /healthz and
/// the dashboard (/ -> web_dir/index.html, /<file> -> web_dir/<file>). Unknown paths give a JSON
/// 404, a known path with another method a JSON 405 with "Allow: GET".
/// Start() and Stop() from one thread (the app's main thread); handlers run on Pistache's
/// threads and only read the Aggregator, which must outlive the server.
class ApiServer {
 public:
  ApiServer(const Aggregator& agg, ApiServerOptions opts);
  ~ApiServer();  ///< Stop()s
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  /// Binds and starts serving on background threads. Throws std::runtime_error with a one-line
  /// message such as "cannot listen on 127.0.0.1:9100: Address already in use".
  void Start();
  /// Stops serving and joins every server thread; the port can be bound again right after.
  /// Idempotent.
  void Stop();
  /// Before Start(): serves GET `path` with the JSON text `body()` returns (e.g. /alerts).
  void AddJsonEndpoint(const std::string& path, std::function<std::string()> body);
  /// Before Start(): text appended to /metrics/prometheus (whole metric families).
  void AddPrometheusText(std::function<std::string()> text);
  /// Readiness for /healthz: 200 {"status":"ok"} when ready, 503 {"status":"starting"} before
  /// (the app sets it once its capture is attached). Any thread.
  void SetReady(bool ready);
  /// The bound port (the chosen one when options.port was 0); valid after Start().
  uint16_t port() const { return port_; }
  /// "127.0.0.1:9100" / "[::1]:9100".
  std::string address() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  const Aggregator& agg_;
  ApiServerOptions opts_;
  uint16_t port_ = 0;
  bool ready_ = true;
  std::vector<std::pair<std::string, std::function<std::string()>>> extra_json_;
  std::vector<std::function<std::string()>> extra_prom_;
};

}  // namespace reqmon
