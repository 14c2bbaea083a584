/*
 * test_verify.c - trust_policy_new() / trust_verify() against a PKI
 * generated at test time (tests/unit/pki.c).
 *
 * CA entries and trust parameters are built by hand here, so these tests
 * do not depend on config.c. Every call goes through verify_raw(), which
 * checks that trust_verify() leaves the OpenSSL error queue empty and
 * does not touch the verdict fields around its result.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "trust.h"
#include "verdict.h"

#define LEAF1_SERIAL UINT64_C(0x1234ABCD)
#define REVOKED_SERIAL UINT64_C(0x5005)
#define INTER2_SERIAL UINT64_C(0x6006)
#define LEAF1_NOT_AFTER (30L * 86400)
#define LEAF1_SPIFFE "spiffe://partner-a.example/ns/default/sa/client1"

/* The whole PKI, built once per run. */
struct fixture {
	time_t now;
	time_t leaf1_t0, leaf1_t1;   /* clock before and after leaf1 was made */
	struct pki_cert *root, *inter, *leaf1;
	struct pki_cert *other_root, *other_leaf;
	struct pki_cert *leaf_expired, *leaf_future;
	struct pki_cert *inter_expired, *leaf_under_expired;
	struct pki_cert *leaf_revoked;
	struct pki_cert *inter2, *leaf_under_inter2;   /* inter2 revoked by root */
	struct pki_cert *leaf_server, *leaf_noeku, *leaf_nosan;
	struct pki_cert *root_pl0, *inter_pl, *leaf_pl;
	struct pki_cert *leaf_badsig, *leaf_badakid, *fake_inter;
	struct pki_cert *self_signed;
	X509_CRL *crl_inter, *crl_root, *crl_inter_expired, *crl_inter2;
};

static struct fixture fx;

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */

/* A struct crl of an X509_CRL, through its DER (as crl_load_file() would
 * build it). */
static struct crl *crl_of(X509_CRL *x)
{
	uint8_t *der = NULL;
	int len = i2d_X509_CRL(x, &der);
	char err[256] = "";
	struct crl *c;

	assert_true(len > 0);
	c = crl_new(der, (size_t)len, err, sizeof(err));
	OPENSSL_free(der);
	if (c == NULL)
		fail_msg("crl_new: %s", err);
	return c;
}

/* A CA entry (one reference) holding `certs` and, as its own CRL file,
 * `crls`. ca_unref() frees it. */
static struct ca_entry *ca_new(const char *name,
                               const struct pki_cert *const *certs, size_t n,
                               X509_CRL *const *crls, size_t ncrl)
{
	static uint64_t next_id = UINT64_C(1) << 40;
	struct ca_entry *ca = calloc(1, sizeof(*ca));

	assert_non_null(ca);
	atomic_init(&ca->refs, 1);
	ca->id = next_id++;
	ca->name = strdup(name);
	ca->certs = sk_X509_new_null();
	assert_non_null(ca->name);
	assert_non_null(ca->certs);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(X509_up_ref(certs[i]->x509), 1);
		assert_true(sk_X509_push(ca->certs, certs[i]->x509) > 0);
	}
	if (ncrl > 0) {
		ca->crl_files = calloc(1, sizeof(*ca->crl_files));
		assert_non_null(ca->crl_files);
		ca->n_crl_files = 1;
		ca->crl_files[0].path = strdup("test.crl");
		ca->crl_files[0].crls = calloc(ncrl, sizeof(struct crl *));
		assert_non_null(ca->crl_files[0].path);
		assert_non_null(ca->crl_files[0].crls);
		for (size_t i = 0; i < ncrl; i++)
			ca->crl_files[0].crls[ca->crl_files[0].n_crls++] = crl_of(crls[i]);
	}
	return ca;
}

/* The parameters of a trust policy, the storage they point into, and
 * the policy built from them (NULL until tpol_prepare()). */
struct tpol {
	struct trust_params params;
	struct trust_policy *tp;
	struct ca_entry *cas[4];
	struct crl *crls[16];
	const char *ids[4];
	uint8_t pins[4][32];
};

static void tpol_init(struct tpol *t, enum crl_check crl,
                      enum policy_purpose purpose)
{
	memset(t, 0, sizeof(*t));
	t->params.purpose = purpose;
	t->params.crl_check = crl;
	t->params.verify_depth = 5;
	t->params.cas = t->cas;
	t->params.crls = t->crls;
	t->params.identities = t->ids;
	t->params.pins = (const uint8_t (*)[32])t->pins;
}

/* (Re)build the policy from the parameters; the old one is released. */
static void tpol_prepare(struct tpol *t)
{
	char err[256] = "";

	trust_policy_unref(t->tp);
	t->tp = trust_policy_new(&t->params, err, sizeof(err));
	if (t->tp == NULL)
		fail_msg("trust_policy_new: %s", err);
	assert_non_null(t->tp->store);
	assert_int_equal(ERR_peek_error(), 0);
}

/* Policies are immutable: a change made after tpol_prepare() builds a
 * new one. */
static void tpol_changed(struct tpol *t)
{
	if (t->tp != NULL)
		tpol_prepare(t);
}

/* Add a CA (the policy takes over the reference) and its own CRLs. */
static void tpol_add_ca(struct tpol *t, struct ca_entry *ca)
{
	assert_true(t->params.n_cas < 4);
	t->cas[t->params.n_cas++] = ca;
	for (size_t i = 0; i < ca_crl_count(ca); i++) {
		assert_true(t->params.n_crls < 16);
		t->crls[t->params.n_crls++] = ca_crl_at(ca, i);
	}
	tpol_changed(t);
}

static void tpol_add_id(struct tpol *t, const char *id)
{
	assert_true(t->params.n_identities < 4);
	t->ids[t->params.n_identities++] = id;
	tpol_changed(t);
}

static void sha256(const uint8_t *der, size_t len, uint8_t *md)
{
	unsigned int mdlen = 0;

	assert_int_equal(EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL), 1);
	assert_int_equal(mdlen, 32);
}

static void tpol_add_pin_of(struct tpol *t, const struct pki_cert *c)
{
	size_t len;
	uint8_t *der = pki_der(c, &len);

	assert_true(t->params.n_pins < 4);
	sha256(der, len, t->pins[t->params.n_pins++]);
	free(der);
	tpol_changed(t);
}

static void tpol_free(struct tpol *t)
{
	trust_policy_unref(t->tp);
	for (size_t i = 0; i < t->params.n_cas; i++)
		ca_unref(t->cas[i]);
	memset(t, 0, sizeof(*t));
}

/* A policy trusting one CA bundle of `n` certificates (no CRLs). */
static void tpol_simple(struct tpol *t, const char *ca_name,
                        const struct pki_cert *const *certs, size_t n)
{
	tpol_init(t, CRL_CHECK_NONE, PURPOSE_CLIENT);
	tpol_add_ca(t, ca_new(ca_name, certs, n, NULL, 0));
	tpol_prepare(t);
}

/* Sentinels for the verdict fields (verdict.c's) around the trust
 * result, which trust_verify() must leave alone. */
#define SENT_ACTION ACTION_LOG
#define SENT_MODE MODE_OPTIONAL
#define SENT_POLICY "sentinel-policy"

/* Run trust_verify() on raw bytes, into the trust result of a verdict,
 * with the checks every call must pass. */
static void verify_raw(const struct trust_policy *p, const uint8_t *cert,
                       size_t cert_len, const uint8_t *chain,
                       size_t chain_len, time_t at, struct verdict *v)
{
	memset(v, 0x5a, sizeof(*v));  /* garbage trust_verify must overwrite */
	v->action = SENT_ACTION;
	v->present = 1;
	v->has_policy = 1;
	v->mode = SENT_MODE;
	v->policy = SENT_POLICY;
	assert_int_equal(ERR_peek_error(), 0);
	trust_verify(p, cert, cert_len, chain, chain_len, at, &v->trust);
	assert_int_equal(ERR_peek_error(), 0);
	assert_int_equal(v->action, SENT_ACTION);
	assert_int_equal(v->present, 1);
	assert_int_equal(v->has_policy, 1);
	assert_int_equal(v->mode, SENT_MODE);
	assert_string_equal(v->policy, SENT_POLICY);
	assert_true(v->result >= RESULT_OK && v->result < RESULT_COUNT);
	/* v->ca names the anchor of a verified chain, and only then. */
	if (v->result == RESULT_OK || v->result == RESULT_IDENTITY_MISMATCH ||
	    v->result == RESULT_PIN_MISMATCH) {
		assert_int_equal(v->verify_error, 0);
		assert_non_null(v->ca);
	} else {
		assert_null(v->ca);
	}
	if (v->has_cert_info) {
		assert_int_equal(v->has_cert_info, 1);
		assert_true(strlen(v->subject) < sizeof(v->subject));
		assert_true(strlen(v->issuer) < sizeof(v->issuer));
		assert_int_equal(strlen(v->fingerprint), 64);
		assert_true(strlen(v->spiffe_id) < sizeof(v->spiffe_id));
	}
}

static void verify_at(const struct trust_policy *p, const struct pki_cert *leaf,
                      const struct pki_cert *const *chain, size_t n,
                      time_t at, struct verdict *v)
{
	size_t len, clen = 0;
	uint8_t *der = pki_der(leaf, &len);
	uint8_t *cder = n > 0 ? pki_chain_der(chain, n, &clen) : NULL;

	verify_raw(p, der, len, cder, clen, at, v);
	/* Whatever the result, a parseable leaf has its details. */
	assert_int_equal(v->has_cert_info, 1);
	free(der);
	free(cder);
}

