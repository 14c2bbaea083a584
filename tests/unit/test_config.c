/*
 * test_config.c - configuration loading (config.c): a full valid file,
 * the lookup index, every error with its exact "FILE:LINE: " prefix,
 * relative paths, CRL defaults and the [agent] settings.
 *
 * The CA and CRL files are generated at test time with pki.h into a
 * temporary directory, next to the INI file written by each test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/x509.h>

#include "config.h"
#include "pki.h"
#include "policy.h"
#include "verdict.h"
#include "trust.h"

struct fixture {
	char *dir;
	char conf[512];           /* dir/mtls.conf */
	struct pki_cert *ca_a, *ca_b, *ca_b2, *ca_c, *leaf;
	time_t crl_c_next;        /* earliest nextUpdate among c's CRLs */
};

static struct fixture fx;

static void fx_path(char *buf, size_t len, const char *rel)
{
	int n = snprintf(buf, len, "%s/%s", fx.dir, rel);

	assert_true(n > 0 && (size_t)n < len);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static time_t crl_next(X509_CRL *crl)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	assert_int_equal(ASN1_TIME_to_tm(X509_CRL_get0_nextUpdate(crl), &tm), 1);
	return timegm(&tm);
}

static int group_setup(void **state)
{
	struct pki_cert_opts o;
	char p[512];
	X509_CRL *crl;
	uint64_t revoked[] = { 1234 };

	(void)state;
	fx.dir = pki_tmpdir();
	fx_path(fx.conf, sizeof(fx.conf), "mtls.conf");
	fx_path(p, sizeof(p), "ca");
	assert_int_equal(mkdir(p, 0700), 0);
	fx_path(p, sizeof(p), "crl");
	assert_int_equal(mkdir(p, 0700), 0);
	fx_path(p, sizeof(p), "sub");
	assert_int_equal(mkdir(p, 0700), 0);

	memset(&o, 0, sizeof(o));
	o.is_ca = 1;
	o.cn = "Partner A Root";
	fx.ca_a = pki_make(&o, NULL);
	o.cn = "Partner B Root";
	fx.ca_b = pki_make(&o, NULL);
	o.cn = "Partner B Root 2";
	fx.ca_b2 = pki_make(&o, NULL);
	o.cn = "Partner C Root";
	fx.ca_c = pki_make(&o, NULL);
	memset(&o, 0, sizeof(o));
	o.cn = "leaf.example";
	o.eku = PKI_EKU_CLIENT;
	fx.leaf = pki_make(&o, fx.ca_a);

	fx_path(p, sizeof(p), "ca/a.pem");
	pki_write_pem(p, (const struct pki_cert *const[]){ fx.ca_a }, 1);
	fx_path(p, sizeof(p), "ca/b.pem");
	pki_write_pem(p, (const struct pki_cert *const[]){ fx.ca_b, fx.ca_b2 },
	              2);
	fx_path(p, sizeof(p), "ca/c.pem");
	pki_write_pem(p, (const struct pki_cert *const[]){ fx.ca_c }, 1);
	/* A bundle whose second certificate is not a CA. */
	fx_path(p, sizeof(p), "notca.pem");
	pki_write_pem(p, (const struct pki_cert *const[]){ fx.ca_a, fx.leaf },
	              2);

	crl = pki_crl(fx.ca_c, revoked, 1, -60, 7200);
	fx_path(p, sizeof(p), "crl/c.crl");
	pki_write_crl_pem(p, crl);
	X509_CRL_free(crl);
	crl = pki_crl(fx.ca_c, NULL, 0, -60, 3600);
	fx.crl_c_next = crl_next(crl);
	fx_path(p, sizeof(p), "crl/c.der");
	pki_write_crl_der(p, crl);
	X509_CRL_free(crl);

	fx_path(p, sizeof(p), "empty.pem");
	write_text(p, "");
	fx_path(p, sizeof(p), "garbage.crl");
	write_text(p, "this is not a CRL\n");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	pki_free(fx.ca_a);
	pki_free(fx.ca_b);
	pki_free(fx.ca_b2);
	pki_free(fx.ca_c);
	pki_free(fx.leaf);
	pki_rmdir(fx.dir);
	return 0;
}

/* Write `text` as the config file and load it. */
static int load_text(const char *text, struct config **cfg, char *err)
{
	write_text(fx.conf, text);
	return config_load(fx.conf, cfg, err, CONFIG_ERR_LEN);
}

static struct config *load_ok(const char *text)
{
	struct config *cfg = NULL;
	char err[CONFIG_ERR_LEN];

	err[0] = '\0';
	if (load_text(text, &cfg, err) != 0)
		fail_msg("load failed: %s\n--- config ---\n%s", err, text);
	assert_non_null(cfg);
	return cfg;
}

#define CA_A "[ca a]\nfile = ca/a.pem\n"
#define CA_B "[ca b]\nfile = ca/b.pem\n"
#define CA_C "[ca c]\nfile = ca/c.pem\ncrl = crl/c.crl\ncrl = crl/c.der\n"

static const char full_config[] =
	"; mtls-spoa test configuration\n"                          /* 1 */
	"[agent]\n"                                                 /* 2 */
	"listen = 127.0.0.1:12345\n"                                /* 3 */
	"listen = [::1]:12346   ; IPv6\n"                           /* 4 */
	"listen = unix:/run/mtls-spoa.sock\n"                       /* 5 */
	"threads = 3\n"                                             /* 6 */
	"max-frame-size = 65536\n"                                  /* 7 */
	"idle-timeout = 2m\n"                                       /* 8 */
	"log-level = debug\n"                                       /* 9 */
	"max-connections = 5000\n"                                  /* 10 */
	"max-output = 1m\n"                                         /* 11 */
	"cache-entries = 0\n"                                       /* 12 */
	"cache-ttl = 1500ms\n"                                      /* 13 */
	"\n"
	"[ca a]\n"
	"file = ca/a.pem        ; relative to the config file\n"
	"[ca b]\n"
	"file = ca/b.pem\n"
	"# c has two CRLs, one PEM and one DER\n"
	CA_C
	"\n"
	"[host api.example.com]\n"
	"ca = a b\n"
	"mode = enforce\n"
	"verify-depth = 3\n"
	"purpose = any\n"
	"allow-identity = spiffe://prod.example/*\n"
	"allow-identity = *.partner-a.example\n"
	"pin-sha256 = AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:"
	"AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67:89\n"
	"pin-sha256 = 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
	"crl-check = none\n"
	"[host *.example.com]\n"
	"ca = c\n"
	"mode = optional\n"
	"[host *]\n"
	"ca = a\n"
	"mode = log\n"
	"[host API2.Example.com.]\n"
	"ca = c\n"
	"ca = a\n"
	"crl-check = chain\n"
	"[host off.example.com]\n"
	"mode = off\n"
	"[host both.example.com]\n"
	"ca = a c a\n";

