/*
 * DDoS detector (see ddos_detect.h): per closed second, groups, then
 * aggregates, then hosts are judged, so that a carpet attack found on an
 * aggregate covers the hosts below it before they are looked at. Attacks
 * live in a fixed table; their timelines grow up to timeline_points and
 * are then halved (each point keeps the larger of two), so an attack of
 * any length costs a bounded amount of memory.
 */
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "ddos/ddos_detect.h"
#include "ddos/ddos_int.h"
#include "ddos/ddos_shard_int.h"

#define EXP_WARNED 0x1

struct att {
	struct ddos_attack a;      /* what handlers see */
	int used;
	int kind;
	uint32_t owner;            /* index of the target in its table */
	double cb[DDOS_C_N], cp[DDOS_C_N];   /* bytes and packets by class, so far */
	struct ddos_point *tl;
	size_t tl_cap;
	struct ddos_point part;    /* the point being filled */
	uint32_t under;            /* consecutive seconds under (cooldown <= 86400) */
	uint32_t part_n;
	int64_t next_update;
	int detailed;              /* any second had class detail */
	int early;                 /* started before its last second closed: the
				    * classes, bytes and packets so far are that
				    * second's as they stood, replaced when it
				    * closes */
	double early_bytes, early_packets;
	uint32_t nsec;             /* judged seconds since it started */
	int named;                 /* had the evidence to be named: stays named */
	int match_prov;            /* the match is a protocol's, taken while classifying */
	uint32_t cand_amp;         /* a different match ... */
	uint8_t cand_proto;
	uint32_t cand_n;           /* ... and the judged seconds it has held */
};

struct ddos_detector {
	struct ddos_counters *c;
	struct ddos_handlers h;
	void *arg;
	struct att *att;
	uint32_t natt;             /* in use */
	uint64_t next_id;
	uint8_t *exp_warned;       /* per exporter slot */
	struct ddos_detect_stats st;

	/* One shard of several (ddos_shard.h); gs is NULL for a detector
	 * that judges everything itself. */
	struct ddos_gsync *gs;
	unsigned shard;
	uint32_t gen;              /* configurations put in force: the merge's generation */
	int pending;               /* a closed second published, not judged yet */
	uint32_t pending_s;
	uint32_t applied;          /* the last verdict's second applied */
	uint8_t *gflags;           /* DDOS_MAX_GROUPS: the groups' verdict bits in force */
	uint8_t *gdec;             /* shard 0: the verdict being made */
	struct ddos_gview *gv;     /* shard 0: each group's last second, summed */
};

/* ---- classification ---- */

struct cand {
	double share;
	uint32_t v;
	int amp;                   /* vector index, or -1 */
	const char *name;
};

static int cand_cmp(const void *x, const void *y)
{
	const struct cand *a = x, *b = y;

	return a->share < b->share ? 1 : a->share > b->share ? -1 : 0;
}

void ddos_classify(const double cb[DDOS_C_N], const double cp[DDOS_C_N], double share,
		   uint32_t *vectors, uint32_t *amp, char *out, size_t outsz)
{
	struct cand c[DDOS_VEC_N + 8];
	double tb = cb[DDOS_C_TOTAL], tp = cp[DDOS_C_TOTAL];
	size_t n = 0, len = 0, named = 0;

	*vectors = 0;
	*amp = 0;
	if (outsz)
		out[0] = '\0';
	if (tb <= 0 && tp <= 0) {
		snprintf(out, outsz, "no traffic");
		return;
	}
	for (int v = 0; v < DDOS_VEC_N; v++)
		if (tb > 0 && cb[DDOS_C_VEC + v] > 0)
			c[n++] = (struct cand){ cb[DDOS_C_VEC + v] / tb, DDOS_V_AMP, v, ddos_vectors[v].name };
	if (tp > 0) {
		double syn = cp[DDOS_C_SYN], ack = cp[DDOS_C_ACK], rst = cp[DDOS_C_RST];
		double tcp = fmax(0, cp[DDOS_C_TCP] - syn - ack - rst);
		double udp = fmax(0, cp[DDOS_C_UDP] - cp[DDOS_C_AMP] - cp[DDOS_C_FRAG]);
		c[n++] = (struct cand){ syn / tp, DDOS_V_SYN, -1, "SYN flood" };
		c[n++] = (struct cand){ ack / tp, DDOS_V_ACK, -1, "ACK flood" };
		c[n++] = (struct cand){ rst / tp, DDOS_V_RST, -1, "RST flood" };
		c[n++] = (struct cand){ tcp / tp, DDOS_V_TCP, -1, "TCP flood" };
		c[n++] = (struct cand){ udp / tp, DDOS_V_UDP, -1, "UDP flood" };
		c[n++] = (struct cand){ cp[DDOS_C_ICMP] / tp, DDOS_V_ICMP, -1, "ICMP flood" };
		c[n++] = (struct cand){ cp[DDOS_C_FRAG] / tp, DDOS_V_FRAG, -1, "IP fragment flood" };
		c[n++] = (struct cand){ cp[DDOS_C_OTHER] / tp, DDOS_V_OTHER, -1, "IP protocol flood" };
	}
	qsort(c, n, sizeof(c[0]), cand_cmp);
	for (size_t i = 0; i < n; i++) {
		int w;
		if (c[i].share <= 0 || (named && c[i].share < share))
			break;
		if (!named && c[i].share < share && i > 0)
			break;
		w = snprintf(out + len, outsz - len, "%s%s%s", named ? " + " : "", c[i].name,
			     c[i].amp >= 0 ? " amplification" : "");
		if (w < 0 || (size_t)w >= outsz - len) {
			out[len] = '\0';
			break;
		}
		len += (size_t)w;
		named++;
		*vectors |= c[i].v;
		if (c[i].amp >= 0)
			*amp |= 1u << c[i].amp;
	}
	if (!named)
		snprintf(out, outsz, "unclassified flood");
}

/* ---- attacks ---- */

