// SPDX-License-Identifier: MIT
#include "demo.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

namespace reqmon {
namespace {

namespace fs = std::filesystem;

int FreeLoopbackPort() {
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

int Connect(int port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{2, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(s);
    return -1;
  }
  return s;
}

}  // namespace

std::unique_ptr<Demo> Demo::Start(std::string* error) {
  std::unique_ptr<Demo> d(new Demo());
  char tmpl[] = "/tmp/reqmon-demo-XXXXXX";
  if (!mkdtemp(tmpl)) {
    *error = "cannot create a folder for the demo server";
    return nullptr;
  }
  d->dir_ = tmpl;
  fs::create_directories(d->dir_ + "/api");
  fs::create_directories(d->dir_ + "/static");
  std::ofstream(d->dir_ + "/index.html") << "<html><body>reqmon demo server</body></html>\n";
  std::ofstream(d->dir_ + "/static/app.js") << std::string(4000, '/') << "\n";
  std::ofstream(d->dir_ + "/static/style.css") << "body { color: #222; }\n";
  std::ofstream(d->dir_ + "/api/health") << "{\"ok\":true}\n";
  std::ofstream(d->dir_ + "/report.csv") << std::string(60000, 'x') << "\n";
  d->port_ = FreeLoopbackPort();

  pid_t pid = fork();
  if (pid < 0) {
    *error = "cannot fork the demo server";
    return nullptr;
  }
  if (pid == 0) {
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    std::string port = std::to_string(d->port_);
    execlp("python3", "python3", "-m", "http.server", port.c_str(), "--bind", "127.0.0.1",
           "--directory", d->dir_.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  d->pid_ = pid;
  // Wait for it to listen.
  for (int i = 0; i < 100; ++i) {
    int s = Connect(d->port_);
    if (s >= 0) {
      close(s);
      d->traffic_ = std::thread(&Demo::Traffic, d.get());
      return d;
    }
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) break;
    usleep(50000);
  }
  *error = "the demo server (python3 -m http.server) did not start; is python3 installed?";
  return nullptr;
}

Demo::~Demo() {
  stop_ = true;
  if (traffic_.joinable()) traffic_.join();
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

// A few requests per second over short connections, a mix of pages, assets, API calls and
// misses, with a burst now and then.
void Demo::Traffic() {
  static const std::vector<std::string> paths = {
      "/", "/index.html", "/static/app.js", "/static/style.css", "/api/health", "/report.csv",
      "/api/users/42", "/api/orders/7f3e9c1a-1b2c-4d5e-8f90-123456789abc", "/favicon.ico"};
  std::mt19937 rng(12345);
  while (!stop_) {
    int burst = (rng() % 20 == 0) ? 15 : 1 + rng() % 3;
    for (int i = 0; i < burst && !stop_; ++i) {
      const std::string& p = paths[rng() % paths.size()];
      std::string req = (rng() % 10 == 0 ? "HEAD " : "GET ") + p +
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: reqmon-demo\r\n"
                        "Connection: close\r\n\r\n";
      int s = Connect(port_);
      if (s < 0) continue;
      if (write(s, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
        char buf[8192];
        while (read(s, buf, sizeof(buf)) > 0) {
        }
      }
      close(s);
    }
    for (int i = 0; i < 5 && !stop_; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(40 + rng() % 60));
  }
}

}  // namespace reqmon
