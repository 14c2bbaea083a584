/*
 * conn.h - the SPOP connection state machine, without sockets.
 *
 * conn_process() consumes the complete frames of a receive buffer and
 * appends the answers to an output buffer. The server (server.c) owns the
 * socket, the buffers and the timers; this module owns the protocol, so it
 * can be unit-tested and fuzzed as a pure function of bytes in, bytes out.
 */
#ifndef MTLS_CONN_H
#define MTLS_CONN_H

#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "spop.h"

struct handler_env;

#define CONN_WUR __attribute__((warn_unused_result))

enum conn_state {
	CONN_ST_WAIT_HELLO = 0,  /* nothing but HAPROXY-HELLO is valid */
	CONN_ST_READY,           /* handshake done: NOTIFY / DISCONNECT */
	CONN_ST_CLOSING,         /* answer sent, close once flushed */
	CONN_ST_COUNT
};

/* What the caller must do after conn_process(). */
enum conn_verdict {
	CONN_KEEP = 0,           /* keep reading */
	CONN_CLOSE_AFTER_FLUSH,  /* flush the output, then close */
	CONN_VERDICT_COUNT
};

/* A growable output buffer with a hard cap. */
struct obuf {
	uint8_t *data;
	size_t off;      /* first unsent byte */
	size_t len;      /* end of data */
	size_t cap;      /* allocated */
	size_t limit;    /* most bytes ever buffered: beyond, the peer is not reading */
};

/* Make room for `need` more bytes at data + len. Returns 0 or -1 when the
 * limit would be exceeded or memory is short. */
CONN_WUR int obuf_reserve(struct obuf *o, size_t need);
void obuf_free(struct obuf *o);
static inline size_t obuf_pending(const struct obuf *o) { return o->len - o->off; }

struct conn_counters {
	uint64_t notify;       /* NOTIFY frames answered */
	uint64_t messages;     /* check-client-cert messages evaluated */
};

struct conn_proto {
	enum conn_state state;
	uint32_t our_max_frame;   /* from configuration */
	uint32_t max_frame;       /* negotiated (before HELLO: ours) */
	int healthcheck;
	unsigned int status;      /* status of the AGENT-DISCONNECT we sent */
	int overflow;             /* the output limit was hit: close at once */
	const char *peer;         /* for log lines, owned by the caller */
	unsigned int pending;     /* NOTIFYs handed to the verify pool */
	struct conn_counters counters;
};

void conn_proto_init(struct conn_proto *c, uint32_t our_max_frame,
                     const char *peer);

/* Process every complete frame in [in, in + len). Sets *consumed to the
 * bytes used (the rest is an incomplete frame to keep). Answers go to
 * `out`. `env` carries the configuration (which may be NULL) and the
 * cache to answer NOTIFYs with. Returns CONN_CLOSE_AFTER_FLUSH when the connection is done
 * (DISCONNECT sent, health check answered, or an error answered with
 * AGENT-DISCONNECT), or when `out` overflowed its limit (then c->overflow is
 * set: the peer does not read, close without waiting).
 */
enum conn_verdict conn_process(struct conn_proto *c, const struct handler_env *env,
                               const uint8_t *in, size_t len, size_t *consumed,
                               struct obuf *out);

struct handler_job;

/* A verification handed off by a NOTIFY (handler_notify() returned 1,
 * counted in c->pending) is done: write its ACK to `out`. The caller
 * still frees the job. After a DISCONNECT nothing is written. Returns
 * like conn_process(). */
enum conn_verdict conn_complete(struct conn_proto *c,
                                const struct handler_env *env,
                                struct handler_job *job, struct obuf *out);

/* Append an AGENT-DISCONNECT with `status` and move to CLOSING (used for
 * idle timeouts and shutdown). Returns 0 or -1 if `out` is full. */
CONN_WUR int conn_disconnect(struct conn_proto *c, unsigned int status,
                             struct obuf *out);

#endif /* MTLS_CONN_H */
