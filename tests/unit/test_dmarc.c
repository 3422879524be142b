/*
 * Unit tests for DMARC: the record parser (table: defaults, bad values,
 * p= rescued by rua=), organisational domains through the Debian Public
 * Suffix List (multi-label suffixes, the implicit "*" rule for a TLD the
 * list lacks, a suffix being its own org domain), and dmarc_check on
 * in-memory zones: discovery order, alignment modes, pct sampling with the
 * caller's draw, np= for non-existent subdomains, temperror.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/err.h"
#include "mail/dmarc.h"
#include "mail/dmarc_report.h"
#include "mail/mdns.h"
#include "mail/spf.h"

#define N(x) (sizeof(x) / sizeof((x)[0]))

struct rec_case {
	const char *txt;
	int rc;
	int p, sp, np, adkim, aspf;
	unsigned pct, ri;
	const char *rua, *fo;
};

#define NONE_ DMARC_POLICY_NONE
#define QUAR DMARC_POLICY_QUARANTINE
#define REJ DMARC_POLICY_REJECT
#define R_ DMARC_ALIGN_RELAXED
#define S_ DMARC_ALIGN_STRICT

static const struct rec_case rec_cases[] = {
	{"v=DMARC1; p=none", 0, NONE_, NONE_, NONE_, R_, R_, 100, 86400, "", "0"},
	{"v=DMARC1;p=reject;sp=quarantine", 0, REJ, QUAR, QUAR, R_, R_, 100, 86400, "", "0"},
	{"v=DMARC1; p=reject; sp=none; np=quarantine", 0, REJ, NONE_, QUAR, R_, R_, 100, 86400,
	 "", "0"},
	{"v = DMARC1 ; P = Quarantine ; adkim = s ; aspf = s ; pct = 25 ; ri = 3600 ; fo = 1:d",
	 0, QUAR, QUAR, QUAR, S_, S_, 25, 3600, "", "1:d"},
	{"v=DMARC1; p=reject; rua=mailto:a@example.com,mailto:b@example.com!10m", 0, REJ, REJ,
	 REJ, R_, R_, 100, 86400, "mailto:a@example.com,mailto:b@example.com!10m", "0"},
	/* bad optional values fall back to defaults; unknown tags ignored */
	{"v=DMARC1; p=reject; pct=101; adkim=x; aspf=; ri=-1; foo=bar;", 0, REJ, REJ, REJ, R_,
	 R_, 100, 86400, "", "0"},
	{"v=DMARC1; p=none; pct=0", 0, NONE_, NONE_, NONE_, R_, R_, 0, 86400, "", "0"},
	/* p= missing or invalid: p=none only with a valid rua= */
	{"v=DMARC1; p=bogus; rua=mailto:r@example.com", 0, NONE_, NONE_, NONE_, R_, R_, 100,
	 86400, "mailto:r@example.com", "0"},
	{"v=DMARC1; rua=mailto:r@example.com", 0, NONE_, NONE_, NONE_, R_, R_, 100, 86400,
	 "mailto:r@example.com", "0"},
	{"v=DMARC1; p=bogus", -1, 0, 0, 0, 0, 0, 0, 0, NULL, NULL},
	{"v=DMARC1; p=reject; sp=bogus", -1, 0, 0, 0, 0, 0, 0, 0, NULL, NULL},
	{"v=DMARC1; p=bogus; rua=notauri", -1, 0, 0, 0, 0, 0, 0, 0, NULL, NULL},
	{"v=DMARC1", -1, 0, 0, 0, 0, 0, 0, 0, NULL, NULL},
	/* not DMARC records */
	{"p=reject; v=DMARC1", -1, 0, 0, 0, 0, 0, 0, 0, NULL, NULL},
	{"v=DMARC2; p=reject", -1, 0, 0, 0, 0, 0, 0, 0, NULL, NULL},
	{"v=dmarc1; p=reject", -1, 0, 0, 0, 0, 0, 0, 0, NULL, NULL},
	{"v=DMARC10; p=reject", -1, 0, 0, 0, 0, 0, 0, 0, NULL, NULL},
	{"", -1, 0, 0, 0, 0, 0, 0, 0, NULL, NULL},
};

