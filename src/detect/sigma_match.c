/*
 * Sigma matching. Why Hyperscan: the corpus holds thousands of contains /
 * endswith patterns on a handful of fields (CommandLine, Image, ...);
 * testing them rule by rule costs thousands of comparisons per event, while
 * one Hyperscan database per (logsource, field) finds every hit in one
 * pass over the value. Patterns Hyperscan refuses (back-references,
 * look-arounds) and predicates that are not patterns are evaluated directly
 * (PCRE2 with match limits), lazily, only for rules that are evaluated.
 */
#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/schema.h"
#include "detect/sigma_corr.h"
#include "detect/sigma_int.h"

#define PCRE_MATCH_LIMIT 200000u
#define PCRE_DEPTH_LIMIT 5000u
#define MAX_TODO_RULES 65536u

/* One match context with the backtracking limits, built once and then only
 * read: a catastrophic regex stops at the limit instead of hanging. */
static pcre2_match_context *pcre_mc;
static pthread_once_t pcre_once = PTHREAD_ONCE_INIT;

static void pcre_mc_init(void)
{
	pcre_mc = pcre2_match_context_create(NULL);
	if (pcre_mc) {
		pcre2_set_match_limit(pcre_mc, PCRE_MATCH_LIMIT);
		pcre2_set_depth_limit(pcre_mc, PCRE_DEPTH_LIMIT);
	}
}

static pcre2_match_context *pcre_mctx(void)
{
	pthread_once(&pcre_once, pcre_mc_init);
	return pcre_mc;
}

int sigma_parse_cidr(const char *v, uint8_t *addr, uint8_t *family, uint8_t *plen);

int sigma_parse_cidr(const char *v, uint8_t *addr, uint8_t *family, uint8_t *plen)
{
	char tmp[64];
	const char *slash = strchr(v, '/');
	size_t n = slash ? (size_t)(slash - v) : strlen(v);
	long bits = -1;

	if (n == 0 || n >= sizeof(tmp))
		return M_EINVAL;
	memcpy(tmp, v, n);
	tmp[n] = '\0';
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, tmp, addr) == 1) {
		*family = 4;
	} else if (inet_pton(AF_INET6, tmp, addr) == 1) {
		*family = 6;
	} else {
		return M_EINVAL;
	}
	if (slash) {
		char *end;
		bits = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end || bits < 0 || bits > (*family == 4 ? 32 : 128))
			return M_EINVAL;
	} else {
		bits = *family == 4 ? 32 : 128;
	}
	*plen = (uint8_t)bits;
	return 0;
}

static int prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return 0;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		return (a[full] & mask) == (b[full] & mask);
	}
	return 1;
}

/* An overflow field's value: by its name's number when it has one. */
static struct str extra_value(const struct event *ev, const struct sigma_field *f)
{
	return f->xid ? event_get_xid(ev, f->xid) : event_get_extra(ev, str_make(f->name, f->nlen));
}

struct str sigma_field_value(const struct sigma_ruleset *rs, uint32_t field,
			     const struct event *ev)
{
	const struct sigma_field *f = &rs->fields[field];
	struct str v;

	if (f->known >= 0)
		return event_get(ev, f->known);
	v = extra_value(ev, f);
	if (!v.p && f->alt)
		v = extra_value(ev, &rs->fields[f->alt]);
	return v;
}

static int str_match_pc(const struct sigma_pred *p, struct str v,
			pcre2_match_data *md)
{
	int rc;

	if (!p->pc || !v.p)
		return 0;
	rc = pcre2_match(p->pc, (PCRE2_SPTR)v.p, v.n, 0, 0, md, pcre_mctx());
	return rc >= 0;
}

/* The address in a field's value; 0 when it holds none. */
static int cidr_value(struct str v, uint8_t a[16], uint8_t *fam)
{
	char tmp[64];
	uint8_t plen;

	if (!v.p || v.n == 0 || v.n >= sizeof(tmp))
		return 0;
	memcpy(tmp, v.p, v.n);
	tmp[v.n] = '\0';
	return sigma_parse_cidr(tmp, a, fam, &plen) == 0;
}

/* An address (cidr_value) in the predicate's range; an IPv4-mapped IPv6
 * address counts as its IPv4 one. */
static int cidr_in(const struct sigma_pred *p, const uint8_t a[16], uint8_t fam)
{
	if (fam == 6 && p->family == 4 && memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0)
		return prefix_eq(a + 12, p->addr, p->plen);
	return fam == p->family && prefix_eq(a, p->addr, p->plen);
}

/* A predicate on one value (an element, when the field has several). */
static int pred_test(const struct sigma_ruleset *rs, const struct sigma_pred *p,
		     struct str v, const struct event *ev, pcre2_match_data *md)
{
	char tmp[128];

	switch (p->kind) {
	case SPK_STR:
		if (p->lit)
			return v.p && sigma_lit_match(p, v.p, v.n);
		return str_match_pc(p, v, md);
	case SPK_NUM: {
		double x;
		char *end;

		if (!v.p || v.n == 0 || v.n >= sizeof(tmp))
			return 0;
		memcpy(tmp, v.p, v.n);
		tmp[v.n] = '\0';
		x = strtod(tmp, &end);
		if (end == tmp || *end || !isfinite(x))
			return 0;
		switch (p->arg) {
		case SP_LT: return x < p->num;
		case SP_LTE: return x <= p->num;
		case SP_GT: return x > p->num;
		default: return x >= p->num;
		}
	}
	case SPK_CIDR: {
		uint8_t a[16], fam;

		return cidr_value(v, a, &fam) && cidr_in(p, a, fam);
	}
	case SPK_FIELDREF: {
		struct str w = sigma_field_value(rs, p->field2, ev);

		if (!v.p || !w.p || v.n != w.n)
			return 0;
		if (p->flags & SPF_CASED_EQ)
			return memcmp(v.p, w.p, v.n) == 0;
		return strncasecmp(v.p, w.p, v.n) == 0 && !memchr(v.p, 0, v.n);
	}
	}
	return 0;
}

