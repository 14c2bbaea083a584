/*
 * config.c - read the INI configuration (libinih) and build one
 * generation from it: CA entries (ca.c), trust policies (trust.c), host
 * policies and their index (hosts.c), reusing every object of the
 * previous generation whose inputs did not change.
 *
 * Parsing model: libinih (Debian build, no line numbers in the handler,
 * sections truncated to 49 characters, no callback on a section header)
 * is driven through ini_parse_stream() with our own line reader. The
 * reader is called once per line, so it counts lines, and it parses
 * section headers itself: that gives full-length host patterns, a
 * callback for sections without keys, and exact line numbers for
 * "FILE:LINE: message" errors. libinih still splits "key = value" lines
 * and strips comments.
 *
 * The file is parsed into drafts first (what each section says); the
 * objects are built once it has been read completely, so that every
 * reference can be resolved and every reusable object found. A load
 * builds a complete generation or nothing.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <ini.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "addr.h"
#include "config.h"
#include "storecfg.h"
#include "fileio.h"
#include "policy.h"
#include "spop.h"
#include "tokens.h"

/* uthash: report allocation failure instead of exiting. The macro assigns
 * a variable named `hash_oom` that every caller of HASH_ADD declares. */
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(elt) do { (void)(elt); hash_oom = 1; } while (0)
#include <uthash.h>

/* Limits on what a configuration may hold; beyond them it is refused
 * rather than loaded half-way. */
#define CONFIG_MAX_LINE 4096              /* bytes per line, libinih buffer */
#define CONFIG_MAX_FILE (1024 * 1024)     /* the INI file itself */
#define CONFIG_MAX_INCLUDES 64            /* `include` lines */
#define CONFIG_MAX_INCLUDED 10000         /* files the includes read */
#define CONFIG_MAX_TOTAL (64 * 1024 * 1024) /* bytes of all included files */


static const char *const crl_check_names[CRL_CHECK_COUNT] = {
	[CRL_CHECK_DEFAULT] = "default",
	[CRL_CHECK_NONE] = "none",
	[CRL_CHECK_LEAF] = "leaf",
	[CRL_CHECK_CHAIN] = "chain",
};

static const char *const purpose_names[PURPOSE_COUNT] = {
	[PURPOSE_CLIENT] = "client",
	[PURPOSE_ANY] = "any",
};

/* See config.h. */
int config_parse_pin(const char *s, uint8_t out[32])
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		int d;

		if (*s == ':')
			continue;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return -1;
		if (n >= 64)
			return -1;
		if (n % 2 == 0)
			out[n / 2] = (uint8_t)(d << 4);
		else
			out[n / 2] |= (uint8_t)d;
		n++;
	}
	return n == 64 ? 0 : -1;
}

/* ---- freeing ----------------------------------------------------------- */

/* See config.h. Accepts a partially built config (any field NULL). */
void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	hosts_index_free(cfg->index);
	for (size_t i = 0; i < cfg->n_hosts; i++)
		host_policy_unref(cfg->hosts[i]);
	free(cfg->hosts);
	for (size_t i = 0; i < cfg->n_trusts; i++)
		trust_policy_unref(cfg->trusts[i]);
	free(cfg->trusts);
	for (size_t i = 0; i < cfg->n_cas; i++)
		ca_unref(cfg->cas[i]);
	free(cfg->cas);
	for (size_t i = 0; i < cfg->n_warnings; i++)
		free(cfg->warnings[i]);
	free(cfg->warnings);
	for (size_t i = 0; i < cfg->n_sources; i++)
		free(cfg->sources[i].path);
	free(cfg->sources);
	for (size_t i = 0; i < cfg->n_includes; i++)
		free(cfg->includes[i]);
	free(cfg->includes);
	for (size_t i = 0; i < cfg->n_include_dirs; i++)
		free(cfg->include_dirs[i]);
	free(cfg->include_dirs);
	for (size_t i = 0; i < cfg->agent.n_listen; i++)
		free(cfg->agent.listen[i]);
	for (size_t i = 0; i < cfg->agent.n_admin_listen; i++)
		free(cfg->agent.admin_listen[i]);
	free(cfg->agent.state_dir);
	free(cfg->agent.admin_token_file);
	store_settings_free(&cfg->store);
	free(cfg->ca_origin);
	free(cfg->host_origin);
	for (size_t i = 0; cfg->ca_eff != NULL && i < cfg->n_cas; i++)
		free(cfg->ca_eff[i].crls);
	free(cfg->ca_eff);
	free(cfg->state_dir);
	free(cfg->api_path);
	tokens_free(cfg->tokens);
	free(cfg->path);
	free(cfg);
}

/* See config.h. */
const struct host_policy *config_lookup(const struct config *cfg,
                                        const char *name, size_t len)
{
	return cfg != NULL ? hosts_lookup(cfg->index, name, len) : NULL;
}

/* ---- drafts: what the file says ----------------------------------------- */

enum cfg_section {
	SEC_NONE = 0,
	SEC_AGENT,
	SEC_STORE,
	SEC_CA,
	SEC_HOST,
	SEC_COUNT
};

/* Keys that may appear once per section; bit positions in load_ctx.seen. */
enum cfg_key_bit {
	KEY_FILE = 0,
	KEY_MODE,
	KEY_VERIFY_DEPTH,
	KEY_PURPOSE,
	KEY_CRL_CHECK,
	KEY_AGENT_FIRST     /* [agent] keys: one bit each from here, by name */
};

struct ca_ref {
	char *name;
	int line;
};

struct ca_draft {
	char *name;
	const char *src;        /* the INI file of the section (ctx's) */
	int line;               /* [ca NAME] */
	char *file;             /* resolved */
	int file_line;
	char **crls;            /* resolved `crl =` paths */
	int *crl_lines;
	size_t n_crls;
	struct crl **eff;       /* every CRL describing its certificates */
	size_t n_eff;
	struct ca_revocation rev; /* crl-url and the other revocation keys */
	size_t index;           /* in load_ctx.cas and cfg->cas */
	size_t src_i;           /* cfg->sources index of `src` */
	UT_hash_handle hh;      /* load_ctx.ca_set, keyed by name */
};

struct host_draft {
	char *pattern;
	char *name;
	enum policy_kind kind;
	enum policy_mode mode;
	enum policy_purpose purpose;
	enum crl_check crl_check;
	int verify_depth;
	char **identities;
	size_t n_identities;
	uint8_t (*pins)[32];
	size_t n_pins;
	const char *src;        /* the INI file of the section (ctx's) */
	size_t src_i;           /* cfg->sources index of `src` */
	int line;               /* [host PATTERN] */
	struct ca_ref *refs;    /* `ca =` names, resolved at the end */
	size_t n_refs;
	int crl_line;           /* explicit crl-check, 0 if none */
	UT_hash_handle hh;      /* duplicate check, keyed by kind + name */
	char key[POLICY_HOST_MAX + 3];
};

/* A trust policy of this generation or the previous one, by key. */
struct trust_slot {
	struct trust_policy *tp;
	UT_hash_handle hh;
};

/* A host policy of the previous generation, by pattern. */
struct host_slot {
	struct host_policy *h;
	UT_hash_handle hh;
};

struct load_ctx {
	const char *path;       /* the file being read, for messages */
	const char *main_path;  /* the main file */
	char *dir;              /* of `path`, for relative paths */
	int included;           /* `path` is included: [ca] and [host] only */
	int no_include;         /* loading from a string: no includes */
	int *include_lines;     /* of cfg->includes */
	char **files;           /* included paths; drafts point into them */
	size_t n_files;
	size_t total_bytes;     /* read from included files */
	struct config *cfg;
	const struct config *prev;
	struct ca_draft **cas;
	size_t n_cas;
	struct ca_draft *ca_set;       /* uthash over cas[] by name */
	struct ca_prev *prev_cas;      /* uthash over prev->cas by name */
	struct host_draft **hosts;
	size_t n_hosts;
	struct host_draft *host_set;   /* uthash over hosts[] */
	/* the line reader over the file contents */
	const char *text;
	size_t text_len;
	size_t pos;
	int line;
	/* current section */
	enum cfg_section sec;
	size_t sec_index;       /* into cas or hosts */
	uint64_t seen;          /* enum cfg_key_bit bits */
	int agent_seen;
	int store_seen;
	time_t now;
	/* first error */
	char *err;
	size_t errlen;
	int failed;
};

/* Record the first error as "FILE:LINE: message". */
static void cfg_verr(struct load_ctx *c, const char *file, int line,
                     const char *fmt, va_list ap)
{
	int n;

	if (c->failed)
		return;
	c->failed = 1;
	if (c->err == NULL || c->errlen == 0)
		return;
	n = snprintf(c->err, c->errlen, "%s:%d: ", file, line);
	if (n < 0 || (size_t)n >= c->errlen)
		return;
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
}

/* An error at a line of the file being read. */
__attribute__((format(printf, 3, 4)))
static void cfg_err(struct load_ctx *c, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_verr(c, c->path, line, fmt, ap);
	va_end(ap);
}

/* An error at a line of `file` (a draft's, after the parse). */
__attribute__((format(printf, 4, 5)))
static void cfg_err_at(struct load_ctx *c, const char *file, int line,
                       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_verr(c, file, line, fmt, ap);
	va_end(ap);
}

/* Where a section is, for a message about file `here`: "line N" in the
 * same file, else FILE:LINE. */
static void cfg_where(const char *here, const char *file, int line,
                      char *buf, size_t len)
{
	if (strcmp(file, here) == 0)
		snprintf(buf, len, "line %d", line);
	else
		snprintf(buf, len, "%s:%d", file, line);
}

static char *cfg_strdup(struct load_ctx *c, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		cfg_err(c, c->line, "out of memory");
	return d;
}

/* Resolve a path from the file against the config file's directory. */
static char *cfg_resolve(struct load_ctx *c, const char *v)
{
	size_t dl, vl;
	char *p;

	if (v[0] == '/')
		return cfg_strdup(c, v);
	dl = strlen(c->dir);
	vl = strlen(v);
	p = malloc(dl + 1 + vl + 1);
	if (p == NULL) {
		cfg_err(c, c->line, "out of memory");
		return NULL;
	}
	memcpy(p, c->dir, dl);
	p[dl] = '/';
	memcpy(p + dl + 1, v, vl + 1);
	return p;
}

/* Make room for element `n` of an exactly sized array of `elem`-byte
 * elements. Returns the (maybe moved) array, or NULL after reporting the
 * failure at the current line (the old array is then untouched). */
static void *cfg_append(struct load_ctx *c, void *arr, size_t n, size_t elem)
{
	void *a = realloc(arr, (n + 1) * elem);

	if (a == NULL)
		cfg_err(c, c->line, "out of memory");
	return a;
}

/* Record "FILE:LINE: warning: ..." in cfg->warnings. */
__attribute__((format(printf, 4, 5)))
static void cfg_warn(struct load_ctx *c, const char *file, int line,
                     const char *fmt, ...)
{
	char buf[CONFIG_ERR_LEN], **w;
	int n;
	va_list ap;

	n = snprintf(buf, sizeof(buf), "%s:%d: warning: ", file, line);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	w = cfg_append(c, c->cfg->warnings, c->cfg->n_warnings, sizeof(*w));
	if (w == NULL)
		return;
	c->cfg->warnings = w;
	w[c->cfg->n_warnings] = cfg_strdup(c, buf);
	if (w[c->cfg->n_warnings] != NULL)
		c->cfg->n_warnings++;
}

/* See config.h. */
int config_valid_ca_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONFIG_MAX_CA_NAME)
		return 0;
	for (; *s != '\0'; s++) {
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '-' &&
		    *s != '_')
			return 0;
	}
	return 1;
}


static void cfg_section_ca(struct load_ctx *c, const char *name)
{
	struct ca_draft *ca, **cas;
	int hash_oom = 0;

	if (!config_valid_ca_name(name)) {
		cfg_err(c, c->line, "bad CA name \"%s\" (letters, digits, '.', "
		        "'-', '_'; at most %d)", name, CONFIG_MAX_CA_NAME);
		return;
	}
	HASH_FIND_STR(c->ca_set, name, ca);
	if (ca != NULL) {
		char at[PATH_MAX + 32];

		cfg_where(c->path, ca->src, ca->line, at, sizeof(at));
		cfg_err(c, c->line, "duplicate [ca %s] (first at %s)", name, at);
		return;
	}
	cas = cfg_append(c, c->cas, c->n_cas, sizeof(*cas));
	if (cas == NULL)
		return;
	c->cas = cas;
	ca = calloc(1, sizeof(*ca));
	if (ca == NULL) {
		cfg_err(c, c->line, "out of memory");
		return;
	}
	ca_revocation_defaults(&ca->rev);
	c->cas[c->n_cas++] = ca;
	ca->src = c->path;
	ca->src_i = c->cfg->n_sources - 1;
	ca->line = c->line;
	ca->name = cfg_strdup(c, name);
	ca->index = c->n_cas - 1;
	if (ca->name == NULL)
		return;
	HASH_ADD_KEYPTR(hh, c->ca_set, ca->name, strlen(ca->name), ca);
	if (hash_oom) {
		cfg_err(c, c->line, "out of memory");
		return;
	}
	c->sec = SEC_CA;
	c->sec_index = c->n_cas - 1;
}

