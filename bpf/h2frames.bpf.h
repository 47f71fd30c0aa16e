/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * What of an HTTP/2 connection's bytes the kernel copies: the frames, without DATA payloads.
 *
 * User space needs an HTTP/2 stream's frame headers (lengths, types, flags, stream ids) and the
 * payloads of every frame but DATA: HEADERS and CONTINUATION carry the HPACK blocks, whose loss
 * breaks the connection's header table; the rest are a few bytes each. A DATA payload is only
 * counted. So once the kernel knows where a direction's frames start, it follows them across
 * records and copies the frames with each DATA payload left out (its 9-byte header kept, with the
 * payload's length in it). The record then carries RQ_DATA_H2_FRAMES: its payload is that stream
 * (user space knows each DATA payload's length from its header and takes none of its bytes).
 * A header block is copied whole however large (up to RQ_MAX_PAYLOAD per record), unlike the
 * plain prefix, which cut a block longer than --payload-bytes and so reset the table.
 *
 * Where the frames start:
 *  - a record that starts with the client preface ("PRI * HTTP/2.0...") starts that direction;
 *  - a record that starts with a SETTINGS frame (not an ACK; a server's first write, sent on
 *    accept over TLS before the client's preface is read) starts that direction;
 *  - once one direction is followed, or a direction lost its place, a record of the other (or
 *    of that) direction that parses as whole valid frames from its first byte starts it.
 * Such a start is tried on the record: if any frame header in it is not valid, the record is
 * copied as before (the plain prefix) and nothing is followed.
 *
 * Where the kernel loses its place (more header-block bytes than fit in one record, more frames
 * in one record than RQ_H2_STEPS, an invalid frame header: not HTTP/2 after all), the record is
 * copied as before (the plain prefix, without the flag: user space follows the raw bytes from
 * where it was), and the direction waits for a record that starts with valid frames again.
 * RQ_DATA_H2_START says that a record's payload begins at a frame boundary (or the preface),
 * which is where user space can take up a stream whose place it lost.
 *
 * State lives per connection and direction: in the socket's local storage (sk_state, default
 * build) for bytes read and written on the socket, in tls_h2 (a hash keyed by the socket) for
 * TLS plaintext. The compat build follows TLS plaintext only.
 */
#pragma once
/* Part of reqmon.bpf.h, which includes it where the record builder needs it. */

/* Steps of the frame walk per record: a step takes one piece (a frame header or a payload, or the
 * part of one within one iovec). A 64 KiB write of 16 KiB DATA frames takes about 10. */
#define RQ_H2_STEPS 512
/* Records one read or write may be sent as, when its header blocks do not fit in one. */
#define RQ_H2_CHUNKS 16

static const char rq_h2_preface[24] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* The bpf_loop context of a walk; its state is in s->walk (struct rq_h2_walk, reqmon.bpf.h): map
 * memory, whose values the verifier does not track, so that it checks a step once rather than once
 * per value of the output offset. */
struct rq_h2_ctx {
	struct rq_scratch *s;
	struct rq_h2_dir *d;
	__u32 stat; /* enum rq_stat of a record sent */
};

/* Whether a frame header is one that HTTP/2 allows (RFC 9113 §6), of a type reqmon knows (or an
 * extension frame a server sends: ALTSVC, ORIGIN, PRIORITY_UPDATE). */
static __always_inline bool h2_header_ok(__u32 len, __u8 type, __u8 flags, __u32 sid_raw)
{
	__u32 sid = sid_raw & 0x7fffffff;

	if (sid_raw & 0x80000000)
		return false;
	switch (type) {
	case 0x0: /* DATA */
	case 0x1: /* HEADERS */
	case 0x5: /* PUSH_PROMISE */
	case 0x9: /* CONTINUATION */
		return sid != 0;
	case 0x2: return sid != 0 && len == 5;   /* PRIORITY */
	case 0x3: return sid != 0 && len == 4;   /* RST_STREAM */
	case 0x4: return sid == 0 && len % 6 == 0 && (!(flags & 1) || len == 0); /* SETTINGS */
	case 0x6: return sid == 0 && len == 8;   /* PING */
	case 0x7: return sid == 0 && len >= 8;   /* GOAWAY */
	case 0x8: return len == 4;               /* WINDOW_UPDATE */
	case 0xa: case 0xc: case 0x10:           /* ALTSVC, ORIGIN, PRIORITY_UPDATE */
		return true;
	}
	return false;
}

/* Copies n (>= 1) bytes at the walk's current place to the output. */
static __always_inline int h2_copy(struct rq_scratch *s, __u32 n)
{
	struct rq_h2_walk *w = &s->walk;
	__u32 out = w->out;

	if (n > RQ_MAX_PAYLOAD || out + n > RQ_MAX_PAYLOAD)
		return -1;
	/* out < RQ_MAX_PAYLOAD and n <= RQ_MAX_PAYLOAD: within the scratch payload (twice that). */
	asm volatile("" : "+r"(out));
	out &= RQ_MAX_PAYLOAD - 1;
	if (bpf_probe_read_user(&s->payload[out], bound_len(n), (void *)w->base))
		return -1;
	w->out = out + n;
	return 0;
}

/* One step of the walk (bpf_loop callback): takes the next piece of the record. Returns 1 when the
 * record is done, the output is full (w->full) or the walk failed (w->fail). A dry walk (w->dry)
 * only checks the frame headers and copies nothing. */
static long h2_step(__u64 index, void *ctx)
{
	struct rq_h2_ctx *c = ctx;
	struct rq_scratch *s = c->s;
	struct rq_h2_walk *w = &s->walk;
	struct rq_h2_dir *d = c->d;
	__u32 n, left, room;

	if (w->remaining == 0)
		return 1;
	if (w->avail == 0) {
		struct iovec v;
		__u32 i = w->iov_i;

		if (i >= w->iov_cnt)
			goto fail;
		v = s->iov[i & (RQ_MAX_IOV - 1)];
		w->iov_i = i + 1;
		w->base = (__u64)v.iov_base;
		w->avail = v.iov_len < w->remaining ? v.iov_len : w->remaining;
		return 0;
	}
	n = w->avail;
	left = d->left;
	room = w->out < RQ_MAX_PAYLOAD ? RQ_MAX_PAYLOAD - w->out : 0;
	switch (d->mode) {
	case RQ_H2_HEADER: {
		__u32 have = d->have;
		__u32 len, sid;
		__u8 type, flags;

		if (have >= 9)
			goto fail;
		if (n > 9 - have)
			n = 9 - have;
		if (!w->dry && n > room)
			goto full;
		/* The header's bytes, kept for a header split across records. */
		if (bpf_probe_read_user(&d->hdr[have & 15], ((n - 1) & 15) + 1, (void *)w->base))
			goto fail;
		if (!w->dry && h2_copy(s, n))
			goto fail;
		have += n;
		d->have = have;
		if (have < 9)
			break;
		d->have = 0;
		len = (__u32)d->hdr[0] << 16 | (__u32)d->hdr[1] << 8 | d->hdr[2];
		type = d->hdr[3];
		flags = d->hdr[4];
		sid = (__u32)d->hdr[5] << 24 | (__u32)d->hdr[6] << 16 | (__u32)d->hdr[7] << 8 | d->hdr[8];
		if (!h2_header_ok(len, type, flags, sid))
			goto fail;
		d->left = len;
		d->mode = len == 0 ? RQ_H2_HEADER : type == 0 ? RQ_H2_SKIP : RQ_H2_COPY;
		break;
	}
	case RQ_H2_COPY:
		if (n > left)
			n = left;
		if (!w->dry) {
			if (room == 0)
				goto full;
			if (n > room)
				n = room;
			if (h2_copy(s, n))
				goto fail;
		}
		d->left = left - n;
		if (d->left == 0)
			d->mode = RQ_H2_HEADER;
		break;
	case RQ_H2_SKIP:
		if (n > left)
			n = left;
		w->skipped += n;
		d->left = left - n;
		if (d->left == 0)
			d->mode = RQ_H2_HEADER;
		break;
	default:
		goto fail;
	}
	w->base += n;
	w->avail -= n;
	w->remaining -= n;
	return 0;
full:
	w->full = 1;
	return 1;
fail:
	w->fail = 1;
	return 1;
}

/* One part of a walk (bpf_loop callback): walks until the record ends or the output is full;
 * a full output goes to the ring as a record of its own (the bytes it covers, its payload), and
 * the walk goes on. Returns 1 when the record is done or the walk failed. */
static long h2_chunk(__u64 index, void *ctx)
{
	struct rq_h2_ctx *c = ctx;
	struct rq_scratch *s = c->s;
	struct rq_h2_walk *w = &s->walk;
	struct rq_h2_dir *d = c->d;
	__u32 before = w->remaining, out, bytes;
	bool aligned = d->mode == RQ_H2_HEADER && d->have == 0;

	w->out = 0;
	w->full = 0;
	bpf_loop(RQ_H2_STEPS, h2_step, c, 0);
	if (w->skipped)
		count_n(RQ_STAT_BODY_SKIPPED, w->skipped);
	w->skipped = 0;
	bytes = before - w->remaining;
	s->ev.flags = (s->ev.flags & ~(RQ_DATA_H2_FRAMES | RQ_DATA_H2_START)) | RQ_DATA_H2_FRAMES |
		      (aligned ? RQ_DATA_H2_START : 0);
	s->ev.bytes = bytes;
	if (w->fail || !w->full)
		return 1;
	out = w->out;
	if (out == 0 || out > RQ_MAX_PAYLOAD) {
		w->fail = 1;
		return 1;
	}
	s->ev.payload_len = bound_len(out);
	if (rq_output(&s->ev, sizeof(s->ev) + bound_len(out)) == 0)
		count(c->stat);
	w->sent++;
	w->covered += bytes;
	return 0;
}

/* Walks the record's ret bytes from d's place. Dry: only checks that the record is valid frames
 * from there (d is left where the walk ended); returns 0 if so, -1 if not. Otherwise writes the
 * frames without DATA payloads to s->payload and returns its length, with the record's flags and
 * bytes set. Where the output fills up (header blocks of more than RQ_MAX_PAYLOAD), the part
 * walked so far goes to the ring as a record of its own (the bytes it covers, its payload) and
 * the walk goes on in a new one, up to RQ_H2_CHUNKS. Returns -1 when the walk failed before
 * any part was sent (the record must be copied as usual); -2 when it failed after (s->ev.bytes
 * is then the bytes not covered: they go as a record without payload). Not inlined: the
 * verifier checks it once. */
static __noinline int h2_walk(struct rq_scratch *s, const struct rq_args *a, long ret,
			      struct rq_h2_dir *d, bool dry)
{
	struct rq_h2_ctx c = {.s = s, .d = d};
	struct rq_h2_walk *w = &s->walk;

	__builtin_memset(w, 0, sizeof(*w));
	w->remaining = ret;
	w->dry = dry;
	switch (a->syscall) {
	case RQ_SYS_SENDFILE:
		return -1;
	case RQ_SYS_READV:
	case RQ_SYS_WRITEV:
	case RQ_SYS_RECVMSG:
	case RQ_SYS_SENDMSG:
		w->iov_cnt = load_iovs(s, a);
		if (w->iov_cnt == 0)
			return -1;
		break;
	default:
		w->base = a->ubuf;
		w->avail = ret;
	}
	if (dry) {
		bpf_loop(RQ_H2_STEPS, h2_step, &c, 0);
		return w->fail || w->remaining ? -1 : 0;
	}
	c.stat = a->flags & RQ_DATA_TLS ? RQ_STAT_TLS_DATA : RQ_STAT_DATA;
	bpf_loop(RQ_H2_CHUNKS, h2_chunk, &c, 0);
	if (!w->fail && !w->full && !w->remaining)
		return w->out;
	if (w->sent == 0)
		return -1;
	/* Lost after some parts were sent: the rest goes without payload. */
	s->ev.flags &= ~(RQ_DATA_H2_FRAMES | RQ_DATA_H2_START);
	s->ev.bytes = ret - w->covered;
	return -2;
}

/* Builds the payload of an HTTP/2 record from d's place (a direction being followed). Returns
 * the payload length (0 when the record is all DATA payload), or -1 when the walk failed: the
 * direction is then lost, and the record must be copied as usual (the plain prefix: user space
 * follows the raw bytes from where it was). */
static __always_inline int h2_record(struct rq_scratch *s, const struct rq_args *a, long ret,
				     struct rq_h2_dir *d)
{
	int len = h2_walk(s, a, ret, d, false);

	if (len >= 0)
		return len;
	d->mode = RQ_H2_LOST;
	d->have = 0;
	count(RQ_STAT_H2_LOST);
	if (len == -2)
		return 0; /* the rest, without payload */
	return -1;
}

/* Whether a direction not followed yet may start at this record, whose first len bytes are at
 * s->payload: a preface, a SETTINGS frame, or (other: the connection is known to be HTTP/2) any
 * valid frame header. Returns 2 for the preface, 1 for a frame, 0 for neither. */
static __always_inline int h2_may_start(struct rq_scratch *s, __u32 len, bool known)
{
	const __u8 *p = s->payload;
	__u32 flen, sid;

	/* Plain HTTP/1.x ("GET ", "HTTP/1.1 ") never starts frames: its fourth byte is no frame
	 * type reqmon starts at. */

	if (len < 9)
		return 0;
	if (len >= sizeof(rq_h2_preface) &&
	    *(const __u64 *)p == *(const __u64 *)rq_h2_preface &&
	    *(const __u64 *)(p + 8) == *(const __u64 *)(rq_h2_preface + 8) &&
	    *(const __u64 *)(p + 16) == *(const __u64 *)(rq_h2_preface + 16))
		return 2;
	flen = (__u32)p[0] << 16 | (__u32)p[1] << 8 | p[2];
	sid = (__u32)p[5] << 24 | (__u32)p[6] << 16 | (__u32)p[7] << 8 | p[8];
	/* A frame of a core type (not an extension) within the default maximum frame size. */
	if (p[3] > 0x9 || flen > 16384 || !h2_header_ok(flen, p[3], p[4], sid))
		return 0;
	if (known)
		return 1;
	return p[3] == 0x4 && !(p[4] & 1) ? 1 : 0;
}

/* Puts d at the start of a record: before the preface (start 2) or a frame header (1). */
static __always_inline void h2_begin(struct rq_h2_dir *d, int start)
{
	d->have = 0;
	d->mode = start == 2 ? RQ_H2_COPY : RQ_H2_HEADER;
	d->left = start == 2 ? sizeof(rq_h2_preface) : 0;
}

/* A direction not followed (off, or lost) whose record (len bytes already copied, the plain
 * prefix) may start its frames: checks that the whole record is valid frames from its start (a
 * dry walk), then walks it. Returns the payload length when it was (the direction is then
 * followed; -2: followed, but lost again within the record, whose rest goes without payload); 0
 * when it was not tried or not valid (nothing changed); -1 when the walk failed before any part
 * was sent (nothing changed, but the prefix must be copied again: the walk wrote over it). Not
 * inlined: the verifier checks it once. */
static __noinline int h2_try_start(struct rq_scratch *s, const struct rq_args *a, long ret,
				   __u32 len, struct rq_h2_state *h2)
{
	struct rq_h2_dir *d = &h2->dir[a->direction & 1];
	struct rq_h2_dir saved = *d;
	int start, out;

	start = h2_may_start(s, len, d->mode == RQ_H2_LOST || h2->dir[(a->direction & 1) ^ 1].mode != RQ_H2_OFF);
	if (!start)
		return 0;
	h2_begin(d, start);
	if (h2_walk(s, a, ret, d, true) < 0) {
		*d = saved;
		return 0;
	}
	h2_begin(d, start);
	out = h2_walk(s, a, ret, d, false);
	if (out == -1) {
		*d = saved;
		return -1;
	}
	if (out == -2) {
		d->mode = RQ_H2_LOST;
		d->have = 0;
		count(RQ_STAT_H2_LOST);
	}
	return out;
}
