/*
 * Unit tests for the Sigma condition compiler: normalised form of real
 * condition shapes, truth tables, errors and hard bounds, and a sweep over
 * every single-line `condition:` of the SigmaHQ rules in the conformance
 * folder (the YAML scraping here is test-only, not product code).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/err.h"
#include "detect/sigma_cond.h"

#define MAX_T_NAMES 8

struct desc_case {
	const char *cond;
	const char *names[MAX_T_NAMES];
	const char *want;
};

static size_t count_names(const char *const *names)
{
	size_t n = 0;

	while (n < MAX_T_NAMES && names[n])
		n++;
	return n;
}

static const struct desc_case desc_cases[] = {
	{ "selection", { "selection" }, "selection" },
	{ "selection and not filter", { "selection", "filter" },
	  "(selection and (not filter))" },
	{ "a or b and c", { "a", "b", "c" }, "(a or (b and c))" },
	{ "a AND b Or NOT c", { "a", "b", "c" }, "((a and b) or (not c))" },
	{ "a and b and c", { "a", "b", "c" }, "(a and b and c)" },
	{ "(a or b) and not (c or d)", { "a", "b", "c", "d" },
	  "((a or b) and (not (c or d)))" },
	{ "not not a", { "a" }, "(not (not a))" },
	{ "((a))", { "a" }, "a" },
	{ "1 of selection_* and not 1 of filter_*",
	  { "selection_a", "selection_b", "filter_x", "other" },
	  "((1 of selection_*: selection_a, selection_b) and "
	  "(not (1 of filter_*: filter_x)))" },
	{ "any of sel*", { "sel", "sel_x", "x" }, "(1 of sel*: sel, sel_x)" },
	{ "all of them", { "a", "_hidden", "b" }, "(all of them: a, b)" },
	{ "1 of them", { "a", "b" }, "(1 of them: a, b)" },
	{ "ALL OF *_x", { "a_x", "b_x", "c" }, "(all of *_x: a_x, b_x)" },
	{ "  selection\tand\nnot filter  ", { "selection", "filter" },
	  "(selection and (not filter))" },
	{ "all", { "all" }, "all" },
};

static void test_describe(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(desc_cases) / sizeof(desc_cases[0]); i++) {
		const struct desc_case *tc = &desc_cases[i];
		struct sigma_cond *c = NULL;
		struct buf err, out;
		int rc;

		buf_init(&err, 4096);
		buf_init(&out, 4096);
		rc = sigma_cond_parse(tc->cond, strlen(tc->cond), tc->names,
				      count_names(tc->names), &c, &err);
		buf_cstr(&err);
		if (rc != 0)
			fail_msg("case %zu '%s': rc %d: %s", i, tc->cond, rc,
				 err.p ? err.p : "");
		assert_int_equal(sigma_cond_describe(c, &out), 0);
		buf_cstr(&out);
		if (strcmp(out.p, tc->want) != 0)
			fail_msg("case %zu '%s': got '%s' want '%s'", i, tc->cond,
				 out.p, tc->want);
		sigma_cond_free(c);
		buf_fini(&err);
		buf_fini(&out);
	}
}

/* Truth table: bit i of the row index is matched[i]; want[row] is '0'/'1'. */
struct truth_case {
	const char *cond;
	const char *names[MAX_T_NAMES];
	const char *want;
};

static const struct truth_case truth_cases[] = {
	{ "selection and not filter", { "selection", "filter" }, "0100" },
	/* names: selection_a selection_b filter_a filter_b */
	{ "1 of selection_* and not 1 of filter_*",
	  { "selection_a", "selection_b", "filter_a", "filter_b" },
	  "0111" "0000" "0000" "0000" },
	{ "all of them", { "a", "b", "_c" }, "00010001" },
	{ "all of selection_*", { "selection_a", "selection_b" }, "0001" },
	{ "(a or b) and not (c or d)", { "a", "b", "c", "d" },
	  "0111" "0000" "0000" "0000" },
	{ "not not a", { "a" }, "01" },
	{ "a or b and c", { "a", "b", "c" }, "01010111" },
	{ "not a or b", { "a", "b" }, "1011" },
};

