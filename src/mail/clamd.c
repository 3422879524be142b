/*
 * clamd: INSTREAM, PING and VERSION over a unix or TCP socket. See clamd.h
 * for why and for the protocol.
 *
 * Every socket is non-blocking; each connect, write and read waits in
 * poll() for at most its timeout. The answer is read into a fixed buffer
 * (clamd's answers are one short line) and parsed from its end: a virus
 * name may itself contain ": " or spaces.
 */
#include "mail/clamd.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"

#define REPLY_MAX 1024
#define CHUNK_DEFAULT (64 * 1024)

static int conn_to(const struct clamd_cfg *c)
{
	return c->connect_timeout_ms > 0 ? c->connect_timeout_ms : 2000;
}

static int io_to(const struct clamd_cfg *c)
{
	return c->io_timeout_ms > 0 ? c->io_timeout_ms : 30000;
}

static int wait_fd(int fd, short ev, int ms)
{
	struct pollfd p = {.fd = fd, .events = ev};
	for (;;) {
		int r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r == 0)
			return M_EAGAIN;
		if (errno != EINTR)
			return M_EIO;
	}
}

static int connect_wait(int fd, const struct sockaddr *sa, socklen_t sl,
			int ms)
{
	if (connect(fd, sa, sl) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EAGAIN)
		return M_EIO;
	int r = wait_fd(fd, POLLOUT, ms);
	if (r)
		return r;
	int soerr = 0;
	socklen_t el = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) < 0 || soerr) {
		errno = soerr ? soerr : errno;
		return M_EIO;
	}
	return 0;
}

/* Opens a connection to cfg->addr; the fd or a negative error. */
static int dial(const struct clamd_cfg *c, char *err, size_t errlen)
{
	const char *a = c->addr;
	if (!a || !*a) {
		snprintf(err, errlen, "no clamd address");
		return M_EINVAL;
	}
	int is_unix = a[0] == '/' || strncmp(a, "unix:", 5) == 0;
	if (is_unix) {
		const char *path = a[0] == '/' ? a : a + 5;
		struct sockaddr_un su;
		memset(&su, 0, sizeof(su));
		su.sun_family = AF_UNIX;
		if (strlen(path) >= sizeof(su.sun_path)) {
			snprintf(err, errlen, "socket path too long");
			return M_EINVAL;
		}
		memcpy(su.sun_path, path, strlen(path) + 1);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(err, errlen, "socket: %s", strerror(errno));
			return M_EIO;
		}
		int r = connect_wait(fd, (struct sockaddr *)&su, sizeof(su), conn_to(c));
		if (r) {
			snprintf(err, errlen, "connect %s: %s", path,
				 r == M_EAGAIN ? "timed out" : strerror(errno));
			close(fd);
			return r;
		}
		return fd;
	}
	if (strncmp(a, "tcp:", 4) == 0)
		a += 4;
	char host[256], port[16];
	const char *colon;
	if (a[0] == '[') {
		const char *rb = strchr(a, ']');
		if (!rb || rb[1] != ':') {
			snprintf(err, errlen, "bad clamd address");
			return M_EINVAL;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(rb - a - 1), a + 1);
		colon = rb + 1;
	} else {
		colon = strrchr(a, ':');
		if (!colon) {
			snprintf(err, errlen, "bad clamd address (host:port)");
			return M_EINVAL;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(colon - a), a);
	}
	snprintf(port, sizeof(port), "%s", colon + 1);
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	int gr = getaddrinfo(host, port, &hints, &res);
	if (gr != 0) {
		snprintf(err, errlen, "resolve %.64s: %s", host, gai_strerror(gr));
		return M_EIO;
	}
	int fd = M_EIO;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int s = socket(ai->ai_family,
			       ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (s < 0)
			continue;
		int r = connect_wait(s, ai->ai_addr, ai->ai_addrlen, conn_to(c));
		if (r == 0) {
			fd = s;
			break;
		}
		snprintf(err, errlen, "connect %.64s:%s: %s", host, port,
			 r == M_EAGAIN ? "timed out" : strerror(errno));
		close(s);
		fd = r;
	}
	freeaddrinfo(res);
	return fd;
}

static int send_all(int fd, const void *p, size_t n, int ms)
{
	const char *b = p;
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w > 0) {
			b += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(fd, POLLOUT, ms);
			if (r)
				return r;
			continue;
		}
		return M_EIO;
	}
	return 0;
}

