/*
 * Private to the Sigma engine (sigma_*.c). A rule set is compiled into
 * three layers so that matching an event costs one pass per field, not one
 * per rule:
 *
 *   predicates  one test on one field (a pattern, null, exists, a number,
 *               a CIDR, another field), deduplicated over the whole set;
 *   rules       per detection identifier a small AND/OR tree over
 *               predicates, then the compiled condition (sigma_cond.h);
 *   buckets     the rules of one logsource (product, category, service),
 *               with one Hyperscan database per field holding every
 *               string predicate of those rules on that field.
 *
 * An event's logsource picks its buckets; each bucket scans the event's
 * fields once, marking the predicates that hit; only rules with a hit (or
 * rules that can be true without any hit, such as `not x`) are evaluated.
 */
#ifndef MAMORI_SIGMA_INT_H
#define MAMORI_SIGMA_INT_H

#include <hs/hs.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "core/config.h"
#include "detect/sigma.h"
#include "detect/sigma_cond.h"

#define SIGMA_MAX_PREDS 1000000u     /* over a whole rule set */
#define SIGMA_MAX_RULE_NODES 65536u  /* per rule */
#define SIGMA_MAX_VALUES 65536u      /* values of one field item */
#define SIGMA_MAX_VALUE_LEN 65536u
#define SIGMA_MAX_VARIANTS 1024u     /* windash/expand/base64offset fan-out */
#define SIGMA_MAX_DEPTH 16           /* nesting inside a detection */
#define SIGMA_FIELD_KEYWORDS 0u      /* field index 0: the whole event */

/* Predicate kinds. */
enum sp_kind {
	SPK_STR = 1,   /* regex (generated from the value or given by |re) */
	SPK_NULL,      /* field absent or empty */
	SPK_EXISTS,    /* arg: 1 = must exist, 0 = must not */
	SPK_NUM,       /* arg: SP_LT.. */
	SPK_CIDR,
	SPK_FIELDREF,  /* equal (case-insensitive unless cased) to field2 */
	SPK_FALSE,     /* a value that can never match (empty expansion) */
};

enum { SP_LT = 1, SP_LTE, SP_GT, SP_GTE };

/* A string predicate that is a plain string tests without a regex engine
 * (sigma_lit.c): contains, starts with, ends with, equals. */
enum { SPL_CONTAINS = 1, SPL_STARTS, SPL_ENDS, SPL_EQ };

#define SPF_CASELESS 0x1u
#define SPF_DOTALL 0x2u
#define SPF_MULTILINE 0x4u
#define SPF_CASED_EQ 0x8u   /* fieldref: compare bytes exactly */

struct sigma_pred {
	uint8_t kind;
	uint8_t arg;
	uint8_t family;       /* CIDR: 4 or 6 */
	uint8_t plen;         /* CIDR prefix length */
	uint32_t flags;       /* SPF_* */
	uint32_t field;       /* index into the set's field table */
	uint32_t field2;      /* fieldref */
	char *re;             /* SPK_STR: the expression (Hyperscan/PCRE2 syntax) */
	pcre2_code *pc;       /* SPK_STR when Hyperscan cannot take it */
	double num;
	uint8_t addr[16];
	uint8_t in_hs;        /* matched by the bucket databases */
	uint8_t lit;          /* SPK_STR a plain string: SPL_*, else 0 */
	uint16_t min_width;   /* SPK_STR: the shortest match (Hyperscan) */
	uint32_t lit_len;
	char *lit_s;          /* its bytes (lower case when caseless) */
};

/* A field as rules name it after mapping: a known ECS field or an
 * overflow name (e.g. winlog.event_data.Image). Index 0 = keywords. */
struct sigma_field {
	char *name;
	uint32_t nlen;
	int known;            /* schema index or -1 */
	uint32_t alt;         /* read when this one is absent; 0 = none */
	uint32_t xid;         /* overflow: the name's number (XN_*), 0 none */
};

enum sn_type { SN_PRED = 1, SN_AND, SN_OR, SN_TRUE, SN_FALSE };

