// SPDX-License-Identifier: MIT
// hook_floor: loads tests/tools/hook_floor.bpf.o (two programs that return at once, on the
// socket tracepoints reqmon's data programs use), attaches them, prints "attached" and holds
// them until SIGINT or SIGTERM. scripts/bench.sh measures nginx with them attached: the cost of
// the hooks themselves, a floor under any capture built on them.
//   hook_floor OBJECT
#include <bpf/libbpf.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: hook_floor OBJECT\n");
    return 2;
  }
  libbpf_set_print([](libbpf_print_level, const char*, va_list) { return 0; });
  bpf_object* obj = bpf_object__open_file(argv[1], nullptr);
  if (!obj) {
    std::fprintf(stderr, "hook_floor: cannot open %s: %s\n", argv[1], std::strerror(errno));
    return 1;
  }
  if (int err = bpf_object__load(obj)) {
    std::fprintf(stderr, "hook_floor: cannot load %s: %s\n", argv[1], std::strerror(-err));
    return 1;
  }
  std::vector<bpf_link*> links;
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj) {
    bpf_link* l = bpf_program__attach(prog);
    if (!l) {
      std::fprintf(stderr, "hook_floor: cannot attach %s: %s\n", bpf_program__name(prog),
                   std::strerror(errno));
      return 1;
    }
    links.push_back(l);
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  std::printf("attached\n");
  std::fflush(stdout);
  int sig;
  sigwait(&stop, &sig);
  for (bpf_link* l : links) bpf_link__destroy(l);
  bpf_object__close(obj);
  return 0;
}
