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
#include "spop.h"

#define VERDICT_WUR __attribute__((warn_unused_result))

enum mtls_action {
	ACTION_ALLOW = 0,
	ACTION_DENY,
	ACTION_LOG,
	ACTION_COUNT
};

enum mtls_result {
	RESULT_OK = 0,
	RESULT_NO_CERT,
	RESULT_NO_POLICY,
	RESULT_HOST_MISMATCH,
	RESULT_MALFORMED,
	RESULT_UNTRUSTED,
	RESULT_EXPIRED,
	RESULT_NOT_YET_VALID,
	RESULT_REVOKED,
	RESULT_CRL_ERROR,
	RESULT_BAD_PURPOSE,
	RESULT_IDENTITY_MISMATCH,
	RESULT_PIN_MISMATCH,
	RESULT_CHAIN_ERROR,
	RESULT_INTERNAL_ERROR,
	RESULT_COUNT
};

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

#define VERDICT_DN_MAX 1024
#define VERDICT_SPIFFE_MAX 512

/* Everything the agent reports. Fixed-size so that no allocation happens
 * per request; over-long subjects are truncated. */
struct verdict {
	enum mtls_action action;
	enum mtls_result result;
	int present;                 /* a certificate was sent */
	int has_policy;              /* mode/policy are meaningful */
	enum policy_mode mode;
	const char *policy;          /* matched pattern (borrowed from config) */
	const char *ca;              /* [ca] that anchored the chain, or NULL */
	int verify_error;            /* X509_V_ERR_*, 0 when none */
	int has_cert_info;           /* the leaf parsed: fields below are set */
	char subject[VERDICT_DN_MAX];
	char issuer[VERDICT_DN_MAX];
	char serial[80];             /* lowercase hex */
	char fingerprint[65];        /* SHA-256 of the leaf DER, lowercase hex */
	int64_t not_before, not_after; /* unix seconds */
	char spiffe_id[VERDICT_SPIFFE_MAX]; /* empty when none */
	int64_t valid_until;         /* not encoded: the earliest time this
	                                verdict could change (a certificate's
	                                notBefore/notAfter, a CRL's nextUpdate);
	                                0 when nothing bounds it. For the cache. */
};

const char *verdict_action_str(enum mtls_action a);
const char *verdict_result_str(enum mtls_result r);

/* The action a mode gives a result (the mode x result table). */
enum mtls_action verdict_action_for(enum policy_mode mode, enum mtls_result r,
                                    int present);

/* Decide the verdict for one request against `cfg` (which may be NULL:
 * no policy). Never fails: internal errors are RESULT_INTERNAL_ERROR. */
void verdict_evaluate(const struct config *cfg, const struct mtls_request *req,
                      struct verdict *v);

/* Append the set-var actions for `v` (scope txn) to an ACK payload being
 * written in `w`. If `with_cert_info` is 0 the certificate detail
 * variables are left out (used when the full set does not fit a frame). */
void verdict_encode(const struct verdict *v, struct spop_wr *w,
                    int with_cert_info);

#endif /* MTLS_VERDICT_H */
