/*
 * DDoS mitigation: what mamori asks the network to do about an attack, and
 * the safety rules around it. A mitigation is one rule on one target prefix:
 *
 *   blackhole  RTBH: the prefix announced with the blackhole communities and
 *              the discard next hop (BGP), or every packet to it dropped
 *              (nftables);
 *   discard    FlowSpec discard of the attack's vector (destination prefix,
 *              protocol, source ports, optionally packet length), or the
 *              same match dropped by nftables;
 *   ratelimit  the same match limited to a rate in bytes per second.
 *
 * The desired state lives in SQLite (<data_dir>/mitigation.db) and is the
 * only truth: every call reads and writes it inside one transaction, so the
 * daemon, the API and the `mamori ddos` command can act at once and a
 * restart loses nothing. A back-end (GoBGP, ExaBGP, BIRD, nftables) carries
 * the state to the network; mitig_reconcile() compares what the speaker
 * announces with the desired state and fixes the difference.
 *
 * Safety: a prefix on the allow list is never mitigated (a blackhole is
 * refused when it merely overlaps one); blackholes wider than a configured
 * length are refused; simultaneous blackholes are capped; an attack's
 * mitigations are withdrawn hold_time after it ends, and an attack that
 * comes back during the hold keeps the announcement instead of flapping.
 * In dry-run mode everything is decided, recorded and logged, and nothing
 * is sent.
 *
 * Calls block while a back-end runs (each external command is bounded by
 * command_timeout); a detector thread hands its requests to the worker in
 * mitig_worker_*() instead. docs/ddos-mitigation.md has the operator's side.
 */
#ifndef MAMORI_MITIG_H
#define MAMORI_MITIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"

#define MITIG_MAX_PORTS 8          /* source ports in one rule */
#define MITIG_MAX_COMMUNITIES 8
#define MITIG_MAX_ALLOW 1024       /* allow-list prefixes */
#define MITIG_KEY_MAX 192          /* "filter 2001:db8::1/128 proto 17 sport ... length ..." */
#define MITIG_FP_MAX 384           /* key plus what is announced with it */
#define MITIG_REASON_MAX 256
#define MITIG_ID_MAX 64
#define MITIG_ERR_MAX 256

enum mitig_action {
	MITIG_BLACKHOLE = 1,
	MITIG_DISCARD = 2,
	MITIG_RATELIMIT = 3,
};

/* An IPv4 (af 4, address in a[0..3]) or IPv6 (af 6) prefix, host bits 0. */
struct mitig_prefix {
	uint8_t af;
	uint8_t len;
	uint8_t a[16];
};

/* What is mitigated. A blackhole uses dst only; discard and ratelimit
 * match dst plus the optional protocol, source ports and length range. */
struct mitig_rule {
	enum mitig_action action;
	struct mitig_prefix dst;
	uint8_t proto;                     /* IP protocol; 0 = any */
	uint8_t nsport;
	uint16_t sport[MITIG_MAX_PORTS];   /* sorted, unique (mitig_rule_check) */
	uint16_t len_min, len_max;         /* packet length; 0..0 = any */
	uint64_t rate;                     /* bytes/s, MITIG_RATELIMIT only */
};

/* A request to mitigate. */
struct mitig_request {
	struct mitig_rule rule;
	char reason[MITIG_REASON_MAX];     /* e.g. "memcached amplification 31 Gbps" */
	char attack_id[MITIG_ID_MAX];      /* the detector's attack; "" when manual */
	int manual;        /* an operator's: ends by mitig_withdraw() or duration only */
	int64_t duration;  /* seconds; manual only; 0 = until withdrawn */
	int dry_run;       /* this request only: check and say, record and send nothing */
	int replace;       /* automatic, not a blackhole: the rule replaces its attack's
			    * other filter rules (its vector changed); they are deleted
			    * in the same transaction and withdrawn once it is sent */
};

enum mitig_state {
	MITIG_ACTIVE = 0,  /* the attack lasts, or a manual mitigation */
	MITIG_HOLD = 1,    /* the attack ended: withdrawn at expires */
};

