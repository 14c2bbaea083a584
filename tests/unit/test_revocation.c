/*
 * test_revocation.c - the pieces of revocation freshness that need no
 * network: the [ca] revocation keys (ca_revocation_set), the names of
 * crl-url copies in state-dir, the rule a replacing CRL must follow
 * (ca_crl_successor: signed by the section, no lower cRLNumber, no older
 * thisUpdate), and the OCSP response verifier on hostile input (garbage,
 * every truncation of a real response, a response from another CA).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "crl.h"
#include "fileio.h"
#include "ocsp.h"
#include "pki.h"

static struct {
	char *dir;
	struct pki_cert *ca, *other, *leaf;
	struct ca_entry *entry;       /* [ca t] holding fx.ca */
} fx;

static int group_setup(void **state)
{
	struct pki_cert_opts ca = { .cn = "Test CA", .is_ca = 1 };
	struct pki_cert_opts other = { .cn = "Test CA", .is_ca = 1 };
	struct pki_cert_opts leaf = { .cn = "client", .eku = PKI_EKU_CLIENT };
	const struct pki_cert *one[1];
	char path[4096], err[512];
	struct ca_spec spec = { .name = "t" };
	int reused, which;

	(void)state;
	fx.dir = pki_tmpdir();
	fx.ca = pki_make(&ca, NULL);
	fx.other = pki_make(&other, NULL);   /* same name, another key */
	fx.leaf = pki_make(&leaf, fx.ca);
	one[0] = fx.ca;
	snprintf(path, sizeof(path), "%s/ca.pem", fx.dir);
	pki_write_pem(path, one, 1);
	spec.file = path;
	if (ca_load(&spec, NULL, &fx.entry, &reused, &which, err, sizeof(err)) != 0)
		fail_msg("ca_load: %s", err);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	ca_unref(fx.entry);
	pki_free(fx.ca);
	pki_free(fx.other);
	pki_free(fx.leaf);
	pki_rmdir(fx.dir);
	return 0;
}

/* ---- keys ---------------------------------------------------------------- */

static int set(struct ca_revocation *r, const char *k, const char *v)
{
	char err[256] = "";
	int rc = ca_revocation_set(r, k, v, err, sizeof(err));

	if (rc == -1 && err[0] == '\0')
		fail_msg("%s = %s refused without a reason", k, v);
	return rc;
}

static void test_keys(void **state)
{
	struct ca_revocation r;
	char url[64];

	(void)state;
	ca_revocation_defaults(&r);
	assert_int_equal(r.crl_refresh_ms, 3600u * 1000);
	assert_int_equal(r.crl_fetch_timeout_ms, 10u * 1000);
	assert_int_equal(r.ocsp_timeout_ms, 500u);
	assert_int_equal(r.ocsp_max_age_ms, 3600u * 1000);
	assert_int_equal(r.ocsp_mode, OCSP_MODE_OFF);

	assert_int_equal(set(&r, "crl-url", "http://crl.example/a.crl"), 0);
	assert_int_equal(set(&r, "crl-url", "https://crl.example/b.crl"), 0);
	assert_int_equal(set(&r, "crl-url", "http://crl.example/a.crl"), -1);
	assert_int_equal(set(&r, "crl-url", "ftp://crl.example/a.crl"), -1);
	assert_int_equal(set(&r, "crl-url", "file:///etc/passwd"), -1);
	assert_int_equal(set(&r, "crl-url", "http://a b/"), -1);
	assert_int_equal(set(&r, "crl-url", ""), -1);
	for (int i = 2; i < CA_MAX_CRL_URLS; i++) {
		snprintf(url, sizeof(url), "http://crl.example/%d.crl", i);
		assert_int_equal(set(&r, "crl-url", url), 0);
	}
	assert_int_equal(set(&r, "crl-url", "http://crl.example/one-too-many"), -1);
	assert_int_equal(r.n_crl_urls, CA_MAX_CRL_URLS);

	assert_int_equal(set(&r, "crl-refresh", "30s"), 0);
	assert_int_equal(r.crl_refresh_ms, 30000u);
	assert_int_equal(set(&r, "crl-refresh", "1500"), 0);   /* bare: ms */
	assert_int_equal(r.crl_refresh_ms, 1500u);
	assert_int_equal(set(&r, "crl-refresh", "0"), -1);
	assert_int_equal(set(&r, "crl-refresh", "1d"), -1);
	assert_int_equal(set(&r, "crl-refresh-margin", "10m"), 0);
	assert_int_equal(set(&r, "crl-fetch-timeout", "-1s"), -1);
	assert_int_equal(set(&r, "crl-grace", "0"), 0);        /* 0 is fine */
	assert_int_equal(set(&r, "crl-grace", "6h"), 0);
	assert_int_equal(r.crl_grace_ms, 6u * 3600 * 1000);
	assert_int_equal(set(&r, "crl-stale", "allow"), 0);
	assert_int_equal(r.crl_stale_allow, 1);
	assert_int_equal(set(&r, "crl-stale", "deny"), 0);
	assert_int_equal(r.crl_stale_allow, 0);
	assert_int_equal(set(&r, "crl-stale", "Allow"), -1);

	assert_int_equal(set(&r, "ocsp", "hard"), 0);
	assert_int_equal(r.ocsp_mode, OCSP_MODE_HARD);
	assert_int_equal(set(&r, "ocsp", "soft"), 0);
	assert_int_equal(r.ocsp_mode, OCSP_MODE_SOFT);
	assert_int_equal(set(&r, "ocsp", "on"), -1);
	assert_int_equal(set(&r, "ocsp-url", "http://ocsp.example/"), 0);
	assert_int_equal(set(&r, "ocsp-url", "http://ocsp2.example/"), 0);  /* last wins */
	assert_string_equal(r.ocsp_url, "http://ocsp2.example/");
	assert_int_equal(set(&r, "ocsp-url", "ldap://x"), -1);
	assert_int_equal(set(&r, "ocsp-timeout", "250ms"), 0);
	assert_int_equal(r.ocsp_timeout_ms, 250u);
	assert_int_equal(set(&r, "ocsp-max-age", "0"), -1);

	assert_int_equal(set(&r, "crl-urls", "http://x/"), 1);   /* not ours */
	assert_int_equal(set(&r, "file", "x.pem"), 1);
	ca_revocation_clear(&r);
	assert_int_equal(r.n_crl_urls, 0);
	assert_null(r.ocsp_url);
}

