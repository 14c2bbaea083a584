/*
 * settings.h - the [agent] settings, their defaults and the value syntax
 * shared by every section (numbers, durations, sizes, names). Pure: no
 * OpenSSL, no I/O.
 */
#ifndef MTLS_SETTINGS_H
#define MTLS_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#define SETTINGS_WUR __attribute__((warn_unused_result))

#define CONFIG_MAX_LISTEN 16

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARNING,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
	LOG_LVL_COUNT
};

enum log_format {
	LOG_FMT_TEXT = 0,       /* TIME [LEVEL] MESSAGE */
	LOG_FMT_JSON,           /* {"time":...,"level":...,"msg":...} */
	LOG_FMT_COUNT
};

/* [agent] section. Command-line options override these. */
struct agent_settings {
	char *listen[CONFIG_MAX_LISTEN];   /* "127.0.0.1:12345", "[::1]:1", "unix:/p" */
	size_t n_listen;
	int threads;                        /* 0: number of CPUs */
	int verify_threads;                 /* 0: number of CPUs */
	int verify_nice;                    /* nice of the verify threads, default 10 */
	uint32_t max_frame_size;            /* default SPOP_DEFAULT_FRAME_SIZE */
	unsigned int idle_timeout_ms;       /* default 30000 */
	int log_level;                      /* enum log_level, default INFO */
	int log_format;                     /* enum log_format, default TEXT */
	unsigned int max_connections;       /* default 1024 */
	size_t max_output_bytes;            /* per connection, default 256 KiB */
	unsigned int cache_entries;         /* 0 disables the verdict cache */
	unsigned int cache_ttl_ms;
	unsigned int memo_ttl_ms;           /* memo_ttl sent to HAProxy, default
	                                       1000; 0: never sent */
	int watch;                          /* reload on file changes, default 1 */
	char *admin_listen[CONFIG_MAX_LISTEN]; /* admin HTTP: same syntax as listen */
	size_t n_admin_listen;
	int metrics_policy_label;           /* verdict counter per policy: 0/1 */
	char *state_dir;                    /* malloc'd, absolute or relative to
	                                       the config's directory; NULL: the
	                                       default, SETTINGS_STATE_DIR */
	char *admin_token_file;             /* malloc'd like state_dir; NULL:
	                                       none (/v1 on unix sockets only) */
	size_t admin_max_body;              /* request body limit, default 1 MiB */
};

#define SETTINGS_STATE_DIR "/var/lib/mtls-spoa"

/* memo-ttl: the default, and the longest accepted (README: memo-ttl). */
#define SETTINGS_MEMO_TTL_MS 1000
#define SETTINGS_MEMO_TTL_MAX_MS (3600 * 1000)

/* The state directory of `s`: state_dir, else SETTINGS_STATE_DIR. */
const char *settings_state_dir(const struct agent_settings *s);

/* Fill `s` with defaults. */
void config_agent_defaults(struct agent_settings *s);

/* Set [agent] key `key` to `v`. Returns 0, 1 for an unknown key, or -1
 * with what is wrong in why[whylen]. `listen` and `admin-listen` are not
 * handled here (their syntax belongs to addr.c and their storage to the
 * caller). */
SETTINGS_WUR int settings_set_agent(struct agent_settings *s, const char *key,
                                    const char *v, char *why, size_t whylen);

/* Parse a duration such as "30s", "500ms", "2m", "1h" or a bare number of
 * milliseconds. Returns 0 or -1. */
SETTINGS_WUR int config_parse_duration(const char *s, unsigned int *ms);

/* Strict unsigned decimal: digits only, no sign or spaces, <= max. */
SETTINGS_WUR int settings_parse_uint(const char *s, uint64_t max, uint64_t *out);

/* "262144", "256k", "64m" (binary multiples). */
SETTINGS_WUR int settings_parse_size(const char *s, uint64_t *bytes);

/* Index of `s` in `names` (n entries, NULL entries skipped), or -1. */
int settings_lookup_name(const char *const *names, int n, const char *s);

const char *config_log_level_str(int lvl);
SETTINGS_WUR int config_parse_log_level(const char *s, int *lvl);

const char *settings_log_format_str(int fmt);
SETTINGS_WUR int settings_parse_log_format(const char *s, int *fmt);

#endif /* MTLS_SETTINGS_H */
