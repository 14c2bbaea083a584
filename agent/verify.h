/*
 * verify.h - certificate verification with OpenSSL against one host policy.
 */
#ifndef MTLS_VERIFY_H
#define MTLS_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "verdict.h"

#define VERIFY_WUR __attribute__((warn_unused_result))

/* Most certificates accepted in one `chain` argument; more is MALFORMED. */
#define VERIFY_MAX_CHAIN 16

/* Build `p->store` from the policy's CAs (each certificate a trust anchor,
 * X509_V_FLAG_PARTIAL_CHAIN) and, per p->crl_check, their CRLs. Returns 0,
 * or -1 with a message in err. */
VERIFY_WUR int verify_policy_prepare(struct host_policy *p, char *err,
                                     size_t errlen);

/* Verify a DER leaf and an optional concatenated-DER chain of untrusted
 * intermediates against `p` at time `now` (0: current time). Fills
 * v->result (OK, MALFORMED, UNTRUSTED, EXPIRED, NOT_YET_VALID, REVOKED,
 * CRL_ERROR, BAD_PURPOSE, IDENTITY_MISMATCH, PIN_MISMATCH, CHAIN_ERROR,
 * INTERNAL_ERROR), v->verify_error, v->ca and, when the leaf parses, the
 * certificate detail fields. Leaves the OpenSSL error queue empty. */
void verify_cert(const struct host_policy *p, const uint8_t *cert,
                 size_t cert_len, const uint8_t *chain, size_t chain_len,
                 time_t now, struct verdict *v);

/* Fill the certificate detail fields of `v` from a parsed leaf. */
void verify_fill_cert_info(X509 *leaf, const uint8_t *der, size_t der_len,
                           struct verdict *v);

/* Map an X509_V_ERR_* code to a result. */
enum mtls_result verify_result_from_error(int x509_err);

#endif /* MTLS_VERIFY_H */
