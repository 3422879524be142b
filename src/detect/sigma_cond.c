/*
 * Sigma condition compiler and evaluator. A rule's condition is parsed
 * once (recursive descent, depth-bounded) into a small tree of n-ary
 * nodes, used by sigma_cond_describe(), and flattened into a postfix
 * program that sigma_cond_eval() runs with a fixed stack, so matching an
 * event costs no allocation and no recursion. Wildcard patterns (`1 of
 * selection_*`) are resolved to identifier indices at compile time.
 */
#include "detect/sigma_cond.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"

#define SC_MAX_POOL 8192 /* total identifier slots over all `of` nodes */

enum sc_op {
	SC_IDENT = 1,
	SC_ANY,
	SC_ALL,
	SC_NOT,
	SC_AND,
	SC_OR,
};

struct sc_node {
	uint8_t op;
	uint16_t nkids;
	int16_t first, next; /* child list; -1 ends */
	uint32_t arg;        /* name index, or offset into pool */
	uint32_t n;          /* pool entries for ANY/ALL */
	uint32_t pat_off, pat_len; /* pattern text for ANY/ALL */
};

struct sc_inst {
	uint8_t op;
	uint16_t n;
	uint32_t arg;
};

struct sigma_cond {
	size_t n_names;
	uint32_t *name_off; /* into blob, NUL-terminated */
	char *blob;         /* names, then the condition text */
	size_t text_off;
	struct sc_node *nodes;
	size_t n_nodes;
	int root;
	struct sc_inst *prog;
	size_t n_prog;
	uint16_t *pool;
	size_t n_pool;
};

enum sc_tok {
	T_END,
	T_LP,
	T_RP,
	T_WORD,
	T_AND,
	T_OR,
	T_NOT,
	T_OF,
	T_ONE,
	T_ALL,
	T_ANY,
	T_THEM,
};

/* Parser state: lives on the heap for one parse call. */
struct sc_parser {
	const char *s;
	size_t len, pos;
	/* current token */
	enum sc_tok tok;
	size_t tpos, tlen;
	const char *const *names;
	size_t n_names;
	struct sc_node nodes[SIGMA_COND_MAX_NODES];
	size_t n_nodes;
	uint16_t pool[SC_MAX_POOL];
	size_t n_pool;
	struct buf *err;
};

static int sc_fail(struct sc_parser *p, int rc, size_t col, const char *msg,
		   const char *word, size_t wlen)
{
	if (p->err) {
		if (word)
			buf_printf(p->err, "column %zu: %s '%.*s'", col + 1, msg,
				   (int)wlen, word);
		else
			buf_printf(p->err, "column %zu: %s", col + 1, msg);
	}
	return rc;
}

static int sc_word_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '_' || ch == '*' ||
	       ch == '-' || ch == '.' || ch == '?' || ch >= 0x80;
}

