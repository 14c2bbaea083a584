/*
 * spop.c - SPOP 2.0 codec (SPOE.txt section 3).
 *
 * Pure code: no I/O, no allocation, no global mutable state. Every decoder
 * works on a local copy of the cursor and stores it back only on success,
 * so a caller that gets NEED_MORE can simply retry once more bytes arrived.
 * Lengths read from the wire are compared against the bytes left
 * (`len > (uint64_t)(end - q)`), never added to a pointer first, so a huge
 * length cannot wrap a pointer.
 */
#include "spop.h"

#include <limits.h>
#include <string.h>

/* ---- status texts ------------------------------------------------------ */

/* SPOE.txt 3.5, indexed by status code 0..13. */
static const char *const spop_status_txt[] = {
	[SPOP_ST_NORMAL] = "normal (no error occurred)",
	[SPOP_ST_IO] = "I/O error",
	[SPOP_ST_TIMEOUT] = "a timeout occurred",
	[SPOP_ST_TOO_BIG] = "frame is too big",
	[SPOP_ST_INVALID] = "invalid frame received",
	[SPOP_ST_NO_VSN] = "version value not found",
	[SPOP_ST_NO_FRAME_SIZE] = "max-frame-size value not found",
	[SPOP_ST_NO_CAP] = "capabilities value not found",
	[SPOP_ST_BAD_VSN] = "unsupported version",
	[SPOP_ST_BAD_FRAME_SIZE] = "max-frame-size too big or too small",
	[SPOP_ST_FRAG_NOT_SUPPORTED] = "payload fragmentation is not supported",
	[SPOP_ST_INTERLACED_FRAMES] = "invalid interlaced frames",
	[SPOP_ST_FRAMEID_NOTFOUND] =
		"frame-id not found (it does not match any referenced frame)",
	[SPOP_ST_RES] = "resource allocation error",
};

const char *spop_status_str(unsigned int status)
{
	if (status < sizeof(spop_status_txt) / sizeof(spop_status_txt[0]) &&
	    spop_status_txt[status] != NULL)
		return spop_status_txt[status];
	/* SPOP_ST_UNKNOWN and every code the spec does not define. */
	return "unknown error";
}

/* ---- decoding ---------------------------------------------------------- */

/*
 * SPOE.txt 3.1 "Peers encoding". The first byte carries 4 value bits when
 * it is >= 240; every following byte adds its full 8 bits shifted by
 * 4 + 7*(i-1): the continuation bit (0x80) doubles as the "+128" the
 * encoder subtracted, which makes the encoding bijective. Unlike HAProxy's
 * decode_varint we stop at SPOP_VARINT_MAX_LEN bytes and detect overflow,
 * so no shift ever reaches 64 bits.
 */
enum spop_rc spop_varint_decode(const uint8_t **p, const uint8_t *end,
                                uint64_t *out)
{
	const uint8_t *q = *p;
	uint64_t v;
	unsigned int shift = 4;
	size_t n;

	if (q >= end)
		return SPOP_RC_NEED_MORE;
	v = *q++;
	if (v < 240) {
		*out = v;
		*p = q;
		return SPOP_RC_OK;
	}
	for (n = 1; n < SPOP_VARINT_MAX_LEN; n++) {
		uint64_t b, term;

		if (q >= end)
			return SPOP_RC_NEED_MORE;
		b = *q++;
		/* shift <= 4 + 7*8 = 60 here, so the shift itself is defined;
		 * a set bit pushed out of 64 bits or a carry is an overflow. */
		if (b > (UINT64_MAX >> shift))
			return SPOP_RC_MALFORMED;
		term = b << shift;
		if (v > UINT64_MAX - term)
			return SPOP_RC_MALFORMED;
		v += term;
		if (b < 128) {
			*out = v;
			*p = q;
			return SPOP_RC_OK;
		}
		shift += 7;
	}
	/* The 10th byte still had its continuation bit set. Unreachable in
	 * practice (a 10th byte >= 16 already overflows above), kept so the
	 * bound does not depend on that arithmetic. */
	return SPOP_RC_MALFORMED;
}

