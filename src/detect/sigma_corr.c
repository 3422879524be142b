/*
 * Sigma correlation rules. Parsing and resolution run at load (rule
 * references by id or name, to rules or to other correlations, group-by
 * fields and aliases mapped through each referenced rule's field mapping);
 * the state is per group key in a table per correlation, each group
 * holding at most a bounded number of timestamps or values; a group goes
 * when its window has passed, or, when the table is full, the least
 * recently seen eighth of them goes (evict_oldest). A correlation that
 * fires counts as a match of its own rule for the correlations that refer
 * to it (chains, as in the specification's "failed logins followed by a
 * successful login"). Why event time: a correlation over replayed or late
 * logs must count what happened within the timespan, not when it arrived.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "detect/sigma_corr.h"
#include "detect/sigma_int.h"

#define CORR_MAX_ENTRIES 4096u    /* timestamps/values kept per group */
#define CORR_MAX_KEY 1024u
#define CORR_MAX_CHAIN 8          /* correlations over correlations */
#define CORR_DEFAULT_PERCENTILE 95.0   /* pySigma's, when none is given */

enum corr_type { CT_EVENT_COUNT = 1, CT_VALUE_COUNT, CT_VALUE_SUM, CT_VALUE_AVG,
		 CT_VALUE_PERCENTILE, CT_TEMPORAL, CT_TEMPORAL_ORDERED };

struct sigma_corr {
	uint32_t rule;              /* the correlation's rule index */
	enum corr_type type;
	int64_t span_us;
	int generate;
	/* Condition: lower bound (gt/gte/eq), optional upper bound (lt/lte),
	 * optional excluded value (neq). */
	int has_lo, has_hi, lo_strict, hi_strict, has_ne;
	double lo, hi, ne;
	double percentile;          /* value_percentile: which one, 0..100 */
	int has_cond;
	char **refs;                /* as written */
	uint32_t n_refs;
	uint32_t refs_idx[SIGMA_CORR_MAX_RULES];
	char **group_by;            /* as written */
	uint32_t n_group_by;
	char **value_fields;        /* condition.field: value_* types; value_count
				     * may name several, counted together */
	uint32_t n_value_fields;
	/* Aliases: per group-by name and ref, the field to read. */
	char **alias_name;
	char ***alias_field;        /* [alias][ref] or NULL */
	uint32_t n_alias;
	/* Resolved per ref: group-by field ids and the value fields. */
	uint32_t gb[SIGMA_CORR_MAX_RULES][SIGMA_CORR_MAX_GROUPBY];
	uint32_t vf[SIGMA_CORR_MAX_RULES][SIGMA_CORR_MAX_GROUPBY];
	int ecs;                    /* taxonomy: ecs (field names as written) */
	char *disabled;             /* why it cannot run, or NULL */
};

