/*
 * Unit tests for the stream framer (src/ingest/framing.c): table-driven
 * cases of LF, CRLF and octet-counted streams, framing errors and record
 * limits; every case is also fed split at every byte boundary and one byte
 * at a time, because a TCP read can end anywhere and the records must not
 * depend on where.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "ingest/framing.h"

#define T FRAMING_F_TRUNCATED
#define B FRAMING_F_BAD_FRAME
#define MAX_RECS 16

struct exp_rec {
	const char *s;
	uint16_t flags;
};

struct frame_case {
	const char *name;
	enum framing_mode mode;
	size_t max_line;
	const char *in;
	size_t in_len;          /* 0 = strlen(in) */
	struct exp_rec out[MAX_RECS];
	enum framing_mode end_mode;   /* detected mode after the input */
};

struct got {
	char *s[64];
	size_t len[64];
	uint16_t flags[64];
	size_t n;
};

static void got_add(struct got *g, const struct framing_rec *r)
{
	assert_true(g->n < 64);
	g->s[g->n] = malloc(r->len + 1);
	assert_non_null(g->s[g->n]);
	memcpy(g->s[g->n], r->p, r->len);
	g->s[g->n][r->len] = '\0';
	g->len[g->n] = r->len;
	g->flags[g->n] = r->flags;
	g->n++;
}

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->s[i]);
	g->n = 0;
}

/* Feeds in as chunks cut at the given positions (ascending, < len). */
static enum framing_mode run_chunks(const struct frame_case *c, const char *in,
				    size_t len, const size_t *cuts,
				    size_t ncuts, struct got *g)
{
	struct framer f;
	struct framing_rec r;
	size_t start = 0;
	enum framing_mode mode;

	framing_init(&f, c->mode, c->max_line);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		const char *p = in + start;
		size_t n = end - start;
		int rc;

		while ((rc = framing_next(&f, &p, &n, &r)) == 1) {
			assert_true(r.len > 0);
			assert_true(r.len <= c->max_line);
			got_add(g, &r);
		}
		assert_int_equal(rc, 0);
		assert_int_equal(n, 0);
		start = end;
	}
	if (framing_finish(&f, &r) == 1)
		got_add(g, &r);
	mode = f.mode;
	framing_fini(&f);
	return mode;
}

static void check_got(const struct frame_case *c, const struct got *g,
		      const char *how)
{
	size_t nexp = 0;

	while (nexp < MAX_RECS && c->out[nexp].s)
		nexp++;
	if (g->n != nexp) {
		print_error("case %s (%s): %zu records, expected %zu\n",
			    c->name, how, g->n, nexp);
		for (size_t i = 0; i < g->n; i++)
			print_error("  got [%s] flags %u\n", g->s[i],
				    g->flags[i]);
		fail();
	}
	for (size_t i = 0; i < nexp; i++) {
		if (strlen(c->out[i].s) != g->len[i] ||
		    memcmp(c->out[i].s, g->s[i], g->len[i]) != 0 ||
		    c->out[i].flags != g->flags[i]) {
			print_error("case %s (%s) record %zu: got [%s] flags %u,"
				    " expected [%s] flags %u\n", c->name, how,
				    i, g->s[i], g->flags[i], c->out[i].s,
				    c->out[i].flags);
			fail();
		}
	}
}