static void test_state_path(void **state)
{
	char a[512], b[512], c[512], d[512];

	(void)state;
	ca_crl_state_path("/var/lib/x", "t", "http://crl.example/a.crl", a, sizeof(a));
	ca_crl_state_path("/var/lib/x", "t", "http://crl.example/a.crl", b, sizeof(b));
	ca_crl_state_path("/var/lib/x", "t2", "http://crl.example/a.crl", c, sizeof(c));
	ca_crl_state_path("/var/lib/x", "t", "http://crl.example/b.crl", d, sizeof(d));
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_string_not_equal(a, d);
	/* STATE/crl/ + 32 hex digits + .crl: nothing of the URL in the name. */
	assert_int_equal(strlen(a), strlen("/var/lib/x/crl/") + 32 + 4);
	assert_memory_equal(a, "/var/lib/x/crl/", 15);
	assert_string_equal(a + strlen(a) - 4, ".crl");
	assert_int_equal(strspn(a + 15, "0123456789abcdef"), 32);
}

/* ---- CRL succession ------------------------------------------------------- */

/* A CRL of `by` with cRLNumber `number` (-1: none), lastUpdate now+lu. */
static struct crl *t_crl(const struct pki_cert *by, long number, long lu)
{
	X509_CRL *x = pki_crl(by, NULL, 0, lu, lu + 86400);
	unsigned char *der = NULL;
	struct crl *c;
	char err[256];
	int len;

	if (number >= 0) {
		ASN1_INTEGER *n = ASN1_INTEGER_new();

		if (n == NULL || ASN1_INTEGER_set(n, number) != 1 ||
		    X509_CRL_add1_ext_i2d(x, NID_crl_number, n, 0, 0) != 1 ||
		    X509_CRL_sign(x, by->key, EVP_sha256()) <= 0)
			fail_msg("cannot number the CRL");
		ASN1_INTEGER_free(n);
	}
	len = i2d_X509_CRL(x, &der);
	assert_true(len > 0);
	c = crl_new(der, (size_t)len, err, sizeof(err));
	if (c == NULL)
		fail_msg("crl_new: %s", err);
	OPENSSL_free(der);
	X509_CRL_free(x);
	return c;
}

static void expect_successor(struct crl *old, struct crl *r, int need_signed,
                             int want, const char *why)
{
	char err[256] = "";

	assert_int_equal(ca_crl_successor(fx.entry, old, r, need_signed, err,
	                                  sizeof(err)), want);
	if (why != NULL && strstr(err, why) == NULL)
		fail_msg("want \"%s\" in \"%s\"", why, err);
}

