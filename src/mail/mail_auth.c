/*
 * mail_auth: SPF, DKIM, ARC and DMARC on one message, and the
 * Authentication-Results header. See mail_auth.h.
 *
 * Order: SPF (MAIL FROM, or the HELO identity for the null sender), DKIM
 * (every signature), ARC (the chain, when there is one), then DMARC on the
 * From domain with the SPF and DKIM results. Each engine is asked through
 * the same DNS interface; a lookup failure is a temperror in that engine,
 * and the gateway turns a temperror that would decide the verdict into a
 * tempfail, never an accept or a reject by mistake.
 */
#include "mail/mail_auth.h"

#include <ctype.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "mail/dkim_int.h"

/* Every record the checks will need, asked for at once (see mdns_prefetch). */
static void prefetch(struct mdns *dns, const struct mail_auth_in *in)
{
	char name[600];
	const char *dom = NULL;
	if (in->mail_from && in->mail_from[0]) {
		const char *at = strrchr(in->mail_from, '@');
		dom = at ? at + 1 : NULL;
	} else {
		dom = in->helo;
	}
	if (dom && in->af)
		mdns_prefetch(dns, dom, MDNS_TXT);
	if (in->from_domain) {
		snprintf(name, sizeof(name), "_dmarc.%.253s", in->from_domain);
		mdns_prefetch(dns, name, MDNS_TXT);
		char org[256];
		if (dmarc_org_domain(in->from_domain, org, sizeof(org)) == 0 &&
		    strcasecmp(org, in->from_domain) != 0) {
			snprintf(name, sizeof(name), "_dmarc.%.253s", org);
			mdns_prefetch(dns, name, MDNS_TXT);
		}
	}
	unsigned n = 0;
	for (long i = msg_find(in->m, "DKIM-Signature", 0); i >= 0 && n < DKIM_MAX_SIGS;
	     i = msg_find(in->m, "DKIM-Signature", (size_t)i + 1), n++) {
		size_t vl;
		const char *v = msg_hdr_value(in->m, (size_t)i, &vl);
		struct dkim_tags tags;
		const struct dkim_tag *td, *ts;
		char d[256], sel[64];
		if (dkim_tags_parse(v, vl, &tags) == 0 && (td = dkim_tags_get(&tags, "d")) &&
		    (ts = dkim_tags_get(&tags, "s")) && dkim_tag_copy_nows(td, d, sizeof(d)) == 0 &&
		    dkim_tag_copy_nows(ts, sel, sizeof(sel)) == 0 && d[0] && sel[0]) {
			snprintf(name, sizeof(name), "%.63s._domainkey.%.253s", sel, d);
			mdns_prefetch(dns, name, MDNS_TXT);
		}
	}
}

int mail_auth_run(struct mdns *dns, const struct mail_auth_in *in, struct mail_auth *out)
{
	memset(out, 0, sizeof(*out));
	int rc;
	prefetch(dns, in);
	if (in->af == AF_INET || in->af == AF_INET6) {
		struct spf_request rq = {0};
		rq.af = in->af;
		memcpy(rq.ip, in->ip, in->af == AF_INET ? 4 : 16);
		rq.helo = in->helo;
		rq.mail_from = in->mail_from;
		rq.receiver = in->receiver;
		rq.now = in->now;
		rc = (in->mail_from && in->mail_from[0]) ? spf_check(dns, &rq, &out->spf)
							 : spf_check_helo(dns, &rq, &out->spf);
		if (rc < 0)
			return rc;
		out->spf_done = 1;
	}
	if ((rc = dkim_verify(dns, in->m, in->now, &out->dkim)) < 0)
		return rc;
	if (msg_find(in->m, "ARC-Seal", 0) >= 0 || msg_find(in->m, "ARC-Message-Signature", 0) >= 0 ||
	    msg_find(in->m, "ARC-Authentication-Results", 0) >= 0) {
		out->arc_present = 1;
		if ((rc = arc_verify(dns, in->m, in->now, &out->arc)) < 0)
			return rc;
	}
	if (in->from_domain && in->from_domain[0]) {
		struct dmarc_dkim dk[DKIM_MAX_SIGS];
		struct dmarc_auth da;
		mail_auth_dmarc_input(out, in, &da, dk);
		if ((rc = dmarc_check(dns, &da, in->pct_roll, &out->dmarc)) < 0)
			return rc;
		out->dmarc_done = 1;
	}
	return 0;
}

void mail_auth_dmarc_input(const struct mail_auth *a, const struct mail_auth_in *in,
			   struct dmarc_auth *da, struct dmarc_dkim *dk)
{
	size_t nd = 0;
	for (size_t i = 0; i < a->dkim.n && nd < DKIM_MAX_SIGS; i++) {
		dk[nd].pass = a->dkim.sig[i].result == DKIM_PASS;
		dk[nd].d = a->dkim.sig[i].d;
		nd++;
	}
	memset(da, 0, sizeof(*da));
	da->from_domain = in->from_domain;
	da->spf_result = a->spf_done ? (int)a->spf.result : SPF_NONE;
	da->spf_domain = a->spf_done ? a->spf.domain : "";
	da->ndkim = nd;
	da->dkim = dk;
}

void mail_auth_fini(struct mail_auth *a)
{
	if (a->spf_done)
		spf_outcome_fini(&a->spf);
	a->spf_done = 0;
}

