/*
 * DLP scanning (see dlp.h for what is found and why). Numbers are found by
 * one hand-written pass over digit runs: neither Hyperscan nor PCRE2 can
 * check Luhn or the My Number check digit, and the run has to be seen
 * whole to know it is not part of a larger number. Keywords go through one
 * Hyperscan block-mode database (any number of keywords in one pass);
 * custom patterns through PCRE2, which gives the match's start for the
 * masked sample. Compiled state is built in dlp_new and only read after;
 * each scan clones its Hyperscan scratch and makes its PCRE2 match data.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hs/hs.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/err.h"
#include "core/hs_child.h"
#include "mail/dlp.h"

#define DLP_MAX_DIGITS 19
#define DLP_MATCH_LIMIT 1000000u

static const char *const default_keywords[] = {
	"\xe7\xa4\xbe\xe5\xa4\x96\xe7\xa7\x98",             /* 社外秘 */
	"\xe9\x83\xa8\xe5\xa4\x96\xe7\xa7\x98",             /* 部外秘 */
	"\xe9\x96\xa2\xe4\xbf\x82\xe8\x80\x85\xe5\xa4\x96\xe7\xa7\x98",
							    /* 関係者外秘 */
	"\xe6\xa5\xb5\xe7\xa7\x98",                         /* 極秘 */
	"Confidential",
	"Strictly confidential",
};

struct dlp_re {
	char *name;
	pcre2_code *code;
};

struct dlp {
	char **kw;                /* keywords as configured */
	size_t n_kw;
	hs_database_t *db;
	hs_scratch_t *proto;
	struct dlp_re *re;
	size_t n_re;
	pcre2_match_context *mctx;
	int no_cards, no_mynumber;
};

const char *dlp_kind_str(enum dlp_kind k)
{
	switch (k) {
	case DLP_CARD:
		return "credit_card";
	case DLP_MYNUMBER:
		return "my_number";
	case DLP_KEYWORD:
		return "keyword";
	case DLP_PATTERN:
		return "pattern";
	}
	return "?";
}

/* ---- digits and separators ---------------------------------------- */

/* A digit at t[p]: its value (bytes in *len), or -1. ASCII and full-width
 * (U+FF10-U+FF19). */
static int digit_at(const unsigned char *t, size_t n, size_t p, size_t *len)
{
	if (t[p] >= '0' && t[p] <= '9') {
		*len = 1;
		return t[p] - '0';
	}
	if (t[p] == 0xef && p + 2 < n && t[p + 1] == 0xbc &&
	    t[p + 2] >= 0x90 && t[p + 2] <= 0x99) {
		*len = 3;
		return t[p + 2] - 0x90;
	}
	return -1;
}

enum { SEP_NONE, SEP_SPACE, SEP_DASH };

/* A separator between digit groups at t[p]: its class (bytes in *len). */
static int sep_at(const unsigned char *t, size_t n, size_t p, size_t *len)
{
	*len = 1;
	if (t[p] == ' ')
		return SEP_SPACE;
	if (t[p] == '-')
		return SEP_DASH;
	*len = 3;
	if (p + 2 >= n)
		return SEP_NONE;
	if (t[p] == 0xe3 && t[p + 1] == 0x80 && t[p + 2] == 0x80)
		return SEP_SPACE;                          /* U+3000 */
	if ((t[p] == 0xef && t[p + 1] == 0xbc && t[p + 2] == 0x8d) ||
	    (t[p] == 0xe2 && t[p + 1] == 0x80 && t[p + 2] >= 0x90 &&
	     t[p + 2] <= 0x95) ||
	    (t[p] == 0xe2 && t[p + 1] == 0x88 && t[p + 2] == 0x92) ||
	    (t[p] == 0xe3 && t[p + 1] == 0x83 && t[p + 2] == 0xbc))
		return SEP_DASH; /* U+FF0D, U+2010-2015, U+2212, U+30FC */
	return SEP_NONE;
}

/* A group of digits and what follows it. */
struct grp {
	size_t start, end;        /* bytes */
	size_t nd;                /* digits (counted past the 19 kept) */
	unsigned char dig[DLP_MAX_DIGITS];
	int sep;                  /* separator after it, SEP_NONE: run ends */
	size_t next;              /* start of the next group when sep */
};

static void next_group(const unsigned char *t, size_t n, size_t p,
		       struct grp *g)
{
	size_t l;
	int v;

