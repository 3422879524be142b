/*
 * Unit tests of alert-storm suppression in the detection stage
 * (detect.suppress, detect.suppress_by): detect_event() is driven with a
 * recording sink and a fake clock. Covered: one alert per rule and key per
 * window and the count carried by the next one; keys (the first
 * suppress_by field present, the correlation group, the indicator of an
 * intel hit); rules and keys independent of each other; suppression off;
 * a reload keeping the state; the bounded table evicting its oldest
 * entries; workers alerting on one key at once; and the bundled rules
 * loading through detect.bundled_rules.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/event.h"
#include "core/hs_child.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "detect/detect.h"
#include "detect/intel.h"

#define MAX_SEEN 64

/* Two single-event rules on the same events, and a correlation over a
 * third (its base rule is silent: the correlation does not generate). */
static const char rules_yml[] =
	"title: hit one\n"
	"id: 7d6f2a41-0001-4000-8000-000000000001\n"
	"logsource: {}\n"
	"detection:\n  sel:\n    message|contains: 'hit'\n  condition: sel\n"
	"---\n"
	"title: hit two\n"
	"id: 7d6f2a41-0002-4000-8000-000000000002\n"
	"logsource: {}\n"
	"detection:\n  sel:\n    message|contains: 'double'\n  condition: sel\n"
	"---\n"
	"title: burst base\n"
	"id: 7d6f2a41-0003-4000-8000-000000000003\n"
	"name: burst_base\n"
	"logsource: {}\n"
	"detection:\n  sel:\n    message|contains: 'burst'\n  condition: sel\n"
	"---\n"
	"title: burst\n"
	"id: 7d6f2a41-0004-4000-8000-000000000004\n"
	"correlation:\n  type: event_count\n  rules: [burst_base]\n"
	"  group-by: [source.ip]\n  timespan: 5m\n  condition: {gte: 2}\n";

#define HIT_ONE "7d6f2a41-0001-4000-8000-000000000001"
#define HIT_TWO "7d6f2a41-0002-4000-8000-000000000002"
#define BURST "7d6f2a41-0004-4000-8000-000000000004"

struct seen {
	char rule[64];
	char key[256];
	int has_key;
	uint64_t suppressed;
	enum detect_source source;
};

struct sink {
	pthread_mutex_t lock;
	struct seen s[MAX_SEEN];
	size_t n;
	atomic_ulong total;
};

static void on_alert(void *ctx, const struct detect_alert *a)
{
	struct sink *k = ctx;

	atomic_fetch_add(&k->total, 1);
	pthread_mutex_lock(&k->lock);
	if (k->n < MAX_SEEN) {
		struct seen *s = &k->s[k->n++];

		snprintf(s->rule, sizeof(s->rule), "%s", a->rule_id);
		s->has_key = a->suppress_key != NULL;
		snprintf(s->key, sizeof(s->key), "%s", a->suppress_key ? a->suppress_key : "");
		s->suppressed = a->suppressed;
		s->source = a->source;
	}
	pthread_mutex_unlock(&k->lock);
}

static int64_t fake_us;

static int64_t fake_clock(void *ctx)
{
	return *(int64_t *)ctx;
}

struct fix {
	char dir[64];
	char path[128];
	struct detect_config cfg;
	struct detect *d;
	struct sink sink;
	struct arena a;
	struct event ev;
};

/* Builds a detector over rules_yml with suppress seconds and the given
 * suppress_by entries (NULL-terminated; NULL = the default). */
static void fix_open(struct fix *f, int64_t suppress, const char *const *by)
{
	struct buf err;
	FILE *fp;

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/mamori-supp-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/rules.yml", f->dir);
	fp = fopen(f->path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(rules_yml, 1, sizeof(rules_yml) - 1, fp), sizeof(rules_yml) - 1);
	fclose(fp);
	f->cfg.enabled = 1;
	f->cfg.max_matches = 16;
	f->cfg.suppress = suppress;
	assert_int_equal(conf_list_push(&f->cfg.rules, f->path), 0);
	for (size_t i = 0; by && by[i]; i++)
		assert_int_equal(conf_list_push(&f->cfg.suppress_by, by[i]), 0);
	pthread_mutex_init(&f->sink.lock, NULL);
	buf_init(&err, 4096);
	f->d = detect_new(&f->cfg, on_alert, &f->sink, &err);
	if (!f->d)
		fail_msg("detect_new: %s", err.p ? err.p : "?");
	buf_fini(&err);
	fake_us = 1000000000;
	detect_set_clock(f->d, fake_clock, &fake_us);
	arena_init(&f->a, 0, 0);
}

