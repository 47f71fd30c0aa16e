// SPDX-License-Identifier: MIT
#include "reqmon/api/server.h"

#include <atomic>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/router.h>

#include "reqmon/aggregator/aggregator.h"
#include "reqmon/api/query.h"

namespace reqmon {

using namespace Pistache;
using nlohmann::ordered_json;

namespace {

constexpr size_t kDefaultLimit = 100;

std::string Dump(const ordered_json& j) {
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

const char* ContentTypeFor(const std::string& ext) {
  if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json" || ext == ".map") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".jpg" || ext == ".jpeg") return "image/jpeg";
  if (ext == ".gif") return "image/gif";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  if (ext == ".woff2") return "font/woff2";
  if (ext == ".woff") return "font/woff";
  return "application/octet-stream";
}

bool IsV6(const std::string& host) { return host.find(':') != std::string::npos; }

std::string HostPort(const std::string& host, uint16_t port) {
  return (IsV6(host) ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// Binds a throwaway socket first: it turns "address in use" into a clear message (Pistache's own
// exception text names its source file) and resolves port 0 to a concrete free port.
uint16_t ProbeBind(const std::string& host, uint16_t port) {
  const std::string h = host == "localhost" ? "127.0.0.1" : host;
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  if (IsV6(h)) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    if (inet_pton(AF_INET6, h.c_str(), &a->sin6_addr) != 1) {
      throw std::runtime_error("cannot listen on " + HostPort(host, port) + ": invalid address");
    }
    family = AF_INET6;
    len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    if (inet_pton(AF_INET, h.c_str(), &a->sin_addr) != 1) {
      throw std::runtime_error("cannot listen on " + HostPort(host, port) + ": invalid address");
    }
    family = AF_INET;
    len = sizeof(sockaddr_in);
  }
  const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw std::runtime_error("cannot listen on " + HostPort(host, port) + ": " +
                             std::strerror(errno));
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 1) != 0) {
    const int err = errno;
    close(fd);
    throw std::runtime_error("cannot listen on " + HostPort(host, port) + ": " +
                             std::strerror(err));
  }
  sockaddr_storage got{};
  socklen_t glen = sizeof got;
  getsockname(fd, reinterpret_cast<sockaddr*>(&got), &glen);
  close(fd);
  return family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&got)->sin6_port)
                            : ntohs(reinterpret_cast<sockaddr_in*>(&got)->sin_port);
}

}  // namespace

// Response headers Pistache has no type for.
#define RQ_TEXT_HEADER(cls, header_name)                                           \
  class cls : public Http::Header::Header {                                        \
   public:                                                                         \
    NAME(header_name)                                                              \
    cls() = default;                                                               \
    explicit cls(std::string v) : v_(std::move(v)) {}                              \
    void write(std::ostream& os) const override { os << v_; }                     \
                                                                                   \
   private:                                                                        \
    std::string v_;                                                                \
  };
RQ_TEXT_HEADER(ContentSecurityPolicy, "Content-Security-Policy")
RQ_TEXT_HEADER(ContentTypeOptions, "X-Content-Type-Options")
RQ_TEXT_HEADER(ReferrerPolicy, "Referrer-Policy")
RQ_TEXT_HEADER(WwwAuthenticate, "WWW-Authenticate")
#undef RQ_TEXT_HEADER

class ApiServer::Impl {
 public:
  std::atomic<bool> ready{true};  ///< /healthz: ok, or 503 "starting"

