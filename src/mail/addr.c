/*
 * addr: RFC 5322 §3.4 address lists. See addr.h for why it is tolerant.
 *
 * How: the value is cut at top-level commas, colons (a group's start) and
 * semicolons (its end) — "top level" meaning outside quoted strings,
 * comments and angle brackets. Each piece is one mailbox: with an angle
 * address, the phrase before '<' is the display name; without, the whole
 * piece (CFWS removed) is the address and a comment is the name. One pass
 * over the input, bounded by its length; nesting of comments is capped.
 */
#include "mail/addr.h"

#include <string.h>

#include "core/err.h"
#include "mail/mime.h"

#define COMMENT_MAX_DEPTH 32

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* End of the comment that opens at s[i] (index after its ')'). */
static size_t comment_end(const char *s, size_t i, size_t n, int *bad)
{
	int depth = 0;
	for (; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n) {
			i++;
		} else if (s[i] == '(') {
			if (depth < COMMENT_MAX_DEPTH)
				depth++;
		} else if (s[i] == ')') {
			if (--depth == 0)
				return i + 1;
		}
	}
	*bad = 1;
	return n;
}

static size_t quote_end(const char *s, size_t i, size_t n, int *bad)
{
	for (i++; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n)
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	*bad = 1;
	return n;
}

/* The display phrase s[0..n): quoted strings unquoted, comments dropped
 * (the last comment's text returned through cm when wanted), runs of
 * blanks made one space, then RFC 2047 words decoded. */
static char *phrase(struct arena *a, const char *s, size_t n, int *bad)
{
	char *t = arena_alloc(a, n + 1);
	if (!t)
		return NULL;
	size_t o = 0;
	int sp = 0;
	for (size_t i = 0; i < n;) {
		char c = s[i];
		if (c == '"') {
			size_t e = quote_end(s, i, n, bad);
			if (sp && o)
				t[o++] = ' ';
			sp = 0;
			for (size_t j = i + 1; j < e; j++) {
				if (s[j] == '"' && j + 1 == e)
					break;
				if (s[j] == '\\' && j + 1 < e)
					j++;
				t[o++] = s[j];
			}
			i = e;
		} else if (c == '(') {
			i = comment_end(s, i, n, bad);
			sp = 1;
		} else if (is_ws(c)) {
			sp = 1;
			i++;
		} else {
			if (sp && o)
				t[o++] = ' ';
			sp = 0;
			t[o++] = c;
			i++;
		}
	}
	return mime_decode_words(a, t, o);
}

/* The text inside the last comment of s[0..n), or NULL. */
static char *last_comment(struct arena *a, const char *s, size_t n, int *bad)
{
	size_t cs = 0, ce = 0;
	for (size_t i = 0; i < n;) {
		if (s[i] == '"') {
			i = quote_end(s, i, n, bad);
		} else if (s[i] == '(') {
			size_t e = comment_end(s, i, n, bad);
			cs = i + 1;
			ce = e > cs && s[e - 1] == ')' ? e - 1 : e;
			i = e;
		} else {
			i++;
		}
	}
	if (ce <= cs)
		return NULL;
	return phrase(a, s + cs, ce - cs, bad);
}

/* An addr-spec with comments and blanks removed (quoted local parts keep
 * their quotes, as they are part of the address). Bounded by ADDR_MAX_LEN. */
static char *addr_spec(struct arena *a, const char *s, size_t n, int *bad)
{
	size_t cap = n < ADDR_MAX_LEN ? n : ADDR_MAX_LEN;
	char *t = arena_alloc(a, cap + 1);
	if (!t)
		return NULL;
	size_t o = 0;
	if (n > ADDR_MAX_LEN)
		*bad = 1;
	for (size_t i = 0; i < n;) {
		if (s[i] == '(') {
			i = comment_end(s, i, n, bad);
		} else if (s[i] == '"') {
			size_t e = quote_end(s, i, n, bad);
			for (; i < e; i++)
				if (o < cap)
					t[o++] = s[i];
		} else if (is_ws(s[i])) {
			i++;
		} else {
			if (o < cap)
				t[o++] = s[i];
			i++;
		}
	}
	t[o] = '\0';
	return t;
}

static void fill_domain(struct addr *ad)
{
	const char *at = strrchr(ad->addr, '@');
	ad->domain = at ? at + 1 : "";
	ad->valid = at && at != ad->addr && at[1] != '\0';
}

