/*
 * The ingest module's front: its configuration table, start-up (open every
 * listener, binding every socket and loading TLS before any thread runs, so
 * a port in use or a bad certificate fails start-up with one clear log
 * line), shutdown, and the helpers the listeners share (batching records
 * into raw batches, binding, peer addresses).
 */
#include "ingest/ingest.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "ingest/listen.h"

#define INGEST_OFF(f) offsetof(struct ingest_config, f)

const struct conf_keyword ingest_keywords[] = {
	{ "syslog_udp", CONF_ADDR, INGEST_OFF(syslog_udp), 0, 0,
	  "127.0.0.1:5514", 0,
	  "syslog over UDP (RFC 5426), one message a datagram; \"\" disables" },
	{ "syslog_tcp", CONF_ADDR, INGEST_OFF(syslog_tcp), 0, 0,
	  "127.0.0.1:5514", 0,
	  "syslog over TCP, LF or octet-counted framing (RFC 6587), "
	  "detected per connection; \"\" disables" },
	{ "syslog_tls", CONF_ADDR, INGEST_OFF(syslog_tls), 0, 0, "", 0,
	  "syslog over TLS (RFC 5425); needs tls_cert and tls_key; "
	  "\"\" disables" },
	{ "tls_cert", CONF_STR, INGEST_OFF(tls_cert), 0, 0, "", 0,
	  "PEM certificate (chain) of the TLS listener" },
	{ "tls_key", CONF_STR, INGEST_OFF(tls_key), 0, 0, "", 0,
	  "PEM private key of the TLS listener" },
	{ "tls_ca", CONF_STR, INGEST_OFF(tls_ca), 0, 0, "", 0,
	  "PEM CA bundle: when set, TLS clients must present a certificate "
	  "signed by it" },
	{ "json_tcp", CONF_ADDR, INGEST_OFF(json_tcp), 0, 0,
	  "127.0.0.1:5515", 0,
	  "JSON lines over TCP (Suricata EVE, Windows events, generic JSON); "
	  "\"\" disables" },
	{ "json_files", CONF_STRLIST, INGEST_OFF(json_files), 0, 0, NULL, 0,
	  "JSON-lines files to follow like tail -F (read from the start, "
	  "rotation and truncation handled)" },
	{ "files_state", CONF_STR, INGEST_OFF(files_state), 0, 0, "", 0,
	  "file that remembers how far each followed file was read, so a "
	  "restart resumes there; \"\" = read files from the start" },
	{ "max_line", CONF_SIZE, INGEST_OFF(max_line), 256, 16 * 1024 * 1024,
	  "64k", 0,
	  "longest record; longer ones are cut and tagged _truncated" },
	{ "udp_rcvbuf", CONF_SIZE, INGEST_OFF(udp_rcvbuf), 0,
	  1024 * 1024 * 1024, "8M", 0,
	  "socket receive buffer of UDP listeners (absorbs bursts)" },
	{ "max_connections", CONF_INT, INGEST_OFF(max_connections), 1,
	  1000000, "1000", 0,
	  "concurrent connections per TCP/TLS listener; more are closed" },
	{ "idle_timeout", CONF_DURATION, INGEST_OFF(idle_timeout), 0,
	  7 * 86400, "10m", 0,
	  "a TCP/TLS peer silent this long is disconnected (0 = never)" },
	CONF_END
};

#define INGEST_MAX_STREAMS 3

struct ingest {
	struct udp_listener *udp;
	struct tcp_listener *tcp[INGEST_MAX_STREAMS];
	unsigned n_tcp;
	struct follower *follow;
};

/* ---- shared helpers ---------------------------------------------------- */

void ingest_batcher_init(struct ingest_batcher *bt, struct pipeline *p,
			 const struct input *in, size_t max_line,
			 int submit_timeout_ms)
{
	memset(bt, 0, sizeof(*bt));
	bt->p = p;
	bt->in = in;
	bt->submit_timeout_ms = submit_timeout_ms;
	/* A whole record of max_line bytes and its peer always fit. */
	bt->cap_bytes = INGEST_BATCH_BYTES;
	if (bt->cap_bytes < max_line + INGEST_PEER_MAX + 1024)
		bt->cap_bytes = max_line + INGEST_PEER_MAX + 1024;
}

/* Counts a batch that could not be handed over and frees it. */
static void ingest_batcher_drop(struct ingest_batcher *bt, int why)
{
	uint32_t n = bt->b ? bt->b->n : 0;

	if (n && bt->in && bt->in->m_drops)
		metric_add(bt->in->m_drops, n);
	if (n && log_ratelimit(&bt->log_last_us, 10000000))
		log_msg(LOG_WARN, "ingest",
			"event=records_dropped input=%s records=%u reason=%s",
			bt->in ? bt->in->name : "?", n,
			why == M_EAGAIN ? "queue_full" : err_str(why));
	raw_batch_free(bt->b);
	bt->b = NULL;
}

