/*
 * cache.h - the verdict cache: a bounded, per-worker table of encoded
 * answers, so a certificate seen again on a keep-alive or HTTP/2
 * connection costs a hash and a lookup instead of a verification.
 *
 * One cache per worker thread: no locks, no sharing. The key is a SHA-256
 * over everything the verdict depends on (configuration generation, Host,
 * SNI, certificate and chain bytes), so a collision would need a SHA-256
 * collision. Entries expire at the earliest of the TTL, the certificate
 * validity bounds and the CRLs' nextUpdate (the caller computes that).
 */
#ifndef MTLS_CACHE_H
#define MTLS_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "verdict.h"

#define CACHE_WUR __attribute__((warn_unused_result))
#define CACHE_KEY_LEN 32
/* Answers larger than this are not cached (long subjects): rare, and it
 * bounds the memory an entry can take. */
#define CACHE_MAX_VALUE 2048

struct cache;

struct cache_stats {
	uint64_t hits, misses, inserts, evictions, expired;
	size_t entries;
};

/* A cache of at most `capacity` entries (0: NULL, caching disabled). */
struct cache *cache_new(unsigned int capacity);
void cache_free(struct cache *c);

/* Drop every entry (after a reload). */
void cache_clear(struct cache *c);

/* Key for one request under configuration generation `gen`. Returns 0,
 * or -1 if hashing failed (then do not use the cache). */
CACHE_WUR int cache_key(struct cache *c, uint64_t gen,
                        const struct mtls_request *req,
                        uint8_t key[CACHE_KEY_LEN]);

/* Look `key` up at time `now`. On a hit, *data and *len view the stored
 * answer (valid until the next put or clear) and 1 is returned; 0 on a
 * miss or an expired entry. */
int cache_get(struct cache *c, const uint8_t key[CACHE_KEY_LEN], time_t now,
              const uint8_t **data, size_t *len);

/* Store an answer until `expires` (unix seconds). Evicts the least
 * recently used entry of the bucket when full. Failures are silent: a
 * cache that cannot store just misses. */
void cache_put(struct cache *c, const uint8_t key[CACHE_KEY_LEN], time_t expires,
               const uint8_t *data, size_t len);

void cache_get_stats(const struct cache *c, struct cache_stats *st);

#endif /* MTLS_CACHE_H */
