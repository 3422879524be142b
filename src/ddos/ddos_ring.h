/*
 * Private to the DDoS counters: the per-second rings that spread a flow
 * record over the seconds it stands for (docs/ddos-detection.md has the
 * arithmetic and the bounds). Inline: this is the hot path.
 *
 * Amounts are stored as differences: a record adds +a where its traffic
 * starts and -a where it stops, so spreading a 60-second record costs four
 * writes, not sixty. Starts always lie in the near window [H, H+16) (H is
 * the first open second); a stop past it goes on a 4-second grid (the far
 * ring, 64 s), moved to the grid point before the true end with the rate
 * raised so that no byte is lost: a 60 s record reads at most 7% high in
 * each of its seconds, and never spills past its own end. Integer
 * rounding is spread too: each whole second gets the floor or the ceiling
 * of its share (ddos_split), so a small amount over a long record (12
 * packets in 60 s) is not piled into one second.
 * Bytes are kept in 64-byte units (2.2 Tbit/s per target before the u32
 * wraps), with the remainder carried so that nothing is lost to rounding;
 * all arithmetic is modulo 2^32, which is exact for differences.
 *
 * Two shapes: struct ddos_ring, one quantity pair per target (its head;
 * the slots, struct ddos_slots of 32 bits or a host's ddos_nslots of 16,
 * lie beside it in the owner), and struct ddos_dring, the traffic of a
 * hot target by kind, each kind's seconds side by side (a record is one
 * kind, and a fragment also counts as one; the classes, which overlap,
 * are sums of kinds, made once a second).
 */
#ifndef MAMORI_DDOS_RING_H
#define MAMORI_DDOS_RING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define DDOS_NEAR 16
#define DDOS_FAR 16
#define DDOS_GRID 4
#define DDOS_FLOWS 8
#define DDOS_LEAD 6            /* records start at most H + 6 */
#define DDOS_USHIFT 6          /* bytes per unit: 64 */
#define DDOS_UNIT_BITS 512.0   /* bits per unit */
#define DDOS_SPAN (DDOS_NEAR + DDOS_FAR * DDOS_GRID)
#define DDOS_MAX_RECORD_MS 86400000   /* a record longer than a day is cut */

/* Classes with their own counters in a detail ring. */
enum {
	DD_ALL,      /* everything counted since the detail began (for scaling) */
	DD_TCP, DD_UDP, DD_ICMP, DD_SYN, DD_ACK, DD_RST, DD_FRAG, DD_AMP,
	DD_N
};

/* What a detail ring's slots hold: not the classes, which overlap (a SYN
 * record is in ALL, TCP and SYN), but the kinds a record is one of, plus
 * fragments beside them; a record writes one column (two for a fragment)
 * instead of three or four, and the classes are sums of columns, made
 * when a second closes or is peeked (ddos_dk_classes). Same count of
 * columns as of classes: the ring's size is unchanged. */
enum {
	DK_SYN, DK_RST, DK_ACK, DK_TCP,   /* TCP by flag class; DK_TCP: none */
	DK_AMP, DK_UDP,                   /* UDP from a vector's port, other UDP */
	DK_ICMP, DK_OTHER,
	DK_FRAG,                          /* fragments, also in their kind */
	DK_N
};

_Static_assert((int)DK_N == (int)DD_N, "a detail slot has as many columns as classes");

/* Classes from columns (sums modulo 2^32: exact for differences). */
static inline void ddos_dk_classes(const uint32_t k[DK_N], uint32_t c[DD_N])
{
	uint32_t tcp = k[DK_SYN] + k[DK_RST] + k[DK_ACK] + k[DK_TCP], udp = k[DK_AMP] + k[DK_UDP];

	c[DD_TCP] = tcp;
	c[DD_UDP] = udp;
	c[DD_ICMP] = k[DK_ICMP];
	c[DD_ALL] = tcp + udp + k[DK_ICMP] + k[DK_OTHER];
	c[DD_SYN] = k[DK_SYN];
	c[DD_ACK] = k[DK_ACK];
	c[DD_RST] = k[DK_RST];
	c[DD_FRAG] = k[DK_FRAG];
	c[DD_AMP] = k[DK_AMP];
}

struct ddos_slot {
	uint32_t b, p;            /* differences of units and packets */
};

