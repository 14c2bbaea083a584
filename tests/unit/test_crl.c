/*
 * test_crl.c - one CRL loaded once (crl.c): revocation lookups on every
 * serial shape, time checks at the exact boundaries, the signature check
 * against the right, a look-alike and another issuer (ECDSA, RSA PKCS#1,
 * RSA-PSS, Ed25519), files (PEM, DER, garbage, truncated, too large),
 * the extensions that make a CRL unusable, the IDP scope, and a
 * 100,000-entry CRL.
 *
 * CRLs are built here with the OpenSSL API, so each test states exactly
 * which serials, extensions and times its CRL carries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crl.h"
#include "pki.h"

#define T_LAST ((time_t)1700000000)   /* 2023-11-14T22:13:20Z */
#define T_NEXT ((time_t)1700086400)

struct fixture {
	char *dir;
	struct pki_cert *ca;          /* "Test CA", EC P-256 */
	struct pki_cert *lookalike;   /* same name, another key */
	struct pki_cert *other;       /* another name */
	struct pki_cert *leaf;        /* end entity issued by ca */
};

static struct fixture fx;

#define CHECK(cond) do { \
	if (!(cond)) \
		fail_msg("fixture: %s failed", #cond); \
} while (0)

/* ---- building CRLs -------------------------------------------------- */

static ASN1_TIME *t_time(time_t t)
{
	ASN1_TIME *a = ASN1_TIME_set(NULL, t);

	CHECK(a != NULL);
	return a;
}

/* An empty v2 CRL from `ca`, lastUpdate `last`, nextUpdate `next` (none
 * when 0). */
static X509_CRL *t_crl(const struct pki_cert *ca, time_t last, time_t next)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t;

	CHECK(crl != NULL);
	CHECK(X509_CRL_set_version(crl, X509_CRL_VERSION_2) == 1);
	CHECK(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->x509)) == 1);
	t = t_time(last);
	CHECK(X509_CRL_set1_lastUpdate(crl, t) == 1);
	ASN1_TIME_free(t);
	if (next != 0) {
		t = t_time(next);
		CHECK(X509_CRL_set1_nextUpdate(crl, t) == 1);
		ASN1_TIME_free(t);
	}
	return crl;
}

/* Add a revoked entry for the integer with magnitude mag[len] (no
 * leading zero octet) and sign `neg`; returns it for extensions. */
static X509_REVOKED *t_revoke(X509_CRL *crl, const uint8_t *mag, size_t len,
                              int neg)
{
	X509_REVOKED *r = X509_REVOKED_new();
	ASN1_INTEGER *s = ASN1_STRING_type_new(neg ? V_ASN1_NEG_INTEGER
	                                           : V_ASN1_INTEGER);
	ASN1_TIME *t = t_time(T_LAST - 60);

	CHECK(r != NULL && s != NULL);
	CHECK(ASN1_STRING_set(s, mag, (int)len) == 1);
	CHECK(X509_REVOKED_set_serialNumber(r, s) == 1);
	CHECK(X509_REVOKED_set_revocationDate(r, t) == 1);
	CHECK(X509_CRL_add0_revoked(crl, r) == 1);
	ASN1_INTEGER_free(s);
	ASN1_TIME_free(t);
	return r;
}

static X509_REVOKED *t_revoke_u64(X509_CRL *crl, uint64_t v)
{
	uint8_t b[8];
	size_t off = 0;

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	while (off < 7 && b[off] == 0)
		off++;
	return t_revoke(crl, b + off, 8 - off, 0);
}

static void t_reason(X509_REVOKED *r, int reason, int crit)
{
	ASN1_ENUMERATED *e = ASN1_ENUMERATED_new();

	CHECK(e != NULL && ASN1_ENUMERATED_set(e, reason) == 1);
	CHECK(X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, e, crit, 0) == 1);
	ASN1_ENUMERATED_free(e);
}

/* An extension with a private OID and a NULL value. */
static X509_EXTENSION *t_private_ext(int crit)
{
	static const unsigned char null_der[] = { 0x05, 0x00 };
	ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.4.1.55555.1", 1);
	ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext;

	CHECK(obj != NULL && v != NULL);
	CHECK(ASN1_OCTET_STRING_set(v, null_der, sizeof(null_der)) == 1);
	ext = X509_EXTENSION_create_by_OBJ(NULL, obj, crit, v);
	CHECK(ext != NULL);
	ASN1_OBJECT_free(obj);
	ASN1_OCTET_STRING_free(v);
	return ext;
}

/* Add a CRL extension given in openssl.cnf syntax. */
static void t_crl_ext(X509_CRL *crl, const struct pki_cert *ca, int nid,
                      const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, ca->x509, NULL, NULL, crl, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	CHECK(ext != NULL);
	CHECK(X509_CRL_add_ext(crl, ext, -1) == 1);
	X509_EXTENSION_free(ext);
}

