/*
 * URL extraction from mail bodies (see urls.h for what is found and why).
 * One pass over the text finds candidates; each is cut at its end, trimmed,
 * rebuilt with its host canonical and handed to the indicator store's
 * normaliser, then kept once in a small hash set. HTML is read in one more
 * pass that looks only at tags, attribute values, entities and the text
 * between <a> and </a>; the visible text it gathers is then read as text.
 * Every loop is bounded by the input length or by a constant.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>
#include <libpsl.h>

#include "core/err.h"
#include "core/str.h"
#include "detect/intel.h"
#include "mail/urls.h"

#define URLS_SLOTS 1024u            /* power of two, > 2 * URLS_MAX */
#define URLS_SCAN_MAX 8192u         /* bytes looked at for one URL's end */
#define URLS_NORM_MAX (4 * URLS_MAX_LEN)
#define URLS_ATTR_MAX (2 * URLS_MAX_LEN)

void url_list_init(struct url_list *l)
{
	memset(l, 0, sizeof(*l));
}

void url_list_fini(struct url_list *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++) {
		free(l->item[i].url);
		free(l->item[i].host);
		free(l->item[i].shown_host);
	}
	free(l->item);
	free(l->slot);
	memset(l, 0, sizeof(*l));
}

static int is_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z');
}

/* Case-insensitive: does p[0..n) start with the lower-case ASCII word w? */
static int starts_ci(const char *p, size_t n, const char *w)
{
	size_t k, wl = strlen(w);

	if (n < wl)
		return 0;
	for (k = 0; k < wl; k++)
		if (str_lower_byte((unsigned char)p[k]) != (unsigned char)w[k])
			return 0;
	return 1;
}

/* One UTF-8 sequence at p[0..n): its length (1-4) and code point, or 0 when
 * it is not well formed (overlong, surrogate, past U+10FFFF, cut). */
