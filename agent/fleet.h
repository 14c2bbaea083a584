/*
 * fleet.h - the tenant API's objects in etcd, shared by every agent of a
 * fleet ([store] backend = etcd).
 *
 * One key per object, <prefix>cas/<name> and <prefix>hosts/<pattern>,
 * holding the JSON body the API's PUT takes. At start the agent reads
 * the whole prefix at one revision, then watches from the next one; each
 * change is validated and applied like an API write (api_store_apply),
 * an invalid object is refused and the live version kept. The applied
 * state is written to the state directory as the snapshot a restart
 * serves while etcd is unreachable. API writes become etcd transactions
 * (fleet_publish), conditional on the revisions this agent applied.
 *
 * Threads: one of its own for the range and the watch; it applies
 * through api_host_ops.run on the configuration thread, which is also
 * where fleet_mod is called. fleet_publish and fleet_wait run on admin
 * threads.
 */
#ifndef MTLS_FLEET_H
#define MTLS_FLEET_H

#include <stdint.h>

#include "api.h"
#include "storecfg.h"

#define FLEET_MAX_REJECTED 32   /* kept for /v1/status */

struct fleet;

/* NULL with err (bad settings, unreadable password file). */
struct fleet *fleet_new(const struct store_settings *s, struct api *api,
                        const struct api_host_ops *ops, void *ctx,
                        char *err, size_t errlen);
/* On the configuration thread, before the listeners open: read etcd
 * (bounded by the timeout) and apply it, or fall back on the snapshot
 * `api_path` holds. Then start the watch thread. 0, or -1 (err) when the
 * thread cannot start. */
int fleet_start(struct fleet *f, const char *api_path, char *err, size_t errlen);
/* Any thread: stop watching, wake every fleet_wait. */
void fleet_stop(struct fleet *f);
/* Stop the thread (after the configuration thread stopped running
 * calls) and free. NULL is fine. */
void fleet_free(struct fleet *f);

/* A configuration is live: from etcd, or the snapshot. */
int fleet_ready(struct fleet *f);
/* /v1/status's "store" object, malloc'd JSON text (NULL: OOM). */
char *fleet_status_json(struct fleet *f);

/* What api_host_ops.store_* do (api.h). */
int64_t fleet_mod(struct fleet *f, int is_host, const char *name, int64_t *applied);
int fleet_publish(struct fleet *f, struct api_txn *t, char *err, size_t errlen);
void fleet_wait(struct fleet *f, int64_t rev);

#endif /* MTLS_FLEET_H */
