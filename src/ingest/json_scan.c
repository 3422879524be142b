/*
 * The JSON pull tokenizer (see json_scan.h for why it exists). A state
 * machine over bytes: every step consumes input or returns, so a call is
 * bounded by the record's length; nesting is bounded by JSON_MAX_DEPTH.
 */
#include <string.h>

#include "core/err.h"
#include "core/str.h"
#include "ingest/json_scan.h"

enum {
	S_VALUE,            /* a value must follow */
	S_VALUE_OR_END,     /* just after '[' */
	S_KEY_OR_END,       /* just after '{' */
	S_KEY,              /* after ',' in an object */
	S_COLON,            /* after a key */
	S_COMMA_OR_END,     /* after a value inside a container */
	S_DONE,             /* the top-level value is complete */
	S_FAILED,
};

/* Bytes that end the fast loop inside a string: '"', '\\' and controls. */
static inline int str_stop(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\';
}

void json_scan_init(struct json_scan *s, const char *p, size_t n)
{
	s->p = s->start = p;
	s->end = p + n;
	s->depth = 0;
	s->state = S_VALUE;
	s->stop_after_value = 0;
	s->err_at = NULL;
}

static int fail(struct json_scan *s)
{
	s->state = S_FAILED;
	s->err_at = s->p;
	return JT_ERROR;
}

static void skip_ws(struct json_scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
				 *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* s->p at the opening quote. */
static int scan_string(struct json_scan *s, struct json_token *t)
{
	const char *q = s->p + 1, *end = s->end;
	uint8_t esc = 0;

	for (;;) {
		while (q < end && !str_stop((unsigned char)*q))
			q++;
		if (q >= end)
			return fail(s);
		if (*q == '"')
			break;
		if (*q != '\\') {
			s->p = q;
			return fail(s);      /* raw control character */
		}
		if (q + 1 >= end) {
			s->p = q;
			return fail(s);
		}
		esc = 1;
		switch (q[1]) {
		case '"': case '\\': case '/': case 'b': case 'f':
		case 'n': case 'r': case 't':
			q += 2;
			break;
		case 'u':
			if (end - q < 6 || str_hexval((unsigned char)q[2]) < 0 ||
			    str_hexval((unsigned char)q[3]) < 0 ||
			    str_hexval((unsigned char)q[4]) < 0 ||
			    str_hexval((unsigned char)q[5]) < 0) {
				s->p = q;
				return fail(s);
			}
			q += 6;
			break;
		default:
			s->p = q;
			return fail(s);
		}
	}
	t->p = s->p + 1;
	t->n = (uint32_t)(q - (s->p + 1));
	t->escaped = esc;
	s->p = q + 1;
	return 0;
}

static int is_digit(const char *q, const char *end)
{
	return q < end && (unsigned)(*q - '0') <= 9;
}

static int scan_number(struct json_scan *s, struct json_token *t)
{
	const char *q = s->p, *end = s->end;

	if (*q == '-')
		q++;
	if (!is_digit(q, end))
		return fail(s);
	if (*q == '0') {
		q++;
	} else {
		while (is_digit(q, end))
			q++;
	}
	if (q < end && *q == '.') {
		q++;
		if (!is_digit(q, end))
			return fail(s);
		while (is_digit(q, end))
			q++;
	}
	if (q < end && (*q == 'e' || *q == 'E')) {
		q++;
		if (q < end && (*q == '+' || *q == '-'))
			q++;
		if (!is_digit(q, end))
			return fail(s);
		while (is_digit(q, end))
			q++;
	}
	t->p = s->p;
	t->n = (uint32_t)(q - s->p);
	t->escaped = 0;
	s->p = q;
	return 0;
}

static int scan_literal(struct json_scan *s, struct json_token *t,
			const char *lit, size_t len, int type)
{
	if ((size_t)(s->end - s->p) < len || memcmp(s->p, lit, len) != 0)
		return fail(s);
	t->p = s->p;
	t->n = (uint32_t)len;
	t->escaped = 0;
	s->p += len;
	return type;
}

static void after_value(struct json_scan *s)
{
	s->state = s->depth == 0 ? S_DONE : S_COMMA_OR_END;
}

static int scan_value(struct json_scan *s, struct json_token *t)
{
	int type;

	switch (*s->p) {
	case '{':
	case '[':
		if (s->depth >= JSON_MAX_DEPTH)
			return fail(s);
		s->in_obj[s->depth++] = *s->p == '{';
		s->state = *s->p == '{' ? S_KEY_OR_END : S_VALUE_OR_END;
		t->p = s->p++;
		t->n = 1;
		t->escaped = 0;
		return t->p[0] == '{' ? JT_OBJ_BEGIN : JT_ARR_BEGIN;
	case '"':
		if (scan_string(s, t) < 0)
			return JT_ERROR;
		type = JT_STRING;
		break;
	case 't':
		type = scan_literal(s, t, "true", 4, JT_TRUE);
		break;
	case 'f':
		type = scan_literal(s, t, "false", 5, JT_FALSE);
		break;
	case 'n':
		type = scan_literal(s, t, "null", 4, JT_NULL);
		break;
	default:
		if (scan_number(s, t) < 0)
			return JT_ERROR;
		type = JT_NUMBER;
		break;
	}
	if (type != JT_ERROR)
		after_value(s);
	return type;
}

static int close_container(struct json_scan *s, struct json_token *t)
{
	int obj = s->in_obj[s->depth - 1];

	t->p = s->p++;
	t->n = 1;
	t->escaped = 0;
	s->depth--;
	after_value(s);
	return obj ? JT_OBJ_END : JT_ARR_END;
}

static int next_token(struct json_scan *s, struct json_token *t)
{
	/* At most three passes: a ',' or ':' is consumed, then a token. */
	for (int pass = 0; pass < 4; pass++) {
		skip_ws(s);
		if (s->state == S_FAILED)
			return JT_ERROR;
		if (s->state == S_DONE) {
			if (s->p == s->end || s->stop_after_value)
				return JT_END;
			return fail(s);
		}
		if (s->p >= s->end)
			return fail(s);
		switch (s->state) {
		case S_COLON:
			if (*s->p != ':')
				return fail(s);
			s->p++;
			s->state = S_VALUE;
			continue;
		case S_COMMA_OR_END:
			if (*s->p == ',') {
				s->p++;
				s->state = s->in_obj[s->depth - 1] ? S_KEY : S_VALUE;
				continue;
			}
			if ((*s->p == '}' && s->in_obj[s->depth - 1]) ||
			    (*s->p == ']' && !s->in_obj[s->depth - 1]))
				return close_container(s, t);
			return fail(s);
		case S_KEY_OR_END:
			if (*s->p == '}')
				return close_container(s, t);
			/* fall through */
		case S_KEY:
			if (*s->p != '"' || scan_string(s, t) < 0)
				return fail(s);
			s->state = S_COLON;
			return JT_KEY;
		case S_VALUE_OR_END:
			if (*s->p == ']')
				return close_container(s, t);
			/* fall through */
		case S_VALUE:
			return scan_value(s, t);
		}
		return fail(s);
	}
	return fail(s);
}

int json_scan_next(struct json_scan *s, struct json_token *t)
{
	t->type = next_token(s, t);
	return t->type;
}

int json_scan_skip(struct json_scan *s, const struct json_token *t)
{
	struct json_token u;
	int target, type;

	if (t->type != JT_OBJ_BEGIN && t->type != JT_ARR_BEGIN)
		return 0;
	target = s->depth - 1;
	for (;;) {
		type = json_scan_next(s, &u);
		if (type == JT_ERROR || type == JT_END)
			return JT_ERROR;
		if ((type == JT_OBJ_END || type == JT_ARR_END) &&
		    s->depth == target)
			return 0;
	}
}

static unsigned hex4(const char *p)
{
	return (unsigned)(str_hexval((unsigned char)p[0]) << 12 |
			  str_hexval((unsigned char)p[1]) << 8 |
			  str_hexval((unsigned char)p[2]) << 4 |
			  str_hexval((unsigned char)p[3]));
}

static char *put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | cp >> 12);
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | cp >> 18);
		*o++ = (char)(0x80 | (cp >> 12 & 0x3f));
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

