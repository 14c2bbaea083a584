/*
 * test_handler.c - NOTIFY in, ACK out, through the real configuration,
 * verification and cache: the answer is byte-identical with the cache
 * off, on a miss and on a hit, for every kind of verdict; a result is
 * reused across Host spellings, message kinds and reloads that keep the
 * trust policy, never across trust policies; an ACK too large for the
 * frame falls back to action and result.
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
#include "trust.h"

/* A 200-byte host name and a 64-byte CA name: the head variables of
 * their verdict (policy, ca) cannot fit a 256-byte frame. */
#define LONG_HOST \
	"h123456789012345678901234567890123456789012345678901234567890.h12345678901234567890" \
	"1234567890123456789012345678901234567890.h1234567890123456789012345678901234567890" \
	"1234567890123456789012.long.example"
#define LONG_CA "c123456789012345678901234567890123456789012345678901234567890123"

static struct {
	char *dir;
	char path[512];
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
	snprintf(fx.path, sizeof(fx.path), "%s/mtls.conf", fx.dir);
	f = fopen(fx.path, "w");
	assert_non_null(f);
	fputs("[ca a]\nfile = a.pem\n"
	      "[ca " LONG_CA "]\nfile = a.pem\n"
	      "[host enforce.example]\nca = a\nmode = enforce\n"
	      "[host api.example.com]\nca = a\nmode = enforce\n"
	      "[host log.example]\nca = a\nmode = log\n"
	      "[host *.optional.example]\nca = a\nmode = optional\n"
	      "[host off.example]\nmode = off\n"
	      "[host " LONG_HOST "]\nca = " LONG_CA "\nmode = enforce\n", f);
	fclose(f);
	assert_int_equal(strlen(LONG_HOST), 200);
	assert_int_equal(strlen(LONG_CA), 64);
	if (config_load(fx.path, &fx.cfg, err, sizeof(err)) != 0)
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
 * message named `name` built into `buf` from raw argument bytes (NULL:
 * a NULL argument). */
static struct spop_frame notify_raw(uint8_t *buf, size_t room, const char *name,
                                    const uint8_t *der, size_t len,
                                    const uint8_t *chain, size_t clen,
                                    const char *sni, const char *host)
{
	struct spop_wr w;
	struct spop_frame f;
	struct spop_data d;

	spop_wr_init(&w, buf, room);
	spop_put_bytes(&w, name, strlen(name));
	spop_put_u8(&w, 4);
	d = der ? spop_bin(der, len) : spop_null();
	spop_put_kv(&w, "cert", &d);
	d = chain ? spop_bin(chain, clen) : spop_null();
	spop_put_kv(&w, "chain", &d);
	d = sni ? spop_cstr(sni) : spop_null();
	spop_put_kv(&w, "sni", &d);
	d = host ? spop_cstr(host) : spop_null();
	spop_put_kv(&w, "host", &d);
	assert_false(w.err);
	memset(&f, 0, sizeof(f));
	f.type = SPOP_FRAME_NOTIFY;
	f.flags = SPOP_FLAG_FIN;
	f.stream_id = 7;
	f.frame_id = 9;
	f.payload = buf;
	f.payload_len = (size_t)(w.p - buf);
	return f;
}

/* The same with a fixture leaf and, with_chain, fx.inter as the chain. */
static struct spop_frame notify_msg(uint8_t *buf, size_t room, const char *name,
                                    const struct pki_cert *leaf, int with_chain,
                                    const char *sni, const char *host)
{
	struct spop_frame f;
	uint8_t *der = NULL, *chain = NULL;
	size_t len = 0, clen = 0;

	if (leaf)
		der = pki_der(leaf, &len);
	if (with_chain)
		chain = pki_chain_der((const struct pki_cert *[]){ fx.inter }, 1, &clen);
	f = notify_raw(buf, room, name, der, len, chain, clen, sni, host);
	free(der);
	free(chain);
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
	assert_int_equal(handler_notify(env, f, SPOP_DEFAULT_FRAME_SIZE, &w, &n), HANDLER_ACK);
	assert_int_equal(n, 1);
	return (size_t)(w.p - out);
}

/* Find variable `want` in an ACK: 1 and its value in *d, or 0. */
static int ack_find(const uint8_t *ackbuf, size_t len, const char *want,
                    struct spop_data *d)
{
	const uint8_t *p = ackbuf, *end = ackbuf + len;
	struct spop_frame fr;

