/*
 * raw-verify.c - "the limit": the agent's verification work in a
 * single-threaded in-process loop, with no protocol and no sockets.
 *
 * Loads the same configuration as the agent (config_load()), picks the
 * policy for --host, and cycles through the same certificates. Modes:
 *   verify    trust_verify() on the host's trust policy + verdict_finish()
 *             + verdict_encode() (what the uncached agent does per
 *             message, minus SPOP and policy selection)
 *   evaluate  verdict_evaluate() (policy lookup, SNI/Host check, verify)
 *             + verdict_encode(): the agent's whole handler, in process
 *   openssl   plain OpenSSL: d2i the leaf and chain, X509_verify_cert()
 *             against the trust policy's X509_STORE, free (reference;
 *             without the agent's revocation hook, which needs the
 *             verification context trust_verify() sets up)
 * Prints one text line per mode and, with --json, one JSON line per mode.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "policy.h"
#include "verdict.h"
#include "trust.h"
#include "benchutil.h"

enum rv_mode {
	RV_VERIFY = 0,
	RV_EVALUATE,
	RV_OPENSSL,
	RV_MODE_COUNT
};

static const char *const rv_mode_str[RV_MODE_COUNT] = {
	[RV_VERIFY] = "verify",
	[RV_EVALUATE] = "evaluate",
	[RV_OPENSSL] = "openssl",
};

struct rv_ctx {
	const struct config *cfg;
	const struct host_policy *policy;
	struct bench_cert *certs;
	size_t ncerts;
	const char *sni, *host;
	uint8_t ack[SPOP_DEFAULT_FRAME_SIZE];
	struct verdict v;
	uint64_t sink;        /* keeps the work observable */
	uint64_t ok;          /* iterations that verified */
};

static void one_verify(struct rv_ctx *r, const struct bench_cert *c)
{
	struct spop_wr w;

	memset(&r->v, 0, sizeof(r->v));
	trust_verify(r->policy->trust, c->leaf, c->leaf_len, c->chain, c->chain_len, 0,
	             &r->v.trust);
	verdict_finish(&r->v, r->policy, &r->v.trust);
	spop_wr_init(&w, r->ack, sizeof(r->ack));
	verdict_encode(&r->v, &w, 1);
	r->sink += (uint64_t)(w.p - r->ack);
	r->ok += r->v.result == RESULT_OK;
}

static void one_evaluate(struct rv_ctx *r, const struct bench_cert *c)
{
	struct mtls_request req = {
		.cert = c->leaf, .cert_len = c->leaf_len,
		.chain = c->chain, .chain_len = c->chain_len,
		.sni = r->sni, .sni_len = r->sni ? strlen(r->sni) : 0,
		.host = r->host, .host_len = r->host ? strlen(r->host) : 0,
	};
	struct spop_wr w;

	verdict_evaluate(r->cfg, &req, &r->v);
	spop_wr_init(&w, r->ack, sizeof(r->ack));
	verdict_encode(&r->v, &w, 1);
	r->sink += (uint64_t)(w.p - r->ack);
	r->ok += r->v.result == RESULT_OK;
}

static void one_openssl(struct rv_ctx *r, const struct bench_cert *c)
{
	const unsigned char *q = c->leaf;
	X509 *leaf = d2i_X509(NULL, &q, (long)c->leaf_len);
	STACK_OF(X509) *chain = sk_X509_new_null();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();

	if (leaf && chain && ctx) {
		const unsigned char *p = c->chain, *end = c->chain + c->chain_len;

		while (p && p < end) {
			X509 *x = d2i_X509(NULL, &p, (long)(end - p));

			if (!x || !sk_X509_push(chain, x)) {
				X509_free(x);
				break;
			}
		}
		if (X509_STORE_CTX_init(ctx, r->policy->trust->store, leaf, chain) == 1) {
			/* No app data: the store's revocation hook then
			 * skips (it needs trust_verify()'s context). */
			r->ok += X509_verify_cert(ctx) == 1;
			r->sink += (uint64_t)X509_STORE_CTX_get_error(ctx);
		}
	}
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(chain, X509_free);
	X509_free(leaf);
	ERR_clear_error();
}

/* Run `mode` for `seconds` (time checked every 16 iterations) or `n`
 * iterations. Returns iterations done; *elapsed in seconds. */