struct sigma_node {
	uint8_t type;
	uint8_t hs;   /* SN_PRED in a Hyperscan database: its truth is its mark */
	uint32_t a;   /* SN_PRED: predicate id; AND/OR: first index into kids */
	uint32_t n;   /* AND/OR: number of kids */
	uint32_t grp; /* OR of Hyperscan predicates only: its hit group + 1 */
};

struct sigma_filter;

struct sigma_rule {
	struct sigma_rule_info info;  /* public part (sigma.h) */
	char *product, *category, *service;
	struct sigma_node *nodes;
	uint32_t n_nodes;
	uint32_t *kids;
	uint32_t n_kids;
	uint32_t *ident_root;         /* per detection identifier */
	uint32_t n_idents;
	/* Identifiers that decide the rule alone (`selection` of `selection and
	 * not filter`): evaluated first, and a false one ends the rule without
	 * evaluating the others (often long filter lists). is_must per ident:
	 * 1 must be true, 2 must be false (`not known and ...`), 0 neither. */
	uint8_t *is_must;
	uint32_t n_must;
	struct sigma_cond *cond;
	uint8_t always_eval;          /* may hold with no Hyperscan hit */
	uint8_t silent;               /* referenced by a non-generating correlation */
	uint8_t ecs;                  /* taxonomy: ecs, field names used as written */
	uint32_t corr;                /* correlation rules: index into corrs */
	/* Filters that apply (a filter's logsource contains the rule's, and
	 * it names the rule): the rule matches only when each filter's
	 * condition also holds, so an exclusion reads `not selection`. */
	struct sigma_rule **filters;
	uint32_t n_filters;
};

/* What a hit of one id of a field database marks (sigma_match.c hit_id),
 * in one record so a hit reads one line: its predicate, the predicate's
 * hit groups and the rule_list entries it triggers, each kept in the record
 * when there is one (the usual case) and as an offset when more. */
struct sigma_hitrec {
	uint32_t pred;
	uint32_t grp;      /* n_grp == 1: the group, else offset in pred_grp */
	uint32_t rule;     /* n_rule == 1: the entry, else offset in rule_list */
	uint16_t n_grp, n_rule;
};

/* One Hyperscan database: the string predicates of a bucket on one field. */
struct sigma_fdb {
	uint32_t field;
	uint32_t uid;             /* numbered over the set (not its address) */
	hs_database_t *db;
	hs_database_t *db2;       /* the regexes, when split off (compile_fdb) */
	uint32_t *pred_ids;       /* hs id -> predicate */
	uint8_t *at_end;          /* hs id -> matches only ending the value
				   * (compiled without its \z; NULL: none) */
	uint8_t direct;           /* a few plain strings, all in db: tested
				   * one by one (sigma_lit.c) on values of
				   * up to SIGMA_DIRECT_MAX_VALUE bytes */
	uint8_t *gated;           /* hs id -> compiled as its gate, a string
				   * its matches hold: a hit is a candidate,
				   * tested on the value (sigma_re_gate;
				   * NULL: none) */
	uint32_t n;
	uint32_t *rule_off;       /* per hs id: rules it triggers (CSR) */
	uint32_t *rule_list;      /* rule << TRIG_SHIFT | TRIG_A/TRIG_B bits */
	struct sigma_hitrec *rec; /* per hs id (sigma_fdb_recs) */
};

/* Longer values are scanned even by a direct database: a byte loop per
 * string costs more there than Hyperscan's set-up. */
#define SIGMA_DIRECT_MAX_VALUE 64u

/* A rule_list entry: the rule, and which of its two trigger sets the
 * predicate belongs to (sigma_compile.c); no bits: the rule has one set
 * and any hit queues it. */
#define TRIG_SHIFT 2u
#define TRIG_A 1u
#define TRIG_B 2u
#define SIGMA_MAX_RULES ((1u << (32 - TRIG_SHIFT)) - 1u)