	assert_int_equal(spop_frame_decode(&p, end, SPOP_DEFAULT_FRAME_SIZE, &fr), SPOP_RC_OK);
	p = fr.payload;
	end = fr.payload + fr.payload_len;
	while (p < end) {
		const uint8_t *name;
		size_t nlen;

		p += 3;
		assert_int_equal(spop_bytes_decode(&p, end, &name, &nlen), SPOP_RC_OK);
		assert_int_equal(spop_data_decode(&p, end, d), SPOP_RC_OK);
		if (nlen == strlen(want) && memcmp(name, want, nlen) == 0)
			return 1;
	}
	return 0;
}

/* The value of `result` in an ACK, for readable failures. */
static const char *result_of(const uint8_t *ackbuf, size_t len)
{
	static char res[32];
	struct spop_data d;

	if (!ack_find(ackbuf, len, "result", &d))
		return "";
	snprintf(res, sizeof(res), "%.*s", (int)d.u.buf.len, (const char *)d.u.buf.ptr);
	return res;
}

/* The value of integer variable `want` in an ACK; -1 when absent. */
static int64_t ack_int(const uint8_t *ackbuf, size_t len, const char *want)
{
	struct spop_data d;

	return ack_find(ackbuf, len, want, &d) ? d.u.sint : -1;
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
	struct handler_env off = { .cfg = fx.cfg, .gen = 1, .cache_ttl_ms = 60000 };
	struct handler_env on = { .cfg = fx.cfg, .gen = 1, .cache = cache,
	                          .cache_ttl_ms = 60000 };
	static uint8_t in[16384], a0[16384], a1[16384], a2[16384];
	struct cache_stats st;
	size_t i, l0, l1, l2;

	(void)state;
	assert_non_null(cache);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spop_frame f = notify(in, sizeof(in), leaves[cases[i].leaf],
		                             cases[i].chain, cases[i].sni, cases[i].host);

		uint64_t before;

		l0 = ack(&off, &f, a0, sizeof(a0));
		l1 = ack(&on, &f, a1, sizeof(a1));   /* miss, stored */
		before = trust_verifications();
		l2 = ack(&on, &f, a2, sizeof(a2));   /* hit */
		/* Asked again, nothing is verified again. */
		assert_int_equal(trust_verifications(), before);
		if (strcmp(result_of(a0, l0), cases[i].result) != 0)
			fail_msg("case %zu: result %s, want %s", i, result_of(a0, l0),
			         cases[i].result);
		assert_int_equal(l0, l1);
		assert_int_equal(l0, l2);
		assert_memory_equal(a0, a1, l0);
		assert_memory_equal(a0, a2, l0);
	}
	/* Only trust results are cached: the six cases that reach a trust
	 * policy (ok, untrusted twice, expired, bad_purpose, and log.example's
	 * expired) hit on their second ask; log.example shares
	 * enforce.example's trust policy (same CA, same settings), so its
	 * first ask already hits the entry enforce.example's expired case
	 * left. Verdicts decided by the name rules alone (no_cert,
	 * host_mismatch, no_policy) never reach the cache. */
	cache_get_stats(cache, &st);
	assert_int_equal(st.hits, 7);
	assert_int_equal(st.misses, 5);

