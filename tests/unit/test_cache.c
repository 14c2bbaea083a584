/*
 * test_cache.c - the verdict cache: keys, hits, expiry, eviction, bounds,
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

static void key_of(struct cache *c, uint64_t gen, struct mtls_request r,
                   uint8_t key[CACHE_KEY_LEN])
{
	assert_int_equal(cache_key(c, gen, &r, key), 0);
}

static void test_disabled(void **state)
{
	(void)state;
	assert_null(cache_new(0));
	cache_free(NULL);
	cache_clear(NULL);
}

/* Every input of the verdict changes the key, and field boundaries are
 * not ambiguous ("ab"+"c" differs from "a"+"bc"; missing differs from
 * empty). */
static void test_key_covers_every_input(void **state)
{
	struct cache *c = cache_new(16);
	uint8_t k[8][CACHE_KEY_LEN];
	int i, j;

	(void)state;
	assert_non_null(c);
	key_of(c, 1, req_of("a.example", "a.example", "CERT", "CHAIN"), k[0]);
	key_of(c, 2, req_of("a.example", "a.example", "CERT", "CHAIN"), k[1]);
	key_of(c, 1, req_of("b.example", "a.example", "CERT", "CHAIN"), k[2]);
	key_of(c, 1, req_of("a.example", "b.example", "CERT", "CHAIN"), k[3]);
	key_of(c, 1, req_of("a.example", "a.example", "CERX", "CHAIN"), k[4]);
	key_of(c, 1, req_of("a.example", "a.example", "CERT", "CHAIX"), k[5]);
	key_of(c, 1, req_of("a.example", "a.example", "CERTC", "HAIN"), k[6]);
	key_of(c, 1, req_of("a.example", "a.example", "CERT", ""), k[7]);
	for (i = 0; i < 8; i++)
		for (j = i + 1; j < 8; j++)
			assert_memory_not_equal(k[i], k[j], CACHE_KEY_LEN);
	{
		uint8_t a[CACHE_KEY_LEN], b[CACHE_KEY_LEN];
		struct mtls_request r = req_of("h", "h", "C", NULL);

		key_of(c, 1, r, a);
		r.chain = (const uint8_t *)"";  /* present but empty */
		key_of(c, 1, r, b);
		assert_memory_not_equal(a, b, CACHE_KEY_LEN);
		/* Same request, same key. */
		key_of(c, 1, req_of("a.example", "a.example", "CERT", "CHAIN"), b);
		assert_memory_equal(k[0], b, CACHE_KEY_LEN);
	}
	cache_free(c);
}

static void test_hit_miss_and_expiry(void **state)
{
	struct cache *c = cache_new(16);
	uint8_t key[CACHE_KEY_LEN];
	const uint8_t *data;
	size_t len;
	struct cache_stats st;

	(void)state;
	key_of(c, 1, req_of("h", "h", "cert", NULL), key);
	assert_int_equal(cache_get(c, key, 1000, &data, &len), 0);
	cache_put(c, key, 1010, (const uint8_t *)"answer", 6);
	assert_int_equal(cache_get(c, key, 1000, &data, &len), 1);
	assert_int_equal(len, 6);
	assert_memory_equal(data, "answer", 6);
	assert_int_equal(cache_get(c, key, 1009, &data, &len), 1);
	/* Expiry is exclusive: at `expires` the entry is gone. */
	assert_int_equal(cache_get(c, key, 1010, &data, &len), 0);
	assert_int_equal(cache_get(c, key, 1000, &data, &len), 0);
	cache_get_stats(c, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.misses, 3);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.entries, 0);
	cache_free(c);
}

static void test_replace_same_key(void **state)
{
	struct cache *c = cache_new(4);
	uint8_t key[CACHE_KEY_LEN];
	const uint8_t *data;
	size_t len;
	struct cache_stats st;

	(void)state;
	key_of(c, 1, req_of("h", "h", "cert", NULL), key);
	cache_put(c, key, 100, (const uint8_t *)"one", 3);
	cache_put(c, key, 100, (const uint8_t *)"second", 6);
	assert_int_equal(cache_get(c, key, 50, &data, &len), 1);
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
	uint8_t keys[200][CACHE_KEY_LEN];
	const uint8_t *data;
	size_t len;
	struct cache_stats st;
	char cert[16];
	int i, hits = 0;

	(void)state;
	for (i = 0; i < 200; i++) {
		snprintf(cert, sizeof(cert), "c%d", i);
		key_of(c, 1, req_of("h", "h", cert, NULL), keys[i]);
		cache_put(c, keys[i], 100, (const uint8_t *)cert, strlen(cert));
		/* Keep touching entry 0: LRU must keep it. */
		assert_int_equal(cache_get(c, keys[0], 1, &data, &len), 1);
		cache_get_stats(c, &st);
		assert_true(st.entries <= 8);
	}
	for (i = 1; i < 200; i++)
		hits += cache_get(c, keys[i], 1, &data, &len);
	cache_get_stats(c, &st);
	assert_true(hits <= 7);
	assert_true(st.evictions >= 200 - 8);
	assert_int_equal(cache_get(c, keys[0], 1, &data, &len), 1);
	assert_memory_equal(data, "c0", 2);
	cache_free(c);
}

static void test_clear_and_oversize(void **state)
{
	struct cache *c = cache_new(4);
	uint8_t key[CACHE_KEY_LEN];
	const uint8_t *data;
	size_t len;
	static uint8_t big[CACHE_MAX_VALUE + 1];

	(void)state;
	key_of(c, 1, req_of("h", "h", "cert", NULL), key);
	cache_put(c, key, 100, big, sizeof(big));
	assert_int_equal(cache_get(c, key, 1, &data, &len), 0);
	cache_put(c, key, 100, big, CACHE_MAX_VALUE);
	assert_int_equal(cache_get(c, key, 1, &data, &len), 1);
	cache_clear(c);
	assert_int_equal(cache_get(c, key, 1, &data, &len), 0);
	/* A zero expiry means "do not cache". */
	cache_put(c, key, 0, big, 10);
	assert_int_equal(cache_get(c, key, 1, &data, &len), 0);
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
		cmocka_unit_test(test_key_covers_every_input),
		cmocka_unit_test(test_hit_miss_and_expiry),
		cmocka_unit_test(test_replace_same_key),
		cmocka_unit_test(test_bounded_and_lru),
		cmocka_unit_test(test_clear_and_oversize),
		cmocka_unit_test(test_cache_until),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
