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
#include "core/log.h"
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

struct str sigma_field_value(const struct sigma_ruleset *rs, uint32_t field,
			     const struct event *ev)
{
	const struct sigma_field *f = &rs->fields[field];
	struct str v;

	if (f->known >= 0)
		return event_get(ev, f->known);
	v = event_get_extra(ev, str_make(f->name, f->nlen));
	if (!v.p && f->alt)
		v = event_get_extra(ev, str_make(rs->fields[f->alt].name,
						 rs->fields[f->alt].nlen));
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
		uint8_t a[16], fam, plen;

		if (!v.p || v.n == 0 || v.n >= 64)
			return 0;
		memcpy(tmp, v.p, v.n);
		tmp[v.n] = '\0';
		if (sigma_parse_cidr(tmp, a, &fam, &plen) < 0)
			return 0;
		if (fam == 6 && p->family == 4 && memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
			memmove(a, a + 12, 4);
			fam = 4;
		}
		return fam == p->family && prefix_eq(a, p->addr, p->plen);
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
		if (c->fv_stamp[p->field] != c->stamp) {
			c->fv[p->field] = sigma_field_value(rs, p->field, c->ev);
			c->fv_stamp[p->field] = c->stamp;
		}
		c->lazy_val[id] = (uint8_t)sigma_pred_eval_value(rs, p, c->fv[p->field],
								 c->ev, c->md);
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

static int u32_push(uint32_t **v, uint32_t *n, uint32_t x);

/* ---- triggers: which hits make a rule worth evaluating ----
 *
 * Queuing a rule on any hit of any of its patterns evaluates every rule
 * that mentions a common pattern (`\cmd.exe`) on every such event. A rule
 * only needs the hits of a trigger set: predicates such that the rule is
 * false whenever all of them are. Under an AND one child suffices (the
 * rarest), under an OR every child is needed; at the condition, identifiers
 * are dropped from the set while the condition stays provably false. */

static double pred_cost(const struct sigma_ruleset *rs, uint32_t id,
			const uint32_t *uses)
{
	const struct sigma_pred *p = &rs->preds[id];
	size_t len = p->re ? strlen(p->re) : 0;

	return 1.0 + (double)uses[id] + 64.0 / (double)(len + 1);
}

static double node_cost(const struct sigma_ruleset *rs, const struct sigma_rule *r,
			uint32_t idx, const uint32_t *uses, int depth)
{
	const struct sigma_node *n = &r->nodes[idx];
	double acc;

	if (depth > 64)
		return INFINITY;
	switch (n->type) {
	case SN_PRED:
		return rs->preds[n->a].in_hs ? pred_cost(rs, n->a, uses) : INFINITY;
	case SN_FALSE:
		return 0;
	case SN_AND:
		acc = INFINITY;
		for (uint32_t i = 0; i < n->n; i++) {
			double c = node_cost(rs, r, r->kids[n->a + i], uses, depth + 1);
			if (c < acc)
				acc = c;
		}
		return acc;
	case SN_OR:
		acc = 0;
		for (uint32_t i = 0; i < n->n; i++)
			acc += node_cost(rs, r, r->kids[n->a + i], uses, depth + 1);
		return acc;
	}
	return INFINITY;
}

static int node_trig(const struct sigma_ruleset *rs, const struct sigma_rule *r,
		     uint32_t idx, const uint32_t *uses, int depth, uint32_t **v,
		     uint32_t *nv)
{
	const struct sigma_node *n = &r->nodes[idx];

	if (depth > 64)
		return 0;
	switch (n->type) {
	case SN_PRED:
		return u32_push(v, nv, n->a);
	case SN_AND: {
		uint32_t best = 0;
		double bc = INFINITY;

		for (uint32_t i = 0; i < n->n; i++) {
			double c = node_cost(rs, r, r->kids[n->a + i], uses, depth + 1);
			if (c < bc) {
				bc = c;
				best = i;
			}
		}
		return node_trig(rs, r, r->kids[n->a + best], uses, depth + 1, v, nv);
	}
	case SN_OR:
		for (uint32_t i = 0; i < n->n; i++) {
			int e = node_trig(rs, r, r->kids[n->a + i], uses, depth + 1, v, nv);
			if (e < 0)
				return e;
		}
		return 0;
	}
	return 0;
}

/* 1 when the condition is false whenever the identifiers with off[i] are
 * false, whatever the others (at most 12 of them) are. */
static int cond_false_when(const struct sigma_rule *r, const uint8_t *off)
{
	uint8_t val[SIGMA_COND_MAX_NAMES];
	uint32_t unk[SIGMA_COND_MAX_NAMES], nu = 0;

	for (uint32_t i = 0; i < r->n_idents; i++) {
		val[i] = 0;
		if (!off[i])
			unk[nu++] = i;
	}
	if (nu > 12)
		return 0;
	for (uint32_t m = 0; m < (1u << nu); m++) {
		for (uint32_t k = 0; k < nu; k++)
			val[unk[k]] = (m >> k) & 1;
		if (sigma_cond_eval(r->cond, val) == 1)
			return 0;
	}
	return 1;
}

/* Hit groups: see struct sigma_ruleset. Two passes over every rule's OR
 * nodes: count the members per predicate, then fill the CSR. */
#define GROUP_MIN_KIDS 3u

static int or_group_ok(const struct sigma_ruleset *rs, const struct sigma_rule *r,
		       const struct sigma_node *n)
{
	if (n->type != SN_OR || n->n < GROUP_MIN_KIDS || rs->force_pcre)
		return 0;
	for (uint32_t i = 0; i < n->n; i++) {
		const struct sigma_node *k = &r->nodes[r->kids[n->a + i]];

		if (k->type != SN_PRED || !rs->preds[k->a].in_hs)
			return 0;
	}
	return 1;
}

static int build_groups(struct sigma_ruleset *rs)
{
	uint32_t total = rs->n_rules + rs->n_filters, g = 0, *fill = NULL;

	rs->pred_grp_off = calloc(rs->n_preds + 2, sizeof(uint32_t));
	if (!rs->pred_grp_off)
		return M_ENOMEM;
	for (int pass = 0; pass < 2; pass++) {
		g = 0;
		for (uint32_t i = 0; i < total; i++) {
			struct sigma_rule *r = i < rs->n_rules ? rs->rules[i] : rs->filters[i - rs->n_rules];

			if (r->info.is_correlation)
				continue;
			for (uint32_t j = 0; j < r->n_nodes; j++) {
				struct sigma_node *n = &r->nodes[j];

				if (pass == 0)
					n->grp = 0;
				if (!or_group_ok(rs, r, n))
					continue;
				for (uint32_t k = 0; k < n->n; k++) {
					uint32_t p = r->nodes[r->kids[n->a + k]].a;

					if (pass == 0)
						rs->pred_grp_off[p + 1]++;
					else
						rs->pred_grp[fill[p]++] = g;
				}
				if (pass == 1)
					n->grp = g + 1;
				g++;
			}
		}
		if (pass == 0) {
			for (uint32_t p = 0; p < rs->n_preds; p++)
				rs->pred_grp_off[p + 1] += rs->pred_grp_off[p];
			rs->pred_grp = malloc((rs->pred_grp_off[rs->n_preds] + 1) * sizeof(uint32_t));
			fill = malloc((rs->n_preds + 1) * sizeof(uint32_t));
			if (!rs->pred_grp || !fill) {
				free(fill);
				return M_ENOMEM;
			}
			memcpy(fill, rs->pred_grp_off, rs->n_preds * sizeof(uint32_t));
		}
	}
	free(fill);
	rs->n_groups = g;
	return 0;
}

/* The identifiers that decide the rule alone: is_must 1 when the
 * condition cannot hold while the identifier is false (`selection` of
 * `selection and not filter`), 2 when it cannot hold while the identifier
 * is true (`known` of `not known and not 1 of filter_*`). rule_eval reads
 * them first, and one that has the wrong value ends the rule before the
 * others (often long filter lists) are looked at. Kleene's three-valued
 * evaluation answers for any number of identifiers; the exhaustive check
 * (up to 12 others) also finds what it cannot. */
static int find_musts(struct sigma_rule *r)
{
	uint8_t off[SIGMA_COND_MAX_NAMES] = { 0 }, v3[SIGMA_COND_MAX_NAMES];

	r->n_must = 0;
	if (!r->cond || r->n_idents < 2 || r->n_idents > SIGMA_COND_MAX_NAMES)
		return 0;
	r->is_must = calloc(r->n_idents, 1);
	if (!r->is_must)
		return M_ENOMEM;
	memset(v3, 2, sizeof(v3));
	for (uint32_t i = 0; i < r->n_idents; i++) {
		v3[i] = 0;
		off[i] = 1;
		if (sigma_cond_eval3(r->cond, v3) == 0 || cond_false_when(r, off))
			r->is_must[i] = 1;
		off[i] = 0;
		v3[i] = 1;
		if (!r->is_must[i] && sigma_cond_eval3(r->cond, v3) == 0)
			r->is_must[i] = 2;
		v3[i] = 2;
		r->n_must += r->is_must[i] != 0;
	}
	return 0;
}

/* The rule's trigger predicates into v; 0 when it has none (it must be
 * evaluated on every event of its logsource), 1 otherwise. */
static int rule_triggers(const struct sigma_ruleset *rs, const struct sigma_rule *r,
			 const uint32_t *uses, uint32_t **v, uint32_t *nv)
{
	uint8_t off[SIGMA_COND_MAX_NAMES] = { 0 };
	double cost[SIGMA_COND_MAX_NAMES];
	uint32_t order[SIGMA_COND_MAX_NAMES], no = 0;

	*nv = 0;
	for (uint32_t i = 0; i < r->n_idents; i++) {
		cost[i] = node_cost(rs, r, r->ident_root[i], uses, 0);
		off[i] = isfinite(cost[i]);
		if (off[i])
			order[no++] = i;
	}
	if (!cond_false_when(r, off))
		return 0;
	/* Drop the costliest identifiers first while still provably false. */
	for (uint32_t a = 0; a < no; a++)
		for (uint32_t b = a + 1; b < no; b++)
			if (cost[order[b]] > cost[order[a]]) {
				uint32_t t = order[a];
				order[a] = order[b];
				order[b] = t;
			}
	for (uint32_t k = 0; k < no; k++) {
		off[order[k]] = 0;
		if (!cond_false_when(r, off))
			off[order[k]] = 1;
	}
	for (uint32_t i = 0; i < r->n_idents; i++)
		if (off[i] && node_trig(rs, r, r->ident_root[i], uses, 0, v, nv) < 0)
			return -1;
	return 1;
}

/* ---- building the buckets ---- */

/* No HS_FLAG_SINGLEMATCH: on_hit is idempotent, and single-match costs
 * Hyperscan a per-pattern exhaustion bitmap per scan (a quarter of the
 * time of a scan of the large databases). */
static int pred_hs_flags(const struct sigma_pred *p)
{
	int f = 0;

	if (p->flags & SPF_CASELESS)
		f |= HS_FLAG_CASELESS;
	if (p->flags & SPF_DOTALL)
		f |= HS_FLAG_DOTALL;
	if (p->flags & SPF_MULTILINE)
		f |= HS_FLAG_MULTILINE;
	return f;
}

static int pcre_compile_pred(struct sigma_pred *p)
{
	uint32_t opt = 0;
	int ec;
	PCRE2_SIZE eo;

	if (p->pc || p->kind != SPK_STR)
		return 0;
	if (p->flags & SPF_CASELESS)
		opt |= PCRE2_CASELESS;
	if (p->flags & SPF_DOTALL)
		opt |= PCRE2_DOTALL;
	if (p->flags & SPF_MULTILINE)
		opt |= PCRE2_MULTILINE;
	p->pc = pcre2_compile((PCRE2_SPTR)p->re, PCRE2_ZERO_TERMINATED, opt, &ec, &eo, NULL);
	if (!p->pc)
		return M_EPARSE;
	pcre2_jit_compile(p->pc, PCRE2_JIT_COMPLETE);
	return 0;
}

static struct sigma_bucket *bucket_for(struct sigma_ruleset *rs,
				       const struct sigma_rule *r)
{
	struct sigma_bucket *nb, *b;

	for (uint32_t i = 0; i < rs->n_buckets; i++) {
		b = &rs->buckets[i];
		if (!strcasecmp(b->product, r->product) && !strcasecmp(b->category, r->category) &&
		    !strcasecmp(b->service, r->service))
			return b;
	}
	nb = realloc(rs->buckets, (rs->n_buckets + 1) * sizeof(*nb));
	if (!nb)
		return NULL;
	rs->buckets = nb;
	b = &nb[rs->n_buckets];
	memset(b, 0, sizeof(*b));
	b->product = strdup(r->product);
	b->category = strdup(r->category);
	b->service = strdup(r->service);
	if (!b->product || !b->category || !b->service) {
		free(b->product);
		free(b->category);
		free(b->service);
		return NULL;
	}
	rs->n_buckets++;
	return b;
}

static int u32_push(uint32_t **v, uint32_t *n, uint32_t x)
{
	if ((*n & (*n - 1)) == 0 || *n == 0) {
		uint32_t cap = *n ? *n * 2 : 4;
		uint32_t *nv = realloc(*v, cap * sizeof(*nv));
		if (!nv)
			return M_ENOMEM;
		*v = nv;
	}
	(*v)[(*n)++] = x;
	return 0;
}

/* Per field of a bucket while building: predicates and the rules of each. */
struct fbuild {
	uint32_t field;
	uint32_t *preds;       /* set pred ids (in HS) */
	uint32_t n;
	uint32_t **rules;      /* per entry of preds */
	uint32_t *n_rules;
};

/* A pattern Hyperscan can take as a plain string: \xHH escapes, an
 * optional leading ^ and trailing \z, nothing else of regex syntax. */
static int re_is_literal(const char *re)
{
	const char *p = re;

	if (*p == '^')
		p++;
	for (; *p; p++) {
		if (p[0] == '\\' && p[1] == 'x' && p[2] && p[3]) {
			p += 3;
			continue;
		}
		if (p[0] == '\\' && p[1] == 'z' && !p[2])
			return 1;
		if (strchr(".*?+[](){}|^$\\", *p))
			return 0;
	}
	return 1;
}

/* Which database of a field a pattern goes to (see compile_fdb). */
enum { PART_ALL, PART_LIT, PART_RE };

static int in_part(const struct sigma_pred *p, int part)
{
	return part == PART_ALL || re_is_literal(p->re) == (part == PART_LIT);
}

/* One database of the patterns of fb in part; a pattern Hyperscan refuses
 * goes to PCRE2 (in_hs = 0) and the rest compile without it. *db stays
 * NULL when the part is empty. */
static int compile_part(struct sigma_ruleset *rs, struct fbuild *fb, int part,
			hs_database_t **db, struct buf *err)
{
	const char **exprs = NULL;
	unsigned *flags = NULL, *ids = NULL;
	uint32_t *removed = NULL, n_removed = 0;
	hs_compile_error_t *ce = NULL;
	uint32_t n = fb->n;
	char key[33] = "";
	int r = 0, cached = 0;

	exprs = calloc(n ? n : 1, sizeof(*exprs));
	flags = calloc(n ? n : 1, sizeof(*flags));
	ids = calloc(n ? n : 1, sizeof(*ids));
	removed = calloc(n ? n : 1, sizeof(*removed));
	if (!exprs || !flags || !ids || !removed) {
		r = M_ENOMEM;
		goto out;
	}
	for (int first = 1;; first = 0) {
		uint32_t k = 0;

		for (uint32_t i = 0; i < n; i++) {
			struct sigma_pred *p = &rs->preds[fb->preds[i]];
			if (!p->in_hs || !in_part(p, part))
				continue;
			exprs[k] = p->re;
			flags[k] = (unsigned)pred_hs_flags(p);
			ids[k] = i;
			k++;
		}
		if (k == 0)
			break;
		if (first && rs->hs_cache_dir) {
			uint32_t *rm = NULL, nrm = 0;

			sigma_hscache_key(exprs, flags, ids, k, key);
			if (sigma_hscache_load(rs->hs_cache_dir, key, db, &rm, &nrm)) {
				for (uint32_t j = 0; j < nrm; j++)
					if (rm[j] < n)
						rs->preds[fb->preds[rm[j]]].in_hs = 0;
				free(rm);
				rs->hs_cache_hits++;
				cached = 1;
				break;
			}
			rs->hs_cache_misses++;
		}
		if (hs_compile_multi(exprs, flags, ids, k, HS_MODE_BLOCK, NULL,
				     db, &ce) == HS_SUCCESS)
			break;
		if (ce->expression < 0) {
			buf_printf(err, "Hyperscan: %s", ce->message);
			hs_free_compile_error(ce);
			r = M_EINVAL;
			goto out;
		}
		/* That pattern goes to PCRE2; try again without it. */
		if (n_removed < n)
			removed[n_removed++] = ids[ce->expression];
		rs->preds[fb->preds[ids[ce->expression]]].in_hs = 0;
		hs_free_compile_error(ce);
		ce = NULL;
	}
	if (*db && !cached && rs->hs_cache_dir && key[0])
		sigma_hscache_store(rs->hs_cache_dir, key, *db, removed, n_removed);
out:
	free(exprs);
	free(flags);
	free(ids);
	free(removed);
	return r;
}

/* A large field database is two: its plain strings and its regular
 * expressions. Why: in one database Hyperscan runs the automata of a few
 * hundred regexes alongside thousands of literals, and on the corpus's
 * Windows CommandLine (11,078 strings, 198 regexes) a scan executed 22,300
 * instructions against 10,600 + 7,900 for the two halves (callgrind, the
 * bench's command lines); a second scan costs a small database more than
 * it saves, hence the floor. */
#define SPLIT_MIN_LITERALS 512u

static int compile_fdb(struct sigma_ruleset *rs, struct fbuild *fb,
		       struct sigma_fdb *out, struct buf *err)
{
	uint32_t n = fb->n, n_lit = 0, n_re = 0;
	int r;

	for (uint32_t i = 0; i < n; i++) {
		const struct sigma_pred *p = &rs->preds[fb->preds[i]];

		if (p->in_hs)
			(void)(re_is_literal(p->re) ? n_lit++ : n_re++);
	}
	if (n_lit >= SPLIT_MIN_LITERALS && n_re > 0) {
		r = compile_part(rs, fb, PART_LIT, &out->db, err);
		if (r == 0)
			r = compile_part(rs, fb, PART_RE, &out->db2, err);
	} else {
		r = compile_part(rs, fb, PART_ALL, &out->db, err);
	}
	if (r < 0)
		return r;
	out->field = fb->field;
	out->n = n;
	out->pred_ids = fb->preds;
	fb->preds = NULL;
	/* CSR of the rules per HS id. */
	out->rule_off = calloc(n + 1, sizeof(*out->rule_off));
	if (!out->rule_off)
		return M_ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		out->rule_off[i + 1] = out->rule_off[i] + fb->n_rules[i];
	out->rule_list = malloc((out->rule_off[n] ? out->rule_off[n] : 1) * sizeof(uint32_t));
	if (!out->rule_list)
		return M_ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		if (fb->n_rules[i])
			memcpy(out->rule_list + out->rule_off[i], fb->rules[i],
			       fb->n_rules[i] * sizeof(uint32_t));
	return 0;
}

static void fbuild_fini(struct fbuild *fb)
{
	for (uint32_t i = 0; i < fb->n; i++)
		free(fb->rules[i]);
	free(fb->rules);
	free(fb->n_rules);
	free(fb->preds);
}

/* Collects the predicates under a node. */
static int collect_preds(const struct sigma_rule *r, uint32_t idx, int depth,
			 uint32_t **v, uint32_t *n)
{
	const struct sigma_node *nd = &r->nodes[idx];

	if (depth > 64)
		return 0;
	if (nd->type == SN_PRED)
		return u32_push(v, n, nd->a);
	if (nd->type == SN_AND || nd->type == SN_OR)
		for (uint32_t i = 0; i < nd->n; i++) {
			int e = collect_preds(r, r->kids[nd->a + i], depth + 1, v, n);
			if (e < 0)
				return e;
		}
	return 0;
}

/* A name or key of any length, eight bytes at a time (the field tables,
 * predicate keys, logsource signatures, correlation keys). Never 0. */
uint64_t sigma_name_hash(const char *p, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)n * 0xff51afd7ed558ccdull), w;

	while (n >= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 29;
		p += 8;
		n -= 8;
	}
	if (n) {
		w = 0;
		memcpy(&w, p, n);
		h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	}
	h ^= h >> 32;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 29;
	return h | 1;
}

