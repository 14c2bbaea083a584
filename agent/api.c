/*
 * api.c - the tenant API's requests (see api.h): routing, conditional
 * requests, the write path and /v1/verify.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "api.h"
#include "apiobj.h"
#include "handler.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "spop.h"
#include "store.h"
#include "verdict.h"

/* Certificates in one CA object and CRLs beside them: the file's limits. */
#define API_MAX_CERTS CA_MAX_CERTS
#define API_MAX_CRLS 64
/* Hosts in one PUT /v1/cas/NAME/hostnames. */
#define API_MAX_HOSTNAMES 10000
/* The SPOP answer /v1/verify decodes: any frame the agent can send. */
#define API_VERIFY_BUF (1024 * 1024)

struct api {
	const struct api_host_ops *ops;
	void *ctx;
	/* The API's objects of the generation the last write installed,
	 * while it is live: the next write starts from them instead of
	 * reading 10,000 hosts out of the generation again. Its `from`
	 * pointers are that generation's objects, so it is used only while
	 * that generation is the live one (same pointer and number). */
	struct api_state cache;
	const struct config *cache_cfg;
	uint64_t cache_gen;
	int cached;
};

static void api_cache_drop(struct api *a)
{
	if (a->cached)
		api_state_free(&a->cache);
	a->cached = 0;
	a->cache_cfg = NULL;
}

struct api *api_new(const struct api_host_ops *ops, void *ctx)
{
	struct api *a = calloc(1, sizeof(*a));

	if (a != NULL) {
		a->ops = ops;
		a->ctx = ctx;
	}
	return a;
}

void api_free(struct api *a)
{
	if (a != NULL)
		api_cache_drop(a);
	free(a);
}

/* Milliseconds of a monotonic clock, for the audit line's timings. */
static double api_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- responses ---------------------------------------------------------- */

