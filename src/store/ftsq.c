/*
 * FTS5 query syntax, parsed and evaluated in C over one message at a time.
 *
 * Why: the SQLite store indexes messages with FTS5 in the background; rows
 * written since the last indexing step are searched by scanning them with
 * this evaluator, so a search never misses an event because the indexer
 * lags. It mirrors FTS5's grammar (fts5parse.y: implicit AND binds tightest,
 * then NOT, AND, OR) and the "ascii" tokenizer, and it also validates a
 * query before SQLite sees it, so a malformed query is M_EINVAL everywhere.
 */
#include "store/ftsq.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

enum ftsq_kind { Q_PHRASE, Q_AND, Q_OR, Q_NOT };

struct ftsq_node {
	unsigned char kind;    /* enum ftsq_kind */
	unsigned char prefix;  /* Q_PHRASE: last term is a prefix */
	unsigned char initial; /* Q_PHRASE: must start at the first token */
	int a, b;              /* children (operators) */
	int first, n;          /* Q_PHRASE: terms[first .. first+n) */
};

struct ftsq_term {
	uint32_t off, len;     /* into text (lower-cased copy) */
};

struct ftsq_tok {
	uint32_t off, len;
};

struct ftsq {
	struct ftsq_node node[FTSQ_MAX_NODES];
	int n_node, root;
	struct ftsq_term term[FTSQ_MAX_NODES];
	int n_term;
	char text[FTSQ_MAX_LEN];     /* lower-cased term bytes */
	size_t text_len;
	struct ftsq_tok tok[FTSQ_MAX_TOKENS];   /* scratch: the row's tokens */
};

/* Lexer tokens of the query language. */
enum ftsq_lex { L_END, L_WORD, L_STRING, L_LP, L_RP, L_COLON, L_STAR,
		L_PLUS, L_CARET, L_COMMA, L_LCB, L_RCB, L_MINUS, L_BAD };

struct ftsq_parser {
	const char *p;
	size_t n, pos;
	int lex;                  /* current lexeme */
	size_t lex_off, lex_len;  /* its bytes (a string's inside, quotes doubled) */
	int depth;
	struct ftsq *q;
};

/* The ascii tokenizer's token characters. */
static int ftsq_tokch(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c >= 0x80;
}

/* FTS5 bareword characters. */
static int ftsq_barech(unsigned char c)
{
	return ftsq_tokch(c) || c == '_' || c == 0x1a;
}

static unsigned char ftsq_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static void ftsq_next(struct ftsq_parser *ps)
{
	const char *p = ps->p;
	size_t i = ps->pos;

	while (i < ps->n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' ||
			     p[i] == '\r' || p[i] == '\f' || p[i] == '\v'))
		i++;
	ps->lex_off = i;
	ps->lex_len = 0;
	if (i >= ps->n) {
		ps->lex = L_END;
		ps->pos = i;
		return;
	}
	unsigned char c = (unsigned char)p[i];
	if (c == '"') {
		size_t j = i + 1;
		for (;;) {
			if (j >= ps->n) {
				ps->lex = L_BAD;
				ps->pos = j;
				return;
			}
			if (p[j] == '"') {
				if (j + 1 < ps->n && p[j + 1] == '"') {
					j += 2;
					continue;
				}
				break;
			}
			j++;
		}
		ps->lex = L_STRING;
		ps->lex_off = i + 1;
		ps->lex_len = j - i - 1;
		ps->pos = j + 1;
		return;
	}
	if (ftsq_barech(c)) {
		size_t j = i;
		while (j < ps->n && ftsq_barech((unsigned char)p[j]))
			j++;
		ps->lex = L_WORD;
		ps->lex_len = j - i;
		ps->pos = j;
		return;
	}
	switch (c) {
	case '(': ps->lex = L_LP; break;
	case ')': ps->lex = L_RP; break;
	case ':': ps->lex = L_COLON; break;
	case '*': ps->lex = L_STAR; break;
	case '+': ps->lex = L_PLUS; break;
	case '^': ps->lex = L_CARET; break;
	case ',': ps->lex = L_COMMA; break;
	case '{': ps->lex = L_LCB; break;
	case '}': ps->lex = L_RCB; break;
	case '-': ps->lex = L_MINUS; break;
	default: ps->lex = L_BAD; break;
	}
	ps->lex_len = 1;
	ps->pos = i + 1;
}