static void test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(rec_cases); i++) {
		const struct rec_case *c = &rec_cases[i];
		struct dmarc_record r;
		char why[128];
		int rc = dmarc_parse_record(c->txt, strlen(c->txt), &r, why, sizeof(why));
		if (rc != c->rc)
			fail_msg("case %zu \"%s\": rc %d (%s), want %d", i, c->txt, rc, why, c->rc);
		if (rc != 0)
			continue;
		if (r.p != c->p || r.sp != c->sp || r.np != c->np || r.adkim != c->adkim ||
		    r.aspf != c->aspf || r.pct != c->pct || r.ri != c->ri ||
		    strcmp(r.rua, c->rua) != 0 || strcmp(r.fo, c->fo) != 0)
			fail_msg("case %zu \"%s\": p=%d sp=%d np=%d adkim=%d aspf=%d pct=%u ri=%u "
				 "rua=%s fo=%s", i, c->txt, r.p, r.sp, r.np, r.adkim, r.aspf, r.pct,
				 r.ri, r.rua, r.fo);
	}
}

struct org_case {
	const char *in;
	int rc;
	const char *org;
};

static const struct org_case org_cases[] = {
	{"example.com", 0, "example.com"},
	{"mail.EXAMPLE.com.", 0, "example.com"},
	{"a.b.c.example.co.uk", 0, "example.co.uk"},
	{"www.city.kobe.jp", 0, "city.kobe.jp"},
	/* a TLD missing from the list: the implicit "*" rule */
	{"mail.foo.notarealtld", 0, "foo.notarealtld"},
	/* a public suffix is its own org domain */
	{"co.uk", 0, "co.uk"},
	{"com", 0, "com"},
	{"a..example.com", -1, NULL},
	{"", -1, NULL},
};

static void test_org_domain(void **state)
{
	(void)state;
	assert_non_null(dmarc_psl());
	for (size_t i = 0; i < N(org_cases); i++) {
		char out[256];
		int rc = dmarc_org_domain(org_cases[i].in, out, sizeof(out));
		if (rc != org_cases[i].rc || (rc == 0 && strcmp(out, org_cases[i].org) != 0))
			fail_msg("%s: rc %d \"%s\", want %d \"%s\"", org_cases[i].in, rc,
				 rc == 0 ? out : "", org_cases[i].rc,
				 org_cases[i].org ? org_cases[i].org : "");
	}
	char out[256];
	assert_int_equal(dmarc_registrable_domain(NULL, "co.uk", out, sizeof(out)), -1);
	assert_int_equal(dmarc_registrable_domain(NULL, ".example.com", out, sizeof(out)), -1);
	assert_int_equal(dmarc_registrable_domain(NULL, "x.example.com", out, 4), -1);
}

/* ---- dmarc_check ---- */

static void txt(struct mdns *z, const char *name, const char *t)
{
	assert_int_equal(mdns_zone_add_txt(z, name, t, strlen(t)), 0);
}

static struct mdns *zone(void)
{
	struct mdns *z = mdns_zone_new();
	txt(z, "_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine; np=reject; pct=50");
	txt(z, "_dmarc.strict.example", "v=DMARC1; p=quarantine; adkim=s; aspf=s");
	txt(z, "_dmarc.own.example.com", "v=DMARC1; p=none");
	mdns_zone_add_addr(z, "exists.example.com", "192.0.2.1");
	mdns_zone_set_timeout(z, "_dmarc.slow.example.com");
	return z;
}

struct chk_case {
	const char *from;
	int spf;
	const char *spf_dom;
	int dkim_pass;
	const char *dkim_d;
	unsigned roll;
	int result, policy, disp, spf_al, dkim_al;
};

