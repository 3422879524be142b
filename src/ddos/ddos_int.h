/*
 * Private to the DDoS counters and detector (src/ddos/ddos_*.c): the
 * compiled configuration, the tables of hosts, aggregates and detail
 * slots (the rings they hold are in ddos_ring.h). The detector reads the
 * counters' tables directly: they are one module split by concern.
 */
#ifndef MAMORI_DDOS_INT_H
#define MAMORI_DDOS_INT_H

#include <stdint.h>

#include "ddos/ddos_conf.h"
#include "ddos/ddos_count.h"
#include "ddos/ddos_lpm.h"
#include "ddos/ddos_ring.h"
#include "ddos/ddos_sketch.h"

/* ---- detail: per-class rings and top talkers of a hot target ---- */

#define DDOS_HH_SRC 16
#define DDOS_HH_PORT 12
#define DDOS_SKETCH_RESET 60   /* seconds, outside attacks */
#define DDOS_SKETCH_SAMPLE 16  /* one record in 16 outside attacks */
#define DDOS_SKETCH_FULL 8192  /* records a second a target's sketches all take; */
#define DDOS_SKETCH_HEAVY 8    /* past that, one in 8 (weighted) */
#define DDOS_DETAIL_LINGER 30  /* seconds cold before a detail slot is released */

struct ddos_detail {
	uint8_t kind;          /* DDOS_T_* + 1; 0 = free */
	uint32_t owner;        /* index in its table */
	uint32_t cold;         /* consecutive seconds under half the hot level */
	uint32_t sketch_sec;   /* second the sketches were last cleared */
	uint32_t sample;       /* records seen, for sampling the sketches */
	uint32_t next_free;
	struct ddos_dring r;
	float vb[DDOS_VEC_N], vp[DDOS_VEC_N];   /* recent bytes, packets per vector */
	uint16_t src_tag[DDOS_HH_SRC];    /* the sketches' key digests */
	uint16_t port_tag[DDOS_HH_PORT];
	struct ddos_hh src[DDOS_HH_SRC];                 /* min-heaps (ddos_sketch.h) */
	struct ddos_hh port[DDOS_HH_PORT];
};

/* ---- targets ---- */

#define ENT_USED 0x01
#define ENT_ALLOW 0x02     /* on (or overlapping) a destination allow list */
#define ENT_CARPET 0x04    /* this second: over and spread, or in a carpet attack */
#define ENT_OVER 0x08      /* this second: over a threshold */
#define ENT_NODETAIL 0x10  /* a detail slot was refused this second */

/* Ordered for the host's first cache line (struct ddos_host): what the
 * per-second judging reads comes first. The ring's slots follow the
 * entity in its owner. */
struct ddos_ent {
	uint16_t group;
	uint16_t over;            /* consecutive seconds over (saturates) */
	uint8_t flags;
	uint32_t detail;          /* 1 + index in det[]; 0 none */
	uint32_t attack;          /* 1 + index in the detector's table; 0 none */
	struct ddos_ring ring;
};

/* Four cache lines, laid out for the three passes over them:
 *  - line 0: the baseline, the key, the aggregate and the entity's head
 *    up to the ring's closed second (run_b, run_p, cur_f): judging a host
 *    each second (ddos_detect.c) reads only this line;
 *  - line 1: the ring's bookkeeping (busy, carry, arrivals, flow counts,
 *    the 16-bit bound): a record and the step of a second touch it, plus
 *    one near slot (lines 2-3) and, every fourth second or for a long
 *    record, a far slot (line 3);
 *  - lines 2-3: the ring's 16-bit slots; a host whose seconds could pass
 *    32,768 units or packets uses 32-bit slots lent from c->wide instead
 *    (ring.wide) until it has nothing in flight. */
struct ddos_host {
	float base_u, base_p;     /* baseline: units and packets per second */
	uint32_t base_sec;        /* last second the baseline moved */
	uint32_t base_n;          /* seconds learnt */
	uint64_t hi, lo;
	uint32_t prefix;          /* 1 + index in pfx[]; 0 none */
	struct ddos_ent e;
	struct ddos_nslots sl;
};

struct ddos_agg {             /* a /24 (/48) aggregate, or a group */
	uint64_t hi, lo;          /* network */
	uint32_t next;
	uint32_t refs;            /* hosts pointing here */
	uint8_t plen;
	uint32_t mx_sec;          /* second of the figures below */
	uint32_t mx_u, mx_p;      /* the busiest child's units and packets */
	uint32_t nchild;          /* children with traffic */
	uint64_t sum_u, sum_p;    /* all children's units and packets */
	struct ddos_ent e;
	struct ddos_slots sl;
};

/* ---- compiled configuration ---- */

struct ddos_chk {             /* one threshold in use */
	uint8_t cls, metric;
	double thr;
};

struct ddos_tset {            /* the thresholds of a host, prefix or group */
	struct ddos_chk chk[DDOS_C_N * DDOS_M_N];
	unsigned n;
	uint32_t hot_u, hot_p, hot_f;   /* detail from these arrivals per second */
};

struct ddos_gc {
	char *name;
	struct ddos_tset t[3];    /* by enum ddos_target_kind */
	uint32_t trigger, cooldown;
	double baseline, floor_bps, floor_pps;
	int sliding;              /* window_over decides too (trigger 1) */
	struct ddos_lpm *allow_src, *allow_dst;   /* this group's; NULL when empty */
	int allow_any;            /* an allow-listed destination lies in the group */
	struct ddos_tier tiers[DDOS_MAX_TIERS];
	size_t ntiers;
	struct ddos_pfx first;    /* first prefix, to name the group */
	size_t nprefixes;
};