/* The hash a bucket's field index is keyed by: the length and three
 * 8-byte samples (head, middle, tail) instead of every byte. Every event
 * hashes the names of its overflow fields (a score of long
 * winlog.event_data.* names), and a probe compares the name anyway, so a
 * collision costs a compare, never a wrong field. Never 0. */
static inline uint64_t field_hash(const char *p, size_t n)
{
	uint64_t a = 0, b = 0, m = 0, h;

	if (n >= 8) {
		memcpy(&a, p, 8);
		memcpy(&b, p + n - 8, 8);
		if (n >= 16)
			memcpy(&m, p + n / 2 - 4, 8);
	} else if (n) {
		memcpy(&a, p, n);
	}
	h = (a * 0x9e3779b97f4a7c15ull) ^ (b * 0xc4ceb9fe1a85ec53ull) ^
	    (m * 0xff51afd7ed558ccdull) ^ ((uint64_t)n * 0x94d049bb133111ebull);
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return h | 1;
}

static void xput(struct sigma_bucket *bk, uint64_t h, uint32_t f)
{
	uint32_t j = (uint32_t)h & bk->xmask;

	while (bk->xkeys[j] && !(bk->xkeys[j] == h && bk->xvals[j] == f + 1))
		j = (j + 1) & bk->xmask;
	bk->xkeys[j] = h;
	bk->xvals[j] = f + 1;
}