static void api_set_error(struct api_response *rs, int status,
                          const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void api_set_error(struct api_response *rs, int status,
                          const char *field, const char *fmt, ...)
{
	char msg[APIOBJ_ERR_LEN + 128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	free(rs->body);
	rs->body = api_error_json(status, field, msg);
	rs->status = status;
	rs->etag[0] = '\0';
}

/* Answer `doc` (reference taken over) with `status`, and its ETag when
 * it is one object. */
static void api_set_json(struct api_response *rs, int status, json_t *doc,
                         int with_etag)
{
	if (doc == NULL) {
		api_set_error(rs, 500, NULL, "out of memory");
		return;
	}
	free(rs->body);
	rs->body = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (with_etag)
		apiobj_etag(doc, rs->etag);
	json_decref(doc);
	if (rs->body == NULL) {
		api_set_error(rs, 500, NULL, "out of memory");
		return;
	}
	rs->status = status;
}

/* ---- requests ----------------------------------------------------------- */

enum api_route {
	ROUTE_NONE = 0,
	ROUTE_CAS,          /* /v1/cas */
	ROUTE_CA,           /* /v1/cas/NAME */
	ROUTE_CA_HOSTNAMES, /* /v1/cas/NAME/hostnames */
	ROUTE_HOSTS,        /* /v1/hosts */
	ROUTE_HOST,         /* /v1/hosts/PATTERN */
	ROUTE_VERIFY,       /* /v1/verify */
};

static const char *const api_allow[] = {
	[ROUTE_NONE] = NULL,
	[ROUTE_CAS] = "GET, HEAD, POST",
	[ROUTE_CA] = "GET, HEAD, PUT, DELETE",
	[ROUTE_CA_HOSTNAMES] = "GET, HEAD, PUT",
	[ROUTE_HOSTS] = "GET, HEAD",
	[ROUTE_HOST] = "GET, HEAD, PUT, PATCH, DELETE",
	[ROUTE_VERIFY] = "POST",
};

/* Percent-decode one path segment into out (outlen bytes). -1 for a bad
 * escape, an encoded NUL or '/', or a segment too long. */
static int api_unescape(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = s[i + 1];
			lo = s[i + 2];
#define API_HEX(x) ((x) >= '0' && (x) <= '9' ? (x) - '0' : \
                    (x) >= 'a' && (x) <= 'f' ? (x) - 'a' + 10 : \
                    (x) >= 'A' && (x) <= 'F' ? (x) - 'A' + 10 : -1)
			if (API_HEX(hi) < 0 || API_HEX(lo) < 0)
				return -1;
			c = API_HEX(hi) * 16 + API_HEX(lo);
#undef API_HEX
			if (c == 0 || c == '/')
				return -1;
			i += 2;
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return o == 0 ? -1 : 0;
}

/* Route `path`; the decoded object name into arg. */
static enum api_route api_route(const char *path, char *arg, size_t arglen,
                                int *bad)
{
	const char *p, *slash;

	*bad = 0;
	arg[0] = '\0';
	if (strcmp(path, "/v1/cas") == 0)
		return ROUTE_CAS;
	if (strcmp(path, "/v1/hosts") == 0)
		return ROUTE_HOSTS;
	if (strcmp(path, "/v1/verify") == 0)
		return ROUTE_VERIFY;
	if (strncmp(path, "/v1/cas/", 8) == 0) {
		p = path + 8;
		slash = strchr(p, '/');
		if (slash == NULL) {
			*bad = api_unescape(p, strlen(p), arg, arglen) != 0;
			return ROUTE_CA;
		}
		if (strcmp(slash, "/hostnames") != 0)
			return ROUTE_NONE;
		*bad = api_unescape(p, (size_t)(slash - p), arg, arglen) != 0;
		return ROUTE_CA_HOSTNAMES;
	}
	if (strncmp(path, "/v1/hosts/", 10) == 0) {
		p = path + 10;
		if (strchr(p, '/') != NULL)
			return ROUTE_NONE;
		*bad = api_unescape(p, strlen(p), arg, arglen) != 0;
		return ROUTE_HOST;
	}
	return ROUTE_NONE;
}

/* Whether the Content-Type is one of the accepted (parameters ignored). */
static int api_type_ok(const char *ct, int patch)
{
	size_t n;

	if (ct == NULL)
		return 0;
	n = strcspn(ct, "; \t");
	if (n == strlen("application/json") && strncasecmp(ct, "application/json", n) == 0)
		return 1;
	return patch && n == strlen("application/merge-patch+json") &&
	       strncasecmp(ct, "application/merge-patch+json", n) == 0;
}

/* The body as a JSON value, or an error response. */
static json_t *api_body(const struct api_request *rq, struct api_response *rs,
                        int patch)
{
	json_error_t je;
	json_t *doc;

	if (!api_type_ok(rq->content_type, patch)) {
		api_set_error(rs, 415, NULL, "Content-Type must be application/json%s",
		              patch ? " or application/merge-patch+json" : "");
		return NULL;
	}
	doc = json_loadb(rq->body != NULL ? rq->body : "", rq->body_len,
	                 JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL) {
		api_set_error(rs, 400, NULL, "the body is not JSON: %s (line %d, "
		              "column %d)", je.text, je.line, je.column);
		return NULL;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		api_set_error(rs, 400, NULL, "the body must be a JSON object");
		return NULL;
	}
	return doc;
}

/* If-Match / If-None-Match against the object's current tag (NULL: the
 * object does not exist). 0 to go on, -1 with 412 set. */
static int api_preconditions(const struct api_request *rq, const char *etag,
                             struct api_response *rs)
{
	if (rq->if_match != NULL) {
		const char *p = rq->if_match;
		int hit = 0;

		while (*p == ' ' || *p == '\t')
			p++;
		if (strcmp(p, "*") == 0) {
			hit = etag != NULL;
		} else if (etag != NULL) {
			/* A list of tags: one equal (strong comparison) is enough. */
			const char *q = p;
			size_t n = strlen(etag);

			while ((q = strstr(q, etag)) != NULL) {
				if ((q == p || q[-1] == ' ' || q[-1] == ',') &&
				    (q[n] == '\0' || q[n] == ',' || q[n] == ' ')) {
					hit = 1;
					break;
				}
				q += n;
			}
		}
		if (!hit) {
			api_set_error(rs, 412, NULL, etag == NULL ? "If-Match: the object "
			              "does not exist" : "If-Match: the object changed "
			              "(its ETag is now %s)", etag != NULL ? etag : "");
			return -1;
		}
	}
	if (rq->if_none_match != NULL && etag != NULL) {
		const char *p = rq->if_none_match;

		while (*p == ' ')
			p++;
		if (strcmp(p, "*") == 0 || strstr(p, etag) != NULL) {
			api_set_error(rs, 412, NULL, "If-None-Match: the object exists");
			return -1;
		}
	}
	return 0;
}

/* ---- reads -------------------------------------------------------------- */

static void api_get(struct api *a, enum api_route route, const char *arg,
                    struct api_response *rs)
{
	void *ref = NULL;
	uint64_t gen = 0;
	const struct config *cfg = a->ops->acquire(a->ctx, &ref, &gen);
	char why[256];
	ssize_t i;

	rs->generation = gen;
	switch (route) {
	case ROUTE_CAS:
		api_set_json(rs, 200, apiobj_ca_list(cfg), 0);
		break;
	case ROUTE_HOSTS:
		api_set_json(rs, 200, apiobj_host_list(cfg), 0);
		break;
	case ROUTE_CA:
	case ROUTE_CA_HOSTNAMES:
		i = apiobj_find_ca(cfg, arg);
		if (i < 0)
			api_set_error(rs, 404, NULL, "no CA \"%s\"", arg);
		else if (route == ROUTE_CA)
			api_set_json(rs, 200, apiobj_ca_json(cfg, (size_t)i), 1);
		else
			api_set_json(rs, 200, json_pack("{s:o}", "hostnames",
			                                 apiobj_ca_hosts(cfg, (size_t)i)), 0);
		break;
	case ROUTE_HOST:
		i = apiobj_find_host(cfg, arg, why, sizeof(why));
		if (i == -2)
			api_set_error(rs, 400, "pattern", "%s", why);
		else if (i < 0)
			api_set_error(rs, 404, NULL, "no host \"%s\"", arg);
		else
			api_set_json(rs, 200, apiobj_host_json(cfg, (size_t)i), 1);
		break;
	default:
		api_set_error(rs, 404, NULL, "not found");
		break;
	}
	a->ops->release(a->ctx, ref);
}

/* ---- /v1/verify --------------------------------------------------------- */

/* Concatenated DER of the PEM certificates in `pem`; -1 with msg. */
static int api_pem_der(const char *pem, uint8_t **der, size_t *len, size_t max,
                       char *msg, size_t msglen)
{
	char *norm = NULL;
	size_t nlen = 0, count = 0;
	BIO *b = NULL;
	X509 *x;
	int rc = -1;

	*der = NULL;
	*len = 0;
	if (api_pem_normalize(pem, strlen(pem), 0, max, &norm, &nlen, &count, msg,
	                      msglen) != 0)
		return -1;
	b = BIO_new_mem_buf(norm, (int)nlen);
	while (b != NULL && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		int n = i2d_X509(x, NULL);
		uint8_t *grown, *p;

		if (n <= 0 || (grown = realloc(*der, *len + (size_t)n)) == NULL) {
			X509_free(x);
			snprintf(msg, msglen, "out of memory");
			goto out;
		}
		*der = grown;
		p = *der + *len;
		i2d_X509(x, &p);
		*len += (size_t)n;
		X509_free(x);
	}
	rc = 0;
out:
	ERR_clear_error();
	BIO_free(b);
	free(norm);
	if (rc != 0) {
		free(*der);
		*der = NULL;
	}
	return rc;
}

/* The set-var actions of an encoded answer as a JSON object. */
static json_t *api_vars_json(const uint8_t *p, const uint8_t *end)
{
	json_t *vars = json_object();

	while (vars != NULL && p < end) {
		uint8_t type = *p++, nargs, scope;
		const uint8_t *name;
		uint64_t name_len;
		struct spop_data d;
		json_t *v;
		char key[256];

		if (end - p < 2)
			break;
		nargs = *p++;
		scope = *p++;
		(void)scope;
		if (type != SPOP_ACT_SET_VAR || nargs != 3 ||
		    spop_bytes_decode(&p, end, &name, &name_len) != SPOP_RC_OK ||
		    spop_data_decode(&p, end, &d) != SPOP_RC_OK || name_len >= sizeof(key))
			break;
		memcpy(key, name, name_len);
		key[name_len] = '\0';
		switch (d.type) {
		case SPOP_T_BOOL:
			v = json_boolean(d.u.boolean);
			break;
		case SPOP_T_INT32:
		case SPOP_T_INT64:
			v = json_integer((json_int_t)d.u.sint);
			break;
		case SPOP_T_UINT32:
		case SPOP_T_UINT64:
			v = json_integer((json_int_t)d.u.uint);
			break;
		case SPOP_T_STRING:
		case SPOP_T_BINARY:
			v = json_stringn((const char *)d.u.buf.ptr, d.u.buf.len);
			break;
		default:
			v = json_null();
			break;
		}
		json_object_set_new(vars, key, v);
	}
	return vars;
}

static void api_verify(struct api *a, const struct api_request *rq,
                       struct api_response *rs)
{
	static const char *const keys[] = { "host", "sni", "certificate", "chain" };
	json_t *body = api_body(rq, rs, 0), *v;
	const char *host, *sni, *cert_pem, *chain_pem, *key, *field = NULL;
	uint8_t *cert = NULL, *chain = NULL, *buf = NULL;
	size_t cert_len = 0, chain_len = 0;
	struct mtls_request req;
	struct verdict *vd = NULL;
	char msg[APIOBJ_ERR_LEN];
	struct spop_wr w;
	void *ref = NULL;
	uint64_t gen = 0;
	const struct config *cfg;

	if (body == NULL)
		return;
	json_object_foreach(body, key, v) {
		size_t k;

		for (k = 0; k < 4 && strcmp(keys[k], key) != 0; k++)
			;
		if (k == 4 || !json_is_string(v)) {
			api_set_error(rs, 400, key, k == 4 ? "unknown field \"%s\"" :
			              "%s must be a string", key);
			goto out;
		}
	}
	host = json_string_value(json_object_get(body, "host"));
	sni = json_string_value(json_object_get(body, "sni"));
	cert_pem = json_string_value(json_object_get(body, "certificate"));
	chain_pem = json_string_value(json_object_get(body, "chain"));
	if (host == NULL) {
		api_set_error(rs, 400, "host", "host is required");
		goto out;
	}
	if (cert_pem != NULL && api_pem_der(cert_pem, &cert, &cert_len, 1, msg,
	                                    sizeof(msg)) != 0) {
		field = "certificate";
		goto bad;
	}
	if (chain_pem != NULL && api_pem_der(chain_pem, &chain, &chain_len,
	                                     VERIFY_MAX_CHAIN, msg, sizeof(msg)) != 0) {
		field = "chain";
		goto bad;
	}
	memset(&req, 0, sizeof(req));
	req.kind = MSG_HTTP;
	req.host = host;
	req.host_len = strlen(host);
	req.sni = sni != NULL ? sni : host;
	req.sni_len = strlen(req.sni);
	req.cert = cert;
	req.cert_len = cert_len;
	req.chain = chain;
	req.chain_len = chain_len;
	vd = malloc(sizeof(*vd));
	buf = malloc(API_VERIFY_BUF);
	if (vd == NULL || buf == NULL) {
		api_set_error(rs, 500, NULL, "out of memory");
		goto out;
	}
	cfg = a->ops->acquire(a->ctx, &ref, &gen);
	verdict_evaluate(cfg, &req, vd);
	if (cfg != NULL) {
		/* The memo_ttl the SPOP answer would carry, as the handler
		 * computes it. */
		struct timespec ts;
		int64_t now_ms;
		unsigned int ttl = cfg->agent.memo_ttl_ms;

		clock_gettime(CLOCK_REALTIME, &ts);
		now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		vd->memo_ttl_ms = handler_memo_ttl(vd, now_ms,
		                                   handler_cache_until(&vd->trust, now_ms, ttl),
		                                   ttl);
	}
	spop_wr_init(&w, buf, API_VERIFY_BUF);
	verdict_encode(vd, &w, 1);
	a->ops->release(a->ctx, ref);
	rs->generation = gen;
	if (w.err) {
		api_set_error(rs, 500, NULL, "the answer does not fit");
		goto out;
	}
	api_set_json(rs, 200, json_pack("{s:o}", "variables",
	                                 api_vars_json(buf, w.p)), 0);
	goto out;
bad:
	api_set_error(rs, 400, field, "%s: %s", field, msg);
out:
	free(buf);
	free(vd);
	free(cert);
	free(chain);
	json_decref(body);
}

/* ---- writes ------------------------------------------------------------- */

/* One write, carried to the configuration thread. */
struct api_write {
	struct api *a;
	const struct api_request *rq;
	struct api_response *rs;
	enum api_route route;
	const char *arg;
	json_t *body;                 /* NULL for DELETE */
	const struct config *cfg;     /* live when the write began (referenced) */
	uint64_t gen;
	struct api_state st;
	char created[2][STORE_PEM_NAME_MAX]; /* PEM files this write wrote */
	int n_created;
	const char *kind;             /* "ca" or "host", for the audit */
	int hosts_only;               /* no CA changed */
	int derive;                   /* from the live generation, not a load
	                                 (config_derive) */
	void *ref;                    /* the reference on cfg, for the caller */
	const struct config *installed; /* what the write installed (live
	                                   until the write returns) */
	uint64_t installed_gen;
	int status;                   /* of success: 200, 201, 204 */
	char object[300];             /* which object the answer shows */
	/* The shared store (fleet.c): */
	int publish;                  /* validate, then build txn (no commit) */
	struct api_txn txn;           /* what to send, when txn_ready */
	int txn_ready;
	int stage_only;               /* api_store_apply: change st, stop there */
	int store_apply;              /* api_store_apply: commit as a snapshot */
	int64_t revision;             /* ... of this store revision */
	double t_queued;              /* when the configuration thread took it
	                                 (the first time) */
	double disk_ms;               /* writing and fsyncing the state */
	int err_is_host;              /* a failed load: the object at fault */
	char err_name[300];           /* "" when none of the state's */
};

static int api_commit(struct api_write *w);
static void api_answer_object(struct api_write *w);

/* The end of a write that changed w->st. */
static void api_finish(struct api_write *w)
{
	if (w->stage_only)
		return;
	if (api_commit(w) == 0 && !w->publish)
		api_answer_object(w);
}

/* The 409 of an object defined in a file. */
static void api_read_only(struct api_write *w, const struct config_origin *o,
                          const char *what)
{
	char where[PATH_MAX + 32];

	apiobj_origin(w->cfg, o, where, sizeof(where));
	api_set_error(w->rs, 409, NULL, "%s is defined in %s: read-only through "
	              "the API", what, where);
}

/* Map a loader error on the state text to its JSON field. */
static void api_load_error(struct api_write *w, const char *err,
                           const struct api_line *lines, size_t n_lines)
{
	const char *path = w->cfg != NULL ? w->cfg->api_path : NULL;
	char msg[CONFIG_ERR_LEN + PATH_MAX + 64], pemdir[PATH_MAX + 8];
	const char *field = NULL, *rest = err;
	size_t plen = path != NULL ? strlen(path) : 0;
	char *at;

	if (path != NULL && strncmp(err, path, plen) == 0 && err[plen] == ':') {
		long line = strtol(err + plen + 1, NULL, 10);

		rest = strchr(err + plen + 1, ':');
		rest = rest != NULL ? rest + 1 : err;
		while (*rest == ' ')
			rest++;
		if (line >= 1 && (size_t)line <= n_lines) {
			const struct api_line *l = &lines[line - 1];

			field = l->field;
			/* Which object: api_store_apply() refuses just that one. */
			w->err_is_host = l->is_host;
			if (l->is_host && l->index < w->st.n_hosts)
				snprintf(w->err_name, sizeof(w->err_name), "%s",
				         w->st.hosts[l->index].pattern);
			else if (!l->is_host && l->index < w->st.n_cas)
				snprintf(w->err_name, sizeof(w->err_name), "%s",
				         w->st.cas[l->index].name);
		}
	} else {
		/* Not our text: a configuration file is broken on disk. */
		api_set_error(w->rs, 409, NULL, "the configuration files do not load "
		              "(nothing was changed): %s", err);
		return;
	}
	snprintf(msg, sizeof(msg), "%s", rest);
	/* "STATE/pem/<hex>.pem: ..." says more about us than about the input. */
	snprintf(pemdir, sizeof(pemdir), "%s/%s/", w->cfg->state_dir, STORE_PEM_DIR);
	while ((at = strstr(msg, pemdir)) != NULL) {
		const char *end = at + strlen(pemdir) + 68;
		const char *name = field != NULL ? field : "the PEM text";

		if (strlen(at) < strlen(pemdir) + 68)
			break;
		memmove(at + strlen(name), end, strlen(end) + 1);
		memcpy(at, name, strlen(name));
	}
	api_set_error(w->rs, 400, field, "%s", msg);
}

/* PEM text into the store: "pem/<hex>.pem" into rel. */
static int api_put_pem(struct api_write *w, const char *text, size_t len,
                       char rel[STORE_PEM_NAME_MAX])
{
	char err[PATH_MAX + 128];
	int created = 0;

	double t0 = api_now_ms();
	int rc = store_prepare(w->cfg->state_dir, err, sizeof(err)) != 0 ||
	         store_put_pem(w->cfg->state_dir, text, len, rel, &created, err,
	                       sizeof(err)) != 0;

	w->disk_ms += api_now_ms() - t0;
	if (rc) {
		log_error("api: %s", err);
		api_set_error(w->rs, 500, NULL, "cannot write the state directory: %s",
		              err);
		return -1;
	}
	/* A store read stages many CAs: what it leaves unused, api_gc takes. */
	if (created && !w->store_apply)
		memcpy(w->created[w->n_created++], rel, STORE_PEM_NAME_MAX);
	return 0;
}

/* The files the state names, sorted, for store_gc(): one binary search
 * per PEM file instead of a pass over 1,000 CAs. */
struct api_names {
	const char **v;
	size_t n;
};

static int api_cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int api_gc_keep(void *ctx, const char *rel)
{
	const struct api_names *names = ctx;

	return bsearch(&rel, names->v, names->n, sizeof(*names->v), api_cmp_str) != NULL;
}

/* Remove the PEM files the state no longer names. */
static void api_gc(struct api_write *w)
{
	struct api_names names = { 0 };
	size_t cap = 0;

	for (size_t i = 0; i < w->st.n_cas; i++)
		cap += 1 + w->st.cas[i].n_crls;
	names.v = calloc(cap + 1, sizeof(*names.v));
	if (names.v == NULL)
		return;     /* garbage stays until a later write */
	for (size_t i = 0; i < w->st.n_cas; i++) {
		names.v[names.n++] = w->st.cas[i].file;
		for (size_t k = 0; k < w->st.cas[i].n_crls; k++)
			names.v[names.n++] = w->st.cas[i].crls[k];
	}
	qsort(names.v, names.n, sizeof(*names.v), api_cmp_str);
	(void)store_gc(w->cfg->state_dir, api_gc_keep, &names);
	free(names.v);
}

/* The state as the loader's specs, with the lines they are on. */
struct api_specs {
	struct config_ca_spec *cas;
	struct config_host_spec *hosts;
	int *ca_lines;      /* the CA specs' crl_lines and rev_lines */
};

static void api_specs_free(struct api_specs *sp)
{
	free(sp->cas);
	free(sp->hosts);
	free(sp->ca_lines);
}

static int api_specs(const struct api_state *st, const struct api_line *lines,
                     size_t n_lines, struct api_specs *out)
{
	size_t n_ints = 0, pos = 0, cur = SIZE_MAX, n_crl = 0, n_rev = 0;

	for (size_t i = 0; i < st->n_cas; i++)
		n_ints += st->cas[i].n_crls + st->cas[i].n_rev;
	out->cas = calloc(st->n_cas + 1, sizeof(*out->cas));
	out->hosts = calloc(st->n_hosts + 1, sizeof(*out->hosts));
	out->ca_lines = calloc(n_ints + 1, sizeof(*out->ca_lines));
	if (out->cas == NULL || out->hosts == NULL || out->ca_lines == NULL) {
		api_specs_free(out);
		return -1;
	}
	for (size_t i = 0; i < st->n_cas; i++) {
		const struct api_ca *c = &st->cas[i];

		out->cas[i] = (struct config_ca_spec){
			.name = c->name, .file = c->file,
			.crls = (const char *const *)c->crls, .n_crls = c->n_crls,
			.rev_keys = (const char *const *)c->rev_keys,
			.rev_vals = (const char *const *)c->rev_vals, .n_rev = c->n_rev,
			.crl_lines = out->ca_lines + pos,
			.rev_lines = out->ca_lines + pos + c->n_crls,
			.same = c->from,
		};
		pos += c->n_crls + c->n_rev;
	}
	for (size_t i = 0; i < st->n_hosts; i++) {
		const struct api_host *h = &st->hosts[i];

		out->hosts[i] = (struct config_host_spec){
			.pattern = h->pattern, .cas = (const char *const *)h->cas,
			.n_cas = h->n_cas, .mode = h->mode, .purpose = h->purpose,
			.verify_depth = h->verify_depth, .crl_check = h->crl_check,
			.identities = (const char *const *)h->identities,
			.n_identities = h->n_identities,
			.pins = (const uint8_t (*)[32])h->pins, .n_pins = h->n_pins,
			.same = h->from,
		};
	}
	for (size_t k = 0; k < n_lines; k++) {
		const char *f = lines[k].field;
		int line = (int)k + 1;

		if (f == NULL)
			continue;
		if (!lines[k].is_host) {
			struct config_ca_spec *c = &out->cas[lines[k].index];

			/* A CA's lines are together, in the order rendered. */
			if (lines[k].index != cur) {
				cur = lines[k].index;
				n_crl = n_rev = 0;
			}
			if (strcmp(f, "name") == 0)
				c->line = line;
			else if (strcmp(f, "certificates") == 0)
				c->file_line = line;
			else if (strcmp(f, "crls") == 0 && n_crl < c->n_crls)
				((int *)c->crl_lines)[n_crl++] = line;
			else if (n_rev < c->n_rev)
				((int *)c->rev_lines)[n_rev++] = line;
			continue;
		}
		{
			struct config_host_spec *x = &out->hosts[lines[k].index];

			if (strcmp(f, "pattern") == 0)
				x->line = line;
			else if (strcmp(f, "ca") == 0 && x->ca_line == 0)
				x->ca_line = line;
			else if (strcmp(f, "crl_check") == 0)
				x->crl_line = line;
		}
	}
	return 0;
}

/* Whether the files on disk refuse the live state too (the refusal is
 * theirs, not the request's): load them with the state as it is. On 1,
 * err holds their message. */
static int api_files_broken(struct api_write *w, char *err, size_t errlen)
{
	struct api_state st;
	struct api_line *lines = NULL;
	struct config *cfg = NULL;
	size_t len = 0, n_lines = 0;
	char *text;
	int broken = 0;

	if (api_state_from_config(w->cfg, &st) != 0)
		return 0;
	text = api_state_render(&st, w->gen, &len, &lines, &n_lines);
	if (text != NULL && w->a->ops->rebuild(w->a->ctx, text, len, &cfg, err,
	                                       errlen) != 0)
		broken = 1;
	config_free(cfg);
	free(text);
	free(lines);
	api_state_free(&st);
	return broken;
}

/* "# etcd revision N" after the rendered text: the snapshot says which
 * store revision it is (api_snapshot_revision). Frees text on OOM. */
static char *api_revision_line(char *text, size_t *len, int64_t revision)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "# etcd revision %lld\n",
	                 (long long)revision);
	char *t = realloc(text, *len + (size_t)n + 1);

	if (t == NULL) {
		free(text);
		return NULL;
	}
	memcpy(t + *len, line, (size_t)n + 1);
	*len += (size_t)n;
	return t;
}

