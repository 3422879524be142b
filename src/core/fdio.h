/*
 * Whole reads and writes on a file descriptor: a pipe or a file hands
 * over fewer bytes than asked, and a signal interrupts; the callers want
 * all of it or an error.
 */
#ifndef MAMORI_FDIO_H
#define MAMORI_FDIO_H

#include <stddef.h>

/* 0 when n bytes were read, -1 at an error or an early end of file. */
int fd_read_full(int fd, void *p, size_t n);

/* 0 when n bytes were written, -1 at an error (errno says which). */
int fd_write_full(int fd, const void *p, size_t n);

/* fd_write_full on a socket, with MSG_NOSIGNAL: a closed peer is an
 * error (EPIPE), not a SIGPIPE. */
int fd_send_full(int fd, const void *p, size_t n);

#endif