/* A host's slots: 16 bits each. Differences modulo 2^16 sum to the exact
 * amount of a second as long as every second stays under 65,536 units
 * (33 Mbit/s) and packets: the counters (ddos_count.c) keep an upper
 * bound of the ring's largest second in pk_b, pk_p and give a host that
 * would pass half that range 32-bit slots from a side table. */
struct ddos_nslot {
	uint16_t b, p;
};

/* at: the same slots by position, near then far (a plan's, struct
 * ddos_plan). */
struct ddos_slots {           /* 32-bit: aggregates, groups, busy hosts */
	union {
		struct {
			struct ddos_slot near[DDOS_NEAR];
			struct ddos_slot far[DDOS_FAR];
		};
		struct ddos_slot at[DDOS_NEAR + DDOS_FAR];
	};
};

struct ddos_nslots {          /* 16-bit: a host's own */
	union {
		struct {
			struct ddos_nslot near[DDOS_NEAR];
			struct ddos_nslot far[DDOS_FAR];
		};
		struct ddos_nslot at[DDOS_NEAR + DDOS_FAR];
	};
};

/* The head of a ring; its slots are beside it in the owner (struct
 * ddos_slots or ddos_nslots). Laid out for the cache: the closed second's
 * amounts come first (a host's judging reads them with its first cache
 * line); a record writes busy, the carry, one flow counter and one or
 * two adjacent near slots (bytes and packets side by side), the step of
 * a second the same. */
struct ddos_ring {
	uint32_t run_b, run_p;    /* units and packets of the last closed second */
	uint32_t cur_f;           /* flow records of the last closed second */
	uint32_t busy;            /* last second a difference lands on */
	uint32_t rem;             /* bytes below one unit, carried */
	uint32_t arr_sec;         /* the second of the arrivals below */
	uint32_t arr_u, arr_p, arr_f;   /* arrived in arr_sec, unspread (promotion) */
	uint32_t fl[DDOS_FLOWS];  /* flow records per second (not spread) */
	uint32_t wide;            /* hosts: 1 + index of 32-bit slots lent; 0 = its own 16-bit */
	uint16_t pk_b, pk_p;      /* hosts on 16 bits: no open second exceeds these */
};

/* A detail ring's slots: each column's seconds are a ring's own
 * (struct ddos_slots: units and packets side by side, 16 near seconds in
 * two cache lines, the far grid in two more). Column-major: a record's
 * writes into its column (up to four near slots and a far one) fall in
 * the column's near lines (and a far one), where a slot holding every
 * column (72 bytes) spread them over four to six lines and cost each
 * index a multiplication; and a plan's positions serve the columns as
 * they serve every ring. The step of a second, once a second, reads
 * across the columns instead (one line each). */
struct ddos_dring {
	uint32_t busy;
	uint32_t rem;             /* one carry: every column gets the record's units */
	uint32_t run_b[DD_N], run_p[DD_N], cur_f[DD_N];   /* by class (DD_*) */
	uint32_t fl[DDOS_FLOWS][DK_N];
	_Alignas(64) struct ddos_slots col[DK_N];   /* by column (DK_*) */
};

enum { SP_ONE, SP_NEAR, SP_FAR };

/* Where one record lands, computed once and applied to every ring the
 * record counts in. */
struct ddos_span {
	uint32_t s0;       /* first second */
	uint32_t stop;     /* the second the rate stops (exclusive end) */
	uint32_t nfull;    /* whole seconds between the first and the last */
	uint32_t nlim;     /* H + DDOS_NEAR: seconds from here are on the far grid */
	uint8_t kind;      /* SP_* */
	uint8_t far;       /* stop is on the far grid */
	uint8_t trunc;     /* longer than the ring: the tail is dropped */
	uint64_t len;      /* ms the amount is spread over */
	uint64_t f0, fl;   /* ms in the first and (SP_NEAR) the last second */
	double k0, kq, kl; /* f0/len, 1000/len, fl/len: no division per amount */
};

/* b - a when b > a, else 0, without overflow; at most INT64_MAX. */
static inline uint64_t ddos_ms_between(int64_t a, int64_t b)
{
	uint64_t d;

	if (b <= a)
		return 0;
	d = (uint64_t)b - (uint64_t)a;
	return d > INT64_MAX ? INT64_MAX : d;
}

