/*
 * crl-gen.c - a CA and a large CRL for the CRL benchmarks.
 *
 *   crl-gen N OUTDIR
 *
 * writes OUTDIR/ca.key and OUTDIR/ca.pem (a self-signed P-256 CA, valid
 * for a day from now) and OUTDIR/crl.der: a CRL from that CA, valid for a
 * day, revoking N random 20-octet serials (what CAs issue, RFC 5280
 * 4.1.2.2), each with a reasonCode, as a large real CRL looks; and
 * OUTDIR/revoked-serial.txt: the first of them in hex (for
 * `openssl x509 -set_serial 0x...`: a certificate the CRL revokes).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define GEN_MAX_N 10000000L
#define GEN_SERIAL_LEN 20

static void gen_die(const char *what)
{
	fprintf(stderr, "crl-gen: %s failed\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

#define GEN_CHECK(cond) do { if (!(cond)) gen_die(#cond); } while (0)

static X509 *gen_ca(EVP_PKEY *key)
{
	X509 *ca = X509_new();
	X509_NAME *name;
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	GEN_CHECK(ca != NULL);
	GEN_CHECK(X509_set_version(ca, X509_VERSION_3) == 1);
	GEN_CHECK(ASN1_INTEGER_set(X509_get_serialNumber(ca), 1) == 1);
	GEN_CHECK(X509_gmtime_adj(X509_getm_notBefore(ca), -3600) != NULL);
	GEN_CHECK(X509_gmtime_adj(X509_getm_notAfter(ca), 86400) != NULL);
	name = X509_get_subject_name(ca);
	GEN_CHECK(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	          (const unsigned char *)"crl-gen CA", -1, -1, 0) == 1);
	GEN_CHECK(X509_set_issuer_name(ca, name) == 1);
	GEN_CHECK(X509_set_pubkey(ca, key) == 1);
	X509V3_set_ctx(&ctx, ca, ca, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
	                          "critical,CA:TRUE");
	GEN_CHECK(ext != NULL && X509_add_ext(ca, ext, -1) == 1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
	                          "critical,keyCertSign,cRLSign");
	GEN_CHECK(ext != NULL && X509_add_ext(ca, ext, -1) == 1);
	X509_EXTENSION_free(ext);
	GEN_CHECK(X509_sign(ca, key, EVP_sha256()) > 0);
	return ca;
}

static X509_CRL *gen_crl(X509 *ca, EVP_PKEY *key, long n,
                         uint8_t first[GEN_SERIAL_LEN])
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *now = X509_gmtime_adj(NULL, 0);
	ASN1_TIME *next = X509_gmtime_adj(NULL, 86400);
	ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();
	uint8_t serial[GEN_SERIAL_LEN];

	GEN_CHECK(crl != NULL && now != NULL && next != NULL && reason != NULL);
	GEN_CHECK(X509_CRL_set_version(crl, X509_CRL_VERSION_2) == 1);
	GEN_CHECK(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) == 1);
	GEN_CHECK(X509_CRL_set1_lastUpdate(crl, now) == 1);
	GEN_CHECK(X509_CRL_set1_nextUpdate(crl, next) == 1);
	GEN_CHECK(ASN1_ENUMERATED_set(reason, CRL_REASON_KEY_COMPROMISE) == 1);
	for (long i = 0; i < n; i++) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *s = ASN1_INTEGER_new();

		GEN_CHECK(r != NULL && s != NULL);
		GEN_CHECK(RAND_bytes(serial, sizeof(serial)) == 1);
		serial[0] = (serial[0] & 0x7f) | 0x01;  /* positive, 20 octets */
		if (i == 0)
			memcpy(first, serial, sizeof(serial));
		GEN_CHECK(ASN1_STRING_set(s, serial, sizeof(serial)) == 1);
		GEN_CHECK(X509_REVOKED_set_serialNumber(r, s) == 1);
		GEN_CHECK(X509_REVOKED_set_revocationDate(r, now) == 1);
		GEN_CHECK(X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, reason, 0,
		                                    0) == 1);
		GEN_CHECK(X509_CRL_add0_revoked(crl, r) == 1);
		ASN1_INTEGER_free(s);
	}
	GEN_CHECK(X509_CRL_sort(crl) == 1);
	GEN_CHECK(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
	ASN1_TIME_free(now);
	ASN1_TIME_free(next);
	ASN1_ENUMERATED_free(reason);
	return crl;
}

static FILE *gen_open(const char *dir, const char *name, char *path,
                      size_t len)
{
	FILE *f;

	if ((size_t)snprintf(path, len, "%s/%s", dir, name) >= len) {
		fprintf(stderr, "crl-gen: %s/%s: path too long\n", dir, name);
		exit(1);
	}
	f = fopen(path, "wb");
	if (f == NULL) {
		fprintf(stderr, "crl-gen: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return f;
}

int main(int argc, char **argv)
{
	char path[4096], *end;
	long n;
	EVP_PKEY *key;
	X509 *ca;
	X509_CRL *crl;
	FILE *f;
	uint8_t first[GEN_SERIAL_LEN] = { 0 };

	if (argc != 3) {
		fprintf(stderr, "usage: crl-gen N OUTDIR\n");
		return 2;
	}
	errno = 0;
	n = strtol(argv[1], &end, 10);
	if (errno != 0 || *end != '\0' || n < 0 || n > GEN_MAX_N) {
		fprintf(stderr, "crl-gen: N must be 0 to %ld\n", GEN_MAX_N);
		return 2;
	}
	key = EVP_EC_gen("P-256");
	GEN_CHECK(key != NULL);
	ca = gen_ca(key);
	crl = gen_crl(ca, key, n, first);

	f = gen_open(argv[2], "ca.key", path, sizeof(path));
	GEN_CHECK(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
	GEN_CHECK(fclose(f) == 0);
	f = gen_open(argv[2], "ca.pem", path, sizeof(path));
	GEN_CHECK(PEM_write_X509(f, ca) == 1);
	GEN_CHECK(fclose(f) == 0);
	f = gen_open(argv[2], "crl.der", path, sizeof(path));
	GEN_CHECK(i2d_X509_CRL_fp(f, crl) == 1);
	GEN_CHECK(fclose(f) == 0);
	if (n > 0) {
		f = gen_open(argv[2], "revoked-serial.txt", path, sizeof(path));
		for (size_t i = 0; i < sizeof(first); i++)
			fprintf(f, "%02X", first[i]);
		fprintf(f, "\n");
		GEN_CHECK(fclose(f) == 0);
	}
	printf("crl-gen: %ld serials -> %s/{ca.key,ca.pem,crl.der,revoked-serial.txt}\n",
	       n, argv[2]);
	X509_CRL_free(crl);
	X509_free(ca);
	EVP_PKEY_free(key);
	return 0;
}
