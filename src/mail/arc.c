/*
 * arc: ARC chain validation and sealing (RFC 8617). See arc.h.
 *
 * Why the structure check comes first: every ARC field names its instance
 * (i=), and a chain is only meaningful when instances 1..N each have
 * exactly one ARC-Seal, one ARC-Message-Signature and one
 * ARC-Authentication-Results. Anything else (a field we cannot read, a
 * duplicate, a gap, an instance outside 1..50, a cv= out of place) fails
 * the chain before any DNS is asked or any key is used.
 */
#include "mail/arc.h"
#include "mail/dkim_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { SET_AAR = 0, SET_AMS = 1, SET_AS = 2 };

static const char *const set_names[3] = { "ARC-Authentication-Results", "ARC-Message-Signature",
					  "ARC-Seal" };

/* The ARC fields of a message by instance: header indices, -1 when absent. */
struct arc_chain {
	unsigned n; /* highest instance */
	long idx[ARC_MAX_INSTANCE + 1][3];
};

const char *arc_cv_str(enum arc_cv cv)
{
	return cv == ARC_PASS ? "pass" : cv == ARC_FAIL ? "fail" : "none";
}

static int is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The instance of an ARC-Authentication-Results value ("i=N; ..."), or -1. */
static long aar_instance(const char *v, size_t n)
{
	size_t i = 0;
	while (i < n && is_fws(v[i]))
		i++;
	if (i == n || (v[i] != 'i' && v[i] != 'I'))
		return -1;
	i++;
	while (i < n && is_fws(v[i]))
		i++;
	if (i == n || v[i] != '=')
		return -1;
	i++;
	while (i < n && is_fws(v[i]))
		i++;
	long x = 0;
	size_t d = 0;
	while (i < n && isdigit((unsigned char)v[i]) && d < 3) {
		x = x * 10 + (v[i] - '0');
		i++;
		d++;
	}
	while (i < n && is_fws(v[i]))
		i++;
	if (d == 0 || d == 3 || i == n || v[i] != ';')
		return -1;
	return x;
}

/* The instance of an ARC-Seal or ARC-Message-Signature, or -1. */
static long sig_instance(const struct msg_hdr *h)
{
	struct dkim_tags tags;
	long long v;
	if (h->len < h->name_len + 3)
		return -1;
	if (dkim_tags_parse(h->raw + h->name_len + 1, h->len - h->name_len - 3, &tags) ||
	    dkim_tag_num(dkim_tags_get(&tags, "i"), &v))
		return -1;
	return v > 999 ? -1 : (long)v;
}

/* Collect the chain; 0, or -1 with why set for a structural fault. */
static int collect(const struct dkim_hdrs *hdrs, struct arc_chain *c, char *why, size_t wl)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i <= ARC_MAX_INSTANCE; i++)
		c->idx[i][0] = c->idx[i][1] = c->idx[i][2] = -1;
	int fault = 0;
	for (size_t i = 0; i < hdrs->n; i++) {
		const struct msg_hdr *h = &hdrs->h[i];
		int kind = -1;
		for (int k = 0; k < 3; k++)
			if (dkim_hdr_named(h, set_names[k], strlen(set_names[k])))
				kind = k;
		if (kind < 0)
			continue;
		if (fault)
			continue;
		long inst;
		if (kind == SET_AAR)
			inst = h->len >= h->name_len + 3
				       ? aar_instance(h->raw + h->name_len + 1, h->len - h->name_len - 3)
				       : -1;
		else
			inst = sig_instance(h);
		if (inst < 1 || inst > ARC_MAX_INSTANCE) {
			snprintf(why, wl, "%s with a missing or bad instance", set_names[kind]);
			fault = 1;
			continue;
		}
		if (c->idx[inst][kind] >= 0) {
			snprintf(why, wl, "two %s fields for i=%ld", set_names[kind], inst);
			fault = 1;
			continue;
		}
		c->idx[inst][kind] = (long)i;
		if ((unsigned)inst > c->n)
			c->n = (unsigned)inst;
	}
	if (fault)
		return -1;
	for (unsigned i = 1; i <= c->n; i++)
		for (int k = 0; k < 3; k++)
			if (c->idx[i][k] < 0) {
				snprintf(why, wl, "no %s for i=%u", set_names[k], i);
				return -1;
			}
	return 0;
}

