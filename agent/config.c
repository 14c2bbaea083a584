/*
 * config.c - load and validate the INI configuration (libinih), build the
 * host lookup index (uthash).
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
 * A load builds a complete struct config or nothing: every error path
 * frees the partial state through config_free().
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include <ini.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "policy.h"
#include "spop.h"
#include "verify.h"

/* uthash: report allocation failure instead of exiting. The macro assigns
 * a variable named `hash_oom` that every caller of HASH_ADD declares. */
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(elt) do { (void)(elt); hash_oom = 1; } while (0)
#include <uthash.h>

/* Limits on what a configuration may hold; beyond them it is refused
 * rather than loaded half-way. */
#define CONFIG_MAX_LINE 4096              /* bytes per line, libinih buffer */
#define CONFIG_MAX_FILE (1024 * 1024)     /* the INI file itself */
#define CONFIG_MAX_PEM (16 * 1024 * 1024) /* one CA or CRL file */
#define CONFIG_MAX_CA_CERTS 1000          /* certificates in one [ca] file */
#define CONFIG_MAX_CA_NAME 64
#define CONFIG_MAX_IDENTITY 1024
#define CONFIG_MAX_HOST_CAS 64            /* CA names on one host */
#define CONFIG_MAX_PER_HOST 1024          /* identities, pins per host */

/* ---- lookup index ------------------------------------------------------ */

struct index_entry {
	size_t host;            /* index into cfg->hosts (stable across realloc) */
	UT_hash_handle hh;      /* keyed by cfg->hosts[host].name */
};

struct config_index {
	struct index_entry *exact;
	struct index_entry *wild;   /* keyed by the suffix after "*." */
	struct index_entry *deep;   /* keyed by the suffix after "**." */
};

static void config_index_free(struct config_index *idx)
{
	struct index_entry *e, *tmp;

	if (idx == NULL)
		return;
	HASH_ITER(hh, idx->exact, e, tmp) {
		HASH_DEL(idx->exact, e);
		free(e);
	}
	HASH_ITER(hh, idx->wild, e, tmp) {
		HASH_DEL(idx->wild, e);
		free(e);
	}
	HASH_ITER(hh, idx->deep, e, tmp) {
		HASH_DEL(idx->deep, e);
		free(e);
	}
	free(idx);
}

/* The table that holds patterns of `kind` (not POLICY_DEFAULT, which is
 * kept apart). */
static struct index_entry **config_index_table(struct config_index *idx,
                                               enum policy_kind kind)
{
	if (kind == POLICY_WILDCARD)
		return &idx->wild;
	if (kind == POLICY_ANY_DEPTH)
		return &idx->deep;
	return &idx->exact;
}

/* See config.h. Pure reads of the hash tables: no allocation, safe from
 * any number of threads on an installed (immutable) config. */
const struct host_policy *config_lookup(const struct config *cfg,
                                        const char *name, size_t len)
{
	struct index_entry *e = NULL;
	const char *dot;

	if (cfg == NULL)
		return NULL;
	if (cfg->index != NULL && name != NULL && len > 0) {
		HASH_FIND(hh, cfg->index->exact, name, len, e);
		if (e != NULL)
			return &cfg->hosts[e->host];
		/* One-label wildcard: key by what follows the first label. */
		dot = memchr(name, '.', len);
		if (dot != NULL && dot > name && (size_t)(dot - name) + 1 < len) {
			const char *rest = dot + 1;

			HASH_FIND(hh, cfg->index->wild, rest,
			          len - (size_t)(rest - name), e);
			if (e != NULL)
				return &cfg->hosts[e->host];
		}
		/* Any-depth wildcard: every suffix that follows a dot, the
		 * longest (leftmost dot) first, so the most specific wins.
		 * The whole name is never tried: "**.x" needs a label. */
		for (const char *p = name, *end = name + len;
		     (dot = memchr(p, '.', (size_t)(end - p))) != NULL;
		     p = dot + 1) {
			const char *rest = dot + 1;

			if (dot == name || rest == end)
				break;  /* empty label: not a normalized name */
			HASH_FIND(hh, cfg->index->deep, rest,
			          (size_t)(end - rest), e);
			if (e != NULL)
				return &cfg->hosts[e->host];
		}
	}
	return cfg->default_policy;
}

/* ---- small parsers ----------------------------------------------------- */

static const char *const mode_names[MODE_COUNT] = {
	[MODE_ENFORCE] = "enforce",
	[MODE_OPTIONAL] = "optional",
	[MODE_LOG] = "log",
	[MODE_OFF] = "off",
	[MODE_DENY] = "deny",
};
_Static_assert(sizeof(mode_names) / sizeof(mode_names[0]) == MODE_COUNT,
               "mode_names");

static const char *const log_level_names[LOG_LVL_COUNT] = {
	[LOG_LVL_ERROR] = "error",
	[LOG_LVL_WARNING] = "warning",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};
_Static_assert(sizeof(log_level_names) / sizeof(log_level_names[0]) ==
               LOG_LVL_COUNT, "log_level_names");

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

const char *config_mode_str(enum policy_mode m)
{
	if ((unsigned int)m >= MODE_COUNT)
		return "unknown";
	return mode_names[m];
}

const char *config_log_level_str(int lvl)
{
	if (lvl < 0 || lvl >= LOG_LVL_COUNT)
		return "unknown";
	return log_level_names[lvl];
}

/* Index of `s` in `names` (n entries, NULL entries skipped), or -1. */
static int config_lookup_name(const char *const *names, int n, const char *s)
{
	for (int i = 0; i < n; i++) {
		if (names[i] != NULL && strcmp(names[i], s) == 0)
			return i;
	}
	return -1;
}

