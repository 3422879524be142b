/*
 * STIX 2.1 indicators and TAXII 2.1 collections. Why a small pattern parser
 * of our own: the store matches single values, so only patterns that say
 * "this value" can be loaded -- one `=` comparison, or an OR of them, or an
 * AND of hashes of one file -- and everything else must be rejected with a
 * reason an operator can read, never guessed at. The parser reads the whole
 * STIX pattern grammar (observation operators, qualifiers, every comparison
 * operator and literal) so that the reason names the first unsupported
 * construct rather than "syntax error". Nesting, tokens and comparisons
 * are bounded; input never aborts it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/err.h"
#include "core/str.h"
#include "detect/feed.h"

#define STIX_MAX_PATTERN 65536u
#define STIX_MAX_DEPTH 32
#define STIX_MAX_CMP 1024
#define STIX_MAX_PATH 256

/* ---- tokens ---------------------------------------------------------- */

enum stix_tok {
	ST_END, ST_LBRACK, ST_RBRACK, ST_LPAREN, ST_RPAREN, ST_COMMA,
	ST_OP,    /* = != < <= > >= */
	ST_STR,   /* '...' (raw, escapes not undone) */
	ST_NUM,
	ST_LIT,   /* t'..' h'..' b'..' true false */
	ST_PATH,  /* object-type:path */
	ST_WORD,  /* keyword */
	ST_ERR,
};

struct stix_cmp {
	enum intel_type type;
	size_t off, len;      /* in the unescaped value buffer */
	int is_hash;
};

struct stix_pp {
	const char *s;
	size_t n, i;
	enum stix_tok tok;
	const char *tp;       /* token text */
	size_t tn;
	int depth;
	int syntax;           /* a syntax error was found */
	int reason;           /* first unsupported construct, -1 none */
	const char *why;
	struct stix_cmp cmp[STIX_MAX_CMP];
	size_t ncmp;
	char vals[STIX_MAX_PATTERN];
	size_t vlen;
};

static int stix_ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int stix_ident_char(unsigned char c)
{
	return stix_ident_start(c) || (c >= '0' && c <= '9') || c == '-';
}

/* Skips a '...' string at s[i] (i at the opening quote); the index after
 * the closing quote, or 0 when unterminated. */
static size_t stix_skip_str(const char *s, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		if (s[i] == '\\') {
			i++;
			continue;
		}
		if (s[i] == '\'')
			return i + 1;
	}
	return 0;
}

static void stix_syntax(struct stix_pp *pp, const char *why)
{
	if (!pp->syntax) {
		pp->syntax = 1;
		pp->why = why;
	}
	pp->tok = ST_ERR;
}

static void stix_problem(struct stix_pp *pp, enum feed_reason r,
			 const char *why)
{
	if (pp->reason < 0) {
		pp->reason = (int)r;
		pp->why = why;
	}
}

