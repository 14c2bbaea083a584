/*
 * test_etcd.c - the etcd client (etcd.c): the stream framer split at
 * every byte, strings holding braces and escaped quotes, oversize; the
 * watch and range decoders on real gateway answers and on garbage, wrong
 * types, bad base64; etcd_prefix_end. With MTLS_ETCD_ENDPOINT set (the
 * integration script tests/integration/test_etcd_client.sh starts a real
 * etcd), the live part: range, txn puts, conflicts, deletes, pagination,
 * watch order, etcd_stop, compaction, failover, all endpoints dead; with
 * MTLS_ETCD_USER and MTLS_ETCD_PASSWORD (auth enabled) all of it again
 * authenticated, refusals, and a new token after the old one expired;
 * with MTLS_ETCD_CA_FILE, _CERT_FILE, _KEY_FILE, over TLS with a client
 * certificate (etcdctl, for the compaction, reads ETCDCTL_* the same way).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "etcd.h"

/* ---- framer ---- */

struct msgs {
	char got[16][512];
	size_t n;
	int stop_at;                    /* nonzero: return it on that message */
};

static int collect(void *ctx, const char *json, size_t len)
{
	struct msgs *m = ctx;

	assert_true(m->n < 16 && len < 512);
	memcpy(m->got[m->n], json, len);
	m->got[m->n][len] = '\0';
	m->n++;
	return m->stop_at != 0 && (int)m->n == m->stop_at ? 7 : 0;
}

static const char stream[] =
	"{\"result\":{\"a\":\"}{\\\"\\\\\"}}\n"
	"  {\"b\":[{},{\"c\":\"\\\\\"}]}\r\n"
	"{}";

static void test_framer_split(void **state)
{
	size_t cut, n = strlen(stream);

	(void)state;
	for (cut = 0; cut <= n; cut++) {
		struct etcd_framer f = { 0 };
		struct msgs m = { .n = 0 };

		assert_int_equal(etcd_framer_feed(&f, stream, cut, collect, &m), 0);
		assert_int_equal(etcd_framer_feed(&f, stream + cut, n - cut,
		                                  collect, &m), 0);
		assert_int_equal(m.n, 3);
		assert_string_equal(m.got[0], "{\"result\":{\"a\":\"}{\\\"\\\\\"}}");
		assert_string_equal(m.got[1], "{\"b\":[{},{\"c\":\"\\\\\"}]}");
		assert_string_equal(m.got[2], "{}");
		etcd_framer_free(&f);
	}
	/* One byte at a time. */
	{
		struct etcd_framer f = { 0 };
		struct msgs m = { .n = 0 };

		for (cut = 0; cut < n; cut++)
			assert_int_equal(etcd_framer_feed(&f, stream + cut, 1,
			                                  collect, &m), 0);
		assert_int_equal(m.n, 3);
		assert_string_equal(m.got[0], "{\"result\":{\"a\":\"}{\\\"\\\\\"}}");
		etcd_framer_free(&f);
	}
}

static void test_framer_limits(void **state)
{
	struct etcd_framer f = { .max = 8 };
	struct msgs m = { .n = 0 };

	(void)state;
	assert_int_equal(etcd_framer_feed(&f, "{\"a\":1}", 7, collect, &m), 0);
	assert_int_equal(m.n, 1);
	/* 9 bytes, across two feeds. */
	assert_int_equal(etcd_framer_feed(&f, "{\"ab\"", 5, collect, &m), 0);
	assert_int_equal(etcd_framer_feed(&f, ":12}", 4, collect, &m), -1);
	etcd_framer_free(&f);
	/* Bytes outside an object. */
	f = (struct etcd_framer){ 0 };
	assert_int_equal(etcd_framer_feed(&f, "x{}", 3, collect, &m), -1);
	etcd_framer_free(&f);
	f = (struct etcd_framer){ 0 };
	assert_int_equal(etcd_framer_feed(&f, "{}}", 3, collect, &m), -1);
	etcd_framer_free(&f);
	/* msg's nonzero value stops the feed. */
	f = (struct etcd_framer){ 0 };
	m = (struct msgs){ .stop_at = 1 };
	assert_int_equal(etcd_framer_feed(&f, "{}{}", 4, collect, &m), 7);
	assert_int_equal(m.n, 1);
	etcd_framer_free(&f);
}

/* ---- watch decoder ---- */

