// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * TLS plaintext from OpenSSL (libssl.so.3 or .1.1, or an executable that exports its symbols,
 * like Node.js). The loader attaches these per observed process, never to a library file as a
 * whole: a uprobe traps in every process that maps the file. Where on a function each program
 * goes (an entry, or OpenSSL's internal function behind SSL_read and SSL_read_ex, which then
 * runs the _ex programs for both) is chosen by the loader (include/reqmon/capture/tls_probes.h).
 * How the plaintext is tied to its TCP connection is told in tls.bpf.h.
 */
#include "reqmon.bpf.h"
#include "tls.bpf.h"

static __always_inline int read_enter(__u64 ssl, __u64 buf, __u64 readbytes)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct rq_tls_thread *t = tls_thread(id);

	if (!t)
		return 0;
	tls_flush_close(t); /* one owed by a call whose return was not seen */
	t->reading = 1;
	t->r_ssl = ssl;
	t->r_buf = buf;
	t->r_readbytes = readbytes;
	t->nested_sk = 0;
	t->w_sk = 0; /* another call: the last write's would-block window is over */
	return 0;
}

/* The plaintext an SSL_read returned (ok: its return value), emitted on its connection. */
static __always_inline void read_emit(struct rq_tls_thread *t, long ok, bool ex, __u64 id)
{
	struct rq_tls_key k = {.tgid = id >> 32};
	struct rq_tls_conn *c;
	long n = ok;
	__u64 sk;
	int fd;

	if (ex) {
		size_t got = 0;

		/* SSL_read_ex returns 1 and stores the count. */
		if (ok != 1 || bpf_probe_read_user(&got, sizeof(got), (void *)t->r_readbytes))
			return;
		n = got;
	}
	if (n <= 0)
		return;
	k.ssl = t->r_ssl;
	if (t->nested_sk) {
		sk = t->nested_sk;
		fd = t->nested_fd;
		tls_bind(k.tgid, k.ssl, sk, fd);
	} else if ((c = bpf_map_lookup_elem(&tls_conns, &k))) {
		sk = c->sk;
		fd = c->fd;
	} else if (t->last_sk) {
		sk = t->last_sk;
		fd = t->last_fd;
		tls_bind(k.tgid, k.ssl, sk, fd);
	} else {
		count(RQ_STAT_TLS_UNBOUND);
		return;
	}
	tls_emit(t->r_buf, n, RQ_DIR_INGRESS, RQ_SYS_SSL_READ, sk, fd, id, bpf_ktime_get_ns());
}

static __always_inline int read_exit(long ok, bool ex)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct rq_tls_thread *t = bpf_map_lookup_elem(&tls_threads, &id);

	if (!t || !t->reading)
		return 0;
	t->reading = 0;
	read_emit(t, ok, ex, id);
	tls_flush_close(t); /* a reset's close, after the plaintext read before it */
	return 0;
}

static __always_inline int write_enter(__u64 ssl, __u64 buf, long num)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct rq_tls_key k = {.tgid = id >> 32, .ssl = ssl};
	struct rq_tls_thread *t = tls_thread(id);
	struct rq_tls_conn *c;

	if (!t)
		return 0;
	t->w_ssl = ssl;
	t->w_sk = 0;
	t->write_pending = 0;
	c = bpf_map_lookup_elem(&tls_conns, &k);
	if (c && c->retry) {
		/* The repeat of a write that would block: its plaintext was emitted already. */
		c->retry = 0;
		t->w_sk = c->sk; /* it may block again */
		return 0;
	}
	if (num <= 0)
		return 0;
	t->w_buf = buf;
	t->w_num = num;
	t->write_pending = 1;
	return 0;
}

/* An SSL object freed: its address may be the next connection's SSL object, which must not
 * inherit this one's socket. One hit per connection. */
static __always_inline int free_enter(__u64 ssl)
{
	struct rq_tls_key k = {.tgid = bpf_get_current_pid_tgid() >> 32, .ssl = ssl};

	bpf_map_delete_elem(&tls_conns, &k);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_free_enter, void *ssl)
{
	return free_enter((__u64)ssl);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_enter, void *ssl, void *buf, int num)
{
	return read_enter((__u64)ssl, (__u64)buf, 0);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_ex_enter, void *ssl, void *buf, size_t num, size_t *readbytes)
{
	return read_enter((__u64)ssl, (__u64)buf, (__u64)readbytes);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_read_exit, int ret)
{
	return read_exit(ret, false);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_read_ex_exit, int ret)
{
	return read_exit(ret, true);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_enter, void *ssl, const void *buf, int num)
{
	return write_enter((__u64)ssl, (__u64)buf, num);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_ex_enter, void *ssl, const void *buf, size_t num, size_t *written)
{
	return write_enter((__u64)ssl, (__u64)buf, num > 0x7fffffff ? 0x7fffffff : (long)num);
}

#ifndef RQ_COMPAT
/* The same probes as uprobe_multi links (kernel 6.6+, with the per-process filter fixed in 6.9):
 * one link per process and file for all the entries and one for the returns, the function told
 * by the link's cookie for that offset (enum rq_tls_probe). The loader uses these where the
 * kernel has them: the kernel detaches a link in one wait for all its probes (~40 ms here)
 * instead of one wait per probe (~90 ms each), and attaches it without a perf event per probe.
 * The loader sets their attach type (BPF_TRACE_UPROBE_MULTI) before the load, or leaves them
 * unloaded on a kernel without it. */
SEC("uprobe")
int tls_multi_enter(struct pt_regs *ctx)
{
	__u64 a = PT_REGS_PARM1(ctx), b = PT_REGS_PARM2(ctx), c = PT_REGS_PARM3(ctx);

	switch (bpf_get_attach_cookie(ctx)) {
	case RQ_TLS_PROBE_READ:
		return read_enter(a, b, 0);
	case RQ_TLS_PROBE_READ_EX:
		return read_enter(a, b, PT_REGS_PARM4(ctx));
	case RQ_TLS_PROBE_WRITE:
		return write_enter(a, b, (int)c);
	case RQ_TLS_PROBE_WRITE_EX:
		return write_enter(a, b, c > 0x7fffffff ? 0x7fffffff : (long)c);
	case RQ_TLS_PROBE_FREE:
		return free_enter(a);
	}
	return 0;
}

SEC("uretprobe")
int tls_multi_exit(struct pt_regs *ctx)
{
	int ret = PT_REGS_RC(ctx);

	switch (bpf_get_attach_cookie(ctx)) {
	case RQ_TLS_PROBE_READ:
		return read_exit(ret, false);
	case RQ_TLS_PROBE_READ_EX:
		return read_exit(ret, true);
	}
	return 0;
}
#endif
