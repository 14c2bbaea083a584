/*
 * server.c - libev event loops: an acceptor on the main thread, N workers.
 *
 * Connections are handed to workers round-robin through a locked queue
 * and an ev_async wake-up, so unix sockets (no SO_REUSEPORT) balance too.
 * Each connection lives on one worker for its whole life: no locks on the
 * request path. The configuration is shared read-only and reference
 * counted; a reload swaps it and workers pick the new one up at their next
 * NOTIFY or connection, while whatever they are evaluating finishes on the
 * old one. A generation carries the effective [agent] settings with its
 * policies, so a worker never mixes the settings of one with the policies
 * of another.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>
#include <ev.h>

#include "addr.h"
#include "admin.h"
#include "api.h"
#include "fleet.h"
#include "cache.h"
#include "conn.h"
#include "crlsrc.h"
#include "handler.h"
#include "listen.h"
#include "log.h"
#include "notify.h"
#include "metrics.h"
#include "server.h"
#include "trust.h"
#include "vpool.h"
#include "watch.h"

#define SERVER_MAX_THREADS 64
/* Accepts per wake-up, so a storm cannot starve signal handling. */
#define SERVER_ACCEPT_BURST 64
/* How long a stopping worker waits for its peers to read their answers. */
#define SERVER_DRAIN_SECONDS 5.0
/* After a change to a watched file, quiet time before reloading. */
#define SERVER_WATCH_DEBOUNCE 0.2
/* How long a closing connection waits for the peer's own close. */
#define SERVER_LINGER_SECONDS 1.0
/* At stop, most reads per connection to answer what already arrived
 * (16 KiB each): bounded, so a peer that never stops sending cannot hold
 * the shutdown. */
#define SERVER_STOP_READS 256
/* Out of descriptors or memory, accept is paused this long, doubling up
 * to the maximum while the shortage lasts: a level-triggered listener
 * would otherwise wake the loop at once, forever. */
#define SERVER_ACCEPT_PAUSE_MIN 0.1
#define SERVER_ACCEPT_PAUSE_MAX 1.0

/* ---- live configuration --------------------------------------------- */

struct cfg_ref {
	struct config *cfg;  /* may be NULL: no policies */
	/* The file's [agent] values overridden by the command line; listen
	 * and threads are those of the start (they need a restart), and the
	 * listen pointers are cleared: they belong to a struct config. */
	struct agent_settings settings;
	unsigned int refs;
	uint64_t gen;
	double loaded_at;    /* unix seconds of its installation */
	struct cfg_ref *next_retired;
};

static pthread_mutex_t cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cfg_ref *cfg_live;
static atomic_uint_fast64_t cfg_gen;
/* Freeing a large configuration takes tens of milliseconds (10,000 hosts:
 * 30-46 ms): a worker dropping the last reference must not stall its
 * NOTIFY for that. It queues the generation here (under cfg_lock) and
 * wakes the main thread, which frees it. */
static struct cfg_ref *cfg_retired;
static pthread_t cfg_main_thread;
static struct ev_loop *cfg_main_loop;
static ev_async cfg_retire_wake;

/* A reference on the live generation, from any thread (workers, the
 * admin threads); NULL only before the first install or after the stop. */
static struct cfg_ref *cfg_acquire(void)
{
	struct cfg_ref *r;

	pthread_mutex_lock(&cfg_lock);
	r = cfg_live;
	if (r != NULL)
		r->refs++;
	pthread_mutex_unlock(&cfg_lock);
	return r;
}

static void cfg_free_ref(struct cfg_ref *r)
{
	log_debug("freeing configuration generation %llu", (unsigned long long)r->gen);
	config_free(r->cfg);
	free(r);
}

/* Drop a reference. The last one frees the generation on the main thread
 * (at once) or hands it to the main thread (from a worker). */
static void cfg_release(struct cfg_ref *r)
{
	unsigned int left;
	int on_main = pthread_equal(pthread_self(), cfg_main_thread);

	if (!r)
		return;
	pthread_mutex_lock(&cfg_lock);
	left = --r->refs;
	if (left == 0 && !on_main) {
		r->next_retired = cfg_retired;
		cfg_retired = r;
	}
	pthread_mutex_unlock(&cfg_lock);
	if (left == 0 && on_main)
		cfg_free_ref(r);
	else if (left == 0)
		ev_async_send(cfg_main_loop, &cfg_retire_wake);
}

/* Main thread: free the generations the workers retired. */
static void cfg_reap(void)
{
	struct cfg_ref *r, *next;

	pthread_mutex_lock(&cfg_lock);
	r = cfg_retired;
	cfg_retired = NULL;
	pthread_mutex_unlock(&cfg_lock);
	for (; r; r = next) {
		next = r->next_retired;
		cfg_free_ref(r);
	}
}

static void cfg_reap_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	(void)loop; (void)a; (void)revents;
	cfg_reap();
}

/* Install `cfg` with the effective `settings` (copied) as the live
 * configuration. Returns 0 or -1 (no memory). */
static int cfg_install(struct config *cfg, const struct agent_settings *settings)
{
	struct cfg_ref *r = calloc(1, sizeof(*r)), *old;

	if (!r)
		return -1;
	r->cfg = cfg;
	r->settings = *settings;
	memset(r->settings.listen, 0, sizeof(r->settings.listen));
	r->settings.n_listen = 0;
	memset(r->settings.admin_listen, 0, sizeof(r->settings.admin_listen));
	r->settings.n_admin_listen = 0;
	r->refs = 1;  /* the reference held by cfg_live itself */
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		r->loaded_at = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	}
	pthread_mutex_lock(&cfg_lock);
	r->gen = atomic_load(&cfg_gen) + 1;
	if (cfg)
		cfg->generation = r->gen;
	old = cfg_live;
	cfg_live = r;
	atomic_store(&cfg_gen, r->gen);
	pthread_mutex_unlock(&cfg_lock);
	cfg_release(old);
	return 0;
}

/* ---- connections ------------------------------------------------------ */

struct worker;

struct conn {
	ev_io rio;
	ev_io wio;
	ev_timer idle;
	struct worker *w;
	struct conn *prev, *next;
	int fd;
	int closing;          /* no more requests: flush, then linger */
	int lingering;        /* output flushed and shut down: discard input
	                         until the peer closes, so our last frame is
	                         not destroyed by a reset */
	uint8_t *rbuf;
	size_t rlen, rcap;
	struct obuf out;
	struct conn_proto proto;
	int dead;             /* closed while verifications were pending: freed
	                         when the last one comes back */
	int read_paused;      /* too many verifications pending: not reading */
	int stop_pending;     /* stopping: DISCONNECT once nothing is pending */
	char peer[INET6_ADDRSTRLEN + 16];
};

/* A verification done by the pool, on its way back to its worker. */
struct done_item {
	struct conn *c;
	struct handler_job *job;
	struct done_item *next;
};