static void verify(const struct trust_policy *p, const struct pki_cert *leaf,
                   const struct pki_cert *const *chain, size_t n,
                   struct verdict *v)
{
	verify_at(p, leaf, chain, n, fx.now, v);
}

static void expect(const struct verdict *v, enum mtls_result r, int err)
{
	if (v->result != r || v->verify_error != err)
		print_error("result %d (want %d), verify_error %d (%s) (want %d)\n",
		            v->result, r, v->verify_error,
		            X509_verify_cert_error_string(v->verify_error), err);
	assert_int_equal(v->result, r);
	assert_int_equal(v->verify_error, err);
}

/* ---------------------------------------------------------------------- */
/* Fixture                                                                */

static int group_setup(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	fx.now = time(NULL);

	fx.root = pki_make(&(struct pki_cert_opts){ .cn = "Root A",
	        .org = "Partner A", .is_ca = 1, .not_after = 3650L * 86400 }, NULL);
	fx.inter = pki_make(&(struct pki_cert_opts){ .cn = "Intermediate A",
	        .org = "Partner A", .is_ca = 1, .not_after = 365L * 86400 },
	        fx.root);
	/* Under valgrind on a loaded machine the fixture takes seconds:
	 * bracket leaf1's creation to check its dates exactly. */
	fx.leaf1_t0 = time(NULL);
	fx.leaf1 = pki_make(&(struct pki_cert_opts){ .cn = "client1",
	        .org = "Partner A", .not_after = LEAF1_NOT_AFTER,
	        .eku = PKI_EKU_CLIENT, .serial = LEAF1_SERIAL,
	        .san_dns = { "client1.partner-a.example", NULL },
	        .san_uri = { "https://partner-a.example/x", LEAF1_SPIFFE, NULL },
	        .san_email = { "client1@partner-a.example", NULL } }, fx.inter);
	fx.leaf1_t1 = time(NULL);

	fx.other_root = pki_make(&(struct pki_cert_opts){ .cn = "Root B",
	        .org = "Partner B", .is_ca = 1 }, NULL);
	fx.other_leaf = pki_make(&(struct pki_cert_opts){ .cn = "client1",
	        .org = "Partner B", .eku = PKI_EKU_CLIENT }, fx.other_root);

	fx.leaf_expired = pki_make(&(struct pki_cert_opts){ .cn = "expired",
	        .not_before = -7200, .not_after = -3600,
	        .eku = PKI_EKU_CLIENT }, fx.inter);
	fx.leaf_future = pki_make(&(struct pki_cert_opts){ .cn = "future",
	        .not_before = 3600, .not_after = 7200,
	        .eku = PKI_EKU_CLIENT }, fx.inter);

	fx.inter_expired = pki_make(&(struct pki_cert_opts){
	        .cn = "Intermediate Expired", .is_ca = 1,
	        .not_before = -7200, .not_after = -3600 }, fx.root);
	fx.leaf_under_expired = pki_make(&(struct pki_cert_opts){
	        .cn = "under-expired", .eku = PKI_EKU_CLIENT },
	        fx.inter_expired);

	fx.leaf_revoked = pki_make(&(struct pki_cert_opts){ .cn = "revoked",
	        .eku = PKI_EKU_CLIENT, .serial = REVOKED_SERIAL }, fx.inter);
	fx.inter2 = pki_make(&(struct pki_cert_opts){
	        .cn = "Intermediate Revoked", .is_ca = 1,
	        .serial = INTER2_SERIAL }, fx.root);
	fx.leaf_under_inter2 = pki_make(&(struct pki_cert_opts){
	        .cn = "under-revoked-inter", .eku = PKI_EKU_CLIENT }, fx.inter2);
	fx.crl_inter = pki_crl(fx.inter, (uint64_t[]){ REVOKED_SERIAL }, 1,
	                       -3600, 86400);
	fx.crl_root = pki_crl(fx.root, (uint64_t[]){ INTER2_SERIAL }, 1,
	                      -3600, 86400);
	fx.crl_inter_expired = pki_crl(fx.inter, NULL, 0, -7200, -3600);
	fx.crl_inter2 = pki_crl(fx.inter2, NULL, 0, -3600, 86400);

	fx.leaf_server = pki_make(&(struct pki_cert_opts){ .cn = "server-only",
	        .eku = PKI_EKU_SERVER }, fx.inter);
	fx.leaf_noeku = pki_make(&(struct pki_cert_opts){ .cn = "no-eku",
	        .eku = PKI_EKU_NONE }, fx.inter);
	fx.leaf_nosan = pki_make(&(struct pki_cert_opts){ .cn = "no-san",
	        .eku = PKI_EKU_CLIENT_SERVER }, fx.inter);

	fx.root_pl0 = pki_make(&(struct pki_cert_opts){ .cn = "Root PL0",
	        .is_ca = 1, .has_pathlen = 1, .pathlen = 0 }, NULL);
	fx.inter_pl = pki_make(&(struct pki_cert_opts){ .cn = "Inter PL",
	        .is_ca = 1 }, fx.root_pl0);
	fx.leaf_pl = pki_make(&(struct pki_cert_opts){ .cn = "leaf-pl",
	        .eku = PKI_EKU_CLIENT }, fx.inter_pl);

	/* Issued "by" the real intermediate (issuer name and authority key
	 * identifier taken from it) but signed with an unrelated key. */
	{
		EVP_PKEY *k = EVP_EC_gen("P-256");
		struct pki_cert forger = { .x509 = fx.inter->x509, .key = k };

		assert_non_null(k);
		fx.leaf_badsig = pki_make(&(struct pki_cert_opts){
		        .cn = "forged", .eku = PKI_EKU_CLIENT }, &forger);
		EVP_PKEY_free(k);
	}
	/* Issued by a look-alike CA: same subject name as the intermediate,
	 * its own key, so the authority key identifier differs too. */
	fx.fake_inter = pki_make(&(struct pki_cert_opts){
	        .cn = "Intermediate A", .org = "Partner A", .is_ca = 1 }, NULL);
	fx.leaf_badakid = pki_make(&(struct pki_cert_opts){ .cn = "forged2",
	        .eku = PKI_EKU_CLIENT }, fx.fake_inter);

	fx.self_signed = pki_make(&(struct pki_cert_opts){ .cn = "selfie",
	        .eku = PKI_EKU_CLIENT }, NULL);
	return 0;
}

static int group_teardown(void **state)
{
	struct pki_cert **all[] = {
		&fx.root, &fx.inter, &fx.leaf1, &fx.other_root, &fx.other_leaf,
		&fx.leaf_expired, &fx.leaf_future, &fx.inter_expired,
		&fx.leaf_under_expired, &fx.leaf_revoked, &fx.inter2,
		&fx.leaf_under_inter2, &fx.leaf_server, &fx.leaf_noeku,
		&fx.leaf_nosan, &fx.root_pl0, &fx.inter_pl, &fx.leaf_pl,
		&fx.leaf_badsig, &fx.leaf_badakid, &fx.fake_inter,
		&fx.self_signed,
	};

	(void)state;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		pki_free(*all[i]);
		*all[i] = NULL;
	}
	X509_CRL_free(fx.crl_inter);
	X509_CRL_free(fx.crl_root);
	X509_CRL_free(fx.crl_inter_expired);
	X509_CRL_free(fx.crl_inter2);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Chains and anchors                                                     */

static void test_ok_leaf_plus_chain(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_OK, 0);
	assert_string_equal(v.ca, "ca-root");
	/* now == 0 means the current time, which is also inside validity. */
	verify_at(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1,
	          0, &v);
	expect(&v, RESULT_OK, 0);
	/* The presented chain may also carry the root. */
	verify(t.tp, fx.leaf1,
	       (const struct pki_cert *[]){ fx.inter, fx.root }, 2, &v);
	expect(&v, RESULT_OK, 0);
	assert_string_equal(v.ca, "ca-root");
	tpol_free(&t);
}

static void test_ok_partial_chain_intermediate_anchor(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_init(&t, CRL_CHECK_NONE, PURPOSE_CLIENT);
	/* An unrelated CA first, so v->ca has to be looked up. */
	tpol_add_ca(&t, ca_new("partner-b",
	            (const struct pki_cert *[]){ fx.other_root }, 1, NULL, 0));
	tpol_add_ca(&t, ca_new("partner-a-inter",
	            (const struct pki_cert *[]){ fx.inter }, 1, NULL, 0));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf1, NULL, 0, &v);
	expect(&v, RESULT_OK, 0);
	assert_string_equal(v.ca, "partner-a-inter");
	/* partner-b's own certificate verifies too, and is attributed to it. */
	verify(t.tp, fx.other_leaf, NULL, 0, &v);
	expect(&v, RESULT_OK, 0);
	assert_string_equal(v.ca, "partner-b");
	tpol_free(&t);
}

static void test_ca_attribution_policy_order(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_init(&t, CRL_CHECK_NONE, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("first",
	            (const struct pki_cert *[]){ fx.other_root, fx.root }, 2,
	            NULL, 0));
	tpol_add_ca(&t, ca_new("second",
	            (const struct pki_cert *[]){ fx.root }, 1, NULL, 0));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_OK, 0);
	assert_string_equal(v.ca, "first");
	tpol_free(&t);
}

