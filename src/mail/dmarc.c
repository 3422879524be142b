/*
 * dmarc: record parsing, policy discovery, identifier alignment and the
 * disposition (RFC 7489 sections 3, 6.3, 6.6; RFC 9091 for np=).
 *
 * Why the discovery is exactly two lookups: RFC 7489 6.6.3 asks for
 * _dmarc.<From domain> and, failing that, _dmarc.<organisational domain>;
 * DMARCbis's tree walk is not followed (the conformance cases pin the
 * difference). A transient DNS failure is a temperror, never "no policy".
 * The three existence lookups of RFC 9091 are made only when an np= tag
 * could change the answer.
 */
#include "mail/dmarc.h"

#include <ctype.h>
#include <libpsl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/mdns.h"
#include "mail/spf.h"

#define DMARC_MAX_TAGS 64
#define DMARC_MAX_RECORD 8192

static const char *const result_names[] = {"none", "pass", "fail", "temperror", "permerror"};

const char *dmarc_result_str(int r)
{
	if (r < 0 || r > DMARC_RESULT_PERMERROR)
		return "unknown";
	return result_names[r];
}

const char *dmarc_policy_str(int p)
{
	switch (p) {
	case DMARC_POLICY_NONE: return "none";
	case DMARC_POLICY_QUARANTINE: return "quarantine";
	case DMARC_POLICY_REJECT: return "reject";
	default: return "absent";
	}
}

/* ---- the record ---- */

static int is_wsp(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int dmarc_is_record(const char *txt, size_t len)
{
	size_t i = 0;
	if (len < 1 || (txt[0] != 'v' && txt[0] != 'V'))
		return 0;
	i = 1;
	while (i < len && is_wsp((unsigned char)txt[i]))
		i++;
	if (i >= len || txt[i] != '=')
		return 0;
	i++;
	while (i < len && is_wsp((unsigned char)txt[i]))
		i++;
	if (len - i < 6 || memcmp(txt + i, "DMARC1", 6) != 0)
		return 0;
	i += 6;
	while (i < len && is_wsp((unsigned char)txt[i]))
		i++;
	return i == len || txt[i] == ';';
}

static int policy_of(const char *v, size_t n)
{
	if (n == 4 && strncasecmp(v, "none", 4) == 0)
		return DMARC_POLICY_NONE;
	if (n == 10 && strncasecmp(v, "quarantine", 10) == 0)
		return DMARC_POLICY_QUARANTINE;
	if (n == 6 && strncasecmp(v, "reject", 6) == 0)
		return DMARC_POLICY_REJECT;
	return DMARC_POLICY_ABSENT;
}

static int align_of(const char *v, size_t n, int dflt)
{
	if (n == 1 && (v[0] == 'r' || v[0] == 'R'))
		return DMARC_ALIGN_RELAXED;
	if (n == 1 && (v[0] == 's' || v[0] == 'S'))
		return DMARC_ALIGN_STRICT;
	return dflt;
}

/* An unsigned decimal of at most 10 digits; -1 when not one. */
static long long num_of(const char *v, size_t n)
{
	if (n == 0 || n > 10)
		return -1;
	long long x = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)v[i]))
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	return x;
}

/* rua=/ruf=: comma-separated URIs, each "scheme:rest" with an optional
 * "!size" suffix. 1 when at least one is syntactically valid. */
static int uri_list_ok(const char *v, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i++;
		while (s < e && is_wsp((unsigned char)v[s]))
			s++;
		while (e > s && is_wsp((unsigned char)v[e - 1]))
			e--;
		size_t k = s;
		if (k < e && isalpha((unsigned char)v[k])) {
			while (k < e && (isalnum((unsigned char)v[k]) || v[k] == '+' ||
					 v[k] == '-' || v[k] == '.'))
				k++;
			if (k < e && v[k] == ':' && k + 1 < e)
				return 1;
		}
	}
	return 0;
}

