/*
 * The DDoS collector (collect.h): its configuration, what an attack sets
 * off (reports: events, notifications, history, mitigation), the API's
 * requests, reload, and the threads' lifecycle. The threads themselves
 * (receive, decode, hand off, count, judge) are collect_thread.c.
 *
 * How many threads: ddos.threads (default 1). One thread owns everything:
 * the decoders' template state and the detector are not thread-safe, and
 * one core counts millions of records a second (docs/ddos-detection.md).
 * With N threads each owns a shard of the protected space, by destination
 * /24 (/48) (ddos_shard.h): its own sockets (SO_REUSEPORT), decoders and
 * detector; a record decoded on one thread is counted by the thread that
 * owns its destination, handed over through a lock-free ring; a group
 * spanning the shards is judged by thread 0 on the sum of their parts,
 * once a second. Attacks start and end on the thread whose detector holds
 * them, so each thread keeps its own table of attacks in progress and
 * reads its own copy of the configuration in force; attack ids are unique
 * over the threads. Everything the threads hand on goes through a queue
 * that never waits and takes several producers (mitigation worker,
 * pipeline, notifier, attack history): a full queue is counted, never a
 * stall of a receive loop, because a stalled UDP socket loses more in the
 * kernel than a dropped report costs.
 *
 * The API's questions (top talkers, exporters) are asked of the thread
 * that knows (a request slot, a condition variable, an eventfd that wakes
 * it) and answered with a copy; a reload is put in force by each thread
 * between two of its ticks, and the caller waits for all of them.
 */
#include "ddos/collect.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "ddos/attack_db.h"
#include "ddos/capture.h"
#include "ddos/collect_int.h"
#include "ddos/exporters.h"
#include "ddos/flow.h"
#include "detect/notify.h"

/* ---- configuration ---- */

#define CC(f) offsetof(struct ddos_collect_config, f)

const struct conf_keyword ddos_collect_keywords[] = {
	{ "netflow", CONF_ADDR, CC(netflow), 0, 0, "127.0.0.1:2055", 0,
	  "UDP address for NetFlow v5, v9 and IPFIX (one socket, told apart by version); \"\" disables" },
	{ "sflow", CONF_ADDR, CC(sflow), 0, 0, "127.0.0.1:6343", 0,
	  "UDP address for sFlow v5; \"\" disables" },
	{ "udp_rcvbuf", CONF_SIZE, CC(rcvbuf), 0, (int64_t)1 << 30, "32M", 0,
	  "receive buffer of each flow socket (raise net.core.rmem_max to match)" },
	{ "default_sampling", CONF_INT, CC(default_rate), 1, 1 << 24, "1", 0,
	  "1-in-N sampling assumed for an exporter until it announces its rate" },
	{ "receive_clock", CONF_BOOL, CC(recv_clock), 0, 0, "false", 0,
	  "place records by the time they arrive, not the exporter's clock (exporters without NTP)" },
	{ "template_timeout", CONF_DURATION, CC(template_timeout), 0, (int64_t)7 * 86400, "30m", 0,
	  "a NetFlow v9 or IPFIX template not sent again for this long expires (RFC 7011 8.4); 0 = never" },
	{ "capture_interface", CONF_STR, CC(capture_if), 0, 0, "", 0,
	  "mirror-port capture: interface whose packets are counted (AF_PACKET, needs root); \"\" disables" },
	{ "capture_sampling", CONF_INT, CC(capture_sampling), 1, 1 << 24, "1", 0,
	  "take 1 in N packets of the capture interface (chosen at random in the kernel)" },
	{ "capture_ring", CONF_SIZE, CC(capture_ring), 2 << 20, (int64_t)1 << 30, "64M", 0,
	  "memory of the capture ring (1 MiB blocks); raise it when kernel drops are counted" },
	{ "attacks_db", CONF_STR, CC(attacks_db), 0, 0, "", 0,
	  "attack history (SQLite); \"\" = <data_dir>/ddos.db" },
	{ "attack_retention", CONF_DURATION, CC(attack_retention), 0,
	  (int64_t)100 * 365 * 86400, "365d", 0, "ended attacks older than this are deleted; 0 = kept" },
	{ "attack_history", CONF_INT, CC(attack_history), 10, 100000000, "100000", 0,
	  "ended attacks kept at most (the oldest go first)" },
	{ "threads", CONF_INT, CC(threads), 1, DDOS_SHARDS_MAX, "1", 0,
	  "collector threads: each receives, decodes and counts a shard of the protected space"
	  " (by destination /24 and /48); 1 = one thread for everything" },
	CONF_END
};

int ddos_collect_config_load(const struct conf_doc *doc, struct ddos_collect_config *cfg,
			     struct buf *err)
{
	const struct conf_node *sec = NULL;
	const char **skip = NULL;
	size_t n = 0;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	if (doc && doc->root)
		sec = conf_map_get(doc->root, "ddos");
	/* The section is shared with the detector: its keys are left to
	 * ddos_config_load(), which in turn skips ours. */
	if (sec && conf_node_kind(sec) == CONF_NODE_MAP) {
		for (const struct conf_node *k = conf_node_child(sec); k && conf_node_next(k);
		     k = conf_node_next(conf_node_next(k)))
			n++;
		skip = calloc(n + 1, sizeof(*skip));
		if (!skip)
			return M_ENOMEM;
		n = 0;
		for (const struct conf_node *k = conf_node_child(sec); k && conf_node_next(k);
		     k = conf_node_next(conf_node_next(k))) {
			const char *name = conf_node_value(k);
			int ours = 0;

			for (const struct conf_keyword *kw = ddos_collect_keywords; name && kw->name; kw++)
				ours |= strcmp(kw->name, name) == 0;
			if (name && !ours)
				skip[n++] = name;
		}
	}
	r = conf_apply_map(doc, sec, "ddos", ddos_collect_keywords, skip, cfg, err);
	free(skip);
	return r;
}

void ddos_collect_config_free(struct ddos_collect_config *cfg)
{
	if (cfg)
		conf_free(ddos_collect_keywords, cfg);
}

int ddos_collect_config_describe(struct buf *out)
{
	int r = 0;

	for (const struct conf_keyword *k = ddos_collect_keywords; k->name && r == 0; k++) {
		int q = k->type == CONF_STR || k->type == CONF_ADDR;
		r = buf_printf(out, "  # %s\n  %s: %s%s%s\n", k->help, k->name, q ? "\"" : "",
			       k->def ? k->def : "", q ? "\"" : "");
	}
	return r;
}

int ddos_collect_enabled(const struct ddos_collect_config *cfg)
{
	return (cfg->netflow && cfg->netflow[0]) || (cfg->sflow && cfg->sflow[0]) ||
	       (cfg->capture_if && cfg->capture_if[0]);
}

/* ---- the collector ---- */

const char *const ddos_err_kinds[ERR_N] = { "malformed", "unsupported", "limit", "other" };

enum { DROP_PIPELINE, DROP_NOTIFY, DROP_MITIG, DROP_HISTORY };

static int64_t now_ms(void)
{
	return clock_now_us() / 1000;
}
/* ---- pure pieces ---- */

const char *ddos_rate_human(double v, const char *unit, char *out, size_t outsz)
{
	static const char *const pfx[] = { "", "k", "M", "G", "T", "P" };
	int i = 0;

	if (!isfinite(v) || v < 0)
		v = 0;
	while (v >= 999.95 && i < 5) {
		v /= 1000;
		i++;
	}
	snprintf(out, outsz, i && v < 100 ? "%.1f %s%s" : "%.0f %s%s", v, pfx[i], unit);
	return out;
}

