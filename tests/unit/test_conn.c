/*
 * test_conn.c - the SPOP connection state machine, fed bytes directly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "conn.h"
#include "handler.h"
#include "spop.h"

#define MAXF SPOP_DEFAULT_FRAME_SIZE

struct fx {
	struct conn_proto c;
	struct obuf out;
	uint8_t in[65536];
	size_t inlen;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	conn_proto_init(&f->c, MAXF, "test");
	f->out.limit = 1 << 20;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	obuf_free(&f->out);
	free(f);
	return 0;
}

/* Append a HAPROXY-HELLO to the input. Keys are included when non-NULL /
 * non-negative. */
static void put_hello(struct fx *f, const char *versions, long mfs,
                      const char *caps, int healthcheck)
{
	struct spop_wr w;
	uint8_t *start;
	struct spop_data d;

	spop_wr_init(&w, f->in + f->inlen, sizeof(f->in) - f->inlen);
	start = spop_frame_begin(&w, SPOP_FRAME_HAPROXY_HELLO, SPOP_FLAG_FIN, 0, 0);
	if (versions) {
		d = spop_cstr(versions);
		spop_put_kv(&w, "supported-versions", &d);
	}
	if (mfs >= 0) {
		d = spop_uint32((uint32_t)mfs);
		spop_put_kv(&w, "max-frame-size", &d);
	}
	if (caps) {
		d = spop_cstr(caps);
		spop_put_kv(&w, "capabilities", &d);
	}
	if (healthcheck) {
		d = spop_bool(1);
		spop_put_kv(&w, "healthcheck", &d);
	}
	d = spop_cstr("engine-1");
	spop_put_kv(&w, "engine-id", &d);
	assert_int_equal(spop_frame_end(&w, start, 1 << 20), 0);
	f->inlen = (size_t)(w.p - f->in);
}

static void put_good_hello(struct fx *f)
{
	put_hello(f, "2.0", MAXF, "pipelining,async", 0);
}

/* A NOTIFY with one check-client-cert message carrying `cert` (binary,
 * may be NULL: then the argument is NULL-typed). */
static void put_notify(struct fx *f, uint64_t sid, uint64_t fid, uint32_t flags,
                       const char *cert)
{
	struct spop_wr w;
	uint8_t *start;
	struct spop_data d;

	spop_wr_init(&w, f->in + f->inlen, sizeof(f->in) - f->inlen);
	start = spop_frame_begin(&w, SPOP_FRAME_NOTIFY, flags, sid, fid);
	spop_put_bytes(&w, "check-client-cert", 17);
	spop_put_u8(&w, 2);
	d = cert ? spop_bin(cert, strlen(cert)) : spop_null();
	spop_put_kv(&w, "cert", &d);
	d = spop_cstr("api.example.com");
	spop_put_kv(&w, "sni", &d);
	assert_int_equal(spop_frame_end(&w, start, 1 << 20), 0);
	f->inlen = (size_t)(w.p - f->in);
}

static enum conn_verdict run(struct fx *f, size_t *consumed)
{
	static const struct handler_env env; /* no policies, no cache */

	return conn_process(&f->c, &env, f->in, f->inlen, consumed, &f->out);
}

/* Decode the next output frame; returns its type. */
static int next_out(struct fx *f, size_t *pos, struct spop_frame *fr)
{
	const uint8_t *p = f->out.data + *pos;

	assert_int_equal(spop_frame_decode(&p, f->out.data + f->out.len, 1 << 20, fr),
	                 SPOP_RC_OK);
	assert_true(fr->flags & SPOP_FLAG_FIN);
	*pos = (size_t)(p - f->out.data);
	return fr->type;
}

/* Find KV `name` in a KV-list payload. */
static int find_kv(const struct spop_frame *fr, const char *name, struct spop_data *out)
{
	const uint8_t *p = fr->payload, *end = fr->payload + fr->payload_len;
	struct spop_kv kv;

	while (p < end) {
		assert_int_equal(spop_kv_next(&p, end, &kv), SPOP_RC_OK);
		if (kv.name_len == strlen(name) && memcmp(kv.name, name, kv.name_len) == 0) {
			*out = kv.value;
			return 1;
		}
	}
	return 0;
}

