/*
 * mail_report: DMARC aggregate reports (RFC 7489 section 7.2) from the
 * gateway. Every inbound message whose From domain publishes a DMARC record
 * is counted (dmarc_report.c keeps the rows in memory); a thread flushes
 * them to <data_dir>/mail.db each minute and, once a reporting period
 * (a UTC day) has ended, renders one XML report per policy domain, gzips
 * it and mails it to the domain's rua= addresses through mail.release_to.
 *
 * Why the rua is looked up at sending time: the record may have changed
 * during the day, and RFC 7489 7.1 wants a destination outside the policy
 * domain to be confirmed by a "<domain>._report._dmarc.<dest>" record
 * before anything is sent there. What was sent (or why not) is recorded, so
 * a restart neither loses a day nor sends it twice.
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "mail/dmarc_report.h"
#include "mail/mail_int.h"
#include "mail/mdns.h"
#include "mail/quarantine_int.h"

#define REPORT_PERIOD 86400u
#define REPORT_KEEP_PERIODS 7
#define REPORT_MAX_RUA 4

int mail_report_init(struct mail_gw *g, struct buf *err)
{
	if (!g->cfg->dmarc_reports)
		return 0;
	g->rep = dmarc_report_new(REPORT_PERIOD, 0);
	if (!g->rep) {
		buf_puts(err, "mail: out of memory (DMARC reports)");
		return M_ENOMEM;
	}
	if (dmarc_report_schema(g->corr) < 0 ||
	    sqlite3_exec(g->corr,
			 "CREATE TABLE IF NOT EXISTS dmarc_sent(begin INTEGER NOT NULL,"
			 " domain TEXT NOT NULL, sent_at INTEGER NOT NULL, status TEXT NOT NULL,"
			 " detail TEXT, PRIMARY KEY(begin, domain)) WITHOUT ROWID;",
			 NULL, NULL, NULL) != SQLITE_OK) {
		buf_printf(err, "mail: DMARC report tables: %s", sqlite3_errmsg(g->corr));
		return M_EIO;
	}
	return 0;
}

void mail_report_fini(struct mail_gw *g)
{
	dmarc_report_free(g->rep);
	g->rep = NULL;
}

void mail_report_add(struct mail_gw *g, const struct mail_eval *e)
{
	const struct mail_auth *a = &e->auth;
	if (!g->rep || e->outbound || !e->auth_done || !a->dmarc_done || !e->s->af ||
	    (a->dmarc.result != DMARC_RESULT_PASS && a->dmarc.result != DMARC_RESULT_FAIL))
		return;
	struct dmarc_dkim dk[DKIM_MAX_SIGS];
	struct dmarc_auth da;
	mail_auth_dmarc_input(a, &e->ain, &da, dk);
	dmarc_report_add(g->rep, e->ain.now, e->s->af, e->s->ip, &da, &a->dmarc);
}

/* The rua= mailto addresses of domain's record, checked as RFC 7489 7.1
 * asks; up to REPORT_MAX_RUA into out. */
static size_t rua_of(struct mail_gw *g, const char *domain, char out[][320], char *why,
		     size_t whylen)
{
	char name[300];
	snprintf(name, sizeof(name), "_dmarc.%.253s", domain);
	struct mdns_answer ans;
	mdns_query(g->dns, name, MDNS_TXT, &ans);
	struct dmarc_record rec;
	int found = 0;
	for (size_t i = 0; i < ans.n && !found; i++)
		if (dmarc_is_record(ans.rr[i].data, ans.rr[i].len) &&
		    dmarc_parse_record(ans.rr[i].data, ans.rr[i].len, &rec, why, whylen) == 0)
			found = 1;
	mdns_answer_fini(&ans);
	if (!found) {
		snprintf(why, whylen, "no DMARC record at %.200s now", name);
		return 0;
	}
	char org[256] = "";
	dmarc_org_domain(domain, org, sizeof(org));
	size_t n = 0;
	const char *p = rec.rua;
	while (*p && n < REPORT_MAX_RUA) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t len = strcspn(p, ",");
		if (len > 7 && strncasecmp(p, "mailto:", 7) == 0) {
			size_t al = strcspn(p + 7, "!,");
			while (al > 0 && p[7 + al - 1] == ' ')
				al--;
			if (al > 0 && al < 320) {
				char addr[320];
				memcpy(addr, p + 7, al);
				addr[al] = '\0';
				const char *at = strrchr(addr, '@');
				char dorg[256] = "";
				if (at)
					dmarc_org_domain(at + 1, dorg, sizeof(dorg));
				int ok = at != NULL;
				if (ok && strcasecmp(dorg, org) != 0) {
					/* External destination: it must agree. */
					char vname[600];
					snprintf(vname, sizeof(vname), "%.253s._report._dmarc.%.253s", domain, at + 1);
					struct mdns_answer v;
					mdns_query(g->dns, vname, MDNS_TXT, &v);
					ok = 0;
					for (size_t i = 0; i < v.n; i++)
						ok |= dmarc_is_record(v.rr[i].data, v.rr[i].len);
					mdns_answer_fini(&v);
					if (!ok)
						log_msg(LOG_INFO, "mail",
							"event=dmarc_rua_unverified domain=%s rua=%s", domain,
							at + 1);
				}
				if (ok)
					memcpy(out[n++], addr, al + 1);
			}
		}
		p += len;
	}
	if (n == 0)
		snprintf(why, whylen, "no usable rua= address");
	return n;
}

