/*
 * test_notify.c - the systemd readiness protocol (notify.c) against a
 * datagram socket standing in for systemd: the exact messages, a path
 * and an abstract address, the variable unset after reading, and sockets
 * that are absent or full, which must neither block nor crash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "notify.h"

static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* A bound, non-blocking datagram socket at `name` ("@x": abstract). */
static int listener(const char *name)
{
	struct sockaddr_un sun;
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, name);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1);
	if (name[0] == '@') {
		sun.sun_path[0] = '\0';
		len--;
	}
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, len), 0);
	return fd;
}

/* The next datagram, NUL-terminated, or "" when there is none. */
static const char *next_msg(int fd)
{
	static char buf[NOTIFY_MAX + 1];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static int setup_path(void **state)
{
	(void)state;
	snprintf(sock_path, sizeof(sock_path), "/tmp/test_notify.%ld.sock",
	         (long)getpid());
	unlink(sock_path);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	notify_close();
	unlink(sock_path);
	unsetenv("NOTIFY_SOCKET");
	return 0;
}

static void test_unset(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_init(), 0);
	assert_false(notify_enabled());
	assert_int_equal(notify_send("READY=1"), -1);
	notify_serving(NULL, 1);
	notify_reloading();
	notify_stopping();
}

static void test_messages(void **state)
{
	struct config cfg;
	struct timespec t0, t1;
	unsigned long long us, lo, hi;
	int fd = listener(sock_path);

	(void)state;
	setenv("NOTIFY_SOCKET", sock_path, 1);
	assert_int_equal(notify_init(), 0);
	assert_true(notify_enabled());
	/* Read once, and not passed on to children. */
	assert_null(getenv("NOTIFY_SOCKET"));

	memset(&cfg, 0, sizeof(cfg));
	cfg.n_cas = 12;
	cfg.n_hosts = 340;
	notify_serving(&cfg, 3);
	assert_string_equal(next_msg(fd),
	                    "READY=1\nSTATUS=serving: 12 CAs, 340 hosts, generation 3");
	notify_serving(NULL, 1);
	assert_string_equal(next_msg(fd), "READY=1\nSTATUS=serving without a "
	                    "configuration file (no policies), generation 1");
	/* A newline in the reason would start a new assignment. */
	notify_rejected("a.conf:7: bad\nSTOPPING=1", 2);
	assert_string_equal(next_msg(fd), "READY=1\nSTATUS=reload rejected, "
	                    "generation 2 stays live: a.conf:7: bad STOPPING=1");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	notify_reloading();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(sscanf(next_msg(fd), "RELOADING=1\nMONOTONIC_USEC=%llu", &us), 1);
	lo = (unsigned long long)t0.tv_sec * 1000000ULL + (unsigned long long)t0.tv_nsec / 1000;
	hi = (unsigned long long)t1.tv_sec * 1000000ULL + (unsigned long long)t1.tv_nsec / 1000;
	assert_true(us >= lo && us <= hi);

	notify_stopping();
	assert_string_equal(next_msg(fd), "STOPPING=1");
	assert_string_equal(next_msg(fd), "");
	close(fd);
}

static void test_abstract(void **state)
{
	char name[64];
	int fd;

	(void)state;
	snprintf(name, sizeof(name), "@mtls-spoa-test-notify-%ld", (long)getpid());
	fd = listener(name);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(notify_init(), 0);
	notify_stopping();
	assert_string_equal(next_msg(fd), "STOPPING=1");
	close(fd);
}

static void test_bad_variable(void **state)
{
	char longp[200];

	(void)state;
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(notify_init(), -1);
	assert_false(notify_enabled());
	assert_null(getenv("NOTIFY_SOCKET"));
	setenv("NOTIFY_SOCKET", "@", 1);
	assert_int_equal(notify_init(), -1);
	memset(longp, 'x', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longp, 1);
	assert_int_equal(notify_init(), -1);
	assert_null(getenv("NOTIFY_SOCKET"));
	notify_stopping();
}

static double elapsed(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void test_absent(void **state)
{
	struct timespec t0;

	(void)state;
	setenv("NOTIFY_SOCKET", sock_path, 1);   /* nothing bound there */
	assert_int_equal(notify_init(), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(notify_send("READY=1"), -1);
		notify_reloading();
	}
	assert_true(elapsed(&t0) < 2.0);
}

static void test_full(void **state)
{
	struct timespec t0;
	int fd = listener(sock_path), failed = 0;

	(void)state;
	setenv("NOTIFY_SOCKET", sock_path, 1);
	assert_int_equal(notify_init(), 0);
	/* Nobody reads: the queue fills and sends fail at once instead of
	 * waiting for systemd. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 20000 && !failed; i++)
		failed = notify_send("READY=1\nSTATUS=filling the queue") == -1;
	assert_true(failed);
	for (int i = 0; i < 100; i++)
		notify_stopping();
	assert_true(elapsed(&t0) < 5.0);
	/* What was queued is intact. */
	assert_string_equal(next_msg(fd), "READY=1\nSTATUS=filling the queue");
	close(fd);
}

static void test_status_line(void **state)
{
	char buf[16];

	(void)state;
	assert_int_equal(notify_status_line(buf, sizeof(buf), "a\tb\x7f" "c"), 12);
	assert_string_equal(buf, "STATUS=a b c");
	assert_int_equal(notify_status_line(buf, sizeof(buf), "0123456789"), 15);
	assert_string_equal(buf, "STATUS=01234567");
	assert_int_equal(notify_status_line(buf, 4, "x"), 3);
	assert_string_equal(buf, "STA");
	assert_int_equal(notify_status_line(buf, 0, "x"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unset, setup_path, teardown),
		cmocka_unit_test_setup_teardown(test_messages, setup_path, teardown),
		cmocka_unit_test_setup_teardown(test_abstract, setup_path, teardown),
		cmocka_unit_test_setup_teardown(test_bad_variable, setup_path, teardown),
		cmocka_unit_test_setup_teardown(test_absent, setup_path, teardown),
		cmocka_unit_test_setup_teardown(test_full, setup_path, teardown),
		cmocka_unit_test(test_status_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
