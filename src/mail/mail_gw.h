/*
 * mail_gw: the mail gateway as `mamori serve` runs it: the milter listener,
 * the DNS resolver, the engines and the quarantine, and the decision on
 * every message (accept, tag, quarantine, reject, tempfail), reported as one
 * event per message into the pipeline.
 */
#ifndef MAMORI_MAIL_GW_H
#define MAMORI_MAIL_GW_H

#include <time.h>

#include "core/buf.h"
#include "core/pipeline.h"
#include "detect/detect.h"
#include "mail/mail_conf.h"
#include "mail/milter.h"

struct quarantine;
struct mdns;

struct mail_gw_deps {
	struct pipeline *pipe;  /* events; may be NULL */
	struct detect *det;     /* indicators for URL and hash reputation; may be NULL */
	const char *data_dir;
	const char *api_listen; /* for hold links when mail.public_url is empty */
	struct mdns *dns;       /* a resolver to use instead of mail.dns (tests, bench); borrowed */
};

struct mail_gw;

/* Builds the gateway and binds the milter socket (before privileges are
 * dropped). cfg is borrowed and must outlive the gateway. NULL with err set
 * on failure. */
struct mail_gw *mail_gw_new(const struct mail_config *cfg, const struct mail_gw_deps *deps,
			    struct buf *err);
int mail_gw_start(struct mail_gw *g);
void mail_gw_stop(struct mail_gw *g);
void mail_gw_free(struct mail_gw *g);
int mail_gw_port(const struct mail_gw *g);
struct quarantine *mail_gw_quarantine(struct mail_gw *g);

/* Flushes the DMARC aggregate counts and mails the reports of every period
 * that ended before now (the reporter thread calls it each minute).
 * Returns the reports sent. */
int mail_gw_dmarc_tick(struct mail_gw *g, time_t now);

/* The decision on one message, as the milter asks it at end of message
 * (also the benchmark's and the tests' entry). */
void mail_gw_check(struct mail_gw *g, const struct milter_session *s, struct milter_reply *r);
/* The same, also writing the message's event (JSON) to event. */
void mail_gw_check_json(struct mail_gw *g, const struct milter_session *s, struct milter_reply *r,
			struct buf *event);

#endif
