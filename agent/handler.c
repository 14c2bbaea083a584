/*
 * handler.c - answers check-client-cert messages with verdict variables.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "handler.h"
#include "log.h"
#include "metrics.h"

/* Exact-length name comparison: "cert" must not match "certificate". */
static int name_is(const uint8_t *name, size_t len, const char *want)
{
	size_t wl = strlen(want);

	return len == wl && memcmp(name, want, wl) == 0;
}

/* Unknown names are logged once per process so a misconfigured HAProxy is
 * visible without flooding the log at request rate. */
static atomic_flag warned_message = ATOMIC_FLAG_INIT;
static atomic_flag warned_arg = ATOMIC_FLAG_INIT;
static atomic_flag warned_type = ATOMIC_FLAG_INIT;

static void warn_once(atomic_flag *flag, const char *what, const uint8_t *name,
                      size_t len)
{
	if (atomic_flag_test_and_set(flag))
		return;
	log_warning("ignoring %s \"%.*s\" (logged once)", what,
	            (int)(len > 64 ? 64 : len), (const char *)name);
}

int handler_parse_request(const struct spop_msg *msg, struct mtls_request *req)
{
	const uint8_t *p = msg->args;
	struct spop_kv kv;
	unsigned int i;

	memset(req, 0, sizeof(*req));
	for (i = 0; i < msg->nargs; i++) {
		const uint8_t **dptr;
		size_t *dlen;

		if (spop_kv_next(&p, msg->args_end, &kv) != SPOP_RC_OK)
			return -1;
		if (name_is(kv.name, kv.name_len, "cert")) {
			dptr = &req->cert; dlen = &req->cert_len;
		} else if (name_is(kv.name, kv.name_len, "chain")) {
			dptr = &req->chain; dlen = &req->chain_len;
		} else if (name_is(kv.name, kv.name_len, "sni")) {
			dptr = (const uint8_t **)&req->sni; dlen = &req->sni_len;
		} else if (name_is(kv.name, kv.name_len, "host")) {
			dptr = (const uint8_t **)&req->host; dlen = &req->host_len;
		} else {
			warn_once(&warned_arg, "argument", kv.name, kv.name_len);
			continue;
		}
		if (kv.value.type == SPOP_T_NULL) {
			*dptr = NULL;
			*dlen = 0;
			continue;
		}
		/* HAProxy sends a sample's native type; a string where binary
		 * is expected (or the reverse) carries the same bytes, so
		 * accept both. Anything else is treated as missing. */
		if (kv.value.type != SPOP_T_STRING && kv.value.type != SPOP_T_BINARY) {
			warn_once(&warned_type, "argument of unexpected type", kv.name,
			          kv.name_len);
			continue;
		}
		*dptr = kv.value.u.buf.ptr;
		*dlen = kv.value.u.buf.len;
	}
	return 0;
}

int64_t handler_cache_until(const struct trust_result *t, int64_t now_ms,
                            unsigned int ttl_ms)
{
	int64_t until = now_ms + ttl_ms;

	/* A transient failure must be retried, not remembered. */
	if (ttl_ms == 0 || t->result == RESULT_INTERNAL_ERROR)
		return 0;
	if (t->valid_until > 0 && t->valid_until * 1000 < until)
		until = t->valid_until * 1000;
	return until > now_ms ? until : 0;
}

unsigned int handler_memo_ttl(const struct verdict *v, int64_t now_ms,
                              int64_t until, unsigned int ttl_ms)
{
	int64_t end = now_ms + ttl_ms;

	if (ttl_ms == 0 || v->result == RESULT_INTERNAL_ERROR)
		return 0;
	if (until < end)
		end = until;
	return end > now_ms ? (unsigned int)(end - now_ms) : 0;
}

/* v->memo_ttl_ms for a trust result decided at now_ms. */
static void memo_trust(const struct handler_env *env, struct verdict *v,
                       int64_t now_ms)
{
	int64_t until = handler_cache_until(&v->trust, now_ms, env->memo_ttl_ms);

	v->memo_ttl_ms = handler_memo_ttl(v, now_ms, until, env->memo_ttl_ms);
}

static int64_t handler_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Count a complete verdict (labels: result, action, mode, policy). */
static void count_verdict(const struct verdict *v)
{
	metrics_verdict(v->result, v->action,
	                v->has_policy ? (int)v->mode : METRICS_MODE_NONE, v->policy);
}