int config_parse_log_level(const char *s, int *lvl)
{
	int i;

	if (s == NULL)
		return -1;
	i = config_lookup_name(log_level_names, LOG_LVL_COUNT, s);
	if (i < 0)
		return -1;
	*lvl = i;
	return 0;
}

/* Strict unsigned decimal: digits only, no sign or spaces, <= max. */
static int config_parse_uint(const char *s, uint64_t max, uint64_t *out)
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

/* See config.h. */
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
static int config_parse_size(const char *s, uint64_t *bytes)
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

static int config_port_ok(const char *s)
{
	uint64_t port;

	return config_parse_uint(s, 65535, &port) == 0 && port >= 1;
}

/* listen syntax: "HOST:PORT", "[IPV6]:PORT" or "unix:/path". Returns NULL
 * when fine, else what is wrong. */
static const char *config_check_listen(const char *v)
{
	if (strncmp(v, "unix:", 5) == 0) {
		const char *path = v + 5;
		struct sockaddr_un sun;

		if (path[0] != '/')
			return "unix socket path must be absolute (unix:/path)";
		if (strlen(path) >= sizeof(sun.sun_path))
			return "unix socket path too long";
		return NULL;
	}
	if (v[0] == '[') {
		const char *close = strchr(v, ']');
		char addr[INET6_ADDRSTRLEN + 1];
		struct in6_addr a6;
		size_t n;

		if (close == NULL)
			return "missing ']' in IPv6 address";
		n = (size_t)(close - v - 1);
		if (n == 0 || n >= sizeof(addr))
			return "bad IPv6 address";
		memcpy(addr, v + 1, n);
		addr[n] = '\0';
		if (inet_pton(AF_INET6, addr, &a6) != 1)
			return "bad IPv6 address";
		if (close[1] != ':' || !config_port_ok(close + 2))
			return "expected [IPV6]:PORT with PORT 1..65535";
		return NULL;
	}
	{
		const char *colon = strrchr(v, ':');

		if (colon == NULL)
			return "expected HOST:PORT, [IPV6]:PORT or unix:/path";
		if (colon == v)
			return "missing host before ':PORT'";
		/* "*:PORT": every address, as with -l. */
		if (colon == v + 1 && v[0] == '*')
			return config_port_ok(colon + 1) ? NULL : "PORT must be 1..65535";
		for (const char *q = v; q < colon; q++) {
			if (*q == ':')
				return "IPv6 addresses need brackets: [IPV6]:PORT";
			if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-')
				return "bad character in host";
		}
		if (!config_port_ok(colon + 1))
			return "PORT must be 1..65535";
	}
	return NULL;
}

/* 64 hex digits (colons ignored, any case) into 32 bytes. */
static int config_parse_pin(const char *s, uint8_t out[32])
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

/* See config.h. */
void config_agent_defaults(struct agent_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->threads = 0;
	s->max_frame_size = SPOP_DEFAULT_FRAME_SIZE;
	s->idle_timeout_ms = 30000;
	s->log_level = LOG_LVL_INFO;
	s->max_connections = 1024;
	s->max_output_bytes = 256 * 1024;
	s->cache_entries = 10000;
	s->cache_ttl_ms = 60000;
}

/* ---- freeing ----------------------------------------------------------- */

static void config_free_host(struct host_policy *h)
{
	free(h->pattern);
	free(h->name);
	free(h->cas);
	for (size_t i = 0; i < h->n_identities; i++)
		free(h->identities[i]);
	free(h->identities);
	free(h->pins);
	if (h->store != NULL)
		X509_STORE_free(h->store);
}

/* See config.h. Accepts a partially built config (any field NULL). */
void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->n_hosts; i++)
		config_free_host(&cfg->hosts[i]);
	free(cfg->hosts);
	for (size_t i = 0; i < cfg->n_cas; i++) {
		struct ca_entry *ca = &cfg->cas[i];

		free(ca->name);
		free(ca->file);
		sk_X509_pop_free(ca->certs, X509_free);
		sk_X509_CRL_pop_free(ca->crls, X509_CRL_free);
	}
	free(cfg->cas);
	for (size_t i = 0; i < cfg->n_warnings; i++)
		free(cfg->warnings[i]);
	free(cfg->warnings);
	for (size_t i = 0; i < cfg->agent.n_listen; i++)
		free(cfg->agent.listen[i]);
	config_index_free(cfg->index);
	free(cfg->path);
	free(cfg);
}

/* ---- loading ----------------------------------------------------------- */

enum cfg_section {
	SEC_NONE = 0,
	SEC_AGENT,
	SEC_CA,
	SEC_HOST,
	SEC_COUNT
};

/* Keys that may appear once per section; bit positions in load_ctx.seen. */
enum cfg_key_bit {
	KEY_THREADS = 0,
	KEY_MAX_FRAME_SIZE,
	KEY_IDLE_TIMEOUT,
	KEY_LOG_LEVEL,
	KEY_MAX_CONNECTIONS,
	KEY_MAX_OUTPUT,
	KEY_CACHE_ENTRIES,
	KEY_CACHE_TTL,
	KEY_FILE,
	KEY_MODE,
	KEY_VERIFY_DEPTH,
	KEY_PURPOSE,
	KEY_CRL_CHECK,
	KEY_BIT_COUNT
};

/* Load-time facts the final struct does not keep: line numbers for
 * errors found after the whole file is read. */
struct ca_ref {
	char *name;
	int line;
};

struct ca_extra {
	int line;               /* [ca NAME] */
};

struct host_extra {
	int line;               /* [host PATTERN] */
	struct ca_ref *refs;    /* `ca =` names, resolved at the end */
	size_t n_refs;
	int crl_line;           /* explicit crl-check, 0 if none */
};

