/*
 * addr.h - listen and connect addresses: the one parser of the syntax
 * used by `-l`, the `listen` key and `--probe`.
 *
 *   HOST:PORT        HOST an IPv4 literal or a name of letters, digits,
 *                    '.' and '-'
 *   *:PORT           every address when listening, this host when
 *                    connecting
 *   [IPV6]:PORT      an IPv6 literal (inet_pton-checked)
 *   unix:/path       an absolute path, shorter than sun_path
 *
 * PORT is digits only, 1..65535. Error messages say what is wrong and do
 * not repeat the address: the caller names it. No OpenSSL, no libev.
 */
#ifndef MTLS_ADDR_H
#define MTLS_ADDR_H

#include <stddef.h>

#define ADDR_WUR __attribute__((warn_unused_result))

/* Buffer sizes that addr_split() results always fit in. */
#define ADDR_HOST_LEN 256   /* a name (at most 253), a literal or a unix path */
#define ADDR_PORT_LEN 8

enum addr_kind {
	ADDR_TCP = 0,
	ADDR_UNIX,
	ADDR_KIND_COUNT
};

struct sockaddr_un;
struct addrinfo;

/* Check the syntax of `addr` without resolving or opening anything.
 * Returns 0, or -1 with the reason in err. */
ADDR_WUR int addr_check(const char *addr, char *err, size_t errlen);

/* Check and split `addr`. For TCP, `host` holds the host (brackets
 * removed; "*" for any) and `port` the port as digits without leading
 * zeros; for unix, `host` holds the path and `port` is empty. Returns 0
 * with *kind set, or -1 with the reason in err (also when a result does
 * not fit its buffer; ADDR_HOST_LEN and ADDR_PORT_LEN always do). */
ADDR_WUR int addr_split(const char *addr, enum addr_kind *kind,
                        char *host, size_t hostlen, char *port, size_t portlen,
                        char *err, size_t errlen);

/* Check and resolve `addr` for listening (`passive`: "*" is every
 * address) or connecting ("*" is 127.0.0.1). Returns ADDR_UNIX with *sun
 * filled, ADDR_TCP with *res to free with freeaddrinfo(), or -1 with the
 * reason in err. */
ADDR_WUR int addr_resolve(const char *addr, int passive, struct sockaddr_un *sun,
                          struct addrinfo **res, char *err, size_t errlen);

#endif /* MTLS_ADDR_H */
