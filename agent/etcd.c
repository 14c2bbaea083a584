/*
 * etcd.c - see etcd.h. The v3 JSON gateway (grpc-gateway) as etcd 3.4
 * serves it: POST /v3/kv/range, /v3/kv/txn, /v3/watch (a stream of
 * {"result": ...} objects), /v3/auth/authenticate. Bytes are base64,
 * int64s are JSON strings, fields with default values are omitted.
 * Errors: HTTP status != 200 with {"error": "...", "message": "...",
 * "code": N}; inside a watch stream {"error": {"grpc_code": N, ...}}.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <curl/curl.h>
#include <jansson.h>

#include "etcd.h"

#ifndef MTLS_VERSION
#define MTLS_VERSION "dev"  /* the fuzz builds do not pass it */
#endif

#define ETCD_DEFAULT_TIMEOUT_MS 2000L
#define ETCD_POLL_MS            100   /* etcd_stop is seen within this */
#define ETCD_RANGE_RESTARTS     3     /* a page's revision compacted away */
#define GRPC_UNAVAILABLE        14

struct etcd {
	char *ep[ETCD_MAX_ENDPOINTS];
	size_t n_ep;
	atomic_size_t cur;              /* index of the endpoint in use */
	char *ca_file, *cert_file, *key_file;
	char *user, *password;
	long timeout_ms;
	size_t page_limit;
	atomic_int stop;
	pthread_mutex_t lock;           /* token */
	char *token;                    /* NULL: not authenticated yet */
};

/* ---- small helpers ---- */

static char *etcd_strdup_or_null(const char *s, int *oom)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*oom = 1;
	return d;
}

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding, NUL-terminated, malloc'd. */
static char *b64_encode(const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i, o = 0;
	char *s;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	s = malloc((len + 2) / 3 * 4 + 1);
	if (s == NULL)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];

		s[o++] = b64_alphabet[v >> 18];
		s[o++] = b64_alphabet[(v >> 12) & 63];
		s[o++] = b64_alphabet[(v >> 6) & 63];
		s[o++] = b64_alphabet[v & 63];
	}
	if (i < len) {
		unsigned v = (unsigned)p[i] << 16;

		if (i + 1 < len)
			v |= (unsigned)p[i + 1] << 8;
		s[o++] = b64_alphabet[v >> 18];
		s[o++] = b64_alphabet[(v >> 12) & 63];
		s[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		s[o++] = '=';
	}
	s[o] = '\0';
	return s;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict decoding of what Go's encoding/json writes for []byte: the
 * standard alphabet, padded to a multiple of 4, no whitespace, and the
 * unused bits of the last group zero (one encoding per byte string).
 * *out is malloc'd with a NUL after *outlen bytes. 0 or -1. */
static int b64_decode(const char *s, size_t len, char **out, size_t *outlen)
{
	size_t i, o = 0, pad = 0;
	char *d;

	*out = NULL;
	*outlen = 0;
	if (len % 4 != 0)
		return -1;
	if (len > 0 && s[len - 1] == '=')
		pad = len > 1 && s[len - 2] == '=' ? 2 : 1;
	d = malloc(len / 4 * 3 + 1);
	if (d == NULL)
		return -1;
	for (i = 0; i < len; i += 4) {
		int v[4], k, n = i + 4 == len ? 4 - (int)pad : 4;
		unsigned w = 0;

		for (k = 0; k < 4; k++) {
			v[k] = k < n ? b64_value((unsigned char)s[i + k]) : 0;
			if (v[k] < 0)
				goto bad;
			w = w << 6 | (unsigned)v[k];
		}
		d[o++] = (char)(w >> 16);
		if (n > 2)
			d[o++] = (char)(w >> 8);
		if (n > 3)
			d[o++] = (char)w;
		/* Non-canonical: bits the padding hides must be zero. */
		if ((n == 2 && (w & 0xffff) != 0) || (n == 3 && (w & 0xff) != 0))
			goto bad;
	}
	d[o] = '\0';
	*out = d;
	*outlen = o;
	return 0;
bad:
	free(d);
	return -1;
}

/* An int64 as the gateway writes it (a JSON string of decimal digits) or
 * as a number; absent: 0. 0 or -1 (wrong type, junk, overflow). */
static int json_int64(const json_t *o, const char *name, int64_t *v)
{
	const json_t *j = json_object_get(o, name);
	const char *s;
	int64_t r = 0;
	int neg = 0;

	*v = 0;
	if (j == NULL)
		return 0;
	if (json_is_integer(j)) {
		*v = (int64_t)json_integer_value(j);
		return 0;
	}
	if (!json_is_string(j))
		return -1;
	s = json_string_value(j);
	if (json_string_length(j) != strlen(s) || *s == '\0')
		return -1;
	if (*s == '-') {
		neg = 1;
		s++;
	}
	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		int dgt;

		if (*s < '0' || *s > '9')
			return -1;
		dgt = *s - '0';
		/* Accumulate negatively: INT64_MIN has no positive twin. */
		if (r < (INT64_MIN + dgt) / 10)
			return -1;
		r = r * 10 - dgt;
	}
	if (!neg) {
		if (r == INT64_MIN)
			return -1;
		r = -r;
	}
	*v = r;
	return 0;
}

/* A boolean field; absent (the default, false) is 0. -1: wrong type. */
static int json_flag(const json_t *o, const char *name, int *v)
{
	const json_t *j = json_object_get(o, name);

	*v = 0;
	if (j == NULL)
		return 0;
	if (!json_is_boolean(j))
		return -1;
	*v = json_is_true(j);
	return 0;
}

/* A base64 bytes field into a NUL-terminated copy; absent: "" when
 * !required. 0 or -1. */
static int json_bytes(const json_t *o, const char *name, int required,
                      char **out, size_t *len)
{
	const json_t *j = json_object_get(o, name);

	*out = NULL;
	*len = 0;
	if (j == NULL) {
		if (required)
			return -1;
		*out = calloc(1, 1);
		return *out != NULL ? 0 : -1;
	}
	if (!json_is_string(j))
		return -1;
	return b64_decode(json_string_value(j), json_string_length(j), out, len);
}

