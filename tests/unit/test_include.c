/*
 * test_include.c - `include = GLOB` (config.c): included files load in
 * sorted order, hold [ca] and [host] sections only, name themselves in
 * errors, resolve relative paths against their own directory, are
 * recorded as sources, and a reload rebuilds only the objects of the file
 * that changed. Also config_changed() and config_watch_paths().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "config.h"
#include "pki.h"

static char *dir;               /* a fresh directory per test */
static struct pki_cert *ca_a, *ca_b;

static int group_setup(void **state)
{
	(void)state;
	ca_a = pki_make(&(struct pki_cert_opts){ .cn = "Include A", .is_ca = 1 },
	                NULL);
	ca_b = pki_make(&(struct pki_cert_opts){ .cn = "Include B", .is_ca = 1 },
	                NULL);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	pki_free(ca_a);
	pki_free(ca_b);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	dir = pki_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pki_rmdir(dir);
	dir = NULL;
	return 0;
}

/* dir/rel into a static buffer (one of four, so two can be used at once). */
static const char *at(const char *rel)
{
	static char bufs[4][1024];
	static int k;
	char *b = bufs[k++ % 4];
	int n = snprintf(b, sizeof(bufs[0]), "%s/%s", dir, rel);

	assert_true(n > 0 && (size_t)n < sizeof(bufs[0]));
	return b;
}

