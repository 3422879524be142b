/*
 * The embedded event store on SQLite.
 *
 * Why it is built this way (figures measured on the 2-core target, see
 * bench/bench_store.c):
 *
 * - Time partitions. Events go to one "active" partition file at a time
 *   (p<seq>.db); it rolls over by size and age. Retention is then a file
 *   delete, not a DELETE that rewrites B-trees and, for a contentless FTS5
 *   index, cannot be done at all on SQLite 3.40.
 * - A lean write path. The active partition has one secondary index (on
 *   time); rows are keyed by event id (INTEGER PRIMARY KEY, INSERT OR IGNORE
 *   makes a replayed batch a no-op). Every secondary index on a random key
 *   (host, IP) dirties about one page per row in WAL mode, so those indexes
 *   are built with CREATE INDEX (a sort) once a partition is sealed.
 * - Full text off the ingest path. Each partition has a contentless FTS5
 *   index over message in its own file (p<seq>.fts), written by a background
 *   thread with its own connection, so the writer never waits for the index
 *   nor for checkpoints (that thread runs them too). A write log (wlog)
 *   numbers the batches of a partition; every row carries its batch number
 *   b, and the index file records the last batch indexed (wm). Search reads
 *   the index for b <= wm and scans the rows with b > wm with the same query
 *   evaluated in C (ftsq.c), so nothing is ever unsearchable.
 * - The message is a column (what FTS reads) and is left out of the stored
 *   JSON doc; a search splices it back.
 *
 * Threads: one writer (write_batch, maintain, flush), the background thread,
 * and any number of searchers, each borrowing a session (a small cache of
 * read connections, one per partition) from a bounded pool. The read side
 * lives in sqlite_search.c, the shared state in sqlite_int.h.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "store/ftsq.h"
#include "store/sqlite_int.h"

/* ECS fields stored as columns (the rest are read from the JSON doc). */
const struct store_sq_column store_sq_columns[] = {
	{ "host.name", "host", F_HOST_NAME },
	{ "source.ip", "sip", F_SOURCE_IP },
	{ "destination.ip", "dip", F_DESTINATION_IP },
	{ "event.dataset", "dataset", F_EVENT_DATASET },
	{ "event.kind", "kind", F_EVENT_KIND },
	{ "user.name", "usr", F_USER_NAME },
	{ "message", "msg", F_MESSAGE },
};
const size_t store_sq_ncolumns = sizeof(store_sq_columns) / sizeof(store_sq_columns[0]);
_Static_assert(sizeof(store_sq_columns) / sizeof(store_sq_columns[0]) == SQ_NCOLUMNS,
	       "SQ_NCOLUMNS must match the column table");

static const char sq_ev_schema[] =
	"CREATE TABLE IF NOT EXISTS ev("
	" id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, b INTEGER NOT NULL,"
	" host TEXT, sip TEXT, dip TEXT, dataset TEXT, kind TEXT, usr TEXT,"
	" msg TEXT, doc TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS ev_ts ON ev(ts);"
	"CREATE TABLE IF NOT EXISTS wlog(seq INTEGER PRIMARY KEY, lo INTEGER NOT NULL,"
	" hi INTEGER NOT NULL, n INTEGER NOT NULL, batch_id INTEGER);"
	"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v);";

static const char sq_fts_schema[] =
	"CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(message, content='',"
	" columnsize=0, tokenize='ascii');"
	"CREATE TABLE IF NOT EXISTS wm(k INTEGER PRIMARY KEY CHECK (k = 0),"
	" seq INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO wm VALUES(0, 0);"
	"INSERT INTO fts(fts, rank) VALUES('automerge', 16);";

/* Indexes built once a partition is sealed (sorted, not row by row). */
static const char sq_finish_sql[] =
	"CREATE INDEX IF NOT EXISTS ev_host ON ev(host, ts) WHERE host IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS ev_sip ON ev(sip, ts) WHERE sip IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS ev_dip ON ev(dip, ts) WHERE dip IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS ev_usr ON ev(usr, ts) WHERE usr IS NOT NULL;"
	"INSERT INTO f.fts(fts) VALUES('optimize');"
	"INSERT OR REPLACE INTO meta VALUES('finished', 1);";

static int sq_path(const struct sq_store *s, uint64_t seq, const char *ext,
		   char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s/p%010llu.%s", s->dir,
			 (unsigned long long)seq, ext);

	return (n < 0 || (size_t)n >= outsz) ? M_ELIMIT : 0;
}

/* A "file:" URI for path, so ATTACH never creates a missing file (mode=rw). */
static int sq_uri(const char *path, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	static const char tail[] = "?mode=rw";
	size_t o = 0;

	if (outsz < 16)
		return M_ELIMIT;
	memcpy(out, "file:", 5);
	o = 5;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if (o + 4 + sizeof(tail) > outsz)
			return M_ELIMIT;
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '/' || *p == '.' ||
		    *p == '_' || *p == '-') {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	memcpy(out + o, tail, sizeof(tail));
	return 0;
}

