/*
 * test_spop.c - unit tests for the SPOP 2.0 codec (agent/spop.c).
 *
 * Spec vectors in both directions, round trips at every varint boundary,
 * every truncation of valid inputs (cursor must not move), malformed
 * inputs, byte-exact encoding of an ACK, and the HELLO helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "spop.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ------------------------------------------------------------ */

/* Encode v with the writer; returns the number of bytes. */
static size_t enc_varint(uint8_t *buf, size_t room, uint64_t v)
{
	struct spop_wr w;

	spop_wr_init(&w, buf, room);
	spop_put_varint(&w, v);
	assert_int_equal(w.err, 0);
	return (size_t)(w.p - buf);
}

/* Decode exactly [buf, buf+len) as one typed data item; must be OK and
 * consume everything. */
static struct spop_data dec_data_all(const uint8_t *buf, size_t len)
{
	const uint8_t *p = buf;
	struct spop_data d;

	assert_int_equal(spop_data_decode(&p, buf + len, &d), SPOP_RC_OK);
	assert_ptr_equal(p, buf + len);
	return d;
}

/* Every strict prefix of a valid typed data item is NEED_MORE and leaves
 * the cursor where it was. */
static void check_data_truncations(const uint8_t *buf, size_t len)
{
	size_t cut;

	for (cut = 0; cut < len; cut++) {
		const uint8_t *p = buf;
		struct spop_data d;

		assert_int_equal(spop_data_decode(&p, buf + cut, &d),
		                 SPOP_RC_NEED_MORE);
		assert_ptr_equal(p, buf);
	}
}

/* Round trip one value: encode, decode, compare the type, truncations. */
static struct spop_data data_roundtrip(const struct spop_data *in,
                                       uint8_t *buf, size_t room)
{
	struct spop_wr w;
	struct spop_data out;
	size_t n;

	spop_wr_init(&w, buf, room);
	spop_put_data(&w, in);
	assert_int_equal(w.err, 0);
	n = (size_t)(w.p - buf);
	out = dec_data_all(buf, n);
	assert_int_equal(out.type, in->type);
	check_data_truncations(buf, n);
	return out;
}

/* The HAPROXY-HELLO frame as HAProxy 2.6 sends it (plus healthcheck). */
struct hello_frame {
	uint8_t buf[256];
	size_t len;
	/* Payload offsets where a KV item ends (valid truncation points). */
	size_t bounds[8];
	size_t nbounds;
};

static void build_hello(struct hello_frame *hf, int healthcheck)
{
	struct spop_wr w;
	struct spop_data v;
	uint8_t *start, *payload;

	memset(hf, 0, sizeof(*hf));
	spop_wr_init(&w, hf->buf, sizeof(hf->buf));
	start = spop_frame_begin(&w, SPOP_FRAME_HAPROXY_HELLO, SPOP_FLAG_FIN,
	                         0, 0);
	payload = w.p;
	hf->bounds[hf->nbounds++] = 0;
	v = spop_cstr("2.0");
	spop_put_kv(&w, "supported-versions", &v);
	hf->bounds[hf->nbounds++] = (size_t)(w.p - payload);
	v = spop_uint32(16380);
	spop_put_kv(&w, "max-frame-size", &v);
	hf->bounds[hf->nbounds++] = (size_t)(w.p - payload);
	v = spop_cstr("pipelining,async");
	spop_put_kv(&w, "capabilities", &v);
	hf->bounds[hf->nbounds++] = (size_t)(w.p - payload);
	v = spop_bool(healthcheck);
	spop_put_kv(&w, "healthcheck", &v);
	hf->bounds[hf->nbounds++] = (size_t)(w.p - payload);
	v = spop_cstr("abc");
	spop_put_kv(&w, "engine-id", &v);
	hf->bounds[hf->nbounds++] = (size_t)(w.p - payload);
	assert_int_equal(spop_frame_end(&w, start, SPOP_DEFAULT_FRAME_SIZE), 0);
	hf->len = (size_t)(w.p - hf->buf);
}

static int is_bound(const struct hello_frame *hf, size_t off)
{
	size_t i;

	for (i = 0; i < hf->nbounds; i++)
		if (hf->bounds[i] == off)
			return 1;
	return 0;
}

static const uint8_t der_cert[] = { 0x30, 0x82, 0x00, 0x00, 0x00, 0x01, 0x02 };

/*
 * A NOTIFY with two messages: "check-client-cert" with four args, one of
 * them with an empty name, and "no-args" with 0 args.
 */
static size_t build_notify(uint8_t *buf, size_t room, size_t *msg1_len)
{
	struct spop_wr w;
	struct spop_data v;
	uint8_t *start, *payload;

	spop_wr_init(&w, buf, room);
	start = spop_frame_begin(&w, SPOP_FRAME_NOTIFY, SPOP_FLAG_FIN, 1000, 7);
	payload = w.p;
	spop_put_bytes(&w, "check-client-cert", 17);
	spop_put_u8(&w, 4);
	v = spop_bin(der_cert, sizeof(der_cert));
	spop_put_kv(&w, "cert", &v);
	v = spop_null();
	spop_put_kv(&w, "", &v);
	v = spop_cstr("example.com");
	spop_put_kv(&w, "sni", &v);
	v = spop_cstr("example.com:8443");
	spop_put_kv(&w, "host", &v);
	*msg1_len = (size_t)(w.p - payload);
	spop_put_bytes(&w, "no-args", 7);
	spop_put_u8(&w, 0);
	assert_int_equal(spop_frame_end(&w, start, SPOP_DEFAULT_FRAME_SIZE), 0);
	return (size_t)(w.p - buf);
}

static int kv_name_is(const struct spop_kv *kv, const char *s)
{
	return kv->name_len == strlen(s) && memcmp(kv->name, s, kv->name_len) == 0;
}

/* ---- varints ------------------------------------------------------------ */

struct varint_vec {
	uint64_t v;
	uint8_t bytes[SPOP_VARINT_MAX_LEN];
	size_t len;
};

/* SPOE.txt 3.1 / issue 2 vectors. */
static const struct varint_vec spec_vectors[] = {
	{ 0, { 0x00 }, 1 },
	{ 239, { 0xEF }, 1 },
	{ 240, { 0xF0, 0x00 }, 2 },
	{ 1000, { 0xF8, 0x2F }, 2 },
	{ 16380, { 0xFC, 0xF0, 0x06 }, 3 },
	{ 2288, { 0xF0, 0x80, 0x00 }, 3 },
	{ UINT64_MAX,
	  { 0xFF, 0xF0, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0x0E }, 10 },
};

static void test_varint_spec_vectors_encode(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(spec_vectors); i++) {
		uint8_t buf[16];
		size_t n = enc_varint(buf, sizeof(buf), spec_vectors[i].v);

		assert_int_equal(n, spec_vectors[i].len);
		assert_memory_equal(buf, spec_vectors[i].bytes, n);
		assert_int_equal(spop_varint_len(spec_vectors[i].v), n);
	}
}

static void test_varint_spec_vectors_decode(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(spec_vectors); i++) {
		const uint8_t *b = spec_vectors[i].bytes;
		const uint8_t *p = b;
		uint64_t v = 12345;

		assert_int_equal(spop_varint_decode(&p, b + spec_vectors[i].len, &v),
		                 SPOP_RC_OK);
		assert_true(v == spec_vectors[i].v);
		assert_ptr_equal(p, b + spec_vectors[i].len);
	}
}

static void test_varint_decode_stops_at_end_of_varint(void **state)
{
	/* 1000 followed by unrelated bytes: only 2 bytes are consumed. */
	static const uint8_t b[] = { 0xF8, 0x2F, 0xFF, 0xFF };
	const uint8_t *p = b;
	uint64_t v;

	(void)state;
	assert_int_equal(spop_varint_decode(&p, b + sizeof(b), &v), SPOP_RC_OK);
	assert_true(v == 1000);
	assert_ptr_equal(p, b + 2);
}

static void test_varint_roundtrip_boundaries(void **state)
{
	static const struct {
		uint64_t v;
		size_t len;
	} vals[] = {
		{ 0, 1 }, { 239, 1 }, { 240, 2 }, { 2287, 2 }, { 2288, 3 },
		{ 264431, 3 }, { 264432, 4 }, { 33818863, 4 }, { 33818864, 5 },
		{ UINT32_MAX, 5 }, { (uint64_t)UINT32_MAX + 1, 5 },
		{ (uint64_t)1 << 63, 10 }, { UINT64_MAX, 10 },
	};
	size_t i, cut;

	(void)state;
	for (i = 0; i < ARRAY_LEN(vals); i++) {
		uint8_t buf[SPOP_VARINT_MAX_LEN];
		const uint8_t *p = buf;
		uint64_t out = 0;
		size_t n = enc_varint(buf, sizeof(buf), vals[i].v);

		assert_int_equal(n, vals[i].len);
		assert_int_equal(spop_varint_len(vals[i].v), n);
		assert_int_equal(spop_varint_decode(&p, buf + n, &out), SPOP_RC_OK);
		assert_true(out == vals[i].v);
		assert_ptr_equal(p, buf + n);
		for (cut = 0; cut < n; cut++) {
			p = buf;
			assert_int_equal(spop_varint_decode(&p, buf + cut, &out),
			                 SPOP_RC_NEED_MORE);
			assert_ptr_equal(p, buf);
		}
	}
}

