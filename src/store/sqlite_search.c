/*
 * Search in the SQLite store: the read side. Why separate: searches run on
 * any thread, each with a session (a small cache of read connections, one
 * per partition, from a bounded pool), and never touch the writer's state.
 * A query runs partition by partition, newest first: the count of matches,
 * then the first offset+limit (time, id) pairs, merged across partitions;
 * the page's documents are read last. Full text reads the FTS5 index for
 * batches up to the partition's mark and scans the batches after it with
 * the same query evaluated by ftsq.c.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "store/ftsq.h"
#include "store/sqlite_int.h"

/* ---- read sessions --------------------------------------------------- */

void store_sq_session_free(struct sq_session *ss)
{
	if (!ss)
		return;
	for (int i = 0; i < ss->n; i++)
		sqlite3_close(ss->conn[i].db);
	free(ss);
}

static struct sq_session *sq_session_get(struct sq_store *s)
{
	struct sq_session *ss = NULL;

	pthread_mutex_lock(&s->pool_mu);
	for (;;) {
		if (s->free_sessions) {
			ss = s->free_sessions;
			s->free_sessions = ss->next;
			break;
		}
		if (s->n_sessions < SQ_MAX_SESSIONS) {
			ss = calloc(1, sizeof(*ss));
			if (ss)
				s->n_sessions++;
			break;
		}
		pthread_cond_wait(&s->pool_cond, &s->pool_mu);
	}
	pthread_mutex_unlock(&s->pool_mu);
	return ss;
}

static void sq_session_put(struct sq_store *s, struct sq_session *ss)
{
	pthread_mutex_lock(&s->pool_mu);
	ss->next = s->free_sessions;
	s->free_sessions = ss;
	pthread_cond_signal(&s->pool_cond);
	pthread_mutex_unlock(&s->pool_mu);
}

/* Closes the session's connections to partitions no longer in the catalog. */
void store_sq_session_prune(struct sq_store *s, struct sq_session *ss)
{
	for (int i = 0; i < ss->n;) {
		pthread_mutex_lock(&s->mu);
		int gone = store_sq_find(s, ss->conn[i].seq) == NULL;
		pthread_mutex_unlock(&s->mu);
		if (gone) {
			sqlite3_close(ss->conn[i].db);
			ss->conn[i] = ss->conn[--ss->n];
		} else {
			i++;
		}
	}
}

static int sq_session_conn(struct sq_store *s, struct sq_session *ss, uint64_t seq,
			   sqlite3 **out)
{
	int victim = 0, r;

	for (int i = 0; i < ss->n; i++) {
		if (ss->conn[i].seq == seq) {
			ss->conn[i].used = ++ss->tick;
			*out = ss->conn[i].db;
			return 0;
		}
		if (ss->conn[i].used < ss->conn[victim].used)
			victim = i;
	}
	if (ss->n == SQ_SESSION_CONNS) {
		sqlite3_close(ss->conn[victim].db);
		ss->conn[victim] = ss->conn[--ss->n];
	}
	if ((r = store_sq_open_part(s, seq, 1, out)) < 0)
		return r;
	ss->conn[ss->n].seq = seq;
	ss->conn[ss->n].db = *out;
	ss->conn[ss->n].used = ++ss->tick;
	ss->n++;
	return 0;
}

/* ---- search ---------------------------------------------------------- */

static int sq_field_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 128)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f)
			return 0;
	}
	return 1;
}

/* Builds the WHERE clause shared by every partition's queries. Parameters:
 * ?1 from, ?2 to, ?3 text query, ?4 index mark, ?5 row limit, and from ?6
 * three per filter (JSON path, value or lower bound, upper bound). */
