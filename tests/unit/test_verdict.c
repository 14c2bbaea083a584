/*
 * test_verdict.c - the verdict (verdict.c): mode x result -> action,
 * policy selection and the SNI/Host rule, real certificates through
 * verify_cert() with a config loaded from a file, and the exact set-var
 * actions of the ACK.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "pki.h"
#include "spop.h"
#include "verdict.h"

/* ---- mode x result -> action -------------------------------------------- */

/* Written out in full from the issue, not computed. A=allow D=deny L=log. */
#define A ACTION_ALLOW
#define D ACTION_DENY
#define L ACTION_LOG
static const enum mtls_action action_table[RESULT_COUNT][MODE_COUNT] = {
	/*                          enforce optional log  off  deny */
	[RESULT_OK]                = { A, A, A, A, D },
	[RESULT_NO_CERT]           = { D, A, L, A, D },
	[RESULT_NO_POLICY]         = { D, D, L, A, D },
	[RESULT_HOST_MISMATCH]     = { D, D, L, A, D },
	[RESULT_MALFORMED]         = { D, D, L, A, D },
	[RESULT_UNTRUSTED]         = { D, D, L, A, D },
	[RESULT_EXPIRED]           = { D, D, L, A, D },
	[RESULT_NOT_YET_VALID]     = { D, D, L, A, D },
	[RESULT_REVOKED]           = { D, D, L, A, D },
	[RESULT_CRL_ERROR]         = { D, D, L, A, D },
	[RESULT_REVOCATION_UNKNOWN] = { D, D, L, A, D },
	[RESULT_BAD_PURPOSE]       = { D, D, L, A, D },
	[RESULT_IDENTITY_MISMATCH] = { D, D, L, A, D },
	[RESULT_PIN_MISMATCH]      = { D, D, L, A, D },
	[RESULT_CHAIN_ERROR]       = { D, D, L, A, D },
	[RESULT_INTERNAL_ERROR]    = { D, D, L, A, D },
};
#undef A
#undef D
#undef L

static void test_action_table(void **state)
{
	(void)state;
	for (int r = 0; r < RESULT_COUNT; r++) {
		for (int m = 0; m < MODE_COUNT; m++) {
			int present = r != RESULT_NO_CERT;
			enum mtls_action got = verdict_action_for((enum policy_mode)m,
			                                          (enum mtls_result)r,
			                                          present);

			if (got != action_table[r][m])
				fail_msg("mode %s result %s: got %s want %s",
				         config_mode_str((enum policy_mode)m),
				         verdict_result_str((enum mtls_result)r),
				         verdict_action_str(got),
				         verdict_action_str(action_table[r][m]));
		}
	}
	/* Out-of-range input fails closed. */
	assert_int_equal(verdict_action_for(MODE_COUNT, RESULT_OK, 1),
	                 ACTION_DENY);
	assert_int_equal(verdict_action_for(MODE_LOG, RESULT_COUNT, 1),
	                 ACTION_DENY);
	assert_int_equal(verdict_action_for(MODE_OFF, (enum mtls_result)-1, 1),
	                 ACTION_DENY);
}

static void test_strings(void **state)
{
	static const char *const results[RESULT_COUNT] = {
		"ok", "no_cert", "no_policy", "host_mismatch", "malformed",
		"untrusted", "expired", "not_yet_valid", "revoked", "crl_error",
		"revocation_unknown", "bad_purpose", "identity_mismatch", "pin_mismatch", "chain_error",
		"internal_error",
	};

	(void)state;
	for (int r = 0; r < RESULT_COUNT; r++)
		assert_string_equal(verdict_result_str((enum mtls_result)r),
		                    results[r]);
	assert_string_equal(verdict_result_str(RESULT_COUNT), "unknown");
	assert_string_equal(verdict_action_str(ACTION_ALLOW), "allow");
	assert_string_equal(verdict_action_str(ACTION_DENY), "deny");
	assert_string_equal(verdict_action_str(ACTION_LOG), "log");
	assert_string_equal(verdict_action_str(ACTION_COUNT), "unknown");
}

/* ---- fixture: PKI + config file ----------------------------------------- */

struct fixture {
	char *dir;
	struct pki_cert *ca_a, *ca_b, *leaf_a, *leaf_b;
	uint8_t *der_a, *der_b;
	size_t der_a_len, der_b_len;
	struct config *cfg;       /* hosts of the main test config */
	struct config *cfg_def;   /* with a [host *] default */
};

static struct fixture fx;

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static struct config *load_file(const char *name, const char *text)
{
	char path[512], err[CONFIG_ERR_LEN];
	struct config *cfg = NULL;

	snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
	write_text(path, text);
	if (config_load(path, &cfg, err, sizeof(err)) != 0)
		fail_msg("config: %s", err);
	return cfg;
}

