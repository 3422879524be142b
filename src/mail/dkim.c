/*
 * dkim: parsing DKIM-Signature (and ARC-Message-Signature / ARC-Seal)
 * fields, checking them, and signing. See dkim.h for the contract.
 *
 * Why the checks are in this order (RFC 6376 6.1): the signature's own
 * syntax first (permerror, no DNS asked), then RFC 8301 policy (rsa-sha1)
 * and the clock (x=, t=), then the key (temperror/permerror), then the body
 * hash, and last the RSA or Ed25519 operation, the dearest step.
 */
#include "mail/dkim_int.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/pem.h>

static void set_why(char *why, size_t wl, const char *s)
{
	if (why && wl)
		snprintf(why, wl, "%s", s);
}

const char *dkim_result_str(enum dkim_result r)
{
	switch (r) {
	case DKIM_PASS: return "pass";
	case DKIM_FAIL: return "fail";
	case DKIM_NEUTRAL: return "neutral";
	case DKIM_POLICY: return "policy";
	case DKIM_TEMPERROR: return "temperror";
	case DKIM_PERMERROR: return "permerror";
	case DKIM_NONE: break;
	}
	return "none";
}

static int is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Split a colon list into names (FWS around each trimmed). -1 on an empty
 * name or more than max. */
static int split_names(const char *p, size_t n, struct dkim_hname *out, size_t max, size_t *cnt)
{
	size_t i = 0, k = 0;
	while (i <= n) {
		size_t s = i;
		while (i < n && p[i] != ':')
			i++;
		size_t e = i;
		while (s < e && is_fws(p[s]))
			s++;
		while (e > s && is_fws(p[e - 1]))
			e--;
		if (e == s || k == max)
			return -1;
		for (size_t j = s; j < e; j++)
			if ((unsigned char)p[j] <= ' ' || p[j] == 127)
				return -1;
		out[k].p = p + s;
		out[k].n = e - s;
		k++;
		i++;
	}
	*cnt = k;
	return 0;
}

static int copy_val(const struct dkim_tag *t, char *dst, size_t cap)
{
	if (!t || t->vlen == 0 || t->vlen >= cap)
		return -1;
	for (size_t i = 0; i < t->vlen; i++)
		if ((unsigned char)t->val[i] <= ' ')
			return -1;
	memcpy(dst, t->val, t->vlen);
	dst[t->vlen] = '\0';
	return 0;
}

/* 1 when the domain of identity i (after '@') is d or a subdomain of it. */
static int i_within_d(const char *i, const char *d, int strict)
{
	const char *at = strrchr(i, '@');
	if (!at)
		return 0;
	const char *dom = at + 1;
	size_t dl = strlen(dom), l = strlen(d);
	if (dl == l)
		return strcasecmp(dom, d) == 0;
	if (strict || dl < l + 1)
		return 0;
	return dom[dl - l - 1] == '.' && strcasecmp(dom + dl - l, d) == 0;
}

