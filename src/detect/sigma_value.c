/*
 * Sigma field items: `Field|mod|mod: value(s)` into predicates. Why here and
 * not at match time: every modifier (wildcards and escapes, contains /
 * startswith / endswith, wide / utf16, base64 / base64offset, windash,
 * expand, re with i/m/s, cidr, gt/gte/lt/lte, exists, fieldref, cased, all)
 * is resolved once into a pattern in one regex dialect that both Hyperscan
 * and PCRE2 accept, so matching never looks at a modifier again. The one
 * match-time part, at the end, splits a multi-valued (JSON array) field
 * value into its elements.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "detect/sigma_int.h"

/* A Sigma string: bytes, each either literal or a wildcard. */
enum { W_LIT = 0, W_STAR, W_ONE };

struct sstr {
	uint8_t *b;
	uint8_t *w;
	size_t n, cap;
};

struct sstr_list {
	struct sstr *v;
	size_t n, cap;
};

enum mod_op { OP_EQ, OP_CONTAINS, OP_STARTS, OP_ENDS };

struct mods {
	enum mod_op op;
	int all, re, re_i, re_m, re_s, cidr, exists, fieldref, cased, expand;
	int num;                      /* SP_LT.. or 0 */
	/* Encoding transforms in rule order. */
	uint8_t xf[8];
	size_t n_xf;
};

enum { XF_WIDE = 1, XF_UTF16BE, XF_UTF16, XF_B64, XF_B64OFF, XF_WINDASH };

static void sstr_fini(struct sstr *s)
{
	free(s->b);
	free(s->w);
	memset(s, 0, sizeof(*s));
}

static void list_fini(struct sstr_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		sstr_fini(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int sstr_put(struct sstr *s, uint8_t byte, uint8_t wild)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint8_t *nb, *nw;

		if (cap > SIGMA_MAX_VALUE_LEN * 4)
			return M_ELIMIT;
		nb = realloc(s->b, cap);
		if (!nb)
			return M_ENOMEM;
		s->b = nb;
		nw = realloc(s->w, cap);
		if (!nw)
			return M_ENOMEM;
		s->w = nw;
		s->cap = cap;
	}
	s->b[s->n] = byte;
	s->w[s->n++] = wild;
	return 0;
}

static int list_push(struct sstr_list *l, struct sstr *s)
{
	if (l->n >= SIGMA_MAX_VARIANTS) {
		sstr_fini(s);
		return M_ELIMIT;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;
		struct sstr *nv = realloc(l->v, cap * sizeof(*nv));

		if (!nv) {
			sstr_fini(s);
			return M_ENOMEM;
		}
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n++] = *s;
	memset(s, 0, sizeof(*s));
	return 0;
}

/* Sigma escapes: \* and \? are literal, \\ is one backslash, any other
 * backslash is itself; unescaped * and ? are wildcards. */
static int sstr_parse(const char *v, size_t len, int plain, struct sstr *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)v[i];
		int r;

		if (!plain && c == '\\' && i + 1 < len &&
		    (v[i + 1] == '*' || v[i + 1] == '?' || v[i + 1] == '\\')) {
			r = sstr_put(out, (uint8_t)v[++i], W_LIT);
		} else if (!plain && c == '*') {
			r = sstr_put(out, '*', W_STAR);
		} else if (!plain && c == '?') {
			r = sstr_put(out, '?', W_ONE);
		} else {
			r = sstr_put(out, c, W_LIT);
		}
		if (r < 0) {
			sstr_fini(out);
			return r;
		}
	}
	return 0;
}

static int sstr_has_wild(const struct sstr *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->w[i] != W_LIT)
			return 1;
	return 0;
}

/* Decodes one UTF-8 code point (invalid bytes stand for themselves). */
static uint32_t utf8_next(const uint8_t *p, size_t n, size_t *adv)
{
	uint32_t c = p[0];
	size_t need = 0;

	if (c >= 0xf0 && c < 0xf8) {
		need = 3;
		c &= 0x07;
	} else if (c >= 0xe0) {
		need = c < 0xf0 ? 2 : 0;
		c &= 0x0f;
	} else if (c >= 0xc0) {
		need = 1;
		c &= 0x1f;
	}
	if (p[0] < 0x80 || need == 0 || need >= n) {
		*adv = 1;
		return p[0];
	}
	for (size_t i = 1; i <= need; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			*adv = 1;
			return p[0];
		}
		c = (c << 6) | (p[i] & 0x3f);
	}
	*adv = need + 1;
	return c;
}