static const struct frame_case cases[] = {
	{ "lf", FRAMING_AUTO, 64, "<13>a\n<13>b\n", 0,
	  { { "<13>a", 0 }, { "<13>b", 0 } }, FRAMING_LF },
	{ "crlf", FRAMING_AUTO, 64, "<13>a\r\n<13>b\r\n\r\n", 0,
	  { { "<13>a", 0 }, { "<13>b", 0 } }, FRAMING_LF },
	{ "empty lines skipped", FRAMING_LF, 64, "\n\n{\"a\":1}\n\n\n{}\n", 0,
	  { { "{\"a\":1}", 0 }, { "{}", 0 } }, FRAMING_LF },
	{ "last line without lf", FRAMING_AUTO, 64, "one\ntwo", 0,
	  { { "one", 0 }, { "two", 0 } }, FRAMING_LF },
	{ "octet", FRAMING_AUTO, 64, "5 <13>a3 xyz11 hello world", 0,
	  { { "<13>a", 0 }, { "xyz", 0 }, { "hello world", 0 } },
	  FRAMING_OCTET },
	{ "octet with lf inside and between", FRAMING_AUTO, 64,
	  "7 a\nb\nc\n\n4 abc\n", 0,
	  { { "a\nb\nc", 0 }, { "abc", 0 } }, FRAMING_OCTET },
	{ "octet short frame at end", FRAMING_AUTO, 64, "5 ab", 0,
	  { { "ab", B } }, FRAMING_OCTET },
	{ "octet header only at end", FRAMING_OCTET, 64, "3 abc12", 0,
	  { { "abc", 0 }, { "12", B } }, FRAMING_OCTET },
	{ "digits then no space is lf", FRAMING_AUTO, 64,
	  "2024-01-01 x\n5 hello", 0,
	  { { "2024-01-01 x", 0 }, { "5 hello", 0 } }, FRAMING_LF },
	{ "digits at end of stream", FRAMING_AUTO, 64, "123", 0,
	  { { "123", 0 } }, FRAMING_LF },
	{ "leading zero is not a length", FRAMING_AUTO, 64, "05 hello\n", 0,
	  { { "05 hello", 0 } }, FRAMING_LF },
	{ "mixed garbage in octet mode", FRAMING_AUTO, 64,
	  "3 abcgarbage here\n2 ok<x>\n0 zero\n4 last", 0,
	  { { "abc", 0 }, { "garbage here", B }, { "ok", 0 },
	    { "<x>", B }, { "0 zero", B }, { "last", 0 } }, FRAMING_OCTET },
	{ "huge length prefix", FRAMING_AUTO, 64,
	  "99999999999 hello\n", 0,
	  { { "99999999999 hello", 0 } }, FRAMING_LF },
	{ "huge length prefix in octet mode", FRAMING_AUTO, 64,
	  "1 a99999999999 hello\n2 ok", 0,
	  { { "a", 0 }, { "99999999999 hello", B }, { "ok", 0 } },
	  FRAMING_OCTET },
	{ "nine digit length is cut", FRAMING_AUTO, 8,
	  "999999999 abcdefghijkl", 0,
	  { { "abcdefgh", T } }, FRAMING_OCTET },
	{ "length beyond max_line", FRAMING_AUTO, 8,
	  "12 abcdefghijkl3 xyz", 0,
	  { { "abcdefgh", T }, { "xyz", 0 } }, FRAMING_OCTET },
	{ "length equal to max_line", FRAMING_AUTO, 8,
	  "8 abcdefgh8 ijklmnop", 0,
	  { { "abcdefgh", 0 }, { "ijklmnop", 0 } }, FRAMING_OCTET },
	{ "long lf line cut and rest skipped", FRAMING_AUTO, 8,
	  "abcdefghijklmnop\nok\n", 0,
	  { { "abcdefgh", T }, { "ok", 0 } }, FRAMING_LF },
	{ "line of exactly max_line", FRAMING_LF, 8,
	  "abcdefgh\nabcdefgh\r\nabcdefghi\r\n", 0,
	  { { "abcdefgh", 0 }, { "abcdefgh", 0 }, { "abcdefgh", T } },
	  FRAMING_LF },
	{ "cr not before lf stays", FRAMING_LF, 8, "ab\rcd\n", 0,
	  { { "ab\rcd", 0 } }, FRAMING_LF },
	{ "long unterminated line", FRAMING_LF, 4, "abcdefgh", 0,
	  { { "abcd", T } }, FRAMING_LF },
	{ "max_line + cr at end", FRAMING_LF, 4, "abcd\r", 0,
	  { { "abcd", 0 } }, FRAMING_LF },
	{ "tiny max_line with digits", FRAMING_AUTO, 2,
	  "12345678901\n1 a", 0,
	  { { "12", T }, { "1 ", T } }, FRAMING_LF },
	{ "octet frame trailing newline trimmed", FRAMING_AUTO, 64,
	  "6 hello\n6 world\n", 0,
	  { { "hello", 0 }, { "world", 0 } }, FRAMING_OCTET },
	{ "octet forced bad first byte", FRAMING_OCTET, 64, "<13>x\n3 abc",
	  0, { { "<13>x", B }, { "abc", 0 } }, FRAMING_OCTET },
	{ "json lines", FRAMING_AUTO, 64,
	  "{\"event_type\":\"alert\"}\n{\"a\":\"b\"}\n", 0,
	  { { "{\"event_type\":\"alert\"}", 0 }, { "{\"a\":\"b\"}", 0 } },
	  FRAMING_LF },
	/* Fuzzer find: a cut frame whose kept part is only a newline. */
	{ "cut frame that trims to nothing", FRAMING_OCTET, 1,
	  "\x1a" "9999999999 hello\n2 \n4 last", 0,
	  { { "\x1a", T | B }, { " ", T | B } }, FRAMING_OCTET },
	{ "only separators", FRAMING_AUTO, 64, "\r\n\n\r\n", 0, { { 0 } },
	  FRAMING_AUTO },
	{ "empty input", FRAMING_AUTO, 64, "", 0, { { 0 } }, FRAMING_AUTO },
};