/* Sigma semantics for a multi-valued (JSON array) field: any element. */
static int pred_test_any(const struct sigma_ruleset *rs, const struct sigma_pred *p,
			 struct str v, const struct event *ev, pcre2_match_data *md)
{
	if (sigma_maybe_array(v)) {
		struct sigma_elems it;
		struct str e;

		if (sigma_elems_init(&it, v)) {
			while (sigma_elems_next(&it, &e))
				if (pred_test(rs, p, e, ev, md))
					return 1;
			return 0;
		}
	}
	return pred_test(rs, p, v, ev, md);
}

int sigma_pred_eval_direct(const struct sigma_ruleset *rs,
			   const struct sigma_pred *p, const struct event *ev,
			   pcre2_match_data *md)
{
	struct str v;

	if (p->kind == SPK_FALSE)
		return 0;
	if (p->field == SIGMA_FIELD_KEYWORDS) {
		struct str vals[EVENT_MAX_KNOWN + EVENT_MAX_EXTRA];
		size_t n;

		if (p->kind != SPK_STR)
			return 0;
		n = sigma_keyword_values(ev, vals);
		for (size_t i = 0; i < n; i++)
			if (pred_test_any(rs, p, vals[i], ev, md))
				return 1;
		return 0;
	}
	v = sigma_field_value(rs, p->field, ev);
	return sigma_pred_eval_value(rs, p, v, ev, md);
}

/* As sigma_pred_eval_direct, with the value of the (not keyword) field
 * already read. */
int sigma_pred_eval_value(const struct sigma_ruleset *rs,
			  const struct sigma_pred *p, struct str v,
			  const struct event *ev, pcre2_match_data *md)
{
	if (p->kind == SPK_NULL)
		return v.p == NULL || v.n == 0;
	if (p->kind == SPK_EXISTS)
		return (v.p != NULL) == (p->arg != 0);
	return pred_test_any(rs, p, v, ev, md);
}

/* What keywords are looked for in: the record as received when it was kept
 * (it holds everything), else every value of the event. */
size_t sigma_keyword_values(const struct event *ev, struct str *out)
{
	struct str orig = event_get(ev, F_EVENT_ORIGINAL);
	size_t n = 0;

	if (orig.p) {
		out[0] = orig;
		return 1;
	}
	for (uint32_t i = 0; i < ev->n_known; i++)
		if (ev->slot[ev->fld[i]] == i + 1)
			out[n++] = ev->val[i];
	for (uint32_t i = 0; i < ev->n_extra && i < EVENT_MAX_EXTRA; i++)
		out[n++] = ev->extra[i].value;
	return n;
}

/* ---- evaluation of a rule ---- */

static int pred_value(const struct sigma_ruleset *rs, struct sigma_ctx *c,
		      uint32_t id, int direct)
{
	const struct sigma_pred *p = &rs->preds[id];

	if (p->in_hs && !direct)
		return c->pred_stamp[id] == c->stamp;
	if (c->lazy_stamp[id] == c->stamp)
		return c->lazy_val[id];
	if (p->in_hs && c->pred_stamp[id] == c->stamp) {
		c->lazy_val[id] = 1;
	} else if (p->field == SIGMA_FIELD_KEYWORDS || p->kind == SPK_FALSE) {
		c->lazy_val[id] = (uint8_t)sigma_pred_eval_direct(rs, p, c->ev, c->md);
	} else {
		/* A field's value is looked up once per event (an overflow
		 * field by name), however many predicates read it. */
		struct sigma_fval *fv = &c->fv[p->field];

		if (c->fv_stamp[p->field] != c->stamp) {
			fv->v = sigma_field_value(rs, p->field, c->ev);
			fv->parsed = 0;
			c->fv_stamp[p->field] = c->stamp;
		}
		if (p->kind == SPK_CIDR && !sigma_maybe_array(fv->v)) {
			if (!fv->parsed) {
				fv->ok = (uint8_t)cidr_value(fv->v, fv->a, &fv->fam);
				fv->parsed = 1;
			}
			c->lazy_val[id] = fv->ok && cidr_in(p, fv->a, fv->fam);
		} else {
			c->lazy_val[id] = (uint8_t)sigma_pred_eval_value(rs, p, fv->v, c->ev, c->md);
		}
	}
	c->lazy_stamp[id] = c->stamp;
	return c->lazy_val[id];
}

static int node_eval(const struct sigma_ruleset *rs, struct sigma_ctx *c,
		     const struct sigma_rule *r, uint32_t idx, int direct, int depth)
{
	const struct sigma_node *n = &r->nodes[idx];

	if (depth > 64)
		return 0;
	switch (n->type) {
	case SN_PRED:
		if (n->hs && !direct)
			return c->pred_stamp[n->a] == c->stamp;
		return pred_value(rs, c, n->a, direct);
	case SN_TRUE:
		return 1;
	case SN_FALSE:
		return 0;
	case SN_AND:
		for (uint32_t i = 0; i < n->n; i++)
			if (!node_eval(rs, c, r, r->kids[n->a + i], direct, depth + 1))
				return 0;
		return 1;
	case SN_OR:
		if (n->grp && !direct)
			return c->grp_stamp[n->grp - 1] == c->stamp;
		for (uint32_t i = 0; i < n->n; i++)
			if (node_eval(rs, c, r, r->kids[n->a + i], direct, depth + 1))
				return 1;
		return 0;
	}
	return 0;
}

static int rule_eval(const struct sigma_ruleset *rs, struct sigma_ctx *c,
		     const struct sigma_rule *r, int direct)
{
	if (r->n_must) {
		for (uint32_t i = 0; i < r->n_idents; i++)
			if (r->is_must[i] &&
			    node_eval(rs, c, r, r->ident_root[i], direct, 0) != (r->is_must[i] == 1))
				return 0;
		for (uint32_t i = 0; i < r->n_idents; i++)
			c->matched[i] = r->is_must[i] ? r->is_must[i] == 1 :
				(uint8_t)node_eval(rs, c, r, r->ident_root[i], direct, 0);
		return sigma_cond_eval(r->cond, c->matched) == 1;
	}
	for (uint32_t i = 0; i < r->n_idents; i++)
		c->matched[i] = (uint8_t)node_eval(rs, c, r, r->ident_root[i], direct, 0);
	return sigma_cond_eval(r->cond, c->matched) == 1;
}

