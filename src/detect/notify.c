/*
 * The notifier: configuration of the notify section, the per-channel rate
 * limiter and digest, the retry schedule, and the delivery thread that ties
 * them together. Message formats and the libcurl transfers live in
 * notify_smtp.c and notify_webhook.c.
 *
 * Why one thread and a queue: callers are detection and sensor threads that
 * must never wait on a mail server; a full queue costs a counted drop, not a
 * stall. Why outboxes with due times instead of sleeping between retries: a
 * channel that fails must not hold back the other channels for its back-off.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/queue.h"
#include "detect/notify.h"

/* ---- names ---- */

static const char *const kind_names[NOTIFY_KIND_COUNT] = {
	"generic", "incident_opened", "incident_escalated", "incident_resolved",
	"test", "digest",
};

static const char *const sev_names[NOTIFY_SEV_COUNT] = {
	"informational", "low", "medium", "high", "critical",
};

const char *notify_kind_name(enum notify_kind k)
{
	return (unsigned)k < NOTIFY_KIND_COUNT ? kind_names[k] : "?";
}

const char *notify_severity_name(enum notify_severity s)
{
	return (unsigned)s < NOTIFY_SEV_COUNT ? sev_names[s] : "?";
}

int notify_kind_parse(const char *s, enum notify_kind *out)
{
	for (int i = 0; i < NOTIFY_KIND_COUNT; i++) {
		if (i != NOTIFY_DIGEST && strcasecmp(s, kind_names[i]) == 0) {
			*out = (enum notify_kind)i;
			return M_OK;
		}
	}
	return M_EINVAL;
}

int notify_severity_parse(const char *s, enum notify_severity *out)
{
	for (int i = 0; i < NOTIFY_SEV_COUNT; i++) {
		if (strcasecmp(s, sev_names[i]) == 0) {
			*out = (enum notify_severity)i;
			return M_OK;
		}
	}
	if (strcasecmp(s, "info") == 0) {
		*out = NOTIFY_SEV_INFORMATIONAL;
		return M_OK;
	}
	return M_EINVAL;
}

/* ---- configuration ---- */

#define CH(f) offsetof(struct notify_channel_config, f)

static const struct conf_keyword channel_keywords[] = {
	{ "name", CONF_STR, CH(name), 0, 0, "", 0,
	  "channel name (letters, digits, '_', '-', '.'); the metrics' channel label" },
	{ "type", CONF_STR, CH(type), 0, 0, "", 0, "smtp or webhook" },
	{ "min_severity", CONF_STR, CH(min_severity), 0, 0, "informational", 0,
	  "informational, low, medium, high or critical: less severe notifications skip this channel" },
	{ "kinds", CONF_STRLIST, CH(kinds), 0, 0, "", 0,
	  "only these kinds (incident_opened, incident_escalated, incident_resolved, generic, test); empty = all" },
	{ "max_per_window", CONF_INT, CH(max_per_window), 1, 10000, "5", 0,
	  "messages sent one by one per window; the rest go into one digest" },
	{ "window", CONF_DURATION, CH(window), 1, 86400, "60s", 0, "rate-limit window" },
	{ "max_attempts", CONF_INT, CH(max_attempts), 1, 20, "5", 0,
	  "delivery attempts per message, the first included" },
	{ "retry_base_ms", CONF_INT, CH(retry_base_ms), 1, 3600000, "1000", 0,
	  "delay before the first retry; doubled at each retry" },
	{ "retry_max_ms", CONF_INT, CH(retry_max_ms), 1, 86400000, "60000", 0,
	  "longest delay between two attempts" },
	{ "timeout", CONF_DURATION, CH(timeout), 1, 600, "15s", 0, "one delivery attempt, connection included" },
	{ "outbox", CONF_INT, CH(outbox), 1, 10000, "100", 0,
	  "messages waiting for delivery or retry on this channel; beyond, dropped" },
	{ "url", CONF_STR, CH(url), 0, 0, "", 0,
	  "smtp://host:port, smtps://host:port, http(s)://host/path" },
	{ "ca_file", CONF_STR, CH(ca_file), 0, 0, "", 0, "CA bundle for TLS; empty = system store" },
	{ "tls_verify", CONF_BOOL, CH(tls_verify), 0, 0, "true", 0, "verify the server's certificate and name" },
	{ "starttls", CONF_STR, CH(starttls), 0, 0, "required", 0,
	  "smtp:// only: required, optional or off" },
	{ "user", CONF_STR, CH(user), 0, 0, "", 0, "SMTP AUTH user; empty = no AUTH" },
	{ "password", CONF_STR, CH(password), 0, 0, "", 0, "SMTP AUTH password" },
	{ "from", CONF_STR, CH(from), 0, 0, "", 0, "From address, e.g. \"mamori <soc@example.org>\"" },
	{ "to", CONF_STRLIST, CH(to), 0, 0, "", 0, "recipients" },
	{ "subject_prefix", CONF_STR, CH(subject_prefix), 0, 0, "[mamori]", 0, "put before every subject" },
	{ "format", CONF_STR, CH(format), 0, 0, "generic", 0, "webhook body: generic or slack" },
	{ "headers", CONF_STRLIST, CH(headers), 0, 0, "", 0,
	  "extra HTTP headers, \"Name: value\" (e.g. Authorization)" },
	CONF_END
};