/* One desired mitigation, as stored. */
struct mitig_entry {
	char key[MITIG_KEY_MAX];           /* identity: mitig_rule_key() */
	struct mitig_rule rule;
	char reason[MITIG_REASON_MAX];
	char attack_id[MITIG_ID_MAX];
	int manual;
	int dry_run;                       /* recorded in dry-run mode: never sent */
	enum mitig_state state;
	int64_t created, updated;          /* wall clock, seconds */
	int64_t expires;                   /* withdrawal due (seconds); 0 = none */
	int announced;                     /* the back-end accepted the last change */
	char last_error[MITIG_ERR_MAX];
};

/* What a back-end announces for a rule: its key, and a fingerprint that
 * changes when anything announced with it changes (next hop, communities,
 * action, rate), so reconciliation also repairs stale attributes. */
struct mitig_route {
	char key[MITIG_KEY_MAX];
	char fp[MITIG_FP_MAX];
	struct mitig_rule rule;
};

/* ---- configuration: the `mitigation:` section ---- */

enum mitig_backend_kind {
	MITIG_BE_NONE, MITIG_BE_GOBGP, MITIG_BE_EXABGP, MITIG_BE_BIRD, MITIG_BE_NFTABLES,
};

struct mitig_config {
	char *backend;                   /* none | gobgp | exabgp | bird | nftables */
	int dry_run;
	int64_t hold_time;               /* seconds after an attack's end */
	int64_t max_blackholes;          /* simultaneous; beyond, refused */
	int64_t max_mitigations;         /* every kind together */
	int64_t blackhole_min_len4;      /* widest blackhole, IPv4 */
	int64_t blackhole_min_len6;
	struct conf_list communities;    /* RTBH communities, "65535:666" */
	char *next_hop4, *next_hop6;     /* RTBH discard next hops */
	struct conf_list allow;          /* prefixes never mitigated */
	int64_t command_timeout;         /* seconds, one external command */
	int64_t reconcile_interval;      /* seconds, for the worker */
	char *gobgp_api;                 /* host:port of gobgpd's API */
	char *gobgp_cmd;
	char *exabgp_pipe;
	char *bird_include;
	char *bird_socket;
	char *birdc_cmd;
	char *nft_table;                 /* table inet NAME, owned by mamori */
	char *nft_cmd;                   /* used when built without libnftables */

	/* resolved by mitig_config_load() */
	enum mitig_backend_kind kind;
	uint32_t comm[MITIG_MAX_COMMUNITIES];
	size_t ncomm;
	struct mitig_prefix nh4, nh6;
	struct mitig_prefix *allow_p;
	size_t nallow;
};

extern const struct conf_keyword mitig_keywords[];

/* Fills cfg from the mitigation section of doc (defaults when absent) and
 * resolves it; errors read "file:line:col: ..." or "file: mitigation.x: ...".
 * mitig_config_free() in every case. */
int mitig_config_load(const struct conf_doc *doc, struct mitig_config *cfg,
		      struct buf *err);
void mitig_config_free(struct mitig_config *cfg);
/* The section with defaults and help, as YAML. */
int mitig_config_describe(struct buf *out);
/* Resolves the strings of cfg (kind, communities, next hops, allow list);
 * what mitig_config_load() calls, for configurations built in code. */
int mitig_config_resolve(struct mitig_config *cfg, const char *file, struct buf *err);

/* ---- rules, keys and prefixes (pure) ---- */

/* "10.1.9.9", "10.1.9.0/24", "2001:db8::1/128"; no length = a host. Refuses
 * host bits set after the length. */
int mitig_prefix_parse(const char *s, struct mitig_prefix *out);
/* Sets a prefix from address bytes (4 or 16) and a length. */
int mitig_prefix_set(struct mitig_prefix *p, int af, const uint8_t *addr, int len);
/* "10.1.9.9/32"; out of at least 50 bytes. */
const char *mitig_prefix_str(const struct mitig_prefix *p, char *out, size_t outsz);
int mitig_prefix_contains(const struct mitig_prefix *outer, const struct mitig_prefix *inner);
int mitig_prefix_overlaps(const struct mitig_prefix *a, const struct mitig_prefix *b);

const char *mitig_action_name(enum mitig_action a);    /* blackhole, discard, ratelimit */
/* Also accepts the CLI's flowspec-discard, flowspec-ratelimit, drop, rate-limit. */
int mitig_action_parse(const char *s, enum mitig_action *out);
/* "udp", "tcp", "icmp", "icmpv6", "gre", "esp" or a number 1..255. */
int mitig_proto_parse(const char *s, uint8_t *out);

