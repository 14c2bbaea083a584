/*
 * fleet.c - the tenant API's objects in etcd (fleet.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <uthash.h>

#include "api.h"
#include "config.h"
#include "etcd.h"
#include "fileio.h"
#include "fleet.h"
#include "log.h"
#include "metrics.h"

#define FLEET_BACKOFF_MIN_MS 100
#define FLEET_BACKOFF_MAX_MS 2000

/* The mod revision of one object as this agent applied it; the
 * transactions of API writes compare against it. Configuration thread
 * only. */
struct fleet_obj {
	char *key;              /* "c/NAME" or "h/PATTERN" */
	int64_t mod;
	UT_hash_handle hh;
};

struct fleet_reject {
	char key[320];
	int64_t revision;
	char why[256];
};

struct fleet {
	struct etcd *etcd;
	struct api *api;
	const struct api_host_ops *ops;
	void *ctx;
	char *prefix;
	size_t plen;
	long timeout_ms;
	char endpoint[272];          /* under lock */

	pthread_t thread;
	int started;
	atomic_int stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;         /* applied moved, or stop */
	int64_t applied;             /* the revision live was built from */
	int state;                   /* METRICS_STORE_* */
	int ready;
	int64_t last_sync;
	struct fleet_reject rejected[FLEET_MAX_REJECTED];
	size_t n_rejected, next_reject;

	struct fleet_obj *objs;      /* configuration thread */
	int synced_once;
};

static void fleet_set_state(struct fleet *f, int state)
{
	pthread_mutex_lock(&f->lock);
	if (f->state != state)
		log_info("store: %s (%s)", metrics_store_state_name(state),
		         etcd_endpoint(f->etcd));
	f->state = state;
	snprintf(f->endpoint, sizeof(f->endpoint), "%s", etcd_endpoint(f->etcd));
	pthread_mutex_unlock(&f->lock);
	metrics_store_state(state);
}

static void fleet_objkey(char *buf, size_t len, int is_host, const char *name)
{
	snprintf(buf, len, "%c/%s", is_host ? 'h' : 'c', name);
}

static void fleet_obj_set(struct fleet *f, int is_host, const char *name,
                          int64_t mod)
{
	char k[320];
	struct fleet_obj *o;

	fleet_objkey(k, sizeof(k), is_host, name);
	HASH_FIND_STR(f->objs, k, o);
	if (mod == 0) {
		if (o != NULL) {
			HASH_DEL(f->objs, o);
			free(o->key);
			free(o);
		}
		return;
	}
	if (o == NULL) {
		o = calloc(1, sizeof(*o));
		if (o == NULL || (o->key = strdup(k)) == NULL) {
			/* Unknown mod: a later write conflicts and retries. */
			free(o);
			return;
		}
		HASH_ADD_KEYPTR(hh, f->objs, o->key, strlen(o->key), o);
	}
	o->mod = mod;
}

static void fleet_objs_clear(struct fleet *f)
{
	struct fleet_obj *o, *tmp;

	HASH_ITER(hh, f->objs, o, tmp) {
		HASH_DEL(f->objs, o);
		free(o->key);
		free(o);
	}
}

int64_t fleet_mod(struct fleet *f, int is_host, const char *name, int64_t *applied)
{
	char k[320];
	struct fleet_obj *o;

	if (applied != NULL) {
		pthread_mutex_lock(&f->lock);
		*applied = f->applied;
		pthread_mutex_unlock(&f->lock);
	}
	fleet_objkey(k, sizeof(k), is_host, name);
	HASH_FIND_STR(f->objs, k, o);
	return o != NULL ? o->mod : 0;
}

