/*
 * store.c - durable, atomic files of the state directory (see store.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "hex.h"
#include "store.h"

/* Temporary files start with this, so that a crash between the write and
 * the rename leaves something store_gc() recognizes and removes. */
#define STORE_TMP_PREFIX ".tmp-"

static int store_mkdir(const char *path, char *err, size_t errlen)
{
	if (mkdir(path, 0750) == 0 || errno == EEXIST) {
		struct stat st;

		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		if (errno == EEXIST)
			errno = ENOTDIR;
	}
	snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
	return -1;
}

int store_prepare(const char *dir, char *err, size_t errlen)
{
	char pem[PATH_MAX];

	if (snprintf(pem, sizeof(pem), "%s/%s", dir, STORE_PEM_DIR) >= (int)sizeof(pem)) {
		errno = ENAMETOOLONG;
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	if (store_mkdir(dir, err, errlen) != 0)
		return -1;
	return store_mkdir(pem, err, errlen);
}

static int store_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Write all of data to fd. */
static int store_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* dir/name -> the directory of the file and its final path. `name` may
 * have one directory part ("pem/x.pem"). */
static int store_paths(const char *dir, const char *name, char *final,
                       char *fdir, char *tmp)
{
	const char *slash = strrchr(name, '/');
	int n;

	if (snprintf(final, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		return -1;
	if (slash == NULL)
		n = snprintf(fdir, PATH_MAX, "%s", dir);
	else
		n = snprintf(fdir, PATH_MAX, "%s/%.*s", dir, (int)(slash - name), name);
	if (n >= PATH_MAX)
		return -1;
	n = snprintf(tmp, PATH_MAX, "%s/" STORE_TMP_PREFIX "%s.XXXXXX", fdir,
	             slash != NULL ? slash + 1 : name);
	return n >= PATH_MAX ? -1 : 0;
}

int store_write_atomic(const char *dir, const char *name, const void *data,
                       size_t len, char *err, size_t errlen)
{
	char final[PATH_MAX], fdir[PATH_MAX], tmp[PATH_MAX];
	int fd, saved;

	if (store_paths(dir, name, final, fdir, tmp) != 0) {
		errno = ENAMETOOLONG;
		snprintf(err, errlen, "%s/%s: path too long", dir, name);
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd == -1) {
		snprintf(err, errlen, "cannot create a file in %s: %s", fdir,
		         strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0640) != 0 || store_write_all(fd, data, len) != 0 ||
	    fsync(fd) != 0) {
		saved = errno;
		close(fd);
		goto fail;
	}
	if (close(fd) != 0) {
		saved = errno;
		goto fail;
	}
	if (rename(tmp, final) != 0) {
		saved = errno;
		goto fail;
	}
	/* The rename is the commit; the directory sync makes it survive a
	 * power loss. If only the sync fails, the new file is in place but
	 * maybe not durable: report it, the caller refuses the change. */
	if (store_sync_dir(fdir) != 0) {
		snprintf(err, errlen, "cannot sync %s: %s", fdir, strerror(errno));
		return -1;
	}
	return 0;
fail:
	unlink(tmp);
	snprintf(err, errlen, "cannot write %s: %s", final, strerror(saved));
	errno = saved;
	return -1;
}

int store_put_pem(const char *dir, const void *data, size_t len,
                  char rel[STORE_PEM_NAME_MAX], int *created, char *err,
                  size_t errlen)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char path[PATH_MAX];
	struct stat st;

	*created = 0;
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32) {
		snprintf(err, errlen, "cannot hash a PEM text");
		return -1;
	}
	memcpy(rel, STORE_PEM_DIR "/", 4);
	hex_encode(md, 32, rel + 4);
	memcpy(rel + 68, ".pem", 5);
	if (snprintf(path, sizeof(path), "%s/%s", dir, rel) >= (int)sizeof(path)) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	/* Same name, same bytes: the digest is the name. A file of the right
	 * size is taken as written by an earlier change (a torn one would be
	 * a temporary file, never this name). */
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len)
		return 0;
	if (store_write_atomic(dir, rel, data, len, err, errlen) != 0)
		return -1;
	*created = 1;
	return 0;
}

void store_remove(const char *dir, const char *rel)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", dir, rel) < (int)sizeof(path))
		(void)unlink(path);
}

/* "<64 hex>.pem" */
static int store_is_pem_name(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return strcmp(s + 64, ".pem") == 0;
}

size_t store_clean_tmp(const char *dir)
{
	struct dirent *de;
	size_t removed = 0;
	DIR *d = opendir(dir);

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, STORE_TMP_PREFIX, strlen(STORE_TMP_PREFIX)) == 0 &&
		    unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
	closedir(d);
	return removed;
}

size_t store_gc(const char *dir, int (*keep)(void *ctx, const char *rel),
                void *ctx)
{
	char pdir[PATH_MAX], rel[STORE_PEM_NAME_MAX + 8];
	struct dirent *de;
	size_t removed = 0;
	DIR *d;

	if (snprintf(pdir, sizeof(pdir), "%s/%s", dir, STORE_PEM_DIR) >= (int)sizeof(pdir))
		return 0;
	d = opendir(pdir);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		int tmp = strncmp(de->d_name, STORE_TMP_PREFIX,
		                  strlen(STORE_TMP_PREFIX)) == 0;

		if (!tmp && !store_is_pem_name(de->d_name))
			continue;   /* not ours: leave it */
		snprintf(rel, sizeof(rel), "%s/%.64s.pem", STORE_PEM_DIR, de->d_name);
		if (!tmp && keep(ctx, rel))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}