static void test_untrusted_leaf_alone_root_only(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	verify(t.tp, fx.leaf1, NULL, 0, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	assert_null(v.ca);
	tpol_free(&t);
}

static void test_untrusted_other_ca(void **state)
{
	struct tpol ta, tb;
	struct verdict v;

	(void)state;
	tpol_simple(&ta, "partner-a", (const struct pki_cert *[]){ fx.root }, 1);
	tpol_simple(&tb, "partner-b",
	            (const struct pki_cert *[]){ fx.other_root }, 1);
	/* B's client on A's host, and A's client on B's host. */
	verify(ta.tp, fx.other_leaf, NULL, 0, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	verify(tb.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	/* Presenting A's whole chain, root included, does not help on B. */
	verify(tb.tp, fx.leaf1,
	       (const struct pki_cert *[]){ fx.inter, fx.root }, 2, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN);
	/* Each host still accepts its own. */
	verify(tb.tp, fx.other_leaf, NULL, 0, &v);
	expect(&v, RESULT_OK, 0);
	tpol_free(&ta);
	tpol_free(&tb);
}

static void test_untrusted_self_signed(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	verify(t.tp, fx.self_signed, NULL, 0, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
	tpol_free(&t);
}

/* ---------------------------------------------------------------------- */
/* Validity periods                                                       */

static void test_expired_leaf(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	verify(t.tp, fx.leaf_expired, (const struct pki_cert *[]){ fx.inter },
	       1, &v);
	expect(&v, RESULT_EXPIRED, X509_V_ERR_CERT_HAS_EXPIRED);
	assert_string_equal(v.subject, "CN=expired");
	assert_true(v.not_after < fx.now);
	/* The verification time is `now`: leaf1 expires in 30 days. */
	verify_at(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1,
	          fx.now + LEAF1_NOT_AFTER + 86400, &v);
	expect(&v, RESULT_EXPIRED, X509_V_ERR_CERT_HAS_EXPIRED);
	tpol_free(&t);
}

static void test_not_yet_valid_leaf(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	verify(t.tp, fx.leaf_future, (const struct pki_cert *[]){ fx.inter },
	       1, &v);
	expect(&v, RESULT_NOT_YET_VALID, X509_V_ERR_CERT_NOT_YET_VALID);
	/* ... and valid at a time inside its period. */
	verify_at(t.tp, fx.leaf_future, (const struct pki_cert *[]){ fx.inter },
	          1, fx.now + 5400, &v);
	expect(&v, RESULT_OK, 0);
	tpol_free(&t);
}

static void test_expired_intermediate(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	verify(t.tp, fx.leaf_under_expired,
	       (const struct pki_cert *[]){ fx.inter_expired }, 1, &v);
	expect(&v, RESULT_EXPIRED, X509_V_ERR_CERT_HAS_EXPIRED);
	tpol_free(&t);
}

/* ---------------------------------------------------------------------- */
/* CRLs                                                                   */

static void test_crl_leaf_revoked(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_init(&t, CRL_CHECK_LEAF, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("ca-a",
	            (const struct pki_cert *[]){ fx.root, fx.inter }, 2,
	            (X509_CRL *[]){ fx.crl_inter }, 1));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf_revoked, NULL, 0, &v);
	expect(&v, RESULT_REVOKED, X509_V_ERR_CERT_REVOKED);
	assert_string_equal(v.serial, "5005");
	assert_int_equal(v.revoked, 1);
	/* A certificate the CRL does not list passes. */
	verify(t.tp, fx.leaf1, NULL, 0, &v);
	expect(&v, RESULT_OK, 0);
	assert_int_equal(v.revoked, 0);
	/* The CRL decided even when a later check fails. */
	verify(t.tp, fx.leaf_expired, NULL, 0, &v);
	expect(&v, RESULT_EXPIRED, X509_V_ERR_CERT_HAS_EXPIRED);
	assert_int_equal(v.revoked, 0);
	/* Not checked (no path): unknown. */
	verify(t.tp, fx.other_leaf, NULL, 0, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	assert_int_equal(v.revoked, TRUST_REVOKED_UNKNOWN);
	tpol_free(&t);
}

static void test_crl_none_ignores_crls(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_init(&t, CRL_CHECK_NONE, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("ca-a",
	            (const struct pki_cert *[]){ fx.root, fx.inter }, 2,
	            (X509_CRL *[]){ fx.crl_inter }, 1));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf_revoked, NULL, 0, &v);
	expect(&v, RESULT_OK, 0);
	tpol_free(&t);
}

static void test_crl_leaf_missing(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	/* CRL checking on, but no CRL from the leaf's issuer. */
	tpol_init(&t, CRL_CHECK_LEAF, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("ca-a",
	            (const struct pki_cert *[]){ fx.root }, 1,
	            (X509_CRL *[]){ fx.crl_root }, 1));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_CRL_ERROR, X509_V_ERR_UNABLE_TO_GET_CRL);
	tpol_free(&t);
}

static void test_crl_chain_intermediate_revoked(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	/* Every level has its CRL; the root's revokes inter2. */
	tpol_init(&t, CRL_CHECK_CHAIN, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("ca-a",
	            (const struct pki_cert *[]){ fx.root }, 1,
	            (X509_CRL *[]){ fx.crl_root, fx.crl_inter, fx.crl_inter2 },
	            3));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf_under_inter2,
	       (const struct pki_cert *[]){ fx.inter2 }, 1, &v);
	expect(&v, RESULT_REVOKED, X509_V_ERR_CERT_REVOKED);
	/* Nothing revoked on leaf1's path: OK. */
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_OK, 0);
	tpol_free(&t);

	/* With crl-check leaf only the leaf's own status is looked at. */
	tpol_init(&t, CRL_CHECK_LEAF, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("ca-a",
	            (const struct pki_cert *[]){ fx.root }, 1,
	            (X509_CRL *[]){ fx.crl_root, fx.crl_inter, fx.crl_inter2 },
	            3));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf_under_inter2,
	       (const struct pki_cert *[]){ fx.inter2 }, 1, &v);
	expect(&v, RESULT_OK, 0);
	tpol_free(&t);
}

static void test_crl_chain_missing_intermediate_crl(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	/* The CRL for the leaf (issued by inter) is there, the one that
	 * covers inter (issued by root) is not. */
	tpol_init(&t, CRL_CHECK_CHAIN, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("ca-a",
	            (const struct pki_cert *[]){ fx.root }, 1,
	            (X509_CRL *[]){ fx.crl_inter }, 1));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_CRL_ERROR, X509_V_ERR_UNABLE_TO_GET_CRL);
	tpol_free(&t);

	/* The same CAs with crl-check leaf pass. */
	tpol_init(&t, CRL_CHECK_LEAF, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("ca-a",
	            (const struct pki_cert *[]){ fx.root }, 1,
	            (X509_CRL *[]){ fx.crl_inter }, 1));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_OK, 0);
	tpol_free(&t);
}

/* crl-check left to its default on a host that mixes a CA with CRLs and
 * one without: only the chains of the first are checked. Written
 * explicitly, a missing CRL is an error for every chain. */
static void test_crl_auto_per_ca(void **state)
{
	struct tpol t;
	struct verdict v;
	int pass;

	(void)state;
	for (pass = 0; pass < 2; pass++) {
		tpol_init(&t, CRL_CHECK_LEAF, PURPOSE_CLIENT);
		t.params.crl_check_auto = pass == 0;
		tpol_add_ca(&t, ca_new("with-crl", (const struct pki_cert *[]){ fx.inter }, 1,
		            (X509_CRL *[]){ fx.crl_inter }, 1));
		tpol_add_ca(&t, ca_new("without", (const struct pki_cert *[]){ fx.other_root }, 1,
		            NULL, 0));
		tpol_prepare(&t);
		verify(t.tp, fx.leaf_revoked, NULL, 0, &v);
		expect(&v, RESULT_REVOKED, X509_V_ERR_CERT_REVOKED);
		verify(t.tp, fx.leaf1, NULL, 0, &v);
		expect(&v, RESULT_OK, 0);
		verify(t.tp, fx.other_leaf, NULL, 0, &v);
		if (pass == 0) {
			expect(&v, RESULT_OK, 0);
			assert_string_equal(v.ca, "without");
		} else {
			expect(&v, RESULT_CRL_ERROR, X509_V_ERR_UNABLE_TO_GET_CRL);
		}
		tpol_free(&t);
	}
}

/* With crl-check left to its default, the decision is per issuer, not per
 * [ca]: a section holding root and intermediate with only the
 * intermediate's CRL checks leaves of the intermediate and forgives those
 * of another intermediate that publishes none. */
static void test_crl_auto_per_issuer(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_init(&t, CRL_CHECK_LEAF, PURPOSE_CLIENT);
	t.params.crl_check_auto = 1;
	tpol_add_ca(&t, ca_new("tenant", (const struct pki_cert *[]){ fx.root, fx.inter }, 2,
	            (X509_CRL *[]){ fx.crl_inter }, 1));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf_revoked, NULL, 0, &v);
	expect(&v, RESULT_REVOKED, X509_V_ERR_CERT_REVOKED);
	verify(t.tp, fx.leaf1, NULL, 0, &v);
	expect(&v, RESULT_OK, 0);
	verify(t.tp, fx.leaf_under_inter2,
	       (const struct pki_cert *[]){ fx.inter2 }, 1, &v);
	expect(&v, RESULT_OK, 0);
	tpol_free(&t);

	/* A root-only section listing the intermediate's CRL, the client
	 * sending the intermediate: its leaves are checked, inter2's (no CRL)
	 * forgiven. */
	tpol_init(&t, CRL_CHECK_LEAF, PURPOSE_CLIENT);
	t.params.crl_check_auto = 1;
	tpol_add_ca(&t, ca_new("tenant", (const struct pki_cert *[]){ fx.root }, 1,
	            (X509_CRL *[]){ fx.crl_inter }, 1));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf_under_inter2,
	       (const struct pki_cert *[]){ fx.inter2 }, 1, &v);
	expect(&v, RESULT_OK, 0);
	verify(t.tp, fx.leaf_revoked, (const struct pki_cert *[]){ fx.inter }, 1,
	       &v);
	expect(&v, RESULT_REVOKED, X509_V_ERR_CERT_REVOKED);
	tpol_free(&t);
}