/* Find set-var `name` in an ACK payload. */
static int find_var(const struct spop_frame *fr, const char *name, struct spop_data *out)
{
	const uint8_t *p = fr->payload, *end = fr->payload + fr->payload_len;

	while (p < end) {
		const uint8_t *vname;
		size_t vlen;
		struct spop_data d;

		assert_true(end - p >= 3);
		assert_int_equal(p[0], SPOP_ACT_SET_VAR);
		assert_int_equal(p[1], 3);
		assert_int_equal(p[2], SPOP_SCOPE_TXN);
		p += 3;
		assert_int_equal(spop_bytes_decode(&p, end, &vname, &vlen), SPOP_RC_OK);
		assert_int_equal(spop_data_decode(&p, end, &d), SPOP_RC_OK);
		if (vlen == strlen(name) && memcmp(vname, name, vlen) == 0) {
			*out = d;
			return 1;
		}
	}
	return 0;
}

static void assert_str(const struct spop_data *d, const char *s)
{
	assert_int_equal(d->type, SPOP_T_STRING);
	assert_int_equal(d->u.buf.len, strlen(s));
	assert_memory_equal(d->u.buf.ptr, s, strlen(s));
}

static void expect_disconnect(struct fx *f, unsigned int status)
{
	size_t consumed, pos = 0;
	struct spop_frame fr;
	struct spop_data d;

	assert_int_equal(run(f, &consumed), CONN_CLOSE_AFTER_FLUSH);
	assert_int_equal(f->c.state, CONN_ST_CLOSING);
	assert_int_equal(f->c.status, status);
	assert_int_equal(next_out(f, &pos, &fr), SPOP_FRAME_AGENT_DISCONNECT);
	assert_int_equal(fr.stream_id, 0);
	assert_int_equal(fr.frame_id, 0);
	assert_true(find_kv(&fr, "status-code", &d));
	assert_int_equal(d.u.uint, status);
	assert_true(find_kv(&fr, "message", &d));
	assert_int_equal(d.type, SPOP_T_STRING);
	assert_int_equal(pos, f->out.len);
}

static void test_hello_negotiates(void **state)
{
	struct fx *f = *state;
	size_t consumed, pos = 0;
	struct spop_frame fr;
	struct spop_data d;

	put_hello(f, "2.0", 4096, "pipelining,async", 0);
	assert_int_equal(run(f, &consumed), CONN_KEEP);
	assert_int_equal(consumed, f->inlen);
	assert_int_equal(f->c.state, CONN_ST_READY);
	assert_int_equal(f->c.max_frame, 4096);
	assert_int_equal(next_out(f, &pos, &fr), SPOP_FRAME_AGENT_HELLO);
	assert_true(find_kv(&fr, "version", &d));
	assert_str(&d, "2.0");
	assert_true(find_kv(&fr, "max-frame-size", &d));
	assert_int_equal(d.u.uint, 4096);
	assert_true(find_kv(&fr, "capabilities", &d));
	/* Never async nor fragmentation: ACKs stay on their connection. */
	assert_str(&d, "pipelining");
}

static void test_hello_caps_at_our_max(void **state)
{
	struct fx *f = *state;
	size_t consumed;

	put_hello(f, " 1.0 , 2.0 ", 65536, "", 0);
	assert_int_equal(run(f, &consumed), CONN_KEEP);
	assert_int_equal(f->c.max_frame, MAXF);
}

static void test_hello_bad_version(void **state)
{
	put_hello(*state, "1.0", MAXF, "", 0);
	expect_disconnect(*state, SPOP_ST_BAD_VSN);
}

static void test_hello_small_frame(void **state)
{
	put_hello(*state, "2.0", 255, "", 0);
	expect_disconnect(*state, SPOP_ST_BAD_FRAME_SIZE);
}

static void test_hello_missing_version(void **state)
{
	put_hello(*state, NULL, MAXF, "", 0);
	expect_disconnect(*state, SPOP_ST_NO_VSN);
}

static void test_hello_missing_frame_size(void **state)
{
	put_hello(*state, "2.0", -1, "", 0);
	expect_disconnect(*state, SPOP_ST_NO_FRAME_SIZE);
}

static void test_hello_missing_caps(void **state)
{
	put_hello(*state, "2.0", MAXF, NULL, 0);
	expect_disconnect(*state, SPOP_ST_NO_CAP);
}