static const struct chk_case chk_cases[] = {
	/* alignment */
	{"example.com", SPF_PASS, "example.com", 0, NULL, 0, DMARC_RESULT_PASS, REJ, NONE_, 1, 0},
	{"example.com", SPF_PASS, "bounce.example.com", 0, NULL, 0, DMARC_RESULT_PASS, REJ,
	 NONE_, 1, 0},
	{"example.com", SPF_SOFTFAIL, "example.com", 1, "mail.example.com", 0,
	 DMARC_RESULT_PASS, REJ, NONE_, 0, 1},
	{"example.com", SPF_PASS, "example.net", 0, "example.com", 0, DMARC_RESULT_FAIL, REJ,
	 REJ, 0, 0},
	{"strict.example", SPF_PASS, "b.strict.example", 1, "d.strict.example", 0,
	 DMARC_RESULT_FAIL, QUAR, QUAR, 0, 0},
	{"strict.example", SPF_PASS, "STRICT.example.", 0, NULL, 0, DMARC_RESULT_PASS, QUAR,
	 NONE_, 1, 0},
	/* pct=50 with the caller's draw: 49 applies, 50 steps down */
	{"example.com", SPF_FAIL, "example.com", 0, NULL, 49, DMARC_RESULT_FAIL, REJ, REJ, 0, 0},
	{"example.com", SPF_FAIL, "example.com", 0, NULL, 50, DMARC_RESULT_FAIL, REJ, QUAR, 0,
	 0},
	/* subdomains: sp for an existing one, np for a missing one (RFC 9091) */
	{"exists.example.com", SPF_NONE, NULL, 0, NULL, 0, DMARC_RESULT_FAIL, QUAR, QUAR, 0, 0},
	{"ghost.example.com", SPF_NONE, NULL, 0, NULL, 0, DMARC_RESULT_FAIL, REJ, REJ, 0, 0},
	{"own.example.com", SPF_NONE, NULL, 0, NULL, 0, DMARC_RESULT_FAIL, NONE_, NONE_, 0, 0},
	/* no record, temperror, bad From */
	{"example.org", SPF_NONE, NULL, 0, NULL, 0, DMARC_RESULT_NONE, DMARC_POLICY_ABSENT,
	 NONE_, 0, 0},
	{"slow.example.com", SPF_PASS, "slow.example.com", 0, NULL, 0, DMARC_RESULT_TEMPERROR,
	 DMARC_POLICY_ABSENT, NONE_, 0, 0},
	{"", SPF_PASS, NULL, 0, NULL, 0, DMARC_RESULT_PERMERROR, DMARC_POLICY_ABSENT, NONE_, 0,
	 0},
};

static void test_check_table(void **state)
{
	(void)state;
	struct mdns *z = zone();
	for (size_t i = 0; i < N(chk_cases); i++) {
		const struct chk_case *c = &chk_cases[i];
		struct dmarc_dkim dk = {c->dkim_pass, c->dkim_d};
		struct dmarc_auth in = {c->from, c->spf, c->spf_dom, c->dkim_d ? 1 : 0, &dk, 0};
		struct dmarc_outcome o;
		assert_int_equal(dmarc_check(z, &in, c->roll, &o), 0);
		if (o.result != c->result || o.policy != c->policy || o.disposition != c->disp ||
		    o.spf_aligned != c->spf_al || o.dkim_aligned != c->dkim_al)
			fail_msg("case %zu (%s): %s/%s/%s spf_al=%d dkim_al=%d (%s)", i, c->from,
				 dmarc_result_str(o.result), dmarc_policy_str(o.policy),
				 dmarc_policy_str(o.disposition), o.spf_aligned, o.dkim_aligned,
				 o.reason);
	}
	/* plain RFC 7489: np= ignored, sp applies */
	struct dmarc_auth in = {"ghost.example.com", SPF_NONE, NULL, 0, NULL, DMARC_F_NO_NP};
	struct dmarc_outcome o;
	assert_int_equal(dmarc_check(z, &in, 0, &o), 0);
	assert_int_equal(o.policy, QUAR);
	assert_int_equal(o.used_np, 0);
	assert_string_equal(o.record_domain, "example.com");
	mdns_free(z);
}

static void test_multiple_records(void **state)
{
	(void)state;
	struct mdns *z = mdns_zone_new();
	txt(z, "_dmarc.example.com", "v=DMARC1; p=reject");
	txt(z, "_dmarc.example.com", "v=DMARC1; p=none");
	txt(z, "_dmarc.example.net", "some-verification=1");
	txt(z, "_dmarc.example.net", "v=DMARC1; p=reject");
	struct dmarc_auth in = {"example.com", SPF_FAIL, "example.com", 0, NULL, 0};
	struct dmarc_outcome o;
	assert_int_equal(dmarc_check(z, &in, 0, &o), 0);
	assert_int_equal(o.result, DMARC_RESULT_NONE);
	assert_int_equal(o.policy, DMARC_POLICY_ABSENT);
	in.from_domain = "example.net";
	in.spf_domain = "example.net";
	assert_int_equal(dmarc_check(z, &in, 0, &o), 0);
	assert_int_equal(o.result, DMARC_RESULT_FAIL);
	assert_int_equal(o.disposition, REJ);
	mdns_free(z);
}

/* ---- aggregate reports ---- */

static void report_one(struct dmarc_report *r, struct mdns *z, time_t now, const char *ip,
		       const char *from, int spf, const char *dkim_d, int expect_rc)
{
	struct dmarc_dkim dk = {1, dkim_d};
	struct dmarc_auth in = {from, spf, from, dkim_d ? 1 : 0, &dk, 0};
	struct dmarc_outcome o;
	uint8_t a[16];
	int af = strchr(ip, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(af, ip, a), 1);
	assert_int_equal(dmarc_check(z, &in, 0, &o), 0);
	assert_int_equal(dmarc_report_add(r, now, af, a, &in, &o), expect_rc);
}