static const struct ddos_group_conf *group_of(const struct ddos_config *cfg, const char *name)
{
	for (size_t i = 0; cfg && name && i < cfg->ngroups; i++)
		if (cfg->groups[i].name && strcmp(cfg->groups[i].name, name) == 0)
			return &cfg->groups[i];
	return NULL;
}

static const char *proto_name(uint8_t p, char *out, size_t n)
{
	switch (p) {
	case 1: return "icmp";
	case 6: return "tcp";
	case 17: return "udp";
	case 58: return "icmpv6";
	default:
		snprintf(out, n, "%u", p);
		return out;
	}
}

int ddos_attack_mitigation(const struct ddos_attack *a, const struct ddos_config *cfg,
			   struct mitig_request *rq, char *what, size_t whatsz)
{
	const struct ddos_group_conf *g = group_of(cfg, a->group);
	enum mitig_action act;
	char pfx[64], pn[8], why[128], rate[32];
	int af = a->target.family == FLOW_IPV4 ? 4 : 6;
	size_t o;

	memset(rq, 0, sizeof(*rq));
	if (a->allowlisted) {
		snprintf(what, whatsz, "none: the target is on an allow list");
		return 0;
	}
	if (a->tier <= 0 || !a->tier_name) {
		snprintf(what, whatsz, "none: below every mitigation tier");
		return 0;
	}
	if (mitig_action_parse(a->tier_name, &act) < 0) {
		if (strncasecmp(a->tier_name, "flowspec", 8) != 0) {
			snprintf(what, whatsz, "none: tier '%.64s' names no action", a->tier_name);
			return 0;
		}
		act = MITIG_DISCARD;
	}
	rq->rule.action = act;
	if (mitig_prefix_set(&rq->rule.dst, af, af == 4 ? a->target.a + 12 : a->target.a,
			     a->plen) < 0) {
		snprintf(what, whatsz, "none: no prefix for the target");
		return 0;
	}
	if (act != MITIG_BLACKHOLE) {
		/* FlowSpec and nftables match the vector: the reflectors' source
		 * ports for amplification, else the dominant protocol, once the
		 * detector has established them (the match, not the latest name:
		 * it holds against flapping). */
		if (!a->match_ready) {
			snprintf(what, whatsz, "%s waits: too few records yet to tell the vector (%.0f)",
				 act == MITIG_DISCARD ? "flowspec-discard" : "flowspec-ratelimit",
				 a->records);
			return 0;
		}
		if (a->match_amp) {
			rq->rule.proto = 17;
			for (int i = 0; i < DDOS_VEC_N && rq->rule.nsport < MITIG_MAX_PORTS; i++)
				if (a->match_amp & (1u << i))
					rq->rule.sport[rq->rule.nsport++] = ddos_vectors[i].port;
		} else {
			rq->rule.proto = a->match_proto;
		}
		if (act == MITIG_RATELIMIT) {
			const struct ddos_tier *t = g && a->tier <= (int)g->ntiers ?
				&g->tiers[a->tier - 1] : NULL;
			rq->rule.rate = t && t->bps ? t->bps / 8 : 12500000;
		}
	}
	if (mitig_rule_check(&rq->rule, why, sizeof(why)) < 0) {
		snprintf(what, whatsz, "none: %s", why);
		return 0;
	}
	snprintf(rq->attack_id, sizeof(rq->attack_id), "%s", a->id_str);
	snprintf(rq->reason, sizeof(rq->reason), "%s %.150s, %s", a->id_str, a->summary,
		 ddos_rate_human(a->peak_bps, "bps", rate, sizeof(rate)));
	mitig_prefix_str(&rq->rule.dst, pfx, sizeof(pfx));
	o = (size_t)snprintf(what, whatsz, "%s %s",
			     act == MITIG_BLACKHOLE ? "blackhole" :
			     act == MITIG_DISCARD ? "flowspec-discard" : "flowspec-ratelimit", pfx);
	if (o < whatsz && rq->rule.proto)
		o += (size_t)snprintf(what + o, whatsz - o, " %s",
				      proto_name(rq->rule.proto, pn, sizeof(pn)));
	for (size_t i = 0; o < whatsz && i < rq->rule.nsport; i++)
		o += (size_t)snprintf(what + o, whatsz - o, "%s%u", i ? "," : " sport ",
				      rq->rule.sport[i]);
	if (o < whatsz && act == MITIG_RATELIMIT)
		o += (size_t)snprintf(what + o, whatsz - o, " to %s",
				      ddos_rate_human((double)rq->rule.rate * 8, "bps", rate,
						      sizeof(rate)));
	if (o < whatsz)
		snprintf(what + o, whatsz - o, " (tier %.64s)", a->tier_name);
	return 1;
}

static int put_jstr(struct buf *b, const char *s)
{
	int r = buf_putc(b, '"');

	r = r ? r : buf_json_escape(b, s ? s : "", s ? strlen(s) : 0);
	return r ? r : buf_putc(b, '"');
}

