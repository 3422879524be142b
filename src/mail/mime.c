/*
 * mime: the MIME walker (RFC 2045-2049). See mime.h for the shape of the
 * result and why it is flat.
 *
 * How: an entity is header bytes + body bytes. The top entity's header
 * fields come from struct msg; a part's are scanned from its bytes (only
 * the three Content-* fields matter). A multipart body is cut at delimiter
 * lines ("--boundary" at a line start with only blanks after it, so an
 * inner boundary that starts with the outer one is not mistaken for it),
 * and each piece is walked one level deeper. A message/rfc822 part is
 * walked as a new entity one level deeper. Leaves are decoded into the
 * result's arena (identity-encoded leaves are not copied) and hashed.
 *
 * Bounds: recursion depth <= max_depth (so the C stack is bounded too),
 * parts <= max_parts, decoded bytes <= max_decoded; every scan is over a
 * bounded slice of the input and advances on every step.
 */
#include "mail/mime.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"

/* arena room beyond the decoded bytes: header strings, addresses, names */
#define MIME_ARENA_EXTRA (8u * 1024 * 1024)
/* a Content-* value longer than this is read up to here (no real one is) */
#define MIME_MAX_FIELD (16 * 1024)

struct walker {
	struct mime_msg *mm;
	const struct mime_limits *lim;
	size_t decoded;
	size_t cap;      /* room in mm->parts */
	int nomem;
	int stop;        /* the part limit was reached: walk no further */
	/* Parameter values live here only until they are copied into the
	 * part's fixed fields; emptied after each part, so a thousand parts
	 * with long headers cost one part's worth. */
	struct arena scratch;
};

/* Raw Content-* values of one entity (pointers into the input; folding
 * kept, which the parameter parser treats as blanks). */
struct ent_hdrs {
	const char *ctype, *cdisp, *cte;
	size_t ctype_n, cdisp_n, cte_n;
};

static void note(struct walker *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note(struct walker *w, const char *fmt, ...)
{
	if (w->mm->errors++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(w->mm->err, sizeof(w->mm->err), fmt, ap);
		va_end(ap);
	}
}

/* ---- hashes: digests fetched once, shared by all threads ---- */

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha256, *md_sha1, *md_md5;

static void md_init(void)
{
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	md_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	md_md5 = EVP_MD_fetch(NULL, "MD5", NULL);
}

static void hex(const unsigned char *d, unsigned n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (unsigned i = 0; i < n; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[2 * n] = '\0';
}

static void digest(const EVP_MD *md, const void *p, size_t n, char *out)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	out[0] = '\0';
	if (md && EVP_Digest(p, n, d, &dl, md, NULL) == 1)
		hex(d, dl, out);
}

static void hash_part(struct mime_part *pt)
{
	pthread_once(&md_once, md_init);
	const void *p = pt->data ? (const void *)pt->data : "";
	digest(md_sha256, p, pt->len, pt->sha256);
	digest(md_sha1, p, pt->len, pt->sha1);
	digest(md_md5, p, pt->len, pt->md5);
}

/* ---- small string helpers ---- */

static void copy_lower(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)tolower((unsigned char)s[i]);
	dst[n] = '\0';
}