static uint64_t run(struct rv_ctx *r, enum rv_mode mode, double seconds, uint64_t n,
                    double *elapsed)
{
	uint64_t start = bench_now_ns(), deadline = start + (uint64_t)(seconds * 1e9);
	uint64_t i = 0, now = start;
	size_t k = 0;

	r->ok = 0;
	for (;;) {
		if (n ? i >= n : ((i & 15) == 0 && (now = bench_now_ns()) >= deadline))
			break;
		switch (mode) {
		case RV_VERIFY: one_verify(r, &r->certs[k]); break;
		case RV_EVALUATE: one_evaluate(r, &r->certs[k]); break;
		default: one_openssl(r, &r->certs[k]); break;
		}
		if (++k == r->ncerts)
			k = 0;
		i++;
	}
	*elapsed = (double)(bench_now_ns() - start) / 1e9;
	return i;
}

static void usage(FILE *f)
{
	fprintf(f,
	"usage: raw-verify -c CONFIG --host NAME [--sni NAME] -k CERT_DIR_OR_FILE...\n"
	"                  [-d SECONDS | -n ITERATIONS] [-m verify|evaluate|openssl|all]\n"
	"                  [--json]\n"
	"  --sni defaults to --host. Default: -d 3 -m all.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "sni", required_argument, NULL, 'S' },
		{ "host", required_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct bench_cert certs[BENCH_MAX_CERTS];
	static struct rv_ctx r;
	struct config *cfg = NULL;
	char err[CONFIG_ERR_LEN], norm[POLICY_HOST_MAX + 1];
	const char *cfgpath = NULL, *modearg = "all";
	double seconds = 3, elapsed;
	uint64_t n = 0, iters;
	size_t ncerts = 0, i;
	int ch, json = 0, m, len;

	while ((ch = getopt_long(argc, argv, "c:k:d:n:m:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfgpath = optarg; break;
		case 'k':
			if (bench_certs_add(optarg, certs, &ncerts) != 0)
				return 2;
			break;
		case 'd': seconds = strtod(optarg, NULL); break;
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 'm': modearg = optarg; break;
		case 'S': r.sni = optarg; break;
		case 'H': r.host = optarg; break;
		case 'J': json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cfgpath || !r.host || ncerts == 0 || optind != argc ||
	    !(seconds > 0 && seconds <= 600)) {
		usage(stderr);
		return 2;
	}
	if (!r.sni)
		r.sni = r.host;
	if (config_load(cfgpath, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "raw-verify: %s\n", err);
		return 1;
	}
	len = policy_normalize(r.host, strlen(r.host), 1, norm);
	r.policy = len < 0 ? NULL : config_lookup(cfg, norm, (size_t)len);
	if (!r.policy || !r.policy->trust) {
		fprintf(stderr, "raw-verify: no verifying policy for host %s\n", r.host);
		config_free(cfg);
		return 1;
	}
	r.cfg = cfg;
	r.certs = certs;
	r.ncerts = ncerts;

	for (m = 0; m < RV_MODE_COUNT; m++) {
		if (strcmp(modearg, "all") != 0 && strcmp(modearg, rv_mode_str[m]) != 0)
			continue;
		/* Warm-up: first touches of OpenSSL's lazily built tables. */
		run(&r, (enum rv_mode)m, 0, ncerts * 4, &elapsed);
		iters = run(&r, (enum rv_mode)m, seconds, n, &elapsed);
		printf("raw-verify %-8s %10" PRIu64 " verifications in %.3f s: %9.0f /s, "
		       "%7.2f us each (%" PRIu64 " ok, %zu certs, policy %s)\n",
		       rv_mode_str[m], iters, elapsed, (double)iters / elapsed,
		       elapsed * 1e6 / (double)iters, r.ok, ncerts, r.policy->pattern);
		if (json)
			printf("{\"tool\":\"raw-verify\",\"mode\":\"%s\",\"iterations\":%" PRIu64
			       ",\"ok\":%" PRIu64 ",\"elapsed_s\":%.6f,\"per_s\":%.1f,\"us_each\":%.3f,"
			       "\"certs\":%zu}\n", rv_mode_str[m], iters, r.ok, elapsed,
			       (double)iters / elapsed, elapsed * 1e6 / (double)iters, ncerts);
		fflush(stdout);
	}
	config_free(cfg);
	for (i = 0; i < ncerts; i++)
		bench_cert_free(&certs[i]);
	return r.sink == 0 ? 1 : 0;
}