/* The object a key names: 1 (is_host, name), 0 not one of ours. */
static int fleet_key(const struct fleet *f, const struct etcd_kv *kv,
                     int *is_host, const char **name)
{
	const char *k = kv->key;

	if (kv->key_len != strlen(kv->key) || kv->key_len < f->plen ||
	    memcmp(k, f->prefix, f->plen) != 0)
		return 0;
	k += f->plen;
	if (strncmp(k, "cas/", 4) == 0 && k[4] != '\0') {
		*is_host = 0;
		*name = k + 4;
		return 1;
	}
	if (strncmp(k, "hosts/", 6) == 0 && k[6] != '\0') {
		*is_host = 1;
		*name = k + 6;
		return 1;
	}
	return 0;
}

/* ---- applying what etcd has ----------------------------------------------- */

struct fleet_apply {
	struct fleet *f;
	struct api_change *ch;
	const struct etcd_kv *const *kv;   /* ch[i]'s key/value */
	const int *is_delete;
	size_t n;
	int full;
	int64_t revision;
	int rc;
};

static void fleet_reject(struct fleet *f, const char *key, int64_t rev,
                         const char *why)
{
	struct fleet_reject *r;

	log_warning("store: rejected %s at revision %lld: %s", key,
	            (long long)rev, why);
	pthread_mutex_lock(&f->lock);
	r = &f->rejected[f->next_reject];
	f->next_reject = (f->next_reject + 1) % FLEET_MAX_REJECTED;
	if (f->n_rejected < FLEET_MAX_REJECTED)
		f->n_rejected++;
	snprintf(r->key, sizeof(r->key), "%s", key);
	r->revision = rev;
	snprintf(r->why, sizeof(r->why), "%s", why);
	pthread_mutex_unlock(&f->lock);
}

/* A key written again (or deleted) is no longer refused. */
static void fleet_unreject(struct fleet *f, const char *key)
{
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < FLEET_MAX_REJECTED; i++)
		if (strcmp(f->rejected[i].key, key) == 0)
			f->rejected[i].key[0] = '\0';
	pthread_mutex_unlock(&f->lock);
}

/* On the configuration thread. */
static void fleet_apply_main(void *arg)
{
	struct fleet_apply *j = arg;
	struct fleet *f = j->f;
	char err[512];
	uint64_t rejected = 0;

	j->rc = api_store_apply(f->api, j->ch, j->n, j->full, j->revision, err,
	                        sizeof(err));
	if (j->rc != 0) {
		log_error("store: revision %lld not applied, the live configuration "
		          "stays: %s", (long long)j->revision, err);
		return;
	}
	if (j->full)
		fleet_objs_clear(f);
	for (size_t i = 0; i < j->n; i++) {
		const struct etcd_kv *kv = j->kv[i];

		fleet_obj_set(f, j->ch[i].is_host, j->ch[i].name,
		              j->is_delete[i] ? 0 : kv->mod_revision);
		fleet_unreject(f, kv->key);
		if (j->ch[i].rejected) {
			fleet_reject(f, kv->key, j->revision, j->ch[i].why);
			rejected++;
		}
	}
	metrics_store_counts(0, rejected, 0);
}

/* Apply kvs (a full range, or one watch message's events) at revision;
 * `direct`: already on the configuration thread. 0 or -1. */
