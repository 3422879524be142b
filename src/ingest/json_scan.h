/*
 * A small pull tokenizer for JSON: the hot path for JSON-lines inputs, where
 * building a DOM (jansson) per line would cost an allocation per value. It
 * validates the grammar as it goes (RFC 8259), bounds nesting at
 * JSON_MAX_DEPTH, never allocates, and hands strings back as raw slices;
 * json_str_decode() unescapes one into an arena only when it has escapes.
 *
 * Usage: json_scan_init(), then json_scan_next() until JT_END or JT_ERROR.
 * Commas and colons are checked, not returned.
 */
#ifndef MAMORI_JSON_SCAN_H
#define MAMORI_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/str.h"

#define JSON_MAX_DEPTH 32

enum json_tok {
	JT_ERROR = -1,
	JT_END = 0,        /* the top-level value is complete */
	JT_OBJ_BEGIN,
	JT_OBJ_END,
	JT_ARR_BEGIN,
	JT_ARR_END,
	JT_KEY,
	JT_STRING,
	JT_NUMBER,
	JT_TRUE,
	JT_FALSE,
	JT_NULL,
};

struct json_token {
	int type;          /* enum json_tok */
	const char *p;     /* strings: the bytes between the quotes; else the token */
	uint32_t n;
	uint8_t escaped;   /* a string with backslash escapes */
};

struct json_scan {
	const char *p, *end, *start;
	int depth;
	int state;
	int stop_after_value;   /* JT_END after the first value, rest ignored */
	const char *err_at;     /* where the grammar broke (JT_ERROR) */
	uint8_t in_obj[JSON_MAX_DEPTH];
};

void json_scan_init(struct json_scan *s, const char *p, size_t n);
int json_scan_next(struct json_scan *s, struct json_token *t);
/* After t was returned: skips the rest of its value (a whole object or
 * array; nothing for a scalar). 0 or JT_ERROR. */
int json_scan_skip(struct json_scan *s, const struct json_token *t);
/* A string token's value: borrowed when it has no escapes, otherwise an
 * arena copy with escapes decoded (\u to UTF-8, surrogate pairs joined, a
 * lone surrogate becomes U+FFFD). 0 or M_ENOMEM. */
int json_str_decode(const struct json_token *t, struct arena *a,
		    struct str *out);
/* Length of the first complete JSON value in p including leading
 * whitespace, or 0 when p does not start with one (for inputs that hold
 * several concatenated objects). */
size_t json_value_len(const char *p, size_t n);

#endif
