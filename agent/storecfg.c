/*
 * storecfg.c - the [store] section's keys (storecfg.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"
#include "storecfg.h"

static const char *const path_keys[] = {
	"ca-file", "cert-file", "key-file", "password-file",
};

static char **path_slot(struct store_settings *s, const char *key)
{
	char **slots[] = { &s->ca_file, &s->cert_file, &s->key_file,
	                   &s->password_file };

	for (size_t i = 0; i < sizeof(path_keys) / sizeof(path_keys[0]); i++)
		if (strcmp(path_keys[i], key) == 0)
			return slots[i];
	return NULL;
}

int store_settings_is_path(const char *key)
{
	struct store_settings s;

	return path_slot(&s, key) != NULL;
}

void store_settings_path(struct store_settings *s, const char *key, char *path)
{
	char **slot = path_slot(s, key);

	if (slot == NULL) {
		free(path);
		return;
	}
	free(*slot);
	*slot = path;
}

/* http://HOST:PORT or https://...: what libcurl is allowed to reach. */
static int endpoint_ok(const char *e)
{
	size_t n = strncmp(e, "http://", 7) == 0 ? 7 :
	           strncmp(e, "https://", 8) == 0 ? 8 : 0;

	if (n == 0 || e[n] == '\0' || strlen(e) > 256)
		return 0;
	for (const char *p = e; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == '"' || *p == '\\')
			return 0;
	return 1;
}

int store_settings_set(struct store_settings *s, const char *key,
                       const char *v, char *why, size_t whylen)
{
	if (strcmp(key, "backend") == 0) {
		if (strcmp(v, "files") == 0)
			s->backend = STORE_FILES;
		else if (strcmp(v, "etcd") == 0)
			s->backend = STORE_ETCD;
		else {
			snprintf(why, whylen, "bad backend \"%s\" (files or etcd)", v);
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "endpoints") == 0) {
		char buf[4096], *save = NULL;

		if (strlen(v) >= sizeof(buf)) {
			snprintf(why, whylen, "endpoints too long");
			return -1;
		}
		snprintf(buf, sizeof(buf), "%s", v);
		for (char *t = strtok_r(buf, " \t,", &save); t != NULL;
		     t = strtok_r(NULL, " \t,", &save)) {
			if (!endpoint_ok(t)) {
				snprintf(why, whylen, "bad endpoint \"%.200s\" (http://HOST:PORT "
				         "or https://HOST:PORT)", t);
				return -1;
			}
			if (s->n_endpoints >= STORE_MAX_ENDPOINTS) {
				snprintf(why, whylen, "too many endpoints (at most %d)",
				         STORE_MAX_ENDPOINTS);
				return -1;
			}
			if ((s->endpoints[s->n_endpoints] = strdup(t)) == NULL) {
				snprintf(why, whylen, "out of memory");
				return -1;
			}
			s->n_endpoints++;
		}
		return 0;
	}
	if (strcmp(key, "prefix") == 0) {
		if (v[0] != '/' || strlen(v) > STORE_MAX_PREFIX) {
			snprintf(why, whylen, "bad prefix \"%.200s\" (starts with '/', at "
			         "most %d bytes)", v, STORE_MAX_PREFIX);
			return -1;
		}
		free(s->prefix);
		if ((s->prefix = strdup(v)) == NULL) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "timeout") == 0) {
		unsigned int ms;

		if (config_parse_duration(v, &ms) != 0 || ms < 10 || ms > 600000) {
			snprintf(why, whylen, "bad timeout \"%s\" (10ms to 10m, such as 2s)", v);
			return -1;
		}
		s->timeout_ms = ms;
		return 0;
	}
	if (strcmp(key, "user") == 0) {
		free(s->user);
		if ((s->user = strdup(v)) == NULL) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		return 0;
	}
	return 1;
}

int store_settings_check(const struct store_settings *s, char *why,
                         size_t whylen)
{
	if (s->backend != STORE_ETCD)
		return 0;
	if (s->n_endpoints == 0) {
		snprintf(why, whylen, "backend etcd needs endpoints");
		return -1;
	}
	if ((s->user != NULL) != (s->password_file != NULL)) {
		snprintf(why, whylen, "user and password-file go together");
		return -1;
	}
	if ((s->cert_file != NULL) != (s->key_file != NULL)) {
		snprintf(why, whylen, "cert-file and key-file go together");
		return -1;
	}
	return 0;
}

const char *store_settings_prefix(const struct store_settings *s)
{
	return s->prefix != NULL ? s->prefix : STORE_DEFAULT_PREFIX;
}

unsigned int store_settings_timeout(const struct store_settings *s)
{
	return s->timeout_ms != 0 ? s->timeout_ms : STORE_DEFAULT_TIMEOUT_MS;
}

static int dup_str(char **dst, const char *src)
{
	*dst = NULL;
	return src != NULL && (*dst = strdup(src)) == NULL ? -1 : 0;
}

int store_settings_copy(struct store_settings *dst,
                        const struct store_settings *src)
{
	int bad = 0;

	memset(dst, 0, sizeof(*dst));
	dst->backend = src->backend;
	dst->timeout_ms = src->timeout_ms;
	dst->line = src->line;
	for (size_t i = 0; i < src->n_endpoints; i++)
		bad |= dup_str(&dst->endpoints[dst->n_endpoints++], src->endpoints[i]);
	bad |= dup_str(&dst->prefix, src->prefix);
	bad |= dup_str(&dst->ca_file, src->ca_file);
	bad |= dup_str(&dst->cert_file, src->cert_file);
	bad |= dup_str(&dst->key_file, src->key_file);
	bad |= dup_str(&dst->user, src->user);
	bad |= dup_str(&dst->password_file, src->password_file);
	if (bad) {
		store_settings_free(dst);
		return -1;
	}
	return 0;
}

void store_settings_free(struct store_settings *s)
{
	for (size_t i = 0; i < s->n_endpoints; i++)
		free(s->endpoints[i]);
	free(s->prefix);
	free(s->ca_file);
	free(s->cert_file);
	free(s->key_file);
	free(s->user);
	free(s->password_file);
	memset(s, 0, sizeof(*s));
}