enum spop_rc spop_bytes_decode(const uint8_t **p, const uint8_t *end,
                               const uint8_t **s, size_t *len)
{
	const uint8_t *q = *p;
	uint64_t n;
	enum spop_rc rc;

	rc = spop_varint_decode(&q, end, &n);
	if (rc != SPOP_RC_OK)
		return rc;
	if (n > (uint64_t)(end - q))
		return SPOP_RC_NEED_MORE;
	*s = q;
	*len = (size_t)n;
	*p = q + n;
	return SPOP_RC_OK;
}

/* Reinterpret the wire's two's-complement bit pattern as a signed value
 * without relying on implementation-defined conversion. */
static int64_t spop_u2s(uint64_t v)
{
	if (v <= (uint64_t)INT64_MAX)
		return (int64_t)v;
	return -(int64_t)(UINT64_MAX - v) - 1;
}

enum spop_rc spop_data_decode(const uint8_t **p, const uint8_t *end,
                              struct spop_data *out)
{
	const uint8_t *q = *p;
	struct spop_data d;
	uint64_t v;
	enum spop_rc rc;
	uint8_t tb;

	if (q >= end)
		return SPOP_RC_NEED_MORE;
	tb = *q++;
	memset(&d, 0, sizeof(d));
	d.type = (enum spop_type)(tb & 0x0F);
	switch (tb & 0x0F) {
	case SPOP_T_NULL:
		break;
	case SPOP_T_BOOL:
		/* SPOE.txt 3.1: the value is the first bit of FLAGS. */
		d.u.boolean = (tb & 0x10) != 0;
		break;
	case SPOP_T_INT32:
	case SPOP_T_INT64:
		rc = spop_varint_decode(&q, end, &v);
		if (rc != SPOP_RC_OK)
			return rc;
		d.u.sint = spop_u2s(v);
		/* HAProxy sign-extends to 64 bits before encoding. */
		if (d.type == SPOP_T_INT32 &&
		    (d.u.sint < INT32_MIN || d.u.sint > INT32_MAX))
			return SPOP_RC_MALFORMED;
		break;
	case SPOP_T_UINT32:
	case SPOP_T_UINT64:
		rc = spop_varint_decode(&q, end, &v);
		if (rc != SPOP_RC_OK)
			return rc;
		if (d.type == SPOP_T_UINT32 && v > UINT32_MAX)
			return SPOP_RC_MALFORMED;
		d.u.uint = v;
		break;
	case SPOP_T_IPV4:
		if ((size_t)(end - q) < sizeof(d.u.ipv4))
			return SPOP_RC_NEED_MORE;
		memcpy(d.u.ipv4, q, sizeof(d.u.ipv4));
		q += sizeof(d.u.ipv4);
		break;
	case SPOP_T_IPV6:
		if ((size_t)(end - q) < sizeof(d.u.ipv6))
			return SPOP_RC_NEED_MORE;
		memcpy(d.u.ipv6, q, sizeof(d.u.ipv6));
		q += sizeof(d.u.ipv6);
		break;
	case SPOP_T_STRING:
	case SPOP_T_BINARY:
		rc = spop_bytes_decode(&q, end, &d.u.buf.ptr, &d.u.buf.len);
		if (rc != SPOP_RC_OK)
			return rc;
		break;
	default:
		/* SPOE.txt 3.1: 10..15 are reserved. */
		return SPOP_RC_MALFORMED;
	}
	*out = d;
	*p = q;
	return SPOP_RC_OK;
}

enum spop_rc spop_kv_next(const uint8_t **p, const uint8_t *end,
                          struct spop_kv *kv)
{
	const uint8_t *q = *p;
	struct spop_kv k;
	enum spop_rc rc;

	rc = spop_bytes_decode(&q, end, &k.name, &k.name_len);
	if (rc != SPOP_RC_OK)
		return rc;
	rc = spop_data_decode(&q, end, &k.value);
	if (rc != SPOP_RC_OK)
		return rc;
	*kv = k;
	*p = q;
	return SPOP_RC_OK;
}

