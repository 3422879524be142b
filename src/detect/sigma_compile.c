/*
 * Compiling a Sigma rule set's buckets (sigma_int.h): which predicates
 * trigger a rule, which identifiers decide it alone, the hit groups, and
 * one Hyperscan database per (logsource, field). Matching is in
 * sigma_match.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/hs_child.h"
#include "detect/sigma_int.h"

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

/* The identifiers whose triggers make the rule's trigger set into off;
 * 0 when there is none (it must be evaluated on every event of its
 * logsource), 1 otherwise. */
static int trig_idents(const struct sigma_ruleset *rs, const struct sigma_rule *r,
		       const uint32_t *uses, uint8_t *off)
{
	double cost[SIGMA_COND_MAX_NAMES];
	uint32_t order[SIGMA_COND_MAX_NAMES], no = 0;

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
	return 1;
}

/* The rule's trigger predicates into v; 0 when it has none (it must be
 * evaluated on every event of its logsource), 1 otherwise. */
static int rule_triggers(const struct sigma_ruleset *rs, const struct sigma_rule *r,
			 const uint32_t *uses, uint32_t **v, uint32_t *nv)
{
	uint8_t off[SIGMA_COND_MAX_NAMES] = { 0 };

	*nv = 0;
	if (!trig_idents(rs, r, uses, off))
		return 0;
	for (uint32_t i = 0; i < r->n_idents; i++)
		if (off[i] && node_trig(rs, r, r->ident_root[i], uses, 0, v, nv) < 0)
			return -1;
	return 1;
}

/* ---- a second trigger set ----
 *
 * The cheapest trigger set is often a value that most events of the
 * logsource carry: `Company: Microsoft Corporation` next to the image
 * that makes the rule, `ParentImage|endswith: \explorer.exe` next to a
 * command line. Such a rule was evaluated on nearly every event (seven
 * of them on every Windows process creation, a fifth of the time of one).
 * A second set, independent of the first (the other side of an AND, or
 * another identifier the condition needs), must hit too before the rule
 * is queued: rule_list entries say which set a predicate belongs to
 * (TRIG_A, TRIG_B, both), and the matcher queues the rule once both are
 * seen on the event. Rules with one set have entries without set bits and
 * are queued at once, as before. */
#define TRIG_MAX_PARTS 32u

/* The conjuncts of a node (the kids of its ANDs, flattened) that Hyperscan
 * decides, into out. */
static void and_parts(const struct sigma_ruleset *rs, const struct sigma_rule *r,
		      uint32_t idx, const uint32_t *uses, int depth, uint32_t *out,
		      uint32_t *n)
{
	const struct sigma_node *nd = &r->nodes[idx];

	if (depth > 64 || *n >= TRIG_MAX_PARTS)
		return;
	if (nd->type == SN_AND) {
		for (uint32_t i = 0; i < nd->n; i++)
			and_parts(rs, r, r->kids[nd->a + i], uses, depth + 1, out, n);
		return;
	}
	if (nd->type != SN_FALSE && isfinite(node_cost(rs, r, idx, uses, depth)))
		out[(*n)++] = idx;
}

/* Scratch for choosing the second set: candidate sets and marks of the
 * first one's predicates. */
struct trig2 {
	uint8_t *mark;       /* per predicate: 1 in the first set */
	uint32_t n_first;    /* distinct predicates of the first set */
	uint32_t *cand;      /* the candidate being built */
	uint32_t n_cand;
	double best_cost;
	uint32_t *best;      /* the cheapest useful candidate so far */
	uint32_t n_best;
};

/* Keeps the candidate in t->cand when it is useful (neither empty nor a
 * superset of the first set, which any hit of the first one would meet)
 * and cheaper than the best so far. */