static const struct conf_keyword notify_keywords[] = {
	{ "queue", CONF_INT, offsetof(struct notify_config, queue), 1, 100000, "1024", 0,
	  "notifications waiting for the delivery thread; beyond, dropped" },
	CONF_END
};

static int cfg_err(struct buf *err, const struct conf_doc *doc, const struct conf_node *n,
		   size_t idx, const char *msg, const char *arg)
{
	buf_printf(err, "%s:%d:%d: notify.channels[%zu]: ", doc && doc->file ? doc->file : "(config)",
		   conf_node_line(n), conf_node_col(n), idx);
	buf_printf(err, msg, arg ? arg : "");
	buf_cstr(err);
	return M_EINVAL;
}

static int has_crlf(const char *s)
{
	return s && strpbrk(s, "\r\n") != NULL;
}

static int name_ok(const char *s)
{
	if (!s[0] || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '.'))
			return 0;
	return 1;
}

/* Resolves the strings of one channel into enums and checks what the
 * generic setters cannot: required fields per type, URL schemes, header
 * injection through CR/LF. */
static int channel_resolve(const struct conf_doc *doc, const struct conf_node *node,
			   size_t idx, struct notify_channel_config *c, struct buf *err)
{
	enum notify_kind k;

	if (!name_ok(c->name))
		return cfg_err(err, doc, node, idx,
			       "name is required: letters, digits, '_', '-', '.' (at most 64)%s", "");
	if (notify_severity_parse(c->min_severity, &c->min_sev) < 0)
		return cfg_err(err, doc, node, idx,
			       "min_severity '%s': expected informational, low, medium, high or critical",
			       c->min_severity);
	c->kinds_mask = 0;
	for (size_t i = 0; i < c->kinds.n; i++) {
		if (notify_kind_parse(c->kinds.v[i], &k) < 0)
			return cfg_err(err, doc, node, idx, "unknown kind '%s'", c->kinds.v[i]);
		c->kinds_mask |= 1u << k;
	}
	if (has_crlf(c->url) || has_crlf(c->from) || has_crlf(c->subject_prefix) ||
	    has_crlf(c->user) || has_crlf(c->password))
		return cfg_err(err, doc, node, idx, "line breaks are not allowed in values%s", "");
	if (strcmp(c->type, "smtp") == 0) {
		c->t = NOTIFY_SMTP;
		if (strncasecmp(c->url, "smtp://", 7) != 0 && strncasecmp(c->url, "smtps://", 8) != 0)
			return cfg_err(err, doc, node, idx, "url: expected smtp://host:port or smtps://host:port%s", "");
		if (!strcmp(c->starttls, "required"))
			c->tls = NOTIFY_TLS_REQUIRED;
		else if (!strcmp(c->starttls, "optional"))
			c->tls = NOTIFY_TLS_OPTIONAL;
		else if (!strcmp(c->starttls, "off"))
			c->tls = NOTIFY_TLS_OFF;
		else
			return cfg_err(err, doc, node, idx, "starttls '%s': expected required, optional or off",
				       c->starttls);
		if (strlen(c->subject_prefix) > 128)
			return cfg_err(err, doc, node, idx, "subject_prefix: at most 128 bytes%s", "");
		if (strlen(c->from) > 320)
			return cfg_err(err, doc, node, idx, "from: at most 320 bytes%s", "");
		if (!c->from[0] || !strchr(c->from, '@'))
			return cfg_err(err, doc, node, idx, "from: an address is required%s", "");
		if (c->to.n == 0)
			return cfg_err(err, doc, node, idx, "to: at least one recipient is required%s", "");
		if (c->to.n > 100)
			return cfg_err(err, doc, node, idx, "to: at most 100 recipients%s", "");
		for (size_t i = 0; i < c->to.n; i++)
			if (has_crlf(c->to.v[i]) || !strchr(c->to.v[i], '@') || strlen(c->to.v[i]) > 320)
				return cfg_err(err, doc, node, idx, "to: '%s' is not an address", c->to.v[i]);
		if (c->password[0] && !c->user[0])
			return cfg_err(err, doc, node, idx, "password without user%s", "");
		/* A password never crosses the network in clear, not even after
		 * a downgrade that strips an optional STARTTLS. */
		if (c->user[0] && strncasecmp(c->url, "smtp://", 7) == 0 &&
		    c->tls != NOTIFY_TLS_REQUIRED)
			return cfg_err(err, doc, node, idx,
				       "user/password need starttls: required or an smtps:// url%s", "");
	} else if (strcmp(c->type, "webhook") == 0) {
		c->t = NOTIFY_WEBHOOK;
		if (strncasecmp(c->url, "http://", 7) != 0 && strncasecmp(c->url, "https://", 8) != 0)
			return cfg_err(err, doc, node, idx, "url: expected http:// or https://%s", "");
		if (!strcmp(c->format, "generic"))
			c->fmt = NOTIFY_FMT_GENERIC;
		else if (!strcmp(c->format, "slack"))
			c->fmt = NOTIFY_FMT_SLACK;
		else
			return cfg_err(err, doc, node, idx, "format '%s': expected generic or slack", c->format);
		if (c->headers.n > 32)
			return cfg_err(err, doc, node, idx, "headers: at most 32%s", "");
		for (size_t i = 0; i < c->headers.n; i++) {
			const char *h = c->headers.v[i], *colon = strchr(h, ':');
			if (has_crlf(h) || !colon || colon == h)
				return cfg_err(err, doc, node, idx, "headers: '%s' is not \"Name: value\"", h);
		}
	} else {
		return cfg_err(err, doc, node, idx, "type '%s': expected smtp or webhook", c->type);
	}
	if (c->retry_max_ms < c->retry_base_ms)
		c->retry_max_ms = c->retry_base_ms;
	return M_OK;
}

