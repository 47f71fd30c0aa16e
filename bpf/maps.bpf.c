// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/* The settings and maps of reqmon's kernel side, defined once; reqmon.bpf.h declares them for
 * every other file. */
#ifndef RQ_DEFINE_MAPS
#define RQ_DEFINE_MAPS
#endif
#include "reqmon.bpf.h"
#include "tls.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

const volatile __u32 max_payload = RQ_DEFAULT_PAYLOAD;
const volatile bool filter_all = false;
const volatile bool filter_cgroup = false;
const volatile bool filter_comm = false;
const volatile bool filter_port = false;
const volatile __u32 self_tgid = 0;
const volatile __u64 wakeup_bytes = 1 << 20;
const volatile bool h2_frames = true;

#ifndef RQ_COMPAT
__u64 target_bits[RQ_PID_BITS / 64];
#endif
bool tls_seen = false;
__u64 lost_seq = 0;
__u64 marked_seq = 0;
