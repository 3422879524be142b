/*
 * The DDoS collector: the thread that runs the pillar inside `mamori
 * serve`. It receives flow datagrams on its UDP listeners (NetFlow v5/v9
 * and IPFIX on one socket, told apart by version; sFlow on another) with
 * recvmmsg() into a large receive buffer, decodes them (flow.h), reads the
 * packets of a mirror port from a capture ring (capture.h) when one is
 * configured, counts the records in the detector (ddos_detect.h) and ticks
 * it several times a second. The detector's attacks become, without ever blocking the thread:
 *
 *   - a mitigation request to the mitigation worker (the tier's action on
 *     the attack's prefix; FlowSpec matches the vector's protocol and
 *     source ports), and its end;
 *   - an event in the pipeline (a JSON record, event.module "ddos") at the
 *     start and the end, so storage and the detection rules see it;
 *   - a notification at the start, the end and an escalation;
 *   - a row in the attack history (attack_db.h) at every report.
 *
 * ddos.threads runs N such threads, each with its own sockets (SO_REUSEPORT),
 * decoders and detector for a shard of the protected space (ddos_shard.h).
 * The detectors and the decoders are not thread-safe: the API's top
 * talkers and exporter list are asked of the collector threads (a request
 * slot, a condition variable, an eventfd that wakes the thread) and
 * answered with a copy.
 */
#ifndef MAMORI_DDOS_COLLECT_H
#define MAMORI_DDOS_COLLECT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "ddos/ddos_conf.h"
#include "ddos/ddos_count.h"
#include "ddos/ddos_detect.h"
#include "ddos/exporters.h"
#include "ddos/mitig.h"

struct pipeline;
struct ddos_capture;
struct notifier;
struct attack_db;

/* The collector's own keys of the `ddos:` section. */
struct ddos_collect_config {
	char *netflow;            /* host:port for NetFlow v5/v9 and IPFIX; "" = off */
	char *sflow;              /* host:port for sFlow v5; "" = off */
	int64_t rcvbuf;           /* SO_RCVBUF of each socket, bytes */
	int64_t default_rate;     /* sampling assumed until an exporter announces one */
	int recv_clock;           /* anchor record times to the receive time */
	int64_t template_timeout; /* seconds a v9/IPFIX template lives unrefreshed; 0 = ever */
	char *capture_if;         /* mirror-port interface; "" = off */
	int64_t capture_sampling; /* 1-in-N packets taken from it */
	int64_t capture_ring;     /* bytes of its receive ring */
	char *attacks_db;         /* "" = <data_dir>/ddos.db */
	int64_t attack_retention; /* seconds; 0 = keep */
	int64_t attack_history;   /* ended attacks kept at most */
	int64_t threads;          /* collector threads, each a shard (ddos_shard.h) */
};

extern const struct conf_keyword ddos_collect_keywords[];

/* Fills cfg from the collector's keys of the `ddos:` section (defaults
 * when absent); the detector's keys are ddos_config_load()'s.
 * ddos_collect_config_free() in every case. */
int ddos_collect_config_load(const struct conf_doc *doc, struct ddos_collect_config *cfg,
			     struct buf *err);
void ddos_collect_config_free(struct ddos_collect_config *cfg);
/* The collector's keys as documented YAML lines under `ddos:`. */
int ddos_collect_config_describe(struct buf *out);
/* 1 when at least one listener or the capture is configured. */
int ddos_collect_enabled(const struct ddos_collect_config *cfg);

/* Where attacks are reported; every member may be NULL. Borrowed: each
 * must outlive ddos_collector_stop(). */
struct ddos_collect_deps {
	struct pipeline *pipe;
	struct notifier *nf;
	struct mitig_worker *mw;
	struct attack_db *adb;
	struct ddos_capture *capture;  /* opened before the privilege drop (capture.h) */
	int dry_run;              /* mitigations are decided and recorded, not sent */
};

struct ddos_collector;

/* Binds the listeners and builds the detector. dc is borrowed and must
 * outlive the collector (the notifications read its tiers; after a
 * ddos_collector_reload() the collector's own copy is read); next_id
 * continues attack numbering. NULL with a message in err (a port in use:
 * the address is named). Owner: the caller, ddos_collector_free(). */
struct ddos_collector *ddos_collector_new(const struct ddos_collect_config *cc,
					  const struct ddos_config *dc,
					  const struct ddos_collect_deps *deps, uint64_t next_id,
					  struct buf *err);
int ddos_collector_start(struct ddos_collector *c);
/* Stops and joins the thread; later top-talker requests get M_ECLOSED.
 * The collector stays valid (for API threads still running) until freed. */
