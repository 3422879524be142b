/*
 * Shards: the protected space cut into N parts, each counted and judged
 * by its own detector on its own thread (ddos.threads, collect.h).
 *
 * Why by destination prefix: a host's ring, its /24 (/48) aggregate and
 * the carpet judgement of that aggregate (how its traffic spreads over
 * its hosts) must all be in one place, so a record goes to the shard that
 * owns the aggregate of its destination, the hash of the destination
 * masked to prefix_v4 (prefix_v6). Hosts and aggregates then live whole
 * in one shard, and nothing about them is shared or locked.
 *
 * Groups are the exception: a customer group spans every shard. Each
 * shard counts its part of every group in its own group rings (spreading
 * and all, as before); at the close of a second it publishes each group's
 * part (totals, classes, busiest aggregate, top talkers: a few hundred
 * bytes) in a slot of a small shared structure, struct ddos_gsync, and
 * waits, without blocking its thread, for the verdict. Shard 0 sums the
 * parts once every shard has published, judges the groups on the sum (so
 * a group's thresholds see the whole group, and group attacks live in
 * shard 0's detector only), and publishes each group's verdict (carpet,
 * over); then every shard judges its aggregates and hosts of that second
 * with the group's carpet flag, as one detector judges top down. A merge
 * at the per-second evaluation, rather than shared group rings updated per
 * record, because group figures are needed once a second and records come
 * millions a second: a shared ring would put an atomic add on another
 * core's cache line into every record. The cost is a wait of at most one
 * tick (100 ms) before a second's hosts are judged, and the early
 * decisions (ddos_detect.h) know a group's carpet only from its last
 * closed second.
 *
 * Records cross threads through single-producer, single-consumer rings
 * (struct ddos_spsc): one per ordered pair of threads, lock-free, never
 * waiting: a full ring drops the records and counts them.
 */
#ifndef MAMORI_DDOS_SHARD_H
#define MAMORI_DDOS_SHARD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ddos/flow.h"

#define DDOS_SHARDS_MAX 64

/* The shard (0..n-1) that owns dst: its address masked to plen_v4 bits
 * (IPv4, 0..32) or plen_v6 (IPv6, 0..128), hashed. Addresses of no
 * family go to shard 0. Pure: the same everywhere, run after run. */
unsigned ddos_shard_of(const struct flow_ip *dst, unsigned plen_v4, unsigned plen_v6, unsigned n);

/* ---- the hand-off ring ---- */

/* One producer thread, one consumer thread. head is written by the
 * consumer only, tail by the producer only; each keeps a cached copy of
 * the other's index so that a push or pop touches the shared line only
 * when its cached view runs out. cap is a power of two. */
struct ddos_spsc {
	_Alignas(64) _Atomic size_t tail;   /* next slot the producer writes */
	size_t head_cache;                  /* the producer's view of head */
	_Alignas(64) _Atomic size_t head;   /* next slot the consumer reads */
	size_t tail_cache;                  /* the consumer's view of tail */
	_Alignas(64) size_t mask;
	struct flow_rec *v;
};

/* A ring of cap records (rounded up to a power of two, at least 64).
 * 0 or M_ENOMEM; ddos_spsc_fini() in every case. */
int ddos_spsc_init(struct ddos_spsc *q, size_t cap);
void ddos_spsc_fini(struct ddos_spsc *q);

/* Producer: copies as many of the n records as fit; returns how many
 * (the rest are the caller's to count as dropped). Never waits. */
static inline size_t ddos_spsc_push(struct ddos_spsc *q, const struct flow_rec *r, size_t n)
{
	size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
	size_t cap = q->mask + 1, room = cap - (t - q->head_cache);

	if (room < n) {
		q->head_cache = atomic_load_explicit(&q->head, memory_order_acquire);
		room = cap - (t - q->head_cache);
	}
	if (n > room)
		n = room;
	for (size_t i = 0; i < n; i++)
		q->v[(t + i) & q->mask] = r[i];
	atomic_store_explicit(&q->tail, t + n, memory_order_release);
	return n;
}