static int sq_build_where(const struct store_query *q, int with_ts, struct buf *w)
{
	int r;

	if ((r = buf_puts(w, "1")) < 0)
		return r;
	if (with_ts && q->from_us && (r = buf_puts(w, " AND ts >= ?1")) < 0)
		return r;
	if (with_ts && q->to_us && (r = buf_puts(w, " AND ts <= ?2")) < 0)
		return r;
	for (unsigned i = 0; i < q->n_filters; i++) {
		const struct store_filter *f = &q->filters[i];
		size_t vl = strlen(f->value);
		int prefix = vl > 0 && f->value[vl - 1] == '*';
		int b = 6 + 3 * (int)i;
		const char *col = NULL;

		for (size_t c = 0; c < store_sq_ncolumns; c++)
			if (strcmp(f->name, store_sq_columns[c].field) == 0)
				col = store_sq_columns[c].column;
		if (!prefix && strcmp(f->name, "event.id") == 0)
			col = "id";
		if (col && !prefix)
			r = buf_printf(w, " AND %s = ?%d", col, b + 1);
		else if (col)
			r = buf_printf(w, " AND %s >= ?%d AND (?%d IS NULL OR %s < ?%d)",
				       col, b + 1, b + 2, col, b + 2);
		/* Other fields: json_extract for scalars (fast), json_each
		 * when the value is an array (tags, labels, lists). */
		else if (!prefix)
			r = buf_printf(w, " AND (CAST(json_extract(ev.doc, ?%d) AS TEXT) = ?%d"
				       " OR (json_type(ev.doc, ?%d) = 'array' AND EXISTS"
				       " (SELECT 1 FROM json_each(ev.doc, ?%d)"
				       " WHERE CAST(value AS TEXT) = ?%d)))", b, b + 1, b, b, b + 1);
		else
			r = buf_printf(w, " AND ((CAST(json_extract(ev.doc, ?%d) AS TEXT) >= ?%d"
				       " AND (?%d IS NULL OR CAST(json_extract(ev.doc, ?%d) AS TEXT)"
				       " < ?%d)) OR (json_type(ev.doc, ?%d) = 'array' AND EXISTS"
				       " (SELECT 1 FROM json_each(ev.doc, ?%d)"
				       " WHERE CAST(value AS TEXT) >= ?%d AND (?%d IS NULL"
				       " OR CAST(value AS TEXT) < ?%d))))",
				       b, b + 1, b + 2, b, b + 2, b, b, b + 1, b + 2, b + 2);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Binds the shared parameters; pfx holds the filters' prefix bounds. */
static void sq_bind_query(sqlite3_stmt *st, const struct store_query *q,
			  const char *fts, int64_t wm, int64_t k, struct buf *pfx)
{
	int np = sqlite3_bind_parameter_count(st);
	size_t off = 0;

	for (int i = 1; i <= np; i++) {
		int b = (i - 6) / 3, kind = (i - 6) % 3;
		const struct store_filter *f;
		size_t vl;

		switch (i) {
		case 1: sqlite3_bind_int64(st, i, q->from_us); continue;
		case 2: sqlite3_bind_int64(st, i, q->to_us); continue;
		case 3: sqlite3_bind_text(st, i, fts ? fts : "", -1, SQLITE_STATIC); continue;
		case 4: sqlite3_bind_int64(st, i, wm); continue;
		case 5: sqlite3_bind_int64(st, i, k); continue;
		default: break;
		}
		if (b < 0 || (unsigned)b >= q->n_filters)
			continue;
		f = &q->filters[b];
		vl = strlen(f->value);
		/* Each filter's prefix bounds sit in pfx: lower\0upper\0 (upper
		 * empty with a leading 1 byte flag when unbounded). */
		off = 0;
		for (int j = 0; j < b; j++) {
			off += strlen(pfx->p + off) + 1;
			off += strlen(pfx->p + off) + 1;
		}
		const char *lower = pfx->p + off;
		const char *upper = lower + strlen(lower) + 1;
		int prefix = vl > 0 && f->value[vl - 1] == '*';
		if (kind == 0) {
			/* JSON path $."name" (names with quotes are rejected). */
			char path[160];
			snprintf(path, sizeof(path), "$.\"%s\"", f->name);
			sqlite3_bind_text(st, i, path, -1, SQLITE_TRANSIENT);
		} else if (kind == 1) {
			if (!prefix && strcmp(f->name, "event.id") == 0) {
				uint64_t id = 0;
				int ok = vl > 0 && vl <= 20;
				for (size_t c = 0; ok && c < vl; c++) {
					if (f->value[c] < '0' || f->value[c] > '9' ||
					    id > (UINT64_MAX - 9) / 10)
						ok = 0;
					else
						id = id * 10 + (uint64_t)(f->value[c] - '0');
				}
				if (ok)
					sqlite3_bind_int64(st, i, (int64_t)id);
				else
					sqlite3_bind_null(st, i);
			} else if (prefix) {
				sqlite3_bind_text(st, i, lower, -1, SQLITE_STATIC);
			} else {
				sqlite3_bind_text(st, i, f->value, (int)vl, SQLITE_STATIC);
			}
		} else {
			if (prefix && upper[0] != '\0')
				sqlite3_bind_text(st, i, upper, -1, SQLITE_STATIC);
			else
				sqlite3_bind_null(st, i);
		}
	}
}

/* For every filter: lower\0upper\0 where lower is the prefix without its
 * '*' and upper the smallest string above every string with that prefix
 * (empty when there is none). Exact filters get two empty strings. */
static int sq_prefix_bounds(const struct store_query *q, struct buf *pfx)
{
	int r;

	for (unsigned i = 0; i < q->n_filters; i++) {
		const char *v = q->filters[i].value;
		size_t vl = strlen(v);
		if (vl == 0 || v[vl - 1] != '*') {
			if ((r = buf_append(pfx, "\0\0", 2)) < 0)
				return r;
			continue;
		}
		vl--;
		if ((r = buf_append(pfx, v, vl)) < 0 || (r = buf_putc(pfx, '\0')) < 0)
			return r;
		size_t ul = vl;
		while (ul > 0 && (unsigned char)v[ul - 1] == 0xff)
			ul--;
		if (ul > 0) {
			if ((r = buf_append(pfx, v, ul - 1)) < 0 ||
			    (r = buf_putc(pfx, (char)((unsigned char)v[ul - 1] + 1))) < 0)
				return r;
		}
		if ((r = buf_putc(pfx, '\0')) < 0)
			return r;
	}
	return 0;
}

static int sq_cand_cmp_desc(const void *a, const void *b)
{
	const struct sq_cand *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? 1 : -1;
	if (x->id != y->id)
		return x->id < y->id ? 1 : -1;
	return 0;
}

static int sq_cand_cmp_asc(const void *a, const void *b)
{
	return sq_cand_cmp_desc(b, a);
}

/* Counts the matches in one partition and appends its first k to cand. */
static int sq_search_part(sqlite3 *db, const struct store_query *q, const char *fts,
			  const char *where, int ts_order, struct buf *pfx, int64_t k,
			  struct sq_cand *cand, size_t *n_cand, uint64_t seq,
			  uint64_t *total)
{
	struct buf sql;
	sqlite3_stmt *st = NULL;
	int64_t wm = 0;
	int in_txn = 0, r = M_EIO, rc;

	buf_init(&sql, 1 << 20);
	if (store_sq_exec(db, "BEGIN", "search") < 0)
		goto out;
	in_txn = 1;
	if (fts) {
		wm = store_sq_query_i64(db, "SELECT seq FROM f.wm WHERE k = 0", 0);
		r = buf_printf(&sql, "SELECT ts, id FROM ev WHERE %s AND id IN"
			       " (SELECT rowid FROM f.fts WHERE fts MATCH ?3)"
			       " UNION ALL SELECT ts, id FROM ev NOT INDEXED WHERE %s AND b > ?4 AND"
			       " id >= (SELECT coalesce(min(lo), 9223372036854775807)"
			       " FROM wlog WHERE seq > ?4) AND m_match(msg, ?3)", where, where);
	} else {
		r = buf_printf(&sql, "SELECT ts, id FROM ev WHERE %s", where);
	}
	if (r < 0)
		goto out;
	r = M_EIO;
	const char *dir = q->ascending ? "ASC" : "DESC";
	for (int pass = 0; pass < (fts ? 3 : 2); pass++) {
		struct buf full;
		buf_init(&full, 1 << 20);
		if (pass == 0 && fts && strcmp(where, "1") == 0)
			/* Text alone: the index counts its part without a row read. */
			rc = buf_puts(&full, "SELECT (SELECT count(*) FROM f.fts WHERE fts MATCH ?3)"
				      " + (SELECT count(*) FROM ev NOT INDEXED WHERE b > ?4 AND id >="
				      " (SELECT coalesce(min(lo), 9223372036854775807) FROM wlog"
				      " WHERE seq > ?4) AND m_match(msg, ?3))");
		else if (pass == 0)
			rc = buf_printf(&full, "SELECT count(*) FROM (%.*s)", (int)sql.len, sql.p);
		else if (!fts)
			rc = buf_printf(&full, "SELECT ts, id FROM ev WHERE %s ORDER BY ts %s,"
					" id %s LIMIT ?5", where, dir, dir);
		else if (pass == 1)
			/* Indexed rows. Walking the time index and probing the
			 * index's matches stops after k rows; sorting every match
			 * first is several times slower for common words. */
			rc = buf_printf(&full, "SELECT ts, id FROM ev %s WHERE %s AND id IN"
					" (SELECT rowid FROM f.fts WHERE fts MATCH ?3)"
					" ORDER BY ts %s, id %s LIMIT ?5",
					ts_order ? "INDEXED BY ev_ts" : "", where, dir, dir);
		else
			/* The tail: rows after the mark, found by rowid range. */
			rc = buf_printf(&full, "SELECT ts, id FROM ev NOT INDEXED WHERE %s AND"
					" b > ?4 AND id >= (SELECT coalesce(min(lo),"
					" 9223372036854775807) FROM wlog WHERE seq > ?4) AND"
					" m_match(msg, ?3) ORDER BY ts %s, id %s LIMIT ?5",
					where, dir, dir);
		if (rc < 0 || (rc = buf_cstr(&full)) < 0) {
			buf_fini(&full);
			r = rc;
			goto out;
		}
		rc = sqlite3_prepare_v2(db, full.p, -1, &st, NULL);
		buf_fini(&full);
		if (rc != SQLITE_OK)
			goto out;
		sq_bind_query(st, q, fts, wm, k, pfx);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (pass == 0) {
				*total += (uint64_t)sqlite3_column_int64(st, 0);
				continue;
			}
			cand[*n_cand].ts = sqlite3_column_int64(st, 0);
			cand[*n_cand].id = sqlite3_column_int64(st, 1);
			cand[*n_cand].seq = seq;
			(*n_cand)++;
		}
		if (rc != SQLITE_DONE)
			goto out;
		sqlite3_finalize(st);
		st = NULL;
	}
	r = 0;
out:
	if (r == M_EIO) {
		const char *msg = sqlite3_errmsg(db);
		if (fts && (strstr(msg, "fts5") || strstr(msg, "full-text") ||
			    strstr(msg, "no such column")))
			r = M_EINVAL;   /* the user's query, not the store */
		else
			log_msg(LOG_ERROR, "store", "event=search_failed partition=%llu err=\"%s\"",
				(unsigned long long)seq, msg);
	}
	sqlite3_finalize(st);
	if (in_txn)
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	buf_fini(&sql);
	return r;
}

/* Appends one stored event: the doc with the message spliced back in. */
static int sq_emit(sqlite3_stmt *st, struct buf *out)
{
	const char *msg = (const char *)sqlite3_column_text(st, 0);
	int msg_n = sqlite3_column_bytes(st, 0);
	const char *doc = (const char *)sqlite3_column_text(st, 1);
	int doc_n = sqlite3_column_bytes(st, 1);
	int r;

	if (!doc || doc_n < 2)
		return buf_puts(out, "{}");
	if (!msg || sqlite3_column_type(st, 0) == SQLITE_NULL)
		return buf_append(out, doc, (size_t)doc_n);
	if ((r = buf_puts(out, "{\"message\":\"")) < 0 ||
	    (r = buf_json_escape(out, msg, (size_t)msg_n)) < 0 ||
	    (r = buf_putc(out, '"')) < 0)
		return r;
	if (doc_n > 2 && (r = buf_putc(out, ',')) < 0)
		return r;
	return buf_append(out, doc + 1, (size_t)doc_n - 1);
}

int store_sq_search(struct store *base, const struct store_query *q,
		     struct buf *out, uint64_t *total)
{
	struct sq_store *s = (struct sq_store *)base;
	struct buf fts, where, where_nots, pfx;
	unsigned char *covered = NULL;
	struct sq_session *ss = NULL;
	struct ftsq *check = NULL;
	struct sq_cand *cand = NULL;
	uint64_t *seqs = NULL;
	size_t n_seqs = 0, n_cand = 0;
	sqlite3_stmt *get = NULL;
	uint64_t get_seq = 0;
	int64_t k;
	int r = M_EINVAL;

	buf_init(&fts, FTSQ_MAX_LEN * 4);
	buf_init(&where, 1 << 16);
	buf_init(&where_nots, 1 << 16);
	buf_init(&pfx, 1 << 16);
	*total = 0;
	if (q->limit < 1 || q->limit > 1000 || q->n_filters > STORE_MAX_FILTERS ||
	    q->offset > SQ_MAX_WINDOW || q->offset + q->limit > SQ_MAX_WINDOW)
		goto out;
	for (unsigned i = 0; i < q->n_filters; i++)
		if (!q->filters[i].name || !q->filters[i].value ||
		    !sq_field_ok(q->filters[i].name) ||
		    strlen(q->filters[i].value) > 4096)
			goto out;
	if (q->text && q->text[0]) {
		if ((r = ftsq_normalise(q->text, &fts)) < 0)
			goto out;
		if ((r = ftsq_compile(fts.p, fts.len, &check)) < 0)
			goto out;
	}
	if ((r = sq_build_where(q, 1, &where)) < 0 || (r = buf_cstr(&where)) < 0 ||
	    (r = sq_build_where(q, 0, &where_nots)) < 0 || (r = buf_cstr(&where_nots)) < 0 ||
	    (r = sq_prefix_bounds(q, &pfx)) < 0)
		goto out;
	k = (int64_t)(q->offset + q->limit);
	/* Filters on an indexed column (sealed partitions) beat the time
	 * index; otherwise text searches walk the time index. */
	int ts_order = 1;
	for (unsigned i = 0; i < q->n_filters; i++) {
		const char *nm = q->filters[i].name;
		if (!strcmp(nm, "host.name") || !strcmp(nm, "source.ip") ||
		    !strcmp(nm, "destination.ip") || !strcmp(nm, "user.name") ||
		    !strcmp(nm, "event.id"))
			ts_order = 0;
	}
	r = M_ENOMEM;
	cand = malloc((size_t)k * 3 * sizeof(*cand));   /* k kept + 2k new */
	if (!cand)
		goto out;

	pthread_mutex_lock(&s->mu);
	seqs = malloc((s->n_parts ? s->n_parts : 1) * sizeof(*seqs));
	covered = malloc(s->n_parts ? s->n_parts : 1);
	if (seqs && covered) {
		for (size_t i = s->n_parts; i-- > 0;) {
			const struct sq_part *p = s->parts[i];
			if (p->min_ts == INT64_MAX ||
			    (q->from_us && p->max_ts < q->from_us) ||
			    (q->to_us && p->min_ts > q->to_us))
				continue;
			/* A sealed partition wholly inside the range needs no
			 * time condition (the active one may still grow). */
			covered[n_seqs] = p->sealed && (!q->from_us || p->min_ts >= q->from_us) &&
					  (!q->to_us || p->max_ts <= q->to_us);
			seqs[n_seqs++] = p->seq;
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (!seqs || !covered || !(ss = sq_session_get(s)))
		goto out;

	for (size_t i = 0; i < n_seqs; i++) {
		sqlite3 *db;
		r = sq_session_conn(s, ss, seqs[i], &db);
		if (r == M_ENOTFOUND)
			continue;   /* dropped by retention meanwhile */
		if (r < 0)
			goto out;
		r = sq_search_part(db, q, check ? fts.p : NULL,
				   covered[i] ? where_nots.p : where.p, ts_order, &pfx, k,
				   cand, &n_cand, seqs[i], total);
		if (r < 0)
			goto out;
		qsort(cand, n_cand, sizeof(*cand),
		      q->ascending ? sq_cand_cmp_asc : sq_cand_cmp_desc);
		if (n_cand > (size_t)k)
			n_cand = (size_t)k;
	}

	if ((r = buf_putc(out, '[')) < 0)
		goto out;
	int first = 1;
	for (size_t i = q->offset; i < n_cand; i++) {
		if (!get || get_seq != cand[i].seq) {
			sqlite3 *db;
			sqlite3_finalize(get);
			get = NULL;
			r = sq_session_conn(s, ss, cand[i].seq, &db);
			if (r == M_ENOTFOUND)
				continue;
			if (r < 0)
				goto out;
			if (sqlite3_prepare_v2(db, "SELECT msg, doc FROM ev WHERE id = ?1", -1,
					       &get, NULL) != SQLITE_OK) {
				log_msg(LOG_ERROR, "store", "event=search_failed err=\"%s\"",
					sqlite3_errmsg(db));
				r = M_EIO;
				goto out;
			}
			get_seq = cand[i].seq;
		}
		sqlite3_bind_int64(get, 1, cand[i].id);
		if (sqlite3_step(get) == SQLITE_ROW) {
			if ((!first && (r = buf_putc(out, ',')) < 0) ||
			    (r = sq_emit(get, out)) < 0)
				goto out;
			first = 0;
		}
		sqlite3_reset(get);
	}
	r = buf_putc(out, ']');
out:
	sqlite3_finalize(get);
	if (ss)
		sq_session_put(s, ss);
	ftsq_free(check);
	free(cand);
	free(seqs);
	buf_fini(&fts);
	buf_fini(&where);
	buf_fini(&where_nots);
	free(covered);
	buf_fini(&pfx);
	return r;
}