/* Where a record [start, end] (ms) lands when H is the first open second:
 * a record that starts in a judged second is moved forward to H keeping
 * its duration (returns 1), one that starts past H + DDOS_LEAD is moved
 * back (returns -1). Hostile times never overflow. */
static inline int ddos_span_make(uint32_t H, int64_t start, int64_t end, struct ddos_span *sp)
{
	int64_t lo = (int64_t)H * 1000, hi = ((int64_t)H + DDOS_LEAD) * 1000, t0, t1;
	const int64_t far = 4 * (int64_t)DDOS_MAX_RECORD_MS;
	uint32_t sl, g, cg, gmax;
	int late = 0;

	t1 = (int64_t)ddos_ms_between(start, end);
	if (t1 > DDOS_MAX_RECORD_MS)
		t1 = DDOS_MAX_RECORD_MS;
	t0 = start < lo - far ? lo - far : start > hi + far ? hi + far : start;
	t1 += t0 + 1;              /* [start, end]: end's millisecond included */
	if (t0 < lo) {
		t1 += lo - t0;
		t0 = lo;
		late = 1;
	} else if (t0 >= hi + 1000) {
		t1 -= t0 - hi;
		t0 = hi;
		late = -1;
	}
	memset(sp, 0, sizeof(*sp));
	sp->s0 = (uint32_t)(t0 / 1000);
	sp->nlim = H + DDOS_NEAR;
	sl = (uint32_t)((t1 - 1) / 1000);
	if (sl == sp->s0) {
		sp->kind = SP_ONE;
		sp->stop = sp->s0 + 1;
		return late;
	}
	sp->f0 = (uint64_t)((int64_t)(sp->s0 + 1) * 1000 - t0);
	if (sl + 1 < H + DDOS_NEAR) {
		sp->kind = SP_NEAR;
		sp->stop = sl + 1;
		sp->nfull = sl - sp->s0 - 1;
		sp->fl = (uint64_t)(t1 - (int64_t)sl * 1000);
		sp->len = (uint64_t)(t1 - t0);
	} else {
		sp->kind = SP_FAR;
		g = (uint32_t)(t1 / 1000) & ~(uint32_t)(DDOS_GRID - 1);
		cg = (H + DDOS_GRID - 1) & ~(uint32_t)(DDOS_GRID - 1);
		gmax = cg + DDOS_GRID * (DDOS_FAR - 1);
		if (g > gmax) {
			g = gmax;
			sp->trunc = 1;
			sp->len = (uint64_t)(t1 - t0);
		} else {
			sp->len = (uint64_t)g * 1000 - (uint64_t)t0;
		}
		sp->stop = g;
		sp->nfull = g - sp->s0 - 1;
		sp->far = g >= H + DDOS_NEAR;
	}
	/* One division: ddos_muldiv corrects an estimate off by one. */
	sp->kq = 1000.0 / (double)sp->len;
	sp->k0 = (double)sp->f0 * sp->kq * 0.001;
	sp->kl = (double)sp->fl * sp->kq * 0.001;
	return late;
}

/* The per-second amounts of one quantity n laid over sp: a0 in the first
 * second, al in the last (SP_NEAR), and in the whole seconds between
 * them q in the first x and qe in the others, where qe is q or q - 1.
 * Each second gets the floor of its share; what the floors leave (fewer
 * than one a second) adds one to each of the first whole seconds, as many
 * as it takes, so no second reads more than one above its share: 12
 * packets over 60 s are one in each of 12 seconds, not 12 in the first.
 * The step down from q to qe is one more difference; past the near window
 * it goes to the 4-second grid point before it, and the up to 3 units
 * that leaves go to the first second. The sum is exactly n (truncated
 * records: the tail is dropped instead, with no step). */
struct ddos_amounts {
	uint32_t a0, q, qe, al;
	uint32_t x;        /* whole seconds at q (when qe < q) */
};

/* floor(n * num / len) from a floating-point estimate (k = num / len),
 * made exact by two integer checks: a division costs more than this and
 * a record takes up to a dozen of them. n < 2^32, num <= 1000. */
static inline uint32_t ddos_muldiv(uint64_t n, uint64_t num, uint64_t len, double k)
{
	uint64_t want = n * num, q = (uint64_t)((double)n * k);

	if (q * len > want)
		q--;
	else if ((q + 1) * len <= want)
		q++;
	return (uint32_t)q;
}