static void copy_value(char *dst, size_t cap, const char *v, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static void why_set(char *why, size_t whylen, const char *msg)
{
	if (why && whylen)
		snprintf(why, whylen, "%s", msg);
}

int dmarc_parse_record(const char *txt, size_t len, struct dmarc_record *out, char *why,
		       size_t whylen)
{
	memset(out, 0, sizeof(*out));
	out->p = out->sp = out->np = DMARC_POLICY_ABSENT;
	out->pct = 100;
	out->ri = 86400;
	out->fo[0] = '0';
	if (why && whylen)
		why[0] = '\0';
	if (!dmarc_is_record(txt, len)) {
		why_set(why, whylen, "not a DMARC record (v=DMARC1 must come first)");
		return -1;
	}
	if (len > DMARC_MAX_RECORD) {
		why_set(why, whylen, "record too long");
		return -1;
	}
	int p = DMARC_POLICY_ABSENT, sp = DMARC_POLICY_ABSENT, np = DMARC_POLICY_ABSENT;
	int sp_bad = 0, rua_ok = 0;
	size_t i = 0, ntags = 0;
	while (i < len && ntags < DMARC_MAX_TAGS) {
		size_t s = i;
		while (i < len && txt[i] != ';')
			i++;
		size_t e = i++;
		ntags++;
		while (s < e && is_wsp((unsigned char)txt[s]))
			s++;
		while (e > s && is_wsp((unsigned char)txt[e - 1]))
			e--;
		const char *eq = memchr(txt + s, '=', e - s);
		if (!eq)
			continue; /* empty or malformed tag: ignored */
		size_t ne = (size_t)(eq - txt), vs = ne + 1;
		while (ne > s && is_wsp((unsigned char)txt[ne - 1]))
			ne--;
		while (vs < e && is_wsp((unsigned char)txt[vs]))
			vs++;
		const char *name = txt + s, *v = txt + vs;
		size_t nl = ne - s, vl = e - vs;
#define TAG(t) (nl == sizeof(t) - 1 && strncasecmp(name, t, nl) == 0)
		if (TAG("p")) {
			p = policy_of(v, vl);
		} else if (TAG("sp")) {
			sp = policy_of(v, vl);
			sp_bad = sp == DMARC_POLICY_ABSENT;
			out->has_sp = !sp_bad;
		} else if (TAG("np")) {
			np = policy_of(v, vl);
			out->has_np = np != DMARC_POLICY_ABSENT;
		} else if (TAG("adkim")) {
			out->adkim = align_of(v, vl, DMARC_ALIGN_RELAXED);
		} else if (TAG("aspf")) {
			out->aspf = align_of(v, vl, DMARC_ALIGN_RELAXED);
		} else if (TAG("pct")) {
			long long x = num_of(v, vl);
			if (x >= 0 && x <= 100)
				out->pct = (unsigned)x;
		} else if (TAG("ri")) {
			long long x = num_of(v, vl);
			if (x >= 0 && x <= 0xffffffffLL)
				out->ri = (unsigned)x;
		} else if (TAG("rua")) {
			copy_value(out->rua, sizeof(out->rua), v, vl);
			rua_ok = uri_list_ok(v, vl);
		} else if (TAG("ruf")) {
			copy_value(out->ruf, sizeof(out->ruf), v, vl);
		} else if (TAG("fo")) {
			copy_value(out->fo, sizeof(out->fo), v, vl);
		}
#undef TAG
	}
	if (p == DMARC_POLICY_ABSENT || sp_bad) {
		/* RFC 7489 6.6.3 step 6: with a usable rua= act as p=none. */
		if (!rua_ok) {
			why_set(why, whylen, p == DMARC_POLICY_ABSENT ?
				"p= missing or invalid and no valid rua=" :
				"sp= invalid and no valid rua=");
			return -1;
		}
		p = DMARC_POLICY_NONE;
		sp = DMARC_POLICY_ABSENT;
		out->p_from_rua = 1;
	}
	out->p = p;
	out->sp = sp == DMARC_POLICY_ABSENT ? p : sp;
	out->np = np == DMARC_POLICY_ABSENT ? out->sp : np;
	return 0;
}

/* ---- organisational domains ---- */

static pthread_once_t psl_once = PTHREAD_ONCE_INIT;
static const psl_ctx_t *psl_default;

static void psl_init(void)
{
	psl_ctx_t *p = psl_latest(NULL);
	psl_default = p ? p : psl_builtin();
}

const struct psl_ctx_st *dmarc_psl(void)
{
	pthread_once(&psl_once, psl_init);
	return psl_default;
}

int dmarc_registrable_domain(const struct psl_ctx_st *psl, const char *domain, char *out,
			     size_t cap)
{
	if (!psl)
		psl = dmarc_psl();
	if (!psl || !domain || !cap)
		return -1;
	size_t len = strlen(domain);
	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len > 253 || domain[0] == '.')
		return -1;
	char low[256];
	int ascii = 1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)domain[i];
		if (c == '.' && i + 1 < len && domain[i + 1] == '.')
			return -1; /* empty label */
		if (c >= 0x80)
			ascii = 0;
		low[i] = (char)tolower(c);
	}
	low[len] = '\0';
	char *lower = NULL;
	const char *q = low;
	if (!ascii) {
		if (psl_str_to_utf8lower(low, "utf-8", NULL, &lower) != PSL_SUCCESS)
			return -1;
		q = lower;
	}
	const char *reg = psl_registrable_domain(psl, q);
	int rc = -1;
	if (reg && strlen(reg) < cap) {
		memcpy(out, reg, strlen(reg) + 1);
		rc = 0;
	}
	psl_free_string(lower);
	return rc;
}