static void test_successor(void **state)
{
	struct crl *n1 = t_crl(fx.ca, 1, -600), *n2 = t_crl(fx.ca, 2, -300);
	struct crl *n2old = t_crl(fx.ca, 2, -900), *none = t_crl(fx.ca, -1, -60);
	struct crl *foreign = t_crl(fx.other, 3, -60);
	struct crl *big = t_crl(fx.ca, 0x7fffffffL, -60);

	(void)state;
	assert_non_null(crl_number(n1));
	assert_null(crl_number(none));
	assert_int_equal(ASN1_INTEGER_get(crl_number(n2)), 2);

	expect_successor(NULL, n1, 1, 0, NULL);           /* first: signed is enough */
	expect_successor(n1, n2, 1, 0, NULL);             /* newer */
	expect_successor(n2, n2, 1, 0, NULL);             /* the same */
	expect_successor(n2, n1, 1, -1, "number 1 is lower than the loaded CRL's 2");
	expect_successor(n2, n2old, 1, -1, "thisUpdate");  /* same number, older */
	expect_successor(n1, none, 1, 0, NULL);           /* no number: time only */
	expect_successor(none, n1, 1, -1, "older");       /* n1 is older than none */
	expect_successor(n1, big, 1, 0, NULL);
	expect_successor(NULL, foreign, 1, -1, "not signed by a certificate of [ca t]");
	expect_successor(n1, foreign, 1, -1, "not signed");
	expect_successor(n1, foreign, 0, 0, NULL);         /* when not required */

	crl_unref(n1);
	crl_unref(n2);
	crl_unref(n2old);
	crl_unref(none);
	crl_unref(foreign);
	crl_unref(big);
}

/* ---- OCSP responses --------------------------------------------------------- */

static enum ocsp_status t_ocsp(const uint8_t *der, size_t len, char *why,
                               size_t whylen)
{
	OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), fx.leaf->x509, fx.ca->x509);
	STACK_OF(X509) *cas = sk_X509_new_null();
	time_t nu = 1;
	enum ocsp_status st;

	assert_non_null(id);
	assert_non_null(cas);
	assert_true(sk_X509_push(cas, fx.ca->x509) > 0);
	why[0] = '\0';
	st = ocsp_response_status(der, len, id, NULL, fx.ca->x509, cas, 3600, &nu,
	                          why, whylen);
	assert_int_equal(ERR_peek_error(), 0);
	if (st != OCSP_GOOD && st != OCSP_REVOKED)
		assert_true(why[0] != '\0');
	sk_X509_free(cas);
	OCSP_CERTID_free(id);
	return st;
}

static void test_ocsp_hostile(void **state)
{
	static const uint8_t junk[] = { 0x30, 0x03, 0x0a, 0x01, 0x00, 0xff };
	/* OCSPResponse { responseStatus tryLater(3) } */
	static const uint8_t try_later[] = { 0x30, 0x03, 0x0a, 0x01, 0x03 };
	char *data = NULL, why[256];
	size_t len = 0;

	(void)state;
	assert_int_equal(t_ocsp(NULL, 0, why, sizeof(why)), OCSP_UNAVAILABLE);
	assert_int_equal(t_ocsp(junk, sizeof(junk), why, sizeof(why)), OCSP_UNAVAILABLE);
	assert_non_null(strstr(why, "not an OCSP response"));   /* trailing byte */
	assert_int_equal(t_ocsp(try_later, sizeof(try_later), why, sizeof(why)),
	                 OCSP_UNAVAILABLE);
	assert_non_null(strstr(why, "trylater"));
	/* A real response (the fuzz seed), signed by a CA that is not ours:
	 * refused whole and in every truncation. */
	if (file_read("tests/fuzz/corpus/ocsp/good.der", 1 << 20, &data, &len) != 0)
		skip();
	assert_int_equal(t_ocsp((const uint8_t *)data, len, why, sizeof(why)),
	                 OCSP_UNAVAILABLE);
	assert_non_null(strstr(why, "not signed by the issuer"));
	for (size_t n = 0; n < len; n++)
		assert_int_equal(t_ocsp((const uint8_t *)data, n, why, sizeof(why)),
		                 OCSP_UNAVAILABLE);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_state_path),
		cmocka_unit_test(test_successor),
		cmocka_unit_test(test_ocsp_hostile),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
