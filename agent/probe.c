/*
 * probe.c - SPOP health check client: HELLO with healthcheck=true, expect
 * a valid AGENT-HELLO. Blocking I/O with poll() deadlines; runs once.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "addr.h"
#include "probe.h"
#include "spop.h"

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Wait for `events` on fd until the deadline. 0 when ready, -1 on timeout. */
static int wait_fd(int fd, short events, long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	long left;
	int r;

	do {
		left = deadline - now_ms();
		if (left <= 0)
			return -1;
		r = poll(&pfd, 1, (int)left);
	} while (r == -1 && errno == EINTR);
	return r > 0 ? 0 : -1;
}

static int probe_connect(const char *addr, long deadline, char *err, size_t errlen)
{
	int fd = -1, kind;
	struct addrinfo *res = NULL, *ai;
	struct sockaddr_un sun;
	char why[256];

	kind = addr_resolve(addr, 0, &sun, &res, why, sizeof(why));
	if (kind == -1) {
		snprintf(err, errlen, "%s: %s", addr, why);
		return -1;
	}
	if (kind == ADDR_UNIX) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd == -1 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
			snprintf(err, errlen, "%s: %s", addr, strerror(errno));
			if (fd != -1)
				close(fd);
			return -1;
		}
		return fd;
	}
	snprintf(err, errlen, "%s: no usable address", addr);
	for (ai = res; ai; ai = ai->ai_next) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
			break;
		snprintf(err, errlen, "%s: %s", addr,
		         soerr ? strerror(soerr) : (errno == EINPROGRESS ? "connect timeout" : strerror(errno)));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* Check the AGENT-HELLO payload: version 2.x and a sane max-frame-size. */
static int check_agent_hello(const struct spop_frame *f, char *err, size_t errlen)
{
	const uint8_t *p = f->payload, *end = f->payload + f->payload_len;
	struct spop_kv kv;
	int have_vsn = 0, have_mfs = 0;

	if (f->type == SPOP_FRAME_AGENT_DISCONNECT) {
		snprintf(err, errlen, "agent answered AGENT-DISCONNECT");
		return -1;
	}
	if (f->type != SPOP_FRAME_AGENT_HELLO) {
		snprintf(err, errlen, "unexpected frame type %u", f->type);
		return -1;
	}
	while (p < end) {
		if (spop_kv_next(&p, end, &kv) != SPOP_RC_OK) {
			snprintf(err, errlen, "malformed AGENT-HELLO");
			return -1;
		}
		if (kv.name_len == 7 && memcmp(kv.name, "version", 7) == 0 &&
		    kv.value.type == SPOP_T_STRING)
			have_vsn = spop_versions_have_v2(kv.value.u.buf.ptr, kv.value.u.buf.len);
		else if (kv.name_len == 14 && memcmp(kv.name, "max-frame-size", 14) == 0 &&
		         (kv.value.type == SPOP_T_UINT32 || kv.value.type == SPOP_T_UINT64) &&
		         kv.value.u.uint >= SPOP_MIN_FRAME_SIZE)
			have_mfs = 1;
	}
	if (!have_vsn || !have_mfs) {
		snprintf(err, errlen, "AGENT-HELLO lacks a 2.x version or a valid max-frame-size");
		return -1;
	}
	return 0;
}

int probe_run(const char *addr, int timeout_ms, char *err, size_t errlen)
{
	uint8_t out[512], in[SPOP_DEFAULT_FRAME_SIZE + SPOP_LEN_PREFIX];
	size_t inlen = 0;
	long deadline = now_ms() + timeout_ms;
	struct spop_wr w;
	struct spop_data vsn = spop_cstr("2.0"), mfs = spop_uint32(SPOP_DEFAULT_FRAME_SIZE);
	struct spop_data caps = spop_cstr(""), hc = spop_bool(1);
	uint8_t *start;
	int fd, rc = -1;

	spop_wr_init(&w, out, sizeof(out));
	start = spop_frame_begin(&w, SPOP_FRAME_HAPROXY_HELLO, SPOP_FLAG_FIN, 0, 0);
	spop_put_kv(&w, "supported-versions", &vsn);
	spop_put_kv(&w, "max-frame-size", &mfs);
	spop_put_kv(&w, "capabilities", &caps);
	spop_put_kv(&w, "healthcheck", &hc);
	if (spop_frame_end(&w, start, SPOP_DEFAULT_FRAME_SIZE) != 0) {
		snprintf(err, errlen, "cannot encode HELLO");
		return -1;
	}
	fd = probe_connect(addr, deadline, err, errlen);
	if (fd == -1)
		return -1;
	if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1 ||
	    wait_fd(fd, POLLOUT, deadline) != 0 ||
	    send(fd, out, (size_t)(w.p - out), MSG_NOSIGNAL) != (ssize_t)(w.p - out)) {
		snprintf(err, errlen, "%s: cannot send HELLO", addr);
		goto out;
	}
	for (;;) {
		const uint8_t *p = in;
		struct spop_frame f;
		enum spop_rc r = spop_frame_decode(&p, in + inlen, SPOP_DEFAULT_FRAME_SIZE, &f);
		ssize_t n;

		if (r == SPOP_RC_OK) {
			rc = check_agent_hello(&f, err, errlen);
			break;
		}
		if (r != SPOP_RC_NEED_MORE) {
			snprintf(err, errlen, "%s: not an SPOP agent (invalid frame)", addr);
			break;
		}
		if (wait_fd(fd, POLLIN, deadline) != 0) {
			snprintf(err, errlen, "%s: no answer within %d ms", addr, timeout_ms);
			break;
		}
		n = recv(fd, in + inlen, sizeof(in) - inlen, 0);
		if (n <= 0) {
			if (n == -1 && (errno == EAGAIN || errno == EINTR))
				continue;
			snprintf(err, errlen, "%s: connection closed before AGENT-HELLO", addr);
			break;
		}
		inlen += (size_t)n;
	}
out:
	close(fd);
	return rc;
}