static int group_setup(void **state)
{
	struct pki_cert_opts o;
	char p[512];

	(void)state;
	memset(&fx, 0, sizeof(fx));
	fx.dir = pki_tmpdir();

	memset(&o, 0, sizeof(o));
	o.is_ca = 1;
	o.cn = "Partner A Root";
	o.org = "Partner A";
	fx.ca_a = pki_make(&o, NULL);
	o.cn = "Partner B Root";
	o.org = "Partner B";
	fx.ca_b = pki_make(&o, NULL);

	memset(&o, 0, sizeof(o));
	o.cn = "client.a";
	o.org = "Partner A";
	o.eku = PKI_EKU_CLIENT;
	o.serial = 0x1234abcd;
	o.san_dns[0] = "client.a.example";
	o.san_uri[0] = "spiffe://a.example/ns/pay/sa/client";
	fx.leaf_a = pki_make(&o, fx.ca_a);
	memset(&o, 0, sizeof(o));
	o.cn = "client.b";
	o.eku = PKI_EKU_CLIENT;
	fx.leaf_b = pki_make(&o, fx.ca_b);
	fx.der_a = pki_der(fx.leaf_a, &fx.der_a_len);
	fx.der_b = pki_der(fx.leaf_b, &fx.der_b_len);

	snprintf(p, sizeof(p), "%s/a.pem", fx.dir);
	pki_write_pem(p, (const struct pki_cert *const[]){ fx.ca_a }, 1);
	snprintf(p, sizeof(p), "%s/b.pem", fx.dir);
	pki_write_pem(p, (const struct pki_cert *const[]){ fx.ca_b }, 1);

	fx.cfg = load_file("main.conf",
		"[ca a]\nfile = a.pem\n"
		"[ca b]\nfile = b.pem\n"
		"[host api.example.com]\nca = a\nmode = enforce\n"
		"[host opt.example.com]\nca = a\nmode = optional\n"
		"[host log.example.com]\nca = a\nmode = log\n"
		"[host off.example.com]\nmode = off\n"
		"[host *.b.example]\nca = b\n");
	fx.cfg_def = load_file("default.conf",
		"[ca a]\nfile = a.pem\n[host *]\nca = a\nmode = optional\n");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	config_free(fx.cfg);
	config_free(fx.cfg_def);
	free(fx.der_a);
	free(fx.der_b);
	pki_free(fx.ca_a);
	pki_free(fx.ca_b);
	pki_free(fx.leaf_a);
	pki_free(fx.leaf_b);
	pki_rmdir(fx.dir);
	return 0;
}

/* A request from C strings; NULL leaves the argument missing. */
static struct mtls_request req_make(const char *host, const char *sni,
                                    const uint8_t *cert, size_t cert_len)
{
	struct mtls_request r;

	memset(&r, 0, sizeof(r));
	r.host = host;
	r.host_len = host != NULL ? strlen(host) : 0;
	r.sni = sni;
	r.sni_len = sni != NULL ? strlen(sni) : 0;
	r.cert = cert;
	r.cert_len = cert_len;
	return r;
}

/* ---- verdict_evaluate ----------------------------------------------------- */

static void test_no_policy(void **state)
{
	struct mtls_request r = req_make("api.example.com", "api.example.com",
	                                 fx.der_a, fx.der_a_len);
	struct verdict v;

	(void)state;
	/* Garbage in the verdict must not survive. */
	memset(&v, 0x5a, sizeof(v));
	verdict_evaluate(NULL, &r, &v);
	assert_int_equal(v.result, RESULT_NO_POLICY);
	assert_int_equal(v.action, ACTION_ALLOW);
	assert_int_equal(v.present, 1);
	assert_int_equal(v.has_policy, 0);
	assert_int_equal(v.has_cert_info, 0);
	assert_null(v.ca);

	/* No host matches, no default. */
	r = req_make("other.org", "other.org", fx.der_a, fx.der_a_len);
	verdict_evaluate(fx.cfg, &r, &v);
	assert_int_equal(v.result, RESULT_NO_POLICY);
	assert_int_equal(v.action, ACTION_ALLOW);
	assert_int_equal(v.has_policy, 0);
	assert_null(v.policy);

	/* No name at all and no default: an HTTP request without Host is
	 * refused whatever the policies; the TCP message has nothing to
	 * check. */
	r = req_make(NULL, NULL, NULL, 0);
	verdict_evaluate(fx.cfg, &r, &v);
	assert_int_equal(v.result, RESULT_HOST_MISMATCH);
	assert_int_equal(v.action, ACTION_DENY);
	assert_int_equal(v.has_policy, 0);
	assert_int_equal(v.present, 0);
	r.kind = MSG_SNI;
	verdict_evaluate(fx.cfg, &r, &v);
	assert_int_equal(v.result, RESULT_NO_POLICY);
	assert_int_equal(v.action, ACTION_ALLOW);

	/* mode = off: no_policy, but the policy is reported. */
	r = req_make("OFF.example.com:443", "off.example.com", fx.der_b,
	             fx.der_b_len);
	verdict_evaluate(fx.cfg, &r, &v);
	assert_int_equal(v.result, RESULT_NO_POLICY);
	assert_int_equal(v.action, ACTION_ALLOW);
	assert_int_equal(v.has_policy, 1);
	assert_int_equal(v.mode, MODE_OFF);
	assert_string_equal(v.policy, "off.example.com");
	assert_int_equal(v.has_cert_info, 0);

	/* Neither name has an active policy: nothing to protect. */
	r = req_make("off.example.com", "other.org", NULL, 0);
	verdict_evaluate(fx.cfg, &r, &v);
	assert_int_equal(v.result, RESULT_NO_POLICY);
	assert_int_equal(v.action, ACTION_ALLOW);
	assert_string_equal(v.policy, "off.example.com");
	r = req_make("other.org", "off.example.com", NULL, 0);
	verdict_evaluate(fx.cfg, &r, &v);
	assert_int_equal(v.result, RESULT_NO_POLICY);
	assert_int_equal(v.has_policy, 0);
}

