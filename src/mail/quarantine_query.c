/*
 * Reading the quarantine back (quarantine.h): the list with its filters,
 * one entry with its history and header fields, and an entry as a struct.
 *
 * Why apart from quarantine.c: this is what the API calls on every page
 * view, a read-only path over the index and, for the header fields, over a
 * stored message; the store and its state changes stay in quarantine.c.
 * Text in the index was cleaned when it was put (valid UTF-8, one line), so
 * it goes into JSON as it is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "mail/msg.h"
#include "mail/quarantine_int.h"

#define MAX_HDR_NAME 256             /* a header name shown by the API */
#define MAX_HDR_VALUE 8192           /* a header value shown by the API */

static json_t *jtext(const char *s)
{
	json_t *j = json_string(s);

	return j ? j : json_string("");
}

static json_t *jtime(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char out[32];

	if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return json_null();
	return json_string(out);
}

static json_t *jparsed(const char *s)
{
	json_t *j = json_loads(s, 0, NULL);

	return j ? j : json_array();
}

/* One row (QUARANTINE_COLS order) as JSON. */
static json_t *row_json(sqlite3_stmt *st)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:f, s:o, s:o, s:o, s:o}",
			 "id", jtext(quarantine_db_col(st, 0)),
			 "received", jtime(sqlite3_column_int64(st, 1)),
			 "sender", jtext(quarantine_db_col(st, 2)),
			 "recipients", jparsed(quarantine_db_col(st, 3)),
			 "from", jtext(quarantine_db_col(st, 4)),
			 "subject", jtext(quarantine_db_col(st, 5)),
			 "message_id", jtext(quarantine_db_col(st, 6)),
			 "size", (json_int_t)sqlite3_column_int64(st, 7),
			 "direction", jtext(quarantine_db_col(st, 8)),
			 "reasons", jparsed(quarantine_db_col(st, 9)),
			 "score", sqlite3_column_double(st, 10),
			 "state", jtext(quarantine_db_col(st, 11)),
			 "expires_at", jtime(sqlite3_column_int64(st, 12)),
			 "expiry_action", jtext(quarantine_db_col(st, 13)),
			 "sha256", jtext(quarantine_db_col(st, 14)));
}

#define WHERE " WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR direction = ?2)" \
	      " AND received >= ?3 AND (?4 IS NULL OR instr(lower(sender), lower(?4)) > 0)" \
	      " AND (?5 IS NULL OR instr(lower(rcpt), lower(?5)) > 0)"

static void bind_filter(sqlite3_stmt *st, const struct quarantine_filter *f)
{
	const char *dir = f->direction == QUARANTINE_OUTBOUND ? "outbound" : "inbound";

	quarantine_db_bind(st, 1, f->state < 0 ? NULL
				  : quarantine_state_name((enum quarantine_state)f->state));
	quarantine_db_bind(st, 2, f->direction < 0 ? NULL : dir);
	sqlite3_bind_int64(st, 3, f->since);
	quarantine_db_bind(st, 4, f->sender && f->sender[0] ? f->sender : NULL);
	quarantine_db_bind(st, 5, f->recipient && f->recipient[0] ? f->recipient : NULL);
}

int quarantine_list(struct quarantine *q, const struct quarantine_filter *f, json_t **out)
{
	sqlite3_stmt *cnt = NULL, *st = NULL;
	uint32_t limit = f->limit ? f->limit : 100;
	json_t *items = json_array(), *row;
	int64_t total = 0;
	int rc = M_EIO, s;

	*out = NULL;
	if (!items)
		return M_ENOMEM;
	if (limit > QUARANTINE_MAX_LIMIT || f->offset > INT64_MAX) {
		json_decref(items);
		return M_EINVAL;
	}
	pthread_mutex_lock(&q->mu);
	cnt = quarantine_db_prepare(q, "SELECT count(*) FROM quarantine" WHERE);
	st = quarantine_db_prepare(q, "SELECT " QUARANTINE_COLS " FROM quarantine" WHERE
		" ORDER BY received DESC, rowid DESC LIMIT ?6 OFFSET ?7");
	if (!cnt || !st)
		goto out;
	bind_filter(cnt, f);
	bind_filter(st, f);
	sqlite3_bind_int64(st, 6, limit);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)f->offset);
	if (sqlite3_step(cnt) != SQLITE_ROW) {
		quarantine_db_fail(q, "count");
		goto out;
	}
	total = sqlite3_column_int64(cnt, 0);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		row = row_json(st);
		if (!row || json_array_append_new(items, row) != 0) {
			rc = M_ENOMEM;
			goto out;
		}
	}
	if (s != SQLITE_DONE) {
		quarantine_db_fail(q, "list");
		goto out;
	}
	*out = json_pack("{s:I, s:I, s:I, s:O}", "total", (json_int_t)total, "limit",
			 (json_int_t)limit, "offset", (json_int_t)f->offset, "messages", items);
	rc = *out ? 0 : M_ENOMEM;
