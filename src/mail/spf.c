/*
 * spf: the RFC 7208 record parser and check_host() evaluation.
 *
 * Why parse the whole record before evaluating: RFC 7208 4.6 makes a syntax
 * error anywhere in the record a permerror, even after a term that would
 * have matched, so a record is parsed into a fixed term array (on the
 * stack, offsets into the resolver's answer) and only then walked.
 *
 * Bounds: 10 DNS-querying terms (include, a, mx, ptr, exists, redirect),
 * 2 void lookups, 10 MX hosts or PTR names per term, 128 terms and 4 KiB per
 * record. Includes recurse (the lookup limit bounds the depth at 11);
 * redirects loop in place. Nothing here allocates except the resolver's
 * answers and the explanation string.
 */
#include "mail/spf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/err.h"
#include "mail/mdns.h"

#define NAME_BUF 1024 /* expansion buffer for a domain-spec */

/* ---- results ---- */

static const char *const result_names[] = {
	[SPF_NONE] = "none",         [SPF_NEUTRAL] = "neutral",
	[SPF_PASS] = "pass",         [SPF_FAIL] = "fail",
	[SPF_SOFTFAIL] = "softfail", [SPF_TEMPERROR] = "temperror",
	[SPF_PERMERROR] = "permerror",
};

const char *spf_result_str(enum spf_result r)
{
	if ((unsigned)r >= sizeof(result_names) / sizeof(result_names[0]))
		return "unknown";
	return result_names[r];
}

int spf_result_parse(const char *s)
{
	for (size_t i = 0; i < sizeof(result_names) / sizeof(result_names[0]); i++)
		if (s && strcasecmp(s, result_names[i]) == 0)
			return (int)i;
	return -1;
}

void spf_outcome_fini(struct spf_outcome *o)
{
	if (!o)
		return;
	free(o->explanation);
	o->explanation = NULL;
}

/* ---- the record parser ---- */

int spf_is_record(const char *txt, size_t len)
{
	if (len < 6 || strncasecmp(txt, "v=spf1", 6) != 0)
		return 0;
	return len == 6 || txt[6] == ' ';
}

static void set_why(char *why, size_t whylen, const char *msg, const char *t, size_t tlen)
{
	if (why && whylen)
		snprintf(why, whylen, "%s: %.*s", msg, (int)(tlen > 60 ? 60 : tlen), t);
}

/* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static int toplabel_ok(const char *s, size_t len)
{
	if (len == 0 || s[0] == '-' || s[len - 1] == '-')
		return 0;
	int alpha = 0, dash = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '-')
			dash = 1;
		else if (isalpha(c))
			alpha = 1;
		else if (!isdigit(c))
			return 0;
	}
	return alpha || dash;
}

/* The last label of a dotted name (one trailing dot ignored) is a valid
 * toplabel and there is a label before it. */
static int name_end_ok(const char *s, size_t len)
{
	if (len > 0 && s[len - 1] == '.')
		len--;
	size_t dot = len;
	while (dot > 0 && s[dot - 1] != '.')
		dot--;
	if (dot < 2) /* no dot, or the name is ".tld" */
		return 0;
	return toplabel_ok(s + dot, len - dot);
}

/* domain-spec = macro-string domain-end;
 * domain-end = ( "." toplabel [ "." ] ) / macro-expand */
static int domain_spec_ok(const char *s, size_t len)
{
	if (len == 0 || spf_macro_check(s, len, 0) != 0)
		return 0;
	/* Does the string end with a macro-expand? Walk it token by token. */
	int last_macro = 0;
	for (size_t i = 0; i < len;) {
		if (s[i] == '%') {
			if (s[i + 1] == '{') {
				const char *close = memchr(s + i, '}', len - i);
				i = close ? (size_t)(close - s) + 1 : len;
			} else {
				i += 2;
			}
			last_macro = 1;
		} else {
			i++;
			last_macro = 0;
		}
	}
	return last_macro || name_end_ok(s, len);
}

/* A CIDR length: 1-3 digits, no leading zero, at most max. */
static int cidr_num(const char *s, size_t len, unsigned max, uint8_t *out)
{
	if (len == 0 || len > 3 || (len > 1 && s[0] == '0'))
		return -1;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = (uint8_t)v;
	return 0;
}