struct load_ctx {
	const char *path;       /* for messages */
	char *dir;              /* for relative paths */
	struct config *cfg;
	size_t cas_cap;         /* capacity of cfg->cas */
	size_t hosts_cap;       /* capacity of cfg->hosts */
	struct ca_extra *ca_x;  /* parallel to cfg->cas */
	size_t ca_x_cap;
	struct host_extra *host_x;  /* parallel to cfg->hosts */
	size_t host_x_cap;
	/* the line reader over the file contents */
	const char *text;
	size_t text_len;
	size_t pos;
	int line;
	/* current section */
	enum cfg_section sec;
	size_t sec_index;       /* into cfg->cas or cfg->hosts */
	unsigned int seen;      /* enum cfg_key_bit bits */
	int agent_seen;
	int has_default;        /* [host *] seen, at host index default_index */
	size_t default_index;
	/* first error */
	char *err;
	size_t errlen;
	int failed;
};

/* Record the first error as "FILE:LINE: message". */
__attribute__((format(printf, 3, 4)))
static void cfg_err(struct load_ctx *c, int line, const char *fmt, ...)
{
	int n;
	va_list ap;

	if (c->failed)
		return;
	c->failed = 1;
	if (c->err == NULL || c->errlen == 0)
		return;
	n = snprintf(c->err, c->errlen, "%s:%d: ", c->path, line);
	if (n < 0 || (size_t)n >= c->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* The newest OpenSSL error as text, and the queue cleared. */
static const char *cfg_ssl_err(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

static char *cfg_strdup(struct load_ctx *c, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		cfg_err(c, c->line, "out of memory");
	return d;
}

/* Read a whole file (at most `max` bytes) into a malloc'd, NUL-terminated
 * buffer. On error returns -1 with errno set (EFBIG when too large). */
static int cfg_read_file(const char *path, size_t max, char **out,
                         size_t *out_len)
{
	FILE *f;
	char *buf;
	size_t len = 0, cap = 4096;
	int saved;

	f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	buf = malloc(cap + 1);
	if (buf == NULL)
		goto fail;
	for (;;) {
		size_t n;

		if (len == cap) {
			char *nb;

			if (cap > max) {
				errno = EFBIG;
				goto fail;
			}
			cap *= 2;
			nb = realloc(buf, cap + 1);
			if (nb == NULL)
				goto fail;
			buf = nb;
		}
		errno = 0;
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0) {
			if (ferror(f)) {
				/* e.g. EISDIR for a directory */
				if (errno == 0)
					errno = EIO;
				goto fail;
			}
			break;
		}
	}
	if (len > max) {
		errno = EFBIG;
		goto fail;
	}
	fclose(f);
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
fail:
	saved = errno;
	free(buf);
	fclose(f);
	errno = saved;
	return -1;
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

static void cfg_name_str(X509_NAME *name, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	buf[0] = '\0';
	if (b == NULL)
		return;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
		n = BIO_read(b, buf, (int)len - 1);
		if (n > 0)
			buf[n] = '\0';
	}
	BIO_free(b);
}

/* Load the certificates of a [ca] `file =`: at least one, all CAs. */
static int cfg_load_ca_file(struct load_ctx *c, struct ca_entry *ca,
                            const char *file)
{
	char *data = NULL;
	size_t len = 0;
	BIO *b = NULL;
	char ebuf[256];
	int rc = -1;

	if (cfg_read_file(file, CONFIG_MAX_PEM, &data, &len) == -1) {
		cfg_err(c, c->line, "cannot read %s: %s", file, strerror(errno));
		return -1;
	}
	ca->certs = sk_X509_new_null();
	b = BIO_new_mem_buf(data, (int)len);
	if (ca->certs == NULL || b == NULL) {
		cfg_err(c, c->line, "out of memory");
		goto out;
	}
	for (;;) {
		X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		uint32_t flags;

		if (x == NULL) {
			unsigned long e = ERR_peek_last_error();

			if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				if (sk_X509_num(ca->certs) == 0) {
					cfg_err(c, c->line, "%s: no PEM certificate found",
					        file);
					goto out;
				}
				break;
			}
			cfg_err(c, c->line, "%s: certificate %d does not parse: %s",
			        file, sk_X509_num(ca->certs) + 1,
			        cfg_ssl_err(ebuf, sizeof(ebuf)));
			goto out;
		}
		if (sk_X509_num(ca->certs) >= CONFIG_MAX_CA_CERTS) {
			X509_free(x);
			cfg_err(c, c->line, "%s: more than %d certificates", file,
			        CONFIG_MAX_CA_CERTS);
			goto out;
		}
		if (sk_X509_push(ca->certs, x) <= 0) {
			X509_free(x);
			cfg_err(c, c->line, "out of memory");
			goto out;
		}
		flags = X509_get_extension_flags(x);
		if ((flags & EXFLAG_INVALID) != 0 || (flags & EXFLAG_CA) == 0) {
			char subj[512];

			cfg_name_str(X509_get_subject_name(x), subj, sizeof(subj));
			cfg_err(c, c->line, "%s: certificate \"%s\" is not a CA "
			        "(basicConstraints CA:TRUE required)", file, subj);
			goto out;
		}
	}
	rc = 0;
out:
	ERR_clear_error();
	BIO_free(b);
	free(data);
	return rc;
}

static time_t cfg_asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

/* Lower ca->crl_next_update to the nextUpdate of `crl` if earlier. */
static void cfg_crl_bound(struct ca_entry *ca, const X509_CRL *crl)
{
	const ASN1_TIME *nu = X509_CRL_get0_nextUpdate(crl);

	if (nu != NULL) {
		time_t t = cfg_asn1_time(nu);

		if (t != 0 && (ca->crl_next_update == 0 || t < ca->crl_next_update))
			ca->crl_next_update = t;
	}
}

static int cfg_add_crl(struct load_ctx *c, struct ca_entry *ca, X509_CRL *crl)
{
	if (sk_X509_CRL_push(ca->crls, crl) <= 0) {
		X509_CRL_free(crl);
		cfg_err(c, c->line, "out of memory");
		return -1;
	}
	ca->n_own_crls++;
	cfg_crl_bound(ca, crl);
	return 0;
}

/* Load a `crl =` file: one or more PEM CRLs, or one DER CRL. */
static int cfg_load_crl_file(struct load_ctx *c, struct ca_entry *ca,
                             const char *file)
{
	char *data = NULL;
	size_t len = 0;
	BIO *b = NULL;
	char ebuf[256];
	int n = 0, rc = -1;

	if (cfg_read_file(file, CONFIG_MAX_PEM, &data, &len) == -1) {
		cfg_err(c, c->line, "cannot read %s: %s", file, strerror(errno));
		return -1;
	}
	b = BIO_new_mem_buf(data, (int)len);
	if (b == NULL) {
		cfg_err(c, c->line, "out of memory");
		goto out;
	}
	for (;;) {
		X509_CRL *crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);

		if (crl == NULL) {
			unsigned long e = ERR_peek_last_error();

			if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				break;
			}
			cfg_err(c, c->line, "%s: CRL %d does not parse: %s", file,
			        n + 1, cfg_ssl_err(ebuf, sizeof(ebuf)));
			goto out;
		}
		if (cfg_add_crl(c, ca, crl) == -1)
			goto out;
		n++;
	}
	if (n == 0) {
		/* Not PEM: one DER CRL spanning the whole file. */
		const unsigned char *p = (const unsigned char *)data;
		X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);

		if (crl == NULL || p != (const unsigned char *)data + len) {
			X509_CRL_free(crl);
			cfg_err(c, c->line, "%s: not a PEM or DER CRL", file);
			goto out;
		}
		if (cfg_add_crl(c, ca, crl) == -1)
			goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	BIO_free(b);
	free(data);
	return rc;
}