/* How a bucket finds the databases for an event's fields: known fields by
 * a list, overflow fields (winlog.event_data.*) by name hash, so an event
 * is walked once instead of looking each field up by name. Windows items
 * may sit in EventData or UserData: both names lead to the database. */
static int index_fields(const struct sigma_ruleset *rs, struct sigma_bucket *bk)
{
	uint32_t cap = 16;

	bk->plen = (uint32_t)strlen(bk->product);
	bk->clen = (uint32_t)strlen(bk->category);
	bk->slen = (uint32_t)strlen(bk->service);
	while (cap < bk->n_fdbs * 4 + 16)
		cap *= 2;
	bk->xkeys = calloc(cap, sizeof(*bk->xkeys));
	bk->xvals = calloc(cap, sizeof(*bk->xvals));
	bk->kfdbs = calloc(bk->n_fdbs + 1, sizeof(*bk->kfdbs));
	if (!bk->xkeys || !bk->xvals || !bk->kfdbs)
		return M_ENOMEM;
	bk->xmask = cap - 1;
	for (uint32_t f = 0; f < bk->n_fdbs; f++) {
		const struct sigma_field *fl = &rs->fields[bk->fdbs[f].field];

		if (bk->fdbs[f].field == SIGMA_FIELD_KEYWORDS)
			continue;
		if (fl->known >= 0) {
			bk->kfdbs[bk->n_kfdbs++] = f;
			continue;
		}
		xput(bk, field_hash(fl->name, fl->nlen), f);
		if (fl->alt)
			xput(bk, field_hash(rs->fields[fl->alt].name,
						 rs->fields[fl->alt].nlen), f);
	}
	return 0;
}

