/*
 * api.h - the tenant API (issue 14, /work/api-contract.md): requests under
 * /v1/ other than /v1/status, handed over by the admin HTTP layer
 * (admin.c) once authenticated and with their whole body read.
 */
#ifndef MTLS_API_H
#define MTLS_API_H

#include <stddef.h>
#include <stdint.h>

struct api_request {
	const char *method;        /* "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE" */
	const char *path;          /* the URL path as received (percent-encoded), starts with "/v1/" */
	const char *content_type;  /* header value or NULL */
	const char *if_match;      /* header value or NULL */
	const char *if_none_match; /* header value or NULL */
	const char *who;           /* the token's NAME, or "unix" */
	const char *body;          /* NULL when none */
	size_t body_len;
};
struct api_response {
	int status;
	char *body;                /* malloc'd JSON document, or NULL (e.g. 204); freed by admin.c */
	char etag[40];             /* "\"<32 hex>\"" or "" : ETag header when set */
	uint64_t generation;       /* > 0: Mtls-Generation header */
	const char *allow;         /* static string: Allow header (405) or NULL */
};
/* Handle one /v1 request other than /v1/status; any thread, concurrently. */
void api_handle(void *ctx, const struct api_request *rq, struct api_response *rs);
/* {"error":{"status":S,"field":F,"message":M}}; field may be NULL. malloc'd. */
char *api_error_json(int status, const char *field, const char *message);

#endif /* MTLS_API_H */
