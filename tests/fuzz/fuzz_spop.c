/*
 * fuzz_spop.c - libFuzzer target for the SPOP codec (agent/spop.c).
 *
 * The input is a byte stream as HAProxy would send it: frames are decoded
 * one after the other with max-frame-size 16380; each frame is parsed by
 * type (HELLO, DISCONNECT, NOTIFY: every message, every argument) and the
 * decoded values are re-encoded with the writer into a small buffer, so
 * both directions run on hostile input. Decoders must never read outside
 * [data, data+size) nor move their cursor on failure.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iagent -std=c11 \
 *     -D_GNU_SOURCE agent/spop.c tests/fuzz/fuzz_spop.c -o fuzz_spop
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A violated invariant is a crash the fuzzer reports. */
#define FUZZ_CHECK(c) do { if (!(c)) abort(); } while (0)

/* Re-encode one decoded value in a deliberately small buffer: overflow is
 * expected and must only set the sticky error. */
static void fuzz_reencode(const struct spop_kv *kv, uint64_t sid, uint64_t fid)
{
	uint8_t out[64];
	struct spop_wr w;
	uint8_t *start;
	char name[16];
	size_t n = kv->name_len < sizeof(name) - 1 ? kv->name_len
	                                            : sizeof(name) - 1;

	if (n > 0)
		memcpy(name, kv->name, n);
	name[n] = '\0';
	spop_wr_init(&w, out, sizeof(out));
	start = spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, sid, fid);
	spop_put_set_var(&w, SPOP_SCOPE_TXN, name, &kv->value);
	spop_put_unset_var(&w, SPOP_SCOPE_REQ, name);
	if (spop_frame_end(&w, start, 48) == 0) {
		/* What we wrote must decode back to the same header. */
		const uint8_t *p = out;
		struct spop_frame f;

		FUZZ_CHECK(w.err == 0);
		FUZZ_CHECK(spop_frame_decode(&p, w.p, 48, &f) == SPOP_RC_OK);
		FUZZ_CHECK(p == w.p);
		FUZZ_CHECK(f.stream_id == sid && f.frame_id == fid);
	} else {
		FUZZ_CHECK(w.p == start);
	}
}

static void fuzz_notify(const struct spop_frame *f)
{
	const uint8_t *q = f->payload;
	const uint8_t *end = f->payload + f->payload_len;
	struct spop_msg m;
	struct spop_kv kv;

	while (q < end) {
		const uint8_t *before = q;
		unsigned int i;

		if (spop_msg_next(&q, end, &m) != SPOP_RC_OK) {
			FUZZ_CHECK(q == before);
			return;
		}
		FUZZ_CHECK(q > before && q <= end);
		/* The message was validated: its args must all decode. */
		for (i = 0; i < m.nargs; i++) {
			FUZZ_CHECK(spop_kv_next(&m.args, m.args_end, &kv) ==
			           SPOP_RC_OK);
			fuzz_reencode(&kv, f->stream_id, f->frame_id);
		}
		FUZZ_CHECK(m.args == m.args_end);
	}
}

static void fuzz_hello(const struct spop_frame *f)
{
	struct spop_hello h;

	if (spop_hello_decode(f->payload, f->payload_len, &h) != SPOP_RC_OK)
		return;
	if (h.has_versions)
		(void)spop_versions_have_v2(h.versions, h.versions_len);
	if (h.has_capabilities) {
		(void)spop_caps_have(h.capabilities, h.capabilities_len,
		                     "pipelining");
		(void)spop_caps_have(h.capabilities, h.capabilities_len, "async");
	}
}

static void fuzz_disconnect(const struct spop_frame *f)
{
	struct spop_disconnect d;
	uint8_t out[64];
	struct spop_wr w;
	uint8_t *start;
	struct spop_data v;

	if (spop_disconnect_decode(f->payload, f->payload_len, &d) != SPOP_RC_OK)
		return;
	/* Echo it back as an AGENT-DISCONNECT would. */
	spop_wr_init(&w, out, sizeof(out));
	start = spop_frame_begin(&w, SPOP_FRAME_AGENT_DISCONNECT, SPOP_FLAG_FIN,
	                         0, 0);
	v = spop_uint32((uint32_t)(d.has_status ? d.status : 0));
	spop_put_kv(&w, "status-code", &v);
	v = d.message != NULL ? spop_str((const char *)d.message, d.message_len)
	                      : spop_cstr(spop_status_str((unsigned int)d.status));
	spop_put_kv(&w, "message", &v);
	if (spop_frame_end(&w, start, SPOP_MIN_FRAME_SIZE) != 0)
		FUZZ_CHECK(w.p == start);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data;
	const uint8_t *end = data + size;
	struct spop_frame f;
	enum spop_rc rc;
	/* Each OK frame consumes at least 11 bytes, so this is bounded. */
	for (;;) {
		const uint8_t *before = p;

		rc = spop_frame_decode(&p, end, SPOP_DEFAULT_FRAME_SIZE, &f);
		if (rc != SPOP_RC_OK) {
			FUZZ_CHECK(p == before);
			break;
		}
		FUZZ_CHECK(p > before && p <= end);
		FUZZ_CHECK(f.payload >= before && f.payload + f.payload_len == p);
		switch (f.type) {
		case SPOP_FRAME_HAPROXY_HELLO:
			fuzz_hello(&f);
			break;
		case SPOP_FRAME_HAPROXY_DISCONNECT:
			fuzz_disconnect(&f);
			break;
		case SPOP_FRAME_NOTIFY:
			fuzz_notify(&f);
			break;
		default:
			/* SPOE.txt 3.2.2: unknown frames may be skipped; still
			 * exercise the generic decoders on the payload. */
			fuzz_hello(&f);
			fuzz_notify(&f);
			break;
		}
	}
	/* The raw input as a lone varint / typed data, too. */
	{
		const uint8_t *q = data;
		uint64_t v;
		struct spop_data d;

		if (spop_varint_decode(&q, end, &v) == SPOP_RC_OK) {
			FUZZ_CHECK(q > data && q - data <= SPOP_VARINT_MAX_LEN);
			FUZZ_CHECK(spop_varint_len(v) == (size_t)(q - data));
		}
		q = data;
		(void)spop_data_decode(&q, end, &d);
	}
	return 0;
}
