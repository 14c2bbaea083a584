/*
 * admin.c - the admin HTTP endpoints on libmicrohttpd (one daemon with
 * its own epoll thread per address).
 */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>

#include "admin.h"
#include "api.h"
#include "config.h"
#include "crlsrc.h"
#include "log.h"
#include "metrics.h"
#include "listen.h"
#include "tokens.h"
#include "ocsp.h"

#ifndef MTLS_VERSION
#define MTLS_VERSION "dev"
#endif

#define ADMIN_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct admin_daemon {
	struct admin *a;
	struct MHD_Daemon *d;
	char *unix_path;        /* removed at stop */
	int is_unix;            /* /v1 without a token file only here */
};

struct admin {
	const struct admin_ops *ops;
	struct admin_daemon ds[CONFIG_MAX_LISTEN];
	size_t n;
};

/* ---- /v1/status ------------------------------------------------------ */

static json_t *iso_time(int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	char buf[32];

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_null();
	return json_string(buf);
}

static json_t *hex32(const uint8_t d[32])
{
	char buf[65];

	for (int i = 0; i < 32; i++)
		snprintf(buf + 2 * i, 3, "%02x", d[i]);
	return json_string(buf);
}

static void note_cb(void *ctx, int crl_file, const char *msg)
{
	(void)crl_file;
	json_array_append_new(ctx, json_string(msg));
}

/* What the crl-url fetcher knows of the copy f (a crl-url's), and the
 * OCSP settings and counters of a [ca]: added to the status objects. */
static void crl_fetch_json(json_t *o, const struct ca_crl_file *f)
{
	struct crlsrc_stat st;

	if (f->url == NULL)
		return;
	json_object_set_new(o, "url", json_string(f->url));
	if (crlsrc_stat_of(metrics_get_crlsrc(), f->path, &st) != 0)
		return;
	json_object_set_new(o, "fetch", json_pack(
		"{s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:s}",
		"last_success", (json_int_t)st.last_success,
		"last_success_iso", iso_time((int64_t)st.last_success),
		"last_attempt", (json_int_t)st.last_attempt,
		"next_fetch", (json_int_t)st.next_fetch,
		"fetches", (json_int_t)st.fetches,
		"failures", (json_int_t)st.failures,
		"refused", (json_int_t)st.refused,
		"unchanged", (json_int_t)st.unchanged,
		"failing", (int)st.failing, "last_error", st.last_error));
}

static json_t *ocsp_json(const struct ca_entry *ca)
{
	struct ocsp_stats st;
	json_t *q = json_object();

	ocsp_ca_stats(ca->name, &st);
	for (int i = 0; i < OCSP_STATUS_COUNT; i++)
		json_object_set_new(q, ocsp_status_str((enum ocsp_status)i),
		                    json_integer((json_int_t)st.queries[i]));
	return json_pack("{s:s, s:s?, s:i, s:i, s:o, s:I, s:I, s:I}",
	                 "mode", ocsp_mode_str((enum ocsp_mode)ca->rev.ocsp_mode),
	                 "url", ca->rev.ocsp_url,
	                 "timeout_ms", (int)ca->rev.ocsp_timeout_ms,
	                 "max_age_ms", (int)ca->rev.ocsp_max_age_ms,
	                 "queries", q, "cache_hits", (json_int_t)st.hits,
	                 "cache_misses", (json_int_t)st.misses,
	                 "cache_entries", (json_int_t)st.entries);
}

/* One `crl =` file of a [ca]: every CRL in it with its nextUpdate and
 * flags (stale: past nextUpdate; expiring: within CA_WARN_CRL_SECONDS). */
static json_t *crl_file_json(const struct ca_crl_file *f, int64_t now)
{
	json_t *crls = json_array();

	for (size_t k = 0; k < f->n_crls; k++) {
		struct crl *c = f->crls[k];
		int64_t nu = (int64_t)crl_next_update(c);
		char issuer[512];

		ca_name_str(crl_issuer(c), issuer, sizeof(issuer));
		json_array_append_new(crls, json_pack(
			"{s:s, s:I, s:o, s:I, s:o, s:I, s:b, s:b}",
			"issuer", issuer,
			"last_update", (json_int_t)crl_last_update(c),
			"last_update_iso", iso_time((int64_t)crl_last_update(c)),
			"next_update", (json_int_t)nu,
			"next_update_iso", iso_time(nu),
			"entries", (json_int_t)crl_count(c),
			"stale", nu != 0 && nu <= now,
			"expiring", nu != 0 && nu > now && nu - now <= CA_WARN_CRL_SECONDS));
	}
	json_t *o = json_pack("{s:s, s:o, s:o}", "file", f->path, "sha256",
	                      hex32(f->digest), "crls", crls);

	crl_fetch_json(o, f);
	return o;
}

