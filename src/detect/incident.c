/*
 * The SOC back-end's write side: the alert queue, the one writer thread, the
 * grouping of alerts into incidents, escalation, and the changes people make
 * (status, assignee, comments), each recorded in the incident's history.
 *
 * Why one writer: SQLite takes one writer at a time anyway, so a single
 * thread with a single connection batches alerts into one transaction (a
 * storm of thousands of alerts costs a few commits, not thousands), never
 * meets SQLITE_BUSY from itself, and calls the on_incident hook in commit
 * order. Pipeline workers only copy an alert and push a pointer under a
 * mutex; people's changes are queued as commands that the writer runs ahead
 * of the next batch, each in its own transaction, while the API thread waits
 * for the outcome. The read side is in incident_query.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "detect/incident_int.h"

#define SOC_DEFAULT_WINDOW 3600
#define SOC_DEFAULT_QUEUE 8192
#define SOC_DEFAULT_BATCH 512
#define SOC_PRUNE_EVERY_US (3600LL * 1000000)
#define SOC_PRUNE_CHUNK 10000
#define SOC_ACTOR_SYSTEM "mamori"

const struct conf_keyword soc_keywords[] = {
	{ "path", CONF_STR, offsetof(struct soc_config, path), 0, 0, "", 0,
	  "the alerts and incidents database; \"\" = <data_dir>/soc.db" },
	{ "window", CONF_DURATION, offsetof(struct soc_config, window), 1,
	  30 * 86400, "1h", 0,
	  "an alert joins the open incident of the same rule and entity last seen within this time" },
	{ "queue", CONF_INT, offsetof(struct soc_config, queue), 16, 1000000,
	  "8192", 0, "alerts waiting for the writer; more are dropped and counted" },
	{ "batch", CONF_INT, offsetof(struct soc_config, batch), 1, 10000,
	  "512", 0, "alerts written per transaction" },
	{ "retention", CONF_DURATION, offsetof(struct soc_config, retention), 0,
	  3650LL * 86400, "90d", 0,
	  "how long alerts are kept (incidents, comments and history stay); 0 = forever" },
	{ "group_by", CONF_STRLIST, offsetof(struct soc_config, group_by), 0, 0, NULL, 0,
	  "entity fields an alert is grouped by, the first the event has; empty = source.ip, host.name, user.name, destination.ip" },
	CONF_END
};

static const char *const level_names[SOC_LEVEL_COUNT] = {
	"informational", "low", "medium", "high", "critical",
};
static const char *const status_names[SOC_STATUS_COUNT] = {
	"new", "acknowledged", "resolved", "false_positive",
};

const char *soc_level_name(enum soc_level l)
{
	return (unsigned)l < SOC_LEVEL_COUNT ? level_names[l] : "unknown";
}

const char *soc_status_name(enum soc_status s)
{
	return (unsigned)s < SOC_STATUS_COUNT ? status_names[s] : "unknown";
}

const char *soc_source_name(enum soc_source s)
{
	switch (s) {
	case SOC_SOURCE_SIGMA: return "sigma";
	case SOC_SOURCE_CORRELATION: return "correlation";
	case SOC_SOURCE_INTEL: return "intel";
	}
	return "unknown";
}

const char *soc_change_name(enum soc_change_kind k)
{
	switch (k) {
	case SOC_CHANGE_OPENED: return "opened";
	case SOC_CHANGE_UPDATED: return "updated";
	case SOC_CHANGE_ESCALATED: return "escalated";
	case SOC_CHANGE_STATUS: return "status";
	case SOC_CHANGE_ASSIGNED: return "assigned";
	case SOC_CHANGE_COMMENTED: return "commented";
	}
	return "unknown";
}

static int name_eq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

int soc_level_parse(const char *s, size_t n, enum soc_level *out)
{
	for (int i = 0; i < SOC_LEVEL_COUNT; i++)
		if (name_eq(s, n, level_names[i])) {
			*out = (enum soc_level)i;
			return 0;
		}
	return M_EPARSE;
}

int soc_status_parse(const char *s, size_t n, enum soc_status *out)
{
	for (int i = 0; i < SOC_STATUS_COUNT; i++)
		if (name_eq(s, n, status_names[i])) {
			*out = (enum soc_status)i;
			return 0;
		}
	return M_EPARSE;
}

/* Volume raises the severity so a rule of low level that fires a hundred
 * times for one entity is not buried under single high alerts. */
enum soc_level soc_escalate(enum soc_level level, uint64_t count)
{
	int l = (int)level;

	if (count >= 100)
		l += 2;
	else if (count >= 10)
		l += 1;
	return l > SOC_LEVEL_CRITICAL ? SOC_LEVEL_CRITICAL : (enum soc_level)l;
}

/* The lifecycle: new → acknowledged → resolved | false_positive. A new
 * incident may be dismissed as a false positive straight away, and a
 * closed one reopened (→ new) when it was closed by mistake; a resolved
 * incident must be reopened before anything else happens to it. */
int soc_transition_ok(enum soc_status from, enum soc_status to)
{
	switch (from) {
	case SOC_STATUS_NEW:
		return to == SOC_STATUS_ACKNOWLEDGED ||
		       to == SOC_STATUS_FALSE_POSITIVE;
	case SOC_STATUS_ACKNOWLEDGED:
		return to == SOC_STATUS_RESOLVED ||
		       to == SOC_STATUS_FALSE_POSITIVE || to == SOC_STATUS_NEW;
	case SOC_STATUS_RESOLVED:
	case SOC_STATUS_FALSE_POSITIVE:
		return to == SOC_STATUS_NEW;
	default:
		return 0;
	}
}

/* ---- one queued alert: a single allocation ---------------------------- */

struct soc_item {
	size_t bytes;
	const char *rule_id, *title, *tags, *entity, *event;
	size_t event_len;
	const char *ind_type, *ind_value, *ind_feed;  /* NULL when absent */
	int ind_conf;
	enum soc_level level;
	enum soc_source source;
	uint64_t suppressed;
	uint64_t event_id;
	int64_t event_ts_us, ts_us;
	char data[];
};

/* ECS-like field names only, so an entity key reads the same everywhere. */
static int key_name_ok(const char *s)
{
	size_t n = strnlen(s, SOC_MAX_KEY_NAME + 1);

	if (n == 0 || n > SOC_MAX_KEY_NAME)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-' || c == '@'))
			return 0;
	}
	return 1;
}

