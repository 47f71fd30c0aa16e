// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * reqmon's kernel side. For each read or write on a TCP socket (IPv4/IPv6) by a process reqmon
 * observes it submits one record to the ring buffer: the header of include/reqmon/abi.h plus the
 * first bytes of the payload. Connection opens and closes, and the fork/exec/exit of observed
 * processes, are records too. No kprobes or fentry are used: this kernel has neither.
 *
 * Two builds come from this file. The default one (kernel 6.5+) hooks the socket layer's own
 * tracepoints (sock_recv_length, sock_send_length, inet_sock_set_state) as raw tracepoints and
 * reads the syscall's arguments from the task's saved registers, so it attaches no syscall
 * tracepoint: other processes' syscalls do not pay for reqmon. The compat one (RQ_COMPAT,
 * kernel 5.8+) uses the syscall tracepoints of read/write and friends, accept, connect and close.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "reqmon/abi.h"
#include "reqmon.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Settings, set by the loader between open and load. */
const volatile __u32 max_payload = RQ_DEFAULT_PAYLOAD; /* payload prefix copied per syscall */
const volatile bool filter_all = false;                /* --all: every process but reqmon */
const volatile bool filter_cgroup = false;             /* --cgroup given */
const volatile bool filter_comm = false;               /* --comm given */
const volatile __u32 self_tgid = 0;                    /* reqmon itself, never observed */
const volatile __u64 wakeup_bytes = 1 << 20;           /* wake the reader past this backlog */

/* Observed processes (tgid -> 1). Filled by the loader; forks of observed processes and execs
 * matching a --comm name are added here by the programs below, exits removed. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

#ifndef RQ_COMPAT
/* The same set as a bitmap over PIDs below RQ_PID_BITS (the default pid_max on 64-bit), so
 * that the check every syscall of every process pays is one load, not a hash lookup. Kept in
 * step with "targets" by the programs below and by the loader (through the mmapped .bss). */
#define RQ_PID_BITS (1u << 22)
__u64 target_bits[RQ_PID_BITS / 64];
/* The word of tgid's bit. The mask bounds the index for the verifier; the empty asm keeps
 * clang from dropping it as redundant after the caller's range check. */
static __always_inline __u64 *pid_word(__u32 tgid)
{
	__u32 w = tgid >> 6;

	asm volatile("" : "+r"(w));
	w &= RQ_PID_BITS / 64 - 1;
	return &target_bits[w];
}
#define RQ_PID_WORD(tgid) (*pid_word(tgid))

static __always_inline void target_add(__u32 tgid)
{
	__u8 one = 1;

	bpf_map_update_elem(&targets, &tgid, &one, BPF_ANY);
	if (tgid < RQ_PID_BITS)
		__sync_fetch_and_or(&RQ_PID_WORD(tgid), 1ULL << (tgid & 63));
}

static __always_inline void target_del(__u32 tgid)
{
	bpf_map_delete_elem(&targets, &tgid);
	if (tgid < RQ_PID_BITS)
		__sync_fetch_and_and(&RQ_PID_WORD(tgid), ~(1ULL << (tgid & 63)));
}

static __always_inline bool target_has(__u32 tgid)
{
	if (tgid < RQ_PID_BITS)
		return RQ_PID_WORD(tgid) & (1ULL << (tgid & 63));
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
#endif

/* --cgroup: ids (cgroup v2 inode numbers) of the chosen cgroups and their descendants. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} target_cgroups SEC(".maps");

/* --comm: process names, zero-padded to 16 bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RQ_MAX_COMMS);
	__type(key, char[RQ_COMM_LEN]);
	__type(value, __u8);
} target_comms SEC(".maps");

/* Compat build: syscall arguments from sys_enter until sys_exit, keyed by thread id. (The
 * default build needs none: it reads them from the task's saved user registers.) */
#ifdef RQ_COMPAT
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct rq_args);
} active SEC(".maps");

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