static int watch_parse(const char *s, struct etcd_watch_msg *m, char *err)
{
	return etcd_parse_watch(s, strlen(s), m, err, 256);
}

#define HDR "\"header\":{\"cluster_id\":\"1\",\"revision\":\"6\",\"raft_term\":\"2\"}"

static void test_parse_watch(void **state)
{
	struct etcd_watch_msg m;
	char err[256];

	(void)state;
	assert_int_equal(watch_parse("{\"result\":{" HDR ",\"created\":true}}",
	                             &m, err), 0);
	assert_int_equal(m.revision, 6);
	assert_true(m.created);
	assert_int_equal(m.n_ev, 0);
	etcd_watch_msg_free(&m);

	/* put (type omitted), then delete; as etcd 3.4 sends them */
	assert_int_equal(watch_parse("{\"result\":{" HDR ",\"events\":["
	    "{\"kv\":{\"key\":\"L3AvYQ==\",\"create_revision\":\"2\","
	    "\"mod_revision\":\"5\",\"version\":\"4\",\"value\":\"eA==\"}},"
	    "{\"type\":\"DELETE\",\"kv\":{\"key\":\"L3AvYQ==\",\"mod_revision\":6}}]}}",
	    &m, err), 0);
	assert_int_equal(m.n_ev, 2);
	assert_false(m.ev[0].is_delete);
	assert_int_equal(m.ev[0].kv.key_len, 4);
	assert_memory_equal(m.ev[0].kv.key, "/p/a", 5);
	assert_int_equal(m.ev[0].kv.value_len, 1);
	assert_string_equal(m.ev[0].kv.value, "x");
	assert_int_equal(m.ev[0].kv.create_revision, 2);
	assert_int_equal(m.ev[0].kv.mod_revision, 5);
	assert_int_equal(m.ev[0].kv.version, 4);
	assert_true(m.ev[1].is_delete);
	assert_int_equal(m.ev[1].kv.mod_revision, 6);
	assert_int_equal(m.ev[1].kv.value_len, 0);
	etcd_watch_msg_free(&m);

	/* compacted: what 3.4 sends (the header has no revision) */
	assert_int_equal(watch_parse("{\"result\":{\"header\":{\"raft_term\":\"2\"},"
	    "\"canceled\":true,\"compact_revision\":\"4\"}}", &m, err), 0);
	assert_true(m.canceled);
	assert_int_equal(m.compact_revision, 4);
	assert_int_equal(m.revision, 0);
	etcd_watch_msg_free(&m);

	assert_int_equal(watch_parse("{\"result\":{\"canceled\":true,"
	    "\"cancel_reason\":\"permission denied\"}}", &m, err), 0);
	assert_string_equal(m.cancel_reason, "permission denied");
	etcd_watch_msg_free(&m);

	/* errors in both shapes */
	assert_int_equal(watch_parse("{\"error\":{\"grpc_code\":16,\"http_code\":401,"
	    "\"message\":\"etcdserver: invalid auth token\"}}", &m, err), -1);
	assert_string_equal(err, "etcd: etcdserver: invalid auth token");
	assert_int_equal(watch_parse("{\"error\":\"x\",\"message\":\"y\",\"code\":3}",
	                             &m, err), -1);
	assert_string_equal(err, "etcd: y");
}

