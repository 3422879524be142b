/*
 * The `condition` of a Sigma rule, compiled once at rule load against the
 * rule's detection identifiers and evaluated per event from a "which
 * identifiers matched" bitmap. Kept apart from field matching so the
 * boolean layer can be parsed, fuzzed and tested on its own.
 */
#ifndef MAMORI_SIGMA_COND_H
#define MAMORI_SIGMA_COND_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define SIGMA_COND_MAX_TEXT 4096
#define SIGMA_COND_MAX_NODES 512
#define SIGMA_COND_MAX_DEPTH 64
#define SIGMA_COND_MAX_NAMES 256
#define SIGMA_COND_MAX_NAME_LEN 1024

struct sigma_cond;

/*
 * Compiles text[0..len) against names[0..n_names) (the detection keys).
 * Supports identifiers, and/or/not (any case), parentheses, `1 of P`,
 * `any of P`, `all of P` with `*` wildcards in P, and `them` (all names
 * not starting with '_'). Precedence: not > and > or. Pipe aggregations
 * are rejected with M_EUNSUPP. On success *out is owned by the caller
 * (sigma_cond_free). On failure returns a negative m_err and, when err is
 * not NULL, appends a message with the 1-based column. Never aborts.
 */
int sigma_cond_parse(const char *text, size_t len, const char *const *names,
		     size_t n_names, struct sigma_cond **out, struct buf *err);

/* Returns 1 when the condition holds given matched[i] (1 when names[i]
 * matched; n_names entries), 0 when not, a negative m_err on bad input. */
int sigma_cond_eval(const struct sigma_cond *c, const uint8_t *matched);

/* The same in Kleene's three-valued logic: v[i] is 0 (false), 1 (true) or
 * 2 (unknown); returns 0 or 1 when that much of v decides the condition
 * whatever the unknowns are, 2 when it may not, a negative m_err on bad
 * input. Sound, not complete: a condition such as `a or not a` stays 2. */
int sigma_cond_eval3(const struct sigma_cond *c, const uint8_t *v);

/* Appends the normalised, fully parenthesised expression to out. */
int sigma_cond_describe(const struct sigma_cond *c, struct buf *out);

/* Number of names the condition was compiled against. */
size_t sigma_cond_n_names(const struct sigma_cond *c);

void sigma_cond_free(struct sigma_cond *c);

#endif