static void test_truth(void **state)
{
	size_t i, row, k;

	(void)state;
	for (i = 0; i < sizeof(truth_cases) / sizeof(truth_cases[0]); i++) {
		const struct truth_case *tc = &truth_cases[i];
		size_t n = count_names(tc->names);
		struct sigma_cond *c = NULL;

		assert_int_equal(sigma_cond_parse(tc->cond, strlen(tc->cond),
						  tc->names, n, &c, NULL), 0);
		assert_int_equal(strlen(tc->want), (size_t)1 << n);
		for (row = 0; row < ((size_t)1 << n); row++) {
			uint8_t m[MAX_T_NAMES] = { 0 };
			int got;

			for (k = 0; k < n; k++)
				m[k] = (uint8_t)((row >> k) & 1);
			got = sigma_cond_eval(c, m);
			if (got != tc->want[row] - '0')
				fail_msg("'%s' row %zu: got %d want %c", tc->cond,
					 row, got, tc->want[row]);
		}
		sigma_cond_free(c);
	}
}

/* Kleene evaluation: every answer it gives (0 or 1) holds for every
 * completion of the unknowns, over all 3^n inputs of the truth cases; and
 * it decides what rule_eval relies on. */
static void test_three_valued(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(truth_cases) / sizeof(truth_cases[0]); i++) {
		const struct truth_case *tc = &truth_cases[i];
		size_t n = count_names(tc->names), n3 = 1;
		struct sigma_cond *c = NULL;

		assert_int_equal(sigma_cond_parse(tc->cond, strlen(tc->cond),
						  tc->names, n, &c, NULL), 0);
		for (size_t k = 0; k < n; k++)
			n3 *= 3;
		for (size_t row = 0; row < n3; row++) {
			uint8_t v[MAX_T_NAMES] = { 0 };
			size_t x = row;
			int got;

			for (size_t k = 0; k < n; k++, x /= 3)
				v[k] = (uint8_t)(x % 3);
			got = sigma_cond_eval3(c, v);
			assert_true(got >= 0 && got <= 2);
			if (got == 2)
				continue;
			for (size_t bits = 0; bits < ((size_t)1 << n); bits++) {
				uint8_t m[MAX_T_NAMES];
				int ok = 1;

				for (size_t k = 0; k < n; k++) {
					m[k] = (uint8_t)((bits >> k) & 1);
					if (v[k] != 2 && v[k] != m[k])
						ok = 0;
				}
				if (ok && sigma_cond_eval(c, m) != got)
					fail_msg("'%s' input %zu: three-valued %d, a completion differs",
						 tc->cond, row, got);
			}
		}
		sigma_cond_free(c);
	}
	{
		static const char *const names[] = { "known", "filter_a", "filter_b", "sel" };
		struct sigma_cond *c = NULL;
		uint8_t v[4] = { 1, 2, 2, 2 };

		assert_int_equal(sigma_cond_parse("not known and not 1 of filter_* and sel",
						  39, names, 4, &c, NULL), 0);
		assert_int_equal(sigma_cond_eval3(c, v), 0);   /* known vetoes the rule */
		v[0] = 0;
		assert_int_equal(sigma_cond_eval3(c, v), 2);   /* the filters still decide */
		sigma_cond_free(c);
		assert_int_equal(sigma_cond_parse("sel or not sel", 14, names, 4, &c, NULL), 0);
		assert_int_equal(sigma_cond_eval3(c, v), 2);   /* sound, not complete */
		sigma_cond_free(c);
	}
}

struct err_case {
	const char *cond;
	int rc;
	const char *msg; /* substring of the error */
};