static void test_crl_expired(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_init(&t, CRL_CHECK_LEAF, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("ca-a",
	            (const struct pki_cert *[]){ fx.root, fx.inter }, 2,
	            (X509_CRL *[]){ fx.crl_inter_expired }, 1));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf1, NULL, 0, &v);
	expect(&v, RESULT_CRL_ERROR, X509_V_ERR_CRL_HAS_EXPIRED);
	tpol_free(&t);
}

/* ---------------------------------------------------------------------- */
/* Purpose                                                                */

static void test_purpose(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_init(&t, CRL_CHECK_NONE, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("ca-a", (const struct pki_cert *[]){ fx.root },
	            1, NULL, 0));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf_server, (const struct pki_cert *[]){ fx.inter },
	       1, &v);
	expect(&v, RESULT_BAD_PURPOSE, X509_V_ERR_INVALID_PURPOSE);
	/* No EKU at all means any purpose. */
	verify(t.tp, fx.leaf_noeku, (const struct pki_cert *[]){ fx.inter },
	       1, &v);
	expect(&v, RESULT_OK, 0);
	verify(t.tp, fx.leaf_nosan, (const struct pki_cert *[]){ fx.inter },
	       1, &v);
	expect(&v, RESULT_OK, 0);
	tpol_free(&t);

	tpol_init(&t, CRL_CHECK_NONE, PURPOSE_ANY);
	tpol_add_ca(&t, ca_new("ca-a", (const struct pki_cert *[]){ fx.root },
	            1, NULL, 0));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf_server, (const struct pki_cert *[]){ fx.inter },
	       1, &v);
	expect(&v, RESULT_OK, 0);
	tpol_free(&t);
}

/* ---------------------------------------------------------------------- */
/* Identities and pins                                                    */

static void identity_case(char *pattern, enum mtls_result want)
{
	struct tpol t;
	struct verdict v;

	tpol_init(&t, CRL_CHECK_NONE, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("ca-a", (const struct pki_cert *[]){ fx.root },
	            1, NULL, 0));
	tpol_add_id(&t, "nothing-matches-this");
	tpol_add_id(&t, pattern);
	tpol_prepare(&t);
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	if (v.result != want)
		print_error("identity pattern \"%s\"\n", pattern);
	expect(&v, want, 0);
	if (want == RESULT_IDENTITY_MISMATCH)
		assert_string_equal(v.ca, "ca-a");   /* the chain itself was fine */
	tpol_free(&t);
}

static void test_identity(void **state)
{
	(void)state;
	/* DNS SAN, with a glob and different case. */
	identity_case("*.Partner-A.example", RESULT_OK);
	identity_case("client1.partner-a.example", RESULT_OK);
	/* URI SAN */
	identity_case("spiffe://partner-a.example/ns/*/sa/client1", RESULT_OK);
	identity_case("https://partner-a.example/x", RESULT_OK);
	/* email SAN */
	identity_case("CLIENT1@partner-a.example", RESULT_OK);
	identity_case("*@partner-a.example", RESULT_OK);
	/* subject CN only: "client1" is neither a SAN nor the O. */
	identity_case("client1", RESULT_OK);
	identity_case("Client*", RESULT_OK);
	/* No match: not a prefix match, not the O, not the issuer. */
	identity_case("client", RESULT_IDENTITY_MISMATCH);
	identity_case("Partner A", RESULT_IDENTITY_MISMATCH);
	identity_case("Intermediate A", RESULT_IDENTITY_MISMATCH);
	identity_case("*.partner-b.example", RESULT_IDENTITY_MISMATCH);
	identity_case("client1.partner-a.example.evil", RESULT_IDENTITY_MISMATCH);
}

static void test_identity_not_checked_when_untrusted(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_init(&t, CRL_CHECK_NONE, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("ca-a", (const struct pki_cert *[]){ fx.root },
	            1, NULL, 0));
	tpol_add_id(&t, "client1");
	tpol_prepare(&t);
	/* Right CN, wrong CA: the chain failure is what is reported. */
	verify(t.tp, fx.other_leaf, NULL, 0, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	tpol_free(&t);
}

static void test_pins(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_init(&t, CRL_CHECK_NONE, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("ca-a", (const struct pki_cert *[]){ fx.root },
	            1, NULL, 0));
	tpol_add_pin_of(&t, fx.leaf_noeku);
	tpol_add_pin_of(&t, fx.leaf1);
	tpol_prepare(&t);
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_OK, 0);
	verify(t.tp, fx.leaf_nosan, (const struct pki_cert *[]){ fx.inter },
	       1, &v);
	expect(&v, RESULT_PIN_MISMATCH, 0);
	assert_string_equal(v.ca, "ca-a");
	/* A pinned certificate must still chain to the host's CAs. */
	t.params.n_pins = 0;
	tpol_add_pin_of(&t, fx.other_leaf);
	verify(t.tp, fx.other_leaf, NULL, 0, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	/* Identity is checked before pins. */
	tpol_add_id(&t, "nobody");
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_IDENTITY_MISMATCH, 0);
	tpol_free(&t);
}

/* ---------------------------------------------------------------------- */
/* Malformed input                                                        */