/* Checks a rule and puts it in canonical form (ports sorted and unique);
 * a one-line reason in why. */
int mitig_rule_check(struct mitig_rule *r, char *why, size_t whysz);
/* The identity of a rule: "blackhole 10.1.9.9/32" or
 * "filter 10.1.9.9/32 proto 17 sport 53,11211 length 100-1500"; a discard
 * and a ratelimit of the same match share it (one FlowSpec NLRI). */
int mitig_rule_key(const struct mitig_rule *r, char *out, size_t outsz);
/* Parses a key back (action: blackhole, or MITIG_DISCARD for a filter). */
int mitig_key_parse(const char *key, struct mitig_rule *out);
/* A route as the configured back-end would announce the rule. */
int mitig_route_make(const struct mitig_config *cfg, const struct mitig_rule *r,
		     struct mitig_route *out);

/* The difference between what should be announced and what is: pure. */
struct mitig_diff {
	struct mitig_route *announce;   /* missing or stale at the speaker */
	size_t nannounce;
	struct mitig_route *withdraw;   /* at the speaker, not desired */
	size_t nwithdraw;
	size_t unchanged;
};
int mitig_diff_compute(const struct mitig_route *desired, size_t nd,
		       const struct mitig_route *announced, size_t na,
		       struct mitig_diff *out);
void mitig_diff_fini(struct mitig_diff *d);

/* ---- what each back-end sends (pure; the unit tests read them) ---- */

/* The argv of one gobgp command (argv[0] is cfg->gobgp_cmd). */
#define MITIG_ARGV_MAX 48
struct mitig_argv {
	char *v[MITIG_ARGV_MAX + 1];    /* NULL-terminated; point into store */
	size_t n;
	char store[2048];
};
int mitig_gobgp_argv(const struct mitig_config *cfg, const struct mitig_route *r,
		     int withdraw, struct mitig_argv *out);
/* argv joined with spaces (for logs, dry runs and tests). */
int mitig_argv_join(const struct mitig_argv *a, struct buf *out);
/* One ExaBGP API line, with its newline. */
int mitig_exabgp_line(const struct mitig_config *cfg, const struct mitig_route *r,
		      int withdraw, struct buf *out);
/* The whole BIRD include file for these routes. */
int mitig_bird_render(const struct mitig_config *cfg, const struct mitig_route *r,
		      size_t n, struct buf *out);
/* The nft script that replaces mamori's table with these routes. */
int mitig_nft_render(const struct mitig_config *cfg, const struct mitig_route *r,
		     size_t n, struct buf *out);
/* Parses `gobgp global rib -a FAMILY -j` output into the routes mamori
 * owns: blackholes carrying cfg's first community, and FlowSpec rules that
 * mamori can express; others are counted in *foreign. */
int mitig_gobgp_parse_rib(const struct mitig_config *cfg, const char *json, size_t len,
			  int flowspec, struct mitig_route **out, size_t *n, size_t *foreign);

/* ---- the manager ---- */

struct mitig;

/* Opens (creating) db_path; keeps a copy of cfg. NULL on failure, with the
 * reason logged. Owner: the caller, mitig_free(). */
struct mitig *mitig_new(const struct mitig_config *cfg, const char *db_path);
void mitig_free(struct mitig *m);

enum mitig_outcome {
	MITIG_O_ANNOUNCED,     /* new, sent (or recorded in dry-run mode) */
	MITIG_O_UPDATED,       /* existing, changed (action, rate) and re-sent */
	MITIG_O_KEPT,          /* existing; a hold cancelled, nothing re-sent */
	MITIG_O_DRY_RUN,       /* request-level dry run: nothing recorded */
	MITIG_O_REFUSED,       /* allow list, width, cap, invalid: see detail */
	MITIG_O_FAILED,        /* recorded, but the back-end failed: retried */
};

struct mitig_result {
	enum mitig_outcome outcome;
	char key[MITIG_KEY_MAX];
	char detail[512];      /* reason of a refusal or failure; what a dry run would send */
};
const char *mitig_outcome_name(enum mitig_outcome o);

/* Called after each change the manager makes (announce, update, keep,
 * hold, withdraw, refuse, fail), with the manager's lock held: copy what is
 * needed, do not call back into the manager. */
