/*
 * Shards of the protected space (ddos_shard.h): which shard owns a
 * destination, the hand-off ring's allocation, and the group merge that
 * lets N detectors judge a group spanning all of them as one.
 *
 * The merge is a rendezvous per second that never blocks a thread: each
 * shard publishes its part of second s and goes on receiving and counting;
 * at every tick it looks whether the verdict has come. Shard 0 gathers
 * once every shard has published a second the last verdict does not
 * cover, judges the groups and publishes the verdict. The parts of shard k
 * are written only between a verdict that covers its last second and its
 * next publication, and read by shard 0 only while every shard waits, so
 * the release/acquire pair on the published second and on the verdict's
 * second is all the synchronisation there is. A shard whose clock lags
 * (it started a second later, or its tick came late) is not waited for
 * twice: the newest second published is judged, an older part counts as
 * nothing for it, and the lagging shard is released by that verdict.
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ddos/ddos_detect.h"
#include "ddos/ddos_int.h"
#include "ddos/ddos_shard_int.h"

unsigned ddos_shard_of(const struct flow_ip *dst, unsigned plen_v4, unsigned plen_v6, unsigned n)
{
	uint64_t hi, lo;

	if (n <= 1 || (dst->family != FLOW_IPV4 && dst->family != FLOW_IPV6))
		return 0;
	hi = ddos_be64(dst->a);
	lo = ddos_be64(dst->a + 8);
	ddos_mask(&hi, &lo, dst->family == FLOW_IPV4 ? 96 + (plen_v4 > 32 ? 32 : plen_v4) :
		  (plen_v6 > 128 ? 128 : plen_v6));
	/* A fixed seed: the partition is the same in every thread and run. */
	return (unsigned)((ddos_hash2(hi, lo, 0x5bd1e9955bd1e995ull) >> 32) % n);
}

int ddos_spsc_init(struct ddos_spsc *q, size_t cap)
{
	size_t c = 64;

	memset(q, 0, sizeof(*q));
	while (c < cap && c < ((size_t)1 << 30))
		c <<= 1;
	q->v = malloc(c * sizeof(*q->v));
	if (!q->v)
		return M_ENOMEM;
	q->mask = c - 1;
	return M_OK;
}

void ddos_spsc_fini(struct ddos_spsc *q)
{
	if (!q)
		return;
	free(q->v);
	q->v = NULL;
}

/* ---- the hand-off ---- */

size_t ddos_handoff_ring_size(unsigned n)
{
	size_t want = n > 1 ? ((size_t)16 << 20) / sizeof(struct flow_rec) / (n - 1) : 0, c = 8192;

	while (c * 2 <= want && c < 65536)
		c *= 2;
	return c;
}

int ddos_handoff_init(struct ddos_handoff *h, unsigned k, unsigned n, struct ddos_spsc *ring,
		      struct ddos_detector *det, unsigned plen_v4, unsigned plen_v6)
{
	memset(h, 0, sizeof(*h));
	h->k = k;
	h->n = n ? n : 1;
	h->ring = ring;
	h->det = det;
	h->plen_v4 = plen_v4;
	h->plen_v6 = plen_v6;
	h->recs = malloc(DDOS_HANDOFF_BATCH * sizeof(*h->recs));
	if (h->n > 1) {
		h->out = malloc((size_t)h->n * DDOS_HANDOFF_STAGE * sizeof(*h->out));
		h->nout = calloc(h->n, sizeof(*h->nout));
	}
	return h->recs && (h->n == 1 || (h->out && h->nout)) ? M_OK : M_ENOMEM;
}

void ddos_handoff_fini(struct ddos_handoff *h)
{
	if (!h)
		return;
	free(h->recs);
	free(h->out);
	free(h->nout);
	h->recs = h->out = NULL;
	h->nout = NULL;
}

static void flush_own(struct ddos_handoff *h)
{
	if (h->nrecs) {
		ddos_detector_add_batch(h->det, h->recs, h->nrecs);
		h->nrecs = 0;
	}
}

