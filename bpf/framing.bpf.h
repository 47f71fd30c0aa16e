/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * What of a record the kernel copies: the HTTP/1.x head, not a body whose length the head gives.
 *
 * User space frames bodies by their length (Content-Length) and counts their bytes; it needs the
 * bytes of heads, status lines and chunk framing only. So when a record larger than the head
 * window starts with a message head (a status line going out, a request line coming in) that
 * ends within the window, gives a Content-Length, has no Transfer-Encoding, and whose body takes
 * the rest of the record, only the head is copied: user space skips the uncopied rest of the
 * record exactly, as a gap inside a Content-Length body. Where the body goes on past the record,
 * the connection's state (socket local storage, default build) remembers how much of it is still
 * to come, and the records that carry only body bytes are sent without payload. A response head
 * written in a record of its own (head_alone) is scanned too, for the same: its body follows in
 * records of their own.
 *
 * The kernel never skips what user space would need: a record that holds more than the body
 * (pipelined messages after it), a chunked body, a response that has no body whatever its
 * Content-Length says (1xx, 204, 304, and any response on a connection that carried a HEAD
 * request) is copied as before, up to the payload prefix.
 */
#pragma once
/* Part of reqmon.bpf.h, which includes it where the record builder needs it. */

/* Bytes copied first to look for the end of a head; a power of two. */
#define RQ_HEAD_WINDOW 1024

#define RQ_LE8(a, b, c, d, e, f, g, h)                                                         \
	((__u64)(a) | (__u64)(b) << 8 | (__u64)(c) << 16 | (__u64)(d) << 24 | (__u64)(e) << 32 |  \
	 (__u64)(f) << 40 | (__u64)(g) << 48 | (__u64)(h) << 56)
#define RQ_LOWER8 0x2020202020202020ULL

/* One 8-byte word of the head window, at offset i (a multiple of 8): looks for the end of the head
 * and notes the Content-Length and Transfer-Encoding lines in s->scan. Returns 1 once the end is
 * found. */
