/*
 * test_handler.c - NOTIFY in, ACK out, through the real configuration,
 * verification and cache: the answer is byte-identical with the cache
 * off, on a miss and on a hit, for every kind of verdict; a new
 * configuration generation never reuses an answer.
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
#include "config.h"
#include "handler.h"
#include "pki.h"
#include "spop.h"

static struct {
	char *dir;
	struct config *cfg;
	struct pki_cert *root, *inter, *valid, *expired, *server_only, *other_root, *other;
} fx;

static int group_setup(void **state)
{
	char path[512], err[CONFIG_ERR_LEN];
	FILE *f;

	(void)state;
	fx.dir = pki_tmpdir();
	fx.root = pki_make(&(struct pki_cert_opts){ .cn = "Root", .is_ca = 1 }, NULL);
	fx.inter = pki_make(&(struct pki_cert_opts){ .cn = "Inter", .is_ca = 1 }, fx.root);
	fx.valid = pki_make(&(struct pki_cert_opts){ .cn = "client", .eku = PKI_EKU_CLIENT,
	                    .san_uri = { "spiffe://example/c", NULL } }, fx.inter);
	fx.expired = pki_make(&(struct pki_cert_opts){ .cn = "old", .eku = PKI_EKU_CLIENT,
	                      .not_before = -7200, .not_after = -3600 }, fx.inter);
	fx.server_only = pki_make(&(struct pki_cert_opts){ .cn = "srv", .eku = PKI_EKU_SERVER },
	                          fx.inter);
	fx.other_root = pki_make(&(struct pki_cert_opts){ .cn = "Other", .is_ca = 1 }, NULL);
	fx.other = pki_make(&(struct pki_cert_opts){ .cn = "intruder", .eku = PKI_EKU_CLIENT },
	                    fx.other_root);
	snprintf(path, sizeof(path), "%s/a.pem", fx.dir);
	pki_write_pem(path, (const struct pki_cert *[]){ fx.root }, 1);
	snprintf(path, sizeof(path), "%s/mtls.conf", fx.dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("[ca a]\nfile = a.pem\n"
	      "[host enforce.example]\nca = a\nmode = enforce\n"
	      "[host log.example]\nca = a\nmode = log\n"
	      "[host *.optional.example]\nca = a\nmode = optional\n"
	      "[host off.example]\nmode = off\n", f);
	fclose(f);
	if (config_load(path, &fx.cfg, err, sizeof(err)) != 0)
		fail_msg("config: %s", err);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	config_free(fx.cfg);
	pki_free(fx.root); pki_free(fx.inter); pki_free(fx.valid); pki_free(fx.expired);
	pki_free(fx.server_only); pki_free(fx.other_root); pki_free(fx.other);
	pki_rmdir(fx.dir);
	return 0;
}

/* A NOTIFY frame's header as spop_frame_decode gives it, around one
 * message named `name` built into `buf`. */
static struct spop_frame notify_msg(uint8_t *buf, size_t room, const char *name,
                                    const struct pki_cert *leaf, int with_chain,
                                    const char *sni, const char *host)
{
	struct spop_wr w;
	struct spop_frame f;
	struct spop_data d;
	uint8_t *der = NULL, *chain = NULL;
	size_t len = 0, clen = 0;

	spop_wr_init(&w, buf, room);
	spop_put_bytes(&w, name, strlen(name));
	spop_put_u8(&w, 4);
	if (leaf) {
		der = pki_der(leaf, &len);
		d = spop_bin(der, len);
	} else {
		d = spop_null();
	}
	spop_put_kv(&w, "cert", &d);
	if (with_chain) {
		chain = pki_chain_der((const struct pki_cert *[]){ fx.inter }, 1, &clen);
		d = spop_bin(chain, clen);
	} else {
		d = spop_null();
	}
	spop_put_kv(&w, "chain", &d);
	d = sni ? spop_cstr(sni) : spop_null();
	spop_put_kv(&w, "sni", &d);
	d = host ? spop_cstr(host) : spop_null();
	spop_put_kv(&w, "host", &d);
	assert_false(w.err);
	free(der);
	free(chain);
	memset(&f, 0, sizeof(f));
	f.type = SPOP_FRAME_NOTIFY;
	f.flags = SPOP_FLAG_FIN;
	f.stream_id = 7;
	f.frame_id = 9;
	f.payload = buf;
	f.payload_len = (size_t)(w.p - buf);
	return f;
}

