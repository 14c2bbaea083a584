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
	const char *state_dir;       /* --state-dir, or NULL: the file's */
	struct agent_settings agent; /* effective settings (config + CLI) */
	/* Given on the command line: a reload keeps them over the file's. */
	int listen_fixed;            /* -l */
	int admin_listen_fixed;      /* --admin-listen */
	int threads_fixed;           /* -t/--threads */
	int log_level_fixed;         /* -v/--log-level */
	int log_format_fixed;        /* --log-format */
};

/* Run until SIGTERM/SIGINT. Takes ownership of `cfg` (may be NULL).
 * Returns the process exit status: 0 after a clean stop, 1 when a
 * listener cannot be opened or threads cannot start. */
SERVER_WUR int server_run(const struct server_opts *o, struct config *cfg);

#endif /* MTLS_SERVER_H */