struct worker {
	int id;
	pthread_t thread;
	struct ev_loop *loop;
	ev_async wake;
	ev_timer drain;
	pthread_mutex_t qlock;
	int *queue;            /* fds waiting to be adopted */
	size_t qlen, qcap;
	struct conn *conns;
	size_t nconns;
	atomic_int stopping;
	struct cfg_ref *cfg;   /* the generation this worker uses, settings included */
	struct cache *cache;   /* this worker's verdict cache, NULL if disabled */
	unsigned int cache_cap; /* the capacity `cache` was made with */
	unsigned int nworkers;
	ev_async done_wake;    /* the pool finished jobs of this worker */
	pthread_mutex_t dlock;
	struct done_item *done_head, *done_tail;
};

/* The verify pool, shared by every worker; NULL: verify inline. */
static struct vpool *vpool;
/* Pending verifications beyond which a connection is not read: bounds the
 * memory a peer can make us hold, and resumes at half. */
#define SERVER_MAX_PENDING 256

static atomic_uint nconns_total;

static void conn_close(struct conn *c)
{
	struct worker *w = c->w;

	ev_io_stop(w->loop, &c->rio);
	ev_io_stop(w->loop, &c->wio);
	ev_timer_stop(w->loop, &c->idle);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	atomic_fetch_sub(&nconns_total, 1);
	free(c->rbuf);
	c->rbuf = NULL;
	obuf_free(&c->out);
	/* A verify thread still holds a job for it: free on its return. */
	if (c->proto.pending > 0)
		c->dead = 1;
	else
		free(c);
	if (atomic_load(&w->stopping) && w->conns == NULL)
		ev_break(w->loop, EVBREAK_ONE);
}

/* Write what is pending with one send(); keep the rest for EV_WRITE.
 * Returns -1 if the connection was closed. */
static int conn_flush(struct conn *c)
{
	while (obuf_pending(&c->out) > 0) {
		ssize_t n = send(c->fd, c->out.data + c->out.off, obuf_pending(&c->out),
		                 MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				ev_io_start(c->w->loop, &c->wio);
				return 0;
			}
			if (errno == EPIPE || errno == ECONNRESET)
				log_debug("%s: peer closed while we wrote", c->peer);
			else
				log_warning("%s: write: %s", c->peer, strerror(errno));
			conn_close(c);
			return -1;
		}
		c->out.off += (size_t)n;
	}
	c->out.off = c->out.len = 0;
	ev_io_stop(c->w->loop, &c->wio);
	if (c->closing && !c->lingering) {
		/* Closing a socket with unread input sends a reset, which can
		 * make the peer drop our last frame (the AGENT-DISCONNECT):
		 * half-close and read until its own close instead. */
		if (shutdown(c->fd, SHUT_WR) == -1) {
			conn_close(c);
			return -1;
		}
		c->lingering = 1;
		c->rlen = 0;
		ev_io_start(c->w->loop, &c->rio);
		c->idle.repeat = SERVER_LINGER_SECONDS;
		ev_timer_again(c->w->loop, &c->idle);
	}
	return 0;
}

/* cache-entries is the total over all workers. */
static unsigned int worker_cache_capacity(unsigned int entries, unsigned int nworkers)
{
	return (unsigned int)(((uint64_t)entries + nworkers - 1) / nworkers);
}

/* (Re)make this worker's cache for `entries` over all workers. Returns 0,
 * or -1 when it cannot be allocated (the worker then runs without). */
static int worker_cache_setup(struct worker *w, unsigned int entries)
{
	unsigned int cap = worker_cache_capacity(entries, w->nworkers);

	/* Same size: keep the entries. Their keys are trust policies,
	 * which a new generation shares with the old one when they did not
	 * change; an entry of a policy that is gone is never found again. */
	if (cap == w->cache_cap && (w->cache != NULL || cap == 0))
		return 0;
	cache_free(w->cache);
	w->cache = cap > 0 ? cache_new(cap) : NULL;
	w->cache_cap = w->cache ? cap : 0;
	return cap > 0 && w->cache == NULL ? -1 : 0;
}

/* Move the worker to the newest generation if there is one. Its cache is
 * kept, or remade when cache-entries changed. */
static void worker_refresh(struct worker *w)
{
	struct cfg_ref *old = w->cfg;

	if (old->gen == atomic_load_explicit(&cfg_gen, memory_order_acquire))
		return;
	w->cfg = cfg_acquire();
	cfg_release(old);
	if (worker_cache_setup(w, w->cfg->settings.cache_entries) != 0)
		log_error("worker %d: cannot allocate the verdict cache, running without",
		          w->id);
}

/* What the handler needs for one NOTIFY, from the newest generation. */
static void worker_env(struct worker *w, struct handler_env *env)
{
	worker_refresh(w);
	env->cfg = w->cfg->cfg;
	env->gen = w->cfg->gen;
	env->cache = w->cache;
	env->cache_ttl_ms = w->cfg->settings.cache_ttl_ms;
	env->memo_ttl_ms = w->cfg->settings.memo_ttl_ms;
	env->submit = NULL;
	env->submit_ctx = NULL;
}

/* Run the protocol over what is buffered. Returns -1 if c was closed. */
/* A pool thread finished `job`: queue it for its worker. */
static void job_done(void *ctx, struct handler_job *job)
{
	struct done_item *d = ctx;
	struct worker *w = d->c->w;

	d->job = job;
	d->next = NULL;
	metrics_inc(METRICS_POOL_DONE);
	pthread_mutex_lock(&w->dlock);
	if (w->done_tail)
		w->done_tail->next = d;
	else
		w->done_head = d;
	w->done_tail = d;
	pthread_mutex_unlock(&w->dlock);
	ev_async_send(w->loop, &w->done_wake);
}

/* handler_env.submit: hand a verification to the pool. */
static int conn_submit(void *ctx, struct handler_job *job)
{
	struct done_item *d;

	if (vpool == NULL || (d = calloc(1, sizeof(*d))) == NULL)
		return -1;
	d->c = ctx;
	if (vpool_submit(vpool, job, job_done, d) != 0) {
		free(d);
		return -1;
	}
	metrics_inc(METRICS_POOL_SUBMITTED);
	return 0;
}

static void conn_env(struct conn *c, struct handler_env *env)
{
	worker_env(c->w, env);
	if (vpool != NULL) {
		env->submit = conn_submit;
		env->submit_ctx = c;
	}
}

static int conn_finish_verdict(struct conn *c, enum conn_verdict v);

static int conn_run(struct conn *c)
{
	size_t consumed = 0;
	enum conn_verdict v;
	struct handler_env env;

	conn_env(c, &env);
	v = conn_process(&c->proto, &env, c->rbuf, c->rlen, &consumed, &c->out);
	if (consumed > 0) {
		memmove(c->rbuf, c->rbuf + consumed, c->rlen - consumed);
		c->rlen -= consumed;
		/* Only complete frames count as activity: a peer trickling a
		 * byte at a time still reaches the idle timeout. A reloaded
		 * idle-timeout applies from the next frame on. */
		c->idle.repeat = c->w->cfg->settings.idle_timeout_ms / 1000.0;
		ev_timer_again(c->w->loop, &c->idle);
	}
	if (v == CONN_KEEP && c->proto.pending >= SERVER_MAX_PENDING &&
	    !c->read_paused) {
		c->read_paused = 1;
		ev_io_stop(c->w->loop, &c->rio);
	}
	return conn_finish_verdict(c, v);
}

