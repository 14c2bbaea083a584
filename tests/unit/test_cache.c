/*
 * test_cache.c - the trust-result cache: exact keys, expiry to the
 * millisecond, eviction, bounds, and the expiry the handler computes for
 * a trust result.
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

/* A key: trust policy `id`, certificate and chain (NULL: absent). */
static struct cache_key key_of(uint64_t id, const char *cert, const char *chain)
{
	struct cache_key k;

	memset(&k, 0, sizeof(k));
	k.id = id;
	if (cert) { k.cert = (const uint8_t *)cert; k.cert_len = strlen(cert); }
	if (chain) { k.chain = (const uint8_t *)chain; k.chain_len = strlen(chain); }
	return k;
}

/* Times are unix milliseconds. */
static int get(struct cache *c, struct cache_key k, int64_t now_ms,
               const uint8_t **data, size_t *len)
{
	return cache_get(c, cache_hash(c, &k), &k, now_ms, data, len);
}

static void put(struct cache *c, struct cache_key k, int64_t expires_ms,
                const char *answer, size_t len)
{
	cache_put(c, cache_hash(c, &k), &k, expires_ms, (const uint8_t *)answer, len);
}

static void test_disabled(void **state)
{
	(void)state;
	assert_null(cache_new(0));
	cache_free(NULL);
	cache_clear(NULL);
}

/* A hit needs exactly the same key: the trust policy id, the certificate
 * and the chain all count, field boundaries are not ambiguous
 * ("CERT"+"CHAIN" is not "CERTC"+"HAIN"), and a missing field differs
 * from an empty one. The same bytes at other addresses do hit. */
static void test_hit_needs_the_same_request(void **state)
{
	struct cache *c = cache_new(64);
	const uint8_t *data;
	size_t len;
	char cert[] = "CERT", chain[] = "CHAIN";
	struct cache_key variants[] = {
		key_of(1, "CERX", "CHAIN"),
		key_of(1, "CERT", "CHAIX"),
		key_of(1, "CERTC", "HAIN"),
		key_of(1, "CERT", ""),
		key_of(1, "CERT", NULL),
		key_of(1, NULL, "CHAIN"),
		key_of(1, "", "CHAIN"),
	};
	size_t i;

	(void)state;
	assert_non_null(c);
	put(c, key_of(1, cert, chain), 100000, "answer", 6);
	for (i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
		assert_int_equal(get(c, variants[i], 1, &data, &len), 0);
	/* Another trust policy: its own decision, never this one's. */
	assert_int_equal(get(c, key_of(2, cert, chain), 1, &data, &len), 0);
	/* Same bytes, other buffers: a hit. */
	assert_int_equal(get(c, key_of(1, "CERT", "CHAIN"), 1, &data, &len), 1);
	assert_int_equal(len, 6);
	assert_memory_equal(data, "answer", 6);
	cache_free(c);
}

/* Even when two keys land in the same set with the same hash (forced
 * here), the bytes decide. */
static void test_same_hash_different_request(void **state)
{
	struct cache *c = cache_new(4);
	struct cache_key a = key_of(1, "cert-a", NULL);
	struct cache_key b = key_of(1, "cert-b", NULL);
	struct cache_key a2 = key_of(2, "cert-a", NULL);
	const uint8_t *data;
	size_t len;

	(void)state;
	cache_put(c, 42, &a, 100000, (const uint8_t *)"A", 1);
	assert_int_equal(cache_get(c, 42, &b, 1, &data, &len), 0);
	assert_int_equal(cache_get(c, 42, &a2, 1, &data, &len), 0);
	assert_int_equal(cache_get(c, 42, &a, 1, &data, &len), 1);
	assert_memory_equal(data, "A", 1);
	cache_free(c);
}

static void test_hit_miss_and_expiry(void **state)
{
	struct cache *c = cache_new(16);
	struct cache_key k = key_of(1, "cert", NULL);
	const uint8_t *data;
	size_t len;
	struct cache_stats st;

	(void)state;
	assert_int_equal(get(c, k, 1000000, &data, &len), 0);
	put(c, k, 1010000, "answer", 6);
	assert_int_equal(get(c, k, 1000000, &data, &len), 1);
	assert_int_equal(len, 6);
	assert_memory_equal(data, "answer", 6);
	/* To the millisecond: one before `expires` still hits... */
	assert_int_equal(get(c, k, 1009999, &data, &len), 1);
	/* ...and expiry is exclusive: at `expires` the entry is gone. */
	assert_int_equal(get(c, k, 1010000, &data, &len), 0);
	assert_int_equal(get(c, k, 1000000, &data, &len), 0);
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
	struct cache_key k = key_of(1, "cert", NULL);
	const uint8_t *data;
	size_t len;
	struct cache_stats st;

	(void)state;
	put(c, k, 100, "one", 3);
	put(c, k, 100, "second", 6);
	assert_int_equal(get(c, k, 50, &data, &len), 1);
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
		put(c, key_of(1, certs[i], NULL), 100, certs[i], strlen(certs[i]));
		/* Keep touching entry 0: LRU must keep it. */
		assert_int_equal(get(c, key_of(1, certs[0], NULL), 1, &data, &len), 1);
		cache_get_stats(c, &st);
		assert_true(st.entries <= 8);
	}
	for (i = 1; i < 200; i++)
		hits += get(c, key_of(1, certs[i], NULL), 1, &data, &len);
	cache_get_stats(c, &st);
	assert_true(hits <= 7);
	assert_true(st.evictions >= 200 - 8);
	assert_int_equal(get(c, key_of(1, "c0", NULL), 1, &data, &len), 1);
	assert_memory_equal(data, "c0", 2);
	cache_free(c);
}