	g->start = p;
	g->nd = 0;
	while (p < n && (v = digit_at(t, n, p, &l)) >= 0) {
		if (g->nd < DLP_MAX_DIGITS)
			g->dig[g->nd] = (unsigned char)v;
		g->nd++;
		p += l;
	}
	g->end = p;
	g->sep = SEP_NONE;
	if (p < n) {
		int s = sep_at(t, n, p, &l);

		if (s != SEP_NONE && p + l < n &&
		    digit_at(t, n, p + l, &l) >= 0) {
			g->sep = s;
			sep_at(t, n, p, &l);
			g->next = p + l;
		}
	}
}

/* Is the run at p glued to a decimal point or comma of a number
 * ("3.1415926535897932", "1,234,567,890,123,456")? */
static int decimal_before(const unsigned char *t, size_t p)
{
	return p >= 2 && (t[p - 1] == '.' || t[p - 1] == ',') &&
	       t[p - 2] >= '0' && t[p - 2] <= '9';
}

static int decimal_after(const unsigned char *t, size_t n, size_t p)
{
	size_t l;

	return p + 1 < n && (t[p] == '.' || t[p] == ',') &&
	       digit_at(t, n, p + 1, &l) >= 0;
}

static int luhn(const unsigned char *d, size_t n)
{
	unsigned sum = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned v = d[n - 1 - i];

		if (i & 1) {
			v *= 2;
			if (v > 9)
				v -= 9;
		}
		sum += v;
	}
	return sum % 10 == 0;
}

static int card_iin(const unsigned char *d, size_t n)
{
	static const struct {
		unsigned lo, hi;
		unsigned char plen, minlen, maxlen;
	} iin[] = {
		{ 4, 4, 1, 13, 19 },          /* Visa */
		{ 51, 55, 2, 16, 16 },        /* Mastercard */
		{ 2221, 2720, 4, 16, 16 },
		{ 34, 34, 2, 15, 15 },        /* American Express */
		{ 37, 37, 2, 15, 15 },
		{ 300, 305, 3, 14, 19 },      /* Diners Club */
		{ 36, 36, 2, 14, 19 },
		{ 38, 39, 2, 16, 19 },
		{ 6011, 6011, 4, 16, 19 },    /* Discover */
		{ 644, 649, 3, 16, 19 },
		{ 65, 65, 2, 16, 19 },
		{ 3528, 3589, 4, 16, 19 },    /* JCB */
		{ 62, 62, 2, 16, 19 },        /* UnionPay */
		{ 50, 50, 2, 13, 19 },        /* Maestro */
		{ 56, 58, 2, 13, 19 },
		{ 67, 67, 2, 13, 19 },
	};
	size_t k;

	for (k = 0; k < sizeof(iin) / sizeof(iin[0]); k++) {
		unsigned v = 0;
		size_t j;

		if (n < iin[k].minlen || n > iin[k].maxlen)
			continue;
		for (j = 0; j < iin[k].plen; j++)
			v = v * 10 + d[j];
		if (v >= iin[k].lo && v <= iin[k].hi)
			return 1;
	}
	return 0;
}

static int is_card(const unsigned char *d, size_t n)
{
	return n >= 13 && n <= 19 && card_iin(d, n) && luhn(d, n);
}

static int is_mynumber(const unsigned char *d, size_t n)
{
	unsigned sum = 0, r, n1;
	size_t i;

	if (n != 12)
		return 0;
	for (i = 1; i < 12 && d[i] == d[0]; i++)
		;
	if (i == 12)
		return 0;
	for (n1 = 1; n1 <= 11; n1++)
		sum += d[11 - n1] * (n1 <= 6 ? n1 + 1 : n1 - 5);
	r = sum % 11;
	return d[11] == (r <= 1 ? 0 : 11 - r);
}

/* ---- results and masked samples ------------------------------------ */

enum { CH_SIG, CH_SPACE, CH_DASH, CH_PUNCT };

/* The character at t[p] (p < e): its class, its length in *l and, for a
 * digit, its value in *v (else -1). Letters, digits and any non-ASCII
 * character but our separators are significant. */
static int char_class(const unsigned char *t, size_t e, size_t p, size_t *l,
		      int *v)
{
	int s;

	*v = digit_at(t, e, p, l);
	if (*v >= 0)
		return CH_SIG;
	s = sep_at(t, e, p, l);
	if (s == SEP_SPACE)
		return CH_SPACE;
	if (s == SEP_DASH)
		return CH_DASH;
	*l = 1;
	if (t[p] < 0x80) {
		if (t[p] <= 0x20 || t[p] == 0x7f)
			return CH_SPACE;
		if ((t[p] | 0x20) >= 'a' && (t[p] | 0x20) <= 'z')
			return CH_SIG;
		return CH_PUNCT;
	}
	while (p + *l < e && *l < 4 && (t[p + *l] & 0xc0) == 0x80)
		(*l)++;
	return CH_SIG;
}

