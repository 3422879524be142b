/*
 * Hyperscan's compiler in a child process (see hs_child.h for why).
 *
 * The child is forked from the caller (and, in mamori, re-executes the
 * binary: hs_child_use_exec) and talks to it over a socket pair
 * (send with MSG_NOSIGNAL: a dead peer is an error, not a SIGPIPE). A
 * request is u32 kind and u32 n, then per expression u32 flags, u32 id
 * (compile only), u32 length and its bytes. An answer is u32 kind, then
 * for a database u64 size and hs_serialize_database's bytes, for a compile
 * error i32 expression, u32 length and the message, for widths n u32. The
 * child leaves with _exit (no atexit handlers, no flush of the parent's
 * stdio buffers) at the end of the socket, at anything it cannot read, and
 * with its parent (PR_SET_PDEATHSIG), so a stopped daemon leaves no
 * compiler running. The parent trusts a whole answer (Hyperscan checks the
 * database it deserializes); at anything else it reaps the child, logs why
 * once, and does that request and the rest in-process.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/fdio.h"
#include "core/hs_child.h"
#include "core/log.h"

enum { REQ_COMPILE = 1, REQ_WIDTHS = 2 };
enum { ANS_DB = 1, ANS_ERR = 2, ANS_WIDTHS = 3 };

#define MAX_EXPRS (1u << 20)
#define MAX_EXPR_LEN (1u << 20)
#define MAX_DB ((uint64_t)1 << 31)

struct hs_child {
	int fd;
	pid_t pid;
};

static atomic_uint n_child, n_inproc;
static atomic_int child_fault;
static atomic_uint child_timeout_s = 600;
static const char *exec_path, *exec_arg;

void hs_child_use_exec(const char *path, const char *arg)
{
	exec_path = path;
	exec_arg = arg;
}

void hs_child_exec_self(const char *arg1)
{
	if (arg1 && strcmp(arg1, HS_CHILD_EXEC_ARG) == 0)
		hs_child_main(3);
	hs_child_use_exec("/proc/self/exe", HS_CHILD_EXEC_ARG);
}

void hs_child_set_timeout(unsigned seconds)
{
	atomic_store(&child_timeout_s, seconds ? seconds : 1);
}

void hs_child_set_fault(int fault)
{
	atomic_store(&child_fault, fault);
}

void hs_child_stats(unsigned *in_child, unsigned *in_process)
{
	*in_child = atomic_load(&n_child);
	*in_process = atomic_load(&n_inproc);
}

/* The work itself, the same in the child and in-process. */
static int compile_here(const char *const *exprs, const unsigned *flags, const unsigned *ids,
			unsigned n, hs_database_t **db, struct hs_child_error *err)
{
	hs_compile_error_t *ce = NULL;

	if (hs_compile_multi(exprs, flags, ids, n, HS_MODE_BLOCK, NULL, db, &ce) == HS_SUCCESS)
		return 0;
	*db = NULL;
	err->expression = ce ? ce->expression : -1;
	snprintf(err->message, sizeof(err->message), "%s", ce && ce->message ? ce->message : "?");
	hs_free_compile_error(ce);
	return M_EINVAL;
}

static void widths_here(const char *const *exprs, const unsigned *flags, unsigned n,
			uint32_t *min_width)
{
	for (unsigned i = 0; i < n; i++) {
		hs_expr_info_t *info = NULL;
		hs_compile_error_t *ce = NULL;

		min_width[i] = UINT32_MAX;
		if (hs_expression_info(exprs[i], flags[i], &info, &ce) != HS_SUCCESS) {
			hs_free_compile_error(ce);
			continue;
		}
		min_width[i] = info->min_width;
		free(info);
	}
}

/* ---- the child ---- */

/* In the child: anything unexpected ends it; the parent sees the socket
 * close. */
static void put(int fd, const void *p, size_t n)
{
	if (fd_send_full(fd, p, n) < 0)
		_exit(3);
}

static void get(int fd, void *p, size_t n)
{
	if (fd_read_full(fd, p, n) < 0)
		_exit(3);
}

static void answer_compile(int fd, const char *const *exprs, const unsigned *flags,
			   const unsigned *ids, unsigned n)
{
	struct hs_child_error err;
	hs_database_t *db = NULL;

	if (compile_here(exprs, flags, ids, n, &db, &err) == 0) {
		char *bytes = NULL;
		size_t size = 0;
		uint32_t kind = ANS_DB;
		uint64_t sz;

		if (hs_serialize_database(db, &bytes, &size) != HS_SUCCESS)
			_exit(2);
		sz = size;
		put(fd, &kind, sizeof(kind));
		put(fd, &sz, sizeof(sz));
		put(fd, bytes, size);
		free(bytes);
		hs_free_database(db);
	} else {
		uint32_t kind = ANS_ERR, len = (uint32_t)strlen(err.message);
		int32_t ex = err.expression;

		put(fd, &kind, sizeof(kind));
		put(fd, &ex, sizeof(ex));
		put(fd, &len, sizeof(len));
		put(fd, err.message, len);
	}
}

