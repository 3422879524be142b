/*
 * The DDoS routes of the HTTP API (api_ddos.h): attacks from the history,
 * top talkers and the exporters' telemetry health from the collector, and
 * manual mitigations through the mitigation manager.
 *
 * Why it is a pure function of the request: the query string and the JSON
 * body are hostile input, read here without an HTTP library, as in
 * api_soc.c; every parameter is checked and bounded, unknown parameters and
 * body fields are refused, and every error names what was wrong. The
 * mitigation calls block for at most one back-end command
 * (mitigation.command_timeout); they run on the API's own threads.
 */
#include "api/api_ddos.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "api/api_params.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "ddos/attack_db.h"
#include "ddos/ddos_conf.h"
#include "ddos/mitig.h"

#define MAX_DURATION ((int64_t)366 * 86400)

enum api_ddos_route api_ddos_match(const char *path, struct api_ddos_target *t)
{
	static const char base[] = "/api/v1/ddos/";
	const char *rest;

	t->route = API_DDOS_NONE;
	t->id = 0;
	if (strncmp(path, base, sizeof(base) - 1) != 0)
		return API_DDOS_NONE;
	rest = path + sizeof(base) - 1;
	if (strcmp(rest, "attacks") == 0)
		return t->route = API_DDOS_ATTACKS;
	if (strcmp(rest, "top") == 0)
		return t->route = API_DDOS_TOP;
	if (strcmp(rest, "mitigations") == 0)
		return t->route = API_DDOS_MITIGATIONS;
	if (strcmp(rest, "exporters") == 0)
		return t->route = API_DDOS_EXPORTERS;
	if (strncmp(rest, "attacks/", 8) == 0 && rest[8] && !strchr(rest + 8, '/')) {
		t->id = api_parse_id(rest + 8, strnlen(rest + 8, 64));
		return t->route = API_DDOS_ATTACK;
	}
	return API_DDOS_NONE;
}

int api_ddos_method_ok(enum api_ddos_route r, const char *method)
{
	int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	if (r == API_DDOS_MITIGATIONS)
		return get || strcmp(method, "POST") == 0 || strcmp(method, "DELETE") == 0;
	return r != API_DDOS_NONE && get;
}

const char *api_ddos_allow(enum api_ddos_route r)
{
	return r == API_DDOS_MITIGATIONS ? "GET, HEAD, POST, DELETE" : "GET, HEAD";
}

int api_ddos_takes_body(enum api_ddos_route r, const char *method)
{
	return r == API_DDOS_MITIGATIONS && strcmp(method, "POST") == 0;
}

/* ---- answers ---- */

static void fail(struct api_soc_answer *ans, unsigned status, const char *error,
		 const char *param, const char *detail)
{
	size_t n = param ? strlen(param) : 0;

	buf_reset(&ans->body);
	ans->status = status;
	ans->error = error;
	if (n > sizeof(ans->param) - 1)
		n = sizeof(ans->param) - 1;
	memcpy(ans->param, param ? param : "", n);
	ans->param[n] = '\0';
	n = strlen(detail);
	if (n > sizeof(ans->detail) - 1)
		n = sizeof(ans->detail) - 1;
	memcpy(ans->detail, detail, n);
	ans->detail[n] = '\0';
}

static void bad_param(struct api_soc_answer *ans, const struct api_soc_param *p,
		      const char *detail)
{
	char name[129];
	size_t n = p->name_len < sizeof(name) - 1 ? p->name_len : sizeof(name) - 1;

	memcpy(name, p->name, n);
	name[n] = '\0';
	fail(ans, 400, "bad parameter", name, detail);
}

static void fail_rc(struct api_soc_answer *ans, int rc, const char *what)
{
	if (rc == M_ENOTFOUND)
		fail(ans, 404, "not found", NULL, what);
	else if (rc == M_EAGAIN || rc == M_ECLOSED)
		fail(ans, 503, "unavailable", NULL, "the DDoS collector is busy or stopping; try again");
	else {
		log_msg(LOG_ERROR, "api", "event=ddos_failed err=%s", err_str(rc));
		fail(ans, 500, "internal error", NULL, "the DDoS history or mitigation database failed");
	}
}

/* ---- query parameters ---- */

enum {
	P_ACTIVE = 1, P_FROM = 2, P_TO = 4, P_TARGET = 8, P_GROUP = 16, P_LIMIT = 32,
	P_OFFSET = 64, P_KEY = 128, P_ACTION = 256, P_EXPORTER = 512,
};

static const struct api_param_name param_names[] = {
	{ "active", P_ACTIVE }, { "from", P_FROM }, { "to", P_TO }, { "target", P_TARGET },
	{ "group", P_GROUP }, { "limit", P_LIMIT }, { "offset", P_OFFSET }, { "key", P_KEY },
	{ "action", P_ACTION }, { "exporter", P_EXPORTER },
};