static void test_healthcheck_closes(void **state)
{
	struct fx *f = *state;
	size_t consumed, pos = 0;
	struct spop_frame fr;

	put_hello(f, "2.0", MAXF, "", 1);
	assert_int_equal(run(f, &consumed), CONN_CLOSE_AFTER_FLUSH);
	assert_int_equal(next_out(f, &pos, &fr), SPOP_FRAME_AGENT_HELLO);
	assert_int_equal(pos, f->out.len);
}

static void test_notify_before_hello(void **state)
{
	put_notify(*state, 1, 1, SPOP_FLAG_FIN, NULL);
	expect_disconnect(*state, SPOP_ST_INVALID);
}

static void test_second_hello(void **state)
{
	struct fx *f = *state;
	size_t consumed, pos = 0;
	struct spop_frame fr;

	put_good_hello(f);
	put_good_hello(f);
	assert_int_equal(run(f, &consumed), CONN_CLOSE_AFTER_FLUSH);
	assert_int_equal(next_out(f, &pos, &fr), SPOP_FRAME_AGENT_HELLO);
	assert_int_equal(next_out(f, &pos, &fr), SPOP_FRAME_AGENT_DISCONNECT);
	assert_int_equal(f->c.status, SPOP_ST_INVALID);
}

static void test_frame_without_fin(void **state)
{
	struct fx *f = *state;
	size_t consumed;

	put_good_hello(f);
	assert_int_equal(run(f, &consumed), CONN_KEEP);
	f->inlen = 0;
	f->out.len = 0;
	put_notify(f, 1, 1, 0, NULL);
	expect_disconnect(f, SPOP_ST_FRAG_NOT_SUPPORTED);
}

static void test_frame_too_big(void **state)
{
	struct fx *f = *state;
	static const uint8_t big[] = { 0x00, 0x00, 0x40, 0x00 }; /* 16384 > 16380 */

	memcpy(f->in, big, sizeof(big));
	f->inlen = sizeof(big);
	expect_disconnect(f, SPOP_ST_TOO_BIG);
}

static void test_frame_len_zero(void **state)
{
	struct fx *f = *state;

	memset(f->in, 0, 4);
	f->inlen = 4;
	expect_disconnect(f, SPOP_ST_INVALID);
}

static void test_unknown_frame_type(void **state)
{
	struct fx *f = *state;
	struct spop_wr w;
	uint8_t *start;

	spop_wr_init(&w, f->in, sizeof(f->in));
	start = spop_frame_begin(&w, 42, SPOP_FLAG_FIN, 0, 0);
	assert_int_equal(spop_frame_end(&w, start, MAXF), 0);
	f->inlen = (size_t)(w.p - f->in);
	expect_disconnect(f, SPOP_ST_INVALID);
}

static void test_partial_frame_waits(void **state)
{
	struct fx *f = *state;
	size_t consumed, full;

	put_good_hello(f);
	full = f->inlen;
	f->inlen = full - 1;
	assert_int_equal(run(f, &consumed), CONN_KEEP);
	assert_int_equal(consumed, 0);
	assert_int_equal(f->out.len, 0);
	assert_int_equal(f->c.state, CONN_ST_WAIT_HELLO);
	f->inlen = full;
	assert_int_equal(run(f, &consumed), CONN_KEEP);
	assert_int_equal(consumed, full);
}

static void test_pipelined_notifies(void **state)
{
	struct fx *f = *state;
	size_t consumed, pos = 0;
	struct spop_frame fr;
	struct spop_data d;
	uint64_t i;

	put_good_hello(f);
	put_notify(f, 7, 1, SPOP_FLAG_FIN, NULL);
	put_notify(f, 7, 2, SPOP_FLAG_FIN, "x");
	put_notify(f, 300000, 99999, SPOP_FLAG_FIN, NULL);
	assert_int_equal(run(f, &consumed), CONN_KEEP);
	assert_int_equal(consumed, f->inlen);
	assert_int_equal(next_out(f, &pos, &fr), SPOP_FRAME_AGENT_HELLO);
	for (i = 0; i < 3; i++) {
		static const uint64_t sids[] = { 7, 7, 300000 }, fids[] = { 1, 2, 99999 };

		assert_int_equal(next_out(f, &pos, &fr), SPOP_FRAME_ACK);
		assert_int_equal(fr.stream_id, sids[i]);
		assert_int_equal(fr.frame_id, fids[i]);
		assert_true(find_var(&fr, "present", &d));
		assert_int_equal(d.type, SPOP_T_BOOL);
		assert_int_equal(d.u.boolean, i == 1);
		assert_true(find_var(&fr, "action", &d));
		assert_str(&d, "allow");
		assert_true(find_var(&fr, "result", &d));
		assert_str(&d, "no_policy");
	}
	assert_int_equal(pos, f->out.len);
	assert_int_equal(f->c.counters.notify, 3);
}

