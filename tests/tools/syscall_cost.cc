// SPDX-License-Identifier: MIT
// syscall_cost: what a process that reqmon does not observe pays per syscall, for the benchmark
// (scripts/bench.sh runs it with and without reqmon attached to another process). Prints one
// line: nanoseconds per getppid(), per 100-byte write to /dev/null, and per 100-byte write and
// read over a loopback TCP connection to itself.
//   syscall_cost [ITERATIONS]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

template <typename F>
double NsPerOp(long n, F&& op) {
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i)
    if (!op()) return -1;
  auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  long n = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 200000;
  if (n < 1) {
    std::fprintf(stderr, "usage: syscall_cost [ITERATIONS]\n");
    return 2;
  }
  int lst = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof(a);
  if (lst < 0 || bind(lst, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(lst, 1) != 0 ||
      getsockname(lst, reinterpret_cast<sockaddr*>(&a), &alen) != 0) {
    std::perror("syscall_cost: listen on loopback");
    return 1;
  }
  int cli = socket(AF_INET, SOCK_STREAM, 0);
  if (cli < 0 || connect(cli, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    std::perror("syscall_cost: connect");
    return 1;
  }
  int srv = accept(lst, nullptr, nullptr);
  int one = 1;
  setsockopt(cli, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  int null = open("/dev/null", O_WRONLY);
  if (srv < 0 || null < 0) {
    std::perror("syscall_cost: accept or /dev/null");
    return 1;
  }
  char buf[100];
  std::memset(buf, 'x', sizeof(buf));
  double getppid_ns = NsPerOp(n, [] { return getppid() > 0; });
  double null_ns = NsPerOp(n, [&] { return write(null, buf, sizeof(buf)) == sizeof(buf); });
  double tcp_ns = NsPerOp(n, [&] {
    if (write(cli, buf, sizeof(buf)) != sizeof(buf)) return false;
    size_t got = 0;
    while (got < sizeof(buf)) {
      ssize_t r = read(srv, buf + got, sizeof(buf) - got);
      if (r <= 0) return false;
      got += static_cast<size_t>(r);
    }
    return true;
  });
  if (getppid_ns < 0 || null_ns < 0 || tcp_ns < 0) {
    std::fprintf(stderr, "syscall_cost: a syscall failed\n");
    return 1;
  }
  std::printf("%.1f %.1f %.1f\n", getppid_ns, null_ns, tcp_ns);
  return 0;
}