static void cfg_section_host(struct load_ctx *c, const char *pattern)
{
	char norm[POLICY_HOST_MAX + 1], why[CONFIG_ERR_LEN];
	enum policy_kind kind;
	struct host_draft *h, **hosts, *dup = NULL;
	int hash_oom = 0;

	if (hosts_parse_pattern(pattern, &kind, norm, why, sizeof(why)) == -1) {
		cfg_err(c, c->line, "%s", why);
		return;
	}
	hosts = cfg_append(c, c->hosts, c->n_hosts, sizeof(*hosts));
	if (hosts == NULL)
		return;
	c->hosts = hosts;
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		cfg_err(c, c->line, "out of memory");
		return;
	}
	snprintf(h->key, sizeof(h->key), "%d:%s", (int)kind, norm);
	HASH_FIND_STR(c->host_set, h->key, dup);
	if (dup != NULL) {
		char at[PATH_MAX + 32];

		cfg_where(c->path, dup->src, dup->line, at, sizeof(at));
		if (kind == POLICY_DEFAULT)
			cfg_err(c, c->line, "duplicate [host *] (first at %s)", at);
		else
			cfg_err(c, c->line, "duplicate host \"%s\" (same as \"%s\" "
			        "at %s)", pattern, dup->pattern, at);
		free(h);
		return;
	}
	c->hosts[c->n_hosts++] = h;
	h->kind = kind;
	h->mode = MODE_ENFORCE;
	h->purpose = PURPOSE_CLIENT;
	h->crl_check = CRL_CHECK_DEFAULT;
	h->verify_depth = 5;
	h->src = c->path;
	h->src_i = c->cfg->n_sources - 1;
	h->line = c->line;
	h->pattern = cfg_strdup(c, pattern);
	h->name = cfg_strdup(c, norm);
	HASH_ADD_STR(c->host_set, key, h);
	if (hash_oom)
		cfg_err(c, c->line, "out of memory");
	c->sec = SEC_HOST;
	c->sec_index = c->n_hosts - 1;
}

/* A "[...]" line, seen by the reader before libinih handles it. `s`
 * points at the '['. */
static void cfg_section(struct load_ctx *c, const char *s)
{
	const char *close = strchr(s, ']');
	char inner[CONFIG_MAX_LINE];
	char *tok[3], *save = NULL, *t;
	int ntok = 0;
	size_t n;

	if (close == NULL) {
		cfg_err(c, c->line, "missing ']' in section header");
		return;
	}
	for (const char *q = close + 1; *q != '\0'; q++) {
		if (*q == ';' || *q == '#')
			break;
		if (!isspace((unsigned char)*q)) {
			cfg_err(c, c->line, "unexpected text after section header");
			return;
		}
	}
	n = (size_t)(close - s - 1);
	memcpy(inner, s + 1, n);
	inner[n] = '\0';
	for (t = strtok_r(inner, " \t", &save); t != NULL && ntok < 3;
	     t = strtok_r(NULL, " \t", &save))
		tok[ntok++] = t;
	if (ntok == 0) {
		cfg_err(c, c->line, "empty section name");
		return;
	}
	c->seen = 0;
	c->sec = SEC_NONE;
	if (strcmp(tok[0], "agent") == 0) {
		if (ntok != 1) {
			cfg_err(c, c->line, "[agent] takes no argument");
			return;
		}
		if (c->included) {
			cfg_err(c, c->line, "[agent] in an included file (only [ca] "
			        "and [host] sections may be included)");
			return;
		}
		if (c->agent_seen) {
			cfg_err(c, c->line, "duplicate [agent] section");
			return;
		}
		c->agent_seen = 1;
		c->sec = SEC_AGENT;
	} else if (strcmp(tok[0], "store") == 0) {
		if (ntok != 1 || c->included || c->store_seen) {
			cfg_err(c, c->line, "%s", ntok != 1 ? "[store] takes no argument" :
			        c->included ? "[store] in an included file (only [ca] and "
			        "[host] sections may be included)" :
			        "duplicate [store] section");
			return;
		}
		c->store_seen = 1;
		c->cfg->store.line = c->line;
		c->sec = SEC_STORE;
	} else if (strcmp(tok[0], "ca") == 0) {
		if (ntok != 2) {
			cfg_err(c, c->line, "expected [ca NAME] with one name");
			return;
		}
		cfg_section_ca(c, tok[1]);
	} else if (strcmp(tok[0], "host") == 0) {
		if (ntok != 2) {
			cfg_err(c, c->line, "expected [host PATTERN] with one pattern");
			return;
		}
		cfg_section_host(c, tok[1]);
	} else {
		cfg_err(c, c->line, "unknown section [%.*s]", (int)n, s + 1);
	}
}

/* libinih reader: one line per call (so c->line is the line libinih is
 * about to handle), section headers handled here. Returns NULL at the
 * end or after an error, which stops the parse. */
static char *cfg_reader(char *str, int num, void *stream)
{
	struct load_ctx *c = stream;
	const char *start, *nl;
	size_t len;
	const char *p;

	if (c->failed || c->pos >= c->text_len)
		return NULL;
	start = c->text + c->pos;
	nl = memchr(start, '\n', c->text_len - c->pos);
	len = nl != NULL ? (size_t)(nl - start) + 1 : c->text_len - c->pos;
	c->line++;
	if (memchr(start, '\0', len) != NULL) {
		cfg_err(c, c->line, "NUL byte in line");
		return NULL;
	}
	if (num < 2 || len > (size_t)num - 1) {
		cfg_err(c, c->line, "line too long (at most %d bytes)",
		        CONFIG_MAX_LINE - 3);
		return NULL;
	}
	memcpy(str, start, len);
	str[len] = '\0';
	c->pos += len;

	p = str;
	if (c->line == 1 && (unsigned char)p[0] == 0xEF &&
	    (unsigned char)p[1] == 0xBB && (unsigned char)p[2] == 0xBF)
		p += 3;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '[') {
		/* Our own copy: libinih still sees the untouched line. */
		char line[CONFIG_MAX_LINE];
		size_t l = strlen(p);

		while (l > 0 && isspace((unsigned char)p[l - 1]))
			l--;
		memcpy(line, p, l);
		line[l] = '\0';
		cfg_section(c, line);
		if (c->failed)
			return NULL;
	}
	return str;
}

static int cfg_once(struct load_ctx *c, unsigned int bit, const char *key)
{
	if (c->seen & (UINT64_C(1) << bit)) {
		cfg_err(c, c->line, "duplicate key \"%s\" in this section", key);
		return -1;
	}
	c->seen |= UINT64_C(1) << bit;
	return 0;
}

/* [agent] keys that may appear once, in the order of their seen bits. */
static const char *const agent_once_keys[] = {
	"threads", "verify-threads", "verify-nice", "max-frame-size", "idle-timeout",
	"log-level", "max-connections", "max-output", "cache-entries",
	"cache-ttl", "log-format", "watch", "metrics-policy-label",
	"admin-max-body", "state-dir", "admin-token-file", "memo-ttl",
};

/* `include = GLOB`: resolved now, read once the main file is parsed. */
static void cfg_key_include(struct load_ctx *c, const char *v)
{
	struct config *cfg = c->cfg;
	char **inc;
	int *lines;

	if (c->no_include) {
		cfg_err(c, c->line, "include needs a configuration file (not "
		        "available when loading from a string)");
		return;
	}
	if (*v == '\0' || strlen(v) >= PATH_MAX / 2) {
		cfg_err(c, c->line, "bad include \"%s\" (a file name or glob, "
		        "such as conf.d/*.conf)", v);
		return;
	}
	if (cfg->n_includes >= CONFIG_MAX_INCLUDES) {
		cfg_err(c, c->line, "too many include lines (at most %d)",
		        CONFIG_MAX_INCLUDES);
		return;
	}
	inc = cfg_append(c, cfg->includes, cfg->n_includes, sizeof(*inc));
	if (inc == NULL)
		return;
	cfg->includes = inc;
	lines = cfg_append(c, c->include_lines, cfg->n_includes, sizeof(*lines));
	if (lines == NULL)
		return;
	c->include_lines = lines;
	inc[cfg->n_includes] = cfg_resolve(c, v);
	if (inc[cfg->n_includes] == NULL)
		return;
	lines[cfg->n_includes++] = c->line;
}

static void cfg_key_agent(struct load_ctx *c, const char *key, const char *v)
{
	struct agent_settings *a = &c->cfg->agent;
	char why[CONFIG_ERR_LEN];
	int i, rc;

	if (strcmp(key, "listen") == 0 || strcmp(key, "admin-listen") == 0) {
		char bad[CONFIG_ERR_LEN];
		char **list = key[0] == 'l' ? a->listen : a->admin_listen;
		size_t *n = key[0] == 'l' ? &a->n_listen : &a->n_admin_listen;

		/* The one parser -l and --probe use too (addr.c). */
		if (addr_check(v, bad, sizeof(bad)) != 0) {
			cfg_err(c, c->line, "bad %s address \"%s\": %s", key, v, bad);
			return;
		}
		if (*n >= CONFIG_MAX_LISTEN) {
			cfg_err(c, c->line, "too many %s addresses (at most %d)", key,
			        CONFIG_MAX_LISTEN);
			return;
		}
		list[*n] = cfg_strdup(c, v);
		if (list[*n] != NULL)
			(*n)++;
		return;
	}
	if (strcmp(key, "include") == 0) {
		cfg_key_include(c, v);
		return;
	}
	i = settings_lookup_name(agent_once_keys,
	                         (int)(sizeof(agent_once_keys) /
	                               sizeof(agent_once_keys[0])), key);
	if (i >= 0 && cfg_once(c, KEY_AGENT_FIRST + (unsigned int)i, key) == -1)
		return;
	/* Paths: relative to the configuration's directory, like `file`. */
	if (strcmp(key, "state-dir") == 0 || strcmp(key, "admin-token-file") == 0) {
		char **dst = key[0] == 's' ? &a->state_dir : &a->admin_token_file;

		if (v[0] == '\0') {
			cfg_err(c, c->line, "empty %s", key);
			return;
		}
		*dst = cfg_resolve(c, v);
		return;
	}
	rc = settings_set_agent(a, key, v, why, sizeof(why));
	if (rc == 1)
		cfg_err(c, c->line, "unknown key \"%s\" in [agent]", key);
	else if (rc == -1)
		cfg_err(c, c->line, "%s", why);
}

static void cfg_key_store(struct load_ctx *c, const char *key, const char *v)
{
	struct store_settings *st = &c->cfg->store;
	char why[CONFIG_ERR_LEN];
	int rc;

	if (store_settings_is_path(key)) {
		if (v[0] == '\0') {
			cfg_err(c, c->line, "empty %s", key);
			return;
		}
		store_settings_path(st, key, cfg_resolve(c, v));
		return;
	}
	rc = store_settings_set(st, key, v, why, sizeof(why));
	if (rc == 1)
		cfg_err(c, c->line, "unknown key \"%s\" in [store]", key);
	else if (rc == -1)
		cfg_err(c, c->line, "%s", why);
}

static void cfg_key_ca(struct load_ctx *c, const char *key, const char *v)
{
	struct ca_draft *ca = c->cas[c->sec_index];
	char *path, **crls;
	int *lines;

	if (strcmp(key, "file") == 0) {
		if (cfg_once(c, KEY_FILE, key) == -1)
			return;
		if (*v == '\0') {
			cfg_err(c, c->line, "empty file");
			return;
		}
		ca->file = cfg_resolve(c, v);
		ca->file_line = c->line;
	} else if (strcmp(key, "crl") == 0) {
		if (*v == '\0') {
			cfg_err(c, c->line, "empty crl");
			return;
		}
		if (ca->n_crls >= CA_MAX_CRL_FILES) {
			cfg_err(c, c->line, "too many crl files in one [ca] (at most "
			        "%d)", CA_MAX_CRL_FILES);
			return;
		}
		path = cfg_resolve(c, v);
		if (path == NULL)
			return;
		crls = cfg_append(c, ca->crls, ca->n_crls, sizeof(*crls));
		if (crls != NULL)
			ca->crls = crls;
		lines = cfg_append(c, ca->crl_lines, ca->n_crls, sizeof(*lines));
		if (lines != NULL)
			ca->crl_lines = lines;
		if (crls == NULL || lines == NULL) {
			free(path);
			return;
		}
		ca->crls[ca->n_crls] = path;
		ca->crl_lines[ca->n_crls++] = c->line;
	} else {
		char why[CONFIG_ERR_LEN];
		int rc = ca_revocation_set(&ca->rev, key, v, why, sizeof(why));

		if (rc == 1)
			cfg_err(c, c->line, "unknown key \"%s\" in [ca %s]", key,
			        ca->name);
		else if (rc == -1)
			cfg_err(c, c->line, "%s", why);
	}
}