static int sc_kw(const char *w, size_t n, const char *kw)
{
	size_t i;

	if (strlen(kw) != n)
		return 0;
	for (i = 0; i < n; i++) {
		char ch = w[i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (ch != kw[i])
			return 0;
	}
	return 1;
}

/* Reads the next token into p->tok. Returns 0 or M_EPARSE. */
static int sc_next(struct sc_parser *p)
{
	const char *w;
	size_t n;

	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
				   p->s[p->pos] == '\r' || p->s[p->pos] == '\n'))
		p->pos++;
	p->tpos = p->pos;
	p->tlen = 0;
	if (p->pos >= p->len) {
		p->tok = T_END;
		return 0;
	}
	if (p->s[p->pos] == '(' || p->s[p->pos] == ')') {
		p->tok = p->s[p->pos] == '(' ? T_LP : T_RP;
		p->pos++;
		p->tlen = 1;
		return 0;
	}
	if (!sc_word_char((unsigned char)p->s[p->pos])) {
		if ((unsigned char)p->s[p->pos] >= 0x20 && (unsigned char)p->s[p->pos] < 0x7f)
			return sc_fail(p, M_EPARSE, p->pos, "unexpected character",
				       p->s + p->pos, 1);
		return sc_fail(p, M_EPARSE, p->pos, "unexpected control byte", NULL, 0);
	}
	while (p->pos < p->len && sc_word_char((unsigned char)p->s[p->pos]))
		p->pos++;
	w = p->s + p->tpos;
	n = p->pos - p->tpos;
	p->tlen = n;
	if (sc_kw(w, n, "and"))
		p->tok = T_AND;
	else if (sc_kw(w, n, "or"))
		p->tok = T_OR;
	else if (sc_kw(w, n, "not"))
		p->tok = T_NOT;
	else if (sc_kw(w, n, "of"))
		p->tok = T_OF;
	else if (sc_kw(w, n, "1"))
		p->tok = T_ONE;
	else if (sc_kw(w, n, "all"))
		p->tok = T_ALL;
	else if (sc_kw(w, n, "any"))
		p->tok = T_ANY;
	else if (sc_kw(w, n, "them"))
		p->tok = T_THEM;
	else
		p->tok = T_WORD;
	return 0;
}

/* Looks at the token after the current one without consuming it. */
static enum sc_tok sc_peek(struct sc_parser *p)
{
	size_t pos = p->pos, tpos = p->tpos, tlen = p->tlen;
	enum sc_tok tok = p->tok, t;
	struct buf *err = p->err;

	p->err = NULL;
	t = sc_next(p) < 0 ? T_END : p->tok;
	p->pos = pos;
	p->tok = tok;
	p->tpos = tpos;
	p->tlen = tlen;
	p->err = err;
	return t;
}

/* Glob match with '*' only; iterative, O(len(pat) * len(s)). */
static int sc_glob(const char *pat, size_t pn, const char *s)
{
	size_t sn = strlen(s);
	size_t pi = 0, si = 0, star = (size_t)-1, mark = 0;

	while (si < sn) {
		if (pi < pn && pat[pi] == '*') {
			star = pi++;
			mark = si;
		} else if (pi < pn && pat[pi] == s[si]) {
			pi++;
			si++;
		} else if (star != (size_t)-1) {
			pi = star + 1;
			si = ++mark;
		} else {
			return 0;
		}
	}
	while (pi < pn && pat[pi] == '*')
		pi++;
	return pi == pn;
}

static int sc_node_new(struct sc_parser *p, enum sc_op op)
{
	struct sc_node *nd;

	if (p->n_nodes >= SIGMA_COND_MAX_NODES)
		return sc_fail(p, M_ELIMIT, p->tpos,
			       "condition has more than 512 nodes", NULL, 0);
	nd = &p->nodes[p->n_nodes];
	memset(nd, 0, sizeof(*nd));
	nd->op = (uint8_t)op;
	nd->first = -1;
	nd->next = -1;
	return (int)p->n_nodes++;
}

static int sc_parse_or(struct sc_parser *p, int depth);

/* `1 of P`, `any of P`, `all of P`, `... of them`; current token is the
 * quantifier and the next one is known to be `of`. */
