/*
 * verdict.c - one check-client-cert message to one verdict: policy
 * selection (Host, else SNI), the SNI/Host consistency rule, the
 * certificate check (verify.c), mode -> action, and the set-var actions
 * of the ACK.
 *
 * No allocation: names are normalized into stack buffers and the verdict
 * is a fixed-size struct owned by the caller.
 */
#include <string.h>

#include "config.h"
#include "policy.h"
#include "spop.h"
#include "verdict.h"
#include "verify.h"

static const char *const action_names[] = {
	[ACTION_ALLOW] = "allow",
	[ACTION_DENY] = "deny",
	[ACTION_LOG] = "log",
};
_Static_assert(sizeof(action_names) / sizeof(action_names[0]) == ACTION_COUNT,
               "action_names must cover enum mtls_action");

static const char *const result_names[] = {
	[RESULT_OK] = "ok",
	[RESULT_NO_CERT] = "no_cert",
	[RESULT_NO_POLICY] = "no_policy",
	[RESULT_HOST_MISMATCH] = "host_mismatch",
	[RESULT_MALFORMED] = "malformed",
	[RESULT_UNTRUSTED] = "untrusted",
	[RESULT_EXPIRED] = "expired",
	[RESULT_NOT_YET_VALID] = "not_yet_valid",
	[RESULT_REVOKED] = "revoked",
	[RESULT_CRL_ERROR] = "crl_error",
	[RESULT_BAD_PURPOSE] = "bad_purpose",
	[RESULT_IDENTITY_MISMATCH] = "identity_mismatch",
	[RESULT_PIN_MISMATCH] = "pin_mismatch",
	[RESULT_CHAIN_ERROR] = "chain_error",
	[RESULT_INTERNAL_ERROR] = "internal_error",
};
_Static_assert(sizeof(result_names) / sizeof(result_names[0]) == RESULT_COUNT,
               "result_names must cover enum mtls_result");

const char *verdict_action_str(enum mtls_action a)
{
	if ((unsigned int)a >= ACTION_COUNT)
		return "unknown";
	return action_names[a];
}

const char *verdict_result_str(enum mtls_result r)
{
	if ((unsigned int)r >= RESULT_COUNT)
		return "unknown";
	return result_names[r];
}

/* See verdict.h. Unknown modes or results fail closed (deny). `present`
 * is implied by the result (only no_cert means "nothing sent") and kept
 * in the signature for callers that know more. */
enum mtls_action verdict_action_for(enum policy_mode mode, enum mtls_result r,
                                    int present)
{
	(void)present;
	if ((unsigned int)r >= RESULT_COUNT)
		return ACTION_DENY;
	switch (mode) {
	case MODE_ENFORCE:
		return r == RESULT_OK ? ACTION_ALLOW : ACTION_DENY;
	case MODE_OPTIONAL:
		return r == RESULT_OK || r == RESULT_NO_CERT ? ACTION_ALLOW :
		       ACTION_DENY;
	case MODE_LOG:
		return r == RESULT_OK ? ACTION_ALLOW : ACTION_LOG;
	case MODE_OFF:
		return ACTION_ALLOW;
	case MODE_COUNT:
	default:
		return ACTION_DENY;
	}
}

/* See verdict.h. */
void verdict_evaluate(const struct config *cfg, const struct mtls_request *req,
                      struct verdict *v)
{
	char host[POLICY_HOST_MAX + 1];
	char sni[POLICY_HOST_MAX + 1];
	int host_len = -1, sni_len = -1;
	int host_present;
	const struct host_policy *p;

	memset(v, 0, sizeof(*v));
	v->present = req != NULL && req->cert != NULL && req->cert_len > 0;
	v->result = RESULT_NO_POLICY;
	v->action = ACTION_ALLOW;
	if (cfg == NULL || req == NULL)
		return;

	host_present = req->host != NULL && req->host_len > 0;
	if (host_present)
		host_len = policy_normalize(req->host, req->host_len, 1, host);
	if (req->sni != NULL && req->sni_len > 0)
		sni_len = policy_normalize(req->sni, req->sni_len, 0, sni);

	/* A Host header that is not a host name matches no policy, yet
	 * HAProxy rules routing on a part of it (say field(1,:)) could still
	 * send the request to a protected backend: it is refused whatever
	 * the modes. The SNI's policy, if any, is reported. */
	if (host_present && host_len < 0) {
		p = sni_len >= 0 ? config_lookup(cfg, sni, (size_t)sni_len) :
		    cfg->default_policy;
		if (p != NULL) {
			v->has_policy = 1;
			v->mode = p->mode;
			v->policy = p->pattern;
		}
		v->result = RESULT_HOST_MISMATCH;
		v->action = ACTION_DENY;
		return;
	}