/* Per-bucket scratch while building: where each predicate sits. */
struct bbuild {
	uint32_t *pfb;     /* pred -> fbuild index + 1 (0 = not in this bucket) */
	uint32_t *pslot;   /* pred -> slot in that fbuild */
	const uint32_t *uses;
};

static int fb_add(struct fbuild **fbs, uint32_t *n_fbs, struct bbuild *bb,
		  const struct sigma_ruleset *rs, uint32_t pred)
{
	const struct sigma_pred *p = &rs->preds[pred];
	struct fbuild *fb = NULL;
	uint32_t f, n0;
	uint32_t **nr, *nn;

	if (bb->pfb[pred])
		return 0;
	for (f = 0; f < *n_fbs; f++)
		if ((*fbs)[f].field == p->field) {
			fb = &(*fbs)[f];
			break;
		}
	if (!fb) {
		struct fbuild *nf = realloc(*fbs, (*n_fbs + 1) * sizeof(*nf));
		if (!nf)
			return M_ENOMEM;
		*fbs = nf;
		f = (*n_fbs)++;
		fb = &nf[f];
		memset(fb, 0, sizeof(*fb));
		fb->field = p->field;
	}
	n0 = fb->n;
	nr = realloc(fb->rules, (n0 + 1) * sizeof(*nr));
	if (!nr)
		return M_ENOMEM;
	fb->rules = nr;
	nr[n0] = NULL;
	nn = realloc(fb->n_rules, (n0 + 1) * sizeof(*nn));
	if (!nn)
		return M_ENOMEM;
	fb->n_rules = nn;
	nn[n0] = 0;
	if (u32_push(&fb->preds, &fb->n, pred) < 0)
		return M_ENOMEM;
	bb->pfb[pred] = f + 1;
	bb->pslot[pred] = n0;
	return 0;
}

