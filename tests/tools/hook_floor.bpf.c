/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * hook_floor: the least any capture on reqmon's two data hooks can cost, for the benchmark.
 * The same tp_btf attachment as bpf/socket_data.bpf.c, with programs that return at once: what
 * the observed server pays for these tracepoints before a capture checks, reads or copies
 * anything. scripts/bench.sh runs nginx with these attached beside "nothing", the access log and
 * reqmon.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

SEC("tp_btf/sock_recv_length")
int floor_recv(void *ctx)
{
	return 0;
}

SEC("tp_btf/sock_send_length")
int floor_send(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