static int sc_parse_quant(struct sc_parser *p)
{
	enum sc_op op = p->tok == T_ALL ? SC_ALL : SC_ANY;
	size_t i, start;
	int rc, id, them;

	if ((rc = sc_next(p)) < 0 || (rc = sc_next(p)) < 0)
		return rc;
	if (p->tok != T_WORD && p->tok != T_THEM)
		return sc_fail(p, M_EPARSE, p->tpos,
			       "expected a pattern or 'them' after 'of'", NULL, 0);
	them = p->tok == T_THEM;
	if ((id = sc_node_new(p, op)) < 0)
		return id;
	start = p->n_pool;
	for (i = 0; i < p->n_names; i++) {
		const char *nm = p->names[i];
		int hit;

		if (!nm)
			continue;
		hit = them ? nm[0] != '_' : sc_glob(p->s + p->tpos, p->tlen, nm);
		if (!hit)
			continue;
		if (p->n_pool >= SC_MAX_POOL)
			return sc_fail(p, M_ELIMIT, p->tpos,
				       "too many identifiers in 'of' expressions", NULL, 0);
		p->pool[p->n_pool++] = (uint16_t)i;
	}
	if (p->n_pool == start)
		return sc_fail(p, M_EPARSE, p->tpos,
			       them ? "'them' matches no identifier"
				    : "pattern matches no identifier",
			       p->s + p->tpos, p->tlen);
	p->nodes[id].arg = (uint32_t)start;
	p->nodes[id].n = (uint32_t)(p->n_pool - start);
	p->nodes[id].pat_off = (uint32_t)p->tpos;
	p->nodes[id].pat_len = (uint32_t)p->tlen;
	if ((rc = sc_next(p)) < 0)
		return rc;
	return id;
}

static int sc_parse_primary(struct sc_parser *p, int depth)
{
	size_t i, lp;
	int rc, id;

	switch (p->tok) {
	case T_LP:
		lp = p->tpos;
		if ((rc = sc_next(p)) < 0)
			return rc;
		if ((id = sc_parse_or(p, depth + 1)) < 0)
			return id;
		if (p->tok != T_RP)
			return sc_fail(p, M_EPARSE, p->tok == T_END ? lp : p->tpos,
				       p->tok == T_END ? "unbalanced '('"
						       : "expected ')'", NULL, 0);
		if ((rc = sc_next(p)) < 0)
			return rc;
		return id;
	case T_ONE:
	case T_ANY:
	case T_ALL:
		if (sc_peek(p) == T_OF)
			return sc_parse_quant(p);
		/* a detection key literally named "all" or "1" */
		/* fall through */
	case T_WORD:
	case T_THEM:
		if (p->tok == T_WORD && p->s[p->tpos] >= '0' &&
		    p->s[p->tpos] <= '9' && sc_peek(p) == T_OF)
			return sc_fail(p, M_EUNSUPP, p->tpos,
				       "unsupported quantifier (use '1 of' or 'all of')",
				       p->s + p->tpos, p->tlen);
		for (i = 0; i < p->n_names; i++) {
			const char *nm = p->names[i];
			if (nm && strlen(nm) == p->tlen &&
			    memcmp(nm, p->s + p->tpos, p->tlen) == 0)
				break;
		}
		if (i == p->n_names)
			return sc_fail(p, M_ENOTFOUND, p->tpos, "unknown identifier",
				       p->s + p->tpos, p->tlen);
		if ((id = sc_node_new(p, SC_IDENT)) < 0)
			return id;
		p->nodes[id].arg = (uint32_t)i;
		if ((rc = sc_next(p)) < 0)
			return rc;
		return id;
	case T_END:
		return sc_fail(p, M_EPARSE, p->tpos, "expression expected at end", NULL, 0);
	case T_RP:
		return sc_fail(p, M_EPARSE, p->tpos, "unexpected ')'", NULL, 0);
	default:
		return sc_fail(p, M_EPARSE, p->tpos, "expression expected, got",
			       p->s + p->tpos, p->tlen);
	}
}

static int sc_parse_not(struct sc_parser *p, int depth)
{
	int rc, id, kid;

	if (depth > SIGMA_COND_MAX_DEPTH)
		return sc_fail(p, M_ELIMIT, p->tpos, "nesting deeper than 64", NULL, 0);
	if (p->tok != T_NOT)
		return sc_parse_primary(p, depth);
	if ((rc = sc_next(p)) < 0)
		return rc;
	if ((kid = sc_parse_not(p, depth + 1)) < 0)
		return kid;
	if ((id = sc_node_new(p, SC_NOT)) < 0)
		return id;
	p->nodes[id].first = (int16_t)kid;
	p->nodes[id].nkids = 1;
	return id;
}

