/*
 * storecfg.h - the [store] section: where the tenant API's objects live.
 * backend = files (the state directory, the default) or etcd (a cluster
 * every agent of a fleet shares, fleet.c). Pure parsing, no I/O.
 */
#ifndef MTLS_STORECFG_H
#define MTLS_STORECFG_H

#include <stddef.h>

#define STORE_MAX_ENDPOINTS 16
#define STORE_DEFAULT_PREFIX "/mtls-spoa/"
#define STORE_DEFAULT_TIMEOUT_MS 2000
#define STORE_MAX_PREFIX 256

enum store_backend { STORE_FILES = 0, STORE_ETCD };

struct store_settings {
	int backend;                    /* enum store_backend */
	char *endpoints[STORE_MAX_ENDPOINTS];
	size_t n_endpoints;
	char *prefix;                   /* NULL: STORE_DEFAULT_PREFIX */
	unsigned int timeout_ms;        /* 0: STORE_DEFAULT_TIMEOUT_MS */
	char *ca_file, *cert_file, *key_file;  /* resolved paths, or NULL */
	char *user;
	char *password_file;
	int line;                       /* of the [store] header, for errors */
};

/* Whether `key` is a path key (ca-file, cert-file, key-file,
 * password-file): the caller resolves it and calls store_settings_path. */
int store_settings_is_path(const char *key);
/* Set a non-path key: 0, 1 unknown key, or -1 with why. */
int store_settings_set(struct store_settings *s, const char *key,
                       const char *v, char *why, size_t whylen);
/* Take over the resolved path for key. */
void store_settings_path(struct store_settings *s, const char *key, char *path);
/* After the section: -1 with why when it is incomplete. */
int store_settings_check(const struct store_settings *s, char *why,
                         size_t whylen);
const char *store_settings_prefix(const struct store_settings *s);
unsigned int store_settings_timeout(const struct store_settings *s);
/* A deep copy into dst; -1 when out of memory (dst freed). */
int store_settings_copy(struct store_settings *dst,
                        const struct store_settings *src);
void store_settings_free(struct store_settings *s);

#endif /* MTLS_STORECFG_H */