out:
	pthread_mutex_unlock(&q->mu);
	sqlite3_finalize(cnt);
	sqlite3_finalize(st);
	json_decref(items);
	return rc;
}

/* The header fields of a stored message as [{"name":..,"value":..}];
 * NULL when the message cannot be read or parsed. */
static json_t *headers_json(struct quarantine *q, const char *id, const char *sha)
{
	json_t *a = NULL, *x;
	struct msg *m = NULL;
	char *raw = NULL, *end, *name, *value;
	size_t len, hlen;
	int err;

	if (quarantine_file_read(q, id, sha, &raw, &len) != 0)
		return NULL;
	end = memmem(raw, len, "\r\n\r\n", 4);
	hlen = end ? (size_t)(end - raw) + 2 : len;
	m = msg_parse(raw, hlen, &err, NULL);
	if (!m || !(a = json_array()))
		goto out;
	for (size_t i = 0; i < m->nhdr; i++) {
		char *v = msg_hdr_unfolded(m, i);
		name = quarantine_clean_text(m->hdr[i].raw, m->hdr[i].name_len, MAX_HDR_NAME);
		value = v ? quarantine_clean_text(v, strlen(v), MAX_HDR_VALUE) : NULL;
		x = name && value ? json_pack("{s:s, s:s}", "name", name, "value", value) : NULL;
		free(v);
		free(name);
		free(value);
		if (!x || json_array_append_new(a, x) != 0) {
			json_decref(a);
			a = NULL;
			break;
		}
	}
out:
	msg_free(m);
	free(raw);
	return a;
}

int quarantine_entry_json(struct quarantine *q, const char *id, int with_headers,
			  json_t **out)
{
	sqlite3_stmt *st = NULL, *h = NULL;
	json_t *e = NULL, *hist = json_array(), *x;
	char sha[65] = "";
	int rc = M_ENOTFOUND, s, held = 0;

	*out = NULL;
	if (!hist)
		return M_ENOMEM;
	if (!quarantine_id_ok(id, strlen(id)))
		goto done;
	pthread_mutex_lock(&q->mu);
	st = quarantine_db_prepare(q, "SELECT " QUARANTINE_COLS " FROM quarantine WHERE id = ?1");
	h = quarantine_db_prepare(q, "SELECT at, action, actor, detail FROM quarantine_history"
		" WHERE id = ?1 ORDER BY at, rowid");
	rc = M_EIO;
	if (!st || !h)
		goto out;
	quarantine_db_bind(st, 1, id);
	quarantine_db_bind(h, 1, id);
	s = sqlite3_step(st);
	if (s != SQLITE_ROW) {
		rc = s == SQLITE_DONE ? M_ENOTFOUND : quarantine_db_fail(q, "get");
		goto out;
	}
	e = row_json(st);
	held = strcmp(quarantine_db_col(st, 11), "held") == 0;
	snprintf(sha, sizeof(sha), "%s", quarantine_db_col(st, 14));
	while (e && (s = sqlite3_step(h)) == SQLITE_ROW) {
		x = json_pack("{s:o, s:o, s:o, s:o}", "at", jtime(sqlite3_column_int64(h, 0)),
			      "action", jtext(quarantine_db_col(h, 1)), "by", jtext(quarantine_db_col(h, 2)),
			      "detail", jtext(quarantine_db_col(h, 3)));
		if (!x || json_array_append_new(hist, x) != 0)
			break;
	}
	if (!e || json_object_set(e, "history", hist) != 0) {
		rc = M_ENOMEM;
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&q->mu);
	sqlite3_finalize(st);
	sqlite3_finalize(h);
	if (rc == 0 && with_headers) {
		x = held ? headers_json(q, id, sha) : NULL;
		if (json_object_set_new(e, "headers", x ? x : json_null()) != 0)
			rc = M_ENOMEM;
	}
	if (rc == 0) {
		*out = e;
		e = NULL;
	}
	json_decref(e);
done:
	json_decref(hist);
	return rc;
}

