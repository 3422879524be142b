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

/* ---- gates: a string every match of an expression contains ----
 *
 * Why: Hyperscan runs the automata of a field's regular expressions over
 * every byte of every value, and on the corpus's Windows CommandLine the
 * 196 of them cost more than its 10,806 plain strings (6,530 instructions
 * a command line against 4,390). Most of them need a string to match at
 * all (`cmd.exe /C * > \\*\*\* 2>&1` needs `cmd.exe /c `): that string
 * joins the plain strings' database, which a value is scanned with anyway,
 * and the expression runs only on values that hold it (compile_fdb).
 *
 * The reading is deliberately narrow: a sequence at the top level (no
 * `|` there) of single bytes, escapes, classes, groups and quantifiers.
 * A group, a class, `.`, an anchor or a class escape ends a run of bytes;
 * a quantifier allowing none takes its byte out of the run. Anything it
 * does not know (back references, \Q, \p, extended mode, a `{` that is no
 * quantifier) gives no gate, which only costs speed. */

/* The closing ']' of the class opening at re[i] ('['), or 0 when it is
 * not closed. A ']' first (after a '^') is a member, as is a POSIX
 * class ([:alpha:]). */
static size_t gate_skip_class(const char *re, size_t i)
{
	i++;
	if (re[i] == '^')
		i++;
	if (re[i] == ']')
		i++;
	for (; re[i] && re[i] != ']'; i++) {
		if (re[i] == '\\' && !re[++i])
			return 0;
		if (re[i] == '[' && re[i + 1] == ':') {
			const char *e = strstr(re + i + 2, ":]");

			if (!e)
				return 0;
			i = (size_t)(e - re) + 1;
		}
	}
	return re[i] ? i : 0;
}

/* The end of the group opening at re[i] ('('), or 0 when it is not
 * closed or holds what the reading gives up on. */
static size_t gate_skip_group(const char *re, size_t i)
{
	int depth = 0;

	if (re[i + 1] == '*')
		return 0;   /* (*UTF) and other verbs: another mode */
	if (re[i + 1] == '?') {
		/* Options (?i) (?s-m) (?i:...) are fine but extended mode
		 * changes what every byte means; (?# is a comment. */
		size_t k = i + 2;

		if (re[k] == '#')
			return 0;
		while ((re[k] >= 'a' && re[k] <= 'z') || re[k] == '-' || re[k] == '^')
			if (re[k++] == 'x')
				return 0;
	}
	for (; re[i]; i++) {
		if (re[i] == '\\') {
			if (!re[++i])
				return 0;
		} else if (re[i] == '[') {
			if (!(i = gate_skip_class(re, i)))
				return 0;
		} else if (re[i] == '(') {
			depth++;
		} else if (re[i] == ')' && --depth == 0) {
			return i;
		}
	}
	return 0;
}

/* A quantifier at re[i]: its length and whether it allows no repeat;
 * 0 when there is none; -1 for a `{` that is not one. */
static int gate_quant(const char *re, size_t i, int *may_none)
{
	size_t k = i + 1;

	if (re[i] == '*' || re[i] == '?') {
		*may_none = 1;
	} else if (re[i] == '+') {
		*may_none = 0;
	} else if (re[i] == '{') {
		unsigned lo = 0;
		int digits = 0;

		while (re[k] >= '0' && re[k] <= '9') {
			lo = lo * 10 + (unsigned)(re[k++] - '0');
			digits = 1;
			if (lo > 100000)
				return -1;
		}
		if (!digits)
			return -1;
		if (re[k] == ',')
			while (re[++k] >= '0' && re[k] <= '9')
				;
		if (re[k++] != '}')
			return -1;
		*may_none = lo == 0;
	} else {
		return 0;
	}
	if (re[k] == '?' || re[k] == '+')   /* lazy, possessive */
		k++;
	return (int)(k - i);
}

size_t sigma_re_gate(const char *re, char *out, size_t cap)
{
	char run[256];
	size_t n = 0, best = 0, i = 0;
	int may_none, q;

	if (!re || cap == 0)
		return 0;
#define GATE_END()                                                  \
	do {                                                        \
		if (n > best && n <= cap) {                         \
			memcpy(out, run, n);                        \
			best = n;                                   \
		}                                                   \
		n = 0;                                              \
	} while (0)
	while (re[i]) {
		unsigned char c = (unsigned char)re[i];
		int byte = -1;   /* the atom at i is this one byte */
		size_t next;

		if (c == '|')
			return 0;
		if (c == '\\') {
			unsigned char e = (unsigned char)re[i + 1];
			int hi, lo;

			if (e == 'x') {
				if ((hi = str_hexval((unsigned char)re[i + 2])) < 0 ||
				    (lo = str_hexval((unsigned char)re[i + 3])) < 0)
					return 0;
				byte = hi * 16 + lo;
				next = i + 4;
			} else if (e && !((e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') ||
					  (e >= 'A' && e <= 'Z'))) {
				byte = e;      /* an escaped punctuation byte */
				next = i + 2;
			} else if (e && strchr("sSdDwWhHvVRNAzZbBG", e)) {
				next = i + 2;  /* a class or an anchor */
			} else {
				return 0;
			}
		} else if (c == '[') {
			size_t k = gate_skip_class(re, i);

			if (!k)
				return 0;
			next = k + 1;
		} else if (c == '(') {
			size_t e = gate_skip_group(re, i);

			if (!e)
				return 0;
			next = e + 1;
		} else if (c == ')' || c == '*' || c == '+' || c == '?' || c == '{') {
			return 0;  /* unbalanced, or a quantifier of nothing */
		} else if (c == '.' || c == '^' || c == '$') {
			next = i + 1;
		} else {
			byte = c;
			next = i + 1;
		}
		q = gate_quant(re, next, &may_none);
		if (q < 0)
			return 0;
		if (byte < 0) {
			GATE_END();
		} else if (q > 0 && may_none) {
			GATE_END();
		} else {
			if (n == sizeof(run))
				GATE_END();
			run[n++] = (char)byte;
			if (q > 0)
				GATE_END();   /* repeated: what follows is not adjacent */
		}
		i = next + (size_t)(q > 0 ? q : 0);
	}
	GATE_END();
#undef GATE_END
	return best;
}
