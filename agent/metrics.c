/*
 * metrics.c - per-thread counter shards, the bounded per-policy verdict
 * series, and the Prometheus text exposition (format 0.0.4).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hosts.h"
#include "crlsrc.h"
#include "metrics.h"
#include "ocsp.h"
#include "spop.h"

#define METRICS_MODES (MODE_COUNT + 1)   /* the policy modes, then "none" */
#define METRICS_STATUS_SLOTS 15          /* SPOP status 0..13, then other */
/* Slots of the policy hash: a power of two, under 40 % full at the bound. */
#define METRICS_POLICY_SLOTS (1u << 18)
_Static_assert(METRICS_POLICY_SLOTS > 2 * METRICS_MAX_POLICY_SERIES,
               "policy hash load factor");

const double metrics_verify_bounds[METRICS_VERIFY_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
};

struct metrics_shard {
	atomic_uint_fast64_t counters[METRICS_COUNTER_COUNT];
	atomic_uint_fast64_t verdicts[RESULT_COUNT][ACTION_COUNT][METRICS_MODES];
	atomic_uint_fast64_t buckets[METRICS_VERIFY_BUCKETS + 1]; /* last: +Inf */
	atomic_uint_fast64_t verify_ns;
	atomic_uint_fast64_t proto[METRICS_STATUS_SLOTS];
	struct metrics_shard *next;
};

/* One series of the per-policy verdict counter. Immutable but `count`. */
struct metrics_series {
	uint64_t hash;
	uint8_t result, action, mode;
	atomic_uint_fast64_t count;
	char policy[];
};

static pthread_mutex_t shards_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_shard *shards;
/* Used by a thread whose own shard could not be allocated. */
static struct metrics_shard spill_shard;
static _Thread_local struct metrics_shard *my_shard;

static int policy_label;
static _Atomic(struct metrics_series *) *policy_slots;
static atomic_uint policy_series;
/* Verdicts counted with policy="(other)": the bound was reached. */
static atomic_uint_fast64_t policy_other[RESULT_COUNT][ACTION_COUNT][METRICS_MODES];

static struct metrics_shard *shard(void)
{
	struct metrics_shard *s = my_shard;

	if (s != NULL)
		return s;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return &spill_shard;
	pthread_mutex_lock(&shards_lock);
	s->next = shards;
	shards = s;
	pthread_mutex_unlock(&shards_lock);
	my_shard = s;
	return s;
}

static void bump(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t rd(const atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

void metrics_set_policy_label(int on)
{
	policy_label = on;
	if (on && policy_slots == NULL)
		policy_slots = calloc(METRICS_POLICY_SLOTS, sizeof(*policy_slots));
}

int metrics_policy_label(void)
{
	return policy_label && policy_slots != NULL;
}

void metrics_inc(enum metrics_counter c)
{
	bump(&shard()->counters[c], 1);
}

void metrics_add(enum metrics_counter c, uint64_t n)
{
	bump(&shard()->counters[c], n);
}

/* FNV-1a over the pattern and the three label indexes. */
static uint64_t series_hash(const char *policy, unsigned int r, unsigned int a,
                            unsigned int m)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)policy; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	h = (h ^ r) * 0x100000001b3ULL;
	h = (h ^ a) * 0x100000001b3ULL;
	h = (h ^ m) * 0x100000001b3ULL;
	return h;
}

static int series_is(const struct metrics_series *s, uint64_t h,
                     const char *policy, unsigned int r, unsigned int a,
                     unsigned int m)
{
	return s->hash == h && s->result == r && s->action == a && s->mode == m &&
	       strcmp(s->policy, policy) == 0;
}

/* The series of (policy, r, a, m), created on first sight; NULL when the
 * bound is reached or memory is short. Lock-free: a slot is claimed by
 * compare-and-swap and never changes afterwards. */