static void cfg_key_host(struct load_ctx *c, const char *key, const char *v)
{
	struct host_draft *h = c->hosts[c->sec_index];
	struct host_draft *hx = h;
	uint64_t u;
	int i;

	if (strcmp(key, "ca") == 0) {
		char buf[CONFIG_MAX_LINE];
		char *t, *save = NULL;
		size_t vl = strlen(v);

		if (vl == 0) {
			cfg_err(c, c->line, "empty ca list");
			return;
		}
		memcpy(buf, v, vl + 1);
		for (t = strtok_r(buf, " \t", &save); t != NULL;
		     t = strtok_r(NULL, " \t", &save)) {
			struct ca_ref *refs;

			if (hx->n_refs >= CONFIG_MAX_HOST_CAS) {
				cfg_err(c, c->line, "too many CAs on one host (at most "
				        "%d)", CONFIG_MAX_HOST_CAS);
				return;
			}
			refs = cfg_append(c, hx->refs, hx->n_refs, sizeof(*refs));
			if (refs == NULL)
				return;
			hx->refs = refs;
			refs[hx->n_refs].line = c->line;
			refs[hx->n_refs].name = cfg_strdup(c, t);
			if (refs[hx->n_refs].name == NULL)
				return;
			hx->n_refs++;
		}
	} else if (strcmp(key, "mode") == 0) {
		if (cfg_once(c, KEY_MODE, key) == -1)
			return;
		if (hosts_parse_mode(v, &h->mode) == -1) {
			cfg_err(c, c->line, "bad mode \"%s\" (enforce, optional, log, "
			        "off, deny)", v);
			return;
		}
	} else if (strcmp(key, "verify-depth") == 0) {
		if (cfg_once(c, KEY_VERIFY_DEPTH, key) == -1)
			return;
		if (settings_parse_uint(v, 32, &u) == -1 || u < 1) {
			cfg_err(c, c->line, "bad verify-depth \"%s\" (1..32)", v);
			return;
		}
		h->verify_depth = (int)u;
	} else if (strcmp(key, "purpose") == 0) {
		if (cfg_once(c, KEY_PURPOSE, key) == -1)
			return;
		i = settings_lookup_name(purpose_names, PURPOSE_COUNT, v);
		if (i < 0) {
			cfg_err(c, c->line, "bad purpose \"%s\" (client, any)", v);
			return;
		}
		h->purpose = (enum policy_purpose)i;
	} else if (strcmp(key, "allow-identity") == 0) {
		char **ids;

		if (*v == '\0' || strlen(v) > CONFIG_MAX_IDENTITY) {
			cfg_err(c, c->line, "bad allow-identity (1..%d characters)",
			        CONFIG_MAX_IDENTITY);
			return;
		}
		if (h->n_identities >= CONFIG_MAX_PER_HOST) {
			cfg_err(c, c->line, "too many allow-identity (at most %d)",
			        CONFIG_MAX_PER_HOST);
			return;
		}
		ids = cfg_append(c, h->identities, h->n_identities, sizeof(*ids));
		if (ids == NULL)
			return;
		h->identities = ids;
		ids[h->n_identities] = cfg_strdup(c, v);
		if (ids[h->n_identities] != NULL)
			h->n_identities++;
	} else if (strcmp(key, "pin-sha256") == 0) {
		uint8_t pin[32];
		uint8_t (*pins)[32];

		if (config_parse_pin(v, pin) == -1) {
			cfg_err(c, c->line, "bad pin-sha256 \"%s\" (64 hex digits, "
			        "colons allowed)", v);
			return;
		}
		if (h->n_pins >= CONFIG_MAX_PER_HOST) {
			cfg_err(c, c->line, "too many pin-sha256 (at most %d)",
			        CONFIG_MAX_PER_HOST);
			return;
		}
		pins = cfg_append(c, h->pins, h->n_pins, sizeof(*pins));
		if (pins == NULL)
			return;
		h->pins = pins;
		memcpy(pins[h->n_pins], pin, sizeof(pin));
		h->n_pins++;
	} else if (strcmp(key, "crl-check") == 0) {
		if (cfg_once(c, KEY_CRL_CHECK, key) == -1)
			return;
		i = settings_lookup_name(crl_check_names, CRL_CHECK_COUNT, v);
		if (i <= CRL_CHECK_DEFAULT) {
			cfg_err(c, c->line, "bad crl-check \"%s\" (none, leaf, chain)",
			        v);
			return;
		}
		h->crl_check = (enum crl_check)i;
		hx->crl_line = c->line;
	} else {
		cfg_err(c, c->line, "unknown key \"%s\" in [host %s]", key,
		        h->pattern);
	}
}

/* libinih handler: 1 to go on, 0 on error. The section argument is
 * ignored (libinih truncates it); the reader tracked the real one. */
static int cfg_handler(void *user, const char *section, const char *key,
                       const char *value)
{
	struct load_ctx *c = user;

	(void)section;
	if (c->failed)
		return 0;
	if (key == NULL || value == NULL)
		return 1;
	switch (c->sec) {
	case SEC_AGENT:
		cfg_key_agent(c, key, value);
		break;
	case SEC_STORE:
		cfg_key_store(c, key, value);
		break;
	case SEC_CA:
		cfg_key_ca(c, key, value);
		break;
	case SEC_HOST:
		cfg_key_host(c, key, value);
		break;
	case SEC_NONE:
	case SEC_COUNT:
	default:
		cfg_err(c, c->line, "key \"%s\" outside of any section", key);
		break;
	}
	return !c->failed;
}

/* ---- building the generation --------------------------------------------- */

/* Append `crl` to a draft's effective list unless it is already there. */
static void cfg_attach_crl(struct load_ctx *c, struct ca_draft *d,
                           struct crl *crl)
{
	struct crl **e;

	for (size_t i = 0; i < d->n_eff; i++)
		if (d->eff[i] == crl)
			return;
	e = cfg_append(c, d->eff, d->n_eff, sizeof(*e));
	if (e == NULL)
		return;
	d->eff = e;
	d->eff[d->n_eff++] = crl;
}

/* Attach `crl` (issued by `x`) to every section holding a certificate
 * that issued x. */
static void cfg_attach_above(struct load_ctx *c, X509 *x, struct crl *crl)
{
	for (size_t m = 0; m < c->n_cas && !c->failed; m++) {
		STACK_OF(X509) *certs = c->cfg->cas[m]->certs;

		for (int i = 0; i < sk_X509_num(certs); i++) {
			if (ca_cert_issued_by(x, sk_X509_value(certs, i))) {
				cfg_attach_crl(c, c->cas[m], crl);
				break;
			}
		}
	}
}

/* Give every [ca] section the CRLs that describe its certificates, from
 * whichever section lists them: its own, a CRL issued by a certificate of
 * the section, or by a certificate that one of the section's certificates
 * issued (an intermediate listed elsewhere, sent by the client under a
 * root-only section). Issuers are matched by name and signature, so a
 * look-alike CA cannot bring its CRLs into another tenant's policies. A
 * CRL that no configured certificate issued stays in its own section. */
static void cfg_share_crls(struct load_ctx *c)
{
	struct config *cfg = c->cfg;

	for (size_t s = 0; s < c->n_cas && !c->failed; s++)
		for (size_t r = 0; r < ca_crl_count(cfg->cas[s]); r++)
			cfg_attach_crl(c, c->cas[s], ca_crl_at(cfg->cas[s], r));
	for (size_t s = 0; s < c->n_cas && !c->failed; s++) {
		for (size_t r = 0; r < ca_crl_count(cfg->cas[s]) && !c->failed; r++) {
			struct crl *crl = ca_crl_at(cfg->cas[s], r);

			for (size_t k = 0; k < c->n_cas && !c->failed; k++) {
				STACK_OF(X509) *certs = cfg->cas[k]->certs;

				for (int xi = 0; xi < sk_X509_num(certs); xi++) {
					X509 *x = sk_X509_value(certs, xi);

					if (crl_issued_by(crl, x)) {
						cfg_attach_crl(c, c->cas[k], crl);
						cfg_attach_above(c, x, crl);
						break;
					}
				}
			}
		}
	}
}

/* 1 if every own CRL of `a` issued by `x` is also an own CRL of `b`. */
static int cfg_own_crls_within(const struct ca_entry *a,
                               const struct ca_entry *b, X509 *x)
{
	for (size_t i = 0; i < ca_crl_count(a); i++) {
		struct crl *r = ca_crl_at(a, i);
		int found = 0;

		if (!crl_issued_by(r, x))
			continue;
		for (size_t j = 0; j < ca_crl_count(b) && !found; j++)
			found = memcmp(crl_digest(r), crl_digest(ca_crl_at(b, j)),
			               32) == 0;
		if (!found)
			return 0;
	}
	return 1;
}

/* A CA certificate of a section, in the index by serial number that
 * finds the certificates two sections share. */
struct cfg_cert_slot {
	X509 *x;
	size_t sec;                   /* index in c->cas */
	struct cfg_cert_slot *next;   /* the same serial, later sections */
	struct cfg_cert_slot *tail;   /* the chain's last (head only) */
	UT_hash_handle hh;
};

/* Warn about a CA certificate listed under two [ca] sections whose own
 * `crl =` files differ for it: the CRLs it issued apply through both.
 * Only the pairs whose later section is `from` or after (a derived
 * generation keeps the warnings of the sections before). */
static void cfg_warn_split_crls(struct load_ctx *c, size_t from)
{
	struct config *cfg = c->cfg;
	struct cfg_cert_slot *slots, *set = NULL, *s;
	size_t n_crls = 0, n_certs = 0, k = 0;
	int hash_oom = 0;

	/* Without a CRL anywhere no two sections can differ in one. */
	for (size_t i = 0; i < cfg->n_cas; i++) {
		n_crls += ca_crl_count(cfg->cas[i]);
		n_certs += (size_t)sk_X509_num(cfg->cas[i]->certs);
	}
	if (n_crls == 0 || from >= cfg->n_cas)
		return;
	/* Indexed by serial: 1,000 CAs are not compared pairwise. */
	slots = calloc(n_certs + 1, sizeof(*slots));
	if (slots == NULL) {
		cfg_err(c, 0, "out of memory");
		return;
	}
	for (size_t i = 0; i < cfg->n_cas && !hash_oom; i++) {
		STACK_OF(X509) *certs = cfg->cas[i]->certs;

		for (int xi = 0; xi < sk_X509_num(certs) && !hash_oom; xi++, k++) {
			const ASN1_INTEGER *sn;

			slots[k].x = sk_X509_value(certs, xi);
			slots[k].sec = i;
			sn = X509_get0_serialNumber(slots[k].x);
			HASH_FIND(hh, set, ASN1_STRING_get0_data(sn),
			          (size_t)ASN1_STRING_length(sn), s);
			if (s != NULL) {
				s->tail->next = &slots[k];
				s->tail = &slots[k];
				continue;
			}
			slots[k].tail = &slots[k];
			HASH_ADD_KEYPTR(hh, set, ASN1_STRING_get0_data(sn),
			                (size_t)ASN1_STRING_length(sn), &slots[k]);
		}
	}
	if (hash_oom)
		cfg_err(c, 0, "out of memory");
	for (k = 0; k < n_certs && !hash_oom; k++) {
		struct ca_entry *a = cfg->cas[slots[k].sec];
		X509 *x = slots[k].x;
		const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
		size_t last = SIZE_MAX;

		HASH_FIND(hh, set, ASN1_STRING_get0_data(sn),
		          (size_t)ASN1_STRING_length(sn), s);
		/* The chain is in section order: each later section once. */
		for (; s != NULL; s = s->next) {
			struct ca_entry *b = cfg->cas[s->sec];
			char subj[256], at[PATH_MAX + 32];
			size_t i = slots[k].sec;

			if (s->sec <= i || s->sec < from || s->sec == last ||
			    X509_cmp(x, s->x) != 0)
				continue;
			last = s->sec;
			if (cfg_own_crls_within(a, b, x) && cfg_own_crls_within(b, a, x))
				continue;
			ca_name_str(X509_get_subject_name(x), subj, sizeof(subj));
			cfg_where(c->cas[s->sec]->src, c->cas[i]->src, c->cas[i]->line,
			          at, sizeof(at));
			cfg_warn(c, c->cas[s->sec]->src, c->cas[s->sec]->line, "CA "
			         "certificate \"%s\" is in [ca %s] (%s) and [ca %s] "
			         "with different CRLs; the CRLs it issued now apply "
			         "through both", subj, a->name, at, b->name);
		}
	}
	HASH_CLEAR(hh, set);
	free(slots);
}