/* Fills meta from a row (QUARANTINE_COLS order). */
static int meta_from_row(sqlite3_stmt *st, struct quarantine_meta *m)
{
	json_t *r = json_loads(quarantine_db_col(st, 3), 0, NULL);
	size_t n = json_is_array(r) ? json_array_size(r) : 0;
	const char *state;
	int ok = 1;

	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", quarantine_db_col(st, 0));
	m->received = sqlite3_column_int64(st, 1);
	m->sender = strdup(quarantine_db_col(st, 2));
	m->rcpt = calloc(n ? n : 1, sizeof(*m->rcpt));
	ok = m->sender && m->rcpt;
	for (size_t i = 0; ok && i < n; i++) {
		const char *v = json_string_value(json_array_get(r, i));
		m->rcpt[i] = strdup(v ? v : "");
		ok = m->rcpt[i] != NULL;
		m->nrcpt = i + 1;
	}
	json_decref(r);
	m->from = strdup(quarantine_db_col(st, 4));
	m->subject = strdup(quarantine_db_col(st, 5));
	m->message_id = strdup(quarantine_db_col(st, 6));
	m->size = (uint64_t)sqlite3_column_int64(st, 7);
	m->direction = strcmp(quarantine_db_col(st, 8), "outbound") == 0 ? QUARANTINE_OUTBOUND
								  : QUARANTINE_INBOUND;
	m->reasons = strdup(quarantine_db_col(st, 9));
	m->score = sqlite3_column_double(st, 10);
	state = quarantine_db_col(st, 11);
	if (quarantine_state_parse(state, strlen(state), &m->state) != 0)
		m->state = QUARANTINE_HELD;
	m->expires_at = sqlite3_column_int64(st, 12);
	m->expiry_action = strcmp(quarantine_db_col(st, 13), "send") == 0 ? QUARANTINE_EXPIRE_SEND
								 : QUARANTINE_EXPIRE_DELETE;
	snprintf(m->sha256, sizeof(m->sha256), "%s", quarantine_db_col(st, 14));
	if (!ok || !m->from || !m->subject || !m->message_id || !m->reasons) {
		quarantine_meta_fini(m);
		return M_ENOMEM;
	}
	return 0;
}

/* The row of id into meta; q->mu held. */
int quarantine_meta_load(struct quarantine *q, const char *id, struct quarantine_meta *meta)
{
	sqlite3_stmt *st;
	int rc, s;

	memset(meta, 0, sizeof(*meta));
	if (!quarantine_id_ok(id, strlen(id)))
		return M_ENOTFOUND;
	st = quarantine_db_prepare(q, "SELECT " QUARANTINE_COLS " FROM quarantine WHERE id = ?1");
	if (!st)
		return M_EIO;
	quarantine_db_bind(st, 1, id);
	s = sqlite3_step(st);
	if (s == SQLITE_ROW)
		rc = meta_from_row(st, meta);
	else
		rc = s == SQLITE_DONE ? M_ENOTFOUND : quarantine_db_fail(q, "get");
	sqlite3_finalize(st);
	return rc;
}

int quarantine_get(struct quarantine *q, const char *id, struct quarantine_meta *meta,
		   char **raw, size_t *len)
{
	int rc;

	if (raw)
		*raw = NULL;
	if (len)
		*len = 0;
	pthread_mutex_lock(&q->mu);
	rc = quarantine_meta_load(q, id, meta);
	pthread_mutex_unlock(&q->mu);
	if (rc != 0 || !raw)
		return rc;
	rc = quarantine_file_read(q, id, meta->sha256, raw, len);
	if (rc == M_ENOTFOUND && meta->state != QUARANTINE_HELD)
		return 0;    /* left the quarantine: the file went with it */
	if (rc != 0) {
		log_msg(LOG_ERROR, "quarantine", "event=file_unreadable id=%s err=%s", id,
			err_str(rc));
		quarantine_meta_fini(meta);
		return rc == M_ENOMEM ? rc : M_EIO;
	}
	return 0;
}
