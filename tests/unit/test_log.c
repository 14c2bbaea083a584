/*
 * test_log.c - log lines (log.c): the JSON string escaper on every kind
 * of byte (quotes, backslashes, control characters, valid and invalid
 * UTF-8), its cuts at every buffer size, and the text and JSON line
 * shapes.
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

#include "log.h"

struct esc_case {
	const char *in;
	size_t len;          /* 0: strlen(in) */
	const char *out;
};

#define B(s) s, sizeof(s) - 1

static const struct esc_case esc_cases[] = {
	{ "plain text", 0, "plain text" },
	{ "say \"hi\" \\o/", 0, "say \\\"hi\\\" \\\\o/" },
	{ "a\nb\rc\td\be\ff", 0, "a\\nb\\rc\\td\\be\\ff" },
	{ B("\x00\x01\x1f\x7f"), "\\u0000\\u0001\\u001f\\u007f" },
	{ "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0, "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
	{ "\xef\xbf\xbf\xf4\x8f\xbf\xbf", 0, "\xef\xbf\xbf\xf4\x8f\xbf\xbf" },
	/* Continuation byte alone, overlong forms, surrogates, past
	 * U+10FFFF, bytes never used, sequences cut short. */
	{ "\x80", 0, "\\ufffd" },
	{ "\xc0\x80", 0, "\\ufffd\\ufffd" },
	{ "\xc1\xbf", 0, "\\ufffd\\ufffd" },
	{ "\xe0\x80\xaf", 0, "\\ufffd\\ufffd\\ufffd" },
	{ "\xed\xa0\x80", 0, "\\ufffd\\ufffd\\ufffd" },
	{ "\xf0\x80\x80\xaf", 0, "\\ufffd\\ufffd\\ufffd\\ufffd" },
	{ "\xf4\x90\x80\x80", 0, "\\ufffd\\ufffd\\ufffd\\ufffd" },
	{ "\xf5\xfe\xff", 0, "\\ufffd\\ufffd\\ufffd" },
	{ "x\xe2\x82", 0, "x\\ufffd\\ufffd" },
	{ "\xe2\x82x", 0, "\\ufffd\\ufffdx" },
	{ "\xf0\x9f\x98", 0, "\\ufffd\\ufffd\\ufffd" },
	{ "\xc3\xa9\xc3", 0, "\xc3\xa9\\ufffd" },
};

static void test_escape(void **state)
{
	char out[256];
	size_t used;

	(void)state;
	for (size_t i = 0; i < sizeof(esc_cases) / sizeof(esc_cases[0]); i++) {
		const struct esc_case *c = &esc_cases[i];
		size_t len = c->len ? c->len : strlen(c->in);
		size_t n = log_json_escape(out, sizeof(out), c->in, len, &used);

		assert_string_equal(out, c->out);
		assert_int_equal(n, strlen(c->out));
		assert_int_equal(used, len);
	}
}

/* At every buffer size the output is a prefix of the full one, ends
 * between two escapes, and says how much input it took. */
static void test_escape_cuts(void **state)
{
	static const char in[] = "a\"\\\n\x01\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff z";
	char full[256], out[256], again[256];
	size_t flen, used;

	(void)state;
	flen = log_json_escape(full, sizeof(full), in, sizeof(in) - 1, NULL);
	for (size_t cap = 0; cap <= flen + 1; cap++) {
		size_t n;

		memset(out, 'Z', sizeof(out));
		n = log_json_escape(out, cap, in, sizeof(in) - 1, &used);
		if (cap == 0) {
			assert_int_equal(n, 0);
			assert_int_equal(used, 0);
			continue;
		}
		assert_true(n < cap);
		assert_int_equal(out[n], '\0');
		assert_memory_equal(out, full, n);
		/* The part consumed escapes to exactly what was written. */
		assert_int_equal(log_json_escape(again, sizeof(again), in, used, NULL), n);
		assert_memory_equal(again, out, n);
	}
	assert_int_equal(used, sizeof(in) - 1);
}

static void test_lines(void **state)
{
	struct timespec ts = { 1795000000, 123456789 };
	char line[LOG_LINE_MAX], big[LOG_MSG_MAX];
	size_t n;

	(void)state;
	n = log_format_line(line, sizeof(line), LOG_FMT_TEXT, LOG_LVL_WARNING, &ts,
	                    "hello", 5);
	line[n] = '\0';
	assert_string_equal(line, "2026-11-18T11:06:40.123Z [warning] hello\n");

	n = log_format_line(line, sizeof(line), LOG_FMT_JSON, LOG_LVL_DEBUG, &ts,
	                    "sni \"a\xff\"\n", 9);
	line[n] = '\0';
	assert_string_equal(line, "{\"time\":\"2026-11-18T11:06:40.123Z\","
	                    "\"level\":\"debug\",\"msg\":\"sni \\\"a\\ufffd\\\"\\n\"}\n");

	/* The worst case does not fit: cut, still one object per line. */
	memset(big, '\x01', sizeof(big));
	n = log_format_line(line, sizeof(line), LOG_FMT_JSON, LOG_LVL_ERROR, &ts,
	                    big, sizeof(big));
	assert_true(n <= sizeof(line));
	assert_memory_equal(line + n - 3, "\"}\n", 3);
	assert_memory_equal(line + n - 9, "\\u0001\"}\n", 9);
	assert_null(memchr(line, '\n', n - 1));

	memset(big, 'x', sizeof(big));
	n = log_format_line(line, 128, LOG_FMT_TEXT, LOG_LVL_INFO, &ts, big,
	                    sizeof(big));
	assert_int_equal(n, 128);
	assert_int_equal(line[n - 1], '\n');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_escape_cuts),
		cmocka_unit_test(test_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