static void test_parse_watch_bad(void **state)
{
	static const char *const bad[] = {
		"", "{", "[]", "null", "{\"result\":1}", "{\"result\":[]}",
		"{\"result\":{},\"result\":{}}",                 /* duplicate */
		"{\"result\":{\"header\":1}}",
		"{\"result\":{\"header\":{\"revision\":\"x\"}}}",
		"{\"result\":{\"header\":{\"revision\":\"12a\"}}}",
		"{\"result\":{\"header\":{\"revision\":\"\"}}}",
		"{\"result\":{\"header\":{\"revision\":\"-\"}}}",
		"{\"result\":{\"header\":{\"revision\":\"9223372036854775808\"}}}",
		"{\"result\":{\"header\":{\"revision\":1.5}}}",
		"{\"result\":{\"header\":{\"revision\":true}}}",
		"{\"result\":{\"created\":\"true\"}}",
		"{\"result\":{\"canceled\":1}}",
		"{\"result\":{\"compact_revision\":[]}}",
		"{\"result\":{\"events\":{}}}",
		"{\"result\":{\"events\":[1]}}",
		"{\"result\":{\"events\":[{}]}}",
		"{\"result\":{\"events\":[{\"kv\":{}}]}}",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"\"}}]}}",
		"{\"result\":{\"events\":[{\"type\":\"PATCH\",\"kv\":{\"key\":\"YQ==\"}}]}}",
		"{\"result\":{\"events\":[{\"type\":1,\"kv\":{\"key\":\"YQ==\"}}]}}",
		/* base64: unpadded, bad alphabet, non-canonical bits, = inside */
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ\"}}]}}",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"Y-==\"}}]}}",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"YR==\"}}]}}",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"YWI=\",\"value\":\"YW=j\"}}]}}",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"====\"}}]}}",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\",\"value\":7}}]}}",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\",\"version\":{}}}]}}",
	};
	struct etcd_watch_msg m;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (watch_parse(bad[i], &m, err) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err[0] != '\0');
		assert_null(m.ev);
		assert_int_equal(m.n_ev, 0);
	}
	/* Keys with NUL bytes and the int64 extremes. */
	assert_int_equal(watch_parse("{\"result\":{\"header\":{\"revision\":"
	    "\"9223372036854775807\"},\"events\":[{\"kv\":{\"key\":\"YQBi\","
	    "\"version\":\"-9223372036854775808\"}}]}}", &m, err), 0);
	assert_int_equal(m.revision, INT64_MAX);
	assert_int_equal(m.ev[0].kv.key_len, 3);
	assert_memory_equal(m.ev[0].kv.key, "a\0b", 4);
	assert_int_equal(m.ev[0].kv.version, INT64_MIN);
	etcd_watch_msg_free(&m);
}

/* Every truncation of a valid message fails cleanly. */
static void test_parse_truncations(void **state)
{
	static const char ok[] = "{\"result\":{" HDR ",\"events\":[{\"kv\":"
	    "{\"key\":\"L3AvYQ==\",\"mod_revision\":\"5\",\"value\":\"eA==\"}}]}}";
	struct etcd_watch_msg m;
	struct etcd_kv *kvs;
	size_t i, n;
	int64_t rev;
	int more;
	char err[256];

	(void)state;
	for (i = 0; i < strlen(ok); i++) {
		assert_int_equal(etcd_parse_watch(ok, i, &m, err, sizeof(err)), -1);
		assert_int_equal(etcd_parse_range(ok, i, &rev, &kvs, &n, &more, err,
		                                  sizeof(err)), -1);
		assert_null(kvs);
	}
}

static void test_parse_range(void **state)
{
	static const char page[] = "{" HDR ",\"kvs\":["
	    "{\"key\":\"L3AvYQ==\",\"create_revision\":\"2\",\"mod_revision\":\"2\","
	    "\"version\":\"1\",\"value\":\"aGVsbG8=\"},"
	    "{\"key\":\"L3AvYg==\",\"create_revision\":3,\"mod_revision\":4,"
	    "\"version\":2}],\"more\":true,\"count\":\"5\"}";
	struct etcd_kv *kvs;
	size_t n;
	int64_t rev;
	int more;
	char err[256];

	(void)state;
	assert_int_equal(etcd_parse_range(page, strlen(page), &rev, &kvs, &n,
	                                  &more, err, sizeof(err)), 0);
	assert_int_equal(rev, 6);
	assert_true(more);
	assert_int_equal(n, 2);
	assert_string_equal(kvs[0].key, "/p/a");
	assert_string_equal(kvs[0].value, "hello");
	assert_int_equal(kvs[0].value_len, 5);
	assert_int_equal(kvs[1].create_revision, 3);
	assert_int_equal(kvs[1].mod_revision, 4);
	assert_int_equal(kvs[1].version, 2);
	assert_string_equal(kvs[1].value, "");
	etcd_kvs_free(kvs, n);

	/* An empty range: no kvs, no more. */
	assert_int_equal(etcd_parse_range("{" HDR "}", strlen("{" HDR "}"), &rev,
	                                  &kvs, &n, &more, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	assert_null(kvs);
	assert_false(more);
	assert_int_equal(rev, 6);

#define RBAD(s) assert_int_equal(etcd_parse_range(s, strlen(s), &rev, &kvs, \
	&n, &more, err, sizeof(err)), -1)
	RBAD("{}");                                 /* no header revision */
	RBAD("{" HDR ",\"more\":\"true\"}");
	RBAD("{" HDR ",\"kvs\":{}}");
	RBAD("{" HDR ",\"kvs\":[{\"key\":\"L3AvYQ==\"},7]}");
	RBAD("{" HDR ",\"kvs\":[{\"key\":\"L3AvYQ==\",\"value\":\"a\"}]}");
	RBAD("{\"error\":\"etcdserver: mvcc: required revision has been "
	     "compacted\",\"message\":\"m\",\"code\":11}");
	assert_string_equal(err, "etcd: m");
	RBAD("{" HDR "," HDR "}");
}

