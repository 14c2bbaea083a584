/*
 * test_addr.c - the listen/connect address syntax (addr.c): accepted
 * forms with their split, refused forms with their reason, and every
 * truncation of a valid address.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <cmocka.h>

#include "addr.h"

struct good_case {
	const char *in;
	enum addr_kind kind;
	const char *host;
	const char *port;
};

static const struct good_case good[] = {
	{ "127.0.0.1:12345", ADDR_TCP, "127.0.0.1", "12345" },
	{ "localhost:1", ADDR_TCP, "localhost", "1" },
	{ "agent-1.example.com:65535", ADDR_TCP, "agent-1.example.com", "65535" },
	{ "host:0080", ADDR_TCP, "host", "80" },
	{ "*:12345", ADDR_TCP, "*", "12345" },
	{ "[::1]:12345", ADDR_TCP, "::1", "12345" },
	{ "[2001:db8::1]:443", ADDR_TCP, "2001:db8::1", "443" },
	{ "[::ffff:1.2.3.4]:80", ADDR_TCP, "::ffff:1.2.3.4", "80" },
	{ "unix:/run/mtls-spoa.sock", ADDR_UNIX, "/run/mtls-spoa.sock", "" },
	{ "unix:/", ADDR_UNIX, "/", "" },
	{ "unix:/with:colon", ADDR_UNIX, "/with:colon", "" },
};

struct bad_case {
	const char *in;
	const char *why;
};

static const struct bad_case bad[] = {
	{ "unix:relative.sock", "unix socket path must be absolute (unix:/path)" },
	{ "unix:./a.sock", "unix socket path must be absolute (unix:/path)" },
	{ "unix:", "unix socket path must be absolute (unix:/path)" },
	{ "", "expected HOST:PORT, [IPV6]:PORT or unix:/path" },
	{ "127.0.0.1", "expected HOST:PORT, [IPV6]:PORT or unix:/path" },
	{ ":80", "missing host before ':PORT'" },
	{ "::1:80", "IPv6 addresses need brackets: [IPV6]:PORT" },
	{ "a::1:80", "IPv6 addresses need brackets: [IPV6]:PORT" },
	{ "a_b:80", "bad character in host" },
	{ "a b:80", "bad character in host" },
	{ "**:80", "bad character in host" },
	{ "host:", "PORT must be 1..65535" },
	{ "host:0", "PORT must be 1..65535" },
	{ "host:65536", "PORT must be 1..65535" },
	{ "host:99999999999999999999", "PORT must be 1..65535" },
	{ "host:80x", "PORT must be 1..65535" },
	{ "host:+80", "PORT must be 1..65535" },
	{ "host:-1", "PORT must be 1..65535" },
	{ "*:0", "PORT must be 1..65535" },
	{ "[::1", "missing ']' in IPv6 address" },
	{ "[]:80", "bad IPv6 address" },
	{ "[zz::1]:80", "bad IPv6 address" },
	{ "[1.2.3.4]:80", "bad IPv6 address" },
	{ "[::1]", "expected [IPV6]:PORT with PORT 1..65535" },
	{ "[::1]:", "expected [IPV6]:PORT with PORT 1..65535" },
	{ "[::1]x80", "expected [IPV6]:PORT with PORT 1..65535" },
	{ "[::1]:70000", "expected [IPV6]:PORT with PORT 1..65535" },
};

static void test_accepted(void **state)
{
	char host[ADDR_HOST_LEN], port[ADDR_PORT_LEN], err[256];
	enum addr_kind kind;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		err[0] = '\0';
		if (addr_check(good[i].in, err, sizeof(err)) != 0)
			fail_msg("addr_check(\"%s\") refused: %s", good[i].in, err);
		if (addr_split(good[i].in, &kind, host, sizeof(host), port, sizeof(port),
		               err, sizeof(err)) != 0)
			fail_msg("addr_split(\"%s\") refused: %s", good[i].in, err);
		assert_int_equal(kind, good[i].kind);
		assert_string_equal(host, good[i].host);
		assert_string_equal(port, good[i].port);
	}
}

static void test_refused(void **state)
{
	char host[ADDR_HOST_LEN], port[ADDR_PORT_LEN], err[256];
	enum addr_kind kind;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (addr_check(bad[i].in, err, sizeof(err)) == 0)
			fail_msg("addr_check(\"%s\") accepted", bad[i].in);
		if (strcmp(err, bad[i].why) != 0)
			fail_msg("addr_check(\"%s\"): \"%s\", want \"%s\"", bad[i].in, err,
			         bad[i].why);
		err[0] = '\0';
		assert_int_equal(addr_split(bad[i].in, &kind, host, sizeof(host), port,
		                            sizeof(port), err, sizeof(err)), -1);
		assert_string_equal(err, bad[i].why);
	}
}

static void test_limits(void **state)
{
	char a[sizeof(((struct sockaddr_un *)0)->sun_path) + 16], err[256];
	size_t plen = sizeof(((struct sockaddr_un *)0)->sun_path);

	(void)state;
	/* The longest unix path that fits sun_path with its NUL, then one more. */
	memcpy(a, "unix:/", 6);
	memset(a + 6, 'p', plen - 2);
	a[6 + plen - 2] = '\0';
	assert_int_equal(addr_check(a, err, sizeof(err)), 0);
	a[6 + plen - 2] = 'p';
	a[6 + plen - 1] = '\0';
	assert_int_equal(addr_check(a, err, sizeof(err)), -1);
	assert_string_equal(err, "unix socket path too long");

	/* A 253-character name is the longest DNS name. */
	{
		char n[300];

		memset(n, 'a', 253);
		memcpy(n + 253, ":80", 4);
		assert_int_equal(addr_check(n, err, sizeof(err)), 0);
		memset(n, 'a', 254);
		memcpy(n + 254, ":80", 4);
		assert_int_equal(addr_check(n, err, sizeof(err)), -1);
		assert_string_equal(err, "host name too long");
	}
}