static void target_of(const struct ddos_detector *d, const struct ddos_ent *e, int kind,
		      uint32_t owner, struct ddos_attack *a)
{
	const struct ddos_counters *c = d->c;
	const struct ddos_gc *g = &c->cc.g[e->group];
	uint64_t hi, lo;
	unsigned plen;
	struct ddos_pfx p;
	char s[64];

	if (kind == DDOS_T_HOST) {
		hi = c->host[owner].hi;
		lo = c->host[owner].lo;
		plen = 128;
	} else if (kind == DDOS_T_PREFIX) {
		hi = c->pfx[owner].hi;
		lo = c->pfx[owner].lo;
		plen = c->pfx[owner].plen;
	} else {
		hi = c->grp[owner].hi;
		lo = c->grp[owner].lo;
		plen = c->grp[owner].plen;
	}
	for (int i = 0; i < 8; i++) {
		p.a[i] = (uint8_t)(hi >> (56 - 8 * i));
		p.a[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
	}
	p.len = (uint8_t)plen;
	memcpy(a->target.a, p.a, 16);
	a->target.family = memcmp(p.a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) ? FLOW_IPV6 : FLOW_IPV4;
	a->plen = (uint8_t)(a->target.family == FLOW_IPV4 && plen >= 96 ? plen - 96 : plen);
	if (kind == DDOS_T_HOST)
		flow_ip_str(&a->target, a->target_str, sizeof(a->target_str));
	else if (kind == DDOS_T_PREFIX)
		snprintf(a->target_str, sizeof(a->target_str), "%s", ddos_pfx_str(&p, s, sizeof(s)));
	else if (g->nprefixes)
		snprintf(a->target_str, sizeof(a->target_str), "group %.40s (%s%s)", g->name,
			 ddos_pfx_str(&p, s, sizeof(s)), g->nprefixes > 1 ? ", ..." : "");
	else
		snprintf(a->target_str, sizeof(a->target_str), "group %.50s", g->name);
}


static void tl_push(struct ddos_detector *d, struct att *t, const struct ddos_point *p)
{
	size_t max = d->c->cc.timeline_points;

	if (t->a.npoints == t->tl_cap && t->tl_cap < max) {
		size_t nc = t->tl_cap ? t->tl_cap * 2 : 64;
		struct ddos_point *n;
		if (nc > max)
			nc = max;
		if ((n = realloc(t->tl, nc * sizeof(*n)))) {
			t->tl = n;
			t->tl_cap = nc;
		}
	}
	if (t->a.npoints == t->tl_cap) {
		/* Full (or no memory to grow): halve, each point keeping the
		 * larger of a pair, and double the seconds per point. */
		size_t h = t->a.npoints / 2;
		if (!h)
			return;
		for (size_t i = 0; i < h; i++) {
			const struct ddos_point *x = &t->tl[2 * i], *y = &t->tl[2 * i + 1];
			t->tl[i] = (struct ddos_point){ x->t, fmaxf(x->bps, y->bps), fmaxf(x->pps, y->pps),
							fmaxf(x->fps, y->fps) };
		}
		if (t->a.npoints % 2)
			t->tl[h++] = t->tl[t->a.npoints - 1];
		t->a.npoints = h;
		t->a.step *= 2;
	}
	t->tl[t->a.npoints++] = *p;
	t->a.timeline = t->tl;
}

static void tl_second(struct ddos_detector *d, struct att *t, int64_t s, const struct ddos_rates *r)
{
	if (t->part_n == 0) {
		t->part = (struct ddos_point){ s, (float)r->bps, (float)r->pps, (float)r->fps };
	} else {
		t->part.bps = fmaxf(t->part.bps, (float)r->bps);
		t->part.pps = fmaxf(t->part.pps, (float)r->pps);
		t->part.fps = fmaxf(t->part.fps, (float)r->fps);
	}
	if (++t->part_n >= t->a.step) {
		tl_push(d, t, &t->part);
		t->part_n = 0;
	}
}

/* The strongest tier whose threshold the peak reached (tiers are listed
 * mildest first); none for an allow-listed target. */
static void att_tier(const struct ddos_gc *g, struct att *t)
{
	int tier = 0;

	for (size_t i = 0; i < g->ntiers; i++) {
		const struct ddos_tier *x = &g->tiers[i];
		if ((x->bps && t->a.peak_bps >= (double)x->bps) || (x->pps && t->a.peak_pps >= (double)x->pps))
			tier = (int)i + 1;
	}
	if (t->a.allowlisted)
		tier = 0;
	t->a.tier = tier;
	t->a.tier_name = tier ? g->tiers[tier - 1].name : NULL;
}

/* Names, protocol and top talkers from what the attack has seen so far.
 * Vectors are named only from enough evidence: DDOS_CLASSIFY_RECORDS
 * flow records behind the classes (at 1:1000 sampling an attack at 1.2x
 * a 20 kpps threshold has some 24 samples a second, and its first ones
 * may all be fragments of a reflection whose first fragments, with the
 * port, come next), or DDOS_CLASSIFY_SECONDS judged seconds; until then
 * the attack is "unclassified flood (classifying)", and its protocol is
 * given from DDOS_PROTO_RECORDS records (80% of packets out of 12
 * records: a protocol under half of the traffic passes in 2% of draws). */
static void att_refresh(struct ddos_detector *d, struct att *t, const struct ddos_ent *e)
{
	const struct ddos_counters *c = d->c;
	char cls[160];
	double tp = t->cp[DDOS_C_TOTAL];

	t->a.classifying = !t->named && t->a.records < DDOS_CLASSIFY_RECORDS &&
			   t->nsec < DDOS_CLASSIFY_SECONDS;
	t->named = !t->a.classifying;
	if (t->a.classifying) {
		snprintf(cls, sizeof(cls), "unclassified flood (%s)",
			 t->a.end ? "too few records to classify" : "classifying");
		t->a.vectors = t->a.amp = 0;
	} else if (t->detailed) {
		ddos_classify(t->cb, t->cp, c->cc.vector_share, &t->a.vectors, &t->a.amp, cls, sizeof(cls));
	} else {
		snprintf(cls, sizeof(cls), "unclassified flood");
		t->a.vectors = t->a.amp = 0;
	}
	if (t->kind == DDOS_T_HOST) {
		snprintf(t->a.summary, sizeof(t->a.summary), "%s", cls);
	} else {
		t->a.vectors |= DDOS_V_CARPET;
		snprintf(t->a.summary, sizeof(t->a.summary), "carpet bombing of %s%.60s (%.100s)",
			 t->kind == DDOS_T_PREFIX ? "" : "group ",
			 t->kind == DDOS_T_PREFIX ? t->a.target_str : t->a.group, cls);
	}
	t->a.proto = 0;
	if (tp > 0 && (!t->a.classifying || t->a.records >= DDOS_PROTO_RECORDS)) {
		if (t->cp[DDOS_C_TCP] >= 0.8 * tp)
			t->a.proto = 6;
		else if (t->cp[DDOS_C_UDP] >= 0.8 * tp)
			t->a.proto = 17;
		else if (t->cp[DDOS_C_ICMP] >= 0.8 * tp)
			t->a.proto = t->a.target.family == FLOW_IPV6 ? 58 : 1;
	}
	if (t->kind == DDOS_T_GROUP && d->gv) {
		/* The group's top talkers over every shard. */
		const struct ddos_gview *v = &d->gv[t->owner];
		if (v->nsrc || v->nport) {
			t->a.nsrc = v->nsrc;
			t->a.nport = v->nport;
			memcpy(t->a.src, v->src, v->nsrc * sizeof(v->src[0]));
			memcpy(t->a.port, v->port, v->nport * sizeof(v->port[0]));
		}
	} else if (e->detail) {
		t->a.nsrc = ddos_ent_top_src(c, e, t->a.src, DDOS_TOP_SRC);
		t->a.nport = ddos_ent_top_port(c, e, t->a.port, DDOS_TOP_PORT);
	}
}

/* The mitigation's match (struct ddos_attack.match_*) from the latest
 * classification, held against flapping: the first one established is
 * taken at once (time to mitigate), and so are the vectors first named
 * after a match on the protocol alone; any other change must hold
 * DDOS_MATCH_HOLD judged seconds in a row (closed: whether a call is one
 * of those). A share that hovers about vector_share changes the name, not
 * the match, unless it is an amplification vector's port. 1 when the
 * match changed. */
static int att_match(struct att *t, int closed)
{
	struct ddos_attack *a = &t->a;
	uint32_t amp = (a->vectors & DDOS_V_AMP) ? a->amp : 0;
	uint8_t proto = amp ? 17 : a->proto;

	if (a->classifying && !proto) {
		t->cand_n = 0;
		return 0;   /* nothing established: a rule waits */
	}
	if (a->match_ready && amp == a->match_amp && proto == a->match_proto) {
		t->match_prov &= a->classifying;
		t->cand_n = 0;
		return 0;
	}
	if (a->match_ready && !(t->match_prov && !a->classifying)) {
		if (!closed)
			return 0;
		if (t->cand_n && amp == t->cand_amp && proto == t->cand_proto) {
			t->cand_n++;
		} else {
			t->cand_amp = amp;
			t->cand_proto = proto;
			t->cand_n = 1;
		}
		if (t->cand_n < DDOS_MATCH_HOLD)
			return 0;
	}
	a->match_ready = 1;
	a->match_amp = amp;
	a->match_proto = proto;
	t->match_prov = a->classifying;
	t->cand_n = 0;
	return 1;
}

/* One judged second of an attack: peaks, totals, classes, timeline. */
static void att_second(struct ddos_detector *d, struct att *t, const struct ddos_ent *e,
		       const struct ddos_rates *r, int64_t s)
{
	const struct ddos_rates *tot = &r[DDOS_C_TOTAL];

	t->a.cur_bps = tot->bps;
	t->a.cur_pps = tot->pps;
	t->a.cur_fps = tot->fps;
	if (tot->bps > t->a.peak_bps || tot->pps > t->a.peak_pps) {
		if (t->kind == DDOS_T_GROUP && d->gv) {
			const struct ddos_gview *v = &d->gv[t->owner];
			if (v->has_mx && v->sec == (uint32_t)s)
				t->a.hosts = v->nchild;
		} else if (t->kind != DDOS_T_HOST) {
			const struct ddos_agg *a = t->kind == DDOS_T_PREFIX ? &d->c->pfx[t->owner] :
				&d->c->grp[t->owner];
			if (a->mx_sec == (uint32_t)s)
				t->a.hosts = a->nchild;
		}
	}
	t->a.peak_bps = fmax(t->a.peak_bps, tot->bps);
	t->a.peak_pps = fmax(t->a.peak_pps, tot->pps);
	t->a.peak_fps = fmax(t->a.peak_fps, tot->fps);
	if (t->early) {
		memset(t->cb, 0, sizeof(t->cb));
		memset(t->cp, 0, sizeof(t->cp));
		t->a.bytes -= t->early_bytes;
		t->a.packets -= t->early_packets;
		t->a.records = 0;
		t->detailed = 0;
		t->early = 0;
	}
	t->a.bytes += tot->bps / 8;
	t->a.packets += tot->pps;
	t->nsec++;
	if (t->kind == DDOS_T_GROUP && d->gv)
		t->a.records += tot->fps;   /* over the shards; their classes scaled */
	else if (e->detail)
		t->a.records += d->c->det[e->detail - 1].r.cur_f[DD_ALL];   /* the slot's own */
	if (e->detail) {
		t->detailed = 1;
		for (int k = 0; k < DDOS_C_N; k++) {
			t->cb[k] += r[k].bps / 8;
			t->cp[k] += r[k].pps;
		}
	}
	tl_second(d, t, s, tot);
}

/* Starts an attack on e whose first second over was `first`. s is the
 * second whose rates r decided it: a closed one, or (early) one still open,
 * whose figures then only seed the peaks and the name (from nrec flow
 * records of e's detail slot); its bytes and its timeline point come when
 * it closes. */
static void att_start(struct ddos_detector *d, struct ddos_ent *e, int kind, uint32_t owner,
		      int64_t first, int64_t s, const struct ddos_rates *r, const char *reason, int early,
		      double nrec)
{
	struct ddos_counters *c = d->c;
	const struct ddos_gc *g = &c->cc.g[e->group];
	struct att *t = NULL;
	uint32_t i;

	for (i = 0; i < c->cc.max_attacks; i++)
		if (!d->att[i].used) {
			t = &d->att[i];
			break;
		}
	if (!t) {
		d->st.refused++;
		return;
	}
	memset(t, 0, sizeof(*t));
	t->used = 1;
	t->kind = kind;
	t->owner = owner;
	t->a.id = d->gs ? ddos_gsync_next_id(d->gs) : d->next_id++;
	snprintf(t->a.id_str, sizeof(t->a.id_str), "ddos-%llu", (unsigned long long)t->a.id);
	t->a.kind = (enum ddos_target_kind)kind;
	target_of(d, e, kind, owner, &t->a);
	t->a.group = g->name;
	t->a.start = first;   /* earlier than s - trigger + 1 if the table was full */
	t->a.last = s;
	t->a.step = 1;
	t->a.allowlisted = (e->flags & ENT_ALLOW) != 0;
	snprintf(t->a.trigger, sizeof(t->a.trigger), "%s", reason);
	if (early) {
		const struct ddos_rates *tot = &r[DDOS_C_TOTAL];
		t->a.cur_bps = t->a.peak_bps = tot->bps;
		t->a.cur_pps = t->a.peak_pps = tot->pps;
		t->a.cur_fps = t->a.peak_fps = tot->fps;
		t->a.bytes = t->early_bytes = tot->bps / 8;
		t->a.packets = t->early_packets = tot->pps;
		if (e->over) {
			/* The closed second before it was over too: its peak counts. */
			struct ddos_rates rc[DDOS_C_N];
			ddos_ent_rates(d->c, e, rc);
			t->a.peak_bps = fmax(t->a.peak_bps, rc[DDOS_C_TOTAL].bps);
			t->a.peak_pps = fmax(t->a.peak_pps, rc[DDOS_C_TOTAL].pps);
			t->a.peak_fps = fmax(t->a.peak_fps, rc[DDOS_C_TOTAL].fps);
		}
		if (e->detail) {
			t->detailed = 1;
			t->a.records = nrec;
			for (int k = 0; k < DDOS_C_N; k++) {
				t->cb[k] = r[k].bps / 8;
				t->cp[k] = r[k].pps;
			}
		}
		t->early = 1;
	} else {
		att_second(d, t, e, r, s);
	}
	att_tier(g, t);
	att_refresh(d, t, e);
	att_match(t, 0);
	t->next_update = s + c->cc.update_interval;
	e->attack = i + 1;
	t->under = 0;
	d->natt++;
	d->st.started++;
	if (d->h.on_start)
		d->h.on_start(d->arg, &t->a);
}

static void att_end(struct ddos_detector *d, struct att *t, struct ddos_ent *e)
{
	if (t->part_n) {
		tl_push(d, t, &t->part);
		t->part_n = 0;
	}
	t->a.end = t->a.last + 1;
	att_refresh(d, t, e);
	att_tier(&d->c->cc.g[e->group], t);
	if (d->h.on_end)
		d->h.on_end(d->arg, &t->a);
	e->attack = 0;
	e->over = 0;
	free(t->tl);
	memset(t, 0, sizeof(*t));
	d->natt--;
	d->st.ended++;
}

/* ---- judging ---- */

static double metric_of(const struct ddos_rates *r, int m)
{
	return m == DDOS_M_BPS ? r->bps : m == DDOS_M_PPS ? r->pps : r->fps;
}

/* 1 when a threshold (times k) is passed; the first one is described in
 * reason. */
static int over_check(const struct ddos_tset *ts, const struct ddos_rates *r, int detailed, double k_,
		      char *reason, size_t rsz)
{
	for (unsigned i = 0; i < ts->n; i++) {
		const struct ddos_chk *k = &ts->chk[i];
		double v;
		if (k->cls != DDOS_C_TOTAL && !detailed)
			continue;
		v = metric_of(&r[k->cls], k->metric);
		if (v > k->thr * k_) {
			char a[16], b[16];
			snprintf(reason, rsz, "%s %s %s > %s", ddos_class_key(k->cls),
				 ddos_metric_key(k->metric), ddos_rate_str(v, a, sizeof(a)),
				 ddos_rate_str(k->thr, b, sizeof(b)));
			return 1;
		}
	}
	return 0;
}

/* The baseline alarm: baseline x multiple, never below the floor, once
 * the host has been watched for the warm-up. gap: idle seconds not yet
 * folded into the baseline (base_catch_up), for a second still open. */
static int base_check(const struct ddos_cc *cc, const struct ddos_gc *g, const struct ddos_host *h,
		      uint32_t gap, const struct ddos_rates *tot, char *reason, size_t rsz)
{
	double tb, tp, f = gap ? pow(1 - cc->base_alpha, (double)gap) : 1;
	char a[16], b[16];

	if (g->baseline <= 0 || h->base_n + (uint64_t)gap < cc->base_warmup)
		return 0;
	tb = fmax(g->floor_bps, g->baseline * h->base_u * f * DDOS_UNIT_BITS);
	tp = fmax(g->floor_pps, g->baseline * h->base_p * f);
	if (tot->bps > tb) {
		snprintf(reason, rsz, "bps %s > baseline %s", ddos_rate_str(tot->bps, a, sizeof(a)),
			 ddos_rate_str(tb, b, sizeof(b)));
		return 1;
	}
	if (tot->pps > tp) {
		snprintf(reason, rsz, "pps %s > baseline %s", ddos_rate_str(tot->pps, a, sizeof(a)),
			 ddos_rate_str(tp, b, sizeof(b)));
		return 1;
	}
	return 0;
}

/* Idle seconds since the baseline last moved count as zero traffic. */
static void base_catch_up(const struct ddos_cc *cc, struct ddos_host *h, uint32_t s)
{
	if (s > h->base_sec + 1) {
		uint32_t gap = s - h->base_sec - 1;
		float f = (float)pow(1 - cc->base_alpha, (double)gap);
		h->base_u *= f;
		h->base_p *= f;
		h->base_n += gap;
	}
	h->base_sec = s;
}

/* EWMA; while young, the running mean (a faster start than the EWMA's). */
static void base_learn(const struct ddos_cc *cc, struct ddos_host *h, const struct ddos_ent *e)
{
	double a = fmax(cc->base_alpha, 1.0 / ((double)h->base_n + 1));

	h->base_u += (float)(a * ((double)e->ring.run_b - h->base_u));
	h->base_p += (float)(a * ((double)e->ring.run_p - h->base_p));
	h->base_n++;
}

static void att_maybe_update(struct ddos_detector *d, struct att *t, const struct ddos_ent *e,
			     int64_t s)
{
	int tier = t->a.tier, allow = t->a.allowlisted, matched;
	uint32_t v = t->a.vectors, amp = t->a.amp;

	att_tier(&d->c->cc.g[e->group], t);
	att_refresh(d, t, e);
	matched = att_match(t, 1);
	if (s < t->next_update && tier == t->a.tier && v == t->a.vectors && amp == t->a.amp &&
	    allow == t->a.allowlisted && !matched)
		return;
	t->next_update = s + d->c->cc.update_interval;
	d->st.updates++;
	if (d->h.on_update)
		d->h.on_update(d->arg, &t->a);
}

/* Judges target e on second s. gv, for a group of several shards: its
 * figures summed over them (ddos_shard.h), instead of e's own part. */
static void judge(struct ddos_detector *d, struct ddos_ent *e, int kind, uint32_t owner,
		  uint32_t s, int covered, int spread, const struct ddos_gview *gv)
{
	struct ddos_counters *c = d->c;
	const struct ddos_gc *g = &c->cc.g[e->group];
	struct ddos_rates rbuf[DDOS_C_N], *r = rbuf;
	struct ddos_host *h = kind == DDOS_T_HOST ? &c->host[owner] : NULL;
	char reason[128];
	int over, detailed = gv ? gv->detailed : e->detail != 0;

	e->flags &= (uint8_t)~(ENT_OVER | ENT_CARPET);
	if (gv ? !gv->u && !gv->p && !gv->f && !e->attack && !e->over :
	    !e->ring.run_b && !e->ring.run_p && !e->ring.cur_f && !e->attack && !e->over)
		return;
	if (gv)
		memcpy(r, gv->cls, sizeof(rbuf));
	else if (detailed)
		ddos_ent_rates(c, e, r);
	else
		r[DDOS_C_TOTAL] = (struct ddos_rates){ e->ring.run_b * DDOS_UNIT_BITS, e->ring.run_p,
						       e->ring.cur_f };
	reason[0] = '\0';
	over = over_check(&g->t[kind], r, detailed, 1, reason, sizeof(reason));
	if (h) {
		base_catch_up(&c->cc, h, s);
		if (!over)
			over = base_check(&c->cc, g, h, 0, &r[DDOS_C_TOTAL], reason, sizeof(reason));
	}
	if (over)
		e->flags |= ENT_OVER;
	if (kind != DDOS_T_HOST && ((over && spread) || e->attack))
		e->flags |= ENT_CARPET;
	if (e->attack) {
		struct att *t = &d->att[e->attack - 1];
		if ((int64_t)s < t->a.start)
			return;   /* started early on a later second: not part of it */
		if (!detailed)
			memset(r + 1, 0, sizeof(*r) * (DDOS_C_N - 1));
		att_second(d, t, e, r, s);
		if (over) {
			if ((int64_t)s > t->a.last)
				t->a.last = s;
			t->under = 0;
		} else if (++t->under >= g->cooldown) {
			att_end(d, t, e);
			return;
		}
		att_maybe_update(d, t, e, s);
		return;
	}
	if (over && !covered && spread) {
		if (e->over == 0) {
			ddos_ent_sketch_reset(c, e);
			if (gv && d->gdec)
				d->gdec[owner] |= DDOS_GV_RESET;   /* the other shards' too */
		}
		if (e->over < UINT16_MAX)
			e->over++;
		if (!e->detail)
			ddos_ent_detail(c, e, kind, owner);   /* classes from the next second */
		if (e->over >= g->trigger) {
			if (!detailed)
				memset(r + 1, 0, sizeof(*r) * (DDOS_C_N - 1));
			att_start(d, e, kind, owner, (int64_t)s - e->over + 1, s, r, reason, 0, 0);
		}
		return;
	}
	if (over && covered)
		d->st.suppressed++;
	e->over = 0;
	if (h && !over && !covered)
		base_learn(&c->cc, h, e);
}

/* Is an aggregate's traffic spread over its children (carpet), rather
 * than one child's attack seen from above? */
struct spread_in {
	int has_mx;                /* the children's figures are of this second */
	uint32_t nchild, mx_u, mx_p;
	uint64_t sum_u, sum_p;     /* the children's */
	uint64_t run_b, run_p;     /* the aggregate's own */
};

static int spread_of(const struct ddos_cc *cc, const struct spread_in *a, uint32_t min)
{
	if (!a->has_mx)
		return 1;   /* all of it went to children too many to track */
	if (a->nchild < min) {
		/* Few children, unless most of the traffic went to children a
		 * full table could not track (they are many, then). */
		double ub = a->run_b > a->sum_u ? (double)(a->run_b - a->sum_u) : 0;
		double up = a->run_p > a->sum_p ? (double)(a->run_p - a->sum_p) : 0;

		if (!(ub > 0.5 * (double)a->run_b && up > 0.5 * (double)a->run_p))
			return 0;
	}
	return a->mx_u <= cc->carpet_share * (double)a->run_b &&
	       a->mx_p <= cc->carpet_share * (double)a->run_p;
}

static int agg_spread(const struct ddos_cc *cc, const struct ddos_agg *a, uint32_t s, uint32_t min)
{
	struct spread_in in = { a->mx_sec == s, a->nchild, a->mx_u, a->mx_p, a->sum_u, a->sum_p,
				a->e.ring.run_b, a->e.ring.run_p };

	return spread_of(cc, &in, min);
}

static int gview_spread(const struct ddos_cc *cc, const struct ddos_gview *v)
{
	struct spread_in in = { v->has_mx, v->nchild, v->mx_u, v->mx_p, v->sum_u, v->sum_p, v->u, v->p };

	return spread_of(cc, &in, 2);
}

static void judge_groups(struct ddos_detector *d, uint32_t s)
{
	struct ddos_counters *c = d->c;

	for (size_t i = 0; i < c->cc.ng; i++) {
		struct ddos_agg *a = &c->grp[i];
		if (d->gv)
			judge(d, &a->e, DDOS_T_GROUP, (uint32_t)i, s, 0, gview_spread(&c->cc, &d->gv[i]),
			      &d->gv[i]);
		else
			judge(d, &a->e, DDOS_T_GROUP, (uint32_t)i, s, 0, agg_spread(&c->cc, a, s, 2), NULL);
	}
}

/* Aggregates, then hosts, of second s: the groups' carpet flags are set. */
static void judge_rest(struct ddos_detector *d, uint32_t s)
{
	struct ddos_counters *c = d->c;

	for (uint32_t i = 0; i < c->pfx_hw; i++) {
		struct ddos_agg *a = &c->pfx[i];
		if (!(a->e.flags & ENT_USED))
			continue;
		judge(d, &a->e, DDOS_T_PREFIX, i, s, (c->grp[a->e.group].e.flags & ENT_CARPET) != 0,
		      agg_spread(&c->cc, a, s, c->cc.carpet_min_hosts), NULL);
	}
	for (uint32_t i = 0; i < c->host_hw; i++) {
		struct ddos_host *h = &c->host[i];
		int covered;
		if (i + 8 < c->host_hw)
			__builtin_prefetch(&c->host[i + 8], 1);
		if (!(h->e.flags & ENT_USED))
			continue;
		covered = (c->grp[h->e.group].e.flags & ENT_CARPET) ||
			  (h->prefix && (c->pfx[h->prefix - 1].e.flags & ENT_CARPET));
		judge(d, &h->e, DDOS_T_HOST, i, s, covered, 1, NULL);
	}
	d->st.seconds++;
}

static void judge_second(struct ddos_detector *d, uint32_t s)
{
	judge_groups(d, s);
	judge_rest(d, s);
}

/* ---- early decisions ---- */

/* Could aggregate (or group) a turn out to be a carpet in second s, seen
 * from a child with (u, p) of it? Not while a is under half of every one
 * of its thresholds, nor when the child carries more than carpet_max_share
 * of it (then a is not spread: agg_spread). Otherwise the child's second
 * waits for its close, when a is judged first. */
static int carpet_possible(const struct ddos_detector *d, const struct ddos_ent *a, int kind,
			   uint32_t s, uint32_t u, uint32_t p)
{
	const struct ddos_counters *c = d->c;
	const struct ddos_tset *ts = &c->cc.g[a->group].t[kind];
	struct ddos_rates r[DDOS_C_N];
	uint32_t tot[3];
	char reason[8];

	if ((a->flags & ENT_CARPET) || a->attack)
		return 1;   /* a carpet now: it covers its children */
	if (!ts->n)
		return 0;
	if (kind == DDOS_T_GROUP && d->gs)
		/* Spread over the shards: what the last verdict said of it
		 * (over half a threshold) stands for its open seconds. */
		return (d->gflags[a->group] & (DDOS_GV_CARPET | DDOS_GV_HALF)) != 0;
	ddos_ent_peek(c, a, s, tot, r);
	if (!over_check(ts, r, a->detail != 0, 0.5, reason, sizeof(reason)))
		return 0;
	return u <= c->cc.carpet_share * tot[0] && p <= c->cc.carpet_share * tot[1];
}

/* Idle seconds before H since the host's baseline last learnt, folded in
 * as H's close would (the open ones in between are not known idle). */
static uint32_t base_gap(const struct ddos_counters *c, const struct ddos_host *h)
{
	return c->H > h->base_sec + 1 ? c->H - h->base_sec - 1 : 0;
}

/* Must a host's second s, carrying (u, p) of it, wait for the close
 * because its /24 (/48) or group could turn out to be a carpet then? */
static int carpet_wait(const struct ddos_detector *d, const struct ddos_host *h, uint32_t s,
		       uint32_t u, uint32_t p)
{
	const struct ddos_counters *c = d->c;

	if (h->prefix) {
		const struct ddos_agg *pf = &c->pfx[h->prefix - 1];
		uint32_t pt[3];
		struct ddos_rates pr[DDOS_C_N];
		if (carpet_possible(d, &pf->e, DDOS_T_PREFIX, s, u, p))
			return 1;
		ddos_ent_peek(c, &pf->e, s, pt, pr);
		u = pt[0];
		p = pt[1];
	}
	return carpet_possible(d, &c->grp[h->e.group].e, DDOS_T_GROUP, s, u, p);
}

/* The second that ends now rather than on the calendar: an attack that
 * begins late in a second leaves that second under its threshold, and the
 * next one passes it only some 0.8 s in (at 1.2x). The last second is
 * estimated as the part of the current second that arrived in real time
 * plus the tail of the second before, taken as even through that second:
 *   w = (1 - f) * prev + (cur - next)
 * f: the current second's part gone (the tick's time); cur - next: what
 * the current second holds less what already runs on into the next (a
 * record spread over its time adds the same to both; a packet sample, or
 * a record that ended this second, only to cur), so flows exported late
 * over many seconds add only what ends now, and a second holds no more
 * than a second's worth. Flow records per second are not spread: theirs
 * is (1 - f) * prev + cur.
 * w is over when it passes a threshold, as a calendar second would, and
 * is clearly a change: above the host's learnt baseline by WIN_CHANGE_Z
 * standard errors of the count of records behind it (w / sqrt(n)). That
 * keeps steady traffic near a threshold to the calendar seconds: at
 * 1:1000 a sample stands for a thousand packets, and traffic at 0.9x
 * passes 1x in a quarter of its calendar seconds by chance alone; ten
 * windows a second would make that more. An attack on a host that
 * normally carries a tenth of it passes at once; one from heavy sampling
 * on a host already near its threshold waits for the calendar seconds.
 * Flows spread over a minute are few records for their traffic: they do
 * not pass either. tp, rp and tc, rc: the second before and the current
 * one as early_host peeked them (both open: delay >= 1 s). The change is
 * judged on the totals first, which a hot host at its usual level does
 * not pass, so most cost a peek of the totals of the next second only.
 * Fills w; 1 when it is over (reason says which threshold). */
#define WIN_CHANGE_Z 4.0

static int window_over(const struct ddos_detector *d, const struct ddos_host *h, const uint32_t tp[3],
		       const struct ddos_rates rp[DDOS_C_N], const uint32_t tc[3],
		       const struct ddos_rates rc[DDOS_C_N], struct ddos_rates w[DDOS_C_N], char *reason,
		       size_t rsz)
{
	const struct ddos_counters *c = d->c;
	const struct ddos_ent *e = &h->e;
	uint32_t s = c->now_s, tn[3], gap;
	struct ddos_rates rn[DDOS_C_N];
	double f, g, n, lo, wu, wp;

	f = (double)(c->now_ms - (int64_t)s * 1000) / 1000.0;
	g = f >= 1 ? 0 : 1 - f;
	n = g * tp[2] + tc[2];
	if (n < 1)
		return 0;
	/* The totals first (no classes): most hot hosts stop here. */
	ddos_ent_peek_total(c, e, s + 1, tn);
	wu = g * tp[0] + (tc[0] > tn[0] ? tc[0] - tn[0] : 0);
	wp = g * tp[1] + (tc[1] > tn[1] ? tc[1] - tn[1] : 0);
	gap = base_gap(c, h);
	lo = (1 - WIN_CHANGE_Z / sqrt(n)) / (gap ? pow(1 - c->cc.base_alpha, (double)gap) : 1);
	if (!(wp * lo > h->base_p || wu * lo > h->base_u))
		return 0;
	if (tn[0] || tn[1])
		ddos_ent_peek(c, e, s + 1, tn, rn);
	else
		memset(rn, 0, sizeof(rn));
	for (int k = 0; k < DDOS_C_N; k++) {
		w[k].bps = g * rp[k].bps + fmax(0, rc[k].bps - rn[k].bps);
		w[k].pps = g * rp[k].pps + fmax(0, rc[k].pps - rn[k].pps);
		w[k].fps = g * rp[k].fps + rc[k].fps;
	}
	return over_check(&c->cc.g[e->group].t[DDOS_T_HOST], w, 1, 1, reason, rsz);
}

/* Flow records e's detail slot has seen so far in open second s (the
 * evidence behind its classes, which are scaled to the second's total). */
static double det_open_records(const struct ddos_counters *c, const struct ddos_ent *e, uint32_t s)
{
	const struct ddos_dring *r;
	uint32_t f[DD_N];

	if (!e->detail)
		return 0;
	r = &c->det[e->detail - 1].r;
	if (r->busy < s)
		return 0;
	ddos_dk_classes(r->fl[s % DDOS_FLOWS], f);
	return f[DD_ALL];
}

/* A host with a detail slot (so near a threshold) and no attack: its
 * seconds still open (H up to the current one) are judged as they stand.
 * Amounts of an open second only grow (ddos_ring_peek), so one already
 * over will be over when it closes: it counts towards the trigger now,
 * while "under" still waits for the close. Only hosts: an aggregate is
 * an attack when its traffic is spread, which needs its children's closed
 * second; and a host waits while its aggregate or group could be a carpet
 * (carpet_possible), so a carpet stays one attack. With a 1 s trigger the
 * last second, sliding (window_over), may decide it too. */
static void early_host(struct ddos_detector *d, struct ddos_host *h)
{
	struct ddos_counters *c = d->c;
	struct ddos_ent *e = &h->e;
	const struct ddos_gc *g = &c->cc.g[e->group];
	/* The two open seconds the sliding one covers keep their figures. */
	struct ddos_rates rs[2][DDOS_C_N], r[DDOS_C_N];
	uint32_t run = e->over, ts[2][3] = { { 0 } }, tot[3];
	char reason[128];
	double f;
	int slide = g->trigger == 1 && g->sliding && c->now_s > c->H &&
		    c->now_s + 1 < c->H + DDOS_LEAD;

	if (run >= g->trigger)
		return;   /* the attack table was full: the close retries */
	for (uint32_t s = c->H; s <= c->now_s && s < c->H + DDOS_LEAD; s++) {
		int over, k = slide ? (int)(s + 1 - c->now_s) : -1;   /* 0: the one before, 1: now */
		struct ddos_rates *rr = k >= 0 ? rs[k] : r;
		uint32_t *tt = k >= 0 ? ts[k] : tot;
		ddos_ent_peek(c, e, s, tt, rr);
		if (!tt[0] && !tt[1] && !tt[2]) {
			run = 0;
			continue;
		}
		over = over_check(&g->t[DDOS_T_HOST], rr, 1, 1, reason, sizeof(reason));
		if (!over)
			over = base_check(&c->cc, g, h, base_gap(c, h), &rr[DDOS_C_TOTAL], reason,
					  sizeof(reason));
		if (!over) {
			run = 0;
			continue;
		}
		if (++run < g->trigger)
			continue;
		if (carpet_wait(d, h, s, tt[0], tt[1]))
			return;
		att_start(d, e, DDOS_T_HOST, (uint32_t)(h - c->host), (int64_t)s - run + 1, s, rr, reason, 1,
			  det_open_records(c, e, s));
		if (e->attack)
			d->st.early++;
		return;
	}
	if (!slide || !window_over(d, h, ts[0], rs[0], ts[1], rs[1], r, reason, sizeof(reason)) ||
	    carpet_wait(d, h, c->now_s - 1, ts[0][0], ts[0][1]) ||
	    carpet_wait(d, h, c->now_s, ts[1][0], ts[1][1]))
		return;
	/* The attack starts with the current second: the one before, under
	 * on its own, is not part of it (judge). */
	f = (double)(c->now_ms - (int64_t)c->now_s * 1000) / 1000.0;
	att_start(d, e, DDOS_T_HOST, (uint32_t)(h - c->host), c->now_s, c->now_s, r, reason, 1,
		  (f >= 1 ? 0 : 1 - f) * det_open_records(c, e, c->now_s - 1) +
		  det_open_records(c, e, c->now_s));
	if (e->attack) {
		d->st.early++;
		d->st.window++;
	}
}

/* A host's attack still classifying is named from its open seconds too:
 * at every tick its classes and records so far are those of its closed
 * seconds plus what its open ones (from H, or its start, up to now) hold
 * as they stand — an early start's classes are its open second's — so
 * it is named, and its match established, as soon as they reach
 * DDOS_CLASSIFY_RECORDS, not only when enough seconds have closed. Open
 * seconds only grow; once named it stays named (att_refresh), so the
 * closing of a second with part of that evidence still open does not
 * take the name back. Only the name and the match come from this: the
 * figures stay those of the closed seconds. */
static void early_classify(struct ddos_detector *d)
{
	struct ddos_counters *c = d->c;

	for (uint32_t i = 0; d->natt && i < c->cc.max_attacks; i++) {
		struct att *t = &d->att[i];
		struct ddos_rates r[DDOS_C_N];
		double cb[DDOS_C_N], cp[DDOS_C_N], n, keep = t->a.records;
		struct ddos_ent *e;
		uint32_t tot[3], s;
		int matched, detailed = t->detailed;
		if (!t->used || !t->a.classifying || t->kind != DDOS_T_HOST)
			continue;
		e = &c->host[t->owner].e;
		if (!e->detail)
			continue;
		memcpy(cb, t->cb, sizeof(cb));
		memcpy(cp, t->cp, sizeof(cp));
		n = t->a.records;
		if (t->early) {   /* its classes are those of its open second: taken again */
			memset(cb, 0, sizeof(cb));
			memset(cp, 0, sizeof(cp));
			n = 0;
		}
		s = t->a.start > (int64_t)c->H ? (uint32_t)t->a.start : c->H;
		for (; s <= c->now_s && s < c->H + DDOS_LEAD; s++) {
			ddos_ent_peek(c, e, s, tot, r);
			n += det_open_records(c, e, s);
			for (int k = 0; k < DDOS_C_N; k++) {
				cb[k] += r[k].bps / 8;
				cp[k] += r[k].pps;
			}
		}
		if (n <= t->a.records)
			continue;
		/* The refresh and the match on these figures; the attack's own
		 * (the closed seconds') put back after. */
		{
			double sb[DDOS_C_N], sp[DDOS_C_N];
			memcpy(sb, t->cb, sizeof(sb));
			memcpy(sp, t->cp, sizeof(sp));
			memcpy(t->cb, cb, sizeof(cb));
			memcpy(t->cp, cp, sizeof(cp));
			t->a.records = n;
			t->detailed = 1;
			att_refresh(d, t, e);
			matched = att_match(t, 0);
			if (matched) {
				d->st.updates++;
				if (d->h.on_update)
					d->h.on_update(d->arg, &t->a);
			}
			memcpy(t->cb, sb, sizeof(sb));
			memcpy(t->cp, sp, sizeof(sp));
			t->a.records = keep;
			t->detailed = detailed;
		}
	}
}

static void early_pass(struct ddos_detector *d)
{
	struct ddos_counters *c = d->c;

	early_classify(d);

	for (uint32_t i = 0; i < c->det_hw; i++) {
		const struct ddos_detail *x = &c->det[i];
		struct ddos_host *h;
		if (x->kind != DDOS_T_HOST + 1)
			continue;
		h = &c->host[x->owner];
		if (!(h->e.flags & ENT_USED) || h->e.attack)
			continue;
		early_host(d, h);
	}
}

static void exporters_check(struct ddos_detector *d)
{
	struct ddos_counters *c = d->c;

	for (uint32_t i = 0; i <= c->exp_mask; i++) {
		if (!c->exp[i].used || !c->exp[i].s.long_timeout || (d->exp_warned[i] & EXP_WARNED))
			continue;
		d->exp_warned[i] |= EXP_WARNED;
		if (d->h.on_exporter)
			d->h.on_exporter(d->arg, &c->exp[i].s);
	}
}

/* ---- reload ---- */

struct ddos_detect_conf {
	struct ddos_cc cc;
	struct ddos_agg *grp;      /* one per group, zeroed: allocated here, not on the
				    * detector's thread */
};

struct ddos_detect_conf *ddos_detect_conf_new(const struct ddos_config *cfg, struct buf *err)
{
	struct ddos_detect_conf *nc = calloc(1, sizeof(*nc));
	size_t len = err->len;

	if (!nc)
		goto nomem;
	if (ddos_cc_build(&nc->cc, cfg, err) < 0)
		goto fail;
	if (!(nc->grp = calloc(nc->cc.ng, sizeof(*nc->grp))))
		goto nomem;
	return nc;
nomem:
	buf_printf(err, "ddos: out of memory for the new configuration");
	buf_cstr(err);
fail:
	if (err->len == len) {
		buf_printf(err, "ddos: the configuration cannot be compiled");
		buf_cstr(err);
	}
	ddos_detect_conf_free(nc);
	return NULL;
}

void ddos_detect_conf_free(struct ddos_detect_conf *nc)
{
	if (!nc)
		return;
	ddos_cc_free(&nc->cc);
	free(nc->grp);
	free(nc);
}

static struct ddos_ent *att_ent(struct ddos_detector *d, const struct att *t)
{
	switch (t->kind) {
	case DDOS_T_HOST: return &d->c->host[t->owner].e;
	case DDOS_T_PREFIX: return &d->c->pfx[t->owner].e;
	default: return &d->c->grp[t->owner].e;
	}
}

void ddos_detector_reconfigure(struct ddos_detector *d, struct ddos_detect_conf *nc,
			       struct ddos_reload_stats *st)
{
	struct ddos_counters *c = d->c;
	struct ddos_reload_stats dummy;
	struct ddos_count_reload cr;
	int32_t gmap[DDOS_MAX_GROUPS];

	if (!st)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	ddos_cc_group_map(&c->cc, &nc->cc, gmap);
	/* Attacks that must not go on end first, reported as the running
	 * configuration saw them (its group, its tiers). */
	for (uint32_t i = 0; i < c->cc.max_attacks; i++) {
		struct att *t = &d->att[i];
		uint16_t g;
		uint8_t allow;
		int why = 0;
		if (!t->used)
			continue;
		if (ddos_cc_fate(c, &nc->cc, gmap, t->kind, t->owner, &g, &allow) < 0)
			why = DDOS_RELEASED_UNPROTECTED;
		else if (allow && !t->a.allowlisted)
			why = DDOS_RELEASED_ALLOWED;
		if (!why)
			continue;
		t->a.released = why;
		att_end(d, t, att_ent(d, t));
		st->attacks_ended++;
	}
	if (d->gv) {
		/* The merged figures follow their group to its new number. */
		struct ddos_gview *ngv = calloc(DDOS_MAX_GROUPS, sizeof(*ngv));
		for (size_t i = 0; ngv && i < c->cc.ng; i++)
			if (gmap[i] >= 0)
				ngv[gmap[i]] = d->gv[i];
		if (ngv) {
			free(d->gv);
			d->gv = ngv;
		} else {
			memset(d->gv, 0, DDOS_MAX_GROUPS * sizeof(*d->gv));
		}
	}
	if (d->gflags)
		memset(d->gflags, 0, DDOS_MAX_GROUPS);
	d->gen++;
	ddos_count_reconfigure(c, &nc->cc, nc->grp, &cr);
	nc->grp = NULL;
	ddos_detect_conf_free(nc);
	/* The others go on under their group as it is now: its name (the old
	 * string is gone), its tiers, the allow flag; an update is due at the
	 * next judged second, so a stronger tier is asked for at once. */
	for (uint32_t i = 0; i < c->cc.max_attacks; i++) {
		struct att *t = &d->att[i];
		const struct ddos_ent *e;
		if (!t->used)
			continue;
		if (t->kind == DDOS_T_GROUP)
			t->owner = (uint32_t)gmap[t->owner];   /* >= 0: ended above otherwise */
		e = att_ent(d, t);
		t->a.group = c->cc.g[e->group].name;
		t->a.allowlisted = (e->flags & ENT_ALLOW) != 0;
		att_tier(&c->cc.g[e->group], t);
		t->next_update = 0;
		st->attacks_kept++;
	}
	st->groups = c->cc.ng;
	for (size_t i = 0; i < c->cc.ng; i++)
		st->prefixes += c->cc.g[i].nprefixes;
	st->hosts_moved = cr.hosts_moved;
	st->hosts_dropped = cr.hosts_dropped;
	st->prefixes_dropped = cr.prefixes_dropped;
	st->allow_changed = cr.allow_changed;
}

/* ---- API ---- */

struct ddos_detector *ddos_detector_new(const struct ddos_config *cfg, const struct ddos_handlers *h,
					void *arg, struct buf *err)
{
	struct ddos_detector *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	if (!(d->c = ddos_count_new(cfg, err)))
		goto fail;
	if (h)
		d->h = *h;
	d->arg = arg;
	d->next_id = 1;
	d->att = calloc(d->c->cc.max_attacks, sizeof(*d->att));
	d->exp_warned = calloc((size_t)d->c->exp_mask + 1, 1);
	if (!d->att || !d->exp_warned) {
		buf_printf(err, "ddos: out of memory for the attack table");
		buf_cstr(err);
		goto fail;
	}
	return d;
fail:
	ddos_detector_free(d);
	return NULL;
}

void ddos_detector_free(struct ddos_detector *d)
{
	if (!d)
		return;
	if (d->att && d->c)
		for (uint32_t i = 0; i < d->c->cc.max_attacks; i++)
			free(d->att[i].tl);
	free(d->att);
	free(d->exp_warned);
	free(d->gflags);
	free(d->gdec);
	free(d->gv);
	ddos_count_free(d->c);
	free(d);
}

void ddos_detector_add(struct ddos_detector *d, const struct flow_rec *r)
{
	ddos_count_add(d->c, r);
}

void ddos_detector_add_batch(struct ddos_detector *d, const struct flow_rec *r, size_t n)
{
	ddos_count_add_batch(d->c, r, n);
}

/* ---- shards ---- */

int ddos_detector_shard(struct ddos_detector *d, struct ddos_gsync *g, unsigned k)
{
	if (!g || k >= ddos_gsync_shards(g))
		return M_EINVAL;
	if (!(d->gflags = calloc(DDOS_MAX_GROUPS, 1)))
		return M_ENOMEM;
	if (k == 0 && (!(d->gdec = calloc(DDOS_MAX_GROUPS, 1)) ||
		       !(d->gv = calloc(DDOS_MAX_GROUPS, sizeof(*d->gv)))))
		return M_ENOMEM;
	d->gs = g;
	d->shard = k;
	return M_OK;
}

/* Shard 0: once every shard has published, the groups are judged on
 * their sums and the verdict goes out. */
static void coordinate(struct ddos_detector *d)
{
	struct ddos_counters *c = d->c;
	uint32_t s;

	if (!ddos_gsync_gather(d->gs, d->gen, c->cc.ng, &s, d->gv))
		return;
	memset(d->gdec, 0, c->cc.ng);
	judge_groups(d, s);
	for (size_t i = 0; i < c->cc.ng; i++) {
		const struct ddos_ent *e = &c->grp[i].e;
		const struct ddos_tset *ts = &c->cc.g[i].t[DDOS_T_GROUP];
		char reason[8];
		if (e->flags & ENT_CARPET)
			d->gdec[i] |= DDOS_GV_CARPET;
		if (e->over || e->attack)
			d->gdec[i] |= DDOS_GV_HOT;
		if (ts->n && over_check(ts, d->gv[i].cls, d->gv[i].detailed, 0.5, reason, sizeof(reason)))
			d->gdec[i] |= DDOS_GV_HALF;
	}
	ddos_gsync_decide(d->gs, s, d->gen, d->gdec, c->cc.ng);
}

/* The verdict on the pending second: the groups' bits go into this
 * shard's group entities (shard 0 set its own by judging), then its
 * aggregates and hosts are judged. 0 while the verdict is not in. */
static int shard_release(struct ddos_detector *d)
{
	struct ddos_counters *c = d->c;
	uint32_t vs;

	if (!ddos_gsync_verdict(d->gs, d->pending_s, d->gen, d->gflags, c->cc.ng, &vs))
		return 0;
	for (size_t i = 0; d->shard && i < c->cc.ng; i++) {
		struct ddos_ent *e = &c->grp[i].e;
		uint8_t f = d->gflags[i];
		e->flags &= (uint8_t)~(ENT_OVER | ENT_CARPET);
		if (f & DDOS_GV_CARPET)
			e->flags |= ENT_CARPET;
		/* over keeps the part's detail slot (classes, top talkers). */
		e->over = (f & DDOS_GV_HOT) ? 1 : 0;
		if ((f & DDOS_GV_HOT) && !e->detail)
			ddos_ent_detail(c, e, DDOS_T_GROUP, (uint32_t)i);
		if ((f & DDOS_GV_RESET) && vs != d->applied)
			ddos_ent_sketch_reset(c, e);
	}
	d->applied = vs;
	judge_rest(d, d->pending_s);
	d->pending = 0;
	return 1;
}

/* tick() of one shard: close a second, publish the groups' parts, judge
 * the rest once the verdict is in; never waits for it. */
static int shard_tick(struct ddos_detector *d)
{
	int n = 0;

	for (;;) {
		int64_t sec, t0 = clock_mono_us(), dt;
		if (d->pending) {
			if (d->shard == 0)
				coordinate(d);
			if (!shard_release(d))
				break;
			n++;
		} else {
			if (!ddos_count_step(d->c, &sec))
				break;
			ddos_gsync_publish(d->gs, d->shard, d->c, (uint32_t)sec, d->gen);
			d->pending = 1;
			d->pending_s = (uint32_t)sec;
			continue;
		}
		dt = clock_mono_us() - t0;
		d->st.eval_us_last = dt;
		if (dt > d->st.eval_us_max)
			d->st.eval_us_max = dt;
	}
	return n;
}

int ddos_detector_tick(struct ddos_detector *d, int64_t now_ms)
{
	int64_t sec;
	int n = 0;

	ddos_count_advance(d->c, now_ms);
	if (d->gs) {
		n = shard_tick(d);
		if (n)
			exporters_check(d);
		early_pass(d);
		return n;
	}
	for (;;) {
		int64_t t0 = clock_mono_us(), dt;
		if (!ddos_count_step(d->c, &sec))
			break;
		judge_second(d, (uint32_t)sec);
		dt = clock_mono_us() - t0;
		d->st.eval_us_last = dt;
		if (dt > d->st.eval_us_max)
			d->st.eval_us_max = dt;
		n++;
	}
	if (n)
		exporters_check(d);
	early_pass(d);
	return n;
}

void ddos_detector_foreach(const struct ddos_detector *d, ddos_attack_fn fn, void *arg)
{
	for (uint32_t i = 0; i < d->c->cc.max_attacks; i++)
		if (d->att[i].used)
			fn(arg, &d->att[i].a);
}

size_t ddos_detector_active(const struct ddos_detector *d)
{
	return d->natt;
}

void ddos_detector_set_next_id(struct ddos_detector *d, uint64_t id)
{
	d->next_id = id ? id : 1;
	if (d->gs)
		ddos_gsync_set_next_id(d->gs, d->next_id);
}

int ddos_detector_group_view(const struct ddos_detector *d, const char *name,
			     struct ddos_target_view *out)
{
	const struct ddos_counters *c = d->c;
	size_t i;
	int rc = ddos_count_group(c, name, out);

	if (rc < 0 || !d->gv)
		return rc;
	for (i = 0; i < c->cc.ng && strcmp(c->cc.g[i].name, name); i++)
		;
	if (i == c->cc.ng)
		return M_ENOTFOUND;
	/* Shard 0 of several: the group over every shard. */
	memcpy(out->cls, d->gv[i].cls, sizeof(out->cls));
	out->second = d->gv[i].sec ? (int64_t)d->gv[i].sec : out->second;
	out->detailed = d->gv[i].detailed;
	out->nsrc = d->gv[i].nsrc;
	out->nport = d->gv[i].nport;
	memcpy(out->src, d->gv[i].src, sizeof(out->src));
	memcpy(out->port, d->gv[i].port, sizeof(out->port));
	return M_OK;
}

int ddos_detector_pending(const struct ddos_detector *d)
{
	return d->pending;
}

struct ddos_counters *ddos_detector_counters(struct ddos_detector *d)
{
	return d->c;
}

const struct ddos_detect_stats *ddos_detector_stats(const struct ddos_detector *d)
{
	return &d->st;
}

size_t ddos_detector_memory(const struct ddos_detector *d)
{
	size_t m = sizeof(*d) + ddos_count_memory(d->c) + (size_t)d->c->cc.max_attacks * sizeof(*d->att) +
		   (size_t)d->c->exp_mask + 1;

	for (uint32_t i = 0; i < d->c->cc.max_attacks; i++)
		m += d->att[i].tl_cap * sizeof(struct ddos_point);
	return m;
}
