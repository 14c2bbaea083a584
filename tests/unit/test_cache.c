/*
 * test_cache.c - the verdict cache: exact matches, expiry, eviction, bounds,
 * and the expiry the handler computes for a verdict.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cache.h"
#include "handler.h"

static struct mtls_request req_of(const char *host, const char *sni,
                                  const char *cert, const char *chain)
{
	struct mtls_request r;

	memset(&r, 0, sizeof(r));
	if (host) { r.host = host; r.host_len = strlen(host); }
	if (sni) { r.sni = sni; r.sni_len = strlen(sni); }
	if (cert) { r.cert = (const uint8_t *)cert; r.cert_len = strlen(cert); }
	if (chain) { r.chain = (const uint8_t *)chain; r.chain_len = strlen(chain); }
	return r;
}

static int get(struct cache *c, uint64_t gen, struct mtls_request r, time_t now,
               const uint8_t **data, size_t *len)
{
	return cache_get(c, cache_hash(c, gen, &r), gen, &r, now, data, len);
}

static void put(struct cache *c, uint64_t gen, struct mtls_request r, time_t expires,
                const char *answer, size_t len)
{
	cache_put(c, cache_hash(c, gen, &r), gen, &r, expires, (const uint8_t *)answer, len);
}

static void test_disabled(void **state)
{
	(void)state;
	assert_null(cache_new(0));
	cache_free(NULL);
	cache_clear(NULL);
}

/* A hit needs exactly the same request: every field and the generation
 * count, field boundaries are not ambiguous ("CERT"+"CHAIN" is not
 * "CERTC"+"HAIN"), and a missing field differs from an empty one. The
 * same bytes at other addresses do hit. */
static void test_hit_needs_the_same_request(void **state)
{
	struct cache *c = cache_new(64);
	const uint8_t *data;
	size_t len;
	char host[] = "a.example", sni[] = "a.example", cert[] = "CERT", chain[] = "CHAIN";
	struct mtls_request variants[] = {
		req_of("b.example", "a.example", "CERT", "CHAIN"),
		req_of("a.example", "b.example", "CERT", "CHAIN"),
		req_of("a.example", "a.example", "CERX", "CHAIN"),
		req_of("a.example", "a.example", "CERT", "CHAIX"),
		req_of("a.example", "a.example", "CERTC", "HAIN"),
		req_of("a.example", "a.example", "CERT", ""),
		req_of("a.example", "a.example", "CERT", NULL),
		req_of(NULL, "a.example", "CERT", "CHAIN"),
		req_of("a.example", NULL, "CERT", "CHAIN"),
		req_of("a.example", "a.example", NULL, "CHAIN"),
	};
	size_t i;

	(void)state;
	assert_non_null(c);
	put(c, 1, req_of(host, sni, cert, chain), 100, "answer", 6);
	for (i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
		assert_int_equal(get(c, 1, variants[i], 1, &data, &len), 0);
	/* Another generation: a reload never reuses an answer. */
	assert_int_equal(get(c, 2, req_of(host, sni, cert, chain), 1, &data, &len), 0);
	/* Same bytes, other buffers: a hit. */
	assert_int_equal(get(c, 1, req_of("a.example", "a.example", "CERT", "CHAIN"), 1,
	                     &data, &len), 1);
	assert_int_equal(len, 6);
	assert_memory_equal(data, "answer", 6);
	cache_free(c);
}

/* Even when two requests land in the same set with the same hash (forced
 * here), the bytes decide. */
static void test_same_hash_different_request(void **state)
{
	struct cache *c = cache_new(4);
	struct mtls_request a = req_of("h", "h", "cert-a", NULL);
	struct mtls_request b = req_of("h", "h", "cert-b", NULL);
	const uint8_t *data;
	size_t len;

	(void)state;
	cache_put(c, 42, 1, &a, 100, (const uint8_t *)"A", 1);
	assert_int_equal(cache_get(c, 42, 1, &b, 1, &data, &len), 0);
	assert_int_equal(cache_get(c, 42, 1, &a, 1, &data, &len), 1);
	assert_memory_equal(data, "A", 1);
	cache_free(c);
}

static void test_hit_miss_and_expiry(void **state)
{
	struct cache *c = cache_new(16);
	struct mtls_request r = req_of("h", "h", "cert", NULL);
	const uint8_t *data;
	size_t len;
	struct cache_stats st;

	(void)state;
	assert_int_equal(get(c, 1, r, 1000, &data, &len), 0);
	put(c, 1, r, 1010, "answer", 6);
	assert_int_equal(get(c, 1, r, 1000, &data, &len), 1);
	assert_int_equal(len, 6);
	assert_memory_equal(data, "answer", 6);
	assert_int_equal(get(c, 1, r, 1009, &data, &len), 1);
	/* Expiry is exclusive: at `expires` the entry is gone. */
	assert_int_equal(get(c, 1, r, 1010, &data, &len), 0);
	assert_int_equal(get(c, 1, r, 1000, &data, &len), 0);
	cache_get_stats(c, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.misses, 3);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.entries, 0);
	cache_free(c);
}

