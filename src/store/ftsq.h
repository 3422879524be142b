/*
 * Full-text queries for the SQLite store (private to src/store).
 *
 * Why this exists: the store indexes message text with FTS5 off the ingest
 * path, so the newest rows may not be in the index yet. To keep them
 * searchable, the same FTS5 query is evaluated here, row by row, over the
 * not-yet-indexed tail. The evaluator follows FTS5's query syntax (phrases,
 * prefix "*", "^" initial token, AND/OR/NOT, parentheses, NEAR treated as
 * AND, column filters ignored since only message is indexed) and the
 * "ascii" tokenizer's rules (ASCII letters and digits and every byte >= 0x80
 * form tokens, ASCII letters fold to lower case), so a row matches here iff
 * FTS5 would match it (NEAR excepted).
 */
#ifndef MAMORI_STORE_FTSQ_H
#define MAMORI_STORE_FTSQ_H

#include <stddef.h>

#include "core/buf.h"

#define FTSQ_MAX_LEN 4096     /* bytes of query text */
#define FTSQ_MAX_NODES 256    /* terms and operators in one query */
#define FTSQ_MAX_DEPTH 32     /* parenthesis nesting */
#define FTSQ_MAX_TOKENS 8192  /* message tokens examined per row */

struct ftsq;

/* Turns a user's text into an FTS5 query. Text without FTS5 syntax (no
 * quotes, parentheses, '*', ':', '^', '+', '{', '}' and no AND/OR/NOT/NEAR
 * operator) is taken as plain words: each becomes a quoted phrase, so
 * "failed password" and "10.0.0.1" just work. Other text is passed through.
 * out receives a NUL-terminated query. M_EINVAL when nothing searchable is
 * left or the text is too long. */
int ftsq_normalise(const char *text, struct buf *out);

/* Compiles an FTS5 query; M_EINVAL on a syntax error, M_ENOMEM. The result
 * is owned by the caller (ftsq_free). */
int ftsq_compile(const char *q, size_t n, struct ftsq **out);
void ftsq_free(struct ftsq *q);

/* 1 when text matches the query, else 0. Uses scratch space inside q, so one
 * compiled query serves one thread at a time. */
int ftsq_match(struct ftsq *q, const char *text, size_t n);

#endif
