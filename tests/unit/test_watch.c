/*
 * test_watch.c - watch.c on a real libev loop and a temporary directory:
 * a rename over a file, an in-place write through a symlink, a new file
 * in a watched directory and a Kubernetes ConfigMap `..data` swap each
 * call back once, after the debounce (restarted by each event); an empty
 * watch set calls nothing. Every wait is bounded by a loop timer.
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
#include <ev.h>

#include "pki.h"
#include "watch.h"

#define DEBOUNCE 0.2

static char *dir;
static struct ev_loop *loop;
static int calls;
static ev_tstamp last_call;

static int setup(void **state)
{
	(void)state;
	dir = pki_tmpdir();
	loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(loop);
	calls = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ev_loop_destroy(loop);
	pki_rmdir(dir);
	return 0;
}

static const char *at(const char *rel)
{
	static char bufs[4][1024];
	static int k;
	char *b = bufs[k++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, rel);
	return b;
}

static void put(const char *rel, const char *text)
{
	FILE *f = fopen(at(rel), "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static void on_change(void *ctx)
{
	(void)ctx;
	calls++;
	ev_now_update(loop);
	last_call = ev_now(loop);
}

static void deadline_cb(struct ev_loop *l, ev_timer *t, int revents)
{
	(void)t; (void)revents;
	ev_break(l, EVBREAK_ALL);
}

/* Run the loop for `secs` seconds exactly (callbacks included). */
static void run_for(double secs)
{
	ev_timer t;

	ev_timer_init(&t, deadline_cb, secs, 0.);
	ev_timer_start(loop, &t);
	ev_run(loop, 0);
	ev_timer_stop(loop, &t);
}

/* Run until `want` callbacks happened or `secs` passed; returns when. */
static void run_until_calls(int want, double secs)
{
	ev_tstamp end;

	ev_now_update(loop);
	end = ev_now(loop) + secs;
	while (calls < want) {
		ev_now_update(loop);
		if (ev_now(loop) >= end)
			break;
		run_for(0.02);
	}
}

static double now(void)
{
	ev_now_update(loop);
	return ev_now(loop);
}

static struct watch *watch_paths(const char *const *paths, size_t n)
{
	struct watch *w = watch_new(loop, DEBOUNCE, on_change, NULL);

	assert_non_null(w);
	assert_true(watch_set(w, paths, n) > 0);
	return w;
}

/* An editor saves: write a temp file, rename it over the original. A
 * burst of events is one callback, DEBOUNCE after the last event. */
static void test_rename_over(void **state)
{
	const char *paths[1];
	struct watch *w;
	double t0;

	(void)state;
	put("main.conf", "one\n");
	paths[0] = at("main.conf");
	w = watch_paths(paths, 1);
	t0 = now();
	put(".main.conf.swp", "two\n");
	assert_int_equal(rename(at(".main.conf.swp"), at("main.conf")), 0);
	put("other", "x\n");            /* same directory: part of the burst */
	run_until_calls(1, 3.0);
	assert_int_equal(calls, 1);
	assert_true(last_call - t0 >= DEBOUNCE - 0.01);
	/* Nothing more comes of that burst. */
	run_for(DEBOUNCE * 2);
	assert_int_equal(calls, 1);

	/* A second event inside the debounce restarts it. */
	t0 = now();
	put("main.conf", "three\n");    /* in place */
	run_for(DEBOUNCE / 2);
	assert_int_equal(calls, 1);
	put("main.conf", "four\n");
	run_until_calls(2, 3.0);
	assert_int_equal(calls, 2);
	assert_true(last_call - t0 >= DEBOUNCE * 1.5 - 0.01);
	watch_free(w);
}

/* The path is a symlink into another directory, whose file is rewritten
 * in place: the target's directory is watched too. */
static void test_symlink_target(void **state)
{
	const char *paths[1];
	struct watch *w;

	(void)state;
	assert_int_equal(mkdir(at("etc"), 0700), 0);
	assert_int_equal(mkdir(at("store"), 0700), 0);
	put("store/ca.pem", "v1\n");
	assert_int_equal(symlink("../store/ca.pem", at("etc/ca.pem")), 0);
	paths[0] = at("etc/ca.pem");
	w = watch_paths(paths, 1);
	put("store/ca.pem", "v2\n");
	run_until_calls(1, 3.0);
	assert_int_equal(calls, 1);
	watch_free(w);
}

/* Files of one directory reached through a symlinked directory
 * (paths that share their parent are resolved once): a file rewritten in
 * place in the real directory is seen, for the first path and the last. */
