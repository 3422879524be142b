/*
 * Threat-intelligence feeds: fetch a list of indicators (plain text, CSV,
 * STIX 2.1 bundle, TAXII 2.1 collection, MISP feed) from a file or an
 * http(s) URL, parse it, and feed it into the indicator store (intel.h).
 * Why a manager: a feed that fails must not empty the store, so each feed's
 * last good list stays in memory, and every rebuild merges all the lists
 * into a new set built aside and handed over whole (the set is refcounted).
 *
 * Parsers are pure functions of (bytes, length) -> item list + stats, so the
 * unit tests, the fuzzers and the manager call the same code. Nothing here
 * is thread-safe: one thread owns a manager; readers only see the sets it
 * hands over. Call curl_global_init() once at start-up, before threads.
 */
#ifndef MAMORI_DETECT_FEED_H
#define MAMORI_DETECT_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "detect/intel.h"

#define FEED_MAX_FEEDS 256u
#define FEED_MAX_ITEMS 20000000u      /* indicators kept per feed */
#define FEED_DEF_MAX_BYTES (256ll << 20)
#define FEED_MAX_CSV_COLUMNS 256
#define FEED_MAX_PAGES 10000          /* TAXII pages per refresh */
#define FEED_MAX_MISP_EVENTS 100000   /* MISP events per refresh */
#define FEED_SAMPLES 8                /* rejection examples kept per load */

/* One feed as configured. Strings are heap copies owned by the struct
 * (feed_conf_fini frees them); an empty string means "not set". CSV column
 * numbers count from 1; 0 means "no such column". */
struct feed_conf {
	char *name;          /* source name on every indicator (< 256 bytes) */
	char *kind;          /* plain, csv, stix, taxii, misp */
	char *url_or_path;   /* file/directory path or http(s) URL; TAXII:
			      * the API root */
	int64_t refresh_s;   /* seconds between loads; 0 = load once */
	int64_t timeout_s;   /* per HTTP request */
	int64_t max_bytes;   /* per file or HTTP response */
	int64_t confidence;  /* 0-100, when the feed gives none */
	int64_t valid_for_s; /* plain/csv/misp: valid_until = load + this; 0 = none */
	char *type;          /* plain/csv: ip, domain, url, hash, email or auto */
	/* csv */
	int csv_header;      /* first row is a header */
	char *csv_delimiter; /* one character, default "," */
	int64_t csv_value_col;
	int64_t csv_type_col;
	int64_t csv_confidence_col;
	int64_t csv_first_seen_col;
	int64_t csv_last_seen_col;
	int64_t csv_valid_until_col;
	/* taxii */
	char *collection;
	char *added_after;   /* RFC 3339; only objects added after it */
	/* http */
	char *username;      /* basic auth when set */
	char *password;
	char *bearer;        /* "Authorization: Bearer" token when set */
	char *ca_file;       /* CA bundle instead of the system's */
};

/* Why something in a feed was not loaded. Reasons below FEED_R_SKIP_FIRST
 * are rejections (the feed meant it as an indicator and it is unusable);
 * the others are skips (not meant as an indicator for us). */
enum feed_reason {
	FEED_R_BAD_VALUE,        /* the store refused the value */
	FEED_R_NO_TYPE,          /* plain/csv: type not recognised */
	FEED_R_BAD_ROW,          /* csv: bad quoting, missing column, too long */
	FEED_R_BAD_FIELD,        /* csv/stix/misp: unparsable time or number */
	FEED_R_PATTERN_TYPE,     /* stix: pattern_type is not "stix" */
	FEED_R_PATTERN_SYNTAX,   /* stix: pattern does not parse */
	FEED_R_PATTERN_OPERATOR, /* stix: an operator other than = */
	FEED_R_PATTERN_PATH,     /* stix: object path we cannot match */
	FEED_R_PATTERN_FORM,     /* stix: qualifiers, FOLLOWEDBY, AND of
				  * observations or of different objects */
	FEED_R_BAD_OBJECT,       /* stix/misp: object without id/pattern/value */
	FEED_R_LIMIT,            /* a per-feed bound was reached */
	FEED_R_SKIP_FIRST,
	FEED_R_REVOKED = FEED_R_SKIP_FIRST, /* stix: revoked */
	FEED_R_SUPERSEDED,       /* stix: an older version of the same id */
	FEED_R_EXPIRED,          /* valid_until already past at load */
	FEED_R_NOT_IDS,          /* misp: to_ids false, or deleted */
	FEED_R_MISP_TYPE,        /* misp: attribute type not an indicator */
	FEED_R_MAX
};