static int put_jtime(struct buf *b, int64_t s)
{
	time_t t = (time_t)s;
	struct tm tm;
	char out[32];

	if (s <= 0 || !gmtime_r(&t, &tm) || !strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return buf_puts(b, "null");
	return buf_printf(b, "\"%s\"", out);
}

static const char *kind_name(int k)
{
	return k == DDOS_T_PREFIX ? "prefix" : k == DDOS_T_GROUP ? "group" : "host";
}

static double finite_or0(double v)
{
	return isfinite(v) ? v : 0;
}

int ddos_attack_event_json(const struct ddos_attack *a, const char *phase, const char *action,
			   int critical, int64_t now, struct buf *out)
{
	time_t t = (time_t)(now / 1000);
	struct tm tm;
	char ts[40], ip[FLOW_IP_STRLEN], rate[32], pn[8];
	int r, start = !strcmp(phase, "start"), end = !strcmp(phase, "end");

	if (!gmtime_r(&t, &tm))
		return M_EINVAL;
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	flow_ip_str(&a->target, ip, sizeof(ip));
	r = buf_printf(out, "{\"@timestamp\":\"%s.%03dZ\",\"event\":{\"module\":\"ddos\","
		       "\"dataset\":\"ddos.attack\",\"kind\":\"alert\",\"category\":\"network\","
		       "\"type\":\"%s\",\"action\":\"ddos-attack-%s\",\"severity\":%d},"
		       "\"message\":", ts, (int)(now % 1000), start || end ? phase : "update",
		       start ? "started" : end ? "ended" : "updated", critical ? 10 : 8);
	if (r == 0) {
		char msg[512];
		snprintf(msg, sizeof(msg), "DDoS attack on %s%s: %s, %s", a->target_str,
			 end ? " ended" : start ? "" : !strcmp(phase, "vector") ? ": vector changed" :
			 !strcmp(phase, "classified") ? " classified" : " escalated",
			 a->summary, ddos_rate_human(a->peak_bps, "bps", rate, sizeof(rate)));
		r = put_jstr(out, msg);
	}
	r = r ? r : buf_printf(out, ",\"destination\":{\"ip\":\"%s\"}", ip);
	if (r == 0 && a->proto)
		r = buf_printf(out, ",\"network\":{\"transport\":\"%s\"}",
			       proto_name(a->proto, pn, sizeof(pn)));
	r = r ? r : buf_printf(out, ",\"rule\":{\"name\":\"DDoS attack\",\"ruleset\":\"ddos\"}"
			       ",\"ddos\":{\"attack_id\":");
	r = r ? r : put_jstr(out, a->id_str);
	r = r ? r : buf_puts(out, ",\"target\":");
	r = r ? r : put_jstr(out, a->target_str);
	r = r ? r : buf_printf(out, ",\"prefix_length\":%u,\"kind\":\"%s\",\"group\":", a->plen,
			       kind_name(a->kind));
	r = r ? r : put_jstr(out, a->group);
	r = r ? r : buf_puts(out, ",\"summary\":");
	r = r ? r : put_jstr(out, a->summary);
	r = r ? r : buf_puts(out, ",\"vectors\":");
	r = r ? r : attack_vectors_json(a, out);
	r = r ? r : buf_puts(out, ",\"trigger\":");
	r = r ? r : put_jstr(out, a->trigger);
	r = r ? r : buf_puts(out, ",\"start\":");
	r = r ? r : put_jtime(out, a->start);
	r = r ? r : buf_puts(out, ",\"end\":");
	r = r ? r : put_jtime(out, a->end);
	r = r ? r : buf_printf(out, ",\"peak_bps\":%.0f,\"peak_pps\":%.0f,\"peak_fps\":%.0f,"
			       "\"bytes\":%.0f,\"packets\":%.0f,\"hosts\":%u,\"tier\":",
			       finite_or0(a->peak_bps), finite_or0(a->peak_pps), finite_or0(a->peak_fps),
			       finite_or0(a->bytes), finite_or0(a->packets), a->hosts);
	r = r ? r : put_jstr(out, a->tier_name ? a->tier_name : "");
	r = r ? r : buf_printf(out, ",\"allowlisted\":%s,\"action\":",
			       a->allowlisted ? "true" : "false");
	r = r ? r : put_jstr(out, action ? action : "");
	r = r ? r : buf_puts(out, ",\"top_sources\":[");
	for (size_t i = 0; r == 0 && i < a->nsrc && i < DDOS_TOP_SRC; i++) {
		flow_ip_str(&a->src[i].ip, ip, sizeof(ip));
		r = buf_printf(out, "%s\"%s\"", i ? "," : "", ip);
	}
	return r ? r : buf_puts(out, "]}}");
}

/* ---- reports: events, notifications, history, mitigation ---- */

static void dropped(struct ddos_collector *c, int what)
{
	metric_add(c->m_dropped[what], 1);
}

static void submit_event_locked(struct ddos_collector *c, const char *json, size_t len)
{
	struct raw_batch *b;

	if (!c->deps.pipe || !c->in)
		return;
	b = raw_batch_new(c->in, 1, EVENT_BATCH_BYTES);
	if (!b || raw_batch_add(b, json, len, "", 0, 0) < 0) {
		raw_batch_free(b);
		dropped(c, DROP_PIPELINE);
		return;
	}
	b->recv_us = clock_now_us();
	if (pipeline_submit(c->deps.pipe, b, 0) < 0) {
		raw_batch_free(b);
		dropped(c, DROP_PIPELINE);
	}
}

static void submit_event(struct ddos_collector *c, const char *json, size_t len)
{
	pthread_mutex_lock(&c->ev_mu);
	if (c->events_open)
		submit_event_locked(c, json, len);
	pthread_mutex_unlock(&c->ev_mu);
}

static int is_critical(const struct ddos_config *dc, const struct ddos_attack *a, int tier)
{
	const struct ddos_group_conf *g = group_of(dc, a->group);
	enum mitig_action act;

	if (tier <= 0 || !g || (size_t)tier > g->ntiers)
		return 0;
	return (size_t)tier == g->ntiers ||
	       (mitig_action_parse(g->tiers[tier - 1].name, &act) == 0 && act == MITIG_BLACKHOLE);
}

static void fmt_utc(int64_t s, char *out, size_t n)
{
	time_t t = (time_t)s;
	struct tm tm;

	if (s <= 0 || !gmtime_r(&t, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, n, "-");
}

static void fmt_duration(int64_t s, char *out, size_t n)
{
	if (s < 0)
		s = 0;
	if (s >= 3600)
		snprintf(out, n, "%lldh%02lldm%02llds", (long long)(s / 3600),
			 (long long)(s / 60 % 60), (long long)(s % 60));
	else if (s >= 60)
		snprintf(out, n, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else
		snprintf(out, n, "%llds", (long long)s);
}

/* phase: as ddos_attack_event_json(); was: the name before, for "vector". */
static void notify_attack(struct ddos_cthread *t, const struct ddos_attack *a,
			  const char *phase, const char *action, const char *was)
{
	struct ddos_collector *c = t->c;
	struct notification n = { 0 };
	char title[NOTIFY_MAX_TITLE], body[4096], bps[32], pps[32], fps[32], peak[112];
	char start[32], end[32], dur[32], srcs[512], ports[256], tier[80], ip[FLOW_IP_STRLEN];
	char pn[8];
	int ended = !strcmp(phase, "end");
	size_t o = 0;

	if (!c->deps.nf)
		return;
	ddos_rate_human(a->peak_bps, "bps", bps, sizeof(bps));
	ddos_rate_human(a->peak_pps, "pps", pps, sizeof(pps));
	ddos_rate_human(a->peak_fps, "flows/s", fps, sizeof(fps));
	snprintf(peak, sizeof(peak), "%s, %s, %s", bps, pps, fps);
	fmt_utc(a->start, start, sizeof(start));
	fmt_utc(a->end, end, sizeof(end));
	fmt_duration((a->end ? a->end : a->last + 1) - a->start, dur, sizeof(dur));
	srcs[0] = '\0';
	for (size_t i = 0; i < a->nsrc && i < 5 && o < sizeof(srcs); i++) {
		double share = a->bytes > 0 ? 100.0 * a->src[i].bytes / a->bytes : 0;
		flow_ip_str(&a->src[i].ip, ip, sizeof(ip));
		o += (size_t)snprintf(srcs + o, sizeof(srcs) - o, "%s%s (%.0f%%)", i ? ", " : "", ip,
				      share > 100 ? 100 : share);
	}
	o = 0;
	ports[0] = '\0';
	for (size_t i = 0; i < a->nport && i < 5 && o < sizeof(ports); i++)
		o += (size_t)snprintf(ports + o, sizeof(ports) - o, "%s%s/%u", i ? ", " : "",
				      proto_name(a->port[i].proto, pn, sizeof(pn)), a->port[i].port);
	snprintf(tier, sizeof(tier), "%s", a->tier_name ? a->tier_name : "none");
	if (ended)
		snprintf(title, sizeof(title), "DDoS attack on %s ended: %s, peak %s", a->target_str,
			 a->summary, bps);
	else if (!strcmp(phase, "start"))
		snprintf(title, sizeof(title), "DDoS attack on %s: %s, %s", a->target_str, a->summary,
			 bps);
	else if (!strcmp(phase, "vector"))
		snprintf(title, sizeof(title), "DDoS attack on %s: vector changed to %s (was %s), %s",
			 a->target_str, a->summary, was ? was : "-", bps);
	else if (!strcmp(phase, "classified"))
		snprintf(title, sizeof(title), "DDoS attack on %s classified: %s, %s", a->target_str,
			 a->summary, bps);
	else
		snprintf(title, sizeof(title), "DDoS attack on %s escalated to %s: %s, %s",
			 a->target_str, tier, a->summary, bps);
	snprintf(body, sizeof(body),
		 "Target: %s (group %s)\nVectors: %s\nPeak: %s\nStarted: %s (%s)\n%s%s%s"
		 "Duration: %s\nTop sources: %s\nTop source ports: %s\nTier: %s\nAction: %s\n"
		 "Details: GET /api/v1/ddos/attacks/%llu\n",
		 a->target_str, a->group ? a->group : "-", a->summary, peak, start, a->trigger,
		 ended ? "Ended: " : "", ended ? end : "", ended ? "\n" : "", dur,
		 srcs[0] ? srcs : "-", ports[0] ? ports : "-", tier, action ? action : "-",
		 (unsigned long long)a->id);
	n.kind = NOTIFY_GENERIC;
	n.severity = is_critical(t->dc, a, a->tier) ? NOTIFY_SEV_CRITICAL : NOTIFY_SEV_HIGH;
	n.title = title;
	n.body = body;
	n.fields[n.nfields++] = (struct notify_field){ "status", ended ? "ended" :
						       !strcmp(phase, "start") ? "started" :
						       !strcmp(phase, "vector") ? "vector_changed" :
						       !strcmp(phase, "classified") ? "classified" : "escalated" };
	n.fields[n.nfields++] = (struct notify_field){ "attack", a->id_str };
	n.fields[n.nfields++] = (struct notify_field){ "target", a->target_str };
	n.fields[n.nfields++] = (struct notify_field){ "group", a->group ? a->group : "" };
	n.fields[n.nfields++] = (struct notify_field){ "vectors", a->summary };
	n.fields[n.nfields++] = (struct notify_field){ "peak_bps", bps };
	n.fields[n.nfields++] = (struct notify_field){ "peak_pps", pps };
	n.fields[n.nfields++] = (struct notify_field){ "peak_fps", fps };
	n.fields[n.nfields++] = (struct notify_field){ "top_sources", srcs };
	n.fields[n.nfields++] = (struct notify_field){ "top_ports", ports };
	n.fields[n.nfields++] = (struct notify_field){ "tier", tier };
	n.fields[n.nfields++] = (struct notify_field){ "action", action ? action : "" };
	n.fields[n.nfields++] = (struct notify_field){ "start", start };
	n.fields[n.nfields++] = (struct notify_field){ "duration", dur };
	if (ended)
		n.fields[n.nfields++] = (struct notify_field){ "end", end };
	if (notifier_submit(c->deps.nf, &n) < 0)
		dropped(c, DROP_NOTIFY);
}

static void report_event(struct ddos_cthread *t, const struct ddos_attack *a,
			 const char *phase, const char *action)
{
	struct ddos_collector *c = t->c;
	struct buf b;

	if (!c->deps.pipe)
		return;
	buf_init(&b, EVENT_BATCH_BYTES - 64);
	if (ddos_attack_event_json(a, phase, action, is_critical(t->dc, a, a->tier), now_ms(), &b) == 0)
		submit_event(c, b.p, b.len);
	else
		dropped(c, DROP_PIPELINE);
	buf_fini(&b);
}

static struct live *live_get(struct ddos_cthread *t, uint64_t id, int make)
{
	struct live *free_slot = NULL;

	for (size_t i = 0; i < t->nlive; i++) {
		if (t->live[i].id == id)
			return &t->live[i];
		if (!t->live[i].id && !free_slot)
			free_slot = &t->live[i];
	}
	if (!make || !free_slot)
		return NULL;
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->id = id;
	return free_slot;
}

/* What mitigate() did. */
enum { MIT_SAME, MIT_FIRST, MIT_TIER, MIT_VECTOR };

/* Asks for the mitigation the attack's tier names: at the start; when the
 * tier is stronger than what was asked before; and when the filter rule
 * it would ask for now is another (the attack's match changed, or was
 * first established after the start), as a replacement of the one asked
 * before (mitig_request.replace: withdrawn once the new one is sent). A
 * blackhole matches no vector: once asked, a new vector changes nothing.
 * Appends what was done to lv->action; returns MIT_*. */
static int mitigate(struct ddos_cthread *t, const struct ddos_attack *a, struct live *lv)
{
	struct ddos_collector *c = t->c;
	struct mitig_request rq;
	char what[ACTION_MAX], key[MITIG_KEY_MAX] = "";
	size_t o;
	int due, kind;

	due = ddos_attack_mitigation(a, t->dc, &rq, what, sizeof(what));
	if (due && !c->deps.mw) {
		snprintf(what, sizeof(what), "none: no mitigation back-end running");
		due = 0;
	}
	if (due && rq.rule.action != MITIG_BLACKHOLE && mitig_rule_key(&rq.rule, key, sizeof(key)) < 0)
		due = 0;
	if (!lv->action[0])
		kind = MIT_FIRST;
	else if (!due)
		return MIT_SAME;
	else if (a->tier > lv->tier)
		/* A tier that rose, or one seen before whose filter had to
		 * wait for a match. */
		kind = a->tier > lv->seen_tier ? MIT_TIER : MIT_VECTOR;
	else if (rq.rule.action != MITIG_BLACKHOLE && !lv->blackhole && strcmp(key, lv->key) != 0)
		kind = MIT_VECTOR;
	else
		return MIT_SAME;
	if (a->tier > lv->seen_tier)
		lv->seen_tier = a->tier;
	if (due) {
		rq.replace = rq.rule.action != MITIG_BLACKHOLE && lv->key[0];
		if (mitig_worker_post_start(c->deps.mw, &rq) < 0) {
			dropped(c, DROP_MITIG);
			o = strlen(what);
			snprintf(what + o, sizeof(what) - o, " [not posted: queue full]");
		} else {
			lv->posted = 1;
			if (t->dry_run) {
				o = strlen(what);
				snprintf(what + o, sizeof(what) - o, " [dry run]");
			}
		}
		if (rq.replace) {
			o = strlen(what);
			snprintf(what + o, sizeof(what) - o, ", replacing %s", lv->key);
		}
		if (a->tier > lv->tier)
			lv->tier = a->tier;
		if (rq.rule.action == MITIG_BLACKHOLE)
			lv->blackhole = 1;
		else
			snprintf(lv->key, sizeof(lv->key), "%s", key);
	}
	if (kind == MIT_FIRST) {
		snprintf(lv->action, sizeof(lv->action), "%s", what);
		return kind;
	}
	o = strlen(lv->action);
	snprintf(lv->action + o, sizeof(lv->action) - o, "; then %s", what);
	return kind;
}

/* The attack's match as the live entry last saw it. */
static void live_seen(struct live *lv, const struct ddos_attack *a)
{
	lv->match_ready = a->match_ready;
	lv->match_amp = a->match_amp;
	lv->match_proto = a->match_proto;
	snprintf(lv->summary, sizeof(lv->summary), "%s", a->summary);
}

static void log_attack(const char *phase, const struct ddos_attack *a, const char *action)
{
	char bps[32], pps[32];

	log_msg(LOG_WARN, "ddos", "event=attack_%s id=%s target=%s group=%s summary=\"%s\""
		" peak_bps=\"%s\" peak_pps=\"%s\" tier=%s action=\"%s\"", phase, a->id_str,
		a->target_str, a->group ? a->group : "-", a->summary,
		ddos_rate_human(a->peak_bps, "bps", bps, sizeof(bps)),
		ddos_rate_human(a->peak_pps, "pps", pps, sizeof(pps)),
		a->tier_name ? a->tier_name : "-", action ? action : "-");
}

static void history(struct ddos_collector *c, const struct ddos_attack *a, int ended,
		    const char *action)
{
	if (c->deps.adb && attack_db_put(c->deps.adb, a, ended, action) < 0)
		dropped(c, DROP_HISTORY);
}

static void on_start(void *arg, const struct ddos_attack *a)
{
	struct ddos_cthread *t = arg;
	struct live *lv = live_get(t, a->id, 1);
	struct live tmp = { 0 };

	if (!lv)
		lv = &tmp;   /* more attacks than slots cannot happen; stay safe */
	mitigate(t, a, lv);
	live_seen(lv, a);
	log_attack("start", a, lv->action);
	report_event(t, a, "start", lv->action);
	notify_attack(t, a, "start", lv->action, NULL);
	history(t->c, a, 0, lv->action);
}

/* An update: a stronger tier escalates; a new match (the vector changed,
 * or was first established) replaces the filter rule and is reported as
 * such, with its own log line, event and notice; anything else goes to
 * the history only. */
static void on_update(void *arg, const struct ddos_attack *a)
{
	struct ddos_cthread *t = arg;
	struct live *lv = live_get(t, a->id, 1);
	const char *phase = NULL;
	char was[sizeof(lv->summary)];
	int kind, moved;

	if (!lv) {
		history(t->c, a, 0, NULL);
		return;
	}
	moved = a->match_ready && (!lv->match_ready || a->match_amp != lv->match_amp ||
				   a->match_proto != lv->match_proto);
	kind = mitigate(t, a, lv);
	if (kind == MIT_TIER)
		phase = "update";
	else if (moved || kind == MIT_VECTOR)
		phase = lv->match_ready ? "vector" : "classified";
	snprintf(was, sizeof(was), "%s", lv->summary);
	if (moved)
		live_seen(lv, a);
	if (phase) {
		log_attack(!strcmp(phase, "update") ? "escalated" : !strcmp(phase, "vector") ?
			   "vector_changed" : "classified", a, lv->action);
		report_event(t, a, phase, lv->action);
		notify_attack(t, a, phase, lv->action, was);
	}
	history(t->c, a, 0, kind != MIT_SAME ? lv->action : NULL);
}

static void on_end(void *arg, const struct ddos_attack *a)
{
	struct ddos_cthread *t = arg;
	struct ddos_collector *c = t->c;
	struct live *lv = live_get(t, a->id, 0);
	char action[ACTION_MAX];

	snprintf(action, sizeof(action), "%s", lv ? lv->action : "");
	if (a->released) {
		/* A reload put the target on an allow list or out of every
		 * group: what was announced for it goes now, not after the
		 * hold. */
		size_t o = strlen(action);
		snprintf(action + o, sizeof(action) - o, "%sended by a reload: the target is %s",
			 o ? "; " : "", a->released == DDOS_RELEASED_ALLOWED ? "allow-listed" :
			 "in no group");
		if (lv && lv->posted) {
			o = strlen(action);
			snprintf(action + o, sizeof(action) - o, ", mitigation withdrawn");
		}
		if (lv && lv->posted && c->deps.mw && mitig_worker_post_release(c->deps.mw, a->id_str) < 0)
			dropped(c, DROP_MITIG);
	} else if (lv && lv->posted && c->deps.mw && mitig_worker_post_end(c->deps.mw, a->id_str) < 0) {
		dropped(c, DROP_MITIG);
	}
	log_attack("end", a, action);
	report_event(t, a, "end", action);
	notify_attack(t, a, "end", action, NULL);
	history(c, a, 1, NULL);
	if (lv)
		lv->id = 0;
}

/* With several threads each shard warns of the exporters whose records
 * it counted: the first warning of an address is logged, the others not
 * (bounded: past WARNED_MAX addresses every warning is logged). */
static int first_warning(struct ddos_collector *c, const struct flow_ip *ip)
{
	int first = 1;

	pthread_mutex_lock(&c->ev_mu);
	for (size_t i = 0; i < c->nwarned && first; i++)
		first = memcmp(&c->warned[i], ip, sizeof(*ip)) != 0;
	if (first && c->nwarned < WARNED_MAX)
		c->warned[c->nwarned++] = *ip;
	pthread_mutex_unlock(&c->ev_mu);
	return first;
}

static void on_exporter(void *arg, const struct ddos_exporter_stat *e)
{
	struct ddos_cthread *t = arg;
	char ip[FLOW_IP_STRLEN];

	if (t->c->nthreads > 1 && !first_warning(t->c, &e->ip))
		return;
	log_msg(LOG_WARN, "ddos", "event=exporter_long_timeout exporter=%s longest_record_ms=%lld"
		" late_records=%llu hint=\"set the router's active timeout to 10-15 s: attacks in"
		" long flows are seen only when they are exported\"",
		flow_ip_str(&e->ip, ip, sizeof(ip)), (long long)e->max_duration_ms,
		(unsigned long long)e->late);
}

const struct ddos_handlers ddos_collect_handlers = { on_start, on_update, on_end, on_exporter };

void ddos_collector_mitig_observer(void *arg, const char *what, const struct mitig_entry *e,
				   const char *detail)
{
	struct ddos_collector *c = arg;
	int64_t now = now_ms();
	time_t t = (time_t)(now / 1000);
	char ts[40], dst[64], *slash;
	struct tm tm;
	struct buf b;
	int r, failed = strstr(what, "fail") != NULL || !strcmp(what, "refuse");

	if (!c || !strcmp(what, "keep"))
		return;
	if (c->deps.adb && e->attack_id[0] &&
	    attack_db_note(c->deps.adb, e->attack_id, now / 1000, what, e->key, detail) < 0)
		dropped(c, DROP_HISTORY);
	if (!c->deps.pipe || !gmtime_r(&t, &tm))
		return;
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	mitig_prefix_str(&e->rule.dst, dst, sizeof(dst));
	if ((slash = strchr(dst, '/')))
		*slash = '\0';
	buf_init(&b, EVENT_BATCH_BYTES - 64);
	r = buf_printf(&b, "{\"@timestamp\":\"%s.%03dZ\",\"event\":{\"module\":\"ddos\","
		       "\"dataset\":\"ddos.mitigation\",\"kind\":\"event\",\"category\":\"network\","
		       "\"type\":\"change\",\"action\":\"ddos-mitigation-%s\",\"outcome\":\"%s\"},"
		       "\"destination\":{\"ip\":\"%s\"},\"message\":", ts, (int)(now % 1000), what,
		       failed ? "failure" : "success", dst);
	if (r == 0) {
		char msg[MITIG_KEY_MAX + 64];
		snprintf(msg, sizeof(msg), "DDoS mitigation %s: %s", what, e->key);
		r = put_jstr(&b, msg);
	}
	r = r ? r : buf_puts(&b, ",\"ddos\":{\"attack_id\":");
	r = r ? r : put_jstr(&b, e->attack_id);
	r = r ? r : buf_puts(&b, ",\"mitigation\":{\"key\":");
	r = r ? r : put_jstr(&b, e->key);
	r = r ? r : buf_printf(&b, ",\"action\":\"%s\",\"manual\":%s,\"dry_run\":%s,\"reason\":",
			       mitig_action_name(e->rule.action), e->manual ? "true" : "false",
			       e->dry_run ? "true" : "false");
	r = r ? r : put_jstr(&b, e->reason);
	r = r ? r : buf_puts(&b, ",\"detail\":");
	r = r ? r : put_jstr(&b, detail ? detail : "");
	r = r ? r : buf_puts(&b, "}}}");
	if (r == 0)
		submit_event(c, b.p, b.len);
	else
		dropped(c, DROP_PIPELINE);
	buf_fini(&b);
}

/* ---- top talkers ---- */

/* 1 when ip lies inside the attack's target prefix. */
static int attack_covers(const struct ddos_attack *a, const struct flow_ip *ip)
{
	unsigned bits = a->target.family == FLOW_IPV4 ? a->plen + 96u : a->plen;

	if (bits > 128)
		bits = 128;
	for (unsigned i = 0; i < bits; i++) {
		unsigned byte = i / 8, mask = 0x80u >> (i % 8);
		if ((a->target.a[byte] & mask) != (ip->a[byte] & mask))
			return 0;
	}
	return 1;
}

struct top_walk {
	struct ddos_top *t;
	const struct flow_ip *ip;
	int groups_only;
};

static void top_attack(void *arg, const struct ddos_attack *a)
{
	struct top_walk *w = arg;
	struct ddos_top_attack *x;

	if (w->t->nattacks >= DDOS_TOP_ATTACKS || !attack_covers(a, w->ip) ||
	    (w->groups_only && a->kind != DDOS_T_GROUP))
		return;
	x = &w->t->attacks[w->t->nattacks++];
	snprintf(x->id, sizeof(x->id), "%s", a->id_str);
	snprintf(x->target, sizeof(x->target), "%s", a->target_str);
	snprintf(x->summary, sizeof(x->summary), "%s", a->summary);
}

/* What thread t knows of ip: TOP_TARGET, the host, its aggregate, its
 * group's name and the attacks covering it (t owns ip's shard); TOP_GROUP,
 * the group named in t->group over every shard and its attacks (t is
 * thread 0). With one thread, both at once. */
static int top_fill(struct ddos_cthread *t, const struct flow_ip *ip, int parts,
		    struct ddos_top *out)
{
	struct ddos_counters *cnt = ddos_detector_counters(t->det);
	struct top_walk w = { out, ip, !(parts & TOP_TARGET) };
	const char *g = NULL;

	if (parts & TOP_TARGET) {
		memset(out, 0, sizeof(*out));
		out->has_host = ddos_count_host(cnt, ip, &out->host) == 0;
		out->has_prefix = ddos_count_prefix(cnt, ip, &out->prefix) == 0;
		if (out->has_host)
			g = out->host.group;
		else if (out->has_prefix)
			g = out->prefix.group;
		if (g)
			snprintf(out->group, sizeof(out->group), "%s", g);
		out->host.group = out->prefix.group = NULL;
		if (out->has_prefix) {
			struct ddos_pfx p;
			unsigned bits = ip->family == FLOW_IPV4 ? 96u + t->c->plen_v4 : t->c->plen_v6;

			memset(&p, 0, sizeof(p));
			for (unsigned i = 0; i < bits && i < 128; i++)
				p.a[i / 8] |= (uint8_t)(ip->a[i / 8] & (0x80u >> (i % 8)));
			p.len = (uint8_t)bits;
			p.v4 = ip->family == FLOW_IPV4;
			ddos_pfx_str(&p, out->prefix_str, sizeof(out->prefix_str));
		}
		ddos_detector_foreach(t->det, top_attack, &w);
		if (!out->has_host && !out->has_prefix)
			return M_ENOTFOUND;
	}
	if ((parts & TOP_GROUP) && out->group[0]) {
		out->has_group = ddos_detector_group_view(t->det, out->group, &out->grp) == 0;
		out->grp.group = NULL;
		if (w.groups_only)
			ddos_detector_foreach(t->det, top_attack, &w);
	}
	return M_OK;
}

/* ---- exporters ---- */

/* A ddos_exporter_fn: the counters' figures, appended to the slot. */
static void xs_add(void *arg, const struct ddos_exporter_stat *e)
{
	struct top_slot *s = arg;
	struct ddos_exporter_stat *v;

	if (s->rc < 0)
		return;
	if (!(v = realloc(s->xs, (s->nxs + 1) * sizeof(*v)))) {
		s->rc = M_ENOMEM;
		return;
	}
	s->xs = v;
	s->xs[s->nxs++] = *e;
}

/* Thread t's share of the exporter list: its decoders' sequence states
 * and its counters' timing of each exporter address. */
static int exporters_part(struct ddos_cthread *t, struct top_slot *s)
{
	int64_t now = now_ms();

	memset(&s->exp, 0, sizeof(s->exp));
	s->rc = M_OK;
	for (int i = 0; i < t->nl; i++)
		if (ddos_exporters_add(&s->exp, t->l[i].name, t->l[i].dec, now) < 0)
			s->rc = M_ENOMEM;
	ddos_count_exporters(ddos_detector_counters(t->det), xs_add, s);
	return s->rc;
}

/* ---- requests from API threads ---- */

static void slot_clear(struct top_slot *s)
{
	ddos_exporter_list_fini(&s->exp);
	free(s->xs);
	s->xs = NULL;
	s->nxs = 0;
	s->state = SLOT_FREE;
}

void ddos_collect_serve(struct ddos_cthread *t)
{
	struct ddos_collector *c = t->c;
	int any = 0;

	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < TOP_SLOTS; i++) {
		struct top_slot *s = &c->slots[i];

		if (s->thread != t->k)
			continue;
		if (s->state == SLOT_PENDING) {
			if (s->kind == ASK_EXPORTERS)
				s->rc = exporters_part(t, s);
			else
				s->rc = top_fill(t, &s->ip, s->parts, &s->ans);
			s->state = SLOT_DONE;
			any = 1;
		} else if (s->state == SLOT_ABANDONED) {
			slot_clear(s);
		}
	}
	if (any)
		pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Asks thread rq->thread (a free slot, its eventfd) and waits for its
 * answer: rq's inputs in, its answer (and the arrays it holds, the
 * caller's then) out. */
static int ask(struct ddos_collector *c, struct top_slot *rq, int timeout_ms)
{
	int64_t until = clock_now_us() + (int64_t)timeout_ms * 1000;
	struct timespec ts = { (time_t)(until / 1000000), (long)(until % 1000000) * 1000 };
	struct top_slot *s = NULL;
	int rc;

	if (!c)
		return M_ECLOSED;
	pthread_mutex_lock(&c->mu);
	if (c->closed) {
		pthread_mutex_unlock(&c->mu);
		return M_ECLOSED;
	}
	for (int i = 0; i < TOP_SLOTS && !s; i++)
		if (c->slots[i].state == SLOT_FREE)
			s = &c->slots[i];
	if (!s) {
		pthread_mutex_unlock(&c->mu);
		return M_EAGAIN;
	}
	s->state = SLOT_PENDING;
	s->kind = rq->kind;
	s->thread = rq->thread;
	s->parts = rq->parts;
	s->ip = rq->ip;
	s->ans = rq->ans;
	pthread_mutex_unlock(&c->mu);
	ddos_cthread_wake(&c->t[rq->thread]);
	pthread_mutex_lock(&c->mu);
	while (s->state == SLOT_PENDING && !c->closed)
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) != 0)
			break;
	if (s->state == SLOT_DONE) {
		rc = s->rc;
		rq->ans = s->ans;
		rq->exp = s->exp;
		rq->xs = s->xs;
		rq->nxs = s->nxs;
		memset(&s->exp, 0, sizeof(s->exp));
		s->xs = NULL;
		slot_clear(s);
	} else {
		rc = c->closed ? M_ECLOSED : M_EAGAIN;
		s->state = c->closed ? SLOT_FREE : SLOT_ABANDONED;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int ddos_collector_top(struct ddos_collector *c, const struct flow_ip *ip, struct ddos_top *out,
		       int timeout_ms)
{
	struct top_slot rq;
	int rc;

	if (!c)
		return M_ECLOSED;
	memset(&rq, 0, sizeof(rq));
	rq.kind = ASK_TOP;
	rq.ip = *ip;
	rq.thread = c->nthreads > 1 ? ddos_shard_of(ip, c->plen_v4, c->plen_v6, c->nthreads) : 0;
	rq.parts = rq.thread == 0 ? TOP_TARGET | TOP_GROUP : TOP_TARGET;
	rc = ask(c, &rq, timeout_ms);
	if (rc == 0 && !(rq.parts & TOP_GROUP)) {
		/* The group over every shard, and its attacks, are thread 0's. */
		rq.thread = 0;
		rq.parts = TOP_GROUP;
		rc = ask(c, &rq, timeout_ms);
	}
	if (rc == 0)
		*out = rq.ans;
	return rc;
}

int ddos_collector_exporters(struct ddos_collector *c, struct ddos_exporter_info **out, size_t *n,
			     int timeout_ms)
{
	struct ddos_exporter_list l = { 0 };
	struct ddos_exporter_stat *xs = NULL;
	size_t nxs = 0;
	int rc = c ? M_OK : M_ECLOSED;

	/* Each thread's decoders and counters; then joined here. */
	for (unsigned k = 0; c && k < c->nthreads && rc == 0; k++) {
		struct top_slot rq;
		struct ddos_exporter_info *v;
		struct ddos_exporter_stat *x;

		memset(&rq, 0, sizeof(rq));
		rq.kind = ASK_EXPORTERS;
		rq.thread = k;
		rc = ask(c, &rq, timeout_ms);
		v = rc == 0 ? realloc(l.v, (l.n + rq.exp.n + 1) * sizeof(*v)) : NULL;
		x = rc == 0 ? realloc(xs, (nxs + rq.nxs + 1) * sizeof(*x)) : NULL;
		if (v) {
			l.v = v;
			l.cap = l.n + rq.exp.n + 1;
			if (rq.exp.n)   /* memcpy from NULL is undefined, even of 0 */
				memcpy(l.v + l.n, rq.exp.v, rq.exp.n * sizeof(*v));
			l.n += rq.exp.n;
		}
		if (x) {
			xs = x;
			if (rq.nxs)
				memcpy(xs + nxs, rq.xs, rq.nxs * sizeof(*x));
			nxs += rq.nxs;
		}
		if (rc == 0 && (!v || !x))
			rc = M_ENOMEM;
		ddos_exporter_list_fini(&rq.exp);
		free(rq.xs);
	}
	if (rc == 0) {
		ddos_exporters_by_address(&l);
		ddos_exporters_join(&l);
		for (size_t i = 0; i < nxs; i++)
			ddos_exporters_timing(&l, &xs[i]);
		ddos_exporters_by_recent(&l);
	}
	free(xs);
	*out = rc == 0 ? l.v : NULL;
	*n = rc == 0 ? l.n : 0;
	if (rc != 0)
		ddos_exporter_list_fini(&l);
	return rc;
}

/* ---- reload ---- */

static void reload_req_free(struct reload_req *q, unsigned n)
{
	if (!q)
		return;
	for (unsigned k = 0; q->nc && k < n; k++)
		ddos_detect_conf_free(q->nc[k]);
	free(q->nc);
	ddos_config_free(q->dc);
	free(q->dc);
	ddos_config_free(q->old);
	free(q->old);
	free(q);
}

/* On thread t, between two ticks: the records it holds are counted under
 * the running configuration, then the new one goes in. The last thread
 * to do so retires the old configuration (every thread read it until
 * then: the handlers of the attacks a reload ends read their tiers). */
void ddos_collect_apply_reload(struct ddos_cthread *t)
{
	struct ddos_collector *c = t->c;
	struct ddos_reload_stats st;
	struct ddos_detect_conf *nc;
	struct reload_req *q;

	pthread_mutex_lock(&c->mu);
	q = c->reload;
	if (!q || q->applied[t->k]) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	q->applied[t->k] = 1;
	nc = q->nc[t->k];
	q->nc[t->k] = NULL;
	pthread_mutex_unlock(&c->mu);
	ddos_cthread_flush(t);
	ddos_detector_reconfigure(t->det, nc, &st);
	t->dc = q->dc;
	t->dry_run = q->dry_run;
	pthread_mutex_lock(&c->mu);
	q->st.groups = st.groups;
	q->st.prefixes = st.prefixes;
	q->st.attacks_kept += st.attacks_kept;
	q->st.attacks_ended += st.attacks_ended;
	q->st.hosts_moved += st.hosts_moved;
	q->st.hosts_dropped += st.hosts_dropped;
	q->st.prefixes_dropped += st.prefixes_dropped;
	q->st.allow_changed += st.allow_changed;
	if (--q->left == 0) {
		c->reload = NULL;
		q->old = c->dc_own;
		c->dc_own = q->dc;
		c->dc = q->dc;
		q->dc = NULL;
		c->deps.dry_run = q->dry_run;
		if (q->abandoned) {
			log_msg(LOG_INFO, "ddos", "event=reload_applied groups=%zu attacks_kept=%zu"
				" attacks_ended=%zu", q->st.groups, q->st.attacks_kept, q->st.attacks_ended);
			reload_req_free(q, c->nthreads);
		} else {
			pthread_cond_broadcast(&c->cv);
		}
	}
	pthread_mutex_unlock(&c->mu);
}

int ddos_collector_reload(struct ddos_collector *c, struct ddos_config *dc, int dry_run,
			  struct ddos_reload_stats *st, int timeout_ms, struct buf *err)
{
	int64_t until = clock_now_us() + (int64_t)timeout_ms * 1000;
	struct timespec ts = { (time_t)(until / 1000000), (long)(until % 1000000) * 1000 };
	struct reload_req *q = calloc(1, sizeof(*q)), *prev;
	unsigned n = c->nthreads;

	if (!q || !(q->dc = malloc(sizeof(*q->dc))) || !(q->nc = calloc(n, sizeof(*q->nc)))) {
		reload_req_free(q, n);
		buf_puts(err, "ddos: out of memory");
		buf_cstr(err);
		return M_ENOMEM;
	}
	/* Compiled here, one per thread: each detector takes its own. */
	for (unsigned k = 0; k < n; k++)
		if (!(q->nc[k] = ddos_detect_conf_new(dc, err))) {
			free(q->dc);
			q->dc = NULL;
			reload_req_free(q, n);
			return M_EINVAL;
		}
	*q->dc = *dc;
	memset(dc, 0, sizeof(*dc));
	q->dry_run = dry_run;
	q->left = n;
	pthread_mutex_lock(&c->mu);
	if (c->closed || !c->started) {
		int closed = c->closed;

		pthread_mutex_unlock(&c->mu);
		if (closed) {
			reload_req_free(q, n);
			return M_ECLOSED;
		}
		/* Not running: put in force here (no other thread has it). */
		c->reload = q;
		for (unsigned k = 0; k < n; k++)
			ddos_collect_apply_reload(&c->t[k]);
		if (st)
			*st = q->st;
		reload_req_free(q, n);
		return M_OK;
	}
	/* A reload some threads have put in force is finished first. */
	while (c->reload && c->reload->left < n && !c->closed)
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) != 0)
			break;
	if (c->closed || (c->reload && c->reload->left < n)) {
		int closed = c->closed;
		pthread_mutex_unlock(&c->mu);
		reload_req_free(q, n);
		return closed ? M_ECLOSED : M_EAGAIN;
	}
	/* One caller at a time (serve's main thread); an earlier request no
	 * thread has taken yet is replaced by this one. */
	prev = c->reload;
	c->reload = q;
	if (prev && !prev->abandoned) {
		prev->replaced = 1;
		pthread_cond_broadcast(&c->cv);
		prev = NULL;      /* its caller frees it */
	}
	pthread_mutex_unlock(&c->mu);
	reload_req_free(prev, n);
	for (unsigned k = 0; k < n; k++)
		ddos_cthread_wake(&c->t[k]);
	pthread_mutex_lock(&c->mu);
	while (q->left && !q->replaced && !c->closed)
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) != 0)
			break;
	if (q->replaced || !q->left) {
		int rc = q->replaced ? M_EAGAIN : M_OK;
		if (rc == M_OK && st)
			*st = q->st;
		pthread_mutex_unlock(&c->mu);
		reload_req_free(q, n);
		return rc;
	}
	if (c->reload == q && c->closed && q->left == n) {
		/* The threads stopped before taking it. */
		c->reload = NULL;
		pthread_mutex_unlock(&c->mu);
		reload_req_free(q, n);
		return M_ECLOSED;
	}
	q->abandoned = 1;     /* the last thread frees it once applied */
	pthread_mutex_unlock(&c->mu);
	return M_EAGAIN;
}

