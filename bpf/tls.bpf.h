/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * TLS state shared by tls.bpf.c (uprobes on OpenSSL's SSL_read/SSL_write) and socket_data.bpf.c
 * (the socket reads and writes those calls make).
 *
 * A TLS connection is told by its ciphertext: the first read or write on a socket that starts
 * with a TLS record header marks the socket (tls_socks). From then on its bytes are counted, never
 * copied or parsed; the plaintext comes from the library instead, tied to the socket like this:
 *  - SSL_read/SSL_read_ex: entry (the buffer) and return (how many bytes). The socket read made
 *    inside the call tells the socket; a call served from OpenSSL's own buffer uses the SSL
 *    object's socket learned before (tls_conns); a library that does its socket I/O outside the
 *    call (Node.js: memory BIOs) reads the ciphertext first on the same thread, so the thread's
 *    last TLS socket read tells it.
 *  - SSL_write/SSL_write_ex: entry only (the plaintext is in its buffer then): the record is
 *    emitted at the first successful write of ciphertext on the same thread (inside the call
 *    for socket BIOs, right after it for memory BIOs), on the SSL object's socket. A write
 *    that would block after that (EAGAIN) means OpenSSL returns SSL_ERROR_WANT_WRITE and the
 *    application repeats the call: that repeat is not emitted again.
 *  - SSL_free: the SSL object's socket is forgotten, so that a new SSL object at the same
 *    address does not inherit it.
 * So a request costs three uprobe hits, plus two per SSL_read that finds nothing to read, plus
 * one per connection. (The loader may put the _ex programs on the internal function that both
 * SSL_read and SSL_read_ex call, with SSL_read_ex's arguments: the same count, a cheaper trap.)
 */
#pragma once

#include "reqmon.bpf.h"

/* What one thread is doing inside OpenSSL. */
struct rq_tls_thread {
	__u64 r_ssl;       /* SSL_read in progress: the SSL object */
	__u64 r_buf;       /* its buffer */
	__u64 r_readbytes; /* SSL_read_ex: where the count goes (size_t *) */
	__u64 nested_sk;   /* TLS socket read inside that SSL_read */
	__u64 last_sk;     /* last TLS socket read on this thread */
	__u64 w_ssl;       /* SSL_write: the SSL object */
	__u64 w_buf;       /* its plaintext */
	__u64 w_sk;        /* socket its plaintext was emitted on (0: not yet, or window over) */
	__u32 w_num;       /* its length */
	__s32 nested_fd;
	__s32 last_fd;
	__u8 reading;      /* between SSL_read entry and return */
	__u8 write_pending; /* SSL_write plaintext not emitted yet */
	__u8 pad[2];
	__u64 close_sk;    /* a reset socket whose last queued ciphertext that SSL_read read: */
	__s32 close_fd;    /* its close is reported after the plaintext, at the return */
	__u32 close_tgid;  /* (tls_defer_close, tls_flush_close) */
};

/* An SSL object of a process. */
struct rq_tls_key {
	__u32 tgid;
	__u32 pad;
	__u64 ssl;
};

/* The TCP connection an SSL object was last seen on. */
struct rq_tls_conn {
	__u64 sk;
	__s32 fd;
	__u8 retry; /* the last SSL_write would block: its repeat carries no new plaintext */
	__u8 pad[3];
};

/* Sizes: LRU maps are preallocated, so they are kernel memory whether used or not (about 1.5 MiB
 * each at these sizes). Past 16384 TLS connections open at once the least recently used lose
 * their mark: their next ciphertext is marked again (one more RQ_DATA_TLS_CIPHER record), and
 * an SSL object whose socket was forgotten is tied again by its next socket call. */
RQ_EXTERN struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct rq_tls_thread);
} tls_threads SEC(".maps");

RQ_EXTERN struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct rq_tls_key);
	__type(value, struct rq_tls_conn);
} tls_conns SEC(".maps");

/* Sockets that carry TLS (struct sock * -> 1), removed when the socket closes. */
RQ_EXTERN struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} tls_socks SEC(".maps");

/* Where the kernel is in the HTTP/2 frames of a TLS connection's plaintext (h2frames.bpf.h), by
 * struct sock *: only connections whose plaintext was seen to be HTTP/2 have an entry, removed
 * when the socket closes. (The uprobes that read the plaintext cannot reach socket storage.) */
RQ_EXTERN struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct rq_h2_state);
} tls_h2 SEC(".maps");

