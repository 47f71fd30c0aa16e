// SPDX-License-Identifier: MIT
// The verifier's reason is what reqmon prints when the kernel rejects its programs (instead of
// "BPF is not permitted", which made the live tests skip on a rejection rather than fail).
#include <gtest/gtest.h>

#include "reqmon/capture/bpf_capture.h"

namespace reqmon {
namespace {

TEST(VerifierReasonTest, LastLineOfTheLoadLogBeforeTheStatistics) {
  // As libbpf 1.1 printed it on kernel 6.18.44 (2026-12-05), for a call chain over 512 bytes.
  const std::string msg =
      "libbpf: prog 'sock_send_length': -- BEGIN PROG LOAD LOG --\n"
      "combined stack size of 5 calls is 544. Too large\n"
      "processed 305161 insns (limit 1000000) max_states_per_insn 82 total_states 20467 "
      "peak_states 13218 mark_read 0\n"
      "-- END PROG LOAD LOG --\n";
  EXPECT_EQ(VerifierReason(msg), "combined stack size of 5 calls is 544. Too large");
}

TEST(VerifierReasonTest, AnInstructionTraceEndsInTheRejection) {
  const std::string msg =
      "prog 'x': -- BEGIN PROG LOAD LOG --\n"
      "0: R1=ctx() R10=fp0\n"
      "; return *(int *)(p + 8);\n"
      "1: (61) r0 = *(u32 *)(r1 +8)\n"
      "invalid bpf_context access off=8 size=4\n"
      "verification time 12 usec\n"
      "stack depth 0\n"
      "processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0\n"
      "-- END PROG LOAD LOG --\n";
  EXPECT_EQ(VerifierReason(msg), "invalid bpf_context access off=8 size=4");
}

TEST(VerifierReasonTest, NoLoadLogNoReason) {
  EXPECT_EQ(VerifierReason(""), "");
  EXPECT_EQ(VerifierReason("libbpf: prog 'x': failed to load: -13\n"), "");
  EXPECT_EQ(VerifierReason("prog 'x': -- BEGIN PROG LOAD LOG --\n-- END PROG LOAD LOG --\n"), "");
  // Cut short (no end marker): the lines there are still read.
  EXPECT_EQ(VerifierReason("-- BEGIN PROG LOAD LOG --\nR1 invalid mem access 'scalar'\n"),
            "R1 invalid mem access 'scalar'");
}

}  // namespace
}  // namespace reqmon
