/*
 * cache.h - the verdict cache: a bounded, per-worker table of encoded
 * answers, so a certificate seen again on a keep-alive or HTTP/2
 * connection costs a hash and a comparison instead of a verification.
 *
 * One cache per worker thread: no locks, no sharing. An entry is found by
 * a fast hash seeded at random per cache, and is only a hit when the
 * request bytes it was stored for (Host, SNI, certificate, chain) are
 * exactly equal, under the same configuration generation: a hash
 * collision can cost a miss, never a wrong verdict. Entries expire at the
 * earliest of the TTL, the certificate validity bounds and the CRLs'
 * nextUpdate (the caller computes that).
 */
#ifndef MTLS_CACHE_H
#define MTLS_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "verdict.h"

/* Answers larger than this are not cached (long subjects): rare, and it
 * bounds the memory an entry can take. */
#define CACHE_MAX_VALUE 2048
/* Requests (Host + SNI + certificate + chain) larger than this are not
 * cached: an entry keeps a copy to compare with. */
#define CACHE_MAX_REQUEST 16384

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

/* The hash of a request under configuration generation `gen`, to pass to
 * cache_get() and cache_put(). */
uint64_t cache_hash(const struct cache *c, uint64_t gen,
                    const struct mtls_request *req);

/* Look up the answer stored for exactly this request and generation at
 * time `now`. On a hit, *data and *len view the stored answer (valid until
 * the next put or clear) and 1 is returned; 0 on a miss or an expired
 * entry. */
int cache_get(struct cache *c, uint64_t hash, uint64_t gen,
              const struct mtls_request *req, time_t now,
              const uint8_t **data, size_t *len);

/* Store an answer until `expires` (unix seconds). Evicts the least
 * recently used entry of the set when full. Failures are silent: a cache
 * that cannot store just misses. */
void cache_put(struct cache *c, uint64_t hash, uint64_t gen,
               const struct mtls_request *req, time_t expires,
               const uint8_t *data, size_t len);

void cache_get_stats(const struct cache *c, struct cache_stats *st);

#endif /* MTLS_CACHE_H */