static char *gunzip(const unsigned char *p, size_t n)
{
	size_t cap = 1 << 20;
	char *out = malloc(cap);
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
	zs.next_in = (Bytef *)(uintptr_t)p;
	zs.avail_in = (uInt)n;
	zs.next_out = (Bytef *)out;
	zs.avail_out = (uInt)cap - 1;
	assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
	out[cap - 1 - zs.avail_out] = '\0';
	inflateEnd(&zs);
	return out;
}

static void test_report(void **state)
{
	(void)state;
	struct mdns *z = mdns_zone_new();
	txt(z, "_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine; adkim=s; pct=100");
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(dmarc_report_schema(db), 0);
	assert_int_equal(dmarc_report_schema(db), 0); /* idempotent */
	struct dmarc_report *r = dmarc_report_new(86400, 4);
	assert_non_null(r);
	time_t day = 1700006400; /* a multiple of 86400 */
	report_one(r, z, day + 10, "192.0.2.1", "example.com", SPF_PASS, "example.com", 0);
	report_one(r, z, day + 20, "192.0.2.1", "example.com", SPF_PASS, "example.com", 0);
	report_one(r, z, day + 30, "2001:db8::1", "example.com", SPF_FAIL, NULL, 0);
	report_one(r, z, day + 40, "192.0.2.9", "example.com", SPF_FAIL, "evil<&>.example", 0);
	assert_int_equal(dmarc_report_rows(r), 3);
	/* no policy found: not reportable */
	report_one(r, z, day + 50, "192.0.2.1", "example.org", SPF_PASS, NULL, M_EINVAL);
	/* the row bound */
	report_one(r, z, day + 60, "192.0.2.2", "example.com", SPF_FAIL, NULL, 0);
	report_one(r, z, day + 70, "192.0.2.3", "example.com", SPF_FAIL, NULL, M_ELIMIT);
	assert_int_equal(dmarc_report_flush(r, db), 0);
	assert_int_equal(dmarc_report_rows(r), 0);
	/* a second flush adds to the stored counts */
	report_one(r, z, day + 80, "192.0.2.1", "example.com", SPF_PASS, "example.com", 0);
	assert_int_equal(dmarc_report_flush(r, db), 0);

	struct dmarc_report_meta m = {"mamori & co", "dmarc@mamori.example", NULL, "r-1"};
	struct buf xml;
	buf_init(&xml, 0);
	assert_int_equal(dmarc_report_render(db, &m, "example.org", day, 86400, &xml),
			 M_ENOTFOUND);
	assert_int_equal(dmarc_report_render(db, &m, "example.com", day, 86400, &xml), 0);
	const char *x = xml.p;
	assert_non_null(strstr(x, "<org_name>mamori &amp; co</org_name>"));
	assert_non_null(strstr(x, "<begin>1700006400</begin>"));
	assert_non_null(strstr(x, "<end>1700092799</end>"));
	assert_non_null(strstr(x, "<domain>example.com</domain>\n    <adkim>s</adkim>"));
	assert_non_null(strstr(x, "<p>reject</p>"));
	assert_non_null(strstr(x, "<source_ip>192.0.2.1</source_ip>\n      <count>3</count>"));
	assert_non_null(strstr(x, "<source_ip>2001:db8::1</source_ip>"));
	assert_non_null(strstr(x, "<disposition>reject</disposition>"));
	assert_non_null(strstr(x, "<domain>evil&lt;&amp;&gt;.example</domain>"));
	assert_non_null(strstr(x, "</feedback>\n"));
	/* our own report reads back through the feedback parser */
	struct dmarc_feedback fb;
	char why[128];
	assert_int_equal(dmarc_feedback_parse(xml.p, xml.len, &fb, why, sizeof(why)), 0);
	assert_string_equal(fb.org_name, "mamori & co");
	assert_string_equal(fb.domain, "example.com");
	assert_string_equal(fb.adkim, "s");
	assert_string_equal(fb.p, "reject");
	assert_int_equal(fb.pct, 100);
	assert_int_equal(fb.begin, 1700006400);
	assert_int_equal(fb.nrecord, 4);
	unsigned long long total = 0;
	for (size_t i = 0; i < fb.nrecord; i++)
		total += fb.record[i].count;
	assert_int_equal(total, 6);
	dmarc_feedback_fini(&fb);
	unsigned char *gz = NULL;
	size_t gzlen = 0;
	assert_int_equal(dmarc_report_gzip(xml.p, xml.len, &gz, &gzlen), 0);
	assert_true(gzlen > 18 && gz[0] == 0x1f && gz[1] == 0x8b);
	char *back = gunzip(gz, gzlen);
	assert_string_equal(back, xml.p);
	free(back);
	free(gz);
	buf_fini(&xml);
	dmarc_report_free(r);
	dmarc_report_free(NULL);
	sqlite3_close(db);
	mdns_free(z);
}

