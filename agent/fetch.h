/*
 * fetch.h - one bounded HTTP(S) GET with libcurl, for CRLs (and later
 * OCSP): size limit, total and connect timeouts, a redirect limit, only
 * http and https (also after redirects). Blocking: call it from a thread
 * of its own, never from an event loop.
 */
#ifndef MTLS_FETCH_H
#define MTLS_FETCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define FETCH_WUR __attribute__((warn_unused_result))

#define FETCH_MAX_REDIRECTS 3

/* Once per process, before any thread fetches. Returns 0 or -1. */
FETCH_WUR int fetch_global_init(void);

/* GET `url`; on a 200 answer of at most `max` bytes within `timeout_ms`
 * (the whole transfer), *body is a malloc'd copy (the caller frees) of
 * *len bytes and 0 is returned. Else -1 with "what went wrong" in err:
 * a transport error, an HTTP status other than 200, a body over `max`
 * (the transfer stops there), a timeout, or *cancel (may be NULL) set
 * meanwhile (looked at several times a second). */
FETCH_WUR int fetch_get(const char *url, size_t max, unsigned int timeout_ms,
                        const atomic_int *cancel, uint8_t **body, size_t *len,
                        char *err, size_t errlen);

/* The same as a POST of post[postlen] with Content-Type `ctype` (OCSP). */
FETCH_WUR int fetch_post(const char *url, const uint8_t *post, size_t postlen,
                         const char *ctype, size_t max, unsigned int timeout_ms,
                         uint8_t **body, size_t *len, char *err,
                         size_t errlen);

#endif /* MTLS_FETCH_H */
