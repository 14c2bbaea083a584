/*
 * test_policy.c - host name normalization, one-label and any-depth
 * wildcards and
 * allow-identity globs (policy.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "policy.h"

struct norm_case {
	const char *in;
	int strip_port;
	const char *want;   /* NULL: must be rejected */
};

static const struct norm_case norm_cases[] = {
	/* case and trailing dot */
	{ "api.example.com", 1, "api.example.com" },
	{ "Api.Example.COM", 1, "api.example.com" },
	{ "Api.Example.COM", 0, "api.example.com" },
	{ "api.example.com.", 1, "api.example.com" },
	{ "api.example.com.", 0, "api.example.com" },
	{ "API.EXAMPLE.COM.:8443", 1, "api.example.com" },
	{ "localhost", 1, "localhost" },
	{ "a_b-c.example", 0, "a_b-c.example" },
	{ "*.example.com", 0, "*.example.com" },
	{ "*", 0, "*" },
	/* ports */
	{ "api.example.com:8443", 1, "api.example.com" },
	{ "api.example.com:1", 1, "api.example.com" },
	{ "api.example.com:65535", 1, "api.example.com" },
	{ "api.example.com:65536", 1, NULL },
	{ "api.example.com:000443", 1, NULL },     /* more than 5 digits */
	{ "api.example.com:", 1, NULL },           /* empty port */
	{ "api.example.com:http", 1, NULL },       /* non-digit port */
	{ "api.example.com:44x", 1, NULL },
	{ "api.example.com:-1", 1, NULL },
	{ "api.example.com:8443", 0, NULL },       /* SNI has no port */
	{ "1.2.3.4:80", 1, "1.2.3.4" },
	{ "1.2.3.4", 0, "1.2.3.4" },
	/* IPv6 */
	{ "[2001:db8::1]:443", 1, "2001:db8::1" },
	{ "[2001:DB8::1]", 1, "2001:db8::1" },
	{ "[::1]", 1, "::1" },
	{ "[::1]", 0, "::1" },
	{ "[::ffff:1.2.3.4]:80", 1, "::ffff:1.2.3.4" },
	{ "[::1]:443", 0, NULL },                  /* no port without strip */
	{ "[::1]:", 1, NULL },
	{ "[::1]x", 1, NULL },
	{ "[::1", 1, NULL },
	{ "[]", 1, NULL },
	{ "[]:80", 1, NULL },
	{ "[::g]", 1, NULL },
	{ "[a.example.com]", 1, NULL },
	{ "::1", 1, NULL },                        /* bare IPv6 in Host: refused */
	{ "2001:db8::1", 1, NULL },
	{ "::1", 0, "::1" },                       /* config pattern / SNI */
	{ "2001:DB8::1", 0, "2001:db8::1" },
	{ "a:b", 0, NULL },                        /* one colon: not IPv6 */
	{ "host.example::1", 0, NULL },
	/* garbage */
	{ "", 1, NULL },
	{ "", 0, NULL },
	{ ".", 1, NULL },
	{ ".example.com", 1, NULL },
	{ "a..example.com", 1, NULL },
	{ "example.com..", 1, NULL },
	{ "api example.com", 1, NULL },
	{ " api.example.com", 1, NULL },
	{ "api.example.com ", 1, NULL },
	{ "api.example.com\t", 0, NULL },
	{ "api.example.com\r\n", 1, NULL },
	{ "user@api.example.com", 1, NULL },
	{ "api.example.com/path", 1, NULL },
	{ "api.exa%6dple.com", 1, NULL },
	{ "api.\xc3\xa9xample.com", 1, NULL },
	{ ":443", 1, NULL },
};

static void test_normalize_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]); i++) {
		const struct norm_case *c = &norm_cases[i];
		char out[POLICY_HOST_MAX + 1];
		int n;

		memset(out, 'Z', sizeof(out));
		n = policy_normalize(c->in, strlen(c->in), c->strip_port, out);
		if (c->want == NULL) {
			if (n != -1)
				fail_msg("case %zu \"%s\" strip=%d: want reject, got \"%s\"",
				         i, c->in, c->strip_port, out);
		} else {
			if (n < 0)
				fail_msg("case %zu \"%s\" strip=%d: rejected, want \"%s\"",
				         i, c->in, c->strip_port, c->want);
			assert_int_equal(n, (int)strlen(c->want));
			assert_string_equal(out, c->want);
		}
	}
}

