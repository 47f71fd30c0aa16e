/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The one header of reqmon's kernel side. The programs are split by hook family, one file each
 * (reqmon.bpf.c compiles them as one unit):
 *
 *   maps.bpf.c         the settings and maps, defined once (every other file declares them here)
 *   socket_data.bpf.c  bytes read and written on TCP sockets
 *   connections.bpf.c  connections opened and closed
 *   processes.bpf.c    fork, exec and exit of observed processes
 *   tls.bpf.c          plaintext from OpenSSL's SSL_read/SSL_write (uprobes)
 *   queue.bpf.c        queue time: when the bytes a server reads arrived (default build)
 *
 * Two builds come from the same files. The default one (kernel 6.5+) hooks the socket layer's
 * own tracepoints (sock_recv_length, sock_send_length, inet_sock_set_state) as raw tracepoints
 * and reads the syscall's arguments from the task's saved registers, so it attaches no syscall
 * tracepoint: other processes' syscalls do not pay for reqmon. The compat one (RQ_COMPAT,
 * kernel 5.8+) uses the syscall tracepoints of read/write and friends, accept, connect and
 * close. No kprobes or fentry are used: this kernel has neither.
 */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "reqmon/abi.h"

#define RQ_AF_INET 2
#define RQ_AF_INET6 10
#define RQ_SOCK_STREAM 1
#define RQ_S_IFMT 00170000
#define RQ_S_IFSOCK 0140000
#define RQ_EINPROGRESS 115
#define RQ_EAGAIN 11
#define RQ_EPIPE 32
#define RQ_ECONNRESET 104
#define RQ_MSG_PEEK 2

/* Syscall arguments: stashed at sys_enter and picked up at sys_exit (compat build), or read
 * from the saved registers (default build). Also describes a TLS plaintext record. */
struct rq_args {
	__u64 ts_enter;
	__u64 ubuf;     /* user pointer: the buffer, the iovec array, or the msghdr */
	__u64 sk;       /* struct sock * of the fd at entry (0 for accept, resolved at exit) */
	__s32 fd;
	__u32 iovcnt;   /* readv/writev: iovec count */
	__u8 syscall;   /* enum rq_syscall */
	__u8 direction; /* enum rq_direction */
	__u8 flags;     /* enum rq_data_flags */
	__u8 pad[5];
	__u64 ts_queued; /* ingress: when the bytes read were queued (queue.bpf.c), 0: unknown */
};

/* Where the kernel is in one direction of an HTTP/2 connection's frames (h2frames.bpf.h). */
enum rq_h2_mode {
	RQ_H2_OFF = 0,    /* not followed: not HTTP/2 as far as the kernel knows */
	RQ_H2_LOST,       /* HTTP/2, but the place in the frames was lost */
	RQ_H2_HEADER,     /* next: (the rest of) a frame header */
	RQ_H2_COPY,       /* next: left bytes of a payload to copy (or of the preface) */
	RQ_H2_SKIP,       /* next: left bytes of a DATA payload, not copied */
};

struct rq_h2_dir {
	__u32 left;   /* bytes of the current payload still to come */
	__u8 mode;    /* enum rq_h2_mode */
	__u8 have;    /* bytes of the next frame header seen so far (< 9) */
	__u8 pad[2];
	__u8 hdr[32]; /* those bytes (room for the verifier: a copy of up to 16 at any of the first 16) */
};

struct rq_h2_state {
	struct rq_h2_dir dir[2]; /* per enum rq_direction */
};

/* A walk over one record's frames (h2frames.bpf.h). */
struct rq_h2_walk {
	__u64 base;      /* user address of the current piece */
	__u32 avail;     /* bytes of the record in the current iovec from base on */
	__u32 iov_i;     /* next iovec */
	__u32 iov_cnt;
	__u32 remaining; /* bytes of the record not walked yet */
	__u32 out;       /* bytes written to the payload */
	__u32 skipped;   /* DATA payload bytes not copied */
	__u32 fail;
	__u8 full;       /* the output is full: the record goes in parts */
	__u8 dry;        /* only check the frames, copy nothing */
	__u8 pad[2];
	__u32 sent;      /* parts sent */
	__u32 covered;   /* bytes of the record the parts sent cover */
};