static void test_prefix_end(void **state)
{
	static const char *const cases[][2] = {
		{ "/p/", "/p0" }, { "a\xff\xff", "b" }, { "\xff", "" },
		{ "", "" }, { "/mtls-spoa/", "/mtls-spoa0" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = etcd_prefix_end(cases[i][0]);

		assert_non_null(s);
		assert_string_equal(s, cases[i][1]);
		free(s);
	}
}

static void test_new_refuses(void **state)
{
	const char *ftp[] = { "ftp://127.0.0.1:1" }, *bare[] = { "127.0.0.1:2379" },
		   *empty[] = { "http://" };
	struct etcd_opts o = { .endpoints = ftp, .n_endpoints = 1 };
	char err[256];

	(void)state;
	assert_null(etcd_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "not an http"));
	o.endpoints = bare;
	assert_null(etcd_new(&o, err, sizeof(err)));
	o.endpoints = empty;
	assert_null(etcd_new(&o, err, sizeof(err)));
	o.n_endpoints = 0;
	assert_null(etcd_new(&o, err, sizeof(err)));
}

/* ---- live: a real etcd at MTLS_ETCD_ENDPOINT ---- */

static const char *live_ep;
static const char *live_user, *live_password;   /* etcd with auth enabled */
static const char *live_ca, *live_cert, *live_key;  /* etcd over TLS */
static char live_prefix[64];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct etcd *live_new(const char *const *eps, size_t n, long timeout,
                             size_t page)
{
	struct etcd_opts o = {
		.endpoints = eps, .n_endpoints = n, .timeout_ms = timeout,
		.page_limit = page, .user = live_user, .password = live_password,
		.ca_file = live_ca, .cert_file = live_cert, .key_file = live_key,
	};
	char err[256];
	struct etcd *e = etcd_new(&o, err, sizeof(err));

	if (e == NULL)
		fail_msg("etcd_new: %s", err);
	return e;
}

static char *key(const char *name)
{
	static char buf[4][128];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s%s", live_prefix, name);
	return buf[i];
}

static int64_t put(struct etcd *e, const char *k, const char *v)
{
	struct etcd_op op = { .key = k, .value = v, .value_len = strlen(v) };
	int64_t rev;
	char err[256];

	if (etcd_txn(e, NULL, 0, &op, 1, &rev, err, sizeof(err)) != ETCD_OK)
		fail_msg("put %s: %s", k, err);
	return rev;
}

