/*
 * tokens.h - the admin API's bearer tokens: the `[agent] admin-token-file`
 * (one NAME:TOKEN per line) and the check of an Authorization header
 * against it.
 *
 * Only SHA-256 digests of the tokens are kept. A check hashes the
 * presented token and compares it with every stored digest
 * (CRYPTO_memcmp, no early exit), so neither the position of a match
 * nor the length of a common prefix shows in the time it takes.
 * A loaded set is immutable: any thread may check against it.
 */
#ifndef MTLS_TOKENS_H
#define MTLS_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#define TOKENS_WUR __attribute__((warn_unused_result))

#define TOKENS_NAME_MAX 64
#define TOKENS_MIN_LEN 16
#define TOKENS_MAX_LEN 256
#define TOKENS_MAX 1024             /* entries per file */
#define TOKENS_MAX_FILE (1024 * 1024)

struct tokens;

/* Parse the text of a token file (`len` bytes, NUL not needed): lines
 * `NAME:TOKEN`, `#` comments and blank lines ignored, surrounding blanks
 * and a final CR stripped. NAME: letters, digits, `.`, `-`, `_`
 * (1..TOKENS_NAME_MAX), unique; TOKEN: TOKENS_MIN_LEN..TOKENS_MAX_LEN
 * printable non-space ASCII characters, unique. `path` names the file in
 * errors. Returns 0 and a new set in *out (possibly empty: then every
 * check fails), or -1 with "PATH:LINE: what is wrong" in err. */
TOKENS_WUR int tokens_parse(const char *text, size_t len, const char *path,
                            struct tokens **out, char *err, size_t errlen);

/* Read `path` (a regular file of at most TOKENS_MAX_FILE bytes, without
 * permissions for "other": the file holds secrets) and parse it. Same
 * results as tokens_parse; a file that cannot be used is "PATH:0: ...". */
TOKENS_WUR int tokens_load(const char *path, struct tokens **out, char *err,
                           size_t errlen);

void tokens_free(struct tokens *t);

/* How many tokens `t` holds. */
size_t tokens_count(const struct tokens *t);

/* SHA-256 of the bytes the set was parsed from (change detection). */
const uint8_t *tokens_digest(const struct tokens *t);

/* The path the set was loaded from ("" for tokens_parse's `path` NULL). */
const char *tokens_path(const struct tokens *t);

/* Check an Authorization header value (`hdr`, NULL when absent) against
 * `t`: RFC 6750 2.1 `Bearer 1*SP TOKEN`, the scheme case-insensitive
 * (RFC 9110 11.1), trailing blanks ignored. Returns 1 and the token's
 * NAME in *name (owned by `t`) when the token is one of the set, 0
 * otherwise (absent, another scheme, malformed, unknown). */
int tokens_check(const struct tokens *t, const char *hdr, const char **name);

#endif /* MTLS_TOKENS_H */
