// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * Queue time (issue #14): how long a request waited on the host before the server first read
 * it. A request's time otherwise starts at that read, so a request waiting in the listen backlog
 * (no worker free to accept) or in the socket's receive queue (a keep-alive request nobody reads
 * yet) is invisible, and under saturation reqmon would report the serving time only.
 *
 * Arrival, per server socket of an observed process ("queue_socks", sk -> CLOCK_MONOTONIC ns):
 *   - a new connection: its handshake completing (SYN_RECV -> ESTABLISHED, in softirq) on a local
 *     port an observed process reads requests on ("queue_ports"): it waits for accept from then;
 *   - a keep-alive connection: the moment its receive queue goes from empty to non-empty
 *     (sk_data_ready with no arrival stored).
 * The socket_data read path takes the arrival into the data record (ts_queued) and clears it
 * once the read drained the queue (rcv_nxt == copied_seq), so the next bytes start a new wait.
 *
 * Cost for traffic reqmon does not observe: sk_data_ready fires for every TCP segment that brings
 * data to any socket on the host, so its program first tests one bit of a small bitmap indexed by
 * a hash of the socket's address ("queue_bits", set for the sockets in queue_socks) and only then
 * looks the socket up. inet_sock_set_state compares two integers before anything else.
 * scripts/bench.sh measures both (observed and unobserved traffic, --no-queue-time for the
 * baseline).
 *
 * Default build only: the compat build (kernels before 6.5) has no socket tracepoints to read
 * from and reports no queue time. Raw tracepoints like the rest (sk_data_ready: kernel 6.4+).
 */
#include "reqmon.bpf.h"

#ifndef RQ_COMPAT

/* Set by the loader: --no-queue-time clears it (and the programs below are not attached). */
const volatile bool queue_time = true;

/* Server sockets of observed processes: sk -> when their oldest unread bytes arrived (0: the
 * receive queue is empty). LRU: a socket closed without a CLOSE transition seen is evicted. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} queue_socks SEC(".maps");

/* Local ports observed processes read requests on (learnt from their first read of a
 * connection, before they wrote anything on it): a handshake completing there starts a wait. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} queue_ports SEC(".maps");

/* One bit per hash of a socket address: set for the sockets in queue_socks, so that the
 * sk_data_ready of every other socket costs one load. A collision only costs a map lookup. */
#define RQ_QUEUE_BITS (1u << 18)
__u64 queue_bits[RQ_QUEUE_BITS / 64];

static __always_inline __u64 *queue_word(__u64 sk, __u64 *mask)
{
	/* Sockets come from a slab of ~2 KiB objects: the low bits say little. */
	__u32 h = (__u32)((sk >> 10) ^ (sk >> 28));
	__u32 w;

	h &= RQ_QUEUE_BITS - 1;
	*mask = 1ULL << (h & 63);
	w = h >> 6;
	asm volatile("" : "+r"(w));
	w &= RQ_QUEUE_BITS / 64 - 1;
	return &queue_bits[w];
}

static __always_inline void queue_track(__u64 sk, __u64 arrival)
{
	__u64 mask, *word = queue_word(sk, &mask);

	bpf_map_update_elem(&queue_socks, &sk, &arrival, BPF_ANY);
	if (!(*word & mask))
		__sync_fetch_and_or(word, mask);
}

/* Called by the read path (socket_data.bpf.c) for bytes an observed process read from a TCP
 * socket: when the first of them arrived, or 0 when not known. */
static __always_inline __u64 queue_take(__u64 sk_raw)
{
	struct tcp_sock *tp;
	__u64 *arrival, ts, mask, *word;

	if (!queue_time)
		return 0;
	tp = RQ_CAST(struct tcp_sock, sk_raw);
	arrival = bpf_map_lookup_elem(&queue_socks, &sk_raw);
	if (!arrival) {
		/* First read seen on this socket: time its next arrivals. A server reads before it
		 * writes: then the local port is one it accepts on, and handshakes there count. */
		if (tp->data_segs_out == 0) {
			__u16 port = tp->inet_conn.icsk_inet.sk.__sk_common.skc_num;
			__u8 one = 1;

			bpf_map_update_elem(&queue_ports, &port, &one, BPF_ANY);
		}
		queue_track(sk_raw, 0);
		return 0;
	}
	ts = *arrival;
	/* Drained: the next bytes start a new wait. Otherwise the rest of what arrived then is
	 * still queued (a pipelined request, a body read in parts) and keeps its arrival. */
	if (tp->rcv_nxt == tp->copied_seq)
		*arrival = 0;
	word = queue_word(sk_raw, &mask);
	if (!(*word & mask))
		__sync_fetch_and_or(word, mask);
	return ts;
}

/* Raw tracepoints: their arguments are plain numbers, which the bitmap hash needs (tp_btf types
 * the socket as a trusted pointer, on which no arithmetic is allowed). */
SEC("raw_tracepoint/sk_data_ready")
int queue_data_ready(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 key = ctx->args[0], mask, *word, *arrival;

	word = queue_word(key, &mask);
	if (!(*word & mask))
		return 0;
	arrival = bpf_map_lookup_elem(&queue_socks, &key);
	if (arrival && *arrival == 0)
		*arrival = bpf_ktime_get_ns();
	return 0;
}

SEC("raw_tracepoint/inet_sock_set_state")
int queue_set_state(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 key = ctx->args[0], mask, *word;
	int oldstate = (int)ctx->args[1], newstate = (int)ctx->args[2];

	if (!key)
		return 0;
	if (newstate == 1 /* TCP_ESTABLISHED */ && oldstate == 3 /* TCP_SYN_RECV */) {
		__u16 port = RQ_CAST(struct sock, key)->__sk_common.skc_num;

		if (bpf_map_lookup_elem(&queue_ports, &port))
			queue_track(key, bpf_ktime_get_ns());
		return 0;
	}
	if (newstate != 7 /* TCP_CLOSE */)
		return 0;
	word = queue_word(key, &mask);
	if (!(*word & mask))
		return 0;
	bpf_map_delete_elem(&queue_socks, &key);
	__sync_fetch_and_and(word, ~mask);
	return 0;
}

#else
static __always_inline __u64 queue_take(__u64 sk_raw)
{
	return 0;
}
#endif /* RQ_COMPAT */
