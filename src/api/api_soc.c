/*
 * The SOC routes of the HTTP API: alerts and incidents, read with GET,
 * changed with PATCH (status, assignee) and POST (comments).
 *
 * Why it is a pure function of the request: like api_params.c this is where
 * hostile input (the query string and the JSON body) is read, so it sees no
 * HTTP library; api.c has already bounded the target and the body and
 * checked the token. Every parameter is checked and range-limited, unknown
 * parameters and unknown body fields are refused (a typo never silently
 * widens a list or drops a change), and every error names what was wrong.
 */
#include "api/api_soc.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "api/api_params.h"
#include "core/err.h"
#include "core/log.h"
#include "detect/incident.h"

#define DEFAULT_INCIDENT_ALERTS 20

enum api_soc_route api_soc_match(const char *path, struct api_soc_target *t)
{
	static const char alerts[] = "/api/v1/alerts", incidents[] = "/api/v1/incidents";
	const char *rest, *slash;
	int inc;

	t->route = API_SOC_NONE;
	t->id = 0;
	if (strncmp(path, alerts, sizeof(alerts) - 1) == 0) {
		rest = path + sizeof(alerts) - 1;
		inc = 0;
	} else if (strncmp(path, incidents, sizeof(incidents) - 1) == 0) {
		rest = path + sizeof(incidents) - 1;
		inc = 1;
	} else {
		return API_SOC_NONE;
	}
	if (*rest == '\0')
		return t->route = inc ? API_SOC_INCIDENTS : API_SOC_ALERTS;
	if (*rest != '/' || rest[1] == '\0')
		return API_SOC_NONE;
	rest++;
	slash = strchr(rest, '/');
	if (slash == NULL) {
		t->id = api_parse_id(rest, strnlen(rest, 64));
		return t->route = inc ? API_SOC_INCIDENT : API_SOC_ALERT;
	}
	if (!inc || strcmp(slash, "/comments") != 0)
		return API_SOC_NONE;
	t->id = api_parse_id(rest, (size_t)(slash - rest));
	return t->route = API_SOC_COMMENTS;
}

int api_soc_method_ok(enum api_soc_route r, const char *method)
{
	int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	switch (r) {
	case API_SOC_ALERTS:
	case API_SOC_ALERT:
	case API_SOC_INCIDENTS:
		return get;
	case API_SOC_INCIDENT:
		return get || strcmp(method, "PATCH") == 0;
	case API_SOC_COMMENTS:
		return strcmp(method, "POST") == 0;
	default:
		return 0;
	}
}

const char *api_soc_allow(enum api_soc_route r)
{
	if (r == API_SOC_INCIDENT)
		return "GET, HEAD, PATCH";
	if (r == API_SOC_COMMENTS)
		return "POST";
	return "GET, HEAD";
}

int api_soc_takes_body(enum api_soc_route r, const char *method)
{
	return (r == API_SOC_INCIDENT && strcmp(method, "PATCH") == 0) ||
	       (r == API_SOC_COMMENTS && strcmp(method, "POST") == 0);
}

/* ---- answers ------------------------------------------------------------ */

static void fail(struct api_soc_answer *ans, unsigned status, const char *error,
		 const char *param, size_t param_len, const char *detail)
{
	ans->status = status;
	ans->error = error;
	if (param_len > sizeof(ans->param) - 1)
		param_len = sizeof(ans->param) - 1;
	memcpy(ans->param, param ? param : "", param ? param_len : 0);
	ans->param[param ? param_len : 0] = '\0';
	snprintf(ans->detail, sizeof(ans->detail), "%s", detail);
}

static void bad_param(struct api_soc_answer *ans, const struct api_soc_param *p,
		      const char *detail)
{
	fail(ans, 400, "bad parameter", p->name, p->name_len, detail);
}

