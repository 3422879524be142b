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
	v = event_get_extra(ev, str_cstr(f->name));
	if (!v.p && f->alt)
		v = event_get_extra(ev, str_cstr(rs->fields[f->alt].name));
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

int sigma_pred_eval_direct(const struct sigma_ruleset *rs,
			   const struct sigma_pred *p, const struct event *ev,
			   pcre2_match_data *md)
{
	struct str v;
	char tmp[128];

	if (p->kind == SPK_FALSE)
		return 0;
	if (p->field == SIGMA_FIELD_KEYWORDS) {
		struct str vals[EVENT_MAX_KNOWN + EVENT_MAX_EXTRA];
		size_t n;

		if (p->kind != SPK_STR)
			return 0;
		n = sigma_keyword_values(ev, vals);
		for (size_t i = 0; i < n; i++)
			if (str_match_pc(p, vals[i], md))
				return 1;
		return 0;
	}
	v = sigma_field_value(rs, p->field, ev);
	switch (p->kind) {
	case SPK_STR:
		return str_match_pc(p, v, md);
	case SPK_NULL:
		return v.p == NULL || v.n == 0;
	case SPK_EXISTS:
		return (v.p != NULL) == (p->arg != 0);
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
	} else {
		c->lazy_val[id] = (uint8_t)sigma_pred_eval_direct(rs, p, c->ev, c->md);
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
	for (uint32_t i = 0; i < r->n_idents; i++)
		c->matched[i] = (uint8_t)node_eval(rs, c, r, r->ident_root[i], direct, 0);
	return sigma_cond_eval(r->cond, c->matched) == 1;
}

/* ---- static analysis: can the rule hold with no Hyperscan hit? ---- */

enum { T_F = 0, T_T = 1, T_U = 2 };

static int node3(const struct sigma_ruleset *rs, const struct sigma_rule *r,
		 uint32_t idx, int depth)
{
	const struct sigma_node *n = &r->nodes[idx];
	int acc;

	if (depth > 64)
		return T_U;
	switch (n->type) {
	case SN_PRED:
		return rs->preds[n->a].in_hs ? T_F : T_U;
	case SN_TRUE:
		return T_T;
	case SN_FALSE:
		return T_F;
	case SN_AND:
		acc = T_T;
		for (uint32_t i = 0; i < n->n; i++) {
			int v = node3(rs, r, r->kids[n->a + i], depth + 1);
			if (v == T_F)
				return T_F;
			if (v == T_U)
				acc = T_U;
		}
		return acc;
	case SN_OR:
		acc = T_F;
		for (uint32_t i = 0; i < n->n; i++) {
			int v = node3(rs, r, r->kids[n->a + i], depth + 1);
			if (v == T_T)
				return T_T;
			if (v == T_U)
				acc = T_U;
		}
		return acc;
	}
	return T_U;
}

static int needs_always(const struct sigma_ruleset *rs, const struct sigma_rule *r)
{
	uint8_t val[SIGMA_COND_MAX_NAMES];
	uint32_t unk[SIGMA_COND_MAX_NAMES], nu = 0;

	for (uint32_t i = 0; i < r->n_idents; i++) {
		int v = node3(rs, r, r->ident_root[i], 0);
		val[i] = v == T_T;
		if (v == T_U)
			unk[nu++] = i;
	}
	if (nu > 12)
		return 1;
	for (uint32_t m = 0; m < (1u << nu); m++) {
		for (uint32_t k = 0; k < nu; k++)
			val[unk[k]] = (m >> k) & 1;
		if (sigma_cond_eval(r->cond, val) == 1)
			return 1;
	}
	return 0;
}

/* ---- building the buckets ---- */

static int pred_hs_flags(const struct sigma_pred *p)
{
	int f = HS_FLAG_SINGLEMATCH;

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

static int compile_fdb(struct sigma_ruleset *rs, struct fbuild *fb,
		       struct sigma_fdb *out, struct buf *err)
{
	const char **exprs = NULL;
	unsigned *flags = NULL, *ids = NULL;
	hs_compile_error_t *ce = NULL;
	uint32_t n = fb->n;
	int r = 0;

	exprs = calloc(n ? n : 1, sizeof(*exprs));
	flags = calloc(n ? n : 1, sizeof(*flags));
	ids = calloc(n ? n : 1, sizeof(*ids));
	if (!exprs || !flags || !ids) {
		r = M_ENOMEM;
		goto out;
	}
	for (;;) {
		uint32_t k = 0;

		for (uint32_t i = 0; i < n; i++) {
			struct sigma_pred *p = &rs->preds[fb->preds[i]];
			if (!p->in_hs)
				continue;
			exprs[k] = p->re;
			flags[k] = (unsigned)pred_hs_flags(p);
			ids[k] = i;
			k++;
		}
		if (k == 0)
			break;
		if (hs_compile_multi(exprs, flags, ids, k, HS_MODE_BLOCK, NULL,
				     &out->db, &ce) == HS_SUCCESS)
			break;
		if (ce->expression < 0) {
			buf_printf(err, "Hyperscan: %s", ce->message);
			hs_free_compile_error(ce);
			r = M_EINVAL;
			goto out;
		}
		/* That pattern goes to PCRE2; try again without it. */
		rs->preds[fb->preds[ids[ce->expression]]].in_hs = 0;
		hs_free_compile_error(ce);
		ce = NULL;
	}
	out->field = fb->field;
	out->n = n;
	out->pred_ids = fb->preds;
	fb->preds = NULL;
	/* CSR of the rules per HS id. */
	out->rule_off = calloc(n + 1, sizeof(*out->rule_off));
	if (!out->rule_off) {
		r = M_ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++)
		out->rule_off[i + 1] = out->rule_off[i] + fb->n_rules[i];
	out->rule_list = malloc((out->rule_off[n] ? out->rule_off[n] : 1) * sizeof(uint32_t));
	if (!out->rule_list) {
		r = M_ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++)
		memcpy(out->rule_list + out->rule_off[i], fb->rules[i],
		       fb->n_rules[i] * sizeof(uint32_t));
out:
	free(exprs);
	free(flags);
	free(ids);
	return r;
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

static int build_bucket(struct sigma_ruleset *rs, struct sigma_bucket *bk,
			struct buf *err)
{
	struct fbuild *fbs = NULL;
	uint32_t n_fbs = 0;
	uint32_t *tmp = NULL, n_tmp = 0;
	int r = 0;

	for (uint32_t ri = 0; r == 0 && ri < bk->n_rules; ri++) {
		const struct sigma_rule *rule = rs->rules[bk->rules[ri]];

		n_tmp = 0;
		for (uint32_t i = 0; r == 0 && i < rule->n_idents; i++)
			r = collect_preds(rule, rule->ident_root[i], 0, &tmp, &n_tmp);
		for (uint32_t k = 0; r == 0 && k < n_tmp; k++) {
			const struct sigma_pred *p = &rs->preds[tmp[k]];
			struct fbuild *fb = NULL;
			uint32_t slot;

			if (!p->in_hs)
				continue;
			for (uint32_t f = 0; f < n_fbs; f++)
				if (fbs[f].field == p->field)
					fb = &fbs[f];
			if (!fb) {
				struct fbuild *nf = realloc(fbs, (n_fbs + 1) * sizeof(*nf));
				if (!nf) {
					r = M_ENOMEM;
					break;
				}
				fbs = nf;
				fb = &fbs[n_fbs++];
				memset(fb, 0, sizeof(*fb));
				fb->field = p->field;
			}
			for (slot = 0; slot < fb->n; slot++)
				if (fb->preds[slot] == tmp[k])
					break;
			if (slot == fb->n) {
				uint32_t n0 = fb->n;
				uint32_t **nr = realloc(fb->rules, (n0 + 1) * sizeof(*nr));
				uint32_t *nn;

				if (!nr) {
					r = M_ENOMEM;
					break;
				}
				fb->rules = nr;
				nr[n0] = NULL;
				nn = realloc(fb->n_rules, (n0 + 1) * sizeof(*nn));
				if (!nn) {
					r = M_ENOMEM;
					break;
				}
				fb->n_rules = nn;
				nn[n0] = 0;
				r = u32_push(&fb->preds, &fb->n, tmp[k]);
				if (r < 0)
					break;
			}
			if (fb->n_rules[slot] == 0 ||
			    fb->rules[slot][fb->n_rules[slot] - 1] != bk->rules[ri])
				r = u32_push(&fb->rules[slot], &fb->n_rules[slot], bk->rules[ri]);
		}
	}
	free(tmp);
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
	return r;
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
	free(info);
	return ok;
}

int sigma_compile_buckets(struct sigma_ruleset *rs, struct buf *err)
{
	int r = 0;

	for (uint32_t i = 0; i < rs->n_preds; i++) {
		struct sigma_pred *p = &rs->preds[i];

		p->in_hs = p->kind == SPK_STR && !rs->force_pcre && pred_check_hs(p);
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
	for (uint32_t i = 0; r == 0 && i < rs->n_buckets; i++)
		r = build_bucket(rs, &rs->buckets[i], err);
	if (r < 0)
		return r;
	/* Everything not matched by Hyperscan is evaluated directly. */
	for (uint32_t i = 0; i < rs->n_preds; i++) {
		struct sigma_pred *p = &rs->preds[i];

		if (p->kind == SPK_STR && pcre_compile_pred(p) < 0 && !p->in_hs) {
			/* Neither engine takes it: it can never match. */
			p->kind = SPK_FALSE;
		}
	}
	for (uint32_t i = 0; i < rs->n_buckets; i++) {
		struct sigma_bucket *bk = &rs->buckets[i];

		for (uint32_t k = 0; k < bk->n_rules; k++) {
			struct sigma_rule *rule = rs->rules[bk->rules[k]];

			rule->always_eval = (uint8_t)needs_always(rs, rule);
			if (rule->always_eval) {
				r = u32_push(&bk->always, &bk->n_always, bk->rules[k]);
				if (r < 0)
					return r;
			}
		}
	}
	for (uint32_t i = 0; i < rs->n_buckets; i++)
		for (uint32_t f = 0; f < rs->buckets[i].n_fdbs; f++) {
			hs_database_t *db = rs->buckets[i].fdbs[f].db;
			if (db && hs_alloc_scratch(db, &rs->proto) != HS_SUCCESS) {
				buf_printf(err, "Hyperscan: cannot allocate scratch space");
				return M_ENOMEM;
			}
		}
	return 0;
}

/* ---- the set ---- */

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
			free(bk->fdbs[f].pred_ids);
			free(bk->fdbs[f].rule_off);
			free(bk->fdbs[f].rule_list);
		}
		free(bk->fdbs);
		free(bk->rules);
		free(bk->always);
		free(bk->product);
		free(bk->category);
		free(bk->service);
	}
	free(rs->buckets);
	for (c = rs->pool; c; c = next) {
		next = c->next;
		hs_free_scratch(c->scratch);
		pcre2_match_data_free(c->md);
		free(c->pred_stamp);
		free(c->lazy_stamp);
		free(c->lazy_val);
		free(c->rule_stamp);
		free(c->todo);
		free(c);
	}
	hs_free_scratch(rs->proto);
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
	c->pred_stamp = calloc(rs->n_preds + 1, sizeof(uint32_t));
	c->lazy_stamp = calloc(rs->n_preds + 1, sizeof(uint32_t));
	c->lazy_val = calloc(rs->n_preds + 1, 1);
	c->rule_stamp = calloc(rs->n_rules + 1, sizeof(uint32_t));
	c->todo = calloc(rs->n_rules + 1, sizeof(uint32_t));
	if (!c->md || !c->pred_stamp || !c->lazy_stamp || !c->lazy_val ||
	    !c->rule_stamp || !c->todo ||
	    (rs->proto && hs_clone_scratch(rs->proto, &c->scratch) != HS_SUCCESS)) {
		pcre2_match_data_free(c->md);
		free(c->pred_stamp);
		free(c->lazy_stamp);
		free(c->lazy_val);
		free(c->rule_stamp);
		free(c->todo);
		free(c);
		return NULL;
	}
	return c;
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

static int on_hit(unsigned int id, unsigned long long from,
		  unsigned long long to, unsigned int flags, void *ctx)
{
	struct scan_cb *s = ctx;
	const struct sigma_fdb *f = s->fdb;

	(void)from;
	(void)to;
	(void)flags;
	if (id >= f->n)
		return 0;
	s->c->pred_stamp[f->pred_ids[id]] = s->c->stamp;
	for (uint32_t k = f->rule_off[id]; k < f->rule_off[id + 1]; k++)
		queue_rule(s->c, f->rule_list[k]);
	return 0;
}

static void scan(struct scan_cb *s, struct str v)
{
	if (!v.p || !s->fdb->db)
		return;
	hs_scan(s->fdb->db, v.n ? v.p : "", (unsigned)v.n, 0, s->c->scratch, on_hit, s);
}

static int bucket_fits(const struct sigma_bucket *bk, const struct sigma_logsource *ls)
{
	int ok;

	if (*bk->product && !str_eq_cstr(ls->product, bk->product)) {
		if (ls->product.n != strlen(bk->product) ||
		    strncasecmp(ls->product.p, bk->product, ls->product.n) != 0)
			return 0;
	}
	if (*bk->category) {
		ok = 0;
		for (uint32_t i = 0; i < ls->n_category && !ok; i++)
			ok = str_eq_cstr(ls->category[i], bk->category);
		if (!ok)
			return 0;
	}
	if (*bk->service) {
		ok = 0;
		for (uint32_t i = 0; i < ls->n_service && !ok; i++)
			ok = ls->service[i].n == strlen(bk->service) &&
			     strncasecmp(ls->service[i].p, bk->service, ls->service[i].n) == 0;
		if (!ok)
			return 0;
	}
	return 1;
}

static int filters_pass(const struct sigma_ruleset *rs, struct sigma_ctx *c,
			const struct sigma_rule *r)
{
	for (uint32_t i = 0; i < r->n_filters; i++)
		if (rule_eval(rs, c, r->filters[i], 1))
			return 0;
	return 1;
}

int sigma_match(const struct sigma_ruleset *rs, struct sigma_ctx *c,
		const struct event *ev, uint32_t *out, size_t cap, size_t *n)
{
	struct sigma_logsource ls;
	struct scan_cb s = { rs, c, NULL };

	*n = 0;
	if (++c->stamp == 0) {
		memset(c->pred_stamp, 0, rs->n_preds * sizeof(uint32_t));
		memset(c->lazy_stamp, 0, rs->n_preds * sizeof(uint32_t));
		memset(c->rule_stamp, 0, rs->n_rules * sizeof(uint32_t));
		c->stamp = 1;
	}
	c->ev = ev;
	sigma_event_logsource(ev, &ls);
	for (uint32_t b = 0; b < rs->n_buckets; b++) {
		const struct sigma_bucket *bk = &rs->buckets[b];

		if (!bucket_fits(bk, &ls))
			continue;
		c->n_todo = 0;
		c->bk = bk;
		for (uint32_t f = 0; f < bk->n_fdbs; f++) {
			s.fdb = &bk->fdbs[f];
			if (s.fdb->field == SIGMA_FIELD_KEYWORDS) {
				struct str vals[EVENT_MAX_KNOWN + EVENT_MAX_EXTRA];
				size_t nv = sigma_keyword_values(ev, vals);

				for (size_t i = 0; i < nv; i++)
					scan(&s, vals[i]);
			} else {
				scan(&s, sigma_field_value(rs, s.fdb->field, ev));
			}
		}
		for (uint32_t k = 0; k < bk->n_always; k++)
			queue_rule(c, bk->always[k]);
		for (uint32_t k = 0; k < c->n_todo; k++) {
			const struct sigma_rule *r = rs->rules[c->todo[k]];

			if (!rule_eval(rs, c, r, rs->force_pcre) || !filters_pass(rs, c, r))
				continue;
			if (*n < cap)
				out[(*n)++] = c->todo[k];
		}
	}
	return 0;
}
