/*
 * probe.h - `mtls-spoa --probe ADDR`: an SPOP health check from the
 * command line (used by container health checks and scripts).
 */
#ifndef MTLS_PROBE_H
#define MTLS_PROBE_H

#include <stddef.h>

/* Connect to `addr`, send a health-check HAPROXY-HELLO and wait up to
 * `timeout_ms` for a valid AGENT-HELLO. Returns 0 when the agent answered
 * correctly, else -1 with the reason in err. */
int probe_run(const char *addr, int timeout_ms, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif /* MTLS_PROBE_H */
