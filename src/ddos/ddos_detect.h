/*
 * DDoS detector: judges every closed second of the counters (ddos_count.h)
 * against each target's thresholds and learnt baseline, and turns what
 * holds into attacks with a start, updates and an end.
 *
 *   - A target is over when one of its group's thresholds (a class by a
 *     metric) is passed, or, for hosts, when it passes `baseline` times its
 *     learnt normal traffic and the floor. An attack starts after `trigger`
 *     seconds over in a row, and ends after `cooldown` seconds under.
 *   - Hosts, /24 (/48) aggregates and groups are judged top down. An
 *     aggregate over its threshold with its traffic spread over many hosts
 *     (none above carpet_max_share) is carpet bombing: one attack on the
 *     aggregate, and the hosts under it start none of their own.
 *   - Baselines (EWMA per host) learn only from seconds that are not over,
 *     not in an attack and not under a carpet attack.
 *   - Destinations on an allow list are watched and reported, flagged
 *     allowlisted, and never given a mitigation tier.
 *
 * The caller drives it: ddos_detector_add() for every flow record,
 * ddos_detector_tick() with the wall clock several times a second. Handlers
 * run inside tick(), on the caller's thread; they get a view valid during
 * the call and must not block (queue an event, post to the mitigation
 * worker). Not thread-safe: one thread owns a detector.
 */
#ifndef MAMORI_DDOS_DETECT_H
#define MAMORI_DDOS_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "ddos/ddos_conf.h"
#include "ddos/ddos_count.h"

/* Vectors an attack is named after (struct ddos_attack.vectors). */
#define DDOS_V_AMP    0x001   /* amplification: see .amp for which */
#define DDOS_V_SYN    0x002
#define DDOS_V_ACK    0x004
#define DDOS_V_RST    0x008
#define DDOS_V_TCP    0x010   /* TCP with other flags */
#define DDOS_V_UDP    0x020   /* UDP not from a known reflector port */
#define DDOS_V_ICMP   0x040
#define DDOS_V_FRAG   0x080
#define DDOS_V_OTHER  0x100   /* other IP protocols */
#define DDOS_V_CARPET 0x200   /* spread over an aggregate */

/* How much evidence an attack's name needs (docs/ddos-detection.md,
 * "Classification"): vectors are named once the classes of its seconds
 * were made from DDOS_CLASSIFY_RECORDS flow records (samples), or once
 * it has lasted DDOS_CLASSIFY_SECONDS judged seconds (slow attacks are
 * named from what there is); the dominant protocol counts from
 * DDOS_PROTO_RECORDS. A new match for the mitigation must hold
 * DDOS_MATCH_HOLD judged seconds. */
#define DDOS_CLASSIFY_RECORDS 32
#define DDOS_CLASSIFY_SECONDS 4
#define DDOS_PROTO_RECORDS 12
#define DDOS_MATCH_HOLD 2

struct ddos_point {
	int64_t t;              /* first second of the point */
	float bps, pps, fps;    /* the largest second within the point */
};

