/*
 * The detection stage (see detect.h). The rule set and its correlation
 * state travel together as one generation, swapped under a mutex and held
 * by reference for a batch, so a reload never blocks workers for longer
 * than a pointer copy; the indicator set is swapped the same way.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/schema.h"
#include "detect/detect.h"
#include "detect/sigma_corr.h"

#define DETECT_MAX_MATCHES 64

const struct conf_keyword detect_keywords[] = {
	{ "enabled", CONF_BOOL, offsetof(struct detect_config, enabled), 0, 0,
	  "true", 0, "run Sigma rules, correlations and indicators on every event" },
	{ "rules", CONF_STRLIST, offsetof(struct detect_config, rules), 0, 0,
	  NULL, 1, "Sigma rule files and directories (recursively *.yml, *.yaml)" },
	{ "bundled_rules", CONF_BOOL, offsetof(struct detect_config, bundled_rules), 0, 0,
	  "true", 1, "also load the rules bundled with mamori" },
	{ "mappings", CONF_STRLIST, offsetof(struct detect_config, mappings), 0, 0,
	  NULL, 1, "extra Sigma field mapping files or directories (over the built-in ones)" },
	{ "placeholders", CONF_STRLIST, offsetof(struct detect_config, placeholders), 0, 0,
	  NULL, 1, "values for |expand placeholders, as \"name=value1,value2\"" },
	{ "max_matches", CONF_INT, offsetof(struct detect_config, max_matches), 1,
	  DETECT_MAX_MATCHES, "16", 1, "alerts raised by one event at most" },
	CONF_END
};

struct generation {
	atomic_int refs;
	struct sigma_ruleset *rs;
	struct sigma_corr_state *corr;
	size_t unsupported, errors;
};

struct detect {
	pthread_mutex_t lock;
	struct generation *gen;
	struct intel_set *intel;
	detect_alert_fn fn;
	void *ctx;
	uint32_t max_matches;
	struct metric *m_events, *m_matches, *m_intel, *m_rules, *m_corr, *m_errors,
		*m_latency;
};

const char *detect_source_name(enum detect_source s)
{
	switch (s) {
	case DETECT_SIGMA: return "sigma";
	case DETECT_CORRELATION: return "correlation";
	case DETECT_INTEL: return "intel";
	}
	return "unknown";
}

static void gen_unref(struct generation *g)
{
	if (g && atomic_fetch_sub(&g->refs, 1) == 1) {
		sigma_corr_state_free(g->corr);
		sigma_ruleset_unref(g->rs);
		free(g);
	}
}

static void log_rule(void *ctx, const char *file, enum sigma_file_status st,
		     const char *msg)
{
	(void)ctx;
	if (st == SIGMA_LOADED)
		return;
	log_msg(st == SIGMA_UNSUPPORTED ? LOG_INFO : LOG_WARN, "detect",
		"event=rule_not_loaded file=%s status=%s reason=\"%s\"", file,
		st == SIGMA_UNSUPPORTED ? "unsupported" : "error", msg);
}

static int add_placeholder(struct sigma_builder *b, const char *spec,
			   struct buf *err)
{
	const char *eq = strchr(spec, '=');
	char *copy;
	const char *vals[1024];
	size_t n = 0;
	int r;

	if (!eq || eq == spec) {
		buf_printf(err, "detect.placeholders: \"%s\" is not name=value1,value2", spec);
		return M_EINVAL;
	}
	copy = strdup(spec);
	if (!copy)
		return M_ENOMEM;
	copy[eq - spec] = '\0';
	for (char *p = copy + (eq - spec) + 1; p && n < 1024;) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		if (*p)
			vals[n++] = p;
		p = comma ? comma + 1 : NULL;
	}
	r = sigma_builder_set_placeholder(b, copy, vals, n);
	free(copy);
	return r;
}

static struct generation *build(const struct detect_config *cfg, struct buf *err)
{
	struct sigma_builder *b = sigma_builder_new();
	struct generation *g = calloc(1, sizeof(*g));
	size_t loaded;

	if (!b || !g) {
		buf_printf(err, "out of memory");
		goto fail;
	}
	atomic_init(&g->refs, 1);
	if (sigma_builder_add_builtin(b, 0, NULL, NULL, err) < 0)
		goto fail;
	for (size_t i = 0; i < cfg->mappings.n; i++)
		if (sigma_builder_add_mappings(b, cfg->mappings.v[i], err) < 0)
			goto fail;
	for (size_t i = 0; i < cfg->placeholders.n; i++)
		if (add_placeholder(b, cfg->placeholders.v[i], err) < 0)
			goto fail;
	if (cfg->bundled_rules && sigma_builder_add_builtin(b, 1, log_rule, NULL, err) < 0)
		goto fail;
	for (size_t i = 0; i < cfg->rules.n; i++)
		if (sigma_builder_add_path(b, cfg->rules.v[i], log_rule, NULL) < 0) {
			buf_printf(err, "detect.rules: %s: cannot read", cfg->rules.v[i]);
			goto fail;
		}
	sigma_builder_counts(b, &loaded, &g->unsupported, &g->errors);
	g->rs = sigma_builder_finish(b, 0, err);
	b = NULL;
	if (!g->rs)
		goto fail;
	g->corr = sigma_corr_state_new(g->rs);
	if (!g->corr) {
		buf_printf(err, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < sigma_ruleset_count(g->rs); i++) {
		const char *why = sigma_corr_disabled(g->rs, i);
		if (why)
			log_msg(LOG_WARN, "detect", "event=correlation_disabled rule=%s reason=\"%s\"",
				sigma_ruleset_rule(g->rs, i)->id, why);
	}
	buf_cstr(err);
	return g;
fail:
	buf_cstr(err);
	sigma_builder_free(b);
	gen_unref(g);
	return NULL;
}

struct detect *detect_new(const struct detect_config *cfg, detect_alert_fn fn,
			  void *ctx, struct buf *err)
{
	struct detect *d = calloc(1, sizeof(*d));
	int64_t t0 = clock_mono_us();

	if (!d)
		return NULL;
	pthread_mutex_init(&d->lock, NULL);
	d->fn = fn;
	d->ctx = ctx;
	d->max_matches = (uint32_t)(cfg->max_matches > 0 ? cfg->max_matches : 16);
	d->m_events = metric_get("mamori_detect_events_total",
				 "Events run through detection", METRIC_COUNTER, NULL);
	d->m_matches = metric_get("mamori_detect_alerts_total", "Alerts raised, by source",
				  METRIC_COUNTER, "source=\"sigma\"");
	d->m_corr = metric_get("mamori_detect_alerts_total", "Alerts raised, by source",
			       METRIC_COUNTER, "source=\"correlation\"");
	d->m_intel = metric_get("mamori_detect_alerts_total", "Alerts raised, by source",
				METRIC_COUNTER, "source=\"intel\"");
	d->m_rules = metric_get("mamori_detect_rules", "Sigma rules in force",
				METRIC_GAUGE, NULL);
	d->m_errors = metric_get("mamori_detect_rules_not_loaded",
				 "Sigma rules that did not load (unsupported or in error)",
				 METRIC_GAUGE, NULL);
	d->m_latency = metric_get("mamori_detect_batch_seconds",
				  "Detection time per batch", METRIC_HISTOGRAM, NULL);
	d->gen = build(cfg, err);
	if (!d->gen) {
		detect_free(d);
		return NULL;
	}
	metric_set(d->m_rules, sigma_ruleset_count(d->gen->rs));
	metric_set(d->m_errors, d->gen->unsupported + d->gen->errors);
	log_msg(LOG_INFO, "detect", "event=rules_loaded rules=%u unsupported=%zu errors=%zu ms=%lld",
		sigma_ruleset_count(d->gen->rs), d->gen->unsupported, d->gen->errors,
		(long long)((clock_mono_us() - t0) / 1000));
	return d;
}

void detect_free(struct detect *d)
{
	if (!d)
		return;
	gen_unref(d->gen);
	intel_set_unref(d->intel);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

int detect_reload(struct detect *d, const struct detect_config *cfg,
		  struct buf *err)
{
	int64_t t0 = clock_mono_us();
	struct generation *g = build(cfg, err), *old;

	if (!g)
		return M_EINVAL;
	pthread_mutex_lock(&d->lock);
	old = d->gen;
	d->gen = g;
	d->max_matches = (uint32_t)(cfg->max_matches > 0 ? cfg->max_matches : 16);
	pthread_mutex_unlock(&d->lock);
	gen_unref(old);
	metric_set(d->m_rules, sigma_ruleset_count(g->rs));
	metric_set(d->m_errors, g->unsupported + g->errors);
	log_msg(LOG_INFO, "detect", "event=rules_reloaded rules=%u unsupported=%zu errors=%zu ms=%lld",
		sigma_ruleset_count(g->rs), g->unsupported, g->errors,
		(long long)((clock_mono_us() - t0) / 1000));
	return 0;
}

void detect_set_intel(struct detect *d, struct intel_set *set)
{
	struct intel_set *old;

	pthread_mutex_lock(&d->lock);
	old = d->intel;
	d->intel = set;
	pthread_mutex_unlock(&d->lock);
	intel_set_unref(old);
}

void detect_counts(struct detect *d, uint32_t *rules, size_t *unsupported,
		   size_t *errors)
{
	pthread_mutex_lock(&d->lock);
	*rules = sigma_ruleset_count(d->gen->rs);
	*unsupported = d->gen->unsupported;
	*errors = d->gen->errors;
	pthread_mutex_unlock(&d->lock);
}

/* ---- per event ---- */