struct ddos_cc {
	uint32_t delay, timeline_points, update_interval;
	int64_t exporter_warn_ms;
	uint32_t max_hosts, max_prefixes, max_detail, max_attacks, max_exporters;
	unsigned prefix_v4, prefix_v6;      /* in the v4-mapped space: 96 + n for IPv4 */
	double carpet_share, vector_share;  /* fractions */
	uint32_t carpet_min_hosts;
	double base_alpha;                  /* 1 / baseline_window */
	uint32_t base_warmup;
	struct ddos_lpm *groups, *allow_src, *allow_dst;
	struct ddos_gc *g;
	size_t ng;
};

struct ddos_exp {
	struct ddos_exporter_stat s;
	uint8_t used;
};

struct ddos_counters {
	struct ddos_cc cc;
	uint64_t seed;
	int64_t now_ms;
	uint32_t now_s;
	uint32_t H;               /* first open second */
	uint32_t target;          /* seconds before this are ready to close */
	int started;

	struct ddos_host *host;   /* page-aligned: a host's first line is a cache line */
	uint32_t host_cap, host_hw, host_n, host_hand;
	uint64_t *htab;           /* open addressing: hash << 32 | 1 + index */
	uint32_t hmask;
	struct ddos_slots *wide;  /* 32-bit slots lent to busy hosts, one per host at most */
	uint32_t wide_hw, wide_free, wide_n;   /* wide_free: 1 + index, chained through near[0].b */

	struct ddos_agg *pfx;
	uint32_t pfx_cap, pfx_hw, pfx_n, pfx_hand;
	uint32_t *pbkt, pmask;

	struct ddos_agg *grp;     /* one per group */

	struct ddos_detail *det;
	uint32_t det_cap, det_hw, det_free, det_n, det_hand;

	struct ddos_exp *exp;
	uint32_t exp_mask, exp_n, exp_last;

	struct ddos_count_stats st;
};

/* The entity of a detail slot's owner. */
static inline struct ddos_ent *ddos_owner(struct ddos_counters *c, const struct ddos_detail *d)
{
	switch (d->kind) {
	case DDOS_T_HOST + 1: return &c->host[d->owner].e;
	case DDOS_T_PREFIX + 1: return &c->pfx[d->owner].e;
	case DDOS_T_GROUP + 1: return &c->grp[d->owner].e;
	default: return NULL;
	}
}

/* Rates of e's last closed second by class; without detail only the total. */
void ddos_ent_rates(const struct ddos_counters *c, const struct ddos_ent *e,
		    struct ddos_rates out[DDOS_C_N]);
/* The same for second s, still open (H <= s <= H + DDOS_LEAD), as it
 * stands now (ddos_ring_peek); tot gets its units, packets and flow
 * records. */
void ddos_ent_peek(const struct ddos_counters *c, const struct ddos_ent *e, uint32_t s,
		   uint32_t tot[3], struct ddos_rates out[DDOS_C_N]);
/* Only the totals of that (units, packets, flow records): no classes. */
void ddos_ent_peek_total(const struct ddos_counters *c, const struct ddos_ent *e, uint32_t s,
			 uint32_t tot[3]);
/* Top sources and ports of e's detail, busiest first. */
size_t ddos_ent_top_src(const struct ddos_counters *c, const struct ddos_ent *e,
			struct ddos_top_src *out, size_t max);
size_t ddos_ent_top_port(const struct ddos_counters *c, const struct ddos_ent *e,
			 struct ddos_top_port *out, size_t max);
/* Clears e's sketches (an attack's top talkers start with the attack). */
void ddos_ent_sketch_reset(struct ddos_counters *c, struct ddos_ent *e);
/* Gives e a detail slot if it has none, evicting a colder one when the
 * pool is full (targets under attack come first). 0 or M_ELIMIT. */
int ddos_ent_detail(struct ddos_counters *c, struct ddos_ent *e, int kind, uint32_t idx);

/* Builds / frees the compiled configuration (ddos_count.c). */
int ddos_cc_build(struct ddos_cc *cc, const struct ddos_config *cfg, struct buf *err);
void ddos_cc_free(struct ddos_cc *cc);

/* ---- reload (ddos_count.c) ---- */

/* What a reload does to one target (DDOS_T_*, index in its table): its
 * group in the new configuration ncc, and the allow flag it gets there.
 * gmap maps the running groups to ncc's (by name; -1 = gone). 0 when the
 * target stays protected, M_ENOTFOUND when it leaves every group. */
int ddos_cc_fate(const struct ddos_counters *c, const struct ddos_cc *ncc, const int32_t *gmap,
		 int kind, uint32_t idx, uint16_t *group, uint8_t *allow);
/* gmap[i] for each running group i: ncc's group of the same name, or -1. */
void ddos_cc_group_map(const struct ddos_cc *old, const struct ddos_cc *ncc, int32_t *gmap);

struct ddos_count_reload {
	size_t hosts_moved;        /* to another group */
	size_t hosts_dropped;      /* in no group any more: forgotten */
	size_t prefixes_dropped;   /* aggregates of a group that is gone */
	size_t allow_changed;      /* targets whose allow flag changed */
};

/* Puts ncc (and grp, ncc->ng zeroed aggregates) in place of the running
 * compiled configuration, keeping every target's counters, baseline and
 * detail: hosts follow their address to its new group (their aggregate
 * is looked up again), aggregates and groups follow their group's name;
 * targets that leave every group are forgotten. The table sizes, the
 * delay and the aggregate lengths stay as they run (restart-only). Takes
 * ncc's contents and grp; never fails. The caller (the detector) has
 * already ended the attacks of targets that leave. */
void ddos_count_reconfigure(struct ddos_counters *c, struct ddos_cc *ncc, struct ddos_agg *grp,
			    struct ddos_count_reload *st);

#endif