static const struct err_case err_cases[] = {
	{ "selection and nope", M_ENOTFOUND, "column 15: unknown identifier 'nope'" },
	{ "1 of filter_*", M_EPARSE, "pattern matches no identifier 'filter_*'" },
	{ "(selection", M_EPARSE, "unbalanced '('" },
	{ "selection)", M_EPARSE, "unbalanced ')'" },
	{ "selection and", M_EPARSE, "expression expected" },
	{ "selection or not", M_EPARSE, "expression expected" },
	{ "not", M_EPARSE, "expression expected" },
	{ "", M_EPARSE, "empty condition" },
	{ "   ", M_EPARSE, "empty condition" },
	{ "selection filter", M_EPARSE, "unexpected token 'filter'" },
	{ "selection | count() by x > 5", M_EUNSUPP,
	  "unsupported: aggregation in condition (use a correlation rule)" },
	{ "selection | near filter", M_EUNSUPP, "unsupported: aggregation" },
	{ "1 of", M_EPARSE, "expected a pattern" },
	{ "all of (selection)", M_EPARSE, "expected a pattern" },
	{ "selection and $x", M_EPARSE, "unexpected character '$'" },
	{ "()", M_EPARSE, "unexpected ')'" },
	{ "2 of selection*", M_EUNSUPP, "unsupported quantifier" },
	{ "not (selection or filter", M_EPARSE, "column 5: unbalanced '('" },
	{ "selection and (filter or)", M_EPARSE, "column 25: unexpected ')'" },
	{ "and selection", M_EPARSE, "expression expected, got 'and'" },
};

static void test_errors(void **state)
{
	const char *names[] = { "selection", "filter", "_x" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *tc = &err_cases[i];
		struct sigma_cond *c = (struct sigma_cond *)1;
		struct buf err;
		int rc;

		buf_init(&err, 4096);
		rc = sigma_cond_parse(tc->cond, strlen(tc->cond), names, 3, &c, &err);
		buf_cstr(&err);
		if (rc != tc->rc || !err.p || !strstr(err.p, tc->msg))
			fail_msg("'%s': rc %d (want %d), err '%s' (want '%s')",
				 tc->cond, rc, tc->rc, err.p ? err.p : "", tc->msg);
		assert_null(c);
		buf_fini(&err);
	}
}

static void test_them_only_hidden(void **state)
{
	const char *names[] = { "_a", "_b" };
	struct sigma_cond *c = NULL;

	(void)state;
	assert_int_equal(sigma_cond_parse("1 of them", 9, names, 2, &c, NULL), M_EPARSE);
	assert_int_equal(sigma_cond_parse("1 of _*", 7, names, 2, &c, NULL), 0);
	sigma_cond_free(c);
	sigma_cond_free(NULL);
}

