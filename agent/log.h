/*
 * log.h - leveled logging to stderr, safe from any thread.
 */
#ifndef MTLS_LOG_H
#define MTLS_LOG_H

#include "config.h"

/* Current threshold (enum log_level). Messages above it are dropped. */
void log_set_level(int lvl);
int log_get_level(void);

void log_msg(int lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_get_level() >= LOG_LVL_DEBUG) \
	log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif /* MTLS_LOG_H */
