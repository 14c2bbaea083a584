/*
 * ocsp.c - see ocsp.h.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>
#include <uthash.h>

#include "fetch.h"
#include "ocsp.h"

/* RFC 6960 4.2.2.1: clocks differ; accept this much skew. */
#define OCSP_LEEWAY_SECONDS 300

static const char *const ocsp_status_names[OCSP_STATUS_COUNT] = {
	[OCSP_GOOD] = "good",
	[OCSP_REVOKED] = "revoked",
	[OCSP_UNKNOWN] = "unknown",
	[OCSP_UNAVAILABLE] = "unavailable",
};
_Static_assert(sizeof(ocsp_status_names) / sizeof(ocsp_status_names[0]) ==
               OCSP_STATUS_COUNT, "one name per status");

static const char *const ocsp_mode_names[OCSP_MODE_COUNT] = {
	[OCSP_MODE_OFF] = "off",
	[OCSP_MODE_SOFT] = "soft",
	[OCSP_MODE_HARD] = "hard",
};
_Static_assert(sizeof(ocsp_mode_names) / sizeof(ocsp_mode_names[0]) ==
               OCSP_MODE_COUNT, "one name per mode");

const char *ocsp_status_str(enum ocsp_status s)
{
	return (unsigned int)s < OCSP_STATUS_COUNT ? ocsp_status_names[s] : "?";
}

const char *ocsp_mode_str(enum ocsp_mode m)
{
	return (unsigned int)m < OCSP_MODE_COUNT ? ocsp_mode_names[m] : "?";
}

