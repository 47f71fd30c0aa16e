/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * min_capture: the least a capture that sees HTTP heads can do on reqmon's two data hooks, for
 * the benchmark (x86-64). For each receive and send of one observed process it does only what any
 * such capture must: test the process, find the syscall's buffer in the saved user registers
 * (for writev, its first iovec: nginx's response head), and copy up to 255 bytes of it straight
 * into a ring buffer reservation, which it submits without waking the reader. No socket checks,
 * no connection state, no endpoints, no framing, no HTTP/2 or TLS, no loss accounting. The loader
 * (hook_floor.cc) drains the ring and throws the records away. scripts/bench.sh runs nginx with
 * this attached beside the empty programs (hook_floor.bpf.c) and reqmon: what is left between
 * this and reqmon is what reqmon's own checks and parsing cost.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#define HEAD_MAX 256

/* x86-64's saved user registers (struct pt_regs; the loads are checked against the kernel's BTF
 * by offset). */
struct regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax,
		ip, cs, flags, sp, ss;
};

struct iov {
	__u64 base;
	__u64 len;
};

struct record {
	__u64 ts;
	__u32 tgid;
	__s32 bytes;
	__u32 len;
	__u32 dir;
	char head[HEAD_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} ring SEC(".maps");

/* The process observed; set by the loader before load. */
const volatile __u32 target_tgid = 0;

#define NR_WRITEV 20

static __always_inline int capture(__u64 *ctx, __u32 dir)
{
	__u64 id = bpf_get_current_pid_tgid();
	int ret = (int)ctx[1];
	struct regs *regs;
	struct record *r;
	__u64 buf;
	__u32 len;

	if ((__u32)(id >> 32) != target_tgid || ret <= 0)
		return 0;
	regs = (struct regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	buf = regs->si;
	len = ret < HEAD_MAX - 1 ? ret : HEAD_MAX - 1;
	if (regs->orig_ax == NR_WRITEV) {
		struct iov first;

		if (bpf_probe_read_user(&first, sizeof(first), (void *)buf))
			return 0;
		buf = first.base;
		if (first.len < len)
			len = first.len;
	}
	r = bpf_ringbuf_reserve(&ring, sizeof(*r), 0);
	if (!r)
		return 0;
	r->ts = bpf_ktime_get_ns();
	r->tgid = id >> 32;
	r->bytes = ret;
	r->dir = dir;
	r->len = len;
	if (len) {
		__u64 n = len;

		asm volatile("%0 &= 0xff" : "+r"(n));	/* HEAD_MAX - 1, as the verifier sees it */
		bpf_probe_read_user(r->head, n, (void *)buf);
	}
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int min_recv(__u64 *ctx)
{
	return capture(ctx, 0);
}

SEC("tp_btf/sock_send_length")
int min_send(__u64 *ctx)
{
	return capture(ctx, 1);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
