/*
 * test_metrics.c - the counters and their Prometheus text: label
 * escaping, cumulative histogram buckets, monotonic counters summed over
 * threads, the per-policy series and their bound, one HELP/TYPE per
 * family.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "hosts.h"
#include "metrics.h"

static char *render(void)
{
	struct metrics_view v = { .generation = 7, .loaded_at = 1700000000.5,
	                          .connections = 3, .version = "1.2.3",
	                          .openssl = "3.0.0" };
	struct metrics_text t = { 0 };

	assert_int_equal(metrics_render(&v, &t), 0);
	assert_non_null(t.p);
	assert_int_equal(strlen(t.p), t.len);
	return t.p;
}

/* The value of the sample line that starts with `series` followed by a
 * space; -1 when there is none. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static int setup(void **state)
{
	(void)state;
	metrics_set_policy_label(0);
	metrics_reset();
	return 0;
}

static void test_label_escaping(void **state)
{
	struct metrics_text t = { 0 };

	(void)state;
	metrics_put_label(&t, "a\"b\\c\nd");
	assert_string_equal(t.p, "a\\\"b\\\\c\\nd");
	metrics_put_label(&t, "");
	assert_string_equal(t.p, "a\\\"b\\\\c\\nd");
	metrics_text_free(&t);
	/* A long text grows the buffer. */
	for (int i = 0; i < 2000; i++)
		metrics_printf(&t, "%s", "0123456789");
	assert_int_equal(t.len, 20000);
	assert_int_equal(t.err, 0);
	metrics_text_free(&t);
}

static void test_render_basics(void **state)
{
	char *s;

	(void)state;
	s = render();
	assert_non_null(strstr(s, "mtls_spoa_build_info{version=\"1.2.3\",openssl=\"3.0.0\"} 1\n"));
	assert_true(sample(s, "mtls_spoa_connections") == 3);
	assert_true(sample(s, "mtls_spoa_config_generation") == 7);
	assert_true(sample(s, "mtls_spoa_config_last_reload_success_timestamp_seconds") == 1700000000.5);
	assert_true(sample(s, "mtls_spoa_config_reloads_total{outcome=\"success\"}") == 0);
	/* No verdict yet: the family is declared, without series. */
	assert_non_null(strstr(s, "# TYPE mtls_spoa_verdicts_total counter\n"));
	assert_null(strstr(s, "mtls_spoa_verdicts_total{"));
	/* Exactly one TYPE line per family, and every TYPE has a HELP. */
	for (const char *p = s; (p = strstr(p, "# TYPE ")) != NULL; p++) {
		char name[128], help[160], again[160];

		assert_int_equal(sscanf(p, "# TYPE %127s", name), 1);
		snprintf(help, sizeof(help), "# HELP %s ", name);
		assert_non_null(strstr(s, help));
		snprintf(again, sizeof(again), "# TYPE %s ", name);
		assert_null(strstr(p + 1, again));
	}
	free(s);
}

static void test_verdict_counters(void **state)
{
	char *s;

	(void)state;
	metrics_verdict(RESULT_EXPIRED, ACTION_LOG, MODE_LOG, "*.example.net");
	metrics_verdict(RESULT_EXPIRED, ACTION_LOG, MODE_LOG, "*.example.net");
	metrics_verdict(RESULT_OK, ACTION_ALLOW, MODE_ENFORCE, "api.example.com");
	metrics_verdict(RESULT_NO_POLICY, ACTION_DENY, MODE_DENY, "*");
	metrics_verdict(RESULT_HOST_MISMATCH, ACTION_DENY, METRICS_MODE_NONE, NULL);
	/* Out of range: ignored, not a crash. */
	metrics_verdict(RESULT_COUNT, ACTION_LOG, MODE_LOG, NULL);
	s = render();
	assert_true(sample(s, "mtls_spoa_verdicts_total{result=\"expired\",action=\"log\",mode=\"log\"}") == 2);
	assert_true(sample(s, "mtls_spoa_verdicts_total{result=\"ok\",action=\"allow\",mode=\"enforce\"}") == 1);
	assert_true(sample(s, "mtls_spoa_verdicts_total{result=\"no_policy\",action=\"deny\",mode=\"deny\"}") == 1);
	assert_true(sample(s, "mtls_spoa_verdicts_total{result=\"host_mismatch\",action=\"deny\",mode=\"none\"}") == 1);
	/* No host name, no policy label by default. */
	assert_null(strstr(s, "example"));
	assert_null(strstr(s, ",policy="));
	free(s);
}

