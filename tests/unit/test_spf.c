/*
 * Unit tests for the SPF engine: the record parser (table), macro expansion
 * (the RFC 7208 7.4 examples and the error cases), and check_host() against
 * in-memory zones for the limits that are easy to get off by one: exactly
 * 10 DNS-querying terms pass and the 11th is a permerror (flat and through
 * include chains), 2 void lookups pass and the 3rd is a permerror (not in
 * RFC 4408 mode), the MX name limit, redirect loops, and temperror when a
 * name times out.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mail/mdns.h"
#include "mail/spf.h"

#define N(x) (sizeof(x) / sizeof((x)[0]))

/* ---- parser ---- */

struct parse_case {
	const char *rec;
	int rc;
	size_t nterm;
};

static const struct parse_case parse_cases[] = {
	{"v=spf1", 0, 0},
	{"v=spf1 ", 0, 0},
	{"v=spf1 -all", 0, 1},
	{"V=SPF1 ~ALL", 0, 1},
	{"v=spf1  a  mx -all ", 0, 3},
	{"v=spf1 a/24//64 mx:example.com/16 ptr ptr:example.org -all", 0, 5},
	{"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{i}.bl.example.com", 0, 3},
	{"v=spf1 include:_spf.example.com redirect=_spf.example.net", 0, 1},
	{"v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all", 0, 2},
	{"v=spf1 default=+", 0, 0},
	{"v=spf1 a:%{H}", 0, 1},
	{"v=spf1 a:foo:bar/baz.example.com", 0, 1},
	{"v=spf1 a:foo.example.xn--zckzah -all", 0, 2},
	{"v=spf1 exp=%{d}.exp.example.com -all", 0, 1},
	/* syntax errors anywhere are permerrors */
	{"v=spf10", -1, 0},
	{"spf1 -all", -1, 0},
	{"v=spf1 -all moo", -1, 0},
	{"v=spf1 -all.", -1, 0},
	{"v=spf1 -all:foo", -1, 0},
	{"v=spf1 -all/8", -1, 0},
	{"v=spf1 ptr/0", -1, 0},
	{"v=spf1 a/33", -1, 0},
	{"v=spf1 a//129", -1, 0},
	{"v=spf1 a/24/64", -1, 0},
	{"v=spf1 ip4:1.2.3.4/032", -1, 0},
	{"v=spf1 ip4:1.2.3.4//32", -1, 0},
	{"v=spf1 ip4:1.2.3", -1, 0},
	{"v=spf1 ip4:1.2.3.4:8080", -1, 0},
	{"v=spf1 ip4", -1, 0},
	{"v=spf1 ip6::CAFE::BABE", -1, 0},
	{"v=spf1 ip6:::1/129", -1, 0},
	{"v=spf1 a:", -1, 0},
	{"v=spf1 include", -1, 0},
	{"v=spf1 include:example.com/24", -1, 0},
	{"v=spf1 exists", -1, 0},
	{"v=spf1 a:foo-bar", -1, 0},
	{"v=spf1 a:111.222.33.44", -1, 0},
	{"v=spf1 a:museum.", -1, 0},
	{"v=spf1 a:example.-com", -1, 0},
	{"v=spf1 a:example.com:8080", -1, 0},
	{"v=spf1 redirect:example.com", -1, 0},
	{"v=spf1 redirect=a.example.com redirect=b.example.com", -1, 0},
	{"v=spf1 exp=a.example.com exp=b.example.com", -1, 0},
	{"v=spf1 exp=", -1, 0},
	{"v=spf1 exp=-all", -1, 0},
	{"v=spf1 exp=%{r}.example.com", -1, 0},
	{"v=spf1 1up=foo", -1, 0},
	{"v=spf1 =all", -1, 0},
	{"v=spf1 -foo=bar", -1, 0},
	{"v=spf1 foo=%abc", -1, 0},
	{"v=spf1 exists:%(ir).sbl.example.com", -1, 0},
	{"v=spf1 exists:foo%.sbl.example.com", -1, 0},
	{"v=spf1 a:%{a}.example.com", -1, 0},
	{"v=spf1 a:%{d0}.example.com", -1, 0},
	{"v=spf1 a:ctrl.example.com\rptr", -1, 0},
	{"v=spf1 \x80" "a -all", -1, 0},
};

