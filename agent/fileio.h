/*
 * fileio.h - reading whole files, bounded (CA, CRL and configuration
 * files).
 */
#ifndef MTLS_FILEIO_H
#define MTLS_FILEIO_H

#include <stddef.h>

#define FILEIO_WUR __attribute__((warn_unused_result))

/* Read a whole file of at most `max` bytes into a malloc'd buffer,
 * NUL-terminated (the NUL is not counted in *out_len). A regular file
 * larger than max is refused from its size, before a byte is read.
 * Returns 0, or -1 with errno set (EFBIG when too large, EISDIR for a
 * directory). */
FILEIO_WUR int file_read(const char *path, size_t max, char **out,
                         size_t *out_len);

#endif /* MTLS_FILEIO_H */