/* Grow `arr` (capacity *cap elements of `elem` bytes) to hold `need`,
 * zeroing the new tail. Returns the (maybe moved) array, or NULL with
 * `arr` untouched. */
static void *cfg_grow(void *arr, size_t *cap, size_t need, size_t elem)
{
	size_t ncap;
	void *n;

	if (need <= *cap)
		return arr;
	ncap = *cap ? *cap * 2 : 8;
	while (ncap < need)
		ncap *= 2;
	n = realloc(arr, ncap * elem);
	if (n == NULL)
		return NULL;
	memset((char *)n + *cap * elem, 0, (ncap - *cap) * elem);
	*cap = ncap;
	return n;
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

/* ---- CRLs follow their issuer ------------------------------------------ */

/* 1 if `x` issued `crl`: the CRL names x's subject as its issuer and its
 * signature verifies with x's key. Leaves the error queue as it was. */
static int cfg_crl_issued_by(X509_CRL *crl, X509 *x)
{
	EVP_PKEY *key;
	int ok;

	if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
	                  X509_get_subject_name(x)) != 0)
		return 0;
	key = X509_get0_pubkey(x);
	ERR_set_mark();
	ok = key != NULL && X509_CRL_verify(crl, key) == 1;
	ERR_pop_to_mark();
	return ok;
}

/* 1 if `ca` issued `x` (names and signature), x != ca. */
static int cfg_cert_issued_by(X509 *x, X509 *ca)
{
	EVP_PKEY *key;
	int ok;

	if (X509_cmp(x, ca) == 0 || X509_check_issued(ca, x) != X509_V_OK)
		return 0;
	key = X509_get0_pubkey(ca);
	ERR_set_mark();
	ok = key != NULL && X509_verify(x, key) == 1;
	ERR_pop_to_mark();
	return ok;
}

/* Add a reference to `crl` to ca->crls unless it is already there. */
static int cfg_attach_crl(struct load_ctx *c, struct ca_entry *ca,
                          X509_CRL *crl)
{
	for (int i = 0; i < sk_X509_CRL_num(ca->crls); i++)
		if (sk_X509_CRL_value(ca->crls, i) == crl)
			return 0;
	if (X509_CRL_up_ref(crl) != 1) {
		cfg_err(c, c->line, "out of memory");
		return -1;
	}
	if (sk_X509_CRL_push(ca->crls, crl) <= 0) {
		X509_CRL_free(crl);
		cfg_err(c, c->line, "out of memory");
		return -1;
	}
	cfg_crl_bound(ca, crl);
	return 0;
}