/* The SNI's policy counts as much as the Host's: a handshake made as a
 * protected host may not carry requests for an unprotected name (a
 * frontend routing by SNI would serve the protected backend), and the
 * action is the stricter of the two policies'. */
static void test_sni_policy_symmetric(void **state)
{
	static const struct {
		const char *host, *sni;
		enum mtls_action action;
		const char *policy;
	} cases[] = {
		/* Host off or uncovered, SNI protected: the SNI's policy */
		{ "off.example.com", "api.example.com", ACTION_DENY, "api.example.com" },
		{ "other.org", "api.example.com", ACTION_DENY, "api.example.com" },
		{ "other.org", "opt.example.com", ACTION_DENY, "opt.example.com" },
		{ "off.example.com", "log.example.com", ACTION_LOG, "log.example.com" },
		{ "other.org:443", "x.b.example", ACTION_DENY, "*.b.example" },
		/* both active: the stricter wins, the Host's is reported */
		{ "log.example.com", "api.example.com", ACTION_DENY, "log.example.com" },
		{ "api.example.com", "log.example.com", ACTION_DENY, "api.example.com" },
		/* Host protected, SNI not: as before */
		{ "api.example.com", "off.example.com", ACTION_DENY, "api.example.com" },
		{ "log.example.com", "other.org", ACTION_LOG, "log.example.com" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mtls_request r = req_make(cases[i].host, cases[i].sni,
		                                 fx.der_a, fx.der_a_len);
		struct verdict v;

		verdict_evaluate(fx.cfg, &r, &v);
		if (v.result != RESULT_HOST_MISMATCH || v.action != cases[i].action ||
		    !v.has_policy || strcmp(v.policy, cases[i].policy) != 0)
			fail_msg("case %zu host=%s sni=%s: %s/%s policy %s", i,
			         cases[i].host, cases[i].sni,
			         verdict_result_str(v.result),
			         verdict_action_str(v.action),
			         v.has_policy ? v.policy : "(none)");
		/* The certificate is not looked at. */
		assert_int_equal(v.has_cert_info, 0);
	}
}

/* mode = deny (the reference [host *]): names no tenant policy covers are
 * refused whatever the certificate, and the deny policy is active for the
 * SNI/Host rule like any other. */
static void test_mode_deny(void **state)
{
	struct config *cfg = load_file("deny.conf",
		"[ca a]\nfile = a.pem\n"
		"[host api.example.com]\nca = a\nmode = enforce\n"
		"[host off.example.com]\nmode = off\n"
		"[host *]\nmode = deny\n");
	struct mtls_request r = req_make("nothere.example", "nothere.example",
	                                 fx.der_a, fx.der_a_len);
	struct verdict v;

	(void)state;
	verdict_evaluate(cfg, &r, &v);
	assert_int_equal(v.result, RESULT_NO_POLICY);
	assert_int_equal(v.action, ACTION_DENY);
	assert_int_equal(v.mode, MODE_DENY);
	assert_string_equal(v.policy, "*");
	assert_int_equal(v.has_cert_info, 0);

	r = req_make("api.example.com", "api.example.com", fx.der_a, fx.der_a_len);
	verdict_evaluate(cfg, &r, &v);
	assert_int_equal(v.result, RESULT_OK);
	assert_int_equal(v.action, ACTION_ALLOW);

	r = req_make("off.example.com", "off.example.com", NULL, 0);
	verdict_evaluate(cfg, &r, &v);
	assert_int_equal(v.action, ACTION_ALLOW);

	/* An off host reached without SNI: only the default (deny) covers
	 * the handshake, so the names disagree. */
	r = req_make("off.example.com", NULL, NULL, 0);
	verdict_evaluate(cfg, &r, &v);
	assert_int_equal(v.result, RESULT_HOST_MISMATCH);
	assert_int_equal(v.action, ACTION_DENY);
	assert_string_equal(v.policy, "*");
	config_free(cfg);
}

struct match_case {
	const char *host;        /* NULL: no Host header */
	const char *sni;         /* NULL: no SNI */
	enum mtls_result want;   /* no certificate sent */
	const char *policy;      /* expected matched pattern */
};

static const struct match_case match_cases[] = {
	/* SNI missing while a policy applies */
	{ "api.example.com", NULL, RESULT_HOST_MISMATCH, "api.example.com" },
	{ "api.example.com", "", RESULT_HOST_MISMATCH, "api.example.com" },
	{ "api.example.com", "bad sni", RESULT_HOST_MISMATCH, "api.example.com" },
	/* SNI names another host (the bypass the rule is for) */
	{ "api.example.com", "off.example.com", RESULT_HOST_MISMATCH,
	  "api.example.com" },
	{ "api.example.com", "other.org", RESULT_HOST_MISMATCH,
	  "api.example.com" },
	{ "x.b.example", "y.b.example", RESULT_HOST_MISMATCH, "*.b.example" },
	/* Same host written differently: not a mismatch */
	{ "api.example.com:8443", "api.example.com", RESULT_NO_CERT,
	  "api.example.com" },
	{ "API.Example.com.", "api.example.com", RESULT_NO_CERT,
	  "api.example.com" },
	{ "api.example.com", "Api.EXAMPLE.com.", RESULT_NO_CERT,
	  "api.example.com" },
	{ "X.B.example:1", "x.b.example", RESULT_NO_CERT, "*.b.example" },
	/* No Host, or an empty or list-valued one: refused (a backend would
	 * route it by the target or to its default host); the SNI's policy
	 * is reported */
	{ NULL, "api.example.com", RESULT_HOST_MISMATCH, "api.example.com" },
	{ "", "api.example.com", RESULT_HOST_MISMATCH, "api.example.com" },
	{ "api.example.com, off.example.com", "api.example.com",
	  RESULT_HOST_MISMATCH, "api.example.com" },
	{ "api.example.com,api.example.com", "api.example.com",
	  RESULT_HOST_MISMATCH, "api.example.com" },
	/* A Host that does not parse: refused, the SNI's policy reported
	 * (see also test_unparseable_host). */
	{ "api.example.com:x", "api.example.com", RESULT_HOST_MISMATCH,
	  "api.example.com" },
	{ "api example.com", "api.example.com", RESULT_HOST_MISMATCH,
	  "api.example.com" },
};

static void test_host_matching(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
		const struct match_case *c = &match_cases[i];
		struct mtls_request r = req_make(c->host, c->sni, NULL, 0);
		struct verdict v;

		verdict_evaluate(fx.cfg, &r, &v);
		if (v.result != c->want || !v.has_policy ||
		    strcmp(v.policy, c->policy) != 0)
			fail_msg("case %zu host=%s sni=%s: result %s policy %s, "
			         "want %s %s", i, c->host ? c->host : "(none)",
			         c->sni ? c->sni : "(none)",
			         verdict_result_str(v.result),
			         v.has_policy ? v.policy : "(none)",
			         verdict_result_str(c->want), c->policy);
		/* enforce: both are denials */
		assert_int_equal(v.action, ACTION_DENY);
		assert_int_equal(v.mode, MODE_ENFORCE);
	}
}

