/*
 * vpool.c - a fixed set of verify threads over one bounded FIFO queue
 * (a ring under a mutex, a condition variable to sleep on), and the
 * flights that make equal verifications run once.
 *
 * A flight is one verification key (trust policy id, certificate and
 * chain bytes). While its job is queued or running, equal jobs submitted
 * by any worker attach to it as followers instead of being queued; when
 * it finishes, they get its result. The result is then kept (a copy of
 * the job) until its cache expiry, at most VPOOL_RETAIN entries, so that
 * a worker whose own cache has not seen the certificate yet adopts it
 * instead of verifying again: per-worker caches are not shared, this
 * table is. Everything here is under the pool's one mutex, taken only on
 * cache misses.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "cache.h"
#include "handler.h"
#include "vpool.h"

/* Results kept after their verification, and the hash table size. */
#define VPOOL_RETAIN 1024
#define VPOOL_BUCKETS 4096

struct vpool_item {
	struct handler_job *job;
	vpool_done_fn done;
	void *ctx;
	struct vpool_item *next;        /* followers of the same flight */
};

struct flight {
	uint64_t hash, id;
	const uint8_t *bytes;           /* the leader's (or the kept copy's) */
	size_t len;
	struct vpool_item leader;
	struct vpool_item *followers;
	struct handler_job *result;     /* once done: the kept copy */
	int64_t expires;                /* unix ms, once done */
	struct flight *next;            /* hash chain */
	struct flight *older, *newer;   /* done flights, oldest first */
};

struct vpool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct flight **ring;           /* queued flights */
	size_t cap, head, len;
	int stopping;
	int nthreads;
	int nice;
	uint64_t seed;
	struct flight *buckets[VPOOL_BUCKETS];
	struct flight *oldest, *newest; /* done flights */
	size_t ndone;
	pthread_t threads[VPOOL_MAX_THREADS];
};

static int64_t vpool_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The cache's seeded hash: the seed is secret, so clients cannot aim keys
 * at one chain. */
static uint64_t vpool_hash(const struct vpool *p, uint64_t id,
                           const uint8_t *b, size_t n)
{
	return cache_hash_seeded(p->seed, id, b, n);
}

static struct flight **vpool_slot(struct vpool *p, uint64_t hash, uint64_t id,
                                  const uint8_t *b, size_t n)
{
	struct flight **fp = &p->buckets[hash % VPOOL_BUCKETS];

	for (; *fp != NULL; fp = &(*fp)->next) {
		struct flight *f = *fp;

		if (f->hash == hash && f->id == id && f->len == n &&
		    memcmp(f->bytes, b, n) == 0)
			break;
	}
	return fp;
}

/* Take a flight out of the table (and of the done list if it is there). */
static void vpool_unlink(struct vpool *p, struct flight *f)
{
	struct flight **fp = vpool_slot(p, f->hash, f->id, f->bytes, f->len);

	if (*fp == f)
		*fp = f->next;
	if (f->result != NULL) {
		if (f->older)
			f->older->newer = f->newer;
		else
			p->oldest = f->newer;
		if (f->newer)
			f->newer->older = f->older;
		else
			p->newest = f->older;
		p->ndone--;
	}
}

static void vpool_drop(struct vpool *p, struct flight *f)
{
	vpool_unlink(p, f);
	handler_job_free(f->result);
	free(f);
}

/* A verify thread finished the leader of `f`: hand the result to the
 * followers and keep a copy if it may answer later requests. Returns the
 * followers to complete (outside the lock). */
static struct vpool_item *vpool_land(struct vpool *p, struct flight *f,
                                     int shareable)
{
	struct vpool_item *fl = f->followers;
	int64_t expires = shareable ? handler_job_expires(f->leader.job) : 0;
	struct handler_job *copy = NULL;

	for (struct vpool_item *it = fl; it != NULL; it = it->next)
		handler_job_adopt(it->job, f->leader.job);
	f->followers = NULL;
	if (expires > vpool_now_ms())
		copy = handler_job_clone(f->leader.job);
	if (copy == NULL) {
		vpool_unlink(p, f);
		free(f);
		return fl;
	}
	f->result = copy;
	f->expires = expires;
	{
		uint64_t id;
		const uint8_t *b;
		size_t n;

		(void)handler_job_key(copy, &id, &b, &n);
		f->bytes = b;   /* the leader's bytes go with it */
	}
	f->older = p->newest;
	f->newer = NULL;
	if (p->newest)
		p->newest->newer = f;
	else
		p->oldest = f;
	p->newest = f;
	if (++p->ndone > VPOOL_RETAIN)
		vpool_drop(p, p->oldest);
	return fl;
}