	/* A generation whose trust policies are new (loaded afresh, nothing
	 * reused) evaluates again, even for a known request: entries are
	 * keyed by trust policy, never by generation number alone. */
	{
		struct spop_frame f = notify(in, sizeof(in), fx.valid, 1, "enforce.example",
		                             "enforce.example");
		uint64_t hits = st.hits, before = trust_verifications();
		struct config *fresh;
		char err[CONFIG_ERR_LEN];

		if (config_load(fx.path, &fresh, err, sizeof(err)) != 0)
			fail_msg("config: %s", err);
		assert_true(fresh->hosts[0]->trust->id != fx.cfg->hosts[0]->trust->id);
		on.cfg = fresh;
		on.gen = 2;
		l1 = ack(&on, &f, a1, sizeof(a1));
		cache_get_stats(cache, &st);
		assert_int_equal(st.hits, hits);
		assert_int_equal(trust_verifications(), before + 1);
		assert_string_equal(result_of(a1, l1), "ok");
		config_free(fresh);
	}
	cache_free(cache);
}

/* check-client-cert-sni (TCP) chooses by SNI alone; the same bytes asked
 * as check-client-cert (HTTP, no Host) are refused. The cache holds only
 * trust results, and the name rules run before it on every request, so
 * neither answer is ever served for the other, whichever comes first. */
static void test_sni_message(void **state)
{
	static uint8_t in[16384], a[16384];
	struct cache *cache = cache_new(64);
	struct handler_env env = { .cfg = fx.cfg, .gen = 1, .cache = cache,
	                           .cache_ttl_ms = 60000 };
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
		assert_int_equal(handler_notify(&env, &f, SPOP_DEFAULT_FRAME_SIZE, &w, &n), HANDLER_ACK);
		assert_int_equal(n, 1);
	}
	/* A name that only starts like ours is not ours. */
	f = notify_msg(in, sizeof(in), "check-client-cert-snix", fx.valid, 1,
	               "enforce.example", NULL);
	spop_wr_init(&w, a, sizeof(a));
	assert_int_equal(handler_notify(&env, &f, SPOP_DEFAULT_FRAME_SIZE, &w, &n), HANDLER_ACK);
	assert_int_equal(n, 0);
	cache_free(cache);
}

/* An environment over the fixture's configuration with a cache of its
 * own (free env.cache when done). */
static struct handler_env cached_env(unsigned int ttl_ms)
{
	struct handler_env env = { .cfg = fx.cfg, .gen = 1, .cache = cache_new(64),
	                           .cache_ttl_ms = ttl_ms };

	assert_non_null(env.cache);
	return env;
}

/* The number of full verifications answering `f` costs through `env`. */
static uint64_t verifications_for(const struct handler_env *env,
                                  const struct spop_frame *f, const char *want)
{
	static uint8_t a[16384];
	uint64_t before = trust_verifications();
	size_t l = ack(env, f, a, sizeof(a));

	assert_string_equal(result_of(a, l), want);
	return trust_verifications() - before;
}

/* 65,536 spellings of one Host (case, every port) with one certificate
 * cost one verification: Host is not part of the cache key, the trust
 * policy is. (Guards the old key of host + SNI + certificate, which a
 * client could defeat with ports.) */
static void test_host_spellings_share_one_verification(void **state)
{
	static uint8_t in[16384], a[16384];
	struct handler_env env = cached_env(60000);
	struct spop_frame f;
	uint64_t before;
	char host[64];
	size_t l;

	(void)state;
	before = trust_verifications();
	f = notify(in, sizeof(in), fx.valid, 1, "api.example.com", "API.example.com");
	l = ack(&env, &f, a, sizeof(a));
	assert_string_equal(result_of(a, l), "ok");
	for (unsigned int port = 1; port <= 65535; port++) {
		snprintf(host, sizeof(host), "api.example.com:%u", port);
		f = notify(in, sizeof(in), fx.valid, 1, "api.example.com", host);
		l = ack(&env, &f, a, sizeof(a));
		if (strcmp(result_of(a, l), "ok") != 0)
			fail_msg("host %s: %s", host, result_of(a, l));
	}
	assert_int_equal(trust_verifications() - before, 1);
	cache_free(env.cache);
}

/* The same certificate for the same host as an HTTP request and as a
 * TCP connection: one trust policy, one verification. */
