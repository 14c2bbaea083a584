/*
 * policy.c - host name normalization and matching (pure, no I/O, no
 * allocation).
 *
 * Host header forms handled (RFC 7230 5.4, RFC 3986 3.2.2):
 *   Api.Example.com        -> api.example.com
 *   api.example.com.       -> api.example.com     (one trailing dot)
 *   api.example.com:8443   -> api.example.com     (strip_port only)
 *   [2001:db8::1]:443      -> 2001:db8::1
 *   [::1]                  -> ::1
 *   1.2.3.4:80             -> 1.2.3.4
 * A bare IPv6 literal ("::1") is accepted only when strip_port is 0 (a
 * name from the configuration file or an SNI value): in a Host header
 * RFC 3986 requires the brackets, and without them "::1" cannot be told
 * apart from a name followed by a port, so it is rejected there.
 */
#include <string.h>

#include "policy.h"

static int policy_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int policy_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int policy_is_hex(int c)
{
	return policy_is_digit(c) || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* Bytes allowed in a (non-IPv6) host name. '*' is allowed so that
 * configuration patterns go through the same function; ':' only where the
 * caller allows bare IPv6 literals. */
static int policy_name_char(int c, int allow_colon)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    policy_is_digit(c))
		return 1;
	if (c == '.' || c == '-' || c == '_' || c == '*')
		return 1;
	return allow_colon && c == ':';
}

/* Validate a ":port" suffix [p, end): at least one digit, only digits,
 * at most 65535. */
static int policy_port_ok(const char *p, const char *end)
{
	unsigned long port = 0;

	if (p >= end || end - p > 5)
		return 0;
	for (; p < end; p++) {
		if (!policy_is_digit((unsigned char)*p))
			return 0;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	return port <= 65535;
}

/* See policy.h. */
int policy_normalize(const char *in, size_t len, int strip_port, char *out)
{
	const char *p, *end, *name, *name_end;
	size_t n, i;
	int is_ipv6 = 0;

	if (in == NULL || len == 0)
		return -1;
	p = in;
	end = in + len;

	if (*p == '[') {
		/* IPv6 literal: "[addr]" optionally followed by ":port". */
		const char *close = memchr(p, ']', len);

		if (close == NULL)
			return -1;
		name = p + 1;
		name_end = close;
		if (name == name_end)
			return -1;
		for (const char *q = name; q < name_end; q++) {
			if (!policy_is_hex((unsigned char)*q) && *q != ':' &&
			    *q != '.')
				return -1;
		}
		if (close + 1 < end) {
			if (!strip_port || close[1] != ':' ||
			    !policy_port_ok(close + 2, end))
				return -1;
		}
		is_ipv6 = 1;
	} else {
		name = p;
		name_end = end;
		if (strip_port) {
			const char *colon = memchr(p, ':', len);

			if (colon != NULL) {
				/* More than one ':' is a bare IPv6 literal (or
				 * garbage): refused in a Host header, see above. */
				if (memchr(colon + 1, ':',
				           (size_t)(end - colon - 1)) != NULL)
					return -1;
				if (!policy_port_ok(colon + 1, end))
					return -1;
				name_end = colon;
			}
		}
		if (!strip_port && memchr(name, ':', len) != NULL) {
			/* Only a bare IPv6 literal may hold colons here, so a
			 * "name:port" SNI is not taken for a name. */
			int colons = 0;

			for (const char *q = name; q < name_end; q++) {
				if (*q == ':')
					colons++;
				else if (!policy_is_hex((unsigned char)*q) &&
				         *q != '.')
					return -1;
			}
			if (colons < 2)
				return -1;
			is_ipv6 = 1;
		}
		for (const char *q = name; q < name_end; q++) {
			if (!policy_name_char((unsigned char)*q, !strip_port))
				return -1;
		}
	}

	n = (size_t)(name_end - name);
	/* One trailing dot names the same host (absolute form). */
	if (!is_ipv6 && n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > POLICY_HOST_MAX)
		return -1;
	if (!is_ipv6) {
		/* No empty label: ".a", "a..b", "a.." are not host names. */
		if (name[0] == '.' || name[n - 1] == '.')
			return -1;
		for (i = 1; i < n; i++) {
			if (name[i] == '.' && name[i - 1] == '.')
				return -1;
		}
	}
	for (i = 0; i < n; i++)
		out[i] = (char)policy_lower((unsigned char)name[i]);
	out[n] = '\0';
	return (int)n;
}

/* See policy.h. */
int policy_any_depth_match(const char *name, size_t len, const char *suffix,
                           size_t suffix_len)
{
	size_t dot;

	if (suffix_len == 0 || len < suffix_len + 2)
		return 0;
	dot = len - suffix_len - 1;
	if (name[dot] != '.' || name[dot - 1] == '.' || name[0] == '.')
		return 0;
	for (size_t i = 0; i < suffix_len; i++) {
		if (policy_lower((unsigned char)name[dot + 1 + i]) !=
		    policy_lower((unsigned char)suffix[i]))
			return 0;
	}
	return 1;
}

/* See policy.h. A one-label wildcard match is an any-depth match whose
 * part before the suffix holds no dot. */
int policy_wildcard_match(const char *name, size_t len, const char *suffix,
                          size_t suffix_len)
{
	return policy_any_depth_match(name, len, suffix, suffix_len) &&
	       memchr(name, '.', len - suffix_len - 1) == NULL;
}

/* See policy.h. Classic iterative glob with a single backtrack point: on
 * a mismatch after a '*', retry with that star absorbing one more
 * character. Only the latest star matters (an earlier star can absorb
 * anything the later one could), so this is O(len(pattern) * len(s)) in
 * the worst case and never recurses. */
int policy_glob_match(const char *pattern, const char *s, size_t len)
{
	const char *p = pattern;
	const char *star = NULL;   /* pattern position after the last '*' */
	size_t si = 0;
	size_t star_si = 0;         /* s position that star currently covers up to */

	if (pattern == NULL || (s == NULL && len > 0))
		return 0;
	while (si < len) {
		if (*p == '*') {
			while (*p == '*')
				p++;
			if (*p == '\0')
				return 1;
			star = p;
			star_si = si;
		} else if (*p != '\0' &&
		           policy_lower((unsigned char)*p) ==
		           policy_lower((unsigned char)s[si])) {
			p++;
			si++;
		} else if (star != NULL) {
			p = star;
			si = ++star_si;
		} else {
			return 0;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}
