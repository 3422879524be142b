/*
 * mail_int: what the gateway's files share (mail_gw.c decides,
 * mail_content.c scans, mail_event.c reports). Private to src/mail.
 */
#ifndef MAMORI_MAIL_INT_H
#define MAMORI_MAIL_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "mail/mail_auth.h"
#include "mail/dmarc_report.h"
#include "mail/mail_gw.h"
#include "mail/mime.h"
#include "mail/urls.h"

#define MAIL_MAX_FINDINGS 48

enum mail_verdict {
	MAIL_V_ACCEPT = 0,
	MAIL_V_TAG,
	MAIL_V_QUARANTINE,
	MAIL_V_REJECT,
	MAIL_V_TEMPFAIL,
	MAIL_V_HOLD, /* outbound, held for mail.outbound_hold */
	MAIL_V_COUNT
};

struct mail_cidr {
	int af;
	uint8_t a[16];
	int plen;
};

struct mail_finding {
	char kind[24];
	enum mail_action act;
	int score;
	char detail[240];
};

struct mail_content; /* mail_content.c */

struct mail_gw {
	const struct mail_config *cfg;
	struct mail_gw_deps deps;
	struct mdns *dns;
	int own_dns;
	struct milter *ml;
	struct quarantine *q;
	struct mail_content *content;
	const struct input *in;
	char authserv_id[256];
	char base_url[512];
	struct mail_cidr *nets;
	size_t nnets;
	/* Who has written to whom before (first-time sender checks). */
	sqlite3 *corr;
	pthread_mutex_t corr_mu;
	/* DMARC aggregate reports (mail_report.c). */
	struct dmarc_report *rep;
	pthread_t rep_thread;
	pthread_mutex_t rep_mu;
	pthread_cond_t rep_cv;
	int rep_stop, rep_started;
	struct metric *m_verdict[MAIL_V_COUNT];
	struct metric *m_latency, *m_events_dropped;
};

/* One message being decided. */
struct mail_eval {
	const struct milter_session *s;
	int outbound;
	struct mime_msg *mm;
	char from_domain[256];
	const char *from_addr, *from_name;
	int auth_done;
	struct mail_auth_in ain;
	struct mail_auth auth;
	struct url_list urls;
	int urls_done;
	struct mail_finding f[MAIL_MAX_FINDINGS];
	size_t nf;
	int score;
	enum mail_action act;
	int tempfail;
	char tf_why[320];
	char reject_text[400];
	int hold_outbound;
	int hide_recipients; /* To and Cc become undisclosed-recipients */
	enum mail_verdict verdict;
	unsigned malware; /* clamd or YARA matches */
};

void mail_find(struct mail_eval *e, const char *kind, enum mail_action act, int score,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int mail_cidr_match(const struct mail_cidr *c, int af, const uint8_t *ip);
int mail_is_local_domain(const struct mail_gw *g, const char *domain);
int mail_reasons_json(const struct mail_eval *e, struct buf *out);
/* The finding that decided: the first with the strongest action, or NULL. */
const struct mail_finding *mail_main_finding(const struct mail_eval *e);

/* mail_content.c */
int mail_content_init(struct mail_gw *g, struct buf *err);
void mail_content_fini(struct mail_gw *g);
/* MIME and the From domain (before authentication, which needs it). */
void mail_content_parse(struct mail_gw *g, struct mail_eval *e);
/* Attachments, malware, URLs, BEC, DLP, outbound hold. */
void mail_content_scan(struct mail_gw *g, struct mail_eval *e);
void mail_content_fini_eval(struct mail_eval *e);
/* DKIM-sign an outbound message we accept. */
void mail_sign(struct mail_gw *g, struct mail_eval *e, struct milter_reply *r);
/* ARC-seal an inbound message we relay (mail.arc_seal). */
void mail_arc_seal(struct mail_gw *g, struct mail_eval *e, const char *ar_value,
		   struct milter_reply *r);

/* mail_report.c */
int mail_report_init(struct mail_gw *g, struct buf *err);
void mail_report_fini(struct mail_gw *g);
void mail_report_add(struct mail_gw *g, const struct mail_eval *e);
int mail_report_start(struct mail_gw *g);
void mail_report_stop(struct mail_gw *g);

/* mail_event.c */
void mail_event(struct mail_gw *g, const struct mail_eval *e, const char *quarantine_id);
int mail_event_json(struct mail_gw *g, const struct mail_eval *e, const char *quarantine_id,
		    struct buf *out);
void mail_hold_notice(struct mail_gw *g, const struct mail_eval *e, const char *id);
int mail_corr_open(struct mail_gw *g, struct buf *err);
void mail_corr_close(struct mail_gw *g);
/* 1 when sender never wrote to rcpt before (and records the pair now). */
int mail_corr_first(struct mail_gw *g, const char *sender, const char *rcpt);

#endif
