/*
 * notify.c - sd_notify(3) without libsystemd.
 *
 * The protocol is one datagram of "VAR=value" lines on an AF_UNIX socket
 * whose address systemd passes in $NOTIFY_SOCKET. Like HAProxy, we write
 * those few lines ourselves instead of linking libsystemd: that would add
 * a run-time dependency for every user, including those without systemd
 * (containers, other init systems), for about fifty lines of code.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addrlen;
static int notify_failed_once;   /* a send failure was logged */

/* See notify.h. */
int notify_init(void)
{
	const char *e = getenv("NOTIFY_SOCKET");
	char path[sizeof(notify_addr.sun_path) + 1];
	size_t n;

	notify_close();
	if (e == NULL)
		return 0;
	/* Copied before unsetenv, which may free the string. */
	n = strlen(e);
	if (n >= sizeof(path)) {
		unsetenv("NOTIFY_SOCKET");
		log_error("NOTIFY_SOCKET is longer than a socket address (%zu bytes): "
		          "not notifying systemd", n);
		return -1;
	}
	memcpy(path, e, n + 1);
	unsetenv("NOTIFY_SOCKET");
	if ((path[0] != '/' && path[0] != '@') || n < 2 ||
	    n > sizeof(notify_addr.sun_path) - (path[0] == '/')) {
		log_error("NOTIFY_SOCKET \"%s\": not an absolute path or @abstract "
		          "name that fits a socket address: not notifying systemd", path);
		return -1;
	}
	memset(&notify_addr, 0, sizeof(notify_addr));
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, path, n);
	if (path[0] == '@') {
		/* Linux abstract namespace: a leading NUL, and the length
		 * says where the name ends (no terminator). */
		notify_addr.sun_path[0] = '\0';
		notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (notify_fd == -1) {
		log_error("NOTIFY_SOCKET: socket: %s: not notifying systemd",
		          strerror(errno));
		return -1;
	}
	return 0;
}

/* See notify.h. */
void notify_close(void)
{
	if (notify_fd != -1)
		close(notify_fd);
	notify_fd = -1;
	notify_failed_once = 0;
}

int notify_enabled(void)
{
	return notify_fd != -1;
}

/* See notify.h. */
int notify_send(const char *msg)
{
	ssize_t n;

	if (notify_fd == -1)
		return -1;
	do
		n = sendto(notify_fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT,
		           (const struct sockaddr *)&notify_addr, notify_addrlen);
	while (n == -1 && errno == EINTR);
	if (n >= 0)
		return 0;
	/* A full queue (EAGAIN) or a vanished socket must not stop the
	 * agent, nor flood its log. */
	if (!notify_failed_once) {
		notify_failed_once = 1;
		log_warning("NOTIFY_SOCKET: cannot notify systemd: %s (further "
		            "failures logged at debug level)", strerror(errno));
	} else {
		log_debug("NOTIFY_SOCKET: cannot notify systemd: %s", strerror(errno));
	}
	return -1;
}

/* See notify.h. */
size_t notify_status_line(char *buf, size_t len, const char *text)
{
	static const char pfx[] = "STATUS=";
	size_t n = 0;

	if (len == 0)
		return 0;
	for (const char *p = pfx; *p != '\0' && n + 1 < len; p++)
		buf[n++] = *p;
	for (const unsigned char *p = (const unsigned char *)text;
	     *p != '\0' && n + 1 < len; p++)
		buf[n++] = *p < 0x20 || *p == 0x7f ? ' ' : (char)*p;
	buf[n] = '\0';
	return n;
}

/* READY=1 and the status `text`. */
static void notify_ready(const char *text)
{
	char msg[NOTIFY_MAX];
	size_t n;

	if (notify_fd == -1)
		return;
	n = (size_t)snprintf(msg, sizeof(msg), "READY=1\n");
	(void)notify_status_line(msg + n, sizeof(msg) - n, text);
	(void)notify_send(msg);
}

/* See notify.h. */
void notify_serving(const struct config *cfg, uint64_t gen)
{
	char text[256];

	if (cfg != NULL)
		snprintf(text, sizeof(text), "serving: %zu CAs, %zu hosts, generation %llu",
		         cfg->n_cas, cfg->n_hosts, (unsigned long long)gen);
	else
		snprintf(text, sizeof(text), "serving without a configuration file "
		         "(no policies), generation %llu", (unsigned long long)gen);
	notify_ready(text);
}

/* See notify.h. */
void notify_rejected(const char *why, uint64_t gen)
{
	char text[NOTIFY_MAX];

	snprintf(text, sizeof(text), "reload rejected, generation %llu stays live: %s",
	         (unsigned long long)gen, why);
	notify_ready(text);
}

/* See notify.h. */
void notify_reloading(void)
{
	char msg[64];
	struct timespec ts;

	if (notify_fd == -1)
		return;
	/* systemd 253+ (Type=notify-reload) requires MONOTONIC_USEC with
	 * RELOADING=1 to tell this reload from a stale message. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ULL +
	         (unsigned long long)ts.tv_nsec / 1000ULL);
	(void)notify_send(msg);
}

/* See notify.h. */
void notify_stopping(void)
{
	(void)notify_send("STOPPING=1");
}