static void test_bounds(void **state)
{
	const char *names[] = { "a", "b" };
	struct sigma_cond *c = NULL;
	struct buf err;
	char *s;
	size_t i, n = 0;
	int rc;

	(void)state;
	buf_init(&err, 4096);

	/* 10,000 nested parentheses: text too long */
	s = malloc(20002);
	assert_non_null(s);
	for (i = 0; i < 10000; i++)
		s[n++] = '(';
	s[n++] = 'a';
	for (i = 0; i < 10000; i++)
		s[n++] = ')';
	rc = sigma_cond_parse(s, n, names, 2, &c, &err);
	assert_int_equal(rc, M_ELIMIT);
	assert_null(c);

	/* 1,000 nested parentheses fit in 4096 bytes: depth error */
	n = 0;
	for (i = 0; i < 1000; i++)
		s[n++] = '(';
	s[n++] = 'a';
	for (i = 0; i < 1000; i++)
		s[n++] = ')';
	buf_reset(&err);
	rc = sigma_cond_parse(s, n, names, 2, &c, &err);
	buf_cstr(&err);
	assert_int_equal(rc, M_ELIMIT);
	assert_non_null(strstr(err.p, "nesting deeper than 64"));

	/* 64 levels are fine, 65 are not */
	n = 0;
	for (i = 0; i < 64; i++)
		s[n++] = '(';
	s[n++] = 'a';
	for (i = 0; i < 64; i++)
		s[n++] = ')';
	assert_int_equal(sigma_cond_parse(s, n, names, 2, &c, NULL), 0);
	sigma_cond_free(c);
	c = NULL;

	/* 2,000 `not`s */
	n = 0;
	for (i = 0; i < 1000; i++) {
		memcpy(s + n, "not ", 4);
		n += 4;
	}
	s[n++] = 'a';
	assert_int_equal(sigma_cond_parse(s, n, names, 2, &c, NULL), M_ELIMIT);

	/* 700 terms fit in 4096 bytes but exceed 512 nodes */
	n = 0;
	for (i = 0; i < 700; i++) {
		memcpy(s + n, i ? " or a" : "a", i ? 5 : 1);
		n += i ? 5 : 1;
	}
	buf_reset(&err);
	rc = sigma_cond_parse(s, n, names, 2, &c, &err);
	buf_cstr(&err);
	assert_int_equal(rc, M_ELIMIT);
	assert_non_null(strstr(err.p, "more than 512 nodes"));
	assert_null(c);
	free(s);

	/* 5,000-term chain: rejected by the text bound before the node bound */
	s = malloc(5000 * 5);
	assert_non_null(s);
	n = 0;
	for (i = 0; i < 5000; i++) {
		memcpy(s + n, i ? " or a" : "a", i ? 5 : 1);
		n += i ? 5 : 1;
	}
	assert_int_equal(sigma_cond_parse(s, n, names, 2, &c, NULL), M_ELIMIT);
	free(s);

	/* too many names */
	{
		static const char *many[300];
		for (i = 0; i < 300; i++)
			many[i] = "x";
		assert_int_equal(sigma_cond_parse("x", 1, many, 300, &c, NULL), M_ELIMIT);
		assert_int_equal(sigma_cond_parse("x", 1, many, 256, &c, NULL), 0);
		sigma_cond_free(c);
		c = NULL;
	}
	assert_int_equal(sigma_cond_parse("a", 1, names, 2, NULL, NULL), M_EINVAL);
	buf_fini(&err);
}

/* ---- SigmaHQ sweep (test-only YAML scraping) ---- */

struct sweep {
	int files, parsed, list_form, aggregations, failures, no_cond;
};

static size_t indent_of(const char *l)
{
	size_t i = 0;

	while (l[i] == ' ')
		i++;
	return i;
}

/* Trims a value: trailing spaces/CR, a ` #` comment, surrounding quotes. */
static void trim_value(char *v)
{
	size_t n;
	char *h = strstr(v, " #");

	if (h)
		*h = '\0';
	n = strlen(v);
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\r' || v[n - 1] == '\n'))
		v[--n] = '\0';
	if (n >= 2 && (v[0] == '\'' || v[0] == '"') && v[n - 1] == v[0]) {
		memmove(v, v + 1, n - 2);
		v[n - 2] = '\0';
	}
}