/* Per-CPU scratch for one data record: the event header plus room for the payload. Twice the
 * payload ceiling so that the verifier can bound "offset + length" in the iovec copy loop. */
struct rq_scratch {
	struct iovec iov[RQ_MAX_IOV]; /* h2frames.bpf.h: the iovec array of the record */
	struct rq_h2_state h2tmp;     /* TLS plaintext of a connection not followed yet */
	struct rq_h2_walk walk;
	struct {
		__u32 end;   /* framing.bpf.h: the head's length, 0 if it does not end in the window */
		__u32 cl_at; /* where the Content-Length value starts, 0 if none */
		__u32 te;    /* a Transfer-Encoding line was seen */
		__u32 pad;
	} scan;
	struct rq_data_event ev;
	__u8 payload[RQ_MAX_PAYLOAD * 2];
};

/* Per connection, what of its byte streams the kernel need not copy (framing.bpf.h), and when its
 * oldest unread bytes arrived (queue.bpf.c). */
struct rq_sk_state {
	__u64 body_left[2]; /* per direction: bytes of a Content-Length body still to come */
	__u64 queued;       /* when the oldest unread bytes arrived, 0: none or not known */
	__u8 head_method;   /* a HEAD request was read on this connection */
	__u8 queue_on;      /* an observed process reads requests here: time its arrivals */
	__u8 body_unsure;   /* body_left[egress] comes from a head written alone: not one byte of
			     * that body was seen yet, and the head may have had none (head_alone) */
	__u8 sendfile_bodies; /* a body after a head written alone went by sendfile: such heads are
			       * not scanned on this connection any more (nothing to save) */
	__u8 reset_waits;   /* a reset closed the socket while bytes were unread (reset_close) */
	__u8 pad[3];
	__u32 owner_tgid;   /* the observed process that last read or wrote here, and its fd: */
	__s32 owner_fd;     /* a reset closes the socket outside any close of the owner's */
	struct rq_h2_state h2; /* HTTP/2 frames (h2frames.bpf.h) */
};

/* ---- settings and maps (defined in maps.bpf.c) ------------------------------------------------ */

#ifdef RQ_DEFINE_MAPS
#define RQ_EXTERN
#else
#define RQ_EXTERN extern
#endif

/* Set by the loader between open and load. */
extern const volatile __u32 max_payload;  /* payload prefix copied per syscall */
extern const volatile bool filter_all;    /* --all: every process but reqmon */
extern const volatile bool filter_cgroup; /* --cgroup given */
extern const volatile bool filter_comm;   /* --comm given */
extern const volatile bool filter_port;   /* --port given */
extern const volatile __u32 self_tgid;    /* reqmon itself, never observed */
extern const volatile __u64 wakeup_bytes; /* wake the reader past this backlog */
extern const volatile bool h2_frames;     /* follow HTTP/2 frames (h2frames.bpf.h) */

/* Observed processes (tgid -> 1). Filled by the loader; forks of observed processes and execs
 * matching a --comm name are added here by the programs, exits removed. */
RQ_EXTERN struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

/* --cgroup: ids (cgroup v2 inode numbers) of the chosen cgroups and their descendants. */
RQ_EXTERN struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} target_cgroups SEC(".maps");

/* --comm: process names, zero-padded to 16 bytes. */
RQ_EXTERN struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RQ_MAX_COMMS);
	__type(key, char[RQ_COMM_LEN]);
	__type(value, __u8);
} target_comms SEC(".maps");

/* --port: TCP ports (host order). A process that starts listening on one is observed from its
 * listen() on (default build), so that a server started later counts from its first request;
 * the loader's scan of /proc once a second finds the rest. */
RQ_EXTERN struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RQ_MAX_COMMS);
	__type(key, __u16);
	__type(value, __u8);
} target_ports SEC(".maps");

/* One scratch record per CPU. A plain array indexed by CPU rather than a per-CPU array, whose
 * values are capped at 32 KiB; programs here do not migrate or nest on a CPU. Sized to the
 * number of possible CPUs by the loader. */
RQ_EXTERN struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rq_scratch);
} scratch SEC(".maps");

/* Counters (enum rq_stat), per CPU, summed by the loader. */
RQ_EXTERN struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RQ_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Size set by the loader (--ring-buffer-mb). */
RQ_EXTERN struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