static time_t ocsp_time(const ASN1_GENERALIZEDTIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

enum ocsp_status ocsp_response_status(const uint8_t *der, size_t len,
                                      OCSP_CERTID *id, OCSP_REQUEST *req,
                                      X509 *issuer, STACK_OF(X509) *ca_certs,
                                      long max_age_s, time_t *next_update,
                                      char *why, size_t whylen)
{
	const unsigned char *p = der;
	OCSP_RESPONSE *resp = NULL;
	OCSP_BASICRESP *bs = NULL;
	X509_STORE *store = NULL;
	ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL, *revtime = NULL;
	enum ocsp_status st = OCSP_UNAVAILABLE;
	int status = -1, reason = -1, rc;

	*next_update = 0;
	if (der == NULL || len == 0 || len > OCSP_MAX_RESPONSE) {
		snprintf(why, whylen, "empty or oversized response");
		goto out;
	}
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	if (resp == NULL || p != der + len) {
		snprintf(why, whylen, "not an OCSP response");
		goto out;
	}
	rc = OCSP_response_status(resp);
	if (rc != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		snprintf(why, whylen, "responder status %s",
		         OCSP_response_status_str(rc));
		goto out;
	}
	bs = OCSP_response_get1_basic(resp);
	if (bs == NULL) {
		snprintf(why, whylen, "not a basic OCSP response");
		goto out;
	}
	/* 1: our nonce echoed; 2: neither has one; -1: the responder does
	 * not do nonces (many precompute responses): accepted; 0: another
	 * request's nonce: a replay. */
	if (req != NULL && OCSP_check_nonce(req, bs) == 0) {
		snprintf(why, whylen, "the response's nonce is not the request's");
		goto out;
	}
	store = X509_STORE_new();
	if (store == NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(ca_certs); i++)
		(void)X509_STORE_add_cert(store, sk_X509_value(ca_certs, i));
	/* Every certificate of the section is an anchor, as for clients. */
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	/* Signature, the signer's chain to the section, and the signer being
	 * the issuer or a responder it authorized (id-kp-OCSPSigning,
	 * RFC 6960 4.2.2.2). */
	if (OCSP_basic_verify(bs, ca_certs, store, 0) <= 0) {
		snprintf(why, whylen, "the response is not signed by the issuer or "
		         "a responder it authorized");
		goto out;
	}
	if (OCSP_resp_find_status(bs, id, &status, &reason, &revtime, &thisupd,
	                          &nextupd) != 1) {
		snprintf(why, whylen, "the response is not about this certificate");
		goto out;
	}
	if (OCSP_check_validity(thisupd, nextupd, OCSP_LEEWAY_SECONDS,
	                        max_age_s > 0 ? max_age_s : -1) != 1) {
		snprintf(why, whylen, "the response is not current (thisUpdate "
		         "too old or in the future, or nextUpdate passed)");
		goto out;
	}
	*next_update = ocsp_time(nextupd);
	switch (status) {
	case V_OCSP_CERTSTATUS_GOOD:
		st = OCSP_GOOD;
		break;
	case V_OCSP_CERTSTATUS_REVOKED:
		st = OCSP_REVOKED;
		break;
	default:
		snprintf(why, whylen, "the responder does not know the certificate");
		st = OCSP_UNKNOWN;
		break;
	}
	(void)issuer;
out:
	X509_STORE_free(store);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	ERR_clear_error();
	return st;
}

/* ---- the cache --------------------------------------------------------- */

/* Counters of one [ca] name (never freed: names are few). */
struct ocsp_ca_ctr {
	char *name;
	struct ocsp_stats st;
	UT_hash_handle hh;
};

struct ocsp_entry {
	struct ocsp_ca_ctr *ctr;   /* whose entry it is, may be NULL */
	uint8_t key[32];        /* SHA-256 of issuer key hash, name hash, serial */
	enum ocsp_status status;
	int64_t expires;        /* unix seconds; 0 while in flight */
	int inflight;
	UT_hash_handle hh;
};

static pthread_mutex_t ocsp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ocsp_done = PTHREAD_COND_INITIALIZER;
static struct ocsp_entry *ocsp_cache;
static size_t ocsp_entries;
static atomic_uint_fast64_t ocsp_queries[OCSP_STATUS_COUNT];
static atomic_uint_fast64_t ocsp_hits, ocsp_misses;
static struct ocsp_ca_ctr *ocsp_cas;
static size_t ocsp_n_cas;

/* The counters of [ca] `name` (lock held), NULL past the limit. */
static struct ocsp_ca_ctr *ocsp_ctr(const char *name)
{
	struct ocsp_ca_ctr *c;

	if (name == NULL)
		return NULL;
	HASH_FIND_STR(ocsp_cas, name, c);
	if (c != NULL || ocsp_n_cas >= OCSP_MAX_CA_COUNTERS)
		return c;
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->name = strdup(name)) == NULL) {
		free(c);
		return NULL;
	}
	HASH_ADD_KEYPTR(hh, ocsp_cas, c->name, strlen(c->name), c);
	ocsp_n_cas++;
	return c;
}

void ocsp_ca_stats(const char *ca, struct ocsp_stats *st)
{
	struct ocsp_ca_ctr *c;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&ocsp_lock);
	HASH_FIND_STR(ocsp_cas, ca, c);
	if (c != NULL)
		*st = c->st;
	pthread_mutex_unlock(&ocsp_lock);
}

void ocsp_foreach_ca(ocsp_ca_fn fn, void *ctx)
{
	struct ocsp_ca_ctr *c, *tmp;

	pthread_mutex_lock(&ocsp_lock);
	HASH_ITER(hh, ocsp_cas, c, tmp)
		fn(ctx, c->name, &c->st);
	pthread_mutex_unlock(&ocsp_lock);
}

static void ocsp_key(OCSP_CERTID *id, uint8_t key[32])
{
	ASN1_OCTET_STRING *nh = NULL, *kh = NULL;
	ASN1_INTEGER *serial = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	memset(key, 0, 32);
	if (md == NULL || OCSP_id_get0_info(&nh, NULL, &kh, &serial, id) != 1 ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		ERR_clear_error();
		return;
	}
	(void)EVP_DigestUpdate(md, ASN1_STRING_get0_data(nh), (size_t)ASN1_STRING_length(nh));
	(void)EVP_DigestUpdate(md, ASN1_STRING_get0_data(kh), (size_t)ASN1_STRING_length(kh));
	(void)EVP_DigestUpdate(md, ASN1_STRING_get0_data(serial),
	                       (size_t)ASN1_STRING_length(serial));
	(void)EVP_DigestFinal_ex(md, key, NULL);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
}

