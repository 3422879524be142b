/*
 * dmarc_feedback: parse incoming DMARC aggregate reports (RFC 7489
 * Appendix C XML, with the DMARCbis additions tolerated).
 *
 * Why a small streaming reader and not a DOM: a report is a flat schema of
 * known leaf paths (feedback/record/row/count ...), so the reader keeps only
 * the stack of open element names and the text of the current leaf, and
 * assigns each leaf by its path when it closes. Unknown elements and all
 * attributes are skipped. Reports come from strangers: no DTD is accepted
 * (so no entity expansion of any kind beyond the five predefined ones and
 * character references), depth, text and record counts are bounded, and a
 * malformed document is an error, never an abort.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "mail/dmarc_report.h"

#define FB_MAX_DEPTH 32
#define FB_NAME_MAX 48
#define FB_TEXT_MAX 1024

struct fb {
	const char *p;
	size_t len, i;
	char name[FB_MAX_DEPTH][FB_NAME_MAX];
	size_t depth;
	int root_seen;
	char text[FB_TEXT_MAX];
	size_t tlen;
	struct dmarc_feedback *out;
	size_t rec_cap;
	struct dmarc_fb_auth *auth; /* the open dkim/spf result, or NULL */
	char *why;
	size_t whylen;
};

static int fail(struct fb *f, int rc, const char *msg)
{
	if (f->why && f->whylen)
		snprintf(f->why, f->whylen, "%s at byte %zu", msg, f->i);
	return rc;
}

static int starts(const struct fb *f, const char *s)
{
	size_t n = strlen(s);
	return f->len - f->i >= n && memcmp(f->p + f->i, s, n) == 0;
}

/* Move past the next occurrence of end; -1 when there is none. */
static int skip_past(struct fb *f, const char *end)
{
	size_t n = strlen(end);
	for (size_t j = f->i; j + n <= f->len; j++) {
		if (memcmp(f->p + j, end, n) == 0) {
			f->i = j + n;
			return 0;
		}
	}
	return -1;
}

static void text_add(struct fb *f, const char *s, size_t n)
{
	if (f->tlen + n >= FB_TEXT_MAX)
		n = FB_TEXT_MAX - 1 - f->tlen; /* longer leaves are cut */
	memcpy(f->text + f->tlen, s, n);
	f->tlen += n;
}

/* Append code point cp as UTF-8. */
static void text_cp(struct fb *f, unsigned long cp)
{
	char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	text_add(f, u, n);
}

/* Character data up to the next '<', entities decoded. */
static int read_text(struct fb *f)
{
	while (f->i < f->len && f->p[f->i] != '<') {
		char c = f->p[f->i];
		if (c != '&') {
			if (f->depth == 0 && !isspace((unsigned char)c))
				return fail(f, M_EPARSE, "text outside the root element");
			text_add(f, &c, 1);
			f->i++;
			continue;
		}
		const char *semi = memchr(f->p + f->i, ';', f->len - f->i);
		if (!semi || semi - (f->p + f->i) > 12)
			return fail(f, M_EPARSE, "bad entity");
		const char *e = f->p + f->i + 1;
		size_t n = (size_t)(semi - e);
		if (n == 2 && memcmp(e, "lt", 2) == 0) {
			text_add(f, "<", 1);
		} else if (n == 2 && memcmp(e, "gt", 2) == 0) {
			text_add(f, ">", 1);
		} else if (n == 3 && memcmp(e, "amp", 3) == 0) {
			text_add(f, "&", 1);
		} else if (n == 4 && memcmp(e, "quot", 4) == 0) {
			text_add(f, "\"", 1);
		} else if (n == 4 && memcmp(e, "apos", 4) == 0) {
			text_add(f, "'", 1);
		} else if (n >= 2 && e[0] == '#') {
			int hex = e[1] == 'x' || e[1] == 'X';
			unsigned long cp = 0;
			size_t k = hex ? 2 : 1;
			if (k == n)
				return fail(f, M_EPARSE, "bad character reference");
			for (; k < n; k++) {
				int d = isdigit((unsigned char)e[k]) ? e[k] - '0'
					: hex && isxdigit((unsigned char)e[k])
						? tolower((unsigned char)e[k]) - 'a' + 10 : -1;
				if (d < 0)
					return fail(f, M_EPARSE, "bad character reference");
				cp = cp * (hex ? 16u : 10u) + (unsigned long)d;
			}
			if (cp == 0 || cp > 0x10ffff)
				return fail(f, M_EPARSE, "bad character reference");
			text_cp(f, cp);
		} else {
			return fail(f, M_EPARSE, "unknown entity");
		}
		f->i = (size_t)(semi - f->p) + 1;
	}
	return 0;
}

