/*
 * Unit tests of DDoS mitigation: prefixes and the allow-list overlap rule,
 * rule keys that parse back, the mitigation: section and its errors, the
 * exact text each back-end sends (gobgp argv, ExaBGP lines, BIRD's include
 * file, the nft script), GoBGP's RIB read back from its JSON, the
 * reconciliation diff, and the state machine over a real SQLite store with
 * the BIRD back-end and a stand-in birdc (a shell script in a temp dir):
 * hold time and hysteresis, the caps, the allow list, dry runs, failures
 * retried, manual durations, persistence across a reopen, and reconcile.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "ddos/mitig.h"
#include "ddos/mitig_int.h"

/* ---- helpers ---- */

static int load(const char *yaml, struct mitig_config *cfg, struct buf *err)
{
	struct conf_doc doc = { 0 };
	int r;

	buf_reset(err);
	r = conf_parse("t.yaml", yaml, strlen(yaml), &doc, err);
	if (r == 0)
		r = mitig_config_load(&doc, cfg, err);
	conf_doc_fini(&doc);
	buf_cstr(err);
	return r;
}

static struct mitig_rule rule(enum mitig_action a, const char *dst, uint8_t proto,
			      const char *ports, uint16_t lmin, uint16_t lmax, uint64_t rate)
{
	struct mitig_rule r;

	memset(&r, 0, sizeof(r));
	r.action = a;
	assert_int_equal(mitig_prefix_parse(dst, &r.dst), 0);
	r.proto = proto;
	for (const char *p = ports; p && *p;) {
		char *end;
		r.sport[r.nsport++] = (uint16_t)strtoul(p, &end, 10);
		p = *end ? end + 1 : end;
	}
	r.len_min = lmin;
	r.len_max = lmax;
	r.rate = rate;
	assert_int_equal(mitig_rule_check(&r, NULL, 0), 0);
	return r;
}

static struct mitig_route route(const struct mitig_config *cfg, struct mitig_rule r)
{
	struct mitig_route out;

	assert_int_equal(mitig_route_make(cfg, &r, &out), 0);
	return out;
}

static const char BGP_YAML[] =
	"mitigation:\n"
	"  backend: gobgp\n"
	"  gobgp_api: 127.0.0.1:50051\n"
	"  communities: [\"65535:666\", \"65001:666\"]\n"
	"  next_hop_v4: 192.0.2.1\n"
	"  next_hop_v6: \"100::1\"\n"
	"  allow: [198.51.100.0/24, \"2001:db8:ffff::/48\"]\n";

/* ---- prefixes and rules ---- */

static void test_prefixes(void **state)
{
	static const struct { const char *in; int ok; const char *out; } cases[] = {
		{ "10.1.9.9", 1, "10.1.9.9/32" },
		{ "10.1.9.9/32", 1, "10.1.9.9/32" },
		{ "203.0.113.0/24", 1, "203.0.113.0/24" },
		{ "203.0.113.1/24", 0, NULL },            /* host bits */
		{ "2001:db8::1", 1, "2001:db8::1/128" },
		{ "2001:db8::/48", 1, "2001:db8::/48" },
		{ "10.1.9.9/33", 0, NULL },
		{ "10.1.9.9/", 0, NULL },
		{ "10.1.9.9/-1", 0, NULL },
		{ "example.org", 0, NULL },
		{ "", 0, NULL },
	};
	struct mitig_prefix a, b;
	char s[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = mitig_prefix_parse(cases[i].in, &a);
		assert_int_equal(r == 0, cases[i].ok);
		if (cases[i].ok)
			assert_string_equal(mitig_prefix_str(&a, s, sizeof(s)), cases[i].out);
	}
	static const struct { const char *x, *y; int contains, overlaps; } rel[] = {
		{ "198.51.100.0/24", "198.51.100.7/32", 1, 1 },
		{ "198.51.100.7/32", "198.51.100.0/24", 0, 1 },
		{ "198.51.100.0/24", "198.51.101.0/24", 0, 0 },
		{ "198.51.0.0/16", "198.51.100.0/24", 1, 1 },
		{ "0.0.0.0/0", "10.0.0.0/8", 1, 1 },
		{ "2001:db8::/32", "2001:db8:1::1/128", 1, 1 },
		{ "2001:db8::/32", "10.0.0.0/8", 0, 0 },
		{ "10.0.0.0/9", "10.128.0.0/9", 0, 0 },
	};
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		assert_int_equal(mitig_prefix_parse(rel[i].x, &a), 0);
		assert_int_equal(mitig_prefix_parse(rel[i].y, &b), 0);
		assert_int_equal(mitig_prefix_contains(&a, &b), rel[i].contains);
		assert_int_equal(mitig_prefix_overlaps(&a, &b), rel[i].overlaps);
	}
	uint8_t addr[4] = { 10, 1, 9, 77 };
	assert_int_equal(mitig_prefix_set(&a, 4, addr, 24), 0);
	assert_string_equal(mitig_prefix_str(&a, s, sizeof(s)), "10.1.9.0/24");
	assert_int_equal(mitig_prefix_set(&a, 4, addr, 33), M_EINVAL);
}

static void test_rule_keys(void **state)
{
	struct mitig_rule r, back;
	char key[MITIG_KEY_MAX], why[128];

	(void)state;
	r = rule(MITIG_BLACKHOLE, "10.1.9.9", 17, "11211", 0, 0, 0);   /* match ignored */
	assert_int_equal(mitig_rule_key(&r, key, sizeof(key)), 0);
	assert_string_equal(key, "blackhole 10.1.9.9/32");
	assert_int_equal(r.proto, 0);
	assert_int_equal(r.nsport, 0);

	r = rule(MITIG_RATELIMIT, "10.1.9.8", 17, "11211,53,53", 100, 1500, 125000);
	assert_int_equal(mitig_rule_key(&r, key, sizeof(key)), 0);
	assert_string_equal(key, "filter 10.1.9.8/32 proto 17 sport 53,11211 length 100-1500");
	assert_int_equal(mitig_key_parse(key, &back), 0);
	assert_int_equal(back.action, MITIG_DISCARD);   /* the key holds no action */
	assert_int_equal(back.nsport, 2);
	assert_int_equal(back.sport[0], 53);
	assert_int_equal(back.sport[1], 11211);
	assert_int_equal(back.len_min, 100);
	assert_int_equal(back.len_max, 1500);
	assert_int_equal(back.proto, 17);

	r = rule(MITIG_DISCARD, "2001:db8::/64", 47, NULL, 0, 0, 0);
	assert_int_equal(mitig_rule_key(&r, key, sizeof(key)), 0);
	assert_string_equal(key, "filter 2001:db8::/64 proto 47");
	assert_int_equal(mitig_key_parse(key, &back), 0);
	assert_int_equal(back.dst.af, 6);
	assert_int_equal(back.dst.len, 64);

	assert_int_equal(mitig_key_parse("blackhole 10.1.9.9/32 proto 17", &back), M_EPARSE);
	assert_int_equal(mitig_key_parse("filter 10.1.9.9/32 sport 99999", &back), M_EPARSE);
	assert_int_equal(mitig_key_parse("filter 10.1.9.9/32 proto 17 junk", &back), M_EPARSE);
	assert_int_equal(mitig_key_parse("route 10.1.9.9/32", &back), M_EPARSE);

	/* Checks: ports need tcp/udp/sctp, a rate limit needs a rate. */
	memset(&r, 0, sizeof(r));
	r.action = MITIG_DISCARD;
	mitig_prefix_parse("10.1.9.9", &r.dst);
	r.nsport = 1;
	r.sport[0] = 11211;
	assert_int_equal(mitig_rule_check(&r, why, sizeof(why)), M_EINVAL);
	assert_non_null(strstr(why, "protocol"));
	r.proto = 17;
	r.action = MITIG_RATELIMIT;
	assert_int_equal(mitig_rule_check(&r, why, sizeof(why)), M_EINVAL);
	assert_non_null(strstr(why, "rate"));
	r.rate = 1000;
	r.len_min = 1600;
	r.len_max = 1500;
	assert_int_equal(mitig_rule_check(&r, why, sizeof(why)), M_EINVAL);

	enum mitig_action a;
	assert_int_equal(mitig_action_parse("flowspec-ratelimit", &a), 0);
	assert_int_equal(a, MITIG_RATELIMIT);
	assert_int_equal(mitig_action_parse("flowspec-discard", &a), 0);
	assert_int_equal(a, MITIG_DISCARD);
	assert_int_equal(mitig_action_parse("nuke", &a), M_EINVAL);
	uint8_t p;
	assert_int_equal(mitig_proto_parse("udp", &p), 0);
	assert_int_equal(p, 17);
	assert_int_equal(mitig_proto_parse("58", &p), 0);
	assert_int_equal(mitig_proto_parse("256", &p), M_EINVAL);
}