static int all_digits(const char *s, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

static const struct {
	const char *name;
	enum spf_mech mech;
} mech_names[] = {
	{"all", SPF_M_ALL}, {"include", SPF_M_INCLUDE}, {"a", SPF_M_A},
	{"mx", SPF_M_MX},   {"ptr", SPF_M_PTR},         {"ip4", SPF_M_IP4},
	{"ip6", SPF_M_IP6}, {"exists", SPF_M_EXISTS},
};

/* ip4:/ip6: argument [i, end) starting after the name. */
static int parse_ip(const char *txt, size_t i, size_t end, struct spf_term *t)
{
	if (i >= end || txt[i] != ':')
		return -1;
	i++;
	size_t slash = i;
	while (slash < end && txt[slash] != '/')
		slash++;
	char addr[64];
	if (slash - i == 0 || slash - i >= sizeof(addr))
		return -1;
	memcpy(addr, txt + i, slash - i);
	addr[slash - i] = '\0';
	int v6 = t->mech == SPF_M_IP6;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, t->addr) != 1)
		return -1;
	if (slash < end) {
		uint8_t *len = v6 ? &t->cidr6 : &t->cidr4;
		if (cidr_num(txt + slash + 1, end - slash - 1, v6 ? 128 : 32, len) < 0)
			return -1;
	}
	return 0;
}

/* a / mx: [ ":" domain-spec ] [ ip4-cidr ] [ "/" ip6-cidr ] */
static int parse_dual(const char *txt, size_t i, size_t end, struct spf_term *t)
{
	size_t e = end;
	size_t p = e;
	while (p > i && txt[p - 1] != '/')
		p--;
	if (p > i && all_digits(txt + p, e - p)) {
		size_t slash = p - 1;
		if (slash > i && txt[slash - 1] == '/') {
			if (cidr_num(txt + p, e - p, 128, &t->cidr6) < 0)
				return -1;
			e = slash - 1;
			size_t q = e;
			while (q > i && txt[q - 1] != '/')
				q--;
			if (q > i && all_digits(txt + q, e - q)) {
				if (cidr_num(txt + q, e - q, 32, &t->cidr4) < 0)
					return -1;
				e = q - 1;
			}
		} else {
			if (cidr_num(txt + p, e - p, 32, &t->cidr4) < 0)
				return -1;
			e = slash;
		}
	}
	if (e == i)
		return 0;
	if (txt[i] != ':' || e == i + 1 || !domain_spec_ok(txt + i + 1, e - i - 1))
		return -1;
	t->arg = (uint16_t)(i + 1);
	t->arglen = (uint16_t)(e - i - 1);
	return 0;
}

/* [ ":" domain-spec ], the colon form required when need is set. */
static int parse_target(const char *txt, size_t i, size_t end, int need, struct spf_term *t)
{
	if (i == end)
		return need ? -1 : 0;
	if (txt[i] != ':' || end == i + 1 || !domain_spec_ok(txt + i + 1, end - i - 1))
		return -1;
	t->arg = (uint16_t)(i + 1);
	t->arglen = (uint16_t)(end - i - 1);
	return 0;
}

static int parse_modifier(const char *txt, size_t n0, size_t nlen, size_t v, size_t end,
			  struct spf_record *out)
{
	int redirect = nlen == 8 && strncasecmp(txt + n0, "redirect", 8) == 0;
	int exp = nlen == 3 && strncasecmp(txt + n0, "exp", 3) == 0;
	if (!redirect && !exp) /* unknown-modifier = name "=" macro-string */
		return spf_macro_check(txt + v, end - v, 0) == 0 ? 0 : -1;
	if (!domain_spec_ok(txt + v, end - v))
		return -1;
	if (redirect) {
		if (out->has_redirect)
			return -1;
		out->has_redirect = 1;
		out->redirect = (uint16_t)v;
		out->redirect_len = (uint16_t)(end - v);
	} else {
		if (out->has_exp)
			return -1;
		out->has_exp = 1;
		out->exp = (uint16_t)v;
		out->exp_len = (uint16_t)(end - v);
	}
	return 0;
}

