// SPDX-License-Identifier: MIT
#pragma once
// The demo that `reqmon` runs when given no target: a real web server (python3 -m http.server
// on a loopback port, serving a temporary folder) and a light, bounded stream of requests to it,
// so that the dashboard has something to show on a fresh machine.

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

namespace reqmon {

class Demo {
 public:
  /// Starts the server and the traffic. nullptr and `*error` if python3 cannot be started.
  static std::unique_ptr<Demo> Start(std::string* error);
  ~Demo();
  pid_t server_pid() const { return pid_; }
  int port() const { return port_; }

 private:
  Demo() = default;
  void Traffic();
  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
  std::atomic<bool> stop_{false};
  std::thread traffic_;
};

}  // namespace reqmon