static void test_malformed_leaf(void **state)
{
	struct tpol t;
	struct verdict v;
	static const uint8_t garbage[] = { 0x01, 0x02, 0x03, 0x04, 0x05 };
	/* A SEQUENCE header announcing far more than is there. */
	static const uint8_t liar[] = { 0x30, 0x82, 0xff, 0xff, 0x30, 0x00 };
	size_t len;
	uint8_t *der, *plus;

	(void)state;
	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	verify_raw(t.tp, garbage, sizeof(garbage), NULL, 0, fx.now, &v);
	expect(&v, RESULT_MALFORMED, 0);
	assert_int_equal(v.has_cert_info, 0);
	assert_null(v.ca);
	verify_raw(t.tp, liar, sizeof(liar), NULL, 0, fx.now, &v);
	expect(&v, RESULT_MALFORMED, 0);
	{
		/* The leaf re-encoded with a BER indefinite length. */
		size_t dl;
		uint8_t *d = pki_der(fx.leaf1, &dl);
		size_t hl = 2 + (d[1] & 0x7f), bl = dl - hl + 4;
		uint8_t *ber = malloc(bl);

		assert_int_equal(d[0], 0x30);
		assert_true(d[1] > 0x80);
		assert_non_null(ber);
		ber[0] = 0x30;
		ber[1] = 0x80;
		memcpy(ber + 2, d + hl, dl - hl);
		ber[bl - 2] = ber[bl - 1] = 0x00;
		verify_raw(t.tp, ber, bl, NULL, 0, fx.now, &v);
		expect(&v, RESULT_MALFORMED, 0);
		assert_int_equal(v.has_cert_info, 0);
		free(ber);
		free(d);
	}
	verify_raw(t.tp, garbage, 0, NULL, 0, fx.now, &v);
	expect(&v, RESULT_MALFORMED, 0);
	verify_raw(t.tp, NULL, 0, NULL, 0, fx.now, &v);
	expect(&v, RESULT_MALFORMED, 0);

	der = pki_der(fx.leaf1, &len);
	/* Every truncation of a real certificate. */
	for (size_t n = 1; n < len; n++) {
		verify_raw(t.tp, der, n, NULL, 0, fx.now, &v);
		if (v.result != RESULT_MALFORMED)
			fail_msg("truncation to %zu of %zu bytes: result %d", n,
			         len, v.result);
		assert_int_equal(v.has_cert_info, 0);
	}
	/* One trailing byte. */
	plus = malloc(len + 1);
	assert_non_null(plus);
	memcpy(plus, der, len);
	plus[len] = 0x00;
	verify_raw(t.tp, plus, len + 1, NULL, 0, fx.now, &v);
	expect(&v, RESULT_MALFORMED, 0);
	/* The same bytes without the extra one parse (and just lack the
	 * intermediate). */
	verify_raw(t.tp, plus, len, NULL, 0, fx.now, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	free(plus);
	free(der);
	tpol_free(&t);
}

static void test_malformed_chain(void **state)
{
	struct tpol t;
	struct verdict v;
	static const uint8_t garbage[] = { 0x30, 0x03, 0x01, 0x02, 0x03 };
	size_t len, clen;
	uint8_t *der, *cder, *cplus;

	(void)state;
	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	der = pki_der(fx.leaf1, &len);
	cder = pki_chain_der((const struct pki_cert *[]){ fx.inter, fx.root },
	                     2, &clen);

	verify_raw(t.tp, der, len, garbage, sizeof(garbage), fx.now, &v);
	expect(&v, RESULT_MALFORMED, 0);
	/* The leaf parsed, so its details are there. */
	assert_int_equal(v.has_cert_info, 1);
	assert_string_equal(v.subject, "CN=client1,O=Partner A");
	assert_null(v.ca);

	/* Every truncation of a two-certificate chain, except the one that
	 * leaves exactly the first certificate (a valid chain of one). */
	for (size_t n = 1; n < clen; n++) {
		if (n == (size_t)i2d_X509(fx.inter->x509, NULL)) {
			verify_raw(t.tp, der, len, cder, n, fx.now, &v);
			expect(&v, RESULT_OK, 0);
			continue;
		}
		verify_raw(t.tp, der, len, cder, n, fx.now, &v);
		if (v.result != RESULT_MALFORMED)
			fail_msg("chain truncated to %zu of %zu: result %d", n,
			         clen, v.result);
	}
	/* A trailing byte after a valid chain. */
	cplus = malloc(clen + 1);
	assert_non_null(cplus);
	memcpy(cplus, cder, clen);
	cplus[clen] = 0x30;
	verify_raw(t.tp, der, len, cplus, clen + 1, fx.now, &v);
	expect(&v, RESULT_MALFORMED, 0);
	verify_raw(t.tp, der, len, cplus, clen, fx.now, &v);
	expect(&v, RESULT_OK, 0);
	/* An empty non-NULL chain is no chain. */
	verify_raw(t.tp, der, len, cplus, 0, fx.now, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	free(cplus);
	free(cder);
	free(der);
	tpol_free(&t);
}

/* Chain certificates that are also trust anchors (skipped, not parsed)
 * and malformed elements around them. */
static void test_chain_with_anchors(void **state)
{
	struct tpol t;
	struct verdict v;
	/* BER indefinite length: not DER. */
	static const uint8_t indef[] = { 0x30, 0x80, 0x00, 0x00 };
	static const uint8_t junk[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
	size_t len, clen;
	uint8_t *der, *cder, *buf;

	(void)state;
	tpol_simple(&t, "ca-both",
	            (const struct pki_cert *[]){ fx.root, fx.inter }, 2);
	verify(t.tp, fx.leaf1,
	       (const struct pki_cert *[]){ fx.inter, fx.root }, 2, &v);
	expect(&v, RESULT_OK, 0);
	assert_string_equal(v.ca, "ca-both");
	/* An anchor in the chain does not rescue a certificate from another
	 * CA. */
	verify(t.tp, fx.other_leaf,
	       (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);

	der = pki_der(fx.leaf1, &len);
	cder = pki_chain_der((const struct pki_cert *[]){ fx.inter }, 1, &clen);
	buf = malloc(clen + sizeof(junk));
	assert_non_null(buf);
	/* A valid anchor followed by something that is not a certificate. */
	memcpy(buf, cder, clen);
	memcpy(buf + clen, junk, sizeof(junk));
	verify_raw(t.tp, der, len, buf, clen + sizeof(junk), fx.now, &v);
	expect(&v, RESULT_MALFORMED, 0);
	memcpy(buf + clen, indef, sizeof(indef));
	verify_raw(t.tp, der, len, buf, clen + sizeof(indef), fx.now, &v);
	expect(&v, RESULT_MALFORMED, 0);
	verify_raw(t.tp, der, len, indef, sizeof(indef), fx.now, &v);
	expect(&v, RESULT_MALFORMED, 0);
	/* A lone SEQUENCE header byte. */
	verify_raw(t.tp, der, len, indef, 1, fx.now, &v);
	expect(&v, RESULT_MALFORMED, 0);
	free(buf);
	free(cder);
	free(der);
	tpol_free(&t);
}

static void test_chain_limit(void **state)
{
	struct tpol t;
	struct verdict v;
	const struct pki_cert *many[VERIFY_MAX_CHAIN + 1];

	(void)state;
	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	for (size_t i = 0; i < VERIFY_MAX_CHAIN + 1; i++)
		many[i] = fx.inter;
	/* 16 is accepted (duplicates are harmless to path building)... */
	verify(t.tp, fx.leaf1, many, VERIFY_MAX_CHAIN, &v);
	expect(&v, RESULT_OK, 0);
	/* ... 17 is not even parsed. */
	verify(t.tp, fx.leaf1, many, VERIFY_MAX_CHAIN + 1, &v);
	expect(&v, RESULT_MALFORMED, 0);
	tpol_free(&t);
	/* The same limit when the copies are of a trust anchor (which are
	 * skipped rather than parsed). */
	tpol_simple(&t, "ca-inter", (const struct pki_cert *[]){ fx.inter }, 1);
	verify(t.tp, fx.leaf1, many, VERIFY_MAX_CHAIN, &v);
	expect(&v, RESULT_OK, 0);
	verify(t.tp, fx.leaf1, many, VERIFY_MAX_CHAIN + 1, &v);
	expect(&v, RESULT_MALFORMED, 0);
	tpol_free(&t);
}

/* ---------------------------------------------------------------------- */
/* Other chain errors                                                     */

static void test_path_length(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_simple(&t, "ca-pl0", (const struct pki_cert *[]){ fx.root_pl0 }, 1);
	verify(t.tp, fx.leaf_pl, (const struct pki_cert *[]){ fx.inter_pl },
	       1, &v);
	expect(&v, RESULT_CHAIN_ERROR, X509_V_ERR_PATH_LENGTH_EXCEEDED);
	tpol_free(&t);
	/* Anchored at the intermediate, the constrained root is not part of
	 * the path, so there is no violation. */
	tpol_simple(&t, "ca-inter", (const struct pki_cert *[]){ fx.inter_pl },
	            1);
	verify(t.tp, fx.leaf_pl, NULL, 0, &v);
	expect(&v, RESULT_OK, 0);
	tpol_free(&t);
}

static void test_bad_signature(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	/* Issuer name and authority key identifier both point at the real
	 * intermediate, so OpenSSL selects it as the issuer and then the
	 * signature check fails: CERT_SIGNATURE_FAILURE -> chain_error. */
	verify(t.tp, fx.leaf_badsig, (const struct pki_cert *[]){ fx.inter },
	       1, &v);
	expect(&v, RESULT_CHAIN_ERROR, X509_V_ERR_CERT_SIGNATURE_FAILURE);
	/* Same when the intermediate is itself the trust anchor. */
	tpol_free(&t);
	tpol_simple(&t, "ca-inter", (const struct pki_cert *[]){ fx.inter }, 1);
	verify(t.tp, fx.leaf_badsig, NULL, 0, &v);
	expect(&v, RESULT_CHAIN_ERROR, X509_V_ERR_CERT_SIGNATURE_FAILURE);
	/* Right issuer name but the authority key identifier of another
	 * key: OpenSSL's issuer check (X509_check_issued) rejects the real
	 * intermediate as a candidate, so no issuer is found at all and
	 * the certificate is reported as not chaining to the store:
	 * UNABLE_TO_GET_ISSUER_CERT_LOCALLY -> untrusted. */
	verify(t.tp, fx.leaf_badakid, NULL, 0, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	tpol_free(&t);
}

static void test_verify_depth(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	/* Depth counts intermediates: leaf -> inter -> root needs 1. */
	tpol_init(&t, CRL_CHECK_NONE, PURPOSE_CLIENT);
	t.params.verify_depth = 0;
	tpol_add_ca(&t, ca_new("ca-a", (const struct pki_cert *[]){ fx.root },
	            1, NULL, 0));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_CHAIN_ERROR, X509_V_ERR_CERT_CHAIN_TOO_LONG);
	tpol_free(&t);

	tpol_init(&t, CRL_CHECK_NONE, PURPOSE_CLIENT);
	t.params.verify_depth = 1;
	tpol_add_ca(&t, ca_new("ca-a", (const struct pki_cert *[]){ fx.root },
	            1, NULL, 0));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_OK, 0);
	tpol_free(&t);
}

/* ---------------------------------------------------------------------- */
/* Certificate details                                                    */

static void test_details(void **state)
{
	struct tpol t;
	struct verdict v;
	size_t len;
	uint8_t *der, md[32];
	char hex[65];

	(void)state;
	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	der = pki_der(fx.leaf1, &len);
	sha256(der, len, md);
	for (size_t i = 0; i < 32; i++)
		snprintf(&hex[2 * i], 3, "%02x", md[i]);

	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_OK, 0);
	assert_int_equal(v.has_cert_info, 1);
	assert_string_equal(v.fingerprint, hex);
	assert_string_equal(v.serial, "1234abcd");
	assert_string_equal(v.subject, "CN=client1,O=Partner A");
	assert_string_equal(v.issuer, "CN=Intermediate A,O=Partner A");
	assert_true(v.not_after >= fx.leaf1_t0 + LEAF1_NOT_AFTER);
	assert_true(v.not_after <= fx.leaf1_t1 + LEAF1_NOT_AFTER);
	assert_true(v.not_before >= fx.leaf1_t0 - 3600);
	assert_true(v.not_before <= fx.leaf1_t1 - 3600);
	/* The first URI SAN is not SPIFFE; the second is. */
	assert_string_equal(v.spiffe_id, LEAF1_SPIFFE);

	/* Details are filled for a failing certificate too, and a cert
	 * without SANs has no SPIFFE ID. */
	verify(t.tp, fx.leaf_nosan, NULL, 0, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	assert_string_equal(v.subject, "CN=no-san");
	assert_string_equal(v.issuer, "CN=Intermediate A,O=Partner A");
	assert_string_equal(v.spiffe_id, "");
	assert_int_equal(strlen(v.serial) % 2, 0);

	/* The details do not depend on the policy: one that trusts
	 * nothing reports the same. (verify_fill_cert_info() is private to
	 * trust.c now.) */
	{
		struct tpol none;
		struct verdict w;

		tpol_init(&none, CRL_CHECK_NONE, PURPOSE_CLIENT);
		tpol_prepare(&none);
		verify_raw(none.tp, der, len, NULL, 0, fx.now, &w);
		expect(&w, RESULT_UNTRUSTED, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
		assert_int_equal(w.has_cert_info, 1);
		assert_string_equal(w.fingerprint, hex);
		assert_string_equal(w.serial, "1234abcd");
		assert_string_equal(w.subject, "CN=client1,O=Partner A");
		assert_string_equal(w.spiffe_id, LEAF1_SPIFFE);
		assert_int_equal(ERR_peek_error(), 0);
		tpol_free(&none);
	}
	free(der);
	tpol_free(&t);
}

static void test_details_negative_serial_and_escaping(void **state)
{
	struct tpol t;
	struct verdict v;
	X509 *x = X509_dup(fx.leaf1->x509);
	X509_NAME *n = X509_NAME_new();
	uint8_t *der = NULL;
	int len;

	(void)state;
	assert_non_null(x);
	assert_non_null(n);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), -5), 1);
	/* RFC 2253 special characters and a control byte are escaped. */
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	                 (const unsigned char *)"a,b+c\x01", -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, n), 1);
	assert_true(X509_sign(x, fx.inter->key, EVP_sha256()) > 0);
	len = i2d_X509(x, &der);
	assert_true(len > 0);

	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	verify_raw(t.tp, der, (size_t)len,
	           NULL, 0, fx.now, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	assert_int_equal(v.has_cert_info, 1);
	assert_string_equal(v.serial, "-05");
	assert_string_equal(v.subject, "CN=a\\,b\\+c\\01");
	OPENSSL_free(der);
	X509_NAME_free(n);
	X509_free(x);
	tpol_free(&t);
}