  using Extra = std::vector<std::pair<std::string, std::function<std::string()>>>;
  Impl(const Aggregator& agg, std::string web_dir, std::string token, Extra extra_json,
       std::vector<std::function<std::string()>> extra_prom)
      : agg_(agg), web_dir_(std::move(web_dir)), token_(std::move(token)),
        extra_json_(std::move(extra_json)), extra_prom_(std::move(extra_prom)) {
    using namespace Rest;
    for (size_t i = 0; i < extra_json_.size(); ++i) {
      Routes::Get(router_, extra_json_[i].first,
                  [this, i](const Rest::Request& req, Http::ResponseWriter w) {
                    if (!Authorized(req, w)) return Rest::Route::Result::Ok;
                    SecurityHeaders(w);
                    w.headers().add<Http::Header::CacheControl>(Http::CacheDirective::NoStore);
                    w.send(Http::Code::Ok, extra_json_[i].second() + "\n", MIME(Application, Json));
                    return Rest::Route::Result::Ok;
                  });
      const std::string& p = extra_json_[i].first;
      Routes::Post(router_, p, Routes::bind(&Impl::NotAllowed, this));
      Routes::Put(router_, p, Routes::bind(&Impl::NotAllowed, this));
      Routes::Patch(router_, p, Routes::bind(&Impl::NotAllowed, this));
      Routes::Delete(router_, p, Routes::bind(&Impl::NotAllowed, this));
      Routes::Options(router_, p, Routes::bind(&Impl::NotAllowed, this));
      Routes::Head(router_, p, Routes::bind(&Impl::NotAllowed, this));
    }
    Routes::Get(router_, "/metrics", Guarded<&Impl::Metrics>());
    Routes::Get(router_, "/stats", Guarded<&Impl::Stats>());
    Routes::Get(router_, "/requests", Guarded<&Impl::Requests>());
    Routes::Get(router_, "/series", Guarded<&Impl::Series>());
    Routes::Get(router_, "/metrics/prometheus", Guarded<&Impl::Prometheus>());
    Routes::Get(router_, "/healthz", Routes::bind(&Impl::Health, this));
    Routes::Get(router_, "/", Routes::bind(&Impl::Index, this));
    for (const char* p : {"/", "/metrics", "/stats", "/requests", "/series",
                          "/metrics/prometheus", "/healthz"}) {
      Routes::Post(router_, p, Routes::bind(&Impl::NotAllowed, this));
      Routes::Put(router_, p, Routes::bind(&Impl::NotAllowed, this));
      Routes::Patch(router_, p, Routes::bind(&Impl::NotAllowed, this));
      Routes::Delete(router_, p, Routes::bind(&Impl::NotAllowed, this));
      Routes::Options(router_, p, Routes::bind(&Impl::NotAllowed, this));
      Routes::Head(router_, p, Routes::bind(&Impl::NotAllowed, this));
    }
    router_.addNotFoundHandler(Routes::bind(&Impl::NotFound, this));
  }

  void Start(const std::string& host, uint16_t port, int threads) {
    const std::string h = host == "localhost" ? "127.0.0.1" : host;
    Address addr(IsV6(h) ? "[" + h + "]" : h, Port(port));
    endpoint_ = std::make_unique<Http::Endpoint>(addr);
    auto opts = Http::Endpoint::options()
                    .threads(threads > 0 ? threads : 1)
                    .threadsName("reqmon-api")
                    .flags(Tcp::Options::ReuseAddr)
                    .maxRequestSize(64 * 1024);
    endpoint_->init(opts);
    endpoint_->setHandler(router_.handler());
    endpoint_->serveThreaded();  // binds too (calling bind() first makes it fail: EADDRINUSE)
  }

  void Stop() {
    if (!endpoint_) return;
    endpoint_->shutdown();
    endpoint_.reset();
  }

 private:
  using Handler = void (Impl::*)(const Rest::Request&, Http::ResponseWriter);

  // A handler that first checks the bearer token (when one is set).
  template <Handler Fn>
  Rest::Route::Handler Guarded() {
    return [this](const Rest::Request req, Http::ResponseWriter w) {
      if (Authorized(req, w)) (this->*Fn)(req, std::move(w));
      return Rest::Route::Result::Ok;
    };
  }

