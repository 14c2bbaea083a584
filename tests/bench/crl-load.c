/*
 * crl-load.c - what loading one CRL costs the agent.
 *
 *   crl-load FILE [ISSUER.pem]
 *
 * loads FILE with crl_load_file() and prints one line:
 *   crl-load: entries=N der_bytes=B load_ms=X rss_growth_bytes=Y lookup_ns=Z
 * entries and der_bytes are summed over the CRLs of the file; the RSS
 * growth is resident memory (/proc/self/statm) after the load minus
 * before; lookup_ns is the mean of 1,000,000 crl_is_revoked() calls on
 * random 20-octet serials (almost all absent: a binary search to the
 * end). With ISSUER.pem it also times the first and a remembered
 * crl_issued_by() and adds issued_by_first_us= and issued_by_again_ns=.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "crl.h"
#include "benchutil.h"

#define LOAD_LOOKUPS 1000000
#define LOAD_KEYS 65536     /* distinct serials, cycled */

static long load_rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, resident = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

static X509 *load_issuer(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	if (f == NULL) {
		fprintf(stderr, "crl-load: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL) {
		fprintf(stderr, "crl-load: %s: no certificate\n", path);
		exit(1);
	}
	return x;
}

int main(int argc, char **argv)
{
	struct crl **v;
	size_t n, entries = 0;
	char err[512];
	long before, after;
	uint64_t t0, t1, hits = 0;
	ASN1_INTEGER **keys;
	uint8_t serial[20];
	long der_bytes;
	FILE *f;

	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: crl-load FILE [ISSUER.pem]\n");
		return 2;
	}
	f = fopen(argv[1], "rb");
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (der_bytes = ftell(f)) < 0) {
		fprintf(stderr, "crl-load: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	fclose(f);

	before = load_rss_bytes();
	t0 = bench_now_ns();
	if (crl_load_file(argv[1], &v, &n, err, sizeof(err)) == -1) {
		fprintf(stderr, "crl-load: %s\n", err);
		return 1;
	}
	t1 = bench_now_ns();
	after = load_rss_bytes();
	for (size_t i = 0; i < n; i++)
		entries += crl_count(v[i]);

	keys = calloc(LOAD_KEYS, sizeof(*keys));
	if (keys == NULL)
		return 1;
	for (size_t i = 0; i < LOAD_KEYS; i++) {
		keys[i] = ASN1_INTEGER_new();
		if (keys[i] == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
			return 1;
		serial[0] = (serial[0] & 0x7f) | 0x01;
		if (ASN1_STRING_set(keys[i], serial, sizeof(serial)) != 1)
			return 1;
	}
	{
		uint64_t l0 = bench_now_ns(), l1;

		for (long i = 0; i < LOAD_LOOKUPS; i++)
			hits += (uint64_t)crl_is_revoked(v[0], keys[i % LOAD_KEYS]);
		l1 = bench_now_ns();
		/* PEM files: der_bytes is the file size, not the DER's. */
		printf("crl-load: entries=%zu der_bytes=%ld load_ms=%.1f "
		       "rss_growth_bytes=%ld lookup_ns=%.1f",
		       entries, der_bytes, (double)(t1 - t0) / 1e6, after - before,
		       (double)(l1 - l0) / LOAD_LOOKUPS);
	}
	if (argc == 3) {
		X509 *issuer = load_issuer(argv[2]);
		uint64_t a0 = bench_now_ns(), a1, a2;
		int ok1, ok2;

		ok1 = crl_issued_by(v[0], issuer);
		a1 = bench_now_ns();
		ok2 = crl_issued_by(v[0], issuer);
		a2 = bench_now_ns();
		printf(" issued_by=%d,%d issued_by_first_us=%.1f "
		       "issued_by_again_ns=%" PRIu64,
		       ok1, ok2, (double)(a1 - a0) / 1e3, a2 - a1);
		X509_free(issuer);
	}
	printf("\n");
	if (hits > LOAD_LOOKUPS / 1000)
		fprintf(stderr, "crl-load: %" PRIu64 " random serials revoked?\n", hits);
	for (size_t i = 0; i < LOAD_KEYS; i++)
		ASN1_INTEGER_free(keys[i]);
	free(keys);
	for (size_t i = 0; i < n; i++)
		crl_unref(v[i]);
	free(v);
	return 0;
}
