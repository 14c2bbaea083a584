/*
 * cache.c - per-worker trust-result cache: 4-way set-associative, LRU
 * inside a set. Each entry holds a copy of the key it answers (trust
 * policy id, certificate, chain; compared byte for byte on lookup)
 * followed by the stored result. Memory is allocated on
 * insert (the miss path already pays for a verification), never on a hit.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "cache.h"
#include "metrics.h"

#define CACHE_WAYS 4
#define CACHE_FIELDS 2   /* cert, chain */

struct cache_slot {
	uint64_t hash;
	uint64_t id;            /* trust policy */
	int64_t expires;        /* unix milliseconds; 0: empty slot */
	uint64_t used;          /* LRU stamp */
	uint32_t flen[CACHE_FIELDS];
	uint8_t present;        /* bit i: field i was sent (even if empty) */
	uint32_t ans_len;
	uint8_t *blob;          /* the fields, then the answer */
	uint32_t cap;
};

struct cache {
	struct cache_slot *slots;
	size_t nsets;
	size_t capacity;
	uint64_t clock;
	uint64_t seed;
	struct cache_stats st;
};

/* The key's byte fields in a fixed order. */
static void fields_of(const struct cache_key *k, const uint8_t *p[CACHE_FIELDS],
                      size_t n[CACHE_FIELDS])
{
	p[0] = k->cert;  n[0] = k->cert ? k->cert_len : 0;
	p[1] = k->chain; n[1] = k->chain ? k->chain_len : 0;
}

struct cache *cache_new(unsigned int capacity)
{
	struct cache *c;

	if (capacity == 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	/* Sets of CACHE_WAYS; the slot count is `capacity` rounded up to a
	 * whole set. */
	c->nsets = (capacity + CACHE_WAYS - 1) / CACHE_WAYS;
	c->capacity = c->nsets * CACHE_WAYS;
	c->slots = calloc(c->capacity, sizeof(*c->slots));
	/* A secret seed, so that clients cannot aim many certificates at
	 * one set to evict the others. */
	if (!c->slots || RAND_bytes((unsigned char *)&c->seed, sizeof(c->seed)) != 1) {
		cache_free(c);
		return NULL;
	}
	return c;
}

void cache_clear(struct cache *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->capacity; i++)
		c->slots[i].expires = 0;
	c->st.entries = 0;
}

void cache_free(struct cache *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; c->slots && i < c->capacity; i++)
		free(c->slots[i].blob);
	free(c->slots);
	free(c);
}

/* Multiply-xorshift mixing, 8 bytes at a time: about one instruction per
 * byte. Only distribution matters, since a hit compares the bytes. */
static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v;
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 32);
}

static uint64_t hash_bytes(uint64_t h, const uint8_t *p, size_t n)
{
	uint64_t v;

	h = mix(h, (uint64_t)n);
	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&v, p, 8);
		h = mix(h, v);
	}
	if (n > 0) {
		v = 0;
		memcpy(&v, p, n);
		h = mix(h, v);
	}
	return h;
}

uint64_t cache_hash_seeded(uint64_t seed, uint64_t id, const uint8_t *p,
                           size_t n)
{
	return hash_bytes(mix(seed, id), p, n);
}

uint64_t cache_hash(const struct cache *c, const struct cache_key *k)
{
	const uint8_t *p[CACHE_FIELDS];
	size_t n[CACHE_FIELDS];
	uint64_t h = mix(c->seed, k->id);
	int i;

	fields_of(k, p, n);
	for (i = 0; i < CACHE_FIELDS; i++)
		h = p[i] ? hash_bytes(h, p[i], n[i]) : mix(h, 0x9e3779b97f4a7c15ULL);
	return h;
}

static struct cache_slot *set_of(struct cache *c, uint64_t hash)
{
	return &c->slots[(hash % c->nsets) * CACHE_WAYS];
}

