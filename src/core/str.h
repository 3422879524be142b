/*
 * A borrowed byte slice. Values in events are slices into a batch's arena or
 * the batch's receive buffer; they are not NUL-terminated unless stated.
 */
#ifndef MAMORI_STR_H
#define MAMORI_STR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct str {
	const char *p;
	uint32_t n;
};

#define STR_LIT(s) ((struct str){ (s), (uint32_t)(sizeof(s) - 1) })

/* The value of a hexadecimal digit, -1 for any other byte. */
static inline int str_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* An ASCII letter in lower case; every other byte as it is. */
static inline unsigned char str_lower_byte(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static inline struct str str_make(const char *p, size_t n)
{
	return (struct str){ p, (uint32_t)n };
}

static inline struct str str_cstr(const char *s)
{
	return (struct str){ s, (uint32_t)strlen(s) };
}

static inline int str_eq(struct str a, struct str b)
{
	return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static inline int str_eq_cstr(struct str a, const char *b)
{
	size_t n = strlen(b);
	return a.n == n && memcmp(a.p, b, n) == 0;
}

struct arena;

/* v with ASCII letters folded to lower case: v itself when it has no upper
 * case letter (no copy), otherwise a copy in a (v again if a is full). */
struct str str_lower(struct arena *a, struct str v);

/* Parses a decimal integer (optional leading '-'); 0 or M_EPARSE. */
int str_to_i64(struct str s, int64_t *out);

#endif