static void copy_str(char *dst, size_t cap, const char *s)
{
	size_t n = strlen(s);
	if (n >= cap) {
		n = cap - 1;
		/* do not cut a UTF-8 sequence in two */
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The first token of a structured value (before ';'), trimmed. */
static void first_token(const char *v, size_t n, const char **t, size_t *tl)
{
	size_t i = 0;
	while (i < n && is_ws(v[i]))
		i++;
	size_t s = i;
	while (i < n && v[i] != ';' && !is_ws(v[i]) && v[i] != '(')
		i++;
	*t = v + s;
	*tl = i - s;
}

/* ---- entity headers ---- */

static int hdr_name_is(const char *p, size_t n, const char *name)
{
	size_t l = strlen(name);
	return n == l && strncasecmp(p, name, l) == 0;
}

static void take_hdr(struct ent_hdrs *h, const char *name, size_t nl,
		     const char *v, size_t vl)
{
	if (vl > MIME_MAX_FIELD)
		vl = MIME_MAX_FIELD;
	if (hdr_name_is(name, nl, "content-type") && !h->ctype) {
		h->ctype = v;
		h->ctype_n = vl;
	} else if (hdr_name_is(name, nl, "content-disposition") && !h->cdisp) {
		h->cdisp = v;
		h->cdisp_n = vl;
	} else if (hdr_name_is(name, nl, "content-transfer-encoding") && !h->cte) {
		h->cte = v;
		h->cte_n = vl;
	}
}

/* 1 when the line at p looks like a header field ("name:"). */
static int looks_like_field(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && i < 200 && p[i] > ' ' && p[i] < 0x7f && p[i] != ':')
		i++;
	return i > 0 && i < n && p[i] == ':';
}

/* Splits an entity's bytes into header fields and body. A piece whose
 * first line is not a header field is all body. */
static void split_entity(const char *p, size_t n, struct ent_hdrs *h,
			 size_t *body_off)
{
	size_t i = 0;
	memset(h, 0, sizeof(*h));
	if (!looks_like_field(p, n)) {
		/* a leading empty line means "no header fields" */
		if (n >= 2 && p[0] == '\r' && p[1] == '\n')
			i = 2;
		else if (n >= 1 && p[0] == '\n')
			i = 1;
		*body_off = i;
		return;
	}
	while (i < n) {
		const char *nl = memchr(p + i, '\n', n - i);
		size_t le = nl ? (size_t)(nl - p) + 1 : n;
		size_t content = le - i;
		if (content && p[le - 1] == '\n')
			content--;
		if (content && p[i + content - 1] == '\r')
			content--;
		if (content == 0) {
			*body_off = le;
			return;
		}
		/* a field runs over continuation lines (starting with WSP) */
		size_t fe = le;
		while (fe < n && (p[fe] == ' ' || p[fe] == '\t')) {
			const char *nl2 = memchr(p + fe, '\n', n - fe);
			fe = nl2 ? (size_t)(nl2 - p) + 1 : n;
		}
		const char *colon = memchr(p + i, ':', fe - i);
		if (colon) {
			size_t nlen = (size_t)(colon - (p + i));
			while (nlen && is_ws(p[i + nlen - 1]))
				nlen--;
			size_t vs = (size_t)(colon - p) + 1;
			size_t ve = fe;
			while (ve > vs && is_ws(p[ve - 1]))
				ve--;
			take_hdr(h, p + i, nlen, p + vs, ve - vs);
		}
		i = fe;
	}
	*body_off = n;
}

/* ---- the part list ---- */

static struct mime_part *new_part(struct walker *w, int depth, int parent)
{
	struct mime_msg *mm = w->mm;
	if (mm->nparts >= w->lim->max_parts) {
		if (!mm->limited)
			note(w, "more than %u MIME parts", w->lim->max_parts);
		mm->limited = 1;
		w->stop = 1;
		return NULL;
	}
	if (mm->nparts == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;
		if (cap > w->lim->max_parts)
			cap = w->lim->max_parts;
		struct mime_part *np = realloc(mm->parts, cap * sizeof(*np));
		if (!np) {
			w->nomem = 1;
			return NULL;
		}
		mm->parts = np;
		w->cap = cap;
	}
	struct mime_part *pt = &mm->parts[mm->nparts++];
	memset(pt, 0, sizeof(*pt));
	pt->depth = depth;
	pt->parent = parent;
	return pt;
}

static void part_headers(struct walker *w, struct mime_part *pt,
			 const struct ent_hdrs *h, const char *dflt)
{
	struct arena *a = &w->scratch;
	const char *t;
	size_t tl;

	copy_str(pt->ctype, sizeof(pt->ctype), dflt);
	pt->ctype_raw = h->ctype;
	pt->ctype_raw_len = h->ctype_n;
	pt->cdisp_raw = h->cdisp;
	pt->cdisp_raw_len = h->cdisp_n;
	if (h->ctype) {
		first_token(h->ctype, h->ctype_n, &t, &tl);
		const char *slash = memchr(t, '/', tl);
		if (tl && slash && slash != t && slash + 1 < t + tl)
			copy_lower(pt->ctype, sizeof(pt->ctype), t, tl);
		else
			note(w, "bad Content-Type '%.*s'", (int)(tl > 40 ? 40 : tl), t);
		char *cs = mime_param(a, h->ctype, h->ctype_n, "charset");
		if (cs)
			copy_lower(pt->charset, sizeof(pt->charset), cs, strlen(cs));
		char *b = mime_param(a, h->ctype, h->ctype_n, "boundary");
		if (b)
			copy_str(pt->boundary, sizeof(pt->boundary), b);
	}
	char *fname = NULL;
	if (h->cdisp) {
		first_token(h->cdisp, h->cdisp_n, &t, &tl);
		copy_lower(pt->disposition, sizeof(pt->disposition), t, tl);
		fname = mime_param(a, h->cdisp, h->cdisp_n, "filename");
	}
	if ((!fname || !*fname) && h->ctype)
		fname = mime_param(a, h->ctype, h->ctype_n, "name");
	if (fname) {
		/* a path in a name is never wanted: keep the last component */
		const char *base = fname;
		for (const char *q = fname; *q; q++)
			if (*q == '/' || *q == '\\')
				base = q + 1;
		copy_str(pt->filename, sizeof(pt->filename), *base ? base : fname);
	}
	arena_reset(a);
	pt->cte = MIME_CTE_IDENTITY;
	if (h->cte) {
		first_token(h->cte, h->cte_n, &t, &tl);
		if (tl == 6 && strncasecmp(t, "base64", 6) == 0)
			pt->cte = MIME_CTE_BASE64;
		else if (tl == 16 && strncasecmp(t, "quoted-printable", 16) == 0)
			pt->cte = MIME_CTE_QP;
		else if (!(tl == 4 && strncasecmp(t, "7bit", 4) == 0) &&
			 !(tl == 4 && strncasecmp(t, "8bit", 4) == 0) &&
			 !(tl == 6 && strncasecmp(t, "binary", 6) == 0) && tl)
			pt->cte = MIME_CTE_UNKNOWN;
	}
}

/* Decodes a leaf's body into pt->data within the byte budget. */
static void decode_leaf(struct walker *w, struct mime_part *pt, const char *b,
			size_t n)
{
	size_t room = w->lim->max_decoded > w->decoded
			      ? w->lim->max_decoded - w->decoded : 0;
	int trunc = 0;
	size_t bad = 0;

	pt->raw_len = n;
	if (pt->cte == MIME_CTE_BASE64 || pt->cte == MIME_CTE_QP) {
		size_t want = pt->cte == MIME_CTE_BASE64 ? n / 4 * 3 + 3 : n;
		size_t cap = want < room ? want : room;
		unsigned char *o = arena_alloc(&w->mm->arena, cap ? cap : 1);
		if (!o) {
			w->nomem = 1;
			return;
		}
		if (pt->cte == MIME_CTE_BASE64)
			pt->len = mime_b64_decode(b, n, o, cap, &trunc, &bad);
		else
			pt->len = mime_qp_decode(b, n, o, cap, &trunc, &bad);
		pt->data = o;
		if (bad)
			note(w, "%zu bad bytes in %s", bad,
			     pt->cte == MIME_CTE_BASE64 ? "base64" : "quoted-printable");
	} else {
		pt->data = (const unsigned char *)b;
		pt->len = n < room ? n : room;
		trunc = pt->len < n;
	}
	if (trunc) {
		pt->truncated = 1;
		if (!w->mm->limited)
			note(w, "decoded bytes over %zu", w->lim->max_decoded);
		w->mm->limited = 1;
	}
	w->decoded += pt->len;
	if (!w->lim->no_hashes)
		hash_part(pt);
}

static void walk_entity(struct walker *w, const struct ent_hdrs *h,
			const char *body, size_t n, int depth, int parent,
			const char *dflt);

/* Finds the next delimiter line of "--b" at or after from. Returns its
 * start (or n when none), and through *next the index after its line,
 * through *closing whether it is "--b--". */
static size_t find_delim(const char *p, size_t n, const char *needle, size_t nl,
			 size_t from, size_t *next, int *closing)
{
	while (from < n) {
		const char *hit = memmem(p + from, n - from, needle, nl);
		if (!hit)
			break;
		size_t k = (size_t)(hit - p);
		from = k + 1;
		if (k > 0 && p[k - 1] != '\n')
			continue;
		size_t e = k + nl;
		int cl = 0;
		if (e + 1 < n && p[e] == '-' && p[e + 1] == '-') {
			cl = 1;
			e += 2;
		}
		while (e < n && (p[e] == ' ' || p[e] == '\t'))
			e++;
		if (e < n && p[e] == '\r')
			e++;
		if (e < n && p[e] != '\n')
			continue; /* "--b" is only a prefix of this line */
		*next = e < n ? e + 1 : n;
		*closing = cl;
		return k;
	}
	*next = n;
	*closing = 0;
	return n;
}

/* The piece before a delimiter ends before the line break that precedes
 * it (that CRLF belongs to the delimiter). */
static size_t piece_end(const char *p, size_t start, size_t k)
{
	if (k > start && p[k - 1] == '\n')
		k--;
	if (k > start && p[k - 1] == '\r')
		k--;
	return k;
}

static void walk_multipart(struct walker *w, int idx, const char *body,
			   size_t n, int depth)
{
	struct mime_part *pt = &w->mm->parts[idx];
	char needle[2 + sizeof(pt->boundary)];
	size_t bl = strlen(pt->boundary);
	const char *dflt = strcmp(pt->ctype, "multipart/digest") == 0
				   ? "message/rfc822" : "text/plain";

	needle[0] = '-';
	needle[1] = '-';
	memcpy(needle + 2, pt->boundary, bl);
	size_t nl = bl + 2, next, at;
	int closing;

	at = find_delim(body, n, needle, nl, 0, &next, &closing);
	if (at == n) {
		note(w, "no boundary '%s' in multipart body", pt->boundary);
		return;
	}
	while (!closing && !w->nomem && !w->stop) {
		size_t start = next, nnext;
		int ncl;
		size_t k = find_delim(body, n, needle, nl, start, &nnext, &ncl);
		if (k == n) {
			note(w, "missing closing boundary '%s'", w->mm->parts[idx].boundary);
			ncl = 1;
		}
		size_t end = k == n ? n : piece_end(body, start, k);
		struct ent_hdrs h;
		size_t off;
		split_entity(body + start, end - start, &h, &off);
		walk_entity(w, &h, body + start + off, end - start - off, depth + 1,
			    idx, dflt);
		next = nnext;
		closing = ncl;
	}
}

static void walk_entity(struct walker *w, const struct ent_hdrs *h,
			const char *body, size_t n, int depth, int parent,
			const char *dflt)
{
	if ((unsigned)depth > w->lim->max_depth) {
		if (!w->mm->limited)
			note(w, "MIME nesting deeper than %u", w->lim->max_depth);
		w->mm->limited = 1;
		return;
	}
	struct mime_part *pt = new_part(w, depth, parent);
	if (!pt)
		return;
	int idx = (int)(pt - w->mm->parts);
	part_headers(w, pt, h, dflt);
	pt->is_attachment = strcmp(pt->disposition, "attachment") == 0 ||
			    pt->filename[0] != '\0';

	if (strncmp(pt->ctype, "multipart/", 10) == 0) {
		if (pt->boundary[0]) {
			pt->is_multipart = 1;
			pt->raw_len = n;
			walk_multipart(w, idx, body, n, depth);
			return;
		}
		note(w, "multipart without a boundary");
		copy_str(pt->ctype, sizeof(pt->ctype), "text/plain");
	}
	if (strcmp(pt->ctype, "message/rfc822") == 0 ||
	    strcmp(pt->ctype, "message/global") == 0) {
		const char *inner = body;
		size_t inner_n = n;
		pt->is_message = 1;
		pt->raw_len = n;
		if (pt->cte == MIME_CTE_BASE64 || pt->cte == MIME_CTE_QP) {
			/* not allowed (RFC 2046 §5.2.1) but sent: decode it */
			decode_leaf(w, pt, body, n);
			inner = (const char *)pt->data;
			inner_n = pt->len;
			pt->data = NULL;
			pt->len = 0;
			pt->sha256[0] = pt->sha1[0] = pt->md5[0] = '\0';
		}
		struct ent_hdrs ih;
		size_t off;
		split_entity(inner, inner_n, &ih, &off);
		walk_entity(w, &ih, inner + off, inner_n - off, depth + 1, idx,
			    "text/plain");
		return;
	}
	decode_leaf(w, pt, body, n);
	if (!pt->is_attachment) {
		pt->is_body_text = strcmp(pt->ctype, "text/plain") == 0;
		pt->is_body_html = strcmp(pt->ctype, "text/html") == 0;
	}
}

/* ---- top-level header fields ---- */

/* Every field named name, unfolded, joined with ", " into one string in
 * the arena; *count gets how many there were. */
static char *joined(struct walker *w, const struct msg *m, const char *name,
		    size_t *count, size_t *len)
{
	size_t total = 0, c = 0;
	for (size_t i = 0; i < m->nhdr; i++)
		if (msg_hdr_is(m, i, name)) {
			size_t vl;
			msg_hdr_value(m, i, &vl);
			total += vl + 2;
			c++;
		}
	*count = c;
	char *o = arena_alloc(&w->mm->arena, total + 1);
	if (!o)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < m->nhdr; i++) {
		if (!msg_hdr_is(m, i, name))
			continue;
		size_t vl;
		const char *v = msg_hdr_value(m, i, &vl);
		if (n) {
			o[n++] = ',';
			o[n++] = ' ';
		}
		for (size_t j = 0; j < vl; j++)
			if (v[j] != '\r' && v[j] != '\n')
				o[n++] = v[j];
	}
	/* trim */
	size_t s = 0;
	while (s < n && is_ws(o[s]))
		s++;
	while (n > s && is_ws(o[n - 1]))
		n--;
	o[n] = '\0';
	*len = n - s;
	return o + s;
}