/* See api.h. */
int64_t api_snapshot_revision(const char *text, size_t len)
{
	static const char tag[] = "# etcd revision ";
	int64_t rev = 0;

	for (size_t i = 0; i + sizeof(tag) - 1 < len; i++) {
		if ((i == 0 || text[i - 1] == '\n') &&
		    memcmp(text + i, tag, sizeof(tag) - 1) == 0) {
			int64_t v = 0;
			size_t k = i + sizeof(tag) - 1;

			while (k < len && text[k] >= '0' && text[k] <= '9' &&
			       v < INT64_MAX / 10)
				v = v * 10 + (text[k++] - '0');
			rev = v;
		}
	}
	return rev;
}

static void api_txn_free(struct api_txn *t)
{
	for (size_t i = 0; i < t->n_ops; i++) {
		free(t->ops[i].name);
		free(t->ops[i].value);
	}
	free(t->ops);
	for (size_t i = 0; i < t->n_need; i++)
		free(t->need_cas[i]);
	free(t->need_cas);
	memset(t, 0, sizeof(*t));
}

/* The stored form of an object: its answer without what is derived. */
static char *api_store_value(json_t *obj)
{
	static const char *const derived[] = {
		"hosts", "details", "source", "crl_files", "pattern",
	};
	char *v;

	if (obj == NULL)
		return NULL;
	for (size_t k = 0; k < sizeof(derived) / sizeof(derived[0]); k++)
		json_object_del(obj, derived[k]);
	v = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(obj);
	return v;
}