struct ddos_params {
	unsigned seen;
	int active;
	int64_t from_s, to_s;
	uint32_t limit;
	uint64_t offset;
	char target[64];        /* normalised */
	struct flow_ip ip;      /* the target as an address (top) */
	struct flow_ip exporter;
	struct mitig_prefix pfx;   /* the target as a prefix (withdraw) */
	char group[128];
	char key[MITIG_KEY_MAX];
	enum mitig_action action;
};

static unsigned allowed_params(const struct api_ddos_request *rq)
{
	switch (rq->target.route) {
	case API_DDOS_ATTACKS:
		return P_ACTIVE | P_FROM | P_TO | P_TARGET | P_GROUP | P_LIMIT | P_OFFSET;
	case API_DDOS_TOP:
		return P_TARGET;
	case API_DDOS_EXPORTERS:
		return P_EXPORTER | P_LIMIT | P_OFFSET;
	case API_DDOS_MITIGATIONS:
		return strcmp(rq->method, "DELETE") == 0 ? P_KEY | P_TARGET | P_ACTION : 0;
	default:
		return 0;
	}
}

/* "203.0.113.10", "2001:db8::1", "203.0.113.0/24": the canonical text the
 * history uses (a host without its length), the address and the prefix. */
static int parse_target(const char *v, size_t n, struct ddos_params *dp)
{
	char s[80];
	struct ddos_pfx p;

	if (n >= sizeof(s))
		return M_EINVAL;
	memcpy(s, v, n);
	s[n] = '\0';
	if (ddos_pfx_parse(s, &p) < 0 || mitig_prefix_parse(s, &dp->pfx) < 0)
		return M_EINVAL;
	memset(&dp->ip, 0, sizeof(dp->ip));
	memcpy(dp->ip.a, p.a, 16);
	dp->ip.family = p.v4 ? FLOW_IPV4 : FLOW_IPV6;
	if (p.len == 128)
		flow_ip_str(&dp->ip, dp->target, sizeof(dp->target));
	else
		ddos_pfx_str(&p, dp->target, sizeof(dp->target));
	return 0;
}

static int one_param(struct ddos_params *dp, unsigned allowed, const struct api_soc_param *p,
		     struct api_soc_answer *ans)
{
	const char *v = p->value ? p->value : "";
	size_t n = p->value ? p->value_len : 0;
	const char *why;
	unsigned bit;
	uint64_t u;
	int64_t t;

	why = api_param_check(param_names, sizeof(param_names) / sizeof(param_names[0]), allowed,
			      dp->seen, p->name, p->name_len, p->value, p->value_len, &bit);
	if (why) {
		bad_param(ans, p, why);
		return M_EINVAL;
	}
	if (n == 0)
		return 0;   /* an empty form field: absent */
	dp->seen |= bit;
	switch (bit) {
	case P_ACTIVE:
		if (api_is(v, n, "true") || api_is(v, n, "1"))
			dp->active = 1;
		else if (api_is(v, n, "false") || api_is(v, n, "0"))
			dp->active = -1;
		else {
			bad_param(ans, p, "expected true or false");
			return M_EINVAL;
		}
		return 0;
	case P_FROM:
	case P_TO:
		if (api_parse_time(v, n, &t) != 0) {
			bad_param(ans, p, "expected an RFC 3339 time (2024-05-01T12:00:00Z) or epoch seconds or milliseconds");
			return M_EINVAL;
		}
		if (bit == P_FROM)
			dp->from_s = t / 1000000;
		else
			dp->to_s = (t + 999999) / 1000000;
		return 0;
	case P_TARGET:
		if (parse_target(v, n, dp) < 0) {
			bad_param(ans, p, "expected an IPv4 or IPv6 address or prefix (203.0.113.10, 203.0.113.0/24)");
			return M_EINVAL;
		}
		return 0;
	case P_GROUP:
		if (n >= sizeof(dp->group)) {
			bad_param(ans, p, "longer than 127 bytes");
			return M_EINVAL;
		}
		memcpy(dp->group, v, n);
		dp->group[n] = '\0';
		return 0;
	case P_LIMIT:
		if (api_parse_uint(v, n, API_MAX_LIMIT, &u) || u == 0) {
			bad_param(ans, p, "expected an integer from 1 to 1000");
			return M_EINVAL;
		}
		dp->limit = (uint32_t)u;
		return 0;
	case P_OFFSET:
		if (api_parse_uint(v, n, API_MAX_OFFSET, &u)) {
			bad_param(ans, p, "expected an integer from 0 to 1000000");
			return M_EINVAL;
		}
		dp->offset = u;
		return 0;
	case P_EXPORTER: {
		char s[FLOW_IP_STRLEN];
		if (n >= sizeof(s)) {
			bad_param(ans, p, "expected an IPv4 or IPv6 address");
			return M_EINVAL;
		}
		memcpy(s, v, n);
		s[n] = '\0';
		if (flow_ip_parse(&dp->exporter, s) < 0) {
			bad_param(ans, p, "expected an IPv4 or IPv6 address");
			return M_EINVAL;
		}
		return 0;
	}
	case P_KEY:
		if (n >= sizeof(dp->key)) {
			bad_param(ans, p, "longer than a mitigation key can be");
			return M_EINVAL;
		}
		memcpy(dp->key, v, n);
		dp->key[n] = '\0';
		return 0;
	case P_ACTION: {
		char s[32];
		if (n >= sizeof(s)) {
			bad_param(ans, p, "expected blackhole, flowspec-discard or flowspec-ratelimit");
			return M_EINVAL;
		}
		memcpy(s, v, n);
		s[n] = '\0';
		if (mitig_action_parse(s, &dp->action) < 0) {
			bad_param(ans, p, "expected blackhole, flowspec-discard or flowspec-ratelimit");
			return M_EINVAL;
		}
		return 0;
	}
	}
	return 0;
}