int dmarc_org_domain(const char *domain, char *out, size_t cap)
{
	if (dmarc_registrable_domain(NULL, domain, out, cap) == 0)
		return 0;
	/* A public suffix (or a name the list cannot place) is its own
	 * organisational domain. */
	if (!domain || !mdns_name_ok(domain))
		return -1;
	size_t len = strlen(domain);
	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len >= cap)
		return -1;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)domain[i]);
	out[len] = '\0';
	return 0;
}

/* ---- the check ---- */

/* Outcome of one policy lookup. */
enum fetch { FETCH_FOUND, FETCH_NONE, FETCH_MANY, FETCH_BAD, FETCH_TEMP };

static enum fetch fetch_record(struct mdns *dns, const char *domain, struct dmarc_record *rec,
			       char *why, size_t whylen)
{
	char name[300];
	snprintf(name, sizeof(name), "_dmarc.%s", domain);
	struct mdns_answer a;
	enum mdns_rcode rc = mdns_query(dns, name, MDNS_TXT, &a);
	enum fetch f = FETCH_NONE;
	if (rc == MDNS_TEMPFAIL) {
		f = FETCH_TEMP;
	} else if (rc == MDNS_OK) {
		long idx = -1;
		for (size_t i = 0; i < a.n; i++) {
			if (a.rr[i].type != MDNS_TXT || !a.rr[i].data ||
			    !dmarc_is_record(a.rr[i].data, a.rr[i].len))
				continue;
			if (idx >= 0) {
				f = FETCH_MANY;
				break;
			}
			idx = (long)i;
		}
		if (f != FETCH_MANY && idx >= 0)
			f = dmarc_parse_record(a.rr[idx].data, a.rr[idx].len, rec, why, whylen) == 0
				    ? FETCH_FOUND : FETCH_BAD;
	}
	mdns_answer_fini(&a);
	return f;
}

/* RFC 9091 2.1: a name is non-existent when A, AAAA and MX all answer
 * NXDOMAIN. Any other answer (data, no data, failure) means it exists. */
static int domain_missing(struct mdns *dns, const char *domain)
{
	static const int types[] = {MDNS_A, MDNS_AAAA, MDNS_MX};
	for (size_t i = 0; i < 3; i++) {
		struct mdns_answer a;
		enum mdns_rcode rc = mdns_query(dns, domain, types[i], &a);
		mdns_answer_fini(&a);
		if (rc != MDNS_NXDOMAIN)
			return 0;
	}
	return 1;
}

static int aligned(const char *id, const char *from, const char *from_org, int mode)
{
	if (!id || !*id)
		return 0;
	size_t il = strlen(id), fl = strlen(from);
	if (il && id[il - 1] == '.')
		il--;
	if (il == fl && strncasecmp(id, from, fl) == 0)
		return 1;
	if (mode == DMARC_ALIGN_STRICT)
		return 0;
	char org[256];
	if (dmarc_org_domain(id, org, sizeof(org)) < 0)
		return 0;
	return strcasecmp(org, from_org) == 0;
}

static void out_reason(struct dmarc_outcome *o, const char *what, const char *d)
{
	snprintf(o->reason, sizeof(o->reason), "%s %.100s", what, d);
}