/* Maps a failed read or write onto an answer. */
static void fail_rc(struct api_soc_answer *ans, int rc, const char *what)
{
	if (rc == M_ENOTFOUND)
		fail(ans, 404, "not found", NULL, 0, what);
	else if (rc == M_EAGAIN || rc == M_ECLOSED)
		fail(ans, 503, "unavailable", NULL, 0,
		     "the SOC back-end is busy or stopping; try again");
	else if (rc == M_ELIMIT)
		fail(ans, 500, "internal error", NULL, 0, "the answer would be too large");
	else {
		log_msg(LOG_ERROR, "api", "event=soc_failed err=%s", err_str(rc));
		fail(ans, 500, "internal error", NULL, 0, "the SOC database failed");
	}
}

/* ---- query parameters --------------------------------------------------- */

struct soc_params {
	int64_t from_us, to_us, incident_id;
	uint32_t limit;
	uint64_t offset;
	unsigned level_mask, status_mask;
	uint32_t n_alerts;
	char rule[SOC_MAX_ID + 1];
	char assignee[SOC_MAX_NAME + 1];
	int has_rule, has_assignee;
	unsigned seen;
};

enum {
	P_FROM = 1, P_TO = 2, P_RULE = 4, P_LEVEL = 8, P_INCIDENT = 16,
	P_LIMIT = 32, P_OFFSET = 64, P_STATUS = 128, P_SEVERITY = 256,
	P_ASSIGNEE = 512, P_ALERTS = 1024,
};

/* "high,critical" → bits; 0 on a bad name. */
static unsigned parse_levels(const char *s, size_t n)
{
	unsigned mask = 0;
	size_t i = 0;

	while (i <= n) {
		size_t j = i;
		enum soc_level l;

		while (j < n && s[j] != ',')
			j++;
		if (soc_level_parse(s + i, j - i, &l) != 0)
			return 0;
		mask |= 1u << l;
		i = j + 1;
	}
	return mask;
}

static unsigned parse_statuses(const char *s, size_t n)
{
	unsigned mask = 0;
	size_t i = 0;

	while (i <= n) {
		size_t j = i;
		enum soc_status st;

		while (j < n && s[j] != ',')
			j++;
		if (soc_status_parse(s + i, j - i, &st) != 0)
			return 0;
		mask |= 1u << st;
		i = j + 1;
	}
	return mask;
}

/* Which parameters each GET route takes. */
static unsigned allowed_params(enum api_soc_route r)
{
	switch (r) {
	case API_SOC_ALERTS:
		return P_FROM | P_TO | P_RULE | P_LEVEL | P_INCIDENT | P_LIMIT | P_OFFSET;
	case API_SOC_INCIDENTS:
		return P_FROM | P_TO | P_RULE | P_STATUS | P_SEVERITY | P_ASSIGNEE |
		       P_LIMIT | P_OFFSET;
	case API_SOC_INCIDENT:
		return P_ALERTS;
	default:
		return 0;
	}
}

static const struct api_param_name param_names[] = {
	{ "from", P_FROM }, { "to", P_TO }, { "rule", P_RULE },
	{ "level", P_LEVEL }, { "incident", P_INCIDENT }, { "limit", P_LIMIT },
	{ "offset", P_OFFSET }, { "status", P_STATUS },
	{ "severity", P_SEVERITY }, { "assignee", P_ASSIGNEE },
	{ "alerts", P_ALERTS },
};

