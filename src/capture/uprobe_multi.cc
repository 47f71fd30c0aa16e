// SPDX-License-Identifier: MIT
#include "reqmon/capture/uprobe_multi.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

namespace reqmon {
namespace {

// BPF_LINK_CREATE's arguments for uprobe_multi (include/uapi/linux/bpf.h of kernel 6.6+), laid
// over union bpf_attr, which Debian 12's headers (6.1) know without this member.
struct UprobeMultiAttr {
  uint32_t prog_fd;
  uint32_t target_fd;
  uint32_t attach_type;
  uint32_t flags;
  uint64_t path;
  uint64_t offsets;
  uint64_t ref_ctr_offsets;
  uint64_t cookies;
  uint32_t cnt;
  uint32_t multi_flags;  // BPF_F_UPROBE_MULTI_RETURN
  uint32_t pid;
};
static_assert(sizeof(UprobeMultiAttr) <= sizeof(union bpf_attr));
constexpr uint32_t kUprobeMultiReturn = 1;

int LinkCreate(const UprobeMultiAttr& a) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  std::memcpy(&attr, &a, sizeof(a));
  int fd = static_cast<int>(syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr)));
  return fd < 0 ? -errno : fd;
}

// libbpf's probe_uprobe_multi_link (1.4+): a link on "/" fails with EBADF where the kernel has
// uprobe_multi links; the same with an invalid PID (-1) fails with EINVAL, before the path is
// looked at, only where the kernel has the fix that made the links filter by process.
bool Probe(std::string* why) {
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},  // r0 = 0
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},                  // exit
  };
  LIBBPF_OPTS(bpf_prog_load_opts, opts,
              .expected_attach_type = static_cast<bpf_attach_type>(kBpfTraceUprobeMulti));
  int prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, "rq_um_probe", "GPL", insns, 2, &opts);
  if (prog < 0) {
    *why = std::string("a program of that attach type does not load: ") + std::strerror(errno);
    return false;
  }
  uint64_t offset = 0;
  UprobeMultiAttr a{};
  a.prog_fd = static_cast<uint32_t>(prog);
  a.attach_type = kBpfTraceUprobeMulti;
  a.path = reinterpret_cast<uintptr_t>("/");
  a.offsets = reinterpret_cast<uintptr_t>(&offset);
  a.cnt = 1;
  int err = LinkCreate(a);
  bool ok = true;
  if (err != -EBADF) {
    *why = std::string("the kernel makes no uprobe_multi links (") + std::strerror(-err) + ")";
    ok = false;
  } else {
    a.pid = static_cast<uint32_t>(-1);
    err = LinkCreate(a);
    if (err != -EINVAL) {
      *why = "the kernel's uprobe_multi links filter by thread, not by process (before 6.9)";
      ok = false;
    }
  }
  if (err >= 0) close(err);
  close(prog);
  return ok;
}

}  // namespace

bool UprobeMultiUsable(std::string* why) {
  static std::once_flag once;
  static bool usable = false;
  static std::string reason;
  std::call_once(once, [] { usable = Probe(&reason); });
  if (why) *why = reason;
  return usable;
}

int AttachUprobeMulti(int prog_fd, const std::string& path, std::span<const uint64_t> offsets,
                      std::span<const uint64_t> cookies, bool retprobe, pid_t pid) {
  if (offsets.empty() || cookies.size() != offsets.size()) return -EINVAL;
  UprobeMultiAttr a{};
  a.prog_fd = static_cast<uint32_t>(prog_fd);
  a.attach_type = kBpfTraceUprobeMulti;
  a.path = reinterpret_cast<uintptr_t>(path.c_str());
  a.offsets = reinterpret_cast<uintptr_t>(offsets.data());
  a.cookies = reinterpret_cast<uintptr_t>(cookies.data());
  a.cnt = static_cast<uint32_t>(offsets.size());
  a.multi_flags = retprobe ? kUprobeMultiReturn : 0;
  a.pid = static_cast<uint32_t>(pid);
  return LinkCreate(a);
}

}  // namespace reqmon
