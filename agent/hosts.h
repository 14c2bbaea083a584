/*
 * hosts.h - [host PATTERN] policies and the index that finds the policy
 * of a host name: exact names, one-label wildcards "*.suffix", any-depth
 * wildcards "**.suffix" and the default "[host *]".
 *
 * A host policy is immutable and reference counted, so a configuration
 * generation can share it with the previous one. The index is built per
 * generation and only read afterwards, from any number of threads.
 */
#ifndef MTLS_HOSTS_H
#define MTLS_HOSTS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "trust.h"

#define HOSTS_WUR __attribute__((warn_unused_result))

enum policy_mode {
	MODE_ENFORCE = 0,
	MODE_OPTIONAL,
	MODE_LOG,
	MODE_OFF,
	MODE_DENY,      /* refuse every request, whatever the certificate */
	MODE_COUNT
};

enum policy_kind {
	POLICY_EXACT = 0,     /* api.example.com */
	POLICY_WILDCARD,      /* *.example.com: exactly one label */
	POLICY_DEFAULT,       /* [host *] */
	POLICY_ANY_DEPTH,     /* **.example.com: one or more labels */
	POLICY_KIND_COUNT
};

struct host_policy {
	atomic_uint refs;
	char *pattern;              /* as written, for the `policy` variable */
	char *name;                 /* normalized: lower case, no trailing dot;
	                               for wildcards the part after "*." or
	                               "**."; "*" for the default */
	enum policy_kind kind;
	enum policy_mode mode;
	struct trust_policy *trust; /* reference; NULL when the host lists no
	                               CA (mode off or deny) */
};

/* Parse a [host] pattern: kind and normalized name (POLICY_HOST_MAX + 1
 * bytes). Returns 0, or -1 with what is wrong in why. */
HOSTS_WUR int hosts_parse_pattern(const char *pattern, enum policy_kind *kind,
                                  char *norm, char *why, size_t whylen);

/* A new host policy (one reference), taking a new reference on `trust`
 * (may be NULL). NULL when out of memory. */
HOSTS_WUR struct host_policy *host_policy_new(const char *pattern,
                                              const char *name,
                                              enum policy_kind kind,
                                              enum policy_mode mode,
                                              struct trust_policy *trust);
struct host_policy *host_policy_ref(struct host_policy *h);
void host_policy_unref(struct host_policy *h);

struct hosts_index;

HOSTS_WUR struct hosts_index *hosts_index_new(void);
void hosts_index_free(struct hosts_index *idx);

/* Add `h` (borrowed: the caller keeps it alive as long as the index).
 * Returns 0, 1 if a policy of the same kind and name is already there
 * (*dup is set to it), -1 when out of memory. The default policy is
 * kept apart: adding a second one is a duplicate too. */
HOSTS_WUR int hosts_index_add(struct hosts_index *idx, struct host_policy *h,
                              struct host_policy **dup);

/* The policy of an already normalized host name (see policy_normalize()):
 * exact, then one-label wildcard, then any-depth wildcard with the
 * longest matching suffix, then the default. One hash lookup per label
 * at most. NULL when none applies. */
const struct host_policy *hosts_lookup(const struct hosts_index *idx,
                                       const char *name, size_t len);

/* The default policy ([host *]) or NULL. */
const struct host_policy *hosts_default(const struct hosts_index *idx);

const char *config_mode_str(enum policy_mode m);
int hosts_parse_mode(const char *s, enum policy_mode *m);

#endif /* MTLS_HOSTS_H */