struct sigma_bucket {
	char *product, *category, *service;   /* "" = any */
	uint32_t *rules;
	uint32_t n_rules;
	uint32_t *always;                      /* rules with always_eval */
	uint32_t n_always;
	struct sigma_fdb *fdbs;
	uint32_t n_fdbs;
	uint32_t keyword_fdb;       /* fdb + 1 for keywords, 0 if none */
	uint32_t *kfdbs;            /* fdbs of known (schema) fields */
	uint32_t n_kfdbs;
	uint64_t *xkeys;            /* overflow field name hash -> fdb + 1 */
	uint32_t *xvals;
	uint32_t xmask;
	uint32_t plen, clen, slen;  /* lengths of product, category, service */
};

#define SIGMA_LS_CACHE 64
#define SIGMA_LS_MAX_BUCKETS 24

/* Per context: an event signature (its logsource) -> the buckets it meets. */
struct sigma_ls_ent {
	char sig[96];
	uint16_t n;
	uint16_t b[SIGMA_LS_MAX_BUCKETS];
	struct sigma_plan *plan;    /* NULL: bucket by bucket */
};

/* The databases of all the buckets an event signature meets, merged so
 * that an event's fields are each looked up once, not once per bucket:
 * known fields as a list, overflow fields by name hash (several entries
 * may share a hash), keyword databases as a list. */
struct sigma_plan {
	const struct sigma_fdb **known;
	uint32_t n_known;
	const struct sigma_fdb **kw;
	uint32_t n_kw;
	/* Overflow fields: by the name's number (event_extra.xid), the
	 * databases of number x at xid_fdb[xid_off[x] .. xid_off[x + 1]);
	 * names without a number by hash (xkeys, n_xhash of them). */
	uint16_t xid_off[SCHEMA_NXNAMES + 1];
	const struct sigma_fdb **xid_fdb;
	uint64_t *xkeys;
	const struct sigma_fdb **xf;
	uint32_t xmask;
	uint32_t n_xhash;
	unsigned gen;               /* merge_gen it was made at */
};

/* A field mapping for one logsource: Sigma field -> event field. */
struct sigma_mapping {
	char *product, *category, *service;   /* "" = any */
	char *def;                            /* default "prefix{field}" or NULL */
	char **from, **to;
	size_t n;
	char *file;
};

struct sigma_placeholder {
	char *name;
	char **values;
	size_t n;
};

struct sigma_ruleset {
	atomic_int refs;
	struct sigma_rule **rules;
	uint32_t n_rules;
	struct sigma_pred *preds;
	uint32_t n_preds;
	struct sigma_field *fields;
	uint32_t n_fields;
	struct sigma_bucket *buckets;
	uint32_t n_buckets;
	uint32_t n_fdbs;              /* over every bucket (sigma_fdb.uid) */
	/* OR nodes whose children are all Hyperscan predicates ("any of these
	 * values") are hit groups: a hit of a member marks the group, so the
	 * OR costs one check instead of one per value. Per predicate, its
	 * groups (CSR). */
	uint32_t n_groups;
	uint32_t *pred_grp_off;       /* n_preds + 1 */
	uint32_t *pred_grp;
	struct sigma_rule **filters;  /* filter documents (owned here) */
	uint32_t n_filters;
	struct sigma_corr **corrs;
	uint32_t n_corrs;
	hs_scratch_t *proto;        /* scratch prototype, cloned per context */
	pthread_mutex_t pool_lock;
	struct sigma_ctx *pool;     /* idle match contexts */
	int force_pcre;             /* testing: no Hyperscan */
	char *hs_cache_dir;         /* compiled databases kept here; NULL = none */
	uint32_t hs_cache_hits, hs_cache_misses;
	struct hs_child *compiler;  /* during sigma_compile_buckets only */
	/* Databases merged for event signatures (sigma_fdb_merged), built by
	 * a thread of their own while matching goes on; merge_lock guards
	 * the list and the counts. merge_gen moves when one is ready (plans
	 * made before are made again). merging: that thread is compiling (a
	 * refused pattern fails the merge instead of moving to PCRE2). */
	pthread_mutex_t merge_lock;
	pthread_cond_t merge_cond;
	pthread_t merge_thread;
	int merge_thread_on, merge_stop;
	struct sigma_merge *merges;
	uint32_t n_merges, n_merge_failed, n_merge_pending;
	atomic_uint merge_gen;
	int merging;
};