/* Act on what conn_process() or conn_complete() returned. Returns -1 if
 * c was closed. */
static int conn_finish_verdict(struct conn *c, enum conn_verdict v)
{
	if (v == CONN_CLOSE_AFTER_FLUSH) {
		c->closing = 1;
		ev_io_stop(c->w->loop, &c->rio);
		if (c->proto.overflow) {
			/* The peer stopped reading: do not wait for it. */
			conn_close(c);
			return -1;
		}
	}
	return conn_flush(c);
}

/* Read once. Returns -1 if c was closed, 0 if there was nothing to read,
 * 1 if data was read and handled (c may now be closing). */
static int conn_read(struct conn *c)
{
	ssize_t n;

	if (c->lingering) {
		n = recv(c->fd, c->rbuf, c->rcap, 0);
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
		               errno != EINTR)) {
			conn_close(c);
			return -1;
		}
		return n > 0;
	}
	if (c->rlen == c->rcap) {
		/* Cannot happen with a well-sized buffer: conn_process
		 * rejects frames over max-frame-size as soon as their length
		 * is known. Guard anyway. */
		log_warning("%s: receive buffer full", c->peer);
		conn_close(c);
		return -1;
	}
	n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
	if (n == 0) {
		/* HAProxy 3.x closes without DISCONNECT: a normal close. A
		 * peer that only shut its sending side still gets the answers
		 * already queued. */
		log_debug("%s: connection closed by peer", c->peer);
		if (obuf_pending(&c->out) > 0 && !c->closing) {
			c->closing = 1;
			ev_io_stop(c->w->loop, &c->rio);
			return 0;
		}
		conn_close(c);
		return -1;
	}
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		if (errno == ECONNRESET)
			log_debug("%s: connection reset by peer", c->peer);
		else
			log_warning("%s: read: %s", c->peer, strerror(errno));
		conn_close(c);
		return -1;
	}
	c->rlen += (size_t)n;
	return conn_run(c) == -1 ? -1 : 1;
}

static void conn_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = (struct conn *)((char *)io - offsetof(struct conn, rio));

	(void)loop; (void)revents;
	(void)conn_read(c);
}

static void conn_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = (struct conn *)((char *)io - offsetof(struct conn, wio));

	(void)loop; (void)revents;
	(void)conn_flush(c);
}

static void conn_idle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, idle));

	(void)loop; (void)revents;
	if (c->lingering) {
		conn_close(c);
		return;
	}
	if (c->closing) {
		/* Our last frame is still unsent after a full idle period. */
		log_info("%s: peer does not read, closing", c->peer);
		conn_close(c);
		return;
	}
	log_info("%s: idle timeout, closing", c->peer);
	c->closing = 1;
	ev_io_stop(c->w->loop, &c->rio);
	if (conn_disconnect(&c->proto, SPOP_ST_TIMEOUT, &c->out) != 0) {
		conn_close(c);
		return;
	}
	ev_timer_again(c->w->loop, &c->idle);
	(void)conn_flush(c);
}

static void peer_name(int fd, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];

	snprintf(out, outlen, "peer");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == -1)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(out, outlen, "%s:%u", ip, ntohs(s4->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(out, outlen, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		snprintf(out, outlen, "unix:fd%d", fd);
	}
}

static void worker_adopt(struct worker *w, int fd)
{
	const struct agent_settings *s;
	struct conn *c = calloc(1, sizeof(*c));

	/* A new connection gets the sizes and timeout of the newest
	 * generation. */
	worker_refresh(w);
	s = &w->cfg->settings;

	if (c) {
		c->rcap = (size_t)s->max_frame_size + SPOP_LEN_PREFIX;
		c->rbuf = malloc(c->rcap);
	}
	if (!c || !c->rbuf) {
		log_error("out of memory for a new connection");
		if (c)
			free(c);
		close(fd);
		atomic_fetch_sub(&nconns_total, 1);
		return;
	}
	c->fd = fd;
	c->w = w;
	/* An ACK is reserved at its largest before it is encoded: the limit
	 * must hold at least one, whatever max-output says. */
	c->out.limit = s->max_output_bytes;
	if (c->out.limit < (size_t)s->max_frame_size + SPOP_LEN_PREFIX + 512)
		c->out.limit = (size_t)s->max_frame_size + SPOP_LEN_PREFIX + 512;
	peer_name(fd, c->peer, sizeof(c->peer));
	conn_proto_init(&c->proto, s->max_frame_size, c->peer);
	ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
	ev_init(&c->idle, conn_idle_cb);
	c->idle.repeat = s->idle_timeout_ms / 1000.0;
	ev_timer_again(w->loop, &c->idle);
	ev_io_start(w->loop, &c->rio);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	log_debug("%s: connected (worker %d)", c->peer, w->id);
}

/* Stop: answer everything that has already arrived, say goodbye, close
 * once flushed. */
static void worker_begin_stop(struct worker *w)
{
	struct conn *c, *next;
	int i, r;

	for (c = w->conns; c; c = next) {
		next = c->next;
		if (c->closing)
			continue;
		/* Read until the socket is empty: every NOTIFY HAProxy sent
		 * before the signal gets its ACK. */
		for (i = 0, r = 1; i < SERVER_STOP_READS && r == 1 && !c->closing; i++)
			r = conn_read(c);
		if (r == -1 || c->closing)
			continue;
		ev_io_stop(w->loop, &c->rio);
		if (c->proto.pending > 0) {
			/* The DISCONNECT follows the last pending ACK. */
			c->stop_pending = 1;
			continue;
		}
		c->closing = 1;
		if (c->proto.state == CONN_ST_READY &&
		    conn_disconnect(&c->proto, SPOP_ST_NORMAL, &c->out) != 0) {
			conn_close(c);
			continue;
		}
		(void)conn_flush(c);
	}
	if (w->conns == NULL)
		ev_break(w->loop, EVBREAK_ONE);
}

/* Verifications came back from the pool: write their ACKs. */
static void worker_done_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct worker *w = (struct worker *)((char *)a -
	                                     offsetof(struct worker, done_wake));
	struct done_item *d, *next;

	(void)loop; (void)revents;
	pthread_mutex_lock(&w->dlock);
	d = w->done_head;
	w->done_head = w->done_tail = NULL;
	pthread_mutex_unlock(&w->dlock);
	for (; d != NULL; d = next) {
		struct conn *c = d->c;
		struct handler_env env;
		enum conn_verdict v;

		next = d->next;
		if (c->dead) {
			if (--c->proto.pending == 0)
				free(c);
			handler_job_free(d->job);
			free(d);
			continue;
		}
		conn_env(c, &env);
		v = conn_complete(&c->proto, &env, d->job, &c->out);
		handler_job_free(d->job);
		free(d);
		if (c->read_paused && c->proto.pending <= SERVER_MAX_PENDING / 2 &&
		    !c->closing) {
			c->read_paused = 0;
			ev_io_start(w->loop, &c->rio);
		}
		if (c->stop_pending && c->proto.pending == 0 && !c->closing) {
			c->closing = 1;
			if (c->proto.state == CONN_ST_READY &&
			    conn_disconnect(&c->proto, SPOP_ST_NORMAL, &c->out) != 0) {
				conn_close(c);
				continue;
			}
		}
		(void)conn_finish_verdict(c, v);
	}
}

