/*
 * The DDoS collector thread (collect.h): UDP listeners, the decoders, the
 * detector, and what an attack sets off.
 *
 * Why one thread: the decoders' template state and the detector are not
 * thread-safe, and one core counts millions of records a second
 * (docs/ddos-detection.md); a second thread would need a partition of the
 * protected space, which can come when one core is not enough. Everything
 * the thread hands on goes through a queue that never waits (mitigation
 * worker, pipeline, notifier, attack history): a full queue is counted,
 * never a stall of the receive loop, because a stalled UDP socket loses
 * more in the kernel than a dropped report costs.
 *
 * Why recvmmsg and a 32 MiB receive buffer: at 100k records/s the kernel's
 * default 212 KB buffer overflows on a busy machine (RECIPES.md); the
 * kernel's own drop count comes with every datagram (SO_RXQ_OVFL) and is
 * exported as a metric. Each datagram also carries the kernel's receive
 * time (SO_TIMESTAMPNS): sFlow samples are placed by it, so a thread that
 * was late to read (a busy machine) does not pile two seconds into one.
 *
 * Mirror-port capture (capture.c) is read by the same thread: its ring is
 * one more file descriptor in the epoll set, and its packets become records
 * for the same batch, so the detector stays single-threaded. The ring is
 * also looked at on every turn of the loop (one load of a status word), so
 * a wake-up the socket did not give costs at most one tick.
 */
#include "ddos/collect.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "ddos/attack_db.h"
#include "ddos/capture.h"
#include "ddos/exporters.h"
#include "ddos/flow.h"
#include "detect/notify.h"

#define RECV_BATCH 64            /* datagrams per recvmmsg() */
#define MAX_DGRAM 65536
#define DRAIN_MAX 4096           /* datagrams per listener before the clock is looked at */
#define REC_BATCH 1024           /* records handed to the detector at once */
#define TICK_US 100000           /* the detector is ticked ten times a second */
#define PUBLISH_US 1000000       /* metrics from the decoders and the detector */
#define MINUTE_US (60 * 1000000LL)  /* sequence loss logged, expired templates freed */
#define SEQ_LOG_MAX 16           /* exporters logged per report; the rest summed */
#define TOP_SLOTS 8              /* API requests (top talkers, exporters) at once */
#define EVENT_BATCH_BYTES (16u << 10)
#define ACTION_MAX 320
#define EV_WAKE 2                /* epoll keys: 0 and 1 are the listeners */
#define EV_CAPTURE 3

#define KERNEL_DROPS_HELP \
	"Packets the kernel dropped on a full socket buffer (SO_RXQ_OVFL) or capture ring " \
	"(PACKET_STATISTICS tp_drops)"

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

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

enum { ERR_PARSE, ERR_UNSUPP, ERR_LIMIT, ERR_OTHER, ERR_N };
static const char *const err_kinds[ERR_N] = { "malformed", "unsupported", "limit", "other" };

struct listener {
	const char *name;          /* "netflow" or "sflow" */
	char addr[128];
	int fd;
	int port;
	enum flow_format fmt;
	struct flow_decoder *dec;
	uint32_t ovfl;             /* the kernel's drop count, as last reported */
	struct metric *m_dgrams, *m_bytes, *m_drops, *m_truncated, *m_err[ERR_N];
	struct metric **m_stat;    /* one per flow_stat_descs entry */
	long long log_last;
};

enum { SLOT_FREE, SLOT_PENDING, SLOT_DONE, SLOT_ABANDONED };
enum { ASK_TOP, ASK_EXPORTERS };

/* One API request to the collector thread: the top talkers of ip, or the
 * exporter list. The answer is written under the mutex, only while the
 * slot is pending, and taken by the asker (the list's array with it). */
struct top_slot {
	int state;
	int kind;                  /* ASK_* */
	int rc;
	struct flow_ip ip;
	struct ddos_top ans;
	struct ddos_exporter_list exp;
};

/* What the collector remembers of an attack in progress. */
struct live {
	uint64_t id;               /* 0 = free */
	int tier;                  /* the strongest tier a mitigation was asked for */
	int posted;                /* a mitigation was posted: post its end */
	char action[ACTION_MAX];
};

/* A reload handed to the collector thread (ddos_collector_reload). */
struct reload_req {
	struct ddos_detect_conf *nc;
	struct ddos_config *dc;    /* moved in from the caller's settings */
	int dry_run;
	int done, abandoned;       /* under mu */
	int replaced;              /* a later reload took its place before the thread did */
	struct ddos_reload_stats st;
};

struct ddos_collector {
	struct listener l[2];
	int nl;
	int ep, wake;
	struct ddos_detector *det;
	const struct ddos_config *dc;   /* the caller's, then dc_own after a reload */
	struct ddos_config *dc_own;
	struct reload_req *reload;      /* pending, under mu */
	struct ddos_collect_deps deps;
	const struct input *in;
	pthread_t th;
	int started;
	atomic_int stop;

	struct flow_rec *recs;
	size_t nrecs;
	char *bufs;
	struct mmsghdr msgs[RECV_BATCH];
	struct iovec iov[RECV_BATCH];
	struct sockaddr_storage peers[RECV_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} ctrl[RECV_BATCH];

	struct live *live;
	size_t nlive;

	pthread_mutex_t mu;        /* the request slots, closed */
	pthread_cond_t cv;
	struct top_slot slots[TOP_SLOTS];
	int closed;

	pthread_mutex_t ev_mu;     /* events from other threads (the mitigation observer) */
	int events_open;

	struct metric *m_cap_packets, *m_cap_bytes, *m_cap_records, *m_cap_drops,
		*m_cap_kernel, *m_cap_skipped[3];