static void test_full_config(void **state)
{
	struct config *cfg;
	const struct host_policy *h;
	char p[512];

	(void)state;
	cfg = load_ok(full_config);
	assert_string_equal(cfg->path, fx.conf);

	/* [agent] */
	assert_int_equal(cfg->agent.n_listen, 3);
	assert_string_equal(cfg->agent.listen[0], "127.0.0.1:12345");
	assert_string_equal(cfg->agent.listen[1], "[::1]:12346");
	assert_string_equal(cfg->agent.listen[2], "unix:/run/mtls-spoa.sock");
	assert_int_equal(cfg->agent.threads, 3);
	assert_int_equal(cfg->agent.max_frame_size, 65536);
	assert_int_equal(cfg->agent.idle_timeout_ms, 120000);
	assert_int_equal(cfg->agent.log_level, LOG_LVL_DEBUG);
	assert_int_equal(cfg->agent.max_connections, 5000);
	assert_int_equal(cfg->agent.max_output_bytes, 1024 * 1024);
	assert_int_equal(cfg->agent.cache_entries, 0);
	assert_int_equal(cfg->agent.cache_ttl_ms, 1500);

	/* [ca] */
	assert_int_equal(cfg->n_cas, 3);
	assert_string_equal(cfg->cas[0]->name, "a");
	fx_path(p, sizeof(p), "ca/a.pem");
	assert_string_equal(cfg->cas[0]->file, p);
	assert_int_equal(sk_X509_num(cfg->cas[0]->certs), 1);
	assert_int_equal(X509_cmp(sk_X509_value(cfg->cas[0]->certs, 0),
	                          fx.ca_a->x509), 0);
	assert_int_equal(ca_crl_count(cfg->cas[0]), 0);
	assert_null(ca_crl_at(cfg->cas[0], 0));
	assert_int_equal(sk_X509_num(cfg->cas[1]->certs), 2);
	assert_int_equal(X509_cmp(sk_X509_value(cfg->cas[1]->certs, 1),
	                          fx.ca_b2->x509), 0);
	assert_string_equal(cfg->cas[2]->name, "c");
	assert_int_equal(ca_crl_count(cfg->cas[2]), 2);
	{
		time_t t0 = crl_next_update(ca_crl_at(cfg->cas[2], 0));
		time_t t1 = crl_next_update(ca_crl_at(cfg->cas[2], 1));

		assert_int_equal(t0 < t1 ? t0 : t1, fx.crl_c_next);
	}

	/* [host] */
	assert_int_equal(cfg->n_hosts, 6);
	h = cfg->hosts[0];
	assert_string_equal(h->pattern, "api.example.com");
	assert_string_equal(h->name, "api.example.com");
	assert_int_equal(h->kind, POLICY_EXACT);
	assert_int_equal(h->mode, MODE_ENFORCE);
	assert_int_equal(h->trust->verify_depth, 3);
	assert_int_equal(h->trust->purpose, PURPOSE_ANY);
	assert_int_equal(h->trust->crl_check, CRL_CHECK_NONE);
	assert_int_equal(h->trust->n_cas, 2);
	assert_ptr_equal(h->trust->cas[0], cfg->cas[0]);
	assert_ptr_equal(h->trust->cas[1], cfg->cas[1]);
	assert_int_equal(h->trust->n_identities, 2);
	assert_string_equal(h->trust->identities[0], "spiffe://prod.example/*");
	assert_string_equal(h->trust->identities[1], "*.partner-a.example");
	assert_int_equal(h->trust->n_pins, 2);
	assert_memory_equal(h->trust->pins[0],
	                    "\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef\x01"
	                    "\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89"
	                    "\xab\xcd\xef\x01\x23\x45\x67\x89", 32);
	assert_int_equal(h->trust->pins[1][0], 0x00);
	assert_int_equal(h->trust->pins[1][31], 0xff);
	assert_non_null(h->trust->store);

	h = cfg->hosts[1];
	assert_string_equal(h->pattern, "*.example.com");
	assert_string_equal(h->name, "example.com");
	assert_int_equal(h->kind, POLICY_WILDCARD);
	assert_int_equal(h->mode, MODE_OPTIONAL);
	/* defaults */
	assert_int_equal(h->trust->verify_depth, 5);
	assert_int_equal(h->trust->purpose, PURPOSE_CLIENT);
	assert_int_equal(h->trust->crl_check, CRL_CHECK_LEAF);   /* c has CRLs */
	assert_int_equal(h->trust->n_identities, 0);
	assert_int_equal(h->trust->n_pins, 0);

	h = cfg->hosts[2];
	assert_int_equal(h->kind, POLICY_DEFAULT);
	assert_ptr_equal(cfg->default_policy, h);
	assert_int_equal(h->mode, MODE_LOG);
	assert_int_equal(h->trust->crl_check, CRL_CHECK_NONE);   /* a has none */

	h = cfg->hosts[3];
	assert_string_equal(h->pattern, "API2.Example.com.");
	assert_string_equal(h->name, "api2.example.com");
	assert_int_equal(h->trust->crl_check, CRL_CHECK_CHAIN);
	assert_int_equal(h->trust->n_cas, 2);   /* lists accumulate */
	assert_ptr_equal(h->trust->cas[0], cfg->cas[2]);
	assert_ptr_equal(h->trust->cas[1], cfg->cas[0]);

	h = cfg->hosts[4];
	assert_int_equal(h->mode, MODE_OFF);
	assert_null(h->trust);     /* no CA: no trust policy */

	h = cfg->hosts[5];
	assert_int_equal(h->trust->n_cas, 2);   /* "a c a": a once */
	assert_int_equal(h->trust->crl_check, CRL_CHECK_LEAF);   /* one CA has CRLs */
	config_free(cfg);
}

static const char *lookup_pattern(const struct config *cfg, const char *host,
                                  int strip_port)
{
	char norm[POLICY_HOST_MAX + 1];
	const struct host_policy *h;
	int n = policy_normalize(host, strlen(host), strip_port, norm);

	if (n < 0)
		return "<invalid>";
	h = config_lookup(cfg, norm, (size_t)n);
	return h != NULL ? h->pattern : "<none>";
}

struct lookup_case {
	const char *host;
	int strip_port;
	const char *want;
};

static const struct lookup_case lookup_cases[] = {
	{ "api.example.com", 0, "api.example.com" },        /* exact */
	{ "API.Example.COM.", 0, "api.example.com" },       /* case, dot */
	{ "api.example.com:8443", 1, "api.example.com" },   /* Host port */
	{ "x.example.com", 0, "*.example.com" },            /* wildcard */
	{ "X.EXAMPLE.COM:443", 1, "*.example.com" },
	{ "api2.example.com", 0, "API2.Example.com." },     /* exact beats wildcard */
	{ "example.com", 0, "*" },                          /* not one label */
	{ "a.b.example.com", 0, "*" },                      /* two labels */
	{ "other.org", 0, "*" },                            /* default */
	{ "[::1]:443", 1, "::1" },                          /* IPv6 literal */
	{ "::1", 0, "::1" },
	{ "a.long-suffix.test", 0, "*.long-suffix.test" },
	{ "long-suffix.test", 0, "*" },
};

static void test_lookup_table(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(CA_A
	              "[host api.example.com]\nca = a\n"
	              "[host *.example.com]\nca = a\n"
	              "[host API2.Example.com.]\nca = a\n"
	              "[host *]\nca = a\n"
	              "[host ::1]\nca = a\n"
	              "[host *.long-suffix.test]\nca = a\n");
	for (size_t i = 0; i < sizeof(lookup_cases) / sizeof(lookup_cases[0]);
	     i++) {
		const struct lookup_case *c = &lookup_cases[i];
		const char *got = lookup_pattern(cfg, c->host, c->strip_port);

		if (strcmp(got, c->want) != 0)
			fail_msg("lookup case %zu \"%s\": got %s, want %s", i,
			         c->host, got, c->want);
	}
	/* Not NUL-terminated input: the length is what counts. */
	assert_string_equal(config_lookup(cfg, "api.example.comXYZ", 15)->pattern,
	                    "api.example.com");
	assert_ptr_equal(config_lookup(NULL, "api.example.com", 15), NULL);
	config_free(cfg);

	/* Without [host *], unmatched names get no policy. */
	cfg = load_ok(CA_A "[host *.example.com]\nca = a\n");
	assert_string_equal(lookup_pattern(cfg, "a.example.com", 0),
	                    "*.example.com");
	assert_string_equal(lookup_pattern(cfg, "example.com", 0), "<none>");
	assert_string_equal(lookup_pattern(cfg, "a.b.example.com", 0), "<none>");
	assert_null(config_lookup(cfg, "x", 1));
	assert_null(cfg->default_policy);
	config_free(cfg);
}

static const struct lookup_case deep_cases[] = {
	{ "x.example.com", 0, "*.example.com" },           /* one label first */
	{ "a.z.example.com", 0, "**.example.com" },        /* any depth */
	{ "a.b.c.d.example.com", 0, "**.example.com" },
	{ "A.Z.EXAMPLE.COM.", 0, "**.example.com" },       /* case, dot */
	{ "a.z.example.com:8443", 1, "**.example.com" },
	{ "a.b.example.com", 0, "**.B.Example.com." },
	{ "example.com", 0, "*" },                         /* the suffix itself */
	{ "x.b.example.com", 0, "**.B.Example.com." },     /* longest suffix */
	{ "y.x.b.example.com", 0, "**.B.Example.com." },
	{ "b.example.com", 0, "*.example.com" },
	{ "api.b.example.com", 0, "api.b.example.com" },   /* exact first */
	{ "w.c.example.com", 0, "*.c.example.com" },       /* one label beats */
	{ "v.w.c.example.com", 0, "**.example.com" },
	{ "a.b.other.test", 0, "**.test" },
	{ "other.test", 0, "**.test" },
	{ "test", 0, "*" },
	{ "x.notexample.com", 0, "*" },
};

static void test_lookup_any_depth(void **state)
{
	struct config *cfg;
	const struct host_policy *h;
	char name[POLICY_HOST_MAX + 1];
	size_t n;

	(void)state;
	cfg = load_ok(CA_A
	              "[host **.example.com]\nca = a\n"
	              "[host *.example.com]\nca = a\n"
	              "[host **.B.Example.com.]\nca = a\n"
	              "[host api.b.example.com]\nca = a\n"
	              "[host *.c.example.com]\nca = a\n"
	              "[host **.test]\nca = a\n"
	              "[host *]\nca = a\n");
	h = cfg->hosts[0];
	assert_int_equal(h->kind, POLICY_ANY_DEPTH);
	assert_string_equal(h->pattern, "**.example.com");
	assert_string_equal(h->name, "example.com");
	assert_int_equal(cfg->hosts[1]->kind, POLICY_WILDCARD);
	assert_string_equal(cfg->hosts[2]->name, "b.example.com");
	for (size_t i = 0; i < sizeof(deep_cases) / sizeof(deep_cases[0]); i++) {
		const struct lookup_case *c = &deep_cases[i];
		const char *got = lookup_pattern(cfg, c->host, c->strip_port);

		if (strcmp(got, c->want) != 0)
			fail_msg("any-depth case %zu \"%s\": got %s, want %s", i,
			         c->host, got, c->want);
	}
	/* A long name: 60 labels of 3 bytes below the suffix. */
	n = 0;
	for (int i = 0; i < 60; i++) {
		memcpy(name + n, "ab.", 3);
		n += 3;
	}
	memcpy(name + n, "example.com", 12);
	n += 11;
	assert_string_equal(config_lookup(cfg, name, n)->pattern,
	                    "**.example.com");
	memcpy(name + n - 11, "nothere.zz", 11);
	assert_string_equal(config_lookup(cfg, name, n - 1)->pattern, "*");
	config_free(cfg);

	/* Without [host *], the suffix alone gets no policy. */
	cfg = load_ok(CA_A "[host **.example.com]\nca = a\n");
	assert_string_equal(lookup_pattern(cfg, "a.b.example.com", 0),
	                    "**.example.com");
	assert_string_equal(lookup_pattern(cfg, "example.com", 0), "<none>");
	assert_string_equal(lookup_pattern(cfg, "com", 0), "<none>");
	config_free(cfg);
}

