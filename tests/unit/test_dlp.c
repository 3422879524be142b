/*
 * Unit tests for the DLP scanner: card numbers (Luhn, issuer prefixes,
 * groupings, full-width digits, numbers inside larger ones), My Number
 * check digits, keywords, custom patterns, masking (never the whole
 * number), bad configurations. Table-driven: text, counts per kind, the
 * first masked sample.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hs_child.h"
#include "mail/dlp.h"

#define N(x) (sizeof(x) / sizeof((x)[0]))

#define FW4 "\xef\xbc\x94"   /* full-width 4 */
#define FW1 "\xef\xbc\x91"
#define FW2 "\xef\xbc\x92"
#define FW3 "\xef\xbc\x93"
#define FW5 "\xef\xbc\x95"
#define FW6 "\xef\xbc\x96"
#define FW7 "\xef\xbc\x97"
#define FW8 "\xef\xbc\x98"
#define FW9 "\xef\xbc\x99"
#define FW0 "\xef\xbc\x90"
#define IDSP "\xe3\x80\x80"  /* ideographic space */

static const struct dlp_pattern patterns[] = {
	{ "employee_id", "EMP-[0-9]{6}" },
	{ "aws_key", "AKIA[0-9A-Z]{16}" },
	{ "empty", "\\b" },   /* only empty matches: never counted */
};

struct tcase {
	const char *in;
	size_t cards, mynum, kw, pat;
	const char *card_sample;   /* first sample, NULL: not checked */
	const char *mn_sample;
	const char *pat_sample;
};

static const struct tcase cases[] = {
	/* Cards that must be found. */
	{ "card 4111111111111111 ok", 1, 0, 0, 0, "************1111", NULL,
	  NULL },
	{ "4111 1111 1111 1111", 1, 0, 0, 0, "**** **** **** 1111", NULL,
	  NULL },
	{ "No.4111-1111-1111-1111.", 1, 0, 0, 0, "****-****-****-1111", NULL,
	  NULL },
	{ "Amex 3782 822463 10005", 1, 0, 0, 0, "**** ****** *0005", NULL,
	  NULL },
	{ FW4 FW1 FW1 FW1 IDSP FW1 FW1 FW1 FW1 IDSP FW1 FW1 FW1 FW1 IDSP FW1
	  FW1 FW1 FW1, 1, 0, 0, 0, "**** **** **** 1111", NULL, NULL },
	{ "5555555555554444 3530111333300000 30569309025904 "
	  "6011111111111117 6200000000000005 4012888888881881", 6, 0, 0, 0,
	  "************4444", NULL, NULL },
	{ "4111 1111 1111 1111 5555 5555 5555 4444", 2, 0, 0, 0, NULL, NULL,
	  NULL },
	{ "4111 1111 1111 1111 2025", 1, 0, 0, 0, NULL, NULL, NULL },
	{ "\xe3\x82\xab\xe3\x83\xbc\xe3\x83\x89\xe7\x95\xaa\xe5\x8f\xb7"
	  "4111111111111111\xe3\x81\xa7\xe3\x81\x99", 1, 0, 0, 0, NULL, NULL,
	  NULL },
	/* ... and numbers that must not be. */
	{ "4111111111111112", 0, 0, 0, 0, NULL, NULL, NULL },   /* Luhn */
	{ "9111111111111110 1111111111111117", 0, 0, 0, 0, NULL, NULL,
	  NULL },                                             /* prefix */
	{ "41111111111111110000", 0, 0, 0, 0, NULL, NULL, NULL },  /* 20 */
	{ "pi 0.4111111111111111 and 4111111111111111.50", 0, 0, 0, 0, NULL,
	  NULL, NULL },
	{ "4111 1111-1111 1111", 0, 0, 0, 0, NULL, NULL, NULL },
	{ "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", 0, 0, 0, 0, NULL, NULL, NULL },
	{ "4111  1111  1111  1111", 0, 0, 0, 0, NULL, NULL, NULL },
	{ "tel 03-1234-5678, order 2024-0001-0002", 0, 0, 0, 0, NULL, NULL,
	  NULL },

	/* My Number. */
	{ "123456789018", 0, 1, 0, 0, NULL, "********9018", NULL },
	{ "\xe3\x83\x9e\xe3\x82\xa4\xe3\x83\x8a\xe3\x83\xb3\xe3\x83\x90"
	  "\xe3\x83\xbc: 1234 5678 9018", 0, 1, 0, 0, NULL, "**** **** 9018",
	  NULL },
	{ "1234-5678-9018 987654321093", 0, 2, 0, 0, NULL, "****-****-9018",
	  NULL },
	{ FW1 FW2 FW3 FW4 FW5 FW6 FW7 FW8 FW9 FW0 FW1 FW8, 0, 1, 0, 0, NULL,
	  "********9018", NULL },
	{ "123456789019", 0, 0, 0, 0, NULL, NULL, NULL },     /* check */
	{ "9123456789018 1234567890180", 0, 0, 0, 0, NULL, NULL, NULL },
	{ "000000000000", 0, 0, 0, 0, NULL, NULL, NULL },
	{ "123 456 789 018", 0, 0, 0, 0, NULL, NULL, NULL },
	{ "1234 5678-9018", 0, 0, 0, 0, NULL, NULL, NULL },

	/* Keywords (defaults) and custom patterns. */
	{ "This is CONFIDENTIAL.", 0, 0, 1, 0, NULL, NULL, NULL },
	{ "confidentiality agreement", 0, 0, 0, 0, NULL, NULL, NULL },
	{ "STRICTLY\r\n  Confidential", 0, 0, 2, 0, NULL, NULL, NULL },
	{ "\xe3\x80\x90\xe7\xa4\xbe\xe5\xa4\x96\xe7\xa7\x98\xe3\x80\x91"
	  "\xe8\xb3\x87\xe6\x96\x99 \xe6\xa5\xb5\xe7\xa7\x98", 0, 0, 2, 0, NULL,
	  NULL, NULL },
	{ "\xe3\x83\x9e\xe3\x83\xab\xe7\xa7\x98", 0, 0, 0, 0, NULL, NULL,
	  NULL },
	{ "Project Falcon plans", 0, 0, 1, 0, NULL, NULL, NULL },
	{ "id EMP-123456 xxx", 0, 0, 0, 1, NULL, NULL, "***-******" },
	{ "key AKIAIOSFODNN7EXAMPLE", 0, 0, 0, 1, NULL, NULL,
	  "****************MPLE" },

	/* Hostile: invalid UTF-8, cut full-width digits, empty. */
	{ "\xff\xfe\xef\xbc 4111111111111111\xef\xbc", 1, 0, 0, 0, NULL, NULL,
	  NULL },
	{ "", 0, 0, 0, 0, NULL, NULL, NULL },
};