static void test_details_long_subject_truncated(void **state)
{
	struct tpol t;
	struct verdict v;
	X509 *x = X509_dup(fx.leaf1->x509);
	X509_NAME *n = X509_NAME_new();
	char ou[60];
	uint8_t *der = NULL;
	int len;

	(void)state;
	assert_non_null(x);
	assert_non_null(n);
	memset(ou, 'x', sizeof(ou) - 1);
	ou[sizeof(ou) - 1] = '\0';
	/* 30 OUs of 59 characters: well over VERDICT_DN_MAX in text. */
	for (int i = 0; i < 30; i++)
		assert_int_equal(X509_NAME_add_entry_by_txt(n, "OU",
		                 MBSTRING_ASC, (const unsigned char *)ou, -1, -1,
		                 0), 1);
	assert_int_equal(X509_set_subject_name(x, n), 1);
	assert_true(X509_sign(x, fx.inter->key, EVP_sha256()) > 0);
	len = i2d_X509(x, &der);
	assert_true(len > 0);

	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	verify_raw(t.tp, der, (size_t)len,
	           NULL, 0, fx.now, &v);
	assert_int_equal(v.has_cert_info, 1);
	assert_int_equal(strlen(v.subject), VERDICT_DN_MAX - 1);
	assert_memory_equal(v.subject, "OU=xxxx", 7);
	OPENSSL_free(der);
	X509_NAME_free(n);
	X509_free(x);
	tpol_free(&t);
}

static void san_push(GENERAL_NAMES *gens, int type, const char *val,
                     size_t len)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *str = ASN1_IA5STRING_new();

	assert_non_null(gn);
	assert_non_null(str);
	assert_int_equal(ASN1_STRING_set(str, val, (int)len), 1);
	GENERAL_NAME_set0_value(gn, type, str);
	assert_true(sk_GENERAL_NAME_push(gens, gn) > 0);
}

/* DER of leaf1 with its subjectAltName replaced by `gens` (freed here),
 * signed by the intermediate again; OPENSSL_free() it. */
static int leaf1_with_sans(GENERAL_NAMES *gens, uint8_t **der)
{
	X509 *x = X509_dup(fx.leaf1->x509);
	int len;

	assert_non_null(x);
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	                                   X509V3_ADD_REPLACE), 1);
	GENERAL_NAMES_free(gens);
	assert_true(X509_sign(x, fx.inter->key, EVP_sha256()) > 0);
	*der = NULL;
	len = i2d_X509(x, der);
	assert_true(len > 0);
	X509_free(x);
	return len;
}

/* Names holding a NUL byte ("evil.example\0.partner-a.example") must not
 * satisfy a glob nor become the SPIFFE ID; a DNS name that looks like a
 * SPIFFE URI is not one. */
static void test_san_nul_and_types(void **state)
{
	static const char nul_dns[] = "evil.example\0.partner-a.example";
	static const char nul_uri[] = "spiffe://evil\0.example/x";
	struct tpol t;
	struct verdict v;
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	uint8_t *der = NULL;
	int len;

	(void)state;
	assert_non_null(gens);
	san_push(gens, GEN_DNS, nul_dns, sizeof(nul_dns) - 1);
	san_push(gens, GEN_DNS, "spiffe://dns.example/no", 23);
	san_push(gens, GEN_URI, nul_uri, sizeof(nul_uri) - 1);
	san_push(gens, GEN_URI, "spiffe://good.example/ok", 24);
	len = leaf1_with_sans(gens, &der);

	tpol_init(&t, CRL_CHECK_NONE, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("ca-a", (const struct pki_cert *[]){ fx.inter },
	            1, NULL, 0));
	tpol_add_id(&t, "evil.example*");
	tpol_add_id(&t, "spiffe://evil*");
	tpol_prepare(&t);
	verify_raw(t.tp, der, (size_t)len, NULL, 0, fx.now, &v);
	expect(&v, RESULT_IDENTITY_MISMATCH, 0);
	assert_string_equal(v.spiffe_id, "spiffe://good.example/ok");
	/* The clean URI still matches. */
	t.params.n_identities = 0;
	tpol_add_id(&t, "spiffe://good.example/*");
	verify_raw(t.tp, der, (size_t)len, NULL, 0, fx.now, &v);
	expect(&v, RESULT_OK, 0);
	OPENSSL_free(der);
	tpol_free(&t);
}


/* ---------------------------------------------------------------------- */
/* Migration fields: SHA-1, key identifiers, SAN lists, revoked, chain    */

/* ":base64(DER):" of a certificate, through a BIO (not the agent's
 * EVP_EncodeBlock), appended to out. */
static void b64_item(const struct pki_cert *c, char *out, size_t outlen)
{
	size_t len;
	uint8_t *der = pki_der(c, &len);
	BIO *b64 = BIO_new(BIO_f_base64()), *mem = BIO_new(BIO_s_mem());
	char *p;
	long n;

	assert_non_null(b64);
	assert_non_null(mem);
	BIO_set_flags(b64, BIO_FLAGS_BASE64_NO_NL);
	b64 = BIO_push(b64, mem);
	assert_int_equal(BIO_write(b64, der, (int)len), (int)len);
	assert_int_equal(BIO_flush(b64), 1);
	n = BIO_get_mem_data(mem, &p);
	if (out[0] != '\0')
		strncat(out, ", ", outlen - strlen(out) - 1);
	strncat(out, ":", outlen - strlen(out) - 1);
	strncat(out, p, (size_t)n < outlen - strlen(out) - 1 ?
	        (size_t)n : outlen - strlen(out) - 1);
	strncat(out, ":", outlen - strlen(out) - 1);
	BIO_free_all(b64);
	free(der);
}

static void test_fields_match_openssl(void **state)
{
	struct tpol t;
	struct verdict v;
	size_t len;
	uint8_t *der, md[20];
	unsigned int mdlen = 0;
	char hex[41], id[160];

	(void)state;
	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_OK, 0);
	der = pki_der(fx.leaf1, &len);
	assert_int_equal(EVP_Digest(der, len, md, &mdlen, EVP_sha1(), NULL), 1);
	for (size_t i = 0; i < 20; i++)
		snprintf(&hex[2 * i], 3, "%02x", md[i]);
	free(der);
	assert_string_equal(v.fingerprint_sha1, hex);
	pki_keyid_hex(fx.leaf1->x509, NID_subject_key_identifier, id, sizeof(id));
	assert_int_equal(strlen(id), 40);
	assert_string_equal(v.ski, id);
	pki_keyid_hex(fx.leaf1->x509, NID_authority_key_identifier, id, sizeof(id));
	assert_string_equal(v.issuer_ski, id);
	/* The issuer's SKI is the leaf's AKI. */
	pki_keyid_hex(fx.inter->x509, NID_subject_key_identifier, id, sizeof(id));
	assert_string_equal(v.issuer_ski, id);
	assert_string_equal(v.san_dns, "client1.partner-a.example");
	assert_string_equal(v.san_uri, "https://partner-a.example/x, " LEAF1_SPIFFE);
	assert_string_equal(v.san_email, "client1@partner-a.example");
	/* No CRL consulted. */
	assert_int_equal(v.revoked, TRUST_REVOKED_UNKNOWN);

	/* Set for a failing certificate too; absent when missing. */
	verify(t.tp, fx.leaf_nosan, NULL, 0, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	assert_int_equal(strlen(v.fingerprint_sha1), 40);
	assert_int_equal(strlen(v.ski), 40);
	assert_string_equal(v.san_dns, "");
	assert_string_equal(v.san_uri, "");
	assert_string_equal(v.san_email, "");
	assert_string_equal(v.chain_rfc9440, "");
	{
		struct pki_cert *nokid = pki_make(&(struct pki_cert_opts){
		        .cn = "no-key-ids", .eku = PKI_EKU_CLIENT,
		        .no_key_ids = 1 }, fx.inter);

		verify(t.tp, nokid, (const struct pki_cert *[]){ fx.inter }, 1, &v);
		expect(&v, RESULT_OK, 0);
		assert_string_equal(v.ski, "");
		assert_string_equal(v.issuer_ski, "");
		assert_int_equal(strlen(v.fingerprint_sha1), 40);
		pki_free(nokid);
	}
	tpol_free(&t);
}