struct counting {
	int n;
};

static void *count_thread(void *arg)
{
	struct counting *c = arg;

	for (int i = 0; i < c->n; i++) {
		metrics_inc(METRICS_NOTIFY_FRAMES);
		metrics_add(METRICS_NOTIFY_MESSAGES, 2);
		metrics_verdict(RESULT_OK, ACTION_ALLOW, MODE_ENFORCE, "x");
	}
	return NULL;
}

/* Counters summed over the shards of several threads, and never going
 * back: a scrape after more counting reads at least what the one before
 * read. */
static void test_counters_threads_monotonic(void **state)
{
	pthread_t th[4];
	struct counting c = { 10000 };
	uint64_t before, after;
	char *s;

	(void)state;
	metrics_inc(METRICS_NOTIFY_FRAMES);
	before = metrics_get(METRICS_NOTIFY_FRAMES);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, count_thread, &c), 0);
	for (int i = 0; i < 4; i++) {
		uint64_t now = metrics_get(METRICS_NOTIFY_FRAMES);

		assert_true(now >= before);
		before = now;
		pthread_join(th[i], NULL);
	}
	after = metrics_get(METRICS_NOTIFY_FRAMES);
	assert_int_equal(after, 40001);
	assert_int_equal(metrics_get(METRICS_NOTIFY_MESSAGES), 80000);
	s = render();
	assert_true(sample(s, "mtls_spoa_notify_frames_total") == 40001);
	assert_true(sample(s, "mtls_spoa_verdicts_total{result=\"ok\",action=\"allow\",mode=\"enforce\"}") == 40000);
	free(s);
}

static void test_histogram_cumulative(void **state)
{
	char *s, key[128];
	double prev = -1;

	(void)state;
	metrics_verify_ns(50000);        /* 50 us: first bucket */
	metrics_verify_ns(100000);       /* exactly 0.0001 s: le is inclusive */
	metrics_verify_ns(3000000);      /* 3 ms */
	metrics_verify_ns(2000000000);   /* 2 s: +Inf only */
	s = render();
	assert_true(sample(s, "mtls_spoa_verify_duration_seconds_bucket{le=\"0.0001\"}") == 2);
	assert_true(sample(s, "mtls_spoa_verify_duration_seconds_bucket{le=\"0.0025\"}") == 2);
	assert_true(sample(s, "mtls_spoa_verify_duration_seconds_bucket{le=\"0.005\"}") == 3);
	assert_true(sample(s, "mtls_spoa_verify_duration_seconds_bucket{le=\"1\"}") == 3);
	assert_true(sample(s, "mtls_spoa_verify_duration_seconds_bucket{le=\"+Inf\"}") == 4);
	assert_true(sample(s, "mtls_spoa_verify_duration_seconds_count") == 4);
	{
		double sum = sample(s, "mtls_spoa_verify_duration_seconds_sum");

		assert_true(sum > 2.00314 && sum < 2.00316);
	}
	for (int i = 0; i < METRICS_VERIFY_BUCKETS; i++) {
		double v;

		snprintf(key, sizeof(key),
		         "mtls_spoa_verify_duration_seconds_bucket{le=\"%g\"}",
		         metrics_verify_bounds[i]);
		v = sample(s, key);
		assert_true(v >= 0);
		assert_true(v >= prev);
		prev = v;
	}
	free(s);
}

static void test_protocol_errors(void **state)
{
	char *s;

	(void)state;
	metrics_protocol_error(4);
	metrics_protocol_error(4);
	metrics_protocol_error(13);
	metrics_protocol_error(99);
	s = render();
	assert_true(sample(s, "mtls_spoa_protocol_errors_total{code=\"4\"}") == 2);
	assert_true(sample(s, "mtls_spoa_protocol_errors_total{code=\"13\"}") == 1);
	assert_true(sample(s, "mtls_spoa_protocol_errors_total{code=\"other\"}") == 1);
	assert_true(sample(s, "mtls_spoa_protocol_errors_total{code=\"3\"}") == 0);
	free(s);
}