/* ---- the set ---- */

static void plan_free(struct sigma_plan *pl);

static void ctx_free(struct sigma_ctx *c)
{
	for (uint32_t i = 0; i < SIGMA_LS_CACHE; i++)
		plan_free(c->ls_cache[i].plan);
	hs_free_scratch(c->scratch);
	pcre2_match_data_free(c->md);
	free(c->vc);
	free(c->vc_tag);
	free(c->vc_seen);
	free(c->pred_stamp);
	free(c->grp_stamp);
	free(c->lazy_stamp);
	free(c->lazy_val);
	free(c->rule_stamp);
	free(c->trig_stamp);
	free(c->trig_mask);
	free(c->todo);
	free(c->fv_stamp);
	free(c->fv);
	free(c);
}

void sigma_ruleset_free_all(struct sigma_ruleset *rs);

void sigma_ruleset_free_all(struct sigma_ruleset *rs)
{
	struct sigma_ctx *c, *next;

	if (!rs)
		return;
	sigma_merges_free(rs);   /* its thread reads the buckets' databases */
	for (uint32_t i = 0; i < rs->n_rules; i++)
		sigma_rule_free(rs->rules[i]);
	free(rs->rules);
	for (uint32_t i = 0; i < rs->n_filters; i++)
		sigma_rule_free(rs->filters[i]);
	free(rs->filters);
	for (uint32_t i = 0; i < rs->n_corrs; i++)
		sigma_corr_free(rs->corrs[i]);
	free(rs->corrs);
	for (uint32_t i = 0; i < rs->n_preds; i++) {
		free(rs->preds[i].re);
		free(rs->preds[i].lit_s);
		pcre2_code_free(rs->preds[i].pc);
	}
	free(rs->preds);
	for (uint32_t i = 0; i < rs->n_fields; i++)
		free(rs->fields[i].name);
	free(rs->fields);
	for (uint32_t i = 0; i < rs->n_buckets; i++) {
		struct sigma_bucket *bk = &rs->buckets[i];
		for (uint32_t f = 0; f < bk->n_fdbs; f++)
			sigma_fdb_fini(&bk->fdbs[f]);
		free(bk->fdbs);
		free(bk->kfdbs);
		free(bk->xkeys);
		free(bk->xvals);
		free(bk->rules);
		free(bk->always);
		free(bk->product);
		free(bk->category);
		free(bk->service);
	}
	free(rs->buckets);
	for (c = rs->pool; c; c = next) {
		next = c->next;
		ctx_free(c);
	}
	hs_free_scratch(rs->proto);
	free(rs->hs_cache_dir);
	free(rs->pred_grp_off);
	free(rs->pred_grp);
	pthread_mutex_destroy(&rs->pool_lock);
	pthread_mutex_destroy(&rs->merge_lock);
	pthread_cond_destroy(&rs->merge_cond);
	free(rs);
}

struct sigma_ruleset *sigma_ruleset_ref(struct sigma_ruleset *rs)
{
	if (rs)
		atomic_fetch_add(&rs->refs, 1);
	return rs;
}

void sigma_ruleset_unref(struct sigma_ruleset *rs)
{
	if (rs && atomic_fetch_sub(&rs->refs, 1) == 1)
		sigma_ruleset_free_all(rs);
}

uint32_t sigma_ruleset_count(const struct sigma_ruleset *rs)
{
	return rs ? rs->n_rules : 0;
}

const struct sigma_rule_info *sigma_ruleset_rule(const struct sigma_ruleset *rs,
						 uint32_t i)
{
	return rs && i < rs->n_rules ? &rs->rules[i]->info : NULL;
}

const struct sigma_rule_info *sigma_ruleset_find(const struct sigma_ruleset *rs,
						 const char *id_or_name)
{
	for (uint32_t i = 0; rs && i < rs->n_rules; i++) {
		const struct sigma_rule_info *in = &rs->rules[i]->info;
		if (strcmp(in->id, id_or_name) == 0 ||
		    (in->name && strcmp(in->name, id_or_name) == 0))
			return in;
	}
	return NULL;
}

struct sigma_ctx *sigma_ctx_get(struct sigma_ruleset *rs)
{
	struct sigma_ctx *c;

	pthread_mutex_lock(&rs->pool_lock);
	c = rs->pool;
	if (c)
		rs->pool = c->next;
	pthread_mutex_unlock(&rs->pool_lock);
	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->md = pcre2_match_data_create(1, NULL);
	c->vc = aligned_alloc(64, SIGMA_VC_SLOTS * sizeof(*c->vc));
	if (c->vc)
		memset(c->vc, 0, SIGMA_VC_SLOTS * sizeof(*c->vc));
	c->vc_tag = calloc(SIGMA_VC_SLOTS, sizeof(*c->vc_tag));
	c->vc_seen = calloc(SIGMA_VC_SEEN, sizeof(*c->vc_seen));
	c->pred_stamp = calloc(rs->n_preds + 1, sizeof(*c->pred_stamp));
	c->grp_stamp = calloc(rs->n_groups + 1, sizeof(*c->grp_stamp));
	c->rs = rs;
	c->lazy_stamp = calloc(rs->n_preds + 1, sizeof(*c->lazy_stamp));
	c->lazy_val = calloc(rs->n_preds + 1, 1);
	c->rule_stamp = calloc(rs->n_rules + 1, sizeof(*c->rule_stamp));
	c->trig_stamp = calloc(rs->n_rules + 1, sizeof(*c->trig_stamp));
	c->trig_mask = calloc(rs->n_rules + 1, 1);
	c->todo = calloc(rs->n_rules + 1, sizeof(uint32_t));
	c->fv_stamp = calloc(rs->n_fields + 1, sizeof(*c->fv_stamp));
	c->fv = calloc(rs->n_fields + 1, sizeof(*c->fv));
	if (!c->md || !c->vc || !c->vc_tag || !c->vc_seen || !c->pred_stamp || !c->grp_stamp || !c->lazy_stamp || !c->lazy_val ||
	    !c->rule_stamp || !c->trig_stamp || !c->trig_mask || !c->todo || !c->fv_stamp || !c->fv ||
	    (rs->proto && hs_clone_scratch(rs->proto, &c->scratch) != HS_SUCCESS)) {
		ctx_free(c);
		return NULL;
	}
	return c;
}