static void test_message_kinds_share_one_verification(void **state)
{
	static uint8_t in[16384];
	struct handler_env env = cached_env(60000);
	struct spop_frame f;

	(void)state;
	f = notify(in, sizeof(in), fx.valid, 1, "api.example.com", "api.example.com");
	assert_int_equal(verifications_for(&env, &f, "ok"), 1);
	f = notify_msg(in, sizeof(in), "check-client-cert-sni", fx.valid, 1,
	               "api.example.com", NULL);
	assert_int_equal(verifications_for(&env, &f, "ok"), 0);
	/* And the other way round, on a fresh cache. */
	cache_clear(env.cache);
	assert_int_equal(verifications_for(&env, &f, "ok"), 1);
	f = notify(in, sizeof(in), fx.valid, 1, "api.example.com", "api.example.com");
	assert_int_equal(verifications_for(&env, &f, "ok"), 0);
	cache_free(env.cache);
}

/* cache-ttl below one second still caches (the TTL is in milliseconds;
 * it used to be whole seconds, so 500ms meant 0: no cache). */
static void test_sub_second_ttl_caches(void **state)
{
	static uint8_t in[16384];
	struct handler_env env = cached_env(500);
	struct spop_frame f;

	(void)state;
	f = notify(in, sizeof(in), fx.valid, 1, "enforce.example", "enforce.example");
	assert_int_equal(verifications_for(&env, &f, "ok"), 1);
	assert_int_equal(verifications_for(&env, &f, "ok"), 0);
	cache_free(env.cache);
}

/* A reload that changes nothing keeps every trust policy, and with it
 * its ids: the cache entries made before the reload still answer. */
static void test_reload_keeps_cache_entries(void **state)
{
	static uint8_t in[16384];
	struct handler_env env = cached_env(60000);
	struct spop_frame f;
	struct config *next;
	char err[CONFIG_ERR_LEN];
	size_t i;

	(void)state;
	f = notify(in, sizeof(in), fx.valid, 1, "enforce.example", "enforce.example");
	assert_int_equal(verifications_for(&env, &f, "ok"), 1);
	if (config_reload(fx.path, fx.cfg, &next, err, sizeof(err)) != 0)
		fail_msg("reload: %s", err);
	assert_int_equal(next->n_trusts, fx.cfg->n_trusts);
	for (i = 0; i < next->n_trusts; i++)
		assert_ptr_equal(next->trusts[i], fx.cfg->trusts[i]);
	env.cfg = next;
	env.gen = 2;
	assert_int_equal(verifications_for(&env, &f, "ok"), 0);
	config_free(next);
	cache_free(env.cache);
}

/* Decode the ACK in `buf` (max frame `max`) and collect its variable
 * names, comma-separated, into names. */
static void ack_vars(const uint8_t *buf, size_t len, uint32_t max, char *names,
                     size_t room)
{
	const uint8_t *p = buf, *end = buf + len;
	struct spop_frame fr;
	size_t used = 0;

	names[0] = '\0';
	assert_int_equal(spop_frame_decode(&p, end, max, &fr), SPOP_RC_OK);
	assert_int_equal(fr.type, SPOP_FRAME_ACK);
	assert_int_equal(fr.stream_id, 7);
	assert_int_equal(fr.frame_id, 9);
	assert_int_equal(p, end);
	p = fr.payload;
	end = fr.payload + fr.payload_len;
	while (p < end) {
		const uint8_t *name;
		size_t nlen;
		struct spop_data d;
		int n;

		assert_true(end - p >= 3);
		assert_int_equal(p[0], SPOP_ACT_SET_VAR);
		p += 3;
		assert_int_equal(spop_bytes_decode(&p, end, &name, &nlen), SPOP_RC_OK);
		assert_int_equal(spop_data_decode(&p, end, &d), SPOP_RC_OK);
		n = snprintf(names + used, room - used, "%s%.*s", used ? "," : "",
		             (int)nlen, (const char *)name);
		assert_true(n > 0 && (size_t)n < room - used);
		used += (size_t)n;
	}
}

/* With a 256-byte frame, a verdict whose policy and CA names alone
 * exceed it is still answered: action and result only (it used to be
 * -1, "malformed NOTIFY", and the connection was dropped). */