#ifndef RQ_COMPAT
/* Per connection: what of its byte streams the kernel need not copy (framing.bpf.h). Socket local
 * storage, freed with the socket; only the default build's tp_btf programs can reach it. */
RQ_EXTERN struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct rq_sk_state);
} sk_state SEC(".maps");
#endif

#ifdef RQ_COMPAT
/* Compat build: syscall arguments from sys_enter until sys_exit, keyed by thread id. (The
 * default build needs none: it reads them from the task's saved user registers.) */
RQ_EXTERN struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct rq_args);
} active SEC(".maps");
#else
/* The target set as a bitmap over PIDs below RQ_PID_BITS (the default pid_max on 64-bit), so
 * that the check every socket call of every process pays is one load, not a hash lookup. Kept in
 * step with "targets" by the programs and by the loader (through the mmapped .bss). */
#define RQ_PID_BITS (1u << 22)
extern __u64 target_bits[RQ_PID_BITS / 64];
#endif

/* ---- targets ------------------------------------------------------------------------------- */

#ifndef RQ_COMPAT
/* The word of tgid's bit. The mask bounds the index for the verifier; the empty asm keeps
 * clang from dropping it as redundant after the caller's range check. */
static __always_inline __u64 *pid_word(__u32 tgid)
{
	__u32 w = tgid >> 6;

	asm volatile("" : "+r"(w));
	w &= RQ_PID_BITS / 64 - 1;
	return &target_bits[w];
}

static __always_inline void target_add(__u32 tgid)
{
	__u8 one = 1;

	bpf_map_update_elem(&targets, &tgid, &one, BPF_ANY);
	if (tgid < RQ_PID_BITS)
		__sync_fetch_and_or(pid_word(tgid), 1ULL << (tgid & 63));
}

static __always_inline void target_del(__u32 tgid)
{
	bpf_map_delete_elem(&targets, &tgid);
	if (tgid < RQ_PID_BITS)
		__sync_fetch_and_and(pid_word(tgid), ~(1ULL << (tgid & 63)));
}

static __always_inline bool target_has(__u32 tgid)
{
	if (tgid < RQ_PID_BITS)
		return *pid_word(tgid) & (1ULL << (tgid & 63));
	return bpf_map_lookup_elem(&targets, &tgid) != NULL;
}
#else
static __always_inline void target_add(__u32 tgid)
{
	__u8 one = 1;

	bpf_map_update_elem(&targets, &tgid, &one, BPF_ANY);
}

static __always_inline void target_del(__u32 tgid)
{
	bpf_map_delete_elem(&targets, &tgid);
}

static __always_inline bool target_has(__u32 tgid)
{
	return bpf_map_lookup_elem(&targets, &tgid) != NULL;
}

/* The current thread's argument slot. */
static __always_inline struct rq_args *args_slot(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct rq_args zero = {};

	bpf_map_update_elem(&active, &id, &zero, BPF_ANY);
	return bpf_map_lookup_elem(&active, &id);
}

static __always_inline struct rq_args *args_find(void)
{
	__u64 id = bpf_get_current_pid_tgid();

	return bpf_map_lookup_elem(&active, &id);
}
#endif

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1;
}

static __always_inline void count_n(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += n;
}

/* Is this process observed? Checked first in every program, so that the cost for every other
 * process on the machine is one load (default build) or one hash lookup (compat). */
static __always_inline bool is_target(__u32 tgid)
{
	if (tgid == self_tgid)
		return false;
	if (filter_all)
		return true;
	if (target_has(tgid))
		return true;
	if (filter_cgroup) {
		__u64 cg = bpf_get_current_cgroup_id();
		if (bpf_map_lookup_elem(&target_cgroups, &cg))
			return true;
	}
	return false;
}

#ifndef RQ_COMPAT
/* Default build: the syscall behind a socket-layer event is read from the task's saved user
 * registers. The syscall number there, and the numbers of the syscalls reqmon reads. */
#if defined(__TARGET_ARCH_x86)
#define RQ_NR(regs) ((regs)->orig_ax)
enum { NR_READ = 0, NR_WRITE = 1, NR_CLOSE = 3, NR_READV = 19, NR_WRITEV = 20, NR_SENDFILE = 40,
       NR_CONNECT = 42, NR_SENDTO = 44, NR_RECVFROM = 45, NR_SENDMSG = 46, NR_RECVMSG = 47,
       NR_SHUTDOWN = 48 };