static void push_out(struct ddos_handoff *h, unsigned to)
{
	size_t n = h->nout[to], got;

	got = ddos_spsc_push(&h->ring[h->k * h->n + to], &h->out[(size_t)to * DDOS_HANDOFF_STAGE], n);
	h->drops += n - got;
	h->nout[to] = 0;
	if (got && h->pushed)
		h->pushed(h->arg, to);
}

void ddos_handoff_rec(void *arg, const struct flow_rec *r)
{
	struct ddos_handoff *h = arg;
	unsigned to = h->n > 1 ? ddos_shard_of(&r->dst, h->plen_v4, h->plen_v6, h->n) : h->k;

	if (to == h->k) {
		h->recs[h->nrecs++] = *r;
		if (h->nrecs == DDOS_HANDOFF_BATCH)
			flush_own(h);
		return;
	}
	h->out[(size_t)to * DDOS_HANDOFF_STAGE + h->nout[to]++] = *r;
	if (h->nout[to] == DDOS_HANDOFF_STAGE)
		push_out(h, to);
}

void ddos_handoff_flush(struct ddos_handoff *h)
{
	flush_own(h);
	for (unsigned j = 0; h->n > 1 && j < h->n; j++)
		if (h->nout[j])
			push_out(h, j);
}

size_t ddos_handoff_take(struct ddos_handoff *h, size_t max)
{
	size_t total = 0;

	for (unsigned j = 0; h->n > 1 && j < h->n; j++) {
		struct ddos_spsc *q = &h->ring[j * h->n + h->k];
		const struct flow_rec *r;
		size_t n, got = 0;

		if (j == h->k)
			continue;
		/* Straight from the ring's memory: no copy. */
		while (got < max && (n = ddos_spsc_peek(q, &r, DDOS_HANDOFF_BATCH)) > 0) {
			ddos_detector_add_batch(h->det, r, n);
			ddos_spsc_done(q, n);
			got += n;
		}
		total += got;
	}
	return total;
}

int ddos_handoff_idle(struct ddos_handoff *h)
{
	for (unsigned j = 0; h->n > 1 && j < h->n; j++)
		if (j != h->k && !ddos_spsc_empty(&h->ring[j * h->n + h->k]))
			return 0;
	return 1;
}

/* ---- the group merge ---- */

struct gs_shard {
	_Alignas(64) _Atomic uint32_t pub;   /* the second its parts are of */
	struct ddos_gview *part;             /* DDOS_MAX_GROUPS */
};

struct ddos_gsync {
	unsigned n;
	_Atomic uint64_t next_id;
	_Alignas(64) _Atomic uint32_t vsec;   /* the last verdict's second */
	uint32_t vgen;
	uint8_t flags[DDOS_MAX_GROUPS];
	struct gs_shard sh[DDOS_SHARDS_MAX];
};

struct ddos_gsync *ddos_gsync_new(unsigned n)
{
	struct ddos_gsync *g;

	if (n < 1 || n > DDOS_SHARDS_MAX)
		return NULL;
	if (!(g = aligned_alloc(_Alignof(struct ddos_gsync), sizeof(*g))))
		return NULL;
	memset(g, 0, sizeof(*g));
	g->n = n;
	atomic_init(&g->next_id, 1);
	for (unsigned k = 0; k < n; k++)
		if (!(g->sh[k].part = calloc(DDOS_MAX_GROUPS, sizeof(*g->sh[k].part)))) {
			ddos_gsync_free(g);
			return NULL;
		}
	return g;
}

void ddos_gsync_free(struct ddos_gsync *g)
{
	if (!g)
		return;
	for (unsigned k = 0; k < g->n; k++)
		free(g->sh[k].part);
	free(g);
}

unsigned ddos_gsync_shards(const struct ddos_gsync *g)
{
	return g->n;
}

