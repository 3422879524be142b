/*
 * mime_decode: the byte-level decoders MIME needs — base64, quoted-printable,
 * RFC 2047 encoded words, RFC 2231 parameters — and charset conversion to
 * UTF-8. Why apart from mime.c: these are small pure functions that the
 * address parser and other engines reuse, and each is tested on its own.
 *
 * Every output buffer is sized from its input before the first byte is
 * written (worst case: 4 bytes of UTF-8 per input byte), so no decoder grows
 * memory while it runs and none writes past what it was given.
 */
#include "mail/mime.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/str.h"

#define PARAM_MAX_SECTIONS 64  /* RFC 2231 continuations kept per name */
#define CHARSET_MAX 40

/* ---- base64 and quoted-printable ---- */

static const signed char b64_val[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
	['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
	['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
	['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
	['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
	['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
	['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
	['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
	['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54,
	['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60,
	['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
	/* the table holds value + 1 so that 0 means "not in the alphabet" */
};

size_t mime_b64_decode(const char *in, size_t n, unsigned char *out,
		       size_t cap, int *trunc, size_t *bad)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0, junk = 0;

	*trunc = 0;
	for (size_t i = 0; i < n; i++) {
		/* fast path: four alphabet bytes on a quantum boundary */
		if (bits == 0 && i + 4 <= n && cap - o >= 3) {
			int a0 = b64_val[(unsigned char)in[i]];
			int a1 = b64_val[(unsigned char)in[i + 1]];
			int a2 = b64_val[(unsigned char)in[i + 2]];
			int a3 = b64_val[(unsigned char)in[i + 3]];
			if (a0 && a1 && a2 && a3) {
				uint32_t q = (uint32_t)(a0 - 1) << 18 |
					     (uint32_t)(a1 - 1) << 12 |
					     (uint32_t)(a2 - 1) << 6 | (uint32_t)(a3 - 1);
				out[o++] = (unsigned char)(q >> 16);
				out[o++] = (unsigned char)(q >> 8);
				out[o++] = (unsigned char)q;
				i += 3;
				continue;
			}
		}
		unsigned char c = (unsigned char)in[i];
		int v = b64_val[c];
		if (!v) {
			if (c != '=' && c != '\r' && c != '\n' && c != ' ' &&
			    c != '\t')
				junk++;
			continue;
		}
		acc = (acc << 6) | (uint32_t)(v - 1);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == cap) {
				*trunc = 1;
				break;
			}
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (bad)
		*bad = junk;
	return o;
}

size_t mime_qp_decode(const char *in, size_t n, unsigned char *out,
		      size_t cap, int *trunc, size_t *bad)
{
	size_t o = 0, junk = 0;

	*trunc = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '=') {
			/* soft line break: '=' then optional blanks then
			 * CRLF or LF */
			size_t j = i + 1;
			while (j < n && (in[j] == ' ' || in[j] == '\t'))
				j++;
			if (j < n && in[j] == '\r' && j + 1 < n &&
			    in[j + 1] == '\n') {
				i = j + 1;
				continue;
			}
			if (j < n && in[j] == '\n') {
				i = j;
				continue;
			}
			if (j == n) {
				i = j;
				continue;
			}
			if (i + 2 < n + 0 && str_hexval((unsigned char)in[i + 1]) >= 0 &&
			    str_hexval((unsigned char)in[i + 2]) >= 0) {
				c = (unsigned char)(str_hexval((unsigned char)in[i + 1]) * 16 +
						    str_hexval((unsigned char)in[i + 2]));
				i += 2;
			} else {
				junk++; /* a lone '=' is kept as written */
			}
		}
		if (o == cap) {
			*trunc = 1;
			break;
		}
		out[o++] = c;
	}
	if (bad)
		*bad = junk;
	return o;
}

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at p, or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && p[1] < 0xa0)
			return 0;
		if (c == 0xed && p[1] >= 0xa0)
			return 0; /* surrogates */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		if (c == 0xf0 && p[1] < 0x90)
			return 0;
		if (c == 0xf4 && p[1] >= 0x90)
			return 0;
		return 4;
	}
	return 0;
}

/* A bounded output: cap is fixed when it is made; writes past it are
 * dropped (sizes are computed so that this does not happen). */
struct sink {
	char *p;
	size_t n, cap;
};

static void sink_put(struct sink *s, const void *p, size_t n)
{
	if (n > s->cap - s->n)
		n = s->cap - s->n;
	memcpy(s->p + s->n, p, n);
	s->n += n;
}

/* UTF-8 as is, each invalid byte as U+FFFD; NUL as U+FFFD too so the result
 * is a C string. At most 3 bytes out per byte in. */
static void sink_utf8(struct sink *s, const unsigned char *p, size_t n)
{
	static const char repl[3] = {(char)0xef, (char)0xbf, (char)0xbd};
	size_t i = 0;
	while (i < n) {
		size_t run = i;
		while (run < n && p[run] && p[run] < 0x80)
			run++;
		if (run > i) {
			sink_put(s, p + i, run - i);
			i = run;
			continue;
		}
		size_t k = p[i] ? utf8_seq(p + i, n - i) : 0;
		if (k) {
			sink_put(s, p + i, k);
			i += k;
		} else {
			sink_put(s, repl, 3);
			i++;
		}
	}
}

static void sink_latin1(struct sink *s, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		if (c && c < 0x80) {
			char ch = (char)c;
			sink_put(s, &ch, 1);
		} else if (!c) {
			sink_utf8(s, p + i, 1);
		} else {
			char two[2] = {(char)(0xc0 | (c >> 6)),
				       (char)(0x80 | (c & 0x3f))};
			sink_put(s, two, 2);
		}
	}
}

static int cs_is(const char *cs, const char *name)
{
	return strcasecmp(cs, name) == 0;
}

/* Converts through iconv; a byte iconv refuses becomes U+FFFD. Returns -1
 * when the charset is unknown to iconv. */
static int sink_iconv(struct sink *s, const char *cs, const unsigned char *p,
		      size_t n)
{
	iconv_t cd = iconv_open("UTF-8", cs);
	if (cd == (iconv_t)-1)
		return -1;
	char *in = (char *)(uintptr_t)p;
	size_t inleft = n;
	size_t guard = 0;
	while (inleft > 0 && guard++ < n + 4) {
		char *o = s->p + s->n;
		size_t oleft = s->cap - s->n;
		size_t r = iconv(cd, &in, &inleft, &o, &oleft);
		s->n = (size_t)(o - s->p);
		if (r != (size_t)-1)
			break;
		if (errno == E2BIG)
			break;
		/* EILSEQ or EINVAL: replace one byte and go on */
		sink_utf8(s, (const unsigned char *)"\xff", 1);
		in++;
		inleft--;
	}
	iconv_close(cd);
	return 0;
}

static void sink_charset(struct sink *s, const char *cs, const unsigned char *p,
			 size_t n)
{
	if (!cs || !*cs || cs_is(cs, "utf-8") || cs_is(cs, "utf8") ||
	    cs_is(cs, "us-ascii") || cs_is(cs, "ascii")) {
		sink_utf8(s, p, n);
		return;
	}
	if (cs_is(cs, "iso-8859-1") || cs_is(cs, "latin1") ||
	    cs_is(cs, "iso8859-1")) {
		sink_latin1(s, p, n);
		return;
	}
	size_t before = s->n;
	if (sink_iconv(s, cs, p, n) < 0) {
		s->n = before;
		sink_utf8(s, p, n);
		return;
	}
	/* iconv may pass NULs or, for a broken stateful charset, odd bytes:
	 * keep the output a valid C string of UTF-8 */
	for (size_t i = before; i < s->n; i++)
		if (!s->p[i])
			s->p[i] = '?';
}

char *mime_to_utf8(struct arena *a, const char *cs, const char *p, size_t n,
		   size_t *outlen)
{
	if (n > (SIZE_MAX - 8) / 4)
		return NULL;
	struct sink s = {arena_alloc(a, n * 4 + 8), 0, n * 4 + 4};
	if (!s.p)
		return NULL;
	sink_charset(&s, cs, (const unsigned char *)p, n);
	s.p[s.n] = '\0';
	if (outlen)
		*outlen = s.n;
	return s.p;
}

/* ---- RFC 2047 encoded words ---- */

/* Parses "=?cs?e?text?=" at p; on success fills the pieces and returns the
 * word's length, else 0. */
static size_t ew_parse(const char *p, size_t n, char *cs, size_t cscap,
		       char *enc, const char **text, size_t *tlen)
{
	if (n < 8 || p[0] != '=' || p[1] != '?')
		return 0;
	size_t i = 2, k = 0;
	while (i < n && p[i] != '?' && k + 1 < cscap) {
		unsigned char c = (unsigned char)p[i];
		if (c <= ' ' || c >= 0x7f)
			return 0;
		cs[k++] = p[i++];
	}
	cs[k] = '\0';
	if (i >= n || p[i] != '?' || k == 0)
		return 0;
	char *star = strchr(cs, '*'); /* RFC 2231 language suffix */
	if (star)
		*star = '\0';
	i++;
	if (i + 1 >= n || p[i + 1] != '?')
		return 0;
	*enc = p[i];
	if (*enc != 'B' && *enc != 'b' && *enc != 'Q' && *enc != 'q')
		return 0;
	i += 2;
	size_t start = i;
	while (i + 1 < n && !(p[i] == '?' && p[i + 1] == '=')) {
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')
			return 0;
		i++;
	}
	if (i + 1 >= n)
		return 0;
	*text = p + start;
	*tlen = i - start;
	return i + 2;
}

/* Q encoding: '_' is a space, =XX a byte. */
static size_t q_decode(const char *in, size_t n, unsigned char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '_') {
			out[o++] = ' ';
		} else if (in[i] == '=' && i + 2 < n + 0 &&
			   str_hexval((unsigned char)in[i + 1]) >= 0 &&
			   str_hexval((unsigned char)in[i + 2]) >= 0) {
			out[o++] = (unsigned char)(str_hexval((unsigned char)in[i + 1]) * 16 +
						   str_hexval((unsigned char)in[i + 2]));
			i += 2;
		} else {
			out[o++] = (unsigned char)in[i];
		}
	}
	return o;
}

char *mime_decode_words(struct arena *a, const char *p, size_t n)
{
	if (n > (SIZE_MAX - 8) / 4)
		return NULL;
	struct sink s = {arena_alloc(a, n * 4 + 8), 0, n * 4 + 4};
	/* scratch for one word's bytes; a word is shorter than the input */
	unsigned char *tmp = arena_alloc(a, n + 1);
	if (!s.p || !tmp)
		return NULL;
	size_t i = 0, lit = 0;
	int prev_word = 0;      /* the last thing emitted was an encoded word */
	size_t ws_start = 0;    /* start of blanks after that word */

	while (i < n) {
		char cs[CHARSET_MAX], enc;
		const char *text;
		size_t tlen, wl;
		if (p[i] == '=' && i + 1 < n && p[i + 1] == '?' &&
		    (wl = ew_parse(p + i, n - i, cs, sizeof(cs), &enc, &text,
				   &tlen)) > 0) {
			/* literal text before the word, unless it is only the
			 * blanks between two words */
			int only_ws = prev_word;
			for (size_t j = ws_start; only_ws && j < i; j++)
				if (p[j] != ' ' && p[j] != '\t' && p[j] != '\r' &&
				    p[j] != '\n')
					only_ws = 0;
			if (!only_ws)
				sink_utf8(&s, (const unsigned char *)p + lit, i - lit);
			size_t dl;
			if (enc == 'B' || enc == 'b') {
				int tr;
				dl = mime_b64_decode(text, tlen, tmp, n, &tr, NULL);
			} else {
				dl = q_decode(text, tlen, tmp);
			}
			sink_charset(&s, cs, tmp, dl);
			i += wl;
			lit = i;
			ws_start = i;
			prev_word = 1;
			continue;
		}
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			prev_word = 0;
		i++;
	}
	sink_utf8(&s, (const unsigned char *)p + lit, n - lit);
	s.p[s.n] = '\0';
	return s.p;
}

/* ---- RFC 2045 / RFC 2231 parameters ---- */

struct section {
	const char *p;
	size_t n;
	int ext;     /* percent-encoded (the name ended in '*') */
	int quoted;  /* p is a quoted-string's inside, escapes not yet removed */
};

static size_t skip_cfws(const char *v, size_t i, size_t n)
{
	int depth = 0;
	size_t guard = 0;
	while (i < n && guard++ < n + 1) {
		char c = v[i];
		if (depth) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '(' && depth < 32)
				depth++;
			else if (c == ')')
				depth--;
			i++;
			continue;
		}
		if (c == '(') {
			depth = 1;
			i++;
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			i++;
		} else {
			break;
		}
	}
	return i;
}

