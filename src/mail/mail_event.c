/*
 * mail_event: what the gateway reports: one event per message into the
 * pipeline (ECS email.* fields, the authentication results, the verdict and
 * its reasons), the notice to a sender whose mail is held, and the record
 * of who has written to whom (first-time sender checks).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "mail/mail_int.h"
#include "mail/quarantine.h"
#include "mail/quarantine_int.h"

#define EVENT_MAX (256u << 10)

static const char *verdict_name(enum mail_verdict v)
{
	static const char *const n[] = {"accept", "tag", "quarantine", "reject", "tempfail", "hold"};
	return v < MAIL_V_COUNT ? n[v] : "accept";
}

static int jstr(struct buf *b, const char *s)
{
	int rc = buf_putc(b, '"');
	rc = rc ? rc : buf_json_escape(b, s ? s : "", s ? strlen(s) : 0);
	return rc ? rc : buf_putc(b, '"');
}

static int addr_array(struct buf *b, const struct addr_list *l)
{
	int rc = buf_putc(b, '[');
	for (size_t i = 0; rc == 0 && i < l->n; i++) {
		rc = i ? buf_putc(b, ',') : 0;
		rc = rc ? rc : jstr(b, l->v[i].addr);
	}
	return rc ? rc : buf_putc(b, ']');
}

int mail_event_json(struct mail_gw *g, const struct mail_eval *e, const char *qid, struct buf *b)
{
	const struct milter_session *s = e->s;
	int64_t now = clock_now_us() / 1000;
	time_t sec = (time_t)(now / 1000);
	struct tm tm;
	char ts[32];
	gmtime_r(&sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	const char *vn = verdict_name(e->verdict);
	int alert = e->verdict == MAIL_V_REJECT || e->verdict == MAIL_V_QUARANTINE || e->malware;
	int rc = buf_printf(b, "{\"@timestamp\":\"%s.%03dZ\",\"event\":{\"module\":\"mail\","
			    "\"dataset\":\"mail.message\",\"kind\":\"%s\",\"category\":\"email\","
			    "\"action\":\"%s\",\"outcome\":\"%s\",\"severity\":%d},\"message\":",
			    ts, (int)(now % 1000), alert ? "alert" : "event", vn,
			    e->verdict == MAIL_V_ACCEPT || e->verdict == MAIL_V_TAG ? "success"
										   : "failure",
			    e->verdict == MAIL_V_REJECT ? 6 : e->verdict == MAIL_V_QUARANTINE ? 5 : 2);
	char msg[1200];
	const struct mail_finding *mf = mail_main_finding(e);
	snprintf(msg, sizeof(msg), "%s mail from <%.500s> to %zu recipient(s): %s%s%.240s",
		 e->outbound ? "outbound" : "inbound", s->mail_from, s->nrcpt, vn,
		 mf ? " - " : "", mf ? mf->detail : "");
	rc = rc ? rc : jstr(b, msg);
	if (rc == 0 && s->client_ip[0]) {
		rc = buf_puts(b, ",\"source\":{\"ip\":");
		rc = rc ? rc : jstr(b, s->client_ip);
		rc = rc ? rc : buf_puts(b, ",\"domain\":");
		rc = rc ? rc : jstr(b, s->client_name);
		rc = rc ? rc : buf_putc(b, '}');
	}
	rc = rc ? rc : buf_printf(b, ",\"email\":{\"direction\":\"%s\",\"sender\":{\"address\":",
				  e->outbound ? "outbound" : "inbound");
	rc = rc ? rc : jstr(b, s->mail_from);
	rc = rc ? rc : buf_puts(b, "},\"to\":{\"address\":[");
	for (size_t i = 0; rc == 0 && i < s->nrcpt; i++) {
		rc = i ? buf_putc(b, ',') : 0;
		rc = rc ? rc : jstr(b, s->rcpt[i]);
	}
	rc = rc ? rc : buf_puts(b, "]}");
	if (rc == 0 && e->mm) {
		rc = buf_puts(b, ",\"from\":{\"address\":");
		rc = rc ? rc : addr_array(b, &e->mm->from);
		rc = rc ? rc : buf_puts(b, "},\"cc\":{\"address\":");
		rc = rc ? rc : addr_array(b, &e->mm->cc);
		rc = rc ? rc : buf_puts(b, "},\"reply_to\":{\"address\":");
		rc = rc ? rc : addr_array(b, &e->mm->reply_to);
		rc = rc ? rc : buf_puts(b, "},\"subject\":");
		rc = rc ? rc : jstr(b, e->mm->subject);
		rc = rc ? rc : buf_puts(b, ",\"attachments\":[");
		int first = 1;
		for (size_t i = 0; rc == 0 && i < e->mm->nparts; i++) {
			const struct mime_part *p = &e->mm->parts[i];
			if (!p->is_attachment || p->is_multipart)
				continue;
			rc = first ? 0 : buf_putc(b, ',');
			first = 0;
			rc = rc ? rc : buf_puts(b, "{\"file\":{\"name\":");
			rc = rc ? rc : jstr(b, p->filename);
			rc = rc ? rc : buf_puts(b, ",\"mime_type\":");
			rc = rc ? rc : jstr(b, p->ctype);
			rc = rc ? rc : buf_printf(b, ",\"size\":%zu,\"hash\":{\"sha256\":\"%s\","
						  "\"sha1\":\"%s\",\"md5\":\"%s\"}}}",
						  p->len, p->sha256, p->sha1, p->md5);
		}
		rc = rc ? rc : buf_putc(b, ']');
	}
	long mid = msg_find(s->m, "Message-ID", 0);
	if (rc == 0 && mid >= 0) {
		char *v = msg_hdr_unfolded(s->m, (size_t)mid);
		rc = buf_puts(b, ",\"message_id\":");
		rc = rc ? rc : jstr(b, v);
		free(v);
	}
	rc = rc ? rc : buf_putc(b, '}');
	if (rc == 0 && e->urls_done && e->urls.n) {
		rc = buf_puts(b, ",\"url\":{\"original\":[");
		for (size_t i = 0; rc == 0 && i < e->urls.n && i < 50; i++) {
			rc = i ? buf_putc(b, ',') : 0;
			rc = rc ? rc : jstr(b, e->urls.item[i].url);
		}
		rc = rc ? rc : buf_puts(b, "]}");
	}
	rc = rc ? rc : buf_printf(b, ",\"mail\":{\"verdict\":\"%s\",\"score\":%d,\"queue_id\":", vn,
				  e->score);
	const char *q = milter_macro(s, "i");
	rc = rc ? rc : jstr(b, q ? q : "");
	if (rc == 0 && qid && qid[0]) {
		rc = buf_puts(b, ",\"quarantine_id\":");
		rc = rc ? rc : jstr(b, qid);
	}
	if (rc == 0 && e->auth_done) {
		const struct mail_auth *a = &e->auth;
		if (a->spf_done)
			rc = buf_printf(b, ",\"spf\":\"%s\"", spf_result_str(a->spf.result));
		rc = rc ? rc : buf_puts(b, ",\"dkim\":[");
		for (size_t i = 0; rc == 0 && i < a->dkim.n; i++) {
			rc = buf_printf(b, "%s{\"result\":\"%s\",\"d\":", i ? "," : "",
					dkim_result_str(a->dkim.sig[i].result));
			rc = rc ? rc : jstr(b, a->dkim.sig[i].d);
			rc = rc ? rc : buf_putc(b, '}');
		}
		rc = rc ? rc : buf_putc(b, ']');
		if (rc == 0 && a->arc_present)
			rc = buf_printf(b, ",\"arc\":\"%s\"",
					a->arc.cv == ARC_PASS ? "pass" : a->arc.cv == ARC_FAIL ? "fail"
												: "none");
		if (rc == 0 && a->dmarc_done)
			rc = buf_printf(b, ",\"dmarc\":\"%s\"", dmarc_result_str(a->dmarc.result));
	}
	/* The kinds of finding, once each: what the bundled rules match on. */
	rc = rc ? rc : buf_puts(b, ",\"kinds\":[");
	for (size_t i = 0, n = 0; rc == 0 && i < e->nf; i++) {
		size_t k;
		for (k = 0; k < i && strcmp(e->f[k].kind, e->f[i].kind) != 0; k++)
			;
		if (k < i)
			continue;
		rc = buf_printf(b, "%s\"%s\"", n++ ? "," : "", e->f[i].kind);
	}
	rc = rc ? rc : buf_putc(b, ']');
	rc = rc ? rc : buf_puts(b, ",\"reasons\":");
	rc = rc ? rc : mail_reasons_json(e, b);
	rc = rc ? rc : buf_puts(b, "}}");
	return rc;
}