/* Inlined (as before the remainder was spread): a call cost a tenth of a
 * flooded record's counting. */
static inline __attribute__((always_inline)) struct ddos_amounts
ddos_split(const struct ddos_span *sp, uint64_t n)
{
	struct ddos_amounts a = { 0, 0, 0, 0, 0 };
	uint64_t r;

	if (sp->kind == SP_ONE) {
		a.a0 = (uint32_t)n;
		return a;
	}
	if (sp->kind == SP_NEAR)
		a.al = ddos_muldiv(n, sp->fl, sp->len, sp->kl);
	if (!sp->nfull && !sp->trunc) {
		/* No whole second: the first takes what the last does not. */
		a.a0 = (uint32_t)(n - a.al);
		return a;
	}
	a.q = a.qe = ddos_muldiv(n, 1000, sp->len, sp->kq);
	a.x = sp->nfull;
	/* A whole first second (a late record moved to H) is a whole one. */
	a.a0 = sp->f0 == 1000 ? a.q : ddos_muldiv(n, sp->f0, sp->len, sp->k0);
	if (sp->trunc)
		return a;
	/* The floors' remainder: under nfull + 2 (each floor loses under one). */
	r = n - (uint64_t)a.q * sp->nfull - a.al - a.a0;
	if (r >= sp->nfull) {
		/* Every whole second one more (none when there are none); the
		 * rest, at most one, to the first second. */
		if (sp->nfull)
			a.q = a.qe = a.q + 1;
		a.a0 += (uint32_t)(r - sp->nfull);
	} else if (r) {
		uint32_t e = sp->s0 + 1 + (uint32_t)r;   /* the step down */
		a.qe = a.q++;
		a.x = (uint32_t)r;
		if (e >= sp->nlim) {
			/* Past the near window: on the grid point before it (still
			 * after the first second: s0 <= H + 6), the seconds in
			 * between given back to the first. */
			uint32_t g = e & ~(uint32_t)(DDOS_GRID - 1);
			a.a0 += e - g;
			a.x -= e - g;
		}
	}
	return a;
}

static inline uint32_t ddos_amounts_max(const struct ddos_amounts *a)
{
	uint32_t m = a->a0 > a->q ? a->a0 : a->q;

	return m > a->al ? m : a->al;
}

/* A slot's units and packets as one vector (an SSE2 or NEON register):
 * one addition for both. */
typedef uint32_t ddos_v2 __attribute__((vector_size(8)));

/* A record's writes into one ring, planned once and applied to every
 * ring the record counts in (a host, its /24, its group and their detail
 * rings: up to six), which all put the same amounts on the same seconds:
 * the slots as positions (a near slot, or DDOS_NEAR + a far one: a ring
 * keeps its far slots right after its near ones) and the differences of
 * units and packets at each. The first second's difference, the step to
 * the whole seconds' rate, its steps down by one, the last second's and
 * the stop; two that fall on one slot (the second second is the last
 * one of a record without a whole second) are one entry. Applying it
 * is a few additions, where spreading the amounts again computed every
 * slot and compared every amount in each ring. */
#define DDOS_PLAN_MAX 6
#define DDOS_PLAN_FIXED 3   /* entries always applied (unused ones add 0) */
struct ddos_plan {
	ddos_v2 d[DDOS_PLAN_MAX];   /* units, packets */
	uint8_t pos[DDOS_PLAN_MAX];
	uint8_t n;
	uint32_t mb, mp;   /* the largest amount of a second (a host's 16-bit bound) */
};

/* The position of the step down from q to qe (x whole seconds after the
 * first at q): in the near window, or on the far grid (ddos_split put it
 * on a grid point there). */
static inline unsigned ddos_step_pos(const struct ddos_span *sp, uint32_t x)
{
	uint32_t e = sp->s0 + 1 + x;

	return e >= sp->nlim ? DDOS_NEAR + (e / DDOS_GRID) % DDOS_FAR : e % DDOS_NEAR;
}

/* The differences of units (ab) and packets (ap) over sp. The first
 * DDOS_PLAN_FIXED entries are always filled, so that applying them takes
 * no branch: one a record does not use adds 0 to a near slot of its own
 * (not to one written already, which would make the addition wait for
 * that write). */