void sigma_ruleset_hs_cache_stats(const struct sigma_ruleset *rs, uint32_t *hits,
				  uint32_t *misses)
{
	*hits = rs->hs_cache_hits;
	*misses = rs->hs_cache_misses;
}

void sigma_ruleset_merge_stats(const struct sigma_ruleset *rs, uint32_t *merged,
			       uint32_t *failed)
{
	struct sigma_ruleset *w = (struct sigma_ruleset *)rs;   /* the lock only */

	pthread_mutex_lock(&w->merge_lock);
	*merged = rs->n_merges;
	*failed = rs->n_merge_failed;
	pthread_mutex_unlock(&w->merge_lock);
}

void sigma_ctx_cache_stats(const struct sigma_ctx *c, uint64_t *lookups, uint64_t *hits)
{
	*lookups = c->vc_lookups;
	*hits = c->vc_hits;
}

void sigma_ctx_put(struct sigma_ruleset *rs, struct sigma_ctx *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&rs->pool_lock);
	c->next = rs->pool;
	rs->pool = c;
	pthread_mutex_unlock(&rs->pool_lock);
}

/* ---- matching ---- */

#define SCAN_MAX_TESTED 8u

struct scan_cb {
	const struct sigma_ruleset *rs;
	struct sigma_ctx *c;
	const struct sigma_fdb *fdb;
	const char *val;          /* the value scanned */
	unsigned long long len;   /* its length */
	/* Gated ids tested on the value, and how (gate_pass). */
	uint32_t tested[SCAN_MAX_TESTED];
	uint8_t passed[SCAN_MAX_TESTED];
	uint32_t n_tested;
};

static void queue_rule(struct sigma_ctx *c, uint32_t rule)
{
	if (c->rule_stamp[rule] == c->stamp)
		return;
	c->rule_stamp[rule] = c->stamp;
	c->todo[c->n_todo++] = rule;
}

/* A hit of a trigger of the rule of entry e (a rule_list entry): a rule
 * with two trigger sets is queued once both have hit on the event. */
static inline void trig_hit(struct sigma_ctx *c, uint32_t e, uint16_t stamp)
{
	uint32_t rule = e >> TRIG_SHIFT, bits = e & (TRIG_A | TRIG_B);

	if (bits) {
		uint8_t m = (uint8_t)bits;

		if (c->trig_stamp[rule] != stamp)
			c->trig_stamp[rule] = stamp;
		else
			m |= c->trig_mask[rule];
		c->trig_mask[rule] = m;
		if (m != (TRIG_A | TRIG_B))
			return;
	}
	queue_rule(c, rule);
}

/* Id id of database f hit: its predicate, the predicate's hit groups and
 * the rules it triggers marked, from the id's record (one line; the
 * lists it points to only when more than one). Runs some forty times a
 * process creation event. */
static inline void hit_id(struct sigma_ctx *c, const struct sigma_fdb *f, uint32_t id)
{
	const struct sigma_hitrec *h = &f->rec[id];
	const uint16_t stamp = c->stamp;

	c->pred_stamp[h->pred] = stamp;
	if (h->n_grp == 1) {
		c->grp_stamp[h->grp] = stamp;
	} else {
		const uint32_t *g = c->rs->pred_grp + h->grp, *ge = g + h->n_grp;
		uint16_t *const grp_stamp = c->grp_stamp;

		for (; g < ge; g++)
			grp_stamp[*g] = stamp;
	}
	if (h->n_rule == 1) {
		trig_hit(c, h->rule, stamp);
	} else {
		const uint32_t *r = f->rule_list + h->rule, *re = r + h->n_rule;

		for (; r < re; r++)
			trig_hit(c, *r, stamp);
	}
}

/* A hit of the gate of id (sigma_re_gate): whether its expression holds
 * on the value, tested once a value (a gate may occur several times). */
static int gate_pass(struct scan_cb *s, uint32_t id)
{
	int ok;

	for (uint32_t i = 0; i < s->n_tested; i++)
		if (s->tested[i] == id)
			return s->passed[i];
	ok = pred_test(s->rs, &s->rs->preds[s->fdb->rec[id].pred], str_make(s->val, s->len),
		       s->c->ev, s->c->md);
	if (s->n_tested < SCAN_MAX_TESTED) {
		s->tested[s->n_tested] = id;
		s->passed[s->n_tested++] = (uint8_t)ok;
	}
	return ok;
}

static int on_hit(unsigned int id, unsigned long long from,
		  unsigned long long to, unsigned int flags, void *ctx)
{
	struct scan_cb *s = ctx;
	const struct sigma_fdb *f = s->fdb;

	(void)from;
	(void)flags;
	if (id >= f->n || (f->at_end && f->at_end[id] && to != s->len))
		return 0;
	if (f->gated && f->gated[id] && !gate_pass(s, id))
		return 0;
	hit_id(s->c, f, id);
	return 0;
}

/* As on_hit, and records the distinct ids for the value cache (n_hits past
 * SIGMA_VC_MAX_HITS: too many to keep). */
struct rec_cb {
	struct scan_cb s;
	struct sigma_vc_ent *e;
};