/* One field's databases of several buckets as one (sigma_fdb_merged). */
enum { MERGE_PENDING, MERGE_OK, MERGE_FAILED };
struct sigma_merge {
	struct sigma_merge *next;
	const struct sigma_fdb **src;   /* the sources (the set's), by uid */
	uint32_t n_src;
	int state;
	struct sigma_fdb fdb;
};

struct sigma_builder {
	struct sigma_ruleset *rs;
	struct sigma_mapping *maps;
	size_t n_maps;
	struct sigma_placeholder *ph;
	size_t n_ph;
	struct sigma_rule **filters;   /* loaded filter documents */
	size_t n_filters;
	char **filter_targets;         /* per filter: NUL-separated rule refs */
	uint8_t *filter_any;           /* per filter: `rules: any` (every rule of
					* its logsource) */
	/* Deduplication of predicates: open addressing on a key string. */
	uint32_t *pred_hash;
	uint32_t pred_hash_mask;
	char **pred_keys;
	uint32_t *pred_klen;
	uint32_t pred_cap;          /* entries of preds, pred_keys, pred_klen */
	uint32_t *field_hash;
	uint32_t field_hash_mask;
	size_t loaded, unsupported, errors;
};

/* Per-event working memory, taken from the set's pool for a batch. */
/* Per context: field values already scanned, with the Hyperscan hits they
 * gave, so a value that repeats (an image path, a user, a parent command
 * line: most of what logs carry) costs a hash and a compare instead of a
 * scan of a database of thousands of patterns. Direct-mapped; only short
 * values with few hits are kept, and only from their second sighting (a
 * table of hashes seen once), so values that never repeat (a command line
 * with a temporary file name) do not evict the ones that do. Two ways a
 * set, the least recently used one replaced: direct-mapped, two frequent
 * values of one slot evicted each other on every event (a few hundred
 * values repeat on Windows process creations; which of them collided
 * moved the hit rate between 80 and 92%). */
#define SIGMA_VC_SLOTS 2048u
#define SIGMA_VC_WAYS 2u
#define SIGMA_VC_MAX_VALUE 120u
#define SIGMA_VC_MAX_HITS 30u
#define SIGMA_VC_MIN_PATTERNS 4u
#define SIGMA_VC_SEEN 8192u       /* hashes of values seen once (admission) */
/* 256 bytes, aligned: a short value and its first hits are in the first
 * lines. Its hash is in the context's tag array (vc_tag), so a probe reads
 * one small hot line, not a line of each way. */
struct sigma_vc_ent {
	const struct sigma_fdb *fdb;   /* NULL: empty */
	uint16_t len;
	uint16_t n_hits;
	uint32_t used;                 /* vc_clock when last answered; 0 = empty */
	char val[SIGMA_VC_MAX_VALUE];
	uint32_t hits[SIGMA_VC_MAX_HITS];
};
_Static_assert(sizeof(struct sigma_vc_ent) == 256, "a value cache entry is four lines");

/* A field's value for the tests of one event, and the address in it once
 * a CIDR predicate has read it (parsed once, however many ranges). */
struct sigma_fval {
	struct str v;
	uint8_t parsed, ok, fam;
	uint8_t a[16];
};