static size_t count_of(const struct dlp_result *r, enum dlp_kind k,
		       const char **sample)
{
	size_t n = 0;

	*sample = NULL;
	for (size_t i = 0; i < r->n; i++)
		if (r->item[i].kind == k) {
			n += r->item[i].count;
			if (!*sample && r->item[i].n_samples)
				*sample = r->item[i].sample[0];
		}
	return n;
}

static void check_sample(size_t i, const char *got, const char *want)
{
	if (want && (!got || strcmp(got, want)))
		fail_msg("case %zu: sample '%s', want '%s'", i,
			 got ? got : "(none)", want);
}

static void test_cases(void **state)
{
	static const char *const kw[] = { "project  falcon" };
	struct dlp_conf c;
	struct dlp *d;
	char err[160];

	(void)state;
	memset(&c, 0, sizeof(c));
	c.keywords = kw;
	c.n_keywords = N(kw);
	c.patterns = patterns;
	c.n_patterns = N(patterns);
	d = dlp_new(&c, err, sizeof(err));
	if (!d)
		fail_msg("dlp_new: %s", err);
	for (size_t i = 0; i < N(cases); i++) {
		const struct tcase *tc = &cases[i];
		struct dlp_result r;
		const char *cs, *ms, *ks, *ps;
		size_t cards, mn, k, p;

		assert_int_equal(dlp_scan(d, tc->in, strlen(tc->in), &r), 0);
		cards = count_of(&r, DLP_CARD, &cs);
		mn = count_of(&r, DLP_MYNUMBER, &ms);
		k = count_of(&r, DLP_KEYWORD, &ks);
		p = count_of(&r, DLP_PATTERN, &ps);
		if (cards != tc->cards || mn != tc->mynum || k != tc->kw ||
		    p != tc->pat)
			fail_msg("case %zu (%s): %zu %zu %zu %zu, want %zu %zu "
				 "%zu %zu",
				 i, tc->in, cards, mn, k, p, tc->cards,
				 tc->mynum, tc->kw, tc->pat);
		assert_int_equal(r.total, cards + mn + k + p);
		check_sample(i, cs, tc->card_sample);
		check_sample(i, ms, tc->mn_sample);
		check_sample(i, ps, tc->pat_sample);
		dlp_result_fini(&r);
	}
	dlp_free(d);
}

