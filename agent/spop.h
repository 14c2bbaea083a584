/*
 * spop.h - SPOP 2.0 codec (HAProxy Stream Processing Offload Protocol).
 *
 * Pure code: no I/O, no allocation. Decoders take a cursor and an end
 * pointer, never read past `end`, and move the cursor only on success.
 * Decoded strings and binaries are views into the caller's buffer.
 *
 * Reference: SPOE.txt section 3 (zcat /usr/share/doc/haproxy/SPOE.txt.gz).
 */
#ifndef MTLS_SPOP_H
#define MTLS_SPOP_H

#include <stddef.h>
#include <stdint.h>

#define SPOP_WUR __attribute__((warn_unused_result))

/* SPOE.txt 3.1: varints are HAProxy "peers" encoded. 10 bytes hold any
 * 64-bit value; an 11th byte is malformed (HAProxy's decoder is unbounded). */
#define SPOP_VARINT_MAX_LEN 10

/* SPOE.txt 3.2: frames carry a 4-byte big-endian length prefix. */
#define SPOP_LEN_PREFIX 4
/* type(1) + flags(4) + stream-id(>=1) + frame-id(>=1) */
#define SPOP_FRAME_HDR_MIN 7
/* SPOE.txt 3.2: both peers must accept frames of at least 256 bytes. */
#define SPOP_MIN_FRAME_SIZE 256
/* HAProxy's default and largest usual max-frame-size (tune.bufsize - 4). */
#define SPOP_DEFAULT_FRAME_SIZE 16380

/* Result of a decoder. NEED_MORE only makes sense on a stream (an
 * incomplete frame); inside a complete frame a truncation is MALFORMED. */
enum spop_rc {
	SPOP_RC_OK = 0,
	SPOP_RC_NEED_MORE,
	SPOP_RC_MALFORMED,
	SPOP_RC_TOO_BIG,          /* frame length over the allowed maximum */
	SPOP_RC_COUNT
};

/* SPOE.txt 3.2.2 */
enum spop_frame_type {
	SPOP_FRAME_UNSET = 0,
	SPOP_FRAME_HAPROXY_HELLO = 1,
	SPOP_FRAME_HAPROXY_DISCONNECT = 2,
	SPOP_FRAME_NOTIFY = 3,
	SPOP_FRAME_AGENT_HELLO = 101,
	SPOP_FRAME_AGENT_DISCONNECT = 102,
	SPOP_FRAME_ACK = 103,
};

#define SPOP_FLAG_FIN   0x00000001u
#define SPOP_FLAG_ABORT 0x00000002u

/* SPOE.txt 3.5 */
enum spop_status {
	SPOP_ST_NORMAL = 0,
	SPOP_ST_IO = 1,
	SPOP_ST_TIMEOUT = 2,
	SPOP_ST_TOO_BIG = 3,
	SPOP_ST_INVALID = 4,
	SPOP_ST_NO_VSN = 5,
	SPOP_ST_NO_FRAME_SIZE = 6,
	SPOP_ST_NO_CAP = 7,
	SPOP_ST_BAD_VSN = 8,
	SPOP_ST_BAD_FRAME_SIZE = 9,
	SPOP_ST_FRAG_NOT_SUPPORTED = 10,
	SPOP_ST_INTERLACED_FRAMES = 11,
	SPOP_ST_FRAMEID_NOTFOUND = 12,
	SPOP_ST_RES = 13,
	SPOP_ST_UNKNOWN = 99,
};

/* Text for an AGENT-DISCONNECT message and for logs. Never NULL. */
const char *spop_status_str(unsigned int status);

/* SPOE.txt 3.1 typed data */
enum spop_type {
	SPOP_T_NULL = 0,
	SPOP_T_BOOL = 1,
	SPOP_T_INT32 = 2,
	SPOP_T_UINT32 = 3,
	SPOP_T_INT64 = 4,
	SPOP_T_UINT64 = 5,
	SPOP_T_IPV4 = 6,
	SPOP_T_IPV6 = 7,
	SPOP_T_STRING = 8,
	SPOP_T_BINARY = 9,
	SPOP_T_COUNT
};

