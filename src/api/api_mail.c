/*
 * The mail quarantine routes of the HTTP API (api_mail.h).
 *
 * Why it is a pure function of the request: the query string is hostile
 * input, read here without an HTTP library, as in api_ddos.c; every
 * parameter goes through api_param_check, is bounded and refused when
 * unknown, and every error names what was wrong. A release blocks for at
 * most one SMTP transaction (quarantine.timeout) on the API's own thread.
 *
 * The hold links are opened by the sender from the notice, so their pages
 * are HTML; everything else answers JSON. A wrong or unknown token gets the
 * same 403, so the link tells nothing about which ids exist.
 */
#include "api/api_mail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/api_params.h"
#include "core/err.h"
#include "core/log.h"

#define JSON_TYPE "application/json"
#define HTML_TYPE "text/html; charset=utf-8"
#define RFC822_TYPE "message/rfc822"
#define MAX_BY 64

enum api_mail_route api_mail_match(const char *path, struct api_mail_target *t)
{
	static const char qbase[] = "/api/v1/mail/quarantine", hbase[] = "/api/v1/mail/hold/";
	const char *rest, *slash;
	size_t n;

	memset(t, 0, sizeof(*t));
	if (strncmp(path, hbase, sizeof(hbase) - 1) == 0) {
		rest = path + sizeof(hbase) - 1;
		slash = strchr(rest, '/');
		if (!slash)
			return API_MAIL_NONE;
		if (strcmp(slash, "/cancel") == 0)
			t->act = QUARANTINE_ACT_CANCEL;
		else if (strcmp(slash, "/send-now") == 0)
			t->act = QUARANTINE_ACT_SEND_NOW;
		else
			return API_MAIL_NONE;
		n = (size_t)(slash - rest);
		if (quarantine_id_ok(rest, n))
			memcpy(t->id, rest, n);
		return t->route = API_MAIL_HOLD;
	}
	if (strncmp(path, qbase, sizeof(qbase) - 1) != 0)
		return API_MAIL_NONE;
	rest = path + sizeof(qbase) - 1;
	if (*rest == '\0')
		return t->route = API_MAIL_LIST;
	if (*rest != '/' || rest[1] == '\0')
		return API_MAIL_NONE;
	rest++;
	slash = strchr(rest, '/');
	if (slash && strcmp(slash, "/release") != 0)
		return API_MAIL_NONE;
	n = slash ? (size_t)(slash - rest) : strlen(rest);
	if (quarantine_id_ok(rest, n))
		memcpy(t->id, rest, n);
	return t->route = slash ? API_MAIL_RELEASE : API_MAIL_ITEM;
}

int api_mail_method_ok(enum api_mail_route r, const char *method)
{
	int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	switch (r) {
	case API_MAIL_LIST:
		return get;
	case API_MAIL_ITEM:
		return get || strcmp(method, "DELETE") == 0;
	case API_MAIL_RELEASE:
		return strcmp(method, "POST") == 0;
	case API_MAIL_HOLD:
		return get || strcmp(method, "POST") == 0;
	default:
		return 0;
	}
}

const char *api_mail_allow(enum api_mail_route r)
{
	switch (r) {
	case API_MAIL_ITEM:
		return "GET, HEAD, DELETE";
	case API_MAIL_RELEASE:
		return "POST";
	case API_MAIL_HOLD:
		return "GET, HEAD, POST";
	default:
		return "GET, HEAD";
	}
}

int api_mail_public(enum api_mail_route r)
{
	return r == API_MAIL_HOLD;
}

/* ---- answers ---- */

static void fail(struct api_soc_answer *ans, unsigned status, const char *error,
		 const char *param, size_t param_len, const char *detail)
{
	buf_reset(&ans->body);
	ans->status = status;
	ans->error = error;
	if (!param)
		param_len = 0;
	if (param_len > sizeof(ans->param) - 1)
		param_len = sizeof(ans->param) - 1;
	if (param_len)
		memcpy(ans->param, param, param_len);
	ans->param[param_len] = '\0';
	snprintf(ans->detail, sizeof(ans->detail), "%s", detail);
}

/* Maps a quarantine error onto an answer; detail says what happened when
 * the quarantine said more than the code. */