/* Record "FILE:LINE: warning: ..." in cfg->warnings. */
__attribute__((format(printf, 3, 4)))
static void cfg_warn(struct load_ctx *c, int line, const char *fmt, ...)
{
	char buf[CONFIG_ERR_LEN], **w;
	int n;
	va_list ap;

	n = snprintf(buf, sizeof(buf), "%s:%d: warning: ", c->path, line);
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

/* 1 if every own CRL of `a` issued by `x` is also an own CRL of `b`
 * (same encoding). */
static int cfg_own_crls_within(const struct ca_entry *a,
                               const struct ca_entry *b, X509 *x)
{
	for (size_t i = 0; i < a->n_own_crls; i++) {
		X509_CRL *r = sk_X509_CRL_value(a->crls, (int)i);
		int found = 0;

		if (!cfg_crl_issued_by(r, x))
			continue;
		for (size_t j = 0; j < b->n_own_crls && !found; j++)
			found = X509_CRL_match(r, sk_X509_CRL_value(b->crls,
			                                            (int)j)) == 0;
		if (!found)
			return 0;
	}
	return 1;
}

/* Warn about a CA certificate listed under two [ca] sections whose own
 * `crl =` files differ for it: before CRLs followed their issuer, the
 * certificates it issued were revoked through one section and not the
 * other. cfg_share_crls() now applies both sets everywhere. */
static void cfg_warn_split_crls(struct load_ctx *c)
{
	struct config *cfg = c->cfg;

	for (size_t i = 0; i < cfg->n_cas; i++) {
		struct ca_entry *a = &cfg->cas[i];

		for (int xi = 0; xi < sk_X509_num(a->certs); xi++) {
			X509 *x = sk_X509_value(a->certs, xi);

			for (size_t k = i + 1; k < cfg->n_cas; k++) {
				struct ca_entry *b = &cfg->cas[k];
				char subj[256];
				int held = 0;

				for (int yi = 0; yi < sk_X509_num(b->certs) && !held;
				     yi++)
					held = X509_cmp(x, sk_X509_value(b->certs, yi)) == 0;
				if (!held || (cfg_own_crls_within(a, b, x) &&
				              cfg_own_crls_within(b, a, x)))
					continue;
				cfg_name_str(X509_get_subject_name(x), subj,
				             sizeof(subj));
				cfg_warn(c, c->ca_x[k].line, "CA certificate \"%s\" is "
				         "in [ca %s] (line %d) and [ca %s] with different "
				         "CRLs; the CRLs it issued now apply through both",
				         subj, a->name, c->ca_x[i].line, b->name);
			}
		}
	}
}

/* Attach `crl` (issued by `x`) to every section holding a certificate
 * that issued x. */
static void cfg_attach_above(struct load_ctx *c, X509 *x, X509_CRL *crl)
{
	struct config *cfg = c->cfg;

	for (size_t m = 0; m < cfg->n_cas && !c->failed; m++) {
		STACK_OF(X509) *certs = cfg->cas[m].certs;

		for (int i = 0; i < sk_X509_num(certs); i++) {
			if (cfg_cert_issued_by(x, sk_X509_value(certs, i))) {
				(void)cfg_attach_crl(c, &cfg->cas[m], crl);
				break;
			}
		}
	}
}

/* Give every [ca] section the CRLs that describe its certificates, from
 * whichever section lists them: a CRL issued by a certificate of the
 * section, or by a certificate that one of the section's certificates
 * issued (an intermediate listed elsewhere, sent by the client under a
 * root-only section). Issuers are matched by name and signature, so a
 * look-alike CA cannot bring its CRLs into another tenant's stores. A CRL
 * that no configured certificate issued stays in its own section only. */
static void cfg_share_crls(struct load_ctx *c)
{
	struct config *cfg = c->cfg;

	for (size_t s = 0; s < cfg->n_cas && !c->failed; s++) {
		struct ca_entry *src = &cfg->cas[s];

		for (size_t r = 0; r < src->n_own_crls && !c->failed; r++) {
			X509_CRL *crl = sk_X509_CRL_value(src->crls, (int)r);

			for (size_t k = 0; k < cfg->n_cas && !c->failed; k++) {
				struct ca_entry *dst = &cfg->cas[k];

				for (int xi = 0; xi < sk_X509_num(dst->certs) &&
				     !c->failed; xi++) {
					X509 *x = sk_X509_value(dst->certs, xi);

					if (cfg_crl_issued_by(crl, x)) {
						(void)cfg_attach_crl(c, dst, crl);
						cfg_attach_above(c, x, crl);
						break;
					}
				}
			}
		}
	}
}

static int cfg_valid_ca_name(const char *s)
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
	struct config *cfg = c->cfg;
	struct ca_entry *ca;
	struct ca_entry *cas;
	struct ca_extra *cax;

	if (!cfg_valid_ca_name(name)) {
		cfg_err(c, c->line, "bad CA name \"%s\" (letters, digits, '.', "
		        "'-', '_'; at most %d)", name, CONFIG_MAX_CA_NAME);
		return;
	}
	for (size_t i = 0; i < cfg->n_cas; i++) {
		if (strcmp(cfg->cas[i].name, name) == 0) {
			cfg_err(c, c->line, "duplicate [ca %s] (first at line %d)",
			        name, c->ca_x[i].line);
			return;
		}
	}
	cas = cfg_grow(cfg->cas, &c->cas_cap, cfg->n_cas + 1, sizeof(*cas));
	if (cas != NULL)
		cfg->cas = cas;
	cax = cfg_grow(c->ca_x, &c->ca_x_cap, cfg->n_cas + 1, sizeof(*cax));
	if (cax != NULL)
		c->ca_x = cax;
	if (cas == NULL || cax == NULL) {
		cfg_err(c, c->line, "out of memory");
		return;
	}
	ca = &cfg->cas[cfg->n_cas];
	memset(ca, 0, sizeof(*ca));
	ca->name = cfg_strdup(c, name);
	if (ca->name == NULL)
		return;
	ca->crls = sk_X509_CRL_new_null();
	cfg->n_cas++;
	if (ca->crls == NULL) {
		cfg_err(c, c->line, "out of memory");
		return;
	}
	c->ca_x[cfg->n_cas - 1].line = c->line;
	c->sec = SEC_CA;
	c->sec_index = cfg->n_cas - 1;
}

