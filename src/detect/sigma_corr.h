/*
 * Sigma correlation rules (event_count, value_count, value_sum, value_avg,
 * value_percentile, temporal, temporal_ordered) over the matches of
 * ordinary rules or of other correlations, grouped by fields within a
 * timespan. Why a separate state object: the compiled
 * rule set is immutable and shared by every worker; the windows of a
 * correlation are mutable, bounded in memory, and expire.
 */
#ifndef MAMORI_SIGMA_CORR_H
#define MAMORI_SIGMA_CORR_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/event.h"

struct sigma_builder;
struct sigma_rule;
struct sigma_ruleset;

#define SIGMA_CORR_MAX_GROUPS 100000u   /* per correlation; least recently seen evicted */
#define SIGMA_CORR_MAX_RULES 32u        /* rules one correlation refers to */
#define SIGMA_CORR_MAX_GROUPBY 8u

/* Loader hooks (sigma_load.c). */
int sigma_corr_parse(struct sigma_builder *b, struct sigma_rule *r,
		     const struct conf_node *corr, struct buf *why);
int sigma_corr_resolve(struct sigma_builder *b, struct buf *err);

/* What fired. group is "field=value, ..." (NUL-terminated, in out_group). */
struct sigma_corr_hit {
	uint32_t rule;        /* the correlation rule's index in the set */
	uint64_t count;       /* events, distinct values, rules (temporal), or
			       * the sum/average/percentile */
	const char *group;
};

typedef void (*sigma_corr_emit_fn)(void *ctx, const struct sigma_corr_hit *hit,
				   const struct event *ev);

struct sigma_corr_state;

/* State for one rule set; owned by the caller; bounded. */
struct sigma_corr_state *sigma_corr_state_new(const struct sigma_ruleset *rs);
void sigma_corr_state_free(struct sigma_corr_state *st);

/* Feeds the matches of one event (rule indices from sigma_match). Calls emit
 * for each correlation that fires and generates alerts: one that another
 * correlation refers to (without generate: true) only feeds that one.
 * Thread-safe. Returns the number emitted. */
int sigma_corr_observe(struct sigma_corr_state *st, const struct event *ev,
		       const uint32_t *rules, size_t n, sigma_corr_emit_fn emit,
		       void *ctx);

/* Whether rule i should alert on its own (false when it is referenced only
 * by correlations with `generate: false`). */
int sigma_rule_generates(const struct sigma_ruleset *rs, uint32_t i);

/* Groups held now, over all correlations (for metrics and tests). */
size_t sigma_corr_groups(struct sigma_corr_state *st);

/* Groups evicted from full tables while their window was still open, over
 * all correlations, since the state was made. */
uint64_t sigma_corr_evicted(struct sigma_corr_state *st);

/* Groups held at most per correlation (default SIGMA_CORR_MAX_GROUPS; for
 * tests). */
void sigma_corr_set_max_groups(struct sigma_corr_state *st, uint32_t max);

#endif
