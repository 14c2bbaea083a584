/*
 * fuzz_crl.c - the CRL loader: arbitrary bytes through crl_new(). Every
 * outcome must be a loaded CRL or an error message, nothing may leak, and
 * a loaded CRL must answer every query: lookups of serials taken from the
 * input (each a few bytes, with either sign), the scope and time checks,
 * and a signature check against a fixed key (which never verifies).
 * The same bytes also go through crl_load_mem(), what a fetched crl-url
 * answer goes through (PEM blocks, else one DER CRL), and the cRLNumber
 * of what loads is compared as a refresh compares it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A self-signed P-256 certificate, built once, named like most seeds'
 * issuer ("CN=Fuzz CA") so crl_issued_by() gets past the name check. */
static X509 *fuzz_ca(void)
{
	static X509 *ca;
	EVP_PKEY *key;
	X509_NAME *name;

	if (ca != NULL)
		return ca;
	key = EVP_EC_gen("P-256");
	ca = X509_new();
	if (key == NULL || ca == NULL)
		abort();
	name = X509_get_subject_name(ca);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	        (const unsigned char *)"Fuzz CA", -1, -1, 0) != 1 ||
	    X509_set_issuer_name(ca, name) != 1 ||
	    X509_set_pubkey(ca, key) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(ca), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(ca), 86400) == NULL ||
	    X509_sign(ca, key, EVP_sha256()) <= 0)
		abort();
	EVP_PKEY_free(key);
	return ca;
}

static void fuzz_lookups(const struct crl *c, const uint8_t *data, size_t size)
{
	ASN1_INTEGER *pos = ASN1_STRING_type_new(V_ASN1_INTEGER);
	ASN1_INTEGER *neg = ASN1_STRING_type_new(V_ASN1_NEG_INTEGER);

	if (pos == NULL || neg == NULL)
		abort();
	/* Serials of 0..24 octets at a few offsets: short and long keys. */
	for (size_t off = 0; off < size && off < 64; off += 7) {
		size_t len = (size_t)data[off] % 25;

		if (len > size - off)
			len = size - off;
		if (ASN1_STRING_set(pos, data + off, (int)len) != 1 ||
		    ASN1_STRING_set(neg, data + off, (int)len) != 1)
			abort();
		(void)crl_is_revoked(c, pos);
		(void)crl_is_revoked(c, neg);
	}
	ASN1_INTEGER_free(pos);
	ASN1_INTEGER_free(neg);
}

/* The fetched-answer path: every outcome is CRLs or a message. */
static void fuzz_mem(const uint8_t *data, size_t size)
{
	char err[256] = "";
	struct crl **v = NULL;
	size_t n = 0;

	if (crl_load_mem("fuzz", data, size, &v, &n, err, sizeof(err)) == -1) {
		if (err[0] == '\0' || v != NULL || n != 0)
			abort();
		return;
	}
	if (n == 0 || n > CRL_MAX_PER_FILE)
		abort();
	for (size_t i = 0; i < n; i++) {
		const ASN1_INTEGER *a = crl_number(v[i]), *b = crl_number(v[0]);

		if (a != NULL && b != NULL)
			(void)ASN1_INTEGER_cmp(a, b);
		crl_unref(v[i]);
	}
	free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct crl *c;
	X509 *ca = fuzz_ca();

	fuzz_mem(data, size);
	err[0] = '\0';
	c = crl_new(data, size, err, sizeof(err));
	if (c == NULL) {
		if (err[0] == '\0')
			abort();
		return 0;
	}
	fuzz_lookups(c, data, size);
	(void)crl_count(c);
	(void)crl_covers(c, ca);
	(void)crl_unusable(c);
	(void)crl_time_check(c, crl_last_update(c));
	(void)crl_time_check(c, crl_next_update(c));
	/* The fixed key signed none of the inputs. */
	if (crl_issued_by(c, ca))
		abort();
	crl_unref(crl_ref(c));
	crl_unref(c);
	return 0;
}