int store_sq_exec(sqlite3 *db, const char *sql, const char *what)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_msg(LOG_ERROR, "store", "event=sqlite_error op=%s err=\"%s\"",
			what, msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return M_EIO;
	}
	return 0;
}

int64_t store_sq_query_i64(sqlite3 *db, const char *sql, int64_t dflt)
{
	sqlite3_stmt *st = NULL;
	int64_t v = dflt;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void sq_fn_match(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct ftsq *q = sqlite3_get_auxdata(ctx, 1);

	(void)argc;
	if (!q) {
		const char *qs = (const char *)sqlite3_value_text(argv[1]);
		int qn = sqlite3_value_bytes(argv[1]);
		if (!qs || ftsq_compile(qs, (size_t)qn, &q) < 0) {
			sqlite3_result_error(ctx, "mamori: malformed full-text query", -1);
			return;
		}
		sqlite3_set_auxdata(ctx, 1, q, (void (*)(void *))ftsq_free);
		q = sqlite3_get_auxdata(ctx, 1);
		if (!q) {
			sqlite3_result_error_nomem(ctx);
			return;
		}
	}
	const char *t = (const char *)sqlite3_value_text(argv[0]);
	int tn = sqlite3_value_bytes(argv[0]);
	sqlite3_result_int(ctx, t ? ftsq_match(q, t, (size_t)tn) : 0);
}

/* Opens partition seq: its events file as main, its index file as f.
 * Owner: the caller (sqlite3_close). M_ENOTFOUND when it is gone. */
int store_sq_open_part(const struct sq_store *s, uint64_t seq, int readonly,
			sqlite3 **out)
{
	char path[SQ_PATH_MAX], uri[SQ_PATH_MAX * 3];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int r = M_EIO;

	*out = NULL;
	if ((r = sq_path(s, seq, "db", path, sizeof(path))) < 0 ||
	    (r = sq_uri(path, uri, sizeof(uri))) < 0)
		goto out;
	if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
			    SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
		r = access(path, F_OK) == 0 ? M_EIO : M_ENOTFOUND;
		goto out;
	}
	sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	sqlite3_busy_timeout(db, 5000);
	r = M_EIO;
	/* Readers map up to 256 MiB of the file: row lookups without a copy
	 * per page (text searches ~1.5x faster), at a bounded RSS. The
	 * background thread reads sequentially and needs no map. */
	if (store_sq_exec(db, readonly ? "PRAGMA query_only=1; PRAGMA cache_size=-8192;"
				   "PRAGMA temp_store=MEMORY; PRAGMA mmap_size=268435456;"
				 : "PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;",
		    "open") < 0)
		goto out;
	if (sq_path(s, seq, "fts", path, sizeof(path)) < 0 ||
	    sq_uri(path, uri, sizeof(uri)) < 0)
		goto out;
	if (sqlite3_prepare_v2(db, "ATTACH ?1 AS f", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, uri, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		r = access(path, F_OK) == 0 ? M_EIO : M_ENOTFOUND;
		goto out;
	}
	if (sqlite3_create_function_v2(db, "m_match", 2,
				       SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
				       sq_fn_match, NULL, NULL, NULL) != SQLITE_OK)
		goto out;
	*out = db;
	db = NULL;
	r = 0;
out:
	if (r == M_EIO && db)
		log_msg(LOG_ERROR, "store", "event=open_failed partition=%llu err=\"%s\"",
			(unsigned long long)seq, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

/* Catalog helpers; the caller holds s->mu. */
struct sq_part *store_sq_find(struct sq_store *s, uint64_t seq)
{
	size_t lo = 0, hi = s->n_parts;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->parts[mid]->seq == seq)
			return s->parts[mid];
		if (s->parts[mid]->seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int sq_add_part(struct sq_store *s, struct sq_part *p)
{
	if (s->n_parts == s->cap_parts) {
		size_t cap = s->cap_parts ? s->cap_parts * 2 : 64;
		if (cap > SQ_MAX_PARTS)
			return M_ELIMIT;
		struct sq_part **np = realloc(s->parts, cap * sizeof(*np));
		if (!np)
			return M_ENOMEM;
		s->parts = np;
		s->cap_parts = cap;
	}
	s->parts[s->n_parts++] = p;   /* seqs only grow */
	return 0;
}

static void sq_remove_part(struct sq_store *s, struct sq_part *p)
{
	for (size_t i = 0; i < s->n_parts; i++) {
		if (s->parts[i] == p) {
			memmove(&s->parts[i], &s->parts[i + 1],
				(s->n_parts - i - 1) * sizeof(*s->parts));
			s->n_parts--;
			return;
		}
	}
}

static void sq_unlink_part(const struct sq_store *s, uint64_t seq)
{
	static const char *const ext[] = { "db", "db-wal", "db-shm", "fts", "fts-wal",
					   "fts-shm" };
	char path[SQ_PATH_MAX];

	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
		if (sq_path(s, seq, ext[i], path, sizeof(path)) == 0 &&
		    unlink(path) < 0 && errno != ENOENT)
			log_msg(LOG_WARN, "store", "event=unlink_failed path=\"%s\" err=\"%s\"",
				path, strerror(errno));
}

static int64_t sq_part_disk_bytes(const struct sq_store *s, uint64_t seq)
{
	static const char *const ext[] = { "db", "db-wal", "fts", "fts-wal" };
	char path[SQ_PATH_MAX];
	struct stat sb;
	int64_t total = 0;

	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
		if (sq_path(s, seq, ext[i], path, sizeof(path)) == 0 &&
		    stat(path, &sb) == 0)
			total += (int64_t)sb.st_size;
	return total;
}

/* ---- writer ---------------------------------------------------------- */

static void sq_writer_seal(struct sq_store *s)
{
	if (!s->active)
		return;
	sqlite3_finalize(s->w_ins);
	sqlite3_finalize(s->w_log);
	sqlite3_finalize(s->w_pages);
	s->w_ins = s->w_log = s->w_pages = NULL;
	sqlite3_close(s->wdb);   /* no checkpoint on close: the background does it */
	s->wdb = NULL;
	pthread_mutex_lock(&s->mu);
	s->active->sealed = 1;
	s->active = NULL;
	pthread_cond_signal(&s->bg_cond);
	pthread_mutex_unlock(&s->mu);
}

/* Creates the next partition and makes it the active one. */
static int sq_writer_open(struct sq_store *s)
{
	char path[SQ_PATH_MAX], pragmas[256];
	sqlite3 *fdb = NULL;
	struct sq_part *p = NULL;
	uint64_t seq = s->next_seq;
	int r = M_EIO;

	if ((r = sq_path(s, seq, "fts", path, sizeof(path))) < 0)
		goto out;
	r = M_EIO;
	if (sqlite3_open_v2(path, &fdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		log_msg(LOG_ERROR, "store", "event=create_failed path=\"%s\" err=\"%s\"",
			path, fdb ? sqlite3_errmsg(fdb) : "out of memory");
		goto out;
	}
	if (store_sq_exec(fdb, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
		    "fts_create") < 0 ||
	    store_sq_exec(fdb, sq_fts_schema, "fts_create") < 0)
		goto out;
	if ((r = sq_path(s, seq, "db", path, sizeof(path))) < 0)
		goto out;
	r = M_EIO;
	if (sqlite3_open_v2(path, &s->wdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		log_msg(LOG_ERROR, "store", "event=create_failed path=\"%s\" err=\"%s\"",
			path, s->wdb ? sqlite3_errmsg(s->wdb) : "out of memory");
		goto out;
	}
	sqlite3_db_config(s->wdb, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	sqlite3_busy_timeout(s->wdb, 5000);
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA page_size=%d; PRAGMA journal_mode=WAL;"
		 "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;"
		 "PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=67108864;",
		 SQ_PAGE_SIZE);
	if (store_sq_exec(s->wdb, pragmas, "create") < 0 ||
	    store_sq_exec(s->wdb, sq_ev_schema, "create") < 0)
		goto out;
	if (sqlite3_prepare_v3(s->wdb,
			       "INSERT OR IGNORE INTO ev VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
			       -1, SQLITE_PREPARE_PERSISTENT, &s->w_ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->wdb, "INSERT INTO wlog VALUES(?1,?2,?3,?4,?5)", -1,
			       SQLITE_PREPARE_PERSISTENT, &s->w_log, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->wdb, "PRAGMA page_count", -1,
			       SQLITE_PREPARE_PERSISTENT, &s->w_pages, NULL) != SQLITE_OK) {
		log_msg(LOG_ERROR, "store", "event=prepare_failed err=\"%s\"",
			sqlite3_errmsg(s->wdb));
		goto out;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		r = M_ENOMEM;
		goto out;
	}
	p->seq = seq;
	p->min_ts = p->min_id = INT64_MAX;
	p->max_ts = p->age_ts = p->max_id = INT64_MIN;
	p->created_us = clock_now_us();
	pthread_mutex_lock(&s->mu);
	r = sq_add_part(s, p);
	pthread_mutex_unlock(&s->mu);
	if (r < 0)
		goto out;
	s->next_seq++;
	s->active = p;
	s->active_bytes = 0;
	p = NULL;
	r = 0;
out:
	if (r < 0) {
		sqlite3_finalize(s->w_ins);
		sqlite3_finalize(s->w_log);
		sqlite3_finalize(s->w_pages);
		s->w_ins = s->w_log = s->w_pages = NULL;
		sqlite3_close(s->wdb);
		s->wdb = NULL;
	}
	free(p);
	sqlite3_close(fdb);
	return r;
}

/* Marks in s->skip the events already stored in an older partition (a batch
 * replayed after a roll-over). Ids only grow, so this is rare and cheap:
 * only partitions whose id range overlaps the batch are asked. */
static int sq_skip_stored(struct sq_store *s, const struct event *ev, size_t n,
			  int64_t lo, int64_t hi)
{
	uint64_t seqs[64];
	int64_t los[64], his[64];
	size_t k = 0;

	memset(s->skip, 0, n);
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n_parts && k < 64; i++) {
		struct sq_part *p = s->parts[i];
		if (p == s->active || p->max_id < lo || p->min_id > hi)
			continue;
		seqs[k] = p->seq;
		los[k] = p->min_id;
		his[k] = p->max_id;
		k++;
	}
	pthread_mutex_unlock(&s->mu);
	for (size_t j = 0; j < k; j++) {
		sqlite3 *db = NULL;
		sqlite3_stmt *st = NULL;
		int r = store_sq_open_part(s, seqs[j], 1, &db);
		if (r == M_ENOTFOUND)
			continue;
		if (r < 0)
			return r;
		if (sqlite3_prepare_v2(db, "SELECT 1 FROM ev WHERE id = ?1", -1, &st,
				       NULL) != SQLITE_OK) {
			sqlite3_close(db);
			return M_EIO;
		}
		for (size_t i = 0; i < n; i++) {
			int64_t id = (int64_t)ev[i].id;
			if (s->skip[i] || id < los[j] || id > his[j])
				continue;
			sqlite3_bind_int64(st, 1, id);
			if (sqlite3_step(st) == SQLITE_ROW)
				s->skip[i] = 1;
			sqlite3_reset(st);
		}
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
	return 0;
}

static void sq_bind_str(sqlite3_stmt *st, int col, struct str v)
{
	if (v.p)
		sqlite3_bind_text(st, col, v.p, (int)v.n, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, col);
}

static int sq_write_batch(struct store *base, uint64_t batch_id,
			  const struct event *ev, size_t n)
{
	struct sq_store *s = (struct sq_store *)base;
	int64_t lo = INT64_MAX, hi = INT64_MIN, now = clock_now_us();
	int64_t min_ts = INT64_MAX, max_ts = INT64_MIN, age_ts = INT64_MIN;
	int64_t wseq;
	int in_txn = 0, r = M_EIO;

	if (n == 0)
		return 0;
	if (n > INT32_MAX)
		return M_EINVAL;
	if (s->active && (s->active_bytes >= s->part_bytes ||
			  now - s->active->created_us >= s->part_secs * 1000000))
		sq_writer_seal(s);
	if (!s->active && (r = sq_writer_open(s)) < 0)
		return r;
	if (n > s->skip_cap) {
		unsigned char *ns = realloc(s->skip, n);
		if (!ns)
			return M_ENOMEM;
		s->skip = ns;
		s->skip_cap = n;
	}
	for (size_t i = 0; i < n; i++) {
		int64_t id = (int64_t)ev[i].id;
		if (id < lo)
			lo = id;
		if (id > hi)
			hi = id;
	}
	if ((r = sq_skip_stored(s, ev, n, lo, hi)) < 0)
		return r;
	r = M_EIO;
	wseq = s->active->last_wseq + 1;
	if (store_sq_exec(s->wdb, "BEGIN", "write") < 0)
		goto out;
	in_txn = 1;
	sqlite3_bind_int64(s->w_log, 1, wseq);
	sqlite3_bind_int64(s->w_log, 2, lo);
	sqlite3_bind_int64(s->w_log, 3, hi);
	sqlite3_bind_int64(s->w_log, 4, (int64_t)n);
	sqlite3_bind_int64(s->w_log, 5, (int64_t)batch_id);
	if (sqlite3_step(s->w_log) != SQLITE_DONE)
		goto out;
	sqlite3_reset(s->w_log);
	for (size_t i = 0; i < n; i++) {
		const struct event *e = &ev[i];
		sqlite3_stmt *st = s->w_ins;
		if (s->skip[i])
			continue;
		const struct sq_row *row = e->prepared;
		const char *doc = row ? row->doc.p : NULL;
		size_t doc_n = row ? row->doc.n : 0;
		r = 0;
		if (!row) {
			/* Not prepared by a worker: serialise here. The message
			 * is a column; keep it out of the doc. */
			buf_reset(&s->doc);
			r = event_to_json_except(e, F_MESSAGE, &s->doc);
			doc = s->doc.p;
			doc_n = s->doc.len;
		}
		if (r < 0) {
			log_msg(LOG_ERROR, "store", "event=serialise_failed id=%llu err=\"%s\"",
				(unsigned long long)e->id, err_str(r));
			goto out;
		}
		r = M_EIO;
		sqlite3_bind_int64(st, 1, (int64_t)e->id);
		sqlite3_bind_int64(st, 2, e->ts_us);
		sqlite3_bind_int64(st, 3, wseq);
		for (size_t c = 0; c < SQ_NCOLUMNS; c++)
			sq_bind_str(st, 4 + (int)c, row ? row->col[c] :
				    event_get(e, store_sq_columns[c].f));
		sqlite3_bind_text(st, 11, doc, (int)doc_n, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
		sqlite3_reset(st);
		if (e->ts_us < min_ts)
			min_ts = e->ts_us;
		if (e->ts_us > max_ts)
			max_ts = e->ts_us;
		int64_t a = e->ts_us < now ? e->ts_us : now;
		if (a > age_ts)
			age_ts = a;
	}
	if (store_sq_exec(s->wdb, "COMMIT", "write") < 0)
		goto out;
	in_txn = 0;
	if (sqlite3_step(s->w_pages) == SQLITE_ROW)
		s->active_bytes = sqlite3_column_int64(s->w_pages, 0) * SQ_PAGE_SIZE;
	sqlite3_reset(s->w_pages);
	pthread_mutex_lock(&s->mu);
	struct sq_part *p = s->active;
	p->last_wseq = wseq;
	if (min_ts < p->min_ts)
		p->min_ts = min_ts;
	if (max_ts > p->max_ts)
		p->max_ts = max_ts;
	if (age_ts > p->age_ts)
		p->age_ts = age_ts;
	if (lo < p->min_id)
		p->min_id = lo;
	if (hi > p->max_id)
		p->max_id = hi;
	s->work_gen++;
	pthread_cond_signal(&s->bg_cond);
	pthread_mutex_unlock(&s->mu);
	r = 0;
out:
	if (r == M_EIO && in_txn)
		log_msg(LOG_ERROR, "store", "event=write_failed partition=%llu events=%zu err=\"%s\"",
			(unsigned long long)s->active->seq, n, sqlite3_errmsg(s->wdb));
	sqlite3_reset(s->w_ins);
	sqlite3_reset(s->w_log);
	sqlite3_clear_bindings(s->w_ins);
	if (in_txn)
		sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* ---- background: full-text indexing, checkpoints, sealing ------------ */

/* Indexes up to fts_batch rows of partition p's unindexed batches in one
 * transaction of its index file. Returns 0 or a negative code. */
static int sq_bg_index(struct sq_store *s, struct sq_part *p, sqlite3 *db,
		       int64_t *wseq_out)
{
	sqlite3_stmt *sel = NULL, *ins = NULL, *upd = NULL;
	int64_t wm, rows = 0, last;
	int in_txn = 0, r = M_EIO;

	if (store_sq_exec(db, "BEGIN", "index") < 0)
		goto out;
	in_txn = 1;
	wm = store_sq_query_i64(db, "SELECT seq FROM f.wm WHERE k = 0", 0);
	last = wm;
	if (sqlite3_prepare_v2(db, "SELECT seq, lo, hi FROM wlog WHERE seq > ?1"
			       " ORDER BY seq LIMIT ?2", -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO f.fts(rowid, message) SELECT id, msg"
			       " FROM ev WHERE id BETWEEN ?2 AND ?3 AND b = ?1"
			       " AND msg IS NOT NULL", -1, &ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE f.wm SET seq = ?1 WHERE k = 0", -1, &upd,
			       NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(sel, 1, wm);
	sqlite3_bind_int(sel, 2, SQ_WLOG_STEP);
	int64_t ent[SQ_WLOG_STEP][3];
	int ne = 0, rc;
	while (ne < SQ_WLOG_STEP && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
		for (int c = 0; c < 3; c++)
			ent[ne][c] = sqlite3_column_int64(sel, c);
		ne++;
	}
	sqlite3_finalize(sel);
	sel = NULL;
	for (int i = 0; i < ne && rows < s->fts_batch; i++) {
		for (int c = 0; c < 3; c++)
			sqlite3_bind_int64(ins, c + 1, ent[i][c]);
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto out;
		rows += sqlite3_changes(db);
		sqlite3_reset(ins);
		last = ent[i][0];
	}
	sqlite3_bind_int64(upd, 1, last);
	if (sqlite3_step(upd) != SQLITE_DONE)
		goto out;
	if (store_sq_exec(db, "COMMIT", "index") < 0)
		goto out;
	in_txn = 0;
	*wseq_out = last;
	r = 0;
out:
	if (r < 0)
		log_msg(LOG_ERROR, "store", "event=index_failed partition=%llu err=\"%s\"",
			(unsigned long long)p->seq, sqlite3_errmsg(db));
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	sqlite3_finalize(upd);
	if (in_txn)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

static void *sq_bg_main(void *arg)
{
	struct sq_store *s = arg;

	/* Indexing is upkeep: under load the writer and the parsers come first
	 * (this thread's nice value only; the tail scan keeps unindexed rows
	 * searchable), and the index catches up when ingest slows. */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), 10) < 0)
		log_msg(LOG_DEBUG, "store", "event=renice_failed err=\"%s\"", strerror(errno));
	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		uint64_t gen = s->work_gen;
		struct sq_part *p = NULL;
		int finish = 0, paused = s->manual && s->want_gen <= s->done_gen;

		for (size_t i = 0; !paused && i < s->n_parts; i++)
			if (s->parts[i]->fts_wseq < s->parts[i]->last_wseq) {
				p = s->parts[i];
				break;
			}
		if (!p && !paused) {
			s->done_gen = gen;
			pthread_cond_broadcast(&s->done_cond);
			for (size_t i = 0; !paused && i < s->n_parts; i++)
				if (s->parts[i]->sealed && !s->parts[i]->finished) {
					p = s->parts[i];
					finish = 1;
					break;
				}
		}
		if (!p && s->n_parts && !s->parts[s->n_parts - 1]->sealed &&
		    clock_mono_us() - s->trunc_at >= SQ_TRUNCATE_EVERY_US) {
			/* Idle and caught up: fold the active partition's WAL into
			 * the file and cut it back, so it does not hold a second
			 * copy of the partition on disk. Blocks the writer briefly. */
			struct sq_part *a = s->parts[s->n_parts - 1];
			if (a->last_wseq && (a->seq != s->trunc_seq ||
					     a->last_wseq != s->trunc_wseq)) {
				uint64_t seq = a->seq;
				int64_t wseq = a->last_wseq;
				sqlite3 *db = NULL;
				int ok = 0;
				a->busy = 1;
				pthread_mutex_unlock(&s->mu);
				if (store_sq_open_part(s, seq, 0, &db) == 0) {
					sqlite3_busy_timeout(db, 200);
					ok = sqlite3_wal_checkpoint_v2(db, "main",
								       SQLITE_CHECKPOINT_TRUNCATE,
								       NULL, NULL) == SQLITE_OK;
				}
				sqlite3_close(db);
				pthread_mutex_lock(&s->mu);
				a->busy = 0;
				if (ok) {   /* else readers were busy: retry later */
					s->trunc_seq = seq;
					s->trunc_wseq = wseq;
				}
				s->trunc_at = clock_mono_us();
				if (a->doomed) {
					sq_unlink_part(s, a->seq);
					free(a);
				}
				continue;
			}
		}
		if (!p) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&s->bg_cond, &s->mu, &until);
			continue;
		}
		p->busy = 1;
		int active = !p->sealed;
		uint64_t seq = p->seq;
		pthread_mutex_unlock(&s->mu);

		sqlite3 *db = NULL;
		int64_t wseq = 0;
		int r = store_sq_open_part(s, seq, 0, &db);
		if (r == 0 && !finish) {
			r = sq_bg_index(s, p, db, &wseq);
			if (r == 0 && active)
				sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE,
							  NULL, NULL);
		} else if (r == 0) {
			r = store_sq_exec(db, sq_finish_sql, "seal");
			if (r == 0) {
				sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_TRUNCATE,
							  NULL, NULL);
				sqlite3_wal_checkpoint_v2(db, "f", SQLITE_CHECKPOINT_TRUNCATE,
							  NULL, NULL);
			}
		}
		sqlite3_close(db);

		pthread_mutex_lock(&s->mu);
		p->busy = 0;
		if (r == 0 && !finish)
			p->fts_wseq = wseq;
		if (finish)
			p->finished = 1;   /* on failure too: do not retry forever */
		if (r < 0 && !finish)
			p->fts_wseq = p->last_wseq;   /* logged; the tail scan covers it */
		if (p->doomed) {
			sq_unlink_part(s, p->seq);
			free(p);
		}
	}
	s->done_gen = UINT64_MAX;
	pthread_cond_broadcast(&s->done_cond);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* ---- upkeep ---------------------------------------------------------- */

/* Drops one partition: out of the catalog now, files now or (when the
 * background thread is on it) when it lets go. Writer thread; s->mu held. */
static void sq_drop_locked(struct sq_store *s, struct sq_part *p)
{
	log_msg(LOG_INFO, "store", "event=partition_dropped partition=%llu bytes=%lld",
		(unsigned long long)p->seq, (long long)p->bytes);
	sq_remove_part(s, p);
	if (p->busy) {
		p->doomed = 1;
		return;
	}
	sq_unlink_part(s, p->seq);
	free(p);
}

static int sq_maintain(struct store *base)
{
	struct sq_store *s = (struct sq_store *)base;
	int64_t now = clock_now_us(), mono = clock_mono_us();
	int refresh = mono - s->sizes_at >= SQ_SIZE_REFRESH_US;

	if (refresh)
		s->sizes_at = mono;
	pthread_mutex_lock(&s->mu);
	if (refresh || s->ret_bytes)
		for (size_t i = 0; i < s->n_parts; i++)
			s->parts[i]->bytes = sq_part_disk_bytes(s, s->parts[i]->seq);
	for (;;) {
		struct sq_part *victim = NULL;
		int64_t total = 0;

		for (size_t i = 0; i < s->n_parts; i++)
			total += s->parts[i]->bytes;
		if (s->n_parts > 1 && s->ret_bytes && total > s->ret_bytes)
			victim = s->parts[0];
		for (size_t i = 0; !victim && s->ret_secs && i < s->n_parts; i++) {
			struct sq_part *p = s->parts[i];
			if (p->age_ts != INT64_MIN &&
			    p->age_ts < now - s->ret_secs * 1000000)
				victim = p;
		}
		if (!victim)
			break;
		if (victim == s->active) {
			pthread_mutex_unlock(&s->mu);
			sq_writer_seal(s);
			pthread_mutex_lock(&s->mu);
		}
		sq_drop_locked(s, victim);
	}
	pthread_mutex_unlock(&s->mu);

	pthread_mutex_lock(&s->pool_mu);
	for (struct sq_session *ss = s->free_sessions; ss; ss = ss->next)
		store_sq_session_prune(s, ss);
	pthread_mutex_unlock(&s->pool_mu);
	return 0;
}

static int sq_flush(struct store *base)
{
	struct sq_store *s = (struct sq_store *)base;

	pthread_mutex_lock(&s->mu);
	uint64_t target = s->work_gen;
	if (target > s->want_gen)
		s->want_gen = target;
	pthread_cond_signal(&s->bg_cond);
	while (s->done_gen < target && s->bg_started)
		pthread_cond_wait(&s->done_cond, &s->mu);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* ---- open / close ---------------------------------------------------- */

/* Reads an existing partition's figures into a new catalog entry. */
static int sq_load_part(struct sq_store *s, uint64_t seq)
{
	sqlite3 *db = NULL;
	struct sq_part *p = NULL;
	int r;

	if ((r = store_sq_open_part(s, seq, 0, &db)) < 0) {
		log_msg(LOG_WARN, "store", "event=partition_skipped partition=%llu err=\"%s\"",
			(unsigned long long)seq, err_str(r));
		return 0;
	}
	r = M_ENOMEM;
	p = calloc(1, sizeof(*p));
	if (!p)
		goto out;
	p->seq = seq;
	p->sealed = 1;
	p->min_ts = store_sq_query_i64(db, "SELECT min(ts) FROM ev", INT64_MAX);
	p->max_ts = store_sq_query_i64(db, "SELECT max(ts) FROM ev", INT64_MIN);
	p->min_id = store_sq_query_i64(db, "SELECT min(id) FROM ev", INT64_MAX);
	p->max_id = store_sq_query_i64(db, "SELECT max(id) FROM ev", INT64_MIN);
	p->last_wseq = store_sq_query_i64(db, "SELECT max(seq) FROM wlog", 0);
	p->fts_wseq = store_sq_query_i64(db, "SELECT seq FROM f.wm WHERE k = 0", 0);
	p->finished = store_sq_query_i64(db, "SELECT v FROM meta WHERE k = 'finished'", 0) != 0;
	p->age_ts = p->max_ts;
	if (p->age_ts != INT64_MIN && p->age_ts > clock_now_us())
		p->age_ts = clock_now_us();
	p->bytes = sq_part_disk_bytes(s, seq);
	if ((r = sq_add_part(s, p)) < 0)
		goto out;
	p = NULL;
	r = 0;
out:
	free(p);
	sqlite3_close(db);
	return r;
}

static int sq_seq_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Finds p<10 digits>.db files in the directory. */
static int sq_scan(struct sq_store *s)
{
	DIR *d = opendir(s->dir);
	struct dirent *de;
	uint64_t *seqs = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	if (!d) {
		log_msg(LOG_ERROR, "store", "event=open_failed path=\"%s\" err=\"%s\"",
			s->dir, strerror(errno));
		return M_EIO;
	}
	while ((de = readdir(d))) {
		const char *nm = de->d_name;
		uint64_t v = 0;
		if (strlen(nm) != 14 || nm[0] != 'p' || strcmp(nm + 11, ".db") != 0)
			continue;
		int ok = 1;
		for (int i = 1; i < 11; i++) {
			if (nm[i] < '0' || nm[i] > '9')
				ok = 0;
			else
				v = v * 10 + (uint64_t)(nm[i] - '0');
		}
		if (!ok)
			continue;
		if (n == cap) {
			if (cap >= SQ_MAX_PARTS) {
				r = M_ELIMIT;
				goto out;
			}
			cap = cap ? cap * 2 : 64;
			uint64_t *ns = realloc(seqs, cap * sizeof(*ns));
			if (!ns) {
				r = M_ENOMEM;
				goto out;
			}
			seqs = ns;
		}
		seqs[n++] = v;
	}
	if (n)
		qsort(seqs, n, sizeof(*seqs), sq_seq_cmp);
	for (size_t i = 0; i < n; i++) {
		if ((r = sq_load_part(s, seqs[i])) < 0)
			goto out;
		s->next_seq = seqs[i] + 1;
	}
out:
	closedir(d);
	free(seqs);
	return r;
}

static void sq_close(struct store *base)
{
	struct sq_store *s = (struct sq_store *)base;

	if (!s)
		return;
	if (s->bg_started) {
		pthread_mutex_lock(&s->mu);
		s->stop = 1;
		pthread_cond_signal(&s->bg_cond);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->bg, NULL);
		s->bg_started = 0;
	}
	if (s->wdb)   /* leave no WAL copy of the active partition behind */
		sqlite3_wal_checkpoint_v2(s->wdb, "main", SQLITE_CHECKPOINT_TRUNCATE,
					  NULL, NULL);
	sq_writer_seal(s);
	while (s->free_sessions) {
		struct sq_session *ss = s->free_sessions;
		s->free_sessions = ss->next;
		store_sq_session_free(ss);
	}
	for (size_t i = 0; i < s->n_parts; i++)
		free(s->parts[i]);
	free(s->parts);
	free(s->skip);
	buf_fini(&s->doc);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->bg_cond);
	pthread_cond_destroy(&s->done_cond);
	pthread_mutex_destroy(&s->pool_mu);
	pthread_cond_destroy(&s->pool_cond);
	free(s);
}

/* Worker side: builds each event's struct sq_row (see sqlite_int.h). */
static int sq_prepare(struct store *st, struct event *ev, size_t n,
		      struct arena *a, struct buf *scratch)
{
	for (size_t i = 0; i < n; i++) {
		struct str col[SQ_NCOLUMNS];
		struct sq_row *row;
		size_t need;
		char *p;

		buf_reset(scratch);
		if (event_to_json_except(&ev[i], F_MESSAGE, scratch) < 0)
			continue;   /* the writer serialises it again */
		need = sizeof(*row) + scratch->len;
		for (size_t c = 0; c < SQ_NCOLUMNS; c++) {
			col[c] = event_get(&ev[i], store_sq_columns[c].f);
			need += col[c].n;
		}
		row = arena_alloc(a, need);
		if (!row)
			continue;
		p = (char *)(row + 1);
		for (size_t c = 0; c < SQ_NCOLUMNS; c++) {
			row->col[c] = col[c].p ? str_make(p, col[c].n) : col[c];
			if (col[c].n)
				memcpy(p, col[c].p, col[c].n);
			p += col[c].n;
		}
		memcpy(p, scratch->p, scratch->len);
		row->doc = str_make(p, scratch->len);
		ev[i].prepared = row;
	}
	return 0;
}

const struct store_ops store_sqlite_ops;

/* Owner of *out: the caller, released with ops->close(). */
/* SQLite's memory statistics take one process-wide mutex on every
 * allocation; the writer, the indexer and the searchers then contend on it
 * (seen as thousands of futex calls a second in the writer). mamori does not
 * read those statistics, so they are off. Must run before SQLite
 * initialises; if something initialised it first, the call is refused and
 * nothing else changes. */
static void sq_global_init(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int sq_open(const struct store_config *cfg, struct store **out)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct sq_store *s = NULL;
	int r = M_EINVAL;

	*out = NULL;
	pthread_once(&once, sq_global_init);
	if (!cfg || !cfg->path || !*cfg->path ||
	    strlen(cfg->path) >= SQ_PATH_MAX - 32 ||
	    cfg->retention_seconds < 0 || cfg->retention_bytes < 0)
		return M_EINVAL;
	if (sqlite3_threadsafe() == 0) {
		log_msg(LOG_ERROR, "store", "event=open_failed err=\"sqlite built without threads\"");
		return M_EUNSUPP;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return M_ENOMEM;
	s->base.ops = &store_sqlite_ops;
	memcpy(s->dir, cfg->path, strlen(cfg->path) + 1);
	s->ret_secs = cfg->retention_seconds;
	s->ret_bytes = cfg->retention_bytes;
	s->fts_batch = cfg->fts_batch > 0 ? cfg->fts_batch : SQ_DEFAULT_FTS_BATCH;
	s->manual = cfg->fts_batch < 0;
	s->part_bytes = SQ_DEFAULT_PART_BYTES;
	if (s->ret_bytes && s->ret_bytes / 8 < s->part_bytes)
		s->part_bytes = s->ret_bytes / 8 > SQ_MIN_PART_BYTES ? s->ret_bytes / 8
								      : SQ_MIN_PART_BYTES;
	s->part_secs = SQ_DEFAULT_PART_SECS;
	if (s->ret_secs && s->ret_secs / 8 < s->part_secs)
		s->part_secs = s->ret_secs / 8 > 1 ? s->ret_secs / 8 : 1;
	s->next_seq = 1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->bg_cond, NULL);
	pthread_cond_init(&s->done_cond, NULL);
	pthread_mutex_init(&s->pool_mu, NULL);
	pthread_cond_init(&s->pool_cond, NULL);
	buf_init(&s->doc, 64 << 20);
	if (mkdir(s->dir, 0750) < 0 && errno != EEXIST) {
		log_msg(LOG_ERROR, "store", "event=open_failed path=\"%s\" err=\"%s\"",
			s->dir, strerror(errno));
		r = M_EIO;
		goto out;
	}
	if ((r = sq_scan(s)) < 0)
		goto out;
	if (pthread_create(&s->bg, NULL, sq_bg_main, s) != 0) {
		r = M_EIO;
		goto out;
	}
	s->bg_started = 1;
	pthread_setname_np(s->bg, "mamori-index");
	*out = &s->base;
	s = NULL;
	r = 0;
out:
	if (s)
		sq_close(&s->base);
	return r;
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.prepare = sq_prepare,
	.write_batch = sq_write_batch,
	.search = store_sq_search,
	.maintain = sq_maintain,
	.flush = sq_flush,
};