static void worker_drain_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)t; (void)revents;
	ev_break(loop, EVBREAK_ONE);
}

static void worker_wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct worker *w = (struct worker *)((char *)a - offsetof(struct worker, wake));
	int fds[64];
	size_t n, i;

	(void)loop; (void)revents;
	do {
		pthread_mutex_lock(&w->qlock);
		n = w->qlen < 64 ? w->qlen : 64;
		/* A worker that never got a connection has no queue (NULL):
		 * memcpy from NULL is undefined even for 0 bytes. */
		if (n > 0) {
			memcpy(fds, w->queue, n * sizeof(int));
			memmove(w->queue, w->queue + n, (w->qlen - n) * sizeof(int));
			w->qlen -= n;
		}
		pthread_mutex_unlock(&w->qlock);
		for (i = 0; i < n; i++) {
			if (atomic_load(&w->stopping)) {
				close(fds[i]);
				atomic_fetch_sub(&nconns_total, 1);
			} else {
				worker_adopt(w, fds[i]);
			}
		}
	} while (n > 0);
	if (atomic_load(&w->stopping) && !ev_is_active(&w->drain)) {
		ev_timer_init(&w->drain, worker_drain_cb, SERVER_DRAIN_SECONDS, 0.);
		ev_timer_start(w->loop, &w->drain);
		worker_begin_stop(w);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	sigset_t set;

	/* Signals are the acceptor's business. */
	sigfillset(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	ev_run(w->loop, 0);
	while (w->conns)
		conn_close(w->conns);
	return NULL;
}

/* ---- listeners -------------------------------------------------------- */

struct listener {
	ev_io io;
	ev_timer pause;          /* accept paused on a resource shortage */
	ev_tstamp pause_len;     /* 0 while accepts succeed */
	ev_tstamp last_err_log;
	unsigned long suppressed; /* failures not logged since last_err_log */
	int fd;
	char *addr;
	char *unix_path;   /* unlinked on exit */
};

struct server {
	struct ev_loop *loop;
	struct listener *ls;
	size_t nls;
	struct worker *workers;
	int nworkers;
	unsigned int next_worker;
	const struct server_opts *opts;
	struct agent_settings settings;  /* of the live generation (listen cleared
	                                    once the listeners are open) */
	ev_signal sigterm, sigint, sighup;
	ev_timer expiry;         /* repeats the expiry warnings (expiry_start) */
	struct watch *watch;     /* NULL without a file or without inotify */
	ev_tstamp last_limit_log;
	uint64_t refused;        /* connections refused over max-connections */
	struct admin *admin;
	char *admin_addrs[CONFIG_MAX_LISTEN];  /* as started, for reloads */
	size_t n_admin;
	char *state_dir;         /* the effective state directory of the start:
	                            a reload keeps it */
	struct api *api;         /* the tenant API, served by the admin threads */
	struct fleet *fleet;     /* [store] backend etcd, else NULL */
	ev_async call_wake;      /* main_call queued */
	struct crlsrc *crlsrc;   /* crl-url fetches; NULL without a file */
	ev_async crl_wake;       /* crlsrc wrote a new CRL copy */
};

/* Readiness, for /readyz: the SPOP listeners accept (set once they are
 * started, cleared at stop), and none is paused by a shortage. */
static atomic_int listening;
static atomic_int listeners_paused;
/* Set before the admin threads start, cleared after they stopped. */
static struct fleet *server_fleet;

static void accept_resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct listener *l = (struct listener *)((char *)t - offsetof(struct listener, pause));

	(void)revents;
	ev_io_start(loop, &l->io);
	atomic_fetch_sub(&listeners_paused, 1);
}

/* accept() failed for want of descriptors or memory: the connection stays
 * in the backlog and the listener stays readable, so stop watching it for
 * a while. One log line a second at most, with the count of the others. */
static void accept_pause(struct ev_loop *loop, struct listener *l, int err)
{
	l->pause_len = l->pause_len == 0 ? SERVER_ACCEPT_PAUSE_MIN
	               : l->pause_len * 2 > SERVER_ACCEPT_PAUSE_MAX
	               ? SERVER_ACCEPT_PAUSE_MAX : l->pause_len * 2;
	ev_io_stop(loop, &l->io);
	if (!ev_is_active(&l->pause))
		atomic_fetch_add(&listeners_paused, 1);
	ev_timer_set(&l->pause, l->pause_len, 0.);
	ev_timer_start(loop, &l->pause);
	if (ev_now(loop) - l->last_err_log < 1.0) {
		l->suppressed++;
		return;
	}
	log_error("accept on %s: %s; retrying in %.0f ms (%lu failures not "
	          "logged since the last report)", l->addr, strerror(err),
	          l->pause_len * 1000, l->suppressed);
	l->last_err_log = ev_now(loop);
	l->suppressed = 0;
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct listener *l = (struct listener *)io;
	struct server *s = ev_userdata(loop);
	int i;

	(void)revents;
	for (i = 0; i < SERVER_ACCEPT_BURST; i++) {
		struct worker *w;
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int one = 1;
		char peer[INET6_ADDRSTRLEN + 16];

		if (fd == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			/* accept(2): errors of the connection being accepted,
			 * not of the listener; try the next one. */
			if (errno == ECONNABORTED || errno == EPROTO || errno == ENETDOWN ||
			    errno == ENOPROTOOPT || errno == EHOSTDOWN || errno == ENONET ||
			    errno == EHOSTUNREACH || errno == ENETUNREACH)
				continue;
			/* EMFILE, ENFILE, ENOBUFS, ENOMEM, or anything that
			 * would repeat at once. */
			accept_pause(loop, l, errno);
			return;
		}
		l->pause_len = 0;
		if (atomic_fetch_add(&nconns_total, 1) >= s->settings.max_connections) {
			atomic_fetch_sub(&nconns_total, 1);
			s->refused++;
			metrics_inc(METRICS_CONN_REFUSED);
			/* A storm must not turn into a log storm: one line a
			 * second, naming the latest peer and the count. */
			if (ev_now(loop) - s->last_limit_log >= 1.0) {
				s->last_limit_log = ev_now(loop);
				peer_name(fd, peer, sizeof(peer));
				log_warning("%s: refused on %s, max-connections (%u) reached "
				            "(%llu refused so far)", peer, l->addr,
				            s->settings.max_connections,
				            (unsigned long long)s->refused);
			}
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		metrics_inc(METRICS_CONN_ACCEPTED);
		w = &s->workers[s->next_worker++ % (unsigned int)s->nworkers];
		pthread_mutex_lock(&w->qlock);
		if (w->qlen == w->qcap) {
			size_t ncap = w->qcap ? w->qcap * 2 : 64;
			int *nq = realloc(w->queue, ncap * sizeof(int));
			if (!nq) {
				pthread_mutex_unlock(&w->qlock);
				close(fd);
				atomic_fetch_sub(&nconns_total, 1);
				log_error("out of memory queueing a connection");
				continue;
			}
			w->queue = nq;
			w->qcap = ncap;
		}
		w->queue[w->qlen++] = fd;
		pthread_mutex_unlock(&w->qlock);
		ev_async_send(w->loop, &w->wake);
	}
}

static void stop_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
	struct server *s = ev_userdata(loop);
	size_t i;

	(void)revents;
	log_info("signal %d: stopping", sig->signum);
	notify_stopping();
	atomic_store(&listening, 0);
	for (i = 0; i < s->nls; i++) {
		ev_io_stop(loop, &s->ls[i].io);
		ev_timer_stop(loop, &s->ls[i].pause);
	}
	ev_break(loop, EVBREAK_ALL);
}

