/*
 * watch.c - inotify on the directories of a set of paths, debounced.
 *
 * Files are never watched themselves: an editor's write-to-temp + rename,
 * `ln -sf`, and Kubernetes' atomic rename of `..data_tmp` onto `..data`
 * replace the inode, and a watch on the old inode would go quiet. The
 * directory holding each path sees all of those (IN_CREATE, IN_MOVED_TO,
 * IN_DELETE ...) and in-place writes too (IN_CLOSE_WRITE, IN_MODIFY). For a
 * symlink, the directory of every hop of the chain is watched as well, so
 * a target rewritten in place elsewhere is seen. What changed is not
 * examined here: the owner's callback decides whether a reload is due.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "watch.h"

#define WATCH_MASK (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | \
                    IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | \
                    IN_MOVE_SELF | IN_ONLYDIR)

struct watch {
	struct ev_loop *loop;
	ev_io io;
	ev_timer timer;
	int fd;
	double debounce;
	watch_fn fn;
	void *ctx;
	int *wds;               /* live watch descriptors */
	size_t n_wds;
	int warned;             /* a watch could not be added: said once */
};

/* A set of directory names being built for watch_set(). */
struct dirset {
	char **v;
	size_t n;
	int full;
};

/* Add `dir` (taken) unless it is there. */
static void dirset_add(struct dirset *s, char *dir)
{
	char **v;

	if (dir == NULL)
		return;
	for (size_t i = s->n; i > 0; i--) {
		if (strcmp(s->v[i - 1], dir) == 0) {
			free(dir);
			return;
		}
	}
	if (s->n >= WATCH_MAX_DIRS) {
		s->full = 1;
		free(dir);
		return;
	}
	v = realloc(s->v, (s->n + 1) * sizeof(*v));
	if (v == NULL) {
		free(dir);
		return;
	}
	s->v = v;
	s->v[s->n++] = dir;
}

static char *parent_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* dir/name, malloc'd (NULL when out of memory). */
static char *path_join(const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = strlen(name);
	char *out = malloc(dl + 1 + nl + 1);

	if (out == NULL)
		return NULL;
	memcpy(out, dir, dl);
	out[dl] = '/';
	memcpy(out + dl + 1, name, nl + 1);
	return out;
}

/* Readlink of `link`, made absolute against the link's directory when
 * relative. NULL when `link` is not a symlink. */
static char *link_target(const char *link)
{
	char buf[PATH_MAX], *dir, *out;
	ssize_t n = readlink(link, buf, sizeof(buf) - 1);

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	if (buf[0] == '/')
		return strdup(buf);
	dir = parent_of(link);
	if (dir == NULL)
		return NULL;
	out = path_join(dir, buf);
	free(dir);
	return out;
}

/* The real path of the last parent directory dirs_for() resolved: the
 * paths of one directory (the API's 1,000 PEM files) come together, and
 * realpath() is a readlink per component. */
struct parent_real {
	char *dir;
	char *real;
};

static const char *parent_real(struct parent_real *pr, const char *dir)
{
	char real[PATH_MAX];

	if (pr->dir != NULL && strcmp(pr->dir, dir) == 0)
		return pr->real;
	free(pr->dir);
	free(pr->real);
	pr->dir = strdup(dir);
	pr->real = realpath(dir, real) != NULL ? strdup(real) : NULL;
	if (pr->dir == NULL || pr->real == NULL) {
		free(pr->dir);
		free(pr->real);
		pr->dir = pr->real = NULL;
		return NULL;
	}
	return pr->real;
}

/* The last component of `path` when it names an entry of its parent
 * directory ("", "." and ".." do not), else NULL. */
static const char *plain_name(const char *path)
{
	const char *base = strrchr(path, '/');

	if (base == NULL || base[1] == '\0' || strcmp(base + 1, ".") == 0 ||
	    strcmp(base + 1, "..") == 0)
		return NULL;
	return base + 1;
}

/* The directories to watch for one path: its parent, itself when it is
 * a directory, the parent of every symlink hop, and the real path's. */
static void dirs_for(struct dirset *s, const char *path, struct parent_real *pr)
{
	char real[PATH_MAX], *cur, *parent = parent_of(path);
	const char *name = plain_name(path), *rp;
	struct stat st;

	if (parent != NULL && name != NULL && lstat(path, &st) == 0 &&
	    !S_ISLNK(st.st_mode) && (rp = parent_real(pr, parent)) != NULL) {
		/* Not a symlink: no hop to follow, and its real path is its
		 * directory's with its name (what realpath() would find). */
		dirset_add(s, parent);
		dirset_add(s, strdup(rp));
		if (S_ISDIR(st.st_mode)) {
			dirset_add(s, strdup(path));
			dirset_add(s, path_join(strcmp(rp, "/") == 0 ? "" : rp, name));
		}
		return;
	}
	dirset_add(s, parent);
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		dirset_add(s, strdup(path));
	cur = strdup(path);
	for (int hop = 0; cur != NULL && hop < WATCH_MAX_HOPS; hop++) {
		char *next;

		if (lstat(cur, &st) == -1 || !S_ISLNK(st.st_mode))
			break;
		next = link_target(cur);
		free(cur);
		cur = next;
		if (cur != NULL)
			dirset_add(s, parent_of(cur));
	}
	free(cur);
	if (realpath(path, real) != NULL) {
		dirset_add(s, parent_of(real));
		if (stat(real, &st) == 0 && S_ISDIR(st.st_mode))
			dirset_add(s, strdup(real));
	}
}