static int ftsq_is_kw(const struct ftsq_parser *ps, const char *kw)
{
	size_t n = strlen(kw);

	return ps->lex == L_WORD && ps->lex_len == n &&
	       memcmp(ps->p + ps->lex_off, kw, n) == 0;
}

static int ftsq_new_node(struct ftsq *q, int kind, int a, int b)
{
	if (q->n_node >= FTSQ_MAX_NODES)
		return M_ELIMIT;
	struct ftsq_node *nd = &q->node[q->n_node];
	memset(nd, 0, sizeof(*nd));
	nd->kind = (unsigned char)kind;
	nd->a = a;
	nd->b = b;
	return q->n_node++;
}

/* Splits the current word or string into ascii tokens and appends them as
 * terms of the phrase node ph. */
static int ftsq_add_terms(struct ftsq_parser *ps, int ph)
{
	struct ftsq *q = ps->q;
	const char *s = ps->p + ps->lex_off;
	size_t n = ps->lex_len, i = 0;

	while (i < n) {
		while (i < n && !ftsq_tokch((unsigned char)s[i]))
			i++;
		if (i >= n)
			break;
		if (q->n_term >= FTSQ_MAX_NODES)
			return M_ELIMIT;
		struct ftsq_term *t = &q->term[q->n_term++];
		t->off = (uint32_t)q->text_len;
		while (i < n && ftsq_tokch((unsigned char)s[i])) {
			if (q->text_len >= sizeof(q->text))
				return M_ELIMIT;
			q->text[q->text_len++] = (char)ftsq_lower((unsigned char)s[i]);
			i++;
		}
		t->len = (uint32_t)q->text_len - t->off;
		q->node[ph].n++;
	}
	return 0;
}

/* phrase := (STRING|WORD) ('+' (STRING|WORD))* ['*'] */
static int ftsq_phrase(struct ftsq_parser *ps, int initial)
{
	struct ftsq *q = ps->q;
	int ph, r;

	if (ps->lex != L_STRING && ps->lex != L_WORD)
		return M_EINVAL;
	if ((ph = ftsq_new_node(q, Q_PHRASE, -1, -1)) < 0)
		return ph;
	q->node[ph].first = q->n_term;
	q->node[ph].initial = (unsigned char)initial;
	for (;;) {
		if ((r = ftsq_add_terms(ps, ph)) < 0)
			return r;
		ftsq_next(ps);
		if (ps->lex != L_PLUS)
			break;
		ftsq_next(ps);
		if (ps->lex != L_STRING && ps->lex != L_WORD)
			return M_EINVAL;
	}
	if (ps->lex == L_STAR) {
		q->node[ph].prefix = 1;
		ftsq_next(ps);
	}
	return ph;
}

static int ftsq_or(struct ftsq_parser *ps);

/* NEAR(phrase phrase ... [, N]) evaluated as the AND of its phrases. */
static int ftsq_near(struct ftsq_parser *ps)
{
	int left = -1, r;

	ftsq_next(ps);   /* NEAR */
	ftsq_next(ps);   /* ( */
	while (ps->lex == L_STRING || ps->lex == L_WORD) {
		int ph = ftsq_phrase(ps, 0);
		if (ph < 0)
			return ph;
		if (left < 0) {
			left = ph;
		} else if ((left = ftsq_new_node(ps->q, Q_AND, left, ph)) < 0) {
			return left;
		}
	}
	if (left < 0)
		return M_EINVAL;
	if (ps->lex == L_COMMA) {
		ftsq_next(ps);
		if (ps->lex != L_WORD)
			return M_EINVAL;
		for (size_t i = 0; i < ps->lex_len; i++)
			if (ps->p[ps->lex_off + i] < '0' || ps->p[ps->lex_off + i] > '9')
				return M_EINVAL;
		ftsq_next(ps);
	}
	if (ps->lex != L_RP)
		return M_EINVAL;
	ftsq_next(ps);
	r = left;
	return r;
}

