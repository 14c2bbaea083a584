/*
 * cache.c - per-worker verdict cache: 4-way set-associative, LRU inside a
 * set, values malloc'd on insert (the miss path already pays for a
 * certificate verification) and never on a hit.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "cache.h"

#define CACHE_WAYS 4

struct cache_slot {
	uint8_t key[CACHE_KEY_LEN];
	int64_t expires;        /* 0: empty slot */
	uint64_t used;          /* LRU stamp */
	uint8_t *data;
	uint32_t len, cap;
};

struct cache {
	struct cache_slot *slots;
	size_t nsets;
	size_t capacity;
	uint64_t clock;
	EVP_MD *md;
	EVP_MD_CTX *mdctx;
	struct cache_stats st;
};

struct cache *cache_new(unsigned int capacity)
{
	struct cache *c;

	if (capacity == 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	/* Sets of CACHE_WAYS; the slot count is exactly `capacity` rounded
	 * up to a whole set. */
	c->nsets = (capacity + CACHE_WAYS - 1) / CACHE_WAYS;
	c->capacity = c->nsets * CACHE_WAYS;
	c->slots = calloc(c->capacity, sizeof(*c->slots));
	/* Fetch SHA-256 once: an implicit fetch per digest costs more than
	 * hashing a certificate. */
	c->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	c->mdctx = EVP_MD_CTX_new();
	if (!c->slots || !c->md || !c->mdctx) {
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
		free(c->slots[i].data);
	free(c->slots);
	EVP_MD_free(c->md);
	EVP_MD_CTX_free(c->mdctx);
	free(c);
}

/* Hash one field with its presence and length, so that no two different
 * requests can produce the same byte stream. */
static int hash_field(EVP_MD_CTX *ctx, const void *p, size_t len)
{
	uint8_t hdr[9];
	uint64_t l = len;
	int i;

	hdr[0] = p != NULL;
	for (i = 0; i < 8; i++)
		hdr[1 + i] = (uint8_t)(l >> (8 * i));
	return EVP_DigestUpdate(ctx, hdr, sizeof(hdr)) == 1 &&
	       (len == 0 || EVP_DigestUpdate(ctx, p, len) == 1) ? 0 : -1;
}

int cache_key(struct cache *c, uint64_t gen, const struct mtls_request *req,
              uint8_t key[CACHE_KEY_LEN])
{
	uint8_t g[8];
	unsigned int outlen = 0;
	int i;

	for (i = 0; i < 8; i++)
		g[i] = (uint8_t)(gen >> (8 * i));
	if (EVP_DigestInit_ex2(c->mdctx, c->md, NULL) != 1 ||
	    EVP_DigestUpdate(c->mdctx, g, sizeof(g)) != 1 ||
	    hash_field(c->mdctx, req->host, req->host_len) != 0 ||
	    hash_field(c->mdctx, req->sni, req->sni_len) != 0 ||
	    hash_field(c->mdctx, req->cert, req->cert_len) != 0 ||
	    hash_field(c->mdctx, req->chain, req->chain_len) != 0 ||
	    EVP_DigestFinal_ex(c->mdctx, key, &outlen) != 1 ||
	    outlen != CACHE_KEY_LEN)
		return -1;
	return 0;
}

static struct cache_slot *set_of(struct cache *c, const uint8_t *key)
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));  /* the key is a digest: any bits will do */
	return &c->slots[(h % c->nsets) * CACHE_WAYS];
}

int cache_get(struct cache *c, const uint8_t key[CACHE_KEY_LEN], time_t now,
              const uint8_t **data, size_t *len)
{
	struct cache_slot *s = set_of(c, key);
	int i;

	for (i = 0; i < CACHE_WAYS; i++) {
		if (s[i].expires == 0 || memcmp(s[i].key, key, CACHE_KEY_LEN) != 0)
			continue;
		if ((int64_t)now >= s[i].expires) {
			s[i].expires = 0;
			c->st.entries--;
			c->st.expired++;
			break;
		}
		s[i].used = ++c->clock;
		*data = s[i].data;
		*len = s[i].len;
		c->st.hits++;
		return 1;
	}
	c->st.misses++;
	return 0;
}

void cache_put(struct cache *c, const uint8_t key[CACHE_KEY_LEN], time_t expires,
               const uint8_t *data, size_t len)
{
	struct cache_slot *s = set_of(c, key), *victim = NULL;
	int i;

	if (len > CACHE_MAX_VALUE || expires <= 0)
		return;
	/* Same key: replace in place. Else an empty slot, else the least
	 * recently used one. */
	for (i = 0; i < CACHE_WAYS && !victim; i++)
		if (s[i].expires != 0 && memcmp(s[i].key, key, CACHE_KEY_LEN) == 0)
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
	}
	if (victim->expires != 0) {
		victim->expires = 0;
		c->st.entries--;
	}
	if (victim->cap < len) {
		uint8_t *n = realloc(victim->data, len);

		if (!n)
			return;
		victim->data = n;
		victim->cap = (uint32_t)len;
	}
	memcpy(victim->key, key, CACHE_KEY_LEN);
	memcpy(victim->data, data, len);
	victim->len = (uint32_t)len;
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