static int fleet_apply(struct fleet *f, const struct etcd_kv *const *kv,
                       const int *is_delete, size_t n, int full,
                       int64_t revision, int direct)
{
	struct fleet_apply j = {
		.f = f, .full = full, .revision = revision, .is_delete = NULL,
	};
	const struct etcd_kv **mine = calloc(n + 1, sizeof(*mine));
	int *del = calloc(n + 1, sizeof(*del));
	int rc = -1, ran = 0;

	j.ch = calloc(n + 1, sizeof(*j.ch));
	if (j.ch == NULL || mine == NULL || del == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		int is_host;
		const char *name;

		if (!fleet_key(f, kv[i], &is_host, &name))
			continue;   /* not an object key: nobody's business */
		/* A key written more than once in one message: the last wins. */
		for (size_t k = 0; k < j.n; k++)
			if (mine[k] != NULL && strcmp(mine[k]->key, kv[i]->key) == 0) {
				memmove(&mine[k], &mine[k + 1], (j.n - k - 1) * sizeof(*mine));
				memmove(&del[k], &del[k + 1], (j.n - k - 1) * sizeof(*del));
				memmove(&j.ch[k], &j.ch[k + 1], (j.n - k - 1) * sizeof(*j.ch));
				j.n--;
				break;
			}
		mine[j.n] = kv[i];
		del[j.n] = is_delete != NULL && is_delete[i];
		j.ch[j.n] = (struct api_change){
			.is_host = is_host, .name = name,
			.value = del[j.n] ? NULL : kv[i]->value,
			.len = del[j.n] ? 0 : kv[i]->value_len,
		};
		j.n++;
	}
	j.kv = mine;
	j.is_delete = del;
	if (j.n == 0 && !full) {
		rc = 0;
		ran = 1;
	} else if (direct) {
		fleet_apply_main(&j);
		rc = j.rc;
		ran = 1;
	} else if (f->ops->run(f->ctx, fleet_apply_main, &j) == 0) {
		rc = j.rc;
		ran = 1;
	}
out:
	if (ran) {
		/* Refused or applied, this revision is behind us: a bad revision
		 * must not stop the watch. (Not when the configuration thread
		 * stopped before running it.) */
		pthread_mutex_lock(&f->lock);
		if (revision > f->applied)
			f->applied = revision;
		f->last_sync = (int64_t)time(NULL);
		f->ready = 1;
		pthread_cond_broadcast(&f->cond);
		pthread_mutex_unlock(&f->lock);
		metrics_store_synced(revision, (int64_t)time(NULL));
	}
	free(j.ch);
	free(mine);
	free(del);
	return rc;
}

/* Range the prefix and, when etcd moved since what is live, apply all of
 * it. 0, or an etcd_rc. */
static int fleet_resync(struct fleet *f, int direct)
{
	struct etcd_kv *kvs = NULL;
	const struct etcd_kv **p;
	size_t n = 0;
	int64_t rev = 0, applied;
	char err[512];
	int rc = etcd_range(f->etcd, f->prefix, &rev, &kvs, &n, err, sizeof(err));

	if (rc != ETCD_OK) {
		log_warning("store: cannot read %s: %s", f->prefix, err);
		return rc;
	}
	pthread_mutex_lock(&f->lock);
	applied = f->applied;
	pthread_mutex_unlock(&f->lock);
	if (f->synced_once && rev == applied) {
		etcd_kvs_free(kvs, n);
		return ETCD_OK;
	}
	p = calloc(n + 1, sizeof(*p));
	if (p == NULL) {
		etcd_kvs_free(kvs, n);
		return ETCD_ERROR;
	}
	for (size_t i = 0; i < n; i++)
		p[i] = &kvs[i];
	if (f->synced_once)
		metrics_store_counts(0, 0, 1);
	log_info("store: loading %zu keys at revision %lld", n, (long long)rev);
	(void)fleet_apply(f, p, NULL, n, 1, rev, direct);
	f->synced_once = 1;
	free(p);
	etcd_kvs_free(kvs, n);
	return ETCD_OK;
}

static int fleet_on_events(void *ctx, int64_t revision,
                           const struct etcd_event *ev, size_t n)
{
	struct fleet *f = ctx;
	const struct etcd_kv **kv = calloc(n + 1, sizeof(*kv));
	int *del = calloc(n + 1, sizeof(*del));

	if (kv == NULL || del == NULL) {
		free(kv);
		free(del);
		return 1;   /* out of memory: drop the watch, resync */
	}
	for (size_t i = 0; i < n; i++) {
		kv[i] = &ev[i].kv;
		del[i] = ev[i].is_delete;
	}
	metrics_store_counts(n, 0, 0);
	(void)fleet_apply(f, kv, del, n, 0, revision, 0);
	free(kv);
	free(del);
	return atomic_load(&f->stop) ? 1 : 0;
}

