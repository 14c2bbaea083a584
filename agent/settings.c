/*
 * settings.c - [agent] keys and the value syntax of the configuration
 * file (numbers, durations, sizes, names). Pure functions, no OpenSSL.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "settings.h"
#include "spop.h"

static const char *const log_level_names[LOG_LVL_COUNT] = {
	[LOG_LVL_ERROR] = "error",
	[LOG_LVL_WARNING] = "warning",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};
_Static_assert(sizeof(log_level_names) / sizeof(log_level_names[0]) ==
               LOG_LVL_COUNT, "log_level_names");

static const char *const log_format_names[LOG_FMT_COUNT] = {
	[LOG_FMT_TEXT] = "text",
	[LOG_FMT_JSON] = "json",
};
_Static_assert(sizeof(log_format_names) / sizeof(log_format_names[0]) ==
               LOG_FMT_COUNT, "log_format_names");

/* See settings.h. */
int settings_lookup_name(const char *const *names, int n, const char *s)
{
	for (int i = 0; i < n; i++) {
		if (names[i] != NULL && strcmp(names[i], s) == 0)
			return i;
	}
	return -1;
}

/* names[i], or "unknown" out of range. */
static const char *settings_name_at(const char *const *names, int n, int i)
{
	return i < 0 || i >= n ? "unknown" : names[i];
}

/* *out = the index of `s` in names[n]. Returns 0 or -1. */
static int settings_parse_name(const char *const *names, int n, const char *s,
                               int *out)
{
	int i = s == NULL ? -1 : settings_lookup_name(names, n, s);

	if (i < 0)
		return -1;
	*out = i;
	return 0;
}

const char *config_log_level_str(int lvl)
{
	return settings_name_at(log_level_names, LOG_LVL_COUNT, lvl);
}

int config_parse_log_level(const char *s, int *lvl)
{
	return settings_parse_name(log_level_names, LOG_LVL_COUNT, s, lvl);
}

const char *settings_log_format_str(int fmt)
{
	return settings_name_at(log_format_names, LOG_FMT_COUNT, fmt);
}

int settings_parse_log_format(const char *s, int *fmt)
{
	return settings_parse_name(log_format_names, LOG_FMT_COUNT, s, fmt);
}

/* See settings.h. */
int settings_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return -1;
	}
	*out = v;
	return 0;
}

/* Leading digits of `s` as a number; *rest points after them. */
static int config_parse_prefix_uint(const char *s, uint64_t max,
                                    uint64_t *out, const char **rest)
{
	uint64_t v = 0;
	const char *p = s;

	if (p == NULL || *p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > max)
			return -1;
	}
	*out = v;
	*rest = p;
	return 0;
}

/* See settings.h. */
int config_parse_duration(const char *s, unsigned int *ms)
{
	uint64_t v, mul;
	const char *unit;

	if (config_parse_prefix_uint(s, UINT_MAX, &v, &unit) == -1)
		return -1;
	if (*unit == '\0' || strcmp(unit, "ms") == 0)
		mul = 1;
	else if (strcmp(unit, "s") == 0)
		mul = 1000;
	else if (strcmp(unit, "m") == 0)
		mul = 60 * 1000;
	else if (strcmp(unit, "h") == 0)
		mul = 3600 * 1000;
	else
		return -1;
	if (v > UINT_MAX / mul)
		return -1;
	*ms = (unsigned int)(v * mul);
	return 0;
}

/* "262144", "256k", "64m" (binary multiples). */
int settings_parse_size(const char *s, uint64_t *bytes)
{
	uint64_t v, mul;
	const char *unit;

	if (config_parse_prefix_uint(s, UINT32_MAX, &v, &unit) == -1)
		return -1;
	if (*unit == '\0')
		mul = 1;
	else if (strcmp(unit, "k") == 0 || strcmp(unit, "K") == 0)
		mul = 1024;
	else if (strcmp(unit, "m") == 0 || strcmp(unit, "M") == 0)
		mul = 1024 * 1024;
	else
		return -1;
	*bytes = v * mul;
	return 0;
}

/* See settings.h. */
void config_agent_defaults(struct agent_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->threads = 0;
	s->max_frame_size = SPOP_DEFAULT_FRAME_SIZE;
	s->idle_timeout_ms = 30000;
	s->log_level = LOG_LVL_INFO;
	s->log_format = LOG_FMT_TEXT;
	s->max_connections = 1024;
	s->max_output_bytes = 256 * 1024;
	s->cache_entries = 10000;
	s->cache_ttl_ms = 60000;
	s->memo_ttl_ms = SETTINGS_MEMO_TTL_MS;
	s->verify_nice = 10;
	s->watch = 1;
	s->admin_max_body = 1024 * 1024;
}

const char *settings_state_dir(const struct agent_settings *s)
{
	return s->state_dir != NULL ? s->state_dir : SETTINGS_STATE_DIR;
}


/* See settings.h. One `if` per key, in the README's order; each message
 * says what would have been accepted. */
