/*
 * apiobj.h - the API's objects: their JSON (what a GET returns, what a
 * PUT takes), their entity tags, and the state they are stored as.
 *
 * The live configuration is the truth: a GET renders a CA or host
 * straight from the generation (for the static files' objects too), and
 * a write starts from the API-owned objects of the live generation
 * (api_state_from_config), changes them, renders the state as the INI
 * text of STATE/api.conf (api_state_render) and lets the configuration
 * loader check it like any file. Nothing here writes files or installs
 * anything (api.c does).
 */
#ifndef MTLS_APIOBJ_H
#define MTLS_APIOBJ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "config.h"

#define APIOBJ_WUR __attribute__((warn_unused_result))

/* Longest message of a refusal. */
#define APIOBJ_ERR_LEN 640

/* ---- JSON of live objects ------------------------------------------- */

/* Index of the CA named `name` in cfg->cas, or -1. */
ssize_t apiobj_find_ca(const struct config *cfg, const char *name);
/* Index of the host whose pattern is `pattern` (any spelling the file
 * accepts: case, trailing dot), or -1; -2 when `pattern` is not a valid
 * pattern (what is wrong in why). */
ssize_t apiobj_find_host(const struct config *cfg, const char *pattern,
                         char *why, size_t whylen);

/* Whether cfg->cas[i] / cfg->hosts[i] came from the state file. */
int apiobj_ca_is_api(const struct config *cfg, size_t i);
int apiobj_host_is_api(const struct config *cfg, size_t i);
/* "FILE:LINE" of a file-defined object, into buf. */
void apiobj_origin(const struct config *cfg, const struct config_origin *o,
                   char *buf, size_t len);

/* The JSON of cfg->cas[i] (with its "hosts") / cfg->hosts[i]. NULL when
 * out of memory. */
json_t *apiobj_ca_json(const struct config *cfg, size_t i);
json_t *apiobj_host_json(const struct config *cfg, size_t i);
/* Every CA / host, as {"items": [...]}. */
json_t *apiobj_ca_list(const struct config *cfg);
json_t *apiobj_host_list(const struct config *cfg);
/* The patterns of the hosts that list cfg->cas[i]. */
json_t *apiobj_ca_hosts(const struct config *cfg, size_t i);

/* The strong entity tag of an object's JSON: "\"<32 hex>\"" (the output
 * fields that describe other objects, "hosts", left out). buf: 40. */
void apiobj_etag(const json_t *obj, char buf[40]);

/* ---- the stored state ------------------------------------------------- */

struct api_ca {
	char *name;
	char *file;         /* "pem/<hex>.pem", relative to the state dir */
	char **crls;        /* the same, n_crls */
	size_t n_crls;
	char **rev_keys;    /* revocation keys as the file writes them */
	char **rev_vals;    /* ("crl-url", "ocsp", ...) and their values */
	size_t n_rev;
	struct ca_entry *from;     /* the live entry it was read from; NULL
	                              once changed (or new) */
};

/* The revocation fields of a CA object (crl_urls, ocsp, crl_refresh...)
 * from a PUT body into c (the [ca] keys and values they are). 0, or -1
 * with the field at fault and the file's message. */
APIOBJ_WUR int api_ca_rev_from_json(const json_t *body, struct api_ca *c,
                                    const char **field, char *msg,
                                    size_t msglen);
/* Whether `key` is one of those fields. */
int api_ca_rev_field(const char *key);

struct api_host {
	char *pattern;      /* normalized: "*.example.com", "api.example.com" */
	char **cas;
	size_t n_cas;
	int mode;           /* enum policy_mode */
	int purpose;        /* enum policy_purpose */
	int verify_depth;
	int crl_check;      /* enum crl_check, CRL_CHECK_DEFAULT: not written */
	char **identities;
	size_t n_identities;
	uint8_t (*pins)[32];
	size_t n_pins;
	struct host_policy *from;  /* the live policy it was read from; NULL
	                              once changed (or new) */
};

