/*
 * Unit tests for the DKIM engine (src/mail/dkim*.c): the tag-list parser,
 * canonicalization (checked against the canonical text itself), key
 * records, and verification of messages signed here with keys made here by
 * OpenSSL: RSA 1024, 2048, 3072 and 8192 bits, Ed25519, and the failures
 * RFC 6376 and RFC 8301 ask for (rsa-sha1, RSA under 1024 bits, x=, t=,
 * l=, h= instance selection, i= outside d=, t=s, revoked keys, DNS
 * failures), more than DKIM_MAX_SIGS signatures, and the key cache used
 * from several threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "mail/dkim.h"
#include "mail/dkim_int.h"
#include "mail/mdns.h"
#include "mail/msg.h"

#define NOW 1700000000

static const char base_msg[] =
	"From: Joe <joe@example.com>\r\n"
	"To: Suzie <suzie@example.net>\r\n"
	"Subject: Is dinner ready?\r\n"
	"Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n"
	"Message-ID: <1@example.com>\r\n"
	"\r\n"
	"Hi.\r\n"
	"\r\n"
	"We lost the game.  Are you hungry yet?\r\n"
	"\r\n"
	"Joe.\r\n";

/* ---- keys made here ---- */

#include "mail_keys_test.h"

static struct tkey rsa1024, rsa2048, ed;

static int group_setup(void **state)
{
	(void)state;
	tkey_make(&rsa1024, EVP_PKEY_RSA, 1024);
	tkey_make(&rsa2048, EVP_PKEY_RSA, 2048);
	tkey_make(&ed, EVP_PKEY_ED25519, 0);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	tkey_free(&rsa1024);
	tkey_free(&rsa2048);
	tkey_free(&ed);
	dkim_key_cache_clear();
	return 0;
}

static struct msg *parse(const char *text)
{
	int err = 0;
	struct msg *m = msg_parse(text, strlen(text), &err, NULL);
	assert_non_null(m);
	return m;
}

static void add_sig(struct msg *m, const char *v)
{
	char *val = malloc(strlen(v) + 2);
	val[0] = ' ';
	memcpy(val + 1, v, strlen(v) + 1);
	assert_int_equal(msg_prepend_header(m, "DKIM-Signature", val), 0);
	free(val);
}

/* Sign with the public API and put the field on top. */
static void sign_msg(struct msg *m, const struct tkey *k, const char *canon, const char *hdrs)
{
	char err[128];
	struct dkim_signer *s = dkim_signer_new("example.com", "sel", k->pem, k->pem_len, hdrs, err,
						sizeof(err));
	assert_non_null(s);
	if (canon)
		assert_int_equal(dkim_signer_set_canon(s, canon), 0);
	char *v = NULL;
	assert_int_equal(dkim_sign(s, m, NOW, &v), 0);
	add_sig(m, v);
	free(v);
	dkim_signer_free(s);
}

/* Sign with extra tags (l=, x=, t=, i=, a=) through the internals, and
 * key material of any size (the public signer refuses RSA under 1024). */
static void sign_custom(struct msg *m, EVP_PKEY *pk, const char *dom, const char *a,
			long long l, const char *extra, const char *hdrs)
{
	struct dkim_signer s;
	memset(&s, 0, sizeof(s));
	snprintf(s.domain, sizeof(s.domain), "%s", dom);
	snprintf(s.selector, sizeof(s.selector), "sel");
	snprintf(s.headers, sizeof(s.headers), "%s", hdrs ? hdrs : "from:to:subject");
	s.pk = pk;
	s.hc = s.bc = DKIM_C_RELAXED;
	unsigned char bh[32];
	char bh64[64], pre[2048], lt[32] = "";
	assert_true(dkim_body_sha256(m->body, m->body_len, DKIM_C_RELAXED, l, bh) >= 0);
	EVP_EncodeBlock((unsigned char *)bh64, bh, 32);
	if (l >= 0)
		snprintf(lt, sizeof(lt), " l=%lld;", l);
	snprintf(pre, sizeof(pre), "v=1; a=%s; c=relaxed/relaxed; d=%s; s=sel; h=%s;%s %s bh=%s; b=",
		 a, dom, s.headers, lt, extra ? extra : "", bh64);
	struct dkim_hdrs hh = { m->hdr, m->nhdr };
	struct dkim_buf head = { 0 };
	assert_int_equal(dkim_sign_headers(&s, &hh, &head), 0);
	char *v = NULL;
	assert_int_equal(dkim_sign_value(&s, "DKIM-Signature", head.p ? head.p : "", head.n, pre, "",
					 &v), 0);
	add_sig(m, v);
	free(v);
	dkim_buf_fini(&head);
}