static void fix_close(struct fix *f)
{
	detect_free(f->d);
	arena_fini(&f->a);
	conf_free(detect_keywords, &f->cfg);
	unlink(f->path);
	rmdir(f->dir);
	pthread_mutex_destroy(&f->sink.lock);
}

/* Runs one JSON event through detection. */
static void feed(struct fix *f, const char *json)
{
	event_clear(&f->ev);
	arena_reset(&f->a);
	pipeline_parse_record(RAW_JSON, json, strlen(json), &f->ev, &f->a);
	detect_event(f->d, &f->ev, &f->a);
}

static uint64_t suppressed_metric(const char *source)
{
	char labels[64];

	snprintf(labels, sizeof(labels), "source=\"%s\"", source);
	return metric_value(metric_get("mamori_detect_alerts_suppressed_total", "",
				       METRIC_COUNTER, labels));
}

static const struct seen *nth(const struct fix *f, size_t i)
{
	if (i >= f->sink.n)
		fail_msg("alert %zu expected, %zu seen", i + 1, f->sink.n);
	return &f->sink.s[i];
}

/* One rule, one source: the first alert passes, the rest of the window is
 * counted, and the first alert after it carries the count. */
static void test_window_and_count(void **state)
{
	struct fix f;
	uint64_t m0 = suppressed_metric("sigma");

	(void)state;
	fix_open(&f, 60, NULL);
	for (int i = 0; i < 5; i++) {
		feed(&f, "{\"message\":\"hit\",\"source\":{\"ip\":\"192.0.2.7\"}}");
		fake_us += 10 * 1000000;   /* 0, 10, ..., 40 s */
	}
	assert_int_equal(f.sink.n, 1);
	assert_string_equal(nth(&f, 0)->rule, HIT_ONE);
	assert_int_equal(nth(&f, 0)->suppressed, 0);
	assert_true(nth(&f, 0)->has_key);
	assert_string_equal(nth(&f, 0)->key, "source.ip=192.0.2.7");
	assert_int_equal(suppressed_metric("sigma") - m0, 4);
	/* 59.999999 s after the emitted alert: still inside. */
	fake_us = 1000000000 + 60 * 1000000 - 1;
	feed(&f, "{\"message\":\"hit\",\"source\":{\"ip\":\"192.0.2.7\"}}");
	assert_int_equal(f.sink.n, 1);
	/* 60 s: the window is over; this one carries the five counted. */
	fake_us = 1000000000 + 60 * 1000000;
	feed(&f, "{\"message\":\"hit\",\"source\":{\"ip\":\"192.0.2.7\"}}");
	assert_int_equal(f.sink.n, 2);
	assert_int_equal(nth(&f, 1)->suppressed, 5);
	/* A new window starts at that alert; the count starts over. */
	fake_us += 30 * 1000000;
	feed(&f, "{\"message\":\"hit\",\"source\":{\"ip\":\"192.0.2.7\"}}");
	fake_us += 31 * 1000000;
	feed(&f, "{\"message\":\"hit\",\"source\":{\"ip\":\"192.0.2.7\"}}");
	assert_int_equal(f.sink.n, 3);
	assert_int_equal(nth(&f, 2)->suppressed, 1);
	assert_int_equal(suppressed_metric("sigma") - m0, 6);
	fix_close(&f);
}

/* Per rule AND per key: another source, and another rule on the same
 * source, are not held back by the first. */
static void test_rule_and_key(void **state)
{
	struct fix f;

	(void)state;
	fix_open(&f, 60, NULL);
	feed(&f, "{\"message\":\"hit\",\"source\":{\"ip\":\"192.0.2.7\"}}");
	feed(&f, "{\"message\":\"hit\",\"source\":{\"ip\":\"192.0.2.8\"}}");
	feed(&f, "{\"message\":\"hit double\",\"source\":{\"ip\":\"192.0.2.7\"}}");
	/* hit one 192.0.2.7, hit one 192.0.2.8, hit two 192.0.2.7 (hit one
	 * 192.0.2.7 again is counted). */
	assert_int_equal(f.sink.n, 3);
	assert_string_equal(nth(&f, 0)->key, "source.ip=192.0.2.7");
	assert_string_equal(nth(&f, 1)->key, "source.ip=192.0.2.8");
	assert_string_equal(nth(&f, 2)->rule, HIT_TWO);
	assert_string_equal(nth(&f, 2)->key, "source.ip=192.0.2.7");
	feed(&f, "{\"message\":\"hit double\",\"source\":{\"ip\":\"192.0.2.7\"}}");
	assert_int_equal(f.sink.n, 3);
	fix_close(&f);
}