/* Sign with key (md NULL for Ed25519) and return the malloc'd DER. */
static uint8_t *t_sign_der_md(X509_CRL *crl, EVP_PKEY *key, const EVP_MD *md,
                              size_t *len)
{
	unsigned char *der = NULL;
	int n;
	uint8_t *out;

	CHECK(X509_CRL_sign(crl, key, md) > 0);
	n = i2d_X509_CRL(crl, &der);
	CHECK(n > 0);
	out = malloc((size_t)n);
	CHECK(out != NULL);
	memcpy(out, der, (size_t)n);
	OPENSSL_free(der);
	*len = (size_t)n;
	return out;
}

static uint8_t *t_sign_der(X509_CRL *crl, const struct pki_cert *ca,
                           size_t *len)
{
	return t_sign_der_md(crl, ca->key, EVP_sha256(), len);
}

/* Sign `crl` with ca, free it, and load it. */
static struct crl *t_load(X509_CRL *crl, const struct pki_cert *ca)
{
	size_t len;
	uint8_t *der = t_sign_der(crl, ca, &len);
	char err[256] = "";
	struct crl *c = crl_new(der, len, err, sizeof(err));

	if (c == NULL)
		fail_msg("crl_new: %s", err);
	free(der);
	X509_CRL_free(crl);
	return c;
}

/* Is the integer (mag, len, neg) revoked? The lookup key is built with
 * `pad` extra leading zero octets, which no encoding has but a caller's
 * ASN1_INTEGER may. */
static int t_revoked(const struct crl *c, const uint8_t *mag, size_t len,
                     int neg, size_t pad)
{
	uint8_t buf[64] = { 0 };
	ASN1_INTEGER *s = ASN1_STRING_type_new(neg ? V_ASN1_NEG_INTEGER
	                                           : V_ASN1_INTEGER);
	int r;

	CHECK(s != NULL && pad + len <= sizeof(buf));
	memcpy(buf + pad, mag, len);
	CHECK(ASN1_STRING_set(s, buf, (int)(pad + len)) == 1);
	r = crl_is_revoked(c, s);
	ASN1_INTEGER_free(s);
	return r;
}

static int t_revoked_u64(const struct crl *c, uint64_t v)
{
	ASN1_INTEGER *s = ASN1_INTEGER_new();
	int r;

	CHECK(s != NULL && ASN1_INTEGER_set_uint64(s, v) == 1);
	r = crl_is_revoked(c, s);
	ASN1_INTEGER_free(s);
	return r;
}

/* ---- fixtures ----------------------------------------------------------- */

static int group_setup(void **state)
{
	struct pki_cert_opts ca = { .cn = "Test CA", .is_ca = 1 };
	struct pki_cert_opts other = { .cn = "Other CA", .is_ca = 1 };
	struct pki_cert_opts leaf = { .cn = "client", .eku = PKI_EKU_CLIENT };

	(void)state;
	fx.dir = pki_tmpdir();
	fx.ca = pki_make(&ca, NULL);
	fx.lookalike = pki_make(&ca, NULL);
	fx.other = pki_make(&other, NULL);
	fx.leaf = pki_make(&leaf, fx.ca);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	pki_free(fx.ca);
	pki_free(fx.lookalike);
	pki_free(fx.other);
	pki_free(fx.leaf);
	pki_rmdir(fx.dir);
	return 0;
}

/* ---- revocation lookups ------------------------------------------------- */

static void test_serial_shapes(void **state)
{
	static const uint8_t one[] = { 0x01 };
	static const uint8_t high[] = { 0x80, 0x00 };        /* DER 00 80 00 */
	static const uint8_t five[] = { 0x05 };
	static const uint8_t zero[] = { 0x00 };
	uint8_t twenty[20], twentyone[21], twenty_hi[20];
	X509_CRL *x = t_crl(fx.ca, T_LAST, T_NEXT);
	struct crl *c;

	(void)state;
	for (int i = 0; i < 20; i++) {
		twenty[i] = (uint8_t)(0x11 + i);
		twenty_hi[i] = (uint8_t)(0xf0 - i);
		twentyone[i] = (uint8_t)(0x21 + i);
	}
	twentyone[20] = 0x99;
	t_revoke(x, one, sizeof(one), 0);
	t_revoke(x, high, sizeof(high), 0);
	t_revoke(x, five, sizeof(five), 1);                 /* -5 only */
	t_revoke(x, zero, sizeof(zero), 0);
	t_revoke(x, twenty, sizeof(twenty), 0);
	t_revoke(x, twenty_hi, sizeof(twenty_hi), 0);       /* 21 octets in DER */
	t_revoke(x, twentyone, sizeof(twentyone), 0);       /* > RFC 5280 max */
	c = t_load(x, fx.ca);

	assert_int_equal(crl_count(c), 7);
	assert_true(t_revoked(c, one, 1, 0, 0));
	assert_true(t_revoked(c, one, 1, 0, 3));            /* leading zeros */
	assert_false(t_revoked(c, one, 1, 1, 0));           /* -1 */
	assert_true(t_revoked(c, high, 2, 0, 0));
	assert_true(t_revoked(c, high, 2, 0, 1));
	assert_false(t_revoked(c, high, 1, 0, 0));          /* 0x80 */
	assert_true(t_revoked(c, five, 1, 1, 0));
	assert_false(t_revoked(c, five, 1, 0, 0));          /* +5: other sign */
	assert_true(t_revoked(c, zero, 1, 0, 0));
	assert_true(t_revoked(c, zero, 0, 0, 0));           /* empty = 0 */
	assert_true(t_revoked(c, zero, 1, 1, 0));           /* -0 is 0 */
	assert_true(t_revoked(c, twenty, 20, 0, 0));
	assert_true(t_revoked(c, twenty, 20, 0, 5));
	assert_false(t_revoked(c, twenty, 19, 0, 0));       /* a prefix */
	assert_false(t_revoked(c, twenty + 1, 19, 0, 0));   /* a suffix */
	assert_true(t_revoked(c, twenty_hi, 20, 0, 0));
	assert_true(t_revoked(c, twentyone, 21, 0, 0));
	assert_true(t_revoked(c, twentyone, 21, 0, 2));
	assert_false(t_revoked(c, twentyone, 21, 1, 0));
	assert_false(t_revoked(c, twentyone, 20, 0, 0));
	twentyone[20] ^= 1;
	assert_false(t_revoked(c, twentyone, 21, 0, 0));
	assert_false(t_revoked_u64(c, 2));
	assert_false(crl_is_revoked(c, NULL));
	crl_unref(c);
}