static int on_hit_rec(unsigned int id, unsigned long long from,
		      unsigned long long to, unsigned int flags, void *ctx)
{
	struct rec_cb *r = ctx;
	struct sigma_vc_ent *e = r->e;

	(void)from;
	(void)flags;
	if (id >= r->s.fdb->n || (r->s.fdb->at_end && r->s.fdb->at_end[id] && to != r->s.len))
		return 0;
	if (r->s.fdb->gated && r->s.fdb->gated[id]) {
		/* Kept with the value only once it passed on it. */
		if (!gate_pass(&r->s, id))
			return 0;
	}
	hit_id(r->s.c, r->s.fdb, id);
	if (e->n_hits > SIGMA_VC_MAX_HITS)
		return 0;
	for (uint32_t i = 0; i < e->n_hits; i++)
		if (e->hits[i] == id)
			return 0;
	if (e->n_hits == SIGMA_VC_MAX_HITS)
		e->n_hits++;
	else
		e->hits[e->n_hits++] = id;
	return 0;
}

/* 64-bit hash of a short value, 8 bytes at a time, keyed by the database
 * (by its number, not its address: where the databases land in memory
 * would otherwise decide which values share a slot, and the hit rate of
 * the cache moved by a tenth from one build to the next). */
static uint64_t vc_hash(const struct sigma_fdb *f, const char *p, size_t n)
{
	uint64_t h = ((uint64_t)f->uid + 1) * 0x9e3779b97f4a7c15ull ^ n, w;
	size_t len = n;

	while (n >= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
		p += 8;
		n -= 8;
	}
	if (n) {
		/* The tail bytes, zero-extended: out of the value's last eight
		 * bytes when it has them, since a copy of a variable length is
		 * a call (a tenth of a lookup). The same hash either way (on a
		 * little-endian machine); hashing those eight bytes whole lost
		 * 5% of the cache's hits on process creations. */
		if (len >= 8) {
			memcpy(&w, p + n - 8, 8);
			w >>= 8 * (8 - n);
		} else {
			w = 0;
			for (size_t i = 0; i < n; i++)
				w |= (uint64_t)(uint8_t)p[i] << (8 * i);
		}
		h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	}
	h ^= h >> 29;
	return h * 0x94d049bb133111ebull;
}

/* n bytes alike, eight at a time, the tail overlapping (short values and
 * names: a call to memcmp costs more than the comparison). */
static inline int bytes_eq(const char *a, const char *b, size_t n)
{
	uint64_t x, y;
	size_t i;

	if (n < 8) {
		for (i = 0; i < n; i++)
			if (a[i] != b[i])
				return 0;
		return 1;
	}
	for (i = 0; i + 8 < n; i += 8) {
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y)
			return 0;
	}
	memcpy(&x, a + n - 8, 8);
	memcpy(&y, b + n - 8, 8);
	return x == y;
}

/* Both databases of a field (compile_fdb), the same callback for each. */
static void fdb_scan(const struct sigma_fdb *f, const char *p, size_t n,
		     hs_scratch_t *scratch, match_event_handler cb, void *ctx)
{
	if (f->db)
		hs_scan(f->db, n ? p : "", (unsigned)n, 0, scratch, cb, ctx);
	if (f->db2)
		hs_scan(f->db2, n ? p : "", (unsigned)n, 0, scratch, cb, ctx);
}

static void scan_one(struct scan_cb *s, const char *p, size_t n)
{
	struct sigma_ctx *c = s->c;
	const struct sigma_fdb *f = s->fdb;
	struct sigma_vc_ent *e, *set;
	uint64_t h, *tag;
	struct rec_cb r;
	uint32_t at;

	if (!p)
		p = "";
	s->val = p;
	s->len = n;
	s->n_tested = 0;
	if (f->direct && n <= SIGMA_DIRECT_MAX_VALUE) {
		for (uint32_t id = 0; id < f->n; id++)
			if (sigma_lit_match(&s->rs->preds[f->rec[id].pred], p, n))
				hit_id(c, f, id);
		return;
	}
	if (f->n < SIGMA_VC_MIN_PATTERNS || n > SIGMA_VC_MAX_VALUE) {
		fdb_scan(f, p, n, c->scratch, on_hit, s);
		return;
	}
	h = vc_hash(f, p, n);
	at = (uint32_t)(h & (SIGMA_VC_SLOTS / SIGMA_VC_WAYS - 1)) * SIGMA_VC_WAYS;
	set = &c->vc[at];
	tag = &c->vc_tag[at];
	c->vc_lookups++;
	for (uint32_t w = 0; w < SIGMA_VC_WAYS; w++) {
		if (tag[w] != h)
			continue;
		e = &set[w];
		if (e->fdb == f && e->len == n && bytes_eq(e->val, p, n)) {
			c->vc_hits++;
			e->used = ++c->vc_clock;
			for (uint32_t i = 0; i < e->n_hits; i++)
				hit_id(c, f, e->hits[i]);
			return;
		}
	}
	/* Admission: the first sighting only leaves its hash behind. */
	{
		uint64_t *seen = &c->vc_seen[(h >> 20) & (SIGMA_VC_SEEN - 1)];

		if (*seen != h) {
			*seen = h;
			fdb_scan(f, p, n, c->scratch, on_hit, s);
			return;
		}
	}
	/* The way least recently answered from (an empty one first). */
	e = set;
	for (uint32_t w = 1; w < SIGMA_VC_WAYS; w++)
		if (set[w].used < e->used)
			e = &set[w];
	tag[e - set] = 0;
	e->used = 0;
	e->fdb = NULL;
	e->n_hits = 0;
	r.s = *s;
	r.e = e;
	fdb_scan(f, p, n, c->scratch, on_hit_rec, &r);
	if (e->n_hits > SIGMA_VC_MAX_HITS)
		return;
	e->fdb = f;
	tag[e - set] = h;
	e->len = (uint16_t)n;
	e->used = ++c->vc_clock;
	memcpy(e->val, p, n);
}

static void scan(struct scan_cb *s, struct str v)
{
	if (!v.p || (!s->fdb->db && !s->fdb->db2))
		return;
	if (sigma_maybe_array(v)) {
		/* A multi-valued field: each element on its own. */
		struct sigma_elems it;
		struct str e;

		if (sigma_elems_init(&it, v)) {
			while (sigma_elems_next(&it, &e))
				scan_one(s, e.p, e.n);
			return;
		}
	}
	scan_one(s, v.p, v.n);
}

