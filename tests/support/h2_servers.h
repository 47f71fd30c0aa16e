// SPDX-License-Identifier: MIT
#pragma once
// Real HTTP/2 peers for tests: nginx with `listen ... http2` in the clear (h2c, prior
// knowledge; optionally passing gRPC to a backend), a Python h2 server taking connections by
// "Upgrade: h2c", and a Python gRPC server (grpcio, generic handlers on raw bytes: no code
// generation) with a client.

#include <fstream>
#include <string>

#include "servers.h"

namespace reqmon::testing {

/// nginx (master + 2 workers) serving HTTP/2 in the clear on 127.0.0.1:port. The access log
/// records "$request_method $uri $status $request_time $server_protocol".
class NginxH2c {
 public:
  /// grpc_port: when non-zero, /demo.Greeter/ is passed to a gRPC server on that port.
  /// tls: HTTP/2 over TLS instead (ALPN h2), with a certificate of its own.
  /// extra: more of the server block (locations).
  explicit NginxH2c(int grpc_port = 0, bool tls = false, const std::string& extra = "")
      : dir_(MakeTempDir("nginx-h2")), port_(FreePort()), tls_(tls) {
    if (tls) MakeCertificate(dir_);
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
         << "  server {\n    listen 127.0.0.1:" << port_ << (tls ? " ssl" : "") << " http2;\n";
    if (tls)
      conf << "    ssl_certificate " << (dir_ / "cert.pem").string() << ";\n"
           << "    ssl_certificate_key " << (dir_ / "key.pem").string() << ";\n";
    conf
         << "    root " << (dir_ / "html").string() << ";\n"
         << "    location = /status/201 { return 201 'created\\n'; }\n"
         << "    location = /status/500 { return 500 'oops\\n'; }\n"
         << "    location /api/ { return 200 '{\"ok\":true}\\n'; }\n";
    if (grpc_port)
      conf << "    location /demo.Greeter/ { grpc_pass grpc://127.0.0.1:" << grpc_port << "; }\n";
    conf << extra << "  }\n}\n";
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
    return (tls_ ? "https" : "http") + std::string("://127.0.0.1:") + std::to_string(port_) + path;
  }
  fs::path access_log() const { return dir_ / "logs/access.log"; }
  fs::path html_dir() const { return dir_ / "html"; }

 private:
  fs::path dir_;
  int port_;
  bool tls_;
  Process proc_;
};

/// Debian's python3 (python3-grpcio is installed for it, whatever python3 is first in PATH).
inline std::string SystemPython() {
  return fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

/// A small HTTP/2 server (Python h2) on 127.0.0.1:port that takes connections by
/// "Upgrade: h2c" (RFC 7540 §3.2: the HTTP/1.1 request becomes stream 1, answered in HTTP/2) and
/// answers every stream: 404 for paths containing "missing", else 200. Each answer is logged as
/// "PATH STATUS" in log_file().
class H2cUpgradeServer {
 public:
  H2cUpgradeServer() : dir_(MakeTempDir("h2c-up")), port_(FreePort()) {
    static const char* kScript = R"PY(
import sys, socket, threading
import h2.connection, h2.config, h2.events
port, log = int(sys.argv[1]), open(sys.argv[2], 'a', buffering=1)
lock = threading.Lock()
def respond(conn, sock, sid, path):
    status = '404' if b'missing' in path else '200'
    body = b'upgraded ' + path + b'\n'
    conn.send_headers(sid, [(':status', status), ('content-length', str(len(body))),
                            ('content-type', 'text/plain')])
    conn.send_data(sid, body, end_stream=True)
    sock.sendall(conn.data_to_send())
    with lock: log.write(path.decode() + ' ' + status + '\n')
def handle(sock):
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = sock.recv(65536)
        if not chunk: return
        data += chunk
    head, buf = data.split(b'\r\n\r\n', 1)
    lines = head.split(b'\r\n')
    path = lines[0].split(b' ')[1]
    hdrs = {}
    for l in lines[1:]:
        k, v = l.split(b':', 1)
        hdrs[k.strip().lower()] = v.strip()
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
    sock.sendall(b'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n')
    conn.initiate_upgrade_connection(hdrs[b'http2-settings'])
    sock.sendall(conn.data_to_send())
    respond(conn, sock, 1, path)
    while True:
        if buf:
            for ev in conn.receive_data(buf):
                if isinstance(ev, h2.events.RequestReceived):
                    respond(conn, sock, ev.stream_id, dict(ev.headers)[b':path'])
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    sock.close(); return
            sock.sendall(conn.data_to_send())
        buf = sock.recv(65536)
        if not buf: break
    sock.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', port))
s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
)PY";
    proc_.Start({SystemPython(), "-c", kScript, std::to_string(port_), log_file().string()},
                (dir_ / "server.out").string());
    if (!WaitForPort(port_)) throw std::runtime_error("h2c upgrade server did not start: " + ReadFile(dir_ / "server.out"));
  }
  ~H2cUpgradeServer() {
    proc_.Stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  int port() const { return port_; }
  pid_t pid() const { return proc_.pid(); }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  fs::path log_file() const { return dir_ / "answers.log"; }

 private:
  fs::path dir_;
  int port_;
  Process proc_;
};

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