static void test_live_kv(void **state)
{
	const char *eps[] = { live_ep };
	struct etcd *e;
	struct etcd_kv *kvs;
	size_t n, i;
	int64_t rev, r1, r2, r3;
	char err[256];

	(void)state;
	e = live_new(eps, 1, 2000, 3);
	assert_string_equal(etcd_endpoint(e), live_ep);
	/* empty prefix */
	assert_int_equal(etcd_range(e, key("kv/"), &rev, &kvs, &n, err,
	                            sizeof(err)), ETCD_OK);
	assert_int_equal(n, 0);
	assert_true(rev > 0);
	/* puts; 10 keys read back in pages of 3, all at one revision */
	r1 = put(e, key("kv/a"), "one");
	for (i = 0; i < 9; i++) {
		char k[16];

		snprintf(k, sizeof(k), "kv/p%zu", i);
		r2 = put(e, key(k), "v");
	}
	/* a key just past the prefix must not show */
	(void)put(e, key("kv0"), "outside");
	assert_int_equal(etcd_range(e, key("kv/"), &rev, &kvs, &n, err,
	                            sizeof(err)), ETCD_OK);
	assert_int_equal(n, 10);
	assert_true(rev > r2);
	assert_string_equal(kvs[0].key, key("kv/a"));
	assert_string_equal(kvs[0].value, "one");
	assert_int_equal(kvs[0].mod_revision, r1);
	for (i = 1; i < n; i++)
		assert_true(strcmp(kvs[i - 1].key, kvs[i].key) < 0);
	etcd_kvs_free(kvs, n);

	/* conflict on mod_revision: nothing written */
	{
		struct etcd_cmp c = { .key = key("kv/a"), .target = ETCD_TARGET_MOD,
		                      .result = ETCD_EQUAL, .value = r1 - 1 };
		struct etcd_op op = { .key = key("kv/b"), .value = "x", .value_len = 1 };

		assert_int_equal(etcd_txn(e, &c, 1, &op, 1, &rev, err, sizeof(err)),
		                 ETCD_CONFLICT);
		assert_true(rev >= r2);
		assert_int_equal(etcd_range(e, key("kv/b"), &rev, &kvs, &n, err,
		                            sizeof(err)), ETCD_OK);
		assert_int_equal(n, 0);
		/* the right revision: written */
		c.value = r1;
		assert_int_equal(etcd_txn(e, &c, 1, &op, 1, &r3, err, sizeof(err)),
		                 ETCD_OK);
		assert_true(r3 > r2);
	}
	/* range_end compare: "no key under kv/p" is false; "none under kv/q" holds */
	{
		struct etcd_cmp c = { .key = key("kv/p"), .range_end = key("kv/q"),
		                      .target = ETCD_TARGET_CREATE,
		                      .result = ETCD_EQUAL, .value = 0 };
		struct etcd_op op = { .key = key("kv/c"), .value = "", .value_len = 0 };

		assert_int_equal(etcd_txn(e, &c, 1, &op, 1, &rev, err, sizeof(err)),
		                 ETCD_CONFLICT);
		c.key = key("kv/q");
		c.range_end = key("kv/r");
		assert_int_equal(etcd_txn(e, &c, 1, &op, 1, &rev, err, sizeof(err)),
		                 ETCD_OK);
	}
	/* delete */
	{
		struct etcd_op op = { .key = key("kv/a") };

		assert_int_equal(etcd_txn(e, NULL, 0, &op, 1, &rev, err, sizeof(err)),
		                 ETCD_OK);
		assert_int_equal(etcd_range(e, key("kv/"), &rev, &kvs, &n, err,
		                            sizeof(err)), ETCD_OK);
		assert_int_equal(n, 11);   /* 9 p*, b, c */
		assert_string_equal(kvs[0].key, key("kv/b"));
		assert_string_equal(kvs[1].key, key("kv/c"));
		assert_int_equal(kvs[1].value_len, 0);
		etcd_kvs_free(kvs, n);
	}
	etcd_free(e);
}

struct seen {
	int64_t rev[8];
	int del[8];
	char key[8][128];
	int n, stop_after;
};

static int on_events(void *ctx, int64_t revision, const struct etcd_event *ev,
                     size_t n)
{
	struct seen *s = ctx;
	size_t i;

	for (i = 0; i < n && s->n < 8; i++, s->n++) {
		s->rev[s->n] = ev[i].kv.mod_revision;
		s->del[s->n] = ev[i].is_delete;
		snprintf(s->key[s->n], sizeof(s->key[0]), "%s", ev[i].kv.key);
		assert_true(ev[i].kv.mod_revision <= revision);
	}
	return s->n >= s->stop_after;
}

static void test_live_watch(void **state)
{
	const char *eps[] = { live_ep };
	struct etcd *e;
	struct seen s = { .stop_after = 2 };
	struct etcd_op del = { .key = key("w/x") };
	int64_t r1, r2, rev, compact;
	char err[256];

	(void)state;
	e = live_new(eps, 1, 2000, 0);
	r1 = put(e, key("w/x"), "1");
	assert_int_equal(etcd_txn(e, NULL, 0, &del, 1, &r2, err, sizeof(err)),
	                 ETCD_OK);
	/* from r1: both events, in order, then the callback stops it */
	assert_int_equal(etcd_watch(e, key("w/"), r1, on_events, &s, &compact,
	                            err, sizeof(err)), ETCD_STOPPED);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.rev[0], r1);
	assert_false(s.del[0]);
	assert_string_equal(s.key[0], key("w/x"));
	assert_int_equal(s.rev[1], r2);
	assert_true(s.del[1]);
	(void)rev;
	etcd_free(e);
}