int ingest_batcher_flush(struct ingest_batcher *bt, int timeout_ms)
{
	int rc;

	if (!bt->b || bt->b->n == 0)
		return 0;
	rc = pipeline_submit(bt->p, bt->b, timeout_ms);
	if (rc == 0) {
		bt->b = NULL;
		return 0;
	}
	ingest_batcher_drop(bt, rc);
	return rc;
}

int ingest_batcher_add(struct ingest_batcher *bt, const char *p, size_t n,
		       const char *peer, size_t peer_len, uint16_t flags)
{
	int rc = 0;

	if (bt->b && bt->b->n > 0 && raw_batch_full(bt->b, n + peer_len))
		rc = ingest_batcher_flush(bt, bt->submit_timeout_ms);
	if (!bt->b) {
		bt->b = raw_batch_new(bt->in, INGEST_BATCH_RECS, bt->cap_bytes);
		if (!bt->b) {
			if (bt->in && bt->in->m_drops)
				metric_add(bt->in->m_drops, 1);
			if (log_ratelimit(&bt->log_last_us, 10000000))
				log_msg(LOG_ERROR, "ingest",
					"event=batch_alloc_failed input=%s",
					bt->in ? bt->in->name : "?");
			return M_ENOMEM;
		}
	}
	if (raw_batch_add(bt->b, p, n, peer, peer_len, flags) < 0) {
		/* Cannot happen with a fresh batch sized for max_line. */
		if (bt->in && bt->in->m_drops)
			metric_add(bt->in->m_drops, 1);
		return M_ELIMIT;
	}
	if ((flags & RAW_F_TRUNCATED) && bt->in && bt->in->m_truncated)
		metric_add(bt->in->m_truncated, 1);
	return rc;
}

void ingest_batcher_fini(struct ingest_batcher *bt)
{
	ingest_batcher_flush(bt, -1);
	raw_batch_free(bt->b);
	bt->b = NULL;
}

/* Logs a failed socket call for a listener's address; returns M_EIO. */
static int ingest_bind_error(const char *what, const char *addr)
{
	log_msg(LOG_ERROR, "ingest",
		"event=bind_failed listener=%s addr=%s err=\"%s\"", what, addr,
		strerror(errno));
	return M_EIO;
}

int ingest_bind(const char *what, const char *addr, int socktype, int *fd)
{
	char host[256], port_s[8];
	struct addrinfo hints, *res = NULL;
	int port, s = -1, one = 1, rc = M_EIO, gai;

	*fd = -1;
	if (conf_split_addr(addr, host, sizeof(host), &port) < 0) {
		log_msg(LOG_ERROR, "ingest",
			"event=bad_address listener=%s addr=\"%s\"", what, addr);
		return M_EINVAL;
	}
	snprintf(port_s, sizeof(port_s), "%d", port);
	memset(&hints, 0, sizeof(hints));
	/* "*" means every IPv4 address ("[::]" asks for IPv6). */
	hints.ai_family = strcmp(host, "*") == 0 ? AF_INET : AF_UNSPEC;
	hints.ai_socktype = socktype;
	hints.ai_flags = AI_PASSIVE;
	gai = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port_s,
			  &hints, &res);
	if (gai != 0 || !res) {
		log_msg(LOG_ERROR, "ingest",
			"event=bind_failed listener=%s addr=%s err=\"%s\"", what,
			addr, gai_strerror(gai));
		rc = M_EINVAL;
		goto out;
	}
	s = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC |
		   SOCK_NONBLOCK, res->ai_protocol);
	if (s < 0) {
		rc = ingest_bind_error(what, addr);
		goto out;
	}
	/* Streams may rebind over TIME_WAIT; datagrams must not share a port
	 * (SO_REUSEADDR would let two UDP sockets bind it silently). */
	if (socktype == SOCK_STREAM &&
	    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		rc = ingest_bind_error(what, addr);
		goto out;
	}
	if (res->ai_family == AF_INET6)
		(void)setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				 sizeof(one));
	if (bind(s, res->ai_addr, res->ai_addrlen) < 0 ||
	    (socktype == SOCK_STREAM && listen(s, 512) < 0)) {
		rc = ingest_bind_error(what, addr);
		goto out;
	}
	*fd = s;
	s = -1;
	rc = 0;
out:
	if (s >= 0)
		close(s);
	if (res)
		freeaddrinfo(res);
	return rc;
}

int ingest_sock_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return M_EIO;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return M_EIO;
}

size_t ingest_peer_text(const struct sockaddr *sa, socklen_t len, char *out,
			size_t outsz)
{
	char ip[INET6_ADDRSTRLEN];
	int n = 0;

	if (outsz == 0)
		return 0;
	out[0] = '\0';
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		if (inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip)))
			n = snprintf(out, outsz, "%s:%u", ip,
				     (unsigned)ntohs(s4->sin_port));
	} else if (sa->sa_family == AF_INET6 &&
		   len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip)))
			n = snprintf(out, outsz, "[%s]:%u", ip,
				     (unsigned)ntohs(s6->sin6_port));
	}
	if (n < 0)
		n = 0;
	if ((size_t)n >= outsz)
		n = (int)outsz - 1;
	return (size_t)n;
}