static void free_list(char **v, uint32_t n)
{
	for (uint32_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

void sigma_corr_free(struct sigma_corr *c)
{
	if (!c)
		return;
	free_list(c->refs, c->n_refs);
	free_list(c->group_by, c->n_group_by);
	for (uint32_t i = 0; i < c->n_alias; i++) {
		free(c->alias_name[i]);
		for (uint32_t k = 0; c->alias_field[i] && k < c->n_refs; k++)
			free(c->alias_field[i][k]);
		free(c->alias_field[i]);
	}
	free(c->alias_name);
	free(c->alias_field);
	free_list(c->value_fields, c->n_value_fields);
	free(c->disabled);
	free(c);
}

static int parse_span(const char *s, int64_t *out)
{
	char *end;
	long long v;
	int64_t mult;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || errno || v <= 0)
		return M_EINVAL;
	switch (*end) {
	case 's': mult = 1; break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	case 'w': mult = 604800; break;
	case 'M': mult = 2592000; break;
	case 'y': mult = 31536000; break;
	default: return M_EINVAL;
	}
	if (end[1] || v > 10LL * 365 * 86400 / mult)
		return M_EINVAL;
	*out = (int64_t)v * mult * 1000000;
	return 0;
}

static int str_list(const struct conf_node *n, char ***out, uint32_t *count,
		    uint32_t max)
{
	uint32_t k = 0;

	if (conf_node_kind(n) == CONF_NODE_SCALAR) {
		if (!conf_node_value(n) || conf_node_is_null(n))
			return M_EINVAL;
		*out = calloc(1, sizeof(char *));
		if (!*out || !((*out)[0] = strdup(conf_node_value(n))))
			return M_ENOMEM;
		*count = 1;
		return 0;
	}
	if (conf_node_kind(n) != CONF_NODE_SEQ)
		return M_EINVAL;
	for (const struct conf_node *x = conf_node_child(n); x; x = conf_node_next(x))
		k++;
	if (k == 0 || k > max)
		return M_ELIMIT;
	*out = calloc(k, sizeof(char *));
	if (!*out)
		return M_ENOMEM;
	*count = 0;
	for (const struct conf_node *x = conf_node_child(n); x; x = conf_node_next(x)) {
		if (conf_node_kind(x) != CONF_NODE_SCALAR || !conf_node_value(x))
			return M_EINVAL;
		(*out)[*count] = strdup(conf_node_value(x));
		if (!(*out)[*count])
			return M_ENOMEM;
		(*count)++;
	}
	return 0;
}

/* A number of the condition (gt: 5, lte: 1.5, ...). */
static int cond_num(const struct conf_node *k, const char *v, double *x,
		    struct buf *why)
{
	char *end;

	errno = 0;
	*x = v ? strtod(v, &end) : 0;
	if (!v || end == v || *end || errno || !isfinite(*x)) {
		buf_printf(why, "%d:%d: the condition needs a number",
			   conf_node_line(k), conf_node_col(k));
		return M_EINVAL;
	}
	return 0;
}

/* condition: a map of gt/gte/lt/lte/eq/neq (several make a range), field
 * (one name, or for value_count a list counted together) and, for
 * value_percentile, percentile (pySigma's, 0 to 100). */
static int parse_cond(struct sigma_corr *c, const struct conf_node *cond,
		      struct buf *why)
{
	if (conf_node_kind(cond) != CONF_NODE_MAP) {
		buf_printf(why, "%d:%d: %s", conf_node_line(cond), conf_node_col(cond),
			   conf_node_kind(cond) == CONF_NODE_SCALAR ?
			   "a correlation condition written as an expression" :
			   "the correlation condition must be a mapping");
		return conf_node_kind(cond) == CONF_NODE_SCALAR ? M_EUNSUPP : M_EINVAL;
	}
	c->has_cond = 1;
	for (const struct conf_node *k = conf_node_child(cond); k && conf_node_next(k);
	     k = conf_node_next(conf_node_next(k))) {
		const struct conf_node *vn = conf_node_next(k);
		const char *key = conf_node_value(k);
		const char *v = conf_node_value(vn);
		double x;

		if (!key)
			continue;
		if (strcmp(key, "field") == 0) {
			free_list(c->value_fields, c->n_value_fields);
			c->value_fields = NULL;
			c->n_value_fields = 0;
			if (str_list(vn, &c->value_fields, &c->n_value_fields,
				     SIGMA_CORR_MAX_GROUPBY) < 0 || !c->value_fields[0]) {
				buf_printf(why, "%d:%d: condition.field must name 1 to %u fields",
					   conf_node_line(k), conf_node_col(k),
					   SIGMA_CORR_MAX_GROUPBY);
				return M_EINVAL;
			}
			continue;
		}
		if (cond_num(k, v, &x, why) < 0)
			return M_EINVAL;
		if (strcmp(key, "gte") == 0 || strcmp(key, "gt") == 0) {
			c->has_lo = 1;
			c->lo = x;
			c->lo_strict = key[2] == '\0';
		} else if (strcmp(key, "lte") == 0 || strcmp(key, "lt") == 0) {
			c->has_hi = 1;
			c->hi = x;
			c->hi_strict = key[2] == '\0';
		} else if (strcmp(key, "eq") == 0) {
			c->has_lo = c->has_hi = 1;
			c->lo = c->hi = x;
			c->lo_strict = c->hi_strict = 0;
		} else if (strcmp(key, "neq") == 0) {
			c->has_ne = 1;
			c->ne = x;
		} else if (strcmp(key, "percentile") == 0) {
			if (c->type != CT_VALUE_PERCENTILE || x < 0 || x > 100) {
				buf_printf(why, "%d:%d: condition.percentile (0 to 100) belongs "
					   "to value_percentile", conf_node_line(k),
					   conf_node_col(k));
				return M_EINVAL;
			}
			c->percentile = x;
		} else {
			buf_printf(why, "%d:%d: condition operator %s", conf_node_line(k),
				   conf_node_col(k), key);
			return M_EUNSUPP;
		}
	}
	if (!c->has_lo && !c->has_hi && !c->has_ne) {
		buf_printf(why, "%d:%d: the condition has no gt, gte, lt, lte, eq or neq",
			   conf_node_line(cond), conf_node_col(cond));
		return M_EINVAL;
	}
	return 0;
}

static int cond_holds(const struct sigma_corr *c, double x)
{
	if (c->has_ne && x == c->ne)
		return 0;
	if (c->has_lo && (c->lo_strict ? !(x > c->lo) : !(x >= c->lo)))
		return 0;
	if (c->has_hi && (c->hi_strict ? !(x < c->hi) : !(x <= c->hi)))
		return 0;
	return 1;
}

static const struct {
	const char *name;
	enum corr_type type;
} corr_types[] = {
	{ "event_count", CT_EVENT_COUNT },
	{ "value_count", CT_VALUE_COUNT },
	{ "value_sum", CT_VALUE_SUM },
	{ "value_avg", CT_VALUE_AVG },
	{ "value_percentile", CT_VALUE_PERCENTILE },
	{ "temporal", CT_TEMPORAL },
	{ "temporal_ordered", CT_TEMPORAL_ORDERED },
};

/* What each type needs of its condition, once parsed. Why counts need a
 * lower bound: events arrive one by one and an alert is raised when one
 * completes the condition; "fewer than N in the window" could only be
 * decided when the window closes, which this engine does not do. */
static int check_cond(struct sigma_corr *c, const char *type,
		      const struct conf_node *corr, struct buf *why)
{
	int line = conf_node_line(corr), col = conf_node_col(corr);

	switch (c->type) {
	case CT_EVENT_COUNT:
	case CT_VALUE_COUNT:
		if (!c->has_cond) {
			buf_printf(why, "%d:%d: a %s correlation needs a gt, gte or eq "
				   "condition", line, col, type);
			return M_EINVAL;
		}
		if (!c->has_lo) {
			buf_printf(why, "%d:%d: a %s correlation needs a gt, gte or eq "
				   "condition (only a lower bound can fire as events arrive)",
				   line, col, type);
			return M_EUNSUPP;
		}
		break;
	case CT_VALUE_SUM:
	case CT_VALUE_AVG:
	case CT_VALUE_PERCENTILE:
		if (!c->has_cond) {
			buf_printf(why, "%d:%d: a %s correlation needs a condition", line,
				   col, type);
			return M_EINVAL;
		}
		break;
	case CT_TEMPORAL:
	case CT_TEMPORAL_ORDERED:
		if (c->n_refs < 2) {
			buf_printf(why, "%d:%d: a temporal correlation needs two rules or more",
				   line, col);
			return M_EINVAL;
		}
		if (c->n_value_fields) {
			buf_printf(why, "%d:%d: a temporal correlation counts rules, its "
				   "condition names no field", line, col);
			return M_EINVAL;
		}
		if (!c->has_cond) {
			/* All of the rules (the specification's default). */
			c->has_lo = 1;
			c->lo = c->n_refs;
			return 0;
		}
		if (!c->has_lo) {
			buf_printf(why, "%d:%d: a temporal condition needs a gt, gte or eq "
				   "bound on the number of rules", line, col);
			return M_EUNSUPP;
		}
		if (c->type == CT_TEMPORAL_ORDERED &&
		    (!cond_holds(c, c->n_refs) || cond_holds(c, c->n_refs - 1))) {
			buf_printf(why, "%d:%d: a temporal_ordered condition other than all "
				   "of its rules", line, col);
			return M_EUNSUPP;
		}
		if (!cond_holds(c, c->n_refs)) {
			buf_printf(why, "%d:%d: the condition can never hold with %u rules",
				   line, col, c->n_refs);
			return M_EINVAL;
		}
		return 0;
	}
	if (c->type != CT_EVENT_COUNT && !c->n_value_fields) {
		buf_printf(why, "%d:%d: a %s correlation needs condition.field", line, col,
			   type);
		return M_EINVAL;
	}
	if (c->type == CT_EVENT_COUNT && c->n_value_fields) {
		buf_printf(why, "%d:%d: an event_count correlation counts events, its "
			   "condition names no field", line, col);
		return M_EINVAL;
	}
	if (c->type != CT_VALUE_COUNT && c->n_value_fields > 1) {
		buf_printf(why, "%d:%d: a %s correlation takes one condition.field", line,
			   col, type);
		return M_EINVAL;
	}
	return 0;
}

int sigma_corr_parse(struct sigma_builder *b, struct sigma_rule *r,
		     const struct conf_node *corr, struct buf *why)
{
	struct sigma_ruleset *rs = b->rs;
	struct sigma_corr *c, **nc;
	const char *type, *span;
	const struct conf_node *cond, *gen, *aliases;
	int rc;

	if (conf_node_kind(corr) != CONF_NODE_MAP) {
		buf_printf(why, "%d:%d: correlation must be a mapping",
			   conf_node_line(corr), conf_node_col(corr));
		return M_EINVAL;
	}
	type = conf_node_value(conf_map_get(corr, "type"));
	span = conf_node_value(conf_map_get(corr, "timespan"));
	cond = conf_map_get(corr, "condition");
	gen = conf_map_get(corr, "generate");
	aliases = conf_map_get(corr, "aliases");
	c = calloc(1, sizeof(*c));
	if (!c)
		return M_ENOMEM;
	c->ecs = r->ecs;
	c->percentile = CORR_DEFAULT_PERCENTILE;
	if (!type) {
		buf_printf(why, "%d:%d: correlation has no type", conf_node_line(corr),
			   conf_node_col(corr));
		rc = M_EINVAL;
		goto fail;
	}
	for (size_t i = 0; i < sizeof(corr_types) / sizeof(corr_types[0]); i++)
		if (!strcmp(type, corr_types[i].name))
			c->type = corr_types[i].type;
	if (!c->type) {
		buf_printf(why, "%d:%d: correlation type %s", conf_node_line(corr),
			   conf_node_col(corr), type);
		rc = M_EUNSUPP;
		goto fail;
	}
	if (!span || parse_span(span, &c->span_us) < 0) {
		buf_printf(why, "%d:%d: correlation needs a timespan such as 5m or 1h",
			   conf_node_line(corr), conf_node_col(corr));
		rc = M_EINVAL;
		goto fail;
	}
	rc = str_list(conf_map_get(corr, "rules"), &c->refs, &c->n_refs,
		      SIGMA_CORR_MAX_RULES);
	if (rc < 0) {
		buf_printf(why, "%d:%d: correlation needs `rules:` (1 to %u rule ids or names)",
			   conf_node_line(corr), conf_node_col(corr), SIGMA_CORR_MAX_RULES);
		goto fail;
	}
	if (conf_map_get(corr, "group-by")) {
		rc = str_list(conf_map_get(corr, "group-by"), &c->group_by, &c->n_group_by,
			      SIGMA_CORR_MAX_GROUPBY);
		if (rc < 0) {
			buf_printf(why, "%d:%d: group-by must list 1 to %u fields",
				   conf_node_line(corr), conf_node_col(corr),
				   SIGMA_CORR_MAX_GROUPBY);
			goto fail;
		}
	}
	c->generate = 0;
	if (gen && conf_node_value(gen))
		c->generate = !strcasecmp(conf_node_value(gen), "true");
	if (cond) {
		rc = parse_cond(c, cond, why);
		if (rc < 0)
			goto fail;
	}
	rc = check_cond(c, type, corr, why);
	if (rc < 0)
		goto fail;
	if (aliases && conf_node_kind(aliases) == CONF_NODE_MAP) {
		for (const struct conf_node *k = conf_node_child(aliases); k && conf_node_next(k);
		     k = conf_node_next(conf_node_next(k))) {
			const struct conf_node *m = conf_node_next(k);
			char **nn, ***nf;

			if (c->n_alias >= SIGMA_CORR_MAX_GROUPBY)
				break;
			nn = realloc(c->alias_name, (c->n_alias + 1) * sizeof(*nn));
			if (!nn)
				goto nomem;
			c->alias_name = nn;
			nf = realloc(c->alias_field, (c->n_alias + 1) * sizeof(*nf));
			if (!nf)
				goto nomem;
			c->alias_field = nf;
			nn[c->n_alias] = strdup(conf_node_value(k) ? conf_node_value(k) : "");
			nf[c->n_alias] = calloc(c->n_refs, sizeof(char *));
			c->n_alias++;
			if (!nn[c->n_alias - 1] || !nf[c->n_alias - 1])
				goto nomem;
			for (uint32_t i = 0; i < c->n_refs; i++) {
				const char *f = conf_node_value(conf_map_get(m, c->refs[i]));
				if (f && !(nf[c->n_alias - 1][i] = strdup(f)))
					goto nomem;
			}
		}
	}
	nc = realloc(rs->corrs, (rs->n_corrs + 1) * sizeof(*nc));
	if (!nc)
		goto nomem;
	rs->corrs = nc;
	c->rule = UINT32_MAX;   /* set at resolve: r's index */
	nc[rs->n_corrs++] = c;
	r->corr = rs->n_corrs - 1;
	return 0;
nomem:
	rc = M_ENOMEM;
fail:
	sigma_corr_free(c);
	return rc;
}

static void disable(struct sigma_corr *c, const char *fmt, const char *arg)
{
	char tmp[512];

	if (c->disabled)
		return;
	snprintf(tmp, sizeof(tmp), fmt, arg);
	c->disabled = strdup(tmp);
}

/* The rule whose field mapping names a reference's fields: the rule
 * itself, or for a correlation the first rule at the bottom of its chain. */
static const struct sigma_rule *mapping_rule(const struct sigma_ruleset *rs,
					     uint32_t idx)
{
	const struct sigma_rule *r = rs->rules[idx];

	for (int d = 0; r->info.is_correlation && d <= CORR_MAX_CHAIN; d++) {
		const struct sigma_corr *c = rs->corrs[r->corr];

		if (c->disabled || c->refs_idx[0] == UINT32_MAX)
			break;
		r = rs->rules[c->refs_idx[0]];
	}
	return r;
}

/* Height of correlation ci's chain (1: it refers to rules only), or -1 for
 * a loop or a chain past CORR_MAX_CHAIN. memo: 0 unknown, -2 being
 * walked, else the answer. */
static int chain_height(const struct sigma_ruleset *rs, uint32_t ci, int *memo,
			int depth)
{
	const struct sigma_corr *c = rs->corrs[ci];
	int h = 1;

	if (memo[ci] == -2)
		return -1;
	if (memo[ci] != 0)
		return memo[ci];
	if (depth > CORR_MAX_CHAIN)
		return -1;
	memo[ci] = -2;
	for (uint32_t k = 0; k < c->n_refs && h > 0; k++) {
		const struct sigma_rule *r;
		int x;

		if (c->refs_idx[k] == UINT32_MAX)
			continue;
		r = rs->rules[c->refs_idx[k]];
		if (!r->info.is_correlation)
			continue;
		x = chain_height(rs, r->corr, memo, depth + 1);
		h = x < 0 || x + 1 > CORR_MAX_CHAIN ? -1 : (x + 1 > h ? x + 1 : h);
	}
	memo[ci] = h;
	return h;
}

/* Every reference by id or name; the names of those not loaded. */
static void resolve_refs(struct sigma_ruleset *rs, struct sigma_corr *c)
{
	char missing[400];
	size_t n = 0;
	uint32_t n_missing = 0;

	missing[0] = '\0';
	for (uint32_t k = 0; k < c->n_refs; k++) {
		uint32_t found = UINT32_MAX;

		for (uint32_t i = 0; i < rs->n_rules; i++) {
			const struct sigma_rule_info *in = &rs->rules[i]->info;
			if (strcmp(in->id, c->refs[k]) == 0 ||
			    (in->name && strcmp(in->name, c->refs[k]) == 0))
				found = i;
		}
		c->refs_idx[k] = found;
		if (found != UINT32_MAX)
			continue;
		n_missing++;
		if (n < sizeof(missing) - 1) {
			int w = snprintf(missing + n, sizeof(missing) - n, "%s%s",
					 n ? ", " : "", c->refs[k]);
			n += w > 0 ? (size_t)w : 0;
		}
	}
	if (n_missing == 1)
		disable(c, "refers to rule %s, which is not loaded", missing);
	else if (n_missing > 1)
		disable(c, "refers to rules %s, which are not loaded", missing);
}

int sigma_corr_resolve(struct sigma_builder *b, struct buf *err)
{
	struct sigma_ruleset *rs = b->rs;
	int *memo, changed;

	(void)err;
	for (uint32_t i = 0; i < rs->n_rules; i++) {
		struct sigma_rule *r = rs->rules[i];
		if (r->info.is_correlation)
			rs->corrs[r->corr]->rule = i;
	}
	for (uint32_t ci = 0; ci < rs->n_corrs; ci++)
		resolve_refs(rs, rs->corrs[ci]);
	/* Chains: no loops, bounded depth. */
	memo = calloc(rs->n_corrs + 1, sizeof(*memo));
	if (!memo)
		return M_ENOMEM;
	for (uint32_t ci = 0; ci < rs->n_corrs; ci++) {
		struct sigma_corr *c = rs->corrs[ci];

		if (!c->disabled && chain_height(rs, ci, memo, 0) < 0)
			disable(c, "%s", "is part of a chain of correlations that loops or "
				"is more than 8 deep");
	}
	free(memo);
	/* A correlation over one that cannot run cannot run either. */
	do {
		changed = 0;
		for (uint32_t ci = 0; ci < rs->n_corrs; ci++) {
			struct sigma_corr *c = rs->corrs[ci];

			for (uint32_t k = 0; k < c->n_refs && !c->disabled; k++) {
				const struct sigma_rule *r = rs->rules[c->refs_idx[k]];

				if (r->info.is_correlation && rs->corrs[r->corr]->disabled) {
					disable(c, "refers to correlation %s, which cannot run",
						c->refs[k]);
					changed = 1;
				}
			}
		}
	} while (changed);
	for (uint32_t ci = 0; ci < rs->n_corrs; ci++) {
		struct sigma_corr *c = rs->corrs[ci];

		if (c->disabled)
			continue;
		for (uint32_t k = 0; k < c->n_refs; k++) {
			const struct sigma_rule *mr = mapping_rule(rs, c->refs_idx[k]);

			if (!c->generate)
				rs->rules[c->refs_idx[k]]->silent = 1;
			for (uint32_t g = 0; g < c->n_group_by; g++) {
				const char *name = c->group_by[g];
				char tmp[512];

				for (uint32_t a = 0; a < c->n_alias; a++)
					if (!strcmp(c->alias_name[a], name) && c->alias_field[a][k])
						name = c->alias_field[a][k];
				if (!c->ecs)
					name = sigma_map_field(b, mr, name, tmp, sizeof(tmp));
				if (sigma_field_intern(b, name, &c->gb[k][g]) < 0)
					return M_ENOMEM;
			}
			for (uint32_t v = 0; v < c->n_value_fields; v++) {
				const char *name = c->value_fields[v];
				char tmp[512];

				if (!c->ecs)
					name = sigma_map_field(b, mr, name, tmp, sizeof(tmp));
				if (sigma_field_intern(b, name, &c->vf[k][v]) < 0)
					return M_ENOMEM;
			}
		}
	}
	/* A rule referenced by a generating correlation alerts too. */
	for (uint32_t ci = 0; ci < rs->n_corrs; ci++) {
		struct sigma_corr *c = rs->corrs[ci];
		for (uint32_t k = 0; c->generate && !c->disabled && k < c->n_refs; k++)
			rs->rules[c->refs_idx[k]]->silent = 0;
	}
	return 0;
}

int sigma_rule_generates(const struct sigma_ruleset *rs, uint32_t i)
{
	return i < rs->n_rules && !rs->rules[i]->silent;
}

const char *sigma_corr_disabled(const struct sigma_ruleset *rs, uint32_t rule)
{
	const struct sigma_rule *r;

	if (rule >= rs->n_rules || !rs->rules[rule]->info.is_correlation)
		return NULL;
	r = rs->rules[rule];
	return rs->corrs[r->corr]->disabled;
}

/* ---- state ---- */

struct entry {
	int64_t ts;
	uint64_t h;     /* value hash (value_count) */
	double v;       /* value (sum/avg) */
};

struct group {
	char *key;
	uint64_t hash;
	int64_t last;
	uint64_t touch;        /* the table's tick when last seen */
	struct entry *e;       /* ring, oldest first after compaction */
	uint32_t n, cap;
	int64_t step[SIGMA_CORR_MAX_RULES];   /* temporal: per ref */
};

struct corr_table {
	pthread_mutex_t lock;
	struct group **slots;   /* open addressing */
	uint32_t mask, used;
	uint32_t max;           /* groups held at most (st->max_groups) */
	uint64_t tick;          /* group lookups, for group.touch */
	uint64_t *evicted;      /* the state's counter */
};

struct sigma_corr_state {
	const struct sigma_ruleset *rs;
	struct corr_table *t;   /* per correlation */
	uint64_t evicted;       /* groups evicted while their window was open */
	/* rule index -> correlations that refer to it (CSR) */
	uint32_t *off, *list;
};

struct sigma_corr_state *sigma_corr_state_new(const struct sigma_ruleset *rs)
{
	struct sigma_corr_state *st = calloc(1, sizeof(*st));
	uint32_t total = 0;

	if (!st)
		return NULL;
	st->rs = rs;
	st->t = calloc(rs->n_corrs + 1, sizeof(*st->t));
	st->off = calloc(rs->n_rules + 1, sizeof(*st->off));
	if (!st->t || !st->off)
		goto fail;
	for (uint32_t c = 0; c < rs->n_corrs; c++) {
		pthread_mutex_init(&st->t[c].lock, NULL);
		st->t[c].max = SIGMA_CORR_MAX_GROUPS;
		st->t[c].evicted = &st->evicted;
		if (rs->corrs[c]->disabled)
			continue;
		for (uint32_t k = 0; k < rs->corrs[c]->n_refs; k++) {
			st->off[rs->corrs[c]->refs_idx[k] + 1]++;
			total++;
		}
	}
	for (uint32_t i = 0; i < rs->n_rules; i++)
		st->off[i + 1] += st->off[i];
	st->list = calloc(total + 1, sizeof(*st->list));
	if (!st->list)
		goto fail;
	{
		uint32_t *fill = calloc(rs->n_rules + 1, sizeof(*fill));
		if (!fill)
			goto fail;
		for (uint32_t c = 0; c < rs->n_corrs; c++) {
			if (rs->corrs[c]->disabled)
				continue;
			for (uint32_t k = 0; k < rs->corrs[c]->n_refs; k++) {
				uint32_t r = rs->corrs[c]->refs_idx[k];
				/* A rule listed twice in one correlation counts once. */
				int dup = 0;
				for (uint32_t j = st->off[r]; j < st->off[r] + fill[r]; j++)
					if (st->list[j] == c)
						dup = 1;
				if (!dup)
					st->list[st->off[r] + fill[r]++] = c;
				else
					st->list[st->off[r] + fill[r]++] = UINT32_MAX;
			}
		}
		free(fill);
	}
	return st;
fail:
	sigma_corr_state_free(st);
	return NULL;
}

static void group_free(struct group *g)
{
	if (!g)
		return;
	free(g->key);
	free(g->e);
	free(g);
}

void sigma_corr_state_free(struct sigma_corr_state *st)
{
	if (!st)
		return;
	for (uint32_t c = 0; st->t && c < st->rs->n_corrs; c++) {
		struct corr_table *t = &st->t[c];
		for (uint32_t i = 0; t->slots && i <= t->mask; i++)
			group_free(t->slots[i]);
		free(t->slots);
		pthread_mutex_destroy(&t->lock);
	}
	free(st->t);
	free(st->off);
	free(st->list);
	free(st);
}

size_t sigma_corr_groups(struct sigma_corr_state *st)
{
	size_t n = 0;

	for (uint32_t c = 0; c < st->rs->n_corrs; c++) {
		pthread_mutex_lock(&st->t[c].lock);
		n += st->t[c].used;
		pthread_mutex_unlock(&st->t[c].lock);
	}
	return n;
}

void sigma_corr_set_max_groups(struct sigma_corr_state *st, uint32_t max)
{
	for (uint32_t c = 0; c < st->rs->n_corrs; c++) {
		pthread_mutex_lock(&st->t[c].lock);
		st->t[c].max = max ? max : 1;
		pthread_mutex_unlock(&st->t[c].lock);
	}
}

uint64_t sigma_corr_evicted(struct sigma_corr_state *st)
{
	return __atomic_load_n(&st->evicted, __ATOMIC_RELAXED);
}

/* When a group was last seen: its newest event's time, then (events of
 * one second are common) the order of the lookups. */
struct seen {
	int64_t last;
	uint64_t touch;
};

static int seen_le(struct seen a, struct seen b)
{
	return a.last < b.last || (a.last == b.last && a.touch <= b.touch);
}

/* Removes the groups last seen at or before `upto` (rebuilding the table);
 * 1 when none could be removed for want of memory. */
static int sweep_upto(struct corr_table *t, struct seen upto)
{
	struct group **old = t->slots;
	uint32_t cap = t->mask + 1;
	struct group **ns = calloc(cap, sizeof(*ns));

	if (!ns)
		return 1;
	t->used = 0;
	for (uint32_t i = 0; i < cap; i++) {
		struct group *g = old[i];
		uint32_t j;

		if (!g)
			continue;
		if (seen_le((struct seen){ g->last, g->touch }, upto)) {
			group_free(g);
			continue;
		}
		for (j = (uint32_t)g->hash & t->mask; ns[j]; j = (j + 1) & t->mask)
			;
		ns[j] = g;
		t->used++;
	}
	free(old);
	t->slots = ns;
	return 0;
}

/* Removes groups whose window has passed. */
static void sweep(struct corr_table *t, int64_t now, int64_t span)
{
	(void)sweep_upto(t, (struct seen){ now - span - 1, UINT64_MAX });
}

static int cmp_seen(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;

	if (x->last != y->last)
		return (x->last > y->last) - (x->last < y->last);
	return (x->touch > y->touch) - (x->touch < y->touch);
}

/* The table holds its most groups and none has expired: the least recently
 * seen eighth goes. Why: leaving new groups untracked instead would let a
 * flood of one-off keys (spoofed sources, random user names) blind the
 * correlation to the keys that matter from then on, and sweeping on every
 * insertion would cost a pass over the table per event; one pass and a
 * sort here pay for the next eighth of insertions. */
static void evict_oldest(struct corr_table *t)
{
	uint32_t n = 0, k = t->used / 8 + 1;
	struct seen *v = malloc((size_t)t->used * sizeof(*v));

	if (!v)
		return;
	for (uint32_t i = 0; i <= t->mask; i++)
		if (t->slots[i] && n < t->used)
			v[n++] = (struct seen){ t->slots[i]->last, t->slots[i]->touch };
	if (k > n)
		k = n;
	qsort(v, n, sizeof(*v), cmp_seen);
	if (k && sweep_upto(t, v[k - 1]) == 0)
		__atomic_fetch_add(t->evicted, k, __ATOMIC_RELAXED);
	free(v);
}

static struct group *group_get(struct corr_table *t, const char *key, size_t klen,
			       int64_t now, int64_t span)
{
	uint64_t h = sigma_name_hash(key, klen);
	uint32_t j;
	struct group *g;

	if (!t->slots) {
		t->slots = calloc(1024, sizeof(*t->slots));
		if (!t->slots)
			return NULL;
		t->mask = 1023;
	}
	t->tick++;
	for (j = (uint32_t)h & t->mask; t->slots[j]; j = (j + 1) & t->mask)
		if (t->slots[j]->hash == h && strcmp(t->slots[j]->key, key) == 0) {
			t->slots[j]->touch = t->tick;
			return t->slots[j];
		}
	if (t->used >= t->max || t->used * 2 >= t->mask) {
		sweep(t, now, span);
		if (t->used >= t->max)
			evict_oldest(t);
		if (t->used >= t->max)
			return NULL;   /* no memory to evict with: not tracked */
		if (t->used * 2 >= t->mask) {
			/* Grow. */
			struct group **old = t->slots;
			uint32_t oc = t->mask + 1, nc = oc * 2;
			struct group **ns = calloc(nc, sizeof(*ns));
			if (!ns)
				return NULL;
			t->mask = nc - 1;
			for (uint32_t i = 0; i < oc; i++) {
				uint32_t k;
				if (!old[i])
					continue;
				for (k = (uint32_t)old[i]->hash & t->mask; ns[k]; k = (k + 1) & t->mask)
					;
				ns[k] = old[i];
			}
			free(old);
			t->slots = ns;
		}
		for (j = (uint32_t)h & t->mask; t->slots[j]; j = (j + 1) & t->mask)
			;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->key = malloc(klen + 1);
	if (!g->key) {
		free(g);
		return NULL;
	}
	memcpy(g->key, key, klen + 1);
	g->hash = h;
	g->touch = t->tick;
	t->slots[j] = g;
	t->used++;
	return g;
}

/* Drops entries older than the window. */
static void expire(struct group *g, int64_t now, int64_t span)
{
	uint32_t k = 0;

	while (k < g->n && g->e[k].ts < now - span)
		k++;
	if (k) {
		memmove(g->e, g->e + k, (g->n - k) * sizeof(*g->e));
		g->n -= k;
	}
}

static int entry_add(struct group *g, int64_t ts, uint64_t h, double v)
{
	uint32_t pos;

	if (g->n == g->cap) {
		if (g->cap >= CORR_MAX_ENTRIES) {
			memmove(g->e, g->e + 1, (g->n - 1) * sizeof(*g->e));
			g->n--;
		} else {
			uint32_t cap = g->cap ? g->cap * 2 : 8;
			struct entry *ne = realloc(g->e, cap * sizeof(*ne));
			if (!ne)
				return M_ENOMEM;
			g->e = ne;
			g->cap = cap;
		}
	}
	/* Keep time order (late events are inserted in place). */
	pos = g->n;
	while (pos > 0 && g->e[pos - 1].ts > ts)
		pos--;
	memmove(g->e + pos + 1, g->e + pos, (g->n - pos) * sizeof(*g->e));
	g->e[pos] = (struct entry){ ts, h, v };
	g->n++;
	return 0;
}

/* Appends the pieces to out as snprintf would (truncated and terminated
 * when they do not fit); 0 when they did not. */
static int key_put(char *out, size_t cap, size_t *n, const char *const *piece,
		   const size_t *len, int k)
{
	size_t at = *n, end = cap - 1;

	for (int i = 0; i < k; i++) {
		size_t take = len[i] < end - at ? len[i] : end - at;

		memcpy(out + at, piece[i], take);
		at += take;
		if (take < len[i]) {
			out[end] = '\0';
			return 0;
		}
	}
	*n = at;
	out[at] = '\0';
	return 1;
}

/* "name=value, name=value" of the group-by fields (values up to 256
 * bytes, to a NUL), the correlation's group key. Built by hand: snprintf
 * was a sixth of the detection time of syslog events. */
static size_t group_key(const struct sigma_ruleset *rs, const struct sigma_corr *c,
			uint32_t ref, const struct event *ev, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	for (uint32_t g = 0; g < c->n_group_by; g++) {
		struct str v = sigma_field_value(rs, c->gb[ref][g], ev);
		const char *piece[4] = { ", ", c->group_by[g], "=", v.p ? v.p : "" };
		size_t len[4] = { g ? 2 : 0, strlen(c->group_by[g]), 1,
				  v.p ? strnlen(v.p, v.n > 256 ? 256 : v.n) : 0 };

		if (!key_put(out, cap, &n, piece, len, 4))
			break;
	}
	return n;
}

/* The number in a value field, or 0 when there is none. */
static int field_num(const struct sigma_ruleset *rs, uint32_t field,
		     const struct event *ev, double *x)
{
	struct str v = sigma_field_value(rs, field, ev);
	char tmp[64];
	char *end;

	if (!v.p || v.n == 0 || v.n >= sizeof(tmp))
		return 0;
	memcpy(tmp, v.p, v.n);
	tmp[v.n] = '\0';
	*x = strtod(tmp, &end);
	return end != tmp && !*end && isfinite(*x);
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The p-th percentile of the group's values, nearest rank (as pySigma
 * computes it: the value at index n * p / 100 of the sorted list). */
static int percentile_of(const struct group *g, double p, double *out)
{
	double *v = malloc(g->n * sizeof(*v));
	size_t idx;

	if (!v)
		return M_ENOMEM;
	for (uint32_t k = 0; k < g->n; k++)
		v[k] = g->e[k].v;
	qsort(v, g->n, sizeof(*v), dbl_cmp);
	idx = (size_t)((double)g->n * p / 100.0);
	if (idx >= g->n)
		idx = g->n - 1;
	*out = v[idx];
	free(v);
	return 0;
}

/* One match of reference ref of correlation ci; 1 when it fires. */
static int observe_one(struct sigma_corr_state *st, uint32_t ci, uint32_t ref,
		       const struct event *ev, char *key, uint64_t *count)
{
	const struct sigma_ruleset *rs = st->rs;
	const struct sigma_corr *c = rs->corrs[ci];
	struct corr_table *t = &st->t[ci];
	int64_t now = ev->ts_us;
	size_t klen = group_key(rs, c, ref, ev, key, CORR_MAX_KEY);
	struct group *g;
	int fired = 0;

	pthread_mutex_lock(&t->lock);
	g = group_get(t, key, klen, now, c->span_us);
	if (!g)
		goto out;
	if (now > g->last)
		g->last = now;
	switch (c->type) {
	case CT_EVENT_COUNT:
		expire(g, g->last, c->span_us);
		if (entry_add(g, now, 0, 0) == 0 && cond_holds(c, g->n)) {
			*count = g->n;
			fired = 1;
		}
		break;
	case CT_VALUE_COUNT: {
		uint64_t h = 0;
		uint32_t distinct = 0, f;

		/* Several fields count their combinations (all must be set). */
		for (f = 0; f < c->n_value_fields; f++) {
			struct str v = sigma_field_value(rs, c->vf[ref][f], ev);

			if (!v.p)
				break;
			h = h * 0x100000001b3ULL ^ sigma_name_hash(v.p, v.n);
		}
		if (f < c->n_value_fields)
			break;
		expire(g, g->last, c->span_us);
		/* The same value again moves it to its latest time. */
		for (uint32_t k = 0; k < g->n; k++)
			if (g->e[k].h == h) {
				memmove(g->e + k, g->e + k + 1, (g->n - k - 1) * sizeof(*g->e));
				g->n--;
				break;
			}
		if (entry_add(g, now, h, 0) < 0)
			break;
		distinct = g->n;
		if (cond_holds(c, distinct)) {
			*count = distinct;
			fired = 1;
		}
		break;
	}
	case CT_VALUE_SUM:
	case CT_VALUE_AVG:
	case CT_VALUE_PERCENTILE: {
		double x, agg = 0;

		if (!field_num(rs, c->vf[ref][0], ev, &x))
			break;
		expire(g, g->last, c->span_us);
		if (entry_add(g, now, 0, x) < 0)
			break;
		if (c->type == CT_VALUE_PERCENTILE) {
			if (percentile_of(g, c->percentile, &agg) < 0)
				break;
		} else {
			for (uint32_t k = 0; k < g->n; k++)
				agg += g->e[k].v;
			if (c->type == CT_VALUE_AVG)
				agg /= g->n;
		}
		if (cond_holds(c, agg)) {
			*count = (uint64_t)(agg < 0 ? 0 : agg);
			fired = 1;
		}
		break;
	}
	case CT_TEMPORAL: {
		uint32_t seen = 0;

		g->step[ref] = now;
		for (uint32_t k = 0; k < c->n_refs; k++)
			if (g->step[k] && g->step[k] >= now - c->span_us)
				seen++;
		if (cond_holds(c, seen)) {
			*count = seen;
			fired = 1;
		}
		break;
	}
	case CT_TEMPORAL_ORDERED:
		/* step[k]: start time of the freshest chain that reached k. */
		if (ref == 0) {
			g->step[0] = now;
		} else if (g->step[ref - 1] && now - g->step[ref - 1] <= c->span_us) {
			g->step[ref] = g->step[ref - 1];
		}
		if (g->step[c->n_refs - 1] && now - g->step[c->n_refs - 1] <= c->span_us) {
			*count = c->n_refs;
			fired = 1;
		}
		break;
	}
	if (fired) {
		/* Start over: the next alert needs a fresh window's worth. */
		g->n = 0;
		memset(g->step, 0, sizeof(g->step));
	}
out:
	pthread_mutex_unlock(&t->lock);
	return fired;
}

/* Rule r (a rule, or a correlation that just fired) matched ev: feeds the
 * correlations that refer to it, and those that fire feed theirs in turn
 * (the chain is loop-free and at most CORR_MAX_CHAIN deep, checked at
 * load). Returns the number of alerts emitted. */
static int feed(struct sigma_corr_state *st, const struct event *ev, uint32_t r,
		sigma_corr_emit_fn emit, void *ctx, int depth)
{
	const struct sigma_ruleset *rs = st->rs;
	int fired = 0;

	if (r >= rs->n_rules || depth > CORR_MAX_CHAIN)
		return 0;
	for (uint32_t j = st->off[r]; j < st->off[r + 1]; j++) {
		uint32_t ci = st->list[j];
		const struct sigma_corr *c;
		char key[CORR_MAX_KEY];
		uint64_t count = 0;

		if (ci == UINT32_MAX)
			continue;
		c = rs->corrs[ci];
		/* Temporal_ordered: a rule at several positions feeds each. */
		for (uint32_t k = 0; k < c->n_refs; k++) {
			if (c->refs_idx[k] != r)
				continue;
			if (observe_one(st, ci, k, ev, key, &count)) {
				struct sigma_corr_hit hit = { c->rule, count, key };

				/* A correlation another one refers to (without
				 * generate: true) only feeds that one. */
				if (sigma_rule_generates(rs, c->rule)) {
					fired++;
					if (emit)
						emit(ctx, &hit, ev);
				}
				fired += feed(st, ev, c->rule, emit, ctx, depth + 1);
			}
			if (c->type != CT_TEMPORAL_ORDERED)
				break;
		}
	}
	return fired;
}

int sigma_corr_observe(struct sigma_corr_state *st, const struct event *ev,
		       const uint32_t *rules, size_t n, sigma_corr_emit_fn emit,
		       void *ctx)
{
	int fired = 0;

	for (size_t i = 0; i < n; i++)
		fired += feed(st, ev, rules[i], emit, ctx, 0);
	return fired;
}
