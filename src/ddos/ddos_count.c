/*
 * DDoS counters (see ddos_count.h for what and why, ddos_ring.h for the
 * ring). The hot path is ddos_count_add: one hash probe for the host (an
 * LPM lookup only for a destination not yet tracked), one span computed
 * per record, then a handful of writes into the rings of the host, its
 * /24 (/48) and its group, and into their detail slots when they are hot.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "core/err.h"
#include "ddos/ddos_int.h"

#define HOT_FRACTION 0.25      /* detail from a quarter of the lowest threshold */
#define EVICT_SAMPLE 8         /* candidates looked at per eviction */

/* ---- compiled configuration ---- */

static uint32_t hot_level(double thr, double per_unit)
{
	double v = thr * HOT_FRACTION / per_unit;

	if (thr <= 0)
		return UINT32_MAX;
	if (v < 1)
		return 1;
	return v > 4e9 ? UINT32_MAX : (uint32_t)v;
}

static void tset_build(struct ddos_tset *t, const struct ddos_thresholds *th,
		       double floor_bps, double floor_pps)
{
	double min[DDOS_M_N] = { floor_bps, floor_pps, 0 };

	t->n = 0;
	for (int c = 0; c < DDOS_C_N; c++)
		for (int m = 0; m < DDOS_M_N; m++) {
			double v = (double)th->v[c][m];
			if (!th->v[c][m])
				continue;
			t->chk[t->n++] = (struct ddos_chk){ (uint8_t)c, (uint8_t)m, v };
			if (min[m] <= 0 || v < min[m])
				min[m] = v;
		}
	t->hot_u = hot_level(min[DDOS_M_BPS], DDOS_UNIT_BITS);
	t->hot_p = hot_level(min[DDOS_M_PPS], 1);
	t->hot_f = hot_level(min[DDOS_M_FPS], 1);
}

static int lpm_of(struct ddos_lpm **out, const struct ddos_pfx *p, size_t n, uint32_t value)
{
	int r;

	*out = NULL;
	if (!n)
		return M_OK;
	if (!(*out = ddos_lpm_new()))
		return M_ENOMEM;
	for (size_t i = 0; i < n; i++)
		if ((r = ddos_lpm_add(*out, p[i].a, p[i].len, value)) < 0)
			return r;
	return ddos_lpm_build(*out);
}

int ddos_cc_build(struct ddos_cc *cc, const struct ddos_config *cfg, struct buf *err)
{
	int r;

	memset(cc, 0, sizeof(*cc));
	cc->delay = (uint32_t)cfg->delay;
	cc->timeline_points = (uint32_t)cfg->timeline_points;
	cc->update_interval = (uint32_t)cfg->update_interval;
	cc->exporter_warn_ms = cfg->exporter_warn * 1000;
	cc->max_hosts = (uint32_t)cfg->max_hosts;
	cc->max_prefixes = (uint32_t)cfg->max_prefixes;
	cc->max_detail = (uint32_t)cfg->max_detail;
	cc->max_attacks = (uint32_t)cfg->max_attacks;
	cc->max_exporters = (uint32_t)cfg->max_exporters;
	cc->prefix_v4 = 96 + (unsigned)cfg->prefix_v4;
	cc->prefix_v6 = (unsigned)cfg->prefix_v6;
	cc->carpet_share = (double)cfg->carpet_max_share / 100.0;
	cc->carpet_min_hosts = (uint32_t)cfg->carpet_min_hosts;
	cc->vector_share = (double)cfg->vector_share / 100.0;
	cc->base_alpha = 1.0 / (double)(cfg->baseline_window > 0 ? cfg->baseline_window : 600);
	cc->base_warmup = (uint32_t)cfg->baseline_warmup;
	if (!cc->max_hosts || !cc->max_prefixes || !cc->max_detail || !cc->max_attacks ||
	    !cc->max_exporters || cc->timeline_points < 2 || !cfg->ngroups) {
		buf_printf(err, "ddos: configuration not loaded (zero sizes)");
		buf_cstr(err);
		return M_EINVAL;
	}
	if (!(cc->groups = ddos_lpm_new()))
		return M_ENOMEM;
	if ((r = lpm_of(&cc->allow_src, cfg->allow_src, cfg->nallow_src, 0)) < 0 ||
	    (r = lpm_of(&cc->allow_dst, cfg->allow_dst, cfg->nallow_dst, 0)) < 0)
		return r;
	if (!(cc->g = calloc(cfg->ngroups, sizeof(*cc->g))))
		return M_ENOMEM;
	cc->ng = cfg->ngroups;
	for (size_t i = 0; i < cfg->ngroups; i++) {
		const struct ddos_group_conf *gs = &cfg->groups[i];
		struct ddos_gc *g = &cc->g[i];
		if (!(g->name = strdup(gs->name ? gs->name : "default")))
			return M_ENOMEM;
		g->trigger = (uint32_t)(gs->trigger > 0 ? gs->trigger : 1);
		g->cooldown = (uint32_t)(gs->cooldown > 0 ? gs->cooldown : 1);
		g->baseline = gs->baseline;
		g->sliding = gs->sliding;
		g->floor_bps = (double)gs->floor_bps;
		g->floor_pps = (double)gs->floor_pps;
		tset_build(&g->t[DDOS_T_HOST], &gs->host, g->baseline > 0 ? g->floor_bps : 0,
			   g->baseline > 0 ? g->floor_pps : 0);
		tset_build(&g->t[DDOS_T_PREFIX], &gs->prefix, 0, 0);
		tset_build(&g->t[DDOS_T_GROUP], &gs->group, 0, 0);
		if ((r = lpm_of(&g->allow_src, gs->allow_src, gs->nallow_src, 0)) < 0 ||
		    (r = lpm_of(&g->allow_dst, gs->allow_dst, gs->nallow_dst, 0)) < 0)
			return r;
		g->nprefixes = gs->nprefixes;
		if (gs->nprefixes)
			g->first = gs->prefixes[0];
		for (size_t p = 0; p < gs->nprefixes; p++) {
			const struct ddos_pfx *x = &gs->prefixes[p];
			if ((r = ddos_lpm_add(cc->groups, x->a, x->len, (uint32_t)i)) < 0)
				return r;
			if (ddos_lpm_overlaps(cc->allow_dst, x->a, x->len) ||
			    ddos_lpm_overlaps(g->allow_dst, x->a, x->len))
				g->allow_any = 1;
		}
		for (size_t t = 0; t < gs->ntiers; t++) {
			g->tiers[t].bps = gs->tiers[t].bps;
			g->tiers[t].pps = gs->tiers[t].pps;
			if (!(g->tiers[t].name = strdup(gs->tiers[t].name ? gs->tiers[t].name : "")))
				return M_ENOMEM;
			g->ntiers = t + 1;
		}
	}
	if ((r = ddos_lpm_build(cc->groups)) == M_EINVAL) {
		buf_printf(err, "ddos: a prefix is in two groups");
		buf_cstr(err);
	}
	return r;
}

void ddos_cc_free(struct ddos_cc *cc)
{
	for (size_t i = 0; i < cc->ng; i++) {
		free(cc->g[i].name);
		ddos_lpm_free(cc->g[i].allow_src);
		ddos_lpm_free(cc->g[i].allow_dst);
		for (size_t t = 0; t < cc->g[i].ntiers; t++)
			free(cc->g[i].tiers[t].name);
	}
	free(cc->g);
	ddos_lpm_free(cc->groups);
	ddos_lpm_free(cc->allow_src);
	ddos_lpm_free(cc->allow_dst);
	memset(cc, 0, sizeof(*cc));
}

/* ---- creation ---- */

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 16;

	while (p < n && p < (1u << 31))
		p <<= 1;
	return p;
}

/* The large tables: zero pages from the kernel, touched only as they
 * fill, page-aligned (so each host starts a cache line). The hosts and
 * their index go in huge pages where the kernel allows it (huge = 1): the
 * hot path reaches into tens of megabytes of them at random, and 4 KiB
 * pages would cost a TLB miss per record. The lent slots, aggregates and
 * detail slots stay in 4 KiB pages: they fill from index 0 (free lists,
 * high-water marks) and are mostly small in use, and a huge page would
 * make resident 2 MiB for the first slot used (6 MiB of the 76 MB that
 * bench/ddos_compare.sh measured with 131,072 hosts). No child process
 * inherits them (MADV_DONTFORK): while a child forked for Hyperscan's
 * compiler (core/hs_child.h) or a mitigation script lives, the hot path's
 * writes would otherwise copy each page they touch. */
