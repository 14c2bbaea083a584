/*
 * listen.h - listening sockets (SPOP and admin listeners).
 */
#ifndef MTLS_LISTEN_H
#define MTLS_LISTEN_H

#include <stddef.h>

#define LISTEN_WUR __attribute__((warn_unused_result))

/* listen(2) backlog of every listener. */
#define LISTEN_BACKLOG 1024

/* Open a listen address (syntax in addr.h) as a bound, listening,
 * non-blocking socket. A unix socket of a live process is refused ("in
 * use by another process"); a stale one is replaced. Returns the fd, or
 * -1 with a message naming the address in err. */
LISTEN_WUR int listen_open(const char *addr, char *err, size_t errlen);

#endif /* MTLS_LISTEN_H */