/* ---- configuration ---- */

static void test_config(void **state)
{
	struct mitig_config c;
	struct buf err;
	static const struct { const char *yaml, *msg; } bad[] = {
		{ "mitigation:\n  backend: quagga\n", "t.yaml: mitigation.backend: 'quagga': expected none, gobgp, exabgp, bird or nftables" },
		{ "mitigation:\n  communities: [\"65536:1\"]\n", "mitigation.communities: '65536:1'" },
		{ "mitigation:\n  communities: [\"666\"]\n", "mitigation.communities: '666'" },
		{ "mitigation:\n  backend: exabgp\n", "mitigation.exabgp_pipe" },
		{ "mitigation:\n  backend: bird\n", "mitigation.bird_include" },
		{ "mitigation:\n  backend: gobgp\n  communities: []\n", "at least one blackhole community" },
		{ "mitigation:\n  next_hop_v4: \"100::1\"\n", "mitigation.next_hop_v4" },
		{ "mitigation:\n  allow: [10.0.0.1/8]\n", "mitigation.allow: '10.0.0.1/8'" },
		{ "mitigation:\n  backend: nftables\n  nft_table: \"a b\"\n", "mitigation.nft_table" },
		{ "mitigation:\n  hold_time: forever\n", "t.yaml:2:14: expected a duration" },
		{ "mitigation:\n  bogus: 1\n", "unknown setting 'bogus' in section mitigation" },
	};

	(void)state;
	buf_init(&err, 4096);
	assert_int_equal(load("data_dir: x\n", &c, &err), 0);
	assert_int_equal(c.kind, MITIG_BE_NONE);
	assert_int_equal(c.hold_time, 300);
	assert_int_equal(c.max_blackholes, 100);
	assert_int_equal(c.ncomm, 1);
	assert_int_equal(c.comm[0], 65535u << 16 | 666);
	assert_int_equal(c.nh4.af, 4);
	assert_int_equal(c.nh6.af, 6);
	assert_int_equal(c.dry_run, 0);
	mitig_config_free(&c);

	assert_int_equal(load(BGP_YAML, &c, &err), 0);
	assert_int_equal(c.kind, MITIG_BE_GOBGP);
	assert_int_equal(c.ncomm, 2);
	assert_int_equal(c.comm[1], 65001u << 16 | 666);
	assert_int_equal(c.nallow, 2);
	assert_int_equal(c.allow_p[1].af, 6);
	{
		struct mitig_config copy;
		assert_int_equal(mitig_config_copy(&copy, &c), 0);
		mitig_config_free(&c);
		assert_int_equal(copy.nallow, 2);
		assert_string_equal(copy.gobgp_api, "127.0.0.1:50051");
		assert_string_equal(copy.communities.v[1], "65001:666");
		mitig_config_free(&copy);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = load(bad[i].yaml, &c, &err);
		assert_true(r < 0);
		if (!strstr(err.p, bad[i].msg))
			fail_msg("case %zu: got '%s', expected '%s'", i, err.p, bad[i].msg);
		mitig_config_free(&c);
	}
	buf_reset(&err);
	assert_int_equal(mitig_config_describe(&err), 0);
	buf_cstr(&err);
	assert_non_null(strstr(err.p, "mitigation:\n"));
	assert_non_null(strstr(err.p, "  hold_time: 300s\n"));
	buf_fini(&err);
}

/* ---- what each back-end sends ---- */