static void *big_alloc(size_t n, int huge)
{
	void *p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, n ? n : 1, MADV_DONTFORK);
#ifdef MADV_HUGEPAGE
	if (huge && n >= (2u << 20))
		madvise(p, n, MADV_HUGEPAGE);
#else
	(void)huge;
#endif
	return p;
}

static void big_free(void *p, size_t n)
{
	if (p)
		munmap(p, n ? n : 1);
}

struct ddos_counters *ddos_count_new(const struct ddos_config *cfg, struct buf *err)
{
	struct ddos_counters *c = calloc(1, sizeof(*c));
	struct timespec ts;

	if (!c)
		return NULL;
	if (ddos_cc_build(&c->cc, cfg, err) < 0)
		goto fail;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* Chains keyed by attacker-chosen addresses: a secret seed. */
	c->seed = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)c;
	c->host_cap = c->cc.max_hosts;
	c->hmask = pow2_at_least(c->host_cap + c->host_cap / 2) - 1;   /* load <= 2/3 */
	c->pfx_cap = c->cc.max_prefixes;
	c->pmask = pow2_at_least(c->pfx_cap) - 1;
	c->det_cap = c->cc.max_detail;
	c->exp_mask = pow2_at_least(c->cc.max_exporters * 2) - 1;
	c->host = big_alloc((size_t)c->host_cap * sizeof(*c->host), 1);
	c->htab = big_alloc(((size_t)c->hmask + 1) * sizeof(*c->htab), 1);
	c->wide = big_alloc((size_t)c->host_cap * sizeof(*c->wide), 0);
	c->pfx = big_alloc((size_t)c->pfx_cap * sizeof(*c->pfx), 0);
	c->pbkt = calloc((size_t)c->pmask + 1, sizeof(*c->pbkt));
	c->grp = calloc(c->cc.ng, sizeof(*c->grp));
	c->det = big_alloc((size_t)c->det_cap * sizeof(*c->det), 0);
	c->exp = calloc((size_t)c->exp_mask + 1, sizeof(*c->exp));
	if (!c->host || !c->htab || !c->wide || !c->pfx || !c->pbkt || !c->grp || !c->det || !c->exp) {
		buf_printf(err, "ddos: out of memory for the counter tables");
		buf_cstr(err);
		goto fail;
	}
	for (size_t i = 0; i < c->cc.ng; i++) {
		struct ddos_agg *g = &c->grp[i];
		g->e.flags = ENT_USED | (c->cc.g[i].allow_any ? ENT_ALLOW : 0);
		g->e.group = (uint16_t)i;
		g->hi = ddos_be64(c->cc.g[i].first.a);
		g->lo = ddos_be64(c->cc.g[i].first.a + 8);
		g->plen = c->cc.g[i].first.len;
	}
	return c;
fail:
	ddos_count_free(c);
	return NULL;
}

void ddos_count_free(struct ddos_counters *c)
{
	if (!c)
		return;
	ddos_cc_free(&c->cc);
	big_free(c->host, (size_t)c->host_cap * sizeof(*c->host));
	big_free(c->htab, ((size_t)c->hmask + 1) * sizeof(*c->htab));
	big_free(c->wide, (size_t)c->host_cap * sizeof(*c->wide));
	big_free(c->pfx, (size_t)c->pfx_cap * sizeof(*c->pfx));
	free(c->pbkt);
	free(c->grp);
	big_free(c->det, (size_t)c->det_cap * sizeof(*c->det));
	free(c->exp);
	free(c);
}

/* ---- space-saving sketches (ddos_sketch.h) ---- */

_Static_assert(DDOS_HH_SRC % 4 == 0 && DDOS_HH_PORT % 4 == 0, "digests are compared four at a time");

static int hh_cmp(const void *x, const void *y)
{
	const struct ddos_hh *a = x, *b = y;

	return a->n < b->n ? 1 : a->n > b->n ? -1 : 0;
}

/* ---- tables ---- */

_Static_assert(sizeof(struct ddos_host) % 64 == 0, "hosts are whole cache lines");
_Static_assert(offsetof(struct ddos_host, e.ring.cur_f) + 4 <= 64,
	       "a host's key and what is judged every second fit its first cache line");
_Static_assert(offsetof(struct ddos_host, e.ring.busy) >= 64 &&
		       offsetof(struct ddos_host, e.ring.pk_p) + 2 <= 128,
	       "a record's and a step's bookkeeping fit the host's second cache line");

/* ---- a host's slots: 16 bits, or 32 lent while it is busy ---- */

/* A host's ring stays on its own 16-bit slots while no second can reach
 * WIDE_AT units or packets (then differences modulo 2^16 are exact: every
 * second is under 65,536); past that it borrows 32-bit slots. Half the
 * range, so that the exact maximum is recomputed at most once per 32,768
 * units or packets added. */
#define WIDE_AT 32768u

static void wide_release(struct ddos_counters *c, struct ddos_ring *r)
{
	struct ddos_slots *w = &c->wide[r->wide - 1];

	memset(w, 0, sizeof(*w));
	w->near[0].b = c->wide_free;
	c->wide_free = r->wide;
	c->wide_n--;
	r->wide = 0;
	r->pk_b = r->pk_p = 0;
}

/* The largest amounts of the ring's open seconds [H, busy], exact. */
static void nring_max(const struct ddos_ring *r, const struct ddos_nslots *sl, uint32_t H,
		      uint32_t *mb, uint32_t *mp)
{
	uint16_t vb = (uint16_t)r->run_b, vp = (uint16_t)r->run_p;

	*mb = *mp = 0;
	for (uint32_t k = H; k <= r->busy && k - H < DDOS_SPAN; k++) {
		if (k - H < DDOS_NEAR) {
			vb = (uint16_t)(vb + sl->near[k % DDOS_NEAR].b);
			vp = (uint16_t)(vp + sl->near[k % DDOS_NEAR].p);
		}
		if (k % DDOS_GRID == 0) {
			vb = (uint16_t)(vb + sl->far[(k / DDOS_GRID) % DDOS_FAR].b);
			vp = (uint16_t)(vp + sl->far[(k / DDOS_GRID) % DDOS_FAR].p);
		}
		if (vb > *mb)
			*mb = vb;
		if (vp > *mp)
			*mp = vp;
	}
}

/* Moves h's ring to 32-bit slots: the exact amount of every open second
 * is rebuilt as differences, those of the near window in near slots, the
 * later ones (which change only on the grid) in far slots. */
static void host_widen(struct ddos_counters *c, struct ddos_host *h)
{
	struct ddos_ring *r = &h->e.ring;
	struct ddos_slots *w;
	uint32_t idx, H = c->H;
	uint16_t vb = (uint16_t)r->run_b, vp = (uint16_t)r->run_p;
	uint32_t pb = vb, pp = vp;

	if (c->wide_free) {
		idx = c->wide_free - 1;
		c->wide_free = c->wide[idx].near[0].b;
	} else {
		idx = c->wide_hw++;
	}
	w = &c->wide[idx];
	memset(w, 0, sizeof(*w));
	for (uint32_t k = H; k <= r->busy && k - H < DDOS_SPAN; k++) {
		int in_near = k - H < DDOS_NEAR;
		if (in_near) {
			vb = (uint16_t)(vb + h->sl.near[k % DDOS_NEAR].b);
			vp = (uint16_t)(vp + h->sl.near[k % DDOS_NEAR].p);
		}
		if (k % DDOS_GRID == 0) {
			vb = (uint16_t)(vb + h->sl.far[(k / DDOS_GRID) % DDOS_FAR].b);
			vp = (uint16_t)(vp + h->sl.far[(k / DDOS_GRID) % DDOS_FAR].p);
		}
		if (in_near) {
			w->near[k % DDOS_NEAR].b = (uint32_t)vb - pb;
			w->near[k % DDOS_NEAR].p = (uint32_t)vp - pp;
		} else if (k % DDOS_GRID == 0) {
			w->far[(k / DDOS_GRID) % DDOS_FAR].b = (uint32_t)vb - pb;
			w->far[(k / DDOS_GRID) % DDOS_FAR].p = (uint32_t)vp - pp;
		}
		pb = vb;
		pp = vp;
	}
	memset(&h->sl, 0, sizeof(h->sl));
	r->wide = idx + 1;
	r->pk_b = r->pk_p = 0;
	c->wide_n++;
	c->st.hosts_widened++;
}