static void test_remove_from_crl_and_duplicates(void **state)
{
	X509_CRL *x = t_crl(fx.ca, T_LAST, T_NEXT);
	struct crl *c;

	(void)state;
	t_revoke_u64(x, 10);
	t_revoke_u64(x, 10);                                 /* plain duplicate */
	t_reason(t_revoke_u64(x, 20), CRL_REASON_REMOVE_FROM_CRL, 0);
	t_reason(t_revoke_u64(x, 30), CRL_REASON_KEY_COMPROMISE, 0);
	/* 40: once removed, once revoked: a listed revocation wins */
	t_reason(t_revoke_u64(x, 40), CRL_REASON_REMOVE_FROM_CRL, 0);
	t_revoke_u64(x, 40);
	/* 50: removed twice */
	t_reason(t_revoke_u64(x, 50), CRL_REASON_REMOVE_FROM_CRL, 0);
	t_reason(t_revoke_u64(x, 50), CRL_REASON_REMOVE_FROM_CRL, 1);
	c = t_load(x, fx.ca);

	assert_int_equal(crl_unusable(c), 0);   /* critical reasonCode is handled */
	assert_int_equal(crl_count(c), 3);      /* 10, 30, 40 */
	assert_true(t_revoked_u64(c, 10));
	assert_false(t_revoked_u64(c, 20));
	assert_true(t_revoked_u64(c, 30));
	assert_true(t_revoked_u64(c, 40));
	assert_false(t_revoked_u64(c, 50));
	crl_unref(c);
}

static void test_empty_crl(void **state)
{
	struct crl *c = t_load(t_crl(fx.ca, T_LAST, T_NEXT), fx.ca);

	(void)state;
	assert_int_equal(crl_count(c), 0);
	assert_false(t_revoked_u64(c, 1));
	assert_int_equal(crl_unusable(c), 0);
	assert_int_equal(X509_NAME_cmp(crl_issuer(c),
	                 X509_get_subject_name(fx.ca->x509)), 0);
	crl_unref(c);
}

static void test_refcount(void **state)
{
	struct crl *c = t_load(t_crl(fx.ca, T_LAST, T_NEXT), fx.ca);

	(void)state;
	assert_ptr_equal(crl_ref(c), c);
	crl_unref(c);
	assert_int_equal(crl_count(c), 0);      /* still alive */
	crl_unref(c);
	crl_unref(NULL);
}

/* ---- times -------------------------------------------------------------- */

static void test_time_boundaries(void **state)
{
	struct crl *c = t_load(t_crl(fx.ca, T_LAST, T_NEXT), fx.ca);
	struct crl *open = t_load(t_crl(fx.ca, T_LAST, 0), fx.ca);

	(void)state;
	assert_int_equal(crl_last_update(c), T_LAST);
	assert_int_equal(crl_next_update(c), T_NEXT);
	assert_int_equal(crl_time_check(c, T_LAST - 1), X509_V_ERR_CRL_NOT_YET_VALID);
	assert_int_equal(crl_time_check(c, T_LAST), X509_V_OK);
	assert_int_equal(crl_time_check(c, T_NEXT - 1), X509_V_OK);
	assert_int_equal(crl_time_check(c, T_NEXT), X509_V_ERR_CRL_HAS_EXPIRED);
	assert_int_equal(crl_time_check(c, T_NEXT + 1), X509_V_ERR_CRL_HAS_EXPIRED);

	assert_int_equal(crl_next_update(open), 0);
	assert_int_equal(crl_time_check(open, T_LAST - 1), X509_V_ERR_CRL_NOT_YET_VALID);
	assert_int_equal(crl_time_check(open, (time_t)4000000000), X509_V_OK);
	crl_unref(c);
	crl_unref(open);
}

