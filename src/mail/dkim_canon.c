/*
 * dkim_canon: header and body canonicalization (RFC 6376 3.4), simple and
 * relaxed, and the SHA-256 body hash with an l= limit.
 *
 * Why streaming for the body: a body can be 64 MiB and most messages carry
 * one or two signatures, so the canonical body is never built whole: it is
 * produced line by line into a small buffer that feeds the digest, and the
 * verifier keeps one hash per (canonicalization, l=) for all signatures.
 */
#include "mail/dkim_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int dkim_hdr_named(const struct msg_hdr *h, const char *name, size_t nlen)
{
	size_t n = h->name_len;
	while (n > 0 && (h->raw[n - 1] == ' ' || h->raw[n - 1] == '\t'))
		n--;
	return n == nlen && strncasecmp(h->raw, name, nlen) == 0;
}

int dkim_canon_header(struct dkim_buf *out, const char *raw, size_t len,
		      enum dkim_canon c, size_t cut_from, size_t cut_to, int last)
{
	char tmp[512];
	size_t tn = 0;

	if (len >= 2 && raw[len - 2] == '\r' && raw[len - 1] == '\n')
		len -= 2;
	if (cut_to > len)
		cut_to = len;
	if (c == DKIM_C_SIMPLE) {
		if (cut_from < cut_to) {
			if (dkim_buf_add(out, raw, cut_from) || dkim_buf_add(out, raw + cut_to, len - cut_to))
				return -1;
		} else if (dkim_buf_add(out, raw, len)) {
			return -1;
		}
		return last ? 0 : dkim_buf_add(out, "\r\n", 2);
	}
	const char *colon = memchr(raw, ':', len);
	size_t cpos = colon ? (size_t)(colon - raw) : len;
	for (size_t i = 0; i < cpos; i++) {
		char ch = raw[i];
		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n')
			continue;
		tmp[tn++] = (char)tolower((unsigned char)ch);
		if (tn == sizeof(tmp)) {
			if (dkim_buf_add(out, tmp, tn))
				return -1;
			tn = 0;
		}
	}
	if (dkim_buf_add(out, tmp, tn) || dkim_buf_add(out, ":", 1))
		return -1;
	tn = 0;
	int started = 0, ws = 0;
	for (size_t i = cpos + 1; i < len; i++) {
		if (i >= cut_from && i < cut_to)
			continue;
		char ch = raw[i];
		if (ch == '\r' || ch == '\n')
			continue;
		if (ch == ' ' || ch == '\t') {
			ws = started;
			continue;
		}
		if (ws) {
			tmp[tn++] = ' ';
			ws = 0;
		}
		tmp[tn++] = ch;
		started = 1;
		if (tn >= sizeof(tmp) - 1) {
			if (dkim_buf_add(out, tmp, tn))
				return -1;
			tn = 0;
		}
	}
	if (dkim_buf_add(out, tmp, tn))
		return -1;
	return last ? 0 : dkim_buf_add(out, "\r\n", 2);
}

/* The canonical body goes through this: a small buffer in front of the
 * digest that stops at the l= limit. */
struct body_out {
	EVP_MD_CTX *md;
	long long left; /* -1: no limit */
	long long total;
	size_t n;
	int err;
	unsigned char buf[8192];
};

static void bo_flush(struct body_out *o)
{
	if (o->n && !o->err && EVP_DigestUpdate(o->md, o->buf, o->n) != 1)
		o->err = 1;
	o->n = 0;
}

static void bo_put(struct body_out *o, const char *p, size_t n)
{
	if (o->left >= 0) {
		if (o->left == 0)
			return;
		if ((long long)n > o->left)
			n = (size_t)o->left;
		o->left -= (long long)n;
	}
	o->total += (long long)n;
	while (n) {
		size_t k = sizeof(o->buf) - o->n;
		if (k > n)
			k = n;
		memcpy(o->buf + o->n, p, k);
		o->n += k;
		p += k;
		n -= k;
		if (o->n == sizeof(o->buf))
			bo_flush(o);
	}
}

/* 1 when a line holds only WSP (empty once relaxed). */
static int all_wsp(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t')
			return 0;
	return 1;
}

/* One line (without its CRLF) in relaxed form: WSP runs become one SP,
 * WSP at the end goes. */
static void relaxed_line(struct body_out *o, const char *p, size_t n)
{
	size_t end = n;
	while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t'))
		end--;
	size_t i = 0;
	while (i < end) {
		size_t j = i;
		while (j < end && p[j] != ' ' && p[j] != '\t')
			j++;
		if (j > i) {
			bo_put(o, p + i, j - i);
		}
		if (j < end) {
			bo_put(o, " ", 1);
			while (j < end && (p[j] == ' ' || p[j] == '\t'))
				j++;
		}
		i = j;
	}
}

int dkim_body_sha256(const char *body, size_t len, enum dkim_canon c,
		     long long limit, unsigned char out[32])
{
	struct body_out *o = calloc(1, sizeof(*o));
	int rc = -1;

	if (!o)
		return -1;
	o->md = EVP_MD_CTX_new();
	if (!o->md || EVP_DigestInit_ex(o->md, EVP_sha256(), NULL) != 1)
		goto out;
	o->left = limit;
	size_t empty = 0; /* empty lines held back: trailing ones are dropped */
	size_t i = 0;
	while (i < len && (o->left != 0)) {
		const char *nl = NULL;
		const char *q = body + i;
		size_t rest = len - i;
		/* the next CRLF */
		while (rest >= 2) {
			const char *cr = memchr(q, '\r', rest - 1);
			if (!cr)
				break;
			if (cr[1] == '\n') {
				nl = cr;
				break;
			}
			rest -= (size_t)(cr - q) + 1;
			q = cr + 1;
		}
		size_t ll = nl ? (size_t)(nl - (body + i)) : len - i;
		int is_empty = c == DKIM_C_RELAXED ? all_wsp(body + i, ll) : ll == 0;
		if (is_empty && nl) {
			empty++;
		} else if (!is_empty) {
			for (; empty > 0 && o->left != 0; empty--)
				bo_put(o, "\r\n", 2);
			empty = 0;
			if (c == DKIM_C_RELAXED)
				relaxed_line(o, body + i, ll);
			else
				bo_put(o, body + i, ll);
			bo_put(o, "\r\n", 2);
		}
		i += ll + (nl ? 2 : 0);
	}
	if (o->total == 0 && c == DKIM_C_SIMPLE)
		bo_put(o, "\r\n", 2);
	bo_flush(o);
	if (o->err)
		goto out;
	unsigned int dl = 0;
	if (EVP_DigestFinal_ex(o->md, out, &dl) != 1)
		goto out;
	rc = (limit >= 0 && o->left > 0) ? 1 : 0;
out:
	EVP_MD_CTX_free(o->md);
	free(o);
	return rc;
}