/* The default key: the first of source.ip, host.name, user.name,
 * destination.ip present (an empty value is absent); none present: one key
 * per rule. */
static void test_default_fields(void **state)
{
	static const struct {
		const char *json;
		const char *key;
	} cases[] = {
		{ "{\"message\":\"hit\",\"source\":{\"ip\":\"192.0.2.1\"},\"host\":{\"name\":\"web1\"}}",
		  "source.ip=192.0.2.1" },
		{ "{\"message\":\"hit\",\"source\":{\"ip\":\"\"},\"host\":{\"name\":\"web1\"},"
		  "\"user\":{\"name\":\"bob\"}}", "host.name=web1" },
		{ "{\"message\":\"hit\",\"user\":{\"name\":\"bob\"}}", "user.name=bob" },
		{ "{\"message\":\"hit\",\"destination\":{\"ip\":\"192.0.2.9\"}}",
		  "destination.ip=192.0.2.9" },
		{ "{\"message\":\"hit\",\"url\":{\"original\":\"http://a.example/\"}}", "" },
	};
	struct fix f;

	(void)state;
	fix_open(&f, 60, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		feed(&f, cases[i].json);
		assert_int_equal(f.sink.n, i + 1);
		assert_string_equal(nth(&f, i)->key, cases[i].key);
	}
	/* No key field again: the same per-rule key, counted. */
	feed(&f, "{\"message\":\"hit\",\"url\":{\"original\":\"http://b.example/\"}}");
	assert_int_equal(f.sink.n, 5);
	fix_close(&f);
}

/* detect.suppress_by as configured: entries split at commas, fields
 * outside the schema read by name. */
static void test_configured_fields(void **state)
{
	static const char *const by[] = { "labels.tenant, user.name", "host.name", NULL };
	struct fix f;

	(void)state;
	fix_open(&f, 60, by);
	feed(&f, "{\"message\":\"hit\",\"labels\":{\"tenant\":\"acme\"},\"source\":{\"ip\":\"192.0.2.1\"}}");
	feed(&f, "{\"message\":\"hit\",\"labels\":{\"tenant\":\"acme\"},\"source\":{\"ip\":\"192.0.2.2\"}}");
	feed(&f, "{\"message\":\"hit\",\"user\":{\"name\":\"bob\"},\"host\":{\"name\":\"web1\"}}");
	feed(&f, "{\"message\":\"hit\",\"host\":{\"name\":\"web1\"}}");
	/* acme twice (different sources, same key), bob, web1. */
	assert_int_equal(f.sink.n, 3);
	assert_string_equal(nth(&f, 0)->key, "labels.tenant=acme");
	assert_string_equal(nth(&f, 1)->key, "user.name=bob");
	assert_string_equal(nth(&f, 2)->key, "host.name=web1");
	fix_close(&f);
}

/* detect.suppress: 0 turns it off: every alert, no key, no count. */
static void test_off(void **state)
{
	struct fix f;
	uint64_t m0 = suppressed_metric("sigma");

	(void)state;
	fix_open(&f, 0, NULL);
	for (int i = 0; i < 4; i++)
		feed(&f, "{\"message\":\"hit\",\"source\":{\"ip\":\"192.0.2.7\"}}");
	assert_int_equal(f.sink.n, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_false(nth(&f, i)->has_key);
		assert_int_equal(nth(&f, i)->suppressed, 0);
	}
	assert_int_equal(suppressed_metric("sigma"), m0);
	fix_close(&f);
}

/* A correlation is keyed by its group: it fires every second event of a
 * source, but each source alerts once per window. */