void ddos_collector_stop(struct ddos_collector *c);
/* No more events into the pipeline from any thread (the mitigation
 * observer included): call before the pipeline drains. */
void ddos_collector_close_events(struct ddos_collector *c);
void ddos_collector_free(struct ddos_collector *c);
/* SIGHUP: a new `ddos:` detection configuration (and the mitigation's
 * dry-run flag) for the running collector. dc is compiled and checked
 * here, on the caller's thread: when it is refused, err says why, the
 * result is negative and nothing changes (dc stays the caller's). Else
 * dc's contents move into the collector (*dc is left empty) and the
 * collector thread puts it in force between two ticks
 * (ddos_detector_reconfigure: counters, baselines and attacks kept;
 * attacks on targets now allow-listed or unprotected end, and their
 * mitigations are withdrawn at once). Waits up to timeout_ms for that:
 * 0 with st filled, or M_EAGAIN when the thread has not got to it yet (it
 * will). Listeners, capture and table sizes are restart-only. */
int ddos_collector_reload(struct ddos_collector *c, struct ddos_config *dc, int dry_run,
			  struct ddos_reload_stats *st, int timeout_ms, struct buf *err);
/* The bound UDP port of a listener (0 when off): sflow 0 = NetFlow/IPFIX. */
int ddos_collector_port(const struct ddos_collector *c, int sflow);

/* The mitigation manager's observer (mitig_set_observer(), arg = the
 * collector): every step of an attack's mitigation goes to the attack
 * history, and every step (manual ones too) becomes an event. Never
 * waits. */
void ddos_collector_mitig_observer(void *arg, const char *what, const struct mitig_entry *e,
				   const char *detail);

/* ---- top talkers, for the API ---- */

#define DDOS_TOP_ATTACKS 8

struct ddos_top_attack {
	char id[24];
	char target[64];
	char summary[192];
};

/* A copy of what the counters know about one protected address. */
struct ddos_top {
	int has_host, has_prefix, has_group;
	struct ddos_target_view host, prefix, grp;   /* .group is NULL: see group[] */
	char group[64];
	char prefix_str[64];                      /* the aggregate: "203.0.113.0/24" */
	size_t nattacks;                          /* in progress on it or its aggregates */
	struct ddos_top_attack attacks[DDOS_TOP_ATTACKS];
};

/* Asks the collector thread; waits up to timeout_ms. 0, M_ENOTFOUND when
 * the address is in no protected group, M_EAGAIN on timeout or when every
 * request slot is busy, M_ECLOSED when stopped. */
int ddos_collector_top(struct ddos_collector *c, const struct flow_ip *ip, struct ddos_top *out,
		       int timeout_ms);

/* ---- exporters, for the API ---- */

/* Every exporter's telemetry health (exporters.h), copied on the collector
 * thread: *out (owner: the caller, free(); NULL when there is none) holds
 * *n entries, most recently heard from first. Waits up to timeout_ms. 0,
 * M_ENOMEM, M_EAGAIN on timeout or when every request slot is busy,
 * M_ECLOSED when stopped. */
int ddos_collector_exporters(struct ddos_collector *c, struct ddos_exporter_info **out, size_t *n,
			     int timeout_ms);

/* ---- pure pieces (the unit tests call them) ---- */

/* The mitigation an attack's tier asks for. The tier's name says the
 * action (mitig_action_parse(), or "flowspec" for a discard); a FlowSpec
 * rule matches the attack's match (struct ddos_attack.match_*): the
 * amplification vectors' source ports (UDP), or the dominant protocol
 * (none: the destination alone). A rate limit is set to the tier's own
 * bps level. 1 with rq filled (and a short description of it in what), 0
 * when none is due (no tier, allow-listed, a tier name that is no action,
 * or a filter while nothing is established to match: what says why). A
 * blackhole needs no match. */
int ddos_attack_mitigation(const struct ddos_attack *a, const struct ddos_config *cfg,
			   struct mitig_request *rq, char *what, size_t whatsz);
/* "31.2 Gbps", "850 Mbps", "12.0 kpps" (unit "bps" or "pps"). */
const char *ddos_rate_human(double v, const char *unit, char *out, size_t outsz);
/* The attack as one JSON event line (no newline): phase "start", "update"
 * (its tier rose), "vector" (its mitigation's match changed), "classified"
 * (a match was first established after the start) or "end" — the last
 * three are event.type "update"; action as ddos_attack_mitigation()
 * described it. */
int ddos_attack_event_json(const struct ddos_attack *a, const char *phase, const char *action,
			   int critical, int64_t now_ms, struct buf *out);

#endif