/* The report message: a short text and the gzipped XML, base64. */
static int compose(struct mail_gw *g, const char *from, const char *to, const char *domain,
		   long long begin, const char *report_id, const unsigned char *gz, size_t gzlen,
		   struct buf *out)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	const char *org = g->cfg->dmarc_report_org[0] ? g->cfg->dmarc_report_org : g->authserv_id;
	long long end = begin + REPORT_PERIOD - 1;
	int rc = buf_printf(out,
			    "From: %s\r\nTo: %s\r\nDate: %s\r\n"
			    "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n"
			    "Message-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n"
			    "Content-Type: multipart/mixed; boundary=\"dmarc-%s\"\r\n\r\n"
			    "--dmarc-%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
			    "This is a DMARC aggregate report from %s for %s,\r\n"
			    "covering %lld to %lld (UTC seconds).\r\n\r\n"
			    "--dmarc-%s\r\nContent-Type: application/gzip\r\n"
			    "Content-Transfer-Encoding: base64\r\n"
			    "Content-Disposition: attachment;\r\n"
			    " filename=\"%s!%s!%lld!%lld.xml.gz\"\r\n\r\n",
			    from, to, date, domain, org, report_id, report_id, g->authserv_id,
			    report_id, report_id, org, domain, begin, end, report_id, org, domain,
			    begin, end);
	unsigned char line[80];
	for (size_t i = 0; rc == 0 && i < gzlen; i += 57) {
		size_t n = gzlen - i < 57 ? gzlen - i : 57;
		int l = EVP_EncodeBlock(line, gz + i, (int)n);
		rc = buf_append(out, line, (size_t)l);
		rc = rc ? rc : buf_puts(out, "\r\n");
	}
	return rc ? rc : buf_printf(out, "--dmarc-%s--\r\n", report_id);
}

static void mark_sent(struct mail_gw *g, long long begin, const char *domain, const char *status,
		      const char *detail)
{
	sqlite3_stmt *st = NULL;
	pthread_mutex_lock(&g->corr_mu);
	if (sqlite3_prepare_v2(g->corr, "INSERT OR REPLACE INTO dmarc_sent VALUES(?,?,?,?,?)", -1,
			       &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, begin);
		sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
		sqlite3_bind_text(st, 4, status, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, detail, -1, SQLITE_STATIC);
		sqlite3_step(st);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&g->corr_mu);
}