static size_t case_len(const struct frame_case *c)
{
	return c->in_len ? c->in_len : strlen(c->in);
}

static void test_whole(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct got g = { 0 };
		enum framing_mode m;

		m = run_chunks(&cases[i], cases[i].in, case_len(&cases[i]),
			       NULL, 0, &g);
		check_got(&cases[i], &g, "whole");
		if (m != cases[i].end_mode) {
			print_error("case %s: mode %d, expected %d\n",
				    cases[i].name, m, cases[i].end_mode);
			fail();
		}
		got_free(&g);
	}
}

static void test_split_every_boundary(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = case_len(&cases[i]);

		for (size_t cut = 1; cut < len; cut++) {
			struct got g = { 0 };
			char how[32];

			snprintf(how, sizeof(how), "cut at %zu", cut);
			run_chunks(&cases[i], cases[i].in, len, &cut, 1, &g);
			check_got(&cases[i], &g, how);
			got_free(&g);
		}
	}
}

static void test_byte_at_a_time(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = case_len(&cases[i]);
		size_t cuts[256];
		struct got g = { 0 };

		assert_true(len < 256);
		for (size_t k = 1; k < len; k++)
			cuts[k - 1] = k;
		run_chunks(&cases[i], cases[i].in, len, cuts,
			   len ? len - 1 : 0, &g);
		check_got(&cases[i], &g, "bytewise");
		got_free(&g);
	}
}

/* A frame far larger than max_line, fed in 4 KiB reads: the framer keeps no
 * more than max_line + 1 bytes whatever the frame's size. */
static void test_big_frame_bounded_memory(void **state)
{
	struct framer f;
	struct framing_rec r;
	char chunk[4096];
	const char *hdr = "50000000 ";
	const char *p;
	size_t n, total = 0, nrec = 0;

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	framing_init(&f, FRAMING_AUTO, 1000);
	p = hdr;
	n = strlen(hdr);
	assert_int_equal(framing_next(&f, &p, &n, &r), 0);
	while (total < 50000000) {
		size_t k = 50000000 - total;

		if (k > sizeof(chunk))
			k = sizeof(chunk);
		p = chunk;
		n = k;
		while (framing_next(&f, &p, &n, &r) == 1) {
			assert_int_equal(r.len, 1000);
			assert_int_equal(r.flags, T);
			nrec++;
		}
		assert_true(f.carry_cap <= 1001);
		total += k;
	}
	p = "2 ok";
	n = 4;
	assert_int_equal(framing_next(&f, &p, &n, &r), 1);
	assert_int_equal(r.len, 2);
	assert_memory_equal(r.p, "ok", 2);
	assert_int_equal(nrec, 1);
	framing_fini(&f);
}

/* A record returned in place points into the caller's input (no copy). */
static void test_zero_copy(void **state)
{
	struct framer f;
	struct framing_rec r;
	const char *in = "hello\nworld\n";
	const char *p = in;
	size_t n = strlen(in);

	(void)state;
	framing_init(&f, FRAMING_LF, 64);
	assert_int_equal(framing_next(&f, &p, &n, &r), 1);
	assert_ptr_equal(r.p, in);
	assert_int_equal(framing_next(&f, &p, &n, &r), 1);
	assert_ptr_equal(r.p, in + 6);
	assert_int_equal(framing_next(&f, &p, &n, &r), 0);
	assert_int_equal(framing_finish(&f, &r), 0);
	framing_fini(&f);
}

/* framing_reset() forgets a partial record. */
static void test_reset(void **state)
{
	struct framer f;
	struct framing_rec r;
	const char *p = "partial";
	size_t n = 7;

	(void)state;
	framing_init(&f, FRAMING_AUTO, 64);
	assert_int_equal(framing_next(&f, &p, &n, &r), 0);
	assert_int_equal(framing_pending(&f), 7);
	framing_reset(&f, FRAMING_LF);
	assert_int_equal(framing_pending(&f), 0);
	p = "new\n";
	n = 4;
	assert_int_equal(framing_next(&f, &p, &n, &r), 1);
	assert_int_equal(r.len, 3);
	assert_memory_equal(r.p, "new", 3);
	framing_fini(&f);
	framing_fini(&f);   /* twice is harmless */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole),
		cmocka_unit_test(test_split_every_boundary),
		cmocka_unit_test(test_byte_at_a_time),
		cmocka_unit_test(test_big_frame_bounded_memory),
		cmocka_unit_test(test_zero_copy),
		cmocka_unit_test(test_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