static int parse_params(const struct api_ddos_request *rq, struct ddos_params *dp,
			struct api_soc_answer *ans)
{
	unsigned allowed = allowed_params(rq);

	memset(dp, 0, sizeof(*dp));
	dp->limit = API_DEFAULT_LIMIT;
	if (rq->n_params > API_MAX_PARAMS) {
		fail(ans, 400, "bad parameter", NULL, "too many query parameters (at most 64)");
		return M_EINVAL;
	}
	for (size_t i = 0; i < rq->n_params; i++)
		if (one_param(dp, allowed, &rq->params[i], ans) != 0)
			return M_EINVAL;
	if (dp->from_s && dp->to_s && dp->from_s > dp->to_s) {
		fail(ans, 400, "bad parameter", "from", "from is later than to");
		return M_EINVAL;
	}
	return 0;
}

/* ---- top talkers ---- */

static int put_num(struct buf *b, double v)
{
	return buf_printf(b, "%.0f", isfinite(v) ? v : 0);
}

static int put_view(struct buf *b, const struct ddos_target_view *v)
{
	char ip[FLOW_IP_STRLEN];
	int r, n = 0;

	r = buf_printf(b, "{\"second\":%lld,\"bps\":", (long long)v->second);
	r = r ? r : put_num(b, v->cls[DDOS_C_TOTAL].bps);
	r = r ? r : buf_puts(b, ",\"pps\":");
	r = r ? r : put_num(b, v->cls[DDOS_C_TOTAL].pps);
	r = r ? r : buf_puts(b, ",\"fps\":");
	r = r ? r : put_num(b, v->cls[DDOS_C_TOTAL].fps);
	r = r ? r : buf_printf(b, ",\"detailed\":%s,\"in_attack\":%s,\"over\":%s",
			       v->detailed ? "true" : "false", v->in_attack ? "true" : "false",
			       v->over ? "true" : "false");
	if (r == 0 && v->kind == DDOS_T_HOST) {
		r = buf_puts(b, ",\"baseline_bps\":");
		r = r ? r : put_num(b, v->base_bps);
		r = r ? r : buf_puts(b, ",\"baseline_pps\":");
		r = r ? r : put_num(b, v->base_pps);
	}
	r = r ? r : buf_puts(b, ",\"classes\":{");
	for (int c = 1; r == 0 && v->detailed && c < DDOS_C_N; c++) {
		const struct ddos_rates *x = &v->cls[c];
		if (x->bps <= 0 && x->pps <= 0 && x->fps <= 0)
			continue;
		r = buf_printf(b, "%s\"%s\":{\"bps\":", n++ ? "," : "", ddos_class_key(c));
		r = r ? r : put_num(b, x->bps);
		r = r ? r : buf_puts(b, ",\"pps\":");
		r = r ? r : put_num(b, x->pps);
		r = r ? r : buf_puts(b, ",\"fps\":");
		r = r ? r : put_num(b, x->fps);
		r = r ? r : buf_putc(b, '}');
	}
	r = r ? r : buf_puts(b, "},\"top_sources\":[");
	for (size_t i = 0; r == 0 && i < v->nsrc && i < DDOS_TOP_SRC; i++) {
		r = buf_printf(b, "%s{\"ip\":\"%s\",\"bytes\":", i ? "," : "",
			       flow_ip_str(&v->src[i].ip, ip, sizeof(ip)));
		r = r ? r : put_num(b, v->src[i].bytes);
		r = r ? r : buf_putc(b, '}');
	}
	r = r ? r : buf_puts(b, "],\"top_ports\":[");
	for (size_t i = 0; r == 0 && i < v->nport && i < DDOS_TOP_PORT; i++) {
		r = buf_printf(b, "%s{\"port\":%u,\"protocol\":%u,\"bytes\":", i ? "," : "",
			       v->port[i].port, v->port[i].proto);
		r = r ? r : put_num(b, v->port[i].bytes);
		r = r ? r : buf_putc(b, '}');
	}
	return r ? r : buf_puts(b, "]}");
}