static int build_bucket(struct sigma_ruleset *rs, struct sigma_bucket *bk,
			struct bbuild *bb, struct buf *err)
{
	struct fbuild *fbs = NULL;
	uint32_t n_fbs = 0;
	uint32_t *tmp = NULL, n_tmp = 0;
	int r = 0;

	for (uint32_t ri = 0; r == 0 && ri < bk->n_rules; ri++) {
		struct sigma_rule *rule = rs->rules[bk->rules[ri]];
		int trig;

		/* Every pattern of the rule is scanned (its truth is read from
		 * the hits); the rule is queued only by its triggers. */
		n_tmp = 0;
		for (uint32_t i = 0; r == 0 && i < rule->n_idents; i++)
			r = collect_preds(rule, rule->ident_root[i], 0, &tmp, &n_tmp);
		for (uint32_t k = 0; r == 0 && k < n_tmp; k++)
			if (rs->preds[tmp[k]].in_hs)
				r = fb_add(&fbs, &n_fbs, bb, rs, tmp[k]);
		if (r < 0)
			break;
		trig = rule_triggers(rs, rule, bb->uses, &tmp, &n_tmp);
		if (trig < 0) {
			r = M_ENOMEM;
			break;
		}
		rule->always_eval = trig == 0;
		if (rule->always_eval) {
			r = u32_push(&bk->always, &bk->n_always, bk->rules[ri]);
			continue;
		}
		for (uint32_t k = 0; r == 0 && k < n_tmp; k++) {
			uint32_t pid = tmp[k];
			struct fbuild *fb;
			uint32_t slot;

			if (!bb->pfb[pid])
				continue;
			fb = &fbs[bb->pfb[pid] - 1];
			slot = bb->pslot[pid];
			if (fb->n_rules[slot] == 0 ||
			    fb->rules[slot][fb->n_rules[slot] - 1] != bk->rules[ri])
				r = u32_push(&fb->rules[slot], &fb->n_rules[slot], bk->rules[ri]);
		}
	}
	free(tmp);
	for (uint32_t f = 0; f < n_fbs; f++)
		for (uint32_t k = 0; k < fbs[f].n; k++)
			bb->pfb[fbs[f].preds[k]] = 0;
	if (r == 0 && n_fbs) {
		bk->fdbs = calloc(n_fbs, sizeof(*bk->fdbs));
		if (!bk->fdbs)
			r = M_ENOMEM;
	}
	for (uint32_t f = 0; r == 0 && f < n_fbs; f++) {
		r = compile_fdb(rs, &fbs[f], &bk->fdbs[f], err);
		if (r == 0) {
			if (fbs[f].field == SIGMA_FIELD_KEYWORDS)
				bk->keyword_fdb = f + 1;
			bk->n_fdbs++;
		}
	}
	for (uint32_t f = 0; f < n_fbs; f++)
		fbuild_fini(&fbs[f]);
	free(fbs);
	if (r == 0)
		r = index_fields(rs, bk);
	return r;
}

/* A trigger that Hyperscan finally refused (moved to PCRE2 when its
 * database compiled) can no longer queue its rule: such rules are
 * evaluated on every event of their logsource instead. */
static int fix_lost_triggers(struct sigma_ruleset *rs, struct sigma_bucket *bk)
{
	for (uint32_t f = 0; f < bk->n_fdbs; f++) {
		struct sigma_fdb *fdb = &bk->fdbs[f];

		for (uint32_t i = 0; i < fdb->n; i++) {
			if (rs->preds[fdb->pred_ids[i]].in_hs)
				continue;
			for (uint32_t k = fdb->rule_off[i]; k < fdb->rule_off[i + 1]; k++) {
				struct sigma_rule *rule = rs->rules[fdb->rule_list[k]];
				int r;

				if (rule->always_eval)
					continue;
				rule->always_eval = 1;
				r = u32_push(&bk->always, &bk->n_always, fdb->rule_list[k]);
				if (r < 0)
					return r;
			}
		}
	}
	return 0;
}

