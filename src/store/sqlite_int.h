/*
 * Private to the SQLite store (src/store/sqlite*.c): the store's state and
 * the helpers its write side (sqlite.c) and read side (sqlite_search.c)
 * share. Why a header: the store is split by concern to keep files small,
 * and both halves must agree on the catalog and the session pool.
 */
#ifndef MAMORI_STORE_SQLITE_INT_H
#define MAMORI_STORE_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/event.h"
#include "store/store.h"

#define SQ_MAX_PARTS 65536
#define SQ_MAX_SESSIONS 8
#define SQ_SESSION_CONNS 32
#define SQ_MAX_WINDOW 100000          /* offset + limit */
#define SQ_PAGE_SIZE 16384
#define SQ_DEFAULT_PART_BYTES ((int64_t)1 << 30)
#define SQ_MIN_PART_BYTES ((int64_t)256 << 10)
#define SQ_DEFAULT_PART_SECS 3600
#define SQ_DEFAULT_FTS_BATCH 100000
#define SQ_WLOG_STEP 512              /* write-log entries per index step */
#define SQ_PATH_MAX 4096
#define SQ_SIZE_REFRESH_US 1000000
#define SQ_TRUNCATE_EVERY_US 5000000

struct sq_part {
	uint64_t seq;
	int64_t min_ts, max_ts;   /* INT64_MAX / INT64_MIN when empty */
	int64_t age_ts;           /* newest min(ts, write time): age retention */
	int64_t min_id, max_id;
	int64_t bytes;            /* on disk, all files */
	int64_t created_us;
	int64_t last_wseq;        /* last batch committed */
	int64_t fts_wseq;         /* last batch in the full-text index */
	int sealed, finished, busy, doomed;
};

struct sq_conn {
	uint64_t seq;
	sqlite3 *db;
	uint64_t used;
};

struct sq_session {
	struct sq_conn conn[SQ_SESSION_CONNS];
	int n;
	uint64_t tick;
	struct sq_session *next;
};

struct sq_store {
	struct store base;        /* first: the store_ops user sees this */
	char dir[SQ_PATH_MAX];
	int64_t ret_secs, ret_bytes, part_bytes, part_secs, fts_batch;

	pthread_mutex_t mu;       /* catalog and background state */
	pthread_cond_t bg_cond, done_cond;
	struct sq_part **parts;   /* ascending seq */
	size_t n_parts, cap_parts;
	uint64_t next_seq;

	/* Writer thread only. */
	struct sq_part *active;
	sqlite3 *wdb;
	sqlite3_stmt *w_ins, *w_log, *w_pages;
	int64_t active_bytes;
	struct buf doc;
	unsigned char *skip;
	size_t skip_cap;
	int64_t sizes_at;

	/* Background thread. */
	pthread_t bg;
	int bg_started, stop;
	int manual;               /* fts_batch < 0: index only when flushed */
	uint64_t work_gen, done_gen, want_gen;
	uint64_t trunc_seq;       /* active partition and batch last truncated */
	int64_t trunc_wseq, trunc_at;

	/* Read sessions. */
	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cond;
	struct sq_session *free_sessions;
	int n_sessions;
};

struct sq_cand {
	int64_t ts, id;
	uint64_t seq;
};

/* An ECS field kept in a column of the events table. */
struct store_sq_column {
	const char *field;
	const char *column;
	int f;
};

extern const struct store_sq_column store_sq_columns[];
extern const size_t store_sq_ncolumns;
#define SQ_NCOLUMNS 7   /* entries of store_sq_columns */

/* A row as the writer binds it, made on a worker by the prepare hook: the
 * column values and the JSON doc (without the message, which is a column)
 * copied into one contiguous block of the batch arena, so the writer reads
 * each event's data sequentially instead of chasing fields across a 2 KiB
 * event that another core wrote long ago. */
struct sq_row {
	struct str col[SQ_NCOLUMNS];
	struct str doc;
};

/* Opens partition seq: its events file as main, its index file as f.
 * Owner: the caller (sqlite3_close). M_ENOTFOUND when it is gone. */
int store_sq_open_part(const struct sq_store *s, uint64_t seq, int readonly,
		       sqlite3 **out);
int store_sq_exec(sqlite3 *db, const char *sql, const char *what);
int64_t store_sq_query_i64(sqlite3 *db, const char *sql, int64_t dflt);
/* The catalog entry of seq or NULL; the caller holds s->mu. */
struct sq_part *store_sq_find(struct sq_store *s, uint64_t seq);

void store_sq_session_free(struct sq_session *ss);
/* Closes the session's connections to partitions no longer in the catalog. */
void store_sq_session_prune(struct sq_store *s, struct sq_session *ss);
int store_sq_search(struct store *base, const struct store_query *q,
		    struct buf *out, uint64_t *total);

#endif