static void stix_next(struct stix_pp *pp)
{
	const char *s = pp->s;
	size_t n = pp->n, i = pp->i;
	unsigned char c;

	if (pp->syntax) {
		pp->tok = ST_ERR;
		return;
	}
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
			 s[i] == '\n'))
		i++;
	pp->tp = s + i;
	pp->tn = 0;
	if (i >= n) {
		pp->tok = ST_END;
		pp->i = i;
		return;
	}
	c = (unsigned char)s[i];
	switch (c) {
	case '[': pp->tok = ST_LBRACK; i++; goto done;
	case ']': pp->tok = ST_RBRACK; i++; goto done;
	case '(': pp->tok = ST_LPAREN; i++; goto done;
	case ')': pp->tok = ST_RPAREN; i++; goto done;
	case ',': pp->tok = ST_COMMA; i++; goto done;
	case '=':
		pp->tok = ST_OP;
		i += (i + 1 < n && s[i + 1] == '=') ? 2 : 1;
		goto done;
	case '!':
		if (i + 1 < n && s[i + 1] == '=') {
			pp->tok = ST_OP;
			i += 2;
			goto done;
		}
		break;
	case '<':
	case '>':
		pp->tok = ST_OP;
		i += (i + 1 < n && (s[i + 1] == '=' || (c == '<' && s[i + 1] == '>'))) ? 2 : 1;
		goto done;
	case '\'': {
		size_t e = stix_skip_str(s, n, i);

		if (e == 0)
			break;
		pp->tok = ST_STR;
		pp->tp = s + i + 1;
		pp->tn = e - i - 2;
		pp->i = e;
		return;
	}
	default:
		break;
	}
	if ((c >= '0' && c <= '9') || c == '-' || c == '+') {
		size_t j = i + 1;

		while (j < n && ((s[j] >= '0' && s[j] <= '9') || s[j] == '.'))
			j++;
		if (j == i + 1 && (c == '-' || c == '+')) {
			stix_syntax(pp, "stray sign");
			return;
		}
		pp->tok = ST_NUM;
		i = j;
		goto done;
	}
	if (stix_ident_start(c)) {
		size_t j = i;

		while (j < n && stix_ident_char((unsigned char)s[j]))
			j++;
		/* t'...', h'...', b'...' literals. */
		if (j == i + 1 && j < n && s[j] == '\'' &&
		    (c == 't' || c == 'h' || c == 'b')) {
			size_t e = stix_skip_str(s, n, j);

			if (e == 0) {
				stix_syntax(pp, "unterminated literal");
				return;
			}
			pp->tok = ST_LIT;
			i = e;
			goto done;
		}
		if (j < n && s[j] == ':') {
			/* An object path: type ':' components. */
			j++;
			while (j < n) {
				if (stix_ident_char((unsigned char)s[j]) || s[j] == '.') {
					j++;
				} else if (s[j] == '\'') {
					size_t e = stix_skip_str(s, n, j);

					if (e == 0) {
						stix_syntax(pp, "unterminated path component");
						return;
					}
					j = e;
				} else if (s[j] == '[') {
					size_t k = j + 1;

					while (k < n && ((s[k] >= '0' && s[k] <= '9') || s[k] == '*'))
						k++;
					if (k == j + 1 || k >= n || s[k] != ']')
						break;
					j = k + 1;
				} else {
					break;
				}
			}
			pp->tok = ST_PATH;
			i = j;
			goto done;
		}
		pp->tok = (j - i == 4 && strncasecmp(s + i, "true", 4) == 0) ||
				  (j - i == 5 && strncasecmp(s + i, "false", 5) == 0)
			  ? ST_LIT : ST_WORD;
		i = j;
		goto done;
	}
	stix_syntax(pp, "unexpected character");
	return;
done:
	pp->tn = (size_t)(s + i - pp->tp);
	pp->i = i;
}

static int stix_word(const struct stix_pp *pp, const char *w)
{
	return pp->tok == ST_WORD && strlen(w) == pp->tn &&
	       strncasecmp(pp->tp, w, pp->tn) == 0;
}

/* ---- paths and values ------------------------------------------------ */

/* The object path without quotes, lower-cased, into out. */
static int stix_path_norm(const char *p, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (c == '\'')
			continue;
		if (c == '\\' && i + 1 < n)
			c = p[++i];
		if (o + 1 >= cap)
			return -1;
		out[o++] = (char)str_lower_byte((unsigned char)c);
	}
	out[o] = '\0';
	return 0;
}

static const struct {
	const char *path;
	enum intel_type t;
	size_t hash_len;   /* for file hashes: the hex length */
} stix_paths[] = {
	{"ipv4-addr:value", INTEL_IP, 0},
	{"ipv6-addr:value", INTEL_IP, 0},
	{"domain-name:value", INTEL_DOMAIN, 0},
	{"url:value", INTEL_URL, 0},
	{"email-addr:value", INTEL_EMAIL, 0},
	{"file:hashes.md5", INTEL_HASH, 32},
	{"file:hashes.sha-1", INTEL_HASH, 40},
	{"file:hashes.sha1", INTEL_HASH, 40},
	{"file:hashes.sha-256", INTEL_HASH, 64},
	{"file:hashes.sha256", INTEL_HASH, 64},
};

