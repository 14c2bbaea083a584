/*
 * handler.h - answers the messages of a NOTIFY frame.
 *
 * The agent knows two messages, with arguments matched by name in any
 * order: cert (BINARY), chain (BINARY), sni (STRING) and host (STRING).
 *   check-client-cert      an HTTP request: the policy is the Host's, and a
 *                          Host that is missing, NULL, empty or not one
 *                          host[:port] is refused (see verdict.c)
 *   check-client-cert-sni  a TCP connection: the policy is the SNI's alone
 * Unknown messages and arguments are ignored (and logged once).
 */
#ifndef MTLS_HANDLER_H
#define MTLS_HANDLER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "config.h"
#include "spop.h"
#include "verdict.h"

struct cache;
struct handler_job;

/* Takes a verification to run off the worker (see handler_job_run()).
 * Returns 0 when it took the job, -1 when it cannot (queue full): the
 * handler then verifies inline. */
typedef int (*handler_submit_fn)(void *ctx, struct handler_job *job);

/* What a worker hands to the handler for one NOTIFY. */
struct handler_env {
	const struct config *cfg;   /* may be NULL: no policies */
	struct cache *cache;        /* may be NULL: no caching */
	uint64_t gen;               /* configuration generation (for logs) */
	unsigned int cache_ttl_ms;  /* how long a result may be reused */
	unsigned int memo_ttl_ms;   /* [agent] memo-ttl: the longest memo_ttl
	                               sent (0: never sent) */
	handler_submit_fn submit;   /* NULL: verify inline */
	void *submit_ctx;
};

#define HANDLER_WUR __attribute__((warn_unused_result))

#define HANDLER_MESSAGE "check-client-cert"
#define HANDLER_MESSAGE_SNI "check-client-cert-sni"

/* Collect the arguments of one message into `req` (views into the frame);
 * the caller sets req->kind afterwards. Returns 0, or -1 if an argument
 * does not decode. */
HANDLER_WUR int handler_parse_request(const struct spop_msg *msg,
                                      struct mtls_request *req);

/* What handler_notify() did. */
enum handler_rc {
	HANDLER_NO_ROOM = -2,   /* `w` cannot hold even the frame header:
	                           nothing is left in `w` */
	HANDLER_MALFORMED = -1, /* the NOTIFY payload does not decode */
	HANDLER_ACK = 0,        /* the complete ACK frame is in `w` */
	HANDLER_PENDING = 1,    /* env->submit took the verification as a job
	                           (nothing written): finish it with
	                           handler_job_finish() */
};

/* Answer NOTIFY `f`. An ACK is never larger than `max_frame`: if the full
 * variable set does not fit, the certificate details are left out, and
 * if that is still too large only action and result are sent (a verdict
 * is never lost to its size). *messages is set to the number of known
 * messages answered. Without env->submit, verifications run inline and
 * HANDLER_PENDING is never returned. */
HANDLER_WUR enum handler_rc handler_notify(const struct handler_env *env,
                                           const struct spop_frame *f,
                                           uint32_t max_frame,
                                           struct spop_wr *w,
                                           unsigned int *messages);

/* Run the verification of a job: on any thread, touching nothing but the
 * job (which holds references on what it reads). */
void handler_job_run(struct handler_job *j);

/* On the worker that owns the connection: store the result in env's
 * cache and write the ACK frame into `w` (same size rules as
 * handler_notify()). Returns 0, or -1 if `w` is too small. */
HANDLER_WUR int handler_job_finish(const struct handler_env *env,
                                   struct handler_job *j, uint32_t max_frame,
                                   struct spop_wr *w);

void handler_job_free(struct handler_job *j);

/* What a job verifies, for sharing one verification between equal jobs
 * (vpool.c): the trust policy id and the certificate + chain bytes.
 * Returns 0 when the job must not be shared (the cache is disabled:
 * every request is verified). */
int handler_job_key(const struct handler_job *j, uint64_t *id,
                    const uint8_t **bytes, size_t *len);

/* Until when (unix ms) the job's result may answer equal requests: the
 * cache rule (TTL, validity bounds, CRL updates); 0 for never. */
int64_t handler_job_expires(const struct handler_job *j);

/* Give `dst` the trust result of `src` (an equal job that ran). */
void handler_job_adopt(struct handler_job *dst, const struct handler_job *src);

/* A copy of a finished job that keeps its result (and what the result
 * borrows) alive, or NULL when out of memory. */
struct handler_job *handler_job_clone(const struct handler_job *j);

/* The memo_ttl of verdict `v` decided at `now_ms` (unix ms): how long
 * HAProxy may reuse it for later requests with the same Host on the same
 * TLS connection. At most `ttl_ms` ([agent] memo-ttl) and never past
 * `until` (unix ms: when the verdict could change; INT64_MAX when only a
 * reload can change it); 0 (not reusable) for an internal error, when
 * `ttl_ms` is 0 or when `until` has passed. */
unsigned int handler_memo_ttl(const struct verdict *v, int64_t now_ms,
                              int64_t until, unsigned int ttl_ms);

/* How long the trust result `t` may be reused, as an absolute time in
 * unix milliseconds: the earliest of now + ttl and the moment the result
 * could change (validity bounds, CRL updates). 0 when it must not be
 * cached. */
int64_t handler_cache_until(const struct trust_result *t, int64_t now_ms,
                            unsigned int ttl_ms);

#endif /* MTLS_HANDLER_H */
