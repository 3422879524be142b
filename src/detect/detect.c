/*
 * The detection stage (see detect.h). The rule set and its correlation
 * state travel together as one generation, swapped under a mutex and held
 * by reference for a batch, so a reload never blocks workers for longer
 * than a pointer copy; the indicator set is swapped the same way.
 *
 * Suppression keeps, per (rule id, key), when the last alert was emitted
 * and how many were counted since, in a fixed table of sets with one lock
 * each (striped): workers that alert on different keys rarely meet, memory
 * is bounded whatever an attacker sends, and a full set evicts its least
 * recently alerted entry. Windows run on the monotonic clock, not in event
 * time, so a forged timestamp cannot hold a key's alerts back. The table
 * outlives reloads (rule ids do not change with them); its settings travel
 * with the generation.
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

#define SUPP_SETS 1024u        /* lock stripes; a power of two */
#define SUPP_WAYS 16u          /* entries per set: 16384 in all */
#define SUPP_KEY_KEEP 128u     /* bytes of a key kept to compare */
#define SUPP_KEY_MAX 1024u     /* bytes of a key built (rule id, fields) */
#define SUPP_VALUE_MAX 256u    /* bytes of one field value in a key */
#define SUPP_MAX_BY 8u         /* detect.suppress_by fields */

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
	{ "suppress", CONF_DURATION, offsetof(struct detect_config, suppress), 0, 86400,
	  "60s", 1, "after an alert, further alerts of the same rule and key within this "
	  "time are counted, not emitted; the next one emitted carries the count (0 = off)" },
	{ "suppress_by", CONF_STRLIST, offsetof(struct detect_config, suppress_by), 0, 0,
	  NULL, 1, "event fields that key the suppression of single-event alerts, the "
	  "first present is used; [] = source.ip, host.name, user.name, destination.ip (correlations use "
	  "their group, intel hits add the indicator)" },
	{ "compiled_cache", CONF_STR, offsetof(struct detect_config, compiled_cache), 0, 0,
	  "", 0, "directory where compiled pattern databases are kept, so restarts and "
	  "reloads of unchanged rules skip compiling; \"\" = <data_dir>/rules-cache, "
	  "\"off\" = none" },
	CONF_END
};

/* A suppress_by field: a schema index, or an overflow name. */
struct supp_field {
	int known;
	char *name;
};

struct generation {
	atomic_int refs;
	struct sigma_ruleset *rs;
	struct sigma_corr_state *corr;
	uint64_t evicted_seen;            /* of corr's evictions, in the metric */
	size_t unsupported, errors;
	int64_t supp_us;                  /* 0 = off */
	struct supp_field by[SUPP_MAX_BY];
	uint32_t n_by;
};

/* One (rule id, key): hash 0 = free. */
struct supp_slot {
	uint64_t hash;
	int64_t since;          /* monotonic µs of the last emitted alert */
	uint64_t suppressed;    /* counted since */
	uint64_t seq;           /* the set's count when last alerted */
	uint32_t len;           /* of the whole key; its first bytes in key */
	char key[SUPP_KEY_KEEP];
};

/* A lock stripe. Its slots lie apart, in one zeroed block of SUPP_SETS
 * x SUPP_WAYS (2.7 MB) that supp_new does not write: initialising a lock
 * beside each set's slots made every page of the block resident at
 * start-up, before any alert. */
struct supp_set {
	pthread_mutex_t lock;
	uint64_t seq;
	struct supp_slot *slot;   /* SUPP_WAYS of them */
};

struct detect {
	pthread_mutex_t lock;
	struct generation *gen;
	struct intel_set *intel;
	struct supp_set *supp;    /* made when suppression is first on; kept */
	detect_alert_fn fn;
	void *ctx;
	uint32_t max_matches;
	int64_t (*clock)(void *);
	void *clock_ctx;
	struct metric *m_events, *m_matches, *m_intel, *m_rules, *m_corr, *m_errors,
		*m_latency, *m_supp[DETECT_INTEL + 1], *m_evicted, *m_merged, *m_merge_failed;
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
		for (uint32_t i = 0; i < g->n_by; i++)
			free(g->by[i].name);
		free(g);
	}
}

