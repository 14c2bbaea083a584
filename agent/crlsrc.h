/*
 * crlsrc.h - CRLs that come from a URL (`[ca] crl-url`): one thread
 * fetches each URL at start and then again at the earlier of crl-refresh
 * after the last success and crl-refresh-margin before the CRL's
 * nextUpdate (jittered; backoff on failure), verifies what it got (every
 * CRL signed by a certificate of the section; not older than the one it
 * replaces) and keeps the last good one in STATE/crl/ (ca.h names the
 * file). The configuration reads those copies as CRL files of the
 * section; after writing a new copy the thread calls `changed`, and the
 * owner reloads (which rebuilds only that section's objects).
 *
 * Nothing here runs on the data path: verdicts only ever see CRLs that a
 * configuration generation loaded.
 */
#ifndef MTLS_CRLSRC_H
#define MTLS_CRLSRC_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"

#define CRLSRC_WUR __attribute__((warn_unused_result))

struct crlsrc;

/* Called on the fetch thread after a new copy was written. */
typedef void (*crlsrc_changed_fn)(void *ctx);

/* Start the fetch thread (no sources yet). NULL on failure. */
CRLSRC_WUR struct crlsrc *crlsrc_new(crlsrc_changed_fn changed, void *ctx);

/* Fetch what `cfg` names (call after every install of a generation):
 * new URLs are fetched at once, known ones keep their schedule, URLs no
 * longer named are dropped. Only reads cfg. */
void crlsrc_sync(struct crlsrc *s, const struct config *cfg);

/* Wait until every source that had no copy on disk at its first sync was
 * tried once, or max_ms passed. Returns the number of copies written
 * meanwhile. */
size_t crlsrc_wait_initial(struct crlsrc *s, unsigned int max_ms);

/* The longest crl-fetch-timeout among sources without a copy, in ms
 * (0 when every source has one): what crlsrc_wait_initial() should
 * wait at most. */
unsigned int crlsrc_initial_budget(struct crlsrc *s);

/* Per source, for metrics and status. */
struct crlsrc_stat {
	char ca[64];
	char url[256];
	time_t last_success;    /* 0: never */
	time_t last_attempt;
	time_t next_update;     /* of the CRL in use, 0 none */
	time_t next_fetch;
	uint64_t fetches, failures, refused, unchanged;
	unsigned int failing;   /* consecutive failures now */
	char last_error[160];
};

/* Up to `max` sources into out; returns how many there are. */
size_t crlsrc_stats(struct crlsrc *s, struct crlsrc_stat *out, size_t max);

/* The counters of the source whose copy is `path` (a crl_files path):
 * 0, or -1 when s is NULL or has no such source. */
int crlsrc_stat_of(struct crlsrc *s, const char *path, struct crlsrc_stat *out);

/* Stop the thread (a fetch in progress ends at its timeout) and free. */
void crlsrc_free(struct crlsrc *s);

#endif /* MTLS_CRLSRC_H */