/* Masks t[s..e) into out (DLP_SAMPLE_MAX bytes): significant characters
 * become '*' except the last `reveal` of them when there are at least ten
 * (full-width digits shown in ASCII); separators and ASCII punctuation are kept, white space as a
 * space. A sample too long for out ends in "..." without the reveal. */
static void mask(const unsigned char *t, size_t s, size_t e, size_t reveal,
		 char *out)
{
	const size_t room = DLP_SAMPLE_MAX - 4;
	size_t p, total = 0, seen = 0, o = 0, l;
	int v;

	for (p = s; p < e; p += l)
		if (char_class(t, e, p, &l, &v) == CH_SIG)
			total++;
	if (reveal > total || total < 10 || total > room)
		reveal = 0;
	for (p = s; p < e && o < room; p += l) {
		int c = char_class(t, e, p, &l, &v);

		if (c == CH_SPACE) {
			out[o++] = ' ';
		} else if (c == CH_DASH) {
			out[o++] = '-';
		} else if (c == CH_PUNCT) {
			out[o++] = (char)t[p];
		} else if (++seen + reveal <= total) {
			out[o++] = '*';
		} else if (v >= 0) {
			out[o++] = (char)('0' + v);
		} else {
			if (o + l > room)
				break;
			memcpy(out + o, t + p, l);
			o += l;
		}
	}
	if (p < e) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

static void hit(struct dlp_item *it, const unsigned char *t, size_t s,
		size_t e, size_t reveal)
{
	it->count++;
	if (it->n_samples < DLP_MAX_SAMPLES)
		mask(t, s, e, reveal, it->sample[it->n_samples++]);
}

/* ---- the digit pass ------------------------------------------------- */

/* Tries the card numbers that start at group g0: the groups that follow
 * it with the same separator (each of 3 to 6 digits when there are
 * several), at most 19 digits, longest first. On a hit, records it and
 * returns the byte where the next window starts, else 0. */
static size_t try_card(const unsigned char *t, size_t n, const struct grp *g0,
		       size_t run_end, struct dlp_item *card)
{
	unsigned char dig[DLP_MAX_DIGITS];
	size_t nd = 0, k = 0, cum[DLP_MAX_DIGITS], end[DLP_MAX_DIGITS];
	size_t next[DLP_MAX_DIGITS];
	struct grp w = *g0;

	for (;;) {
		if (w.nd > DLP_MAX_DIGITS || nd + w.nd > DLP_MAX_DIGITS)
			break;
		if (k > 0 && (w.nd < 3 || w.nd > 6))
			break;
		if (k == 1 && (g0->nd < 3 || g0->nd > 6))
			break;
		memcpy(dig + nd, w.dig, w.nd);
		nd += w.nd;
		cum[k] = nd;
		end[k] = w.end;
		next[k] = w.sep ? w.next : run_end;
		k++;
		if (w.sep == SEP_NONE || w.sep != g0->sep)
			break;
		next_group(t, n, w.next, &w);
	}
	while (k-- > 0) {
		if (is_card(dig, cum[k])) {
			hit(card, t, g0->start, end[k], 4);
			return next[k];
		}
	}
	return 0;
}

/* My Number at the group that starts at `start`: a group of 12 digits,
 * or three groups of 4 with one separator that neither the group before
 * (prev_sep) nor the one after continues. */
static void try_mynumber(const unsigned char *t, size_t n, size_t start,
			 int prev_sep, struct dlp_item *myn)
{
	unsigned char dig[12];
	struct grp g[3];
	size_t k;

	next_group(t, n, start, &g[0]);
	if (g[0].nd == 12) {
		if (is_mynumber(g[0].dig, 12))
			hit(myn, t, start, g[0].end, 4);
		return;
	}
	if (g[0].sep == SEP_NONE || g[0].sep == prev_sep)
		return;
	for (k = 0; k < 3; k++) {
		if (k > 0)
			next_group(t, n, g[k - 1].next, &g[k]);
		if (g[k].nd != 4 || (k < 2 && g[k].sep != g[0].sep) ||
		    (k == 2 && g[k].sep == g[0].sep))
			return;
		memcpy(dig + 4 * k, g[k].dig, 4);
	}
	if (is_mynumber(dig, 12))
		hit(myn, t, start, g[2].end, 4);
}

static void scan_numbers(const struct dlp *d, const unsigned char *t,
			 size_t n, struct dlp_item *card,
			 struct dlp_item *myn)
{
	size_t i = 0, l;

	while (i < n) {
		struct grp g;
		size_t run_end, p, nd = 0;
		int prev;

		if (digit_at(t, n, i, &l) < 0) {
			i++;
			continue;
		}
		/* The run's extent, then its windows. */
		p = i;
		do {
			next_group(t, n, p, &g);
			nd += g.nd;
			p = g.next;
		} while (g.sep != SEP_NONE);
		run_end = g.end;
		if (decimal_before(t, i) || decimal_after(t, n, run_end)) {
			i = run_end;
			continue;
		}
		for (p = i, prev = SEP_NONE; !d->no_mynumber && nd >= 12 &&
					     p < run_end;) {
			next_group(t, n, p, &g);
			try_mynumber(t, n, p, prev, myn);
			prev = g.sep;
			p = g.sep ? g.next : run_end;
		}
		p = i;
		while (nd >= 13 && !d->no_cards && p < run_end) {
			size_t nx;

			next_group(t, n, p, &g);
			nx = try_card(t, n, &g, run_end, card);
			if (nx)
				p = nx;
			else
				p = g.sep ? g.next : run_end;
		}
		i = run_end;
	}
}

/* ---- keywords and patterns ----------------------------------------- */

static int on_keyword(unsigned int id, unsigned long long from,
		      unsigned long long to, unsigned int flags, void *ctx)
{
	struct dlp_item *kw = ctx;

	(void)from;
	(void)to;
	(void)flags;
	kw[id].count++;
	return 0;
}

static int scan_patterns(const struct dlp *d, const unsigned char *t,
			 size_t n, struct dlp_item *pat)
{
	size_t i;

	for (i = 0; i < d->n_re; i++) {
		pcre2_match_data *md =
			pcre2_match_data_create_from_pattern(d->re[i].code,
							     NULL);
		PCRE2_SIZE off = 0;

		if (!md)
			return M_ENOMEM;
		while (off <= n && pat[i].count < DLP_MAX_MATCHES) {
			int rc = pcre2_match(d->re[i].code, t, n, off, 0, md,
					     d->mctx);
			PCRE2_SIZE *ov, s, e;

			if (rc < 0)
				break;
			ov = pcre2_get_ovector_pointer(md);
			s = ov[0];
			e = ov[1];
			if (e > s && s < n && e <= n)
				hit(&pat[i], t, s, e, 4);
			if (e > off && e > s) {
				off = e;
				continue;
			}
			/* An empty match: step over one character. */
			off = (e > off ? e : off) + 1;
			while (off < n && (t[off] & 0xc0) == 0x80)
				off++;
		}
		pcre2_match_data_free(md);
	}
	return 0;
}

void dlp_result_fini(struct dlp_result *r)
{
	if (!r)
		return;
	free(r->item);
	memset(r, 0, sizeof(*r));
}

int dlp_scan(const struct dlp *d, const char *text, size_t len,
	     struct dlp_result *out)
{
	const unsigned char *t = (const unsigned char *)text;
	size_t nall, i, o;
	struct dlp_item *it;
	hs_scratch_t *scr = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!d || (!text && len))
		return M_EINVAL;
	if (len > UINT_MAX)
		return M_ELIMIT;
	nall = 2 + d->n_kw + d->n_re;
	it = calloc(nall, sizeof(*it));
	if (!it)
		return M_ENOMEM;
	it[0].kind = DLP_CARD;
	it[0].name = "credit_card";
	it[1].kind = DLP_MYNUMBER;
	it[1].name = "my_number";
	for (i = 0; i < d->n_kw; i++) {
		it[2 + i].kind = DLP_KEYWORD;
		it[2 + i].name = d->kw[i];
	}
	for (i = 0; i < d->n_re; i++) {
		it[2 + d->n_kw + i].kind = DLP_PATTERN;
		it[2 + d->n_kw + i].name = d->re[i].name;
	}
	if (len == 0)
		goto done;
	scan_numbers(d, t, len, &it[0], &it[1]);
	if (d->db) {
		if (hs_clone_scratch(d->proto, &scr) != HS_SUCCESS) {
			rc = M_ENOMEM;
			goto fail;
		}
		if (hs_scan(d->db, text, (unsigned int)len, 0, scr, on_keyword,
			    it + 2) != HS_SUCCESS) {
			rc = M_EIO;
			goto fail;
		}
	}
	rc = scan_patterns(d, t, len, it + 2 + d->n_kw);
	if (rc < 0)
		goto fail;
done:
	for (i = 0, o = 0; i < nall; i++) {
		if (it[i].count == 0)
			continue;
		out->total += it[i].count;
		if (o != i)
			it[o] = it[i];
		o++;
	}
	out->item = it;
	out->n = o;
	if (o == 0) {
		free(it);
		out->item = NULL;
	}
	hs_free_scratch(scr);
	return 0;
fail:
	hs_free_scratch(scr);
	free(it);
	memset(out, 0, sizeof(*out));
	return rc;
}

