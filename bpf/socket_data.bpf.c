// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * Socket data: one record per read or write on a TCP socket (IPv4/IPv6) by an observed process,
 * the header of include/reqmon/abi.h plus the first bytes of the payload. TLS ciphertext is
 * recognised here and handed to the TLS side (tls.bpf.h) instead of being copied.
 */
#include "reqmon.bpf.h"
#include "tls.bpf.h"

#ifndef RQ_COMPAT
/* Default build: the socket layer's own tracepoints (kernel 6.3+), sock_recv_length and
 * sock_send_length, which fire once per recvmsg/sendmsg on a socket after the bytes moved, with
 * the struct sock at hand. Unlike syscall tracepoints they cost nothing to other syscalls (a
 * syscall tracepoint sends every syscall of every process through the slow path) and need no
 * entry program: the syscall's own arguments are still in the task's saved user registers. */

/* The data syscall (enum rq_syscall) behind a socket send or receive, or 0 for one reqmon does
 * not parse (io_uring, splice, sendmmsg and recvmmsg, kernel-internal sends, 32-bit callers). */
static __always_inline __u8 data_syscall(long nr, __u8 dir)
{
	if (dir == RQ_DIR_INGRESS) {
		switch (nr) {
		case NR_READ: return RQ_SYS_READ;
		case NR_READV: return RQ_SYS_READV;
		case NR_RECVFROM: return RQ_SYS_RECVFROM;
		case NR_RECVMSG: return RQ_SYS_RECVMSG;
		}
		return 0;
	}
	switch (nr) {
	case NR_WRITE: return RQ_SYS_WRITE;
	case NR_WRITEV: return RQ_SYS_WRITEV;
	case NR_SENDTO: return RQ_SYS_SENDTO;
	case NR_SENDMSG: return RQ_SYS_SENDMSG;
	case NR_SENDFILE: return RQ_SYS_SENDFILE;
	}
	return 0;
}

static __always_inline int sock_data(struct sock *sk_raw, int ret, int flags, __u8 dir)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sock *sk;
	struct pt_regs *regs;
	struct rq_args a = {};
	struct rq_sk_state *st;
	__u64 now;
	__u16 family;

	if (!is_target(id >> 32) || !sk_raw)
		return 0;
	if (ret <= 0) {
		/* Only TLS cares: a write that would block inside SSL_write. */
		if (ret == -RQ_EAGAIN && dir == RQ_DIR_EGRESS && tls_seen) {
			a.sk = (__u64)sk_raw;
			a.direction = dir;
			return socket_data(&a, ret, id, 0, NULL);
		}
		/* A call on a socket that a reset closed, if its close is not reported yet
		 * (reset_close left it to the owner's calls): ECONNRESET or EPIPE, a read of 0
		 * once the error was taken (SO_ERROR), or EAGAIN from a call that handled the
		 * reset only as it released the socket. A write that fails here ends the
		 * connection even with a request still queued: the server gives up on it. (A
		 * peer's FIN leaves the socket in CLOSE_WAIT, not CLOSE.) */
		if (sk_closed((__u64)sk_raw)) {
			st = bpf_sk_storage_get(&sk_state, sk_raw, 0, 0);
			if (st && st->owner_tgid)
				close_for_owner(sk_raw, st);
		}
		return 0;
	}
	/* Peeked bytes stay queued and are read again. */
	if (dir == RQ_DIR_INGRESS && (flags & RQ_MSG_PEEK))
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	a.syscall = data_syscall(RQ_NR(regs), dir);
	if (!a.syscall)
		return 0;
	sk = RQ_CAST(struct sock, sk_raw);
	family = sk->__sk_common.skc_family;
	if ((family != RQ_AF_INET && family != RQ_AF_INET6) || sk->sk_type != RQ_SOCK_STREAM)
		return 0;
	now = bpf_ktime_get_ns();
	a.ts_enter = now;
	a.fd = PT_REGS_PARM1_SYSCALL(regs);
	a.ubuf = PT_REGS_PARM2_SYSCALL(regs);
	a.iovcnt = PT_REGS_PARM3_SYSCALL(regs);
	a.sk = (__u64)sk_raw;
	a.direction = dir;
	st = bpf_sk_storage_get(&sk_state, sk_raw, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (st) {
		st->owner_tgid = id >> 32;
		st->owner_fd = a.fd;
	}
	if (dir == RQ_DIR_INGRESS)
		a.ts_queued = queue_take(sk_raw, st);
	socket_data(&a, ret, id, now, st);
	/* A reset closed the socket, inside this call or before it while bytes were still queued:
	 * reported after the last of those bytes is read (reset_close), or, for ciphertext read
	 * inside an SSL_read, after the plaintext that call returns. */
	if (st && sk_closed((__u64)sk_raw) && !sk_unread((__u64)sk_raw) &&
	    !(dir == RQ_DIR_INGRESS && tls_defer_close(id, sk_raw, st)))
		close_for_owner(sk_raw, st);
	return 0;
}

