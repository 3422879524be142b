/*
 * The mitigation worker: one thread that owns the slow side of mitigation
 * for callers that must not block (the detector evaluates every second and
 * a gobgp command takes tens of milliseconds). Requests are copied onto a
 * bounded queue; the thread applies them in order, ticks every second
 * (expired holds, retries) and reconciles at start and every
 * reconcile_interval, so a restart puts the speaker right within seconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/queue.h"
#include "ddos/mitig_int.h"

#define WORKER_QUEUE 4096

enum { JOB_START, JOB_END, JOB_RELEASE };

struct job {
	int kind;
	struct mitig_request req;   /* JOB_START; req.attack_id for JOB_END */
};

struct mitig_worker {
	struct mitig *m;
	struct queue *q;
	pthread_t thread;
	int started;
};

struct mitig_worker *mitig_worker_new(struct mitig *m)
{
	struct mitig_worker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->m = m;
	w->q = queue_new(WORKER_QUEUE);
	if (!w->q) {
		free(w);
		return NULL;
	}
	return w;
}

static int64_t now_s(void)
{
	return clock_now_us() / 1000000;
}

static void *worker_main(void *arg)
{
	struct mitig_worker *w = arg;
	int64_t next_tick = 0, next_reconcile;

	mitig_reconcile(w->m, now_s(), NULL);
	next_reconcile = clock_mono_us() + w->m->cfg.reconcile_interval * 1000000;
	for (;;) {
		void *item = NULL;
		int64_t mono = clock_mono_us();
		int wait = (int)((next_tick - mono) / 1000);
		int rc;

		rc = queue_pop(w->q, &item, wait < 0 ? 0 : wait > 1000 ? 1000 : wait);
		if (rc == M_ECLOSED)
			break;
		if (rc == 0) {
			struct job *j = item;
			if (j->kind == JOB_START) {
				struct mitig_result res;
				mitig_start(w->m, &j->req, now_s(), &res);
			} else if (j->kind == JOB_RELEASE) {
				mitig_release(w->m, j->req.attack_id, now_s(), NULL);
			} else {
				mitig_end(w->m, j->req.attack_id, now_s(), NULL);
			}
			free(j);
		}
		mono = clock_mono_us();
		if (mono >= next_tick) {
			mitig_tick(w->m, now_s());
			next_tick = mono + 1000000;
		}
		if (mono >= next_reconcile) {
			mitig_reconcile(w->m, now_s(), NULL);
			next_reconcile = mono + w->m->cfg.reconcile_interval * 1000000;
		}
	}
	return NULL;
}

int mitig_worker_start(struct mitig_worker *w)
{
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		log_msg(LOG_ERROR, "mitig", "event=thread_failed");
		return M_EIO;
	}
	w->started = 1;
	return M_OK;
}

static int post(struct mitig_worker *w, struct job *j)
{
	int rc = queue_push(w->q, j, 0);

	if (rc < 0) {
		log_msg(LOG_WARN, "mitig", "event=queue_full attack=\"%s\"", j->req.attack_id);
		free(j);
	}
	return rc;
}

int mitig_worker_post_start(struct mitig_worker *w, const struct mitig_request *req)
{
	struct job *j = malloc(sizeof(*j));

	if (!j)
		return M_ENOMEM;
	j->kind = JOB_START;
	j->req = *req;
	return post(w, j);
}

static int post_id(struct mitig_worker *w, int kind, const char *attack_id)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return M_ENOMEM;
	j->kind = kind;
	snprintf(j->req.attack_id, sizeof(j->req.attack_id), "%s", attack_id ? attack_id : "");
	return post(w, j);
}

int mitig_worker_post_end(struct mitig_worker *w, const char *attack_id)
{
	return post_id(w, JOB_END, attack_id);
}

int mitig_worker_post_release(struct mitig_worker *w, const char *attack_id)
{
	return post_id(w, JOB_RELEASE, attack_id);
}

void mitig_worker_free(struct mitig_worker *w)
{
	void *item;

	if (!w)
		return;
	queue_close(w->q);
	if (w->started)
		pthread_join(w->thread, NULL);
	while (queue_pop(w->q, &item, 0) == 0)
		free(item);
	queue_free(w->q);
	free(w);
}
