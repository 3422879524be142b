/* Whole reads and writes on a file descriptor (see fdio.h). */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/fdio.h"

enum { FD_READ, FD_WRITE, FD_SEND };

/* One loop for the three: p is only read from for FD_WRITE and FD_SEND. */
static int fd_full(int fd, char *c, size_t n, int op)
{
	while (n) {
		ssize_t r = op == FD_READ ? read(fd, c, n) :
			    op == FD_WRITE ? write(fd, c, n) : send(fd, c, n, MSG_NOSIGNAL);

		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return -1;
		}
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

int fd_read_full(int fd, void *p, size_t n)
{
	return fd_full(fd, p, n, FD_READ);
}

int fd_write_full(int fd, const void *p, size_t n)
{
	return fd_full(fd, (char *)p, n, FD_WRITE);
}

int fd_send_full(int fd, const void *p, size_t n)
{
	return fd_full(fd, (char *)p, n, FD_SEND);
}