	struct metric *m_records, *m_counted, *m_unprotected, *m_late, *m_allowed, *m_started,
		*m_ended, *m_active, *m_hosts, *m_memory, *m_eval_us, *m_dropped[4];
	long long log_last;
	int64_t next_minute;       /* monotonic µs */
};

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
		 * ports for amplification, else the dominant protocol. */
		if ((a->vectors & DDOS_V_AMP) && a->amp) {
			rq->rule.proto = 17;
			for (int i = 0; i < DDOS_VEC_N && rq->rule.nsport < MITIG_MAX_PORTS; i++)
				if (a->amp & (1u << i))
					rq->rule.sport[rq->rule.nsport++] = ddos_vectors[i].port;
		} else {
			rq->rule.proto = a->proto;
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
	int r;

	if (!gmtime_r(&t, &tm))
		return M_EINVAL;
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	flow_ip_str(&a->target, ip, sizeof(ip));
	r = buf_printf(out, "{\"@timestamp\":\"%s.%03dZ\",\"event\":{\"module\":\"ddos\","
		       "\"dataset\":\"ddos.attack\",\"kind\":\"alert\",\"category\":\"network\","
		       "\"type\":\"%s\",\"action\":\"ddos-attack-%s\",\"severity\":%d},"
		       "\"message\":", ts, (int)(now % 1000), phase,
		       !strcmp(phase, "start") ? "started" : !strcmp(phase, "end") ? "ended" :
		       "updated", critical ? 10 : 8);
	if (r == 0) {
		char msg[512];
		snprintf(msg, sizeof(msg), "DDoS attack on %s%s: %s, %s", a->target_str,
			 !strcmp(phase, "end") ? " ended" : !strcmp(phase, "start") ? "" : " escalated",
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

static int is_critical(const struct ddos_collector *c, const struct ddos_attack *a, int tier)
{
	const struct ddos_group_conf *g = group_of(c->dc, a->group);
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

static void notify_attack(struct ddos_collector *c, const struct ddos_attack *a,
			  const char *phase, const char *action)
{
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
	n.severity = is_critical(c, a, a->tier) ? NOTIFY_SEV_CRITICAL : NOTIFY_SEV_HIGH;
	n.title = title;
	n.body = body;
	n.fields[n.nfields++] = (struct notify_field){ "status", ended ? "ended" :
						       !strcmp(phase, "start") ? "started" : "escalated" };
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

static void report_event(struct ddos_collector *c, const struct ddos_attack *a,
			 const char *phase, const char *action)
{
	struct buf b;

	if (!c->deps.pipe)
		return;
	buf_init(&b, EVENT_BATCH_BYTES - 64);
	if (ddos_attack_event_json(a, phase, action, is_critical(c, a, a->tier), now_ms(), &b) == 0)
		submit_event(c, b.p, b.len);
	else
		dropped(c, DROP_PIPELINE);
	buf_fini(&b);
}

static struct live *live_get(struct ddos_collector *c, uint64_t id, int make)
{
	struct live *free_slot = NULL;

	for (size_t i = 0; i < c->nlive; i++) {
		if (c->live[i].id == id)
			return &c->live[i];
		if (!c->live[i].id && !free_slot)
			free_slot = &c->live[i];
	}
	if (!make || !free_slot)
		return NULL;
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->id = id;
	return free_slot;
}

/* Asks for the mitigation the attack's tier names, when it is stronger than
 * what was asked before; appends what was done to lv->action. 1 when the
 * action changed. */
static int mitigate(struct ddos_collector *c, const struct ddos_attack *a, struct live *lv)
{
	struct mitig_request rq;
	char what[ACTION_MAX];
	size_t o;
	int due;

	if (lv->action[0] && a->tier <= lv->tier)
		return 0;
	due = ddos_attack_mitigation(a, c->dc, &rq, what, sizeof(what));
	if (due && !c->deps.mw) {
		snprintf(what, sizeof(what), "none: no mitigation back-end running");
		due = 0;
	}
	if (due) {
		if (mitig_worker_post_start(c->deps.mw, &rq) < 0) {
			dropped(c, DROP_MITIG);
			o = strlen(what);
			snprintf(what + o, sizeof(what) - o, " [not posted: queue full]");
		} else {
			lv->posted = 1;
			if (c->deps.dry_run) {
				o = strlen(what);
				snprintf(what + o, sizeof(what) - o, " [dry run]");
			}
		}
		lv->tier = a->tier;
	}
	if (!lv->action[0]) {
		snprintf(lv->action, sizeof(lv->action), "%s", what);
		return 1;
	}
	if (!due)
		return 0;
	o = strlen(lv->action);
	snprintf(lv->action + o, sizeof(lv->action) - o, "; then %s", what);
	return 1;
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
	struct ddos_collector *c = arg;
	struct live *lv = live_get(c, a->id, 1);
	struct live tmp = { 0 };

	if (!lv)
		lv = &tmp;   /* more attacks than slots cannot happen; stay safe */
	mitigate(c, a, lv);
	log_attack("start", a, lv->action);
	report_event(c, a, "start", lv->action);
	notify_attack(c, a, "start", lv->action);
	history(c, a, 0, lv->action);
}

static void on_update(void *arg, const struct ddos_attack *a)
{
	struct ddos_collector *c = arg;
	struct live *lv = live_get(c, a->id, 1);
	int changed;

	if (!lv) {
		history(c, a, 0, NULL);
		return;
	}
	changed = mitigate(c, a, lv);
	if (changed) {
		log_attack("escalated", a, lv->action);
		report_event(c, a, "update", lv->action);
		notify_attack(c, a, "update", lv->action);
	}
	history(c, a, 0, changed ? lv->action : NULL);
}

static void on_end(void *arg, const struct ddos_attack *a)
{
	struct ddos_collector *c = arg;
	struct live *lv = live_get(c, a->id, 0);
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
	report_event(c, a, "end", action);
	notify_attack(c, a, "end", action);
	history(c, a, 1, NULL);
	if (lv)
		lv->id = 0;
}

static void on_exporter(void *arg, const struct ddos_exporter_stat *e)
{
	char ip[FLOW_IP_STRLEN];

	(void)arg;
	log_msg(LOG_WARN, "ddos", "event=exporter_long_timeout exporter=%s longest_record_ms=%lld"
		" late_records=%llu hint=\"set the router's active timeout to 10-15 s: attacks in"
		" long flows are seen only when they are exported\"",
		flow_ip_str(&e->ip, ip, sizeof(ip)), (long long)e->max_duration_ms,
		(unsigned long long)e->late);
}

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

/* ---- receiving ---- */

static void flush_recs(struct ddos_collector *c)
{
	if (c->nrecs) {
		ddos_detector_add_batch(c->det, c->recs, c->nrecs);
		c->nrecs = 0;
	}
}

static void on_rec(void *arg, const struct flow_rec *r)
{
	struct ddos_collector *c = arg;

	c->recs[c->nrecs++] = *r;
	if (c->nrecs == REC_BATCH)
		flush_recs(c);
}

static void peer_ip(const struct sockaddr_storage *ss, struct flow_ip *out)
{
	memset(out, 0, sizeof(*out));
	if (ss->ss_family == AF_INET) {
		flow_ip_v4(out, (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr);
	} else if (ss->ss_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a))
			flow_ip_v4(out, a + 12);
		else
			flow_ip_v6(out, a);
	}
}

static void take(struct ddos_collector *c, struct listener *l, int i, int64_t recv_ms)
{
	struct msghdr *h = &c->msgs[i].msg_hdr;
	size_t len = c->msgs[i].msg_len;
	struct flow_ip from;
	int rc, k;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm; cm = CMSG_NXTHDR(h, cm)) {
		if (cm->cmsg_level != SOL_SOCKET)
			continue;
		if (cm->cmsg_type == SO_RXQ_OVFL && cm->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
			memcpy(&l->ovfl, CMSG_DATA(cm), sizeof(uint32_t));
		} else if (cm->cmsg_type == SCM_TIMESTAMPNS &&
			   cm->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
			struct timespec ts;
			int64_t t;

			memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
			t = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
			/* Never later than now, never older than a minute. */
			if (t <= recv_ms && t > recv_ms - 60000)
				recv_ms = t;
		}
	}
	metric_add(l->m_dgrams, 1);
	metric_add(l->m_bytes, len);
	if (h->msg_flags & MSG_TRUNC) {
		metric_add(l->m_truncated, 1);
		return;
	}
	peer_ip(&c->peers[i], &from);
	rc = flow_decode(l->dec, l->fmt, &from, recv_ms, c->iov[i].iov_base, len);
	if (rc >= 0)
		return;
	k = rc == M_EPARSE ? ERR_PARSE : rc == M_EUNSUPP ? ERR_UNSUPP : rc == M_ELIMIT ? ERR_LIMIT :
	    ERR_OTHER;
	metric_add(l->m_err[k], 1);
	if (log_ratelimit(&l->log_last, 10 * 1000000LL)) {
		char ip[FLOW_IP_STRLEN];
		log_msg(LOG_WARN, "ddos", "event=decode_failed listener=%s exporter=%s bytes=%zu"
			" error=%s hint=\"counted in mamori_ddos_decode_errors_total; logged once per 10 s\"",
			l->name, flow_ip_str(&from, ip, sizeof(ip)), len, err_kinds[k]);
	}
}

static void drain(struct ddos_collector *c, struct listener *l)
{
	int got = 0;

	while (got < DRAIN_MAX) {
		int n;
		int64_t recv_ms;

		for (int i = 0; i < RECV_BATCH; i++) {
			memset(&c->msgs[i], 0, sizeof(c->msgs[i]));
			c->msgs[i].msg_hdr.msg_iov = &c->iov[i];
			c->msgs[i].msg_hdr.msg_iovlen = 1;
			c->msgs[i].msg_hdr.msg_name = &c->peers[i];
			c->msgs[i].msg_hdr.msg_namelen = sizeof(c->peers[i]);
			c->msgs[i].msg_hdr.msg_control = c->ctrl[i].buf;
			c->msgs[i].msg_hdr.msg_controllen = sizeof(c->ctrl[i].buf);
		}
		n = recvmmsg(l->fd, c->msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    log_ratelimit(&l->log_last, 10 * 1000000LL))
				log_msg(LOG_WARN, "ddos", "event=recv_failed listener=%s err=\"%s\"",
					l->name, strerror(errno));
			return;
		}
		recv_ms = now_ms();
		for (int i = 0; i < n; i++)
			take(c, l, i, recv_ms);
		flush_recs(c);
		got += n;
		if (n < RECV_BATCH)
			return;
	}
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
};

static void top_attack(void *arg, const struct ddos_attack *a)
{
	struct top_walk *w = arg;
	struct ddos_top_attack *x;

	if (w->t->nattacks >= DDOS_TOP_ATTACKS || !attack_covers(a, w->ip))
		return;
	x = &w->t->attacks[w->t->nattacks++];
	snprintf(x->id, sizeof(x->id), "%s", a->id_str);
	snprintf(x->target, sizeof(x->target), "%s", a->target_str);
	snprintf(x->summary, sizeof(x->summary), "%s", a->summary);
}

static int top_fill(struct ddos_collector *c, const struct flow_ip *ip, struct ddos_top *t)
{
	struct ddos_counters *cnt = ddos_detector_counters(c->det);
	struct top_walk w = { t, ip };
	const char *g = NULL;

	memset(t, 0, sizeof(*t));
	t->has_host = ddos_count_host(cnt, ip, &t->host) == 0;
	t->has_prefix = ddos_count_prefix(cnt, ip, &t->prefix) == 0;
	if (t->has_host)
		g = t->host.group;
	else if (t->has_prefix)
		g = t->prefix.group;
	if (g) {
		snprintf(t->group, sizeof(t->group), "%s", g);
		t->has_group = ddos_count_group(cnt, g, &t->grp) == 0;
	}
	t->host.group = t->prefix.group = t->grp.group = NULL;
	if (t->has_prefix) {
		struct ddos_pfx p;
		unsigned bits = ip->family == FLOW_IPV4 ? 96u + (unsigned)c->dc->prefix_v4 :
			(unsigned)c->dc->prefix_v6;

		memset(&p, 0, sizeof(p));
		for (unsigned i = 0; i < bits && i < 128; i++)
			p.a[i / 8] |= (uint8_t)(ip->a[i / 8] & (0x80u >> (i % 8)));
		p.len = (uint8_t)bits;
		p.v4 = ip->family == FLOW_IPV4;
		ddos_pfx_str(&p, t->prefix_str, sizeof(t->prefix_str));
	}
	ddos_detector_foreach(c->det, top_attack, &w);
	return t->has_host || t->has_prefix ? 0 : M_ENOTFOUND;
}

/* Every exporter the decoders keep a sequence for, with the counters'
 * timing of its address, most recently heard from first (exporters.h). */
static int exporters_fill(struct ddos_collector *c, struct ddos_exporter_list *l)
{
	int64_t now = now_ms();

	memset(l, 0, sizeof(*l));
	for (int i = 0; i < c->nl; i++) {
		if (ddos_exporters_add(l, c->l[i].name, c->l[i].dec, now) < 0) {
			ddos_exporter_list_fini(l);
			return M_ENOMEM;
		}
	}
	ddos_exporters_by_address(l);
	ddos_count_exporters(ddos_detector_counters(c->det), ddos_exporters_timing, l);
	ddos_exporters_by_recent(l);
	return 0;
}

static void serve_top(struct ddos_collector *c)
{
	int any = 0;

	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < TOP_SLOTS; i++) {
		struct top_slot *s = &c->slots[i];

		if (s->state == SLOT_PENDING) {
			if (s->kind == ASK_EXPORTERS)
				s->rc = exporters_fill(c, &s->exp);
			else
				s->rc = top_fill(c, &s->ip, &s->ans);
			s->state = SLOT_DONE;
			any = 1;
		} else if (s->state == SLOT_ABANDONED) {
			s->state = SLOT_FREE;
		}
	}
	if (any)
		pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void wake(struct ddos_collector *c)
{
	uint64_t one = 1;

	if (c->wake >= 0 && write(c->wake, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_msg(LOG_WARN, "ddos", "event=wake_failed err=\"%s\"", strerror(errno));
}

/* Asks the collector thread (a free slot, the eventfd) and waits for its
 * answer: into top, or the list into exp (owned by the caller then). */
static int ask(struct ddos_collector *c, int kind, const struct flow_ip *ip, int timeout_ms,
	       struct ddos_top *top, struct ddos_exporter_list *exp)
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
	s->kind = kind;
	if (ip)
		s->ip = *ip;
	pthread_mutex_unlock(&c->mu);
	wake(c);
	pthread_mutex_lock(&c->mu);
	while (s->state == SLOT_PENDING && !c->closed)
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) != 0)
			break;
	if (s->state == SLOT_DONE) {
		rc = s->rc;
		if (kind == ASK_TOP && top)
			*top = s->ans;
		if (kind == ASK_EXPORTERS && exp)
			*exp = s->exp;
		else
			ddos_exporter_list_fini(&s->exp);
		memset(&s->exp, 0, sizeof(s->exp));
		s->state = SLOT_FREE;
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
	return ask(c, ASK_TOP, ip, timeout_ms, out, NULL);
}

int ddos_collector_exporters(struct ddos_collector *c, struct ddos_exporter_info **out, size_t *n,
			     int timeout_ms)
{
	struct ddos_exporter_list l = { 0 };
	int rc = ask(c, ASK_EXPORTERS, NULL, timeout_ms, NULL, &l);

	*out = rc == 0 ? l.v : NULL;
	*n = rc == 0 ? l.n : 0;
	if (rc != 0)
		ddos_exporter_list_fini(&l);
	return rc;
}

/* ---- reload ---- */

static void reload_req_free(struct reload_req *q)
{
	if (!q)
		return;
	ddos_detect_conf_free(q->nc);
	ddos_config_free(q->dc);
	free(q->dc);
	free(q);
}

/* On the collector thread, between ticks: the records received so far
 * are counted under the running configuration, then the new one goes in. */
static void apply_reload(struct ddos_collector *c)
{
	struct reload_req *q;
	struct ddos_config *old;

	pthread_mutex_lock(&c->mu);
	q = c->reload;
	c->reload = NULL;
	pthread_mutex_unlock(&c->mu);
	if (!q)
		return;
	flush_recs(c);
	/* The running dc stays while the detector ends what must end: the
	 * handlers of those attacks read their group's tiers in it. */
	ddos_detector_reconfigure(c->det, q->nc, &q->st);
	q->nc = NULL;
	old = c->dc_own;
	c->dc_own = q->dc;
	c->dc = q->dc;
	q->dc = NULL;
	c->deps.dry_run = q->dry_run;
	ddos_config_free(old);
	free(old);
	pthread_mutex_lock(&c->mu);
	if (q->abandoned) {
		log_msg(LOG_INFO, "ddos", "event=reload_applied groups=%zu attacks_kept=%zu attacks_ended=%zu",
			q->st.groups, q->st.attacks_kept, q->st.attacks_ended);
		reload_req_free(q);
	} else {
		q->done = 1;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
}

int ddos_collector_reload(struct ddos_collector *c, struct ddos_config *dc, int dry_run,
			  struct ddos_reload_stats *st, int timeout_ms, struct buf *err)
{
	int64_t until = clock_now_us() + (int64_t)timeout_ms * 1000;
	struct timespec ts = { (time_t)(until / 1000000), (long)(until % 1000000) * 1000 };
	struct reload_req *q = calloc(1, sizeof(*q)), *prev;
	int rc;

	if (!q || !(q->dc = malloc(sizeof(*q->dc)))) {
		free(q);
		buf_puts(err, "ddos: out of memory");
		buf_cstr(err);
		return M_ENOMEM;
	}
	if (!(q->nc = ddos_detect_conf_new(dc, err))) {
		free(q->dc);
		free(q);
		return M_EINVAL;
	}
	*q->dc = *dc;
	memset(dc, 0, sizeof(*dc));
	q->dry_run = dry_run;
	pthread_mutex_lock(&c->mu);
	if (c->closed || !c->started) {
		pthread_mutex_unlock(&c->mu);
		/* Not running: put in force here (no other thread has it). */
		if (!c->started && !c->closed) {
			c->reload = q;
			apply_reload(c);
			if (st)
				*st = q->st;
			reload_req_free(q);
			return M_OK;
		}
		reload_req_free(q);
		return M_ECLOSED;
	}
	/* One caller at a time (serve's main thread); an earlier request the
	 * thread has not taken yet is replaced by this one. */
	prev = c->reload;
	c->reload = q;
	if (prev && !prev->abandoned) {
		prev->replaced = 1;
		pthread_cond_broadcast(&c->cv);
		prev = NULL;      /* its caller frees it */
	}
	pthread_mutex_unlock(&c->mu);
	reload_req_free(prev);
	wake(c);
	pthread_mutex_lock(&c->mu);
	while (!q->done && !q->replaced && !c->closed)
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) != 0)
			break;
	if (q->replaced) {
		pthread_mutex_unlock(&c->mu);
		reload_req_free(q);
		return M_EAGAIN;
	}
	if (q->done) {
		if (st)
			*st = q->st;
		rc = M_OK;
		pthread_mutex_unlock(&c->mu);
		reload_req_free(q);
		return rc;
	}
	if (c->reload == q && c->closed) {
		/* The thread stopped before taking it. */
		c->reload = NULL;
		pthread_mutex_unlock(&c->mu);
		reload_req_free(q);
		return M_ECLOSED;
	}
	q->abandoned = 1;     /* the thread frees it once applied */
	pthread_mutex_unlock(&c->mu);
	return M_EAGAIN;
}

/* ---- metrics ---- */

struct seq_walk {
	const char *listener;
	int logged, more;
};

/* An exporter whose export sequence had gaps since the last report. */
static void seq_report_one(void *arg, const struct flow_seq_stat *s)
{
	struct seq_walk *w = arg;
	char ip[FLOW_IP_STRLEN];

	if (!s->lost_interval)
		return;
	if (w->logged >= SEQ_LOG_MAX) {
		w->more++;
		return;
	}
	w->logged++;
	log_msg(LOG_WARN, "ddos", "event=exporter_sequence_loss listener=%s exporter=%s domain=%u"
		" format=%s lost=%llu unit=%s lost_total=%llu late_total=%llu restarts=%llu"
		" datagrams=%llu hint=\"missing between the exporter and mamori: attacks are"
		" undercounted by this share; if mamori_ddos_kernel_drops_total grows too, raise"
		" udp_rcvbuf\"", w->listener, flow_ip_str(&s->exporter, ip, sizeof(ip)), s->domain,
		flow_format_name((enum flow_format)s->format), (unsigned long long)s->lost_interval,
		s->unit_records ? "records" : "datagrams", (unsigned long long)s->lost,
		(unsigned long long)s->late, (unsigned long long)s->resets,
		(unsigned long long)s->datagrams);
}

/* Once a minute: which exporters lost what (the totals are metrics). */
static void seq_report(struct ddos_collector *c)
{
	for (int i = 0; i < c->nl; i++) {
		struct seq_walk w = { c->l[i].name, 0, 0 };

		flow_decoder_seq_foreach(c->l[i].dec, seq_report_one, &w);
		if (w.more)
			log_msg(LOG_WARN, "ddos", "event=exporter_sequence_loss listener=%s"
				" more_exporters=%d hint=\"only the first %d are logged\"", c->l[i].name,
				w.more, SEQ_LOG_MAX);
	}
}

static void publish(struct ddos_collector *c)
{
	const struct ddos_count_stats *cs = ddos_count_stats(ddos_detector_counters(c->det));
	const struct ddos_detect_stats *ds = ddos_detector_stats(c->det);
	uint64_t records = 0;

	for (int i = 0; i < c->nl; i++) {
		struct listener *l = &c->l[i];
		const struct flow_stats *st = flow_decoder_stats(l->dec);

		for (size_t k = 0; k < flow_stat_count; k++)
			metric_set(l->m_stat[k],
				   *(const uint64_t *)((const char *)st + flow_stat_descs[k].offset));
		metric_set(l->m_drops, l->ovfl);
		records += st->records;
	}
	if (c->deps.capture) {
		const struct ddos_capture_stats *ks;

		ddos_capture_poll_stats(c->deps.capture);
		ks = ddos_capture_stats(c->deps.capture);
		metric_set(c->m_cap_packets, ks->packets);
		metric_set(c->m_cap_bytes, ks->bytes);
		metric_set(c->m_cap_records, ks->records);
		metric_set(c->m_cap_kernel, ks->kernel_packets);
		metric_set(c->m_cap_drops, ks->kernel_drops);
		metric_set(c->m_cap_skipped[0], ks->not_ip);
		metric_set(c->m_cap_skipped[1], ks->short_pkts);
		metric_set(c->m_cap_skipped[2], ks->bad_blocks);
		records += ks->records;
	}
	metric_set(c->m_records, records);
	metric_set(c->m_counted, cs->counted);
	metric_set(c->m_unprotected, cs->unprotected);
	metric_set(c->m_allowed, cs->allowed_src);
	metric_set(c->m_late, cs->late);
	metric_set(c->m_started, ds->started);
	metric_set(c->m_ended, ds->ended);
	metric_set(c->m_active, ddos_detector_active(c->det));
	metric_set(c->m_hosts, ddos_count_hosts(ddos_detector_counters(c->det)));
	metric_set(c->m_memory, ddos_detector_memory(c->det));
	metric_set(c->m_eval_us, ds->eval_us_last > 0 ? (uint64_t)ds->eval_us_last : 0);
}

static void metrics_init(struct ddos_collector *c)
{
	static const char *const drop_to[4] = { "pipeline", "notify", "mitigation", "history" };
	char lb[128];

	for (int i = 0; i < c->nl; i++) {
		struct listener *l = &c->l[i];

		snprintf(lb, sizeof(lb), "listener=\"%s\"", l->name);
		l->m_dgrams = metric_get("mamori_ddos_datagrams_total",
					 "Flow datagrams received, per listener", METRIC_COUNTER, lb);
		l->m_bytes = metric_get("mamori_ddos_datagram_bytes_total",
					"Bytes of flow datagrams received, per listener",
					METRIC_COUNTER, lb);
		l->m_drops = metric_get("mamori_ddos_kernel_drops_total", KERNEL_DROPS_HELP,
					METRIC_COUNTER, lb);
		l->m_truncated = metric_get("mamori_ddos_datagrams_truncated_total",
					    "Datagrams longer than 64 KiB, dropped", METRIC_COUNTER, lb);
		for (int k = 0; k < ERR_N; k++) {
			snprintf(lb, sizeof(lb), "listener=\"%s\",kind=\"%s\"", l->name, err_kinds[k]);
			l->m_err[k] = metric_get("mamori_ddos_decode_errors_total",
						 "Datagrams the decoder refused, per listener and kind",
						 METRIC_COUNTER, lb);
		}
		for (size_t k = 0; k < flow_stat_count; k++) {
			snprintf(lb, sizeof(lb), "listener=\"%s\",stat=\"%s\"", l->name,
				 flow_stat_descs[k].name);
			l->m_stat[k] = metric_get("mamori_ddos_decoder_total",
						  "Flow decoder counters (struct flow_stats, docs/ddos.md), "
						  "per listener", METRIC_COUNTER, lb);
		}
	}
	if (c->deps.capture) {
		static const char *const skip[3] = { "not_ip", "short", "bad_block" };
		const char *ifn = ddos_capture_ifname(c->deps.capture);

		c->m_cap_drops = metric_get("mamori_ddos_kernel_drops_total", KERNEL_DROPS_HELP,
					    METRIC_COUNTER, "listener=\"capture\"");
		snprintf(lb, sizeof(lb), "interface=\"%s\"", ifn);
		c->m_cap_packets = metric_get("mamori_ddos_capture_packets_total",
					      "Packets read from the capture ring", METRIC_COUNTER, lb);
		c->m_cap_bytes = metric_get("mamori_ddos_capture_bytes_total",
					    "Wire bytes of the packets read from the capture ring",
					    METRIC_COUNTER, lb);
		c->m_cap_records = metric_get("mamori_ddos_capture_records_total",
					      "Captured packets counted as flow records", METRIC_COUNTER,
					      lb);
		c->m_cap_kernel = metric_get("mamori_ddos_capture_kernel_packets_total",
					     "Packets the kernel's capture filter took (kept or dropped)",
					     METRIC_COUNTER, lb);
		for (int k = 0; k < 3; k++) {
			snprintf(lb, sizeof(lb), "interface=\"%s\",kind=\"%s\"", ifn, skip[k]);
			c->m_cap_skipped[k] = metric_get("mamori_ddos_capture_skipped_total",
							 "Captured packets not counted, per kind",
							 METRIC_COUNTER, lb);
		}
	}
	c->m_records = metric_get("mamori_ddos_records_total", "Flow records decoded",
				  METRIC_COUNTER, NULL);
	c->m_counted = metric_get("mamori_ddos_records_counted_total",
				  "Flow records towards a protected destination", METRIC_COUNTER, NULL);
	c->m_unprotected = metric_get("mamori_ddos_records_unprotected_total",
				      "Flow records towards no protected group", METRIC_COUNTER, NULL);
	c->m_allowed = metric_get("mamori_ddos_records_allowed_total",
				  "Flow records from an allow-listed source (not counted)",
				  METRIC_COUNTER, NULL);
	c->m_late = metric_get("mamori_ddos_records_late_total",
			       "Flow records that started in a judged second (moved forward)",
			       METRIC_COUNTER, NULL);
	c->m_started = metric_get("mamori_ddos_attacks_started_total", "Attacks started",
				  METRIC_COUNTER, NULL);
	c->m_ended = metric_get("mamori_ddos_attacks_ended_total", "Attacks ended",
				METRIC_COUNTER, NULL);
	c->m_active = metric_get("mamori_ddos_attacks_active", "Attacks in progress",
				 METRIC_GAUGE, NULL);
	c->m_hosts = metric_get("mamori_ddos_hosts_tracked", "Protected addresses tracked",
				METRIC_GAUGE, NULL);
	c->m_memory = metric_get("mamori_ddos_detector_bytes", "Memory of the counters and attacks",
				 METRIC_GAUGE, NULL);
	c->m_eval_us = metric_get("mamori_ddos_eval_microseconds",
				  "Time to judge the last second", METRIC_GAUGE, NULL);
	for (int k = 0; k < 4; k++) {
		snprintf(lb, sizeof(lb), "to=\"%s\"", drop_to[k]);
		c->m_dropped[k] = metric_get("mamori_ddos_reports_dropped_total",
					     "Attack reports dropped on a full queue",
					     METRIC_COUNTER, lb);
	}
}

/* ---- the thread ---- */

static void *collect_main(void *arg)
{
	struct ddos_collector *c = arg;
	int64_t next_tick = 0, next_pub = 0;
	struct epoll_event evs[4];

	ddos_detector_tick(c->det, now_ms());
	while (!atomic_load(&c->stop)) {
		int64_t mono = clock_mono_us();
		int wait = next_tick > mono ? (int)((next_tick - mono) / 1000) + 1 : 0;
		int n = epoll_wait(c->ep, evs, 4, wait);

		if (n < 0 && errno != EINTR) {
			log_msg(LOG_ERROR, "ddos", "event=epoll_failed err=\"%s\"", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint32_t k = evs[i].data.u32;
			if (k == EV_WAKE) {
				uint64_t v;
				if (read(c->wake, &v, sizeof(v)) < 0 && errno != EAGAIN)
					log_msg(LOG_WARN, "ddos", "event=wake_read_failed");
			} else if (k < (uint32_t)c->nl) {
				drain(c, &c->l[k]);
			}
		}
		if (c->deps.capture && ddos_capture_read(c->deps.capture, now_ms(), on_rec, c))
			flush_recs(c);
		mono = clock_mono_us();
		if (mono >= next_tick) {
			ddos_detector_tick(c->det, now_ms());
			next_tick = mono + TICK_US;
		}
		serve_top(c);
		apply_reload(c);
		if (mono >= next_pub) {
			publish(c);
			next_pub = mono + PUBLISH_US;
		}
		if (mono >= c->next_minute) {
			if (c->next_minute) {
				seq_report(c);
				for (int i = 0; i < c->nl; i++)
					flow_decoder_expire(c->l[i].dec, now_ms());
			}
			c->next_minute = mono + MINUTE_US;
		}
	}
	flush_recs(c);
	publish(c);
	pthread_mutex_lock(&c->mu);
	c->closed = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

static int bind_udp(struct listener *l, int64_t rcvbuf, struct buf *err)
{
	struct addrinfo hints, *res = NULL;
	char host[256], port_s[16];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int port, one = 1, v, got = 0, rc;
	socklen_t gl = sizeof(got);

	if (conf_split_addr(l->addr, host, sizeof(host), &port) != 0 || port < 0 || port > 65535) {
		buf_printf(err, "ddos.%s: bad address '%s' (expected host:port)", l->name, l->addr);
		return M_EINVAL;
	}
	snprintf(port_s, sizeof(port_s), "%d", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] && strcmp(host, "*") ? host : NULL, port_s, &hints, &res);
	if (rc != 0 || !res) {
		buf_printf(err, "ddos.%s: cannot resolve '%s': %s", l->name, l->addr,
			   rc ? gai_strerror(rc) : "no address");
		if (res)
			freeaddrinfo(res);
		return M_EINVAL;
	}
	l->fd = socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0 || bind(l->fd, res->ai_addr, res->ai_addrlen) < 0) {
		buf_printf(err, "ddos.%s: cannot listen on %s: %s", l->name, l->addr, strerror(errno));
		freeaddrinfo(res);
		return M_EIO;
	}
	freeaddrinfo(res);
	(void)setsockopt(l->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
	(void)setsockopt(l->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	if (rcvbuf > 0) {
		v = rcvbuf > 0x3fffffff ? 0x3fffffff : (int)rcvbuf;
		/* SO_RCVBUF is doubled by the kernel: ask for half. FORCE passes
		 * net.core.rmem_max when we may (CAP_NET_ADMIN). */
		v /= 2;
		if (setsockopt(l->fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
			(void)setsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
		if (getsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &got, &gl) == 0 && got < 2 * v)
			log_msg(LOG_WARN, "ddos", "event=udp_rcvbuf_capped listener=%s want=%lld got=%d"
				" hint=\"raise net.core.rmem_max (sysctl) or run as root\"", l->name,
				(long long)rcvbuf, got);
	}
	if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) == 0)
		l->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
				((struct sockaddr_in6 *)&ss)->sin6_port);
	return M_OK;
}

struct ddos_collector *ddos_collector_new(const struct ddos_collect_config *cc,
					  const struct ddos_config *dc,
					  const struct ddos_collect_deps *deps, uint64_t next_id,
					  struct buf *err)
{
	struct ddos_handlers h = { on_start, on_update, on_end, on_exporter };
	struct flow_cfg fc = { 0 };
	struct ddos_collector *c = calloc(1, sizeof(*c));
	struct epoll_event ev;

	if (!c) {
		buf_puts(err, "ddos: out of memory");
		return NULL;
	}
	c->ep = c->wake = -1;
	c->l[0].fd = c->l[1].fd = -1;
	c->dc = dc;
	if (deps)
		c->deps = *deps;
	c->events_open = 1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_mutex_init(&c->ev_mu, NULL);
	c->nlive = dc->max_attacks > 0 ? (size_t)dc->max_attacks : 256;
	c->live = calloc(c->nlive, sizeof(*c->live));
	c->recs = malloc(REC_BATCH * sizeof(*c->recs));
	c->bufs = malloc((size_t)RECV_BATCH * MAX_DGRAM);
	if (!c->live || !c->recs || !c->bufs) {
		buf_puts(err, "ddos: out of memory");
		goto fail;
	}
	for (int i = 0; i < RECV_BATCH; i++) {
		c->iov[i].iov_base = c->bufs + (size_t)i * MAX_DGRAM;
		c->iov[i].iov_len = MAX_DGRAM;
	}
	c->det = ddos_detector_new(dc, &h, c, err);
	if (!c->det)
		goto fail;
	ddos_detector_set_next_id(c->det, next_id ? next_id : 1);
	fc.default_rate = (uint32_t)(cc->default_rate > 0 ? cc->default_rate : 1);
	fc.flags = cc->recv_clock ? FLOW_CFG_RECV_CLOCK : 0;
	fc.template_timeout_ms = cc->template_timeout > 0 ? cc->template_timeout * 1000 : -1;
	for (int k = 0; k < 2; k++) {
		const char *addr = k == 0 ? cc->netflow : cc->sflow;
		struct listener *l = &c->l[c->nl];

		if (!addr || !addr[0])
			continue;
		l->name = k == 0 ? "netflow" : "sflow";
		l->fmt = k == 0 ? FLOW_FMT_AUTO : FLOW_FMT_SFLOW;
		snprintf(l->addr, sizeof(l->addr), "%s", addr);
		c->nl++;
		l->m_stat = calloc(flow_stat_count, sizeof(*l->m_stat));
		l->dec = flow_decoder_new(&fc, on_rec, NULL, c);
		if (!l->m_stat || !l->dec) {
			buf_puts(err, "ddos: out of memory");
			goto fail;
		}
		if (bind_udp(l, cc->rcvbuf, err) < 0)
			goto fail;
	}
	c->ep = epoll_create1(EPOLL_CLOEXEC);
	c->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->ep < 0 || c->wake < 0) {
		buf_printf(err, "ddos: epoll/eventfd: %s", strerror(errno));
		goto fail;
	}
	for (int i = 0; i < c->nl; i++) {
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t)i;
		epoll_ctl(c->ep, EPOLL_CTL_ADD, c->l[i].fd, &ev);
	}
	ev.events = EPOLLIN;
	ev.data.u32 = EV_WAKE;
	epoll_ctl(c->ep, EPOLL_CTL_ADD, c->wake, &ev);
	if (c->deps.capture) {
		ev.events = EPOLLIN;
		ev.data.u32 = EV_CAPTURE;
		epoll_ctl(c->ep, EPOLL_CTL_ADD, ddos_capture_fd(c->deps.capture), &ev);
	}
	if (c->deps.pipe && !(c->in = pipeline_add_input(c->deps.pipe, "ddos", RAW_JSON))) {
		buf_puts(err, "ddos: too many pipeline inputs");
		goto fail;
	}
	metrics_init(c);
	return c;