/* A Host header that is not a host name is refused whatever the modes:
 * even when the SNI names a host whose mode is off, or nothing at all. */
static void test_unparseable_host(void **state)
{
	static const struct { const char *host, *sni, *policy; } cases[] = {
		{ "api.example.com:x", "off.example.com", "off.example.com" },
		{ "api.example.com:99999", "off.example.com", "off.example.com" },
		{ "api example.com", "unknown.example", NULL },
		{ "[::1", NULL, NULL },
	};
	struct verdict v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mtls_request r = req_make(cases[i].host, cases[i].sni,
		                                 fx.der_a, fx.der_a_len);

		verdict_evaluate(fx.cfg, &r, &v);
		assert_int_equal(v.result, RESULT_HOST_MISMATCH);
		assert_int_equal(v.action, ACTION_DENY);
		assert_int_equal(v.has_policy, cases[i].policy != NULL);
		if (cases[i].policy)
			assert_string_equal(v.policy, cases[i].policy);
	}
	/* With a default policy and no SNI, the default is reported. */
	{
		struct mtls_request r = req_make("bad host", NULL, NULL, 0);

		verdict_evaluate(fx.cfg_def, &r, &v);
		assert_int_equal(v.result, RESULT_HOST_MISMATCH);
		assert_int_equal(v.action, ACTION_DENY);
		assert_string_equal(v.policy, "*");
	}
}

/* A mismatch is decided before the certificate, which is then not
 * looked at. */
static void test_mismatch_before_cert(void **state)
{
	struct mtls_request r = req_make("api.example.com", "other.org",
	                                 fx.der_a, fx.der_a_len);
	struct verdict v;

	(void)state;
	verdict_evaluate(fx.cfg, &r, &v);
	assert_int_equal(v.result, RESULT_HOST_MISMATCH);
	assert_int_equal(v.action, ACTION_DENY);
	assert_int_equal(v.present, 1);
	assert_int_equal(v.has_cert_info, 0);
	assert_int_equal(v.verify_error, 0);

	/* In log mode it is logged, in optional mode denied. */
	r = req_make("log.example.com", NULL, NULL, 0);
	verdict_evaluate(fx.cfg, &r, &v);
	assert_int_equal(v.result, RESULT_HOST_MISMATCH);
	assert_int_equal(v.action, ACTION_LOG);
	r = req_make("opt.example.com", "api.example.com", NULL, 0);
	verdict_evaluate(fx.cfg, &r, &v);
	assert_int_equal(v.result, RESULT_HOST_MISMATCH);
	assert_int_equal(v.action, ACTION_DENY);
}

/* A default policy applies even when no name is known, and then the
 * missing SNI is a mismatch. */