/* One level of a left-associative n-ary operator: `kid (op kid)*`. */
static int sc_parse_nary(struct sc_parser *p, int depth, enum sc_tok tok,
			 enum sc_op op)
{
	int rc, first, last, kid, id;
	uint16_t n = 1;

	first = tok == T_AND ? sc_parse_not(p, depth) : sc_parse_nary(p, depth, T_AND, SC_AND);
	if (first < 0)
		return first;
	last = first;
	while (p->tok == tok) {
		if ((rc = sc_next(p)) < 0)
			return rc;
		kid = tok == T_AND ? sc_parse_not(p, depth)
				   : sc_parse_nary(p, depth, T_AND, SC_AND);
		if (kid < 0)
			return kid;
		p->nodes[last].next = (int16_t)kid;
		last = kid;
		n++;
	}
	if (n == 1)
		return first;
	if ((id = sc_node_new(p, op)) < 0)
		return id;
	p->nodes[id].first = (int16_t)first;
	p->nodes[id].nkids = n;
	return id;
}

static int sc_parse_or(struct sc_parser *p, int depth)
{
	if (depth > SIGMA_COND_MAX_DEPTH)
		return sc_fail(p, M_ELIMIT, p->tpos, "nesting deeper than 64", NULL, 0);
	return sc_parse_nary(p, depth, T_OR, SC_OR);
}

/* Postfix emission; recursion bounded by the tree depth, itself bounded by
 * SIGMA_COND_MAX_DEPTH (at most three nodes per nesting level). */
static void sc_emit(const struct sc_node *nodes, int id, struct sc_inst *prog,
		    size_t *n)
{
	const struct sc_node *nd = &nodes[id];
	int k;

	for (k = nd->first; k >= 0; k = nodes[k].next)
		sc_emit(nodes, k, prog, n);
	prog[*n].op = nd->op;
	prog[*n].n = nd->op == SC_ANY || nd->op == SC_ALL ? (uint16_t)nd->n : nd->nkids;
	prog[*n].arg = nd->arg;
	(*n)++;
}