/* Records an '=' comparison of path with the string token. */
static void stix_compare(struct stix_pp *pp, const char *path, size_t pn,
			 const char *val, size_t vn, int *is_hash)
{
	char norm[STIX_MAX_PATH];
	struct stix_cmp *c;
	size_t k, start;

	*is_hash = 0;
	if (stix_path_norm(path, pn, norm, sizeof(norm)) < 0) {
		stix_problem(pp, FEED_R_PATTERN_PATH, "object path too long");
		return;
	}
	for (k = 0; k < sizeof(stix_paths) / sizeof(stix_paths[0]); k++)
		if (strcmp(norm, stix_paths[k].path) == 0)
			break;
	if (k == sizeof(stix_paths) / sizeof(stix_paths[0])) {
		stix_problem(pp, FEED_R_PATTERN_PATH,
			     strncmp(norm, "file:hashes.", 12) == 0 ?
			     "hash algorithm not supported (MD5, SHA-1, SHA-256)" :
			     "object path not supported");
		return;
	}
	*is_hash = stix_paths[k].hash_len != 0;
	if (pp->ncmp >= STIX_MAX_CMP) {
		stix_problem(pp, FEED_R_LIMIT, "too many comparisons");
		return;
	}
	/* Undo the two escapes a STIX string has: \' and \\. */
	start = pp->vlen;
	for (size_t i = 0; i < vn; i++) {
		char ch = val[i];

		if (ch == '\\' && i + 1 < vn)
			ch = val[++i];
		if (pp->vlen >= sizeof(pp->vals))
			return;
		pp->vals[pp->vlen++] = ch;
	}
	if (stix_paths[k].hash_len && pp->vlen - start != stix_paths[k].hash_len) {
		stix_problem(pp, FEED_R_BAD_VALUE,
			     "hash length does not match its algorithm");
		return;
	}
	c = &pp->cmp[pp->ncmp++];
	c->type = stix_paths[k].t;
	c->off = start;
	c->len = pp->vlen - start;
	c->is_hash = *is_hash;
}

/* ---- grammar --------------------------------------------------------- */

static int stix_cmp_or(struct stix_pp *pp, int *hash_only);

/* A literal operand (after IN: a parenthesised list). */
static void stix_operand(struct stix_pp *pp)
{
	if (pp->tok == ST_STR || pp->tok == ST_NUM || pp->tok == ST_LIT) {
		stix_next(pp);
		return;
	}
	if (pp->tok == ST_LPAREN) {
		for (int k = 0; k < STIX_MAX_CMP; k++) {
			stix_next(pp);
			if (pp->tok != ST_STR && pp->tok != ST_NUM && pp->tok != ST_LIT) {
				stix_syntax(pp, "expected a literal in a set");
				return;
			}
			stix_next(pp);
			if (pp->tok == ST_RPAREN) {
				stix_next(pp);
				return;
			}
			if (pp->tok != ST_COMMA) {
				stix_syntax(pp, "expected , or ) in a set");
				return;
			}
		}
		stix_syntax(pp, "set too long");
		return;
	}
	stix_syntax(pp, "expected a literal");
}

/* comparison: '(' cmp_or ')' | EXISTS path | path [NOT] op literal.
 * *hash_only says whether it is one file-hash '=' comparison (or a
 * parenthesised group of only those). */
