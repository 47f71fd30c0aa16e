/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/* BPF-only helpers and constants that vmlinux.h does not carry (they are macros in the kernel). */
#pragma once

#define RQ_AF_INET 2
#define RQ_AF_INET6 10
#define RQ_SOCK_STREAM 1
#define RQ_S_IFMT 00170000
#define RQ_S_IFSOCK 0140000
#define RQ_EINPROGRESS 115

/* Syscall arguments stashed at sys_enter, keyed by pid_tgid, picked up at sys_exit. */
struct rq_args {
	__u64 ts_enter;
	__u64 ubuf;     /* user pointer: the buffer, the iovec array, or the msghdr */
	__u64 sk;       /* struct sock * of the fd at entry (0 for accept, resolved at exit) */
	__s32 fd;
	__u32 iovcnt;   /* readv/writev: iovec count */
	__u8 syscall;   /* enum rq_syscall */
	__u8 direction; /* enum rq_direction */
	__u8 pad[6];
};

/* Per-CPU scratch for one data record: the event header plus room for the payload. Twice the
 * payload ceiling so that the verifier can bound "offset + length" in the iovec copy loop. */
struct rq_scratch {
	struct rq_data_event ev;
	__u8 payload[RQ_MAX_PAYLOAD * 2];
};
