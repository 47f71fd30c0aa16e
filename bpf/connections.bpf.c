// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * Connections: a record when an observed process connects (a client connection opens) or closes
 * a TCP connection. Accepted connections open with their first bytes (socket_data.bpf.c).
 */
#include "reqmon.bpf.h"
#include "tls.bpf.h"

#ifndef RQ_COMPAT
/* Default build: connections from the TCP state changes the observed process makes itself, so
 * that no syscall tracepoint is attached (one would send every syscall of every process on the
 * host through the slow path). Connecting (CLOSE -> SYN_SENT inside connect) opens a client
 * connection; closing (-> FIN_WAIT1, LAST_ACK or CLOSE inside close or shutdown) ends one. The
 * fd is the syscall's first argument. Accepted connections have no record of their own: the
 * first bytes read or written open them (the role follows from whether a request or a response
 * came first), and the reader tells a reused fd by its new endpoints. */
enum { RQ_TCP_ESTABLISHED = 1, RQ_TCP_SYN_SENT = 2, RQ_TCP_SYN_RECV = 3, RQ_TCP_FIN_WAIT1 = 4,
       RQ_TCP_CLOSE = 7, RQ_TCP_CLOSE_WAIT = 8, RQ_TCP_LAST_ACK = 9, RQ_TCP_LISTEN = 10 };

/* A peer's reset (or a timeout) closes a socket in softirq, outside any syscall of the process
 * that holds it, and that process's close() later changes no state. The socket's storage names
 * the observed process that last read or wrote on it, and its fd: the close is reported for them,
 * so that what was left unanswered is counted at once, not when the fd is reused. Over loopback
 * the reset is often handled inside the owner's own write (the peer answers the data it sends
 * with the reset, and the socket takes it as the write releases it): the bytes of that write
 * still count, so sock_data reports the close after them. Likewise when the reset came behind
 * bytes the owner has not read yet (a request sent with the reset right after it): the reads
 * that follow return those bytes first, and the close is reported after the last of them, or
 * at the first read or write that fails, or, if the owner closes it unread, as it is destroyed. */
static __always_inline void reset_close(struct sock *sk, __u64 id, long nr, int fd)
{
	struct rq_sk_state *st = bpf_sk_storage_get(&sk_state, sk, 0, 0);

	if (!st || !st->owner_tgid)
		return;
	/* Inside the owner's own read or write on this socket, or with bytes still queued that the
	 * owner will read: sock_data reports it after those bytes. (A call of the owner's on
	 * another fd is not this socket's: the close is reported now.) */
	if (((id >> 32) == st->owner_tgid && fd == st->owner_fd &&
	     (data_syscall(nr, RQ_DIR_INGRESS) || data_syscall(nr, RQ_DIR_EGRESS))) ||
	    sk_unread((__u64)sk)) {
		st->reset_waits = 1;
		return;
	}
	close_for_owner(sk, st);
}

/* A reset socket whose owner closes it without reading what was still queued: that close changes
 * no TCP state (the socket is in CLOSE already), and the reads reset_close waited for never come.
 * The socket is destroyed inside that close (or when the last reference to it goes): the close
 * is reported then. A socket closed the usual way has no reset_waits, and one whose close
 * sock_data reported has no owner any more. Runs once per TCP socket of the host. */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(tcp_destroy_sock, struct sock *sk)
{
	struct rq_sk_state *st;

	/* Such a socket still holds its reset's error (sk_err: what the owner's next call would have
	 * returned): the storage of every other socket is left unread. */
	if (!sk || !sk->sk_err)
		return 0;
	st = bpf_sk_storage_get(&sk_state, sk, 0, 0);
	if (st && st->owner_tgid && st->reset_waits)
		close_for_owner(sk, st);
	return 0;
}