/* Counters of one load. */
struct feed_stats {
	size_t loaded;               /* values accepted (before duplicates merge) */
	size_t rejected;             /* sum of the rejection reasons */
	size_t skipped;              /* sum of the skip reasons */
	size_t pending;              /* valid_from still ahead: held back by the
				      * manager, left out by feed_load_one */
	size_t reasons[FEED_R_MAX];  /* per reason; pattern reasons count
				      * objects, value reasons count values */
	size_t nsamples;
	char samples[FEED_SAMPLES][160]; /* first rejections, escaped */
	size_t requests;             /* HTTP requests or files read */
	size_t bytes;                /* bytes read */
	int64_t last_attempt_us;     /* wall clock */
	int64_t last_success_us;
	int last_err;                /* 0 or M_E* of the last attempt */
	char last_error[256];        /* message of the last failed attempt */
};

const char *feed_reason_str(enum feed_reason r);

/* Fetches and parses one feed into b (CLI use: "mamori intel load").
 * Every indicator carries fc->name as source. 0, or a negative M_E* with a
 * message naming the feed in err; st (may be NULL) is filled either way. */
int feed_load_one(const struct feed_conf *fc, struct intel_builder *b,
		  struct feed_stats *st, struct buf *err);

/* The manager. feed_manager_new deep-copies the n configs (checked: kind,
 * name unique, columns); NULL with a message in err for a bad config or
 * out of memory. The caller owns the manager. */
struct feed_manager;
struct feed_manager *feed_manager_new(const struct feed_conf *fc, size_t n,
				      struct buf *err);
void feed_manager_free(struct feed_manager *m);

/* Reloads the feeds that are due at now_us (wall clock, microseconds; all
 * when force), then, if anything changed (a feed loaded, or an indicator's
 * valid_from passed), builds a new set from every feed's last good list and
 * returns it in *out_new_set (caller owns the reference; NULL when nothing
 * changed). A failed feed keeps its previous list. report (may be NULL)
 * receives one line per feed loaded or failed. 0, or M_ENOMEM when the
 * merged set could not be built (the old set stays in force then). */
int feed_manager_refresh(struct feed_manager *m, int64_t now_us, int force,
			 struct intel_set **out_new_set, struct buf *report);

/* Introspection for the API and the CLI. */
size_t feed_manager_count(const struct feed_manager *m);
const struct feed_conf *feed_manager_conf(const struct feed_manager *m,
					  size_t i);
const struct feed_stats *feed_manager_stats(const struct feed_manager *m,
					    size_t i);
/* Indicators kept for feed i (its last good list). */
size_t feed_manager_held(const struct feed_manager *m, size_t i);
/* Earliest time (wall clock, us) at which a refresh has work to do. */
int64_t feed_manager_next_due(const struct feed_manager *m);

/* Configuration: the keyword table of one item of intel.feeds, and a
 * parser of that list (a YAML sequence of maps). *out (caller-owned, free
 * with feed_conf_free_all) gets n configs. */
extern const struct conf_keyword feed_conf_keywords[];
int feed_conf_parse_list(const struct conf_doc *doc,
			 const struct conf_node *seq, struct feed_conf **out,
			 size_t *n, struct buf *err);
void feed_conf_fini(struct feed_conf *fc);
void feed_conf_free_all(struct feed_conf *fc, size_t n);

/* ---- parsers (pure; shared by the loaders, tests and fuzzers) ---------- */

