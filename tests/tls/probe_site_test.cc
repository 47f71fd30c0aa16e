// SPDX-License-Identifier: MIT
// Where a uprobe costs least: the decoding of crafted x86-64 code, then the plan for the
// system's real libssl (Debian's OpenSSL 3.0): SSL_read and SSL_read_ex share one probe on their
// internal function, whose first instruction the kernel emulates; the same for writes.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "reqmon/capture/probe_site.h"
#include "reqmon/capture/tls_probes.h"

namespace reqmon {
namespace {

namespace fs = std::filesystem;
namespace ps = probe_site;

using Code = std::vector<uint8_t>;
std::span<const uint8_t> S(const Code& c) { return {c.data(), c.size()}; }

#if defined(__x86_64__)
TEST(ProbeSiteTest, EmulatedInstructionsAreTheOnesTheKernelDoesNotSingleStep) {
  EXPECT_TRUE(ps::Emulated(S({0x55})));              // push %rbp
  EXPECT_TRUE(ps::Emulated(S({0x41, 0x55})));        // push %r13
  EXPECT_TRUE(ps::Emulated(S({0xe8, 0, 0, 0, 0})));  // call
  EXPECT_TRUE(ps::Emulated(S({0x74, 0x02})));        // je rel8
  EXPECT_TRUE(ps::Emulated(S({0x0f, 0x84, 0, 0, 0, 0})));  // je rel32
  EXPECT_TRUE(ps::Emulated(S({0x0f, 0x1f, 0x44, 0, 0})));  // nopl
  EXPECT_FALSE(ps::Emulated(S({0x48, 0x83, 0xec, 0x18})));    // sub $0x18,%rsp
  EXPECT_FALSE(ps::Emulated(S({0xf3, 0x0f, 0x1e, 0xfa})));    // endbr64
  EXPECT_FALSE(ps::Emulated(S({0x48, 0x85, 0xff})));          // test %rdi,%rdi
  EXPECT_FALSE(ps::Emulated(S({0x41, 0x89, 0xc5})));          // mov %eax,%r13d
  EXPECT_FALSE(ps::Emulated(S({})));
}

TEST(ProbeSiteTest, CheapEntrySkipsOnlyWhatChangesNoArgumentNorTheStack) {
  // endbr64; push %rbp: the push, 4 bytes in.
  EXPECT_EQ(ps::CheapEntry(S({0xf3, 0x0f, 0x1e, 0xfa, 0x55}), 0x1000), 0x1004u);
  // test %rdi,%rdi; je: the je (SSL_free's start in Debian's libssl3).
  EXPECT_EQ(ps::CheapEntry(S({0x48, 0x85, 0xff, 0x0f, 0x84, 1, 0, 0, 0}), 0x1000), 0x1003u);
  // An emulated first instruction: the entry itself.
  EXPECT_EQ(ps::CheapEntry(S({0x41, 0x55, 0x41, 0x54}), 0x1000), 0x1000u);
  // sub $0x18,%rsp first: nothing can be skipped, the entry.
  EXPECT_EQ(ps::CheapEntry(S({0x48, 0x83, 0xec, 0x18, 0x55}), 0x1000), 0x1000u);
  // mov %rdi,%rbx writes a register: not skipped, even though a push follows.
  EXPECT_EQ(ps::CheapEntry(S({0x48, 0x89, 0xfb, 0x55}), 0x1000), 0x1000u);
  // test of memory (mod != 3) is not skipped either.
  EXPECT_EQ(ps::CheapEntry(S({0x48, 0x85, 0x07, 0x55}), 0x1000), 0x1000u);
  // Code that ends before an emulated instruction: the entry.
  EXPECT_EQ(ps::CheapEntry(S({0xf3, 0x0f, 0x1e, 0xfa}), 0x1000), 0x1000u);
}

TEST(ProbeSiteTest, APassThroughWrapperNamesItsCallee) {
  // sub $0x8,%rsp; call rel32 0x100: the callee is after the call (0x1009) + 0x100.
  EXPECT_EQ(ps::PassThroughCallee(S({0x48, 0x83, 0xec, 0x08, 0xe8, 0x00, 0x01, 0, 0}), 0x1000),
            0x1109u);
  // Backwards, after endbr64: 0x100d - 0x20.
  EXPECT_EQ(ps::PassThroughCallee(
                S({0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x83, 0xec, 0x08, 0xe8, 0xe0, 0xff, 0xff, 0xff}),
                0x1000),
            0xfedu);
  // An argument changed before the call (xor %ecx,%ecx): not a pass-through.
  EXPECT_EQ(ps::PassThroughCallee(S({0x31, 0xc9, 0x48, 0x83, 0xec, 0x08, 0xe8, 0, 1, 0, 0}), 0x1000),
            0u);
  // Something else between the sub and the call: not one either.
  EXPECT_EQ(ps::PassThroughCallee(S({0x48, 0x83, 0xec, 0x08, 0x31, 0xc9, 0xe8, 0, 1, 0, 0}), 0x1000),
            0u);
  // Cut short: not one.
  EXPECT_EQ(ps::PassThroughCallee(S({0x48, 0x83, 0xec, 0x08, 0xe8, 0x00}), 0x1000), 0u);
}

TEST(ProbeSiteTest, DirectCallsAreFoundByTheirTarget) {
  const Code c = {0x90, 0xe8, 0x10, 0, 0, 0, 0xc3};  // nop; call 0x1016; ret
  EXPECT_TRUE(ps::CallsDirectly(S(c), 0x1000, 0x1016));
  EXPECT_FALSE(ps::CallsDirectly(S(c), 0x1000, 0x1017));
  EXPECT_FALSE(ps::CallsDirectly(S({0xe8, 0x10}), 0x1000, 0x1015));  // cut short
}

// The libssl this test process would load.
std::string SystemLibssl() {
  for (const char* p : {"/usr/lib/x86_64-linux-gnu/libssl.so.3", "/lib/x86_64-linux-gnu/libssl.so.3"})
    if (fs::exists(p)) return p;
  return "";
}

TEST(OpenSslProbePlanTest, SystemLibsslIsProbedOnItsInternalFunctionsAtEmulatedInstructions) {
  const std::string lib = SystemLibssl();
  if (lib.empty()) GTEST_SKIP() << "no libssl.so.3 here";
  OpenSslSymbols s;
  std::string err;
  ASSERT_TRUE(FindOpenSslSymbols(lib, &s, &err)) << err;
  ASSERT_GT(s.ssl_read_size, 0u);
  ASSERT_GT(s.ssl_write_size, 0u);
  const OpenSslProbePlan p = PlanOpenSslProbes(lib, s);
  // Debian 12's OpenSSL 3.0: SSL_read_ex is `sub $8,%rsp; call ssl_read_internal`, SSL_read
  // calls the same function; its first instruction is a push.
  ASSERT_TRUE(p.read_inner);
  ASSERT_TRUE(p.write_inner);
  EXPECT_EQ(p.read, 0u);
  EXPECT_EQ(p.write, 0u);
  for (uint64_t site : {p.read_ex, p.write_ex, p.free}) {
    ASSERT_GT(site, 0u);
    const Code b = ps::ReadFileBytes(lib, site, 8);
    ASSERT_EQ(b.size(), 8u);
    EXPECT_TRUE(ps::Emulated(b)) << std::hex << site;
  }
  // The internal functions are neither wrapper, and each wrapper and SSL_read/SSL_write call it.
  EXPECT_NE(p.read_ex, s.ssl_read_ex);
  EXPECT_NE(p.write_ex, s.ssl_write_ex);
  EXPECT_NE(p.read_ex, p.write_ex);
  auto calls = [&](uint64_t from, uint64_t size, uint64_t to) {
    return ps::CallsDirectly(ps::ReadFileBytes(lib, from, size), from, to);
  };
  EXPECT_TRUE(calls(s.ssl_read, s.ssl_read_size, p.read_ex));
  EXPECT_TRUE(calls(s.ssl_read_ex, 16, p.read_ex));
  EXPECT_TRUE(calls(s.ssl_write, s.ssl_write_size, p.write_ex));
  EXPECT_TRUE(calls(s.ssl_write_ex, 16, p.write_ex));
  EXPECT_FALSE(calls(s.ssl_read, s.ssl_read_size, p.write_ex));
  // What /stats shows of it: two shared probes and SSL_free's.
  char want[160];
  std::snprintf(want, sizeof(want),
                "SSL_read+SSL_read_ex@0x%llx(inner) SSL_write+SSL_write_ex@0x%llx(inner) "
                "SSL_free@0x%llx",
                static_cast<unsigned long long>(p.read_ex),
                static_cast<unsigned long long>(p.write_ex), static_cast<unsigned long long>(p.free));
  EXPECT_EQ(p.Describe(), want);
}
#endif

TEST(OpenSslProbePlanTest, AFileWithoutThoseBytesKeepsTheEntries) {
  // Symbols that point at bytes no plan can use (a file of zeros): every probe on its entry.
  fs::path f = fs::temp_directory_path() / ("reqmon-zeros-" + std::to_string(::getpid()));
  { std::ofstream(f) << std::string(4096, '\0'); }
  OpenSslSymbols s;
  s.ssl_read = 0x100;
  s.ssl_read_size = 64;
  s.ssl_read_ex = 0x200;
  s.ssl_write = 0x300;
  s.ssl_write_size = 64;
  s.ssl_write_ex = 0x400;
  s.ssl_free = 0x500;
  const OpenSslProbePlan p = PlanOpenSslProbes(f.string(), s);
  EXPECT_FALSE(p.read_inner);
  EXPECT_FALSE(p.write_inner);
  EXPECT_EQ(p.read, 0x100u);
  EXPECT_EQ(p.read_ex, 0x200u);
  EXPECT_EQ(p.write, 0x300u);
  EXPECT_EQ(p.write_ex, 0x400u);
  EXPECT_EQ(p.free, 0x500u);
  EXPECT_EQ(p.Describe(), "SSL_read@0x100 SSL_read_ex@0x200 SSL_write@0x300 SSL_write_ex@0x400 "
                          "SSL_free@0x500");
  // A file that is not there: the entries too, and nothing crashes.
  const OpenSslProbePlan q = PlanOpenSslProbes("/nonexistent/libssl.so.3", s);
  EXPECT_EQ(q.read, 0x100u);
  EXPECT_FALSE(q.read_inner);
  fs::remove(f);
}

}  // namespace
}  // namespace reqmon