static int top_headers(struct walker *w, const struct msg *m)
{
	struct mime_msg *mm = w->mm;
	struct arena *a = &mm->arena;
	size_t n, cnt;

	long si = msg_find(m, "Subject", 0);
	mm->nsubject = msg_count(m, "Subject");
	mm->subject = "";
	if (si >= 0) {
		size_t vl;
		const char *v = msg_hdr_value(m, (size_t)si, &vl);
		char *u = arena_alloc(a, vl + 1);
		if (!u)
			return M_ENOMEM;
		size_t o = 0;
		for (size_t j = 0; j < vl; j++)
			if (v[j] != '\r' && v[j] != '\n')
				u[o++] = v[j];
		size_t s = 0;
		while (s < o && is_ws(u[s]))
			s++;
		while (o > s && is_ws(u[o - 1]))
			o--;
		mm->subject = mime_decode_words(a, u + s, o - s);
		if (!mm->subject)
			return M_ENOMEM;
	}
	static const struct {
		const char *name;
		size_t off;
	} lists[] = {
		{"From", offsetof(struct mime_msg, from)},
		{"To", offsetof(struct mime_msg, to)},
		{"Cc", offsetof(struct mime_msg, cc)},
		{"Reply-To", offsetof(struct mime_msg, reply_to)},
		{"Sender", offsetof(struct mime_msg, sender)},
	};
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		struct addr_list *al = (struct addr_list *)(void *)((char *)mm + lists[i].off);
		char *v = joined(w, m, lists[i].name, &cnt, &n);
		if (!v || addr_parse_list(a, v, n, al) < 0)
			return M_ENOMEM;
		if (i == 0)
			mm->nfrom = cnt;
	}
	return 0;
}