static struct metrics_series *series_get(const char *policy, unsigned int r,
                                         unsigned int a, unsigned int m)
{
	uint64_t h = series_hash(policy, r, a, m);
	struct metrics_series *mine = NULL;

	for (uint32_t i = 0; i < METRICS_POLICY_SLOTS; i++) {
		_Atomic(struct metrics_series *) *slot =
			&policy_slots[(h + i) & (METRICS_POLICY_SLOTS - 1)];
		struct metrics_series *s = atomic_load_explicit(slot, memory_order_acquire);

		if (s == NULL) {
			if (mine == NULL) {
				size_t n = strlen(policy) + 1;

				if (atomic_fetch_add(&policy_series, 1) >=
				    METRICS_MAX_POLICY_SERIES) {
					atomic_fetch_sub(&policy_series, 1);
					return NULL;
				}
				mine = calloc(1, sizeof(*mine) + n);
				if (mine == NULL) {
					atomic_fetch_sub(&policy_series, 1);
					return NULL;
				}
				mine->hash = h;
				mine->result = (uint8_t)r;
				mine->action = (uint8_t)a;
				mine->mode = (uint8_t)m;
				memcpy(mine->policy, policy, n);
			}
			if (atomic_compare_exchange_strong_explicit(
				    slot, &s, mine, memory_order_acq_rel,
				    memory_order_acquire))
				return mine;
			/* Another thread took the slot: s is its series. */
		}
		if (series_is(s, h, policy, r, a, m)) {
			if (mine != NULL) {
				free(mine);
				atomic_fetch_sub(&policy_series, 1);
			}
			return s;
		}
	}
	if (mine != NULL) {
		free(mine);
		atomic_fetch_sub(&policy_series, 1);
	}
	return NULL;
}

void metrics_verdict(enum mtls_result r, enum mtls_action a, int mode,
                     const char *policy)
{
	unsigned int m = mode >= 0 && mode < MODE_COUNT ? (unsigned int)mode
	                 : MODE_COUNT;

	if ((unsigned int)r >= RESULT_COUNT || (unsigned int)a >= ACTION_COUNT)
		return;
	bump(&shard()->verdicts[r][a][m], 1);
	if (metrics_policy_label()) {
		struct metrics_series *s = series_get(policy ? policy : "", r, a, m);

		if (s != NULL) {
			bump(&s->count, 1);
		} else {
			bump(&policy_other[r][a][m], 1);
			metrics_inc(METRICS_POLICY_OVERFLOW);
		}
	}
}

void metrics_verify_ns(uint64_t ns)
{
	struct metrics_shard *s = shard();
	int i;

	for (i = 0; i < METRICS_VERIFY_BUCKETS; i++)
		if ((double)ns <= metrics_verify_bounds[i] * 1e9)
			break;
	bump(&s->buckets[i], 1);
	bump(&s->verify_ns, ns);
}

void metrics_protocol_error(unsigned int status)
{
	bump(&shard()->proto[status < METRICS_STATUS_SLOTS - 1 ? status :
	                     METRICS_STATUS_SLOTS - 1], 1);
}

/* Sum of one counter over the shards: `off` is its byte offset in a
 * shard. The list is only ever prepended to, so reading it under the
 * lock costs the counting threads nothing but a shard registration. */
static uint64_t sum_at(size_t off)
{
	uint64_t n = rd((const atomic_uint_fast64_t *)((const char *)&spill_shard + off));
	struct metrics_shard *s;

	pthread_mutex_lock(&shards_lock);
	s = shards;
	pthread_mutex_unlock(&shards_lock);
	for (; s != NULL; s = s->next)
		n += rd((const atomic_uint_fast64_t *)((const char *)s + off));
	return n;
}

#define SUM(field) sum_at(offsetof(struct metrics_shard, field))

uint64_t metrics_get(enum metrics_counter c)
{
	return SUM(counters[c]);
}

/* ---- the tenant API ---------------------------------------------------- */

static const char *const api_methods[] = {
	"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
};
#define API_METHODS (sizeof(api_methods) / sizeof(api_methods[0]))
/* The status codes the API answers; anything else counts as "other". */
static const int api_codes[] = {
	200, 201, 204, 400, 401, 403, 404, 405, 409, 412, 413, 415, 500, 503,
};
#define API_CODES (sizeof(api_codes) / sizeof(api_codes[0]))
static atomic_uint_fast64_t api_requests[API_METHODS][API_CODES + 1];
static atomic_uint_fast64_t api_changes[2];