static void test_symlinked_dir(void **state)
{
	const char *paths[3];
	struct watch *w;

	(void)state;
	assert_int_equal(mkdir(at("real"), 0700), 0);
	put("real/a.pem", "v1\n");
	put("real/b.pem", "v1\n");
	put("real/c.pem", "v1\n");
	assert_int_equal(symlink("real", at("conf")), 0);
	paths[0] = strdup(at("conf/a.pem"));
	paths[1] = strdup(at("conf/b.pem"));
	paths[2] = strdup(at("conf/c.pem"));
	w = watch_paths(paths, 3);
	/* conf/ (the parent named) and real/ (its real path) are one
	 * directory: one watch. */
	assert_int_equal(watch_set(w, paths, 3), 1);
	put("real/c.pem", "v2\n");
	run_until_calls(1, 3.0);
	assert_int_equal(calls, 1);
	run_for(DEBOUNCE * 2);
	put("real/a.pem", "v2\n");
	run_until_calls(2, 3.0);
	assert_int_equal(calls, 2);
	watch_free(w);
	for (size_t i = 0; i < 3; i++)
		free((char *)paths[i]);
}

/* A directory path: a file created in it (write + rename, as tools do). */
static void test_new_file_in_dir(void **state)
{
	const char *paths[1];
	struct watch *w;

	(void)state;
	assert_int_equal(mkdir(at("conf.d"), 0700), 0);
	paths[0] = at("conf.d");
	w = watch_paths(paths, 1);
	put("conf.d/.t1.tmp", "[host t1]\n");
	assert_int_equal(rename(at("conf.d/.t1.tmp"), at("conf.d/t1.conf")), 0);
	run_until_calls(1, 3.0);
	assert_int_equal(calls, 1);
	/* Deleting it is a change too. */
	assert_int_equal(unlink(at("conf.d/t1.conf")), 0);
	run_until_calls(2, 3.0);
	assert_int_equal(calls, 2);
	watch_free(w);
}

/* Kubernetes: cm/x.conf -> ..data/x.conf, ..data -> ..TS1; an update
 * writes ..TS2, points ..data_tmp at it and renames it onto ..data, then
 * removes ..TS1. The watch set is rebuilt after the callback, as the
 * server does. */
static void test_configmap_swap(void **state)
{
	const char *paths[2];
	struct watch *w;

	(void)state;
	assert_int_equal(mkdir(at("cm"), 0700), 0);
	assert_int_equal(mkdir(at("cm/..2026_12_01_00_00_00.1"), 0700), 0);
	put("cm/..2026_12_01_00_00_00.1/x.conf", "v1\n");
	assert_int_equal(symlink("..2026_12_01_00_00_00.1", at("cm/..data")), 0);
	assert_int_equal(symlink("..data/x.conf", at("cm/x.conf")), 0);
	paths[0] = at("cm");
	paths[1] = at("cm/x.conf");
	w = watch_paths(paths, 2);

	for (int round = 2; round <= 3; round++) {
		char ts[64], rel[128];

		snprintf(ts, sizeof(ts), "..2026_12_01_00_00_00.%d", round);
		snprintf(rel, sizeof(rel), "cm/%s", ts);
		assert_int_equal(mkdir(at(rel), 0700), 0);
		snprintf(rel, sizeof(rel), "cm/%s/x.conf", ts);
		put(rel, round == 2 ? "v2\n" : "v3\n");
		assert_int_equal(symlink(ts, at("cm/..data_tmp")), 0);
		assert_int_equal(rename(at("cm/..data_tmp"), at("cm/..data")), 0);
		snprintf(rel, sizeof(rel), "cm/..2026_12_01_00_00_00.%d/x.conf",
		         round - 1);
		assert_int_equal(unlink(at(rel)), 0);
		rel[strlen(rel) - strlen("/x.conf")] = '\0';
		assert_int_equal(rmdir(at(rel)), 0);
		run_until_calls(round - 1, 3.0);
		assert_int_equal(calls, round - 1);
		assert_true(watch_set(w, paths, 2) > 0);
	}
	watch_free(w);
}

/* Nothing watched, nothing called; a missing path is skipped. */
static void test_empty_and_missing(void **state)
{
	const char *paths[1];
	struct watch *w = watch_new(loop, DEBOUNCE, on_change, NULL);

	(void)state;
	assert_non_null(w);
	paths[0] = at("main.conf");
	put("main.conf", "x\n");
	assert_true(watch_set(w, paths, 1) > 0);
	assert_int_equal(watch_set(w, NULL, 0), 0);
	put("main.conf", "y\n");
	run_for(DEBOUNCE * 3);
	assert_int_equal(calls, 0);
	paths[0] = at("no/such/dir/file");
	assert_int_equal(watch_set(w, paths, 1), 0);
	watch_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rename_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_target, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinked_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_file_in_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_configmap_swap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_and_missing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
