/*
 * pki.c - a throwaway PKI for unit tests (see pki.h).
 *
 * Everything is built with the OpenSSL 3 API in memory. Any failure aborts:
 * a test that silently ran against a half-built certificate would prove
 * nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "pki.h"

#define PKI_CHECK(cond) do { \
	if (!(cond)) \
		pki_die(__FILE__, __LINE__, #cond); \
} while (0)

__attribute__((noreturn))
static void pki_die(const char *file, int line, const char *what)
{
	fprintf(stderr, "pki: %s:%d: %s failed\n", file, line, what);
	ERR_print_errors_fp(stderr);
	abort();
}

/* A positive, non-zero 63-bit serial. */
static uint64_t pki_random_serial(void)
{
	uint64_t s = 0;

	while (s == 0) {
		PKI_CHECK(RAND_bytes((unsigned char *)&s, sizeof(s)) == 1);
		s &= UINT64_C(0x7fffffffffffffff);
	}
	return s;
}

static void pki_set_serial(ASN1_INTEGER *ai, uint64_t serial)
{
	PKI_CHECK(ASN1_INTEGER_set_uint64(ai, serial) == 1);
}

/* Add an extension given in openssl.cnf syntax, with `ctx` naming issuer
 * and subject (needed for the key identifiers). */
static void pki_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

	PKI_CHECK(ext != NULL);
	PKI_CHECK(X509_add_ext(x, ext, -1) == 1);
	X509_EXTENSION_free(ext);
}

static void pki_push_names(GENERAL_NAMES *gens, int type,
                           const char *const *values)
{
	for (size_t i = 0; i < 4 && values[i] != NULL; i++) {
		GENERAL_NAME *gn = GENERAL_NAME_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();

		PKI_CHECK(gn != NULL && s != NULL);
		PKI_CHECK(ASN1_STRING_set(s, values[i], (int)strlen(values[i])) == 1);
		GENERAL_NAME_set0_value(gn, type, s);
		PKI_CHECK(sk_GENERAL_NAME_push(gens, gn) > 0);
	}
}

/* subjectAltName built directly (not from a config string) so values may
 * hold commas or any other byte. */
static void pki_add_san(X509 *x, const struct pki_cert_opts *o)
{
	GENERAL_NAMES *gens;

	if (o->san_dns[0] == NULL && o->san_uri[0] == NULL &&
	    o->san_email[0] == NULL)
		return;
	gens = GENERAL_NAMES_new();
	PKI_CHECK(gens != NULL);
	pki_push_names(gens, GEN_DNS, o->san_dns);
	pki_push_names(gens, GEN_URI, o->san_uri);
	pki_push_names(gens, GEN_EMAIL, o->san_email);
	PKI_CHECK(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	                        X509V3_ADD_DEFAULT) == 1);
	GENERAL_NAMES_free(gens);
}