/* This thread's state inside OpenSSL, made on its first use. */
static __always_inline struct rq_tls_thread *tls_thread(__u64 id)
{
	struct rq_tls_thread *t = bpf_map_lookup_elem(&tls_threads, &id);
	struct rq_tls_thread zero = {};

	if (t)
		return t;
	bpf_map_update_elem(&tls_threads, &id, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&tls_threads, &id);
}

/* Set once any TLS socket was marked: until then no socket call pays the lookup. */
extern bool tls_seen;

static __always_inline bool tls_sock(__u64 sk)
{
	return tls_seen && bpf_map_lookup_elem(&tls_socks, &sk) != NULL;
}

static __always_inline void tls_sock_mark(__u64 sk)
{
	__u8 one = 1;

	bpf_map_update_elem(&tls_socks, &sk, &one, BPF_ANY);
	tls_seen = true;
}

static __always_inline void tls_sock_forget(__u64 sk)
{
	if (tls_seen) {
		bpf_map_delete_elem(&tls_socks, &sk);
		bpf_map_delete_elem(&tls_h2, &sk);
	}
}

/* Emits a TLS plaintext record (*a, n bytes), following its HTTP/2 frames if it has any. */
static __always_inline void tls_emit_h2(const struct rq_args *a, long n, __u64 id, __u64 now)
{
	__u64 sk = a->sk;
	struct rq_h2_state *h2 = bpf_map_lookup_elem(&tls_h2, &sk);
	struct rq_scratch *s;
	bool fresh = !h2;

	if (fresh) {
		/* Not HTTP/2 so far: a blank state in the scratch, kept if this record starts it. */
		s = scratch_slot();
		if (!s)
			return;
		__builtin_memset(&s->h2tmp, 0, sizeof(s->h2tmp));
		h2 = &s->h2tmp;
	}
	s = build_data(a, n, id, now, NULL, h2);
	if (!s)
		return;
	if (fresh && (s->h2tmp.dir[0].mode != RQ_H2_OFF || s->h2tmp.dir[1].mode != RQ_H2_OFF))
		bpf_map_update_elem(&tls_h2, &sk, &s->h2tmp, BPF_ANY);
	submit_data(s, RQ_STAT_TLS_DATA);
}

/* Emits n bytes of plaintext at buf as a data record of the TCP connection (sk, fd). */
static __always_inline void tls_emit(__u64 buf, long n, __u8 dir, __u8 sys, __u64 sk, int fd,
				     __u64 id, __u64 now)
{
	struct rq_args a = {};

	a.ts_enter = now;
	a.ubuf = buf;
	a.sk = sk;
	a.fd = fd;
	a.syscall = sys;
	a.direction = dir;
	a.flags = RQ_DATA_TLS;
	tls_emit_h2(&a, n, id, now);
}

static __always_inline void tls_bind(__u32 tgid, __u64 ssl, __u64 sk, int fd)
{
	struct rq_tls_key k = {.tgid = tgid, .ssl = ssl};
	struct rq_tls_conn *c = bpf_map_lookup_elem(&tls_conns, &k);
	struct rq_tls_conn v = {.sk = sk, .fd = fd};

	if (c && c->sk == sk && c->fd == fd)
		return;
	bpf_map_update_elem(&tls_conns, &k, &v, BPF_ANY);
}

/* A read or write (ret bytes, or -errno) on a socket that carries TLS, by an observed thread. */
static __always_inline void tls_on_socket(__u64 sk, int fd, __u8 dir, long ret, __u64 id, __u64 now)
{
	struct rq_tls_thread *t;

	if (ret > 0)
		count_n(RQ_STAT_TLS_CIPHER_BYTES, ret);
	/* A read that moved ciphertext is remembered even by a thread that has made no SSL call
	 * yet: a server whose BIO reads ahead (Apache's mod_ssl) can read a connection's first
	 * request along with the handshake, outside SSL_read, on a new worker thread; that
	 * request's SSL_read then makes no socket read and has only this one to tell its socket. */
	t = dir == RQ_DIR_INGRESS && ret > 0 ? tls_thread(id) : bpf_map_lookup_elem(&tls_threads, &id);
	if (!t)
		return;
	if (dir == RQ_DIR_INGRESS) {
		if (t->reading) {
			t->nested_sk = sk;
			t->nested_fd = fd;
		}
		if (ret > 0) {
			t->last_sk = sk;
			t->last_fd = fd;
		}
		return;
	}
	if (t->write_pending && ret > 0) {
		struct rq_tls_key k = {.tgid = id >> 32, .ssl = t->w_ssl};
		struct rq_tls_conn *c = bpf_map_lookup_elem(&tls_conns, &k);

		/* Ciphertext of another connection than the SSL object's: not this write's. */
		if (c && c->sk != sk)
			return;
		t->write_pending = 0;
		t->w_sk = sk;
		tls_emit(t->w_buf, t->w_num, RQ_DIR_EGRESS, RQ_SYS_SSL_WRITE, sk, fd, id, now);
		tls_bind(id >> 32, t->w_ssl, sk, fd);
		return;
	}
	if (ret == -RQ_EAGAIN && t->w_sk == sk) {
		struct rq_tls_key k = {.tgid = id >> 32, .ssl = t->w_ssl};
		struct rq_tls_conn *c = bpf_map_lookup_elem(&tls_conns, &k);

		if (c)
			c->retry = 1;
	}
}