/* A GeneralizedTime nextUpdate in 2051 (after UTCTime's range) parses. */
static void test_generalized_time(void **state)
{
	time_t next = (time_t)2556144000;   /* 2051-01-01 */
	struct crl *c = t_load(t_crl(fx.ca, T_LAST, next), fx.ca);

	(void)state;
	assert_int_equal(crl_next_update(c), next);
	assert_int_equal(crl_time_check(c, next - 1), X509_V_OK);
	crl_unref(c);
}

/* A CRL whose lastUpdate or nextUpdate is not a time. */
static struct crl *t_bad_time(int which, char *err, size_t errlen)
{
	X509_CRL *x = t_crl(fx.ca, T_LAST, T_NEXT);
	ASN1_TIME *t = ASN1_STRING_type_new(V_ASN1_GENERALIZEDTIME);
	size_t len;
	uint8_t *der;
	struct crl *c;

	CHECK(t != NULL && ASN1_STRING_set(t, "20231341000000Z", -1) == 1);
	CHECK((which == 0 ? X509_CRL_set1_lastUpdate(x, t)
	                  : X509_CRL_set1_nextUpdate(x, t)) == 1);
	ASN1_TIME_free(t);
	der = t_sign_der(x, fx.ca, &len);
	X509_CRL_free(x);
	c = crl_new(der, len, err, errlen);
	free(der);
	return c;
}

