/*
 * store.h - the files of the state directory: written so that a crash at
 * any instant leaves either the old or the new content, never a mix.
 *
 *   STATE/api.conf          the API's objects, an ordinary INI file
 *   STATE/pem/<sha256>.pem  the PEM texts it names, content-addressed
 *
 * A file is written to a temporary name in its directory, fsync'ed,
 * renamed over the old one, then the directory is fsync'ed: rename(2) is
 * atomic, and the directory sync makes the new name durable. PEM files
 * are immutable (their name is their digest), so a new api.conf only
 * ever points at files that were durable before it was renamed.
 *
 * No OpenSSL object, no configuration: bytes and paths only.
 */
#ifndef MTLS_STORE_H
#define MTLS_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_WUR __attribute__((warn_unused_result))

#define STORE_PEM_DIR "pem"
/* "pem/" + 64 hex digits + ".pem" + NUL */
#define STORE_PEM_NAME_MAX 73

/* Create `dir` (mode 0750) and dir/pem when missing. Returns 0, or -1
 * with errno set and what failed in err. */
STORE_WUR int store_prepare(const char *dir, char *err, size_t errlen);

/* Durably replace dir/name with `len` bytes of `data` (temp file, fsync,
 * rename, directory fsync). Returns 0, or -1 with the old file intact
 * and the temporary file removed. */
STORE_WUR int store_write_atomic(const char *dir, const char *name,
                                 const void *data, size_t len,
                                 char *err, size_t errlen);

/* Make sure dir/pem/<sha256 of data>.pem exists with `data` and is
 * durable; `rel` receives "pem/<hex>.pem" (STORE_PEM_NAME_MAX bytes).
 * *created is 1 when this call wrote it (so that a refused change can
 * remove it again), 0 when it was already there. */
STORE_WUR int store_put_pem(const char *dir, const void *data, size_t len,
                            char rel[STORE_PEM_NAME_MAX], int *created,
                            char *err, size_t errlen);

/* Remove dir/<rel> (a file store_put_pem created). */
void store_remove(const char *dir, const char *rel);

/* Remove the temporary files a crash left in `dir` itself (not pem/).
 * Only while no write is in progress. Returns the number removed. */
size_t store_clean_tmp(const char *dir);

/* Remove every dir/pem/<hex>.pem for which keep(ctx, "pem/<hex>.pem")
 * returns 0, and stale temporary files. Returns the number removed. */
size_t store_gc(const char *dir, int (*keep)(void *ctx, const char *rel),
                void *ctx);

#endif /* MTLS_STORE_H */