static void test_default_policy(void **state)
{
	struct mtls_request r = req_make(NULL, NULL, NULL, 0);
	struct verdict v;

	(void)state;
	verdict_evaluate(fx.cfg_def, &r, &v);
	assert_int_equal(v.has_policy, 1);
	assert_string_equal(v.policy, "*");
	assert_int_equal(v.result, RESULT_HOST_MISMATCH);
	assert_int_equal(v.action, ACTION_DENY);

	r = req_make("anything.test", "anything.test", NULL, 0);
	verdict_evaluate(fx.cfg_def, &r, &v);
	assert_int_equal(v.result, RESULT_NO_CERT);
	assert_int_equal(v.action, ACTION_ALLOW);   /* optional */

	/* The TCP message: the SNI alone. */
	r = req_make(NULL, "anything.test", fx.der_a, fx.der_a_len);
	r.kind = MSG_SNI;
	verdict_evaluate(fx.cfg_def, &r, &v);
	assert_int_equal(v.result, RESULT_OK);
	assert_int_equal(v.action, ACTION_ALLOW);
	/* Without an SNI, it has nothing to match the default against. */
	r = req_make("anything.test", NULL, fx.der_a, fx.der_a_len);
	r.kind = MSG_SNI;
	verdict_evaluate(fx.cfg_def, &r, &v);
	assert_int_equal(v.result, RESULT_HOST_MISMATCH);
	assert_int_equal(v.action, ACTION_DENY);
}

static void test_no_cert(void **state)
{
	static const struct {
		const char *host;
		enum policy_mode mode;
		enum mtls_action action;
	} cases[] = {
		{ "api.example.com", MODE_ENFORCE, ACTION_DENY },
		{ "opt.example.com", MODE_OPTIONAL, ACTION_ALLOW },
		{ "log.example.com", MODE_LOG, ACTION_LOG },
	};
	static const uint8_t empty[1] = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mtls_request r = req_make(cases[i].host, cases[i].host,
		                                 NULL, 0);
		struct verdict v;

		verdict_evaluate(fx.cfg, &r, &v);
		assert_int_equal(v.result, RESULT_NO_CERT);
		assert_int_equal(v.present, 0);
		assert_int_equal(v.mode, cases[i].mode);
		assert_int_equal(v.action, cases[i].action);
		/* A zero-length certificate is no certificate. */
		r.cert = empty;
		r.cert_len = 0;
		verdict_evaluate(fx.cfg, &r, &v);
		assert_int_equal(v.result, RESULT_NO_CERT);
		assert_int_equal(v.action, cases[i].action);
	}
}

static void test_real_certificates(void **state)
{
	struct mtls_request r;
	struct verdict v;
	static const uint8_t junk[] = { 0x30, 0x03, 0x02, 0x01, 0x01, 0xff };

	(void)state;
	/* Partner A's client on A's host. */
	r = req_make("api.example.com", "api.example.com", fx.der_a,
	             fx.der_a_len);
	verdict_evaluate(fx.cfg, &r, &v);
	assert_string_equal(verdict_result_str(v.result), "ok");
	assert_int_equal(v.action, ACTION_ALLOW);
	assert_int_equal(v.present, 1);
	assert_int_equal(v.has_policy, 1);
	assert_int_equal(v.mode, MODE_ENFORCE);
	assert_string_equal(v.policy, "api.example.com");
	assert_non_null(v.ca);
	assert_string_equal(v.ca, "a");
	assert_int_equal(v.verify_error, 0);
	assert_int_equal(v.has_cert_info, 1);
	assert_string_equal(v.subject, "CN=client.a,O=Partner A");

	/* Partner B's client on A's host: untrusted. */
	r = req_make("api.example.com", "api.example.com", fx.der_b,
	             fx.der_b_len);
	verdict_evaluate(fx.cfg, &r, &v);
	assert_string_equal(verdict_result_str(v.result), "untrusted");
	assert_int_equal(v.action, ACTION_DENY);
	assert_null(v.ca);
	assert_int_not_equal(v.verify_error, 0);
	assert_int_equal(v.has_policy, 1);
	assert_string_equal(v.policy, "api.example.com");
	assert_int_equal(v.has_cert_info, 1);
	assert_string_equal(v.subject, "CN=client.b");

	/* ... logged on a log host, denied on an optional one. */
	r.host = r.sni = "log.example.com";
	r.host_len = r.sni_len = strlen(r.host);
	verdict_evaluate(fx.cfg, &r, &v);
	assert_int_equal(v.result, RESULT_UNTRUSTED);
	assert_int_equal(v.action, ACTION_LOG);
	r.host = r.sni = "opt.example.com";
	r.host_len = r.sni_len = strlen(r.host);
	verdict_evaluate(fx.cfg, &r, &v);
	assert_int_equal(v.result, RESULT_UNTRUSTED);
	assert_int_equal(v.action, ACTION_DENY);

	/* B's client on B's wildcard host: ok, anchored by b. */
	r = req_make("x.b.example:443", "X.b.example", fx.der_b, fx.der_b_len);
	verdict_evaluate(fx.cfg, &r, &v);
	assert_int_equal(v.result, RESULT_OK);
	assert_int_equal(v.action, ACTION_ALLOW);
	assert_string_equal(v.ca, "b");
	assert_string_equal(v.policy, "*.b.example");

	/* Bytes that are not a certificate. */
	r = req_make("api.example.com", "api.example.com", junk, sizeof(junk));
	verdict_evaluate(fx.cfg, &r, &v);
	assert_int_equal(v.result, RESULT_MALFORMED);
	assert_int_equal(v.action, ACTION_DENY);
	assert_int_equal(v.present, 1);
}