static int api_txn_add(struct api_write *w, int is_host, const char *name,
                       char *value)
{
	struct api_txn *t = &w->txn;
	struct api_txn_op *ops = realloc(t->ops, (t->n_ops + 1) * sizeof(*ops));

	if (ops == NULL) {
		free(value);
		return -1;
	}
	t->ops = ops;
	ops[t->n_ops] = (struct api_txn_op){
		.is_host = is_host, .name = strdup(name), .value = value,
		.mod = w->a->ops->store_mod(w->a->ctx, is_host, name, NULL),
	};
	if (ops[t->n_ops].name == NULL) {
		free(value);
		return -1;
	}
	t->n_ops++;
	return 0;
}

static int api_txn_need(struct api_txn *t, const char *ca)
{
	char **v;

	for (size_t i = 0; i < t->n_need; i++)
		if (strcmp(t->need_cas[i], ca) == 0)
			return 0;
	v = realloc(t->need_cas, (t->n_need + 1) * sizeof(*v));
	if (v == NULL)
		return -1;
	t->need_cas = v;
	if ((v[t->n_need] = strdup(ca)) == NULL)
		return -1;
	t->n_need++;
	return 0;
}

static int api_cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(const void *const *)a;
	uintptr_t y = (uintptr_t)*(const void *const *)b;

	return x < y ? -1 : x > y;
}

/* What a validated write changes, as the store transaction: the CA it
 * wrote or deleted, every host that is new or changed (their values from
 * `next`, normalized as a GET shows them), every API host it removed. */
static int api_build_txn(struct api_write *w, const struct config *next)
{
	const struct host_policy **kept = NULL;
	char why[256];
	size_t n_kept = 0;
	int64_t applied = 0;
	int rc = -1;

	(void)w->a->ops->store_mod(w->a->ctx, 0, "", &applied);
	if (w->kind != NULL && w->kind[0] == 'c' && w->object[0] != '\0') {
		ssize_t i = apiobj_find_ca(next, w->object);
		char *v = NULL;

		if (i >= 0 && (v = api_store_value(apiobj_ca_json(next, (size_t)i))) == NULL)
			goto oom;
		if (api_txn_add(w, 0, w->object, v) != 0)
			goto oom;
		if (i < 0)
			w->txn.hosts_since = applied;
	}
	kept = calloc(w->st.n_hosts + 1, sizeof(*kept));
	if (kept == NULL)
		goto oom;
	for (size_t k = 0; k < w->st.n_hosts; k++) {
		const struct api_host *h = &w->st.hosts[k];
		ssize_t i;
		char *v;

		if (h->from != NULL) {
			kept[n_kept++] = h->from;
			continue;
		}
		i = apiobj_find_host(next, h->pattern, why, sizeof(why));
		if (i < 0 || (v = api_store_value(apiobj_host_json(next, (size_t)i))) == NULL ||
		    api_txn_add(w, 1, h->pattern, v) != 0)
			goto oom;
		for (size_t c = 0; c < h->n_cas; c++) {
			ssize_t ci = apiobj_find_ca(next, h->cas[c]);

			if (ci >= 0 && apiobj_ca_is_api(next, (size_t)ci) &&
			    strcmp(h->cas[c], w->object) != 0 &&
			    api_txn_need(&w->txn, h->cas[c]) != 0)
				goto oom;
		}
	}
	/* Removed hosts: API hosts of the live generation no entry came from. */
	qsort(kept, n_kept, sizeof(*kept), api_cmp_ptr);
	for (size_t i = 0; i < w->cfg->n_hosts; i++) {
		const struct host_policy *p = w->cfg->hosts[i];

		if (!apiobj_host_is_api(w->cfg, i) ||
		    bsearch(&p, kept, n_kept, sizeof(*kept), api_cmp_ptr) != NULL)
			continue;
		if (api_state_find_host(&w->st, p->pattern) < 0 &&
		    api_txn_add(w, 1, p->pattern, NULL) != 0)
			goto oom;
	}
	w->txn_ready = 1;
	rc = 0;
	goto out;
oom:
	api_set_error(w->rs, 500, NULL, "out of memory");
	api_txn_free(&w->txn);
out:
	free(kept);
	return rc;
}

/* Render, load, commit, install. The response is set either way. A
 * write that changed only hosts derives the generation from the live one
 * (no file is read again); one that changed a CA loads the files. */
