/*
 * vpool.h - the verify pool: threads that run trust verifications off the
 * worker loops, so an uncached verification (a 16-certificate RSA-4096
 * chain, a large CRL) never delays the cached answers queued behind it.
 *
 * A worker submits a job with a completion callback; a pool thread runs
 * handler_job_run() and calls the callback on its own thread, which hands
 * the job back to the worker (a locked list and an ev_async in server.c).
 * The queue is bounded: a full pool refuses, and the caller keeps the
 * job (it verifies inline rather than dropping a request).
 */
#ifndef MTLS_VPOOL_H
#define MTLS_VPOOL_H

#include <stddef.h>

#define VPOOL_WUR __attribute__((warn_unused_result))

#define VPOOL_MAX_THREADS 64
#define VPOOL_MAX_QUEUE 65536

struct handler_job;
struct vpool;

typedef void (*vpool_done_fn)(void *ctx, struct handler_job *job);

/* Start `threads` threads (1..VPOOL_MAX_THREADS) with a queue of at most
 * `queue` jobs, running at nice `nice` (0..19). NULL on failure. */
VPOOL_WUR struct vpool *vpool_new(int threads, size_t queue, int nice);

/* Queue a job; done(ctx, job) runs on a pool thread once it has been
 * verified. Returns 0, or -1 when the queue is full or the pool stops
 * (the job is then still the caller's). */
VPOOL_WUR int vpool_submit(struct vpool *p, struct handler_job *job,
                           vpool_done_fn done, void *ctx);

/* Jobs queued and not yet started. */
size_t vpool_queued(struct vpool *p);

/* Stop: jobs still queued are handed to their callbacks without being
 * run (their connections are closed by then), the threads are joined and
 * the pool freed. NULL is fine. */
void vpool_free(struct vpool *p);

#endif /* MTLS_VPOOL_H */
