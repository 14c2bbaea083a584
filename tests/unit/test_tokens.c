/*
 * test_tokens.c - the admin token file and the bearer check (tokens.c):
 * accepted files with their names, every refusal with its PATH:LINE and
 * reason (never the token), limits at and past each bound, every
 * truncation of a valid file, the Authorization header forms, and the
 * file checks of tokens_load (mode, type, size). api_error_json's shape.
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
#include <jansson.h>

#include "api.h"
#include "tokens.h"

#define T1 "0123456789abcdef"           /* 16: the shortest */
#define T2 "Zm9vYmFyYmF6cXV4LXRva2VuLTI="

static struct tokens *parse_ok(const char *text)
{
	struct tokens *t = NULL;
	char err[256] = "";

	if (tokens_parse(text, strlen(text), "tok", &t, err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
	return t;
}

static void refused(const char *text, const char *want)
{
	struct tokens *t = (struct tokens *)1;
	char err[256] = "";

	assert_int_equal(tokens_parse(text, strlen(text), "tok", &t, err,
	                              sizeof(err)), -1);
	assert_null(t);
	assert_string_equal(err, want);
}

static void test_accepted(void **state)
{
	struct tokens *t;
	const char *name;

	(void)state;
	t = parse_ok("# comment\r\n\r\nops:" T1 "\r\n  ci-bot.2:" T2 "  \r\n"
	             "\t# indented comment\nlast_one:a:b:c:d:e:f:g:h:i\n");
	assert_int_equal(tokens_count(t), 3);
	assert_string_equal(tokens_path(t), "tok");
	assert_int_equal(tokens_check(t, "Bearer " T1, &name), 1);
	assert_string_equal(name, "ops");
	assert_int_equal(tokens_check(t, "Bearer " T2, &name), 1);
	assert_string_equal(name, "ci-bot.2");
	/* The first ':' splits; the token may hold more. */
	assert_int_equal(tokens_check(t, "Bearer a:b:c:d:e:f:g:h:i", &name), 1);
	assert_string_equal(name, "last_one");
	tokens_free(t);
	/* No final newline; an empty file is an empty set. */
	t = parse_ok("ops:" T1);
	assert_int_equal(tokens_count(t), 1);
	tokens_free(t);
	t = parse_ok("");
	assert_int_equal(tokens_count(t), 0);
	assert_int_equal(tokens_check(t, "Bearer " T1, &name), 0);
	assert_null(name);
	tokens_free(t);
}

static void test_refused(void **state)
{
	(void)state;
	refused("ops\n", "tok:1: expected NAME:TOKEN");
	refused("# c\n" T1 "\n", "tok:2: expected NAME:TOKEN");
	refused(":" T1, "tok:1: bad token name (letters, digits, '.', '-', '_', "
	        "1 to 64 characters)");
	refused("ops :" T1, "tok:1: bad token name (letters, digits, '.', '-', "
	        "'_', 1 to 64 characters)");
	refused("o p:" T1, "tok:1: bad token name (letters, digits, '.', '-', "
	        "'_', 1 to 64 characters)");
	refused("é:" T1, "tok:1: bad token name (letters, digits, '.', '-', "
	        "'_', 1 to 64 characters)");
	refused("ops:", "tok:1: the token of \"ops\" has 0 characters (16 to 256)");
	refused("ops:0123456789abcde", "tok:1: the token of \"ops\" has 15 "
	        "characters (16 to 256)");
	refused("ops:0123456 789abcdef", "tok:1: the token of \"ops\" has a blank "
	        "or a character that is not printable ASCII");
	refused("ops:0123456\x01" "789abcdef", "tok:1: the token of \"ops\" has a "
	        "blank or a character that is not printable ASCII");
	refused("ops:0123456\xc3\xa9" "789abcdef", "tok:1: the token of \"ops\" has "
	        "a blank or a character that is not printable ASCII");
	refused("ops:" T1 "\n\nops:" T2 "\n", "tok:3: duplicate token name \"ops\" "
	        "(first on line 1)");
	refused("a:" T1 "\nb:" T1 "\n", "tok:2: the token of \"b\" is that of "
	        "\"a\" (line 1): every client needs its own");
}

static void test_nul(void **state)
{
	static const char text[] = "ops:" T1 "\nx:0123\0" "456789abcdef\n";
	struct tokens *t = NULL;
	char err[256];

	(void)state;
	assert_int_equal(tokens_parse(text, sizeof(text) - 1, "tok", &t, err,
	                              sizeof(err)), -1);
	assert_string_equal(err, "tok:2: NUL byte");
}

static void test_limits(void **state)
{
	char name[TOKENS_NAME_MAX + 2], tok[TOKENS_MAX_LEN + 2];
	char line[512], *big;
	struct tokens *t;
	const char *who;
	size_t off = 0;

	(void)state;
	memset(name, 'n', sizeof(name));
	name[TOKENS_NAME_MAX] = '\0';
	memset(tok, 't', sizeof(tok));
	tok[TOKENS_MAX_LEN] = '\0';
	snprintf(line, sizeof(line), "%s:%s", name, tok);
	t = parse_ok(line);
	snprintf(line, sizeof(line), "Bearer %s", tok);
	assert_int_equal(tokens_check(t, line, &who), 1);
	assert_string_equal(who, name);
	snprintf(line, sizeof(line), "Bearer %st", tok);
	assert_int_equal(tokens_check(t, line, &who), 0);
	tokens_free(t);
	name[TOKENS_NAME_MAX] = 'n';
	name[TOKENS_NAME_MAX + 1] = '\0';
	snprintf(line, sizeof(line), "%s:%s", name, T1);
	refused(line, "tok:1: bad token name (letters, digits, '.', '-', '_', "
	        "1 to 64 characters)");
	tok[TOKENS_MAX_LEN] = 't';
	tok[TOKENS_MAX_LEN + 1] = '\0';
	snprintf(line, sizeof(line), "ops:%s", tok);
	refused(line, "tok:1: the token of \"ops\" has 257 characters (16 to 256)");
	/* TOKENS_MAX entries load, one more does not. */
	big = malloc((size_t)(TOKENS_MAX + 1) * 48);
	assert_non_null(big);
	for (int i = 0; i < TOKENS_MAX; i++)
		off += (size_t)sprintf(big + off, "n%d:token-%08d-xxxxxx\n", i, i);
	t = parse_ok(big);
	assert_int_equal(tokens_count(t), TOKENS_MAX);
	assert_int_equal(tokens_check(t, "Bearer token-00000777-xxxxxx", &who), 1);
	assert_string_equal(who, "n777");
	tokens_free(t);
	sprintf(big + off, "last:token-last-xxxxxxxx\n");
	snprintf(line, sizeof(line), "tok:%d: too many tokens (at most %d)",
	         TOKENS_MAX + 1, TOKENS_MAX);
	refused(big, line);
	free(big);
}

/* Every prefix of a valid file parses or fails cleanly, never crashes;
 * a prefix ending at a line boundary parses. */
static void test_truncations(void **state)
{
	static const char text[] = "# c\nops:" T1 "\nci:" T2 "\n";
	struct tokens *t;
	char err[256];

	(void)state;
	for (size_t n = 0; n <= sizeof(text) - 1; n++) {
		t = NULL;
		if (tokens_parse(text, n, "tok", &t, err, sizeof(err)) == 0) {
			assert_non_null(t);
			tokens_free(t);
		} else {
			assert_null(t);
			assert_true(strncmp(err, "tok:", 4) == 0);
			assert_true(n != 0 && text[n - 1] != '\n');
		}
	}
}

static void test_check_forms(void **state)
{
	struct tokens *t = parse_ok("ops:" T1 "\nci:" T2 "\n");
	const char *who = (const char *)1;

	(void)state;
	assert_int_equal(tokens_check(t, "Bearer " T1, &who), 1);
	assert_string_equal(who, "ops");
	/* RFC 9110 11.1: the scheme is case-insensitive; RFC 6750: 1*SP. */
	assert_int_equal(tokens_check(t, "bearer " T1, &who), 1);
	assert_int_equal(tokens_check(t, "BEARER   " T2, &who), 1);
	assert_string_equal(who, "ci");
	assert_int_equal(tokens_check(t, "Bearer " T1 " \t", &who), 1);
	/* Refused forms, each leaving *name NULL. */
	static const char *const bad[] = {
		"", "Bearer", "Bearer ", "Bearer  ", "Bearer\t" T1, "Bearer:" T1,
		"Bearer" T1, "Basic " T1, "Bearerx " T1, " Bearer " T1 "x",
		"Bearer " T1 "x", "Bearer 0123456789abcde", "Bearer " T1 " x",
		"Bearer " T1 "\x01", "Token " T1, T1,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		who = (const char *)1;
		assert_int_equal(tokens_check(t, bad[i], &who), 0);
		assert_null(who);
	}
	assert_int_equal(tokens_check(t, NULL, &who), 0);
	assert_int_equal(tokens_check(NULL, "Bearer " T1, &who), 0);
	tokens_free(t);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_load(void **state)
{
	char dir[] = "/tmp/test_tokens.XXXXXX", path[300], want[400], err[400];
	struct tokens *t = NULL, *t2 = NULL;
	const char *who;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/tokens", dir);
	write_file(path, "ops:" T1 "\n", 0600);
	assert_int_equal(tokens_load(path, &t, err, sizeof(err)), 0);
	assert_int_equal(tokens_check(t, "Bearer " T1, &who), 1);
	assert_string_equal(tokens_path(t), path);
	write_file(path, "ops:" T1 "\n", 0640);
	assert_int_equal(tokens_load(path, &t2, err, sizeof(err)), 0);
	/* Same bytes, same digest; other bytes, another. */
	assert_memory_equal(tokens_digest(t), tokens_digest(t2), 32);
	tokens_free(t2);
	write_file(path, "ops:" T2 "\n", 0600);
	assert_int_equal(tokens_load(path, &t2, err, sizeof(err)), 0);
	assert_memory_not_equal(tokens_digest(t), tokens_digest(t2), 32);
	tokens_free(t2);
	tokens_free(t);

	write_file(path, "ops:" T1 "\n", 0644);
	assert_int_equal(tokens_load(path, &t, err, sizeof(err)), -1);
	assert_null(t);
	snprintf(want, sizeof(want), "%s:0: the token file is readable by other "
	         "users (mode 0644): chmod o-rw it", path);
	assert_string_equal(err, want);
	write_file(path, "ops:" T1 "\n", 0602);
	assert_int_equal(tokens_load(path, &t, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:0: the token file is writable by other "
	         "users (mode 0602): chmod o-rw it", path);
	assert_string_equal(err, want);
	write_file(path, "ops:" T1 "\nbad\n", 0600);
	assert_int_equal(tokens_load(path, &t, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: expected NAME:TOKEN", path);
	assert_string_equal(err, want);
	unlink(path);
	assert_int_equal(tokens_load(path, &t, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:0: cannot open the token file: No such "
	         "file or directory", path);
	assert_string_equal(err, want);
	assert_int_equal(tokens_load(dir, &t, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:0: the token file is not a regular file",
	         dir);
	assert_string_equal(err, want);
	write_file(path, "", 0600);
	assert_int_equal(truncate(path, TOKENS_MAX_FILE + 1), 0);
	assert_int_equal(tokens_load(path, &t, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:0: the token file is larger than %d "
	         "bytes", path, TOKENS_MAX_FILE);
	assert_string_equal(err, want);
	unlink(path);
	rmdir(dir);
}

static void test_error_json(void **state)
{
	char *s;

	(void)state;
	s = api_error_json(400, "certificates", "not \"PEM\"");
	assert_string_equal(s, "{\"error\":{\"status\":400,\"field\":"
	                    "\"certificates\",\"message\":\"not \\\"PEM\\\"\"}}");
	free(s);
	s = api_error_json(404, NULL, "not found");
	assert_string_equal(s, "{\"error\":{\"status\":404,\"message\":"
	                    "\"not found\"}}");
	free(s);
	/* Not UTF-8: still one document. */
	s = api_error_json(400, NULL, "bad \xff");
	assert_non_null(s);
	assert_non_null(strstr(s, "\"status\":400"));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_check_forms),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_error_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