int mail_auth_temperror(const struct mail_auth *a)
{
	if (a->spf_done && a->spf.result == SPF_TEMPERROR)
		return 1;
	for (size_t i = 0; i < a->dkim.n; i++)
		if (a->dkim.sig[i].result == DKIM_TEMPERROR)
			return 1;
	return a->dmarc_done && a->dmarc.result == DMARC_RESULT_TEMPERROR;
}

/* A token safe in a header: printable ASCII without ';' '(' ')' '"' and
 * spaces; anything else becomes '?'. */
static int put_tok(struct buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c >= 127 || c == ';' || c == '(' || c == ')' || c == '"' || c == '\\')
			c = '?';
		int rc = buf_putc(b, (char)c);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int put_comment(struct buf *b, const char *s)
{
	int rc = buf_puts(b, " (");
	for (; rc == 0 && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < ' ' || c >= 127 || c == '(' || c == ')' || c == '\\')
			c = ' ';
		rc = buf_putc(b, (char)c);
	}
	return rc ? rc : buf_putc(b, ')');
}


int mail_auth_header(const struct mail_auth *a, const struct mail_auth_in *in,
		     const char *authserv_id, struct buf *out)
{
	int rc = buf_putc(out, ' ');
	rc = rc ? rc : put_tok(out, authserv_id);
	int any = 0;
	const char *sep = ";\r\n\t";
	if (rc == 0 && a->spf_done) {
		any = 1;
		rc = buf_printf(out, "%sspf=%s", sep, spf_result_str(a->spf.result));
		if (rc == 0 && a->spf.reason[0] &&
		    (a->spf.result == SPF_PERMERROR || a->spf.result == SPF_TEMPERROR))
			rc = put_comment(out, a->spf.reason);
		if (rc == 0 && in->mail_from && in->mail_from[0]) {
			rc = buf_puts(out, " smtp.mailfrom=");
			rc = rc ? rc : put_tok(out, in->mail_from);
		} else if (rc == 0 && in->helo && in->helo[0]) {
			rc = buf_puts(out, " smtp.helo=");
			rc = rc ? rc : put_tok(out, in->helo);
		}
	}
	for (size_t i = 0; rc == 0 && i < a->dkim.n; i++) {
		const struct dkim_sig_result *s = &a->dkim.sig[i];
		any = 1;
		rc = buf_printf(out, "%sdkim=%s", sep, dkim_result_str(s->result));
		if (rc == 0 && s->reason[0] && s->result != DKIM_PASS)
			rc = put_comment(out, s->reason);
		else if (rc == 0 && s->key_bits)
			rc = buf_printf(out, " (%u-bit key)", s->key_bits);
		if (rc == 0 && s->d[0]) {
			rc = buf_puts(out, " header.d=");
			rc = rc ? rc : put_tok(out, s->d);
		}
		if (rc == 0 && s->s[0]) {
			rc = buf_puts(out, " header.s=");
			rc = rc ? rc : put_tok(out, s->s);
		}
		if (rc == 0 && s->b_prefix[0]) {
			rc = buf_puts(out, " header.b=");
			rc = rc ? rc : put_tok(out, s->b_prefix);
		}
	}
	if (rc == 0 && a->dkim.n == 0) {
		any = 1;
		rc = buf_printf(out, "%sdkim=none", sep);
	}
	if (rc == 0 && a->arc_present) {
		rc = buf_printf(out, "%sarc=%s", sep,
				a->arc.cv == ARC_PASS ? "pass" : a->arc.cv == ARC_FAIL ? "fail" : "none");
		if (rc == 0 && a->arc.instances)
			rc = buf_printf(out, " (i=%u)", a->arc.instances);
		if (rc == 0 && a->arc.cv == ARC_FAIL && a->arc.reason[0])
			rc = put_comment(out, a->arc.reason);
	}
	if (rc == 0 && a->dmarc_done) {
		any = 1;
		const char *r = dmarc_result_str(a->dmarc.result);
		rc = buf_printf(out, "%sdmarc=%s", sep, r);
		if (rc == 0 && (a->dmarc.result == DMARC_RESULT_PASS || a->dmarc.result == DMARC_RESULT_FAIL))
			rc = buf_printf(out, " (p=%s dis=%s)", dmarc_policy_str(a->dmarc.policy),
					dmarc_policy_str(a->dmarc.disposition));
		else if (rc == 0 && a->dmarc.reason[0])
			rc = put_comment(out, a->dmarc.reason);
		if (rc == 0 && in->from_domain) {
			rc = buf_puts(out, " header.from=");
			rc = rc ? rc : put_tok(out, in->from_domain);
		}
	}
	if (rc == 0 && !any)
		rc = buf_puts(out, "; none");
	return rc;
}

int mail_auth_servid(const char *v, size_t len, char *out, size_t cap)
{
	size_t i = 0;
	/* Skip whitespace and comments before the id. */
	for (;;) {
		while (i < len && isspace((unsigned char)v[i]))
			i++;
		if (i < len && v[i] == '(') {
			int depth = 0;
			for (; i < len; i++) {
				if (v[i] == '(')
					depth++;
				else if (v[i] == ')' && --depth == 0) {
					i++;
					break;
				}
			}
			continue;
		}
		break;
	}
	size_t s = i;
	while (i < len && !isspace((unsigned char)v[i]) && v[i] != ';' && v[i] != '(')
		i++;
	if (i == s || i - s >= cap)
		return -1;
	memcpy(out, v + s, i - s);
	out[i - s] = '\0';
	return 0;
}