static void test_bad_times(void **state)
{
	char err[256] = "";
	struct crl *c = t_bad_time(0, err, sizeof(err));

	(void)state;
	assert_null(c);
	assert_string_equal(err, "lastUpdate is missing or malformed");
	c = t_bad_time(1, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(crl_unusable(c), X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD);
	assert_int_equal(crl_time_check(c, T_LAST),
	                 X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD);
	crl_unref(c);
}

/* ---- signatures --------------------------------------------------------- */

static void test_issued_by(void **state)
{
	X509_CRL *x = t_crl(fx.ca, T_LAST, T_NEXT);
	struct crl *c;
	unsigned long mark;

	(void)state;
	t_revoke_u64(x, 7);
	c = t_load(x, fx.ca);
	ERR_raise_data(ERR_LIB_USER, 42, "sentinel");
	mark = ERR_peek_last_error();

	assert_int_equal(crl_remembered_keys(c), 0);
	assert_false(crl_issued_by(c, fx.lookalike->x509));  /* same name */
	assert_int_equal(crl_remembered_keys(c), 0);
	assert_false(crl_issued_by(c, fx.other->x509));      /* other name */
	assert_false(crl_issued_by(c, fx.leaf->x509));
	assert_true(crl_issued_by(c, fx.ca->x509));
	assert_int_equal(crl_remembered_keys(c), 1);
	assert_true(crl_issued_by(c, fx.ca->x509));          /* remembered */
	assert_int_equal(crl_remembered_keys(c), 1);
	assert_false(crl_issued_by(c, fx.lookalike->x509));  /* still not */
	assert_int_equal(crl_remembered_keys(c), 1);
	assert_false(crl_issued_by(c, NULL));

	assert_int_equal(ERR_peek_last_error(), mark);       /* queue as it was */
	ERR_clear_error();
	crl_unref(c);
}

/* Flip one byte at `off` of a signed CRL: it must still load (or not
 * parse), and never pass as issued by the CA. */
static void test_tampered(void **state)
{
	X509_CRL *x = t_crl(fx.ca, T_LAST, T_NEXT);
	size_t len;
	uint8_t *der;
	char err[256];

	(void)state;
	t_revoke_u64(x, 0x123456);
	der = t_sign_der(x, fx.ca, &len);
	X509_CRL_free(x);
	for (size_t off = 0; off < len; off++) {
		struct crl *c;

		der[off] ^= 0x01;
		c = crl_new(der, len, err, sizeof(err));
		if (c != NULL) {
			if (crl_issued_by(c, fx.ca->x509))
				fail_msg("byte %zu flipped still verifies", off);
			crl_unref(c);
		}
		der[off] ^= 0x01;
	}
	free(der);
	assert_int_equal(ERR_peek_error(), 0);
}

/* A self-signed CA named `cn` whose key is `key` (pki.h makes EC keys). */
static struct pki_cert *t_ca_with_key(const char *cn, EVP_PKEY *key,
                                      const EVP_MD *md)
{
	struct pki_cert_opts o = { .cn = cn, .is_ca = 1 };
	struct pki_cert *ca = pki_make(&o, NULL);

	CHECK(key != NULL);
	EVP_PKEY_free(ca->key);
	ca->key = key;
	CHECK(X509_set_pubkey(ca->x509, key) == 1);
	CHECK(X509_sign(ca->x509, key, md) > 0);
	return ca;
}

static struct crl *t_load_signed(const struct pki_cert *ca, EVP_MD_CTX *m,
                                 const EVP_MD *md)
{
	X509_CRL *x = t_crl(ca, T_LAST, T_NEXT);
	unsigned char *der = NULL;
	char err[256] = "";
	struct crl *c;
	int n;

	t_revoke_u64(x, 99);
	if (m != NULL)
		CHECK(X509_CRL_sign_ctx(x, m) > 0);
	else
		CHECK(X509_CRL_sign(x, ca->key, md) > 0);
	n = i2d_X509_CRL(x, &der);
	CHECK(n > 0);
	c = crl_new(der, (size_t)n, err, sizeof(err));
	if (c == NULL)
		fail_msg("crl_new: %s", err);
	OPENSSL_free(der);
	X509_CRL_free(x);
	assert_true(t_revoked_u64(c, 99));
	return c;
}

static void test_signature_algorithms(void **state)
{
	EVP_PKEY *rsa = EVP_RSA_gen(2048);
	struct pki_cert *rsa_ca, *ed_ca, *ed_twin, *rsa_twin, *rsa_named;
	struct crl *c;
	EVP_MD_CTX *m;
	EVP_PKEY_CTX *pctx = NULL;

	(void)state;
	CHECK(rsa != NULL && EVP_PKEY_up_ref(rsa) == 1);
	rsa_ca = t_ca_with_key("RSA CA", rsa, EVP_sha256());
	rsa_twin = t_ca_with_key("RSA CA", EVP_RSA_gen(2048), EVP_sha256());
	ed_ca = t_ca_with_key("Ed CA", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"),
	                      NULL);
	ed_twin = t_ca_with_key("Ed CA", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"),
	                        NULL);

	/* RSA PKCS#1 v1.5 with SHA-384 */
	c = t_load_signed(rsa_ca, NULL, EVP_sha384());
	assert_true(crl_issued_by(c, rsa_ca->x509));
	assert_false(crl_issued_by(c, rsa_twin->x509));
	crl_unref(c);

	/* RSA-PSS, SHA-256, MGF1-SHA-256, 32-byte salt */
	m = EVP_MD_CTX_new();
	CHECK(m != NULL);
	CHECK(EVP_DigestSignInit(m, &pctx, EVP_sha256(), NULL, rsa) == 1);
	CHECK(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1);
	CHECK(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1);
	c = t_load_signed(rsa_ca, m, NULL);
	EVP_MD_CTX_free(m);
	assert_true(crl_issued_by(c, rsa_ca->x509));
	assert_false(crl_issued_by(c, rsa_twin->x509));
	crl_unref(c);

	/* Ed25519: verified over the kept tbsCertList */
	c = t_load_signed(ed_ca, NULL, NULL);
	assert_true(crl_issued_by(c, ed_ca->x509));
	assert_true(crl_issued_by(c, ed_ca->x509));
	assert_false(crl_issued_by(c, ed_twin->x509));
	crl_unref(c);

	/* an ECDSA CRL is not issued by an RSA key of the same name */
	c = t_load_signed(fx.ca, NULL, EVP_sha256());
	assert_true(crl_issued_by(c, fx.ca->x509));
	rsa_named = t_ca_with_key("Test CA", EVP_RSA_gen(2048), EVP_sha256());
	assert_false(crl_issued_by(c, rsa_named->x509));
	pki_free(rsa_named);
	crl_unref(c);

	EVP_PKEY_free(rsa);
	pki_free(rsa_ca);
	pki_free(rsa_twin);
	pki_free(ed_ca);
	pki_free(ed_twin);
	assert_int_equal(ERR_peek_error(), 0);
}

/* ---- extensions and scope ----------------------------------------------- */

static int t_unusable_with_crl_ext(X509_EXTENSION *ext)
{
	X509_CRL *x = t_crl(fx.ca, T_LAST, T_NEXT);
	struct crl *c;
	int r;

	CHECK(X509_CRL_add_ext(x, ext, -1) == 1);
	X509_EXTENSION_free(ext);
	c = t_load(x, fx.ca);
	r = crl_unusable(c);
	crl_unref(c);
	return r;
}

static int t_unusable_with_conf(int nid, const char *value)
{
	X509_CRL *x = t_crl(fx.ca, T_LAST, T_NEXT);
	struct crl *c;
	int r;

	t_crl_ext(x, fx.ca, nid, value);
	c = t_load(x, fx.ca);
	r = crl_unusable(c);
	crl_unref(c);
	return r;
}

/* cRLNumber or deltaCRLIndicator 4 (openssl.cnf cannot make them). */
static X509_EXTENSION *t_int_ext(int nid, int crit)
{
	ASN1_INTEGER *n = ASN1_INTEGER_new();
	X509_EXTENSION *ext;

	CHECK(n != NULL && ASN1_INTEGER_set(n, 4) == 1);
	ext = X509V3_EXT_i2d(nid, crit, n);
	CHECK(ext != NULL);
	ASN1_INTEGER_free(n);
	return ext;
}

static void test_crl_extensions(void **state)
{
	(void)state;
	assert_int_equal(t_unusable_with_crl_ext(t_private_ext(1)),
	                 X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION);
	assert_int_equal(t_unusable_with_crl_ext(t_private_ext(0)), 0);
	assert_int_equal(t_unusable_with_conf(NID_authority_key_identifier,
	                 "keyid:always"), 0);
	assert_int_equal(t_unusable_with_crl_ext(t_int_ext(NID_crl_number, 1)), 0);
	assert_int_equal(t_unusable_with_crl_ext(t_int_ext(NID_delta_crl, 1)),
	                 X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION);
	/* non-critical (non-conforming) is still a delta CRL */
	assert_int_equal(t_unusable_with_crl_ext(t_int_ext(NID_delta_crl, 0)),
	                 X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION);
	assert_int_equal(t_unusable_with_conf(NID_issuing_distribution_point,
	                 "critical,onlyuser:TRUE"), 0);
	assert_int_equal(t_unusable_with_conf(NID_issuing_distribution_point,
	                 "critical,indirectCRL:TRUE"),
	                 X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION);
	assert_int_equal(t_unusable_with_conf(NID_issuing_distribution_point,
	                 "critical,onlysomereasons:keyCompromise"),
	                 X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION);
	assert_int_equal(t_unusable_with_conf(NID_issuing_distribution_point,
	                 "critical,onlyuser:TRUE,onlyCA:TRUE"),
	                 X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION);
	assert_int_equal(t_unusable_with_conf(NID_issuing_distribution_point,
	                 "critical,onlyAA:TRUE"), X509_V_ERR_DIFFERENT_CRL_SCOPE);
}

static int t_unusable_with_entry_ext(X509_EXTENSION *ext)
{
	X509_CRL *x = t_crl(fx.ca, T_LAST, T_NEXT);
	X509_REVOKED *r = t_revoke_u64(x, 3);
	struct crl *c;
	int rc;

	t_revoke_u64(x, 4);
	CHECK(ext != NULL);
	CHECK(X509_REVOKED_add_ext(r, ext, -1) == 1);
	X509_EXTENSION_free(ext);
	c = t_load(x, fx.ca);
	rc = crl_unusable(c);
	/* the entries are indexed either way */
	assert_true(t_revoked_u64(c, 3));
	assert_true(t_revoked_u64(c, 4));
	crl_unref(c);
	return rc;
}

static void test_entry_extensions(void **state)
{
	ASN1_GENERALIZEDTIME *when = ASN1_GENERALIZEDTIME_set(NULL, T_LAST - 86400);
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	X509_NAME *nm = X509_NAME_dup(X509_get_subject_name(fx.other->x509));

	(void)state;
	CHECK(when != NULL && gens != NULL && gn != NULL && nm != NULL);
	GENERAL_NAME_set0_value(gn, GEN_DIRNAME, nm);
	CHECK(sk_GENERAL_NAME_push(gens, gn) > 0);
	assert_int_equal(t_unusable_with_entry_ext(t_private_ext(1)),
	                 X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION);
	assert_int_equal(t_unusable_with_entry_ext(t_private_ext(0)), 0);
	assert_int_equal(t_unusable_with_entry_ext(
	                 X509V3_EXT_i2d(NID_invalidity_date, 1, when)), 0);
	assert_int_equal(t_unusable_with_entry_ext(
	                 X509V3_EXT_i2d(NID_certificate_issuer, 1, gens)),
	                 X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION);
	assert_int_equal(t_unusable_with_entry_ext(
	                 X509V3_EXT_i2d(NID_certificate_issuer, 0, gens)),
	                 X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION);
	ASN1_GENERALIZEDTIME_free(when);
	GENERAL_NAMES_free(gens);
}

static X509 *t_with_crldp(const struct pki_cert *c, const char *uri)
{
	X509 *x = X509_dup(c->x509);
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	char v[256];

	CHECK(x != NULL);
	snprintf(v, sizeof(v), "URI:%s", uri);
	X509V3_set_ctx(&ctx, NULL, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_crl_distribution_points, v);
	CHECK(ext != NULL);
	CHECK(X509_add_ext(x, ext, -1) == 1);
	X509_EXTENSION_free(ext);
	return x;
}

static struct crl *t_with_idp(const char *value)
{
	X509_CRL *x = t_crl(fx.ca, T_LAST, T_NEXT);

	if (value != NULL)
		t_crl_ext(x, fx.ca, NID_issuing_distribution_point, value);
	return t_load(x, fx.ca);
}

static void test_covers(void **state)
{
	struct crl *none = t_with_idp(NULL);
	struct crl *user = t_with_idp("critical,onlyuser:TRUE");
	struct crl *ca = t_with_idp("critical,onlyCA:TRUE");
	struct crl *attr = t_with_idp("critical,onlyAA:TRUE");
	struct crl *dp = t_with_idp("critical,fullname:URI:http://crl.example/1.crl");
	X509 *leaf1 = t_with_crldp(fx.leaf, "http://crl.example/1.crl");
	X509 *leaf2 = t_with_crldp(fx.leaf, "http://crl.example/2.crl");

	(void)state;
	assert_true(crl_covers(none, fx.leaf->x509));
	assert_true(crl_covers(none, fx.ca->x509));
	assert_true(crl_covers(none, leaf2));
	assert_true(crl_covers(user, fx.leaf->x509));
	assert_false(crl_covers(user, fx.ca->x509));
	assert_false(crl_covers(ca, fx.leaf->x509));
	assert_true(crl_covers(ca, fx.ca->x509));
	assert_false(crl_covers(attr, fx.leaf->x509));
	assert_false(crl_covers(attr, fx.ca->x509));
	/* a partitioned CRL covers the certificates that point at it */
	assert_true(crl_covers(dp, leaf1));
	assert_false(crl_covers(dp, leaf2));
	assert_false(crl_covers(dp, fx.leaf->x509));
	X509_free(leaf1);
	X509_free(leaf2);
	crl_unref(none);
	crl_unref(user);
	crl_unref(ca);
	crl_unref(attr);
	crl_unref(dp);
}

/* ---- bytes and files ---------------------------------------------------- */

static uint8_t *t_small_der(size_t *len)
{
	X509_CRL *x = t_crl(fx.ca, T_LAST, T_NEXT);
	uint8_t *der;

	t_revoke_u64(x, 1);
	t_reason(t_revoke_u64(x, 2), CRL_REASON_CA_COMPROMISE, 0);
	der = t_sign_der(x, fx.ca, len);
	X509_CRL_free(x);
	return der;
}

static void test_truncated_and_trailing(void **state)
{
	size_t len;
	uint8_t *der = t_small_der(&len), *longer;
	char err[256];
	struct crl *c;

	(void)state;
	for (size_t n = 0; n < len; n++) {
		err[0] = '\0';
		c = crl_new(der, n, err, sizeof(err));
		if (c != NULL)
			fail_msg("a %zu-byte prefix of %zu loaded", n, len);
		assert_true(err[0] != '\0');
	}
	longer = malloc(len + 1);
	CHECK(longer != NULL);
	memcpy(longer, der, len);
	longer[len] = 0;
	c = crl_new(longer, len + 1, err, sizeof(err));
	assert_null(c);
	assert_string_equal(err, "1 bytes after the CRL");
	c = crl_new(longer, len, err, sizeof(err));
	assert_non_null(c);
	crl_unref(c);
	free(longer);
	free(der);
	assert_int_equal(ERR_peek_error(), 0);
}

static void t_write(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	CHECK(f != NULL);
	CHECK(fwrite(data, 1, len, f) == len);
	CHECK(fclose(f) == 0);
}

static void t_path(char *buf, size_t len, const char *name)
{
	CHECK((size_t)snprintf(buf, len, "%s/%s", fx.dir, name) < len);
}

/* Load `path`, expect failure, and compare the message with
 * "<path><suffix>" (or "<prefix><path><suffix>"). */
static void t_load_fails(const char *path, const char *prefix,
                         const char *suffix)
{
	struct crl **v = (struct crl **)&v;
	size_t n = 99;
	char err[512], want[600];

	assert_int_equal(crl_load_file(path, &v, &n, err, sizeof(err)), -1);
	assert_null(v);
	assert_int_equal(n, 0);
	snprintf(want, sizeof(want), "%s%s%s", prefix, path, suffix);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("got \"%s\", want \"%s...\"", err, want);
}

static void test_file_pem_multi(void **state)
{
	char path[512], err[512];
	struct crl **v;
	size_t n;
	FILE *f;

	(void)state;
	t_path(path, sizeof(path), "multi.pem");
	f = fopen(path, "w");
	CHECK(f != NULL);
	/* a certificate block first: skipped, as PEM_read_bio_X509_CRL does */
	CHECK(PEM_write_X509(f, fx.other->x509) == 1);
	for (uint64_t i = 1; i <= 3; i++) {
		X509_CRL *x = t_crl(fx.ca, T_LAST, T_NEXT);

		for (uint64_t s = 0; s < i; s++)
			t_revoke_u64(x, 100 + s);
		CHECK(X509_CRL_sign(x, fx.ca->key, EVP_sha256()) > 0);
		CHECK(PEM_write_X509_CRL(f, x) == 1);
		X509_CRL_free(x);
	}
	CHECK(fclose(f) == 0);
	assert_int_equal(crl_load_file(path, &v, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(crl_count(v[i]), i + 1);
		assert_true(crl_issued_by(v[i], fx.ca->x509));
		if (i > 0)
			assert_memory_not_equal(crl_digest(v[i]), crl_digest(v[i - 1]), 32);
	}
	for (size_t i = 0; i < n; i++)
		crl_unref(v[i]);
	free(v);
}

static void test_file_der(void **state)
{
	char path[512], err[512];
	size_t len, n;
	uint8_t *der = t_small_der(&len);
	uint8_t sum[32];
	unsigned int sl;
	struct crl **v;

	(void)state;
	t_path(path, sizeof(path), "one.der");
	t_write(path, der, len);
	assert_int_equal(crl_load_file(path, &v, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(crl_count(v[0]), 2);
	CHECK(EVP_Digest(der, len, sum, &sl, EVP_sha256(), NULL) == 1);
	assert_memory_equal(crl_digest(v[0]), sum, 32);
	crl_unref(v[0]);
	free(v);

	/* trailing bytes, and a truncated file */
	der = realloc(der, len + 2);
	CHECK(der != NULL);
	der[len] = 0x30;
	der[len + 1] = 0x00;
	t_write(path, der, len + 2);
	t_load_fails(path, "", ": not a PEM or DER CRL");
	t_write(path, der, len - 1);
	t_load_fails(path, "", ": not a PEM or DER CRL");
	free(der);
}

static void test_file_errors(void **state)
{
	static const char garbage[] = "this is not a CRL\n\x01\x02\x03";
	static const char bad_pem[] =
		"-----BEGIN X509 CRL-----\n"
		"MAMCAQE=\n"                    /* 30 03 02 01 01: not a CRL */
		"-----END X509 CRL-----\n";
	char path[512], big[512], dir[512];
	FILE *f;
	int fd;

	(void)state;
	t_path(path, sizeof(path), "garbage.crl");
	t_write(path, garbage, sizeof(garbage) - 1);
	t_load_fails(path, "", ": not a PEM or DER CRL");
	t_write(path, "", 0);
	t_load_fails(path, "", ": not a PEM or DER CRL");

	/* CRL 2 of a PEM file does not parse */
	f = fopen(path, "w");
	CHECK(f != NULL);
	{
		X509_CRL *x = t_crl(fx.ca, T_LAST, T_NEXT);

		CHECK(X509_CRL_sign(x, fx.ca->key, EVP_sha256()) > 0);
		CHECK(PEM_write_X509_CRL(f, x) == 1);
		X509_CRL_free(x);
	}
	CHECK(fputs(bad_pem, f) >= 0);
	CHECK(fclose(f) == 0);
	t_load_fails(path, "", ": CRL 2 does not parse: ");

	/* more than CRL_MAX_PER_FILE */
	f = fopen(path, "w");
	CHECK(f != NULL);
	{
		X509_CRL *x = t_crl(fx.ca, T_LAST, T_NEXT);

		CHECK(X509_CRL_sign(x, fx.ca->key, EVP_sha256()) > 0);
		for (int i = 0; i <= CRL_MAX_PER_FILE; i++)
			CHECK(PEM_write_X509_CRL(f, x) == 1);
		X509_CRL_free(x);
	}
	CHECK(fclose(f) == 0);
	t_load_fails(path, "", ": more than 64 CRLs");

	/* too large: a sparse file one byte over the limit */
	t_path(big, sizeof(big), "big.crl");
	fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd != -1);
	CHECK(ftruncate(fd, (off_t)CRL_MAX_FILE + 1) == 0);
	CHECK(close(fd) == 0);
	t_load_fails(big, "cannot read ", ": File too large");
	CHECK(unlink(big) == 0);

	t_path(path, sizeof(path), "missing.crl");
	t_load_fails(path, "cannot read ", ": No such file or directory");
	t_path(dir, sizeof(dir), "");
	t_load_fails(dir, "cannot read ", ": Is a directory");
	assert_int_equal(ERR_peek_error(), 0);
}

/* ---- a large CRL -------------------------------------------------------- */

#define BIG_N 100000

/* Serial i of the big CRL: 10 octets, 5a a5 then 2*i (even). */
static void big_serial(uint8_t out[10], uint64_t v)
{
	out[0] = 0x5a;
	out[1] = 0xa5;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)(v >> (56 - 8 * i));
}

static void test_large_crl(void **state)
{
	X509_CRL *x = t_crl(fx.ca, T_LAST, T_NEXT);
	uint8_t s[10], *der;
	size_t len;
	char err[256];
	struct crl *c;

	(void)state;
	for (uint64_t i = 0; i < BIG_N; i++) {
		/* in no particular order: crl_new sorts */
		big_serial(s, 2 * ((i * 7919) % BIG_N));
		t_revoke(x, s, sizeof(s), 0);
	}
	der = t_sign_der(x, fx.ca, &len);
	X509_CRL_free(x);
	c = crl_new(der, len, err, sizeof(err));
	free(der);
	if (c == NULL)
		fail_msg("crl_new: %s", err);
	assert_int_equal(crl_count(c), BIG_N);
	for (uint64_t i = 0; i < BIG_N; i++) {
		big_serial(s, 2 * i);
		if (!t_revoked(c, s, sizeof(s), 0, 0))
			fail_msg("serial %llu not found", (unsigned long long)i);
	}
	for (int i = 0; i < 1000; i++) {
		uint64_t r;

		CHECK(RAND_bytes((unsigned char *)&r, sizeof(r)) == 1);
		big_serial(s, r | 1);
		assert_false(t_revoked(c, s, sizeof(s), 0, 0));
		assert_false(t_revoked_u64(c, r));
	}
	assert_true(crl_issued_by(c, fx.ca->x509));
	crl_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_serial_shapes),
		cmocka_unit_test(test_remove_from_crl_and_duplicates),
		cmocka_unit_test(test_empty_crl),
		cmocka_unit_test(test_refcount),
		cmocka_unit_test(test_time_boundaries),
		cmocka_unit_test(test_generalized_time),
		cmocka_unit_test(test_bad_times),
		cmocka_unit_test(test_issued_by),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_signature_algorithms),
		cmocka_unit_test(test_crl_extensions),
		cmocka_unit_test(test_entry_extensions),
		cmocka_unit_test(test_covers),
		cmocka_unit_test(test_truncated_and_trailing),
		cmocka_unit_test(test_file_pem_multi),
		cmocka_unit_test(test_file_der),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_large_crl),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
