/*
 * verdict.c - one check-client-cert(-sni) message to one verdict: policy
 * selection (Host, or SNI for TCP), the SNI/Host consistency rule,
 * mode -> action, and the set-var actions of the ACK. The certificate
 * itself is judged by trust_verify() (trust.c), which knows nothing of
 * names or modes.
 *
 * No allocation: names are normalized into stack buffers and the verdict
 * is a fixed-size struct owned by the caller.
 */
#include <stddef.h>
#include <string.h>

#include "config.h"
#include "ocsp.h"
#include "policy.h"
#include "spop.h"
#include "verdict.h"

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
	[RESULT_REVOCATION_UNKNOWN] = "revocation_unknown",
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
	case MODE_DENY:
		return ACTION_DENY;
	case MODE_COUNT:
	default:
		return ACTION_DENY;
	}
}

/* A policy that checks something: a Host/SNI disagreement matters only
 * when one of the two names has one. */
static int verdict_policy_active(const struct host_policy *p)
{
	return p != NULL && p->mode != MODE_OFF;
}

/* The stricter of two actions: deny, then log, then allow. */
static enum mtls_action verdict_stricter(enum mtls_action a, enum mtls_action b)
{
	if (a == ACTION_DENY || b == ACTION_DENY)
		return ACTION_DENY;
	if (a == ACTION_LOG || b == ACTION_LOG)
		return ACTION_LOG;
	return ACTION_ALLOW;
}

static void verdict_set_policy(struct verdict *v, const struct host_policy *p)
{
	v->has_policy = 1;
	v->mode = p->mode;
	v->policy = p->pattern;
}

/* Refuse a request whose names disagree: the result is host_mismatch, and
 * the action the stricter of what the Host's and the SNI's policies give
 * it, since a frontend may route by either. The policy reported is the
 * one that made the mismatch matter: the Host's when it is active, else
 * the SNI's. */
static void verdict_mismatch(struct verdict *v, const struct host_policy *ph,
                             const struct host_policy *ps)
{
	enum mtls_action a = ACTION_ALLOW;

	v->result = RESULT_HOST_MISMATCH;
	if (verdict_policy_active(ph))
		a = verdict_action_for(ph->mode, RESULT_HOST_MISMATCH, v->present);
	if (verdict_policy_active(ps))
		a = verdict_stricter(a, verdict_action_for(ps->mode,
		                     RESULT_HOST_MISMATCH, v->present));
	v->action = a;
	if (verdict_policy_active(ph))
		verdict_set_policy(v, ph);
	else if (ps != NULL)
		verdict_set_policy(v, ps);
}

/* See verdict.h.
 *
 * Which policy judges the request, for an HTTP message (check-client-cert):
 * - the Host field must be one valid host[:port]. Missing, NULL, empty,
 *   a list ("a, b") or anything else that is not a host name is refused
 *   whatever the modes (host_mismatch, deny): HAProxy rules and backends
 *   that route on a part of it, or on the request target, or to a default
 *   virtual host, would otherwise reach a host that was never judged;
 * - when the SNI names the same host, that host's policy applies;
 * - when the names differ (or there is no SNI, which only the default
 *   policy covers), the request is host_mismatch as soon as either name's
 *   policy is active (mode not off): a frontend routing by SNI serves the
 *   SNI's backend, one routing by Host the Host's, so neither may be
 *   skipped. Only when neither is active does the Host's policy (off, or
 *   none) let the request through.
 * For check-client-cert-sni (TCP, no HTTP) the SNI alone chooses.
 */
const struct host_policy *verdict_select(const struct config *cfg,
                                         const struct mtls_request *req,
                                         struct verdict *v)
{
	char host[POLICY_HOST_MAX + 1];
	char sni[POLICY_HOST_MAX + 1];
	int host_len = -1, sni_len = -1;
	const struct host_policy *p, *ps;

	/* Not memset(): the trust result holds 20 KiB of text buffers. */
	memset(v, 0, offsetof(struct verdict, trust));
	trust_result_reset(&v->trust);
	v->present = req != NULL && req->cert != NULL && req->cert_len > 0;
	v->result = RESULT_NO_POLICY;
	v->action = ACTION_ALLOW;
	if (cfg == NULL || req == NULL)
		return NULL;

	if (req->sni != NULL && req->sni_len > 0)
		sni_len = policy_normalize(req->sni, req->sni_len, 0, sni);
	ps = sni_len >= 0 ? config_lookup(cfg, sni, (size_t)sni_len) :
	     cfg->default_policy;

	if (req->kind == MSG_SNI) {
		p = ps;
	} else {
		if (req->host != NULL && req->host_len > 0)
			host_len = policy_normalize(req->host, req->host_len, 1, host);
		if (host_len < 0) {
			if (ps != NULL)
				verdict_set_policy(v, ps);
			v->result = RESULT_HOST_MISMATCH;
			v->action = ACTION_DENY;
			return NULL;
		}
		p = config_lookup(cfg, host, (size_t)host_len);
		if (sni_len != host_len || memcmp(host, sni, (size_t)host_len) != 0) {
			if (verdict_policy_active(p) || verdict_policy_active(ps)) {
				verdict_mismatch(v, p, ps);
				return NULL;
			}
		}
	}
	if (p == NULL)
		return NULL;

	verdict_set_policy(v, p);
	if (p->mode == MODE_OFF)
		return NULL;
	if (p->mode == MODE_DENY) {
		/* The name is covered only by a policy that refuses it (the
		 * reference [host *]): no tenant policy applies. */
		v->action = ACTION_DENY;
		return NULL;
	}