static inline void host_ring_add(struct ddos_counters *c, struct ddos_host *h,
				 const struct ddos_rec_split *x)
{
	struct ddos_ring *r = &h->e.ring;
	const struct ddos_plan *pl = ddos_rec_plan(x, &r->rem);

	if (!r->wide) {
		uint32_t mb = pl->mb, mp = pl->mp;
		if ((uint64_t)r->pk_b + mb >= WIDE_AT || (uint64_t)r->pk_p + mp >= WIDE_AT) {
			uint32_t xb, xp;
			nring_max(r, &h->sl, c->H, &xb, &xp);
			if ((uint64_t)xb + mb >= WIDE_AT || (uint64_t)xp + mp >= WIDE_AT) {
				host_widen(c, h);
			} else {
				r->pk_b = (uint16_t)xb;
				r->pk_p = (uint16_t)xp;
			}
		}
		if (!r->wide) {
			ddos_plan_napply(h->sl.at, pl);
			r->pk_b = (uint16_t)(r->pk_b + mb);
			r->pk_p = (uint16_t)(r->pk_p + mp);
		}
	}
	if (r->wide) {
		struct ddos_slots *w = &c->wide[r->wide - 1];
		ddos_plan_apply(w->at, pl);
	}
	r->fl[x->fi]++;
	if (x->stop > r->busy)
		r->busy = x->stop;
}

static void host_step(struct ddos_counters *c, struct ddos_host *h, uint32_t s)
{
	struct ddos_ring *r = &h->e.ring;

	if (!r->wide) {
		ddos_nring_step(r, &h->sl, s);
		return;
	}
	ddos_ring_step(r, &c->wide[r->wide - 1], s);
	if (r->busy <= s)
		wide_release(c, r);   /* nothing in flight: back to its own slots */
}

/* The host index: open addressing over 64-bit entries, the low 32 bits
 * of the hash above 1 + the host's index. Probing compares hashes in the
 * table's own cache line; only a host whose hash matches is touched. */
#define HT_HASH(e) ((uint32_t)((e) >> 32))
#define HT_IDX(e) ((uint32_t)(e) - 1)

static struct ddos_host *host_find_h(const struct ddos_counters *c, uint64_t hi, uint64_t lo,
				     uint64_t hash)
{
	uint32_t i = (uint32_t)hash & c->hmask;
	uint64_t e;

	while ((e = c->htab[i])) {
		if (HT_HASH(e) == (uint32_t)hash) {
			struct ddos_host *h = &c->host[HT_IDX(e)];
			if (h->hi == hi && h->lo == lo)
				return h;
		}
		i = (i + 1) & c->hmask;
	}
	return NULL;
}

static void ht_insert(struct ddos_counters *c, uint64_t hash, uint32_t idx)
{
	uint32_t i = (uint32_t)hash & c->hmask;

	while (c->htab[i])
		i = (i + 1) & c->hmask;
	c->htab[i] = (uint64_t)(uint32_t)hash << 32 | (idx + 1);
}

/* Deletion with backward shift: entries after the hole move back when
 * their home slot allows it, so no tombstones build up under churn. */
static void ht_delete(struct ddos_counters *c, uint64_t hash, uint32_t idx)
{
	uint32_t i = (uint32_t)hash & c->hmask, j, k;

	while (c->htab[i] && HT_IDX(c->htab[i]) != idx)
		i = (i + 1) & c->hmask;
	if (!c->htab[i])
		return;
	for (j = i;;) {
		j = (j + 1) & c->hmask;
		if (!c->htab[j])
			break;
		k = HT_HASH(c->htab[j]) & c->hmask;
		/* Move j into the hole at i unless its home lies in (i, j]. */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		c->htab[i] = c->htab[j];
		i = j;
	}
	c->htab[i] = 0;
}

static struct ddos_host *host_find(const struct ddos_counters *c, uint64_t hi, uint64_t lo)
{
	return host_find_h(c, hi, lo, ddos_hash2(hi, lo, c->seed));
}

static void chain_unlink(uint32_t *bkt, uint32_t *head_next_of(void *, uint32_t), void *tbl,
			 uint32_t b, uint32_t idx)
{
	uint32_t *p = &bkt[b];

	while (*p && *p != idx + 1)
		p = head_next_of(tbl, *p - 1);
	if (*p)
		*p = *head_next_of(tbl, idx);
}

static uint32_t *agg_next(void *t, uint32_t i)
{
	return &((struct ddos_agg *)t)[i].next;
}

static int pinned(const struct ddos_ent *e)
{
	return e->attack || e->over || e->detail;
}

static uint32_t ent_score(const struct ddos_counters *c, const struct ddos_ent *e)
{
	return e->ring.run_p + (e->ring.arr_sec == c->now_s ? e->ring.arr_p : 0);
}

static void detail_release(struct ddos_counters *c, struct ddos_ent *e)
{
	uint32_t i = e->detail - 1;

	c->det[i].kind = 0;
	c->det[i].next_free = c->det_free;
	c->det_free = i + 1;
	c->det_n--;
	e->detail = 0;
	c->st.detail_released++;
}

static void host_remove(struct ddos_counters *c, uint32_t idx)
{
	struct ddos_host *h = &c->host[idx];

	ht_delete(c, ddos_hash2(h->hi, h->lo, c->seed), idx);
	if (h->e.ring.wide)
		wide_release(c, &h->e.ring);
	if (h->prefix)
		c->pfx[h->prefix - 1].refs--;
	h->e.flags = 0;
	c->host_n--;
}

/* A host slot: the untouched tail, or the least busy of a few unpinned
 * hosts under the clock hand (an idle one scores 0). */
static int host_slot(struct ddos_counters *c, uint32_t *idx)
{
	uint32_t best = UINT32_MAX, bs = UINT32_MAX;

	if (c->host_hw < c->host_cap) {
		*idx = c->host_hw++;
		return M_OK;
	}
	for (unsigned k = 0; k < EVICT_SAMPLE; k++) {
		uint32_t i = c->host_hand++ % c->host_cap;
		const struct ddos_host *h = &c->host[i];
		uint32_t s;
		if (!(h->e.flags & ENT_USED)) {
			best = i;
			break;
		}
		if (pinned(&h->e))
			continue;
		s = ent_score(c, &h->e);
		if (s < bs) {
			bs = s;
			best = i;
		}
	}
	if (best == UINT32_MAX)
		return M_ELIMIT;
	if (c->host[best].e.flags & ENT_USED) {
		host_remove(c, best);
		c->st.hosts_evicted++;
	}
	*idx = best;
	return M_OK;
}

static void agg_remove(struct ddos_counters *c, uint32_t idx)
{
	struct ddos_agg *p = &c->pfx[idx];

	chain_unlink(c->pbkt, agg_next, c->pfx,
		     (uint32_t)(ddos_hash2(p->hi, p->lo ^ p->e.group, c->seed) & c->pmask), idx);
	p->e.flags = 0;
	c->pfx_n--;
}

static int pfx_slot(struct ddos_counters *c, uint32_t *idx)
{
	uint32_t best = UINT32_MAX, bs = UINT32_MAX;

	if (c->pfx_hw < c->pfx_cap) {
		*idx = c->pfx_hw++;
		return M_OK;
	}
	for (unsigned k = 0; k < EVICT_SAMPLE; k++) {
		uint32_t i = c->pfx_hand++ % c->pfx_cap;
		const struct ddos_agg *p = &c->pfx[i];
		uint32_t s;
		if (!(p->e.flags & ENT_USED)) {
			best = i;
			break;
		}
		if (pinned(&p->e) || p->refs)
			continue;
		s = ent_score(c, &p->e);
		if (s < bs) {
			bs = s;
			best = i;
		}
	}
	if (best == UINT32_MAX)
		return M_ELIMIT;
	if (c->pfx[best].e.flags & ENT_USED) {
		agg_remove(c, best);
		c->st.prefixes_evicted++;
	}
	*idx = best;
	return M_OK;
}

static uint8_t allow_flag_cc(const struct ddos_cc *cc, uint16_t g, const uint8_t a[16],
			     unsigned plen)
{
	const struct ddos_gc *gc = &cc->g[g];

	if (plen >= 128)
		return (ddos_lpm_lookup(cc->allow_dst, a) != DDOS_LPM_NONE ||
			ddos_lpm_lookup(gc->allow_dst, a) != DDOS_LPM_NONE) ? ENT_ALLOW : 0;
	return (ddos_lpm_overlaps(cc->allow_dst, a, plen) ||
		ddos_lpm_overlaps(gc->allow_dst, a, plen)) ? ENT_ALLOW : 0;
}