/* ---- construction --------------------------------------------------- */

/* A keyword as a Hyperscan expression: ASCII letters and digits as they
 * are, spaces as \s+, every other byte escaped; \b at an ASCII word edge. */
static char *kw_expr(const char *k)
{
	size_t n = strlen(k), i, o = 0;
	char *e = malloc(4 * n + 8);
	unsigned char first = (unsigned char)k[0], last = (unsigned char)k[n - 1];
	static const char hx[] = "0123456789abcdef";

	if (!e)
		return NULL;
	if ((first < 0x80 && ((first | 0x20) >= 'a' && (first | 0x20) <= 'z')) ||
	    (first >= '0' && first <= '9')) {
		memcpy(e, "\\b", 2);
		o = 2;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)k[i];

		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z')) {
			e[o++] = (char)c;
		} else if (c == ' ') {
			if (i > 0 && k[i - 1] == ' ')
				continue;
			memcpy(e + o, "\\s+", 3);
			o += 3;
		} else {
			e[o++] = '\\';
			e[o++] = 'x';
			e[o++] = hx[c >> 4];
			e[o++] = hx[c & 15];
		}
	}
	if ((last < 0x80 && ((last | 0x20) >= 'a' && (last | 0x20) <= 'z')) ||
	    (last >= '0' && last <= '9')) {
		memcpy(e + o, "\\b", 2);
		o += 2;
	}
	e[o] = '\0';
	return e;
}