/* trust_verify(), timed for the verification duration histogram. */
static void timed_verify(const struct trust_policy *tp, const struct cache_key *k,
                         time_t now, struct trust_result *r)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	trust_verify(tp, k->cert, k->cert_len, k->chain, k->chain_len, now, r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	metrics_verify_ns((uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u +
	                  (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec);
}

/* A cached trust result: the fixed fields, then the certificate detail
 * variables already encoded (appended to an ACK as they are). */
struct cached_head {
	int32_t result;
	int32_t verify_error;
	const char *ca;         /* lives as long as the trust policy, and the
	                           entry is only found under that policy's id */
	int64_t until;          /* the entry's expiry (unix ms), which bounds
	                           the memo_ttl of the answers it gives */
	uint8_t has_cert_info;
	uint32_t ends[DETAIL_COUNT]; /* verdict_encode_cert() levels */
};

/* The largest detail encoding is less than the text of a whole trust
 * result plus, per variable, the action header, name and varints: every
 * result fits an entry, none is left uncached for its size. */
#define HANDLER_CERT_VARS 19
_Static_assert(sizeof(struct cached_head) + sizeof(struct trust_result) +
               HANDLER_CERT_VARS * 32 <= CACHE_MAX_VALUE,
               "CACHE_MAX_VALUE must hold any encoded trust result");


static void cache_store(const struct handler_env *env,
                        const struct cache_key *k, uint64_t hash,
                        const struct trust_result *t, int64_t now_ms)
{
	struct cached_head h = {
		.result = (int32_t)t->result, .verify_error = t->verify_error,
		.ca = t->ca, .has_cert_info = (uint8_t)t->has_cert_info,
	};
	struct spop_wr w;
	uint8_t buf[CACHE_MAX_VALUE];
	size_t ends[DETAIL_COUNT];

	if (env->cache == NULL)
		return;
	h.until = handler_cache_until(t, now_ms, env->cache_ttl_ms);
	spop_wr_init(&w, buf + sizeof(h), sizeof(buf) - sizeof(h));
	verdict_encode_cert(t, &w, DETAIL_ALL, ends);
	if (w.err)
		return;  /* cannot happen (see the assertion above) */
	for (int i = 0; i < DETAIL_COUNT; i++)
		h.ends[i] = (uint32_t)ends[i];
	memcpy(buf, &h, sizeof(h));
	cache_put(env->cache, hash, k, h.until, buf, (size_t)(w.p - buf));
}

/* Encode the ACK payload for `v` into w at the richest level that fits:
 * everything, then without chain_rfc9440, without the san_* lists,
 * without any certificate detail (verdict_detail, from `cert`: the
 * pre-encoded details of the cache, whose level d is its first ends[d]
 * bytes, or else from v's own fields), then action and result alone. A
 * verdict is never lost to its size. */
static void encode_answer(const struct verdict *v, const uint8_t *cert,
                          const uint32_t *ends, struct spop_wr *w)
{
	uint8_t *start = w->p;

	for (int level = DETAIL_ALL; level >= -1; level--) {
		w->p = start;
		w->err = 0;
		verdict_encode_head(v, w, level < 0);
		if (level > DETAIL_NONE && cert != NULL) {
			size_t n = ends[level];

			if (w->end - w->p >= (ptrdiff_t)n) {
				memcpy(w->p, cert, n);
				w->p += n;
			} else {
				w->err = 1;
			}
		} else if (level > DETAIL_NONE) {
			verdict_encode_cert(&v->trust, w,
			                    (enum verdict_detail)level, NULL);
		}
		if (!w->err)
			return;
	}
}

/* A writer over what the ACK begun at `start` in `w` may still hold:
 * the rest of `w`, and no more than max_frame allows after the header. */
static void payload_writer(const struct spop_wr *w, const uint8_t *start,
                           uint32_t max_frame, struct spop_wr *aw)
{
	size_t room = (size_t)(w->end - w->p);
	size_t used = (size_t)(w->p - start) - SPOP_LEN_PREFIX;

	if (used > max_frame)
		room = 0;
	else if (room > max_frame - used)
		room = max_frame - used;
	spop_wr_init(aw, w->p, room);
}

struct handler_job {
	uint32_t stream_id, frame_id;
	struct host_policy *policy;     /* reference */
	struct verdict v;               /* from verdict_select() */
	struct cache_key key;           /* views into bytes */
	uint64_t hash;                  /* in the submitting worker's cache */
	int64_t now_ms;
	unsigned int ttl_ms;            /* 0: no cache, so no sharing either */
	uint8_t *bytes;                 /* certificate, then chain */
};

/* Answer `req` into w (an ACK payload being written), from the cache or
 * by verifying inline, or hand a job to env->submit. Returns 0 (written)
 * or 1 (pending). */
static int answer(const struct handler_env *env, const struct spop_frame *f,
                  const struct mtls_request *req, struct spop_wr *w)
{
	const struct host_policy *p;
	struct verdict verdict, *v = &verdict;
	struct cache_key k;
	uint64_t hash = 0;
	int64_t now_ms = handler_now_ms();
	const uint8_t *hit;
	size_t hitlen;

	p = verdict_select(env->cfg, req, v);
	if (p == NULL) {
		/* Decided by the names and the configuration alone. */
		v->memo_ttl_ms = handler_memo_ttl(v, now_ms, INT64_MAX,
		                                  env->memo_ttl_ms);
		count_verdict(v);
		encode_answer(v, NULL, NULL, w);
		return 0;
	}
	k.id = p->trust->id;
	k.cert = req->cert;
	k.cert_len = req->cert_len;
	k.chain = req->chain;
	k.chain_len = req->chain != NULL ? req->chain_len : 0;
	if (env->cache != NULL) {
		hash = cache_hash(env->cache, &k);
		if (cache_get(env->cache, hash, &k, now_ms, &hit, &hitlen) &&
		    hitlen >= sizeof(struct cached_head)) {
			struct cached_head h;

			memcpy(&h, hit, sizeof(h));
			v->result = (enum mtls_result)h.result;
			v->verify_error = h.verify_error;
			v->ca = h.ca;
			v->has_cert_info = h.has_cert_info;
			verdict_finish(v, p, &v->trust);
			v->memo_ttl_ms = handler_memo_ttl(v, now_ms, h.until,
			                                  env->memo_ttl_ms);
			metrics_inc(METRICS_CACHE_HITS);
			count_verdict(v);
			/* Levels beyond what was stored are not trusted. */
			for (int i = 0; i < DETAIL_COUNT; i++)
				if (h.ends[i] > hitlen - sizeof(h))
					h.ends[i] = 0;
			encode_answer(v, hit + sizeof(h), h.ends, w);
			return 0;
		}
		metrics_inc(METRICS_CACHE_MISSES);
	}
	if (env->submit != NULL) {
		struct handler_job *j = calloc(1, sizeof(*j));
		size_t n = k.cert_len + k.chain_len;

		if (j != NULL)
			j->bytes = malloc(n > 0 ? n : 1);
		if (j != NULL && j->bytes != NULL) {
			memcpy(j->bytes, k.cert, k.cert_len);
			if (k.chain_len > 0)
				memcpy(j->bytes + k.cert_len, k.chain, k.chain_len);
			j->stream_id = (uint32_t)f->stream_id;
			j->frame_id = (uint32_t)f->frame_id;
			j->policy = host_policy_ref((struct host_policy *)p);
			j->v = *v;
			j->key = k;
			j->key.cert = j->bytes;
			j->key.chain = k.chain_len > 0 ? j->bytes + k.cert_len : NULL;
			j->hash = hash;
			j->now_ms = now_ms;
			j->ttl_ms = env->cache != NULL ? env->cache_ttl_ms : 0;
			if (env->submit(env->submit_ctx, j) == 0)
				return 1;
			j->policy = NULL;
			host_policy_unref((struct host_policy *)p);
		}
		/* No memory for a job, or no room in the pool: verify here
		 * rather than fail. */
		if (j != NULL)
			free(j->bytes);
		free(j);
		metrics_inc(METRICS_VERIFY_INLINE);
	}
	timed_verify(p->trust, &k, (time_t)(now_ms / 1000), &v->trust);
	cache_store(env, &k, hash, &v->trust, now_ms);
	verdict_finish(v, p, &v->trust);
	memo_trust(env, v, handler_now_ms());
	count_verdict(v);
	log_debug("verdict host=\"%.*s\" sni=\"%.*s\" result=%s action=%s policy=%s",
	          (int)(req->host_len > 64 ? 64 : req->host_len),
	          req->host ? req->host : "",
	          (int)(req->sni_len > 64 ? 64 : req->sni_len),
	          req->sni ? req->sni : "",
	          verdict_result_str(v->result), verdict_action_str(v->action),
	          v->policy ? v->policy : "-");
	encode_answer(v, NULL, NULL, w);
	return 0;
}

void handler_job_run(struct handler_job *j)
{
	timed_verify(j->policy->trust, &j->key, (time_t)(j->now_ms / 1000),
	             &j->v.trust);
}

int handler_job_finish(const struct handler_env *env, struct handler_job *j,
                       uint32_t max_frame, struct spop_wr *w)
{
	uint8_t *start = spop_frame_begin(w, SPOP_FRAME_ACK, SPOP_FLAG_FIN,
	                                  j->stream_id, j->frame_id);

	/* The cache is the finishing worker's; the job's key is by policy
	 * id, so a reload in between cannot make it answer wrongly. */
	if (env->cache != NULL)
		cache_store(env, &j->key, cache_hash(env->cache, &j->key),
		            &j->v.trust, j->now_ms);
	verdict_finish(&j->v, j->policy, &j->v.trust);
	/* From now, not from the submission: the answer leaves now. */
	memo_trust(env, &j->v, handler_now_ms());
	count_verdict(&j->v);
	if (!w->err) {
		struct spop_wr aw;

		payload_writer(w, start, max_frame, &aw);
		encode_answer(&j->v, NULL, NULL, &aw);
		w->p = aw.p;
	}
	return spop_frame_end(w, start, max_frame);
}

int handler_job_key(const struct handler_job *j, uint64_t *id,
                    const uint8_t **bytes, size_t *len)
{
	*id = j->key.id;
	*bytes = j->bytes;
	*len = j->key.cert_len + j->key.chain_len;
	return j->ttl_ms > 0;
}

int64_t handler_job_expires(const struct handler_job *j)
{
	return handler_cache_until(&j->v.trust, j->now_ms, j->ttl_ms);
}

void handler_job_adopt(struct handler_job *dst, const struct handler_job *src)
{
	dst->v.trust = src->v.trust;
}

struct handler_job *handler_job_clone(const struct handler_job *j)
{
	struct handler_job *c = malloc(sizeof(*c));
	size_t n = j->key.cert_len + j->key.chain_len;

	if (c == NULL)
		return NULL;
	*c = *j;
	c->bytes = malloc(n > 0 ? n : 1);
	if (c->bytes == NULL) {
		free(c);
		return NULL;
	}
	memcpy(c->bytes, j->bytes, n);
	c->key.cert = c->bytes;
	c->key.chain = j->key.chain_len > 0 ? c->bytes + j->key.cert_len : NULL;
	/* The result's `ca` names live in the policy's CAs: keep them. */
	c->policy = host_policy_ref(j->policy);
	return c;
}

void handler_job_free(struct handler_job *j)
{
	if (j == NULL)
		return;
	host_policy_unref(j->policy);
	free(j->bytes);
	free(j);
}

enum handler_rc handler_notify(const struct handler_env *env,
                               const struct spop_frame *f, uint32_t max_frame,
                               struct spop_wr *w, unsigned int *messages)
{
	const uint8_t *p = f->payload;
	const uint8_t *end = f->payload + f->payload_len;
	struct spop_msg msg;
	/* One answer per NOTIFY: if HAProxy sent the message twice, the last
	 * one wins, as it would when applying the set-var actions. */
	struct mtls_request req;
	int have = 0, rc = 0;
	uint8_t *start;

	*messages = 0;
	while (p < end) {
		if (spop_msg_next(&p, end, &msg) != SPOP_RC_OK)
			return HANDLER_MALFORMED;
		enum mtls_msg_kind kind;

		if (name_is(msg.name, msg.name_len, HANDLER_MESSAGE)) {
			kind = MSG_HTTP;
		} else if (name_is(msg.name, msg.name_len, HANDLER_MESSAGE_SNI)) {
			kind = MSG_SNI;
		} else {
			warn_once(&warned_message, "message", msg.name, msg.name_len);
			continue;
		}
		if (handler_parse_request(&msg, &req) != 0)
			return HANDLER_MALFORMED;
		req.kind = kind;
		have = 1;
		(*messages)++;
	}
	start = spop_frame_begin(w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, f->stream_id,
	                         f->frame_id);
	if (have && !w->err) {
		struct spop_wr aw;

		payload_writer(w, start, max_frame, &aw);
		rc = answer(env, f, &req, &aw);
		if (rc == 1) {
			w->p = start;
			return HANDLER_PENDING;
		}
		w->p = aw.p;
	}
	if (spop_frame_end(w, start, max_frame) != 0) {
		w->p = start;
		return HANDLER_NO_ROOM;
	}
	return HANDLER_ACK;
}
