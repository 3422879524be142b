/*
 * Unit tests for ARC (src/mail/arc.c): sealing and validating chains made
 * here (one, two and three hops, RSA and Ed25519), what breaks a chain (a
 * changed body, a changed ARC field, a short key), and malformed chains,
 * which must give cv=fail and never crash: "ARC-Seal: x", duplicate
 * instances, missing members, instances outside 1..50, cv= out of place.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "mail/arc.h"
#include "mail/dkim.h"
#include "mail/dkim_int.h"
#include "mail/mdns.h"
#include "mail/msg.h"

#define NOW 1700000000

static const char base_msg[] =
	"Authentication-Results: relay.example; spf=pass smtp.mailfrom=a@example.com\r\n"
	"From: Joe <joe@example.com>\r\n"
	"To: list@example.org\r\n"
	"Subject: Hello\r\n"
	"Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n"
	"\r\n"
	"Body text.\r\n";

#include "mail_keys_test.h"

static struct tkey rsa, ed;
static struct mdns *zone;

static int group_setup(void **state)
{
	(void)state;
	tkey_make(&rsa, EVP_PKEY_RSA, 1024);
	tkey_make(&ed, EVP_PKEY_ED25519, 0);
	zone = mdns_zone_new();
	mdns_zone_add_txt(zone, "rsa._domainkey.hop1.example", rsa.rec, strlen(rsa.rec));
	mdns_zone_add_txt(zone, "ed._domainkey.hop2.example", ed.rec, strlen(ed.rec));
	mdns_zone_add_txt(zone, "rsa._domainkey.hop3.example", rsa.rec, strlen(rsa.rec));
	mdns_zone_set_timeout(zone, "slow._domainkey.hop1.example");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	tkey_free(&rsa);
	tkey_free(&ed);
	mdns_free(zone);
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

static void prepend(struct msg *m, const char *name, const char *v)
{
	char *val = malloc(strlen(v) + 2);
	val[0] = ' ';
	memcpy(val + 1, v, strlen(v) + 1);
	assert_int_equal(msg_prepend_header(m, name, val), 0);
	free(val);
}

/* Validate m, append footer to the body (a list does), then seal it as
 * dom/sel and add the set on top. */
static enum arc_cv hop_footer(struct msg *m, const struct tkey *k, const char *dom,
			      const char *sel, const char *footer)
{
	struct arc_verify_out vo;
	char err[128], *aar, *ams, *as;
	assert_int_equal(arc_verify(zone, m, NOW, &vo), 0);
	if (footer)
		msg_add_body(m, footer, strlen(footer));
	struct dkim_signer *s = dkim_signer_new(dom, sel, k->pem, k->pem_len, NULL, err, sizeof(err));
	assert_non_null(s);
	char ar[256];
	snprintf(ar, sizeof(ar), "arc=%s; spf=pass smtp.mailfrom=a@example.com", arc_cv_str(vo.cv));
	assert_int_equal(arc_seal(s, m, dom, ar, vo.cv, NOW, &aar, &ams, &as), 0);
	prepend(m, "ARC-Authentication-Results", aar);
	prepend(m, "ARC-Message-Signature", ams);
	prepend(m, "ARC-Seal", as);
	free(aar);
	free(ams);
	free(as);
	dkim_signer_free(s);
	return vo.cv;
}

static enum arc_cv hop(struct msg *m, const struct tkey *k, const char *dom, const char *sel)
{
	return hop_footer(m, k, dom, sel, NULL);
}

static void t_chain(void **state)
{
	(void)state;
	struct msg *m = parse(base_msg);
	struct arc_verify_out vo;
	assert_int_equal(arc_verify(zone, m, NOW, &vo), 0);
	assert_int_equal(vo.cv, ARC_NONE);
	assert_int_equal(vo.instances, 0);

	assert_int_equal(hop(m, &rsa, "hop1.example", "rsa"), ARC_NONE);
	assert_int_equal(arc_verify(zone, m, NOW, &vo), 0);
	if (vo.cv != ARC_PASS)
		fail_msg("1 hop: %s", vo.reason);
	assert_int_equal(vo.instances, 1);
	assert_string_equal(vo.domains[0], "hop1.example");

	assert_int_equal(hop(m, &ed, "hop2.example", "ed"), ARC_PASS);
	assert_int_equal(hop(m, &rsa, "hop3.example", "rsa"), ARC_PASS);
	assert_int_equal(arc_verify(zone, m, NOW, &vo), 0);
	if (vo.cv != ARC_PASS)
		fail_msg("3 hops: %s", vo.reason);
	assert_int_equal(vo.instances, 3);
	assert_string_equal(vo.domains[1], "hop2.example");
	assert_string_equal(vo.domains[2], "hop3.example");
	assert_int_equal(vo.oldest_pass, 1);

	/* a body change after hop 3 breaks the newest AMS */
	msg_add_body(m, "x\r\n", 3);
	assert_int_equal(arc_verify(zone, m, NOW, &vo), 0);
	assert_int_equal(vo.cv, ARC_FAIL);
	assert_non_null(strstr(vo.reason, "ARC-Message-Signature"));
	msg_free(m);
}