static void fail_rc(struct api_soc_answer *ans, int rc, const char *detail)
{
	switch (rc) {
	case M_ENOTFOUND:
		fail(ans, 404, "not found", NULL, 0, "no such message in the quarantine");
		break;
	case M_EINVAL:
		fail(ans, 409, "conflict", NULL, 0,
		     detail && detail[0] ? detail : "the message is no longer held");
		break;
	case M_EAGAIN:
		fail(ans, 409, "conflict", NULL, 0,
		     detail && detail[0] ? detail : "a release of it is under way; try again");
		break;
	case M_EUNSUPP:
		fail(ans, 503, "unavailable", NULL, 0,
		     "no re-injection address is configured (quarantine.reinject)");
		break;
	case M_EIO:
		if (detail) {
			fail(ans, 502, "release failed", NULL, 0, detail[0] ? detail : "the MTA did not take it");
			break;
		}
		/* fall through */
	default:
		log_msg(LOG_ERROR, "api", "event=quarantine_failed err=%s", err_str(rc));
		fail(ans, 500, "internal error", NULL, 0, "the quarantine failed");
		break;
	}
}

static int dump_cb(const char *p, size_t n, void *arg)
{
	return buf_append(arg, p, n) == 0 ? 0 : -1;
}

/* Sends j (consumed) as the 200 answer. */
static void answer_json(struct api_soc_answer *ans, json_t *j, unsigned status,
			const char **ctype)
{
	buf_reset(&ans->body);
	if (!j || json_dump_callback(j, dump_cb, &ans->body, JSON_COMPACT) != 0 ||
	    buf_putc(&ans->body, '\n') != 0) {
		json_decref(j);
		fail_rc(ans, M_ENOMEM, NULL);
		return;
	}
	json_decref(j);
	ans->status = status;
	*ctype = JSON_TYPE;
}

/* ---- query parameters ---- */

enum {
	P_STATE = 1, P_DIRECTION = 2, P_SENDER = 4, P_RECIPIENT = 8, P_SINCE = 16, P_LIMIT = 32,
	P_OFFSET = 64, P_RAW = 128, P_BY = 256, P_TOKEN = 512,
};

static const struct api_param_name param_names[] = {
	{ "state", P_STATE }, { "direction", P_DIRECTION }, { "sender", P_SENDER },
	{ "recipient", P_RECIPIENT }, { "since", P_SINCE }, { "limit", P_LIMIT },
	{ "offset", P_OFFSET }, { "raw", P_RAW }, { "by", P_BY }, { "token", P_TOKEN },
};

struct mail_params {
	unsigned seen;
	struct quarantine_filter f;
	int raw;
	char sender[QUARANTINE_MAX_ADDR + 1], recipient[QUARANTINE_MAX_ADDR + 1];
	char by[MAX_BY + 8];
	char token[QUARANTINE_TOKEN_LEN + 1];
};

static unsigned allowed_params(const struct api_mail_request *rq)
{
	switch (rq->target.route) {
	case API_MAIL_LIST:
		return P_STATE | P_DIRECTION | P_SENDER | P_RECIPIENT | P_SINCE | P_LIMIT | P_OFFSET;
	case API_MAIL_ITEM:
		return strcmp(rq->method, "DELETE") == 0 ? P_BY : P_RAW;
	case API_MAIL_RELEASE:
		return P_BY;
	case API_MAIL_HOLD:
		return P_TOKEN;
	default:
		return 0;
	}
}

