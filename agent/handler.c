/*
 * handler.c - answers check-client-cert messages with verdict variables.
 */
#include <stdatomic.h>
#include <string.h>

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

/* Encode the ACK for `v` (or an empty one when v is NULL). */
static int encode_ack(const struct spop_frame *f, const struct verdict *v,
                      int with_cert_info, uint32_t max_frame, struct spop_wr *w)
{
	uint8_t *start = spop_frame_begin(w, SPOP_FRAME_ACK, SPOP_FLAG_FIN,
	                                  f->stream_id, f->frame_id);

	if (v)
		verdict_encode(v, w, with_cert_info);
	return spop_frame_end(w, start, max_frame);
}

int handler_notify(const struct config *cfg, const struct spop_frame *f,
                   uint32_t max_frame, struct spop_wr *w, unsigned int *messages)
{
	const uint8_t *p = f->payload;
	const uint8_t *end = f->payload + f->payload_len;
	struct spop_msg msg;
	struct mtls_request req;
	/* One verdict per NOTIFY: if HAProxy sent the message twice, the
	 * last one wins, as it would when applying the set-var actions. */
	static _Thread_local struct verdict v;
	int have = 0;

	*messages = 0;
	while (p < end) {
		if (spop_msg_next(&p, end, &msg) != SPOP_RC_OK)
			return -1;
		if (!name_is(msg.name, msg.name_len, HANDLER_MESSAGE)) {
			warn_once(&warned_message, "message", msg.name, msg.name_len);
			continue;
		}
		if (handler_parse_request(&msg, &req) != 0)
			return -1;
		verdict_evaluate(cfg, &req, &v);
		have = 1;
		(*messages)++;
		log_debug("verdict host=\"%.*s\" sni=\"%.*s\" result=%s action=%s policy=%s",
		          (int)(req.host_len > 64 ? 64 : req.host_len),
		          req.host ? req.host : "",
		          (int)(req.sni_len > 64 ? 64 : req.sni_len),
		          req.sni ? req.sni : "",
		          verdict_result_str(v.result), verdict_action_str(v.action),
		          v.has_policy && v.policy ? v.policy : "-");
	}
	if (encode_ack(f, have ? &v : NULL, 1, max_frame, w) == 0)
		return 0;
	/* Subjects can be long: drop the details rather than the verdict. */
	if (!w->err && encode_ack(f, have ? &v : NULL, 0, max_frame, w) == 0)
		return 0;
	return -1;
}