static int put_u16(struct sstr *o, uint32_t u, int be)
{
	int r;

	if (be) {
		r = sstr_put(o, (uint8_t)(u >> 8), W_LIT);
		return r < 0 ? r : sstr_put(o, (uint8_t)u, W_LIT);
	}
	r = sstr_put(o, (uint8_t)u, W_LIT);
	return r < 0 ? r : sstr_put(o, (uint8_t)(u >> 8), W_LIT);
}

/* UTF-16 (LE, BE, or LE with a byte-order mark) of the literal runs;
 * wildcards stay wildcards. */
static int xf_utf16(const struct sstr *in, int be, int bom, struct sstr *o)
{
	int r = 0;

	memset(o, 0, sizeof(*o));
	if (bom)
		r = put_u16(o, 0xfeff, be);
	for (size_t i = 0; r == 0 && i < in->n;) {
		size_t adv = 1;
		uint32_t c;

		if (in->w[i] != W_LIT) {
			r = sstr_put(o, in->b[i], in->w[i]);
			i++;
			continue;
		}
		/* A code point never spans a wildcard. */
		size_t run = 0;
		while (i + run < in->n && in->w[i + run] == W_LIT)
			run++;
		c = utf8_next(in->b + i, run, &adv);
		i += adv;
		if (c >= 0x10000) {
			c -= 0x10000;
			r = put_u16(o, 0xd800 + (c >> 10), be);
			if (r == 0)
				r = put_u16(o, 0xdc00 + (c & 0x3ff), be);
		} else {
			r = put_u16(o, c, be);
		}
	}
	if (r < 0)
		sstr_fini(o);
	return r;
}

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_encode(const uint8_t *in, size_t n, struct sstr *o)
{
	int r = 0;

	memset(o, 0, sizeof(*o));
	for (size_t i = 0; r == 0 && i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (left > 2)
			v |= in[i + 2];
		r = sstr_put(o, (uint8_t)b64chars[(v >> 18) & 63], W_LIT);
		if (r == 0)
			r = sstr_put(o, (uint8_t)b64chars[(v >> 12) & 63], W_LIT);
		if (r == 0)
			r = sstr_put(o, left > 1 ? (uint8_t)b64chars[(v >> 6) & 63] : '=', W_LIT);
		if (r == 0)
			r = sstr_put(o, left > 2 ? (uint8_t)b64chars[v & 63] : '=', W_LIT);
	}
	if (r < 0)
		sstr_fini(o);
	return r;
}

/* base64offset: the value may sit at any of three offsets inside a longer
 * encoded text; each variant keeps only the characters that do not depend
 * on the neighbours (as the Sigma reference implementation does). */
static int xf_b64off(const struct sstr *in, struct sstr_list *out)
{
	static const size_t start[3] = { 0, 2, 3 };
	static const size_t trim[3] = { 0, 3, 2 };

	for (size_t i = 0; i < 3; i++) {
		uint8_t *tmp = malloc(in->n + 3);
		struct sstr enc, cut;
		size_t end;
		int r;

		if (!tmp)
			return M_ENOMEM;
		memset(tmp, ' ', i);
		if (in->n)
			memcpy(tmp + i, in->b, in->n);
		r = b64_encode(tmp, in->n + i, &enc);
		free(tmp);
		if (r < 0)
			return r;
		end = enc.n - trim[(in->n + i) % 3];
		memset(&cut, 0, sizeof(cut));
		for (size_t k = start[i]; r == 0 && k < end; k++)
			r = sstr_put(&cut, enc.b[k], W_LIT);
		sstr_fini(&enc);
		if (r == 0)
			r = list_push(out, &cut);
		else
			sstr_fini(&cut);
		if (r < 0)
			return r;
	}
	return 0;
}

/* windash: a '-' or '/' that starts a word (after a non-word byte or at the
 * start, before a word byte) may be written with any of five dashes. All
 * combinations, as the reference implementation expands them. */
static const char *const dashes[] = { "-", "/", "\xe2\x80\x93", "\xe2\x80\x94",
				      "\xe2\x80\x95" };

static int is_word(uint8_t c)
{
	return isalnum(c) || c == '_';
}

