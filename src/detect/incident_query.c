/*
 * The SOC back-end's read side: lists and single alerts and incidents as
 * JSON, for the API.
 *
 * Why it is apart from the writer: readers run on the API's threads with
 * their own connections (WAL lets them read while the writer commits), kept
 * in a small pool so a request does not pay for opening the file. Each
 * answer is read inside one read transaction, so a total and its page, or an
 * incident and its comments, come from the same snapshot. SQL text is built
 * only from fixed fragments; every value from a request is a bound
 * parameter. Columns that hold JSON (tags, entity, event) were written by
 * the writer as valid JSON and are spliced into the answer as they are.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/event.h"
#include "core/log.h"
#include "detect/incident_int.h"

#define SOC_MAX_HISTORY 2000      /* history entries in one answer */
#define SOC_MAX_BINDS 16

/* ---- the read pool ----------------------------------------------------- */

/* A read connection: an idle one from the pool, or a new one when all are
 * busy (bounded by the API's thread count); conn_put keeps at most
 * SOC_READ_POOL idle. */
static int conn_get(struct soc_db *db, sqlite3 **out)
{
	*out = NULL;
	pthread_mutex_lock(&db->pool_mu);
	if (db->n_pool > 0)
		*out = db->pool[--db->n_pool];
	pthread_mutex_unlock(&db->pool_mu);
	if (*out)
		return 0;
	return soc_connect(db->path, 1, out);
}

