/*
 * fuzz_ocsp.c - the OCSP response verifier: arbitrary bytes through
 * ocsp_response_status(), as a responder's answer would arrive, for a
 * fixed certificate id and issuer. Every outcome must be one of the
 * statuses with a reason for anything but GOOD and REVOKED, nothing may
 * leak, and the OpenSSL error queue must be left empty. No input can be
 * GOOD or REVOKED: the fixed issuer key is made here, so no seed is
 * signed by it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "ocsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static X509 *fuzz_cert(const char *cn, X509 *issuer, EVP_PKEY *ikey,
                       EVP_PKEY *key, long serial)
{
	X509 *x = X509_new();
	X509_NAME *name;

	if (x == NULL)
		abort();
	name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	        (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), serial) != 1 ||
	    X509_set_pubkey(x, key) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL ||
	    X509_sign(x, ikey, EVP_sha256()) <= 0)
		abort();
	return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static X509 *ca, *leaf;
	static STACK_OF(X509) *cas;
	static OCSP_CERTID *id;
	char why[256] = "";
	time_t nu = 0;
	enum ocsp_status st;

	if (ca == NULL) {
		EVP_PKEY *k = EVP_EC_gen("P-256"), *lk = EVP_EC_gen("P-256");

		if (k == NULL || lk == NULL)
			abort();
		ca = fuzz_cert("Fuzz CA", NULL, k, k, 1);
		leaf = fuzz_cert("fuzz leaf", ca, k, lk, 0x5000);
		cas = sk_X509_new_null();
		id = OCSP_cert_to_id(EVP_sha1(), leaf, ca);
		if (cas == NULL || id == NULL || sk_X509_push(cas, ca) <= 0)
			abort();
		EVP_PKEY_free(k);
		EVP_PKEY_free(lk);
	}
	st = ocsp_response_status(data, size, id, NULL, ca, cas, 3600, &nu, why,
	                          sizeof(why));
	if (st == OCSP_GOOD || st == OCSP_REVOKED || (unsigned int)st >= OCSP_STATUS_COUNT)
		abort();
	if (why[0] == '\0' || ERR_peek_error() != 0)
		abort();
	return 0;
}