struct cfg_note_ctx {
	struct load_ctx *c;
	const struct ca_draft *d;
};

static void cfg_note(void *ctx, int crl_file, const char *msg)
{
	struct cfg_note_ctx *n = ctx;

	/* Files past the `crl =` lines are crl-url copies: the section. */
	cfg_warn(n->c, n->d->src,
	         crl_file < 0 ? n->d->file_line :
	         (size_t)crl_file < n->d->n_crls ? n->d->crl_lines[crl_file] :
	         n->d->line, "%s", msg);
}

/* What will stop working soon, or already has: CRLs past or within a day
 * of their nextUpdate (every certificate they cover is then crl_error),
 * CA certificates expired or expiring within 30 days. */
static void cfg_warn_expiry(struct load_ctx *c, size_t i)
{
	struct cfg_note_ctx n = { c, c->cas[i] };

	(void)ca_expiry_notes(c->cfg->cas[i], c->now, cfg_note, &n);
}

/* A CA entry of the previous generation, by name: hashed, because a
 * reload of 1,000 CAs and 10,000 hosts must not compare names pairwise. */
struct ca_prev {
	struct ca_entry *ca;
	UT_hash_handle hh;
};

static int cfg_index_prev_cas(struct load_ctx *c)
{
	int hash_oom = 0;

	for (size_t i = 0; c->prev != NULL && i < c->prev->n_cas; i++) {
		struct ca_prev *p = calloc(1, sizeof(*p));

		if (p == NULL)
			return -1;
		p->ca = c->prev->cas[i];
		HASH_ADD_KEYPTR(hh, c->prev_cas, p->ca->name, strlen(p->ca->name), p);
		if (hash_oom) {
			free(p);
			return -1;
		}
	}
	return 0;
}

static struct ca_entry *cfg_prev_ca(const struct load_ctx *c, const char *name)
{
	struct ca_prev *p;

	HASH_FIND_STR(c->prev_cas, name, p);
	return p != NULL ? p->ca : NULL;
}

/* The entry of draft `d` into cfg->cas[d->index]: prev's of that name
 * when its files have the same bytes (ca_load), else built. 0, or -1
 * with the error at the draft's line. */
static int cfg_load_ca(struct load_ctx *c, struct ca_draft *d)
{
	struct config *cfg = c->cfg;
	char why[CONFIG_ERR_LEN];
	struct ca_spec spec = {
		.name = d->name, .file = d->file,
		.crl_files = (const char *const *)d->crls,
		.n_crl_files = d->n_crls,
		/* The API names its PEM files by their digest; a crl-url copy
		 * changes under its name, so is read every time. */
		.immutable = d->src_i == cfg->api_source && d->rev.n_crl_urls == 0,
		.rev = &d->rev,
		.state_dir = cfg->state_dir,
	};
	int reused, which;

	if (d->file == NULL) {
		cfg_err_at(c, d->src, d->line, "[ca %s] has no file", d->name);
		return -1;
	}
	why[0] = '\0';
	if (ca_load(&spec, cfg_prev_ca(c, d->name), &cfg->cas[d->index], &reused,
	            &which, why, sizeof(why)) == -1) {
		cfg_err_at(c, d->src, which < 0 ? d->file_line : d->crl_lines[which],
		           "%s", why);
		return -1;
	}
	if (reused)
		cfg->stats.cas_reused++;
	else
		cfg->stats.cas_built++;
	return 0;
}

static void cfg_build_cas(struct load_ctx *c)
{
	struct config *cfg = c->cfg;

	cfg->cas = calloc(c->n_cas + 1, sizeof(*cfg->cas));
	cfg->ca_origin = calloc(c->n_cas + 1, sizeof(*cfg->ca_origin));
	if (cfg->cas == NULL || cfg->ca_origin == NULL ||
	    cfg_index_prev_cas(c) == -1) {
		cfg_err(c, 0, "out of memory");
		return;
	}
	for (size_t i = 0; i < c->n_cas && !c->failed; i++) {
		struct ca_draft *d = c->cas[i];

		if (cfg_load_ca(c, d) != 0)
			return;
		cfg->ca_origin[i].source = d->src_i;
		cfg->ca_origin[i].line = d->line;
		cfg->n_cas++;
	}
}

static struct trust_slot *cfg_index_trusts(struct trust_policy *const *tps,
                                           size_t n, int *oom)
{
	struct trust_slot *set = NULL;
	int hash_oom = 0;

	for (size_t i = 0; i < n && !hash_oom; i++) {
		struct trust_slot *s = calloc(1, sizeof(*s));

		if (s == NULL) {
			hash_oom = 1;
			break;
		}
		s->tp = tps[i];
		HASH_ADD(hh, set, tp->key, 32, s);
		if (hash_oom)
			free(s);
	}
	*oom = hash_oom;
	return set;
}

static void cfg_free_slots(struct trust_slot **set)
{
	struct trust_slot *s, *tmp;

	HASH_ITER(hh, *set, s, tmp) {
		HASH_DEL(*set, s);
		free(s);
	}
}

/* The trust policy for `p`: one of this generation's with the same key,
 * the previous generation's, or a new one. NULL after an error. */
static struct trust_policy *cfg_trust_for(struct load_ctx *c,
                                          const struct trust_params *p,
                                          struct trust_slot **mine,
                                          struct trust_slot **old,
                                          const struct host_draft *hd)
{
	struct config *cfg = c->cfg;
	struct trust_slot *s = NULL;
	struct trust_policy *tp, **tps;
	uint8_t key[32];
	char why[CONFIG_ERR_LEN];
	int hash_oom = 0;

	trust_params_key(p, key);
	HASH_FIND(hh, *mine, key, 32, s);
	if (s != NULL)
		return s->tp;
	HASH_FIND(hh, *old, key, 32, s);
	if (s != NULL) {
		tp = trust_policy_ref(s->tp);
		cfg->stats.trusts_reused++;
	} else {
		why[0] = '\0';
		tp = trust_policy_new(p, why, sizeof(why));
		if (tp == NULL) {
			cfg_err_at(c, hd->src, hd->line, "[host %s]: %s",
			           hd->pattern, why[0] != '\0' ? why
			           : "cannot build the trust store");
			return NULL;
		}
		cfg->stats.trusts_built++;
	}
	tps = cfg_append(c, cfg->trusts, cfg->n_trusts, sizeof(*tps));
	s = calloc(1, sizeof(*s));
	if (tps == NULL || s == NULL) {
		free(s);
		trust_policy_unref(tp);
		cfg_err_at(c, hd->src, hd->line, "out of memory");
		return NULL;
	}
	cfg->trusts = tps;
	cfg->trusts[cfg->n_trusts++] = tp;
	s->tp = tp;
	HASH_ADD(hh, *mine, tp->key, 32, s);
	if (hash_oom) {
		free(s);
		cfg_err_at(c, hd->src, hd->line, "out of memory");
		return NULL;
	}
	return tp;
}

/* Resolve a host draft's `ca =` names into cas[] (duplicates dropped) and
 * the union of their effective CRLs into crls[]. */
static size_t cfg_host_cas(struct load_ctx *c, struct host_draft *hd,
                           struct ca_entry **cas, struct crl ***crls,
                           size_t *n_crls)
{
	size_t n = 0;

	*crls = NULL;
	*n_crls = 0;
	for (size_t r = 0; r < hd->n_refs && !c->failed; r++) {
		struct ca_draft *d;
		size_t k, j;

		HASH_FIND_STR(c->ca_set, hd->refs[r].name, d);
		if (d == NULL) {
			cfg_err_at(c, hd->src, hd->refs[r].line, "unknown CA \"%s\" (no [ca %s] "
			        "section)", hd->refs[r].name, hd->refs[r].name);
			return 0;
		}
		k = d->index;
		/* "ca = a a" or a repeated line: keep one. */
		for (j = 0; j < n && cas[j] != c->cfg->cas[k]; j++)
			;
		if (j < n)
			continue;
		cas[n++] = c->cfg->cas[k];
		for (size_t e = 0; e < c->cas[k]->n_eff; e++) {
			struct crl *crl = c->cas[k]->eff[e], **a;

			for (j = 0; j < *n_crls && (*crls)[j] != crl; j++)
				;
			if (j < *n_crls)
				continue;
			a = cfg_append(c, *crls, *n_crls, sizeof(*a));
			if (a == NULL)
				return 0;
			*crls = a;
			(*crls)[(*n_crls)++] = crl;
		}
	}
	return n;
}

static struct host_policy *cfg_prev_host(struct host_slot *set,
                                         const struct host_draft *hd,
                                         const struct trust_policy *tp)
{
	struct host_slot *s = NULL;

	HASH_FIND_STR(set, hd->pattern, s);
	if (s != NULL && s->h->mode == hd->mode && s->h->trust == tp)
		return host_policy_ref(s->h);
	return NULL;
}

static struct host_slot *cfg_index_prev_hosts(const struct config *prev,
                                              int *oom)
{
	struct host_slot *set = NULL;
	int hash_oom = 0;

	for (size_t i = 0; prev != NULL && i < prev->n_hosts && !hash_oom; i++) {
		struct host_slot *s = calloc(1, sizeof(*s));

		if (s == NULL) {
			hash_oom = 1;
			break;
		}
		s->h = prev->hosts[i];
		HASH_ADD_KEYPTR(hh, set, s->h->pattern, strlen(s->h->pattern), s);
		if (hash_oom)
			free(s);
	}
	*oom = hash_oom;
	return set;
}

/* One host: its CAs, crl-check, trust policy, and the policy object. */
static void cfg_build_host(struct load_ctx *c, struct host_draft *hd,
                           struct trust_slot **mine, struct trust_slot **old,
                           struct host_slot *prev_hosts)
{
	struct config *cfg = c->cfg;
	struct ca_entry *cas[CONFIG_MAX_HOST_CAS];
	struct crl **crls = NULL;
	size_t n_cas, n_crls = 0;
	struct trust_policy *tp = NULL;
	struct host_policy *h, *dup;
	int auto_crl = 0, fetched = 0;

	n_cas = cfg_host_cas(c, hd, cas, &crls, &n_crls);
	if (c->failed)
		goto out;
	/* off and deny never look at the certificate. */
	if (hd->mode != MODE_OFF && hd->mode != MODE_DENY && n_cas == 0) {
		cfg_err_at(c, hd->src, hd->line, "[host %s] has no ca (required unless "
		        "mode = off or deny)", hd->pattern);
		goto out;
	}
	/* A CA with a crl-url has CRLs, fetched or due. */
	for (size_t i = 0; i < n_cas && n_crls == 0; i++)
		fetched |= cas[i]->rev.n_crl_urls > 0;
	if (hd->crl_check == CRL_CHECK_DEFAULT) {
		hd->crl_check = n_crls > 0 || fetched ? CRL_CHECK_LEAF : CRL_CHECK_NONE;
		/* "leaf when the CA has CRLs": per CA, not per host. */
		auto_crl = 1;
	} else if (hd->crl_check != CRL_CHECK_NONE && n_crls == 0 && !fetched) {
		/* It would turn every certificate into crl_error. */
		cfg_err_at(c, hd->src, hd->crl_line, "crl-check = %s but none of the host's "
		        "CAs has a crl", crl_check_names[hd->crl_check]);
		goto out;
	}
	if (n_cas > 0) {
		struct trust_params p = {
			.cas = cas, .n_cas = n_cas,
			.crls = crls, .n_crls = n_crls,
			.purpose = hd->purpose, .crl_check = hd->crl_check,
			.crl_check_auto = auto_crl, .verify_depth = hd->verify_depth,
			.identities = (const char *const *)hd->identities,
			.n_identities = hd->n_identities,
			.pins = (const uint8_t (*)[32])hd->pins, .n_pins = hd->n_pins,
		};

		tp = cfg_trust_for(c, &p, mine, old, hd);
		if (tp == NULL)
			goto out;
	}
	h = cfg_prev_host(prev_hosts, hd, tp);
	if (h != NULL) {
		cfg->stats.hosts_reused++;
	} else {
		h = host_policy_new(hd->pattern, hd->name, hd->kind, hd->mode, tp);
		if (h == NULL) {
			cfg_err_at(c, hd->src, hd->line, "out of memory");
			goto out;
		}
		cfg->stats.hosts_built++;
	}
	cfg->host_origin[cfg->n_hosts].source = hd->src_i;
	cfg->host_origin[cfg->n_hosts].line = hd->line;
	cfg->hosts[cfg->n_hosts++] = h;
	/* Duplicates were refused while parsing. */
	if (hosts_index_add(cfg->index, h, &dup) != 0)
		cfg_err_at(c, hd->src, hd->line, "out of memory");
out:
	free(crls);
}