fail:
	buf_cstr(err);
	ddos_collector_free(c);
	return NULL;
}

int ddos_collector_start(struct ddos_collector *c)
{
	if (pthread_create(&c->th, NULL, collect_main, c) != 0) {
		log_msg(LOG_ERROR, "ddos", "event=thread_failed thread=collector");
		return M_EIO;
	}
	pthread_setname_np(c->th, "mamori-ddos");
	c->started = 1;
	for (int i = 0; i < c->nl; i++)
		log_msg(LOG_INFO, "ddos", "event=listening listener=%s addr=%s port=%d", c->l[i].name,
			c->l[i].addr, c->l[i].port);
	if (c->deps.capture)
		log_msg(LOG_INFO, "ddos", "event=capturing interface=%s sampling=%u",
			ddos_capture_ifname(c->deps.capture), ddos_capture_sampling(c->deps.capture));
	return M_OK;
}

void ddos_collector_stop(struct ddos_collector *c)
{
	if (!c)
		return;
	if (c->started) {
		atomic_store(&c->stop, 1);
		wake(c);
		pthread_join(c->th, NULL);
		c->started = 0;
	}
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
	for (int i = 0; i < 2; i++) {
		if (c->l[i].fd >= 0)
			close(c->l[i].fd);
		flow_decoder_free(c->l[i].dec);
		free(c->l[i].m_stat);
	}
	if (c->ep >= 0)
		close(c->ep);
	if (c->wake >= 0)
		close(c->wake);
	ddos_detector_free(c->det);
	for (int i = 0; i < TOP_SLOTS; i++)
		ddos_exporter_list_fini(&c->slots[i].exp);
	reload_req_free(c->reload);
	ddos_config_free(c->dc_own);
	free(c->dc_own);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->ev_mu);
	free(c->live);
	free(c->recs);
	free(c->bufs);
	free(c);
}

int ddos_collector_port(const struct ddos_collector *c, int sflow)
{
	for (int i = 0; c && i < c->nl; i++)
		if (!strcmp(c->l[i].name, sflow ? "sflow" : "netflow"))
			return c->l[i].port;
	return 0;
}
