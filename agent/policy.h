/*
 * policy.h - host name normalization and matching (pure, no I/O).
 */
#ifndef MTLS_POLICY_H
#define MTLS_POLICY_H

#include <stddef.h>

/* Longest host name we consider (RFC 1035: 253 characters + dot). */
#define POLICY_HOST_MAX 255

/* Normalize a host name for lookup: lower case, trailing dot removed, and
 * when `strip_port` is set a ":port" suffix removed (a Host header), with
 * IPv6 literals "[::1]:443" -> "::1" and "[::1]" -> "::1". Writes a
 * NUL-terminated name into `out` (POLICY_HOST_MAX + 1 bytes) and returns
 * its length, or -1 if the name is empty, too long or contains bytes that
 * cannot appear in a host name (control characters, spaces, '/', '@'...). */
int policy_normalize(const char *in, size_t len, int strip_port, char *out);

/* 1 if `name` (normalized) matches `suffix` as a one-label wildcard, i.e.
 * name == "<label>." + suffix with a non-empty label holding no dot. */
int policy_wildcard_match(const char *name, size_t len, const char *suffix,
                          size_t suffix_len);

/* 1 if `name` (normalized) matches `suffix` as an any-depth wildcard
 * ("**.suffix"), i.e. name == "<labels>." + suffix with one or more
 * non-empty labels; name == suffix does not match. */
int policy_any_depth_match(const char *name, size_t len, const char *suffix,
                           size_t suffix_len);

/* Glob match for allow-identity: '*' matches any run of characters
 * (including none and including dots), everything else is compared
 * case-insensitively. 1 on match. */
int policy_glob_match(const char *pattern, const char *s, size_t len);

#endif /* MTLS_POLICY_H */