struct run {
	struct detect *d;
	struct generation *g;
	struct intel_set *intel;
	struct sigma_ctx *c;
	struct arena *a;
	int64_t now;
};

static void emit_rule(struct run *r, enum detect_source src, uint32_t rule,
		      const struct event *ev, const char *group, uint64_t count)
{
	const struct sigma_rule_info *in = sigma_ruleset_rule(r->g->rs, rule);
	struct detect_alert al = {
		.source = src,
		.rule_id = in->id,
		.rule_title = in->title,
		.level = in->level,
		.tags = in->tags,
		.n_tags = in->n_tags,
		.ev = ev,
		.group = group,
		.count = count,
	};

	metric_add(src == DETECT_SIGMA ? r->d->m_matches : r->d->m_corr, 1);
	if (r->d->fn)
		r->d->fn(r->d->ctx, &al);
}

static void corr_emit(void *ctx, const struct sigma_corr_hit *hit,
		      const struct event *ev)
{
	emit_rule(ctx, DETECT_CORRELATION, hit->rule, ev, hit->group, hit->count);
}

struct intel_field {
	int field;
	enum intel_type type;
};

static const struct intel_field intel_fields[] = {
	{ F_SOURCE_IP, INTEL_IP },
	{ F_DESTINATION_IP, INTEL_IP },
	{ F_DNS_QUESTION_NAME, INTEL_DOMAIN },
	{ F_URL_DOMAIN, INTEL_DOMAIN },
	{ F_DESTINATION_DOMAIN, INTEL_DOMAIN },
	{ F_TLS_CLIENT_SERVER_NAME, INTEL_DOMAIN },
	{ F_URL_FULL, INTEL_URL },
	{ F_URL_ORIGINAL, INTEL_URL },
	{ F_FILE_HASH_SHA256, INTEL_HASH },
	{ F_FILE_HASH_SHA1, INTEL_HASH },
	{ F_FILE_HASH_MD5, INTEL_HASH },
	{ F_EMAIL_FROM_ADDRESS, INTEL_EMAIL },
	{ F_EMAIL_SENDER_ADDRESS, INTEL_EMAIL },
	{ F_EMAIL_TO_ADDRESS, INTEL_EMAIL },
};