/* A primary: ( expr ), colset : primary, NEAR(...), ^phrase, phrase. */
static int ftsq_prim(struct ftsq_parser *ps)
{
	int r;

	if (ps->lex == L_LP) {
		if (++ps->depth > FTSQ_MAX_DEPTH)
			return M_ELIMIT;
		ftsq_next(ps);
		if ((r = ftsq_or(ps)) < 0)
			return r;
		if (ps->lex != L_RP)
			return M_EINVAL;
		ps->depth--;
		ftsq_next(ps);
		return r;
	}
	if (ps->lex == L_MINUS || ps->lex == L_LCB) {
		/* Column filter; only message is indexed, so it is ignored. */
		if (ps->lex == L_MINUS)
			ftsq_next(ps);
		if (ps->lex == L_LCB) {
			ftsq_next(ps);
			while (ps->lex == L_WORD)
				ftsq_next(ps);
			if (ps->lex != L_RCB)
				return M_EINVAL;
			ftsq_next(ps);
		} else if (ps->lex == L_WORD) {
			ftsq_next(ps);
		} else {
			return M_EINVAL;
		}
		if (ps->lex != L_COLON)
			return M_EINVAL;
		ftsq_next(ps);
		return ftsq_prim(ps);
	}
	if (ps->lex == L_CARET) {
		ftsq_next(ps);
		return ftsq_phrase(ps, 1);
	}
	if (ps->lex == L_WORD) {
		if (ftsq_is_kw(ps, "AND") || ftsq_is_kw(ps, "OR") || ftsq_is_kw(ps, "NOT"))
			return M_EINVAL;
		if (ftsq_is_kw(ps, "NEAR")) {
			struct ftsq_parser save = *ps;
			ftsq_next(&save);
			if (save.lex == L_LP)
				return ftsq_near(ps);
		}
		/* "word:" is a column filter. */
		struct ftsq_parser look = *ps;
		ftsq_next(&look);
		if (look.lex == L_COLON) {
			*ps = look;
			ftsq_next(ps);
			return ftsq_prim(ps);
		}
	}
	return ftsq_phrase(ps, 0);
}

static int ftsq_starts_prim(const struct ftsq_parser *ps)
{
	if (ps->lex == L_WORD)
		return !(ftsq_is_kw(ps, "AND") || ftsq_is_kw(ps, "OR") || ftsq_is_kw(ps, "NOT"));
	return ps->lex == L_STRING || ps->lex == L_LP || ps->lex == L_CARET ||
	       ps->lex == L_LCB || ps->lex == L_MINUS;
}

/* Implicit AND of juxtaposed primaries (binds tightest). */
static int ftsq_list(struct ftsq_parser *ps)
{
	int left = ftsq_prim(ps);

	while (left >= 0 && ftsq_starts_prim(ps)) {
		int right = ftsq_prim(ps);
		if (right < 0)
			return right;
		left = ftsq_new_node(ps->q, Q_AND, left, right);
	}
	return left;
}

static int ftsq_not(struct ftsq_parser *ps)
{
	int left = ftsq_list(ps);

	while (left >= 0 && ftsq_is_kw(ps, "NOT")) {
		ftsq_next(ps);
		int right = ftsq_list(ps);
		if (right < 0)
			return right;
		left = ftsq_new_node(ps->q, Q_NOT, left, right);
	}
	return left;
}

static int ftsq_and(struct ftsq_parser *ps)
{
	int left = ftsq_not(ps);

	while (left >= 0 && ftsq_is_kw(ps, "AND")) {
		ftsq_next(ps);
		int right = ftsq_not(ps);
		if (right < 0)
			return right;
		left = ftsq_new_node(ps->q, Q_AND, left, right);
	}
	return left;
}

static int ftsq_or(struct ftsq_parser *ps)
{
	int left = ftsq_and(ps);

	while (left >= 0 && ftsq_is_kw(ps, "OR")) {
		ftsq_next(ps);
		int right = ftsq_and(ps);
		if (right < 0)
			return right;
		left = ftsq_new_node(ps->q, Q_OR, left, right);
	}
	return left;
}

int ftsq_compile(const char *text, size_t n, struct ftsq **out)
{
	struct ftsq_parser ps;
	struct ftsq *q = NULL;
	int r;

	*out = NULL;
	if (n == 0 || n > FTSQ_MAX_LEN)
		return M_EINVAL;
	q = malloc(sizeof(*q));
	if (!q)
		return M_ENOMEM;
	q->n_node = 0;
	q->n_term = 0;
	q->text_len = 0;
	memset(&ps, 0, sizeof(ps));
	ps.p = text;
	ps.n = n;
	ps.q = q;
	ftsq_next(&ps);
	r = ftsq_or(&ps);
	if (r >= 0 && ps.lex != L_END)
		r = M_EINVAL;
	if (r < 0) {
		r = (r == M_ENOMEM) ? M_ENOMEM : M_EINVAL;
		goto out;
	}
	q->root = r;
	*out = q;
	q = NULL;
	r = 0;
out:
	free(q);
	return r;
}

