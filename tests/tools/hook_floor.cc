// SPDX-License-Identifier: MIT
// hook_floor: loads a BPF object of programs on the socket tracepoints reqmon's data programs use,
// attaches them, prints "attached" and holds them until SIGINT or SIGTERM. scripts/bench.sh
// measures nginx with them attached:
//   hook_floor hook_floor.bpf.o        programs that return at once: the cost of the hooks
//                                      themselves, a floor under any capture built on them;
//   hook_floor min_capture.bpf.o PID   the least a capture of HTTP heads does, for process PID
//                                      (its const volatile target_tgid); the loader drains the
//                                      object's ring buffer every 20 ms and throws the records
//                                      away, and prints how many it drained when it stops.
#include <bpf/libbpf.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

namespace {

// Sets the object's read-only global target_tgid (its .rodata holds nothing else).
bool SetTarget(bpf_object* obj, unsigned pid) {
  bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    const char* name = bpf_map__name(map);
    size_t n = std::strlen(name);
    if (!bpf_map__is_internal(map) || n < 7 || std::strcmp(name + n - 7, ".rodata") != 0) continue;
    size_t size = 0;
    auto* data = static_cast<unsigned*>(const_cast<void*>(bpf_map__initial_value(map, &size)));
    if (!data || size < sizeof(unsigned)) return false;
    data[0] = pid;
    return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: hook_floor OBJECT [PID]\n");
    return 2;
  }
  libbpf_set_print([](libbpf_print_level, const char*, va_list) { return 0; });
  bpf_object* obj = bpf_object__open_file(argv[1], nullptr);
  if (!obj) {
    std::fprintf(stderr, "hook_floor: cannot open %s: %s\n", argv[1], std::strerror(errno));
    return 1;
  }
  if (argc == 3) {
    char* end = nullptr;
    unsigned long pid = std::strtoul(argv[2], &end, 10);
    if (!*argv[2] || *end || pid == 0 || pid > 4194304) {
      std::fprintf(stderr, "hook_floor: not a PID: %s\n", argv[2]);
      return 2;
    }
    if (!SetTarget(obj, static_cast<unsigned>(pid))) {
      std::fprintf(stderr, "hook_floor: %s has no target_tgid to set\n", argv[1]);
      return 1;
    }
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
  ring_buffer* rb = nullptr;
  unsigned long long drained = 0;
  if (bpf_map* ring = bpf_object__find_map_by_name(obj, "ring")) {
    rb = ring_buffer__new(
        bpf_map__fd(ring),
        [](void* n, void*, size_t) {
          ++*static_cast<unsigned long long*>(n);
          return 0;
        },
        &drained, nullptr);
    if (!rb) {
      std::fprintf(stderr, "hook_floor: cannot read the ring buffer: %s\n", std::strerror(errno));
      return 1;
    }
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  std::printf("attached\n");
  std::fflush(stdout);
  if (rb) {
    // The programs never wake the reader: it drains on a 20 ms timer (reqmon's own timer).
    const timespec tick{0, 20 * 1000 * 1000};
    while (sigtimedwait(&stop, nullptr, &tick) < 0) ring_buffer__consume(rb);
    ring_buffer__consume(rb);
    ring_buffer__free(rb);
    std::printf("drained %llu\n", drained);
  } else {
    int sig;
    sigwait(&stop, &sig);
  }
  for (bpf_link* l : links) bpf_link__destroy(l);
  bpf_object__close(obj);
  return 0;
}