struct watcher {
	struct etcd *e;
	int rc;
	double ended;
};

static void *watch_thread(void *arg)
{
	struct watcher *w = arg;
	struct seen s = { .stop_after = 1000 };
	int64_t compact;
	char err[256];

	w->rc = etcd_watch(w->e, key("idle/"), 0, on_events, &s, &compact, err,
	                   sizeof(err));
	w->ended = now_s();
	return NULL;
}

static void test_live_stop(void **state)
{
	const char *eps[] = { live_ep };
	struct watcher w = { .rc = 99 };
	pthread_t th;
	double t0;
	struct timespec nap = { 0, 300000000 };

	(void)state;
	w.e = live_new(eps, 1, 2000, 0);
	assert_int_equal(pthread_create(&th, NULL, watch_thread, &w), 0);
	nanosleep(&nap, NULL);           /* let it connect; not a correctness wait */
	t0 = now_s();
	etcd_stop(w.e);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.rc, ETCD_STOPPED);
	assert_true(w.ended - t0 < 1.0);
	etcd_free(w.e);
}

static void test_live_compacted(void **state)
{
	const char *eps[] = { live_ep };
	struct etcd *e;
	struct seen s = { .stop_after = 1000 };
	int64_t r1, r2, compact;
	char cmd[512], err[256];

	(void)state;
	e = live_new(eps, 1, 2000, 0);
	r1 = put(e, key("c/x"), "1");
	r2 = put(e, key("c/x"), "2");
	(void)put(e, key("c/x"), "3");
	snprintf(cmd, sizeof(cmd), "ETCDCTL_API=3 etcdctl --endpoints=%s "
	         "%s%s%s%s compact %lld >/dev/null", live_ep,
	         live_user ? "--user=" : "", live_user ? live_user : "",
	         live_user ? ":" : "", live_user ? live_password : "",
	         (long long)r2);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(etcd_watch(e, key("c/"), r1, on_events, &s, &compact,
	                            err, sizeof(err)), ETCD_COMPACTED);
	assert_int_equal(compact, r2);
	assert_int_equal(s.n, 0);
	etcd_free(e);
}

static void test_live_failover(void **state)
{
	/* Port 1 on loopback: refused at once. */
	const char *eps[] = { "http://127.0.0.1:1", live_ep };
	const char *dead[] = { "http://127.0.0.1:1", "http://127.0.0.1:9" };
	struct etcd *e;
	struct etcd_kv *kvs;
	size_t n;
	int64_t rev;
	double t0;
	char err[256];

	(void)state;
	e = live_new(eps, 2, 1000, 0);
	assert_int_equal(etcd_range(e, key("kv/"), &rev, &kvs, &n, err,
	                            sizeof(err)), ETCD_OK);
	etcd_kvs_free(kvs, n);
	assert_string_equal(etcd_endpoint(e), live_ep);
	/* A txn refused by the dead one is retried (nothing was sent). */
	etcd_free(e);
	e = live_new(eps, 2, 1000, 0);
	(void)put(e, key("f/x"), "1");
	etcd_free(e);

	e = live_new(dead, 2, 1000, 0);
	t0 = now_s();
	assert_int_equal(etcd_range(e, key("kv/"), &rev, &kvs, &n, err,
	                            sizeof(err)), ETCD_UNAVAILABLE);
	assert_true(now_s() - t0 < 2.5);
	{
		struct seen s = { .stop_after = 1 };
		int64_t compact;

		assert_int_equal(etcd_watch(e, key("kv/"), 0, on_events, &s,
		                            &compact, err, sizeof(err)),
		                 ETCD_UNAVAILABLE);
	}
	etcd_free(e);
}

/* A listener that never answers (the kernel completes the handshake, no
 * one reads): the request is sent and times out after timeout_ms. A
 * range moves on to the next endpoint; a txn may have been applied, so
 * it is not retried and says the outcome is unknown. */