void mail_event(struct mail_gw *g, const struct mail_eval *e, const char *qid)
{
	char from[160], why[200];
	const char *q = milter_macro(e->s, "i");
	const struct mail_finding *mf = mail_main_finding(e);
	log_msg(e->verdict == MAIL_V_ACCEPT ? LOG_DEBUG : LOG_INFO, "mail",
		"event=message verdict=%s direction=%s queue_id=%s from=\"%s\" rcpts=%zu score=%d"
		" reason=\"%s\"%s%s",
		verdict_name(e->verdict), e->outbound ? "outbound" : "inbound", q ? q : "",
		log_escape(e->s->mail_from, strlen(e->s->mail_from), from, sizeof(from)),
		e->s->nrcpt, e->score,
		mf ? log_escape(mf->detail, strlen(mf->detail), why, sizeof(why)) : "",
		qid && qid[0] ? " quarantine_id=" : "", qid ? qid : "");
	if (!g->deps.pipe || !g->in)
		return;
	struct buf b;
	buf_init(&b, EVENT_MAX);
	if (mail_event_json(g, e, qid, &b) < 0) {
		metric_add(g->m_events_dropped, 1);
		buf_fini(&b);
		return;
	}
	struct raw_batch *rb = raw_batch_new(g->in, 1, b.len + 256);
	if (!rb || raw_batch_add(rb, b.p, b.len, "", 0, 0) < 0) {
		raw_batch_free(rb);
		metric_add(g->m_events_dropped, 1);
	} else {
		rb->recv_us = clock_now_us();
		if (pipeline_submit(g->deps.pipe, rb, 100) < 0) {
			raw_batch_free(rb);
			metric_add(g->m_events_dropped, 1);
		}
	}
	buf_fini(&b);
}

