/*
 * The plain-string tests of Sigma predicates (sigma_lit.c) against PCRE2,
 * the engine they stand in for: fixed cases for each anchor and case
 * mode, expressions that are not plain strings, and a randomised
 * comparison over a small alphabet (so that matches, near misses and
 * overlaps are frequent). Then the gates of expressions (sigma_re_gate):
 * fixed cases, and random expressions whose every PCRE2 match must hold
 * the gate.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "detect/sigma_int.h"

/* PCRE2's answer for re on v (n bytes). */
static int pcre_says(const char *re, int caseless, const char *v, size_t n)
{
	int ec, rc;
	PCRE2_SIZE eo;
	pcre2_code *pc = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
				       caseless ? PCRE2_CASELESS : 0, &ec, &eo, NULL);
	pcre2_match_data *md;

	assert_non_null(pc);
	md = pcre2_match_data_create_from_pattern(pc, NULL);
	rc = pcre2_match(pc, (PCRE2_SPTR)v, n, 0, 0, md, NULL);
	pcre2_match_data_free(md);
	pcre2_code_free(pc);
	return rc >= 0;
}

/* 1 when re is a plain string, and then its answer on v. */
static int lit_says(const char *re, int caseless, const char *v, size_t n, int *is_lit)
{
	struct sigma_pred p;
	int r;

	memset(&p, 0, sizeof(p));
	p.kind = SPK_STR;
	p.flags = caseless ? SPF_CASELESS : 0;
	p.re = (char *)re;
	assert_int_equal(sigma_lit_prepare(&p), 0);
	*is_lit = p.lit != 0;
	r = p.lit ? sigma_lit_match(&p, v, n) : 0;
	free(p.lit_s);
	return r;
}

static void check(const char *re, int caseless, const char *v, int want)
{
	int is_lit;
	int got = lit_says(re, caseless, v, strlen(v), &is_lit);

	if (!is_lit)
		fail_msg("%s: not taken as a plain string", re);
	if (got != want || pcre_says(re, caseless, v, strlen(v)) != want)
		fail_msg("%s on \"%s\" (caseless %d): want %d, got %d", re, v, caseless, want, got);
}

static void test_fixed(void **state)
{
	(void)state;
	check("cmd\\x2eexe", 1, "C:\\Windows\\CMD.EXE /c", 1);
	check("cmd\\x2eexe", 0, "C:\\Windows\\CMD.EXE /c", 0);
	check("cmd\\x2eexe", 0, "x cmd.exe", 1);
	check("\\Acmd", 1, "CMD.exe", 1);
	check("\\Acmd", 1, " cmd.exe", 0);
	check("\\x2eexe\\z", 1, "a.EXE", 1);
	check("\\x2eexe\\z", 1, "a.exe ", 0);
	check("\\Aa b\\z", 1, "A B", 1);
	check("\\Aa b\\z", 1, "A Bc", 0);
	check("\\Aa b\\z", 1, "A ", 0);
	check("aab", 1, "aaab", 1);               /* overlap with a false start */
	check("ab", 1, "xxa", 0);                 /* a candidate at the very end */
	check("abc", 1, "ab", 0);                 /* longer than the value */
	check("a", 1, "", 0);
	check("_x_", 0, "a_x_b", 1);
	check("\\xc3\\xa9", 1, "caf\xc3\xa9", 1);    /* bytes >= 0x80: never folded */
	check("\\xc3\\xa9", 1, "caf\xc3\x89", 0);
	check("\\x5c", 1, "a\\b", 1);
	check("\\x41B", 0, "xAB", 1);               /* upper-case hex digits */
	check("\\x41B", 0, "xaB", 0);
	check("\\x7b", 1, "{", 1);
}

static void test_not_plain(void **state)
{
	static const char *const res[] = {
		"a.*b", "a.b", "\\d+", "\\x{41}", "\\x4", "\\x", "\\A\\z", "a|b",
		"(a)", "[ab]", "a?", "\\Aa$", "a\\\\z", "\\z", "",
	};
	int is_lit;

	(void)state;
	for (size_t i = 0; i < sizeof(res) / sizeof(res[0]); i++) {
		lit_says(res[i], 1, "a", 1, &is_lit);
		if (is_lit)
			fail_msg("%s taken as a plain string", res[i]);
	}
}

