/*
 * config.h - one configuration generation: the [agent] settings, the CA
 * entries, the trust policies and the host policies of a file, and the
 * index that finds a host's policy.
 *
 * A generation is immutable once loaded and shared read-only by every
 * worker thread. Its CA entries, trust policies and host policies are
 * reference-counted objects: a reload builds a new generation beside the
 * live one and reuses every object whose inputs did not change, so
 * replacing one CA or one host builds only what depends on it.
 *
 * Modules: settings.c ([agent] keys and value syntax), ca.c (CA files),
 * crl.c (CRLs), trust.c (stores and the trust decision), hosts.c (host
 * patterns and the index), addr.c (listen addresses). This file reads the
 * INI file and puts them together.
 */
#ifndef MTLS_CONFIG_H
#define MTLS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ca.h"
#include "hosts.h"
#include "settings.h"
#include "storecfg.h"
#include "trust.h"

#define CONFIG_WUR __attribute__((warn_unused_result))

struct tokens;

#define CONFIG_DEFAULT_PATH "/etc/mtls-spoa/mtls-spoa.conf"
#define CONFIG_ERR_LEN 512

/* Limits of [ca] names and of what one [host] lists, shared by the file
 * loader and the tenant API (which checks them the same way). */
#define CONFIG_MAX_CA_NAME 64
#define CONFIG_MAX_IDENTITY 1024          /* bytes of one allow-identity */
#define CONFIG_MAX_HOST_CAS 64            /* CA names on one host */
#define CONFIG_MAX_PER_HOST 1024          /* identities, pins per host */

/* What a load built and what it took over from the previous generation. */
struct config_stats {
	size_t cas_built, cas_reused;
	size_t trusts_built, trusts_reused;
	size_t hosts_built, hosts_reused;
	double load_ms;
};

/* Where a [ca] or [host] section was: cfg->sources[source], line. */
struct config_origin {
	size_t source;
	int line;
};

struct config_crls {
	struct crl **crls;
	size_t n;
};

/* The API's state file inside the state directory (see api.h). */
#define CONFIG_API_FILE "api.conf"

/* A file the generation was read from (for status and change watching). */
struct config_source {
	char *path;
	uint8_t sha256[32];
};

/* STATE/api.conf: 10,000 hosts with a few keys each take about 1 MiB. */
#define CONFIG_MAX_STATE (32 * 1024 * 1024)

struct config {
	char *path;
	struct config_source *sources; /* the INI files read, the main one first,
	                                  then the included ones in order */
	size_t n_sources;
	char **includes;            /* `include` globs, resolved */
	size_t n_includes;
	char **include_dirs;        /* directories the globs read */
	size_t n_include_dirs;
	struct agent_settings agent;
	struct store_settings store;  /* [store] (storecfg.h) */
	struct ca_entry **cas;      /* n_cas references, in file order */
	struct config_origin *ca_origin;   /* n_cas: where each was defined */
	struct config_crls *ca_eff;        /* n_cas: the CRLs that describe each
	                                      CA's certificates, wherever listed
	                                      (borrowed from the CA entries) */
	size_t n_cas;
	struct host_policy **hosts; /* n_hosts references, in file order */
	struct config_origin *host_origin; /* n_hosts */
	size_t n_hosts;
	char *state_dir;            /* the effective state directory */
	char *api_path;             /* state_dir/api.conf */
	size_t api_source;          /* sources index of api_path, SIZE_MAX when
	                               it was not read (missing, string load) */
	struct trust_policy **trusts; /* the distinct trust policies */
	size_t n_trusts;
	const struct host_policy *default_policy;   /* [host *] or NULL */
	struct hosts_index *index;
	char **warnings;            /* "FILE:LINE: warning: ..." found at load */
	size_t n_warnings;
	struct tokens *tokens;      /* admin-token-file's, or NULL (tokens.h) */
	struct config_stats stats;
	uint64_t generation;        /* set by whoever installs it */
};

/* Load and validate `path` completely: every file read, every certificate
 * a CA, every reference resolved, every trust store built. On error
 * returns -1 and writes "FILE:LINE: what is wrong" into err (the caller's
 * buffer, CONFIG_ERR_LEN is enough). Relative paths resolve against the
 * directory of `path`. */
CONFIG_WUR int config_load(const char *path, struct config **out,
                           char *err, size_t errlen);

/* The same, reusing every object of `prev` (may be NULL) whose inputs are
 * unchanged: CA entries whose files have the same bytes, trust policies
 * over the same CA and CRL objects and settings, host policies with the
 * same pattern, mode and trust policy. `prev` is only read. */
CONFIG_WUR int config_reload(const char *path, const struct config *prev,
                             struct config **out, char *err, size_t errlen);

/* A loaded configuration may carry warnings (cfg->warnings): things that
 * load and work but that the operator should look at, such as a CRL past
 * or near its nextUpdate or a CA certificate about to expire. --check
 * prints them. */

