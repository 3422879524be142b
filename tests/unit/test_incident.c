/*
 * The SOC back-end: grouping of alerts into incidents by key and window,
 * escalation thresholds, the lifecycle (legal and illegal transitions),
 * comments and history, persistence across a restart, filters and paging,
 * the queue (drops when full, many producers), the on_incident hook, and
 * the HTTP routes end to end on 127.0.0.1 with an ephemeral port and a raw
 * socket client. Every database lives in a fresh temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "api/api.h"
#include "api/api_soc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/event.h"
#include "core/metrics.h"
#include "detect/detect.h"
#include "detect/incident.h"
#include "store/store.h"

#define TOKEN "test-token-0123456789abcdef"
#define T0 1714564800000000LL          /* 2024-05-01T12:00:00Z */
#define MIN (60 * 1000000LL)

/* ---- a temporary directory per test ------------------------------------ */

struct tmpdb {
	char dir[64];
	char path[128];
};

static void tmp_make(struct tmpdb *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/mamori-soc-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/soc.db", t->dir);
}

static void tmp_remove(struct tmpdb *t)
{
	static const char *const ext[] = { "", "-wal", "-shm", "-journal" };
	char p[160];

	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", t->path, ext[i]);
		unlink(p);
	}
	rmdir(t->dir);
}

static struct soc_db *open_db(struct tmpdb *t, soc_incident_fn fn, void *ctx,
			      int64_t queue)
{
	struct soc_config cfg = {
		.path = t->path, .window = 3600, .queue = queue, .batch = 64,
		.retention = 0,
	};
	struct soc_db *db = NULL;

	assert_int_equal(soc_open(&cfg, fn, ctx, &db), 0);
	assert_non_null(db);
	return db;
}

/* An alert of rule with one key pair (or none when ip is NULL). */
struct test_alert {
	struct soc_alert a;
	struct soc_key_field key[2];
	const char *tags[2];
	char event[256];
};

static void mk_alert(struct test_alert *t, const char *rule, enum soc_level level,
		     const char *ip, int64_t ts)
{
	memset(t, 0, sizeof(*t));
	t->tags[0] = "attack.t1059.001";
	t->tags[1] = "attack.execution";
	t->key[0].name = "source.ip";
	t->key[0].value = ip;
	snprintf(t->event, sizeof(t->event),
		 "{\"@timestamp\":\"2024-05-01T12:00:00.000Z\",\"source.ip\":\"%s\",\"message\":\"x\"}",
		 ip ? ip : "-");
	t->a.rule_id = rule;
	t->a.rule_title = "Suspicious thing";
	t->a.level = level;
	t->a.source = SOC_SOURCE_SIGMA;
	t->a.tags = t->tags;
	t->a.n_tags = 2;
	t->a.event_json = t->event;
	t->a.event_json_len = strlen(t->event);
	t->a.event_id = 42;
	t->a.event_ts_us = ts;
	t->a.key = t->key;
	t->a.n_key = ip ? 1 : 0;
	t->a.ts_us = ts;
}

static struct soc_add_result add(struct soc_db *db, const char *rule,
				 enum soc_level level, const char *ip, int64_t ts)
{
	struct test_alert t;
	struct soc_add_result r;

	mk_alert(&t, rule, level, ip, ts);
	memset(&r, 0, sizeof(r));
	assert_int_equal(soc_alert_add(db, &t.a, &r), 0);
	return r;
}

static json_t *load_json(struct buf *b)
{
	json_error_t e;
	json_t *j = json_loadb(b->p, b->len, 0, &e);

	if (j == NULL)
		fail_msg("bad JSON (%s): %.*s", e.text, (int)(b->len > 400 ? 400 : b->len), b->p);
	return j;
}