static int has_wd(const int *wds, size_t n, int wd)
{
	for (size_t i = 0; i < n; i++)
		if (wds[i] == wd)
			return 1;
	return 0;
}

/* A watch that could not be added: the first one is a warning. */
static void watch_failed(struct watch *w, const char *dir, int err)
{
	if (err == ENOENT || err == ENOTDIR) {
		log_debug("watch: %s: %s", dir, strerror(err));
		return;
	}
	if (w->warned) {
		log_debug("watch: cannot watch %s: %s", dir, strerror(err));
		return;
	}
	w->warned = 1;
	log_warning("cannot watch %s for changes: %s%s; changes there are "
	            "applied on SIGHUP only (logged once)", dir, strerror(err),
	            err == ENOSPC ? " (raise fs.inotify.max_user_watches)" : "");
}

/* See watch.h. */
size_t watch_set(struct watch *w, const char *const *paths, size_t n)
{
	struct dirset s = { NULL, 0, 0 };
	struct parent_real pr = { NULL, NULL };
	int *wds;
	size_t nw = 0;

	for (size_t i = 0; i < n; i++)
		dirs_for(&s, paths[i], &pr);
	free(pr.dir);
	free(pr.real);
	if (s.full && !w->warned) {
		w->warned = 1;
		log_warning("watch: more than %d directories to watch; the others "
		            "are applied on SIGHUP only (logged once)", WATCH_MAX_DIRS);
	}
	wds = calloc(s.n + 1, sizeof(*wds));
	if (wds == NULL) {
		/* Keep the old watches rather than none. */
		log_error("watch: out of memory; keeping the previous watches");
		nw = w->n_wds;
		goto out;
	}
	for (size_t i = 0; i < s.n; i++) {
		int wd = inotify_add_watch(w->fd, s.v[i], WATCH_MASK);

		if (wd == -1)
			watch_failed(w, s.v[i], errno);
		else if (!has_wd(wds, nw, wd))
			wds[nw++] = wd;
	}
	for (size_t i = 0; i < w->n_wds; i++)
		if (!has_wd(wds, nw, w->wds[i]))
			(void)inotify_rm_watch(w->fd, w->wds[i]);
	free(w->wds);
	w->wds = wds;
	w->n_wds = nw;
	log_debug("watch: %zu directories for %zu paths", nw, n);
out:
	for (size_t i = 0; i < s.n; i++)
		free(s.v[i]);
	free(s.v);
	return nw;
}

/* The kernel dropped a watch (its directory is gone, or we removed it). */
static void forget_wd(struct watch *w, int wd)
{
	for (size_t i = 0; i < w->n_wds; i++) {
		if (w->wds[i] == wd) {
			w->wds[i] = w->wds[--w->n_wds];
			return;
		}
	}
}

static void watch_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct watch *w = (struct watch *)((char *)io - offsetof(struct watch, io));
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	int changed = 0;

	(void)revents;
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno != EAGAIN)
			log_error("watch: read: %s", strerror(errno));
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->mask & IN_IGNORED)
				forget_wd(w, ev->wd);
			/* IN_IGNORED alone follows our own inotify_rm_watch or a
			 * deletion already reported. IN_Q_OVERFLOW: events were
			 * lost, so look. */
			if (ev->mask & ~(uint32_t)IN_IGNORED)
				changed = 1;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (changed) {
		w->timer.repeat = w->debounce;
		ev_timer_again(loop, &w->timer);
	}
}

static void watch_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct watch *w = (struct watch *)((char *)t - offsetof(struct watch, timer));

	(void)revents;
	ev_timer_stop(loop, t);
	w->fn(w->ctx);
}

/* See watch.h. */
struct watch *watch_new(struct ev_loop *loop, double debounce, watch_fn fn,
                        void *ctx)
{
	struct watch *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd == -1) {
		int e = errno;

		free(w);
		errno = e;
		return NULL;
	}
	w->loop = loop;
	w->debounce = debounce;
	w->fn = fn;
	w->ctx = ctx;
	ev_io_init(&w->io, watch_io_cb, w->fd, EV_READ);
	ev_io_start(loop, &w->io);
	ev_init(&w->timer, watch_timer_cb);
	return w;
}

/* See watch.h. */
void watch_free(struct watch *w)
{
	if (w == NULL)
		return;
	ev_io_stop(w->loop, &w->io);
	ev_timer_stop(w->loop, &w->timer);
	close(w->fd);
	free(w->wds);
	free(w);
}