static void t_oldest_pass(void **state)
{
	(void)state;
	/* hop 1 seals; hop 2 validates, adds a footer and seals: the chain
	 * passes (the seals are intact, hop 2's AMS verifies) but AMS 1 does
	 * not any more */
	struct msg *m = parse(base_msg);
	hop(m, &rsa, "hop1.example", "rsa");
	assert_int_equal(hop_footer(m, &ed, "hop2.example", "ed", "footer\r\n"), ARC_PASS);
	struct arc_verify_out vo;
	assert_int_equal(arc_verify(zone, m, NOW, &vo), 0);
	assert_int_equal(vo.cv, ARC_PASS);
	assert_int_equal(vo.oldest_pass, 2);
	msg_free(m);
}

/* Change byte at of the first field named name whose value contains what. */
static void tamper(struct msg *m, const char *name, const char *what, char to)
{
	for (size_t i = 0; i < m->nhdr; i++) {
		if (!msg_hdr_is(m, i, name))
			continue;
		char *p = strstr(m->hdr[i].raw, what);
		if (p) {
			p[strlen(what) - 1] = to;
			return;
		}
	}
	fail_msg("no %s with %s", name, what);
}

static void t_tampered(void **state)
{
	(void)state;
	static const struct {
		const char *name, *what;
		char to;
	} cases[] = {
		{ "ARC-Authentication-Results", "spf=pass", 'X' },
		{ "ARC-Seal", "cv=none", 'X' },
		{ "ARC-Seal", "d=hop1.example", 'X' },
		{ "ARC-Message-Signature", "s=rsa", 'X' },
		{ "Subject", "Hello", 'X' },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct msg *m = parse(base_msg);
		hop(m, &rsa, "hop1.example", "rsa");
		tamper(m, cases[i].name, cases[i].what, cases[i].to);
		struct arc_verify_out vo;
		assert_int_equal(arc_verify(zone, m, NOW, &vo), 0);
		if (vo.cv != ARC_FAIL)
			fail_msg("tamper %zu: %s", i, arc_cv_str(vo.cv));
		msg_free(m);
	}
}

/* Malformed chains: cv=fail, a reason, no crash. */
static void t_malformed(void **state)
{
	(void)state;
	static const struct {
		const char *hdrs; /* ARC fields on top, "\r\n" separated */
		enum arc_cv want;
	} cases[] = {
		{ "ARC-Seal: x\r\n", ARC_FAIL },
		{ "ARC-Seal:\r\n", ARC_FAIL },
		{ "ARC-Message-Signature: ;;;\r\n", ARC_FAIL },
		{ "ARC-Authentication-Results: x\r\n", ARC_FAIL },
		{ "ARC-Authentication-Results: i=1\r\n", ARC_FAIL },
		{ "ARC-Authentication-Results: i=1; a\r\n", ARC_FAIL }, /* no AMS, no AS */
		{ "ARC-Seal: i=0; a=rsa-sha256; cv=none; d=hop1.example; s=rsa; b=AA\r\n", ARC_FAIL },
		{ "ARC-Seal: i=51; a=rsa-sha256; cv=none; d=hop1.example; s=rsa; b=AA\r\n", ARC_FAIL },
		{ "ARC-Seal: i=99999999999999999999; a=rsa-sha256\r\n", ARC_FAIL },
		{ "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=hop1.example; s=rsa; b=AA\r\n"
		  "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=hop1.example; s=rsa; b=AA\r\n",
		  ARC_FAIL },
		{ "ARC-Seal: i=2; a=rsa-sha256; cv=pass; d=hop1.example; s=rsa; b=AA\r\n"
		  "ARC-Message-Signature: i=2; a=rsa-sha256; d=hop1.example; s=rsa; h=from; bh=AA; b=AA\r\n"
		  "ARC-Authentication-Results: i=2; x; none\r\n",
		  ARC_FAIL }, /* a gap: no instance 1 */
		{ "ARC-Seal: i=1; a=rsa-sha256; cv=pass; d=hop1.example; s=rsa; b=AA\r\n"
		  "ARC-Message-Signature: i=1; a=rsa-sha256; d=hop1.example; s=rsa; h=from; bh=AA; b=AA\r\n"
		  "ARC-Authentication-Results: i=1; x; none\r\n",
		  ARC_FAIL }, /* cv=pass at i=1 */
		{ "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=hop1.example; s=rsa; h=from; b=AA\r\n"
		  "ARC-Message-Signature: i=1; a=rsa-sha256; d=hop1.example; s=rsa; h=from; bh=AA; b=AA\r\n"
		  "ARC-Authentication-Results: i=1; x; none\r\n",
		  ARC_FAIL }, /* h= in a seal */
		{ "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=hop1.example; s=slow; b=AA\r\n"
		  "ARC-Message-Signature: i=1; a=rsa-sha256; d=hop1.example; s=slow; h=from; bh=AA; b=AA\r\n"
		  "ARC-Authentication-Results: i=1; x; none\r\n",
		  ARC_FAIL }, /* DNS timeout: fail, with temperror set */
		{ "ARC-Seal: i=1; a=rsa-sha1; cv=none; d=hop1.example; s=rsa; b=AA\r\n"
		  "ARC-Message-Signature: i=1; a=rsa-sha256; d=hop1.example; s=rsa; h=arc-seal; bh=AA; b=AA\r\n"
		  "ARC-Authentication-Results: i=1; x; none\r\n",
		  ARC_FAIL },
		{ "X-Other: 1\r\n", ARC_NONE },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[2048];
		snprintf(text, sizeof(text), "%s%s", cases[i].hdrs, base_msg);
		struct msg *m = parse(text);
		struct arc_verify_out vo;
		assert_int_equal(arc_verify(zone, m, NOW, &vo), 0);
		if (vo.cv != cases[i].want)
			fail_msg("malformed %zu: %s (%s)", i, arc_cv_str(vo.cv), vo.reason);
		if (vo.cv == ARC_FAIL && !vo.reason[0])
			fail_msg("malformed %zu: no reason", i);
		msg_free(m);
	}
	/* a chain cut after a good hop: the AMS of the set removed */
	struct msg *m = parse(base_msg);
	hop(m, &rsa, "hop1.example", "rsa");
	msg_remove_header(m, 1);
	struct arc_verify_out vo;
	assert_int_equal(arc_verify(zone, m, NOW, &vo), 0);
	assert_int_equal(vo.cv, ARC_FAIL);
	msg_free(m);
}