/* Canonical data an ARC-Seal of instance k signs: the sets 1..k in order
 * (AAR, AMS, AS), relaxed, the seal itself last without its b= value. */
static int seal_data(const struct dkim_hdrs *hdrs, const struct arc_chain *c, unsigned k,
		     const struct dkim_sig *as, struct dkim_buf *out)
{
	for (unsigned i = 1; i <= k; i++)
		for (int t = 0; t < 3; t++) {
			const struct msg_hdr *h = &hdrs->h[c->idx[i][t]];
			int last = i == k && t == SET_AS;
			if (dkim_canon_header(out, h->raw, h->len, DKIM_C_RELAXED,
					      last ? as->cut_from : 0, last ? as->cut_to : 0, last))
				return -1;
		}
	return 0;
}

static int h_has_arc_seal(const struct dkim_sig *s)
{
	for (size_t k = 0; k < s->nh; k++)
		if (s->h[k].n == 8 && strncasecmp(s->h[k].p, "arc-seal", 8) == 0)
			return 1;
	return 0;
}

/* Check the AMS of instance i. */
static enum dkim_result ams_check(struct dkim_ctx *ctx, const struct arc_chain *c, unsigned i,
				  struct dkim_sig *sig, char *why, size_t wl)
{
	const struct msg_hdr *h = &ctx->hdrs.h[c->idx[i][SET_AMS]];
	if (dkim_sig_parse(h, DKIM_K_AMS, sig, why, wl))
		return DKIM_PERMERROR;
	if (h_has_arc_seal(sig)) {
		snprintf(why, wl, "h= covers ARC-Seal");
		return DKIM_PERMERROR;
	}
	return dkim_sig_check(ctx, sig, why, wl, NULL, NULL);
}