static struct spop_frame notify(uint8_t *buf, size_t room, const struct pki_cert *leaf,
                                int with_chain, const char *sni, const char *host)
{
	return notify_msg(buf, room, "check-client-cert", leaf, with_chain, sni, host);
}

static size_t ack(const struct handler_env *env, const struct spop_frame *f,
                  uint8_t *out, size_t room)
{
	struct spop_wr w;
	unsigned int n;

	spop_wr_init(&w, out, room);
	assert_int_equal(handler_notify(env, f, SPOP_DEFAULT_FRAME_SIZE, &w, &n), 0);
	assert_int_equal(n, 1);
	return (size_t)(w.p - out);
}

/* The value of `result` in an ACK, for readable failures. */
static const char *result_of(const uint8_t *ackbuf, size_t len)
{
	static char res[32];
	const uint8_t *p = ackbuf, *end = ackbuf + len;
	struct spop_frame fr;

	assert_int_equal(spop_frame_decode(&p, end, SPOP_DEFAULT_FRAME_SIZE, &fr), SPOP_RC_OK);
	p = fr.payload;
	end = fr.payload + fr.payload_len;
	while (p < end) {
		const uint8_t *name;
		size_t nlen;
		struct spop_data d;

		p += 3;
		assert_int_equal(spop_bytes_decode(&p, end, &name, &nlen), SPOP_RC_OK);
		assert_int_equal(spop_data_decode(&p, end, &d), SPOP_RC_OK);
		if (nlen == 6 && memcmp(name, "result", 6) == 0) {
			snprintf(res, sizeof(res), "%.*s", (int)d.u.buf.len,
			         (const char *)d.u.buf.ptr);
			return res;
		}
	}
	return "";
}

static void test_cache_does_not_change_answers(void **state)
{
	static const struct {
		int leaf;      /* 0 none, 1 valid, 2 expired, 3 server-only, 4 other CA */
		int chain;
		const char *sni, *host, *result;
	} cases[] = {
		{ 1, 1, "enforce.example", "enforce.example", "ok" },
		{ 1, 0, "enforce.example", "enforce.example:443", "untrusted" }, /* root only in CA */
		{ 2, 1, "enforce.example", "enforce.example", "expired" },
		{ 3, 1, "enforce.example", "enforce.example", "bad_purpose" },
		{ 4, 0, "enforce.example", "enforce.example", "untrusted" },
		{ 0, 0, "enforce.example", "enforce.example", "no_cert" },
		{ 1, 1, NULL, "enforce.example", "host_mismatch" },
		{ 1, 1, "off.example", "enforce.example", "host_mismatch" },
		{ 2, 1, "log.example", "log.example", "expired" },
		{ 0, 0, "a.optional.example", "a.optional.example", "no_cert" },
		/* An HTTP request must carry a Host: without one it is refused,
		 * never judged by the SNI alone. */
		{ 1, 1, "a.optional.example", NULL, "host_mismatch" },
		{ 1, 1, "a.optional.example", "", "host_mismatch" },
		{ 1, 1, "a.optional.example", "a.optional.example, x", "host_mismatch" },
		{ 1, 1, "off.example", "off.example", "no_policy" },
		{ 1, 1, "unknown.example", "unknown.example", "no_policy" },
	};
	const struct pki_cert *leaves[] = { NULL, fx.valid, fx.expired, fx.server_only, fx.other };
	struct cache *cache = cache_new(64);
	struct handler_env off = { .cfg = fx.cfg, .gen = 1, .cache_ttl = 60 };
	struct handler_env on = { .cfg = fx.cfg, .gen = 1, .cache = cache, .cache_ttl = 60 };
	static uint8_t in[16384], a0[16384], a1[16384], a2[16384];
	struct cache_stats st;
	size_t i, l0, l1, l2;

	(void)state;
	assert_non_null(cache);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spop_frame f = notify(in, sizeof(in), leaves[cases[i].leaf],
		                             cases[i].chain, cases[i].sni, cases[i].host);

		l0 = ack(&off, &f, a0, sizeof(a0));
		l1 = ack(&on, &f, a1, sizeof(a1));   /* miss, stored */
		l2 = ack(&on, &f, a2, sizeof(a2));   /* hit */
		if (strcmp(result_of(a0, l0), cases[i].result) != 0)
			fail_msg("case %zu: result %s, want %s", i, result_of(a0, l0),
			         cases[i].result);
		assert_int_equal(l0, l1);
		assert_int_equal(l0, l2);
		assert_memory_equal(a0, a1, l0);
		assert_memory_equal(a0, a2, l0);
	}
	cache_get_stats(cache, &st);
	assert_int_equal(st.hits, sizeof(cases) / sizeof(cases[0]));

	/* A reload (new generation) evaluates again, even for a known request. */
	{
		struct spop_frame f = notify(in, sizeof(in), fx.valid, 1, "enforce.example",
		                             "enforce.example");
		uint64_t hits = st.hits;

		on.gen = 2;
		l1 = ack(&on, &f, a1, sizeof(a1));
		cache_get_stats(cache, &st);
		assert_int_equal(st.hits, hits);
		assert_string_equal(result_of(a1, l1), "ok");
	}
	cache_free(cache);
}

