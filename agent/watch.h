/*
 * watch.h - change notification for a set of paths: Linux inotify on the
 * directories that hold them and on the directories their symlinks point
 * into, so that a rename over a file, a symlink swap and the Kubernetes
 * ConfigMap `..data` switch are all seen. A burst of events becomes one
 * callback, `debounce` seconds after the last event. Runs on one libev
 * loop; knows nothing of what the paths are for.
 */
#ifndef MTLS_WATCH_H
#define MTLS_WATCH_H

#include <stddef.h>
#include <ev.h>

#define WATCH_WUR __attribute__((warn_unused_result))

/* Directories one watcher watches at most (each is an inotify watch,
 * counted against fs.inotify.max_user_watches). */
#define WATCH_MAX_DIRS 4096
/* Symlinks followed from one path. */
#define WATCH_MAX_HOPS 8

struct watch;

typedef void (*watch_fn)(void *ctx);

/* A watcher on `loop` (watching nothing yet) that calls fn(ctx) on the
 * loop `debounce` seconds after the last of a burst of events. Returns
 * NULL with errno set when inotify cannot be had (EMFILE: the
 * fs.inotify.max_user_instances limit). */
WATCH_WUR struct watch *watch_new(struct ev_loop *loop, double debounce,
                                  watch_fn fn, void *ctx);

/* Watch `paths` (files or directories; n may be 0) instead of what was
 * watched before. A directory that cannot be watched is skipped, with a
 * warning the first time (changes there are then only seen on SIGHUP).
 * Returns the number of directories watched. A pending callback stays
 * pending. */
size_t watch_set(struct watch *w, const char *const *paths, size_t n);

void watch_free(struct watch *w);

#endif /* MTLS_WATCH_H */
