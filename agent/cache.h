/*
 * cache.h - the trust-result cache: a bounded, per-worker table of trust
 * results, so a certificate seen again costs a hash and a comparison
 * instead of a verification.
 *
 * The key is what the trust decision depends on and nothing else: the
 * trust policy (by its process-unique id: a policy shared by many hosts,
 * or kept across a reload, keeps its entries), the certificate and the
 * chain. Host, SNI and message kind are not part of it, so no spelling of
 * a name can cause a second verification. One cache per worker thread:
 * no locks. An entry is found by a fast hash seeded at random per cache
 * and is only a hit when the key bytes are exactly equal: a collision can
 * cost a miss, never a wrong result. Entries expire at the earliest of
 * the TTL, the certificates' validity bounds and the CRLs' nextUpdate
 * (the caller computes that), to the millisecond.
 */
#ifndef MTLS_CACHE_H
#define MTLS_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Answers larger than this are not cached. It bounds the memory an entry
 * can take, and holds any encoded trust result (handler.c checks it at
 * build time): subjects, SAN lists and a verified chain of 16 KiB. An
 * entry is sized to what it holds, typically under 3 KiB. */
#define CACHE_MAX_VALUE 24576
/* Keys (certificate + chain) larger than this are not cached: an entry
 * keeps a copy to compare with. */
#define CACHE_MAX_REQUEST 16384

struct cache;

struct cache_stats {
	uint64_t hits, misses, inserts, evictions, expired;
	size_t entries;
};

/* A cache of at most `capacity` entries (0: NULL, caching disabled). */
struct cache *cache_new(unsigned int capacity);
void cache_free(struct cache *c);

/* Drop every entry. */
void cache_clear(struct cache *c);

struct cache_key {
	uint64_t id;                            /* trust policy id */
	const uint8_t *cert; size_t cert_len;
	const uint8_t *chain; size_t chain_len;
};

/* The hash of a key, to pass to cache_get() and cache_put(). */
uint64_t cache_hash(const struct cache *c, const struct cache_key *k);

/* The same seeded hash over an id and one byte string, for other tables
 * keyed by what the cache is keyed by (vpool.c's flights). Only
 * distribution matters: lookups compare the bytes. */
uint64_t cache_hash_seeded(uint64_t seed, uint64_t id, const uint8_t *p,
                           size_t n);

/* Look up the value stored for exactly this key at `now_ms` (unix
 * milliseconds). On a hit, *data and *len view the stored value (valid
 * until the next put or clear) and 1 is returned; 0 on a miss or an
 * expired entry. */
int cache_get(struct cache *c, uint64_t hash, const struct cache_key *k,
              int64_t now_ms, const uint8_t **data, size_t *len);

/* Store a value until `expires` (unix milliseconds). Evicts the least
 * recently used entry of the set when full. Failures are silent: a cache
 * that cannot store just misses. */
void cache_put(struct cache *c, uint64_t hash, const struct cache_key *k,
               int64_t expires, const uint8_t *data, size_t len);

void cache_get_stats(const struct cache *c, struct cache_stats *st);

#endif /* MTLS_CACHE_H */
