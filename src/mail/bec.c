/*
 * Business-e-mail-compromise checks (see bec.h for the rules and why).
 * Configuration is reduced once, in bec_new, to the forms compared at run
 * time: canonical addresses (sorted for lookup), our domains with their
 * registrable part and its confusable skeleton, people's names as sorted
 * skeleton words. bec_check then only normalises the message's few
 * addresses and names the same way and compares. The ICU spoof checker and
 * the NFKC_Casefold normaliser are shared read-only, which ICU documents as
 * safe across threads; all scratch is on the caller's stack.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/uspoof.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include "core/err.h"
#include "mail/bec.h"
#include "mail/urls.h"

#define BEC_MAX_WORDS 8
#define BEC_WORD_MAX 64
#define BEC_CAT_MAX 256
#define BEC_MAX_SKEL 128      /* code points of a domain skeleton */
#define BEC_UBUF 1024         /* UTF-16 units of scratch */

/* A name as compared: skeleton words, sorted, and the words run together
 * in their written order and reversed ("山田太郎", "太郎山田"). */
struct bec_name {
	size_t n;
	char w[BEC_MAX_WORDS][BEC_WORD_MAX];
	char cat[BEC_CAT_MAX];
	char rcat[BEC_CAT_MAX];
};

struct bec_dom {
	char ascii[URLS_MAX_HOST + 1];  /* canonical domain */
	char site[URLS_MAX_HOST + 1];   /* its registrable domain */
	const char *suffix;             /* in site, after the first label */
	UChar32 raw[BEC_MAX_SKEL];      /* site in Unicode, NFKC, folded */
	UChar32 skel[BEC_MAX_SKEL];     /* key of the site */
	UChar32 lskel[BEC_MAX_SKEL];    /* key of its first label */
	size_t nraw, nskel, nlskel;
	size_t label_len;               /* code points of the first label */
};

struct bec_pers {
	struct bec_name name;
	char *display;                  /* as configured, for reasons */
	char **addrs;                   /* canonical, sorted */
	size_t n_addrs;
};