/* SPOE.txt 3.4 variable scopes */
enum spop_scope {
	SPOP_SCOPE_PROC = 0,
	SPOP_SCOPE_SESS = 1,
	SPOP_SCOPE_TXN = 2,
	SPOP_SCOPE_REQ = 3,
	SPOP_SCOPE_RES = 4,
	SPOP_SCOPE_COUNT
};

enum spop_action_type {
	SPOP_ACT_SET_VAR = 1,
	SPOP_ACT_UNSET_VAR = 2,
};

/* A decoded typed value. For STRING/BINARY, `buf` points into the input
 * (not NUL-terminated). Integers: INT32/INT64 use `sint`, UINT32/UINT64
 * use `uint`; BOOL uses `boolean` (0 or 1). */
struct spop_data {
	enum spop_type type;
	union {
		int boolean;
		int64_t sint;
		uint64_t uint;
		uint8_t ipv4[4];
		uint8_t ipv6[16];
		struct {
			const uint8_t *ptr;
			size_t len;
		} buf;
	} u;
};

/* One KV-LIST item or one message argument. The name may be empty. */
struct spop_kv {
	const uint8_t *name;
	size_t name_len;
	struct spop_data value;
};

/* A decoded frame header; `payload` points into the input buffer. */
struct spop_frame {
	uint8_t type;
	uint32_t flags;
	uint64_t stream_id;
	uint64_t frame_id;
	const uint8_t *payload;
	size_t payload_len;
};

/* One message of a LIST-OF-MESSAGES. [args, args_end) holds `nargs`
 * already-validated KV items, to be walked with spop_kv_next(). */
struct spop_msg {
	const uint8_t *name;
	size_t name_len;
	unsigned int nargs;
	const uint8_t *args;
	const uint8_t *args_end;
};

/* Decoded HAPROXY-HELLO (SPOE.txt 3.2.4). has_* tell which keys were seen. */
struct spop_hello {
	int has_versions, has_max_frame_size, has_capabilities;
	const uint8_t *versions;       size_t versions_len;
	uint64_t max_frame_size;
	const uint8_t *capabilities;   size_t capabilities_len;
	int healthcheck;
	const uint8_t *engine_id;      size_t engine_id_len; /* NULL if absent */
};

/* Decoded HAPROXY-DISCONNECT (SPOE.txt 3.2.8). */
struct spop_disconnect {
	int has_status;
	uint64_t status;
	const uint8_t *message; size_t message_len; /* NULL if absent */
};

/* ---- decoding ---------------------------------------------------------- */

/* Decode one varint. Returns OK, NEED_MORE (input ends inside it) or
 * MALFORMED (longer than SPOP_VARINT_MAX_LEN or above UINT64_MAX). */
SPOP_WUR enum spop_rc spop_varint_decode(const uint8_t **p, const uint8_t *end,
                                         uint64_t *out);

/* Decode a length-prefixed byte string (names: varint length + bytes, no
 * type byte). NEED_MORE if truncated. */
SPOP_WUR enum spop_rc spop_bytes_decode(const uint8_t **p, const uint8_t *end,
                                        const uint8_t **s, size_t *len);

/* Decode one TYPED-DATA. Unknown types (10..15) are MALFORMED; INT32 and
 * UINT32 values out of their 32-bit range are MALFORMED. */
SPOP_WUR enum spop_rc spop_data_decode(const uint8_t **p, const uint8_t *end,
                                       struct spop_data *out);

/* Decode one KV item (name then typed data). */
SPOP_WUR enum spop_rc spop_kv_next(const uint8_t **p, const uint8_t *end,
                                   struct spop_kv *kv);

/* Decode a frame from a stream buffer [*p, end): the 4-byte length, then
 * the header. Returns NEED_MORE until the whole frame is buffered,
 * TOO_BIG if its length exceeds `max_frame_size` (checked as soon as the
 * 4-byte length is known), MALFORMED if its length is below the minimum
 * header or the header does not parse within it. On OK, *p moves past the
 * whole frame and `f->payload` spans the rest of it. */