/* The section is a mapping with one list of mappings (channels) that the
 * generic setters cannot hold: the scalars go through the keyword table,
 * each channel item through its own table via conf_apply_map(). */
int notify_config_load(const struct conf_doc *doc, struct notify_config *cfg,
		       struct buf *err)
{
	static const char *const skip[] = { "channels", NULL };
	const struct conf_node *sec = NULL, *list, *item;
	size_t n = 0, idx = 0;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	if (doc && doc->root)
		sec = conf_map_get(doc->root, "notify");
	if ((r = conf_apply_map(doc, sec, "notify", notify_keywords, skip, cfg, err)) < 0)
		return r;
	list = conf_map_get(sec, "channels");
	if (!list || conf_node_is_null(list))
		return M_OK;
	if (conf_node_kind(list) != CONF_NODE_SEQ) {
		buf_printf(err, "%s:%d:%d: notify.channels: expected a list of channels",
			   doc->file ? doc->file : "(config)", conf_node_line(list), conf_node_col(list));
		buf_cstr(err);
		return M_EINVAL;
	}
	for (item = conf_node_child(list); item; item = conf_node_next(item))
		n++;
	if (n > NOTIFY_MAX_CHANNELS) {
		buf_printf(err, "%s:%d:%d: notify.channels: at most %d channels",
			   doc->file ? doc->file : "(config)", conf_node_line(list), conf_node_col(list),
			   NOTIFY_MAX_CHANNELS);
		buf_cstr(err);
		return M_ELIMIT;
	}
	if (n == 0)
		return M_OK;
	cfg->ch = calloc(n, sizeof(*cfg->ch));
	if (!cfg->ch)
		return M_ENOMEM;
	for (item = conf_node_child(list); item; item = conf_node_next(item), idx++) {
		struct notify_channel_config *c = &cfg->ch[idx];
		char path[48];

		cfg->nch = idx + 1;
		snprintf(path, sizeof(path), "notify.channels[%zu]", idx);
		if (conf_node_kind(item) != CONF_NODE_MAP)
			return cfg_err(err, doc, item, idx, "expected a mapping (name:, type:, ...)%s", "");
		if ((r = conf_apply_map(doc, item, path, channel_keywords, NULL, c, err)) < 0 ||
		    (r = channel_resolve(doc, item, idx, c, err)) < 0)
			return r;
		for (size_t j = 0; j < idx; j++)
			if (strcmp(cfg->ch[j].name, c->name) == 0)
				return cfg_err(err, doc, item, idx, "duplicate channel name '%s'", c->name);
	}
	return M_OK;
}

void notify_config_free(struct notify_config *cfg)
{
	for (size_t i = 0; i < cfg->nch; i++)
		conf_free(channel_keywords, &cfg->ch[i]);
	free(cfg->ch);
	cfg->ch = NULL;
	cfg->nch = 0;
}

int notify_config_describe(struct buf *out)
{
	int r;

	if ((r = conf_describe("notify", notify_keywords, out)) < 0 ||
	    (r = buf_puts(out, "  # channels: a list; each item takes:\n")) < 0)
		return r;
	for (const struct conf_keyword *k = channel_keywords; k->name; k++)
		if ((r = buf_printf(out, "  #   %s (default \"%s\"): %s\n", k->name,
				    k->def ? k->def : "", k->help)) < 0)
			return r;
	return M_OK;
}

