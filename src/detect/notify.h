/*
 * Notifications: the SOC (incident opened / escalated / resolved), and later
 * the DDoS and mail pillars, tell people about what happened through e-mail
 * (SMTP via libcurl) and webhooks (generic JSON or Slack-compatible).
 *
 * Callers submit a notification and never wait: it is copied onto a bounded
 * queue and one delivery thread routes it to the channels whose minimum
 * severity and kinds filter accept it, rate-limits each channel (a storm
 * becomes a few messages and one digest per window), and retries failures
 * with exponential back-off. docs/notifications.md has the configuration
 * and the exact rate-limit rule.
 */
#ifndef MAMORI_NOTIFY_H
#define MAMORI_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"

enum notify_kind {
	NOTIFY_GENERIC,
	NOTIFY_INCIDENT_OPENED,
	NOTIFY_INCIDENT_ESCALATED,
	NOTIFY_INCIDENT_RESOLVED,
	NOTIFY_TEST,
	NOTIFY_DIGEST,          /* made by the rate limiter, never submitted */
	NOTIFY_KIND_COUNT
};

enum notify_severity {
	NOTIFY_SEV_INFORMATIONAL,
	NOTIFY_SEV_LOW,
	NOTIFY_SEV_MEDIUM,
	NOTIFY_SEV_HIGH,
	NOTIFY_SEV_CRITICAL,
	NOTIFY_SEV_COUNT
};

#define NOTIFY_MAX_FIELDS 16
#define NOTIFY_MAX_TITLE 512       /* bytes; longer titles are cut */
#define NOTIFY_MAX_BODY (64 << 10) /* bytes; longer bodies are cut */
#define NOTIFY_MAX_PAYLOAD (4 << 20) /* a rendered message, worst case included */
#define NOTIFY_MAX_CHANNELS 16
#define NOTIFY_DIGEST_TITLES 5     /* titles listed in a digest */

struct notify_field {
	const char *key;
	const char *value;
};

/* What a caller submits. Every pointer is borrowed: notifier_submit()
 * copies what it needs (cut to the limits above) before it returns. */
struct notification {
	enum notify_kind kind;
	enum notify_severity severity;
	const char *title;
	const char *body;                 /* may be NULL */
	struct notify_field fields[NOTIFY_MAX_FIELDS];
	size_t nfields;
	int64_t time_us;                  /* wall clock; 0 = now */
};

enum notify_channel_type { NOTIFY_SMTP, NOTIFY_WEBHOOK };
enum notify_starttls { NOTIFY_TLS_OFF, NOTIFY_TLS_OPTIONAL, NOTIFY_TLS_REQUIRED };
enum notify_format { NOTIFY_FMT_GENERIC, NOTIFY_FMT_SLACK };

/* One channel, filled from an item of notify.channels by the keyword table
 * in notify.c; the resolved enums below are set by notify_config_load(). */
struct notify_channel_config {
	char *name;
	char *type;                /* smtp | webhook */
	char *min_severity;
	struct conf_list kinds;    /* empty = every kind */
	int64_t max_per_window;
	int64_t window;            /* seconds */
	int64_t max_attempts;
	int64_t retry_base_ms;
	int64_t retry_max_ms;
	int64_t timeout;           /* seconds, one delivery attempt */
	int64_t outbox;            /* messages waiting for (re)delivery */
	char *url;                 /* smtp://, smtps://, http://, https:// */
	char *ca_file;
	int tls_verify;
	/* smtp */
	char *starttls;            /* required | optional | off */
	char *user;
	char *password;
	char *from;
	struct conf_list to;
	char *subject_prefix;
	/* webhook */
	char *format;              /* generic | slack */
	struct conf_list headers;  /* "Name: value" */

	enum notify_channel_type t;
	enum notify_severity min_sev;
	unsigned kinds_mask;       /* bit per enum notify_kind */
	enum notify_starttls tls;
	enum notify_format fmt;
};

struct notify_config {
	int64_t queue;             /* notifications waiting for the thread */
	struct notify_channel_config *ch;
	size_t nch;
};

/* Fills cfg from the notify section of doc (defaults when it is absent);
 * errors read "file:line:col: ...". notify_config_free() in every case. */
int notify_config_load(const struct conf_doc *doc, struct notify_config *cfg,
		       struct buf *err);
void notify_config_free(struct notify_config *cfg);
/* The section's documentation (for --help and docs). */
int notify_config_describe(struct buf *out);

const char *notify_kind_name(enum notify_kind k);
const char *notify_severity_name(enum notify_severity s);
int notify_kind_parse(const char *s, enum notify_kind *out);
int notify_severity_parse(const char *s, enum notify_severity *out);