/* Thousands of hosts of every kind: each still found by its own entry. */
static void test_lookup_many(void **state)
{
	enum { N = 3000 };
	size_t cap = (size_t)N * 64 + 64, len;
	char *text = malloc(cap), host[64];
	struct config *cfg;

	(void)state;
	assert_non_null(text);
	len = (size_t)snprintf(text, cap, CA_A);
	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(text + len, cap - len,
		                        "[host %st%d.example]\nca = a\n",
		                        i % 3 == 0 ? "" : i % 3 == 1 ? "*." : "**.",
		                        i);
	assert_true(len < cap);
	cfg = load_ok(text);
	free(text);
	assert_int_equal(cfg->n_hosts, N);
	for (int i = 0; i < N; i++) {
		const struct host_policy *h;

		snprintf(host, sizeof(host), "%st%d.example",
		         i % 3 == 0 ? "" : i % 3 == 1 ? "x." : "x.y.", i);
		h = config_lookup(cfg, host, strlen(host));
		assert_non_null(h);
		assert_ptr_equal(h, cfg->hosts[i]);
	}
	config_free(cfg);
}

/* libinih truncates section names to 49 characters: a long host pattern
 * must still be taken whole. */
static void test_long_host_pattern(void **state)
{
	char name[POLICY_HOST_MAX + 1];
	char text[1024];
	struct config *cfg;

	(void)state;
	memset(name, 'a', 60);
	memcpy(name + 60, ".example.com", 13);
	snprintf(text, sizeof(text), CA_A "[host %s]\nca = a\n"
	         "[host %.50s]\nca = a\n", name, name);
	cfg = load_ok(text);
	assert_int_equal(cfg->n_hosts, 2);
	assert_string_equal(cfg->hosts[0]->name, name);
	assert_string_equal(config_lookup(cfg, name, strlen(name))->pattern,
	                    name);
	config_free(cfg);
}

static void test_agent_defaults(void **state)
{
	struct config *cfg;
	struct agent_settings d;

	(void)state;
	config_agent_defaults(&d);
	assert_int_equal(d.n_listen, 0);
	assert_int_equal(d.threads, 0);
	assert_int_equal(d.max_frame_size, 16380);
	assert_int_equal(d.idle_timeout_ms, 30000);
	assert_int_equal(d.log_level, LOG_LVL_INFO);
	assert_int_equal(d.log_format, LOG_FMT_TEXT);
	assert_int_equal(d.max_connections, 1024);
	assert_int_equal(d.max_output_bytes, 256 * 1024);
	assert_int_equal(d.cache_entries, 10000);
	assert_int_equal(d.cache_ttl_ms, 60000);
	assert_int_equal(d.memo_ttl_ms, 1000);

	cfg = load_ok(CA_A "[host *]\nca = a\n");
	assert_memory_equal(&cfg->agent, &d, sizeof(d));
	config_free(cfg);

	/* An empty file is a valid (useless) configuration. */
	/* "*:PORT" is every address, as on the command line. */
	cfg = load_ok("[agent]\nlisten = *:12345\n");
	assert_int_equal(cfg->agent.n_listen, 1);
	assert_string_equal(cfg->agent.listen[0], "*:12345");
	config_free(cfg);
	cfg = load_ok("");
	assert_int_equal(cfg->n_hosts, 0);
	assert_int_equal(cfg->n_cas, 0);
	assert_null(config_lookup(cfg, "a", 1));
	config_free(cfg);

	/* Bounds accepted. */
	cfg = load_ok("[agent]\nthreads = 0\nmax-frame-size = 256\n"
	              "idle-timeout = 1\nmax-output = 4k\ncache-ttl = 1h\n"
	              "max-connections = 1000000\ncache-entries = 10000000\n");
	assert_int_equal(cfg->agent.threads, 0);
	assert_int_equal(cfg->agent.max_frame_size, 256);
	assert_int_equal(cfg->agent.idle_timeout_ms, 1);
	assert_int_equal(cfg->agent.max_output_bytes, 4096);
	assert_int_equal(cfg->agent.cache_ttl_ms, 3600000);
	assert_int_equal(cfg->agent.max_connections, 1000000);
	assert_int_equal(cfg->agent.cache_entries, 10000000);
	config_free(cfg);
	/* memo-ttl: 0 turns the memo off, up to 1h. */
	cfg = load_ok("[agent]\nmemo-ttl = 0\n");
	assert_int_equal(cfg->agent.memo_ttl_ms, 0);
	config_free(cfg);
	cfg = load_ok("[agent]\nmemo-ttl = 1h\n");
	assert_int_equal(cfg->agent.memo_ttl_ms, 3600000);
	config_free(cfg);
	cfg = load_ok("[agent]\nthreads = 64\nmax-frame-size = 1048576\n"
	              "max-output = 64m\nlog-level = error\nlog-format = json\n");
	assert_int_equal(cfg->agent.threads, 64);
	assert_int_equal(cfg->agent.max_frame_size, 1048576);
	assert_int_equal(cfg->agent.max_output_bytes, 64 * 1024 * 1024);
	assert_int_equal(cfg->agent.log_level, LOG_LVL_ERROR);
	assert_int_equal(cfg->agent.log_format, LOG_FMT_JSON);
	config_free(cfg);

	/* 16 listen lines: the maximum. */
	{
		char text[2048];
		size_t n = 0;

		n += (size_t)snprintf(text, sizeof(text), "[agent]\n");
		for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
			n += (size_t)snprintf(text + n, sizeof(text) - n,
			                      "listen = 127.0.0.1:%d\n", 20000 + i);
		cfg = load_ok(text);
		assert_int_equal(cfg->agent.n_listen, CONFIG_MAX_LISTEN);
		assert_string_equal(cfg->agent.listen[15], "127.0.0.1:20015");
		config_free(cfg);
	}
}

/* Comments: full-line ';' and '#', inline " ;" and " #"; a '#' inside a
 * value (no space before it) is kept. */
static void test_comments(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("# comment\n; comment\n" CA_A
	              "[host a.example]   ; trailing comment\n"
	              "ca = a ; comment\n"
	              "mode = log # comment\n"
	              "allow-identity = spiffe://x/y#frag\n"
	              "   verify-depth = 7\n");
	assert_int_equal(cfg->hosts[0]->mode, MODE_LOG);
	assert_int_equal(cfg->hosts[0]->trust->n_cas, 1);
	assert_int_equal(cfg->hosts[0]->trust->verify_depth, 7);
	assert_string_equal(cfg->hosts[0]->trust->identities[0], "spiffe://x/y#frag");
	config_free(cfg);
}

/* Relative paths resolve against the directory of the config file, not
 * the working directory. */
