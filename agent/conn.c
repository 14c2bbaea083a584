/*
 * conn.c - the SPOP connection state machine (SPOE.txt 3.2.3), no sockets.
 */
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "handler.h"
#include "log.h"
#include "metrics.h"

/* The agent's answer to a HELLO: SPOP 2.0, pipelining only. Async would
 * let HAProxy expect ACKs on other connections; fragmentation is not
 * supported by HAProxy either. */
#define CONN_VERSION "2.0"
#define CONN_CAPABILITIES "pipelining"

/* Enough for any frame the agent writes besides an ACK. */
#define CONN_SMALL_FRAME 512

int obuf_reserve(struct obuf *o, size_t need)
{
	size_t want, ncap;
	uint8_t *n;

	if (o->off > 0 && o->off == o->len) {
		o->off = o->len = 0;
	}
	if (o->len - o->off + need > o->limit)
		return -1;
	if (o->cap - o->len >= need)
		return 0;
	/* Compact before growing: sent bytes at the front are dead. */
	if (o->off > 0) {
		memmove(o->data, o->data + o->off, o->len - o->off);
		o->len -= o->off;
		o->off = 0;
		if (o->cap - o->len >= need)
			return 0;
	}
	want = o->len + need;
	ncap = o->cap ? o->cap : 4096;
	while (ncap < want)
		ncap *= 2;
	n = realloc(o->data, ncap);
	if (!n)
		return -1;
	o->data = n;
	o->cap = ncap;
	return 0;
}

void obuf_free(struct obuf *o)
{
	free(o->data);
	memset(o, 0, sizeof(*o));
}

void conn_proto_init(struct conn_proto *c, uint32_t our_max_frame,
                     const char *peer)
{
	memset(c, 0, sizeof(*c));
	c->state = CONN_ST_WAIT_HELLO;
	c->our_max_frame = our_max_frame;
	c->max_frame = our_max_frame;
	c->peer = peer;
}

/* Writer over the free tail of `out`, `room` bytes reserved. */
static int out_writer(struct obuf *out, size_t room, struct spop_wr *w)
{
	if (obuf_reserve(out, room) != 0)
		return -1;
	spop_wr_init(w, out->data + out->len, room);
	return 0;
}

static void out_commit(struct obuf *out, const struct spop_wr *w)
{
	out->len = (size_t)(w->p - out->data);
}

int conn_disconnect(struct conn_proto *c, unsigned int status, struct obuf *out)
{
	struct spop_wr w;
	struct spop_data st = spop_uint32(status);
	struct spop_data msg = spop_cstr(spop_status_str(status));
	uint8_t *start;

	c->state = CONN_ST_CLOSING;
	c->status = status;
	if (out_writer(out, CONN_SMALL_FRAME, &w) != 0)
		return -1;
	/* SPOE.txt 3.2.9: STREAM-ID and FRAME-ID are 0. */
	start = spop_frame_begin(&w, SPOP_FRAME_AGENT_DISCONNECT, SPOP_FLAG_FIN, 0, 0);
	spop_put_kv(&w, "status-code", &st);
	spop_put_kv(&w, "message", &msg);
	if (spop_frame_end(&w, start, c->max_frame) != 0)
		return -1;
	out_commit(out, &w);
	return 0;
}

/* Answer an error with AGENT-DISCONNECT, log it once, close after flush. */
static enum conn_verdict fail(struct conn_proto *c, unsigned int status,
                              const char *why, struct obuf *out)
{
	log_warning("%s: %s: closing with status %u (%s)", c->peer, why, status,
	            spop_status_str(status));
	metrics_protocol_error(status);
	/* If even the DISCONNECT does not fit, closing is all that is left. */
	if (conn_disconnect(c, status, out) != 0)
		c->state = CONN_ST_CLOSING;
	return CONN_CLOSE_AFTER_FLUSH;
}

static enum conn_verdict on_hello(struct conn_proto *c, const struct spop_frame *f,
                                  struct obuf *out)
{
	struct spop_hello h;
	struct spop_wr w;
	struct spop_data vsn = spop_cstr(CONN_VERSION);
	struct spop_data caps = spop_cstr(CONN_CAPABILITIES);
	struct spop_data mfs;
	uint8_t *start;