int arc_verify(struct mdns *dns, const struct msg *m, time_t now, struct arc_verify_out *out)
{
	struct arc_chain *c = malloc(sizeof(*c));
	struct dkim_sig *sig = malloc(sizeof(*sig));
	struct dkim_ctx ctx;
	char why[128] = "";
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!c || !sig) {
		rc = -1;
		goto out;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.dns = dns;
	ctx.hdrs.h = m->hdr;
	ctx.hdrs.n = m->nhdr;
	ctx.body = m->body ? m->body : "";
	ctx.body_len = m->body_len;
	ctx.now = now;
	out->cv = ARC_FAIL;
	if (collect(&ctx.hdrs, c, why, sizeof(why))) {
		snprintf(out->reason, sizeof(out->reason), "%s", why);
		goto out;
	}
	out->instances = c->n;
	if (c->n == 0) {
		out->cv = ARC_NONE;
		goto out;
	}
	/* every seal parses; cv= none at 1, pass above (a fail anywhere ends it) */
	for (unsigned i = c->n; i >= 1; i--) {
		if (dkim_sig_parse(&m->hdr[c->idx[i][SET_AS]], DKIM_K_AS, sig, why, sizeof(why))) {
			snprintf(out->reason, sizeof(out->reason), "ARC-Seal i=%u: %s", i, why);
			goto out;
		}
		if (sig->inst != i) {
			snprintf(out->reason, sizeof(out->reason), "ARC-Seal i=%u: instance mismatch", i);
			goto out;
		}
		if (i <= 8)
			snprintf(out->domains[i - 1], sizeof(out->domains[0]), "%s", sig->d);
		const char *want = i == 1 ? "none" : "pass";
		if (strcasecmp(sig->cv, want) != 0) {
			snprintf(out->reason, sizeof(out->reason), "ARC-Seal i=%u has cv=%s", i, sig->cv);
			goto out;
		}
	}
	/* the newest AMS must verify */
	enum dkim_result r = ams_check(&ctx, c, c->n, sig, why, sizeof(why));
	if (r != DKIM_PASS) {
		out->temperror = r == DKIM_TEMPERROR;
		snprintf(out->reason, sizeof(out->reason), "ARC-Message-Signature i=%u: %s", c->n, why);
		goto out;
	}
	/* every seal, newest first */
	for (unsigned i = c->n; i >= 1; i--) {
		struct dkim_buf data = { 0 };
		if (dkim_sig_parse(&m->hdr[c->idx[i][SET_AS]], DKIM_K_AS, sig, why, sizeof(why)) ||
		    seal_data(&ctx.hdrs, c, i, sig, &data)) {
			dkim_buf_fini(&data);
			snprintf(out->reason, sizeof(out->reason), "ARC-Seal i=%u: cannot hash", i);
			goto out;
		}
		r = dkim_sig_verify_data(&ctx, sig, data.p ? data.p : "", data.n, why, sizeof(why),
					 NULL);
		dkim_buf_fini(&data);
		if (r != DKIM_PASS) {
			out->temperror = r == DKIM_TEMPERROR;
			snprintf(out->reason, sizeof(out->reason), "ARC-Seal i=%u: %s", i, why);
			goto out;
		}
	}
	out->cv = ARC_PASS;
	out->oldest_pass = c->n;
	for (unsigned i = c->n - 1; i >= 1; i--) {
		if (ams_check(&ctx, c, i, sig, why, sizeof(why)) != DKIM_PASS)
			break;
		out->oldest_pass = i;
	}
out:
	free(c);
	free(sig);
	return rc;
}

/* ---- sealing ---- */

static int field(struct msg_hdr *h, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	h->raw = malloc(nl + vl + 5);
	if (!h->raw)
		return -1;
	memcpy(h->raw, name, nl);
	memcpy(h->raw + nl, ": ", 2);
	memcpy(h->raw + nl + 2, value, vl);
	memcpy(h->raw + nl + 2 + vl, "\r\n", 3);
	h->len = nl + vl + 4;
	h->name_len = nl;
	return 0;
}