/* The notifier: owner of its copy of the configuration, the queue and the
 * delivery thread. */
struct notifier;

/* Copies cfg. NULL on a bad configuration or no memory. */
struct notifier *notifier_new(const struct notify_config *cfg);
/* Starts the delivery thread; 0 or M_EIO. */
int notifier_start(struct notifier *nf);
/* Copies n onto the queue without waiting: 0, or M_EAGAIN when the queue
 * is full (counted in mamori_notify_dropped_total), M_ECLOSED when the
 * notifier is stopping, M_EINVAL for a bad kind or severity. */
int notifier_submit(struct notifier *nf, const struct notification *n);
/* Waits up to timeout_ms until everything submitted so far has been
 * delivered or has failed for good (pending digests are sent early);
 * 0, or M_EAGAIN on timeout. */
int notifier_flush(struct notifier *nf, int timeout_ms);
/* Per-channel outcome counters since notifier_new (for `notify test`). */
struct notify_stats {
	uint64_t sent, failed, retries, digested, dropped;
	char last_error[256];
};
int notifier_channel_stats(struct notifier *nf, const char *channel,
			   struct notify_stats *out);
/* Stops the thread after draining the queue (up to 10 s) and frees. */
void notifier_free(struct notifier *nf);

/* ---- The pieces below are pure functions, shared by the delivery thread
 * and the unit tests. ---- */

/* Appends a complete RFC 5322 message (CRLF lines, MIME text/plain UTF-8,
 * RFC 2047 subject when it is not ASCII) for channel ch. */
int notify_format_email(const struct notify_channel_config *ch,
			const struct notification *n, const char *message_id,
			struct buf *out);
/* Appends "=?UTF-8?B?...?=" encoded words for s (folded), or s itself when
 * it is printable ASCII; control characters become spaces. */
int notify_rfc2047(const char *s, size_t n, size_t first_line_used, struct buf *out);
/* Appends the webhook's JSON body in the channel's shape. */
int notify_format_webhook(const struct notify_channel_config *ch,
			  const struct notification *n, struct buf *out);
/* Delay before attempt number attempt (2 = the first retry):
 * retry_base_ms * 2^(attempt-2), capped at retry_max_ms. */
int64_t notify_backoff_ms(const struct notify_channel_config *ch, int attempt);

/* Writes "<time.pid.seq.random@domain>" with the domain of ch->from. */
void notify_message_id(const struct notify_channel_config *ch, unsigned seq,
		       char *out, size_t outsz);

/* One blocking transfer (bounded by ch->timeout): 0, or a negative code with
 * a one-line reason and *permanent set when a retry cannot help. */
int notify_smtp_send(const struct notify_channel_config *ch, const char *msg,
		     size_t len, char *reason, size_t reasonsz, int *permanent);
int notify_webhook_send(const struct notify_channel_config *ch, const char *body,
			size_t len, char *reason, size_t reasonsz, int *permanent);

/* The per-channel rate limiter with an injected clock (monotonic µs). */
struct notify_limiter {
	int64_t max_per_window, window_us;
	int64_t window_start;   /* 0 = no window open */
	int64_t in_window;      /* sent individually in this window */
	/* the digest being accumulated */
	uint64_t dig_count;
	uint64_t dig_by_sev[NOTIFY_SEV_COUNT];
	enum notify_severity dig_max;
	char dig_titles[NOTIFY_DIGEST_TITLES][128];
	size_t dig_ntitles;
	int64_t dig_first_us, dig_last_us;  /* wall time of notifications */
};

enum { NOTIFY_LIMIT_SEND = 1, NOTIFY_LIMIT_DIGESTED = 2 };

void notify_limiter_init(struct notify_limiter *l, int64_t max_per_window,
			 int64_t window_us);
/* Decides for one notification at now: NOTIFY_LIMIT_SEND or
 * NOTIFY_LIMIT_DIGESTED. A window that ended must be polled first. */
int notify_limiter_offer(struct notify_limiter *l, const struct notification *n,
			 int64_t now);
/* When the window has ended (or force) and a digest is waiting, writes its
 * title and body into title/body (caller's buffers), fills *out and returns
 * 1; otherwise 0. A window that ended is closed either way. */
int notify_limiter_poll(struct notify_limiter *l, int64_t now, int force,
			struct notification *out, struct buf *title,
			struct buf *body);
/* When the current window ends (µs, monotonic), or 0 with none open. */
int64_t notify_limiter_deadline(const struct notify_limiter *l);

#endif