static void test_varint_empty_is_need_more(void **state)
{
	static const uint8_t b[1] = { 0 };
	const uint8_t *p = b;
	uint64_t v;

	(void)state;
	assert_int_equal(spop_varint_decode(&p, b, &v), SPOP_RC_NEED_MORE);
	assert_ptr_equal(p, b);
}

static void test_varint_11_bytes_rejected(void **state)
{
	/* 10 bytes all with a continuation, then a terminator: 11 bytes. */
	static const uint8_t b[] = { 0xF0, 0x80, 0x80, 0x80, 0x80, 0x80,
	                             0x80, 0x80, 0x80, 0x80, 0x00 };
	const uint8_t *p = b;
	uint64_t v;

	(void)state;
	assert_int_equal(spop_varint_decode(&p, b + sizeof(b), &v),
	                 SPOP_RC_MALFORMED);
	assert_ptr_equal(p, b);
	/* Already malformed with only the first 10 bytes: no "need more". */
	assert_int_equal(spop_varint_decode(&p, b + 10, &v), SPOP_RC_MALFORMED);
	assert_ptr_equal(p, b);
	/* With 9 bytes it may still end on the 10th: need more. */
	assert_int_equal(spop_varint_decode(&p, b + 9, &v), SPOP_RC_NEED_MORE);
	assert_ptr_equal(p, b);
}

static void test_varint_overflow_rejected(void **state)
{
	/* UINT64_MAX + 1: the 10th byte's bits go past bit 63. */
	static const uint8_t shift_ovf[] = { 0xFF, 0xF0, 0xFE, 0xFE, 0xFE,
	                                     0xFE, 0xFE, 0xFE, 0xFE, 0x0F };
	/* UINT64_MAX + 16: no bit shifted out, but the sum carries. */
	static const uint8_t carry_ovf[] = { 0xFF, 0xF1, 0xFE, 0xFE, 0xFE,
	                                     0xFE, 0xFE, 0xFE, 0xFE, 0x0E };
	/* 10th byte 0x10: its bit 4 lands exactly on bit 64 and would vanish
	 * without a carry if the shift were not checked. */
	static const uint8_t lost_bit[] = { 0xF0, 0x80, 0x80, 0x80, 0x80,
	                                    0x80, 0x80, 0x80, 0x80, 0x10 };
	/* 10th byte 0x7F: far out of range. */
	static const uint8_t big[] = { 0xF0, 0x80, 0x80, 0x80, 0x80,
	                               0x80, 0x80, 0x80, 0x80, 0x7F };
	const uint8_t *p;
	uint64_t v;

	(void)state;
	p = shift_ovf;
	assert_int_equal(spop_varint_decode(&p, shift_ovf + sizeof(shift_ovf), &v),
	                 SPOP_RC_MALFORMED);
	assert_ptr_equal(p, shift_ovf);
	p = carry_ovf;
	assert_int_equal(spop_varint_decode(&p, carry_ovf + sizeof(carry_ovf), &v),
	                 SPOP_RC_MALFORMED);
	assert_ptr_equal(p, carry_ovf);
	p = lost_bit;
	assert_int_equal(spop_varint_decode(&p, lost_bit + sizeof(lost_bit), &v),
	                 SPOP_RC_MALFORMED);
	assert_ptr_equal(p, lost_bit);
	p = big;
	assert_int_equal(spop_varint_decode(&p, big + sizeof(big), &v),
	                 SPOP_RC_MALFORMED);
	assert_ptr_equal(p, big);
}

/* ---- byte strings ------------------------------------------------------- */

static void test_bytes_decode_and_truncations(void **state)
{
	static const uint8_t b[] = { 0x03, 'a', 'b', 'c', 0x99 };
	const uint8_t *p = b, *s = NULL;
	size_t len = 0, cut;

	(void)state;
	assert_int_equal(spop_bytes_decode(&p, b + sizeof(b), &s, &len), SPOP_RC_OK);
	assert_int_equal(len, 3);
	assert_ptr_equal(s, b + 1);
	assert_ptr_equal(p, b + 4);
	for (cut = 0; cut < 4; cut++) {
		p = b;
		assert_int_equal(spop_bytes_decode(&p, b + cut, &s, &len),
		                 SPOP_RC_NEED_MORE);
		assert_ptr_equal(p, b);
	}
}

static void test_bytes_decode_huge_length(void **state)
{
	/* Length UINT64_MAX must not wrap a pointer: it is just "need more". */
	static const uint8_t b[] = { 0xFF, 0xF0, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE,
	                             0xFE, 0xFE, 0x0E, 'x', 'y' };
	const uint8_t *p = b, *s;
	size_t len;

	(void)state;
	assert_int_equal(spop_bytes_decode(&p, b + sizeof(b), &s, &len),
	                 SPOP_RC_NEED_MORE);
	assert_ptr_equal(p, b);
}

/* ---- typed data --------------------------------------------------------- */

static void test_data_null_roundtrip(void **state)
{
	uint8_t buf[8];
	struct spop_data in = spop_null();

	(void)state;
	data_roundtrip(&in, buf, sizeof(buf));
	assert_int_equal(buf[0], 0x00);
}

static void test_data_bool_roundtrip(void **state)
{
	uint8_t buf[8];
	struct spop_data in, out;

	(void)state;
	in = spop_bool(1);
	out = data_roundtrip(&in, buf, sizeof(buf));
	assert_int_equal(buf[0], 0x11);
	assert_int_equal(out.u.boolean, 1);
	in = spop_bool(0);
	out = data_roundtrip(&in, buf, sizeof(buf));
	assert_int_equal(buf[0], 0x01);
	assert_int_equal(out.u.boolean, 0);
	/* Any non-zero int is true and is normalised to 1. */
	in = spop_bool(42);
	assert_int_equal(in.u.boolean, 1);
}

static void test_data_bool_uses_first_flag_bit_only(void **state)
{
	static const uint8_t t1[] = { 0x31 }, f1[] = { 0x21 }, f2[] = { 0xE1 };

	(void)state;
	assert_int_equal(dec_data_all(t1, 1).u.boolean, 1);
	assert_int_equal(dec_data_all(f1, 1).u.boolean, 0);
	assert_int_equal(dec_data_all(f2, 1).u.boolean, 0);
}

static void test_data_int32_roundtrip(void **state)
{
	static const int32_t vals[] = { 0, 1, -1, 239, 240, INT32_MIN, INT32_MAX };
	uint8_t buf[16];
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(vals); i++) {
		struct spop_data in = spop_int32(vals[i]);
		struct spop_data out = data_roundtrip(&in, buf, sizeof(buf));

		assert_int_equal(buf[0], SPOP_T_INT32);
		assert_true(out.u.sint == vals[i]);
	}
}

static void test_data_int32_wire_is_sign_extended(void **state)
{
	/* HAProxy encodes -1 as the 64-bit pattern: 10-byte varint. */
	uint8_t buf[16];
	struct spop_data in = spop_int32(-1);
	struct spop_wr w;

	(void)state;
	spop_wr_init(&w, buf, sizeof(buf));
	spop_put_data(&w, &in);
	assert_int_equal(w.err, 0);
	assert_int_equal(w.p - buf, 1 + 10);
	assert_memory_equal(buf + 1,
	                    ((const uint8_t[]){ 0xFF, 0xF0, 0xFE, 0xFE, 0xFE, 0xFE,
	                                        0xFE, 0xFE, 0xFE, 0x0E }), 10);
}

static void test_data_uint32_roundtrip(void **state)
{
	static const uint32_t vals[] = { 0, 239, 240, 16380, UINT32_MAX };
	uint8_t buf[16];
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(vals); i++) {
		struct spop_data in = spop_uint32(vals[i]);
		struct spop_data out = data_roundtrip(&in, buf, sizeof(buf));

		assert_int_equal(buf[0], SPOP_T_UINT32);
		assert_true(out.u.uint == vals[i]);
	}
}

static void test_data_int64_roundtrip(void **state)
{
	static const int64_t vals[] = { 0, -1, INT64_MIN, INT64_MAX,
	                                (int64_t)INT32_MIN - 1 };
	uint8_t buf[16];
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(vals); i++) {
		struct spop_data in = spop_sint(vals[i]);
		struct spop_data out = data_roundtrip(&in, buf, sizeof(buf));

		assert_int_equal(buf[0], SPOP_T_INT64);
		assert_true(out.u.sint == vals[i]);
	}
}

static void test_data_uint64_roundtrip(void **state)
{
	static const uint64_t vals[] = { 0, 240, (uint64_t)1 << 63, UINT64_MAX };
	uint8_t buf[16];
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(vals); i++) {
		struct spop_data in = spop_uint(vals[i]);
		struct spop_data out = data_roundtrip(&in, buf, sizeof(buf));

		assert_int_equal(buf[0], SPOP_T_UINT64);
		assert_true(out.u.uint == vals[i]);
	}
}