static int xf_windash(const struct sstr *in, struct sstr_list *out)
{
	size_t pos[8], np = 0, combos = 1;

	for (size_t i = 0; i < in->n; i++) {
		if (in->w[i] != W_LIT || (in->b[i] != '-' && in->b[i] != '/'))
			continue;
		if (i > 0 && in->w[i - 1] == W_LIT && is_word(in->b[i - 1]))
			continue;
		if (i + 1 >= in->n || in->w[i + 1] != W_LIT || !is_word(in->b[i + 1]))
			continue;
		if (np == 4)
			return M_ELIMIT;  /* 5^4 variants at most */
		pos[np++] = i;
	}
	for (size_t k = 0; k < np; k++)
		combos *= 5;
	for (size_t c = 0; c < combos; c++) {
		struct sstr v;
		size_t sel = c, k = 0;
		int r = 0;

		memset(&v, 0, sizeof(v));
		for (size_t i = 0; r == 0 && i < in->n; i++) {
			if (k < np && pos[k] == i) {
				const char *d = dashes[sel % 5];
				sel /= 5;
				k++;
				for (; r == 0 && *d; d++)
					r = sstr_put(&v, (uint8_t)*d, W_LIT);
			} else {
				r = sstr_put(&v, in->b[i], in->w[i]);
			}
		}
		if (r == 0)
			r = list_push(out, &v);
		else
			sstr_fini(&v);
		if (r < 0)
			return r;
	}
	return 0;
}

static int sstr_copy(const struct sstr *in, struct sstr *o)
{
	memset(o, 0, sizeof(*o));
	for (size_t i = 0; i < in->n; i++) {
		int r = sstr_put(o, in->b[i], in->w[i]);
		if (r < 0) {
			sstr_fini(o);
			return r;
		}
	}
	return 0;
}

/* Applies one transform to every string of the list. */
static int apply_xf(uint8_t xf, struct sstr_list *l, struct buf *why)
{
	struct sstr_list out = { 0 };
	int r = 0;

	for (size_t i = 0; r == 0 && i < l->n; i++) {
		struct sstr t;

		switch (xf) {
		case XF_WIDE:
		case XF_UTF16BE:
		case XF_UTF16:
			r = xf_utf16(&l->v[i], xf == XF_UTF16BE, xf == XF_UTF16, &t);
			if (r == 0)
				r = list_push(&out, &t);
			break;
		case XF_B64:
		case XF_B64OFF:
			if (sstr_has_wild(&l->v[i])) {
				buf_printf(why, "base64 of a value with wildcards");
				r = M_EUNSUPP;
				break;
			}
			if (xf == XF_B64) {
				r = b64_encode(l->v[i].b, l->v[i].n, &t);
				if (r == 0)
					r = list_push(&out, &t);
			} else {
				r = xf_b64off(&l->v[i], &out);
			}
			break;
		case XF_WINDASH:
			r = xf_windash(&l->v[i], &out);
			break;
		default:
			r = sstr_copy(&l->v[i], &t);
			if (r == 0)
				r = list_push(&out, &t);
		}
	}
	list_fini(l);
	if (r < 0) {
		list_fini(&out);
		if (r == M_ELIMIT && !why->len)
			buf_printf(why, "value expands to more than %u variants",
				   SIGMA_MAX_VARIANTS);
		return r;
	}
	*l = out;
	return 0;
}

/* The expression for one string: literal bytes escaped, wildcards as
 * `.*` / `.`, anchored by the operator. */