static int pred_check_hs(struct sigma_pred *p)
{
	hs_expr_info_t *info = NULL;
	hs_compile_error_t *ce = NULL;

	if (hs_expression_info(p->re, (unsigned)pred_hs_flags(p), &info, &ce) != HS_SUCCESS) {
		hs_free_compile_error(ce);
		return 0;
	}
	/* Patterns that can match the empty string match every present
	 * value; Hyperscan refuses them without HS_FLAG_ALLOWEMPTY. */
	int ok = info->min_width > 0;

	p->min_width = info->min_width > 0xffff ? 0xffff : (uint16_t)info->min_width;
	free(info);
	return ok;
}

/* Short patterns that queue no rule leave the databases. Why: a database
 * reports every occurrence of every pattern, and most occurrences on a
 * Windows command line are of short, common strings (` -`, `.exe`, single
 * letters) that only matter once a rarer pattern of the same rule has
 * queued it: 85% of the CommandLine database's hits on the bench's events
 * queued nothing, and each costs a callback and marks. Such a predicate is
 * tested on its own (sigma_lit.c for plain strings, else PCRE2; once per
 * event at most, lazy_stamp) when a queued rule reads it. Only short ones
 * (DEMOTE_MAX_WIDTH bytes at least in a match): the filter lists of queued
 * rules read longer ones by the dozen, and testing those one by one cost
 * more than their hits (callgrind, process creation events: 33,650
 * instructions an event keeping all, 26,500 demoting up to 3 bytes, 27,700
 * up to 6, 43,700 all). Kept in the databases: every trigger, and the
 * patterns of rules without triggers (read on every event of their
 * logsource); a pattern neither sigma_lit.c nor PCRE2 takes stays too. */
#define DEMOTE_MAX_WIDTH 3u

static int demote_idle_preds(struct sigma_ruleset *rs, const uint32_t *uses)
{
	uint8_t *keep;
	uint32_t *tmp = NULL, n_tmp = 0;
	int r = 0;

	if (rs->force_pcre)
		return 0;
	keep = calloc(rs->n_preds + 1, 1);
	if (!keep)
		return M_ENOMEM;
	for (uint32_t i = 0; r == 0 && i < rs->n_rules; i++) {
		const struct sigma_rule *rule = rs->rules[i];
		int trig;

		if (rule->info.is_correlation)
			continue;
		trig = rule_triggers(rs, rule, uses, &tmp, &n_tmp);
		if (trig < 0) {
			r = M_ENOMEM;
			break;
		}
		if (trig == 0) {
			n_tmp = 0;
			for (uint32_t k = 0; r == 0 && k < rule->n_idents; k++)
				r = collect_preds(rule, rule->ident_root[k], 0, &tmp, &n_tmp);
		}
		for (uint32_t k = 0; k < n_tmp; k++)
			keep[tmp[k]] = 1;
	}
	for (uint32_t i = 0; r == 0 && i < rs->n_preds; i++) {
		struct sigma_pred *p = &rs->preds[i];

		if (p->in_hs && !keep[i] && p->min_width <= DEMOTE_MAX_WIDTH &&
		    (p->lit || (pcre_compile_pred(p) == 0 && p->pc)))
			p->in_hs = 0;
	}
	free(tmp);
	free(keep);
	return r;
}

