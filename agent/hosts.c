/*
 * hosts.c - host policies and the host index (uthash).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hosts.h"
#include "policy.h"
#include "settings.h"

/* uthash: report allocation failure instead of exiting. The macro assigns
 * a variable named `hash_oom` that every caller of HASH_ADD declares. */
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(elt) do { (void)(elt); hash_oom = 1; } while (0)
#include <uthash.h>

static const char *const mode_names[MODE_COUNT] = {
	[MODE_ENFORCE] = "enforce",
	[MODE_OPTIONAL] = "optional",
	[MODE_LOG] = "log",
	[MODE_OFF] = "off",
	[MODE_DENY] = "deny",
};
_Static_assert(sizeof(mode_names) / sizeof(mode_names[0]) == MODE_COUNT,
               "mode_names");

const char *config_mode_str(enum policy_mode m)
{
	if ((unsigned int)m >= MODE_COUNT)
		return "unknown";
	return mode_names[m];
}

int hosts_parse_mode(const char *s, enum policy_mode *m)
{
	int i = settings_lookup_name(mode_names, MODE_COUNT, s);

	if (i < 0)
		return -1;
	*m = (enum policy_mode)i;
	return 0;
}

int hosts_parse_pattern(const char *pattern, enum policy_kind *kind,
                        char *norm, char *why, size_t whylen)
{
	int n;

	if (strcmp(pattern, "*") == 0) {
		*kind = POLICY_DEFAULT;
		strcpy(norm, "*");
		return 0;
	}
	if (strncmp(pattern, "*.", 2) == 0 || strncmp(pattern, "**.", 3) == 0) {
		size_t skip = pattern[1] == '*' ? 3 : 2;

		*kind = skip == 3 ? POLICY_ANY_DEPTH : POLICY_WILDCARD;
		n = policy_normalize(pattern + skip, strlen(pattern + skip), 0,
		                     norm);
		if (n < 0 || strchr(norm, '*') != NULL || strchr(norm, ':') != NULL) {
			snprintf(why, whylen, "bad host pattern \"%s\" (a wildcard "
			         "is \"%s\" followed by a host name)", pattern,
			         skip == 3 ? "**." : "*.");
			return -1;
		}
		return 0;
	}
	*kind = POLICY_EXACT;
	if (strchr(pattern, '*') != NULL) {
		snprintf(why, whylen, "bad host pattern \"%s\": '*' is only "
		         "allowed as \"*\" or as the whole first label "
		         "(\"*.example.com\" one label, \"**.example.com\" "
		         "any depth)", pattern);
		return -1;
	}
	if (policy_normalize(pattern, strlen(pattern), 0, norm) < 0) {
		snprintf(why, whylen, "bad host name \"%s\"", pattern);
		return -1;
	}
	return 0;
}

struct host_policy *host_policy_new(const char *pattern, const char *name,
                                    enum policy_kind kind,
                                    enum policy_mode mode,
                                    struct trust_policy *trust)
{
	struct host_policy *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->pattern = strdup(pattern);
	h->name = strdup(name);
	if (h->pattern == NULL || h->name == NULL) {
		free(h->pattern);
		free(h->name);
		free(h);
		return NULL;
	}
	atomic_init(&h->refs, 1);
	h->kind = kind;
	h->mode = mode;
	h->trust = trust != NULL ? trust_policy_ref(trust) : NULL;
	return h;
}

struct host_policy *host_policy_ref(struct host_policy *h)
{
	atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
	return h;
}

void host_policy_unref(struct host_policy *h)
{
	if (h == NULL ||
	    atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) != 1)
		return;
	trust_policy_unref(h->trust);
	free(h->pattern);
	free(h->name);
	free(h);
}

/* ---- the index ---------------------------------------------------------- */

struct index_entry {
	struct host_policy *h;
	UT_hash_handle hh;      /* keyed by h->name */
};

struct hosts_index {
	struct index_entry *table[POLICY_KIND_COUNT]; /* by kind */
	struct host_policy *def;
};

struct hosts_index *hosts_index_new(void)
{
	return calloc(1, sizeof(struct hosts_index));
}

void hosts_index_free(struct hosts_index *idx)
{
	struct index_entry *e, *tmp;

	if (idx == NULL)
		return;
	for (int k = 0; k < POLICY_KIND_COUNT; k++) {
		HASH_ITER(hh, idx->table[k], e, tmp) {
			HASH_DEL(idx->table[k], e);
			free(e);
		}
	}
	free(idx);
}

int hosts_index_add(struct hosts_index *idx, struct host_policy *h,
                    struct host_policy **dup)
{
	struct index_entry *e = NULL, **table;
	int hash_oom = 0;

	*dup = NULL;
	if (h->kind == POLICY_DEFAULT) {
		if (idx->def != NULL) {
			*dup = idx->def;
			return 1;
		}
		idx->def = h;
		return 0;
	}
	table = &idx->table[h->kind];
	HASH_FIND(hh, *table, h->name, strlen(h->name), e);
	if (e != NULL) {
		*dup = e->h;
		return 1;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -1;
	e->h = h;
	HASH_ADD_KEYPTR(hh, *table, h->name, strlen(h->name), e);
	if (hash_oom) {
		free(e);
		return -1;
	}
	return 0;
}

const struct host_policy *hosts_default(const struct hosts_index *idx)
{
	return idx != NULL ? idx->def : NULL;
}

/* See hosts.h. Pure reads of the hash tables: no allocation, safe from
 * any number of threads on an installed (immutable) index. */
const struct host_policy *hosts_lookup(const struct hosts_index *idx,
                                       const char *name, size_t len)
{
	struct index_entry *e = NULL;
	const char *dot;

	if (idx == NULL)
		return NULL;
	if (name == NULL || len == 0)
		return idx->def;
	HASH_FIND(hh, idx->table[POLICY_EXACT], name, len, e);
	if (e != NULL)
		return e->h;
	/* One-label wildcard: key by what follows the first label. */
	dot = memchr(name, '.', len);
	if (dot != NULL && dot > name && (size_t)(dot - name) + 1 < len) {
		const char *rest = dot + 1;

		HASH_FIND(hh, idx->table[POLICY_WILDCARD], rest,
		          len - (size_t)(rest - name), e);
		if (e != NULL)
			return e->h;
	}
	/* Any-depth wildcard: every suffix that follows a dot, the longest
	 * (leftmost dot) first, so the most specific wins. The whole name is
	 * never tried: "**.x" needs a label. */
	for (const char *p = name, *end = name + len;
	     (dot = memchr(p, '.', (size_t)(end - p))) != NULL; p = dot + 1) {
		const char *rest = dot + 1;

		if (dot == name || rest == end)
			break;  /* empty label: not a normalized name */
		HASH_FIND(hh, idx->table[POLICY_ANY_DEPTH], rest,
		          (size_t)(end - rest), e);
		if (e != NULL)
			return e->h;
	}
	return idx->def;
}