/* One scratch record per CPU. A plain array indexed by CPU rather than a per-CPU array, whose
 * values are capped at 32 KiB; programs here do not migrate or nest on a CPU. Sized to the
 * number of possible CPUs by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rq_scratch);
} scratch SEC(".maps");

/* Counters (enum rq_stat), per CPU, summed by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RQ_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Size set by the loader (--ring-buffer-mb). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1;
}

/* Is this process observed? Checked first in every program, so that the cost for every other
 * process on the machine is one hash lookup. */
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
/* Read-only view of a kernel pointer as a BTF-typed one: field loads then compile to direct,
 * fault-safe loads instead of one bpf_probe_read_kernel() call each (the verifier turns this
 * kfunc into a plain move). Needs kernel 6.2+ (bpf_rdonly_cast). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define RQ_CAST(type, ptr) ((type *)bpf_rdonly_cast((void *)(ptr), bpf_core_type_id_kernel(type)))

/* The struct sock behind fd if it is a TCP (stream, IPv4/IPv6) socket, else NULL. Walks the
 * task's file table: fd -> struct file -> inode mode must be a socket -> struct socket -> sk. */
static __always_inline struct sock *fd_to_tcp_sock(int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	struct file *f = NULL;
	struct socket *sock;
	struct sock *sk;

	if (!fdt || fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	/* The fd array is indexed by a variable: one helper read. */
	if (bpf_probe_read_kernel(&f, sizeof(f), &fdt->fd[fd]) || !f)
		return NULL;
	f = RQ_CAST(struct file, f);
	if ((f->f_inode->i_mode & RQ_S_IFMT) != RQ_S_IFSOCK)
		return NULL;
	sock = RQ_CAST(struct socket, f->private_data);
	if (!sock)
		return NULL;
	sk = sock->sk;
	if (!sk)
		return NULL;
	if (sk->__sk_common.skc_family != RQ_AF_INET && sk->__sk_common.skc_family != RQ_AF_INET6)
		return NULL;
	if (sk->sk_type != RQ_SOCK_STREAM)
		return NULL;
	return sk;
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

/* Records are submitted without waking the reader, which drains on a short timer: a wake-up per
 * record costs a busy server a third of its throughput here (shared/KERNEL-NOTES.md). Past
 * wakeup_bytes of backlog (64 KiB: a few hundred records) the reader is woken, so that under
 * load it drains in short batches (the server never waits long behind it) and the buffer never
 * fills. */
static __always_inline __u64 rb_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
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

/* ---- data: read/write and friends ---------------------------------------------------------- */

/* For 1 <= n <= RQ_MAX_PAYLOAD returns n, in a form whose bounds the verifier can follow (a plain
 * "if (n > max)" clamp is often reordered away by clang). */
static __always_inline __u32 bound_len(__u32 n)
{
	return ((n - 1) & (RQ_MAX_PAYLOAD - 1)) + 1;
}

/* Copies up to want bytes spread over an iovec array into s->payload; returns bytes copied. */
static __always_inline __u32 copy_iov(struct rq_scratch *s, const struct iovec *iovp, __u32 iovcnt,
				      __u32 want)
{
	struct iovec iovs[RQ_MAX_IOV];
	__u32 off = 0, cnt = iovcnt < RQ_MAX_IOV ? iovcnt : RQ_MAX_IOV, bytes;

	if (cnt == 0)
		return 0;
	/* The first iovecs in one read. The empty asm keeps the mask, which bounds the size for
	 * the verifier, from being dropped as redundant. */
	bytes = cnt * sizeof(struct iovec) - 1;
	asm volatile("" : "+r"(bytes));
	bytes = (bytes & (sizeof(iovs) - 1)) + 1;
	if (bpf_probe_read_user(iovs, bytes, iovp))
		return 0;
	for (int i = 0; i < RQ_MAX_IOV; i++) {
		__u32 n;

		if (i >= cnt || off >= want)
			break;
		n = want - off;
		if (iovs[i].iov_len < n)
			n = iovs[i].iov_len;
		if (n == 0)
			continue;
		/* off < want <= RQ_MAX_PAYLOAD and n <= RQ_MAX_PAYLOAD: the copy stays within the
		 * scratch payload, which is twice RQ_MAX_PAYLOAD long. */
		off &= RQ_MAX_PAYLOAD - 1;
		if (bpf_probe_read_user(&s->payload[off], bound_len(n), iovs[i].iov_base))
			break;
		off += n;
	}
	return off;
}

/* Submits one data record: the syscall's arguments in *a, ret bytes moved. */
static __always_inline int emit_data(const struct rq_args *a, long ret, __u64 id, __u64 now)
{
	struct rq_scratch *s;
	__u32 cpu = bpf_get_smp_processor_id(), cap, want, len = 0;

	s = bpf_map_lookup_elem(&scratch, &cpu);
	if (!s)
		return 0;

	fill_header(&s->ev.h, RQ_EV_DATA, id, a->fd, a->ts_enter, now);
	fill_endpoints((struct sock *)a->sk, &s->ev.ep);
	s->ev.bytes = ret;
	s->ev.direction = a->direction;
	s->ev.syscall = a->syscall;
	s->ev.role = RQ_ROLE_UNKNOWN;
	s->ev.pad = 0;

	cap = max_payload;
	if (cap > RQ_MAX_PAYLOAD)
		cap = RQ_MAX_PAYLOAD;
	want = ret < cap ? ret : cap;

	switch (a->syscall) {
	case RQ_SYS_SENDFILE:
		/* Bytes went from a file to the socket inside the kernel: size only. */
		break;
	case RQ_SYS_READV:
	case RQ_SYS_WRITEV:
		len = copy_iov(s, (const struct iovec *)a->ubuf, a->iovcnt, want);
		break;
	case RQ_SYS_RECVMSG:
	case RQ_SYS_SENDMSG: {
		struct user_msghdr mh;

		if (bpf_probe_read_user(&mh, sizeof(mh), (void *)a->ubuf) == 0)
			len = copy_iov(s, mh.msg_iov, mh.msg_iovlen, want);
		break;
	}
	default:
		len = want ? bound_len(want) : 0;
		if (len && bpf_probe_read_user(s->payload, len, (void *)a->ubuf))
			len = 0;
		break;
	}
	len = len ? bound_len(len) : 0;
	s->ev.payload_len = len;
	if (len < ret && a->syscall != RQ_SYS_SENDFILE)
		count(RQ_STAT_TRUNCATED);

	if (bpf_ringbuf_output(&events, s, sizeof(s->ev) + len, rb_flags()))
		count(RQ_STAT_LOST);
	else
		count(RQ_STAT_DATA);
	return 0;
}

#ifndef RQ_COMPAT
/* Default build: the socket layer's own tracepoints (kernel 6.3+), sock_recv_length and
 * sock_send_length, which fire once per recvmsg/sendmsg on a socket after the bytes moved, with
 * the struct sock at hand. Unlike syscall tracepoints they cost nothing to other syscalls (a
 * syscall tracepoint sends every syscall of every process through the slow path) and need no
 * entry program: the syscall's own arguments are still in the task's saved user registers. */
/* The syscall number in the saved registers, and the numbers of the syscalls reqmon reads. */
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
#define RQ_MSG_PEEK 2

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

static __always_inline int sock_data(struct bpf_raw_tracepoint_args *ctx, __u8 dir)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sock *sk_raw = (struct sock *)ctx->args[0], *sk;
	int ret = (int)ctx->args[1], flags = (int)ctx->args[2];
	struct pt_regs *regs;
	struct rq_args a;
	__u64 now;
	__u16 family;

	if (!is_target(id >> 32) || ret <= 0 || !sk_raw)
		return 0;
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
	return emit_data(&a, ret, id, now);
}

SEC("raw_tracepoint/sock_recv_length")
int sock_recv_length(struct bpf_raw_tracepoint_args *ctx)
{
	return sock_data(ctx, RQ_DIR_INGRESS);
}

SEC("raw_tracepoint/sock_send_length")
int sock_send_length(struct bpf_raw_tracepoint_args *ctx)
{
	return sock_data(ctx, RQ_DIR_EGRESS);
}

#else
/* Compat build (kernels before 6.5): the data syscalls' own tracepoints; the entry program keeps
 * the arguments for the exit program. */
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
	if (ret <= 0)
		return 0;
	return emit_data(&a, ret, id, bpf_ktime_get_ns());
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

/* ---- connections: accept, connect, close ------------------------------------------------------ */

static __always_inline void submit_conn(__u32 type, __u64 id, int fd, struct sock *sk, __u8 role,
					__u8 sys, __s32 ret, __u64 ts_enter)
{
	struct rq_conn_event ev = {};

	fill_header(&ev.h, type, id, fd, ts_enter, bpf_ktime_get_ns());
	fill_endpoints(sk, &ev.ep);
	ev.role = role;
	ev.syscall = sys;
	ev.ret = ret;
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), rb_flags()))
		count(RQ_STAT_LOST);
	else
		count(RQ_STAT_CONN);
}