static json_t *ca_json(const struct ca_entry *ca, int64_t now)
{
	json_t *files = json_array();
	int64_t na = (int64_t)ca->not_after;

	for (size_t f = 0; f < ca->n_crl_files; f++)
		json_array_append_new(files, crl_file_json(&ca->crl_files[f], now));
	return json_pack("{s:s, s:s, s:o, s:i, s:I, s:o, s:b, s:b, s:o, s:o}",
	                 "name", ca->name, "file", ca->file,
	                 "sha256", hex32(ca->digest),
	                 "certificates", sk_X509_num(ca->certs),
	                 "not_after", (json_int_t)na,
	                 "not_after_iso", iso_time(na),
	                 "expired", na != 0 && na <= now,
	                 "expiring", na != 0 && na > now &&
	                             na - now <= CA_WARN_CERT_SECONDS,
	                 "crl_files", files, "ocsp", ocsp_json(ca));
}

/* See admin.h. */
char *admin_status_json(const struct admin_view *v, int64_t now)
{
	const struct config *cfg = v->cfg;
	json_t *root, *sources = json_array(), *cas = json_array();
	json_t *warnings = json_array(), *config;
	char *out;

	for (size_t i = 0; cfg != NULL && i < cfg->n_sources; i++)
		json_array_append_new(sources, json_pack("{s:s, s:o}",
			"path", cfg->sources[i].path,
			"sha256", hex32(cfg->sources[i].sha256)));
	for (size_t i = 0; cfg != NULL && i < cfg->n_cas; i++) {
		json_array_append_new(cas, ca_json(cfg->cas[i], now));
		(void)ca_expiry_notes(cfg->cas[i], (time_t)now, note_cb, warnings);
	}
	if (cfg != NULL)
		config = json_pack("{s:s, s:o, s:f, s:{s:I, s:I, s:I, s:I, s:I, s:I}}",
			"path", cfg->path ? cfg->path : "",
			"sources", sources,
			"load_ms", cfg->stats.load_ms,
			"built",
			"cas", (json_int_t)cfg->stats.cas_built,
			"cas_reused", (json_int_t)cfg->stats.cas_reused,
			"trust_policies", (json_int_t)cfg->stats.trusts_built,
			"trust_policies_reused", (json_int_t)cfg->stats.trusts_reused,
			"hosts", (json_int_t)cfg->stats.hosts_built,
			"hosts_reused", (json_int_t)cfg->stats.hosts_reused);
	else
		config = (json_decref(sources), json_null());
	root = json_pack("{s:s, s:s, s:b, s:I, s:f, s:o, s:o, s:{s:I, s:I, s:I}, "
	                 "s:I, s:o, s:o}",
		"version", MTLS_VERSION,
		"openssl", OpenSSL_version(OPENSSL_VERSION_STRING),
		"ready", v->ready && v->generation > 0,
		"generation", (json_int_t)v->generation,
		"loaded_at", v->loaded_at,
		"loaded_at_iso", iso_time((int64_t)v->loaded_at),
		"config", config,
		"counts",
		"cas", (json_int_t)(cfg ? cfg->n_cas : 0),
		"hosts", (json_int_t)(cfg ? cfg->n_hosts : 0),
		"trust_policies", (json_int_t)(cfg ? cfg->n_trusts : 0),
		"connections", (json_int_t)v->connections,
		"cas", cas,
		"warnings", warnings);
	if (root == NULL)
		return NULL;
	json_object_set_new(root, "store", v->store_json != NULL ?
	                    json_loads(v->store_json, 0, NULL) :
	                    json_pack("{s:s}", "backend", "files"));
	out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	return out;
}

/* ---- HTTP --------------------------------------------------------------- */

