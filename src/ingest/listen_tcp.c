/*
 * TCP and TLS stream listeners: one thread and one libevent base each.
 * Every connection has its own framer (LF or octet counting, detected from
 * its first bytes); records of all connections go into one raw batch per
 * listener, so many quiet senders still make large batches.
 *
 * Latency and batching: a batch is submitted when full, and otherwise when
 * the loop has no more ready I/O (a lowest-priority event made active after
 * each read runs only then) or at the latest FLUSH_MS after its first
 * record (a timer, for loops that are never idle).
 *
 * Backpressure: submitting blocks while the pipeline queue is full. The
 * loop then reads nothing, the kernel buffers fill and TCP pushes back on
 * the senders; nothing read is dropped. Shutdown does not need to cut that
 * wait short: the pipeline keeps draining until after ingest_stop().
 *
 * Stopping drains: what the kernel has acknowledged to a sender is ours,
 * so on stop the listener stops accepting but keeps reading its
 * connections until each has ended, or none has sent anything for
 * DRAIN_QUIET_MS, or DRAIN_MAX_MS have passed; only then are they closed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "ingest/framing.h"
#include "ingest/listen.h"

#define FLUSH_MS 50
#define MAX_SINGLE_READ (64 * 1024)
#define ACCEPT_PAUSE_MS 100
#define DRAIN_TICK_MS 50
#define DRAIN_QUIET_MS 250
#define DRAIN_MAX_MS 5000
/* Priorities: 0 unused, 1 (the default) I/O and timers, 2 the idle flush. */
#define TCP_PRIORITIES 3

struct tcp_listener;

struct tcp_conn {
	struct tcp_listener *l;
	struct bufferevent *bev;
	struct framer fr;
	char peer[INGEST_PEER_MAX];
	size_t peer_len;
	struct tcp_conn *prev, *next;
};

struct tcp_listener {
	char name[32];
	char addr[64];
	int fd;                     /* owned until the evconnlistener takes it */
	int wake_fd;
	int tls;
	SSL_CTX *ssl_ctx;
	size_t max_line;
	int64_t max_conn;
	int64_t idle_timeout;
	struct event_base *base;
	struct evconnlistener *lev;
	struct event *ev_wake, *ev_flush, *ev_timer, *ev_resume, *ev_drain;
	int timer_armed;
	int draining;               /* stop asked: read on, accept nothing */
	int64_t drain_deadline_ms;
	int64_t last_data_ms;       /* end of the last read, while draining */
	struct tcp_conn *conns;
	int64_t n_conns;
	struct ingest_batcher bt;
	pthread_t thread;
	int started;
	long long log_full_us, log_err_us, log_accept_us;
};

/* ---- TLS --------------------------------------------------------------- */

static void tcp_log_ssl(const char *what, const char *file)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	else
		snprintf(buf, sizeof(buf), "unknown error");
	ERR_clear_error();
	log_msg(LOG_ERROR, "ingest", "event=tls_setup_failed step=%s file=%s "
		"err=\"%s\"", what, file ? file : "-", buf);
}

static int tcp_tls_ctx(struct tcp_listener *l, const struct ingest_config *c)
{
	SSL_CTX *ctx;
	STACK_OF(X509_NAME) *cas;

	if (!c->tls_cert || !c->tls_cert[0] || !c->tls_key ||
	    !c->tls_key[0]) {
		log_msg(LOG_ERROR, "ingest", "event=tls_setup_failed "
			"listener=%s err=\"tls_cert and tls_key are required\"",
			l->name);
		return M_EINVAL;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		tcp_log_ssl("context", NULL);
		return M_ENOMEM;
	}
	l->ssl_ctx = ctx;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
			    SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Idle connections keep no read/write buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1) {
		tcp_log_ssl("certificate", c->tls_cert);
		return M_EINVAL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1) {
		tcp_log_ssl("private_key", c->tls_key);
		return M_EINVAL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tcp_log_ssl("key_matches_certificate", c->tls_key);
		return M_EINVAL;
	}
	if (c->tls_ca && c->tls_ca[0]) {
		if (SSL_CTX_load_verify_locations(ctx, c->tls_ca, NULL) != 1) {
			tcp_log_ssl("ca", c->tls_ca);
			return M_EINVAL;
		}
		cas = SSL_load_client_CA_file(c->tls_ca);
		if (cas)
			SSL_CTX_set_client_CA_list(ctx, cas);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
				   SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return 0;
}

/* ---- batching ---------------------------------------------------------- */