/* Copies a quoted-string's inside without its backslashes. */
static size_t unquote(const char *p, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\' && i + 1 < n)
			i++;
		out[o++] = p[i];
	}
	return o;
}

static size_t pct_decode(const char *p, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '%' && i + 2 < n + 0 &&
		    str_hexval((unsigned char)p[i + 1]) >= 0 &&
		    str_hexval((unsigned char)p[i + 2]) >= 0) {
			out[o++] = (char)(str_hexval((unsigned char)p[i + 1]) * 16 +
					  str_hexval((unsigned char)p[i + 2]));
			i += 2;
		} else {
			out[o++] = p[i];
		}
	}
	return o;
}

/* Parses one parameter at v[i]: the attribute and the value's bytes.
 * Returns the index after it (after the ';'), or n. */
static size_t param_next(const char *v, size_t i, size_t n, const char **an,
			 size_t *al, const char **vp, size_t *vl, int *quoted)
{
	i = skip_cfws(v, i, n);
	*an = v + i;
	while (i < n && v[i] != '=' && v[i] != ';' && v[i] != ' ' && v[i] != '\t')
		i++;
	*al = (size_t)(v + i - *an);
	i = skip_cfws(v, i, n);
	*vp = v + i;
	*vl = 0;
	*quoted = 0;
	if (i >= n || v[i] != '=') {
		while (i < n && v[i] != ';')
			i++;
		return i < n ? i + 1 : n;
	}
	i = skip_cfws(v, i + 1, n);
	if (i < n && v[i] == '"') {
		size_t s = ++i;
		while (i < n && v[i] != '"') {
			if (v[i] == '\\' && i + 1 < n)
				i++;
			i++;
		}
		*vp = v + s;
		*vl = (i < n ? i : n) - s;
		*quoted = 1;
		if (i < n)
			i++;
	} else {
		size_t s = i;
		while (i < n && v[i] != ';' && v[i] != ' ' && v[i] != '\t' &&
		       v[i] != '\r' && v[i] != '\n')
			i++;
		*vp = v + s;
		*vl = i - s;
	}
	while (i < n && v[i] != ';')
		i++;
	return i < n ? i + 1 : n;
}