/* ---- lifecycle ---- */

struct ddos_collector *ddos_collector_new(const struct ddos_collect_config *cc,
					  const struct ddos_config *dc,
					  const struct ddos_collect_deps *deps, uint64_t next_id,
					  struct buf *err)
{
	struct ddos_collector *c = calloc(1, sizeof(*c));
	unsigned n;

	if (!c) {
		buf_puts(err, "ddos: out of memory");
		return NULL;
	}
	n = cc->threads > 1 ? (unsigned)(cc->threads < DDOS_SHARDS_MAX ? cc->threads :
					 DDOS_SHARDS_MAX) : 1;
	c->dc = dc;
	c->plen_v4 = (unsigned)dc->prefix_v4;
	c->plen_v6 = (unsigned)dc->prefix_v6;
	if (deps)
		c->deps = *deps;
	c->events_open = 1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_mutex_init(&c->ev_mu, NULL);
	if (!(c->t = calloc(n, sizeof(*c->t)))) {
		buf_puts(err, "ddos: out of memory");
		goto fail;
	}
	c->nthreads = n;
	for (unsigned k = 0; k < n; k++) {
		c->t[k].c = c;
		c->t[k].k = k;
		c->t[k].ep = c->t[k].wake = -1;
		c->t[k].l[0].fd = c->t[k].l[1].fd = -1;
	}
	if (n > 1) {
		size_t sz = ((size_t)n * n * sizeof(*c->ring) + 63) / 64 * 64;
		c->gs = ddos_gsync_new(n);
		if ((c->ring = aligned_alloc(64, sz)))
			memset(c->ring, 0, sz);
		if (!c->gs || !c->ring)
			goto nomem;
		for (unsigned i = 0; i < n * n; i++)
			if (i / n != i % n && ddos_spsc_init(&c->ring[i], ddos_handoff_ring_size(n)) < 0)
				goto nomem;
	}
	for (unsigned k = 0; k < n; k++)
		if (ddos_cthread_init(&c->t[k], cc, err) < 0)
			goto fail;
	ddos_detector_set_next_id(c->t[0].det, next_id ? next_id : 1);
	if (c->deps.pipe && !(c->in = pipeline_add_input(c->deps.pipe, "ddos", RAW_JSON))) {
		buf_puts(err, "ddos: too many pipeline inputs");
		goto fail;
	}
	ddos_collect_metrics_init(c);
	return c;
nomem:
	buf_puts(err, "ddos: out of memory");
fail:
	buf_cstr(err);
	ddos_collector_free(c);
	return NULL;
}