static void test_parse_table(void **state)
{
	(void)state;
	struct spf_record *rec = malloc(sizeof(*rec));
	assert_non_null(rec);
	for (size_t i = 0; i < N(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		char why[128];
		int rc = spf_parse_record(c->rec, strlen(c->rec), rec, why, sizeof(why));
		if (rc != c->rc)
			fail_msg("case %zu \"%s\": rc %d (%s), want %d", i, c->rec, rc, why, c->rc);
		if (rc == 0 && rec->nterm != c->nterm)
			fail_msg("case %zu \"%s\": %zu terms, want %zu", i, c->rec, rec->nterm,
				 c->nterm);
	}
	/* an embedded NUL is a control character */
	assert_int_equal(spf_parse_record("v=spf1 a\0", 9, rec, NULL, 0), -1);
	free(rec);
}

static void test_parse_cidr(void **state)
{
	(void)state;
	struct spf_record rec;
	const char *r = "v=spf1 a/24//64 mx//0 ip4:10.0.0.0/8 ip6:2001:db8::/32";
	assert_int_equal(spf_parse_record(r, strlen(r), &rec, NULL, 0), 0);
	assert_int_equal(rec.nterm, 4);
	assert_int_equal(rec.term[0].cidr4, 24);
	assert_int_equal(rec.term[0].cidr6, 64);
	assert_int_equal(rec.term[1].cidr4, 32);
	assert_int_equal(rec.term[1].cidr6, 0);
	assert_int_equal(rec.term[2].cidr4, 8);
	assert_int_equal(rec.term[3].cidr6, 32);
	assert_int_equal(rec.term[0].qual, SPF_PASS);
}

static void test_parse_too_many_terms(void **state)
{
	(void)state;
	char buf[SPF_MAX_RECORD];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "v=spf1");
	for (int i = 0; i <= SPF_MAX_TERMS; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, " ?all");
	struct spf_record rec;
	assert_int_equal(spf_parse_record(buf, n, &rec, NULL, 0), -1);
}

/* ---- macros ---- */

struct macro_case {
	const char *in;
	int exp;
	long rc; /* -1 error, else 0 */
	const char *out;
};

