/*
 * fuzz_conn.c - the SPOP stream as the server feeds it from a socket:
 * arbitrary bytes, cut into arbitrary reads, through conn_process().
 *
 * The first input byte seeds the read sizes, so the fuzzer explores
 * splits as well as contents. Output frames the agent writes are decoded
 * again: the agent must never emit an invalid or oversized frame.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "handler.h"
#include "spop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RBUF (SPOP_DEFAULT_FRAME_SIZE + SPOP_LEN_PREFIX)

static void check_output(const struct obuf *o, uint32_t max_frame)
{
	const uint8_t *p, *end;
	struct spop_frame f;

	if (o->data == NULL)
		return;
	p = o->data + o->off;
	end = o->data + o->len;

	while (p < end) {
		if (spop_frame_decode(&p, end, max_frame, &f) != SPOP_RC_OK)
			abort();
		if (!(f.flags & SPOP_FLAG_FIN) || f.payload_len + 7 > max_frame + 20)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t rbuf[RBUF];
	static const struct handler_env env; /* no policies, no cache */
	struct conn_proto c;
	struct obuf out = { .limit = 1 << 20 };
	size_t rlen = 0, pos, consumed;
	unsigned int seed;

	if (size < 1)
		return 0;
	seed = data[0];
	pos = 1;
	conn_proto_init(&c, SPOP_DEFAULT_FRAME_SIZE, "fuzz");
	while (pos < size) {
		/* Read sizes from 1 to 256 bytes, varying with the seed. */
		size_t n = 1 + ((seed * 31u + pos * 7u) % 256u);

		if (n > size - pos)
			n = size - pos;
		if (n > RBUF - rlen)
			n = RBUF - rlen;
		if (n == 0)
			break;
		memcpy(rbuf + rlen, data + pos, n);
		rlen += n;
		pos += n;
		if (conn_process(&c, &env, rbuf, rlen, &consumed, &out) != CONN_KEEP)
			break;
		if (consumed > rlen)
			abort();
		memmove(rbuf, rbuf + consumed, rlen - consumed);
		rlen -= consumed;
		check_output(&out, c.max_frame);
		out.off = out.len = 0;
	}
	check_output(&out, c.max_frame);
	obuf_free(&out);
	return 0;
}
