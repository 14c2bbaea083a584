/*
 * verdict.h - what the agent answers for one check-client-cert message:
 * policy selection, SNI/Host consistency, mode -> action, and the
 * variables encoded into the ACK.
 */
#ifndef MTLS_VERDICT_H
#define MTLS_VERDICT_H

#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "result.h"
#include "spop.h"
#include "trust.h"

#define VERDICT_WUR __attribute__((warn_unused_result))

/* Which message asked. The kind decides how the policy is chosen, so it
 * is part of every cache key. */
enum mtls_msg_kind {
	/* check-client-cert: an HTTP request. The Host field picks the
	 * policy and must be one valid host[:port]: missing, NULL, empty or
	 * list-valued is refused (host_mismatch), never "absent". */
	MSG_HTTP = 0,
	/* check-client-cert-sni: a TCP connection (no HTTP): the SNI alone
	 * picks the policy; a host argument is ignored. */
	MSG_SNI,
	MSG_KIND_COUNT
};

/* The arguments of one check-client-cert message. Pointers are views into
 * the receive buffer; a NULL pointer means the argument was missing or
 * NULL. Lengths are in bytes. */
struct mtls_request {
	enum mtls_msg_kind kind;
	const uint8_t *cert;  size_t cert_len;    /* ssl_c_der */
	const uint8_t *chain; size_t chain_len;   /* ssl_c_chain_der */
	const char *sni;      size_t sni_len;     /* ssl_fc_sni */
	const char *host;     size_t host_len;    /* req.fhdr(host) */
};

#define VERDICT_DN_MAX TRUST_DN_MAX
#define VERDICT_SPIFFE_MAX TRUST_SPIFFE_MAX

/* Everything the agent reports: the request side (action, policy, mode)
 * and the trust result. The result's fields are reachable both as
 * v->trust (what trust_verify() fills and the cache stores) and directly
 * (v->result, v->subject...), through an anonymous struct with the same
 * members. */
struct verdict {
	enum mtls_action action;
	int present;                 /* a certificate was sent */
	int has_policy;              /* mode/policy are meaningful */
	enum policy_mode mode;
	const char *policy;          /* matched pattern (borrowed from config) */
	unsigned int memo_ttl_ms;    /* > 0: sent as memo_ttl, how long HAProxy
	                                may reuse this verdict for later requests
	                                with the same Host on the same TLS
	                                connection (0: not sent, no reuse) */
	union {
		struct trust_result trust;
		struct { TRUST_RESULT_FIELDS };
	};
};

/* The action a mode gives a result (the mode x result table). */
enum mtls_action verdict_action_for(enum policy_mode mode, enum mtls_result r,
                                    int present);

/* Decide the verdict for one request against `cfg` (which may be NULL:
 * no policy). Never fails: internal errors are RESULT_INTERNAL_ERROR.
 * verdict_select() + trust_verify() + verdict_finish(). */
void verdict_evaluate(const struct config *cfg, const struct mtls_request *req,
                      struct verdict *v);

/* The request side alone: choose the policy and apply the name rules.
 * Returns the host policy whose trust policy must judge the certificate
 * (then finish with verdict_finish()), or NULL when `v` is already the
 * complete verdict. */
const struct host_policy *verdict_select(const struct config *cfg,
                                         const struct mtls_request *req,
                                         struct verdict *v);

/* Complete `v` (from verdict_select() returning p) with the trust result:
 * copies it, sets the policy, and the action its mode gives. */
void verdict_finish(struct verdict *v, const struct host_policy *p,
                    const struct trust_result *tr);

/* How much of the certificate detail verdict_encode_cert() writes. Each
 * level is a prefix of the next, in the order of the ACK: when an answer
 * does not fit its frame, chain_rfc9440 goes first, then the san_*
 * lists, then the rest of the details; the verdict variables stay. */
enum verdict_detail {
	DETAIL_NONE = 0,  /* no certificate variables */
	DETAIL_CORE,      /* subject, issuer, serial, fingerprint, not_before,
	                     not_after, spiffe_id, fingerprint_sha1, ski,
	                     issuer_ski, revoked */
	DETAIL_SAN,       /* + san_dns, san_uri, san_email */
	DETAIL_ALL,       /* + chain_rfc9440 */
	DETAIL_COUNT
};

/* Append the set-var actions for `v` (scope txn) to an ACK payload being
 * written in `w`. If `with_cert_info` is 0 the certificate detail
 * variables are left out (used when the full set does not fit a frame). */
void verdict_encode(const struct verdict *v, struct spop_wr *w,
                    int with_cert_info);

/* The two halves of verdict_encode(): action, result, present, verified,
 * mode, policy, ca, verify_error, memo_ttl (with `minimal`: action and
 * result only, for a frame too small for the rest, and never reused
 * since memo_ttl is left out); then the certificate details up
 * to `upto`. When `ends` is not NULL, ends[d] receives how many bytes the
 * details up to level d take (ends[DETAIL_NONE] = 0), so that one
 * encoding serves every level (the cache keeps it so). */
void verdict_encode_head(const struct verdict *v, struct spop_wr *w,
                         int minimal);
void verdict_encode_cert(const struct trust_result *t, struct spop_wr *w,
                         enum verdict_detail upto,
                         size_t ends[DETAIL_COUNT]);

#endif /* MTLS_VERDICT_H */
