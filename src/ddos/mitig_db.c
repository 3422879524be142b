/*
 * The desired state in SQLite (<data_dir>/mitigation.db): one row per
 * mitigation, and the record of what was last sent to a speaker that
 * cannot be asked (ExaBGP, BIRD's file, nftables). A few rows, written
 * rarely: every operation runs in one BEGIN IMMEDIATE transaction, which is
 * also what keeps the daemon and the `mamori ddos` command from acting on
 * the speaker at the same time. synchronous=FULL: a mitigation that was
 * reported done must survive a power cut.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "ddos/mitig_int.h"

#define MITIG_DB_MAX_ROWS 200000

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS mitigation("
	" key TEXT PRIMARY KEY, action INTEGER NOT NULL, rate INTEGER NOT NULL,"
	" reason TEXT NOT NULL, attack_id TEXT NOT NULL, manual INTEGER NOT NULL,"
	" dry_run INTEGER NOT NULL, state INTEGER NOT NULL, created INTEGER NOT NULL,"
	" updated INTEGER NOT NULL, expires INTEGER NOT NULL, announced INTEGER NOT NULL,"
	" last_error TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS mitigation_attack ON mitigation(attack_id);"
	"CREATE TABLE IF NOT EXISTS sent("
	" key TEXT PRIMARY KEY, fp TEXT NOT NULL, action INTEGER NOT NULL, rate INTEGER NOT NULL);"
	"PRAGMA user_version=1;";

static int exec_sql(sqlite3 *db, const char *sql, const char *what)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_msg(LOG_ERROR, "mitig", "event=sqlite_error op=%s err=\"%s\"", what,
			msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return M_EIO;
	}
	return M_OK;
}

int mitig_db_open(const char *path, sqlite3 **out)
{
	sqlite3 *db = NULL;

	*out = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		log_msg(LOG_ERROR, "mitig", "event=open_failed path=\"%s\" err=\"%s\"", path,
			db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return M_EIO;
	}
	/* Another process may hold the lock while it runs a back-end command. */
	sqlite3_busy_timeout(db, 30000);
	if (exec_sql(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", "open") < 0 ||
	    exec_sql(db, schema, "schema") < 0) {
		sqlite3_close(db);
		return M_EIO;
	}
	*out = db;
	return M_OK;
}

int mitig_db_begin(sqlite3 *db)
{
	return exec_sql(db, "BEGIN IMMEDIATE", "begin");
}

int mitig_db_commit(sqlite3 *db)
{
	return exec_sql(db, "COMMIT", "commit");
}

void mitig_db_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		exec_sql(db, "ROLLBACK", "rollback");
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		log_msg(LOG_ERROR, "mitig", "event=sqlite_error op=prepare err=\"%s\"", sqlite3_errmsg(db));
		return M_EIO;
	}
	return M_OK;
}

static void col_text(sqlite3_stmt *st, int col, char *out, size_t outsz)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(out, outsz, "%s", t ? (const char *)t : "");
}

#define ENTRY_COLS "key, action, rate, reason, attack_id, manual, dry_run, state, created," \
		   " updated, expires, announced, last_error"

/* One row into e; M_EPARSE for a key that no longer parses (a row written
 * by hand), which the callers skip. */
static int row_entry(sqlite3_stmt *st, struct mitig_entry *e)
{
	memset(e, 0, sizeof(*e));
	col_text(st, 0, e->key, sizeof(e->key));
	if (mitig_key_parse(e->key, &e->rule) < 0)
		return M_EPARSE;
	if (e->rule.action != MITIG_BLACKHOLE) {
		int a = sqlite3_column_int(st, 1);
		e->rule.action = a == MITIG_RATELIMIT ? MITIG_RATELIMIT : MITIG_DISCARD;
		e->rule.rate = e->rule.action == MITIG_RATELIMIT ?
			       (uint64_t)sqlite3_column_int64(st, 2) : 0;
		if (e->rule.action == MITIG_RATELIMIT && e->rule.rate == 0)
			return M_EPARSE;
	}
	col_text(st, 3, e->reason, sizeof(e->reason));
	col_text(st, 4, e->attack_id, sizeof(e->attack_id));
	e->manual = sqlite3_column_int(st, 5);
	e->dry_run = sqlite3_column_int(st, 6);
	e->state = sqlite3_column_int(st, 7) == MITIG_HOLD ? MITIG_HOLD : MITIG_ACTIVE;
	e->created = sqlite3_column_int64(st, 8);
	e->updated = sqlite3_column_int64(st, 9);
	e->expires = sqlite3_column_int64(st, 10);
	e->announced = sqlite3_column_int(st, 11);
	col_text(st, 12, e->last_error, sizeof(e->last_error));
	return M_OK;
}

