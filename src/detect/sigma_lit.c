/*
 * Plain-string predicates tested without a regex engine.
 *
 * Why: a predicate that queues no rule is left out of the Hyperscan
 * databases (sigma_match.c, demote_idle_preds) and tested on its own when
 * a queued rule reads it. Most of them are what Sigma's contains,
 * startswith, endswith and plain values make: a string, maybe anchored.
 * Calling PCRE2 for those costs its entry and match-data set-up on every
 * test; a byte loop over a field of a few dozen bytes costs less.
 *
 * The expressions come from sigma_value.c's to_regex: `\A` for a start
 * anchor, `\z` for an end anchor, letters, digits, `_` and space as
 * themselves, every other byte as `\xHH`. Anything else (wildcards, |re)
 * is not a plain string and stays with PCRE2. Caseless here is what it is
 * for both engines without UTF mode: ASCII letters only.
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/str.h"
#include "detect/sigma_int.h"

int sigma_lit_prepare(struct sigma_pred *p)
{
	const char *re = p->re;
	size_t n, k = 0;
	int start = 0, end = 0;
	char *out;

	p->lit = 0;
	if (p->kind != SPK_STR || !re)
		return 0;
	n = strlen(re);
	if (n >= 2 && re[0] == '\\' && re[1] == 'A') {
		start = 1;
		re += 2;
		n -= 2;
	}
	if (n >= 2 && re[n - 2] == '\\' && re[n - 1] == 'z' &&
	    (n < 3 || re[n - 3] != '\\')) {
		end = 1;
		n -= 2;
	}
	if (n == 0)
		return 0;
	out = malloc(n + 1);
	if (!out)
		return M_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)re[i];

		if (c == '\\') {
			int hi, lo;

			if (i + 3 >= n || re[i + 1] != 'x' ||
			    (hi = str_hexval(re[i + 2])) < 0 || (lo = str_hexval(re[i + 3])) < 0) {
				free(out);
				return 0;
			}
			c = (unsigned char)(hi * 16 + lo);
			i += 3;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			     (c >= 'A' && c <= 'Z') || c == '_' || c == ' ')) {
			free(out);
			return 0;
		}
		out[k++] = (char)((p->flags & SPF_CASELESS) ? str_lower_byte(c) : c);
	}
	out[k] = '\0';
	free(p->lit_s);
	p->lit_s = out;
	p->lit_len = (uint32_t)k;
	p->lit = start && end ? SPL_EQ : start ? SPL_STARTS : end ? SPL_ENDS : SPL_CONTAINS;
	return 0;
}

/* s (n bytes) against the predicate's string (already folded). */
static int same(const struct sigma_pred *p, const unsigned char *s)
{
	const unsigned char *l = (const unsigned char *)p->lit_s;

	if (!(p->flags & SPF_CASELESS))
		return memcmp(s, l, p->lit_len) == 0;
	for (uint32_t i = 0; i < p->lit_len; i++)
		if (str_lower_byte(s[i]) != l[i])
			return 0;
	return 1;
}

static int contains(const struct sigma_pred *p, const unsigned char *s, size_t n)
{
	const unsigned char *l = (const unsigned char *)p->lit_s;
	unsigned char c0 = l[0];
	size_t last = n - p->lit_len;

	if (!(p->flags & SPF_CASELESS) || !(c0 >= 'a' && c0 <= 'z')) {
		/* The first byte has one form: memchr finds the candidates. */
		for (size_t i = 0; i <= last;) {
			const unsigned char *hit = memchr(s + i, c0, last - i + 1);

			if (!hit)
				return 0;
			i = (size_t)(hit - s);
			if (same(p, hit))
				return 1;
			i++;
		}
		return 0;
	}
	for (size_t i = 0; i <= last; i++)
		if (str_lower_byte(s[i]) == c0 && same(p, s + i))
			return 1;
	return 0;
}

int sigma_lit_match(const struct sigma_pred *p, const char *v, size_t n)
{
	const unsigned char *s = (const unsigned char *)v;

	if (n < p->lit_len)
		return 0;
	switch (p->lit) {
	case SPL_EQ:
		return n == p->lit_len && same(p, s);
	case SPL_STARTS:
		return same(p, s);
	case SPL_ENDS:
		return same(p, s + n - p->lit_len);
	default:
		return contains(p, s, n);
	}
}
