// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * Processes: children of observed processes are observed from their first instruction, execs
 * matching a --comm name join, exits leave; each is a record, so that the loader can attach
 * per-process probes (TLS) and the tracker can end a process's connections.
 */
#include "reqmon.bpf.h"

static __always_inline void submit_proc(__u32 kind, __u32 pid, __u32 ppid)
{
	struct rq_proc_event ev = {};
	__u64 now = bpf_ktime_get_ns();

	fill_header(&ev.h, RQ_EV_PROC, ((__u64)pid << 32) | pid, -1, now, now);
	ev.ppid = ppid;
	ev.kind = kind;
	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	/* A new process wakes the reader at once: the loader attaches its TLS probes then, and
	 * every millisecond before that is one in which its first TLS requests go unseen (a
	 * server that forks workers under load: Apache's prefork). */
	rq_output_wake(&ev, sizeof(ev), kind != RQ_PROC_EXIT);
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
