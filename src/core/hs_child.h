/*
 * Hyperscan's compiler run in a short-lived child process. Why: compiling
 * even a small database walks most of Hyperscan's compiler (about 3 MB of
 * its code) and leaves the compiler's allocations scattered over the malloc
 * heap; a long-running daemon keeps both resident for nothing. One child
 * serves a whole build (a rule set has hundreds of databases, and a fork
 * of a large process costs milliseconds): it receives expressions through
 * a socket, answers with the serialized database, the compile error or the
 * expressions' widths, and exits when the build closes it. When the child
 * cannot start or dies, the work is done in-process, so a caller sees the
 * same results either way.
 */
#ifndef MAMORI_HS_CHILD_H
#define MAMORI_HS_CHILD_H

#include <stdint.h>

#include <hs/hs.h>

struct hs_child;

/* What Hyperscan said about a set that did not compile: the index of the
 * expression it refused, or -1 for the set as a whole. */
struct hs_child_error {
	int expression;
	char message[256];
};

/* Starts a compiler child; NULL when none could start (then every call
 * below with NULL works in-process; the reason is logged). Owned by the
 * caller: hs_child_close. */
struct hs_child *hs_child_open(void);

/* Ends the child and reaps it; NULL does nothing. */
void hs_child_close(struct hs_child *c);

/* hs_compile_multi(exprs, flags, ids, n, HS_MODE_BLOCK, NULL, ...) in the
 * child (in-process when c is NULL or the child failed). 0 and *db (owned
 * by the caller, hs_free_database) on success; M_EINVAL with *err filled
 * when Hyperscan refused the set (or could not compile it in-process). */
int hs_child_compile(struct hs_child *c, const char *const *exprs, const unsigned *flags,
		     const unsigned *ids, unsigned n, hs_database_t **db,
		     struct hs_child_error *err);

/* hs_expression_info of each expression: min_width[i] is its minimum match
 * width, or UINT32_MAX when Hyperscan refuses it. Returns 0. */
int hs_child_min_widths(struct hs_child *c, const char *const *exprs, const unsigned *flags,
			unsigned n, uint32_t *min_width);

/* Requests answered by a child and done in-process since start. */
void hs_child_stats(unsigned *in_child, unsigned *in_process);

/* The child re-executes path with the one argument arg (mamori:
 * /proc/self/exe __hs-compiler, whose main calls hs_child_main(3)) instead
 * of serving from the forked copy of its parent. Why: a copy of a threaded
 * process may inherit a lock another thread held at the fork (in malloc,
 * in a library); a fresh image owes nothing to the parent but its socket.
 * Until this is called (tests, benchmarks), and if the exec fails, the
 * forked copy serves. Call once, before any hs_child_open; path and arg
 * must outlive the process (string literals). */
void hs_child_use_exec(const char *path, const char *arg);
#define HS_CHILD_EXEC_ARG "__hs-compiler"   /* mamori's hidden subcommand */

/* The child's side over fd, for the re-executed image; exits at the end
 * of the socket or at anything it cannot read. */
_Noreturn void hs_child_main(int fd);

/* For a program that is its own compiler child (mamori, the unit tests
 * that compile databases), first thing in main with its first argument
 * (NULL when none): serves as the child when it is HS_CHILD_EXEC_ARG,
 * else has children re-execute this program (/proc/self/exe). A unit
 * test's forked child once hung on ASan's allocator lock, held by the
 * test's other thread at the fork. */
void hs_child_exec_self(const char *arg1);

/* Tests: 1 makes a child die at its first request, 2 starts none, 3
 * makes it hang there (given up after the timeout), 0 (default) none of
 * these. */
void hs_child_set_fault(int fault);
/* Seconds without an answer after which a child is killed and the work
 * done in-process (600; tests make it short). */
void hs_child_set_timeout(unsigned seconds);

#endif