static int str_ok(const char *s, size_t max, int may_be_empty)
{
	size_t n;

	if (s == NULL)
		return may_be_empty;
	n = strnlen(s, max + 1);
	return n <= max && (n > 0 || may_be_empty);
}

/* The entity as canonical JSON: keys sorted, so the same pairs in any order
 * make the same incident key. */
static int entity_json(const struct soc_alert *a, struct buf *out)
{
	size_t order[SOC_MAX_KEY_FIELDS];
	int rc = 0;

	for (size_t i = 0; i < a->n_key; i++) {
		size_t j = i;

		while (j > 0 && strcmp(a->key[order[j - 1]].name, a->key[i].name) > 0) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	for (size_t i = 1; i < a->n_key; i++)
		if (strcmp(a->key[order[i - 1]].name, a->key[order[i]].name) == 0)
			return M_EINVAL;
	rc = buf_putc(out, '{');
	for (size_t i = 0; rc == 0 && i < a->n_key; i++) {
		const struct soc_key_field *f = &a->key[order[i]];

		rc = i ? buf_putc(out, ',') : 0;
		rc = rc ? rc : buf_putc(out, '"');
		rc = rc ? rc : buf_json_escape(out, f->name, strlen(f->name));
		rc = rc ? rc : buf_puts(out, "\":\"");
		rc = rc ? rc : buf_json_escape(out, f->value, strlen(f->value));
		rc = rc ? rc : buf_putc(out, '"');
	}
	rc = rc ? rc : buf_putc(out, '}');
	return rc ? rc : buf_cstr(out);
}

static int tags_json(const struct soc_alert *a, struct buf *out)
{
	int rc = buf_putc(out, '[');

	for (size_t i = 0; rc == 0 && i < a->n_tags; i++) {
		rc = i ? buf_putc(out, ',') : 0;
		rc = rc ? rc : buf_putc(out, '"');
		rc = rc ? rc : buf_json_escape(out, a->tags[i], strlen(a->tags[i]));
		rc = rc ? rc : buf_putc(out, '"');
	}
	rc = rc ? rc : buf_putc(out, ']');
	return rc ? rc : buf_cstr(out);
}

/* Everything is checked on the submitting thread, so a bad alert is refused
 * to its caller (who can log it) instead of failing later in the writer. */
static int alert_check(const struct soc_alert *a)
{
	if (a == NULL || !str_ok(a->rule_id, SOC_MAX_ID, 0) ||
	    (unsigned)a->level >= SOC_LEVEL_COUNT ||
	    a->source < SOC_SOURCE_SIGMA || a->source > SOC_SOURCE_INTEL ||
	    (a->n_tags && a->tags == NULL) || (a->n_key && a->key == NULL))
		return M_EINVAL;
	if (!str_ok(a->rule_title, SOC_MAX_TITLE, 1) ||
	    a->n_tags > SOC_MAX_TAGS || a->n_key > SOC_MAX_KEY_FIELDS)
		return M_ELIMIT;
	for (size_t i = 0; i < a->n_tags; i++)
		if (!str_ok(a->tags[i], SOC_MAX_TAG, 0))
			return M_ELIMIT;
	for (size_t i = 0; i < a->n_key; i++) {
		if (a->key[i].name == NULL || !key_name_ok(a->key[i].name))
			return M_EINVAL;
		if (!str_ok(a->key[i].value, SOC_MAX_KEY_VALUE, 1))
			return M_ELIMIT;
	}
	if (a->indicator) {
		const struct soc_indicator *ind = a->indicator;

		if (!str_ok(ind->type, SOC_MAX_IND, 0) ||
		    !str_ok(ind->value, SOC_MAX_IND, 0) ||
		    !str_ok(ind->feed, SOC_MAX_IND, 1))
			return M_ELIMIT;
		if (ind->confidence < -1 || ind->confidence > 100)
			return M_EINVAL;
	}
	return 0;
}

/* Appends s with its NUL to the item's data; returns where it went. */
static const char *item_put(char **p, const char *s, size_t n)
{
	const char *at = *p;

	memcpy(*p, s, n);
	(*p)[n] = '\0';
	*p += n + 1;
	return at;
}

/* A checked copy of a in one allocation. Owner: the caller (free()). */
static int item_new(const struct soc_alert *a, struct soc_item **out)
{
	static const char omitted[] = "{\"_omitted\":\"too large\"}";
	struct buf tags, ent;
	const struct soc_indicator *ind = a->indicator;
	const char *ev = a->event_json;
	size_t ev_len = ev ? a->event_json_len : 0;
	size_t n_id, n_title, n_it = 0, n_iv = 0, n_if = 0, total;
	struct soc_item *it;
	char *p;
	int rc;

	*out = NULL;
	if ((rc = alert_check(a)) != 0)
		return rc;
	if (ev_len > SOC_MAX_EVENT_JSON) {
		ev = omitted;
		ev_len = sizeof(omitted) - 1;
	}
	buf_init(&tags, SOC_MAX_TAGS * (SOC_MAX_TAG * 6 + 3) + 8);
	buf_init(&ent, SOC_MAX_KEY_FIELDS * ((SOC_MAX_KEY_NAME + SOC_MAX_KEY_VALUE) * 6 + 8) + 8);
	if ((rc = tags_json(a, &tags)) != 0 || (rc = entity_json(a, &ent)) != 0)
		goto out;
	n_id = strlen(a->rule_id);
	n_title = a->rule_title && a->rule_title[0] ? strlen(a->rule_title) : n_id;
	if (ind) {
		n_it = strlen(ind->type);
		n_iv = strlen(ind->value);
		n_if = ind->feed ? strlen(ind->feed) : 0;
	}
	total = sizeof(*it) + n_id + n_title + tags.len + ent.len + ev_len +
		n_it + n_iv + n_if + 8;
	it = malloc(total);
	if (it == NULL) {
		rc = M_ENOMEM;
		goto out;
	}
	memset(it, 0, sizeof(*it));
	p = it->data;
	it->bytes = total;
	it->rule_id = item_put(&p, a->rule_id, n_id);
	it->title = item_put(&p, a->rule_title && a->rule_title[0] ? a->rule_title
							       : a->rule_id, n_title);
	it->tags = item_put(&p, tags.p, tags.len);
	it->entity = item_put(&p, ent.p, ent.len);
	it->event = ev_len ? item_put(&p, ev, ev_len) : NULL;
	it->event_len = ev_len;
	if (ind) {
		it->ind_type = item_put(&p, ind->type, n_it);
		it->ind_value = item_put(&p, ind->value, n_iv);
		it->ind_feed = ind->feed ? item_put(&p, ind->feed, n_if) : NULL;
		it->ind_conf = ind->confidence;
	}
	it->level = a->level;
	it->source = a->source;
	it->suppressed = a->suppressed;
	it->event_id = a->event_id;
	it->event_ts_us = a->event_ts_us;
	it->ts_us = a->ts_us ? a->ts_us : clock_now_us();
	*out = it;
out:
	buf_fini(&tags);
	buf_fini(&ent);
	return rc;
}

/* ---- commands: changes that wait for the writer ----------------------- */

enum cmd_kind { CMD_ALERT, CMD_UPDATE, CMD_COMMENT };

struct soc_cmd {
	struct soc_cmd *next;
	enum cmd_kind kind;
	int64_t id;
	struct soc_item *item;            /* CMD_ALERT, owned by the caller */
	const struct soc_update *u;       /* CMD_UPDATE, borrowed */
	const char *author, *text;        /* CMD_COMMENT, borrowed */
	int done, rc;
	struct soc_add_result res;
	int64_t comment_id;
	char why[256];
};

/* Queues c for the writer and waits until it has run. */
static int cmd_run(struct soc_db *db, struct soc_cmd *c)
{
	if (db->thread_started && pthread_equal(pthread_self(), db->thread))
		return M_EINVAL;   /* the hook called back in: would deadlock */
	pthread_mutex_lock(&db->mu);
	if (db->stopping || db->n_cmds >= SOC_MAX_PENDING_CMDS) {
		int rc = db->stopping ? M_ECLOSED : M_EAGAIN;

		pthread_mutex_unlock(&db->mu);
		return rc;
	}
	c->next = NULL;
	*db->cmds_tail = c;
	db->cmds_tail = &c->next;
	db->n_cmds++;
	pthread_cond_signal(&db->work);
	while (!c->done)
		pthread_cond_wait(&db->done, &db->mu);
	pthread_mutex_unlock(&db->mu);
	return c->rc;
}

/* ---- SQLite helpers --------------------------------------------------- */

int soc_exec(sqlite3 *db, const char *sql, const char *what)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_msg(LOG_ERROR, "soc", "event=sqlite_error op=%s err=\"%s\"",
			what, msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return M_EIO;
	}
	return 0;
}