/* Consumer: the records ready to read, at most max, as one contiguous
 * run starting at *out (a run stops at the end of the array); release
 * them with ddos_spsc_done() once used. */
static inline size_t ddos_spsc_peek(struct ddos_spsc *q, const struct flow_rec **out, size_t max)
{
	size_t h = atomic_load_explicit(&q->head, memory_order_relaxed), n, end;

	if (q->tail_cache == h)
		q->tail_cache = atomic_load_explicit(&q->tail, memory_order_acquire);
	n = q->tail_cache - h;
	end = (q->mask + 1) - (h & q->mask);
	if (n > end)
		n = end;
	if (n > max)
		n = max;
	*out = &q->v[h & q->mask];
	return n;
}

static inline void ddos_spsc_done(struct ddos_spsc *q, size_t n)
{
	atomic_store_explicit(&q->head, atomic_load_explicit(&q->head, memory_order_relaxed) + n,
			      memory_order_release);
}

/* Either side: nothing in it (a hint from the consumer's side). */
static inline int ddos_spsc_empty(struct ddos_spsc *q)
{
	return atomic_load_explicit(&q->tail, memory_order_acquire) ==
	       atomic_load_explicit(&q->head, memory_order_acquire);
}

/* ---- one thread's side of the hand-off ---- */

struct ddos_detector;

/* Thread k of n: records whose destination it owns go to its detector in
 * batches; the others are staged per owner and pushed into ring[k * n +
 * owner] (shared by the n threads: ring[from * n + to]). With n = 1 it is
 * only the batch. pushed(arg, to) runs after records went towards thread
 * to (to wake it). */
struct ddos_handoff {
	unsigned k, n;
	unsigned plen_v4, plen_v6;   /* the partition (ddos_shard_of) */
	struct ddos_spsc *ring;
	struct ddos_detector *det;
	struct flow_rec *recs;       /* DDOS_HANDOFF_BATCH, this shard's */
	size_t nrecs;
	struct flow_rec *out;        /* [n][DDOS_HANDOFF_STAGE], staged for the others */
	size_t *nout;
	uint64_t drops;              /* records a full ring refused */
	void (*pushed)(void *arg, unsigned to);
	void *arg;
};

#define DDOS_HANDOFF_BATCH 1024
#define DDOS_HANDOFF_STAGE 64

/* Records a ring between two of n threads holds: 16 MiB of rings
 * towards each thread, 8,192 to 65,536 records a ring (at 3 M records/s,
 * 22 ms with two threads: a consumer descheduled for a time slice does not
 * make its producers drop). */
size_t ddos_handoff_ring_size(unsigned n);
/* 0 or M_ENOMEM; ddos_handoff_fini() in every case. */
int ddos_handoff_init(struct ddos_handoff *h, unsigned k, unsigned n, struct ddos_spsc *ring,
		      struct ddos_detector *det, unsigned plen_v4, unsigned plen_v6);
void ddos_handoff_fini(struct ddos_handoff *h);
/* One decoded record (a flow_rec_fn with h as arg). */
void ddos_handoff_rec(void *h, const struct flow_rec *r);
/* The batch into the detector, what is staged into the rings. */
void ddos_handoff_flush(struct ddos_handoff *h);
/* What the other threads handed over, into the detector (at most about
 * max records per ring); how many. */
size_t ddos_handoff_take(struct ddos_handoff *h, size_t max);
/* Nothing waits in the rings towards this thread. */
int ddos_handoff_idle(struct ddos_handoff *h);

/* ---- the group merge ---- */

struct ddos_gsync;

/* The structure the n shards of one collector share (1 < n <=
 * DDOS_SHARDS_MAX). NULL when memory is short. Owner: the caller; free it
 * after every detector that uses it. */
struct ddos_gsync *ddos_gsync_new(unsigned n);
void ddos_gsync_free(struct ddos_gsync *g);
unsigned ddos_gsync_shards(const struct ddos_gsync *g);
/* The next attack id, unique over the shards (ddos_detector_set_next_id
 * sets it for all of them). */
uint64_t ddos_gsync_next_id(struct ddos_gsync *g);
void ddos_gsync_set_next_id(struct ddos_gsync *g, uint64_t id);

#endif
