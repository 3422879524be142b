/*
 * Unit tests for the BEC checker: impersonated display names (case, width,
 * order, scripts, confusables), lookalike domains that must and must not
 * match, Reply-To, first contact with finance, and bad configurations.
 * Table-driven: one message's addresses, the findings expected and the
 * total score.
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
#include "mail/bec.h"

#define N(x) (sizeof(x) / sizeof((x)[0]))

#define K(k) (1u << (k))
#define NAME K(BEC_DISPLAY_NAME)
#define LOOK K(BEC_LOOKALIKE)
#define RT K(BEC_REPLY_TO)
#define FIN K(BEC_FIRST_FINANCE)

static const char *const ours[] = { "example.com", "Example.CO.JP.",
				    "abc.jp" };
static const char *const trusted[] = { "exampel.com" };
static const char *const taro_addrs[] = { "Taro.Yamada@Gmail.com" };
static const struct bec_person people[] = {
	{ "Taro Yamada", taro_addrs, 1 },
	{ "\xe5\xb1\xb1\xe7\x94\xb0 \xe5\xa4\xaa\xe9\x83\x8e", NULL, 0 },
	{ "Hanako Sato", NULL, 0 },
};
static const char *const finance[] = { "ap@example.com",
				       "<keiri@example.co.jp>" };

static struct bec *make(void)
{
	struct bec_conf c;
	char err[128];
	struct bec *b;

	memset(&c, 0, sizeof(c));
	c.our_domains = ours;
	c.n_our_domains = N(ours);
	c.trusted_domains = trusted;
	c.n_trusted_domains = N(trusted);
	c.people = people;
	c.n_people = N(people);
	c.finance_addrs = finance;
	c.n_finance_addrs = N(finance);
	b = bec_new(&c, err, sizeof(err));
	if (!b)
		fail_msg("bec_new: %s", err);
	return b;
}

struct tcase {
	const char *name, *from, *reply_to, *return_path, *rcpt;
	unsigned char first;
	unsigned kinds;
	int score;
};

static const struct tcase cases[] = {
	/* Display names of protected people on outside addresses. */
	{ "Taro Yamada", "taro@evil.example", NULL, NULL, NULL, 0, NAME, 60 },
	{ "YAMADA Taro", "x@gmail.com", NULL, NULL, NULL, 0, NAME, 60 },
	{ "\xef\xbc\xb4\xef\xbd\x81\xef\xbd\x92\xef\xbd\x8f\xe3\x80\x80"
	  "\xef\xbc\xb9\xef\xbd\x81\xef\xbd\x8d\xef\xbd\x81\xef\xbd\x84"
	  "\xef\xbd\x81", "x@gmail.com", NULL, NULL, NULL, 0, NAME, 60 },
	{ "\xe5\xb1\xb1\xe7\x94\xb0\xe5\xa4\xaa\xe9\x83\x8e", "x@gmail.com",
	  NULL, NULL, NULL, 0, NAME, 60 },
	{ "\xe5\xa4\xaa\xe9\x83\x8e\xe3\x80\x80\xe5\xb1\xb1\xe7\x94\xb0",
	  "x@gmail.com", NULL, NULL, NULL, 0, NAME, 60 },
	{ "\xe5\xb1\xb1\xe7\x94\xb0\xe3\x80\x80\xe5\xa4\xaa\xe9\x83\x8e"
	  "\xef\xbc\x88\xe7\xa4\xbe\xe9\x95\xb7\xef\xbc\x89", "x@gmail.com",
	  NULL, NULL, NULL, 0, NAME, 60 },
	{ "Taro Yamada (CEO)", "x@gmail.com", NULL, NULL, NULL, 0, NAME, 60 },
	{ "\xd0\xa2\x61ro Yamada", "x@gmail.com", NULL, NULL, NULL, 0, NAME,
	  60 },
	{ "sato, hanako", "x@gmail.com", NULL, NULL, NULL, 0, NAME, 60 },
	{ "Ta\xc2\xad" "ro Yamada", "x@gmail.com", NULL, NULL, NULL, 0, NAME,
	  60 },
	{ "ceo@Example.com", "x@gmail.com", NULL, NULL, NULL, 0, NAME, 60 },
	{ "\"ceo@example.co.jp\" (via)", "x@gmail.com", NULL, NULL, NULL, 0,
	  NAME, 60 },
	/* ... and the cases that are not impersonation. */
	{ "ceo@example.com", "ceo@example.com", NULL, NULL, NULL, 0, 0, 0 },
	{ "someone@partner.example", "x@gmail.com", NULL, NULL, NULL, 0, 0,
	  0 },
	{ "@", "x@gmail.com", NULL, NULL, NULL, 0, 0, 0 },
	{ "Taro Yamada", "taro.yamada@example.com", NULL, NULL, NULL, 0, 0,
	  0 },
	{ "Taro Yamada", "<taro.yamada@gmail.com>", NULL, NULL, NULL, 0, 0,
	  0 },
	{ "Taro Tanaka", "x@gmail.com", NULL, NULL, NULL, 0, 0, 0 },
	{ "Yamada", "x@gmail.com", NULL, NULL, NULL, 0, 0, 0 },
	{ "\xe5\xb1\xb1\xe7\x94\xb0", "x@gmail.com", NULL, NULL, NULL, 0, 0,
	  0 },
	{ "", "x@gmail.com", NULL, NULL, NULL, 0, 0, 0 },

	/* Lookalikes of our domains. */
	{ NULL, "a@examp1e.com", NULL, NULL, NULL, 0, LOOK, 80 },
	{ NULL, "a@exarnple.com", NULL, NULL, NULL, 0, LOOK, 80 },
	{ NULL, "a@EXAMPLE.C0M", NULL, NULL, NULL, 0, LOOK, 80 },
	{ NULL, "a@exmaple.com", NULL, NULL, NULL, 0, LOOK, 60 },
	{ NULL, "a@exampple.com", NULL, NULL, NULL, 0, LOOK, 60 },
	{ NULL, "a@example.co", NULL, NULL, NULL, 0, LOOK, 60 },
	{ NULL, "a@exarnpie.com", NULL, NULL, NULL, 0, LOOK, 60 },
	/* A soft hyphen is mapped away by IDNA: this is example.com. */
	{ NULL, "a@ex\xc2\xad" "ample.com", NULL, NULL, NULL, 0, 0, 0 },
	{ NULL, "a@xn--xample-2of.com", NULL, NULL, NULL, 0, LOOK, 80 },
	{ NULL, "a@\xd0\xb5xample.com", NULL, NULL, NULL, 0, LOOK, 80 },
	{ NULL, "a@exannple.co.jp", NULL, NULL, NULL, 0, LOOK, 60 },
	{ NULL, "a@mail.example.com.evil.net", NULL, NULL, NULL, 0, LOOK,
	  60 },
	{ NULL, "a@abd.jp", NULL, NULL, NULL, 0, LOOK, 60 },
	{ NULL, "a@myexample.com.example.com.evil.net", NULL, NULL, NULL, 0,
	  LOOK, 60 },
	{ NULL, "a@bounce.examp1e.com", NULL, NULL, NULL, 0, LOOK, 80 },
	{ NULL, "a@x.example", NULL, "b@exarnple.com", NULL, 0, LOOK, 80 },
	/* ... and domains that must not match. */
	{ NULL, "a@example.net", NULL, NULL, NULL, 0, 0, 0 },
	{ NULL, "a@mail.example.com", NULL, NULL, NULL, 0, 0, 0 },
	{ NULL, "a@abcde.jp", NULL, NULL, NULL, 0, 0, 0 },
	{ NULL, "a@xyz.jp", NULL, NULL, NULL, 0, 0, 0 },
	{ NULL, "a@exampel.com", NULL, NULL, NULL, 0, 0, 0 },   /* trusted */
	{ NULL, "a@mail.exampel.com", NULL, NULL, NULL, 0, 0, 0 },
	{ NULL, "a@gmail.com", NULL, NULL, NULL, 0, 0, 0 },
	{ NULL, "a@examples.org", NULL, NULL, NULL, 0, 0, 0 },

	/* Reply-To. */
	{ NULL, "a@partner.example", "b@evil.example", NULL, NULL, 0, RT, 20 },
	{ NULL, "ceo@example.com", "ceo@gmail.com", NULL, NULL, 0, RT, 40 },
	{ NULL, "a@news.partner.example", "b@partner.example", NULL, NULL, 0,
	  0, 0 },
	{ NULL, "ceo@example.com", "ceo@example.co.jp", NULL, NULL, 0, 0, 0 },
	{ NULL, "ceo@example.com", "not an address", NULL, NULL, 0, 0, 0 },

	/* First contact with finance. */
	{ NULL, "x@vendor.example", NULL, NULL, "AP@example.com", 1, FIN,
	  30 },
	{ NULL, NULL, NULL, "x@vendor.example", "keiri@example.co.jp", 1, FIN,
	  30 },
	{ NULL, "x@vendor.example", NULL, NULL, "ap@example.com", 0, 0, 0 },
	{ NULL, "x@example.com", NULL, NULL, "ap@example.com", 1, 0, 0 },
	{ NULL, "x@vendor.example", NULL, NULL, "sales@example.com", 1, 0,
	  0 },

	/* All at once. */
	{ "Taro Yamada", "ceo@examp1e.com", "ceo@gmail.com", NULL,
	  "ap@example.com", 1, NAME | LOOK | RT | FIN, 190 },

	/* Hostile input: nothing to find, nothing to crash. */
	{ "\xff\xfe\x80", "@", "a@", "@b", "\x01@\x02", 1, 0, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};