static json_t *incident_get(struct soc_db *db, int64_t id)
{
	struct buf b;
	json_t *j;

	buf_init(&b, 0);
	assert_int_equal(soc_incident_json(db, id, 20, &b), 0);
	j = load_json(&b);
	buf_fini(&b);
	return j;
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static json_int_t jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* ---- pure rules -------------------------------------------------------- */

static void test_escalate_table(void **state)
{
	static const struct { enum soc_level l; uint64_t n; enum soc_level want; } cases[] = {
		{ SOC_LEVEL_LOW, 1, SOC_LEVEL_LOW },
		{ SOC_LEVEL_LOW, 9, SOC_LEVEL_LOW },
		{ SOC_LEVEL_LOW, 10, SOC_LEVEL_MEDIUM },
		{ SOC_LEVEL_LOW, 99, SOC_LEVEL_MEDIUM },
		{ SOC_LEVEL_LOW, 100, SOC_LEVEL_HIGH },
		{ SOC_LEVEL_INFORMATIONAL, 100000, SOC_LEVEL_MEDIUM },
		{ SOC_LEVEL_HIGH, 10, SOC_LEVEL_CRITICAL },
		{ SOC_LEVEL_HIGH, 100, SOC_LEVEL_CRITICAL },
		{ SOC_LEVEL_CRITICAL, 1000, SOC_LEVEL_CRITICAL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(soc_escalate(cases[i].l, cases[i].n), cases[i].want);
}

static void test_transition_table(void **state)
{
	/* rows: from; columns: to (new, acknowledged, resolved, false_positive) */
	static const int ok[SOC_STATUS_COUNT][SOC_STATUS_COUNT] = {
		{ 0, 1, 0, 1 },
		{ 1, 0, 1, 1 },
		{ 1, 0, 0, 0 },
		{ 1, 0, 0, 0 },
	};

	(void)state;
	for (int f = 0; f < SOC_STATUS_COUNT; f++)
		for (int t = 0; t < SOC_STATUS_COUNT; t++)
			if (f != t && soc_transition_ok((enum soc_status)f,
							(enum soc_status)t) != ok[f][t])
				fail_msg("%s -> %s", soc_status_name((enum soc_status)f),
					 soc_status_name((enum soc_status)t));
}

static void test_names(void **state)
{
	enum soc_level l;
	enum soc_status s;

	(void)state;
	assert_int_equal(soc_level_parse("high", 4, &l), 0);
	assert_int_equal(l, SOC_LEVEL_HIGH);
	assert_int_not_equal(soc_level_parse("hig", 3, &l), 0);
	assert_int_equal(soc_status_parse("false_positive", 14, &s), 0);
	assert_int_equal(s, SOC_STATUS_FALSE_POSITIVE);
	assert_int_not_equal(soc_status_parse("closed", 6, &s), 0);
	assert_string_equal(soc_source_name(SOC_SOURCE_INTEL), "intel");
	assert_string_equal(soc_change_name(SOC_CHANGE_ESCALATED), "escalated");
}

static void test_route_match(void **state)
{
	static const struct { const char *path; enum api_soc_route r; int64_t id; } cases[] = {
		{ "/api/v1/alerts", API_SOC_ALERTS, 0 },
		{ "/api/v1/alerts/12", API_SOC_ALERT, 12 },
		{ "/api/v1/alerts/abc", API_SOC_ALERT, 0 },
		{ "/api/v1/alerts/012", API_SOC_ALERT, 0 },
		{ "/api/v1/alerts/1234567890123456", API_SOC_ALERT, 0 },
		{ "/api/v1/alerts/", API_SOC_NONE, 0 },
		{ "/api/v1/alerts/1/comments", API_SOC_NONE, 0 },
		{ "/api/v1/alertsx", API_SOC_NONE, 0 },
		{ "/api/v1/incidents", API_SOC_INCIDENTS, 0 },
		{ "/api/v1/incidents/7", API_SOC_INCIDENT, 7 },
		{ "/api/v1/incidents/7/comments", API_SOC_COMMENTS, 7 },
		{ "/api/v1/incidents/7/comments/", API_SOC_NONE, 0 },
		{ "/api/v1/incidents/7/history", API_SOC_NONE, 0 },
		{ "/api/v1/events", API_SOC_NONE, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct api_soc_target t;
		enum api_soc_route r = api_soc_match(cases[i].path, &t);

		if (r != cases[i].r || (r != API_SOC_NONE && t.id != cases[i].id))
			fail_msg("%s: route %d id %lld", cases[i].path, r, (long long)t.id);
	}
	assert_true(api_soc_method_ok(API_SOC_INCIDENT, "PATCH"));
	assert_false(api_soc_method_ok(API_SOC_INCIDENTS, "PATCH"));
	assert_true(api_soc_method_ok(API_SOC_COMMENTS, "POST"));
	assert_false(api_soc_method_ok(API_SOC_COMMENTS, "GET"));
	assert_string_equal(api_soc_allow(API_SOC_COMMENTS), "POST");
}

/* ---- grouping and escalation ------------------------------------------- */

static void test_grouping(void **state)
{
	struct tmpdb t;
	struct soc_db *db;
	struct soc_add_result r1, r2, r3, r4, r5;
	struct test_alert ta;
	struct soc_key_field two[2] = {
		{ "source.ip", "10.0.0.9" }, { "host.name", "web1" },
	}, rev[2] = {
		{ "host.name", "web1" }, { "source.ip", "10.0.0.9" },
	}, dup[2] = {
		{ "host.name", "a" }, { "host.name", "b" },
	};
	struct soc_add_result ra, rb;

	(void)state;
	tmp_make(&t);
	db = open_db(&t, NULL, NULL, 0);
	r1 = add(db, "rule-a", SOC_LEVEL_MEDIUM, "10.0.0.1", T0);
	assert_int_equal(r1.kind, SOC_CHANGE_OPENED);
	assert_int_equal(r1.count, 1);
	assert_int_equal(r1.severity, SOC_LEVEL_MEDIUM);
	r2 = add(db, "rule-a", SOC_LEVEL_MEDIUM, "10.0.0.1", T0 + 10 * MIN);
	assert_int_equal(r2.kind, SOC_CHANGE_UPDATED);
	assert_int_equal(r2.incident_id, r1.incident_id);
	assert_int_equal(r2.count, 2);
	assert_true(r2.alert_id > r1.alert_id);
	/* another entity, another rule: their own incidents */
	r3 = add(db, "rule-a", SOC_LEVEL_MEDIUM, "10.0.0.2", T0 + 11 * MIN);
	assert_int_equal(r3.kind, SOC_CHANGE_OPENED);
	assert_int_not_equal(r3.incident_id, r1.incident_id);
	r4 = add(db, "rule-b", SOC_LEVEL_MEDIUM, "10.0.0.1", T0 + 12 * MIN);
	assert_int_equal(r4.kind, SOC_CHANGE_OPENED);
	/* past the window (1 h after last_seen): a new incident */
	r5 = add(db, "rule-a", SOC_LEVEL_MEDIUM, "10.0.0.1", T0 + 10 * MIN + 61 * MIN);
	assert_int_equal(r5.kind, SOC_CHANGE_OPENED);
	assert_int_not_equal(r5.incident_id, r1.incident_id);
	/* just inside the window of the newest one */
	r5 = add(db, "rule-a", SOC_LEVEL_MEDIUM, "10.0.0.1", T0 + 10 * MIN + 121 * MIN);
	assert_int_equal(r5.kind, SOC_CHANGE_UPDATED);

	/* key pairs in any order make the same key; no key at all groups by rule */
	mk_alert(&ta, "rule-c", SOC_LEVEL_LOW, NULL, T0);
	ta.a.key = two;
	ta.a.n_key = 2;
	assert_int_equal(soc_alert_add(db, &ta.a, &ra), 0);
	ta.a.key = rev;
	assert_int_equal(soc_alert_add(db, &ta.a, &rb), 0);
	assert_int_equal(rb.kind, SOC_CHANGE_UPDATED);
	assert_int_equal(rb.incident_id, ra.incident_id);
	ta.a.key = dup;
	assert_int_equal(soc_alert_add(db, &ta.a, &rb), M_EINVAL);
	ta.a.n_key = 0;
	assert_int_equal(soc_alert_add(db, &ta.a, &rb), 0);
	assert_int_equal(rb.kind, SOC_CHANGE_OPENED);
	assert_int_equal(soc_alert_add(db, &ta.a, &rb), 0);
	assert_int_equal(rb.kind, SOC_CHANGE_UPDATED);

	/* bad alerts are refused before the queue */
	mk_alert(&ta, "", SOC_LEVEL_LOW, "1.1.1.1", T0);
	assert_int_equal(soc_alert_submit(db, &ta.a), M_EINVAL);
	mk_alert(&ta, "r", (enum soc_level)9, "1.1.1.1", T0);
	assert_int_equal(soc_alert_submit(db, &ta.a), M_EINVAL);
	mk_alert(&ta, "r", SOC_LEVEL_LOW, "1.1.1.1", T0);
	ta.key[0].name = "bad name";
	assert_int_equal(soc_alert_submit(db, &ta.a), M_EINVAL);
	soc_close(db);
	tmp_remove(&t);
}

static void test_escalation(void **state)
{
	struct tmpdb t;
	struct soc_db *db;
	struct soc_add_result r;
	json_t *j, *h;
	int escalations = 0;

	(void)state;
	tmp_make(&t);
	db = open_db(&t, NULL, NULL, 0);
	for (int i = 1; i <= 100; i++) {
		r = add(db, "noisy", SOC_LEVEL_LOW, "10.1.1.1", T0 + i * 1000000LL);
		if (i == 1)
			assert_int_equal(r.kind, SOC_CHANGE_OPENED);
		else if (i == 10 || i == 100)
			assert_int_equal(r.kind, SOC_CHANGE_ESCALATED);
		else
			assert_int_equal(r.kind, SOC_CHANGE_UPDATED);
		assert_int_equal(r.severity, i < 10 ? SOC_LEVEL_LOW
					     : i < 100 ? SOC_LEVEL_MEDIUM : SOC_LEVEL_HIGH);
		assert_int_equal(r.count, (uint64_t)i);
	}
	/* a critical rule cannot go higher: never "escalated" */
	for (int i = 1; i <= 12; i++) {
		r = add(db, "crit", SOC_LEVEL_CRITICAL, "10.1.1.1", T0 + i * 1000000LL);
		assert_int_equal(r.severity, SOC_LEVEL_CRITICAL);
		assert_int_not_equal(r.kind, SOC_CHANGE_ESCALATED);
	}
	/* a higher level alert raises the base level of the incident */
	r = add(db, "mixed", SOC_LEVEL_LOW, "10.2.2.2", T0);
	r = add(db, "mixed", SOC_LEVEL_HIGH, "10.2.2.2", T0 + 1000000);
	assert_int_equal(r.kind, SOC_CHANGE_ESCALATED);
	assert_int_equal(r.severity, SOC_LEVEL_HIGH);

	j = incident_get(db, 1);
	assert_string_equal(jstr(j, "severity"), "high");
	assert_string_equal(jstr(j, "level"), "low");
	assert_int_equal(jint(j, "count"), 100);
	assert_int_equal(jint(j, "alerts_stored"), 100);
	assert_int_equal(json_array_size(json_object_get(j, "alerts")), 20);
	h = json_object_get(j, "history");
	for (size_t i = 0; i < json_array_size(h); i++)
		if (strcmp(jstr(json_array_get(h, i), "field"), "severity") == 0) {
			assert_string_equal(jstr(json_array_get(h, i), "actor"), "mamori");
			escalations++;
		}
	assert_int_equal(escalations, 2);
	json_decref(j);
	soc_close(db);
	tmp_remove(&t);
}

/* ---- lifecycle, comments, history --------------------------------------- */

static void test_lifecycle(void **state)
{
	struct tmpdb t;
	struct soc_db *db;
	struct soc_add_result r, r2;
	enum soc_status st;
	struct soc_update u = { .actor = "alice" };
	char why[256];
	json_t *j;

	(void)state;
	tmp_make(&t);
	db = open_db(&t, NULL, NULL, 0);
	r = add(db, "r1", SOC_LEVEL_HIGH, "10.0.0.1", T0);
	u.status = &st;

	st = SOC_STATUS_RESOLVED;
	assert_int_equal(soc_incident_update(db, r.incident_id, &u, why, sizeof(why)), M_EINVAL);
	assert_non_null(strstr(why, "from new to resolved"));
	st = SOC_STATUS_ACKNOWLEDGED;
	assert_int_equal(soc_incident_update(db, r.incident_id, &u, why, sizeof(why)), 0);
	/* the same status again is not a change */
	assert_int_equal(soc_incident_update(db, r.incident_id, &u, why, sizeof(why)), 0);
	st = SOC_STATUS_RESOLVED;
	assert_int_equal(soc_incident_update(db, r.incident_id, &u, why, sizeof(why)), 0);
	st = SOC_STATUS_ACKNOWLEDGED;
	assert_int_equal(soc_incident_update(db, r.incident_id, &u, why, sizeof(why)), M_EINVAL);
	assert_non_null(strstr(why, "reopen"));

	/* a resolved incident never absorbs alerts: a new one opens */
	r2 = add(db, "r1", SOC_LEVEL_HIGH, "10.0.0.1", T0 + MIN);
	assert_int_equal(r2.kind, SOC_CHANGE_OPENED);
	assert_int_not_equal(r2.incident_id, r.incident_id);
	/* false positive straight from new, then reopened */
	st = SOC_STATUS_FALSE_POSITIVE;
	assert_int_equal(soc_incident_update(db, r2.incident_id, &u, why, sizeof(why)), 0);
	st = SOC_STATUS_NEW;
	assert_int_equal(soc_incident_update(db, r2.incident_id, &u, why, sizeof(why)), 0);
	/* reopened and within the window: absorbs again */
	r = add(db, "r1", SOC_LEVEL_HIGH, "10.0.0.1", T0 + 2 * MIN);
	assert_int_equal(r.incident_id, r2.incident_id);

	/* assignment, then unassignment */
	u.status = NULL;
	u.assignee = "bob";
	assert_int_equal(soc_incident_update(db, r2.incident_id, &u, why, sizeof(why)), 0);
	j = incident_get(db, r2.incident_id);
	assert_string_equal(jstr(j, "assignee"), "bob");
	assert_string_equal(jstr(j, "status"), "new");
	json_decref(j);
	u.assignee = "";
	assert_int_equal(soc_incident_update(db, r2.incident_id, &u, why, sizeof(why)), 0);
	j = incident_get(db, r2.incident_id);
	assert_true(json_is_null(json_object_get(j, "assignee")));
	json_decref(j);

	/* unknown incidents, bad updates */
	assert_int_equal(soc_incident_update(db, 9999, &u, why, sizeof(why)), M_ENOTFOUND);
	u.actor = "";
	assert_int_equal(soc_incident_update(db, r2.incident_id, &u, why, sizeof(why)), M_EINVAL);
	soc_close(db);
	tmp_remove(&t);
}

static void test_comments_history(void **state)
{
	static const char *const want[][4] = {
		/* actor, field, from, to */
		{ "mamori", "status", NULL, "new" },
		{ "alice", "status", "new", "acknowledged" },
		{ "alice", "assignee", NULL, "alice" },
		{ "carol", "comment", NULL, NULL },
		{ "alice", "status", "acknowledged", "resolved" },
	};
	struct tmpdb t;
	struct soc_db *db;
	struct soc_add_result r;
	enum soc_status st = SOC_STATUS_ACKNOWLEDGED;
	struct soc_update u = { .actor = "alice", .status = &st, .assignee = "alice" };
	int64_t cid = 0, cid2 = 0;
	json_t *j, *c, *h;

	(void)state;
	tmp_make(&t);
	db = open_db(&t, NULL, NULL, 0);
	r = add(db, "r1", SOC_LEVEL_MEDIUM, "10.0.0.1", T0);
	assert_int_equal(soc_incident_update(db, r.incident_id, &u, NULL, 0), 0);
	assert_int_equal(soc_incident_comment(db, r.incident_id, "carol",
					      "looks like a scanner \"quoted\"\n<b>", &cid), 0);
	assert_true(cid > 0);
	st = SOC_STATUS_RESOLVED;
	u.assignee = NULL;
	assert_int_equal(soc_incident_update(db, r.incident_id, &u, NULL, 0), 0);
	assert_int_equal(soc_incident_comment(db, r.incident_id, "dave", "closing", &cid2), 0);
	assert_true(cid2 > cid);
	assert_int_equal(soc_incident_comment(db, r.incident_id, "", "x", NULL), M_EINVAL);
	assert_int_equal(soc_incident_comment(db, r.incident_id, "x", "", NULL), M_EINVAL);
	assert_int_equal(soc_incident_comment(db, 777, "x", "y", NULL), M_ENOTFOUND);

	j = incident_get(db, r.incident_id);
	c = json_object_get(j, "comments");
	assert_int_equal(json_array_size(c), 2);
	assert_string_equal(jstr(json_array_get(c, 0), "author"), "carol");
	assert_string_equal(jstr(json_array_get(c, 0), "text"),
			    "looks like a scanner \"quoted\"\n<b>");
	assert_int_equal(jint(json_array_get(c, 0), "id"), cid);
	assert_non_null(jstr(json_array_get(c, 0), "time"));
	h = json_object_get(j, "history");
	assert_int_equal(json_array_size(h), 6);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		json_t *e = json_array_get(h, i);

		assert_string_equal(jstr(e, "actor"), want[i][0]);
		assert_string_equal(jstr(e, "field"), want[i][1]);
		if (want[i][2])
			assert_string_equal(jstr(e, "from"), want[i][2]);
		else
			assert_true(json_is_null(json_object_get(e, "from")));
		if (want[i][3])
			assert_string_equal(jstr(e, "to"), want[i][3]);
		assert_non_null(jstr(e, "time"));
	}
	assert_string_equal(jstr(j, "status"), "resolved");
	json_decref(j);
	soc_close(db);
	tmp_remove(&t);
}

static void test_comment_limit(void **state)
{
	struct tmpdb t;
	struct soc_db *db;
	struct soc_add_result r;
	int64_t cid;

	(void)state;
	tmp_make(&t);
	db = open_db(&t, NULL, NULL, 0);
	r = add(db, "chatty", SOC_LEVEL_LOW, "10.0.0.1", T0);
	for (int i = 0; i < SOC_MAX_COMMENTS; i++)
		assert_int_equal(soc_incident_comment(db, r.incident_id, "a", "b", &cid), 0);
	assert_int_equal(soc_incident_comment(db, r.incident_id, "a", "b", &cid), M_ELIMIT);
	soc_close(db);
	tmp_remove(&t);
}

static void test_open_errors(void **state)
{
	struct soc_config cfg = { .path = NULL, .window = 60 };
	struct soc_db *db = (struct soc_db *)1;
	struct tmpdb t;
	FILE *f;

	(void)state;
	log_set_level(LOG_FATAL);
	assert_int_equal(soc_open(&cfg, NULL, NULL, &db), M_EINVAL);
	assert_null(db);
	cfg.path = "";
	assert_int_equal(soc_open(&cfg, NULL, NULL, &db), M_EINVAL);
	cfg.path = "/nonexistent-dir/soc.db";
	assert_int_equal(soc_open(&cfg, NULL, NULL, &db), M_EIO);
	cfg.path = "/tmp/x.db";
	cfg.window = -1;
	assert_int_equal(soc_open(&cfg, NULL, NULL, &db), M_EINVAL);
	/* a file that is not a database */
	tmp_make(&t);
	f = fopen(t.path, "w");
	assert_non_null(f);
	fputs("this is not an SQLite database, not even close; padding padding padding "
	      "padding padding padding padding padding padding padding padding", f);
	fclose(f);
	cfg.path = t.path;
	cfg.window = 60;
	assert_int_equal(soc_open(&cfg, NULL, NULL, &db), M_EIO);
	tmp_remove(&t);
	soc_close(NULL);
	assert_int_equal(soc_flush(NULL, 0), 0);
	assert_int_equal(soc_alert_submit(NULL, NULL), M_EINVAL);
	log_set_level(LOG_ERROR);
}

/* ---- the hook and the queue -------------------------------------------- */

struct recorder {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int counts[8];
	int64_t last_incident;
	char last_entity[128];
	int block;          /* the hook waits while set */
	int blocked;        /* the hook is waiting */
};

static void record(void *ctx, const struct soc_incident_change *c)
{
	struct recorder *r = ctx;

	pthread_mutex_lock(&r->mu);
	if ((unsigned)c->kind < 8)
		r->counts[c->kind]++;
	r->last_incident = c->incident_id;
	snprintf(r->last_entity, sizeof(r->last_entity), "%s", c->entity ? c->entity : "");
	while (r->block) {
		r->blocked = 1;
		pthread_cond_broadcast(&r->cv);
		pthread_cond_wait(&r->cv, &r->mu);
	}
	r->blocked = 0;
	pthread_mutex_unlock(&r->mu);
}

static void test_hook(void **state)
{
	struct recorder rec = { .mu = PTHREAD_MUTEX_INITIALIZER,
				.cv = PTHREAD_COND_INITIALIZER };
	struct tmpdb t;
	struct soc_db *db;
	struct test_alert ta;
	enum soc_status st = SOC_STATUS_ACKNOWLEDGED;
	struct soc_update u = { .actor = "alice", .status = &st, .assignee = "alice" };
	struct soc_stats s;

	(void)state;
	tmp_make(&t);
	db = open_db(&t, record, &rec, 0);
	for (int i = 0; i < 12; i++) {
		mk_alert(&ta, "hooked", SOC_LEVEL_LOW, "10.9.9.9", T0 + i * 1000000LL);
		assert_int_equal(soc_alert_submit(db, &ta.a), 0);
	}
	assert_int_equal(soc_flush(db, 10000), 0);
	assert_int_equal(rec.counts[SOC_CHANGE_OPENED], 1);
	assert_int_equal(rec.counts[SOC_CHANGE_ESCALATED], 1);
	assert_int_equal(rec.counts[SOC_CHANGE_UPDATED], 10);
	assert_string_equal(rec.last_entity, "{\"source.ip\":\"10.9.9.9\"}");
	assert_int_equal(soc_incident_update(db, rec.last_incident, &u, NULL, 0), 0);
	assert_int_equal(rec.counts[SOC_CHANGE_STATUS], 1);
	assert_int_equal(rec.counts[SOC_CHANGE_ASSIGNED], 1);
	assert_int_equal(soc_incident_comment(db, rec.last_incident, "a", "b", NULL), 0);
	assert_int_equal(rec.counts[SOC_CHANGE_COMMENTED], 1);
	soc_get_stats(db, &s);
	assert_int_equal(s.submitted, 12);
	assert_int_equal(s.stored, 12);
	assert_int_equal(s.dropped, 0);
	soc_close(db);
	tmp_remove(&t);
}

/* The writer is held inside the hook; the queue fills and drops. */
static void test_queue_full(void **state)
{
	struct recorder rec = { .mu = PTHREAD_MUTEX_INITIALIZER,
				.cv = PTHREAD_COND_INITIALIZER, .block = 1 };
	struct tmpdb t;
	struct soc_db *db;
	struct test_alert ta;
	struct soc_stats s;
	int ok = 0, full = 0;

	(void)state;
	tmp_make(&t);
	db = open_db(&t, record, &rec, 16);
	mk_alert(&ta, "storm", SOC_LEVEL_LOW, "10.0.0.1", T0);
	assert_int_equal(soc_alert_submit(db, &ta.a), 0);
	pthread_mutex_lock(&rec.mu);
	while (!rec.blocked)
		pthread_cond_wait(&rec.cv, &rec.mu);
	pthread_mutex_unlock(&rec.mu);
	for (int i = 0; i < 40; i++) {
		int rc = soc_alert_submit(db, &ta.a);

		if (rc == 0)
			ok++;
		else if (rc == M_EAGAIN)
			full++;
	}
	assert_int_equal(ok, 16);
	assert_int_equal(full, 24);
	assert_int_equal(soc_flush(db, 50), M_EAGAIN);   /* still held */
	pthread_mutex_lock(&rec.mu);
	rec.block = 0;
	pthread_cond_broadcast(&rec.cv);
	pthread_mutex_unlock(&rec.mu);
	assert_int_equal(soc_flush(db, 10000), 0);
	soc_get_stats(db, &s);
	assert_int_equal(s.submitted, 17);
	assert_int_equal(s.dropped, 24);
	assert_int_equal(s.stored, 17);
	assert_int_equal(s.queued, 0);
	soc_close(db);
	tmp_remove(&t);
}

struct producer {
	struct soc_db *db;
	int n, accepted;
	char ip[32];
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	struct test_alert ta;

	for (int i = 0; i < p->n; i++) {
		mk_alert(&ta, i % 2 ? "odd" : "even", SOC_LEVEL_MEDIUM, p->ip,
			 T0 + i * 1000LL);
		if (soc_alert_submit(p->db, &ta.a) == 0)
			p->accepted++;
	}
	return NULL;
}

struct reader {
	struct soc_db *db;
	_Atomic int stop;
	int reads, errors;
};

/* Reads while the writer writes: WAL readers must never fail or block. */
static void *read_loop(void *arg)
{
	struct reader *r = arg;
	struct soc_incident_query q = { .limit = 10 };
	struct buf b;

	buf_init(&b, 0);
	while (!r->stop) {
		buf_reset(&b);
		if (soc_incidents_json(r->db, &q, &b) != 0)
			r->errors++;
		r->reads++;
	}
	buf_fini(&b);
	return NULL;
}

static void test_many_producers(void **state)
{
	struct tmpdb t;
	struct soc_db *db;
	struct producer p[4];
	pthread_t th[4], rth;
	struct reader rd = { 0 };
	struct soc_alert_query q = { .limit = 1 };
	struct soc_incident_query iq = { .limit = 100 };
	struct soc_stats s;
	struct buf b;
	json_t *j, *arr;
	int accepted = 0;
	json_int_t sum = 0;

	(void)state;
	tmp_make(&t);
	db = open_db(&t, NULL, NULL, 100000);
	rd.db = db;
	assert_int_equal(pthread_create(&rth, NULL, read_loop, &rd), 0);
	for (int i = 0; i < 4; i++) {
		p[i].db = db;
		p[i].n = 500;
		p[i].accepted = 0;
		snprintf(p[i].ip, sizeof(p[i].ip), "10.0.0.%d", i + 1);
		assert_int_equal(pthread_create(&th[i], NULL, produce, &p[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		accepted += p[i].accepted;
	}
	assert_int_equal(accepted, 2000);
	assert_int_equal(soc_flush(db, 30000), 0);
	rd.stop = 1;
	pthread_join(rth, NULL);
	assert_int_equal(rd.errors, 0);
	assert_true(rd.reads > 0);
	soc_get_stats(db, &s);
	assert_int_equal(s.stored, 2000);
	buf_init(&b, 0);
	assert_int_equal(soc_alerts_json(db, &q, &b), 0);
	j = load_json(&b);
	assert_int_equal(jint(j, "total"), 2000);
	json_decref(j);
	buf_reset(&b);
	assert_int_equal(soc_incidents_json(db, &iq, &b), 0);
	j = load_json(&b);
	assert_int_equal(jint(j, "total"), 8);   /* 4 entities x 2 rules */
	arr = json_object_get(j, "incidents");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		sum += jint(json_array_get(arr, i), "count");
		assert_string_equal(jstr(json_array_get(arr, i), "severity"), "critical");
	}
	assert_int_equal(sum, 2000);
	json_decref(j);
	buf_fini(&b);
	soc_close(db);
	tmp_remove(&t);
}

/* ---- persistence -------------------------------------------------------- */

static void test_restart(void **state)
{
	struct tmpdb t;
	struct soc_db *db;
	struct soc_add_result r, r2;
	struct test_alert ta;
	struct soc_indicator ind = { "ip", "203.0.113.7", "abuse.ch", 80 };
	enum soc_status st = SOC_STATUS_ACKNOWLEDGED;
	struct soc_update u = { .actor = "alice", .status = &st, .assignee = "alice" };
	struct buf b;
	json_t *j, *a;

	(void)state;
	tmp_make(&t);
	db = open_db(&t, NULL, NULL, 0);
	r = add(db, "persist", SOC_LEVEL_HIGH, "10.0.0.1", T0);
	mk_alert(&ta, "intel-hit", SOC_LEVEL_HIGH, "203.0.113.7", T0);
	ta.a.source = SOC_SOURCE_INTEL;
	ta.a.indicator = &ind;
	assert_int_equal(soc_alert_add(db, &ta.a, &r2), 0);
	assert_int_equal(soc_incident_update(db, r.incident_id, &u, NULL, 0), 0);
	assert_int_equal(soc_incident_comment(db, r.incident_id, "alice", "on it", NULL), 0);
	soc_close(db);

	db = open_db(&t, NULL, NULL, 0);
	j = incident_get(db, r.incident_id);
	assert_string_equal(jstr(j, "status"), "acknowledged");
	assert_string_equal(jstr(j, "assignee"), "alice");
	assert_int_equal(json_array_size(json_object_get(j, "comments")), 1);
	assert_int_equal(json_array_size(json_object_get(j, "history")), 4);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "tags"), 0)),
			    "attack.t1059.001");
	json_decref(j);
	/* the acknowledged incident is still open and in the window */
	r = add(db, "persist", SOC_LEVEL_HIGH, "10.0.0.1", T0 + 5 * MIN);
	assert_int_equal(r.kind, SOC_CHANGE_UPDATED);
	assert_int_equal(r.count, 2);
	/* the intel alert kept its indicator and event */
	buf_init(&b, 0);
	assert_int_equal(soc_alert_json(db, r2.alert_id, &b), 0);
	a = load_json(&b);
	assert_string_equal(jstr(a, "source"), "intel");
	assert_string_equal(jstr(json_object_get(a, "indicator"), "feed"), "abuse.ch");
	assert_int_equal(jint(json_object_get(a, "indicator"), "confidence"), 80);
	assert_string_equal(jstr(json_object_get(a, "event"), "source.ip"), "203.0.113.7");
	assert_string_equal(jstr(json_object_get(a, "entity"), "source.ip"), "203.0.113.7");
	assert_int_equal(jint(a, "event_id"), 42);
	json_decref(a);
	buf_reset(&b);
	assert_int_equal(soc_alert_json(db, 99999, &b), M_ENOTFOUND);
	buf_fini(&b);
	soc_close(db);
	tmp_remove(&t);
}

/* Suppressed alerts (detect.suppress) count in the incident: volume
 * escalation sees the storm, the alert row carries the number. A version 1
 * database (no suppressed column) is migrated in place. */
static void test_suppressed(void **state)
{
	struct tmpdb t;
	struct soc_db *db;
	struct soc_add_result r;
	struct test_alert ta;
	struct buf b;
	json_t *a;
	sqlite3 *raw;

	(void)state;
	tmp_make(&t);
	/* A database as version 1 wrote it, with one open incident. */
	assert_int_equal(sqlite3_open(t.path, &raw), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw,
		"CREATE TABLE alert(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
		" incident_id INTEGER NOT NULL, rule_id TEXT NOT NULL, title TEXT NOT NULL,"
		" level INTEGER NOT NULL, source INTEGER NOT NULL, tags TEXT NOT NULL,"
		" entity TEXT NOT NULL, event_id INTEGER, event_ts INTEGER, event TEXT,"
		" ind_type TEXT, ind_value TEXT, ind_feed TEXT, ind_conf INTEGER);"
		"INSERT INTO alert VALUES(1, 1, 1, 'old', 'Old', 2, 1, '[]', '{}', NULL,"
		" NULL, NULL, NULL, NULL, NULL, NULL);"
		"PRAGMA user_version=1;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);
	db = open_db(&t, NULL, NULL, 0);
	buf_init(&b, 0);
	assert_int_equal(soc_alert_json(db, 1, &b), 0);
	a = load_json(&b);
	assert_int_equal(jint(a, "suppressed"), 0);
	json_decref(a);

	mk_alert(&ta, "storm", SOC_LEVEL_MEDIUM, "10.0.0.9", T0);
	ta.a.suppressed = 0;
	assert_int_equal(soc_alert_add(db, &ta.a, &r), 0);
	assert_int_equal(r.kind, SOC_CHANGE_OPENED);
	assert_int_equal(r.count, 1);
	/* The next emitted alert carries 11 suppressed: 13 detections, and
	 * the volume escalation (10+) applies. */
	mk_alert(&ta, "storm", SOC_LEVEL_MEDIUM, "10.0.0.9", T0 + MIN);
	ta.a.suppressed = 11;
	assert_int_equal(soc_alert_add(db, &ta.a, &r), 0);
	assert_int_equal(r.kind, SOC_CHANGE_ESCALATED);
	assert_int_equal(r.count, 13);
	assert_int_equal(r.severity, SOC_LEVEL_HIGH);
	buf_reset(&b);
	assert_int_equal(soc_alert_json(db, r.alert_id, &b), 0);
	a = load_json(&b);
	assert_int_equal(jint(a, "suppressed"), 11);
	json_decref(a);
	/* A first alert that already carries suppressed ones. */
	mk_alert(&ta, "storm", SOC_LEVEL_LOW, "10.0.0.10", T0);
	ta.a.suppressed = 99;
	assert_int_equal(soc_alert_add(db, &ta.a, &r), 0);
	assert_int_equal(r.kind, SOC_CHANGE_OPENED);
	assert_int_equal(r.count, 100);
	assert_int_equal(r.severity, SOC_LEVEL_HIGH);
	buf_fini(&b);
	soc_close(db);
	tmp_remove(&t);
}

/* An event that is not JSON, or too large, is still stored readably. */
static void test_odd_events(void **state)
{
	struct tmpdb t;
	struct soc_db *db;
	struct test_alert ta;
	struct soc_add_result r;
	char *big;
	struct buf b;
	json_t *a;

	(void)state;
	tmp_make(&t);
	db = open_db(&t, NULL, NULL, 0);
	mk_alert(&ta, "odd", SOC_LEVEL_LOW, "10.0.0.1", T0);
	ta.a.event_json = "not json \"at all\"";
	ta.a.event_json_len = strlen(ta.a.event_json);
	assert_int_equal(soc_alert_add(db, &ta.a, &r), 0);
	buf_init(&b, 0);
	assert_int_equal(soc_alert_json(db, r.alert_id, &b), 0);
	a = load_json(&b);
	assert_string_equal(jstr(a, "event"), "not json \"at all\"");
	json_decref(a);
	big = malloc(SOC_MAX_EVENT_JSON + 10);
	assert_non_null(big);
	memset(big, ' ', SOC_MAX_EVENT_JSON + 10);
	ta.a.event_json = big;
	ta.a.event_json_len = SOC_MAX_EVENT_JSON + 10;
	assert_int_equal(soc_alert_add(db, &ta.a, &r), 0);
	buf_reset(&b);
	assert_int_equal(soc_alert_json(db, r.alert_id, &b), 0);
	a = load_json(&b);
	assert_string_equal(jstr(json_object_get(a, "event"), "_omitted"), "too large");
	json_decref(a);
	ta.a.event_json = NULL;
	assert_int_equal(soc_alert_add(db, &ta.a, &r), 0);
	buf_reset(&b);
	assert_int_equal(soc_alert_json(db, r.alert_id, &b), 0);
	a = load_json(&b);
	assert_true(json_is_null(json_object_get(a, "event")));
	json_decref(a);
	free(big);
	buf_fini(&b);
	soc_close(db);
	tmp_remove(&t);
}

/* ---- the bridge from the detection stage -------------------------------- */

static json_t *alerts_q(struct soc_db *db, const struct soc_alert_query *q);

static json_t *alert_by_rule(struct soc_db *db, const char *rule)
{
	struct soc_alert_query q = { .limit = 1, .rule_id = rule };
	json_t *j = alerts_q(db, &q), *a;

	assert_int_equal(jint(j, "total"), 1);
	a = json_incref(json_array_get(json_object_get(j, "alerts"), 0));
	json_decref(j);
	return a;
}

static void test_detect_bridge(void **state)
{
	static char *gb[] = { "user.name", "host.name", "source.ip" };
	static const char *const tags[] = { "attack.t1046", "attack.discovery" };
	struct conf_list group_by = { gb, 3 };
	struct tmpdb t;
	struct soc_db *db;
	struct event *ev = calloc(1, sizeof(*ev));
	struct intel_indicator ind;
	struct detect_alert da;
	json_t *a, *ent;

	(void)state;
	assert_non_null(ev);
	event_clear(ev);
	ev->id = 7;
	ev->ts_us = T0;
	event_set(ev, F_SOURCE_IP, str_make("10.5.5.5", 8));
	event_set(ev, F_HOST_NAME, str_make("web9", 4));
	event_set(ev, F_MESSAGE, str_make("hello \"there\"", 13));
	tmp_make(&t);
	db = open_db(&t, NULL, NULL, 0);

	memset(&da, 0, sizeof(da));
	da.source = DETECT_SIGMA;
	da.rule_id = "sig-1";
	da.rule_title = "Port scan";
	da.level = SIGMA_LEVEL_HIGH;
	da.tags = tags;
	da.n_tags = 2;
	da.ev = ev;
	assert_int_equal(soc_submit_detect(db, &da, &group_by), 0);
	da.source = DETECT_CORRELATION;
	da.rule_id = "corr-1";
	da.group = "source.ip=10.5.5.5, user.name=root";
	assert_int_equal(soc_submit_detect(db, &da, &group_by), 0);
	da.rule_id = "corr-2";
	da.group = "not a group";
	assert_int_equal(soc_submit_detect(db, &da, &group_by), 0);
	memset(&ind, 0, sizeof(ind));
	ind.type = INTEL_IP;
	ind.value = "10.5.5.0/24";
	ind.value_len = 11;
	ind.meta.source = "feedX";
	ind.meta.confidence = 90;
	da.source = DETECT_INTEL;
	da.rule_id = "intel";
	da.group = NULL;
	da.indicator = &ind;
	da.field = "source.ip";
	assert_int_equal(soc_submit_detect(db, &da, &group_by), 0);
	assert_int_equal(soc_flush(db, 10000), 0);

	a = alert_by_rule(db, "sig-1");
	ent = json_object_get(a, "entity");
	assert_int_equal(json_object_size(ent), 1);
	assert_string_equal(jstr(ent, "host.name"), "web9");
	assert_string_equal(jstr(json_object_get(a, "event"), "message"), "hello \"there\"");
	assert_int_equal(jint(a, "event_id"), 7);
	assert_string_equal(jstr(a, "level"), "high");
	assert_string_equal(json_string_value(json_array_get(json_object_get(a, "tags"), 0)),
			    "attack.t1046");
	json_decref(a);
	a = alert_by_rule(db, "corr-1");
	ent = json_object_get(a, "entity");
	assert_string_equal(jstr(ent, "source.ip"), "10.5.5.5");
	assert_string_equal(jstr(ent, "user.name"), "root");
	assert_string_equal(jstr(a, "source"), "correlation");
	json_decref(a);
	a = alert_by_rule(db, "corr-2");
	assert_string_equal(jstr(json_object_get(a, "entity"), "correlation.group"),
			    "not a group");
	json_decref(a);
	a = alert_by_rule(db, "intel");
	assert_string_equal(jstr(json_object_get(a, "entity"), "source.ip"), "10.5.5.5");
	assert_string_equal(jstr(json_object_get(a, "indicator"), "value"), "10.5.5.0/24");
	assert_string_equal(jstr(json_object_get(a, "indicator"), "type"), "ip");
	assert_string_equal(jstr(json_object_get(a, "indicator"), "feed"), "feedX");
	assert_int_equal(jint(json_object_get(a, "indicator"), "confidence"), 90);
	json_decref(a);
	free(ev);
	soc_close(db);
	tmp_remove(&t);
}

/* ---- filters and paging -------------------------------------------------- */

static json_t *alerts_q(struct soc_db *db, const struct soc_alert_query *q)
{
	struct buf b;
	json_t *j;

	buf_init(&b, 0);
	assert_int_equal(soc_alerts_json(db, q, &b), 0);
	j = load_json(&b);
	buf_fini(&b);
	return j;
}

static json_t *incidents_q(struct soc_db *db, const struct soc_incident_query *q)
{
	struct buf b;
	json_t *j;

	buf_init(&b, 0);
	assert_int_equal(soc_incidents_json(db, q, &b), 0);
	j = load_json(&b);
	buf_fini(&b);
	return j;
}

static void test_filters(void **state)
{
	struct tmpdb t;
	struct soc_db *db;
	struct soc_add_result r;
	enum soc_status st = SOC_STATUS_ACKNOWLEDGED;
	struct soc_update u = { .actor = "x", .status = &st, .assignee = "bob" };
	json_t *j, *arr;
	int64_t first_inc = 0;

	(void)state;
	tmp_make(&t);
	db = open_db(&t, NULL, NULL, 0);
	/* 30 alerts of rule "a" (low) for 3 IPs, 5 of "b" (high) for one */
	for (int i = 0; i < 30; i++) {
		char ip[16];

		snprintf(ip, sizeof(ip), "10.0.0.%d", i % 3);
		r = add(db, "a", SOC_LEVEL_LOW, ip, T0 + i * MIN);
		if (i == 0)
			first_inc = r.incident_id;
	}
	for (int i = 0; i < 5; i++)
		r = add(db, "b", SOC_LEVEL_HIGH, "10.0.0.99", T0 + (100 + i) * MIN);
	assert_int_equal(soc_incident_update(db, r.incident_id, &u, NULL, 0), 0);

	{
		struct soc_alert_query q = { .limit = 10 };

		j = alerts_q(db, &q);
		assert_int_equal(jint(j, "total"), 35);
		arr = json_object_get(j, "alerts");
		assert_int_equal(json_array_size(arr), 10);
		assert_string_equal(jstr(json_array_get(arr, 0), "rule_id"), "b");
		assert_string_equal(jstr(json_array_get(arr, 0), "time"),
				    "2024-05-01T13:44:00.000Z");
		json_decref(j);
		q.offset = 30;
		j = alerts_q(db, &q);
		assert_int_equal(json_array_size(json_object_get(j, "alerts")), 5);
		assert_int_equal(jint(j, "offset"), 30);
		json_decref(j);
		q.offset = 1000;
		j = alerts_q(db, &q);
		assert_int_equal(jint(j, "total"), 35);
		assert_int_equal(json_array_size(json_object_get(j, "alerts")), 0);
		json_decref(j);
	}
	{
		struct soc_alert_query q = { .limit = 100, .rule_id = "a",
					     .from_us = T0 + 10 * MIN, .to_us = T0 + 19 * MIN };

		j = alerts_q(db, &q);
		assert_int_equal(jint(j, "total"), 10);
		json_decref(j);
		q.rule_id = NULL;
		q.from_us = q.to_us = 0;
		q.level_mask = 1u << SOC_LEVEL_HIGH;
		j = alerts_q(db, &q);
		assert_int_equal(jint(j, "total"), 5);
		json_decref(j);
		q.level_mask |= 1u << SOC_LEVEL_LOW;
		j = alerts_q(db, &q);
		assert_int_equal(jint(j, "total"), 35);
		json_decref(j);
		q.level_mask = 0;
		q.incident_id = first_inc;
		j = alerts_q(db, &q);
		assert_int_equal(jint(j, "total"), 10);
		json_decref(j);
	}
	{
		struct soc_incident_query q = { .limit = 2 };

		j = incidents_q(db, &q);
		assert_int_equal(jint(j, "total"), 4);
		arr = json_object_get(j, "incidents");
		assert_int_equal(json_array_size(arr), 2);
		assert_string_equal(jstr(json_array_get(arr, 0), "rule_id"), "b");
		json_decref(j);
		q.limit = 100;
		q.status_mask = 1u << SOC_STATUS_NEW;
		j = incidents_q(db, &q);
		assert_int_equal(jint(j, "total"), 3);
		json_decref(j);
		q.status_mask = 0;
		q.severity_mask = 1u << SOC_LEVEL_MEDIUM;   /* low escalated at 10 */
		j = incidents_q(db, &q);
		assert_int_equal(jint(j, "total"), 3);
		json_decref(j);
		q.severity_mask = 0;
		q.assignee = "bob";
		j = incidents_q(db, &q);
		assert_int_equal(jint(j, "total"), 1);
		assert_string_equal(jstr(json_array_get(json_object_get(j, "incidents"), 0),
					 "status"), "acknowledged");
		json_decref(j);
		q.assignee = NULL;
		q.rule_id = "a";
		j = incidents_q(db, &q);
		assert_int_equal(jint(j, "total"), 3);
		json_decref(j);
		q.rule_id = NULL;
		q.from_us = T0 + 50 * MIN;   /* only "b" was seen after that */
		j = incidents_q(db, &q);
		assert_int_equal(jint(j, "total"), 1);
		json_decref(j);
		q.from_us = 0;
		q.to_us = T0 + 1 * MIN;      /* "a" for .0 and .1 had started */
		j = incidents_q(db, &q);
		assert_int_equal(jint(j, "total"), 2);
		json_decref(j);
	}
	soc_close(db);
	tmp_remove(&t);
}

/* ---- HTTP end to end ----------------------------------------------------- */

static int fake_search(struct store *s, const struct store_query *q,
		       struct buf *out, uint64_t *total)
{
	(void)s;
	(void)q;
	*total = 0;
	return buf_puts(out, "[]");
}

static const struct store_ops fake_ops = { .name = "fake", .search = fake_search };
static struct store fake = { .ops = &fake_ops };
static struct api *api;
static int port;
static struct soc_db *hdb;
static struct tmpdb htmp;
static int64_t h_inc, h_alert;

static int setup_http(void **state)
{
	static char *tokens[] = { TOKEN };
	struct api_config cfg = {
		.listen = "127.0.0.1:0", .tokens = { tokens, 1 }, .threads = 2,
		.web_root = "", .max_connections = 64, .timeout = 5,
	};
	struct soc_config sc = { .window = 3600 };
	struct test_alert ta;
	struct soc_add_result r;

	(void)state;
	log_set_level(LOG_ERROR);
	snprintf(htmp.dir, sizeof(htmp.dir), "/tmp/mamori-soc-XXXXXX");
	if (mkdtemp(htmp.dir) == NULL)
		return -1;
	snprintf(htmp.path, sizeof(htmp.path), "%s/soc.db", htmp.dir);
	sc.path = htmp.path;
	if (soc_open(&sc, NULL, NULL, &hdb) != 0)
		return -1;
	for (int i = 0; i < 3; i++) {
		mk_alert(&ta, "http-rule", SOC_LEVEL_HIGH, "10.0.0.1", T0 + i * MIN);
		if (soc_alert_add(hdb, &ta.a, &r) != 0)
			return -1;
	}
	h_inc = r.incident_id;
	h_alert = r.alert_id;
	if (api_start(&cfg, &fake, &api) != 0)
		return -1;
	api_set_soc(api, hdb);
	port = api_port(api);
	return port > 0 ? 0 : -1;
}

static int teardown_http(void **state)
{
	(void)state;
	api_stop(api);
	soc_close(hdb);
	tmp_remove(&htmp);
	metrics_fini();
	return 0;
}

struct answer {
	int status;
	char head[8192];
	struct buf body;
};

static void http_raw(const char *request, size_t len, struct answer *a)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct buf all;
	char *sep;
	int fd;

	memset(a, 0, sizeof(*a));
	buf_init(&a->body, 64 << 20);
	buf_init(&all, 64 << 20);
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	for (size_t off = 0; off < len;) {
		ssize_t w = send(fd, request + off, len - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;   /* the server may answer and close early */
		off += (size_t)w;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		assert_int_equal(poll(&p, 1, 10000), 1);
		assert_int_equal(buf_reserve(&all, 65536), 0);
		n = recv(fd, all.p + all.len, all.cap - all.len, 0);
		if (n < 0 && errno == ECONNRESET)
			break;
		assert_true(n >= 0);
		if (n == 0)
			break;
		all.len += (size_t)n;
	}
	close(fd);
	assert_int_equal(buf_cstr(&all), 0);
	sep = strstr(all.p, "\r\n\r\n");
	assert_non_null(sep);
	assert_true((size_t)(sep - all.p) < sizeof(a->head));
	memcpy(a->head, all.p, (size_t)(sep - all.p));
	a->head[sep - all.p] = '\0';
	a->status = (int)strtol(a->head + 9, NULL, 10);
	assert_int_equal(buf_append(&a->body, sep + 4, all.len - (size_t)(sep + 4 - all.p)), 0);
	assert_int_equal(buf_cstr(&a->body), 0);
	buf_fini(&all);
}

static void http(const char *method, const char *target, const char *token,
		 const char *body, struct answer *a)
{
	struct buf req;

	buf_init(&req, 0);
	assert_int_equal(buf_printf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n",
				    method, target), 0);
	if (token)
		assert_int_equal(buf_printf(&req, "Authorization: Bearer %s\r\n", token), 0);
	if (body)
		assert_int_equal(buf_printf(&req, "Content-Type: application/json\r\n"
					    "Content-Length: %zu\r\n", strlen(body)), 0);
	assert_int_equal(buf_printf(&req, "Connection: close\r\n\r\n%s", body ? body : ""), 0);
	http_raw(req.p, req.len, a);
	buf_fini(&req);
}

static const char *head_value(struct answer *a, const char *name, char *out,
			      size_t outsz)
{
	size_t nl = strlen(name);

	for (char *line = strstr(a->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
		char *s = line + 2, *e = strstr(s, "\r\n");
		size_t len = e ? (size_t)(e - s) : strlen(s);

		if (len > nl + 1 && s[nl] == ':' && strncasecmp(s, name, nl) == 0) {
			s += nl + 1;
			len -= nl + 1;
			while (len && *s == ' ') {
				s++;
				len--;
			}
			snprintf(out, outsz, "%.*s", (int)len, s);
			return out;
		}
	}
	return NULL;
}

/* Checks the status and that the body is JSON; returns it (caller decrefs). */
static json_t *expect(struct answer *a, int status)
{
	char ct[64];
	json_t *j;

	if (a->status != status)
		fail_msg("status %d, want %d: %s", a->status, status, a->body.p);
	assert_non_null(head_value(a, "Content-Type", ct, sizeof(ct)));
	assert_string_equal(ct, "application/json");
	j = json_loadb(a->body.p, a->body.len, 0, NULL);
	assert_non_null(j);
	return j;
}

static void expect_error(struct answer *a, int status, const char *param)
{
	json_t *j = expect(a, status);

	assert_non_null(jstr(j, "error"));
	assert_non_null(jstr(j, "detail"));
	if (param)
		assert_string_equal(jstr(j, "parameter"), param);
	json_decref(j);
}

static void test_http_reads(void **state)
{
	struct answer a;
	char target[128];
	json_t *j;

	(void)state;
	http("GET", "/api/v1/alerts", NULL, NULL, &a);
	expect_error(&a, 401, NULL);
	buf_fini(&a.body);
	http("GET", "/api/v1/alerts?limit=2", TOKEN, NULL, &a);
	j = expect(&a, 200);
	assert_int_equal(jint(j, "total"), 3);
	assert_int_equal(json_array_size(json_object_get(j, "alerts")), 2);
	json_decref(j);
	buf_fini(&a.body);
	http("GET", "/api/v1/alerts?level=high,critical&rule=http-rule&from=2024-05-01T12:01:00Z&to=&offset=0",
	     TOKEN, NULL, &a);
	j = expect(&a, 200);
	assert_int_equal(jint(j, "total"), 2);
	json_decref(j);
	buf_fini(&a.body);
	snprintf(target, sizeof(target), "/api/v1/alerts?incident=%lld", (long long)h_inc);
	http("GET", target, TOKEN, NULL, &a);
	j = expect(&a, 200);
	assert_int_equal(jint(j, "total"), 3);
	json_decref(j);
	buf_fini(&a.body);
	snprintf(target, sizeof(target), "/api/v1/alerts/%lld", (long long)h_alert);
	http("GET", target, TOKEN, NULL, &a);
	j = expect(&a, 200);
	assert_int_equal(jint(j, "id"), h_alert);
	assert_string_equal(jstr(json_object_get(j, "event"), "message"), "x");
	assert_string_equal(jstr(j, "level"), "high");
	json_decref(j);
	buf_fini(&a.body);
	http("GET", "/api/v1/incidents?status=new,acknowledged&severity=high", TOKEN, NULL, &a);
	j = expect(&a, 200);
	assert_int_equal(jint(j, "total"), 1);
	json_decref(j);
	buf_fini(&a.body);
	snprintf(target, sizeof(target), "/api/v1/incidents/%lld?alerts=1", (long long)h_inc);
	http("GET", target, TOKEN, NULL, &a);
	j = expect(&a, 200);
	assert_int_equal(json_array_size(json_object_get(j, "alerts")), 1);
	assert_int_equal(jint(j, "alerts_stored"), 3);
	assert_true(json_is_array(json_object_get(j, "comments")));
	assert_true(json_is_array(json_object_get(j, "history")));
	json_decref(j);
	buf_fini(&a.body);
}

static void test_http_bad_reads(void **state)
{
	static const struct { const char *target; int status; const char *param; } cases[] = {
		{ "/api/v1/alerts?level=severe", 400, "level" },
		{ "/api/v1/alerts?limit=0", 400, "limit" },
		{ "/api/v1/alerts?limit=1001", 400, "limit" },
		{ "/api/v1/alerts?offset=-1", 400, "offset" },
		{ "/api/v1/alerts?from=yesterday", 400, "from" },
		{ "/api/v1/alerts?from=2000&to=1000", 400, "from" },
		{ "/api/v1/alerts?status=new", 400, "status" },
		{ "/api/v1/alerts?limit=1&limit=2", 400, "limit" },
		{ "/api/v1/alerts?incident=x", 400, "incident" },
		{ "/api/v1/alerts?bogus=1", 400, "bogus" },
		{ "/api/v1/incidents?status=closed", 400, "status" },
		{ "/api/v1/incidents?level=high", 400, "level" },
		{ "/api/v1/incidents?alerts=5", 400, "alerts" },
		{ "/api/v1/incidents/1?alerts=101", 400, "alerts" },
		{ "/api/v1/alerts/abc", 400, "id" },
		{ "/api/v1/incidents/0", 400, "id" },
		{ "/api/v1/alerts/999999", 404, NULL },
		{ "/api/v1/incidents/999999", 404, NULL },
		{ "/api/v1/incidents/1/history", 404, NULL },
	};
	struct answer a;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		http("GET", cases[i].target, TOKEN, NULL, &a);
		if (a.status != cases[i].status)
			fail_msg("%s: %d %s", cases[i].target, a.status, a.body.p);
		expect_error(&a, cases[i].status, cases[i].param);
		buf_fini(&a.body);
	}
}

static void test_http_changes(void **state)
{
	struct answer a;
	char target[128], ctarget[160];
	json_t *j, *h;

	(void)state;
	snprintf(target, sizeof(target), "/api/v1/incidents/%lld", (long long)h_inc);
	snprintf(ctarget, sizeof(ctarget), "%s/comments", target);
	http("PATCH", target, NULL, "{\"status\":\"acknowledged\",\"actor\":\"a\"}", &a);
	expect_error(&a, 401, NULL);
	buf_fini(&a.body);
	http("PATCH", target, TOKEN, "{\"status\":\"resolved\",\"actor\":\"alice\"}", &a);
	expect_error(&a, 409, "status");
	buf_fini(&a.body);
	http("PATCH", target, TOKEN,
	     "{\"status\":\"acknowledged\",\"assignee\":\"alice\",\"actor\":\"alice\"}", &a);
	j = expect(&a, 200);
	assert_string_equal(jstr(j, "status"), "acknowledged");
	assert_string_equal(jstr(j, "assignee"), "alice");
	json_decref(j);
	buf_fini(&a.body);
	http("PATCH", target, TOKEN, "{\"assignee\":null,\"actor\":\"alice\"}", &a);
	j = expect(&a, 200);
	assert_true(json_is_null(json_object_get(j, "assignee")));
	json_decref(j);
	buf_fini(&a.body);
	http("POST", ctarget, TOKEN, "{\"author\":\"bob\",\"text\":\"n\\u00e9e \\\"x\\\"\"}", &a);
	j = expect(&a, 201);
	assert_true(jint(j, "id") > 0);
	assert_int_equal(jint(j, "incident_id"), h_inc);
	json_decref(j);
	buf_fini(&a.body);
	http("GET", target, TOKEN, NULL, &a);
	j = expect(&a, 200);
	assert_string_equal(jstr(json_array_get(json_object_get(j, "comments"), 0), "text"),
			    "n\xc3\xa9" "e \"x\"");
	h = json_object_get(j, "history");
	assert_string_equal(jstr(json_array_get(h, json_array_size(h) - 1), "field"), "comment");
	json_decref(j);
	buf_fini(&a.body);
	http("POST", "/api/v1/incidents/999999/comments", TOKEN,
	     "{\"author\":\"bob\",\"text\":\"x\"}", &a);
	expect_error(&a, 404, NULL);
	buf_fini(&a.body);
	http("PATCH", "/api/v1/incidents/999999", TOKEN,
	     "{\"status\":\"new\",\"actor\":\"x\"}", &a);
	expect_error(&a, 404, NULL);
	buf_fini(&a.body);
}

static void test_http_bad_bodies(void **state)
{
	static const struct { const char *body; const char *param; } patch[] = {
		{ "", NULL },
		{ "{", NULL },
		{ "not json", NULL },
		{ "[1,2]", NULL },
		{ "\"x\"", NULL },
		{ "{\"status\":\"new\"}", "actor" },
		{ "{\"status\":\"new\",\"actor\":\"\"}", "actor" },
		{ "{\"status\":\"new\",\"actor\":7}", "actor" },
		{ "{\"status\":\"closed\",\"actor\":\"a\"}", "status" },
		{ "{\"status\":1,\"actor\":\"a\"}", "status" },
		{ "{\"actor\":\"a\"}", NULL },
		{ "{\"actor\":\"a\",\"severity\":\"low\"}", "severity" },
		{ "{\"actor\":\"a\",\"actor\":\"b\",\"status\":\"new\"}", NULL },
		{ "{\"actor\":\"a\\u0000b\",\"status\":\"new\"}", NULL },
		{ "{\"assignee\":[],\"actor\":\"a\"}", "assignee" },
	};
	static const struct { const char *body; const char *param; } comment[] = {
		{ "{\"author\":\"a\"}", "text" },
		{ "{\"text\":\"a\"}", "author" },
		{ "{\"author\":\"a\",\"text\":\"\"}", "text" },
		{ "{\"author\":\"a\",\"text\":\"b\",\"x\":1}", "x" },
	};
	struct answer a;
	char target[128], ctarget[160];
	char *big, *req;
	size_t n;

	(void)state;
	snprintf(target, sizeof(target), "/api/v1/incidents/%lld", (long long)h_inc);
	snprintf(ctarget, sizeof(ctarget), "%s/comments", target);
	for (size_t i = 0; i < sizeof(patch) / sizeof(patch[0]); i++) {
		http("PATCH", target, TOKEN, patch[i].body, &a);
		if (a.status != 400)
			fail_msg("PATCH %s: %d %s", patch[i].body, a.status, a.body.p);
		expect_error(&a, 400, patch[i].param);
		buf_fini(&a.body);
	}
	for (size_t i = 0; i < sizeof(comment) / sizeof(comment[0]); i++) {
		http("POST", ctarget, TOKEN, comment[i].body, &a);
		if (a.status != 400)
			fail_msg("POST %s: %d %s", comment[i].body, a.status, a.body.p);
		expect_error(&a, 400, comment[i].param);
		buf_fini(&a.body);
	}
	/* a comment longer than 16 KiB inside a body under 64 KiB */
	n = 20000;
	big = malloc(n + 64);
	assert_non_null(big);
	memcpy(big, "{\"author\":\"a\",\"text\":\"", 22);
	memset(big + 22, 'x', n);
	memcpy(big + 22 + n, "\"}", 3);
	http("POST", ctarget, TOKEN, big, &a);
	expect_error(&a, 400, "text");
	buf_fini(&a.body);
	free(big);
	/* a body over 64 KiB: declared, refused before it is read */
	n = (64 << 10) + 1;
	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, ' ', n);
	big[n] = '\0';
	http("PATCH", target, TOKEN, big, &a);
	expect_error(&a, 413, NULL);
	buf_fini(&a.body);
	free(big);
	/* chunked bodies are refused the same way */
	req = malloc(1024);
	assert_non_null(req);
	n = (size_t)snprintf(req, 1024,
		"PATCH %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN "\r\n"
		"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
		"5\r\n{\"a\":\r\n0\r\n\r\n", target);
	http_raw(req, n, &a);
	expect_error(&a, 413, NULL);
	buf_fini(&a.body);
	free(req);
}

