/*
 * etcd.h - a client of etcd's v3 API through its JSON gateway (HTTP/1.1
 * with libcurl): a prefix range at one revision, transactions, and a
 * watch stream. Keys and values are bytes (base64 on the wire); integers
 * arrive as JSON strings or numbers. Every reader of the network is
 * bounded (ETCD_MAX_*). Thread-safe: each call uses its own curl handle;
 * the current endpoint rotates on a connection failure.
 */
#ifndef MTLS_ETCD_H
#define MTLS_ETCD_H

#include <stddef.h>
#include <stdint.h>

#define ETCD_MAX_ENDPOINTS  16
#define ETCD_MAX_RESPONSE   (256u << 20)  /* one range/txn answer */
#define ETCD_MAX_MESSAGE    (64u << 20)   /* one watch message */
#define ETCD_MAX_KEYS       1000000u
#define ETCD_PAGE_LIMIT     1000u         /* keys per range page by default */

#define ETCD_WUR __attribute__((warn_unused_result))

struct etcd_opts {
	const char *const *endpoints;   /* "http://127.0.0.1:2379", https too */
	size_t n_endpoints;
	const char *ca_file;            /* NULL: system default */
	const char *cert_file;          /* client certificate, NULL: none */
	const char *key_file;
	const char *user;               /* NULL: no authentication */
	const char *password;
	long timeout_ms;                /* each request (connect + answer); 0: 2000 */
	size_t page_limit;              /* keys per range page; 0: ETCD_PAGE_LIMIT */
};

enum etcd_rc {
	ETCD_OK = 0,
	ETCD_CONFLICT = 1,       /* txn: a compare failed (nothing written) */
	ETCD_COMPACTED = 2,      /* watch: start revision compacted */
	ETCD_STOPPED = 3,        /* watch: callback returned nonzero / etcd_stop */
	ETCD_UNAVAILABLE = -1,   /* no endpoint answered in time */
	ETCD_ERROR = -2,         /* etcd refused the request or answered nonsense */
};

struct etcd_kv {
	char *key;               /* NUL-terminated copies (may hold NULs: use len) */
	size_t key_len;
	char *value;
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version;
};

enum etcd_target { ETCD_TARGET_VERSION, ETCD_TARGET_CREATE, ETCD_TARGET_MOD };
enum etcd_result { ETCD_EQUAL, ETCD_GREATER, ETCD_LESS, ETCD_NOT_EQUAL };

struct etcd_cmp {
	const char *key;
	const char *range_end;   /* NULL: the key alone; else every key in [key, range_end) */
	enum etcd_target target;
	enum etcd_result result;
	int64_t value;
};

struct etcd_op {
	const char *key;
	const char *value;       /* NULL: delete the key */
	size_t value_len;
};

struct etcd_event {
	int is_delete;
	struct etcd_kv kv;       /* for a delete: key and mod_revision */
};

struct etcd;

/* NULL with a message (bad endpoint URL, out of memory). The strings in
 * o are copied. The caller has run curl_global_init (fetch_global_init). */
ETCD_WUR struct etcd *etcd_new(const struct etcd_opts *o, char *err, size_t errlen);
void etcd_free(struct etcd *e);
/* The endpoint in use (for /v1/status); valid until etcd_free. */
const char *etcd_endpoint(struct etcd *e);

/* "/p/" -> "/p0": the end of the prefix range (malloc'd, NULL: out of
 * memory). "" when the prefix has no end (empty, or only 0xff bytes):
 * every key from the prefix on; etcd_range handles that itself. */
ETCD_WUR char *etcd_prefix_end(const char *prefix);

/* Every key under prefix at one revision (paginated, same revision):
 * *kvs (malloc'd, *n entries, sorted by key), *revision. */
ETCD_WUR int etcd_range(struct etcd *e, const char *prefix, int64_t *revision,
               struct etcd_kv **kvs, size_t *n, char *err, size_t errlen);
void etcd_kvs_free(struct etcd_kv *kvs, size_t n);

/* If every compare holds, apply ops: ETCD_OK with the new *revision;
 * ETCD_CONFLICT with etcd's current *revision; or an error. */
ETCD_WUR int etcd_txn(struct etcd *e, const struct etcd_cmp *cmp, size_t n_cmp,
             const struct etcd_op *ops, size_t n_ops, int64_t *revision,
             char *err, size_t errlen);

/* Called per watch message that has events, in revision order; `revision`
 * is the message header's. Nonzero stops the watch (ETCD_STOPPED). */
typedef int (*etcd_watch_fn)(void *ctx, int64_t revision,
                             const struct etcd_event *ev, size_t n);

/* Watch prefix from start_revision (<= 0: from now) until an error, a
 * compaction (ETCD_COMPACTED, *compact_revision set), or etcd_stop().
 * Blocks. A dead peer is detected by TCP keepalive (idle 2 s, 3 probes
 * 1 s apart, TCP_USER_TIMEOUT 5 s); progress notifications are asked for
 * but come only every 10 min by etcd's default. An endpoint that does not
 * create the watch within 2 x timeout_ms is passed over; once created, a
 * lost connection returns ETCD_UNAVAILABLE (the caller reconnects). */
ETCD_WUR int etcd_watch(struct etcd *e, const char *prefix, int64_t start_revision,
               etcd_watch_fn fn, void *ctx, int64_t *compact_revision,
               char *err, size_t errlen);
/* Any thread: the running etcd_watch returns ETCD_STOPPED soon (<= 200 ms).
 * Sticky: every later etcd_watch on e returns ETCD_STOPPED at once (a stop
 * for shutdown must not be lost when it comes between two watches). */
void etcd_stop(struct etcd *e);

/* ---- for tests and fuzzing: the decoders the calls above use ---- */

/* One watch message ({"result": {...}}): its events (*ev malloc'd), the
 * header revision, compact_revision, created/canceled. 0 or -1. */
struct etcd_watch_msg {
	int64_t revision;
	int64_t compact_revision;
	int created, canceled;
	struct etcd_event *ev;
	size_t n_ev;
	char cancel_reason[128];  /* etcd's, when canceled */
};
ETCD_WUR int etcd_parse_watch(const char *json, size_t len, struct etcd_watch_msg *m,
                     char *err, size_t errlen);
void etcd_watch_msg_free(struct etcd_watch_msg *m);

/* The stream framer: bytes in, each complete top-level JSON object out
 * (the gateway writes one per message, whitespace between). Zero-init the
 * struct; max 0 means ETCD_MAX_MESSAGE. Returns 0 when all of p was
 * consumed; -1 when a message exceeds max or a byte outside an object is
 * not whitespace (the stream cannot be resynchronised: drop it); or the
 * first nonzero value msg returned (feeding stopped there). scan is
 * unused. */
struct etcd_framer {
	char *buf;
	size_t len, cap, max;
	size_t scan, depth;
	int in_str, esc;
};
ETCD_WUR int etcd_framer_feed(struct etcd_framer *f, const char *p, size_t n,
                     int (*msg)(void *ctx, const char *json, size_t len),
                     void *ctx);
void etcd_framer_free(struct etcd_framer *f);

/* A range answer: kvs, revision, more. 0 or -1. */
ETCD_WUR int etcd_parse_range(const char *json, size_t len, int64_t *revision,
                     struct etcd_kv **kvs, size_t *n, int *more,
                     char *err, size_t errlen);

#endif /* MTLS_ETCD_H */
