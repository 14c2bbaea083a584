/*
 * metrics.h - the agent's counters and their Prometheus text rendering.
 *
 * Every thread that counts (workers, verify threads, the main thread)
 * writes its own shard of relaxed atomics, registered on its first count:
 * the request path takes no lock and shares no cache line with another
 * thread. A scrape sums the shards, so what it reads of one instant is
 * only as consistent as relaxed loads allow (each counter is monotonic;
 * two counters may be a few increments apart).
 *
 * The opt-in per-policy verdict series (`metrics-policy-label = on`) live
 * in one bounded, insert-only hash shared by all threads (compare-and-swap
 * on insert, relaxed atomic increments), never more than
 * METRICS_MAX_POLICY_SERIES series: past it, verdicts are counted with
 * policy="(other)" and in mtls_spoa_metrics_policy_overflow_total.
 */
#ifndef MTLS_METRICS_H
#define MTLS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"

struct config;

#define METRICS_WUR __attribute__((warn_unused_result))

/* Series of the per-policy verdict counter, at most. */
#define METRICS_MAX_POLICY_SERIES 100000
/* The mode label of a verdict no policy gave: "none". */
#define METRICS_MODE_NONE (-1)

enum metrics_counter {
	METRICS_CACHE_HITS = 0,
	METRICS_CACHE_MISSES,
	METRICS_CACHE_EVICTIONS,
	METRICS_CONN_ACCEPTED,
	METRICS_CONN_REFUSED,
	METRICS_NOTIFY_FRAMES,
	METRICS_NOTIFY_MESSAGES,
	METRICS_RELOAD_SUCCESS,
	METRICS_RELOAD_FAILURE,
	METRICS_POOL_SUBMITTED,    /* handed to the verify pool */
	METRICS_POOL_DONE,         /* back from it */
	METRICS_VERIFY_INLINE,     /* pool full or absent: verified on a worker */
	METRICS_POLICY_OVERFLOW,   /* verdicts past METRICS_MAX_POLICY_SERIES */
	METRICS_CRL_STALE,         /* verifications that consulted a stale CRL */
	METRICS_OCSP_SOFT_FAIL,    /* ocsp = soft, no answer: passed as without */
	METRICS_OCSP_HARD_FAIL,    /* ocsp = hard, no answer: revocation_unknown */
	METRICS_COUNTER_COUNT
};

/* Upper bounds (seconds) of the verification duration histogram; +Inf
 * follows. */
#define METRICS_VERIFY_BUCKETS 12
extern const double metrics_verify_bounds[METRICS_VERIFY_BUCKETS];

/* Set once at start, before any thread counts: whether verdicts are also
 * counted per matched policy. */
void metrics_set_policy_label(int on);
int metrics_policy_label(void);

void metrics_inc(enum metrics_counter c);
void metrics_add(enum metrics_counter c, uint64_t n);

/* One verdict: `mode` an enum policy_mode or METRICS_MODE_NONE; `policy`
 * the matched pattern (borrowed; copied the first time it is seen), NULL
 * when none. */
void metrics_verdict(enum mtls_result r, enum mtls_action a, int mode,
                     const char *policy);

/* One uncached verification that took `ns` nanoseconds. */
void metrics_verify_ns(uint64_t ns);

/* An AGENT-DISCONNECT with this SPOP status code ended a connection on a
 * protocol error. */
void metrics_protocol_error(unsigned int status);

/* One /v1 request answered with HTTP `status` (admin threads: rare, so
 * plain atomics), and one change the API made (a CA or a host). */
void metrics_api_request(const char *method, int status);
void metrics_api_change(int is_ca);

/* The shared store (fleet.c): its series appear once enabled. */
enum {
	METRICS_STORE_CONNECTING,
	METRICS_STORE_IN_SYNC,
	METRICS_STORE_RECONNECTING,
	METRICS_STORE_SNAPSHOT,
	METRICS_STORE_STATES
};
void metrics_store_enable(void);
void metrics_store_state(int state);
const char *metrics_store_state_name(int state);
void metrics_store_synced(int64_t revision, int64_t when);
void metrics_store_counts(uint64_t events, uint64_t rejected, uint64_t resyncs);
void metrics_store_write_failure(int unavailable);

/* The sum over every shard. */
uint64_t metrics_get(enum metrics_counter c);

/* What a scrape reads from outside the counters. */
struct metrics_view {
	const struct config *cfg;   /* the live generation, may be NULL */
	uint64_t generation;
	double loaded_at;           /* unix seconds of its installation, 0: none */
	uint64_t connections;       /* SPOP connections open now */
	const char *version;
	const char *openssl;
};

/* A growable text buffer with a sticky error (out of memory). */
struct metrics_text {
	char *p;
	size_t len, cap;
	int err;
};

void metrics_text_free(struct metrics_text *t);
void metrics_printf(struct metrics_text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Append `s` as a label value: backslash, double quote and line feed
 * escaped (exposition format 0.0.4). */
void metrics_put_label(struct metrics_text *t, const char *s);

/* Render every metric family in the Prometheus text exposition format
 * 0.0.4 into `t` (appended; the caller frees it). Returns 0, or -1 when
 * memory ran out (t->err). */
METRICS_WUR int metrics_render(const struct metrics_view *v,
                               struct metrics_text *t);

/* Zero every counter and forget the policy series (tests only: not safe
 * while other threads count). */
void metrics_reset(void);

/* The crl-url fetcher whose per-URL series /metrics shows (NULL: none).
 * Its owner clears it before freeing it. */
struct crlsrc;
void metrics_set_crlsrc(struct crlsrc *s);
struct crlsrc *metrics_get_crlsrc(void);

#endif /* MTLS_METRICS_H */
