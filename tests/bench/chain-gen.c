/*
 * chain-gen.c - a long certificate chain and many leaves under it, for
 * the worst-case verification benchmark.
 *
 *   chain-gen KEYDIR NLEAVES OUTDIR
 *
 * KEYDIR holds key-00.pem ... key-NN.pem (PEM private keys, made with
 * `openssl genpkey`, in parallel if you like: this tool signs, it does
 * not generate keys). With D keys it writes to OUTDIR:
 *   root.pem           self-signed root CA (key-00), the trust anchor
 *   chain.pem          the D - 2 intermediates (key-01 ... key-(D-2)),
 *                      the leaf's issuer first, then the root: what a
 *                      client presents after its leaf (D - 1 certificates)
 *   leaves/leaf-NNNNN.der  NLEAVES leaves, all on key-(D-1) but each its
 *                      own certificate (own serial, own CN), issued by
 *                      the last intermediate: leaf + chain = D certificates
 * Every certificate is valid from an hour ago for 30 days (throwaway,
 * never committed); CAs carry basicConstraints CA:TRUE and keyUsage
 * keyCertSign, leaves clientAuth. Subject and authority key identifiers
 * link the chain as real PKIs do.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CG_MAX_KEYS 64
#define CG_MAX_LEAVES 100000
#define CG_DAYS 30

static void cg_die(const char *what)
{
	fprintf(stderr, "chain-gen: %s failed\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

#define CG_CHECK(cond) do { if (!(cond)) cg_die(#cond); } while (0)

static void cg_path(char *buf, size_t len, const char *dir, const char *name)
{
	if ((size_t)snprintf(buf, len, "%s/%s", dir, name) >= len) {
		fprintf(stderr, "chain-gen: %s/%s: path too long\n", dir, name);
		exit(1);
	}
}

static EVP_PKEY *cg_load_key(const char *dir, int i)
{
	char name[32], path[4096];
	EVP_PKEY *k;
	FILE *f;

	snprintf(name, sizeof(name), "key-%02d.pem", i);
	cg_path(path, sizeof(path), dir, name);
	f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (k == NULL)
		cg_die(path);
	return k;
}

static void cg_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	CG_CHECK(ext != NULL && X509_add_ext(x, ext, -1) == 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for `key` named CN=cn, issued by (issuer, issuer_key), or
 * self-signed when issuer is NULL. */
static X509 *cg_cert(const char *cn, long serial, EVP_PKEY *key, int is_ca,
                     X509 *issuer, EVP_PKEY *issuer_key)
{
	X509 *x = X509_new();
	X509_NAME *name;

	CG_CHECK(x != NULL);
	CG_CHECK(X509_set_version(x, X509_VERSION_3) == 1);
	CG_CHECK(ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1);
	CG_CHECK(X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL);
	CG_CHECK(X509_gmtime_adj(X509_getm_notAfter(x), 86400L * CG_DAYS) != NULL);
	name = X509_get_subject_name(x);
	CG_CHECK(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	         (const unsigned char *)"mtls-spoa bench", -1, -1, 0) == 1);
	CG_CHECK(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	         (const unsigned char *)cn, -1, -1, 0) == 1);
	CG_CHECK(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) == 1);
	CG_CHECK(X509_set_pubkey(x, key) == 1);
	cg_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash");
	cg_ext(x, issuer ? issuer : x, NID_authority_key_identifier, "keyid:always");
	if (is_ca) {
		cg_ext(x, issuer ? issuer : x, NID_basic_constraints, "critical,CA:TRUE");
		cg_ext(x, issuer ? issuer : x, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		cg_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		cg_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
		cg_ext(x, issuer, NID_ext_key_usage, "clientAuth");
	}
	CG_CHECK(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
	return x;
}

static FILE *cg_open(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;

	cg_path(path, sizeof(path), dir, name);
	f = fopen(path, "wb");
	if (f == NULL) {
		fprintf(stderr, "chain-gen: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return f;
}

int main(int argc, char **argv)
{
	EVP_PKEY *keys[CG_MAX_KEYS];
	X509 *ca[CG_MAX_KEYS];
	char cn[64], name[64], leafdir[4096];
	long nleaves;
	char *end;
	int nkeys = 0, i;
	FILE *f;

	if (argc != 4) {
		fprintf(stderr, "usage: chain-gen KEYDIR NLEAVES OUTDIR\n");
		return 2;
	}
	errno = 0;
	nleaves = strtol(argv[2], &end, 10);
	if (errno != 0 || *end != '\0' || nleaves < 1 || nleaves > CG_MAX_LEAVES) {
		fprintf(stderr, "chain-gen: NLEAVES must be 1 to %d\n", CG_MAX_LEAVES);
		return 2;
	}
	while (nkeys < CG_MAX_KEYS && (keys[nkeys] = cg_load_key(argv[1], nkeys)) != NULL)
		nkeys++;
	if (nkeys < 3) {
		fprintf(stderr, "chain-gen: %s: need key-00.pem ... at least key-02.pem\n",
		        argv[1]);
		return 2;
	}
	/* Root, then each intermediate issued by the one above it. */
	ca[0] = cg_cert("chain-gen root", 1, keys[0], 1, NULL, NULL);
	for (i = 1; i < nkeys - 1; i++) {
		snprintf(cn, sizeof(cn), "chain-gen intermediate %02d", i);
		ca[i] = cg_cert(cn, 1 + i, keys[i], 1, ca[i - 1], keys[i - 1]);
	}
	f = cg_open(argv[3], "root.pem");
	CG_CHECK(PEM_write_X509(f, ca[0]) == 1);
	CG_CHECK(fclose(f) == 0);
	f = cg_open(argv[3], "chain.pem");
	for (i = nkeys - 2; i >= 0; i--)
		CG_CHECK(PEM_write_X509(f, ca[i]) == 1);
	CG_CHECK(fclose(f) == 0);
	cg_path(leafdir, sizeof(leafdir), argv[3], "leaves");
	if (mkdir(leafdir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "chain-gen: %s: %s\n", leafdir, strerror(errno));
		return 1;
	}
	for (long l = 0; l < nleaves; l++) {
		X509 *leaf;

		snprintf(cn, sizeof(cn), "leaf-%05ld.flood.example", l);
		leaf = cg_cert(cn, 1000 + l, keys[nkeys - 1], 0, ca[nkeys - 2], keys[nkeys - 2]);
		snprintf(name, sizeof(name), "leaf-%05ld.der", l);
		f = cg_open(leafdir, name);
		CG_CHECK(i2d_X509_fp(f, leaf) == 1);
		CG_CHECK(fclose(f) == 0);
		X509_free(leaf);
	}
	printf("chain-gen: %d certificates per chain (root + %d intermediates + leaf), "
	       "%ld leaves -> %s\n", nkeys, nkeys - 2, nleaves, argv[3]);
	for (i = 0; i < nkeys - 1; i++)
		X509_free(ca[i]);
	for (i = 0; i < nkeys; i++)
		EVP_PKEY_free(keys[i]);
	return 0;
}
