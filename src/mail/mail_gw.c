/*
 * mail_gw: the gateway's decision on each message. See mail_gw.h.
 *
 * One message, at end of data, on the MTA connection's thread:
 *   1. direction: outbound when the client authenticated (the MTA's
 *      {auth_authen} macro) or comes from mail.internal_networks;
 *   2. inbound: SPF, DKIM, ARC and DMARC (mail_auth.c); the DMARC
 *      disposition, local overrides, and trusted ARC sealers decide whether a
 *      failing message is rejected (5.7.1) or held in our quarantine;
 *   3. content (mail_content.c): MIME, attachment policy, clamd, YARA,
 *      URLs and hashes against the indicator store, BEC checks; outbound:
 *      DLP, outbound hold;
 *   4. the strongest action wins (reject > quarantine > tag > none), the
 *      score adds up against mail.score_quarantine / score_reject; a DNS or
 *      scanner failure that keeps a check from deciding gives a tempfail;
 *   5. headers: forged Authentication-Results with our authserv-id are
 *      removed, ours goes on top; a DKIM signature on outbound mail;
 *   6. one event per message into the pipeline (email.*, the results, the
 *      verdict and its reasons).
 */
#include "mail/mail_gw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "mail/mail_auth.h"
#include "mail/mail_int.h"
#include "mail/mdns.h"
#include "mail/quarantine.h"

/* ---- lifecycle ---- */

static int parse_cidr(const char *s, struct mail_cidr *c)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", s);
	char *slash = strchr(buf, '/');
	long plen = -1;
	if (slash) {
		*slash = '\0';
		char *end;
		plen = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1)
			return -1;
	}
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, buf, c->a) == 1) {
		c->af = AF_INET;
		if (plen < 0)
			plen = 32;
		if (plen > 32)
			return -1;
	} else if (inet_pton(AF_INET6, buf, c->a) == 1) {
		c->af = AF_INET6;
		if (plen < 0)
			plen = 128;
		if (plen > 128)
			return -1;
	} else {
		return -1;
	}
	c->plen = (int)plen;
	return 0;
}

