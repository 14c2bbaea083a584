/*
 * server.h - listeners, worker threads and the live configuration.
 *
 * The main thread runs an acceptor loop (listeners, signals); each worker
 * thread runs its own libev loop and owns the connections handed to it.
 */
#ifndef MTLS_SERVER_H
#define MTLS_SERVER_H

#include <stddef.h>
#include "config.h"

#define SERVER_WUR __attribute__((warn_unused_result))

struct server_opts {
	const char *config_path;     /* NULL: run without policies */
	struct agent_settings agent; /* effective settings (config + CLI) */
	int log_level_fixed;         /* -v/--log-level given: reloads keep it */
};

/* Run until SIGTERM/SIGINT. Takes ownership of `cfg` (may be NULL).
 * Returns the process exit status: 0 after a clean stop, 1 when a
 * listener cannot be opened or threads cannot start. */
SERVER_WUR int server_run(const struct server_opts *o, struct config *cfg);

/* Parse a listen address ("127.0.0.1:1", "[::1]:1", "*:1", "unix:/p") into
 * a bound, listening, non-blocking socket. Returns the fd, or -1 with a
 * message in err. */
SERVER_WUR int server_listen(const char *addr, char *err, size_t errlen);

/* Split "host:port" / "[v6]:port" / "*:port" / "unix:/path". On success
 * `host` holds the host (brackets removed; empty or "*" for any) and
 * `port` the port as digits; for unix, *is_unix is set and `host` holds
 * the path. Returns 0, or -1 with a message in err. */
SERVER_WUR int server_addr_split(const char *addr, char *host, size_t hostlen,
                                 char *port, size_t portlen, int *is_unix,
                                 char *err, size_t errlen);

/* Resolve an address for listening (`passive`) or connecting. Returns 1
 * for a unix socket (*sun filled), 0 for TCP (*res to free with
 * freeaddrinfo), or -1 with a message in err. */
struct sockaddr_un;
struct addrinfo;
SERVER_WUR int server_addr_resolve(const char *addr, int passive,
                                   struct sockaddr_un *sun,
                                   struct addrinfo **res, char *err,
                                   size_t errlen);

/* Check a listen address's syntax without opening it. Returns 0 or -1. */
SERVER_WUR int server_addr_valid(const char *addr, char *err, size_t errlen);

#endif /* MTLS_SERVER_H */