int settings_set_agent(struct agent_settings *a, const char *key,
                       const char *v, char *why, size_t whylen)
{
	uint64_t u;
	unsigned int ms;
	int lvl;

	if (strcmp(key, "threads") == 0 || strcmp(key, "verify-threads") == 0) {
		if (settings_parse_uint(v, 64, &u) == -1) {
			snprintf(why, whylen, "bad %s \"%s\" (0..64, 0 = one per "
			         "CPU)", key, v);
			return -1;
		}
		if (key[0] == 't')
			a->threads = (int)u;
		else
			a->verify_threads = (int)u;
	} else if (strcmp(key, "verify-nice") == 0) {
		if (settings_parse_uint(v, 19, &u) == -1) {
			snprintf(why, whylen, "bad verify-nice \"%s\" (0..19)", v);
			return -1;
		}
		a->verify_nice = (int)u;
	} else if (strcmp(key, "max-frame-size") == 0) {
		if (settings_parse_uint(v, 1048576, &u) == -1 ||
		    u < SPOP_MIN_FRAME_SIZE) {
			snprintf(why, whylen, "bad max-frame-size \"%s\" (%d..1048576)",
			         v, SPOP_MIN_FRAME_SIZE);
			return -1;
		}
		a->max_frame_size = (uint32_t)u;
	} else if (strcmp(key, "idle-timeout") == 0) {
		if (config_parse_duration(v, &ms) == -1 || ms == 0) {
			snprintf(why, whylen, "bad idle-timeout \"%s\" (a duration > 0: "
			         "500ms, 30s, 2m, 1h)", v);
			return -1;
		}
		a->idle_timeout_ms = ms;
	} else if (strcmp(key, "log-level") == 0) {
		if (config_parse_log_level(v, &lvl) == -1) {
			snprintf(why, whylen, "bad log-level \"%s\" (error, warning, "
			         "info, debug)", v);
			return -1;
		}
		a->log_level = lvl;
	} else if (strcmp(key, "log-format") == 0) {
		if (settings_parse_log_format(v, &lvl) == -1) {
			snprintf(why, whylen, "bad log-format \"%s\" (text, json)", v);
			return -1;
		}
		a->log_format = lvl;
	} else if (strcmp(key, "max-connections") == 0) {
		if (settings_parse_uint(v, 1000000, &u) == -1 || u < 1) {
			snprintf(why, whylen, "bad max-connections \"%s\" (1..1000000)",
			         v);
			return -1;
		}
		a->max_connections = (unsigned int)u;
	} else if (strcmp(key, "max-output") == 0) {
		if (settings_parse_size(v, &u) == -1 || u < 4096 ||
		    u > 64u * 1024 * 1024) {
			snprintf(why, whylen, "bad max-output \"%s\" (bytes, k or m "
			         "suffix, 4k..64m)", v);
			return -1;
		}
		a->max_output_bytes = (size_t)u;
	} else if (strcmp(key, "cache-entries") == 0) {
		if (settings_parse_uint(v, 10000000, &u) == -1) {
			snprintf(why, whylen, "bad cache-entries \"%s\" (0..10000000, "
			         "0 disables the cache)", v);
			return -1;
		}
		a->cache_entries = (unsigned int)u;
	} else if (strcmp(key, "cache-ttl") == 0) {
		/* 0 would be ambiguous (never or always expire?): the cache
		 * is turned off with cache-entries = 0 instead. */
		if (config_parse_duration(v, &ms) == -1 || ms == 0) {
			snprintf(why, whylen, "bad cache-ttl \"%s\" (a duration > 0; "
			         "cache-entries = 0 disables the cache)", v);
			return -1;
		}
		a->cache_ttl_ms = ms;
	} else if (strcmp(key, "memo-ttl") == 0) {
		if (config_parse_duration(v, &ms) == -1 ||
		    ms > SETTINGS_MEMO_TTL_MAX_MS) {
			snprintf(why, whylen, "bad memo-ttl \"%s\" (a duration up to "
			         "1h: 500ms, 1s, 10s; 0 disables the memo)", v);
			return -1;
		}
		a->memo_ttl_ms = ms;
	} else if (strcmp(key, "watch") == 0) {
		if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
			snprintf(why, whylen, "bad watch \"%s\" (on, off)", v);
			return -1;
		}
		a->watch = v[1] == 'n';
	} else if (strcmp(key, "metrics-policy-label") == 0) {
		if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
			snprintf(why, whylen, "bad metrics-policy-label \"%s\" (on or "
			         "off)", v);
			return -1;
		}
		a->metrics_policy_label = v[1] == 'n';
	} else if (strcmp(key, "admin-max-body") == 0) {
		if (settings_parse_size(v, &u) == -1 || u < 1024 ||
		    u > 64u * 1024 * 1024) {
			snprintf(why, whylen, "bad admin-max-body \"%s\" (bytes, k or "
			         "m suffix, 1k..64m)", v);
			return -1;
		}
		a->admin_max_body = (size_t)u;
	} else {
		return 1;
	}
	return 0;
}