static void kv_clear(struct etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

/* One mvccpb.KeyValue. The key is required (never empty in etcd). */
static int kv_from_json(const json_t *o, struct etcd_kv *kv, char *err,
                        size_t errlen)
{
	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(o)) {
		snprintf(err, errlen, "kv is not an object");
		return -1;
	}
	if (json_bytes(o, "key", 1, &kv->key, &kv->key_len) != 0 ||
	    kv->key_len == 0) {
		snprintf(err, errlen, "kv key missing or not base64");
		goto bad;
	}
	if (json_bytes(o, "value", 0, &kv->value, &kv->value_len) != 0) {
		snprintf(err, errlen, "kv value not base64");
		goto bad;
	}
	if (json_int64(o, "create_revision", &kv->create_revision) != 0 ||
	    json_int64(o, "mod_revision", &kv->mod_revision) != 0 ||
	    json_int64(o, "version", &kv->version) != 0) {
		snprintf(err, errlen, "kv revision or version not an int64");
		goto bad;
	}
	return 0;
bad:
	kv_clear(kv);
	return -1;
}

/* The text of an error answer, in either of the gateway's shapes.
 * *code is the gRPC code (0 unknown). 1 when it was an error object. */
static int error_text(const json_t *root, char *msg, size_t msglen, int *code)
{
	const json_t *e = json_object_get(root, "error");
	const json_t *m, *c;

	*code = 0;
	if (e == NULL)
		return 0;
	if (json_is_object(e)) {          /* in a stream: runtime.StreamError */
		m = json_object_get(e, "message");
		c = json_object_get(e, "grpc_code");
	} else {
		m = json_object_get(root, "message");
		c = json_object_get(root, "code");
		if (!json_is_string(m))
			m = e;
	}
	if (json_is_integer(c) && json_integer_value(c) >= 0 &&
	    json_integer_value(c) < 100)
		*code = (int)json_integer_value(c);
	snprintf(msg, msglen, "%s", json_is_string(m) ? json_string_value(m)
	                                              : "error without a message");
	return 1;
}