/* Deep copy of one resolved channel, so the notifier owns its settings and
 * the caller may free its config right after notifier_new(). */
static int channel_copy(struct notify_channel_config *d, const struct notify_channel_config *s)
{
	*d = *s;
	memset(&d->kinds, 0, sizeof(d->kinds));
	memset(&d->to, 0, sizeof(d->to));
	memset(&d->headers, 0, sizeof(d->headers));
	d->name = d->type = d->min_severity = d->url = d->ca_file = d->starttls = NULL;
	d->user = d->password = d->from = d->subject_prefix = d->format = NULL;
#define DUP(f) do { if (!(d->f = strdup(s->f ? s->f : ""))) return M_ENOMEM; } while (0)
	DUP(name); DUP(type); DUP(min_severity); DUP(url); DUP(ca_file); DUP(starttls);
	DUP(user); DUP(password); DUP(from); DUP(subject_prefix); DUP(format);
#undef DUP
	for (size_t i = 0; i < s->kinds.n; i++)
		if (conf_list_push(&d->kinds, s->kinds.v[i]) < 0)
			return M_ENOMEM;
	for (size_t i = 0; i < s->to.n; i++)
		if (conf_list_push(&d->to, s->to.v[i]) < 0)
			return M_ENOMEM;
	for (size_t i = 0; i < s->headers.n; i++)
		if (conf_list_push(&d->headers, s->headers.v[i]) < 0)
			return M_ENOMEM;
	return M_OK;
}

/* ---- retry schedule ---- */

int64_t notify_backoff_ms(const struct notify_channel_config *ch, int attempt)
{
	int64_t d = ch->retry_base_ms;

	if (attempt <= 1)
		return 0;
	for (int i = 2; i < attempt && d < ch->retry_max_ms; i++)
		d *= 2;
	return d < ch->retry_max_ms ? d : ch->retry_max_ms;
}

/* ---- rate limiter and digest ---- */

void notify_limiter_init(struct notify_limiter *l, int64_t max_per_window, int64_t window_us)
{
	memset(l, 0, sizeof(*l));
	l->max_per_window = max_per_window;
	l->window_us = window_us;
}

int64_t notify_limiter_deadline(const struct notify_limiter *l)
{
	return l->window_start ? l->window_start + l->window_us : 0;
}

/* Rules 1-3 and 5 of the rate limit in docs/notifications.md: a window
 * opens with the first notification, the first max_per_window go out, the
 * rest are summarised (count, severities, first titles) for the digest. */
int notify_limiter_offer(struct notify_limiter *l, const struct notification *n, int64_t now)
{
	if (!l->window_start || now >= l->window_start + l->window_us) {
		/* A window that ended without a poll: its digest (if any) is
		 * still waiting and stays in this one rather than being lost. */
		if (!l->dig_count) {
			l->window_start = now ? now : 1;
			l->in_window = 0;
		}
	}
	if (l->in_window < l->max_per_window && !l->dig_count) {
		l->in_window++;
		return NOTIFY_LIMIT_SEND;
	}
	if (l->dig_count == 0) {
		l->dig_first_us = n->time_us;
		l->dig_max = n->severity;
	}
	l->dig_count++;
	if ((unsigned)n->severity < NOTIFY_SEV_COUNT)
		l->dig_by_sev[n->severity]++;
	if (n->severity > l->dig_max)
		l->dig_max = n->severity;
	l->dig_last_us = n->time_us;
	if (l->dig_ntitles < NOTIFY_DIGEST_TITLES) {
		const char *t = n->title ? n->title : "";
		snprintf(l->dig_titles[l->dig_ntitles++], sizeof(l->dig_titles[0]), "%s", t);
	}
	return NOTIFY_LIMIT_DIGESTED;
}

/* Rule 4 (and 6 with force): the window's end turns what was held back
 * into one digest notification and closes the window. */
int notify_limiter_poll(struct notify_limiter *l, int64_t now, int force,
			struct notification *out, struct buf *title, struct buf *body)
{
	int ended = l->window_start && now >= l->window_start + l->window_us;
	int have = 0;

