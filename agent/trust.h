/*
 * trust.h - the trust decision: does this certificate and chain satisfy
 * this trust policy at this time. Nothing about Host, SNI or modes: the
 * request side (verdict.c) chooses the policy and turns the result into
 * an action.
 *
 * A trust policy is immutable once built and reference counted: hosts
 * that ask for the same thing (same CAs, CRLs, purpose, depth, identities
 * and pins) share one, and a new configuration generation reuses the
 * previous one's when nothing it depends on changed. Its `id` is unique
 * for the life of the process, so caches key results by it.
 */
#ifndef MTLS_TRUST_H
#define MTLS_TRUST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <openssl/x509.h>

#include "ca.h"
#include "crl.h"
#include "result.h"

#define TRUST_WUR __attribute__((warn_unused_result))

/* Most certificates accepted in one `chain` argument; more is MALFORMED. */
#define VERIFY_MAX_CHAIN 16

enum policy_purpose {
	PURPOSE_CLIENT = 0,  /* EKU, when present, must include clientAuth */
	PURPOSE_ANY,
	PURPOSE_COUNT
};

enum crl_check {
	CRL_CHECK_DEFAULT = 0, /* leaf when any of the host's CAs has CRLs, else
	                          none; then only for leaves whose issuer has one */
	CRL_CHECK_NONE,
	CRL_CHECK_LEAF,
	CRL_CHECK_CHAIN,
	CRL_CHECK_COUNT
};

/* What a trust policy is built from. Arrays are borrowed. */
struct trust_params {
	struct ca_entry *const *cas;
	size_t n_cas;
	struct crl *const *crls;    /* every CRL that describes these CAs'
	                               certificates, wherever it was listed */
	size_t n_crls;
	enum policy_purpose purpose;
	enum crl_check crl_check;   /* never CRL_CHECK_DEFAULT */
	int crl_check_auto;         /* crl-check was not written: a
	                               certificate whose issuer has no CRL
	                               skips the check */
	int verify_depth;
	const char *const *identities;
	size_t n_identities;
	const uint8_t (*pins)[32];
	size_t n_pins;
};

struct trust_policy {
	atomic_uint refs;
	uint64_t id;
	struct ca_entry **cas;      /* references */
	size_t n_cas;
	struct crl **crls;          /* references */
	size_t n_crls;
	enum policy_purpose purpose;
	enum crl_check crl_check;
	int crl_check_auto;
	int verify_depth;
	char **identities;
	size_t n_identities;
	uint8_t (*pins)[32];
	size_t n_pins;
	X509_STORE *store;          /* the CA certificates only */
	time_t crl_next_update;     /* earliest nextUpdate of `crls`, 0 if none */
	int64_t crl_grace_s;        /* longest crl-grace of `cas`, seconds
	                               (rounded up) */
	uint8_t key[32];            /* SHA-256 of what it was built from */
};

/* The digest two equal parameter sets share: it identifies a policy
 * across hosts and generations (CAs and CRLs by object identity). */
void trust_params_key(const struct trust_params *p, uint8_t key[32]);

/* Build a policy. Returns NULL with a message in err. */
TRUST_WUR struct trust_policy *trust_policy_new(const struct trust_params *p,
                                                char *err, size_t errlen);
struct trust_policy *trust_policy_ref(struct trust_policy *tp);
void trust_policy_unref(struct trust_policy *tp);

#define TRUST_DN_MAX 1024
#define TRUST_SPIFFE_MAX 512
/* Longest san_dns / san_uri / san_email value, in bytes. */
#define TRUST_SAN_MAX 1024
/* Longest key identifier reported (octets); a longer one is absent. */
#define TRUST_KEYID_MAX 64
/* The chain_rfc9440 buffer, NUL included. The intermediates came in one
 * NOTIFY frame (at most VERIFY_MAX_CHAIN certificates, 16380 bytes with
 * the default max-frame-size) or from the CA files; an answer carrying
 * more than this would not fit a default frame either. A longer value is
 * absent, never cut. */