static void conn_put(struct soc_db *db, sqlite3 *c)
{
	if (c == NULL)
		return;
	if (!sqlite3_get_autocommit(c))
		sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_lock(&db->pool_mu);
	if (db->n_pool < SOC_READ_POOL) {
		db->pool[db->n_pool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&db->pool_mu);
	sqlite3_close(c);
}

void soc_read_pool_fini(struct soc_db *db)
{
	for (size_t i = 0; i < db->n_pool; i++)
		sqlite3_close(db->pool[i]);
	db->n_pool = 0;
}

/* ---- JSON helpers ------------------------------------------------------ */

static int put_str(struct buf *b, const char *s)
{
	int rc;

	if (s == NULL)
		return buf_puts(b, "null");
	rc = buf_putc(b, '"');
	rc = rc ? rc : buf_json_escape(b, s, strlen(s));
	return rc ? rc : buf_putc(b, '"');
}

static int put_key(struct buf *b, const char *key, int *first)
{
	int rc = *first ? 0 : buf_putc(b, ',');

	*first = 0;
	rc = rc ? rc : buf_putc(b, '"');
	rc = rc ? rc : buf_puts(b, key);
	return rc ? rc : buf_puts(b, "\":");
}

static int put_time(struct buf *b, int64_t us)
{
	char ts[32];
	size_t n = event_format_ts(us, ts);

	ts[n] = '\0';
	return put_str(b, ts);
}

static const char *col_text(sqlite3_stmt *s, int col)
{
	return (const char *)sqlite3_column_text(s, col);
}

/* A column we wrote as JSON, spliced; null when absent. */
static int put_raw(struct buf *b, sqlite3_stmt *s, int col, const char *dflt)
{
	const char *t = col_text(s, col);

	if (t == NULL || t[0] == '\0')
		return buf_puts(b, dflt);
	return buf_append(b, t, (size_t)sqlite3_column_bytes(s, col));
}

/* ---- alerts ------------------------------------------------------------ */

#define ALERT_COLS "id, ts, incident_id, rule_id, title, level, source, tags," \
	" entity, event_id, event_ts, event, ind_type, ind_value, ind_feed, ind_conf," \
	" suppressed"

/* One alert row (ALERT_COLS order) as a JSON object; the stored JSON columns
 * are spliced, everything else escaped. */
static int alert_render(struct buf *b, sqlite3_stmt *s, int with_event)
{
	int first = 1, rc;

	rc = buf_putc(b, '{');
	rc = rc ? rc : put_key(b, "id", &first);
	rc = rc ? rc : buf_printf(b, "%" PRId64, (int64_t)sqlite3_column_int64(s, 0));
	rc = rc ? rc : put_key(b, "time", &first);
	rc = rc ? rc : put_time(b, sqlite3_column_int64(s, 1));
	rc = rc ? rc : put_key(b, "incident_id", &first);
	rc = rc ? rc : buf_printf(b, "%" PRId64, (int64_t)sqlite3_column_int64(s, 2));
	rc = rc ? rc : put_key(b, "rule_id", &first);
	rc = rc ? rc : put_str(b, col_text(s, 3));
	rc = rc ? rc : put_key(b, "rule_title", &first);
	rc = rc ? rc : put_str(b, col_text(s, 4));
	rc = rc ? rc : put_key(b, "level", &first);
	rc = rc ? rc : put_str(b, soc_level_name((enum soc_level)sqlite3_column_int(s, 5)));
	rc = rc ? rc : put_key(b, "source", &first);
	rc = rc ? rc : put_str(b, soc_source_name((enum soc_source)sqlite3_column_int(s, 6)));
	rc = rc ? rc : put_key(b, "tags", &first);
	rc = rc ? rc : put_raw(b, s, 7, "[]");
	rc = rc ? rc : put_key(b, "entity", &first);
	rc = rc ? rc : put_raw(b, s, 8, "{}");
	rc = rc ? rc : put_key(b, "event_id", &first);
	if (sqlite3_column_type(s, 9) == SQLITE_NULL)
		rc = rc ? rc : buf_puts(b, "null");
	else
		rc = rc ? rc : buf_printf(b, "%" PRIu64, (uint64_t)sqlite3_column_int64(s, 9));
	rc = rc ? rc : put_key(b, "event_time", &first);
	if (sqlite3_column_type(s, 10) == SQLITE_NULL)
		rc = rc ? rc : buf_puts(b, "null");
	else
		rc = rc ? rc : put_time(b, sqlite3_column_int64(s, 10));
	if (with_event) {
		rc = rc ? rc : put_key(b, "event", &first);
		rc = rc ? rc : put_raw(b, s, 11, "null");
	}
	rc = rc ? rc : put_key(b, "indicator", &first);
	if (sqlite3_column_type(s, 12) == SQLITE_NULL) {
		rc = rc ? rc : buf_puts(b, "null");
	} else {
		int f2 = 1;

		rc = rc ? rc : buf_putc(b, '{');
		rc = rc ? rc : put_key(b, "type", &f2);
		rc = rc ? rc : put_str(b, col_text(s, 12));
		rc = rc ? rc : put_key(b, "value", &f2);
		rc = rc ? rc : put_str(b, col_text(s, 13));
		rc = rc ? rc : put_key(b, "feed", &f2);
		rc = rc ? rc : put_str(b, col_text(s, 14));
		rc = rc ? rc : put_key(b, "confidence", &f2);
		if (sqlite3_column_type(s, 15) == SQLITE_NULL)
			rc = rc ? rc : buf_puts(b, "null");
		else
			rc = rc ? rc : buf_printf(b, "%d", sqlite3_column_int(s, 15));
		rc = rc ? rc : buf_putc(b, '}');
	}
	rc = rc ? rc : put_key(b, "suppressed", &first);
	rc = rc ? rc : buf_printf(b, "%" PRId64, (int64_t)sqlite3_column_int64(s, 16));
	return rc ? rc : buf_putc(b, '}');
}

/* A WHERE clause and its bindings, built from fixed fragments. */
struct where {
	char sql[1024];
	size_t len;
	int n;
	struct { int is_text; int64_t i; const char *t; } v[SOC_MAX_BINDS];
};

static void where_add(struct where *w, const char *frag)
{
	int k = snprintf(w->sql + w->len, sizeof(w->sql) - w->len, "%s%s",
			 w->len ? " AND " : " WHERE ", frag);

	if (k > 0 && (size_t)k < sizeof(w->sql) - w->len)
		w->len += (size_t)k;
}

static void where_int(struct where *w, const char *frag, int64_t v)
{
	where_add(w, frag);
	w->v[w->n].is_text = 0;
	w->v[w->n++].i = v;
}

static void where_text(struct where *w, const char *frag, const char *t)
{
	where_add(w, frag);
	w->v[w->n].is_text = 1;
	w->v[w->n++].t = t;
}

/* "col IN (0,2,3)" from a bit mask over small enum values. */
static void where_mask(struct where *w, const char *col, unsigned mask,
		       unsigned n_values)
{
	char frag[128];
	size_t o;

	o = (size_t)snprintf(frag, sizeof(frag), "%s IN (", col);
	for (unsigned i = 0; i < n_values && o < sizeof(frag) - 8; i++)
		if (mask & (1u << i))
			o += (size_t)snprintf(frag + o, sizeof(frag) - o, "%s%u",
					      frag[o - 1] == '(' ? "" : ",", i);
	snprintf(frag + o, sizeof(frag) - o, ")");
	where_add(w, frag);
}

static int prepare(sqlite3 *c, const char *what, const char *head,
		   const struct where *w, const char *tail, sqlite3_stmt **out)
{
	char sql[2048];
	int k = snprintf(sql, sizeof(sql), "%s%s%s", head, w ? w->sql : "",
			 tail ? tail : "");

	*out = NULL;
	if (k < 0 || (size_t)k >= sizeof(sql))
		return M_ELIMIT;
	if (sqlite3_prepare_v2(c, sql, -1, out, NULL) != SQLITE_OK) {
		log_msg(LOG_ERROR, "soc", "event=prepare_failed op=%s err=\"%s\"",
			what, sqlite3_errmsg(c));
		return M_EIO;
	}
	for (int i = 0; w && i < w->n; i++) {
		if (w->v[i].is_text)
			sqlite3_bind_text(*out, i + 1, w->v[i].t, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(*out, i + 1, w->v[i].i);
	}
	return 0;
}

static int64_t count_rows(sqlite3 *c, const char *head, const struct where *w)
{
	sqlite3_stmt *s;
	int64_t n = -1;

	if (prepare(c, "count", head, w, NULL, &s) < 0)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

/* Steps s, rendering each row into a JSON array. */
static int render_rows(sqlite3 *c, sqlite3_stmt *s, struct buf *out,
		       int (*render)(struct buf *, sqlite3_stmt *, int), int arg)
{
	int r, rc = buf_putc(out, '['), n = 0;

	while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
		rc = n++ ? buf_putc(out, ',') : 0;
		rc = rc ? rc : render(out, s, arg);
	}
	if (rc == 0 && r != SQLITE_DONE) {
		log_msg(LOG_ERROR, "soc", "event=read_failed err=\"%s\"", sqlite3_errmsg(c));
		rc = M_EIO;
	}
	return rc ? rc : buf_putc(out, ']');
}

static int begin_read(sqlite3 *c)
{
	return soc_exec(c, "BEGIN", "begin_read");
}

static void paging_sql(char *out, size_t outsz, const char *order,
		       uint32_t limit, uint64_t offset)
{
	snprintf(out, outsz, " ORDER BY %s LIMIT %u OFFSET %" PRIu64, order,
		 limit ? limit : 100, offset);
}

int soc_alerts_json(struct soc_db *db, const struct soc_alert_query *q,
		    struct buf *out)
{
	struct where w = { .len = 0 };
	sqlite3 *c = NULL;
	sqlite3_stmt *s = NULL;
	char tail[128];
	int64_t total;
	int rc;

	if (q->from_us)
		where_int(&w, "ts >= ?", q->from_us);
	if (q->to_us)
		where_int(&w, "ts <= ?", q->to_us);
	if (q->rule_id)
		where_text(&w, "rule_id = ?", q->rule_id);
	if (q->level_mask)
		where_mask(&w, "level", q->level_mask, SOC_LEVEL_COUNT);
	if (q->incident_id)
		where_int(&w, "incident_id = ?", q->incident_id);
	if ((rc = conn_get(db, &c)) < 0 || (rc = begin_read(c)) < 0)
		goto out;
	total = count_rows(c, "SELECT COUNT(*) FROM alert", &w);
	if (total < 0) {
		rc = M_EIO;
		goto out;
	}
	paging_sql(tail, sizeof(tail), "ts DESC, id DESC", q->limit, q->offset);
	if ((rc = prepare(c, "alerts", "SELECT " ALERT_COLS " FROM alert", &w,
			  tail, &s)) < 0)
		goto out;
	rc = buf_printf(out, "{\"total\":%" PRId64 ",\"limit\":%u,\"offset\":%" PRIu64
			",\"alerts\":", total, q->limit, q->offset);
	rc = rc ? rc : render_rows(c, s, out, alert_render, 1);
	rc = rc ? rc : buf_puts(out, "}\n");
out:
	sqlite3_finalize(s);
	conn_put(db, c);
	return rc;
}

int soc_alert_json(struct soc_db *db, int64_t id, struct buf *out)
{
	sqlite3 *c = NULL;
	sqlite3_stmt *s = NULL;
	struct where w = { .len = 0 };
	int rc, r;

	where_int(&w, "id = ?", id);
	if ((rc = conn_get(db, &c)) < 0)
		goto out;
	if ((rc = prepare(c, "alert", "SELECT " ALERT_COLS " FROM alert", &w,
			  NULL, &s)) < 0)
		goto out;
	r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		rc = alert_render(out, s, 1);
		rc = rc ? rc : buf_putc(out, '\n');
	} else {
		rc = r == SQLITE_DONE ? M_ENOTFOUND : M_EIO;
	}
out:
	sqlite3_finalize(s);
	conn_put(db, c);
	return rc;
}

/* ---- incidents --------------------------------------------------------- */

#define INCIDENT_COLS "id, rule_id, title, entity, status, level, severity," \
	" count, first_seen, last_seen, assignee, tags, source, created, updated"

/* One incident row (INCIDENT_COLS order); left open when close_it is 0 so
 * the single-incident answer can append its comments, history and alerts. */
static int incident_render(struct buf *b, sqlite3_stmt *s, int close_it)
{
	int first = 1, rc;

	rc = buf_putc(b, '{');
	rc = rc ? rc : put_key(b, "id", &first);
	rc = rc ? rc : buf_printf(b, "%" PRId64, (int64_t)sqlite3_column_int64(s, 0));
	rc = rc ? rc : put_key(b, "rule_id", &first);
	rc = rc ? rc : put_str(b, col_text(s, 1));
	rc = rc ? rc : put_key(b, "title", &first);
	rc = rc ? rc : put_str(b, col_text(s, 2));
	rc = rc ? rc : put_key(b, "entity", &first);
	rc = rc ? rc : put_raw(b, s, 3, "{}");
	rc = rc ? rc : put_key(b, "status", &first);
	rc = rc ? rc : put_str(b, soc_status_name((enum soc_status)sqlite3_column_int(s, 4)));
	rc = rc ? rc : put_key(b, "level", &first);
	rc = rc ? rc : put_str(b, soc_level_name((enum soc_level)sqlite3_column_int(s, 5)));
	rc = rc ? rc : put_key(b, "severity", &first);
	rc = rc ? rc : put_str(b, soc_level_name((enum soc_level)sqlite3_column_int(s, 6)));
	rc = rc ? rc : put_key(b, "count", &first);
	rc = rc ? rc : buf_printf(b, "%" PRId64, (int64_t)sqlite3_column_int64(s, 7));
	rc = rc ? rc : put_key(b, "first_seen", &first);
	rc = rc ? rc : put_time(b, sqlite3_column_int64(s, 8));
	rc = rc ? rc : put_key(b, "last_seen", &first);
	rc = rc ? rc : put_time(b, sqlite3_column_int64(s, 9));
	rc = rc ? rc : put_key(b, "assignee", &first);
	rc = rc ? rc : put_str(b, col_text(s, 10));
	rc = rc ? rc : put_key(b, "tags", &first);
	rc = rc ? rc : put_raw(b, s, 11, "[]");
	rc = rc ? rc : put_key(b, "source", &first);
	rc = rc ? rc : put_str(b, soc_source_name((enum soc_source)sqlite3_column_int(s, 12)));
	rc = rc ? rc : put_key(b, "created", &first);
	rc = rc ? rc : put_time(b, sqlite3_column_int64(s, 13));
	rc = rc ? rc : put_key(b, "updated", &first);
	rc = rc ? rc : put_time(b, sqlite3_column_int64(s, 14));
	if (rc == 0 && close_it)
		rc = buf_putc(b, '}');
	return rc;
}

int soc_incidents_json(struct soc_db *db, const struct soc_incident_query *q,
		       struct buf *out)
{
	struct where w = { .len = 0 };
	sqlite3 *c = NULL;
	sqlite3_stmt *s = NULL;
	char tail[128];
	int64_t total;
	int rc;

	if (q->status_mask)
		where_mask(&w, "status", q->status_mask, SOC_STATUS_COUNT);
	if (q->severity_mask)
		where_mask(&w, "severity", q->severity_mask, SOC_LEVEL_COUNT);
	if (q->assignee)
		where_text(&w, "assignee = ?", q->assignee);
	if (q->rule_id)
		where_text(&w, "rule_id = ?", q->rule_id);
	if (q->from_us)
		where_int(&w, "last_seen >= ?", q->from_us);
	if (q->to_us)
		where_int(&w, "first_seen <= ?", q->to_us);
	if ((rc = conn_get(db, &c)) < 0 || (rc = begin_read(c)) < 0)
		goto out;
	total = count_rows(c, "SELECT COUNT(*) FROM incident", &w);
	if (total < 0) {
		rc = M_EIO;
		goto out;
	}
	paging_sql(tail, sizeof(tail), "last_seen DESC, id DESC", q->limit, q->offset);
	if ((rc = prepare(c, "incidents", "SELECT " INCIDENT_COLS " FROM incident",
			  &w, tail, &s)) < 0)
		goto out;
	rc = buf_printf(out, "{\"total\":%" PRId64 ",\"limit\":%u,\"offset\":%" PRIu64
			",\"incidents\":", total, q->limit, q->offset);
	rc = rc ? rc : render_rows(c, s, out, incident_render, 1);
	rc = rc ? rc : buf_puts(out, "}\n");
out:
	sqlite3_finalize(s);
	conn_put(db, c);
	return rc;
}

static int comment_render(struct buf *b, sqlite3_stmt *s, int unused)
{
	int first = 1, rc;

	(void)unused;
	rc = buf_putc(b, '{');
	rc = rc ? rc : put_key(b, "id", &first);
	rc = rc ? rc : buf_printf(b, "%" PRId64, (int64_t)sqlite3_column_int64(s, 0));
	rc = rc ? rc : put_key(b, "time", &first);
	rc = rc ? rc : put_time(b, sqlite3_column_int64(s, 1));
	rc = rc ? rc : put_key(b, "author", &first);
	rc = rc ? rc : put_str(b, col_text(s, 2));
	rc = rc ? rc : put_key(b, "text", &first);
	rc = rc ? rc : put_str(b, col_text(s, 3));
	return rc ? rc : buf_putc(b, '}');
}

static int history_render(struct buf *b, sqlite3_stmt *s, int unused)
{
	int first = 1, rc;

	(void)unused;
	rc = buf_putc(b, '{');
	rc = rc ? rc : put_key(b, "time", &first);
	rc = rc ? rc : put_time(b, sqlite3_column_int64(s, 0));
	rc = rc ? rc : put_key(b, "actor", &first);
	rc = rc ? rc : put_str(b, col_text(s, 1));
	rc = rc ? rc : put_key(b, "field", &first);
	rc = rc ? rc : put_str(b, col_text(s, 2));
	rc = rc ? rc : put_key(b, "from", &first);
	rc = rc ? rc : put_str(b, col_text(s, 3));
	rc = rc ? rc : put_key(b, "to", &first);
	rc = rc ? rc : put_str(b, col_text(s, 4));
	return rc ? rc : buf_putc(b, '}');
}

/* Appends ,"key":[rows of sql] for the incident id. */
static int sub_list(sqlite3 *c, struct buf *out, const char *key,
		    const char *sql, int64_t id,
		    int (*render)(struct buf *, sqlite3_stmt *, int), int arg)
{
	struct where w = { .len = 0 };
	sqlite3_stmt *s = NULL;
	int rc;

	w.v[0].is_text = 0;
	w.v[0].i = id;
	w.n = 1;
	if ((rc = prepare(c, key, sql, &w, NULL, &s)) < 0)
		return rc;
	rc = buf_printf(out, ",\"%s\":", key);
	rc = rc ? rc : render_rows(c, s, out, render, arg);
	sqlite3_finalize(s);
	return rc;
}

int soc_incident_json(struct soc_db *db, int64_t id, uint32_t n_alerts,
		      struct buf *out)
{
	struct where w = { .len = 0 };
	sqlite3 *c = NULL;
	sqlite3_stmt *s = NULL;
	char sql[256];
	int64_t n;
	int rc, r;

	if (n_alerts > 100)
		n_alerts = 100;
	where_int(&w, "id = ?", id);
	if ((rc = conn_get(db, &c)) < 0 || (rc = begin_read(c)) < 0)
		goto out;
	if ((rc = prepare(c, "incident", "SELECT " INCIDENT_COLS " FROM incident",
			  &w, NULL, &s)) < 0)
		goto out;
	r = sqlite3_step(s);
	if (r != SQLITE_ROW) {
		rc = r == SQLITE_DONE ? M_ENOTFOUND : M_EIO;
		goto out;
	}
	if ((rc = incident_render(out, s, 0)) < 0)
		goto out;
	sqlite3_finalize(s);
	s = NULL;
	rc = sub_list(c, out, "comments",
		      "SELECT id, ts, author, text FROM comment WHERE incident_id = ?"
		      " ORDER BY id", id, comment_render, 0);
	snprintf(sql, sizeof(sql),
		 "SELECT ts, actor, field, old, new FROM (SELECT * FROM history"
		 " WHERE incident_id = ? ORDER BY id DESC LIMIT %d) ORDER BY id",
		 SOC_MAX_HISTORY);
	rc = rc ? rc : sub_list(c, out, "history", sql, id, history_render, 0);
	snprintf(sql, sizeof(sql),
		 "SELECT " ALERT_COLS " FROM alert WHERE incident_id = ?"
		 " ORDER BY ts DESC, id DESC LIMIT %u", n_alerts);
	rc = rc ? rc : sub_list(c, out, "alerts", sql, id, alert_render, 1);
	if (rc)
		goto out;
	w.len = 0;
	w.n = 0;
	where_int(&w, "incident_id = ?", id);
	n = count_rows(c, "SELECT COUNT(*) FROM alert", &w);
	if (n < 0) {
		rc = M_EIO;
		goto out;
	}
	rc = buf_printf(out, ",\"alerts_stored\":%" PRId64 "}\n", n);
out:
	sqlite3_finalize(s);
	conn_put(db, c);
	return rc;
}