static int stix_cmp_atom(struct stix_pp *pp, int *hash_only)
{
	const char *path, *val;
	size_t pn, vn;
	int neg = 0;

	*hash_only = 0;
	if (pp->tok == ST_LPAREN) {
		if (++pp->depth > STIX_MAX_DEPTH) {
			stix_syntax(pp, "nested too deep");
			return -1;
		}
		stix_next(pp);
		if (stix_cmp_or(pp, hash_only) < 0)
			return -1;
		pp->depth--;
		if (pp->tok != ST_RPAREN) {
			stix_syntax(pp, "expected )");
			return -1;
		}
		stix_next(pp);
		return 0;
	}
	if (stix_word(pp, "EXISTS")) {
		stix_next(pp);
		if (pp->tok != ST_PATH) {
			stix_syntax(pp, "expected an object path after EXISTS");
			return -1;
		}
		stix_problem(pp, FEED_R_PATTERN_OPERATOR, "EXISTS is not supported");
		stix_next(pp);
		return 0;
	}
	if (pp->tok != ST_PATH) {
		stix_syntax(pp, "expected an object path");
		return -1;
	}
	path = pp->tp;
	pn = pp->tn;
	stix_next(pp);
	if (stix_word(pp, "NOT")) {
		neg = 1;
		stix_next(pp);
	}
	if (pp->tok == ST_OP && pp->tp[0] == '=' && !neg) {
		stix_next(pp);
		if (pp->tok != ST_STR) {
			if (pp->tok == ST_NUM || pp->tok == ST_LIT) {
				stix_problem(pp, FEED_R_PATTERN_FORM,
					     "comparison with a non-string literal");
				stix_next(pp);
				return 0;
			}
			stix_syntax(pp, "expected a literal after =");
			return -1;
		}
		val = pp->tp;
		vn = pp->tn;
		stix_compare(pp, path, pn, val, vn, hash_only);
		stix_next(pp);
		return 0;
	}
	if (pp->tok == ST_OP) {
		stix_problem(pp, FEED_R_PATTERN_OPERATOR,
			     neg ? "NOT = is not supported" :
			     "operator other than = not supported");
		stix_next(pp);
		stix_operand(pp);
		return pp->syntax ? -1 : 0;
	}
	if (stix_word(pp, "IN") || stix_word(pp, "LIKE") ||
	    stix_word(pp, "MATCHES") || stix_word(pp, "ISSUBSET") ||
	    stix_word(pp, "ISSUPERSET")) {
		static const char *const msgs[] = {
			"operator IN not supported", "operator LIKE not supported",
			"operator MATCHES not supported",
			"operator ISSUBSET not supported",
			"operator ISSUPERSET not supported"};
		int k = stix_word(pp, "IN") ? 0 : stix_word(pp, "LIKE") ? 1 :
			stix_word(pp, "MATCHES") ? 2 : stix_word(pp, "ISSUBSET") ? 3 : 4;

		stix_problem(pp, FEED_R_PATTERN_OPERATOR, msgs[k]);
		stix_next(pp);
		stix_operand(pp);
		return pp->syntax ? -1 : 0;
	}
	stix_syntax(pp, "expected a comparison operator");
	return -1;
}

/* AND of comparisons: allowed only when every member is a file hash. */
static int stix_cmp_and(struct stix_pp *pp, int *hash_only)
{
	int n = 0, all_hash = 1, h;

	for (;;) {
		if (stix_cmp_atom(pp, &h) < 0)
			return -1;
		all_hash &= h;
		n++;
		if (!stix_word(pp, "AND"))
			break;
		stix_next(pp);
		if (n > STIX_MAX_CMP) {
			stix_syntax(pp, "too many comparisons");
			return -1;
		}
	}
	if (n > 1 && !all_hash)
		stix_problem(pp, FEED_R_PATTERN_FORM,
			     "AND of comparisons other than hashes of one file");
	*hash_only = all_hash;
	return 0;
}

static int stix_cmp_or(struct stix_pp *pp, int *hash_only)
{
	int n = 0, h;

	*hash_only = 1;
	for (;;) {
		if (stix_cmp_and(pp, &h) < 0)
			return -1;
		*hash_only &= h;
		n++;
		if (!stix_word(pp, "OR"))
			break;
		stix_next(pp);
		if (n > STIX_MAX_CMP) {
			stix_syntax(pp, "too many comparisons");
			return -1;
		}
	}
	/* An OR inside an AND group is not "hashes of one file". */
	if (n > 1)
		*hash_only = 0;
	return 0;
}

static int stix_obs_or(struct stix_pp *pp);

