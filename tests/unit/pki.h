/*
 * pki.h - a throwaway PKI for unit tests, generated in memory with OpenSSL
 * at test time (nothing with a fixed expiry date is committed).
 *
 * Keys are EC P-256 (fast to generate). Validity is given as offsets in
 * seconds from now, so certificates can be made expired or not yet valid.
 * Every function aborts the test program on an OpenSSL failure: a broken
 * fixture must not look like a passing test.
 */
#ifndef MTLS_TEST_PKI_H
#define MTLS_TEST_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

enum pki_eku {
	PKI_EKU_NONE = 0,      /* no extendedKeyUsage extension */
	PKI_EKU_CLIENT,        /* clientAuth */
	PKI_EKU_SERVER,        /* serverAuth only */
	PKI_EKU_CLIENT_SERVER, /* both */
	PKI_EKU_COUNT
};

struct pki_cert_opts {
	const char *cn;            /* subject CN (required) */
	const char *org;           /* subject O, optional */
	long not_before;           /* seconds from now; default 0 means -3600 */
	long not_after;            /* seconds from now; default 0 means +86400 */
	int is_ca;                 /* basicConstraints CA:TRUE (+ keyCertSign, cRLSign) */
	int no_basic_constraints;  /* for a "CA" that lacks basicConstraints */
	int pathlen;               /* for CAs: -1 or 0 means no limit ... */
	int has_pathlen;           /* ... unless this is set */
	enum pki_eku eku;
	const char *san_dns[4];    /* NULL-terminated lists, optional */
	const char *san_uri[4];
	const char *san_email[4];
	uint64_t serial;           /* 0: random */
	int no_key_ids;            /* no subject/authority key identifier */
};

struct pki_cert {
	X509 *x509;
	EVP_PKEY *key;
};

/* Make a certificate. `issuer` NULL makes it self-signed. */
struct pki_cert *pki_make(const struct pki_cert_opts *o, const struct pki_cert *issuer);
void pki_free(struct pki_cert *c);

/* DER of a certificate: malloc'd, *len set. */
uint8_t *pki_der(const struct pki_cert *c, size_t *len);

/* Concatenated DER of certificates (the ssl_c_chain_der format). */
uint8_t *pki_chain_der(const struct pki_cert *const *certs, size_t n, size_t *len);

/* A CRL issued by `ca`, revoking `n` serials, valid from now+last_update
 * to now+next_update (seconds). Caller frees with X509_CRL_free. */
X509_CRL *pki_crl(const struct pki_cert *ca, const uint64_t *serials, size_t n,
                  long last_update, long next_update);

/* Write PEM files (one or more certificates concatenated; or a CRL) into
 * `path`. Abort on failure. */
void pki_write_pem(const char *path, const struct pki_cert *const *certs, size_t n);
void pki_write_crl_pem(const char *path, X509_CRL *crl);
void pki_write_crl_der(const char *path, X509_CRL *crl);

/* A key identifier extension (NID_subject_key_identifier, or the
 * keyIdentifier of NID_authority_key_identifier) as OpenSSL prints it
 * ("AB:CD:..."), turned into lowercase hex without colons; "" when the
 * certificate has none. */
void pki_keyid_hex(X509 *x, int nid, char *out, size_t outlen);

/* A fresh temporary directory (mkdtemp under $TMPDIR or /tmp), malloc'd;
 * and its recursive removal, which also frees the string (do not free it
 * yourself after pki_rmdir). */
char *pki_tmpdir(void);
void pki_rmdir(char *dir);

#endif /* MTLS_TEST_PKI_H */