/* The path of the open elements below the root: "record/row/count". */
static void path_of(const struct fb *f, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (size_t d = 1; d < f->depth; d++)
		n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", d > 1 ? "/" : "",
				      f->name[d]);
}

static void set(char *dst, size_t cap, const char *s, int lower)
{
	size_t n = strlen(s);
	if (n >= cap)
		n = cap - 1;
	for (size_t i = 0; i < n; i++)
		dst[i] = lower ? (char)tolower((unsigned char)s[i]) : s[i];
	dst[n] = '\0';
}

/* Leading decimal digits, saturating at LLONG_MAX. */
static long long to_ll(const char *s)
{
	long long v = 0;
	for (size_t i = 0; isdigit((unsigned char)s[i]); i++) {
		int d = s[i] - '0';
		if (v > (LLONG_MAX - d) / 10)
			return LLONG_MAX;
		v = v * 10 + d;
	}
	return v;
}

#define SET(field, lower) set(field, sizeof(field), t, lower)

/* A leaf closed: store its trimmed text by path. */
static void leaf(struct fb *f, const char *path, char *t)
{
	struct dmarc_feedback *o = f->out;
	struct dmarc_fb_record *r = o->nrecord ? &o->record[o->nrecord - 1] : NULL;
	if (strcmp(path, "version") == 0) SET(o->version, 0);
	else if (strcmp(path, "report_metadata/org_name") == 0) SET(o->org_name, 0);
	else if (strcmp(path, "report_metadata/email") == 0) SET(o->email, 0);
	else if (strcmp(path, "report_metadata/extra_contact_info") == 0) SET(o->extra_contact, 0);
	else if (strcmp(path, "report_metadata/report_id") == 0) SET(o->report_id, 0);
	else if (strcmp(path, "report_metadata/date_range/begin") == 0) o->begin = to_ll(t);
	else if (strcmp(path, "report_metadata/date_range/end") == 0) o->end = to_ll(t);
	else if (strcmp(path, "policy_published/domain") == 0) SET(o->domain, 1);
	else if (strcmp(path, "policy_published/adkim") == 0) SET(o->adkim, 1);
	else if (strcmp(path, "policy_published/aspf") == 0) SET(o->aspf, 1);
	else if (strcmp(path, "policy_published/p") == 0) SET(o->p, 1);
	else if (strcmp(path, "policy_published/sp") == 0) SET(o->sp, 1);
	else if (strcmp(path, "policy_published/np") == 0) SET(o->np, 1);
	else if (strcmp(path, "policy_published/fo") == 0) SET(o->fo, 0);
	else if (strcmp(path, "policy_published/testing") == 0) SET(o->testing, 1);
	else if (strcmp(path, "policy_published/pct") == 0) o->pct = (int)(to_ll(t) % 1000);
	else if (!r || strncmp(path, "record/", 7) != 0) return;
	else if (strcmp(path + 7, "row/source_ip") == 0) SET(r->source_ip, 1);
	else if (strcmp(path + 7, "row/count") == 0) r->count = (unsigned long long)to_ll(t);
	else if (strcmp(path + 7, "row/policy_evaluated/disposition") == 0) SET(r->disposition, 1);
	else if (strcmp(path + 7, "row/policy_evaluated/dkim") == 0) SET(r->dkim, 1);
	else if (strcmp(path + 7, "row/policy_evaluated/spf") == 0) SET(r->spf, 1);
	else if (strcmp(path + 7, "identifiers/header_from") == 0) SET(r->header_from, 1);
	else if (strcmp(path + 7, "identifiers/envelope_from") == 0) SET(r->envelope_from, 1);
	else if (strcmp(path + 7, "identifiers/envelope_to") == 0) SET(r->envelope_to, 1);
	else if (!f->auth) return;
	else if (strcmp(path + 7, "auth_results/dkim/domain") == 0 ||
		 strcmp(path + 7, "auth_results/spf/domain") == 0) SET(f->auth->domain, 1);
	else if (strcmp(path + 7, "auth_results/dkim/selector") == 0) SET(f->auth->selector, 0);
	else if (strcmp(path + 7, "auth_results/spf/scope") == 0) SET(f->auth->scope, 1);
	else if (strcmp(path + 7, "auth_results/dkim/result") == 0 ||
		 strcmp(path + 7, "auth_results/spf/result") == 0) SET(f->auth->result, 1);
}