static int parse_term(const char *txt, size_t start, size_t end, struct spf_record *out)
{
	size_t i = start;
	int qual = SPF_PASS, hasq = 1;
	switch (txt[i]) {
	case '+': qual = SPF_PASS; break;
	case '-': qual = SPF_FAIL; break;
	case '~': qual = SPF_SOFTFAIL; break;
	case '?': qual = SPF_NEUTRAL; break;
	default: hasq = 0; break;
	}
	i += (size_t)hasq;
	size_t n0 = i;
	if (i >= end || !isalpha((unsigned char)txt[i]))
		return -1;
	while (i < end && (isalnum((unsigned char)txt[i]) || txt[i] == '-' || txt[i] == '_' ||
			   txt[i] == '.'))
		i++;
	size_t nlen = i - n0;
	if (i < end && txt[i] == '=') {
		if (hasq)
			return -1;
		return parse_modifier(txt, n0, nlen, i + 1, end, out);
	}
	enum spf_mech mech = 0;
	for (size_t k = 0; k < sizeof(mech_names) / sizeof(mech_names[0]); k++)
		if (strlen(mech_names[k].name) == nlen &&
		    strncasecmp(txt + n0, mech_names[k].name, nlen) == 0)
			mech = mech_names[k].mech;
	if (!mech || out->nterm == SPF_MAX_TERMS)
		return -1;
	struct spf_term *t = &out->term[out->nterm];
	memset(t, 0, sizeof(*t));
	t->mech = (uint8_t)mech;
	t->qual = (uint8_t)qual;
	t->cidr4 = 32;
	t->cidr6 = 128;
	t->off = (uint16_t)start;
	t->len = (uint16_t)(end - start);
	int rc;
	switch (mech) {
	case SPF_M_ALL: rc = i == end ? 0 : -1; break;
	case SPF_M_INCLUDE:
	case SPF_M_EXISTS: rc = parse_target(txt, i, end, 1, t); break;
	case SPF_M_PTR: rc = parse_target(txt, i, end, 0, t); break;
	case SPF_M_A:
	case SPF_M_MX: rc = parse_dual(txt, i, end, t); break;
	default: rc = parse_ip(txt, i, end, t); break;
	}
	if (rc == 0)
		out->nterm++;
	return rc;
}

int spf_parse_record(const char *txt, size_t len, struct spf_record *out, char *why,
		     size_t whylen)
{
	out->nterm = 0;
	out->has_redirect = out->has_exp = 0;
	out->redirect = out->redirect_len = 0;
	out->exp = out->exp_len = 0;
	if (why && whylen)
		why[0] = '\0';
	if (!spf_is_record(txt, len)) {
		set_why(why, whylen, "not an SPF record", txt, len);
		return -1;
	}
	if (len > SPF_MAX_RECORD) {
		set_why(why, whylen, "record too long", txt, 20);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)txt[i];
		if (c < 0x20 || c > 0x7e) {
			set_why(why, whylen, "non-ASCII or control character in record", txt,
				len);
			return -1;
		}
	}
	for (size_t i = 6; i < len;) {
		while (i < len && txt[i] == ' ')
			i++;
		if (i == len)
			break;
		size_t s = i;
		while (i < len && txt[i] != ' ')
			i++;
		if (parse_term(txt, s, i, out) < 0) {
			set_why(why, whylen, "bad term", txt + s, i - s);
			return -1;
		}
	}
	return 0;
}

/* ---- evaluation ---- */

/* Copy with truncation, always NUL-terminated. */
static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

struct ctx {
	struct mdns *dns;
	const struct spf_request *rq;
	struct spf_outcome *out;
	int af;
	uint8_t ip[16];
	int void_limit;
	unsigned lookups, voids;
	char sender[512], local[256], odomain[256], helo[256];
	const char *cur; /* %{d} while expanding */
	/* the exp= of the record that decided a fail, with its %{d} */
	int have_exp;
	char exp_spec[512], exp_domain[256];
};