static void test_clear_and_oversize(void **state)
{
	struct cache *c = cache_new(4);
	struct cache_key k = key_of(1, "cert", NULL), big_key;
	const uint8_t *data;
	size_t len;
	/* Large enough for both limits, whichever is larger. */
	static char big[(CACHE_MAX_VALUE > CACHE_MAX_REQUEST ?
	                 CACHE_MAX_VALUE : CACHE_MAX_REQUEST) + 1];

	(void)state;
	put(c, k, 100, big, CACHE_MAX_VALUE + 1);
	assert_int_equal(get(c, k, 1, &data, &len), 0);
	put(c, k, 100, big, CACHE_MAX_VALUE);
	assert_int_equal(get(c, k, 1, &data, &len), 1);
	cache_clear(c);
	assert_int_equal(get(c, k, 1, &data, &len), 0);
	/* A zero expiry means "do not cache". */
	put(c, k, 0, "x", 1);
	assert_int_equal(get(c, k, 1, &data, &len), 0);
	/* A key too large to keep a copy of is not cached. */
	memset(big, 'A', sizeof(big));
	big_key = key_of(1, NULL, NULL);
	big_key.cert = (const uint8_t *)big;
	big_key.cert_len = CACHE_MAX_REQUEST + 1;
	put(c, big_key, 100, "x", 1);
	assert_int_equal(get(c, big_key, 1, &data, &len), 0);
	cache_free(c);
}

/* handler_cache_until() works in unix milliseconds; a result bounded by
 * a certificate's notAfter (valid_until, seconds) ends at valid_until
 * itself: OpenSSL counts a certificate as expired from the second of its
 * notAfter on. */
static void test_cache_until(void **state)
{
	struct trust_result t;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.result = RESULT_OK;
	assert_int_equal(handler_cache_until(&t, 1000000, 60000), 1060000);
	/* A certificate expiring sooner bounds the entry. */
	t.valid_until = 1030;
	assert_int_equal(handler_cache_until(&t, 1000000, 60000), 1030000);
	assert_int_equal(handler_cache_until(&t, 1029999, 60000), 1030000);
	t.valid_until = 5000;
	assert_int_equal(handler_cache_until(&t, 1000000, 60000), 1060000);
	/* Already past: not cached at all. */
	t.valid_until = 1000;
	assert_int_equal(handler_cache_until(&t, 1000000, 60000), 0);
	assert_int_equal(handler_cache_until(&t, 1000500, 60000), 0);
	t.valid_until = 0;
	assert_int_equal(handler_cache_until(&t, 1000000, 0), 0);
	/* A TTL below one second still caches, to the millisecond. */
	assert_int_equal(handler_cache_until(&t, 1000000, 500), 1000500);
	assert_int_equal(handler_cache_until(&t, 1000000, 1), 1000001);
	t.result = RESULT_INTERNAL_ERROR;
	assert_int_equal(handler_cache_until(&t, 1000000, 60000), 0);
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