static void test_correlation_group(void **state)
{
	struct fix f;
	uint64_t m0 = suppressed_metric("correlation");
	char json[256];

	(void)state;
	fix_open(&f, 60, NULL);
	for (int i = 0; i < 6; i++) {
		snprintf(json, sizeof(json),
			 "{\"@timestamp\":\"2026-03-03T10:00:%02dZ\",\"message\":\"burst\","
			 "\"source\":{\"ip\":\"198.51.100.%d\"}}", i, i % 2 ? 2 : 1);
		feed(&f, json);
	}
	/* Each group fired at its 2nd event (and again later: counted). */
	assert_int_equal(f.sink.n, 2);
	assert_string_equal(nth(&f, 0)->rule, BURST);
	assert_int_equal(nth(&f, 0)->source, DETECT_CORRELATION);
	assert_string_equal(nth(&f, 0)->key, "source.ip=198.51.100.1");
	assert_string_equal(nth(&f, 1)->key, "source.ip=198.51.100.2");
	assert_int_equal(suppressed_metric("correlation") - m0, 0);
	for (int i = 6; i < 10; i++) {
		snprintf(json, sizeof(json),
			 "{\"@timestamp\":\"2026-03-03T10:00:%02dZ\",\"message\":\"burst\","
			 "\"source\":{\"ip\":\"198.51.100.1\"}}", i);
		feed(&f, json);
	}
	assert_int_equal(f.sink.n, 2);
	assert_int_equal(suppressed_metric("correlation") - m0, 2);
	fake_us += 61 * 1000000;
	feed(&f, "{\"@timestamp\":\"2026-03-03T10:00:20Z\",\"message\":\"burst\","
		 "\"source\":{\"ip\":\"198.51.100.1\"}}");
	feed(&f, "{\"@timestamp\":\"2026-03-03T10:00:21Z\",\"message\":\"burst\","
		 "\"source\":{\"ip\":\"198.51.100.1\"}}");
	assert_int_equal(f.sink.n, 3);
	assert_int_equal(nth(&f, 2)->suppressed, 2);
	fix_close(&f);
}

/* Intel hits: the indicator joins the key. */
static void test_intel_key(void **state)
{
	struct intel_builder *b = intel_builder_new();
	struct intel_meta m = { .source = "test", .confidence = 90 };
	struct intel_set *set;
	struct fix f;
	uint64_t m0 = suppressed_metric("intel");

	(void)state;
	assert_int_equal(intel_builder_add(b, INTEL_DOMAIN, "evil.example", 12, &m), 0);
	assert_int_equal(intel_builder_add(b, INTEL_DOMAIN, "bad.example", 11, &m), 0);
	set = intel_builder_finish(b);
	assert_non_null(set);
	fix_open(&f, 60, NULL);
	detect_set_intel(f.d, set);
	feed(&f, "{\"source\":{\"ip\":\"10.0.0.5\"},\"dns\":{\"question\":{\"name\":\"a.evil.example\"}}}");
	feed(&f, "{\"source\":{\"ip\":\"10.0.0.5\"},\"dns\":{\"question\":{\"name\":\"b.evil.example\"}}}");
	feed(&f, "{\"source\":{\"ip\":\"10.0.0.5\"},\"dns\":{\"question\":{\"name\":\"bad.example\"}}}");
	feed(&f, "{\"source\":{\"ip\":\"10.0.0.6\"},\"dns\":{\"question\":{\"name\":\"evil.example\"}}}");
	assert_int_equal(f.sink.n, 3);
	assert_int_equal(nth(&f, 0)->source, DETECT_INTEL);
	assert_string_equal(nth(&f, 0)->key, "source.ip=10.0.0.5, indicator=evil.example");
	assert_string_equal(nth(&f, 1)->key, "source.ip=10.0.0.5, indicator=bad.example");
	assert_string_equal(nth(&f, 2)->key, "source.ip=10.0.0.6, indicator=evil.example");
	assert_int_equal(suppressed_metric("intel") - m0, 1);
	fix_close(&f);
}

/* A reload keeps what was emitted (rule ids do not change); one that
 * turns suppression off lets everything through. */
static void test_reload(void **state)
{
	struct fix f;
	struct buf err;

	(void)state;
	fix_open(&f, 60, NULL);
	buf_init(&err, 4096);
	feed(&f, "{\"message\":\"hit\",\"source\":{\"ip\":\"192.0.2.7\"}}");
	assert_int_equal(detect_reload(f.d, &f.cfg, &err), 0);
	feed(&f, "{\"message\":\"hit\",\"source\":{\"ip\":\"192.0.2.7\"}}");
	assert_int_equal(f.sink.n, 1);
	f.cfg.suppress = 0;
	assert_int_equal(detect_reload(f.d, &f.cfg, &err), 0);
	feed(&f, "{\"message\":\"hit\",\"source\":{\"ip\":\"192.0.2.7\"}}");
	feed(&f, "{\"message\":\"hit\",\"source\":{\"ip\":\"192.0.2.7\"}}");
	assert_int_equal(f.sink.n, 3);
	buf_fini(&err);
	fix_close(&f);

	/* Off at start, on after a reload: the table is made then. */
	fix_open(&f, 0, NULL);
	buf_init(&err, 4096);
	f.cfg.suppress = 60;
	assert_int_equal(detect_reload(f.d, &f.cfg, &err), 0);
	feed(&f, "{\"message\":\"hit\",\"source\":{\"ip\":\"192.0.2.7\"}}");
	feed(&f, "{\"message\":\"hit\",\"source\":{\"ip\":\"192.0.2.7\"}}");
	assert_int_equal(f.sink.n, 1);
	buf_fini(&err);
	fix_close(&f);
}

