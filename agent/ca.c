/*
 * ca.c - [ca] sections: PEM bundles of CA certificates and their own CRL
 * files, as immutable reference-counted objects.
 *
 * Loading reads every file and hashes its bytes; when a previous
 * generation holds an entry with the same name and the same bytes, that
 * entry is reused as it is and nothing is parsed.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "fileio.h"
#include "settings.h"

static atomic_uint_fast64_t ca_next_id = 1;

/* See ca.h. */
void ca_name_str(const X509_NAME *name, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	buf[0] = '\0';
	if (b == NULL)
		return;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
		n = BIO_read(b, buf, (int)len - 1);
		if (n > 0)
			buf[n] = '\0';
	}
	BIO_free(b);
}

/* See ca.h. */
int ca_cert_issued_by(X509 *x, X509 *ca)
{
	EVP_PKEY *key;
	int ok;

	if (X509_cmp(x, ca) == 0 || X509_check_issued(ca, x) != X509_V_OK)
		return 0;
	key = X509_get0_pubkey(ca);
	ERR_set_mark();
	ok = key != NULL && X509_verify(x, key) == 1;
	ERR_pop_to_mark();
	return ok;
}

/* The newest OpenSSL error as text, and the queue cleared. */
static const char *ca_ssl_err(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

static time_t ca_asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

/* Parse the certificates of a CA file: at least one, all CAs. */
static int ca_parse_certs(struct ca_entry *ca, const char *file,
                          const char *data, size_t len, char *err,
                          size_t errlen)
{
	BIO *b = BIO_new_mem_buf(data, (int)len);
	char ebuf[256];
	int rc = -1;

	ca->certs = sk_X509_new_null();
	if (ca->certs == NULL || b == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (;;) {
		X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		uint32_t flags;
		time_t na;

		if (x == NULL) {
			unsigned long e = ERR_peek_last_error();

			if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				if (sk_X509_num(ca->certs) == 0) {
					snprintf(err, errlen, "%s: no PEM certificate "
					         "found", file);
					goto out;
				}
				break;
			}
			snprintf(err, errlen, "%s: certificate %d does not parse: %s",
			         file, sk_X509_num(ca->certs) + 1,
			         ca_ssl_err(ebuf, sizeof(ebuf)));
			goto out;
		}
		if (sk_X509_num(ca->certs) >= CA_MAX_CERTS) {
			X509_free(x);
			snprintf(err, errlen, "%s: more than %d certificates", file,
			         CA_MAX_CERTS);
			goto out;
		}
		if (sk_X509_push(ca->certs, x) <= 0) {
			X509_free(x);
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		flags = X509_get_extension_flags(x);
		if ((flags & EXFLAG_INVALID) != 0 || (flags & EXFLAG_CA) == 0) {
			char subj[512];

			ca_name_str(X509_get_subject_name(x), subj, sizeof(subj));
			snprintf(err, errlen, "%s: certificate \"%s\" is not a CA "
			         "(basicConstraints CA:TRUE required)", file, subj);
			goto out;
		}
		na = ca_asn1_time(X509_get0_notAfter(x));
		if (na != 0 && (ca->not_after == 0 || na < ca->not_after))
			ca->not_after = na;
	}
	rc = 0;
out:
	ERR_clear_error();
	BIO_free(b);
	return rc;
}

/* Read `path` and hash its bytes. */
static int ca_digest_file(const char *path, size_t max, uint8_t digest[32],
                          char **data, size_t *len, char *err, size_t errlen)
{
	unsigned int mdlen = 0;

	if (file_read(path, max, data, len) == -1) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (EVP_Digest(*data, *len, digest, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32) {
		free(*data);
		*data = NULL;
		snprintf(err, errlen, "cannot hash %s", path);
		ERR_clear_error();
		return -1;
	}
	return 0;
}

void ca_revocation_defaults(struct ca_revocation *r)
{
	memset(r, 0, sizeof(*r));
	r->crl_refresh_ms = CA_CRL_REFRESH_MS;
	r->crl_fetch_timeout_ms = CA_CRL_FETCH_TIMEOUT_MS;
	r->ocsp_timeout_ms = CA_OCSP_TIMEOUT_MS;
	r->ocsp_max_age_ms = CA_OCSP_MAX_AGE_MS;
}

void ca_revocation_clear(struct ca_revocation *r)
{
	for (size_t i = 0; i < r->n_crl_urls; i++)
		free(r->crl_urls[i]);
	free(r->ocsp_url);
	ca_revocation_defaults(r);
}

static int ca_revocation_same(const struct ca_revocation *a,
                              const struct ca_revocation *b)
{
	if (a->n_crl_urls != b->n_crl_urls ||
	    a->crl_refresh_ms != b->crl_refresh_ms ||
	    a->crl_refresh_margin_ms != b->crl_refresh_margin_ms ||
	    a->crl_fetch_timeout_ms != b->crl_fetch_timeout_ms ||
	    a->crl_stale_allow != b->crl_stale_allow ||
	    a->crl_grace_ms != b->crl_grace_ms ||
	    a->ocsp_mode != b->ocsp_mode ||
	    a->ocsp_timeout_ms != b->ocsp_timeout_ms ||
	    a->ocsp_max_age_ms != b->ocsp_max_age_ms ||
	    (a->ocsp_url == NULL) != (b->ocsp_url == NULL) ||
	    (a->ocsp_url != NULL && strcmp(a->ocsp_url, b->ocsp_url) != 0))
		return 0;
	for (size_t i = 0; i < a->n_crl_urls; i++)
		if (strcmp(a->crl_urls[i], b->crl_urls[i]) != 0)
			return 0;
	return 1;
}

static int ca_revocation_copy(struct ca_revocation *dst,
                              const struct ca_revocation *src)
{
	*dst = *src;
	for (size_t i = 0; i < src->n_crl_urls; i++)
		dst->crl_urls[i] = NULL;
	dst->n_crl_urls = 0;
	dst->ocsp_url = NULL;
	if (src->ocsp_url != NULL && (dst->ocsp_url = strdup(src->ocsp_url)) == NULL)
		return -1;
	for (size_t i = 0; i < src->n_crl_urls; i++) {
		dst->crl_urls[i] = strdup(src->crl_urls[i]);
		if (dst->crl_urls[i] == NULL)
			return -1;
		dst->n_crl_urls++;
	}
	return 0;
}

/* A duration key of [ca]: `zero_ok` allows 0. */
static int ca_duration(const char *key, const char *v, int zero_ok,
                       unsigned int *ms, char *err, size_t errlen)
{
	if (config_parse_duration(v, ms) == -1 || (!zero_ok && *ms == 0)) {
		snprintf(err, errlen, "bad %s \"%s\" (a duration%s: 500ms, 30s, "
		         "2m, 1h)", key, v, zero_ok ? "" : " > 0");
		return -1;
	}
	return 0;
}

/* An http(s) URL of at most CA_MAX_URL bytes without spaces. */
static int ca_url(const char *key, const char *v, char *err, size_t errlen)
{
	if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
		snprintf(err, errlen, "bad %s \"%s\" (http:// or https://)", key, v);
		return -1;
	}
	if (strlen(v) > CA_MAX_URL || strpbrk(v, " \t\r\n") != NULL) {
		snprintf(err, errlen, "bad %s (at most %d bytes, no spaces)", key,
		         CA_MAX_URL);
		return -1;
	}
	return 0;
}

int ca_revocation_set(struct ca_revocation *r, const char *key, const char *v,
                      char *err, size_t errlen)
{
	if (strcmp(key, "ocsp") == 0) {
		int m = strcmp(v, "off") == 0 ? 0 : strcmp(v, "soft") == 0 ? 1 :
		        strcmp(v, "hard") == 0 ? 2 : -1;

		if (m < 0) {
			snprintf(err, errlen, "bad ocsp \"%s\" (off, soft, hard)", v);
			return -1;
		}
		r->ocsp_mode = m;
		return 0;
	}
	if (strcmp(key, "ocsp-url") == 0) {
		if (ca_url(key, v, err, errlen) == -1)
			return -1;
		free(r->ocsp_url);
		r->ocsp_url = strdup(v);
		if (r->ocsp_url == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "ocsp-timeout") == 0)
		return ca_duration(key, v, 0, &r->ocsp_timeout_ms, err, errlen);
	if (strcmp(key, "ocsp-max-age") == 0)
		return ca_duration(key, v, 0, &r->ocsp_max_age_ms, err, errlen);
	if (strcmp(key, "crl-url") == 0) {
		if (ca_url(key, v, err, errlen) == -1)
			return -1;
		if (r->n_crl_urls >= CA_MAX_CRL_URLS) {
			snprintf(err, errlen, "too many crl-url in one [ca] (at most %d)",
			         CA_MAX_CRL_URLS);
			return -1;
		}
		for (size_t i = 0; i < r->n_crl_urls; i++) {
			if (strcmp(r->crl_urls[i], v) == 0) {
				snprintf(err, errlen, "crl-url %s listed twice", v);
				return -1;
			}
		}
		r->crl_urls[r->n_crl_urls] = strdup(v);
		if (r->crl_urls[r->n_crl_urls] == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		r->n_crl_urls++;
		return 0;
	}
	if (strcmp(key, "crl-refresh") == 0)
		return ca_duration(key, v, 0, &r->crl_refresh_ms, err, errlen);
	if (strcmp(key, "crl-refresh-margin") == 0)
		return ca_duration(key, v, 0, &r->crl_refresh_margin_ms, err, errlen);
	if (strcmp(key, "crl-fetch-timeout") == 0)
		return ca_duration(key, v, 0, &r->crl_fetch_timeout_ms, err, errlen);
	if (strcmp(key, "crl-grace") == 0)
		return ca_duration(key, v, 1, &r->crl_grace_ms, err, errlen);
	if (strcmp(key, "crl-stale") == 0) {
		if (strcmp(v, "deny") != 0 && strcmp(v, "allow") != 0) {
			snprintf(err, errlen, "bad crl-stale \"%s\" (deny, allow)", v);
			return -1;
		}
		r->crl_stale_allow = v[0] == 'a';
		return 0;
	}
	return 1;
}

void ca_crl_state_path(const char *state_dir, const char *name,
                       const char *url, char *buf, size_t len)
{
	uint8_t md[32];
	char hex[33];
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	memset(md, 0, sizeof(md));
	if (c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1) {
		/* The NUL separates name and URL: no two pairs hash alike. */
		(void)EVP_DigestUpdate(c, name, strlen(name) + 1);
		(void)EVP_DigestUpdate(c, url, strlen(url));
		(void)EVP_DigestFinal_ex(c, md, NULL);
	}
	EVP_MD_CTX_free(c);
	ERR_clear_error();
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	snprintf(buf, len, "%s/crl/%s.crl", state_dir, hex);
}

int ca_crl_pending(const struct ca_entry *ca)
{
	if (ca->rev.n_crl_urls == 0)
		return 0;
	for (size_t i = 0; i < ca->n_crl_files; i++)
		if (ca->crl_files[i].url != NULL && ca->crl_files[i].n_crls > 0)
			return 0;
	return 1;
}

static void ca_free(struct ca_entry *ca)
{
	free(ca->name);
	free(ca->file);
	sk_X509_pop_free(ca->certs, X509_free);
	for (size_t i = 0; i < ca->n_crl_files; i++) {
		struct ca_crl_file *f = &ca->crl_files[i];

		for (size_t j = 0; j < f->n_crls; j++)
			crl_unref(f->crls[j]);
		free(f->crls);
		free(f->path);
	}
	free(ca->crl_files);
	ca_revocation_clear(&ca->rev);
	free(ca);
}

/* 1 if `prev` can stand for `spec` whose files hash to what `ca` (the
 * entry being loaded) recorded. */
static int ca_same(const struct ca_entry *prev, const struct ca_entry *ca)
{
	if (prev == NULL || strcmp(prev->name, ca->name) != 0 ||
	    strcmp(prev->file, ca->file) != 0 ||
	    memcmp(prev->digest, ca->digest, 32) != 0 ||
	    prev->n_crl_files != ca->n_crl_files ||
	    !ca_revocation_same(&prev->rev, &ca->rev))
		return 0;
	for (size_t i = 0; i < ca->n_crl_files; i++) {
		if (strcmp(prev->crl_files[i].path, ca->crl_files[i].path) != 0 ||
		    memcmp(prev->crl_files[i].digest, ca->crl_files[i].digest,
		           32) != 0)
			return 0;
	}
	return 1;
}

/* 1 if `prev` was loaded from exactly the files `spec` names. */
static int ca_same_names(const struct ca_entry *prev, const struct ca_spec *spec)
{
	if (prev == NULL || strcmp(prev->name, spec->name) != 0 ||
	    strcmp(prev->file, spec->file) != 0 ||
	    prev->n_crl_files != spec->n_crl_files)
		return 0;
	for (size_t i = 0; i < spec->n_crl_files; i++)
		if (strcmp(prev->crl_files[i].path, spec->crl_files[i]) != 0)
			return 0;
	return 1;
}

static void ca_time_str(time_t t, char *buf, size_t len);

/* The newest (by lastUpdate) CRL of `e` whose issuer is `name`, or NULL. */
static struct crl *ca_newest_crl(const struct ca_entry *e, const X509_NAME *name)
{
	struct crl *best = NULL;

	for (size_t i = 0; i < ca_crl_count(e); i++) {
		struct crl *r = ca_crl_at(e, i);

		if (X509_NAME_cmp(crl_issuer(r), name) == 0 &&
		    (best == NULL || crl_last_update(r) > crl_last_update(best)))
			best = r;
	}
	return best;
}

/* 1 if a certificate of `e` issued `r` (names and signature). */
static int ca_signed_crl(const struct ca_entry *e, struct crl *r)
{
	for (int i = 0; i < sk_X509_num(e->certs); i++)
		if (crl_issued_by(r, sk_X509_value(e->certs, i)))
			return 1;
	return 0;
}

/* A cRLNumber in decimal. */
static void ca_number_str(const ASN1_INTEGER *n, char *buf, size_t len)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(n, NULL);
	char *d = bn != NULL ? BN_bn2dec(bn) : NULL;

	snprintf(buf, len, "%s", d != NULL ? d : "?");
	OPENSSL_free(d);
	BN_free(bn);
	ERR_clear_error();
}

int ca_crl_successor(const struct ca_entry *signer, struct crl *old,
                     struct crl *r, int need_signed, char *err, size_t errlen)
{
	const ASN1_INTEGER *on = old != NULL ? crl_number(old) : NULL;
	const ASN1_INTEGER *nn = crl_number(r);
	char a[64], b[64];

	if (need_signed && !ca_signed_crl(signer, r)) {
		snprintf(err, errlen, "the CRL is not signed by a certificate of "
		         "[ca %s]", signer->name);
		return -1;
	}
	if (old == NULL)
		return 0;
	if (on != NULL && nn != NULL && ASN1_INTEGER_cmp(nn, on) < 0) {
		ca_number_str(nn, a, sizeof(a));
		ca_number_str(on, b, sizeof(b));
		snprintf(err, errlen, "the new CRL's number %s is lower than the "
		         "loaded CRL's %s", a, b);
		return -1;
	}
	if (crl_last_update(r) < crl_last_update(old)) {
		ca_time_str(crl_last_update(r), a, sizeof(a));
		ca_time_str(crl_last_update(old), b, sizeof(b));
		snprintf(err, errlen, "the new CRL's thisUpdate %s is older than "
		         "the loaded CRL's %s", a, b);
		return -1;
	}
	return 0;
}

/* A changed `crl =` file must not take revocation backwards: for every
 * issuer the previous entry had a CRL of, the newest new CRL of that
 * issuer must be signed by the CA when the old one was (by a certificate
 * of this section), and must not have a lower cRLNumber or an older
 * thisUpdate. An issuer no longer listed is the operator's choice. */
static int ca_check_successors(const struct ca_entry *prev, struct ca_entry *ca,
                               int *which, char *err, size_t errlen)
{
	char why[256];

	for (size_t f = 0; f < ca->n_crl_files; f++) {
		const struct ca_crl_file *cf = &ca->crl_files[f];

		for (size_t j = 0; j < cf->n_crls; j++) {
			struct crl *r = cf->crls[j], *old, *mine;

			old = ca_newest_crl(prev, crl_issuer(r));
			mine = ca_newest_crl(ca, crl_issuer(r));
			if (old == NULL || mine != r ||
			    memcmp(crl_digest(old), crl_digest(r), 32) == 0)
				continue;
			if (ca_crl_successor(ca, old, r, ca_signed_crl(prev, old),
			                     why, sizeof(why)) == -1) {
				*which = (int)f;
				snprintf(err, errlen, "%s: refused, the loaded CRL stays: %s",
				         cf->path, why);
				return -1;
			}
		}
	}
	return 0;
}

int ca_load(const struct ca_spec *spec, struct ca_entry *prev,
            struct ca_entry **out, int *reused, int *which, char *err,
            size_t errlen)
{
	struct ca_entry *ca = calloc(1, sizeof(*ca));
	char *data = NULL;
	size_t len = 0, n_urls;

	*out = NULL;
	*reused = 0;
	*which = -1;
	if (ca != NULL && spec->immutable && ca_same_names(prev, spec)) {
		free(ca);
		*out = ca_ref(prev);
		*reused = 1;
		return 0;
	}
	if (ca == NULL || spec->n_crl_files > CA_MAX_CRL_FILES) {
		snprintf(err, errlen, ca == NULL ? "out of memory" :
		         "too many crl files");
		free(ca);
		return -1;
	}
	atomic_init(&ca->refs, 1);
	ca->name = strdup(spec->name);
	ca->file = strdup(spec->file);
	ca_revocation_defaults(&ca->rev);
	n_urls = spec->rev != NULL ? spec->rev->n_crl_urls : 0;
	ca->crl_files = calloc(spec->n_crl_files + n_urls + 1,
	                       sizeof(*ca->crl_files));
	if (ca->name == NULL || ca->file == NULL || ca->crl_files == NULL ||
	    (spec->rev != NULL && ca_revocation_copy(&ca->rev, spec->rev) == -1)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (ca_digest_file(spec->file, CA_MAX_FILE, ca->digest, &data, &len,
	                   err, errlen) == -1)
		goto fail;
	for (size_t i = 0; i < spec->n_crl_files; i++) {
		struct ca_crl_file *f = &ca->crl_files[i];
		char *cdata = NULL;
		size_t clen = 0;

		*which = (int)i;
		f->path = strdup(spec->crl_files[i]);
		ca->n_crl_files++;
		if (f->path == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		if (ca_digest_file(f->path, CRL_MAX_FILE, f->digest, &cdata, &clen,
		                   err, errlen) == -1)
			goto fail;
		free(cdata);
	}
	*which = -1;
	for (size_t i = 0; i < n_urls; i++) {
		struct ca_crl_file *f = &ca->crl_files[ca->n_crl_files];
		char path[PATH_MAX], *cdata = NULL;
		size_t clen = 0;

		ca_crl_state_path(spec->state_dir != NULL ? spec->state_dir : ".",
		                  ca->name, ca->rev.crl_urls[i], path, sizeof(path));
		f->url = ca->rev.crl_urls[i];
		f->path = strdup(path);
		ca->n_crl_files++;
		if (f->path == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		/* Not fetched yet: no CRL, and the all-zero digest says so. */
		if (access(path, F_OK) == -1 && errno == ENOENT)
			continue;
		if (ca_digest_file(f->path, CRL_MAX_FILE, f->digest, &cdata, &clen,
		                   err, errlen) == -1)
			goto fail;
		free(cdata);
	}
	if (ca_same(prev, ca)) {
		free(data);
		ca_free(ca);
		*out = ca_ref(prev);
		*reused = 1;
		return 0;
	}
	if (ca_parse_certs(ca, spec->file, data, len, err, errlen) == -1)
		goto fail;
	for (size_t i = 0; i < ca->n_crl_files; i++) {
		struct ca_crl_file *f = &ca->crl_files[i];

		*which = (int)i;
		if (f->url != NULL) {
			static const uint8_t zero[32];

			*which = -1;
			if (memcmp(f->digest, zero, 32) == 0)
				continue;
		}
		if (crl_load_file(f->path, &f->crls, &f->n_crls, err, errlen) == -1)
			goto fail;
	}
	if (prev != NULL && strcmp(prev->name, ca->name) == 0 &&
	    ca_check_successors(prev, ca, which, err, errlen) == -1)
		goto fail;
	*which = -1;
	free(data);
	ca->id = atomic_fetch_add(&ca_next_id, 1);
	*out = ca;
	return 0;
fail:
	free(data);
	ca_free(ca);
	return -1;
}

struct ca_entry *ca_ref(struct ca_entry *ca)
{
	atomic_fetch_add_explicit(&ca->refs, 1, memory_order_relaxed);
	return ca;
}

void ca_unref(struct ca_entry *ca)
{
	if (ca != NULL &&
	    atomic_fetch_sub_explicit(&ca->refs, 1, memory_order_acq_rel) == 1)
		ca_free(ca);
}

size_t ca_crl_count(const struct ca_entry *ca)
{
	size_t n = 0;

	for (size_t i = 0; i < ca->n_crl_files; i++)
		n += ca->crl_files[i].n_crls;
	return n;
}

struct crl *ca_crl_at(const struct ca_entry *ca, size_t i)
{
	for (size_t f = 0; f < ca->n_crl_files; f++) {
		if (i < ca->crl_files[f].n_crls)
			return ca->crl_files[f].crls[i];
		i -= ca->crl_files[f].n_crls;
	}
	return NULL;
}

static void ca_time_str(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
}

/* See ca.h. */
int ca_expiry_notes(const struct ca_entry *ca, time_t now, ca_note_fn note,
                    void *ctx)
{
	char when[64], msg[768];
	int n = 0;

	for (int k = 0; k < sk_X509_num(ca->certs); k++) {
		X509 *x = sk_X509_value(ca->certs, k);
		time_t na = ca_asn1_time(X509_get0_notAfter(x));
		char subj[256];

		if (na == 0 || na - now > CA_WARN_CERT_SECONDS)
			continue;
		ca_name_str(X509_get_subject_name(x), subj, sizeof(subj));
		ca_time_str(na, when, sizeof(when));
		snprintf(msg, sizeof(msg), "CA certificate \"%s\" of [ca %s] %s "
		         "on %s", subj, ca->name, na <= now ? "expired" : "expires",
		         when);
		note(ctx, -1, msg);
		n++;
	}
	for (size_t f = 0; f < ca->n_crl_files; f++) {
		for (size_t k = 0; k < ca->crl_files[f].n_crls; k++) {
			time_t nu = crl_next_update(ca->crl_files[f].crls[k]);

			if (nu == 0 || nu - now > CA_WARN_CRL_SECONDS)
				continue;
			ca_time_str(nu, when, sizeof(when));
			if (nu <= now)
				snprintf(msg, sizeof(msg), "CRL in %s is past its "
				         "nextUpdate (%s): certificates it covers get "
				         "crl_error until it is replaced",
				         ca->crl_files[f].path, when);
			else
				snprintf(msg, sizeof(msg), "CRL in %s reaches its "
				         "nextUpdate on %s: certificates it covers get "
				         "crl_error from then until it is replaced",
				         ca->crl_files[f].path, when);
			note(ctx, (int)f, msg);
			n++;
		}
	}
	return n;
}