#undef SET

static int open_elem(struct fb *f, const char *name, size_t n)
{
	if (f->depth == FB_MAX_DEPTH)
		return fail(f, M_ELIMIT, "elements nested too deep");
	if (f->depth == 0) {
		if (f->root_seen)
			return fail(f, M_EPARSE, "a second root element");
		if (n != 8 || memcmp(name, "feedback", 8) != 0)
			return fail(f, M_EPARSE, "the root element is not <feedback>");
		f->root_seen = 1;
	}
	size_t k = n < FB_NAME_MAX ? n : FB_NAME_MAX - 1;
	memcpy(f->name[f->depth], name, k);
	f->name[f->depth][k] = '\0';
	f->depth++;
	f->tlen = 0;
	char path[FB_MAX_DEPTH * FB_NAME_MAX];
	path_of(f, path, sizeof(path));
	struct dmarc_feedback *o = f->out;
	if (strcmp(path, "record") == 0) {
		if (o->nrecord == DMARC_FB_MAX_RECORDS)
			return fail(f, M_ELIMIT, "too many records");
		if (o->nrecord == f->rec_cap) {
			size_t cap = f->rec_cap ? f->rec_cap * 2 : 4;
			struct dmarc_fb_record *r = realloc(o->record, cap * sizeof(*r));
			if (!r)
				return fail(f, M_ENOMEM, "out of memory");
			o->record = r;
			f->rec_cap = cap;
		}
		memset(&o->record[o->nrecord++], 0, sizeof(o->record[0]));
		f->auth = NULL;
	} else if (o->nrecord && (strcmp(path, "record/auth_results/dkim") == 0 ||
				  strcmp(path, "record/auth_results/spf") == 0)) {
		struct dmarc_fb_record *r = &o->record[o->nrecord - 1];
		int dkim = path[20] == 'd';
		size_t *cnt = dkim ? &r->ndkim : &r->nspf;
		f->auth = *cnt < DMARC_FB_MAX_AUTH
				  ? &(dkim ? r->dkim_res : r->spf_res)[(*cnt)++] : NULL;
	}
	return 0;
}

static int close_elem(struct fb *f, const char *name, size_t n)
{
	if (f->depth == 0)
		return fail(f, M_EPARSE, "a closing tag without an open element");
	const char *top = f->name[f->depth - 1];
	size_t k = n < FB_NAME_MAX ? n : FB_NAME_MAX - 1;
	if (strlen(top) != k || memcmp(top, name, k) != 0)
		return fail(f, M_EPARSE, "mismatched closing tag");
	char path[FB_MAX_DEPTH * FB_NAME_MAX];
	path_of(f, path, sizeof(path));
	f->text[f->tlen] = '\0';
	char *t = f->text;
	while (isspace((unsigned char)*t))
		t++;
	size_t tl = strlen(t);
	while (tl && isspace((unsigned char)t[tl - 1]))
		t[--tl] = '\0';
	leaf(f, path, t);
	if (strcmp(path, "record/auth_results/dkim") == 0 ||
	    strcmp(path, "record/auth_results/spf") == 0)
		f->auth = NULL;
	f->depth--;
	f->tlen = 0;
	return 0;
}