struct sigma_ctx {
	struct sigma_ctx *next;
	const struct sigma_ruleset *rs;
	struct sigma_vc_ent *vc;        /* SIGMA_VC_SLOTS entries */
	uint64_t *vc_tag;               /* per entry: its value's hash */
	uint64_t *vc_seen;              /* SIGMA_VC_SEEN hashes */
	uint64_t vc_lookups, vc_hits;   /* for the benchmark */
	uint32_t vc_clock;              /* ticks per entry answered or kept */
	hs_scratch_t *scratch;
	pcre2_match_data *md;
	/* Per-event marks are generations, not flags cleared per event; 16
	 * bits keep the arrays a half of what 32 would (hit marking is a
	 * scatter of writes over them), cleared once every 65,535 events. */
	uint16_t stamp;              /* current event generation */
	uint16_t *pred_stamp;        /* == stamp: predicate hit */
	uint16_t *grp_stamp;         /* == stamp: a member of the group hit */
	uint16_t *lazy_stamp;        /* == stamp: lazy result cached */
	uint8_t *lazy_val;
	uint16_t *rule_stamp;        /* == stamp: rule already queued */
	uint16_t *trig_stamp;        /* == stamp: trig_mask is the event's */
	uint8_t *trig_mask;          /* TRIG_A/TRIG_B sets seen this event */
	uint16_t *fv_stamp;          /* == stamp: fv[field] is the event's */
	struct sigma_fval *fv;       /* per field: its value (direct tests) */
	uint32_t *todo;              /* rules to evaluate */
	uint32_t n_todo;
	const struct event *ev;
	struct sigma_ls_ent ls_cache[SIGMA_LS_CACHE];
	uint64_t xh[EVENT_MAX_EXTRA];   /* hashes of the event's overflow names */
	uint8_t matched[SIGMA_COND_MAX_NAMES];
};

/* sigma_load.c */
const char *sigma_map_field(const struct sigma_builder *b,
			    const struct sigma_rule *r, const char *field,
			    char *tmp, size_t tmpsz);
int sigma_field_intern(struct sigma_builder *b, const char *name, uint32_t *out);
int sigma_pred_intern(struct sigma_builder *b, const struct sigma_pred *p,
		      uint32_t *out);

/* sigma_value.c: one field item (name|modifiers: values) into nodes. */
struct sigma_rule_build;
int sigma_item_compile(struct sigma_builder *b, struct sigma_rule_build *rb,
		       const char *key, const struct conf_node *values,
		       uint32_t *out_node, struct buf *why);
int sigma_keywords_compile(struct sigma_builder *b, struct sigma_rule_build *rb,
			   const struct conf_node *values, uint32_t *out_node,
			   struct buf *why);

/* sigma_value.c, at match time: the elements of a field value that is a
 * JSON array (how JSON inputs keep a multi-valued field), for "any element
 * matches". An element is borrowed from the value or decoded into buf. */
#define SIGMA_ELEM_BUF 4096u
struct sigma_elems {
	const char *p, *end;
	char buf[SIGMA_ELEM_BUF];
};

/* Cheap first test: could v be a JSON array at all? */
static inline int sigma_maybe_array(struct str v)
{
	return v.p && v.n >= 2 && v.p[0] == '[' && v.p[v.n - 1] == ']';
}
/* 1 when v is one well-formed JSON array (it then yields its elements),
 * else 0 (v is a single value). */
int sigma_elems_init(struct sigma_elems *it, struct str v);
/* 1 and the next element in *out (valid until the next call), 0 at the end. */
int sigma_elems_next(struct sigma_elems *it, struct str *out);

/* Growing node/kid arrays of the rule being built. */
struct sigma_rule_build {
	struct sigma_rule *r;
	uint32_t nodes_cap, kids_cap;
};
int sigma_node_add(struct sigma_rule_build *rb, uint8_t type, uint32_t a,
		   uint32_t n, uint32_t *out);
int sigma_node_group(struct sigma_rule_build *rb, uint8_t type,
		     const uint32_t *kids, uint32_t n, uint32_t *out);

/* sigma_compile.c */
int sigma_compile_buckets(struct sigma_ruleset *rs, struct buf *err);
/* The n (>= 2) databases of one field in src as one database: scanning
 * it hits what scanning each of them would, a hit naming the predicate
 * and rules of its source. NULL until it is ready: the first request
 * queues it for the set's merge thread (Hyperscan, in a compiler child),
 * and the caller scans each source meanwhile; NULL for good when it
 * cannot be built. Safe from any thread. */