static void answer_widths(int fd, const char *const *exprs, const unsigned *flags, unsigned n)
{
	uint32_t *w = malloc((n ? n : 1) * sizeof(*w));
	uint32_t kind = ANS_WIDTHS;

	if (!w)
		_exit(2);
	widths_here(exprs, flags, n, w);
	put(fd, &kind, sizeof(kind));
	put(fd, w, n * sizeof(*w));
	free(w);
}

/* Serves requests until the parent closes the socket. */
_Noreturn void hs_child_main(int fd)
{
	for (;;) {
		uint32_t kind, n, hdr[3];
		char **exprs;
		unsigned *flags, *ids;

		if (fd_read_full(fd, &kind, sizeof(kind)) < 0)
			_exit(0);
		if (atomic_load(&child_fault) == 1)
			_exit(70);
		while (atomic_load(&child_fault) == 3)
			pause();
		get(fd, &n, sizeof(n));
		if ((kind != REQ_COMPILE && kind != REQ_WIDTHS) || n > MAX_EXPRS)
			_exit(4);
		exprs = calloc(n + 1, sizeof(*exprs));
		flags = calloc(n + 1, sizeof(*flags));
		ids = calloc(n + 1, sizeof(*ids));
		if (!exprs || !flags || !ids)
			_exit(2);
		for (uint32_t i = 0; i < n; i++) {
			get(fd, hdr, sizeof(hdr));
			if (hdr[2] > MAX_EXPR_LEN || !(exprs[i] = malloc(hdr[2] + 1)))
				_exit(4);
			get(fd, exprs[i], hdr[2]);
			exprs[i][hdr[2]] = '\0';
			flags[i] = hdr[0];
			ids[i] = hdr[1];
		}
		if (kind == REQ_COMPILE)
			answer_compile(fd, (const char *const *)exprs, flags, ids, n);
		else
			answer_widths(fd, (const char *const *)exprs, flags, n);
		for (uint32_t i = 0; i < n; i++)
			free(exprs[i]);
		free(exprs);
		free(flags);
		free(ids);
	}
}

/* ---- the parent ---- */

struct hs_child *hs_child_open(void)
{
	struct hs_child *c = calloc(1, sizeof(*c));
	const char *why = "out of memory";
	pid_t parent = getpid();
	int sv[2];