/* Qualifiers: WITHIN n SECONDS, REPEATS n TIMES, START t'..' STOP t'..'. */
static int stix_qualifiers(struct stix_pp *pp)
{
	for (int k = 0; k < 8; k++) {
		if (stix_word(pp, "WITHIN") || stix_word(pp, "REPEATS")) {
			int within = stix_word(pp, "WITHIN");

			stix_problem(pp, FEED_R_PATTERN_FORM,
				     "qualifiers (WITHIN, REPEATS, START/STOP) not supported");
			stix_next(pp);
			if (pp->tok != ST_NUM) {
				stix_syntax(pp, "expected a number");
				return -1;
			}
			stix_next(pp);
			if (!stix_word(pp, within ? "SECONDS" : "TIMES")) {
				stix_syntax(pp, within ? "expected SECONDS" : "expected TIMES");
				return -1;
			}
			stix_next(pp);
		} else if (stix_word(pp, "START")) {
			stix_problem(pp, FEED_R_PATTERN_FORM,
				     "qualifiers (WITHIN, REPEATS, START/STOP) not supported");
			stix_next(pp);
			if (pp->tok != ST_LIT)
				return stix_syntax(pp, "expected a timestamp"), -1;
			stix_next(pp);
			if (!stix_word(pp, "STOP"))
				return stix_syntax(pp, "expected STOP"), -1;
			stix_next(pp);
			if (pp->tok != ST_LIT)
				return stix_syntax(pp, "expected a timestamp"), -1;
			stix_next(pp);
		} else {
			return 0;
		}
	}
	stix_syntax(pp, "too many qualifiers");
	return -1;
}

static int stix_obs_atom(struct stix_pp *pp)
{
	int h;

	if (++pp->depth > STIX_MAX_DEPTH) {
		stix_syntax(pp, "nested too deep");
		return -1;
	}
	if (pp->tok == ST_LBRACK) {
		stix_next(pp);
		if (stix_cmp_or(pp, &h) < 0)
			return -1;
		if (pp->tok != ST_RBRACK) {
			stix_syntax(pp, "expected ]");
			return -1;
		}
	} else if (pp->tok == ST_LPAREN) {
		stix_next(pp);
		if (stix_obs_or(pp) < 0)
			return -1;
		if (pp->tok != ST_RPAREN) {
			stix_syntax(pp, "expected )");
			return -1;
		}
	} else {
		stix_syntax(pp, "expected [ or (");
		return -1;
	}
	pp->depth--;
	stix_next(pp);
	return stix_qualifiers(pp);
}

/* Observation expressions: OR is a union and fine; AND and FOLLOWEDBY
 * need two observations to correlate, which a value store cannot do. */
static int stix_obs_or(struct stix_pp *pp)
{
	for (int n = 0; n <= STIX_MAX_CMP; n++) {
		if (stix_obs_atom(pp) < 0)
			return -1;
		if (stix_word(pp, "AND") || stix_word(pp, "FOLLOWEDBY")) {
			stix_problem(pp, FEED_R_PATTERN_FORM,
				     stix_word(pp, "AND") ?
				     "AND of observation expressions not supported" :
				     "FOLLOWEDBY not supported");
		} else if (!stix_word(pp, "OR")) {
			return 0;
		}
		stix_next(pp);
	}
	stix_syntax(pp, "too many observation expressions");
	return -1;
}

int feed_stix_pattern(const char *pat, size_t len, const struct feed_item *meta,
		      struct feed_items *out, const char **why)
{
	struct stix_pp *pp;
	int r;