static int eq_nocase(struct str a, const char *b, uint32_t blen)
{
	return a.n == blen && strncasecmp(a.p, b, blen) == 0;
}

static int bucket_fits(const struct sigma_bucket *bk, const struct sigma_logsource *ls)
{
	int ok;

	if (bk->plen && !eq_nocase(ls->product, bk->product, bk->plen))
		return 0;
	if (bk->clen) {
		ok = 0;
		for (uint32_t i = 0; i < ls->n_category && !ok; i++)
			ok = eq_nocase(ls->category[i], bk->category, bk->clen);
		if (!ok)
			return 0;
	}
	if (bk->slen) {
		ok = 0;
		for (uint32_t i = 0; i < ls->n_service && !ok; i++)
			ok = eq_nocase(ls->service[i], bk->service, bk->slen);
		if (!ok)
			return 0;
	}
	return 1;
}

static void plan_free(struct sigma_plan *pl)
{
	if (!pl)
		return;
	free(pl->known);
	free(pl->kw);
	free(pl->xid_fdb);
	free(pl->xkeys);
	free(pl->xf);
	free(pl);
}

/* The databases in v[0..n) of one field (and one name key, when keys is
 * given) merged into one (sigma_fdb_merged) where they can be: a field two
 * buckets of a signature both look at is then scanned once (a Windows
 * event's whole text for the keywords of `windows` and of its category,
 * a registry event's TargetObject for registry_event and registry_set).
 * Returns the count left. */
static uint32_t plan_merge(const struct sigma_ruleset *rs, struct sigma_ctx *c,
			   const struct sigma_fdb **v, uint64_t *keys, uint32_t n)
{
	uint32_t out = 0;

	for (uint32_t i = 0; i < n; i++) {
		const struct sigma_fdb *grp[SIGMA_LS_MAX_BUCKETS], *m;
		uint32_t at[SIGMA_LS_MAX_BUCKETS], ng = 0;

		if (!v[i])
			continue;
		for (uint32_t j = i; j < n && ng < SIGMA_LS_MAX_BUCKETS; j++)
			if (v[j] && v[j]->field == v[i]->field && (!keys || keys[j] == keys[i])) {
				at[ng] = j;
				grp[ng++] = v[j];
			}
		m = ng >= 2 ? sigma_fdb_merged(rs, grp, ng) : NULL;
		if (m && c->scratch &&
		    ((m->db && hs_alloc_scratch(m->db, &c->scratch) != HS_SUCCESS) ||
		     (m->db2 && hs_alloc_scratch(m->db2, &c->scratch) != HS_SUCCESS)))
			m = NULL;
		if (m) {
			for (uint32_t k = 1; k < ng; k++)
				v[at[k]] = NULL;
			v[i] = m;
		}
		if (keys)
			keys[out] = keys[i];
		v[out++] = v[i];
	}
	return out;
}

/* The name of key k of a database of field fl (its own or its alt's) that
 * has a number, or 0 (then found by hash). A name of no number that
 * hashes to k: *by_hash set. */
static uint32_t key_xid(const struct sigma_ruleset *rs, const struct sigma_field *fl,
			uint64_t k, int *by_hash)
{
	uint32_t xid = 0;

	for (int a = 0; a < 2; a++) {
		const struct sigma_field *n = a ? (fl->alt ? &rs->fields[fl->alt] : NULL) : fl;

		if (!n || sigma_field_hash(n->name, n->nlen) != k)
			continue;
		if (n->xid && !xid)
			xid = n->xid;
		else if (!n->xid)
			*by_hash = 1;
	}
	return xid;
}

/* The plan's overflow tables from the (name hash, database) pairs of its
 * buckets: a key of a numbered name goes to xid_fdb by that number, any
 * other to the hash table. */
static int plan_index(const struct sigma_ruleset *rs, struct sigma_plan *pl,
		      const uint64_t *xk, const struct sigma_fdb *const *xv, uint32_t n_x)
{
	uint32_t n_id = 0;

	memset(pl->xid_off, 0, sizeof(pl->xid_off));
	for (uint32_t i = 0; i < n_x; i++) {
		int by_hash = 0;
		uint32_t xid = key_xid(rs, &rs->fields[xv[i]->field], xk[i], &by_hash);

		if (xid) {
			pl->xid_off[xid + 1]++;
			n_id++;
		}
		if (by_hash) {
			uint32_t at = (uint32_t)xk[i] & pl->xmask;

			while (pl->xkeys[at])
				at = (at + 1) & pl->xmask;
			pl->xkeys[at] = xk[i];
			pl->xf[at] = xv[i];
			pl->n_xhash++;
		}
	}
	if (n_id > UINT16_MAX)
		return M_ELIMIT;
	for (uint32_t x = 1; x <= SCHEMA_NXNAMES; x++)
		pl->xid_off[x] = (uint16_t)(pl->xid_off[x] + pl->xid_off[x - 1]);
	pl->xid_fdb = calloc(n_id + 1, sizeof(*pl->xid_fdb));
	if (!pl->xid_fdb)
		return M_ENOMEM;
	{
		uint16_t at[SCHEMA_NXNAMES];
		int by_hash = 0;

		memcpy(at, pl->xid_off, sizeof(at));
		for (uint32_t i = 0; i < n_x; i++) {
			uint32_t xid = key_xid(rs, &rs->fields[xv[i]->field], xk[i], &by_hash);

			if (xid)
				pl->xid_fdb[at[xid]++] = xv[i];
		}
	}
	return 0;
}

