/*
 * config.h - the agent configuration: [agent] settings, [ca NAME] trust
 * bundles and [host PATTERN] policies, loaded from an INI file (libinih).
 *
 * A struct config is immutable once loaded and shared read-only by every
 * worker thread; a reload builds a new one beside it (see server.c).
 */
#ifndef MTLS_CONFIG_H
#define MTLS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#define CONFIG_WUR __attribute__((warn_unused_result))

#define CONFIG_DEFAULT_PATH "/etc/mtls-spoa/mtls-spoa.conf"
#define CONFIG_MAX_LISTEN 16
#define CONFIG_ERR_LEN 512

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARNING,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
	LOG_LVL_COUNT
};

enum policy_mode {
	MODE_ENFORCE = 0,
	MODE_OPTIONAL,
	MODE_LOG,
	MODE_OFF,
	MODE_DENY,      /* refuse every request, whatever the certificate */
	MODE_COUNT
};

enum policy_purpose {
	PURPOSE_CLIENT = 0,  /* EKU, when present, must include clientAuth */
	PURPOSE_ANY,
	PURPOSE_COUNT
};

enum crl_check {
	CRL_CHECK_DEFAULT = 0, /* leaf when any of the host's CAs has CRLs, else
	                          none; then only for leaves whose issuer has one */
	CRL_CHECK_NONE,
	CRL_CHECK_LEAF,
	CRL_CHECK_CHAIN,
	CRL_CHECK_COUNT
};

enum policy_kind {
	POLICY_EXACT = 0,     /* api.example.com */
	POLICY_WILDCARD,      /* *.example.com: exactly one label */
	POLICY_DEFAULT,       /* [host *] */
	POLICY_ANY_DEPTH,     /* **.example.com: one or more labels */
	POLICY_KIND_COUNT
};

/* [agent] section. Command-line options override these. */
struct agent_settings {
	char *listen[CONFIG_MAX_LISTEN];   /* "127.0.0.1:12345", "[::1]:1", "unix:/p" */
	size_t n_listen;
	int threads;                        /* 0: number of CPUs */
	uint32_t max_frame_size;            /* default SPOP_DEFAULT_FRAME_SIZE */
	unsigned int idle_timeout_ms;       /* default 30000 */
	int log_level;                      /* enum log_level, default INFO */
	unsigned int max_connections;       /* default 1024 */
	size_t max_output_bytes;            /* per connection, default 256 KiB */
	unsigned int cache_entries;         /* 0 disables the verdict cache */
	unsigned int cache_ttl_ms;
};

/* [ca NAME]: a PEM bundle of CA certificates (each one a trust anchor) and
 * optional CRLs.
 *
 * A CRL describes the certificates of its issuer wherever that issuer is
 * listed, so after loading `crls` holds the section's own `crl =` files
 * (the first n_own_crls entries) and then every CRL of another section
 * issued by one of this section's certificates, or by a certificate one
 * of them issued (see cfg_share_crls() in config.c). */
struct ca_entry {
	char *name;
	char *file;                 /* resolved path */
	STACK_OF(X509) *certs;      /* owned */
	STACK_OF(X509_CRL) *crls;   /* owned references, may be empty */
	size_t n_own_crls;          /* from this section's `crl =` lines */
	time_t crl_next_update;     /* earliest nextUpdate of `crls`, 0 if none */
};

/* [host PATTERN] */
struct host_policy {
	char *pattern;              /* as written, for the `policy` variable */
	char *name;                 /* normalized: lower case, no trailing dot;
	                               for wildcards the part after "*." or
	                               "**." */
	enum policy_kind kind;
	enum policy_mode mode;
	enum policy_purpose purpose;
	enum crl_check crl_check;   /* resolved: never CRL_CHECK_DEFAULT after load */
	int crl_check_auto;         /* crl-check was not written: a certificate
	                               whose issuer has no CRL skips the check */
	int verify_depth;           /* default 5 */
	struct ca_entry **cas;      /* borrowed from struct config */
	size_t n_cas;
	char **identities;          /* allow-identity globs */
	size_t n_identities;
	uint8_t (*pins)[32];        /* pin-sha256 values */
	size_t n_pins;
	X509_STORE *store;          /* built by verify_policy_prepare() */
};

struct config_index;  /* private to config.c: hash tables for lookups */

struct config {
	char *path;
	struct agent_settings agent;
	struct ca_entry *cas;       /* n_cas entries */
	size_t n_cas;
	struct host_policy *hosts;  /* n_hosts entries, in file order */
	size_t n_hosts;
	struct host_policy *default_policy;   /* [host *] or NULL */
	struct config_index *index;
	char **warnings;            /* "FILE:LINE: warning: ..." found at load */
	size_t n_warnings;
	uint64_t generation;        /* set by whoever installs it */
};

/* Fill `s` with defaults. */
void config_agent_defaults(struct agent_settings *s);

/* Load and validate `path` completely: every file read, every certificate
 * a CA, every reference resolved, every policy's X509_STORE built. On error
 * returns -1 and writes "FILE:LINE: what is wrong" into err (the caller's
 * buffer, CONFIG_ERR_LEN is enough). Relative paths resolve against the
 * directory of `path`. */
CONFIG_WUR int config_load(const char *path, struct config **out,
                           char *err, size_t errlen);

/* A loaded configuration may carry warnings (cfg->warnings): things that
 * load and work but that the operator should look at, such as one CA
 * certificate listed under two [ca] sections with different CRLs. --check
 * prints them. */

/* Same, from a string; `path` names it in errors and anchors relative paths
 * (its directory). For tests. */
CONFIG_WUR int config_load_string(const char *text, const char *path,
                                  struct config **out, char *err, size_t errlen);

void config_free(struct config *cfg);

/* Look up the policy for an already normalized host name (see
 * policy_normalize()): exact, then one-label wildcard "*.suffix", then
 * any-depth wildcard "**.suffix" with the longest matching suffix, then
 * the default [host *]. One hash lookup per label at most. Returns NULL
 * when none applies. */
const struct host_policy *config_lookup(const struct config *cfg,
                                        const char *name, size_t len);

/* Parse a duration such as "30s", "500ms", "2m", "1h" or a bare number of
 * milliseconds. Returns 0 or -1. */
CONFIG_WUR int config_parse_duration(const char *s, unsigned int *ms);

const char *config_mode_str(enum policy_mode m);
const char *config_log_level_str(int lvl);
CONFIG_WUR int config_parse_log_level(const char *s, int *lvl);

#endif /* MTLS_CONFIG_H */