static void tcp_flush(struct tcp_listener *l)
{
	if (l->timer_armed) {
		evtimer_del(l->ev_timer);
		l->timer_armed = 0;
	}
	(void)ingest_batcher_flush(&l->bt, -1);
}

static void tcp_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	tcp_flush(arg);
}

/* The framer's record flags are handed to the pipeline as they are. */
_Static_assert(FRAMING_F_TRUNCATED == RAW_F_TRUNCATED, "framing and raw flags differ");
_Static_assert(FRAMING_F_BAD_FRAME == RAW_F_BAD_FRAME, "framing and raw flags differ");

static void tcp_add(struct tcp_listener *l, struct tcp_conn *c,
		    const struct framing_rec *r)
{
	(void)ingest_batcher_add(&l->bt, r->p, r->len, c->peer, c->peer_len,
				 r->flags);
	if (ingest_batcher_pending(&l->bt) && !l->timer_armed) {
		struct timeval tv = { 0, FLUSH_MS * 1000 };

		evtimer_add(l->ev_timer, &tv);
		l->timer_armed = 1;
	}
}

/* ---- connections ------------------------------------------------------- */

static void tcp_conn_free(struct tcp_conn *c)
{
	struct tcp_listener *l = c->l;
	struct framing_rec r;

	/* An unterminated last record is still a record. */
	if (framing_finish(&c->fr, &r) == 1)
		tcp_add(l, c, &r);
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	l->n_conns--;
	if (c->bev)
		bufferevent_free(c->bev);
	framing_fini(&c->fr);
	free(c);
	if (l->draining && l->n_conns == 0)
		event_base_loopbreak(l->base);
}

static void tcp_read_cb(struct bufferevent *bev, void *arg)
{
	struct tcp_conn *c = arg;
	struct tcp_listener *l = c->l;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v[8];
	struct framing_rec r;

	while (evbuffer_get_length(in) > 0) {
		int nv = evbuffer_peek(in, -1, NULL, v, 8);
		size_t used = 0;

		if (nv > 8)
			nv = 8;
		for (int i = 0; i < nv; i++) {
			const char *p = v[i].iov_base;
			size_t n = v[i].iov_len;
			int rc;

			while ((rc = framing_next(&c->fr, &p, &n, &r)) != 0) {
				if (rc == 1) {
					tcp_add(l, c, &r);
				} else if (log_ratelimit(&l->log_err_us,
							 10000000)) {
					log_msg(LOG_WARN, "ingest",
						"event=record_skipped "
						"listener=%s peer=%s err=%s",
						l->name, c->peer, err_str(rc));
				}
			}
			used += v[i].iov_len;
		}
		if (nv <= 0 || evbuffer_drain(in, used) < 0)
			break;
	}
	if (ingest_batcher_pending(&l->bt))
		event_active(l->ev_flush, EV_TIMEOUT, 0);
	/* Taken after any wait in submit, so a drain never mistakes
	 * backpressure for a quiet sender. */
	if (l->draining)
		l->last_data_ms = clock_mono_us() / 1000;
}

static void tcp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct tcp_conn *c = arg;
	struct tcp_listener *l = c->l;

	if (what & BEV_EVENT_TIMEOUT) {
		log_msg(LOG_DEBUG, "ingest", "event=idle_close listener=%s "
			"peer=%s", l->name, c->peer);
	} else if (what & BEV_EVENT_ERROR) {
		unsigned long e = l->tls ? bufferevent_get_openssl_error(bev)
					 : 0;
		char buf[160];

		if (e)
			ERR_error_string_n(e, buf, sizeof(buf));
		else
			snprintf(buf, sizeof(buf), "%s",
				 strerror(EVUTIL_SOCKET_ERROR()));
		if (log_ratelimit(&l->log_err_us, 10000000))
			log_msg(LOG_INFO, "ingest", "event=conn_error "
				"listener=%s peer=%s err=\"%s\"", l->name,
				c->peer, buf);
	} else if (!(what & BEV_EVENT_EOF)) {
		return;   /* BEV_EVENT_CONNECTED: TLS handshake done */
	}
	/* Whatever is still buffered is data received: frame it first. */
	tcp_read_cb(bev, c);
	tcp_conn_free(c);
}

static void tcp_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_listener *l = arg;

	if (l->lev && !l->draining)
		evconnlistener_enable(l->lev);
}

