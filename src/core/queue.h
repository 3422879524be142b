/*
 * A bounded multi-producer multi-consumer queue of pointers (mutex + two
 * condition variables). It carries batches, not single events, so one lock
 * round-trip moves thousands of events. Closing wakes everyone; a closed queue
 * still hands out what it holds, so consumers drain it before they see
 * M_ECLOSED.
 */
#ifndef MAMORI_QUEUE_H
#define MAMORI_QUEUE_H

#include <stddef.h>

struct queue;

/* Owner: the caller; queue_free() does not free the items left inside. */
struct queue *queue_new(size_t capacity);
void queue_free(struct queue *q);

/* 0; M_EAGAIN when full and timeout_ms elapsed (0 = do not wait,
 * -1 = wait forever); M_ECLOSED when closed. */
int queue_push(struct queue *q, void *item, int timeout_ms);
/* 0 with *item set; M_EAGAIN on timeout; M_ECLOSED when closed and empty. */
int queue_pop(struct queue *q, void **item, int timeout_ms);
void queue_close(struct queue *q);
size_t queue_depth(struct queue *q);
size_t queue_capacity(const struct queue *q);

#endif
