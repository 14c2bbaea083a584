/*
 * admin.h - the admin HTTP listener: /healthz, /readyz, /metrics and
 * /v1/status, served by libmicrohttpd on threads of its own (one per
 * address), never on a SPOP worker loop.
 *
 * /healthz, /readyz and /metrics are open, GET and HEAD only (405 with
 * Allow otherwise), their bodies never read. Every /v1/ path needs a
 * bearer token of the live generation's admin-token-file (tokens.h), or,
 * without a token file, a unix-socket listener (403 on TCP); its body is
 * read up to admin-max-body (413 past it), then /v1/status is answered
 * here and every other /v1 path handed to admin_ops.api (api.h; 404 when
 * NULL). One JSON error shape everywhere (api_error_json).
 *
 * Bounded: ADMIN_MAX_CONNECTIONS connections and ADMIN_MEMORY_LIMIT bytes
 * of request head per connection on each address, admin-max-body bytes
 * of body per request, ADMIN_TIMEOUT_SECONDS of inactivity; 404 for any
 * other path. The admin threads read the live configuration through a
 * reference taken with admin_ops.acquire, as workers do, and counters
 * with relaxed atomic loads: they take no lock a worker takes per
 * request.
 */
#ifndef MTLS_ADMIN_H
#define MTLS_ADMIN_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct api_request;
struct api_response;

#define ADMIN_WUR __attribute__((warn_unused_result))

#define ADMIN_MAX_CONNECTIONS 64
#define ADMIN_TIMEOUT_SECONDS 10
#define ADMIN_MEMORY_LIMIT (32 * 1024)

/* What a request reads of the running agent. */
struct admin_view {
	const struct config *cfg;   /* the live generation, may be NULL */
	uint64_t generation;
	double loaded_at;           /* unix seconds it was installed */
	uint64_t connections;       /* SPOP connections open */
	int ready;                  /* every SPOP listener is accepting (and a
	                               configuration from the store is live) */
	char *store_json;           /* the shared store's status (JSON text,
	                               malloc'd, freed by release), NULL: files */
	void *ref;                  /* the provider's reference */
};

struct admin_ops {
	/* Fill `v` with a reference on the live generation; any thread. */
	void (*acquire)(struct admin_view *v);
	/* Drop what acquire took. */
	void (*release)(struct admin_view *v);
	/* The tenant API (api_handle of api.h), called with api_ctx for every
	 * authenticated /v1 request but /v1/status, on the admin threads,
	 * concurrently; NULL: those paths answer 404. */
	void (*api)(void *ctx, const struct api_request *rq,
	            struct api_response *rs);
	void *api_ctx;
};

struct admin;

/* Open every address of `addrs` (syntax of addr.h; a unix socket of a
 * live process is refused) and start serving. *out is NULL when n is 0.
 * Returns 0, or -1 with a message naming the address in err (nothing is
 * left open). Signals are blocked on the admin threads. */
ADMIN_WUR int admin_start(char *const *addrs, size_t n, const struct admin_ops *ops,
                          struct admin **out, char *err, size_t errlen);

/* Stop serving, close the sockets, remove unix socket files, free. NULL
 * is fine. */
void admin_stop(struct admin *a);

/* The body of GET /v1/status for `v` at time `now` (unix seconds): a
 * malloc'd NUL-terminated JSON document, or NULL when out of memory. */
char *admin_status_json(const struct admin_view *v, int64_t now);

#endif /* MTLS_ADMIN_H */