#define JSON_TYPE "application/json"
#define ALLOW_READ "GET, HEAD"
#define BEARER_CHALLENGE "Bearer realm=\"mtls-spoa\""

/* A response's optional headers. */
struct reply_hdrs {
	const char *allow;          /* Allow */
	const char *etag;           /* ETag, "" or NULL: none */
	uint64_t generation;        /* Mtls-Generation when > 0 */
	int challenge;              /* WWW-Authenticate: Bearer */
};

/* Queue `body` (len bytes; NULL/0: none) with `status`. `mode` says who
 * owns body (MHD_RESPMEM_MUST_FREE: freed here, whatever happens).
 * Content-Type is set only with a body. */
static enum MHD_Result reply_h(struct MHD_Connection *conn, unsigned int status,
                               const char *type, char *body, size_t len,
                               enum MHD_ResponseMemoryMode mode,
                               const struct reply_hdrs *h)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, len > 0 ? body : NULL,
		                                len > 0 ? mode : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result rc;
	char gen[24];

	if (len == 0 && mode == MHD_RESPMEM_MUST_FREE)
		free(body);
	if (r == NULL) {
		if (len > 0 && mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	if (len > 0)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (h != NULL && h->allow != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, h->allow);
	if (h != NULL && h->etag != NULL && h->etag[0] != '\0')
		MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, h->etag);
	if (h != NULL && h->generation > 0) {
		snprintf(gen, sizeof(gen), "%llu", (unsigned long long)h->generation);
		MHD_add_response_header(r, "Mtls-Generation", gen);
	}
	if (h != NULL && h->challenge)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                        BEARER_CHALLENGE);
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status,
                             const char *type, char *body, size_t len,
                             enum MHD_ResponseMemoryMode mode)
{
	return reply_h(conn, status, type, body, len, mode, NULL);
}

static enum MHD_Result reply_static(struct MHD_Connection *conn,
                                    unsigned int status, const char *type,
                                    const char *body)
{
	return reply(conn, status, type, (char *)body, strlen(body),
	             MHD_RESPMEM_PERSISTENT);
}

/* The one error shape (api_error_json), with the headers of `h`. */
static enum MHD_Result reply_error(struct MHD_Connection *conn,
                                   unsigned int status, const char *message,
                                   const struct reply_hdrs *h)
{
	static const char oom[] =
		"{\"error\":{\"status\":500,\"message\":\"out of memory\"}}";
	char *body = api_error_json((int)status, NULL, message);

	if (body == NULL)
		return reply_h(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, JSON_TYPE,
		               (char *)oom, sizeof(oom) - 1, MHD_RESPMEM_PERSISTENT, h);
	return reply_h(conn, status, JSON_TYPE, body, strlen(body),
	               MHD_RESPMEM_MUST_FREE, h);
}

static enum MHD_Result on_metrics(struct admin *a, struct MHD_Connection *conn)
{
	struct admin_view v;
	struct metrics_view mv;
	struct metrics_text t = { 0 };
	int rc;

	memset(&v, 0, sizeof(v));
	a->ops->acquire(&v);
	mv.cfg = v.cfg;
	mv.generation = v.generation;
	mv.loaded_at = v.loaded_at;
	mv.connections = v.connections;
	mv.version = MTLS_VERSION;
	mv.openssl = OpenSSL_version(OPENSSL_VERSION_STRING);
	rc = metrics_render(&mv, &t);
	a->ops->release(&v);
	if (rc != 0) {
		metrics_text_free(&t);
		return reply_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                   "out of memory", NULL);
	}
	return reply(conn, MHD_HTTP_OK, ADMIN_METRICS_TYPE, t.p, t.len,
	             MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result on_status(struct admin *a, struct MHD_Connection *conn)
{
	struct admin_view v;
	struct reply_hdrs h = { 0 };
	char *body;

	memset(&v, 0, sizeof(v));
	a->ops->acquire(&v);
	body = admin_status_json(&v, (int64_t)time(NULL));
	h.generation = v.generation;
	a->ops->release(&v);
	if (body == NULL)
		return reply_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                   "out of memory", NULL);
	return reply_h(conn, MHD_HTTP_OK, JSON_TYPE, body, strlen(body),
	               MHD_RESPMEM_MUST_FREE, &h);
}