static int add_keyword(struct dlp *d, const char *k, char *err, size_t el)
{
	size_t n = k ? strnlen(k, DLP_MAX_KEYWORD_LEN + 1) : 0, s = 0;

	while (s < n && k[s] == ' ')
		s++;
	if (n - s == 0 || n > DLP_MAX_KEYWORD_LEN || k[n - 1] == ' ') {
		snprintf(err, el, "keyword #%zu: empty, too long or padded",
			 d->n_kw + 1);
		return M_EINVAL;
	}
	if (d->n_kw >= DLP_MAX_KEYWORDS) {
		snprintf(err, el, "more than %d keywords", DLP_MAX_KEYWORDS);
		return M_EINVAL;
	}
	d->kw[d->n_kw] = strndup(k + s, n - s);
	if (!d->kw[d->n_kw])
		return M_ENOMEM;
	d->n_kw++;
	return 0;
}

static int build_keywords(struct dlp *d, char *err, size_t el)
{
	char **ex = calloc(d->n_kw, sizeof(char *));
	unsigned *flags = calloc(d->n_kw, sizeof(unsigned));
	unsigned *ids = calloc(d->n_kw, sizeof(unsigned));
	struct hs_child_error ce;
	struct hs_child *hsc;
	size_t i;
	int rc = M_ENOMEM;

	if (!ex || !flags || !ids)
		goto out;
	for (i = 0; i < d->n_kw; i++) {
		ex[i] = kw_expr(d->kw[i]);
		if (!ex[i])
			goto out;
		flags[i] = HS_FLAG_CASELESS;
		ids[i] = (unsigned)i;
	}
	/* In a child: Hyperscan's compiler code and heap stay out of the
	 * daemon (core/hs_child.h). */
	hsc = hs_child_open();
	rc = hs_child_compile(hsc, (const char *const *)ex, flags, ids, (unsigned)d->n_kw,
			      &d->db, &ce);
	hs_child_close(hsc);
	if (rc == M_EINVAL) {
		snprintf(err, el, "keyword #%d: %s", ce.expression + 1, ce.message);
		goto out;
	}
	if (rc < 0)
		goto out;
	rc = hs_alloc_scratch(d->db, &d->proto) == HS_SUCCESS ? 0 : M_ENOMEM;
out:
	for (i = 0; ex && i < d->n_kw; i++)
		free(ex[i]);
	free(ex);
	free(flags);
	free(ids);
	return rc;
}