/* NUL and control bytes inside the length must be rejected, not treated
 * as the end of the string. */
static void test_normalize_embedded_nul(void **state)
{
	char out[POLICY_HOST_MAX + 1];
	static const char nul[] = "api.example.com\0.evil.com";
	static const char ctl[] = "api\x01.example.com";

	(void)state;
	assert_int_equal(policy_normalize(nul, sizeof(nul) - 1, 1, out), -1);
	assert_int_equal(policy_normalize(nul, sizeof(nul) - 1, 0, out), -1);
	assert_int_equal(policy_normalize(ctl, sizeof(ctl) - 1, 1, out), -1);
	assert_int_equal(policy_normalize(NULL, 0, 1, out), -1);
	/* The length bounds the input: only "api" is looked at. */
	assert_int_equal(policy_normalize("api.example.com", 3, 1, out), 3);
	assert_string_equal(out, "api");
}

static void test_normalize_length(void **state)
{
	char in[POLICY_HOST_MAX + 16];
	char out[POLICY_HOST_MAX + 1];

	(void)state;
	/* Exactly POLICY_HOST_MAX characters: accepted. */
	memset(in, 'a', POLICY_HOST_MAX);
	assert_int_equal(policy_normalize(in, POLICY_HOST_MAX, 1, out),
	                 POLICY_HOST_MAX);
	assert_int_equal(out[POLICY_HOST_MAX], '\0');
	/* One more: rejected. */
	memset(in, 'a', POLICY_HOST_MAX + 1);
	assert_int_equal(policy_normalize(in, POLICY_HOST_MAX + 1, 1, out), -1);
	/* POLICY_HOST_MAX plus a trailing dot and a port still fits. */
	memset(in, 'b', POLICY_HOST_MAX);
	memcpy(in + POLICY_HOST_MAX, ".:443", 5);
	assert_int_equal(policy_normalize(in, POLICY_HOST_MAX + 5, 1, out),
	                 POLICY_HOST_MAX);
	assert_int_equal(out[0], 'b');
}

struct wild_case {
	const char *name;
	const char *suffix;
	int want;
};

static const struct wild_case wild_cases[] = {
	{ "a.example.com", "example.com", 1 },
	{ "api.example.com", "example.com", 1 },
	{ "API.example.com", "example.com", 1 },
	{ "x.EXAMPLE.com", "example.com", 1 },
	{ "example.com", "example.com", 0 },
	{ "a.b.example.com", "example.com", 0 },
	{ ".example.com", "example.com", 0 },
	{ "aexample.com", "example.com", 0 },
	{ "a.example.co", "example.com", 0 },
	{ "a.example.com.evil", "example.com", 0 },
	{ "a.notexample.com", "example.com", 0 },
	{ "a.com", "com", 1 },
	{ "a.b.com", "com", 0 },
	{ "a.example.com", "", 0 },
	{ "", "example.com", 0 },
};

static void test_wildcard_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(wild_cases) / sizeof(wild_cases[0]); i++) {
		const struct wild_case *c = &wild_cases[i];
		int got = policy_wildcard_match(c->name, strlen(c->name), c->suffix,
		                                strlen(c->suffix));

		if (got != c->want)
			fail_msg("wildcard case %zu: \"%s\" vs *.%s: got %d want %d",
			         i, c->name, c->suffix, got, c->want);
	}
}

static const struct wild_case deep_cases[] = {
	{ "a.example.com", "example.com", 1 },
	{ "a.b.example.com", "example.com", 1 },
	{ "a.b.c.d.example.com", "example.com", 1 },
	{ "A.B.Example.COM", "example.com", 1 },
	{ "x.b.example.com", "B.Example.com", 1 },
	{ "example.com", "example.com", 0 },     /* the suffix itself */
	{ ".example.com", "example.com", 0 },
	{ "a..example.com", "example.com", 0 },
	{ "aexample.com", "example.com", 0 },
	{ "a.b.notexample.com", "example.com", 0 },
	{ "a.example.com.evil", "example.com", 0 },
	{ "a.example.co", "example.com", 0 },
	{ "a.b.com", "com", 1 },
	{ "a.example.com", "", 0 },
	{ "", "example.com", 0 },
};