struct ddos_attack {
	uint64_t id;
	char id_str[24];                /* "ddos-42", for the mitigation layer */
	enum ddos_target_kind kind;
	struct flow_ip target;          /* the host, or the aggregate's network */
	uint8_t plen;                   /* 32/128 for hosts; aggregate length */
	char target_str[64];            /* "203.0.113.7", "203.0.113.0/24", "group web" */
	const char *group;
	uint32_t vectors;               /* DDOS_V_* named */
	uint32_t amp;                   /* bit i: ddos_vectors[i] named */
	char summary[192];              /* "memcached amplification + IP fragment flood" */
	char trigger[128];              /* what started it: "udp bps 4.20G > 1.00G" */
	int64_t start;                  /* first second over (s) */
	int64_t last;                   /* latest second over */
	int64_t end;                    /* 0 while it lasts; then last + 1 */
	double peak_bps, peak_pps, peak_fps;
	double cur_bps, cur_pps, cur_fps;   /* the latest second */
	double bytes, packets;          /* during the attack (estimated) */
	uint8_t proto;                  /* 6, 17, 1/58 when >= 80% of packets; 0 mixed
					 * (or not established: DDOS_PROTO_RECORDS) */
	int classifying;                /* too few records yet to name vectors
					 * (DDOS_CLASSIFY_*): "unclassified flood
					 * (classifying)", vectors and amp 0 */
	double records;                 /* flow records (samples) seen by the
					 * classes so far: the evidence */
	/* What a mitigation rule matches, held against flapping: the
	 * amplification vectors (bits as amp; the rule is UDP from their
	 * ports), else the protocol (0: any). Set from the classification
	 * when it is first established (the protocol may be before the
	 * vectors are named), then changed only when a different match has
	 * held DDOS_MATCH_HOLD judged seconds in a row (or the vectors are
	 * first named after a protocol-only match). match_ready 0: nothing
	 * established yet, a rule waits. */
	int match_ready;
	uint32_t match_amp;
	uint8_t match_proto;
	uint32_t hosts;                 /* aggregates: hosts seen with traffic at peak */
	size_t nsrc, nport;
	struct ddos_top_src src[DDOS_TOP_SRC];
	struct ddos_top_port port[DDOS_TOP_PORT];
	int tier;                       /* 1-based index of the group's tiers; 0 none */
	const char *tier_name;          /* NULL when tier is 0 */
	int allowlisted;                /* on a destination allow list: never mitigate */
	int released;                   /* on_end only: DDOS_RELEASED_* when a reload
					 * ended it; its mitigation goes at once */
	const struct ddos_point *timeline;
	size_t npoints;
	uint32_t step;                  /* seconds per point (grows as it is downsampled) */
};

/* Why a reload ended an attack (struct ddos_attack.released). */
#define DDOS_RELEASED_ALLOWED 1       /* its target is now on an allow list */
#define DDOS_RELEASED_UNPROTECTED 2   /* its target is in no group any more */

struct ddos_handlers {
	void (*on_start)(void *arg, const struct ddos_attack *a);
	/* Optional: every update_interval, and at once when the tier, the
	 * vectors, the mitigation's match or the allow flag change. */
	void (*on_update)(void *arg, const struct ddos_attack *a);
	void (*on_end)(void *arg, const struct ddos_attack *a);
	/* Optional: once per exporter whose records span past exporter_warn. */
	void (*on_exporter)(void *arg, const struct ddos_exporter_stat *e);
};

struct ddos_detect_stats {
	uint64_t started, ended, updates;
	uint64_t early;            /* started before their last second closed */
	uint64_t window;           /* of those, on the last second sliding (window_over) */
	uint64_t refused;          /* the attack table was full */
	uint64_t suppressed;       /* target-seconds over, covered by a carpet attack */
	uint64_t seconds;          /* judged */
	int64_t eval_us_last, eval_us_max;   /* judging one second (monotonic clock) */
};

struct ddos_detector;

/* A detector for cfg (copied), owned by the caller; h may be NULL and its
 * members may be NULL. NULL with a message in err on failure. */
struct ddos_detector *ddos_detector_new(const struct ddos_config *cfg, const struct ddos_handlers *h,
					void *arg, struct buf *err);
void ddos_detector_free(struct ddos_detector *d);

/* Counts one flow record (ddos_count_add). */
void ddos_detector_add(struct ddos_detector *d, const struct flow_rec *r);
/* n records at once (ddos_count_add_batch): what a collector should use,
 * copying a datagram's records into an array as flow_decode() hands them
 * out. */
void ddos_detector_add_batch(struct ddos_detector *d, const struct flow_rec *r, size_t n);
/* Advances to now_ms (wall clock) and judges every second that is ready;
 * returns how many. Call it a few times a second. */
int ddos_detector_tick(struct ddos_detector *d, int64_t now_ms);