/* A decimal from 0 to max (core/str.h does the digits); 0 or M_EPARSE. */
/* A bounded copy: 0, or M_ELIMIT when v does not fit. */
static int copy_value(char *dst, size_t dstsz, const char *v, size_t n)
{
	if (n >= dstsz)
		return M_ELIMIT;
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

/* The one parameter p into mp; "why" is NULL or what is wrong with it. */
static const char *one_value(struct mail_params *mp, unsigned bit, const char *v, size_t n)
{
	enum quarantine_state st;
	int64_t t;
	uint64_t u;

	switch (bit) {
	case P_STATE:
		if (quarantine_state_parse(v, n, &st) != 0)
			return "expected held, released, deleted, expired or sent";
		mp->f.state = (int)st;
		return NULL;
	case P_DIRECTION:
		if (api_is(v, n, "inbound"))
			mp->f.direction = QUARANTINE_INBOUND;
		else if (api_is(v, n, "outbound"))
			mp->f.direction = QUARANTINE_OUTBOUND;
		else
			return "expected inbound or outbound";
		return NULL;
	case P_SENDER:
		if (copy_value(mp->sender, sizeof(mp->sender), v, n) != 0)
			return "longer than an address can be (320 bytes)";
		mp->f.sender = mp->sender;
		return NULL;
	case P_RECIPIENT:
		if (copy_value(mp->recipient, sizeof(mp->recipient), v, n) != 0)
			return "longer than an address can be (320 bytes)";
		mp->f.recipient = mp->recipient;
		return NULL;
	case P_SINCE:
		if (api_parse_time(v, n, &t) != 0)
			return "expected an RFC 3339 time (2024-05-01T12:00:00Z) or epoch seconds or milliseconds";
		mp->f.since = t / 1000000;
		return NULL;
	case P_LIMIT:
		if (api_parse_uint(v, n, QUARANTINE_MAX_LIMIT, &u) || u == 0)
			return "expected an integer from 1 to 1000";
		mp->f.limit = (uint32_t)u;
		return NULL;
	case P_OFFSET:
		if (api_parse_uint(v, n, API_MAX_OFFSET, &u))
			return "expected an integer from 0 to 1000000";
		mp->f.offset = u;
		return NULL;
	case P_RAW:
		if (api_is(v, n, "1") || api_is(v, n, "true"))
			mp->raw = 1;
		else if (!api_is(v, n, "0") && !api_is(v, n, "false"))
			return "expected 1 or 0";
		return NULL;
	case P_BY:
		if (n > MAX_BY)
			return "longer than 64 bytes";
		snprintf(mp->by, sizeof(mp->by), "api:%.*s", (int)n, v);
		return NULL;
	case P_TOKEN:
		if (copy_value(mp->token, sizeof(mp->token), v, n) != 0)
			return "not a valid token";
		return NULL;
	}
	return "unknown parameter for this route";
}

static int parse_params(const struct api_mail_request *rq, struct mail_params *mp,
			struct api_soc_answer *ans)
{
	unsigned allowed = allowed_params(rq);

	memset(mp, 0, sizeof(*mp));
	mp->f.state = -1;
	mp->f.direction = -1;
	mp->f.limit = API_DEFAULT_LIMIT;
	snprintf(mp->by, sizeof(mp->by), "api");
	if (rq->n_params > API_MAX_PARAMS) {
		fail(ans, 400, "bad parameter", NULL, 0, "too many query parameters (at most 64)");
		return M_EINVAL;
	}
	for (size_t i = 0; i < rq->n_params; i++) {
		const struct api_soc_param *p = &rq->params[i];
		size_t n = p->value ? p->value_len : 0;
		const char *why;
		unsigned bit;

		why = api_param_check(param_names, sizeof(param_names) / sizeof(param_names[0]),
				      allowed, mp->seen, p->name, p->name_len, p->value,
				      p->value_len, &bit);
		if (!why && n == 0)
			continue;   /* an empty form field: absent */
		if (!why) {
			mp->seen |= bit;
			why = one_value(mp, bit, p->value, n);
		}
		if (why) {
			fail(ans, 400, "bad parameter", p->name, p->name_len, why);
			return M_EINVAL;
		}
	}
	return 0;
}

/* ---- routes ---- */

static void do_list(struct quarantine *q, const struct mail_params *mp,
		    struct api_soc_answer *ans, const char **ctype)
{
	json_t *j = NULL;
	int rc = quarantine_list(q, &mp->f, &j);

	if (rc != 0) {
		fail_rc(ans, rc, NULL);
		return;
	}
	answer_json(ans, j, 200, ctype);
}

static void do_get(struct quarantine *q, const char *id, const struct mail_params *mp,
		   struct api_soc_answer *ans, const char **ctype)
{
	struct quarantine_meta m;
	char *raw = NULL;
	size_t len = 0;
	json_t *j = NULL;
	int rc;

	if (!mp->raw) {
		rc = quarantine_entry_json(q, id, 1, &j);
		if (rc != 0)
			fail_rc(ans, rc, NULL);
		else
			answer_json(ans, j, 200, ctype);
		return;
	}
	rc = quarantine_get(q, id, &m, &raw, &len);
	if (rc != 0) {
		fail_rc(ans, rc, NULL);
		return;
	}
	if (!raw) {
		fail(ans, 404, "not found", NULL, 0,
		     "the message left the quarantine and is no longer stored");
	} else if (buf_append(&ans->body, raw, len) != 0) {
		fail(ans, 500, "internal error", NULL, 0, "the message is too large to send");
	} else {
		ans->status = 200;
		*ctype = RFC822_TYPE;
	}
	free(raw);
	quarantine_meta_fini(&m);
}

static void do_delete(struct quarantine *q, const char *id, const struct mail_params *mp,
		      struct api_soc_answer *ans, const char **ctype)
{
	int rc = quarantine_delete(q, id, mp->by);

	if (rc != 0) {
		fail_rc(ans, rc, NULL);
		return;
	}
	answer_json(ans, json_pack("{s:s, s:s}", "id", id, "state", "deleted"), 200, ctype);
}

static void do_release(struct quarantine *q, const char *id, const struct mail_params *mp,
		       struct api_soc_answer *ans, const char **ctype)
{
	struct quarantine_result res;
	int rc = quarantine_release(q, id, mp->by, &res);

	if (rc != 0) {
		fail_rc(ans, rc, res.detail);
		return;
	}
	answer_json(ans, json_pack("{s:s, s:s, s:i, s:i, s:s}", "id", id, "state", "released",
				   "accepted", (int)res.accepted, "refused", (int)res.refused,
				   "detail", res.refused ? res.detail : ""),
		    200, ctype);
}

static int put_page(struct buf *b, const char *title, const char *text, const char *button)
{
	int rc = buf_printf(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			    "<meta name=\"robots\" content=\"noindex\"><meta name=\"referrer\" "
			    "content=\"no-referrer\"><meta http-equiv=\"Content-Security-Policy\" "
			    "content=\"default-src 'none'; form-action 'self'\"><title>%s</title></head>\n"
			    "<body><h1>%s</h1><p>%s</p>\n", title, title, text);

	if (rc == 0 && button)
		rc = buf_printf(b, "<form method=\"post\"><button type=\"submit\">%s</button></form>\n",
				button);
	return rc ? rc : buf_puts(b, "</body></html>\n");
}

static void do_hold(struct quarantine *q, const struct api_mail_request *rq,
		    const struct mail_params *mp, struct api_soc_answer *ans, const char **ctype)
{
	const struct api_mail_target *t = &rq->target;
	int cancel = t->act == QUARANTINE_ACT_CANCEL, rc;
	struct quarantine_result res;

	memset(&res, 0, sizeof(res));
	rc = t->id[0] && mp->token[0] ? quarantine_token_check(q, t->id, t->act, mp->token)
				      : M_EAUTH;
	if (rc == M_EAUTH || rc == M_ENOTFOUND) {
		fail(ans, 403, "forbidden", "token", 5, "the link is not valid");
		return;
	}
	if (rc == M_ELIMIT) {
		fail(ans, 410, "gone", NULL, 0,
		     "the hold has passed: the message was sent or is being sent");
		return;
	}
	if (rc != 0) {
		fail_rc(ans, rc, NULL);
		return;
	}
	buf_reset(&ans->body);
	if (strcmp(rq->method, "POST") != 0) {
		rc = put_page(&ans->body, cancel ? "Cancel the held message?" : "Send the held message now?",
			      cancel ? "The message will not be sent, and it cannot be sent later."
				     : "The message will be sent now instead of at the end of its hold.",
			      cancel ? "Cancel the message" : "Send it now");
	} else {
		rc = quarantine_hold_act(q, t->id, t->act, &res);
		if (rc != 0) {
			fail_rc(ans, rc, rc == M_EINVAL ? "the message was already sent or cancelled"
							: res.detail);
			return;
		}
		rc = put_page(&ans->body, cancel ? "Message cancelled" : "Message sent",
			      cancel ? "The held message was deleted; it will not be sent."
				     : "The held message was handed on for delivery.", NULL);
	}
	if (rc != 0) {
		fail_rc(ans, M_ENOMEM, NULL);
		return;
	}
	ans->status = 200;
	*ctype = HTML_TYPE;
}

void api_mail_handle(struct quarantine *q, const struct api_mail_request *rq,
		     struct api_soc_answer *ans, const char **content_type)
{
	const struct api_mail_target *t = &rq->target;
	struct mail_params *mp;

	ans->status = 0;
	ans->error = NULL;
	ans->param[0] = '\0';
	ans->detail[0] = '\0';
	*content_type = JSON_TYPE;
	/* About 1 KiB of parameters: on the heap, not a pool thread's stack. */
	mp = malloc(sizeof(*mp));
	if (!mp) {
		fail(ans, 503, "unavailable", NULL, 0, "out of memory; try again");
		return;
	}
	if (parse_params(rq, mp, ans) != 0)
		goto out;
	if (!q) {
		fail(ans, 503, "unavailable", NULL, 0, "the mail quarantine is not running");
		goto out;
	}
	if (t->route != API_MAIL_LIST && t->route != API_MAIL_HOLD && !t->id[0]) {
		fail(ans, 404, "not found", "id", 2, "no such message in the quarantine (ids are 32 hex digits)");
		goto out;
	}
	switch (t->route) {
	case API_MAIL_LIST:
		do_list(q, mp, ans, content_type);
		break;
	case API_MAIL_ITEM:
		if (strcmp(rq->method, "DELETE") == 0)
			do_delete(q, t->id, mp, ans, content_type);
		else
			do_get(q, t->id, mp, ans, content_type);
		break;
	case API_MAIL_RELEASE:
		do_release(q, t->id, mp, ans, content_type);
		break;
	case API_MAIL_HOLD:
		do_hold(q, rq, mp, ans, content_type);
		break;
	default:
		fail(ans, 404, "not found", NULL, 0, "no such resource");
		break;
	}
out:
	free(mp);
}
