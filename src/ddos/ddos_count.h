/*
 * DDoS traffic counters: per protected destination address, per /24 (/48)
 * aggregate and per host group, the bits, packets and flow records of each
 * second, sampling-corrected, with the flow records spread over the time
 * they stand for.
 *
 * Why spread: a router exports a long flow every active timeout (often
 * 60 s) with everything it counted since; counting the record in the
 * second it arrives shows 60x the real rate for one second and nothing for
 * the other 59. Each record is instead laid over its own start..end, and a
 * record whose start lies in a second that was already judged is moved
 * forward to the first open second, keeping its duration: the rate stays
 * true, only its timing moves (by at most the exporter's timeout, which is
 * reported per exporter). docs/ddos-detection.md has the arithmetic.
 *
 * Targets near one of their thresholds (or under attack) get "detail":
 * the same per-second counters per traffic class (protocols, TCP flag
 * classes, fragments, amplification vectors) and bounded top sources and
 * source ports (space-saving sketches). Everything is preallocated: the
 * hot path (ddos_count_add) never allocates; full tables evict their least
 * busy idle entry and count what they could not hold.
 *
 * Time is injected: ddos_count_advance() with the wall clock, then
 * ddos_count_step() closes each second that is `delay` seconds old. Not
 * thread-safe: one collector thread owns the counters.
 */
#ifndef MAMORI_DDOS_COUNT_H
#define MAMORI_DDOS_COUNT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "ddos/ddos_conf.h"
#include "ddos/flow.h"

#define DDOS_TOP_SRC 10
#define DDOS_TOP_PORT 8

struct ddos_top_src {
	struct flow_ip ip;
	double bytes;        /* upper estimate (space-saving), sampling-corrected */
};

struct ddos_top_port {
	uint16_t port;       /* source port */
	uint8_t proto;
	double bytes;
};

struct ddos_count_stats {
	uint64_t records;          /* given to ddos_count_add */
	uint64_t counted;          /* towards a protected destination */
	uint64_t unprotected;      /* destination in no group */
	uint64_t allowed_src;      /* source on an allow list: not counted */
	uint64_t bad;              /* no destination address */
	uint64_t late;             /* started in a judged second: moved forward */
	uint64_t future;           /* started too far ahead: moved back */
	uint64_t truncated;        /* longer than the ring: the tail dropped */
	uint64_t hosts_new, hosts_evicted, hosts_dropped;
	uint64_t hosts_widened;    /* given 32-bit slots: a second could pass 32,768 units or packets */
	uint64_t prefixes_new, prefixes_evicted, prefixes_dropped;
	uint64_t detail_promoted, detail_released, detail_evicted, detail_refused;
	uint64_t exporters_dropped;  /* records of exporters past max_exporters */
	uint64_t seconds;          /* closed */
	uint64_t clock_jumps;      /* time moved back, or so far ahead the ring was reset */
};

struct ddos_exporter_stat {
	struct flow_ip ip;
	uint64_t records;
	int64_t max_duration_ms;   /* longest record seen: about its active timeout */
	int64_t max_age_ms;        /* largest now - end on arrival */
	uint64_t late;             /* records moved forward */
	int long_timeout;          /* max_duration_ms > exporter_warn */
};

struct ddos_rates {
	double bps, pps, fps;
};

enum ddos_target_kind {
	DDOS_T_HOST,
	DDOS_T_PREFIX,
	DDOS_T_GROUP,
};

/* What the counters know about one target, for the API and the tests. */
struct ddos_target_view {
	enum ddos_target_kind kind;
	const char *group;
	int64_t second;                  /* the last closed second */
	struct ddos_rates cls[DDOS_C_N]; /* [DDOS_C_TOTAL] always; the rest when detailed */
	int detailed;
	double base_bps, base_pps;       /* hosts: the learnt baseline */
	size_t nsrc, nport;
	struct ddos_top_src src[DDOS_TOP_SRC];
	struct ddos_top_port port[DDOS_TOP_PORT];
	int in_attack;                   /* an attack on it is in progress (ddos_detector_foreach) */
	int over;                        /* over a threshold in the last judged second */
};

struct ddos_counters;

/* Counters for cfg (copied: cfg may be freed afterwards), owned by the
 * caller (ddos_count_free). NULL with a message in err when a table cannot
 * be built or memory is short. */
struct ddos_counters *ddos_count_new(const struct ddos_config *cfg, struct buf *err);
void ddos_count_free(struct ddos_counters *c);

/* Counts one record. Hot path: no allocation, no system call. Records
 * before the first ddos_count_advance() are dropped. */
void ddos_count_add(struct ddos_counters *c, const struct flow_rec *r);
/* The same for n records at once (a datagram's worth): faster, as the
 * memory the records need is fetched for all of them together. */
void ddos_count_add_batch(struct ddos_counters *c, const struct flow_rec *r, size_t n);

/* Sets the clock (wall, ms). Returns the seconds now ready to be closed. */
int ddos_count_advance(struct ddos_counters *c, int64_t now_ms);
/* Closes the next ready second: 1 and *sec, or 0 when none is ready. */
int ddos_count_step(struct ddos_counters *c, int64_t *sec);

/* The last closed second of the host ip, its /24 (/48) or its group. */
int ddos_count_host(const struct ddos_counters *c, const struct flow_ip *ip,
		    struct ddos_target_view *out);
int ddos_count_prefix(const struct ddos_counters *c, const struct flow_ip *ip,
		      struct ddos_target_view *out);
int ddos_count_group(const struct ddos_counters *c, const char *name,
		     struct ddos_target_view *out);

const struct ddos_count_stats *ddos_count_stats(const struct ddos_counters *c);
size_t ddos_count_hosts(const struct ddos_counters *c);     /* tracked now */
size_t ddos_count_prefixes(const struct ddos_counters *c);
size_t ddos_count_details(const struct ddos_counters *c);
/* Bytes allocated (tables are allocated whole at creation). */
size_t ddos_count_memory(const struct ddos_counters *c);

typedef void (*ddos_exporter_fn)(void *arg, const struct ddos_exporter_stat *e);
void ddos_count_exporters(const struct ddos_counters *c, ddos_exporter_fn fn, void *arg);

#endif