static void test_relative_paths(void **state)
{
	char sub[512], conf[600], text[1024], want[600], cwd[1024];
	struct config *cfg = NULL;
	char err[CONFIG_ERR_LEN];

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir("/"), 0);
	fx_path(sub, sizeof(sub), "sub");
	snprintf(conf, sizeof(conf), "%s/relative.conf", sub);
	write_text(conf, "[ca a]\nfile = ../ca/a.pem\n[ca c]\nfile = ../ca/c.pem\n"
	           "crl = ../crl/c.der\n[host x.example]\nca = a c\n");
	assert_int_equal(config_load(conf, &cfg, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/../ca/a.pem", sub);
	assert_string_equal(cfg->cas[0]->file, want);
	assert_int_equal(ca_crl_count(cfg->cas[1]), 1);
	config_free(cfg);

	/* config_load_string: the path names it and anchors the files. */
	snprintf(conf, sizeof(conf), "%s/virtual.conf", fx.dir);
	assert_int_equal(config_load_string("[ca a]\nfile = ca/a.pem\n", conf,
	                                    &cfg, err, sizeof(err)), 0);
	fx_path(want, sizeof(want), "ca/a.pem");
	assert_string_equal(cfg->cas[0]->file, want);
	config_free(cfg);

	/* Absolute paths are taken as they are. */
	fx_path(want, sizeof(want), "ca/a.pem");
	snprintf(text, sizeof(text), "[ca a]\nfile = %s\n", want);
	assert_int_equal(config_load_string(text, "/nonexistent/x.conf", &cfg,
	                                    err, sizeof(err)), 0);
	assert_string_equal(cfg->cas[0]->file, want);
	config_free(cfg);

	/* A bare file name: relative to ".", here "/". */
	assert_int_equal(config_load_string("[ca a]\nfile = nope.pem\n",
	                                    "x.conf", &cfg, err, sizeof(err)), -1);
	assert_null(cfg);
	assert_non_null(strstr(err, "x.conf:2: cannot read ./nope.pem: "));
	assert_int_equal(chdir(cwd), 0);
}

static void test_crl_defaults(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(CA_A CA_C
	              "[host a.test]\nca = a\n"
	              "[host c.test]\nca = c\n"
	              "[host ac.test]\nca = a c\n"
	              "[host none.test]\nca = c\ncrl-check = none\n"
	              "[host leaf.test]\nca = c\ncrl-check = leaf\n"
	              "[host chain.test]\nca = c a\ncrl-check = chain\n"
	              "[host nonea.test]\nca = a\ncrl-check = none\n");
	assert_int_equal(cfg->hosts[0]->trust->crl_check, CRL_CHECK_NONE);
	assert_int_equal(cfg->hosts[1]->trust->crl_check, CRL_CHECK_LEAF);
	assert_int_equal(cfg->hosts[2]->trust->crl_check, CRL_CHECK_LEAF);
	assert_int_equal(cfg->hosts[3]->trust->crl_check, CRL_CHECK_NONE);
	assert_int_equal(cfg->hosts[4]->trust->crl_check, CRL_CHECK_LEAF);
	assert_int_equal(cfg->hosts[5]->trust->crl_check, CRL_CHECK_CHAIN);
	assert_int_equal(cfg->hosts[6]->trust->crl_check, CRL_CHECK_NONE);
	/* Defaulted: checked per CA (see test_crl_auto_per_ca); written: strict. */
	assert_int_equal(cfg->hosts[0]->trust->crl_check_auto, 1);
	assert_int_equal(cfg->hosts[2]->trust->crl_check_auto, 1);
	assert_int_equal(cfg->hosts[4]->trust->crl_check_auto, 0);
	assert_int_equal(cfg->hosts[5]->trust->crl_check_auto, 0);
	for (size_t i = 0; i < cfg->n_hosts; i++)
		assert_non_null(cfg->hosts[i]->trust->store);
	config_free(cfg);
}

/* mode = deny needs no ca (like off), and may still name one. */
static void test_mode_deny(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(CA_A "[host *]\nmode = deny\n"
	              "[host d.test]\nca = a\nmode = deny\n");
	assert_int_equal(cfg->hosts[0]->mode, MODE_DENY);
	assert_null(cfg->hosts[0]->trust);     /* no CA: no trust policy */
	assert_ptr_equal(cfg->default_policy, cfg->hosts[0]);
	assert_string_equal(lookup_pattern(cfg, "nobody.example", 0), "*");
	assert_int_equal(cfg->hosts[1]->mode, MODE_DENY);
	assert_int_equal(cfg->hosts[1]->trust->n_cas, 1);
	config_free(cfg);
}

/* Revocation follows the issuer: tenant A's intermediate is listed with
 * its CRL under [ca tenant-a] and alone under [ca tenant-a-issuing] and
 * [ca tenant-a-root] holds only the root; a look-alike CA with the
 * intermediate's name but another key is [ca evil]. */
struct split_pki {
	struct pki_cert *root, *inter, *evil, *revoked, *good;
	time_t crl_next;
};

static void split_pki_make(struct split_pki *k)
{
	struct pki_cert_opts o;
	X509_CRL *crl;
	char p[512];

	memset(&o, 0, sizeof(o));
	o.is_ca = 1;
	/* Long-lived CAs and CRL: no "expires" or "nextUpdate" warning
	 * besides the one this fixture is about. */
	o.not_after = 400L * 86400;
	o.cn = "Tenant A Root";
	k->root = pki_make(&o, NULL);
	o.cn = "Tenant A Issuing";
	k->inter = pki_make(&o, k->root);
	k->evil = pki_make(&o, NULL);
	memset(&o, 0, sizeof(o));
	o.eku = PKI_EKU_CLIENT;
	o.cn = "a-revoked";
	o.serial = 0xa5;
	k->revoked = pki_make(&o, k->inter);
	o.cn = "a-good";
	o.serial = 0xa6;
	k->good = pki_make(&o, k->inter);
	fx_path(p, sizeof(p), "ca/ta.pem");
	pki_write_pem(p, (const struct pki_cert *const[]){ k->root, k->inter }, 2);
	fx_path(p, sizeof(p), "ca/tai.pem");
	pki_write_pem(p, (const struct pki_cert *const[]){ k->inter }, 1);
	fx_path(p, sizeof(p), "ca/tar.pem");
	pki_write_pem(p, (const struct pki_cert *const[]){ k->root }, 1);
	fx_path(p, sizeof(p), "ca/evil.pem");
	pki_write_pem(p, (const struct pki_cert *const[]){ k->evil }, 1);
	crl = pki_crl(k->inter, (uint64_t[]){ 0xa5 }, 1, -60, 3L * 86400);
	k->crl_next = crl_next(crl);
	fx_path(p, sizeof(p), "crl/ta.crl");
	pki_write_crl_pem(p, crl);
	X509_CRL_free(crl);
}

static void split_pki_free(struct split_pki *k)
{
	pki_free(k->root);
	pki_free(k->inter);
	pki_free(k->evil);
	pki_free(k->revoked);
	pki_free(k->good);
}

static enum mtls_result split_verify(const struct config *cfg,
                                     const char *host,
                                     const struct pki_cert *leaf,
                                     const struct pki_cert *inter)
{
	const struct host_policy *h = config_lookup(cfg, host, strlen(host));
	uint8_t *der, *chain = NULL;
	size_t len, chain_len = 0;
	struct trust_result v;

	assert_non_null(h);
	assert_non_null(h->trust);
	der = pki_der(leaf, &len);
	if (inter != NULL)
		chain = pki_chain_der((const struct pki_cert *const[]){ inter }, 1,
		                      &chain_len);
	memset(&v, 0, sizeof(v));
	trust_verify(h->trust, der, len, chain, chain_len, 0, &v);
	free(der);
	free(chain);
	return v.result;
}

static const char split_config[] =
	"[ca tenant-a]\n"                /* 1 */
	"file = ca/ta.pem\n"
	"crl = crl/ta.crl\n"
	"[ca tenant-a-issuing]\n"        /* 4 */
	"file = ca/tai.pem\n"
	"[ca tenant-a-root]\n"           /* 6 */
	"file = ca/tar.pem\n"
	"[ca evil]\n"                    /* 8 */
	"file = ca/evil.pem\n"
	"[host a.test]\nca = tenant-a\n"
	"[host ai.test]\nca = tenant-a-issuing\n"
	"[host ar.test]\nca = tenant-a-root\n"
	"[host evil.test]\nca = evil\n"
	"[host strict.test]\nca = tenant-a-issuing\ncrl-check = leaf\n";

static void test_crl_follows_issuer(void **state)
{
	struct split_pki k;
	struct config *cfg;
	char want[1024];

	(void)state;
	split_pki_make(&k);
	cfg = load_ok(split_config);
	/* The CRL is listed once, under [ca tenant-a]; it applies in both
	 * sections holding its issuer, and under the root that issued the
	 * intermediate (the trust policies' effective CRL sets share the one
	 * object); not under the look-alike. */
	assert_int_equal(ca_crl_count(cfg->cas[0]), 1);
	assert_int_equal(ca_crl_count(cfg->cas[1]), 0);
	assert_int_equal(ca_crl_count(cfg->cas[2]), 0);
	assert_int_equal(ca_crl_count(cfg->cas[3]), 0);
	assert_int_equal(crl_count(ca_crl_at(cfg->cas[0], 0)), 1);
	assert_int_equal(cfg->hosts[0]->trust->n_crls, 1);       /* a.test */
	assert_ptr_equal(cfg->hosts[0]->trust->crls[0], ca_crl_at(cfg->cas[0], 0));
	assert_int_equal(cfg->hosts[1]->trust->n_crls, 1);       /* ai.test */
	assert_ptr_equal(cfg->hosts[1]->trust->crls[0], ca_crl_at(cfg->cas[0], 0));
	assert_int_equal(cfg->hosts[1]->trust->crl_next_update, k.crl_next);
	assert_int_equal(cfg->hosts[2]->trust->n_crls, 1);       /* ar.test */
	assert_ptr_equal(cfg->hosts[2]->trust->crls[0], ca_crl_at(cfg->cas[0], 0));
	assert_int_equal(cfg->hosts[3]->trust->n_crls, 0);       /* evil.test */
	assert_int_equal(cfg->hosts[3]->trust->crl_next_update, 0);
	assert_int_equal(cfg->hosts[4]->trust->n_crls, 1);       /* strict.test */
	/* The default crl-check sees the shared CRL. */
	assert_int_equal(cfg->hosts[1]->trust->crl_check, CRL_CHECK_LEAF);
	assert_int_equal(cfg->hosts[1]->trust->crl_check_auto, 1);
	assert_int_equal(cfg->hosts[3]->trust->crl_check, CRL_CHECK_NONE);
	assert_int_equal(cfg->hosts[4]->trust->crl_check, CRL_CHECK_LEAF);

	/* Revoked through every section, whatever the client sends. */
	assert_int_equal(split_verify(cfg, "a.test", k.revoked, NULL),
	                 RESULT_REVOKED);
	assert_int_equal(split_verify(cfg, "ai.test", k.revoked, NULL),
	                 RESULT_REVOKED);
	assert_int_equal(split_verify(cfg, "ai.test", k.revoked, k.inter),
	                 RESULT_REVOKED);
	assert_int_equal(split_verify(cfg, "ar.test", k.revoked, k.inter),
	                 RESULT_REVOKED);
	assert_int_equal(split_verify(cfg, "strict.test", k.revoked, NULL),
	                 RESULT_REVOKED);
	/* Not revoked: ok through every section. */
	assert_int_equal(split_verify(cfg, "a.test", k.good, NULL), RESULT_OK);
	assert_int_equal(split_verify(cfg, "ai.test", k.good, NULL), RESULT_OK);
	assert_int_equal(split_verify(cfg, "ar.test", k.good, k.inter),
	                 RESULT_OK);
	assert_int_equal(split_verify(cfg, "strict.test", k.good, NULL),
	                 RESULT_OK);
	/* The look-alike never trusted them. */
	assert_int_equal(split_verify(cfg, "evil.test", k.good, NULL),
	                 RESULT_UNTRUSTED);

	/* --check: one warning, for the intermediate in two sections. */
	assert_int_equal(cfg->n_warnings, 1);
	snprintf(want, sizeof(want), "%s:4: warning: CA certificate "
	         "\"CN=Tenant A Issuing\" is in [ca tenant-a] (line 1) and "
	         "[ca tenant-a-issuing] with different CRLs; the CRLs it issued "
	         "now apply through both", fx.conf);
	assert_string_equal(cfg->warnings[0], want);
	config_free(cfg);

	/* The same CRL listed in both sections: nothing to warn about. */
	cfg = load_ok("[ca tenant-a]\nfile = ca/ta.pem\ncrl = crl/ta.crl\n"
	              "[ca tenant-a-issuing]\nfile = ca/tai.pem\n"
	              "crl = crl/ta.crl\n"
	              "[host ai.test]\nca = tenant-a-issuing\n");
	assert_int_equal(cfg->n_warnings, 0);
	assert_int_equal(split_verify(cfg, "ai.test", k.revoked, NULL),
	                 RESULT_REVOKED);
	config_free(cfg);
	/* No CRL anywhere: no warning, no check. */
	cfg = load_ok("[ca tenant-a]\nfile = ca/ta.pem\n"
	              "[ca tenant-a-issuing]\nfile = ca/tai.pem\n"
	              "[host ai.test]\nca = tenant-a-issuing\n");
	assert_int_equal(cfg->n_warnings, 0);
	assert_int_equal(cfg->hosts[0]->trust->crl_check, CRL_CHECK_NONE);
	assert_int_equal(split_verify(cfg, "ai.test", k.revoked, NULL),
	                 RESULT_OK);
	config_free(cfg);
	split_pki_free(&k);
}

/* ---- errors ------------------------------------------------------------ */

struct err_case {
	const char *text;
	int line;
	const char *msg;      /* must appear after the "FILE:LINE: " prefix */
};

static const struct err_case err_cases[] = {
	/* sections and keys */
	{ "[agent]\nbogus = 1\n", 2, "unknown key \"bogus\" in [agent]" },
	{ CA_A "[host x.test]\nca = a\ncolour = blue\n", 5,
	  "unknown key \"colour\" in [host x.test]" },
	{ "[ca a]\nfile = ca/a.pem\nkey = x\n", 3, "unknown key \"key\" in [ca a]" },
	{ "\n[nope]\nx = 1\n", 2, "unknown section [nope]" },
	{ "[agent]\n[nope x]\n", 2, "unknown section [nope x]" },  /* no keys */
	{ "listen = 127.0.0.1:1\n", 1, "outside of any section" },
	{ "[agent\nthreads = 1\n", 1, "missing ']'" },
	{ "[agent] junk\n", 1, "unexpected text after section header" },
	{ "[]\n", 1, "empty section name" },
	{ "[agent x]\n", 1, "[agent] takes no argument" },
	{ "[agent]\n[agent]\n", 2, "duplicate [agent] section" },
	{ "[ca]\n", 1, "expected [ca NAME]" },
	{ "[ca a b]\n", 1, "expected [ca NAME]" },
	{ "[host]\n", 1, "expected [host PATTERN]" },
	{ "[host a.test b.test]\n", 1, "expected [host PATTERN]" },
	{ "[agent]\nthreads\n", 2, "syntax error" },
	/* An indented line does not continue the previous value. */
	{ CA_A CA_B "[host x.test]\nca = a\n  b\n", 7, "syntax error" },
	{ "[agent]\nthreads = 1\nthreads = 2\n", 3, "duplicate key \"threads\"" },
	{ CA_A "[host x.test]\nca = a\nmode = log\nmode = off\n", 6,
	  "duplicate key \"mode\"" },
	/* CAs */
	{ CA_A "[host x.test]\nca = a\nca = a zz\n", 5, "unknown CA \"zz\"" },
	{ "[host x.test]\nca = later\n" CA_A "[ca later]\n", 5,
	  "[ca later] has no file" },
	{ "[host x.test]\nca = nope\n" CA_A, 2, "unknown CA \"nope\"" },
	{ "[ca a]\n\nfile = missing.pem\n", 3, "missing.pem: No such file or directory" },
	{ "[ca a]\nfile = ca\n", 2, "cannot read" },
	{ "[ca a]\nfile = empty.pem\n", 2, "empty.pem: no PEM certificate found" },
	{ "[ca a]\nfile = ca/a.pem\nfile = ca/b.pem\n", 3, "duplicate key \"file\"" },
	{ "[ca a]\nfile =\n", 2, "empty file" },
	{ "[ca bad]\nfile = notca.pem\n", 2, "notca.pem: certificate \"CN=leaf.example\" is not a CA" },
	{ "[ca a]\nfile = ca/a.pem\n\n[ca a]\nfile = ca/b.pem\n", 4,
	  "duplicate [ca a] (first at line 1)" },
	{ "[ca a/b]\n", 1, "bad CA name" },
	{ CA_C "crl = garbage.crl\n", 5, "garbage.crl: not a PEM or DER CRL" },
	{ CA_A "crl = crl/none.crl\n", 3, "none.crl: No such file or directory" },
	{ CA_A "crl =\n", 3, "empty crl" },
	/* hosts */
	{ CA_A "[host api.example.com]\nca = a\n[host API.example.com.]\nca = a\n",
	  5, "duplicate host \"API.example.com.\" (same as \"api.example.com\" at line 3)" },
	{ CA_A "[host *.Example.com]\nca = a\n[host *.example.com.]\nca = a\n",
	  5, "duplicate host" },
	{ CA_A "[host *]\nca = a\n[host *]\nca = a\n", 5, "duplicate [host *]" },
	{ CA_A "[host api.*.example.com]\nca = a\n", 3, "'*' is only allowed" },
	{ CA_A "[host a*.example.com]\nca = a\n", 3, "'*' is only allowed" },
	{ CA_A "[host *.*.example.com]\nca = a\n", 3, "bad host pattern" },
	{ CA_A "[host *.]\nca = a\n", 3, "bad host pattern" },
	{ CA_A "[host **]\nca = a\n", 3, "'*' is only allowed" },
	{ CA_A "[host **.]\nca = a\n", 3,
	  "bad host pattern \"**.\" (a wildcard is \"**.\" followed by a host "
	  "name)" },
	{ CA_A "[host ***.x]\nca = a\n", 3, "'*' is only allowed" },
	{ CA_A "[host a.**.b]\nca = a\n", 3, "'*' is only allowed" },
	{ CA_A "[host **x.example]\nca = a\n", 3, "'*' is only allowed" },
	{ CA_A "[host **.*.example]\nca = a\n", 3, "bad host pattern" },
	{ CA_A "[host **.**.example]\nca = a\n", 3, "bad host pattern" },
	{ CA_A "[host **.a*.example]\nca = a\n", 3, "bad host pattern" },
	{ CA_A "[host **..example]\nca = a\n", 3, "bad host pattern" },
	{ CA_A "[host **.::1]\nca = a\n", 3, "bad host pattern" },
	{ CA_A "[host **.example.com]\nca = a\n[host **.Example.COM.]\nca = a\n",
	  5, "duplicate host \"**.Example.COM.\" (same as \"**.example.com\" "
	  "at line 3)" },
	{ CA_A "[host **.example.com]\nmode = enforce\n", 3,
	  "[host **.example.com] has no ca" },
	{ CA_A "[host a..b]\nca = a\n", 3, "bad host name" },
	{ CA_A "[host a.test:443]\nca = a\n", 3, "bad host name" },
	{ CA_A "\n[host api.example.com]\nmode = enforce\n", 4, "[host api.example.com] has no ca" },
	{ CA_A "[host x.test]\n", 3, "[host x.test] has no ca" },
	{ CA_A "[host x.test]\nmode = optional\n", 3, "has no ca" },
	{ CA_A "[host x.test]\nca = a\nmode = strict\n", 5, "bad mode \"strict\"" },
	{ CA_A "[host x.test]\nca = a\nmode = Deny\n", 5,
	  "bad mode \"Deny\" (enforce, optional, log, off, deny)" },
	{ CA_A "[host x.test]\nmode = log\n", 3,
	  "[host x.test] has no ca (required unless mode = off or deny)" },
	{ CA_A "[host x.test]\nca = a\nca =\n", 5, "empty ca list" },
	{ CA_A "[host x.test]\nca = a\nverify-depth = 0\n", 5, "bad verify-depth" },
	{ CA_A "[host x.test]\nca = a\nverify-depth = 33\n", 5, "bad verify-depth" },
	{ CA_A "[host x.test]\nca = a\npurpose = server\n", 5, "bad purpose" },
	{ CA_A "[host x.test]\nca = a\ncrl-check = all\n", 5, "bad crl-check" },
	{ CA_A "[host x.test]\nca = a\ncrl-check = default\n", 5, "bad crl-check" },
	{ CA_A "[host x.test]\nca = a\ncrl-check = leaf\n", 5,
	  "crl-check = leaf but none of the host's CAs has a crl" },
	{ CA_A "[host x.test]\nca = a\n\ncrl-check = chain\n", 6, "crl-check = chain" },
	{ CA_A "[host x.test]\nca = a\nallow-identity =\n", 5, "bad allow-identity" },
	/* pins */
	{ CA_A "[host x.test]\nca = a\npin-sha256 = abcd\n", 5, "bad pin-sha256" },
	{ CA_A "[host x.test]\nca = a\npin-sha256 = "
	  "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeZZ\n",
	  5, "bad pin-sha256" },
	{ CA_A "[host x.test]\nca = a\npin-sha256 = "
	  "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00\n",
	  5, "bad pin-sha256" },
	{ CA_A "[host x.test]\nca = a\npin-sha256 = "
	  "00112233445566778899aabbccddeeff00112233445566778899aabbccddeef\n",
	  5, "bad pin-sha256" },
	/* [agent] values */
	{ "[agent]\nidle-timeout = 30x\n", 2, "bad idle-timeout \"30x\"" },
	{ "[agent]\nidle-timeout = 0\n", 2, "bad idle-timeout" },
	{ "[agent]\nidle-timeout = 0s\n", 2, "bad idle-timeout" },
	{ "[agent]\nidle-timeout = -1s\n", 2, "bad idle-timeout" },
	{ "[agent]\nidle-timeout = 5 s\n", 2, "bad idle-timeout" },
	{ "[agent]\nidle-timeout = 5000000h\n", 2, "bad idle-timeout" },
	{ "[agent]\ncache-ttl = 0\n", 2, "bad cache-ttl" },
	{ "[agent]\ncache-ttl = s\n", 2, "bad cache-ttl" },
	{ "[agent]\nmemo-ttl = 3600001\n", 2, "bad memo-ttl" },
	{ "[agent]\nmemo-ttl = 1s\nmemo-ttl = 2s\n", 3, "duplicate key \"memo-ttl\"" },
	{ "[agent]\nmemo-ttl = -1\n", 2, "bad memo-ttl" },
	{ "[agent]\nthreads = 65\n", 2, "bad threads" },
	{ "[agent]\nthreads = -1\n", 2, "bad threads" },
	{ "[agent]\nthreads = 2x\n", 2, "bad threads" },
	{ "[agent]\nthreads =\n", 2, "bad threads" },
	{ "[agent]\nmax-frame-size = 255\n", 2, "bad max-frame-size" },
	{ "[agent]\nmax-frame-size = 1048577\n", 2, "bad max-frame-size" },
	{ "[agent]\nmax-connections = 0\n", 2, "bad max-connections" },
	{ "[agent]\nmax-output = 3k\n", 2, "bad max-output" },
	{ "[agent]\nmax-output = 65m\n", 2, "bad max-output" },
	{ "[agent]\nmax-output = 1g\n", 2, "bad max-output" },
	{ "[agent]\ncache-entries = 10000001\n", 2, "bad cache-entries" },
	{ "[agent]\nlog-level = verbose\n", 2, "bad log-level \"verbose\"" },
	{ "[agent]\nlog-format = JSON\n", 2, "bad log-format \"JSON\" (text, json)" },
	{ "[agent]\nlog-format = text\nlog-format = json\n", 3,
	  "duplicate key \"log-format\"" },
	/* [store] */
	{ "[store]\nbackend = consul\n", 2, "bad backend \"consul\" (files or etcd)" },
	{ "[store]\nbackend = etcd\n", 1, "[store]: backend etcd needs endpoints" },
	{ "[store]\nendpoints = ftp://x:1\n", 2, "bad endpoint \"ftp://x:1\"" },
	{ "[store]\nendpoints = http://\n", 2, "bad endpoint" },
	{ "[store]\ntimeout = 0\n", 2, "bad timeout" },
	{ "[store]\ntimeout = 11m\n", 2, "bad timeout" },
	{ "[store]\nprefix = x/\n", 2, "bad prefix" },
	{ "[store]\nfoo = 1\n", 2, "unknown key \"foo\" in [store]" },
	{ "[store]\n[store]\n", 2, "duplicate [store] section" },
	{ "[store x]\n", 1, "[store] takes no argument" },
	{ "[store]\nca-file =\n", 2, "empty ca-file" },
	{ "\n[store]\nbackend = etcd\nendpoints = http://127.0.0.1:2379\nuser = u\n", 2,
	  "user and password-file go together" },
	{ "[store]\nbackend = etcd\nendpoints = http://127.0.0.1:2379\ncert-file = c\n", 1,
	  "cert-file and key-file go together" },
	/* listen syntax */
	{ "[agent]\nlisten = 127.0.0.1\n", 2, "bad listen address \"127.0.0.1\"" },
	{ "[agent]\nlisten = 127.0.0.1:0\n", 2, "PORT must be 1..65535" },
	{ "[agent]\nlisten = 127.0.0.1:65536\n", 2, "PORT must be 1..65535" },
	{ "[agent]\nlisten = 127.0.0.1:http\n", 2, "PORT must be 1..65535" },
	{ "[agent]\nlisten = :12345\n", 2, "missing host" },
	{ "[agent]\nlisten = ::1:12345\n", 2, "need brackets" },
	{ "[agent]\nlisten = [::1]\n", 2, "expected [IPV6]:PORT" },
	{ "[agent]\nlisten = [::1]:0\n", 2, "expected [IPV6]:PORT" },
	{ "[agent]\nlisten = [zz::1]:80\n", 2, "bad IPv6 address" },
	{ "[agent]\nlisten = [::1:80\n", 2, "missing ']'" },
	{ "[agent]\nlisten = unix:run/x.sock\n", 2, "must be absolute" },
	{ "[agent]\nlisten = bad_host:80\n", 2, "bad character in host" },
	{ "[agent]\nlisten = *x:80\n", 2, "bad character in host" },
	{ "[agent]\nlisten = *:0\n", 2, "PORT must be 1..65535" },
	{ "[agent]\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2\nlisten = 127.0.0.1:3\n"
	  "listen = 127.0.0.1:4\nlisten = 127.0.0.1:5\nlisten = 127.0.0.1:6\n"
	  "listen = 127.0.0.1:7\nlisten = 127.0.0.1:8\nlisten = 127.0.0.1:9\n"
	  "listen = 127.0.0.1:10\nlisten = 127.0.0.1:11\nlisten = 127.0.0.1:12\n"
	  "listen = 127.0.0.1:13\nlisten = 127.0.0.1:14\nlisten = 127.0.0.1:15\n"
	  "listen = 127.0.0.1:16\nlisten = 127.0.0.1:17\n", 18,
	  "too many listen addresses" },
};

static void check_error(const char *text, int line, const char *msg)
{
	struct config *cfg = (struct config *)0x1;
	char err[CONFIG_ERR_LEN];
	char prefix[600];

	memset(err, 0, sizeof(err));
	if (load_text(text, &cfg, err) != -1)
		fail_msg("config loaded, want error \"%s\"\n--- config ---\n%s",
		         msg, text);
	assert_null(cfg);
	snprintf(prefix, sizeof(prefix), "%s:%d: ", fx.conf, line);
	if (strncmp(err, prefix, strlen(prefix)) != 0 ||
	    strstr(err + strlen(prefix), msg) == NULL)
		fail_msg("got  \"%s\"\nwant \"%s%s...\"\n--- config ---\n%s", err,
		         prefix, msg, text);
}

/* [store]: every key, paths resolved against the file's directory. */
static void test_store_section(void **state)
{
	struct config *cfg = NULL;
	char err[CONFIG_ERR_LEN] = "";

	(void)state;
	assert_int_equal(load_text("[store]\nbackend = etcd\n"
	                           "endpoints = http://127.0.0.1:2379 https://10.0.0.2:2379\n"
	                           "endpoints = http://[::1]:2379\nprefix = /p/\n"
	                           "timeout = 500ms\nca-file = ca.pem\ncert-file = /c.pem\n"
	                           "key-file = k.pem\nuser = agent\npassword-file = pw\n",
	                           &cfg, err), 0);
	assert_int_equal(cfg->store.backend, STORE_ETCD);
	assert_int_equal(cfg->store.n_endpoints, 3);
	assert_string_equal(cfg->store.endpoints[1], "https://10.0.0.2:2379");
	assert_string_equal(cfg->store.endpoints[2], "http://[::1]:2379");
	assert_string_equal(store_settings_prefix(&cfg->store), "/p/");
	assert_int_equal(store_settings_timeout(&cfg->store), 500);
	assert_string_equal(cfg->store.cert_file, "/c.pem");
	assert_non_null(strstr(cfg->store.ca_file, "/ca.pem"));
	assert_true(cfg->store.ca_file[0] == '/');
	assert_string_equal(cfg->store.user, "agent");
	config_free(cfg);
	cfg = NULL;
	/* The defaults: files, and the etcd defaults when asked for etcd. */
	assert_int_equal(load_text("[agent]\n", &cfg, err), 0);
	assert_int_equal(cfg->store.backend, STORE_FILES);
	assert_string_equal(store_settings_prefix(&cfg->store), "/mtls-spoa/");
	assert_int_equal(store_settings_timeout(&cfg->store), 2000);
	config_free(cfg);
}

static void test_errors_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++)
		check_error(err_cases[i].text, err_cases[i].line, err_cases[i].msg);
}