static int to_regex(const struct sstr *s, enum mod_op op, struct buf *re)
{
	static const char hex[] = "0123456789abcdef";
	size_t lo = 0, hi = s->n;

	buf_reset(re);
	/* Leading/trailing stars make anchors moot; drop both for a cheaper
	 * unanchored pattern. */
	int lead = 0, trail = 0;
	while (lo < hi && s->w[lo] == W_STAR) {
		lo++;
		lead = 1;
	}
	while (hi > lo && s->w[hi - 1] == W_STAR) {
		hi--;
		trail = 1;
	}
	if (!lead && (op == OP_EQ || op == OP_STARTS))
		buf_puts(re, "\\A");
	for (size_t i = lo; i < hi; i++) {
		uint8_t c = s->b[i];

		if (s->w[i] == W_STAR) {
			buf_puts(re, ".*");
		} else if (s->w[i] == W_ONE) {
			buf_putc(re, '.');
		} else if (isalnum(c) || c == '_' || c == ' ') {
			buf_putc(re, (char)c);
		} else {
			char e[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
			buf_append(re, e, 4);
		}
	}
	if (!trail && (op == OP_EQ || op == OP_ENDS))
		buf_puts(re, "\\z");
	return buf_cstr(re);
}

static int parse_mods(const char *key, char *field, size_t fsz, struct mods *m,
		      struct buf *why)
{
	const char *bar = strchr(key, '|');
	size_t fl = bar ? (size_t)(bar - key) : strlen(key);

	memset(m, 0, sizeof(*m));
	if (fl >= fsz) {
		buf_printf(why, "field name too long");
		return M_ELIMIT;
	}
	memcpy(field, key, fl);
	field[fl] = '\0';
	while (bar) {
		const char *s = bar + 1;
		size_t n;

		bar = strchr(s, '|');
		n = bar ? (size_t)(bar - s) : strlen(s);
#define IS(x) (n == sizeof(x) - 1 && strncasecmp(s, x, n) == 0)
		if (IS("contains"))
			m->op = OP_CONTAINS;
		else if (IS("startswith"))
			m->op = OP_STARTS;
		else if (IS("endswith"))
			m->op = OP_ENDS;
		else if (IS("all"))
			m->all = 1;
		else if (IS("re"))
			m->re = 1;
		else if (IS("i") || IS("ignorecase"))
			m->re_i = 1;
		else if (IS("m") || IS("multiline"))
			m->re_m = 1;
		else if (IS("s") || IS("dotall"))
			m->re_s = 1;
		else if (IS("cidr"))
			m->cidr = 1;
		else if (IS("exists"))
			m->exists = 1;
		else if (IS("fieldref"))
			m->fieldref = 1;
		else if (IS("cased"))
			m->cased = 1;
		else if (IS("expand"))
			m->expand = 1;
		else if (IS("gt"))
			m->num = SP_GT;
		else if (IS("gte"))
			m->num = SP_GTE;
		else if (IS("lt"))
			m->num = SP_LT;
		else if (IS("lte"))
			m->num = SP_LTE;
		else if (m->n_xf < sizeof(m->xf) &&
			 (IS("wide") || IS("utf16le") || IS("utf16be") || IS("utf16") ||
			  IS("base64") || IS("base64offset") || IS("windash")))
			m->xf[m->n_xf++] = IS("wide") || IS("utf16le") ? XF_WIDE :
					   IS("utf16be") ? XF_UTF16BE :
					   IS("utf16") ? XF_UTF16 :
					   IS("base64") ? XF_B64 :
					   IS("base64offset") ? XF_B64OFF : XF_WINDASH;
		else {
			buf_printf(why, "modifier |%.*s", (int)n, s);
			return M_EUNSUPP;
		}
#undef IS
	}
	if ((m->re_i || m->re_m || m->re_s) && !m->re) {
		buf_printf(why, "modifiers i/m/s need |re");
		return M_EINVAL;
	}
	return 0;
}

/* %name% placeholders replaced by each configured value (all
 * combinations). */
static int expand_value(const struct sigma_builder *b, const char *v,
			char ***out, size_t *n_out, struct buf *why)
{
	char **cur = NULL, **next;
	size_t n_cur = 1, n_next;
	int r = 0;

	cur = calloc(1, sizeof(*cur));
	if (!cur || !(cur[0] = strdup(v))) {
		free(cur);
		return M_ENOMEM;
	}
	for (;;) {
		const char *p = strchr(cur[0], '%'), *q;
		const struct sigma_placeholder *ph = NULL;

		q = p ? strchr(p + 1, '%') : NULL;
		if (!p || !q)
			break;
		for (size_t i = 0; i < b->n_ph; i++)
			if (strlen(b->ph[i].name) == (size_t)(q - p - 1) &&
			    strncmp(b->ph[i].name, p + 1, (size_t)(q - p - 1)) == 0)
				ph = &b->ph[i];
		if (!ph) {
			buf_printf(why, "placeholder %.*s has no values configured",
				   (int)(q - p + 1), p);
			r = M_EUNSUPP;
			goto out;
		}
		if (n_cur * (ph->n ? ph->n : 1) > SIGMA_MAX_VARIANTS) {
			buf_printf(why, "placeholder expansion too large");
			r = M_ELIMIT;
			goto out;
		}
		n_next = 0;
		next = calloc(n_cur * ph->n + 1, sizeof(*next));
		if (!next) {
			r = M_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n_cur; i++) {
			const char *pp = strchr(cur[i], '%');
			const char *qq = pp ? strchr(pp + 1, '%') : NULL;

			for (size_t k = 0; qq && k < ph->n; k++) {
				struct buf t;

				buf_init(&t, SIGMA_MAX_VALUE_LEN);
				buf_append(&t, cur[i], (size_t)(pp - cur[i]));
				buf_puts(&t, ph->values[k]);
				buf_puts(&t, qq + 1);
				if (buf_cstr(&t) < 0) {
					buf_fini(&t);
					continue;
				}
				next[n_next++] = t.p;
			}
		}
		for (size_t i = 0; i < n_cur; i++)
			free(cur[i]);
		free(cur);
		cur = next;
		n_cur = n_next;
		if (n_cur == 0)
			break;
	}
	*out = cur;
	*n_out = n_cur;
	return 0;
out:
	for (size_t i = 0; i < n_cur; i++)
		free(cur[i]);
	free(cur);
	return r;
}

static int parse_num(const char *v, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(v, &end);
	return (end == v || *end || errno || !isfinite(*out)) ? M_EINVAL : 0;
}

/* Parses "a.b.c.d/n" or "v6/n" (no prefix = full length). */
int sigma_parse_cidr(const char *v, uint8_t *addr, uint8_t *family, uint8_t *plen);

static int bool_value(const char *v, int *out)
{
	if (!strcasecmp(v, "true") || !strcasecmp(v, "yes")) {
		*out = 1;
		return 0;
	}
	if (!strcasecmp(v, "false") || !strcasecmp(v, "no")) {
		*out = 0;
		return 0;
	}
	return M_EINVAL;
}

static int add_pred_node(struct sigma_builder *b, struct sigma_rule_build *rb,
			 const struct sigma_pred *p, uint32_t *node)
{
	uint32_t id;
	int r = sigma_pred_intern(b, p, &id);

	if (r < 0)
		return r;
	return sigma_node_add(rb, SN_PRED, id, 0, node);
}

/* One scalar value into a node (an OR over its variants). */
static int value_node(struct sigma_builder *b, struct sigma_rule_build *rb,
		      uint32_t field, const struct mods *m,
		      const struct conf_node *vn, uint32_t *node, struct buf *why)
{
	struct sigma_pred p;
	const char *v = conf_node_value(vn);
	char **vals = NULL;
	size_t n_vals = 0;
	uint32_t kids[SIGMA_MAX_VARIANTS];
	uint32_t nk = 0;
	struct buf re;
	int r = 0;

	memset(&p, 0, sizeof(p));
	p.field = field;
	if (conf_node_kind(vn) != CONF_NODE_SCALAR) {
		buf_printf(why, "%d:%d: a value must be a scalar",
			   conf_node_line(vn), conf_node_col(vn));
		return M_EINVAL;
	}
	if (conf_node_is_null(vn) && !m->exists) {
		if (m->re || m->cidr || m->num || m->fieldref || m->n_xf ||
		    m->op != OP_EQ) {
			/* contains null etc.: nothing to look for */
			p.kind = SPK_NULL;
		} else {
			p.kind = SPK_NULL;
		}
		return add_pred_node(b, rb, &p, node);
	}
	if (m->exists) {
		int want;

		if (bool_value(v, &want) < 0) {
			buf_printf(why, "%d:%d: |exists needs true or false",
				   conf_node_line(vn), conf_node_col(vn));
			return M_EINVAL;
		}
		p.kind = SPK_EXISTS;
		p.arg = (uint8_t)want;
		return add_pred_node(b, rb, &p, node);
	}
	if (m->num) {
		p.kind = SPK_NUM;
		p.arg = (uint8_t)m->num;
		if (parse_num(v, &p.num) < 0) {
			buf_printf(why, "%d:%d: |%s needs a number",
				   conf_node_line(vn), conf_node_col(vn),
				   m->num == SP_GT ? "gt" : m->num == SP_GTE ? "gte" :
				   m->num == SP_LT ? "lt" : "lte");
			return M_EINVAL;
		}
		return add_pred_node(b, rb, &p, node);
	}
	if (m->cidr) {
		p.kind = SPK_CIDR;
		if (sigma_parse_cidr(v, p.addr, &p.family, &p.plen) < 0) {
			buf_printf(why, "%d:%d: |cidr needs an address or network",
				   conf_node_line(vn), conf_node_col(vn));
			return M_EINVAL;
		}
		return add_pred_node(b, rb, &p, node);
	}
	if (m->fieldref) {
		char tmp[512];
		const char *mapped = sigma_map_field(b, rb->r, v, tmp, sizeof(tmp));

		p.kind = SPK_FIELDREF;
		p.flags = m->cased ? SPF_CASED_EQ : 0;
		r = sigma_field_intern(b, mapped, &p.field2);
		if (r < 0)
			return r;
		return add_pred_node(b, rb, &p, node);
	}
	if (m->expand) {
		r = expand_value(b, v, &vals, &n_vals, why);
		if (r < 0) {
			if (!why->len)
				buf_printf(why, "placeholder expansion failed");
			return r;
		}
	} else {
		vals = calloc(1, sizeof(*vals));
		if (!vals || !(vals[0] = strdup(v))) {
			free(vals);
			return M_ENOMEM;
		}
		n_vals = 1;
	}
	buf_init(&re, SIGMA_MAX_VALUE_LEN * 8);
	for (size_t vi = 0; r == 0 && vi < n_vals; vi++) {
		struct sstr_list l = { 0 };
		struct sstr s;

		if (m->re) {
			p.kind = SPK_STR;
			p.flags = (m->re_i ? SPF_CASELESS : 0) |
				  (m->re_m ? SPF_MULTILINE : 0) |
				  (m->re_s ? SPF_DOTALL : 0);
			p.re = vals[vi];
			r = add_pred_node(b, rb, &p, &kids[nk]);
			if (r == 0)
				nk++;
			p.re = NULL;
			continue;
		}
		r = sstr_parse(vals[vi], strlen(vals[vi]), 0, &s);
		if (r == 0)
			r = list_push(&l, &s);
		for (size_t k = 0; r == 0 && k < m->n_xf; k++)
			r = apply_xf(m->xf[k], &l, why);
		for (size_t k = 0; r == 0 && k < l.n; k++) {
			const struct sstr *x = &l.v[k];
			int only_stars = 1;

			for (size_t i = 0; i < x->n; i++)
				if (x->w[i] != W_STAR)
					only_stars = 0;
			memset(&p, 0, sizeof(p));
			p.field = field;
			if (x->n == 0 && m->op == OP_EQ) {
				p.kind = SPK_NULL;
			} else if (only_stars) {
				p.kind = SPK_EXISTS;
				p.arg = 1;
			} else {
				p.kind = SPK_STR;
				p.flags = (m->cased ? 0 : SPF_CASELESS) | SPF_DOTALL;
				r = to_regex(x, m->op, &re);
				p.re = re.p;
			}
			if (r == 0 && nk >= SIGMA_MAX_VARIANTS) {
				buf_printf(why, "too many variants of one value");
				r = M_ELIMIT;
			}
			if (r == 0)
				r = add_pred_node(b, rb, &p, &kids[nk]);
			if (r == 0)
				nk++;
		}
		list_fini(&l);
	}
	buf_fini(&re);
	for (size_t i = 0; i < n_vals; i++)
		free(vals[i]);
	free(vals);
	if (r < 0)
		return r;
	if (nk == 0) {
		memset(&p, 0, sizeof(p));
		p.kind = SPK_FALSE;
		return add_pred_node(b, rb, &p, node);
	}
	if (nk == 1) {
		*node = kids[0];
		return 0;
	}
	return sigma_node_group(rb, SN_OR, kids, nk, node);
}

static int values_node(struct sigma_builder *b, struct sigma_rule_build *rb,
		       uint32_t field, const struct mods *m,
		       const struct conf_node *values, uint32_t *out,
		       struct buf *why)
{
	uint32_t *kids;
	uint32_t nk = 0;
	int r = 0;

	if (conf_node_kind(values) == CONF_NODE_MAP) {
		buf_printf(why, "%d:%d: a field's value cannot be a mapping",
			   conf_node_line(values), conf_node_col(values));
		return M_EINVAL;
	}
	if (conf_node_kind(values) != CONF_NODE_SEQ)
		return value_node(b, rb, field, m, values, out, why);
	kids = calloc(SIGMA_MAX_VALUES, sizeof(*kids));
	if (!kids)
		return M_ENOMEM;
	for (const struct conf_node *v = conf_node_child(values); v;
	     v = conf_node_next(v)) {
		if (nk == SIGMA_MAX_VALUES) {
			buf_printf(why, "%d:%d: more than %u values",
				   conf_node_line(v), conf_node_col(v), SIGMA_MAX_VALUES);
			r = M_ELIMIT;
			break;
		}
		r = value_node(b, rb, field, m, v, &kids[nk], why);
		if (r < 0)
			break;
		nk++;
	}
	if (r == 0) {
		if (nk == 0)
			r = sigma_node_add(rb, m->all ? SN_TRUE : SN_FALSE, 0, 0, out);
		else if (nk == 1)
			*out = kids[0];
		else
			r = sigma_node_group(rb, m->all ? SN_AND : SN_OR, kids, nk, out);
	}
	free(kids);
	return r;
}

int sigma_item_compile(struct sigma_builder *b, struct sigma_rule_build *rb,
		       const char *key, const struct conf_node *values,
		       uint32_t *out_node, struct buf *why)
{
	char field[512], tmp[512];
	struct mods m;
	uint32_t fid = SIGMA_FIELD_KEYWORDS;
	int r;

	r = parse_mods(key, field, sizeof(field), &m, why);
	if (r < 0)
		return r;
	if (field[0]) {
		const char *mapped = sigma_map_field(b, rb->r, field, tmp, sizeof(tmp));

		r = sigma_field_intern(b, mapped, &fid);
		if (r < 0)
			return r;
	} else if (m.op == OP_EQ && !m.re) {
		m.op = OP_CONTAINS;   /* a keyword is found anywhere */
	}
	return values_node(b, rb, fid, &m, values, out_node, why);
}

int sigma_keywords_compile(struct sigma_builder *b, struct sigma_rule_build *rb,
			   const struct conf_node *values, uint32_t *out_node,
			   struct buf *why)
{
	return sigma_item_compile(b, rb, "", values, out_node, why);
}

/* ---- multi-valued fields, at match time ----
 *
 * JSON inputs keep an array they cannot map to one value (an overflow
 * field such as Zeek's `answers`, a known field given several values) as
 * its JSON text. Sigma, like every backend over a document store, matches
 * such a field when any element matches, so the matcher walks the
 * elements: strings decoded (a Windows path is C:\x, not C:\\x), numbers
 * and booleans as written, nulls skipped, nested objects and arrays as
 * their text. Text that is not one well-formed array is one plain value.
 */

static const char *ws_skip(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* End of the string whose opening quote is at p, or NULL; *esc when it
 * has backslash escapes. */
static const char *str_end(const char *p, const char *end, int *esc)
{
	*esc = 0;
	for (p++; p < end; p++) {
		if (*p == '"')
			return p + 1;
		if (*p == '\\') {
			*esc = 1;
			if (++p == end)
				return NULL;
		} else if ((unsigned char)*p < 0x20) {
			return NULL;
		}
	}
	return NULL;
}

static const char *digits(const char *p, const char *end)
{
	const char *s = p;

	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p > s ? p : NULL;
}

/* End of a JSON number, true, false or null at p, or NULL. */
static const char *scalar_end(const char *p, const char *end)
{
	static const char *const words[] = { "true", "false", "null" };

	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(words[i]);

		if ((size_t)(end - p) >= n && memcmp(p, words[i], n) == 0)
			return p + n;
	}
	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if (!(p = digits(p, end)))
		return NULL;
	if (p < end && *p == '.' && !(p = digits(p + 1, end)))
		return NULL;
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!(p = digits(p, end)))
			return NULL;
	}
	return p;
}