typedef void (*mitig_observer_fn)(void *arg, const char *what,
				  const struct mitig_entry *e, const char *detail);
void mitig_set_observer(struct mitig *m, mitig_observer_fn fn, void *arg);

/* An attack started (or an operator asked): records and announces. With
 * req->replace, the attack's other automatic filter rules (active or in
 * hold; its blackhole stays) are withdrawn in the same transaction, after
 * the new rule is sent (make before break; a failed send leaves them to
 * the next reconciliation), each logged as event=withdraw with "replaced
 * by KEY"; they do not count against max_mitigations.
 * 0 when the mitigation is in place or due (ANNOUNCED, UPDATED, KEPT,
 * DRY_RUN); M_EINVAL when refused as invalid or allow-listed, M_ELIMIT
 * when refused by a cap, M_EIO when the back-end failed (kept and retried
 * by mitig_tick()). now: wall clock, seconds. */
int mitig_start(struct mitig *m, const struct mitig_request *req, int64_t now,
		struct mitig_result *res);
/* The attack ended: its automatic mitigations enter the hold and are
 * withdrawn hold_time later (unless it starts again). Sets *n (may be NULL)
 * to how many entered the hold. */
int mitig_end(struct mitig *m, const char *attack_id, int64_t now, size_t *n);
/* The attack's target must not be mitigated any more (a reload put it on
 * an allow list, or out of every group): its automatic mitigations,
 * active or held, are withdrawn now, without the hold. */
int mitig_release(struct mitig *m, const char *attack_id, int64_t now, size_t *n);
/* SIGHUP: takes the reloadable keys of cfg (mitig_keywords marked
 * reloadable: dry_run, hold_time, the caps, blackhole widths, communities,
 * next hops, allow) and what is resolved from them. The back-end, its
 * addresses and commands, command_timeout and reconcile_interval stay as
 * they run. What is announced stays: a new hold time applies to attacks
 * that end from now on, changed communities or next hops are put right by
 * the next reconciliation, a prefix newly on the allow list refuses new
 * mitigations only; switching dry_run on sends nothing more (what is
 * announced stays until its attack ends), switching it off lets the next
 * reconciliation announce what is due. */
int mitig_reload(struct mitig *m, const struct mitig_config *cfg);
/* As mitig_end, for one mitigation by key (a tier that is no longer needed). */
int mitig_end_key(struct mitig *m, const char *key, int64_t now);
/* Withdraws now, whatever its state: the mitigation whose key is key, or
 * (key NULL) every mitigation on target, optionally of one action (0 = any).
 * *n is how many were withdrawn; M_ENOTFOUND when none matched. */
int mitig_withdraw(struct mitig *m, const char *key, const struct mitig_prefix *target,
		   enum mitig_action action, int64_t now, size_t *n);
/* Withdraws what has expired and retries what failed. Cheap when nothing
 * is due; call every second. */
int mitig_tick(struct mitig *m, int64_t now);
/* Reads what the speaker announces (GoBGP; the tracked record for the
 * others), announces what is missing or stale and withdraws what is not
 * desired; BIRD and nftables get their whole state rewritten. The diff
 * done is left in out (may be NULL). In dry-run mode, only computes. */
int mitig_reconcile(struct mitig *m, int64_t now, struct mitig_diff *out);
/* The desired state, oldest first. Owner of *out: the caller (free()). */
int mitig_list(struct mitig *m, struct mitig_entry **out, size_t *n);
/* The blackholes currently counted against max_blackholes. */
int mitig_count_blackholes(struct mitig *m, size_t *n);

/* ---- the worker: a thread for callers that must not block ---- */

struct mitig_worker;

/* Borrows m, which must outlive the worker. The thread reconciles at
 * start, then ticks every second and reconciles every reconcile_interval. */
struct mitig_worker *mitig_worker_new(struct mitig *m);
int mitig_worker_start(struct mitig_worker *w);
/* Copies the request; never waits. M_EAGAIN when the queue is full. */
int mitig_worker_post_start(struct mitig_worker *w, const struct mitig_request *req);
int mitig_worker_post_end(struct mitig_worker *w, const char *attack_id);
/* mitig_release() on the worker. */
int mitig_worker_post_release(struct mitig_worker *w, const char *attack_id);
/* Stops the thread after the queued requests, and frees. */
void mitig_worker_free(struct mitig_worker *w);

#endif