SPOP_WUR enum spop_rc spop_frame_decode(const uint8_t **p, const uint8_t *end,
                                        uint32_t max_frame_size,
                                        struct spop_frame *f);

/* Next message of a NOTIFY payload (LIST-OF-MESSAGES). Validates every
 * argument so the cursor lands on the next message. Truncation inside the
 * payload is MALFORMED. */
SPOP_WUR enum spop_rc spop_msg_next(const uint8_t **p, const uint8_t *end,
                                    struct spop_msg *msg);

/* Parse a HAPROXY-HELLO payload. Unknown keys are ignored. A key with the
 * wrong type is MALFORMED. Missing mandatory keys are reported through
 * has_* so the caller can answer the precise status code. */
SPOP_WUR enum spop_rc spop_hello_decode(const uint8_t *payload, size_t len,
                                        struct spop_hello *h);

/* Parse a HAPROXY-DISCONNECT payload (lenient: unknown keys ignored). */
SPOP_WUR enum spop_rc spop_disconnect_decode(const uint8_t *payload, size_t len,
                                             struct spop_disconnect *d);

/* 1 if the comma-separated "Major.Minor" list (spaces ignored) offers any
 * 2.x version, else 0. */
int spop_versions_have_v2(const uint8_t *s, size_t len);

/* 1 if the comma-separated list (spaces ignored) contains `cap` exactly. */
int spop_caps_have(const uint8_t *s, size_t len, const char *cap);

/* ---- encoding ---------------------------------------------------------- */

/* A bounded writer with a sticky error: after any overflow every further
 * put is a no-op and `err` stays 1, so a caller encodes a whole frame and
 * checks once. */
struct spop_wr {
	uint8_t *p;
	uint8_t *end;
	int err;
};

void spop_wr_init(struct spop_wr *w, uint8_t *buf, size_t room);

/* Bytes a varint takes (1..10). */
size_t spop_varint_len(uint64_t v);

void spop_put_u8(struct spop_wr *w, uint8_t v);
void spop_put_varint(struct spop_wr *w, uint64_t v);
/* varint length + bytes, no type byte (names). */
void spop_put_bytes(struct spop_wr *w, const void *s, size_t len);
void spop_put_data(struct spop_wr *w, const struct spop_data *d);
/* KV item: name then typed value. */
void spop_put_kv(struct spop_wr *w, const char *name, const struct spop_data *d);

/* Start a frame: reserves the 4-byte length and writes the header.
 * Returns the frame start to hand to spop_frame_end(). */
uint8_t *spop_frame_begin(struct spop_wr *w, uint8_t type, uint32_t flags,
                          uint64_t stream_id, uint64_t frame_id);
/* Patch the length of the frame begun at `start`. Returns 0, or -1 if the
 * writer overflowed or the frame (without its 4-byte prefix) exceeds
 * `max_frame_size`; on -1 the writer is rewound to `start`. */
SPOP_WUR int spop_frame_end(struct spop_wr *w, uint8_t *start,
                            uint32_t max_frame_size);

/* Actions of an ACK payload (SPOE.txt 3.4). */
void spop_put_set_var(struct spop_wr *w, enum spop_scope scope,
                      const char *name, const struct spop_data *value);
void spop_put_unset_var(struct spop_wr *w, enum spop_scope scope,
                        const char *name);

/* Convenience constructors for values. */
struct spop_data spop_null(void);
struct spop_data spop_bool(int b);
struct spop_data spop_sint(int64_t v);   /* INT64 */
struct spop_data spop_uint(uint64_t v);  /* UINT64 */
struct spop_data spop_int32(int32_t v);
struct spop_data spop_uint32(uint32_t v);
struct spop_data spop_str(const char *s, size_t len);
struct spop_data spop_cstr(const char *s);
struct spop_data spop_bin(const void *s, size_t len);

#endif /* MTLS_SPOP_H */