	*why = "";
	if (len == 0 || len > STIX_MAX_PATTERN) {
		*why = len ? "pattern too long" : "empty pattern";
		return FEED_R_PATTERN_SYNTAX;
	}
	pp = calloc(1, sizeof(*pp));
	if (pp == NULL) {
		*why = "out of memory";
		return FEED_R_LIMIT;
	}
	pp->s = pat;
	pp->n = len;
	pp->reason = -1;
	stix_next(pp);
	if (stix_obs_or(pp) == 0 && pp->tok != ST_END)
		stix_syntax(pp, "unexpected text after the pattern");
	if (pp->syntax) {
		*why = pp->why;
		r = FEED_R_PATTERN_SYNTAX;
	} else if (pp->reason >= 0) {
		*why = pp->why;
		r = pp->reason;
	} else if (pp->ncmp == 0) {
		*why = "no comparison";
		r = FEED_R_PATTERN_SYNTAX;
	} else {
		r = -1;
		for (size_t i = 0; i < pp->ncmp; i++) {
			int e = feed_items_push(out, pp->cmp[i].type,
						pp->vals + pp->cmp[i].off,
						pp->cmp[i].len, meta);
			if (e < 0) {
				*why = "too many indicators";
				r = FEED_R_LIMIT;
				break;
			}
		}
	}
	free(pp);
	return r;
}

/* ---- bundles --------------------------------------------------------- */

/* Indicators by id, the latest version of each (TAXII pages add to it). */
struct stix_acc {
	json_t *latest;
	size_t objects;
};

static int64_t stix_time(const json_t *o, const char *key, int *bad)
{
	const char *s = json_string_value(json_object_get(o, key));
	int64_t t = 0;

	if (s == NULL)
		return 0;
	if (feed_parse_time(s, strlen(s), &t) < 0) {
		*bad = 1;
		return 0;
	}
	return t;
}

static int64_t stix_modified(const json_t *o)
{
	int bad = 0;
	int64_t t = stix_time(o, "modified", &bad);

	if (t == 0)
		t = stix_time(o, "created", &bad);
	return t;
}

/* Adds the indicators of one objects array; the latest `modified` of an id
 * wins, a tie goes to the one read last. */
static int stix_acc_add(struct stix_acc *a, json_t *objs, struct feed_stats *st)
{
	size_t i;
	json_t *o;

	if (objs == NULL)
		return 0;
	if (!json_is_array(objs))
		return M_EPARSE;
	json_array_foreach(objs, i, o) {
		const char *id, *type = json_string_value(json_object_get(o, "type"));
		json_t *old;

		if (type == NULL || strcmp(type, "indicator") != 0)
			continue;
		if (++a->objects > FEED_MAX_ITEMS) {
			feed_stats_note(st, FEED_R_LIMIT, NULL, 0, "too many objects");
			return 0;
		}
		id = json_string_value(json_object_get(o, "id"));
		if (id == NULL || id[0] == '\0') {
			feed_stats_note(st, FEED_R_BAD_OBJECT, NULL, 0, "indicator without id");
			continue;
		}
		old = json_object_get(a->latest, id);
		if (old != NULL) {
			if (stix_modified(o) < stix_modified(old)) {
				feed_stats_note(st, FEED_R_SUPERSEDED, id, strlen(id), "");
				continue;
			}
			feed_stats_note(st, FEED_R_SUPERSEDED, id, strlen(id), "");
		}
		if (json_object_set(a->latest, id, o) < 0)
			return M_ENOMEM;
	}
	return 0;
}

/* Turns the latest version of every indicator into items. */
static int stix_acc_emit(struct stix_acc *a, const struct feed_defaults *d,
			 struct feed_items *out, struct feed_stats *st)
{
	const char *id;
	json_t *o;