static void t_short_key(void **state)
{
	(void)state;
	struct tkey k;
	tkey_make(&k, EVP_PKEY_RSA, 512);
	struct mdns *z = mdns_zone_new();
	mdns_zone_add_txt(z, "short._domainkey.hop1.example", k.rec, strlen(k.rec));
	struct msg *m = parse(base_msg);
	/* seal with a signer the public constructor would refuse */
	struct dkim_signer s;
	memset(&s, 0, sizeof(s));
	snprintf(s.domain, sizeof(s.domain), "hop1.example");
	snprintf(s.selector, sizeof(s.selector), "short");
	snprintf(s.headers, sizeof(s.headers), "from:to:subject");
	s.pk = k.pk;
	s.hc = s.bc = DKIM_C_RELAXED;
	char *aar, *ams, *as;
	assert_int_equal(arc_seal(&s, m, "hop1.example", "spf=pass", ARC_NONE, NOW, &aar, &ams, &as),
			 0);
	prepend(m, "ARC-Authentication-Results", aar);
	prepend(m, "ARC-Message-Signature", ams);
	prepend(m, "ARC-Seal", as);
	struct arc_verify_out vo;
	assert_int_equal(arc_verify(z, m, NOW, &vo), 0);
	assert_int_equal(vo.cv, ARC_FAIL);
	assert_non_null(strstr(vo.reason, "1024"));
	free(aar);
	free(ams);
	free(as);
	msg_free(m);
	mdns_free(z);
	tkey_free(&k);
}

static void t_seal_refusals(void **state)
{
	(void)state;
	char err[128], *aar, *ams, *as;
	struct dkim_signer *s = dkim_signer_new("hop1.example", "rsa", rsa.pem, rsa.pem_len, NULL,
						err, sizeof(err));
	assert_non_null(s);
	/* 50 sets already: no 51st */
	char text[4096];
	snprintf(text, sizeof(text),
		 "ARC-Seal: i=50; a=rsa-sha256; cv=pass; d=x.example; s=a; b=AA\r\n%s", base_msg);
	struct msg *m = parse(text);
	assert_int_equal(arc_seal(s, m, "hop1.example", NULL, ARC_PASS, NOW, &aar, &ams, &as), -1);
	assert_null(aar);
	msg_free(m);
	/* the top seal says cv=fail: no new set */
	m = parse(base_msg);
	hop(m, &rsa, "hop1.example", "rsa");
	msg_add_body(m, "x\r\n", 3);
	assert_int_equal(hop(m, &rsa, "hop1.example", "rsa"), ARC_FAIL);
	assert_int_equal(arc_seal(s, m, "hop1.example", NULL, ARC_FAIL, NOW, &aar, &ams, &as), -1);
	msg_free(m);
	/* no authserv-id */
	m = parse(base_msg);
	assert_int_equal(arc_seal(s, m, "", NULL, ARC_NONE, NOW, &aar, &ams, &as), -1);
	/* an empty result list gives "none" */
	assert_int_equal(arc_seal(s, m, "hop1.example", "", ARC_NONE, NOW, &aar, &ams, &as), 0);
	assert_string_equal(aar, "i=1; hop1.example; none");
	assert_non_null(strstr(as, "cv=none"));
	free(aar);
	free(ams);
	free(as);
	msg_free(m);
	dkim_signer_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_chain),
		cmocka_unit_test(t_oldest_pass),
		cmocka_unit_test(t_tampered),
		cmocka_unit_test(t_malformed),
		cmocka_unit_test(t_short_key),
		cmocka_unit_test(t_seal_refusals),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
