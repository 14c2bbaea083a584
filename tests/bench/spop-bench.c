/*
 * spop-bench.c - SPOP load generator for mtls-spoa.
 *
 * Speaks to the agent as HAProxy does: HAPROXY-HELLO (version 2.0,
 * max-frame-size 16380, capability "pipelining"), then keeps P NOTIFY
 * frames carrying check-client-cert in flight on each of C connections,
 * cycling through K client certificates. Every ACK is matched to its
 * (stream-id, frame-id) and must carry the `action` variable; anything
 * else is counted as an error. Reports messages per second and the latency
 * of each message (send to ACK) as text and, with --json, as one JSON
 * line (the last line of stdout).
 *
 * Single-threaded epoll per worker (-w, default 1): the loops share
 * nothing, their figures are merged at the end. Every run is bounded in
 * time (--max-time, default duration + 10 s, or 60 s with -n).
 *
 * Options for the trust benchmarks: --chain FILE sends the certificates
 * of FILE as the chain of every certificate that has none of its own;
 * --host-variants N gives message i (counted per worker) spelling i % N
 * of --host and --sni (see host_variant()); --rate R paces the messages
 * (R per second over all workers) instead of sending as fast as the
 * pipeline allows; --max-frame N announces a larger max-frame-size for
 * long chains.
 *
 * Exit status: 0 when every message sent was answered and no error was
 * seen, 1 otherwise, 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "spop.h"
#include "verdict.h"
#include "benchutil.h"

#define SB_MAX_CONNS 4096
#define SB_MAX_PIPELINE 4096
#define SB_MAX_WORKERS 64
/* What we announce in HAPROXY-HELLO by default, as HAProxy does. */
#define SB_MAX_FRAME SPOP_DEFAULT_FRAME_SIZE
/* --max-frame: at most half the input buffer, so a whole frame always
 * fits after what is left of the previous read. */
#define SB_MAX_FRAME_OPT (128 * 1024)
/* --host-variants: spellings 0 .. N-1; spelling j > 0 carries port j. */
#define SB_MAX_VARIANTS 65536
/* A spelled name: the name, ':' and a port. */
#define SB_NAME_CAP 300
/* Input buffer: a whole pipeline of ACKs may arrive at once. */
#define SB_IN_CAP (256 * 1024)
/* Time allowed after the load stops for outstanding ACKs and the
 * DISCONNECT exchange. */
#define SB_DRAIN_NS (5ull * 1000000000ull)

enum sb_err {
	SB_ERR_CONNECT = 0,
	SB_ERR_HELLO,           /* bad or missing AGENT-HELLO */
	SB_ERR_UNEXPECTED,      /* unexpected frame type or ACK out of state */
	SB_ERR_DISCONNECT,      /* AGENT-DISCONNECT before we were done */
	SB_ERR_ID,              /* ACK matching no message in flight */
	SB_ERR_NO_ACTION,       /* ACK without the `action` variable */
	SB_ERR_MALFORMED,       /* frame or ACK payload does not decode */
	SB_ERR_EOF,             /* connection closed or failed while in use */
	SB_ERR_TIMEOUT,         /* messages still unanswered at the time limit */
	SB_ERR_COUNT
};

static const char *const sb_err_str[SB_ERR_COUNT] = {
	[SB_ERR_CONNECT] = "connect",
	[SB_ERR_HELLO] = "hello",
	[SB_ERR_UNEXPECTED] = "unexpected_frame",
	[SB_ERR_DISCONNECT] = "agent_disconnect",
	[SB_ERR_ID] = "id_mismatch",
	[SB_ERR_NO_ACTION] = "no_action",
	[SB_ERR_MALFORMED] = "malformed",
	[SB_ERR_EOF] = "eof",
	[SB_ERR_TIMEOUT] = "timeout",
};

enum sb_state {
	SB_ST_HELLO = 0,   /* HELLO sent, waiting for AGENT-HELLO */
	SB_ST_READY,       /* sending NOTIFYs */
	SB_ST_CLOSING,     /* HAPROXY-DISCONNECT sent */
	SB_ST_DONE,        /* closed */
	SB_ST_COUNT
};

/* One message in flight. Its index + 1 is the frame-id, so an ACK finds
 * its slot at once and the stream-id proves it is the right message. */
struct sb_slot {
	uint64_t stream_id;   /* 0: free */
	uint64_t sent_ns;
};

struct sb_worker;

struct sb_conn {
	int fd;
	enum sb_state state;
	struct sb_worker *w;
	uint8_t *in;   size_t in_len;
	uint8_t *out;  size_t out_off, out_len, out_cap;
	int want_out;                 /* EPOLLOUT armed */
	struct sb_slot *slots;
	uint32_t *free_slots;         /* stack of free slot indexes */
	unsigned int nfree;
	unsigned int inflight;
	uint64_t next_stream;
	uint32_t max_frame;           /* negotiated */
};

/* A prebuilt NOTIFY payload per certificate: only the header changes
 * (with --host-variants the payload is encoded per message from cert). */
struct sb_payload {
	uint8_t *data;
	size_t len;
	const struct bench_cert *cert;
};