static int trig2_offer(struct trig2 *t, double cost)
{
	uint32_t seen = 0, *sw;

	if (t->n_cand == 0 || cost >= t->best_cost)
		return 0;
	for (uint32_t k = 0; k < t->n_cand; k++)
		if (t->mark[t->cand[k]] == 1) {
			t->mark[t->cand[k]] = 2;
			seen++;
		}
	for (uint32_t k = 0; k < t->n_cand; k++)
		if (t->mark[t->cand[k]] == 2)
			t->mark[t->cand[k]] = 1;
	if (seen == t->n_first)
		return 0;
	sw = t->best;
	t->best = t->cand;
	t->cand = sw;
	t->n_best = t->n_cand;
	t->best_cost = cost;
	return 0;
}

/* A second trigger set of the rule (see above) into t->best, given the
 * first (first, n_first); t->n_best 0 when there is none. */
static int rule_triggers2(const struct sigma_ruleset *rs, const struct sigma_rule *r,
			  const uint32_t *uses, const uint32_t *first, uint32_t n_first,
			  struct trig2 *t)
{
	uint8_t off[SIGMA_COND_MAX_NAMES] = { 0 }, one[SIGMA_COND_MAX_NAMES] = { 0 };
	uint32_t parts[TRIG_MAX_PARTS], np;
	int e = 0;

