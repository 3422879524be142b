/*
 * Sigma rules (the SigmaHQ format): loaded from files and directories,
 * checked (loaded / unsupported feature / error, with a line), compiled
 * once into a frozen, reference-counted rule set, and matched against
 * events by pipeline workers. Why a builder and a frozen set: matching
 * runs on every event on every worker, so the set is built aside, compiled
 * into Hyperscan databases, and swapped whole on reload while workers keep
 * the old one until their batch ends.
 */
#ifndef MAMORI_SIGMA_H
#define MAMORI_SIGMA_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/event.h"

enum sigma_level {
	SIGMA_LEVEL_INFORMATIONAL = 0,
	SIGMA_LEVEL_LOW,
	SIGMA_LEVEL_MEDIUM,
	SIGMA_LEVEL_HIGH,
	SIGMA_LEVEL_CRITICAL,
};

const char *sigma_level_name(enum sigma_level l);

/* What a loaded rule is, for alerts. Strings live as long as the set. */
struct sigma_rule_info {
	const char *id;        /* the rule's id (a UUID), or its file name */
	const char *name;      /* the optional `name:` (correlation refs) */
	const char *title;
	const char *file;
	const char *status;
	enum sigma_level level;
	const char *const *tags;  /* e.g. "attack.t1059.001"; NULL-terminated */
	uint32_t n_tags;
	uint32_t index;           /* in the set */
	int is_correlation;
};

enum sigma_file_status {
	SIGMA_LOADED = 0,
	SIGMA_UNSUPPORTED,  /* valid Sigma using a feature we do not have */
	SIGMA_ERROR,        /* not valid YAML or not a valid rule */
};

/* Called once per rule document: file, status, and for the last two a
 * message "line:col: why" (line 0 when not tied to a place). */
typedef void (*sigma_report_fn)(void *ctx, const char *file,
				enum sigma_file_status st, const char *msg);

struct sigma_builder;
struct sigma_ruleset;

/* A new builder owned by the caller (sigma_builder_finish or
 * sigma_builder_free releases it); NULL when out of memory. */
struct sigma_builder *sigma_builder_new(void);
void sigma_builder_free(struct sigma_builder *b);

/* Field mappings: a YAML file, or every *.yml in a directory (see
 * rules/mappings/README.md). Load them before the rules. */
int sigma_builder_add_mappings(struct sigma_builder *b, const char *path,
			       struct buf *err);
/* The mappings built into the binary (rules/mappings/ at build time) and,
 * when with_rules, the bundled rules (the rest of rules/). */
int sigma_builder_add_builtin(struct sigma_builder *b, int with_rules,
			      sigma_report_fn fn, void *ctx, struct buf *err);
/* Values of an `|expand` placeholder (%name% in rules). */
int sigma_builder_set_placeholder(struct sigma_builder *b, const char *name,
				  const char *const *values, size_t n);

/* One rule file (several YAML documents allowed), or a directory walked
 * recursively in name order (*.yml and *.yaml). Every document is reported
 * through fn. Returns 0 unless the path cannot be read or memory runs out;
 * rules with errors are reported and skipped, not fatal. */
int sigma_builder_add_path(struct sigma_builder *b, const char *path,
			   sigma_report_fn fn, void *ctx);
/* One rule document from memory (tests, fuzzing). Returns the status. */
enum sigma_file_status sigma_builder_add_text(struct sigma_builder *b,
					      const char *name,
					      const char *text, size_t len,
					      struct buf *why);

/* Counts so far. */
void sigma_builder_counts(const struct sigma_builder *b, size_t *loaded,
			  size_t *unsupported, size_t *errors);

/* Compiles and freezes. The builder is freed in every case. The caller
 * owns the one reference; NULL with err set on failure. force_pcre (tests)
 * matches every pattern with PCRE2 instead of Hyperscan. */
struct sigma_ruleset *sigma_builder_finish(struct sigma_builder *b,
					   int force_pcre, struct buf *err);

struct sigma_ruleset *sigma_ruleset_ref(struct sigma_ruleset *rs);
void sigma_ruleset_unref(struct sigma_ruleset *rs);
uint32_t sigma_ruleset_count(const struct sigma_ruleset *rs);
const struct sigma_rule_info *sigma_ruleset_rule(const struct sigma_ruleset *rs,
						 uint32_t i);
/* The rule with this id or name, or NULL. */
const struct sigma_rule_info *sigma_ruleset_find(const struct sigma_ruleset *rs,
						 const char *id_or_name);

/* Why a loaded correlation rule cannot run (a missing rule, ...), or NULL. */
const char *sigma_corr_disabled(const struct sigma_ruleset *rs, uint32_t rule);

/* Matching context: per worker, or per batch from the set's pool. */
struct sigma_ctx;
struct sigma_ctx *sigma_ctx_get(struct sigma_ruleset *rs);
void sigma_ctx_put(struct sigma_ruleset *rs, struct sigma_ctx *c);
/* Keeps the compiled pattern databases in dir (created when missing) and
 * reuses them when the same patterns are compiled again: restarts and
 * reloads of an unchanged rule set skip Hyperscan's compiler. Databases
 * unused for 30 days are removed. NULL or "" = no cache. */
int sigma_builder_set_hs_cache(struct sigma_builder *b, const char *dir);
/* Databases taken from the cache and compiled, for the last build. */
void sigma_ruleset_hs_cache_stats(const struct sigma_ruleset *rs, uint32_t *hits,
				  uint32_t *misses);
/* Field values looked up in the context's cache of scanned values, and
 * found there, since the context was made (benchmarks). */
void sigma_ctx_cache_stats(const struct sigma_ctx *c, uint64_t *lookups, uint64_t *hits);
/* Databases merged for the event signatures met so far (one field that
 * several logsource buckets look at, scanned once), and merges that could
 * not be built (those fields stay scanned per bucket). */
void sigma_ruleset_merge_stats(const struct sigma_ruleset *rs, uint32_t *merged,
			       uint32_t *failed);
/* Waits until the merges asked for so far are built (tests, benchmarks:
 * matching never waits for them). */
void sigma_ruleset_merge_wait(const struct sigma_ruleset *rs);

/* Matches one event: writes up to cap matched rule indices to out and
 * their number to *n (the count beyond cap is dropped; cap 64 is plenty).
 * Returns 0 or a negative m_err (the event is then skipped). */
int sigma_match(const struct sigma_ruleset *rs, struct sigma_ctx *c,
		const struct event *ev, uint32_t *out, size_t cap, size_t *n);

#endif