char *mime_param(struct arena *a, const char *v, size_t n, const char *name)
{
	size_t nl = strlen(name);
	struct section sec[PARAM_MAX_SECTIONS];
	unsigned have = 0; /* sections seen, as a count of the contiguous run */
	int any_sec = 0;
	const char *plain = NULL;
	size_t plain_n = 0;
	int plain_q = 0;
	size_t i = 0;

	memset(sec, 0, sizeof(sec));
	/* skip the leading "type/subtype" or disposition token */
	while (i < n && v[i] != ';') {
		if (v[i] == '"') { /* a quoted ';' does not end it */
			i++;
			while (i < n && v[i] != '"')
				i++;
		}
		if (i < n)
			i++;
	}
	if (i < n)
		i++;
	for (unsigned guard = 0; i < n && guard < 1024; guard++) {
		const char *an, *vp;
		size_t al, vl;
		int q;
		i = param_next(v, i, n, &an, &al, &vp, &vl, &q);
		if (al < nl || strncasecmp(an, name, nl) != 0)
			continue;
		if (al == nl) {
			if (!plain) {
				plain = vp;
				plain_n = vl;
				plain_q = q;
			}
			continue;
		}
		if (an[nl] != '*')
			continue;
		/* name*  |  name*N  |  name*N* */
		const char *r = an + nl + 1;
		size_t rl = al - nl - 1;
		unsigned idx = 0;
		int ext = 0;
		if (rl == 0) {
			ext = 1;
		} else {
			size_t d = 0;
			while (d < rl && r[d] >= '0' && r[d] <= '9' && d < 4)
				idx = idx * 10 + (unsigned)(r[d++] - '0');
			if (d == 0)
				continue;
			if (d < rl) {
				if (r[d] != '*' || d + 1 != rl)
					continue;
				ext = 1;
			}
		}
		if (idx >= PARAM_MAX_SECTIONS || sec[idx].p)
			continue;
		sec[idx] = (struct section){vp, vl, ext, q};
		any_sec = 1;
	}
	if (any_sec) {
		size_t total = 0;
		while (have < PARAM_MAX_SECTIONS && sec[have].p)
			total += sec[have++].n;
		if (have == 0)
			any_sec = 0;
		else {
			char *raw = arena_alloc(a, total + 1);
			if (!raw)
				return NULL;
			size_t o = 0;
			char cs[CHARSET_MAX] = "";
			for (unsigned k = 0; k < have; k++) {
				const char *p = sec[k].p;
				size_t pl = sec[k].n;
				char *tmp = raw + o;
				if (sec[k].quoted) {
					pl = unquote(p, pl, tmp);
					p = tmp;
				}
				if (k == 0 && sec[k].ext) {
					/* charset'language'value */
					const char *q1 = memchr(p, '\'', pl);
					const char *q2 = q1 ? memchr(q1 + 1, '\'',
								     (size_t)(p + pl - q1 - 1))
							    : NULL;
					if (q1 && q2) {
						size_t cl = (size_t)(q1 - p);
						if (cl >= sizeof(cs))
							cl = sizeof(cs) - 1;
						memcpy(cs, p, cl);
						cs[cl] = '\0';
						size_t skip = (size_t)(q2 + 1 - p);
						p += skip;
						pl -= skip;
					}
				}
				/* decode in place: output never longer */
				if (sec[k].ext)
					o += pct_decode(p, pl, raw + o);
				else {
					memmove(raw + o, p, pl);
					o += pl;
				}
			}
			return mime_to_utf8(a, cs, raw, o, NULL);
		}
	}
	if (!plain)
		return NULL;
	char *tmp = arena_alloc(a, plain_n + 1);
	if (!tmp)
		return NULL;
	size_t tl = plain_q ? unquote(plain, plain_n, tmp) : plain_n;
	if (!plain_q)
		memcpy(tmp, plain, plain_n);
	return mime_decode_words(a, tmp, tl);
}