/* Drop expired entries (lock held). */
static void ocsp_prune(int64_t now)
{
	struct ocsp_entry *e, *tmp;

	HASH_ITER(hh, ocsp_cache, e, tmp) {
		if (!e->inflight && e->expires <= now) {
			if (e->ctr != NULL)
				e->ctr->st.entries--;
			HASH_DEL(ocsp_cache, e);
			free(e);
			ocsp_entries--;
		}
	}
}

void ocsp_cache_clear(void)
{
	pthread_mutex_lock(&ocsp_lock);
	ocsp_prune(INT64_MAX);
	pthread_mutex_unlock(&ocsp_lock);
}

void ocsp_get_stats(struct ocsp_stats *st)
{
	for (int i = 0; i < OCSP_STATUS_COUNT; i++)
		st->queries[i] = atomic_load(&ocsp_queries[i]);
	st->hits = atomic_load(&ocsp_hits);
	st->misses = atomic_load(&ocsp_misses);
	pthread_mutex_lock(&ocsp_lock);
	st->entries = ocsp_entries;
	pthread_mutex_unlock(&ocsp_lock);
}

/* The responder to ask: ocsp-url, else the first http(s) OCSP URL of
 * the certificate's AIA. Returns a malloc'd string or NULL. */
static char *ocsp_responder(X509 *leaf, const char *url)
{
	STACK_OF(OPENSSL_STRING) *aia;
	char *r = NULL;

	if (url != NULL)
		return strdup(url);
	aia = X509_get1_ocsp(leaf);
	for (int i = 0; aia != NULL && i < sk_OPENSSL_STRING_num(aia) && !r; i++) {
		const char *u = sk_OPENSSL_STRING_value(aia, i);

		if (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0)
			r = strdup(u);
	}
	X509_email_free(aia);
	return r;
}

/* One query to the responder. */
static enum ocsp_status ocsp_query(X509 *leaf, X509 *issuer,
                                   STACK_OF(X509) *ca_certs, OCSP_CERTID *id,
                                   const struct ocsp_opts *o, time_t *next_update,
                                   char *why, size_t whylen)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	OCSP_CERTID *rid = OCSP_CERTID_dup(id);
	unsigned char *der = NULL;
	uint8_t *body = NULL;
	size_t blen = 0;
	char *url = ocsp_responder(leaf, o->url), err[256];
	enum ocsp_status st = OCSP_UNAVAILABLE;
	int dlen;

	*next_update = 0;
	if (url == NULL) {
		snprintf(why, whylen, "no responder (no ocsp-url, no OCSP URL in "
		         "the certificate)");
		goto out;
	}
	if (req == NULL || rid == NULL || OCSP_request_add0_id(req, rid) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	rid = NULL;
	if (OCSP_request_add1_nonce(req, NULL, -1) != 1 ||
	    (dlen = i2d_OCSP_REQUEST(req, &der)) <= 0) {
		snprintf(why, whylen, "cannot encode the request");
		goto out;
	}
	if (fetch_post(url, der, (size_t)dlen, "application/ocsp-request",
	               OCSP_MAX_RESPONSE, o->timeout_ms, &body, &blen, err,
	               sizeof(err)) == -1) {
		snprintf(why, whylen, "%s: %s", url, err);
		goto out;
	}
	st = ocsp_response_status(body, blen, id, req, issuer, ca_certs,
	                          (long)(o->max_age_ms / 1000), next_update, why,
	                          whylen);
out:
	OCSP_CERTID_free(rid);
	OCSP_REQUEST_free(req);
	OPENSSL_free(der);
	free(body);
	free(url);
	ERR_clear_error();
	atomic_fetch_add(&ocsp_queries[st], 1);
	return st;
}

