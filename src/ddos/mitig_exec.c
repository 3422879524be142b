/*
 * External commands for the back-ends (gobgp, birdc, nft) and the write to
 * ExaBGP's pipe. fork and execve, never a shell, so nothing in a prefix or
 * a reason can become a command; every run has a deadline after which the
 * child is killed; standard error comes back for the error message.
 *
 * Why a socket pair for the child's standard input: a child that exits
 * before reading would raise SIGPIPE in mamori on a pipe; send() with
 * MSG_NOSIGNAL cannot.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "ddos/mitig_int.h"

#define EXEC_OUT_MAX (1 << 20)

extern char **environ;

/* The program to execute: argv0 itself when it has a '/', else the first
 * executable of that name in PATH. */
static int find_program(const char *argv0, char *path, size_t pathsz)
{
	const char *p = getenv("PATH");

	if (strchr(argv0, '/')) {
		if ((size_t)snprintf(path, pathsz, "%s", argv0) >= pathsz)
			return M_EINVAL;
		return access(path, X_OK) == 0 ? M_OK : M_ENOTFOUND;
	}
	/* PATH first; then the system's directories, since birdc and nft live
	 * in sbin, which a service's or a user's PATH may lack. */
	for (int round = 0; round < 2; round++) {
		if (round == 1)
			p = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
		while (p && *p) {
			const char *colon = strchr(p, ':');
			size_t n = colon ? (size_t)(colon - p) : strlen(p);
			if (n && (size_t)snprintf(path, pathsz, "%.*s/%s", (int)n, p, argv0) < pathsz &&
			    access(path, X_OK) == 0)
				return M_OK;
			p += n;
			if (*p == ':')
				p++;
		}
	}
	return M_ENOTFOUND;
}

static int64_t left_ms(int64_t deadline)
{
	int64_t l = (deadline - clock_mono_us()) / 1000;
	return l < 0 ? 0 : l;
}

int mitig_exec(char *const argv[], const char *input, size_t inlen, int timeout_ms,
	       struct buf *out, struct buf *err)
{
	char path[4096];
	int in[2] = { -1, -1 }, po[2] = { -1, -1 }, pe[2] = { -1, -1 };
	int status = 0, rc = M_EIO, killed = 0, reaped = 0;
	int64_t deadline = clock_mono_us() + (int64_t)timeout_ms * 1000;
	size_t sent = 0;
	pid_t pid;
	struct buf sink;