int mitig_db_get(sqlite3 *db, const char *key, struct mitig_entry *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prepare(db, "SELECT " ENTRY_COLS " FROM mitigation WHERE key = ?1", &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = row_entry(st, e) < 0 ? M_ENOTFOUND : M_OK;
	else
		rc = rc == SQLITE_DONE ? M_ENOTFOUND : M_EIO;
	sqlite3_finalize(st);
	return rc;
}

int mitig_db_put(sqlite3 *db, const struct mitig_entry *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prepare(db, "INSERT OR REPLACE INTO mitigation(" ENTRY_COLS ")"
			  " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)", &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, e->key, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)e->rule.action);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)e->rule.rate);
	sqlite3_bind_text(st, 4, e->reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, e->attack_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, e->manual);
	sqlite3_bind_int(st, 7, e->dry_run);
	sqlite3_bind_int(st, 8, (int)e->state);
	sqlite3_bind_int64(st, 9, e->created);
	sqlite3_bind_int64(st, 10, e->updated);
	sqlite3_bind_int64(st, 11, e->expires);
	sqlite3_bind_int(st, 12, e->announced);
	sqlite3_bind_text(st, 13, e->last_error, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? M_OK : M_EIO;
	if (rc < 0)
		log_msg(LOG_ERROR, "mitig", "event=sqlite_error op=put err=\"%s\"", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

static int del_key(sqlite3 *db, const char *sql, const char *key)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prepare(db, sql, &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? M_OK : M_EIO;
	sqlite3_finalize(st);
	return rc;
}

int mitig_db_del(sqlite3 *db, const char *key)
{
	return del_key(db, "DELETE FROM mitigation WHERE key = ?1", key);
}

int mitig_db_select(sqlite3 *db, const char *where, int64_t iarg, const char *sarg,
		    struct mitig_entry **out, size_t *n)
{
	char sql[512];
	sqlite3_stmt *st;
	struct mitig_entry *v = NULL;
	size_t cap = 0;
	int rc, s;

	*out = NULL;
	*n = 0;
	snprintf(sql, sizeof(sql), "SELECT " ENTRY_COLS " FROM mitigation%s%s ORDER BY created, key",
		 where ? " WHERE " : "", where ? where : "");
	if ((rc = prepare(db, sql, &st)) < 0)
		return rc;
	if (sqlite3_bind_parameter_count(st) >= 1)
		sqlite3_bind_int64(st, 1, iarg);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_text(st, 2, sarg ? sarg : "", -1, SQLITE_STATIC);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n >= MITIG_DB_MAX_ROWS)
			break;
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct mitig_entry *nv = realloc(v, nc * sizeof(*nv));
			if (!nv) {
				rc = M_ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		if (row_entry(st, &v[*n]) == M_OK)
			(*n)++;
	}
	if (rc == 0 && s != SQLITE_ROW && s != SQLITE_DONE)
		rc = M_EIO;
	sqlite3_finalize(st);
	if (rc < 0) {
		free(v);
		*n = 0;
		return rc;
	}
	*out = v;
	return M_OK;
}

int mitig_db_count(sqlite3 *db, const char *where, size_t *n)
{
	char sql[256];
	sqlite3_stmt *st;
	int rc;

	*n = 0;
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM mitigation%s%s",
		 where ? " WHERE " : "", where ? where : "");
	if ((rc = prepare(db, sql, &st)) < 0)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW)
		*n = (size_t)sqlite3_column_int64(st, 0);
	else
		rc = M_EIO;
	sqlite3_finalize(st);
	return rc;
}

int mitig_db_sent_put(sqlite3 *db, const struct mitig_route *r)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prepare(db, "INSERT OR REPLACE INTO sent(key, fp, action, rate) VALUES(?1,?2,?3,?4)",
			  &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, r->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->fp, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, (int)r->rule.action);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)r->rule.rate);
	rc = sqlite3_step(st) == SQLITE_DONE ? M_OK : M_EIO;
	sqlite3_finalize(st);
	return rc;
}

int mitig_db_sent_del(sqlite3 *db, const char *key)
{
	return del_key(db, "DELETE FROM sent WHERE key = ?1", key);
}

int mitig_db_sent_list(sqlite3 *db, struct mitig_route **out, size_t *n)
{
	sqlite3_stmt *st;
	int rc, s;

	*out = NULL;
	*n = 0;
	if ((rc = prepare(db, "SELECT key, fp, action, rate FROM sent ORDER BY key", &st)) < 0)
		return rc;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		struct mitig_route r;
		memset(&r, 0, sizeof(r));
		col_text(st, 0, r.key, sizeof(r.key));
		col_text(st, 1, r.fp, sizeof(r.fp));
		if (mitig_key_parse(r.key, &r.rule) < 0)
			continue;
		if (r.rule.action != MITIG_BLACKHOLE && sqlite3_column_int(st, 2) == MITIG_RATELIMIT) {
			r.rule.action = MITIG_RATELIMIT;
			r.rule.rate = (uint64_t)sqlite3_column_int64(st, 3);
		}
		if ((rc = mitig_routes_push(out, n, MITIG_DB_MAX_ROWS, &r)) < 0)
			break;
	}
	if (rc == 0 && s != SQLITE_DONE && s != SQLITE_ROW)
		rc = M_EIO;
	sqlite3_finalize(st);
	if (rc < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

int mitig_db_sent_replace(sqlite3 *db, const struct mitig_route *r, size_t n)
{
	int rc = exec_sql(db, "DELETE FROM sent", "sent_clear");

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = mitig_db_sent_put(db, &r[i]);
	return rc;
}