/* One finished period of one domain: rendered, gzipped, mailed. */
static int send_one(struct mail_gw *g, long long begin, const char *domain)
{
	char rua[REPORT_MAX_RUA][320], why[256] = "";
	size_t n = rua_of(g, domain, rua, why, sizeof(why));
	if (n == 0) {
		mark_sent(g, begin, domain, "skipped", why);
		return 0;
	}
	unsigned char rnd[6];
	RAND_bytes(rnd, sizeof(rnd));
	char report_id[64];
	snprintf(report_id, sizeof(report_id), "%lld.%02x%02x%02x%02x%02x%02x", begin, rnd[0],
		 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	char from[320];
	if (g->cfg->dmarc_report_from[0])
		snprintf(from, sizeof(from), "%s", g->cfg->dmarc_report_from);
	else
		snprintf(from, sizeof(from), "dmarc-noreply@%s", g->authserv_id);
	struct dmarc_report_meta meta = {0};
	meta.org_name = g->cfg->dmarc_report_org[0] ? g->cfg->dmarc_report_org : g->authserv_id;
	meta.email = from;
	meta.report_id = report_id;
	struct buf xml, msg;
	buf_init(&xml, 64u << 20);
	buf_init(&msg, 96u << 20);
	unsigned char *gz = NULL;
	size_t gzlen = 0;
	pthread_mutex_lock(&g->corr_mu);
	int rc = dmarc_report_render(g->corr, &meta, domain, (time_t)begin, REPORT_PERIOD, &xml);
	pthread_mutex_unlock(&g->corr_mu);
	if (rc == 0)
		rc = dmarc_report_gzip(xml.p, xml.len, &gz, &gzlen);
	int sent = 0;
	struct quarantine_result res;
	memset(&res, 0, sizeof(res));
	for (size_t i = 0; rc == 0 && i < n; i++) {
		buf_reset(&msg);
		if (compose(g, from, rua[i], domain, begin, report_id, gz, gzlen, &msg) < 0)
			break;
		char *to[1] = {rua[i]};
		if (quarantine_smtp_send(g->cfg->release_to, 60, "", to, 1, msg.p, msg.len, &res) == 0)
			sent++;
		else
			log_msg(LOG_WARN, "mail", "event=dmarc_report_not_sent domain=%s rua=%s detail=\"%s\"",
				domain, rua[i], res.detail);
	}
	if (rc < 0)
		mark_sent(g, begin, domain, "failed", "cannot render the report");
	else if (sent > 0)
		mark_sent(g, begin, domain, "sent", report_id);
	/* All destinations failed: left unmarked, tried again at the next tick. */
	if (sent)
		log_msg(LOG_INFO, "mail", "event=dmarc_report_sent domain=%s begin=%lld rua=%zu bytes=%zu",
			domain, begin, (size_t)sent, gzlen);
	free(gz);
	buf_fini(&xml);
	buf_fini(&msg);
	return sent;
}

int mail_gw_dmarc_tick(struct mail_gw *g, time_t now)
{
	if (!g->rep)
		return 0;
	pthread_mutex_lock(&g->corr_mu);
	dmarc_report_flush(g->rep, g->corr);
	pthread_mutex_unlock(&g->corr_mu);
	long long current = (long long)now - (long long)now % REPORT_PERIOD;
	long long due_begin[64];
	char due_domain[64][256];
	size_t ndue = 0;
	sqlite3_stmt *st = NULL;
	pthread_mutex_lock(&g->corr_mu);
	if (sqlite3_prepare_v2(g->corr,
			       "SELECT DISTINCT a.begin, a.domain FROM dmarc_agg a WHERE a.begin < ?1"
			       " AND NOT EXISTS (SELECT 1 FROM dmarc_sent s WHERE s.begin = a.begin"
			       " AND s.domain = a.domain) ORDER BY a.begin LIMIT 64",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, current);
		while (ndue < 64 && sqlite3_step(st) == SQLITE_ROW) {
			due_begin[ndue] = sqlite3_column_int64(st, 0);
			snprintf(due_domain[ndue], sizeof(due_domain[ndue]), "%s",
				 (const char *)sqlite3_column_text(st, 1));
			ndue++;
		}
	}
	sqlite3_finalize(st);
	/* Who wrote to whom: pairs silent for over a year are forgotten (a
	 * sender back after that counts as first-time again). */
	st = NULL;
	if (sqlite3_prepare_v2(g->corr, "DELETE FROM correspondents WHERE last < ?1", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)now - 365LL * 86400);
		sqlite3_step(st);
	}
	sqlite3_finalize(st);
	/* Old periods go, sent or not. */
	st = NULL;
	if (sqlite3_prepare_v2(g->corr,
			       "DELETE FROM dmarc_agg WHERE begin < ?1;"
			       , -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, current - (long long)REPORT_KEEP_PERIODS * REPORT_PERIOD);
		sqlite3_step(st);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&g->corr_mu);
	int sent = 0;
	for (size_t i = 0; i < ndue; i++)
		sent += send_one(g, due_begin[i], due_domain[i]) > 0;
	return sent;
}

static void *report_main(void *arg)
{
	struct mail_gw *g = arg;
	pthread_mutex_lock(&g->rep_mu);
	while (!g->rep_stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 60;
		pthread_cond_timedwait(&g->rep_cv, &g->rep_mu, &until);
		if (g->rep_stop)
			break;
		pthread_mutex_unlock(&g->rep_mu);
		mail_gw_dmarc_tick(g, time(NULL));
		pthread_mutex_lock(&g->rep_mu);
	}
	pthread_mutex_unlock(&g->rep_mu);
	return NULL;
}

int mail_report_start(struct mail_gw *g)
{
	if (!g->rep)
		return 0;
	if (pthread_create(&g->rep_thread, NULL, report_main, g) != 0)
		return M_EIO;
	g->rep_started = 1;
	return 0;
}

void mail_report_stop(struct mail_gw *g)
{
	if (!g->rep_started)
		return;
	pthread_mutex_lock(&g->rep_mu);
	g->rep_stop = 1;
	pthread_cond_broadcast(&g->rep_cv);
	pthread_mutex_unlock(&g->rep_mu);
	pthread_join(g->rep_thread, NULL);
	g->rep_started = 0;
	/* What was counted since the last tick is kept. */
	pthread_mutex_lock(&g->corr_mu);
	dmarc_report_flush(g->rep, g->corr);
	pthread_mutex_unlock(&g->corr_mu);
}