int sigma_compile_buckets(struct sigma_ruleset *rs, struct buf *err)
{
	int r = 0;

	for (uint32_t i = 0; i < rs->n_preds; i++) {
		struct sigma_pred *p = &rs->preds[i];

		p->in_hs = p->kind == SPK_STR && !rs->force_pcre && pred_check_hs(p);
		if (!rs->force_pcre && (r = sigma_lit_prepare(p)) < 0)
			return r;
	}
	for (uint32_t i = 0; i < rs->n_rules + rs->n_filters; i++) {
		struct sigma_rule *rule = i < rs->n_rules ? rs->rules[i] : rs->filters[i - rs->n_rules];

		if (!rule->info.is_correlation && (r = find_musts(rule)) < 0)
			return r;
	}
	for (uint32_t i = 0; i < rs->n_rules; i++) {
		struct sigma_rule *rule = rs->rules[i];
		struct sigma_bucket *bk;

		if (rule->info.is_correlation)
			continue;
		bk = bucket_for(rs, rule);
		if (!bk)
			return M_ENOMEM;
		r = u32_push(&bk->rules, &bk->n_rules, i);
		if (r < 0)
			return r;
	}
	{
		struct bbuild bb;
		uint32_t *uses = calloc(rs->n_preds + 1, sizeof(*uses));
		uint32_t *tmp = NULL, n_tmp = 0;

		bb.pfb = calloc(rs->n_preds + 1, sizeof(uint32_t));
		bb.pslot = calloc(rs->n_preds + 1, sizeof(uint32_t));
		bb.uses = uses;
		if (!uses || !bb.pfb || !bb.pslot)
			r = M_ENOMEM;
		for (uint32_t i = 0; r == 0 && i < rs->n_rules; i++) {
			const struct sigma_rule *rule = rs->rules[i];

			n_tmp = 0;
			for (uint32_t k = 0; r == 0 && k < rule->n_idents; k++)
				r = collect_preds(rule, rule->ident_root[k], 0, &tmp, &n_tmp);
			for (uint32_t k = 0; k < n_tmp; k++)
				uses[tmp[k]]++;
		}
		free(tmp);
		if (r == 0)
			r = demote_idle_preds(rs, uses);
		for (uint32_t i = 0; r == 0 && i < rs->n_buckets; i++)
			r = build_bucket(rs, &rs->buckets[i], &bb, err);
		for (uint32_t i = 0; r == 0 && i < rs->n_buckets; i++)
			r = fix_lost_triggers(rs, &rs->buckets[i]);
		free(uses);
		free(bb.pfb);
		free(bb.pslot);
	}
	if (r < 0)
		return r;
	/* Everything not matched by Hyperscan is evaluated directly. */
	for (uint32_t i = 0; i < rs->n_preds; i++) {
		struct sigma_pred *p = &rs->preds[i];

		if (p->kind == SPK_STR && !p->lit && pcre_compile_pred(p) < 0 && !p->in_hs) {
			/* Neither engine takes it: it can never match. */
			p->kind = SPK_FALSE;
		}
	}
	for (uint32_t i = 0; i < rs->n_buckets; i++)
		for (uint32_t f = 0; f < rs->buckets[i].n_fdbs; f++) {
			const struct sigma_fdb *fd = &rs->buckets[i].fdbs[f];

			if ((fd->db && hs_alloc_scratch(fd->db, &rs->proto) != HS_SUCCESS) ||
			    (fd->db2 && hs_alloc_scratch(fd->db2, &rs->proto) != HS_SUCCESS)) {
				buf_printf(err, "Hyperscan: cannot allocate scratch space");
				return M_ENOMEM;
			}
		}
	if (rs->hs_cache_dir)
		sigma_hscache_prune(rs->hs_cache_dir, 30 * 86400);
	/* A node reads its predicate's mark without the predicate (a cold
	 * line of a large array) when Hyperscan decides it. */
	for (uint32_t i = 0; i < rs->n_rules + rs->n_filters; i++) {
		struct sigma_rule *ru = i < rs->n_rules ? rs->rules[i] : rs->filters[i - rs->n_rules];

		for (uint32_t k = 0; k < ru->n_nodes; k++)
			if (ru->nodes[k].type == SN_PRED)
				ru->nodes[k].hs = rs->preds[ru->nodes[k].a].in_hs;
	}
	return build_groups(rs);
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
	free(c->vc_seen);
	free(c->pred_stamp);
	free(c->grp_stamp);
	free(c->lazy_stamp);
	free(c->lazy_val);
	free(c->rule_stamp);
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
		for (uint32_t f = 0; f < bk->n_fdbs; f++) {
			hs_free_database(bk->fdbs[f].db);
			hs_free_database(bk->fdbs[f].db2);
			free(bk->fdbs[f].pred_ids);
			free(bk->fdbs[f].rule_off);
			free(bk->fdbs[f].rule_list);
		}
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
	c->vc = calloc(SIGMA_VC_SLOTS, sizeof(*c->vc));
	c->vc_seen = calloc(SIGMA_VC_SEEN, sizeof(*c->vc_seen));
	c->pred_stamp = calloc(rs->n_preds + 1, sizeof(*c->pred_stamp));
	c->grp_stamp = calloc(rs->n_groups + 1, sizeof(*c->grp_stamp));
	c->rs = rs;
	c->lazy_stamp = calloc(rs->n_preds + 1, sizeof(*c->lazy_stamp));
	c->lazy_val = calloc(rs->n_preds + 1, 1);
	c->rule_stamp = calloc(rs->n_rules + 1, sizeof(*c->rule_stamp));
	c->todo = calloc(rs->n_rules + 1, sizeof(uint32_t));
	c->fv_stamp = calloc(rs->n_fields + 1, sizeof(*c->fv_stamp));
	c->fv = calloc(rs->n_fields + 1, sizeof(*c->fv));
	if (!c->md || !c->vc || !c->vc_seen || !c->pred_stamp || !c->grp_stamp || !c->lazy_stamp || !c->lazy_val ||
	    !c->rule_stamp || !c->todo || !c->fv_stamp || !c->fv ||
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

struct scan_cb {
	const struct sigma_ruleset *rs;
	struct sigma_ctx *c;
	const struct sigma_fdb *fdb;
};

static void queue_rule(struct sigma_ctx *c, uint32_t rule)
{
	if (c->rule_stamp[rule] == c->stamp)
		return;
	c->rule_stamp[rule] = c->stamp;
	c->todo[c->n_todo++] = rule;
}

static void hit_id(struct sigma_ctx *c, const struct sigma_fdb *f, uint32_t id)
{
	const struct sigma_ruleset *rs = c->rs;
	uint32_t p = f->pred_ids[id];

	c->pred_stamp[p] = c->stamp;
	if (rs->pred_grp_off)
		for (uint32_t k = rs->pred_grp_off[p]; k < rs->pred_grp_off[p + 1]; k++)
			c->grp_stamp[rs->pred_grp[k]] = c->stamp;
	for (uint32_t k = f->rule_off[id]; k < f->rule_off[id + 1]; k++)
		queue_rule(c, f->rule_list[k]);
}

static int on_hit(unsigned int id, unsigned long long from,
		  unsigned long long to, unsigned int flags, void *ctx)
{
	struct scan_cb *s = ctx;

	(void)from;
	(void)to;
	(void)flags;
	if (id < s->fdb->n)
		hit_id(s->c, s->fdb, id);
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
	(void)to;
	(void)flags;
	if (id >= r->s.fdb->n)
		return 0;
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

/* 64-bit hash of a short value, 8 bytes at a time, keyed by the database. */
static uint64_t vc_hash(const struct sigma_fdb *f, const char *p, size_t n)
{
	uint64_t h = (uint64_t)(uintptr_t)f * 0x9e3779b97f4a7c15ull ^ n;

	while (n >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
		p += 8;
		n -= 8;
	}
	if (n) {
		uint64_t w = 0;

		memcpy(&w, p, n);
		h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	}
	h ^= h >> 29;
	return h * 0x94d049bb133111ebull;
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
	struct sigma_vc_ent *e;
	struct rec_cb r;
	uint64_t h;

	if (!p)
		p = "";
	if (f->n < SIGMA_VC_MIN_PATTERNS || n > SIGMA_VC_MAX_VALUE) {
		fdb_scan(f, p, n, c->scratch, on_hit, s);
		return;
	}
	h = vc_hash(f, p, n);
	e = &c->vc[h & (SIGMA_VC_SLOTS - 1)];
	c->vc_lookups++;
	if (e->fdb == f && e->h == h && e->len == n && memcmp(e->val, p, n) == 0) {
		c->vc_hits++;
		for (uint32_t i = 0; i < e->n_hits; i++)
			hit_id(c, f, e->hits[i]);
		return;
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
	e->fdb = NULL;
	e->n_hits = 0;
	r.s = *s;
	r.e = e;
	fdb_scan(f, p, n, c->scratch, on_hit_rec, &r);
	if (e->n_hits > SIGMA_VC_MAX_HITS)
		return;
	e->fdb = f;
	e->h = h;
	e->len = (uint16_t)n;
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
	free(pl->xkeys);
	free(pl->xf);
	free(pl);
}

/* The merged databases of the buckets of e (struct sigma_plan). */
static struct sigma_plan *plan_build(const struct sigma_ruleset *rs,
				     const struct sigma_ls_ent *e)
{
	struct sigma_plan *pl = calloc(1, sizeof(*pl));
	uint32_t n_fdbs = 0, n_x = 0, cap = 16;

	if (!pl)
		return NULL;
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
	if (!pl->known || !pl->kw || !pl->xkeys || !pl->xf) {
		plan_free(pl);
		return NULL;
	}
	pl->xmask = cap - 1;
	for (uint32_t i = 0; i < e->n; i++) {
		const struct sigma_bucket *bk = &rs->buckets[e->b[i]];

		for (uint32_t k = 0; k < bk->n_kfdbs; k++)
			pl->known[pl->n_known++] = &bk->fdbs[bk->kfdbs[k]];
		if (bk->keyword_fdb)
			pl->kw[pl->n_kw++] = &bk->fdbs[bk->keyword_fdb - 1];
		for (uint32_t j = 0; j <= bk->xmask && bk->xkeys; j++) {
			uint32_t at;

			if (!bk->xkeys[j])
				continue;
			at = (uint32_t)bk->xkeys[j] & pl->xmask;
			while (pl->xkeys[at])
				at = (at + 1) & pl->xmask;
			pl->xkeys[at] = bk->xkeys[j];
			pl->xf[at] = &bk->fdbs[bk->xvals[j] - 1];
		}
	}
	return pl;
}

/* The buckets an event's logsource meets, cached per context by the
 * logsource's text (a handful of distinct signatures in practice). */
static const struct sigma_ls_ent *buckets_of(const struct sigma_ruleset *rs,
					     struct sigma_ctx *c,
					     const struct sigma_logsource *ls)
{
	char sig[96];
	size_t n = 0;
	struct sigma_ls_ent *e;
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
	if (strcmp(e->sig, sig) == 0 && e->n != 0xffff)
		return e;
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
	e->plan = plan_build(rs, e);   /* NULL (no memory): bucket by bucket */
	return e;
}

/* The name of an overflow field is the database's field (or its alt). */
static int xname_is(const struct sigma_ruleset *rs, struct str name,
		    const struct sigma_fdb *f)
{
	const struct sigma_field *fl = &rs->fields[f->field];

	return str_eq(name, str_make(fl->name, fl->nlen)) ||
	       (fl->alt && str_eq(name, str_make(rs->fields[fl->alt].name,
						 rs->fields[fl->alt].nlen)));
}

/* Every field of the event through the merged databases of its buckets
 * (struct sigma_plan), queuing rules in c->todo. */
static void match_planned(const struct sigma_ruleset *rs, struct sigma_ctx *c,
			  const struct event *ev, const struct sigma_ls_ent *le)
{
	const struct sigma_plan *pl = le->plan;
	struct scan_cb s = { rs, c, NULL };

	c->n_todo = 0;
	for (uint32_t k = 0; k < pl->n_known; k++) {
		s.fdb = pl->known[k];
		scan(&s, event_get(ev, rs->fields[s.fdb->field].known));
	}
	for (uint32_t i = 0; i < ev->n_extra && i < EVENT_MAX_EXTRA; i++) {
		uint64_t h = c->xh[i];

		for (uint32_t j = (uint32_t)h & pl->xmask; pl->xkeys[j]; j = (j + 1) & pl->xmask) {
			if (pl->xkeys[j] != h || !xname_is(rs, ev->extra[i].name, pl->xf[j]))
				continue;
			s.fdb = pl->xf[j];
			scan(&s, ev->extra[i].value);
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
	struct scan_cb s = { rs, c, NULL };
	const struct sigma_ls_ent *le;
	uint32_t n_b;

	*n = 0;
	if (++c->stamp == 0) {
		memset(c->pred_stamp, 0, (rs->n_preds + 1) * sizeof(*c->pred_stamp));
		memset(c->grp_stamp, 0, (rs->n_groups + 1) * sizeof(*c->grp_stamp));
		memset(c->lazy_stamp, 0, (rs->n_preds + 1) * sizeof(*c->lazy_stamp));
		memset(c->rule_stamp, 0, (rs->n_rules + 1) * sizeof(*c->rule_stamp));
		memset(c->fv_stamp, 0, (rs->n_fields + 1) * sizeof(*c->fv_stamp));
		c->stamp = 1;
	}
	c->ev = ev;
	sigma_event_logsource(ev, &ls);
	le = buckets_of(rs, c, &ls);
	n_b = le ? le->n : rs->n_buckets;
	for (uint32_t i = 0; i < ev->n_extra && i < EVENT_MAX_EXTRA; i++)
		c->xh[i] = field_hash(ev->extra[i].name.p, ev->extra[i].name.n);
	if (le && le->plan) {
		match_planned(rs, c, ev, le);
		eval_todo(rs, c, out, cap, n);
		return 0;
	}
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