static void test_live_timeout(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	char url[64], err[256];
	const char *eps[2];
	struct etcd *e;
	struct etcd_kv *kvs;
	struct etcd_op op = { .key = key("t/x"), .value = "1", .value_len = 1 };
	size_t n;
	int64_t rev;
	double t0;
	int fd, rc;

	(void)state;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", ntohs(sa.sin_port));
	eps[0] = url;
	eps[1] = live_ep;

	e = live_new(eps, 1, 500, 0);
	t0 = now_s();
	rc = etcd_range(e, key("t/"), &rev, &kvs, &n, err, sizeof(err));
	if (rc != ETCD_UNAVAILABLE)
		fail_msg("range: %d %s", rc, err);
	assert_true(now_s() - t0 < 1.5);
	rc = etcd_txn(e, NULL, 0, &op, 1, &rev, err, sizeof(err));
	assert_int_equal(rc, ETCD_UNAVAILABLE);
	/* With auth the silent one swallowed the authentication, not the txn. */
	if (live_user == NULL)
		assert_non_null(strstr(err, "outcome is unknown"));
	else
		assert_null(strstr(err, "outcome is unknown"));
	etcd_free(e);

	/* silent first, live second */
	e = live_new(eps, 2, 500, 0);
	t0 = now_s();
	assert_int_equal(etcd_range(e, key("t/"), &rev, &kvs, &n, err,
	                            sizeof(err)), ETCD_OK);
	assert_true(now_s() - t0 < 1.5);
	etcd_kvs_free(kvs, n);
	assert_string_equal(etcd_endpoint(e), live_ep);
	etcd_free(e);
	e = live_new(eps, 2, 500, 0);
	rc = etcd_txn(e, NULL, 0, &op, 1, &rev, err, sizeof(err));
	if (live_user == NULL) {
		assert_int_equal(rc, ETCD_UNAVAILABLE);
		assert_non_null(strstr(err, "outcome is unknown"));
	} else {
		assert_int_equal(rc, ETCD_OK);   /* authenticated on the live one */
	}
	etcd_free(e);
	close(fd);
}

/* With auth enabled (MTLS_ETCD_USER): a wrong password or none is
 * refused; after the token's TTL (the script starts etcd with
 * --auth-token-ttl 1) the client authenticates again by itself. */
static void test_live_auth(void **state)
{
	const char *eps[] = { live_ep };
	struct etcd_opts o = { .endpoints = eps, .n_endpoints = 1,
	                       .timeout_ms = 2000 };
	struct etcd *e;
	struct etcd_kv *kvs;
	struct etcd_op op = { .key = key("a/x"), .value = "1", .value_len = 1 };
	struct timespec ttl = { 2, 500000000 };
	size_t n;
	int64_t rev;
	char err[256];

	(void)state;
	e = etcd_new(&o, err, sizeof(err));
	assert_non_null(e);
	assert_int_equal(etcd_range(e, key("a/"), &rev, &kvs, &n, err,
	                            sizeof(err)), ETCD_ERROR);
	etcd_free(e);
	o.user = live_user;
	o.password = "wrong";
	e = etcd_new(&o, err, sizeof(err));
	assert_non_null(e);
	assert_int_equal(etcd_txn(e, NULL, 0, &op, 1, &rev, err, sizeof(err)),
	                 ETCD_ERROR);
	assert_non_null(strstr(err, "authentication failed"));
	etcd_free(e);

	e = live_new(eps, 1, 2000, 0);
	(void)put(e, key("a/x"), "1");
	/* Waiting is the point here: the token must outlive its TTL. */
	nanosleep(&ttl, NULL);
	(void)put(e, key("a/x"), "2");
	assert_int_equal(etcd_range(e, key("a/"), &rev, &kvs, &n, err,
	                            sizeof(err)), ETCD_OK);
	assert_int_equal(n, 1);
	assert_string_equal(kvs[0].value, "2");
	etcd_kvs_free(kvs, n);
	etcd_free(e);
}

/* A loopback listener: accepting (and closing what it accepts) when
 * `closer`, else silent (the kernel completes handshakes, no one reads). */
struct fake {
	int fd, closer;
	char url[64];
	pthread_t th;
};

static void *fake_closer(void *arg)
{
	struct fake *f = arg;
	int c;

	while ((c = accept(f->fd, NULL, NULL)) >= 0)
		close(c);
	return NULL;
}