static enum MHD_Result on_ready(struct admin *a, struct MHD_Connection *conn)
{
	struct admin_view v;
	int ready;

	memset(&v, 0, sizeof(v));
	a->ops->acquire(&v);
	ready = v.ready && v.generation > 0;
	a->ops->release(&v);
	if (ready)
		return reply_static(conn, MHD_HTTP_OK, "text/plain", "ready\n");
	return reply_static(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
	                    "not ready\n");
}

static int is_read(const char *method)
{
	return strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
	       strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}

/* /healthz, /readyz, /metrics: open, GET and HEAD only. */
static enum MHD_Result on_open_path(struct admin *a, struct MHD_Connection *conn,
                                    const char *url, const char *method)
{
	static const struct reply_hdrs allow_read = { .allow = ALLOW_READ };

	if (!is_read(method))
		return reply_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		                   "method not allowed: GET or HEAD", &allow_read);
	if (strcmp(url, "/healthz") == 0)
		return reply_static(conn, MHD_HTTP_OK, "text/plain", "ok\n");
	if (strcmp(url, "/readyz") == 0)
		return on_ready(a, conn);
	if (strcmp(url, "/metrics") == 0)
		return on_metrics(a, conn);
	return reply_error(conn, MHD_HTTP_NOT_FOUND, "not found: /healthz, "
	                   "/readyz, /metrics, /v1/...", NULL);
}

/* A /v1 request between its headers and the end of its body. */
struct admin_req {
	char who[TOKENS_NAME_MAX + 1];
	size_t max_body;
	char *body;                 /* len bytes + NUL, at most max_body + 1 */
	size_t len, cap;
	int too_big;                /* over max_body: the rest is discarded */
	int answered;               /* a response is queued */
};

static void req_free(struct admin_req *r)
{
	if (r == NULL)
		return;
	free(r->body);
	free(r);
}

/* MHD_OPTION_NOTIFY_COMPLETED: the request is over, answered or not. */
static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **req_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls; (void)conn; (void)toe;
	req_free(*req_cls);
	*req_cls = NULL;
}

/* Keep the URL as received: the API sees percent-encoded paths (a host
 * pattern %2A.example.com) and decodes each segment itself. */
static size_t keep_url(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls; (void)c;
	return strlen(s);
}

static const char *const v1_methods[] = {
	MHD_HTTP_METHOD_GET, MHD_HTTP_METHOD_HEAD, MHD_HTTP_METHOD_POST,
	MHD_HTTP_METHOD_PUT, MHD_HTTP_METHOD_PATCH, MHD_HTTP_METHOD_DELETE,
};

/* Content-Length as a number; -1 when absent or not a plain decimal
 * (MHD has refused a malformed one before we are called). */
static long long content_length(struct MHD_Connection *conn)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                            MHD_HTTP_HEADER_CONTENT_LENGTH);
	long long n = 0;

	if (v == NULL || *v == '\0')
		return -1;
	for (; *v >= '0' && *v <= '9'; v++) {
		if (n > (LLONG_MAX - 9) / 10)
			return LLONG_MAX;
		n = n * 10 + (*v - '0');
	}
	return *v == '\0' ? n : -1;
}

/* The headers of a /v1 request are in: authenticate (contract
 * "Authentication"), refuse a declared body over the limit, and set up
 * the body buffer in *req_cls. Answers now (401, 403, 413, 501) or returns
 * MHD_YES to receive the body. */
