/*
 * A growable byte buffer with a hard maximum (curl's dynbuf habit): appends
 * fail with M_ELIMIT instead of growing past max.
 */
#ifndef MAMORI_BUF_H
#define MAMORI_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	char *p;
	size_t len, cap, max;
};

/* Caller-owned struct; max 0 means 256 MiB. */
void buf_init(struct buf *b, size_t max);
void buf_fini(struct buf *b);
static inline void buf_reset(struct buf *b) { b->len = 0; }

int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_putc(struct buf *b, char c);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends n bytes as the inside of a JSON string (no quotes), escaping
 * control characters, quotes, backslashes and invalid UTF-8 (as U+FFFD). */
int buf_json_escape(struct buf *b, const char *s, size_t n);
/* Appends a NUL without counting it, so b->p can be used as a C string. */
int buf_cstr(struct buf *b);
/* Appends the whole file at path ("-" = standard input), then a NUL (not
 * counted): 0, M_EIO when it cannot be opened or read, M_ELIMIT past the
 * buffer's max. */
int buf_read_file(struct buf *b, const char *path);

#endif