static json_t *json_parse(const char *p, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loadb(p, len, JSON_REJECT_DUPLICATES, &je);

	if (j == NULL)
		snprintf(err, errlen, "not JSON: %s", je.text);
	else if (!json_is_object(j)) {
		snprintf(err, errlen, "not a JSON object");
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* An answer of etcd's: a JSON object that is not an error object. */
static json_t *parse_answer(const char *p, size_t len, char *err, size_t errlen)
{
	json_t *root = json_parse(p, len, err, errlen);
	char msg[256];
	int code;

	if (root != NULL && error_text(root, msg, sizeof(msg), &code)) {
		snprintf(err, errlen, "etcd: %s", msg);
		json_decref(root);
		root = NULL;
	}
	return root;
}

/* An optional array field: *n its size (0 when absent). 0 or -1. */
static int opt_array(const json_t *o, const char *name, const json_t **arr,
                     size_t *n, char *err, size_t errlen)
{
	*arr = json_object_get(o, name);
	*n = 0;
	if (*arr == NULL)
		return 0;
	if (!json_is_array(*arr)) {
		snprintf(err, errlen, "%s is not an array", name);
		return -1;
	}
	*n = json_array_size(*arr);
	return 0;
}

/* ---- decoders ---- */

void etcd_watch_msg_free(struct etcd_watch_msg *m)
{
	size_t i;

	for (i = 0; i < m->n_ev; i++)
		kv_clear(&m->ev[i].kv);
	free(m->ev);
	m->ev = NULL;
	m->n_ev = 0;
}

int etcd_parse_watch(const char *json, size_t len, struct etcd_watch_msg *m,
                     char *err, size_t errlen)
{
	json_t *root, *res, *hdr, *reason;
	const json_t *evs;
	size_t i, n;

	memset(m, 0, sizeof(*m));
	root = parse_answer(json, len, err, errlen);
	if (root == NULL)
		return -1;
	res = json_object_get(root, "result");
	if (!json_is_object(res)) {
		snprintf(err, errlen, "no result object");
		goto bad;
	}
	hdr = json_object_get(res, "header");
	if (hdr != NULL && !json_is_object(hdr)) {
		snprintf(err, errlen, "header is not an object");
		goto bad;
	}
	if (json_int64(hdr, "revision", &m->revision) != 0 ||
	    json_int64(res, "compact_revision", &m->compact_revision) != 0 ||
	    json_flag(res, "created", &m->created) != 0 ||
	    json_flag(res, "canceled", &m->canceled) != 0) {
		snprintf(err, errlen, "revision or flag of the wrong type");
		goto bad;
	}
	reason = json_object_get(res, "cancel_reason");
	if (json_is_string(reason))
		snprintf(m->cancel_reason, sizeof(m->cancel_reason), "%s",
		         json_string_value(reason));
	if (opt_array(res, "events", &evs, &n, err, errlen) != 0)
		goto bad;
	if (n == 0)
		goto done;
	m->ev = calloc(n, sizeof(*m->ev));
	if (m->ev == NULL) {
		snprintf(err, errlen, "out of memory");
		goto bad;
	}
	for (i = 0; i < n; i++) {
		const json_t *ev = json_array_get(evs, i);
		const json_t *type = json_object_get(ev, "type");

		if (!json_is_object(ev)) {
			snprintf(err, errlen, "event is not an object");
			goto bad;
		}
		/* mvccpb.Event: PUT is the default, so omitted. */
		if (type != NULL && !(json_is_string(type) &&
		    (strcmp(json_string_value(type), "PUT") == 0 ||
		     strcmp(json_string_value(type), "DELETE") == 0))) {
			snprintf(err, errlen, "unknown event type");
			goto bad;
		}
		m->ev[i].is_delete = type != NULL &&
		                     strcmp(json_string_value(type), "DELETE") == 0;
		if (kv_from_json(json_object_get(ev, "kv"), &m->ev[i].kv, err,
		                 errlen) != 0)
			goto bad;
		m->n_ev = i + 1;
	}
done:
	json_decref(root);
	return 0;
bad:
	json_decref(root);
	etcd_watch_msg_free(m);
	return -1;
}

void etcd_kvs_free(struct etcd_kv *kvs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		kv_clear(&kvs[i]);
	free(kvs);
}

int etcd_parse_range(const char *json, size_t len, int64_t *revision,
                     struct etcd_kv **kvs, size_t *n, int *more,
                     char *err, size_t errlen)
{
	json_t *root, *hdr;
	const json_t *arr;
	size_t i, cnt;

	*revision = 0;
	*kvs = NULL;
	*n = 0;
	*more = 0;
	root = parse_answer(json, len, err, errlen);
	if (root == NULL)
		return -1;
	hdr = json_object_get(root, "header");
	if (!json_is_object(hdr) || json_int64(hdr, "revision", revision) != 0 ||
	    *revision <= 0) {
		snprintf(err, errlen, "no header revision");
		goto bad;
	}
	if (json_flag(root, "more", more) != 0) {
		snprintf(err, errlen, "more is not a boolean");
		goto bad;
	}
	if (opt_array(root, "kvs", &arr, &cnt, err, errlen) != 0)
		goto bad;
	if (cnt > ETCD_MAX_KEYS) {
		snprintf(err, errlen, "more than %u keys", ETCD_MAX_KEYS);
		goto bad;
	}
	if (cnt == 0)
		goto done;
	*kvs = calloc(cnt, sizeof(**kvs));
	if (*kvs == NULL) {
		snprintf(err, errlen, "out of memory");
		goto bad;
	}
	for (i = 0; i < cnt; i++) {
		if (kv_from_json(json_array_get(arr, i), &(*kvs)[i], err,
		                 errlen) != 0)
			goto bad;
		*n = i + 1;
	}
done:
	json_decref(root);
	return 0;
bad:
	json_decref(root);
	etcd_kvs_free(*kvs, *n);
	*kvs = NULL;
	*n = 0;
	*more = 0;
	*revision = 0;
	return -1;
}

/* Append p[n] to buf (len bytes used of cap), growing it up to max bytes
 * plus a NUL kept after the data. 0, or -1 past max or out of memory. */
static int buf_append(char **buf, size_t *len, size_t *cap, size_t max,
                      const char *p, size_t n)
{
	if (n > max - *len)
		return -1;
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 4096;
		char *b;

		while (c < *len + n + 1)
			c = c > max / 2 ? max + 1 : c * 2;
		b = realloc(*buf, c);
		if (b == NULL)
			return -1;
		*buf = b;
		*cap = c;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

static int framer_append(struct etcd_framer *f, const char *p, size_t n)
{
	return buf_append(&f->buf, &f->len, &f->cap, f->max, p, n);
}

/* Depth counts braces outside strings only; inside a string a backslash
 * escapes the next byte (so \" and \\ are handled). A message that ends
 * inside one chunk is handed over without a copy. */
int etcd_framer_feed(struct etcd_framer *f, const char *p, size_t n,
                     int (*msg)(void *ctx, const char *json, size_t len),
                     void *ctx)
{
	size_t i, seg = 0;

	if (f->max == 0)
		f->max = ETCD_MAX_MESSAGE;
	for (i = 0; i < n; i++) {
		char c = p[i];

		if (f->depth == 0) {
			if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
				continue;
			if (c != '{')
				return -1;
			seg = i;
			f->depth = 1;
			f->in_str = f->esc = 0;
			f->len = 0;
		} else if (f->in_str) {
			if (f->esc)
				f->esc = 0;
			else if (c == '\\')
				f->esc = 1;
			else if (c == '"')
				f->in_str = 0;
		} else if (c == '"') {
			f->in_str = 1;
		} else if (c == '{') {
			f->depth++;
		} else if (c == '}') {
			f->depth--;
		}
		if (f->len + (i - seg + 1) > f->max)
			return -1;
		if (f->depth == 0) {
			int rc;

			if (f->len == 0) {
				rc = msg(ctx, p + seg, i - seg + 1);
			} else {
				if (framer_append(f, p + seg, i - seg + 1) != 0)
					return -1;
				rc = msg(ctx, f->buf, f->len);
				f->len = 0;
			}
			if (rc != 0)
				return rc;
		}
	}
	if (f->depth > 0 && framer_append(f, p + seg, n - seg) != 0)
		return -1;
	return 0;
}

void etcd_framer_free(struct etcd_framer *f)
{
	free(f->buf);
	memset(f, 0, sizeof(*f));
}

/* The prefix's range end as bytes: the prefix with its last byte below
 * 0xff incremented and what follows cut. *len 0: no end. */
static char *prefix_end_bytes(const char *prefix, size_t *len)
{
	size_t n = strlen(prefix);
	char *end = malloc(n + 1);

	if (end == NULL)
		return NULL;
	memcpy(end, prefix, n + 1);
	while (n > 0 && (unsigned char)end[n - 1] == 0xff)
		n--;
	if (n > 0)
		end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
	end[n] = '\0';
	*len = n;
	return end;
}

char *etcd_prefix_end(const char *prefix)
{
	size_t len;

	return prefix_end_bytes(prefix, &len);
}

/* ---- the client ---- */

struct etcd *etcd_new(const struct etcd_opts *o, char *err, size_t errlen)
{
	struct etcd *e;
	int oom = 0;
	size_t i;

	if (o->n_endpoints == 0 || o->n_endpoints > ETCD_MAX_ENDPOINTS) {
		snprintf(err, errlen, "1 to %d endpoints, not %zu",
		         ETCD_MAX_ENDPOINTS, o->n_endpoints);
		return NULL;
	}
	if ((o->user == NULL) != (o->password == NULL)) {
		snprintf(err, errlen, "user and password go together");
		return NULL;
	}
	for (i = 0; i < o->n_endpoints; i++) {
		const char *u = o->endpoints[i];
		size_t skip = strncmp(u, "http://", 7) == 0 ? 7 :
		              strncmp(u, "https://", 8) == 0 ? 8 : 0;

		if (skip == 0 || u[skip] == '\0' || u[skip] == '/' ||
		    strpbrk(u, " \t\r\n?#") != NULL) {
			snprintf(err, errlen, "endpoint %s: not an http:// or "
			         "https:// URL", u);
			return NULL;
		}
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&e->lock, NULL);
	e->n_ep = o->n_endpoints;
	for (i = 0; i < e->n_ep; i++) {
		e->ep[i] = etcd_strdup_or_null(o->endpoints[i], &oom);
		/* The paths we append begin with '/'. */
		if (e->ep[i] != NULL) {
			size_t l = strlen(e->ep[i]);

			while (l > 0 && e->ep[i][l - 1] == '/')
				e->ep[i][--l] = '\0';
		}
	}
	e->ca_file = etcd_strdup_or_null(o->ca_file, &oom);
	e->cert_file = etcd_strdup_or_null(o->cert_file, &oom);
	e->key_file = etcd_strdup_or_null(o->key_file, &oom);
	e->user = etcd_strdup_or_null(o->user, &oom);
	e->password = etcd_strdup_or_null(o->password, &oom);
	e->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : ETCD_DEFAULT_TIMEOUT_MS;
	e->page_limit = o->page_limit > 0 ? o->page_limit : ETCD_PAGE_LIMIT;
	if (oom) {
		snprintf(err, errlen, "out of memory");
		etcd_free(e);
		return NULL;
	}
	return e;
}

void etcd_free(struct etcd *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->n_ep; i++)
		free(e->ep[i]);
	free(e->ca_file);
	free(e->cert_file);
	free(e->key_file);
	free(e->user);
	if (e->password != NULL)
		explicit_bzero(e->password, strlen(e->password));
	free(e->password);
	free(e->token);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

const char *etcd_endpoint(struct etcd *e)
{
	return e->ep[atomic_load(&e->cur) % e->n_ep];
}

void etcd_stop(struct etcd *e)
{
	atomic_store(&e->stop, 1);
}

/* Endpoint idx failed to connect: move on, unless another thread already
 * did. */
static void etcd_rotate(struct etcd *e, size_t idx)
{
	size_t want = idx;

	(void)atomic_compare_exchange_strong(&e->cur, &want, (idx + 1) % e->n_ep);
}

/* What one request's failure means for a retry elsewhere. */
enum att {
	ATT_OK,        /* an HTTP answer (any status) */
	ATT_NOCONN,    /* no connection: nothing was sent */
	ATT_LOST,      /* sent, no complete answer: the outcome is unknown */
	ATT_TOO_BIG,
};

struct etcd_buf {
	char *p;
	size_t len, cap, max;
	int too_big;
};

/* libcurl's write callback: less than given stops the transfer. */
static size_t etcd_buf_write(char *data, size_t size, size_t n, void *ctx)
{
	struct etcd_buf *b = ctx;

	if (buf_append(&b->p, &b->len, &b->cap, b->max, data, size * n) != 0) {
		b->too_big = 1;   /* or out of memory: a refusal all the same */
		return 0;
	}
	return size * n;
}

/* Keepalive for the watch, with a probe count curl 7.88 cannot set: a
 * silent peer is declared dead after about 2 + 3 x 1 s; TCP_USER_TIMEOUT
 * does the same for data that is never acknowledged. */
static int etcd_sockopt(void *ctx, curl_socket_t fd, curlsocktype purpose)
{
	int one = 1, idle = 2, intvl = 1, cnt = 3;
	unsigned int uto = 5000;

	(void)ctx;
	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKOPT_OK;
	/* Best effort: a socket without them still works, only slower to
	 * notice a dead peer. */
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto));
	return CURL_SOCKOPT_OK;
}

/* A POST handle for endpoint idx + path; *hdr is the header list to free. */
static CURL *etcd_handle(struct etcd *e, size_t idx, const char *path,
                         const char *body, const char *token,
                         struct curl_slist **hdr, char *cerr)
{
	char url[2048], auth[4096];
	struct curl_slist *h = NULL, *t;
	CURL *c;

	*hdr = NULL;
	if ((size_t)snprintf(url, sizeof(url), "%s%s", e->ep[idx], path) >= sizeof(url))
		return NULL;
	h = curl_slist_append(NULL, "Content-Type: application/json");
	if (h != NULL && token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: %s", token);
		t = curl_slist_append(h, auth);
		explicit_bzero(auth, sizeof(auth));
		if (t == NULL) {
			curl_slist_free_all(h);
			h = NULL;
		}
	}
	c = h != NULL ? curl_easy_init() : NULL;
	if (c == NULL) {
		curl_slist_free_all(h);
		return NULL;
	}
	*hdr = h;
	(void)curl_easy_setopt(c, CURLOPT_URL, url);
	(void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	/* The agent's environment is not its configuration. */
	(void)curl_easy_setopt(c, CURLOPT_PROXY, "");
	(void)curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	(void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, e->timeout_ms);
	(void)curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	(void)curl_easy_setopt(c, CURLOPT_USERAGENT, "mtls-spoa/" MTLS_VERSION);
	(void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	(void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	(void)curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
	                       (curl_off_t)strlen(body));
	if (e->ca_file != NULL)
		(void)curl_easy_setopt(c, CURLOPT_CAINFO, e->ca_file);
	if (e->cert_file != NULL)
		(void)curl_easy_setopt(c, CURLOPT_SSLCERT, e->cert_file);
	if (e->key_file != NULL)
		(void)curl_easy_setopt(c, CURLOPT_SSLKEY, e->key_file);
	return c;
}

/* Whether a failed transfer ever sent the request. */
static enum att etcd_classify(CURL *c, CURLcode rc)
{
	curl_off_t pre = 0;

	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
		return ATT_NOCONN;
	default:
		break;
	}
	/* A timeout before the request went out (connect, TLS handshake). */
	if (curl_easy_getinfo(c, CURLINFO_PRETRANSFER_TIME_T, &pre) == CURLE_OK &&
	    pre == 0)
		return ATT_NOCONN;
	return ATT_LOST;
}

/* One POST to endpoint idx: the answer's status and body (*out, owned by
 * the caller, also on a non-200 status). */
static enum att etcd_attempt(struct etcd *e, size_t idx, const char *path,
                             const char *body, const char *token,
                             long *status, struct etcd_buf *out,
                             char *err, size_t errlen)
{
	char cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr;
	enum att a = ATT_OK;
	CURLcode rc;
	CURL *c;

	*status = 0;
	memset(out, 0, sizeof(*out));
	out->max = ETCD_MAX_RESPONSE;
	c = etcd_handle(e, idx, path, body, token, &hdr, cerr);
	if (c == NULL) {
		snprintf(err, errlen, "cannot start a transfer");
		return ATT_NOCONN;
	}
	(void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, e->timeout_ms);
	(void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, etcd_buf_write);
	(void)curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	rc = curl_easy_perform(c);
	if (out->too_big) {
		snprintf(err, errlen, "%s: answer larger than %u bytes",
		         e->ep[idx], ETCD_MAX_RESPONSE);
		a = ATT_TOO_BIG;
	} else if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", e->ep[idx],
		         cerr[0] ? cerr : curl_easy_strerror(rc));
		a = etcd_classify(c, rc);
	} else {
		(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	}
	curl_easy_cleanup(c);
	curl_slist_free_all(hdr);
	if (a != ATT_OK) {
		free(out->p);
		memset(out, 0, sizeof(*out));
	}
	return a;
}

static int is_token_error(const char *msg)
{
	return strstr(msg, "invalid auth token") != NULL ||
	       strstr(msg, "auth token expired") != NULL ||
	       strstr(msg, "token expired") != NULL;
}

/* The token for a request (malloc'd copy, NULL without authentication).
 * Authenticates on endpoint idx when there is none yet. */
static enum att etcd_token(struct etcd *e, size_t idx, char **tok,
                           char *err, size_t errlen)
{
	struct etcd_buf b;
	json_t *req, *root;
	char *body;
	long status;
	enum att a;
	int code = 0;
	char msg[256] = "";

	*tok = NULL;
	if (e->user == NULL)
		return ATT_OK;
	pthread_mutex_lock(&e->lock);
	if (e->token != NULL)
		*tok = strdup(e->token);
	pthread_mutex_unlock(&e->lock);
	if (*tok != NULL)
		return ATT_OK;
	req = json_pack("{ssss}", "name", e->user, "password", e->password);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (body == NULL) {
		snprintf(err, errlen, "out of memory");
		return ATT_TOO_BIG;
	}
	a = etcd_attempt(e, idx, "/v3/auth/authenticate", body, NULL, &status,
	                 &b, err, errlen);
	explicit_bzero(body, strlen(body));
	free(body);
	if (a != ATT_OK)
		return a;
	root = json_parse(b.p ? b.p : "", b.len, err, errlen);
	free(b.p);
	if (root == NULL)
		return ATT_TOO_BIG;
	if (error_text(root, msg, sizeof(msg), &code) || status != 200 ||
	    !json_is_string(json_object_get(root, "token"))) {
		snprintf(err, errlen, "%s: authentication failed: %s", e->ep[idx],
		         code || msg[0] ? msg : "no token");
		json_decref(root);
		return ATT_TOO_BIG;
	}
	*tok = strdup(json_string_value(json_object_get(root, "token")));
	json_decref(root);
	if (*tok == NULL) {
		snprintf(err, errlen, "out of memory");
		return ATT_TOO_BIG;
	}
	pthread_mutex_lock(&e->lock);
	free(e->token);
	e->token = strdup(*tok);
	pthread_mutex_unlock(&e->lock);
	return ATT_OK;
}

/* etcd refused our token: forget it so the next request authenticates. */
static void etcd_drop_token(struct etcd *e, const char *tok)
{
	pthread_mutex_lock(&e->lock);
	if (e->token != NULL && tok != NULL && strcmp(e->token, tok) == 0) {
		free(e->token);
		e->token = NULL;
	}
	pthread_mutex_unlock(&e->lock);
}

/* POST body to path on the current endpoint, failing over on connection
 * failures: ETCD_OK with the 200 answer in *out (malloc'd, NUL-terminated)
 * or an error. A request that may have been applied (`once`: a txn) is
 * retried elsewhere only when it was never sent. */
static int etcd_call(struct etcd *e, const char *path, const char *body,
                     int once, char **out, size_t *outlen, int *grpc_code,
                     char *err, size_t errlen)
{
	size_t start = atomic_load(&e->cur), i;
	int reauth = 0;

	*out = NULL;
	*outlen = 0;
	*grpc_code = 0;
	snprintf(err, errlen, "no endpoint");
	for (i = 0; i < e->n_ep; i++) {
		size_t idx = (start + i) % e->n_ep;
		struct etcd_buf b;
		char *tok, msg[256];
		json_t *root;
		long status;
		enum att a;
		int code;

		/* Authentication is idempotent: any failure to reach this
		 * endpoint for it moves on, whatever the request. */
		a = etcd_token(e, idx, &tok, err, errlen);
		if (a == ATT_NOCONN || a == ATT_LOST) {
			etcd_rotate(e, idx);
			continue;
		}
		if (a == ATT_OK) {
			a = etcd_attempt(e, idx, path, body, tok, &status, &b, err,
			                 errlen);
		}
		if (a == ATT_NOCONN || (a == ATT_LOST && !once)) {
			free(tok);
			etcd_rotate(e, idx);
			continue;
		}
		if (a == ATT_LOST) {
			size_t l = strlen(err);

			snprintf(err + l, errlen - l, " (the outcome is unknown)");
			free(tok);
			return ETCD_UNAVAILABLE;
		}
		if (a == ATT_TOO_BIG) {
			free(tok);
			return ETCD_ERROR;
		}
		if (status == 200) {
			free(tok);
			*out = b.p ? b.p : strdup("");
			*outlen = b.len;
			return *out != NULL ? ETCD_OK : ETCD_ERROR;
		}
		root = json_parse(b.p ? b.p : "", b.len, msg, sizeof(msg));
		free(b.p);
		if (root == NULL || !error_text(root, msg, sizeof(msg), &code)) {
			snprintf(msg, sizeof(msg), "HTTP status %ld", status);
			code = 0;
		}
		json_decref(root);
		if (is_token_error(msg) && e->user != NULL && !reauth) {
			/* The token expired (or etcd restarted): once more with a
			 * new one. Nothing was applied. */
			etcd_drop_token(e, tok);
			free(tok);
			reauth = 1;
			i--;
			continue;
		}
		free(tok);
		snprintf(err, errlen, "%s: etcd: %s", e->ep[idx], msg);
		*grpc_code = code;
		/* No leader, or a member that is stopping: another may serve. */
		if (code == GRPC_UNAVAILABLE && !once) {
			etcd_rotate(e, idx);
			continue;
		}
		return code == GRPC_UNAVAILABLE ? ETCD_UNAVAILABLE : ETCD_ERROR;
	}
	return ETCD_UNAVAILABLE;
}

/* {"key": b64(key[klen]), "range_end": b64(end[elen])}, end if elen. */
static int json_set_bytes(json_t *o, const char *name, const void *p, size_t n)
{
	char *s = b64_encode(p, n);
	int rc;

	if (s == NULL)
		return -1;
	rc = json_object_set_new(o, name, json_string(s));
	free(s);
	return rc;
}

static char *json_dump_free(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s;
}

/* One range page from key[klen] (at revision rev when > 0). */
static int range_page(struct etcd *e, const char *key, size_t klen,
                      const char *end, size_t elen, int64_t rev,
                      int64_t *page_rev, struct etcd_kv **kvs, size_t *n,
                      int *more, int *code, char *err, size_t errlen)
{
	char revs[32], *body, *ans;
	size_t alen;
	json_t *req = json_object();
	int rc;

	*kvs = NULL;
	*n = 0;
	*more = 0;
	*code = 0;
	snprintf(revs, sizeof(revs), "%lld", (long long)rev);
	/* No end: "\0", every key >= key (etcd's "from key" range). */
	if (req == NULL || json_set_bytes(req, "key", key, klen) != 0 ||
	    json_set_bytes(req, "range_end", elen ? end : "", elen ? elen : 1) != 0 ||
	    json_object_set_new(req, "limit", json_integer((json_int_t)e->page_limit)) != 0 ||
	    (rev > 0 && json_object_set_new(req, "revision", json_string(revs)) != 0)) {
		json_decref(req);
		snprintf(err, errlen, "out of memory");
		return ETCD_ERROR;
	}
	body = json_dump_free(req);
	if (body == NULL) {
		snprintf(err, errlen, "out of memory");
		return ETCD_ERROR;
	}
	rc = etcd_call(e, "/v3/kv/range", body, 0, &ans, &alen, code, err, errlen);
	free(body);
	if (rc != ETCD_OK)
		return rc;
	if (etcd_parse_range(ans, alen, page_rev, kvs, n, more, err, errlen) != 0)
		rc = ETCD_ERROR;
	free(ans);
	return rc;
}

static int range_once(struct etcd *e, const char *prefix, int64_t *revision,
                      struct etcd_kv **kvs, size_t *n, int *compacted,
                      char *err, size_t errlen)
{
	size_t elen, klen = strlen(prefix), cap = 0;
	char *end = prefix_end_bytes(prefix, &elen);
	char *key = malloc(klen + 1);
	int64_t rev = 0;
	int rc = ETCD_OK, more = 1;

	*kvs = NULL;
	*n = 0;
	*compacted = 0;
	if (end == NULL || key == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = ETCD_ERROR;
		goto out;
	}
	memcpy(key, prefix, klen + 1);
	while (more) {
		struct etcd_kv *page, *grown;
		size_t pn, i;
		int64_t prev;
		int code;

		rc = range_page(e, key, klen, end, elen, rev, &prev, &page, &pn,
		                &more, &code, err, errlen);
		if (rc != ETCD_OK) {
			/* The pinned revision was compacted between two pages. */
			*compacted = rev > 0 && code == 11 && strstr(err, "compacted");
			goto out;
		}
		if (rev == 0)
			rev = prev;
		if (more && pn == 0) {
			etcd_kvs_free(page, pn);
			snprintf(err, errlen, "etcd: more keys announced, none sent");
			rc = ETCD_ERROR;
			goto out;
		}
		if (pn > ETCD_MAX_KEYS - *n) {
			etcd_kvs_free(page, pn);
			snprintf(err, errlen, "more than %u keys", ETCD_MAX_KEYS);
			rc = ETCD_ERROR;
			goto out;
		}
		if (*n + pn > cap) {
			size_t ncap = cap ? cap : 64;

			while (ncap < *n + pn)
				ncap *= 2;
			grown = realloc(*kvs, ncap * sizeof(**kvs));
			if (grown == NULL) {
				etcd_kvs_free(page, pn);
				snprintf(err, errlen, "out of memory");
				rc = ETCD_ERROR;
				goto out;
			}
			*kvs = grown;
			cap = ncap;
		}
		for (i = 0; i < pn; i++)
			(*kvs)[(*n)++] = page[i];   /* moved: page keeps no owner */
		free(page);
		if (more) {
			/* The next page starts just after the last key. */
			const struct etcd_kv *last = &(*kvs)[*n - 1];
			char *nk = malloc(last->key_len + 1);

			if (nk == NULL) {
				snprintf(err, errlen, "out of memory");
				rc = ETCD_ERROR;
				goto out;
			}
			memcpy(nk, last->key, last->key_len);
			nk[last->key_len] = '\0';
			free(key);
			key = nk;
			klen = last->key_len + 1;
		}
	}
	*revision = rev;
out:
	free(end);
	free(key);
	if (rc != ETCD_OK) {
		etcd_kvs_free(*kvs, *n);
		*kvs = NULL;
		*n = 0;
	}
	return rc;
}

int etcd_range(struct etcd *e, const char *prefix, int64_t *revision,
               struct etcd_kv **kvs, size_t *n, char *err, size_t errlen)
{
	int rc, compacted, tries;

	*revision = 0;
	for (tries = 0; ; tries++) {
		rc = range_once(e, prefix, revision, kvs, n, &compacted, err, errlen);
		if (rc == ETCD_OK || !compacted || tries == ETCD_RANGE_RESTARTS)
			return rc;
	}
}

static const char *const target_names[] = {
	[ETCD_TARGET_VERSION] = "VERSION",
	[ETCD_TARGET_CREATE] = "CREATE",
	[ETCD_TARGET_MOD] = "MOD",
};
static const char *const target_fields[] = {
	[ETCD_TARGET_VERSION] = "version",
	[ETCD_TARGET_CREATE] = "create_revision",
	[ETCD_TARGET_MOD] = "mod_revision",
};
static const char *const result_names[] = {
	[ETCD_EQUAL] = "EQUAL",
	[ETCD_GREATER] = "GREATER",
	[ETCD_LESS] = "LESS",
	[ETCD_NOT_EQUAL] = "NOT_EQUAL",
};

static char *txn_body(const struct etcd_cmp *cmp, size_t n_cmp,
                      const struct etcd_op *ops, size_t n_ops)
{
	json_t *req = json_object(), *ca = json_array(), *sa = json_array();
	int bad = req == NULL || ca == NULL || sa == NULL;
	size_t i;

	for (i = 0; !bad && i < n_cmp; i++) {
		const struct etcd_cmp *c = &cmp[i];
		json_t *o = json_object();
		char v[32];

		if ((unsigned)c->target > ETCD_TARGET_MOD ||
		    (unsigned)c->result > ETCD_NOT_EQUAL || c->key == NULL) {
			json_decref(o);
			bad = 1;
			break;
		}
		snprintf(v, sizeof(v), "%lld", (long long)c->value);
		bad = o == NULL ||
		      json_set_bytes(o, "key", c->key, strlen(c->key)) != 0 ||
		      (c->range_end != NULL &&
		       json_set_bytes(o, "range_end", c->range_end,
		                      strlen(c->range_end)) != 0) ||
		      json_object_set_new(o, "target",
		                          json_string(target_names[c->target])) != 0 ||
		      json_object_set_new(o, "result",
		                          json_string(result_names[c->result])) != 0 ||
		      json_object_set_new(o, target_fields[c->target],
		                          json_string(v)) != 0;
		if (json_array_append_new(ca, o) != 0)
			bad = 1;
	}
	for (i = 0; !bad && i < n_ops; i++) {
		const struct etcd_op *op = &ops[i];
		json_t *o = json_object(), *w;

		bad = o == NULL || op->key == NULL ||
		      json_set_bytes(o, "key", op->key, strlen(op->key)) != 0 ||
		      (op->value != NULL &&
		       json_set_bytes(o, "value", op->value, op->value_len) != 0);
		if (bad) {
			json_decref(o);
			break;
		}
		/* json_object_set_new and json_array_append_new release what
		 * they were given even when they fail. */
		w = json_object();
		bad = json_object_set_new(w, op->value != NULL ? "request_put"
		                                               : "request_delete_range",
		                          o) != 0;
		if (json_array_append_new(sa, w) != 0)
			bad = 1;
	}
	if (!bad)
		bad = json_object_set(req, "compare", ca) != 0 ||
		      json_object_set(req, "success", sa) != 0;
	json_decref(ca);
	json_decref(sa);
	if (bad) {
		json_decref(req);
		return NULL;
	}
	return json_dump_free(req);
}

int etcd_txn(struct etcd *e, const struct etcd_cmp *cmp, size_t n_cmp,
             const struct etcd_op *ops, size_t n_ops, int64_t *revision,
             char *err, size_t errlen)
{
	char *body = txn_body(cmp, n_cmp, ops, n_ops), *ans;
	size_t alen;
	json_t *root, *hdr;
	int rc, ok, code;

	*revision = 0;
	if (body == NULL) {
		snprintf(err, errlen, "cannot encode the transaction");
		return ETCD_ERROR;
	}
	rc = etcd_call(e, "/v3/kv/txn", body, 1, &ans, &alen, &code, err, errlen);
	free(body);
	if (rc != ETCD_OK)
		return rc;
	root = json_parse(ans, alen, err, errlen);
	free(ans);
	if (root == NULL)
		return ETCD_ERROR;
	hdr = json_object_get(root, "header");
	if (!json_is_object(hdr) || json_int64(hdr, "revision", revision) != 0 ||
	    *revision <= 0 || json_flag(root, "succeeded", &ok) != 0) {
		snprintf(err, errlen, "etcd: a txn answer without its revision");
		json_decref(root);
		*revision = 0;
		return ETCD_ERROR;
	}
	json_decref(root);
	if (!ok) {
		snprintf(err, errlen, "a compare failed");
		return ETCD_CONFLICT;
	}
	return ETCD_OK;
}

/* ---- watch ---- */

static long long etcd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct watch_ctx {
	struct etcd *e;
	CURL *c;
	struct etcd_framer f;
	etcd_watch_fn fn;
	void *ctx;
	int64_t *compact_revision;
	int rc;                         /* 1: running; else the result */
	int got_bytes, created, token_error;
	long status;
	char *err;
	size_t errlen;
};

/* One framed message of the stream. Nonzero ends the watch (w->rc). */
static int watch_msg(void *ctx, const char *json, size_t len)
{
	struct watch_ctx *w = ctx;
	struct etcd_watch_msg m;

	if (etcd_parse_watch(json, len, &m, w->err, w->errlen) != 0) {
		w->token_error = is_token_error(w->err);
		w->rc = ETCD_ERROR;
		return 1;
	}
	if (w->status != 200) {
		snprintf(w->err, w->errlen, "etcd: HTTP status %ld", w->status);
		w->rc = ETCD_ERROR;
		etcd_watch_msg_free(&m);
		return 1;
	}
	if (m.created)
		w->created = 1;
	if (m.canceled) {
		if (m.compact_revision > 0) {
			*w->compact_revision = m.compact_revision;
			snprintf(w->err, w->errlen, "compacted at revision %lld",
			         (long long)m.compact_revision);
			w->rc = ETCD_COMPACTED;
		} else {
			snprintf(w->err, w->errlen, "etcd canceled the watch: %s",
			         m.cancel_reason[0] ? m.cancel_reason : "no reason");
			w->token_error = is_token_error(m.cancel_reason);
			w->rc = ETCD_ERROR;
		}
		etcd_watch_msg_free(&m);
		return 1;
	}
	/* created and progress messages carry no events: nothing to apply. */
	if (m.n_ev > 0 && w->fn(w->ctx, m.revision, m.ev, m.n_ev) != 0) {
		snprintf(w->err, w->errlen, "stopped by the caller");
		w->rc = ETCD_STOPPED;
	}
	etcd_watch_msg_free(&m);
	return w->rc != 1;
}

static size_t watch_write(char *data, size_t size, size_t n, void *ctx)
{
	struct watch_ctx *w = ctx;
	int rc;

	if (!w->got_bytes) {
		w->got_bytes = 1;
		(void)curl_easy_getinfo(w->c, CURLINFO_RESPONSE_CODE, &w->status);
	}
	rc = etcd_framer_feed(&w->f, data, size * n, watch_msg, w);
	if (rc == -1) {
		snprintf(w->err, w->errlen, "etcd: watch stream not JSON objects "
		         "or a message larger than %u bytes", ETCD_MAX_MESSAGE);
		w->rc = ETCD_ERROR;
	}
	return rc == 0 ? size * n : 0;   /* 0 aborts the transfer */
}

/* One watch on endpoint idx until it ends. ATT_NOCONN: try the next. */
static enum att watch_once(struct etcd *e, size_t idx, const char *body,
                           const char *tok, struct watch_ctx *w)
{
	char cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = NULL;
	CURLM *m = curl_multi_init();
	enum att a = ATT_OK;
	CURLcode done = CURLE_OK;
	int finished = 0;
	long long deadline;

	w->c = m ? etcd_handle(e, idx, "/v3/watch", body, tok, &hdr, cerr) : NULL;
	if (w->c == NULL) {
		if (m != NULL)
			curl_multi_cleanup(m);
		snprintf(w->err, w->errlen, "cannot start a transfer");
		w->rc = ETCD_ERROR;
		return ATT_OK;
	}
	/* No total timeout: a watch lasts; death is found by keepalive. */
	(void)curl_easy_setopt(w->c, CURLOPT_SOCKOPTFUNCTION, etcd_sockopt);
	(void)curl_easy_setopt(w->c, CURLOPT_WRITEFUNCTION, watch_write);
	(void)curl_easy_setopt(w->c, CURLOPT_WRITEDATA, w);
	if (curl_multi_add_handle(m, w->c) != CURLM_OK) {
		snprintf(w->err, w->errlen, "cannot start a transfer");
		w->rc = ETCD_ERROR;
		finished = 1;
	}
	/* The multi interface so that etcd_stop is seen every ETCD_POLL_MS,
	 * however quiet the stream (a progress callback may wait 1 s). */
	deadline = etcd_now_ms() + 2 * e->timeout_ms;
	while (!finished) {
		CURLMsg *msg;
		int running, left;

		if (atomic_load(&e->stop)) {
			snprintf(w->err, w->errlen, "stopped");
			w->rc = ETCD_STOPPED;
			break;
		}
		/* Connected but etcd never confirmed the watch (a hung member,
		 * or not etcd): nothing was started there, try the next. */
		if (!w->created && etcd_now_ms() > deadline) {
			snprintf(w->err, w->errlen, "%s: the watch was not created "
			         "within %ld ms", e->ep[idx], 2 * e->timeout_ms);
			a = ATT_NOCONN;
			break;
		}
		if (curl_multi_perform(m, &running) != CURLM_OK) {
			snprintf(w->err, w->errlen, "curl multi failed");
			w->rc = ETCD_ERROR;
			break;
		}
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			if (msg->msg == CURLMSG_DONE) {
				finished = 1;
				done = msg->data.result;
			}
		}
		if (finished || w->rc != 1)
			break;
		if (curl_multi_poll(m, NULL, 0, ETCD_POLL_MS, NULL) != CURLM_OK) {
			snprintf(w->err, w->errlen, "curl multi poll failed");
			w->rc = ETCD_ERROR;
			break;
		}
	}
	if (w->rc == 1 && finished) {
		if (done != CURLE_OK && !w->got_bytes &&
		    etcd_classify(w->c, done) == ATT_NOCONN) {
			snprintf(w->err, w->errlen, "%s: %s", e->ep[idx],
			         cerr[0] ? cerr : curl_easy_strerror(done));
			a = ATT_NOCONN;
		} else {
			/* The server closed the stream (or the network did). */
			snprintf(w->err, w->errlen, "%s: watch connection lost: %s",
			         e->ep[idx], done != CURLE_OK ? (cerr[0] ? cerr :
			         curl_easy_strerror(done)) : "closed by the server");
			w->rc = ETCD_UNAVAILABLE;
		}
	}
	(void)curl_multi_remove_handle(m, w->c);
	curl_easy_cleanup(w->c);
	w->c = NULL;
	curl_multi_cleanup(m);
	curl_slist_free_all(hdr);
	return a;
}