static enum MHD_Result v1_begin(struct admin_daemon *d,
                                struct MHD_Connection *conn,
                                const char *method, void **req_cls)
{
	static const struct reply_hdrs challenge = { .challenge = 1 };
	struct admin_view v;
	struct admin_req *r;
	const struct tokens *tk;
	const char *name = NULL;
	size_t max_body;
	int authed, have_tokens;
	long long cl;
	size_t i;

	memset(&v, 0, sizeof(v));
	d->a->ops->acquire(&v);
	tk = v.cfg != NULL ? v.cfg->tokens : NULL;
	have_tokens = tk != NULL;
	max_body = v.cfg != NULL ? v.cfg->agent.admin_max_body : 0;
	r = calloc(1, sizeof(*r));
	if (have_tokens) {
		authed = tokens_check(tk, MHD_lookup_connection_value(conn,
		                      MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
		                      &name);
		if (authed && r != NULL)
			snprintf(r->who, sizeof(r->who), "%s", name);
	} else {
		authed = d->is_unix;
		if (r != NULL)
			snprintf(r->who, sizeof(r->who), "unix");
	}
	d->a->ops->release(&v);
	if (r == NULL)
		return reply_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                   "out of memory", NULL);
	if (!authed) {
		free(r);
		if (have_tokens)
			return reply_error(conn, MHD_HTTP_UNAUTHORIZED,
			                   "a valid Authorization: Bearer token is "
			                   "required", &challenge);
		return reply_error(conn, MHD_HTTP_FORBIDDEN, "no admin-token-file: "
		                   "/v1 is served on unix-socket listeners only",
		                   NULL);
	}
	for (i = 0; i < sizeof(v1_methods) / sizeof(v1_methods[0]); i++)
		if (strcmp(method, v1_methods[i]) == 0)
			break;
	if (i == sizeof(v1_methods) / sizeof(v1_methods[0])) {
		free(r);
		return reply_error(conn, MHD_HTTP_NOT_IMPLEMENTED,
		                   "method not implemented", NULL);
	}
	cl = content_length(conn);
	if (cl > 0 && (unsigned long long)cl > max_body) {
		free(r);
		return reply_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body "
		                   "larger than admin-max-body", NULL);
	}
	r->max_body = max_body;
	if (cl > 0) {
		/* Declared and within the limit: one allocation. */
		r->body = malloc((size_t)cl + 1);
		if (r->body == NULL) {
			free(r);
			return reply_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
			                   "out of memory", NULL);
		}
		r->cap = (size_t)cl + 1;
	}
	*req_cls = r;
	return MHD_YES;
}

/* A chunk of body: kept while the total stays within max_body; past it,
 * 413 and nothing more is kept. Returns MHD_NO only when out of memory
 * (the connection closes). */
static enum MHD_Result v1_body(struct admin_req *r, struct MHD_Connection *conn,
                               const char *data, size_t n)
{
	size_t cap;
	char *p;

	if (r->too_big || r->answered)
		return MHD_YES;
	if (n > r->max_body - r->len) {
		r->too_big = 1;
		free(r->body);
		r->body = NULL;
		r->len = r->cap = 0;
		/* Answer now when MHD lets us; libmicrohttpd 0.9.75 refuses a
		 * response in the middle of a body, so it is then sent at the
		 * end of the body, the rest of which is read and dropped: at
		 * most max_body bytes are ever held. */
		if (reply_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body "
		                "larger than admin-max-body", NULL) == MHD_YES)
			r->answered = 1;
		return MHD_YES;
	}
	if (r->len + n + 1 > r->cap) {
		cap = r->cap < 4096 ? 4096 : r->cap;
		while (cap < r->len + n + 1)
			cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
		if (cap > r->max_body + 1)
			cap = r->max_body + 1;
		p = realloc(r->body, cap);
		if (p == NULL)
			return MHD_NO;
		r->body = p;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
	return MHD_YES;
}

/* The whole request is in and authenticated: /v1/status here, any other
 * /v1 path to the API (404 while there is none). */
static enum MHD_Result v1_dispatch(struct admin *a, struct admin_req *r,
                                   struct MHD_Connection *conn,
                                   const char *url, const char *method)
{
	static const struct reply_hdrs allow_read = { .allow = ALLOW_READ };
	struct api_request rq;
	struct api_response rs;
	struct reply_hdrs h;

	if (r->too_big)
		return reply_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body "
		                   "larger than admin-max-body", NULL);
	if (strcmp(url, "/v1/status") == 0) {
		if (!is_read(method))
			return reply_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
			                   "method not allowed: GET or HEAD", &allow_read);
		return on_status(a, conn);
	}
	if (a->ops->api == NULL)
		return reply_error(conn, MHD_HTTP_NOT_FOUND, "not found", NULL);
	memset(&rq, 0, sizeof(rq));
	memset(&rs, 0, sizeof(rs));
	rq.method = method;
	rq.path = url;
	rq.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                              MHD_HTTP_HEADER_CONTENT_TYPE);
	rq.if_match = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                          MHD_HTTP_HEADER_IF_MATCH);
	rq.if_none_match = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                               MHD_HTTP_HEADER_IF_NONE_MATCH);
	rq.who = r->who;
	rq.body = r->len > 0 ? r->body : NULL;
	rq.body_len = r->len;
	a->ops->api(a->ops->api_ctx, &rq, &rs);
	h.allow = rs.allow;
	h.etag = rs.etag;
	h.generation = rs.generation;
	h.challenge = 0;
	if (rs.status < 100 || rs.status > 599) {
		free(rs.body);
		return reply_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                   "internal error: no status", NULL);
	}
	return reply_h(conn, (unsigned int)rs.status, JSON_TYPE, rs.body,
	               rs.body != NULL ? strlen(rs.body) : 0,
	               MHD_RESPMEM_MUST_FREE, &h);
}

