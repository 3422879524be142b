/*
 * The plain-string tests of Sigma predicates (sigma_lit.c) against PCRE2,
 * the engine they stand in for: fixed cases for each anchor and case
 * mode, expressions that are not plain strings, and a randomised
 * comparison over a small alphabet (so that matches, near misses and
 * overlaps are frequent).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_not_plain),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