static const char *const intel_type_names[] = {
	[INTEL_IP] = "ipv4-addr", [INTEL_DOMAIN] = "domain-name", [INTEL_URL] = "url",
	[INTEL_HASH] = "file", [INTEL_EMAIL] = "email-addr",
};

static const char *const intel_rule_ids[] = {
	[INTEL_IP] = "mamori-intel-ip", [INTEL_DOMAIN] = "mamori-intel-domain",
	[INTEL_URL] = "mamori-intel-url", [INTEL_HASH] = "mamori-intel-hash",
	[INTEL_EMAIL] = "mamori-intel-email",
};

static const char *const intel_titles[] = {
	[INTEL_IP] = "Address on a threat-intelligence list",
	[INTEL_DOMAIN] = "Domain on a threat-intelligence list",
	[INTEL_URL] = "URL on a threat-intelligence list",
	[INTEL_HASH] = "File hash on a threat-intelligence list",
	[INTEL_EMAIL] = "E-mail address on a threat-intelligence list",
};

static const char *const intel_tags[] = { "intel", NULL };

/* Records the hit on the event (ECS threat.indicator.*) so the stored
 * event says why it alerted. */
static void annotate(struct event *ev, struct arena *a, const struct intel_indicator *in)
{
	char conf[8];
	int n;

	event_set_copy(ev, a, F_THREAT_INDICATOR_TYPE, intel_type_names[in->type],
		       strlen(intel_type_names[in->type]));
	if (in->type == INTEL_IP)
		event_set_copy(ev, a, F_THREAT_INDICATOR_IP, in->value, in->value_len);
	else if (in->type == INTEL_DOMAIN)
		event_set_copy(ev, a, F_THREAT_INDICATOR_DOMAIN, in->value, in->value_len);
	else if (in->type == INTEL_URL)
		event_set_copy(ev, a, F_THREAT_INDICATOR_URL_FULL, in->value, in->value_len);
	if (in->meta.source)
		event_set_copy(ev, a, F_THREAT_INDICATOR_PROVIDER, in->meta.source,
			       strlen(in->meta.source));
	n = snprintf(conf, sizeof(conf), "%u", in->meta.confidence);
	if (n > 0)
		event_set_copy(ev, a, F_THREAT_INDICATOR_CONFIDENCE, conf, (size_t)n);
}

