/*
 * Private to src/api: the mail quarantine routes as a pure function of
 * (route, method, query parameters) → (status, answer or error), like
 * api_ddos.h. api.c owns the HTTP side (limits, auth, metrics); this file
 * owns what the routes mean, so the unit test can drive it without a socket:
 *
 *   GET    /api/v1/mail/quarantine               held and past entries (filters, paging)
 *   GET    /api/v1/mail/quarantine/{id}          one entry, its header fields and history;
 *                                                ?raw=1: the message as message/rfc822
 *   DELETE /api/v1/mail/quarantine/{id}          delete a held entry
 *   POST   /api/v1/mail/quarantine/{id}/release  re-inject a held entry
 *   GET    /api/v1/mail/hold/{id}/cancel?token=       a page that asks to confirm
 *   POST   /api/v1/mail/hold/{id}/cancel?token=       cancel an outbound hold
 *   GET    /api/v1/mail/hold/{id}/send-now?token=     a page that asks to confirm
 *   POST   /api/v1/mail/hold/{id}/send-now?token=     send an outbound hold now
 *
 * The hold routes are the only ones without a bearer token: the sender
 * opens them from the notice, and the HMAC token in the link is the
 * credential. A GET never acts (mail scanners open links), it answers a
 * page whose button POSTs to the same address.
 */
#ifndef MAMORI_API_MAIL_H
#define MAMORI_API_MAIL_H

#include <stddef.h>

#include "api/api_soc.h"
#include "mail/quarantine.h"

enum api_mail_route {
	API_MAIL_NONE = 0,
	API_MAIL_LIST,       /* /api/v1/mail/quarantine */
	API_MAIL_ITEM,       /* /api/v1/mail/quarantine/{id} */
	API_MAIL_RELEASE,    /* /api/v1/mail/quarantine/{id}/release */
	API_MAIL_HOLD,       /* /api/v1/mail/hold/{id}/cancel|send-now */
};

struct api_mail_target {
	enum api_mail_route route;
	char id[QUARANTINE_ID_LEN + 1];   /* "" when the segment is not a well-formed id */
	enum quarantine_action act;       /* API_MAIL_HOLD */
};

/* Classifies a path: API_MAIL_NONE when it is not a mail route. */
enum api_mail_route api_mail_match(const char *path, struct api_mail_target *t);
/* 1 when the route answers method. */
int api_mail_method_ok(enum api_mail_route r, const char *method);
/* The Allow header for a 405 on the route. */
const char *api_mail_allow(enum api_mail_route r);
/* 1 for the routes that need no bearer token (the hold links). */
int api_mail_public(enum api_mail_route r);

struct api_mail_request {
	struct api_mail_target target;
	const char *method;
	const struct api_soc_param *params;
	size_t n_params;             /* more than API_MAX_PARAMS: refused */
};

/* Answers one request against q (NULL: 503). ans->body is initialised by
 * the caller, as for api_soc_handle(); on 2xx *content_type says what it
 * holds (JSON, message/rfc822 or an HTML page). */
void api_mail_handle(struct quarantine *q, const struct api_mail_request *rq,
		     struct api_soc_answer *ans, const char **content_type);

#endif