/* revoked is set only by a current, usable CRL (test_crl_leaf_revoked
 * has the true and false cases). */
static void test_fields_revoked(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	/* An expired CRL decides nothing. */
	tpol_init(&t, CRL_CHECK_LEAF, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("ca-a", (const struct pki_cert *[]){ fx.inter }, 1,
	            (X509_CRL *[]){ fx.crl_inter_expired }, 1));
	tpol_prepare(&t);
	verify(t.tp, fx.leaf1, NULL, 0, &v);
	expect(&v, RESULT_CRL_ERROR, X509_V_ERR_CRL_HAS_EXPIRED);
	assert_int_equal(v.revoked, TRUST_REVOKED_UNKNOWN);
	tpol_free(&t);

	/* crl-check automatic, issuer without CRL: skipped, unknown. */
	tpol_init(&t, CRL_CHECK_LEAF, PURPOSE_CLIENT);
	t.params.crl_check_auto = 1;
	tpol_add_ca(&t, ca_new("with-crl", (const struct pki_cert *[]){ fx.inter }, 1,
	            (X509_CRL *[]){ fx.crl_inter }, 1));
	tpol_add_ca(&t, ca_new("without", (const struct pki_cert *[]){ fx.other_root }, 1,
	            NULL, 0));
	tpol_prepare(&t);
	verify(t.tp, fx.other_leaf, NULL, 0, &v);
	expect(&v, RESULT_OK, 0);
	assert_int_equal(v.revoked, TRUST_REVOKED_UNKNOWN);
	verify(t.tp, fx.leaf1, NULL, 0, &v);
	expect(&v, RESULT_OK, 0);
	assert_int_equal(v.revoked, 0);
	tpol_free(&t);
}

static void test_fields_chain(void **state)
{
	struct tpol t;
	struct verdict v;
	struct pki_cert *inter_b, *leaf_b;
	char want[TRUST_CHAIN_MAX];

	(void)state;
	inter_b = pki_make(&(struct pki_cert_opts){ .cn = "Intermediate A2",
	        .is_ca = 1 }, fx.inter);
	leaf_b = pki_make(&(struct pki_cert_opts){ .cn = "deep",
	        .eku = PKI_EKU_CLIENT }, inter_b);

	/* Root anchor: the intermediate sent by the client. */
	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_OK, 0);
	want[0] = '\0';
	b64_item(fx.inter, want, sizeof(want));
	assert_string_equal(v.chain_rfc9440, want);
	/* The anchor is never included, even when the client sends it. */
	verify(t.tp, fx.leaf1,
	       (const struct pki_cert *[]){ fx.inter, fx.root }, 2, &v);
	expect(&v, RESULT_OK, 0);
	assert_string_equal(v.chain_rfc9440, want);
	/* Issuing order, from the verified path, not the order sent. */
	verify(t.tp, leaf_b, (const struct pki_cert *[]){ fx.inter, inter_b }, 2, &v);
	expect(&v, RESULT_OK, 0);
	want[0] = '\0';
	b64_item(inter_b, want, sizeof(want));
	b64_item(fx.inter, want, sizeof(want));
	assert_string_equal(v.chain_rfc9440, want);
	/* Only on ok: an expired leaf, a failed path. */
	verify(t.tp, fx.leaf_expired, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_EXPIRED, X509_V_ERR_CERT_HAS_EXPIRED);
	assert_string_equal(v.chain_rfc9440, "");
	verify(t.tp, leaf_b, (const struct pki_cert *[]){ inter_b }, 1, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	assert_string_equal(v.chain_rfc9440, "");
	/* ... and not for an identity mismatch either. */
	tpol_add_id(&t, "nobody");
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_IDENTITY_MISMATCH, 0);
	assert_string_equal(v.chain_rfc9440, "");
	tpol_free(&t);

	/* The anchor issued the leaf: absent. */
	tpol_simple(&t, "ca-inter", (const struct pki_cert *[]){ fx.inter }, 1);
	verify(t.tp, fx.leaf1, NULL, 0, &v);
	expect(&v, RESULT_OK, 0);
	assert_string_equal(v.chain_rfc9440, "");
	tpol_free(&t);

	/* Every certificate of a CA file is an anchor (partial chains):
	 * with root and intermediate listed, the verified path ends at the
	 * intermediate, which is left out like any anchor. */
	tpol_simple(&t, "ca-both", (const struct pki_cert *[]){ fx.root, fx.inter }, 2);
	verify(t.tp, leaf_b, (const struct pki_cert *[]){ inter_b }, 1, &v);
	expect(&v, RESULT_OK, 0);
	want[0] = '\0';
	b64_item(inter_b, want, sizeof(want));
	assert_string_equal(v.chain_rfc9440, want);
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_OK, 0);
	assert_string_equal(v.chain_rfc9440, "");
	tpol_free(&t);
	pki_free(inter_b);
	pki_free(leaf_b);
}

/* A leaf of 40 DNS names of 60 bytes (2,480 bytes as a list), one with a
 * control byte and one holding ", ": the list keeps the first whole
 * names that fit 1 KiB, skips the unprintable ones, never cuts one. */
static void test_fields_san_lists(void **state)
{
	struct tpol t;
	struct verdict v;
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	char name[96], want[TRUST_SAN_MAX + 1] = "";
	uint8_t *der = NULL;
	int len;

	(void)state;
	assert_non_null(gens);
	san_push(gens, GEN_DNS, "bad\x01.example", 12);
	san_push(gens, GEN_DNS, "a, b.example", 12);
	san_push(gens, GEN_EMAIL, "x@\x80.example", 11);
	san_push(gens, GEN_EMAIL, "ok@example.com", 14);
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "n%02d-%s.example", i,
		         "012345678901234567890123456789012345678901234567");
		assert_int_equal(strlen(name), 60);
		san_push(gens, GEN_DNS, name, 60);
		/* 16 names and 15 separators: 990 bytes; a 17th is 1052. */
		if (i < 16) {
			if (i > 0)
				strcat(want, ", ");
			strcat(want, name);
		}
	}
	san_push(gens, GEN_DNS, "short.example", 13);
	len = leaf1_with_sans(gens, &der);

	tpol_simple(&t, "ca-inter", (const struct pki_cert *[]){ fx.inter }, 1);
	verify_raw(t.tp, der, (size_t)len, NULL, 0, fx.now, &v);
	expect(&v, RESULT_OK, 0);
	assert_int_equal(strlen(want), 990);
	assert_string_equal(v.san_dns, want);
	assert_string_equal(v.san_email, "ok@example.com");
	assert_string_equal(v.san_uri, "");
	assert_string_equal(v.spiffe_id, "");
	OPENSSL_free(der);
	tpol_free(&t);
}

/* ---------------------------------------------------------------------- */
/* Preparation and mapping                                                */

static void test_prepare_errors(void **state)
{
	struct tpol t;
	char err[256] = "";

	(void)state;
	tpol_init(&t, CRL_CHECK_DEFAULT, PURPOSE_CLIENT);
	assert_null(trust_policy_new(&t.params, err, sizeof(err)));
	assert_non_null(strstr(err, "crl-check"));
	assert_int_equal(ERR_peek_error(), 0);
	tpol_free(&t);

	/* A policy without a store, or none at all, fails closed. */
	{
		struct verdict v;
		struct trust_policy empty;
		size_t len;
		uint8_t *der = pki_der(fx.leaf1, &len);

		memset(&empty, 0, sizeof(empty));
		verify_raw(&empty, der, len, NULL, 0, fx.now, &v);
		expect(&v, RESULT_INTERNAL_ERROR, 0);
		verify_raw(NULL, der, len, NULL, 0, fx.now, &v);
		expect(&v, RESULT_INTERNAL_ERROR, 0);
		free(der);
	}
}

static void test_prepare_twice_and_empty(void **state)
{
	struct tpol t;
	struct verdict v;

	(void)state;
	/* Rebuilding replaces the store without leaking the old one. */
	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	tpol_prepare(&t);
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_OK, 0);
	tpol_free(&t);
	/* A policy with no CA trusts nothing. */
	tpol_init(&t, CRL_CHECK_NONE, PURPOSE_CLIENT);
	tpol_prepare(&t);
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter, fx.root },
	       2, &v);
	expect(&v, RESULT_UNTRUSTED, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN);
	tpol_free(&t);
}

/* The cache needs the moment a verdict could change: the earliest
 * validity bound ahead in the chain, or a CRL's nextUpdate. */