#elif defined(__TARGET_ARCH_arm64)
#define RQ_NR(regs) ((regs)->syscallno)
enum { NR_CLOSE = 57, NR_READ = 63, NR_WRITE = 64, NR_READV = 65, NR_WRITEV = 66, NR_SENDFILE = 71,
       NR_CONNECT = 203, NR_SENDTO = 206, NR_RECVFROM = 207, NR_SHUTDOWN = 210, NR_SENDMSG = 211,
       NR_RECVMSG = 212 };
#else
#error "reqmon's default build knows the syscall numbers of x86_64 and arm64 only"
#endif
#else
/* The arguments stashed at entry for syscall `sys`, taken (cleared) so they are used once. */
static __always_inline bool take_args(__u8 sys, struct rq_args *out)
{
	struct rq_args *ap;

	if (!is_target(bpf_get_current_pid_tgid() >> 32))
		return false;
	ap = args_find();
	if (!ap || ap->syscall != sys)
		return false;
	*out = *ap;
	ap->syscall = 0;
	return true;
}

#endif

/* ---- sockets ------------------------------------------------------------------------------- */

#ifndef RQ_COMPAT
/* Read-only view of a kernel pointer as a BTF-typed one: field loads then compile to direct,
 * fault-safe loads instead of one bpf_probe_read_kernel() call each (the verifier turns this
 * kfunc into a plain move). Needs kernel 6.2+ (bpf_rdonly_cast). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define RQ_CAST(type, ptr) ((type *)bpf_rdonly_cast((void *)(ptr), bpf_core_type_id_kernel(type)))

/* Whether the socket already reached TCP_CLOSE (its state changed under the call: a reset). */
static __always_inline bool sk_closed(__u64 sk_raw)
{
	return RQ_CAST(struct sock, sk_raw)->__sk_common.skc_state == 7 /* TCP_CLOSE */;
}

/* Whether bytes that arrived on a TCP socket are still queued, not yet read by its process. A
 * reset does not drop them: the reads that follow it return them before they fail. */
static __always_inline bool sk_unread(__u64 sk_raw)
{
	struct tcp_sock *tp = RQ_CAST(struct tcp_sock, sk_raw);

	return tp->rcv_nxt != tp->copied_seq;
}