static void test_data_ipv4_roundtrip(void **state)
{
	static const uint8_t ip[4] = { 127, 0, 0, 1 };
	uint8_t buf[16];
	struct spop_data in = spop_null(), out;

	(void)state;
	in.type = SPOP_T_IPV4;
	memcpy(in.u.ipv4, ip, 4);
	out = data_roundtrip(&in, buf, sizeof(buf));
	assert_int_equal(buf[0], SPOP_T_IPV4);
	assert_memory_equal(out.u.ipv4, ip, 4);
}

static void test_data_ipv6_roundtrip(void **state)
{
	static const uint8_t ip[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
	                                0, 0, 0, 0, 0, 0, 0xbe, 0xef };
	uint8_t buf[32];
	struct spop_data in = spop_null(), out;

	(void)state;
	in.type = SPOP_T_IPV6;
	memcpy(in.u.ipv6, ip, 16);
	out = data_roundtrip(&in, buf, sizeof(buf));
	assert_int_equal(buf[0], SPOP_T_IPV6);
	assert_memory_equal(out.u.ipv6, ip, 16);
}

static void test_data_string_roundtrip(void **state)
{
	uint8_t buf[512];
	char big[300];
	struct spop_data in, out;

	(void)state;
	in = spop_cstr("");
	out = data_roundtrip(&in, buf, sizeof(buf));
	assert_int_equal(out.u.buf.len, 0);
	assert_memory_equal(buf, ((const uint8_t[]){ 0x08, 0x00 }), 2);

	in = spop_cstr("example.com");
	out = data_roundtrip(&in, buf, sizeof(buf));
	assert_int_equal(out.u.buf.len, 11);
	assert_memory_equal(out.u.buf.ptr, "example.com", 11);
	assert_ptr_equal(out.u.buf.ptr, buf + 2);

	/* A length that needs a 2-byte varint. */
	memset(big, 'z', sizeof(big));
	in = spop_str(big, sizeof(big));
	out = data_roundtrip(&in, buf, sizeof(buf));
	assert_int_equal(out.u.buf.len, sizeof(big));
	assert_memory_equal(out.u.buf.ptr, big, sizeof(big));
}

static void test_data_binary_with_nul_roundtrip(void **state)
{
	static const uint8_t bin[] = { 0x00, 0x30, 0x00, 0x82, 0xFF, 0x00 };
	uint8_t buf[32];
	struct spop_data in = spop_bin(bin, sizeof(bin)), out;

	(void)state;
	out = data_roundtrip(&in, buf, sizeof(buf));
	assert_int_equal(buf[0], SPOP_T_BINARY);
	assert_int_equal(out.u.buf.len, sizeof(bin));
	assert_memory_equal(out.u.buf.ptr, bin, sizeof(bin));
}

static void test_data_bad_types_rejected(void **state)
{
	unsigned int t, flags;

	(void)state;
	for (t = 10; t <= 15; t++) {
		for (flags = 0; flags < 16; flags++) {
			uint8_t b[4] = { (uint8_t)(t | (flags << 4)), 0, 0, 0 };
			const uint8_t *p = b;
			struct spop_data d;

			assert_int_equal(spop_data_decode(&p, b + sizeof(b), &d),
			                 SPOP_RC_MALFORMED);
			assert_ptr_equal(p, b);
		}
	}
}

static void test_data_int32_out_of_range_rejected(void **state)
{
	uint8_t b[16];
	const uint8_t *p;
	struct spop_data d;
	size_t n;
	static const uint64_t bad_int32[] = {
		(uint64_t)INT32_MAX + 1,
		(uint64_t)((int64_t)INT32_MIN - 1),
		UINT32_MAX, /* -1 zero-extended instead of sign-extended */
		UINT64_MAX >> 1,
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(bad_int32); i++) {
		b[0] = SPOP_T_INT32;
		n = 1 + enc_varint(b + 1, sizeof(b) - 1, bad_int32[i]);
		p = b;
		assert_int_equal(spop_data_decode(&p, b + n, &d), SPOP_RC_MALFORMED);
		assert_ptr_equal(p, b);
		/* The same bits as INT64 are fine. */
		b[0] = SPOP_T_INT64;
		assert_int_equal(spop_data_decode(&p, b + n, &d), SPOP_RC_OK);
	}
	/* UINT32 above 2^32-1. */
	b[0] = SPOP_T_UINT32;
	n = 1 + enc_varint(b + 1, sizeof(b) - 1, (uint64_t)UINT32_MAX + 1);
	p = b;
	assert_int_equal(spop_data_decode(&p, b + n, &d), SPOP_RC_MALFORMED);
	assert_ptr_equal(p, b);
}

static void test_data_bad_varint_inside_is_malformed(void **state)
{
	static const uint8_t b[] = { SPOP_T_UINT64, 0xF0, 0x80, 0x80, 0x80, 0x80,
	                             0x80, 0x80, 0x80, 0x80, 0x80, 0x00 };
	const uint8_t *p = b;
	struct spop_data d;

	(void)state;
	assert_int_equal(spop_data_decode(&p, b + sizeof(b), &d),
	                 SPOP_RC_MALFORMED);
	assert_ptr_equal(p, b);
}

/* ---- KV items ----------------------------------------------------------- */

static void test_kv_next_and_truncations(void **state)
{
	uint8_t buf[64];
	struct spop_wr w;
	struct spop_data v = spop_cstr("v");
	struct spop_kv kv;
	const uint8_t *p;
	size_t n, cut;

	(void)state;
	spop_wr_init(&w, buf, sizeof(buf));
	spop_put_kv(&w, "key", &v);
	assert_int_equal(w.err, 0);
	n = (size_t)(w.p - buf);
	assert_memory_equal(buf, "\x03key\x08\x01v", n);
	p = buf;
	assert_int_equal(spop_kv_next(&p, buf + n, &kv), SPOP_RC_OK);
	assert_true(kv_name_is(&kv, "key"));
	assert_int_equal(kv.value.type, SPOP_T_STRING);
	assert_ptr_equal(p, buf + n);
	for (cut = 0; cut < n; cut++) {
		p = buf;
		assert_int_equal(spop_kv_next(&p, buf + cut, &kv), SPOP_RC_NEED_MORE);
		assert_ptr_equal(p, buf);
	}
}

static void test_kv_empty_name(void **state)
{
	static const uint8_t b[] = { 0x00, 0x11 };
	const uint8_t *p = b;
	struct spop_kv kv;

	(void)state;
	assert_int_equal(spop_kv_next(&p, b + sizeof(b), &kv), SPOP_RC_OK);
	assert_int_equal(kv.name_len, 0);
	assert_int_equal(kv.value.type, SPOP_T_BOOL);
	assert_int_equal(kv.value.u.boolean, 1);
}

/* ---- frames ------------------------------------------------------------- */

/* A hand-written NOTIFY frame, independent of the writer. */
static const uint8_t hand_notify[] = {
	0x00, 0x00, 0x00, 0x13,             /* length 19 */
	0x03,                               /* NOTIFY */
	0x00, 0x00, 0x00, 0x01,             /* FIN */
	0xF8, 0x2F,                         /* stream-id 1000 */
	0x05,                               /* frame-id 5 */
	0x04, 'm', 's', 'g', '1',           /* message name */
	0x01,                               /* 1 arg */
	0x03, 's', 'n', 'i',                /* arg name */
	0x00,                               /* NULL */
};

static void test_frame_decode_hand_written(void **state)
{
	uint8_t buf[sizeof(hand_notify) + 3];
	const uint8_t *p = buf, *q;
	struct spop_frame f;
	struct spop_msg m;
	struct spop_kv kv;

	(void)state;
	/* Trailing bytes of the next frame are left alone. */
	memcpy(buf, hand_notify, sizeof(hand_notify));
	memset(buf + sizeof(hand_notify), 0, 3);
	assert_int_equal(spop_frame_decode(&p, buf + sizeof(buf), 16380, &f),
	                 SPOP_RC_OK);
	assert_ptr_equal(p, buf + sizeof(hand_notify));
	assert_int_equal(f.type, SPOP_FRAME_NOTIFY);
	assert_int_equal(f.flags, SPOP_FLAG_FIN);
	assert_true(f.stream_id == 1000);
	assert_true(f.frame_id == 5);
	assert_ptr_equal(f.payload, buf + 12);
	assert_int_equal(f.payload_len, sizeof(hand_notify) - 12);

	q = f.payload;
	assert_int_equal(spop_msg_next(&q, f.payload + f.payload_len, &m),
	                 SPOP_RC_OK);
	assert_ptr_equal(q, f.payload + f.payload_len);
	assert_int_equal(m.name_len, 4);
	assert_memory_equal(m.name, "msg1", 4);
	assert_int_equal(m.nargs, 1);
	q = m.args;
	assert_int_equal(spop_kv_next(&q, m.args_end, &kv), SPOP_RC_OK);
	assert_true(kv_name_is(&kv, "sni"));
	assert_int_equal(kv.value.type, SPOP_T_NULL);
	assert_ptr_equal(q, m.args_end);
}

