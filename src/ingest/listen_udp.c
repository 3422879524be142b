/*
 * The UDP listener: one thread per socket, a poll() loop and recvmmsg(), so
 * one system call brings up to UDP_BATCH datagrams. A datagram is a record
 * (RFC 5426); trailing LF, CR and NUL bytes are trimmed. The receive loop
 * never blocks on the pipeline: a batch the pipeline cannot take at once is
 * counted in m_drops and freed (after a short wait, see UDP_SUBMIT_WAIT_MS), because UDP has no way to push back and a
 * stalled socket would lose more in the kernel than we drop here. A large
 * SO_RCVBUF absorbs bursts meanwhile. On stop, the datagrams already in
 * the socket buffer are read and handed over (waiting for the queue then).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "ingest/listen.h"

#define UDP_BATCH 64
#define UDP_MAX_DGRAM 65536
/* Datagrams read before the batch is handed over and stop is checked. */
#define UDP_DRAIN_MAX 4096

struct udp_listener {
	char name[32];
	char addr[64];
	int fd;
	int wake_fd;
	size_t max_line;
	size_t bufsz;               /* per datagram: max_line + 1, capped */
	char *bufs;                 /* UDP_BATCH * bufsz */
	struct mmsghdr msgs[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct sockaddr_storage peers[UDP_BATCH];
	struct ingest_batcher bt;
	pthread_t thread;
	int started;
	long long log_last_us;
};

/* Raises the receive buffer; SO_RCVBUFFORCE passes net.core.rmem_max when
 * we may (CAP_NET_ADMIN), otherwise the kernel caps SO_RCVBUF. */
/* How long a full pipeline queue may hold the receive loop before the batch
 * is dropped and counted. Meanwhile the kernel's receive buffer (udp_rcvbuf)
 * absorbs what arrives, so a short stall loses nothing; dropping at once
 * would lose datagrams the kernel could have kept. */
#define UDP_SUBMIT_WAIT_MS 100

static void udp_set_rcvbuf(struct udp_listener *u, int64_t want)
{
	int v, got = 0;
	socklen_t len = sizeof(got);

	if (want <= 0)
		return;
	v = want > 0x3fffffff ? 0x3fffffff : (int)want;
	if (setsockopt(u->fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	if (getsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &got, &len) == 0 &&
	    got < v)
		log_msg(LOG_INFO, "ingest",
			"event=udp_rcvbuf_capped listener=%s want=%d got=%d "
			"hint=\"raise net.core.rmem_max\"", u->name, v, got);
}

int udp_listener_open(const char *name, const char *addr,
		      const struct ingest_config *cfg, struct pipeline *p,
		      enum raw_format fmt, struct udp_listener **out)
{
	struct udp_listener *u;
	const struct input *in;
	int rc;

	*out = NULL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return M_ENOMEM;
	u->fd = -1;
	u->wake_fd = -1;
	snprintf(u->name, sizeof(u->name), "%s", name);
	snprintf(u->addr, sizeof(u->addr), "%s", addr);
	u->max_line = cfg->max_line > 0 ? (size_t)cfg->max_line : 65536;
	u->bufsz = u->max_line + 1 < UDP_MAX_DGRAM ? u->max_line + 1 :
		   UDP_MAX_DGRAM;
	u->bufs = malloc(UDP_BATCH * u->bufsz);
	u->wake_fd = ingest_wake_fd();
	if (!u->bufs || u->wake_fd < 0) {
		rc = M_ENOMEM;
		goto fail;
	}
	if ((rc = ingest_bind(name, addr, SOCK_DGRAM, &u->fd)) < 0)
		goto fail;
	udp_set_rcvbuf(u, cfg->udp_rcvbuf);
	in = pipeline_add_input(p, name, fmt);
	if (!in) {
		log_msg(LOG_ERROR, "ingest", "event=too_many_inputs input=%s",
			name);
		rc = M_ELIMIT;
		goto fail;
	}
	ingest_batcher_init(&u->bt, p, in, u->max_line, UDP_SUBMIT_WAIT_MS);
	for (int i = 0; i < UDP_BATCH; i++) {
		u->iov[i].iov_base = u->bufs + (size_t)i * u->bufsz;
		u->iov[i].iov_len = u->bufsz;
	}
	*out = u;
	return 0;
fail:
	udp_listener_free(u);
	return rc;
}

/* Turns n received datagrams into records. */
static void udp_take(struct udp_listener *u, int n)
{
	char peer[INGEST_PEER_MAX];

	for (int i = 0; i < n; i++) {
		const char *p = u->iov[i].iov_base;
		size_t len = u->msgs[i].msg_len;
		uint16_t flags = 0;
		size_t plen;

		if (u->msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
			flags |= RAW_F_TRUNCATED;
		while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r' ||
				   p[len - 1] == '\0'))
			len--;
		if (len > u->max_line) {
			len = u->max_line;
			flags |= RAW_F_TRUNCATED;
		}
		if (len == 0)
			continue;
		plen = ingest_peer_text((const struct sockaddr *)&u->peers[i],
					u->msgs[i].msg_hdr.msg_namelen, peer,
					sizeof(peer));
		(void)ingest_batcher_add(&u->bt, p, len, peer, plen, flags);
	}
}

static void udp_prepare(struct udp_listener *u)
{
	for (int i = 0; i < UDP_BATCH; i++) {
		memset(&u->msgs[i], 0, sizeof(u->msgs[i]));
		u->msgs[i].msg_hdr.msg_iov = &u->iov[i];
		u->msgs[i].msg_hdr.msg_iovlen = 1;
		u->msgs[i].msg_hdr.msg_name = &u->peers[i];
		u->msgs[i].msg_hdr.msg_namelen = sizeof(u->peers[i]);
	}
}

/* Reads until the socket is empty (or max datagrams were read). */
static void udp_drain(struct udp_listener *u, int max)
{
	int got = 0;

	while (got < max) {
		int n;

		udp_prepare(u);
		n = recvmmsg(u->fd, u->msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    log_ratelimit(&u->log_last_us, 10000000))
				log_msg(LOG_WARN, "ingest",
					"event=recv_failed listener=%s "
					"err=\"%s\"", u->name, strerror(errno));
			return;
		}
		udp_take(u, n);
		got += n;
		if (n < UDP_BATCH)
			return;
	}
}

