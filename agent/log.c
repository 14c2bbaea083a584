/*
 * log.c - leveled logging to stderr, as text or JSON lines.
 *
 * Each message is formatted into one buffer and written with a single
 * write(2) so lines from different threads never interleave. Messages
 * carry peer-controlled bytes (SNI, Host, certificate names in debug
 * lines): the JSON form escapes every byte so that a line is always one
 * valid object.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static atomic_int log_level = LOG_LVL_INFO;
static atomic_int log_format = LOG_FMT_TEXT;

void log_set_level(int lvl)
{
	atomic_store(&log_level, lvl);
}

int log_get_level(void)
{
	return atomic_load_explicit(&log_level, memory_order_relaxed);
}

void log_set_format(int fmt)
{
	atomic_store(&log_format, fmt);
}

int log_get_format(void)
{
	return atomic_load_explicit(&log_format, memory_order_relaxed);
}

/* Length of the valid UTF-8 sequence at p[0..n) (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xBF;
	size_t want;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		want = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		want = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		want = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (n < want || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < want; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return want;
}

/* See log.h. */
size_t log_json_escape(char *dst, size_t cap, const char *src, size_t len,
                       size_t *consumed)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)src;
	size_t i = 0, n = 0;

	if (cap == 0) {
		if (consumed)
			*consumed = 0;
		return 0;
	}
	while (i < len) {
		char esc[8];
		const char *out = esc;
		size_t olen, step = 1;
		unsigned char c = p[i];

		switch (c) {
		case '"': out = "\\\""; olen = 2; break;
		case '\\': out = "\\\\"; olen = 2; break;
		case '\n': out = "\\n"; olen = 2; break;
		case '\r': out = "\\r"; olen = 2; break;
		case '\t': out = "\\t"; olen = 2; break;
		case '\b': out = "\\b"; olen = 2; break;
		case '\f': out = "\\f"; olen = 2; break;
		default:
			if (c < 0x20 || c == 0x7f) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 0xf];
				olen = 6;
			} else if ((step = utf8_seq_len(p + i, len - i)) == 0) {
				out = "\\ufffd";
				olen = 6;
				step = 1;
			} else {
				out = (const char *)p + i;
				olen = step;
			}
		}
		if (olen >= cap - n)
			break;
		memcpy(dst + n, out, olen);
		n += olen;
		i += step;
	}
	dst[n] = '\0';
	if (consumed)
		*consumed = i;
	return n;
}

/* See log.h. */
size_t log_format_line(char *buf, size_t cap, int fmt, int lvl,
                       const struct timespec *ts, const char *msg,
                       size_t msglen)
{
	char when[40];
	struct tm tm;
	size_t n, room;
	int r;

	gmtime_r(&ts->tv_sec, &tm);
	n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts->tv_nsec / 1000000L);
	if (fmt == LOG_FMT_JSON) {
		r = snprintf(buf, cap, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"",
		             when, config_log_level_str(lvl));
		n = r > 0 ? (size_t)r : 0;
		/* Room for the closing `"}` and the newline. */
		n += log_json_escape(buf + n, cap - n - 3, msg, msglen, NULL);
		memcpy(buf + n, "\"}\n", 3);
		return n + 3;
	}
	r = snprintf(buf, cap, "%s [%s] ", when, config_log_level_str(lvl));
	n = r > 0 ? (size_t)r : 0;
	room = cap - n - 1;
	if (msglen > room)
		msglen = room;
	memcpy(buf + n, msg, msglen);
	n += msglen;
	buf[n++] = '\n';
	return n;
}

void log_msg(int lvl, const char *fmt, ...)
{
	char msg[LOG_MSG_MAX], line[LOG_LINE_MAX];
	struct timespec ts;
	size_t n;
	int r;
	va_list ap;

	if (lvl > log_get_level())
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	va_start(ap, fmt);
	r = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = r < 0 ? 0 : (size_t)r < sizeof(msg) ? (size_t)r : sizeof(msg) - 1;
	n = log_format_line(line, sizeof(line), log_get_format(), lvl, &ts, msg, n);
	/* A lost log line is not worth failing over; the result is ignored
	 * on purpose. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