int ddos_collector_start(struct ddos_collector *c)
{
	for (unsigned k = 0; k < c->nthreads; k++) {
		struct ddos_cthread *t = &c->t[k];
		char name[16];

		if (pthread_create(&t->th, NULL, ddos_cthread_main, t) != 0) {
			log_msg(LOG_ERROR, "ddos", "event=thread_failed thread=collector");
			ddos_collector_stop(c);
			return M_EIO;
		}
		t->started = 1;
		if (c->nthreads > 1)
			snprintf(name, sizeof(name), "mamori-ddos-%u", k % DDOS_SHARDS_MAX);
		else
			snprintf(name, sizeof(name), "mamori-ddos");
		pthread_setname_np(t->th, name);
	}
	c->started = 1;
	for (int i = 0; i < c->t[0].nl; i++)
		log_msg(LOG_INFO, "ddos", "event=listening listener=%s addr=%s port=%d", c->t[0].l[i].name,
			c->t[0].l[i].addr, c->t[0].l[i].port);
	if (c->nthreads > 1)
		log_msg(LOG_INFO, "ddos", "event=collector_threads threads=%u partition=\"/%u /%u\"",
			c->nthreads, c->plen_v4, c->plen_v6);
	if (c->deps.capture)
		log_msg(LOG_INFO, "ddos", "event=capturing interface=%s sampling=%u",
			ddos_capture_ifname(c->deps.capture), ddos_capture_sampling(c->deps.capture));
	return M_OK;
}