	/* The Host header is what the request is routed by, so it picks the
	 * policy; without one, the SNI. With no name at all only the default
	 * policy can apply. */
	if (host_len >= 0)
		p = config_lookup(cfg, host, (size_t)host_len);
	else if (sni_len >= 0)
		p = config_lookup(cfg, sni, (size_t)sni_len);
	else
		p = cfg->default_policy;
	if (p == NULL)
		return;

	v->has_policy = 1;
	v->mode = p->mode;
	v->policy = p->pattern;
	if (p->mode == MODE_OFF)
		return;

	/* A client must not handshake as one host and send its requests to
	 * another: the SNI must be there and name the Host's host. */
	if (sni_len < 0 ||
	    (host_present &&
	     (host_len != sni_len ||
	      memcmp(host, sni, (size_t)sni_len) != 0))) {
		v->result = RESULT_HOST_MISMATCH;
	} else if (!v->present) {
		v->result = RESULT_NO_CERT;
	} else {
		verify_cert(p, req->cert, req->cert_len, req->chain,
		            req->chain_len, 0, v);
		/* Whatever verify_cert touched, these are ours. */
		v->present = 1;
		v->has_policy = 1;
		v->mode = p->mode;
		v->policy = p->pattern;
		if ((unsigned int)v->result >= RESULT_COUNT)
			v->result = RESULT_INTERNAL_ERROR;
	}
	v->action = verdict_action_for(p->mode, v->result, v->present);
}

static void verdict_put_str(struct spop_wr *w, const char *name, const char *s)
{
	struct spop_data d = spop_cstr(s);

	spop_put_set_var(w, SPOP_SCOPE_TXN, name, &d);
}

/* See verdict.h. The order is fixed (tests compare bytes); the writer's
 * sticky error tells the caller when it did not fit. */
void verdict_encode(const struct verdict *v, struct spop_wr *w,
                    int with_cert_info)
{
	struct spop_data d;

	verdict_put_str(w, "action", verdict_action_str(v->action));
	verdict_put_str(w, "result", verdict_result_str(v->result));
	d = spop_bool(v->present);
	spop_put_set_var(w, SPOP_SCOPE_TXN, "present", &d);
	d = spop_bool(v->result == RESULT_OK);
	spop_put_set_var(w, SPOP_SCOPE_TXN, "verified", &d);
	if (v->has_policy) {
		verdict_put_str(w, "mode", config_mode_str(v->mode));
		verdict_put_str(w, "policy", v->policy != NULL ? v->policy : "");
	}
	if (v->ca != NULL)
		verdict_put_str(w, "ca", v->ca);
	d = spop_int32(v->verify_error);
	spop_put_set_var(w, SPOP_SCOPE_TXN, "verify_error", &d);
	if (!with_cert_info || !v->has_cert_info)
		return;
	/* The fields are fixed-size buffers: bound the length by them in
	 * case one were left unterminated. */
	d = spop_str(v->subject, strnlen(v->subject, sizeof(v->subject)));
	spop_put_set_var(w, SPOP_SCOPE_TXN, "subject", &d);
	d = spop_str(v->issuer, strnlen(v->issuer, sizeof(v->issuer)));
	spop_put_set_var(w, SPOP_SCOPE_TXN, "issuer", &d);
	d = spop_str(v->serial, strnlen(v->serial, sizeof(v->serial)));
	spop_put_set_var(w, SPOP_SCOPE_TXN, "serial", &d);
	d = spop_str(v->fingerprint,
	             strnlen(v->fingerprint, sizeof(v->fingerprint)));
	spop_put_set_var(w, SPOP_SCOPE_TXN, "fingerprint", &d);
	d = spop_sint(v->not_before);
	spop_put_set_var(w, SPOP_SCOPE_TXN, "not_before", &d);
	d = spop_sint(v->not_after);
	spop_put_set_var(w, SPOP_SCOPE_TXN, "not_after", &d);
	if (v->spiffe_id[0] != '\0') {
		d = spop_str(v->spiffe_id,
		             strnlen(v->spiffe_id, sizeof(v->spiffe_id)));
		spop_put_set_var(w, SPOP_SCOPE_TXN, "spiffe_id", &d);
	}
}
