/*
 * apihost.h - an in-process host for the tenant API (api.h), for the unit
 * tests, the API fuzzer and the write benchmark: a write runs at once on
 * the caller's thread, the live generation is a variable, and a rebuild
 * loads the main file with the state text beside it, as the server does.
 *
 * Header-only (static functions): the benchmark tools link no test
 * helpers. One `struct apihost` is the host's context (api_new(&
 * apihost_ops, &host)).
 */
#ifndef MTLS_TEST_APIHOST_H
#define MTLS_TEST_APIHOST_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "config.h"

/* Replaced generations kept before they are freed: the write that
 * replaced one still reads it (its answer, its state), and a test may
 * hold one across a few writes. */
#define APIHOST_KEEP 64

/* Not every includer calls every function. */
#define APIHOST_FN static __attribute__((unused))

struct apihost {
	const char *main_path;
	struct config *live;
	uint64_t gen;
	int rebuilds;                   /* writes that loaded the files */
	struct config *retired[APIHOST_KEEP];
	size_t n_retired;
};

APIHOST_FN int apihost_run(void *ctx, void (*fn)(void *), void *arg)
{
	(void)ctx;
	fn(arg);
	return 0;
}

APIHOST_FN const struct config *apihost_acquire(void *ctx, void **ref, uint64_t *gen)
{
	struct apihost *h = ctx;

	*ref = NULL;
	*gen = h->gen;
	return h->live;
}

APIHOST_FN void apihost_release(void *ctx, void *ref)
{
	(void)ctx; (void)ref;
}

APIHOST_FN int apihost_rebuild(void *ctx, const char *text, size_t len,
                           struct config **out, char *err, size_t errlen)
{
	struct apihost *h = ctx;
	struct config_opts o = { .api_text = text, .api_len = len };

	h->rebuilds++;
	return config_reload_opts(h->main_path, h->live, &o, out, err, errlen);
}

APIHOST_FN void apihost_free_retired(struct apihost *h)
{
	while (h->n_retired > 0)
		config_free(h->retired[--h->n_retired]);
}

APIHOST_FN int apihost_install(void *ctx, struct config *cfg, const char *why,
                           uint64_t *gen)
{
	struct apihost *h = ctx;

	(void)why;
	if (h->n_retired == APIHOST_KEEP)
		apihost_free_retired(h);
	h->retired[h->n_retired++] = h->live;
	h->live = cfg;
	*gen = ++h->gen;
	return 0;
}

/* Everything the host holds (the live generation too). */
APIHOST_FN void apihost_free(struct apihost *h)
{
	apihost_free_retired(h);
	config_free(h->live);
	h->live = NULL;
}

static const struct api_host_ops apihost_ops __attribute__((unused)) = {
	.run = apihost_run, .acquire = apihost_acquire,
	.release = apihost_release, .rebuild = apihost_rebuild,
	.install = apihost_install,
};

#endif /* MTLS_TEST_APIHOST_H */