int dkim_sig_parse(const struct msg_hdr *f, enum dkim_kind kind, struct dkim_sig *sig,
		   char *why, size_t wl)
{
	struct dkim_tags tags;
	const struct dkim_tag *t;
	char tmp[2048];

	memset(sig, 0, sizeof(*sig));
	sig->kind = kind;
	sig->field = f;
	sig->l = sig->t = sig->x = -1;
	if (f->len < f->name_len + 3) {
		set_why(why, wl, "empty signature field");
		return -1;
	}
	const char *v = f->raw + f->name_len + 1;
	size_t vlen = f->len - f->name_len - 1;
	if (vlen >= 2 && v[vlen - 2] == '\r' && v[vlen - 1] == '\n')
		vlen -= 2;
	if (dkim_tags_parse(v, vlen, &tags) != 0) {
		set_why(why, wl, "tag list syntax error");
		return -1;
	}
	/* what the report shows, filled first so a permerror still says it */
	copy_val(dkim_tags_get(&tags, "d"), sig->d, sizeof(sig->d));
	copy_val(dkim_tags_get(&tags, "s"), sig->s, sizeof(sig->s));
	copy_val(dkim_tags_get(&tags, "a"), sig->a, sizeof(sig->a));
	t = dkim_tags_get(&tags, "b");
	if (t && dkim_tag_copy_nows(t, tmp, sizeof(tmp)) == 0)
		snprintf(sig->b_prefix, sizeof(sig->b_prefix), "%.8s", tmp);

	if (kind == DKIM_K_SIG && !dkim_tag_eq(dkim_tags_get(&tags, "v"), "1")) {
		set_why(why, wl, "v= missing or not 1");
		return -1;
	}
	if (kind != DKIM_K_SIG) {
		long long inst;
		if (dkim_tag_num(dkim_tags_get(&tags, "i"), &inst) || inst < 1 || inst > 50) {
			set_why(why, wl, "i= missing or not an instance 1..50");
			return -1;
		}
		sig->inst = (unsigned)inst;
	}
	t = dkim_tags_get(&tags, "a");
	if (dkim_tag_eq(t, "rsa-sha256")) {
		sig->alg = DKIM_A_RSA_SHA256;
	} else if (dkim_tag_eq(t, "rsa-sha1")) {
		sig->alg = DKIM_A_RSA_SHA1;
	} else if (dkim_tag_eq(t, "ed25519-sha256")) {
		sig->alg = DKIM_A_ED25519_SHA256;
	} else {
		set_why(why, wl, t ? "unknown algorithm a=" : "a= missing");
		return -1;
	}
	for (char *p = sig->a; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	t = dkim_tags_get(&tags, "b");
	if (!t || t->vlen == 0 || dkim_b64_decode(t->val, t->vlen, sig->b, sizeof(sig->b), &sig->blen) ||
	    sig->blen == 0) {
		set_why(why, wl, "b= missing or not base64");
		return -1;
	}
	/* the b= value is cut from just after '=' to the end of the value */
	const char *eq = t->name + t->nlen;
	while (eq < t->val && *eq != '=')
		eq++;
	sig->cut_from = (size_t)(eq + 1 - f->raw);
	sig->cut_to = (size_t)(t->val + t->vlen - f->raw);
	if (!sig->d[0] || !sig->s[0]) {
		set_why(why, wl, "d= or s= missing or malformed");
		return -1;
	}
	if (kind != DKIM_K_AS) {
		t = dkim_tags_get(&tags, "bh");
		if (!t || dkim_b64_decode(t->val, t->vlen, sig->bh, sizeof(sig->bh), &sig->bhlen) ||
		    sig->bhlen == 0) {
			set_why(why, wl, "bh= missing or not base64");
			return -1;
		}
		t = dkim_tags_get(&tags, "h");
		if (!t || split_names(t->val, t->vlen, sig->h, DKIM_MAX_H, &sig->nh)) {
			set_why(why, wl, "h= missing or malformed");
			return -1;
		}
		sig->hc = sig->bc = DKIM_C_SIMPLE;
		t = dkim_tags_get(&tags, "c");
		if (t) {
			const char *slash = memchr(t->val, '/', t->vlen);
			size_t hl = slash ? (size_t)(slash - t->val) : t->vlen;
			struct dkim_tag hc = { t->name, t->nlen, t->val, hl };
			struct dkim_tag bc = { t->name, t->nlen, slash ? slash + 1 : "", slash ? t->vlen - hl - 1 : 0 };
			if (dkim_tag_eq(&hc, "relaxed"))
				sig->hc = DKIM_C_RELAXED;
			else if (!dkim_tag_eq(&hc, "simple"))
				goto bad_c;
			if (dkim_tag_eq(&bc, "relaxed"))
				sig->bc = DKIM_C_RELAXED;
			else if (slash && !dkim_tag_eq(&bc, "simple"))
				goto bad_c;
		}
		t = dkim_tags_get(&tags, "l");
		if (t && dkim_tag_num(t, &sig->l)) {
			set_why(why, wl, "l= is not a number");
			return -1;
		}
	} else {
		if (dkim_tags_get(&tags, "h")) {
			set_why(why, wl, "ARC-Seal carries h=");
			return -1;
		}
		sig->hc = DKIM_C_RELAXED;
		if (copy_val(dkim_tags_get(&tags, "cv"), sig->cv, sizeof(sig->cv)) ||
		    (strcasecmp(sig->cv, "none") && strcasecmp(sig->cv, "pass") &&
		     strcasecmp(sig->cv, "fail"))) {
			set_why(why, wl, "cv= missing or unknown");
			return -1;
		}
	}
	t = dkim_tags_get(&tags, "t");
	if (t && dkim_tag_num(t, &sig->t)) {
		set_why(why, wl, "t= is not a number");
		return -1;
	}
	t = dkim_tags_get(&tags, "x");
	if (t && dkim_tag_num(t, &sig->x)) {
		set_why(why, wl, "x= is not a number");
		return -1;
	}
	if (kind == DKIM_K_SIG) {
		if (sig->t >= 0 && sig->x >= 0 && sig->x < sig->t) {
			set_why(why, wl, "x= is before t=");
			return -1;
		}
		int from = 0;
		for (size_t k = 0; k < sig->nh; k++)
			if (sig->h[k].n == 4 && strncasecmp(sig->h[k].p, "from", 4) == 0)
				from = 1;
		if (!from) {
			set_why(why, wl, "h= does not cover From");
			return -1;
		}
		t = dkim_tags_get(&tags, "i");
		if (t) {
			if (copy_val(t, sig->i, sizeof(sig->i)) || !i_within_d(sig->i, sig->d, 0)) {
				set_why(why, wl, "i= is not within d=");
				return -1;
			}
		} else {
			snprintf(sig->i, sizeof(sig->i), "@%.250s", sig->d);
		}
	}
	return 0;
bad_c:
	set_why(why, wl, "unknown canonicalization c=");
	return -1;
}

/* Canonicalize the fields named in names over hdrs, each name taking the
 * next instance from the bottom (RFC 6376 5.4.2); a name with no instance
 * left adds nothing. */
static int select_headers(const struct dkim_hdrs *hdrs, const struct dkim_hname *names, size_t nn,
			  enum dkim_canon c, struct dkim_buf *out)
{
	for (size_t k = 0; k < nn; k++) {
		size_t seen = 0;
		for (size_t j = 0; j < k; j++)
			if (names[j].n == names[k].n && strncasecmp(names[j].p, names[k].p, names[k].n) == 0)
				seen++;
		for (size_t i = hdrs->n; i-- > 0;) {
			if (!dkim_hdr_named(&hdrs->h[i], names[k].p, names[k].n))
				continue;
			if (seen--)
				continue;
			if (dkim_canon_header(out, hdrs->h[i].raw, hdrs->h[i].len, c, 0, 0, 0))
				return -1;
			break;
		}
	}
	return 0;
}

int dkim_sig_header_data(const struct dkim_hdrs *hdrs, const struct dkim_sig *sig,
			 struct dkim_buf *out)
{
	if (select_headers(hdrs, sig->h, sig->nh, sig->hc, out))
		return -1;
	return dkim_canon_header(out, sig->field->raw, sig->field->len, sig->hc, sig->cut_from,
				 sig->cut_to, 1);
}

/* Fetch and vet the key for sig. 0 or a dkim_result. */
static int sig_key(struct dkim_ctx *ctx, const struct dkim_sig *sig, struct dkim_key *key,
		   char *why, size_t wl)
{
	int rc = dkim_key_fetch(ctx->dns, sig->s, sig->d, key, why, wl);
	if (rc)
		return rc;
	int want = sig->alg == DKIM_A_ED25519_SHA256 ? EVP_PKEY_ED25519 : EVP_PKEY_RSA;
	if (key->type != want) {
		set_why(why, wl, "key type does not match a=");
		rc = DKIM_PERMERROR;
	} else if (sig->alg == DKIM_A_RSA_SHA1 ? !key->sha1_ok : !key->sha256_ok) {
		set_why(why, wl, "key h= does not allow the hash");
		rc = DKIM_PERMERROR;
	} else if (!key->email_ok) {
		set_why(why, wl, "key s= is not for email");
		rc = DKIM_PERMERROR;
	} else if (key->type == EVP_PKEY_RSA && key->bits < 1024) {
		snprintf(why, wl, "RSA key of %u bits, under 1024 (RFC 8301)", key->bits);
		rc = DKIM_FAIL;
	} else if (sig->kind == DKIM_K_SIG && (key->flags & DKIM_KEY_STRICT) &&
		   !i_within_d(sig->i, sig->d, 1)) {
		set_why(why, wl, "key t=s forbids an i= subdomain");
		rc = DKIM_PERMERROR;
	}
	if (rc)
		dkim_key_fini(key);
	return rc;
}

static enum dkim_result verify_with_key(const struct dkim_sig *sig, const struct dkim_key *key,
					const char *data, size_t len, char *why, size_t wl)
{
	unsigned char dg[64];
	size_t dl = 0;
	if (dkim_digest(sig->alg, data, len, dg, &dl))
		return DKIM_TEMPERROR;
	if (!dkim_crypto_verify(sig->alg, key->pk, dg, dl, sig->b, sig->blen)) {
		set_why(why, wl, "signature did not verify");
		return DKIM_FAIL;
	}
	return DKIM_PASS;
}

enum dkim_result dkim_sig_verify_data(struct dkim_ctx *ctx, const struct dkim_sig *sig,
				      const char *data, size_t len, char *why, size_t wl,
				      unsigned *bits)
{
	struct dkim_key key;
	if (sig->alg == DKIM_A_RSA_SHA1) {
		set_why(why, wl, "rsa-sha1 is not accepted (RFC 8301)");
		return DKIM_FAIL;
	}
	int rc = sig_key(ctx, sig, &key, why, wl);
	if (rc)
		return (enum dkim_result)rc;
	if (bits)
		*bits = key.bits;
	enum dkim_result r = verify_with_key(sig, &key, data, len, why, wl);
	dkim_key_fini(&key);
	return r;
}

/* The body hash for (c, l), computed once per message. */
static int body_hash(struct dkim_ctx *ctx, enum dkim_canon c, long long l, unsigned char out[32])
{
	for (size_t k = 0; k < ctx->nbh; k++)
		if (ctx->bh[k].c == c && ctx->bh[k].l == l) {
			memcpy(out, ctx->bh[k].h, 32);
			return ctx->bh[k].rc;
		}
	int rc = dkim_body_sha256(ctx->body, ctx->body_len, c, l, out);
	if (rc >= 0 && ctx->nbh < DKIM_BH_CACHE) {
		ctx->bh[ctx->nbh].c = c;
		ctx->bh[ctx->nbh].l = l;
		ctx->bh[ctx->nbh].rc = rc;
		memcpy(ctx->bh[ctx->nbh].h, out, 32);
		ctx->nbh++;
	}
	return rc;
}

enum dkim_result dkim_sig_check(struct dkim_ctx *ctx, const struct dkim_sig *sig, char *why,
				size_t wl, unsigned *bits, unsigned *key_flags)
{
	struct dkim_key key;
	struct dkim_buf data = { 0 };
	unsigned char bh[32];
	enum dkim_result r;

	if (sig->alg == DKIM_A_RSA_SHA1) {
		set_why(why, wl, "rsa-sha1 is not accepted (RFC 8301)");
		return DKIM_FAIL;
	}
	if (sig->kind == DKIM_K_SIG) {
		if (sig->x >= 0 && (long long)ctx->now > sig->x) {
			set_why(why, wl, "signature expired (x=)");
			return DKIM_FAIL;
		}
		if (sig->t >= 0 && sig->t > (long long)ctx->now + DKIM_T_FUTURE_SLOP) {
			set_why(why, wl, "signature timestamp t= is in the future");
			return DKIM_FAIL;
		}
	}
	int rc = sig_key(ctx, sig, &key, why, wl);
	if (rc)
		return (enum dkim_result)rc;
	if (bits)
		*bits = key.bits;
	if (key_flags)
		*key_flags = key.flags;
	if (key.flags & DKIM_KEY_TESTING)
		set_why(why, wl, "key in testing mode (t=y)");
	rc = body_hash(ctx, sig->bc, sig->l, bh);
	if (rc < 0) {
		r = DKIM_TEMPERROR;
		set_why(why, wl, "digest failure");
		goto out;
	}
	if (rc == 1) {
		r = DKIM_FAIL;
		set_why(why, wl, "l= is longer than the body");
		goto out;
	}
	if (sig->bhlen != 32 || memcmp(bh, sig->bh, 32) != 0) {
		r = DKIM_FAIL;
		set_why(why, wl, "body hash did not verify");
		goto out;
	}
	if (dkim_sig_header_data(&ctx->hdrs, sig, &data)) {
		r = DKIM_TEMPERROR;
		set_why(why, wl, "header data too large or no memory");
		goto out;
	}
	r = verify_with_key(sig, &key, data.p ? data.p : "", data.n, why, wl);
out:
	dkim_buf_fini(&data);
	dkim_key_fini(&key);
	return r;
}

int dkim_verify(struct mdns *dns, const struct msg *m, time_t now, struct dkim_verify_out *out)
{
	struct dkim_ctx ctx;
	struct dkim_sig *sig = malloc(sizeof(*sig));

	memset(out, 0, sizeof(*out));
	if (!sig)
		return -1;
	memset(&ctx, 0, sizeof(ctx));
	ctx.dns = dns;
	ctx.hdrs.h = m->hdr;
	ctx.hdrs.n = m->nhdr;
	ctx.body = m->body ? m->body : "";
	ctx.body_len = m->body_len;
	ctx.now = now;
	for (size_t i = 0; i < m->nhdr; i++) {
		if (!dkim_hdr_named(&m->hdr[i], "DKIM-Signature", 14))
			continue;
		if (out->n == DKIM_MAX_SIGS) {
			out->ignored++;
			continue;
		}
		struct dkim_sig_result *r = &out->sig[out->n++];
		unsigned kflags = 0;
		if (dkim_sig_parse(&m->hdr[i], DKIM_K_SIG, sig, r->reason, sizeof(r->reason))) {
			r->result = DKIM_PERMERROR;
		} else {
			r->result = dkim_sig_check(&ctx, sig, r->reason, sizeof(r->reason), &r->key_bits,
						   &kflags);
		}
		snprintf(r->d, sizeof(r->d), "%s", sig->d);
		snprintf(r->s, sizeof(r->s), "%s", sig->s);
		snprintf(r->a, sizeof(r->a), "%s", sig->a);
		snprintf(r->i, sizeof(r->i), "%s", sig->i);
		snprintf(r->b_prefix, sizeof(r->b_prefix), "%s", sig->b_prefix);
		r->testing = (kflags & DKIM_KEY_TESTING) != 0;
	}
	free(sig);
	return 0;
}

/* ---- signing ---- */

#define DKIM_DEFAULT_HEADERS                                                                  \
	"from:to:cc:subject:date:message-id:reply-to:in-reply-to:references:mime-version:"   \
	"content-type:content-transfer-encoding"

struct dkim_signer *dkim_signer_new(const char *domain, const char *selector, const char *pem_key,
				    size_t pem_len, const char *headers, char *err, size_t errlen)
{
	struct dkim_signer *s = calloc(1, sizeof(*s));
	BIO *bio = NULL;

	if (!s) {
		set_why(err, errlen, "no memory");
		return NULL;
	}
	if (!domain || !selector || !mdns_name_ok(domain) || strlen(domain) >= sizeof(s->domain) ||
	    strlen(selector) >= sizeof(s->selector) || !*selector) {
		set_why(err, errlen, "bad domain or selector");
		goto fail;
	}
	for (const char *p = selector; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_') {
			set_why(err, errlen, "bad selector");
			goto fail;
		}
	snprintf(s->domain, sizeof(s->domain), "%s", domain);
	snprintf(s->selector, sizeof(s->selector), "%s", selector);
	if (!headers)
		headers = DKIM_DEFAULT_HEADERS;
	size_t hl = strlen(headers);
	if (hl == 0 || hl >= sizeof(s->headers)) {
		set_why(err, errlen, "header list empty or too long");
		goto fail;
	}
	for (size_t i = 0; i < hl; i++) {
		char c = headers[i];
		if (c <= ' ' || c == ';' || (unsigned char)c >= 127 ||
		    (c == ':' && (i == 0 || i + 1 == hl || headers[i + 1] == ':'))) {
			set_why(err, errlen, "bad header list");
			goto fail;
		}
		s->headers[i] = (char)tolower((unsigned char)c);
	}
	if (pem_len > INT32_MAX || !(bio = BIO_new_mem_buf(pem_key, (int)pem_len)) ||
	    !(s->pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL))) {
		set_why(err, errlen, "private key is not a PEM key");
		goto fail;
	}
	int id = EVP_PKEY_get_base_id(s->pk);
	if (id == EVP_PKEY_ED25519) {
		s->alg = DKIM_A_ED25519_SHA256;
	} else if (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(s->pk) >= 1024) {
		s->alg = DKIM_A_RSA_SHA256;
	} else {
		set_why(err, errlen, "key is neither RSA of 1024 bits or more nor Ed25519");
		goto fail;
	}
	s->hc = s->bc = DKIM_C_RELAXED;
	BIO_free(bio);
	return s;
fail:
	BIO_free(bio);
	dkim_signer_free(s);
	return NULL;
}