static int api_commit(struct api_write *w)
{
	struct api_line *lines = NULL;
	size_t len = 0, n_lines = 0;
	char err[CONFIG_ERR_LEN + PATH_MAX], *text;
	struct config *next = NULL;
	uint64_t gen = 0;
	double t0;
	int rc = -1, bad;

	text = api_state_render(&w->st, w->gen + 1, &len, &lines, &n_lines);
	if (text != NULL && w->store_apply)
		text = api_revision_line(text, &len, w->revision);
	if (text == NULL) {
		api_set_error(w->rs, 500, NULL, "out of memory");
		free(lines);
		return -1;
	}
	err[0] = '\0';
	rc = CONFIG_DERIVE_LOAD;
	if (w->derive) {
		struct api_specs sp;

		if (api_specs(&w->st, lines, n_lines, &sp) != 0) {
			api_set_error(w->rs, 500, NULL, "out of memory");
			goto out;
		}
		/* A host write keeps every CA as it is. */
		rc = config_derive(w->cfg, w->hosts_only ? NULL : sp.cas, w->st.n_cas,
		                   sp.hosts, w->st.n_hosts, text, len, &next, err,
		                   sizeof(err));
		api_specs_free(&sp);
		if (rc == CONFIG_DERIVE_LOAD)
			log_debug("api: %s: loading the files instead", err);
	}
	if (rc == CONFIG_DERIVE_LOAD) {
		w->derive = 0;
		err[0] = '\0';
		rc = w->a->ops->rebuild(w->a->ctx, text, len, &next, err, sizeof(err));
	}
	if (rc != 0) {
		rc = -1;
		char ferr[CONFIG_ERR_LEN + PATH_MAX];

		if (!w->derive && !w->store_apply &&
		    api_files_broken(w, ferr, sizeof(ferr)))
			api_set_error(w->rs, 409, NULL, "the configuration files do not "
			              "load (nothing was changed): %s", ferr);
		else
			api_load_error(w, err, lines, n_lines);
		goto out;
	}
	rc = -1;
	if (w->publish) {
		/* The store commits it; every process then applies it. */
		rc = api_build_txn(w, next);
		config_free(next);
		goto out;
	}
	/* What a crash during an earlier write left behind. */
	t0 = api_now_ms();
	(void)store_clean_tmp(w->cfg->state_dir);
	bad = store_prepare(w->cfg->state_dir, err, sizeof(err)) != 0 ||
	      store_write_atomic(w->cfg->state_dir, CONFIG_API_FILE, text, len, err,
	                         sizeof(err)) != 0;
	w->disk_ms += api_now_ms() - t0;
	if (bad) {
		log_error("api: %s", err);
		api_set_error(w->rs, 500, NULL, "cannot write the state directory "
		              "(nothing was changed): %s", err);
		config_free(next);
		goto out;
	}
	/* On disk: from here the change is made, whatever happens next. */
	w->n_created = 0;
	if (w->a->ops->install(w->a->ctx, next, w->store_apply ? "store: applied" :
	                       "api: applied", &gen) != 0) {
		api_set_error(w->rs, 500, NULL, "written to the state directory but "
		              "not installed (out of memory): a reload will apply it");
		goto out;
	}
	w->rs->generation = gen;
	w->installed = next;
	w->installed_gen = gen;
	/* Only a CA write can leave a PEM file unused. */
	if (!w->hosts_only)
		api_gc(w);
	rc = 0;
out:
	free(text);
	free(lines);
	return rc;
}

/* The answer of a successful write: the object as the new generation has
 * it (normalized), with its tag. */
static void api_answer_object(struct api_write *w)
{
	void *ref = NULL;
	uint64_t gen = 0;
	const struct config *cfg = w->a->ops->acquire(w->a->ctx, &ref, &gen);
	char why[256];
	ssize_t i;

	if (w->status == 204) {
		free(w->rs->body);
		w->rs->body = NULL;
		w->rs->status = 204;
	} else if (w->route == ROUTE_CA_HOSTNAMES) {
		i = apiobj_find_ca(cfg, w->arg);
		api_set_json(w->rs, 200, i < 0 ? NULL : json_pack("{s:o}", "hostnames",
		             apiobj_ca_hosts(cfg, (size_t)i)), 0);
	} else if (w->route == ROUTE_HOST) {
		i = apiobj_find_host(cfg, w->object, why, sizeof(why));
		api_set_json(w->rs, w->status, i < 0 ? NULL :
		             apiobj_host_json(cfg, (size_t)i), 1);
	} else {
		i = apiobj_find_ca(cfg, w->object);
		api_set_json(w->rs, w->status, i < 0 ? NULL :
		             apiobj_ca_json(cfg, (size_t)i), 1);
	}
	/* A store write's generation: the one that applied it here. */
	if (w->rs->generation == 0)
		w->rs->generation = gen;
	w->a->ops->release(w->a->ctx, ref);
}

/* The current tag of an object of the live generation, or NULL. */
static const char *api_current_tag(json_t *obj, char tag[40])
{
	if (obj == NULL)
		return NULL;
	apiobj_etag(obj, tag);
	json_decref(obj);
	return tag;
}

/* POST /v1/cas, PUT /v1/cas/NAME */
static void api_write_ca(struct api_write *w)
{
	static const char *const keys[] = {
		"name", "certificates", "crls", "details", "hosts", "source",
		"crl_files",
	};
	const char *name = w->arg, *key;
	char tag[40], msg[APIOBJ_ERR_LEN], rel[STORE_PEM_NAME_MAX];
	char crl_rel[STORE_PEM_NAME_MAX];
	const json_t *certs, *crls, *nv;
	char *norm = NULL;
	size_t nlen = 0, count = 0;
	struct api_ca c = { 0 };
	ssize_t live, at;
	json_t *v;

	json_object_foreach(w->body, key, v) {
		size_t k;

		for (k = 0; k < sizeof(keys) / sizeof(keys[0]) && strcmp(keys[k], key) != 0; k++)
			;
		if (k == sizeof(keys) / sizeof(keys[0]) && !api_ca_rev_field(key)) {
			api_set_error(w->rs, 400, key, "unknown field \"%s\"", key);
			return;
		}
	}
	nv = json_object_get(w->body, "name");
	if (w->route == ROUTE_CAS) {
		if (!json_is_string(nv)) {
			api_set_error(w->rs, 400, "name", "name is required (a string)");
			return;
		}
		name = json_string_value(nv);
	} else if (nv != NULL && (!json_is_string(nv) ||
	                          strcmp(json_string_value(nv), name) != 0)) {
		api_set_error(w->rs, 400, "name", "name does not match the URL's \"%s\"",
		              name);
		return;
	}
	if (!config_valid_ca_name(name)) {
		api_set_error(w->rs, 400, "name", "bad CA name \"%.80s\" (letters, "
		              "digits, '.', '-', '_'; at most %d)", name, CONFIG_MAX_CA_NAME);
		return;
	}
	snprintf(w->object, sizeof(w->object), "%s", name);
	live = apiobj_find_ca(w->cfg, name);
	if (live >= 0 && !apiobj_ca_is_api(w->cfg, (size_t)live)) {
		api_read_only(w, &w->cfg->ca_origin[live], "this CA");
		return;
	}
	if (live >= 0 && w->route == ROUTE_CAS) {
		api_set_error(w->rs, 409, "name", "CA \"%s\" exists (PUT /v1/cas/%s "
		              "replaces it)", name, name);
		return;
	}
	if (api_preconditions(w->rq, live < 0 ? NULL :
	                      api_current_tag(apiobj_ca_json(w->cfg, (size_t)live), tag),
	                      w->rs) != 0)
		return;
	certs = json_object_get(w->body, "certificates");
	if (!json_is_string(certs)) {
		api_set_error(w->rs, 400, "certificates", "certificates is required (a "
		              "PEM bundle of CA certificates)");
		return;
	}
	if (api_pem_normalize(json_string_value(certs), json_string_length(certs), 0,
	                      API_MAX_CERTS, &norm, &nlen, &count, msg, sizeof(msg)) != 0) {
		api_set_error(w->rs, 400, "certificates", "certificates: %s", msg);
		return;
	}
	if (api_put_pem(w, norm, nlen, rel) != 0)
		goto out;
	free(norm);
	norm = NULL;
	crls = json_object_get(w->body, "crls");
	if (crls != NULL && !json_is_null(crls) &&
	    !(json_is_string(crls) && json_string_length(crls) == 0)) {
		if (!json_is_string(crls)) {
			api_set_error(w->rs, 400, "crls", "crls must be a PEM text");
			goto out;
		}
		if (api_pem_normalize(json_string_value(crls), json_string_length(crls), 1,
		                      API_MAX_CRLS, &norm, &nlen, &count, msg,
		                      sizeof(msg)) != 0) {
			api_set_error(w->rs, 400, "crls", "crls: %s", msg);
			goto out;
		}
		if (api_put_pem(w, norm, nlen, crl_rel) != 0)
			goto out;
	} else {
		crl_rel[0] = '\0';
	}
	c.name = strdup(name);
	c.file = strdup(rel);
	c.crls = calloc(1, sizeof(*c.crls));
	if (c.crls != NULL && crl_rel[0] != '\0' && (c.crls[0] = strdup(crl_rel)) != NULL)
		c.n_crls = 1;
	if (c.name == NULL || c.file == NULL || c.crls == NULL ||
	    (crl_rel[0] != '\0' && c.n_crls == 0)) {
		api_ca_free(&c);
		api_set_error(w->rs, 500, NULL, "out of memory");
		goto out;
	}
	{
		const char *field = NULL;

		if (api_ca_rev_from_json(w->body, &c, &field, msg, sizeof(msg)) != 0) {
			api_ca_free(&c);
			api_set_error(w->rs, field != NULL ? 400 : 500, field, "%s", msg);
			goto out;
		}
	}
	at = api_state_find_ca(&w->st, name);
	if (api_state_put_ca(&w->st, at, &c) != 0) {
		api_set_error(w->rs, 500, NULL, "out of memory");
		goto out;
	}
	w->kind = "ca";
	w->status = live < 0 ? 201 : 200;
	api_finish(w);
out:
	free(norm);
}