	if (atomic_load(&child_fault) == 2) {
		why = "children off";
		goto fail;
	}
	if (!c)
		goto fail;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		why = strerror(errno);
		goto fail;
	}
	c->pid = fork();
	if (c->pid < 0) {
		why = strerror(errno);
		close(sv[0]);
		close(sv[1]);
		goto fail;
	}
	if (c->pid == 0) {
		/* Only its socket (as fd 3) and stdio: the daemon's listeners,
		 * and another build's socket, are not held by this child. */
		if (sv[1] != 3 && dup2(sv[1], 3) < 0)
			_exit(5);
		(void)close_range(4, ~0u, 0);
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);   /* kept across exec */
		if (getppid() != parent)   /* it died before the line above */
			_exit(0);
		if (exec_path) {
			/* Only async-signal-safe calls between the fork and
			 * here. Fd 3 must survive the exec (dup2 cleared its
			 * close-on-exec, unless it was 3 already). */
			(void)fcntl(3, F_SETFD, 0);
			execl(exec_path, exec_path, exec_arg, (char *)NULL);
		}
		hs_child_main(3);
	}
	close(sv[1]);
	c->fd = sv[0];
	{
		/* A child that hangs (say, on a lock another thread held at
		 * the fork) is given up after this long, killed, and the
		 * work done in-process (child_lost). */
		struct timeval tv = { (time_t)atomic_load(&child_timeout_s), 0 };

		(void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return c;
fail:
	log_msg(LOG_WARN, "core", "event=hs_child_failed reason=\"%s\" action=compile_in_process",
		why);
	free(c);
	return NULL;
}

/* Closes the socket and reaps the child: "" when it exited 0, else why. */
static void child_reap(struct hs_child *c, char *why, size_t why_len)
{
	int status = 0;
	pid_t w;

	why[0] = '\0';
	if (c->fd < 0)
		return;
	close(c->fd);
	c->fd = -1;
	do
		w = waitpid(c->pid, &status, 0);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		snprintf(why, why_len, "waitpid: %s", strerror(errno));
	else if (WIFSIGNALED(status))
		snprintf(why, why_len, "killed by signal %d", WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		snprintf(why, why_len, "exit status %d", WEXITSTATUS(status));
}

void hs_child_close(struct hs_child *c)
{
	char why[96];

	if (!c)
		return;
	child_reap(c, why, sizeof(why));
	free(c);
}

/* A request or answer failed (or timed out): the child is done, killed
 * in case it still runs; the rest in-process. */
static void child_lost(struct hs_child *c)
{
	char why[96];
	int timed_out = errno == EAGAIN || errno == EWOULDBLOCK;

	if (c->fd >= 0)
		(void)kill(c->pid, SIGKILL);
	child_reap(c, why, sizeof(why));
	if (timed_out)
		snprintf(why, sizeof(why), "no answer in %u s", atomic_load(&child_timeout_s));
	log_msg(LOG_WARN, "core", "event=hs_child_failed reason=\"%s\" action=compile_in_process",
		why[0] ? why : "incomplete answer");
}

/* Sends one request; 0 or -1 (the child is lost). */
static int request(struct hs_child *c, uint32_t kind, const char *const *exprs,
		   const unsigned *flags, const unsigned *ids, unsigned n)
{
	struct buf b;
	int r = -1;

	buf_init(&b, 0);
	if (buf_append(&b, &kind, sizeof(kind)) < 0 || buf_append(&b, &n, sizeof(n)) < 0)
		goto out;
	for (unsigned i = 0; i < n; i++) {
		uint32_t hdr[3] = { flags[i], ids ? ids[i] : 0, (uint32_t)strlen(exprs[i]) };

		if (hdr[2] > MAX_EXPR_LEN || buf_append(&b, hdr, sizeof(hdr)) < 0 ||
		    buf_append(&b, exprs[i], hdr[2]) < 0)
			goto out;
	}
	r = n <= MAX_EXPRS && fd_send_full(c->fd, b.p, b.len) == 0 ? 0 : -1;
out:
	buf_fini(&b);
	return r;
}

/* The child's answer to a compile: 1 database, 0 error, -1 unreadable. */
static int compile_read(int fd, hs_database_t **db, struct hs_child_error *err)
{
	uint32_t kind = 0, len = 0;
	uint64_t size = 0;
	int32_t ex = 0;
	char *bytes;
	int ok;

	if (fd_read_full(fd, &kind, sizeof(kind)) < 0)
		return -1;
	if (kind == ANS_ERR) {
		if (fd_read_full(fd, &ex, sizeof(ex)) < 0 || fd_read_full(fd, &len, sizeof(len)) < 0 ||
		    len >= sizeof(err->message) || fd_read_full(fd, err->message, len) < 0)
			return -1;
		err->message[len] = '\0';
		err->expression = ex;
		return 0;
	}
	if (kind != ANS_DB || fd_read_full(fd, &size, sizeof(size)) < 0 || size == 0 ||
	    size > MAX_DB)
		return -1;
	bytes = malloc(size);
	if (!bytes)
		return -1;
	ok = fd_read_full(fd, bytes, size) == 0 &&
	     hs_deserialize_database(bytes, size, db) == HS_SUCCESS;
	free(bytes);
	if (!ok) {
		*db = NULL;
		return -1;
	}
	return 1;
}

int hs_child_compile(struct hs_child *c, const char *const *exprs, const unsigned *flags,
		     const unsigned *ids, unsigned n, hs_database_t **db,
		     struct hs_child_error *err)
{
	*db = NULL;
	if (c && c->fd >= 0) {
		int got;

		errno = 0;   /* child_lost tells a timeout by it */
		got = request(c, REQ_COMPILE, exprs, flags, ids, n) == 0 ?
			  compile_read(c->fd, db, err) : -1;

		if (got >= 0) {
			atomic_fetch_add(&n_child, 1);
			return got == 1 ? 0 : M_EINVAL;
		}
		child_lost(c);
	}
	atomic_fetch_add(&n_inproc, 1);
	return compile_here(exprs, flags, ids, n, db, err);
}

int hs_child_min_widths(struct hs_child *c, const char *const *exprs, const unsigned *flags,
			unsigned n, uint32_t *min_width)
{
	uint32_t kind = 0;

	if (n == 0)
		return 0;
	if (c && c->fd >= 0) {
		errno = 0;
		if (request(c, REQ_WIDTHS, exprs, flags, NULL, n) == 0 &&
		    fd_read_full(c->fd, &kind, sizeof(kind)) == 0 && kind == ANS_WIDTHS &&
		    fd_read_full(c->fd, min_width, n * sizeof(*min_width)) == 0) {
			atomic_fetch_add(&n_child, 1);
			return 0;
		}
		child_lost(c);
	}
	atomic_fetch_add(&n_inproc, 1);
	widths_here(exprs, flags, n, min_width);
	return 0;
}
