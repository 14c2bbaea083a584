/*
 * fuzz_tokens.c - the admin token file parser and the Authorization
 * header check (tokens.c) on arbitrary bytes. The input is split at its
 * first "\n--\n": before it, a token file; after it, a header value.
 *   - tokens_parse either fails with a "tok:LINE: " message and no set,
 *     or gives a set whose count is at most the number of lines;
 *   - the header is checked against that set and against a fixed one:
 *     a match names an entry, and against the fixed set happens exactly
 *     when the header is "Bearer" (any case), 1+ spaces, the token and
 *     optional trailing blanks.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tokens.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIXED "fixed-token-0123456789"

static int expected(const char *h)
{
	size_t n;

	if (strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	while (*h == ' ')
		h++;
	n = strlen(FIXED);
	if (strncmp(h, FIXED, n) != 0)
		return 0;
	for (h += n; *h == ' ' || *h == '\t'; h++)
		;
	return *h == '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tokens *fixed;
	const char *text = (const char *)data, *sep;
	size_t tlen = size, lines = 1;
	struct tokens *t = NULL;
	const char *name;
	char err[512], *hdr;
	int rc;
	static const char fixed_text[] = "a:" FIXED "\nb:other-token-0123456789\n";

	if (fixed == NULL && tokens_parse(fixed_text, sizeof(fixed_text) - 1,
	                                  "fixed", &fixed, err, sizeof(err)) != 0)
		abort();
	sep = memmem(text, size, "\n--\n", 4);
	if (sep != NULL)
		tlen = (size_t)(sep - text);
	for (size_t i = 0; i < tlen; i++)
		lines += text[i] == '\n';
	rc = tokens_parse(text, tlen, "tok", &t, err, sizeof(err));
	if (rc != 0 && (t != NULL || strncmp(err, "tok:", 4) != 0))
		abort();
	if (rc == 0 && (t == NULL || tokens_count(t) > lines))
		abort();
	if (sep != NULL) {
		size_t hlen = size - tlen - 4;

		hdr = malloc(hlen + 1);
		if (hdr == NULL)
			abort();
		memcpy(hdr, sep + 4, hlen);
		hdr[hlen] = '\0';
		if (tokens_check(t, hdr, &name) == 1 && name == NULL)
			abort();
		rc = tokens_check(fixed, hdr, &name);
		if (rc != expected(hdr) || (rc == 1 && strcmp(name, "a") != 0))
			abort();
		free(hdr);
	}
	tokens_free(t);
	return 0;
}