/* Reads the answer until NUL, EOF or the buffer is full. */
static int read_reply(int fd, char *buf, size_t cap, int ms)
{
	size_t n = 0;
	while (n + 1 < cap) {
		int r = wait_fd(fd, POLLIN, ms);
		if (r)
			return r;
		ssize_t got = recv(fd, buf + n, cap - 1 - n, 0);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got < 0) {
			if (n)
				break; /* a reset after the answer */
			return M_EIO;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (memchr(buf + n - (size_t)got, '\0', (size_t)got))
			break;
	}
	buf[n] = '\0';
	/* trim a trailing newline ("n" commands) */
	size_t l = strlen(buf);
	while (l && (buf[l - 1] == '\n' || buf[l - 1] == '\r'))
		buf[--l] = '\0';
	return l ? 0 : M_EIO;
}

/* A one-shot command ("zPING") and its answer. */
static int command(const struct clamd_cfg *c, const char *cmd, char *out,
		   size_t outlen)
{
	char err[160] = "";
	int fd = dial(c, err, sizeof(err));
	if (fd < 0) {
		snprintf(out, outlen, "%s", err);
		return fd;
	}
	int r = send_all(fd, cmd, strlen(cmd) + 1, io_to(c));
	if (r == 0)
		r = read_reply(fd, out, outlen, io_to(c));
	if (r)
		snprintf(out, outlen, "%s", r == M_EAGAIN ? "clamd timed out"
							 : "clamd closed the connection");
	close(fd);
	return r;
}

int clamd_ping(const struct clamd_cfg *cfg, char *err, size_t errlen)
{
	char buf[64];
	int r = command(cfg, "zPING", buf, sizeof(buf));
	if (r) {
		snprintf(err, errlen, "%s", buf);
		return r;
	}
	if (strcmp(buf, "PONG") != 0) {
		snprintf(err, errlen, "unexpected answer to PING");
		return M_EIO;
	}
	return 0;
}

int clamd_version(const struct clamd_cfg *cfg, char *out, size_t outlen)
{
	char buf[256];
	int r = command(cfg, "zVERSION", buf, sizeof(buf));
	snprintf(out, outlen, "%s", buf);
	return r;
}

static void set_err(struct clamd_result *r, enum clamd_status st,
		    const char *msg)
{
	r->status = st;
	snprintf(r->err, sizeof(r->err), "%.150s", msg);
}

/* Parses "stream: OK" / "stream: Name FOUND" / "... ERROR". */
static void parse_reply(char *b, struct clamd_result *r)
{
	size_t l = strlen(b);
	const char *body = b;
	if (strncmp(b, "stream: ", 8) == 0)
		body = b + 8;
	if (l >= 6 && strcmp(b + l - 6, " FOUND") == 0 && body < b + l - 6) {
		r->status = CLAMD_INFECTED;
		snprintf(r->name, sizeof(r->name), "%.*s",
			 (int)(b + l - 6 - body), body);
		return;
	}
	if (strcmp(body, "OK") == 0) {
		r->status = CLAMD_CLEAN;
		return;
	}
	if (strstr(b, "size limit exceeded")) {
		set_err(r, CLAMD_TOOBIG, b);
		return;
	}
	set_err(r, CLAMD_ERROR, b);
}

enum clamd_status clamd_scan(const struct clamd_cfg *cfg, const void *data,
			     size_t len, struct clamd_result *r)
{
	char reply[REPLY_MAX];
	size_t chunk = cfg->chunk ? cfg->chunk : CHUNK_DEFAULT;

	memset(r, 0, sizeof(*r));
	if (chunk > 0x7fffffffu)
		chunk = 0x7fffffffu;
	if (cfg->max_stream && len > cfg->max_stream) {
		snprintf(r->err, sizeof(r->err), "%zu bytes over the %zu-byte limit",
			 len, cfg->max_stream);
		r->status = CLAMD_TOOBIG;
		return r->status;
	}
	int fd = dial(cfg, r->err, sizeof(r->err));
	if (fd < 0) {
		r->status = CLAMD_ERROR;
		return r->status;
	}
	int rc = send_all(fd, "zINSTREAM", 10, io_to(cfg));
	const unsigned char *p = data;
	size_t off = 0;
	while (rc == 0 && off < len) {
		size_t n = len - off < chunk ? len - off : chunk;
		unsigned char hdr[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
					(unsigned char)(n >> 8), (unsigned char)n};
		rc = send_all(fd, hdr, 4, io_to(cfg));
		if (rc == 0)
			rc = send_all(fd, p + off, n, io_to(cfg));
		off += n;
	}
	if (rc == 0)
		rc = send_all(fd, "\0\0\0\0", 4, io_to(cfg));
	/* clamd answers (and may close) as soon as the stream is over its
	 * StreamMaxLength: a failed write is followed by a read of why */
	int rr = read_reply(fd, reply, sizeof(reply), io_to(cfg));
	close(fd);
	if (rr == 0) {
		parse_reply(reply, r);
		return r->status;
	}
	set_err(r, CLAMD_ERROR, rc == M_EAGAIN || rr == M_EAGAIN
					? "clamd timed out"
					: "clamd closed the connection without an answer");
	return r->status;
}