static void test_frame_flags_big_endian(void **state)
{
	uint8_t buf[64];
	struct spop_wr w;
	struct spop_frame f;
	const uint8_t *p = buf;
	uint8_t *start;

	(void)state;
	spop_wr_init(&w, buf, sizeof(buf));
	start = spop_frame_begin(&w, SPOP_FRAME_ACK, 0x01020304u, UINT64_MAX,
	                         (uint64_t)1 << 40);
	assert_int_equal(spop_frame_end(&w, start, 16380), 0);
	assert_memory_equal(buf + 4, ((const uint8_t[]){ 103, 1, 2, 3, 4 }), 5);
	assert_int_equal(spop_frame_decode(&p, w.p, 16380, &f), SPOP_RC_OK);
	assert_int_equal(f.flags, 0x01020304u);
	assert_true(f.stream_id == UINT64_MAX);
	assert_true(f.frame_id == (uint64_t)1 << 40);
	assert_int_equal(f.payload_len, 0);
	/* length = 1 + 4 + 10 + 7 */
	assert_memory_equal(buf, ((const uint8_t[]){ 0, 0, 0, 22 }), 4);
}

static void test_hello_frame_decoded(void **state)
{
	struct hello_frame hf;
	struct spop_frame f;
	struct spop_hello h;
	const uint8_t *p;

	(void)state;
	build_hello(&hf, 0);
	p = hf.buf;
	assert_int_equal(spop_frame_decode(&p, hf.buf + hf.len, 16380, &f),
	                 SPOP_RC_OK);
	assert_ptr_equal(p, hf.buf + hf.len);
	assert_int_equal(f.type, SPOP_FRAME_HAPROXY_HELLO);
	assert_int_equal(f.flags, SPOP_FLAG_FIN);
	assert_true(f.stream_id == 0 && f.frame_id == 0);
	/* 4-byte big-endian length covers everything after the prefix. */
	assert_int_equal(((size_t)hf.buf[2] << 8) | hf.buf[3], hf.len - 4);
	assert_int_equal(hf.buf[0] | hf.buf[1], 0);

	assert_int_equal(spop_hello_decode(f.payload, f.payload_len, &h),
	                 SPOP_RC_OK);
	assert_true(h.has_versions);
	assert_int_equal(h.versions_len, 3);
	assert_memory_equal(h.versions, "2.0", 3);
	assert_true(h.has_max_frame_size);
	assert_true(h.max_frame_size == 16380);
	assert_true(h.has_capabilities);
	assert_int_equal(h.capabilities_len, 16);
	assert_memory_equal(h.capabilities, "pipelining,async", 16);
	assert_int_equal(h.healthcheck, 0);
	assert_non_null(h.engine_id);
	assert_int_equal(h.engine_id_len, 3);
	assert_memory_equal(h.engine_id, "abc", 3);
	assert_true(spop_versions_have_v2(h.versions, h.versions_len));
	assert_true(spop_caps_have(h.capabilities, h.capabilities_len,
	                           "pipelining"));
	assert_true(spop_caps_have(h.capabilities, h.capabilities_len, "async"));
	assert_false(spop_caps_have(h.capabilities, h.capabilities_len,
	                            "fragmentation"));
}

static void test_hello_healthcheck_true(void **state)
{
	struct hello_frame hf;
	struct spop_frame f;
	struct spop_hello h;
	const uint8_t *p;

	(void)state;
	build_hello(&hf, 1);
	p = hf.buf;
	assert_int_equal(spop_frame_decode(&p, hf.buf + hf.len, 16380, &f),
	                 SPOP_RC_OK);
	assert_int_equal(spop_hello_decode(f.payload, f.payload_len, &h),
	                 SPOP_RC_OK);
	assert_int_equal(h.healthcheck, 1);
}

static void test_hello_frame_every_truncation_need_more(void **state)
{
	struct hello_frame hf;
	struct spop_frame f;
	size_t cut;

	(void)state;
	build_hello(&hf, 0);
	for (cut = 0; cut < hf.len; cut++) {
		const uint8_t *p = hf.buf;

		assert_int_equal(spop_frame_decode(&p, hf.buf + cut, 16380, &f),
		                 SPOP_RC_NEED_MORE);
		assert_ptr_equal(p, hf.buf);
	}
}

static void test_hello_payload_every_truncation(void **state)
{
	struct hello_frame hf;
	struct spop_frame f;
	struct spop_hello h;
	const uint8_t *p;
	size_t cut;

	(void)state;
	build_hello(&hf, 1);
	p = hf.buf;
	assert_int_equal(spop_frame_decode(&p, hf.buf + hf.len, 16380, &f),
	                 SPOP_RC_OK);
	assert_int_equal(hf.bounds[hf.nbounds - 1], f.payload_len);
	for (cut = 0; cut < f.payload_len; cut++) {
		enum spop_rc rc = spop_hello_decode(f.payload, cut, &h);

		if (is_bound(&hf, cut)) {
			/* A shorter but well-formed KV-LIST. */
			assert_int_equal(rc, SPOP_RC_OK);
			assert_int_equal(h.has_versions, cut >= hf.bounds[1]);
			assert_int_equal(h.has_max_frame_size, cut >= hf.bounds[2]);
			assert_int_equal(h.has_capabilities, cut >= hf.bounds[3]);
			assert_int_equal(h.healthcheck, cut >= hf.bounds[4]);
			assert_null(h.engine_id);
		} else {
			assert_int_equal(rc, SPOP_RC_MALFORMED);
			/* Nothing half-parsed is left behind. */
			assert_int_equal(h.has_versions, 0);
			assert_null(h.versions);
		}
	}
}

static void test_notify_every_truncation_need_more(void **state)
{
	uint8_t buf[256];
	struct spop_frame f;
	size_t len, msg1, cut;

	(void)state;
	len = build_notify(buf, sizeof(buf), &msg1);
	for (cut = 0; cut < len; cut++) {
		const uint8_t *p = buf;

		assert_int_equal(spop_frame_decode(&p, buf + cut, 16380, &f),
		                 SPOP_RC_NEED_MORE);
		assert_ptr_equal(p, buf);
	}
}

static void test_notify_two_messages_walk(void **state)
{
	uint8_t buf[256];
	struct spop_frame f;
	struct spop_msg m;
	struct spop_kv kv;
	const uint8_t *p = buf, *q, *pend;
	size_t len, msg1;

	(void)state;
	len = build_notify(buf, sizeof(buf), &msg1);
	assert_int_equal(spop_frame_decode(&p, buf + len, 16380, &f), SPOP_RC_OK);
	assert_int_equal(f.type, SPOP_FRAME_NOTIFY);
	assert_true(f.stream_id == 1000 && f.frame_id == 7);
	pend = f.payload + f.payload_len;

	q = f.payload;
	assert_int_equal(spop_msg_next(&q, pend, &m), SPOP_RC_OK);
	assert_ptr_equal(q, f.payload + msg1);
	assert_int_equal(m.name_len, 17);
	assert_memory_equal(m.name, "check-client-cert", 17);
	assert_int_equal(m.nargs, 4);
	{
		const uint8_t *a = m.args;

		assert_int_equal(spop_kv_next(&a, m.args_end, &kv), SPOP_RC_OK);
		assert_true(kv_name_is(&kv, "cert"));
		assert_int_equal(kv.value.type, SPOP_T_BINARY);
		assert_int_equal(kv.value.u.buf.len, sizeof(der_cert));
		assert_memory_equal(kv.value.u.buf.ptr, der_cert, sizeof(der_cert));
		assert_int_equal(spop_kv_next(&a, m.args_end, &kv), SPOP_RC_OK);
		assert_int_equal(kv.name_len, 0);
		assert_int_equal(kv.value.type, SPOP_T_NULL);
		assert_int_equal(spop_kv_next(&a, m.args_end, &kv), SPOP_RC_OK);
		assert_true(kv_name_is(&kv, "sni"));
		assert_int_equal(kv.value.type, SPOP_T_STRING);
		assert_int_equal(spop_kv_next(&a, m.args_end, &kv), SPOP_RC_OK);
		assert_true(kv_name_is(&kv, "host"));
		assert_int_equal(kv.value.u.buf.len, 16);
		assert_ptr_equal(a, m.args_end);
	}

	assert_int_equal(spop_msg_next(&q, pend, &m), SPOP_RC_OK);
	assert_int_equal(m.name_len, 7);
	assert_memory_equal(m.name, "no-args", 7);
	assert_int_equal(m.nargs, 0);
	assert_ptr_equal(m.args, m.args_end);
	assert_ptr_equal(q, pend);

	/* No message left: a call at the end is not a message. */
	assert_int_equal(spop_msg_next(&q, pend, &m), SPOP_RC_MALFORMED);
	assert_ptr_equal(q, pend);
}

static void test_notify_payload_every_truncation_malformed(void **state)
{
	uint8_t buf[256];
	struct spop_frame f;
	struct spop_msg m;
	const uint8_t *p = buf;
	size_t len, msg1, cut;

	(void)state;
	len = build_notify(buf, sizeof(buf), &msg1);
	assert_int_equal(spop_frame_decode(&p, buf + len, 16380, &f), SPOP_RC_OK);
	/* Every cut inside the first message. */
	for (cut = 0; cut < msg1; cut++) {
		const uint8_t *q = f.payload;

		assert_int_equal(spop_msg_next(&q, f.payload + cut, &m),
		                 SPOP_RC_MALFORMED);
		assert_ptr_equal(q, f.payload);
	}
	/* Every cut inside the second message. */
	for (cut = msg1; cut < f.payload_len; cut++) {
		const uint8_t *q = f.payload + msg1;

		assert_int_equal(spop_msg_next(&q, f.payload + cut, &m),
		                 SPOP_RC_MALFORMED);
		assert_ptr_equal(q, f.payload + msg1);
	}
}

