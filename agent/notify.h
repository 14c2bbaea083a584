/*
 * notify.h - the systemd readiness protocol (sd_notify(3)), spoken
 * directly: a few datagrams on the AF_UNIX socket named by
 * $NOTIFY_SOCKET. Without $NOTIFY_SOCKET every call does nothing.
 *
 * Main thread only. Nothing here blocks or fails the caller: a socket
 * that is full or gone loses the message, and the first failure is
 * logged (later ones at debug level).
 */
#ifndef MTLS_NOTIFY_H
#define MTLS_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Longest datagram sent; a longer STATUS= is cut. */
#define NOTIFY_MAX 1024

/* Read $NOTIFY_SOCKET ("/path" or "@abstract"), unset it so that
 * children do not inherit it, and open the socket. Returns 0 (also when
 * the variable is unset: notifications are then off), or -1 when it is
 * set but unusable (logged; notifications are off). */
int notify_init(void);

/* Close the socket; later calls do nothing until notify_init(). */
void notify_close(void);

/* 1 when notifications are on. */
int notify_enabled(void);

/* Send `msg` (newline-separated VAR=value assignments) as one datagram.
 * Returns 0, or -1 when off or the send failed. A failure is already
 * logged and changes nothing for the agent, so callers may ignore it (no
 * warn_unused_result on purpose). */
int notify_send(const char *msg);

/* READY=1 and STATUS=serving: N CAs, M hosts, generation G (cfg may be
 * NULL: no configuration file). */
void notify_serving(const struct config *cfg, uint64_t gen);

/* READY=1 and STATUS=reload rejected, generation G stays live: WHY. */
void notify_rejected(const char *why, uint64_t gen);

/* RELOADING=1 and MONOTONIC_USEC=<CLOCK_MONOTONIC in microseconds>. */
void notify_reloading(void);

/* STOPPING=1. */
void notify_stopping(void);

/* "STATUS=" + `text` into buf[len], each byte that would end or break the
 * assignment (control characters) replaced by a space, cut to fit.
 * Pure. Returns the length written. */
size_t notify_status_line(char *buf, size_t len, const char *text);

#endif /* MTLS_NOTIFY_H */