/* Whether the file's listen list `a` is the set the listeners were opened
 * with (order aside). */
static int listen_unchanged(const struct server *s, const struct agent_settings *a)
{
	size_t i, j;

	if (a->n_listen != s->nls)
		return 0;
	for (i = 0; i < a->n_listen; i++) {
		for (j = 0; j < s->nls && strcmp(a->listen[i], s->ls[j].addr) != 0; j++)
			;
		if (j == s->nls)
			return 0;
	}
	return 1;
}

/* Watch the files of the live configuration (none when it says watch =
 * off): after every reload attempt, so that a failed one keeps watching
 * what is still live. */
static void server_watch_update(struct server *s)
{
	const struct config *cfg = cfg_live->cfg;
	const char **paths = NULL;
	size_t n = 0;

	if (s->watch == NULL)
		return;
	if (cfg != NULL && cfg->agent.watch) {
		paths = config_watch_paths(cfg, &n);
		if (paths == NULL)
			log_error("watch: out of memory; changes need SIGHUP");
	}
	(void)watch_set(s->watch, paths, n);
	free(paths);
}

static void server_reload_file(struct server *s);
/* Whether the admin listeners (addresses and metrics-policy-label, read
 * at start) are what the file `a` now says. */
static int admin_unchanged(const struct server *s, const struct agent_settings *a)
{
	if (a->n_admin_listen != s->n_admin ||
	    a->metrics_policy_label != metrics_policy_label())
		return 0;
	for (size_t i = 0; i < a->n_admin_listen; i++)
		if (strcmp(a->admin_listen[i], s->admin_addrs[i]) != 0)
			return 0;
	return 1;
}

/* admin_ops: what the admin threads read. */
static void admin_acquire(struct admin_view *v)
{
	struct cfg_ref *r = cfg_acquire();

	v->ref = r;
	v->cfg = r ? r->cfg : NULL;
	v->generation = r ? r->gen : 0;
	v->loaded_at = r ? r->loaded_at : 0;
	v->connections = atomic_load_explicit(&nconns_total, memory_order_relaxed);
	v->ready = atomic_load(&listening) && atomic_load(&listeners_paused) == 0 &&
	           (server_fleet == NULL || fleet_ready(server_fleet));
	v->store_json = server_fleet != NULL ? fleet_status_json(server_fleet) : NULL;
}

static void admin_release(struct admin_view *v)
{
	cfg_release(v->ref);
	v->ref = NULL;
	free(v->store_json);
	v->store_json = NULL;
}

/* api_ctx is set at start, once the API exists. */
static struct admin_ops server_admin_ops = {
	.acquire = admin_acquire,
	.release = admin_release,
	.api = api_handle,
	.api_ctx = NULL,
};

/* SIGHUP: load the file beside the live configuration and install it with
 * its settings, the command line's overriding them as at start. */
static void reload_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
	struct server *s = ev_userdata(loop);

	(void)sig; (void)revents;
	if (!s->opts->config_path) {
		log_warning("SIGHUP: no configuration file to reload (started without -c)");
		return;
	}
	server_reload_file(s);
	server_watch_update(s);
}

/* A watched file changed (debounced): the same reload as SIGHUP, unless
 * every file still has the bytes the live generation was built from. */
static void watch_cb(void *ctx)
{
	struct server *s = ctx;
	char why[CONFIG_ERR_LEN];

	if (cfg_live->cfg == NULL || !cfg_live->cfg->agent.watch)
		return;
	if (!config_changed(cfg_live->cfg, why, sizeof(why))) {
		log_debug("watch: the configuration's files did not change");
	} else {
		log_info("%s: reloading", why);
		server_reload_file(s);
	}
	server_watch_update(s);
}

static int server_adopt(struct server *s, struct config *cfg, const char *why,
                        int reload);

/* On the fetch thread: a crl-url copy changed. */
static void crl_changed(void *ctx)
{
	struct server *s = ctx;

	ev_async_send(s->loop, &s->crl_wake);
}

/* A new CRL copy in state-dir: reload (whatever `watch` says: it is not an
 * operator's edit), which rebuilds only the [ca] concerned. */
static void crl_wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct server *s = ev_userdata(loop);
	char why[CONFIG_ERR_LEN];

	(void)a; (void)revents;
	if (cfg_live->cfg == NULL || !config_changed(cfg_live->cfg, why, sizeof(why)))
		return;
	log_info("%s: reloading", why);
	server_reload_file(s);
	server_watch_update(s);
}

/* Load the file beside the live configuration and install it, or log why
 * not and keep the live one. */
static void server_reload_file(struct server *s)
{
	struct config *cfg = NULL;
	char err[CONFIG_ERR_LEN];
	struct config_opts co = { .state_dir = s->state_dir };

	notify_reloading();
	if (config_reload_opts(s->opts->config_path, cfg_live->cfg, &co, &cfg, err,
	                       sizeof(err)) != 0) {
		log_error("reload rejected, previous configuration stays live: %s", err);
		notify_rejected(err, cfg_live->gen);
		metrics_inc(METRICS_RELOAD_FAILURE);
		return;
	}
	(void)server_adopt(s, cfg, "reloaded", 1);
}

/* Install a loaded generation with its settings (the command line's
 * overriding them as at start) and say so; `why` starts the log line,
 * `reload` counts it as a reload (an API change is counted by the API).
 * 0, or -1 (no memory: cfg freed, the live one stays). */
/* The text of a load warning after its "FILE:LINE: ". */
static const char *warning_text(const char *w)
{
	const char *p = strstr(w, ": ");

	return p != NULL ? p + 2 : w;
}