void metrics_api_request(const char *method, int status)
{
	size_t m, c;

	for (m = 0; m < API_METHODS && strcmp(api_methods[m], method) != 0; m++)
		;
	if (m == API_METHODS)
		return;
	for (c = 0; c < API_CODES && api_codes[c] != status; c++)
		;
	atomic_fetch_add_explicit(&api_requests[m][c], 1, memory_order_relaxed);
}

void metrics_api_change(int is_ca)
{
	atomic_fetch_add_explicit(&api_changes[is_ca ? 1 : 0], 1, memory_order_relaxed);
}

static void family(struct metrics_text *t, const char *name, const char *type,
                   const char *help);

static void render_api(struct metrics_text *t)
{
	family(t, "api_requests_total", "counter", "Tenant API (/v1) requests, "
	       "by method and HTTP status (series with a zero count left out).");
	for (size_t m = 0; m < API_METHODS; m++) {
		for (size_t c = 0; c <= API_CODES; c++) {
			uint64_t n = atomic_load_explicit(&api_requests[m][c],
			                                  memory_order_relaxed);
			char code[16];

			if (n == 0)
				continue;
			if (c < API_CODES)
				snprintf(code, sizeof(code), "%d", api_codes[c]);
			else
				snprintf(code, sizeof(code), "other");
			metrics_printf(t, "mtls_spoa_api_requests_total{method=\"%s\","
			               "code=\"%s\"} %llu\n", api_methods[m], code,
			               (unsigned long long)n);
		}
	}
	family(t, "api_changes_total", "counter", "Changes the tenant API made "
	       "and applied, by kind of object.");
	metrics_printf(t, "mtls_spoa_api_changes_total{kind=\"ca\"} %llu\n"
	               "mtls_spoa_api_changes_total{kind=\"host\"} %llu\n",
	               (unsigned long long)atomic_load(&api_changes[1]),
	               (unsigned long long)atomic_load(&api_changes[0]));
}

/* ---- the shared store (fleet.c) ---- */

static atomic_int store_on;
static atomic_int store_state_v;
static atomic_int_fast64_t store_rev, store_sync;
static atomic_uint_fast64_t store_events, store_rejected, store_resyncs;
static atomic_uint_fast64_t store_wfail[2];

static const char *const store_states[METRICS_STORE_STATES] = {
	[METRICS_STORE_CONNECTING] = "connecting",
	[METRICS_STORE_IN_SYNC] = "in_sync",
	[METRICS_STORE_RECONNECTING] = "reconnecting",
	[METRICS_STORE_SNAPSHOT] = "snapshot",
};

const char *metrics_store_state_name(int state)
{
	return state >= 0 && state < METRICS_STORE_STATES ? store_states[state] :
	       "unknown";
}

void metrics_store_enable(void)
{
	atomic_store(&store_on, 1);
}

void metrics_store_state(int state)
{
	atomic_store(&store_state_v, state);
}

void metrics_store_synced(int64_t revision, int64_t when)
{
	atomic_store(&store_rev, revision);
	atomic_store(&store_sync, when);
}

void metrics_store_counts(uint64_t events, uint64_t rejected, uint64_t resyncs)
{
	atomic_fetch_add(&store_events, events);
	atomic_fetch_add(&store_rejected, rejected);
	atomic_fetch_add(&store_resyncs, resyncs);
}

void metrics_store_write_failure(int unavailable)
{
	atomic_fetch_add(&store_wfail[unavailable ? 1 : 0], 1);
}