int json_str_decode(const struct json_token *t, struct arena *a,
		    struct str *out)
{
	const char *p = t->p, *end = t->p + t->n;
	char *buf, *o;

	if (!t->escaped) {
		*out = str_make(t->p, t->n);
		return M_OK;
	}
	/* Decoding never lengthens: "\uXXXX" (6 bytes) gives at most 3. */
	buf = arena_alloc(a, t->n ? t->n : 1);
	if (!buf)
		return M_ENOMEM;
	o = buf;
	while (p < end) {
		const char *bs = memchr(p, '\\', (size_t)(end - p));
		if (!bs) {
			memcpy(o, p, (size_t)(end - p));
			o += end - p;
			break;
		}
		memcpy(o, p, (size_t)(bs - p));
		o += bs - p;
		p = bs;
		/* The scanner validated every escape, so p[1] exists. */
		switch (p[1]) {
		case 'b': *o++ = '\b'; p += 2; break;
		case 'f': *o++ = '\f'; p += 2; break;
		case 'n': *o++ = '\n'; p += 2; break;
		case 'r': *o++ = '\r'; p += 2; break;
		case 't': *o++ = '\t'; p += 2; break;
		case 'u': {
			unsigned cp = hex4(p + 2);
			p += 6;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
					unsigned lo = hex4(p + 2);
					if (lo >= 0xdc00 && lo <= 0xdfff) {
						cp = 0x10000 + ((cp - 0xd800) << 10) +
						     (lo - 0xdc00);
						p += 6;
					} else {
						cp = 0xfffd;
					}
				} else {
					cp = 0xfffd;
				}
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				cp = 0xfffd;
			}
			o = put_utf8(o, cp);
			break;
		}
		default:   /* '"', '\\', '/' */
			*o++ = p[1];
			p += 2;
			break;
		}
	}
	*out = str_make(buf, (size_t)(o - buf));
	return M_OK;
}

size_t json_value_len(const char *p, size_t n)
{
	struct json_scan s;
	struct json_token t;
	int type;

	json_scan_init(&s, p, n);
	s.stop_after_value = 1;
	do {
		type = json_scan_next(&s, &t);
	} while (type > JT_END);
	if (type != JT_END)
		return 0;
	return (size_t)(s.p - p);
}