static int build_patterns(struct dlp *d, const struct dlp_conf *c, char *err,
			  size_t el)
{
	size_t i;

	if (c->n_patterns > DLP_MAX_PATTERNS) {
		snprintf(err, el, "more than %d patterns", DLP_MAX_PATTERNS);
		return M_EINVAL;
	}
	if (c->n_patterns == 0)
		return 0;
	d->re = calloc(c->n_patterns, sizeof(*d->re));
	d->mctx = pcre2_match_context_create(NULL);
	if (!d->re || !d->mctx)
		return M_ENOMEM;
	pcre2_set_match_limit(d->mctx, DLP_MATCH_LIMIT);
	for (i = 0; i < c->n_patterns; i++) {
		const struct dlp_pattern *p = &c->patterns[i];
		PCRE2_SIZE eo;
		int ec;

		if (!p->name || !p->name[0] || !p->regex || !p->regex[0] ||
		    strlen(p->regex) > DLP_MAX_PATTERN_LEN) {
			snprintf(err, el, "pattern #%zu: no name or regex, or "
				 "too long", i + 1);
			return M_EINVAL;
		}
		d->re[i].name = strndup(p->name, DLP_MAX_KEYWORD_LEN);
		if (!d->re[i].name)
			return M_ENOMEM;
		d->n_re++;
		d->re[i].code = pcre2_compile((PCRE2_SPTR)p->regex,
					      PCRE2_ZERO_TERMINATED,
					      PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
					      &ec, &eo, NULL);
		if (!d->re[i].code) {
			PCRE2_UCHAR msg[128];

			pcre2_get_error_message(ec, msg, sizeof(msg));
			snprintf(err, el, "pattern %s: %s at offset %zu",
				 d->re[i].name, (const char *)msg, (size_t)eo);
			return M_EINVAL;
		}
		(void)pcre2_jit_compile(d->re[i].code, PCRE2_JIT_COMPLETE);
	}
	return 0;
}

struct dlp *dlp_new(const struct dlp_conf *c, char *err, size_t errlen)
{
	struct dlp *d = calloc(1, sizeof(*d));
	size_t i, nkw;
	int rc = M_ENOMEM;

	if (err && errlen)
		err[0] = '\0';
	else
		errlen = 0;
	if (!d || !c)
		goto fail;
	d->no_cards = c->no_cards;
	d->no_mynumber = c->no_mynumber;
	nkw = (c->no_default_keywords ? 0 : sizeof(default_keywords) /
						     sizeof(default_keywords[0])) +
	      c->n_keywords;
	if (c->n_keywords > DLP_MAX_KEYWORDS || nkw > DLP_MAX_KEYWORDS) {
		snprintf(err, errlen, "more than %d keywords",
			 DLP_MAX_KEYWORDS);
		rc = M_EINVAL;
		goto fail;
	}
	if (nkw) {
		d->kw = calloc(nkw, sizeof(char *));
		if (!d->kw)
			goto fail;
	}
	for (i = 0; !c->no_default_keywords &&
		    i < sizeof(default_keywords) / sizeof(default_keywords[0]);
	     i++)
		if ((rc = add_keyword(d, default_keywords[i], err, errlen)) < 0)
			goto fail;
	for (i = 0; i < c->n_keywords; i++)
		if ((rc = add_keyword(d, c->keywords ? c->keywords[i] : NULL,
				      err, errlen)) < 0)
			goto fail;
	if (d->n_kw && (rc = build_keywords(d, err, errlen)) < 0)
		goto fail;
	if ((rc = build_patterns(d, c, err, errlen)) < 0)
		goto fail;
	return d;
fail:
	if (rc == M_ENOMEM && errlen && !err[0])
		snprintf(err, errlen, "out of memory");
	dlp_free(d);
	return NULL;
}

void dlp_free(struct dlp *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->n_kw; i++)
		free(d->kw[i]);
	free(d->kw);
	hs_free_scratch(d->proto);
	hs_free_database(d->db);
	for (i = 0; i < d->n_re; i++) {
		free(d->re[i].name);
		pcre2_code_free(d->re[i].code);
	}
	free(d->re);
	pcre2_match_context_free(d->mctx);
	free(d);
}