static void test_ack_too_big_keeps_action_and_result(void **state)
{
	static uint8_t in[16384], a[16384];
	struct handler_env env = { .cfg = fx.cfg, .gen = 1 };
	struct spop_frame f;
	struct spop_wr w;
	unsigned int n;
	char names[256];
	size_t l;

	(void)state;
	/* A valid certificate: ok, with the CA named. */
	f = notify(in, sizeof(in), fx.valid, 1, LONG_HOST, LONG_HOST);
	spop_wr_init(&w, a, sizeof(a));
	assert_int_equal(handler_notify(&env, &f, 256, &w, &n), HANDLER_ACK);
	assert_int_equal(n, 1);
	l = (size_t)(w.p - a);
	assert_true(l <= 256 + SPOP_LEN_PREFIX);
	ack_vars(a, l, 256, names, sizeof(names));
	assert_string_equal(names, "action,result");
	assert_string_equal(result_of(a, l), "ok");
	/* No certificate: the policy name alone is too long. */
	f = notify(in, sizeof(in), NULL, 0, LONG_HOST, LONG_HOST);
	spop_wr_init(&w, a, sizeof(a));
	assert_int_equal(handler_notify(&env, &f, 256, &w, &n), HANDLER_ACK);
	l = (size_t)(w.p - a);
	ack_vars(a, l, 256, names, sizeof(names));
	assert_string_equal(names, "action,result");
	assert_string_equal(result_of(a, l), "no_cert");
	/* The same verdicts in a default-size frame carry everything. */
	f = notify(in, sizeof(in), fx.valid, 1, LONG_HOST, LONG_HOST);
	l = ack(&env, &f, a, sizeof(a));
	ack_vars(a, l, SPOP_DEFAULT_FRAME_SIZE, names, sizeof(names));
	assert_non_null(strstr(names, "action,result,present,verified,mode,policy,ca,"));
	assert_non_null(strstr(names, "subject"));
}


/* The ACK for `f` at a given max-frame-size. */
static size_t ack_at(const struct handler_env *env, const struct spop_frame *f,
                     uint32_t max, uint8_t *out, size_t room)
{
	struct spop_wr w;
	unsigned int n;

	spop_wr_init(&w, out, room);
	assert_int_equal(handler_notify(env, f, max, &w, &n), HANDLER_ACK);
	return (size_t)(w.p - out);
}

/* Which rung of the ladder an answer is on, from its variable names. */
static int ack_level(const char *names)
{
	size_t n = strlen(names), c = strlen(",chain_rfc9440");

	if (n > c && strcmp(names + n - c, ",chain_rfc9440") == 0)
		return 4;
	if (strstr(names, ",san_") != NULL)
		return 3;
	if (strstr(names, ",subject,") != NULL)
		return 2;
	if (strstr(names, ",verify_error") != NULL)
		return 1;
	return 0;
}

/* The drop order, frame size by frame size, on the miss and on the hit
 * path: first chain_rfc9440, then the san_* lists, then the other
 * details, and the two paths answer byte for byte the same. */