	if (!ended && !(force && l->dig_count))
		return 0;
	if (l->dig_count) {
		char when[64];
		time_t t;
		struct tm tm;

		buf_reset(title);
		buf_reset(body);
		buf_printf(title, "%llu notifications held back by the rate limit (highest: %s)",
			   (unsigned long long)l->dig_count, notify_severity_name(l->dig_max));
		buf_printf(body, "%llu notifications arrived after the first %lld of a %llds window "
			   "and were not sent one by one.\n\nBy severity:\n",
			   (unsigned long long)l->dig_count, (long long)l->max_per_window,
			   (long long)(l->window_us / 1000000));
		for (int s = NOTIFY_SEV_COUNT - 1; s >= 0; s--)
			if (l->dig_by_sev[s])
				buf_printf(body, "  %s: %llu\n", sev_names[s],
					   (unsigned long long)l->dig_by_sev[s]);
		t = (time_t)(l->dig_first_us / 1000000);
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		buf_printf(body, "\nFirst at %s", when);
		t = (time_t)(l->dig_last_us / 1000000);
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		buf_printf(body, ", last at %s.\n\nFirst %zu titles:\n", when, l->dig_ntitles);
		for (size_t i = 0; i < l->dig_ntitles; i++)
			buf_printf(body, "  - %s\n", l->dig_titles[i]);
		buf_cstr(title);
		buf_cstr(body);
		memset(out, 0, sizeof(*out));
		out->kind = NOTIFY_DIGEST;
		out->severity = l->dig_max;
		out->title = title->p;
		out->body = body->p;
		out->time_us = clock_now_us();
		have = 1;
	}
	l->dig_count = 0;
	memset(l->dig_by_sev, 0, sizeof(l->dig_by_sev));
	l->dig_ntitles = 0;
	if (ended) {
		l->window_start = 0;
		l->in_window = 0;
	}
	/* A forced digest leaves the window open with its budget spent, so a
	 * flush cannot be used to send more than max_per_window one by one. */
	return have;
}

/* ---- the notifier ---- */

/* A notification copied at submit time; owner: the queue, then the thread. */
struct nmsg {
	struct notification n;
	char *title, *body;
	char *keys[NOTIFY_MAX_FIELDS], *vals[NOTIFY_MAX_FIELDS];
};

/* One rendered message waiting in a channel's outbox. */
struct outmsg {
	struct buf payload;
	int attempts;
	int64_t due;          /* monotonic µs */
	char title[96];       /* for logs */
};

struct chan {
	struct notify_channel_config cfg;
	struct notify_limiter lim;
	struct outmsg **box;  /* ring of cfg.outbox */
	size_t head, count;
	struct metric *m_sent, *m_failed, *m_retries, *m_digested;
	struct notify_stats st;   /* under nf->lock */
};

struct notifier {
	struct notify_config cfg;   /* queue only; channels live in ch[] */
	struct chan *ch;
	size_t nch;
	struct queue *q;
	pthread_t thread;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t flush_gen, done_gen;   /* under lock */
	atomic_uint seq;
	struct metric *m_dropped;
	long long drop_log_us;
};

static void nmsg_free(struct nmsg *m)
{
	if (!m)
		return;
	free(m->title);
	free(m->body);
	for (size_t i = 0; i < m->n.nfields; i++) {
		free(m->keys[i]);
		free(m->vals[i]);
	}
	free(m);
}

