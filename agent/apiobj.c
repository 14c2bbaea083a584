/*
 * apiobj.c - JSON views, entity tags and the stored state of the API's
 * objects (see apiobj.h).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "apiobj.h"
#include "ocsp.h"
#include "fileio.h"
#include "hex.h"
#include "hosts.h"
#include "policy.h"
#include "trust.h"

static const char *const apiobj_purposes[PURPOSE_COUNT] = {
	[PURPOSE_CLIENT] = "client",
	[PURPOSE_ANY] = "any",
};

/* crl_check as the API spells it: "auto" is the key left out. */
static const char *const apiobj_crl_checks[CRL_CHECK_COUNT] = {
	[CRL_CHECK_DEFAULT] = "auto",
	[CRL_CHECK_NONE] = "none",
	[CRL_CHECK_LEAF] = "leaf",
	[CRL_CHECK_CHAIN] = "chain",
};


/* The revocation fields of a CA object: JSON name, [ca] key, whether the
 * value is a duration (written back in the largest whole unit). */
static const struct {
	const char *field, *key;
	int duration;
} apiobj_rev[] = {
	{ "crl_refresh", "crl-refresh", 1 },
	{ "crl_refresh_margin", "crl-refresh-margin", 1 },
	{ "crl_fetch_timeout", "crl-fetch-timeout", 1 },
	{ "crl_stale", "crl-stale", 0 },
	{ "crl_grace", "crl-grace", 1 },
	{ "ocsp", "ocsp", 0 },
	{ "ocsp_url", "ocsp-url", 0 },
	{ "ocsp_timeout", "ocsp-timeout", 1 },
	{ "ocsp_max_age", "ocsp-max-age", 1 },
};
#define APIOBJ_NREV (sizeof(apiobj_rev) / sizeof(apiobj_rev[0]))

static void apiobj_duration(unsigned int ms, char *buf, size_t len)
{
	if (ms != 0 && ms % 3600000u == 0)
		snprintf(buf, len, "%uh", ms / 3600000u);
	else if (ms != 0 && ms % 60000u == 0)
		snprintf(buf, len, "%um", ms / 60000u);
	else if (ms != 0 && ms % 1000u == 0)
		snprintf(buf, len, "%us", ms / 1000u);
	else
		snprintf(buf, len, "%ums", ms);
}

/* Field k of `r` as the file writes it into buf; 0 when it is the default
 * (nothing to write), 1 otherwise. */
static int apiobj_rev_value(const struct ca_revocation *r, size_t k, char *buf,
                            size_t len)
{
	struct ca_revocation d;
	unsigned int v = 0, dv = 0;

	ca_revocation_defaults(&d);
	switch (k) {
	case 0: v = r->crl_refresh_ms; dv = d.crl_refresh_ms; break;
	case 1: v = r->crl_refresh_margin_ms; dv = d.crl_refresh_margin_ms; break;
	case 2: v = r->crl_fetch_timeout_ms; dv = d.crl_fetch_timeout_ms; break;
	case 3:
		snprintf(buf, len, "%s", r->crl_stale_allow ? "allow" : "deny");
		return r->crl_stale_allow != d.crl_stale_allow;
	case 4: v = r->crl_grace_ms; dv = d.crl_grace_ms; break;
	case 5:
		snprintf(buf, len, "%s", ocsp_mode_str((enum ocsp_mode)r->ocsp_mode));
		return r->ocsp_mode != d.ocsp_mode;
	case 6:
		snprintf(buf, len, "%s", r->ocsp_url != NULL ? r->ocsp_url : "");
		return r->ocsp_url != NULL;
	case 7: v = r->ocsp_timeout_ms; dv = d.ocsp_timeout_ms; break;
	case 8: v = r->ocsp_max_age_ms; dv = d.ocsp_max_age_ms; break;
	default: return 0;
	}
	apiobj_duration(v, buf, len);
	return v != dv;
}

int api_ca_rev_field(const char *key)
{
	if (strcmp(key, "crl_urls") == 0)
		return 1;
	for (size_t k = 0; k < APIOBJ_NREV; k++)
		if (strcmp(apiobj_rev[k].field, key) == 0)
			return 1;
	return 0;
}

/* The JSON name of a [ca] revocation key (for errors). */
static const char *apiobj_rev_field_of(const char *key)
{
	if (strcmp(key, "crl-url") == 0)
		return "crl_urls";
	for (size_t k = 0; k < APIOBJ_NREV; k++)
		if (strcmp(apiobj_rev[k].key, key) == 0)
			return apiobj_rev[k].field;
	return NULL;
}

static int apiobj_rev_add(struct api_ca *c, const char *key, const char *val)
{
	char **k = realloc(c->rev_keys, (c->n_rev + 1) * sizeof(*k)), **v;

	if (k == NULL)
		return -1;
	c->rev_keys = k;
	v = realloc(c->rev_vals, (c->n_rev + 1) * sizeof(*v));
	if (v == NULL)
		return -1;
	c->rev_vals = v;
	c->rev_keys[c->n_rev] = strdup(key);
	c->rev_vals[c->n_rev] = strdup(val);
	if (c->rev_keys[c->n_rev] == NULL || c->rev_vals[c->n_rev] == NULL) {
		free(c->rev_keys[c->n_rev]);
		free(c->rev_vals[c->n_rev]);
		return -1;
	}
	c->n_rev++;
	return 0;
}