static void test_policy_label(void **state)
{
	char *s;

	(void)state;
	metrics_set_policy_label(1);
	assert_int_equal(metrics_policy_label(), 1);
	metrics_verdict(RESULT_EXPIRED, ACTION_LOG, MODE_LOG, "*.example.net");
	metrics_verdict(RESULT_EXPIRED, ACTION_LOG, MODE_LOG, "*.example.net");
	metrics_verdict(RESULT_OK, ACTION_ALLOW, MODE_LOG, "*.example.net");
	metrics_verdict(RESULT_HOST_MISMATCH, ACTION_DENY, METRICS_MODE_NONE, NULL);
	metrics_verdict(RESULT_OK, ACTION_ALLOW, MODE_ENFORCE, "we\"ird\\");
	s = render();
	assert_true(sample(s, "mtls_spoa_verdicts_total{result=\"expired\",action=\"log\",mode=\"log\",policy=\"*.example.net\"}") == 2);
	assert_true(sample(s, "mtls_spoa_verdicts_total{result=\"ok\",action=\"allow\",mode=\"log\",policy=\"*.example.net\"}") == 1);
	assert_true(sample(s, "mtls_spoa_verdicts_total{result=\"host_mismatch\",action=\"deny\",mode=\"none\",policy=\"\"}") == 1);
	assert_true(sample(s, "mtls_spoa_verdicts_total{result=\"ok\",action=\"allow\",mode=\"enforce\",policy=\"we\\\"ird\\\\\"}") == 1);
	/* With the label on, the family has only labelled series. */
	assert_null(strstr(s, "mode=\"log\"} "));
	free(s);
	metrics_set_policy_label(0);
}

/* Past METRICS_MAX_POLICY_SERIES distinct series, verdicts go to
 * policy="(other)" and the overflow counter; existing series still count. */
static void test_policy_bound(void **state)
{
	char name[32], *s;

	(void)state;
	metrics_set_policy_label(1);
	for (int i = 0; i < METRICS_MAX_POLICY_SERIES; i++) {
		snprintf(name, sizeof(name), "h%d.example.com", i);
		metrics_verdict(RESULT_OK, ACTION_ALLOW, MODE_ENFORCE, name);
	}
	assert_int_equal(metrics_get(METRICS_POLICY_OVERFLOW), 0);
	metrics_verdict(RESULT_OK, ACTION_ALLOW, MODE_ENFORCE, "one-too-many");
	metrics_verdict(RESULT_OK, ACTION_ALLOW, MODE_ENFORCE, "h5.example.com");
	assert_int_equal(metrics_get(METRICS_POLICY_OVERFLOW), 1);
	s = render();
	assert_true(sample(s, "mtls_spoa_verdicts_total{result=\"ok\",action=\"allow\",mode=\"enforce\",policy=\"(other)\"}") == 1);
	assert_true(sample(s, "mtls_spoa_verdicts_total{result=\"ok\",action=\"allow\",mode=\"enforce\",policy=\"h5.example.com\"}") == 2);
	assert_true(sample(s, "mtls_spoa_metrics_policy_overflow_total") == 1);
	assert_null(strstr(s, "one-too-many"));
	free(s);
	metrics_set_policy_label(0);
	metrics_reset();
}

static void test_pool_pending(void **state)
{
	char *s;

	(void)state;
	metrics_add(METRICS_POOL_SUBMITTED, 5);
	metrics_add(METRICS_POOL_DONE, 3);
	s = render();
	assert_true(sample(s, "mtls_spoa_verify_pool_pending") == 2);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_label_escaping, setup),
		cmocka_unit_test_setup(test_render_basics, setup),
		cmocka_unit_test_setup(test_verdict_counters, setup),
		cmocka_unit_test_setup(test_counters_threads_monotonic, setup),
		cmocka_unit_test_setup(test_histogram_cumulative, setup),
		cmocka_unit_test_setup(test_protocol_errors, setup),
		cmocka_unit_test_setup(test_policy_label, setup),
		cmocka_unit_test_setup(test_policy_bound, setup),
		cmocka_unit_test_setup(test_pool_pending, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
