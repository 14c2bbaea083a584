/*
 * crl.h - one certificate revocation list, loaded once.
 *
 * OpenSSL's own X509_STORE path re-hashes a CRL and re-checks its
 * signature at every X509_verify_cert(), and keeps ~200 bytes per revoked
 * entry. A struct crl is parsed once, its fields checked once, and its
 * revoked serials kept in one sorted array: a revocation check is a
 * binary search, and a signature check against an issuer key is done at
 * most once per key (remembered). The parsed X509_CRL is not kept.
 *
 * A struct crl is immutable after crl_new() apart from the remembered
 * issuer keys (locked), reference counted, and safe to read from any
 * number of threads.
 */
#ifndef MTLS_CRL_H
#define MTLS_CRL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <openssl/x509.h>

#define CRL_WUR __attribute__((warn_unused_result))

/* Most CRLs in one `crl =` file, and the largest file accepted. */
#define CRL_MAX_PER_FILE 64
#define CRL_MAX_FILE (64 * 1024 * 1024)

struct crl;

/* Build a struct crl from one DER-encoded CRL. Fails (NULL, message in
 * err) when it does not parse, has no or a malformed lastUpdate, or an
 * entry's serial does not decode. A CRL that parses but that the agent
 * cannot apply (an unhandled critical extension, a delta CRL, an indirect
 * CRL, one limited to some reasons or to attribute certificates) loads,
 * and crl_unusable() says why. */
CRL_WUR struct crl *crl_new(const uint8_t *der, size_t len, char *err,
                            size_t errlen);

/* Load a `crl =` file: one or more PEM CRLs (at most CRL_MAX_PER_FILE),
 * or one DER CRL spanning the whole file. On success *out is a malloc'd
 * array of *n (>= 1) new references. Returns 0, or -1 with "PATH: what"
 * in err. */
CRL_WUR int crl_load_file(const char *path, struct crl ***out, size_t *n,
                          char *err, size_t errlen);

/* The same from bytes in memory (`name` is used in messages only): what
 * crl_load_file() does after reading the file. */
CRL_WUR int crl_load_mem(const char *name, const uint8_t *data, size_t len,
                         struct crl ***out, size_t *n, char *err,
                         size_t errlen);

struct crl *crl_ref(struct crl *c);   /* returns c */
void crl_unref(struct crl *c);         /* NULL is fine */

/* The issuer name (as in the CRL). */
const X509_NAME *crl_issuer(const struct crl *c);

/* lastUpdate, and nextUpdate (0 when the CRL has none). */
time_t crl_last_update(const struct crl *c);
time_t crl_next_update(const struct crl *c);

/* The cRLNumber (RFC 5280 5.2.3), NULL when absent or malformed. */
const ASN1_INTEGER *crl_number(const struct crl *c);

/* Number of revoked entries: distinct serials (a serial listed twice
 * counts once), entries with reason removeFromCRL not counted. */
size_t crl_count(const struct crl *c);

/* SHA-256 of the DER: two CRLs are the same CRL when these are equal. */
const uint8_t *crl_digest(const struct crl *c);   /* 32 bytes */

/* 1 if `issuer` issued this CRL: its subject equals the CRL's issuer
 * name and the CRL's signature verifies with its public key. The first
 * success for a key is remembered, so later calls with the same key cost
 * a name comparison and a digest of the key, never a pass over the CRL.
 * Thread-safe. Leaves the OpenSSL error queue as it was. */
int crl_issued_by(struct crl *c, X509 *issuer);

/* How many issuer keys crl_issued_by() remembers as verified (at most 8;
 * the oldest is forgotten first). For tests and diagnostics. */
unsigned int crl_remembered_keys(struct crl *c);

/* 0 when the CRL can be used for revocation checks, else the
 * X509_V_ERR_* code OpenSSL would report for it:
 *   X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION
 *     a critical CRL extension other than issuingDistributionPoint,
 *     authorityKeyIdentifier and cRLNumber; a critical entry extension
 *     other than reasonCode and invalidityDate; any certificateIssuer
 *     entry extension; a delta CRL (deltaCRLIndicator, critical by RFC
 *     5280 5.2.4); an IDP (critical by 5.2.5) with indirectCRL or
 *     onlySomeReasons, or with more than one "only" flag; an IDP or a
 *     reasonCode that does not decode or appears twice. OpenSSL without
 *     X509_V_FLAG_EXTENDED_CRL_SUPPORT skips such CRLs; we report them.
 *   X509_V_ERR_DIFFERENT_CRL_SCOPE
 *     an IDP with onlyContainsAttributeCerts: it covers no certificate.
 *   X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD
 *     a nextUpdate that does not parse (crl_time_check says so too).
 * All three map to RESULT_CRL_ERROR in verify_result_from_error(). */
int crl_unusable(const struct crl *c);

/* 1 if the CRL's scope covers `x` (an issuingDistributionPoint limited to
 * end-entity or to CA certificates excludes the other kind; one naming
 * distribution points covers only certificates whose
 * cRLDistributionPoints name one of them, as OpenSSL's crl_crldp_check()).
 * Whether x's issuer issued the CRL is crl_issued_by()'s question. */
int crl_covers(const struct crl *c, X509 *x);

/* X509_V_OK if the CRL is current at `now` (lastUpdate <= now and, when
 * present, now < nextUpdate), else X509_V_ERR_CRL_NOT_YET_VALID or
 * X509_V_ERR_CRL_HAS_EXPIRED. */
int crl_time_check(const struct crl *c, time_t now);

/* 1 if `serial` is listed as revoked (an entry with reason
 * removeFromCRL does not count), 0 if not. O(log n), no allocation. */
int crl_is_revoked(const struct crl *c, const ASN1_INTEGER *serial);

#endif /* MTLS_CRL_H */