static void render_store(struct metrics_text *t)
{
	int st = atomic_load(&store_state_v);

	if (!atomic_load(&store_on))
		return;
	family(t, "store_revision", "gauge", "The etcd revision the live "
	       "configuration was built from.");
	metrics_printf(t, "mtls_spoa_store_revision %lld\n",
	               (long long)atomic_load(&store_rev));
	family(t, "store_state", "gauge", "The connection to etcd: 1 for the "
	       "current state.");
	for (int i = 0; i < METRICS_STORE_STATES; i++)
		metrics_printf(t, "mtls_spoa_store_state{state=\"%s\"} %d\n",
		               store_states[i], i == st);
	family(t, "store_last_sync_timestamp_seconds", "gauge", "When the "
	       "configuration was last in step with etcd (0: never).");
	metrics_printf(t, "mtls_spoa_store_last_sync_timestamp_seconds %lld\n",
	               (long long)atomic_load(&store_sync));
	family(t, "store_watch_events_total", "counter", "Changes read from "
	       "the etcd watch.");
	metrics_printf(t, "mtls_spoa_store_watch_events_total %llu\n",
	               (unsigned long long)atomic_load(&store_events));
	family(t, "store_rejected_objects_total", "counter", "Objects read from "
	       "etcd that did not validate (the live version kept).");
	metrics_printf(t, "mtls_spoa_store_rejected_objects_total %llu\n",
	               (unsigned long long)atomic_load(&store_rejected));
	family(t, "store_resyncs_total", "counter", "Full loads of etcd's "
	       "content after the first (compaction, reconnection).");
	metrics_printf(t, "mtls_spoa_store_resyncs_total %llu\n",
	               (unsigned long long)atomic_load(&store_resyncs));
	family(t, "store_write_failures_total", "counter", "API writes etcd did "
	       "not commit: a conflict retried, or etcd unavailable (503).");
	metrics_printf(t, "mtls_spoa_store_write_failures_total{reason=\"conflict\"} %llu\n"
	               "mtls_spoa_store_write_failures_total{reason=\"unavailable\"} %llu\n",
	               (unsigned long long)atomic_load(&store_wfail[0]),
	               (unsigned long long)atomic_load(&store_wfail[1]));
}

void metrics_reset(void)
{
	memset(api_requests, 0, sizeof(api_requests));
	memset(api_changes, 0, sizeof(api_changes));
	struct metrics_shard *s;

	pthread_mutex_lock(&shards_lock);
	for (s = shards; s != NULL; s = s->next) {
		struct metrics_shard *next = s->next;

		memset(s, 0, sizeof(*s));
		s->next = next;
	}
	pthread_mutex_unlock(&shards_lock);
	memset(&spill_shard, 0, sizeof(spill_shard));
	memset(policy_other, 0, sizeof(policy_other));
	if (policy_slots != NULL) {
		for (uint32_t i = 0; i < METRICS_POLICY_SLOTS; i++) {
			free(atomic_load(&policy_slots[i]));
			atomic_store(&policy_slots[i], NULL);
		}
	}
	atomic_store(&policy_series, 0);
}

/* ---- text --------------------------------------------------------------- */

void metrics_text_free(struct metrics_text *t)
{
	free(t->p);
	memset(t, 0, sizeof(*t));
}

static int text_reserve(struct metrics_text *t, size_t need)
{
	size_t ncap;
	char *n;

	if (t->err)
		return -1;
	if (t->cap - t->len > need)
		return 0;
	ncap = t->cap ? t->cap : 4096;
	while (ncap - t->len <= need)
		ncap *= 2;
	n = realloc(t->p, ncap);
	if (n == NULL) {
		t->err = 1;
		return -1;
	}
	t->p = n;
	t->cap = ncap;
	return 0;
}

void metrics_printf(struct metrics_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (text_reserve(t, 256) != 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->err = 1;
		return;
	}
	if ((size_t)n >= t->cap - t->len) {
		if (text_reserve(t, (size_t)n + 1) != 0)
			return;
		va_start(ap, fmt);
		(void)vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
	}
	t->len += (size_t)n;
}