static struct mdns *zone_with(const char *name, const char *rec)
{
	struct mdns *z = mdns_zone_new();
	assert_non_null(z);
	if (rec)
		assert_int_equal(mdns_zone_add_txt(z, name, rec, strlen(rec)), 0);
	return z;
}

static enum dkim_result verify1(struct mdns *z, const struct msg *m, char *reason, size_t rl)
{
	struct dkim_verify_out out;
	assert_int_equal(dkim_verify(z, m, NOW, &out), 0);
	assert_true(out.n >= 1);
	if (reason)
		snprintf(reason, rl, "%s", out.sig[0].reason);
	return out.sig[0].result;
}

/* ---- tag lists ---- */

static void t_tags(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int ok;
		size_t n;
	} cases[] = {
		{ "v=1; a=rsa-sha256", 1, 2 },
		{ "v=1; a=rsa-sha256;", 1, 2 },
		{ " v = 1 ;\r\n\ta=x ; ", 1, 2 },
		{ "", 1, 0 },
		{ "x", 0, 0 },
		{ "v=1; v=2", 0, 0 },
		{ "=1", 0, 0 },
		{ "1a=b", 0, 0 },
		{ "a=; b=", 1, 2 },
		{ "a=b;;c=d", 0, 0 },
		{ "v=DKIM1: g=*; k=rsa", 1, 2 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dkim_tags t;
		int rc = dkim_tags_parse(cases[i].in, strlen(cases[i].in), &t);
		if ((rc == 0) != cases[i].ok)
			fail_msg("tags '%s': rc %d", cases[i].in, rc);
		if (rc == 0 && t.n != cases[i].n)
			fail_msg("tags '%s': n %zu", cases[i].in, t.n);
	}
	struct dkim_tags t;
	const char *s = "b= ab cd\r\n ef ;bh=x";
	assert_int_equal(dkim_tags_parse(s, strlen(s), &t), 0);
	const struct dkim_tag *b = dkim_tags_get(&t, "b");
	assert_non_null(b);
	assert_int_equal(b->vlen, strlen("ab cd\r\n ef"));
}

/* ---- canonicalization ---- */

