/*
 * Private to the detector (ddos_detect.c) and the group merge
 * (ddos_shard.c): what one shard publishes of its groups each second,
 * and the verdict shard 0 hands back (ddos_shard.h explains the design).
 */
#ifndef MAMORI_DDOS_SHARD_INT_H
#define MAMORI_DDOS_SHARD_INT_H

#include <stdint.h>

#include "ddos/ddos_count.h"
#include "ddos/ddos_shard.h"

struct ddos_counters;

/* One group's closed second: one shard's part, or (shard 0) their sum. */
struct ddos_gview {
	uint32_t sec;              /* the second; 0 = nothing */
	uint32_t gen;              /* the publisher's configuration generation */
	uint64_t u, p, f;          /* units, packets, flow records */
	int detailed;              /* cls[] beyond the total is known */
	struct ddos_rates cls[DDOS_C_N];
	int has_mx;                /* the aggregates' figures below are of sec */
	uint32_t nchild, mx_u, mx_p;   /* aggregates with traffic, the busiest one's */
	uint64_t sum_u, sum_p;     /* all aggregates' units and packets */
	size_t nsrc, nport;
	struct ddos_top_src src[DDOS_TOP_SRC];
	struct ddos_top_port port[DDOS_TOP_PORT];
};

/* Verdict bits, per group. */
#define DDOS_GV_CARPET 0x01   /* spread and over, or in a carpet attack: covers its targets */
#define DDOS_GV_HALF 0x02     /* over half of one of its thresholds: a carpet is possible */
#define DDOS_GV_HOT 0x04      /* over or attacked: every shard keeps the group's detail */
#define DDOS_GV_RESET 0x08    /* sketches restart: an attack's top talkers are its own */

/* Shard k, right after ddos_count_step() closed second s: its part of
 * each of the counters' groups (gen: the shard's configuration
 * generation). Then the shard waits for a verdict covering s. */
void ddos_gsync_publish(struct ddos_gsync *g, unsigned k, const struct ddos_counters *c,
		       uint32_t s, uint32_t gen);
/* Shard 0: 1 when every shard has published a second the last verdict
 * does not cover; *s the newest of them, v[0..ng) the groups' sums for s
 * over the parts of generation gen (older seconds and other generations,
 * a shard that lags or has not reloaded yet, count as nothing). */
int ddos_gsync_gather(struct ddos_gsync *g, uint32_t gen, size_t ng, uint32_t *s,
		      struct ddos_gview *v);
/* Shard 0: the verdict on second s, flags[0..ng) (DDOS_GV_*). */
void ddos_gsync_decide(struct ddos_gsync *g, uint32_t s, uint32_t gen, const uint8_t *flags,
		       size_t ng);
/* Any shard: 1 when the verdict covers second s; then *vsec is its
 * second and flags[0..ng) its bits, all 0 when it was made under another
 * generation (group numbers may differ between them). */
int ddos_gsync_verdict(struct ddos_gsync *g, uint32_t s, uint32_t gen, uint8_t *flags, size_t ng,
		       uint32_t *vsec);

#endif