static void put(const char *rel, const char *text)
{
	FILE *f = fopen(at(rel), "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static void put_ca(const char *rel, const struct pki_cert *ca)
{
	pki_write_pem(at(rel), (const struct pki_cert *const[]){ ca }, 1);
}

static void mk(const char *rel)
{
	assert_int_equal(mkdir(at(rel), 0700), 0);
}

static struct config *load(const struct config *prev)
{
	struct config *cfg = NULL;
	char err[CONFIG_ERR_LEN];

	err[0] = '\0';
	if (config_reload(at("main.conf"), prev, &cfg, err, sizeof(err)) != 0)
		fail_msg("load failed: %s", err);
	return cfg;
}

/* Loading main.conf fails with exactly "dir/FILE:LINE: MSG..." (MSG a
 * prefix of the rest). */
static void load_fails(const char *file, int line, const char *msg)
{
	struct config *cfg = NULL;
	char err[CONFIG_ERR_LEN], want[CONFIG_ERR_LEN];

	assert_int_equal(config_load(at("main.conf"), &cfg, err, sizeof(err)), -1);
	assert_null(cfg);
	snprintf(want, sizeof(want), "%s:%d: %s", at(file), line, msg);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("got  \"%s\"\nwant \"%s...\"", err, want);
}

static const struct host_policy *host(const struct config *cfg,
                                      const char *name)
{
	return config_lookup(cfg, name, strlen(name));
}

static void test_sorted_and_recorded(void **state)
{
	struct config *cfg;
	uint8_t d[32];
	unsigned int dl = 0;
	static const char b_conf[] = "[host b.test]\nca = a\n";

	(void)state;
	mk("conf.d");
	put_ca("a.pem", ca_a);
	put("main.conf", "[agent]\ninclude = conf.d/*.conf\n"
	    "[ca a]\nfile = a.pem\n[host main.test]\nca = a\n");
	put("conf.d/b.conf", b_conf);
	put("conf.d/a.conf", "[host a.test]\nca = a\nmode = log\n");
	put("conf.d/c.conf.disabled", "[agent]\n");   /* not matched */
	put("conf.d/.hidden.conf", "[agent]\n");      /* * skips dot files */
	cfg = load(NULL);
	assert_int_equal(cfg->n_hosts, 3);
	assert_string_equal(cfg->hosts[0]->pattern, "main.test");
	assert_string_equal(cfg->hosts[1]->pattern, "a.test");
	assert_string_equal(cfg->hosts[2]->pattern, "b.test");
	assert_int_equal(host(cfg, "a.test")->mode, MODE_LOG);
	/* The CA of the main file serves the included hosts. */
	assert_ptr_equal(host(cfg, "b.test")->trust, host(cfg, "main.test")->trust);
	assert_int_equal(cfg->n_sources, 3);
	assert_string_equal(cfg->sources[0].path, at("main.conf"));
	assert_string_equal(cfg->sources[1].path, at("conf.d/a.conf"));
	assert_string_equal(cfg->sources[2].path, at("conf.d/b.conf"));
	assert_int_equal(EVP_Digest(b_conf, strlen(b_conf), d, &dl, EVP_sha256(),
	                            NULL), 1);
	assert_memory_equal(cfg->sources[2].sha256, d, 32);
	assert_int_equal(cfg->n_includes, 1);
	assert_string_equal(cfg->includes[0], at("conf.d/*.conf"));
	assert_int_equal(cfg->n_include_dirs, 1);
	assert_string_equal(cfg->include_dirs[0], at("conf.d"));
	config_free(cfg);
}

static void test_empty_missing_unreadable(void **state)
{
	struct config *cfg;

	(void)state;
	mk("conf.d");
	put("main.conf", "[agent]\ninclude = conf.d/*.conf\n[host *]\nmode = off\n");
	cfg = load(NULL);       /* an empty conf.d is fine */
	assert_int_equal(cfg->n_sources, 1);
	assert_int_equal(cfg->n_hosts, 1);
	config_free(cfg);

	put("main.conf", "[agent]\n\ninclude = nowhere/*.conf\n");
	load_fails("main.conf", 3, "include \"");
	{
		struct config *c2 = NULL;
		char err[CONFIG_ERR_LEN];

		assert_int_equal(config_load(at("main.conf"), &c2, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "cannot read "));
		assert_non_null(strstr(err, "No such file or directory"));
	}
	if (geteuid() != 0) {  /* root reads anything */
		assert_int_equal(chmod(at("conf.d"), 0), 0);
		put("main.conf", "[agent]\ninclude = conf.d/*.conf\n");
		load_fails("main.conf", 2, "include \"");
		assert_int_equal(chmod(at("conf.d"), 0700), 0);
	}
	/* From a string, include is refused: the text cannot open files. */
	assert_int_equal(config_load_string("[agent]\ninclude = /etc/*\n",
	                                    at("s.conf"), &cfg,
	                                    (char[CONFIG_ERR_LEN]){ 0 },
	                                    CONFIG_ERR_LEN), -1);
	{
		char err[CONFIG_ERR_LEN];

		assert_int_equal(config_load_string("[agent]\ninclude = *.conf\n",
		                                    "/x/s.conf", &cfg, err,
		                                    sizeof(err)), -1);
		assert_string_equal(err, "/x/s.conf:2: include needs a configuration "
		                    "file (not available when loading from a string)");
	}
}

static void test_errors_name_the_included_file(void **state)
{
	(void)state;
	mk("conf.d");
	put_ca("a.pem", ca_a);
	put("main.conf", "[agent]\ninclude = conf.d/*.conf\n[ca a]\nfile = a.pem\n"
	    "[host main.test]\nca = a\n");
	put("conf.d/a.conf", "[host a.test]\nca = a\n");

	put("conf.d/b.conf", "; tenant b\n[host b.test]\nca = a\nbogus = 1\n");
	load_fails("conf.d/b.conf", 4, "unknown key \"bogus\" in [host b.test]");
	put("conf.d/b.conf", "[host b.test]\nca = a\n[agent]\nthreads = 1\n");
	load_fails("conf.d/b.conf", 3, "[agent] in an included file (only [ca] "
	           "and [host] sections may be included)");
	put("conf.d/b.conf", "threads = 1\n");
	load_fails("conf.d/b.conf", 1, "key \"threads\" outside of any section");
	put("conf.d/b.conf", "[host b.test]\nca = a\nthis is not ini\n");
	load_fails("conf.d/b.conf", 3, "syntax error");
	/* Errors found after the parse name the draft's file too. */
	put("conf.d/b.conf", "[host b.test]\n\nca = nope\n");
	load_fails("conf.d/b.conf", 3, "unknown CA \"nope\"");
	put("conf.d/b.conf", "[host b.test]\nmode = enforce\n");
	load_fails("conf.d/b.conf", 1, "[host b.test] has no ca");
	put("conf.d/b.conf", "[host b.test]\nca = a\ncrl-check = leaf\n");
	load_fails("conf.d/b.conf", 3, "crl-check = leaf but none");
	put("conf.d/b.conf", "[ca b]\nfile = missing.pem\n");
	load_fails("conf.d/b.conf", 2, "");
	put("conf.d/b.conf", "[ca b]\n");
	load_fails("conf.d/b.conf", 1, "[ca b] has no file");

	/* Duplicates across files name both places. */
	{
		char want[CONFIG_ERR_LEN];

		put("conf.d/b.conf", "\n[ca a]\nfile = ../a.pem\n");
		snprintf(want, sizeof(want), "duplicate [ca a] (first at %s:3)",
		         at("main.conf"));
		load_fails("conf.d/b.conf", 2, want);
		put("conf.d/b.conf", "[host x.test]\nca = a\n[host A.test.]\nca = a\n");
		snprintf(want, sizeof(want), "duplicate host \"A.test.\" (same as "
		         "\"a.test\" at %s:1)", at("conf.d/a.conf"));
		load_fails("conf.d/b.conf", 3, want);
		/* Within one file, the line alone as before. */
		put("conf.d/b.conf", "[host x.test]\nca = a\n[host x.test]\nca = a\n");
		load_fails("conf.d/b.conf", 3, "duplicate host \"x.test\" (same as "
		           "\"x.test\" at line 1)");
	}
}

static void test_relative_paths_and_dedup(void **state)
{
	struct config *cfg;

	(void)state;
	mk("conf.d");
	mk("conf.d/t");
	put_ca("conf.d/t/b.pem", ca_b);
	put_ca("b.pem", ca_a);  /* same name beside main.conf: must not be used */
	/* Two globs match t.conf: read once. The main file matches the
	 * second glob: skipped. */
	put("main.conf", "[agent]\ninclude = conf.d/t/*.conf\ninclude = conf.d/t/t.conf\n"
	    "include = *.conf\n");
	put("conf.d/t/t.conf", "[ca b]\nfile = b.pem\n[host t.test]\nca = b\n");
	cfg = load(NULL);
	assert_int_equal(cfg->n_cas, 1);
	assert_string_equal(cfg->cas[0]->file, at("conf.d/t/b.pem"));
	assert_int_equal(X509_cmp(sk_X509_value(cfg->cas[0]->certs, 0),
	                          ca_b->x509), 0);
	assert_int_equal(cfg->n_sources, 2);
	config_free(cfg);
}

static void test_limits(void **state)
{
	char *big;
	size_t n = 1024 * 1024 + 1;
	FILE *f;

	(void)state;
	mk("conf.d");
	put("main.conf", "[agent]\ninclude = conf.d/*.conf\n");
	big = malloc(n);
	assert_non_null(big);
	memset(big, ';', n);
	f = fopen(at("conf.d/big.conf"), "w");
	assert_non_null(f);
	assert_int_equal(fwrite(big, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	free(big);
	load_fails("conf.d/big.conf", 0, "cannot read: File too large");
}

static void assert_stats(const struct config *cfg, size_t cas, size_t trusts,
                         size_t hosts)
{
	assert_int_equal(cfg->stats.cas_built, cas);
	assert_int_equal(cfg->stats.cas_reused, cfg->n_cas - cas);
	assert_int_equal(cfg->stats.trusts_built, trusts);
	assert_int_equal(cfg->stats.trusts_reused, cfg->n_trusts - trusts);
	assert_int_equal(cfg->stats.hosts_built, hosts);
	assert_int_equal(cfg->stats.hosts_reused, cfg->n_hosts - hosts);
}

/* One tenant's file changes: only its objects are rebuilt. */
static void test_reload_rebuilds_one_tenant(void **state)
{
	struct config *g1, *g2, *g3, *g4;
	char why[CONFIG_ERR_LEN];

	(void)state;
	mk("conf.d");
	put_ca("conf.d/t1.pem", ca_a);
	put_ca("conf.d/t2.pem", ca_b);
	put("main.conf", "[agent]\ninclude = conf.d/*.conf\n");
	put("conf.d/t1.conf", "[ca t1]\nfile = t1.pem\n[host t1.test]\nca = t1\n");
	put("conf.d/t2.conf", "[ca t2]\nfile = t2.pem\n[host t2.test]\nca = t2\n");
	g1 = load(NULL);
	assert_stats(g1, 2, 2, 2);
	assert_int_equal(config_changed(g1, why, sizeof(why)), 0);

	/* t2's file: its host alone is rebuilt, over the same trust. */
	put("conf.d/t2.conf", "[ca t2]\nfile = t2.pem\n[host t2.test]\nca = t2\n"
	    "mode = log\n");
	assert_int_equal(config_changed(g1, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "t2.conf changed"));
	g2 = load(g1);
	assert_stats(g2, 0, 0, 1);
	assert_ptr_equal(host(g2, "t1.test"), host(g1, "t1.test"));
	assert_ptr_equal(host(g2, "t2.test")->trust, host(g1, "t2.test")->trust);
	assert_int_equal(config_changed(g2, why, sizeof(why)), 0);

	/* t2's CA file: its CA, trust and host; t1 untouched. */
	put_ca("conf.d/t2.pem", ca_a);
	assert_int_equal(config_changed(g2, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "t2.pem changed"));
	g3 = load(g2);
	assert_stats(g3, 1, 1, 1);
	assert_ptr_equal(g3->cas[0], g2->cas[0]);
	assert_ptr_equal(host(g3, "t1.test"), host(g2, "t1.test"));

	/* A new tenant file, then one removed. */
	put("conf.d/t3.conf", "[host t3.test]\nca = t1\n");
	assert_int_equal(config_changed(g3, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "the includes now match 3 files"));
	assert_int_equal(unlink(at("conf.d/t2.conf")), 0);
	assert_int_equal(config_changed(g3, why, sizeof(why)), 1);
	g4 = load(g3);
	assert_stats(g4, 0, 0, 1);
	assert_null(host(g4, "t2.test"));
	assert_ptr_equal(host(g4, "t3.test")->trust, host(g4, "t1.test")->trust);
	assert_int_equal(g4->n_sources, 3);
	assert_string_equal(g4->sources[2].path, at("conf.d/t3.conf"));

	/* Same count, another file: still a change. */
	assert_int_equal(rename(at("conf.d/t3.conf"), at("conf.d/t4.conf")), 0);
	assert_int_equal(config_changed(g4, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "t4.conf is included now"));

	config_free(g4);
	config_free(g3);
	config_free(g2);
	config_free(g1);
}

static void test_watch_paths(void **state)
{
	struct config *cfg;
	const char **p;
	size_t n;

	(void)state;
	mk("conf.d");
	put_ca("a.pem", ca_a);
	put_ca("conf.d/b.pem", ca_b);
	put("main.conf", "[agent]\ninclude = conf.d/*.conf\n[ca a]\nfile = a.pem\n");
	put("conf.d/b.conf", "[ca b]\nfile = b.pem\n");
	cfg = load(NULL);
	assert_int_equal(cfg->agent.watch, 1);
	p = config_watch_paths(cfg, &n);
	assert_non_null(p);
	assert_int_equal(n, 4);
	assert_string_equal(p[0], at("main.conf"));
	assert_string_equal(p[1], at("conf.d"));
	assert_string_equal(p[2], at("a.pem"));
	assert_string_equal(p[3], at("conf.d/b.pem"));
	free(p);
	config_free(cfg);

	put("main.conf", "[agent]\nwatch = off\n");
	cfg = load(NULL);
	assert_int_equal(cfg->agent.watch, 0);
	config_free(cfg);
	put("main.conf", "[agent]\nwatch = maybe\n");
	load_fails("main.conf", 2, "bad watch \"maybe\" (on, off)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sorted_and_recorded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_missing_unreadable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_name_the_included_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_paths_and_dedup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_rebuilds_one_tenant, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_paths, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