static inline void ddos_plan_make(struct ddos_plan *pl, const struct ddos_span *sp,
				  const struct ddos_amounts *ab, const struct ddos_amounts *ap)
{
	unsigned i0 = sp->s0 % DDOS_NEAR, n = 2;

	pl->mb = ddos_amounts_max(ab);
	pl->mp = ddos_amounts_max(ap);
	pl->pos[0] = (uint8_t)i0;
	pl->d[0][0] = ab->a0;
	pl->d[0][1] = ap->a0;
	pl->pos[1] = (uint8_t)((sp->s0 + 1) % DDOS_NEAR);
	for (unsigned i = 2; i < DDOS_PLAN_FIXED; i++) {
		pl->pos[i] = (uint8_t)((sp->s0 + i) % DDOS_NEAR);
		pl->d[i][0] = pl->d[i][1] = 0;
	}
	if (sp->kind == SP_ONE) {
		pl->d[1][0] = -ab->a0;
		pl->d[1][1] = -ap->a0;
		pl->n = 2;
		return;
	}
	pl->d[1][0] = ab->q - ab->a0;
	pl->d[1][1] = ap->q - ap->a0;
	if (ab->qe != ab->q) {
		pl->pos[n] = (uint8_t)ddos_step_pos(sp, ab->x);
		pl->d[n][0] = (uint32_t)-1;
		pl->d[n++][1] = 0;
	}
	if (ap->qe != ap->q) {
		unsigned s = ddos_step_pos(sp, ap->x);
		if (n == 3 && pl->pos[2] == s) {
			pl->d[2][1] = (uint32_t)-1;
		} else {
			pl->pos[n] = (uint8_t)s;
			pl->d[n][0] = 0;
			pl->d[n++][1] = (uint32_t)-1;
		}
	}
	if (sp->kind == SP_NEAR) {
		if (!sp->nfull) {   /* the last second is the second one */
			pl->d[1][0] += ab->al - ab->qe;
			pl->d[1][1] += ap->al - ap->qe;
		} else {
			pl->pos[n] = (uint8_t)((sp->stop - 1) % DDOS_NEAR);
			pl->d[n][0] = ab->al - ab->qe;
			pl->d[n++][1] = ap->al - ap->qe;
		}
		pl->pos[n] = (uint8_t)(sp->stop % DDOS_NEAR);
		pl->d[n][0] = -ab->al;
		pl->d[n++][1] = -ap->al;
	} else {
		pl->pos[n] = (uint8_t)(sp->far ? DDOS_NEAR + (sp->stop / DDOS_GRID) % DDOS_FAR
					       : sp->stop % DDOS_NEAR);
		pl->d[n][0] = -ab->qe;
		pl->d[n++][1] = -ap->qe;
	}
	pl->n = (uint8_t)n;
}

/* One record's plans for every ring it counts in. The packets are the
 * same in each; the units differ only by the ring's carry (bytes below
 * one unit, kept by each ring), by at most one: a ring adds the record's
 * bytes below a unit to its carry and, when that passes a unit, takes
 * the plan of one unit more. Both plans are made at once: under a flood
 * every record counts in rings of either kind. */
struct ddos_rec_split {
	struct ddos_plan pl[2];   /* no carry, a carry */
	uint32_t b63;             /* the bytes below one unit */
	uint32_t fi;              /* the flow counter: s0 % DDOS_FLOWS */
	uint32_t stop;            /* the ring is busy until then */
};

/* The units of bytes, plus c carried: what bytes + rem (rem < 64, c its
 * carry) gives in units, modulo 2^64 as the sum was kept before, and at
 * most UINT32_MAX (2.2 Tbit/s per target). */
static inline uint32_t ddos_units_c(uint64_t bytes, unsigned c)
{
	uint64_t u = ((bytes >> DDOS_USHIFT) + c) & (UINT64_MAX >> DDOS_USHIFT);

	return u > UINT32_MAX ? UINT32_MAX : (uint32_t)u;
}

/* The units' differences of ab in a plan made for other units whose
 * split steps down nowhere either (so at the same positions), and
 * packets ap: what ddos_plan_make writes for units, entry for entry. */
