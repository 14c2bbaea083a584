/*
 * ocsp.h - OCSP (RFC 6960) for client certificates: build the request,
 * verify the response (signature, responder authorization, thisUpdate /
 * nextUpdate, nonce when the responder echoes one), and a process-wide
 * cache by (issuer, serial) with one query in flight per key.
 *
 * ocsp_check() blocks for at most the timeout it is given: it runs on
 * the verify threads (trust_verify), never on a worker loop.
 */
#ifndef MTLS_OCSP_H
#define MTLS_OCSP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

enum ocsp_mode {
	OCSP_MODE_OFF = 0,
	OCSP_MODE_SOFT,         /* unreachable or unknown: as without OCSP */
	OCSP_MODE_HARD,         /* unreachable or unknown: revocation_unknown */
	OCSP_MODE_COUNT
};

enum ocsp_status {
	OCSP_GOOD = 0,
	OCSP_REVOKED,
	OCSP_UNKNOWN,           /* the responder does not know the certificate */
	OCSP_UNAVAILABLE,       /* no usable answer: unreachable, timeout, a
	                           response that does not verify or is not
	                           current, an answer for another certificate */
	OCSP_STATUS_COUNT
};

const char *ocsp_status_str(enum ocsp_status s);
const char *ocsp_mode_str(enum ocsp_mode m);

/* Largest OCSP response accepted. */
#define OCSP_MAX_RESPONSE (1024 * 1024)
/* Most cached answers; past it, expired ones are dropped first, then
 * nothing more is cached until some expire. */
#define OCSP_CACHE_MAX 100000
/* How long a verdict without a usable OCSP answer may be cached. */
#define OCSP_RETRY_SECONDS 5

/* Verify DER response `der` for certificate id `id`. `req` (may be
 * NULL) is the request it answers: a nonce the response carries must be
 * that request's. `issuer` issued the certificate; `ca_certs` are the
 * section's certificates (trust anchors for a delegated responder's
 * certificate). A response whose thisUpdate is older than max_age_s
 * (0: no limit) or whose nextUpdate passed is not current. On GOOD,
 * REVOKED and UNKNOWN, *next_update is its nextUpdate (0: none). Pure:
 * no I/O. Leaves the OpenSSL error queue empty. */
enum ocsp_status ocsp_response_status(const uint8_t *der, size_t len,
                                      OCSP_CERTID *id, OCSP_REQUEST *req,
                                      X509 *issuer, STACK_OF(X509) *ca_certs,
                                      long max_age_s, time_t *next_update,
                                      char *why, size_t whylen);

struct ocsp_opts {
	const char *ca;         /* the [ca] name, for the per-CA counters */
	const char *url;        /* ocsp-url, NULL: the certificate's AIA */
	unsigned int timeout_ms;
	unsigned int max_age_ms;
};

/* The status of `leaf` (issued by `issuer`): from the cache while its
 * answer is current (until nextUpdate, at most max_age after it was
 * fetched), else from the responder: one query per (issuer, serial) at
 * a time, the other callers waiting for it (at most timeout_ms). GOOD
 * and REVOKED answers are cached. *valid_until is when the answer stops
 * holding (unix seconds). */
enum ocsp_status ocsp_check(X509 *leaf, X509 *issuer, STACK_OF(X509) *ca_certs,
                            const struct ocsp_opts *o, int64_t *valid_until,
                            char *why, size_t whylen);

struct ocsp_stats {
	uint64_t queries[OCSP_STATUS_COUNT];  /* responder queries by outcome */
	uint64_t hits, misses;                /* cache lookups */
	size_t entries;                       /* cached answers now */
};

void ocsp_get_stats(struct ocsp_stats *st);

/* Most [ca] names counted apart; the others count in the totals only. */
#define OCSP_MAX_CA_COUNTERS 4096

/* fn(ctx, name, stats) for every [ca] that asked OCSP since the start
 * (under the cache lock: fn must not call back into ocsp). */
typedef void (*ocsp_ca_fn)(void *ctx, const char *ca, const struct ocsp_stats *st);
void ocsp_foreach_ca(ocsp_ca_fn fn, void *ctx);

/* The counters of [ca] `ca` into st (zero when it never asked). */
void ocsp_ca_stats(const char *ca, struct ocsp_stats *st);

/* Forget every cached answer (tests). */
void ocsp_cache_clear(void);

#endif /* MTLS_OCSP_H */