	json_object_foreach(a->latest, id, o) {
		const char *pt = json_string_value(json_object_get(o, "pattern_type"));
		const char *pat = json_string_value(json_object_get(o, "pattern"));
		json_t *conf = json_object_get(o, "confidence");
		struct feed_item meta = {.confidence = d->confidence};
		const char *why;
		int bad = 0, r;

		if (json_is_true(json_object_get(o, "revoked"))) {
			feed_stats_note(st, FEED_R_REVOKED, id, strlen(id), "");
			continue;
		}
		if (pt != NULL && strcmp(pt, "stix") != 0) {
			feed_stats_note(st, FEED_R_PATTERN_TYPE, pt, strlen(pt),
					"only pattern_type stix is loaded");
			continue;
		}
		if (pat == NULL) {
			feed_stats_note(st, FEED_R_BAD_OBJECT, id, strlen(id),
					"indicator without pattern");
			continue;
		}
		meta.valid_from = stix_time(o, "valid_from", &bad);
		meta.valid_until = stix_time(o, "valid_until", &bad);
		meta.first_seen = meta.valid_from;
		meta.last_seen = stix_modified(o);
		if (bad) {
			feed_stats_note(st, FEED_R_BAD_FIELD, id, strlen(id),
					"unparsable valid_from or valid_until");
			continue;
		}
		if (meta.valid_until > 0 && d->now_us > 0 && meta.valid_until <= d->now_us) {
			feed_stats_note(st, FEED_R_EXPIRED, id, strlen(id), "valid_until passed");
			continue;
		}
		if (json_is_integer(conf) && json_integer_value(conf) >= 0 &&
		    json_integer_value(conf) <= 100)
			meta.confidence = (uint8_t)json_integer_value(conf);
		r = feed_stix_pattern(pat, strlen(pat), &meta, out, &why);
		if (r >= 0)
			feed_stats_note(st, (enum feed_reason)r, pat, strlen(pat), why);
	}
	return 0;
}

static void stix_json_err(struct buf *err, const char *what,
			  const json_error_t *je)
{
	buf_printf(err, "%s: bad JSON at line %d column %d: %s", what, je->line,
		   je->column, je->text);
}

int feed_parse_stix(const char *p, size_t len, const struct feed_defaults *d,
		    struct feed_items *out, struct feed_stats *st,
		    struct buf *err)
{
	struct stix_acc a = {.latest = json_object()};
	json_error_t je;
	json_t *root = NULL, *objs = NULL, *wrap = NULL;
	const char *type;
	int r = M_EPARSE;

	if (a.latest == NULL)
		return M_ENOMEM;
	root = json_loadb(p, len, 0, &je);
	if (root == NULL) {
		stix_json_err(err, "STIX", &je);
		goto out;
	}
	type = json_string_value(json_object_get(root, "type"));
	if (type && strcmp(type, "bundle") == 0) {
		objs = json_object_get(root, "objects");
	} else if (type == NULL && json_is_array(json_object_get(root, "objects"))) {
		objs = json_object_get(root, "objects");
	} else if (type && json_is_string(json_object_get(root, "id"))) {
		wrap = json_array();
		if (wrap == NULL || json_array_append(wrap, root) < 0) {
			r = M_ENOMEM;
			goto out;
		}
		objs = wrap;
	} else {
		buf_printf(err, "not a STIX bundle, TAXII envelope or STIX object");
		goto out;
	}
	r = stix_acc_add(&a, objs, st);
	if (r == M_EPARSE)
		buf_printf(err, "\"objects\" is not an array");
	if (r == 0)
		r = stix_acc_emit(&a, d, out, st);
out:
	json_decref(wrap);
	json_decref(root);
	json_decref(a.latest);
	return r;
}

/* ---- TAXII 2.1 ------------------------------------------------------- */

/* Appends "&name=escaped(value)" (or "?..." first) to url. */
static int taxii_param(struct buf *url, int *first, const char *name,
		       const char *value)
{
	char *e = curl_easy_escape(NULL, value, 0);
	int r;

	if (e == NULL)
		return M_ENOMEM;
	r = buf_printf(url, "%c%s=%s", *first ? '?' : '&', name, e);
	curl_free(e);
	*first = 0;
	return r;
}

int feed_load_taxii(const struct feed_conf *fc, const struct feed_defaults *d,
		    struct feed_items *out, struct feed_stats *st,
		    struct buf *err)
{
	static const char *const hdrs[] = {
		"Accept: application/taxii+json;version=2.1", NULL};
	struct stix_acc a = {.latest = json_object()};
	struct buf base, url, body, hdr;
	char *next = NULL, *after = NULL, *coll = NULL;
	size_t blen;
	int r = 0, page;