int mail_cidr_match(const struct mail_cidr *c, int af, const uint8_t *ip)
{
	if (c->af != af)
		return 0;
	int full = c->plen / 8, rest = c->plen % 8;
	if (memcmp(c->a, ip, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (c->a[full] & mask) == (ip[full] & mask);
}

static void metrics_init(struct mail_gw *g)
{
	static const char *const names[] = {"accept", "tag", "quarantine", "reject", "tempfail",
					    "hold"};
	for (int i = 0; i < MAIL_V_COUNT; i++) {
		char labels[64];
		snprintf(labels, sizeof(labels), "verdict=\"%s\"", names[i]);
		g->m_verdict[i] = metric_get("mamori_mail_messages_total",
					     "messages decided by the mail gateway, by verdict",
					     METRIC_COUNTER, labels);
	}
	g->m_latency = metric_get("mamori_mail_check_seconds",
				  "time the gateway adds per message (all checks)", METRIC_HISTOGRAM,
				  NULL);
	g->m_events_dropped = metric_get("mamori_mail_events_dropped_total",
					 "message events the pipeline could not take", METRIC_COUNTER,
					 NULL);
}

static void on_eom(void *arg, const struct milter_session *s, struct milter_reply *r)
{
	mail_gw_check(arg, s, r);
}

struct mail_gw *mail_gw_new(const struct mail_config *cfg, const struct mail_gw_deps *deps,
			    struct buf *err)
{
	struct mail_gw *g = calloc(1, sizeof(*g));
	char e[256] = "";
	if (!g) {
		buf_puts(err, "mail: out of memory");
		return NULL;
	}
	g->cfg = cfg;
	g->deps = *deps;
	pthread_mutex_init(&g->corr_mu, NULL);
	pthread_mutex_init(&g->rep_mu, NULL);
	pthread_cond_init(&g->rep_cv, NULL);
	if (cfg->authserv_id && cfg->authserv_id[0])
		snprintf(g->authserv_id, sizeof(g->authserv_id), "%s", cfg->authserv_id);
	else if (gethostname(g->authserv_id, sizeof(g->authserv_id) - 1) != 0 || !g->authserv_id[0])
		snprintf(g->authserv_id, sizeof(g->authserv_id), "localhost");
	for (size_t i = 0; i < cfg->internal_networks.n; i++) {
		struct mail_cidr c;
		if (parse_cidr(cfg->internal_networks.v[i], &c) < 0) {
			buf_printf(err, "mail.internal_networks: \"%s\" is not an address or CIDR",
				   cfg->internal_networks.v[i]);
			goto fail;
		}
		struct mail_cidr *n = realloc(g->nets, (g->nnets + 1) * sizeof(*n));
		if (!n)
			goto nomem;
		g->nets = n;
		g->nets[g->nnets++] = c;
	}
	if (deps->dns) {
		g->dns = deps->dns;
	} else {
		const char *why = NULL;
		g->dns = mdns_unbound_new(cfg->dns, (unsigned)cfg->dns_timeout * 1000, &why);
		if (!g->dns) {
			buf_printf(err, "mail.dns: %s", why ? why : "cannot start the resolver");
			goto fail;
		}
		g->own_dns = 1;
	}
	if (mail_content_init(g, err) < 0)
		goto fail;
	/* The quarantine. */
	char qdir[4096], qdb[4096];
	if (cfg->quarantine_dir && cfg->quarantine_dir[0])
		snprintf(qdir, sizeof(qdir), "%s", cfg->quarantine_dir);
	else
		snprintf(qdir, sizeof(qdir), "%s/quarantine", deps->data_dir);
	snprintf(qdb, sizeof(qdb), "%s/quarantine.db", deps->data_dir);
	g->q = quarantine_open(qdir, qdb, e, sizeof(e));
	if (!g->q) {
		buf_printf(err, "mail: quarantine: %s", e);
		goto fail;
	}
	struct quarantine_config qc = {0};
	qc.reinject = cfg->release_to;
	qc.timeout = 30;
	qc.retention = cfg->quarantine_retention;
	qc.hold = cfg->outbound_hold;
	qc.key = (char *)"";
	qc.notice_from = (char *)"";
	qc.hold_expiry = cfg->hold_expiry_delete ? QUARANTINE_EXPIRE_DELETE + 1 : 0;
	if (quarantine_configure(g->q, &qc) < 0) {
		buf_puts(err, "mail: quarantine: bad configuration");
		goto fail;
	}
	if (mail_corr_open(g, err) < 0 || mail_report_init(g, err) < 0)
		goto fail;
	if (cfg->public_url && cfg->public_url[0])
		snprintf(g->base_url, sizeof(g->base_url), "%s", cfg->public_url);
	else
		snprintf(g->base_url, sizeof(g->base_url), "http://%s",
			 deps->api_listen ? deps->api_listen : "127.0.0.1:8080");
	if (deps->pipe && !(g->in = pipeline_add_input(deps->pipe, "mail", RAW_JSON))) {
		buf_puts(err, "mail: too many pipeline inputs");
		goto fail;
	}
	metrics_init(g);
	if (cfg->milter && cfg->milter[0]) {
		struct milter_conf mc = {cfg->milter, (unsigned)cfg->max_conns, (unsigned)cfg->timeout,
					 (size_t)cfg->max_message};
		struct milter_hooks h = {g, on_eom};
		g->ml = milter_new(&mc, &h, e, sizeof(e));
		if (!g->ml) {
			buf_puts(err, e);
			goto fail;
		}
	}
	return g;
nomem:
	buf_puts(err, "mail: out of memory");
fail:
	buf_cstr(err);
	mail_gw_free(g);
	return NULL;
}

int mail_gw_start(struct mail_gw *g)
{
	if (g->q && quarantine_expiry_start(g->q, 60) < 0)
		log_msg(LOG_WARN, "mail", "event=quarantine_expiry_not_started");
	if (mail_report_start(g) < 0)
		return M_EIO;
	if (g->ml && milter_start(g->ml) < 0)
		return M_EIO;
	log_msg(LOG_INFO, "mail", "event=started milter=%s authserv_id=%s dns=%s clamd=%s",
		g->ml ? g->cfg->milter : "off", g->authserv_id,
		g->own_dns ? (g->cfg->dns[0] ? g->cfg->dns : "resolv.conf") : "given",
		g->cfg->clamd[0] ? g->cfg->clamd : "off");
	return 0;
}

void mail_gw_stop(struct mail_gw *g)
{
	if (g && g->ml)
		milter_stop(g->ml);
	if (g)
		mail_report_stop(g);
}

void mail_gw_free(struct mail_gw *g)
{
	if (!g)
		return;
	milter_free(g->ml);
	mail_report_stop(g);
	if (g->rep && g->corr) {
		pthread_mutex_lock(&g->corr_mu);
		dmarc_report_flush(g->rep, g->corr);
		pthread_mutex_unlock(&g->corr_mu);
	}
	mail_report_fini(g);
	mail_content_fini(g);
	quarantine_close(g->q);
	mail_corr_close(g);
	if (g->own_dns)
		mdns_free(g->dns);
	free(g->nets);
	pthread_mutex_destroy(&g->corr_mu);
	pthread_mutex_destroy(&g->rep_mu);
	pthread_cond_destroy(&g->rep_cv);
	free(g);
}

int mail_gw_port(const struct mail_gw *g)
{
	return g->ml ? milter_port(g->ml) : -1;
}

struct quarantine *mail_gw_quarantine(struct mail_gw *g)
{
	return g ? g->q : NULL;
}

/* ---- one message ---- */

void mail_find(struct mail_eval *e, const char *kind, enum mail_action act, int score,
	       const char *fmt, ...)
{
	if (act > e->act)
		e->act = act;
	e->score += score;
	if (e->nf >= MAIL_MAX_FINDINGS)
		return;
	struct mail_finding *f = &e->f[e->nf++];
	snprintf(f->kind, sizeof(f->kind), "%s", kind);
	f->act = act;
	f->score = score;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
	va_end(ap);
}

const struct mail_finding *mail_main_finding(const struct mail_eval *e)
{
	const struct mail_finding *best = NULL;
	for (size_t i = 0; i < e->nf; i++)
		if (!best || e->f[i].act > best->act || (best->score == 0 && e->f[i].score > 0 &&
							 e->f[i].act == best->act))
			best = &e->f[i];
	return best;
}

static int is_outbound(const struct mail_gw *g, const struct milter_session *s)
{
	const char *auth = milter_macro(s, "auth_authen");
	if (auth && auth[0])
		return 1;
	for (size_t i = 0; i < g->nnets; i++)
		if (s->af && mail_cidr_match(&g->nets[i], s->af, s->ip))
			return 1;
	return 0;
}

int mail_is_local_domain(const struct mail_gw *g, const char *domain)
{
	for (size_t i = 0; domain && i < g->cfg->local_domains.n; i++)
		if (strcasecmp(domain, g->cfg->local_domains.v[i]) == 0)
			return 1;
	return 0;
}

/* The DMARC step's consequences: reject or quarantine by the disposition,
 * a local override per domain, and trusted ARC sealers. */
static void apply_dmarc(struct mail_gw *g, struct mail_eval *e)
{
	const struct mail_auth *a = &e->auth;
	if (!a->dmarc_done)
		return;
	if (a->dmarc.result == DMARC_RESULT_TEMPERROR) {
		e->tempfail = 1;
		snprintf(e->tf_why, sizeof(e->tf_why), "DMARC policy lookup failed for %s",
			 e->from_domain);
		return;
	}
	if (a->dmarc.result != DMARC_RESULT_FAIL)
		return;
	int disp = a->dmarc.disposition;
	/* A local override for the sender's domain. */
	for (size_t i = 0; i < g->cfg->dmarc_overrides.n; i++) {
		const char *o = g->cfg->dmarc_overrides.v[i];
		const char *eq = strchr(o, '=');
		if (eq && (size_t)(eq - o) == strlen(e->from_domain) &&
		    strncasecmp(o, e->from_domain, (size_t)(eq - o)) == 0) {
			disp = !strcmp(eq + 1, "reject") ? DMARC_POLICY_REJECT
			       : !strcmp(eq + 1, "quarantine") ? DMARC_POLICY_QUARANTINE
							       : DMARC_POLICY_NONE;
			break;
		}
	}
	/* A forwarder we trust sealed the message and its chain holds. */
	if (disp != DMARC_POLICY_NONE && a->arc_present && a->arc.cv == ARC_PASS) {
		for (unsigned i = 0; i < a->arc.instances && i < 8; i++)
			for (size_t k = 0; k < g->cfg->arc_trusted.n; k++)
				if (strcasecmp(a->arc.domains[i], g->cfg->arc_trusted.v[k]) == 0) {
					mail_find(e, "dmarc", MAIL_ACT_TAG, 0,
						  "DMARC fail for %s overridden: ARC sealed by trusted %s",
						  e->from_domain, a->arc.domains[i]);
					return;
				}
	}
	if (!g->cfg->dmarc_enforce)
		disp = DMARC_POLICY_NONE;
	/* A DNS failure during SPF or DKIM may be why DMARC failed: never
	 * reject or hold on that, ask the sender to retry. */
	if (disp != DMARC_POLICY_NONE && mail_auth_temperror(a)) {
		e->tempfail = 1;
		snprintf(e->tf_why, sizeof(e->tf_why),
			 "DNS failure while authenticating %s; try again later", e->from_domain);
		return;
	}
	if (disp == DMARC_POLICY_REJECT) {
		mail_find(e, "dmarc", MAIL_ACT_REJECT, 0, "DMARC policy of %s is reject; "
			  "the sender is not authenticated", e->from_domain);
		snprintf(e->reject_text, sizeof(e->reject_text),
			 "Email rejected per DMARC policy for %s", e->from_domain);
	} else if (disp == DMARC_POLICY_QUARANTINE) {
		mail_find(e, "dmarc", MAIL_ACT_QUARANTINE, 0,
			  "DMARC policy of %s is quarantine; the sender is not authenticated",
			  e->from_domain);
	} else {
		mail_find(e, "dmarc", MAIL_ACT_TAG, 20, "DMARC fail for %s (policy none)",
			  e->from_domain);
	}
}

static void auth_step(struct mail_gw *g, struct mail_eval *e)
{
	const struct milter_session *s = e->s;
	struct mail_auth_in *in = &e->ain;
	in->af = s->af;
	in->ip = s->ip;
	in->helo = s->helo;
	in->mail_from = s->mail_from;
	in->receiver = g->authserv_id;
	in->m = s->m;
	in->from_domain = e->from_domain[0] ? e->from_domain : NULL;
	in->now = time(NULL);
	in->pct_roll = (unsigned)(clock_now_us() % 100);
	if (mail_auth_run(g->dns, in, &e->auth) < 0) {
		e->tempfail = 1;
		snprintf(e->tf_why, sizeof(e->tf_why), "internal error during authentication");
		return;
	}
	e->auth_done = 1;
	mail_report_add(g, e);
	if (e->auth.spf_done) {
		if (e->auth.spf.result == SPF_FAIL)
			mail_find(e, "spf", MAIL_ACT_TAG, 10, "SPF fail for %s from %s",
				  e->auth.spf.domain, s->client_ip);
		else if (e->auth.spf.result == SPF_SOFTFAIL)
			mail_find(e, "spf", MAIL_ACT_TAG, 5, "SPF softfail for %s from %s",
				  e->auth.spf.domain, s->client_ip);
	}
	if (!e->outbound)
		apply_dmarc(g, e);
}

/* Forged Authentication-Results carrying our authserv-id are removed;
 * from the bottom up so the instance numbers of the rest hold. */
static void strip_forged(struct mail_gw *g, const struct msg *m, struct milter_reply *r,
			 unsigned *removed)
{
	unsigned idx[64], n = 0, inst = 0;
	for (size_t i = 0; i < m->nhdr; i++) {
		if (!msg_hdr_is(m, i, "Authentication-Results"))
			continue;
		inst++;
		size_t vl;
		const char *v = msg_hdr_value(m, i, &vl);
		char id[256];
		if (mail_auth_servid(v, vl, id, sizeof(id)) == 0 && strcasecmp(id, g->authserv_id) == 0 &&
		    n < 64)
			idx[n++] = inst;
	}
	for (unsigned k = n; k > 0; k--)
		milter_reply_op(r, MILTER_OP_CHANGE, idx[k - 1], "Authentication-Results", "");
	*removed = n;
}

/* To and Cc removed (bottom up), one To: undisclosed-recipients:; added. */
static void hide_recipients(const struct msg *m, struct milter_reply *r)
{
	static const char *const names[] = {"To", "Cc"};
	for (int k = 0; k < 2; k++) {
		unsigned n = (unsigned)msg_count(m, names[k]);
		for (unsigned i = n; i > 0; i--)
			milter_reply_op(r, MILTER_OP_CHANGE, i, names[k], "");
	}
	milter_reply_op(r, MILTER_OP_ADD, 0, "To", " undisclosed-recipients:;");
}

static enum mail_verdict decide(struct mail_gw *g, struct mail_eval *e)
{
	if (e->tempfail)
		return MAIL_V_TEMPFAIL;
	if (e->score >= g->cfg->score_reject && e->act < MAIL_ACT_REJECT)
		mail_find(e, "score", MAIL_ACT_REJECT, 0, "score %d reaches mail.score_reject",
			  e->score);
	else if (e->score >= g->cfg->score_quarantine && e->act < MAIL_ACT_QUARANTINE)
		mail_find(e, "score", MAIL_ACT_QUARANTINE, 0,
			  "score %d reaches mail.score_quarantine", e->score);
	switch (e->act) {
	case MAIL_ACT_REJECT:
		return MAIL_V_REJECT;
	case MAIL_ACT_QUARANTINE:
		return MAIL_V_QUARANTINE;
	case MAIL_ACT_TAG:
		return MAIL_V_TAG;
	default:
		return MAIL_V_ACCEPT;
	}
}

/* The reasons as a JSON array (quarantine index, event). */
int mail_reasons_json(const struct mail_eval *e, struct buf *out)
{
	int rc = buf_putc(out, '[');
	for (size_t i = 0; rc == 0 && i < e->nf; i++) {
		rc = buf_printf(out, "%s{\"kind\":\"%s\",\"action\":\"%s\",\"score\":%d,\"detail\":\"",
				i ? "," : "", e->f[i].kind, mail_action_name(e->f[i].act),
				e->f[i].score);
		rc = rc ? rc : buf_json_escape(out, e->f[i].detail, strlen(e->f[i].detail));
		rc = rc ? rc : buf_puts(out, "\"}");
	}
	return rc ? rc : buf_putc(out, ']');
}

static char *first_value(const struct msg *m, const char *name)
{
	long i = msg_find(m, name, 0);
	return i >= 0 ? msg_hdr_unfolded(m, (size_t)i) : NULL;
}

/* Stores the message (with our Authentication-Results on top) in the
 * quarantine; its id into id. */
static int hold(struct mail_gw *g, struct mail_eval *e, const char *ar_value, int outbound_hold,
		char id[QUARANTINE_ID_LEN + 1])
{
	const struct milter_session *s = e->s;
	struct msg *copy = NULL;
	size_t len;
	char *text = msg_render(s->m, &len);
	int perr = 0, rc = M_ENOMEM;
	if (text)
		copy = msg_parse(text, len, &perr, NULL);
	free(text);
	if (!copy)
		return rc;
	if (ar_value)
		msg_prepend_header(copy, "Authentication-Results", ar_value);
	struct buf reasons;
	buf_init(&reasons, QUARANTINE_MAX_REASONS);
	mail_reasons_json(e, &reasons);
	buf_cstr(&reasons);
	struct quarantine_meta meta;
	memset(&meta, 0, sizeof(meta));
	meta.received = (int64_t)time(NULL);
	meta.sender = (char *)s->mail_from;
	meta.rcpt = s->rcpt;
	meta.nrcpt = s->nrcpt;
	meta.from = first_value(s->m, "From");
	meta.subject = e->mm && e->mm->subject ? e->mm->subject : NULL;
	char *subj_raw = meta.subject ? NULL : first_value(s->m, "Subject");
	if (!meta.subject)
		meta.subject = subj_raw;
	meta.message_id = first_value(s->m, "Message-ID");
	meta.direction = e->outbound ? QUARANTINE_OUTBOUND : QUARANTINE_INBOUND;
	meta.reasons = reasons.p;
	meta.score = e->score;
	meta.state = QUARANTINE_HELD;
	meta.expires_at = meta.received + g->cfg->quarantine_retention;
	meta.expiry_action = QUARANTINE_EXPIRE_DELETE;
	if (outbound_hold) {
		int minutes = (int)((g->cfg->outbound_hold + 59) / 60);
		rc = quarantine_hold_outbound(g->q, copy, &meta, minutes, id);
	} else {
		rc = quarantine_put(g->q, copy, &meta, id);
	}
	free(meta.from);
	free(meta.message_id);
	free(subj_raw);
	buf_fini(&reasons);
	msg_free(copy);
	return rc;
}

void mail_gw_check(struct mail_gw *g, const struct milter_session *s, struct milter_reply *r)
{
	mail_gw_check_json(g, s, r, NULL);
}

void mail_gw_check_json(struct mail_gw *g, const struct milter_session *s, struct milter_reply *r,
			struct buf *event)
{
	int64_t t0 = clock_now_us();
	struct mail_eval e;
	memset(&e, 0, sizeof(e));
	e.s = s;
	e.outbound = is_outbound(g, s);
	char qid[QUARANTINE_ID_LEN + 1] = "";
	struct buf ar;
	buf_init(&ar, 64 << 10);

	if (s->too_big) {
		e.verdict = MAIL_V_REJECT;
		snprintf(r->code, sizeof(r->code), "552");
		snprintf(r->xcode, sizeof(r->xcode), "5.3.4");
		snprintf(r->text, sizeof(r->text), "Message too big to be scanned (limit %lld bytes)",
			 (long long)g->cfg->max_message);
		mail_find(&e, "size", MAIL_ACT_REJECT, 0, "message over mail.max_message_size");
		r->verdict = MILTER_REJECT;
		goto report;
	}
	mail_content_parse(g, &e);
	/* Our own senders' mail is not authenticated against its own domain's
	 * records (the MTA authenticated the sender); it is read for leaks. */
	if (!e.outbound)
		auth_step(g, &e);
	mail_content_scan(g, &e);

	e.verdict = decide(g, &e);
	if (e.auth_done) {
		mail_auth_header(&e.auth, &e.ain, g->authserv_id, &ar);
	} else if (e.outbound) {
		/* Our sender, as the MTA authenticated it (RFC 8601 smtp.auth). */
		const char *user = milter_macro(s, "auth_authen");
		char u[128];
		size_t k = 0;
		for (const char *p = user ? user : ""; *p && k + 1 < sizeof(u); p++)
			if ((unsigned char)*p > ' ' && (unsigned char)*p < 127 && *p != ';' &&
			    *p != '(' && *p != ')' && *p != '"')
				u[k++] = *p;
		u[k] = '\0';
		if (k)
			buf_printf(&ar, " %s;\r\n\tauth=pass smtp.auth=%s", g->authserv_id, u);
		else
			buf_printf(&ar, " %s;\r\n\tiprev=pass (internal network) policy.iprev=%s",
				   g->authserv_id, s->client_ip[0] ? s->client_ip : "unknown");
	} else {
		buf_printf(&ar, " %s; none", g->authserv_id);
	}
	buf_cstr(&ar);

	unsigned forged = 0;
	strip_forged(g, s->m, r, &forged);
	if (forged)
		mail_find(&e, "forged-ar", MAIL_ACT_NONE, 0,
			  "%u Authentication-Results field(s) with our authserv-id removed", forged);

	switch (e.verdict) {
	case MAIL_V_TEMPFAIL:
		r->verdict = MILTER_TEMPFAIL;
		snprintf(r->code, sizeof(r->code), "451");
		snprintf(r->xcode, sizeof(r->xcode), "4.7.1");
		snprintf(r->text, sizeof(r->text), "%s", e.tf_why[0] ? e.tf_why : "try again later");
		break;
	case MAIL_V_REJECT:
		r->verdict = MILTER_REJECT;
		snprintf(r->code, sizeof(r->code), "550");
		snprintf(r->xcode, sizeof(r->xcode), "5.7.1");
		if (e.reject_text[0]) {
			snprintf(r->text, sizeof(r->text), "%s", e.reject_text);
		} else {
			const struct mail_finding *mf = mail_main_finding(&e);
			snprintf(r->text, sizeof(r->text), "Message refused by policy: %s",
				 mf ? mf->detail : "policy");
		}
		break;
	case MAIL_V_QUARANTINE:
		if (hold(g, &e, ar.p, 0, qid) < 0) {
			/* Nothing held is lost: without the store, the sender retries. */
			r->verdict = MILTER_TEMPFAIL;
			e.verdict = MAIL_V_TEMPFAIL;
			snprintf(r->text, sizeof(r->text), "Quarantine unavailable, try again later");
			break;
		}
		r->verdict = MILTER_DISCARD;
		break;
	default:
		if (e.hold_outbound) {
			if (hold(g, &e, ar.p, 1, qid) == 0) {
				r->verdict = MILTER_DISCARD;
				e.verdict = MAIL_V_HOLD;
				mail_hold_notice(g, &e, qid);
				break;
			}
			log_msg(LOG_ERROR, "mail", "event=hold_failed hint=\"sent without the hold\"");
		}
		r->verdict = MILTER_ACCEPT;
		milter_reply_op(r, MILTER_OP_INSERT, 0, "Authentication-Results", ar.p);
		mail_arc_seal(g, &e, ar.p, r);
		if (e.hide_recipients)
			hide_recipients(s->m, r);
		if (e.verdict == MAIL_V_TAG && !e.outbound) {
			char v[128];
			const struct mail_finding *mf = mail_main_finding(&e);
			snprintf(v, sizeof(v), " score=%d; %s", e.score, mf ? mf->kind : "policy");
			milter_reply_op(r, MILTER_OP_ADD, 0, "X-Mamori-Verdict", v);
		}
		mail_sign(g, &e, r);
		break;
	}
report:
	metric_add(g->m_verdict[e.verdict], 1);
	metric_observe_us(g->m_latency, (uint64_t)(clock_now_us() - t0));
	mail_event(g, &e, qid);
	if (event)
		mail_event_json(g, &e, qid, event);
	if (e.auth_done)
		mail_auth_fini(&e.auth);
	mail_content_fini_eval(&e);
	buf_fini(&ar);
}