struct pki_cert *pki_make(const struct pki_cert_opts *o,
                          const struct pki_cert *issuer)
{
	struct pki_cert *c = calloc(1, sizeof(*c));
	X509_NAME *name;
	X509V3_CTX ctx;
	EVP_PKEY *sign_key;
	long nb = o->not_before != 0 ? o->not_before : -3600;
	long na = o->not_after != 0 ? o->not_after : 86400;
	char bc[64];

	PKI_CHECK(c != NULL);
	PKI_CHECK(o->cn != NULL);
	c->key = EVP_EC_gen("P-256");
	PKI_CHECK(c->key != NULL);
	c->x509 = X509_new();
	PKI_CHECK(c->x509 != NULL);
	PKI_CHECK(X509_set_version(c->x509, X509_VERSION_3) == 1);
	pki_set_serial(X509_get_serialNumber(c->x509),
	               o->serial != 0 ? o->serial : pki_random_serial());
	PKI_CHECK(X509_gmtime_adj(X509_getm_notBefore(c->x509), nb) != NULL);
	PKI_CHECK(X509_gmtime_adj(X509_getm_notAfter(c->x509), na) != NULL);

	/* O before CN, so the RFC 2253 form (most specific first) reads
	 * "CN=...,O=...". */
	name = X509_get_subject_name(c->x509);
	if (o->org != NULL)
		PKI_CHECK(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
		          (const unsigned char *)o->org, -1, -1, 0) == 1);
	PKI_CHECK(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	          (const unsigned char *)o->cn, -1, -1, 0) == 1);
	PKI_CHECK(X509_set_issuer_name(c->x509, issuer != NULL ?
	          X509_get_subject_name(issuer->x509) : name) == 1);
	PKI_CHECK(X509_set_pubkey(c->x509, c->key) == 1);

	X509V3_set_ctx(&ctx, issuer != NULL ? issuer->x509 : c->x509, c->x509,
	               NULL, NULL, 0);
	if (o->is_ca && !o->no_basic_constraints) {
		if (o->has_pathlen)
			snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d",
			         o->pathlen);
		else
			snprintf(bc, sizeof(bc), "critical,CA:TRUE");
		pki_add_ext(c->x509, &ctx, NID_basic_constraints, bc);
	} else if (!o->is_ca && !o->no_basic_constraints) {
		pki_add_ext(c->x509, &ctx, NID_basic_constraints,
		            "critical,CA:FALSE");
	}
	pki_add_ext(c->x509, &ctx, NID_key_usage, o->is_ca ?
	            "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
	/* The subject key identifier first: for a self-signed certificate
	 * the authority key identifier is copied from it. */
	if (!o->no_key_ids) {
		pki_add_ext(c->x509, &ctx, NID_subject_key_identifier, "hash");
		pki_add_ext(c->x509, &ctx, NID_authority_key_identifier,
		            "keyid:always");
	}
	switch (o->eku) {
	case PKI_EKU_CLIENT:
		pki_add_ext(c->x509, &ctx, NID_ext_key_usage, "clientAuth");
		break;
	case PKI_EKU_SERVER:
		pki_add_ext(c->x509, &ctx, NID_ext_key_usage, "serverAuth");
		break;
	case PKI_EKU_CLIENT_SERVER:
		pki_add_ext(c->x509, &ctx, NID_ext_key_usage,
		            "clientAuth,serverAuth");
		break;
	case PKI_EKU_NONE:
	case PKI_EKU_COUNT:
		break;
	}
	pki_add_san(c->x509, o);

	sign_key = issuer != NULL ? issuer->key : c->key;
	PKI_CHECK(X509_sign(c->x509, sign_key, EVP_sha256()) > 0);
	return c;
}

void pki_keyid_hex(X509 *x, int nid, char *out, size_t outlen)
{
	void *ext = X509_get_ext_d2i(x, nid, NULL, NULL);
	ASN1_OCTET_STRING *id = ext;
	char *txt;
	size_t o = 0;

	out[0] = '\0';
	if (ext == NULL)
		return;
	if (nid == NID_authority_key_identifier)
		id = ((AUTHORITY_KEYID *)ext)->keyid;
	txt = id != NULL ? i2s_ASN1_OCTET_STRING(NULL, id) : NULL;
	for (size_t i = 0; txt != NULL && txt[i] != '\0' && o + 1 < outlen; i++)
		if (txt[i] != ':')
			out[o++] = (char)tolower((unsigned char)txt[i]);
	out[o] = '\0';
	OPENSSL_free(txt);
	if (nid == NID_authority_key_identifier)
		AUTHORITY_KEYID_free(ext);
	else
		ASN1_OCTET_STRING_free(ext);
}

void pki_free(struct pki_cert *c)
{
	if (c == NULL)
		return;
	X509_free(c->x509);
	EVP_PKEY_free(c->key);
	free(c);
}

uint8_t *pki_der(const struct pki_cert *c, size_t *len)
{
	uint8_t *der = NULL;
	int n = i2d_X509(c->x509, &der);

	PKI_CHECK(n > 0 && der != NULL);
	/* Hand back plain malloc'd memory so callers use free(). */
	uint8_t *out = malloc((size_t)n);
	PKI_CHECK(out != NULL);
	memcpy(out, der, (size_t)n);
	OPENSSL_free(der);
	*len = (size_t)n;
	return out;
}

