/*
 * dkim_tags: the tag=value lists of DKIM-Signature, ARC-Seal,
 * ARC-Message-Signature and DKIM key records (RFC 6376 3.2), base64 with
 * folding whitespace, and the small growable buffer the engines build
 * canonical data in.
 *
 * Why strict: a tag list is hostile input and a signature over a list we
 * misread is worthless, so a duplicate tag, a tag without '=' or a bad tag
 * name rejects the whole list (the caller turns that into permerror, or a
 * failed chain for ARC). Values are kept as pointers into the text.
 */
#include "mail/dkim_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int dkim_tags_parse(const char *s, size_t len, struct dkim_tags *out)
{
	size_t i = 0;

	out->n = 0;
	while (i < len) {
		while (i < len && is_fws(s[i]))
			i++;
		if (i == len)
			break; /* a trailing ';' then FWS */
		size_t ns = i;
		if (!isalpha((unsigned char)s[i]))
			return -1;
		while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '_'))
			i++;
		size_t ne = i;
		while (i < len && is_fws(s[i]))
			i++;
		if (i == len || s[i] != '=')
			return -1;
		i++;
		while (i < len && is_fws(s[i]))
			i++;
		size_t vs = i;
		while (i < len && s[i] != ';')
			i++;
		size_t ve = i;
		while (ve > vs && is_fws(s[ve - 1]))
			ve--;
		if (i < len)
			i++; /* the ';' */
		for (size_t k = 0; k < out->n; k++)
			if (out->t[k].nlen == ne - ns && memcmp(out->t[k].name, s + ns, ne - ns) == 0)
				return -1;
		if (out->n == DKIM_MAX_TAGS)
			return -1;
		struct dkim_tag *t = &out->t[out->n++];
		t->name = s + ns;
		t->nlen = ne - ns;
		t->val = s + vs;
		t->vlen = ve - vs;
	}
	return 0;
}

const struct dkim_tag *dkim_tags_get(const struct dkim_tags *t, const char *name)
{
	size_t n = strlen(name);
	for (size_t k = 0; k < t->n; k++)
		if (t->t[k].nlen == n && memcmp(t->t[k].name, name, n) == 0)
			return &t->t[k];
	return NULL;
}

int dkim_tag_eq(const struct dkim_tag *t, const char *lit)
{
	size_t n = strlen(lit);
	return t && t->vlen == n && strncasecmp(t->val, lit, n) == 0;
}

int dkim_tag_copy_nows(const struct dkim_tag *t, char *dst, size_t cap)
{
	size_t n = 0;
	for (size_t k = 0; k < t->vlen; k++) {
		if (is_fws(t->val[k]))
			continue;
		if (n + 1 >= cap)
			return -1;
		dst[n++] = t->val[k];
	}
	dst[n] = '\0';
	return 0;
}

int dkim_tag_num(const struct dkim_tag *t, long long *v)
{
	if (!t || t->vlen == 0 || t->vlen > 15)
		return -1;
	long long x = 0;
	for (size_t k = 0; k < t->vlen; k++) {
		if (!isdigit((unsigned char)t->val[k]))
			return -1;
		x = x * 10 + (t->val[k] - '0');
	}
	*v = x;
	return 0;
}

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int dkim_b64_decode(const char *s, size_t len, unsigned char *out, size_t cap, size_t *out_len)
{
	unsigned acc = 0, bits = 0, pad = 0;
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_fws((char)c))
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		int v = b64_val(c);
		if (v < 0 || pad)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == cap)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (pad > 2)
		return -1;
	*out_len = n;
	return 0;
}

int dkim_buf_add(struct dkim_buf *b, const void *p, size_t n)
{
	if (n > DKIM_BUF_MAX || b->n + n > DKIM_BUF_MAX)
		return -1;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *q = realloc(b->p, cap);
		if (!q)
			return -1;
		b->p = q;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = '\0';
	return 0;
}

int dkim_buf_str(struct dkim_buf *b, const char *s)
{
	return dkim_buf_add(b, s, strlen(s));
}

void dkim_buf_fini(struct dkim_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
}