static void test_error_line_too_long(void **state)
{
	char *text;
	size_t n = 8000;

	(void)state;
	text = malloc(n + 64);
	assert_non_null(text);
	strcpy(text, "[agent]\n\nlisten = ");
	memset(text + strlen(text), 'a', n);
	text[18 + n] = '\0';
	text[18 + n - 1] = '\n';
	assert_int_equal(strlen("[agent]\n\nlisten = "), 18);
	check_error(text, 3, "line too long");
	free(text);
}

static void test_error_nul_byte(void **state)
{
	static const char text[] = "[agent]\nthreads = 1\0junk\n";
	FILE *f;
	struct config *cfg = NULL;
	char err[CONFIG_ERR_LEN];
	char want[600];

	(void)state;
	f = fopen(fx.conf, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, sizeof(text) - 1, f), sizeof(text) - 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(config_load(fx.conf, &cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: NUL byte in line", fx.conf);
	assert_string_equal(err, want);
}

static void test_error_missing_config(void **state)
{
	struct config *cfg = NULL;
	char err[CONFIG_ERR_LEN];
	char path[600];

	(void)state;
	fx_path(path, sizeof(path), "does-not-exist.conf");
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -1);
	assert_null(cfg);
	assert_non_null(strstr(err, "does-not-exist.conf:0: cannot read: "
	                            "No such file or directory"));
}

/* The error line of a config_load_string names the given path. */
static void test_error_string_path(void **state)
{
	struct config *cfg = NULL;
	char err[CONFIG_ERR_LEN];

	(void)state;
	assert_int_equal(config_load_string("[agent]\n\n\nthreads = x\n",
	                                    "/etc/mtls-spoa/test.conf", &cfg, err,
	                                    sizeof(err)), -1);
	assert_string_equal(err, "/etc/mtls-spoa/test.conf:4: bad threads \"x\" "
	                         "(0..64, 0 = one per CPU)");
	/* A small error buffer truncates, never overflows. */
	{
		char small[12];

		memset(small, 'Z', sizeof(small));
		assert_int_equal(config_load_string("[x]\n", "p.conf", &cfg,
		                                    small, sizeof(small)), -1);
		assert_int_equal(small[sizeof(small) - 1], '\0');
		assert_string_equal(small, "p.conf:1: u");
	}
}

/* ---- small parsers ----------------------------------------------------- */

struct dur_case {
	const char *s;
	int ok;
	unsigned int ms;
};

static const struct dur_case dur_cases[] = {
	{ "500ms", 1, 500 }, { "30s", 1, 30000 }, { "2m", 1, 120000 },
	{ "1h", 1, 3600000 }, { "250", 1, 250 }, { "0", 1, 0 },
	{ "0ms", 1, 0 }, { "4294967295", 1, 4294967295u },
	{ "4294967296", 0, 0 }, { "1193h", 1, 1193u * 3600000u },
	{ "1194h", 0, 0 }, { "", 0, 0 }, { "s", 0, 0 }, { "10x", 0, 0 },
	{ "10 s", 0, 0 }, { " 10s", 0, 0 }, { "-1", 0, 0 }, { "1.5s", 0, 0 },
	{ "10S", 0, 0 }, { "10sec", 0, 0 }, { "99999999999999999999", 0, 0 },
};

static void test_parse_duration(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(dur_cases) / sizeof(dur_cases[0]); i++) {
		unsigned int ms = 12345;
		int rc = config_parse_duration(dur_cases[i].s, &ms);

		if (dur_cases[i].ok) {
			if (rc != 0 || ms != dur_cases[i].ms)
				fail_msg("duration \"%s\": rc %d ms %u, want %u",
				         dur_cases[i].s, rc, ms, dur_cases[i].ms);
		} else if (rc != -1 || ms != 12345) {
			fail_msg("duration \"%s\": accepted (%u)", dur_cases[i].s, ms);
		}
	}
}