/* One parameter; 0, or M_EINVAL with ans filled. */
static int one_param(struct soc_params *sp, unsigned allowed,
		     const struct api_soc_param *p, struct api_soc_answer *ans)
{
	const char *v = p->value ? p->value : "";
	size_t n = p->value ? p->value_len : 0;
	const char *why;
	unsigned bit;
	uint64_t u;
	int64_t t;

	why = api_param_check(param_names, sizeof(param_names) / sizeof(param_names[0]), allowed,
			      sp->seen, p->name, p->name_len, p->value, p->value_len, &bit);
	if (why) {
		bad_param(ans, p, why);
		return M_EINVAL;
	}
	sp->seen |= bit;
	if (n == 0)
		return 0;   /* an empty form field: absent */
	switch (bit) {
	case P_FROM:
	case P_TO:
		if (api_parse_time(v, n, &t) != 0) {
			bad_param(ans, p, "expected an RFC 3339 time (2024-05-01T12:00:00Z) or epoch seconds or milliseconds");
			return M_EINVAL;
		}
		if (bit == P_FROM)
			sp->from_us = t;
		else
			sp->to_us = t;
		return 0;
	case P_RULE:
	case P_ASSIGNEE: {
		size_t max = bit == P_RULE ? SOC_MAX_ID : SOC_MAX_NAME;
		char *dst = bit == P_RULE ? sp->rule : sp->assignee;

		if (n > max) {
			bad_param(ans, p, bit == P_RULE ? "longer than 256 bytes"
							: "longer than 128 bytes");
			return M_EINVAL;
		}
		memcpy(dst, v, n);
		dst[n] = '\0';
		if (bit == P_RULE)
			sp->has_rule = 1;
		else
			sp->has_assignee = 1;
		return 0;
	}
	case P_LEVEL:
	case P_SEVERITY:
		if ((sp->level_mask = parse_levels(v, n)) == 0) {
			bad_param(ans, p, "expected informational, low, medium, high or critical (a comma-separated list)");
			return M_EINVAL;
		}
		return 0;
	case P_STATUS:
		if ((sp->status_mask = parse_statuses(v, n)) == 0) {
			bad_param(ans, p, "expected new, acknowledged, resolved or false_positive (a comma-separated list)");
			return M_EINVAL;
		}
		return 0;
	case P_INCIDENT:
		if ((sp->incident_id = api_parse_id(v, n)) == 0) {
			bad_param(ans, p, "expected an incident id (a positive integer)");
			return M_EINVAL;
		}
		return 0;
	case P_LIMIT:
		if (api_parse_uint(v, n, API_MAX_LIMIT, &u) || u == 0) {
			bad_param(ans, p, "expected an integer from 1 to 1000");
			return M_EINVAL;
		}
		sp->limit = (uint32_t)u;
		return 0;
	case P_OFFSET:
		if (api_parse_uint(v, n, API_MAX_OFFSET, &u)) {
			bad_param(ans, p, "expected an integer from 0 to 1000000");
			return M_EINVAL;
		}
		sp->offset = u;
		return 0;
	case P_ALERTS:
		if (api_parse_uint(v, n, 100, &u)) {
			bad_param(ans, p, "expected an integer from 0 to 100");
			return M_EINVAL;
		}
		sp->n_alerts = (uint32_t)u;
		return 0;
	}
	return 0;
}

static int parse_params(const struct api_soc_request *rq, struct soc_params *sp,
			struct api_soc_answer *ans)
{
	unsigned allowed = allowed_params(rq->target.route);

	memset(sp, 0, sizeof(*sp));
	sp->limit = API_DEFAULT_LIMIT;
	sp->n_alerts = DEFAULT_INCIDENT_ALERTS;
	if (rq->n_params > API_MAX_PARAMS) {
		fail(ans, 400, "bad parameter", NULL, 0,
		     "too many query parameters (at most 64)");
		return M_EINVAL;
	}
	for (size_t i = 0; i < rq->n_params; i++)
		if (one_param(sp, allowed, &rq->params[i], ans) != 0)
			return M_EINVAL;
	if (sp->from_us && sp->to_us && sp->from_us > sp->to_us) {
		fail(ans, 400, "bad parameter", "from", 4, "from is later than to");
		return M_EINVAL;
	}
	return 0;
}

/* ---- bodies ------------------------------------------------------------- */

/* Parses the body as one JSON object; 0, or M_EINVAL with ans filled. */
static int parse_body(const struct api_soc_request *rq, json_t **out,
		      struct api_soc_answer *ans)
{
	json_error_t jerr;
	json_t *j;

