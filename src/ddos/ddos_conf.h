/*
 * Configuration of DDoS detection: the `ddos:` section. Protected space is
 * a list of host groups (name, prefixes); each group carries its own
 * thresholds for single hosts, for /24 and /48 aggregates and for the group
 * as a whole, a learned-baseline alarm, trigger and cool-down times, allow
 * lists and mitigation tiers. docs/ddos-detection.md is the operator's side.
 *
 * Thresholds are a matrix: a traffic class (total, a protocol, a TCP flag
 * class, fragments, amplification or one amplification vector) by a metric
 * (bits/s, packets/s, flows/s); 0 means "no threshold". The class and
 * vector tables below are the one place their names live: the
 * configuration keys, the classification ("memcached amplification") and
 * the API all read them.
 */
#ifndef MAMORI_DDOS_CONF_H
#define MAMORI_DDOS_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"

/* UDP amplification vectors, by the reflector's source port. */
#define DDOS_VEC_N 24

struct ddos_vector {
	uint16_t port;       /* UDP source port of the reflected traffic */
	const char *key;     /* configuration key: "memcached" */
	const char *name;    /* in classifications: "memcached" amplification */
};

extern const struct ddos_vector ddos_vectors[DDOS_VEC_N];

/* The vector whose reflectors send from this UDP port, or -1. */
int ddos_vector_by_port(uint16_t port);

/* Traffic classes. Flow records carry the OR of their packets' TCP flags,
 * so a record counts whole in one flag class: syn = SYN without ACK (no
 * handshake completed: what a SYN flood looks like), rst = RST, ack = ACK
 * without RST (established traffic, ACK floods and SYN-ACK reflection).
 * A whole flow of a completed connection counts as ack, so ack thresholds
 * must sit above a host's normal TCP traffic. fragment = IP fragments
 * (non-first fragments carry no ports, so they never count in a vector).
 * other = not TCP, UDP or ICMP/ICMPv6. */
enum ddos_class {
	DDOS_C_TOTAL,
	DDOS_C_TCP,
	DDOS_C_UDP,
	DDOS_C_ICMP,
	DDOS_C_OTHER,
	DDOS_C_SYN,
	DDOS_C_ACK,
	DDOS_C_RST,
	DDOS_C_FRAG,
	DDOS_C_AMP,      /* all amplification vectors together */
	DDOS_C_VEC,      /* DDOS_C_VEC + i: vector i of ddos_vectors */
	DDOS_C_N = DDOS_C_VEC + DDOS_VEC_N
};

enum ddos_metric {
	DDOS_M_BPS,
	DDOS_M_PPS,
	DDOS_M_FPS,
	DDOS_M_N
};

/* Configuration key of a class ("total", "syn", "fragment", "memcached"). */
const char *ddos_class_key(int cls);
const char *ddos_metric_key(int m);   /* "bps", "pps", "fps" */

struct ddos_thresholds {
	uint64_t v[DDOS_C_N][DDOS_M_N];    /* 0 = none */
};

/* A prefix; IPv4 is v4-mapped (::ffff:0:0/96 + n), as in struct flow_ip.
 * Host bits are zero. */
struct ddos_pfx {
	uint8_t a[16];
	uint8_t len;     /* 0..128 in the v4-mapped space */
	uint8_t v4;      /* written as IPv4 */
};

/* Parses "203.0.113.0/24", "2001:db8::/32" or a bare address (a host
 * route); M_EINVAL for junk or host bits set. */
int ddos_pfx_parse(const char *s, struct ddos_pfx *out);
/* "203.0.113.0/24"; out of at least 64 bytes. */
const char *ddos_pfx_str(const struct ddos_pfx *p, char *out, size_t outsz);

/* Parses a rate: "1G", "1.5 Gbps", "200k", "20kpps", "0", "off". SI
 * multipliers (k = 1000). M_EINVAL for junk or more than 10^18. */
int ddos_rate_parse(const char *s, uint64_t *out);
/* "1.5G", "200k", "37"; out of at least 16 bytes. */
const char *ddos_rate_str(double v, char *out, size_t outsz);

struct ddos_tier {
	char *name;          /* e.g. "flowspec-ratelimit", "blackhole" */
	uint64_t bps, pps;   /* reached when the peak passes either (0 = unused) */
};

#define DDOS_MAX_GROUPS 1024
#define DDOS_MAX_TIERS 8

struct ddos_group_conf {
	/* Set by the keyword table (conf_apply_map). */
	char *name;
	int64_t trigger;       /* seconds over a threshold before an attack starts */
	int64_t cooldown;      /* seconds under every threshold before it ends */
	char *baseline_s;      /* multiple of the baseline, "0" = off */
	char *floor_bps_s, *floor_pps_s;
	int sliding;           /* a 1 s trigger also looks at the second ending at each tick */
	/* Resolved by ddos_config_load. */
	double baseline;       /* alarm at baseline × this; 0 = no baseline alarm */
	uint64_t floor_bps, floor_pps;   /* the baseline alarm never below */
	struct ddos_pfx *prefixes, *allow_src, *allow_dst;
	size_t nprefixes, nallow_src, nallow_dst;
	struct ddos_thresholds host, prefix, group;
	struct ddos_tier tiers[DDOS_MAX_TIERS];
	size_t ntiers;
};

struct ddos_config {
	int64_t delay;          /* seconds a second waits for late records */
	int64_t max_hosts, max_prefixes, max_detail, max_attacks, max_exporters;
	int64_t timeline_points, update_interval, exporter_warn;
	int64_t prefix_v4, prefix_v6;
	int64_t carpet_max_share, carpet_min_hosts, vector_share;
	int64_t baseline_window, baseline_warmup;
	struct ddos_pfx *allow_src, *allow_dst;   /* for every group */
	size_t nallow_src, nallow_dst;
	struct ddos_group_conf *groups;
	size_t ngroups;
};

/* Fills cfg from the `ddos:` section of doc (NULL or no section: the
 * defaults, with one group "default" that protects nothing). Errors read
 * "file:line:col: ddos.groups[1].thresholds.syn: ...". On error cfg is
 * left for ddos_config_free. cfg is owned by the caller. */
int ddos_config_load(const struct conf_doc *doc, struct ddos_config *cfg, struct buf *err);
void ddos_config_free(struct ddos_config *cfg);
/* Names (comma-separated, appended to out) of the settings that differ
 * between a and b and need a restart: delay, the max_* table sizes,
 * timeline_points, prefix_v4, prefix_v6. Everything else is reloadable
 * (ddos_detector_reconfigure). */
int ddos_config_changed_fixed(const struct ddos_config *a, const struct ddos_config *b,
			      struct buf *out);
/* The section as documented YAML, for `mamori --defaults`. */
int ddos_config_describe(struct buf *out);
/* Default thresholds (hosts, /24 and /48 aggregates, groups). */
void ddos_thresholds_default(struct ddos_thresholds *host, struct ddos_thresholds *prefix,
			     struct ddos_thresholds *group);

#endif