int soc_connect(const char *path, int readonly, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;

	*out = NULL;
	if (!readonly)
		flags |= SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		log_msg(LOG_ERROR, "soc", "event=open_failed path=\"%s\" err=\"%s\"",
			path, db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return M_EIO;
	}
	sqlite3_busy_timeout(db, 5000);
	if (soc_exec(db, readonly ? "PRAGMA query_only=1; PRAGMA temp_store=MEMORY;"
				  : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
				    "PRAGMA temp_store=MEMORY; PRAGMA journal_size_limit=67108864;",
		     "open") < 0) {
		sqlite3_close(db);
		return M_EIO;
	}
	*out = db;
	return 0;
}

static const char soc_schema[] =
	"CREATE TABLE IF NOT EXISTS incident("
	" id INTEGER PRIMARY KEY, rule_id TEXT NOT NULL, title TEXT NOT NULL,"
	" entity TEXT NOT NULL, status INTEGER NOT NULL, level INTEGER NOT NULL,"
	" severity INTEGER NOT NULL, count INTEGER NOT NULL,"
	" first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, assignee TEXT,"
	" tags TEXT NOT NULL, source INTEGER NOT NULL, created INTEGER NOT NULL,"
	" updated INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS incident_open ON incident(rule_id, entity, last_seen)"
	" WHERE status < 2;"
	"CREATE INDEX IF NOT EXISTS incident_last ON incident(last_seen);"
	"CREATE TABLE IF NOT EXISTS alert("
	" id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, incident_id INTEGER NOT NULL,"
	" rule_id TEXT NOT NULL, title TEXT NOT NULL, level INTEGER NOT NULL,"
	" source INTEGER NOT NULL, tags TEXT NOT NULL, entity TEXT NOT NULL,"
	" event_id INTEGER, event_ts INTEGER, event TEXT, ind_type TEXT,"
	" ind_value TEXT, ind_feed TEXT, ind_conf INTEGER,"
	" suppressed INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS alert_ts ON alert(ts);"
	"CREATE INDEX IF NOT EXISTS alert_incident ON alert(incident_id, ts);"
	"CREATE INDEX IF NOT EXISTS alert_rule ON alert(rule_id, ts);"
	"CREATE TABLE IF NOT EXISTS comment(id INTEGER PRIMARY KEY,"
	" incident_id INTEGER NOT NULL, ts INTEGER NOT NULL, author TEXT NOT NULL,"
	" text TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS comment_incident ON comment(incident_id, id);"
	"CREATE TABLE IF NOT EXISTS history(id INTEGER PRIMARY KEY,"
	" incident_id INTEGER NOT NULL, ts INTEGER NOT NULL, actor TEXT NOT NULL,"
	" field TEXT NOT NULL, old TEXT, new TEXT);"
	"CREATE INDEX IF NOT EXISTS history_incident ON history(incident_id, id);"
	"PRAGMA user_version=2;";

/* Version 1 databases: alerts did not carry the suppressed count. */
static int soc_migrate(sqlite3 *db)
{
	sqlite3_stmt *s = NULL;
	int v = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (v == 1)
		return soc_exec(db, "ALTER TABLE alert ADD COLUMN suppressed INTEGER NOT NULL"
				" DEFAULT 0; PRAGMA user_version=2;", "migrate_v2");
	return 0;
}

/* Prepared statements of the writer, made on first use. */
enum {
	ST_FIND, ST_INC_INS, ST_INC_UPD, ST_ALERT_INS, ST_HIST, ST_LOAD,
	ST_SET_STATUS, ST_SET_ASSIGNEE, ST_N_COMMENTS, ST_COMMENT_INS, ST_PRUNE,
	ST_COUNT
};