static __always_inline void fill_endpoints(struct sock *sk_raw, struct rq_endpoints *ep)
{
	struct sock *sk = RQ_CAST(struct sock, sk_raw);
	__u16 family = sk->__sk_common.skc_family;

	__builtin_memset(ep, 0, sizeof(*ep));
	ep->family = family;
	ep->lport = sk->__sk_common.skc_num;
	ep->rport = bpf_ntohs(sk->__sk_common.skc_dport);
	if (family == RQ_AF_INET) {
		__u32 l = sk->__sk_common.skc_rcv_saddr, r = sk->__sk_common.skc_daddr;

		__builtin_memcpy(ep->laddr, &l, 4);
		__builtin_memcpy(ep->raddr, &r, 4);
	} else {
		/* All 16 bytes: BPF_CORE_READ_INTO() would size the copy by the array's element. */
		bpf_probe_read_kernel(ep->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_probe_read_kernel(ep->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

#else
/* Compat build (kernels before 6.5): one CO-RE probe read per field. */
/* The struct sock behind fd if it is a TCP (stream, IPv4/IPv6) socket, else NULL. Walks the
 * task's file table: fd -> struct file -> inode mode must be a socket -> struct socket -> sk. */
static __always_inline struct sock *fd_to_tcp_sock(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = NULL;
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return NULL;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & RQ_S_IFMT) != RQ_S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return NULL;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return NULL;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != RQ_AF_INET && family != RQ_AF_INET6)
		return NULL;
	if (BPF_CORE_READ(sk, sk_type) != RQ_SOCK_STREAM)
		return NULL;
	return sk;
}

static __always_inline bool sk_closed(__u64 sk_raw)
{
	return BPF_CORE_READ((struct sock *)sk_raw, __sk_common.skc_state) == 7 /* TCP_CLOSE */;
}

static __always_inline void fill_endpoints(struct sock *sk, struct rq_endpoints *ep)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	__builtin_memset(ep, 0, sizeof(*ep));
	ep->family = family;
	ep->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	ep->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == RQ_AF_INET) {
		bpf_probe_read_kernel(ep->laddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_probe_read_kernel(ep->raddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_probe_read_kernel(ep->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_probe_read_kernel(ep->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}
#endif

/* ---- records ------------------------------------------------------------------------------- */

/* Records are submitted without waking the reader, which drains on a short timer: a wake-up per
 * record costs a busy server a third of its throughput here (shared/KERNEL-NOTES.md). The record
 * that takes the backlog past wakeup_bytes (256 KiB: several hundred records) wakes the reader, so
 * that under load it drains in short batches (the server never waits long behind it) and the
 * buffer never fills. Only that one record wakes it: waking on every record past the mark (as
 * before) made each of the server's syscalls queue a wake-up (an irq_work) until the reader caught
 * up, and cost reqmon ~25 % more CPU per request in wake-ups that found it already awake. */
static __always_inline __u64 rb_flags(__u64 size)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

	/* a record takes its size plus an 8-byte header, rounded up to 8 */
	return avail < wakeup_bytes && avail + ((size + 15) & ~7ULL) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
								    : BPF_RB_NO_WAKEUP;
}

static __always_inline void fill_header(struct rq_event_header *h, __u32 type, __u64 id, int fd,
					__u64 ts_enter, __u64 ts_exit)
{
	h->type = type;
	h->pid = id >> 32;
	h->tid = (__u32)id;
	h->fd = fd;
	h->ts_enter = ts_enter;
	h->ts_exit = ts_exit;
}

/* For 1 <= n <= RQ_MAX_PAYLOAD returns n, in a form whose bounds the verifier can follow (a plain
 * "if (n > max)" clamp is often reordered away by clang). */
static __always_inline __u32 bound_len(__u32 n)
{
	return ((n - 1) & (RQ_MAX_PAYLOAD - 1)) + 1;
}

/* Reads the iovec array of the data described by *a (readv/writev, recvmsg/sendmsg) into s->iov in
 * one read, up to RQ_MAX_IOV of them; returns how many, 0 for none (or a syscall with one
 * buffer). Shared by the plain copy (copy_payload) and the HTTP/2 frame walk (h2frames.bpf.h). */
static __always_inline __u32 load_iovs(struct rq_scratch *s, const struct rq_args *a)
{
	const struct iovec *iovp;
	__u32 cnt, bytes;

	switch (a->syscall) {
	case RQ_SYS_READV:
	case RQ_SYS_WRITEV:
		iovp = (const struct iovec *)a->ubuf;
		cnt = a->iovcnt;
		break;
	case RQ_SYS_RECVMSG:
	case RQ_SYS_SENDMSG: {
		struct user_msghdr mh;

		if (bpf_probe_read_user(&mh, sizeof(mh), (void *)a->ubuf))
			return 0;
		iovp = mh.msg_iov;
		cnt = mh.msg_iovlen;
		break;
	}
	default:
		return 0;
	}
	if (cnt == 0)
		return 0;
	if (cnt > RQ_MAX_IOV)
		cnt = RQ_MAX_IOV;
	/* The empty asm keeps the mask, which bounds the size for the verifier, from being dropped
	 * as redundant. */
	bytes = cnt * sizeof(struct iovec) - 1;
	asm volatile("" : "+r"(bytes));
	bytes = (bytes & (sizeof(s->iov) - 1)) + 1;
	if (bpf_probe_read_user(s->iov, bytes, iovp))
		return 0;
	return cnt;
}

/* Copying from s->iov, one iovec per bpf_loop step (verified once, not once per iovec). */
struct rq_iov_copy {
	struct rq_scratch *s;
	__u32 cnt;
	__u32 want;
	__u32 off;
};

static long copy_one_iov(__u64 index, void *ctx)
{
	struct rq_iov_copy *c = ctx;
	struct rq_scratch *s = c->s;
	__u32 i = (__u32)index, off = c->off, n;
	struct iovec v;

	if (i >= c->cnt || off >= c->want)
		return 1;
	v = s->iov[i & (RQ_MAX_IOV - 1)];
	n = c->want - off;
	if (v.iov_len < n)
		n = v.iov_len;
	if (n == 0)
		return 0;
	/* off < want <= RQ_MAX_PAYLOAD and n <= RQ_MAX_PAYLOAD: the copy stays within the scratch
	 * payload, which is twice RQ_MAX_PAYLOAD long. */
	asm volatile("" : "+r"(off));
	off &= RQ_MAX_PAYLOAD - 1;
	if (bpf_probe_read_user(&s->payload[off], bound_len(n), v.iov_base))
		return 1;
	c->off = off + n;
	return 0;
}

/* Copies up to want bytes spread over the iovecs of *a into s->payload; returns bytes copied. A
 * server's head and body (nginx writes 2 iovecs) and a write of many small pieces (gRPC's C
 * core: a frame header and a payload each, dozens) alike, up to RQ_MAX_IOV iovecs. first_iov:
 * no further than the first iovec (copy_window). */
static __always_inline __u32 copy_iov(struct rq_scratch *s, const struct rq_args *a, __u32 want,
				      bool first_iov)
{
	struct rq_iov_copy c = {.s = s, .want = want};

	c.cnt = load_iovs(s, a);
	if (c.cnt == 0)
		return 0;
	if (first_iov && s->iov[0].iov_len < want)
		c.want = s->iov[0].iov_len;
	bpf_loop(RQ_MAX_IOV, copy_one_iov, &c, 0);
	return c.off;
}

/* Is this the start of a TLS record (content type 20..23, protocol version 3.x)? The kernel side
 * tells a TLS connection by its ciphertext, so that one process's TLS and plain connections (a
 * TLS front end with a plain upstream) are kept apart. */
static __always_inline bool tls_record_start(const __u8 *p, long len)
{
	return len >= 5 && p[0] >= 20 && p[0] <= 23 && p[1] == 3 && p[2] <= 4;
}

/* Lost records, told in band. When the ring buffer has no room for a record, the next record
 * submitted (on any CPU) is preceded by an RQ_EV_LOST record: whatever the reader gets after it
 * may follow records that never arrived, so it must not pair a request with a response across
 * it. lost_seq counts every record lost; marked_seq is lost_seq as of the last marker. A record
 * is only submitted once the losses before it are marked: if the marker finds no room, the
 * record counts as lost too. */
extern __u64 lost_seq;
extern __u64 marked_seq;

static __always_inline void note_lost(void)
{
	count(RQ_STAT_LOST);
	__sync_fetch_and_add(&lost_seq, 1);
}

/* Submits the marker of the records lost up to seq; returns 0 when it was submitted. A function
 * of its own (not inlined), called only after a loss: the marker's room on the stack is then not
 * part of every program's frame (the verifier limits the frames of a call chain to 512 bytes
 * together, bpf_loop callbacks included). */
static __noinline long mark_lost(__u64 seq)
{
	struct rq_lost_event m = {};
	__u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns();

	fill_header(&m.h, RQ_EV_LOST, id, -1, now, now);
	m.lost = seq;
	if (bpf_ringbuf_output(&events, &m, sizeof(m), rb_flags(sizeof(m)))) {
		note_lost();
		return -1;
	}
	*(volatile __u64 *)&marked_seq = seq;
	return 0;
}

/* bpf_ringbuf_output() of one record, preceded by a loss marker when records were lost since
 * the last one; counts a record that found no room. Returns 0 when the record was submitted.
 * wake: the reader is woken for this record whatever the backlog (a rare record that user space
 * must act on at once). */
static __always_inline long rq_output_wake(void *data, __u64 size, bool wake)
{
	__u64 seq = *(volatile __u64 *)&lost_seq;

	if (seq != *(volatile __u64 *)&marked_seq && mark_lost(seq))
		return -1;
	if (bpf_ringbuf_output(&events, data, size, wake ? BPF_RB_FORCE_WAKEUP : rb_flags(size))) {
		note_lost();
		return -1;
	}
	return 0;
}

static __always_inline long rq_output(void *data, __u64 size)
{
	return rq_output_wake(data, size, false);
}

/* A connection record (opened or closed) of the observed thread id on its fd. */
static __always_inline void submit_conn(__u32 type, __u64 id, int fd, struct sock *sk, __u8 role,
					__u8 sys, __s32 ret, __u64 ts_enter)
{
	struct rq_conn_event ev = {};

	fill_header(&ev.h, type, id, fd, ts_enter, bpf_ktime_get_ns());
	fill_endpoints(sk, &ev.ep);
	ev.role = role;
	ev.syscall = sys;
	ev.ret = ret;
	if (rq_output(&ev, sizeof(ev)) == 0)
		count(RQ_STAT_CONN);
}

#ifndef RQ_COMPAT
/* The close of a socket that a reset (or a timeout) closed outside any close of its owner's:
 * reported once, for the observed process that last read or wrote on it and its fd. A function
 * of its own (not inlined): its record on the stack would not fit in sock_data's frame. */
static __noinline void close_for_owner(struct sock *sk, struct rq_sk_state *st)
{
	__u64 id = ((__u64)st->owner_tgid << 32) | st->owner_tgid;

	st->owner_tgid = 0;
	submit_conn(RQ_EV_CLOSE, id, st->owner_fd, sk, RQ_ROLE_UNKNOWN, RQ_SYS_CLOSE, 0,
		    bpf_ktime_get_ns());
}
#endif

/* Copies up to want bytes of the data described by *a into s->payload; returns bytes copied. A
 * function of its own (not inlined): build_data calls it from several places, and the verifier
 * then checks it once per state rather than once per copy of its code. */
static __noinline __u32 copy_payload(struct rq_scratch *s, const struct rq_args *a, __u32 want)
{
	__u32 len;

	if (!want)
		return 0;
	switch (a->syscall) {
	case RQ_SYS_SENDFILE:
		/* Bytes went from a file to the socket inside the kernel: size only. */
		return 0;
	case RQ_SYS_READV:
	case RQ_SYS_WRITEV:
	case RQ_SYS_RECVMSG:
	case RQ_SYS_SENDMSG:
		return copy_iov(s, a, want, false);
	default:
		len = bound_len(want);
		if (bpf_probe_read_user(s->payload, len, (void *)a->ubuf))
			return 0;
		return len;
	}
}

#include "framing.bpf.h"
#include "h2frames.bpf.h"

/* Copies the head window of the data described by *a into s->payload: its first RQ_HEAD_WINDOW
 * bytes, or, for a syscall with iovecs whose first iovec is shorter, that iovec alone. A server
 * that writes a head and its body in iovecs of their own (nginx: writev of the head and the file's
 * bytes) has its head found without a byte of the body copied. Returns bytes copied. */
static __noinline __u32 copy_window(struct rq_scratch *s, const struct rq_args *a)
{
	switch (a->syscall) {
	case RQ_SYS_READV:
	case RQ_SYS_WRITEV:
	case RQ_SYS_RECVMSG:
	case RQ_SYS_SENDMSG:
		return copy_iov(s, a, RQ_HEAD_WINDOW, true);
	default:
		return copy_payload(s, a, RQ_HEAD_WINDOW);
	}
}

/* This CPU's scratch record. */
static __always_inline struct rq_scratch *scratch_slot(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&scratch, &cpu);
}

/* Fills the scratch record for the data described by *a (ret bytes moved) and copies what user
 * space needs of the payload: HTTP/2 frames without DATA payloads (h2frames.bpf.h), the head of
 * an HTTP/1.x message whose body is framed by its length (framing.bpf.h), else the prefix. st is
 * the connection's state (NULL where there is none: the compat build, TLS plaintext); h2 where
 * it is in HTTP/2 frames (NULL: not followed). Returns the record, or NULL. */
static __always_inline struct rq_scratch *build_data(const struct rq_args *a, long ret, __u64 id,
						     __u64 now, struct rq_sk_state *st,
						     struct rq_h2_state *h2)
{
	struct rq_scratch *s;
	__u32 cap, want, len = 0, head;

	s = scratch_slot();
	if (!s)
		return NULL;

	fill_header(&s->ev.h, RQ_EV_DATA, id, a->fd, a->ts_enter, now);
	fill_endpoints((struct sock *)a->sk, &s->ev.ep);
	s->ev.bytes = ret;
	s->ev.direction = a->direction;
	s->ev.syscall = a->syscall;
	s->ev.role = RQ_ROLE_UNKNOWN;
	s->ev.flags = a->flags;
	s->ev.ts_queued = a->ts_queued;

	cap = max_payload;
	if (cap > RQ_MAX_PAYLOAD)
		cap = RQ_MAX_PAYLOAD;
	want = ret < cap ? ret : cap;
	if ((a->flags & RQ_DATA_TLS_CIPHER) || a->syscall == RQ_SYS_SENDFILE)
		want = 0;

	if (h2 && h2_frames && want) {
		struct rq_h2_dir *d = &h2->dir[a->direction & 1];

		/* A direction whose frames are followed: the frames without DATA payloads. */
		if (d->mode >= RQ_H2_HEADER) {
			int framed = h2_record(s, a, ret, d);

			if (framed >= 0) {
				len = framed;
				goto done;
			}
		}
	}
	if (st) {
		__u64 *left = &st->body_left[a->direction & 1];

		/* The first record after a head written alone: a status line there means that head
		 * had no body after all (the answer to a HEAD request the kernel did not see, such
		 * as one pipelined behind another request). Its first bytes tell (a sendfile's are
		 * a body's). */
		if (*left && st->body_unsure && a->direction == RQ_DIR_EGRESS) {
			st->body_unsure = 0;
			if (a->syscall == RQ_SYS_SENDFILE)
				st->sendfile_bodies = 1;
			else if (copy_payload(s, a, 9) == 9 && status_line(s->payload))
				*left = 0;
		}
		/* Only bytes of a body whose length the head gave: count them, copy nothing. */
		if (*left >= (__u64)ret) {
			*left -= ret;
			count_n(RQ_STAT_BODY_SKIPPED, ret);
			goto done;
		}
		/* The body ends within this record: copied from its start as usual. */
		*left = 0;
	}
	if (want > RQ_HEAD_WINDOW) {
		len = copy_window(s, a);
		/* A window shorter than RQ_HEAD_WINDOW is a whole first iovec: the head must end in
		 * it. The scan reads the whole window, but what it finds past the bytes copied is
		 * never taken (head_only: the head's end within them, and the lines before it). */
		if (len >= 16) {
			head = head_only(s, len, ret, a->direction, st, false);
			if (head) {
				len = head;
				count_n(RQ_STAT_BODY_SKIPPED, ret - head);
				goto done;
			}
		}
	}
	len = copy_payload(s, a, want);
	/* HTTP/2 frames from this record on? Only a record whose fourth byte is a frame type (or that
	 * may be the preface) can start them (h2_may_start): HTTP/1.x ("GET ", "HTTP/1.1") pays no
	 * call. */
	if (h2 && h2_frames && len >= 9 && (s->payload[3] <= 0x9 || s->payload[0] == 'P')) {
		int framed = h2_try_start(s, a, ret, len, h2);

		if (framed > 0) {
			len = framed;
			goto done;
		}
		if (framed == -2) {
			len = 0;
			goto done;
		}
		if (framed == -1)
			len = copy_payload(s, a, want);
	}
	if (len < ret && want)
		count(RQ_STAT_TRUNCATED);
	/* An upload's head read on its own (or with the body's start): the body's later reads
	 * need not be copied. */
	if (st && want <= RQ_HEAD_WINDOW && a->direction == RQ_DIR_INGRESS && len >= 16 &&
	    s->payload[0] == 'P')
		head_only(s, len, ret, a->direction, st, false);
	/* A response head written on its own: its body's later writes need not be copied. */
	if (st && a->direction == RQ_DIR_EGRESS && len == ret && len >= 16 && len <= RQ_HEAD_WINDOW &&
	    !st->sendfile_bodies && head_alone(s, len))
		head_only(s, len, ret, a->direction, st, true);
	/* A HEAD request: the responses on this connection may give a length they do not send. */
	if (st && a->direction == RQ_DIR_INGRESS && len >= 5 && s->payload[0] == 'H' &&
	    s->payload[1] == 'E' && s->payload[2] == 'A' && s->payload[3] == 'D' && s->payload[4] == ' ')
		st->head_method = 1;
done:
	s->ev.payload_len = len ? bound_len(len) : 0;
	return s;
}

/* Submits the record build_data() filled. */
static __always_inline void submit_data(struct rq_scratch *s, __u32 stat)
{
	__u32 len = s->ev.payload_len;

	len = len ? bound_len(len) : 0;
	if (rq_output(&s->ev, sizeof(s->ev) + len) == 0)
		count(stat);
}