/* glibc's rand() with a fixed seed: the same cases on every run. */
static uint32_t rnd(uint32_t n)
{
	return (uint32_t)rand() % n;
}

/* The escaping sigma_value.c's to_regex writes. */
static void escape(const char *s, size_t n, int start, int end, char *out)
{
	size_t k = 0;

	if (start)
		k += (size_t)sprintf(out + k, "\\A");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z') || c == '_' || c == ' ')
			out[k++] = (char)c;
		else
			k += (size_t)sprintf(out + k, "\\x%02x", c);
	}
	if (end)
		k += (size_t)sprintf(out + k, "\\z");
	out[k] = '\0';
}

static void test_random(void **state)
{
	static const char alpha[] = { 'a', 'A', 'b', 'B', ' ', '.', '\\', (char)0xc3, (char)0xa9, 0 };
	char pat[8], val[24], re[64];

	(void)state;
	srand(20261126);
	for (int it = 0; it < 20000; it++) {
		size_t pn = 1 + rnd(4), vn = rnd(20);
		int start = rnd(3) == 0, end = rnd(3) == 0, cl = (int)rnd(2), is_lit, got, want;

		for (size_t i = 0; i < pn; i++)
			pat[i] = alpha[rnd(sizeof(alpha))];
		for (size_t i = 0; i < vn; i++)
			val[i] = alpha[rnd(sizeof(alpha))];
		/* Often plant the pattern, changing the case of a letter. */
		if (vn >= pn && rnd(2)) {
			size_t at = rnd((uint32_t)(vn - pn + 1));

			memcpy(val + at, pat, pn);
			if (val[at] == 'a')
				val[at] = 'A';
		}
		escape(pat, pn, start, end, re);
		got = lit_says(re, cl, val, vn, &is_lit);
		want = pcre_says(re, cl, val, vn);
		assert_true(is_lit);
		if (got != want)
			fail_msg("iteration %d: %s on %zu bytes (caseless %d): PCRE2 %d, plain %d",
				 it, re, vn, cl, want, got);
	}
}

/* ---- gates ---- */

static void gate_is(const char *re, const char *want)
{
	char g[256];
	size_t n = sigma_re_gate(re, g, sizeof(g));

	if (n != strlen(want) || memcmp(g, want, n) != 0)
		fail_msg("%s: gate \"%.*s\", want \"%s\"", re, (int)n, g, want);
}

static void test_gate_fixed(void **state)
{
	(void)state;
	/* What sigma_value.c writes for wildcards and anchors. */
	gate_is("cmd\\x2eexe \\x2fC .* \\x3e \\x5c\\x5c.*\\x5c.* 2\\x3e\\x261", "cmd.exe /C ");
	gate_is("\\Acmd\\x2eexe\\z", "cmd.exe");
	gate_is(" \\x2de.* SQBFAFgA", " SQBFAFgA");
	gate_is("ms\\x2dappinstaller\\x3a\\x2f\\x2f.source\\x3d", "ms-appinstaller://");
	/* |re: classes, groups, escapes, quantifiers. */
	gate_is("\\s['\"]?C:\\\\Windows\\\\(?:System32|SysWOW64)", "C:\\Windows\\");
	gate_is("(?i)echo.*clip.*&&", "echo");   /* the first of the longest */
	gate_is("net\\s+user\\s+", "user");
	gate_is("abc?de", "ab");             /* c may be absent: "ab", "de" */
	gate_is("abcd?efgh", "efgh");
	gate_is("xab+cdef", "cdef");         /* b repeated: "xab", then "cdef" */
	gate_is("abc{2}defg", "defg");
	gate_is("abcd{0,3}xy", "abc");
	gate_is("abc{,3}", "");              /* PCRE2 reads {,3} as bytes: no gate */
	gate_is("abcd+?e", "abcd");
	gate_is("[a-z]{3}\\.exe", ".exe");
	gate_is("a[]x]bcd", "bcd");          /* ] first in a class */
	gate_is("a[[:alpha:]]bcde", "bcde");
	gate_is("(abc|def)ghij", "ghij");
	gate_is("([[:alpha:])x]|wxyz)abcd", "abcd");   /* ) in a group's class */
	gate_is("(*UTF)abcd", "");
	gate_is("(a(b)c)d", "d");
	gate_is("\\x41\\x42C", "ABC");
	gate_is("a\\.b\\\\c", "a.b\\c");
	/* No gate: alternation at the top, what the reading gives up on. */
	gate_is("abcd|efgh", "");
	gate_is("(?x)abcd", "");
	gate_is("(?#c)abcd", "");
	gate_is("(abc)\\1defg", "");
	gate_is("\\Qabcd\\E", "");
	gate_is("\\p{L}abcd", "");
	gate_is("abcd\\x{41}", "");
	gate_is("abcd(efg", "");
	gate_is("abcd)", "");
	gate_is("*abcd", "");
	gate_is("abcd[ef", "");
	gate_is("abcd\\", "");
	gate_is("", "");
}