int dmarc_check(struct mdns *dns, const struct dmarc_auth *in, unsigned pct_roll,
		struct dmarc_outcome *out)
{
	memset(out, 0, sizeof(*out));
	out->result = DMARC_RESULT_NONE;
	out->policy = DMARC_POLICY_ABSENT;
	out->disposition = DMARC_POLICY_NONE;
	char from[256];
	const char *fd = in && in->from_domain ? in->from_domain : "";
	size_t fl = strlen(fd);
	if (fl && fd[fl - 1] == '.')
		fl--;
	if (fl == 0 || fl >= sizeof(from)) {
		out->result = DMARC_RESULT_PERMERROR;
		out_reason(out, "no usable From domain", "");
		return 0;
	}
	for (size_t i = 0; i < fl; i++)
		from[i] = (char)tolower((unsigned char)fd[i]);
	from[fl] = '\0';
	if (!mdns_name_ok(from) || dmarc_org_domain(from, out->org_domain,
						    sizeof(out->org_domain)) < 0) {
		out->result = DMARC_RESULT_PERMERROR;
		out_reason(out, "invalid From domain", from);
		return 0;
	}

	char why[120];
	int at_org = 0;
	const char *where = from;
	enum fetch f = fetch_record(dns, from, &out->rec, why, sizeof(why));
	if (f == FETCH_NONE && (in->flags & DMARC_F_TREEWALK)) {
		/* DMARCbis: the parents, nearest first, at most 8 labels deep,
		 * never the top-level domain itself. */
		size_t labels = 1;
		for (const char *c = from; *c; c++)
			labels += *c == '.';
		const char *p = from;
		while (labels > 8) {
			p = strchr(p, '.') + 1;
			labels--;
		}
		if (p != from && labels > 1) {
			at_org = 1;
			where = p;
			f = fetch_record(dns, p, &out->rec, why, sizeof(why));
		}
		while (f == FETCH_NONE && labels > 2) {
			p = strchr(p, '.') + 1;
			labels--;
			at_org = 1;
			where = p;
			f = fetch_record(dns, p, &out->rec, why, sizeof(why));
		}
	} else if (f == FETCH_NONE && strcmp(from, out->org_domain) != 0) {
		at_org = 1;
		where = out->org_domain;
		f = fetch_record(dns, out->org_domain, &out->rec, why, sizeof(why));
	}
	switch (f) {
	case FETCH_TEMP:
		out->result = DMARC_RESULT_TEMPERROR;
		out_reason(out, "DNS failure looking up the policy of", where);
		return 0;
	case FETCH_NONE:
		out_reason(out, "no DMARC record for", from);
		return 0;
	case FETCH_MANY:
		out_reason(out, "more than one DMARC record at", where);
		return 0;
	case FETCH_BAD:
		snprintf(out->reason, sizeof(out->reason), "unusable record at %.50s: %.80s", where,
			 why);
		return 0;
	case FETCH_FOUND:
		break;
	}
	snprintf(out->record_domain, sizeof(out->record_domain), "%s", where);

	out->policy = out->rec.p;
	if (at_org) {
		out->policy = out->rec.sp;
		if (!(in->flags & DMARC_F_NO_NP) && out->rec.has_np && out->rec.np != out->rec.sp &&
		    domain_missing(dns, from)) {
			out->policy = out->rec.np;
			out->used_np = 1;
		}
	}

	out->spf_aligned = in->spf_result == SPF_PASS &&
			   aligned(in->spf_domain, from, out->org_domain, out->rec.aspf);
	for (size_t i = 0; i < in->ndkim && in->dkim && !out->dkim_aligned; i++)
		out->dkim_aligned = in->dkim[i].pass &&
				    aligned(in->dkim[i].d, from, out->org_domain, out->rec.adkim);
	if (out->spf_aligned || out->dkim_aligned) {
		out->result = DMARC_RESULT_PASS;
		out->disposition = DMARC_POLICY_NONE;
		return 0;
	}
	out->result = DMARC_RESULT_FAIL;
	out->disposition = out->policy;
	/* RFC 7489 6.6.4: outside the pct sample, the next less strict one. */
	if (pct_roll >= out->rec.pct && out->disposition > DMARC_POLICY_NONE)
		out->disposition--;
	snprintf(out->reason, sizeof(out->reason), "no aligned identifier passed");
	return 0;
}