static inline void ddos_plan_units(struct ddos_plan *pl, const struct ddos_span *sp,
				   const struct ddos_amounts *ab, const struct ddos_amounts *ap)
{
	unsigned n = ap->qe != ap->q ? 3 : 2;   /* after the packets' step */

	pl->mb = ddos_amounts_max(ab);
	pl->d[0][0] = ab->a0;
	if (sp->kind == SP_ONE) {
		pl->d[1][0] = -ab->a0;
		return;
	}
	pl->d[1][0] = ab->q - ab->a0;
	if (sp->kind == SP_NEAR) {
		if (!sp->nfull)
			pl->d[1][0] += ab->al - ab->qe;
		else
			pl->d[n++][0] = ab->al - ab->qe;
		pl->d[n][0] = -ab->al;
	} else {
		pl->d[n][0] = -ab->qe;
	}
}

/* Both plans; the second a copy of the first with other units where
 * neither split of the units steps down (records within a few seconds:
 * a flood's), which costs a third of making it. */
static inline void ddos_rec_split_init(struct ddos_rec_split *x, const struct ddos_span *sp,
				       uint64_t bytes, uint64_t pkts)
{
	struct ddos_amounts ap = ddos_split(sp, pkts > UINT32_MAX ? UINT32_MAX : pkts);
	struct ddos_amounts ab0 = ddos_split(sp, ddos_units_c(bytes, 0));
	struct ddos_amounts ab1 = ddos_split(sp, ddos_units_c(bytes, 1));

	ddos_plan_make(&x->pl[0], sp, &ab0, &ap);
	if (ab0.qe == ab0.q && ab1.qe == ab1.q) {
		x->pl[1] = x->pl[0];
		ddos_plan_units(&x->pl[1], sp, &ab1, &ap);
	} else {
		ddos_plan_make(&x->pl[1], sp, &ab1, &ap);
	}
	x->b63 = (uint32_t)(bytes & ((1u << DDOS_USHIFT) - 1));
	x->fi = sp->s0 % DDOS_FLOWS;
	x->stop = sp->stop;
}

/* The plan of a ring whose carry is *rem, which it updates. */
static inline const struct ddos_plan *ddos_rec_plan(const struct ddos_rec_split *x, uint32_t *rem)
{
	uint32_t t = x->b63 + *rem;

	*rem = t & ((1u << DDOS_USHIFT) - 1);
	return &x->pl[t >> DDOS_USHIFT];
}

/* Differences of a plan in a ring's slots (at: by position, near then
 * far). Inlined into each ring's add (six a record under a flood): a
 * call would cost as much as the writes. The fixed entries unrolled, the
 * rest (steps of long records) in a loop. 32-bit slots take a slot's
 * two differences in one vector addition. */
#define DDOS_PLAN_ADD(i)                                                  \
	do {                                                              \
		ddos_v2 v_;                                               \
		size_t k_ = pl->pos[i];                                   \
		memcpy(&v_, &at[k_], sizeof(v_));                         \
		v_ += pl->d[i];                                           \
		memcpy(&at[k_], &v_, sizeof(v_));                         \
	} while (0)

#define DDOS_PLAN_NADD(i)                                                 \
	do {                                                              \
		size_t k_ = pl->pos[i];                                   \
		at[k_].b = (uint16_t)(at[k_].b + pl->d[i][0]);            \
		at[k_].p = (uint16_t)(at[k_].p + pl->d[i][1]);            \
	} while (0)

#define DDOS_PLAN_APPLY(ADD)                                              \
	do {                                                              \
		_Static_assert(DDOS_PLAN_FIXED == 3, "three entries unrolled"); \
		ADD(0);                                                   \
		ADD(1);                                                   \
		ADD(2);                                                   \
		for (unsigned i_ = DDOS_PLAN_FIXED; i_ < pl->n; i_++)     \
			ADD(i_);                                          \
	} while (0)

_Static_assert(sizeof(struct ddos_slot) == sizeof(ddos_v2), "a slot is a vector");

static inline __attribute__((always_inline)) void
ddos_plan_apply(struct ddos_slot *at, const struct ddos_plan *pl)
{
	DDOS_PLAN_APPLY(DDOS_PLAN_ADD);
}

/* The same on 16-bit slots (modulo 2^16). */
static inline __attribute__((always_inline)) void
ddos_plan_napply(struct ddos_nslot *at, const struct ddos_plan *pl)
{
	DDOS_PLAN_APPLY(DDOS_PLAN_NADD);
}