void ftsq_free(struct ftsq *q)
{
	free(q);
}

static int ftsq_tok_eq(const struct ftsq *q, const char *text,
		       const struct ftsq_tok *t, const struct ftsq_term *term,
		       int prefix)
{
	if (prefix ? t->len < term->len : t->len != term->len)
		return 0;
	for (uint32_t i = 0; i < term->len; i++)
		if (ftsq_lower((unsigned char)text[t->off + i]) !=
		    (unsigned char)q->text[term->off + i])
			return 0;
	return 1;
}

static int ftsq_phrase_match(const struct ftsq *q, const struct ftsq_node *nd,
			     const char *text, int ntok)
{
	int last = nd->n - 1;

	if (nd->n == 0)
		return 0;
	for (int i = 0; i + nd->n <= ntok; i++) {
		int j;
		for (j = 0; j < nd->n; j++)
			if (!ftsq_tok_eq(q, text, &q->tok[i + j], &q->term[nd->first + j],
					 nd->prefix && j == last))
				break;
		if (j == nd->n)
			return 1;
		if (nd->initial)
			break;
	}
	return 0;
}

static int ftsq_eval(const struct ftsq *q, int id, const char *text, int ntok)
{
	const struct ftsq_node *nd = &q->node[id];

	switch (nd->kind) {
	case Q_PHRASE:
		return ftsq_phrase_match(q, nd, text, ntok);
	case Q_AND:
		return ftsq_eval(q, nd->a, text, ntok) && ftsq_eval(q, nd->b, text, ntok);
	case Q_OR:
		return ftsq_eval(q, nd->a, text, ntok) || ftsq_eval(q, nd->b, text, ntok);
	default:
		return ftsq_eval(q, nd->a, text, ntok) && !ftsq_eval(q, nd->b, text, ntok);
	}
}

int ftsq_match(struct ftsq *q, const char *text, size_t n)
{
	int ntok = 0;
	size_t i = 0;

	if (!text)
		return 0;
	while (i < n && ntok < FTSQ_MAX_TOKENS) {
		while (i < n && !ftsq_tokch((unsigned char)text[i]))
			i++;
		if (i >= n)
			break;
		size_t s = i;
		while (i < n && ftsq_tokch((unsigned char)text[i]))
			i++;
		q->tok[ntok].off = (uint32_t)s;
		q->tok[ntok].len = (uint32_t)(i - s);
		ntok++;
	}
	return ftsq_eval(q, q->root, text, ntok);
}

/* True when the text uses FTS5 syntax rather than plain words. */
static int ftsq_has_syntax(const char *t, size_t n)
{
	static const char special[] = "\"()*:^+{}";
	size_t i = 0;

	for (size_t k = 0; k < n; k++)
		if (memchr(special, t[k], sizeof(special) - 1))
			return 1;
	while (i < n) {
		while (i < n && (t[i] == ' ' || t[i] == '\t'))
			i++;
		size_t s = i;
		while (i < n && t[i] != ' ' && t[i] != '\t')
			i++;
		size_t w = i - s;
		if ((w == 3 && (!memcmp(t + s, "AND", 3) || !memcmp(t + s, "NOT", 3))) ||
		    (w == 2 && !memcmp(t + s, "OR", 2)))
			return 1;
	}
	return 0;
}

int ftsq_normalise(const char *text, struct buf *out)
{
	size_t n = text ? strlen(text) : 0, i = 0;
	int words = 0, r;

	if (n == 0 || n > FTSQ_MAX_LEN)
		return M_EINVAL;
	if (ftsq_has_syntax(text, n)) {
		if ((r = buf_append(out, text, n)) < 0)
			return r;
		return buf_cstr(out);
	}
	while (i < n) {
		while (i < n && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' ||
				 text[i] == '\r'))
			i++;
		size_t s = i;
		int has_tok = 0;
		while (i < n && text[i] != ' ' && text[i] != '\t' && text[i] != '\n' &&
		       text[i] != '\r') {
			has_tok |= ftsq_tokch((unsigned char)text[i]);
			i++;
		}
		if (!has_tok)
			continue;
		if ((words && (r = buf_putc(out, ' ')) < 0) ||
		    (r = buf_putc(out, '"')) < 0 ||
		    (r = buf_append(out, text + s, i - s)) < 0 ||
		    (r = buf_putc(out, '"')) < 0)
			return r;
		words++;
	}
	if (!words)
		return M_EINVAL;
	return buf_cstr(out);
}
