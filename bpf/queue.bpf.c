// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * Queue time (issue #14): how long a request waited on the host before the server first read
 * it. A request's time otherwise starts at that read, so a request waiting in the listen backlog
 * (no worker free to accept) or in the socket's receive queue (a keep-alive request nobody reads
 * yet) is invisible, and under saturation reqmon would report the serving time only.
 *
 * Arrival, per server socket of an observed process, in the socket's local storage (sk_state:
 * queue_on says its arrivals are timed, queued when the oldest unread bytes arrived):
 *   - a new connection: its handshake completing (SYN_RECV -> ESTABLISHED, in softirq) on a local
 *     port an observed process reads requests on ("queue_ports"): it waits for accept from then;
 *   - a keep-alive connection: the moment its receive queue goes from empty to non-empty
 *     (sk_data_ready with no arrival stored).
 * The socket_data read path takes the arrival into the data record (ts_queued) and clears it
 * once the read drained the queue (rcv_nxt == copied_seq), so the next bytes start a new wait.
 *
 * Cost for traffic reqmon does not observe: sk_data_ready fires for every TCP segment that brings
 * data to any socket on the host; a socket without local storage (any socket no observed process
 * read or wrote) ends its program at the storage lookup, which finds none. inet_sock_set_state
 * compares two integers before anything else. The state lived in an LRU hash by socket address
 * before, behind a bitmap that spared unobserved sockets the lookup; the read path's hash lookup
 * and the read of the socket's address cost nginx `return 200` 100-150 ns of BPF per request more
 * than the storage (bpf_stats, docs/performance.md). The storage is freed with the socket, so a
 * close needs no hook.
 * scripts/bench.sh measures both (observed and unobserved traffic, --no-queue-time for the
 * baseline).
 *
 * Default build only: the compat build (kernels before 6.5) has no socket tracepoints to read
 * from and reports no queue time. tp_btf programs like the data path (sk_data_ready: kernel
 * 6.4+): socket storage needs the socket as a trusted pointer.
 */
#include "reqmon.bpf.h"

#ifndef RQ_COMPAT

/* Set by the loader: --no-queue-time clears it (and the programs below are not attached). */
const volatile bool queue_time = true;

/* Local ports observed processes read requests on (learnt from their first read of a
 * connection, before they wrote anything on it): a handshake completing there starts a wait. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} queue_ports SEC(".maps");

/* Called by the read path (socket_data.bpf.c) for bytes an observed process read from a TCP
 * socket, with the socket's state (NULL: none could be made): when the first of them arrived, or
 * 0 when not known. */
static __always_inline __u64 queue_take(struct sock *sk, struct rq_sk_state *st)
{
	struct tcp_sock *tp;
	__u64 ts;

	if (!queue_time || !st)
		return 0;
	tp = RQ_CAST(struct tcp_sock, sk);
	if (!st->queue_on) {
		/* First read seen on this socket: time its next arrivals. A server reads before it
		 * writes: then the local port is one it accepts on, and handshakes there count. */
		if (tp->data_segs_out == 0) {
			__u16 port = tp->inet_conn.icsk_inet.sk.__sk_common.skc_num;
			__u8 one = 1;

			bpf_map_update_elem(&queue_ports, &port, &one, BPF_ANY);
		}
		/* queued is 0: sk_data_ready times no arrival before queue_on. */
		st->queue_on = 1;
		return 0;
	}
	ts = st->queued;
	/* Drained: the next bytes start a new wait. Otherwise the rest of what arrived then is
	 * still queued (a pipelined request, a body read in parts) and keeps its arrival. */
	if (tp->rcv_nxt == tp->copied_seq)
		st->queued = 0;
	return ts;
}

SEC("tp_btf/sk_data_ready")
int BPF_PROG(queue_data_ready, const struct sock *sk)
{
	struct rq_sk_state *st;

	if (!sk)
		return 0;
	st = bpf_sk_storage_get(&sk_state, (struct sock *)sk, 0, 0);
	if (st && st->queue_on && st->queued == 0)
		st->queued = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(queue_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct rq_sk_state *st;
	__u16 port;

	if (newstate != 1 /* TCP_ESTABLISHED */ || oldstate != 3 /* TCP_SYN_RECV */ || !sk)
		return 0;
	port = sk->__sk_common.skc_num;
	if (!bpf_map_lookup_elem(&queue_ports, &port))
		return 0;
	st = bpf_sk_storage_get(&sk_state, (struct sock *)sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (st) {
		st->queue_on = 1;
		st->queued = bpf_ktime_get_ns();
	}
	return 0;
}

#else
static __always_inline __u64 queue_take(struct sock *sk, void *st)
{
	return 0;
}
#endif /* RQ_COMPAT */