static int cfg_keep_eff(struct load_ctx *c);

/* After the whole file: CA entries, CRLs following their issuer, trust
 * policies, host policies and the index. */
static void cfg_finish(struct load_ctx *c)
{
	struct config *cfg = c->cfg;
	struct trust_slot *mine = NULL, *old = NULL;
	struct host_slot *prev_hosts = NULL, *hs, *tmp;
	int oom1 = 0, oom2 = 0;

	cfg_build_cas(c);
	if (c->failed)
		return;
	cfg_warn_split_crls(c, 0);
	cfg_share_crls(c);
	if (cfg_keep_eff(c) != 0) {
		cfg_err(c, 0, "out of memory");
		return;
	}
	for (size_t i = 0; i < c->n_cas && !c->failed; i++)
		cfg_warn_expiry(c, i);
	cfg->hosts = calloc(c->n_hosts + 1, sizeof(*cfg->hosts));
	cfg->host_origin = calloc(c->n_hosts + 1, sizeof(*cfg->host_origin));
	cfg->index = hosts_index_new();
	if (c->prev != NULL) {
		old = cfg_index_trusts(c->prev->trusts, c->prev->n_trusts, &oom1);
		prev_hosts = cfg_index_prev_hosts(c->prev, &oom2);
	}
	if (cfg->hosts == NULL || cfg->host_origin == NULL || cfg->index == NULL ||
	    oom1 || oom2)
		cfg_err(c, 0, "out of memory");
	for (size_t i = 0; i < c->n_hosts && !c->failed; i++)
		cfg_build_host(c, c->hosts[i], &mine, &old, prev_hosts);
	cfg_free_slots(&mine);
	cfg_free_slots(&old);
	HASH_ITER(hh, prev_hosts, hs, tmp) {
		HASH_DEL(prev_hosts, hs);
		free(hs);
	}
	if (!c->failed)
		cfg->default_policy = hosts_default(cfg->index);
}

static void cfg_ctx_free(struct load_ctx *c)
{
	struct ca_prev *p, *tmp;

	HASH_CLEAR(hh, c->host_set);
	HASH_CLEAR(hh, c->ca_set);
	HASH_ITER(hh, c->prev_cas, p, tmp) {
		HASH_DEL(c->prev_cas, p);
		free(p);
	}
	for (size_t i = 0; i < c->n_hosts; i++) {
		struct host_draft *h = c->hosts[i];

		for (size_t r = 0; r < h->n_refs; r++)
			free(h->refs[r].name);
		free(h->refs);
		for (size_t r = 0; r < h->n_identities; r++)
			free(h->identities[r]);
		free(h->identities);
		free(h->pins);
		free(h->pattern);
		free(h->name);
		free(h);
	}
	free(c->hosts);
	for (size_t i = 0; i < c->n_cas; i++) {
		struct ca_draft *d = c->cas[i];

		for (size_t r = 0; r < d->n_crls; r++)
			free(d->crls[r]);
		free(d->crls);
		free(d->crl_lines);
		ca_revocation_clear(&d->rev);
		free(d->eff);
		free(d->name);
		free(d->file);
		free(d);
	}
	free(c->cas);
	for (size_t i = 0; i < c->n_files; i++)
		free(c->files[i]);
	free(c->files);
	free(c->include_lines);
	free(c->dir);
}

/* libinih options are process globals (Debian builds it with
 * INI_RUNTIME_OPTIONS); set them before every parse. Loads are not run
 * concurrently (startup and SIGHUP reload happen on one thread). */
static void cfg_ini_options(void)
{
	static char inline_prefixes[] = ";#";
	static char start_prefixes[] = ";#";

	/* An indented line must not silently continue the previous value. */
	ini_allow_multiline = false;
	ini_allow_bom = true;
	ini_allow_inline_comments = true;
	ini_inline_comment_prefixes = inline_prefixes;
	ini_start_comment_prefixes = start_prefixes;
	ini_use_stack = true;
	ini_max_line = CONFIG_MAX_LINE;
	ini_stop_on_first_error = true;
	ini_allow_no_value = false;
}

/* Record a file read for this generation, with the SHA-256 of its bytes. */
static int cfg_add_source(struct load_ctx *c, const char *path,
                          const char *text, size_t len)
{
	struct config *cfg = c->cfg;
	struct config_source *src;
	unsigned int n = 0;

	src = cfg_append(c, cfg->sources, cfg->n_sources, sizeof(*src));
	if (src == NULL)
		return -1;
	cfg->sources = src;
	src = &cfg->sources[cfg->n_sources];
	src->path = cfg_strdup(c, path);
	if (src->path == NULL)
		return -1;
	cfg->n_sources++;
	if (EVP_Digest(text, len, src->sha256, &n, EVP_sha256(), NULL) != 1) {
		ERR_clear_error();
		cfg_err(c, 0, "cannot hash %s", path);
		return -1;
	}
	return 0;
}

static double cfg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The directory of `path`, malloc'd ("." when it has none). */
static char *cfg_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* Parse c->text (the file c->path) into drafts. */
static void cfg_parse(struct load_ctx *c)
{
	int rc;

	cfg_ini_options();
	rc = ini_parse_stream(cfg_reader, c, cfg_handler, c);
	if (!c->failed && rc != 0) {
		if (rc > 0)
			cfg_err(c, rc, "syntax error (expected [section] or "
			        "key = value)");
		else
			cfg_err(c, 0, "out of memory");
	}
}

/* ---- includes ----------------------------------------------------------- */

/* glob(3) gives its error callback no context: the first directory that
 * failed in the current glob() call is kept here (loads run on one thread
 * at a time, see cfg_ini_options). */
static _Thread_local struct {
	char path[PATH_MAX];
	int err;
} cfg_glob_fail;

static int cfg_glob_err(const char *epath, int eerrno)
{
	if (cfg_glob_fail.err == 0) {
		snprintf(cfg_glob_fail.path, sizeof(cfg_glob_fail.path), "%s", epath);
		cfg_glob_fail.err = eerrno;
	}
	return 1;
}

/* A file already matched, by its real path. */
struct cfg_seen_file {
	UT_hash_handle hh;
	char path[];
};

/* Add `path` to `set`: 1 if it was new, 0 if there already, -1 when out
 * of memory. */
static int cfg_seen_add(struct cfg_seen_file **set, const char *path)
{
	char real[PATH_MAX];
	const char *key = realpath(path, real) != NULL ? real : path;
	struct cfg_seen_file *f = NULL;
	size_t len = strlen(key);
	int hash_oom = 0;

	HASH_FIND(hh, *set, key, len, f);
	if (f != NULL)
		return 0;
	f = malloc(sizeof(*f) + len + 1);
	if (f == NULL)
		return -1;
	memcpy(f->path, key, len + 1);
	HASH_ADD_KEYPTR(hh, *set, f->path, len, f);
	if (hash_oom) {
		free(f);
		return -1;
	}
	return 1;
}

static void cfg_seen_free(struct cfg_seen_file **set)
{
	struct cfg_seen_file *f, *tmp;

	HASH_ITER(hh, *set, f, tmp) {
		HASH_DEL(*set, f);
		free(f);
	}
}

/* The files the include globs match: each glob's matches sorted, the
 * globs in order; a file matched before (by its real path) and the main
 * file are skipped. A glob matching nothing is fine; a directory it
 * cannot read is an error. Returns 0 with a malloc'd array of malloc'd
 * paths in *out, or -1 with what is wrong in why and the glob at fault in
 * *which (n when out of memory). */
static int cfg_glob_includes(char *const *globs, size_t n,
                             const char *main_path, char ***out,
                             size_t *n_out, size_t *which, char *why,
                             size_t whylen)
{
	struct cfg_seen_file *seen = NULL;
	char **files = NULL;
	size_t nf = 0;
	int rc = -1;

	*out = NULL;
	*n_out = 0;
	*which = n;
	snprintf(why, whylen, "out of memory");
	if (n > 0 && cfg_seen_add(&seen, main_path) == -1)
		goto out;
	for (size_t i = 0; i < n; i++) {
		glob_t g;
		int grc;

		memset(&g, 0, sizeof(g));
		cfg_glob_fail.err = 0;
		grc = glob(globs[i], GLOB_ERR, cfg_glob_err, &g);
		if (grc == GLOB_NOMATCH) {
			globfree(&g);
			continue;
		}
		if (grc != 0) {
			*which = i;
			/* The message may be cut short: the caller's buffer. */
			if (grc == GLOB_ABORTED &&
			    snprintf(why, whylen, "include \"%s\": cannot read %s: %s",
			             globs[i], cfg_glob_fail.err ? cfg_glob_fail.path
			             : "a directory", strerror(cfg_glob_fail.err ?
			             cfg_glob_fail.err : EIO)) < 0)
				why[0] = '\0';
			else if (grc != GLOB_ABORTED)
				snprintf(why, whylen, "include \"%s\": out of memory",
				         globs[i]);
			globfree(&g);
			goto out;
		}
		for (size_t k = 0; k < g.gl_pathc; k++) {
			char **a;
			int added = cfg_seen_add(&seen, g.gl_pathv[k]);

			if (added == 0)
				continue;
			if (nf >= CONFIG_MAX_INCLUDED) {
				*which = i;
				snprintf(why, whylen, "include \"%s\": more than %d included "
				         "files", globs[i], CONFIG_MAX_INCLUDED);
				globfree(&g);
				goto out;
			}
			a = added == 1 ? realloc(files, (nf + 1) * sizeof(*a)) : NULL;
			if (a == NULL || (a[nf] = strdup(g.gl_pathv[k])) == NULL) {
				if (a != NULL)
					files = a;
				globfree(&g);
				goto out;
			}
			files = a;
			nf++;
		}
		globfree(&g);
	}
	*out = files;
	*n_out = nf;
	files = NULL;
	nf = 0;
	rc = 0;
out:
	for (size_t i = 0; i < nf; i++)
		free(files[i]);
	free(files);
	cfg_seen_free(&seen);
	return rc;
}

/* Remember a directory the includes read (once). Takes `dir`. */
static void cfg_add_include_dir(struct load_ctx *c, char *dir)
{
	struct config *cfg = c->cfg;
	char **a;

	if (dir == NULL) {
		cfg_err(c, 0, "out of memory");
		return;
	}
	for (size_t i = cfg->n_include_dirs; i > 0; i--) {
		if (strcmp(cfg->include_dirs[i - 1], dir) == 0) {
			free(dir);
			return;
		}
	}
	a = cfg_append(c, cfg->include_dirs, cfg->n_include_dirs, sizeof(*a));
	if (a == NULL) {
		free(dir);
		return;
	}
	cfg->include_dirs = a;
	a[cfg->n_include_dirs++] = dir;
}

/* The directory a glob starts reading: the part before the first
 * component with a wildcard. */
static char *cfg_glob_dir(const char *pattern)
{
	const char *end = strpbrk(pattern, "*?[");

	if (end == NULL)
		return cfg_dirname(pattern);
	while (end > pattern && end[-1] != '/')
		end--;
	if (end == pattern)
		return strdup(".");
	if (end - 1 == pattern)
		return strdup("/");
	return strndup(pattern, (size_t)(end - 1 - pattern));
}

static void cfg_parse_included(struct load_ctx *c, const char *path,
                               const char *text, size_t len);

/* Read and parse one included file into the drafts. */
static void cfg_read_included(struct load_ctx *c, const char *path)
{
	char *text = NULL;
	size_t len = 0;

	if (file_read(path, CONFIG_MAX_FILE, &text, &len) == -1) {
		cfg_err_at(c, path, 0, "cannot read: %s", strerror(errno));
		return;
	}
	cfg_parse_included(c, path, text, len);
	free(text);
}

/* Parse the text of an included file (or of the state file) into the
 * drafts, as the file `path`: [ca] and [host] sections only, relative
 * paths against its directory. */
static void cfg_parse_included(struct load_ctx *c, const char *path,
                               const char *text, size_t len)
{
	char *main_dir = c->dir;

	if (len > CONFIG_MAX_TOTAL - c->total_bytes) {
		cfg_err_at(c, path, 0, "the included files hold more than %d MiB",
		           CONFIG_MAX_TOTAL / (1024 * 1024));
		return;
	}
	c->total_bytes += len;
	c->dir = cfg_dirname(path);
	if (c->dir == NULL) {
		cfg_err(c, 0, "out of memory");
	} else if (cfg_add_source(c, path, text, len) == 0) {
		c->path = path;
		c->text = text;
		c->text_len = len;
		c->pos = 0;
		c->line = 0;
		c->included = 1;
		c->sec = SEC_NONE;
		c->seen = 0;
		cfg_parse(c);
	}
	free(c->dir);
	c->dir = main_dir;
	c->text = NULL;
	c->text_len = 0;
}