const struct sigma_fdb *sigma_fdb_merged(const struct sigma_ruleset *rs,
					 const struct sigma_fdb *const *src, uint32_t n);
/* Stops the merge thread and frees the merges (sigma_ruleset_free_all). */
void sigma_merges_free(struct sigma_ruleset *rs);
void sigma_fdb_fini(struct sigma_fdb *f);
/* f->rec from its ids' predicates, the set's hit groups and f's rule
 * lists (once both are built). */
int sigma_fdb_recs(const struct sigma_ruleset *rs, struct sigma_fdb *f);
uint64_t sigma_name_hash(const char *p, size_t n);

/* sigma_match.c */
int sigma_pred_eval_direct(const struct sigma_ruleset *rs,
			   const struct sigma_pred *p, const struct event *ev,
			   pcre2_match_data *md);
int sigma_pred_eval_value(const struct sigma_ruleset *rs,
			  const struct sigma_pred *p, struct str v,
			  const struct event *ev, pcre2_match_data *md);

/* The hash a bucket's field index is keyed by: the length and three
 * 8-byte samples (head, middle, tail) instead of every byte. Every event
 * hashes the names of its overflow fields (a score of long
 * winlog.event_data.* names), and a probe compares the name anyway, so a
 * collision costs a compare, never a wrong field. Never 0. */
static inline uint64_t sigma_field_hash(const char *p, size_t n)
{
	uint64_t a = 0, b = 0, m = 0, h;

	if (n >= 8) {
		memcpy(&a, p, 8);
		memcpy(&b, p + n - 8, 8);
		if (n >= 16)
			memcpy(&m, p + n / 2 - 4, 8);
	} else if (n) {
		memcpy(&a, p, n);
	}
	h = (a * 0x9e3779b97f4a7c15ull) ^ (b * 0xc4ceb9fe1a85ec53ull) ^
	    (m * 0xff51afd7ed558ccdull) ^ ((uint64_t)n * 0x94d049bb133111ebull);
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return h | 1;
}

/* sigma_lit.c: sets p->lit (0 when the expression is not a plain string);
 * M_ENOMEM. */
int sigma_lit_prepare(struct sigma_pred *p);
int sigma_lit_match(const struct sigma_pred *p, const char *v, size_t n);
/* The longest string (its bytes into out, at most cap) that every match
 * of the expression re contains, compared caselessly; 0 when none can be
 * told. */
size_t sigma_re_gate(const char *re, char *out, size_t cap);

/* sigma_hscache.c: compiled databases on disk, by a key of their patterns. */
void sigma_hscache_key(const char *const *exprs, const unsigned *flags,
		       const unsigned *ids, uint32_t n, char out[33]);
/* 1 with *db (and the pattern indexes Hyperscan had refused) on a hit. */
int sigma_hscache_load(const char *dir, const char *key, hs_database_t **db,
		       uint32_t **removed, uint32_t *n_removed);
void sigma_hscache_store(const char *dir, const char *key, const hs_database_t *db,
			 const uint32_t *removed, uint32_t n_removed);
/* Removes cached databases not used for max_age_s. */
void sigma_hscache_prune(const char *dir, int64_t max_age_s);
size_t sigma_keyword_values(const struct event *ev, struct str *out);
struct str sigma_field_value(const struct sigma_ruleset *rs, uint32_t field,
			     const struct event *ev);
void sigma_rule_free(struct sigma_rule *r);

/* sigma_logsource.c */
struct sigma_logsource {
	struct str product;
	struct str category[4];
	uint32_t n_category;
	struct str service[3];
	uint32_t n_service;
};
void sigma_event_logsource(const struct event *ev, struct sigma_logsource *ls);

/* sigma_corr.c */
struct sigma_corr;
void sigma_corr_free(struct sigma_corr *c);

#endif