/* Random expressions over a few bytes, classes, groups and quantifiers:
 * wherever PCRE2 finds a match, the gate is in the value (caselessly). */
static void test_gate_random(void **state)
{
	static const char *const atoms[] = {
		"a", "b", "A", "\\.", "\\x41", ".", "[ab]", "[^a]", "\\s", "\\d",
		"(a|b)", "(?:ab)", "\\b", "^", "$", " ", "c", "(?i)",
	};
	static const char *const quants[] = { "", "", "", "*", "+", "?", "{2}", "{0,2}", "{1,3}", "+?" };
	static const char alpha[] = { 'a', 'A', 'b', 'B', 'c', ' ', '.', '1' };
	char re[256], val[32], g[64];
	int ec, checked = 0;
	PCRE2_SIZE eo;

	(void)state;
	srand(20261127);
	for (int it = 0; it < 30000; it++) {
		size_t k = 0, vn = rnd(24), gn;
		pcre2_code *pc;
		pcre2_match_data *md;
		int cl = (int)rnd(2), hit;

		for (uint32_t na = 1 + rnd(8); na > 0; na--) {
			const char *a = atoms[rnd(sizeof(atoms) / sizeof(atoms[0]))];
			const char *q = quants[rnd(sizeof(quants) / sizeof(quants[0]))];

			if (a[0] == '^' || a[0] == '$' || a[0] == '(' || (a[0] == '\\' && a[1] == 'b'))
				q = "";
			k += (size_t)snprintf(re + k, sizeof(re) - k, "%s%s", a, q);
		}
		if (rnd(8) == 0)
			k += (size_t)snprintf(re + k, sizeof(re) - k, "|ab");
		gn = sigma_re_gate(re, g, sizeof(g));
		pc = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, cl ? PCRE2_CASELESS : 0,
				   &ec, &eo, NULL);
		if (!pc)
			continue;
		md = pcre2_match_data_create_from_pattern(pc, NULL);
		for (int t = 0; t < 8; t++) {
			for (size_t i = 0; i < vn; i++)
				val[i] = alpha[rnd(sizeof(alpha))];
			/* Often plant the gate, so that it is not always absent. */
			if (gn && gn <= vn && rnd(2))
				memcpy(val + rnd((uint32_t)(vn - gn + 1)), g, gn);
			hit = pcre2_match(pc, (PCRE2_SPTR)val, vn, 0, 0, md, NULL) >= 0;
			if (hit && gn) {
				int found = 0;

				for (size_t at = 0; !found && at + gn <= vn; at++)
					found = strncasecmp(val + at, g, gn) == 0;
				if (!found)
					fail_msg("iteration %d: %s matches \"%.*s\" without its gate \"%.*s\"",
						 it, re, (int)vn, val, (int)gn, g);
				checked++;
			}
		}
		pcre2_match_data_free(md);
		pcre2_code_free(pc);
	}
	/* The test saw gated expressions match, not only misses. */
	assert_true(checked > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_not_plain),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_gate_fixed),
		cmocka_unit_test(test_gate_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