/* ms from now, for pthread_cond_timedwait on f->cond. */
static struct timespec fleet_deadline(long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Sleep ms unless stopping. */
static void fleet_sleep(struct fleet *f, long ms)
{
	struct timespec ts = fleet_deadline(ms);

	pthread_mutex_lock(&f->lock);
	while (!atomic_load(&f->stop) &&
	       pthread_cond_timedwait(&f->cond, &f->lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&f->lock);
}

static void *fleet_main(void *arg)
{
	struct fleet *f = arg;
	long backoff = FLEET_BACKOFF_MIN_MS;
	int need_range = !f->synced_once;

	while (!atomic_load(&f->stop)) {
		int64_t from, compact = 0;
		char err[512];
		int rc;

		if (need_range) {
			if (fleet_resync(f, 0) != ETCD_OK) {
				fleet_set_state(f, f->synced_once ? METRICS_STORE_RECONNECTING :
				                fleet_ready(f) ? METRICS_STORE_SNAPSHOT :
				                METRICS_STORE_CONNECTING);
				fleet_sleep(f, backoff);
				backoff = backoff * 2 > FLEET_BACKOFF_MAX_MS ?
				          FLEET_BACKOFF_MAX_MS : backoff * 2;
				continue;
			}
			need_range = 0;
		}
		fleet_set_state(f, METRICS_STORE_IN_SYNC);
		pthread_mutex_lock(&f->lock);
		from = f->applied + 1;
		pthread_mutex_unlock(&f->lock);
		rc = etcd_watch(f->etcd, f->prefix, from, fleet_on_events, f, &compact,
		                err, sizeof(err));
		if (rc == ETCD_STOPPED || atomic_load(&f->stop))
			break;
		if (rc == ETCD_COMPACTED) {
			log_warning("store: revision %lld compacted (etcd kept from %lld): "
			            "reading everything again", (long long)from,
			            (long long)compact);
			need_range = 1;
			backoff = FLEET_BACKOFF_MIN_MS;
			continue;
		}
		log_warning("store: watch ended: %s", err);
		fleet_set_state(f, METRICS_STORE_RECONNECTING);
		/* Whatever the watch missed, the range brings. */
		need_range = 1;
		fleet_sleep(f, backoff);
		backoff = backoff * 2 > FLEET_BACKOFF_MAX_MS ? FLEET_BACKOFF_MAX_MS :
		          backoff * 2;
		if (rc == ETCD_OK)
			backoff = FLEET_BACKOFF_MIN_MS;
	}
	return NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

static char *fleet_read_password(const char *path, char *err, size_t errlen)
{
	char buf[1024];
	FILE *fp = fopen(path, "r");
	size_t n;

	if (fp == NULL) {
		snprintf(err, errlen, "[store] password-file %s: %s", path,
		         strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0') {
		snprintf(err, errlen, "[store] password-file %s: empty", path);
		return NULL;
	}
	return strdup(buf);
}

struct fleet *fleet_new(const struct store_settings *s, struct api *api,
                        const struct api_host_ops *ops, void *ctx,
                        char *err, size_t errlen)
{
	struct fleet *f = calloc(1, sizeof(*f));
	char *password = NULL;
	struct etcd_opts eo = { 0 };

	if (f == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->api = api;
	f->ops = ops;
	f->ctx = ctx;
	f->state = METRICS_STORE_CONNECTING;
	f->timeout_ms = (long)store_settings_timeout(s);
	f->prefix = strdup(store_settings_prefix(s));
	if (f->prefix == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	f->plen = strlen(f->prefix);
	if (s->password_file != NULL &&
	    (password = fleet_read_password(s->password_file, err, errlen)) == NULL)
		goto fail;
	eo.endpoints = (const char *const *)s->endpoints;
	eo.n_endpoints = s->n_endpoints;
	eo.ca_file = s->ca_file;
	eo.cert_file = s->cert_file;
	eo.key_file = s->key_file;
	eo.user = s->user;
	eo.password = password;
	eo.timeout_ms = f->timeout_ms;
	f->etcd = etcd_new(&eo, err, errlen);
	if (password != NULL)
		explicit_bzero(password, strlen(password));
	free(password);
	if (f->etcd == NULL)
		goto fail;
	metrics_store_enable();
	metrics_store_state(f->state);
	return f;
fail:
	fleet_free(f);
	return NULL;
}

/* The revision the snapshot at path records, 0 when none. Bounded as the
 * loader bounds the file: a larger one did not load either. */
static int64_t fleet_snapshot(const char *path)
{
	char *buf = NULL;
	size_t n = 0;
	int64_t rev;

	if (path == NULL || file_read(path, CONFIG_MAX_STATE, &buf, &n) != 0)
		return 0;
	rev = api_snapshot_revision(buf, n);
	free(buf);
	return rev;
}

int fleet_start(struct fleet *f, const char *api_path, char *err, size_t errlen)
{
	if (fleet_resync(f, 1) == ETCD_OK) {
		fleet_set_state(f, METRICS_STORE_IN_SYNC);
	} else {
		int64_t snap = fleet_snapshot(api_path);

		if (snap > 0) {
			log_warning("store: etcd unreachable at start: serving the "
			            "snapshot of revision %lld (%s)", (long long)snap,
			            api_path);
			pthread_mutex_lock(&f->lock);
			f->applied = snap;
			f->ready = 1;
			pthread_mutex_unlock(&f->lock);
			metrics_store_synced(snap, 0);
			fleet_set_state(f, METRICS_STORE_SNAPSHOT);
		} else {
			log_warning("store: etcd unreachable at start and no snapshot "
			            "in %s: not ready until etcd answers", api_path);
			fleet_set_state(f, METRICS_STORE_CONNECTING);
		}
	}
	if (pthread_create(&f->thread, NULL, fleet_main, f) != 0) {
		snprintf(err, errlen, "cannot start the store thread");
		return -1;
	}
	f->started = 1;
	return 0;
}

void fleet_stop(struct fleet *f)
{
	if (f == NULL)
		return;
	atomic_store(&f->stop, 1);
	if (f->etcd != NULL)
		etcd_stop(f->etcd);
	pthread_mutex_lock(&f->lock);
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

void fleet_free(struct fleet *f)
{
	if (f == NULL)
		return;
	fleet_stop(f);
	if (f->started)
		pthread_join(f->thread, NULL);
	etcd_free(f->etcd);
	fleet_objs_clear(f);
	free(f->prefix);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

int fleet_ready(struct fleet *f)
{
	int r;

	pthread_mutex_lock(&f->lock);
	r = f->ready;
	pthread_mutex_unlock(&f->lock);
	return r;
}

char *fleet_status_json(struct fleet *f)
{
	json_t *o, *rej = json_array();
	char when[32] = "";
	char *out;

	pthread_mutex_lock(&f->lock);
	if (f->last_sync > 0) {
		struct tm tm;
		time_t t = (time_t)f->last_sync;

		if (gmtime_r(&t, &tm) != NULL)
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	for (size_t i = 0; i < FLEET_MAX_REJECTED; i++) {
		const struct fleet_reject *r = &f->rejected[i];

		if (r->key[0] != '\0')
			json_array_append_new(rej, json_pack("{s:s,s:I,s:s}", "key", r->key,
			                      "revision", (json_int_t)r->revision,
			                      "error", r->why));
	}
	o = json_pack("{s:s,s:s,s:I,s:s,s:o,s:o}", "backend", "etcd",
	              "state", metrics_store_state_name(f->state),
	              "revision", (json_int_t)f->applied,
	              "endpoint", f->endpoint,
	              "last_sync", when[0] != '\0' ? json_string(when) : json_null(),
	              "rejected", rej);
	pthread_mutex_unlock(&f->lock);
	out = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return out;
}

/* ---- API writes ------------------------------------------------------------ */

static char *fleet_full_key(const struct fleet *f, int is_host, const char *name)
{
	size_t n = f->plen + 6 + strlen(name) + 1;
	char *k = malloc(n);

	if (k != NULL)
		snprintf(k, n, "%s%s%s", f->prefix, is_host ? "hosts/" : "cas/", name);
	return k;
}

void fleet_wait(struct fleet *f, int64_t rev)
{
	struct timespec ts = fleet_deadline(f->timeout_ms);

	pthread_mutex_lock(&f->lock);
	while (f->applied < rev && !atomic_load(&f->stop) &&
	       pthread_cond_timedwait(&f->cond, &f->lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&f->lock);
}

int fleet_publish(struct fleet *f, struct api_txn *t, char *err, size_t errlen)
{
	size_t n_cmp = t->n_ops + t->n_need + (t->hosts_since > 0);
	struct etcd_cmp *cmp = calloc(n_cmp + 1, sizeof(*cmp));
	struct etcd_op *ops = calloc(t->n_ops + 1, sizeof(*ops));
	char **keys = calloc(n_cmp + 2, sizeof(*keys));
	size_t nk = 0, nc = 0;
	int64_t rev = 0;
	int rc = API_STORE_ERROR;

	if (cmp == NULL || ops == NULL || keys == NULL)
		goto oom;
	for (size_t i = 0; i < t->n_ops; i++) {
		const struct api_txn_op *o = &t->ops[i];

		if ((keys[nk] = fleet_full_key(f, o->is_host, o->name)) == NULL)
			goto oom;
		/* Unchanged since this agent validated the write on it. */
		cmp[nc++] = (struct etcd_cmp){ .key = keys[nk], .target = ETCD_TARGET_MOD,
		                               .result = ETCD_EQUAL, .value = o->mod };
		ops[i] = (struct etcd_op){ .key = keys[nk], .value = o->value,
		                           .value_len = o->value != NULL ? strlen(o->value) : 0 };
		nk++;
	}
	for (size_t i = 0; i < t->n_need; i++) {
		if ((keys[nk] = fleet_full_key(f, 0, t->need_cas[i])) == NULL)
			goto oom;
		/* The CAs the hosts name still exist when it commits. */
		cmp[nc++] = (struct etcd_cmp){ .key = keys[nk++], .target = ETCD_TARGET_VERSION,
		                               .result = ETCD_GREATER, .value = 0 };
	}
	if (t->hosts_since > 0) {
		/* A CA delete checked that no host uses it: no host changed since. */
		if ((keys[nk] = fleet_full_key(f, 1, "")) == NULL ||
		    (keys[nk + 1] = etcd_prefix_end(keys[nk])) == NULL)
			goto oom;
		cmp[nc++] = (struct etcd_cmp){ .key = keys[nk], .range_end = keys[nk + 1],
		                               .target = ETCD_TARGET_MOD, .result = ETCD_LESS,
		                               .value = t->hosts_since + 1 };
		nk += 2;
	}
	rc = etcd_txn(f->etcd, cmp, nc, ops, t->n_ops, &rev, err, errlen);
	t->revision = rev;
	if (rc == ETCD_OK) {
		fleet_wait(f, rev);
		rc = API_STORE_OK;
	} else if (rc == ETCD_CONFLICT) {
		rc = API_STORE_CONFLICT;
	} else if (rc == ETCD_UNAVAILABLE) {
		rc = API_STORE_UNAVAILABLE;
	} else {
		rc = API_STORE_ERROR;
	}
	goto out;
oom:
	snprintf(err, errlen, "out of memory");
out:
	for (size_t i = 0; keys != NULL && i < nk; i++)
		free(keys[i]);
	free(keys);
	free(cmp);
	free(ops);
	return rc;
}