static void test_valid_until(void **state)
{
	struct tpol t;
	struct verdict v;
	X509_CRL *crl;
	struct crl *c;

	(void)state;
	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_OK, 0);
	/* leaf1 expires before the intermediate and the root, at its
	 * notAfter itself: OpenSSL counts a certificate as expired from
	 * that second on (see test_expiry_at_not_after). */
	assert_int_equal(v.valid_until, v.not_after);
	/* Not yet valid: the verdict changes at notBefore. */
	verify(t.tp, fx.leaf_future, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_NOT_YET_VALID, X509_V_ERR_CERT_NOT_YET_VALID);
	assert_int_equal(v.valid_until, v.not_before);
	/* Expired stays expired: only the chain above bounds it. */
	verify(t.tp, fx.leaf_expired, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_EXPIRED, X509_V_ERR_CERT_HAS_EXPIRED);
	assert_true(v.valid_until > (int64_t)fx.now + 300L * 86400);
	tpol_free(&t);

	/* With CRL checks, the CRL's nextUpdate bounds it too. */
	crl = pki_crl(fx.inter, (uint64_t[]){ REVOKED_SERIAL }, 1, -3600, 500);
	tpol_init(&t, CRL_CHECK_LEAF, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("ca-inter", (const struct pki_cert *[]){ fx.inter }, 1,
	                       (X509_CRL *[]){ crl }, 1));
	tpol_prepare(&t);
	c = ca_crl_at(t.cas[0], 0);
	assert_true(crl_next_update(c) >= fx.now + 500);
	assert_int_equal(t.tp->crl_next_update, crl_next_update(c));
	verify(t.tp, fx.leaf1, NULL, 0, &v);
	expect(&v, RESULT_OK, 0);
	assert_int_equal(v.valid_until, (int64_t)crl_next_update(c));
	X509_CRL_free(crl);
	tpol_free(&t);
}

/* A cached ok must not outlive notAfter: at now = notAfter the
 * certificate is expired (X509_cmp_time() counts "earlier or equal" as
 * past), one second before it is fine, and valid_until is notAfter
 * itself, never notAfter + 1. */
static void test_expiry_at_not_after(void **state)
{
	struct tpol t;
	struct verdict v;
	int64_t not_after;

	(void)state;
	tpol_simple(&t, "ca-root", (const struct pki_cert *[]){ fx.root }, 1);
	verify(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1, &v);
	expect(&v, RESULT_OK, 0);
	not_after = v.not_after;
	assert_int_equal(v.valid_until, not_after);

	verify_at(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1,
	          (time_t)not_after - 1, &v);
	expect(&v, RESULT_OK, 0);
	assert_int_equal(v.valid_until, not_after);
	verify_at(t.tp, fx.leaf1, (const struct pki_cert *[]){ fx.inter }, 1,
	          (time_t)not_after, &v);
	expect(&v, RESULT_EXPIRED, X509_V_ERR_CERT_HAS_EXPIRED);
	tpol_free(&t);
}

/* A CRL whose nextUpdate passes while it is loaded: ok before, crl_error
 * from that second on, with the same policy (no reload). */
static void test_crl_next_update_passes(void **state)
{
	struct tpol t;
	struct verdict v;
	X509_CRL *crl;
	time_t next;

	(void)state;
	crl = pki_crl(fx.inter, (uint64_t[]){ REVOKED_SERIAL }, 1, -3600, 600);
	tpol_init(&t, CRL_CHECK_LEAF, PURPOSE_CLIENT);
	tpol_add_ca(&t, ca_new("ca-inter", (const struct pki_cert *[]){ fx.inter }, 1,
	                       (X509_CRL *[]){ crl }, 1));
	tpol_prepare(&t);
	next = crl_next_update(ca_crl_at(t.cas[0], 0));
	verify_at(t.tp, fx.leaf1, NULL, 0, next - 1, &v);
	expect(&v, RESULT_OK, 0);
	assert_int_equal(v.valid_until, (int64_t)next);
	verify_at(t.tp, fx.leaf1, NULL, 0, next, &v);
	expect(&v, RESULT_CRL_ERROR, X509_V_ERR_CRL_HAS_EXPIRED);
	/* The revoked one is still refused, whatever the CRL's age. */
	verify_at(t.tp, fx.leaf_revoked, NULL, 0, next - 1, &v);
	expect(&v, RESULT_REVOKED, X509_V_ERR_CERT_REVOKED);
	X509_CRL_free(crl);
	tpol_free(&t);
}

static void test_result_from_error(void **state)
{
	static const struct { int err; enum mtls_result r; } tab[] = {
		{ X509_V_OK, RESULT_OK },
		{ X509_V_ERR_CERT_HAS_EXPIRED, RESULT_EXPIRED },
		{ X509_V_ERR_CERT_NOT_YET_VALID, RESULT_NOT_YET_VALID },
		{ X509_V_ERR_CERT_REVOKED, RESULT_REVOKED },
		{ X509_V_ERR_UNABLE_TO_GET_CRL, RESULT_CRL_ERROR },
		{ X509_V_ERR_CRL_HAS_EXPIRED, RESULT_CRL_ERROR },
		{ X509_V_ERR_CRL_NOT_YET_VALID, RESULT_CRL_ERROR },
		{ X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE, RESULT_CRL_ERROR },
		{ X509_V_ERR_CRL_SIGNATURE_FAILURE, RESULT_CRL_ERROR },
		{ X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD, RESULT_CRL_ERROR },
		{ X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD, RESULT_CRL_ERROR },
		{ X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER, RESULT_CRL_ERROR },
		{ X509_V_ERR_DIFFERENT_CRL_SCOPE, RESULT_CRL_ERROR },
		{ X509_V_ERR_KEYUSAGE_NO_CRL_SIGN, RESULT_CRL_ERROR },
		{ X509_V_ERR_CRL_PATH_VALIDATION_ERROR, RESULT_CRL_ERROR },
		{ X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION, RESULT_CRL_ERROR },
		{ X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, RESULT_UNTRUSTED },
		{ X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, RESULT_UNTRUSTED },
		{ X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, RESULT_UNTRUSTED },
		{ X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, RESULT_UNTRUSTED },
		{ X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, RESULT_UNTRUSTED },
		{ X509_V_ERR_CERT_UNTRUSTED, RESULT_UNTRUSTED },
		{ X509_V_ERR_CERT_REJECTED, RESULT_UNTRUSTED },
		{ X509_V_ERR_INVALID_PURPOSE, RESULT_BAD_PURPOSE },
		{ X509_V_ERR_OUT_OF_MEM, RESULT_INTERNAL_ERROR },
		{ X509_V_ERR_PATH_LENGTH_EXCEEDED, RESULT_CHAIN_ERROR },
		{ X509_V_ERR_CERT_SIGNATURE_FAILURE, RESULT_CHAIN_ERROR },
		{ X509_V_ERR_CERT_CHAIN_TOO_LONG, RESULT_CHAIN_ERROR },
		{ X509_V_ERR_INVALID_CA, RESULT_CHAIN_ERROR },
		{ X509_V_ERR_UNSPECIFIED, RESULT_CHAIN_ERROR },
		{ 12345, RESULT_CHAIN_ERROR },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (verify_result_from_error(tab[i].err) != tab[i].r)
			fail_msg("X509_V_ERR %d: got %d want %d", tab[i].err,
			         verify_result_from_error(tab[i].err), tab[i].r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_leaf_plus_chain),
		cmocka_unit_test(test_ok_partial_chain_intermediate_anchor),
		cmocka_unit_test(test_ca_attribution_policy_order),
		cmocka_unit_test(test_untrusted_leaf_alone_root_only),
		cmocka_unit_test(test_untrusted_other_ca),
		cmocka_unit_test(test_untrusted_self_signed),
		cmocka_unit_test(test_expired_leaf),
		cmocka_unit_test(test_not_yet_valid_leaf),
		cmocka_unit_test(test_expired_intermediate),
		cmocka_unit_test(test_crl_leaf_revoked),
		cmocka_unit_test(test_crl_none_ignores_crls),
		cmocka_unit_test(test_crl_leaf_missing),
		cmocka_unit_test(test_crl_chain_intermediate_revoked),
		cmocka_unit_test(test_crl_chain_missing_intermediate_crl),
		cmocka_unit_test(test_crl_auto_per_ca),
		cmocka_unit_test(test_crl_auto_per_issuer),
		cmocka_unit_test(test_crl_expired),
		cmocka_unit_test(test_purpose),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_identity_not_checked_when_untrusted),
		cmocka_unit_test(test_pins),
		cmocka_unit_test(test_malformed_leaf),
		cmocka_unit_test(test_malformed_chain),
		cmocka_unit_test(test_chain_with_anchors),
		cmocka_unit_test(test_chain_limit),
		cmocka_unit_test(test_path_length),
		cmocka_unit_test(test_bad_signature),
		cmocka_unit_test(test_verify_depth),
		cmocka_unit_test(test_details),
		cmocka_unit_test(test_details_negative_serial_and_escaping),
		cmocka_unit_test(test_details_long_subject_truncated),
		cmocka_unit_test(test_san_nul_and_types),
		cmocka_unit_test(test_fields_match_openssl),
		cmocka_unit_test(test_fields_revoked),
		cmocka_unit_test(test_fields_chain),
		cmocka_unit_test(test_fields_san_lists),
		cmocka_unit_test(test_prepare_errors),
		cmocka_unit_test(test_prepare_twice_and_empty),
		cmocka_unit_test(test_valid_until),
		cmocka_unit_test(test_expiry_at_not_after),
		cmocka_unit_test(test_crl_next_update_passes),
		cmocka_unit_test(test_result_from_error),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