static __always_inline int scan_word(struct rq_scratch *s, __u32 i)
{
	const __u32 w = RQ_HEAD_WINDOW;
	const __u8 *p = s->payload + i;
	__u64 x = *(const __u64 *)p ^ 0x0a0a0a0a0a0a0a0aULL;

	/* No '\n' among these 8 bytes. */
	if (!((x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL))
		return 0;
	for (__u32 j = 0; j < 8; j++) {
		__u64 word;

		if (p[j] != '\n' || i + j + 17 > w)
			continue;
		if (p[j + 1] == '\r' && p[j + 2] == '\n') {
			s->scan.end = i + j + 3;
			return 1;
		}
		word = *(const __u64 *)(p + j + 1) | RQ_LOWER8;
		if (word == RQ_LE8('t', 'r', 'a', 'n', 's', 'f', 'e', 'r'))
			s->scan.te = 1;
		else if (word == RQ_LE8('c', 'o', 'n', 't', 'e', 'n', 't', '-') &&
			 ((*(const __u64 *)(p + j + 9) | RQ_LOWER8) & 0x00ffffffffffffffULL) ==
				 RQ_LE8('l', 'e', 'n', 'g', 't', 'h', ':', 0))
			s->scan.cl_at = i + j + 16;
	}
	return 0;
}

/* Bytes of the head window per bpf_loop step of the scan. */
#define RQ_SCAN_BLOCK 64

/* One block of RQ_SCAN_BLOCK bytes of the head window (bpf_loop callback, index = block), a word
 * at a time; returns 1 once the end of the head is found. Run by bpf_loop so that the verifier
 * checks the block's code once, not once per block (a plain loop over the window made it give
 * up). A block rather than a word per step: each step is a call and a return, and a return costs
 * ~13 ns on a kernel with AMD's "Safe RET" mitigation (a word per step cost a 241-byte head
 * ~360 ns, now ~136; docs/performance.md). */
static long scan_block(__u64 index, void *ctx)
{
	struct rq_scratch *s = *(struct rq_scratch **)ctx;
	__u32 i = (index & (RQ_HEAD_WINDOW / RQ_SCAN_BLOCK - 1)) * RQ_SCAN_BLOCK;

#pragma unroll
	for (__u32 k = 0; k < RQ_SCAN_BLOCK; k += 8)
		if (scan_word(s, i + k))
			return 1;
	return 0;
}

/* The scan is a global function in the default build: the verifier checks it once, on its own,
 * instead of once for every state in which a program reaches one of the places that scan a record
 * (three in build_data, which the send, receive and TLS programs each inline). Inlined, its 64
 * unrolled bytes took the verifier 2.8 s of CPU at every start (the send program alone 1.5 s and
 * 362,050 instructions processed, a third of the limit); as a global function, 0.75 s and 121,124.
 * The call costs the scanned records nothing measurable (bpf_stats, docs/performance.md). The
 * compat build (kernels from 5.8) keeps it inline: global functions take pointers from 5.12. */
#ifndef RQ_COMPAT
#define RQ_SCAN_FN __noinline
#else
#define RQ_SCAN_FN static __always_inline
#endif

/* Scans the head window (the RQ_HEAD_WINDOW bytes at s->payload) for the end of the head. A head
 * whose end is in the window's last 16 bytes is not found: copied as usual. Always returns 0 (a
 * global function returns a value); what it found is in s->scan. */
RQ_SCAN_FN int scan_head(struct rq_scratch *s)
{
	/* The verifier checks a global function for any argument its type allows, NULL included. */
	if (!s)
		return 0;
	s->scan.end = 0;
	s->scan.cl_at = 0;
	s->scan.te = 0;
	bpf_loop(RQ_HEAD_WINDOW / RQ_SCAN_BLOCK, scan_block, &s, 0);
	return 0;
}

/* The Content-Length value that starts at s->scan.cl_at (after "Content-Length:"), or -1. The
 * head ends after it within the window, so the digits end (at the line's '\r') before the copied
 * bytes do. One data-dependent branch per digit: the verifier follows a single path. */
static __always_inline __s64 content_length(struct rq_scratch *s)
{
	__u32 at = s->scan.cl_at;
	const __u8 *d;
	__s64 n = 0;
	int i;

	/* The mask bounds the offset for the verifier; the empty asm keeps it. */
	asm volatile("" : "+r"(at));
	at &= RQ_MAX_PAYLOAD - 1;
	d = s->payload + at;
	if (d[0] == ' ' || d[0] == '\t')
		d++;
	if (d[0] == ' ' || d[0] == '\t')
		d++;
	for (i = 0; i < 16; i++) {
		__u8 c = d[i] - '0';

		if (c > 9)
			break;
		n = n * 10 + c;
	}
	return i == 0 || i == 16 ? -1 : n;
}

/* Whether the 9 bytes at p start an HTTP/1.x status line ("HTTP/1.x "). */
static __always_inline bool status_line(const __u8 *p)
{
	return (*(const __u64 *)p & 0x00ffffffffffffffULL) ==
		       RQ_LE8('H', 'T', 'T', 'P', '/', '1', '.', 0) &&
	       p[8] == ' ';
}

/* Whether the record whose first `valid` bytes are at s->payload (ret bytes in all, going in
 * direction dir; valid is the window, or the whole record when it is smaller) is a head followed
 * only by its Content-Length body, so that the head alone need be copied. Returns the head's
 * length, or 0 to copy the record as usual. With st (the connection's state), a body that goes on
 * past the record is remembered there. alone: the record is a whole response head (head_alone),
 * whose body may start in the next record. */
static __always_inline __u32 head_only(struct rq_scratch *s, __u32 valid, long ret, __u8 dir,
				       struct rq_sk_state *st, bool alone)
{
	const __u32 w = RQ_HEAD_WINDOW;
	const __u8 *p = s->payload;
	__s64 cl, body;
	__u32 end;

	if (dir == RQ_DIR_EGRESS) {
		__u32 status;

		if (!status_line(p))
			return 0;
		status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
		/* Responses without a body, whatever their Content-Length says. */
		if (status < 200 || status > 999 || status == 204 || status == 304)
			return 0;
		if (st && st->head_method)
			return 0;
	} else if (p[0] < 'A' || p[0] > 'Z') {
		return 0;
	}
	scan_head(s);
	end = s->scan.end;
	if (!end || end > valid || s->scan.te || !s->scan.cl_at)
		return 0;
	cl = content_length(s);
	if (cl < 0)
		return 0;
	body = ret - end;
	/* More than the body: the next message follows in this record. */
	if (body > cl)
		return 0;
	if (body < cl) {
		/* The body goes on in later records: only a connection with state can follow it. A
		 * response with no body byte here may be a HEAD's (no body at all), unless it is a
		 * head written on its own on a connection that carried no HEAD request (checked
		 * above). */
		if (!st || (dir == RQ_DIR_EGRESS && body == 0 && !alone))
			return 0;
		st->body_left[dir & 1] = cl - body;
		/* After a head written alone, the body's first record is checked for a status line
		 * (build_data). */
		if (dir == RQ_DIR_EGRESS)
			st->body_unsure = alone;
	}
	return end;
}

/* Whether the len bytes copied at s->payload (the whole record, len <= RQ_HEAD_WINDOW) end with a
 * head's blank line: a response head written on its own, its body to follow in writes of their
 * own (Python's http.server, nginx's sendfile, a server that flushes its head first). Then
 * head_only() scans it, so that the body's records need not be copied; any other small record
 * pays these few instructions, not the scan. Such a head may have no body (a HEAD request's
 * answer on a connection where the kernel saw no HEAD: pipelined behind another request), so
 * the first record after it is checked for a status line (build_data, body_unsure). Where that
 * record is a sendfile (nginx with sendfile on), the connection scans such heads no more
 * (sendfile_bodies): sendfile copies nothing, so there is nothing to save. */
static __always_inline bool head_alone(struct rq_scratch *s, __u32 len)
{
	__u32 at = len - 4;

	/* The mask bounds the offset for the verifier; the empty asm keeps it. */
	asm volatile("" : "+r"(at));
	at &= RQ_HEAD_WINDOW - 1;
	return *(const __u32 *)(s->payload + at) == 0x0a0d0a0d; /* "\r\n\r\n" */
}