void mail_hold_notice(struct mail_gw *g, const struct mail_eval *e, const char *id)
{
	char *text = NULL;
	if (!e->s->mail_from[0] || quarantine_hold_notice(g->q, id, g->base_url, &text) < 0 || !text) {
		log_msg(LOG_WARN, "mail", "event=hold_notice_failed id=%s", id);
		return;
	}
	char *rcpt[1] = {(char *)e->s->mail_from};
	struct quarantine_result res;
	memset(&res, 0, sizeof(res));
	if (quarantine_smtp_send(g->cfg->release_to, 30, "", rcpt, 1, text, strlen(text), &res) < 0)
		log_msg(LOG_WARN, "mail", "event=hold_notice_not_sent id=%s detail=\"%s\"", id,
			res.detail);
	free(text);
}

/* ---- correspondents ---- */

int mail_corr_open(struct mail_gw *g, struct buf *err)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/mail.db", g->deps.data_dir);
	if (sqlite3_open_v2(path, &g->corr, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
						 SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_exec(g->corr,
			 "PRAGMA journal_mode=WAL;"
			 "CREATE TABLE IF NOT EXISTS correspondents(sender TEXT NOT NULL,"
			 " rcpt TEXT NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL,"
			 " n INTEGER NOT NULL, PRIMARY KEY(sender, rcpt)) WITHOUT ROWID;",
			 NULL, NULL, NULL) != SQLITE_OK) {
		buf_printf(err, "mail: %s: %s", path, g->corr ? sqlite3_errmsg(g->corr) : "cannot open");
		return M_EIO;
	}
	sqlite3_busy_timeout(g->corr, 2000);
	return 0;
}

void mail_corr_close(struct mail_gw *g)
{
	if (g->corr)
		sqlite3_close(g->corr);
	g->corr = NULL;
}

int mail_corr_first(struct mail_gw *g, const char *sender, const char *rcpt)
{
	if (!g->corr || !sender[0])
		return 0;
	int first = 0;
	long long now = (long long)time(NULL);
	pthread_mutex_lock(&g->corr_mu);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(g->corr,
			       "INSERT INTO correspondents(sender, rcpt, first, last, n)"
			       " VALUES(lower(?1), lower(?2), ?3, ?3, 1)"
			       " ON CONFLICT(sender, rcpt) DO UPDATE SET last = ?3, n = n + 1"
			       " RETURNING n",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, sender, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, rcpt, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, now);
		if (sqlite3_step(st) == SQLITE_ROW)
			first = sqlite3_column_int64(st, 0) == 1;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&g->corr_mu);
	return first;
}