static void test_http_methods(void **state)
{
	static const struct { const char *method, *target, *allow; } cases[] = {
		{ "POST", "/api/v1/alerts", "GET, HEAD" },
		{ "DELETE", "/api/v1/alerts/1", "GET, HEAD" },
		{ "PATCH", "/api/v1/incidents", "GET, HEAD" },
		{ "DELETE", "/api/v1/incidents/1", "GET, HEAD, PATCH" },
		{ "GET", "/api/v1/incidents/1/comments", "POST" },
		{ "POST", "/api/v1/events", "GET, HEAD" },
	};
	struct answer a;
	char v[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		http(cases[i].method, cases[i].target, TOKEN, NULL, &a);
		expect_error(&a, 405, NULL);
		assert_non_null(head_value(&a, "Allow", v, sizeof(v)));
		assert_string_equal(v, cases[i].allow);
		buf_fini(&a.body);
	}
	/* HEAD answers without a body */
	http("HEAD", "/api/v1/incidents", TOKEN, NULL, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(a.body.len, 0);
	buf_fini(&a.body);
}

static void test_http_no_soc(void **state)
{
	struct answer a;

	(void)state;
	api_set_soc(api, NULL);
	http("GET", "/api/v1/incidents", TOKEN, NULL, &a);
	expect_error(&a, 503, NULL);
	buf_fini(&a.body);
	api_set_soc(api, hdb);
	http("GET", "/api/v1/incidents", TOKEN, NULL, &a);
	assert_int_equal(a.status, 200);
	buf_fini(&a.body);
}

static void test_http_metrics(void **state)
{
	struct answer a;

	(void)state;
	http("GET", "/metrics", TOKEN, NULL, &a);
	assert_int_equal(a.status, 200);
	assert_non_null(strstr(a.body.p,
		"mamori_api_requests_total{route=\"/api/v1/incidents\",code=\"409\"}"));
	assert_non_null(strstr(a.body.p,
		"mamori_api_requests_total{route=\"/api/v1/incidents\",code=\"201\"}"));
	assert_non_null(strstr(a.body.p,
		"mamori_api_requests_total{route=\"/api/v1/alerts\",code=\"200\"}"));
	assert_non_null(strstr(a.body.p, "mamori_soc_alerts_stored_total"));
	buf_fini(&a.body);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_escalate_table),
		cmocka_unit_test(test_transition_table),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_route_match),
		cmocka_unit_test(test_grouping),
		cmocka_unit_test(test_escalation),
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_comments_history),
		cmocka_unit_test(test_comment_limit),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_hook),
		cmocka_unit_test(test_queue_full),
		cmocka_unit_test(test_many_producers),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_suppressed),
		cmocka_unit_test(test_odd_events),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_detect_bridge),
	};
	const struct CMUnitTest server[] = {
		cmocka_unit_test(test_http_reads),
		cmocka_unit_test(test_http_bad_reads),
		cmocka_unit_test(test_http_changes),
		cmocka_unit_test(test_http_bad_bodies),
		cmocka_unit_test(test_http_methods),
		cmocka_unit_test(test_http_no_soc),
		cmocka_unit_test(test_http_metrics),
	};
	int rc;

	log_set_level(LOG_ERROR);
	rc = cmocka_run_group_tests_name("soc", pure, NULL, NULL);
	rc += cmocka_run_group_tests_name("soc_http", server, setup_http, teardown_http);
	metrics_fini();
	return rc;
}