int dkim_signer_set_canon(struct dkim_signer *s, const char *c)
{
	static const struct {
		const char *name;
		enum dkim_canon h, b;
	} tab[] = {
		{ "relaxed/relaxed", DKIM_C_RELAXED, DKIM_C_RELAXED },
		{ "relaxed/simple", DKIM_C_RELAXED, DKIM_C_SIMPLE },
		{ "simple/relaxed", DKIM_C_SIMPLE, DKIM_C_RELAXED },
		{ "simple/simple", DKIM_C_SIMPLE, DKIM_C_SIMPLE },
		{ "relaxed", DKIM_C_RELAXED, DKIM_C_SIMPLE },
		{ "simple", DKIM_C_SIMPLE, DKIM_C_SIMPLE },
	};
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcmp(c, tab[i].name) == 0) {
			s->hc = tab[i].h;
			s->bc = tab[i].b;
			return 0;
		}
	return -1;
}

void dkim_signer_free(struct dkim_signer *s)
{
	if (!s)
		return;
	EVP_PKEY_free(s->pk);
	free(s);
}

int dkim_sign_value(const struct dkim_signer *s, const char *name, const char *head,
		    size_t head_len, const char *prefix, const char *suffix, char **value)
{
	struct dkim_buf f = { 0 }, data = { 0 }, v = { 0 };
	unsigned char dg[32], *sig = NULL;
	size_t dl = 0, sl = 0;
	char *b64 = NULL;
	int rc = -1;

	*value = NULL;
	if (dkim_buf_str(&f, name) || dkim_buf_str(&f, ": ") || dkim_buf_str(&f, prefix) ||
	    dkim_buf_str(&f, suffix) || dkim_buf_add(&f, "\r\n", 2))
		goto out;
	if (dkim_buf_add(&data, head, head_len) ||
	    dkim_canon_header(&data, f.p, f.n, s->hc, 0, 0, 1))
		goto out;
	if (dkim_digest(DKIM_A_RSA_SHA256, data.p, data.n, dg, &dl) ||
	    dkim_crypto_sign(s->pk, dg, dl, &sig, &sl))
		goto out;
	b64 = malloc(4 * ((sl + 2) / 3) + 1);
	if (!b64)
		goto out;
	EVP_EncodeBlock((unsigned char *)b64, sig, (int)sl);
	if (dkim_buf_str(&v, prefix) || dkim_buf_str(&v, b64) || dkim_buf_str(&v, suffix))
		goto out;
	*value = v.p;
	v.p = NULL;
	rc = 0;
out:
	dkim_buf_fini(&f);
	dkim_buf_fini(&data);
	dkim_buf_fini(&v);
	free(sig);
	free(b64);
	return rc;
}