static void sweep_file(const char *path, struct sweep *sw)
{
	FILE *f = fopen(path, "r");
	char line[8192], cond[8192];
	char *names[SIGMA_COND_MAX_NAMES];
	size_t n_names = 0, det_ind = 0, key_ind = 0, i;
	int in_det = 0, have_cond = 0, list_form = 0, lines = 0;

	if (!f)
		fail_msg("cannot open %s", path);
	sw->files++;
	cond[0] = '\0';
	while (lines++ < 100000 && fgets(line, sizeof(line), f)) {
		size_t ind = indent_of(line);
		char *p = line + ind;

		if (*p == '\n' || *p == '\r' || *p == '\0' || *p == '#')
			continue;
		if (!in_det) {
			if (strncmp(p, "detection:", 10) == 0) {
				in_det = 1;
				det_ind = ind;
				key_ind = 0;
			}
			continue;
		}
		if (ind <= det_ind) {
			in_det = 0;
			continue;
		}
		if (!key_ind)
			key_ind = ind;
		if (ind != key_ind)
			continue;
		{
			char *colon = strchr(p, ':');
			size_t kl;

			if (!colon || *p == '-')
				continue;
			kl = (size_t)(colon - p);
			if (kl == 9 && strncmp(p, "condition", 9) == 0) {
				char *v = colon + 1;
				while (*v == ' ')
					v++;
				trim_value(v);
				if (*v == '\0' || *v == '|' || *v == '>')
					list_form = 1;
				else {
					snprintf(cond, sizeof(cond), "%s", v);
					have_cond = 1;
				}
				continue;
			}
			if (kl == 9 && strncmp(p, "timeframe", 9) == 0)
				continue;
			if (n_names < SIGMA_COND_MAX_NAMES) {
				names[n_names] = malloc(kl + 1);
				assert_non_null(names[n_names]);
				memcpy(names[n_names], p, kl);
				names[n_names][kl] = '\0';
				trim_value(names[n_names]);
				n_names++;
			}
		}
	}
	fclose(f);
	if (list_form) {
		sw->list_form++;
	} else if (have_cond) {
		struct sigma_cond *c = NULL;
		struct buf err;
		int rc;

		buf_init(&err, 4096);
		rc = sigma_cond_parse(cond, strlen(cond), (const char *const *)names,
				      n_names, &c, &err);
		buf_cstr(&err);
		if (rc == 0) {
			sw->parsed++;
		} else if (strchr(cond, '|') && rc == M_EUNSUPP &&
			   strstr(err.p, "unsupported: aggregation in condition")) {
			sw->aggregations++;
		} else {
			sw->failures++;
			print_message("FAIL %s: '%s': %s\n", path, cond,
				      err.p ? err.p : err_str(rc));
		}
		sigma_cond_free(c);
		buf_fini(&err);
	} else {
		sw->no_cond++;
	}
	for (i = 0; i < n_names; i++)
		free(names[i]);
}

static void sweep_dir(const char *dir, struct sweep *sw, int depth)
{
	DIR *d;
	struct dirent *e;
	char path[4096];
	struct stat st;

	if (depth > 16)
		return;
	d = opendir(dir);
	if (!d)
		fail_msg("cannot open %s", dir);
	while ((e = readdir(d)) != NULL) {
		size_t nl = strlen(e->d_name);

		if (e->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			continue;
		if (stat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			sweep_dir(path, sw, depth + 1);
		else if ((nl > 4 && strcmp(e->d_name + nl - 4, ".yml") == 0) ||
			 (nl > 5 && strcmp(e->d_name + nl - 5, ".yaml") == 0))
			sweep_file(path, sw);
	}
	closedir(d);
}

static void test_sigmahq_conditions(void **state)
{
	const char *conf = getenv("MAMORI_CONFORMANCE_DIR");
	const char *src = getenv("MAMORI_SOURCE_DIR");
	struct sweep sw = { 0 };
	char dir[4096];
	struct stat st;

	(void)state;
	if (conf && conf[0])
		snprintf(dir, sizeof(dir), "%s/sigma/rules", conf);
	else
		snprintf(dir, sizeof(dir), "%s/../shared/sigma/rules", src ? src : ".");
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		fail_msg("conformance data not found at %s: set MAMORI_CONFORMANCE_DIR "
			 "to the folder holding sigma/rules (or MAMORI_SOURCE_DIR)", dir);
	sweep_dir(dir, &sw, 0);
	print_message("sigma conditions: %d files, %d parsed, %d list-form skipped, "
		      "%d aggregations rejected, %d without condition, %d failed\n",
		      sw.files, sw.parsed, sw.list_form, sw.aggregations, sw.no_cond,
		      sw.failures);
	assert_int_equal(sw.failures, 0);
	assert_true(sw.parsed > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_truth),
		cmocka_unit_test(test_three_valued),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_them_only_hidden),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_sigmahq_conditions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