/* The merged databases of the buckets of e (struct sigma_plan). */
static struct sigma_plan *plan_build(const struct sigma_ruleset *rs, struct sigma_ctx *c,
				     const struct sigma_ls_ent *e)
{
	struct sigma_plan *pl = calloc(1, sizeof(*pl));
	uint32_t n_fdbs = 0, n_x = 0, cap = 16;
	uint64_t *xk = NULL;
	const struct sigma_fdb **xv = NULL;

	if (!pl)
		return NULL;
	pl->gen = atomic_load(&rs->merge_gen);   /* before asking for merges */
	for (uint32_t i = 0; i < e->n; i++) {
		const struct sigma_bucket *bk = &rs->buckets[e->b[i]];

		n_fdbs += bk->n_fdbs;
		for (uint32_t j = 0; j <= bk->xmask && bk->xkeys; j++)
			n_x += bk->xkeys[j] != 0;
	}
	while (cap < n_x * 2 + 16)
		cap *= 2;
	pl->known = calloc(n_fdbs + 1, sizeof(*pl->known));
	pl->kw = calloc(e->n + 1, sizeof(*pl->kw));
	pl->xkeys = calloc(cap, sizeof(*pl->xkeys));
	pl->xf = calloc(cap, sizeof(*pl->xf));
	xk = calloc(n_x + 1, sizeof(*xk));
	xv = calloc(n_x + 1, sizeof(*xv));
	if (!pl->known || !pl->kw || !pl->xkeys || !pl->xf || !xk || !xv) {
		free(xk);
		free(xv);
		plan_free(pl);
		return NULL;
	}
	pl->xmask = cap - 1;
	n_x = 0;
	for (uint32_t i = 0; i < e->n; i++) {
		const struct sigma_bucket *bk = &rs->buckets[e->b[i]];

		for (uint32_t k = 0; k < bk->n_kfdbs; k++)
			pl->known[pl->n_known++] = &bk->fdbs[bk->kfdbs[k]];
		if (bk->keyword_fdb)
			pl->kw[pl->n_kw++] = &bk->fdbs[bk->keyword_fdb - 1];
		for (uint32_t j = 0; j <= bk->xmask && bk->xkeys; j++) {
			if (!bk->xkeys[j])
				continue;
			xk[n_x] = bk->xkeys[j];
			xv[n_x++] = &bk->fdbs[bk->xvals[j] - 1];
		}
	}
	pl->n_known = plan_merge(rs, c, pl->known, NULL, pl->n_known);
	pl->n_kw = plan_merge(rs, c, pl->kw, NULL, pl->n_kw);
	n_x = plan_merge(rs, c, xv, xk, n_x);
	if (plan_index(rs, pl, xk, xv, n_x) < 0) {
		free(xk);
		free(xv);
		plan_free(pl);
		return NULL;
	}
	free(xk);
	free(xv);
	return pl;
}

/* e, its plan made again if merged databases got ready since it was made
 * (a few times after a set is loaded, never after). */
static const struct sigma_ls_ent *plan_fresh(const struct sigma_ruleset *rs,
					     struct sigma_ctx *c, struct sigma_ls_ent *e)
{
	if (e->plan && e->plan->gen != atomic_load(&rs->merge_gen)) {
		plan_free(e->plan);
		e->plan = plan_build(rs, c, e);
	}
	return e;
}

/* The buckets an event's logsource meets, cached per context by the
 * logsource's text (a handful of distinct signatures in practice). */
static const struct sigma_ls_ent *buckets_of(const struct sigma_ruleset *rs,
					     struct sigma_ctx *c,
					     const struct sigma_logsource *ls)
{
	char sig[96];
	size_t n = 0;
	struct sigma_ls_ent *e, *e2;
	uint64_t h;

#define SIG_PUT(x) do { \
	struct str _v = (x); \
	if (n + _v.n + 1 >= sizeof(sig)) \
		return NULL; \
	if (_v.n) \
		memcpy(sig + n, _v.p, _v.n); \
	n += _v.n; \
	sig[n++] = '|'; \
} while (0)
	SIG_PUT(ls->product);
	for (uint32_t i = 0; i < ls->n_category; i++)
		SIG_PUT(ls->category[i]);
	sig[n++] = '#';   /* SIG_PUT left room for one more byte */
	for (uint32_t i = 0; i < ls->n_service; i++)
		SIG_PUT(ls->service[i]);
#undef SIG_PUT
	sig[n] = '\0';
	h = sigma_name_hash(sig, n);
	e = &c->ls_cache[h % SIGMA_LS_CACHE];
	e2 = &c->ls_cache[(h + 1) % SIGMA_LS_CACHE];
	if (strcmp(e->sig, sig) == 0)
		return plan_fresh(rs, c, e);
	if (strcmp(e2->sig, sig) == 0)
		return plan_fresh(rs, c, e2);
	/* Two ways: the newcomer takes the first slot and its occupant the
	 * second, so two signatures of one slot (syslog's `cron` and `sudo`
	 * did) do not evict each other on every event. */
	plan_free(e2->plan);
	*e2 = *e;
	e->plan = NULL;
	memcpy(e->sig, sig, n + 1);
	e->n = 0;
	plan_free(e->plan);
	e->plan = NULL;
	for (uint32_t b = 0; b < rs->n_buckets; b++) {
		if (!bucket_fits(&rs->buckets[b], ls))
			continue;
		if (e->n == SIGMA_LS_MAX_BUCKETS) {
			e->sig[0] = '\0';
			return NULL;
		}
		e->b[e->n++] = (uint16_t)b;
	}
	e->plan = plan_build(rs, c, e);   /* NULL (no memory): bucket by bucket */
	return e;
}

/* Two field names of the same hash (sigma_field_hash) alike (bytes_eq):
 * no call to memcmp for the score of overflow names an event carries. */
static int name_eq(struct str a, const char *b, uint32_t bn)
{
	return a.n == bn && bytes_eq(a.p, b, bn);
}

/* The name of an overflow field is the database's field (or its alt). */
static int xname_is(const struct sigma_ruleset *rs, struct str name,
		    const struct sigma_fdb *f)
{
	const struct sigma_field *fl = &rs->fields[f->field];

	return name_eq(name, fl->name, fl->nlen) ||
	       (fl->alt && name_eq(name, rs->fields[fl->alt].name, rs->fields[fl->alt].nlen));
}

/* Every field of the event through the merged databases of its buckets
 * (struct sigma_plan), queuing rules in c->todo. */