/* Which JSON field an INI line of the rendered text came from. */
struct api_line {
	int is_host;
	size_t index;       /* into cas or hosts */
	const char *field;  /* "certificates", "ca", "mode", ... */
};

/* Positions by name (api_state_find_*): open addressing over the
 * entries' own keys, so that replacing an entry by one of the same name
 * keeps it; a removal (entries move) marks it for a rebuild. */
struct api_index {
	size_t *slot;       /* position + 1; 0: empty */
	size_t cap;         /* a power of two, over twice the entries */
	int valid;
};

struct api_state {
	struct api_ca *cas;
	size_t n_cas;
	struct api_host *hosts;
	size_t n_hosts;
	struct api_index ca_idx, host_idx;
};

/* The API-owned objects of `cfg` (may be NULL: empty). 0 or -1 (OOM). */
APIOBJ_WUR int api_state_from_config(const struct config *cfg,
                                     struct api_state *st);
void api_state_free(struct api_state *st);

/* Make `st` the state of `cfg`, a generation built from it, without
 * reading every object again: each entry's `from` becomes cfg's object in
 * its place, and the entries a write changed (from NULL) are read from
 * cfg (normalized, as api_state_from_config gives them). 0, or -1 when
 * cfg's API objects are not st's (st is then to be dropped). */
APIOBJ_WUR int api_state_follow(struct api_state *st, const struct config *cfg);
/* The entry of that name / normalized pattern, or -1: hashed, because a
 * store read or an association of 10,000 hosts looks every one up. */
ssize_t api_state_find_ca(struct api_state *st, const char *name);
ssize_t api_state_find_host(struct api_state *st, const char *pattern);

/* Remove entry i (freeing it). */
void api_state_remove_ca(struct api_state *st, size_t i);
void api_state_remove_host(struct api_state *st, size_t i);
/* Put `h` (taken over) in place of entry `at`, or append when at < 0.
 * 0 or -1 (OOM, h freed). */
APIOBJ_WUR int api_state_put_host(struct api_state *st, ssize_t at,
                                  struct api_host *h);
APIOBJ_WUR int api_state_put_ca(struct api_state *st, ssize_t at,
                                struct api_ca *c);
void api_host_free(struct api_host *h);
void api_ca_free(struct api_ca *c);


/* The INI text of the state (malloc'd, *len bytes, NUL-terminated), with
 * lines[k] describing line k + 1 (*n_lines entries, malloc'd). NULL when
 * out of memory. */
char *api_state_render(const struct api_state *st, uint64_t generation,
                       size_t *len, struct api_line **lines, size_t *n_lines);

/* ---- input ------------------------------------------------------------ */

/* The normal form of a host pattern ("API.Example.com." ->
 * "api.example.com", "*.X.com" -> "*.x.com"): 0, or -1 with why. out:
 * POLICY_HOST_MAX + 4 bytes. */
APIOBJ_WUR int api_pattern_normalize(const char *in, char *out, size_t outlen,
                                     char *why, size_t whylen);

/* A host from a PUT body (or a merged PATCH document) for the pattern of
 * the URL. 0, or -1 with the field at fault (static string or NULL) and
 * a message. */
APIOBJ_WUR int api_host_from_json(const json_t *body, const char *pattern,
                                  struct api_host *h, const char **field,
                                  char *msg, size_t msglen);

/* The PEM blocks of `text` of type `label` ("CERTIFICATE", "X509 CRL"),
 * each parsed and written again: the normalized text (malloc'd) and the
 * count. 0, or -1 with a message (a block of another type, one that does
 * not parse, none at all, more than `max`). */
APIOBJ_WUR int api_pem_normalize(const char *text, size_t len, int crl,
                                 size_t max, char **out, size_t *out_len,
                                 size_t *count, char *msg, size_t msglen);

#endif /* MTLS_APIOBJ_H */
