/*
 * result.h - the verdict vocabulary: actions and result codes, shared by
 * the trust decision (trust.c) and the request side (verdict.c).
 */
#ifndef MTLS_RESULT_H
#define MTLS_RESULT_H

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
	RESULT_REVOCATION_UNKNOWN,  /* ocsp = hard and no OCSP answer */
	RESULT_BAD_PURPOSE,
	RESULT_IDENTITY_MISMATCH,
	RESULT_PIN_MISMATCH,
	RESULT_CHAIN_ERROR,
	RESULT_INTERNAL_ERROR,
	RESULT_COUNT
};

const char *verdict_action_str(enum mtls_action a);
const char *verdict_result_str(enum mtls_result r);

#endif /* MTLS_RESULT_H */