/* Whether generation `prev` (may be NULL) already had warning `w`, line
 * numbers aside: an API change must not repeat every warning of the
 * configuration (start, reloads and the daily check report them). */
static int warning_known(const struct config *prev, const char *w)
{
	for (size_t i = 0; prev != NULL && i < prev->n_warnings; i++)
		if (strcmp(warning_text(prev->warnings[i]), warning_text(w)) == 0)
			return 1;
	return 0;
}

static int server_adopt(struct server *s, struct config *cfg, const char *why,
                        int reload)
{
	struct agent_settings settings;
	const struct config *prev = cfg_live->cfg;

	settings = cfg->agent;
	settings.threads = s->settings.threads;
	if (s->opts->log_level_fixed)
		settings.log_level = s->opts->agent.log_level;
	if (s->opts->log_format_fixed)
		settings.log_format = s->opts->agent.log_format;
	/* Before the install: after it, prev may be gone. */
	for (size_t i = 0; i < cfg->n_warnings; i++)
		if (reload || !warning_known(prev, cfg->warnings[i]))
			log_warning("%s", cfg->warnings[i]);
	if (cfg_install(cfg, &settings) != 0) {
		config_free(cfg);
		log_error("configuration rejected: out of memory");
		notify_rejected("out of memory", cfg_live->gen);
		if (reload)
			metrics_inc(METRICS_RELOAD_FAILURE);
		return -1;
	}
	if (reload)
		metrics_inc(METRICS_RELOAD_SUCCESS);
	s->settings = settings;
	memset(s->settings.listen, 0, sizeof(s->settings.listen));
	s->settings.n_listen = 0;
	memset(s->settings.admin_listen, 0, sizeof(s->settings.admin_listen));
	s->settings.n_admin_listen = 0;
	log_set_level(settings.log_level);
	log_set_format(settings.log_format);
	if (!s->opts->admin_listen_fixed && !admin_unchanged(s, &cfg->agent))
		log_warning("admin-listen or metrics-policy-label changed in %s: "
		            "restart to apply", s->opts->config_path);
	if (!s->opts->listen_fixed && !listen_unchanged(s, &cfg->agent))
		log_warning("listen changed in %s: restart to apply", s->opts->config_path);
	if (!s->opts->threads_fixed && cfg->agent.threads != settings.threads)
		log_warning("threads changed in %s: restart to apply", s->opts->config_path);
	if (s->opts->state_dir == NULL &&
	    strcmp(settings_state_dir(&cfg->agent), s->state_dir) != 0)
		log_warning("state-dir changed in %s: restart to apply (still %s)",
		            s->opts->config_path, s->state_dir);
	log_info("%s %s: %zu CAs (%zu built, %zu reused), %zu hosts "
	         "(%zu built, %zu reused), %zu trust policies (%zu built, %zu "
	         "reused) in %.1f ms (generation %llu)", why, s->opts->config_path,
	         cfg->n_cas, cfg->stats.cas_built, cfg->stats.cas_reused,
	         cfg->n_hosts, cfg->stats.hosts_built, cfg->stats.hosts_reused,
	         cfg->n_trusts, cfg->stats.trusts_built, cfg->stats.trusts_reused,
	         cfg->stats.load_ms, (unsigned long long)cfg->generation);
	notify_serving(cfg, cfg->generation);
	if (s->crlsrc != NULL)
		crlsrc_sync(s->crlsrc, cfg);
	return 0;
}

/* Start fetching the crl-url CRLs of the live configuration. Those with
 * no copy in state-dir yet are fetched before the agent reports ready,
 * for at most their crl-fetch-timeout. */
static void server_crl_start(struct server *s)
{
	unsigned int budget;

	ev_async_init(&s->crl_wake, crl_wake_cb);
	ev_async_start(s->loop, &s->crl_wake);
	s->crlsrc = crlsrc_new(crl_changed, s);
	if (s->crlsrc == NULL) {
		log_error("cannot start the CRL fetch thread: crl-url CRLs are not "
		          "refreshed");
		return;
	}
	crlsrc_sync(s->crlsrc, cfg_live->cfg);
	metrics_set_crlsrc(s->crlsrc);
	budget = crlsrc_initial_budget(s->crlsrc);
	if (budget == 0)
		return;
	log_info("fetching the CRLs of crl-url with no copy in state-dir (up to "
	         "%u ms) before reporting ready", budget);
	if (crlsrc_wait_initial(s->crlsrc, budget + 500) > 0)
		crl_wake_cb(s->loop, &s->crl_wake, 0);
}

/* ---- the tenant API's host side --------------------------------------- */

/* A function an admin thread needs run on the main thread (the only one
 * that replaces the live configuration, so API writes are serialized
 * with reloads without a lock of their own). */
struct main_call {
	void (*fn)(void *arg);
	void *arg;
	int state;              /* 0 queued, 1 done, -1 refused (stopping) */
	struct main_call *next;
};

static pthread_mutex_t call_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t call_cond = PTHREAD_COND_INITIALIZER;
static struct main_call *call_head, **call_tail = &call_head;
static int call_closed = 1;   /* opened once the main loop runs */

static int api_run(void *ctx, void (*fn)(void *arg), void *arg)
{
	struct server *s = ctx;
	struct main_call c = { .fn = fn, .arg = arg };

	pthread_mutex_lock(&call_lock);
	if (call_closed) {
		pthread_mutex_unlock(&call_lock);
		return -1;
	}
	*call_tail = &c;
	call_tail = &c.next;
	ev_async_send(s->loop, &s->call_wake);
	while (c.state == 0)
		pthread_cond_wait(&call_cond, &call_lock);
	pthread_mutex_unlock(&call_lock);
	return c.state == 1 ? 0 : -1;
}

/* Main thread: run what was queued, in order. */
static void call_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct main_call *c;

	(void)loop; (void)a; (void)revents;
	for (;;) {
		pthread_mutex_lock(&call_lock);
		c = call_head;
		if (c != NULL) {
			call_head = c->next;
			if (call_head == NULL)
				call_tail = &call_head;
		}
		pthread_mutex_unlock(&call_lock);
		if (c == NULL)
			return;
		c->fn(c->arg);
		pthread_mutex_lock(&call_lock);
		c->state = 1;
		pthread_cond_broadcast(&call_cond);
		pthread_mutex_unlock(&call_lock);
	}
}

static void call_open(void)
{
	pthread_mutex_lock(&call_lock);
	call_closed = 0;
	pthread_mutex_unlock(&call_lock);
}

/* Stopping: refuse what is queued and whatever comes. */
static void call_close(void)
{
	pthread_mutex_lock(&call_lock);
	call_closed = 1;
	for (struct main_call *c = call_head; c != NULL; c = c->next)
		c->state = -1;
	call_head = NULL;
	call_tail = &call_head;
	pthread_cond_broadcast(&call_cond);
	pthread_mutex_unlock(&call_lock);
}

