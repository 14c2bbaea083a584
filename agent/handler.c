/*
 * handler.c - answers check-client-cert messages with verdict variables.
 */
#include <stdatomic.h>
#include <string.h>

#include "cache.h"
#include "handler.h"
#include "log.h"

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

time_t handler_cache_until(const struct verdict *v, time_t now, unsigned int ttl)
{
	int64_t until = (int64_t)now + ttl;

	/* A transient failure must be retried, not remembered. */
	if (ttl == 0 || v->result == RESULT_INTERNAL_ERROR)
		return 0;
	if (v->valid_until > 0 && v->valid_until < until)
		until = v->valid_until;
	return until > (int64_t)now ? (time_t)until : 0;
}

/* The set-var actions answering `req`, from the cache or freshly
 * evaluated, as bytes in `ans` (thread-local scratch). Returns their
 * length, or -1 if they cannot be encoded within `room`. */
static _Thread_local uint8_t ans_buf[SPOP_DEFAULT_FRAME_SIZE];
static _Thread_local struct verdict ans_verdict;

static int answer(const struct handler_env *env, const struct mtls_request *req,
                  int with_cert_info, const uint8_t **ans, size_t room)
{
	const uint8_t *hit;
	size_t hitlen;
	struct spop_wr w;
	int cached = env->cache && with_cert_info;
	uint64_t hash = cached ? cache_hash(env->cache, env->gen, req) : 0;
	time_t now = time(NULL);

	if (room > sizeof(ans_buf))
		room = sizeof(ans_buf);
	if (cached && cache_get(env->cache, hash, env->gen, req, now, &hit, &hitlen) &&
	    hitlen <= room) {
		*ans = hit;
		return (int)hitlen;
	}
	verdict_evaluate(env->cfg, req, &ans_verdict);
	log_debug("verdict host=\"%.*s\" sni=\"%.*s\" result=%s action=%s policy=%s",
	          (int)(req->host_len > 64 ? 64 : req->host_len),
	          req->host ? req->host : "",
	          (int)(req->sni_len > 64 ? 64 : req->sni_len),
	          req->sni ? req->sni : "",
	          verdict_result_str(ans_verdict.result),
	          verdict_action_str(ans_verdict.action),
	          ans_verdict.has_policy && ans_verdict.policy ? ans_verdict.policy : "-");
	spop_wr_init(&w, ans_buf, room);
	verdict_encode(&ans_verdict, &w, with_cert_info);
	if (w.err)
		return -1;
	if (cached)
		cache_put(env->cache, hash, env->gen, req,
		          handler_cache_until(&ans_verdict, now, env->cache_ttl),
		          ans_buf, (size_t)(w.p - ans_buf));
	*ans = ans_buf;
	return (int)(w.p - ans_buf);
}

/* Encode the ACK frame with the answer to the last message (if any). */
static int encode_ack(const struct handler_env *env, const struct spop_frame *f,
                      const struct mtls_request *req, int with_cert_info,
                      uint32_t max_frame, struct spop_wr *w)
{
	uint8_t *start = spop_frame_begin(w, SPOP_FRAME_ACK, SPOP_FLAG_FIN,
	                                  f->stream_id, f->frame_id);
	const uint8_t *ans;
	int n;

	if (req) {
		n = answer(env, req, with_cert_info, &ans, max_frame);
		if (n < 0) {
			w->p = start;
			return -1;
		}
		if (w->end - w->p >= n) {
			memcpy(w->p, ans, (size_t)n);
			w->p += n;
		} else {
			w->err = 1;
		}
	}
	return spop_frame_end(w, start, max_frame);
}

int handler_notify(const struct handler_env *env, const struct spop_frame *f,
                   uint32_t max_frame, struct spop_wr *w, unsigned int *messages)
{
	const uint8_t *p = f->payload;
	const uint8_t *end = f->payload + f->payload_len;
	struct spop_msg msg;
	/* One answer per NOTIFY: if HAProxy sent the message twice, the last
	 * one wins, as it would when applying the set-var actions. */
	struct mtls_request req;
	int have = 0;

	*messages = 0;
	while (p < end) {
		if (spop_msg_next(&p, end, &msg) != SPOP_RC_OK)
			return -1;
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
			return -1;
		req.kind = kind;
		have = 1;
		(*messages)++;
	}
	if (encode_ack(env, f, have ? &req : NULL, 1, max_frame, w) == 0)
		return 0;
	/* Subjects can be long: drop the details rather than the verdict. */
	if (!w->err && encode_ack(env, f, have ? &req : NULL, 0, max_frame, w) == 0)
		return 0;
	return -1;
}