static uint8_t allow_flag(const struct ddos_counters *c, uint16_t g, const uint8_t a[16],
			  unsigned plen)
{
	return allow_flag_cc(&c->cc, g, a, plen);
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* The aggregate of (hi, lo) in group g: 1 + index, or 0 when the table is
 * full of busy aggregates. */
static uint32_t pfx_get(struct ddos_counters *c, uint64_t hi, uint64_t lo, uint16_t g, int v4)
{
	unsigned plen = v4 ? c->cc.prefix_v4 : c->cc.prefix_v6;
	uint32_t b, i, idx;
	struct ddos_agg *p;
	uint8_t a[16];

	ddos_mask(&hi, &lo, plen);
	b = (uint32_t)(ddos_hash2(hi, lo ^ g, c->seed) & c->pmask);
	for (i = c->pbkt[b]; i; i = c->pfx[i - 1].next) {
		p = &c->pfx[i - 1];
		if (p->hi == hi && p->lo == lo && p->e.group == g)
			return i;
	}
	if (pfx_slot(c, &idx) < 0) {
		c->st.prefixes_dropped++;
		return 0;
	}
	p = &c->pfx[idx];
	memset(p, 0, sizeof(*p));
	p->hi = hi;
	p->lo = lo;
	p->plen = (uint8_t)plen;
	p->e.group = g;
	put_be64(a, hi);
	put_be64(a + 8, lo);
	p->e.flags = ENT_USED | allow_flag(c, g, a, plen);
	p->next = c->pbkt[b];
	c->pbkt[b] = idx + 1;
	c->pfx_n++;
	c->st.prefixes_new++;
	return idx + 1;
}

static struct ddos_host *host_new(struct ddos_counters *c, uint64_t hi, uint64_t lo, uint16_t g,
				  const uint8_t a[16], int v4)
{
	uint32_t idx;
	struct ddos_host *h;

	if (host_slot(c, &idx) < 0) {
		c->st.hosts_dropped++;
		return NULL;
	}
	h = &c->host[idx];
	memset(h, 0, sizeof(*h));
	h->hi = hi;
	h->lo = lo;
	h->e.group = g;
	h->e.flags = ENT_USED | allow_flag(c, g, a, 128);
	h->base_sec = c->H;
	ht_insert(c, ddos_hash2(hi, lo, c->seed), idx);
	h->prefix = pfx_get(c, hi, lo, g, v4);
	if (h->prefix)
		c->pfx[h->prefix - 1].refs++;
	c->host_n++;
	c->st.hosts_new++;
	return h;
}

/* ---- detail ---- */

static uint32_t detail_victim(struct ddos_counters *c, int urgent)
{
	uint32_t best = UINT32_MAX, bs = UINT32_MAX;

	for (unsigned k = 0; k < EVICT_SAMPLE; k++) {
		uint32_t i = c->det_hand++ % c->det_cap;
		struct ddos_detail *d = &c->det[i];
		const struct ddos_ent *o = ddos_owner(c, d);
		uint32_t s;
		if (!o)
			continue;
		if (o->attack || o->over || (!urgent && !d->cold))
			continue;
		s = o->ring.run_p;
		if (s < bs) {
			bs = s;
			best = i;
		}
	}
	return best;
}

int ddos_ent_detail(struct ddos_counters *c, struct ddos_ent *e, int kind, uint32_t idx)
{
	uint32_t i;
	struct ddos_detail *d;

	if (e->detail)
		return M_OK;
	if (c->det_free) {
		i = c->det_free - 1;
		c->det_free = c->det[i].next_free;
	} else if (c->det_hw < c->det_cap) {
		i = c->det_hw++;
	} else {
		i = detail_victim(c, e->attack || e->over);
		if (i == UINT32_MAX) {
			c->st.detail_refused++;
			return M_ELIMIT;
		}
		detail_release(c, ddos_owner(c, &c->det[i]));
		c->st.detail_released--;
		c->st.detail_evicted++;
		c->det_free = c->det[i].next_free;   /* it went on the list's head */
	}
	d = &c->det[i];
	memset(d, 0, sizeof(*d));
	d->kind = (uint8_t)(kind + 1);
	d->owner = idx;
	d->sketch_sec = c->H;
	e->detail = i + 1;
	c->det_n++;
	c->st.detail_promoted++;
	return M_OK;
}

void ddos_ent_sketch_reset(struct ddos_counters *c, struct ddos_ent *e)
{
	struct ddos_detail *d;

	if (!e->detail)
		return;
	d = &c->det[e->detail - 1];
	memset(d->src, 0, sizeof(d->src));
	memset(d->port, 0, sizeof(d->port));
	memset(d->src_tag, 0, sizeof(d->src_tag));
	memset(d->port_tag, 0, sizeof(d->port_tag));
	d->sketch_sec = c->H;
}

/* The sketches take every record of a target over a threshold or under
 * attack (they were cleared when that began), and one record in
 * DDOS_SKETCH_SAMPLE, weighted, of the others: top talkers of a busy host
 * for the API, at a sixteenth of the cost. A target that gets more than
 * DDOS_SKETCH_FULL records in a second (a flood: the sketches were a
 * third of the counting) gives the rest of that second one record in
 * DDOS_SKETCH_HEAVY, weighted, picked by a pseudo-random sequence rather
 * than every eighth, so that an exporter's fixed order of records cannot
 * line up with it. A talker with a share s of the target's records is
 * then sampled about s * 1,000 times a second at the least (8,192 / 8),
 * so a source or port the attack is made of stays on top with an
 * estimate within a few percent; the estimates are no longer upper
 * bounds in that second. Inlined into ent_add: a call per target and
 * record cost a tenth of the counting under a flood. ring_done: the
 * detail ring was written already (agg_rings_add). */
static inline __attribute__((always_inline)) void
detail_add(struct ddos_detail *d, const struct ddos_ent *e, const struct ddos_rec_split *rs,
	   uint64_t bytes, uint64_t pkts, unsigned mask, int vec, uint64_t shi, uint64_t slo,
	   uint32_t pkey, int ring_done)
{
	uint64_t w = bytes;

	if (!ring_done)
		ddos_dring_add(&d->r, rs, mask);
	if (vec >= 0) {
		d->vb[vec] += (float)bytes;
		d->vp[vec] += (float)pkts;
	}
	if (!e->over && !e->attack) {
		if (++d->sample % DDOS_SKETCH_SAMPLE)
			return;
		w = bytes * DDOS_SKETCH_SAMPLE;
	} else if (e->ring.arr_f > DDOS_SKETCH_FULL) {
		d->sample = d->sample * 1664525u + 1013904223u;   /* the top 3 bits: 1 in 8 */
		if (d->sample >> 29)
			return;
		w = bytes > UINT64_MAX / DDOS_SKETCH_HEAVY ? UINT64_MAX : bytes * DDOS_SKETCH_HEAVY;
	}
	ddos_hh_add(d->src, d->src_tag, DDOS_HH_SRC, shi, slo, w);
	if (pkey)
		ddos_hh_add(d->port, d->port_tag, DDOS_HH_PORT, pkey, 0, w);
}

/* ---- exporters ---- */

static void exporter_note(struct ddos_counters *c, const struct flow_rec *r, int late)
{
	struct ddos_exp *x = &c->exp[c->exp_last];
	int64_t dur = (int64_t)ddos_ms_between(r->start_ms, r->end_ms);
	int64_t age = (int64_t)ddos_ms_between(r->end_ms, c->now_ms);

	if (!(x->used && memcmp(x->s.ip.a, r->exporter.a, 16) == 0)) {
		uint32_t i = (uint32_t)(ddos_hash2(ddos_be64(r->exporter.a), ddos_be64(r->exporter.a + 8),
						   c->seed) & c->exp_mask);
		while (c->exp[i].used && memcmp(c->exp[i].s.ip.a, r->exporter.a, 16) != 0)
			i = (i + 1) & c->exp_mask;
		x = &c->exp[i];
		if (!x->used) {
			if (c->exp_n >= c->cc.max_exporters) {
				c->st.exporters_dropped++;
				return;
			}
			x->used = 1;
			x->s.ip = r->exporter;
			c->exp_n++;
		}
		c->exp_last = i;
	}
	x->s.records++;
	if (dur > x->s.max_duration_ms) {
		x->s.max_duration_ms = dur;
		x->s.long_timeout = dur > c->cc.exporter_warn_ms;
	}
	if (age > x->s.max_age_ms)
		x->s.max_age_ms = age;
	if (late > 0)
		x->s.late++;
}

/* ---- the hot path ---- */

/* a + b, at most UINT32_MAX: the carry flag of the addition itself
 * (three of these per target a record; s < a cost two more
 * instructions each). */
static inline uint32_t sat_add(uint32_t a, uint32_t b)
{
	uint32_t s;

	return __builtin_add_overflow(a, b, &s) ? UINT32_MAX : s;
}

static inline uint32_t clamp32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

struct rec_ctx {
	struct ddos_span sp;
	struct ddos_rec_split rs;   /* sp's plans, shared by the rings */
	uint64_t bytes, pkts;
	uint32_t arr_u, arr_p;      /* units and packets, clamped, for the arrivals */
	unsigned mask;              /* detail ring columns (DK_*) */
	int vec;
	uint64_t shi, slo;
	uint32_t pkey;
};

/* An aggregate's (a /24's, a group's) own ring and, when it has one, its
 * detail ring, in one call: under a flood both are written for every
 * record, and two calls cost their register saving twice. The rings are
 * apart, so writing the detail ring before the arrivals are counted (and
 * before a detail slot is given) changes nothing. */
static __attribute__((noinline, flatten)) void
agg_rings_add(struct ddos_ring *r, struct ddos_slots *sl, struct ddos_dring *d, unsigned mask,
	      const struct ddos_rec_split *x)
{
	ddos_ring_add(r, sl, x);
	if (d)
		ddos_dring_add(d, x, mask);
}

/* Inlined into add_one's three calls, each with its kind known: the
 * compiler keeps one target's branch and no call's register saving. */
static inline __attribute__((always_inline)) void ent_add(struct ddos_counters *c,
							   struct ddos_ent *e, int kind,
							   uint32_t idx, struct rec_ctx *x)
{
	/* The detail slot the target has now: its ring is written with the
	 * aggregate's own (a slot given below is written by detail_add). */
	struct ddos_detail *d0 = kind != DDOS_T_HOST && e->detail ? &c->det[e->detail - 1] : NULL;

	if (kind == DDOS_T_HOST)
		host_ring_add(c, &c->host[idx], &x->rs);
	else
		agg_rings_add(&e->ring, kind == DDOS_T_PREFIX ? &c->pfx[idx].sl : &c->grp[idx].sl,
			      d0 ? &d0->r : NULL, x->mask, &x->rs);
	if (e->ring.arr_sec != c->now_s) {
		e->ring.arr_sec = c->now_s;
		e->ring.arr_u = e->ring.arr_p = e->ring.arr_f = 0;
		e->flags &= (uint8_t)~ENT_NODETAIL;
	}
	e->ring.arr_u = sat_add(e->ring.arr_u, x->arr_u);
	e->ring.arr_p = sat_add(e->ring.arr_p, x->arr_p);
	e->ring.arr_f = sat_add(e->ring.arr_f, 1);
	if (!e->detail && !(e->flags & ENT_NODETAIL)) {
		const struct ddos_tset *t = &c->cc.g[e->group].t[kind];
		if ((e->ring.arr_u >= t->hot_u || e->ring.arr_p >= t->hot_p || e->ring.arr_f >= t->hot_f) &&
		    ddos_ent_detail(c, e, kind, idx) < 0)
			e->flags |= ENT_NODETAIL;
	}
	if (e->detail)
		detail_add(&c->det[e->detail - 1], e, &x->rs, x->bytes, x->pkts, x->mask, x->vec,
			   x->shi, x->slo, x->pkey, d0 != NULL);
}

static inline uint64_t scale(uint64_t v, uint64_t m)
{
	uint64_t r;

	return __builtin_mul_overflow(v, m, &r) ? UINT64_MAX : r;   /* no division per record */
}

static inline void add_one(struct ddos_counters *c, const struct flow_rec *r, uint64_t hi,
			   uint64_t lo, uint64_t hash)
{
	struct rec_ctx x;
	struct ddos_host *h;
	uint64_t mult;
	uint32_t gi, pi;
	int late, v4;

	c->st.records++;
	if (!c->started || r->dst.family == 0) {
		c->st.bad++;
		return;
	}
	h = host_find_h(c, hi, lo, hash);
	if (h) {
		gi = h->e.group;
	} else if ((gi = ddos_lpm_lookup(c->cc.groups, r->dst.a)) == DDOS_LPM_NONE) {
		exporter_note(c, r, 0);
		c->st.unprotected++;
		return;
	}
	if ((c->cc.allow_src && ddos_lpm_lookup(c->cc.allow_src, r->src.a) != DDOS_LPM_NONE) ||
	    (c->cc.g[gi].allow_src && ddos_lpm_lookup(c->cc.g[gi].allow_src, r->src.a) != DDOS_LPM_NONE)) {
		exporter_note(c, r, 0);
		c->st.allowed_src++;
		return;
	}
	late = ddos_span_make(c->H, r->start_ms, r->end_ms, &x.sp);
	exporter_note(c, r, late);
	if (late > 0)
		c->st.late++;
	else if (late < 0)
		c->st.future++;
	if (x.sp.trunc)
		c->st.truncated++;
	mult = (r->flags & FLOW_F_SCALED) || r->sampling == 0 ? 1 : r->sampling;
	x.bytes = scale(r->bytes, mult);
	x.pkts = scale(r->packets, mult);
	x.arr_u = clamp32(x.bytes >> DDOS_USHIFT);
	x.arr_p = clamp32(x.pkts);
	ddos_rec_split_init(&x.rs, &x.sp, x.bytes, x.pkts);
	/* The record's column in the detail rings (DK_*): one kind, and
	 * DK_FRAG for a fragment. */
	x.vec = -1;
	x.pkey = 0;
	switch (r->proto) {
	case 6:
		if ((r->tcp_flags & 0x02) && !(r->tcp_flags & 0x10))
			x.mask = 1u << DK_SYN;
		else if (r->tcp_flags & 0x04)
			x.mask = 1u << DK_RST;
		else if (r->tcp_flags & 0x10)
			x.mask = 1u << DK_ACK;
		else
			x.mask = 1u << DK_TCP;
		if (r->sport)
			x.pkey = 6u << 16 | r->sport;
		break;
	case 17:
		x.mask = 1u << DK_UDP;
		if (r->sport) {
			x.pkey = 17u << 16 | r->sport;
			if ((x.vec = ddos_vector_by_port(r->sport)) >= 0)
				x.mask = 1u << DK_AMP;
		}
		break;
	case 1:
	case 58:
		x.mask = 1u << DK_ICMP;
		break;
	default:
		x.mask = 1u << DK_OTHER;
		break;
	}
	if (r->flags & FLOW_F_FRAGMENT)
		x.mask |= 1u << DK_FRAG;
	x.shi = ddos_be64(r->src.a);
	x.slo = ddos_be64(r->src.a + 8);
	c->st.counted++;
	v4 = r->dst.family == FLOW_IPV4;
	if (!h)
		h = host_new(c, hi, lo, (uint16_t)gi, r->dst.a, v4);
	if (h) {
		/* A host whose aggregate found no room tries again once a second. */
		if (!h->prefix && h->e.ring.arr_sec != c->now_s &&
		    (h->prefix = pfx_get(c, hi, lo, (uint16_t)gi, v4)))
			c->pfx[h->prefix - 1].refs++;
		pi = h->prefix;
		ent_add(c, &h->e, DDOS_T_HOST, (uint32_t)(h - c->host), &x);
	} else {
		pi = pfx_get(c, hi, lo, (uint16_t)gi, v4);
	}
	if (pi)
		ent_add(c, &c->pfx[pi - 1].e, DDOS_T_PREFIX, pi - 1, &x);
	ent_add(c, &c->grp[gi].e, DDOS_T_GROUP, gi, &x);
}

void ddos_count_add(struct ddos_counters *c, const struct flow_rec *r)
{
	uint64_t hi = ddos_be64(r->dst.a), lo = ddos_be64(r->dst.a + 8);

	add_one(c, r, hi, lo, ddos_hash2(hi, lo, c->seed));
}

/* A software pipeline over the records: the bucket of record i + 16 and
 * the host line and near slot of record i + 8 are fetched while record i
 * is counted, so the cache misses of many records overlap instead of
 * following one another. */
#define PF_FAR 16
#define PF_NEAR 8
#define PF_RING 32

void ddos_count_add_batch(struct ddos_counters *c, const struct flow_rec *r, size_t n)
{
	uint64_t hh[PF_RING], hi[PF_RING], lo[PF_RING];

	for (size_t i = 0; i < n + PF_FAR; i++) {
		if (i < n) {
			size_t k = i % PF_RING;
			hi[k] = ddos_be64(r[i].dst.a);
			lo[k] = ddos_be64(r[i].dst.a + 8);
			hh[k] = ddos_hash2(hi[k], lo[k], c->seed);
			__builtin_prefetch(&c->htab[hh[k] & c->hmask]);
		}
		if (i >= PF_NEAR && i - PF_NEAR < n) {
			size_t j = i - PF_NEAR;
			uint32_t b = (uint32_t)hh[j % PF_RING] & c->hmask;
			uint64_t e = c->htab[b];
			if (e && HT_HASH(e) != (uint32_t)hh[j % PF_RING])
				e = c->htab[(b + 1) & c->hmask];
			if (e) {
				const struct ddos_host *h = &c->host[HT_IDX(e)];
				int64_t s0 = r[j].start_ms / 1000;
				s0 = s0 < c->H ? c->H : s0 > c->H + DDOS_LEAD ? c->H + DDOS_LEAD : s0;
				__builtin_prefetch(h, 1);
				__builtin_prefetch((const char *)h + 64, 1);
				__builtin_prefetch(&h->sl.near[(uint32_t)s0 % DDOS_NEAR], 1);
			}
		}
		if (i >= PF_FAR) {
			size_t j = i - PF_FAR, k = j % PF_RING;
			add_one(c, &r[j], hi[k], lo[k], hh[k]);
		}
	}
}

/* ---- time ---- */

static void clear_all(struct ddos_counters *c)
{
	for (uint32_t i = 0; i < c->host_hw; i++) {
		if (c->host[i].e.ring.wide)
			wide_release(c, &c->host[i].e.ring);
		ddos_ring_clear(&c->host[i].e.ring);
		memset(&c->host[i].sl, 0, sizeof(c->host[i].sl));
	}
	for (uint32_t i = 0; i < c->pfx_hw; i++) {
		ddos_ring_clear(&c->pfx[i].e.ring);
		memset(&c->pfx[i].sl, 0, sizeof(c->pfx[i].sl));
	}
	for (size_t i = 0; i < c->cc.ng; i++) {
		ddos_ring_clear(&c->grp[i].e.ring);
		memset(&c->grp[i].sl, 0, sizeof(c->grp[i].sl));
	}
	for (uint32_t i = 0; i < c->det_hw; i++)
		memset(&c->det[i].r, 0, sizeof(c->det[i].r));
}

int ddos_count_advance(struct ddos_counters *c, int64_t now_ms)
{
	uint32_t now_s = (uint32_t)(now_ms / 1000), target = now_s - c->cc.delay;

	if (now_ms < 0)
		return 0;
	if (!c->started) {
		c->started = 1;
		c->now_ms = now_ms;
		c->now_s = now_s;
		c->H = c->target = target;
		return 0;
	}
	if (now_ms < c->now_ms) {
		c->st.clock_jumps++;   /* time went back: wait for it */
		return (int)(c->target - c->H);
	}
	c->now_ms = now_ms;
	c->now_s = now_s;
	if (target <= c->H) {
		c->target = c->H;
		return 0;
	}
	if (target - c->H > DDOS_SPAN) {
		/* Asleep longer than the ring: what it holds is stale. */
		clear_all(c);
		c->st.clock_jumps++;
		c->H = target - 1;
	}
	c->target = target;
	return (int)(target - c->H);
}

static void agg_child(struct ddos_agg *a, uint32_t s, uint32_t u, uint32_t p)
{
	if (a->mx_sec != s) {
		a->mx_sec = s;
		a->mx_u = a->mx_p = a->nchild = 0;
		a->sum_u = a->sum_p = 0;
	}
	a->nchild++;
	a->sum_u += u;
	a->sum_p += p;
	if (u > a->mx_u)
		a->mx_u = u;
	if (p > a->mx_p)
		a->mx_p = p;
}

/* After a second: a detail slot of a target that stayed under half its
 * hot level for DDOS_DETAIL_LINGER seconds goes back to the pool; the
 * sketches of a quiet target restart every minute, so "top talkers" means
 * now, not since start-up. */
static void detail_tick(struct ddos_counters *c, struct ddos_ent *e, int kind, uint32_t s)
{
	const struct ddos_tset *t = &c->cc.g[e->group].t[kind];
	struct ddos_detail *d = &c->det[e->detail - 1];

	if (e->attack || e->over) {
		d->cold = 0;
		return;
	}
	if (e->ring.run_b < t->hot_u / 2 && e->ring.run_p < t->hot_p / 2 && e->ring.cur_f < t->hot_f / 2) {
		if (++d->cold >= DDOS_DETAIL_LINGER) {
			detail_release(c, e);
			return;
		}
	} else {
		d->cold = 0;
	}
	if (s - d->sketch_sec >= DDOS_SKETCH_RESET)
		ddos_ent_sketch_reset(c, e);
}

int ddos_count_step(struct ddos_counters *c, int64_t *sec)
{
	uint32_t s = c->H;

	if (!c->started || c->H >= c->target)
		return 0;
	for (uint32_t i = 0; i < c->det_hw; i++) {
		struct ddos_detail *d = &c->det[i];
		if (!d->kind)
			continue;
		ddos_dring_step(&d->r, s);
		for (int v = 0; v < DDOS_VEC_N; v++) {
			d->vb[v] *= 0.875f;
			d->vp[v] *= 0.875f;
		}
	}
	for (uint32_t i = 0; i < c->host_hw; i++) {
		struct ddos_host *h = &c->host[i];
		if (i + 8 < c->host_hw) {
			/* 256-byte strides through tens of megabytes: ask ahead
			 * (the head, the bookkeeping line, this second's slot). */
			__builtin_prefetch(&c->host[i + 8], 1);
			__builtin_prefetch((const char *)&c->host[i + 8] + 64, 1);
			__builtin_prefetch(&c->host[i + 8].sl.near[s % DDOS_NEAR], 1);
		}
		if (!(h->e.flags & ENT_USED))
			continue;
		host_step(c, h, s);
		if (h->prefix && (h->e.ring.run_b || h->e.ring.run_p))
			agg_child(&c->pfx[h->prefix - 1], s, h->e.ring.run_b, h->e.ring.run_p);
		if (h->e.detail)
			detail_tick(c, &h->e, DDOS_T_HOST, s);
	}
	for (uint32_t i = 0; i < c->pfx_hw; i++) {
		struct ddos_agg *p = &c->pfx[i];
		if (!(p->e.flags & ENT_USED))
			continue;
		ddos_ring_step(&p->e.ring, &p->sl, s);
		if (p->e.ring.run_b || p->e.ring.run_p)
			agg_child(&c->grp[p->e.group], s, p->e.ring.run_b, p->e.ring.run_p);
		if (p->e.detail)
			detail_tick(c, &p->e, DDOS_T_PREFIX, s);
	}
	for (size_t i = 0; i < c->cc.ng; i++) {
		ddos_ring_step(&c->grp[i].e.ring, &c->grp[i].sl, s);
		if (c->grp[i].e.detail)
			detail_tick(c, &c->grp[i].e, DDOS_T_GROUP, s);
	}
	c->H++;
	c->st.seconds++;
	*sec = s;
	return 1;
}

/* ---- reload ---- */

void ddos_cc_group_map(const struct ddos_cc *old, const struct ddos_cc *ncc, int32_t *gmap)
{
	for (size_t i = 0; i < old->ng; i++) {
		gmap[i] = -1;
		for (size_t j = 0; j < ncc->ng; j++)
			if (!strcmp(old->g[i].name, ncc->g[j].name)) {
				gmap[i] = (int32_t)j;
				break;
			}
	}
}

int ddos_cc_fate(const struct ddos_counters *c, const struct ddos_cc *ncc, const int32_t *gmap,
		 int kind, uint32_t idx, uint16_t *group, uint8_t *allow)
{
	uint8_t a[16];
	unsigned plen;
	uint32_t g;

	if (kind == DDOS_T_GROUP) {
		if (gmap[idx] < 0)
			return M_ENOTFOUND;
		*group = (uint16_t)gmap[idx];
		*allow = ncc->g[*group].allow_any ? ENT_ALLOW : 0;
		return M_OK;
	}
	if (kind == DDOS_T_HOST) {
		put_be64(a, c->host[idx].hi);
		put_be64(a + 8, c->host[idx].lo);
		plen = 128;
		/* A host goes where its address now belongs. */
		g = ddos_lpm_lookup(ncc->groups, a);
	} else {
		put_be64(a, c->pfx[idx].hi);
		put_be64(a + 8, c->pfx[idx].lo);
		plen = c->pfx[idx].plen;
		/* An aggregate is keyed by its group: it follows the name. */
		g = gmap[c->pfx[idx].e.group] < 0 ? DDOS_LPM_NONE : (uint32_t)gmap[c->pfx[idx].e.group];
	}
	if (g == DDOS_LPM_NONE)
		return M_ENOTFOUND;
	*group = (uint16_t)g;
	*allow = allow_flag_cc(ncc, (uint16_t)g, a, plen);
	return M_OK;
}

static void set_allow(struct ddos_ent *e, uint8_t allow, struct ddos_count_reload *st)
{
	if ((e->flags & ENT_ALLOW) != allow)
		st->allow_changed++;
	e->flags = (uint8_t)((e->flags & ~ENT_ALLOW) | allow);
}

void ddos_count_reconfigure(struct ddos_counters *c, struct ddos_cc *ncc, struct ddos_agg *grp,
			    struct ddos_count_reload *st)
{
	int32_t gmap[DDOS_MAX_GROUPS], inv[DDOS_MAX_GROUPS];
	struct ddos_cc old = c->cc;
	uint16_t g;
	uint8_t allow;

	memset(st, 0, sizeof(*st));
	/* What the tables were sized for, and the aggregates' keys, stay. */
	ncc->delay = old.delay;
	ncc->timeline_points = old.timeline_points;
	ncc->max_hosts = old.max_hosts;
	ncc->max_prefixes = old.max_prefixes;
	ncc->max_detail = old.max_detail;
	ncc->max_attacks = old.max_attacks;
	ncc->max_exporters = old.max_exporters;
	ncc->prefix_v4 = old.prefix_v4;
	ncc->prefix_v6 = old.prefix_v6;
	ddos_cc_group_map(&old, ncc, gmap);
	for (size_t j = 0; j < ncc->ng; j++)
		inv[j] = -1;
	for (size_t i = 0; i < old.ng; i++)
		if (gmap[i] >= 0)
			inv[gmap[i]] = (int32_t)i;

	/* Hosts first: one that moves leaves its aggregate (the next record
	 * finds the one of its new group), so aggregates of a group that is
	 * gone are referenced by no host when their turn comes. */
	for (uint32_t i = 0; i < c->host_hw; i++) {
		struct ddos_host *h = &c->host[i];
		if (!(h->e.flags & ENT_USED))
			continue;
		if (ddos_cc_fate(c, ncc, gmap, DDOS_T_HOST, i, &g, &allow) < 0) {
			if (h->e.detail)
				detail_release(c, &h->e);
			host_remove(c, i);
			st->hosts_dropped++;
			continue;
		}
		if (gmap[h->e.group] != (int32_t)g) {
			if (h->prefix)
				c->pfx[h->prefix - 1].refs--;
			h->prefix = 0;
			st->hosts_moved++;
		}
		h->e.group = g;
		set_allow(&h->e, allow, st);
	}
	/* Aggregates: their bucket depends on the group's index, so the
	 * chains are built again. */
	memset(c->pbkt, 0, ((size_t)c->pmask + 1) * sizeof(*c->pbkt));
	c->pfx_n = 0;
	for (uint32_t i = 0; i < c->pfx_hw; i++) {
		struct ddos_agg *p = &c->pfx[i];
		uint32_t b;
		if (!(p->e.flags & ENT_USED))
			continue;
		if (ddos_cc_fate(c, ncc, gmap, DDOS_T_PREFIX, i, &g, &allow) < 0) {
			if (p->e.detail)
				detail_release(c, &p->e);
			/* No host points here by now (they moved or went): a
			 * stale reference would be worse than a slow loop. */
			for (uint32_t k = 0; p->refs && k < c->host_hw; k++)
				if (c->host[k].prefix == i + 1) {
					c->host[k].prefix = 0;
					p->refs--;
				}
			p->e.flags = 0;
			st->prefixes_dropped++;
			continue;
		}
		p->e.group = g;
		set_allow(&p->e, allow, st);
		b = (uint32_t)(ddos_hash2(p->hi, p->lo ^ g, c->seed) & c->pmask);
		p->next = c->pbkt[b];
		c->pbkt[b] = i + 1;
		c->pfx_n++;
	}
	/* Groups: by name; a new one starts empty, a removed one is gone. */
	for (size_t i = 0; i < old.ng; i++)
		if (gmap[i] < 0 && c->grp[i].e.detail)
			detail_release(c, &c->grp[i].e);
	for (size_t j = 0; j < ncc->ng; j++) {
		struct ddos_agg *a = &grp[j];
		if (inv[j] >= 0) {
			*a = c->grp[inv[j]];
			if (a->e.detail)
				c->det[a->e.detail - 1].owner = (uint32_t)j;
		} else {
			memset(a, 0, sizeof(*a));
		}
		a->e.group = (uint16_t)j;
		a->e.flags |= ENT_USED;
		set_allow(&a->e, ncc->g[j].allow_any ? ENT_ALLOW : 0, st);
		a->hi = ddos_be64(ncc->g[j].first.a);
		a->lo = ddos_be64(ncc->g[j].first.a + 8);
		a->plen = ncc->g[j].first.len;
	}
	free(c->grp);
	c->grp = grp;
	c->cc = *ncc;
	memset(ncc, 0, sizeof(*ncc));
	ddos_cc_free(&old);
}

/* ---- reading ---- */

/* Rates by class from a second's total (units, packets, flow records) and,
 * when d is not NULL, its detail ring's figures of the same second. */
static void rates_from(const struct ddos_detail *d, uint32_t tb, uint32_t tp, uint32_t tf,
		       const uint32_t db[DD_N], const uint32_t dp[DD_N], const uint32_t df[DD_N],
		       struct ddos_rates out[DDOS_C_N])
{
	double sb, sp, sf, vb = 0, vp = 0;
	double cb[DD_N], cp[DD_N], cf[DD_N];

	memset(out, 0, sizeof(*out) * DDOS_C_N);
	out[DDOS_C_TOTAL] = (struct ddos_rates){ tb * DDOS_UNIT_BITS, tp, tf };
	if (!d)
		return;
	/* The detail may have begun after some of the total's records: its
	 * classes are scaled to the total, second by second. */
	sb = db[DD_ALL] ? (double)tb / db[DD_ALL] : 0;
	sp = dp[DD_ALL] ? (double)tp / dp[DD_ALL] : 0;
	sf = df[DD_ALL] ? (double)tf / df[DD_ALL] : 0;
	for (int k = 0; k < DD_N; k++) {
		cb[k] = db[k] * sb * DDOS_UNIT_BITS;
		cp[k] = dp[k] * sp;
		cf[k] = df[k] * sf;
	}
	static const int map[DD_N] = { -1, DDOS_C_TCP, DDOS_C_UDP, DDOS_C_ICMP, DDOS_C_SYN, DDOS_C_ACK,
				       DDOS_C_RST, DDOS_C_FRAG, DDOS_C_AMP };
	for (int k = 1; k < DD_N; k++)
		out[map[k]] = (struct ddos_rates){ cb[k], cp[k], cf[k] };
	out[DDOS_C_OTHER].bps = fmax(0, cb[DD_ALL] - cb[DD_TCP] - cb[DD_UDP] - cb[DD_ICMP]);
	out[DDOS_C_OTHER].pps = fmax(0, cp[DD_ALL] - cp[DD_TCP] - cp[DD_UDP] - cp[DD_ICMP]);
	out[DDOS_C_OTHER].fps = fmax(0, cf[DD_ALL] - cf[DD_TCP] - cf[DD_UDP] - cf[DD_ICMP]);
	/* Vectors: the spread amplification total, split by each vector's
	 * share of recent arrivals (an approximation: one ring per vector
	 * would cost 24 more rings per hot target). */
	for (int v = 0; v < DDOS_VEC_N; v++) {
		vb += d->vb[v];
		vp += d->vp[v];
	}
	for (int v = 0; v < DDOS_VEC_N; v++) {
		double fb = vb > 0 ? d->vb[v] / vb : 0, fp = vp > 0 ? d->vp[v] / vp : 0;
		out[DDOS_C_VEC + v] = (struct ddos_rates){ cb[DD_AMP] * fb, cp[DD_AMP] * fp, cf[DD_AMP] * fp };
	}
}

void ddos_ent_rates(const struct ddos_counters *c, const struct ddos_ent *e,
		    struct ddos_rates out[DDOS_C_N])
{
	const struct ddos_ring *t = &e->ring;
	const struct ddos_detail *d = e->detail ? &c->det[e->detail - 1] : NULL;

	rates_from(d, t->run_b, t->run_p, t->cur_f, d ? d->r.run_b : NULL, d ? d->r.run_p : NULL,
		   d ? d->r.cur_f : NULL, out);
}

void ddos_ent_peek_total(const struct ddos_counters *c, const struct ddos_ent *e, uint32_t s,
			 uint32_t tot[3])
{
	const struct ddos_slots *sl = NULL;
	const struct ddos_nslots *nsl = NULL;

	/* The slots beside e in its owner, or those lent to a host. */
	if (e->ring.wide) {
		sl = &c->wide[e->ring.wide - 1];
	} else if ((const char *)e >= (const char *)c->host &&
		   (const char *)e < (const char *)(c->host + c->host_cap)) {
		nsl = &((const struct ddos_host *)((const char *)e - offsetof(struct ddos_host, e)))->sl;
	} else {
		sl = &((const struct ddos_agg *)((const char *)e - offsetof(struct ddos_agg, e)))->sl;
	}
	ddos_ring_peek(&e->ring, sl, nsl, c->H, s, &tot[0], &tot[1], &tot[2]);
}

void ddos_ent_peek(const struct ddos_counters *c, const struct ddos_ent *e, uint32_t s,
		   uint32_t tot[3], struct ddos_rates out[DDOS_C_N])
{
	const struct ddos_detail *d = e->detail ? &c->det[e->detail - 1] : NULL;
	uint32_t db[DD_N] = { 0 }, dp[DD_N] = { 0 }, df[DD_N] = { 0 };

	ddos_ent_peek_total(c, e, s, tot);
	if (d)
		ddos_dring_peek(&d->r, c->H, s, db, dp, df);
	rates_from(d, tot[0], tot[1], tot[2], db, dp, df, out);
}

size_t ddos_ent_top_src(const struct ddos_counters *c, const struct ddos_ent *e,
			struct ddos_top_src *out, size_t max)
{
	struct ddos_hh t[DDOS_HH_SRC];
	size_t n = 0;

	if (!e->detail)
		return 0;
	memcpy(t, c->det[e->detail - 1].src, sizeof(t));
	qsort(t, DDOS_HH_SRC, sizeof(t[0]), hh_cmp);
	for (size_t i = 0; i < DDOS_HH_SRC && n < max && t[i].n; i++) {
		struct ddos_top_src *o = &out[n++];
		memset(o, 0, sizeof(*o));
		put_be64(o->ip.a, t[i].hi);
		put_be64(o->ip.a + 8, t[i].lo);
		o->ip.family = memcmp(o->ip.a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) ? FLOW_IPV6 : FLOW_IPV4;
		o->bytes = (double)t[i].n;
	}
	return n;
}

size_t ddos_ent_top_port(const struct ddos_counters *c, const struct ddos_ent *e,
			 struct ddos_top_port *out, size_t max)
{
	struct ddos_hh t[DDOS_HH_PORT];
	size_t n = 0;

	if (!e->detail)
		return 0;
	memcpy(t, c->det[e->detail - 1].port, sizeof(t));
	qsort(t, DDOS_HH_PORT, sizeof(t[0]), hh_cmp);
	for (size_t i = 0; i < DDOS_HH_PORT && n < max && t[i].n; i++)
		out[n++] = (struct ddos_top_port){ (uint16_t)t[i].hi, (uint8_t)(t[i].hi >> 16),
						   (double)t[i].n };
	return n;
}

static void view_fill(const struct ddos_counters *c, const struct ddos_ent *e,
		      enum ddos_target_kind kind, struct ddos_target_view *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = kind;
	out->group = c->cc.g[e->group].name;
	out->second = (int64_t)c->H - 1;
	ddos_ent_rates(c, e, out->cls);
	out->detailed = e->detail != 0;
	out->in_attack = e->attack != 0;
	out->over = (e->flags & ENT_OVER) != 0;
	out->nsrc = ddos_ent_top_src(c, e, out->src, DDOS_TOP_SRC);
	out->nport = ddos_ent_top_port(c, e, out->port, DDOS_TOP_PORT);
}

int ddos_count_host(const struct ddos_counters *c, const struct flow_ip *ip,
		    struct ddos_target_view *out)
{
	const struct ddos_host *h = host_find(c, ddos_be64(ip->a), ddos_be64(ip->a + 8));

	if (!h)
		return M_ENOTFOUND;
	view_fill(c, &h->e, DDOS_T_HOST, out);
	out->base_bps = h->base_u * DDOS_UNIT_BITS;
	out->base_pps = h->base_p;
	return M_OK;
}

int ddos_count_prefix(const struct ddos_counters *c, const struct flow_ip *ip,
		      struct ddos_target_view *out)
{
	uint64_t hi = ddos_be64(ip->a), lo = ddos_be64(ip->a + 8);
	const struct ddos_host *h = host_find(c, hi, lo);
	uint32_t g;

	if (h && h->prefix) {
		view_fill(c, &c->pfx[h->prefix - 1].e, DDOS_T_PREFIX, out);
		return M_OK;
	}
	if ((g = ddos_lpm_lookup(c->cc.groups, ip->a)) == DDOS_LPM_NONE)
		return M_ENOTFOUND;
	ddos_mask(&hi, &lo, ip->family == FLOW_IPV4 ? c->cc.prefix_v4 : c->cc.prefix_v6);
	for (uint32_t i = c->pbkt[ddos_hash2(hi, lo ^ g, c->seed) & c->pmask]; i; i = c->pfx[i - 1].next) {
		const struct ddos_agg *p = &c->pfx[i - 1];
		if (p->hi == hi && p->lo == lo && p->e.group == g) {
			view_fill(c, &p->e, DDOS_T_PREFIX, out);
			return M_OK;
		}
	}
	return M_ENOTFOUND;
}

int ddos_count_group(const struct ddos_counters *c, const char *name,
		     struct ddos_target_view *out)
{
	for (size_t i = 0; i < c->cc.ng; i++)
		if (!strcmp(c->cc.g[i].name, name)) {
			view_fill(c, &c->grp[i].e, DDOS_T_GROUP, out);
			return M_OK;
		}
	return M_ENOTFOUND;
}

const struct ddos_count_stats *ddos_count_stats(const struct ddos_counters *c)
{
	return &c->st;
}

size_t ddos_count_hosts(const struct ddos_counters *c)
{
	return c->host_n;
}

size_t ddos_count_prefixes(const struct ddos_counters *c)
{
	return c->pfx_n;
}

size_t ddos_count_details(const struct ddos_counters *c)
{
	return c->det_n;
}

size_t ddos_count_memory(const struct ddos_counters *c)
{
	size_t m = sizeof(*c);

	m += (size_t)c->host_cap * sizeof(*c->host) + ((size_t)c->hmask + 1) * sizeof(uint64_t);
	m += (size_t)c->host_cap * sizeof(*c->wide);
	m += (size_t)c->pfx_cap * sizeof(*c->pfx) + ((size_t)c->pmask + 1) * sizeof(uint32_t);
	m += c->cc.ng * (sizeof(*c->grp) + sizeof(*c->cc.g));
	m += (size_t)c->det_cap * sizeof(*c->det);
	m += ((size_t)c->exp_mask + 1) * sizeof(*c->exp);
	m += ddos_lpm_memory(c->cc.groups) + ddos_lpm_memory(c->cc.allow_src) +
	     ddos_lpm_memory(c->cc.allow_dst);
	for (size_t i = 0; i < c->cc.ng; i++)
		m += ddos_lpm_memory(c->cc.g[i].allow_src) + ddos_lpm_memory(c->cc.g[i].allow_dst);
	return m;
}

void ddos_count_exporters(const struct ddos_counters *c, ddos_exporter_fn fn, void *arg)
{
	for (uint32_t i = 0; i <= c->exp_mask; i++)
		if (c->exp[i].used)
			fn(arg, &c->exp[i].s);
}