static void test_any_depth_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(deep_cases) / sizeof(deep_cases[0]); i++) {
		const struct wild_case *c = &deep_cases[i];
		int got = policy_any_depth_match(c->name, strlen(c->name),
		                                 c->suffix, strlen(c->suffix));

		if (got != c->want)
			fail_msg("any-depth case %zu: \"%s\" vs **.%s: got %d want %d",
			         i, c->name, c->suffix, got, c->want);
	}
}

struct glob_case {
	const char *pattern;
	const char *s;
	int want;
};

static const struct glob_case glob_cases[] = {
	{ "client.example.com", "client.example.com", 1 },
	{ "client.example.com", "CLIENT.Example.com", 1 },
	{ "client.example.com", "client.example.co", 0 },
	{ "client.example.com", "client.example.comm", 0 },
	{ "*", "", 1 },
	{ "*", "anything.at.all", 1 },
	{ "", "", 1 },
	{ "", "a", 0 },
	{ "a", "", 0 },
	{ "*.example.com", "a.example.com", 1 },
	{ "*.example.com", "a.b.example.com", 1 },   /* '*' spans dots */
	{ "*.example.com", ".example.com", 1 },
	{ "*.example.com", "example.com", 0 },
	{ "spiffe://prod.example/*", "spiffe://prod.example/ns/a/sa/b", 1 },
	{ "spiffe://prod.example/*", "spiffe://dev.example/ns/a", 0 },
	{ "spiffe://*/ns/payments/*", "spiffe://x/ns/payments/sa/y", 1 },
	{ "spiffe://*/ns/payments/*", "spiffe://x/ns/billing/sa/y", 0 },
	{ "*@partner.example", "alice@partner.example", 1 },
	{ "*@partner.example", "alice@partner.example.evil", 0 },
	{ "a*b*c", "abc", 1 },
	{ "a*b*c", "aXXbYYc", 1 },
	{ "a*b*c", "aXXbYY", 0 },
	{ "a**c", "ac", 1 },
	{ "*a", "bbbba", 1 },
	{ "*a", "bbbab", 0 },
	{ "ab*", "ab", 1 },
	{ "ab*", "a", 0 },
	{ "*ab*ab", "xabyabab", 1 },
};

static void test_glob_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(glob_cases) / sizeof(glob_cases[0]); i++) {
		const struct glob_case *c = &glob_cases[i];
		int got = policy_glob_match(c->pattern, c->s, strlen(c->s));

		if (got != c->want)
			fail_msg("glob case %zu: \"%s\" vs \"%s\": got %d want %d",
			         i, c->pattern, c->s, got, c->want);
	}
}

/* A NUL inside a SAN must not end the comparison early. */
static void test_glob_embedded_nul(void **state)
{
	static const char s[] = "good.example\0.evil";

	(void)state;
	assert_int_equal(policy_glob_match("good.example", s, sizeof(s) - 1), 0);
	assert_int_equal(policy_glob_match("good.example*", s, sizeof(s) - 1), 1);
}

/* CPU time of this process, so a loaded machine does not count. */
static double now_seconds(void)
{
	return (double)clock() / CLOCKS_PER_SEC;
}

/* A backtracking glob takes time growing like the length to the power of
 * the stars (years here); ours is linear in practice, about a millisecond.
 * The bound is loose on purpose (valgrind, sanitizers): it only has to
 * tell linear from exponential. */
static void test_glob_pathological(void **state)
{
	enum { LEN = 100000 };
	char *s = malloc(LEN);
	double t0, dt;
	int r1, r2;

	(void)state;
	assert_non_null(s);
	memset(s, 'a', LEN);
	t0 = now_seconds();
	r1 = policy_glob_match("*a*a*a*a*a*a*a*a*a*a*b", s, LEN);
	s[LEN - 1] = 'b';
	r2 = policy_glob_match("*a*a*a*a*a*a*a*a*a*a*b", s, LEN);
	dt = now_seconds() - t0;
	free(s);
	assert_int_equal(r1, 0);
	assert_int_equal(r2, 1);
	if (dt > 10.0)
		fail_msg("pathological glob took %.3f s of CPU", dt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize_table),
		cmocka_unit_test(test_normalize_embedded_nul),
		cmocka_unit_test(test_normalize_length),
		cmocka_unit_test(test_wildcard_table),
		cmocka_unit_test(test_any_depth_table),
		cmocka_unit_test(test_glob_table),
		cmocka_unit_test(test_glob_embedded_nul),
		cmocka_unit_test(test_glob_pathological),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