static uint32_t spop_get_be32(const uint8_t *b)
{
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) |
	       ((uint32_t)b[2] << 8) | (uint32_t)b[3];
}

enum spop_rc spop_frame_decode(const uint8_t **p, const uint8_t *end,
                               uint32_t max_frame_size, struct spop_frame *f)
{
	const uint8_t *q = *p;
	const uint8_t *fend;
	struct spop_frame fr;
	uint32_t len;

	if ((size_t)(end - q) < SPOP_LEN_PREFIX)
		return SPOP_RC_NEED_MORE;
	len = spop_get_be32(q);
	q += SPOP_LEN_PREFIX;
	/* Decided from the prefix alone, so a peer cannot make us buffer a
	 * frame we would reject anyway. */
	if (len < SPOP_FRAME_HDR_MIN)
		return SPOP_RC_MALFORMED;
	if (len > max_frame_size)
		return SPOP_RC_TOO_BIG;
	if ((size_t)(end - q) < len)
		return SPOP_RC_NEED_MORE;
	fend = q + len;

	fr.type = *q++;
	fr.flags = spop_get_be32(q);
	q += 4;
	/* The frame is complete: a varint running past it is malformed. */
	if (spop_varint_decode(&q, fend, &fr.stream_id) != SPOP_RC_OK ||
	    spop_varint_decode(&q, fend, &fr.frame_id) != SPOP_RC_OK)
		return SPOP_RC_MALFORMED;
	fr.payload = q;
	fr.payload_len = (size_t)(fend - q);
	*f = fr;
	*p = fend;
	return SPOP_RC_OK;
}

/* Inside a complete frame there is nothing more to wait for. */
static enum spop_rc spop_in_frame(enum spop_rc rc)
{
	return rc == SPOP_RC_NEED_MORE ? SPOP_RC_MALFORMED : rc;
}

/*
 * Next message of a LIST-OF-MESSAGES. Called with *p == end (no message
 * left) it returns MALFORMED: callers loop `while (p < end)`.
 */
enum spop_rc spop_msg_next(const uint8_t **p, const uint8_t *end,
                           struct spop_msg *msg)
{
	const uint8_t *q = *p;
	struct spop_msg m;
	struct spop_kv kv;
	unsigned int i;
	enum spop_rc rc;

	rc = spop_bytes_decode(&q, end, &m.name, &m.name_len);
	if (rc != SPOP_RC_OK)
		return spop_in_frame(rc);
	if (q >= end)
		return SPOP_RC_MALFORMED;
	m.nargs = *q++;
	m.args = q;
	for (i = 0; i < m.nargs; i++) {
		rc = spop_kv_next(&q, end, &kv);
		if (rc != SPOP_RC_OK)
			return spop_in_frame(rc);
	}
	m.args_end = q;
	*msg = m;
	*p = q;
	return SPOP_RC_OK;
}

/* Exact-length key match: "max-frame" or "max-frame-size-x" are not
 * "max-frame-size". */
static int spop_key_is(const struct spop_kv *kv, const char *key)
{
	size_t n = strlen(key);

	return kv->name_len == n && (n == 0 || memcmp(kv->name, key, n) == 0);
}

static int spop_is_int(const struct spop_data *d)
{
	return d->type == SPOP_T_INT32 || d->type == SPOP_T_UINT32 ||
	       d->type == SPOP_T_INT64 || d->type == SPOP_T_UINT64;
}

/* Store a non-negative integer of any of the four integer types; -1 if the
 * value is negative or not an integer. */
static int spop_int_value(const struct spop_data *d, uint64_t *out)
{
	if (!spop_is_int(d))
		return -1;
	if (d->type == SPOP_T_INT32 || d->type == SPOP_T_INT64) {
		if (d->u.sint < 0)
			return -1;
		*out = (uint64_t)d->u.sint;
	} else {
		*out = d->u.uint;
	}
	return 0;
}