/* tp_btf rather than raw_tracepoint: the socket is a typed pointer, which its storage needs. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state, struct sock *sk, int oldstate, int newstate)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct pt_regs *regs;
	long nr;

	/* A socket that reaches CLOSE is about to be freed: its memory may be a new socket next. */
	if (newstate == RQ_TCP_CLOSE)
		tls_sock_forget((__u64)sk);
	/* A close is the first step out of an open state (a second close, or a close after a
	 * shutdown, starts from FIN_WAIT or LAST_ACK: already reported). */
	if (newstate == RQ_TCP_FIN_WAIT1 || newstate == RQ_TCP_LAST_ACK || newstate == RQ_TCP_CLOSE) {
		if (oldstate != RQ_TCP_ESTABLISHED && oldstate != RQ_TCP_CLOSE_WAIT &&
		    oldstate != RQ_TCP_SYN_SENT && oldstate != RQ_TCP_SYN_RECV)
			return 0;
	} else if (newstate == RQ_TCP_LISTEN) {
		/* --port: a process that starts listening on a chosen port is observed from now on
		 * (a server restarted, or started after reqmon); its children are followed. */
		__u32 tgid = id >> 32;
		__u16 port;

		if (!filter_port || !sk || tgid == self_tgid)
			return 0;
		port = RQ_CAST(struct sock, sk)->__sk_common.skc_num;
		if (bpf_map_lookup_elem(&target_ports, &port) && !target_has(tgid))
			target_add(tgid);
		return 0;
	} else if (newstate != RQ_TCP_SYN_SENT) {
		return 0;
	}
	if (!sk)
		return 0;
	if (!is_target(id >> 32)) {
		if (newstate == RQ_TCP_CLOSE)
			reset_close(sk, id, -1, -1);
		return 0;
	}
	/* State changes in softirq (a FIN or RST arriving) run on whatever task was interrupted;
	 * only the ones inside the process's own connect, close or shutdown count as its own. */
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	nr = RQ_NR(regs);
	if (newstate == RQ_TCP_SYN_SENT) {
		if (nr != NR_CONNECT)
			return 0;
		submit_conn(RQ_EV_OPEN, id, PT_REGS_PARM1_SYSCALL(regs), sk, RQ_ROLE_CLIENT,
			    RQ_SYS_CONNECT, 0, bpf_ktime_get_ns());
		return 0;
	}
	if (nr != NR_CLOSE && nr != NR_SHUTDOWN) {
		if (newstate == RQ_TCP_CLOSE)
			reset_close(sk, id, nr, PT_REGS_PARM1_SYSCALL(regs));
		return 0;
	}
	submit_conn(RQ_EV_CLOSE, id, PT_REGS_PARM1_SYSCALL(regs), sk, RQ_ROLE_UNKNOWN, RQ_SYS_CLOSE,
		    0, bpf_ktime_get_ns());
	return 0;
}

#else
/* Compat build: accept, accept4, connect and close through their syscall tracepoints. */
static __always_inline int enter_conn(int fd, __u8 sys)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct rq_args *a;

	if (!is_target(id >> 32))
		return 0;
	a = args_slot();
	if (!a)
		return 0;
	a->ts_enter = bpf_ktime_get_ns();
	a->fd = fd;
	a->syscall = sys;
	return 0;
}

static __always_inline int exit_conn(long ret, __u8 sys)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct rq_args a;
	struct sock *sk;
	int fd;

	if (!take_args(sys, &a))
		return 0;
	if (a.syscall == RQ_SYS_CONNECT) {
		/* Non-blocking connects return -EINPROGRESS and complete later: open all the same. */
		if (ret != 0 && ret != -RQ_EINPROGRESS)
			return 0;
		fd = a.fd;
	} else {
		if (ret < 0)
			return 0;
		fd = ret;
	}
	sk = fd_to_tcp_sock(fd);
	if (!sk)
		return 0;
	submit_conn(RQ_EV_OPEN, id, fd, sk,
		    a.syscall == RQ_SYS_CONNECT ? RQ_ROLE_CLIENT : RQ_ROLE_SERVER, a.syscall, ret,
		    a.ts_enter);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_accept")
int sys_enter_accept(struct trace_event_raw_sys_enter *ctx)
{
	return enter_conn(ctx->args[0], RQ_SYS_ACCEPT);
}

SEC("tracepoint/syscalls/sys_enter_accept4")
int sys_enter_accept4(struct trace_event_raw_sys_enter *ctx)
{
	return enter_conn(ctx->args[0], RQ_SYS_ACCEPT4);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int sys_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	return enter_conn(ctx->args[0], RQ_SYS_CONNECT);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int sys_exit_accept(struct trace_event_raw_sys_exit *ctx) { return exit_conn(ctx->ret, RQ_SYS_ACCEPT); }
SEC("tracepoint/syscalls/sys_exit_accept4")
int sys_exit_accept4(struct trace_event_raw_sys_exit *ctx) { return exit_conn(ctx->ret, RQ_SYS_ACCEPT4); }
SEC("tracepoint/syscalls/sys_exit_connect")
int sys_exit_connect(struct trace_event_raw_sys_exit *ctx) { return exit_conn(ctx->ret, RQ_SYS_CONNECT); }

/* The fd still names the socket at entry; after exit it may already be reused. */
SEC("tracepoint/syscalls/sys_enter_close")
int sys_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	int fd = ctx->args[0];
	struct sock *sk;
	__u64 now;

	if (!is_target(id >> 32))
		return 0;
	sk = fd_to_tcp_sock(fd);
	if (!sk)
		return 0;
	tls_sock_forget((__u64)sk);
	now = bpf_ktime_get_ns();
	submit_conn(RQ_EV_CLOSE, id, fd, sk, RQ_ROLE_UNKNOWN, RQ_SYS_CLOSE, 0, now);
	return 0;
}

#endif /* RQ_COMPAT */