static void test_strings(void **state)
{
	int lvl = -1;

	(void)state;
	assert_string_equal(config_mode_str(MODE_ENFORCE), "enforce");
	assert_string_equal(config_mode_str(MODE_OPTIONAL), "optional");
	assert_string_equal(config_mode_str(MODE_LOG), "log");
	assert_string_equal(config_mode_str(MODE_OFF), "off");
	assert_string_equal(config_mode_str(MODE_DENY), "deny");
	assert_string_equal(config_mode_str(MODE_COUNT), "unknown");
	assert_string_equal(config_log_level_str(LOG_LVL_ERROR), "error");
	assert_string_equal(config_log_level_str(LOG_LVL_WARNING), "warning");
	assert_string_equal(config_log_level_str(LOG_LVL_INFO), "info");
	assert_string_equal(config_log_level_str(LOG_LVL_DEBUG), "debug");
	assert_string_equal(config_log_level_str(-1), "unknown");
	assert_string_equal(config_log_level_str(LOG_LVL_COUNT), "unknown");
	assert_int_equal(config_parse_log_level("warning", &lvl), 0);
	assert_int_equal(lvl, LOG_LVL_WARNING);
	assert_int_equal(config_parse_log_level("debug", &lvl), 0);
	assert_int_equal(lvl, LOG_LVL_DEBUG);
	assert_int_equal(config_parse_log_level("warn", &lvl), -1);
	assert_int_equal(config_parse_log_level("INFO", &lvl), -1);
	assert_int_equal(config_parse_log_level("", &lvl), -1);
	assert_int_equal(lvl, LOG_LVL_DEBUG);
}