static void test_unknown_message_still_acked(void **state)
{
	struct fx *f = *state;
	size_t consumed, pos = 0;
	struct spop_frame fr;
	struct spop_wr w;
	uint8_t *start;

	put_good_hello(f);
	spop_wr_init(&w, f->in + f->inlen, sizeof(f->in) - f->inlen);
	start = spop_frame_begin(&w, SPOP_FRAME_NOTIFY, SPOP_FLAG_FIN, 3, 4);
	spop_put_bytes(&w, "something-else", 14);
	spop_put_u8(&w, 0);
	assert_int_equal(spop_frame_end(&w, start, MAXF), 0);
	f->inlen = (size_t)(w.p - f->in);
	assert_int_equal(run(f, &consumed), CONN_KEEP);
	assert_int_equal(next_out(f, &pos, &fr), SPOP_FRAME_AGENT_HELLO);
	assert_int_equal(next_out(f, &pos, &fr), SPOP_FRAME_ACK);
	assert_int_equal(fr.stream_id, 3);
	assert_int_equal(fr.frame_id, 4);
	assert_int_equal(fr.payload_len, 0);
}

static void test_malformed_notify_payload(void **state)
{
	struct fx *f = *state;
	size_t consumed;
	struct spop_wr w;
	uint8_t *start;

	put_good_hello(f);
	assert_int_equal(run(f, &consumed), CONN_KEEP);
	f->inlen = 0;
	f->out.len = 0;
	spop_wr_init(&w, f->in, sizeof(f->in));
	start = spop_frame_begin(&w, SPOP_FRAME_NOTIFY, SPOP_FLAG_FIN, 1, 1);
	spop_put_bytes(&w, "check-client-cert", 17);
	spop_put_u8(&w, 3); /* three args announced, none present */
	assert_int_equal(spop_frame_end(&w, start, MAXF), 0);
	f->inlen = (size_t)(w.p - f->in);
	expect_disconnect(f, SPOP_ST_INVALID);
}

static void test_haproxy_disconnect(void **state)
{
	struct fx *f = *state;
	size_t consumed;
	struct spop_wr w;
	uint8_t *start;
	struct spop_data d;

	put_good_hello(f);
	assert_int_equal(run(f, &consumed), CONN_KEEP);
	f->inlen = 0;
	f->out.len = 0;
	spop_wr_init(&w, f->in, sizeof(f->in));
	start = spop_frame_begin(&w, SPOP_FRAME_HAPROXY_DISCONNECT, SPOP_FLAG_FIN, 0, 0);
	d = spop_uint32(0);
	spop_put_kv(&w, "status-code", &d);
	d = spop_cstr("normal");
	spop_put_kv(&w, "message", &d);
	assert_int_equal(spop_frame_end(&w, start, MAXF), 0);
	f->inlen = (size_t)(w.p - f->in);
	expect_disconnect(f, SPOP_ST_NORMAL);
}

static void test_output_limit(void **state)
{
	struct fx *f = *state;
	size_t consumed;
	int i;

	/* Room for the HELLO, one ACK and nothing more. */
	f->out.limit = MAXF + SPOP_LEN_PREFIX + 100;
	put_good_hello(f);
	for (i = 0; i < 4; i++)
		put_notify(f, 1, (uint64_t)i, SPOP_FLAG_FIN, NULL);
	assert_int_equal(run(f, &consumed), CONN_CLOSE_AFTER_FLUSH);
	assert_true(f->c.overflow);
	assert_true(obuf_pending(&f->out) <= f->out.limit);
}

static void test_input_after_close_ignored(void **state)
{
	struct fx *f = *state;
	size_t consumed;

	put_notify(f, 1, 1, SPOP_FLAG_FIN, NULL);
	put_good_hello(f);
	assert_int_equal(run(f, &consumed), CONN_CLOSE_AFTER_FLUSH);
	assert_int_equal(consumed, f->inlen);
	f->out.len = 0;
	assert_int_equal(run(f, &consumed), CONN_CLOSE_AFTER_FLUSH);
	assert_int_equal(f->out.len, 0);
}