#define TRUST_CHAIN_MAX 16384

/* trust_result.ocsp when OCSP was not consulted. */
#define TRUST_OCSP_NONE (-1)

/* trust_result.revoked when no CRL decided the leaf's status. */
#define TRUST_REVOKED_UNKNOWN (-1)

/* The answer of trust_verify(). Fixed size: nothing is allocated per
 * request. */
/* The fields of a trust result, also spliced into struct verdict. The
 * scalars come first and the text buffers after them, so that
 * trust_result_reset() does not have to clear 20 KiB per request. An
 * empty string is an absent variable. */
#define TRUST_RESULT_FIELDS \
	enum mtls_result result; \
	int verify_error;            /* X509_V_ERR_*, 0 when none */ \
	const char *ca;              /* [ca] that anchored the chain, or NULL \
	                                (borrowed from the policy's CAs) */ \
	int has_cert_info;           /* the leaf parsed: fields below are set */ \
	int ocsp;                    /* enum ocsp_status of the leaf, or \
	                                TRUST_OCSP_NONE when not asked */ \
	int crl_stale;               /* a CRL consulted was past its \
	                                nextUpdate (crl-grace, crl-stale) */ \
	int revoked;                 /* 1/0 when a current, usable CRL of the \
	                                leaf's issuer was consulted, else \
	                                TRUST_REVOKED_UNKNOWN */ \
	int64_t not_before, not_after; /* unix seconds */ \
	int64_t valid_until;         /* the first second at which this result \
	                                may no longer hold (a certificate's \
	                                notBefore or notAfter, a CRL's \
	                                nextUpdate); 0 when nothing bounds it */ \
	char subject[TRUST_DN_MAX]; \
	char issuer[TRUST_DN_MAX]; \
	char serial[80];             /* lowercase hex */ \
	char fingerprint[65];        /* SHA-256 of the leaf DER, lowercase hex */ \
	char fingerprint_sha1[41];   /* SHA-1 of the leaf DER, lowercase hex */ \
	char ski[2 * TRUST_KEYID_MAX + 1];        /* subjectKeyIdentifier, hex */ \
	char issuer_ski[2 * TRUST_KEYID_MAX + 1]; /* authorityKeyIdentifier \
	                                keyIdentifier, hex */ \
	char spiffe_id[TRUST_SPIFFE_MAX]; /* empty when none */ \
	char san_dns[TRUST_SAN_MAX + 1];  /* ", "-separated whole entries */ \
	char san_uri[TRUST_SAN_MAX + 1]; \
	char san_email[TRUST_SAN_MAX + 1]; \
	char chain_rfc9440[TRUST_CHAIN_MAX]; /* result ok only: RFC 9440 \
	                                Client-Cert-Chain of the verified path \
	                                between leaf and anchor */ \
	/* end */

struct trust_result {
	TRUST_RESULT_FIELDS
};

/* Make `r` an empty result (internal_error, no details) without
 * touching more than the first byte of each text buffer. */
void trust_result_reset(struct trust_result *r);

/* Verify a DER leaf and an optional concatenated-DER chain of untrusted
 * intermediates against `tp` at time `now` (0: current time). Fills r
 * (OK, MALFORMED, UNTRUSTED, EXPIRED, NOT_YET_VALID, REVOKED, CRL_ERROR,
 * BAD_PURPOSE, IDENTITY_MISMATCH, PIN_MISMATCH, CHAIN_ERROR,
 * INTERNAL_ERROR). Leaves the OpenSSL error queue empty. Thread-safe. */
void trust_verify(const struct trust_policy *tp, const uint8_t *cert,
                  size_t cert_len, const uint8_t *chain, size_t chain_len,
                  time_t now, struct trust_result *r);

/* Map an X509_V_ERR_* code to a result. */
enum mtls_result verify_result_from_error(int x509_err);

/* Full verifications run by trust_verify() since the start. */
uint64_t trust_verifications(void);

#endif /* MTLS_TRUST_H */
