/*
 * tokens.c - admin API tokens: the token file and the bearer check.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "tokens.h"

struct token_entry {
	char name[TOKENS_NAME_MAX + 1];
	uint8_t digest[32];
	int line;
};

struct tokens {
	struct token_entry *e;
	size_t n;
	uint8_t file_digest[32];
	char *path;
};

static int sha256(const void *p, size_t n, uint8_t out[32])
{
	unsigned int len = 0;
	int ok = EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32;

	ERR_clear_error();
	return ok ? 0 : -1;
}

static int name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

/* RFC 6750 b64token is narrower; we take any visible ASCII character. */
static int token_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

static int blank(char c)
{
	return c == ' ' || c == '\t';
}

void tokens_free(struct tokens *t)
{
	if (t == NULL)
		return;
	/* Digests of secrets: not secrets, but no reason to leave them. */
	if (t->e != NULL)
		OPENSSL_cleanse(t->e, t->n * sizeof(*t->e));
	free(t->e);
	free(t->path);
	free(t);
}

/* One non-blank, non-comment line [p, end) at `line`: checked and added
 * to t. Returns 0, or -1 with the message (without the PATH:LINE prefix)
 * in why. The token is never copied into a message. */
static int add_line(struct tokens *t, const char *p, const char *end,
                    int line, char *why, size_t whylen)
{
	const char *colon = memchr(p, ':', (size_t)(end - p));
	size_t nlen, tlen;
	struct token_entry *e;

	if (colon == NULL) {
		snprintf(why, whylen, "expected NAME:TOKEN");
		return -1;
	}
	nlen = (size_t)(colon - p);
	tlen = (size_t)(end - colon - 1);
	for (size_t i = 0; i < nlen; i++)
		if (!name_char((unsigned char)p[i]))
			nlen = 0;
	if (nlen == 0 || nlen > TOKENS_NAME_MAX) {
		snprintf(why, whylen, "bad token name (letters, digits, '.', '-', "
		         "'_', 1 to %d characters)", TOKENS_NAME_MAX);
		return -1;
	}
	if (tlen < TOKENS_MIN_LEN || tlen > TOKENS_MAX_LEN) {
		snprintf(why, whylen, "the token of \"%.*s\" has %zu characters "
		         "(%d to %d)", (int)nlen, p, tlen, TOKENS_MIN_LEN,
		         TOKENS_MAX_LEN);
		return -1;
	}
	for (size_t i = 0; i < tlen; i++)
		if (!token_char((unsigned char)colon[1 + i])) {
			snprintf(why, whylen, "the token of \"%.*s\" has a blank or a "
			         "character that is not printable ASCII", (int)nlen, p);
			return -1;
		}
	if (t->n >= TOKENS_MAX) {
		snprintf(why, whylen, "too many tokens (at most %d)", TOKENS_MAX);
		return -1;
	}
	e = realloc(t->e, (t->n + 1) * sizeof(*e));
	if (e == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	t->e = e;
	e = &t->e[t->n];
	memcpy(e->name, p, nlen);
	e->name[nlen] = '\0';
	e->line = line;
	if (sha256(colon + 1, tlen, e->digest) != 0) {
		snprintf(why, whylen, "SHA-256 failed");
		return -1;
	}
	/* Load time, not a check: plain comparisons are fine here. */
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->e[i].name, e->name) == 0) {
			snprintf(why, whylen, "duplicate token name \"%s\" (first on "
			         "line %d)", e->name, t->e[i].line);
			return -1;
		}
		if (memcmp(t->e[i].digest, e->digest, 32) == 0) {
			snprintf(why, whylen, "the token of \"%s\" is that of \"%s\" "
			         "(line %d): every client needs its own", e->name,
			         t->e[i].name, t->e[i].line);
			return -1;
		}
	}
	t->n++;
	return 0;
}

/* See tokens.h. */
int tokens_parse(const char *text, size_t len, const char *path,
                 struct tokens **out, char *err, size_t errlen)
{
	struct tokens *t = calloc(1, sizeof(*t));
	const char *p = text, *end = text + len;
	char why[256];
	int line = 0;