static const char *const st_sql[ST_COUNT] = {
	[ST_FIND] = "SELECT id, level, severity, count, first_seen, last_seen,"
		    " status, assignee FROM incident WHERE rule_id = ?1 AND"
		    " entity = ?2 AND status < 2 AND last_seen >= ?3"
		    " ORDER BY last_seen DESC LIMIT 1",
	[ST_INC_INS] = "INSERT INTO incident(rule_id, title, entity, status, level,"
		       " severity, count, first_seen, last_seen, assignee, tags,"
		       " source, created, updated) VALUES(?1, ?2, ?3, 0, ?4, ?5, ?10,"
		       " ?6, ?6, NULL, ?7, ?8, ?9, ?9)",
	[ST_INC_UPD] = "UPDATE incident SET level = ?2, severity = ?3, count = ?4,"
		       " first_seen = ?5, last_seen = ?6, updated = ?7 WHERE id = ?1",
	[ST_ALERT_INS] = "INSERT INTO alert(ts, incident_id, rule_id, title, level,"
			 " source, tags, entity, event_id, event_ts, event, ind_type,"
			 " ind_value, ind_feed, ind_conf, suppressed) VALUES(?1, ?2, ?3,"
			 " ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
	[ST_HIST] = "INSERT INTO history(incident_id, ts, actor, field, old, new)"
		    " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_LOAD] = "SELECT rule_id, title, entity, status, severity, count,"
		    " first_seen, last_seen, assignee FROM incident WHERE id = ?1",
	[ST_SET_STATUS] = "UPDATE incident SET status = ?2, updated = ?3 WHERE id = ?1",
	[ST_SET_ASSIGNEE] = "UPDATE incident SET assignee = ?2, updated = ?3 WHERE id = ?1",
	[ST_N_COMMENTS] = "SELECT COUNT(*) FROM comment WHERE incident_id = ?1",
	[ST_COMMENT_INS] = "INSERT INTO comment(incident_id, ts, author, text)"
			   " VALUES(?1, ?2, ?3, ?4)",
	[ST_PRUNE] = "DELETE FROM alert WHERE id IN (SELECT id FROM alert"
		     " WHERE ts < ?1 LIMIT ?2)",
};

struct writer {
	struct soc_db *db;
	sqlite3_stmt *st[ST_COUNT];
	struct pchange *changes;      /* batch_max + 1 */
	size_t n_changes;
};

/* A change waiting for the commit, with the strings it needs. */
struct pchange {
	struct soc_incident_change c;
	char assignee[SOC_MAX_NAME + 1];
};

/* The writer's statements are prepared once (on first use) and reset for
 * each use: the grouping query runs per alert, in a storm thousands of
 * times a second. */
