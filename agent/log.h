/*
 * log.h - leveled logging to stderr, safe from any thread, as text lines
 * or as one JSON object per line.
 */
#ifndef MTLS_LOG_H
#define MTLS_LOG_H

#include <stddef.h>
#include <time.h>

#include "config.h"

/* Longest message (before escaping) and longest line written. */
#define LOG_MSG_MAX 2048
#define LOG_LINE_MAX 4096

/* Current threshold (enum log_level). Messages above it are dropped. */
void log_set_level(int lvl);
int log_get_level(void);

/* Current line format (enum log_format). */
void log_set_format(int fmt);
int log_get_format(void);

void log_msg(int lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One log line for `msg` (msglen bytes, any bytes) at level `lvl` and
 * time `ts`, in format `fmt`, into buf[cap] (cap >= 128), ending with a
 * newline. A message that does not fit is cut, in JSON between two
 * escapes: the line stays one valid JSON object. Pure. Returns the
 * length, newline included (no NUL terminator counted). */
size_t log_format_line(char *buf, size_t cap, int fmt, int lvl,
                       const struct timespec *ts, const char *msg,
                       size_t msglen);

/* The inside of a JSON string (RFC 8259) for src[0..len) into dst[cap]:
 * `"` and `\` escaped, control characters as \n, \t, ... or \u00XX,
 * DEL as \u007f, each byte that is not part of valid UTF-8 as \ufffd;
 * valid UTF-8 is copied. Stops before the first character whose escape
 * does not fit; dst is NUL-terminated (cap >= 1). Pure. Returns the
 * length written; *consumed (may be NULL) gets the input bytes used. */
size_t log_json_escape(char *dst, size_t cap, const char *src, size_t len,
                       size_t *consumed);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_get_level() >= LOG_LVL_DEBUG) \
	log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif /* MTLS_LOG_H */