#ifndef RQ_COMPAT
/* Default build: connections from the TCP state changes the observed process makes itself, so
 * that no syscall tracepoint is attached (one would send every syscall of every process on the
 * host through the slow path). Connecting (CLOSE -> SYN_SENT inside connect) opens a client
 * connection; closing (-> FIN_WAIT1, LAST_ACK or CLOSE inside close or shutdown) ends one. The
 * fd is the syscall's first argument. Accepted connections have no record of their own: the
 * first bytes read or written open them (the role follows from whether a request or a response
 * came first), and the reader tells a reused fd by its new endpoints. */
enum { RQ_TCP_ESTABLISHED = 1, RQ_TCP_SYN_SENT = 2, RQ_TCP_SYN_RECV = 3, RQ_TCP_FIN_WAIT1 = 4,
       RQ_TCP_CLOSE = 7, RQ_TCP_CLOSE_WAIT = 8, RQ_TCP_LAST_ACK = 9 };

SEC("raw_tracepoint/inet_sock_set_state")
int inet_sock_set_state(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sock *sk = (struct sock *)ctx->args[0];
	int oldstate = (int)ctx->args[1], newstate = (int)ctx->args[2];
	struct pt_regs *regs;
	long nr;

	/* A close is the first step out of an open state (a second close, or a close after a
	 * shutdown, starts from FIN_WAIT or LAST_ACK: already reported). */
	if (newstate == RQ_TCP_FIN_WAIT1 || newstate == RQ_TCP_LAST_ACK || newstate == RQ_TCP_CLOSE) {
		if (oldstate != RQ_TCP_ESTABLISHED && oldstate != RQ_TCP_CLOSE_WAIT &&
		    oldstate != RQ_TCP_SYN_SENT && oldstate != RQ_TCP_SYN_RECV)
			return 0;
	} else if (newstate != RQ_TCP_SYN_SENT) {
		return 0;
	}
	if (!is_target(id >> 32) || !sk)
		return 0;
	/* State changes in softirq (a FIN or RST arriving) run on whatever task was interrupted;
	 * only the ones inside the process's own connect, close or shutdown count. */
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	nr = RQ_NR(regs);
	if (newstate == RQ_TCP_SYN_SENT) {
		if (nr != NR_CONNECT)
			return 0;
		submit_conn(RQ_EV_OPEN, id, PT_REGS_PARM1_SYSCALL(regs), sk, RQ_ROLE_CLIENT,
			    RQ_SYS_CONNECT, 0, bpf_ktime_get_ns());
		return 0;
	}
	if (nr != NR_CLOSE && nr != NR_SHUTDOWN)
		return 0;
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
	now = bpf_ktime_get_ns();
	submit_conn(RQ_EV_CLOSE, id, fd, sk, RQ_ROLE_UNKNOWN, RQ_SYS_CLOSE, 0, now);
	return 0;
}