struct sb_opts {
	const char *addr;
	unsigned int conns, pipeline, workers;
	uint64_t total;          /* -n, 0: use duration */
	double duration;         /* -d seconds */
	double max_time;         /* hard bound */
	const char *sni, *host;
	unsigned int host_variants;   /* 0: --host and --sni as given */
	double rate;                  /* messages/s over all workers, 0: unpaced */
	unsigned int max_frame;       /* announced in HAPROXY-HELLO */
	int json;
	int quiet;
};

struct sb_worker {
	int id;
	int ep;
	const struct sb_opts *o;
	const struct sb_payload *payloads;
	size_t npayloads;
	size_t cursor;            /* next certificate */
	struct sb_conn *conns;
	unsigned int nconns;
	uint64_t quota;           /* messages to send (-n), 0: by time */
	uint64_t start_ns, stop_send_ns, hard_ns;
	uint64_t interval_ns, next_send_ns;   /* --rate: pacing, 0: none */
	uint64_t sent, answered;
	uint64_t last_ack_ns;
	uint64_t err[SB_ERR_COUNT];
	uint64_t results[RESULT_COUNT + 1];  /* + "other" */
	uint64_t actions[ACTION_COUNT + 1];
	struct bench_hist hist;
	pthread_t thread;
};

static struct sockaddr_storage sb_sa;
static socklen_t sb_salen;

static void usage(FILE *f)
{
	fprintf(f,
	"usage: spop-bench -a ADDR [-c CONNECTIONS] [-p PIPELINE] [-w WORKERS]\n"
	"                  [-n TOTAL_MESSAGES | -d SECONDS] [--max-time SECONDS]\n"
	"                  -k CERT_DIR_OR_FILE [-k ...] [--chain FILE] [--sni NAME]\n"
	"                  [--host NAME] [--host-variants N] [-r RATE] [--max-frame BYTES]\n"
	"                  [--json] [-q]\n"
	"  ADDR: 127.0.0.1:PORT, [::1]:PORT or unix:/path\n"
	"  -k: DER or PEM files (first certificate = leaf, the others = chain),\n"
	"      or directories of *.der *.crt *.pem *.cer; repeatable\n"
	"  --chain: every certificate of FILE is sent as the chain of each -k\n"
	"      certificate whose file holds no chain\n"
	"  --host-variants N (1..65536): message i of a worker sends spelling\n"
	"      j = i %% N: the letters of --host and --sni in the case pattern of\n"
	"      the bits of j, and for j > 0 the Host with port j (\"API.example.com:3\")\n"
	"  -r, --rate: messages per second over all workers (default: as fast as\n"
	"      the pipeline allows)\n"
	"  --max-frame: max-frame-size announced in HAPROXY-HELLO (256..%d,\n"
	"      default %d)\n"
	"  defaults: -c 1 -p 1 -w 1 -d 5; --max-time: duration + 10 s, or 60 s with -n\n",
	SB_MAX_FRAME_OPT, SB_MAX_FRAME);
}

static int parse_addr(const char *a)
{
	memset(&sb_sa, 0, sizeof(sb_sa));
	if (strncmp(a, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&sb_sa;

		if (strlen(a + 5) >= sizeof(un->sun_path))
			return -1;
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, a + 5);
		sb_salen = sizeof(*un);
		return 0;
	} else {
		char host[256];
		const char *port, *h = a;
		size_t hl;
		struct addrinfo hints, *res = NULL;

		if (*a == '[') {
			const char *rb = strchr(a, ']');

			if (!rb || rb[1] != ':')
				return -1;
			h = a + 1;
			hl = (size_t)(rb - h);
			port = rb + 2;
		} else {
			const char *colon = strrchr(a, ':');

			if (!colon)
				return -1;
			hl = (size_t)(colon - a);
			port = colon + 1;
		}
		if (hl == 0 || hl >= sizeof(host) || *port == '\0')
			return -1;
		memcpy(host, h, hl);
		host[hl] = '\0';
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
		if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
			return -1;
		memcpy(&sb_sa, res->ai_addr, res->ai_addrlen);
		sb_salen = res->ai_addrlen;
		freeaddrinfo(res);
		return 0;
	}
}

/* ---- frames ------------------------------------------------------------ */

/* Encode the message check-client-cert for certificate `c` into `w`
 * (sticky error: the caller checks w->err). NULL names are sent as NULL. */
static void put_message(struct spop_wr *w, const struct bench_cert *c,
                        const char *sni, const char *host)
{
	struct spop_data d;

	/* SPOE.txt 3.2.6: LIST-OF-MESSAGES, name then NB-ARGS then KV args. */
	spop_put_bytes(w, "check-client-cert", strlen("check-client-cert"));
	spop_put_u8(w, 4);
	d = spop_bin(c->leaf, c->leaf_len);
	spop_put_kv(w, "cert", &d);
	d = c->chain_len ? spop_bin(c->chain, c->chain_len) : spop_null();
	spop_put_kv(w, "chain", &d);
	d = sni ? spop_cstr(sni) : spop_null();
	spop_put_kv(w, "sni", &d);
	d = host ? spop_cstr(host) : spop_null();
	spop_put_kv(w, "host", &d);
}

/* Room a message for `c` needs, names of up to SB_NAME_CAP included. */
static size_t message_room(const struct bench_cert *c)
{
	return c->leaf_len + c->chain_len + 1024;
}

static int build_payload(const struct bench_cert *c, const struct sb_opts *o,
                         struct sb_payload *pl)
{
	size_t room = message_room(c);
	struct spop_wr w;