/* After the main file: every file its `include` lines match, in order. */
static void cfg_includes(struct load_ctx *c)
{
	struct config *cfg = c->cfg;
	char why[CONFIG_ERR_LEN];
	size_t which;

	if (cfg->n_includes == 0)
		return;
	if (cfg_glob_includes(cfg->includes, cfg->n_includes, c->main_path,
	                      &c->files, &c->n_files, &which, why,
	                      sizeof(why)) == -1) {
		cfg_err(c, which < cfg->n_includes ? c->include_lines[which] : 0,
		        "%s", why);
		return;
	}
	for (size_t i = 0; i < cfg->n_includes && !c->failed; i++)
		cfg_add_include_dir(c, cfg_glob_dir(cfg->includes[i]));
	for (size_t i = 0; i < c->n_files && !c->failed; i++) {
		cfg_add_include_dir(c, cfg_dirname(c->files[i]));
		if (!c->failed)
			cfg_read_included(c, c->files[i]);
	}
	/* Errors from here on name their draft's file, or the main one. */
	c->path = c->main_path;
	c->included = 0;
}

/* After the includes: the API's state file, STATE/api.conf, read like an
 * included file (its text from `o` when the caller is about to write it,
 * else from the disk; a missing file is an empty store). */
static void cfg_state(struct load_ctx *c, const struct config_opts *o)
{
	struct config *cfg = c->cfg;
	const char *dir = o != NULL && o->state_dir != NULL ? o->state_dir :
	                  settings_state_dir(&cfg->agent);
	char *text = NULL;
	size_t len = 0;
	int n;

	cfg->state_dir = strdup(dir);
	n = snprintf(NULL, 0, "%s/%s", dir, CONFIG_API_FILE);
	cfg->api_path = n > 0 ? malloc((size_t)n + 1) : NULL;
	if (cfg->state_dir == NULL || cfg->api_path == NULL) {
		cfg_err(c, 0, "out of memory");
		return;
	}
	snprintf(cfg->api_path, (size_t)n + 1, "%s/%s", dir, CONFIG_API_FILE);
	if (c->no_include)
		return;         /* loads from a string read no other file */
	if (o != NULL && o->api_text != NULL) {
		/* The limit of the file it is about to become, so that what the
		 * API writes always loads at the next start. */
		if (o->api_len > CONFIG_MAX_STATE) {
			cfg_err_at(c, cfg->api_path, 0, "the API's state would exceed %d "
			           "MiB", CONFIG_MAX_STATE / (1024 * 1024));
			return;
		}
		cfg_parse_included(c, cfg->api_path, o->api_text, o->api_len);
	} else if (file_read(cfg->api_path, CONFIG_MAX_STATE, &text, &len) == 0) {
		cfg_parse_included(c, cfg->api_path, text, len);
		free(text);
	} else if (errno != ENOENT) {
		cfg_err_at(c, cfg->api_path, 0, "cannot read: %s", strerror(errno));
		return;
	} else {
		return;
	}
	if (!c->failed)
		cfg->api_source = cfg->n_sources - 1;
	c->path = c->main_path;
	c->included = 0;
}

static int cfg_load_text(const char *text, size_t len, const char *path,
                         int no_include, const struct config *prev,
                         const struct config_opts *o,
                         struct config **out, char *err, size_t errlen)
{
	struct load_ctx c;
	double t0 = cfg_now_ms();
	struct config *cfg;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	memset(&c, 0, sizeof(c));
	c.path = path;
	c.main_path = path;
	c.no_include = no_include;
	c.err = err;
	c.errlen = errlen;
	c.text = text;
	c.text_len = len;
	c.prev = prev;
	c.now = time(NULL);

	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL) {
		cfg_err(&c, 0, "out of memory");
		return -1;
	}
	c.cfg = cfg;
	config_agent_defaults(&cfg->agent);
	cfg->path = strdup(path);
	c.dir = cfg_dirname(path);
	if (cfg->path == NULL || c.dir == NULL) {
		cfg_err(&c, 0, "out of memory");
		goto fail;
	}

	if (cfg_add_source(&c, path, text, len) == -1)
		goto fail;
	cfg->api_source = SIZE_MAX;
	cfg_parse(&c);
	if (!c.failed)
		cfg_includes(&c);
	if (!c.failed)
		cfg_state(&c, o);
	if (!c.failed)
		cfg_finish(&c);
	if (c.failed)
		goto fail;
	{
		char why[CONFIG_ERR_LEN];

		if (store_settings_check(&cfg->store, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s:%d: [store]: %s", path,
			         cfg->store.line, why);
			goto fail;
		}
	}
	/* Re-read at every load: a bad file refuses the whole generation. */
	if (cfg->agent.admin_token_file != NULL &&
	    tokens_load(cfg->agent.admin_token_file, &cfg->tokens, err, errlen) != 0)
		goto fail;
	cfg_ctx_free(&c);
	ERR_clear_error();
	cfg->stats.load_ms = cfg_now_ms() - t0;
	*out = cfg;
	return 0;
fail:
	cfg_ctx_free(&c);
	config_free(cfg);
	ERR_clear_error();
	return -1;
}

/* See config.h. */
int config_reload(const char *path, const struct config *prev,
                  struct config **out, char *err, size_t errlen)
{
	return config_reload_opts(path, prev, NULL, out, err, errlen);
}

/* See config.h. */
int config_reload_opts(const char *path, const struct config *prev,
                       const struct config_opts *o, struct config **out,
                       char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if (file_read(path, CONFIG_MAX_FILE, &text, &len) == -1) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s:0: cannot read: %s", path,
			         strerror(errno));
		return -1;
	}
	rc = cfg_load_text(text, len, path, 0, prev, o, out, err, errlen);
	free(text);
	return rc;
}

/* See config.h. */
int config_load(const char *path, struct config **out, char *err,
                size_t errlen)
{
	return config_reload(path, NULL, out, err, errlen);
}

/* See config.h. */
int config_reload_string(const char *text, const char *path,
                         const struct config *prev, struct config **out,
                         char *err, size_t errlen)
{
	return cfg_load_text(text, strlen(text), path, 1, prev, NULL, out, err,
	                     errlen);
}

/* See config.h. */
int config_load_string(const char *text, const char *path,
                       struct config **out, char *err, size_t errlen)
{
	return config_reload_string(text, path, NULL, out, err, errlen);
}

/* ---- what changed since a load ------------------------------------------ */

/* SHA-256 of a file of at most `max` bytes. Returns 0 or -1. */
static int cfg_file_sha256(const char *path, size_t max, uint8_t out[32])
{
	unsigned char buf[65536];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	FILE *f = fopen(path, "rb");
	size_t total = 0, n;
	unsigned int dl = 0;
	int rc = -1;

	if (md == NULL || f == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		total += n;
		if (total > max || EVP_DigestUpdate(md, buf, n) != 1)
			goto out;
	}
	if (!ferror(f) && EVP_DigestFinal_ex(md, out, &dl) == 1 && dl == 32)
		rc = 0;
out:
	if (f != NULL)
		fclose(f);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return rc;
}

/* 1 (and why) if `path` no longer has the bytes of `digest`. */
static int cfg_file_differs(const char *path, size_t max,
                            const uint8_t digest[32], char *why, size_t whylen)
{
	uint8_t d[32];

	static const uint8_t absent[32];

	if (cfg_file_sha256(path, max, d) == -1) {
		/* A crl-url copy not fetched yet: still absent, no change. */
		if (memcmp(digest, absent, 32) == 0 && access(path, F_OK) == -1 &&
		    errno == ENOENT)
			return 0;
		snprintf(why, whylen, "%s cannot be read", path);
		return 1;
	}
	if (memcmp(d, digest, 32) != 0) {
		snprintf(why, whylen, "%s changed", path);
		return 1;
	}
	return 0;
}

