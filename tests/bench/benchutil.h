/*
 * benchutil.h - helpers shared by the benchmark tools (header only, so
 * each tool stays one .c file built against the agent objects like a unit
 * test): monotonic clock, certificate inputs, a latency histogram.
 */
#ifndef MTLS_BENCHUTIL_H
#define MTLS_BENCHUTIL_H

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* Most certificate inputs a tool accepts (files after directory listing). */
#define BENCH_MAX_CERTS 4096
/* Largest certificate file read (leaf plus chain). */
#define BENCH_MAX_CERT_FILE (256 * 1024)

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One client certificate as HAProxy would send it: the leaf DER and the
 * concatenated DER of the rest of the file (the presented chain). */
struct bench_cert {
	char *path;
	uint8_t *leaf;  size_t leaf_len;
	uint8_t *chain; size_t chain_len;   /* chain NULL when the file has one cert */
};

static inline int bench_append(uint8_t **buf, size_t *len, const uint8_t *p, size_t n)
{
	uint8_t *nb = realloc(*buf, *len + n);

	if (!nb)
		return -1;
	memcpy(nb + *len, p, n);
	*buf = nb;
	*len += n;
	return 0;
}

/* Append the DER of `x` to (*buf, *len). Returns 0 or -1. */
static inline int bench_append_x509(uint8_t **buf, size_t *len, X509 *x)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	int rc;

	if (n <= 0)
		return -1;
	rc = bench_append(buf, len, der, (size_t)n);
	OPENSSL_free(der);
	return rc;
}

/* Load a certificate file: DER (one or several concatenated certificates)
 * or PEM (every CERTIFICATE block; other blocks such as keys are skipped).
 * The first certificate is the leaf, the others the chain. Returns 0, or
 * -1 with a message on stderr. */
static inline int bench_cert_load(const char *path, struct bench_cert *c)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	size_t len = 0, n;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	data = malloc(BENCH_MAX_CERT_FILE);
	if (data)
		len = fread(data, 1, BENCH_MAX_CERT_FILE, f);
	fclose(f);
	if (!data || len == 0 || len == BENCH_MAX_CERT_FILE) {
		fprintf(stderr, "%s: empty, unreadable or over %d bytes\n", path,
		        BENCH_MAX_CERT_FILE);
		free(data);
		return -1;
	}
	if (data[0] == 0x30) {
		/* DER: walk the concatenated certificates. */
		const unsigned char *p = data, *end = data + len;
		int first = 1;

		while (p < end) {
			const unsigned char *start = p;
			X509 *x = d2i_X509(NULL, &p, (long)(end - p));

			if (!x)
				goto out;
			X509_free(x);
			n = (size_t)(p - start);
			if (bench_append(first ? &c->leaf : &c->chain,
			                 first ? &c->leaf_len : &c->chain_len, start, n) != 0)
				goto out;
			first = 0;
		}
	} else {
		BIO *bio = BIO_new_mem_buf(data, (int)len);
		X509 *x;
		int first = 1;

		if (!bio)
			goto out;
		while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
			int r = bench_append_x509(first ? &c->leaf : &c->chain,
			                          first ? &c->leaf_len : &c->chain_len, x);

			X509_free(x);
			first = 0;
			if (r != 0)
				break;
		}
		BIO_free(bio);
	}
	if (c->leaf_len > 0)
		rc = 0;
out:
	ERR_clear_error();
	free(data);
	if (rc != 0) {
		fprintf(stderr, "%s: no certificate could be read\n", path);
		free(c->leaf);
		free(c->chain);
		memset(c, 0, sizeof(*c));
		return -1;
	}
	c->path = strdup(path);
	return c->path ? 0 : -1;
}

static inline void bench_cert_free(struct bench_cert *c)
{
	free(c->path);
	free(c->leaf);
	free(c->chain);
	memset(c, 0, sizeof(*c));
}