#endif /* RQ_COMPAT */

/* ---- processes: follow forks, pick up --comm execs, drop exits --------------------------------- */

static __always_inline void submit_proc(__u32 kind, __u32 pid, __u32 ppid)
{
	struct rq_proc_event ev = {};
	__u64 now = bpf_ktime_get_ns();

	fill_header(&ev.h, RQ_EV_PROC, ((__u64)pid << 32) | pid, -1, now, now);
	ev.ppid = ppid;
	ev.kind = kind;
	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), rb_flags()))
		count(RQ_STAT_LOST);
}

/* A raw tracepoint gives the task pointers, so a new thread (same tgid) can be told apart from a
 * new process. Children of observed processes are observed from their first instruction. */
SEC("raw_tracepoint/sched_process_fork")
int sched_process_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	__u8 one = 1;

	if (ptgid == ctgid || !target_has(ptgid))
		return 0;
	target_add(ctgid);
	submit_proc(RQ_PROC_FORK, ctgid, ptgid);
	return 0;
}

SEC("raw_tracepoint/sched_process_exec")
int sched_process_exec(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	char comm[RQ_COMM_LEN] = {};
	__u8 one = 1;

	if (!filter_comm || tgid == self_tgid)
		return 0;
	bpf_get_current_comm(comm, sizeof(comm));
	if (!bpf_map_lookup_elem(&target_comms, comm))
		return 0;
	if (target_has(tgid))
		return 0;
	target_add(tgid);
	submit_proc(RQ_PROC_EXEC, tgid, 0);
	return 0;
}

SEC("raw_tracepoint/sched_process_exit")
int sched_process_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	/* The whole process is gone when its main thread exits. */
	if ((__u32)id != tgid || !target_has(tgid))
		return 0;
	target_del(tgid);
	submit_proc(RQ_PROC_EXIT, tgid, 0);
	return 0;
}