/*
 * HAPROXY-HELLO (SPOE.txt 3.2.4). HAProxy sends max-frame-size as UINT32,
 * but any non-negative integer type is accepted. A repeated key: the last
 * one wins. On MALFORMED *h is zeroed.
 */
enum spop_rc spop_hello_decode(const uint8_t *payload, size_t len,
                               struct spop_hello *h)
{
	const uint8_t *q = payload;
	const uint8_t *end;
	struct spop_hello r;
	struct spop_kv kv;
	enum spop_rc rc;

	memset(&r, 0, sizeof(r));
	memset(h, 0, sizeof(*h));
	if (len == 0)
		return SPOP_RC_OK;
	if (payload == NULL)
		return SPOP_RC_MALFORMED;
	end = payload + len;
	while (q < end) {
		rc = spop_kv_next(&q, end, &kv);
		if (rc != SPOP_RC_OK)
			return spop_in_frame(rc);
		if (spop_key_is(&kv, "supported-versions")) {
			if (kv.value.type != SPOP_T_STRING)
				return SPOP_RC_MALFORMED;
			r.has_versions = 1;
			r.versions = kv.value.u.buf.ptr;
			r.versions_len = kv.value.u.buf.len;
		} else if (spop_key_is(&kv, "max-frame-size")) {
			if (spop_int_value(&kv.value, &r.max_frame_size) != 0)
				return SPOP_RC_MALFORMED;
			r.has_max_frame_size = 1;
		} else if (spop_key_is(&kv, "capabilities")) {
			if (kv.value.type != SPOP_T_STRING)
				return SPOP_RC_MALFORMED;
			r.has_capabilities = 1;
			r.capabilities = kv.value.u.buf.ptr;
			r.capabilities_len = kv.value.u.buf.len;
		} else if (spop_key_is(&kv, "healthcheck")) {
			if (kv.value.type != SPOP_T_BOOL)
				return SPOP_RC_MALFORMED;
			r.healthcheck = kv.value.u.boolean;
		} else if (spop_key_is(&kv, "engine-id")) {
			if (kv.value.type != SPOP_T_STRING)
				return SPOP_RC_MALFORMED;
			r.engine_id = kv.value.u.buf.ptr;
			r.engine_id_len = kv.value.u.buf.len;
		}
		/* SPOE.txt 3.2.1: unknown items are silently ignored. */
	}
	*h = r;
	return SPOP_RC_OK;
}

/*
 * HAPROXY-DISCONNECT (SPOE.txt 3.2.8). Lenient: we are closing anyway, so
 * only a structurally broken KV-LIST is MALFORMED; a known key with an
 * unexpected type (or a negative status) is ignored like an unknown key.
 * On MALFORMED *d is zeroed.
 */
enum spop_rc spop_disconnect_decode(const uint8_t *payload, size_t len,
                                    struct spop_disconnect *d)
{
	const uint8_t *q = payload;
	const uint8_t *end;
	struct spop_disconnect r;
	struct spop_kv kv;
	enum spop_rc rc;
	uint64_t v;

	memset(&r, 0, sizeof(r));
	memset(d, 0, sizeof(*d));
	if (len == 0)
		return SPOP_RC_OK;
	if (payload == NULL)
		return SPOP_RC_MALFORMED;
	end = payload + len;
	while (q < end) {
		rc = spop_kv_next(&q, end, &kv);
		if (rc != SPOP_RC_OK)
			return spop_in_frame(rc);
		if (spop_key_is(&kv, "status-code")) {
			if (spop_int_value(&kv.value, &v) == 0) {
				r.has_status = 1;
				r.status = v;
			}
		} else if (spop_key_is(&kv, "message")) {
			if (kv.value.type == SPOP_T_STRING) {
				r.message = kv.value.u.buf.ptr;
				r.message_len = kv.value.u.buf.len;
			}
		}
	}
	*d = r;
	return SPOP_RC_OK;
}