static void match_planned(const struct sigma_ruleset *rs, struct sigma_ctx *c,
			  const struct event *ev, const struct sigma_ls_ent *le)
{
	const struct sigma_plan *pl = le->plan;
	struct scan_cb s = { .rs = rs, .c = c };

	c->n_todo = 0;
	for (uint32_t k = 0; k < pl->n_known; k++) {
		s.fdb = pl->known[k];
		scan(&s, event_get(ev, rs->fields[s.fdb->field].known));
	}
	for (uint32_t i = 0; i < ev->n_extra && i < EVENT_MAX_EXTRA; i++) {
		const struct event_extra *x = &ev->extra[i];
		uint64_t h;

		if (x->xid) {
			for (uint32_t k = pl->xid_off[x->xid]; k < pl->xid_off[x->xid + 1]; k++) {
				s.fdb = pl->xid_fdb[k];
				scan(&s, x->value);
			}
			continue;
		}
		if (!pl->n_xhash)
			continue;
		h = sigma_field_hash(x->name.p, x->name.n);
		for (uint32_t j = (uint32_t)h & pl->xmask; pl->xkeys[j]; j = (j + 1) & pl->xmask) {
			if (pl->xkeys[j] != h || !xname_is(rs, x->name, pl->xf[j]))
				continue;
			s.fdb = pl->xf[j];
			scan(&s, x->value);
		}
	}
	if (pl->n_kw) {
		struct str vals[EVENT_MAX_KNOWN + EVENT_MAX_EXTRA];
		size_t nv = sigma_keyword_values(ev, vals);

		for (uint32_t k = 0; k < pl->n_kw; k++) {
			s.fdb = pl->kw[k];
			for (size_t i = 0; i < nv; i++)
				scan(&s, vals[i]);
		}
	}
	for (uint32_t bi = 0; bi < le->n; bi++) {
		const struct sigma_bucket *bk = &rs->buckets[le->b[bi]];

		for (uint32_t k = 0; k < bk->n_always; k++)
			queue_rule(c, bk->always[k]);
	}
}

/* Sigma filters add their condition to the rule's (rule and filter), as
 * pySigma applies them; an exclusion is written `condition: not selection`. */
static int filters_pass(const struct sigma_ruleset *rs, struct sigma_ctx *c,
			const struct sigma_rule *r)
{
	for (uint32_t i = 0; i < r->n_filters; i++)
		if (!rule_eval(rs, c, r->filters[i], 1))
			return 0;
	return 1;
}

/* The queued rules (c->todo) that hold into out. */
static void eval_todo(const struct sigma_ruleset *rs, struct sigma_ctx *c,
		      uint32_t *out, size_t cap, size_t *n)
{
	for (uint32_t k = 0; k < c->n_todo; k++) {
		const struct sigma_rule *r = rs->rules[c->todo[k]];

		if (!rule_eval(rs, c, r, rs->force_pcre) || !filters_pass(rs, c, r))
			continue;
		if (*n < cap)
			out[(*n)++] = c->todo[k];
	}
}

int sigma_match(const struct sigma_ruleset *rs, struct sigma_ctx *c,
		const struct event *ev, uint32_t *out, size_t cap, size_t *n)
{
	struct sigma_logsource ls;
	struct scan_cb s = { .rs = rs, .c = c };
	const struct sigma_ls_ent *le;
	uint32_t n_b;

	*n = 0;
	if (++c->stamp == 0) {
		memset(c->pred_stamp, 0, (rs->n_preds + 1) * sizeof(*c->pred_stamp));
		memset(c->grp_stamp, 0, (rs->n_groups + 1) * sizeof(*c->grp_stamp));
		memset(c->lazy_stamp, 0, (rs->n_preds + 1) * sizeof(*c->lazy_stamp));
		memset(c->rule_stamp, 0, (rs->n_rules + 1) * sizeof(*c->rule_stamp));
		memset(c->trig_stamp, 0, (rs->n_rules + 1) * sizeof(*c->trig_stamp));
		memset(c->fv_stamp, 0, (rs->n_fields + 1) * sizeof(*c->fv_stamp));
		c->stamp = 1;
	}
	c->ev = ev;
	sigma_event_logsource(ev, &ls);
	le = buckets_of(rs, c, &ls);
	n_b = le ? le->n : rs->n_buckets;
	if (le && le->plan) {
		match_planned(rs, c, ev, le);
		eval_todo(rs, c, out, cap, n);
		return 0;
	}
	for (uint32_t i = 0; i < ev->n_extra && i < EVENT_MAX_EXTRA; i++)
		c->xh[i] = sigma_field_hash(ev->extra[i].name.p, ev->extra[i].name.n);
	for (uint32_t bi = 0; bi < n_b; bi++) {
		const struct sigma_bucket *bk = &rs->buckets[le ? le->b[bi] : bi];

		if (!le && !bucket_fits(bk, &ls))
			continue;
		c->n_todo = 0;
		for (uint32_t k = 0; k < bk->n_kfdbs; k++) {
			s.fdb = &bk->fdbs[bk->kfdbs[k]];
			scan(&s, event_get(ev, rs->fields[s.fdb->field].known));
		}
		for (uint32_t i = 0; i < ev->n_extra && i < EVENT_MAX_EXTRA; i++) {
			uint64_t h = c->xh[i];

			for (uint32_t j = (uint32_t)h & bk->xmask; bk->xkeys[j];
			     j = (j + 1) & bk->xmask) {
				if (bk->xkeys[j] != h)
					continue;
				s.fdb = &bk->fdbs[bk->xvals[j] - 1];
				if (xname_is(rs, ev->extra[i].name, s.fdb))
					scan(&s, ev->extra[i].value);
			}
		}
		if (bk->keyword_fdb) {
			struct str vals[EVENT_MAX_KNOWN + EVENT_MAX_EXTRA];
			size_t nv = sigma_keyword_values(ev, vals);

			s.fdb = &bk->fdbs[bk->keyword_fdb - 1];
			for (size_t i = 0; i < nv; i++)
				scan(&s, vals[i]);
		}
		for (uint32_t k = 0; k < bk->n_always; k++)
			queue_rule(c, bk->always[k]);
		eval_todo(rs, c, out, cap, n);
	}
	return 0;
}
