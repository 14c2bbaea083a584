/*
 * crlsrc.c - see crlsrc.h.
 *
 * One thread, one fetch at a time: CRL refreshes are rare (hours apart)
 * and each is bounded by its crl-fetch-timeout, so a slow server delays
 * the other URLs by at most that much. Sources live in an array under
 * one mutex; the thread copies what a fetch needs, unlocks for the
 * transfer, and finds its source again by path afterwards (a reload may
 * have dropped it meanwhile).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>

#include "ca.h"
#include "crl.h"
#include "crlsrc.h"
#include "fetch.h"
#include "log.h"

/* Never fetch a URL again sooner than this after a success, even when
 * the CRL is already within its margin (the CA publishes late). */
#define CRLSRC_MIN_AFTER_SUCCESS_MS (60u * 1000)
#define CRLSRC_FIRST_BACKOFF_MS 1000u
#define CRLSRC_MAX_BACKOFF_NEEDY_MS (60u * 1000)

struct src {
	char *path;             /* the copy in state-dir: the source's key */
	char *url;
	struct ca_entry *ca;    /* the section as last synced (a reference) */
	struct crl *have;       /* newest CRL of the copy, NULL: none */
	int64_t due_ms;         /* realtime ms of the next fetch */
	int busy;               /* being fetched */
	int initial;            /* had no copy at its first sync, not tried yet */
	int seen;               /* in the latest sync */
	struct crlsrc_stat st;
};

struct crlsrc {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;      /* sources changed, or stop */
	pthread_cond_t tried;   /* an initial source was tried */
	atomic_int stop;
	int started;
	struct src **v;
	size_t n;
	size_t written;         /* copies written since the start */
	crlsrc_changed_fn changed;
	void *ctx;
	uint64_t rng;
};

static int64_t crlsrc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: jitter only, no security role. */
static double crlsrc_rand(struct crlsrc *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return (double)((s->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void src_free(struct src *x)
{
	if (x == NULL)
		return;
	free(x->path);
	free(x->url);
	ca_unref(x->ca);
	crl_unref(x->have);
	free(x);
}

static struct src *crlsrc_find(struct crlsrc *s, const char *path)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i]->path, path) == 0)
			return s->v[i];
	return NULL;
}

/* The newest CRL (by lastUpdate) of a crl_files entry, or NULL. */
static struct crl *crlsrc_newest(struct crl *const *v, size_t n)
{
	struct crl *best = NULL;

	for (size_t i = 0; i < n; i++)
		if (best == NULL || crl_last_update(v[i]) > crl_last_update(best))
			best = v[i];
	return best;
}

void crlsrc_sync(struct crlsrc *s, const struct config *cfg)
{
	int64_t now = crlsrc_now_ms();
	size_t k = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++)
		s->v[i]->seen = 0;
	for (size_t i = 0; cfg != NULL && i < cfg->n_cas; i++) {
		struct ca_entry *ca = cfg->cas[i];

		for (size_t f = 0; f < ca->n_crl_files; f++) {
			const struct ca_crl_file *cf = &ca->crl_files[f];
			struct crl *loaded = crlsrc_newest(cf->crls, cf->n_crls);
			struct src *x, **nv;

			if (cf->url == NULL)
				continue;
			x = crlsrc_find(s, cf->path);
			if (x == NULL) {
				x = calloc(1, sizeof(*x));
				nv = x != NULL ? realloc(s->v, (s->n + 1) * sizeof(*nv)) : NULL;
				if (x == NULL || nv == NULL ||
				    (x->path = strdup(cf->path)) == NULL ||
				    (x->url = strdup(cf->url)) == NULL) {
					if (nv != NULL)
						s->v = nv;
					src_free(x);
					log_error("crl-url %s: out of memory, not fetched", cf->url);
					continue;
				}
				s->v = nv;
				s->v[s->n++] = x;
				x->due_ms = now;
				x->initial = loaded == NULL;
				snprintf(x->st.ca, sizeof(x->st.ca), "%s", ca->name);
				snprintf(x->st.url, sizeof(x->st.url), "%s", cf->url);
			}
			x->seen = 1;
			if (x->ca != ca) {
				ca_unref(x->ca);
				x->ca = ca_ref(ca);
			}
			/* What the configuration loaded is what is in use. */
			if (loaded != NULL && (x->have == NULL ||
			    crl_last_update(loaded) >= crl_last_update(x->have))) {
				crl_unref(x->have);
				x->have = crl_ref(loaded);
			}
			x->st.next_update = x->have ? crl_next_update(x->have) : 0;
		}
	}
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i]->seen || s->v[i]->busy)
			s->v[k++] = s->v[i];
		else
			src_free(s->v[i]);
	}
	s->n = k;
	pthread_cond_broadcast(&s->cv);
	pthread_cond_broadcast(&s->tried);
	pthread_mutex_unlock(&s->lock);
}