/* detect.suppress_by into field references: entries may also hold several
 * names separated by commas; none at all means the default (as for
 * soc.group_by, which names the same entity). */
static int supp_fields(struct generation *g, const struct conf_list *l,
		       struct buf *err)
{
	static const char *const defaults[] = { "source.ip", "host.name", "user.name", "destination.ip" };

	for (size_t i = 0; i < l->n; i++) {
		const char *p = l->v[i];

		while (*p) {
			size_t n;

			while (*p == ',' || *p == ' ')
				p++;
			n = strcspn(p, ", ");
			if (n == 0)
				break;
			if (g->n_by == SUPP_MAX_BY) {
				buf_printf(err, "detect.suppress_by: more than %u fields", SUPP_MAX_BY);
				return M_ELIMIT;
			}
			g->by[g->n_by].name = strndup(p, n);
			if (!g->by[g->n_by].name)
				return M_ENOMEM;
			g->by[g->n_by].known = schema_lookup(p, n);
			g->n_by++;
			p += n;
		}
	}
	if (g->n_by)
		return 0;
	for (size_t k = 0; k < sizeof(defaults) / sizeof(defaults[0]); k++) {
		g->by[k].name = strdup(defaults[k]);
		if (!g->by[k].name)
			return M_ENOMEM;
		g->by[k].known = schema_lookup(defaults[k], strlen(defaults[k]));
		g->n_by = (uint32_t)k + 1;
	}
	return 0;
}

static struct supp_set *supp_new(void)
{
	struct supp_set *t = calloc(SUPP_SETS, sizeof(*t));
	struct supp_slot *slots = calloc((size_t)SUPP_SETS * SUPP_WAYS, sizeof(*slots));

	if (!t || !slots) {
		free(t);
		free(slots);
		return NULL;
	}
	for (uint32_t i = 0; i < SUPP_SETS; i++) {
		pthread_mutex_init(&t[i].lock, NULL);
		t[i].slot = slots + (size_t)i * SUPP_WAYS;
	}
	return t;
}