static sqlite3_stmt *stmt(struct writer *w, int which)
{
	sqlite3_stmt *s = w->st[which];

	if (s == NULL) {
		if (sqlite3_prepare_v3(w->db->wdb, st_sql[which], -1,
				       SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
			log_msg(LOG_ERROR, "soc", "event=prepare_failed err=\"%s\"",
				sqlite3_errmsg(w->db->wdb));
			return NULL;
		}
		w->st[which] = s;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

static int step_done(struct writer *w, sqlite3_stmt *s, const char *what)
{
	int r = sqlite3_step(s);

	sqlite3_reset(s);
	if (r != SQLITE_DONE) {
		log_msg(LOG_ERROR, "soc", "event=sqlite_error op=%s err=\"%s\"",
			what, sqlite3_errmsg(w->db->wdb));
		return M_EIO;
	}
	return 0;
}

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

static int history_add(struct writer *w, int64_t id, int64_t now,
		       const char *actor, const char *field, const char *old,
		       const char *new_value)
{
	sqlite3_stmt *s = stmt(w, ST_HIST);

	if (s == NULL)
		return M_EIO;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_text(s, 3, actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, field, -1, SQLITE_STATIC);
	bind_text_or_null(s, 5, old);
	bind_text_or_null(s, 6, new_value);
	return step_done(w, s, "history");
}

/* The event as stored: the caller's JSON when it parses as an object,
 * otherwise the text as a JSON string, so a reader can always splice it. */
static int event_doc(const struct soc_item *it, struct buf *out)
{
	json_t *j;

	if (it->event == NULL)
		return 0;
	j = json_loadb(it->event, it->event_len, 0, NULL);
	if (j && json_is_object(j)) {
		json_decref(j);
		return 0;
	}
	json_decref(j);
	if (buf_putc(out, '"') || buf_json_escape(out, it->event, it->event_len) ||
	    buf_putc(out, '"') || buf_cstr(out))
		return M_ENOMEM;
	return 0;
}

/* Groups one alert into an incident and stores it; inside the caller's
 * transaction. On success *pc holds what happened. */
static int alert_write(struct writer *w, const struct soc_item *it,
		       struct pchange *pc)
{
	struct soc_db *db = w->db;
	struct soc_incident_change *c = &pc->c;
	int64_t now = clock_now_us(), inc_id = 0;
	sqlite3_stmt *s;
	struct buf evb;
	int rc = M_EIO, r;

	memset(pc, 0, sizeof(*pc));
	buf_init(&evb, SOC_MAX_EVENT_JSON * 6 + 8);
	c->rule_id = it->rule_id;
	c->title = it->title;
	c->entity = it->entity;
	if ((s = stmt(w, ST_FIND)) == NULL)
		goto out;
	sqlite3_bind_text(s, 1, it->rule_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, it->entity, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, it->ts_us - db->window_us);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		enum soc_level level = (enum soc_level)sqlite3_column_int(s, 1);
		const unsigned char *as = sqlite3_column_text(s, 7);

		inc_id = sqlite3_column_int64(s, 0);
		c->old_severity = (enum soc_level)sqlite3_column_int(s, 2);
		/* Alerts suppressed before this one count as detections. */
		c->count = (uint64_t)sqlite3_column_int64(s, 3) + 1 + it->suppressed;
		c->first_seen_us = sqlite3_column_int64(s, 4);
		c->last_seen_us = sqlite3_column_int64(s, 5);
		c->status = c->old_status = (enum soc_status)sqlite3_column_int(s, 6);
		if (as) {
			snprintf(pc->assignee, sizeof(pc->assignee), "%s", (const char *)as);
			c->assignee = pc->assignee;
		}
		if (it->level > level)
			level = it->level;
		c->severity = soc_escalate(level, c->count);
		if (c->severity < c->old_severity)
			c->severity = c->old_severity;   /* never lowered by volume */
		if (it->ts_us < c->first_seen_us)
			c->first_seen_us = it->ts_us;
		if (it->ts_us > c->last_seen_us)
			c->last_seen_us = it->ts_us;
		sqlite3_reset(s);
		if ((s = stmt(w, ST_INC_UPD)) == NULL)
			goto out;
		sqlite3_bind_int64(s, 1, inc_id);
		sqlite3_bind_int(s, 2, (int)level);
		sqlite3_bind_int(s, 3, (int)c->severity);
		sqlite3_bind_int64(s, 4, (int64_t)c->count);
		sqlite3_bind_int64(s, 5, c->first_seen_us);
		sqlite3_bind_int64(s, 6, c->last_seen_us);
		sqlite3_bind_int64(s, 7, now);
		if (step_done(w, s, "incident_update") < 0)
			goto out;
		c->kind = SOC_CHANGE_UPDATED;
		if (c->severity > c->old_severity) {
			c->kind = SOC_CHANGE_ESCALATED;
			if (history_add(w, inc_id, now, SOC_ACTOR_SYSTEM, "severity",
					soc_level_name(c->old_severity),
					soc_level_name(c->severity)) < 0)
				goto out;
		}
	} else if (r == SQLITE_DONE) {
		sqlite3_reset(s);
		c->kind = SOC_CHANGE_OPENED;
		c->count = 1 + it->suppressed;
		c->severity = c->old_severity = soc_escalate(it->level, c->count);
		c->status = c->old_status = SOC_STATUS_NEW;
		c->first_seen_us = c->last_seen_us = it->ts_us;
		if ((s = stmt(w, ST_INC_INS)) == NULL)
			goto out;
		sqlite3_bind_text(s, 1, it->rule_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, it->title, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, it->entity, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 4, (int)it->level);
		sqlite3_bind_int(s, 5, (int)c->severity);
		sqlite3_bind_int64(s, 6, it->ts_us);
		sqlite3_bind_text(s, 7, it->tags, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 8, (int)it->source);
		sqlite3_bind_int64(s, 9, now);
		sqlite3_bind_int64(s, 10, (int64_t)c->count);
		if (step_done(w, s, "incident_insert") < 0)
			goto out;
		inc_id = sqlite3_last_insert_rowid(db->wdb);
		if (history_add(w, inc_id, now, SOC_ACTOR_SYSTEM, "status", NULL,
				soc_status_name(SOC_STATUS_NEW)) < 0)
			goto out;
	} else {
		log_msg(LOG_ERROR, "soc", "event=sqlite_error op=find err=\"%s\"",
			sqlite3_errmsg(db->wdb));
		sqlite3_reset(s);
		goto out;
	}
	if (event_doc(it, &evb) < 0) {
		rc = M_ENOMEM;
		goto out;
	}
	if ((s = stmt(w, ST_ALERT_INS)) == NULL)
		goto out;
	sqlite3_bind_int64(s, 1, it->ts_us);
	sqlite3_bind_int64(s, 2, inc_id);
	sqlite3_bind_text(s, 3, it->rule_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, it->title, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 5, (int)it->level);
	sqlite3_bind_int(s, 6, (int)it->source);
	sqlite3_bind_text(s, 7, it->tags, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 8, it->entity, -1, SQLITE_STATIC);
	if (it->event_id)
		sqlite3_bind_int64(s, 9, (int64_t)it->event_id);
	if (it->event_ts_us)
		sqlite3_bind_int64(s, 10, it->event_ts_us);
	if (evb.len)
		sqlite3_bind_text(s, 11, evb.p, (int)evb.len, SQLITE_STATIC);
	else if (it->event)
		sqlite3_bind_text(s, 11, it->event, (int)it->event_len, SQLITE_STATIC);
	bind_text_or_null(s, 12, it->ind_type);
	bind_text_or_null(s, 13, it->ind_value);
	bind_text_or_null(s, 14, it->ind_feed);
	if (it->ind_type && it->ind_conf >= 0)
		sqlite3_bind_int(s, 15, it->ind_conf);
	sqlite3_bind_int64(s, 16, (int64_t)it->suppressed);
	if (step_done(w, s, "alert_insert") < 0)
		goto out;
	c->alert_id = sqlite3_last_insert_rowid(db->wdb);
	c->incident_id = inc_id;
	rc = 0;
out:
	buf_fini(&evb);
	return rc;
}

static void notify_changes(struct writer *w)
{
	struct soc_db *db = w->db;

	for (size_t i = 0; i < w->n_changes; i++) {
		if (w->changes[i].c.kind == SOC_CHANGE_OPENED)
			metric_add(db->m_opened, 1);
		if (db->on_incident)
			db->on_incident(db->ctx, &w->changes[i].c);
	}
	w->n_changes = 0;
}

/* Writes a batch of queued alerts in one transaction; an alert that fails
 * is rolled back alone (a savepoint each). Returns how many were stored. */
static size_t batch_write(struct writer *w, struct soc_item **items, size_t n)
{
	sqlite3 *wdb = w->db->wdb;
	size_t stored = 0;

	w->n_changes = 0;
	if (soc_exec(wdb, "BEGIN IMMEDIATE", "begin") < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct pchange *pc = &w->changes[w->n_changes];

		if (soc_exec(wdb, "SAVEPOINT a", "savepoint") < 0)
			break;
		if (alert_write(w, items[i], pc) == 0) {
			soc_exec(wdb, "RELEASE a", "release");
			w->n_changes++;
			stored++;
		} else {
			soc_exec(wdb, "ROLLBACK TO a; RELEASE a", "rollback_to");
		}
	}
	if (soc_exec(wdb, "COMMIT", "commit") < 0) {
		soc_exec(wdb, "ROLLBACK", "rollback");
		w->n_changes = 0;
		return 0;
	}
	notify_changes(w);
	return stored;
}

/* The incident's row, for people's changes (and the hook's strings). */
struct inc_row {
	char rule_id[SOC_MAX_ID + 1];
	char title[SOC_MAX_TITLE + 1];
	char entity[SOC_MAX_KEY_FIELDS * (SOC_MAX_KEY_NAME + SOC_MAX_KEY_VALUE) * 6 + 64];
	char assignee[SOC_MAX_NAME + 1];
	int has_assignee;
	enum soc_status status;
	enum soc_level severity;
	uint64_t count;
	int64_t first_seen, last_seen;
};

static void col_copy(sqlite3_stmt *s, int col, char *out, size_t outsz)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	snprintf(out, outsz, "%s", t ? (const char *)t : "");
}

/* 0, M_ENOTFOUND or M_EIO. */
static int inc_load(struct writer *w, int64_t id, struct inc_row *row)
{
	sqlite3_stmt *s = stmt(w, ST_LOAD);
	int r;

	if (s == NULL)
		return M_EIO;
	sqlite3_bind_int64(s, 1, id);
	r = sqlite3_step(s);
	if (r != SQLITE_ROW) {
		sqlite3_reset(s);
		return r == SQLITE_DONE ? M_ENOTFOUND : M_EIO;
	}
	col_copy(s, 0, row->rule_id, sizeof(row->rule_id));
	col_copy(s, 1, row->title, sizeof(row->title));
	col_copy(s, 2, row->entity, sizeof(row->entity));
	row->status = (enum soc_status)sqlite3_column_int(s, 3);
	row->severity = (enum soc_level)sqlite3_column_int(s, 4);
	row->count = (uint64_t)sqlite3_column_int64(s, 5);
	row->first_seen = sqlite3_column_int64(s, 6);
	row->last_seen = sqlite3_column_int64(s, 7);
	row->has_assignee = sqlite3_column_type(s, 8) != SQLITE_NULL;
	col_copy(s, 8, row->assignee, sizeof(row->assignee));
	sqlite3_reset(s);
	return 0;
}

static struct pchange *change_for(struct writer *w, const struct inc_row *row,
				  int64_t id, enum soc_change_kind kind,
				  const char *actor)
{
	struct pchange *pc = &w->changes[w->n_changes++];
	struct soc_incident_change *c = &pc->c;

	memset(pc, 0, sizeof(*pc));
	c->kind = kind;
	c->incident_id = id;
	c->rule_id = row->rule_id;
	c->title = row->title;
	c->entity = row->entity;
	c->severity = c->old_severity = row->severity;
	c->status = c->old_status = row->status;
	c->assignee = row->has_assignee ? row->assignee : NULL;
	c->actor = actor;
	c->count = row->count;
	c->first_seen_us = row->first_seen;
	c->last_seen_us = row->last_seen;
	return pc;
}

/* A PATCH: the transition is checked against the row read inside the same
 * transaction, so two analysts racing cannot both pass the check on a stale
 * status. Each changed value is one history entry and one hook call. */
static int cmd_update(struct writer *w, struct soc_cmd *cmd, struct inc_row *row)
{
	const struct soc_update *u = cmd->u;
	int64_t now = clock_now_us();
	struct pchange *pc;
	sqlite3_stmt *s;
	int rc;

	if ((rc = inc_load(w, cmd->id, row)) != 0)
		return rc;
	if (u->status && *u->status != row->status) {
		enum soc_status to = *u->status;

		if (!soc_transition_ok(row->status, to)) {
			snprintf(cmd->why, sizeof(cmd->why),
				 "an incident cannot go from %s to %s (%s)",
				 soc_status_name(row->status), soc_status_name(to),
				 row->status == SOC_STATUS_NEW
				 ? "acknowledge it first, or mark it false_positive"
				 : row->status == SOC_STATUS_ACKNOWLEDGED
				 ? "allowed: resolved, false_positive, new"
				 : "reopen it first: status new");
			return M_EINVAL;
		}
		if ((s = stmt(w, ST_SET_STATUS)) == NULL)
			return M_EIO;
		sqlite3_bind_int64(s, 1, cmd->id);
		sqlite3_bind_int(s, 2, (int)to);
		sqlite3_bind_int64(s, 3, now);
		if (step_done(w, s, "set_status") < 0 ||
		    history_add(w, cmd->id, now, u->actor, "status",
				soc_status_name(row->status), soc_status_name(to)) < 0)
			return M_EIO;
		pc = change_for(w, row, cmd->id, SOC_CHANGE_STATUS, u->actor);
		pc->c.status = to;
		row->status = to;   /* an assignment below reports the new one */
	}
	if (u->assignee) {
		const char *to = u->assignee[0] ? u->assignee : NULL;
		const char *from = row->has_assignee ? row->assignee : NULL;

		if ((to == NULL) != (from == NULL) ||
		    (to && strcmp(to, from) != 0)) {
			if ((s = stmt(w, ST_SET_ASSIGNEE)) == NULL)
				return M_EIO;
			sqlite3_bind_int64(s, 1, cmd->id);
			bind_text_or_null(s, 2, to);
			sqlite3_bind_int64(s, 3, now);
			if (step_done(w, s, "set_assignee") < 0 ||
			    history_add(w, cmd->id, now, u->actor, "assignee",
					from, to) < 0)
				return M_EIO;
			pc = change_for(w, row, cmd->id, SOC_CHANGE_ASSIGNED, u->actor);
			pc->c.assignee = to;
		}
	}
	return 0;
}

/* A comment, bounded per incident, and its history entry (to = its id). */
static int cmd_comment(struct writer *w, struct soc_cmd *cmd, struct inc_row *row)
{
	int64_t now = clock_now_us(), n;
	char idtext[24];
	sqlite3_stmt *s;
	int rc;

	if ((rc = inc_load(w, cmd->id, row)) != 0)
		return rc;
	if ((s = stmt(w, ST_N_COMMENTS)) == NULL)
		return M_EIO;
	sqlite3_bind_int64(s, 1, cmd->id);
	n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
	sqlite3_reset(s);
	if (n < 0)
		return M_EIO;
	if (n >= SOC_MAX_COMMENTS)
		return M_ELIMIT;
	if ((s = stmt(w, ST_COMMENT_INS)) == NULL)
		return M_EIO;
	sqlite3_bind_int64(s, 1, cmd->id);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_text(s, 3, cmd->author, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, cmd->text, -1, SQLITE_STATIC);
	if (step_done(w, s, "comment") < 0)
		return M_EIO;
	cmd->comment_id = sqlite3_last_insert_rowid(w->db->wdb);
	snprintf(idtext, sizeof(idtext), "%" PRId64, cmd->comment_id);
	if (history_add(w, cmd->id, now, cmd->author, "comment", NULL, idtext) < 0)
		return M_EIO;
	change_for(w, row, cmd->id, SOC_CHANGE_COMMENTED, cmd->author);
	return 0;
}

/* Runs one command in its own transaction; its hook calls follow the
 * commit. */
static void cmd_exec(struct writer *w, struct soc_cmd *cmd, struct inc_row *row)
{
	sqlite3 *wdb = w->db->wdb;
	int rc;

	w->n_changes = 0;
	if (soc_exec(wdb, "BEGIN IMMEDIATE", "begin") < 0) {
		cmd->rc = M_EIO;
		return;
	}
	switch (cmd->kind) {
	case CMD_ALERT:
		rc = alert_write(w, cmd->item, &w->changes[0]);
		if (rc == 0) {
			const struct soc_incident_change *c = &w->changes[0].c;

			w->n_changes = 1;
			cmd->res.kind = c->kind;
			cmd->res.alert_id = c->alert_id;
			cmd->res.incident_id = c->incident_id;
			cmd->res.severity = c->severity;
			cmd->res.count = c->count;
		}
		break;
	case CMD_UPDATE:
		rc = cmd_update(w, cmd, row);
		break;
	case CMD_COMMENT:
		rc = cmd_comment(w, cmd, row);
		break;
	default:
		rc = M_EINVAL;
		break;
	}
	if (rc == 0 && soc_exec(wdb, "COMMIT", "commit") == 0) {
		notify_changes(w);
	} else {
		soc_exec(wdb, "ROLLBACK", "rollback");
		w->n_changes = 0;
		if (rc == 0)
			rc = M_EIO;
	}
	cmd->rc = rc;
}

/* Deletes alerts older than the retention, a chunk at a time, at most once
 * an hour, so a large backlog never holds the writer for long. */
static void prune(struct writer *w)
{
	struct soc_db *db = w->db;
	int64_t now = clock_now_us();
	sqlite3_stmt *s;

	if (db->retention_us <= 0 || now - db->last_prune_us < SOC_PRUNE_EVERY_US)
		return;
	if ((s = stmt(w, ST_PRUNE)) == NULL)
		return;
	sqlite3_bind_int64(s, 1, now - db->retention_us);
	sqlite3_bind_int(s, 2, SOC_PRUNE_CHUNK);
	if (step_done(w, s, "prune") < 0)
		return;
	if (sqlite3_changes(db->wdb) < SOC_PRUNE_CHUNK)
		db->last_prune_us = now;   /* done: next look in an hour */
}

/* The one writer: people's commands first (someone is waiting for them),
 * then up to batch_max queued alerts in one transaction; the mutex is held
 * only to move pointers, never across SQLite. It leaves when stopping and
 * both queues are empty, so closing drains. */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct soc_db *db = w->db;
	struct soc_item **items;
	struct inc_row *row;

	items = calloc(db->batch_max, sizeof(*items));
	row = malloc(sizeof(*row));
	pthread_mutex_lock(&db->mu);
	for (;;) {
		struct soc_cmd *cmds;
		size_t k = 0, stored;

		while (!db->stopping && db->n == 0 && db->cmds == NULL) {
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 60;
			if (pthread_cond_timedwait(&db->work, &db->mu, &until) == ETIMEDOUT)
				break;
		}
		if (db->stopping && db->n == 0 && db->cmds == NULL)
			break;
		cmds = db->cmds;
		db->cmds = NULL;
		db->cmds_tail = &db->cmds;
		db->n_cmds = 0;
		while (items && row && k < db->batch_max && db->n > 0) {
			struct soc_item *it = db->ring[db->head];

			db->ring[db->head] = NULL;
			db->head = (db->head + 1) % db->queue_cap;
			db->n--;
			db->queued_bytes -= it->bytes;
			items[k++] = it;
		}
		pthread_mutex_unlock(&db->mu);

		for (struct soc_cmd *c = cmds; c; c = c->next) {
			if (row)
				cmd_exec(w, c, row);
			else
				c->rc = M_ENOMEM;
		}
		stored = k ? batch_write(w, items, k) : 0;
		for (size_t i = 0; i < k; i++)
			free(items[i]);
		prune(w);

		pthread_mutex_lock(&db->mu);
		db->seq_done += k;
		db->stored += stored;
		db->failed += k - stored;
		metric_add(db->m_stored, stored);
		metric_add(db->m_failed, k - stored);
		while (cmds) {
			struct soc_cmd *next = cmds->next;

			cmds->done = 1;   /* the waiter may free it from now on */
			cmds = next;
		}
		pthread_cond_broadcast(&db->done);
		if ((items == NULL || row == NULL) && db->n > 0) {
			/* Out of memory at start: nothing can be written. */
			while (db->n > 0) {
				free(db->ring[db->head]);
				db->ring[db->head] = NULL;
				db->head = (db->head + 1) % db->queue_cap;
				db->n--;
				db->failed++;
				db->seq_done++;
			}
			db->queued_bytes = 0;
		}
	}
	pthread_mutex_unlock(&db->mu);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(w->st[i]);
	free(items);
	free(row);
	free(w->changes);
	free(w);
	return NULL;
}