static void match_intel(struct run *r, struct event *ev)
{
	const struct intel_indicator *hit = NULL;
	int field = -1;

	for (size_t i = 0; i < sizeof(intel_fields) / sizeof(intel_fields[0]) && !hit; i++) {
		struct str v = event_get(ev, intel_fields[i].field);

		if (!v.p || !v.n)
			continue;
		switch (intel_fields[i].type) {
		case INTEL_IP:
			hit = intel_lookup_ip(r->intel, v.p, v.n, r->now);
			break;
		case INTEL_DOMAIN:
			hit = intel_lookup_domain(r->intel, v.p, v.n, r->now);
			break;
		case INTEL_URL:
			hit = intel_lookup_url(r->intel, v.p, v.n, r->now);
			break;
		case INTEL_HASH:
			hit = intel_lookup_hash(r->intel, v.p, v.n, r->now);
			break;
		case INTEL_EMAIL:
			hit = intel_lookup_email(r->intel, v.p, v.n, r->now);
			break;
		}
		field = intel_fields[i].field;
	}
	if (!hit)
		return;
	annotate(ev, r->a, hit);
	metric_add(r->d->m_intel, 1);
	if (r->d->fn) {
		struct detect_alert al = {
			.source = DETECT_INTEL,
			.rule_id = intel_rule_ids[hit->type],
			.rule_title = intel_titles[hit->type],
			.level = hit->meta.confidence >= 80 ? SIGMA_LEVEL_HIGH :
				 hit->meta.confidence >= 40 ? SIGMA_LEVEL_MEDIUM :
				 SIGMA_LEVEL_LOW,
			.tags = intel_tags,
			.n_tags = 1,
			.ev = ev,
			.indicator = hit,
			.field = schema_name(field),
		};
		r->d->fn(r->d->ctx, &al);
	}
}

static void run_event(struct run *r, struct event *ev)
{
	uint32_t out[DETECT_MAX_MATCHES];
	size_t n = 0;

	if (r->c && sigma_match(r->g->rs, r->c, ev, out, r->d->max_matches, &n) == 0) {
		for (size_t k = 0; k < n; k++)
			if (sigma_rule_generates(r->g->rs, out[k]))
				emit_rule(r, DETECT_SIGMA, out[k], ev, NULL, 0);
		if (n)
			sigma_corr_observe(r->g->corr, ev, out, n, corr_emit, r);
	}
	if (r->intel)
		match_intel(r, ev);
}

static int run_begin(struct detect *d, struct run *r, struct arena *a)
{
	memset(r, 0, sizeof(*r));
	r->d = d;
	r->a = a;
	r->now = clock_now_us();
	pthread_mutex_lock(&d->lock);
	r->g = d->gen;
	atomic_fetch_add(&r->g->refs, 1);
	r->intel = d->intel ? intel_set_ref(d->intel) : NULL;
	pthread_mutex_unlock(&d->lock);
	r->c = sigma_ctx_get(r->g->rs);
	return r->c ? 0 : M_ENOMEM;
}

static void run_end(struct run *r)
{
	if (r->c)
		sigma_ctx_put(r->g->rs, r->c);
	intel_set_unref(r->intel);
	gen_unref(r->g);
}

int detect_stage(struct event_batch *b, void *ctx)
{
	struct detect *d = ctx;
	struct run r;
	int64_t t0 = clock_mono_us();

	run_begin(d, &r, &b->arena);
	for (uint32_t i = 0; i < b->n; i++)
		run_event(&r, &b->ev[i]);
	run_end(&r);
	metric_add(d->m_events, b->n);
	metric_observe_us(d->m_latency, (uint64_t)(clock_mono_us() - t0));
	return 0;
}

void detect_event(struct detect *d, struct event *ev, struct arena *a)
{
	struct run r;

	run_begin(d, &r, a);
	run_event(&r, ev);
	run_end(&r);
	metric_add(d->m_events, 1);
}
