/*
 * Private to src/api: turning the query parameters of GET /api/v1/events into
 * a struct store_query. Kept apart from the HTTP glue so the unit test (and a
 * fuzzer) can drive it with plain strings: it is a pure function of the
 * (name, value) pairs it is fed.
 */
#ifndef MAMORI_API_PARAMS_H
#define MAMORI_API_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define API_MAX_URL 8192          /* request target, bytes */
#define API_MAX_PARAMS 64         /* query parameters per request */
#define API_MAX_VALUE 1024        /* one parameter value, bytes */
#define API_MAX_FIELD_NAME 128
#define API_DEFAULT_LIMIT 100
#define API_MAX_LIMIT 1000
#define API_MAX_OFFSET 1000000    /* deeper pages: narrow the time range */

/* One search being parsed. Strings that filters and text point to are copied
 * into pool, so the struct owns everything it refers to. Caller-owned; init
 * with api_search_init(). */
struct api_search {
	struct store_query q;
	unsigned seen;              /* single-use parameters already given */
	unsigned n_params;
	char err_param[API_MAX_FIELD_NAME + 1];   /* set on error */
	char err_detail[256];
	size_t pool_len;
	char pool[API_MAX_URL + 2 * API_MAX_PARAMS];
};

void api_search_init(struct api_search *s);
/* Feeds one query parameter (already percent-decoded; value may be NULL for
 * "?name"). Returns 0, or M_EINVAL with err_param/err_detail set. */
int api_search_param(struct api_search *s, const char *name, size_t name_len,
		     const char *value, size_t value_len);
/* Checks what only the whole set can tell (from <= to). 0 or M_EINVAL. */
int api_search_finish(struct api_search *s);

/* Parses an RFC 3339 time ("2024-05-01T12:00:00Z", fractions, offsets,
 * or a bare date meaning midnight UTC) or an epoch number (seconds below
 * 10^11, milliseconds otherwise) into microseconds since the epoch.
 * 0 or M_EPARSE. */
int api_parse_time(const char *s, size_t n, int64_t *out_us);
/* An unsigned decimal of at most 19 digits, no sign, no spaces, at most
 * max: 0, M_EPARSE, or M_ELIMIT when over max. */
int api_parse_uint(const char *s, size_t n, uint64_t max, uint64_t *out);
/* A path id: a positive decimal of at most 15 digits (below 2^53, so
 * JavaScript clients keep it exact); 0 when it is not one. */
int64_t api_parse_id(const char *s, size_t n);
/* A query parameter a route knows: its name and its bit in the route's
 * "allowed" and "seen" masks. */
struct api_param_name {
	const char *name;
	unsigned bit;
};
/* The checks every parameter meets before its value is read: known, taken
 * by this route (allowed), not given before (seen), at most API_MAX_VALUE
 * bytes and no NUL. NULL with *bit set, or the reason it is refused. */
const char *api_param_check(const struct api_param_name *tab, size_t ntab, unsigned allowed,
			    unsigned seen, const char *name, size_t name_len,
			    const char *value, size_t value_len, unsigned *bit);
/* 1 when s[0..n) is exactly lit. */
int api_is(const char *s, size_t n, const char *lit);

#endif