static void fake_start(struct fake *f, int closer)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);

	f->closer = closer;
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->fd, 16), 0);
	assert_int_equal(getsockname(f->fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", ntohs(sa.sin_port));
	if (closer)
		assert_int_equal(pthread_create(&f->th, NULL, fake_closer, f), 0);
}

static void fake_stop(struct fake *f)
{
	/* shutdown wakes the accept() of the closer thread */
	(void)shutdown(f->fd, SHUT_RDWR);
	if (f->closer)
		assert_int_equal(pthread_join(f->th, NULL), 0);
	close(f->fd);
}

/* A watch whose server closes the connection: ETCD_UNAVAILABLE; one
 * whose first endpoint hangs: created on the next, events seen. */
static void test_live_watch_failover(void **state)
{
	struct fake closer, silent;
	const char *eps[2];
	struct etcd *e;
	struct seen s = { .stop_after = 1 };
	int64_t compact, r;
	double t0;
	char err[256];
	int rc;

	(void)state;
	fake_start(&closer, 1);
	eps[0] = closer.url;
	e = live_new(eps, 1, 500, 0);
	rc = etcd_watch(e, key("wf/"), 0, on_events, &s, &compact, err,
	                sizeof(err));
	if (rc != ETCD_UNAVAILABLE)
		fail_msg("watch on a closing server: %d %s", rc, err);
	etcd_free(e);
	fake_stop(&closer);

	fake_start(&silent, 0);
	eps[0] = silent.url;
	eps[1] = live_ep;
	e = live_new(eps, 1, 300, 0);
	t0 = now_s();
	assert_int_equal(etcd_watch(e, key("wf/"), 0, on_events, &s, &compact,
	                            err, sizeof(err)), ETCD_UNAVAILABLE);
	/* With auth, the authentication is what hangs there. */
	if (live_user == NULL)
		assert_non_null(strstr(err, "not created"));
	assert_true(now_s() - t0 < 1.5);
	etcd_free(e);
	e = live_new(eps + 1, 1, 300, 0);
	r = put(e, key("wf/x"), "1");
	etcd_free(e);
	e = live_new(eps, 2, 300, 0);
	assert_int_equal(etcd_watch(e, key("wf/"), r, on_events, &s, &compact,
	                            err, sizeof(err)), ETCD_STOPPED);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.rev[0], r);
	assert_string_equal(etcd_endpoint(e), live_ep);
	etcd_free(e);
	fake_stop(&silent);
}

int main(void)
{
	const struct CMUnitTest offline[] = {
		cmocka_unit_test(test_framer_split),
		cmocka_unit_test(test_framer_limits),
		cmocka_unit_test(test_parse_watch),
		cmocka_unit_test(test_parse_watch_bad),
		cmocka_unit_test(test_parse_truncations),
		cmocka_unit_test(test_parse_range),
		cmocka_unit_test(test_prefix_end),
		cmocka_unit_test(test_new_refuses),
	};
	const struct CMUnitTest live[] = {
		cmocka_unit_test(test_live_kv),
		cmocka_unit_test(test_live_watch),
		cmocka_unit_test(test_live_stop),
		cmocka_unit_test(test_live_compacted),
		cmocka_unit_test(test_live_failover),
		cmocka_unit_test(test_live_timeout),
		cmocka_unit_test(test_live_watch_failover),
	};
	const struct CMUnitTest auth[] = {
		cmocka_unit_test(test_live_auth),
	};
	int rc;

	live_ep = getenv("MTLS_ETCD_ENDPOINT");
	if (live_ep != NULL && live_ep[0] == '\0')
		live_ep = NULL;
	live_ca = getenv("MTLS_ETCD_CA_FILE");
	live_cert = getenv("MTLS_ETCD_CERT_FILE");
	live_key = getenv("MTLS_ETCD_KEY_FILE");
	live_user = getenv("MTLS_ETCD_USER");
	live_password = getenv("MTLS_ETCD_PASSWORD");
	if (live_user == NULL || live_password == NULL)
		live_user = live_password = NULL;
	/* A fresh prefix per run: the etcd may be shared between runs. */
	snprintf(live_prefix, sizeof(live_prefix), "/test-etcd/%ld-%ld/",
	         (long)time(NULL), (long)getpid());
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	/* The live groups only with an etcd: in TAP a skipped test is a
	 * "not ok", which tests/run.sh counts as a failure. */
	rc = cmocka_run_group_tests_name("offline", offline, NULL, NULL);
	if (live_ep != NULL)
		rc |= cmocka_run_group_tests_name("live", live, NULL, NULL);
	if (live_ep != NULL && live_user != NULL)
		rc |= cmocka_run_group_tests_name("auth", auth, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