int etcd_watch(struct etcd *e, const char *prefix, int64_t start_revision,
               etcd_watch_fn fn, void *ctx, int64_t *compact_revision,
               char *err, size_t errlen)
{
	size_t elen, start = atomic_load(&e->cur), i;
	char *end = prefix_end_bytes(prefix, &elen), *body, revs[32];
	json_t *req = json_object(), *cr = json_object();
	int reauth = 0, rc = ETCD_UNAVAILABLE;

	*compact_revision = 0;
	snprintf(revs, sizeof(revs), "%lld", (long long)start_revision);
	if (end == NULL || req == NULL || cr == NULL ||
	    json_set_bytes(cr, "key", prefix, strlen(prefix)) != 0 ||
	    json_set_bytes(cr, "range_end", elen ? end : "", elen ? elen : 1) != 0 ||
	    (start_revision > 0 &&
	     json_object_set_new(cr, "start_revision", json_string(revs)) != 0) ||
	    json_object_set_new(cr, "progress_notify", json_true()) != 0 ||
	    json_object_set(req, "create_request", cr) != 0) {
		free(end);
		json_decref(cr);
		json_decref(req);
		snprintf(err, errlen, "out of memory");
		return ETCD_ERROR;
	}
	free(end);
	json_decref(cr);
	body = json_dump_free(req);
	if (body == NULL) {
		snprintf(err, errlen, "out of memory");
		return ETCD_ERROR;
	}
	snprintf(err, errlen, "no endpoint");
	for (i = 0; i < e->n_ep; i++) {
		size_t idx = (start + i) % e->n_ep;
		struct watch_ctx w = {
			.e = e, .fn = fn, .ctx = ctx, .rc = 1,
			.compact_revision = compact_revision,
			.err = err, .errlen = errlen,
		};
		char *tok;
		enum att a;

		if (atomic_load(&e->stop)) {
			snprintf(err, errlen, "stopped");
			rc = ETCD_STOPPED;
			break;
		}
		a = etcd_token(e, idx, &tok, err, errlen);
		if (a == ATT_OK)
			a = watch_once(e, idx, body, tok, &w);
		else if (a == ATT_LOST)
			a = ATT_NOCONN;
		else if (a != ATT_NOCONN)
			w.rc = ETCD_ERROR;
		etcd_framer_free(&w.f);
		if (w.token_error && e->user != NULL && !reauth) {
			etcd_drop_token(e, tok);
			free(tok);
			reauth = 1;
			i--;
			continue;
		}
		free(tok);
		if (a == ATT_NOCONN) {
			etcd_rotate(e, idx);
			rc = ETCD_UNAVAILABLE;
			continue;
		}
		rc = w.rc;
		break;
	}
	free(body);
	return rc;
}
