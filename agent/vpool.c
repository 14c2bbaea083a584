/*
 * vpool.c - a fixed set of verify threads over one bounded FIFO queue
 * (a ring under a mutex, a condition variable to sleep on).
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "handler.h"
#include "vpool.h"

struct vpool_item {
	struct handler_job *job;
	vpool_done_fn done;
	void *ctx;
};

struct vpool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct vpool_item *ring;
	size_t cap, head, len;
	int stopping;
	int nthreads;
	pthread_t threads[VPOOL_MAX_THREADS];
};

static void *vpool_main(void *arg)
{
	struct vpool *p = arg;
	sigset_t set;

	/* Signals are the acceptor's business. */
	sigfillset(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (;;) {
		struct vpool_item it;
		int stopping;

		pthread_mutex_lock(&p->lock);
		while (p->len == 0 && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->len == 0) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		it = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->len--;
		stopping = p->stopping;
		pthread_mutex_unlock(&p->lock);
		/* At stop the connections are gone: hand jobs back unrun. */
		if (!stopping)
			handler_job_run(it.job);
		it.done(it.ctx, it.job);
	}
}

struct vpool *vpool_new(int threads, size_t queue)
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
	if (p->ring == NULL || pthread_mutex_init(&p->lock, NULL) != 0) {
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

int vpool_submit(struct vpool *p, struct handler_job *job, vpool_done_fn done,
                 void *ctx)
{
	int rc = -1;

	pthread_mutex_lock(&p->lock);
	if (!p->stopping && p->len < p->cap) {
		p->ring[(p->head + p->len) % p->cap] =
			(struct vpool_item){ job, done, ctx };
		p->len++;
		rc = 0;
		pthread_cond_signal(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
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
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->ring);
	free(p);
}