int ingest_wake_fd(void)
{
	return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

void ingest_wake(int fd)
{
	uint64_t one = 1;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_msg(LOG_ERROR, "ingest", "event=wake_failed err=\"%s\"",
			strerror(errno));
}

/* libevent's own warnings go to our log. */
static void ingest_libevent_log(int severity, const char *msg)
{
	char esc[256];

	log_msg(severity >= EVENT_LOG_ERR ? LOG_ERROR :
		severity == EVENT_LOG_WARN ? LOG_WARN : LOG_DEBUG,
		"ingest", "event=libevent msg=\"%s\"",
		log_escape(msg, strlen(msg), esc, sizeof(esc)));
}

static pthread_once_t ingest_once = PTHREAD_ONCE_INIT;

static void ingest_global_init(void)
{
	/* Each base is used by its own thread only; the locks are for
	 * libevent's few global structures. */
	if (evthread_use_pthreads() < 0)
		log_msg(LOG_WARN, "ingest", "event=evthread_init_failed");
	event_set_log_callback(ingest_libevent_log);
}

/* ---- start / stop ------------------------------------------------------ */

static int ingest_enabled(const char *addr)
{
	return addr && addr[0];
}

static void ingest_free_all(struct ingest *g)
{
	if (g->udp)
		udp_listener_stop(g->udp);
	for (unsigned i = 0; i < g->n_tcp; i++)
		tcp_listener_stop(g->tcp[i]);
	if (g->follow)
		follower_stop(g->follow);
	udp_listener_free(g->udp);
	for (unsigned i = 0; i < g->n_tcp; i++)
		tcp_listener_free(g->tcp[i]);
	follower_free(g->follow);
	free(g);
}

int ingest_start(const struct ingest_config *cfg, struct pipeline *p,
		 struct ingest **out)
{
	struct ingest *g;
	int rc;

	*out = NULL;
	pthread_once(&ingest_once, ingest_global_init);
	g = calloc(1, sizeof(*g));
	if (!g)
		return M_ENOMEM;

	/* Open everything first: binding and TLS errors stop start-up. */
	if (ingest_enabled(cfg->syslog_udp) &&
	    (rc = udp_listener_open("syslog_udp", cfg->syslog_udp, cfg, p,
				    RAW_SYSLOG, &g->udp)) < 0)
		goto fail;
	if (ingest_enabled(cfg->syslog_tcp)) {
		rc = tcp_listener_open("syslog_tcp", cfg->syslog_tcp, 0, cfg,
				       p, RAW_SYSLOG, &g->tcp[g->n_tcp]);
		if (rc < 0)
			goto fail;
		g->n_tcp++;
	}
	if (ingest_enabled(cfg->syslog_tls)) {
		rc = tcp_listener_open("syslog_tls", cfg->syslog_tls, 1, cfg,
				       p, RAW_SYSLOG, &g->tcp[g->n_tcp]);
		if (rc < 0)
			goto fail;
		g->n_tcp++;
	}
	if (ingest_enabled(cfg->json_tcp)) {
		rc = tcp_listener_open("json_tcp", cfg->json_tcp, 0, cfg, p,
				       RAW_JSON, &g->tcp[g->n_tcp]);
		if (rc < 0)
			goto fail;
		g->n_tcp++;
	}
	if (cfg->json_files.n > 0 &&
	    (rc = follower_open(&cfg->json_files, cfg, p, &g->follow)) < 0)
		goto fail;

	if (g->udp && (rc = udp_listener_start(g->udp)) < 0)
		goto fail;
	for (unsigned i = 0; i < g->n_tcp; i++)
		if ((rc = tcp_listener_start(g->tcp[i])) < 0)
			goto fail;
	if (g->follow && (rc = follower_start(g->follow)) < 0)
		goto fail;

	log_msg(LOG_INFO, "ingest",
		"event=started syslog_udp=%s syslog_tcp=%s syslog_tls=%s "
		"json_tcp=%s json_files=%zu",
		ingest_enabled(cfg->syslog_udp) ? cfg->syslog_udp : "off",
		ingest_enabled(cfg->syslog_tcp) ? cfg->syslog_tcp : "off",
		ingest_enabled(cfg->syslog_tls) ? cfg->syslog_tls : "off",
		ingest_enabled(cfg->json_tcp) ? cfg->json_tcp : "off",
		cfg->json_files.n);
	*out = g;
	return 0;
fail:
	ingest_free_all(g);
	return rc;
}

void ingest_stop(struct ingest *g)
{
	if (!g)
		return;
	ingest_free_all(g);
	log_msg(LOG_INFO, "ingest", "event=stopped");
}

int ingest_port(const struct ingest *g, const char *name)
{
	if (!g || !name)
		return M_ENOTFOUND;
	if (g->udp && strcmp(udp_listener_name(g->udp), name) == 0)
		return udp_listener_port(g->udp);
	for (unsigned i = 0; i < g->n_tcp; i++)
		if (strcmp(tcp_listener_name(g->tcp[i]), name) == 0)
			return tcp_listener_port(g->tcp[i]);
	return M_ENOTFOUND;
}
