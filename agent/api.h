/*
 * api.h - the tenant API: CAs and hosts managed over HTTP on the admin
 * listener (/v1/cas, /v1/hosts, /v1/verify), persisted in the state
 * directory and applied to the data path before a write is answered.
 *
 * admin.c parses HTTP, authenticates and hands every /v1 request except
 * /v1/status to api_handle(). Reads are answered on the admin thread
 * from the live generation. Writes run one at a time on the thread that
 * owns the live configuration (api_host_ops.run): the new api.conf text
 * is built, the whole configuration is loaded from the files plus that
 * text (every unchanged object reused, so only what the write touched is
 * built), the text is committed to disk (store.h), then the generation is
 * installed. A refused write changes nothing, on disk or live.
 */
#ifndef MTLS_API_H
#define MTLS_API_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct api_txn;
struct api;

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

/* What the API needs of the process that runs it (server.c). */
struct api_host_ops {
	/* Run fn(arg) on the thread that installs configurations, after every
	 * write queued before it, and wait for it. -1 when stopping (fn not
	 * run). */
	int (*run)(void *ctx, void (*fn)(void *arg), void *arg);
	/* A reference on the live generation (any thread); release drops it. */
	const struct config *(*acquire)(void *ctx, void **ref, uint64_t *gen);
	void (*release)(void *ctx, void *ref);
	/* On the run thread: load the configuration files with `text` as the
	 * state file, beside the live generation. 0, or -1 with "FILE:LINE:
	 * message" in err. */
	int (*rebuild)(void *ctx, const char *text, size_t len,
	               struct config **out, char *err, size_t errlen);
	/* On the run thread: install `cfg` (ownership passes); the new
	 * generation in *gen. 0 or -1 (cfg freed). */
	int (*install)(void *ctx, struct config *cfg, const char *why,
	               uint64_t *gen);

	/* The shared store (backend etcd, fleet.c); all NULL with the state
	 * directory as the store. */
	/* On the run thread: the store revision the live generation was
	 * built from, and the mod revision of object `name` (0: absent). */
	int64_t (*store_mod)(void *ctx, int is_host, const char *name,
	                     int64_t *applied);
	/* Any thread but the run thread: commit `t` to the store; on
	 * API_STORE_OK *t->revision is the new revision, and the call returns
	 * once this process applied it (or timed out: still OK). */
	int (*store_publish)(void *ctx, struct api_txn *t, char *err,
	                     size_t errlen);
	/* Wait until this process applied revision `rev` (any thread). */
	void (*store_wait)(void *ctx, int64_t rev);
};

/* One write to the shared store: every object it changes, each with the
 * mod revision it had when the write was validated, so the store commits
 * it only if nobody changed them since. */
struct api_txn_op {
	int is_host;
	char *name;                /* CA name, or host pattern (normal form) */
	char *value;               /* the object's PUT body (JSON), NULL: delete */
	int64_t mod;               /* expected mod revision; 0: must be absent */
};

struct api_txn {
	struct api_txn_op *ops;
	size_t n_ops;
	char **need_cas;           /* API CAs the hosts written reference: must exist */
	size_t n_need;
	int64_t hosts_since;       /* > 0: no host may have changed after it
	                              (a CA delete checked that none uses it) */
	int64_t revision;          /* out: the committed revision */
};

enum api_store_rc {
	API_STORE_OK = 0,
	API_STORE_CONFLICT = 1,    /* something changed meanwhile: retry */
	API_STORE_UNAVAILABLE = -1,/* 503: the store did not commit in time */
	API_STORE_ERROR = -2,      /* 500 */
};

/* A change read from the store, applied by api_store_apply(). */
struct api_change {
	int is_host;
	const char *name;          /* from the key */
	const char *value;         /* NULL: deleted */
	size_t len;
	int rejected;              /* out: 1 when refused */
	char why[256];             /* out: why */
};

/* On the run thread: apply changes read from the store at `revision`
 * (full: they are the store's whole content, every API object not in it
 * goes) to the live generation; each change that does not load is
 * refused (change->rejected) and the rest applied. Writes the state
 * directory's api.conf (the snapshot, with "# etcd revision N") and
 * installs. 0, or -1 when nothing could be installed (err). */
int api_store_apply(struct api *api, struct api_change *ch, size_t n,
                    int full, int64_t revision, char *err, size_t errlen);

/* The revision a snapshot api.conf records ("# etcd revision N"), or 0. */
int64_t api_snapshot_revision(const char *text, size_t len);

struct api;

/* NULL when out of memory. */
struct api *api_new(const struct api_host_ops *ops, void *ctx);
void api_free(struct api *api);

#endif /* MTLS_API_H */