	*out = NULL;
	if (rq->body == NULL || rq->body_len == 0) {
		fail(ans, 400, "bad body", NULL, 0, "a JSON object is required");
		return M_EINVAL;
	}
	j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL) {
		char detail[256];

		snprintf(detail, sizeof(detail), "not valid JSON: %s (at byte %d)",
			 jerr.text, jerr.position);
		fail(ans, 400, "bad body", NULL, 0, detail);
		return M_EINVAL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		fail(ans, 400, "bad body", NULL, 0, "a JSON object is required");
		return M_EINVAL;
	}
	*out = j;
	return 0;
}

/* A string member: 1 when present (and valid), 0 when absent (or null when
 * null_ok), -1 with ans filled when wrong. */
static int body_str(json_t *o, const char *key, size_t max, int required,
		    int null_ok, const char **out, struct api_soc_answer *ans)
{
	json_t *v = json_object_get(o, key);
	char detail[128];

	*out = NULL;
	if (v == NULL || (null_ok && json_is_null(v))) {
		if (!required)
			return 0;
		fail(ans, 400, "bad body", key, strlen(key), "required");
		return -1;
	}
	if (!json_is_string(v) || json_string_length(v) > max ||
	    (required && json_string_length(v) == 0)) {
		snprintf(detail, sizeof(detail), "must be a %sstring of at most %zu bytes",
			 required ? "non-empty " : "", max);
		fail(ans, 400, "bad body", key, strlen(key), detail);
		return -1;
	}
	*out = json_string_value(v);
	return 1;
}

/* Refuses members other than the listed ones. */
static int body_only(json_t *o, const char *const *keys, struct api_soc_answer *ans)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		int known = 0;

		(void)v;
		for (const char *const *p = keys; *p; p++)
			known |= strcmp(k, *p) == 0;
		if (!known) {
			fail(ans, 400, "bad body", k, strlen(k),
			     "unknown field");
			return -1;
		}
	}
	return 0;
}

/* PATCH an incident: the body is checked whole (known fields only, types,
 * lengths, a known status) before anything is changed; the transition
 * itself is checked by the writer, and a refusal is a 409 that says which
 * changes are allowed. Answers the incident as it now is. */
static void do_patch(struct soc_db *db, const struct api_soc_request *rq,
		     struct api_soc_answer *ans)
{
	static const char *const keys[] = { "status", "assignee", "actor", NULL };
	struct soc_update u = { 0 };
	enum soc_status st;
	const char *status, *assignee, *actor;
	char why[256];
	json_t *j;
	int has_status, has_assignee, rc;

	if (parse_body(rq, &j, ans) != 0)
		return;
	if (body_only(j, keys, ans) != 0 ||
	    body_str(j, "actor", SOC_MAX_NAME, 1, 0, &actor, ans) < 0 ||
	    (has_status = body_str(j, "status", 32, 0, 0, &status, ans)) < 0)
		goto out;
	/* "assignee": null or "" unassigns. */
	has_assignee = json_object_get(j, "assignee") != NULL;
	if (body_str(j, "assignee", SOC_MAX_NAME, 0, 1, &assignee, ans) < 0)
		goto out;
	if (!has_status && !has_assignee) {
		fail(ans, 400, "bad body", NULL, 0,
		     "nothing to change: give status and/or assignee");
		goto out;
	}
	if (has_status) {
		if (soc_status_parse(status, strlen(status), &st) != 0) {
			fail(ans, 400, "bad body", "status", 6,
			     "must be new, acknowledged, resolved or false_positive");
			goto out;
		}
		u.status = &st;
	}
	u.actor = actor;
	u.assignee = has_assignee ? (assignee ? assignee : "") : NULL;
	rc = soc_incident_update(db, rq->target.id, &u, why, sizeof(why));
	if (rc == M_EINVAL) {
		fail(ans, 409, "conflict", "status", 6, why[0] ? why : "not allowed");
		goto out;
	}
	if (rc == 0)
		rc = soc_incident_json(db, rq->target.id, DEFAULT_INCIDENT_ALERTS,
				       &ans->body);
	if (rc != 0) {
		buf_reset(&ans->body);
		fail_rc(ans, rc, "no such incident");
		goto out;
	}
	ans->status = 200;
out:
	json_decref(j);
}