static const struct macro_case macro_v4[] = {
	/* RFC 7208 7.4 */
	{"%{s}", 0, 0, "strong-bad@email.example.com"},
	{"%{o}", 0, 0, "email.example.com"},
	{"%{d}", 0, 0, "email.example.com"},
	{"%{d4}", 0, 0, "email.example.com"},
	{"%{d3}", 0, 0, "email.example.com"},
	{"%{d2}", 0, 0, "example.com"},
	{"%{d1}", 0, 0, "com"},
	{"%{dr}", 0, 0, "com.example.email"},
	{"%{d2r}", 0, 0, "example.email"},
	{"%{l}", 0, 0, "strong-bad"},
	{"%{l-}", 0, 0, "strong.bad"},
	{"%{lr}", 0, 0, "strong-bad"},
	{"%{lr-}", 0, 0, "bad.strong"},
	{"%{l1r-}", 0, 0, "strong"},
	{"%{ir}.%{v}._spf.%{d2}", 0, 0, "3.2.0.192.in-addr._spf.example.com"},
	{"%{lr-}.lp._spf.%{d2}", 0, 0, "bad.strong.lp._spf.example.com"},
	{"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", 0, 0,
	 "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
	{"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", 0, 0,
	 "3.2.0.192.in-addr.strong.lp._spf.example.com"},
	{"%{d2}.trusted-domains.example.net", 0, 0, "example.com.trusted-domains.example.net"},
	{"%{i}", 0, 0, "192.0.2.3"},
	{"%{h}", 0, 0, "mx.example.org"},
	{"%{p}", 0, 0, "unknown"},
	{"%%%_%-", 0, 0, "% %20"},
	{"%{S}", 0, 0, "strong-bad%40email.example.com"},
	{"%{l2r+-}", 0, 0, "bad.strong"},
	{"%{c}", 1, 0, "192.0.2.3"},
	{"%{r}", 1, 0, "mx.example.net"},
	{"%{t}", 1, 0, "1700000000"},
	{"%{d999}", 0, 0, "email.example.com"},
	/* errors */
	{"%{c}", 0, -1, NULL},
	{"%{x}", 0, -1, NULL},
	{"%{d0}", 0, -1, NULL},
	{"%", 0, -1, NULL},
	{"%a", 0, -1, NULL},
	{"%{d", 0, -1, NULL},
	{"%{d2x}", 0, -1, NULL},
};

static void env_init(struct spf_macro_env *e, int af, const char *ip)
{
	memset(e, 0, sizeof(*e));
	e->sender = "strong-bad@email.example.com";
	e->local = "strong-bad";
	e->odomain = "email.example.com";
	e->domain = "email.example.com";
	e->helo = "mx.example.org";
	e->receiver = "mx.example.net";
	e->af = af;
	e->now = 1700000000;
	assert_int_equal(inet_pton(af, ip, e->ip), 1);
}

static void test_macro_table(void **state)
{
	(void)state;
	struct spf_macro_env e;
	env_init(&e, AF_INET, "192.0.2.3");
	for (size_t i = 0; i < N(macro_v4); i++) {
		const struct macro_case *c = &macro_v4[i];
		char out[512];
		long n = spf_macro_expand(&e, c->in, strlen(c->in), c->exp, out, sizeof(out));
		int chk = spf_macro_check(c->in, strlen(c->in), c->exp);
		if (c->rc < 0) {
			if (n != -1 || chk != -1)
				fail_msg("case %zu \"%s\": expanded (%ld), want an error", i, c->in, n);
			continue;
		}
		if (n < 0 || chk != 0 || strcmp(out, c->out) != 0)
			fail_msg("case %zu \"%s\": got %ld \"%s\", want \"%s\"", i, c->in, n,
				 n >= 0 ? out : "", c->out);
	}
}

static void test_macro_ip6(void **state)
{
	(void)state;
	struct spf_macro_env e;
	env_init(&e, AF_INET6, "2001:db8::cb01");
	char out[512];
	const char *in = "%{ir}.%{v}._spf.%{d2}";
	assert_true(spf_macro_expand(&e, in, strlen(in), 0, out, sizeof(out)) > 0);
	assert_string_equal(out, "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2"
				 ".ip6._spf.example.com");
	in = "%{c}";
	assert_true(spf_macro_expand(&e, in, strlen(in), 1, out, sizeof(out)) > 0);
	assert_string_equal(out, "2001:db8::cb01");
}

static void test_macro_overflow(void **state)
{
	(void)state;
	struct spf_macro_env e;
	env_init(&e, AF_INET, "192.0.2.3");
	char out[16];
	const char *in = "%{s}%{s}%{s}";
	assert_int_equal(spf_macro_expand(&e, in, strlen(in), 0, out, sizeof(out)), -2);
	assert_true(strlen(out) < sizeof(out));
}

/* Found by fuzz_spf: a NUL or control byte in explanation text was copied
 * through, so the result's strlen disagreed with the returned length; and
 * a syntax error left the output unterminated. */
static void test_macro_control_bytes(void **state)
{
	(void)state;
	struct spf_macro_env e;
	env_init(&e, AF_INET, "192.0.2.3");
	char out[64];
	memset(out, 'x', sizeof(out));
	assert_int_equal(spf_macro_expand(&e, "ab\0cd", 5, 1, out, sizeof(out)), -1);
	assert_true(strlen(out) < sizeof(out));
	assert_int_equal(spf_macro_expand(&e, "a\tb", 3, 1, out, sizeof(out)), -1);
	assert_int_equal(spf_macro_expand(&e, "a b", 3, 0, out, sizeof(out)), -1);
	assert_int_equal(spf_macro_expand(&e, "a b", 3, 1, out, sizeof(out)), 3);
	memset(out, 'x', sizeof(out));
	assert_int_equal(spf_macro_expand(&e, "%{d}%{x}", 8, 0, out, sizeof(out)), -1);
	assert_true(strlen(out) < sizeof(out));
	assert_int_equal(spf_macro_check("a b %{c}", 8, 1), 0);
	assert_int_equal(spf_macro_check("a b", 3, 0), -1);
}

/* ---- check_host() on zones ---- */

static void add_txt(struct mdns *z, const char *name, const char *txt)
{
	assert_int_equal(mdns_zone_add_txt(z, name, txt, strlen(txt)), 0);
}

static enum spf_result run(struct mdns *z, const char *ip, const char *from,
			   unsigned flags, struct spf_outcome *out)
{
	struct spf_request rq = {0};
	rq.af = strchr(ip, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(rq.af, ip, rq.ip), 1);
	rq.helo = "mail.example.net";
	rq.mail_from = from;
	rq.now = 1700000000;
	rq.flags = flags;
	assert_int_equal(spf_check(z, &rq, out), 0);
	return out->result;
}

/* "v=spf1 a:n1.example.com ... a:nK.example.com ip4:198.51.100.1 -all" with
 * every nI holding an address that does not match (no void lookups). */
static struct mdns *flat_zone(int k)
{
	struct mdns *z = mdns_zone_new();
	char rec[2048], name[64];
	size_t n = (size_t)snprintf(rec, sizeof(rec), "v=spf1");
	for (int i = 1; i <= k; i++) {
		snprintf(name, sizeof(name), "n%d.example.com", i);
		mdns_zone_add_addr(z, name, "192.0.2.1");
		n += (size_t)snprintf(rec + n, sizeof(rec) - n, " a:%s", name);
	}
	snprintf(rec + n, sizeof(rec) - n, " ip4:198.51.100.1 -all");
	add_txt(z, "example.com", rec);
	return z;
}

static void test_limit_flat(void **state)
{
	(void)state;
	struct spf_outcome o;
	struct mdns *z = flat_zone(10);
	assert_int_equal(run(z, "198.51.100.1", "a@example.com", 0, &o), SPF_PASS);
	assert_int_equal(o.dns_lookups, 10);
	assert_string_equal(o.mechanism, "ip4:198.51.100.1");
	spf_outcome_fini(&o);
	mdns_free(z);

	z = flat_zone(11);
	assert_int_equal(run(z, "198.51.100.1", "a@example.com", 0, &o), SPF_PERMERROR);
	assert_int_equal(o.dns_lookups, 11);
	assert_non_null(strstr(o.reason, "10"));
	spf_outcome_fini(&o);
	mdns_free(z);
}

/* example.com includes c1, c1 includes c2 ... cK holds the ip4. */
static struct mdns *chain_zone(int k)
{
	struct mdns *z = mdns_zone_new();
	char rec[256], name[64];
	add_txt(z, "example.com", "v=spf1 include:c1.example.com -all");
	for (int i = 1; i <= k; i++) {
		snprintf(name, sizeof(name), "c%d.example.com", i);
		if (i < k)
			snprintf(rec, sizeof(rec), "v=spf1 include:c%d.example.com", i + 1);
		else
			snprintf(rec, sizeof(rec), "v=spf1 ip4:198.51.100.1");
		add_txt(z, name, rec);
	}
	return z;
}

static void test_limit_include_chain(void **state)
{
	(void)state;
	struct spf_outcome o;
	struct mdns *z = chain_zone(10); /* 10 includes */
	assert_int_equal(run(z, "198.51.100.1", "a@example.com", 0, &o), SPF_PASS);
	assert_int_equal(o.dns_lookups, 10);
	assert_string_equal(o.mechanism, "include:c1.example.com");
	spf_outcome_fini(&o);
	mdns_free(z);

	z = chain_zone(11);
	assert_int_equal(run(z, "198.51.100.1", "a@example.com", 0, &o), SPF_PERMERROR);
	spf_outcome_fini(&o);
	mdns_free(z);

	/* A redirect counts too: 9 a: terms + redirect + a in the target. */
	z = flat_zone(9);
	add_txt(z, "r.example.com", "v=spf1 a:n1.example.com a:n2.example.com "
				    "a:n3.example.com a:n4.example.com a:n5.example.com "
				    "a:n6.example.com a:n7.example.com a:n8.example.com "
				    "a:n9.example.com redirect=t.example.com");
	add_txt(z, "t.example.com", "v=spf1 ip4:198.51.100.2 a -all");
	mdns_zone_add_addr(z, "t.example.com", "198.51.100.9");
	assert_int_equal(run(z, "198.51.100.2", "a@r.example.com", 0, &o), SPF_PASS);
	assert_int_equal(o.dns_lookups, 10);
	spf_outcome_fini(&o);
	assert_int_equal(run(z, "198.51.100.3", "a@r.example.com", 0, &o), SPF_PERMERROR);
	spf_outcome_fini(&o);
	mdns_free(z);
}

static void test_void_lookups(void **state)
{
	(void)state;
	struct spf_outcome o;
	struct mdns *z = mdns_zone_new();
	add_txt(z, "two.example.com", "v=spf1 a:nx1.example.com mx:nx2.example.com ?all");
	add_txt(z, "three.example.com",
		"v=spf1 a:nx1.example.com mx:nx2.example.com exists:nx3.example.com ?all");
	mdns_zone_add_empty(z, "empty.example.com"); /* NODATA counts as void too */
	add_txt(z, "nodata.example.com",
		"v=spf1 a:empty.example.com a:empty.example.com a:empty.example.com ?all");
	assert_int_equal(run(z, "192.0.2.1", "a@two.example.com", 0, &o), SPF_NEUTRAL);
	assert_int_equal(o.void_lookups, 2);
	spf_outcome_fini(&o);
	assert_int_equal(run(z, "192.0.2.1", "a@three.example.com", 0, &o), SPF_PERMERROR);
	assert_int_equal(o.void_lookups, 3);
	spf_outcome_fini(&o);
	assert_int_equal(run(z, "192.0.2.1", "a@nodata.example.com", 0, &o), SPF_PERMERROR);
	spf_outcome_fini(&o);
	/* RFC 4408 had no void limit */
	assert_int_equal(run(z, "192.0.2.1", "a@three.example.com", SPF_F_RFC4408, &o),
			 SPF_NEUTRAL);
	spf_outcome_fini(&o);
	mdns_free(z);
}

static void test_mx_limit(void **state)
{
	(void)state;
	struct spf_outcome o;
	struct mdns *z = mdns_zone_new();
	char host[64];
	add_txt(z, "ten.example.com", "v=spf1 mx -all");
	add_txt(z, "eleven.example.com", "v=spf1 mx -all");
	for (int i = 0; i < 11; i++) {
		snprintf(host, sizeof(host), "h%d.example.com", i);
		mdns_zone_add_addr(z, host, i == 4 ? "192.0.2.44" : "192.0.2.1");
		if (i < 10)
			mdns_zone_add_mx(z, "ten.example.com", (unsigned)(20 - i), host);
		mdns_zone_add_mx(z, "eleven.example.com", (unsigned)(20 - i), host);
	}
	assert_int_equal(run(z, "192.0.2.9", "a@ten.example.com", 0, &o), SPF_FAIL);
	assert_int_equal(o.dns_lookups, 1);
	spf_outcome_fini(&o);
	/* 11 names, no match among the 10 most preferred: permerror */
	assert_int_equal(run(z, "192.0.2.9", "a@eleven.example.com", 0, &o), SPF_PERMERROR);
	spf_outcome_fini(&o);
	/* a match among the 10 most preferred stands */
	assert_int_equal(run(z, "192.0.2.44", "a@eleven.example.com", 0, &o), SPF_PASS);
	spf_outcome_fini(&o);
	mdns_free(z);
}

static void test_temperror(void **state)
{
	(void)state;
	struct spf_outcome o;
	struct mdns *z = mdns_zone_new();
	mdns_zone_set_timeout(z, "slow.example.com");
	add_txt(z, "a.example.com", "v=spf1 a:slow.example.com -all");
	add_txt(z, "inc.example.com", "v=spf1 include:slow.example.com -all");
	add_txt(z, "ex.example.com", "v=spf1 exists:slow.example.com -all");
	add_txt(z, "mx.example.com", "v=spf1 mx:slow.example.com -all");
	add_txt(z, "ok.example.com", "v=spf1 ip4:192.0.2.1 a:slow.example.com -all");
	static const char *const doms[] = {"a@slow.example.com", "a@a.example.com",
					   "a@inc.example.com", "a@ex.example.com",
					   "a@mx.example.com"};
	for (size_t i = 0; i < N(doms); i++) {
		if (run(z, "192.0.2.1", doms[i], 0, &o) != SPF_TEMPERROR)
			fail_msg("%s: %s, want temperror", doms[i], spf_result_str(o.result));
		assert_true(o.reason[0] != '\0');
		spf_outcome_fini(&o);
	}
	/* a match before the failing term decides */
	assert_int_equal(run(z, "192.0.2.1", "a@ok.example.com", 0, &o), SPF_PASS);
	spf_outcome_fini(&o);
	mdns_free(z);
}

static void test_records_and_errors(void **state)
{
	(void)state;
	struct spf_outcome o;
	struct mdns *z = mdns_zone_new();
	add_txt(z, "two.example.com", "v=spf1 -all");
	add_txt(z, "two.example.com", "v=spf1 +all");
	add_txt(z, "other.example.com", "google-site-verification=x");
	add_txt(z, "other.example.com", "v=spf1 ?all");
	add_txt(z, "loop.example.com", "v=spf1 redirect=loop.example.com");
	add_txt(z, "bad.example.com", "v=spf1 ip4:192.0.2.1 -all moo");
	add_txt(z, "inc.example.com", "v=spf1 include:none.example.com -all");
	mdns_zone_add_addr(z, "none.example.com", "192.0.2.1");
	assert_int_equal(run(z, "192.0.2.1", "a@two.example.com", 0, &o), SPF_PERMERROR);
	spf_outcome_fini(&o);
	assert_int_equal(run(z, "192.0.2.1", "a@other.example.com", 0, &o), SPF_NEUTRAL);
	spf_outcome_fini(&o);
	assert_int_equal(run(z, "192.0.2.1", "a@loop.example.com", 0, &o), SPF_PERMERROR);
	spf_outcome_fini(&o);
	unsigned long before = mdns_zone_queries(z);
	assert_int_equal(run(z, "192.0.2.1", "a@bad.example.com", 0, &o), SPF_PERMERROR);
	assert_int_equal(mdns_zone_queries(z) - before, 1); /* nothing evaluated */
	spf_outcome_fini(&o);
	assert_int_equal(run(z, "192.0.2.1", "a@inc.example.com", 0, &o), SPF_PERMERROR);
	spf_outcome_fini(&o);
	assert_int_equal(run(z, "192.0.2.1", "a@none.example.com", 0, &o), SPF_NONE);
	spf_outcome_fini(&o);
	assert_int_equal(run(z, "192.0.2.1", "a@nx.example.com", 0, &o), SPF_NONE);
	spf_outcome_fini(&o);
	assert_int_equal(run(z, "192.0.2.1", "a@singlelabel", 0, &o), SPF_NONE);
	spf_outcome_fini(&o);
	mdns_free(z);
}

static void test_explanation(void **state)
{
	(void)state;
	struct spf_outcome o;
	struct mdns *z = mdns_zone_new();
	add_txt(z, "example.com", "v=spf1 mx -all exp=why.%{d}");
	add_txt(z, "why.example.com", "%{c} is not allowed to send for %{o} (%{l})");
	add_txt(z, "noexp.example.com", "v=spf1 -all");
	assert_int_equal(run(z, "2001:db8::1", "Joe@example.com", 0, &o), SPF_FAIL);
	assert_string_equal(o.explanation, "2001:db8::1 is not allowed to send for example.com (Joe)");
	assert_int_equal(o.exp_default, 0);
	assert_string_equal(o.mechanism, "-all");
	spf_outcome_fini(&o);
	assert_int_equal(run(z, "192.0.2.7", "", 0, &o), SPF_NONE); /* postmaster@helo */
	assert_string_equal(o.domain, "mail.example.net");
	spf_outcome_fini(&o);
	/* the SMTP path with its angle brackets, and the null path */
	assert_int_equal(run(z, "192.0.2.7", "<x@noexp.example.com>", 0, &o), SPF_FAIL);
	assert_string_equal(o.domain, "noexp.example.com");
	spf_outcome_fini(&o);
	assert_int_equal(run(z, "192.0.2.7", "<>", 0, &o), SPF_NONE);
	assert_string_equal(o.domain, "mail.example.net");
	spf_outcome_fini(&o);
	assert_int_equal(run(z, "192.0.2.7", "x@noexp.example.com", 0, &o), SPF_FAIL);
	assert_int_equal(o.exp_default, 1);
	assert_non_null(o.explanation);
	spf_outcome_fini(&o);
	mdns_free(z);
}

static void test_helo_identity(void **state)
{
	(void)state;
	struct mdns *z = mdns_zone_new();
	add_txt(z, "mail.example.net", "v=spf1 a -all");
	mdns_zone_add_addr(z, "mail.example.net", "192.0.2.5");
	add_txt(z, "example.org", "v=spf1 -all");
	struct spf_request rq = {0};
	rq.af = AF_INET;
	inet_pton(AF_INET, "192.0.2.5", rq.ip);
	rq.helo = "mail.example.net";
	rq.mail_from = "user@example.org";
	struct spf_outcome o;
	assert_int_equal(spf_check_helo(z, &rq, &o), 0);
	assert_int_equal(o.result, SPF_PASS);
	assert_string_equal(o.domain, "mail.example.net");
	spf_outcome_fini(&o);
	assert_int_equal(spf_check(z, &rq, &o), 0);
	assert_int_equal(o.result, SPF_FAIL);
	spf_outcome_fini(&o);
	/* v4-mapped v6 is IPv4 */
	rq.af = AF_INET6;
	inet_pton(AF_INET6, "::ffff:192.0.2.5", rq.ip);
	assert_int_equal(spf_check_helo(z, &rq, &o), 0);
	assert_int_equal(o.result, SPF_PASS);
	spf_outcome_fini(&o);
	mdns_free(z);
}

static void test_result_names(void **state)
{
	(void)state;
	for (int r = SPF_NONE; r <= SPF_PERMERROR; r++)
		assert_int_equal(spf_result_parse(spf_result_str((enum spf_result)r)), r);
	assert_int_equal(spf_result_parse("bogus"), -1);
	assert_string_equal(spf_result_str((enum spf_result)99), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_cidr),
		cmocka_unit_test(test_parse_too_many_terms),
		cmocka_unit_test(test_macro_table),
		cmocka_unit_test(test_macro_ip6),
		cmocka_unit_test(test_macro_overflow),
		cmocka_unit_test(test_macro_control_bytes),
		cmocka_unit_test(test_limit_flat),
		cmocka_unit_test(test_limit_include_chain),
		cmocka_unit_test(test_void_lookups),
		cmocka_unit_test(test_mx_limit),
		cmocka_unit_test(test_temperror),
		cmocka_unit_test(test_records_and_errors),
		cmocka_unit_test(test_explanation),
		cmocka_unit_test(test_helo_identity),
		cmocka_unit_test(test_result_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