static inline void ddos_ring_add(struct ddos_ring *r, struct ddos_slots *sl,
				 const struct ddos_rec_split *x)
{
	ddos_plan_apply(sl->at, ddos_rec_plan(x, &r->rem));
	r->fl[x->fi]++;
	if (x->stop > r->busy)
		r->busy = x->stop;
}

/* Moves r to second s: its amounts become s's. */
static inline void ddos_ring_step(struct ddos_ring *r, struct ddos_slots *sl, uint32_t s)
{
	struct ddos_slot *n = &sl->near[s % DDOS_NEAR];

	if (r->busy < s) {
		r->run_b = r->run_p = r->cur_f = 0;
		return;
	}
	r->run_b += n->b;
	r->run_p += n->p;
	n->b = n->p = 0;
	if (s % DDOS_GRID == 0) {
		struct ddos_slot *f = &sl->far[(s / DDOS_GRID) % DDOS_FAR];
		r->run_b += f->b;
		r->run_p += f->p;
		f->b = f->p = 0;
	}
	r->cur_f = r->fl[s % DDOS_FLOWS];
	r->fl[s % DDOS_FLOWS] = 0;
	if (s == r->busy)
		r->run_b = r->run_p = 0;   /* every difference applied: nothing left */
}

/* The same for 16-bit slots: sums modulo 2^16, exact while every second
 * is under 65,536 (the caller's bound). */
static inline void ddos_nring_step(struct ddos_ring *r, struct ddos_nslots *sl, uint32_t s)
{
	struct ddos_nslot *n = &sl->near[s % DDOS_NEAR];

	if (r->busy < s) {
		r->run_b = r->run_p = r->cur_f = 0;
		r->pk_b = r->pk_p = 0;
		return;
	}
	r->run_b = (uint16_t)(r->run_b + n->b);
	r->run_p = (uint16_t)(r->run_p + n->p);
	n->b = n->p = 0;
	if (s % DDOS_GRID == 0) {
		struct ddos_nslot *f = &sl->far[(s / DDOS_GRID) % DDOS_FAR];
		r->run_b = (uint16_t)(r->run_b + f->b);
		r->run_p = (uint16_t)(r->run_p + f->p);
		f->b = f->p = 0;
	}
	r->cur_f = r->fl[s % DDOS_FLOWS];
	r->fl[s % DDOS_FLOWS] = 0;
	if (s == r->busy)
		r->run_b = r->run_p = 0;
}

/* What open second s (H <= s, within the near window) holds so far,
 * without closing anything: the last closed second's amounts plus the
 * differences up to s, as ddos_ring_step would find them. Every record
 * lands on seconds >= H with amounts >= 0, so this only grows until s
 * closes: a second already over a threshold will be over when judged.
 * Either sl (32-bit) or nsl (16-bit) is given. */
static inline void ddos_ring_peek(const struct ddos_ring *r, const struct ddos_slots *sl,
				  const struct ddos_nslots *nsl, uint32_t H, uint32_t s, uint32_t *b,
				  uint32_t *p, uint32_t *f)
{
	uint32_t vb = r->run_b, vp = r->run_p;

	*b = *p = *f = 0;
	if (r->busy < s)
		return;
	*f = r->fl[s % DDOS_FLOWS];
	if (r->busy == s)
		return;   /* every difference applied: nothing left */
	for (uint32_t k = H; k <= s; k++) {
		unsigned i = k % DDOS_NEAR, g = (k / DDOS_GRID) % DDOS_FAR;
		vb += sl ? sl->near[i].b : nsl->near[i].b;
		vp += sl ? sl->near[i].p : nsl->near[i].p;
		if (k % DDOS_GRID == 0) {
			vb += sl ? sl->far[g].b : nsl->far[g].b;
			vp += sl ? sl->far[g].p : nsl->far[g].p;
		}
	}
	*b = sl ? vb : (uint16_t)vb;   /* 16-bit slots: the sum modulo 2^16 */
	*p = sl ? vp : (uint16_t)vp;
}

static inline void ddos_ring_clear(struct ddos_ring *r)
{
	memset(r, 0, sizeof(*r));
}

/* A record in each column of mask (bits of DK_*: its kind, and DK_FRAG
 * for a fragment; never empty): the same amounts, spread in each column
 * as in a target's own ring. The first column out of the loop: most
 * records have one. */