/* A 200-byte host name: the head variables of its verdict (the policy
 * alone) exceed a 256-byte frame. */
#define LONG_HOST \
	"h123456789012345678901234567890123456789012345678901234567890.h12345678901234567890" \
	"1234567890123456789012345678901234567890.h1234567890123456789012345678901234567890" \
	"1234567890123456789012.long.example"

/* A check-client-cert-sni NOTIFY without a certificate for `sni`. */
static void put_sni_notify(struct fx *f, uint64_t sid, uint64_t fid, const char *sni)
{
	struct spop_wr w;
	uint8_t *start;
	struct spop_data d;

	spop_wr_init(&w, f->in + f->inlen, sizeof(f->in) - f->inlen);
	start = spop_frame_begin(&w, SPOP_FRAME_NOTIFY, SPOP_FLAG_FIN, sid, fid);
	spop_put_bytes(&w, "check-client-cert-sni", 21);
	spop_put_u8(&w, 1);
	d = spop_cstr(sni);
	spop_put_kv(&w, "sni", &d);
	assert_int_equal(spop_frame_end(&w, start, 256), 0);
	f->inlen = (size_t)(w.p - f->in);
}

/* With max-frame-size 256, an ACK whose full variable set cannot fit is
 * sent with action and result alone: the connection stays open (it used
 * to be "malformed NOTIFY" and an AGENT-DISCONNECT) and the next NOTIFY
 * is answered. */
static void test_ack_too_big_keeps_connection(void **state)
{
	struct fx *f = *state;
	struct config *cfg;
	char err[CONFIG_ERR_LEN];
	struct handler_env env = { .gen = 1 };
	size_t consumed, pos = 0;
	struct spop_frame fr;
	struct spop_data d;
	int i;

	assert_int_equal(strlen(LONG_HOST), 200);
	if (config_load_string("[host " LONG_HOST "]\nmode = deny\n", "/tmp/t.conf",
	                       &cfg, err, sizeof(err)) != 0)
		fail_msg("config: %s", err);
	env.cfg = cfg;
	put_hello(f, "2.0", 256, "pipelining", 0);
	put_sni_notify(f, 1, 1, LONG_HOST);
	put_sni_notify(f, 1, 2, LONG_HOST);
	assert_int_equal(conn_process(&f->c, &env, f->in, f->inlen, &consumed, &f->out),
	                 CONN_KEEP);
	assert_int_equal(consumed, f->inlen);
	assert_int_equal(f->c.state, CONN_ST_READY);
	assert_int_equal(f->c.max_frame, 256);
	assert_int_equal(next_out(f, &pos, &fr), SPOP_FRAME_AGENT_HELLO);
	for (i = 1; i <= 2; i++) {
		assert_int_equal(next_out(f, &pos, &fr), SPOP_FRAME_ACK);
		assert_int_equal(fr.frame_id, i);
		assert_true(fr.payload_len + 7 <= 256);
		assert_true(find_var(&fr, "action", &d));
		assert_str(&d, "deny");
		assert_true(find_var(&fr, "result", &d));
		assert_false(find_var(&fr, "policy", &d));
		assert_false(find_var(&fr, "present", &d));
	}
	assert_int_equal(pos, f->out.len);
	assert_int_equal(f->c.counters.notify, 2);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(test_hello_negotiates),
		T(test_hello_caps_at_our_max),
		T(test_hello_bad_version),
		T(test_hello_small_frame),
		T(test_hello_missing_version),
		T(test_hello_missing_frame_size),
		T(test_hello_missing_caps),
		T(test_healthcheck_closes),
		T(test_notify_before_hello),
		T(test_second_hello),
		T(test_frame_without_fin),
		T(test_frame_too_big),
		T(test_frame_len_zero),
		T(test_unknown_frame_type),
		T(test_partial_frame_waits),
		T(test_pipelined_notifies),
		T(test_unknown_message_still_acked),
		T(test_malformed_notify_payload),
		T(test_haproxy_disconnect),
		T(test_output_limit),
		T(test_input_after_close_ignored),
		T(test_ack_too_big_keeps_connection),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