/* Reloads build only what changed. Four hosts over three trust policies
 * (one.test and three.test ask for the same thing) and two CAs. */
static const char reload_config[] =
	"[ca r1]\nfile = ca/r1.pem\n"
	"[ca r2]\nfile = ca/r2.pem\n"
	"[host one.test]\nca = r1\n"
	"[host two.test]\nca = r2\n"
	"[host three.test]\nca = r1\nmode = log\n"
	"[host both.test]\nca = r1 r2\n";

static struct config *reload_ok(const char *text, const struct config *prev)
{
	struct config *cfg = NULL;
	char err[CONFIG_ERR_LEN];

	err[0] = '\0';
	if (config_reload_string(text, fx.conf, prev, &cfg, err, sizeof(err)) != 0)
		fail_msg("reload failed: %s\n--- config ---\n%s", err, text);
	assert_non_null(cfg);
	return cfg;
}

static void assert_stats(const struct config *cfg, size_t cas_built,
                         size_t trusts_built, size_t hosts_built)
{
	const struct config_stats *st = &cfg->stats;

	assert_int_equal(st->cas_built, cas_built);
	assert_int_equal(st->cas_reused, cfg->n_cas - cas_built);
	assert_int_equal(st->trusts_built, trusts_built);
	assert_int_equal(st->trusts_reused, cfg->n_trusts - trusts_built);
	assert_int_equal(st->hosts_built, hosts_built);
	assert_int_equal(st->hosts_reused, cfg->n_hosts - hosts_built);
}

