/*
 * Unit tests for Hyperscan's compiler in a child process (core/hs_child.c):
 * a database compiled in the child matches what it should; a refused
 * expression comes back with its index and Hyperscan's own message; the
 * widths are Hyperscan's; several requests share one child; two children
 * at once do not hold each other; and when the child dies at a request,
 * or cannot start, the same answers come from in-process compiles (the
 * stats say which did the work); a re-executed child is a fresh image.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/hs_child.h"

#define N(x) (sizeof(x) / sizeof((x)[0]))

static const char *const good[] = { "alpha", "br[a-z]vo", "^charlie$", "d(el)+ta" };
static const unsigned good_flags[] = { HS_FLAG_CASELESS, 0, HS_FLAG_MULTILINE, 0 };
static const unsigned good_ids[] = { 10, 11, 12, 13 };

static int on_match(unsigned id, unsigned long long from, unsigned long long to,
		    unsigned flags, void *ctx)
{
	unsigned *seen = ctx;

	(void)from;
	(void)to;
	(void)flags;
	if (id >= 10 && id < 14)
		seen[id - 10]++;
	return 0;
}

/* Which of good[] match text: a bit each. */
static unsigned matches(const hs_database_t *db, const char *text)
{
	hs_scratch_t *s = NULL;
	unsigned seen[4] = { 0 }, bits = 0;

	assert_int_equal(hs_alloc_scratch(db, &s), HS_SUCCESS);
	assert_int_equal(hs_scan(db, text, (unsigned)strlen(text), 0, s, on_match, seen),
			 HS_SUCCESS);
	hs_free_scratch(s);
	for (unsigned i = 0; i < 4; i++)
		bits |= seen[i] ? 1u << i : 0;
	return bits;
}

/* Everything one child (or the in-process path) answers; fault as in
 * hs_child_set_fault; the stats must show who did the work: the child
 * unless in_process. */
static void run_expect(int fault, int in_process)
{
	static const char *const bad[] = { "ok", "(unclosed", "fine" };
	static const unsigned zero[3] = { 0, 0, 0 }, ids[3] = { 0, 1, 2 };
	static const char *const wexp[] = { "abc", "a+", "x{3,5}", "(", "a*" };
	static const unsigned wflags[5] = { 0 };
	static const uint32_t want_w[] = { 3, 1, 3, UINT32_MAX, 0 };
	unsigned c0, p0, c1, p1;
	struct hs_child_error err;
	hs_compile_error_t *ce = NULL;
	hs_database_t *db = NULL, *ref = NULL;
	uint32_t w[N(wexp)];
	struct hs_child *c;

	hs_child_set_fault(fault);
	hs_child_stats(&c0, &p0);
	c = hs_child_open();
	if (fault == 2)
		assert_null(c);
	else
		assert_non_null(c);

	assert_int_equal(hs_child_compile(c, good, good_flags, good_ids, N(good), &db, &err), 0);
	assert_non_null(db);
	assert_int_equal(matches(db, "ALPHA bravo"), 0x3);
	assert_int_equal(matches(db, "x\ncharlie\ndelelta"), 0xc);
	assert_int_equal(matches(db, "bravado"), 0);
	hs_free_database(db);

	/* The error Hyperscan itself gives, for the same expression. */
	assert_int_equal(hs_child_compile(c, bad, zero, ids, N(bad), &db, &err), M_EINVAL);
	assert_null(db);
	assert_int_equal(err.expression, 1);
	assert_int_not_equal(hs_compile_multi(bad, zero, ids, N(bad), HS_MODE_BLOCK, NULL, &ref,
					      &ce), HS_SUCCESS);
	assert_int_equal(ce->expression, 1);
	assert_string_equal(err.message, ce->message);
	hs_free_compile_error(ce);

	assert_int_equal(hs_child_min_widths(c, wexp, wflags, N(wexp), w), 0);
	for (unsigned i = 0; i < N(wexp); i++)
		assert_int_equal(w[i], want_w[i]);

	/* Still answering after an error. */
	assert_int_equal(hs_child_compile(c, good, good_flags, good_ids, 1, &db, &err), 0);
	assert_int_equal(matches(db, "alpha"), 0x1);
	hs_free_database(db);
	hs_child_close(c);

	hs_child_stats(&c1, &p1);
	if (!in_process) {
		assert_int_equal(c1 - c0, 4);
		assert_int_equal(p1 - p0, 0);
	} else {
		assert_int_equal(c1 - c0, 0);
		assert_int_equal(p1 - p0, 4);
	}
	hs_child_set_fault(0);
}

static void run(int fault)
{
	run_expect(fault, fault != 0);
}

static void test_in_child(void **state)
{
	(void)state;
	run(0);
}

static void test_child_dies(void **state)
{
	(void)state;
	run(1);
}

static void test_no_child(void **state)
{
	(void)state;
	run(2);
}

/* A child that never answers (a lock held at the fork, say) is killed
 * after the timeout and the work done in-process. */
static void test_child_hangs(void **state)
{
	(void)state;
	hs_child_set_timeout(1);
	run(3);
	hs_child_set_timeout(600);
}

/* Two builds at once (two threads reloading): the second child holds
 * nothing of the first's, so the first closes (and its child exits)
 * while the second is still open; before, this waited forever. */
static void test_two_at_once(void **state)
{
	struct hs_child_error err;
	struct hs_child *a, *b;
	hs_database_t *db;

	(void)state;
	alarm(20);
	a = hs_child_open();
	b = hs_child_open();
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(hs_child_compile(a, good, good_flags, good_ids, 1, &db, &err), 0);
	hs_free_database(db);
	hs_child_close(a);
	assert_int_equal(hs_child_compile(b, good, good_flags, good_ids, 2, &db, &err), 0);
	assert_int_equal(matches(db, "alpha bravo"), 0x3);
	hs_free_database(db);
	hs_child_close(b);
	alarm(0);
}

/* Re-executed (as mamori does with /proc/self/exe __hs-compiler; here this
 * test binary, whose main serves as the child for that argument): a fresh
 * image, so the fault set here (die at the first request) is not
 * inherited, and the child answers everything. The forked copy would
 * inherit it and die (test_child_dies). */
static void test_exec(void **state)
{
	(void)state;
	hs_child_use_exec("/proc/self/exe", HS_CHILD_EXEC_ARG);
	hs_child_set_fault(1);
	run_expect(1, 0);
	hs_child_use_exec(NULL, NULL);
}

/* Closing without a request, and NULL, are fine. */
static void test_close(void **state)
{
	(void)state;
	hs_child_close(hs_child_open());
	hs_child_close(NULL);
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], HS_CHILD_EXEC_ARG))
		hs_child_main(3);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_child),
		cmocka_unit_test(test_child_dies),
		cmocka_unit_test(test_no_child),
		cmocka_unit_test(test_child_hangs),
		cmocka_unit_test(test_two_at_once),
		cmocka_unit_test(test_exec),
		cmocka_unit_test(test_close),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