	if (spop_hello_decode(f->payload, f->payload_len, &h) != SPOP_RC_OK)
		return fail(c, SPOP_ST_INVALID, "malformed HAPROXY-HELLO", out);
	if (!h.has_versions)
		return fail(c, SPOP_ST_NO_VSN, "HAPROXY-HELLO without supported-versions", out);
	if (!h.has_max_frame_size)
		return fail(c, SPOP_ST_NO_FRAME_SIZE, "HAPROXY-HELLO without max-frame-size", out);
	if (!h.has_capabilities)
		return fail(c, SPOP_ST_NO_CAP, "HAPROXY-HELLO without capabilities", out);
	if (!spop_versions_have_v2(h.versions, h.versions_len))
		return fail(c, SPOP_ST_BAD_VSN, "HAProxy offers no SPOP 2.x version", out);
	/* SPOE.txt 3.2: a peer must accept at least 256-byte frames. */
	if (h.max_frame_size < SPOP_MIN_FRAME_SIZE)
		return fail(c, SPOP_ST_BAD_FRAME_SIZE, "max-frame-size below 256", out);

	c->max_frame = h.max_frame_size < c->our_max_frame ?
	               (uint32_t)h.max_frame_size : c->our_max_frame;
	c->healthcheck = h.healthcheck;
	mfs = spop_uint32(c->max_frame);

	if (out_writer(out, CONN_SMALL_FRAME, &w) != 0)
		return fail(c, SPOP_ST_RES, "output buffer full", out);
	start = spop_frame_begin(&w, SPOP_FRAME_AGENT_HELLO, SPOP_FLAG_FIN, 0, 0);
	spop_put_kv(&w, "version", &vsn);
	spop_put_kv(&w, "max-frame-size", &mfs);
	spop_put_kv(&w, "capabilities", &caps);
	if (spop_frame_end(&w, start, c->max_frame) != 0)
		return fail(c, SPOP_ST_RES, "cannot encode AGENT-HELLO", out);
	out_commit(out, &w);

	if (c->healthcheck) {
		/* SPOE.txt 3.2.5: after a health check HELLO the agent may
		 * close without DISCONNECT. */
		c->state = CONN_ST_CLOSING;
		log_debug("%s: health check answered", c->peer);
		return CONN_CLOSE_AFTER_FLUSH;
	}
	c->state = CONN_ST_READY;
	log_debug("%s: HELLO done, max-frame-size %u", c->peer, c->max_frame);
	return CONN_KEEP;
}

/* A writer with room for one ACK at its largest (the negotiated size
 * plus its length prefix), or -1 when the output is over its limit: the
 * peer is not reading its ACKs, it is stuck or hostile, and nothing more
 * can be queued, not even a DISCONNECT (the connection is then marked to
 * close at once). */
static int ack_writer(struct conn_proto *c, struct obuf *out, struct spop_wr *w)
{
	if (out_writer(out, (size_t)c->max_frame + SPOP_LEN_PREFIX, w) == 0)
		return 0;
	log_warning("%s: output buffer over its limit (%zu bytes pending): closing",
	            c->peer, obuf_pending(out));
	c->state = CONN_ST_CLOSING;
	c->status = SPOP_ST_RES;
	c->overflow = 1;
	metrics_protocol_error(SPOP_ST_RES);
	return -1;
}

static enum conn_verdict on_notify(struct conn_proto *c, const struct handler_env *env,
                                   const struct spop_frame *f, struct obuf *out)
{
	struct spop_wr w;
	unsigned int n;

	if (ack_writer(c, out, &w) != 0)
		return CONN_CLOSE_AFTER_FLUSH;
	switch (handler_notify(env, f, c->max_frame, &w, &n)) {
	case HANDLER_ACK:
		out_commit(out, &w);
		break;
	case HANDLER_PENDING:
		/* A verify thread has it: conn_complete() writes the ACK.
		 * Pipelining lets ACKs leave in any order. */
		c->pending++;
		break;
	case HANDLER_NO_ROOM:
		return fail(c, SPOP_ST_RES, "no room for an ACK", out);
	case HANDLER_MALFORMED:
	default:
		return fail(c, SPOP_ST_INVALID, "malformed NOTIFY payload", out);
	}
	c->counters.notify++;
	c->counters.messages += n;
	metrics_inc(METRICS_NOTIFY_FRAMES);
	metrics_add(METRICS_NOTIFY_MESSAGES, n);
	return CONN_KEEP;
}