/* DELETE /v1/cas/NAME */
static void api_delete_ca(struct api_write *w)
{
	ssize_t live = apiobj_find_ca(w->cfg, w->arg), at;
	char tag[40];
	json_t *users;

	if (live < 0) {
		api_set_error(w->rs, 404, NULL, "no CA \"%s\"", w->arg);
		return;
	}
	if (!apiobj_ca_is_api(w->cfg, (size_t)live)) {
		api_read_only(w, &w->cfg->ca_origin[live], "this CA");
		return;
	}
	if (api_preconditions(w->rq, api_current_tag(apiobj_ca_json(w->cfg,
	                      (size_t)live), tag), w->rs) != 0)
		return;
	users = apiobj_ca_hosts(w->cfg, (size_t)live);
	if (users != NULL && json_array_size(users) > 0) {
		char *list = json_dumps(users, JSON_COMPACT);

		api_set_error(w->rs, 409, NULL, "CA \"%s\" is used by %zu host(s): %.400s",
		              w->arg, json_array_size(users), list != NULL ? list : "");
		free(list);
		json_decref(users);
		return;
	}
	json_decref(users);
	at = api_state_find_ca(&w->st, w->arg);
	if (at >= 0)
		api_state_remove_ca(&w->st, (size_t)at);
	w->kind = "ca";
	w->status = 204;
	api_finish(w);
}

/* RFC 7396 merge patch of `patch` into `target` (modified in place). */
static void api_merge_patch(json_t *target, const json_t *patch)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)patch, key, v) {
		if (json_is_null(v)) {
			json_object_del(target, key);
		} else if (json_is_object(v)) {
			json_t *t = json_object_get(target, key);

			if (!json_is_object(t)) {
				t = json_object();
				json_object_set_new(target, key, t);
			}
			api_merge_patch(t, v);
		} else {
			json_object_set(target, key, v);
		}
	}
}

/* PUT / PATCH / DELETE /v1/hosts/PATTERN */
static void api_write_host(struct api_write *w, int patch, int del)
{
	char why[256], tag[40], msg[APIOBJ_ERR_LEN];
	ssize_t live = apiobj_find_host(w->cfg, w->arg, why, sizeof(why)), at;
	json_t *cur = NULL, *doc;
	const char *field = NULL;
	struct api_host h;

	if (live == -2) {
		api_set_error(w->rs, 400, "pattern", "%s", why);
		return;
	}
	if (live >= 0 && !apiobj_host_is_api(w->cfg, (size_t)live)) {
		api_read_only(w, &w->cfg->host_origin[live], "this host");
		return;
	}
	if ((patch || del) && live < 0) {
		api_set_error(w->rs, 404, NULL, "no host \"%s\"", w->arg);
		return;
	}
	if (live >= 0)
		cur = apiobj_host_json(w->cfg, (size_t)live);
	if (api_preconditions(w->rq, cur != NULL ? (apiobj_etag(cur, tag), tag) : NULL,
	                      w->rs) != 0)
		goto out;
	w->kind = "host";
	w->hosts_only = 1;
	if (del) {
		at = api_state_find_host(&w->st, w->cfg->hosts[live]->pattern);
		if (at >= 0)
			api_state_remove_host(&w->st, (size_t)at);
		w->status = 204;
		api_finish(w);
		goto out;
	}
	doc = w->body;
	if (patch) {
		json_object_del(cur, "source");
		api_merge_patch(cur, w->body);
		doc = cur;
	}
	if (api_host_from_json(doc, w->arg, &h, &field, msg, sizeof(msg)) != 0) {
		api_host_free(&h);
		api_set_error(w->rs, 400, field, "%s", msg);
		goto out;
	}
	snprintf(w->object, sizeof(w->object), "%s", h.pattern);
	at = api_state_find_host(&w->st, h.pattern);
	if (api_state_put_host(&w->st, at, &h) != 0) {
		api_set_error(w->rs, 500, NULL, "out of memory");
		goto out;
	}
	w->status = live < 0 ? 201 : 200;
	api_finish(w);
out:
	json_decref(cur);
}

static int api_has_ca(const struct api_host *h, const char *name)
{
	for (size_t k = 0; k < h->n_cas; k++)
		if (strcmp(h->cas[k], name) == 0)
			return 1;
	return 0;
}

/* Whether `pattern` is in the sorted list. */
static int api_listed(char *const *sorted, size_t n, const char *pattern)
{
	return n > 0 && bsearch(&pattern, sorted, n, sizeof(*sorted),
	                        api_cmp_str) != NULL;
}

/* PUT /v1/cas/NAME/hostnames: the hosts that trust NAME become exactly
 * the listed ones. */
static void api_write_hostnames(struct api_write *w)
{
	const json_t *list = json_object_get(w->body, "hostnames"), *e;
	ssize_t live = apiobj_find_ca(w->cfg, w->arg);
	char why[256], norm[POLICY_HOST_MAX + 4];
	size_t i, n = 0;
	char **want = NULL, **want_sorted = NULL;
	const char *key;
	json_t *v;

	json_object_foreach(w->body, key, v)
		if (strcmp(key, "hostnames") != 0) {
			api_set_error(w->rs, 400, key, "unknown field \"%s\"", key);
			return;
		}
	if (live < 0) {
		api_set_error(w->rs, 404, NULL, "no CA \"%s\"", w->arg);
		return;
	}
	if (!json_is_array(list) || json_array_size(list) > API_MAX_HOSTNAMES) {
		api_set_error(w->rs, 400, "hostnames", "hostnames must be an array of "
		              "at most %d host patterns", API_MAX_HOSTNAMES);
		return;
	}
	n = json_array_size(list);
	want = calloc(n + 1, sizeof(*want));
	if (want == NULL) {
		api_set_error(w->rs, 500, NULL, "out of memory");
		return;
	}
	/* Every listed pattern, normalized; the file's hosts cannot change. */
	json_array_foreach(list, i, e) {
		ssize_t hi;

		if (!json_is_string(e)) {
			api_set_error(w->rs, 400, "hostnames", "hostnames must be an array "
			              "of strings");
			goto out;
		}
		if (api_pattern_normalize(json_string_value(e), norm, sizeof(norm), why,
		                          sizeof(why)) != 0) {
			api_set_error(w->rs, 400, "hostnames", "%s", why);
			goto out;
		}
		want[i] = strdup(norm);
		if (want[i] == NULL) {
			api_set_error(w->rs, 500, NULL, "out of memory");
			goto out;
		}
		hi = apiobj_find_host(w->cfg, norm, why, sizeof(why));
		if (hi >= 0 && !apiobj_host_is_api(w->cfg, (size_t)hi)) {
			const struct trust_policy *tp = w->cfg->hosts[hi]->trust;
			int has = 0;

			for (size_t k = 0; tp != NULL && k < tp->n_cas; k++)
				has |= tp->cas[k] == w->cfg->cas[live];
			if (!has) {
				char what[POLICY_HOST_MAX + 16];

				snprintf(what, sizeof(what), "host \"%s\"", norm);
				api_read_only(w, &w->cfg->host_origin[hi], what);
				goto out;
			}
		}
	}
	/* Sorted, for the membership tests below (10,000 names against
	 * 10,000 hosts). */
	want_sorted = malloc((n + 1) * sizeof(*want_sorted));
	if (want_sorted == NULL) {
		api_set_error(w->rs, 500, NULL, "out of memory");
		goto out;
	}
	memcpy(want_sorted, want, n * sizeof(*want_sorted));
	qsort(want_sorted, n, sizeof(*want_sorted), api_cmp_str);
	/* Hosts of the files that list the CA must stay listed. */
	for (size_t h = 0; h < w->cfg->n_hosts; h++) {
		const struct trust_policy *tp = w->cfg->hosts[h]->trust;
		int has = 0;

		if (apiobj_host_is_api(w->cfg, h))
			continue;
		for (size_t k = 0; tp != NULL && k < tp->n_cas; k++)
			has |= tp->cas[k] == w->cfg->cas[live];
		if (has && !api_listed(want_sorted, n, w->cfg->hosts[h]->pattern)) {
			api_read_only(w, &w->cfg->host_origin[h], "a host that trusts it");
			goto out;
		}
	}
	/* Drop the CA from the API hosts not listed. */
	for (size_t h = 0; h < w->st.n_hosts; h++) {
		struct api_host *ah = &w->st.hosts[h];

		if (api_listed(want_sorted, n, ah->pattern) || !api_has_ca(ah, w->arg))
			continue;
		ah->from = NULL;
		for (size_t k = 0; k < ah->n_cas; k++) {
			if (strcmp(ah->cas[k], w->arg) == 0) {
				free(ah->cas[k]);
				memmove(&ah->cas[k], &ah->cas[k + 1],
				        (ah->n_cas - k - 1) * sizeof(*ah->cas));
				ah->n_cas--;
				break;
			}
		}
		if (ah->n_cas == 0 && ah->mode != MODE_OFF && ah->mode != MODE_DENY) {
			api_set_error(w->rs, 409, "hostnames", "host \"%s\" would be left "
			              "with no CA: give it another CA or delete it first",
			              ah->pattern);
			goto out;
		}
	}
	/* Add it to the listed ones; a host that does not exist yet starts
	 * in mode log, so an association never blocks traffic by itself. */
	for (size_t k = 0; k < n; k++) {
		ssize_t at = api_state_find_host(&w->st, want[k]);
		struct api_host nh;
		char **grown;

		if (apiobj_find_host(w->cfg, want[k], why, sizeof(why)) >= 0 && at < 0)
			continue;   /* a file host that already lists it */
		if (at < 0) {
			memset(&nh, 0, sizeof(nh));
			nh.pattern = strdup(want[k]);
			nh.cas = calloc(1, sizeof(*nh.cas));
			nh.identities = calloc(1, sizeof(*nh.identities));
			nh.pins = calloc(1, sizeof(*nh.pins));
			nh.mode = MODE_LOG;
			nh.purpose = PURPOSE_CLIENT;
			nh.verify_depth = 5;
			if (nh.pattern == NULL || nh.cas == NULL || nh.identities == NULL ||
			    nh.pins == NULL || api_state_put_host(&w->st, -1, &nh) != 0) {
				api_host_free(&nh);
				api_set_error(w->rs, 500, NULL, "out of memory");
				goto out;
			}
			at = (ssize_t)w->st.n_hosts - 1;
		}
		if (api_has_ca(&w->st.hosts[at], w->arg))
			continue;
		grown = realloc(w->st.hosts[at].cas, (w->st.hosts[at].n_cas + 1) *
		                sizeof(*grown));
		if (grown == NULL || (grown[w->st.hosts[at].n_cas] = strdup(w->arg)) == NULL) {
			if (grown != NULL)
				w->st.hosts[at].cas = grown;
			api_set_error(w->rs, 500, NULL, "out of memory");
			goto out;
		}
		w->st.hosts[at].cas = grown;
		w->st.hosts[at].n_cas++;
		w->st.hosts[at].from = NULL;
	}
	w->kind = "host";
	w->hosts_only = 1;
	w->status = 200;
	api_finish(w);
out:
	for (i = 0; want != NULL && i < n; i++)
		free(want[i]);
	free(want);
	free(want_sorted);
}