#ifndef RQ_COMPAT
/* A reset socket's close is due after the read that emptied its queue (sock_data). When that
 * read is inside an SSL_read of this thread, the plaintext it carries is emitted only at
 * SSL_read's return: the close is left to then (tls_flush_close), so that the request comes
 * before it, on its connection. The owner is taken from the socket's storage, which the uprobe
 * cannot reach, so that nothing else reports the close as well. Returns whether it was left. */
static __always_inline bool tls_defer_close(__u64 id, struct sock *sk, struct rq_sk_state *st)
{
	struct rq_tls_thread *t;

	if (!tls_seen)
		return false;
	t = bpf_map_lookup_elem(&tls_threads, &id);
	if (!t || !t->reading)
		return false;
	t->close_sk = (__u64)sk;
	t->close_fd = st->owner_fd;
	t->close_tgid = st->owner_tgid;
	st->owner_tgid = 0;
	return true;
}
#endif

/* Reports the close tls_defer_close left to this thread's SSL_read return, if any. */
static __always_inline void tls_flush_close(struct rq_tls_thread *t)
{
	__u64 sk = t->close_sk;

	if (!sk)
		return;
	t->close_sk = 0;
	submit_conn(RQ_EV_CLOSE, ((__u64)t->close_tgid << 32) | t->close_tgid, t->close_fd,
		    (struct sock *)sk, RQ_ROLE_UNKNOWN, RQ_SYS_CLOSE, 0, bpf_ktime_get_ns());
}

/* The data of one socket call (*a, ret bytes moved or -errno): plaintext is emitted as it is,
 * TLS ciphertext is counted and marked but never copied. Shared by both builds. */
static __always_inline int socket_data(struct rq_args *a, long ret, __u64 id, __u64 now,
				       struct rq_sk_state *st)
{
	struct rq_scratch *s;

	if (ret <= 0) {
		/* A write that would block tells the SSL_write in progress will be repeated. */
		if (ret == -RQ_EAGAIN && a->direction == RQ_DIR_EGRESS && tls_sock(a->sk))
			tls_on_socket(a->sk, a->fd, a->direction, ret, id, now);
		return 0;
	}
	if (tls_sock(a->sk)) {
		tls_on_socket(a->sk, a->fd, a->direction, ret, id, now);
		return 0;
	}
	/* sendfile's bytes are counted, never copied (build_data), but they go through the
	 * connection's state: they may be the body its last head announced. */
	s = build_data(a, ret, id, now, st, st ? &st->h2 : NULL);
	if (!s)
		return 0;
	if (tls_record_start(s->payload, s->ev.payload_len)) {
		/* A reset that came in during the call closed the socket and dropped its mark: the
		 * last ciphertext of a connection (a response, a close_notify alert), not a new one.
		 * An SSL_write in progress still emits its plaintext: its bytes went out. */
		if (sk_closed(a->sk)) {
			tls_on_socket(a->sk, a->fd, a->direction, ret, id, now);
			return 0;
		}
		/* The first ciphertext of a connection: mark it, and say so once, without payload. */
		tls_sock_mark(a->sk);
		tls_on_socket(a->sk, a->fd, a->direction, ret, id, now);
		s->ev.flags = RQ_DATA_TLS_CIPHER;
		s->ev.payload_len = 0;
	}
	submit_data(s, RQ_STAT_DATA);
	return 0;
}
