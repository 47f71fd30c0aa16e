// SPDX-License-Identifier: MIT
#pragma once
// Real HTTP/2 peers for tests: nginx with `listen ... http2` in the clear (h2c, prior
// knowledge), nghttpd without TLS (h2c by prior knowledge or by Upgrade: h2c), and a Python
// gRPC server (grpcio, generic handlers on raw bytes: no code generation) with a client.

#include <fstream>
#include <string>

#include "servers.h"

namespace reqmon::testing {

/// nginx (master + 2 workers) serving HTTP/2 in the clear on 127.0.0.1:port. The access log
/// records "$request_method $uri $status $request_time $server_protocol".
class NginxH2c {
 public:
  /// grpc_port: when non-zero, /demo.Greeter/ is passed to a gRPC server on that port.
  explicit NginxH2c(int grpc_port = 0) : dir_(MakeTempDir("nginx-h2")), port_(FreePort()) {
    fs::create_directories(dir_ / "html");
    fs::create_directories(dir_ / "logs");
    std::ofstream(dir_ / "html" / "index.html") << "<html>hello over h2c</html>\n";
    std::ofstream conf(dir_ / "nginx.conf");
    conf << "worker_processes 2;\ndaemon off;\nmaster_process on;\npid " << (dir_ / "nginx.pid").string()
         << ";\nerror_log " << (dir_ / "logs/error.log").string() << " warn;\n"
         << "events { worker_connections 1024; }\n"
         << "http {\n"
         << "  log_format timed '$request_method $uri $status $request_time $server_protocol';\n"
         << "  access_log " << (dir_ / "logs/access.log").string() << " timed;\n"
         << "  client_body_temp_path " << (dir_ / "body").string() << ";\n"
         << "  keepalive_requests 100000;\n  http2_max_requests 100000;\n"
         << "  server {\n    listen 127.0.0.1:" << port_ << " http2;\n"
         << "    root " << (dir_ / "html").string() << ";\n"
         << "    location = /status/201 { return 201 'created\\n'; }\n"
         << "    location = /status/500 { return 500 'oops\\n'; }\n"
         << "    location /api/ { return 200 '{\"ok\":true}\\n'; }\n";
    if (grpc_port)
      conf << "    location /demo.Greeter/ { grpc_pass grpc://127.0.0.1:" << grpc_port << "; }\n";
    conf << "  }\n}\n";
    conf.close();
    proc_.Start({Nginx::NginxBinary(), "-p", dir_.string(), "-c", (dir_ / "nginx.conf").string()},
                (dir_ / "stdout.log").string());
    if (!WaitForPort(port_))
      throw std::runtime_error("nginx (h2c) did not start: " + ReadFile(dir_ / "logs/error.log") +
                               ReadFile(dir_ / "stdout.log"));
  }
  ~NginxH2c() {
    proc_.Stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  int port() const { return port_; }
  pid_t master_pid() const { return proc_.pid(); }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  fs::path access_log() const { return dir_ / "logs/access.log"; }

 private:
  fs::path dir_;
  int port_;
  Process proc_;
};

/// nghttpd without TLS (answers h2c by prior knowledge and by Upgrade: h2c), serving a folder.
class Nghttpd {
 public:
  Nghttpd() : dir_(MakeTempDir("nghttpd")), port_(FreePort()) {
    std::ofstream(dir_ / "index.html") << "<html>hello from nghttpd</html>\n";
    fs::create_directories(dir_ / "docs");
    std::ofstream(dir_ / "docs" / "a.txt") << "a\n";
    proc_.Start({"nghttpd", "--no-tls", "-a", "127.0.0.1", "-d", dir_.string(),
                 std::to_string(port_)},
                (dir_.parent_path() / (dir_.filename().string() + ".log")).string());
    if (!WaitForPort(port_)) throw std::runtime_error("nghttpd did not start");
  }
  ~Nghttpd() {
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

/// Debian's python3 (python3-grpcio is installed for it, whatever python3 is first in PATH).
inline std::string SystemPython() {
  return fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

/// A Python gRPC server on 127.0.0.1:port with service demo.Greeter: SayHello answers OK,
/// Find aborts with NOT_FOUND (5), Fail aborts with INTERNAL (13). Raw bytes, no protobuf.
class GrpcServer {
 public:
  GrpcServer() : port_(FreePort()) {
    static const char* kScript = R"PY(
import sys, grpc
from concurrent import futures
def say(req, ctx): return b'hello ' + req
def find(req, ctx): ctx.abort(grpc.StatusCode.NOT_FOUND, 'no such thing')
def fail(req, ctx): ctx.abort(grpc.StatusCode.INTERNAL, 'broken')
h = grpc.method_handlers_generic_handler('demo.Greeter', {
    'SayHello': grpc.unary_unary_rpc_method_handler(say),
    'Find': grpc.unary_unary_rpc_method_handler(find),
    'Fail': grpc.unary_unary_rpc_method_handler(fail)})
s = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
s.add_generic_rpc_handlers((h,))
s.add_insecure_port('127.0.0.1:' + sys.argv[1])
s.start()
s.wait_for_termination()
)PY";
    proc_.Start({SystemPython(), "-c", kScript, std::to_string(port_)});
    if (!WaitForPort(port_)) throw std::runtime_error("gRPC server did not start");
  }
  int port() const { return port_; }
  pid_t pid() const { return proc_.pid(); }

 private:
  int port_;
  Process proc_;
};

/// The gRPC client script: argv[1] = port, then a list of METHOD:COUNT; each call's outcome is
/// printed as "CODE_NAME". With "--pause FILE" before the list, the first group runs, then the
/// client prints PAUSED and waits (channel open) until FILE exists, then runs the rest.
inline const char* kGrpcClientScript = R"PY(
import sys, os, time, grpc
port = sys.argv[1]
args = sys.argv[2:]
pause = None
if args and args[0] == '--pause':
    pause = args[1]; args = args[2:]
ch = grpc.insecure_channel('127.0.0.1:' + port)
def run(group):
    m, n = group.split(':')
    call = ch.unary_unary('/demo.Greeter/' + m)
    for i in range(int(n)):
        try:
            call(b'x%d' % i, timeout=10); print('OK', flush=True)
        except grpc.RpcError as e:
            print(e.code().name, flush=True)
for k, g in enumerate(args):
    run(g)
    if pause and k == 0:
        print('PAUSED', flush=True)
        while not os.path.exists(pause): time.sleep(0.05)
ch.close()
)PY";

}  // namespace reqmon::testing