int sigma_cond_parse(const char *text, size_t len, const char *const *names,
		     size_t n_names, struct sigma_cond **out, struct buf *err)
{
	struct sc_parser *p = NULL;
	struct sigma_cond *c = NULL;
	size_t i, blob_len = 0, off = 0;
	int rc, root;

	if (!out || (!text && len) || (!names && n_names)) {
		rc = M_EINVAL;
		goto out;
	}
	*out = NULL;
	if (n_names > SIGMA_COND_MAX_NAMES) {
		if (err)
			buf_printf(err, "more than %d detection identifiers",
				   SIGMA_COND_MAX_NAMES);
		rc = M_ELIMIT;
		goto out;
	}
	if (len > SIGMA_COND_MAX_TEXT) {
		if (err)
			buf_printf(err, "condition longer than %d bytes",
				   SIGMA_COND_MAX_TEXT);
		rc = M_ELIMIT;
		goto out;
	}
	for (i = 0; i < n_names; i++) {
		size_t nl = names[i] ? strnlen(names[i], SIGMA_COND_MAX_NAME_LEN + 1) : 0;
		if (nl > SIGMA_COND_MAX_NAME_LEN) {
			if (err)
				buf_printf(err, "identifier %zu longer than %d bytes",
					   i, SIGMA_COND_MAX_NAME_LEN);
			rc = M_ELIMIT;
			goto out;
		}
		blob_len += nl + 1;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		rc = M_ENOMEM;
		goto out;
	}
	p->s = text;
	p->len = len;
	p->names = names;
	p->n_names = n_names;
	p->err = err;
	/* Pipe aggregations (`| count() by x > 5`, `| near`) were deprecated
	 * for correlation rules; reject them before anything else. */
	for (i = 0; i < len; i++) {
		if (text[i] == '|') {
			rc = sc_fail(p, M_EUNSUPP, i,
				     "unsupported: aggregation in condition (use a correlation rule)",
				     NULL, 0);
			goto out;
		}
	}
	if ((rc = sc_next(p)) < 0)
		goto out;
	if (p->tok == T_END) {
		rc = sc_fail(p, M_EPARSE, 0, "empty condition", NULL, 0);
		goto out;
	}
	if ((root = sc_parse_or(p, 0)) < 0) {
		rc = root;
		goto out;
	}
	if (p->tok != T_END) {
		rc = sc_fail(p, M_EPARSE, p->tpos,
			     p->tok == T_RP ? "unbalanced ')'" : "unexpected token",
			     p->tok == T_RP ? NULL : p->s + p->tpos, p->tlen);
		goto out;
	}

	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = M_ENOMEM;
		goto out;
	}
	c->n_names = n_names;
	c->n_nodes = p->n_nodes;
	c->root = root;
	c->n_pool = p->n_pool;
	c->name_off = calloc(n_names ? n_names : 1, sizeof(*c->name_off));
	c->blob = malloc(blob_len + len + 1);
	c->nodes = malloc(p->n_nodes * sizeof(*c->nodes));
	c->prog = malloc(p->n_nodes * sizeof(*c->prog));
	c->pool = malloc((p->n_pool ? p->n_pool : 1) * sizeof(*c->pool));
	if (!c->name_off || !c->blob || !c->nodes || !c->prog || !c->pool) {
		rc = M_ENOMEM;
		goto out;
	}
	for (i = 0; i < n_names; i++) {
		size_t nl = names[i] ? strlen(names[i]) : 0;
		c->name_off[i] = (uint32_t)off;
		if (nl)
			memcpy(c->blob + off, names[i], nl);
		c->blob[off + nl] = '\0';
		off += nl + 1;
	}
	c->text_off = off;
	if (len)
		memcpy(c->blob + off, text, len);
	c->blob[off + len] = '\0';
	memcpy(c->nodes, p->nodes, p->n_nodes * sizeof(*c->nodes));
	if (p->n_pool)
		memcpy(c->pool, p->pool, p->n_pool * sizeof(*c->pool));
	sc_emit(c->nodes, root, c->prog, &c->n_prog);
	*out = c;
	c = NULL;
	rc = 0;
out:
	sigma_cond_free(c);
	free(p);
	return rc;
}

int sigma_cond_eval(const struct sigma_cond *c, const uint8_t *matched)
{
	uint8_t st[SIGMA_COND_MAX_NODES];
	size_t sp = 0, i, j;

	if (!c || (!matched && c->n_names))
		return M_EINVAL;
	for (i = 0; i < c->n_prog; i++) {
		const struct sc_inst *in = &c->prog[i];
		uint8_t v;

		switch (in->op) {
		case SC_IDENT:
			st[sp++] = matched[in->arg] != 0;
			break;
		case SC_ANY:
			v = 0;
			for (j = 0; j < in->n && !v; j++)
				v = matched[c->pool[in->arg + j]] != 0;
			st[sp++] = v;
			break;
		case SC_ALL:
			v = 1;
			for (j = 0; j < in->n && v; j++)
				v = matched[c->pool[in->arg + j]] != 0;
			st[sp++] = v;
			break;
		case SC_NOT:
			st[sp - 1] = !st[sp - 1];
			break;
		case SC_AND:
		case SC_OR:
			v = in->op == SC_AND;
			for (j = 0; j < in->n; j++) {
				if (in->op == SC_AND)
					v = v && st[sp - 1 - j];
				else
					v = v || st[sp - 1 - j];
			}
			sp -= in->n;
			st[sp++] = v;
			break;
		default:
			return M_EINVAL;
		}
	}
	return sp == 1 ? st[0] : M_EINVAL;
}

/* Kleene's three values: 0 false, 1 true, 2 unknown. */
static uint8_t k_not(uint8_t a)
{
	return a == 2 ? 2 : (uint8_t)!a;
}