static int spop_is_space(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* Parse a decimal number of at most 9 digits (no overflow possible) from
 * the spaces-removed entry; -1 if there is no digit or too many. */
static int spop_parse_dec(const uint8_t **s, const uint8_t *end, long *out)
{
	const uint8_t *q = *s;
	long v = 0;
	int digits = 0;

	for (; q < end; q++) {
		if (spop_is_space(*q))
			continue;
		if (*q < '0' || *q > '9')
			break;
		if (++digits > 9)
			return -1;
		v = v * 10 + (*q - '0');
	}
	if (digits == 0)
		return -1;
	*out = v;
	*s = q;
	return 0;
}

/* One "Major.Minor" entry, spaces anywhere ignored (SPOE.txt 3.2.4). */
static int spop_version_entry_is_v2(const uint8_t *s, const uint8_t *end)
{
	long major, minor;

	if (spop_parse_dec(&s, end, &major) != 0)
		return 0;
	if (s >= end || *s != '.')
		return 0;
	s++;
	if (spop_parse_dec(&s, end, &minor) != 0)
		return 0;
	/* Only spaces may follow the minor number. */
	for (; s < end; s++)
		if (!spop_is_space(*s))
			return 0;
	return major == 2;
}

int spop_versions_have_v2(const uint8_t *s, size_t len)
{
	const uint8_t *end, *comma;

	if (s == NULL)
		return 0;
	end = s + len;
	while (s < end) {
		comma = memchr(s, ',', (size_t)(end - s));
		if (comma == NULL)
			comma = end;
		if (spop_version_entry_is_v2(s, comma))
			return 1;
		s = comma == end ? end : comma + 1;
	}
	return 0;
}

/* Tokens are trimmed of surrounding spaces and compared exactly. */
int spop_caps_have(const uint8_t *s, size_t len, const char *cap)
{
	const uint8_t *end, *comma, *a, *b;
	size_t n;

	if (s == NULL || cap == NULL || cap[0] == '\0')
		return 0;
	n = strlen(cap);
	end = s + len;
	while (s < end) {
		comma = memchr(s, ',', (size_t)(end - s));
		if (comma == NULL)
			comma = end;
		a = s;
		b = comma;
		while (a < b && spop_is_space(*a))
			a++;
		while (b > a && spop_is_space(b[-1]))
			b--;
		if ((size_t)(b - a) == n && memcmp(a, cap, n) == 0)
			return 1;
		s = comma == end ? end : comma + 1;
	}
	return 0;
}

/* ---- encoding ---------------------------------------------------------- */

void spop_wr_init(struct spop_wr *w, uint8_t *buf, size_t room)
{
	w->p = buf;
	w->end = buf != NULL ? buf + room : buf;
	w->err = 0;
}

size_t spop_varint_len(uint64_t v)
{
	size_t n = 1;

	if (v < 240)
		return 1;
	v = (v - 240) >> 4;
	while (v >= 128) {
		v = (v - 128) >> 7;
		n++;
	}
	return n + 1;
}

static size_t spop_varint_enc(uint8_t *b, uint64_t v)
{
	size_t n = 0;

	if (v < 240) {
		b[0] = (uint8_t)v;
		return 1;
	}
	b[n++] = (uint8_t)((v | 0xF0) & 0xFF);
	v = (v - 240) >> 4;
	while (v >= 128) {
		b[n++] = (uint8_t)((v | 0x80) & 0xFF);
		v = (v - 128) >> 7;
	}
	b[n++] = (uint8_t)v;
	return n;
}

/* All-or-nothing raw write: on overflow nothing is written and err sticks. */
static void spop_put_raw(struct spop_wr *w, const void *s, size_t len)
{
	if (w->err)
		return;
	if (len > (size_t)(w->end - w->p)) {
		w->err = 1;
		return;
	}
	if (len > 0)
		memcpy(w->p, s, len);
	w->p += len;
}

void spop_put_u8(struct spop_wr *w, uint8_t v)
{
	spop_put_raw(w, &v, 1);
}

void spop_put_varint(struct spop_wr *w, uint64_t v)
{
	uint8_t b[SPOP_VARINT_MAX_LEN];

	spop_put_raw(w, b, spop_varint_enc(b, v));
}

void spop_put_bytes(struct spop_wr *w, const void *s, size_t len)
{
	if (w->err)
		return;
	if (s == NULL && len > 0) {
		w->err = 1;
		return;
	}
	/* Check the room for both parts first so the put stays atomic. */
	if (spop_varint_len(len) > (size_t)(w->end - w->p) ||
	    len > (size_t)(w->end - w->p) - spop_varint_len(len)) {
		w->err = 1;
		return;
	}
	spop_put_varint(w, len);
	spop_put_raw(w, s, len);
}

/*
 * Typed data. A value our own decoder would reject (unknown type, INT32 or
 * UINT32 out of range, NULL buffer with a length) sets err rather than put
 * a malformed frame on the wire.
 */
void spop_put_data(struct spop_wr *w, const struct spop_data *d)
{
	if (w->err)
		return;
	if (d == NULL) {
		w->err = 1;
		return;
	}
	switch (d->type) {
	case SPOP_T_NULL:
		spop_put_u8(w, SPOP_T_NULL);
		break;
	case SPOP_T_BOOL:
		spop_put_u8(w, (uint8_t)(SPOP_T_BOOL | (d->u.boolean ? 0x10 : 0)));
		break;
	case SPOP_T_INT32:
	case SPOP_T_INT64:
		if (d->type == SPOP_T_INT32 &&
		    (d->u.sint < INT32_MIN || d->u.sint > INT32_MAX)) {
			w->err = 1;
			return;
		}
		spop_put_u8(w, (uint8_t)d->type);
		/* Two's-complement bit pattern, as HAProxy encodes it. */
		spop_put_varint(w, (uint64_t)d->u.sint);
		break;
	case SPOP_T_UINT32:
	case SPOP_T_UINT64:
		if (d->type == SPOP_T_UINT32 && d->u.uint > UINT32_MAX) {
			w->err = 1;
			return;
		}
		spop_put_u8(w, (uint8_t)d->type);
		spop_put_varint(w, d->u.uint);
		break;
	case SPOP_T_IPV4:
		spop_put_u8(w, SPOP_T_IPV4);
		spop_put_raw(w, d->u.ipv4, sizeof(d->u.ipv4));
		break;
	case SPOP_T_IPV6:
		spop_put_u8(w, SPOP_T_IPV6);
		spop_put_raw(w, d->u.ipv6, sizeof(d->u.ipv6));
		break;
	case SPOP_T_STRING:
	case SPOP_T_BINARY:
		spop_put_u8(w, (uint8_t)d->type);
		spop_put_bytes(w, d->u.buf.ptr, d->u.buf.len);
		break;
	case SPOP_T_COUNT:
	default:
		w->err = 1;
		break;
	}
}

void spop_put_kv(struct spop_wr *w, const char *name, const struct spop_data *d)
{
	if (name == NULL) {
		w->err = 1;
		return;
	}
	spop_put_bytes(w, name, strlen(name));
	spop_put_data(w, d);
}

uint8_t *spop_frame_begin(struct spop_wr *w, uint8_t type, uint32_t flags,
                          uint64_t stream_id, uint64_t frame_id)
{
	uint8_t *start = w->p;
	uint8_t hdr[SPOP_LEN_PREFIX + 1 + 4];

	/* The length is patched by spop_frame_end(). */
	memset(hdr, 0, SPOP_LEN_PREFIX);
	hdr[4] = type;
	hdr[5] = (uint8_t)(flags >> 24);
	hdr[6] = (uint8_t)(flags >> 16);
	hdr[7] = (uint8_t)(flags >> 8);
	hdr[8] = (uint8_t)flags;
	spop_put_raw(w, hdr, sizeof(hdr));
	spop_put_varint(w, stream_id);
	spop_put_varint(w, frame_id);
	return start;
}

/*
 * On -1 the writer is rewound to `start` and nothing else changes: after an
 * overflow `err` stays set (re-init the writer before reuse); after an
 * oversize frame `err` stays 0, so the caller may write another frame
 * (e.g. an AGENT-DISCONNECT) in the same buffer.
 */
int spop_frame_end(struct spop_wr *w, uint8_t *start, uint32_t max_frame_size)
{
	size_t len;

	/* Not a frame begun on this writer: leave it alone. */
	if (start == NULL || start > w->p)
		return -1;
	/* Fewer than 4 bytes written is only possible after an overflow in
	 * spop_frame_begin() (err is then set) or a misuse. */
	if (w->err || (size_t)(w->p - start) < SPOP_LEN_PREFIX) {
		w->p = start;
		return -1;
	}
	len = (size_t)(w->p - start) - SPOP_LEN_PREFIX;
	if (len > max_frame_size) {
		w->p = start;
		return -1;
	}
	start[0] = (uint8_t)(len >> 24);
	start[1] = (uint8_t)(len >> 16);
	start[2] = (uint8_t)(len >> 8);
	start[3] = (uint8_t)len;
	return 0;
}

/* SPOE.txt 3.4: <1><3><scope><name><typed value> */
void spop_put_set_var(struct spop_wr *w, enum spop_scope scope,
                      const char *name, const struct spop_data *value)
{
	if (name == NULL || (unsigned int)scope >= SPOP_SCOPE_COUNT) {
		w->err = 1;
		return;
	}
	spop_put_u8(w, SPOP_ACT_SET_VAR);
	spop_put_u8(w, 3);
	spop_put_u8(w, (uint8_t)scope);
	spop_put_bytes(w, name, strlen(name));
	spop_put_data(w, value);
}

/* SPOE.txt 3.4: <2><2><scope><name> */
void spop_put_unset_var(struct spop_wr *w, enum spop_scope scope,
                        const char *name)
{
	if (name == NULL || (unsigned int)scope >= SPOP_SCOPE_COUNT) {
		w->err = 1;
		return;
	}
	spop_put_u8(w, SPOP_ACT_UNSET_VAR);
	spop_put_u8(w, 2);
	spop_put_u8(w, (uint8_t)scope);
	spop_put_bytes(w, name, strlen(name));
}

/* ---- value constructors ------------------------------------------------ */

struct spop_data spop_null(void)
{
	struct spop_data d;

	memset(&d, 0, sizeof(d));
	d.type = SPOP_T_NULL;
	return d;
}

struct spop_data spop_bool(int b)
{
	struct spop_data d = spop_null();

	d.type = SPOP_T_BOOL;
	d.u.boolean = b != 0;
	return d;
}

struct spop_data spop_sint(int64_t v)
{
	struct spop_data d = spop_null();

	d.type = SPOP_T_INT64;
	d.u.sint = v;
	return d;
}

struct spop_data spop_uint(uint64_t v)
{
	struct spop_data d = spop_null();

	d.type = SPOP_T_UINT64;
	d.u.uint = v;
	return d;
}

struct spop_data spop_int32(int32_t v)
{
	struct spop_data d = spop_null();

	d.type = SPOP_T_INT32;
	d.u.sint = v;
	return d;
}

struct spop_data spop_uint32(uint32_t v)
{
	struct spop_data d = spop_null();

	d.type = SPOP_T_UINT32;
	d.u.uint = v;
	return d;
}

struct spop_data spop_str(const char *s, size_t len)
{
	struct spop_data d = spop_null();

	d.type = SPOP_T_STRING;
	d.u.buf.ptr = (const uint8_t *)s;
	d.u.buf.len = len;
	return d;
}

struct spop_data spop_cstr(const char *s)
{
	if (s == NULL)
		return spop_str("", 0);
	return spop_str(s, strlen(s));
}

struct spop_data spop_bin(const void *s, size_t len)
{
	struct spop_data d = spop_null();

	d.type = SPOP_T_BINARY;
	d.u.buf.ptr = s;
	d.u.buf.len = len;
	return d;
}