/* Split the signer's header list into names. */
static int signer_names(const struct dkim_signer *s, struct dkim_hname *names, size_t *nn)
{
	return split_names(s->headers, strlen(s->headers), names, DKIM_MAX_H, nn);
}

int dkim_sign_headers(const struct dkim_signer *s, const struct dkim_hdrs *hdrs,
		      struct dkim_buf *out)
{
	struct dkim_hname names[DKIM_MAX_H];
	size_t nn = 0;
	if (signer_names(s, names, &nn))
		return -1;
	return select_headers(hdrs, names, nn, s->hc, out);
}

int dkim_sign(const struct dkim_signer *s, const struct msg *m, time_t now, char **header_value)
{
	struct dkim_hdrs hdrs = { m->hdr, m->nhdr };
	struct dkim_buf head = { 0 };
	unsigned char bh[32];
	char bh64[64], prefix[2048];
	int rc = -1;

	*header_value = NULL;
	if (dkim_body_sha256(m->body ? m->body : "", m->body_len, s->bc, -1, bh) != 0)
		return -1;
	EVP_EncodeBlock((unsigned char *)bh64, bh, 32);
	int n = snprintf(prefix, sizeof(prefix),
			 "v=1; a=%s; c=%s/%s; d=%s; s=%s; t=%lld; h=%s; bh=%s; b=",
			 s->alg == DKIM_A_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256",
			 s->hc == DKIM_C_RELAXED ? "relaxed" : "simple",
			 s->bc == DKIM_C_RELAXED ? "relaxed" : "simple", s->domain, s->selector,
			 (long long)now, s->headers, bh64);
	if (n < 0 || (size_t)n >= sizeof(prefix))
		return -1;
	if (dkim_sign_headers(s, &hdrs, &head))
		goto out;
	rc = dkim_sign_value(s, "DKIM-Signature", head.p ? head.p : "", head.n, prefix, "",
			     header_value);
out:
	dkim_buf_fini(&head);
	return rc;
}
