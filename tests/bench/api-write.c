/*
 * api-write.c - the tenant API's write path in process, without HTTP:
 * api-write CONFIG N PREFIX SUFFIX switches the mode of N hosts (PATCH,
 * log <-> enforce) through api_handle() with a host that installs each
 * generation at once, and prints the latency of each write's whole path
 * (state, render, load beside the live generation, fsync'ed commit,
 * install) as min / p50 / p99 / max milliseconds. The figure the HTTP
 * benchmark (api-bench.sh) measures adds the HTTP exchange and the SPOP
 * load on the same cores.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "../unit/apihost.h"
#include "benchutil.h"
#include "config.h"

static struct apihost host = { .gen = 1 };

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	char err[CONFIG_ERR_LEN], path[512], body[64];
	const char *prefix, *suffix;
	struct api *api;
	double *ms;
	long n;

	if (argc != 5 || (n = strtol(argv[2], NULL, 10)) < 1 || n > 100000) {
		fprintf(stderr, "usage: api-write CONFIG N PREFIX SUFFIX (hosts "
		        "PREFIX00000SUFFIX, e.g. h .bench.example)\n");
		return 2;
	}
	prefix = argv[3];
	suffix = argv[4];
	host.main_path = argv[1];
	if (config_load(host.main_path, &host.live, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	api = api_new(&apihost_ops, &host);
	ms = calloc((size_t)n, sizeof(*ms));
	if (api == NULL || ms == NULL)
		return 1;
	for (long i = 0; i < n; i++) {
		struct api_request rq = {
			.method = "PATCH", .path = path, .who = "bench",
			.content_type = "application/json", .body = body,
		};
		struct api_response rs;
		double t0;

		/* Every tenth is a wildcard in gen-big-config.sh: i * 10 skips
		 * them. */
		snprintf(path, sizeof(path), "/v1/hosts/%s%05d%s", prefix,
		         (int)((i * 10) % 9990), suffix);
		snprintf(body, sizeof(body), "{\"mode\": \"%s\"}", i % 2 ? "log" : "enforce");
		rq.body_len = strlen(body);
		t0 = (double)bench_now_ns() / 1e6;
		api_handle(api, &rq, &rs);
		ms[i] = (double)bench_now_ns() / 1e6 - t0;
		if (rs.status != 200) {
			fprintf(stderr, "%s -> %d %s\n", path, rs.status, rs.body ? rs.body : "");
			return 1;
		}
		free(rs.body);
		/* The previous generation is freed after the answer, as the
		 * server's last reference does (off the request's path). */
		apihost_free_retired(&host);
	}
	qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
	printf("writes %ld: min %.1f p50 %.1f p99 %.1f max %.1f ms\n", n, ms[0],
	       ms[n / 2], ms[(size_t)((double)n * 0.99)], ms[n - 1]);
	api_free(api);
	apihost_free(&host);
	free(ms);
	return 0;
}