/* A tag name: local part (a namespace prefix dropped). */
static size_t tag_name(struct fb *f, const char **name)
{
	size_t s = f->i;
	while (f->i < f->len && !isspace((unsigned char)f->p[f->i]) && f->p[f->i] != '>' &&
	       f->p[f->i] != '/')
		f->i++;
	const char *n = f->p + s;
	size_t len = f->i - s;
	const char *colon = memchr(n, ':', len);
	if (colon) {
		len -= (size_t)(colon + 1 - n);
		n = colon + 1;
	}
	*name = n;
	return len;
}

static int read_tag(struct fb *f)
{
	if (starts(f, "<?"))
		return skip_past(f, "?>") < 0 ? fail(f, M_EPARSE, "unterminated <?") : 0;
	if (starts(f, "<!--"))
		return skip_past(f, "-->") < 0 ? fail(f, M_EPARSE, "unterminated comment") : 0;
	if (starts(f, "<![CDATA[")) {
		size_t s = f->i + 9;
		f->i = s;
		if (skip_past(f, "]]>") < 0)
			return fail(f, M_EPARSE, "unterminated CDATA");
		if (f->depth == 0)
			return fail(f, M_EPARSE, "CDATA outside the root element");
		text_add(f, f->p + s, f->i - 3 - s);
		return 0;
	}
	if (starts(f, "<!"))
		return fail(f, M_EPARSE, "DTDs are not accepted");
	const char *name;
	if (starts(f, "</")) {
		f->i += 2;
		size_t n = tag_name(f, &name);
		while (f->i < f->len && isspace((unsigned char)f->p[f->i]))
			f->i++;
		if (f->i >= f->len || f->p[f->i] != '>')
			return fail(f, M_EPARSE, "bad closing tag");
		f->i++;
		return close_elem(f, name, n);
	}
	f->i++;
	size_t n = tag_name(f, &name);
	if (n == 0)
		return fail(f, M_EPARSE, "empty tag name");
	/* attributes: skipped, quotes respected */
	char q = 0;
	int self = 0;
	for (;; f->i++) {
		if (f->i >= f->len)
			return fail(f, M_EPARSE, "unterminated tag");
		char c = f->p[f->i];
		if (q) {
			if (c == q)
				q = 0;
		} else if (c == '"' || c == '\'') {
			q = c;
		} else if (c == '>') {
			self = f->p[f->i - 1] == '/';
			f->i++;
			break;
		}
	}
	int rc = open_elem(f, name, n);
	if (rc == 0 && self)
		rc = close_elem(f, name, n);
	return rc;
}

int dmarc_feedback_parse(const char *xml, size_t len, struct dmarc_feedback *out, char *why,
			 size_t whylen)
{
	memset(out, 0, sizeof(*out));
	out->pct = -1;
	if (why && whylen)
		why[0] = '\0';
	struct fb *f = calloc(1, sizeof(*f));
	if (!f)
		return M_ENOMEM;
	f->p = xml;
	f->len = len;
	f->out = out;
	f->why = why;
	f->whylen = whylen;
	/* a UTF-8 byte order mark */
	if (len >= 3 && memcmp(xml, "\xef\xbb\xbf", 3) == 0)
		f->i = 3;
	int rc = 0;
	while (rc == 0 && f->i < f->len)
		rc = f->p[f->i] == '<' ? read_tag(f) : read_text(f);
	if (rc == 0 && (f->depth != 0 || !f->root_seen))
		rc = fail(f, M_EPARSE, "document ends inside an element or has no root");
	free(f);
	return rc;
}

void dmarc_feedback_fini(struct dmarc_feedback *fb)
{
	if (!fb)
		return;
	free(fb->record);
	fb->record = NULL;
	fb->nrecord = 0;
}