/* ---- entry points ---- */

void mime_limits_default(struct mime_limits *lim)
{
	lim->max_depth = MIME_DEFAULT_MAX_DEPTH;
	lim->max_parts = MIME_DEFAULT_MAX_PARTS;
	lim->max_decoded = MIME_DEFAULT_MAX_DECODED;
	lim->no_hashes = 0;
}

int mime_parse(const struct msg *m, const struct mime_limits *lim,
	       struct mime_msg **out)
{
	struct mime_limits dl;
	struct walker w;
	struct ent_hdrs h;
	int rc = 0;

	*out = NULL;
	if (!m)
		return M_EINVAL;
	if (!lim) {
		mime_limits_default(&dl);
		lim = &dl;
	}
	if (lim->max_parts == 0)
		return M_EINVAL;
	struct mime_msg *mm = calloc(1, sizeof(*mm));
	if (!mm)
		return M_ENOMEM;
	size_t dec = lim->max_decoded < ((size_t)1 << 40) ? lim->max_decoded
							  : ((size_t)1 << 40);
	size_t cap = dec + dec / 2 + MIME_ARENA_EXTRA + m->hdr_bytes * 16;
	arena_init(&mm->arena, 16 * 1024, cap);
	memset(&w, 0, sizeof(w));
	arena_init(&w.scratch, 16 * 1024, 2u * 1024 * 1024);
	w.mm = mm;
	w.lim = lim;

	rc = top_headers(&w, m);
	if (rc)
		goto out;
	memset(&h, 0, sizeof(h));
	for (size_t i = 0; i < m->nhdr; i++) {
		size_t vl, nl = m->hdr[i].name_len;
		const char *v = msg_hdr_value(m, i, &vl);
		take_hdr(&h, m->hdr[i].raw, nl, v, vl);
	}
	walk_entity(&w, &h, m->body ? m->body : "", m->body_len, 0, -1,
		    "text/plain");
	if (w.nomem)
		rc = M_ENOMEM;
out:
	arena_fini(&w.scratch);
	if (rc) {
		mime_free(mm);
		return rc;
	}
	*out = mm;
	return 0;
}

void mime_free(struct mime_msg *mm)
{
	if (!mm)
		return;
	arena_fini(&mm->arena);
	free(mm->parts);
	free(mm);
}