uint8_t *pki_chain_der(const struct pki_cert *const *certs, size_t n,
                       size_t *len)
{
	size_t total = 0;
	uint8_t *out;

	for (size_t i = 0; i < n; i++) {
		int l = i2d_X509(certs[i]->x509, NULL);

		PKI_CHECK(l > 0);
		total += (size_t)l;
	}
	/* malloc(0) may return NULL: keep a valid pointer for n == 0. */
	out = malloc(total > 0 ? total : 1);
	PKI_CHECK(out != NULL);
	uint8_t *p = out;
	for (size_t i = 0; i < n; i++)
		PKI_CHECK(i2d_X509(certs[i]->x509, &p) > 0);
	PKI_CHECK((size_t)(p - out) == total);
	*len = total;
	return out;
}

X509_CRL *pki_crl(const struct pki_cert *ca, const uint64_t *serials,
                  size_t n, long last_update, long next_update)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	PKI_CHECK(crl != NULL && t != NULL);
	PKI_CHECK(X509_CRL_set_version(crl, X509_CRL_VERSION_2) == 1);
	PKI_CHECK(X509_CRL_set_issuer_name(crl,
	          X509_get_subject_name(ca->x509)) == 1);
	PKI_CHECK(X509_gmtime_adj(t, last_update) != NULL);
	PKI_CHECK(X509_CRL_set1_lastUpdate(crl, t) == 1);
	PKI_CHECK(X509_gmtime_adj(t, next_update) != NULL);
	PKI_CHECK(X509_CRL_set1_nextUpdate(crl, t) == 1);

	for (size_t i = 0; i < n; i++) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *s = ASN1_INTEGER_new();

		PKI_CHECK(r != NULL && s != NULL);
		pki_set_serial(s, serials[i]);
		PKI_CHECK(X509_REVOKED_set_serialNumber(r, s) == 1);
		ASN1_INTEGER_free(s);
		/* Revoked at lastUpdate: before any `now` a test uses. */
		PKI_CHECK(X509_gmtime_adj(t, last_update) != NULL);
		PKI_CHECK(X509_REVOKED_set_revocationDate(r, t) == 1);
		PKI_CHECK(X509_CRL_add0_revoked(crl, r) == 1);
	}
	ASN1_TIME_free(t);

	X509V3_set_ctx(&ctx, ca->x509, NULL, NULL, crl, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier,
	                          "keyid:always");
	PKI_CHECK(ext != NULL);
	PKI_CHECK(X509_CRL_add_ext(crl, ext, -1) == 1);
	X509_EXTENSION_free(ext);

	PKI_CHECK(X509_CRL_sort(crl) == 1);
	PKI_CHECK(X509_CRL_sign(crl, ca->key, EVP_sha256()) > 0);
	return crl;
}

void pki_write_pem(const char *path, const struct pki_cert *const *certs,
                   size_t n)
{
	FILE *f = fopen(path, "w");

	PKI_CHECK(f != NULL);
	for (size_t i = 0; i < n; i++)
		PKI_CHECK(PEM_write_X509(f, certs[i]->x509) == 1);
	PKI_CHECK(fclose(f) == 0);
}

void pki_write_crl_pem(const char *path, X509_CRL *crl)
{
	FILE *f = fopen(path, "w");

	PKI_CHECK(f != NULL);
	PKI_CHECK(PEM_write_X509_CRL(f, crl) == 1);
	PKI_CHECK(fclose(f) == 0);
}

void pki_write_crl_der(const char *path, X509_CRL *crl)
{
	FILE *f = fopen(path, "wb");

	PKI_CHECK(f != NULL);
	PKI_CHECK(i2d_X509_CRL_fp(f, crl) == 1);
	PKI_CHECK(fclose(f) == 0);
}

char *pki_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *dir;

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	PKI_CHECK(asprintf(&dir, "%s/mtls-test-XXXXXX", base) > 0);
	PKI_CHECK(mkdtemp(dir) != NULL);
	return dir;
}

static int pki_rm_one(const char *path, const struct stat *sb, int flag,
                      struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	if (remove(path) == -1 && errno != ENOENT)
		fprintf(stderr, "pki: remove %s: %s\n", path, strerror(errno));
	return 0;
}

/* Remove `dir` recursively (without following symlinks) and free the
 * string returned by pki_tmpdir(). */
void pki_rmdir(char *dir)
{
	if (dir == NULL)
		return;
	if (nftw(dir, pki_rm_one, 16, FTW_DEPTH | FTW_PHYS) == -1)
		fprintf(stderr, "pki: nftw %s: %s\n", dir, strerror(errno));
	free(dir);
}