static int apiobj_fail(const char **field, const char *f, char *msg,
                       size_t msglen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int apiobj_ini_safe(const char *s);

/* ---- finding objects -------------------------------------------------- */

ssize_t apiobj_find_ca(const struct config *cfg, const char *name)
{
	for (size_t i = 0; cfg != NULL && i < cfg->n_cas; i++)
		if (strcmp(cfg->cas[i]->name, name) == 0)
			return (ssize_t)i;
	return -1;
}

ssize_t apiobj_find_host(const struct config *cfg, const char *pattern,
                         char *why, size_t whylen)
{
	char norm[POLICY_HOST_MAX + 1];
	enum policy_kind kind;

	if (hosts_parse_pattern(pattern, &kind, norm, why, whylen) != 0)
		return -2;
	for (size_t i = 0; cfg != NULL && i < cfg->n_hosts; i++)
		if (cfg->hosts[i]->kind == kind && strcmp(cfg->hosts[i]->name, norm) == 0)
			return (ssize_t)i;
	return -1;
}

int apiobj_ca_is_api(const struct config *cfg, size_t i)
{
	return cfg->api_source != SIZE_MAX && cfg->ca_origin[i].source == cfg->api_source;
}

int apiobj_host_is_api(const struct config *cfg, size_t i)
{
	return cfg->api_source != SIZE_MAX &&
	       cfg->host_origin[i].source == cfg->api_source;
}

void apiobj_origin(const struct config *cfg, const struct config_origin *o,
                   char *buf, size_t len)
{
	snprintf(buf, len, "%s:%d", cfg->sources[o->source].path, o->line);
}

/* ---- JSON of live objects ------------------------------------------- */

static json_t *apiobj_time(const ASN1_TIME *t)
{
	struct tm tm;
	char buf[32];

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return json_null();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

static json_t *apiobj_cert_details(X509 *x)
{
	json_t *o = json_object();
	char dn[TRUST_DN_MAX], hex[2 * 64 + 1];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const ASN1_OCTET_STRING *ski;
	BIGNUM *bn;
	char *serial;

	if (o == NULL)
		return NULL;
	ca_name_str(X509_get_subject_name(x), dn, sizeof(dn));
	json_object_set_new(o, "subject", json_string(dn));
	ca_name_str(X509_get_issuer_name(x), dn, sizeof(dn));
	json_object_set_new(o, "issuer", json_string(dn));
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	serial = bn != NULL ? BN_bn2hex(bn) : NULL;
	if (serial != NULL) {
		for (char *p = serial; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		json_object_set_new(o, "serial", json_string(serial));
	}
	OPENSSL_free(serial);
	BN_free(bn);
	if (X509_digest(x, EVP_sha256(), md, &mdlen) == 1 && mdlen == 32) {
		hex_encode(md, 32, hex);
		json_object_set_new(o, "sha256", json_string(hex));
	}
	ski = X509_get0_subject_key_id(x);
	if (ski != NULL && ski->length > 0 && ski->length <= 64) {
		hex_encode(ski->data, (size_t)ski->length, hex);
		json_object_set_new(o, "ski", json_string(hex));
	}
	json_object_set_new(o, "not_before", apiobj_time(X509_get0_notBefore(x)));
	json_object_set_new(o, "not_after", apiobj_time(X509_get0_notAfter(x)));
	return o;
}

/* The certificates of a CA entry as one normalized PEM text. */
static json_t *apiobj_certs_pem(const struct ca_entry *ca)
{
	BIO *b = BIO_new(BIO_s_mem());
	json_t *s = NULL;
	char *p;
	long n;

	if (b == NULL)
		return NULL;
	for (int i = 0; i < sk_X509_num(ca->certs); i++)
		if (PEM_write_bio_X509(b, sk_X509_value(ca->certs, i)) != 1)
			goto out;
	n = BIO_get_mem_data(b, &p);
	s = json_stringn(p, (size_t)n);
out:
	BIO_free(b);
	return s;
}

/* The text of the state's CRL files (PEM, written by the API). */
static json_t *apiobj_crls_pem(const struct ca_entry *ca)
{
	char *all = NULL, *text;
	size_t len = 0, n;
	json_t *s;

	for (size_t i = 0; i < ca->n_crl_files; i++) {
		char *grown;

		if (ca->crl_files[i].url != NULL)
			continue;   /* a crl-url's copy: not part of the object */
		if (file_read(ca->crl_files[i].path, 64 * 1024 * 1024, &text, &n) != 0)
			continue;
		grown = realloc(all, len + n + 1);
		if (grown == NULL) {
			free(text);
			break;
		}
		all = grown;
		memcpy(all + len, text, n);
		len += n;
		all[len] = '\0';
		free(text);
	}
	s = all != NULL ? json_stringn(all, len) : NULL;
	free(all);
	return s;
}

static int apiobj_host_has_ca(const struct host_policy *h, const struct ca_entry *ca)
{
	for (size_t k = 0; h->trust != NULL && k < h->trust->n_cas; k++)
		if (h->trust->cas[k] == ca)
			return 1;
	return 0;
}

json_t *apiobj_ca_hosts(const struct config *cfg, size_t i)
{
	json_t *a = json_array();

	for (size_t h = 0; a != NULL && h < cfg->n_hosts; h++)
		if (apiobj_host_has_ca(cfg->hosts[h], cfg->cas[i]))
			json_array_append_new(a, json_string(cfg->hosts[h]->pattern));
	return a;
}

/* The CA object without "hosts". */
static json_t *apiobj_ca_base(const struct config *cfg, size_t i)
{
	const struct ca_entry *ca = cfg->cas[i];
	json_t *o = json_object(), *details = json_array();
	char where[4200];

	if (o == NULL || details == NULL) {
		json_decref(o);
		json_decref(details);
		return NULL;
	}
	json_object_set_new(o, "name", json_string(ca->name));
	json_object_set_new(o, "certificates", apiobj_certs_pem(ca));
	{
		json_t *urls = json_array();
		char v[CA_MAX_URL + 16];

		for (size_t k = 0; urls != NULL && k < ca->rev.n_crl_urls; k++)
			json_array_append_new(urls, json_string(ca->rev.crl_urls[k]));
		json_object_set_new(o, "crl_urls", urls);
		for (size_t k = 0; k < APIOBJ_NREV; k++)
			if (apiobj_rev_value(&ca->rev, k, v, sizeof(v)) ||
			    strcmp(apiobj_rev[k].field, "ocsp") == 0)
				json_object_set_new(o, apiobj_rev[k].field, json_string(v));
	}
	if (apiobj_ca_is_api(cfg, i)) {
		json_t *crls = apiobj_crls_pem(ca);

		if (crls != NULL)
			json_object_set_new(o, "crls", crls);
		json_object_set_new(o, "source", json_string("api"));
	} else {
		json_t *files = json_array();

		for (size_t k = 0; files != NULL && k < ca->n_crl_files; k++)
			if (ca->crl_files[k].url == NULL)
				json_array_append_new(files, json_string(ca->crl_files[k].path));
		if (files != NULL && json_array_size(files) > 0)
			json_object_set_new(o, "crl_files", files);
		else
			json_decref(files);
		apiobj_origin(cfg, &cfg->ca_origin[i], where, sizeof(where));
		json_object_set_new(o, "source", json_string(where));
	}
	for (int k = 0; k < sk_X509_num(ca->certs); k++)
		json_array_append_new(details, apiobj_cert_details(sk_X509_value(ca->certs, k)));
	json_object_set_new(o, "details", details);
	return o;
}

json_t *apiobj_ca_json(const struct config *cfg, size_t i)
{
	json_t *o = apiobj_ca_base(cfg, i);

	if (o != NULL)
		json_object_set_new(o, "hosts", apiobj_ca_hosts(cfg, i));
	return o;
}

json_t *apiobj_host_json(const struct config *cfg, size_t i)
{
	const struct host_policy *h = cfg->hosts[i];
	const struct trust_policy *tp = h->trust;
	json_t *o = json_object(), *cas = json_array(), *ids = json_array(),
	       *pins = json_array();
	char where[4200], hex[65];

	if (o == NULL || cas == NULL || ids == NULL || pins == NULL) {
		json_decref(o);
		json_decref(cas);
		json_decref(ids);
		json_decref(pins);
		return NULL;
	}
	json_object_set_new(o, "pattern", json_string(h->pattern));
	for (size_t k = 0; tp != NULL && k < tp->n_cas; k++)
		json_array_append_new(cas, json_string(tp->cas[k]->name));
	json_object_set_new(o, "ca", cas);
	json_object_set_new(o, "mode", json_string(config_mode_str(h->mode)));
	for (size_t k = 0; tp != NULL && k < tp->n_identities; k++)
		json_array_append_new(ids, json_string(tp->identities[k]));
	json_object_set_new(o, "allow_identity", ids);
	for (size_t k = 0; tp != NULL && k < tp->n_pins; k++) {
		hex_encode(tp->pins[k], 32, hex);
		json_array_append_new(pins, json_string(hex));
	}
	json_object_set_new(o, "pin_sha256", pins);
	json_object_set_new(o, "purpose", json_string(
		apiobj_purposes[tp != NULL ? tp->purpose : PURPOSE_CLIENT]));
	json_object_set_new(o, "verify_depth", json_integer(tp != NULL ? tp->verify_depth : 5));
	json_object_set_new(o, "crl_check", json_string(
		apiobj_crl_checks[tp == NULL || tp->crl_check_auto ? CRL_CHECK_DEFAULT
		                  : tp->crl_check]));
	if (apiobj_host_is_api(cfg, i)) {
		json_object_set_new(o, "source", json_string("api"));
	} else {
		apiobj_origin(cfg, &cfg->host_origin[i], where, sizeof(where));
		json_object_set_new(o, "source", json_string(where));
	}
	return o;
}

struct apiobj_slot {
	const struct ca_entry *ca;
	size_t index;
};

static int apiobj_slot_cmp(const void *a, const void *b)
{
	const struct apiobj_slot *x = a, *y = b;

	return x->ca < y->ca ? -1 : x->ca > y->ca;
}

/* One pass over the hosts for every CA's "hosts": a list of 1,000 CAs
 * must not scan 10,000 hosts 1,000 times. */
json_t *apiobj_ca_list(const struct config *cfg)
{
	json_t *items = json_array(), **hosts = NULL, *doc;
	size_t n = cfg != NULL ? cfg->n_cas : 0;
	struct apiobj_slot *slots = NULL;

	if (items == NULL)
		return NULL;
	hosts = calloc(n + 1, sizeof(*hosts));
	slots = calloc(n + 1, sizeof(*slots));
	if (hosts == NULL || slots == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		slots[i].ca = cfg->cas[i];
		slots[i].index = i;
	}
	qsort(slots, n, sizeof(*slots), apiobj_slot_cmp);
	for (size_t i = 0; i < n; i++)
		if ((hosts[i] = json_array()) == NULL)
			goto oom;
	for (size_t h = 0; h < (cfg != NULL ? cfg->n_hosts : 0); h++) {
		const struct trust_policy *tp = cfg->hosts[h]->trust;

		for (size_t k = 0; tp != NULL && k < tp->n_cas; k++) {
			struct apiobj_slot key = { .ca = tp->cas[k] }, *hit;

			hit = bsearch(&key, slots, n, sizeof(*slots), apiobj_slot_cmp);
			if (hit != NULL)
				json_array_append_new(hosts[hit->index],
				                      json_string(cfg->hosts[h]->pattern));
		}
	}
	for (size_t i = 0; i < n; i++) {
		json_t *o = apiobj_ca_base(cfg, i);

		if (o == NULL)
			goto oom;
		json_object_set_new(o, "hosts", hosts[i]);
		hosts[i] = NULL;
		json_array_append_new(items, o);
	}
	free(hosts);
	free(slots);
	doc = json_pack("{s:o}", "items", items);
	return doc;
oom:
	for (size_t i = 0; hosts != NULL && i < n; i++)
		json_decref(hosts[i]);
	free(hosts);
	free(slots);
	json_decref(items);
	return NULL;
}

json_t *apiobj_host_list(const struct config *cfg)
{
	json_t *items = json_array();

	if (items == NULL)
		return NULL;
	for (size_t i = 0; cfg != NULL && i < cfg->n_hosts; i++) {
		json_t *o = apiobj_host_json(cfg, i);

		if (o == NULL) {
			json_decref(items);
			return NULL;
		}
		json_array_append_new(items, o);
	}
	return json_pack("{s:o}", "items", items);
}

void apiobj_etag(const json_t *obj, char buf[40])
{
	json_t *copy = json_copy((json_t *)obj);
	unsigned char md[32];
	unsigned int mdlen = 0;
	char *text = NULL;

	buf[0] = '\0';
	if (copy == NULL)
		return;
	json_object_del(copy, "hosts");
	text = json_dumps(copy, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(copy);
	if (text != NULL && EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(),
	                               NULL) == 1) {
		buf[0] = '"';
		hex_encode(md, 16, buf + 1);
		buf[33] = '"';
		buf[34] = '\0';
	}
	free(text);
}

/* ---- the stored state ------------------------------------------------- */

void api_ca_free(struct api_ca *c)
{
	for (size_t i = 0; i < c->n_rev; i++) {
		free(c->rev_keys[i]);
		free(c->rev_vals[i]);
	}
	free(c->rev_keys);
	free(c->rev_vals);
	free(c->name);
	free(c->file);
	for (size_t i = 0; i < c->n_crls; i++)
		free(c->crls[i]);
	free(c->crls);
	memset(c, 0, sizeof(*c));
}

void api_host_free(struct api_host *h)
{
	free(h->pattern);
	for (size_t i = 0; i < h->n_cas; i++)
		free(h->cas[i]);
	free(h->cas);
	for (size_t i = 0; i < h->n_identities; i++)
		free(h->identities[i]);
	free(h->identities);
	free(h->pins);
	memset(h, 0, sizeof(*h));
}

void api_state_free(struct api_state *st)
{
	for (size_t i = 0; i < st->n_cas; i++)
		api_ca_free(&st->cas[i]);
	free(st->cas);
	for (size_t i = 0; i < st->n_hosts; i++)
		api_host_free(&st->hosts[i]);
	free(st->hosts);
	free(st->ca_idx.slot);
	free(st->host_idx.slot);
	memset(st, 0, sizeof(*st));
}

/* `path` relative to the state directory (the API writes only there). */
static char *apiobj_rel(const struct config *cfg, const char *path)
{
	size_t n = strlen(cfg->state_dir);

	if (strncmp(path, cfg->state_dir, n) == 0 && path[n] == '/')
		return strdup(path + n + 1);
	return strdup(path);
}

static int apiobj_ca_from_config(const struct config *cfg, size_t i,
                                 struct api_ca *c)
{
	const struct ca_entry *ca = cfg->cas[i];

	memset(c, 0, sizeof(*c));
	c->from = cfg->cas[i];
	c->name = strdup(ca->name);
	c->file = apiobj_rel(cfg, ca->file);
	c->crls = calloc(ca->n_crl_files + 1, sizeof(*c->crls));
	if (c->name == NULL || c->file == NULL || c->crls == NULL)
		return -1;
	for (size_t k = 0; k < ca->n_crl_files; k++) {
		if (ca->crl_files[k].url != NULL)
			continue;   /* from crl-url, below */
		if ((c->crls[c->n_crls] = apiobj_rel(cfg, ca->crl_files[k].path)) == NULL)
			return -1;
		c->n_crls++;
	}
	for (size_t k = 0; k < ca->rev.n_crl_urls; k++)
		if (apiobj_rev_add(c, "crl-url", ca->rev.crl_urls[k]) != 0)
			return -1;
	for (size_t k = 0; k < APIOBJ_NREV; k++) {
		char v[CA_MAX_URL + 16];

		if (apiobj_rev_value(&ca->rev, k, v, sizeof(v)) &&
		    apiobj_rev_add(c, apiobj_rev[k].key, v) != 0)
			return -1;
	}
	return 0;
}

int api_ca_rev_from_json(const json_t *body, struct api_ca *c,
                         const char **field, char *msg, size_t msglen)
{
	struct ca_revocation r;
	const json_t *urls = json_object_get(body, "crl_urls"), *e;
	size_t i;
	int rc = -1;

	*field = NULL;
	ca_revocation_defaults(&r);
	if (urls != NULL && !json_is_null(urls) && !json_is_array(urls)) {
		apiobj_fail(field, "crl_urls", msg, msglen, "crl_urls must be an array "
		            "of http(s) URLs");
		goto out;
	}
	json_array_foreach(urls, i, e) {
		const char *u = json_string_value(e);

		if (u == NULL || !apiobj_ini_safe(u)) {
			apiobj_fail(field, "crl_urls", msg, msglen, "crl_urls: each an "
			            "http(s) URL without spaces, ';' or '#'");
			goto out;
		}
		if (ca_revocation_set(&r, "crl-url", u, msg, msglen) != 0) {
			*field = "crl_urls";
			goto out;
		}
		if (apiobj_rev_add(c, "crl-url", u) != 0)
			goto oom;
	}
	for (size_t k = 0; k < APIOBJ_NREV; k++) {
		const json_t *v = json_object_get(body, apiobj_rev[k].field);
		const char *sv = json_string_value(v);

		if (v == NULL || json_is_null(v))
			continue;
		if (sv == NULL || !apiobj_ini_safe(sv)) {
			apiobj_fail(field, apiobj_rev[k].field, msg, msglen, "%s must be "
			            "a string as the [ca] key %s takes%s", apiobj_rev[k].field,
			            apiobj_rev[k].key, apiobj_rev[k].duration ?
			            " (a duration: 500ms, 30s, 2m, 1h)" : "");
			goto out;
		}
		if (ca_revocation_set(&r, apiobj_rev[k].key, sv, msg, msglen) != 0) {
			*field = apiobj_rev[k].field;
			goto out;
		}
		if (apiobj_rev_add(c, apiobj_rev[k].key, sv) != 0)
			goto oom;
	}
	rc = 0;
	goto out;
oom:
	apiobj_fail(field, NULL, msg, msglen, "out of memory");
out:
	ca_revocation_clear(&r);
	return rc;
}

static int apiobj_host_from_config(const struct config *cfg, size_t i,
                                   struct api_host *h)
{
	const struct host_policy *hp = cfg->hosts[i];
	const struct trust_policy *tp = hp->trust;
	size_t ncas = tp != NULL ? tp->n_cas : 0, nids = tp != NULL ? tp->n_identities : 0,
	       npins = tp != NULL ? tp->n_pins : 0;

	memset(h, 0, sizeof(*h));
	h->from = cfg->hosts[i];
	h->pattern = strdup(hp->pattern);
	h->mode = hp->mode;
	h->purpose = tp != NULL ? (int)tp->purpose : PURPOSE_CLIENT;
	h->verify_depth = tp != NULL ? tp->verify_depth : 5;
	h->crl_check = tp == NULL || tp->crl_check_auto ? CRL_CHECK_DEFAULT :
	               (int)tp->crl_check;
	h->cas = calloc(ncas + 1, sizeof(*h->cas));
	h->identities = calloc(nids + 1, sizeof(*h->identities));
	h->pins = calloc(npins + 1, sizeof(*h->pins));
	if (h->pattern == NULL || h->cas == NULL || h->identities == NULL ||
	    h->pins == NULL)
		return -1;
	for (size_t k = 0; k < ncas; k++) {
		if ((h->cas[k] = strdup(tp->cas[k]->name)) == NULL)
			return -1;
		h->n_cas++;
	}
	for (size_t k = 0; k < nids; k++) {
		if ((h->identities[k] = strdup(tp->identities[k])) == NULL)
			return -1;
		h->n_identities++;
	}
	if (npins > 0)
		memcpy(h->pins, tp->pins, npins * sizeof(*h->pins));
	h->n_pins = npins;
	return 0;
}

int api_state_from_config(const struct config *cfg, struct api_state *st)
{
	size_t nc = 0, nh = 0;

	memset(st, 0, sizeof(*st));
	if (cfg == NULL)
		return 0;
	st->cas = calloc(cfg->n_cas + 1, sizeof(*st->cas));
	st->hosts = calloc(cfg->n_hosts + 1, sizeof(*st->hosts));
	if (st->cas == NULL || st->hosts == NULL)
		goto oom;
	for (size_t i = 0; i < cfg->n_cas; i++) {
		if (!apiobj_ca_is_api(cfg, i))
			continue;
		nc++;
		st->n_cas = nc;
		if (apiobj_ca_from_config(cfg, i, &st->cas[nc - 1]) != 0)
			goto oom;
	}
	for (size_t i = 0; i < cfg->n_hosts; i++) {
		if (!apiobj_host_is_api(cfg, i))
			continue;
		nh++;
		st->n_hosts = nh;
		if (apiobj_host_from_config(cfg, i, &st->hosts[nh - 1]) != 0)
			goto oom;
	}
	return 0;
oom:
	api_state_free(st);
	return -1;
}

int api_state_follow(struct api_state *st, const struct config *cfg)
{
	size_t nc = 0, nh = 0;

	for (size_t i = 0; i < cfg->n_cas; i++) {
		struct api_ca *c = &st->cas[nc], fresh;

		if (!apiobj_ca_is_api(cfg, i))
			continue;
		if (nc++ >= st->n_cas || strcmp(c->name, cfg->cas[i]->name) != 0)
			return -1;
		if (c->from != NULL) {
			c->from = cfg->cas[i];
			continue;
		}
		/* Changed: as the generation has it (normalized). */
		if (apiobj_ca_from_config(cfg, i, &fresh) != 0) {
			api_ca_free(&fresh);
			return -1;
		}
		api_ca_free(c);
		*c = fresh;
	}
	for (size_t i = 0; i < cfg->n_hosts; i++) {
		struct api_host *h = &st->hosts[nh], fresh;

		if (!apiobj_host_is_api(cfg, i))
			continue;
		if (nh++ >= st->n_hosts || strcmp(h->pattern, cfg->hosts[i]->pattern) != 0)
			return -1;
		if (h->from != NULL) {
			h->from = cfg->hosts[i];
			continue;
		}
		if (apiobj_host_from_config(cfg, i, &fresh) != 0) {
			api_host_free(&fresh);
			return -1;
		}
		api_host_free(h);
		*h = fresh;
	}
	return nc == st->n_cas && nh == st->n_hosts ? 0 : -1;
}

static uint64_t apiobj_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;     /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static const char *apiobj_key(const struct api_state *st, int host, size_t i)
{
	return host ? st->hosts[i].pattern : st->cas[i].name;
}

static void apiobj_index_put(struct api_index *x, const char *key, size_t pos)
{
	size_t j = (size_t)apiobj_hash(key) & (x->cap - 1);

	while (x->slot[j] != 0)
		j = (j + 1) & (x->cap - 1);
	x->slot[j] = pos + 1;
}

/* 0, or -1 when out of memory (the caller scans instead). */
static int apiobj_index_build(struct api_state *st, int host)
{
	struct api_index *x = host ? &st->host_idx : &st->ca_idx;
	size_t n = host ? st->n_hosts : st->n_cas, cap = 64;

	while (cap < 2 * n + 2)
		cap *= 2;
	free(x->slot);
	x->slot = calloc(cap, sizeof(*x->slot));
	x->valid = x->slot != NULL;
	if (x->slot == NULL)
		return -1;
	x->cap = cap;
	for (size_t i = 0; i < n; i++)
		apiobj_index_put(x, apiobj_key(st, host, i), i);
	return 0;
}

static ssize_t apiobj_state_find(struct api_state *st, int host, const char *key)
{
	struct api_index *x = host ? &st->host_idx : &st->ca_idx;
	size_t n = host ? st->n_hosts : st->n_cas;

	if ((!x->valid || x->cap < 2 * n + 2) && apiobj_index_build(st, host) != 0) {
		for (size_t i = 0; i < n; i++)
			if (strcmp(apiobj_key(st, host, i), key) == 0)
				return (ssize_t)i;
		return -1;
	}
	for (size_t j = (size_t)apiobj_hash(key) & (x->cap - 1); x->slot[j] != 0;
	     j = (j + 1) & (x->cap - 1))
		if (strcmp(apiobj_key(st, host, x->slot[j] - 1), key) == 0)
			return (ssize_t)(x->slot[j] - 1);
	return -1;
}

/* After entry `pos` was appended. */
static void apiobj_state_added(struct api_state *st, int host, size_t pos)
{
	struct api_index *x = host ? &st->host_idx : &st->ca_idx;
	size_t n = host ? st->n_hosts : st->n_cas;

	if (!x->valid)
		return;
	if (x->cap < 2 * n + 2)
		x->valid = 0;           /* rebuilt larger at the next find */
	else
		apiobj_index_put(x, apiobj_key(st, host, pos), pos);
}

ssize_t api_state_find_ca(struct api_state *st, const char *name)
{
	return apiobj_state_find(st, 0, name);
}

ssize_t api_state_find_host(struct api_state *st, const char *pattern)
{
	return apiobj_state_find(st, 1, pattern);
}

void api_state_remove_ca(struct api_state *st, size_t i)
{
	api_ca_free(&st->cas[i]);
	memmove(&st->cas[i], &st->cas[i + 1], (st->n_cas - i - 1) * sizeof(*st->cas));
	st->n_cas--;
	st->ca_idx.valid = 0;
}

void api_state_remove_host(struct api_state *st, size_t i)
{
	api_host_free(&st->hosts[i]);
	memmove(&st->hosts[i], &st->hosts[i + 1],
	        (st->n_hosts - i - 1) * sizeof(*st->hosts));
	st->n_hosts--;
	st->host_idx.valid = 0;
}

int api_state_put_host(struct api_state *st, ssize_t at, struct api_host *h)
{
	struct api_host *a;

	if (at >= 0) {
		int same = strcmp(st->hosts[at].pattern, h->pattern) == 0;

		api_host_free(&st->hosts[at]);
		st->hosts[at] = *h;
		if (!same)
			st->host_idx.valid = 0;
		return 0;
	}
	a = realloc(st->hosts, (st->n_hosts + 1) * sizeof(*a));
	if (a == NULL) {
		api_host_free(h);
		return -1;
	}
	st->hosts = a;
	st->hosts[st->n_hosts++] = *h;
	apiobj_state_added(st, 1, st->n_hosts - 1);
	return 0;
}

int api_state_put_ca(struct api_state *st, ssize_t at, struct api_ca *c)
{
	struct api_ca *a;

	if (at >= 0) {
		int same = strcmp(st->cas[at].name, c->name) == 0;

		api_ca_free(&st->cas[at]);
		st->cas[at] = *c;
		if (!same)
			st->ca_idx.valid = 0;
		return 0;
	}
	a = realloc(st->cas, (st->n_cas + 1) * sizeof(*a));
	if (a == NULL) {
		api_ca_free(c);
		return -1;
	}
	st->cas = a;
	st->cas[st->n_cas++] = *c;
	apiobj_state_added(st, 0, st->n_cas - 1);
	return 0;
}

/* The rendered text and its line map, growing together. */
struct apiobj_out {
	char *p;
	size_t len, cap;
	struct api_line *lines;
	size_t n_lines, cap_lines;
	int err;
};

static void apiobj_line(struct apiobj_out *o, int is_host, size_t index,
                        const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* The line of n bytes just written at o->p + o->len (room for its newline
 * was made): ended, and recorded as `field` of entry `index`. */
static void apiobj_ended(struct apiobj_out *o, size_t n, int is_host,
                         size_t index, const char *field)
{
	o->len += n;
	o->p[o->len++] = '\n';
	o->p[o->len] = '\0';
	o->lines[o->n_lines].is_host = is_host;
	o->lines[o->n_lines].index = index;
	o->lines[o->n_lines].field = field;
	o->n_lines++;
}

static void apiobj_line(struct apiobj_out *o, int is_host, size_t index,
                        const char *field, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->err)
		return;
	if (o->n_lines == o->cap_lines) {
		size_t cap = o->cap_lines ? o->cap_lines * 2 : 256;
		struct api_line *l = realloc(o->lines, cap * sizeof(*l));

		if (l == NULL) {
			o->err = 1;
			return;
		}
		o->lines = l;
		o->cap_lines = cap;
	}
	for (;;) {
		size_t room = o->cap - o->len;

		va_start(ap, fmt);
		n = vsnprintf(o->p != NULL ? o->p + o->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->err = 1;
			return;
		}
		if ((size_t)n + 2 <= room)
			break;
		{
			size_t cap = (o->cap ? o->cap : 4096) * 2 + (size_t)n;
			char *p = realloc(o->p, cap);

			if (p == NULL) {
				o->err = 1;
				return;
			}
			o->p = p;
			o->cap = cap;
		}
	}
	apiobj_ended(o, (size_t)n, is_host, index, field);
}

/* apiobj_line() of the line a b c (b and c may be NULL), without
 * vsnprintf: 10,000 hosts are some 40,000 lines at every write. */
static void apiobj_put(struct apiobj_out *o, int is_host, size_t index,
                       const char *field, const char *a, const char *b,
                       const char *c)
{
	size_t la, lb, lc;

	if (o->err)
		return;
	b = b != NULL ? b : "";
	c = c != NULL ? c : "";
	la = strlen(a);
	lb = strlen(b);
	lc = strlen(c);
	if (o->n_lines == o->cap_lines || o->cap - o->len < la + lb + lc + 2) {
		/* The slow path grows both. */
		apiobj_line(o, is_host, index, field, "%s%s%s", a, b, c);
		return;
	}
	memcpy(o->p + o->len, a, la);
	memcpy(o->p + o->len + la, b, lb);
	memcpy(o->p + o->len + la + lb, c, lc);
	apiobj_ended(o, la + lb + lc, is_host, index, field);
}

char *api_state_render(const struct api_state *st, uint64_t generation,
                       size_t *len, struct api_line **lines, size_t *n_lines)
{
	struct apiobj_out o = { 0 };
	char hex[65];

	apiobj_line(&o, 0, 0, NULL, "; The tenant API's objects, written by mtls-spoa "
	            "(generation %llu). Change them through the API.",
	            (unsigned long long)generation);
	for (size_t i = 0; i < st->n_cas; i++) {
		const struct api_ca *c = &st->cas[i];

		apiobj_put(&o, 0, i, NULL, "", NULL, NULL);
		apiobj_put(&o, 0, i, "name", "[ca ", c->name, "]");
		apiobj_put(&o, 0, i, "certificates", "file = ", c->file, NULL);
		for (size_t k = 0; k < c->n_crls; k++)
			apiobj_put(&o, 0, i, "crls", "crl = ", c->crls[k], NULL);
		for (size_t k = 0; k < c->n_rev; k++)
			apiobj_put(&o, 0, i, apiobj_rev_field_of(c->rev_keys[k]),
			           c->rev_keys[k], " = ", c->rev_vals[k]);
	}
	for (size_t i = 0; i < st->n_hosts; i++) {
		const struct api_host *h = &st->hosts[i];

		apiobj_put(&o, 1, i, NULL, "", NULL, NULL);
		apiobj_put(&o, 1, i, "pattern", "[host ", h->pattern, "]");
		for (size_t k = 0; k < h->n_cas; k++)
			apiobj_put(&o, 1, i, "ca", "ca = ", h->cas[k], NULL);
		apiobj_put(&o, 1, i, "mode", "mode = ", config_mode_str(h->mode), NULL);
		/* Defaults are left out: 10,000 hosts stay a small file. */
		if (h->purpose != PURPOSE_CLIENT)
			apiobj_line(&o, 1, i, "purpose", "purpose = %s",
			            apiobj_purposes[h->purpose]);
		if (h->verify_depth != 5)
			apiobj_line(&o, 1, i, "verify_depth", "verify-depth = %d",
			            h->verify_depth);
		if (h->crl_check != CRL_CHECK_DEFAULT)
			apiobj_line(&o, 1, i, "crl_check", "crl-check = %s",
			            apiobj_crl_checks[h->crl_check]);
		for (size_t k = 0; k < h->n_identities; k++)
			apiobj_put(&o, 1, i, "allow_identity", "allow-identity = ",
			           h->identities[k], NULL);
		for (size_t k = 0; k < h->n_pins; k++) {
			hex_encode(h->pins[k], 32, hex);
			apiobj_line(&o, 1, i, "pin_sha256", "pin-sha256 = %s", hex);
		}
	}
	if (o.err) {
		free(o.p);
		free(o.lines);
		return NULL;
	}
	*len = o.len;
	*lines = o.lines;
	*n_lines = o.n_lines;
	return o.p;
}

/* ---- input ------------------------------------------------------------ */

static int apiobj_fail(const char **field, const char *f, char *msg,
                       size_t msglen, const char *fmt, ...)
{
	va_list ap;

	*field = f;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A JSON array of strings into a malloc'd array (at most max). */
static int apiobj_strings(const json_t *v, const char *name, size_t max,
                          char ***out, size_t *n, const char **field,
                          char *msg, size_t msglen)
{
	size_t i;
	json_t *e;

	*out = NULL;
	*n = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return apiobj_fail(field, name, msg, msglen, "%s must be an array of "
		                   "strings", name);
	if (json_array_size(v) > max)
		return apiobj_fail(field, name, msg, msglen, "%s: at most %zu entries",
		                   name, max);
	*out = calloc(json_array_size(v) + 1, sizeof(**out));
	if (*out == NULL)
		return apiobj_fail(field, NULL, msg, msglen, "out of memory");
	json_array_foreach(v, i, e) {
		if (!json_is_string(e))
			return apiobj_fail(field, name, msg, msglen, "%s must be an array "
			                   "of strings", name);
		if (((*out)[i] = strdup(json_string_value(e))) == NULL)
			return apiobj_fail(field, NULL, msg, msglen, "out of memory");
		(*n)++;
	}
	return 0;
}

/* What the INI line reader would not keep as written: a value is cut at
 * " ;" or " #" (inline comments), trimmed, and ends at a line break. */
static int apiobj_ini_safe(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || c == ';' || c == '#')
			return 0;
	}
	return 1;
}

static int apiobj_enum(const json_t *v, const char *name,
                       const char *const *names, int count, int *out,
                       const char **field, char *msg, size_t msglen)
{
	const char *s;

	if (v == NULL || json_is_null(v))
		return 0;
	s = json_string_value(v);
	for (int i = 0; s != NULL && i < count; i++) {
		if (names[i] != NULL && strcmp(names[i], s) == 0) {
			*out = i;
			return 0;
		}
	}
	{
		char list[128] = "";

		for (int i = 0; i < count; i++)
			if (names[i] != NULL)
				snprintf(list + strlen(list), sizeof(list) - strlen(list),
				         "%s%s", list[0] ? ", " : "", names[i]);
		return apiobj_fail(field, name, msg, msglen, "bad %s%s%s%s (%s)",
		                   name, s ? " \"" : "", s ? s : "", s ? "\"" : "", list);
	}
}

int api_pattern_normalize(const char *in, char *out, size_t outlen, char *why,
                          size_t whylen)
{
	char norm[POLICY_HOST_MAX + 1];
	enum policy_kind kind;
	int n;

	if (hosts_parse_pattern(in, &kind, norm, why, whylen) != 0)
		return -1;
	n = snprintf(out, outlen, "%s%s", kind == POLICY_WILDCARD ? "*." :
	             kind == POLICY_ANY_DEPTH ? "**." : "", norm);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int api_host_from_json(const json_t *body, const char *pattern,
                       struct api_host *h, const char **field, char *msg,
                       size_t msglen)
{
	static const char *const keys[] = {
		"pattern", "ca", "mode", "allow_identity", "pin_sha256", "purpose",
		"verify_depth", "crl_check", "source",
	};
	const char *modes[MODE_COUNT];
	char norm[POLICY_HOST_MAX + 4], why[256];
	const char *key;
	json_t *v, *pins_v;
	char **pins = NULL;
	size_t n_pins = 0;
	int mode = MODE_ENFORCE;

	memset(h, 0, sizeof(*h));
	*field = NULL;
	h->purpose = PURPOSE_CLIENT;
	h->verify_depth = 5;
	h->crl_check = CRL_CHECK_DEFAULT;
	if (!json_is_object(body))
		return apiobj_fail(field, NULL, msg, msglen, "the body must be a JSON object");
	json_object_foreach((json_t *)body, key, v) {
		size_t k;

		for (k = 0; k < sizeof(keys) / sizeof(keys[0]) && strcmp(keys[k], key) != 0; k++)
			;
		if (k == sizeof(keys) / sizeof(keys[0]))
			return apiobj_fail(field, key, msg, msglen, "unknown field \"%s\"", key);
	}
	if (api_pattern_normalize(pattern, norm, sizeof(norm), why, sizeof(why)) != 0)
		return apiobj_fail(field, "pattern", msg, msglen, "%s", why);
	v = json_object_get(body, "pattern");
	if (v != NULL) {
		char n2[POLICY_HOST_MAX + 4];

		if (!json_is_string(v) ||
		    api_pattern_normalize(json_string_value(v), n2, sizeof(n2), why,
		                          sizeof(why)) != 0 || strcmp(n2, norm) != 0)
			return apiobj_fail(field, "pattern", msg, msglen, "pattern does not "
			                   "match the URL's \"%s\"", pattern);
	}
	h->pattern = strdup(norm);
	if (h->pattern == NULL)
		return apiobj_fail(field, NULL, msg, msglen, "out of memory");
	if (apiobj_strings(json_object_get(body, "ca"), "ca", CONFIG_MAX_HOST_CAS,
	                   &h->cas, &h->n_cas, field, msg, msglen) != 0)
		return -1;
	if (h->cas == NULL && (h->cas = calloc(1, sizeof(*h->cas))) == NULL)
		return apiobj_fail(field, NULL, msg, msglen, "out of memory");
	for (size_t k = 0; k < h->n_cas; k++)
		if (!apiobj_ini_safe(h->cas[k]) || strchr(h->cas[k], ' ') != NULL)
			return apiobj_fail(field, "ca", msg, msglen, "bad CA name \"%s\"",
			                   h->cas[k]);
	for (int m = 0; m < MODE_COUNT; m++)
		modes[m] = config_mode_str((enum policy_mode)m);
	if (apiobj_enum(json_object_get(body, "mode"), "mode", modes, MODE_COUNT,
	                &mode, field, msg, msglen) != 0)
		return -1;
	h->mode = mode;
	/* The file's rule, said about the field: off and deny never look at
	 * the certificate, every other mode needs a CA to check it with. */
	if (h->n_cas == 0 && mode != MODE_OFF && mode != MODE_DENY)
		return apiobj_fail(field, "ca", msg, msglen, "ca is required unless "
		                   "mode is off or deny (a host trusts only its own "
		                   "CAs)");
	if (apiobj_enum(json_object_get(body, "purpose"), "purpose", apiobj_purposes,
	                PURPOSE_COUNT, &h->purpose, field, msg, msglen) != 0 ||
	    apiobj_enum(json_object_get(body, "crl_check"), "crl_check",
	                apiobj_crl_checks, CRL_CHECK_COUNT, &h->crl_check, field,
	                msg, msglen) != 0)
		return -1;
	v = json_object_get(body, "verify_depth");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 32)
			return apiobj_fail(field, "verify_depth", msg, msglen,
			                   "bad verify_depth (an integer, 1..32)");
		h->verify_depth = (int)json_integer_value(v);
	}
	if (apiobj_strings(json_object_get(body, "allow_identity"), "allow_identity",
	                   CONFIG_MAX_PER_HOST, &h->identities, &h->n_identities,
	                   field, msg, msglen) != 0)
		return -1;
	if (h->identities == NULL &&
	    (h->identities = calloc(1, sizeof(*h->identities))) == NULL)
		return apiobj_fail(field, NULL, msg, msglen, "out of memory");
	for (size_t k = 0; k < h->n_identities; k++)
		if (strlen(h->identities[k]) > CONFIG_MAX_IDENTITY ||
		    !apiobj_ini_safe(h->identities[k]))
			return apiobj_fail(field, "allow_identity", msg, msglen,
			                   "bad allow_identity \"%.64s\" (1..%d printable "
			                   "characters, no ';' or '#', no leading or "
			                   "trailing space)", h->identities[k],
			                   CONFIG_MAX_IDENTITY);
	pins_v = json_object_get(body, "pin_sha256");
	if (apiobj_strings(pins_v, "pin_sha256", CONFIG_MAX_PER_HOST, &pins, &n_pins,
	                   field, msg, msglen) != 0)
		goto fail_pins;
	h->pins = calloc(n_pins + 1, sizeof(*h->pins));
	if (h->pins == NULL) {
		apiobj_fail(field, NULL, msg, msglen, "out of memory");
		goto fail_pins;
	}
	for (size_t k = 0; k < n_pins; k++) {
		if (config_parse_pin(pins[k], h->pins[k]) != 0) {
			apiobj_fail(field, "pin_sha256", msg, msglen, "bad pin_sha256 "
			            "\"%.80s\" (64 hex digits, colons allowed)", pins[k]);
			goto fail_pins;
		}
		h->n_pins++;
	}
	for (size_t k = 0; k < n_pins; k++)
		free(pins[k]);
	free(pins);
	return 0;
fail_pins:
	for (size_t k = 0; k < n_pins; k++)
		free(pins[k]);
	free(pins);
	return -1;
}

int api_pem_normalize(const char *text, size_t len, int crl, size_t max,
                      char **out, size_t *out_len, size_t *count, char *msg,
                      size_t msglen)
{
	const char *want = crl ? PEM_STRING_X509_CRL : PEM_STRING_X509;
	BIO *in = BIO_new_mem_buf(text, (int)len), *res = BIO_new(BIO_s_mem());
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long dlen;
	int rc = -1;
	char *p;
	long n;

	*out = NULL;
	*count = 0;
	if (in == NULL || res == NULL || len > INT32_MAX) {
		snprintf(msg, msglen, "out of memory");
		goto out;
	}
	while (PEM_read_bio(in, &name, &header, &data, &dlen) == 1) {
		const unsigned char *q = data;
		int ok;

		if (strcmp(name, want) != 0) {
			snprintf(msg, msglen, "a PEM block of type \"%.40s\" (only %s "
			         "blocks are accepted)", name, want);
			goto out;
		}
		if (++*count > max) {
			snprintf(msg, msglen, "more than %zu %s blocks", max, want);
			goto out;
		}
		if (crl) {
			X509_CRL *c = d2i_X509_CRL(NULL, &q, dlen);

			ok = c != NULL && q == data + dlen && PEM_write_bio_X509_CRL(res, c) == 1;
			X509_CRL_free(c);
		} else {
			X509 *x = d2i_X509(NULL, &q, dlen);

			ok = x != NULL && q == data + dlen && PEM_write_bio_X509(res, x) == 1;
			X509_free(x);
		}
		if (!ok) {
			snprintf(msg, msglen, "%s %zu does not parse", crl ? "CRL" :
			         "certificate", *count);
			goto out;
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		name = header = NULL;
		data = NULL;
	}
	/* The loop ends at the first block it cannot read: the end of the
	 * text, or a broken block that must not be dropped silently. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
		snprintf(msg, msglen, "PEM block %zu does not parse", *count + 1);
		goto out;
	}
	ERR_clear_error();
	if (*count == 0) {
		snprintf(msg, msglen, "no PEM %s block found", want);
		goto out;
	}
	n = BIO_get_mem_data(res, &p);
	*out = malloc((size_t)n + 1);
	if (*out == NULL) {
		snprintf(msg, msglen, "out of memory");
		goto out;
	}
	memcpy(*out, p, (size_t)n);
	(*out)[n] = '\0';
	*out_len = (size_t)n;
	rc = 0;
out:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(in);
	BIO_free(res);
	ERR_clear_error();
	return rc;
}
