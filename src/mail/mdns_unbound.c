/*
 * mdns over libunbound: the resolver the milter uses.
 *
 * Why asynchronous underneath a blocking call: each milter connection has its
 * thread and asks one question at a time (SPF is sequential by nature), but a
 * resolver that stops answering must not hold a message longer than the
 * configured bound. Queries go to libunbound's async API; one background
 * thread runs ub_process, and the asking thread waits on its own condition
 * with a deadline. On the deadline the query is cancelled and the answer is
 * TEMPFAIL, which the engines turn into temperror and the milter into 4.x.x.
 * libunbound keeps the cache (positive and negative, by TTL), shared by all
 * threads.
 */
#include "mail/mdns.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unbound.h>
#include <unistd.h>

struct ub {
	struct ub_ctx *ctx;
	unsigned timeout_ms;
	pthread_t thread;
	int stop_pipe[2];
	int thread_started;
};

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int refs;
	int err;
	struct ub_result *result;
};

static void waiter_unref(struct waiter *w)
{
	pthread_mutex_lock(&w->mu);
	int left = --w->refs;
	pthread_mutex_unlock(&w->mu);
	if (left == 0) {
		if (w->result)
			ub_resolve_free(w->result);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		free(w);
	}
}

static void on_answer(void *arg, int err, struct ub_result *result)
{
	struct waiter *w = arg;
	pthread_mutex_lock(&w->mu);
	w->err = err;
	w->result = result;
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	waiter_unref(w);
}

static void *ub_loop(void *arg)
{
	struct ub *u = arg;
	struct pollfd p[2] = {
		{.fd = ub_fd(u->ctx), .events = POLLIN},
		{.fd = u->stop_pipe[0], .events = POLLIN},
	};
	for (;;) {
		int n = poll(p, 2, 1000);
		if (n < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (n > 0 && p[0].revents)
			ub_process(u->ctx);
	}
	return NULL;
}

/* A wire-format name (labels, uncompressed as libunbound stores rdata) into
 * dotted text without the final dot. Returns the bytes consumed or -1. */
static int wire_name(const uint8_t *p, size_t len, char *out, size_t cap)
{
	size_t i = 0, o = 0;
	while (i < len) {
		uint8_t l = p[i++];
		if (l == 0) {
			if (o == 0 && cap > 1)
				out[o++] = '.';
			out[o] = '\0';
			return (int)i;
		}
		if (l > 63 || i + l > len || o + l + 2 > cap)
			return -1;
		if (o > 0)
			out[o++] = '.';
		memcpy(out + o, p + i, l);
		o += l;
		i += l;
	}
	return -1;
}

static int set_text(struct mdns_rr *r, const char *s, size_t len)
{
	r->data = malloc(len + 1);
	if (!r->data)
		return -1;
	memcpy(r->data, s, len);
	r->data[len] = '\0';
	r->len = len;
	return 0;
}

/* One rdata into rr. Returns 0, 1 to skip a malformed record, -1 on memory. */
static int parse_rdata(int type, const uint8_t *d, size_t len, struct mdns_rr *rr)
{
	char name[256];
	memset(rr, 0, sizeof(*rr));
	rr->type = type;
	switch (type) {
	case MDNS_A:
		if (len != 4)
			return 1;
		memcpy(rr->addr, d, 4);
		return 0;
	case MDNS_AAAA:
		if (len != 16)
			return 1;
		memcpy(rr->addr, d, 16);
		return 0;
	case MDNS_MX:
		if (len < 3)
			return 1;
		rr->pref = (unsigned)(d[0] << 8 | d[1]);
		if (wire_name(d + 2, len - 2, name, sizeof(name)) < 0)
			return 1;
		return set_text(rr, name, strlen(name));
	case MDNS_PTR:
	case MDNS_CNAME:
		if (wire_name(d, len, name, sizeof(name)) < 0)
			return 1;
		return set_text(rr, name, strlen(name));
	case MDNS_TXT: {
		/* Character-strings joined without separator (RFC 7208 3.3). */
		char *t = malloc(len + 1);
		if (!t)
			return -1;
		size_t i = 0, o = 0;
		while (i < len) {
			size_t l = d[i++];
			if (i + l > len) {
				free(t);
				return 1;
			}
			memcpy(t + o, d + i, l);
			o += l;
			i += l;
		}
		t[o] = '\0';
		rr->data = t;
		rr->len = o;
		return 0;
	}
	default:
		return 1;
	}
}

static int ub_query(void *impl, const char *name, int type, struct mdns_answer *out)
{
	struct ub *u = impl;
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w)
		return -1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->refs = 2;
	int async_id = 0;
	if (ub_resolve_async(u->ctx, name, type, 1 /* IN */, w, on_answer, &async_id) != 0) {
		w->refs = 1;
		waiter_unref(w);
		return -1;
	}
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += u->timeout_ms / 1000;
	until.tv_nsec += (long)(u->timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while (!w->done) {
		if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT)
			break;
	}
	int done = w->done;
	pthread_mutex_unlock(&w->mu);
	if (!done) {
		/* Cancelled before delivery: the callback never runs, drop its
		 * reference here. Otherwise it has run or is running. */
		if (ub_cancel(u->ctx, async_id) == 0)
			waiter_unref(w);
		waiter_unref(w);
		out->rcode = MDNS_TEMPFAIL;
		return 0;
	}
	int rc = 0;
	struct ub_result *r = w->result;
	if (w->err != 0 || !r) {
		out->rcode = MDNS_TEMPFAIL;
	} else if (r->nxdomain) {
		out->rcode = MDNS_NXDOMAIN;
	} else if (r->rcode != 0) {
		out->rcode = MDNS_TEMPFAIL; /* SERVFAIL, REFUSED, ... */
	} else {
		out->rcode = MDNS_OK;
		size_t n = 0;
		while (r->havedata && r->data[n])
			n++;
		if (n > 0) {
			out->rr = calloc(n, sizeof(*out->rr));
			if (!out->rr) {
				rc = -1;
				goto done;
			}
			for (size_t i = 0; i < n; i++) {
				int pr = parse_rdata(type, (const uint8_t *)r->data[i], (size_t)r->len[i],
						     &out->rr[out->n]);
				if (pr < 0) {
					rc = -1;
					goto done;
				}
				if (pr == 0)
					out->n++;
			}
		}
	}
done:
	waiter_unref(w);
	return rc;
}