/* The write's starting state: the one the last write left while its
 * generation is live (taken: a refused write changes it and drops it),
 * else read from the live generation. 0 or -1 (OOM). */
static int api_state_take(struct api_write *w)
{
	struct api *a = w->a;

	if (a->cached && a->cache_cfg == w->cfg && a->cache_gen == w->gen) {
		w->st = a->cache;
		a->cached = 0;
		return 0;
	}
	api_cache_drop(a);
	return api_state_from_config(w->cfg, &w->st);
}

/* The end of a write: the state of what it installed is kept for the
 * next one; any other is freed. */
static void api_state_keep(struct api_write *w)
{
	struct api *a = w->a;

	if (w->installed != NULL && api_state_follow(&w->st, w->installed) == 0) {
		api_cache_drop(a);
		a->cache = w->st;
		a->cache_cfg = w->installed;
		a->cache_gen = w->installed_gen;
		a->cached = 1;
		memset(&w->st, 0, sizeof(w->st));
		return;
	}
	api_state_free(&w->st);
}

/* On the configuration thread. */
static void api_write_main(void *arg)
{
	struct api_write *w = arg;
	void *ref = NULL;
	const char *m = w->rq->method;

	if (w->t_queued == 0)
		w->t_queued = api_now_ms();
	w->cfg = w->a->ops->acquire(w->a->ctx, &ref, &w->gen);
	if (w->cfg == NULL || w->cfg->state_dir == NULL) {
		api_set_error(w->rs, 503, NULL, "no configuration file: the API needs "
		              "one (start with -c FILE)");
		goto out;
	}
	if (api_state_take(w) != 0) {
		api_set_error(w->rs, 500, NULL, "out of memory");
		goto out;
	}
	{
		char why[CONFIG_ERR_LEN];

		/* A write derives from the live generation only while the
		 * files are the ones it was built from; otherwise (an edit the
		 * watch has not applied yet, a broken file) it loads them, so
		 * that a broken file refuses it as it would a reload. */
		w->derive = !config_changed(w->cfg, why, sizeof(why));
	}
	switch (w->route) {
	case ROUTE_CAS:
	case ROUTE_CA:
		if (strcmp(m, "DELETE") == 0)
			api_delete_ca(w);
		else
			api_write_ca(w);
		break;
	case ROUTE_CA_HOSTNAMES:
		api_write_hostnames(w);
		break;
	case ROUTE_HOST:
		api_write_host(w, strcmp(m, "PATCH") == 0, strcmp(m, "DELETE") == 0);
		break;
	default:
		api_set_error(w->rs, 404, NULL, "not found");
		break;
	}
	/* A refused write leaves the state directory as it was. */
	for (int i = 0; i < w->n_created; i++)
		store_remove(w->cfg->state_dir, w->created[i]);
	api_state_keep(w);
out:
	/* Dropped by the caller, off this thread: the previous generation
	 * may go with it, and freeing 10,000 hosts takes tens of ms that the
	 * answer should not wait for. */
	w->ref = ref;
}

/* ---- the shared store's changes (fleet.c) -------------------------------- */

/* The message of an error answer, for the log and /v1/status. */
static void api_error_message(const struct api_response *rs, char *out,
                              size_t outlen)
{
	json_t *doc = rs->body != NULL ? json_loads(rs->body, 0, NULL) : NULL;
	const char *m = json_string_value(json_object_get(json_object_get(doc,
	                                  "error"), "message"));

	snprintf(out, outlen, "%s", m != NULL ? m : "refused");
	json_decref(doc);
}

/* The CAs of the host just staged exist (in the state or the files):
 * caught here, a missing one costs no load (a full read of etcd with
 * such hosts would load once per host). Else -1 with c->why. */
static int api_stage_cas(struct api_write *w, struct api_change *c)
{
	ssize_t at = api_state_find_host(&w->st, c->name);
	const struct api_host *h = at >= 0 ? &w->st.hosts[at] : NULL;

	for (size_t k = 0; h != NULL && k < h->n_cas; k++) {
		ssize_t live = apiobj_find_ca(w->cfg, h->cas[k]);

		if (api_state_find_ca(&w->st, h->cas[k]) >= 0 ||
		    (live >= 0 && !apiobj_ca_is_api(w->cfg, (size_t)live)))
			continue;
		snprintf(c->why, sizeof(c->why), "unknown CA \"%.100s\"", h->cas[k]);
		return -1;
	}
	return 0;
}

/* Stage change c into w->st as the API would a PUT or DELETE of it.
 * 0, or -1 when it is refused (c->why), -2 when refused after w->st
 * took it (w->st must be built again without it). */
static int api_stage(struct api_write *w, struct api_change *c)
{
	struct api_request rq = { .method = c->value != NULL ? "PUT" : "DELETE",
	                          .who = "store" };
	json_error_t je;
	int rc = 0;

	memset(w->rs, 0, sizeof(*w->rs));
	w->rq = &rq;
	w->route = c->is_host ? ROUTE_HOST : ROUTE_CA;
	w->arg = c->name;
	w->object[0] = '\0';
	w->body = NULL;
	if (c->value != NULL) {
		w->body = json_loadb(c->value, c->len, JSON_REJECT_DUPLICATES, &je);
		if (!json_is_object(w->body)) {
			snprintf(c->why, sizeof(c->why), "not a JSON object: %s",
			         w->body == NULL ? je.text : "another type");
			json_decref(w->body);
			w->body = NULL;
			return -1;
		}
	}
	if (c->is_host) {
		char norm[POLICY_HOST_MAX + 4], why[256] = "";

		/* One key per host: two spellings of one pattern would be two
		 * keys fighting over one object. */
		if (api_pattern_normalize(c->name, norm, sizeof(norm), why,
		                          sizeof(why)) != 0 || strcmp(norm, c->name) != 0) {
			snprintf(c->why, sizeof(c->why), "the key's pattern is not in "
			         "normal form (lower case, no trailing dot)%s%.120s",
			         why[0] != '\0' ? ": " : "", why);
			rc = -1;
			goto out;
		}
		api_write_host(w, 0, c->value == NULL);
		if (w->rs->status < 400 && c->value != NULL && api_stage_cas(w, c) != 0) {
			rc = -2;    /* already in w->st: stage again without it */
			goto out;
		}
	} else if (c->value == NULL) {
		api_delete_ca(w);
	} else {
		api_write_ca(w);
	}
	if (w->rs->status >= 400) {
		/* Deleting what is not here (a refused object) changes nothing. */
		if (c->value == NULL && w->rs->status == 404)
			goto out;
		api_error_message(w->rs, c->why, sizeof(c->why));
		rc = -1;
	}
out:
	free(w->rs->body);
	memset(w->rs, 0, sizeof(*w->rs));
	json_decref(w->body);
	w->body = NULL;
	return rc;
}