static void test_msg_with_bad_arg_malformed(void **state)
{
	/* Declares 2 args, holds 1; then one with a reserved type. */
	static const uint8_t short_args[] = { 0x01, 'm', 0x02, 0x01, 'a', 0x00 };
	static const uint8_t bad_type[] = { 0x01, 'm', 0x01, 0x01, 'a', 0x0A };
	const uint8_t *q;
	struct spop_msg m;

	(void)state;
	q = short_args;
	assert_int_equal(spop_msg_next(&q, short_args + sizeof(short_args), &m),
	                 SPOP_RC_MALFORMED);
	assert_ptr_equal(q, short_args);
	q = bad_type;
	assert_int_equal(spop_msg_next(&q, bad_type + sizeof(bad_type), &m),
	                 SPOP_RC_MALFORMED);
	assert_ptr_equal(q, bad_type);
}

static void test_frame_too_big(void **state)
{
	/* Only the prefix is there: TOO_BIG is known at once. */
	static const uint8_t big[] = { 0x00, 0x00, 0x3F, 0xFD };    /* 16381 */
	static const uint8_t huge[] = { 0xFF, 0xFF, 0xFF, 0xFF };
	static const uint8_t exact[] = { 0x00, 0x00, 0x3F, 0xFC };  /* 16380 */
	const uint8_t *p;
	struct spop_frame f;

	(void)state;
	p = big;
	assert_int_equal(spop_frame_decode(&p, big + 4, 16380, &f),
	                 SPOP_RC_TOO_BIG);
	assert_ptr_equal(p, big);
	p = huge;
	assert_int_equal(spop_frame_decode(&p, huge + 4, 16380, &f),
	                 SPOP_RC_TOO_BIG);
	assert_ptr_equal(p, huge);
	p = exact;
	assert_int_equal(spop_frame_decode(&p, exact + 4, 16380, &f),
	                 SPOP_RC_NEED_MORE);
	assert_ptr_equal(p, exact);
	/* A smaller negotiated size applies. */
	p = exact;
	assert_int_equal(spop_frame_decode(&p, exact + 4, 256, &f),
	                 SPOP_RC_TOO_BIG);
}

static void test_frame_zero_and_short_length_malformed(void **state)
{
	static const uint8_t zero[] = { 0, 0, 0, 0 };
	static const uint8_t six[] = { 0, 0, 0, 6, 3, 0, 0, 0, 1, 0 };
	const uint8_t *p;
	struct spop_frame f;

	(void)state;
	p = zero;
	assert_int_equal(spop_frame_decode(&p, zero + 4, 16380, &f),
	                 SPOP_RC_MALFORMED);
	assert_ptr_equal(p, zero);
	p = six;
	assert_int_equal(spop_frame_decode(&p, six + sizeof(six), 16380, &f),
	                 SPOP_RC_MALFORMED);
	assert_ptr_equal(p, six);
	/* Known from the prefix alone: no waiting for the rest. */
	assert_int_equal(spop_frame_decode(&p, six + 4, 16380, &f),
	                 SPOP_RC_MALFORMED);
	assert_ptr_equal(p, six);
}

static void test_frame_header_varint_past_frame_malformed(void **state)
{
	/* Length 7: type, flags, stream-id 0xF0 needs one more byte which
	 * belongs to the next frame. */
	static const uint8_t b[] = { 0, 0, 0, 7, 3, 0, 0, 0, 1, 0xF0, 0x00,
	                             0x00, 0x00 };
	/* Length 8 but the frame-id is a malformed 11-byte varint would not
	 * fit; use an unterminated one instead. */
	static const uint8_t c[] = { 0, 0, 0, 8, 3, 0, 0, 0, 1, 0x00, 0xF0, 0x80 };
	const uint8_t *p;
	struct spop_frame f;

	(void)state;
	p = b;
	assert_int_equal(spop_frame_decode(&p, b + sizeof(b), 16380, &f),
	                 SPOP_RC_MALFORMED);
	assert_ptr_equal(p, b);
	p = c;
	assert_int_equal(spop_frame_decode(&p, c + sizeof(c), 16380, &f),
	                 SPOP_RC_MALFORMED);
	assert_ptr_equal(p, c);
}

static void test_frame_stream_of_frames(void **state)
{
	uint8_t buf[512];
	struct hello_frame hf;
	struct spop_frame f;
	const uint8_t *p = buf;
	size_t n1, n2, msg1;

	(void)state;
	build_hello(&hf, 0);
	memcpy(buf, hf.buf, hf.len);
	n1 = hf.len;
	n2 = build_notify(buf + n1, sizeof(buf) - n1, &msg1);
	assert_int_equal(spop_frame_decode(&p, buf + n1 + n2, 16380, &f),
	                 SPOP_RC_OK);
	assert_int_equal(f.type, SPOP_FRAME_HAPROXY_HELLO);
	assert_ptr_equal(p, buf + n1);
	assert_int_equal(spop_frame_decode(&p, buf + n1 + n2, 16380, &f),
	                 SPOP_RC_OK);
	assert_int_equal(f.type, SPOP_FRAME_NOTIFY);
	assert_ptr_equal(p, buf + n1 + n2);
	assert_int_equal(spop_frame_decode(&p, buf + n1 + n2, 16380, &f),
	                 SPOP_RC_NEED_MORE);
}

/* ---- HELLO keys --------------------------------------------------------- */

static size_t build_kv_payload(uint8_t *buf, size_t room, const char *name,
                               const struct spop_data *v)
{
	struct spop_wr w;

	spop_wr_init(&w, buf, room);
	spop_put_kv(&w, name, v);
	assert_int_equal(w.err, 0);
	return (size_t)(w.p - buf);
}

static void test_hello_keys_exact_length(void **state)
{
	static const char *const near[] = {
		"max-frame-size-x", "max-frame", "max-frame-sizE", "",
		"supported-version", "supported-versionss", "capabilitie",
		"healthcheck2", "engine-i",
	};
	uint8_t buf[64];
	struct spop_hello h;
	size_t i, n;

	(void)state;
	for (i = 0; i < ARRAY_LEN(near); i++) {
		struct spop_data v = spop_uint32(300);

		n = build_kv_payload(buf, sizeof(buf), near[i], &v);
		assert_int_equal(spop_hello_decode(buf, n, &h), SPOP_RC_OK);
		assert_int_equal(h.has_max_frame_size, 0);
		assert_int_equal(h.has_versions, 0);
		assert_int_equal(h.has_capabilities, 0);
		assert_int_equal(h.healthcheck, 0);
		assert_null(h.engine_id);
	}
	/* And the real key is taken. */
	{
		struct spop_data v = spop_uint32(300);

		n = build_kv_payload(buf, sizeof(buf), "max-frame-size", &v);
		assert_int_equal(spop_hello_decode(buf, n, &h), SPOP_RC_OK);
		assert_int_equal(h.has_max_frame_size, 1);
		assert_true(h.max_frame_size == 300);
	}
}

static void test_hello_max_frame_size_int_types(void **state)
{
	struct spop_data vals[4];
	uint8_t buf[64];
	struct spop_hello h;
	size_t i, n;

	(void)state;
	vals[0] = spop_int32(1000);
	vals[1] = spop_uint32(1000);
	vals[2] = spop_sint(1000);
	vals[3] = spop_uint(1000);
	for (i = 0; i < ARRAY_LEN(vals); i++) {
		n = build_kv_payload(buf, sizeof(buf), "max-frame-size", &vals[i]);
		assert_int_equal(spop_hello_decode(buf, n, &h), SPOP_RC_OK);
		assert_int_equal(h.has_max_frame_size, 1);
		assert_true(h.max_frame_size == 1000);
	}
}

static void test_hello_wrong_types_malformed(void **state)
{
	struct {
		const char *key;
		struct spop_data v;
	} bad[8];
	uint8_t buf[64];
	struct spop_hello h;
	size_t i, n, nb = 0;

	(void)state;
	bad[nb].key = "supported-versions"; bad[nb++].v = spop_bin("2.0", 3);
	bad[nb].key = "max-frame-size"; bad[nb++].v = spop_cstr("16380");
	bad[nb].key = "max-frame-size"; bad[nb++].v = spop_int32(-1);
	bad[nb].key = "max-frame-size"; bad[nb++].v = spop_sint(INT64_MIN);
	bad[nb].key = "capabilities"; bad[nb++].v = spop_null();
	bad[nb].key = "healthcheck"; bad[nb++].v = spop_uint32(1);
	bad[nb].key = "engine-id"; bad[nb++].v = spop_bin("abc", 3);
	bad[nb].key = "max-frame-size"; bad[nb++].v = spop_bool(1);
	for (i = 0; i < nb; i++) {
		n = build_kv_payload(buf, sizeof(buf), bad[i].key, &bad[i].v);
		assert_int_equal(spop_hello_decode(buf, n, &h), SPOP_RC_MALFORMED);
	}
}

