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

/* What a worker hands to the handler for one NOTIFY. */
struct handler_env {
	const struct config *cfg;   /* may be NULL: no policies */
	struct cache *cache;        /* may be NULL: no caching */
	uint64_t gen;               /* configuration generation (cache key) */
	unsigned int cache_ttl;     /* seconds an answer may be reused */
};

#define HANDLER_WUR __attribute__((warn_unused_result))

#define HANDLER_MESSAGE "check-client-cert"
#define HANDLER_MESSAGE_SNI "check-client-cert-sni"

/* Collect the arguments of one message into `req` (views into the frame);
 * the caller sets req->kind afterwards. Returns 0, or -1 if an argument
 * does not decode. */
HANDLER_WUR int handler_parse_request(const struct spop_msg *msg,
                                      struct mtls_request *req);

/* Write the complete ACK frame answering NOTIFY `f` into `w`, never larger
 * than `max_frame`: if the full variable set does not fit, the certificate
 * details are left out. Returns 0, or -1 if the NOTIFY payload is
 * malformed or `w` is too small (nothing is then left in `w`).
 * *messages is set to the number of known messages answered. */
HANDLER_WUR int handler_notify(const struct handler_env *env,
                               const struct spop_frame *f, uint32_t max_frame,
                               struct spop_wr *w, unsigned int *messages);

/* How long the answer in `v` may be reused, as an absolute time: the
 * earliest of now + ttl and the moments the verdict could change
 * (validity bounds, CRL updates). 0 when it must not be cached. */
time_t handler_cache_until(const struct verdict *v, time_t now, unsigned int ttl);

#endif /* MTLS_HANDLER_H */