static void t_body_canon(void **state)
{
	(void)state;
	static const struct {
		const char *body;
		enum dkim_canon c;
		long long l;
		const char *canon; /* the canonical text hashed */
		int rc;
	} cases[] = {
		{ "", DKIM_C_SIMPLE, -1, "\r\n", 0 },
		{ "", DKIM_C_RELAXED, -1, "", 0 },
		{ "\r\n\r\n", DKIM_C_SIMPLE, -1, "\r\n", 0 },
		{ "\r\n\r\n", DKIM_C_RELAXED, -1, "", 0 },
		{ "a \t b  \r\n\r\n\r\n", DKIM_C_RELAXED, -1, "a b\r\n", 0 },
		{ "a \t b  \r\n\r\n\r\n", DKIM_C_SIMPLE, -1, "a \t b  \r\n", 0 },
		{ " C \r\nD \t E\r\n\r\n\r\n", DKIM_C_RELAXED, -1, " C\r\nD E\r\n", 0 },
		{ "x\r\n \r\n\t\r\ny", DKIM_C_RELAXED, -1, "x\r\n\r\n\r\ny\r\n", 0 },
		{ "x\r\n \r\n", DKIM_C_SIMPLE, -1, "x\r\n \r\n", 0 },
		{ "no end", DKIM_C_SIMPLE, -1, "no end\r\n", 0 },
		{ "hello world\r\n", DKIM_C_SIMPLE, 5, "hello", 0 },
		{ "hi\r\n", DKIM_C_SIMPLE, 100, "hi\r\n", 1 },
		{ "a\rb\r\n", DKIM_C_RELAXED, -1, "a\rb\r\n", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned char got[32], want[32];
		unsigned int wl = 0;
		int rc = dkim_body_sha256(cases[i].body, strlen(cases[i].body), cases[i].c, cases[i].l,
					  got);
		EVP_Digest(cases[i].canon, strlen(cases[i].canon), want, &wl, EVP_sha256(), NULL);
		if (rc != cases[i].rc || memcmp(got, want, 32) != 0)
			fail_msg("body case %zu: rc %d", i, rc);
	}
}

static void t_header_canon(void **state)
{
	(void)state;
	static const struct {
		const char *raw;
		enum dkim_canon c;
		const char *want;
	} cases[] = {
		{ "Subject: Hi\r\n", DKIM_C_SIMPLE, "Subject: Hi\r\n" },
		{ "SubJect : Hi  there \r\n\tyou \r\n", DKIM_C_RELAXED, "subject:Hi there you\r\n" },
		{ "X:\r\n", DKIM_C_RELAXED, "x:\r\n" },
		{ "A:   \t b\r\n", DKIM_C_RELAXED, "a:b\r\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dkim_buf b = { 0 };
		assert_int_equal(dkim_canon_header(&b, cases[i].raw, strlen(cases[i].raw), cases[i].c,
						   0, 0, 0), 0);
		if (strcmp(b.p, cases[i].want) != 0)
			fail_msg("header case %zu: '%s'", i, b.p);
		dkim_buf_fini(&b);
	}
}

/* ---- key records ---- */

static void t_key_records(void **state)
{
	(void)state;
	char ok_rec[4200];
	snprintf(ok_rec, sizeof(ok_rec), "%s", rsa1024.rec);
	const char *p = strstr(rsa1024.rec, "p=");
	char buf[4200];
	static const struct {
		const char *fmt; /* %s = the p= value */
		int rc;
	} cases[] = {
		{ "v=DKIM1; k=rsa; %s", 0 },
		{ "%s", 0 },
		{ "v=DKIM1; h=sha256; s=email; t=y:s; %s", 0 },
		{ "v=DKIM1: k=rsa; %s", DKIM_PERMERROR },
		{ "k=rsa; v=DKIM1; %s", DKIM_PERMERROR },
		{ "v=DKIM1; k=ed25519-sha256; %s", DKIM_PERMERROR },
		{ "v=DKIM1; k=dsa; %s", DKIM_PERMERROR },
		{ "v=DKIM1; k=rsa", DKIM_PERMERROR },
		{ "v=DKIM1; k=rsa; p=", DKIM_FAIL },
		{ "v=DKIM1; k=rsa; p=MIGfMA0G!!", DKIM_PERMERROR },
		{ "v=DKIM1; k=rsa; p=AAAA", DKIM_PERMERROR },
		{ "v=DKIM1; k=ed25519; p=AAAA", DKIM_PERMERROR },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(buf, sizeof(buf), cases[i].fmt, p);
		struct dkim_key k;
		char why[96];
		int rc = dkim_key_parse(buf, strlen(buf), &k, why, sizeof(why));
		if (rc != cases[i].rc)
			fail_msg("key case %zu: rc %d (%s)", i, rc, why);
		if (rc == 0)
			assert_int_equal(k.bits, 1024);
		dkim_key_fini(&k);
	}
	struct dkim_key k;
	assert_int_equal(dkim_key_parse(ed.rec, strlen(ed.rec), &k, NULL, 0), 0);
	assert_int_equal(k.type, EVP_PKEY_ED25519);
	dkim_key_fini(&k);
}

/* ---- verification ---- */

static void roundtrip(const struct tkey *k, const char *canon)
{
	struct msg *m = parse(base_msg);
	struct mdns *z = zone_with("sel._domainkey.example.com", k->rec);
	char why[128];
	sign_msg(m, k, canon, NULL);
	struct dkim_verify_out out;
	assert_int_equal(dkim_verify(z, m, NOW, &out), 0);
	assert_int_equal(out.n, 1);
	if (out.sig[0].result != DKIM_PASS)
		fail_msg("%s: %s", canon ? canon : "default", out.sig[0].reason);
	assert_string_equal(out.sig[0].d, "example.com");
	assert_string_equal(out.sig[0].s, "sel");
	assert_string_equal(out.sig[0].i, "@example.com");
	assert_int_equal(strlen(out.sig[0].b_prefix), 8);
	/* a changed body fails, a changed signed header fails */
	msg_add_body(m, "more\r\n", 6);
	assert_int_equal(verify1(z, m, why, sizeof(why)), DKIM_FAIL);
	assert_non_null(strstr(why, "body hash"));
	msg_free(m);
	m = parse(base_msg);
	sign_msg(m, k, canon, NULL);
	m->hdr[3].raw[9] = 'X'; /* "Subject: Is" -> "Subject: Xs" */
	assert_int_equal(verify1(z, m, why, sizeof(why)), DKIM_FAIL);
	msg_free(m);
	mdns_free(z);
}

static void t_roundtrips(void **state)
{
	(void)state;
	static const char *const canons[] = { "simple/simple", "simple/relaxed", "relaxed/simple",
					      "relaxed/relaxed" };
	for (size_t i = 0; i < 4; i++) {
		roundtrip(&rsa1024, canons[i]);
		roundtrip(&ed, canons[i]);
	}
	roundtrip(&rsa2048, NULL);
}

static void t_big_keys(void **state)
{
	(void)state;
	static const int sizes[] = { 3072, 8192 };
	for (size_t i = 0; i < 2; i++) {
		struct tkey k;
		tkey_make(&k, EVP_PKEY_RSA, sizes[i]);
		struct msg *m = parse(base_msg);
		struct mdns *z = zone_with("sel._domainkey.example.com", k.rec);
		sign_msg(m, &k, NULL, NULL);
		struct dkim_verify_out out;
		assert_int_equal(dkim_verify(z, m, NOW, &out), 0);
		if (out.sig[0].result != DKIM_PASS)
			fail_msg("%d bits: %s", sizes[i], out.sig[0].reason);
		assert_int_equal(out.sig[0].key_bits, (unsigned)sizes[i]);
		msg_free(m);
		mdns_free(z);
		tkey_free(&k);
	}
}

static void t_short_rsa_and_sha1(void **state)
{
	(void)state;
	struct tkey k;
	char why[128];
	tkey_make(&k, EVP_PKEY_RSA, 512);
	struct msg *m = parse(base_msg);
	struct mdns *z = zone_with("sel._domainkey.example.com", k.rec);
	sign_custom(m, k.pk, "example.com", "rsa-sha256", -1, NULL, NULL);
	assert_int_equal(verify1(z, m, why, sizeof(why)), DKIM_FAIL);
	assert_non_null(strstr(why, "1024"));
	msg_free(m);
	mdns_free(z);
	tkey_free(&k);
	/* the public signer refuses a short key */
	char err[128];
	tkey_make(&k, EVP_PKEY_RSA, 512);
	assert_null(dkim_signer_new("example.com", "s", k.pem, k.pem_len, NULL, err, sizeof(err)));
	tkey_free(&k);

	m = parse(base_msg);
	z = zone_with("sel._domainkey.example.com", rsa1024.rec);
	add_sig(m, "v=1; a=rsa-sha1; c=relaxed/relaxed; d=example.com; s=sel; h=from; "
		   "bh=AAAA; b=AAAA");
	assert_int_equal(verify1(z, m, why, sizeof(why)), DKIM_FAIL);
	assert_non_null(strstr(why, "8301"));
	msg_free(m);
	mdns_free(z);
}

static void t_tags_semantics(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *extra; /* more tags */
		const char *dom;
		long long l;
		const char *add_body;
		enum dkim_result want;
	} cases[] = {
		{ "plain", NULL, "example.com", -1, NULL, DKIM_PASS },
		{ "x= future", "x=1700000100;", "example.com", -1, NULL, DKIM_PASS },
		{ "x= past", "x=1699999999;", "example.com", -1, NULL, DKIM_FAIL },
		{ "x before t", "t=1699999000; x=1699998000;", "example.com", -1, NULL, DKIM_PERMERROR },
		{ "t= slightly ahead", "t=1700000300;", "example.com", -1, NULL, DKIM_PASS },
		{ "t= far ahead", "t=1800000000;", "example.com", -1, NULL, DKIM_FAIL },
		{ "i= equal", "i=joe@example.com;", "example.com", -1, NULL, DKIM_PASS },
		{ "i= subdomain", "i=@mail.example.com;", "example.com", -1, NULL, DKIM_PASS },
		{ "i= outside", "i=@example.org;", "example.com", -1, NULL, DKIM_PERMERROR },
		{ "i= suffix only", "i=@badexample.com;", "example.com", -1, NULL, DKIM_PERMERROR },
		{ "l= appended", NULL, "example.com", 20, "appended\r\n", DKIM_PASS },
		{ "l= whole", NULL, "example.com", 0, NULL, DKIM_PASS },
		{ "l= beyond", NULL, "example.com", -2, NULL, DKIM_FAIL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct msg *m = parse(base_msg);
		struct mdns *z = zone_with("sel._domainkey.example.com", rsa1024.rec);
		long long l = cases[i].l;
		if (l == -2) {
			/* sign with l= past the end by hand: hash of the body, l bigger */
			sign_custom(m, rsa1024.pk, cases[i].dom, "rsa-sha256", -1, "l=100000;", NULL);
		} else {
			sign_custom(m, rsa1024.pk, cases[i].dom, "rsa-sha256", l, cases[i].extra, NULL);
		}
		if (cases[i].add_body)
			msg_add_body(m, cases[i].add_body, strlen(cases[i].add_body));
		char why[128];
		enum dkim_result r = verify1(z, m, why, sizeof(why));
		if (r != cases[i].want)
			fail_msg("%s: %s (%s)", cases[i].name, dkim_result_str(r), why);
		msg_free(m);
		mdns_free(z);
	}
}

static void t_header_selection(void **state)
{
	(void)state;
	/* h= names Subject twice and a field that is not there: the second
	 * Subject and X-None are signed as absent, so adding either breaks it */
	static const struct {
		const char *add_name;
		const char *add_value;
		int on_top;
		enum dkim_result want;
	} cases[] = {
		{ NULL, NULL, 0, DKIM_PASS },
		{ "Subject", " Other", 1, DKIM_FAIL },
		{ "X-None", " 1", 0, DKIM_FAIL },
		{ "Received", " x", 1, DKIM_PASS },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct msg *m = parse(base_msg);
		struct mdns *z = zone_with("sel._domainkey.example.com", rsa1024.rec);
		sign_msg(m, &rsa1024, NULL, "from:subject:subject:x-none:to");
		if (cases[i].add_name) {
			if (cases[i].on_top)
				msg_prepend_header(m, cases[i].add_name, cases[i].add_value);
			else
				msg_add_header(m, cases[i].add_name, cases[i].add_value);
		}
		char why[128];
		enum dkim_result r = verify1(z, m, why, sizeof(why));
		if (r != cases[i].want)
			fail_msg("case %zu: %s (%s)", i, dkim_result_str(r), why);
		msg_free(m);
		mdns_free(z);
	}
	/* bottom-up: with two Subjects signed once, the bottom one counts */
	struct msg *m = parse(base_msg);
	struct mdns *z = zone_with("sel._domainkey.example.com", rsa1024.rec);
	msg_add_header(m, "Subject", " Bottom");
	sign_msg(m, &rsa1024, NULL, "from:subject");
	m->hdr[3].raw[9] = 'X'; /* the top Subject (index 3 after the signature) */
	assert_int_equal(verify1(z, m, NULL, 0), DKIM_PASS);
	m->hdr[m->nhdr - 1].raw[9] = 'X';
	assert_int_equal(verify1(z, m, NULL, 0), DKIM_FAIL);
	msg_free(m);
	mdns_free(z);
}

static void t_key_lookup(void **state)
{
	(void)state;
	char rec[4200];
	const char *p = strstr(rsa1024.rec, "p=");
	static const struct {
		const char *fmt; /* NULL: no record; "TIMEOUT" */
		const char *i;
		enum dkim_result want;
		int testing;
	} cases[] = {
		{ "v=DKIM1; %s", NULL, DKIM_PASS, 0 },
		{ NULL, NULL, DKIM_PERMERROR, 0 },
		{ "TIMEOUT", NULL, DKIM_TEMPERROR, 0 },
		{ "v=DKIM1; k=rsa; p=", NULL, DKIM_FAIL, 0 },
		{ "v=DKIM1; t=y; %s", NULL, DKIM_PASS, 1 },
		{ "v=DKIM1; t=s; %s", "i=@example.com;", DKIM_PASS, 0 },
		{ "v=DKIM1; t=s; %s", "i=@sub.example.com;", DKIM_PERMERROR, 0 },
		{ "v=DKIM1; h=sha1; %s", NULL, DKIM_PERMERROR, 0 },
		{ "v=DKIM1; s=tlsrpt; %s", NULL, DKIM_PERMERROR, 0 },
		{ "v=DKIM1; s=email:tlsrpt; %s", NULL, DKIM_PASS, 0 },
		{ "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", NULL,
		  DKIM_PERMERROR, 0 },
		{ "garbage", NULL, DKIM_PERMERROR, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct msg *m = parse(base_msg);
		struct mdns *z = mdns_zone_new();
		if (cases[i].fmt && strcmp(cases[i].fmt, "TIMEOUT") == 0) {
			mdns_zone_set_timeout(z, "sel._domainkey.example.com");
		} else if (cases[i].fmt) {
			snprintf(rec, sizeof(rec), cases[i].fmt, p);
			mdns_zone_add_txt(z, "sel._domainkey.example.com", rec, strlen(rec));
		}
		sign_custom(m, rsa1024.pk, "example.com", "rsa-sha256", -1, cases[i].i, NULL);
		struct dkim_verify_out out;
		assert_int_equal(dkim_verify(z, m, NOW, &out), 0);
		if (out.sig[0].result != cases[i].want || out.sig[0].testing != cases[i].testing)
			fail_msg("key case %zu: %s (%s)", i, dkim_result_str(out.sig[0].result),
				 out.sig[0].reason);
		msg_free(m);
		mdns_free(z);
	}
}

static void t_many_sigs(void **state)
{
	(void)state;
	struct msg *m = parse(base_msg);
	struct mdns *z = zone_with("sel._domainkey.example.com", ed.rec);
	mdns_zone_add_txt(z, "sel._domainkey.example.net", rsa1024.rec, strlen(rsa1024.rec));
	sign_custom(m, rsa1024.pk, "example.net", "rsa-sha256", -1, NULL, NULL);
	sign_msg(m, &ed, NULL, NULL);
	add_sig(m, "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=AAAA; b=AAAA; x");
	struct dkim_verify_out out;
	assert_int_equal(dkim_verify(z, m, NOW, &out), 0);
	assert_int_equal(out.n, 3);
	assert_int_equal(out.sig[0].result, DKIM_PERMERROR);
	assert_int_equal(out.sig[1].result, DKIM_PASS);
	assert_string_equal(out.sig[1].a, "ed25519-sha256");
	assert_int_equal(out.sig[2].result, DKIM_PASS);
	assert_string_equal(out.sig[2].d, "example.net");
	for (int i = 0; i < 10; i++)
		add_sig(m, "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=AAAA; b=AAAA");
	assert_int_equal(dkim_verify(z, m, NOW, &out), 0);
	assert_int_equal(out.n, DKIM_MAX_SIGS);
	assert_int_equal(out.ignored, 13 - DKIM_MAX_SIGS);
	msg_free(m);
	mdns_free(z);
	/* no signature: none */
	m = parse(base_msg);
	z = mdns_zone_new();
	assert_int_equal(dkim_verify(z, m, NOW, &out), 0);
	assert_int_equal(out.n, 0);
	assert_string_equal(dkim_result_str(DKIM_NONE), "none");
	msg_free(m);
	mdns_free(z);
}

static void t_malformed_sigs(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"x",
		"",
		"v=1",
		"v=2; a=rsa-sha256; d=example.com; s=sel; h=from; bh=AAAA; b=AAAA",
		"v=1; a=rsa-sha512; d=example.com; s=sel; h=from; bh=AAAA; b=AAAA",
		"v=1; a=rsa-sha256; d=example.com; s=sel; h=to; bh=AAAA; b=AAAA",
		"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=AAAA; b=!!!",
		"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=AAAA; b=AAAA; l=x",
		"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=AAAA; b=AAAA; c=odd",
		"v=1; a=rsa-sha256; d=example.com; s=sel; h=from::to; bh=AAAA; b=AAAA",
		"v=1; a=rsa-sha256; d=; s=sel; h=from; bh=AAAA; b=AAAA",
		"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=AAAA; b=AAAA; t=99999999999999999",
		"v=1; v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=AAAA; b=AAAA",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct msg *m = parse(base_msg);
		struct mdns *z = zone_with("sel._domainkey.example.com", rsa1024.rec);
		add_sig(m, bad[i]);
		enum dkim_result r = verify1(z, m, NULL, 0);
		if (r != DKIM_PERMERROR)
			fail_msg("bad sig %zu: %s", i, dkim_result_str(r));
		msg_free(m);
		mdns_free(z);
	}
}

struct thr {
	const struct msg *m;
	struct mdns *z;
	int bad;
};

static void *thr_run(void *arg)
{
	struct thr *t = arg;
	for (int i = 0; i < 40; i++) {
		struct dkim_verify_out out;
		if (dkim_verify(t->z, t->m, NOW, &out) != 0 || out.sig[0].result != DKIM_PASS)
			t->bad++;
		if (i % 10 == 0)
			dkim_key_cache_clear();
	}
	return NULL;
}

static void t_threads(void **state)
{
	(void)state;
	struct msg *m = parse(base_msg);
	struct mdns *z = zone_with("sel._domainkey.example.com", rsa1024.rec);
	sign_msg(m, &rsa1024, NULL, NULL);
	pthread_t th[4];
	struct thr t[4];
	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){ m, z, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, thr_run, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].bad, 0);
	}
	msg_free(m);
	mdns_free(z);
}