static void outmsg_free(struct outmsg *o)
{
	if (!o)
		return;
	buf_fini(&o->payload);
	free(o);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void notifier_free(struct notifier *nf);

/* Builds everything the thread needs, so that nothing after start can fail
 * for lack of memory except a single message. curl_global_init runs once
 * per process, before any thread uses libcurl. */
struct notifier *notifier_new(const struct notify_config *cfg)
{
	struct notifier *nf;
	char labels[128];

	pthread_once(&curl_once, curl_init_once);
	if (cfg->nch > NOTIFY_MAX_CHANNELS)
		return NULL;
	nf = calloc(1, sizeof(*nf));
	if (!nf)
		return NULL;
	pthread_mutex_init(&nf->lock, NULL);
	pthread_cond_init(&nf->cond, NULL);
	nf->cfg.queue = cfg->queue > 0 ? cfg->queue : 1024;
	nf->m_dropped = metric_get("mamori_notify_dropped_total",
				   "Notifications dropped: queue or outbox full", METRIC_COUNTER, NULL);
	nf->q = queue_new((size_t)nf->cfg.queue);
	nf->ch = calloc(cfg->nch ? cfg->nch : 1, sizeof(*nf->ch));
	if (!nf->q || !nf->ch)
		goto fail;
	for (size_t i = 0; i < cfg->nch; i++) {
		struct chan *c = &nf->ch[i];
		nf->nch = i + 1;
		if (channel_copy(&c->cfg, &cfg->ch[i]) < 0)
			goto fail;
		if (c->cfg.outbox <= 0)
			c->cfg.outbox = 100;
		if (c->cfg.max_attempts <= 0)
			c->cfg.max_attempts = 1;
		if (c->cfg.max_per_window <= 0)
			c->cfg.max_per_window = 5;
		if (c->cfg.window <= 0)
			c->cfg.window = 60;
		if (c->cfg.timeout <= 0)
			c->cfg.timeout = 15;
		c->box = calloc((size_t)c->cfg.outbox, sizeof(*c->box));
		if (!c->box)
			goto fail;
		notify_limiter_init(&c->lim, c->cfg.max_per_window, c->cfg.window * 1000000);
		snprintf(labels, sizeof(labels), "channel=\"%s\"", c->cfg.name);
		c->m_sent = metric_get("mamori_notify_sent_total", "Notification messages delivered",
				       METRIC_COUNTER, labels);
		c->m_failed = metric_get("mamori_notify_failed_total",
					 "Notification messages given up after the last attempt",
					 METRIC_COUNTER, labels);
		c->m_retries = metric_get("mamori_notify_retries_total",
					  "Notification delivery attempts that failed and were retried",
					  METRIC_COUNTER, labels);
		c->m_digested = metric_get("mamori_notify_digested_total",
					   "Notifications held back by the rate limit into a digest",
					   METRIC_COUNTER, labels);
	}
	return nf;
fail:
	notifier_free(nf);
	return NULL;
}

/* Copies n, cutting strings to their limits. Owner of the result: caller. */
static struct nmsg *nmsg_copy(const struct notification *n)
{
	struct nmsg *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->n = *n;
	m->n.nfields = 0;
	m->title = strndup(n->title ? n->title : "", NOTIFY_MAX_TITLE);
	m->body = strndup(n->body ? n->body : "", NOTIFY_MAX_BODY);
	if (!m->title || !m->body)
		goto fail;
	m->n.title = m->title;
	m->n.body = m->body;
	for (size_t i = 0; i < n->nfields && i < NOTIFY_MAX_FIELDS; i++) {
		m->keys[i] = strndup(n->fields[i].key ? n->fields[i].key : "", 128);
		m->vals[i] = strndup(n->fields[i].value ? n->fields[i].value : "", 1024);
		m->n.nfields = i + 1;
		if (!m->keys[i] || !m->vals[i])
			goto fail;
		m->n.fields[i].key = m->keys[i];
		m->n.fields[i].value = m->vals[i];
	}
	if (!m->n.time_us)
		m->n.time_us = clock_now_us();
	return m;
fail:
	nmsg_free(m);
	return NULL;
}

static void count_drop(struct notifier *nf, const char *why)
{
	metric_add(nf->m_dropped, 1);
	if (log_ratelimit(&nf->drop_log_us, 10 * 1000000LL))
		log_msg(LOG_WARN, "notify", "event=notify_dropped reason=%s total=%llu", why,
			(unsigned long long)metric_value(nf->m_dropped));
}

int notifier_submit(struct notifier *nf, const struct notification *n)
{
	struct nmsg *m;
	int r;

	if ((unsigned)n->kind >= NOTIFY_KIND_COUNT || n->kind == NOTIFY_DIGEST ||
	    (unsigned)n->severity >= NOTIFY_SEV_COUNT)
		return M_EINVAL;
	m = nmsg_copy(n);
	if (!m) {
		count_drop(nf, "no_memory");
		return M_ENOMEM;
	}
	r = queue_push(nf->q, m, 0);
	if (r < 0) {
		nmsg_free(m);
		if (r == M_EAGAIN)
			count_drop(nf, "queue_full");
		return r;
	}
	return M_OK;
}

/* Renders n for channel c and appends it to the outbox; a full outbox
 * counts a drop. */
static void outbox_put(struct notifier *nf, struct chan *c, const struct notification *n)
{
	struct outmsg *o;
	char mid[160];
	int r;

	if (c->count >= (size_t)c->cfg.outbox) {
		pthread_mutex_lock(&nf->lock);
		c->st.dropped++;
		pthread_mutex_unlock(&nf->lock);
		count_drop(nf, "outbox_full");
		return;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		count_drop(nf, "no_memory");
		return;
	}
	buf_init(&o->payload, NOTIFY_MAX_PAYLOAD);
	if (c->cfg.t == NOTIFY_SMTP) {
		notify_message_id(&c->cfg, atomic_fetch_add(&nf->seq, 1), mid, sizeof(mid));
		r = notify_format_email(&c->cfg, n, mid, &o->payload);
	} else {
		r = notify_format_webhook(&c->cfg, n, &o->payload);
	}
	if (r < 0) {
		log_msg(LOG_WARN, "notify", "event=notify_format_failed channel=%s error=%s",
			c->cfg.name, err_str(r));
		outmsg_free(o);
		return;
	}
	snprintf(o->title, sizeof(o->title), "%s", n->title ? n->title : "");
	o->due = 0;
	c->box[(c->head + c->count) % (size_t)c->cfg.outbox] = o;
	c->count++;
}

/* Routes one notification to every channel that accepts it. Test
 * notifications bypass the filters and the rate limit: they exist to check
 * the path end to end. */
static void route(struct notifier *nf, const struct nmsg *m, int64_t now)
{
	for (size_t i = 0; i < nf->nch; i++) {
		struct chan *c = &nf->ch[i];
		const struct notification *n = &m->n;
		if (n->kind != NOTIFY_TEST) {
			if (n->severity < c->cfg.min_sev)
				continue;
			if (c->cfg.kinds_mask && !(c->cfg.kinds_mask & (1u << n->kind)))
				continue;
			if (notify_limiter_offer(&c->lim, n, now) == NOTIFY_LIMIT_DIGESTED) {
				metric_add(c->m_digested, 1);
				pthread_mutex_lock(&nf->lock);
				c->st.digested++;
				pthread_mutex_unlock(&nf->lock);
				continue;
			}
		}
		outbox_put(nf, c, n);
	}
}

/* Emits the digests whose window ended (all of them when force). */
static void poll_digests(struct notifier *nf, int64_t now, int force)
{
	struct buf title, body;
	struct notification d;

	buf_init(&title, 4096);
	buf_init(&body, 16384);
	for (size_t i = 0; i < nf->nch; i++) {
		struct chan *c = &nf->ch[i];
		if (notify_limiter_poll(&c->lim, now, force, &d, &title, &body))
			outbox_put(nf, c, &d);
	}
	buf_fini(&title);
	buf_fini(&body);
}

/* One delivery attempt of the head of c's outbox. A failure is retried
 * after the back-off unless the transport calls it permanent (the same
 * request would fail the same way) or the attempts are used up; the final
 * failure is logged once, with the reason. */
static void attempt(struct notifier *nf, struct chan *c, int64_t now)
{
	struct outmsg *o = c->box[c->head];
	char reason[256] = "";
	char why[256];
	int permanent = 0, r;

	o->attempts++;
	if (c->cfg.t == NOTIFY_SMTP)
		r = notify_smtp_send(&c->cfg, o->payload.p, o->payload.len, reason, sizeof(reason),
				     &permanent);
	else
		r = notify_webhook_send(&c->cfg, o->payload.p, o->payload.len, reason, sizeof(reason),
					&permanent);
	/* The reason may quote the server's answer: escape it once for logs
	 * and the stats alike. */
	log_escape(reason, strlen(reason), why, sizeof(why));
	if (r == 0) {
		metric_add(c->m_sent, 1);
		pthread_mutex_lock(&nf->lock);
		c->st.sent++;
		pthread_mutex_unlock(&nf->lock);
		log_msg(LOG_DEBUG, "notify", "event=notify_sent channel=%s attempts=%d",
			c->cfg.name, o->attempts);
	} else if (!permanent && o->attempts < c->cfg.max_attempts) {
		o->due = now + notify_backoff_ms(&c->cfg, o->attempts + 1) * 1000;
		metric_add(c->m_retries, 1);
		pthread_mutex_lock(&nf->lock);
		c->st.retries++;
		snprintf(c->st.last_error, sizeof(c->st.last_error), "%s", why);
		pthread_mutex_unlock(&nf->lock);
		log_msg(LOG_DEBUG, "notify", "event=notify_retry channel=%s attempt=%d reason=\"%s\"",
			c->cfg.name, o->attempts, why);
		return;
	} else {
		char esc[256];
		metric_add(c->m_failed, 1);
		pthread_mutex_lock(&nf->lock);
		c->st.failed++;
		snprintf(c->st.last_error, sizeof(c->st.last_error), "%s", why);
		pthread_mutex_unlock(&nf->lock);
		log_msg(LOG_WARN, "notify", "event=notify_failed channel=%s attempts=%d title=\"%s\" reason=\"%s\"",
			c->cfg.name, o->attempts, log_escape(o->title, strlen(o->title), esc, sizeof(esc)),
			why);
	}
	outmsg_free(o);
	c->box[c->head] = NULL;
	c->head = (c->head + 1) % (size_t)c->cfg.outbox;
	c->count--;
}

static int outboxes_empty(const struct notifier *nf)
{
	for (size_t i = 0; i < nf->nch; i++)
		if (nf->ch[i].count)
			return 0;
	return 1;
}

static int digests_waiting(const struct notifier *nf)
{
	for (size_t i = 0; i < nf->nch; i++)
		if (nf->ch[i].lim.dig_count)
			return 1;
	return 0;
}

/* How long the thread may sleep: until the next due retry or window end,
 * at most 250 ms. */
static int wait_ms(const struct notifier *nf, int64_t now)
{
	int64_t w = 250000;

	for (size_t i = 0; i < nf->nch; i++) {
		const struct chan *c = &nf->ch[i];
		int64_t d = notify_limiter_deadline(&c->lim);
		if (d && c->lim.dig_count && d - now < w)
			w = d - now;
		if (c->count && c->box[c->head]->due - now < w)
			w = c->box[c->head]->due - now;
	}
	return w <= 0 ? 0 : (int)((w + 999) / 1000);
}

/* The delivery loop: take what was submitted (bounded per turn), route it,
 * send digests whose window ended, make at most one attempt per channel
 * whose head is due, then answer flushes. After the queue closes it keeps
 * going until the outboxes are empty or 10 s have passed. */
static void *notify_thread(void *arg)
{
	struct notifier *nf = arg;
	int closed = 0;
	int64_t stop_deadline = 0;

	for (;;) {
		void *item;
		int64_t now = clock_mono_us();
		int w = wait_ms(nf, now), r, force;
		uint64_t gen;

		if (closed) {
			struct timespec ts = { 0, (long)(w > 50 ? 50 : w) * 1000000L };
			nanosleep(&ts, NULL);
		} else {
			r = queue_pop(nf->q, &item, w);
			/* At most 256 per turn, so retries and digests stay on time. */
			for (int k = 0; r == 0; k++) {
				int64_t t = clock_mono_us();
				poll_digests(nf, t, 0);
				route(nf, item, t);
				nmsg_free(item);
				if (k == 255)
					break;
				r = queue_pop(nf->q, &item, 0);
			}
			if (r == M_ECLOSED) {
				closed = 1;
				stop_deadline = clock_mono_us() + 10 * 1000000LL;
			}
		}
		pthread_mutex_lock(&nf->lock);
		gen = nf->flush_gen;
		force = closed || gen != nf->done_gen;
		pthread_mutex_unlock(&nf->lock);
		now = clock_mono_us();
		poll_digests(nf, now, force);
		for (size_t i = 0; i < nf->nch; i++) {
			struct chan *c = &nf->ch[i];
			if (c->count && c->box[c->head]->due <= now)
				attempt(nf, c, now);
		}
		if (force && queue_depth(nf->q) == 0 && outboxes_empty(nf) && !digests_waiting(nf)) {
			pthread_mutex_lock(&nf->lock);
			if (nf->done_gen < gen)
				nf->done_gen = gen;
			pthread_cond_broadcast(&nf->cond);
			pthread_mutex_unlock(&nf->lock);
		}
		if (closed && (outboxes_empty(nf) || clock_mono_us() > stop_deadline))
			break;
	}
	return NULL;
}

int notifier_start(struct notifier *nf)
{
	if (nf->started)
		return M_OK;
	if (pthread_create(&nf->thread, NULL, notify_thread, nf) != 0) {
		log_msg(LOG_ERROR, "notify", "event=thread_failed error=\"%s\"", strerror(errno));
		return M_EIO;
	}
	nf->started = 1;
	return M_OK;
}

/* A flush is a generation number: the thread answers it only after
 * reading it and finding the queue, outboxes and digests empty, so whatever
 * was submitted before the call has been dealt with. */
int notifier_flush(struct notifier *nf, int timeout_ms)
{
	struct timespec ts;
	uint64_t gen;
	int r = M_OK;

	if (!nf->started)
		return queue_depth(nf->q) == 0 ? M_OK : M_EAGAIN;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&nf->lock);
	gen = ++nf->flush_gen;
	while (nf->done_gen < gen) {
		if (pthread_cond_timedwait(&nf->cond, &nf->lock, &ts) == ETIMEDOUT) {
			r = nf->done_gen < gen ? M_EAGAIN : M_OK;
			break;
		}
	}
	pthread_mutex_unlock(&nf->lock);
	return r;
}

