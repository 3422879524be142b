/*
 * Growable buffers with a hard maximum. Growth doubles; an append that would
 * pass max fails with M_ELIMIT and leaves the buffer as it was.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"

#define BUF_DEFAULT_MAX ((size_t)256 << 20)

void buf_init(struct buf *b, size_t max)
{
	b->p = NULL;
	b->len = b->cap = 0;
	b->max = max ? max : BUF_DEFAULT_MAX;
}

void buf_fini(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > b->max || b->len > b->max - extra)
		return M_ELIMIT;
	need = b->len + extra;
	if (need <= b->cap)
		return M_OK;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	if (cap > b->max)
		cap = b->max;
	p = realloc(b->p, cap);
	if (!p)
		return M_ENOMEM;
	b->p = p;
	b->cap = cap;
	return M_OK;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	int r;

	if (n == 0)
		return M_OK;
	if (b->cap - b->len < n && (r = buf_reserve(b, n)) < 0)
		return r;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return M_OK;
}

int buf_putc(struct buf *b, char c)
{
	int r;

	if (b->len == b->cap && (r = buf_reserve(b, 1)) < 0)
		return r;
	b->p[b->len++] = c;
	return M_OK;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return M_EINVAL;
	if ((r = buf_reserve(b, (size_t)n + 1)) < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return M_OK;
}

int buf_cstr(struct buf *b)
{
	int r;

	if (b->len == b->cap && (r = buf_reserve(b, 1)) < 0)
		return r;
	b->p[b->len] = '\0';
	return M_OK;
}

/* Length of a valid UTF-8 sequence at s (max n bytes), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];

	if (c >= 0xc2 && c <= 0xdf) {
		if (n >= 2 && (s[1] & 0xc0) == 0x80)
			return 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		if (n >= 3 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80 &&
		    !(c == 0xe0 && s[1] < 0xa0) && !(c == 0xed && s[1] > 0x9f))
			return 3;
	} else if (c >= 0xf0 && c <= 0xf4) {
		if (n >= 4 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80 &&
		    (s[3] & 0xc0) == 0x80 && !(c == 0xf0 && s[1] < 0x90) &&
		    !(c == 0xf4 && s[1] > 0x8f))
			return 4;
	}
	return 0;
}

int buf_json_escape(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run;
	int r;

	/* Worst case 6 bytes per input byte; reserve lazily per run. */
	while (i < n) {
		run = i;
		while (run < n && u[run] >= 0x20 && u[run] < 0x80 &&
		       u[run] != '"' && u[run] != '\\')
			run++;
		if (run > i) {
			if ((r = buf_append(b, s + i, run - i)) < 0)
				return r;
			i = run;
			continue;
		}
		if (u[i] >= 0x80) {
			size_t k = utf8_seq(u + i, n - i);
			if (k) {
				if ((r = buf_append(b, s + i, k)) < 0)
					return r;
				i += k;
			} else {
				if ((r = buf_append(b, "\xef\xbf\xbd", 3)) < 0)
					return r;
				i++;
			}
			continue;
		}
		if ((r = buf_reserve(b, 6)) < 0)
			return r;
		switch (u[i]) {
		case '"': buf_append(b, "\\\"", 2); break;
		case '\\': buf_append(b, "\\\\", 2); break;
		case '\n': buf_append(b, "\\n", 2); break;
		case '\r': buf_append(b, "\\r", 2); break;
		case '\t': buf_append(b, "\\t", 2); break;
		default: {
			char e[6] = { '\\', 'u', '0', '0', hex[u[i] >> 4], hex[u[i] & 15] };
			buf_append(b, e, 6);
		}
		}
		i++;
	}
	return M_OK;
}