/* End of the element that starts at p, or NULL when it is not one. Nested
 * arrays and objects are only balanced (their elements are never split),
 * to a bounded depth. */
static const char *elem_end(const char *p, const char *end)
{
	int depth = 0, esc;

	if (p >= end)
		return NULL;
	if (*p == '"')
		return str_end(p, end, &esc);
	if (*p != '[' && *p != '{')
		return scalar_end(p, end);
	for (; p < end; p++) {
		if (*p == '"') {
			p = str_end(p, end, &esc);
			if (!p)
				return NULL;
			p--;
		} else if (*p == '[' || *p == '{') {
			if (++depth > 32)
				return NULL;
		} else if (*p == ']' || *p == '}') {
			if (--depth == 0)
				return p + 1;
		}
	}
	return NULL;
}

static int hex4(const char *p, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		char ch = p[i];
		int d = ch >= '0' && ch <= '9' ? ch - '0' :
			ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 :
			ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, uint32_t u)
{
	if (u < 0x80) {
		o[0] = (char)u;
		return 1;
	}
	if (u < 0x800) {
		o[0] = (char)(0xc0 | u >> 6);
		o[1] = (char)(0x80 | (u & 0x3f));
		return 2;
	}
	if (u < 0x10000) {
		o[0] = (char)(0xe0 | u >> 12);
		o[1] = (char)(0x80 | (u >> 6 & 0x3f));
		o[2] = (char)(0x80 | (u & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | u >> 18);
	o[1] = (char)(0x80 | (u >> 12 & 0x3f));
	o[2] = (char)(0x80 | (u >> 6 & 0x3f));
	o[3] = (char)(0x80 | (u & 0x3f));
	return 4;
}

/* Decodes the string body p..end (quotes excluded) into o, which holds at
 * least end - p bytes (a decoded string is never longer). */
static size_t str_decode(const char *p, const char *end, char *o)
{
	size_t w = 0;

	while (p < end) {
		uint32_t u, lo;

		if (*p != '\\') {
			o[w++] = *p++;
			continue;
		}
		p++;
		switch (*p++) {
		case 'b': o[w++] = '\b'; break;
		case 'f': o[w++] = '\f'; break;
		case 'n': o[w++] = '\n'; break;
		case 'r': o[w++] = '\r'; break;
		case 't': o[w++] = '\t'; break;
		case 'u':
			if (end - p < 4 || hex4(p, &u) < 0) {
				o[w++] = 'u';
				break;
			}
			p += 4;
			if (u >= 0xd800 && u < 0xdc00 && end - p >= 6 && p[0] == '\\' &&
			    p[1] == 'u' && hex4(p + 2, &lo) == 0 && lo >= 0xdc00 &&
			    lo < 0xe000) {
				u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
				p += 6;
			} else if (u >= 0xd800 && u < 0xe000) {
				u = 0xfffd;
			}
			/* 6 or 12 escaped bytes give at most 4. */
			w += put_utf8(o + w, u);
			break;
		default:   /* \" \\ \/ */
			o[w++] = p[-1];
			break;
		}
	}
	return w;
}

int sigma_elems_init(struct sigma_elems *it, struct str v)
{
	const char *p = v.p, *end = v.p + v.n;

	if (!sigma_maybe_array(v))
		return 0;
	/* Check the whole text first: a value is split only when it is one
	 * well-formed array. */
	p = ws_skip(p + 1, end);
	if (p < end && *p == ']') {
		p++;
	} else {
		for (;;) {
			p = elem_end(p, end);
			if (!p)
				return 0;
			p = ws_skip(p, end);
			if (p < end && *p == ',') {
				p = ws_skip(p + 1, end);
				continue;
			}
			if (p < end && *p == ']') {
				p++;
				break;
			}
			return 0;
		}
	}
	if (ws_skip(p, end) != end)
		return 0;
	it->p = v.p + 1;
	it->end = v.p + v.n;
	return 1;
}

int sigma_elems_next(struct sigma_elems *it, struct str *out)
{
	for (;;) {
		const char *p = ws_skip(it->p, it->end), *e;
		int esc = 0;

		if (p < it->end && *p == ',')
			p = ws_skip(p + 1, it->end);
		if (p >= it->end || *p == ']') {
			it->p = it->end;
			return 0;
		}
		e = elem_end(p, it->end);
		if (!e) {
			it->p = it->end;
			return 0;
		}
		it->p = e;
		if (*p == '"') {
			str_end(p, e, &esc);
			if (!esc) {
				*out = str_make(p + 1, (size_t)(e - p - 2));
			} else if ((size_t)(e - p - 2) <= sizeof(it->buf)) {
				*out = str_make(it->buf, str_decode(p + 1, e - 1, it->buf));
			} else {
				/* Too long to decode here: matched as written. */
				*out = str_make(p + 1, (size_t)(e - p - 2));
			}
			return 1;
		}
		if (e - p == 4 && memcmp(p, "null", 4) == 0)
			continue;
		*out = str_make(p, (size_t)(e - p));
		return 1;
	}
}