/* See config.h. */
int config_changed(const struct config *cfg, char *why, size_t whylen)
{
	char **files = NULL, gwhy[CONFIG_ERR_LEN];
	size_t n = 0, which, n_inc;
	int changed = 0;

	if (cfg->n_sources == 0)
		return 1;
	if (cfg_file_differs(cfg->path, CONFIG_MAX_FILE, cfg->sources[0].sha256,
	                     why, whylen))
		return 1;
	if (cfg_glob_includes(cfg->includes, cfg->n_includes, cfg->path, &files,
	                      &n, &which, gwhy, sizeof(gwhy)) == -1) {
		snprintf(why, whylen, "%s", gwhy);
		return 1;
	}
	/* The sources: the main file, the included ones, then the state's. */
	n_inc = cfg->n_sources - 1 - (cfg->api_source != SIZE_MAX);
	if (n != n_inc) {
		snprintf(why, whylen, "the includes now match %zu files, not %zu",
		         n, n_inc);
		changed = 1;
	}
	for (size_t i = 0; i < n && !changed; i++) {
		if (strcmp(files[i], cfg->sources[i + 1].path) != 0) {
			snprintf(why, whylen, "%s is included now", files[i]);
			changed = 1;
		} else {
			changed = cfg_file_differs(files[i], CONFIG_MAX_FILE,
			                           cfg->sources[i + 1].sha256, why,
			                           whylen);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	free(files);
	for (size_t i = 0; i < cfg->n_cas && !changed; i++) {
		const struct ca_entry *ca = cfg->cas[i];

		/* The state's PEM files are named by their digest (its crl-url
		 * copies are not, and are compared below). */
		if (cfg->api_source == SIZE_MAX || cfg->ca_origin == NULL ||
		    cfg->ca_origin[i].source != cfg->api_source)
			changed = cfg_file_differs(ca->file, CA_MAX_FILE, ca->digest, why,
			                           whylen);
		for (size_t k = 0; k < ca->n_crl_files && !changed; k++)
			changed = cfg_file_differs(ca->crl_files[k].path, CRL_MAX_FILE,
			                           ca->crl_files[k].digest, why, whylen);
	}
	if (!changed && cfg->tokens != NULL)
		changed = cfg_file_differs(tokens_path(cfg->tokens), TOKENS_MAX_FILE,
		                           tokens_digest(cfg->tokens), why, whylen);
	/* The state file, when edited by hand or restored from a backup. */
	if (!changed && cfg->api_source != SIZE_MAX)
		changed = cfg_file_differs(cfg->api_path, CONFIG_MAX_STATE,
		                           cfg->sources[cfg->api_source].sha256, why,
		                           whylen);
	else if (!changed && cfg->api_path != NULL && access(cfg->api_path, F_OK) == 0) {
		snprintf(why, whylen, "%s appeared", cfg->api_path);
		changed = 1;
	}
	return changed;
}

/* See config.h. */
const char **config_watch_paths(const struct config *cfg, size_t *n)
{
	const char **p;
	size_t total = 2 + cfg->n_include_dirs, k = 0;

	for (size_t i = 0; i < cfg->n_cas; i++)
		total += 1 + cfg->cas[i]->n_crl_files;
	p = calloc(total, sizeof(*p));
	*n = 0;
	if (p == NULL)
		return NULL;
	p[k++] = cfg->path;
	for (size_t i = 0; i < cfg->n_include_dirs; i++)
		p[k++] = cfg->include_dirs[i];
	for (size_t i = 0; i < cfg->n_cas; i++) {
		p[k++] = cfg->cas[i]->file;
		for (size_t j = 0; j < cfg->cas[i]->n_crl_files; j++)
			p[k++] = cfg->cas[i]->crl_files[j].path;
	}
	if (cfg->tokens != NULL)
		p[k++] = tokens_path(cfg->tokens);
	*n = k;
	return p;
}

/* ---- deriving a generation: the state file's hosts only ------------------ */

/* Every CA's effective CRLs, kept with the generation so that a derived
 * one can build host trust policies without reading the files again. */
static int cfg_keep_eff(struct load_ctx *c)
{
	struct config *cfg = c->cfg;

	cfg->ca_eff = calloc(c->n_cas + 1, sizeof(*cfg->ca_eff));
	if (cfg->ca_eff == NULL)
		return -1;
	for (size_t i = 0; i < c->n_cas; i++) {
		struct config_crls *e = &cfg->ca_eff[i];

		if (c->cas[i]->n_eff == 0)
			continue;
		e->crls = malloc(c->cas[i]->n_eff * sizeof(*e->crls));
		if (e->crls == NULL)
			return -1;
		memcpy(e->crls, c->cas[i]->eff, c->cas[i]->n_eff * sizeof(*e->crls));
		e->n = c->cas[i]->n_eff;
	}
	return 0;
}

static char **cfg_strv_dup(char *const *v, size_t n, int *oom)
{
	char **out = calloc(n + 1, sizeof(*out));

	if (out == NULL) {
		*oom = 1;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (v[i] != NULL && (out[i] = strdup(v[i])) == NULL)
			*oom = 1;
	return out;
}

static char *cfg_str_dup(const char *s, int *oom)
{
	char *d = s != NULL ? strdup(s) : NULL;

	if (s != NULL && d == NULL)
		*oom = 1;
	return d;
}

/* prev's effective CRLs as cfg's, for CAs that are prev's in the same
 * order. 0 or -1 (OOM). */
static int cfg_copy_eff(struct config *cfg, const struct config *prev)
{
	cfg->ca_eff = calloc(prev->n_cas + 1, sizeof(*cfg->ca_eff));
	if (cfg->ca_eff == NULL)
		return -1;
	for (size_t i = 0; i < prev->n_cas; i++) {
		struct config_crls *e = &cfg->ca_eff[i];

		if (prev->ca_eff[i].n == 0)
			continue;
		e->crls = malloc(prev->ca_eff[i].n * sizeof(*e->crls));
		if (e->crls == NULL)
			return -1;
		memcpy(e->crls, prev->ca_eff[i].crls, prev->ca_eff[i].n * sizeof(*e->crls));
		e->n = prev->ca_eff[i].n;
	}
	return 0;
}

/* What a derived generation shares with `prev` by value: the settings,
 * the sources (the state file's digest replaced), includes, warnings and,
 * with keep_cas, the CA entries (referenced). */
static int cfg_derive_base(const struct config *prev, struct config *cfg,
                           const char *api_text, size_t api_len, int keep_cas)
{
	int oom = 0;
	size_t ns = prev->n_sources + (prev->api_source == SIZE_MAX);

	cfg->agent = prev->agent;
	for (size_t i = 0; i < prev->agent.n_listen; i++)
		cfg->agent.listen[i] = cfg_str_dup(prev->agent.listen[i], &oom);
	for (size_t i = 0; i < prev->agent.n_admin_listen; i++)
		cfg->agent.admin_listen[i] = cfg_str_dup(prev->agent.admin_listen[i], &oom);
	cfg->agent.state_dir = cfg_str_dup(prev->agent.state_dir, &oom);
	cfg->agent.admin_token_file = cfg_str_dup(prev->agent.admin_token_file, &oom);
	if (store_settings_copy(&cfg->store, &prev->store) != 0)
		oom = 1;
	cfg->path = cfg_str_dup(prev->path, &oom);
	cfg->state_dir = cfg_str_dup(prev->state_dir, &oom);
	cfg->api_path = cfg_str_dup(prev->api_path, &oom);
	cfg->includes = cfg_strv_dup(prev->includes, prev->n_includes, &oom);
	cfg->n_includes = prev->n_includes;
	cfg->include_dirs = cfg_strv_dup(prev->include_dirs, prev->n_include_dirs, &oom);
	cfg->n_include_dirs = prev->n_include_dirs;
	cfg->warnings = cfg_strv_dup(prev->warnings, prev->n_warnings, &oom);
	cfg->n_warnings = prev->n_warnings;
	cfg->sources = calloc(ns + 1, sizeof(*cfg->sources));
	if (oom || cfg->sources == NULL)
		return -1;
	for (size_t i = 0; i < prev->n_sources; i++) {
		cfg->sources[i] = prev->sources[i];
		cfg->sources[i].path = cfg_str_dup(prev->sources[i].path, &oom);
	}
	cfg->n_sources = prev->n_sources;
	cfg->api_source = prev->api_source;
	if (cfg->api_source == SIZE_MAX) {
		cfg->api_source = cfg->n_sources++;
		cfg->sources[cfg->api_source].path = cfg_str_dup(prev->api_path, &oom);
	}
	if (EVP_Digest(api_text, api_len, cfg->sources[cfg->api_source].sha256,
	               NULL, EVP_sha256(), NULL) != 1)
		return -1;
	if (!keep_cas)
		return oom ? -1 : 0;
	cfg->cas = calloc(prev->n_cas + 1, sizeof(*cfg->cas));
	cfg->ca_origin = calloc(prev->n_cas + 1, sizeof(*cfg->ca_origin));
	if (oom || cfg->cas == NULL || cfg->ca_origin == NULL)
		return -1;
	for (size_t i = 0; i < prev->n_cas; i++) {
		cfg->cas[i] = ca_ref(prev->cas[i]);
		cfg->ca_origin[i] = prev->ca_origin[i];
		cfg->n_cas++;
		cfg->stats.cas_reused++;
	}
	return cfg_copy_eff(cfg, prev);
}

/* Put `tp` (a policy of prev, for a host kept as it is) among the
 * generation's trust policies, once. */
static int cfg_keep_trust(struct config *cfg, struct trust_slot **mine,
                          struct trust_policy *tp)
{
	struct trust_slot *s = NULL;
	struct trust_policy **tps;
	int hash_oom = 0;

	HASH_FIND(hh, *mine, tp->key, 32, s);
	if (s != NULL)
		return 0;
	tps = realloc(cfg->trusts, (cfg->n_trusts + 1) * sizeof(*tps));
	s = calloc(1, sizeof(*s));
	if (tps == NULL || s == NULL) {
		free(s);
		if (tps != NULL)
			cfg->trusts = tps;
		return -1;
	}
	cfg->trusts = tps;
	cfg->trusts[cfg->n_trusts++] = trust_policy_ref(tp);
	cfg->stats.trusts_reused++;
	s->tp = tp;
	HASH_ADD(hh, *mine, tp->key, 32, s);
	if (hash_oom) {
		free(s);
		return -1;
	}
	return 0;
}

/* The host draft of a spec (fields borrowed; refs allocated). */
static int cfg_spec_draft(const struct config *prev, const struct config_host_spec *sp,
                          struct host_draft *hd, char *why, size_t whylen)
{
	memset(hd, 0, sizeof(*hd));
	if (hosts_parse_pattern(sp->pattern, &hd->kind, hd->key, why, whylen) != 0)
		return -1;
	hd->pattern = (char *)sp->pattern;
	hd->name = hd->key;   /* the normalized name; key is not used here */
	hd->mode = sp->mode;
	hd->purpose = sp->purpose;
	hd->crl_check = sp->crl_check;
	hd->crl_line = sp->crl_check != CRL_CHECK_DEFAULT ? sp->crl_line : 0;
	hd->verify_depth = sp->verify_depth;
	hd->identities = (char **)sp->identities;
	hd->n_identities = sp->n_identities;
	hd->pins = (uint8_t (*)[32])sp->pins;
	hd->n_pins = sp->n_pins;
	hd->src = prev->api_path;
	hd->line = sp->line;
	hd->refs = calloc(sp->n_cas + 1, sizeof(*hd->refs));
	if (hd->refs == NULL)
		return -1;
	for (size_t k = 0; k < sp->n_cas; k++) {
		hd->refs[k].name = (char *)sp->cas[k];
		hd->refs[k].line = sp->ca_line;
	}
	hd->n_refs = sp->n_cas;
	return 0;
}

/* A state [ca] that is not prev's as it is: its draft's files and
 * revocation keys, then the entry (ca_load reuses prev's of that name when
 * the files are the same). */
static void cfg_derive_ca(struct load_ctx *c, const struct config_ca_spec *sp,
                          struct ca_draft *d)
{
	char why[CONFIG_ERR_LEN];

	if (sp->n_crls > CA_MAX_CRL_FILES) {
		cfg_err_at(c, d->src, sp->line, "too many crl files in one [ca] (at "
		           "most %d)", CA_MAX_CRL_FILES);
		return;
	}
	/* Paths of the state text resolve against its directory (c->dir). */
	d->file = sp->file != NULL ? cfg_resolve(c, sp->file) : NULL;
	d->crls = calloc(sp->n_crls + 1, sizeof(*d->crls));
	d->crl_lines = calloc(sp->n_crls + 1, sizeof(*d->crl_lines));
	if (d->crls == NULL || d->crl_lines == NULL) {
		cfg_err(c, 0, "out of memory");
		return;
	}
	for (size_t k = 0; k < sp->n_crls && !c->failed; k++) {
		d->crls[k] = cfg_resolve(c, sp->crls[k]);
		d->crl_lines[k] = sp->crl_lines != NULL ? sp->crl_lines[k] : sp->line;
		d->n_crls += d->crls[k] != NULL;
	}
	for (size_t k = 0; k < sp->n_rev && !c->failed; k++) {
		int line = sp->rev_lines != NULL ? sp->rev_lines[k] : sp->line;
		int rc = ca_revocation_set(&d->rev, sp->rev_keys[k], sp->rev_vals[k],
		                           why, sizeof(why));

		if (rc == 1)
			cfg_err_at(c, d->src, line, "unknown key \"%s\" in [ca %s]",
			           sp->rev_keys[k], d->name);
		else if (rc == -1)
			cfg_err_at(c, d->src, line, "%s", why);
	}
	if (!c->failed)
		(void)cfg_load_ca(c, d);
}

/* The CAs of a derived generation: the files' as prev has them, then the
 * state's specs. 1 when they are prev's exactly (same entries, same
 * order), 0 when they differ, -1 on error. */
static int cfg_derive_cas(struct load_ctx *c, const struct config_ca_spec *specs,
                          size_t n, struct ca_draft *drafts)
{
	const struct config *prev = c->prev;
	struct config *cfg = c->cfg;
	int hash_oom = 0, same = 1;

	for (size_t i = 0; i < prev->n_cas; i++) {
		size_t k = cfg->n_cas;

		if (prev->api_source != SIZE_MAX &&
		    prev->ca_origin[i].source == prev->api_source)
			continue;
		cfg->cas[k] = ca_ref(prev->cas[i]);
		cfg->ca_origin[k] = prev->ca_origin[i];
		cfg->n_cas++;
		cfg->stats.cas_reused++;
		drafts[k].name = prev->cas[i]->name;
		drafts[k].src = prev->sources[prev->ca_origin[i].source].path;
		drafts[k].line = prev->ca_origin[i].line;
		drafts[k].src_i = prev->ca_origin[i].source;
	}
	/* The files' names first: a state CA may not take one. */
	for (size_t k = 0; k < cfg->n_cas && !hash_oom; k++) {
		drafts[k].index = k;
		c->cas[k] = &drafts[k];
		HASH_ADD_KEYPTR(hh, c->ca_set, drafts[k].name, strlen(drafts[k].name),
		                &drafts[k]);
	}
	for (size_t i = 0; i < n && !c->failed && !hash_oom; i++) {
		const struct config_ca_spec *sp = &specs[i];
		struct ca_draft *d = &drafts[cfg->n_cas], *dup = NULL;

		d->name = (char *)sp->name;
		d->src = prev->api_path;
		d->src_i = cfg->api_source;
		d->line = sp->line;
		d->index = cfg->n_cas;
		ca_revocation_defaults(&d->rev);
		HASH_FIND_STR(c->ca_set, sp->name, dup);
		if (dup != NULL) {
			char at[PATH_MAX + 32];

			cfg_where(d->src, dup->src, dup->line, at, sizeof(at));
			cfg_err_at(c, d->src, sp->line, "duplicate [ca %s] (first at %s)",
			           sp->name, at);
			break;
		}
		d->file_line = sp->file_line;
		if (sp->same != NULL && strcmp(sp->same->name, sp->name) == 0) {
			/* The lines its warnings name (cfg_note). */
			if (sp->n_crls > 0 && sp->crl_lines != NULL) {
				d->crl_lines = malloc(sp->n_crls * sizeof(*d->crl_lines));
				if (d->crl_lines == NULL) {
					cfg_err(c, 0, "out of memory");
					break;
				}
				memcpy(d->crl_lines, sp->crl_lines,
				       sp->n_crls * sizeof(*d->crl_lines));
				d->n_crls = sp->n_crls;
			}
			cfg->cas[d->index] = ca_ref(sp->same);
			cfg->stats.cas_reused++;
		} else {
			if (c->prev_cas == NULL && cfg_index_prev_cas(c) == -1) {
				cfg_err(c, 0, "out of memory");
				break;
			}
			cfg_derive_ca(c, sp, d);
			if (c->failed)
				break;
		}
		cfg->ca_origin[d->index].source = d->src_i;
		cfg->ca_origin[d->index].line = sp->line;
		cfg->n_cas++;
		c->cas[d->index] = d;
		HASH_ADD_KEYPTR(hh, c->ca_set, d->name, strlen(d->name), d);
	}
	if (hash_oom)
		cfg_err(c, 0, "out of memory");
	if (c->failed)
		return -1;
	c->n_cas = cfg->n_cas;
	if (cfg->n_cas != prev->n_cas)
		return 0;
	for (size_t k = 0; k < cfg->n_cas && same; k++)
		same = cfg->cas[k] == prev->cas[k];
	return same;
}

/* A trust policy of prev and whether this generation's CAs would build it
 * again: the same entries under its CAs' names, the same effective CRLs
 * in the same order (cfg_host_cas). */
struct trust_check {
	const struct trust_policy *tp;
	int current;
	UT_hash_handle hh;
};

static int cfg_trust_current(struct load_ctx *c, struct trust_check **memo,
                             const struct trust_policy *tp)
{
	struct trust_check *t = NULL;
	size_t n_crls = 0;
	int current = 1, hash_oom = 0;

	if (tp == NULL)
		return 1;
	HASH_FIND_PTR(*memo, &tp, t);
	if (t != NULL)
		return t->current;
	for (size_t j = 0; j < tp->n_cas && current; j++) {
		struct ca_draft *d = NULL;

		HASH_FIND_STR(c->ca_set, tp->cas[j]->name, d);
		if (d == NULL || c->cfg->cas[d->index] != tp->cas[j]) {
			current = 0;
			break;
		}
		/* The union, in order, without repeats: what cfg_host_cas does. */
		for (size_t e = 0; e < d->n_eff && current; e++) {
			size_t k;

			for (k = 0; k < n_crls && tp->crls[k] != d->eff[e]; k++)
				;
			if (k < n_crls)
				continue;
			current = n_crls < tp->n_crls && tp->crls[n_crls] == d->eff[e];
			n_crls++;
		}
	}
	current = current && n_crls == tp->n_crls;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -1;
	t->tp = tp;
	t->current = current;
	HASH_ADD_PTR(*memo, tp, t);
	if (hash_oom) {
		free(t);
		return -1;
	}
	return current;
}

static void cfg_free_checks(struct trust_check **memo)
{
	struct trust_check *t, *tmp;

	HASH_ITER(hh, *memo, t, tmp) {
		HASH_DEL(*memo, t);
		free(t);
	}
}

/* Drop prev's warnings about the state file (its CA lines may move). */
static void cfg_drop_state_warnings(struct config *cfg)
{
	size_t n = strlen(cfg->api_path), k = 0;

	for (size_t i = 0; i < cfg->n_warnings; i++) {
		if (strncmp(cfg->warnings[i], cfg->api_path, n) == 0 &&
		    cfg->warnings[i][n] == ':')
			free(cfg->warnings[i]);
		else
			cfg->warnings[k++] = cfg->warnings[i];
	}
	cfg->n_warnings = k;
}

/* A derived generation's drafts; `own_eff`: their eff arrays are theirs
 * (cfg_share_crls made them), not cfg's. */
static void cfg_free_ca_drafts(struct ca_draft *drafts, size_t n, int own_eff)
{
	for (size_t i = 0; drafts != NULL && i < n; i++) {
		for (size_t k = 0; drafts[i].crls != NULL && k < drafts[i].n_crls; k++)
			free(drafts[i].crls[k]);
		free(drafts[i].crls);
		free(drafts[i].crl_lines);
		free(drafts[i].file);
		if (own_eff)
			free(drafts[i].eff);
		ca_revocation_clear(&drafts[i].rev);
	}
	free(drafts);
}

/* See config.h. */
int config_derive(const struct config *prev,
                  const struct config_ca_spec *ca_specs, size_t n_cas,
                  const struct config_host_spec *specs, size_t n,
                  const char *api_text, size_t api_len,
                  struct config **out, char *err, size_t errlen)
{
	double t0 = cfg_now_ms();
	struct load_ctx c;
	struct config *cfg;
	struct ca_draft *drafts = NULL;
	struct trust_slot *mine = NULL, *old = NULL;
	struct trust_check *checks = NULL;
	unsigned char *build = NULL;    /* per spec: build it (not taken) */
	size_t n_file = 0, n_drafts = 0, first_state = 0;
	int oom1 = 0, hash_oom = 0, cas_same = 1, need_index = 0;
	int rc = -1;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	memset(&c, 0, sizeof(c));
	c.err = err;
	c.errlen = errlen;
	c.prev = prev;
	c.path = prev->path;
	c.main_path = prev->path;
	c.now = time(NULL);
	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL || prev->api_path == NULL || prev->ca_eff == NULL) {
		free(cfg);
		snprintf(err, errlen, "%s:0: out of memory", prev->path);
		return -1;
	}
	c.cfg = cfg;
	if (cfg_derive_base(prev, cfg, api_text, api_len, ca_specs == NULL) != 0) {
		cfg_err(&c, 0, "out of memory");
		goto fail;
	}
	/* The state's paths resolve against its directory, as at a load. */
	c.dir = cfg->state_dir;
	n_drafts = ca_specs == NULL ? prev->n_cas : prev->n_cas + n_cas;
	drafts = calloc(n_drafts + 1, sizeof(*drafts));
	c.cas = calloc(n_drafts + 1, sizeof(*c.cas));
	build = calloc(n + 1, 1);
	if (drafts == NULL || c.cas == NULL || build == NULL) {
		cfg_err(&c, 0, "out of memory");
		goto fail;
	}
	if (ca_specs == NULL) {
		/* The CAs as drafts: by name, with their effective CRLs. */
		for (size_t i = 0; i < prev->n_cas && !hash_oom; i++) {
			drafts[i].name = prev->cas[i]->name;
			drafts[i].index = i;
			drafts[i].eff = cfg->ca_eff[i].crls;
			drafts[i].n_eff = cfg->ca_eff[i].n;
			c.cas[i] = &drafts[i];
			HASH_ADD_KEYPTR(hh, c.ca_set, drafts[i].name,
			                strlen(drafts[i].name), &drafts[i]);
		}
		c.n_cas = prev->n_cas;
		if (hash_oom) {
			cfg_err(&c, 0, "out of memory");
			goto fail;
		}
	} else {
		cfg->cas = calloc(n_drafts + 1, sizeof(*cfg->cas));
		cfg->ca_origin = calloc(n_drafts + 1, sizeof(*cfg->ca_origin));
		if (cfg->cas == NULL || cfg->ca_origin == NULL) {
			cfg_err(&c, 0, "out of memory");
			goto fail;
		}
		cas_same = cfg_derive_cas(&c, ca_specs, n_cas, drafts);
		if (cas_same < 0)
			goto fail;
		for (first_state = 0; first_state < cfg->n_cas &&
		     cfg->ca_origin[first_state].source != cfg->api_source; first_state++)
			;
		if (cas_same) {
			/* prev's CAs in prev's order: its effective CRLs hold. */
			if (cfg_copy_eff(cfg, prev) != 0) {
				cfg_err(&c, 0, "out of memory");
				goto fail;
			}
			for (size_t i = 0; i < cfg->n_cas; i++) {
				drafts[i].eff = cfg->ca_eff[i].crls;
				drafts[i].n_eff = cfg->ca_eff[i].n;
			}
		} else {
			/* What the load does after its CAs: CRLs follow their
			 * issuer into other sections, the state's warnings. */
			cfg_drop_state_warnings(cfg);
			cfg_warn_split_crls(&c, first_state);
			if (!c.failed)
				cfg_share_crls(&c);
			if (!c.failed && cfg_keep_eff(&c) != 0)
				cfg_err(&c, 0, "out of memory");
			for (size_t i = first_state; i < c.n_cas && !c.failed; i++)
				cfg_warn_expiry(&c, i);
			if (c.failed)
				goto fail;
		}
	}
	/* Which hosts are taken as they are: every one while the CAs are
	 * prev's; else those whose trust policy the CAs would build again. */
	for (size_t i = 0; i < prev->n_hosts; i++) {
		int file = prev->api_source == SIZE_MAX ||
		           prev->host_origin[i].source != prev->api_source;
		int cur;

		if (!file)
			continue;
		n_file++;
		if (cas_same)
			continue;
		cur = cfg_trust_current(&c, &checks, prev->hosts[i]->trust);
		if (cur < 0) {
			cfg_err(&c, 0, "out of memory");
			goto fail;
		}
		if (cur == 0) {
			/* A file's host over a changed CA: only a load has its
			 * section. */
			rc = CONFIG_DERIVE_LOAD;
			snprintf(err, errlen, "%s:%d: [host %s] uses a CA that changed",
			         prev->sources[prev->host_origin[i].source].path,
			         prev->host_origin[i].line, prev->hosts[i]->pattern);
			goto fail;
		}
	}
	for (size_t i = 0; i < n; i++) {
		int cur = cas_same ? 1 :
		          specs[i].same == NULL ? 0 :
		          cfg_trust_current(&c, &checks, specs[i].same->trust);

		if (cur < 0) {
			cfg_err(&c, 0, "out of memory");
			goto fail;
		}
		build[i] = specs[i].same == NULL || cur == 0;
		need_index |= build[i];
	}
	cfg->hosts = calloc(n_file + n + 1, sizeof(*cfg->hosts));
	cfg->host_origin = calloc(n_file + n + 1, sizeof(*cfg->host_origin));
	cfg->index = hosts_index_new();
	/* prev's trust policies serve the hosts built here (a write changes
	 * one host; the 9,999 others need none). Their host objects are not
	 * looked for: a built host is a new object over a reused policy (the
	 * verdict cache is keyed by the policy), and indexing 10,000 hosts
	 * for one would cost more than it saves. */
	if (need_index)
		old = cfg_index_trusts(prev->trusts, prev->n_trusts, &oom1);
	if (cfg->hosts == NULL || cfg->host_origin == NULL ||
	    cfg->index == NULL || oom1) {
		cfg_err(&c, 0, "out of memory");
		goto fail;
	}
	/* The files' hosts, as they are. */
	for (size_t i = 0; i < prev->n_hosts && !c.failed; i++) {
		struct host_policy *h = prev->hosts[i], *dup;

		if (prev->api_source != SIZE_MAX &&
		    prev->host_origin[i].source == prev->api_source)
			continue;
		if (h->trust != NULL && cfg_keep_trust(cfg, &mine, h->trust) != 0) {
			cfg_err(&c, 0, "out of memory");
			break;
		}
		cfg->host_origin[cfg->n_hosts] = prev->host_origin[i];
		cfg->hosts[cfg->n_hosts++] = host_policy_ref(h);
		cfg->stats.hosts_reused++;
		if (hosts_index_add(cfg->index, h, &dup) != 0)
			cfg_err(&c, 0, "out of memory");
	}
	/* The state's hosts, built as a load of the state file would. */
	for (size_t i = 0; i < n && !c.failed; i++) {
		struct host_draft hd;
		char why[CONFIG_ERR_LEN];
		size_t before = cfg->n_hosts;

		if (!build[i]) {
			struct host_policy *h = specs[i].same, *dup;

			if (h->trust != NULL && cfg_keep_trust(cfg, &mine, h->trust) != 0) {
				cfg_err(&c, 0, "out of memory");
				break;
			}
			cfg->host_origin[cfg->n_hosts].source = cfg->api_source;
			cfg->host_origin[cfg->n_hosts].line = specs[i].line;
			cfg->hosts[cfg->n_hosts++] = host_policy_ref(h);
			cfg->stats.hosts_reused++;
			if (hosts_index_add(cfg->index, h, &dup) != 0)
				cfg_err(&c, 0, "out of memory");
			continue;
		}
		if (cfg_spec_draft(prev, &specs[i], &hd, why, sizeof(why)) != 0) {
			cfg_err_at(&c, prev->api_path, specs[i].line, "%s",
			           hd.refs == NULL && why[0] == '\0' ? "out of memory" : why);
			free(hd.refs);
			break;
		}
		hd.src_i = cfg->api_source;
		/* Patterns are unique: the API refuses a file's and keeps its
		 * own normalized, one entry each. */
		cfg_build_host(&c, &hd, &mine, &old, NULL);
		free(hd.refs);
		if (!c.failed && cfg->n_hosts != before + 1)
			cfg_err(&c, 0, "out of memory");
	}
	if (!c.failed)
		cfg->default_policy = hosts_default(cfg->index);
	/* Tokens are read with every generation, as a load does. */
	if (!c.failed && cfg->agent.admin_token_file != NULL &&
	    tokens_load(cfg->agent.admin_token_file, &cfg->tokens, err, errlen) != 0)
		c.failed = 1;
	cfg->stats.load_ms = cfg_now_ms() - t0;
	rc = c.failed ? -1 : 0;
fail:
	if (rc == -1 && !c.failed && (err == NULL || err[0] == '\0'))
		snprintf(err, errlen, "%s:0: out of memory", prev->path);
	cfg_free_slots(&mine);
	cfg_free_slots(&old);
	cfg_free_checks(&checks);
	HASH_CLEAR(hh, c.ca_set);
	{
		struct ca_prev *p, *ptmp;

		HASH_ITER(hh, c.prev_cas, p, ptmp) {
			HASH_DEL(c.prev_cas, p);
			free(p);
		}
	}
	free(c.cas);
	/* Their effective CRLs are cfg's while the CAs are prev's. */
	cfg_free_ca_drafts(drafts, n_drafts, !cas_same);
	free(build);
	ERR_clear_error();
	if (rc != 0) {
		config_free(cfg);
		return rc;
	}
	*out = cfg;
	return 0;
}