enum ocsp_status ocsp_check(X509 *leaf, X509 *issuer, STACK_OF(X509) *ca_certs,
                            const struct ocsp_opts *o, int64_t *valid_until,
                            char *why, size_t whylen)
{
	OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
	struct ocsp_entry *e;
	uint8_t key[32];
	int64_t now = (int64_t)time(NULL), deadline;
	enum ocsp_status st;
	time_t nu = 0;
	struct timespec ts;
	int waited = 0;
	struct ocsp_ca_ctr *ctr;

	*valid_until = now + OCSP_RETRY_SECONDS;
	if (id == NULL) {
		ERR_clear_error();
		snprintf(why, whylen, "cannot make the certificate's OCSP id");
		return OCSP_UNAVAILABLE;
	}
	ocsp_key(id, key);
	clock_gettime(CLOCK_REALTIME, &ts);
	deadline = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + o->timeout_ms;
	pthread_mutex_lock(&ocsp_lock);
	ctr = ocsp_ctr(o->ca);
	for (;;) {
		HASH_FIND(hh, ocsp_cache, key, 32, e);
		if (e != NULL && !e->inflight && e->expires > now) {
			st = e->status;
			*valid_until = e->expires;
			if (ctr != NULL)
				ctr->st.hits++;
			pthread_mutex_unlock(&ocsp_lock);
			atomic_fetch_add(&ocsp_hits, 1);
			OCSP_CERTID_free(id);
			return st;
		}
		if (e == NULL || !e->inflight)
			break;
		/* Someone is asking already: wait for that answer. */
		ts.tv_sec = (time_t)(deadline / 1000);
		ts.tv_nsec = (long)(deadline % 1000) * 1000000;
		if (pthread_cond_timedwait(&ocsp_done, &ocsp_lock, &ts) != 0) {
			pthread_mutex_unlock(&ocsp_lock);
			OCSP_CERTID_free(id);
			snprintf(why, whylen, "no answer within ocsp-timeout");
			return OCSP_UNAVAILABLE;
		}
		now = (int64_t)time(NULL);
		waited = 1;
	}
	if (waited && e == NULL) {
		/* The query we waited for failed: do not repeat it at once. */
		pthread_mutex_unlock(&ocsp_lock);
		OCSP_CERTID_free(id);
		snprintf(why, whylen, "the responder did not answer the query in "
		         "flight");
		return OCSP_UNAVAILABLE;
	}
	atomic_fetch_add(&ocsp_misses, 1);
	if (ctr != NULL)
		ctr->st.misses++;
	if (e == NULL) {
		if (ocsp_entries >= OCSP_CACHE_MAX)
			ocsp_prune(now);
		e = ocsp_entries < OCSP_CACHE_MAX ? calloc(1, sizeof(*e)) : NULL;
		if (e != NULL) {
			memcpy(e->key, key, 32);
			HASH_ADD(hh, ocsp_cache, key, 32, e);
			ocsp_entries++;
			e->ctr = ctr;
			if (ctr != NULL)
				ctr->st.entries++;
		}
	}
	if (e != NULL)
		e->inflight = 1;
	pthread_mutex_unlock(&ocsp_lock);

	st = ocsp_query(leaf, issuer, ca_certs, id, o, &nu, why, whylen);
	now = (int64_t)time(NULL);
	if (st == OCSP_GOOD || st == OCSP_REVOKED) {
		int64_t until = now + (int64_t)(o->max_age_ms / 1000);

		if (nu != 0 && (int64_t)nu < until)
			until = (int64_t)nu;
		*valid_until = until;
	}
	pthread_mutex_lock(&ocsp_lock);
	if (ctr != NULL)
		ctr->st.queries[st]++;
	if (e != NULL) {
		e->inflight = 0;
		e->status = st;
		/* Only answers are kept; a failure is retried by the next
		 * verification (the verdict cache holds it OCSP_RETRY_SECONDS). */
		e->expires = st == OCSP_GOOD || st == OCSP_REVOKED ? *valid_until : 0;
		if (e->expires == 0) {
			if (e->ctr != NULL)
				e->ctr->st.entries--;
			HASH_DEL(ocsp_cache, e);
			free(e);
			ocsp_entries--;
		}
	}
	pthread_cond_broadcast(&ocsp_done);
	pthread_mutex_unlock(&ocsp_lock);
	OCSP_CERTID_free(id);
	return st;
}