static void test_hello_empty_and_unknown_keys(void **state)
{
	uint8_t buf[64];
	struct spop_hello h;
	struct spop_data v = spop_cstr("x");
	size_t n;

	(void)state;
	assert_int_equal(spop_hello_decode(buf, 0, &h), SPOP_RC_OK);
	assert_int_equal(h.has_versions + h.has_max_frame_size + h.has_capabilities,
	                 0);
	n = build_kv_payload(buf, sizeof(buf), "unknown-key", &v);
	assert_int_equal(spop_hello_decode(buf, n, &h), SPOP_RC_OK);
	assert_int_equal(h.has_versions + h.has_max_frame_size + h.has_capabilities,
	                 0);
	/* An empty capabilities string is present, just empty. */
	v = spop_cstr("");
	n = build_kv_payload(buf, sizeof(buf), "capabilities", &v);
	assert_int_equal(spop_hello_decode(buf, n, &h), SPOP_RC_OK);
	assert_int_equal(h.has_capabilities, 1);
	assert_int_equal(h.capabilities_len, 0);
}

/* ---- DISCONNECT --------------------------------------------------------- */

static void test_disconnect_decode(void **state)
{
	uint8_t buf[128];
	struct spop_wr w;
	struct spop_disconnect d;
	struct spop_data v;
	size_t n, cut;

	(void)state;
	spop_wr_init(&w, buf, sizeof(buf));
	v = spop_uint32(SPOP_ST_TIMEOUT);
	spop_put_kv(&w, "status-code", &v);
	v = spop_cstr("a timeout occurred");
	spop_put_kv(&w, "message", &v);
	assert_int_equal(w.err, 0);
	n = (size_t)(w.p - buf);
	assert_int_equal(spop_disconnect_decode(buf, n, &d), SPOP_RC_OK);
	assert_int_equal(d.has_status, 1);
	assert_true(d.status == SPOP_ST_TIMEOUT);
	assert_int_equal(d.message_len, 18);
	assert_memory_equal(d.message, "a timeout occurred", 18);

	/* Truncations never read past the end; only boundaries are OK. */
	for (cut = 0; cut < n; cut++) {
		enum spop_rc rc = spop_disconnect_decode(buf, cut, &d);

		if (cut == 0 || cut == 1 + 11 + 2)
			assert_int_equal(rc, SPOP_RC_OK);
		else
			assert_int_equal(rc, SPOP_RC_MALFORMED);
	}
}

static void test_disconnect_lenient(void **state)
{
	uint8_t buf[128];
	struct spop_wr w;
	struct spop_disconnect d;
	struct spop_data v;

	(void)state;
	spop_wr_init(&w, buf, sizeof(buf));
	v = spop_sint(9);
	spop_put_kv(&w, "status-code", &v);
	v = spop_bin("m", 1);                 /* wrong type: ignored */
	spop_put_kv(&w, "message", &v);
	v = spop_cstr("?");
	spop_put_kv(&w, "other", &v);
	assert_int_equal(w.err, 0);
	assert_int_equal(spop_disconnect_decode(buf, (size_t)(w.p - buf), &d),
	                 SPOP_RC_OK);
	assert_int_equal(d.has_status, 1);
	assert_true(d.status == 9);
	assert_null(d.message);

	spop_wr_init(&w, buf, sizeof(buf));
	v = spop_cstr("3");                   /* wrong type: ignored */
	spop_put_kv(&w, "status-code", &v);
	assert_int_equal(spop_disconnect_decode(buf, (size_t)(w.p - buf), &d),
	                 SPOP_RC_OK);
	assert_int_equal(d.has_status, 0);
}

/* ---- version / capability lists ---------------------------------------- */

static void test_versions_have_v2_table(void **state)
{
	static const struct {
		const char *s;
		int want;
	} t[] = {
		{ "2.0", 1 }, { " 2.0 , 1.0", 1 }, { "2.1", 1 }, { "1.0, 2.0", 1 },
		{ "1.0,2.5", 1 }, { "  2 . 0  ", 1 }, { "2.0,", 1 }, { ",,2.0", 1 },
		{ "2x,2.0", 1 }, { "3.0, 2.0", 1 }, { "2.10", 1 },
		{ "1.0", 0 }, { "3.0", 0 }, { "", 0 }, { "2", 0 }, { "20.0", 0 },
		{ "2x", 0 }, { "2.", 0 }, { ".0", 0 }, { "2.0.1", 0 }, { "2.0x", 0 },
		{ "12.0", 0 }, { "2,0", 0 }, { "1.0, 3.2", 0 }, { ",", 0 },
		{ "-2.0", 0 }, { "2.-0", 0 }, { "9999999999.0", 0 }, { "2 0.0", 0 },
		{ "99999999999999999999.0", 0 }, { "2.99999999999999999999", 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(t); i++) {
		int got = spop_versions_have_v2((const uint8_t *)t[i].s,
		                                strlen(t[i].s));

		if (got != t[i].want)
			fail_msg("versions \"%s\": got %d want %d", t[i].s, got,
			         t[i].want);
	}
	assert_int_equal(spop_versions_have_v2(NULL, 0), 0);
	/* Not NUL-terminated: only `len` bytes count. */
	assert_int_equal(spop_versions_have_v2((const uint8_t *)"1.0,2.0", 3), 0);
}

static void test_caps_have_table(void **state)
{
	static const struct {
		const char *s;
		const char *cap;
		int want;
	} t[] = {
		{ "pipelining", "pipelining", 1 },
		{ "pipelining,async", "async", 1 },
		{ " pipelining , async ", "pipelining", 1 },
		{ "async,\tpipelining", "pipelining", 1 },
		{ "", "pipelining", 0 },
		{ "pipelininga", "pipelining", 0 },
		{ "pipelin", "pipelining", 0 },
		{ "async", "pipelining", 0 },
		{ "xpipelining", "pipelining", 0 },
		{ "pipe lining", "pipelining", 0 },
		{ ",,", "pipelining", 0 },
		{ "a,,b", "", 0 },
		{ "fragmentation", "fragmentation", 1 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(t); i++) {
		int got = spop_caps_have((const uint8_t *)t[i].s, strlen(t[i].s),
		                         t[i].cap);

		if (got != t[i].want)
			fail_msg("caps \"%s\" has \"%s\": got %d want %d", t[i].s,
			         t[i].cap, got, t[i].want);
	}
	assert_int_equal(spop_caps_have((const uint8_t *)"async,pipelining", 5,
	                                "pipelining"), 0);
}

/* ---- writer ------------------------------------------------------------- */

static void test_ack_set_var_byte_exact(void **state)
{
	static const uint8_t expected[] = {
		0x00, 0x00, 0x00, 0x2F,             /* length 47 */
		0x67,                               /* ACK (103) */
		0x00, 0x00, 0x00, 0x01,             /* FIN */
		0xF8, 0x2F,                         /* stream-id 1000 */
		0x07,                               /* frame-id 7 */
		/* set-var txn "mtls.present" = BOOL true */
		0x01, 0x03, 0x02,
		0x0C, 'm', 't', 'l', 's', '.', 'p', 'r', 'e', 's', 'e', 'n', 't',
		0x11,
		/* set-var txn "action" = STRING "allow" */
		0x01, 0x03, 0x02,
		0x06, 'a', 'c', 't', 'i', 'o', 'n',
		0x08, 0x05, 'a', 'l', 'l', 'o', 'w',
		/* unset-var sess "x" */
		0x02, 0x02, 0x01, 0x01, 'x',
	};
	uint8_t buf[128];
	struct spop_wr w;
	struct spop_data v;
	uint8_t *start;

	(void)state;
	spop_wr_init(&w, buf, sizeof(buf));
	start = spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, 1000, 7);
	assert_ptr_equal(start, buf);
	v = spop_bool(1);
	spop_put_set_var(&w, SPOP_SCOPE_TXN, "mtls.present", &v);
	v = spop_cstr("allow");
	spop_put_set_var(&w, SPOP_SCOPE_TXN, "action", &v);
	spop_put_unset_var(&w, SPOP_SCOPE_SESS, "x");
	assert_int_equal(spop_frame_end(&w, start, 16380), 0);
	assert_int_equal(w.err, 0);
	assert_int_equal(w.p - buf, sizeof(expected));
	assert_memory_equal(buf, expected, sizeof(expected));
}

static void test_frame_end_overflow_rewinds(void **state)
{
	uint8_t buf[32];
	struct spop_wr w;
	struct spop_data v = spop_cstr("this value does not fit in 32 bytes");
	uint8_t *start;

	(void)state;
	memset(buf, 0xAA, sizeof(buf));
	spop_wr_init(&w, buf, sizeof(buf));
	spop_put_u8(&w, 0x42);     /* something before the frame */
	start = spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, 1, 1);
	assert_ptr_equal(start, buf + 1);
	spop_put_set_var(&w, SPOP_SCOPE_TXN, "v", &v);
	assert_int_equal(w.err, 1);
	assert_int_equal(spop_frame_end(&w, start, 16380), -1);
	assert_ptr_equal(w.p, start);
	assert_int_equal(w.err, 1);     /* sticky: the caller must re-init */
	assert_int_equal(buf[0], 0x42);
	/* Further puts are no-ops. */
	spop_put_u8(&w, 0x99);
	assert_ptr_equal(w.p, start);
}