struct bec {
	struct bec_dom *ours;
	size_t n_ours;
	char **trusted;
	size_t n_trusted;
	struct bec_pers *people;
	size_t n_people;
	char **finance;                 /* canonical, sorted */
	size_t n_finance;
	int dist_long, dist_short;
	int s_name, s_homo, s_look, s_rt, s_rt_ext, s_fin;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_word(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static void free_strv(char **v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* Canonical address: white space and angle brackets around dropped, the
 * local part lower-cased (senders' case is not meaningful for a match),
 * the domain through url_host_normalise. Writes into out (BEC_MAX_ADDR + 1
 * bytes); *dom points at the domain in out. 0 or M_EINVAL. */
static int addr_norm(const char *in, char *out, const char **dom)
{
	size_t n, s = 0, at, k;
	const char *p;

	if (!in)
		return M_EINVAL;
	n = strnlen(in, BEC_MAX_ADDR + 8);
	while (s < n && ((unsigned char)in[s] <= 0x20 || in[s] == '<'))
		s++;
	while (n > s && ((unsigned char)in[n - 1] <= 0x20 || in[n - 1] == '>'))
		n--;
	p = in + s;
	n -= s;
	if (n == 0 || n > BEC_MAX_ADDR)
		return M_EINVAL;
	for (at = n; at > 0 && p[at - 1] != '@'; at--)
		;
	if (at < 2 || at == n)
		return M_EINVAL;
	for (k = 0; k < at; k++) {
		unsigned char c = (unsigned char)p[k];

		if (c <= 0x20 || c == 0x7f)
			return M_EINVAL;
		out[k] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
	}
	if (url_host_normalise(p + at, n - at, out + at,
			       BEC_MAX_ADDR + 1 - at) < 0)
		return M_EINVAL;
	*dom = out + at;
	return 0;
}

/* The spoof checker and the normaliser, one pair for the process, opened
 * the first time a checker needs them (a configured domain or person, a
 * message's names) and never closed. Why not at start-up: opening them
 * makes 1.4 MB of ICU's code and data resident, which a daemon that
 * receives no mail never uses (bench/ddos_compare.sh's memory step). */
static pthread_once_t icu_once = PTHREAD_ONCE_INIT;
static USpoofChecker *icu_sc;
static const UNormalizer2 *icu_nfkc;
static UErrorCode icu_err = U_ZERO_ERROR;

static void icu_open(void)
{
	icu_sc = uspoof_open(&icu_err);
	icu_nfkc = unorm2_getNFKCInstance(&icu_err);
	if (U_SUCCESS(icu_err) && icu_sc)
		uspoof_setChecks(icu_sc, USPOOF_CONFUSABLE, &icu_err);
}

/* 0 when the pair is open, else -1 (ICU's reason: u_errorName(icu_err)). */
static int icu_ready(void)
{
	pthread_once(&icu_once, icu_open);
	return U_SUCCESS(icu_err) && icu_sc && icu_nfkc ? 0 : -1;
}

/* UTF-8 to NFKC UTF-16 without default-ignorable code points (soft
 * hyphens, zero-width joiners); its length, or -1. */
static int32_t to_nfkc(const char *s, size_t n, UChar *out, int32_t cap)
{
	UChar tmp[BEC_UBUF];
	UErrorCode st = U_ZERO_ERROR;
	int32_t tl, ol, i = 0, o = 0;

	if (icu_ready() < 0)
		return -1;
	if (n > BEC_MAX_NAME)
		n = BEC_MAX_NAME;
	u_strFromUTF8WithSub(tmp, BEC_UBUF, &tl, s, (int32_t)n, 0xfffd, NULL,
			     &st);
	if (U_FAILURE(st) || st == U_STRING_NOT_TERMINATED_WARNING)
		return -1;
	ol = unorm2_normalize(icu_nfkc, tmp, tl, out, cap, &st);
	if (U_FAILURE(st) || st == U_STRING_NOT_TERMINATED_WARNING)
		return -1;
	while (i < ol) {
		int32_t at = i;
		UChar32 c;

		U16_NEXT(out, i, ol, c);
		if (u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT))
			continue;
		while (at < i)
			out[o++] = out[at++];
	}
	return o;
}

static int32_t to_fold(const UChar *u, int32_t n, UChar *out, int32_t cap)
{
	UErrorCode st = U_ZERO_ERROR;
	int32_t l = u_strFoldCase(out, cap, u, n, U_FOLD_CASE_DEFAULT, &st);

	if (U_FAILURE(st) || st == U_STRING_NOT_TERMINATED_WARNING)
		return -1;
	return l;
}

/* The comparison key of u[0..n): its confusable skeleton, case-folded and
 * reduced to a skeleton again (so a Cyrillic capital Т is a Latin t, and
 * "M" and "m" both end as "rn"), ASCII lower-cased (a skeleton maps "0" to
 * "O"). Its length in out, or -1. */
static int32_t to_skel(const UChar *u, int32_t n, UChar *out, int32_t cap)
{
	UChar t1[BEC_UBUF], t2[BEC_UBUF];
	UErrorCode st = U_ZERO_ERROR;
	int32_t k, l1, l2, sl;

	if (icu_ready() < 0)
		return -1;
	l1 = uspoof_getSkeleton(icu_sc, 0, u, n, t1, BEC_UBUF, &st);
	if (U_FAILURE(st) || st == U_STRING_NOT_TERMINATED_WARNING)
		return -1;
	l2 = to_fold(t1, l1, t2, BEC_UBUF);
	if (l2 < 0)
		return -1;
	sl = uspoof_getSkeleton(icu_sc, 0, t2, l2, out, cap, &st);
	if (U_FAILURE(st) || st == U_STRING_NOT_TERMINATED_WARNING)
		return -1;
	for (k = 0; k < sl; k++)
		if (out[k] >= 'A' && out[k] <= 'Z')
			out[k] = (UChar)(out[k] + 32);
	return sl;
}

static int name_sep(UChar32 c)
{
	return u_isUWhiteSpace(c) || c == ',' || c == '.' || c == ';' ||
	       c == ':' || c == '(' || c == ')' || c == '[' || c == ']' ||
	       c == '<' || c == '>' || c == '"' || c == '\'' || c == '/' ||
	       c == '|' || c == 0x30fb || c == 0xb7;
}

static void cat_add(char *cat, const char *w)
{
	size_t cl = strlen(cat), wl = strlen(w);

	if (cl + wl < BEC_CAT_MAX) {
		memcpy(cat + cl, w, wl + 1);
	}
}

/* Splits a display name into skeleton words. 0, or M_EINVAL when nothing
 * usable is left. */
static int name_key(const char *s, struct bec_name *k)
{
	UChar f[BEC_UBUF], sk[BEC_UBUF];
	int32_t fl, i = 0;
	size_t j;

	memset(k, 0, sizeof(*k));
	if (!s)
		return M_EINVAL;
	fl = to_nfkc(s, strnlen(s, BEC_MAX_NAME), f, BEC_UBUF);
	if (fl < 0)
		return M_EINVAL;
	while (i < fl && k->n < BEC_MAX_WORDS) {
		int32_t st = i, e, sl, wl;
		UChar32 c;
		UErrorCode ec = U_ZERO_ERROR;

		U16_NEXT(f, i, fl, c);
		if (name_sep(c))
			continue;
		e = i;
		while (e < fl) {
			int32_t nx = e;

			U16_NEXT(f, nx, fl, c);
			if (name_sep(c))
				break;
			e = nx;
		}
		i = e;
		sl = to_skel(f + st, e - st, sk, BEC_UBUF);
		if (sl <= 0)
			continue;
		u_strToUTF8(k->w[k->n], BEC_WORD_MAX, &wl, sk, sl, &ec);
		if (U_FAILURE(ec) || ec == U_STRING_NOT_TERMINATED_WARNING)
			continue;
		k->n++;
	}
	if (k->n == 0)
		return M_EINVAL;
	for (j = 0; j < k->n; j++) {
		cat_add(k->cat, k->w[j]);
		cat_add(k->rcat, k->w[k->n - 1 - j]);
	}
	qsort(k->w, k->n, BEC_WORD_MAX, cmp_word);
	return 0;
}

/* Does display name d name person p? */
static int name_match(const struct bec_name *d, const struct bec_name *p)
{
	size_t i = 0, j = 0;

	while (i < d->n && j < p->n) {
		int c = strcmp(d->w[i], p->w[j]);

		if (c == 0) {
			i++;
			j++;
		} else if (c < 0) {
			i++;
		} else {
			break;
		}
	}
	if (j == p->n)
		return 1;
	if (strcmp(d->cat, p->cat) == 0 || strcmp(d->cat, p->rcat) == 0)
		return 1;
	for (i = 0; p->n > 1 && i < d->n; i++)
		if (strcmp(d->w[i], p->cat) == 0 ||
		    strcmp(d->w[i], p->rcat) == 0)
			return 1;
	return 0;
}

static size_t to_cps(const UChar *u, int32_t n, UChar32 *out)
{
	int32_t i = 0;
	size_t o = 0;

	while (i < n && o < BEC_MAX_SKEL) {
		UChar32 c;

		U16_NEXT(u, i, n, c);
		out[o++] = c;
	}
	return o;
}

/* Fills a domain's registrable part, its forms compared and the length of
 * its first label. 0 or M_EINVAL. */
static int dom_fill(const char *ascii, struct bec_dom *d)
{
	UChar f[BEC_UBUF], g[BEC_UBUF], sk[BEC_UBUF];
	char *u = NULL;
	const char *uni, *p;
	int32_t fl, gl, sl, dot;
	int rc = M_EINVAL;

	memset(d, 0, sizeof(*d));
	if (strlen(ascii) > URLS_MAX_HOST)
		return M_EINVAL;
	memcpy(d->ascii, ascii, strlen(ascii) + 1);
	p = url_site(ascii);
	memcpy(d->site, p, strlen(p) + 1);
	p = strchr(d->site, '.');
	d->suffix = p ? p + 1 : "";
	uni = d->site;
	if (strstr(d->site, "xn--") &&
	    idn2_to_unicode_8z8z(d->site, &u, 0) == IDN2_OK)
		uni = u;
	for (p = uni; *p && *p != '.'; p++)
		if (((unsigned char)*p & 0xc0) != 0x80)
			d->label_len++;
	fl = to_nfkc(uni, strlen(uni), f, BEC_UBUF);
	if (fl < 0 || (gl = to_fold(f, fl, g, BEC_UBUF)) < 0)
		goto out;
	d->nraw = to_cps(g, gl, d->raw);
	sl = to_skel(f, fl, sk, BEC_UBUF);
	if (sl < 0)
		goto out;
	d->nskel = to_cps(sk, sl, d->skel);
	for (dot = 0; dot < fl && f[dot] != '.'; dot++)
		;
	sl = to_skel(f, dot, sk, BEC_UBUF);
	if (sl < 0)
		goto out;
	d->nlskel = to_cps(sk, sl, d->lskel);
	rc = 0;
out:
	idn2_free(u);
	return rc;
}

/* Damerau-Levenshtein distance (optimal string alignment) of a and b, or
 * max + 1 when it is larger than max. */
static int osa(const UChar32 *a, size_t na, const UChar32 *b, size_t nb,
	       int max)
{
	int r0[BEC_MAX_SKEL + 1], r1[BEC_MAX_SKEL + 1], r2[BEC_MAX_SKEL + 1];
	int *pp = r0, *p = r1, *c = r2;
	size_t i, j;

	if ((na > nb ? na - nb : nb - na) > (size_t)max)
		return max + 1;
	for (j = 0; j <= nb; j++)
		p[j] = (int)j;
	for (i = 1; i <= na; i++) {
		int low;
		int *t;

		c[0] = (int)i;
		low = c[0];
		for (j = 1; j <= nb; j++) {
			int cost = a[i - 1] != b[j - 1];
			int v = p[j] + 1;

			if (c[j - 1] + 1 < v)
				v = c[j - 1] + 1;
			if (p[j - 1] + cost < v)
				v = p[j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			c[j] = v;
			if (v < low)
				low = v;
		}
		if (low > max)
			return max + 1;
		t = pp;
		pp = p;
		p = c;
		c = t;
	}
	return p[nb] > max ? max + 1 : p[nb];
}

/* Is d (canonical) the domain o or under it? */
static int dom_under(const char *d, const char *o)
{
	size_t dl = strlen(d), ol = strlen(o);

	return (dl == ol && memcmp(d, o, dl) == 0) ||
	       (dl > ol && d[dl - ol - 1] == '.' &&
		memcmp(d + dl - ol, o, ol) == 0);
}

static int is_ours(const struct bec *b, const char *d)
{
	size_t i;

	for (i = 0; i < b->n_ours; i++)
		if (dom_under(d, b->ours[i].ascii))
			return 1;
	return 0;
}

static int in_sorted(char *const *v, size_t n, const char *s)
{
	return n && bsearch(&s, v, n, sizeof(*v), cmp_str) != NULL;
}

int bec_is_finance(const struct bec *b, const char *addr)
{
	char a[BEC_MAX_ADDR + 1];
	const char *dom;

	if (!b || addr_norm(addr, a, &dom) < 0)
		return 0;
	return in_sorted(b->finance, b->n_finance, a);
}

const char *bec_kind_str(enum bec_kind k)
{
	switch (k) {
	case BEC_DISPLAY_NAME:
		return "display_name";
	case BEC_LOOKALIKE:
		return "lookalike";
	case BEC_REPLY_TO:
		return "reply_to";
	case BEC_FIRST_FINANCE:
		return "first_finance";
	}
	return "?";
}

static void add_finding(struct bec_findings *out, enum bec_kind kind,
			int score, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add_finding(struct bec_findings *out, enum bec_kind kind,
			int score, const char *fmt, ...)
{
	struct bec_finding *f;
	va_list ap;
	size_t k, n;

	if (out->n >= BEC_MAX_FINDINGS)
		return;
	f = &out->f[out->n++];
	f->kind = kind;
	f->score = score;
	va_start(ap, fmt);
	vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
	va_end(ap);
	n = strlen(f->reason);
	/* A sequence cut by the bound is dropped whole. */
	for (k = n; k > 0 && n - k < 4; k--) {
		unsigned char c = (unsigned char)f->reason[k - 1];

		if ((c & 0xc0) == 0x80)
			continue;
		if (c >= 0xc0 && n - k + 1 < (c >= 0xf0 ? 4u : c >= 0xe0 ? 3u : 2u))
			f->reason[k - 1] = '\0';
		break;
	}
	for (k = 0; f->reason[k]; k++)
		if ((unsigned char)f->reason[k] < 0x20 ||
		    f->reason[k] == 0x7f)
			f->reason[k] = '?';
	out->score += score;
}

/* Lookalike checks of one sender domain (canonical, not ours). */
static int check_lookalike(const struct bec *b, const char *d,
			   const char *role, struct bec_findings *out)
{
	struct bec_dom *x;
	size_t i;

	for (i = 0; i < b->n_trusted; i++)
		if (dom_under(d, b->trusted[i]))
			return 0;
	x = malloc(sizeof(*x));
	if (!x)
		return M_ENOMEM;
	if (dom_fill(d, x) < 0)
		goto out;
	for (i = 0; i < b->n_ours; i++) {
		const struct bec_dom *o = &b->ours[i];
		int max = o->label_len >= 6 ? b->dist_long : b->dist_short;
		const char *hit;
		int dist;

		if (strcmp(x->site, o->site) == 0)
			continue;
		for (hit = strstr(d, o->ascii); hit;
		     hit = strstr(hit + 1, o->ascii))
			if ((hit == d || hit[-1] == '.') &&
			    hit[strlen(o->ascii)] == '.')
				break;
		if (hit) {
			add_finding(out, BEC_LOOKALIKE, b->s_look,
				    "%s domain %s carries our domain %s",
				    role, d, o->ascii);
			break;
		}
		if (x->nskel == o->nskel &&
		    memcmp(x->skel, o->skel, x->nskel * sizeof(UChar32)) == 0) {
			add_finding(out, BEC_LOOKALIKE, b->s_homo,
				    "%s domain %s is a homograph of our "
				    "domain %s",
				    role, d, o->ascii);
			break;
		}
		if (max <= 0)
			continue;
		dist = osa(x->raw, x->nraw, o->raw, o->nraw, max);
		if (dist > max && strcmp(x->suffix, o->suffix) == 0)
			dist = osa(x->lskel, x->nlskel, o->lskel, o->nlskel,
				   max);
		if (dist <= max) {
			add_finding(out, BEC_LOOKALIKE, b->s_look,
				    "%s domain %s looks like our domain %s "
				    "(%d edit%s)",
				    role, d, o->ascii, dist,
				    dist == 1 ? "" : "s");
			break;
		}
	}
out:
	free(x);
	return 0;
}

int bec_check(const struct bec *b, const struct bec_input *in,
	      struct bec_findings *out)
{
	char from[BEC_MAX_ADDR + 1], a[BEC_MAX_ADDR + 1];
	char seen[2 + BEC_MAX_INPUT][URLS_MAX_HOST + 1];
	const char *fdom = NULL, *dom;
	size_t nseen = 0, i, j;
	int from_ours = 0, rc = 0;

	memset(out, 0, sizeof(*out));
	if (!b || !in)
		return M_EINVAL;
	if (in->from_addr && addr_norm(in->from_addr, from, &fdom) == 0)
		from_ours = is_ours(b, fdom);

	/* Display name of a protected person on an outside address. */
	if (in->from_name && b->n_people && !from_ours) {
		struct bec_name *dn = malloc(sizeof(*dn));

		if (!dn)
			return M_ENOMEM;
		if (name_key(in->from_name, dn) == 0) {
			for (i = 0; i < b->n_people; i++) {
				const struct bec_pers *p = &b->people[i];

				if (!name_match(dn, &p->name))
					continue;
				if (fdom && in_sorted(p->addrs, p->n_addrs,
						      from))
					break;
				add_finding(out, BEC_DISPLAY_NAME, b->s_name,
					    "display name \"%s\" is %s but "
					    "the address %s is outside our "
					    "domains",
					    in->from_name,
					    p->display,
					    fdom ? from : "(none)");
				break;
			}
		}
		free(dn);
	}

	/* A display name that shows one of our addresses ("ceo@example.com"
	 * <x@gmail.com>). */
	if (in->from_name && fdom && !from_ours) {
		const char *at = strchr(in->from_name, '@');
		size_t k = 0;

		while (at && k < BEC_MAX_NAME &&
		       (unsigned char)at[1 + k] > 0x20 && at[1 + k] != '>' &&
		       at[1 + k] != '"' && at[1 + k] != '\'' &&
		       at[1 + k] != ')')
			k++;
		if (at && k > 0 &&
		    url_host_normalise(at + 1, k, a, sizeof(a)) == 0 &&
		    is_ours(b, a) && out->n == 0)
			add_finding(out, BEC_DISPLAY_NAME, b->s_name,
				    "display name \"%s\" shows an address of "
				    "ours but the address is %s",
				    in->from_name, from);
	}

	/* Lookalike domains of From, Reply-To and Return-Path, each once. */
	for (i = 0; i < 2 + in->n_reply_to && i < 2 + BEC_MAX_INPUT; i++) {
		const char *addr = i == 0   ? in->from_addr
				   : i == 1 ? in->return_path
				   : in->reply_to ? in->reply_to[i - 2]
						  : NULL;
		const char *role = i == 0   ? "From"
				   : i == 1 ? "Return-Path"
					    : "Reply-To";

		if (!addr || addr_norm(addr, a, &dom) < 0 || is_ours(b, dom))
			continue;
		for (j = 0; j < nseen; j++)
			if (strcmp(seen[j], dom) == 0)
				break;
		if (j < nseen)
			continue;
		memcpy(seen[nseen++], dom, strlen(dom) + 1);
		rc = check_lookalike(b, dom, role, out);
		if (rc < 0)
			return rc;
	}

	/* Reply-To on another site than From. */
	for (i = 0; fdom && in->reply_to && i < in->n_reply_to &&
		    i < BEC_MAX_INPUT;
	     i++) {
		int rt_ours;

		if (!in->reply_to[i] ||
		    addr_norm(in->reply_to[i], a, &dom) < 0 ||
		    strcmp(url_site(dom), url_site(fdom)) == 0)
			continue;
		rt_ours = is_ours(b, dom);
		if (from_ours && rt_ours)
			continue;
		if (from_ours)
			add_finding(out, BEC_REPLY_TO, b->s_rt_ext,
				    "Reply-To %s is outside our domains while "
				    "From %s is ours",
				    a, from);
		else
			add_finding(out, BEC_REPLY_TO, b->s_rt,
				    "Reply-To %s is on another domain than "
				    "From %s",
				    a, from);
		break;
	}

	/* First contact from outside with a finance address. */
	if (in->first_time && in->rcpts && b->n_finance) {
		const char *snd = fdom ? from : NULL;

		if (!snd && in->return_path &&
		    addr_norm(in->return_path, from, &fdom) == 0)
			snd = from;
		for (i = 0; snd && !is_ours(b, fdom) && i < in->n_rcpts &&
			    i < BEC_MAX_INPUT;
		     i++) {
			if (!in->first_time[i] || !in->rcpts[i] ||
			    addr_norm(in->rcpts[i], a, &dom) < 0 ||
			    !in_sorted(b->finance, b->n_finance, a))
				continue;
			add_finding(out, BEC_FIRST_FINANCE, b->s_fin,
				    "first message from %s to finance "
				    "address %s",
				    snd, a);
			break;
		}
	}
	return 0;
}

/* Canonical, sorted copies of n addresses. 0, M_EINVAL (err says which),
 * M_ENOMEM. */
static int addr_list(const char *const *in, size_t n, char ***out,
		     const char *what, char *err, size_t errlen)
{
	char a[BEC_MAX_ADDR + 1];
	const char *dom;
	size_t i;

	*out = NULL;
	if (n == 0)
		return 0;
	if (!in || n > BEC_MAX_ADDRS) {
		snprintf(err, errlen, "%s: too many addresses", what);
		return M_EINVAL;
	}
	*out = calloc(n, sizeof(char *));
	if (!*out)
		return M_ENOMEM;
	for (i = 0; i < n; i++) {
		if (addr_norm(in[i], a, &dom) < 0) {
			snprintf(err, errlen, "%s: bad address #%zu", what,
				 i + 1);
			return M_EINVAL;
		}
		(*out)[i] = strdup(a);
		if (!(*out)[i])
			return M_ENOMEM;
	}
	qsort(*out, n, sizeof(char *), cmp_str);
	return 0;
}

static int conf_score(int v, int dflt)
{
	return v ? v : dflt;
}

struct bec *bec_new(const struct bec_conf *c, char *err, size_t errlen)
{
	struct bec *b = calloc(1, sizeof(*b));
	char h[URLS_MAX_HOST + 1];
	size_t i;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	else
		errlen = 0;
	if (!b || !c)
		goto nomem;
	/* Domains and names are reduced with ICU: it must open now. */
	if ((c->n_our_domains || c->n_people) && icu_ready() < 0) {
		snprintf(err, errlen, "ICU: %s", u_errorName(icu_err));
		goto fail;
	}
	b->dist_long = c->max_dist_long ? c->max_dist_long : 2;
	b->dist_short = c->max_dist_short ? c->max_dist_short : 1;
	b->s_name = conf_score(c->score_display_name, BEC_SCORE_DISPLAY_NAME);
	b->s_homo = conf_score(c->score_homograph, BEC_SCORE_HOMOGRAPH);
	b->s_look = conf_score(c->score_lookalike, BEC_SCORE_LOOKALIKE);
	b->s_rt = conf_score(c->score_reply_to, BEC_SCORE_REPLY_TO);
	b->s_rt_ext = conf_score(c->score_reply_to_ext,
				 BEC_SCORE_REPLY_TO_EXT);
	b->s_fin = conf_score(c->score_first_finance,
			      BEC_SCORE_FIRST_FINANCE);

	if (c->n_our_domains > BEC_MAX_DOMAINS ||
	    c->n_trusted_domains > BEC_MAX_DOMAINS ||
	    c->n_people > BEC_MAX_PEOPLE) {
		snprintf(err, errlen, "too many domains or people");
		goto fail;
	}
	if (c->n_our_domains) {
		b->ours = calloc(c->n_our_domains, sizeof(*b->ours));
		if (!b->ours)
			goto nomem;
	}
	for (i = 0; i < c->n_our_domains; i++) {
		const char *d = c->our_domains[i];

		if (!d || url_host_normalise(d, strlen(d), h, sizeof(h)) < 0 ||
		    dom_fill(h, &b->ours[i]) < 0) {
			snprintf(err, errlen, "our domains: bad domain #%zu",
				 i + 1);
			goto fail;
		}
		b->n_ours++;
	}
	if (c->n_trusted_domains) {
		b->trusted = calloc(c->n_trusted_domains, sizeof(char *));
		if (!b->trusted)
			goto nomem;
	}
	for (i = 0; i < c->n_trusted_domains; i++) {
		const char *d = c->trusted_domains[i];

		if (!d || url_host_normalise(d, strlen(d), h, sizeof(h)) < 0) {
			snprintf(err, errlen,
				 "trusted domains: bad domain #%zu", i + 1);
			goto fail;
		}
		b->trusted[i] = strdup(h);
		if (!b->trusted[i])
			goto nomem;
		b->n_trusted++;
	}
	if (c->n_people) {
		b->people = calloc(c->n_people, sizeof(*b->people));
		if (!b->people)
			goto nomem;
	}
	for (i = 0; i < c->n_people; i++) {
		const struct bec_person *p = &c->people[i];
		struct bec_pers *q = &b->people[i];

		b->n_people++;
		if (!p->name || name_key(p->name, &q->name) < 0) {
			snprintf(err, errlen, "people: bad name #%zu", i + 1);
			goto fail;
		}
		q->display = strndup(p->name, BEC_MAX_NAME);
		if (!q->display)
			goto nomem;
		rc = addr_list(p->addrs, p->n_addrs, &q->addrs, "people", err,
			       errlen);
		q->n_addrs = q->addrs ? p->n_addrs : 0;
		if (rc == M_ENOMEM)
			goto nomem;
		if (rc < 0)
			goto fail;
	}
	rc = addr_list(c->finance_addrs, c->n_finance_addrs, &b->finance,
		       "finance addresses", err, errlen);
	b->n_finance = b->finance ? c->n_finance_addrs : 0;
	if (rc == M_ENOMEM)
		goto nomem;
	if (rc < 0)
		goto fail;
	return b;
nomem:
	if (errlen)
		snprintf(err, errlen, "out of memory");
fail:
	bec_free(b);
	return NULL;
}

void bec_free(struct bec *b)
{
	size_t i;

	if (!b)
		return;
	for (i = 0; i < b->n_people; i++) {
		free(b->people[i].display);
		free_strv(b->people[i].addrs, b->people[i].n_addrs);
	}
	free(b->people);
	free(b->ours);
	free_strv(b->trusted, b->n_trusted);
	free_strv(b->finance, b->n_finance);
	free(b);
}