/* Every truncation of these up to the port's first digit is refused;
 * from there on each is a valid shorter port. */
static void test_truncations(void **state)
{
	static const char *const full[] = { "127.0.0.1:12345", "[::1]:12345",
	                                    "*:12345", "unix:/a.sock" };
	char buf[64], err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(full) / sizeof(full[0]); i++) {
		size_t n = strlen(full[i]);
		size_t last = strncmp(full[i], "unix:", 5) == 0
		              ? 5 : (size_t)(strrchr(full[i], ':') - full[i]) + 1;

		for (size_t k = 0; k <= n; k++) {
			int rc;

			memcpy(buf, full[i], k);
			buf[k] = '\0';
			rc = addr_check(buf, err, sizeof(err));
			if (k <= last && rc == 0)
				fail_msg("truncation \"%s\" of \"%s\" accepted", buf, full[i]);
			if (k > last && rc != 0)
				fail_msg("\"%s\" refused: %s", buf, err);
		}
	}
}

/* A split that does not fit the caller's buffer is an error, not a cut. */
static void test_small_buffers(void **state)
{
	char host[4], port[ADDR_PORT_LEN], err[256];
	enum addr_kind kind;

	(void)state;
	assert_int_equal(addr_split("localhost:80", &kind, host, sizeof(host), port,
	                            sizeof(port), err, sizeof(err)), -1);
	assert_int_equal(addr_split("abc:80", &kind, host, sizeof(host), port,
	                            sizeof(port), err, sizeof(err)), 0);
	assert_string_equal(host, "abc");
}

static void test_resolve(void **state)
{
	struct sockaddr_un sun;
	struct addrinfo *res = NULL;
	char err[256];

	(void)state;
	assert_int_equal(addr_resolve("unix:/tmp/x.sock", 1, &sun, &res, err,
	                              sizeof(err)), ADDR_UNIX);
	assert_int_equal(sun.sun_family, AF_UNIX);
	assert_string_equal(sun.sun_path, "/tmp/x.sock");
	assert_int_equal(addr_resolve("127.0.0.1:8080", 0, &sun, &res, err,
	                              sizeof(err)), ADDR_TCP);
	assert_non_null(res);
	assert_int_equal(res->ai_family, AF_INET);
	freeaddrinfo(res);
	res = NULL;
	/* "*" connects to this host. */
	assert_int_equal(addr_resolve("*:8080", 0, &sun, &res, err, sizeof(err)),
	                 ADDR_TCP);
	assert_non_null(res);
	freeaddrinfo(res);
	res = NULL;
	assert_int_equal(addr_resolve("unix:rel.sock", 1, &sun, &res, err,
	                              sizeof(err)), -1);
	assert_string_equal(err, "unix socket path must be absolute (unix:/path)");
	assert_null(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_small_buffers),
		cmocka_unit_test(test_resolve),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