/* One parsed indicator; value at pool + off, not NUL-terminated. */
struct feed_item {
	uint32_t off, len;
	uint8_t type;          /* enum intel_type */
	uint8_t confidence;
	int64_t first_seen, last_seen, valid_until, valid_from;
};

/* A growable list of items with a hard maximum. */
struct feed_items {
	struct feed_item *v;
	size_t n, cap, max;
	struct buf pool;
};

void feed_items_init(struct feed_items *it, size_t max);
void feed_items_fini(struct feed_items *it);
void feed_items_reset(struct feed_items *it);
int feed_items_push(struct feed_items *it, enum intel_type t, const char *v,
		    size_t len, const struct feed_item *meta);

/* Defaults the parsers put on every item (confidence, valid_until). */
struct feed_defaults {
	uint8_t confidence;
	int64_t valid_until;
	enum intel_type type;  /* 0 = detect per value */
	int64_t now_us;        /* for expiry checks */
};

/* Counts a rejection or skip with an example text (escaped here). */
void feed_stats_note(struct feed_stats *st, enum feed_reason r,
		     const char *what, size_t what_len, const char *why);

/* Guesses the type of a value: IP/CIDR, URL, hash, e-mail or domain;
 * 0 when it looks like none. */
enum intel_type feed_detect_type(const char *v, size_t len);
/* "ip", "domain", "md5", "ip-dst"... -> type; 0 when unknown. */
enum intel_type feed_type_name(const char *s, size_t len);
/* Epoch seconds, or RFC 3339 / ISO 8601 ("2016-04-28", "...T09:12:16.43Z",
 * "... 09:12:16+02:00") -> microseconds since the epoch. 0 or M_EPARSE. */
int feed_parse_time(const char *s, size_t len, int64_t *out_us);

int feed_parse_plain(const char *p, size_t len, const struct feed_defaults *d,
		     struct feed_items *out, struct feed_stats *st);
int feed_parse_csv(const char *p, size_t len, const struct feed_conf *fc,
		   const struct feed_defaults *d, struct feed_items *out,
		   struct feed_stats *st);

/* STIX 2.1: one pattern into (type, value) pairs appended to out with meta;
 * FEED_R_* reason (>= 0) of the rejection, or -1 when accepted; why gets a
 * short explanation. */
int feed_stix_pattern(const char *pat, size_t len, const struct feed_item *meta,
		      struct feed_items *out, const char **why);
/* A bundle, TAXII envelope or single object; latest modified wins per id;
 * revoked dropped. 0, M_EPARSE (err says why), M_ENOMEM. */
int feed_parse_stix(const char *p, size_t len, const struct feed_defaults *d,
		    struct feed_items *out, struct feed_stats *st,
		    struct buf *err);
/* One MISP event file ({"Event": {...}}). 0 or M_EPARSE / M_ENOMEM. */
int feed_parse_misp_event(const char *p, size_t len,
			  const struct feed_defaults *d, struct feed_items *out,
			  struct feed_stats *st, struct buf *err);

/* ---- internal to the feed files (feed.c, feed_stix.c, feed_misp.c) ----- */

/* Reads a file or GETs a URL into body (bounded by fc->max_bytes).
 * headers: extra request headers (NULL-terminated, may be NULL); when
 * hdr_name is set, the value of that response header goes to hdr_val. */
int feed_fetch(const struct feed_conf *fc, const char *src,
	       const char *const *headers, struct buf *body,
	       const char *hdr_name, struct buf *hdr_val,
	       struct feed_stats *st, struct buf *err);
/* Appends "feed NAME: message" to err (may be NULL). */
void feed_errf(struct buf *err, const struct feed_conf *fc, const char *fmt,
	       ...) __attribute__((format(printf, 3, 4)));
int feed_load_taxii(const struct feed_conf *fc, const struct feed_defaults *d,
		    struct feed_items *out, struct feed_stats *st,
		    struct buf *err);
int feed_load_misp(const struct feed_conf *fc, const struct feed_defaults *d,
		   struct feed_items *out, struct feed_stats *st,
		   struct buf *err);

#endif
