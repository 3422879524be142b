/*
 * Unit tests that compile Hyperscan databases (rule sets, DLP keywords)
 * run the compiler child as mamori does: the test binary re-executed with
 * HS_CHILD_EXEC_ARG, not a forked copy. A forked copy of a process with
 * threads can hang on a lock one of them held at the fork: test_mail_gw's
 * child once waited on ASan's allocator lock, held by its sink thread,
 * until the 600-s timeout. Call first thing in main.
 */
#ifndef MAMORI_TEST_HS_EXEC_H
#define MAMORI_TEST_HS_EXEC_H

#include <string.h>

#include "core/hs_child.h"

static inline void test_hs_exec(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], HS_CHILD_EXEC_ARG) == 0)
		hs_child_main(3);
	hs_child_use_exec("/proc/self/exe", HS_CHILD_EXEC_ARG);
}

#endif