static void cfg_section_host(struct load_ctx *c, const char *pattern)
{
	struct config *cfg = c->cfg;
	char norm[POLICY_HOST_MAX + 1];
	enum policy_kind kind;
	struct host_policy *h;
	struct index_entry *e, *dup = NULL, **table;
	struct host_policy *hosts;
	struct host_extra *hxs;
	int n, hash_oom = 0;

	if (strcmp(pattern, "*") == 0) {
		kind = POLICY_DEFAULT;
		strcpy(norm, "*");
	} else if (strncmp(pattern, "*.", 2) == 0 ||
	           strncmp(pattern, "**.", 3) == 0) {
		size_t skip = pattern[1] == '*' ? 3 : 2;

		kind = skip == 3 ? POLICY_ANY_DEPTH : POLICY_WILDCARD;
		n = policy_normalize(pattern + skip, strlen(pattern + skip), 0,
		                     norm);
		if (n < 0 || strchr(norm, '*') != NULL || strchr(norm, ':') != NULL) {
			cfg_err(c, c->line, "bad host pattern \"%s\" (a wildcard is "
			        "\"%s\" followed by a host name)", pattern,
			        skip == 3 ? "**." : "*.");
			return;
		}
	} else {
		kind = POLICY_EXACT;
		if (strchr(pattern, '*') != NULL) {
			cfg_err(c, c->line, "bad host pattern \"%s\": '*' is only "
			        "allowed as \"*\" or as the whole first label "
			        "(\"*.example.com\" one label, \"**.example.com\" "
			        "any depth)", pattern);
			return;
		}
		n = policy_normalize(pattern, strlen(pattern), 0, norm);
		if (n < 0) {
			cfg_err(c, c->line, "bad host name \"%s\"", pattern);
			return;
		}
	}

	if (kind == POLICY_DEFAULT) {
		if (c->has_default) {
			cfg_err(c, c->line, "duplicate [host *] (first at line %d)",
			        c->host_x[c->default_index].line);
			return;
		}
	} else {
		table = config_index_table(cfg->index, kind);
		HASH_FIND(hh, *table, norm, strlen(norm), dup);
		if (dup != NULL) {
			cfg_err(c, c->line, "duplicate host \"%s\" (same as \"%s\" "
			        "at line %d)", pattern, cfg->hosts[dup->host].pattern,
			        c->host_x[dup->host].line);
			return;
		}
	}

	hosts = cfg_grow(cfg->hosts, &c->hosts_cap, cfg->n_hosts + 1,
	                 sizeof(*hosts));
	if (hosts != NULL)
		cfg->hosts = hosts;
	hxs = cfg_grow(c->host_x, &c->host_x_cap, cfg->n_hosts + 1,
	               sizeof(*hxs));
	if (hxs != NULL)
		c->host_x = hxs;
	if (hosts == NULL || hxs == NULL) {
		cfg_err(c, c->line, "out of memory");
		return;
	}
	h = &cfg->hosts[cfg->n_hosts];
	memset(h, 0, sizeof(*h));
	h->kind = kind;
	h->mode = MODE_ENFORCE;
	h->purpose = PURPOSE_CLIENT;
	h->crl_check = CRL_CHECK_DEFAULT;
	h->verify_depth = 5;
	h->pattern = cfg_strdup(c, pattern);
	h->name = cfg_strdup(c, norm);
	cfg->n_hosts++;
	if (h->pattern == NULL || h->name == NULL)
		return;
	c->host_x[cfg->n_hosts - 1].line = c->line;

	if (kind == POLICY_DEFAULT) {
		/* A pointer would not survive the next realloc of cfg->hosts:
		 * cfg->default_policy is set once loading is done. */
		c->has_default = 1;
		c->default_index = cfg->n_hosts - 1;
	} else {
		e = calloc(1, sizeof(*e));
		if (e == NULL) {
			cfg_err(c, c->line, "out of memory");
			return;
		}
		e->host = cfg->n_hosts - 1;
		table = config_index_table(cfg->index, kind);
		HASH_ADD_KEYPTR(hh, *table, h->name, strlen(h->name), e);
		if (hash_oom) {
			free(e);
			cfg_err(c, c->line, "out of memory");
			return;
		}
	}
	c->sec = SEC_HOST;
	c->sec_index = cfg->n_hosts - 1;
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
		if (c->agent_seen) {
			cfg_err(c, c->line, "duplicate [agent] section");
			return;
		}
		c->agent_seen = 1;
		c->sec = SEC_AGENT;
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

static int cfg_once(struct load_ctx *c, enum cfg_key_bit bit, const char *key)
{
	if (c->seen & (1u << bit)) {
		cfg_err(c, c->line, "duplicate key \"%s\" in this section", key);
		return -1;
	}
	c->seen |= 1u << bit;
	return 0;
}

static void cfg_key_agent(struct load_ctx *c, const char *key, const char *v)
{
	struct agent_settings *a = &c->cfg->agent;
	uint64_t u;
	unsigned int ms;
	int lvl;

	if (strcmp(key, "listen") == 0) {
		const char *why = config_check_listen(v);

		if (why != NULL) {
			cfg_err(c, c->line, "bad listen address \"%s\": %s", v, why);
			return;
		}
		if (a->n_listen >= CONFIG_MAX_LISTEN) {
			cfg_err(c, c->line, "too many listen addresses (at most %d)",
			        CONFIG_MAX_LISTEN);
			return;
		}
		a->listen[a->n_listen] = cfg_strdup(c, v);
		if (a->listen[a->n_listen] != NULL)
			a->n_listen++;
	} else if (strcmp(key, "threads") == 0) {
		if (cfg_once(c, KEY_THREADS, key) == -1)
			return;
		if (config_parse_uint(v, 64, &u) == -1) {
			cfg_err(c, c->line, "bad threads \"%s\" (0..64, 0 = one per "
			        "CPU)", v);
			return;
		}
		a->threads = (int)u;
	} else if (strcmp(key, "max-frame-size") == 0) {
		if (cfg_once(c, KEY_MAX_FRAME_SIZE, key) == -1)
			return;
		if (config_parse_uint(v, 1048576, &u) == -1 ||
		    u < SPOP_MIN_FRAME_SIZE) {
			cfg_err(c, c->line, "bad max-frame-size \"%s\" (%d..1048576)",
			        v, SPOP_MIN_FRAME_SIZE);
			return;
		}
		a->max_frame_size = (uint32_t)u;
	} else if (strcmp(key, "idle-timeout") == 0) {
		if (cfg_once(c, KEY_IDLE_TIMEOUT, key) == -1)
			return;
		if (config_parse_duration(v, &ms) == -1 || ms == 0) {
			cfg_err(c, c->line, "bad idle-timeout \"%s\" (a duration > 0: "
			        "500ms, 30s, 2m, 1h)", v);
			return;
		}
		a->idle_timeout_ms = ms;
	} else if (strcmp(key, "log-level") == 0) {
		if (cfg_once(c, KEY_LOG_LEVEL, key) == -1)
			return;
		if (config_parse_log_level(v, &lvl) == -1) {
			cfg_err(c, c->line, "bad log-level \"%s\" (error, warning, "
			        "info, debug)", v);
			return;
		}
		a->log_level = lvl;
	} else if (strcmp(key, "max-connections") == 0) {
		if (cfg_once(c, KEY_MAX_CONNECTIONS, key) == -1)
			return;
		if (config_parse_uint(v, 1000000, &u) == -1 || u < 1) {
			cfg_err(c, c->line, "bad max-connections \"%s\" (1..1000000)",
			        v);
			return;
		}
		a->max_connections = (unsigned int)u;
	} else if (strcmp(key, "max-output") == 0) {
		if (cfg_once(c, KEY_MAX_OUTPUT, key) == -1)
			return;
		if (config_parse_size(v, &u) == -1 || u < 4096 ||
		    u > 64u * 1024 * 1024) {
			cfg_err(c, c->line, "bad max-output \"%s\" (bytes, k or m "
			        "suffix, 4k..64m)", v);
			return;
		}
		a->max_output_bytes = (size_t)u;
	} else if (strcmp(key, "cache-entries") == 0) {
		if (cfg_once(c, KEY_CACHE_ENTRIES, key) == -1)
			return;
		if (config_parse_uint(v, 10000000, &u) == -1) {
			cfg_err(c, c->line, "bad cache-entries \"%s\" (0..10000000, "
			        "0 disables the cache)", v);
			return;
		}
		a->cache_entries = (unsigned int)u;
	} else if (strcmp(key, "cache-ttl") == 0) {
		if (cfg_once(c, KEY_CACHE_TTL, key) == -1)
			return;
		/* 0 would be ambiguous (never or always expire?): the cache
		 * is turned off with cache-entries = 0 instead. */
		if (config_parse_duration(v, &ms) == -1 || ms == 0) {
			cfg_err(c, c->line, "bad cache-ttl \"%s\" (a duration > 0; "
			        "cache-entries = 0 disables the cache)", v);
			return;
		}
		a->cache_ttl_ms = ms;
	} else {
		cfg_err(c, c->line, "unknown key \"%s\" in [agent]", key);
	}
}

static void cfg_key_ca(struct load_ctx *c, const char *key, const char *v)
{
	struct ca_entry *ca = &c->cfg->cas[c->sec_index];
	char *path;

	if (strcmp(key, "file") == 0) {
		if (cfg_once(c, KEY_FILE, key) == -1)
			return;
		if (*v == '\0') {
			cfg_err(c, c->line, "empty file");
			return;
		}
		path = cfg_resolve(c, v);
		if (path == NULL)
			return;
		ca->file = path;
		(void)cfg_load_ca_file(c, ca, path);
	} else if (strcmp(key, "crl") == 0) {
		if (*v == '\0') {
			cfg_err(c, c->line, "empty crl");
			return;
		}
		path = cfg_resolve(c, v);
		if (path == NULL)
			return;
		(void)cfg_load_crl_file(c, ca, path);
		free(path);
	} else {
		cfg_err(c, c->line, "unknown key \"%s\" in [ca %s]", key, ca->name);
	}
}

static void cfg_key_host(struct load_ctx *c, const char *key, const char *v)
{
	struct host_policy *h = &c->cfg->hosts[c->sec_index];
	struct host_extra *hx = &c->host_x[c->sec_index];
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
		i = config_lookup_name(mode_names, MODE_COUNT, v);
		if (i < 0) {
			cfg_err(c, c->line, "bad mode \"%s\" (enforce, optional, log, "
			        "off, deny)", v);
			return;
		}
		h->mode = (enum policy_mode)i;
	} else if (strcmp(key, "verify-depth") == 0) {
		if (cfg_once(c, KEY_VERIFY_DEPTH, key) == -1)
			return;
		if (config_parse_uint(v, 32, &u) == -1 || u < 1) {
			cfg_err(c, c->line, "bad verify-depth \"%s\" (1..32)", v);
			return;
		}
		h->verify_depth = (int)u;
	} else if (strcmp(key, "purpose") == 0) {
		if (cfg_once(c, KEY_PURPOSE, key) == -1)
			return;
		i = config_lookup_name(purpose_names, PURPOSE_COUNT, v);
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
		i = config_lookup_name(crl_check_names, CRL_CHECK_COUNT, v);
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

/* After the whole file: required keys, CA references, CRL defaults,
 * X509 stores. */
static void cfg_finish(struct load_ctx *c)
{
	struct config *cfg = c->cfg;
	char why[CONFIG_ERR_LEN];

	for (size_t i = 0; i < cfg->n_cas && !c->failed; i++) {
		if (cfg->cas[i].certs == NULL)
			cfg_err(c, c->ca_x[i].line, "[ca %s] has no file",
			        cfg->cas[i].name);
	}
	if (!c->failed)
		cfg_warn_split_crls(c);
	if (!c->failed)
		cfg_share_crls(c);
	for (size_t i = 0; i < cfg->n_hosts && !c->failed; i++) {
		struct host_policy *h = &cfg->hosts[i];
		struct host_extra *hx = &c->host_x[i];
		int any_crl = 0;

		if (hx->n_refs > 0) {
			h->cas = calloc(hx->n_refs, sizeof(*h->cas));
			if (h->cas == NULL) {
				cfg_err(c, hx->line, "out of memory");
				return;
			}
		}
		for (size_t r = 0; r < hx->n_refs; r++) {
			struct ca_entry *ca = NULL;
			size_t k;

			for (k = 0; k < cfg->n_cas; k++) {
				if (strcmp(cfg->cas[k].name, hx->refs[r].name) == 0) {
					ca = &cfg->cas[k];
					break;
				}
			}
			if (ca == NULL) {
				cfg_err(c, hx->refs[r].line, "unknown CA \"%s\" (no [ca %s] "
				        "section)", hx->refs[r].name, hx->refs[r].name);
				return;
			}
			/* "ca = a a" or a repeated line: keep one. */
			for (k = 0; k < h->n_cas && h->cas[k] != ca; k++)
				;
			if (k == h->n_cas)
				h->cas[h->n_cas++] = ca;
		}
		for (size_t k = 0; k < h->n_cas; k++) {
			if (sk_X509_CRL_num(h->cas[k]->crls) > 0)
				any_crl = 1;
		}
		/* off and deny never look at the certificate. */
		if (h->mode != MODE_OFF && h->mode != MODE_DENY && h->n_cas == 0) {
			cfg_err(c, hx->line, "[host %s] has no ca (required unless "
			        "mode = off or deny)", h->pattern);
			return;
		}
		if (h->crl_check == CRL_CHECK_DEFAULT) {
			h->crl_check = any_crl ? CRL_CHECK_LEAF : CRL_CHECK_NONE;
			/* "leaf when the CA has CRLs": per CA, not per host. */
			h->crl_check_auto = 1;
		} else if (h->crl_check != CRL_CHECK_NONE && !any_crl) {
			/* It would turn every certificate into crl_error. */
			cfg_err(c, hx->crl_line, "crl-check = %s but none of the "
			        "host's CAs has a crl", crl_check_names[h->crl_check]);
			return;
		}
	}
	if (c->has_default)
		cfg->default_policy = &cfg->hosts[c->default_index];
	for (size_t i = 0; i < cfg->n_hosts && !c->failed; i++) {
		struct host_policy *h = &cfg->hosts[i];

		/* A mode-off host without CAs never verifies anything. */
		if (h->n_cas == 0)
			continue;
		why[0] = '\0';
		if (verify_policy_prepare(h, why, sizeof(why)) == -1) {
			cfg_err(c, c->host_x[i].line, "[host %s]: %s", h->pattern,
			        why[0] != '\0' ? why : "cannot build the trust store");
			ERR_clear_error();
			return;
		}
	}
}

static void cfg_ctx_free(struct load_ctx *c)
{
	if (c->host_x != NULL && c->cfg != NULL) {
		for (size_t i = 0; i < c->cfg->n_hosts; i++) {
			for (size_t r = 0; r < c->host_x[i].n_refs; r++)
				free(c->host_x[i].refs[r].name);
			free(c->host_x[i].refs);
		}
	}
	free(c->host_x);
	free(c->ca_x);
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

static int cfg_load_text(const char *text, size_t len, const char *path,
                         struct config **out, char *err, size_t errlen)
{
	struct load_ctx c;
	struct config *cfg;
	const char *slash;
	int rc;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	memset(&c, 0, sizeof(c));
	c.path = path;
	c.err = err;
	c.errlen = errlen;
	c.text = text;
	c.text_len = len;

	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL) {
		cfg_err(&c, 0, "out of memory");
		return -1;
	}
	c.cfg = cfg;
	config_agent_defaults(&cfg->agent);
	cfg->path = strdup(path);
	cfg->index = calloc(1, sizeof(*cfg->index));
	slash = strrchr(path, '/');
	if (slash == NULL)
		c.dir = strdup(".");
	else if (slash == path)
		c.dir = strdup("/");
	else
		c.dir = strndup(path, (size_t)(slash - path));
	if (cfg->path == NULL || cfg->index == NULL || c.dir == NULL) {
		cfg_err(&c, 0, "out of memory");
		goto fail;
	}

	cfg_ini_options();
	rc = ini_parse_stream(cfg_reader, &c, cfg_handler, &c);
	if (!c.failed && rc != 0) {
		if (rc > 0)
			cfg_err(&c, rc, "syntax error (expected [section] or "
			        "key = value)");
		else
			cfg_err(&c, 0, "out of memory");
	}
	if (!c.failed)
		cfg_finish(&c);
	if (c.failed)
		goto fail;
	cfg_ctx_free(&c);
	ERR_clear_error();
	*out = cfg;
	return 0;
fail:
	cfg_ctx_free(&c);
	config_free(cfg);
	ERR_clear_error();
	return -1;
}

/* See config.h. */
int config_load(const char *path, struct config **out, char *err,
                size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if (cfg_read_file(path, CONFIG_MAX_FILE, &text, &len) == -1) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s:0: cannot read: %s", path,
			         strerror(errno));
		return -1;
	}
	rc = cfg_load_text(text, len, path, out, err, errlen);
	free(text);
	return rc;
}

/* See config.h. */
int config_load_string(const char *text, const char *path,
                       struct config **out, char *err, size_t errlen)
{
	return cfg_load_text(text, strlen(text), path, out, err, errlen);
}