static void supp_free(struct supp_set *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < SUPP_SETS; i++)
		pthread_mutex_destroy(&t[i].lock);
	free(t[0].slot);
	free(t);
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
	if (cfg->compiled_cache && cfg->compiled_cache[0] &&
	    strcmp(cfg->compiled_cache, "off") != 0 &&
	    sigma_builder_set_hs_cache(b, cfg->compiled_cache) < 0) {
		buf_printf(err, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < cfg->rules.n; i++)
		if (sigma_builder_add_path(b, cfg->rules.v[i], log_rule, NULL) < 0) {
			buf_printf(err, "detect.rules: %s: cannot read", cfg->rules.v[i]);
			goto fail;
		}
	g->supp_us = cfg->suppress > 0 ? cfg->suppress * 1000000 : 0;
	if (supp_fields(g, &cfg->suppress_by, err) < 0) {
		if (!err->len)
			buf_printf(err, "out of memory");
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

static const char merged_help[] =
	"Field databases of several logsource buckets merged for the event signatures "
	"met (such a field is scanned once)";

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
	d->m_evicted = metric_get("mamori_detect_correlation_groups_evicted_total",
				  "Correlation groups dropped before their window closed, the "
				  "least recently seen, to keep a full table's newest keys",
				  METRIC_COUNTER, NULL);
	d->m_merged = metric_get("mamori_detect_merged_databases", merged_help, METRIC_GAUGE,
				 "state=\"ready\"");
	d->m_merge_failed = metric_get("mamori_detect_merged_databases", merged_help,
				       METRIC_GAUGE, "state=\"failed\"");
	d->m_latency = metric_get("mamori_detect_batch_seconds",
				  "Detection time per run of a batch (up to 64 events)",
				  METRIC_HISTOGRAM, NULL);
	for (int s = DETECT_SIGMA; s <= DETECT_INTEL; s++) {
		char labels[32];

		snprintf(labels, sizeof(labels), "source=\"%s\"",
			 detect_source_name((enum detect_source)s));
		d->m_supp[s] = metric_get("mamori_detect_alerts_suppressed_total",
					  "Alerts counted, not emitted, within detect.suppress of "
					  "an alert of the same rule and key, by source",
					  METRIC_COUNTER, labels);
	}
	d->gen = build(cfg, err);
	if (!d->gen || (cfg->suppress > 0 && !(d->supp = supp_new()))) {
		if (d->gen && !err->len)
			buf_printf(err, "out of memory");
		detect_free(d);
		return NULL;
	}
	metric_set(d->m_rules, sigma_ruleset_count(d->gen->rs));
	metric_set(d->m_errors, d->gen->unsupported + d->gen->errors);
	{
		uint32_t hits, misses;

		sigma_ruleset_hs_cache_stats(d->gen->rs, &hits, &misses);
		log_msg(LOG_INFO, "detect", "event=rules_loaded rules=%u unsupported=%zu errors=%zu "
			"ms=%lld compiled_cache_hits=%u compiled=%u", sigma_ruleset_count(d->gen->rs),
			d->gen->unsupported, d->gen->errors,
			(long long)((clock_mono_us() - t0) / 1000), hits, misses);
	}
	return d;
}

void detect_free(struct detect *d)
{
	if (!d)
		return;
	gen_unref(d->gen);
	intel_set_unref(d->intel);
	supp_free(d->supp);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

int detect_reload(struct detect *d, const struct detect_config *cfg,
		  struct buf *err)
{
	int64_t t0 = clock_mono_us();
	struct generation *g = build(cfg, err), *old;
	struct supp_set *supp = NULL;

	if (!g)
		return M_EINVAL;
	/* The table is made outside the lock (a few MiB), once. */
	pthread_mutex_lock(&d->lock);
	supp = d->supp;
	pthread_mutex_unlock(&d->lock);
	if (cfg->suppress > 0 && !supp) {
		if (!(supp = supp_new())) {
			buf_printf(err, "out of memory");
			gen_unref(g);
			return M_ENOMEM;
		}
	} else {
		supp = NULL;
	}
	pthread_mutex_lock(&d->lock);
	if (supp && !d->supp) {
		d->supp = supp;
		supp = NULL;
	}
	old = d->gen;
	d->gen = g;
	d->max_matches = (uint32_t)(cfg->max_matches > 0 ? cfg->max_matches : 16);
	pthread_mutex_unlock(&d->lock);
	supp_free(supp);   /* another reload made one first */
	gen_unref(old);
	metric_set(d->m_rules, sigma_ruleset_count(g->rs));
	metric_set(d->m_errors, g->unsupported + g->errors);
	{
		uint32_t hits, misses;

		sigma_ruleset_hs_cache_stats(g->rs, &hits, &misses);
		log_msg(LOG_INFO, "detect", "event=rules_reloaded rules=%u unsupported=%zu errors=%zu "
			"ms=%lld compiled_cache_hits=%u compiled=%u", sigma_ruleset_count(g->rs),
			g->unsupported, g->errors, (long long)((clock_mono_us() - t0) / 1000), hits,
			misses);
	}
	return 0;
}

void detect_set_clock(struct detect *d, int64_t (*mono_us)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&d->lock);
	d->clock = mono_us;
	d->clock_ctx = ctx;
	pthread_mutex_unlock(&d->lock);
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

struct intel_set *detect_intel_ref(struct detect *d)
{
	struct intel_set *s = NULL;

	if (!d)
		return NULL;
	pthread_mutex_lock(&d->lock);
	if (d->intel)
		s = intel_set_ref(d->intel);
	pthread_mutex_unlock(&d->lock);
	return s;
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
	struct supp_set *supp;    /* NULL: suppression off */
	struct sigma_ctx *c;
	struct arena *a;
	int64_t now;
	int64_t mono;             /* suppression clock, per batch */
};

/* ---- suppression ---- */

/* FNV-1a, then a 64-bit finaliser (MurmurHash3's) so that keys differing
 * in their last bytes spread over the sets. */
static uint64_t key_hash(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h ? h : 1;
}

/* Appends "name=value" (the value cut at SUPP_VALUE_MAX) at *n. */
static void key_put(char *key, size_t *n, const char *name, struct str v)
{
	int w = snprintf(key + *n, SUPP_KEY_MAX - *n, "%s%s=%.*s", *n ? ", " : "", name,
			 (int)(v.n > SUPP_VALUE_MAX ? SUPP_VALUE_MAX : v.n), v.p ? v.p : "");

	if (w > 0)
		*n += (size_t)w < SUPP_KEY_MAX - *n ? (size_t)w : SUPP_KEY_MAX - *n - 1;
}

/* The key of a single-event alert: the first suppress_by field present. */
static size_t key_fields(const struct generation *g, const struct event *ev,
			 char *key)
{
	size_t n = 0;

	key[0] = '\0';
	for (uint32_t i = 0; i < g->n_by; i++) {
		const struct supp_field *f = &g->by[i];
		struct str v = f->known >= 0 ? event_get(ev, f->known) :
			       event_get_extra(ev, str_cstr(f->name));

		if (v.p && v.n) {
			key_put(key, &n, f->name, v);
			break;
		}
	}
	return n;
}

/* Whether an alert of rule id with this key is emitted (1, with the count
 * suppressed since the last one in *carried) or only counted (0). */
static int supp_pass(struct run *r, const char *id, const char *key, size_t klen,
		     uint64_t *carried)
{
	char full[SUPP_KEY_MAX + 256];
	int n = snprintf(full, sizeof(full), "%s%c%.*s", id, 0x1f, (int)klen, key);
	size_t len = n < 0 ? 0 : (size_t)n < sizeof(full) ? (size_t)n : sizeof(full) - 1;
	size_t keep = len < SUPP_KEY_KEEP ? len : SUPP_KEY_KEEP;
	uint64_t h = key_hash(full, len);
	struct supp_set *s = &r->supp[(h >> 32) & (SUPP_SETS - 1)];
	struct supp_slot *e = NULL, *victim = NULL;
	int64_t now = r->mono, span = r->g->supp_us;
	int pass = 1;

	*carried = 0;
	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < SUPP_WAYS; i++) {
		struct supp_slot *x = &s->slot[i];

		if (x->hash == h && x->len == len && memcmp(x->key, full, keep) == 0) {
			e = x;
			break;
		}
		/* The victim if it is not there: a free entry, else the one
		 * least recently alerted (emitted or counted). */
		if (!victim || (victim->hash && (!x->hash || x->seq < victim->seq)))
			victim = x;
	}
	if (e && now - e->since < span) {
		e->suppressed++;
		e->seq = ++s->seq;
		pass = 0;
	} else if (e) {
		*carried = e->suppressed;
		e->suppressed = 0;
		e->since = now;
		e->seq = ++s->seq;
	} else {
		victim->hash = h;
		victim->len = (uint32_t)len;
		memcpy(victim->key, full, keep);
		victim->since = now;
		victim->suppressed = 0;
		victim->seq = ++s->seq;
	}
	pthread_mutex_unlock(&s->lock);
	return pass;
}

/* Hands an alert to the sink unless it is suppressed; key is "" for none. */
static void deliver(struct run *r, struct detect_alert *al, const char *key,
		    size_t klen)
{
	if (r->supp && r->g->supp_us > 0) {
		if (!supp_pass(r, al->rule_id, key, klen, &al->suppressed)) {
			metric_add(r->d->m_supp[al->source], 1);
			return;
		}
		al->suppress_key = key;
	}
	if (r->d->fn)
		r->d->fn(r->d->ctx, al);
}

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
	char key[SUPP_KEY_MAX] = "";
	size_t klen = 0;

	metric_add(src == DETECT_SIGMA ? r->d->m_matches : r->d->m_corr, 1);
	if (r->supp && r->g->supp_us > 0) {
		if (src == DETECT_CORRELATION) {
			klen = strlen(group ? group : "");
			if (klen >= SUPP_KEY_MAX)
				klen = SUPP_KEY_MAX - 1;
			memcpy(key, group ? group : "", klen);
			key[klen] = '\0';
		} else {
			klen = key_fields(r->g, ev, key);
		}
	}
	deliver(r, &al, key, klen);
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

/* Every indicator field of the event in one batch, so their memory
 * accesses overlap; the first field in intel_fields order that hits wins,
 * as one lookup after the other would find. */
static void match_intel(struct run *r, struct event *ev)
{
	enum { NF = sizeof(intel_fields) / sizeof(intel_fields[0]) };
	struct intel_typed_query q[NF];
	const struct intel_indicator *hits[NF], *hit = NULL;
	int qf[NF], field = -1;
	size_t nq = 0;

	for (size_t i = 0; i < NF; i++) {
		struct str v = event_get(ev, intel_fields[i].field);

		if (!v.p || !v.n)
			continue;
		q[nq] = (struct intel_typed_query){ intel_fields[i].type, v.p, v.n };
		qf[nq++] = intel_fields[i].field;
	}
	if (nq == 0 || intel_lookup_batch(r->intel, q, nq, hits, r->now) < 0)
		return;
	for (size_t i = 0; i < nq && !hit; i++)
		if (hits[i]) {
			hit = hits[i];
			field = qf[i];
		}
	if (!hit)
		return;
	annotate(ev, r->a, hit);
	metric_add(r->d->m_intel, 1);
	{
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
		char key[SUPP_KEY_MAX] = "";
		size_t klen = 0;

		/* The indicator joins the key: one host meeting two listed
		 * domains is two things to look at. */
		if (r->supp && r->g->supp_us > 0) {
			klen = key_fields(r->g, ev, key);
			key_put(key, &klen, "indicator", str_make(hit->value, hit->value_len));
		}
		deliver(r, &al, key, klen);
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
	r->supp = r->g->supp_us > 0 ? d->supp : NULL;
	r->mono = d->clock ? d->clock(d->clock_ctx) : clock_mono_us();
	pthread_mutex_unlock(&d->lock);
	r->c = sigma_ctx_get(r->g->rs);
	return r->c ? 0 : M_ENOMEM;
}

static void run_end(struct run *r)
{
	struct generation *g = r->g;
	uint64_t ev = g->corr ? sigma_corr_evicted(g->corr) : 0;
	uint64_t seen = __atomic_load_n(&g->evicted_seen, __ATOMIC_RELAXED);

	/* Each eviction reaches the metric once, whichever worker sees it. */
	while (ev > seen && !__atomic_compare_exchange_n(&g->evicted_seen, &seen, ev, 0,
							 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	if (ev > seen)
		metric_add(r->d->m_evicted, ev - seen);
	if (r->c) {
		uint32_t merged, failed;

		sigma_ruleset_merge_stats(g->rs, &merged, &failed);
		metric_set(r->d->m_merged, merged);
		metric_set(r->d->m_merge_failed, failed);
		sigma_ctx_put(g->rs, r->c);
	}
	intel_set_unref(r->intel);
	gen_unref(r->g);
}

int detect_stage(struct event_batch *b, uint32_t from, uint32_t to, void *ctx)
{
	struct detect *d = ctx;
	struct run r;
	int64_t t0 = clock_mono_us();

	run_begin(d, &r, &b->arena);
	for (uint32_t i = from; i < to; i++)
		run_event(&r, &b->ev[i]);
	run_end(&r);
	metric_add(d->m_events, to - from);
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