static void test_frame_begin_overflow_rewinds(void **state)
{
	uint8_t buf[6];
	struct spop_wr w;
	uint8_t *start;

	(void)state;
	spop_wr_init(&w, buf, sizeof(buf));
	start = spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, 1, 1);
	assert_int_equal(w.err, 1);
	assert_int_equal(spop_frame_end(&w, start, 16380), -1);
	assert_ptr_equal(w.p, buf);
}

static void test_frame_end_over_max_rewinds(void **state)
{
	uint8_t buf[1024];
	uint8_t blob[300];
	struct spop_wr w;
	struct spop_data v;
	uint8_t *start;
	const uint8_t *p;
	struct spop_frame f;

	(void)state;
	memset(blob, 'b', sizeof(blob));
	spop_wr_init(&w, buf, sizeof(buf));
	start = spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, 1, 1);
	v = spop_bin(blob, sizeof(blob));
	spop_put_set_var(&w, SPOP_SCOPE_TXN, "blob", &v);
	assert_int_equal(w.err, 0);
	assert_int_equal(spop_frame_end(&w, start, 256), -1);
	assert_ptr_equal(w.p, buf);
	assert_int_equal(w.err, 0);   /* the buffer is still usable */

	/* The caller can write something else instead. */
	start = spop_frame_begin(&w, SPOP_FRAME_AGENT_DISCONNECT, SPOP_FLAG_FIN,
	                         0, 0);
	v = spop_uint32(SPOP_ST_TOO_BIG);
	spop_put_kv(&w, "status-code", &v);
	v = spop_cstr(spop_status_str(SPOP_ST_TOO_BIG));
	spop_put_kv(&w, "message", &v);
	assert_int_equal(spop_frame_end(&w, start, 256), 0);
	p = buf;
	assert_int_equal(spop_frame_decode(&p, w.p, 256, &f), SPOP_RC_OK);
	assert_int_equal(f.type, SPOP_FRAME_AGENT_DISCONNECT);

	/* Exactly the maximum is accepted. */
	spop_wr_init(&w, buf, sizeof(buf));
	start = spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, 1, 1);
	while ((size_t)(w.p - start) - 4 < 256)
		spop_put_u8(&w, 0);
	assert_int_equal(spop_frame_end(&w, start, 256), 0);
	assert_memory_equal(buf, ((const uint8_t[]){ 0, 0, 1, 0 }), 4);
}

static void test_writer_sticky_error_and_atomic_puts(void **state)
{
	uint8_t buf[4];
	struct spop_wr w;

	(void)state;
	memset(buf, 0, sizeof(buf));
	spop_wr_init(&w, buf, sizeof(buf));
	spop_put_u8(&w, 1);
	/* 3 bytes left: a 4-byte string put fails whole. */
	spop_put_bytes(&w, "abc", 3);
	assert_int_equal(w.err, 1);
	assert_ptr_equal(w.p, buf + 1);
	assert_int_equal(buf[1], 0);
	/* Even a put that would fit is now a no-op. */
	spop_put_u8(&w, 2);
	assert_ptr_equal(w.p, buf + 1);

	spop_wr_init(&w, buf, 0);
	spop_put_varint(&w, 0);
	assert_int_equal(w.err, 1);
	assert_ptr_equal(w.p, buf);

	/* A 2-byte varint into 1 byte of room. */
	spop_wr_init(&w, buf, 1);
	spop_put_varint(&w, 240);
	assert_int_equal(w.err, 1);
	assert_ptr_equal(w.p, buf);
}

static void test_writer_refuses_invalid_values(void **state)
{
	uint8_t buf[32];
	struct spop_wr w;
	struct spop_data v;

	(void)state;
	v = spop_int32(0);
	v.u.sint = (int64_t)INT32_MAX + 1;
	spop_wr_init(&w, buf, sizeof(buf));
	spop_put_data(&w, &v);
	assert_int_equal(w.err, 1);

	v = spop_uint32(0);
	v.u.uint = (uint64_t)UINT32_MAX + 1;
	spop_wr_init(&w, buf, sizeof(buf));
	spop_put_data(&w, &v);
	assert_int_equal(w.err, 1);

	v = spop_null();
	v.type = SPOP_T_COUNT;
	spop_wr_init(&w, buf, sizeof(buf));
	spop_put_data(&w, &v);
	assert_int_equal(w.err, 1);

	v = spop_str(NULL, 3);
	spop_wr_init(&w, buf, sizeof(buf));
	spop_put_data(&w, &v);
	assert_int_equal(w.err, 1);

	v = spop_bool(1);
	spop_wr_init(&w, buf, sizeof(buf));
	spop_put_set_var(&w, SPOP_SCOPE_COUNT, "x", &v);
	assert_int_equal(w.err, 1);
	spop_wr_init(&w, buf, sizeof(buf));
	spop_put_set_var(&w, SPOP_SCOPE_TXN, NULL, &v);
	assert_int_equal(w.err, 1);
	spop_wr_init(&w, buf, sizeof(buf));
	spop_put_kv(&w, NULL, &v);
	assert_int_equal(w.err, 1);
}

static void test_set_var_every_scope(void **state)
{
	static const struct {
		enum spop_scope scope;
		uint8_t byte;
	} t[] = {
		{ SPOP_SCOPE_PROC, 0 }, { SPOP_SCOPE_SESS, 1 }, { SPOP_SCOPE_TXN, 2 },
		{ SPOP_SCOPE_REQ, 3 }, { SPOP_SCOPE_RES, 4 },
	};
	uint8_t buf[16];
	struct spop_wr w;
	struct spop_data v = spop_null();
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(t); i++) {
		spop_wr_init(&w, buf, sizeof(buf));
		spop_put_set_var(&w, t[i].scope, "n", &v);
		assert_int_equal(w.err, 0);
		assert_int_equal(w.p - buf, 6);
		assert_memory_equal(buf, ((const uint8_t[]){ 1, 3, t[i].byte, 1, 'n',
		                                             0 }), 6);
	}
}

/* ---- frames captured from a real HAProxy 2.6.12 ------------------------ */

/* `option spop-check` health check: empty capabilities, no engine-id. */
static const uint8_t real_hello_hc[] = {
	0x00, 0x00, 0x00, 0x4e, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x12,
	0x73, 0x75, 0x70, 0x70, 0x6f, 0x72, 0x74, 0x65, 0x64, 0x2d, 0x76, 0x65,
	0x72, 0x73, 0x69, 0x6f, 0x6e, 0x73, 0x08, 0x03, 0x32, 0x2e, 0x30, 0x0e,
	0x6d, 0x61, 0x78, 0x2d, 0x66, 0x72, 0x61, 0x6d, 0x65, 0x2d, 0x73, 0x69,
	0x7a, 0x65, 0x03, 0xfc, 0xf0, 0x06, 0x0c, 0x63, 0x61, 0x70, 0x61, 0x62,
	0x69, 0x6c, 0x69, 0x74, 0x69, 0x65, 0x73, 0x08, 0x00, 0x0b, 0x68, 0x65,
	0x61, 0x6c, 0x74, 0x68, 0x63, 0x68, 0x65, 0x63, 0x6b, 0x11
};

/* check-client-cert on plain HTTP: cert/chain/sni NULL, host a STRING.
 * Note the stream-id 0: HAProxy numbers streams from 0. */
static const uint8_t real_notify[] = {
	0x00, 0x00, 0x00, 0x3e, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x11,
	0x63, 0x68, 0x65, 0x63, 0x6b, 0x2d, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74,
	0x2d, 0x63, 0x65, 0x72, 0x74, 0x04, 0x04, 0x63, 0x65, 0x72, 0x74, 0x00,
	0x05, 0x63, 0x68, 0x61, 0x69, 0x6e, 0x00, 0x03, 0x73, 0x6e, 0x69, 0x00,
	0x04, 0x68, 0x6f, 0x73, 0x74, 0x08, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70,
	0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d
};

/* Sent on soft stop (SIGUSR1). */
static const uint8_t real_disconnect[] = {
	0x00, 0x00, 0x00, 0x28, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x0b,
	0x73, 0x74, 0x61, 0x74, 0x75, 0x73, 0x2d, 0x63, 0x6f, 0x64, 0x65, 0x03,
	0x01, 0x07, 0x6d, 0x65, 0x73, 0x73, 0x61, 0x67, 0x65, 0x08, 0x09, 0x49,
	0x2f, 0x4f, 0x20, 0x65, 0x72, 0x72, 0x6f, 0x72
};

static void check_frame_truncations(const uint8_t *b, size_t len)
{
	struct spop_frame f;
	size_t cut;

	for (cut = 0; cut < len; cut++) {
		const uint8_t *p = b;

		assert_int_equal(spop_frame_decode(&p, b + cut, 16380, &f),
		                 SPOP_RC_NEED_MORE);
		assert_ptr_equal(p, b);
	}
}