  // True when no token is set or the request carries it; otherwise answers 401.
  bool Authorized(const Rest::Request& req, Http::ResponseWriter& w) {
    if (token_.empty()) return true;
    std::string given;
    if (auto a = req.headers().tryGet<Http::Header::Authorization>()) given = a->value();
    const std::string want = "Bearer " + token_;
    // Constant time in the token's length: no timing hint of how much of it matched.
    bool ok = given.size() == want.size();
    unsigned char diff = 0;
    for (size_t i = 0; i < want.size(); ++i)
      diff |= static_cast<unsigned char>(want[i] ^ (i < given.size() ? given[i] : 0));
    if (ok && diff == 0) return true;
    w.headers().add<WwwAuthenticate>("Bearer realm=\"reqmon\"");
    SendJson(w, Http::Code::Unauthorized,
             ordered_json{{"error", "unauthorized"},
                          {"detail", "send the token of reqmon's --token-file as "
                                     "'Authorization: Bearer <token>'"}});
    return false;
  }

  // Every response: no sniffing, no referrer; pages may load and connect to this origin only.
  static void SecurityHeaders(Http::ResponseWriter& w) {
    w.headers().add<ContentSecurityPolicy>(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'");
    w.headers().add<ContentTypeOptions>("nosniff");
    w.headers().add<ReferrerPolicy>("no-referrer");
  }

  static void SendJson(Http::ResponseWriter& w, Http::Code code, const ordered_json& j) {
    SecurityHeaders(w);
    w.headers().add<Http::Header::CacheControl>(Http::CacheDirective::NoStore);
    w.send(code, Dump(j) + "\n", MIME(Application, Json));
  }

  void Metrics(const Rest::Request&, Http::ResponseWriter w) {
    SendJson(w, Http::Code::Ok, agg_.MetricsJson());
  }
  void Stats(const Rest::Request&, Http::ResponseWriter w) {
    SendJson(w, Http::Code::Ok, agg_.StatsJson());
  }
  void Series(const Rest::Request&, Http::ResponseWriter w) {
    SendJson(w, Http::Code::Ok, agg_.SeriesJson());
  }
  void Health(const Rest::Request&, Http::ResponseWriter w) {
    const bool ok = ready.load();
    SendJson(w, ok ? Http::Code::Ok : Http::Code::Service_Unavailable,
             ordered_json{{"status", ok ? "ok" : "starting"},
                          {"time", FormatIsoLocal(static_cast<int64_t>(
                                       std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count()))}});
  }
  void Requests(const Rest::Request& req, Http::ResponseWriter w) {
    const size_t cap = agg_.options().recent_capacity;
    size_t limit = std::min(kDefaultLimit, cap);
    if (auto v = req.query().get("limit")) {
      const std::optional<size_t> n = ParseLimit(*v, cap);
      if (!n) {
        SendJson(w, Http::Code::Bad_Request,
                 ordered_json{{"error", "invalid limit"},
                              {"detail", "limit must be a positive integer (at most " +
                                             std::to_string(cap) + " are kept)"},
                              {"limit", *v}});
        return;
      }
      limit = *n;
    }
    SendJson(w, Http::Code::Ok, agg_.RequestsJson(limit));
  }
  void Prometheus(const Rest::Request&, Http::ResponseWriter w) {
    SecurityHeaders(w);
    std::string text = agg_.PrometheusText();
    for (const auto& f : extra_prom_) text += f();
    w.send(Http::Code::Ok, text,
           Http::Mime::MediaType::fromString("text/plain; version=0.0.4; charset=utf-8"));
  }
  void NotAllowed(const Rest::Request& req, Http::ResponseWriter w) {
    w.headers().add<Http::Header::Allow>(Http::Method::Get);
    SendJson(w, Http::Code::Method_Not_Allowed,
             ordered_json{{"error", "method not allowed"},
                          {"method", Http::methodString(req.method())},
                          {"path", req.resource()},
                          {"allow", ordered_json::array({"GET"})}});
  }
  void NotFoundJson(const std::string& path, Http::ResponseWriter& w) {
    SendJson(w, Http::Code::Not_Found, ordered_json{{"error", "not found"}, {"path", path}});
  }
  void Index(const Rest::Request& req, Http::ResponseWriter w) {
    ServeFile(req.resource(), "index.html", w);
  }
  void NotFound(const Rest::Request& req, Http::ResponseWriter w) {
    const std::string path = req.resource();
    if (req.method() == Http::Method::Get && path.size() > 1 && path[0] == '/') {
      ServeFile(path, path.substr(1), w);
      return;
    }
    NotFoundJson(path, w);
  }

  // Serves web_dir/rel when it is a regular file inside web_dir; otherwise a JSON 404.
  void ServeFile(const std::string& url_path, const std::string& rel, Http::ResponseWriter& w) {
    namespace fs = std::filesystem;
    if (web_dir_.empty() || rel.empty() || rel.find('\0') != std::string::npos ||
        rel.find('\\') != std::string::npos) {
      return NotFoundJson(url_path, w);
    }
    std::stringstream segs(rel);
    std::string seg;
    while (std::getline(segs, seg, '/')) {
      if (seg == ".." || seg == ".") return NotFoundJson(url_path, w);
    }
    std::error_code ec;
    const fs::path root = fs::canonical(web_dir_, ec);
    if (ec) return NotFoundJson(url_path, w);
    const fs::path file = fs::canonical(root / rel, ec);
    if (ec || !fs::is_regular_file(file, ec)) return NotFoundJson(url_path, w);
    const std::string rs = root.string() + "/", fsr = file.string();
    if (fsr.compare(0, rs.size(), rs) != 0) return NotFoundJson(url_path, w);
    std::ifstream in(file, std::ios::binary);
    if (!in) return NotFoundJson(url_path, w);
    std::ostringstream body;
    body << in.rdbuf();
    SecurityHeaders(w);
    w.headers().add<Http::Header::CacheControl>(Http::CacheDirective::NoCache);
    w.send(Http::Code::Ok, body.str(),
           Http::Mime::MediaType::fromString(ContentTypeFor(file.extension().string())));
  }

  const Aggregator& agg_;
  std::string web_dir_;
  std::string token_;
  Extra extra_json_;
  std::vector<std::function<std::string()>> extra_prom_;
  Rest::Router router_;
  std::unique_ptr<Http::Endpoint> endpoint_;
};

ApiServer::ApiServer(const Aggregator& agg, ApiServerOptions opts)
    : agg_(agg), opts_(std::move(opts)), ready_(opts_.start_ready) {}

ApiServer::~ApiServer() { Stop(); }

std::string ApiServer::address() const { return HostPort(opts_.host, port_ ? port_ : opts_.port); }

void ApiServer::Start() {
  if (impl_) throw std::runtime_error("API server already started on " + address());
  const uint16_t port = ProbeBind(opts_.host, opts_.port);
  auto impl = std::make_unique<Impl>(agg_, opts_.web_dir, opts_.token, extra_json_, extra_prom_);
  impl->ready = ready_;
  try {
    impl->Start(opts_.host, port, opts_.threads);
  } catch (const std::exception& e) {
    impl->Stop();
    std::string what = e.what();
    if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    throw std::runtime_error("cannot listen on " + HostPort(opts_.host, port) + ": " + what);
  }
  port_ = port;
  impl_ = std::move(impl);
}

void ApiServer::AddJsonEndpoint(const std::string& path, std::function<std::string()> body) {
  extra_json_.emplace_back(path, std::move(body));
}

void ApiServer::AddPrometheusText(std::function<std::string()> text) {
  extra_prom_.push_back(std::move(text));
}

void ApiServer::SetReady(bool ready) {
  ready_ = ready;
  if (impl_) impl_->ready = ready;
}

void ApiServer::Stop() {
  if (!impl_) return;
  impl_->Stop();
  impl_.reset();
}

}  // namespace reqmon
