/*
 * callgrind-notify.c - drives the agent's protocol path (conn_process(),
 * the same function the server calls per read) with identical NOTIFY
 * frames, so callgrind can count the instructions of one cached
 * NOTIFY -> ACK:
 *
 *   valgrind --tool=callgrind --toggle-collect=bench_measured_notify \
 *       callgrind-notify -c CONF --host NAME -k CERT -n 2000
 *
 * Only bench_measured_notify() (and what it calls) is collected: one
 * conn_process() over one NOTIFY frame and the reset of the output buffer.
 * It runs after a warm-up (bench_warm_notify(), not collected) that fills
 * the cache, so every measured call is a cache hit. Sockets, epoll and
 * libev are not included: they are the kernel's and libev's share, which
 * the SPOP load figures cover. Without valgrind it prints the time per
 * call as a cross-check.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "config.h"
#include "conn.h"
#include "handler.h"
#include "log.h"
#include "spop.h"
#include "benchutil.h"

struct cn_state {
	struct conn_proto proto;
	struct handler_env env;
	struct obuf out;
	uint8_t *frame;
	size_t frame_len;
	uint64_t answered;
};

/* noinline: the names must exist for --toggle-collect. */
__attribute__((noinline)) static int run_one(struct cn_state *s)
{
	size_t consumed = 0;
	enum conn_verdict v = conn_process(&s->proto, &s->env, s->frame, s->frame_len,
	                                   &consumed, &s->out);

	if (v != CONN_KEEP || consumed != s->frame_len || obuf_pending(&s->out) == 0)
		return -1;
	/* What the server does once the ACK is written to the socket. */
	s->out.off = s->out.len = 0;
	s->answered++;
	return 0;
}

int bench_warm_notify(struct cn_state *s);
int bench_measured_notify(struct cn_state *s);

__attribute__((noinline)) int bench_warm_notify(struct cn_state *s)
{
	return run_one(s);
}

__attribute__((noinline)) int bench_measured_notify(struct cn_state *s)
{
	return run_one(s);
}

static int build_frame(uint8_t *buf, size_t room, uint8_t type, const struct bench_cert *c,
                       const char *sni, const char *host, size_t *len)
{
	struct spop_wr w;
	struct spop_data d;
	uint8_t *start;

	spop_wr_init(&w, buf, room);
	start = spop_frame_begin(&w, type, SPOP_FLAG_FIN, type == SPOP_FRAME_NOTIFY,
	                         type == SPOP_FRAME_NOTIFY);
	if (type == SPOP_FRAME_HAPROXY_HELLO) {
		d = spop_cstr("2.0");
		spop_put_kv(&w, "supported-versions", &d);
		d = spop_uint32(SPOP_DEFAULT_FRAME_SIZE);
		spop_put_kv(&w, "max-frame-size", &d);
		d = spop_cstr("pipelining");
		spop_put_kv(&w, "capabilities", &d);
	} else {
		spop_put_bytes(&w, "check-client-cert", strlen("check-client-cert"));
		spop_put_u8(&w, 4);
		d = spop_bin(c->leaf, c->leaf_len);
		spop_put_kv(&w, "cert", &d);
		d = c->chain_len ? spop_bin(c->chain, c->chain_len) : spop_null();
		spop_put_kv(&w, "chain", &d);
		d = spop_cstr(sni);
		spop_put_kv(&w, "sni", &d);
		d = spop_cstr(host);
		spop_put_kv(&w, "host", &d);
	}
	if (spop_frame_end(&w, start, SPOP_DEFAULT_FRAME_SIZE) != 0)
		return -1;
	*len = (size_t)(w.p - buf);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "sni", required_argument, NULL, 'S' },
		{ "host", required_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	static struct cn_state s;
	static uint8_t hello[1024], notify[SPOP_DEFAULT_FRAME_SIZE + 4];
	struct bench_cert cert;
	struct config *cfg = NULL;
	char err[CONFIG_ERR_LEN];
	const char *cfgpath = NULL, *certpath = NULL, *sni = NULL, *host = NULL;
	unsigned long n = 1000, warm = 100, i;
	size_t hello_len, consumed;
	struct cache_stats st;
	uint64_t t0, t1;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:k:n:w:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfgpath = optarg; break;
		case 'k': certpath = optarg; break;
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 'w': warm = strtoul(optarg, NULL, 10); break;
		case 'S': sni = optarg; break;
		case 'H': host = optarg; break;
		default: goto bad;
		}
	}
	if (!cfgpath || !certpath || !host || n == 0 || warm == 0 || optind != argc)
		goto bad;
	if (!sni)
		sni = host;
	log_set_level(LOG_LVL_WARNING);
	if (config_load(cfgpath, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "callgrind-notify: %s\n", err);
		return 1;
	}
	if (bench_cert_load(certpath, &cert) != 0)
		return 1;
	if (build_frame(hello, sizeof(hello), SPOP_FRAME_HAPROXY_HELLO, NULL, NULL, NULL,
	                &hello_len) != 0 ||
	    build_frame(notify, sizeof(notify), SPOP_FRAME_NOTIFY, &cert, sni, host,
	                &s.frame_len) != 0) {
		fprintf(stderr, "callgrind-notify: cannot encode the frames\n");
		return 1;
	}
	s.frame = notify;
	s.env.cfg = cfg;
	s.env.cache = cache_new(cfg->agent.cache_entries ? cfg->agent.cache_entries : 1000);
	s.env.gen = 1;
	s.env.cache_ttl_ms = cfg->agent.cache_ttl_ms;
	s.out.limit = cfg->agent.max_output_bytes;
	if (!s.env.cache || s.env.cache_ttl_ms == 0) {
		fprintf(stderr, "callgrind-notify: the configuration disables the cache\n");
		return 1;
	}
	conn_proto_init(&s.proto, cfg->agent.max_frame_size, "callgrind-notify");
	if (conn_process(&s.proto, &s.env, hello, hello_len, &consumed, &s.out) != CONN_KEEP ||
	    s.proto.state != CONN_ST_READY) {
		fprintf(stderr, "callgrind-notify: HELLO refused\n");
		return 1;
	}
	s.out.off = s.out.len = 0;

	for (i = 0; i < warm; i++)
		if (bench_warm_notify(&s) != 0)
			goto fail;
	t0 = bench_now_ns();
	for (i = 0; i < n; i++)
		if (bench_measured_notify(&s) != 0)
			goto fail;
	t1 = bench_now_ns();
	cache_get_stats(s.env.cache, &st);
	/* The time is only meaningful without valgrind. */
	printf("callgrind-notify: %lu measured NOTIFY->ACK after %lu warm-up, "
	       "%.0f ns each; cache hits %" PRIu64 " misses %" PRIu64
	       "; NOTIFY frame %zu bytes\n", n, warm,
	       (double)(t1 - t0) / (double)n, st.hits, st.misses, s.frame_len);
	/* Every measured call must be a hit, or the figure is not the
	 * cached path. */
	if (st.misses != 1 || st.hits != n + warm - 1) {
		fprintf(stderr, "callgrind-notify: expected 1 miss and %lu hits\n", n + warm - 1);
		return 1;
	}
	cache_free(s.env.cache);
	obuf_free(&s.out);
	config_free(cfg);
	bench_cert_free(&cert);
	return 0;
fail:
	fprintf(stderr, "callgrind-notify: NOTIFY %lu not answered\n", i);
	return 1;
bad:
	fprintf(stderr, "usage: callgrind-notify -c CONFIG --host NAME [--sni NAME] -k CERT "
	        "[-n MEASURED] [-w WARMUP]\n");
	return 2;
}