static void vpool_run(struct vpool *p, struct flight *f, int stopping)
{
	struct vpool_item lead = f->leader, *fl, *next;
	uint64_t id;
	const uint8_t *b;
	size_t n;
	int shareable = handler_job_key(lead.job, &id, &b, &n);

	/* At stop the connections are gone: hand jobs back unrun. */
	if (!stopping)
		handler_job_run(lead.job);
	pthread_mutex_lock(&p->lock);
	if (shareable && !stopping) {
		fl = vpool_land(p, f, shareable);
	} else {
		fl = f->followers;
		if (shareable)
			vpool_unlink(p, f);
		free(f);
	}
	pthread_mutex_unlock(&p->lock);
	lead.done(lead.ctx, lead.job);
	for (; fl != NULL; fl = next) {
		next = fl->next;
		fl->done(fl->ctx, fl->job);
		free(fl);
	}
}

static void *vpool_main(void *arg)
{
	struct vpool *p = arg;
	sigset_t set;

	/* Signals are the acceptor's business. */
	sigfillset(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* Verify threads run at a lower priority than the worker loops
	 * (verify-nice, default 10): under a flood of uncached verifications
	 * the cached answers keep their CPU (nice 10 weighs about a tenth of
	 * nice 0 under CFS), and a verify thread still runs whenever a core
	 * would otherwise idle. The price: against other busy processes (a
	 * busy HAProxy) verifications get that smaller share too. Per thread
	 * on Linux (the "process" of setpriority is the thread); a failure
	 * only leaves the default priority. */
	if (p->nice > 0)
		(void)setpriority(PRIO_PROCESS, (id_t)gettid(), p->nice);
	for (;;) {
		struct flight *f;
		int stopping;

		pthread_mutex_lock(&p->lock);
		while (p->len == 0 && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->len == 0) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		f = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->len--;
		stopping = p->stopping;
		pthread_mutex_unlock(&p->lock);
		vpool_run(p, f, stopping);
	}
}

struct vpool *vpool_new(int threads, size_t queue, int nice)
{
	struct vpool *p;

	if (threads < 1 || threads > VPOOL_MAX_THREADS || queue == 0 ||
	    queue > VPOOL_MAX_QUEUE)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->ring = calloc(queue, sizeof(*p->ring));
	p->cap = queue;
	p->nice = nice;
	if (p->ring == NULL ||
	    RAND_bytes((unsigned char *)&p->seed, sizeof(p->seed)) != 1 ||
	    pthread_mutex_init(&p->lock, NULL) != 0) {
		free(p->ring);
		free(p);
		return NULL;
	}
	if (pthread_cond_init(&p->cond, NULL) != 0) {
		pthread_mutex_destroy(&p->lock);
		free(p->ring);
		free(p);
		return NULL;
	}
	for (; p->nthreads < threads; p->nthreads++) {
		if (pthread_create(&p->threads[p->nthreads], NULL, vpool_main,
		                   p) != 0) {
			vpool_free(p);
			return NULL;
		}
	}
	return p;
}

/* Attach `job` to the flight `f` (queued, running, or done). Returns 1
 * when the job is complete at once (a kept result): the caller calls
 * done() outside the lock. */
static int vpool_join(struct flight *f, struct handler_job *job,
                      vpool_done_fn done, void *ctx, int *oom)
{
	struct vpool_item *it;

	*oom = 0;
	if (f->result != NULL) {
		handler_job_adopt(job, f->result);
		return 1;
	}
	it = malloc(sizeof(*it));
	if (it == NULL) {
		*oom = 1;
		return 0;
	}
	*it = (struct vpool_item){ job, done, ctx, f->followers };
	f->followers = it;
	return 0;
}

int vpool_submit(struct vpool *p, struct handler_job *job, vpool_done_fn done,
                 void *ctx)
{
	uint64_t id, hash = 0;
	const uint8_t *b;
	size_t n;
	int shareable = handler_job_key(job, &id, &b, &n), now_done = 0, oom;
	struct flight **fp = NULL, *f;
	int rc = -1;

	pthread_mutex_lock(&p->lock);
	if (p->stopping)
		goto out;
	if (shareable) {
		hash = vpool_hash(p, id, b, n);
		fp = vpool_slot(p, hash, id, b, n);
		f = *fp;
		if (f != NULL && f->result != NULL &&
		    f->expires <= vpool_now_ms()) {
			vpool_drop(p, f);
			fp = vpool_slot(p, hash, id, b, n);
			f = NULL;
		}
		if (f != NULL) {
			now_done = vpool_join(f, job, done, ctx, &oom);
			rc = oom ? -1 : 0;
			goto out;
		}
	}
	if (p->len >= p->cap)
		goto out;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		goto out;
	f->hash = hash;
	f->id = id;
	f->bytes = b;
	f->len = n;
	f->leader = (struct vpool_item){ job, done, ctx, NULL };
	if (shareable)
		*fp = f;
	p->ring[(p->head + p->len) % p->cap] = f;
	p->len++;
	rc = 0;
	pthread_cond_signal(&p->cond);
out:
	pthread_mutex_unlock(&p->lock);
	if (now_done)
		done(ctx, job);
	return rc;
}

size_t vpool_queued(struct vpool *p)
{
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->len;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void vpool_free(struct vpool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	while (p->oldest != NULL)
		vpool_drop(p, p->oldest);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->ring);
	free(p);
}