/* The table is bounded: after far more keys than it holds, the oldest
 * keys were evicted (they alert again) while the newest are still held.
 * The clock stands still, as it does within one batch. */
static void test_bounded(void **state)
{
	enum { KEYS = 50000, PROBE = 200 };
	struct fix f;
	char json[160];
	unsigned long before;

	(void)state;
	fix_open(&f, 3600, NULL);
	for (int i = 0; i < KEYS; i++) {
		snprintf(json, sizeof(json), "{\"message\":\"hit\",\"user\":{\"name\":\"u%d\"}}", i);
		feed(&f, json);
	}
	assert_int_equal(atomic_load(&f.sink.total), KEYS);
	before = atomic_load(&f.sink.total);
	for (int i = KEYS - PROBE; i < KEYS; i++) {
		snprintf(json, sizeof(json), "{\"message\":\"hit\",\"user\":{\"name\":\"u%d\"}}", i);
		feed(&f, json);
	}
	assert_int_equal(atomic_load(&f.sink.total) - before, 0);
	for (int i = 0; i < PROBE; i++) {
		snprintf(json, sizeof(json), "{\"message\":\"hit\",\"user\":{\"name\":\"u%d\"}}", i);
		feed(&f, json);
	}
	assert_int_equal(atomic_load(&f.sink.total) - before, PROBE);
	fix_close(&f);
}

/* Workers alerting on one key at once: exactly one alert passes, the
 * others are all counted. */
struct worker {
	struct detect *d;
	int n;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	static const char json[] = "{\"message\":\"hit\",\"source\":{\"ip\":\"203.0.113.1\"}}";
	struct arena a;
	struct event *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return NULL;
	arena_init(&a, 0, 0);
	for (int i = 0; i < w->n; i++) {
		event_clear(ev);
		arena_reset(&a);
		pipeline_parse_record(RAW_JSON, json, sizeof(json) - 1, ev, &a);
		detect_event(w->d, ev, &a);
	}
	arena_fini(&a);
	free(ev);
	return NULL;
}

static void test_threads(void **state)
{
	enum { THREADS = 4, PER = 2000 };
	struct fix f;
	pthread_t t[THREADS];
	struct worker w = { NULL, PER };
	uint64_t m0 = suppressed_metric("sigma");

	(void)state;
	fix_open(&f, 60, NULL);
	w.d = f.d;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, work, &w), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&f.sink.total), 1);
	assert_int_equal(suppressed_metric("sigma") - m0, THREADS * PER - 1);
	fix_close(&f);
}

/* The rules shipped in rules/ load through detect.bundled_rules, all of
 * them: none unsupported, none in error. */
static void test_bundled_load(void **state)
{
	struct detect_config cfg;
	struct detect *d;
	struct buf err;
	uint32_t rules = 0;
	size_t unsupported = 1, errors = 1;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	buf_init(&err, 4096);
	assert_int_equal(conf_apply(NULL, "detect", detect_keywords, &cfg, &err), 0);
	assert_true(cfg.bundled_rules);
	assert_int_equal(cfg.suppress, 60);
	d = detect_new(&cfg, NULL, NULL, &err);
	if (!d)
		fail_msg("detect_new: %s", err.p ? err.p : "?");
	detect_counts(d, &rules, &unsupported, &errors);
	assert_true(rules >= 19);
	assert_int_equal(unsupported, 0);
	assert_int_equal(errors, 0);
	detect_free(d);
	conf_free(detect_keywords, &cfg);
	buf_fini(&err);
}

int main(int argc, char **argv)
{
	hs_child_exec_self(argc > 1 ? argv[1] : NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window_and_count),
		cmocka_unit_test(test_rule_and_key),
		cmocka_unit_test(test_default_fields),
		cmocka_unit_test(test_configured_fields),
		cmocka_unit_test(test_off),
		cmocka_unit_test(test_correlation_group),
		cmocka_unit_test(test_intel_key),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_bundled_load),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	metrics_fini();
	return rc;
}