void metrics_put_label(struct metrics_text *t, const char *s)
{
	if (text_reserve(t, 2 * strlen(s) + 1) != 0)
		return;
	for (; *s; s++) {
		if (*s == '\\' || *s == '"') {
			t->p[t->len++] = '\\';
			t->p[t->len++] = *s;
		} else if (*s == '\n') {
			t->p[t->len++] = '\\';
			t->p[t->len++] = 'n';
		} else {
			t->p[t->len++] = *s;
		}
	}
	t->p[t->len] = '\0';
}

static void family(struct metrics_text *t, const char *name, const char *type,
                   const char *help)
{
	metrics_printf(t, "# HELP mtls_spoa_%s %s\n# TYPE mtls_spoa_%s %s\n",
	               name, help, name, type);
}

static void simple(struct metrics_text *t, const char *name, const char *type,
                   const char *help, uint64_t v)
{
	family(t, name, type, help);
	metrics_printf(t, "mtls_spoa_%s %llu\n", name, (unsigned long long)v);
}

static const char *mode_label(unsigned int m)
{
	return m < MODE_COUNT ? config_mode_str((enum policy_mode)m) : "none";
}

static void verdict_line(struct metrics_text *t, unsigned int r, unsigned int a,
                         unsigned int m, const char *policy, uint64_t n)
{
	metrics_printf(t, "mtls_spoa_verdicts_total{result=\"%s\",action=\"%s\","
	               "mode=\"%s\"", verdict_result_str((enum mtls_result)r),
	               verdict_action_str((enum mtls_action)a), mode_label(m));
	if (policy != NULL) {
		metrics_printf(t, ",policy=\"");
		metrics_put_label(t, policy);
		metrics_printf(t, "\"");
	}
	metrics_printf(t, "} %llu\n", (unsigned long long)n);
}

/* Series appear at their first verdict. */
static void render_verdicts(struct metrics_text *t)
{
	family(t, "verdicts_total", "counter",
	       "Verdicts answered, by result, action and policy mode.");
	if (metrics_policy_label()) {
		for (uint32_t i = 0; i < METRICS_POLICY_SLOTS; i++) {
			struct metrics_series *s =
				atomic_load_explicit(&policy_slots[i], memory_order_acquire);

			if (s != NULL)
				verdict_line(t, s->result, s->action, s->mode, s->policy,
				             rd(&s->count));
		}
	}
	for (unsigned int r = 0; r < RESULT_COUNT; r++)
		for (unsigned int a = 0; a < ACTION_COUNT; a++)
			for (unsigned int m = 0; m < METRICS_MODES; m++) {
				uint64_t n;

				if (metrics_policy_label()) {
					n = rd(&policy_other[r][a][m]);
					if (n > 0)
						verdict_line(t, r, a, m, "(other)", n);
					continue;
				}
				n = SUM(verdicts[r][a][m]);
				if (n > 0)
					verdict_line(t, r, a, m, NULL, n);
			}
}