	t->n_best = 0;
	t->best_cost = INFINITY;
	if (n_first == 0 || !trig_idents(rs, r, uses, off))
		return 0;
	t->n_first = 0;
	for (uint32_t k = 0; k < n_first; k++)
		if (!t->mark[first[k]]) {
			t->mark[first[k]] = 1;
			t->n_first++;
		}
	/* The same identifiers, each by another of its conjuncts where it
	 * has one. */
	{
		double cost = 0;
		int other = 0;

		t->n_cand = 0;
		for (uint32_t i = 0; e == 0 && i < r->n_idents; i++) {
			uint32_t pick = r->ident_root[i];
			double pc = INFINITY;

			if (!off[i])
				continue;
			np = 0;
			and_parts(rs, r, r->ident_root[i], uses, 0, parts, &np);
			if (np >= 2) {
				double c0 = node_cost(rs, r, r->ident_root[i], uses, 0);
				int skipped = 0;

				/* The cheapest conjunct but the one the first set took. */
				for (uint32_t k = 0; k < np; k++) {
					double c = node_cost(rs, r, parts[k], uses, 0);

					if (c == c0 && !skipped) {
						skipped = 1;
						continue;
					}
					if (c < pc) {
						pc = c;
						pick = parts[k];
					}
				}
				other |= isfinite(pc);
			}
			if (!isfinite(pc))
				pc = node_cost(rs, r, r->ident_root[i], uses, 0);
			cost += pc;
			e = node_trig(rs, r, pick, uses, 0, &t->cand, &t->n_cand);
		}
		if (e == 0 && other)
			e = trig2_offer(t, cost);
	}
	/* Another identifier that the condition needs, by any conjunct. */
	for (uint32_t j = 0; e == 0 && j < r->n_idents; j++) {
		one[j] = 1;
		if (cond_false_when(r, one)) {
			np = 0;
			and_parts(rs, r, r->ident_root[j], uses, 0, parts, &np);
			for (uint32_t k = 0; e == 0 && k < np; k++) {
				t->n_cand = 0;
				e = node_trig(rs, r, parts[k], uses, 0, &t->cand, &t->n_cand);
				if (e == 0)
					e = trig2_offer(t, node_cost(rs, r, parts[k], uses, 0));
			}
		}
		one[j] = 0;
	}
	for (uint32_t k = 0; k < n_first; k++)
		t->mark[first[k]] = 0;
	return e;
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

/* A plain "ends with" string is compiled without its \z, and its hits are
 * kept only where they end the value (on_hit). Why: Hyperscan matches
 * end-anchored literals apart from its literal matcher; on the corpus's
 * Windows CommandLine the 255 of them cost a fifth of a scan of the
 * 10,806 strings (6,220 instructions a command line against 4,990 without
 * the anchors, for three more hits a value to throw away). */
static int end_in_callback(const struct sigma_pred *p)
{
	size_t n = strlen(p->re);

	return p->lit == SPL_ENDS && n >= 2 && strcmp(p->re + n - 2, "\\z") == 0;
}

/* Which database of a field a pattern goes to (see compile_fdb). */
enum { PART_ALL, PART_LIT, PART_RE };


/* How compile_fdb compiles the patterns of a field: per pattern, the
 * expression when not its own (end_in_callback's stripped one, or its
 * gate), whether it is a plain string, whether it is a gate. */
struct fdb_plan {
	char **expr;
	uint8_t *lit;
	uint8_t *gated;
};

/* One database of the patterns of fb in part; a pattern Hyperscan refuses
 * goes to PCRE2 (in_hs = 0) and the rest compile without it. *db stays
 * NULL when the part is empty. */
static int compile_part(struct sigma_ruleset *rs, struct fbuild *fb, int part,
			const struct fdb_plan *pl, hs_database_t **db, struct buf *err)
{
	const char **exprs = NULL;
	unsigned *flags = NULL, *ids = NULL;
	uint32_t *removed = NULL, n_removed = 0;
	struct hs_child_error ce;
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
			if (!p->in_hs || (part != PART_ALL && pl->lit[i] != (part == PART_LIT)))
				continue;
			exprs[k] = pl->expr[i] ? pl->expr[i] : p->re;
			/* A gate is looked for caselessly: what a match holds
			 * in any case. */
			flags[k] = pl->gated[i] ? HS_FLAG_CASELESS : (unsigned)pred_hs_flags(p);
			ids[k] = i;
			k++;
		}
		if (k == 0)
			break;
		if (first && rs->hs_cache_dir) {
			uint32_t *rm = NULL, nrm = 0;

			sigma_hscache_key(exprs, flags, ids, k, key);
			if (sigma_hscache_load(rs->hs_cache_dir, key, db, &rm, &nrm)) {
				if (nrm && rs->merging) {
					/* Not what the sources' databases hold. */
					hs_free_database(*db);
					*db = NULL;
					free(rm);
					r = M_EINVAL;
					goto out;
				}
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
		/* In the compiler child: Hyperscan's compiler code and heap
		 * stay out of the daemon (core/hs_child.h). */
		if (hs_child_compile(rs->compiler, exprs, flags, ids, k, db, &ce) == 0)
			break;
		if (rs->merging || ce.expression < 0 || (uint32_t)ce.expression >= k) {
			buf_printf(err, "Hyperscan: %s", ce.message);
			r = M_EINVAL;
			goto out;
		}
		/* That pattern goes to PCRE2; try again without it. */
		if (n_removed < n)
			removed[n_removed++] = ids[ce.expression];
		rs->preds[fb->preds[ids[ce.expression]]].in_hs = 0;
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

/* The shortest gate worth a pattern of the strings' database: shorter
 * ones are in most values, and each hit runs the expression. */
#define GATE_MIN 4u

/* Fewer plain strings than this on a field are tested one by one. */
#define DIRECT_MAX_PATTERNS 4u

/* Whether the expression of p, not a plain string for Hyperscan (a
 * regular expression, or an anchored string, which Hyperscan runs apart
 * from its literal matcher), is tested through a gate when its field's
 * database is split (see sigma_re_gate): one of GATE_MIN bytes, and the
 * expression testable on its own (sigma_lit.c or PCRE2). The gate as a
 * Hyperscan expression into *expr (NULL: none). */
static int gate_of(struct sigma_ruleset *rs, struct sigma_pred *p, char **expr)
{
	char g[256];
	size_t n;

	*expr = NULL;
	if (!p->in_hs)
		return 0;
	if (!p->lit) {
		/* At load the expression is compiled here; a merge (another
		 * thread, while matching reads the set) only uses one the
		 * load compiled (sigma_compile_buckets compiles them all). */
		if (!rs->merging && pcre_compile_pred(p) < 0)
			return 0;
		if (!p->pc)
			return 0;
	}
	n = sigma_re_gate(p->re, g, sizeof(g));
	if (n < GATE_MIN)
		return 0;
	*expr = malloc(4 * n + 1);
	if (!*expr)
		return M_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		(*expr)[4 * i] = '\\';
		(*expr)[4 * i + 1] = 'x';
		(*expr)[4 * i + 2] = "0123456789abcdef"[(unsigned char)g[i] >> 4];
		(*expr)[4 * i + 3] = "0123456789abcdef"[(unsigned char)g[i] & 15];
	}
	(*expr)[4 * n] = '\0';
	return 1;
}

static int compile_fdb(struct sigma_ruleset *rs, struct fbuild *fb,
		       struct sigma_fdb *out, struct buf *err)
{
	uint32_t n = fb->n, n_lit = 0, n_re = 0, n_end = 0, n_gated = 0;
	struct fdb_plan pl = {
		.expr = calloc(n ? n : 1, sizeof(char *)),
		.lit = calloc(n ? n : 1, 1),
		.gated = calloc(n ? n : 1, 1),
	};
	int r = pl.expr && pl.lit && pl.gated ? 0 : M_ENOMEM;

	for (uint32_t i = 0; r == 0 && i < n; i++) {
		const struct sigma_pred *p = &rs->preds[fb->preds[i]];

		pl.lit[i] = (uint8_t)re_is_literal(p->re);
		if (p->in_hs)
			(void)(pl.lit[i] ? n_lit++ : n_re++);
		if (end_in_callback(p)) {
			if (!(pl.expr[i] = strndup(p->re, strlen(p->re) - 2)))
				r = M_ENOMEM;
			n_end++;
		}
	}
	if (r == 0 && n_lit >= SPLIT_MIN_LITERALS && n_re > 0) {
		/* Split: the regexes with a gate go to the strings as it. */
		for (uint32_t i = 0; r == 0 && i < n; i++) {
			if (pl.lit[i] || pl.expr[i])
				continue;
			r = gate_of(rs, &rs->preds[fb->preds[i]], &pl.expr[i]);
			if (r > 0) {
				pl.lit[i] = pl.gated[i] = 1;
				n_gated++;
				n_re--;
				r = 0;
			}
		}
		if (r == 0)
			r = compile_part(rs, fb, PART_LIT, &pl, &out->db, err);
		if (r == 0 && n_re)
			r = compile_part(rs, fb, PART_RE, &pl, &out->db2, err);
	} else if (r == 0) {
		r = compile_part(rs, fb, PART_ALL, &pl, &out->db, err);
	}
	if (r == 0 && n_end && !(out->at_end = calloc(n, 1)))
		r = M_ENOMEM;
	if (r == 0 && n_gated) {
		out->gated = pl.gated;
		pl.gated = NULL;
	}
	for (uint32_t i = 0; pl.expr && i < n; i++) {
		if (pl.expr[i] && out->at_end && !(out->gated && out->gated[i]))
			out->at_end[i] = 1;
		free(pl.expr[i]);
	}
	free(pl.expr);
	free(pl.lit);
	free(pl.gated);
	if (r < 0)
		return r;
	/* A database of a few plain strings costs a scan's set-up on every
	 * value (Hyperscan's entry, its state) and cannot be cached
	 * (SIGMA_VC_MIN_PATTERNS): a byte loop per string costs less (a
	 * Windows event's one-string winlog.provider_name, every event). */
	out->direct = n > 0 && n < DIRECT_MAX_PATTERNS;
	for (uint32_t i = 0; out->direct && i < n; i++) {
		const struct sigma_pred *p = &rs->preds[fb->preds[i]];

		out->direct = p->in_hs && p->lit;
	}
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

void sigma_fdb_fini(struct sigma_fdb *f)
{
	hs_free_database(f->db);
	hs_free_database(f->db2);
	free(f->pred_ids);
	free(f->at_end);
	free(f->gated);
	free(f->rule_off);
	free(f->rule_list);
	free(f->rec);
	memset(f, 0, sizeof(*f));
}

int sigma_fdb_recs(const struct sigma_ruleset *rs, struct sigma_fdb *f)
{
	free(f->rec);
	f->rec = calloc(f->n ? f->n : 1, sizeof(*f->rec));
	if (!f->rec)
		return M_ENOMEM;
	for (uint32_t i = 0; i < f->n; i++) {
		uint32_t p = f->pred_ids[i];
		uint32_t g0 = rs->pred_grp_off[p], ng = rs->pred_grp_off[p + 1] - g0;
		uint32_t r0 = f->rule_off[i], nr = f->rule_off[i + 1] - r0;
		struct sigma_hitrec *h = &f->rec[i];

		if (ng > UINT16_MAX || nr > UINT16_MAX)
			return M_ELIMIT;
		h->pred = p;
		h->n_grp = (uint16_t)ng;
		h->grp = ng == 1 ? rs->pred_grp[g0] : g0;
		h->n_rule = (uint16_t)nr;
		h->rule = nr == 1 ? f->rule_list[r0] : r0;
	}
	return 0;
}

/* The most merged databases a set keeps: event signatures are few, but an
 * event's logsource comes from its own fields. */
#define SIGMA_MAX_MERGES 512u

/* Sources in the order of their uids: one set of buckets, one merge. */
static int fdb_uid_cmp(const void *a, const void *b)
{
	uint32_t x = (*(const struct sigma_fdb *const *)a)->uid;
	uint32_t y = (*(const struct sigma_fdb *const *)b)->uid;

	return (x > y) - (x < y);
}

/* The sources' patterns as one build: each keeps its predicate and its
 * rule_list entries (trigger bits and all), so a hit in the merged
 * database does what the same hit in its source would. */
static int merge_build(struct sigma_ruleset *rs, const struct sigma_fdb *const *src,
		       uint32_t n, struct sigma_fdb *out)
{
	struct fbuild fb = { .field = src[0]->field };
	struct buf err;
	uint32_t total = 0, at = 0;
	int r = 0;

	buf_init(&err, 4096);
	for (uint32_t i = 0; i < n; i++)
		total += src[i]->n;
	fb.preds = calloc(total + 1, sizeof(*fb.preds));
	fb.rules = calloc(total + 1, sizeof(*fb.rules));
	fb.n_rules = calloc(total + 1, sizeof(*fb.n_rules));
	if (!fb.preds || !fb.rules || !fb.n_rules)
		r = M_ENOMEM;
	for (uint32_t i = 0; r == 0 && i < n; i++) {
		const struct sigma_fdb *f = src[i];

		for (uint32_t k = 0; r == 0 && k < f->n; k++, at++) {
			uint32_t nr = f->rule_off[k + 1] - f->rule_off[k];

			fb.preds[at] = f->pred_ids[k];
			fb.n_rules[at] = nr;
			fb.n = at + 1;
			if (nr && !(fb.rules[at] = malloc(nr * sizeof(uint32_t))))
				r = M_ENOMEM;
			else if (nr)
				memcpy(fb.rules[at], f->rule_list + f->rule_off[k],
				       nr * sizeof(uint32_t));
		}
	}
	if (r == 0) {
		rs->merging = 1;
		r = compile_fdb(rs, &fb, out, &err);
		rs->merging = 0;
	}
	if (r == 0 && !out->db && !out->db2)
		r = M_EINVAL;   /* nothing of it in Hyperscan: no gain */
	if (r == 0)
		r = sigma_fdb_recs(rs, out);
	if (r < 0)
		sigma_fdb_fini(out);
	fbuild_fini(&fb);
	buf_fini(&err);
	return r;
}

/* The set's merge thread: builds the pending merges one at a time, the
 * list unlocked while it compiles, with one compiler child for as many
 * as are pending together (a signature's first event asks for several;
 * it is closed before the thread waits for more). */
static void *merge_main(void *arg)
{
	struct sigma_ruleset *rs = arg;

	pthread_mutex_lock(&rs->merge_lock);
	for (;;) {
		struct sigma_merge *m;
		struct sigma_fdb fdb = { 0 };
		int ok, stop;

		for (m = rs->merges; m && m->state != MERGE_PENDING; m = m->next)
			;
		if (!m && rs->compiler) {
			pthread_mutex_unlock(&rs->merge_lock);
			hs_child_close(rs->compiler);
			rs->compiler = NULL;
			pthread_mutex_lock(&rs->merge_lock);
			continue;   /* more may have come meanwhile */
		}
		if (!m && rs->merge_stop)
			break;
		if (!m) {
			pthread_cond_wait(&rs->merge_cond, &rs->merge_lock);
			continue;
		}
		stop = rs->merge_stop;
		pthread_mutex_unlock(&rs->merge_lock);
		if (!stop && !rs->compiler)
			rs->compiler = hs_child_open();   /* NULL: in-process */
		ok = !stop && merge_build(rs, m->src, m->n_src, &fdb) == 0;
		pthread_mutex_lock(&rs->merge_lock);
		fdb.uid = m->fdb.uid;
		m->fdb = fdb;
		m->state = ok ? MERGE_OK : MERGE_FAILED;
		rs->n_merge_pending--;
		if (ok)
			rs->n_merges++;
		else
			rs->n_merge_failed++;
		atomic_fetch_add(&rs->merge_gen, 1);
		pthread_cond_broadcast(&rs->merge_cond);   /* sigma_ruleset_merge_wait */
	}
	pthread_mutex_unlock(&rs->merge_lock);
	return NULL;
}

const struct sigma_fdb *sigma_fdb_merged(const struct sigma_ruleset *crs,
					 const struct sigma_fdb *const *src, uint32_t n)
{
	/* The set is shared read-only while matching; the merges are its
	 * only state that changes, under merge_lock. */
	struct sigma_ruleset *rs = (struct sigma_ruleset *)crs;
	const struct sigma_fdb *sorted[SIGMA_LS_MAX_BUCKETS];
	struct sigma_merge *m;
	const struct sigma_fdb *res = NULL;
	uint32_t total;

	if (n < 2 || n > SIGMA_LS_MAX_BUCKETS || rs->force_pcre)
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		if (src[i]->field != src[0]->field)
			return NULL;
	memcpy(sorted, src, n * sizeof(sorted[0]));
	qsort(sorted, n, sizeof(sorted[0]), fdb_uid_cmp);
	pthread_mutex_lock(&rs->merge_lock);
	for (m = rs->merges; m; m = m->next)
		if (m->n_src == n && memcmp(m->src, sorted, n * sizeof(sorted[0])) == 0)
			break;
	total = rs->n_merges + rs->n_merge_failed + rs->n_merge_pending;
	if (!m && total < SIGMA_MAX_MERGES && !rs->merge_stop &&
	    (m = calloc(1, sizeof(*m))) != NULL) {
		if (!(m->src = malloc(n * sizeof(sorted[0])))) {
			free(m);
			m = NULL;
		} else {
			memcpy(m->src, sorted, n * sizeof(sorted[0]));
			m->n_src = n;
			m->state = MERGE_PENDING;
			m->fdb.uid = rs->n_fdbs + total;
			m->next = rs->merges;
			rs->merges = m;
			rs->n_merge_pending++;
			if (!rs->merge_thread_on &&
			    pthread_create(&rs->merge_thread, NULL, merge_main, rs) == 0)
				rs->merge_thread_on = 1;
			if (!rs->merge_thread_on) {   /* no thread: never merged */
				m->state = MERGE_FAILED;
				rs->n_merge_pending--;
				rs->n_merge_failed++;
			}
			pthread_cond_broadcast(&rs->merge_cond);
		}
	}
	if (m && m->state == MERGE_OK)
		res = &m->fdb;
	pthread_mutex_unlock(&rs->merge_lock);
	return res;
}

void sigma_ruleset_merge_wait(const struct sigma_ruleset *crs)
{
	struct sigma_ruleset *rs = (struct sigma_ruleset *)crs;   /* the lock only */

	pthread_mutex_lock(&rs->merge_lock);
	while (rs->merge_thread_on && rs->n_merge_pending)
		pthread_cond_wait(&rs->merge_cond, &rs->merge_lock);
	pthread_mutex_unlock(&rs->merge_lock);
}

void sigma_merges_free(struct sigma_ruleset *rs)
{
	pthread_mutex_lock(&rs->merge_lock);
	rs->merge_stop = 1;
	pthread_cond_broadcast(&rs->merge_cond);
	pthread_mutex_unlock(&rs->merge_lock);
	if (rs->merge_thread_on)
		pthread_join(rs->merge_thread, NULL);
	rs->merge_thread_on = 0;
	while (rs->merges) {
		struct sigma_merge *m = rs->merges;

		rs->merges = m->next;
		sigma_fdb_fini(&m->fdb);
		free(m->src);
		free(m);
	}
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
		xput(bk, sigma_field_hash(fl->name, fl->nlen), f);
		if (fl->alt)
			xput(bk, sigma_field_hash(rs->fields[fl->alt].name,
						 rs->fields[fl->alt].nlen), f);
	}
	return 0;
}

/* Per-bucket scratch while building: where each predicate sits. */
struct bbuild {
	uint32_t *pfb;     /* pred -> fbuild index + 1 (0 = not in this bucket) */
	uint32_t *pslot;   /* pred -> slot in that fbuild */
	const uint32_t *uses;
	struct trig2 t2;
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

/* A trigger entry of the rule on a predicate's slot: set bits (TRIG_A,
 * TRIG_B) added to the rule's entry when the slot already has one. */
static int trig_push(struct fbuild *fbs, struct bbuild *bb, uint32_t pid,
		     uint32_t rule, uint32_t bits)
{
	struct fbuild *fb;
	uint32_t slot, n;

	if (!bb->pfb[pid])
		return 0;
	fb = &fbs[bb->pfb[pid] - 1];
	slot = bb->pslot[pid];
	n = fb->n_rules[slot];
	if (n && fb->rules[slot][n - 1] >> TRIG_SHIFT == rule) {
		fb->rules[slot][n - 1] |= bits;
		return 0;
	}
	return u32_push(&fb->rules[slot], &fb->n_rules[slot], rule << TRIG_SHIFT | bits);
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
		r = rule_triggers2(rs, rule, bb->uses, tmp, n_tmp, &bb->t2);
		for (uint32_t k = 0; k < bb->t2.n_best; k++)
			if (!bb->pfb[bb->t2.best[k]])
				bb->t2.n_best = 0;   /* not scanned here: one set only */
		for (uint32_t k = 0; r == 0 && k < n_tmp; k++)
			r = trig_push(fbs, bb, tmp[k], bk->rules[ri], bb->t2.n_best ? TRIG_A : 0);
		for (uint32_t k = 0; r == 0 && k < bb->t2.n_best; k++)
			r = trig_push(fbs, bb, bb->t2.best[k], bk->rules[ri], TRIG_B);
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
			bk->fdbs[f].uid = rs->n_fdbs++;
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
				uint32_t ri = fdb->rule_list[k] >> TRIG_SHIFT;
				struct sigma_rule *rule = rs->rules[ri];
				int r;

				if (rule->always_eval)
					continue;
				rule->always_eval = 1;
				r = u32_push(&bk->always, &bk->n_always, ri);
				if (r < 0)
					return r;
			}
		}
	}
	return 0;
}