	pl->cert = c;
	pl->data = malloc(room);
	if (!pl->data)
		return -1;
	spop_wr_init(&w, pl->data, room);
	put_message(&w, c, o->sni, o->host);
	if (w.err)
		return -1;
	pl->len = (size_t)(w.p - pl->data);
	return 0;
}

/* Spelling j of `name` into out (SB_NAME_CAP bytes): its k-th letter
 * upper-cased when bit k % 16 of j is set, lower-cased otherwise, then
 * ":j" when with_port and j > 0. Spelling 0 is the name in lower case;
 * spellings 0 .. 65535 of a Host are all distinct (by their port), and
 * each is one valid host[:port] naming the same host. */
static void host_variant(const char *name, unsigned int j, int with_port, char *out)
{
	size_t i, n = strlen(name);
	unsigned int k = 0;

	if (n > SB_NAME_CAP - 16)
		n = SB_NAME_CAP - 16;
	for (i = 0; i < n; i++) {
		char ch = name[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
			ch = (char)(((j >> (k % 16)) & 1) ? (ch & ~0x20) : (ch | 0x20));
			k++;
		}
		out[i] = ch;
	}
	out[n] = '\0';
	if (with_port && j > 0)
		snprintf(out + n, 16, ":%u", j);
}

static int out_reserve(struct sb_conn *c, size_t need)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_cap - c->out_len >= need)
		return 0;
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_cap - c->out_len < need) {
		size_t ncap = c->out_cap ? c->out_cap : 65536;
		uint8_t *n;

		while (ncap - c->out_len < need)
			ncap *= 2;
		n = realloc(c->out, ncap);
		if (!n)
			return -1;
		c->out = n;
		c->out_cap = ncap;
	}
	return 0;
}

static void conn_fail(struct sb_conn *c, enum sb_err e);

static void put_hello(struct sb_conn *c)
{
	struct spop_wr w;
	struct spop_data d;
	uint8_t *start;

	if (out_reserve(c, 512) != 0) {
		conn_fail(c, SB_ERR_MALFORMED);
		return;
	}
	spop_wr_init(&w, c->out + c->out_len, 512);
	start = spop_frame_begin(&w, SPOP_FRAME_HAPROXY_HELLO, SPOP_FLAG_FIN, 0, 0);
	d = spop_cstr("2.0");
	spop_put_kv(&w, "supported-versions", &d);
	d = spop_uint32(c->w->o->max_frame);
	spop_put_kv(&w, "max-frame-size", &d);
	d = spop_cstr("pipelining");
	spop_put_kv(&w, "capabilities", &d);
	d = spop_cstr("spop-bench");
	spop_put_kv(&w, "engine-id", &d);
	if (spop_frame_end(&w, start, c->w->o->max_frame) != 0) {
		conn_fail(c, SB_ERR_MALFORMED);
		return;
	}
	c->out_len = (size_t)(w.p - c->out);
}

static void put_disconnect(struct sb_conn *c)
{
	struct spop_wr w;
	struct spop_data d;
	uint8_t *start;

	if (out_reserve(c, 256) != 0) {
		conn_fail(c, SB_ERR_MALFORMED);
		return;
	}
	spop_wr_init(&w, c->out + c->out_len, 256);
	start = spop_frame_begin(&w, SPOP_FRAME_HAPROXY_DISCONNECT, SPOP_FLAG_FIN, 0, 0);
	d = spop_uint32(SPOP_ST_NORMAL);
	spop_put_kv(&w, "status-code", &d);
	d = spop_cstr("normal");
	spop_put_kv(&w, "message", &d);
	if (spop_frame_end(&w, start, c->max_frame) != 0) {
		conn_fail(c, SB_ERR_MALFORMED);
		return;
	}
	c->out_len = (size_t)(w.p - c->out);
	c->state = SB_ST_CLOSING;
}

/* Is this worker's send window still open? */
static int may_send(struct sb_worker *w, uint64_t now)
{
	if (w->quota)
		return w->sent < w->quota && now < w->hard_ns;
	return now < w->stop_send_ns;
}

/* How far behind its schedule a paced worker may catch up: a wake-up is
 * late by a scheduling delay (tens of intervals at 50,000 msg/s on a busy
 * machine), and without catching up the rate reached was whatever the
 * wake-ups allowed (a quarter of it). Further behind than this (the agent
 * was slow to answer), it resumes at the rate from now. */
#define SB_PACE_SLACK_NS 5000000ULL

/* --rate: is the next message due? The schedule is kept: a late wake-up
 * sends the messages that fell due meanwhile (as many as the free
 * in-flight slots allow), up to SB_PACE_SLACK_NS of them. */
static int send_due(struct sb_worker *w, uint64_t now)
{
	if (w->interval_ns == 0)
		return 1;
	if (now < w->next_send_ns)
		return 0;
	if (w->next_send_ns + SB_PACE_SLACK_NS < now)
		w->next_send_ns = now;
	w->next_send_ns += w->interval_ns;
	return 1;
}

/* Encode the NOTIFY payload of the next message into `wr`: the prebuilt
 * one, or with --host-variants the message for spelling sent % N. */
static void put_payload(struct sb_worker *w, const struct sb_payload *pl,
                        struct spop_wr *wr)
{
	const struct sb_opts *o = w->o;