enum conn_verdict conn_complete(struct conn_proto *c,
                                const struct handler_env *env,
                                struct handler_job *job, struct obuf *out)
{
	struct spop_wr w;

	if (c->pending > 0)
		c->pending--;
	/* After a DISCONNECT (either way) no ACK may follow. */
	if (c->state != CONN_ST_READY)
		return c->state == CONN_ST_CLOSING ? CONN_CLOSE_AFTER_FLUSH :
		       CONN_KEEP;
	if (ack_writer(c, out, &w) != 0)
		return CONN_CLOSE_AFTER_FLUSH;
	if (handler_job_finish(env, job, c->max_frame, &w) != 0)
		return fail(c, SPOP_ST_RES, "cannot encode an ACK", out);
	out_commit(out, &w);
	return CONN_KEEP;
}

static enum conn_verdict on_frame(struct conn_proto *c, const struct handler_env *env,
                                  const struct spop_frame *f, struct obuf *out)
{
	struct spop_disconnect d;

	/* Fragmented payloads are not announced, so none may arrive. */
	if (!(f->flags & SPOP_FLAG_FIN) || f->type == SPOP_FRAME_UNSET)
		return fail(c, SPOP_ST_FRAG_NOT_SUPPORTED, "fragmented frame", out);

	switch (f->type) {
	case SPOP_FRAME_HAPROXY_HELLO:
		if (c->state != CONN_ST_WAIT_HELLO)
			return fail(c, SPOP_ST_INVALID, "second HAPROXY-HELLO", out);
		return on_hello(c, f, out);
	case SPOP_FRAME_NOTIFY:
		if (c->state != CONN_ST_READY)
			return fail(c, SPOP_ST_INVALID, "NOTIFY before HELLO", out);
		return on_notify(c, env, f, out);
	case SPOP_FRAME_HAPROXY_DISCONNECT:
		if (spop_disconnect_decode(f->payload, f->payload_len, &d) == SPOP_RC_OK &&
		    d.has_status && d.status != SPOP_ST_NORMAL)
			log_info("%s: HAProxy disconnects with status %llu (%.*s)", c->peer,
			         (unsigned long long)d.status,
			         (int)(d.message_len > 128 ? 128 : d.message_len),
			         d.message ? (const char *)d.message : "");
		else
			log_debug("%s: HAProxy disconnects", c->peer);
		if (conn_disconnect(c, SPOP_ST_NORMAL, out) != 0)
			c->state = CONN_ST_CLOSING;
		return CONN_CLOSE_AFTER_FLUSH;
	default:
		return fail(c, SPOP_ST_INVALID, "unexpected frame type", out);
	}
}

/* Decode and handle frames until the input runs out or the connection
 * is done. *consumed covers the frames handled. */
static enum conn_verdict process_frames(struct conn_proto *c, const struct handler_env *env,
                                        const uint8_t *in, size_t len,
                                        size_t *consumed, struct obuf *out)
{
	const uint8_t *p = in;
	const uint8_t *end = in + len;
	struct spop_frame f;

	while (c->state != CONN_ST_CLOSING) {
		enum spop_rc rc = spop_frame_decode(&p, end, c->max_frame, &f);
		enum conn_verdict v;

		if (rc == SPOP_RC_NEED_MORE)
			return CONN_KEEP;
		if (rc == SPOP_RC_TOO_BIG)
			return fail(c, SPOP_ST_TOO_BIG, "frame longer than max-frame-size", out);
		if (rc != SPOP_RC_OK)
			return fail(c, SPOP_ST_INVALID, "invalid frame", out);
		*consumed = (size_t)(p - in);
		v = on_frame(c, env, &f, out);
		if (v != CONN_KEEP)
			return v;
	}
	return CONN_CLOSE_AFTER_FLUSH;
}

enum conn_verdict conn_process(struct conn_proto *c, const struct handler_env *env,
                               const uint8_t *in, size_t len, size_t *consumed,
                               struct obuf *out)
{
	enum conn_verdict v;

	*consumed = 0;
	v = process_frames(c, env, in, len, consumed, out);
	/* Once closing, whatever else the peer sent is dropped. */
	if (c->state == CONN_ST_CLOSING) {
		*consumed = len;
		return CONN_CLOSE_AFTER_FLUSH;
	}
	return v;
}
