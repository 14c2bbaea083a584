/*
 * fuzz_logjson.c - JSON log lines (log.c) from arbitrary message bytes:
 * every line, at every buffer size the first input byte picks, must parse
 * (jansson, an independent parser) as one object with exactly the fields
 * time, level and msg, end with a single newline, and, when the message
 * is valid UTF-8 without control characters and fits, give it back
 * unchanged.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether escaping `s` would only add quotes' and backslashes' escapes,
 * so that the decoded string equals the input: valid UTF-8, no control
 * characters, no NUL. Uses jansson's own UTF-8 check. */
static int plain(const char *s, size_t n)
{
	json_t *j;
	int ok;

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	j = json_stringn(s, n);
	ok = j != NULL;
	json_decref(j);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct timespec ts = { 1795000000, 999999999 };
	char line[LOG_LINE_MAX];
	const char *msg;
	size_t cap, n, mlen;
	json_error_t jerr;
	json_t *j, *v;

	if (size == 0)
		return 0;
	/* 128..LOG_LINE_MAX, small sizes most often: they cut. */
	cap = 128 + (size_t)data[0] * (size_t)data[0] * (LOG_LINE_MAX - 128) /
	      (255 * 255);
	msg = (const char *)data + 1;
	mlen = size - 1;
	n = log_format_line(line, cap, LOG_FMT_JSON, (int)(size % LOG_LVL_COUNT),
	                    &ts, msg, mlen);
	if (n > cap || n < 2 || line[n - 1] != '\n' || memchr(line, '\n', n - 1))
		abort();
	j = json_loadb(line, n - 1, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (j == NULL || !json_is_object(j) || json_object_size(j) != 3 ||
	    !json_is_string(json_object_get(j, "time")) ||
	    !json_is_string(json_object_get(j, "level")) ||
	    !json_is_string(v = json_object_get(j, "msg")))
		abort();
	/* Each input byte becomes at most 6 output bytes. */
	if (plain(msg, mlen) && mlen * 6 + 100 < cap &&
	    (json_string_length(v) != mlen ||
	     memcmp(json_string_value(v), msg, mlen) != 0))
		abort();
	json_decref(j);
	return 0;
}