	if (o->host_variants) {
		unsigned int j = (unsigned int)(w->sent % o->host_variants);
		char host[SB_NAME_CAP], sni[SB_NAME_CAP];

		if (o->host)
			host_variant(o->host, j, 1, host);
		if (o->sni)
			host_variant(o->sni, j, 0, sni);
		put_message(wr, pl->cert, o->sni ? sni : NULL, o->host ? host : NULL);
		return;
	}
	if (wr->end - wr->p >= (ptrdiff_t)pl->len) {
		memcpy(wr->p, pl->data, pl->len);
		wr->p += pl->len;
	} else {
		wr->err = 1;
	}
}

/* Fill the pipeline of `c` up to P messages, all stamped `now`. */
static void refill(struct sb_conn *c, uint64_t now)
{
	struct sb_worker *w = c->w;

	while (c->state == SB_ST_READY && c->nfree > 0 && may_send(w, now) &&
	       send_due(w, now)) {
		const struct sb_payload *pl = &w->payloads[w->cursor];
		uint32_t idx = c->free_slots[--c->nfree];
		struct spop_wr wr;
		uint8_t *start;
		size_t need = (w->o->host_variants ? message_room(pl->cert) : pl->len) + 32;

		if (++w->cursor == w->npayloads)
			w->cursor = 0;
		if (out_reserve(c, need) != 0) {
			conn_fail(c, SB_ERR_MALFORMED);
			return;
		}
		spop_wr_init(&wr, c->out + c->out_len, need);
		start = spop_frame_begin(&wr, SPOP_FRAME_NOTIFY, SPOP_FLAG_FIN,
		                         c->next_stream, (uint64_t)idx + 1);
		put_payload(w, pl, &wr);
		if (spop_frame_end(&wr, start, c->max_frame) != 0) {
			fprintf(stderr, "spop-bench: NOTIFY of %zu bytes exceeds the "
			        "negotiated max-frame-size %u\n", pl->len, c->max_frame);
			conn_fail(c, SB_ERR_MALFORMED);
			return;
		}
		c->out_len = (size_t)(wr.p - c->out);
		c->slots[idx].stream_id = c->next_stream++;
		c->slots[idx].sent_ns = now;
		c->inflight++;
		w->sent++;
	}
	/* Load over and pipeline drained: say goodbye as HAProxy does. */
	if (c->state == SB_ST_READY && c->inflight == 0 && !may_send(w, now))
		put_disconnect(c);
}