	buf_init(&sink, EXEC_OUT_MAX);
	if (find_program(argv[0], path, sizeof(path)) < 0) {
		buf_printf(err, "%s: command not found", argv[0]);
		buf_cstr(err);
		return M_ENOTFOUND;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0 ||
	    pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		buf_printf(err, "%s: pipe: %s", argv[0], strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		buf_printf(err, "%s: fork: %s", argv[0], strerror(errno));
		goto out;
	}
	if (pid == 0) {
		/* The child: only async-signal-safe calls until execve. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (dup2(in[1], 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
			_exit(127);
		close_range(3, ~0U, 0);
		execve(path, argv, environ);
		_exit(127);
	}
	close(in[1]);
	close(po[1]);
	close(pe[1]);
	in[1] = po[1] = pe[1] = -1;
	if (!input || inlen == 0) {
		shutdown(in[0], SHUT_WR);
		close(in[0]);
		in[0] = -1;
	}
	while (po[0] >= 0 || pe[0] >= 0 || in[0] >= 0) {
		struct pollfd fds[3];
		int nfds = 0, t = (int)left_ms(deadline);
		if (t == 0) {
			killed = 1;
			break;
		}
		if (in[0] >= 0)
			fds[nfds++] = (struct pollfd){ .fd = in[0], .events = POLLOUT };
		if (po[0] >= 0)
			fds[nfds++] = (struct pollfd){ .fd = po[0], .events = POLLIN };
		if (pe[0] >= 0)
			fds[nfds++] = (struct pollfd){ .fd = pe[0], .events = POLLIN };
		if (poll(fds, (nfds_t)nfds, t) < 0) {
			if (errno == EINTR)
				continue;
			killed = 1;
			break;
		}
		for (int i = 0; i < nfds; i++) {
			char chunk[4096];
			ssize_t k;
			if (!fds[i].revents)
				continue;
			if (fds[i].fd == in[0]) {
				k = send(in[0], input + sent, inlen - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
				if (k > 0)
					sent += (size_t)k;
				if ((k < 0 && errno != EAGAIN && errno != EINTR) || sent == inlen) {
					close(in[0]);
					in[0] = -1;
				}
				continue;
			}
			k = read(fds[i].fd, chunk, sizeof(chunk));
			if (k > 0) {
				struct buf *dst = fds[i].fd == po[0] ? (out ? out : &sink) : err;
				if (dst->len + (size_t)k <= EXEC_OUT_MAX)
					buf_append(dst, chunk, (size_t)k);
			} else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
				if (fds[i].fd == po[0]) {
					close(po[0]);
					po[0] = -1;
				} else {
					close(pe[0]);
					pe[0] = -1;
				}
			}
		}
	}
	/* Outputs closed (or the deadline passed): wait for the exit, still
	 * within the deadline. */
	while (!killed) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			reaped = 1;
			break;
		}
		if (w < 0 && errno != EINTR)
			break;
		if (left_ms(deadline) == 0) {
			killed = 1;
			break;
		}
		nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
	}
	if (!reaped) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (killed) {
		buf_printf(err, "%s%s: no answer within %d ms (killed)", err->len ? "; " : "",
			   argv[0], timeout_ms);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		rc = M_OK;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && err->len == 0) {
		buf_printf(err, "%s: could not be executed", argv[0]);
	} else if (err->len == 0 && (out ? out : &sink)->len) {
		/* Some tools (birdc, gobgp) say what failed on standard output. */
		struct buf *o = out ? out : &sink;
		buf_append(err, o->p, o->len < 1024 ? o->len : 1024);
	} else if (err->len == 0) {
		buf_printf(err, "%s: exit status %d", argv[0],
			   WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	buf_fini(&sink);
	while (err->len && (err->p[err->len - 1] == '\n' || err->p[err->len - 1] == ' '))
		err->len--;
	buf_cstr(err);
	if (out)
		buf_cstr(out);
	return rc;
}

int mitig_fifo_write(const char *path, const char *data, size_t len, int timeout_ms,
		     struct buf *err)
{
	int64_t deadline = clock_mono_us() + (int64_t)timeout_ms * 1000;
	sigset_t pipe_set, old;
	struct stat st;
	size_t done = 0;
	int fd = -1, rc = M_OK;

	if (stat(path, &st) < 0) {
		int e = errno;
		buf_printf(err, "%s: %s", path, strerror(e));
		buf_cstr(err);
		return M_EIO;
	}
	if (!S_ISFIFO(st.st_mode)) {
		buf_printf(err, "%s: not a FIFO", path);
		buf_cstr(err);
		return M_EIO;
	}
	/* No reader yet (ExaBGP or its helper is starting, or a helper that
	 * restarts `cat` between two writers): try again until the deadline.
	 * docs/ddos-mitigation.md has a helper that never lets go. */
	for (;;) {
		fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0)
			break;
		if (errno != ENXIO || left_ms(deadline) == 0) {
			int e = errno;
			buf_printf(err, "%s: %s", path,
				   e == ENXIO ? "nothing reads the pipe (is ExaBGP running?)" : strerror(e));
			buf_cstr(err);
			return e == ENXIO ? M_EAGAIN : M_EIO;
		}
		nanosleep(&(struct timespec){ 0, 5000000 }, NULL);
	}
	/* A reader that goes away would raise SIGPIPE: blocked here, and a
	 * pending one consumed before unblocking. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	while (done < len) {
		ssize_t k = write(fd, data + done, len - done);
		if (k > 0) {
			done += (size_t)k;
			continue;
		}
		if (k < 0 && (errno == EAGAIN || errno == EINTR) && left_ms(deadline) > 0) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			poll(&p, 1, (int)left_ms(deadline));
			continue;
		}
		buf_printf(err, "%s: write: %s", path, k < 0 ? strerror(errno) : "short write");
		buf_cstr(err);
		rc = M_EIO;
		break;
	}
	close(fd);
	{
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}