static void input_of(const struct tcase *tc, struct bec_input *in)
{
	memset(in, 0, sizeof(*in));
	in->from_name = tc->name;
	in->from_addr = tc->from;
	in->reply_to = &tc->reply_to;
	in->n_reply_to = tc->reply_to ? 1 : 0;
	in->return_path = tc->return_path;
	in->rcpts = &tc->rcpt;
	in->first_time = &tc->first;
	in->n_rcpts = tc->rcpt ? 1 : 0;
}

static void test_cases(void **state)
{
	struct bec *b = make();
	struct bec_findings f;

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		const struct tcase *tc = &cases[i];
		struct bec_input in;
		unsigned kinds = 0;

		input_of(tc, &in);
		assert_int_equal(bec_check(b, &in, &f), 0);
		for (size_t k = 0; k < f.n; k++)
			kinds |= K(f.f[k].kind);
		if (kinds != tc->kinds || f.score != tc->score) {
			for (size_t k = 0; k < f.n; k++)
				print_message("  %s %d: %s\n",
					      bec_kind_str(f.f[k].kind),
					      f.f[k].score, f.f[k].reason);
			fail_msg("case %zu (%s <%s>): kinds %x score %d, want "
				 "%x %d",
				 i, tc->name ? tc->name : "-",
				 tc->from ? tc->from : "-", kinds, f.score,
				 tc->kinds, tc->score);
		}
	}
	bec_free(b);
}

