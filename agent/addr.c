/*
 * addr.c - the listen/connect address syntax (see addr.h).
 */
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "addr.h"

/* Longest DNS name (RFC 1035 2.3.4, without the trailing dot). */
#define ADDR_NAME_MAX 253

/* Digits only, 1..65535, into *port. Returns 0 or -1. */
static int addr_port(const char *s, unsigned int *port)
{
	unsigned long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return -1;
	}
	if (v < 1)
		return -1;
	*port = (unsigned int)v;
	return 0;
}

/* The parser behind addr_check and addr_split: on success *kind is set,
 * [*host, *host + *hostlen) is the host or path inside `addr`, and *port
 * the port (0 for unix). Returns NULL, or what is wrong. */
static const char *addr_parse(const char *addr, enum addr_kind *kind,
                              const char **host, size_t *hostlen,
                              unsigned int *port)
{
	const char *colon;

	*port = 0;
	if (strncmp(addr, "unix:", 5) == 0) {
		const char *path = addr + 5;

		if (path[0] != '/')
			return "unix socket path must be absolute (unix:/path)";
		if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return "unix socket path too long";
		*kind = ADDR_UNIX;
		*host = path;
		*hostlen = strlen(path);
		return NULL;
	}
	*kind = ADDR_TCP;
	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');
		char lit[INET6_ADDRSTRLEN + 1];
		struct in6_addr a6;
		size_t n;

		if (rb == NULL)
			return "missing ']' in IPv6 address";
		n = (size_t)(rb - addr - 1);
		if (n == 0 || n >= sizeof(lit))
			return "bad IPv6 address";
		memcpy(lit, addr + 1, n);
		lit[n] = '\0';
		if (inet_pton(AF_INET6, lit, &a6) != 1)
			return "bad IPv6 address";
		if (rb[1] != ':' || addr_port(rb + 2, port) != 0)
			return "expected [IPV6]:PORT with PORT 1..65535";
		*host = addr + 1;
		*hostlen = n;
		return NULL;
	}
	colon = strrchr(addr, ':');
	if (colon == NULL)
		return "expected HOST:PORT, [IPV6]:PORT or unix:/path";
	if (colon == addr)
		return "missing host before ':PORT'";
	if (!(colon == addr + 1 && addr[0] == '*')) {
		for (const char *q = addr; q < colon; q++) {
			if (*q == ':')
				return "IPv6 addresses need brackets: [IPV6]:PORT";
			if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-')
				return "bad character in host";
		}
		if ((size_t)(colon - addr) > ADDR_NAME_MAX)
			return "host name too long";
	}
	if (addr_port(colon + 1, port) != 0)
		return "PORT must be 1..65535";
	*host = addr;
	*hostlen = (size_t)(colon - addr);
	return NULL;
}

/* See addr.h. */
int addr_check(const char *addr, char *err, size_t errlen)
{
	enum addr_kind kind;
	const char *host, *why;
	size_t hostlen;
	unsigned int port;

	why = addr_parse(addr, &kind, &host, &hostlen, &port);
	if (why != NULL) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	return 0;
}

/* See addr.h. */
int addr_split(const char *addr, enum addr_kind *kind,
               char *host, size_t hostlen, char *port, size_t portlen,
               char *err, size_t errlen)
{
	const char *h, *why;
	size_t hl;
	unsigned int pn;
	int n;

	why = addr_parse(addr, kind, &h, &hl, &pn);
	if (why != NULL) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	if (hl >= hostlen) {
		snprintf(err, errlen, "host too long");
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	n = *kind == ADDR_UNIX ? snprintf(port, portlen, "%s", "")
	                       : snprintf(port, portlen, "%u", pn);
	if (n < 0 || (size_t)n >= portlen) {
		snprintf(err, errlen, "port too long");
		return -1;
	}
	return 0;
}

/* See addr.h. */
int addr_resolve(const char *addr, int passive, struct sockaddr_un *sun,
                 struct addrinfo **res, char *err, size_t errlen)
{
	char host[ADDR_HOST_LEN], port[ADDR_PORT_LEN];
	enum addr_kind kind;
	struct addrinfo hints;
	int rc;

	if (addr_split(addr, &kind, host, sizeof(host), port, sizeof(port),
	               err, errlen) != 0)
		return -1;
	if (kind == ADDR_UNIX) {
		memset(sun, 0, sizeof(*sun));
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, host, strlen(host) + 1);
		return ADDR_UNIX;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	if (strcmp(host, "*") == 0)
		rc = getaddrinfo(passive ? NULL : "127.0.0.1", port, &hints, res);
	else
		rc = getaddrinfo(host, port, &hints, res);
	if (rc != 0) {
		snprintf(err, errlen, "%s", gai_strerror(rc));
		return -1;
	}
	return ADDR_TCP;
}