uint64_t ddos_gsync_next_id(struct ddos_gsync *g)
{
	return atomic_fetch_add(&g->next_id, 1);
}

void ddos_gsync_set_next_id(struct ddos_gsync *g, uint64_t id)
{
	atomic_store(&g->next_id, id ? id : 1);
}

void ddos_gsync_publish(struct ddos_gsync *g, unsigned k, const struct ddos_counters *c,
		       uint32_t s, uint32_t gen)
{
	struct ddos_gview *part = g->sh[k].part;

	for (size_t i = 0; i < c->cc.ng && i < DDOS_MAX_GROUPS; i++) {
		const struct ddos_agg *a = &c->grp[i];
		struct ddos_gview *v = &part[i];

		v->sec = s;
		v->gen = gen;
		v->u = a->e.ring.run_b;
		v->p = a->e.ring.run_p;
		v->f = a->e.ring.cur_f;
		v->has_mx = a->mx_sec == s;
		v->nchild = v->has_mx ? a->nchild : 0;
		v->mx_u = v->has_mx ? a->mx_u : 0;
		v->mx_p = v->has_mx ? a->mx_p : 0;
		v->sum_u = v->has_mx ? a->sum_u : 0;
		v->sum_p = v->has_mx ? a->sum_p : 0;
		v->detailed = a->e.detail != 0;
		v->nsrc = v->nport = 0;
		if (v->detailed) {
			ddos_ent_rates(c, &a->e, v->cls);
			v->nsrc = ddos_ent_top_src(c, &a->e, v->src, DDOS_TOP_SRC);
			v->nport = ddos_ent_top_port(c, &a->e, v->port, DDOS_TOP_PORT);
		}
	}
	atomic_store_explicit(&g->sh[k].pub, s, memory_order_release);
}

static int src_cmp(const void *x, const void *y)
{
	const struct ddos_top_src *a = x, *b = y;

	return a->bytes < b->bytes ? 1 : a->bytes > b->bytes ? -1 : 0;
}

static int port_cmp(const void *x, const void *y)
{
	const struct ddos_top_port *a = x, *b = y;

	return a->bytes < b->bytes ? 1 : a->bytes > b->bytes ? -1 : 0;
}

/* Adds one part's top talkers to the sums (same source: bytes added),
 * keeping the busiest when the scratch is full. */
static void merge_tops(const struct ddos_gview *p, struct ddos_top_src *src, size_t *nsrc, size_t srcmax,
		       struct ddos_top_port *port, size_t *nport, size_t portmax)
{
	for (size_t j = 0; j < p->nsrc; j++) {
		size_t x = 0;
		while (x < *nsrc && memcmp(&src[x].ip, &p->src[j].ip, sizeof(src[x].ip)))
			x++;
		if (x < *nsrc)
			src[x].bytes += p->src[j].bytes;
		else if (*nsrc < srcmax)
			src[(*nsrc)++] = p->src[j];
	}
	for (size_t j = 0; j < p->nport; j++) {
		size_t x = 0;
		while (x < *nport && (port[x].port != p->port[j].port || port[x].proto != p->port[j].proto))
			x++;
		if (x < *nport)
			port[x].bytes += p->port[j].bytes;
		else if (*nport < portmax)
			port[(*nport)++] = p->port[j];
	}
}

int ddos_gsync_gather(struct ddos_gsync *g, uint32_t gen, size_t ng, uint32_t *s,
		      struct ddos_gview *v)
{
	uint32_t vs = atomic_load_explicit(&g->vsec, memory_order_relaxed), newest = 0;
	struct ddos_top_src src[DDOS_SHARDS_MAX * DDOS_TOP_SRC];
	struct ddos_top_port port[DDOS_SHARDS_MAX * DDOS_TOP_PORT];