static const struct config *api_acquire(void *ctx, void **ref, uint64_t *gen)
{
	struct cfg_ref *r = cfg_acquire();

	(void)ctx;
	*ref = r;
	*gen = r != NULL ? r->gen : 0;
	return r != NULL ? r->cfg : NULL;
}

static void api_release(void *ctx, void *ref)
{
	(void)ctx;
	cfg_release(ref);
}

static int api_rebuild(void *ctx, const char *text, size_t len,
                       struct config **out, char *err, size_t errlen)
{
	struct server *s = ctx;
	struct config_opts co = {
		.state_dir = s->state_dir, .api_text = text, .api_len = len,
	};

	if (s->opts->config_path == NULL) {
		snprintf(err, errlen, "no configuration file (started without -c)");
		return -1;
	}
	return config_reload_opts(s->opts->config_path, cfg_live->cfg, &co, out,
	                          err, errlen);
}

static int api_install(void *ctx, struct config *cfg, const char *why,
                       uint64_t *gen)
{
	struct server *s = ctx;

	if (server_adopt(s, cfg, why, 0) != 0)
		return -1;
	*gen = cfg_live->gen;
	/* The state's PEM files are CA files: watch the new set. */
	server_watch_update(s);
	return 0;
}

static int64_t api_store_mod(void *ctx, int is_host, const char *name,
                             int64_t *applied)
{
	return fleet_mod(((struct server *)ctx)->fleet, is_host, name, applied);
}

static int api_store_publish(void *ctx, struct api_txn *t, char *err,
                             size_t errlen)
{
	return fleet_publish(((struct server *)ctx)->fleet, t, err, errlen);
}

static void api_store_wait(void *ctx, int64_t rev)
{
	fleet_wait(((struct server *)ctx)->fleet, rev);
}

/* The store hooks are set when [store] backend = etcd. */
static struct api_host_ops server_api_ops = {
	.run = api_run,
	.acquire = api_acquire,
	.release = api_release,
	.rebuild = api_rebuild,
	.install = api_install,
};

/* ---- expiry warnings, repeated while they hold ------------------------ */

/* The load warns about CA certificates and CRLs that expire soon; a
 * process that runs for months must repeat it. */
#define SERVER_EXPIRY_CHECK_SECONDS (24 * 3600)

static void expiry_note(void *ctx, int crl_file, const char *msg)
{
	(void)ctx; (void)crl_file;
	log_warning("expiry check: %s", msg);
}

static void expiry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	/* The main thread is the only one that replaces cfg_live. */
	const struct config *cfg = cfg_live->cfg;
	time_t now = time(NULL);

	(void)loop; (void)t; (void)revents;
	for (size_t i = 0; cfg != NULL && i < cfg->n_cas; i++)
		(void)ca_expiry_notes(cfg->cas[i], now, expiry_note, NULL);
}

/* Every SERVER_EXPIRY_CHECK_SECONDS, or every $MTLS_EXPIRY_CHECK_SECONDS
 * (1..31536000; a testing knob, not a setting). */
static void expiry_start(struct server *s)
{
	const char *e = getenv("MTLS_EXPIRY_CHECK_SECONDS");
	uint64_t every = SERVER_EXPIRY_CHECK_SECONDS;

	if (e != NULL && (settings_parse_uint(e, 31536000, &every) != 0 || every == 0)) {
		log_warning("MTLS_EXPIRY_CHECK_SECONDS \"%s\" is not 1..31536000: "
		            "checking daily", e);
		every = SERVER_EXPIRY_CHECK_SECONDS;
	}
	ev_timer_init(&s->expiry, expiry_cb, (double)every, (double)every);
	ev_timer_start(s->loop, &s->expiry);
}

static int detect_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (n > SERVER_MAX_THREADS ? SERVER_MAX_THREADS : (int)n);
}