/* ---- lifecycle --------------------------------------------------------- */

int soc_open(const struct soc_config *cfg, soc_incident_fn on_incident,
	     void *ctx, struct soc_db **out)
{
	struct soc_db *db;
	struct writer *w = NULL;
	int rc = M_EIO;

	*out = NULL;
	if (cfg == NULL || cfg->path == NULL || cfg->path[0] == '\0' ||
	    strlen(cfg->path) >= SOC_PATH_MAX || cfg->window < 0 ||
	    cfg->queue < 0 || cfg->queue > 1000000 || cfg->batch < 0 ||
	    cfg->batch > 10000 || cfg->retention < 0)
		return M_EINVAL;
	db = calloc(1, sizeof(*db));
	if (db == NULL)
		return M_ENOMEM;
	snprintf(db->path, sizeof(db->path), "%s", cfg->path);
	db->window_us = (cfg->window ? cfg->window : SOC_DEFAULT_WINDOW) * 1000000LL;
	db->retention_us = cfg->retention * 1000000LL;
	db->queue_cap = (size_t)(cfg->queue ? cfg->queue : SOC_DEFAULT_QUEUE);
	db->batch_max = (size_t)(cfg->batch ? cfg->batch : SOC_DEFAULT_BATCH);
	db->on_incident = on_incident;
	db->ctx = ctx;
	db->cmds_tail = &db->cmds;
	pthread_mutex_init(&db->mu, NULL);
	pthread_mutex_init(&db->pool_mu, NULL);
	pthread_cond_init(&db->work, NULL);
	pthread_cond_init(&db->done, NULL);
	db->m_dropped = metric_get("mamori_soc_alerts_dropped_total",
				   "alerts dropped because the SOC queue was full",
				   METRIC_COUNTER, NULL);
	db->m_stored = metric_get("mamori_soc_alerts_stored_total",
				  "alerts written to the SOC database", METRIC_COUNTER, NULL);
	db->m_failed = metric_get("mamori_soc_alerts_failed_total",
				  "alerts the SOC database could not take", METRIC_COUNTER, NULL);
	db->m_opened = metric_get("mamori_soc_incidents_opened_total",
				  "incidents opened", METRIC_COUNTER, NULL);
	db->ring = calloc(db->queue_cap, sizeof(*db->ring));
	w = calloc(1, sizeof(*w));
	if (db->ring == NULL || w == NULL) {
		rc = M_ENOMEM;
		goto fail;
	}
	w->db = db;
	w->changes = calloc(db->batch_max + 2, sizeof(*w->changes));
	if (w->changes == NULL) {
		rc = M_ENOMEM;
		goto fail;
	}
	if ((rc = soc_connect(db->path, 0, &db->wdb)) < 0)
		goto fail;
	if ((rc = soc_migrate(db->wdb)) < 0 ||
	    (rc = soc_exec(db->wdb, soc_schema, "schema")) < 0)
		goto fail;
	if (pthread_create(&db->thread, NULL, writer_main, w) != 0) {
		rc = M_EIO;
		goto fail;
	}
	db->thread_started = 1;
	log_msg(LOG_INFO, "soc", "event=opened path=\"%s\" window_s=%lld queue=%zu",
		db->path, (long long)(db->window_us / 1000000), db->queue_cap);
	*out = db;
	return 0;
fail:
	if (w)
		free(w->changes);
	free(w);
	soc_close(db);
	return rc;
}