	buf_init(&base, 8192);
	buf_init(&url, 16384);
	buf_init(&body, (fc->max_bytes > 0 ? (size_t)fc->max_bytes :
			 (size_t)FEED_DEF_MAX_BYTES) + 1);
	buf_init(&hdr, 256);
	if (a.latest == NULL) {
		r = M_ENOMEM;
		goto out;
	}
	if (fc->added_after && fc->added_after[0] &&
	    (after = strdup(fc->added_after)) == NULL) {
		r = M_ENOMEM;
		goto out;
	}
	coll = curl_easy_escape(NULL, fc->collection ? fc->collection : "", 0);
	blen = strlen(fc->url_or_path);
	while (blen > 0 && fc->url_or_path[blen - 1] == '/')
		blen--;
	if (coll == NULL ||
	    buf_printf(&base, "%.*s/collections/%s/objects/", (int)blen,
		       fc->url_or_path, coll) < 0 ||
	    buf_cstr(&base) < 0) {
		r = M_ENOMEM;
		goto out;
	}
	for (page = 0; page < FEED_MAX_PAGES; page++) {
		json_error_t je;
		json_t *root;
		const char *nx;
		int first = 1, more;

		buf_reset(&url);
		if (buf_append(&url, base.p, base.len) < 0 ||
		    (after && taxii_param(&url, &first, "added_after", after) < 0) ||
		    (next && taxii_param(&url, &first, "next", next) < 0) ||
		    buf_cstr(&url) < 0) {
			r = M_ENOMEM;
			goto out;
		}
		r = feed_fetch(fc, url.p, hdrs, &body, "X-TAXII-Date-Added-Last",
			       &hdr, st, err);
		if (r < 0)
			goto out;
		root = json_loadb(body.p ? body.p : "", body.len, 0, &je);
		if (root == NULL || !json_is_object(root)) {
			feed_errf(err, fc, "page %d: %s at line %d: %s", page + 1,
				  root ? "not a JSON object" : "bad JSON",
				  je.line, root ? "" : je.text);
			json_decref(root);
			r = M_EPARSE;
			goto out;
		}
		r = stix_acc_add(&a, json_object_get(root, "objects"), st);
		if (r < 0) {
			feed_errf(err, fc, "page %d: %s", page + 1,
				  r == M_EPARSE ? "\"objects\" is not an array" :
				  "out of memory");
			json_decref(root);
			goto out;
		}
		more = json_is_true(json_object_get(root, "more"));
		nx = json_string_value(json_object_get(root, "next"));
		if (more && ((nx && next && strcmp(nx, next) == 0) ||
			     (!(nx && nx[0]) && after && hdr.len == strlen(after) &&
			      memcmp(hdr.p, after, hdr.len) == 0))) {
			/* The same page again: a broken server, stop. */
			feed_errf(err, fc, "page %d: paging does not advance", page + 1);
			r = M_EPARSE;
		}
		free(next);
		next = NULL;
		if (r < 0) {
			/* reported above */
		} else if (more && nx && nx[0]) {
			next = strdup(nx);
		} else if (more && hdr.len > 0) {
			/* Servers without `next`: continue after the last
			 * object's date_added. */
			free(after);
			after = strndup(hdr.p, hdr.len);
			if (after == NULL)
				r = M_ENOMEM;
		} else if (more) {
			feed_errf(err, fc, "page %d: more is true but there is no next "
				  "and no X-TAXII-Date-Added-Last", page + 1);
			r = M_EPARSE;
		}
		if (r == 0 && more && nx && nx[0] && next == NULL)
			r = M_ENOMEM;
		json_decref(root);   /* nx dies here */
		if (r < 0)
			goto out;
		if (!more)
			break;
	}
	if (page == FEED_MAX_PAGES) {
		feed_errf(err, fc, "more than %d pages", FEED_MAX_PAGES);
		r = M_ELIMIT;
		goto out;
	}
	r = stix_acc_emit(&a, d, out, st);
out:
	if (r == M_ENOMEM && err && err->len == 0)
		feed_errf(err, fc, "out of memory");
	curl_free(coll);
	free(next);
	free(after);
	buf_fini(&base);
	buf_fini(&url);
	buf_fini(&body);
	buf_fini(&hdr);
	json_decref(a.latest);
	return r;
}
