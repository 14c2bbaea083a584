/*
 * fuzz_etcd.c - the etcd client's decoders (etcd.c) on arbitrary bytes,
 * as a hostile or broken etcd gateway would send them: the first byte
 * picks the framer's chunk size and a small message limit, then the
 * stream goes through etcd_framer_feed in chunks and every framed
 * message through etcd_parse_watch; the whole input also goes through
 * etcd_parse_watch and etcd_parse_range. Nothing may crash or leak, and
 * what the decoders accept must be consistent (counts and lengths).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_watch(const char *p, size_t n)
{
	struct etcd_watch_msg m;
	char err[256];
	size_t i;

	if (etcd_parse_watch(p, n, &m, err, sizeof(err)) != 0) {
		if (m.ev != NULL || m.n_ev != 0 || err[0] == '\0')
			abort();
		return;
	}
	for (i = 0; i < m.n_ev; i++) {
		const struct etcd_kv *kv = &m.ev[i].kv;

		if (kv->key == NULL || kv->key_len == 0 || kv->key[kv->key_len] != '\0' ||
		    kv->value == NULL || kv->value[kv->value_len] != '\0')
			abort();
	}
	etcd_watch_msg_free(&m);
}

static int on_msg(void *ctx, const char *json, size_t len)
{
	size_t *count = ctx;

	/* A framed message is one balanced object. */
	if (len < 2 || json[0] != '{' || json[len - 1] != '}')
		abort();
	check_watch(json, len);
	(*count)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct etcd_framer f = { 0 };
	struct etcd_kv *kvs;
	const char *p;
	size_t n, chunk, off, count = 0, nkv;
	int64_t rev;
	int more;
	char err[256];

	if (size == 0)
		return 0;
	chunk = (size_t)(data[0] & 0x1f) + 1;
	f.max = data[0] & 0x80 ? 64 : 0;
	p = (const char *)data + 1;
	n = size - 1;
	for (off = 0; off < n; off += chunk) {
		size_t len = n - off < chunk ? n - off : chunk;

		if (etcd_framer_feed(&f, p + off, len, on_msg, &count) != 0)
			break;
	}
	etcd_framer_free(&f);

	check_watch(p, n);
	if (etcd_parse_range(p, n, &rev, &kvs, &nkv, &more, err, sizeof(err)) == 0) {
		if (rev <= 0 || (nkv > 0) != (kvs != NULL))
			abort();
		etcd_kvs_free(kvs, nkv);
	} else if (kvs != NULL || nkv != 0) {
		abort();
	}
	return 0;
}