/* Samples never hold a whole number, however many are found. */
static void test_samples_bounded(void **state)
{
	struct dlp_conf c;
	struct dlp *d;
	struct dlp_result r;
	char buf[20 * 40];
	size_t o = 0;

	(void)state;
	memset(&c, 0, sizeof(c));
	d = dlp_new(&c, NULL, 0);
	assert_non_null(d);
	for (int i = 0; i < 20; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o,
				      "4111111111111111 ");
	assert_int_equal(dlp_scan(d, buf, o, &r), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.item[0].count, 20);
	assert_int_equal(r.item[0].n_samples, DLP_MAX_SAMPLES);
	for (size_t i = 0; i < r.item[0].n_samples; i++)
		assert_null(strstr(r.item[0].sample[i], "41111"));
	dlp_result_fini(&r);
	dlp_result_fini(&r);

	/* Checks can be switched off; defaults replaced. */
	c.no_cards = 1;
	c.no_default_keywords = 1;
	dlp_free(d);
	d = dlp_new(&c, NULL, 0);
	assert_non_null(d);
	assert_int_equal(dlp_scan(d, "4111111111111111 Confidential", 29, &r),
			 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(r.total, 0);
	dlp_result_fini(&r);
	dlp_free(d);
	dlp_free(NULL);
}

/* One scanner shared by threads, as the milter shares it: every thread
 * gets the counts a lone scan gets. */
static void *scan_many(void *arg)
{
	const struct dlp *d = arg;
	size_t bad = 0;

	for (int round = 0; round < 50; round++)
		for (size_t i = 0; i < N(cases); i++) {
			struct dlp_result r;

			if (dlp_scan(d, cases[i].in, strlen(cases[i].in), &r))
				bad++;
			else if (r.total != cases[i].cards + cases[i].mynum +
						    cases[i].kw + cases[i].pat)
				bad++;
			dlp_result_fini(&r);
		}
	return (void *)bad;
}

static void test_threads(void **state)
{
	static const char *const kw[] = { "project  falcon" };
	pthread_t th[4];
	struct dlp_conf c;
	struct dlp *d;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.keywords = kw;
	c.n_keywords = N(kw);
	c.patterns = patterns;
	c.n_patterns = N(patterns);
	d = dlp_new(&c, NULL, 0);
	assert_non_null(d);
	for (size_t i = 0; i < N(th); i++)
		assert_int_equal(pthread_create(&th[i], NULL, scan_many, d), 0);
	for (size_t i = 0; i < N(th); i++) {
		void *bad;

		assert_int_equal(pthread_join(th[i], &bad), 0);
		assert_null(bad);
	}
	dlp_free(d);
}

static void test_conf_errors(void **state)
{
	static const struct dlp_pattern bad_re[] = { { "x", "(" } };
	static const struct dlp_pattern no_name[] = { { "", "a" } };
	static const char *const empty_kw[] = { "  " };
	struct dlp_conf c;
	char err[160];

	(void)state;
	memset(&c, 0, sizeof(c));
	c.patterns = bad_re;
	c.n_patterns = 1;
	assert_null(dlp_new(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "pattern x"));
	c.patterns = no_name;
	assert_null(dlp_new(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "pattern #1"));
	memset(&c, 0, sizeof(c));
	c.keywords = empty_kw;
	c.n_keywords = 1;
	assert_null(dlp_new(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "keyword"));
	c.n_keywords = DLP_MAX_KEYWORDS + 1;
	assert_null(dlp_new(&c, err, sizeof(err)));
	assert_null(dlp_new(NULL, err, sizeof(err)));
}

int main(int argc, char **argv)
{
	hs_child_exec_self(argc > 1 ? argv[1] : NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_samples_bounded),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_conf_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