void soc_close(struct soc_db *db)
{
	if (db == NULL)
		return;
	if (db->thread_started) {
		pthread_mutex_lock(&db->mu);
		db->stopping = 1;
		pthread_cond_broadcast(&db->work);
		pthread_mutex_unlock(&db->mu);
		pthread_join(db->thread, NULL);
	}
	while (db->ring && db->n > 0) {
		free(db->ring[db->head]);
		db->head = (db->head + 1) % db->queue_cap;
		db->n--;
	}
	free(db->ring);
	if (db->wdb) {
		/* Folds the WAL back so the file is whole after a clean stop. */
		soc_exec(db->wdb, "PRAGMA wal_checkpoint(TRUNCATE)", "checkpoint");
		sqlite3_close(db->wdb);
	}
	soc_read_pool_fini(db);
	pthread_cond_destroy(&db->work);
	pthread_cond_destroy(&db->done);
	pthread_mutex_destroy(&db->mu);
	pthread_mutex_destroy(&db->pool_mu);
	free(db);
}

int soc_alert_submit(struct soc_db *db, const struct soc_alert *a)
{
	struct soc_item *it;
	int rc;

	if (db == NULL)
		return M_EINVAL;
	if ((rc = item_new(a, &it)) != 0)
		return rc;
	pthread_mutex_lock(&db->mu);
	if (db->stopping) {
		rc = M_ECLOSED;
	} else if (db->n >= db->queue_cap ||
		   db->queued_bytes + it->bytes > SOC_MAX_QUEUE_BYTES) {
		db->dropped++;
		metric_add(db->m_dropped, 1);
		rc = M_EAGAIN;
	} else {
		db->ring[(db->head + db->n) % db->queue_cap] = it;
		db->n++;
		db->queued_bytes += it->bytes;
		db->seq_in++;
		db->submitted++;
		it = NULL;
		pthread_cond_signal(&db->work);
	}
	pthread_mutex_unlock(&db->mu);
	free(it);
	return rc;
}