/* ---- verdict_encode -------------------------------------------------------- */

struct var {
	char name[32];
	struct spop_data value;
};

/* Decode the set-var actions of an ACK payload; asserts the framing of
 * every action (SPOE.txt 3.4: type 1, 3 arguments, scope txn). */
static size_t decode_vars(const uint8_t *buf, size_t len, struct var *out,
                          size_t max)
{
	const uint8_t *p = buf, *end = buf + len;
	size_t n = 0;

	while (p < end) {
		const uint8_t *name;
		size_t name_len;

		assert_true(n < max);
		assert_true(end - p >= 3);
		assert_int_equal(p[0], SPOP_ACT_SET_VAR);
		assert_int_equal(p[1], 3);
		assert_int_equal(p[2], SPOP_SCOPE_TXN);
		p += 3;
		assert_int_equal(spop_bytes_decode(&p, end, &name, &name_len),
		                 SPOP_RC_OK);
		assert_true(name_len < sizeof(out[n].name));
		memcpy(out[n].name, name, name_len);
		out[n].name[name_len] = '\0';
		assert_int_equal(spop_data_decode(&p, end, &out[n].value),
		                 SPOP_RC_OK);
		n++;
	}
	return n;
}

static void expect_str(const struct var *v, const char *name, const char *s)
{
	assert_string_equal(v->name, name);
	assert_int_equal(v->value.type, SPOP_T_STRING);
	if (v->value.u.buf.len != strlen(s) ||
	    memcmp(v->value.u.buf.ptr, s, strlen(s)) != 0)
		fail_msg("%s: got \"%.*s\" want \"%s\"", name,
		         (int)v->value.u.buf.len, (const char *)v->value.u.buf.ptr, s);
}

static void expect_bool(const struct var *v, const char *name, int b)
{
	assert_string_equal(v->name, name);
	assert_int_equal(v->value.type, SPOP_T_BOOL);
	assert_int_equal(v->value.u.boolean, b);
}

static void expect_int(const struct var *v, const char *name,
                       enum spop_type type, int64_t i)
{
	assert_string_equal(v->name, name);
	assert_int_equal(v->value.type, type);
	assert_int_equal(v->value.u.sint, i);
}

static int64_t asn1_unix(const ASN1_TIME *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
	return (int64_t)timegm(&tm);
}