/* Which string predicates Hyperscan takes (in_hs) and their shortest
 * match, asked of Hyperscan's parser in the compiler child
 * (core/hs_child.h), all in one request. */
static int preds_check_hs(struct sigma_ruleset *rs)
{
	const char **exprs = calloc(rs->n_preds + 1, sizeof(*exprs));
	unsigned *flags = calloc(rs->n_preds + 1, sizeof(*flags));
	uint32_t *width = calloc(rs->n_preds + 1, sizeof(*width));
	uint32_t k = 0;
	int r = 0;

	if (!exprs || !flags || !width) {
		r = M_ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < rs->n_preds; i++) {
		const struct sigma_pred *p = &rs->preds[i];

		if (p->kind == SPK_STR && !rs->force_pcre) {
			exprs[k] = p->re;
			flags[k++] = (unsigned)pred_hs_flags(p);
		}
	}
	r = hs_child_min_widths(rs->compiler, exprs, flags, k, width);
	k = 0;
	for (uint32_t i = 0; r == 0 && i < rs->n_preds; i++) {
		struct sigma_pred *p = &rs->preds[i];

		p->in_hs = 0;
		if (p->kind != SPK_STR || rs->force_pcre)
			continue;
		if (width[k] != UINT32_MAX) {
			/* Patterns that can match the empty string match every
			 * present value; Hyperscan refuses them without
			 * HS_FLAG_ALLOWEMPTY. */
			p->in_hs = width[k] > 0;
			p->min_width = width[k] > 0xffff ? 0xffff : (uint16_t)width[k];
		}
		k++;
	}
out:
	free(exprs);
	free(flags);
	free(width);
	return r;
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

static int compile_buckets(struct sigma_ruleset *rs, struct buf *err);

/* Everything Hyperscan compiles for the rule set goes to one compiler
 * child (core/hs_child.h), open for this call only. */
int sigma_compile_buckets(struct sigma_ruleset *rs, struct buf *err)
{
	int r;

	rs->compiler = rs->force_pcre ? NULL : hs_child_open();
	r = compile_buckets(rs, err);
	hs_child_close(rs->compiler);
	rs->compiler = NULL;
	return r;
}

static int compile_buckets(struct sigma_ruleset *rs, struct buf *err)
{
	int r = 0;

	if ((r = preds_check_hs(rs)) < 0)
		return r;
	for (uint32_t i = 0; i < rs->n_preds; i++)
		if (!rs->force_pcre && (r = sigma_lit_prepare(&rs->preds[i])) < 0)
			return r;
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

		memset(&bb, 0, sizeof(bb));
		bb.pfb = calloc(rs->n_preds + 1, sizeof(uint32_t));
		bb.pslot = calloc(rs->n_preds + 1, sizeof(uint32_t));
		bb.t2.mark = calloc(rs->n_preds + 1, 1);
		bb.uses = uses;
		if (!uses || !bb.pfb || !bb.pslot || !bb.t2.mark)
			r = M_ENOMEM;
		if (rs->n_rules > SIGMA_MAX_RULES)
			r = M_ELIMIT;
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
		free(bb.t2.mark);
		free(bb.t2.cand);
		free(bb.t2.best);
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
	if ((r = build_groups(rs)) < 0)
		return r;
	for (uint32_t i = 0; r == 0 && i < rs->n_buckets; i++)
		for (uint32_t f = 0; r == 0 && f < rs->buckets[i].n_fdbs; f++)
			r = sigma_fdb_recs(rs, &rs->buckets[i].fdbs[f]);
	return r;
}

