/*
 * The detection stage: every event that workers parse meets the Sigma rule
 * set, the correlations and the indicator store here, and each hit becomes
 * an alert handed to a sink (the SOC back-end). Why one stage for all three:
 * they share the event while it is hot in the worker's cache, and a reload
 * swaps the rules or the indicators whole, without stopping the pipeline.
 * Alerts that repeat (one rule, one source, many times a second) are
 * counted rather than emitted for detect.suppress, so a storm costs the SOC
 * back-end one alert per key and window, with the count.
 */
#ifndef MAMORI_DETECT_H
#define MAMORI_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/event.h"
#include "core/pipeline.h"
#include "detect/intel.h"
#include "detect/sigma.h"

struct detect_config {
	int enabled;
	struct conf_list rules;        /* files and directories of Sigma rules */
	int bundled_rules;             /* the rules built into mamori */
	struct conf_list mappings;     /* extra field mapping files */
	struct conf_list placeholders; /* "name=v1,v2" for |expand */
	int64_t max_matches;           /* alerts per event, bounded */
	char *compiled_cache;          /* Hyperscan databases kept here; "" or "off" = none */
	int64_t suppress;              /* seconds; 0 = every alert is emitted */
	struct conf_list suppress_by;  /* fields keying single-event alerts
					* (entries may hold "a,b"); empty =
					* source.ip, host.name, user.name */
};

extern const struct conf_keyword detect_keywords[];

enum detect_source { DETECT_SIGMA = 1, DETECT_CORRELATION, DETECT_INTEL };

const char *detect_source_name(enum detect_source s);

/* One alert, valid for the duration of the sink call only. */
struct detect_alert {
	enum detect_source source;
	const char *rule_id;
	const char *rule_title;
	enum sigma_level level;
	const char *const *tags;   /* ATT&CK and other tags */
	uint32_t n_tags;
	const struct event *ev;    /* the event (for a correlation: the last) */
	const char *group;         /* correlation group "f=v, ...", or NULL */
	uint64_t count;            /* correlation count */
	/* Intel hits. */
	const struct intel_indicator *indicator;
	const char *field;         /* the event field that matched */
	/* Alert-storm suppression (detect.suppress): alerts of this rule and
	 * key counted, not emitted, since the previous one was emitted; and
	 * the key ("source.ip=192.0.2.1", the correlation group, ...; NULL
	 * when suppression is off). */
	uint64_t suppressed;
	const char *suppress_key;
};

/* Called from worker threads; must not block for long. */
typedef void (*detect_alert_fn)(void *ctx, const struct detect_alert *a);

struct detect;

/* Builds the rule set from cfg (problems with single rules are logged, one
 * line per rule, and counted; they do not fail the start). NULL with err
 * set when nothing can be built (a rule path that cannot be read, a bad
 * placeholder). Owner: the caller. */
struct detect *detect_new(const struct detect_config *cfg, detect_alert_fn fn,
			  void *ctx, struct buf *err);
void detect_free(struct detect *d);

/* Rebuilds the rule set aside and swaps it in; on error the running set
 * stays and err says why. Correlation windows restart with a new set. */
int detect_reload(struct detect *d, const struct detect_config *cfg,
		  struct buf *err);

/* Replaces the indicator set (the detector takes the reference; NULL
 * removes it). */
void detect_set_intel(struct detect *d, struct intel_set *set);
/* The indicators in force now, with a reference the caller drops with
 * intel_set_unref (the mail gateway looks up URLs and hashes inline); NULL
 * when none are loaded. */
struct intel_set *detect_intel_ref(struct detect *d);

/* The pipeline stage (ctx = the detector): events [from, to) of b. */
int detect_stage(struct event_batch *b, uint32_t from, uint32_t to, void *ctx);

/* Matches one event outside the pipeline (tests, `rules test`). */
void detect_event(struct detect *d, struct event *ev, struct arena *a);

/* Tests: the monotonic clock (microseconds) that suppression windows are
 * measured with, instead of CLOCK_MONOTONIC; read once per batch. */
void detect_set_clock(struct detect *d, int64_t (*mono_us)(void *ctx), void *ctx);

/* Rules in force and how many did not load. */
void detect_counts(struct detect *d, uint32_t *rules, size_t *unsupported,
		   size_t *errors);

#endif
