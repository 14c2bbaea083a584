/*
 * listen.c - listening sockets for the SPOP and admin listeners, from
 * the address syntax of addr.c.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <unistd.h>

#include "addr.h"
#include "listen.h"
#include "log.h"

/* A socket file at a unix listen path is either a live agent's, which we
 * must leave alone, or left behind by one that died (SIGKILL, crash), which
 * would make bind fail. A unix connect() completes or fails at once: a
 * socket that accepts (or whose backlog is full) is live; only one that
 * refuses is stale and removed. Anything other than a socket is left for
 * bind to report. Returns 0, or -1 with a message in err. */
static int unix_reclaim(const char *addr, const struct sockaddr_un *sun,
                        char *err, size_t errlen)
{
	struct stat st;
	int fd, rc, e;

	if (lstat(sun->sun_path, &st) == -1 || !S_ISSOCK(st.st_mode))
		return 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", addr, strerror(errno));
		return -1;
	}
	do
		rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	while (rc == -1 && errno == EINTR);
	e = errno;
	close(fd);
	if (rc == 0 || e == EAGAIN) {
		snprintf(err, errlen, "%s: in use by another process", addr);
		return -1;
	}
	if (e != ECONNREFUSED) {
		snprintf(err, errlen, "%s: cannot tell whether the socket is in use: %s",
		         addr, strerror(e));
		return -1;
	}
	if (unlink(sun->sun_path) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "%s: cannot remove the stale socket: %s", addr,
		         strerror(errno));
		return -1;
	}
	log_info("%s: removed a stale socket", addr);
	return 0;
}

/* See listen.h. */
int listen_open(const char *addr, char *err, size_t errlen)
{
	int fd = -1, one = 1, kind;
	struct addrinfo *res = NULL, *ai;
	struct sockaddr_un sun;
	char why[256];

	kind = addr_resolve(addr, 1, &sun, &res, why, sizeof(why));
	if (kind == -1) {
		snprintf(err, errlen, "%s: %s", addr, why);
		return -1;
	}
	if (kind == ADDR_UNIX) {
		if (unix_reclaim(addr, &sun, err, errlen) != 0)
			return -1;
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
		    listen(fd, LISTEN_BACKLOG) == -1) {
			snprintf(err, errlen, "%s: %s", addr, strerror(errno));
			if (fd != -1)
				close(fd);
			return -1;
		}
		return fd;
	}
	snprintf(err, errlen, "%s: no usable address", addr);
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, LISTEN_BACKLOG) == 0)
			break;
		snprintf(err, errlen, "%s: %s", addr, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