static void render_histogram(struct metrics_text *t)
{
	uint64_t cum = 0;

	family(t, "verify_duration_seconds", "histogram",
	       "Duration of uncached certificate verifications (trust_verify), "
	       "in seconds.");
	for (int i = 0; i <= METRICS_VERIFY_BUCKETS; i++) {
		cum += SUM(buckets[i]);
		if (i < METRICS_VERIFY_BUCKETS)
			metrics_printf(t, "mtls_spoa_verify_duration_seconds_bucket"
			               "{le=\"%g\"} %llu\n", metrics_verify_bounds[i],
			               (unsigned long long)cum);
		else
			metrics_printf(t, "mtls_spoa_verify_duration_seconds_bucket"
			               "{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	}
	metrics_printf(t, "mtls_spoa_verify_duration_seconds_sum %.9f\n"
	               "mtls_spoa_verify_duration_seconds_count %llu\n",
	               (double)SUM(verify_ns) / 1e9, (unsigned long long)cum);
}

/* Earliest nextUpdate of the CRLs of one `crl =` file, 0 when none has
 * one. */
static time_t file_next_update(const struct ca_crl_file *f)
{
	time_t best = 0;

	for (size_t k = 0; k < f->n_crls; k++) {
		time_t nu = crl_next_update(f->crls[k]);

		if (nu != 0 && (best == 0 || nu < best))
			best = nu;
	}
	return best;
}

static _Atomic(struct crlsrc *) metrics_crlsrc;

void metrics_set_crlsrc(struct crlsrc *s)
{
	atomic_store(&metrics_crlsrc, s);
}

struct crlsrc *metrics_get_crlsrc(void)
{
	return atomic_load(&metrics_crlsrc);
}

#define METRICS_MAX_CRL_URLS 4096

/* One crl-url series line: `name{ca="..",url=".."} value`. */
static void crl_url_line(struct metrics_text *t, const char *name,
                         const struct crlsrc_stat *st, long long v)
{
	metrics_printf(t, "mtls_spoa_%s{ca=\"", name);
	metrics_put_label(t, st->ca);
	metrics_printf(t, "\",url=\"");
	metrics_put_label(t, st->url);
	metrics_printf(t, "\"} %lld\n", v);
}

/* The OCSP families, one pass over the [ca] counters each. */
enum ocsp_family { OCSP_F_QUERIES = 0, OCSP_F_HITS, OCSP_F_MISSES, OCSP_F_ENTRIES };

struct ocsp_render {
	struct metrics_text *t;
	enum ocsp_family f;
};

static void ocsp_ca_line(void *ctx, const char *ca, const struct ocsp_stats *st)
{
	static const char *const names[] = {
		"ocsp_queries_total", "ocsp_cache_hits_total",
		"ocsp_cache_misses_total", "ocsp_cache_entries",
	};
	struct ocsp_render *r = ctx;
	uint64_t v = r->f == OCSP_F_HITS ? st->hits :
	             r->f == OCSP_F_MISSES ? st->misses : (uint64_t)st->entries;

	if (r->f == OCSP_F_QUERIES) {
		for (int i = 0; i < OCSP_STATUS_COUNT; i++) {
			metrics_printf(r->t, "mtls_spoa_ocsp_queries_total{ca=\"");
			metrics_put_label(r->t, ca);
			metrics_printf(r->t, "\",outcome=\"%s\"} %llu\n",
			               ocsp_status_str((enum ocsp_status)i),
			               (unsigned long long)st->queries[i]);
		}
		return;
	}
	metrics_printf(r->t, "mtls_spoa_%s{ca=\"", names[r->f]);
	metrics_put_label(r->t, ca);
	metrics_printf(r->t, "\"} %llu\n", (unsigned long long)v);
}

static void render_ocsp(struct metrics_text *t)
{
	static const char *const fam[][3] = {
		{ "ocsp_queries_total", "counter", "Queries sent to OCSP "
		  "responders per [ca], by outcome (good, revoked, unknown, "
		  "unavailable)." },
		{ "ocsp_cache_hits_total", "counter", "OCSP answers taken from "
		  "the cache, per [ca]." },
		{ "ocsp_cache_misses_total", "counter", "OCSP lookups that had to "
		  "ask the responder, per [ca]." },
		{ "ocsp_cache_entries", "gauge", "OCSP answers cached now, per [ca]." },
	};

	for (int f = OCSP_F_QUERIES; f <= OCSP_F_ENTRIES; f++) {
		struct ocsp_render r = { t, (enum ocsp_family)f };

		family(t, fam[f][0], fam[f][1], fam[f][2]);
		ocsp_foreach_ca(ocsp_ca_line, &r);
	}
	simple(t, "ocsp_soft_failures_total", "counter", "Verifications with "
	       "ocsp = soft and no OCSP answer: passed as without OCSP.",
	       metrics_get(METRICS_OCSP_SOFT_FAIL));
	simple(t, "ocsp_hard_failures_total", "counter", "Verifications with "
	       "ocsp = hard and no OCSP answer: revocation_unknown.",
	       metrics_get(METRICS_OCSP_HARD_FAIL));
}

static void render_crl_urls(struct metrics_text *t)
{
	struct crlsrc *src = atomic_load(&metrics_crlsrc);
	struct crlsrc_stat *st;
	size_t n;

	simple(t, "crl_stale_verifications_total", "counter", "Verifications "
	       "that used a CRL past its nextUpdate (crl-grace, crl-stale = "
	       "allow).", metrics_get(METRICS_CRL_STALE));
	render_ocsp(t);
	if (src == NULL)
		return;
	st = calloc(METRICS_MAX_CRL_URLS, sizeof(*st));
	if (st == NULL) {
		t->err = 1;
		return;
	}
	n = crlsrc_stats(src, st, METRICS_MAX_CRL_URLS);
	if (n > METRICS_MAX_CRL_URLS)
		n = METRICS_MAX_CRL_URLS;
	family(t, "crl_fetch_last_success_timestamp_seconds", "gauge",
	       "Last successful fetch of each crl-url (0: never), unix seconds.");
	for (size_t i = 0; i < n; i++)
		crl_url_line(t, "crl_fetch_last_success_timestamp_seconds", &st[i],
		             (long long)st[i].last_success);
	family(t, "crl_fetch_next_update_timestamp_seconds", "gauge",
	       "nextUpdate of the CRL in use from each crl-url (0: none yet), "
	       "unix seconds.");
	for (size_t i = 0; i < n; i++)
		crl_url_line(t, "crl_fetch_next_update_timestamp_seconds", &st[i],
		             (long long)st[i].next_update);
	family(t, "crl_fetches_total", "counter", "Fetches of each crl-url.");
	for (size_t i = 0; i < n; i++)
		crl_url_line(t, "crl_fetches_total", &st[i], (long long)st[i].fetches);
	family(t, "crl_fetch_failures_total", "counter", "Fetches of each crl-url "
	       "that failed or were refused (the last good CRL stayed).");
	for (size_t i = 0; i < n; i++)
		crl_url_line(t, "crl_fetch_failures_total", &st[i],
		             (long long)st[i].failures);
	family(t, "crl_fetch_refused_total", "counter", "Of those, answers that "
	       "arrived but were refused (not a CRL, not signed by the section, "
	       "older than the CRL in use).");
	for (size_t i = 0; i < n; i++)
		crl_url_line(t, "crl_fetch_refused_total", &st[i],
		             (long long)st[i].refused);
	family(t, "crl_fetch_failing", "gauge", "Consecutive failed fetches of "
	       "each crl-url now (0: the last one succeeded).");
	for (size_t i = 0; i < n; i++)
		crl_url_line(t, "crl_fetch_failing", &st[i], (long long)st[i].failing);
	free(st);
}

static void render_trust(struct metrics_text *t, const struct config *cfg)
{
	family(t, "ca_not_after_timestamp_seconds", "gauge",
	       "Earliest notAfter of the certificates of each [ca], unix seconds.");
	for (size_t i = 0; cfg != NULL && i < cfg->n_cas; i++) {
		metrics_printf(t, "mtls_spoa_ca_not_after_timestamp_seconds{ca=\"");
		metrics_put_label(t, cfg->cas[i]->name);
		metrics_printf(t, "\"} %lld\n", (long long)cfg->cas[i]->not_after);
	}
	family(t, "crl_next_update_timestamp_seconds", "gauge",
	       "Earliest nextUpdate of the CRLs of each crl file of each [ca], "
	       "unix seconds.");
	for (size_t i = 0; cfg != NULL && i < cfg->n_cas; i++) {
		const struct ca_entry *ca = cfg->cas[i];

		for (size_t f = 0; f < ca->n_crl_files; f++) {
			time_t nu = file_next_update(&ca->crl_files[f]);

			if (nu == 0)
				continue;
			metrics_printf(t, "mtls_spoa_crl_next_update_timestamp_seconds{ca=\"");
			metrics_put_label(t, ca->name);
			metrics_printf(t, "\",file=\"");
			metrics_put_label(t, ca->crl_files[f].path);
			metrics_printf(t, "\"} %lld\n", (long long)nu);
		}
	}
}

int metrics_render(const struct metrics_view *v, struct metrics_text *t)
{
	uint64_t done = metrics_get(METRICS_POOL_DONE);
	uint64_t sub = metrics_get(METRICS_POOL_SUBMITTED);

	family(t, "build_info", "gauge", "Always 1: the agent's version and the "
	       "OpenSSL it runs with.");
	metrics_printf(t, "mtls_spoa_build_info{version=\"");
	metrics_put_label(t, v->version ? v->version : "");
	metrics_printf(t, "\",openssl=\"");
	metrics_put_label(t, v->openssl ? v->openssl : "");
	metrics_printf(t, "\"} 1\n");

	render_verdicts(t);
	render_histogram(t);
	simple(t, "verify_inline_total", "counter", "Uncached verifications run "
	       "on a worker thread because the verify pool was full.",
	       metrics_get(METRICS_VERIFY_INLINE));
	/* Done is read first: a job counted done was submitted before. */
	simple(t, "verify_pool_pending", "gauge", "Verifications queued in or "
	       "running on the verify pool.", sub > done ? sub - done : 0);
	simple(t, "cache_hits_total", "counter", "Trust results answered from "
	       "the cache.", metrics_get(METRICS_CACHE_HITS));
	simple(t, "cache_misses_total", "counter", "Cache lookups that found no "
	       "valid entry.", metrics_get(METRICS_CACHE_MISSES));
	simple(t, "cache_evictions_total", "counter", "Cache entries evicted "
	       "to make room (LRU).", metrics_get(METRICS_CACHE_EVICTIONS));
	simple(t, "connections", "gauge", "SPOP connections open.",
	       v->connections);
	simple(t, "connections_accepted_total", "counter", "SPOP connections "
	       "accepted.", metrics_get(METRICS_CONN_ACCEPTED));
	simple(t, "connections_refused_total", "counter", "SPOP connections "
	       "closed at accept: max-connections reached.",
	       metrics_get(METRICS_CONN_REFUSED));
	family(t, "protocol_errors_total", "counter", "Connections closed with "
	       "AGENT-DISCONNECT on a protocol error, by SPOP status code.");
	for (unsigned int i = 1; i < METRICS_STATUS_SLOTS - 1; i++)
		metrics_printf(t, "mtls_spoa_protocol_errors_total{code=\"%u\"} %llu\n",
		               i, (unsigned long long)SUM(proto[i]));
	metrics_printf(t, "mtls_spoa_protocol_errors_total{code=\"other\"} %llu\n",
	               (unsigned long long)SUM(proto[METRICS_STATUS_SLOTS - 1]));
	simple(t, "notify_frames_total", "counter", "NOTIFY frames answered.",
	       metrics_get(METRICS_NOTIFY_FRAMES));
	simple(t, "notify_messages_total", "counter", "check-client-cert "
	       "messages evaluated.", metrics_get(METRICS_NOTIFY_MESSAGES));
	family(t, "config_reloads_total", "counter", "Configuration reloads, "
	       "by outcome.");
	metrics_printf(t, "mtls_spoa_config_reloads_total{outcome=\"success\"} %llu\n"
	               "mtls_spoa_config_reloads_total{outcome=\"failure\"} %llu\n",
	               (unsigned long long)metrics_get(METRICS_RELOAD_SUCCESS),
	               (unsigned long long)metrics_get(METRICS_RELOAD_FAILURE));
	simple(t, "config_generation", "gauge", "Generation of the live "
	       "configuration (1 at start, +1 per successful reload).",
	       v->generation);
	family(t, "config_last_reload_success_timestamp_seconds", "gauge",
	       "When the live configuration was installed, unix seconds.");
	metrics_printf(t, "mtls_spoa_config_last_reload_success_timestamp_seconds "
	               "%.3f\n", v->loaded_at);
	render_trust(t, v->cfg);
	render_api(t);
	render_store(t);
	render_crl_urls(t);
	simple(t, "metrics_policy_overflow_total", "counter", "Verdicts counted "
	       "with policy=\"(other)\": the per-policy series bound was reached.",
	       metrics_get(METRICS_POLICY_OVERFLOW));
	return t->err ? -1 : 0;
}