int server_run(const struct server_opts *o, struct config *cfg)
{
	struct server s;
	char err[CONFIG_ERR_LEN];
	int rc = 1, started = 0, i;
	size_t j;

	memset(&s, 0, sizeof(s));
	s.opts = o;
	s.settings = o->agent;
	cfg_main_thread = pthread_self();
	(void)notify_init();
	if (s.settings.n_listen == 0) {
		log_error("nothing to listen on: give -l ADDR or `listen` in [agent]");
		config_free(cfg);
		return 1;
	}
	for (j = 0; cfg != NULL && j < cfg->n_warnings; j++)
		log_warning("%s", cfg->warnings[j]);
	if (cfg_install(cfg, &s.settings) != 0) {
		config_free(cfg);
		return 1;
	}
	s.nworkers = s.settings.threads > 0 ? s.settings.threads : detect_cpus();
	{
		int nv = s.settings.verify_threads > 0 ? s.settings.verify_threads :
		         detect_cpus();

		/* Uncached verifications run here, never on a worker loop. */
		vpool = vpool_new(nv > VPOOL_MAX_THREADS ? VPOOL_MAX_THREADS : nv,
		                  4096, s.settings.verify_nice);
		if (vpool == NULL) {
			log_error("cannot start the verify threads");
			goto out;
		}
	}
	if (s.nworkers > SERVER_MAX_THREADS)
		s.nworkers = SERVER_MAX_THREADS;

	s.loop = ev_default_loop(EVFLAG_AUTO);
	if (!s.loop) {
		log_error("cannot create the event loop");
		goto out;
	}
	ev_set_userdata(s.loop, &s);
	/* Before any worker can retire a generation. */
	cfg_main_loop = s.loop;
	ev_async_init(&cfg_retire_wake, cfg_reap_cb);
	ev_async_start(s.loop, &cfg_retire_wake);
	ev_async_init(&s.call_wake, call_cb);
	ev_async_start(s.loop, &s.call_wake);
	s.state_dir = strdup(cfg_live->cfg != NULL ? cfg_live->cfg->state_dir :
	                     o->state_dir != NULL ? o->state_dir : SETTINGS_STATE_DIR);
	if (cfg_live->cfg != NULL && cfg_live->cfg->store.backend == STORE_ETCD) {
		server_api_ops.store_mod = api_store_mod;
		server_api_ops.store_publish = api_store_publish;
		server_api_ops.store_wait = api_store_wait;
	}
	s.api = api_new(&server_api_ops, &s);
	if (s.state_dir == NULL || s.api == NULL)
		goto out;
	if (server_api_ops.store_publish != NULL) {
		s.fleet = fleet_new(&cfg_live->cfg->store, s.api, &server_api_ops, &s,
		                    err, sizeof(err));
		if (s.fleet == NULL) {
			log_error("store: %s", err);
			goto out;
		}
		server_fleet = s.fleet;
	}

	s.ls = calloc(s.settings.n_listen, sizeof(*s.ls));
	if (!s.ls)
		goto out;
	for (j = 0; j < s.settings.n_listen; j++) {
		struct listener *l = &s.ls[j];
		int fd = listen_open(s.settings.listen[j], err, sizeof(err));

		if (fd == -1) {
			log_error("cannot listen: %s", err);
			goto out;
		}
		l->fd = fd;
		/* Our own copy: a reload frees the configuration it came from. */
		l->addr = strdup(s.settings.listen[j]);
		if (!l->addr) {
			close(fd);
			goto out;
		}
		if (strncmp(l->addr, "unix:", 5) == 0)
			l->unix_path = l->addr + 5;
		s.nls++;
		ev_io_init(&l->io, accept_cb, fd, EV_READ);
		ev_init(&l->pause, accept_resume_cb);
	}
	metrics_set_policy_label(s.settings.metrics_policy_label);
	server_admin_ops.api_ctx = s.api;
	if (admin_start(s.settings.admin_listen, s.settings.n_admin_listen,
	                &server_admin_ops, &s.admin, err, sizeof(err)) != 0) {
		log_error("cannot listen: admin: %s", err);
		goto out;
	}
	for (j = 0; j < s.settings.n_admin_listen; j++)
		if ((s.admin_addrs[j] = strdup(s.settings.admin_listen[j])) != NULL)
			s.n_admin++;
	/* The addresses belong to the first configuration, which a reload
	 * frees: from here on the listeners' copies are used. */
	memset(s.settings.listen, 0, sizeof(s.settings.listen));
	s.settings.n_listen = 0;
	memset(s.settings.admin_listen, 0, sizeof(s.settings.admin_listen));
	s.settings.n_admin_listen = 0;

	s.workers = calloc((size_t)s.nworkers, sizeof(*s.workers));
	if (!s.workers)
		goto out;
	for (i = 0; i < s.nworkers; i++) {
		struct worker *w = &s.workers[i];

		w->id = i;
		w->nworkers = (unsigned int)s.nworkers;
		w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
		pthread_mutex_init(&w->qlock, NULL);
		pthread_mutex_init(&w->dlock, NULL);
		if (!w->loop) {
			log_error("cannot create a worker event loop");
			goto out;
		}
		w->cfg = cfg_acquire();
		if (worker_cache_setup(w, s.settings.cache_entries) != 0) {
			log_error("cannot allocate the verdict cache");
			goto out;
		}
		ev_async_init(&w->wake, worker_wake_cb);
		ev_async_start(w->loop, &w->wake);
		ev_async_init(&w->done_wake, worker_done_cb);
		ev_async_start(w->loop, &w->done_wake);
		/* Keep the loop alive with no connections. */
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			log_error("cannot start worker thread %d", i);
			goto out;
		}
		started++;
	}

	ev_signal_init(&s.sigterm, stop_cb, SIGTERM);
	ev_signal_init(&s.sigint, stop_cb, SIGINT);
	ev_signal_init(&s.sighup, reload_cb, SIGHUP);
	ev_signal_start(s.loop, &s.sigterm);
	ev_signal_start(s.loop, &s.sigint);
	ev_signal_start(s.loop, &s.sighup);
	signal(SIGPIPE, SIG_IGN);
	expiry_start(&s);

	if (o->config_path != NULL) {
		s.watch = watch_new(s.loop, SERVER_WATCH_DEBOUNCE, watch_cb, &s);
		if (s.watch == NULL)
			log_warning("cannot watch the configuration files: %s; reload "
			            "with SIGHUP", strerror(errno));
		server_watch_update(&s);
		server_crl_start(&s);
	}
	/* etcd's objects (or the snapshot) before the first verdict. */
	if (s.fleet != NULL && fleet_start(s.fleet, cfg_live->cfg->api_path, err,
	                                   sizeof(err)) != 0) {
		log_error("store: %s", err);
		goto out;
	}
	for (j = 0; j < s.nls; j++) {
		ev_io_start(s.loop, &s.ls[j].io);
		log_info("listening on %s", s.ls[j].addr);
	}
	atomic_store(&listening, 1);
	log_info("ready: %d worker threads, max-frame-size %u, %s", s.nworkers,
	         s.settings.max_frame_size,
	         o->config_path ? o->config_path : "no configuration file (no policies)");
	notify_serving(cfg_live->cfg, cfg_live->gen);
	call_open();
	ev_run(s.loop, 0);
	rc = 0;

out:
	/* An admin thread waiting for an API write would never be answered
	 * once the loop is gone, and admin_stop() waits for admin threads. */
	call_close();
	/* Wakes the admin threads waiting for etcd, before they are joined. */
	fleet_stop(s.fleet);
	watch_free(s.watch);
	atomic_store(&listening, 0);
	/* The admin threads hold generations only while they answer: stop
	 * them before the live one goes. */
	admin_stop(s.admin);
	s.admin = NULL;
	server_fleet = NULL;
	fleet_free(s.fleet);
	s.fleet = NULL;
	/* After the admin threads, which render its series. */
	metrics_set_crlsrc(NULL);
	crlsrc_free(s.crlsrc);
	if (s.crlsrc != NULL)
		ev_async_stop(s.loop, &s.crl_wake);
	for (j = 0; j < s.n_admin; j++)
		free(s.admin_addrs[j]);
	api_free(s.api);
	free(s.state_dir);
	/* Stop accepting first, then let every worker answer and drain. */
	for (j = 0; j < s.nls; j++) {
		close(s.ls[j].fd);
		if (s.ls[j].unix_path)
			unlink(s.ls[j].unix_path);
		free(s.ls[j].addr);
	}
	for (i = 0; i < started; i++) {
		atomic_store(&s.workers[i].stopping, 1);
		ev_async_send(s.workers[i].loop, &s.workers[i].wake);
	}
	for (i = 0; i < started; i++)
		pthread_join(s.workers[i].thread, NULL);
	/* Jobs still in the pool finish now; their connections are closed,
	 * so what comes back is only freed. */
	vpool_free(vpool);
	vpool = NULL;
	for (i = 0; s.workers && i < s.nworkers; i++) {
		struct worker *w = &s.workers[i];
		struct done_item *d, *dn;

		for (d = w->done_head; d != NULL; d = dn) {
			dn = d->next;
			if (d->c->dead && --d->c->proto.pending == 0)
				free(d->c);
			handler_job_free(d->job);
			free(d);
		}
		pthread_mutex_destroy(&w->dlock);

		for (j = 0; j < w->qlen; j++)
			close(w->queue[j]);
		free(w->queue);
		cfg_release(w->cfg);
		cache_free(w->cache);
		if (w->loop)
			ev_loop_destroy(w->loop);
		pthread_mutex_destroy(&w->qlock);
	}
	free(s.workers);
	free(s.ls);
	cfg_release(cfg_live);
	cfg_live = NULL;
	/* What the workers retired after the loop stopped. */
	cfg_reap();
	if (cfg_main_loop)
		ev_async_stop(cfg_main_loop, &cfg_retire_wake);
	cfg_main_loop = NULL;
	log_info("%llu full trust verifications since the start",
	         (unsigned long long)trust_verifications());
	notify_close();
	if (rc == 0)
		log_info("stopped");
	return rc;
}