/* 1 when slot `s` holds exactly this request. */
static int slot_matches(const struct cache_slot *s, uint64_t hash,
                        const struct cache_key *k)
{
	const uint8_t *p[CACHE_FIELDS];
	size_t n[CACHE_FIELDS], off = 0;
	uint8_t present = 0;
	int i;

	if (s->expires == 0 || s->hash != hash || s->id != k->id)
		return 0;
	fields_of(k, p, n);
	for (i = 0; i < CACHE_FIELDS; i++) {
		if (p[i])
			present |= (uint8_t)(1u << i);
		if (s->flen[i] != n[i])
			return 0;
	}
	if (present != s->present)
		return 0;
	for (i = 0; i < CACHE_FIELDS; i++) {
		if (n[i] > 0 && memcmp(s->blob + off, p[i], n[i]) != 0)
			return 0;
		off += n[i];
	}
	return 1;
}

int cache_get(struct cache *c, uint64_t hash, const struct cache_key *k,
              int64_t now_ms, const uint8_t **data, size_t *len)
{
	struct cache_slot *s = set_of(c, hash);
	int i;

	for (i = 0; i < CACHE_WAYS; i++) {
		if (!slot_matches(&s[i], hash, k))
			continue;
		if (now_ms >= s[i].expires) {
			s[i].expires = 0;
			c->st.entries--;
			c->st.expired++;
			break;
		}
		s[i].used = ++c->clock;
		*data = s[i].blob + (s[i].cap - s[i].ans_len);
		*len = s[i].ans_len;
		c->st.hits++;
		return 1;
	}
	c->st.misses++;
	return 0;
}

void cache_put(struct cache *c, uint64_t hash, const struct cache_key *k,
               int64_t expires, const uint8_t *data, size_t len)
{
	struct cache_slot *s = set_of(c, hash), *victim = NULL;
	const uint8_t *p[CACHE_FIELDS];
	size_t n[CACHE_FIELDS], total = 0, off = 0;
	int i;

	fields_of(k, p, n);
	for (i = 0; i < CACHE_FIELDS; i++)
		total += n[i];
	if (len > CACHE_MAX_VALUE || total > CACHE_MAX_REQUEST || expires <= 0)
		return;
	/* Same request: replace in place. Else an empty slot, else the
	 * least recently used one. */
	for (i = 0; i < CACHE_WAYS && !victim; i++)
		if (slot_matches(&s[i], hash, k))
			victim = &s[i];
	for (i = 0; i < CACHE_WAYS && !victim; i++)
		if (s[i].expires == 0)
			victim = &s[i];
	if (!victim) {
		victim = &s[0];
		for (i = 1; i < CACHE_WAYS; i++)
			if (s[i].used < victim->used)
				victim = &s[i];
		c->st.evictions++;
		metrics_inc(METRICS_CACHE_EVICTIONS);
	}
	if (victim->expires != 0) {
		victim->expires = 0;
		c->st.entries--;
	}
	/* The answer sits at the end of the blob so that a hit finds it
	 * from cap - ans_len; the blob is sized exactly once reused. */
	if (victim->cap != total + len) {
		uint8_t *nb = realloc(victim->blob, total + len);

		if (!nb)
			return;
		victim->blob = nb;
		victim->cap = (uint32_t)(total + len);
	}
	victim->present = 0;
	for (i = 0; i < CACHE_FIELDS; i++) {
		if (p[i])
			victim->present |= (uint8_t)(1u << i);
		victim->flen[i] = (uint32_t)n[i];
		if (n[i] > 0)
			memcpy(victim->blob + off, p[i], n[i]);
		off += n[i];
	}
	memcpy(victim->blob + off, data, len);
	victim->ans_len = (uint32_t)len;
	victim->hash = hash;
	victim->id = k->id;
	victim->expires = expires;
	victim->used = ++c->clock;
	c->st.inserts++;
	c->st.entries++;
}

void cache_get_stats(const struct cache *c, struct cache_stats *st)
{
	if (!c) {
		memset(st, 0, sizeof(*st));
		return;
	}
	*st = c->st;
}