static void tcp_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct tcp_listener *l = arg;
	struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };
	int e = EVUTIL_SOCKET_ERROR();

	/* Out of descriptors: pause accepting instead of spinning. */
	if (log_ratelimit(&l->log_accept_us, 10000000))
		log_msg(LOG_WARN, "ingest", "event=accept_failed listener=%s "
			"err=\"%s\"", l->name, strerror(e));
	evconnlistener_disable(lev);
	evtimer_add(l->ev_resume, &tv);
}

static void tcp_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
			  struct sockaddr *sa, int salen, void *arg)
{
	struct tcp_listener *l = arg;
	struct tcp_conn *c;
	SSL *ssl = NULL;

	if (l->n_conns >= l->max_conn) {
		char peer[INGEST_PEER_MAX];

		ingest_peer_text(sa, (socklen_t)salen, peer, sizeof(peer));
		if (log_ratelimit(&l->log_full_us, 10000000))
			log_msg(LOG_WARN, "ingest", "event=conn_refused "
				"listener=%s peer=%s reason=max_connections "
				"max=%lld", l->name, peer,
				(long long)l->max_conn);
		evutil_closesocket(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto fail;
	c->l = l;
	c->peer_len = ingest_peer_text(sa, (socklen_t)salen, c->peer,
				       sizeof(c->peer));
	framing_init(&c->fr, FRAMING_AUTO, l->max_line);
	if (l->tls) {
		ssl = SSL_new(l->ssl_ctx);
		if (!ssl)
			goto fail;
		c->bev = bufferevent_openssl_socket_new(l->base, fd, ssl,
			BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (!c->bev)
			goto fail;
		/* The bufferevent owns ssl now. */
		ssl = NULL;
		/* Senders that close without close_notify just end. */
		bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	} else {
		c->bev = bufferevent_socket_new(l->base, fd,
						BEV_OPT_CLOSE_ON_FREE);
		if (!c->bev)
			goto fail;
	}
	bufferevent_set_max_single_read(c->bev, MAX_SINGLE_READ);
	bufferevent_setcb(c->bev, tcp_read_cb, NULL, tcp_event_cb, c);
	if (l->idle_timeout > 0) {
		struct timeval tv = { (time_t)l->idle_timeout, 0 };

		bufferevent_set_timeouts(c->bev, &tv, NULL);
	}
	if (bufferevent_enable(c->bev, EV_READ) < 0)
		goto fail;
	c->next = l->conns;
	if (l->conns)
		l->conns->prev = c;
	l->conns = c;
	l->n_conns++;
	return;
fail:
	if (log_ratelimit(&l->log_accept_us, 10000000))
		log_msg(LOG_ERROR, "ingest", "event=conn_setup_failed "
			"listener=%s", l->name);
	if (c && c->bev) {
		bufferevent_free(c->bev);   /* closes fd, frees ssl */
	} else {
		SSL_free(ssl);
		evutil_closesocket(fd);
	}
	if (c)
		framing_fini(&c->fr);
	free(c);
}

/* ---- thread and life cycle --------------------------------------------- */

static void tcp_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_listener *l = arg;
	int64_t now = clock_mono_us() / 1000;

	if (l->n_conns == 0 || now - l->last_data_ms >= DRAIN_QUIET_MS ||
	    now >= l->drain_deadline_ms)
		event_base_loopbreak(l->base);
}

static void tcp_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_listener *l = arg;
	struct timeval tv = { 0, DRAIN_TICK_MS * 1000 };

	l->draining = 1;
	if (l->lev)
		evconnlistener_disable(l->lev);
	if (l->n_conns == 0) {
		event_base_loopbreak(l->base);
		return;
	}
	l->last_data_ms = clock_mono_us() / 1000;
	l->drain_deadline_ms = l->last_data_ms + DRAIN_MAX_MS;
	evtimer_add(l->ev_drain, &tv);
}

static void *tcp_thread(void *arg)
{
	struct tcp_listener *l = arg;

	event_base_dispatch(l->base);
	/* Stopping: accept nothing more, close every peer (their last
	 * unterminated records are kept), hand the batch over. */
	if (l->lev) {
		evconnlistener_free(l->lev);
		l->lev = NULL;
	}
	if (l->n_conns > 0)
		log_msg(LOG_INFO, "ingest", "event=closing_connections "
			"listener=%s count=%lld", l->name,
			(long long)l->n_conns);
	while (l->conns)
		tcp_conn_free(l->conns);
	tcp_flush(l);
	return NULL;
}

int tcp_listener_open(const char *name, const char *addr, int tls,
		      const struct ingest_config *cfg, struct pipeline *p,
		      enum raw_format fmt, struct tcp_listener **out)
{
	struct tcp_listener *l;
	const struct input *in;
	int rc = M_ENOMEM;

	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return M_ENOMEM;
	l->fd = -1;
	snprintf(l->name, sizeof(l->name), "%s", name);
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
	l->tls = tls;
	l->max_line = cfg->max_line > 0 ? (size_t)cfg->max_line : 65536;
	l->max_conn = cfg->max_connections > 0 ? cfg->max_connections : 1000;
	l->idle_timeout = cfg->idle_timeout;
	l->wake_fd = ingest_wake_fd();
	if (l->wake_fd < 0)
		goto fail;
	if (tls && (rc = tcp_tls_ctx(l, cfg)) < 0)
		goto fail;
	if ((rc = ingest_bind(name, addr, SOCK_STREAM, &l->fd)) < 0)
		goto fail;
	rc = M_ENOMEM;
	l->base = event_base_new();
	if (!l->base || event_base_priority_init(l->base, TCP_PRIORITIES) < 0)
		goto fail;
	l->ev_wake = event_new(l->base, l->wake_fd, EV_READ, tcp_wake_cb, l);
	l->ev_flush = event_new(l->base, -1, 0, tcp_flush_cb, l);
	l->ev_timer = evtimer_new(l->base, tcp_flush_cb, l);
	l->ev_resume = evtimer_new(l->base, tcp_resume_cb, l);
	l->ev_drain = event_new(l->base, -1, EV_PERSIST, tcp_drain_cb, l);
	if (!l->ev_wake || !l->ev_flush || !l->ev_timer || !l->ev_resume ||
	    !l->ev_drain)
		goto fail;
	event_priority_set(l->ev_flush, TCP_PRIORITIES - 1);
	if (event_add(l->ev_wake, NULL) < 0)
		goto fail;
	l->lev = evconnlistener_new(l->base, tcp_accept_cb, l,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
				    0, l->fd);
	if (!l->lev)
		goto fail;
	l->fd = -1;   /* the listener owns it */
	evconnlistener_set_error_cb(l->lev, tcp_accept_error_cb);
	in = pipeline_add_input(p, name, fmt);
	if (!in) {
		log_msg(LOG_ERROR, "ingest", "event=too_many_inputs input=%s",
			name);
		rc = M_ELIMIT;
		goto fail;
	}
	ingest_batcher_init(&l->bt, p, in, l->max_line, -1);
	*out = l;
	return 0;
fail:
	if (rc == M_ENOMEM)
		log_msg(LOG_ERROR, "ingest", "event=listener_setup_failed "
			"listener=%s addr=%s", name, addr);
	tcp_listener_free(l);
	return rc;
}

int tcp_listener_start(struct tcp_listener *t)
{
	if (pthread_create(&t->thread, NULL, tcp_thread, t) != 0) {
		log_msg(LOG_ERROR, "ingest", "event=thread_failed listener=%s",
			t->name);
		return M_EIO;
	}
	pthread_setname_np(t->thread, "mamori-tcp");
	t->started = 1;
	log_msg(LOG_INFO, "ingest", "event=listening listener=%s addr=%s%s",
		t->name, t->addr, t->tls ? " tls=1" : "");
	return 0;
}

int tcp_listener_port(const struct tcp_listener *t)
{
	if (t->lev)
		return ingest_sock_port(evconnlistener_get_fd(t->lev));
	return t->fd >= 0 ? ingest_sock_port(t->fd) : M_ENOTFOUND;
}

const char *tcp_listener_name(const struct tcp_listener *t)
{
	return t->name;
}

void tcp_listener_stop(struct tcp_listener *t)
{
	if (t)
		ingest_wake(t->wake_fd);
}

void tcp_listener_free(struct tcp_listener *t)
{
	if (!t)
		return;
	if (t->started)
		pthread_join(t->thread, NULL);
	/* Never started: nothing was accepted, but clean up the same way. */
	if (t->lev)
		evconnlistener_free(t->lev);
	while (t->conns)
		tcp_conn_free(t->conns);
	ingest_batcher_fini(&t->bt);
	if (t->ev_wake)
		event_free(t->ev_wake);
	if (t->ev_flush)
		event_free(t->ev_flush);
	if (t->ev_timer)
		event_free(t->ev_timer);
	if (t->ev_resume)
		event_free(t->ev_resume);
	if (t->ev_drain)
		event_free(t->ev_drain);
	if (t->base)
		event_base_free(t->base);
	if (t->fd >= 0)
		close(t->fd);
	if (t->wake_fd >= 0)
		close(t->wake_fd);
	SSL_CTX_free(t->ssl_ctx);
	free(t);
}