/* tp_btf rather than raw_tracepoint: the socket argument is a typed, trusted pointer, which
 * socket local storage (the connection's state) needs. */
SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv_length, struct sock *sk, int ret, int flags)
{
	return sock_data(sk, ret, flags, RQ_DIR_INGRESS);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send_length, struct sock *sk, int ret, int flags)
{
	return sock_data(sk, ret, flags, RQ_DIR_EGRESS);
}

#else
/* Compat build (kernels before 6.5): the data syscalls' own tracepoints; the entry program keeps
 * the arguments for the exit program. */
static __always_inline int enter_data(int fd, __u64 ubuf, __u32 iovcnt, __u8 sys, __u8 dir)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct rq_args *a;
	struct sock *sk;

	if (!is_target(id >> 32))
		return 0;
	sk = fd_to_tcp_sock(fd);
	if (!sk)
		return 0;
	a = args_slot();
	if (!a)
		return 0;
	a->ts_enter = bpf_ktime_get_ns();
	a->ubuf = ubuf;
	a->sk = (__u64)sk;
	a->fd = fd;
	a->iovcnt = iovcnt;
	a->syscall = sys;
	a->direction = dir;
	return 0;
}

static __always_inline int exit_data(long ret, __u8 sys)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct rq_args a;

	if (!take_args(sys, &a))
		return 0;
	return socket_data(&a, ret, id, bpf_ktime_get_ns(), NULL);
}

SEC("tracepoint/syscalls/sys_enter_read")
int sys_enter_read(struct trace_event_raw_sys_enter *ctx)
{
	return enter_data(ctx->args[0], ctx->args[1], 0, RQ_SYS_READ, RQ_DIR_INGRESS);
}

SEC("tracepoint/syscalls/sys_enter_write")
int sys_enter_write(struct trace_event_raw_sys_enter *ctx)
{
	return enter_data(ctx->args[0], ctx->args[1], 0, RQ_SYS_WRITE, RQ_DIR_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_readv")
int sys_enter_readv(struct trace_event_raw_sys_enter *ctx)
{
	return enter_data(ctx->args[0], ctx->args[1], ctx->args[2], RQ_SYS_READV, RQ_DIR_INGRESS);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int sys_enter_writev(struct trace_event_raw_sys_enter *ctx)
{
	return enter_data(ctx->args[0], ctx->args[1], ctx->args[2], RQ_SYS_WRITEV, RQ_DIR_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int sys_enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	/* Peeked bytes stay queued and are read again (nginx peeks one byte of a TLS port's
	 * connections). */
	if (ctx->args[3] & RQ_MSG_PEEK)
		return 0;
	return enter_data(ctx->args[0], ctx->args[1], 0, RQ_SYS_RECVFROM, RQ_DIR_INGRESS);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int sys_enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return enter_data(ctx->args[0], ctx->args[1], 0, RQ_SYS_SENDTO, RQ_DIR_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int sys_enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[2] & RQ_MSG_PEEK)
		return 0;
	return enter_data(ctx->args[0], ctx->args[1], 0, RQ_SYS_RECVMSG, RQ_DIR_INGRESS);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int sys_enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	return enter_data(ctx->args[0], ctx->args[1], 0, RQ_SYS_SENDMSG, RQ_DIR_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_sendfile64")
int sys_enter_sendfile64(struct trace_event_raw_sys_enter *ctx)
{
	return enter_data(ctx->args[0], 0, 0, RQ_SYS_SENDFILE, RQ_DIR_EGRESS);
}

/* One exit program serves every data syscall: the stashed arguments say which it was. */
SEC("tracepoint/syscalls/sys_exit_read")
int sys_exit_read(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret, RQ_SYS_READ); }
SEC("tracepoint/syscalls/sys_exit_write")
int sys_exit_write(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret, RQ_SYS_WRITE); }
SEC("tracepoint/syscalls/sys_exit_readv")
int sys_exit_readv(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret, RQ_SYS_READV); }
SEC("tracepoint/syscalls/sys_exit_writev")
int sys_exit_writev(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret, RQ_SYS_WRITEV); }
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int sys_exit_recvfrom(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret, RQ_SYS_RECVFROM); }
SEC("tracepoint/syscalls/sys_exit_sendto")
int sys_exit_sendto(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret, RQ_SYS_SENDTO); }
SEC("tracepoint/syscalls/sys_exit_recvmsg")
int sys_exit_recvmsg(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret, RQ_SYS_RECVMSG); }
SEC("tracepoint/syscalls/sys_exit_sendmsg")
int sys_exit_sendmsg(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret, RQ_SYS_SENDMSG); }
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int sys_exit_sendfile64(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret, RQ_SYS_SENDFILE); }
#endif /* RQ_COMPAT */