static void conn_close_fd(struct sb_conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(c->w->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	c->state = SB_ST_DONE;
}

/* Close with an error; messages in flight count as unanswered through the
 * final sent/answered comparison, not as separate errors. */
static void conn_fail(struct sb_conn *c, enum sb_err e)
{
	c->w->err[e]++;
	conn_close_fd(c);
}

static int flush_out(struct sb_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_fail(c, SB_ERR_EOF);
			return -1;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if ((c->out_len > 0) != c->want_out) {
		struct epoll_event ev;

		c->want_out = c->out_len > 0;
		ev.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0);
		ev.data.ptr = c;
		epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
	return 0;
}

/* ---- answers ----------------------------------------------------------- */

static int str_is(const uint8_t *p, size_t len, const char *s)
{
	return len == strlen(s) && memcmp(p, s, len) == 0;
}

static void count_str(uint64_t *counts, int n, const char *(*name)(int),
                      const uint8_t *p, size_t len)
{
	int i;

	for (i = 0; i < n; i++)
		if (str_is(p, len, name(i))) {
			counts[i]++;
			return;
		}
	counts[n]++;
}

static const char *result_name(int i) { return verdict_result_str((enum mtls_result)i); }
static const char *action_name(int i) { return verdict_action_str((enum mtls_action)i); }

/* SPOE.txt 3.4: the ACK payload is a list of actions. Finds `action` and
 * `result` (txn scope). Returns 0, or the error kind. */
static enum sb_err check_ack(struct sb_worker *w, const uint8_t *p, const uint8_t *end)
{
	int have_action = 0;

	while (p < end) {
		uint8_t type, nargs, scope;
		const uint8_t *name;
		size_t name_len;
		struct spop_data v;

		if (end - p < 3)
			return SB_ERR_MALFORMED;
		type = p[0];
		nargs = p[1];
		scope = p[2];
		p += 3;
		if (spop_bytes_decode(&p, end, &name, &name_len) != SPOP_RC_OK)
			return SB_ERR_MALFORMED;
		if (type == SPOP_ACT_UNSET_VAR && nargs == 2)
			continue;
		if (type != SPOP_ACT_SET_VAR || nargs != 3)
			return SB_ERR_MALFORMED;
		if (spop_data_decode(&p, end, &v) != SPOP_RC_OK)
			return SB_ERR_MALFORMED;
		if (scope != SPOP_SCOPE_TXN || v.type != SPOP_T_STRING)
			continue;
		if (str_is(name, name_len, "action")) {
			have_action = 1;
			count_str(w->actions, ACTION_COUNT, action_name,
			          v.u.buf.ptr, v.u.buf.len);
		} else if (str_is(name, name_len, "result")) {
			count_str(w->results, RESULT_COUNT, result_name,
			          v.u.buf.ptr, v.u.buf.len);
		}
	}
	return have_action ? (enum sb_err)0 : SB_ERR_NO_ACTION;
}

static int on_agent_hello(struct sb_conn *c, const struct spop_frame *f)
{
	const uint8_t *p = f->payload, *end = f->payload + f->payload_len;
	int vsn = 0, caps = 0;
	uint64_t mfs = 0;
	struct spop_kv kv;

	while (p < end) {
		if (spop_kv_next(&p, end, &kv) != SPOP_RC_OK)
			return -1;
		if (str_is(kv.name, kv.name_len, "version") && kv.value.type == SPOP_T_STRING)
			vsn = kv.value.u.buf.len >= 2 && memcmp(kv.value.u.buf.ptr, "2.", 2) == 0;
		else if (str_is(kv.name, kv.name_len, "max-frame-size") &&
		         (kv.value.type == SPOP_T_UINT32 || kv.value.type == SPOP_T_UINT64))
			mfs = kv.value.u.uint;
		else if (str_is(kv.name, kv.name_len, "capabilities") &&
		         kv.value.type == SPOP_T_STRING)
			caps = spop_caps_have(kv.value.u.buf.ptr, kv.value.u.buf.len, "pipelining");
	}
	/* Several messages in flight on one connection need pipelining. */
	if (!vsn || mfs < SPOP_MIN_FRAME_SIZE || mfs > c->w->o->max_frame ||
	    (c->w->o->pipeline > 1 && !caps))
		return -1;
	c->max_frame = (uint32_t)mfs;
	return 0;
}

/* Handle one frame. Returns -1 if the connection was closed. */
static int on_frame(struct sb_conn *c, const struct spop_frame *f, uint64_t now)
{
	struct sb_worker *w = c->w;

	switch (f->type) {
	case SPOP_FRAME_AGENT_HELLO:
		if (c->state != SB_ST_HELLO || on_agent_hello(c, f) != 0) {
			conn_fail(c, SB_ERR_HELLO);
			return -1;
		}
		c->state = SB_ST_READY;
		return 0;
	case SPOP_FRAME_ACK: {
		uint64_t idx = f->frame_id - 1;
		enum sb_err e;

		if (c->state != SB_ST_READY && c->state != SB_ST_CLOSING) {
			conn_fail(c, SB_ERR_UNEXPECTED);
			return -1;
		}
		if (f->frame_id == 0 || idx >= w->o->pipeline ||
		    c->slots[idx].stream_id != f->stream_id || f->stream_id == 0) {
			conn_fail(c, SB_ERR_ID);
			return -1;
		}
		e = check_ack(w, f->payload, f->payload + f->payload_len);
		if (e != 0)
			w->err[e]++;
		bench_hist_add(&w->hist, now - c->slots[idx].sent_ns);
		c->slots[idx].stream_id = 0;
		c->free_slots[c->nfree++] = (uint32_t)idx;
		c->inflight--;
		w->answered++;
		w->last_ack_ns = now;
		return 0;
	}
	case SPOP_FRAME_AGENT_DISCONNECT:
		if (c->state == SB_ST_CLOSING && c->inflight == 0) {
			conn_close_fd(c);
		} else {
			struct spop_disconnect d;

			if (spop_disconnect_decode(f->payload, f->payload_len, &d) == SPOP_RC_OK &&
			    d.has_status)
				fprintf(stderr, "spop-bench: agent disconnects with status %" PRIu64
				        " (%.*s)\n", d.status, (int)(d.message ? d.message_len : 0),
				        d.message ? (const char *)d.message : "");
			conn_fail(c, SB_ERR_DISCONNECT);
		}
		return -1;
	default:
		conn_fail(c, SB_ERR_UNEXPECTED);
		return -1;
	}
}

static void on_readable(struct sb_conn *c, uint64_t now)
{
	const uint8_t *p, *end;
	struct spop_frame f;
	enum spop_rc rc;
	ssize_t n;

	for (;;) {
		if (c->in_len == SB_IN_CAP)
			break;   /* process what we have, read the rest next round */
		n = read(c->fd, c->in + c->in_len, SB_IN_CAP - c->in_len);
		if (n > 0) {
			c->in_len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		/* EOF or error: fine only once our DISCONNECT was sent and
		 * everything was answered. */
		if (c->state == SB_ST_CLOSING && c->inflight == 0)
			conn_close_fd(c);
		else
			conn_fail(c, SB_ERR_EOF);
		return;
	}
	p = c->in;
	end = c->in + c->in_len;
	while ((rc = spop_frame_decode(&p, end, c->w->o->max_frame, &f)) == SPOP_RC_OK) {
		if (!(f.flags & SPOP_FLAG_FIN)) {
			conn_fail(c, SB_ERR_MALFORMED);
			return;
		}
		if (on_frame(c, &f, now) != 0)
			return;
	}
	if (rc != SPOP_RC_NEED_MORE) {
		conn_fail(c, SB_ERR_MALFORMED);
		return;
	}
	c->in_len = (size_t)(end - p);
	if (c->in_len > 0 && p != c->in)
		memmove(c->in, p, c->in_len);
}

/* ---- event loop ---------------------------------------------------------- */

static int conn_open(struct sb_conn *c)
{
	struct epoll_event ev;
	int one = 1;
	unsigned int i;

	c->fd = socket(sb_sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	/* Loopback or unix: connect completes or fails at once. */
	if (connect(c->fd, (struct sockaddr *)&sb_sa, sb_salen) != 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	if (sb_sa.ss_family != AF_UNIX)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0)
		return -1;
	c->in = malloc(SB_IN_CAP);
	c->slots = calloc(c->w->o->pipeline, sizeof(*c->slots));
	c->free_slots = calloc(c->w->o->pipeline, sizeof(*c->free_slots));
	if (!c->in || !c->slots || !c->free_slots)
		return -1;
	/* Pop order 0, 1, 2, ...: frame-ids follow the send order. */
	for (i = 0; i < c->w->o->pipeline; i++)
		c->free_slots[i] = c->w->o->pipeline - 1 - i;
	c->nfree = c->w->o->pipeline;
	c->next_stream = 1;
	c->max_frame = c->w->o->max_frame;
	c->state = SB_ST_HELLO;
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(c->w->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		return -1;
	put_hello(c);
	return c->state == SB_ST_DONE ? -1 : flush_out(c);
}

/* How long epoll may sleep, in ns: 50 ms, or until the next paced
 * message. A message that is due with every slot in flight waits for an
 * answer (a timeout of 0 there would spin a core the agent needs). */
static uint64_t pace_timeout_ns(const struct sb_worker *w, uint64_t now)
{
	int room = 0;

	if (w->interval_ns == 0)
		return 50000000;
	for (unsigned int i = 0; i < w->nconns && !room; i++)
		room = w->conns[i].state == SB_ST_READY && w->conns[i].nfree > 0;
	if (!room)
		return 50000000;
	if (w->next_send_ns <= now)
		return 0;
	return w->next_send_ns - now > 50000000 ? 50000000 : w->next_send_ns - now;
}

/* epoll_wait with a timeout in ns (epoll_pwait2): paced messages leave on
 * time, not at the next whole millisecond in bursts. Kernels before 5.11
 * have only milliseconds. */
static int wait_events(struct sb_worker *w, struct epoll_event *evs, int n,
                       uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
	int rc = epoll_pwait2(w->ep, evs, n, &ts, NULL);

	if (rc >= 0 || errno != ENOSYS)
		return rc;
	return epoll_wait(w->ep, evs, n, (int)((ns + 999999) / 1000000));
}

static void *worker_run(void *arg)
{
	struct sb_worker *w = arg;
	struct epoll_event evs[256];
	unsigned int i, live;

	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0) {
		w->err[SB_ERR_CONNECT] += w->nconns;
		return NULL;
	}
	for (i = 0; i < w->nconns; i++) {
		struct sb_conn *c = &w->conns[i];

		c->w = w;
		c->fd = -1;
		if (conn_open(c) != 0) {
			if (c->fd >= 0)
				conn_close_fd(c);
			c->state = SB_ST_DONE;
			w->err[SB_ERR_CONNECT]++;
		}
	}
	for (;;) {
		uint64_t now = bench_now_ns();
		int n, k;

		live = 0;
		for (i = 0; i < w->nconns; i++)
			if (w->conns[i].state != SB_ST_DONE)
				live++;
		if (live == 0)
			break;
		if (now >= w->hard_ns) {
			for (i = 0; i < w->nconns; i++) {
				struct sb_conn *c = &w->conns[i];

				if (c->state == SB_ST_DONE)
					continue;
				if (c->inflight > 0 || c->state == SB_ST_HELLO)
					w->err[SB_ERR_TIMEOUT]++;
				conn_close_fd(c);
			}
			break;
		}
		n = wait_events(w, evs, (int)(sizeof(evs) / sizeof(evs[0])),
		                pace_timeout_ns(w, now));
		if (n < 0 && errno != EINTR)
			break;
		now = bench_now_ns();
		for (k = 0; k < n; k++) {
			struct sb_conn *c = evs[k].data.ptr;

			if (c->state == SB_ST_DONE)
				continue;
			if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				on_readable(c, now);
			if (c->state == SB_ST_DONE)
				continue;
			refill(c, now);
			if (c->state != SB_ST_DONE)
				flush_out(c);
		}
		/* The send window may close while a connection is idle (all
		 * answered, nothing readable): let it say goodbye. Paced, a
		 * message may fall due on any connection with a free slot. */
		if (n == 0 || w->interval_ns)
			for (i = 0; i < w->nconns; i++) {
				struct sb_conn *c = &w->conns[i];

				if (c->state == SB_ST_READY &&
				    (c->inflight == 0 || (w->interval_ns && c->nfree > 0))) {
					refill(c, now);
					if (c->state != SB_ST_DONE)
						flush_out(c);
				}
			}
	}
	for (i = 0; i < w->nconns; i++) {
		struct sb_conn *c = &w->conns[i];

		if (c->fd >= 0)
			close(c->fd);
		free(c->in);
		free(c->out);
		free(c->slots);
		free(c->free_slots);
	}
	close(w->ep);
	return NULL;
}

/* ---- report -------------------------------------------------------------- */

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static int parse_uint(const char *s, unsigned int lo, unsigned int hi, unsigned int *out)
{
	char *e;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &e, 10);
	if (errno || e == s || *e || v < lo || v > hi)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "sni", required_argument, NULL, 'S' },
		{ "host", required_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'J' },
		{ "max-time", required_argument, NULL, 'T' },
		{ "chain", required_argument, NULL, 'C' },
		{ "host-variants", required_argument, NULL, 'V' },
		{ "rate", required_argument, NULL, 'r' },
		{ "max-frame", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sb_opts o = { .conns = 1, .pipeline = 1, .workers = 1, .duration = 5,
	                     .max_frame = SB_MAX_FRAME };
	static struct bench_cert certs[BENCH_MAX_CERTS];
	struct bench_cert chain = { 0 };
	size_t ncerts = 0, i;
	struct sb_payload *payloads;
	struct sb_worker *workers;
	struct sb_conn *conns;
	struct bench_hist hist;
	uint64_t sent = 0, answered = 0, errs[SB_ERR_COUNT] = { 0 }, nerr = 0;
	uint64_t results[RESULT_COUNT + 1] = { 0 }, actions[ACTION_COUNT + 1] = { 0 };
	uint64_t start, end_ns = 0;
	double elapsed, rate;
	int ch, have_d = 0;
	unsigned int u, cbase, w;

	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt_long(argc, argv, "a:c:p:w:n:d:k:r:qh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a': o.addr = optarg; break;
		case 'c':
			if (parse_uint(optarg, 1, SB_MAX_CONNS, &o.conns) != 0)
				goto bad;
			break;
		case 'p':
			if (parse_uint(optarg, 1, SB_MAX_PIPELINE, &o.pipeline) != 0)
				goto bad;
			break;
		case 'w':
			if (parse_uint(optarg, 1, SB_MAX_WORKERS, &o.workers) != 0)
				goto bad;
			break;
		case 'n': {
			char *e;

			errno = 0;
			o.total = strtoull(optarg, &e, 10);
			if (errno || *e || o.total == 0)
				goto bad;
			break;
		}
		case 'd':
			o.duration = strtod(optarg, NULL);
			have_d = 1;
			if (!(o.duration > 0 && o.duration <= 3600))
				goto bad;
			break;
		case 'T':
			o.max_time = strtod(optarg, NULL);
			if (!(o.max_time > 0 && o.max_time <= 7200))
				goto bad;
			break;
		case 'k':
			if (bench_certs_add(optarg, certs, &ncerts) != 0)
				return 2;
			break;
		case 'C':
			if (chain.leaf != NULL || bench_cert_load(optarg, &chain) != 0)
				goto bad;
			break;
		case 'V':
			if (parse_uint(optarg, 1, SB_MAX_VARIANTS, &o.host_variants) != 0)
				goto bad;
			break;
		case 'r':
			o.rate = strtod(optarg, NULL);
			if (!(o.rate > 0 && o.rate <= 1e7))
				goto bad;
			break;
		case 'F':
			if (parse_uint(optarg, SPOP_MIN_FRAME_SIZE, SB_MAX_FRAME_OPT,
			               &o.max_frame) != 0)
				goto bad;
			break;
		case 'S': o.sni = optarg; break;
		case 'H': o.host = optarg; break;
		case 'J': o.json = 1; break;
		case 'q': o.quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: goto bad;
		}
	}
	if (optind != argc || !o.addr || ncerts == 0 || (o.total && have_d))
		goto bad;
	if (parse_addr(o.addr) != 0) {
		fprintf(stderr, "spop-bench: bad address %s\n", o.addr);
		return 2;
	}
	if (o.workers > o.conns)
		o.workers = o.conns;
	if (o.max_time == 0)
		o.max_time = o.total ? 60 : o.duration + 10;

	/* --chain: the whole file (its first certificate included) is the
	 * chain of every certificate that came without one. */
	if (chain.leaf != NULL)
		for (i = 0; i < ncerts; i++) {
			if (certs[i].chain_len > 0)
				continue;
			if (bench_append(&certs[i].chain, &certs[i].chain_len, chain.leaf,
			                 chain.leaf_len) != 0 ||
			    (chain.chain_len > 0 &&
			     bench_append(&certs[i].chain, &certs[i].chain_len, chain.chain,
			                  chain.chain_len) != 0))
				return 1;
		}
	payloads = calloc(ncerts, sizeof(*payloads));
	workers = calloc(o.workers, sizeof(*workers));
	conns = calloc(o.conns, sizeof(*conns));
	if (!payloads || !workers || !conns)
		return 1;
	for (i = 0; i < ncerts; i++)
		if (build_payload(&certs[i], &o, &payloads[i]) != 0) {
			fprintf(stderr, "spop-bench: cannot encode %s\n", certs[i].path);
			return 2;
		}

	start = bench_now_ns();
	cbase = 0;
	for (w = 0; w < o.workers; w++) {
		struct sb_worker *wk = &workers[w];

		wk->id = (int)w;
		wk->o = &o;
		wk->payloads = payloads;
		wk->npayloads = ncerts;
		wk->nconns = o.conns / o.workers + (w < o.conns % o.workers);
		wk->conns = &conns[cbase];
		cbase += wk->nconns;
		if (o.total)
			wk->quota = o.total / o.workers + (w < o.total % o.workers);
		wk->start_ns = start;
		wk->stop_send_ns = start + (uint64_t)(o.duration * 1e9);
		wk->hard_ns = start + (uint64_t)(o.max_time * 1e9);
		if (o.rate > 0) {
			wk->interval_ns = (uint64_t)(1e9 * o.workers / o.rate);
			if (wk->interval_ns == 0)
				wk->interval_ns = 1;
			wk->next_send_ns = start;
		}
		if (o.total == 0 && wk->hard_ns > wk->stop_send_ns + SB_DRAIN_NS)
			wk->hard_ns = wk->stop_send_ns + SB_DRAIN_NS;
	}
	for (w = 1; w < o.workers; w++)
		if (pthread_create(&workers[w].thread, NULL, worker_run, &workers[w]) != 0) {
			fprintf(stderr, "spop-bench: cannot start worker %u\n", w);
			return 1;
		}
	worker_run(&workers[0]);
	for (w = 1; w < o.workers; w++)
		pthread_join(workers[w].thread, NULL);

	memset(&hist, 0, sizeof(hist));
	for (w = 0; w < o.workers; w++) {
		struct sb_worker *wk = &workers[w];

		sent += wk->sent;
		answered += wk->answered;
		for (u = 0; u < SB_ERR_COUNT; u++)
			errs[u] += wk->err[u];
		for (u = 0; u <= RESULT_COUNT; u++)
			results[u] += wk->results[u];
		for (u = 0; u <= ACTION_COUNT; u++)
			actions[u] += wk->actions[u];
		bench_hist_merge(&hist, &wk->hist);
		if (wk->last_ack_ns > end_ns)
			end_ns = wk->last_ack_ns;
	}
	for (u = 0; u < SB_ERR_COUNT; u++)
		nerr += errs[u];
	elapsed = end_ns > start ? (double)(end_ns - start) / 1e9 : 0;
	rate = elapsed > 0 ? (double)answered / elapsed : 0;

	if (!o.quiet) {
		printf("spop-bench: %s connections=%u pipeline=%u workers=%u certs=%zu\n",
		       o.addr, o.conns, o.pipeline, o.workers, ncerts);
		printf("messages: %" PRIu64 " sent, %" PRIu64 " answered, %" PRIu64
		       " unanswered, %" PRIu64 " errors in %.3f s\n", sent, answered,
		       sent - answered, nerr, elapsed);
		printf("throughput: %.0f msg/s\n", rate);
		printf("latency: p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us, mean %.1f us\n",
		       bench_hist_quantile(&hist, 0.50) / 1e3, bench_hist_quantile(&hist, 0.99) / 1e3,
		       bench_hist_quantile(&hist, 0.999) / 1e3, hist.max_ns / 1e3,
		       hist.n ? (double)hist.sum_ns / (double)hist.n / 1e3 : 0.0);
		printf("actions:");
		for (u = 0; u < ACTION_COUNT; u++)
			if (actions[u])
				printf(" %s=%" PRIu64, verdict_action_str((enum mtls_action)u), actions[u]);
		if (actions[ACTION_COUNT])
			printf(" other=%" PRIu64, actions[ACTION_COUNT]);
		printf("\nresults:");
		for (u = 0; u < RESULT_COUNT; u++)
			if (results[u])
				printf(" %s=%" PRIu64, verdict_result_str((enum mtls_result)u), results[u]);
		if (results[RESULT_COUNT])
			printf(" other=%" PRIu64, results[RESULT_COUNT]);
		printf("\n");
		if (nerr) {
			printf("errors:");
			for (u = 0; u < SB_ERR_COUNT; u++)
				if (errs[u])
					printf(" %s=%" PRIu64, sb_err_str[u], errs[u]);
			printf("\n");
		}
	}
	if (o.json) {
		printf("{\"tool\":\"spop-bench\",\"addr\":");
		json_str(o.addr);
		printf(",\"connections\":%u,\"pipeline\":%u,\"workers\":%u,\"certs\":%zu,"
		       "\"sent\":%" PRIu64 ",\"answered\":%" PRIu64 ",\"errors\":%" PRIu64
		       ",\"elapsed_s\":%.6f,\"msgs_per_s\":%.1f,"
		       "\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}",
		       o.conns, o.pipeline, o.workers, ncerts, sent, answered, nerr, elapsed, rate,
		       bench_hist_quantile(&hist, 0.50) / 1e3, bench_hist_quantile(&hist, 0.99) / 1e3,
		       bench_hist_quantile(&hist, 0.999) / 1e3, hist.max_ns / 1e3,
		       hist.n ? (double)hist.sum_ns / (double)hist.n / 1e3 : 0.0);
		printf(",\"error_kinds\":{");
		for (u = 0; u < SB_ERR_COUNT; u++)
			printf("%s\"%s\":%" PRIu64, u ? "," : "", sb_err_str[u], errs[u]);
		printf("},\"actions\":{");
		for (u = 0; u <= ACTION_COUNT; u++)
			printf("%s\"%s\":%" PRIu64, u ? "," : "",
			       u < ACTION_COUNT ? verdict_action_str((enum mtls_action)u) : "other",
			       actions[u]);
		printf("},\"results\":{");
		for (u = 0; u <= RESULT_COUNT; u++)
			printf("%s\"%s\":%" PRIu64, u ? "," : "",
			       u < RESULT_COUNT ? verdict_result_str((enum mtls_result)u) : "other",
			       results[u]);
		printf("}}\n");
	}
	fflush(stdout);
	for (i = 0; i < ncerts; i++) {
		bench_cert_free(&certs[i]);
		free(payloads[i].data);
	}
	bench_cert_free(&chain);
	free(payloads);
	free(workers);
	free(conns);
	return nerr == 0 && answered == sent && sent > 0 ? 0 : 1;
bad:
	usage(stderr);
	return 2;
}
