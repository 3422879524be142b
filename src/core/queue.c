/*
 * Bounded MPMC pointer queue: a ring under one mutex with "not empty" and
 * "not full" condition variables. Items are batches, so the lock is taken a
 * few thousand times a second, not per event.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "core/err.h"
#include "core/queue.h"

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	void **ring;
	size_t cap, head, count;
	int closed;
};

struct queue *queue_new(size_t capacity)
{
	struct queue *q;
	pthread_condattr_t ca;

	if (capacity == 0)
		return NULL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->ring = calloc(capacity, sizeof(void *));
	if (!q->ring) {
		free(q);
		return NULL;
	}
	q->cap = capacity;
	pthread_mutex_init(&q->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->not_empty, &ca);
	pthread_cond_init(&q->not_full, &ca);
	pthread_condattr_destroy(&ca);
	return q;
}

void queue_free(struct queue *q)
{
	if (!q)
		return;
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	free(q->ring);
	free(q);
}

static void deadline(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Waits on cv until pred holds; 0, or M_EAGAIN on timeout. */
static int wait_on(struct queue *q, pthread_cond_t *cv, int timeout_ms,
		   const struct timespec *ts)
{
	if (timeout_ms == 0)
		return M_EAGAIN;
	if (timeout_ms < 0) {
		pthread_cond_wait(cv, &q->lock);
		return 0;
	}
	if (pthread_cond_timedwait(cv, &q->lock, ts) == ETIMEDOUT)
		return M_EAGAIN;
	return 0;
}

int queue_push(struct queue *q, void *item, int timeout_ms)
{
	struct timespec ts;
	int r = 0;

	if (timeout_ms > 0)
		deadline(&ts, timeout_ms);
	pthread_mutex_lock(&q->lock);
	while (!q->closed && q->count == q->cap) {
		if ((r = wait_on(q, &q->not_full, timeout_ms, &ts)) < 0)
			goto out;
	}
	if (q->closed) {
		r = M_ECLOSED;
		goto out;
	}
	q->ring[(q->head + q->count) % q->cap] = item;
	q->count++;
	pthread_cond_signal(&q->not_empty);
out:
	pthread_mutex_unlock(&q->lock);
	return r;
}

int queue_pop(struct queue *q, void **item, int timeout_ms)
{
	struct timespec ts;
	int r = 0;

	if (timeout_ms > 0)
		deadline(&ts, timeout_ms);
	pthread_mutex_lock(&q->lock);
	while (q->count == 0) {
		if (q->closed) {
			r = M_ECLOSED;
			goto out;
		}
		if ((r = wait_on(q, &q->not_empty, timeout_ms, &ts)) < 0)
			goto out;
	}
	*item = q->ring[q->head];
	q->head = (q->head + 1) % q->cap;
	q->count--;
	pthread_cond_signal(&q->not_full);
out:
	pthread_mutex_unlock(&q->lock);
	return r;
}

void queue_close(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = 1;
	pthread_cond_broadcast(&q->not_empty);
	pthread_cond_broadcast(&q->not_full);
	pthread_mutex_unlock(&q->lock);
}

size_t queue_depth(struct queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->count;
	pthread_mutex_unlock(&q->lock);
	return n;
}

size_t queue_capacity(const struct queue *q)
{
	return q->cap;
}