	for (unsigned k = 0; k < g->n; k++) {
		uint32_t p = atomic_load_explicit(&g->sh[k].pub, memory_order_acquire);
		if (p <= vs)
			return 0;
		if (p > newest)
			newest = p;
	}
	if (ng > DDOS_MAX_GROUPS)
		ng = DDOS_MAX_GROUPS;
	for (size_t i = 0; i < ng; i++) {
		struct ddos_gview *o = &v[i];
		double du = 0, dp = 0, df = 0;
		size_t nsrc = 0, nport = 0;

		memset(o, 0, sizeof(*o));
		o->sec = newest;
		o->gen = gen;
		for (unsigned k = 0; k < g->n; k++) {
			const struct ddos_gview *p = &g->sh[k].part[i];
			if (p->sec != newest || p->gen != gen)
				continue;
			o->u += p->u;
			o->p += p->p;
			o->f += p->f;
			if (p->has_mx) {
				o->has_mx = 1;
				o->nchild += p->nchild;
				o->sum_u += p->sum_u;
				o->sum_p += p->sum_p;
				if (p->mx_u > o->mx_u)
					o->mx_u = p->mx_u;
				if (p->mx_p > o->mx_p)
					o->mx_p = p->mx_p;
			}
			if (!p->detailed)
				continue;
			o->detailed = 1;
			du += (double)p->u;
			dp += (double)p->p;
			df += (double)p->f;
			for (int c = 1; c < DDOS_C_N; c++) {
				o->cls[c].bps += p->cls[c].bps;
				o->cls[c].pps += p->cls[c].pps;
				o->cls[c].fps += p->cls[c].fps;
			}
			merge_tops(p, src, &nsrc, sizeof(src) / sizeof(src[0]), port, &nport,
				   sizeof(port) / sizeof(port[0]));
		}
		/* Parts without detail are in the total only: the classes of
		 * those with it stand for the whole, as a detail slot that
		 * began late stands for its target's second (rates_from). */
		for (int c = 1; o->detailed && c < DDOS_C_N; c++) {
			o->cls[c].bps *= du > 0 ? (double)o->u / du : 0;
			o->cls[c].pps *= dp > 0 ? (double)o->p / dp : 0;
			o->cls[c].fps *= df > 0 ? (double)o->f / df : 0;
		}
		o->cls[DDOS_C_TOTAL] = (struct ddos_rates){ (double)o->u * DDOS_UNIT_BITS, (double)o->p,
							    (double)o->f };
		qsort(src, nsrc, sizeof(src[0]), src_cmp);
		qsort(port, nport, sizeof(port[0]), port_cmp);
		o->nsrc = nsrc < DDOS_TOP_SRC ? nsrc : DDOS_TOP_SRC;
		o->nport = nport < DDOS_TOP_PORT ? nport : DDOS_TOP_PORT;
		memcpy(o->src, src, o->nsrc * sizeof(src[0]));
		memcpy(o->port, port, o->nport * sizeof(port[0]));
	}
	*s = newest;
	return 1;
}

void ddos_gsync_decide(struct ddos_gsync *g, uint32_t s, uint32_t gen, const uint8_t *flags,
		       size_t ng)
{
	if (ng > DDOS_MAX_GROUPS)
		ng = DDOS_MAX_GROUPS;
	memcpy(g->flags, flags, ng);
	memset(g->flags + ng, 0, DDOS_MAX_GROUPS - ng);
	g->vgen = gen;
	atomic_store_explicit(&g->vsec, s, memory_order_release);
}

int ddos_gsync_verdict(struct ddos_gsync *g, uint32_t s, uint32_t gen, uint8_t *flags, size_t ng,
		       uint32_t *vsec)
{
	uint32_t vs = atomic_load_explicit(&g->vsec, memory_order_acquire);

	if (vs < s)
		return 0;
	if (ng > DDOS_MAX_GROUPS)
		ng = DDOS_MAX_GROUPS;
	if (g->vgen == gen)
		memcpy(flags, g->flags, ng);
	else
		memset(flags, 0, ng);
	*vsec = vs;
	return 1;
}