void ddos_collector_stop(struct ddos_collector *c)
{
	if (!c)
		return;
	atomic_store(&c->stop, 1);
	for (unsigned k = 0; k < c->nthreads; k++)
		if (c->t[k].started)
			ddos_cthread_wake(&c->t[k]);
	for (unsigned k = 0; k < c->nthreads; k++)
		if (c->t[k].started) {
			pthread_join(c->t[k].th, NULL);
			c->t[k].started = 0;
		}
	c->started = 0;
	pthread_mutex_lock(&c->mu);
	c->closed = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

void ddos_collector_close_events(struct ddos_collector *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->ev_mu);
	c->events_open = 0;
	pthread_mutex_unlock(&c->ev_mu);
}

void ddos_collector_free(struct ddos_collector *c)
{
	if (!c)
		return;
	ddos_collector_stop(c);
	ddos_collector_close_events(c);
	for (unsigned k = 0; c->t && k < c->nthreads; k++)
		ddos_cthread_fini(&c->t[k]);
	for (unsigned i = 0; c->ring && i < c->nthreads * c->nthreads; i++)
		ddos_spsc_fini(&c->ring[i]);
	free(c->ring);
	ddos_gsync_free(c->gs);
	for (int i = 0; i < TOP_SLOTS; i++)
		slot_clear(&c->slots[i]);
	reload_req_free(c->reload, c->nthreads);
	ddos_config_free(c->dc_own);
	free(c->dc_own);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->ev_mu);
	free(c->t);
	free(c);
}

int ddos_collector_port(const struct ddos_collector *c, int sflow)
{
	for (int i = 0; c && c->t && i < c->t[0].nl; i++)
		if (!strcmp(c->t[0].l[i].name, sflow ? "sflow" : "netflow"))
			return c->t[0].l[i].port;
	return 0;
}