struct fb_case {
	const char *xml;
	int rc;
};

static const struct fb_case fb_cases[] = {
	{"<feedback/>", 0},
	{"\xef\xbb\xbf<?xml version=\"1.0\"?>\n<!-- c --><feedback></feedback>\n", 0},
	{"<rua:feedback xmlns:rua=\"urn:x\"><rua:version>1.0</rua:version></rua:feedback>", 0},
	{"<feedback><report_metadata><org_name>A &amp; B &#x263A; &#65;<![CDATA[<x>]]>"
	 "</org_name></report_metadata></feedback>", 0},
	{"", M_EPARSE},
	{"<report/>", M_EPARSE},
	{"<feedback><a></b></feedback>", M_EPARSE},
	{"<feedback>", M_EPARSE},
	{"<feedback></feedback><feedback/>", M_EPARSE},
	{"text<feedback/>", M_EPARSE},
	{"<!DOCTYPE feedback [<!ENTITY x \"y\">]><feedback>&x;</feedback>", M_EPARSE},
	{"<feedback>&bogus;</feedback>", M_EPARSE},
	{"<feedback>&#0;</feedback>", M_EPARSE},
	{"<feedback>&#x110000;</feedback>", M_EPARSE},
	{"<feedback a=\"1>", M_EPARSE},
	{"<feedback><!-- </feedback>", M_EPARSE},
	{"</feedback>", M_EPARSE},
};

static void test_feedback_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(fb_cases); i++) {
		struct dmarc_feedback f;
		char why[128];
		int rc = dmarc_feedback_parse(fb_cases[i].xml, strlen(fb_cases[i].xml), &f, why,
					      sizeof(why));
		dmarc_feedback_fini(&f);
		if (rc != fb_cases[i].rc)
			fail_msg("case %zu: rc %d (%s), want %d", i, rc, why, fb_cases[i].rc);
	}
	struct dmarc_feedback f;
	const char *x = "<feedback><report_metadata><org_name>A &amp; B &#x263A; &#65;"
			"<![CDATA[<x>]]></org_name></report_metadata></feedback>";
	assert_int_equal(dmarc_feedback_parse(x, strlen(x), &f, NULL, 0), 0);
	assert_string_equal(f.org_name, "A & B \xe2\x98\xba A<x>");
	dmarc_feedback_fini(&f);
	/* Found by fuzz_dmarc: a long number overflowed (UBSan); it saturates. */
	x = "<feedback><report_metadata><date_range><begin>96674334444444444444444</begin>"
	    "</date_range></report_metadata><policy_published><pct>99999999999999999999999"
	    "</pct></policy_published></feedback>";
	assert_int_equal(dmarc_feedback_parse(x, strlen(x), &f, NULL, 0), 0);
	assert_int_equal(f.begin, 9223372036854775807LL);
	assert_true(f.pct >= 0 && f.pct < 1000);
	dmarc_feedback_fini(&f);
	/* depth bound */
	char deep[2048];
	size_t n = (size_t)snprintf(deep, sizeof(deep), "<feedback>");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(deep + n, sizeof(deep) - n, "<a>");
	assert_int_equal(dmarc_feedback_parse(deep, n, &f, NULL, 0), M_ELIMIT);
	dmarc_feedback_fini(&f);
	/* more dkim results than kept: the extra ones are dropped, not overflowed */
	char many[8192];
	n = (size_t)snprintf(many, sizeof(many), "<feedback><record><auth_results>");
	for (int i = 0; i < 20; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n,
				      "<dkim><domain>d%d.example</domain><result>pass</result></dkim>", i);
	n += (size_t)snprintf(many + n, sizeof(many) - n, "</auth_results></record></feedback>");
	assert_int_equal(dmarc_feedback_parse(many, n, &f, NULL, 0), 0);
	assert_int_equal(f.nrecord, 1);
	assert_int_equal(f.record[0].ndkim, DMARC_FB_MAX_AUTH);
	assert_string_equal(f.record[0].dkim_res[7].domain, "d7.example");
	dmarc_feedback_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_org_domain),
		cmocka_unit_test(test_check_table),
		cmocka_unit_test(test_multiple_records),
		cmocka_unit_test(test_report),
		cmocka_unit_test(test_feedback_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