static void t_signer_args(void **state)
{
	(void)state;
	char err[128];
	assert_null(dkim_signer_new("example.com", "sel", "junk", 4, NULL, err, sizeof(err)));
	assert_null(dkim_signer_new("bad..domain", "sel", rsa1024.pem, rsa1024.pem_len, NULL, err,
				    sizeof(err)));
	assert_null(dkim_signer_new("example.com", "s;l", rsa1024.pem, rsa1024.pem_len, NULL, err,
				    sizeof(err)));
	assert_null(dkim_signer_new("example.com", "sel", rsa1024.pem, rsa1024.pem_len, "from::to",
				    err, sizeof(err)));
	struct dkim_signer *s = dkim_signer_new("example.com", "sel", rsa1024.pem, rsa1024.pem_len,
						"From:To", err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(dkim_signer_set_canon(s, "bogus"), -1);
	dkim_signer_free(s);
	dkim_signer_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_tags),
		cmocka_unit_test(t_body_canon),
		cmocka_unit_test(t_header_canon),
		cmocka_unit_test(t_key_records),
		cmocka_unit_test(t_roundtrips),
		cmocka_unit_test(t_big_keys),
		cmocka_unit_test(t_short_rsa_and_sha1),
		cmocka_unit_test(t_tags_semantics),
		cmocka_unit_test(t_header_selection),
		cmocka_unit_test(t_key_lookup),
		cmocka_unit_test(t_many_sigs),
		cmocka_unit_test(t_malformed_sigs),
		cmocka_unit_test(t_threads),
		cmocka_unit_test(t_signer_args),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