	*out = NULL;
	if (path == NULL)
		path = "";
	if (t == NULL || (t->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "%s:0: out of memory", path);
		tokens_free(t);
		return -1;
	}
	if (sha256(text, len, t->file_digest) != 0) {
		snprintf(err, errlen, "%s:0: SHA-256 failed", path);
		tokens_free(t);
		return -1;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end, *b = p, *e = le;

		line++;
		if (memchr(p, '\0', (size_t)(le - p)) != NULL) {
			snprintf(err, errlen, "%s:%d: NUL byte", path, line);
			tokens_free(t);
			return -1;
		}
		while (b < e && blank(*b))
			b++;
		while (e > b && (blank(e[-1]) || e[-1] == '\r'))
			e--;
		if (b < e && *b != '#' &&
		    add_line(t, b, e, line, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s:%d: %s", path, line, why);
			tokens_free(t);
			return -1;
		}
		p = nl != NULL ? nl + 1 : end;
	}
	*out = t;
	return 0;
}

/* See tokens.h. */
int tokens_load(const char *path, struct tokens **out, char *err,
                size_t errlen)
{
	struct stat st;
	char *text = NULL;
	ssize_t got;
	size_t len = 0;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		snprintf(err, errlen, "%s:0: cannot open the token file: %s", path,
		         strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s:0: the token file is not a regular file",
		         path);
		close(fd);
		return -1;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		snprintf(err, errlen, "%s:0: the token file is %s by other users "
		         "(mode %04o): chmod o-rw it", path,
		         st.st_mode & S_IROTH ? "readable" : "writable",
		         (unsigned int)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	if (st.st_size > TOKENS_MAX_FILE ||
	    (text = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "%s:0: the token file is larger than %d bytes",
		         path, TOKENS_MAX_FILE);
		close(fd);
		return -1;
	}
	/* Read one byte more than fstat said, so a file growing meanwhile is
	 * seen as too large rather than cut. */
	while ((got = read(fd, text + len, (size_t)st.st_size + 1 - len)) > 0) {
		len += (size_t)got;
		if (len > (size_t)st.st_size)
			break;
	}
	if (got == -1 || len > (size_t)st.st_size) {
		snprintf(err, errlen, "%s:0: cannot read the token file: %s", path,
		         got == -1 ? strerror(errno) : "it changed while read");
		close(fd);
		OPENSSL_cleanse(text, len);
		free(text);
		return -1;
	}
	close(fd);
	rc = tokens_parse(text, len, path, out, err, errlen);
	OPENSSL_cleanse(text, len);
	free(text);
	return rc;
}

size_t tokens_count(const struct tokens *t)
{
	return t != NULL ? t->n : 0;
}

const uint8_t *tokens_digest(const struct tokens *t)
{
	return t->file_digest;
}

const char *tokens_path(const struct tokens *t)
{
	return t->path;
}

/* See tokens.h. */
int tokens_check(const struct tokens *t, const char *hdr, const char **name)
{
	uint8_t d[32];
	size_t len, idx = 0, hit = 0;

	*name = NULL;
	if (t == NULL || hdr == NULL || strncasecmp(hdr, "Bearer", 6) != 0 ||
	    hdr[6] != ' ')
		return 0;
	hdr += 6;
	while (*hdr == ' ')
		hdr++;
	len = strlen(hdr);
	while (len > 0 && blank(hdr[len - 1]))
		len--;
	if (len == 0 || len > TOKENS_MAX_LEN)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!token_char((unsigned char)hdr[i]))
			return 0;
	if (sha256(hdr, len, d) != 0)
		return 0;
	/* Every entry is compared, the match selected without a branch. */
	for (size_t i = 0; i < t->n; i++) {
		size_t m = (size_t)(CRYPTO_memcmp(d, t->e[i].digest, 32) == 0);
		size_t mask = (size_t)0 - m;

		idx = (idx & ~mask) | (i & mask);
		hit |= m;
	}
	OPENSSL_cleanse(d, sizeof(d));
	if (!hit)
		return 0;
	*name = t->e[idx].name;
	return 1;
}