	/* For the SNI message there is no other name, but there must be an
	 * SNI: without one only the default policy matched. */
	if (req->kind == MSG_SNI && sni_len < 0)
		v->result = RESULT_HOST_MISMATCH;
	else if (!v->present)
		v->result = RESULT_NO_CERT;
	else if (p->trust == NULL)
		v->result = RESULT_INTERNAL_ERROR;  /* config.c prevents it */
	else
		return p;
	v->action = verdict_action_for(p->mode, v->result, v->present);
	return NULL;
}

void verdict_finish(struct verdict *v, const struct host_policy *p,
                    const struct trust_result *tr)
{
	if (tr != &v->trust)
		v->trust = *tr;
	v->present = 1;
	verdict_set_policy(v, p);
	if ((unsigned int)v->result >= RESULT_COUNT)
		v->result = RESULT_INTERNAL_ERROR;
	v->action = verdict_action_for(p->mode, v->result, v->present);
}

void verdict_evaluate(const struct config *cfg, const struct mtls_request *req,
                      struct verdict *v)
{
	const struct host_policy *p = verdict_select(cfg, req, v);

	if (p == NULL)
		return;
	trust_verify(p->trust, req->cert, req->cert_len, req->chain,
	             req->chain_len, 0, &v->trust);
	verdict_finish(v, p, &v->trust);
}

static void verdict_put_str(struct spop_wr *w, const char *name, const char *s)
{
	struct spop_data d = spop_cstr(s);

	spop_put_set_var(w, SPOP_SCOPE_TXN, name, &d);
}

/* See verdict.h. The order is fixed (tests compare bytes); the writer's
 * sticky error tells the caller when it did not fit. */
void verdict_encode_head(const struct verdict *v, struct spop_wr *w,
                         int minimal)
{
	struct spop_data d;

	verdict_put_str(w, "action", verdict_action_str(v->action));
	verdict_put_str(w, "result", verdict_result_str(v->result));
	if (minimal)
		return;
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
	if (v->memo_ttl_ms > 0) {
		d = spop_sint(v->memo_ttl_ms);
		spop_put_set_var(w, SPOP_SCOPE_TXN, "memo_ttl", &d);
	}
}

/* A text field if not empty; bounded by its buffer in case one were left
 * unterminated. */
static void verdict_put_field(struct spop_wr *w, const char *name,
                              const char *s, size_t size)
{
	struct spop_data d;

	if (s[0] == '\0')
		return;
	d = spop_str(s, strnlen(s, size));
	spop_put_set_var(w, SPOP_SCOPE_TXN, name, &d);
}

#define VERDICT_FIELD(w, t, f) verdict_put_field(w, #f, (t)->f, sizeof((t)->f))

/* See verdict.h. The order is fixed (tests compare bytes, the cache keeps
 * the bytes of every level as prefixes of one encoding). */
void verdict_encode_cert(const struct trust_result *v, struct spop_wr *w,
                         enum verdict_detail upto, size_t ends[DETAIL_COUNT])
{
	const uint8_t *start = w->p;
	struct spop_data d;
	int level = DETAIL_NONE;

	if (ends != NULL)
		for (int i = 0; i < DETAIL_COUNT; i++)
			ends[i] = 0;
	if (!v->has_cert_info || upto <= DETAIL_NONE)
		return;
	/* subject and issuer are sent even when empty (an empty DN). */
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
	VERDICT_FIELD(w, v, spiffe_id);
	VERDICT_FIELD(w, v, fingerprint_sha1);
	VERDICT_FIELD(w, v, ski);
	VERDICT_FIELD(w, v, issuer_ski);
	if (v->ocsp != TRUST_OCSP_NONE) {
		const char *o = ocsp_status_str((enum ocsp_status)v->ocsp);

		d = spop_str(o, strlen(o));
		spop_put_set_var(w, SPOP_SCOPE_TXN, "ocsp", &d);
	}
	if (v->crl_stale) {
		d = spop_bool(1);
		spop_put_set_var(w, SPOP_SCOPE_TXN, "crl_stale", &d);
	}
	if (v->revoked != TRUST_REVOKED_UNKNOWN) {
		d = spop_bool(v->revoked);
		spop_put_set_var(w, SPOP_SCOPE_TXN, "revoked", &d);
	}
	level = DETAIL_CORE;
	if (ends != NULL)
		ends[level] = (size_t)(w->p - start);
	if (upto >= DETAIL_SAN) {
		VERDICT_FIELD(w, v, san_dns);
		VERDICT_FIELD(w, v, san_uri);
		VERDICT_FIELD(w, v, san_email);
		level = DETAIL_SAN;
		if (ends != NULL)
			ends[level] = (size_t)(w->p - start);
	}
	if (upto >= DETAIL_ALL) {
		VERDICT_FIELD(w, v, chain_rfc9440);
		level = DETAIL_ALL;
		if (ends != NULL)
			ends[level] = (size_t)(w->p - start);
	}
	/* Levels above `upto` end where it does. */
	if (ends != NULL)
		for (int i = level + 1; i < DETAIL_COUNT; i++)
			ends[i] = ends[level];
}

void verdict_encode(const struct verdict *v, struct spop_wr *w,
                    int with_cert_info)
{
	verdict_encode_head(v, w, 0);
	if (with_cert_info)
		verdict_encode_cert(&v->trust, w, DETAIL_ALL, NULL);
}