/* Attacks in progress, in table order. */
typedef void (*ddos_attack_fn)(void *arg, const struct ddos_attack *a);
void ddos_detector_foreach(const struct ddos_detector *d, ddos_attack_fn fn, void *arg);
size_t ddos_detector_active(const struct ddos_detector *d);
/* The next attack id (to continue numbering after a restart). */
void ddos_detector_set_next_id(struct ddos_detector *d, uint64_t id);

/* ---- shards (ddos_shard.h) ---- */

struct ddos_gsync;

/* Makes d shard k of the detectors sharing g, before its first tick:
 * from then on tick() publishes its groups' part of each closed second
 * and judges its aggregates and hosts once shard 0 has judged the groups
 * over every shard (never waiting: a later tick finishes the second).
 * Shard 0 holds the group attacks; attack ids come from g. Every record
 * given to shard k must belong to it (ddos_shard_of). 0, M_EINVAL or
 * M_ENOMEM. */
int ddos_detector_shard(struct ddos_detector *d, struct ddos_gsync *g, unsigned k);
/* 1 while a closed second waits for the groups' verdict: tick soon. */
int ddos_detector_pending(const struct ddos_detector *d);
/* The group's last closed second as ddos_count_group() gives it; on shard
 * 0 of several, summed over the shards (rates, classes, top talkers). */
int ddos_detector_group_view(const struct ddos_detector *d, const char *name,
			     struct ddos_target_view *out);

struct ddos_counters *ddos_detector_counters(struct ddos_detector *d);
const struct ddos_detect_stats *ddos_detector_stats(const struct ddos_detector *d);
/* Bytes held: the counters plus the attack table and timelines. */
size_t ddos_detector_memory(const struct ddos_detector *d);

/* ---- reload: a new configuration without losing what was learnt ---- */

/* A configuration compiled aside (on any thread) for a running detector. */
struct ddos_detect_conf;

/* Compiles and checks cfg (copied: cfg may be freed afterwards). NULL
 * with the reason in err; the running detector is not touched. Owner:
 * the caller, until given to ddos_detector_reconfigure(). */
struct ddos_detect_conf *ddos_detect_conf_new(const struct ddos_config *cfg, struct buf *err);
void ddos_detect_conf_free(struct ddos_detect_conf *nc);

struct ddos_reload_stats {
	size_t groups, prefixes;        /* of the new configuration */
	size_t attacks_kept, attacks_ended;
	size_t hosts_moved;             /* now in another group */
	size_t hosts_dropped;           /* in no group any more: forgotten */
	size_t prefixes_dropped;        /* aggregates of groups that are gone */
	size_t allow_changed;           /* targets on or off an allow list */
};

/* Puts nc in force between two ticks, on the detector's thread; takes
 * nc, never fails. Kept: every target's counters, baseline and detail,
 * the seconds it has been over (its trigger), and attacks in progress,
 * which from the next judged second follow their (new) group's
 * thresholds, cool-down and tiers and are reported once (on_update).
 * Groups are matched by name; a host follows its address, so one whose
 * prefix moved to another group goes on in that group, attack and all.
 * Ended now, with on_end and .released set: attacks on a target that is
 * now on a destination allow list (it is still watched; a new attack on
 * it is allowlisted, never mitigated), and on one that left every group
 * (a removed group, or a prefix no longer listed: it is forgotten).
 * Restart-only, kept as they run: delay, the max_* table sizes,
 * timeline_points, prefix_v4 and prefix_v6. st may be NULL. */
void ddos_detector_reconfigure(struct ddos_detector *d, struct ddos_detect_conf *nc,
			       struct ddos_reload_stats *st);

/* Names an attack from its traffic by class (bytes and packets over the
 * attack, indexed by enum ddos_class): every vector with at least `share`
 * (0..1) of the bytes (amplification) or packets (floods), largest first,
 * joined with " + "; the largest one when none reaches share. Sets
 * *vectors (DDOS_V_*) and *amp. Pure: the unit tests call it directly. */
void ddos_classify(const double bytes[DDOS_C_N], const double pkts[DDOS_C_N], double share,
		   uint32_t *vectors, uint32_t *amp, char *out, size_t outsz);

#endif