/* MHD access handler: called with the headers complete (the first call
 * for a request), then per chunk of body, then once with no data. Open
 * paths are answered at the first call, their body never read; /v1 paths
 * are authenticated at the first call and answered at the last. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
	struct admin_daemon *d = cls;
	struct admin_req *r = *req_cls;
	size_t n = *upload_data_size;

	(void)version;
	if (r == NULL) {
		if (strncmp(url, "/v1/", 4) != 0)
			return on_open_path(d->a, conn, url, method);
		return v1_begin(d, conn, method, req_cls);
	}
	if (n > 0) {
		*upload_data_size = 0;
		return v1_body(r, conn, upload_data, n);
	}
	if (r->answered)
		return MHD_YES;
	r->answered = 1;
	return v1_dispatch(d->a, r, conn, url, method);
}

/* MHD's own messages (connection limit reached, a client's bad request):
 * at a client's pace, so debug only. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	if (log_get_level() < LOG_LVL_DEBUG)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("admin: %s", buf);
}

void admin_stop(struct admin *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->n; i++) {
		/* Joins the thread and closes the listening socket. */
		MHD_stop_daemon(a->ds[i].d);
		if (a->ds[i].unix_path != NULL) {
			unlink(a->ds[i].unix_path);
			free(a->ds[i].unix_path);
		}
	}
	free(a);
}

int admin_start(char *const *addrs, size_t n, const struct admin_ops *ops,
                struct admin **out, char *err, size_t errlen)
{
	struct admin *a;
	sigset_t all, old;

	*out = NULL;
	if (n == 0)
		return 0;
	if (n > CONFIG_MAX_LISTEN) {
		snprintf(err, errlen, "too many admin-listen addresses");
		return -1;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	a->ops = ops;
	/* The daemons' threads inherit this mask: signals stay the main
	 * loop's. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (size_t i = 0; i < n; i++) {
		struct admin_daemon *d = &a->ds[i];
		/* The SPOP listeners' opener: same syntax, same live-socket
		 * check for unix paths. */
		int fd = listen_open(addrs[i], err, errlen);

		if (fd == -1)
			break;
		d->a = a;
		d->is_unix = strncmp(addrs[i], "unix:", 5) == 0;
		if (d->is_unix && (d->unix_path = strdup(addrs[i] + 5)) == NULL) {
			close(fd);
			snprintf(err, errlen, "out of memory");
			break;
		}
		d->d = MHD_start_daemon(
			MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
			on_request, d,
			MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
			MHD_OPTION_CONNECTION_LIMIT, (unsigned int)ADMIN_MAX_CONNECTIONS,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)ADMIN_TIMEOUT_SECONDS,
			MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)ADMIN_MEMORY_LIMIT,
			MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
			MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
			MHD_OPTION_UNESCAPE_CALLBACK, keep_url, NULL,
			MHD_OPTION_END);
		if (d->d == NULL) {
			close(fd);
			if (d->unix_path != NULL) {
				unlink(d->unix_path);
				free(d->unix_path);
				d->unix_path = NULL;
			}
			snprintf(err, errlen, "%s: cannot start the HTTP server", addrs[i]);
			break;
		}
		a->n++;
		log_info("admin: listening on %s", addrs[i]);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (a->n < n) {
		admin_stop(a);
		return -1;
	}
	*out = a;
	return 0;
}