/* check-client-cert-sni (TCP) chooses by SNI alone; the same bytes asked
 * as check-client-cert (HTTP, no Host) are refused. The message kind is
 * part of the cache key, so neither answer is ever served for the other,
 * whichever comes first. */
static void test_sni_message(void **state)
{
	static uint8_t in[16384], a[16384];
	struct cache *cache = cache_new(64);
	struct handler_env env = { .cfg = fx.cfg, .gen = 1, .cache = cache, .cache_ttl = 60 };
	struct spop_frame f;
	struct spop_wr w;
	unsigned int n;
	size_t l;

	(void)state;
	assert_non_null(cache);
	for (int round = 0; round < 2; round++) {
		f = notify_msg(in, sizeof(in), "check-client-cert-sni", fx.valid, 1,
		               "enforce.example", NULL);
		l = ack(&env, &f, a, sizeof(a));
		assert_string_equal(result_of(a, l), "ok");
		f = notify(in, sizeof(in), fx.valid, 1, "enforce.example", NULL);
		l = ack(&env, &f, a, sizeof(a));
		assert_string_equal(result_of(a, l), "host_mismatch");
		/* A host argument does not change the SNI message's choice. */
		f = notify_msg(in, sizeof(in), "check-client-cert-sni", fx.valid, 1,
		               "enforce.example", "off.example");
		l = ack(&env, &f, a, sizeof(a));
		assert_string_equal(result_of(a, l), "ok");
		/* Without an SNI only the default could apply: refused. */
		f = notify_msg(in, sizeof(in), "check-client-cert-sni", fx.valid, 1,
		               NULL, NULL);
		spop_wr_init(&w, a, sizeof(a));
		assert_int_equal(handler_notify(&env, &f, SPOP_DEFAULT_FRAME_SIZE, &w, &n), 0);
		assert_int_equal(n, 1);
	}
	/* A name that only starts like ours is not ours. */
	f = notify_msg(in, sizeof(in), "check-client-cert-snix", fx.valid, 1,
	               "enforce.example", NULL);
	spop_wr_init(&w, a, sizeof(a));
	assert_int_equal(handler_notify(&env, &f, SPOP_DEFAULT_FRAME_SIZE, &w, &n), 0);
	assert_int_equal(n, 0);
	cache_free(cache);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache_does_not_change_answers),
		cmocka_unit_test(test_sni_message),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