/* One mailbox from s[0..n) (no top-level ',' inside). */
static int mailbox(struct arena *a, const char *s, size_t n, const char *group,
		   struct addr_list *out)
{
	int bad = 0;
	size_t lt = n, gt = n;

	/* trim: an empty piece (",," or a trailing comma) is no mailbox */
	size_t b = 0;
	while (b < n && is_ws(s[b]))
		b++;
	if (b == n)
		return 0;
	for (size_t i = 0; i < n;) {
		if (s[i] == '"')
			i = quote_end(s, i, n, &bad);
		else if (s[i] == '(')
			i = comment_end(s, i, n, &bad);
		else if (s[i] == '<' && lt == n)
			lt = i++;
		else if (s[i] == '>' && lt != n && gt == n)
			gt = i++;
		else
			i++;
	}
	if (out->n >= ADDR_MAX) {
		out->limited = 1;
		return 0;
	}
	struct addr *ad = &out->v[out->n];
	ad->group = group;
	if (lt != n) {
		if (gt == n)
			bad = 1;
		const char *in = s + lt + 1;
		size_t il = (gt == n ? n : gt) - lt - 1;
		/* obsolete route "@a,@b:user@host": keep what follows ':' */
		const char *colon = il && in[0] == '@' ? memchr(in, ':', il) : NULL;
		if (colon) {
			il -= (size_t)(colon + 1 - in);
			in = colon + 1;
		}
		ad->addr = addr_spec(a, in, il, &bad);
		ad->display = phrase(a, s, lt, &bad);
		if (gt != n && gt + 1 < n) {
			/* text after '>' other than comments is junk */
			for (size_t i = gt + 1; i < n;) {
				if (s[i] == '(')
					i = comment_end(s, i, n, &bad);
				else if (!is_ws(s[i++]))
					bad = 1;
			}
		}
	} else {
		ad->addr = addr_spec(a, s, n, &bad);
		char *cm = last_comment(a, s, n, &bad);
		ad->display = cm ? cm : "";
	}
	if (!ad->addr || !ad->display)
		return M_ENOMEM;
	fill_domain(ad);
	if (!ad->valid)
		bad = 1;
	out->errors += bad;
	out->n++;
	return 0;
}

int addr_parse_list(struct arena *a, const char *s, size_t n,
		    struct addr_list *out)
{
	int bad = 0, rc = 0;
	const char *group = NULL;
	size_t start = 0;
	int angle = 0;

	memset(out, 0, sizeof(*out));
	/* at most one mailbox per two input bytes, and ADDR_MAX */
	size_t want = n / 2 + 1 < ADDR_MAX ? n / 2 + 1 : ADDR_MAX;
	out->v = arena_zalloc(a, want * sizeof(*out->v));
	if (!out->v)
		return M_ENOMEM;
	for (size_t i = 0; i <= n && rc == 0;) {
		char c = i < n ? s[i] : ',';
		if (i < n && c == '"') {
			i = quote_end(s, i, n, &bad);
			continue;
		}
		if (i < n && c == '(') {
			i = comment_end(s, i, n, &bad);
			continue;
		}
		if (i < n && c == '[') { /* a domain literal may hold ':' */
			const char *e = memchr(s + i, ']', n - i);
			i = e ? (size_t)(e - s) + 1 : n;
			continue;
		}
		if (c == '<')
			angle = 1;
		else if (c == '>')
			angle = 0;
		else if ((i == n || (!angle && (c == ',' || c == ';' || c == ':'))) &&
			 !(c == ':' && group)) {
			if (c == ':') {
				/* a group's display name */
				char *g = phrase(a, s + start, i - start, &bad);
				if (!g)
					return M_ENOMEM;
				group = g;
			} else {
				if (out->n >= want && out->n < ADDR_MAX) {
					out->limited = 1;
					break;
				}
				rc = mailbox(a, s + start, i - start, group, out);
				if (c == ';') {
					if (!group)
						bad = 1;
					group = NULL;
				}
			}
			start = i + 1;
		} else if (c == ':' && group && !angle) {
			bad = 1; /* a group inside a group */
		}
		i++;
	}
	if (angle || group)
		bad = 1; /* an unclosed '<' or group */
	out->errors += bad;
	return rc;
}
