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

/* Bytes that need no escaping in a JSON string: printable ASCII other than
 * '"' and '\\'. */
static const unsigned char json_plain[256] = {
	[0x20] = 1, [0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7e] = 1,
};

/* Escapes n bytes into reserved space (6 bytes per input byte available). */
static char *json_escape_into(char *o, const unsigned char *u, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0, run;

	while (i < n) {
		run = i;
		/* Eight bytes at a time while none needs escaping (SWAR): no
		 * control byte, no '"', no '\\', no byte >= 0x80. */
		while (run + 8 <= n) {
			uint64_t x;
			memcpy(&x, u + run, 8);
			uint64_t ctl = (x - 0x2020202020202020ULL) & ~x;
			uint64_t quo = x ^ 0x2222222222222222ULL;
			uint64_t bsl = x ^ 0x5c5c5c5c5c5c5c5cULL;
			quo = (quo - 0x0101010101010101ULL) & ~quo;
			bsl = (bsl - 0x0101010101010101ULL) & ~bsl;
			if ((ctl | quo | bsl | x) & 0x8080808080808080ULL)
				break;
			run += 8;
		}
		while (run < n && json_plain[u[run]])
			run++;
		if (run > i) {
			memcpy(o, u + i, run - i);
			o += run - i;
			i = run;
			if (i == n)
				break;
		}
		if (u[i] >= 0x80) {
			size_t k = utf8_seq(u + i, n - i);
			if (k) {
				memcpy(o, u + i, k);
				o += k;
				i += k;
			} else {
				memcpy(o, "\xef\xbf\xbd", 3);
				o += 3;
				i++;
			}
			continue;
		}
		*o++ = '\\';
		switch (u[i]) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		default:
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = hex[u[i] >> 4];
			*o++ = hex[u[i] & 15];
		}
		i++;
	}
	return o;
}

int buf_json_escape(struct buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, start = b->len;
	int r;

	/* Slices of at most 64 KiB, each with its worst case (6 output bytes
	 * per input byte) reserved once, so the inner loop writes without
	 * checks and a huge value never reserves more than 384 KiB ahead. */
	while (i < n) {
		size_t k = n - i, room = (b->max - b->len) / 6;
		if (k > 65536)
			k = 65536;
		if (k > room)
			k = room;
		/* Do not split a valid UTF-8 sequence (at most 3 bytes back). */
		for (int back = 0; back < 3 && k > 1 && k < n - i &&
		     (u[i + k] & 0xc0) == 0x80; back++)
			k--;
		if (k == 0) {
			b->len = start;
			return M_ELIMIT;
		}
		if ((r = buf_reserve(b, k * 6)) < 0) {
			b->len = start;
			return r;
		}
		b->len = (size_t)(json_escape_into(b->p + b->len, u + i, k) - b->p);
		i += k;
	}
	return M_OK;
}

int buf_read_file(struct buf *b, const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	char tmp[65536];
	size_t n;
	int rc = 0;

	if (!f)
		return M_EIO;
	while (rc == 0 && (n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		rc = buf_append(b, tmp, n);
	if (rc == 0 && ferror(f))
		rc = M_EIO;
	if (f != stdin)
		fclose(f);
	return rc ? rc : buf_cstr(b);
}