static uint8_t k_and(uint8_t a, uint8_t b)
{
	return (a == 0 || b == 0) ? 0 : (a == 1 && b == 1) ? 1 : 2;
}

static uint8_t k_or(uint8_t a, uint8_t b)
{
	return (a == 1 || b == 1) ? 1 : (a == 0 && b == 0) ? 0 : 2;
}

int sigma_cond_eval3(const struct sigma_cond *c, const uint8_t *v)
{
	uint8_t st[SIGMA_COND_MAX_NODES];
	size_t sp = 0, i, j;

	if (!c || (!v && c->n_names))
		return M_EINVAL;
	for (i = 0; i < c->n_prog; i++) {
		const struct sc_inst *in = &c->prog[i];
		uint8_t x;

		switch (in->op) {
		case SC_IDENT:
			st[sp++] = v[in->arg] > 1 ? 2 : v[in->arg];
			break;
		case SC_ANY:
		case SC_ALL:
			x = in->op == SC_ALL;
			for (j = 0; j < in->n; j++) {
				uint8_t e = v[c->pool[in->arg + j]];

				e = e > 1 ? 2 : e;
				x = in->op == SC_ALL ? k_and(x, e) : k_or(x, e);
			}
			st[sp++] = x;
			break;
		case SC_NOT:
			st[sp - 1] = k_not(st[sp - 1]);
			break;
		case SC_AND:
		case SC_OR:
			x = in->op == SC_AND;
			for (j = 0; j < in->n; j++)
				x = in->op == SC_AND ? k_and(x, st[sp - 1 - j]) : k_or(x, st[sp - 1 - j]);
			sp -= in->n;
			st[sp++] = x;
			break;
		default:
			return M_EINVAL;
		}
	}
	return sp == 1 ? st[0] : M_EINVAL;
}

/* Recursion bounded by the tree depth (see sc_emit). */
static int sc_describe(const struct sigma_cond *c, int id, struct buf *out)
{
	const struct sc_node *nd = &c->nodes[id];
	const char *sep = nd->op == SC_AND ? " and " : " or ";
	uint32_t j;
	int rc = 0, k;

	switch (nd->op) {
	case SC_IDENT:
		rc = buf_puts(out, c->blob + c->name_off[nd->arg]);
		break;
	case SC_ANY:
	case SC_ALL:
		rc = buf_printf(out, "(%s of %.*s:", nd->op == SC_ALL ? "all" : "1",
				(int)nd->pat_len, c->blob + c->text_off + nd->pat_off);
		for (j = 0; j < nd->n && rc == 0; j++)
			rc = buf_printf(out, "%s%s", j ? ", " : " ",
					c->blob + c->name_off[c->pool[nd->arg + j]]);
		if (rc == 0)
			rc = buf_putc(out, ')');
		break;
	case SC_NOT:
		if ((rc = buf_puts(out, "(not ")) == 0 &&
		    (rc = sc_describe(c, nd->first, out)) == 0)
			rc = buf_putc(out, ')');
		break;
	default:
		rc = buf_putc(out, '(');
		for (k = nd->first; k >= 0 && rc == 0; k = c->nodes[k].next) {
			if (k != nd->first)
				rc = buf_puts(out, sep);
			if (rc == 0)
				rc = sc_describe(c, k, out);
		}
		if (rc == 0)
			rc = buf_putc(out, ')');
		break;
	}
	return rc;
}

int sigma_cond_describe(const struct sigma_cond *c, struct buf *out)
{
	if (!c || !out)
		return M_EINVAL;
	return sc_describe(c, c->root, out);
}

size_t sigma_cond_n_names(const struct sigma_cond *c)
{
	return c ? c->n_names : 0;
}

void sigma_cond_free(struct sigma_cond *c)
{
	if (!c)
		return;
	free(c->name_off);
	free(c->blob);
	free(c->nodes);
	free(c->prog);
	free(c->pool);
	free(c);
}