/* Same, from a string; `path` names it in errors and anchors relative paths
 * (its directory). For tests and the fuzzer: `include` is refused there, so
 * the text cannot make the loader read other files. */
CONFIG_WUR int config_load_string(const char *text, const char *path,
                                  struct config **out, char *err, size_t errlen);
CONFIG_WUR int config_reload_string(const char *text, const char *path,
                                    const struct config *prev,
                                    struct config **out, char *err,
                                    size_t errlen);

/* How a load differs from reading `path` and what it names. */
struct config_opts {
	const char *state_dir;      /* NULL: the file's state-dir (or default) */
	const char *api_text;       /* non-NULL: the text of STATE/api.conf,
	                               used instead of the file (which the caller
	                               writes once the load succeeded) */
	size_t api_len;
};

/* config_reload() with options (o may be NULL). The state file is read
 * after the main file and its includes, as if included last: its
 * sections appear in errors as STATE/api.conf:LINE. */
CONFIG_WUR int config_reload_opts(const char *path, const struct config *prev,
                                  const struct config_opts *o,
                                  struct config **out, char *err,
                                  size_t errlen);

/* A [host] of the state file, as a derived generation takes it. */
struct config_host_spec {
	const char *pattern;            /* normalized */
	const char *const *cas;
	size_t n_cas;
	int mode;                       /* enum policy_mode */
	int purpose;                    /* enum policy_purpose */
	int verify_depth;
	int crl_check;                  /* enum crl_check; DEFAULT: automatic */
	const char *const *identities;
	size_t n_identities;
	const uint8_t (*pins)[32];
	size_t n_pins;
	int line, ca_line, crl_line;    /* in the state text, for errors */
	struct host_policy *same;       /* non-NULL: prev's policy for exactly
	                                   this spec, taken as it is */
};

/* A [ca] of the state file, as a derived generation takes it. */
struct config_ca_spec {
	const char *name;
	const char *file;               /* relative to the state directory */
	const char *const *crls;        /* the same; n_crls */
	size_t n_crls;
	const char *const *rev_keys;    /* the section's other keys ("crl-url",
	                                   "ocsp", ...) and their values */
	const char *const *rev_vals;
	size_t n_rev;
	int line, file_line;            /* in the state text, for errors */
	const int *crl_lines;           /* n_crls entries, or NULL */
	const int *rev_lines;           /* n_rev entries, or NULL */
	struct ca_entry *same;          /* non-NULL: prev's entry for exactly
	                                   this spec, taken as it is */
};

/* config_derive() cannot build this generation: a load must. */
#define CONFIG_DERIVE_LOAD 1

/* The generation a load of `prev`'s files with the state text `api_text`
 * would build, when that text differs from prev's only in its [ca] and
 * [host] sections (the tenant API's writes): the files' CAs and hosts are
 * prev's as they are; the state's CAs are `ca_specs` (in order; NULL:
 * prev's as they are, a host write), its hosts `specs` (in order), built
 * with the loader's checks and messages ("STATE/api.conf:LINE: ...").
 * When the CAs change, CRLs follow their issuer across sections as in a
 * load, and a host is built again when its trust policy would change
 * (every host of a changed CA); the state's warnings are made again. No
 * file but a changed CA's is read: milliseconds instead of a full load.
 * The text only sets the state file's recorded digest. 0, -1 with the
 * error, or CONFIG_DERIVE_LOAD when a host of the files uses a changed CA
 * (only a load has its section). */
CONFIG_WUR int config_derive(const struct config *prev,
                             const struct config_ca_spec *ca_specs,
                             size_t n_cas,
                             const struct config_host_spec *specs, size_t n,
                             const char *api_text, size_t api_len,
                             struct config **out, char *err, size_t errlen);

void config_free(struct config *cfg);

/* A [ca] name: letters, digits, '.', '-', '_', 1..CONFIG_MAX_CA_NAME
 * bytes. 1 or 0. */
int config_valid_ca_name(const char *s);

/* A pin-sha256 value: 64 hex digits (colons ignored, any case) into 32
 * bytes. 0 or -1. */
CONFIG_WUR int config_parse_pin(const char *s, uint8_t out[32]);

/* Whether loading cfg->path again could give another configuration: 1
 * when a source file, the set of files the include globs match, a CA or
 * CRL file, or the admin token file differs from what `cfg` was built from (what, in why), 0
 * when every byte is the same. An unreadable file counts as a change, so
 * that the reload reports it. */
CONFIG_WUR int config_changed(const struct config *cfg, char *why,
                              size_t whylen);

/* The paths to watch for changes of `cfg`: its main file, the directories
 * its includes read, every CA and CRL file, the admin token file. A malloc'd array of *n
 * pointers into `cfg` (the caller frees the array only), or NULL with
 * *n = 0 when out of memory. */
const char **config_watch_paths(const struct config *cfg, size_t *n);

/* hosts_lookup() on the generation's index (cfg may be NULL). */
const struct host_policy *config_lookup(const struct config *cfg,
                                        const char *name, size_t len);

#endif /* MTLS_CONFIG_H */