static inline void ddos_dring_add(struct ddos_dring *d, const struct ddos_rec_split *x,
				  unsigned mask)
{
	const struct ddos_plan *pl = ddos_rec_plan(x, &d->rem);
	uint32_t *fl = d->fl[x->fi];
	unsigned k = (unsigned)__builtin_ctz(mask);

	ddos_plan_apply(d->col[k].at, pl);
	fl[k]++;
	for (unsigned m = mask & (mask - 1); m; m &= m - 1) {
		k = (unsigned)__builtin_ctz(m);
		ddos_plan_apply(d->col[k].at, pl);
		fl[k]++;
	}
	if (x->stop > d->busy)
		d->busy = x->stop;
}

/* Position i of every column, taken out (zeroed). */
static inline void ddos_dcol_take(struct ddos_slots *col, unsigned i, uint32_t b[DK_N],
				  uint32_t p[DK_N])
{
	for (int k = 0; k < DK_N; k++) {
		b[k] = col[k].at[i].b;
		p[k] = col[k].at[i].p;
		col[k].at[i].b = col[k].at[i].p = 0;
	}
}

static inline void ddos_dring_step(struct ddos_dring *d, uint32_t s)
{
	uint32_t *fl = d->fl[s % DDOS_FLOWS];
	uint32_t kb[DK_N], kp[DK_N], cb[DD_N], cp[DD_N];

	if (d->busy < s) {
		memset(d->run_b, 0, sizeof(d->run_b));
		memset(d->run_p, 0, sizeof(d->run_p));
		memset(d->cur_f, 0, sizeof(d->cur_f));
		return;
	}
	ddos_dcol_take(d->col, s % DDOS_NEAR, kb, kp);
	ddos_dk_classes(kb, cb);
	ddos_dk_classes(kp, cp);
	ddos_dk_classes(fl, d->cur_f);
	for (int k = 0; k < DD_N; k++) {
		d->run_b[k] += cb[k];
		d->run_p[k] += cp[k];
	}
	memset(fl, 0, sizeof(d->fl[0]));
	if (s % DDOS_GRID == 0) {
		ddos_dcol_take(d->col, DDOS_NEAR + (s / DDOS_GRID) % DDOS_FAR, kb, kp);
		ddos_dk_classes(kb, cb);
		ddos_dk_classes(kp, cp);
		for (int k = 0; k < DD_N; k++) {
			d->run_b[k] += cb[k];
			d->run_p[k] += cp[k];
		}
	}
	if (s == d->busy) {
		memset(d->run_b, 0, sizeof(d->run_b));
		memset(d->run_p, 0, sizeof(d->run_p));
	}
}

/* ddos_ring_peek for every class of a detail ring. */
static inline void ddos_dring_peek(const struct ddos_dring *d, uint32_t H, uint32_t s,
				   uint32_t b[DD_N], uint32_t p[DD_N], uint32_t f[DD_N])
{
	uint32_t kb[DK_N], kp[DK_N];

	memset(b, 0, sizeof(uint32_t) * DD_N);
	memset(p, 0, sizeof(uint32_t) * DD_N);
	memset(f, 0, sizeof(uint32_t) * DD_N);
	if (d->busy < s)
		return;
	ddos_dk_classes(d->fl[s % DDOS_FLOWS], f);
	if (d->busy == s)
		return;
	memset(kb, 0, sizeof(kb));
	memset(kp, 0, sizeof(kp));
	for (uint32_t k = H; k <= s; k++) {
		unsigned i = k % DDOS_NEAR, g = (k / DDOS_GRID) % DDOS_FAR;
		for (int c = 0; c < DK_N; c++) {
			kb[c] += d->col[c].at[i].b;
			kp[c] += d->col[c].at[i].p;
		}
		if (k % DDOS_GRID == 0) {
			for (int c = 0; c < DK_N; c++) {
				kb[c] += d->col[c].far[g].b;
				kp[c] += d->col[c].far[g].p;
			}
		}
	}
	ddos_dk_classes(kb, b);
	ddos_dk_classes(kp, p);
	for (int c = 0; c < DD_N; c++) {
		b[c] += d->run_b[c];
		p[c] += d->run_p[c];
	}
}

#endif