int arc_seal(const struct dkim_signer *s, const struct msg *m, const char *authserv_id,
	     const char *auth_results, enum arc_cv cv_in, time_t now, char **aar, char **ams,
	     char **as)
{
	struct arc_chain *c = malloc(sizeof(*c));
	struct msg_hdr *hv = calloc(m->nhdr + 2, sizeof(*hv));
	struct dkim_sig *sig = malloc(sizeof(*sig));
	struct dkim_buf head = { 0 };
	struct msg_hdr new_aar = { 0 }, new_ams = { 0 };
	char why[128], *pre = NULL, *suf = NULL;
	int rc = -1;

	*aar = *ams = *as = NULL;
	if (!c || !hv || !sig || !authserv_id || !*authserv_id)
		goto out;
	struct dkim_hdrs orig = { m->hdr, m->nhdr };
	unsigned n = 0;
	int intact = collect(&orig, c, why, sizeof(why)) == 0;
	if (intact) {
		n = c->n;
	} else {
		/* a broken chain is sealed as failed above its highest seal */
		cv_in = ARC_FAIL;
		for (size_t i = 0; i < m->nhdr; i++)
			if (dkim_hdr_named(&m->hdr[i], "ARC-Seal", 8)) {
				long k = sig_instance(&m->hdr[i]);
				if (k > (long)n && k <= ARC_MAX_INSTANCE)
					n = (unsigned)k;
			}
	}
	if (n >= ARC_MAX_INSTANCE)
		goto out;
	if (n == 0)
		cv_in = ARC_NONE;
	else if (cv_in == ARC_NONE)
		cv_in = ARC_FAIL;
	if (n > 0 && intact &&
	    dkim_sig_parse(&m->hdr[c->idx[n][SET_AS]], DKIM_K_AS, sig, why, sizeof(why)) == 0 &&
	    strcasecmp(sig->cv, "fail") == 0)
		goto out;
	unsigned inst = n + 1;
	const char *alg = s->alg == DKIM_A_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";

	/* ARC-Authentication-Results */
	size_t al = strlen(authserv_id) + (auth_results ? strlen(auth_results) : 0) + 32;
	*aar = malloc(al);
	if (!*aar)
		goto out;
	snprintf(*aar, al, "i=%u; %s; %s", inst, authserv_id,
		 auth_results && *auth_results ? auth_results : "none");
	if (field(&new_aar, set_names[SET_AAR], *aar))
		goto out;

	/* ARC-Message-Signature over the message with the new AAR on top */
	hv[0] = new_aar;
	memcpy(hv + 1, m->hdr, m->nhdr * sizeof(*hv));
	struct dkim_hdrs with_aar = { hv, m->nhdr + 1 };
	unsigned char bh[32];
	char bh64[64];
	if (dkim_body_sha256(m->body ? m->body : "", m->body_len, s->bc, -1, bh) != 0)
		goto out;
	EVP_EncodeBlock((unsigned char *)bh64, bh, 32);
	size_t pl = strlen(s->headers) + strlen(s->domain) + strlen(s->selector) + 256;
	pre = malloc(pl);
	suf = malloc(pl);
	if (!pre || !suf)
		goto out;
	snprintf(pre, pl, "a=%s; b=", alg);
	snprintf(suf, pl, "; bh=%s; c=%s/%s; d=%s; h=%s; i=%u; s=%s; t=%lld", bh64,
		 s->hc == DKIM_C_RELAXED ? "relaxed" : "simple",
		 s->bc == DKIM_C_RELAXED ? "relaxed" : "simple", s->domain, s->headers, inst,
		 s->selector, (long long)now);
	if (dkim_sign_headers(s, &with_aar, &head) ||
	    dkim_sign_value(s, set_names[SET_AMS], head.p ? head.p : "", head.n, pre, suf, ams))
		goto out;
	if (field(&new_ams, set_names[SET_AMS], *ams))
		goto out;

	/* ARC-Seal over every set, relaxed */
	struct dkim_signer rs = *s;
	rs.hc = DKIM_C_RELAXED;
	head.n = 0;
	for (unsigned i = 1; i <= n && intact && cv_in != ARC_FAIL; i++)
		for (int t = 0; t < 3; t++) {
			const struct msg_hdr *h = &m->hdr[c->idx[i][t]];
			if (dkim_canon_header(&head, h->raw, h->len, DKIM_C_RELAXED, 0, 0, 0))
				goto out;
		}
	if (dkim_canon_header(&head, new_aar.raw, new_aar.len, DKIM_C_RELAXED, 0, 0, 0) ||
	    dkim_canon_header(&head, new_ams.raw, new_ams.len, DKIM_C_RELAXED, 0, 0, 0))
		goto out;
	snprintf(suf, pl, "; cv=%s; d=%s; i=%u; s=%s; t=%lld", arc_cv_str(cv_in), s->domain, inst,
		 s->selector, (long long)now);
	if (dkim_sign_value(&rs, set_names[SET_AS], head.p, head.n, pre, suf, as))
		goto out;
	rc = 0;
out:
	if (rc) {
		free(*aar);
		free(*ams);
		free(*as);
		*aar = *ams = *as = NULL;
	}
	free(new_aar.raw);
	free(new_ams.raw);
	dkim_buf_fini(&head);
	free(pre);
	free(suf);
	free(hv);
	free(sig);
	free(c);
	return rc;
}