static size_t utf8_dec(const unsigned char *p, size_t n, uint32_t *cp)
{
	uint32_t c = p[0], min;
	size_t len, k;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		c &= 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (k = 1; k < len; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[k] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static size_t utf8_enc(uint32_t c, char *o)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xc0 | (c >> 6));
		o[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xe0 | (c >> 12));
		o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (c >> 18));
	o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	o[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* Characters that end a URL in running text. */
static int stop_cp(uint32_t c)
{
	return c == 0xa0 || (c >= 0x2000 && c <= 0x206f) ||
	       (c >= 0x3000 && c <= 0x303f) || (c >= 0xff00 && c <= 0xffef) ||
	       c == 0xfeff || c == 0xfffd;
}

/* Japanese, Chinese and Korean letters: a URL glued to such text ends
 * where the script changes from ASCII. */
static int cjk_cp(uint32_t c)
{
	return (c >= 0x3040 && c <= 0x30ff) || (c >= 0x3400 && c <= 0x4dbf) ||
	       (c >= 0x4e00 && c <= 0x9fff) || (c >= 0xac00 && c <= 0xd7af) ||
	       (c >= 0xf900 && c <= 0xfaff);
}

static int stop_ascii(unsigned char c)
{
	return c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == '"' ||
	       c == '`' || c == '{' || c == '}' || c == '|' || c == '^';
}

static uint32_t fnv1a(const char *p)
{
	uint32_t h = 2166136261u;

	for (; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

int url_host_normalise(const char *host, size_t len, char *out, size_t cap)
{
	char tmp[URLS_MAX_HOST * 3 + 1];
	size_t i, o = 0;
	int ascii = 1, rc;
	char *a = NULL;

	if (cap == 0)
		return M_ELIMIT;
	if (len > sizeof(tmp) - 1)
		return M_ELIMIT;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)host[i];

		if (c == '%' && i + 2 < len &&
		    str_hexval((unsigned char)host[i + 1]) >= 0 &&
		    str_hexval((unsigned char)host[i + 2]) >= 0) {
			c = (unsigned char)(str_hexval((unsigned char)host[i + 1]) *
						    16 +
					    str_hexval((unsigned char)host[i + 2]));
			i += 2;
		}
		if (c < 0x80 && (stop_ascii(c) || c == '/' || c == '\\' ||
				 c == '?' || c == '#' || c == '@' || c == '%'))
			return M_EINVAL;
		if (c >= 0x80)
			ascii = 0;
		tmp[o++] = (char)str_lower_byte(c);
	}
	while (o > 0 && tmp[o - 1] == '.')
		o--;
	if (o == 0)
		return M_EINVAL;
	tmp[o] = '\0';
	if (!ascii) {
		rc = idn2_to_ascii_8z(tmp, &a,
				      IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
		if (rc != IDN2_OK)
			rc = idn2_to_ascii_8z(tmp, &a,
					      IDN2_TRANSITIONAL |
						      IDN2_NFC_INPUT);
		if (rc != IDN2_OK)
			return M_EINVAL;
		o = strlen(a);
		while (o > 0 && a[o - 1] == '.')
			o--;
		if (o == 0 || o > URLS_MAX_HOST || o + 1 > cap) {
			idn2_free(a);
			return o == 0 ? M_EINVAL : M_ELIMIT;
		}
		memcpy(out, a, o);
		out[o] = '\0';
		idn2_free(a);
		return 0;
	}
	if (o > URLS_MAX_HOST || o + 1 > cap)
		return M_ELIMIT;
	memcpy(out, tmp, o + 1);
	return 0;
}

const char *url_site(const char *host)
{
	const char *p, *r;
	int numeric = 1;

	if (host[0] == '[')
		return host;
	for (p = host; *p; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			numeric = 0;
	if (numeric)
		return host;
	r = psl_registrable_domain(psl_builtin(), host);
	return r ? r : host;
}

/* Finds url in l: its index, or -1 (and *h its hash). */
static long list_find(const struct url_list *l, const char *url, uint32_t *h)
{
	uint32_t k;
	size_t probe;

	*h = fnv1a(url);
	if (!l->slot)
		return -1;
	for (probe = 0, k = *h & (URLS_SLOTS - 1); probe < URLS_SLOTS;
	     probe++, k = (k + 1) & (URLS_SLOTS - 1)) {
		uint32_t v = l->slot[k];

		if (v == 0)
			return -1;
		if (strcmp(l->item[v - 1].url, url) == 0)
			return (long)(v - 1);
	}
	return -1;
}

static int list_add(struct url_list *l, const char *url, const char *host,
		    int cut, long *idx)
{
	uint32_t h, k;
	long at = list_find(l, url, &h);
	struct url_item *it;

	if (at >= 0) {
		*idx = at;
		return 0;
	}
	*idx = -1;
	if (l->n >= URLS_MAX) {
		l->truncated = 1;
		return 0;
	}
	if (!l->slot) {
		l->slot = calloc(URLS_SLOTS, sizeof(*l->slot));
		if (!l->slot)
			return M_ENOMEM;
	}
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		struct url_item *ni;

		if (nc > URLS_MAX)
			nc = URLS_MAX;
		ni = realloc(l->item, nc * sizeof(*ni));
		if (!ni)
			return M_ENOMEM;
		l->item = ni;
		l->cap = nc;
	}
	it = &l->item[l->n];
	memset(it, 0, sizeof(*it));
	it->url = strdup(url);
	it->host = strdup(host);
	if (!it->url || !it->host) {
		free(it->url);
		free(it->host);
		return M_ENOMEM;
	}
	it->cut = cut;
	for (k = h & (URLS_SLOTS - 1); l->slot[k];
	     k = (k + 1) & (URLS_SLOTS - 1))
		;
	l->slot[k] = (uint32_t)(l->n + 1);
	*idx = (long)l->n++;
	return 0;
}

/* Scheme length (up to and with "//") of a URL we extract, 0 if none;
 * *www set when the URL is a bare "www." host. */
static size_t url_scheme(const char *p, size_t n, int *www)
{
	*www = 0;
	if (starts_ci(p, n, "http://"))
		return 7;
	if (starts_ci(p, n, "https://"))
		return 8;
	if (starts_ci(p, n, "ftp://"))
		return 6;
	if (starts_ci(p, n, "www.")) {
		*www = 1;
		return 0;
	}
	return 0;
}

/* Splits the authority of u[0..n) (after the scheme's "//" at a): the
 * userinfo end, host and port. 0, or M_EINVAL without a host. */
struct url_parts {
	size_t auth, user_end, host, host_end, port_end, rest;
};

static int url_split(const char *u, size_t n, size_t a, struct url_parts *pt)
{
	size_t k;

	pt->auth = a;
	k = a;
	while (k < n && u[k] != '/' && u[k] != '?' && u[k] != '#' &&
	       u[k] != '\\')
		k++;
	pt->rest = pt->port_end = k;
	pt->user_end = a;
	pt->host = a;
	for (size_t j = a; j < k; j++)
		if (u[j] == '@') {
			pt->user_end = j + 1;
			pt->host = j + 1;
		}
	pt->host_end = k;
	for (size_t j = k; j > pt->host; j--) {
		if (u[j - 1] == ']')
			break;
		if (u[j - 1] == ':') {
			pt->host_end = j - 1;
			break;
		}
	}
	return pt->host_end > pt->host ? 0 : M_EINVAL;
}

/* Rebuilds raw[0..n) (scheme "//" at sl, or a bare host when sl == 0) with
 * a canonical host and an encoded path, normalises it and adds it. *idx is
 * the item's index, or -1 when the candidate is not a URL or was dropped. */
static int add_url(struct url_list *l, const char *raw, size_t n, size_t sl,
		   long *idx)
{
	char host[URLS_MAX_HOST + 1];
	char *buf = NULL, *norm = NULL;
	size_t o = 0, k, nlen, cap;
	struct url_parts pt;
	int cut = 0, rc = 0;
	static const char hx[] = "0123456789ABCDEF";

	*idx = -1;
	if (n > URLS_MAX_LEN) {
		n = URLS_MAX_LEN;
		while (n > 0 && ((unsigned char)raw[n] & 0xc0) == 0x80)
			n--;
		cut = 1;
	}
	if (url_split(raw, n, sl, &pt) < 0 ||
	    url_host_normalise(raw + pt.host, pt.host_end - pt.host, host,
			       sizeof(host)) < 0)
		return 0;
	if (sl == 0 && !strchr(host, '.'))
		return 0;
	cap = 3 * n + 16 + URLS_MAX_HOST;
	buf = malloc(cap);
	norm = malloc(URLS_NORM_MAX);
	if (!buf || !norm) {
		rc = M_ENOMEM;
		goto out;
	}
	if (sl == 0) {
		memcpy(buf, "http://", 7);
		o = 7;
	} else {
		memcpy(buf, raw, sl);
		o = sl;
	}
	memcpy(buf + o, raw + pt.auth, pt.user_end - pt.auth);
	o += pt.user_end - pt.auth;
	memcpy(buf + o, host, strlen(host));
	o += strlen(host);
	memcpy(buf + o, raw + pt.host_end, pt.port_end - pt.host_end);
	o += pt.port_end - pt.host_end;
	for (k = pt.rest; k < n; k++) {
		unsigned char c = (unsigned char)raw[k];

		if (c == '\\') {
			buf[o++] = '/';
		} else if (c >= 0x80 || c <= 0x20 || c == 0x7f) {
			buf[o++] = '%';
			buf[o++] = hx[c >> 4];
			buf[o++] = hx[c & 15];
		} else {
			buf[o++] = (char)c;
		}
	}
	if (intel_url_normalise(buf, o, norm, URLS_NORM_MAX - 1, &nlen) < 0)
		goto out;
	norm[nlen] = '\0';
	rc = list_add(l, norm, host, cut, idx);
out:
	free(buf);
	free(norm);
	return rc;
}

/* The end of the URL that starts at t[s] (its scheme or "www." ends at
 * t[b]), trailing punctuation trimmed. */
static size_t url_end(const char *t, size_t n, size_t s, size_t b)
{
	const unsigned char *u = (const unsigned char *)t;
	size_t p = b, lim = n - s > URLS_SCAN_MAX ? s + URLS_SCAN_MAX : n;
	long paren = 0, brack = 0, brace = 0;
	int prev_alnum = 0;

	while (p < lim) {
		uint32_t cp;
		size_t k;

		if (u[p] < 0x80) {
			if (stop_ascii(u[p]))
				break;
			paren += u[p] == '(' ? 1 : u[p] == ')' ? -1 : 0;
			brack += u[p] == '[' ? 1 : u[p] == ']' ? -1 : 0;
			brace += u[p] == '{' ? 1 : u[p] == '}' ? -1 : 0;
			prev_alnum = is_alnum(u[p]);
			p++;
			continue;
		}
		k = utf8_dec(u + p, lim - p, &cp);
		if (k == 0 || stop_cp(cp) || (prev_alnum && cjk_cp(cp)))
			break;
		prev_alnum = 0;
		p += k;
	}
	while (p > b) {
		unsigned char c = u[p - 1];

		if (c == '.' || c == ',' || c == ';' || c == ':' || c == '!' ||
		    c == '?' || c == '\'' || c == '*') {
			p--;
		} else if (c == ')' && paren < 0) {
			paren++;
			p--;
		} else if (c == ']' && brack < 0) {
			brack++;
			p--;
		} else if (c == '}' && brace < 0) {
			brace++;
			p--;
		} else {
			break;
		}
	}
	return p;
}

/* URLs in running text. */
static int scan_text(const char *t, size_t n, struct url_list *l)
{
	size_t i = 0;
	int rc;

	while (i < n && !l->truncated) {
		unsigned char c = str_lower_byte((unsigned char)t[i]);
		size_t sl, e;
		int www;
		long idx;

		if (c != 'h' && c != 'f' && c != 'w') {
			i++;
			continue;
		}
		sl = url_scheme(t + i, n - i, &www);
		if (www && i > 0) {
			unsigned char pc = (unsigned char)t[i - 1];

			if (is_alnum(pc) || pc == '.' || pc == '-' ||
			    pc == '_' || pc == '@' || pc == '/')
				www = 0;
		}
		if (sl == 0 && !www) {
			i++;
			continue;
		}
		e = url_end(t, n, i, i + (www ? 4 : sl));
		if (e > i + (www ? 4 : sl)) {
			rc = add_url(l, t + i, e - i, sl, &idx);
			if (rc < 0)
				return rc;
		}
		i = e > i ? e : i + 1;
	}
	return 0;
}

/* An HTML character reference at p[0..n) (p[0] == '&'): bytes used, 0 when
 * it is none; *cp its code point. */
static size_t entity(const char *p, size_t n, uint32_t *cp)
{
	static const struct {
		const char *name;
		uint32_t cp;
	} names[] = {
		{ "amp;", '&' },   { "lt;", '<' },    { "gt;", '>' },
		{ "quot;", '"' },  { "apos;", '\'' }, { "nbsp;", 0xa0 },
		{ "sol;", '/' },   { "colon;", ':' }, { "period;", '.' },
		{ "commat;", '@' }, { "quest;", '?' }, { "equals;", '=' },
		{ "num;", '#' },   { "percnt;", '%' }, { "lpar;", '(' },
		{ "rpar;", ')' },  { "hellip;", 0x2026 },
	};
	size_t k, d = 0;
	uint32_t v = 0;
	int hexd = 0;

	if (n < 3)
		return 0;
	if (p[1] != '#') {
		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (starts_ci(p + 1, n - 1, names[k].name)) {
				*cp = names[k].cp;
				return 1 + strlen(names[k].name);
			}
		return 0;
	}
	k = 2;
	if (p[2] == 'x' || p[2] == 'X') {
		hexd = 1;
		k = 3;
	}
	for (; k < n && d < 10; k++, d++) {
		int h = str_hexval((unsigned char)p[k]);

		if (h < 0 || (!hexd && h > 9))
			break;
		if (v <= 0x10ffff)
			v = v * (hexd ? 16 : 10) + (uint32_t)h;
	}
	if (d == 0)
		return 0;
	if (k < n && p[k] == ';')
		k++;
	if (v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		v = 0xfffd;
	*cp = v;
	return k;
}

/* Entity-decodes an attribute value into out (never longer than the
 * input), dropping tabs and line ends and trimming white space. */
static size_t attr_decode(const char *v, size_t n, char *out)
{
	size_t i = 0, o = 0, s = 0;
	uint32_t cp;

	while (i < n) {
		size_t k = v[i] == '&' ? entity(v + i, n - i, &cp) : 0;

		if (k) {
			o += utf8_enc(cp, out + o);
			i += k;
			continue;
		}
		if (v[i] != '\t' && v[i] != '\n' && v[i] != '\r')
			out[o++] = v[i];
		i++;
	}
	while (s < o && ((unsigned char)out[s] <= 0x20))
		s++;
	while (o > s && ((unsigned char)out[o - 1] <= 0x20))
		o--;
	memmove(out, out + s, o - s);
	return o - s;
}

/* Adds an attribute value that is a web URL; *idx as in add_url. */
static int add_attr_url(struct url_list *l, const char *v, size_t n,
			long *idx)
{
	char *d;
	size_t dn, sl;
	int www, rc = 0;

	*idx = -1;
	if (n > URLS_ATTR_MAX)
		n = URLS_ATTR_MAX;
	d = malloc(n + 8);
	if (!d)
		return M_ENOMEM;
	memcpy(d, "http:", 5);
	dn = attr_decode(v, n, d + 5);
	if (dn >= 2 && d[5] == '/' && d[6] == '/') {
		rc = add_url(l, d, dn + 5, 7, idx);
	} else {
		sl = url_scheme(d + 5, dn, &www);
		if (sl || www)
			rc = add_url(l, d + 5, dn, sl, idx);
	}
	free(d);
	return rc;
}

/* Does the visible text t[0..n) (trimmed) name a site? Its canonical host
 * into host, 0; M_EINVAL when it is not a URL or domain name. Without a
 * scheme, a name counts when its last label is a known top-level domain
 * (so "report.pdf" or "3.5" do not), or it is a dotted IPv4 address. */
static int shown_site(const char *t, size_t n, char *host, size_t cap)
{
	struct url_parts pt;
	size_t sl, k, dots = 0;
	int www, alpha = 0, rc;
	const char *tld;

	while (n > 0 && ((unsigned char)t[0] <= 0x20)) {
		t++;
		n--;
	}
	while (n > 0 && ((unsigned char)t[n - 1] <= 0x20))
		n--;
	if (n == 0 || n >= URLS_MAX_TEXT)
		return M_EINVAL;
	for (k = 0; k < n; k++)
		if ((unsigned char)t[k] <= 0x20)
			return M_EINVAL;
	sl = url_scheme(t, n, &www);
	if (url_split(t, n, sl, &pt) < 0)
		return M_EINVAL;
	if (sl == 0 && pt.user_end != pt.auth)
		return M_EINVAL;       /* an e-mail address */
	for (k = pt.host; k < pt.host_end; k++) {
		unsigned char c = (unsigned char)t[k];

		if (c == '.') {
			if (k == pt.host || t[k - 1] == '.')
				return M_EINVAL;
			dots++;
		} else if (c >= 0x80 || (is_alnum(c) && c > '9')) {
			alpha = 1;
		} else if (!is_alnum(c) && c != '-' && c != '%') {
			return M_EINVAL;
		}
	}
	rc = url_host_normalise(t + pt.host, pt.host_end - pt.host, host, cap);
	if (rc < 0 || sl)
		return rc;
	if (!alpha)
		return dots == 3 ? 0 : M_EINVAL;
	tld = strrchr(host, '.');
	if (!tld || !psl_is_public_suffix2(psl_builtin(), tld + 1,
					   PSL_TYPE_ANY |
						   PSL_TYPE_NO_STAR_RULE))
		return M_EINVAL;
	return 0;
}

static int same_site(const char *a, const char *b)
{
	if (strcmp(a, b) == 0)
		return 1;
	return strcmp(url_site(a), url_site(b)) == 0;
}

/* An anchor being read: the item its href made, and its visible text. */
struct anchor {
	long idx;
	size_t tn;
	int over;
	char text[URLS_MAX_TEXT];
};

static int anchor_close(struct anchor *a, struct url_list *l)
{
	char host[URLS_MAX_HOST + 1];
	struct url_item *it;

	if (a->idx < 0 || a->over ||
	    shown_site(a->text, a->tn, host, sizeof(host)) < 0)
		goto out;
	it = &l->item[a->idx];
	if (same_site(host, it->host))
		goto out;
	it->text_mismatch = 1;
	if (!it->shown_host) {
		it->shown_host = strdup(host);
		if (!it->shown_host)
			return M_ENOMEM;
	}
out:
	a->idx = -1;
	a->tn = 0;
	a->over = 0;
	return 0;
}

static void anchor_text(struct anchor *a, const char *p, size_t n)
{
	if (a->idx < 0)
		return;
	if (a->tn + n > sizeof(a->text)) {
		a->over = 1;
		return;
	}
	memcpy(a->text + a->tn, p, n);
	a->tn += n;
}

static int inline_tag(const char *name, size_t n)
{
	static const char *const tags[] = { "a", "b", "i", "u", "s", "em",
					    "strong", "span", "font", "wbr",
					    "small", "big", "sub", "sup" };
	size_t k;

	for (k = 0; k < sizeof(tags) / sizeof(tags[0]); k++)
		if (strlen(tags[k]) == n && starts_ci(name, n, tags[k]))
			return 1;
	return 0;
}

static int url_attr(const char *name, size_t n)
{
	static const char *const attrs[] = { "href", "src", "action",
					     "formaction", "background" };
	size_t k;

	for (k = 0; k < sizeof(attrs) / sizeof(attrs[0]); k++)
		if (strlen(attrs[k]) == n && starts_ci(name, n, attrs[k]))
			return 1;
	return 0;
}

/* Reads the tag at t[i] == '<'; returns the index after it, or i when it is
 * not a tag (a lone '<' is text). Attribute URLs are added; anchors opened
 * and closed. */
static size_t html_tag(const char *t, size_t n, size_t i, struct url_list *l,
		       struct anchor *a, int *rc, int *blank)
{
	size_t j = i + 1, nm, nl, v, vl;
	int closing = 0, is_a;
	long href = -1;

	*blank = 0;
	if (j < n && t[j] == '/') {
		closing = 1;
		j++;
	}
	nm = j;
	while (j < n && (is_alnum((unsigned char)t[j]) || t[j] == '-' ||
			 t[j] == ':'))
		j++;
	nl = j - nm;
	if (nl == 0 || !is_alnum((unsigned char)t[nm]) ||
	    (t[nm] >= '0' && t[nm] <= '9'))
		return i;
	is_a = nl == 1 && str_lower_byte((unsigned char)t[nm]) == 'a';
	*blank = !inline_tag(t + nm, nl);
	while (j < n && t[j] != '>') {
		size_t an, al;

		if ((unsigned char)t[j] <= 0x20 || t[j] == '/') {
			j++;
			continue;
		}
		an = j;
		while (j < n && (unsigned char)t[j] > 0x20 && t[j] != '=' &&
		       t[j] != '>' && t[j] != '/')
			j++;
		al = j - an;
		while (j < n && (unsigned char)t[j] <= 0x20)
			j++;
		if (j >= n || t[j] != '=')
			continue;
		j++;
		while (j < n && (unsigned char)t[j] <= 0x20)
			j++;
		if (j < n && (t[j] == '"' || t[j] == '\'')) {
			char q = t[j++];

			v = j;
			while (j < n && t[j] != q)
				j++;
			vl = j - v;
			if (j < n)
				j++;
		} else {
			v = j;
			while (j < n && (unsigned char)t[j] > 0x20 &&
			       t[j] != '>')
				j++;
			vl = j - v;
		}
		if (!closing && url_attr(t + an, al)) {
			long idx;

			*rc = add_attr_url(l, t + v, vl, &idx);
			if (*rc < 0)
				return n;
			if (is_a && al == 4)
				href = idx;
		}
	}
	if (is_a) {
		*rc = anchor_close(a, l);
		if (*rc < 0)
			return n;
		if (!closing)
			a->idx = href;
	}
	return j < n ? j + 1 : n;
}

/* URLs of an HTML text: attributes first, then the visible text. */
static int scan_html(const char *t, size_t n, struct url_list *l)
{
	struct anchor *a = malloc(sizeof(*a));
	char *vis = malloc(n + 1);
	size_t i = 0, o = 0;
	int rc = 0, blank;

	if (!a || !vis) {
		rc = M_ENOMEM;
		goto out;
	}
	a->idx = -1;
	a->tn = 0;
	a->over = 0;
	while (i < n && !l->truncated) {
		uint32_t cp;
		size_t k;

		if (t[i] == '<') {
			if (starts_ci(t + i, n - i, "<!--")) {
				const char *e = NULL;

				if (n - i > 4)
					e = memmem(t + i + 4, n - i - 4, "-->",
						   3);
				i = e ? (size_t)(e - t) + 3 : n;
				continue;
			}
			k = html_tag(t, n, i, l, a, &rc, &blank);
			if (rc < 0)
				goto out;
			if (k != i) {
				if (blank && o < n)
					vis[o++] = ' ';
				i = k;
				continue;
			}
		}
		if (t[i] == '&' && (k = entity(t + i, n - i, &cp)) > 0) {
			char u[4];
			size_t ul = utf8_enc(cp, u);

			if (o + ul <= n) {
				memcpy(vis + o, u, ul);
				o += ul;
			}
			anchor_text(a, u, ul);
			i += k;
			continue;
		}
		if (o < n)
			vis[o++] = t[i];
		anchor_text(a, t + i, 1);
		i++;
	}
	rc = anchor_close(a, l);
	if (rc == 0)
		rc = scan_text(vis, o, l);
out:
	free(a);
	free(vis);
	return rc;
}

int urls_extract(const char *text, size_t len, int is_html,
		 struct url_list *l)
{
	if (!text || len == 0)
		return 0;
	return is_html ? scan_html(text, len, l) : scan_text(text, len, l);
}