static void test_reload_reuses_what_did_not_change(void **state)
{
	struct config *g1, *g2, *g3, *g4;
	char p[512], mode_changed[sizeof(reload_config) + 16];
	const char *at;
	size_t i;

	(void)state;
	fx_path(p, sizeof(p), "ca/r1.pem");
	pki_write_pem(p, (const struct pki_cert *const[]){ fx.ca_a }, 1);
	fx_path(p, sizeof(p), "ca/r2.pem");
	pki_write_pem(p, (const struct pki_cert *const[]){ fx.ca_b }, 1);
	g1 = reload_ok(reload_config, NULL);
	assert_int_equal(g1->n_cas, 2);
	assert_int_equal(g1->n_hosts, 4);
	assert_int_equal(g1->n_trusts, 3);
	assert_ptr_equal(g1->hosts[0]->trust, g1->hosts[2]->trust);
	assert_stats(g1, 2, 3, 4);

	/* Nothing changed: everything reused, trust policy ids kept (so the
	 * cache keeps answering, see test_handler). */
	g2 = reload_ok(reload_config, g1);
	assert_stats(g2, 0, 0, 0);
	for (i = 0; i < g2->n_cas; i++)
		assert_ptr_equal(g2->cas[i], g1->cas[i]);
	for (i = 0; i < g2->n_trusts; i++) {
		assert_ptr_equal(g2->trusts[i], g1->trusts[i]);
		assert_int_equal(g2->trusts[i]->id, g1->trusts[i]->id);
	}
	for (i = 0; i < g2->n_hosts; i++)
		assert_ptr_equal(g2->hosts[i], g1->hosts[i]);

	/* One host's mode: that host alone is rebuilt, over the same trust
	 * policy. */
	at = strstr(reload_config, "mode = log");
	assert_non_null(at);
	snprintf(mode_changed, sizeof(mode_changed), "%.*smode = optional%s",
	         (int)(at - reload_config), reload_config, at + strlen("mode = log"));
	g3 = reload_ok(mode_changed, g2);
	assert_stats(g3, 0, 0, 1);
	assert_int_equal(g3->hosts[2]->mode, MODE_OPTIONAL);
	assert_true(g3->hosts[2] != g2->hosts[2]);
	assert_ptr_equal(g3->hosts[2]->trust, g2->hosts[2]->trust);
	assert_ptr_equal(g3->hosts[0], g2->hosts[0]);
	assert_ptr_equal(g3->hosts[1], g2->hosts[1]);
	assert_ptr_equal(g3->hosts[3], g2->hosts[3]);

	/* New bytes in one CA file: that CA is rebuilt, and the trust
	 * policies over it (two.test's and both.test's) with their hosts;
	 * r1 and the policy of one.test and three.test are kept. */
	fx_path(p, sizeof(p), "ca/r2.pem");
	pki_write_pem(p, (const struct pki_cert *const[]){ fx.ca_c }, 1);
	g4 = reload_ok(reload_config, g3);
	assert_stats(g4, 1, 2, 3);
	assert_ptr_equal(g4->cas[0], g3->cas[0]);
	assert_true(g4->cas[1] != g3->cas[1]);
	assert_int_equal(X509_cmp(sk_X509_value(g4->cas[1]->certs, 0), fx.ca_c->x509), 0);
	assert_ptr_equal(g4->hosts[0]->trust, g3->hosts[0]->trust);
	assert_int_equal(g4->hosts[0]->trust->id, g1->hosts[0]->trust->id);
	assert_true(g4->hosts[1]->trust != g3->hosts[1]->trust);
	assert_true(g4->hosts[1]->trust->id != g3->hosts[1]->trust->id);
	assert_true(g4->hosts[3]->trust != g3->hosts[3]->trust);
	/* three.test goes back to log: rebuilt (it differs from g3's). */
	assert_int_equal(g4->hosts[2]->mode, MODE_LOG);

	config_free(g4);
	config_free(g3);
	config_free(g2);
	config_free(g1);
}

/* A self-signed CA certificate valid from an hour ago for `not_after`
 * seconds from now. */
static struct pki_cert *make_root(const char *cn, long not_before, long not_after)
{
	return pki_make(&(struct pki_cert_opts){ .cn = cn, .is_ca = 1,
	                .not_before = not_before, .not_after = not_after }, NULL);
}

/* 1 if one of cfg's warnings contains `what`. */
static int has_warning(const struct config *cfg, const char *what)
{
	for (size_t i = 0; i < cfg->n_warnings; i++)
		if (strstr(cfg->warnings[i], what) != NULL)
			return 1;
	return 0;
}

/* Load a [ca w] of CA `ca`, with a CRL of it valid until now +
 * `crl_next` seconds when crl_next != 0. */
static struct config *load_ca_with_crl(const struct pki_cert *ca, long crl_next)
{
	char p[512];

	fx_path(p, sizeof(p), "ca/w.pem");
	pki_write_pem(p, (const struct pki_cert *const[]){ ca }, 1);
	if (crl_next != 0) {
		X509_CRL *crl = pki_crl(ca, NULL, 0, crl_next < 0 ? crl_next - 3600 : -60,
		                        crl_next);

		fx_path(p, sizeof(p), "crl/w.crl");
		pki_write_crl_pem(p, crl);
		X509_CRL_free(crl);
		return load_ok("[ca w]\nfile = ca/w.pem\ncrl = crl/w.crl\n"
		               "[host w.test]\nca = w\n");
	}
	return load_ok("[ca w]\nfile = ca/w.pem\n[host w.test]\nca = w\n");
}

/* Things that load but need the operator: a CRL past or within a day of
 * its nextUpdate, a CA certificate expired or expiring within 30 days. */
static void test_load_warnings(void **state)
{
	struct pki_cert *lasting = make_root("Lasting", 0, 400L * 86400);
	struct pki_cert *soon = make_root("Soon", 0, 10L * 86400);
	struct pki_cert *expired = make_root("Expired", -7200, -3600);
	struct config *cfg;

	(void)state;

	/* Nothing to say about a lasting CA and a CRL good for days. */
	cfg = load_ca_with_crl(lasting, 3L * 86400);
	assert_int_equal(cfg->n_warnings, 0);
	config_free(cfg);

	cfg = load_ca_with_crl(lasting, -60);
	assert_true(has_warning(cfg, "past its nextUpdate"));
	assert_int_equal(cfg->n_warnings, 1);
	config_free(cfg);

	cfg = load_ca_with_crl(lasting, 3600);
	assert_true(has_warning(cfg, "reaches its nextUpdate"));
	assert_int_equal(cfg->n_warnings, 1);
	config_free(cfg);

	cfg = load_ca_with_crl(soon, 0);
	assert_true(has_warning(cfg, "expires"));
	assert_true(has_warning(cfg, "\"CN=Soon\""));
	assert_int_equal(cfg->n_warnings, 1);
	config_free(cfg);

	cfg = load_ca_with_crl(expired, 0);
	assert_true(has_warning(cfg, "expired"));
	assert_true(has_warning(cfg, "\"CN=Expired\""));
	assert_int_equal(cfg->n_warnings, 1);
	config_free(cfg);

	pki_free(lasting);
	pki_free(soon);
	pki_free(expired);
}

/* A CRL that reaches its nextUpdate while loaded turns the answer into
 * crl_error at that second, without a reload. */
static void test_crl_next_update_passes_while_loaded(void **state)
{
	struct pki_cert *ca = make_root("CRL Clock Root", 0, 400L * 86400);
	struct pki_cert *leaf = pki_make(&(struct pki_cert_opts){ .cn = "clock-leaf",
	                                 .eku = PKI_EKU_CLIENT,
	                                 .not_after = 10L * 86400 }, ca);
	struct config *cfg;
	struct trust_result r;
	uint8_t *der;
	size_t len;
	time_t next;

	(void)state;
	cfg = load_ca_with_crl(ca, 2L * 86400);
	next = cfg->hosts[0]->trust->crl_next_update;
	assert_int_equal(next, crl_next_update(ca_crl_at(cfg->cas[0], 0)));
	assert_int_equal(cfg->hosts[0]->trust->crl_check, CRL_CHECK_LEAF);
	der = pki_der(leaf, &len);

	trust_verify(cfg->hosts[0]->trust, der, len, NULL, 0, 0, &r);
	assert_int_equal(r.result, RESULT_OK);
	assert_int_equal(r.valid_until, next);
	trust_verify(cfg->hosts[0]->trust, der, len, NULL, 0, next - 1, &r);
	assert_int_equal(r.result, RESULT_OK);
	trust_verify(cfg->hosts[0]->trust, der, len, NULL, 0, next, &r);
	assert_int_equal(r.result, RESULT_CRL_ERROR);
	assert_int_equal(r.verify_error, X509_V_ERR_CRL_HAS_EXPIRED);

	free(der);
	config_free(cfg);
	pki_free(leaf);
	pki_free(ca);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_lookup_table),
		cmocka_unit_test(test_lookup_any_depth),
		cmocka_unit_test(test_lookup_many),
		cmocka_unit_test(test_long_host_pattern),
		cmocka_unit_test(test_agent_defaults),
		cmocka_unit_test(test_comments),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_crl_defaults),
		cmocka_unit_test(test_mode_deny),
		cmocka_unit_test(test_crl_follows_issuer),
		cmocka_unit_test(test_reload_reuses_what_did_not_change),
		cmocka_unit_test(test_load_warnings),
		cmocka_unit_test(test_crl_next_update_passes_while_loaded),
		cmocka_unit_test(test_errors_table),
		cmocka_unit_test(test_store_section),
		cmocka_unit_test(test_error_line_too_long),
		cmocka_unit_test(test_error_nul_byte),
		cmocka_unit_test(test_error_missing_config),
		cmocka_unit_test(test_error_string_path),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_strings),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