static void test_gobgp_argv(void **state)
{
	struct mitig_config c;
	struct mitig_argv a;
	struct buf err, out;

	(void)state;
	buf_init(&err, 4096);
	buf_init(&out, 4096);
	assert_int_equal(load(BGP_YAML, &c, &err), 0);
	struct {
		struct mitig_rule r;
		int withdraw;
		const char *want;
	} cases[] = {
		{ rule(MITIG_BLACKHOLE, "10.1.9.9", 0, NULL, 0, 0, 0), 0,
		  "gobgp -u 127.0.0.1 -p 50051 global rib add -a ipv4 10.1.9.9/32 nexthop 192.0.2.1"
		  " community 65535:666,65001:666" },
		{ rule(MITIG_BLACKHOLE, "10.1.9.9", 0, NULL, 0, 0, 0), 1,
		  "gobgp -u 127.0.0.1 -p 50051 global rib del -a ipv4 10.1.9.9/32" },
		{ rule(MITIG_BLACKHOLE, "2001:db8::9", 0, NULL, 0, 0, 0), 0,
		  "gobgp -u 127.0.0.1 -p 50051 global rib add -a ipv6 2001:db8::9/128 nexthop 100::1"
		  " community 65535:666,65001:666" },
		{ rule(MITIG_DISCARD, "10.1.9.9", 17, "11211", 0, 0, 0), 0,
		  "gobgp -u 127.0.0.1 -p 50051 global rib -a ipv4-flowspec add match destination"
		  " 10.1.9.9/32 protocol ==17 source-port ==11211 then discard" },
		{ rule(MITIG_RATELIMIT, "10.1.9.8", 17, "11211,53", 100, 1500, 125000), 0,
		  "gobgp -u 127.0.0.1 -p 50051 global rib -a ipv4-flowspec add match destination"
		  " 10.1.9.8/32 protocol ==17 source-port '==53 ==11211' packet-length '>=100&<=1500'"
		  " then rate-limit 125000" },
		{ rule(MITIG_RATELIMIT, "10.1.9.8", 17, "11211,53", 100, 1500, 125000), 1,
		  "gobgp -u 127.0.0.1 -p 50051 global rib -a ipv4-flowspec del match destination"
		  " 10.1.9.8/32 protocol ==17 source-port '==53 ==11211' packet-length '>=100&<=1500'" },
		{ rule(MITIG_DISCARD, "2001:db8::/64", 58, NULL, 1500, 1500, 0), 0,
		  "gobgp -u 127.0.0.1 -p 50051 global rib -a ipv6-flowspec add match destination"
		  " 2001:db8::/64 protocol ==58 packet-length ==1500 then discard" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mitig_route r = route(&c, cases[i].r);
		assert_int_equal(mitig_gobgp_argv(&c, &r, cases[i].withdraw, &a), 0);
		buf_reset(&out);
		assert_int_equal(mitig_argv_join(&a, &out), 0);
		assert_string_equal(out.p, cases[i].want);
		assert_null(a.v[a.n]);
	}
	/* Arguments are separate: the port list is one argv element. */
	{
		struct mitig_route r = route(&c, rule(MITIG_DISCARD, "10.1.9.8", 17, "53,11211", 0, 0, 0));
		assert_int_equal(mitig_gobgp_argv(&c, &r, 0, &a), 0);
		assert_string_equal(a.v[a.n - 3], "==53 ==11211");
	}
	mitig_config_free(&c);
	buf_fini(&err);
	buf_fini(&out);
}

static void test_exabgp_lines(void **state)
{
	struct mitig_config c;
	struct buf err, out;

	(void)state;
	buf_init(&err, 4096);
	buf_init(&out, 4096);
	assert_int_equal(load(BGP_YAML, &c, &err), 0);
	struct {
		struct mitig_rule r;
		int withdraw;
		const char *want;
	} cases[] = {
		{ rule(MITIG_BLACKHOLE, "10.1.99.9", 0, NULL, 0, 0, 0), 0,
		  "announce route 10.1.99.9/32 next-hop 192.0.2.1 community [65535:666 65001:666]\n" },
		{ rule(MITIG_BLACKHOLE, "10.1.99.9", 0, NULL, 0, 0, 0), 1,
		  "withdraw route 10.1.99.9/32 next-hop 192.0.2.1\n" },
		{ rule(MITIG_BLACKHOLE, "2001:db8::99", 0, NULL, 0, 0, 0), 0,
		  "announce route 2001:db8::99/128 next-hop 100::1 community [65535:666 65001:666]\n" },
		{ rule(MITIG_DISCARD, "10.1.99.8", 17, "123", 0, 0, 0), 0,
		  "announce flow route { match { destination 10.1.99.8/32; protocol =17; source-port =123; }"
		  " then { discard; } }\n" },
		{ rule(MITIG_RATELIMIT, "10.1.99.9", 17, "53,11211", 100, 1500, 125000), 0,
		  "announce flow route { match { destination 10.1.99.9/32; protocol =17;"
		  " source-port [ =53 =11211 ]; packet-length [ >=100&<=1500 ]; } then { rate-limit 125000; } }\n" },
		{ rule(MITIG_RATELIMIT, "10.1.99.9", 17, "53,11211", 100, 1500, 125000), 1,
		  "withdraw flow route { match { destination 10.1.99.9/32; protocol =17;"
		  " source-port [ =53 =11211 ]; packet-length [ >=100&<=1500 ]; } }\n" },
		{ rule(MITIG_DISCARD, "2001:db8::99", 17, "11211", 1500, 1500, 0), 0,
		  "announce flow route { match { destination 2001:db8::99/128/0; next-header =17;"
		  " source-port =11211; packet-length =1500; } then { discard; } }\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mitig_route r = route(&c, cases[i].r);
		buf_reset(&out);
		assert_int_equal(mitig_exabgp_line(&c, &r, cases[i].withdraw, &out), 0);
		buf_cstr(&out);
		assert_string_equal(out.p, cases[i].want);
	}
	mitig_config_free(&c);
	buf_fini(&err);
	buf_fini(&out);
}

static void test_bird_render(void **state)
{
	struct mitig_config c;
	struct buf err, out;
	struct mitig_route r[4];

	(void)state;
	buf_init(&err, 4096);
	buf_init(&out, 1 << 16);
	assert_int_equal(load(BGP_YAML, &c, &err), 0);
	r[0] = route(&c, rule(MITIG_BLACKHOLE, "10.1.9.9", 0, NULL, 0, 0, 0));
	r[1] = route(&c, rule(MITIG_BLACKHOLE, "2001:db8::9", 0, NULL, 0, 0, 0));
	r[2] = route(&c, rule(MITIG_RATELIMIT, "10.1.9.8", 17, "11211,53", 100, 1500, 125000));
	r[3] = route(&c, rule(MITIG_DISCARD, "2001:db8::9", 17, "11211", 0, 0, 0));
	assert_int_equal(mitig_bird_render(&c, r, 4, &out), 0);
	buf_cstr(&out);
	assert_string_equal(out.p,
		"# Written by mamori (DDoS mitigation, backend bird): 4 route(s).\n"
		"# Rewritten whole at every change; edits here are lost.\n"
		"protocol static mamori_rtbh4 {\n"
		"\tipv4;\n"
		"\troute 10.1.9.9/32 blackhole { bgp_community.add((65535,666));"
		" bgp_community.add((65001,666)); bgp_next_hop = 192.0.2.1; };\n"
		"}\n"
		"protocol static mamori_rtbh6 {\n"
		"\tipv6;\n"
		"\troute 2001:db8::9/128 blackhole { bgp_community.add((65535,666));"
		" bgp_community.add((65001,666)); bgp_next_hop = 100::1; };\n"
		"}\n"
		"protocol static mamori_flow4 {\n"
		"\tflow4 { table flowtab4; };\n"
		"\troute flow4 { dst 10.1.9.8/32; proto = 17; sport 53, 11211; length 100..1500; }"
		" { bgp_ext_community.add((generic, 0x80060000, 0x47f42400)); };\n"
		"}\n"
		"protocol static mamori_flow6 {\n"
		"\tflow6 { table flowtab6; };\n"
		"\troute flow6 { dst 2001:db8::9/128; next header = 17; sport 11211; }"
		" { bgp_ext_community.add((generic, 0x80060000, 0x0)); };\n"
		"}\n");
	/* No routes: the four protocols stay, empty, so BIRD drops the routes. */
	buf_reset(&out);
	assert_int_equal(mitig_bird_render(&c, NULL, 0, &out), 0);
	buf_cstr(&out);
	assert_non_null(strstr(out.p, "protocol static mamori_flow6 {\n\tflow6 { table flowtab6; };\n}\n"));
	mitig_config_free(&c);
	buf_fini(&err);
	buf_fini(&out);
}

static void test_nft_render(void **state)
{
	struct mitig_config c;
	struct buf err, out;
	struct mitig_route r[4];

	(void)state;
	buf_init(&err, 4096);
	buf_init(&out, 1 << 16);
	assert_int_equal(load("mitigation:\n  backend: nftables\n", &c, &err), 0);
	r[0] = route(&c, rule(MITIG_BLACKHOLE, "10.1.9.9", 0, NULL, 0, 0, 0));
	r[1] = route(&c, rule(MITIG_RATELIMIT, "10.1.9.8", 17, "11211,53", 0, 0, 125000));
	r[2] = route(&c, rule(MITIG_DISCARD, "2001:db8::9", 17, "123", 400, 1500, 0));
	r[3] = route(&c, rule(MITIG_DISCARD, "10.1.9.7", 47, NULL, 0, 0, 0));
	assert_int_equal(mitig_nft_render(&c, r, 4, &out), 0);
	buf_cstr(&out);
	assert_string_equal(out.p,
		"table inet mamori\n"
		"delete table inet mamori\n"
		"table inet mamori {\n"
		"\tchain mitigate {\n"
		"\t\ttype filter hook prerouting priority -300; policy accept;\n"
		"\t\tip daddr 10.1.9.9/32 drop comment \"blackhole 10.1.9.9/32\"\n"
		"\t\tip daddr 10.1.9.8/32 udp sport { 53, 11211 } limit rate over 125000 bytes/second"
		" drop comment \"filter 10.1.9.8/32 proto 17 sport 53,11211\"\n"
		"\t\tip6 daddr 2001:db8::9/128 udp sport 123 meta length 400-1500 drop"
		" comment \"filter 2001:db8::9/128 proto 17 sport 123 length 400-1500\"\n"
		"\t\tip daddr 10.1.9.7/32 meta l4proto 47 drop comment \"filter 10.1.9.7/32 proto 47\"\n"
		"\t}\n"
		"}\n");
	/* nftables has no next hop or community: the fingerprint says so. */
	assert_string_equal(r[0].fp, "blackhole 10.1.9.9/32 community");
	mitig_config_free(&c);
	buf_fini(&err);
	buf_fini(&out);
}

/* ---- reading GoBGP's RIB ---- */

static void test_gobgp_parse(void **state)
{
	/* Captured from gobgpd 3.10 (`gobgp global rib -a ... -j`). */
	static const char uni[] =
		"{\"10.1.9.9/32\":[{\"nlri\":{\"prefix\":\"10.1.9.9/32\"},\"age\":1795657423,\"best\":true,"
		"\"attrs\":[{\"type\":1,\"value\":2},{\"type\":8,\"communities\":[4294902426,4259906202]},"
		"{\"type\":3,\"nexthop\":\"192.0.2.1\"}],\"stale\":false}],"
		"\"10.1.9.10/32\":[{\"nlri\":{\"prefix\":\"10.1.9.10/32\"},\"age\":1,\"best\":true,"
		"\"attrs\":[{\"type\":1,\"value\":2},{\"type\":3,\"nexthop\":\"192.0.2.9\"}],\"stale\":false}],"
		"\"10.1.9.11/32\":[{\"nlri\":{\"prefix\":\"10.1.9.11/32\"},\"age\":1,\"best\":true,"
		"\"neighbor-ip\":\"192.0.2.77\",\"attrs\":[{\"type\":8,\"communities\":[4294902426]}],"
		"\"stale\":false}]}\n";
	static const char flow[] =
		"{\"[destination: 10.1.9.8/32][protocol: ==udp][source-port: ==11211 ==53][packet-length: "
		"\\u003e=100\\u0026\\u003c=1500]\":[{\"nlri\":{\"value\":[{\"type\":1,\"value\":{\"prefix\":"
		"\"10.1.9.8/32\"}},{\"type\":3,\"value\":[{\"op\":129,\"value\":17}]},{\"type\":6,\"value\":"
		"[{\"op\":17,\"value\":11211},{\"op\":129,\"value\":53}]},{\"type\":10,\"value\":[{\"op\":3,"
		"\"value\":100},{\"op\":213,\"value\":1500}]}]},\"age\":1795657423,\"best\":true,\"attrs\":"
		"[{\"type\":1,\"value\":2},{\"type\":16,\"value\":[{\"type\":128,\"subtype\":6,\"as\":0,"
		"\"rate\":125000}]}],\"stale\":false}],"
		"\"[destination: 2001:db8::9/128/0][protocol: ==udp][source-port: ==11211]\":[{\"nlri\":"
		"{\"value\":[{\"type\":1,\"value\":{\"prefix\":\"2001:db8::9/128\"},\"offset\":0},{\"type\":3,"
		"\"value\":[{\"op\":129,\"value\":17}]},{\"type\":6,\"value\":[{\"op\":145,\"value\":11211}]}]},"
		"\"age\":1,\"best\":true,\"attrs\":[{\"type\":16,\"value\":[{\"type\":128,\"subtype\":6,"
		"\"as\":0,\"rate\":0}]}],\"stale\":false}],"
		"\"[destination: 10.1.9.6/32][protocol: ==tcp][destination-port: ==80]\":[{\"nlri\":"
		"{\"value\":[{\"type\":1,\"value\":{\"prefix\":\"10.1.9.6/32\"}},{\"type\":3,\"value\":"
		"[{\"op\":129,\"value\":6}]},{\"type\":5,\"value\":[{\"op\":129,\"value\":80}]}]},\"age\":1,"
		"\"best\":true,\"attrs\":[{\"type\":16,\"value\":[{\"type\":128,\"subtype\":6,\"as\":0,"
		"\"rate\":0}]}],\"stale\":false}]}";
	struct mitig_config c;
	struct mitig_route *r = NULL;
	struct buf err;
	size_t n = 0, foreign = 0;

	(void)state;
	buf_init(&err, 4096);
	assert_int_equal(load(BGP_YAML, &c, &err), 0);
	assert_int_equal(mitig_gobgp_parse_rib(&c, uni, strlen(uni), 0, &r, &n, &foreign), 0);
	assert_int_equal(n, 1);          /* no community: not ours; learned: skipped */
	assert_int_equal(foreign, 1);
	assert_string_equal(r[0].key, "blackhole 10.1.9.9/32");
	{
		/* Same fingerprint as what mamori would announce: unchanged. */
		struct mitig_route want = route(&c, rule(MITIG_BLACKHOLE, "10.1.9.9", 0, NULL, 0, 0, 0));
		assert_string_equal(r[0].fp, want.fp);
		assert_string_equal(want.fp, "blackhole 10.1.9.9/32 next-hop 192.0.2.1 community 65001:666,65535:666");
	}
	assert_int_equal(mitig_gobgp_parse_rib(&c, flow, strlen(flow), 1, &r, &n, &foreign), 0);
	assert_int_equal(n, 3);
	assert_int_equal(foreign, 1);    /* a destination-port rule is not mamori's */
	assert_string_equal(r[1].key, "filter 10.1.9.8/32 proto 17 sport 53,11211 length 100-1500");
	assert_string_equal(r[1].fp, "filter 10.1.9.8/32 proto 17 sport 53,11211 length 100-1500"
				     " then rate-limit 125000");
	assert_string_equal(r[2].fp, "filter 2001:db8::9/128 proto 17 sport 11211 then discard");
	free(r);
	r = NULL;
	n = 0;
	assert_int_equal(mitig_gobgp_parse_rib(&c, "", 0, 0, &r, &n, &foreign), 0);
	assert_int_equal(mitig_gobgp_parse_rib(&c, "{}\n", 3, 0, &r, &n, &foreign), 0);
	assert_int_equal(n, 0);
	assert_int_equal(mitig_gobgp_parse_rib(&c, "[1,", 3, 0, &r, &n, &foreign), M_EPARSE);
	free(r);
	mitig_config_free(&c);
	buf_fini(&err);
}

/* ---- the diff ---- */

static void test_diff(void **state)
{
	struct mitig_config c;
	struct buf err;
	struct mitig_route want[3], have[4];
	struct mitig_diff d;

	(void)state;
	buf_init(&err, 4096);
	assert_int_equal(load(BGP_YAML, &c, &err), 0);
	want[0] = route(&c, rule(MITIG_BLACKHOLE, "10.1.9.1", 0, NULL, 0, 0, 0));   /* in place */
	want[1] = route(&c, rule(MITIG_BLACKHOLE, "10.1.9.2", 0, NULL, 0, 0, 0));   /* missing */
	want[2] = route(&c, rule(MITIG_RATELIMIT, "10.1.9.3", 17, "53", 0, 0, 1000)); /* stale */
	have[0] = want[0];
	have[1] = route(&c, rule(MITIG_DISCARD, "10.1.9.3", 17, "53", 0, 0, 0));
	have[2] = route(&c, rule(MITIG_BLACKHOLE, "10.1.9.66", 0, NULL, 0, 0, 0));  /* stray */
	have[3] = have[2];                                                          /* twice */
	assert_int_equal(mitig_diff_compute(want, 3, have, 4, &d), 0);
	assert_int_equal(d.unchanged, 1);
	assert_int_equal(d.nannounce, 2);
	assert_string_equal(d.announce[0].key, "blackhole 10.1.9.2/32");
	assert_string_equal(d.announce[1].fp, "filter 10.1.9.3/32 proto 17 sport 53 then rate-limit 1000");
	assert_int_equal(d.nwithdraw, 1);
	assert_string_equal(d.withdraw[0].key, "blackhole 10.1.9.66/32");
	mitig_diff_fini(&d);
	assert_int_equal(mitig_diff_compute(NULL, 0, NULL, 0, &d), 0);
	assert_int_equal(d.nannounce + d.nwithdraw + d.unchanged, 0);
	mitig_diff_fini(&d);
	assert_int_equal(mitig_diff_compute(want, 3, NULL, 0, &d), 0);
	assert_int_equal(d.nannounce, 3);
	mitig_diff_fini(&d);
	mitig_config_free(&c);
	buf_fini(&err);
}

/* ---- external commands ---- */

static void test_exec(void **state)
{
	char *cat[] = { "cat", NULL };
	char *sleeper[] = { "sleep", "5", NULL };
	char *missing[] = { "mamori-no-such-command", NULL };
	char *failing[] = { "sh", "-c", "echo oops >&2; exit 3", NULL };
	struct buf out, err;
	int64_t t0;

	(void)state;
	buf_init(&out, 0);
	buf_init(&err, 0);
	assert_int_equal(mitig_exec(cat, "table inet x\n", 13, 5000, &out, &err), 0);
	assert_string_equal(out.p, "table inet x\n");
	buf_reset(&err);
	t0 = clock_mono_us();
	assert_int_equal(mitig_exec(sleeper, NULL, 0, 200, NULL, &err), M_EIO);
	assert_true(clock_mono_us() - t0 < 2000000);
	assert_non_null(strstr(err.p, "killed"));
	buf_reset(&err);
	assert_int_equal(mitig_exec(missing, NULL, 0, 1000, NULL, &err), M_ENOTFOUND);
	assert_non_null(strstr(err.p, "command not found"));
	buf_reset(&err);
	assert_int_equal(mitig_exec(failing, NULL, 0, 5000, NULL, &err), M_EIO);
	assert_string_equal(err.p, "oops");
	buf_fini(&out);
	buf_fini(&err);
}

/* ---- the state machine, over SQLite and the BIRD back-end ---- */

struct lab {
	char dir[64];
	char db[128], include[128], birdc[128], yaml[2048];
	struct mitig_config cfg;
	struct mitig *m;
};

static void write_birdc(struct lab *l, int ok)
{
	FILE *f = fopen(l->birdc, "w");
	assert_non_null(f);
	/* Stands in for birdc: BIRD's answer on standard output. */
	fprintf(f, ok ? "#!/bin/sh\necho 'BIRD 2.0.12 ready.'\necho Reconfigured\n"
		      : "#!/bin/sh\necho 'BIRD 2.0.12 ready.'\necho 'syntax error, unexpected GARBAGE'\n");
	fclose(f);
	chmod(l->birdc, 0755);
}

static void lab_open(struct lab *l, const char *extra)
{
	struct buf err;

	buf_init(&err, 4096);
	snprintf(l->yaml, sizeof(l->yaml),
		 "mitigation:\n  backend: bird\n  bird_include: %s\n  bird_socket: /nonexistent.ctl\n"
		 "  birdc_command: %s\n  allow: [198.51.100.7/32]\n%s", l->include, l->birdc,
		 extra ? extra : "");
	assert_int_equal(load(l->yaml, &l->cfg, &err), 0);
	l->m = mitig_new(&l->cfg, l->db);
	assert_non_null(l->m);
	buf_fini(&err);
}

static void lab_close(struct lab *l)
{
	mitig_free(l->m);
	mitig_config_free(&l->cfg);
	l->m = NULL;
}

static struct lab *lab_new(const char *extra)
{
	struct lab *l = calloc(1, sizeof(*l));

	snprintf(l->dir, sizeof(l->dir), "/tmp/mamori-mitig-XXXXXX");
	assert_non_null(mkdtemp(l->dir));
	snprintf(l->db, sizeof(l->db), "%s/mitigation.db", l->dir);
	snprintf(l->include, sizeof(l->include), "%s/routes.conf", l->dir);
	snprintf(l->birdc, sizeof(l->birdc), "%s/birdc", l->dir);
	write_birdc(l, 1);
	lab_open(l, extra);
	return l;
}

static void lab_free(struct lab *l)
{
	char cmd[256];

	lab_close(l);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", l->dir);
	assert_int_equal(system(cmd), 0);
	free(l);
}

static char *slurp(const char *path)
{
	static char text[1 << 16];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	text[0] = '\0';
	if (f) {
		n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
	}
	text[n] = '\0';
	return text;
}

static int announced(struct lab *l, const char *needle)
{
	return strstr(slurp(l->include), needle) != NULL;
}

static struct mitig_request req_of(struct mitig_rule r, const char *attack)
{
	struct mitig_request q;

	memset(&q, 0, sizeof(q));
	q.rule = r;
	snprintf(q.attack_id, sizeof(q.attack_id), "%s", attack ? attack : "");
	snprintf(q.reason, sizeof(q.reason), "memcached amplification");
	q.manual = attack == NULL;
	return q;
}

static struct mitig_entry get(struct lab *l, const char *key)
{
	struct mitig_entry *e = NULL, out;
	size_t n = 0;

	memset(&out, 0, sizeof(out));
	assert_int_equal(mitig_list(l->m, &e, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(e[i].key, key) == 0)
			out = e[i];
	free(e);
	return out;
}

static size_t count(struct lab *l)
{
	struct mitig_entry *e = NULL;
	size_t n = 0;

	assert_int_equal(mitig_list(l->m, &e, &n), 0);
	free(e);
	return n;
}

static void test_hold_and_hysteresis(void **state)
{
	struct lab *l = lab_new(NULL);
	struct mitig_result res;
	struct mitig_request q = req_of(rule(MITIG_BLACKHOLE, "10.1.9.9", 0, NULL, 0, 0, 0), "A1");
	struct mitig_entry e;
	size_t n;
	const int64_t t = 1000000;

	(void)state;
	assert_int_equal(mitig_start(l->m, &q, t, &res), 0);
	assert_int_equal(res.outcome, MITIG_O_ANNOUNCED);
	assert_string_equal(res.key, "blackhole 10.1.9.9/32");
	assert_true(announced(l, "route 10.1.9.9/32 blackhole"));
	e = get(l, "blackhole 10.1.9.9/32");
	assert_int_equal(e.state, MITIG_ACTIVE);
	assert_int_equal(e.announced, 1);
	assert_int_equal(e.expires, 0);

	/* The attack ends: hold for 300 s. */
	assert_int_equal(mitig_end(l->m, "A1", t + 10, &n), 0);
	assert_int_equal(n, 1);
	e = get(l, "blackhole 10.1.9.9/32");
	assert_int_equal(e.state, MITIG_HOLD);
	assert_int_equal(e.expires, t + 310);
	assert_int_equal(mitig_tick(l->m, t + 309), 0);
	assert_true(announced(l, "route 10.1.9.9/32 blackhole"));

	/* It comes back during the hold: kept, nothing re-sent, no expiry. */
	unlink(l->include);
	assert_int_equal(mitig_start(l->m, &q, t + 200, &res), 0);
	assert_int_equal(res.outcome, MITIG_O_KEPT);
	assert_false(announced(l, "10.1.9.9"));   /* not rewritten: no flap */
	e = get(l, "blackhole 10.1.9.9/32");
	assert_int_equal(e.state, MITIG_ACTIVE);
	assert_int_equal(e.expires, 0);
	assert_int_equal(mitig_tick(l->m, t + 400), 0);
	assert_int_equal(count(l), 1);

	/* Ends again; withdrawn exactly at the end of the hold. */
	assert_int_equal(mitig_end(l->m, "A1", t + 500, &n), 0);
	assert_int_equal(mitig_tick(l->m, t + 799), 0);
	assert_int_equal(count(l), 1);
	assert_int_equal(mitig_tick(l->m, t + 800), 0);
	assert_int_equal(count(l), 0);
	assert_false(announced(l, "10.1.9.9"));
	assert_true(announced(l, "protocol static mamori_rtbh4"));
	/* An unknown attack ends nothing. */
	assert_int_equal(mitig_end(l->m, "nope", t, &n), 0);
	assert_int_equal(n, 0);
	lab_free(l);
}

/* SIGHUP: the policy changes, what is announced stays (nothing is sent
 * again); the back-end stays as it runs. A release withdraws at once,
 * held or active, without the hold. */
static void test_reload_and_release(void **state)
{
	struct lab *l = lab_new(NULL);
	struct mitig_result res;
	struct mitig_request a = req_of(rule(MITIG_BLACKHOLE, "10.1.9.9", 0, NULL, 0, 0, 0), "A1");
	struct mitig_request b = req_of(rule(MITIG_BLACKHOLE, "10.1.9.10", 0, NULL, 0, 0, 0), "A2");
	struct mitig_request c = req_of(rule(MITIG_BLACKHOLE, "10.2.0.1", 0, NULL, 0, 0, 0), "A3");
	struct mitig_config nc;
	struct buf err;
	struct mitig_entry e;
	size_t n;
	const int64_t t = 1000000;
	char yaml[2048];

	(void)state;
	buf_init(&err, 4096);
	assert_int_equal(mitig_start(l->m, &a, t, &res), 0);
	assert_int_equal(mitig_start(l->m, &b, t, &res), 0);
	assert_true(announced(l, "route 10.1.9.9/32 blackhole"));
	/* A new hold time, allow list and back-end address; the back-end
	 * itself (bird, its include file) stays. */
	snprintf(yaml, sizeof(yaml),
		 "mitigation:\n  backend: bird\n  bird_include: /nonexistent/other.conf\n"
		 "  birdc_command: %s\n  hold_time: 20s\n  allow: [10.2.0.0/16]\n", l->birdc);
	assert_int_equal(load(yaml, &nc, &err), 0);
	unlink(l->include);
	assert_int_equal(mitig_reload(l->m, &nc), 0);
	mitig_config_free(&nc);
	assert_false(announced(l, "10.1.9.9"));   /* nothing re-sent */
	assert_int_equal(count(l), 2);
	/* The new allow list refuses; the old one (198.51.100.7) is gone. */
	assert_int_equal(mitig_start(l->m, &c, t, &res), M_EINVAL);
	assert_int_equal(res.outcome, MITIG_O_REFUSED);
	/* The new hold time. */
	assert_int_equal(mitig_end(l->m, "A1", t + 10, &n), 0);
	e = get(l, "blackhole 10.1.9.9/32");
	assert_int_equal(e.expires, t + 30);
	/* Released: the held one and the active one go now, written to the
	 * include file the manager started with. */
	assert_int_equal(mitig_release(l->m, "A1", t + 11, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(mitig_release(l->m, "A2", t + 11, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(count(l), 0);
	assert_true(announced(l, "protocol static mamori_rtbh4"));
	assert_false(announced(l, "10.1.9."));
	assert_int_equal(mitig_release(l->m, "nope", t, &n), 0);
	assert_int_equal(n, 0);
	buf_fini(&err);
	lab_free(l);
}

static void test_hold_zero_and_manual(void **state)
{
	struct lab *l = lab_new("  hold_time: 0\n");
	struct mitig_result res;
	struct mitig_request q = req_of(rule(MITIG_DISCARD, "10.1.9.9", 17, "11211", 0, 0, 0), "A2");
	struct mitig_request man = req_of(rule(MITIG_BLACKHOLE, "10.1.9.8", 0, NULL, 0, 0, 0), NULL);
	struct mitig_prefix p;
	size_t n;

	(void)state;
	assert_int_equal(mitig_start(l->m, &q, 100, &res), 0);
	assert_true(announced(l, "route flow4 { dst 10.1.9.9/32; proto = 17; sport 11211; }"));
	assert_int_equal(mitig_end(l->m, "A2", 200, &n), 0);
	assert_int_equal(count(l), 0);             /* no hold: withdrawn at once */
	assert_false(announced(l, "10.1.9.9"));

	/* Manual, 60 s: an attack's end does not touch it; its duration does. */
	man.duration = 60;
	assert_int_equal(mitig_start(l->m, &man, 1000, &res), 0);
	q.rule = man.rule;
	assert_int_equal(mitig_start(l->m, &q, 1001, &res), 0);   /* the detector agrees */
	assert_int_equal(res.outcome, MITIG_O_KEPT);
	assert_int_equal(mitig_end(l->m, "A2", 1002, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(mitig_tick(l->m, 1059), 0);
	assert_int_equal(count(l), 1);
	assert_int_equal(mitig_tick(l->m, 1060), 0);
	assert_int_equal(count(l), 0);

	/* Withdraw by target and action. */
	man.duration = 0;
	assert_int_equal(mitig_start(l->m, &man, 2000, &res), 0);
	q = req_of(rule(MITIG_DISCARD, "10.1.9.8", 17, "53", 0, 0, 0), NULL);
	assert_int_equal(mitig_start(l->m, &q, 2000, &res), 0);
	mitig_prefix_parse("10.1.9.8", &p);
	assert_int_equal(mitig_withdraw(l->m, NULL, &p, MITIG_DISCARD, 2001, &n), 0);
	assert_int_equal(n, 1);
	assert_true(announced(l, "route 10.1.9.8/32 blackhole"));
	assert_false(announced(l, "dst 10.1.9.8/32"));
	assert_int_equal(mitig_withdraw(l->m, "blackhole 10.1.9.8/32", NULL, 0, 2002, &n), 0);
	assert_int_equal(mitig_withdraw(l->m, "blackhole 10.1.9.8/32", NULL, 0, 2003, &n), M_ENOTFOUND);
	assert_int_equal(count(l), 0);
	lab_free(l);
}

static void test_caps_and_allow_list(void **state)
{
	struct lab *l = lab_new("  max_blackholes: 2\n  max_mitigations: 4\n");
	struct mitig_result res;
	struct mitig_request q;
	const char *bh[] = { "10.1.9.1", "10.1.9.2", "10.1.9.3" };

	(void)state;
	for (int i = 0; i < 3; i++) {
		q = req_of(rule(MITIG_BLACKHOLE, bh[i], 0, NULL, 0, 0, 0), "A3");
		assert_int_equal(mitig_start(l->m, &q, 10, &res), i < 2 ? 0 : M_ELIMIT);
	}
	assert_int_equal(res.outcome, MITIG_O_REFUSED);
	assert_non_null(strstr(res.detail, "max_blackholes"));
	assert_false(announced(l, "10.1.9.3"));
	/* A blackhole already in place is not counted twice. */
	q = req_of(rule(MITIG_BLACKHOLE, "10.1.9.1", 0, NULL, 0, 0, 0), "A4");
	assert_int_equal(mitig_start(l->m, &q, 11, &res), 0);
	assert_int_equal(res.outcome, MITIG_O_KEPT);
	/* FlowSpec is not a blackhole: accepted, up to max_mitigations. */
	q = req_of(rule(MITIG_DISCARD, "10.1.9.3", 17, "11211", 0, 0, 0), "A3");
	assert_int_equal(mitig_start(l->m, &q, 12, &res), 0);
	q = req_of(rule(MITIG_DISCARD, "10.1.9.4", 17, "11211", 0, 0, 0), "A3");
	assert_int_equal(mitig_start(l->m, &q, 12, &res), 0);
	q = req_of(rule(MITIG_DISCARD, "10.1.9.5", 17, "11211", 0, 0, 0), "A3");
	assert_int_equal(mitig_start(l->m, &q, 12, &res), M_ELIMIT);
	assert_non_null(strstr(res.detail, "max_mitigations"));

	/* Allow list (198.51.100.7/32): a blackhole that overlaps is refused,
	 * a filter on a wider prefix is not, one within it is. */
	q = req_of(rule(MITIG_BLACKHOLE, "198.51.100.0/24", 0, NULL, 0, 0, 0), "A5");
	assert_int_equal(mitig_start(l->m, &q, 13, &res), M_EINVAL);
	assert_string_equal(res.detail, "198.51.100.0/24 overlaps the allow-listed 198.51.100.7/32");
	q = req_of(rule(MITIG_DISCARD, "198.51.100.7", 17, "11211", 0, 0, 0), "A5");
	assert_int_equal(mitig_start(l->m, &q, 13, &res), M_EINVAL);
	assert_non_null(strstr(res.detail, "is within the allow-listed"));
	/* Wider than a /24 blackhole. */
	q = req_of(rule(MITIG_BLACKHOLE, "10.0.0.0/16", 0, NULL, 0, 0, 0), "A5");
	assert_int_equal(mitig_withdraw(l->m, "blackhole 10.1.9.2/32", NULL, 0, 14, &(size_t){ 0 }), 0);
	assert_int_equal(mitig_start(l->m, &q, 14, &res), M_EINVAL);
	assert_non_null(strstr(res.detail, "wider than"));
	lab_close(l);
	/* After the others' withdrawal the filter on the /24 fits. */
	lab_open(l, "  max_mitigations: 10\n");
	q = req_of(rule(MITIG_DISCARD, "198.51.100.0/24", 17, "11211", 0, 0, 0), "A5");
	assert_int_equal(mitig_start(l->m, &q, 15, &res), 0);
	lab_free(l);
}

/* An attack whose vector changed: its new filter replaces the old one
 * (withdrawn in the same transaction, after the new one is sent), its
 * blackhole stays, and what is desired after a restart is the new rule
 * alone: reconciliation puts back what the store holds. The replaced rule
 * does not count against max_mitigations. */
static void test_replace(void **state)
{
	struct lab *l = lab_new("  max_mitigations: 2\n");
	struct mitig_result res;
	struct mitig_request q;
	struct mitig_entry e;

	(void)state;
	q = req_of(rule(MITIG_DISCARD, "10.1.9.9", 17, NULL, 0, 0, 0), "A7");
	assert_int_equal(mitig_start(l->m, &q, 10, &res), 0);
	q = req_of(rule(MITIG_BLACKHOLE, "10.1.9.9", 0, NULL, 0, 0, 0), "A7");
	assert_int_equal(mitig_start(l->m, &q, 11, &res), 0);
	assert_int_equal(count(l), 2);   /* at the cap */
	assert_true(announced(l, "dst 10.1.9.9/32; proto = 17; }"));
	/* Another attack's filter on another target is not replaced. */
	q = req_of(rule(MITIG_DISCARD, "10.1.9.8", 6, NULL, 0, 0, 0), "A8");
	assert_int_equal(mitig_start(l->m, &q, 11, &res), M_ELIMIT);
	q = req_of(rule(MITIG_DISCARD, "10.1.9.9", 17, "11211", 0, 0, 0), "A7");
	q.replace = 1;
	assert_int_equal(mitig_start(l->m, &q, 12, &res), 0);
	assert_int_equal(res.outcome, MITIG_O_ANNOUNCED);
	assert_int_equal(count(l), 2);
	e = get(l, "filter 10.1.9.9/32 proto 17");
	assert_string_equal(e.key, "");   /* gone */
	e = get(l, "filter 10.1.9.9/32 proto 17 sport 11211");
	assert_string_equal(e.attack_id, "A7");
	assert_int_equal(e.announced, 1);
	assert_string_equal(get(l, "blackhole 10.1.9.9/32").attack_id, "A7");
	assert_true(announced(l, "sport 11211"));
	assert_false(announced(l, "dst 10.1.9.9/32; proto = 17; }"));   /* withdrawn */
	assert_true(announced(l, "route 10.1.9.9/32 blackhole"));
	/* The same request again changes nothing; a replacement whose key
	 * is already in place withdraws the others all the same. */
	assert_int_equal(mitig_start(l->m, &q, 13, &res), 0);
	assert_int_equal(res.outcome, MITIG_O_KEPT);
	assert_int_equal(count(l), 2);
	/* A restart: the store holds the new rule; reconciling sends it. */
	lab_close(l);
	unlink(l->include);
	lab_open(l, "  max_mitigations: 2\n");
	assert_int_equal(mitig_reconcile(l->m, 14, NULL), 0);
	assert_true(announced(l, "sport 11211"));
	assert_true(announced(l, "route 10.1.9.9/32 blackhole"));
	assert_int_equal(count(l), 2);
	/* Its end holds both as usual. */
	assert_int_equal(mitig_end(l->m, "A7", 15, &(size_t){ 0 }), 0);
	assert_int_equal(get(l, "filter 10.1.9.9/32 proto 17 sport 11211").state, MITIG_HOLD);
	lab_free(l);
}

static void test_dry_run(void **state)
{
	struct lab *l = lab_new("  dry_run: true\n");
	struct mitig_result res;
	struct mitig_request q = req_of(rule(MITIG_BLACKHOLE, "10.1.9.9", 0, NULL, 0, 0, 0), "A6");
	struct mitig_entry e;
	struct mitig_diff d;
	size_t n;

	(void)state;
	/* The configuration's dry run: recorded and run through the states,
	 * never sent. */
	assert_int_equal(mitig_start(l->m, &q, 10, &res), 0);
	assert_int_equal(res.outcome, MITIG_O_ANNOUNCED);
	assert_non_null(strstr(res.detail, "dry run"));
	assert_int_equal(access(l->include, F_OK), -1);
	e = get(l, "blackhole 10.1.9.9/32");
	assert_int_equal(e.dry_run, 1);
	assert_int_equal(mitig_reconcile(l->m, 11, &d), 0);
	assert_int_equal(d.nannounce, 1);        /* computed, not done */
	mitig_diff_fini(&d);
	assert_int_equal(access(l->include, F_OK), -1);
	assert_int_equal(mitig_end(l->m, "A6", 20, &n), 0);
	assert_int_equal(mitig_tick(l->m, 320), 0);
	assert_int_equal(count(l), 0);
	assert_int_equal(access(l->include, F_OK), -1);
	lab_close(l);

	/* A request's dry run on a live configuration: nothing recorded. */
	lab_open(l, NULL);
	q.dry_run = 1;
	assert_int_equal(mitig_start(l->m, &q, 30, &res), 0);
	assert_int_equal(res.outcome, MITIG_O_DRY_RUN);
	assert_non_null(strstr(res.detail, "route 10.1.9.9/32 blackhole { bgp_community.add((65535,666));"));
	assert_int_equal(count(l), 0);
	assert_int_equal(access(l->include, F_OK), -1);
	/* A refusal is reported by a dry run too. */
	q.rule = rule(MITIG_BLACKHOLE, "198.51.100.7", 0, NULL, 0, 0, 0);
	assert_int_equal(mitig_start(l->m, &q, 30, &res), M_EINVAL);
	assert_int_equal(res.outcome, MITIG_O_REFUSED);
	lab_free(l);
}

static void test_failure_retry_and_persistence(void **state)
{
	struct lab *l = lab_new(NULL);
	struct mitig_result res;
	struct mitig_request q = req_of(rule(MITIG_RATELIMIT, "10.1.9.8", 17, "11211,53", 100, 1500,
					     125000), "A7");
	struct mitig_entry e;
	struct mitig_diff d;
	size_t n;

	(void)state;
	write_birdc(l, 0);
	assert_int_equal(mitig_start(l->m, &q, 100, &res), M_EIO);
	assert_int_equal(res.outcome, MITIG_O_FAILED);
	assert_non_null(strstr(res.detail, "syntax error"));
	/* The refused file was taken back (there was none before). */
	assert_int_equal(access(l->include, F_OK), -1);
	e = get(l, res.key);
	assert_int_equal(e.announced, 0);
	assert_non_null(strstr(e.last_error, "syntax error"));
	/* BIRD works again: the next tick retries. */
	write_birdc(l, 1);
	assert_int_equal(mitig_tick(l->m, 101), 0);
	assert_int_equal(get(l, res.key).announced, 1);
	assert_true(announced(l, "sport 53, 11211; length 100..1500; } { bgp_ext_community.add((generic, 0x80060000, 0x47f42400)); };"));

	/* The same match with another action replaces it. */
	q.rule.action = MITIG_DISCARD;
	q.rule.rate = 0;
	assert_int_equal(mitig_start(l->m, &q, 102, &res), 0);
	assert_int_equal(res.outcome, MITIG_O_UPDATED);
	assert_true(announced(l, "(generic, 0x80060000, 0x0)"));
	assert_false(announced(l, "0x47f42400"));
	q = req_of(rule(MITIG_BLACKHOLE, "2001:db8::9", 0, NULL, 0, 0, 0), "A8");
	assert_int_equal(mitig_start(l->m, &q, 103, &res), 0);
	assert_int_equal(mitig_end(l->m, "A8", 104, &n), 0);

	/* Reopen: the same state, field by field. */
	lab_close(l);
	lab_open(l, NULL);
	assert_int_equal(count(l), 2);
	e = get(l, "filter 10.1.9.8/32 proto 17 sport 53,11211 length 100-1500");
	assert_int_equal(e.rule.action, MITIG_DISCARD);
	assert_string_equal(e.attack_id, "A7");
	assert_string_equal(e.reason, "memcached amplification");
	assert_int_equal(e.created, 100);
	assert_int_equal(e.updated, 102);
	assert_int_equal(e.state, MITIG_ACTIVE);
	e = get(l, "blackhole 2001:db8::9/128");
	assert_int_equal(e.state, MITIG_HOLD);
	assert_int_equal(e.expires, 404);
	assert_int_equal(e.rule.dst.af, 6);

	/* Reconcile after "a restart": the file is gone; it comes back. */
	unlink(l->include);
	assert_int_equal(mitig_reconcile(l->m, 200, &d), 0);
	assert_int_equal(d.unchanged, 2);        /* by the record of what was sent */
	mitig_diff_fini(&d);
	assert_true(announced(l, "route 2001:db8::9/128 blackhole"));
	assert_true(announced(l, "dst 10.1.9.8/32"));
	/* The hold ran out while mamori was down: reconcile withdraws it. */
	assert_int_equal(mitig_reconcile(l->m, 500, &d), 0);
	mitig_diff_fini(&d);
	assert_false(announced(l, "2001:db8::9"));
	assert_int_equal(count(l), 1);
	lab_free(l);
}

static void test_invalid_requests(void **state)
{
	struct lab *l = lab_new(NULL);
	struct mitig_result res;
	struct mitig_request q;

	(void)state;
	memset(&q, 0, sizeof(q));
	assert_int_equal(mitig_start(l->m, &q, 1, &res), M_EINVAL);   /* no action, no target */
	assert_int_equal(res.outcome, MITIG_O_REFUSED);
	q = req_of(rule(MITIG_DISCARD, "10.1.9.9", 17, NULL, 0, 0, 0), "A9");
	q.rule.action = MITIG_RATELIMIT;                               /* no rate */
	assert_int_equal(mitig_start(l->m, &q, 1, &res), M_EINVAL);
	assert_non_null(strstr(res.detail, "rate"));
	assert_int_equal(mitig_end(l->m, "", 1, NULL), M_EINVAL);
	assert_int_equal(mitig_end_key(l->m, "blackhole 10.9.9.9/32", 1), M_ENOTFOUND);
	assert_int_equal(count(l), 0);
	lab_free(l);
}

static int wait_include(struct lab *l, const char *needle, int present)
{
	int64_t deadline = clock_mono_us() + 10000000;

	while (clock_mono_us() < deadline) {
		if (announced(l, needle) == present)
			return 1;
		usleep(10000);
	}
	return 0;
}

static void test_worker(void **state)
{
	struct lab *l = lab_new("  hold_time: 0\n");
	struct mitig_request q = req_of(rule(MITIG_BLACKHOLE, "10.1.9.9", 0, NULL, 0, 0, 0), "W1");
	struct mitig_worker *w;

	(void)state;
	w = mitig_worker_new(l->m);
	assert_non_null(w);
	assert_int_equal(mitig_worker_start(w), 0);
	assert_int_equal(mitig_worker_post_start(w, &q), 0);
	assert_true(wait_include(l, "route 10.1.9.9/32 blackhole", 1));
	assert_int_equal(mitig_worker_post_end(w, "W1"), 0);
	assert_true(wait_include(l, "10.1.9.9", 0));
	mitig_worker_free(w);
	mitig_worker_free(NULL);
	lab_free(l);
}

static void test_failed_withdrawal_reconciled(void **state)
{
	struct lab *l = lab_new(NULL);
	struct mitig_result res;
	struct mitig_request q = req_of(rule(MITIG_BLACKHOLE, "10.1.9.9", 0, NULL, 0, 0, 0), NULL);
	size_t n;

	(void)state;
	assert_int_equal(mitig_start(l->m, &q, 10, &res), 0);
	write_birdc(l, 0);
	assert_int_equal(mitig_withdraw(l->m, res.key, NULL, 0, 11, &n), M_EIO);
	assert_int_equal(n, 1);
	assert_int_equal(count(l), 0);                       /* no longer desired */
	assert_true(announced(l, "10.1.9.9"));               /* BIRD still has it */
	assert_int_equal(mitig_tick(l->m, 12), M_EIO);       /* still failing */
	write_birdc(l, 1);
	assert_int_equal(mitig_tick(l->m, 13), 0);           /* not before the retry delay */
	assert_true(announced(l, "10.1.9.9"));
	assert_int_equal(mitig_tick(l->m, 22), 0);
	assert_false(announced(l, "10.1.9.9"));
	lab_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_rule_keys),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_gobgp_argv),
		cmocka_unit_test(test_exabgp_lines),
		cmocka_unit_test(test_bird_render),
		cmocka_unit_test(test_nft_render),
		cmocka_unit_test(test_gobgp_parse),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_exec),
		cmocka_unit_test(test_hold_and_hysteresis),
		cmocka_unit_test(test_reload_and_release),
		cmocka_unit_test(test_hold_zero_and_manual),
		cmocka_unit_test(test_caps_and_allow_list),
		cmocka_unit_test(test_dry_run),
		cmocka_unit_test(test_failure_retry_and_persistence),
		cmocka_unit_test(test_invalid_requests),
		cmocka_unit_test(test_worker),
		cmocka_unit_test(test_failed_withdrawal_reconciled),
		cmocka_unit_test(test_replace),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