static void ub_free_impl(void *impl)
{
	struct ub *u = impl;
	if (u->thread_started) {
		if (write(u->stop_pipe[1], "x", 1) < 0) {
			/* the thread still ends at its next poll timeout */
		}
		pthread_join(u->thread, NULL);
	}
	if (u->stop_pipe[0] >= 0)
		close(u->stop_pipe[0]);
	if (u->stop_pipe[1] >= 0)
		close(u->stop_pipe[1]);
	if (u->ctx)
		ub_ctx_delete(u->ctx);
	free(u);
}

static void on_prefetched(void *arg, int err, struct ub_result *result)
{
	(void)arg;
	(void)err;
	if (result)
		ub_resolve_free(result);
}

static void ub_prefetch(void *impl, const char *name, int type)
{
	struct ub *u = impl;
	int id;
	/* The answer lands in libunbound's cache; a query for the same name
	 * while this one is under way joins it. */
	(void)ub_resolve_async(u->ctx, name, type, 1, NULL, on_prefetched, &id);
}

static const struct mdns_ops ub_ops = {ub_query, ub_free_impl, ub_prefetch};

struct mdns *mdns_unbound_new(const char *forward, unsigned timeout_ms, const char **err)
{
	struct mdns *d = calloc(1, sizeof(*d));
	struct ub *u = calloc(1, sizeof(*u));
	if (!d || !u) {
		free(d);
		free(u);
		*err = "out of memory";
		return NULL;
	}
	u->stop_pipe[0] = u->stop_pipe[1] = -1;
	u->timeout_ms = timeout_ms ? timeout_ms : 5000;
	u->ctx = ub_ctx_create();
	if (!u->ctx) {
		*err = "cannot create a libunbound context";
		goto fail;
	}
	/* Threads, not a forked process, for the async work. */
	if (ub_ctx_async(u->ctx, 1) != 0) {
		*err = "libunbound cannot resolve in a thread";
		goto fail;
	}
	if (forward && *forward) {
		if (ub_ctx_set_fwd(u->ctx, forward) != 0) {
			*err = "bad resolver address (ip or ip@port)";
			goto fail;
		}
	} else if (ub_ctx_resolvconf(u->ctx, NULL) != 0) {
		*err = "cannot read /etc/resolv.conf";
		goto fail;
	}
	if (pipe(u->stop_pipe) != 0) {
		*err = "cannot create a pipe";
		goto fail;
	}
	if (pthread_create(&u->thread, NULL, ub_loop, u) != 0) {
		*err = "cannot start the resolver thread";
		goto fail;
	}
	u->thread_started = 1;
	d->ops = &ub_ops;
	d->impl = u;
	return d;
fail:
	ub_free_impl(u);
	free(d);
	return NULL;
}