static void test_drop_ladder(void **state)
{
	static uint8_t in[16384], a0[16384], a1[16384];
	struct cache *cache = cache_new(16);
	struct handler_env off = { .cfg = fx.cfg, .gen = 1, .cache_ttl_ms = 60000 };
	struct handler_env on = { .cfg = fx.cfg, .gen = 1, .cache = cache,
	                          .cache_ttl_ms = 60000 };
	struct spop_frame f;
	char names[1024];
	size_t full, l0, l1;
	int seen[5] = { 0 }, last = 0;
	uint32_t max;

	(void)state;
	assert_non_null(cache);
	f = notify(in, sizeof(in), fx.valid, 1, "enforce.example", "enforce.example");
	full = ack(&on, &f, a0, sizeof(a0));   /* stores the entry */
	ack_vars(a0, full, SPOP_DEFAULT_FRAME_SIZE, names, sizeof(names));
	assert_string_equal(names, "action,result,present,verified,mode,policy,ca,"
	                    "verify_error,subject,issuer,serial,fingerprint,"
	                    "not_before,not_after,spiffe_id,fingerprint_sha1,ski,"
	                    "issuer_ski,san_uri,chain_rfc9440");
	for (max = 256; max <= full + 8; max++) {
		l0 = ack_at(&off, &f, max, a0, sizeof(a0));
		l1 = ack_at(&on, &f, max, a1, sizeof(a1));
		assert_true(l0 <= max + SPOP_LEN_PREFIX);
		assert_int_equal(l0, l1);
		assert_memory_equal(a0, a1, l0);
		ack_vars(a0, l0, max, names, sizeof(names));
		assert_string_equal(result_of(a0, l0), "ok");
		/* Never a lower rung for a larger frame. */
		assert_true(ack_level(names) >= last);
		last = ack_level(names);
		seen[last] = 1;
	}
	assert_int_equal(last, 4);
	assert_true(seen[1] && seen[2] && seen[3] && seen[4]);
	cache_free(cache);
}

/* A result far over the old 2 KiB entry limit (a chain of 12
 * intermediates and a long SAN list) is cached, and a hit answers it
 * whole without verifying again. */
