// SPDX-License-Identifier: MIT
#include "reqmon/capture/probe_site.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

namespace reqmon::probe_site {
namespace {

#if defined(__x86_64__)
constexpr bool kX86 = true;
#else
constexpr bool kX86 = false;
#endif

bool Endbr64(std::span<const uint8_t> c) {
  return c.size() >= 4 && c[0] == 0xf3 && c[1] == 0x0f && c[2] == 0x1e && c[3] == 0xfa;
}

// `test reg,reg` (85 /r with both operands registers), with an optional REX prefix: reads
// registers, writes only the flags. Its length, or 0 when it is not one.
size_t RegisterTest(std::span<const uint8_t> c) {
  size_t i = 0;
  if (!c.empty() && (c[0] & 0xf0) == 0x40) i = 1;  // REX
  if (c.size() < i + 2 || c[i] != 0x85 || (c[i + 1] & 0xc0) != 0xc0) return 0;
  return i + 2;
}

int32_t Rel32(std::span<const uint8_t> c, size_t at) {
  uint32_t v = 0;
  std::memcpy(&v, c.data() + at, 4);  // x86 is little-endian
  return static_cast<int32_t>(v);
}

}  // namespace

bool Emulated(std::span<const uint8_t> c) {
  if (!kX86 || c.empty()) return false;
  const uint8_t b = c[0];
  if (b >= 0x50 && b <= 0x57) return true;                                // push r64
  if (b == 0x41 && c.size() >= 2 && c[1] >= 0x50 && c[1] <= 0x57) return true;  // push r8-r15
  if (b == 0xe8 || b == 0xe9 || b == 0xeb || b == 0x90) return true;      // call, jmp, nop
  if (b >= 0x70 && b <= 0x7f) return true;                                // jcc rel8
  if (b == 0x0f && c.size() >= 2 && ((c[1] >= 0x80 && c[1] <= 0x8f) || c[1] == 0x1f))
    return true;                                                          // jcc rel32, nopl
  return false;
}

uint64_t CheapEntry(std::span<const uint8_t> c, uint64_t off) {
  if (!kX86) return off;
  size_t i = 0;
  for (int steps = 0; steps < 4 && i < c.size(); ++steps) {
    if (Emulated(c.subspan(i))) return off + i;
    if (Endbr64(c.subspan(i))) {
      i += 4;
    } else if (size_t n = RegisterTest(c.subspan(i))) {
      i += n;
    } else {
      break;
    }
  }
  return off;
}

uint64_t PassThroughCallee(std::span<const uint8_t> c, uint64_t off) {
  if (!kX86) return 0;
  size_t i = Endbr64(c) ? 4 : 0;
  // sub $imm8,%rsp (48 83 ec ib), then call rel32 (e8 cd).
  if (c.size() < i + 9 || c[i] != 0x48 || c[i + 1] != 0x83 || c[i + 2] != 0xec) return 0;
  i += 4;
  if (c[i] != 0xe8) return 0;
  return off + i + 5 + static_cast<int64_t>(Rel32(c, i + 1));
}

bool CallsDirectly(std::span<const uint8_t> c, uint64_t off, uint64_t target) {
  if (!kX86) return false;
  for (size_t i = 0; i + 5 <= c.size(); ++i)
    if (c[i] == 0xe8 && off + i + 5 + static_cast<int64_t>(Rel32(c, i + 1)) == target) return true;
  return false;
}

std::vector<uint8_t> ReadFileBytes(const std::string& path, uint64_t off, size_t n) {
  std::vector<uint8_t> out(n);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  ssize_t got = pread(fd, out.data(), n, static_cast<off_t>(off));
  close(fd);
  out.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return out;
}

}  // namespace reqmon::probe_site