static void test_real_haproxy26_healthcheck_hello(void **state)
{
	const uint8_t *p = real_hello_hc;
	struct spop_frame f;
	struct spop_hello h;

	(void)state;
	assert_int_equal(spop_frame_decode(&p, real_hello_hc + sizeof(real_hello_hc),
	                                   16380, &f), SPOP_RC_OK);
	assert_ptr_equal(p, real_hello_hc + sizeof(real_hello_hc));
	assert_int_equal(f.type, SPOP_FRAME_HAPROXY_HELLO);
	assert_int_equal(f.flags, SPOP_FLAG_FIN);
	assert_int_equal(spop_hello_decode(f.payload, f.payload_len, &h),
	                 SPOP_RC_OK);
	assert_true(h.has_versions && h.has_max_frame_size && h.has_capabilities);
	assert_true(spop_versions_have_v2(h.versions, h.versions_len));
	assert_true(h.max_frame_size == 16380);
	assert_int_equal(h.capabilities_len, 0);
	assert_int_equal(h.healthcheck, 1);
	assert_null(h.engine_id);
	check_frame_truncations(real_hello_hc, sizeof(real_hello_hc));
}

static void test_real_haproxy26_notify(void **state)
{
	static const char *const names[] = { "cert", "chain", "sni", "host" };
	static const enum spop_type types[] = { SPOP_T_NULL, SPOP_T_NULL,
	                                        SPOP_T_NULL, SPOP_T_STRING };
	const uint8_t *p = real_notify, *q, *end;
	struct spop_frame f;
	struct spop_msg m;
	struct spop_kv kv;
	size_t i;

	(void)state;
	assert_int_equal(spop_frame_decode(&p, real_notify + sizeof(real_notify),
	                                   16380, &f), SPOP_RC_OK);
	assert_int_equal(f.type, SPOP_FRAME_NOTIFY);
	assert_true(f.stream_id == 0 && f.frame_id == 1);
	q = f.payload;
	end = f.payload + f.payload_len;
	assert_int_equal(spop_msg_next(&q, end, &m), SPOP_RC_OK);
	assert_ptr_equal(q, end);
	assert_int_equal(m.nargs, 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(spop_kv_next(&m.args, m.args_end, &kv), SPOP_RC_OK);
		assert_true(kv_name_is(&kv, names[i]));
		assert_int_equal(kv.value.type, types[i]);
	}
	assert_int_equal(kv.value.u.buf.len, 11);
	assert_memory_equal(kv.value.u.buf.ptr, "example.com", 11);
	check_frame_truncations(real_notify, sizeof(real_notify));
}

static void test_real_haproxy26_disconnect(void **state)
{
	const uint8_t *p = real_disconnect;
	struct spop_frame f;
	struct spop_disconnect d;

	(void)state;
	assert_int_equal(spop_frame_decode(&p,
	                                   real_disconnect + sizeof(real_disconnect),
	                                   16380, &f), SPOP_RC_OK);
	assert_int_equal(f.type, SPOP_FRAME_HAPROXY_DISCONNECT);
	assert_int_equal(spop_disconnect_decode(f.payload, f.payload_len, &d),
	                 SPOP_RC_OK);
	assert_int_equal(d.has_status, 1);
	assert_true(d.status == SPOP_ST_IO);
	assert_int_equal(d.message_len, 9);
	assert_memory_equal(d.message, "I/O error", 9);
	check_frame_truncations(real_disconnect, sizeof(real_disconnect));
}

/* ---- misc --------------------------------------------------------------- */

static void test_status_str(void **state)
{
	unsigned int i;

	(void)state;
	assert_string_equal(spop_status_str(SPOP_ST_NORMAL),
	                    "normal (no error occurred)");
	assert_string_equal(spop_status_str(SPOP_ST_TOO_BIG), "frame is too big");
	assert_string_equal(spop_status_str(SPOP_ST_INVALID),
	                    "invalid frame received");
	assert_string_equal(spop_status_str(SPOP_ST_BAD_VSN),
	                    "unsupported version");
	assert_string_equal(spop_status_str(SPOP_ST_FRAG_NOT_SUPPORTED),
	                    "payload fragmentation is not supported");
	assert_string_equal(spop_status_str(SPOP_ST_UNKNOWN), "unknown error");
	assert_string_equal(spop_status_str(14), "unknown error");
	assert_string_equal(spop_status_str(0xFFFFFFFFu), "unknown error");
	for (i = 0; i <= SPOP_ST_RES; i++) {
		assert_non_null(spop_status_str(i));
		assert_string_not_equal(spop_status_str(i), "unknown error");
	}
}

static void test_constructors(void **state)
{
	struct spop_data d;

	(void)state;
	d = spop_cstr(NULL);
	assert_int_equal(d.type, SPOP_T_STRING);
	assert_int_equal(d.u.buf.len, 0);
	assert_non_null(d.u.buf.ptr);
	d = spop_cstr("abc");
	assert_int_equal(d.u.buf.len, 3);
	d = spop_int32(INT32_MIN);
	assert_int_equal(d.type, SPOP_T_INT32);
	assert_true(d.u.sint == INT32_MIN);
	d = spop_uint32(UINT32_MAX);
	assert_int_equal(d.type, SPOP_T_UINT32);
	assert_true(d.u.uint == UINT32_MAX);
	d = spop_sint(-5);
	assert_int_equal(d.type, SPOP_T_INT64);
	d = spop_uint(5);
	assert_int_equal(d.type, SPOP_T_UINT64);
	d = spop_bin("\0x", 2);
	assert_int_equal(d.type, SPOP_T_BINARY);
	assert_int_equal(d.u.buf.len, 2);
	d = spop_null();
	assert_int_equal(d.type, SPOP_T_NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint_spec_vectors_encode),
		cmocka_unit_test(test_varint_spec_vectors_decode),
		cmocka_unit_test(test_varint_decode_stops_at_end_of_varint),
		cmocka_unit_test(test_varint_roundtrip_boundaries),
		cmocka_unit_test(test_varint_empty_is_need_more),
		cmocka_unit_test(test_varint_11_bytes_rejected),
		cmocka_unit_test(test_varint_overflow_rejected),
		cmocka_unit_test(test_bytes_decode_and_truncations),
		cmocka_unit_test(test_bytes_decode_huge_length),
		cmocka_unit_test(test_data_null_roundtrip),
		cmocka_unit_test(test_data_bool_roundtrip),
		cmocka_unit_test(test_data_bool_uses_first_flag_bit_only),
		cmocka_unit_test(test_data_int32_roundtrip),
		cmocka_unit_test(test_data_int32_wire_is_sign_extended),
		cmocka_unit_test(test_data_uint32_roundtrip),
		cmocka_unit_test(test_data_int64_roundtrip),
		cmocka_unit_test(test_data_uint64_roundtrip),
		cmocka_unit_test(test_data_ipv4_roundtrip),
		cmocka_unit_test(test_data_ipv6_roundtrip),
		cmocka_unit_test(test_data_string_roundtrip),
		cmocka_unit_test(test_data_binary_with_nul_roundtrip),
		cmocka_unit_test(test_data_bad_types_rejected),
		cmocka_unit_test(test_data_int32_out_of_range_rejected),
		cmocka_unit_test(test_data_bad_varint_inside_is_malformed),
		cmocka_unit_test(test_kv_next_and_truncations),
		cmocka_unit_test(test_kv_empty_name),
		cmocka_unit_test(test_frame_decode_hand_written),
		cmocka_unit_test(test_frame_flags_big_endian),
		cmocka_unit_test(test_hello_frame_decoded),
		cmocka_unit_test(test_hello_healthcheck_true),
		cmocka_unit_test(test_hello_frame_every_truncation_need_more),
		cmocka_unit_test(test_hello_payload_every_truncation),
		cmocka_unit_test(test_notify_every_truncation_need_more),
		cmocka_unit_test(test_notify_two_messages_walk),
		cmocka_unit_test(test_notify_payload_every_truncation_malformed),
		cmocka_unit_test(test_msg_with_bad_arg_malformed),
		cmocka_unit_test(test_frame_too_big),
		cmocka_unit_test(test_frame_zero_and_short_length_malformed),
		cmocka_unit_test(test_frame_header_varint_past_frame_malformed),
		cmocka_unit_test(test_frame_stream_of_frames),
		cmocka_unit_test(test_hello_keys_exact_length),
		cmocka_unit_test(test_hello_max_frame_size_int_types),
		cmocka_unit_test(test_hello_wrong_types_malformed),
		cmocka_unit_test(test_hello_empty_and_unknown_keys),
		cmocka_unit_test(test_disconnect_decode),
		cmocka_unit_test(test_disconnect_lenient),
		cmocka_unit_test(test_versions_have_v2_table),
		cmocka_unit_test(test_caps_have_table),
		cmocka_unit_test(test_ack_set_var_byte_exact),
		cmocka_unit_test(test_frame_end_overflow_rewinds),
		cmocka_unit_test(test_frame_begin_overflow_rewinds),
		cmocka_unit_test(test_frame_end_over_max_rewinds),
		cmocka_unit_test(test_writer_sticky_error_and_atomic_puts),
		cmocka_unit_test(test_writer_refuses_invalid_values),
		cmocka_unit_test(test_set_var_every_scope),
		cmocka_unit_test(test_real_haproxy26_healthcheck_hello),
		cmocka_unit_test(test_real_haproxy26_notify),
		cmocka_unit_test(test_real_haproxy26_disconnect),
		cmocka_unit_test(test_status_str),
		cmocka_unit_test(test_constructors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