static void test_cache_large_values(void **state)
{
	static uint8_t in[16384], a0[16384], a1[16384];
	struct pki_cert *certs[14];
	char path[512], err[CONFIG_ERR_LEN], cn[96], dns[4][240];
	struct cache *cache = cache_new(16);
	struct handler_env env = { .gen = 1, .cache = cache, .cache_ttl_ms = 60000 };
	struct config *cfg;
	struct cache_stats st;
	struct spop_frame f;
	uint8_t *der, *cder;
	size_t len, clen, l0, l1;
	uint64_t before;
	char names[1024];
	FILE *cf;

	(void)state;
	assert_non_null(cache);
	certs[0] = pki_make(&(struct pki_cert_opts){ .cn = "Deep Root", .is_ca = 1 }, NULL);
	for (int i = 1; i <= 12; i++) {
		snprintf(cn, sizeof(cn), "Deep Intermediate %02d %040d", i, 0);
		certs[i] = pki_make(&(struct pki_cert_opts){ .cn = cn, .is_ca = 1 },
		                    certs[i - 1]);
	}
	for (int i = 0; i < 4; i++) {
		memset(dns[i], 'a' + i, 230);
		strcpy(dns[i] + 230, ".example");
	}
	certs[13] = pki_make(&(struct pki_cert_opts){ .cn = "deep client",
	                     .eku = PKI_EKU_CLIENT,
	                     .san_dns = { dns[0], dns[1], dns[2], dns[3] } }, certs[12]);
	snprintf(path, sizeof(path), "%s/deep.pem", fx.dir);
	pki_write_pem(path, (const struct pki_cert *[]){ certs[0] }, 1);
	snprintf(path, sizeof(path), "%s/deep.conf", fx.dir);
	cf = fopen(path, "w");
	assert_non_null(cf);
	fputs("[ca deep]\nfile = deep.pem\n[host deep.example]\nca = deep\n"
	      "mode = enforce\nverify-depth = 16\n", cf);
	fclose(cf);
	if (config_load(path, &cfg, err, sizeof(err)) != 0)
		fail_msg("config: %s", err);
	env.cfg = cfg;

	der = pki_der(certs[13], &len);
	cder = pki_chain_der((const struct pki_cert *const *)&certs[1], 12, &clen);
	assert_true(clen < sizeof(in) / 2);
	f = notify_raw(in, sizeof(in), "check-client-cert", der, len, cder, clen,
	               "deep.example", "deep.example");
	l0 = ack(&env, &f, a0, sizeof(a0));
	assert_true(l0 > 2 * 2048);
	ack_vars(a0, l0, SPOP_DEFAULT_FRAME_SIZE, names, sizeof(names));
	assert_int_equal(ack_level(names), 4);
	assert_non_null(strstr(names, ",san_dns,chain_rfc9440"));
	cache_get_stats(cache, &st);
	assert_int_equal(st.inserts, 1);
	before = trust_verifications();
	l1 = ack(&env, &f, a1, sizeof(a1));
	assert_int_equal(trust_verifications(), before);
	cache_get_stats(cache, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(l0, l1);
	assert_memory_equal(a0, a1, l0);

	free(der);
	free(cder);
	config_free(cfg);
	cache_free(cache);
	for (int i = 0; i < 14; i++)
		pki_free(certs[i]);
}

/* memo_ttl: [agent] memo-ttl for every verdict HAProxy may reuse,
 * whether decided by the names alone, verified or from the cache; never
 * past the moment the verdict could change; none for an internal error
 * or with memo-ttl = 0. */
static void test_memo_ttl(void **state)
{
	struct verdict v = { .result = RESULT_OK };
	struct cache *cache = cache_new(64);
	struct handler_env env = { .cfg = fx.cfg, .gen = 1, .cache = cache,
	                           .cache_ttl_ms = 60000, .memo_ttl_ms = 1500 };
	struct handler_env off = env;
	static uint8_t in[16384], out[16384];
	struct spop_frame f;
	size_t n;
	int64_t ttl;

	(void)state;
	assert_non_null(cache);
	assert_int_equal(handler_memo_ttl(&v, 1000, INT64_MAX, 1500), 1500);
	assert_int_equal(handler_memo_ttl(&v, 1000, 1600, 1500), 600);
	assert_int_equal(handler_memo_ttl(&v, 1000, 1000, 1500), 0);
	assert_int_equal(handler_memo_ttl(&v, 1000, 0, 1500), 0);
	assert_int_equal(handler_memo_ttl(&v, 1000, INT64_MAX, 0), 0);
	v.result = RESULT_INTERNAL_ERROR;
	assert_int_equal(handler_memo_ttl(&v, 1000, INT64_MAX, 1500), 0);

	/* Verified (miss), then from the cache (hit): both reusable. */
	f = notify(in, sizeof(in), fx.valid, 1, "enforce.example", "enforce.example");
	for (int i = 0; i < 2; i++) {
		n = ack(&env, &f, out, sizeof(out));
		assert_string_equal(result_of(out, n), "ok");
		ttl = ack_int(out, n, "memo_ttl");
		assert_true(ttl > 1400 && ttl <= 1500);
	}
	/* Failures are verdicts too. */
	f = notify(in, sizeof(in), fx.expired, 1, "enforce.example", "enforce.example");
	n = ack(&env, &f, out, sizeof(out));
	assert_string_equal(result_of(out, n), "expired");
	assert_true(ack_int(out, n, "memo_ttl") > 0);
	/* Decided by the names alone. */
	f = notify(in, sizeof(in), fx.valid, 1, "enforce.example", "off.example");
	n = ack(&env, &f, out, sizeof(out));
	assert_string_equal(result_of(out, n), "host_mismatch");
	assert_int_equal(ack_int(out, n, "memo_ttl"), 1500);
	/* memo-ttl = 0: never sent. */
	off.memo_ttl_ms = 0;
	f = notify(in, sizeof(in), fx.valid, 1, "enforce.example", "enforce.example");
	n = ack(&off, &f, out, sizeof(out));
	assert_string_equal(result_of(out, n), "ok");
	assert_int_equal(ack_int(out, n, "memo_ttl"), -1);
	cache_free(cache);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache_does_not_change_answers),
		cmocka_unit_test(test_sni_message),
		cmocka_unit_test(test_host_spellings_share_one_verification),
		cmocka_unit_test(test_message_kinds_share_one_verification),
		cmocka_unit_test(test_sub_second_ttl_caches),
		cmocka_unit_test(test_reload_keeps_cache_entries),
		cmocka_unit_test(test_ack_too_big_keeps_action_and_result),
		cmocka_unit_test(test_drop_ladder),
		cmocka_unit_test(test_cache_large_values),
		cmocka_unit_test(test_memo_ttl),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