/* POST a comment: author and text required, 201 with the new id. */
static void do_comment(struct soc_db *db, const struct api_soc_request *rq,
		       struct api_soc_answer *ans)
{
	static const char *const keys[] = { "author", "text", NULL };
	const char *author, *text;
	int64_t cid = 0;
	json_t *j;
	int rc;

	if (parse_body(rq, &j, ans) != 0)
		return;
	if (body_only(j, keys, ans) != 0 ||
	    body_str(j, "author", SOC_MAX_NAME, 1, 0, &author, ans) < 0 ||
	    body_str(j, "text", SOC_MAX_COMMENT, 1, 0, &text, ans) < 0)
		goto out;
	rc = soc_incident_comment(db, rq->target.id, author, text, &cid);
	if (rc == M_ELIMIT) {
		fail(ans, 409, "conflict", NULL, 0,
		     "this incident has the most comments it may have (1000)");
		goto out;
	}
	if (rc != 0) {
		fail_rc(ans, rc, "no such incident");
		goto out;
	}
	if (buf_printf(&ans->body, "{\"id\":%lld,\"incident_id\":%lld}\n",
		       (long long)cid, (long long)rq->target.id) != 0) {
		fail_rc(ans, M_ENOMEM, "");
		goto out;
	}
	ans->status = 201;
out:
	json_decref(j);
}

void api_soc_handle(struct soc_db *db, const struct api_soc_request *rq,
		    struct api_soc_answer *ans)
{
	enum api_soc_route r = rq->target.route;
	struct soc_params sp;
	int rc = 0;

	ans->status = 0;
	ans->error = NULL;
	ans->param[0] = '\0';
	ans->detail[0] = '\0';
	if (db == NULL) {
		fail(ans, 503, "unavailable", NULL, 0, "the SOC back-end is not running");
		return;
	}
	if ((r == API_SOC_ALERT || r == API_SOC_INCIDENT || r == API_SOC_COMMENTS) &&
	    rq->target.id <= 0) {
		fail(ans, 400, "bad parameter", "id", 2,
		     "expected a positive integer id in the path");
		return;
	}
	if (parse_params(rq, &sp, ans) != 0)
		return;
	switch (r) {
	case API_SOC_ALERTS: {
		struct soc_alert_query q = {
			.from_us = sp.from_us, .to_us = sp.to_us,
			.rule_id = sp.has_rule ? sp.rule : NULL,
			.level_mask = sp.level_mask, .incident_id = sp.incident_id,
			.limit = sp.limit, .offset = sp.offset,
		};
		rc = soc_alerts_json(db, &q, &ans->body);
		break;
	}
	case API_SOC_ALERT:
		rc = soc_alert_json(db, rq->target.id, &ans->body);
		break;
	case API_SOC_INCIDENTS: {
		struct soc_incident_query q = {
			.status_mask = sp.status_mask, .severity_mask = sp.level_mask,
			.assignee = sp.has_assignee ? sp.assignee : NULL,
			.rule_id = sp.has_rule ? sp.rule : NULL,
			.from_us = sp.from_us, .to_us = sp.to_us,
			.limit = sp.limit, .offset = sp.offset,
		};
		rc = soc_incidents_json(db, &q, &ans->body);
		break;
	}
	case API_SOC_INCIDENT:
		if (strcmp(rq->method, "PATCH") == 0) {
			do_patch(db, rq, ans);
			return;
		}
		rc = soc_incident_json(db, rq->target.id, sp.n_alerts, &ans->body);
		break;
	case API_SOC_COMMENTS:
		do_comment(db, rq, ans);
		return;
	default:
		fail(ans, 404, "not found", NULL, 0, "no such resource");
		return;
	}
	if (rc != 0) {
		buf_reset(&ans->body);
		fail_rc(ans, rc, r == API_SOC_ALERT ? "no such alert" : "no such incident");
		return;
	}
	ans->status = 200;
}