int notifier_channel_stats(struct notifier *nf, const char *channel, struct notify_stats *out)
{
	for (size_t i = 0; i < nf->nch; i++) {
		if (strcmp(nf->ch[i].cfg.name, channel) == 0) {
			pthread_mutex_lock(&nf->lock);
			*out = nf->ch[i].st;
			pthread_mutex_unlock(&nf->lock);
			return M_OK;
		}
	}
	return M_ENOTFOUND;
}

/* Closing the queue tells the thread to drain and stop; whatever it could
 * not deliver in time is counted here, never lost silently. */
void notifier_free(struct notifier *nf)
{
	void *item;

	if (!nf)
		return;
	if (nf->q)
		queue_close(nf->q);
	if (nf->started)
		pthread_join(nf->thread, NULL);
	while (nf->q && queue_pop(nf->q, &item, 0) == 0) {
		count_drop(nf, "stopped");
		nmsg_free(item);
	}
	for (size_t i = 0; i < nf->nch; i++) {
		struct chan *c = &nf->ch[i];
		while (c->count) {
			metric_add(c->m_failed, 1);
			outmsg_free(c->box[c->head]);
			c->head = (c->head + 1) % (size_t)c->cfg.outbox;
			c->count--;
		}
		free(c->box);
		conf_free(channel_keywords, &c->cfg);
	}
	free(nf->ch);
	queue_free(nf->q);
	pthread_mutex_destroy(&nf->lock);
	pthread_cond_destroy(&nf->cond);
	free(nf);
}