static inline int bench_has_cert_ext(const char *name)
{
	static const char *const ext[] = { ".der", ".crt", ".pem", ".cer" };
	size_t l = strlen(name), i;

	for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		size_t e = strlen(ext[i]);

		if (l > e && strcmp(name + l - e, ext[i]) == 0)
			return 1;
	}
	return 0;
}

/* Add the certificate(s) at `path`: a file, or every *.der, *.crt, *.pem,
 * *.cer file of a directory in name order. Returns 0 or -1. */
static inline int bench_certs_add(const char *path, struct bench_cert *certs,
                                  size_t *n)
{
	struct stat st;
	struct dirent **ents = NULL;
	int ne, i, rc = 0;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (*n >= BENCH_MAX_CERTS) {
			fprintf(stderr, "more than %d certificates\n", BENCH_MAX_CERTS);
			return -1;
		}
		if (bench_cert_load(path, &certs[*n]) != 0)
			return -1;
		(*n)++;
		return 0;
	}
	ne = scandir(path, &ents, NULL, alphasort);
	if (ne < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < ne; i++) {
		char full[4096];

		if (rc == 0 && ents[i]->d_name[0] != '.' && bench_has_cert_ext(ents[i]->d_name)) {
			if (snprintf(full, sizeof(full), "%s/%s", path, ents[i]->d_name) >=
			    (int)sizeof(full))
				rc = -1;
			else
				rc = bench_certs_add(full, certs, n);
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

/* ---- latency histogram --------------------------------------------------
 * Log-linear: exact below 128 ns, then 64 sub-buckets per power of two
 * (under 1.6 % error), from nanoseconds to centuries in 3,776 counters. */
#define BENCH_HIST_SUB 64
#define BENCH_HIST_BUCKETS ((64 - 5) * BENCH_HIST_SUB)

struct bench_hist {
	uint64_t count[BENCH_HIST_BUCKETS];
	uint64_t n, sum_ns, max_ns;
};

static inline size_t bench_hist_index(uint64_t v)
{
	int e;

	if (v < 2 * BENCH_HIST_SUB)
		return (size_t)v;
	e = 63 - __builtin_clzll(v);     /* 2^e <= v < 2^(e+1), e >= 7 */
	return (size_t)(e - 5) * BENCH_HIST_SUB + (size_t)(v >> (e - 6)) - BENCH_HIST_SUB;
}

/* Midpoint of bucket `i` (inverse of bench_hist_index). */
static inline uint64_t bench_hist_value(size_t i)
{
	size_t e, m;

	if (i < 2 * BENCH_HIST_SUB)
		return i;
	e = i / BENCH_HIST_SUB + 5;
	m = i % BENCH_HIST_SUB + BENCH_HIST_SUB;
	return ((uint64_t)m << (e - 6)) + ((uint64_t)1 << (e - 6)) / 2;
}

static inline void bench_hist_add(struct bench_hist *h, uint64_t v)
{
	h->count[bench_hist_index(v)]++;
	h->n++;
	h->sum_ns += v;
	if (v > h->max_ns)
		h->max_ns = v;
}

static inline void bench_hist_merge(struct bench_hist *into, const struct bench_hist *h)
{
	size_t i;

	for (i = 0; i < BENCH_HIST_BUCKETS; i++)
		into->count[i] += h->count[i];
	into->n += h->n;
	into->sum_ns += h->sum_ns;
	if (h->max_ns > into->max_ns)
		into->max_ns = h->max_ns;
}

/* The value at quantile q (0..1), in ns; 0 when empty. */
static inline uint64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
	uint64_t rank, seen = 0;
	size_t i;

	if (h->n == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->n);
	if (rank >= h->n)
		rank = h->n - 1;
	for (i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen > rank) {
			uint64_t v = bench_hist_value(i);

			return v > h->max_ns ? h->max_ns : v;
		}
	}
	return h->max_ns;
}

#endif /* MTLS_BENCHUTIL_H */
