// SPDX-License-Identifier: MIT
#pragma once
// Real peers for tests: an nginx or a Python http.server on a free loopback port, each in its
// own temporary folder, started and stopped by the test; a real HTTP client (curl); the reqmon
// binary itself. Header-only so that every test area can use it.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace reqmon::testing {

namespace fs = std::filesystem;

inline bool IsRoot() { return geteuid() == 0; }

inline bool HaveBinary(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

/// A free TCP port on 127.0.0.1 (bound and released; racy in theory, fine for tests).
inline int FreePort() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

inline bool PortOpen(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(s);
  return ok;
}

inline bool WaitForPort(int port, int timeout_ms = 10000) {
  for (int waited = 0; waited < timeout_ms; waited += 50) {
    if (PortOpen(port)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

/// Runs a shell command, returns its stdout; *status gets the exit code.
inline std::string Run(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

inline std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline fs::path MakeTempDir(const std::string& tag) {
  std::string tmpl = (fs::temp_directory_path() / ("reqmon-" + tag + "-XXXXXX")).string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  chmod(tmpl.c_str(), 0755);
  return tmpl;
}

/// A child process started with fork/exec, killed (SIGTERM, then SIGKILL) when destroyed.
class Process {
 public:
  Process() = default;
  explicit Process(const std::vector<std::string>& argv, const std::string& out_file = "") {
    Start(argv, out_file);
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() { Stop(); }

  void Start(const std::vector<std::string>& argv, const std::string& out_file = "") {
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      if (!out_file.empty()) {
        FILE* f = fopen(out_file.c_str(), "w");
        if (f) {
          dup2(fileno(f), 1);
          dup2(fileno(f), 2);
        }
      }
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
  }
  pid_t pid() const { return pid_; }
  bool Running() {
    if (pid_ <= 0) return false;
    int st;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      exit_status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      pid_ = -1;
      return false;
    }
    return true;
  }
  /// Sends `sig` and waits up to timeout_ms; returns the exit status (or -1 if still running).
  int Signal(int sig, int timeout_ms = 5000) {
    if (pid_ <= 0) return exit_status_;
    kill(pid_, sig);
    for (int waited = 0; waited < timeout_ms; waited += 20) {
      if (!Running()) return exit_status_;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  int Wait(int timeout_ms = 30000) {
    for (int waited = 0; waited < timeout_ms; waited += 20) {
      if (!Running()) return exit_status_;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  void Stop() {
    if (pid_ <= 0) return;
    kill(-pid_, SIGTERM);
    if (Signal(SIGTERM, 3000) == -1) {
      kill(-pid_, SIGKILL);
      Signal(SIGKILL, 3000);
    }
    pid_ = -1;
  }
  int exit_status() const { return exit_status_; }

 private:
  pid_t pid_ = -1;
  int exit_status_ = -1;
};

/// A self-signed certificate and key for localhost made with openssl in `dir` (cert.pem,
/// key.pem); the test's own, deleted with the folder.
inline void MakeCertificate(const fs::path& dir) {
  int st = 0;
  Run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout '" +
          (dir / "key.pem").string() + "' -out '" + (dir / "cert.pem").string() + "' 2>&1",
      &st);
  if (st != 0) throw std::runtime_error("openssl could not make a certificate");
}

/// What the real servers below have in common: a temporary folder of their own, a free loopback
/// port (and a second one for TLS, where they listen with it), and their process, which is
/// stopped, and the folder removed, when the server object goes.
class ServerInDir {
 public:
  ServerInDir(const ServerInDir&) = delete;
  ServerInDir& operator=(const ServerInDir&) = delete;
  int port() const { return port_; }
  int tls_port() const { return tls_port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string tls_url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(tls_port_) + path;
  }

 protected:
  ServerInDir(const std::string& tag, bool tls)
      : dir_(MakeTempDir(tag)), port_(FreePort()), tls_port_(tls ? FreePort() : 0) {}
  ~ServerInDir() {
    proc_.Stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path dir_;
  int port_;
  int tls_port_;
  Process proc_;
};

/// A real nginx (master + 2 workers) on 127.0.0.1:port with its own prefix, config and docroot.
/// The access log records $request_time (seconds, ms resolution) for timing comparisons.
/// With tls, the same server also listens with TLS on tls_port() (a certificate of its own).
class Nginx : public ServerInDir {
 public:
  /// upstream_port: when non-zero, /slow/ is proxied to 127.0.0.1:upstream_port.
  /// binary: another name for nginx's executable (a copy), so that --comm finds this one only.
  explicit Nginx(int workers = 2, int upstream_port = 0, bool tls = false,
                 const std::string& binary = "")
      : ServerInDir("nginx", tls) {
    if (tls) MakeCertificate(dir_);
    fs::create_directories(dir_ / "html");
    fs::create_directories(dir_ / "logs");
    std::ofstream(dir_ / "html" / "index.html") << "<html>hello from nginx</html>\n";
    std::ofstream(dir_ / "html" / "big.bin") << std::string(100000, 'x');
    std::ofstream conf(dir_ / "nginx.conf");
    conf << "worker_processes " << workers << ";\n"
         << "daemon off;\nmaster_process on;\npid " << (dir_ / "nginx.pid").string() << ";\n"
         << "error_log " << (dir_ / "logs/error.log").string() << " warn;\n"
         << "events { worker_connections 1024; }\n"
         << "http {\n"
         << "  log_format timed '$request $status $request_time';\n"
         << "  access_log " << (dir_ / "logs/access.log").string() << " timed;\n"
         << "  client_body_temp_path " << (dir_ / "body").string() << ";\n"
         << "  sendfile on;\n  keepalive_requests 100000;\n"
         << "  server {\n    listen 127.0.0.1:" << port_ << ";\n";
    if (tls)
      conf << "    listen 127.0.0.1:" << tls_port_ << " ssl;\n"
           << "    ssl_certificate " << (dir_ / "cert.pem").string() << ";\n"
           << "    ssl_certificate_key " << (dir_ / "key.pem").string() << ";\n";
    conf
         << "    root " << (dir_ / "html").string() << ";\n"
         << "    location = /status/201 { return 201 'created\\n'; }\n"
         << "    location = /status/500 { return 500 'oops\\n'; }\n"
         << "    location /api/ { return 200 '{\"ok\":true}\\n'; }\n";
    if (upstream_port)
      conf << "    location /slow/ { proxy_pass http://127.0.0.1:" << upstream_port << "; }\n";
    conf << "  }\n}\n";
    conf.close();
    std::string exe = NginxBinary();
    if (!binary.empty()) {
      fs::copy_file(exe, dir_ / binary);
      exe = (dir_ / binary).string();
    }
    proc_.Start({exe, "-p", dir_.string(), "-c", (dir_ / "nginx.conf").string()},
                (dir_ / "stdout.log").string());
    if (!WaitForPort(port_)) throw std::runtime_error("nginx did not start: " + ReadFile(dir_ / "logs/error.log") + ReadFile(dir_ / "stdout.log"));
  }
  static std::string NginxBinary() { return fs::exists("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx"; }
  pid_t master_pid() const { return proc_.pid(); }
  fs::path access_log() const { return dir_ / "logs/access.log"; }
  /// Sends the master a signal (SIGHUP: new workers are forked).
  void Signal(int sig) { kill(proc_.pid(), sig); }
};

/// A real Apache httpd (Debian's apache2) on 127.0.0.1:port() and, with TLS (mod_ssl),
/// tls_port(), with its own ServerRoot, config and docroot, started in the foreground so that the
/// test holds its master's PID. mpm: "event" (Debian's default: processes of threads, keep-alive
/// connections handed between threads) or "prefork" (a process per connection). Enough processes
/// and threads are started up front for a test's load, so that none is forked while it runs. The
/// access log gives, per request, the port it came in on, the request line, the status and the
/// time taken in µs (`%p %r %>s %D`). Routes: /index.html, /big.bin (100 kB), /api/... (the
/// index, rewritten), /status/500 (a 500), anything else a 404.
class Apache : public ServerInDir {
 public:
  explicit Apache(const std::string& mpm = "event")
      : ServerInDir("apache", true) {
    MakeCertificate(dir_);
    fs::create_directories(dir_ / "html");
    fs::create_directories(dir_ / "logs");
    std::ofstream(dir_ / "html" / "index.html") << "<html>hello from apache</html>\n";
    std::ofstream(dir_ / "html" / "big.bin") << std::string(100000, 'x');
    const std::string d = dir_.string(), mods = "/usr/lib/apache2/modules/";
    std::ofstream conf(dir_ / "httpd.conf");
    conf << "ServerRoot " << d << "\nServerName localhost\n"
         << "LoadModule mpm_" << mpm << "_module " << mods << "mod_mpm_" << mpm << ".so\n";
    for (const char* m : {"authz_core", "mime", "rewrite", "ssl", "socache_shmcb"})
      conf << "LoadModule " << m << "_module " << mods << "mod_" << m << ".so\n";
    if (mpm == "prefork")
      conf << "StartServers 8\nMinSpareServers 1\nMaxSpareServers 16\n";
    else
      conf << "StartServers 2\nThreadsPerChild 25\nMinSpareThreads 10\nMaxSpareThreads 75\n";
    conf << "TypesConfig /etc/mime.types\nUser www-data\nGroup www-data\n"
         << "PidFile " << d << "/logs/httpd.pid\nErrorLog " << d << "/logs/error.log\n"
         << "LogFormat \"%p %r %>s %D\" timed\nCustomLog " << d << "/logs/access.log timed\n"
         << "Listen 127.0.0.1:" << port_ << "\nListen 127.0.0.1:" << tls_port_ << "\n"
         << "DocumentRoot " << d << "/html\n<Directory " << d << "/html>\n  Require all granted\n"
         << "</Directory>\nRewriteEngine on\nRewriteRule ^/status/500$ - [R=500]\n"
         << "RewriteRule ^/api/ /index.html [L]\n"
         << "SSLSessionCache shmcb:" << d << "/logs/ssl_scache(512000)\n"
         << "<VirtualHost 127.0.0.1:" << tls_port_ << ">\n  SSLEngine on\n"
         << "  SSLCertificateFile " << d << "/cert.pem\n  SSLCertificateKeyFile " << d
         << "/key.pem\n  RewriteEngine on\n  RewriteOptions Inherit\n</VirtualHost>\n";
    conf.close();
    proc_.Start({"apache2", "-f", (dir_ / "httpd.conf").string(), "-DFOREGROUND"},
                (dir_ / "stdout.log").string());
    if (!WaitForPort(port_) || !WaitForPort(tls_port_))
      throw std::runtime_error("apache2 did not start: " + ReadFile(dir_ / "logs/error.log") +
                               ReadFile(dir_ / "stdout.log"));
  }
  pid_t master_pid() const { return proc_.pid(); }
  fs::path access_log() const { return dir_ / "logs/access.log"; }
};

/// A real gunicorn (Debian's) with sync workers on 127.0.0.1:port, serving a WSGI app of its own
/// (GET /status/N answers N, anything else 200), started in the foreground so that the test holds
/// its master's PID. max_requests: each worker exits after that many requests and the master
/// forks a new one (gunicorn's --max-requests, which servers use against leaks), so that workers
/// come and go under load. tls: HTTPS with a certificate of its own (Python's ssl). The access
/// log gives the request line and the status of every request gunicorn answered.
class Gunicorn {
 public:
  Gunicorn(int workers, int max_requests, bool tls)
      : dir_(MakeTempDir("gunicorn")), port_(FreePort()), tls_(tls) {
    std::ofstream(dir_ / "app.py") << R"PY(
def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    code = path.split("/")[2] if path.startswith("/status/") else "200"
    body = b"hello from gunicorn\n"
    start_response(code + " X", [("Content-Type", "text/plain"),
                                 ("Content-Length", str(len(body)))])
    return [body]
)PY";
    std::vector<std::string> argv = {
        "gunicorn", "-w", std::to_string(workers), "-k", "sync", "-b",
        "127.0.0.1:" + std::to_string(port_), "--chdir", dir_.string(), "--access-logfile",
        (dir_ / "access.log").string(), "--access-logformat", "%(r)s %(s)s"};
    if (max_requests) {
      argv.push_back("--max-requests");
      argv.push_back(std::to_string(max_requests));
    }
    if (tls) {
      MakeCertificate(dir_);
      for (const char* a : {"--certfile", "cert.pem", "--keyfile", "key.pem"})
        argv.push_back(a[0] == '-' ? a : (dir_ / a).string());
    }
    argv.push_back("app:app");
    proc_.Start(argv, (dir_ / "stdout.log").string());
    if (!WaitForPort(port_))
      throw std::runtime_error("gunicorn did not start: " + ReadFile(dir_ / "stdout.log"));
  }
  ~Gunicorn() {
    proc_.Stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  pid_t master_pid() const { return proc_.pid(); }
  std::string url(const std::string& path) const {
    return (tls_ ? "https" : "http") + std::string("://127.0.0.1:") + std::to_string(port_) + path;
  }
  fs::path access_log() const { return dir_ / "access.log"; }

 private:
  fs::path dir_;
  int port_;
  bool tls_;
  Process proc_;
};

/// A real lighttpd (Debian's, with mod_openssl) on 127.0.0.1:port() and, with TLS, tls_port(),
/// serving a temporary folder (/index.html), in the foreground so that the test holds its PID.
/// It ends a keep-alive connection after max_keepalive requests (its own default is 1000).
class Lighttpd : public ServerInDir {
 public:
  explicit Lighttpd(int max_keepalive = 100)
      : ServerInDir("lighttpd", true) {
    MakeCertificate(dir_);
    fs::create_directories(dir_ / "html");
    std::ofstream(dir_ / "html" / "index.html") << "<html>hello from lighttpd</html>\n";
    std::ofstream(dir_ / "both.pem")
        << ReadFile(dir_ / "cert.pem") << ReadFile(dir_ / "key.pem");
    std::ofstream conf(dir_ / "lighttpd.conf");
    conf << "server.document-root = \"" << (dir_ / "html").string() << "\"\n"
         << "server.bind = \"127.0.0.1\"\nserver.port = " << port_ << "\n"
         << "server.modules = (\"mod_openssl\")\n"
         << "server.max-keep-alive-requests = " << max_keepalive << "\n"
         << "$SERVER[\"socket\"] == \"127.0.0.1:" << tls_port_ << "\" {\n"
         << "  ssl.engine = \"enable\"\n  ssl.pemfile = \"" << (dir_ / "both.pem").string()
         << "\"\n}\n";
    conf.close();
    proc_.Start({"lighttpd", "-D", "-f", (dir_ / "lighttpd.conf").string()},
                (dir_ / "stdout.log").string());
    if (!WaitForPort(port_) || !WaitForPort(tls_port_))
      throw std::runtime_error("lighttpd did not start: " + ReadFile(dir_ / "stdout.log"));
  }
  pid_t pid() const { return proc_.pid(); }
};

/// A real HTTPS server that is not nginx, on 127.0.0.1:port with a certificate of its own:
///  - kPython: Python's ssl module around http.server (OpenSSL as libssl.so.3);
///  - kNode: Node.js https (OpenSSL linked into the node executable, its symbols exported);
///  - kGnuTls: gnutls-serv --http (GnuTLS, which reqmon does not hook).
/// Every server answers GET /status/N with status N and any other path with 200.
class TlsServer {
 public:
  enum Kind { kPython, kNode, kGnuTls };
  explicit TlsServer(Kind kind) : dir_(MakeTempDir("tls")), port_(FreePort()) {
    MakeCertificate(dir_);
    const std::string cert = (dir_ / "cert.pem").string(), key = (dir_ / "key.pem").string();
    const std::string port = std::to_string(port_);
    switch (kind) {
      case kPython:
        proc_.Start({"python3", "-c", R"PY(
import ssl, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        code = int(self.path.split('/')[2]) if self.path.startswith('/status/') else 200
        body = b'hello over tls\n'
        self.send_response(code)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
srv = ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
)PY", port, cert, key}, (dir_ / "server.log").string());
        break;
      case kNode:
        proc_.Start({"node", "-e", R"JS(
const fs = require('fs'), https = require('https');
const [port, cert, key] = process.argv.slice(1);
https.createServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key)}, (req, res) => {
  const m = req.url.match(/^\/status\/(\d+)/);
  const body = 'hello from node over tls\n';
  res.writeHead(m ? +m[1] : 200, {'Content-Length': body.length});
  res.end(body);
}).listen(+port, '127.0.0.1');
)JS", port, cert, key}, (dir_ / "server.log").string());
        break;
      case kGnuTls:
        proc_.Start({"gnutls-serv", "--http", "-q", "-p", port, "--x509certfile", cert,
                     "--x509keyfile", key}, (dir_ / "server.log").string());
        break;
    }
    if (!WaitForPort(port_)) throw std::runtime_error("TLS server did not start: " + ReadFile(dir_ / "server.log"));
  }
  ~TlsServer() {
    proc_.Stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  int port() const { return port_; }
  pid_t pid() const { return proc_.pid(); }
  std::string url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  fs::path dir_;
  int port_;
  Process proc_;
};

/// A server written as a Python script, run as `python3 -c script port args...` on a free port
/// of 127.0.0.1; `what` names it in the error if it does not start listening.
class PythonScriptServer {
 public:
  PythonScriptServer(const char* script, const std::string& what,
                     const std::vector<std::string>& args = {})
      : port_(FreePort()) {
    std::vector<std::string> argv = {"python3", "-c", script, std::to_string(port_)};
    argv.insert(argv.end(), args.begin(), args.end());
    proc_.Start(argv);
    if (!WaitForPort(port_)) throw std::runtime_error(what + " did not start");
  }
  int port() const { return port_; }

 private:
  int port_;
  Process proc_;
};

/// A slow upstream for nginx to proxy to: a threaded Python HTTP server that answers every GET
/// after sleeping 10 + (n % 4) * 10 ms, n being the number in the last path segment.
inline const char* kSlowUpstreamScript = R"PY(
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        try: n = int(self.path.rstrip('/').split('/')[-1])
        except ValueError: n = 0
        time.sleep(0.010 + (n % 4) * 0.010)
        body = b'slow answer\n'
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
)PY";

class SlowUpstream : public PythonScriptServer {
 public:
  SlowUpstream() : PythonScriptServer(kSlowUpstreamScript, "slow upstream") {}
};

/// A real `python3 -m http.server` on 127.0.0.1:port serving a temporary folder.
class PythonHttpServer {
 public:
  /// port: 0 for a free one.
  explicit PythonHttpServer(int port = 0) : dir_(MakeTempDir("pyhttp")), port_(port ? port : FreePort()) {
    std::ofstream(dir_ / "index.html") << "<html>hello from python</html>\n";
    std::ofstream(dir_ / "data.txt") << std::string(10000, 'p');
    proc_.Start({"python3", "-m", "http.server", std::to_string(port_), "--bind", "127.0.0.1",
                 "--directory", dir_.string()},
                (dir_.parent_path() / (dir_.filename().string() + ".log")).string());
    if (!WaitForPort(port_)) throw std::runtime_error("python3 -m http.server did not start");
  }
  ~PythonHttpServer() {
    proc_.Stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  int port() const { return port_; }
  pid_t pid() const { return proc_.pid(); }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  fs::path dir_;
  int port_;
  Process proc_;
};

/// Drives `urls` with curl. keep_alive: one curl process fetching all of them over one
/// connection; otherwise one connection per request (Connection: close). Returns how many
/// requests curl completed (counted from its own per-request output).
inline int Curl(const std::vector<std::string>& urls, bool keep_alive) {
  int done = 0;
  auto run = [&](const std::string& args) {
    std::string out = Run("curl -sk -w 'RQCODE:%{http_code}\\n' " + args + " 2>/dev/null");
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      size_t at = line.find("RQCODE:");
      if (at != std::string::npos && line.compare(at + 7, 3, "000") != 0) ++done;
    }
  };
  if (keep_alive) {
    // curl reuses one connection for consecutive URLs to the same host.
    std::string args;
    for (const auto& u : urls) args += "-o /dev/null '" + u + "' ";
    run(args);
  } else {
    for (const auto& u : urls) run("-o /dev/null -H 'Connection: close' '" + u + "'");
  }
  return done;
}

}  // namespace reqmon::testing
