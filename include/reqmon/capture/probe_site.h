// SPDX-License-Identifier: MIT
#pragma once
/// Where on a function a uprobe costs least (x86-64 machine code).
///
/// A uprobe traps at the instruction it replaces. The kernel then either emulates that
/// instruction (push of a register, call, jmp, jcc, nop) or copies it out of line and
/// single-steps it, which is a second trap. Measured on this machine's kernel (6.18 in a VM), a
/// hit costs about 0.9 to 1.2 us on an emulated instruction and 9.7 to 11.8 us on a single-stepped
/// one (`sub $n,%rsp`, `test`, `endbr64`): the second trap is nine tenths of a hit's cost. So a
/// probe that can go on an emulated instruction without changing what it sees should go there:
///  - past leading instructions that write neither the argument registers nor the stack
///    pointer nor memory (endbr64, test of registers), the probe sees what it would see at the
///    entry, return address at the stack top included (so a uretprobe works there too);
///  - through a pass-through wrapper (`sub $imm8,%rsp; call T` first: T receives the wrapper's
///    own arguments in the same registers), the probe can go on T's entry.
/// All functions take the code as bytes read from the ELF file at a file offset `off`; offsets
/// they return are file offsets in the same section (a call's target is relative, so file
/// offsets and addresses differ by the same constant). Other architectures: every function
/// returns "nothing found" and probes stay on the entries.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace reqmon::probe_site {

/// Whether the kernel emulates the instruction at the start of `code` (no single step).
bool Emulated(std::span<const uint8_t> code);

/// The first offset from `off` (a function's entry, its code in `code`) where a probe sees the
/// same argument registers and stack as at the entry and the instruction is emulated, skipping
/// only instructions that change neither; `off` itself when there is none.
uint64_t CheapEntry(std::span<const uint8_t> code, uint64_t off);

/// T when the function at `off` starts (after endbr64) with `sub $imm8,%rsp; call T`: T then
/// gets the wrapper's own arguments, in the same registers. 0 when it does not.
uint64_t PassThroughCallee(std::span<const uint8_t> code, uint64_t off);

/// Whether the code at `off` holds a direct call (call rel32) to `target`.
bool CallsDirectly(std::span<const uint8_t> code, uint64_t off, uint64_t target);

/// Up to `n` bytes of a file from file offset `off` (none when it cannot be read).
std::vector<uint8_t> ReadFileBytes(const std::string& path, uint64_t off, size_t n);

}  // namespace reqmon::probe_site
