/* SPDX-License-Identifier: MIT */
/*
 * The kernel/user ABI of reqmon: the records that bpf/reqmon.bpf.c writes to the ring buffer and
 * that the capture file stores verbatim. Shared by the BPF program (C, vmlinux.h types) and the
 * C++ side, so only fixed-width types, no pointers, explicit padding. tests/tracker/abi_test.cc pins
 * every offset; changing this layout means bumping RQ_ABI_VERSION and the capture file version.
 */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* 2: data records carry flags (TLS plaintext, TLS ciphertext seen) and the SSL_* "syscalls";
 * the layout is that of version 1, whose records read the same (flags were 0).
 * 3: data records end with ts_queued (queue time, issue #14): 8 bytes longer. Records of
 * versions 1 and 2 have the RQ_DATA_EVENT_SIZE_V2 bytes before their payload, and ts_queued 0. */
/* 4: data record flags RQ_DATA_H2_FRAMES and _START (HTTP/2 without DATA payloads); the
 * layout is that of version 3. */
#define RQ_ABI_VERSION 4
/* sizeof(struct rq_data_event) in ABI versions 1 and 2. */
#define RQ_DATA_EVENT_SIZE_V2 88

/* Hard ceiling on the payload prefix copied per syscall; the load-time setting is at most this. */
#define RQ_MAX_PAYLOAD 16384
/* Default payload prefix copied per syscall. */
#define RQ_DEFAULT_PAYLOAD 4096
/* At most this many iovecs of a readv/writev/recvmsg/sendmsg are copied (read in one go). */
#define RQ_MAX_IOV 64
/* At most this many --comm names and --cgroup trees. */
#define RQ_MAX_COMMS 16
#define RQ_COMM_LEN 16

/* What a record is. */
enum rq_event_type {
	RQ_EV_DATA = 1,  /* bytes read from or written to a TCP socket */
	RQ_EV_OPEN = 2,  /* a TCP connection accepted or connected */
	RQ_EV_CLOSE = 3, /* a TCP socket fd closed */
	RQ_EV_PROC = 4,  /* a followed process forked, exec'd or exited */
	RQ_EV_LOST = 5,  /* records were lost before this one: lost-record count so far. The kernel
	                  * writes one before the first record it submits after a loss (in band:
	                  * nothing after it follows the lost records unmarked); the recorder writes
	                  * the count it read when it changes (capture files) */
};

/* Direction of a data record, from the observed process's point of view. */
enum rq_direction {
	RQ_DIR_INGRESS = 0, /* read by the process (read, readv, recvfrom, recvmsg) */
	RQ_DIR_EGRESS = 1,  /* written by the process (write, writev, sendto, sendmsg, sendfile) */
};

/* The syscall behind a record. */
enum rq_syscall {
	RQ_SYS_READ = 1,
	RQ_SYS_WRITE,
	RQ_SYS_READV,
	RQ_SYS_WRITEV,
	RQ_SYS_RECVFROM,
	RQ_SYS_SENDTO,
	RQ_SYS_RECVMSG,
	RQ_SYS_SENDMSG,
	RQ_SYS_SENDFILE,
	RQ_SYS_ACCEPT,
	RQ_SYS_ACCEPT4,
	RQ_SYS_CONNECT,
	RQ_SYS_CLOSE,
	RQ_SYS_SSL_READ,  /* plaintext returned by OpenSSL's SSL_read/SSL_read_ex (a uretprobe) */
	RQ_SYS_SSL_WRITE, /* plaintext handed to OpenSSL's SSL_write/SSL_write_ex (a uprobe) */
};

/* Which OpenSSL function a uprobe_multi probe is on: the cookie the loader gives each offset of
 * a process's TLS links (bpf/tls.bpf.c, tls_multi_enter and tls_multi_exit). */
enum rq_tls_probe {
	RQ_TLS_PROBE_READ = 1,
	RQ_TLS_PROBE_READ_EX,
	RQ_TLS_PROBE_WRITE,
	RQ_TLS_PROBE_WRITE_EX,
	RQ_TLS_PROBE_FREE,
};

/* rq_data_event.flags. */
enum rq_data_flags {
	/* The payload is the plaintext of a TLS connection, from the TLS library; fd and endpoints
	 * are those of the TCP connection it travelled on. */
	RQ_DATA_TLS = 1,
	/* No payload: the first TLS ciphertext reqmon saw on this connection (bytes = that read
	 * or write). The connection's ciphertext is never copied or parsed; this record only says
	 * that it carries TLS, so that a process whose TLS library is not hooked can be named. */
	RQ_DATA_TLS_CIPHER = 2,
	/* The payload is HTTP/2 frames with the payloads of DATA frames left out: each DATA frame's
	 * 9-byte header is there (its length field gives the payload's length), its payload is not,
	 * wherever it falls (in this record or later ones). Every other byte of the record is in
	 * the payload, in order (bpf/h2frames.bpf.h). */
	RQ_DATA_H2_FRAMES = 4,
	/* With RQ_DATA_H2_FRAMES: the payload begins at a frame boundary (or at the client
	 * preface). A record without RQ_DATA_H2_FRAMES is the plain prefix, as ever. */
	RQ_DATA_H2_START = 8,
};

/* Role of a connection, as far as the kernel saw it open. */
enum rq_role {
	RQ_ROLE_UNKNOWN = 0, /* already open when reqmon attached */
	RQ_ROLE_SERVER = 1,  /* accepted by the observed process */
	RQ_ROLE_CLIENT = 2,  /* connected by the observed process */
};

/* What happened to a process (RQ_EV_PROC). */
enum rq_proc_kind {
	RQ_PROC_FORK = 1, /* pid was forked by a followed process (ppid) */
	RQ_PROC_EXEC = 2, /* pid exec'd and matches a --comm name */
	RQ_PROC_EXIT = 3, /* a followed process exited */
};

/* A TCP endpoint pair. IPv4 addresses use the first 4 bytes of the 16; family is AF_INET (2) or
 * AF_INET6 (10). Ports are in host byte order. */
struct rq_endpoints {
	__u8 laddr[16]; /* local address, network byte order */
	__u8 raddr[16]; /* remote address, network byte order */
	__u16 lport;    /* local port */
	__u16 rport;    /* remote port */
	__u16 family;   /* AF_INET or AF_INET6 */
	__u16 pad;
};

/* Every record starts with this. */
struct rq_event_header {
	__u32 type;     /* enum rq_event_type */
	__u32 pid;      /* tgid of the process */
	__u32 tid;      /* thread id */
	__s32 fd;       /* file descriptor (-1 for RQ_EV_PROC) */
	__u64 ts_enter; /* CLOCK_MONOTONIC ns at syscall entry (bpf_ktime_get_ns); the default build
	                 * sees data and connection changes only at the end: = ts_exit */
	__u64 ts_exit;  /* CLOCK_MONOTONIC ns at syscall exit */
};

/* RQ_EV_DATA: the header, then payload_len bytes of payload (the first bytes transferred). */
struct rq_data_event {
	struct rq_event_header h;
	struct rq_endpoints ep;
	__s64 bytes;       /* the syscall's return value: bytes transferred (> 0) */
	__u32 payload_len; /* payload bytes that follow this struct (<= bytes) */
	__u8 direction;    /* enum rq_direction */
	__u8 syscall;      /* enum rq_syscall */
	__u8 role;         /* enum rq_role as known to the kernel (RQ_ROLE_UNKNOWN usually) */
	__u8 flags;        /* enum rq_data_flags (0 for plain TCP bytes) */
	/* Ingress on a server socket: CLOCK_MONOTONIC ns when the first bytes this read took were
	 * queued on the socket (new connection: when its handshake completed, which is earlier), so
	 * ts_exit - ts_queued is how long they waited for the process to read them. 0 when not known
	 * (egress, compat build, TLS plaintext, unread bytes from before attach, --no-queue-time). */
	__u64 ts_queued;
	/* __u8 payload[payload_len] follows */
};

/* RQ_EV_OPEN and RQ_EV_CLOSE. */
struct rq_conn_event {
	struct rq_event_header h;
	struct rq_endpoints ep;
	__u8 role;    /* enum rq_role: SERVER for accept, CLIENT for connect, UNKNOWN for close */
	__u8 syscall; /* enum rq_syscall */
	__u16 pad;
	__s32 ret;    /* the syscall's return value (connect: 0 or -EINPROGRESS) */
};

/* RQ_EV_PROC. */
struct rq_proc_event {
	struct rq_event_header h;
	__u32 ppid;    /* parent tgid (fork) */
	__u32 kind;    /* enum rq_proc_kind */
	char comm[RQ_COMM_LEN];
};

/* RQ_EV_LOST. */
struct rq_lost_event {
	struct rq_event_header h;
	__u64 lost;      /* records the kernel could not hand over, since capture start (pid, tid:
	                  * the process whose record followed the loss; 0 from the recorder) */
};

/* Indices of the per-CPU counters map "stats". */
enum rq_stat {
	RQ_STAT_LOST = 0,       /* records the ring buffer had no room for */
	RQ_STAT_DATA,           /* data records submitted */
	RQ_STAT_TRUNCATED,      /* data records whose payload was cut to the prefix */
	RQ_STAT_CONN,           /* open/close records submitted */
	RQ_STAT_TLS_DATA,       /* TLS plaintext records submitted */
	RQ_STAT_TLS_CIPHER_BYTES, /* TLS ciphertext bytes seen and not copied */
	RQ_STAT_TLS_UNBOUND,    /* TLS plaintext dropped: its TCP connection was not known */
	RQ_STAT_BODY_SKIPPED,   /* body bytes of a known length (or HTTP/2 DATA payloads) counted, not copied */
	RQ_STAT_H2_LOST,        /* HTTP/2 records in which the kernel lost its place in the frames */
	RQ_STAT_MAX,
};