static void test_replace_same_request(void **state)
{
	struct cache *c = cache_new(4);
	struct mtls_request r = req_of("h", "h", "cert", NULL);
	const uint8_t *data;
	size_t len;
	struct cache_stats st;

	(void)state;
	put(c, 1, r, 100, "one", 3);
	put(c, 1, r, 100, "second", 6);
	assert_int_equal(get(c, 1, r, 50, &data, &len), 1);
	assert_int_equal(len, 6);
	assert_memory_equal(data, "second", 6);
	cache_get_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.evictions, 0);
	cache_free(c);
}

/* Never more entries than the capacity, however many are inserted, and
 * the most recently used entries survive. */
static void test_bounded_and_lru(void **state)
{
	struct cache *c = cache_new(8);
	static char certs[200][16];
	const uint8_t *data;
	size_t len;
	struct cache_stats st;
	int i, hits = 0;

	(void)state;
	for (i = 0; i < 200; i++) {
		snprintf(certs[i], sizeof(certs[i]), "c%d", i);
		put(c, 1, req_of("h", "h", certs[i], NULL), 100, certs[i], strlen(certs[i]));
		/* Keep touching entry 0: LRU must keep it. */
		assert_int_equal(get(c, 1, req_of("h", "h", certs[0], NULL), 1, &data, &len), 1);
		cache_get_stats(c, &st);
		assert_true(st.entries <= 8);
	}
	for (i = 1; i < 200; i++)
		hits += get(c, 1, req_of("h", "h", certs[i], NULL), 1, &data, &len);
	cache_get_stats(c, &st);
	assert_true(hits <= 7);
	assert_true(st.evictions >= 200 - 8);
	assert_int_equal(get(c, 1, req_of("h", "h", "c0", NULL), 1, &data, &len), 1);
	assert_memory_equal(data, "c0", 2);
	cache_free(c);
}

static void test_clear_and_oversize(void **state)
{
	struct cache *c = cache_new(4);
	struct mtls_request r = req_of("h", "h", "cert", NULL), big_req;
	const uint8_t *data;
	size_t len;
	static char big[CACHE_MAX_REQUEST + 1];

	(void)state;
	put(c, 1, r, 100, big, CACHE_MAX_VALUE + 1);
	assert_int_equal(get(c, 1, r, 1, &data, &len), 0);
	put(c, 1, r, 100, big, CACHE_MAX_VALUE);
	assert_int_equal(get(c, 1, r, 1, &data, &len), 1);
	cache_clear(c);
	assert_int_equal(get(c, 1, r, 1, &data, &len), 0);
	/* A zero expiry means "do not cache". */
	put(c, 1, r, 0, "x", 1);
	assert_int_equal(get(c, 1, r, 1, &data, &len), 0);
	/* A request too large to keep a copy of is not cached. */
	memset(big, 'A', sizeof(big));
	big_req = req_of("h", "h", NULL, NULL);
	big_req.cert = (const uint8_t *)big;
	big_req.cert_len = sizeof(big);
	put(c, 1, big_req, 100, "x", 1);
	assert_int_equal(get(c, 1, big_req, 1, &data, &len), 0);
	cache_free(c);
}

static void test_cache_until(void **state)
{
	struct verdict v;

	(void)state;
	memset(&v, 0, sizeof(v));
	v.result = RESULT_OK;
	assert_int_equal(handler_cache_until(&v, 1000, 60), 1060);
	/* A certificate expiring sooner bounds the entry. */
	v.valid_until = 1030;
	assert_int_equal(handler_cache_until(&v, 1000, 60), 1030);
	v.valid_until = 5000;
	assert_int_equal(handler_cache_until(&v, 1000, 60), 1060);
	/* Already past: not cached at all. */
	v.valid_until = 1000;
	assert_int_equal(handler_cache_until(&v, 1000, 60), 0);
	v.valid_until = 0;
	assert_int_equal(handler_cache_until(&v, 1000, 0), 0);
	v.result = RESULT_INTERNAL_ERROR;
	assert_int_equal(handler_cache_until(&v, 1000, 60), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_hit_needs_the_same_request),
		cmocka_unit_test(test_same_hash_different_request),
		cmocka_unit_test(test_hit_miss_and_expiry),
		cmocka_unit_test(test_replace_same_request),
		cmocka_unit_test(test_bounded_and_lru),
		cmocka_unit_test(test_clear_and_oversize),
		cmocka_unit_test(test_cache_until),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