static int put_jstr(struct buf *b, const char *s)
{
	int r = buf_putc(b, '"');

	r = r ? r : buf_json_escape(b, s ? s : "", s ? strlen(s) : 0);
	return r ? r : buf_putc(b, '"');
}

static void do_top(const struct api_ddos_ctx *ctx, const struct ddos_params *dp,
		   struct api_soc_answer *ans)
{
	struct ddos_top *t;
	struct buf *b = &ans->body;
	char ip[FLOW_IP_STRLEN];
	int rc;

	if (!(dp->seen & P_TARGET)) {
		fail(ans, 400, "bad parameter", "target", "required: a protected address");
		return;
	}
	if (!ctx->top) {
		fail(ans, 503, "unavailable", NULL, "the DDoS collector is not running");
		return;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		fail(ans, 503, "unavailable", NULL, "out of memory; try again");
		return;
	}
	rc = ctx->top(ctx->top_arg, &dp->ip, t);
	if (rc == M_ENOTFOUND) {
		fail(ans, 404, "not found", "target",
		     "no traffic to this address is tracked (it is in no protected group, or nothing was seen lately)");
		goto out;
	}
	if (rc != 0) {
		fail_rc(ans, rc, "");
		goto out;
	}
	rc = buf_printf(b, "{\"target\":\"%s\",\"group\":", flow_ip_str(&dp->ip, ip, sizeof(ip)));
	rc = rc ? rc : put_jstr(b, t->group);
	rc = rc ? rc : buf_puts(b, ",\"host\":");
	rc = rc ? rc : (t->has_host ? put_view(b, &t->host) : buf_puts(b, "null"));
	rc = rc ? rc : buf_puts(b, ",\"prefix\":");
	if (rc == 0 && t->has_prefix) {
		rc = buf_puts(b, "{\"prefix\":");
		rc = rc ? rc : put_jstr(b, t->prefix_str);
		rc = rc ? rc : buf_puts(b, ",\"traffic\":");
		rc = rc ? rc : put_view(b, &t->prefix);
		rc = rc ? rc : buf_putc(b, '}');
	} else if (rc == 0) {
		rc = buf_puts(b, "null");
	}
	rc = rc ? rc : buf_puts(b, ",\"group_traffic\":");
	rc = rc ? rc : (t->has_group ? put_view(b, &t->grp) : buf_puts(b, "null"));
	rc = rc ? rc : buf_puts(b, ",\"attacks\":[");
	for (size_t i = 0; rc == 0 && i < t->nattacks; i++) {
		rc = buf_printf(b, "%s{\"attack_id\":", i ? "," : "");
		rc = rc ? rc : put_jstr(b, t->attacks[i].id);
		rc = rc ? rc : buf_puts(b, ",\"target\":");
		rc = rc ? rc : put_jstr(b, t->attacks[i].target);
		rc = rc ? rc : buf_puts(b, ",\"summary\":");
		rc = rc ? rc : put_jstr(b, t->attacks[i].summary);
		rc = rc ? rc : buf_putc(b, '}');
	}
	rc = rc ? rc : buf_puts(b, "]}\n");
	if (rc != 0)
		fail_rc(ans, M_EIO, "");
	else
		ans->status = 200;
out:
	free(t);
}

/* ---- exporters ---- */