static void sha1_hex(X509 *x, char out[41])
{
	uint8_t *der = NULL, md[20];
	unsigned int n = 0;
	int len = i2d_X509(x, &der);

	assert_true(len > 0);
	assert_int_equal(EVP_Digest(der, (size_t)len, md, &n, EVP_sha1(), NULL), 1);
	for (int i = 0; i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	OPENSSL_free(der);
}

static void test_encode_ok(void **state)
{
	struct mtls_request r = req_make("api.example.com", "api.example.com",
	                                 fx.der_a, fx.der_a_len);
	struct verdict v;
	uint8_t buf[8192], md[32];
	char fp[65];
	unsigned int mdlen = 0;
	struct spop_wr w;
	struct var vars[32];
	size_t n;

	(void)state;
	verdict_evaluate(fx.cfg, &r, &v);
	assert_int_equal(v.result, RESULT_OK);
	spop_wr_init(&w, buf, sizeof(buf));
	verdict_encode(&v, &w, 1);
	assert_int_equal(w.err, 0);
	n = decode_vars(buf, (size_t)(w.p - buf), vars, 32);
	/* No revoked (no CRL), san_email (none) or chain_rfc9440 (the
	 * anchor issued the leaf). */
	assert_int_equal(n, 20);
	expect_str(&vars[0], "action", "allow");
	expect_str(&vars[1], "result", "ok");
	expect_bool(&vars[2], "present", 1);
	expect_bool(&vars[3], "verified", 1);
	expect_str(&vars[4], "mode", "enforce");
	expect_str(&vars[5], "policy", "api.example.com");
	expect_str(&vars[6], "ca", "a");
	expect_int(&vars[7], "verify_error", SPOP_T_INT32, 0);
	expect_str(&vars[8], "subject", "CN=client.a,O=Partner A");
	expect_str(&vars[9], "issuer", "CN=Partner A Root,O=Partner A");
	expect_str(&vars[10], "serial", "1234abcd");
	assert_int_equal(EVP_Digest(fx.der_a, fx.der_a_len, md, &mdlen,
	                            EVP_sha256(), NULL), 1);
	for (int i = 0; i < 32; i++)
		snprintf(fp + 2 * i, 3, "%02x", md[i]);
	expect_str(&vars[11], "fingerprint", fp);
	expect_int(&vars[12], "not_before", SPOP_T_INT64,
	           asn1_unix(X509_get0_notBefore(fx.leaf_a->x509)));
	expect_int(&vars[13], "not_after", SPOP_T_INT64,
	           asn1_unix(X509_get0_notAfter(fx.leaf_a->x509)));
	expect_str(&vars[14], "spiffe_id", "spiffe://a.example/ns/pay/sa/client");
	sha1_hex(fx.leaf_a->x509, fp);
	expect_str(&vars[15], "fingerprint_sha1", fp);
	pki_keyid_hex(fx.leaf_a->x509, NID_subject_key_identifier, fp, sizeof(fp));
	assert_int_equal(strlen(fp), 40);
	expect_str(&vars[16], "ski", fp);
	pki_keyid_hex(fx.leaf_a->x509, NID_authority_key_identifier, fp, sizeof(fp));
	expect_str(&vars[17], "issuer_ski", fp);
	pki_keyid_hex(fx.ca_a->x509, NID_subject_key_identifier, fp, sizeof(fp));
	expect_str(&vars[17], "issuer_ski", fp);
	expect_str(&vars[18], "san_dns", "client.a.example");
	expect_str(&vars[19], "san_uri", "spiffe://a.example/ns/pay/sa/client");

	/* Without the certificate details. */
	spop_wr_init(&w, buf, sizeof(buf));
	verdict_encode(&v, &w, 0);
	assert_int_equal(w.err, 0);
	n = decode_vars(buf, (size_t)(w.p - buf), vars, 32);
	assert_int_equal(n, 8);
	expect_int(&vars[7], "verify_error", SPOP_T_INT32, 0);

	/* Too small a buffer: the writer reports it. */
	spop_wr_init(&w, buf, 40);
	verdict_encode(&v, &w, 1);
	assert_int_equal(w.err, 1);
}

static void test_encode_untrusted(void **state)
{
	struct mtls_request r = req_make("log.example.com", "log.example.com",
	                                 fx.der_b, fx.der_b_len);
	struct verdict v;
	uint8_t buf[8192];
	struct spop_wr w;
	struct var vars[32];
	size_t n;

	(void)state;
	verdict_evaluate(fx.cfg, &r, &v);
	spop_wr_init(&w, buf, sizeof(buf));
	verdict_encode(&v, &w, 1);
	assert_int_equal(w.err, 0);
	n = decode_vars(buf, (size_t)(w.p - buf), vars, 32);
	/* No ca (nothing anchored), no spiffe_id or san_* (no SAN). */
	assert_int_equal(n, 16);
	expect_str(&vars[0], "action", "log");
	expect_str(&vars[1], "result", "untrusted");
	expect_bool(&vars[2], "present", 1);
	expect_bool(&vars[3], "verified", 0);
	expect_str(&vars[4], "mode", "log");
	expect_str(&vars[5], "policy", "log.example.com");
	expect_int(&vars[6], "verify_error", SPOP_T_INT32, v.verify_error);
	assert_int_not_equal(v.verify_error, 0);
	expect_str(&vars[7], "subject", "CN=client.b");
	expect_str(&vars[8], "issuer", "CN=Partner B Root,O=Partner B");
	assert_string_equal(vars[12].name, "not_after");
	assert_string_equal(vars[13].name, "fingerprint_sha1");
	assert_string_equal(vars[14].name, "ski");
	assert_string_equal(vars[15].name, "issuer_ski");
}

/* Every level of verdict_encode_cert() is a prefix of the next, in the
 * documented order, and `ends` says where each stops. */
static void test_encode_detail_levels(void **state)
{
	struct verdict v;
	uint8_t full[8192], part[8192];
	size_t ends[DETAIL_COUNT], e2[DETAIL_COUNT];
	struct spop_wr w;
	struct var vars[32];
	size_t n;
	static const char *const order[] = {
		"subject", "issuer", "serial", "fingerprint", "not_before",
		"not_after", "spiffe_id", "fingerprint_sha1", "ski",
		"issuer_ski", "revoked", "san_dns", "san_uri", "san_email",
		"chain_rfc9440",
	};

	(void)state;
	memset(&v, 0, sizeof(v));
	trust_result_reset(&v.trust);
	v.has_cert_info = 1;
	strcpy(v.subject, "CN=s");
	strcpy(v.issuer, "CN=i");
	strcpy(v.serial, "01");
	strcpy(v.fingerprint, "ff");
	strcpy(v.spiffe_id, "spiffe://x/y");
	strcpy(v.fingerprint_sha1, "aa");
	strcpy(v.ski, "bb");
	strcpy(v.issuer_ski, "cc");
	v.revoked = 0;
	strcpy(v.san_dns, "a.example, b.example");
	strcpy(v.san_uri, "spiffe://x/y");
	strcpy(v.san_email, "a@example");
	strcpy(v.chain_rfc9440, ":AAAA:, :BBBB:");
	spop_wr_init(&w, full, sizeof(full));
	verdict_encode_cert(&v.trust, &w, DETAIL_ALL, ends);
	assert_int_equal(w.err, 0);
	assert_int_equal(ends[DETAIL_NONE], 0);
	assert_int_equal(ends[DETAIL_ALL], (size_t)(w.p - full));
	assert_true(ends[DETAIL_CORE] < ends[DETAIL_SAN]);
	assert_true(ends[DETAIL_SAN] < ends[DETAIL_ALL]);
	n = decode_vars(full, ends[DETAIL_ALL], vars, 32);
	assert_int_equal(n, 15);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(vars[i].name, order[i]);
	expect_bool(&vars[10], "revoked", 0);
	expect_str(&vars[14], "chain_rfc9440", ":AAAA:, :BBBB:");
	assert_int_equal(decode_vars(full, ends[DETAIL_SAN], vars, 32), 14);
	assert_int_equal(decode_vars(full, ends[DETAIL_CORE], vars, 32), 11);
	/* A lower level writes exactly the prefix. */
	for (int d = DETAIL_NONE; d < DETAIL_COUNT; d++) {
		spop_wr_init(&w, part, sizeof(part));
		verdict_encode_cert(&v.trust, &w, (enum verdict_detail)d, e2);
		assert_int_equal(w.err, 0);
		assert_int_equal((size_t)(w.p - part), ends[d]);
		assert_memory_equal(part, full, ends[d]);
	}
	/* Absent fields are absent, not empty; revoked true is sent. */
	v.revoked = 1;
	v.san_dns[0] = v.chain_rfc9440[0] = v.ski[0] = '\0';
	spop_wr_init(&w, full, sizeof(full));
	verdict_encode_cert(&v.trust, &w, DETAIL_ALL, ends);
	n = decode_vars(full, (size_t)(w.p - full), vars, 32);
	assert_int_equal(n, 12);
	expect_bool(&vars[9], "revoked", 1);
	assert_string_equal(vars[10].name, "san_uri");
	assert_int_equal(ends[DETAIL_SAN], ends[DETAIL_ALL]);
}

static void test_encode_off_and_mismatch(void **state)
{
	struct mtls_request r = req_make("off.example.com", "off.example.com",
	                                 fx.der_a, fx.der_a_len);
	struct verdict v;
	uint8_t buf[1024];
	struct spop_wr w;
	struct var vars[32];
	size_t n;

	(void)state;
	verdict_evaluate(fx.cfg, &r, &v);
	spop_wr_init(&w, buf, sizeof(buf));
	verdict_encode(&v, &w, 1);
	n = decode_vars(buf, (size_t)(w.p - buf), vars, 32);
	assert_int_equal(n, 7);
	expect_str(&vars[0], "action", "allow");
	expect_str(&vars[1], "result", "no_policy");
	expect_bool(&vars[2], "present", 1);
	expect_bool(&vars[3], "verified", 0);
	expect_str(&vars[4], "mode", "off");
	expect_str(&vars[5], "policy", "off.example.com");
	expect_int(&vars[6], "verify_error", SPOP_T_INT32, 0);

	r = req_make("api.example.com", NULL, NULL, 0);
	verdict_evaluate(fx.cfg, &r, &v);
	spop_wr_init(&w, buf, sizeof(buf));
	verdict_encode(&v, &w, 1);
	n = decode_vars(buf, (size_t)(w.p - buf), vars, 32);
	assert_int_equal(n, 7);
	expect_str(&vars[0], "action", "deny");
	expect_str(&vars[1], "result", "host_mismatch");
	expect_bool(&vars[2], "present", 0);
	expect_str(&vars[4], "mode", "enforce");
}

/* The exact bytes for the smallest verdict, written by hand from
 * SPOE.txt 3.1/3.4 rather than through the codec under test. */
static void test_encode_bytes(void **state)
{
	static const uint8_t want[] =
		"\x01\x03\x02" "\x06" "action" "\x08\x05" "allow"
		"\x01\x03\x02" "\x06" "result" "\x08\x09" "no_policy"
		"\x01\x03\x02" "\x07" "present" "\x01"
		"\x01\x03\x02" "\x08" "verified" "\x01"
		"\x01\x03\x02" "\x0c" "verify_error" "\x02\x00";
	struct mtls_request r = req_make("nowhere.test", "nowhere.test", NULL, 0);
	struct verdict v;
	uint8_t buf[256];
	struct spop_wr w;

	(void)state;
	verdict_evaluate(fx.cfg, &r, &v);
	spop_wr_init(&w, buf, sizeof(buf));
	verdict_encode(&v, &w, 1);
	assert_int_equal(w.err, 0);
	assert_int_equal(w.p - buf, sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want) - 1);

	/* A true BOOL carries its value in the type byte's flags (0x11). */
	v.present = 1;
	spop_wr_init(&w, buf, sizeof(buf));
	verdict_encode(&v, &w, 1);
	assert_int_equal(buf[17 + 21 + 3 + 1 + 7], 0x11);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_action_table),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_no_policy),
		cmocka_unit_test(test_host_matching),
		cmocka_unit_test(test_sni_policy_symmetric),
		cmocka_unit_test(test_mode_deny),
		cmocka_unit_test(test_unparseable_host),
		cmocka_unit_test(test_mismatch_before_cert),
		cmocka_unit_test(test_default_policy),
		cmocka_unit_test(test_no_cert),
		cmocka_unit_test(test_real_certificates),
		cmocka_unit_test(test_encode_ok),
		cmocka_unit_test(test_encode_untrusted),
		cmocka_unit_test(test_encode_detail_levels),
		cmocka_unit_test(test_encode_off_and_mismatch),
		cmocka_unit_test(test_encode_bytes),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