/* See api.h. */
int api_store_apply(struct api *a, struct api_change *ch, size_t n, int full,
                    int64_t revision, char *err, size_t errlen)
{
	for (size_t round = 0; round <= n + 1; round++) {
		struct api_response rs = { 0 };
		struct api_write w = {
			.a = a, .rs = &rs, .stage_only = 1, .store_apply = 1,
			.revision = revision,
		};
		char why[CONFIG_ERR_LEN];
		size_t accepted = 0, last = 0;
		void *ref = NULL;
		int rc, again = 0, files_changed;

		w.cfg = a->ops->acquire(a->ctx, &ref, &w.gen);
		if (w.cfg == NULL || w.cfg->state_dir == NULL) {
			a->ops->release(a->ctx, ref);
			snprintf(err, errlen, "no configuration file");
			return -1;
		}
		if (!full && api_state_take(&w) != 0) {
			a->ops->release(a->ctx, ref);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		files_changed = config_changed(w.cfg, why, sizeof(why));
		for (size_t i = 0; i < n; i++) {
			if (ch[i].rejected)
				continue;
			if ((rc = api_stage(&w, &ch[i])) != 0) {
				ch[i].rejected = 1;
				again |= rc == -2;
				continue;
			}
			accepted++;
			last = i;
		}
		/* api_write_host() sets hosts_only for itself: the batch's is
		 * whether any CA changed. */
		w.hosts_only = !full;
		w.derive = !full && !files_changed;
		for (size_t i = 0; i < n; i++)
			if (!ch[i].rejected && !ch[i].is_host)
				w.hosts_only = 0;
		w.stage_only = 0;
		w.kind = NULL;
		w.object[0] = '\0';
		rc = again ? -1 : accepted == 0 && !full ? 0 : api_commit(&w);
		if (rc != 0 && !again)
			api_error_message(&rs, why, sizeof(why));
		free(rs.body);
		for (int i = 0; i < w.n_created; i++)
			store_remove(w.cfg->state_dir, w.created[i]);
		api_state_keep(&w);
		a->ops->release(a->ctx, ref);
		if (rc == 0)
			return 0;
		if (again)
			continue;
		/* Refuse the object the loader named, and try the rest again. */
		{
			size_t i;

			for (i = 0; i < n; i++)
				if (!ch[i].rejected && ch[i].is_host == w.err_is_host &&
				    strcmp(ch[i].name, w.err_name) == 0)
					break;
			if (i == n && accepted == 1)
				i = last;
			if (i < n) {
				ch[i].rejected = 1;
				snprintf(ch[i].why, sizeof(ch[i].why), "%.250s", why);
				continue;
			}
		}
		if (full || accepted == 0) {
			snprintf(err, errlen, "%s", why);
			return -1;
		}
		/* An object the batch did not change fails with it (a host
		 * whose CA a change removed): each change alone. */
		for (size_t i = 0; i < n; i++) {
			char e2[256];

			if (!ch[i].rejected && api_store_apply(a, &ch[i], 1, 0, revision,
			                                       e2, sizeof(e2)) != 0) {
				ch[i].rejected = 1;
				snprintf(ch[i].why, sizeof(ch[i].why), "%.250s", e2);
			}
		}
		return 0;
	}
	snprintf(err, errlen, "no change loads");
	return -1;
}

static int api_method_allowed(enum api_route r, const char *m)
{
	int get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;

	switch (r) {
	case ROUTE_CAS:
		return get || strcmp(m, "POST") == 0;
	case ROUTE_CA:
		return get || strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0;
	case ROUTE_CA_HOSTNAMES:
		return get || strcmp(m, "PUT") == 0;
	case ROUTE_HOSTS:
		return get;
	case ROUTE_HOST:
		return get || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0 ||
		       strcmp(m, "DELETE") == 0;
	case ROUTE_VERIFY:
		return strcmp(m, "POST") == 0;
	default:
		return 0;
	}
}

/* A write: validated on the configuration thread; with a shared store,
 * then committed there (an answer once this process applied it) and
 * validated again when something changed meanwhile. */
#define API_STORE_TRIES 8

#define API_STORE_UNAVAILABLE_TRIES 2

/* Before validating a write again: what this process applied includes
 * `rev`, and the answer is blank. */
static void api_write_again(struct api *a, struct api_write *w, int64_t rev)
{
	a->ops->store_wait(a->ctx, rev);
	free(w->rs->body);
	memset(w->rs, 0, sizeof(*w->rs));
	w->n_created = 0;
	w->status = 0;
	w->kind = NULL;
	w->object[0] = '\0';
}

static void api_write_run(struct api *a, struct api_write *w)
{
	int unavailable = 0;

	for (int tries = 0;; tries++) {
		char err[512];
		int64_t rev;
		int rc;

		if (a->ops->run(a->ctx, api_write_main, w) != 0)
			api_set_error(w->rs, 503, NULL, "the agent is stopping");
		if (w->ref != NULL)
			a->ops->release(a->ctx, w->ref);
		w->ref = NULL;
		if (!w->txn_ready)
			return;
		w->txn_ready = 0;
		err[0] = '\0';
		rc = a->ops->store_publish(a->ctx, &w->txn, err, sizeof(err));
		if (rc == API_STORE_OK) {
			api_txn_free(&w->txn);
			w->publish = 0;
			api_answer_object(w);
			return;
		}
		rev = w->txn.revision;
		api_txn_free(&w->txn);
		if (rc == API_STORE_CONFLICT && tries + 1 < API_STORE_TRIES) {
			/* Validate against what the store has now: an If-Match that
			 * no longer holds is a 412 from the next round. */
			metrics_store_write_failure(0);
			api_write_again(a, w, rev);
			continue;
		}
		if (rc == API_STORE_UNAVAILABLE && unavailable++ < API_STORE_UNAVAILABLE_TRIES) {
			/* A member that died under the request, an election: the
			 * client moved to the next endpoint; validate again there
			 * (a write that did commit is then seen, and written again
			 * with the same value). */
			struct timespec ts = { 0, 200 * 1000000L };

			metrics_store_write_failure(1);
			nanosleep(&ts, NULL);
			api_write_again(a, w, rev);
			continue;
		}
		metrics_store_write_failure(rc == API_STORE_CONFLICT ? 0 : 1);
		if (rc == API_STORE_CONFLICT)
			api_set_error(w->rs, 409, NULL, "the store kept changing under "
			              "this write (%d tries): try again", API_STORE_TRIES);
		else if (rc == API_STORE_UNAVAILABLE)
			api_set_error(w->rs, 503, NULL, "the store did not commit the "
			              "change: %s", err);
		else
			api_set_error(w->rs, 500, NULL, "the store refused the change: %s",
			              err);
		return;
	}
}

void api_handle(void *ctx, const struct api_request *rq, struct api_response *rs)
{
	struct api *a = ctx;
	char arg[POLICY_HOST_MAX * 3 + 8];
	enum api_route route;
	int bad;

	memset(rs, 0, sizeof(*rs));
	route = api_route(rq->path, arg, sizeof(arg), &bad);
	if (route == ROUTE_NONE) {
		api_set_error(rs, 404, NULL, "no such endpoint: %.200s", rq->path);
	} else if (bad) {
		api_set_error(rs, 400, route == ROUTE_HOST ? "pattern" : "name",
		              "bad percent-encoding in the path");
	} else if (!api_method_allowed(route, rq->method)) {
		api_set_error(rs, 405, NULL, "%s is not allowed here (allowed: %s)",
		              rq->method, api_allow[route]);
		rs->allow = api_allow[route];
	} else if (strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0) {
		api_get(a, route, arg, rs);
	} else if (route == ROUTE_VERIFY) {
		api_verify(a, rq, rs);
	} else {
		struct api_write w = {
			.a = a, .rq = rq, .rs = rs, .route = route, .arg = arg,
		};
		int del = strcmp(rq->method, "DELETE") == 0;
		double t0 = api_now_ms();

		if (!del && (w.body = api_body(rq, rs, strcmp(rq->method, "PATCH") == 0)) == NULL)
			goto done;
		w.publish = a->ops->store_publish != NULL;
		api_write_run(a, &w);
		json_decref(w.body);
		/* The audit trail: who changed what, and what came of it. */
		if (rs->status >= 200 && rs->status < 300) {
			/* And where its time went: waiting for the configuration
			 * thread (a reload, another write), writing the state. */
			log_info("api: %s %s %s -> %d (generation %llu, %.1f ms: "
			         "%.1f waiting, %.1f writing the state)", rq->who,
			         rq->method, rq->path, rs->status,
			         (unsigned long long)rs->generation, api_now_ms() - t0,
			         w.t_queued > 0 ? w.t_queued - t0 : 0.0, w.disk_ms);
			metrics_api_change(w.kind != NULL && w.kind[0] == 'c');
		} else {
			log_warning("api: %s %s %s -> %d (refused, nothing changed)",
			            rq->who, rq->method, rq->path, rs->status);
		}
	}
done:
	metrics_api_request(rq->method, rs->status);
}