int soc_alert_add(struct soc_db *db, const struct soc_alert *a,
		  struct soc_add_result *out)
{
	struct soc_cmd c;
	int rc;

	if (db == NULL)
		return M_EINVAL;
	memset(&c, 0, sizeof(c));
	c.kind = CMD_ALERT;
	if ((rc = item_new(a, &c.item)) != 0)
		return rc;
	rc = cmd_run(db, &c);
	if (rc == 0 && out)
		*out = c.res;
	free(c.item);
	return rc;
}

int soc_flush(struct soc_db *db, int timeout_ms)
{
	struct timespec until;
	uint64_t target;
	int rc = 0;

	if (db == NULL)
		return 0;
	clock_gettime(CLOCK_REALTIME, &until);
	if (timeout_ms >= 0) {
		until.tv_sec += timeout_ms / 1000;
		until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&db->mu);
	target = db->seq_in;
	pthread_cond_signal(&db->work);
	while (db->seq_done < target) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&db->done, &db->mu);
		} else if (pthread_cond_timedwait(&db->done, &db->mu, &until) == ETIMEDOUT &&
			   db->seq_done < target) {
			rc = M_EAGAIN;
			break;
		}
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

void soc_get_stats(struct soc_db *db, struct soc_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (db == NULL)
		return;
	pthread_mutex_lock(&db->mu);
	out->submitted = db->submitted;
	out->dropped = db->dropped;
	out->stored = db->stored;
	out->failed = db->failed;
	out->queued = db->n;
	pthread_mutex_unlock(&db->mu);
}

int soc_incident_update(struct soc_db *db, int64_t id,
			const struct soc_update *u, char *why, size_t whysz)
{
	struct soc_cmd c;
	int rc;

	if (why && whysz)
		why[0] = '\0';
	if (db == NULL || u == NULL || !str_ok(u->actor, SOC_MAX_NAME, 0) ||
	    !str_ok(u->assignee, SOC_MAX_NAME, 1) ||
	    (u->status && (unsigned)*u->status >= SOC_STATUS_COUNT))
		return M_EINVAL;
	if (id <= 0)
		return M_ENOTFOUND;
	memset(&c, 0, sizeof(c));
	c.kind = CMD_UPDATE;
	c.id = id;
	c.u = u;
	rc = cmd_run(db, &c);
	if (rc != 0 && why && whysz)
		snprintf(why, whysz, "%s", c.why);
	return rc;
}

int soc_incident_comment(struct soc_db *db, int64_t id, const char *author,
			 const char *text, int64_t *comment_id)
{
	struct soc_cmd c;
	int rc;

	if (db == NULL || !str_ok(author, SOC_MAX_NAME, 0) ||
	    !str_ok(text, SOC_MAX_COMMENT, 0))
		return M_EINVAL;
	if (id <= 0)
		return M_ENOTFOUND;
	memset(&c, 0, sizeof(c));
	c.kind = CMD_COMMENT;
	c.id = id;
	c.author = author;
	c.text = text;
	rc = cmd_run(db, &c);
	if (rc == 0 && comment_id)
		*comment_id = c.comment_id;
	return rc;
}