/* The first reason wins: it is the cause, later ones are consequences. */
static void reason(struct ctx *c, const char *fmt, const char *arg)
{
	char a[100];
	copy_str(a, sizeof(a), arg);
	if (!c->out->reason[0])
		snprintf(c->out->reason, sizeof(c->out->reason), fmt, a);
}

static void rev_name(const struct ctx *c, char *out, size_t cap)
{
	if (c->af == AF_INET) {
		snprintf(out, cap, "%u.%u.%u.%u.in-addr.arpa", c->ip[3], c->ip[2], c->ip[1],
			 c->ip[0]);
		return;
	}
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	for (int b = 15; b >= 0 && n + 4 < cap; b--) {
		out[n++] = hex[c->ip[b] & 15];
		out[n++] = '.';
		out[n++] = hex[c->ip[b] >> 4];
		out[n++] = '.';
	}
	snprintf(out + n, cap - n, "ip6.arpa");
}

static int is_v4mapped(const uint8_t *a)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	return memcmp(a, mapped, 12) == 0;
}

static int cidr_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	if (memcmp(a, b, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

/* Any A/AAAA record of the client's family within the prefix. */
static int addr_match(const struct ctx *c, const struct mdns_answer *a, unsigned bits)
{
	int type = c->af == AF_INET ? MDNS_A : MDNS_AAAA;
	for (size_t i = 0; i < a->n; i++)
		if (a->rr[i].type == type && cidr_match(a->rr[i].addr, c->ip, bits))
			return 1;
	return 0;
}

/* 1 when name equals target or ends in "." target (case-insensitive). */
static int name_within(const char *name, const char *target)
{
	size_t nl = strlen(name), tl = strlen(target);
	if (nl && name[nl - 1] == '.')
		nl--;
	if (tl && target[tl - 1] == '.')
		tl--;
	if (nl < tl || strncasecmp(name + nl - tl, target, tl) != 0)
		return 0;
	return nl == tl || name[nl - tl - 1] == '.';
}

/* name has an address record equal to the client IP (RFC 7208 5.5). */
static int name_validates(struct ctx *c, const char *name)
{
	struct mdns_answer a;
	int ok = 0;
	if (mdns_query(c->dns, name, c->af == AF_INET ? MDNS_A : MDNS_AAAA, &a) == MDNS_OK)
		ok = addr_match(c, &a, c->af == AF_INET ? 32 : 128);
	mdns_answer_fini(&a);
	return ok;
}

/* %{p}: RFC 7208 7.3. The <domain> itself, else a subdomain, else any. */
static void ptr_name(void *arg, char *out, size_t cap)
{
	struct ctx *c = arg;
	char rev[128];
	struct mdns_answer a;
	int best = 0; /* 3 exact, 2 subdomain, 1 any */
	snprintf(out, cap, "unknown");
	rev_name(c, rev, sizeof(rev));
	if (mdns_query(c->dns, rev, MDNS_PTR, &a) == MDNS_OK) {
		for (size_t i = 0; i < a.n && i < SPF_MAX_NAMES && best < 3; i++) {
			const char *n = a.rr[i].data;
			if (a.rr[i].type != MDNS_PTR || !n || !name_validates(c, n))
				continue;
			int score = 1;
			if (name_within(n, c->cur))
				score = strlen(n) == strlen(c->cur) ? 3 : 2;
			if (score > best) {
				best = score;
				snprintf(out, cap, "%s", n);
			}
		}
	}
	mdns_answer_fini(&a);
}

static long expand(struct ctx *c, const char *domain, const char *s, size_t len, int exp,
		   char *out, size_t cap)
{
	struct spf_macro_env env = {
		.sender = c->sender, .local = c->local, .odomain = c->odomain,
		.domain = domain, .helo = c->helo, .receiver = c->rq->receiver,
		.af = c->af, .now = c->rq->now, .ptr_name = ptr_name, .arg = c,
	};
	memcpy(env.ip, c->ip, sizeof(env.ip));
	c->cur = domain;
	return spf_macro_expand(&env, s, len, exp, out, cap);
}

/* Expand a domain-spec into a name to query: trailing dot dropped, left
 * labels dropped past 253 octets (RFC 7208 7.3). -1 on a macro error; a
 * name that stays invalid is left for mdns_query to call BADNAME. */
static int expand_name(struct ctx *c, const char *domain, const char *s, size_t len,
		       char *out, size_t cap)
{
	long n = expand(c, domain, s, len, 0, out, cap);
	if (n == -1)
		return -1;
	if (n < 0) { /* too long to hold: an invalid name */
		snprintf(out, cap, ".");
		return 0;
	}
	size_t l = (size_t)n;
	if (l > 0 && out[l - 1] == '.')
		out[--l] = '\0';
	size_t start = 0;
	while (l - start > 253) {
		const char *dot = memchr(out + start, '.', l - start);
		if (!dot)
			break;
		start = (size_t)(dot - out) + 1;
	}
	if (start)
		memmove(out, out + start, l - start + 1);
	return 0;
}

/* Count a void lookup; 1 when the limit is now exceeded. */
static int void_lookup(struct ctx *c)
{
	c->voids++;
	if (c->void_limit && c->voids > SPF_MAX_VOID) {
		reason(c, "more than %s void DNS lookups", "2");
		return 1;
	}
	return 0;
}

enum { NOMATCH = 0, MATCH = 1, ERROR = -1 };

static enum spf_result check_host(struct ctx *c, const char *domain_in, int depth);

static int eval_addr(struct ctx *c, const char *target, unsigned bits, int *voided,
		     enum spf_result *err)
{
	struct mdns_answer a;
	enum mdns_rcode rc = mdns_query(c->dns, target, c->af == AF_INET ? MDNS_A : MDNS_AAAA, &a);
	int r = NOMATCH;
	if (rc == MDNS_TEMPFAIL) {
		reason(c, "DNS failure for %s", target);
		*err = SPF_TEMPERROR;
		r = ERROR;
	} else if (rc != MDNS_OK || a.n == 0) {
		if (voided)
			*voided = 1;
	} else {
		r = addr_match(c, &a, bits);
	}
	mdns_answer_fini(&a);
	return r;
}

static int eval_mx(struct ctx *c, const char *target, unsigned bits, enum spf_result *err)
{
	struct mdns_answer a;
	enum mdns_rcode rc = mdns_query(c->dns, target, MDNS_MX, &a);
	int r = NOMATCH;
	if (rc == MDNS_TEMPFAIL) {
		reason(c, "DNS failure for %s", target);
		*err = SPF_TEMPERROR;
		r = ERROR;
	} else if (rc != MDNS_OK || a.n == 0) {
		if (void_lookup(c)) {
			*err = SPF_PERMERROR;
			r = ERROR;
		}
	} else {
		/* The ten most preferred hosts, in order (stable); the limit
		 * bites when an 11th host would be asked for, so a match among
		 * the first ten stands. */
		size_t order[SPF_MAX_NAMES], n = 0, total = 0;
		for (size_t i = 0; i < a.n; i++) {
			if (a.rr[i].type != MDNS_MX)
				continue;
			total++;
			size_t k = n < SPF_MAX_NAMES ? n++ : SPF_MAX_NAMES;
			while (k > 0 && a.rr[order[k - 1]].pref > a.rr[i].pref) {
				if (k < SPF_MAX_NAMES)
					order[k] = order[k - 1];
				k--;
			}
			if (k < SPF_MAX_NAMES)
				order[k] = i;
		}
		for (size_t k = 0; k < n && r == NOMATCH; k++) {
			const char *h = a.rr[order[k]].data;
			if (!h || !h[0] || strcmp(h, ".") == 0)
				continue; /* RFC 7505 null MX */
			r = eval_addr(c, h, bits, NULL, err);
		}
		if (r == NOMATCH && total > SPF_MAX_NAMES) {
			reason(c, "more than 10 MX names at %s", target);
			*err = SPF_PERMERROR;
			r = ERROR;
		}
	}
	mdns_answer_fini(&a);
	return r;
}

static int eval_ptr(struct ctx *c, const char *target, enum spf_result *err)
{
	char rev[128];
	struct mdns_answer a;
	rev_name(c, rev, sizeof(rev));
	enum mdns_rcode rc = mdns_query(c->dns, rev, MDNS_PTR, &a);
	int r = NOMATCH;
	if (rc == MDNS_OK && a.n > 0) {
		for (size_t i = 0; i < a.n && i < SPF_MAX_NAMES && r == NOMATCH; i++) {
			const char *n = a.rr[i].data;
			if (a.rr[i].type == MDNS_PTR && n && name_within(n, target) &&
			    name_validates(c, n))
				r = MATCH;
		}
	} else if (rc != MDNS_TEMPFAIL && void_lookup(c)) {
		*err = SPF_PERMERROR;
		r = ERROR;
	}
	mdns_answer_fini(&a);
	return r;
}

static int eval_exists(struct ctx *c, const char *target, enum spf_result *err)
{
	struct mdns_answer a;
	enum mdns_rcode rc = mdns_query(c->dns, target, MDNS_A, &a);
	int r = NOMATCH;
	if (rc == MDNS_TEMPFAIL) {
		reason(c, "DNS failure for %s", target);
		*err = SPF_TEMPERROR;
		r = ERROR;
	} else if (rc == MDNS_OK && a.n > 0) {
		r = MATCH;
	} else if (void_lookup(c)) {
		*err = SPF_PERMERROR;
		r = ERROR;
	}
	mdns_answer_fini(&a);
	return r;
}

/* One term: MATCH, NOMATCH or ERROR with *err set. */
static int eval_term(struct ctx *c, const char *txt, const struct spf_term *t,
		     const char *domain, int depth, enum spf_result *err)
{
	switch (t->mech) {
	case SPF_M_ALL:
		return MATCH;
	case SPF_M_IP4:
		return c->af == AF_INET && cidr_match(t->addr, c->ip, t->cidr4);
	case SPF_M_IP6:
		if (c->af == AF_INET6)
			return cidr_match(t->addr, c->ip, t->cidr6);
		/* ip6:::ffff:192.0.2.1 names an IPv4 sender: match the
		 * embedded address when the prefix covers the mapped form. */
		return t->cidr6 >= 96 && is_v4mapped(t->addr) &&
		       cidr_match(t->addr + 12, c->ip, t->cidr6 - 96u);
	default:
		break;
	}
	if (++c->lookups > SPF_MAX_LOOKUPS) {
		reason(c, "more than %s DNS-querying terms", "10");
		*err = SPF_PERMERROR;
		return ERROR;
	}
	char target[NAME_BUF];
	if (t->arglen) {
		if (expand_name(c, domain, txt + t->arg, t->arglen, target, sizeof(target)) < 0) {
			reason(c, "bad macro in %s", domain);
			*err = SPF_PERMERROR;
			return ERROR;
		}
	} else {
		copy_str(target, sizeof(target), domain);
	}
	int voided = 0, r;
	switch (t->mech) {
	case SPF_M_A:
		r = eval_addr(c, target, c->af == AF_INET ? t->cidr4 : t->cidr6, &voided, err);
		if (voided && void_lookup(c)) {
			*err = SPF_PERMERROR;
			r = ERROR;
		}
		return r;
	case SPF_M_MX:
		return eval_mx(c, target, c->af == AF_INET ? t->cidr4 : t->cidr6, err);
	case SPF_M_PTR:
		return eval_ptr(c, target, err);
	case SPF_M_EXISTS:
		return eval_exists(c, target, err);
	case SPF_M_INCLUDE:
		switch (check_host(c, target, depth + 1)) {
		case SPF_PASS:
			return MATCH;
		case SPF_FAIL:
		case SPF_SOFTFAIL:
		case SPF_NEUTRAL:
			return NOMATCH;
		case SPF_TEMPERROR:
			*err = SPF_TEMPERROR;
			return ERROR;
		case SPF_NONE:
			reason(c, "include of %s without an SPF record", target);
			*err = SPF_PERMERROR;
			return ERROR;
		default:
			*err = SPF_PERMERROR;
			return ERROR;
		}
	default:
		*err = SPF_PERMERROR;
		return ERROR;
	}
}

/* The one SPF record of domain's TXT records: index, or -1 none, -2 many. */
static long pick_record(const struct mdns_answer *a)
{
	long idx = -1;
	for (size_t i = 0; i < a->n; i++) {
		if (a->rr[i].type != MDNS_TXT || !a->rr[i].data ||
		    !spf_is_record(a->rr[i].data, a->rr[i].len))
			continue;
		if (idx >= 0)
			return -2;
		idx = (long)i;
	}
	return idx;
}

static void set_mechanism(struct ctx *c, const char *t, size_t len)
{
	snprintf(c->out->mechanism, sizeof(c->out->mechanism), "%.*s",
		 (int)(len > 127 ? 127 : len), t);
}

/* check_host(): RFC 7208 section 4. depth 0 is the evaluation the caller
 * asked for (and the records it redirects to); includes are deeper. */
static enum spf_result check_host(struct ctx *c, const char *domain_in, int depth)
{
	char domain[NAME_BUF];
	int redirected = 0;
	copy_str(domain, sizeof(domain), domain_in);
	for (;;) {
		struct mdns_answer a;
		enum mdns_rcode rc = mdns_query(c->dns, domain, MDNS_TXT, &a);
		if (rc == MDNS_TEMPFAIL) {
			mdns_answer_fini(&a);
			reason(c, "DNS failure for the SPF record of %s", domain);
			return SPF_TEMPERROR;
		}
		long idx = rc == MDNS_OK ? pick_record(&a) : -1;
		if (idx < 0) {
			mdns_answer_fini(&a);
			if (idx == -2) {
				reason(c, "more than one SPF record at %s", domain);
				return SPF_PERMERROR;
			}
			if (redirected) {
				reason(c, "redirect to %s without an SPF record", domain);
				return SPF_PERMERROR;
			}
			reason(c, "no SPF record at %s", domain);
			return SPF_NONE;
		}
		const char *txt = a.rr[idx].data;
		struct spf_record rec;
		char why[120];
		if (spf_parse_record(txt, a.rr[idx].len, &rec, why, sizeof(why)) < 0) {
			reason(c, "%s", why);
			mdns_answer_fini(&a);
			return SPF_PERMERROR;
		}
		for (size_t i = 0; i < rec.nterm; i++) {
			const struct spf_term *t = &rec.term[i];
			enum spf_result err = SPF_PERMERROR;
			int m = eval_term(c, txt, t, domain, depth, &err);
			if (m == NOMATCH)
				continue;
			if (m == MATCH && depth == 0) {
				set_mechanism(c, txt + t->off, t->len);
				if (t->qual == SPF_FAIL && rec.has_exp) {
					c->have_exp = 1;
					snprintf(c->exp_spec, sizeof(c->exp_spec), "%.*s",
						 (int)rec.exp_len, txt + rec.exp);
					copy_str(c->exp_domain, sizeof(c->exp_domain),
						 domain);
				}
			}
			mdns_answer_fini(&a);
			return m == MATCH ? (enum spf_result)t->qual : err;
		}
		if (!rec.has_redirect) {
			mdns_answer_fini(&a);
			if (depth == 0)
				snprintf(c->out->mechanism, sizeof(c->out->mechanism), "default");
			return SPF_NEUTRAL;
		}
		if (++c->lookups > SPF_MAX_LOOKUPS) {
			mdns_answer_fini(&a);
			reason(c, "more than %s DNS-querying terms", "10");
			return SPF_PERMERROR;
		}
		char target[NAME_BUF];
		int bad = expand_name(c, domain, txt + rec.redirect, rec.redirect_len, target,
				      sizeof(target));
		mdns_answer_fini(&a);
		if (bad < 0) {
			reason(c, "bad macro in the redirect of %s", domain);
			return SPF_PERMERROR;
		}
		memcpy(domain, target, sizeof(domain));
		redirected = 1;
	}
}

/* The exp= text (RFC 7208 6.2), or NULL when it cannot be had. */
static char *explanation(struct ctx *c)
{
	char name[NAME_BUF];
	if (expand_name(c, c->exp_domain, c->exp_spec, strlen(c->exp_spec), name,
			sizeof(name)) < 0)
		return NULL;
	struct mdns_answer a;
	char *text = NULL;
	if (mdns_query(c->dns, name, MDNS_TXT, &a) == MDNS_OK && a.n == 1 && a.rr[0].data) {
		const char *s = a.rr[0].data;
		size_t len = a.rr[0].len, i;
		for (i = 0; i < len; i++)
			if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
				break;
		char buf[1024];
		if (i == len && expand(c, c->exp_domain, s, len, 1, buf, sizeof(buf)) >= 0)
			text = strdup(buf);
	}
	mdns_answer_fini(&a);
	return text;
}

static void copy_n(char *dst, size_t cap, const char *s, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

/* A domain check_host() may start with (RFC 7208 4.3): a valid name of
 * two labels or more with a proper top label. */
static int domain_ok(const char *d)
{
	return mdns_name_ok(d) && name_end_ok(d, strlen(d));
}

static int run(struct mdns *dns, const struct spf_request *rq, struct spf_outcome *out,
	       int helo_identity)
{
	memset(out, 0, sizeof(*out));
	struct ctx cbuf; /* about 3 KiB: on the stack, no allocation per message */
	struct ctx *c = &cbuf;
	memset(c, 0, sizeof(*c));
	c->dns = dns;
	c->rq = rq;
	c->out = out;
	c->void_limit = !(rq->flags & SPF_F_RFC4408);
	c->af = rq->af == AF_INET6 ? AF_INET6 : AF_INET;
	memcpy(c->ip, rq->ip, c->af == AF_INET6 ? 16 : 4);
	if (c->af == AF_INET6 && is_v4mapped(c->ip)) {
		c->af = AF_INET;
		memmove(c->ip, c->ip + 12, 4);
		memset(c->ip + 4, 0, 12);
	}
	const char *helo = rq->helo ? rq->helo : "";
	copy_str(c->helo, sizeof(c->helo), helo);
	const char *mf = helo_identity ? NULL : rq->mail_from;
	size_t mfl = mf ? strlen(mf) : 0;
	if (mfl >= 2 && mf[0] == '<' && mf[mfl - 1] == '>') {
		mf++; /* the SMTP path as the MTA hands it: <local@domain> */
		mfl -= 2;
	}
	if (mfl == 0)
		snprintf(c->sender, sizeof(c->sender), "postmaster@%s", helo);
	else
		copy_n(c->sender, sizeof(c->sender), mf, mfl);
	const char *at = strrchr(c->sender, '@');
	if (at) {
		copy_n(c->local, sizeof(c->local), c->sender, (size_t)(at - c->sender));
		copy_str(c->odomain, sizeof(c->odomain), at + 1);
	} else {
		copy_str(c->odomain, sizeof(c->odomain), c->sender);
	}
	if (!c->local[0]) {
		snprintf(c->local, sizeof(c->local), "postmaster");
		snprintf(c->sender, sizeof(c->sender), "postmaster@%.255s", c->odomain);
	}
	size_t dl = strlen(c->odomain);
	if (dl && c->odomain[dl - 1] == '.')
		c->odomain[dl - 1] = '\0';
	copy_str(out->domain, sizeof(out->domain), c->odomain);
	if (!domain_ok(c->odomain)) {
		out->result = SPF_NONE;
		snprintf(out->reason, sizeof(out->reason), "not a checkable domain name");
		return 0;
	}
	out->result = check_host(c, c->odomain, 0);
	out->dns_lookups = c->lookups;
	out->void_lookups = c->voids;
	if (out->result == SPF_FAIL) {
		if (c->have_exp)
			out->explanation = explanation(c);
		if (!out->explanation) {
			char ipb[64];
			if (!inet_ntop(c->af, c->ip, ipb, sizeof(ipb)))
				ipb[0] = '\0';
			size_t n = strlen(c->odomain) + strlen(ipb) + 64;
			out->explanation = malloc(n);
			if (out->explanation)
				snprintf(out->explanation, n,
					 "%s does not designate %s as a permitted sender",
					 c->odomain, ipb);
			out->exp_default = 1;
		}
	}
	return 0;
}

int spf_check(struct mdns *dns, const struct spf_request *rq, struct spf_outcome *out)
{
	return run(dns, rq, out, 0);
}

int spf_check_helo(struct mdns *dns, const struct spf_request *rq, struct spf_outcome *out)
{
	return run(dns, rq, out, 1);
}