/* mkdir -p of the directory of `path` (0750 for what we create). */
static int crlsrc_mkdirs(const char *path)
{
	char d[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(d))
		return -1;
	memcpy(d, path, len + 1);
	for (char *p = d + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(d, 0750) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

/* Write the copy: a temporary file, fsync, rename over, so that a crash
 * or a concurrent reload never reads half a CRL. */
static int crlsrc_write(const char *path, const uint8_t *p, size_t len,
                        char *err, size_t errlen)
{
	char tmp[PATH_MAX + 32];
	int fd;
	size_t off = 0;

	if (crlsrc_mkdirs(path) == -1) {
		snprintf(err, errlen, "cannot create the directory of %s: %s", path,
		         strerror(errno));
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd == -1) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	while (off < len) {
		ssize_t w = write(fd, p + off, len - off);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (off != len || fsync(fd) == -1) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) == -1) {
		snprintf(err, errlen, "cannot rename onto %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

enum crlsrc_outcome {
	CRLSRC_NEW = 0,         /* a newer CRL, written */
	CRLSRC_SAME,            /* the same CRL number (or bytes): nothing to do */
	CRLSRC_FAILED,          /* transfer failed */
	CRLSRC_REFUSED,         /* got something we will not use */
	CRLSRC_OUTCOME_COUNT
};

/* One fetch of `url` for `ca`, compared with `have` (may be NULL). On
 * NEW, *got is the newest fetched CRL (a reference). */
static enum crlsrc_outcome crlsrc_fetch(struct crlsrc *s, const char *url,
                                        const char *path, struct ca_entry *ca,
                                        struct crl *have, unsigned int timeout_ms,
                                        struct crl **got, char *err,
                                        size_t errlen)
{
	uint8_t *body = NULL;
	size_t len = 0, n = 0;
	struct crl **v = NULL, *newest;
	enum crlsrc_outcome rc = CRLSRC_REFUSED;
	char why[256];

	*got = NULL;
	if (fetch_get(url, CRL_MAX_FILE, timeout_ms, &s->stop, &body, &len, err,
	              errlen) == -1)
		return CRLSRC_FAILED;
	if (crl_load_mem("the answer", body, len, &v, &n, err, errlen) == -1)
		goto out;
	newest = crlsrc_newest(v, n);
	for (size_t i = 0; i < n; i++) {
		if (ca_crl_successor(ca, NULL, v[i], 1, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s", why);
			goto out;
		}
	}
	if (have != NULL) {
		const ASN1_INTEGER *hn = crl_number(have), *nn = crl_number(newest);

		if (memcmp(crl_digest(have), crl_digest(newest), 32) == 0 ||
		    (hn != NULL && nn != NULL && ASN1_INTEGER_cmp(hn, nn) == 0)) {
			rc = CRLSRC_SAME;
			goto out;
		}
		if (ca_crl_successor(ca, have, newest, 1, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s", why);
			goto out;
		}
	}
	if (crlsrc_write(path, body, len, err, errlen) == -1) {
		rc = CRLSRC_FAILED;
		goto out;
	}
	*got = crl_ref(newest);
	rc = CRLSRC_NEW;
out:
	for (size_t i = 0; i < n; i++)
		crl_unref(v[i]);
	free(v);
	free(body);
	return rc;
}

/* When to fetch again after a success with `have` in use: crl-refresh
 * from now, or crl-refresh-margin (default a tenth of the validity)
 * before nextUpdate if that is earlier, but not before
 * CRLSRC_MIN_AFTER_SUCCESS_MS (or crl-refresh when shorter); jittered
 * down by up to 10 %, so that agents started together spread out. */
static int64_t crlsrc_next_ok(struct crlsrc *s, const struct ca_entry *ca,
                              const struct crl *have, int64_t now)
{
	const struct ca_revocation *r = &ca->rev;
	int64_t wait = r->crl_refresh_ms, floor_ms;

	floor_ms = r->crl_refresh_ms < CRLSRC_MIN_AFTER_SUCCESS_MS ?
	           r->crl_refresh_ms : CRLSRC_MIN_AFTER_SUCCESS_MS;
	if (have != NULL && crl_next_update(have) != 0) {
		int64_t nu = (int64_t)crl_next_update(have) * 1000;
		int64_t validity = nu - (int64_t)crl_last_update(have) * 1000;
		int64_t margin = r->crl_refresh_margin_ms != 0 ?
		                 (int64_t)r->crl_refresh_margin_ms : validity / 10;

		if (nu - margin - now < wait)
			wait = nu - margin - now;
	}
	if (wait < floor_ms)
		wait = floor_ms;
	return now + wait - (int64_t)(wait * 0.1 * crlsrc_rand(s));
}

/* After a failure: 1 s, 2 s, 4 s ... up to crl-refresh, or up to
 * CRLSRC_MAX_BACKOFF_NEEDY_MS while there is no CRL or the one in use is
 * past its nextUpdate (certificates are crl_error or unchecked until a
 * fetch succeeds), +-10 %. */
static int64_t crlsrc_next_fail(struct crlsrc *s, const struct ca_entry *ca,
                                const struct crl *have, unsigned int failing,
                                int64_t now)
{
	int64_t wait = CRLSRC_FIRST_BACKOFF_MS, cap = ca->rev.crl_refresh_ms;

	if ((have == NULL || (crl_next_update(have) != 0 &&
	                      (int64_t)crl_next_update(have) * 1000 <= now)) &&
	    cap > CRLSRC_MAX_BACKOFF_NEEDY_MS)
		cap = CRLSRC_MAX_BACKOFF_NEEDY_MS;
	for (unsigned int i = 1; i < failing && wait < cap; i++)
		wait *= 2;
	if (wait > cap)
		wait = cap;
	return now + wait + (int64_t)(wait * 0.2 * (crlsrc_rand(s) - 0.5));
}

static void crlsrc_time_str(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t == 0 || gmtime_r(&t, &tm) == NULL)
		snprintf(buf, len, "none");
	else
		strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* Log one outcome (the lock is not held). */
static void crlsrc_log(enum crlsrc_outcome o, const char *url, const char *ca,
                       const struct crl *got, const struct crl *have,
                       const char *err, int64_t next_ms)
{
	char nu[64], num[64] = "none";
	double in_s = (double)(next_ms - crlsrc_now_ms()) / 1000.0;

	switch (o) {
	case CRLSRC_NEW:
		crlsrc_time_str(crl_next_update(got), nu, sizeof(nu));
		if (crl_number(got) != NULL) {
			BIGNUM *bn = ASN1_INTEGER_to_BN(crl_number(got), NULL);
			char *d = bn ? BN_bn2dec(bn) : NULL;

			snprintf(num, sizeof(num), "%s", d ? d : "?");
			OPENSSL_free(d);
			BN_free(bn);
		}
		log_info("crl-url %s ([ca %s]): new CRL (number %s, %zu revoked, "
		         "nextUpdate %s): reloading", url, ca, num, crl_count(got), nu);
		break;
	case CRLSRC_SAME:
		log_debug("crl-url %s ([ca %s]): the same CRL; next fetch in %.0f s",
		          url, ca, in_s);
		break;
	default:
		if (have != NULL && crl_next_update(have) != 0 &&
		    crl_next_update(have) <= time(NULL)) {
			crlsrc_time_str(crl_next_update(have), nu, sizeof(nu));
			log_warning("crl-url %s ([ca %s]): %s%s; the CRL in use is "
			            "stale since %s (crl-stale, crl-grace decide); next "
			            "try in %.0f s", url, ca,
			            o == CRLSRC_REFUSED ? "refused: " : "", err, nu, in_s);
		} else {
			log_warning("crl-url %s ([ca %s]): %s%s; %s; next try in %.0f s",
			            url, ca, o == CRLSRC_REFUSED ? "refused: " : "", err,
			            have != NULL ? "the last good CRL stays" :
			            "no CRL yet: its certificates are crl_error where "
			            "CRLs are checked", in_s);
		}
		break;
	}
}

static void *crlsrc_main(void *arg)
{
	struct crlsrc *s = arg;

	pthread_mutex_lock(&s->lock);
	while (!atomic_load(&s->stop)) {
		struct src *x = NULL;
		int64_t now = crlsrc_now_ms();
		char *url, *path, err[PATH_MAX + 512] = "";
		struct ca_entry *ca;
		struct crl *have, *got = NULL;
		enum crlsrc_outcome o;
		int64_t next;
		size_t n;

		for (size_t i = 0; i < s->n; i++)
			if (!s->v[i]->busy && (x == NULL || s->v[i]->due_ms < x->due_ms))
				x = s->v[i];
		if (x == NULL || x->due_ms > now) {
			if (x == NULL) {
				pthread_cond_wait(&s->cv, &s->lock);
			} else {
				struct timespec ts = {
					.tv_sec = (time_t)(x->due_ms / 1000),
					.tv_nsec = (long)(x->due_ms % 1000) * 1000000,
				};

				(void)pthread_cond_timedwait(&s->cv, &s->lock, &ts);
			}
			continue;
		}
		x->busy = 1;
		url = strdup(x->url);
		path = strdup(x->path);
		ca = ca_ref(x->ca);
		have = x->have ? crl_ref(x->have) : NULL;
		pthread_mutex_unlock(&s->lock);

		if (url == NULL || path == NULL) {
			o = CRLSRC_FAILED;
			snprintf(err, sizeof(err), "out of memory");
		} else {
			o = crlsrc_fetch(s, url, path, ca, have,
			                 ca->rev.crl_fetch_timeout_ms, &got, err,
			                 sizeof(err));
		}
		now = crlsrc_now_ms();

		pthread_mutex_lock(&s->lock);
		x = path != NULL ? crlsrc_find(s, path) : NULL;
		next = o == CRLSRC_NEW || o == CRLSRC_SAME ?
		       crlsrc_next_ok(s, ca, got ? got : have, now) : 0;
		if (x != NULL) {
			x->busy = 0;
			x->st.fetches++;
			x->st.last_attempt = (time_t)(now / 1000);
			if (o == CRLSRC_NEW || o == CRLSRC_SAME) {
				x->st.failing = 0;
				x->st.last_success = (time_t)(now / 1000);
				x->st.last_error[0] = '\0';
				if (o == CRLSRC_SAME)
					x->st.unchanged++;
			} else {
				x->st.failing++;
				x->st.failures++;
				if (o == CRLSRC_REFUSED)
					x->st.refused++;
				/* Cut to fit: the log has the whole message. */
				n = strnlen(err, sizeof(x->st.last_error) - 1);
				memcpy(x->st.last_error, err, n);
				x->st.last_error[n] = '\0';
				next = crlsrc_next_fail(s, ca, x->have, x->st.failing, now);
			}
			if (got != NULL) {
				crl_unref(x->have);
				x->have = crl_ref(got);
				x->st.next_update = crl_next_update(got);
				s->written++;
			}
			x->due_ms = next;
			x->st.next_fetch = (time_t)(next / 1000);
			x->initial = 0;
			pthread_cond_broadcast(&s->tried);
		}
		if (next == 0)
			next = now;
		pthread_mutex_unlock(&s->lock);

		if (url != NULL)
			crlsrc_log(o, url, ca->name, got, have, err, next);
		if (o == CRLSRC_NEW && s->changed != NULL)
			s->changed(s->ctx);
		crl_unref(got);
		crl_unref(have);
		ca_unref(ca);
		free(url);
		free(path);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

struct crlsrc *crlsrc_new(crlsrc_changed_fn changed, void *ctx)
{
	struct crlsrc *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;

	if (s == NULL)
		return NULL;
	s->changed = changed;
	s->ctx = ctx;
	s->rng = (uint64_t)crlsrc_now_ms() ^ ((uint64_t)getpid() << 32) ^
	         0x9e3779b97f4a7c15ULL;
	atomic_init(&s->stop, 0);
	pthread_mutex_init(&s->lock, NULL);
	/* Deadlines are realtime: due times are compared with nextUpdate. */
	pthread_condattr_init(&ca);
	pthread_cond_init(&s->cv, &ca);
	pthread_cond_init(&s->tried, NULL);
	pthread_condattr_destroy(&ca);
	if (fetch_global_init() == -1 ||
	    pthread_create(&s->thread, NULL, crlsrc_main, s) != 0) {
		crlsrc_free(s);
		return NULL;
	}
	s->started = 1;
	return s;
}

unsigned int crlsrc_initial_budget(struct crlsrc *s)
{
	unsigned int max = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i]->initial && s->v[i]->ca->rev.crl_fetch_timeout_ms > max)
			max = s->v[i]->ca->rev.crl_fetch_timeout_ms;
	pthread_mutex_unlock(&s->lock);
	return max;
}

size_t crlsrc_wait_initial(struct crlsrc *s, unsigned int max_ms)
{
	int64_t end = crlsrc_now_ms() + max_ms;
	size_t before;

	pthread_mutex_lock(&s->lock);
	before = s->written;
	for (;;) {
		int pending = 0;
		struct timespec ts = {
			.tv_sec = (time_t)(end / 1000),
			.tv_nsec = (long)(end % 1000) * 1000000,
		};

		for (size_t i = 0; i < s->n; i++)
			pending |= s->v[i]->initial;
		if (!pending || crlsrc_now_ms() >= end)
			break;
		(void)pthread_cond_timedwait(&s->tried, &s->lock, &ts);
	}
	before = s->written - before;
	pthread_mutex_unlock(&s->lock);
	return before;
}

int crlsrc_stat_of(struct crlsrc *s, const char *path, struct crlsrc_stat *out)
{
	struct src *x;

	if (s == NULL)
		return -1;
	pthread_mutex_lock(&s->lock);
	x = crlsrc_find(s, path);
	if (x != NULL)
		*out = x->st;
	pthread_mutex_unlock(&s->lock);
	return x != NULL ? 0 : -1;
}

size_t crlsrc_stats(struct crlsrc *s, struct crlsrc_stat *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->n;
	for (size_t i = 0; i < n && i < max; i++)
		out[i] = s->v[i]->st;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void crlsrc_free(struct crlsrc *s)
{
	if (s == NULL)
		return;
	if (s->started) {
		pthread_mutex_lock(&s->lock);
		atomic_store(&s->stop, 1);
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
	}
	for (size_t i = 0; i < s->n; i++)
		src_free(s->v[i]);
	free(s->v);
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->tried);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