/* One checker shared by threads, as the milter shares it. */
static void *check_many(void *arg)
{
	const struct bec *b = arg;
	struct bec_findings f;
	size_t bad = 0;

	for (int round = 0; round < 20; round++)
		for (size_t i = 0; i < N(cases); i++) {
			struct bec_input in;

			input_of(&cases[i], &in);
			if (bec_check(b, &in, &f) || f.score != cases[i].score)
				bad++;
		}
	return (void *)bad;
}

static void test_threads(void **state)
{
	struct bec *b = make();
	pthread_t th[4];

	(void)state;
	for (size_t i = 0; i < N(th); i++)
		assert_int_equal(pthread_create(&th[i], NULL, check_many, b),
				 0);
	for (size_t i = 0; i < N(th); i++) {
		void *bad;

		assert_int_equal(pthread_join(th[i], &bad), 0);
		assert_null(bad);
	}
	bec_free(b);
}

/* The documented rule: the whole registrable domain is compared, so a
 * company's name under another suffix is not a lookalike by itself. */
static void test_other_suffix(void **state)
{
	static const char *const one[] = { "example.com" };
	static const struct {
		const char *from;
		int look;
	} tc[] = {
		{ "a@example.co.jp", 0 },
		{ "a@example.jp", 0 },
		{ "a@example.org", 0 },
		{ "a@example.cm", 1 },
		{ "a@example.com.evil.net", 1 },
	};
	struct bec_conf c;
	struct bec_findings f;
	struct bec *b;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.our_domains = one;
	c.n_our_domains = 1;
	b = bec_new(&c, NULL, 0);
	assert_non_null(b);
	for (size_t i = 0; i < N(tc); i++) {
		struct bec_input in;

		memset(&in, 0, sizeof(in));
		in.from_addr = tc[i].from;
		assert_int_equal(bec_check(b, &in, &f), 0);
		if ((f.n == 1 && f.f[0].kind == BEC_LOOKALIKE) != tc[i].look)
			fail_msg("%s: %zu findings", tc[i].from, f.n);
	}
	bec_free(b);

	/* Homographs only: edit distances are not reported. */
	memset(&c, 0, sizeof(c));
	c.our_domains = one;
	c.n_our_domains = 1;
	c.max_dist_long = -1;
	c.max_dist_short = -1;
	b = bec_new(&c, NULL, 0);
	assert_non_null(b);
	{
		struct bec_input in;

		memset(&in, 0, sizeof(in));
		in.from_addr = "a@exmaple.com";
		assert_int_equal(bec_check(b, &in, &f), 0);
		assert_int_equal(f.n, 0);
		in.from_addr = "a@examp1e.com";
		assert_int_equal(bec_check(b, &in, &f), 0);
		assert_int_equal(f.n, 1);
	}
	bec_free(b);
}

static void test_finance_and_conf(void **state)
{
	static const char *const bad_dom[] = { "" };
	static const char *const bad_addr[] = { "nobody" };
	static const struct bec_person bad_person[] = { { " ,. ", NULL, 0 } };
	struct bec *b = make();
	struct bec_conf c;
	char err[128];

	(void)state;
	assert_true(bec_is_finance(b, "AP@Example.com"));
	assert_true(bec_is_finance(b, " <keiri@example.co.jp> "));
	assert_false(bec_is_finance(b, "sales@example.com"));
	assert_false(bec_is_finance(b, "garbage"));
	bec_free(b);
	bec_free(NULL);

	memset(&c, 0, sizeof(c));
	c.our_domains = bad_dom;
	c.n_our_domains = 1;
	assert_null(bec_new(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "domain"));
	memset(&c, 0, sizeof(c));
	c.finance_addrs = bad_addr;
	c.n_finance_addrs = 1;
	assert_null(bec_new(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "finance"));
	memset(&c, 0, sizeof(c));
	c.people = bad_person;
	c.n_people = 1;
	assert_null(bec_new(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "name"));
	assert_null(bec_new(NULL, err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_other_suffix),
		cmocka_unit_test(test_finance_and_conf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