static void *udp_thread(void *arg)
{
	struct udp_listener *u = arg;
	struct pollfd pfd[2];

	pfd[0].fd = u->fd;
	pfd[0].events = POLLIN;
	pfd[1].fd = u->wake_fd;
	pfd[1].events = POLLIN;
	for (;;) {
		int n;

		pfd[0].revents = pfd[1].revents = 0;
		n = poll(pfd, 2, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_msg(LOG_ERROR, "ingest",
				"event=poll_failed listener=%s err=\"%s\"",
				u->name, strerror(errno));
			break;
		}
		if (pfd[1].revents)
			break;
		udp_drain(u, UDP_DRAIN_MAX);
		(void)ingest_batcher_flush(&u->bt, UDP_SUBMIT_WAIT_MS);
	}
	/* Stopping: what the socket holds is handed over, waiting if need be
	 * (the batcher now submits with no timeout). */
	u->bt.submit_timeout_ms = -1;
	udp_drain(u, UDP_DRAIN_MAX);
	ingest_batcher_flush(&u->bt, -1);
	return NULL;
}

int udp_listener_start(struct udp_listener *u)
{
	if (pthread_create(&u->thread, NULL, udp_thread, u) != 0) {
		log_msg(LOG_ERROR, "ingest", "event=thread_failed listener=%s",
			u->name);
		return M_EIO;
	}
	pthread_setname_np(u->thread, "mamori-udp");
	u->started = 1;
	log_msg(LOG_INFO, "ingest", "event=listening listener=%s addr=%s",
		u->name, u->addr);
	return 0;
}

int udp_listener_port(const struct udp_listener *u)
{
	return ingest_sock_port(u->fd);
}

const char *udp_listener_name(const struct udp_listener *u)
{
	return u->name;
}

void udp_listener_stop(struct udp_listener *u)
{
	if (u)
		ingest_wake(u->wake_fd);
}

void udp_listener_free(struct udp_listener *u)
{
	if (!u)
		return;
	if (u->started)
		pthread_join(u->thread, NULL);
	ingest_batcher_fini(&u->bt);
	if (u->fd >= 0)
		close(u->fd);
	if (u->wake_fd >= 0)
		close(u->wake_fd);
	free(u->bufs);
	free(u);
}