/* "2026-11-26T02:57:36.125Z", or null for no time. */
static int put_time_ms(struct buf *b, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char out[32];

	if (ms <= 0 || !gmtime_r(&t, &tm) || !strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%S", &tm))
		return buf_puts(b, "null");
	return buf_printf(b, "\"%s.%03dZ\"", out, (int)(ms % 1000));
}

/* The export's own name of its domain: v5 engine, v9 source id, IPFIX
 * observation domain, sFlow sub-agent. */
static int put_domain(struct buf *b, const struct ddos_exporter_info *x)
{
	switch (x->format) {
	case FLOW_FMT_NF5:
		return buf_printf(b, ",\"engine_type\":%u,\"engine_id\":%u", (x->domain >> 8) & 0xff,
				  x->domain & 0xff);
	case FLOW_FMT_NF9:
		return buf_printf(b, ",\"source_id\":%u", x->domain);
	case FLOW_FMT_IPFIX:
		return buf_printf(b, ",\"observation_domain\":%u", x->domain);
	default:
		return buf_printf(b, ",\"sub_agent\":%u", x->domain);
	}
}

static int put_exporter(struct buf *b, const struct ddos_exporter_info *x)
{
	char ip[FLOW_IP_STRLEN], lost[24];
	int rc;

	snprintf(lost, sizeof(lost), "%llu", (unsigned long long)x->lost);
	rc = buf_printf(b, "{\"exporter\":\"%s\",\"listener\":\"%s\",\"protocol\":\"%s\","
			"\"domain\":%u", flow_ip_str(&x->exporter, ip, sizeof(ip)),
			x->listener ? x->listener : "", ddos_exporter_protocol(x->format), x->domain);
	rc = rc ? rc : put_domain(b, x);
	rc = rc ? rc : buf_printf(b, ",\"datagrams\":%llu,\"records\":%llu,\"records_lost\":%s,"
				  "\"datagrams_lost\":%s,\"datagrams_late\":%llu,"
				  "\"sequence_resets\":%llu,\"last_seen\":",
				  (unsigned long long)x->datagrams, (unsigned long long)x->records,
				  x->lost_records ? lost : "null", x->lost_records ? "null" : lost,
				  (unsigned long long)x->late, (unsigned long long)x->resets);
	rc = rc ? rc : put_time_ms(b, x->last_ms);
	if (rc == 0 && x->sampling)
		rc = buf_printf(b, ",\"sampling\":%u,\"sampling_default\":%s", x->sampling,
				x->sampling_default ? "true" : "false");
	else if (rc == 0)
		rc = buf_puts(b, ",\"sampling\":null,\"sampling_default\":null");
	if (rc == 0 && x->templates >= 0)
		rc = buf_printf(b, ",\"templates\":%d", x->templates);
	else if (rc == 0)
		rc = buf_puts(b, ",\"templates\":null");
	if (rc == 0 && x->has_timing)
		rc = buf_printf(b, ",\"longest_record_ms\":%lld,\"long_active_timeout\":%s,"
				"\"records_moved\":%llu}", (long long)x->longest_record_ms,
				x->long_timeout ? "true" : "false",
				(unsigned long long)x->records_moved);
	else if (rc == 0)
		rc = buf_puts(b, ",\"longest_record_ms\":null,\"long_active_timeout\":null,"
			      "\"records_moved\":null}");
	return rc;
}

static int same_ip(const struct flow_ip *a, const struct flow_ip *b)
{
	return a->family == b->family && memcmp(a->a, b->a, 16) == 0;
}

static void do_exporters(const struct api_ddos_ctx *ctx, const struct ddos_params *dp,
			 struct api_soc_answer *ans)
{
	struct ddos_exporter_info *v = NULL;
	struct buf *b = &ans->body;
	size_t n = 0, total = 0, shown = 0;
	int rc;

	if (!ctx->exporters) {
		fail(ans, 503, "unavailable", NULL, "the DDoS collector is not running");
		return;
	}
	rc = ctx->exporters(ctx->exporters_arg, &v, &n);
	if (rc == M_ENOMEM) {
		fail(ans, 503, "unavailable", NULL, "out of memory; try again");
		return;
	}
	if (rc != 0) {
		fail_rc(ans, rc, "");
		return;
	}
	for (size_t i = 0; i < n; i++)
		total += !(dp->seen & P_EXPORTER) || same_ip(&v[i].exporter, &dp->exporter);
	rc = buf_printf(b, "{\"total\":%zu,\"limit\":%u,\"offset\":%llu,\"exporters\":[", total,
			dp->limit, (unsigned long long)dp->offset);
	for (size_t i = 0, k = 0; rc == 0 && i < n && shown < dp->limit; i++) {
		if ((dp->seen & P_EXPORTER) && !same_ip(&v[i].exporter, &dp->exporter))
			continue;
		if (k++ < dp->offset)
			continue;
		rc = shown++ ? buf_putc(b, ',') : 0;
		rc = rc ? rc : put_exporter(b, &v[i]);
	}
	rc = rc ? rc : buf_puts(b, "]}\n");
	free(v);
	if (rc != 0)
		fail_rc(ans, M_EIO, "");
	else
		ans->status = 200;
}

/* ---- mitigations ---- */

static int put_time(struct buf *b, int64_t s)
{
	time_t t = (time_t)s;
	struct tm tm;
	char out[32];

	if (s <= 0 || !gmtime_r(&t, &tm) || !strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return buf_puts(b, "null");
	return buf_printf(b, "\"%s\"", out);
}

static int put_entry(struct buf *b, const struct mitig_entry *e)
{
	const struct mitig_rule *r = &e->rule;
	char pfx[64];
	int rc;

	rc = buf_puts(b, "{\"key\":");
	rc = rc ? rc : put_jstr(b, e->key);
	rc = rc ? rc : buf_printf(b, ",\"action\":\"%s\",\"target\":\"%s\",\"protocol\":%u,"
				  "\"source_ports\":[", mitig_action_name(r->action),
				  mitig_prefix_str(&r->dst, pfx, sizeof(pfx)), r->proto);
	for (size_t i = 0; rc == 0 && i < r->nsport; i++)
		rc = buf_printf(b, "%s%u", i ? "," : "", r->sport[i]);
	rc = rc ? rc : buf_puts(b, "]");
	if (rc == 0 && r->len_max)
		rc = buf_printf(b, ",\"length\":[%u,%u]", r->len_min, r->len_max);
	if (rc == 0 && r->action == MITIG_RATELIMIT)
		rc = buf_printf(b, ",\"rate\":%llu", (unsigned long long)r->rate);
	rc = rc ? rc : buf_puts(b, ",\"reason\":");
	rc = rc ? rc : put_jstr(b, e->reason);
	rc = rc ? rc : buf_puts(b, ",\"attack_id\":");
	rc = rc ? rc : put_jstr(b, e->attack_id);
	rc = rc ? rc : buf_printf(b, ",\"manual\":%s,\"dry_run\":%s,\"state\":\"%s\",\"created\":",
				  e->manual ? "true" : "false", e->dry_run ? "true" : "false",
				  e->state == MITIG_HOLD ? "hold" : "active");
	rc = rc ? rc : put_time(b, e->created);
	rc = rc ? rc : buf_puts(b, ",\"updated\":");
	rc = rc ? rc : put_time(b, e->updated);
	rc = rc ? rc : buf_puts(b, ",\"expires\":");
	rc = rc ? rc : put_time(b, e->expires);
	rc = rc ? rc : buf_printf(b, ",\"announced\":%s,\"last_error\":",
				  e->announced ? "true" : "false");
	rc = rc ? rc : put_jstr(b, e->last_error);
	return rc ? rc : buf_putc(b, '}');
}

static void do_list(const struct api_ddos_ctx *ctx, struct api_soc_answer *ans)
{
	struct mitig_entry *e = NULL;
	size_t n = 0;
	int rc = mitig_list(ctx->mitig, &e, &n);

	if (rc != 0) {
		fail_rc(ans, rc, "");
		return;
	}
	rc = buf_printf(&ans->body, "{\"total\":%zu,\"mitigations\":[", n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = i ? buf_putc(&ans->body, ',') : 0;
		rc = rc ? rc : put_entry(&ans->body, &e[i]);
	}
	rc = rc ? rc : buf_puts(&ans->body, "]}\n");
	free(e);
	if (rc != 0)
		fail_rc(ans, M_EIO, "");
	else
		ans->status = 200;
}

static void do_withdraw(const struct api_ddos_ctx *ctx, const struct ddos_params *dp,
			struct api_soc_answer *ans)
{
	size_t n = 0;
	int rc;

	if (!(dp->seen & (P_KEY | P_TARGET)) || (dp->seen & P_KEY && dp->seen & P_TARGET)) {
		fail(ans, 400, "bad parameter", NULL, "give key=KEY or target=PREFIX (with action=)");
		return;
	}
	if ((dp->seen & P_KEY) && (dp->seen & P_ACTION)) {
		fail(ans, 400, "bad parameter", "action", "action goes with target, not key");
		return;
	}
	rc = mitig_withdraw(ctx->mitig, dp->seen & P_KEY ? dp->key : NULL,
			    dp->seen & P_TARGET ? &dp->pfx : NULL,
			    dp->seen & P_ACTION ? dp->action : 0, clock_now_us() / 1000000, &n);
	if (rc == M_ENOTFOUND) {
		fail(ans, 404, "not found", NULL, "no mitigation matches");
		return;
	}
	if (rc != 0 && rc != M_EIO) {
		fail_rc(ans, rc, "");
		return;
	}
	if (buf_printf(&ans->body, "{\"withdrawn\":%zu%s}\n", n,
		       rc == M_EIO ? ",\"detail\":\"the back-end failed; retried\"" : "") != 0) {
		fail_rc(ans, M_EIO, "");
		return;
	}
	ans->status = 200;
}

/* "90", "90s", "15m", "2h", "1d" → seconds; -1 when it is none. */
static int64_t parse_duration(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	int64_t mult = 1;

	if (end == s || !isfinite(v) || v < 0)
		return -1;
	if (*end == 's')
		end++;
	else if (*end == 'm')
		mult = 60, end++;
	else if (*end == 'h')
		mult = 3600, end++;
	else if (*end == 'd')
		mult = 86400, end++;
	if (*end || v * (double)mult > (double)MAX_DURATION)
		return -1;
	return (int64_t)(v * (double)mult);
}

/* Reads the POST body into rq; 0, or M_EINVAL with ans filled. */
static int mitigation_body(const struct api_ddos_request *r, struct mitig_request *rq,
			   struct api_soc_answer *ans)
{
	static const char *const keys[] = { "target", "action", "protocol", "source_ports",
					    "length", "rate", "duration", "reason", "dry_run", NULL };
	json_error_t jerr;
	json_t *j, *v;
	const char *k;
	char why[224];
	int rc = M_EINVAL;

	memset(rq, 0, sizeof(*rq));
	if (!r->body || !r->body_len) {
		fail(ans, 400, "bad body", NULL, "a JSON object is required");
		return M_EINVAL;
	}
	j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j || !json_is_object(j)) {
		snprintf(why, sizeof(why), "not a JSON object%s%s", j ? "" : ": ", j ? "" : jerr.text);
		fail(ans, 400, "bad body", NULL, why);
		json_decref(j);
		return M_EINVAL;
	}
	json_object_foreach(j, k, v) {
		int known = 0;
		for (const char *const *p = keys; *p; p++)
			known |= strcmp(k, *p) == 0;
		if (!known) {
			fail(ans, 400, "bad body", k, "unknown field");
			goto out;
		}
	}
	v = json_object_get(j, "target");
	if (!json_is_string(v) || mitig_prefix_parse(json_string_value(v), &rq->rule.dst) < 0) {
		fail(ans, 400, "bad body", "target", "required: an IPv4 or IPv6 address or prefix");
		goto out;
	}
	v = json_object_get(j, "action");
	if (!json_is_string(v) || mitig_action_parse(json_string_value(v), &rq->rule.action) < 0) {
		fail(ans, 400, "bad body", "action",
		     "required: blackhole, flowspec-discard or flowspec-ratelimit");
		goto out;
	}
	if ((v = json_object_get(j, "protocol"))) {
		if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 255)
			rq->rule.proto = (uint8_t)json_integer_value(v);
		else if (!json_is_string(v) || mitig_proto_parse(json_string_value(v), &rq->rule.proto) < 0) {
			fail(ans, 400, "bad body", "protocol", "expected udp, tcp, icmp, ... or 1..255");
			goto out;
		}
	}
	if ((v = json_object_get(j, "source_ports"))) {
		size_t i;
		json_t *x;

		if (!json_is_array(v) || json_array_size(v) > MITIG_MAX_PORTS) {
			fail(ans, 400, "bad body", "source_ports", "expected an array of at most 8 ports");
			goto out;
		}
		json_array_foreach(v, i, x) {
			if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > 65535) {
				fail(ans, 400, "bad body", "source_ports", "ports are integers 1..65535");
				goto out;
			}
			rq->rule.sport[rq->rule.nsport++] = (uint16_t)json_integer_value(x);
		}
	}
	if ((v = json_object_get(j, "length"))) {
		if (!json_is_array(v) || json_array_size(v) != 2 ||
		    !json_is_integer(json_array_get(v, 0)) || !json_is_integer(json_array_get(v, 1)) ||
		    json_integer_value(json_array_get(v, 0)) < 0 ||
		    json_integer_value(json_array_get(v, 1)) > 65535 ||
		    json_integer_value(json_array_get(v, 0)) > json_integer_value(json_array_get(v, 1))) {
			fail(ans, 400, "bad body", "length", "expected [min, max] packet lengths, 0..65535");
			goto out;
		}
		rq->rule.len_min = (uint16_t)json_integer_value(json_array_get(v, 0));
		rq->rule.len_max = (uint16_t)json_integer_value(json_array_get(v, 1));
	}
	if ((v = json_object_get(j, "rate"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			fail(ans, 400, "bad body", "rate", "expected bytes per second, a positive integer");
			goto out;
		}
		rq->rule.rate = (uint64_t)json_integer_value(v);
	}
	if ((v = json_object_get(j, "duration"))) {
		if (json_is_integer(v) && json_integer_value(v) >= 0 &&
		    json_integer_value(v) <= MAX_DURATION)
			rq->duration = json_integer_value(v);
		else if (!json_is_string(v) || (rq->duration = parse_duration(json_string_value(v))) < 0) {
			fail(ans, 400, "bad body", "duration",
			     "expected seconds, or a duration such as 90s, 15m, 2h (at most 366 days)");
			goto out;
		}
	}
	if ((v = json_object_get(j, "reason"))) {
		if (!json_is_string(v) || json_string_length(v) >= sizeof(rq->reason)) {
			fail(ans, 400, "bad body", "reason", "expected a string of at most 255 bytes");
			goto out;
		}
		snprintf(rq->reason, sizeof(rq->reason), "%s", json_string_value(v));
	}
	if ((v = json_object_get(j, "dry_run"))) {
		if (!json_is_boolean(v)) {
			fail(ans, 400, "bad body", "dry_run", "expected true or false");
			goto out;
		}
		rq->dry_run = json_is_true(v);
	}
	if (!rq->reason[0])
		snprintf(rq->reason, sizeof(rq->reason), "manual (API)");
	rq->manual = 1;
	if (mitig_rule_check(&rq->rule, why, sizeof(why)) < 0) {
		fail(ans, 400, "bad body", NULL, why);
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	return rc;
}

static void do_mitigate(const struct api_ddos_ctx *ctx, const struct api_ddos_request *r,
			struct api_soc_answer *ans)
{
	struct mitig_request rq;
	struct mitig_result res;
	int rc;

	if (mitigation_body(r, &rq, ans) != 0)
		return;
	memset(&res, 0, sizeof(res));
	rc = mitig_start(ctx->mitig, &rq, clock_now_us() / 1000000, &res);
	if (rc == M_EINVAL || rc == M_ELIMIT || res.outcome == MITIG_O_REFUSED) {
		fail(ans, 409, "refused", NULL, res.detail[0] ? res.detail : "refused");
		return;
	}
	if (rc != 0 && rc != M_EIO) {
		fail_rc(ans, rc, "");
		return;
	}
	rc = buf_puts(&ans->body, "{\"key\":");
	rc = rc ? rc : put_jstr(&ans->body, res.key);
	rc = rc ? rc : buf_printf(&ans->body, ",\"outcome\":\"%s\",\"detail\":",
				  mitig_outcome_name(res.outcome));
	rc = rc ? rc : put_jstr(&ans->body, res.detail);
	rc = rc ? rc : buf_puts(&ans->body, "}\n");
	if (rc != 0) {
		fail_rc(ans, M_EIO, "");
		return;
	}
	ans->status = res.outcome == MITIG_O_DRY_RUN ? 200 : res.outcome == MITIG_O_FAILED ? 202 : 201;
}

/* ---- dispatch ---- */

void api_ddos_handle(const struct api_ddos_ctx *ctx, const struct api_ddos_request *rq,
		     struct api_soc_answer *ans)
{
	enum api_ddos_route r = rq->target.route;
	struct ddos_params dp;
	int rc;

	ans->status = 0;
	ans->error = NULL;
	ans->param[0] = '\0';
	ans->detail[0] = '\0';
	if (r == API_DDOS_ATTACK && rq->target.id <= 0) {
		fail(ans, 400, "bad parameter", "id", "expected a positive integer id in the path");
		return;
	}
	if (parse_params(rq, &dp, ans) != 0)
		return;
	switch (r) {
	case API_DDOS_ATTACKS: {
		struct attack_query q = {
			.active = dp.active, .from_s = dp.from_s, .to_s = dp.to_s,
			.target = dp.seen & P_TARGET ? dp.target : NULL,
			.group = dp.seen & P_GROUP ? dp.group : NULL,
			.limit = dp.limit, .offset = dp.offset,
		};
		if (!ctx || !ctx->adb) {
			fail(ans, 503, "unavailable", NULL, "DDoS protection is not running");
			return;
		}
		rc = attack_db_list_json(ctx->adb, &q, &ans->body);
		break;
	}
	case API_DDOS_ATTACK:
		if (!ctx || !ctx->adb) {
			fail(ans, 503, "unavailable", NULL, "DDoS protection is not running");
			return;
		}
		rc = attack_db_get_json(ctx->adb, (uint64_t)rq->target.id, &ans->body);
		break;
	case API_DDOS_TOP:
		if (!ctx) {
			fail(ans, 503, "unavailable", NULL, "DDoS protection is not running");
			return;
		}
		do_top(ctx, &dp, ans);
		return;
	case API_DDOS_EXPORTERS:
		if (!ctx) {
			fail(ans, 503, "unavailable", NULL, "DDoS protection is not running");
			return;
		}
		do_exporters(ctx, &dp, ans);
		return;
	case API_DDOS_MITIGATIONS:
		if (!ctx || !ctx->mitig) {
			fail(ans, 503, "unavailable", NULL, "DDoS mitigation is not running");
			return;
		}
		if (strcmp(rq->method, "POST") == 0)
			do_mitigate(ctx, rq, ans);
		else if (strcmp(rq->method, "DELETE") == 0)
			do_withdraw(ctx, &dp, ans);
		else
			do_list(ctx, ans);
		return;
	default:
		fail(ans, 404, "not found", NULL, "no such resource");
		return;
	}
	if (rc != 0) {
		fail_rc(ans, rc, "no such attack");
		return;
	}
	ans->status = 200;
}
