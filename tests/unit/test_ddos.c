/*
 * Unit tests of DDoS detection: the ddos: configuration and its errors
 * (file:line:col), prefix lookup, the counters (sampling, spreading of long
 * records, clamps), and the detector driven by an injected clock: trigger
 * and cool-down, the baseline alarm and its floor, carpet bombing as one
 * attack, the name of each vector, allow lists and tiers, IPv6 targets,
 * bounded memory under a flood of random addresses, a cool-down longer
 * than 65535 s, timelines and the exporter warning. No test depends on
 * the machine's clock or speed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "ddos/collect.h"
#include "ddos/ddos_conf.h"
#include "ddos/ddos_count.h"
#include "ddos/ddos_detect.h"
#include "ddos/ddos_lpm.h"
#include "ddos/ddos_ring.h"

#include "ddos_test.h"

#define T0 1700000000LL   /* a second on the grid (T0 % 4 == 0) */

/* ---- helpers ---- */

/* What the handlers saw. */
#define LOG_MAX 512
struct log {
	int starts, updates, ends, exporters;
	struct ddos_attack start[LOG_MAX], end[LOG_MAX];
	struct ddos_attack upd;          /* the latest update */
	int matches;                     /* updates whose mitigation match changed */
	struct ddos_attack match[8];     /* the attack at each of them */
	struct ddos_point last_tl[4096];
	size_t last_np;
	int64_t exp_dur;
};

static void on_start(void *arg, const struct ddos_attack *a)
{
	struct log *l = arg;

	if (l->starts < LOG_MAX)
		l->start[l->starts] = *a;
	l->starts++;
}

static void on_update(void *arg, const struct ddos_attack *a)
{
	struct log *l = arg;
	const struct ddos_attack *was = l->updates ? &l->upd : &l->start[l->starts - 1];

	if (l->starts > 0 && l->starts <= LOG_MAX &&
	    (a->match_ready != was->match_ready || a->match_amp != was->match_amp ||
	     a->match_proto != was->match_proto)) {
		if (l->matches < 8)
			l->match[l->matches] = *a;
		l->matches++;
	}
	l->upd = *a;
	l->updates++;
}

static void on_end(void *arg, const struct ddos_attack *a)
{
	struct log *l = arg;

	if (l->ends < LOG_MAX)
		l->end[l->ends] = *a;
	l->ends++;
	l->last_np = a->npoints < 4096 ? a->npoints : 4096;
	memcpy(l->last_tl, a->timeline, l->last_np * sizeof(*a->timeline));
}

static void on_exporter(void *arg, const struct ddos_exporter_stat *e)
{
	struct log *l = arg;

	l->exporters++;
	l->exp_dur = e->max_duration_ms;
}

static struct ddos_detector *detector(const char *yaml, struct log *l)
{
	struct ddos_config cfg;
	struct ddos_handlers h = { on_start, on_update, on_end, on_exporter };
	struct buf err;
	struct ddos_detector *d;

	buf_init(&err, 0);
	if (load(yaml, &cfg, &err) != 0)
		fail_msg("config: %s", err.p);
	d = ddos_detector_new(&cfg, &h, l, &err);
	if (!d)
		fail_msg("detector: %s", err.p ? err.p : "?");
	ddos_config_free(&cfg);
	buf_fini(&err);
	memset(l, 0, sizeof(*l));
	ddos_detector_tick(d, T0 * 1000);
	return d;
}

/* Runs seconds [from, to): gen adds the records of second t, then the
 * clock moves to the end of t. */
typedef void (*gen_fn)(struct ddos_detector *d, int64_t t, void *arg);

static void run(struct ddos_detector *d, int64_t from, int64_t to, gen_fn gen, void *arg)
{
	for (int64_t t = from; t < to; t++) {
		if (gen)
			gen(d, t, arg);
		ddos_detector_tick(d, (t + 1) * 1000);
	}
}

/* A flood: pps packets of size bytes each second to dst, from `sources`
 * different addresses, one record per source and second. */
struct flood {
	const char *dst;
	uint8_t proto, tcp_flags;
	uint16_t sport;
	uint16_t flags;
	double pps;
	unsigned size;
	unsigned sources;
	uint32_t sampling;
};

static void gen_flood(struct ddos_detector *d, int64_t t, void *arg)
{
	const struct flood *f = arg;
	unsigned n = f->sources ? f->sources : 1;
	uint32_t smp = f->sampling ? f->sampling : 1;

	for (unsigned i = 0; i < n; i++) {
		char src[32];
		uint64_t p = (uint64_t)(f->pps / n / smp + 0.5);
		struct flow_rec r;
		snprintf(src, sizeof(src), "198.51.%u.%u", 100 + i / 250, 1 + i % 250);
		r = rec(src, f->dst, f->proto, f->sport, p * f->size, p, t * 1000, t * 1000 + 999);
		r.tcp_flags = f->tcp_flags;
		r.flags = f->flags;
		r.sampling = smp;
		if (strchr(f->dst, ':')) {
			snprintf(src, sizeof(src), "2001:db8:ffff::%x", i + 1);
			r.src = ip(src);
		}
		ddos_detector_add(d, &r);
	}
}

static const char *cfg_basic =
	"ddos:\n"
	"  delay: 1s\n"
	"  baseline_warmup: 0\n"
	"  groups:\n"
	"    - name: web\n"
	"      prefixes: [203.0.113.0/24, 198.18.0.0/16, 2001:db8::/32]\n"
	"      trigger: 3s\n"
	"      cooldown: 5s\n"
	"      baseline: 0\n"
	"      thresholds:\n"
	"        total: { pps: 10k, bps: 1G }\n"
	"        syn: { pps: 5k }\n"
	"        icmp: { pps: 5k }\n"
	"        fragment: { pps: 5k }\n"
	"        amplification: { bps: 100M }\n"
	"        udp: { pps: 8k }\n"
	"        ack: { pps: 8k }\n"
	"        rst: { pps: 5k }\n"
	"      prefix_thresholds:\n"
	"        total: { pps: 300k, bps: 0 }\n"
	"      group_thresholds:\n"
	"        total: { pps: 5M, bps: 0 }\n";

static uint64_t rng_next(void)
{
	static uint64_t x = 0x2545f4914f6cdd1dull;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

/* ---- configuration ---- */

static void test_config_defaults(void **state)
{
	struct ddos_config cfg;
	struct buf err, out;

	(void)state;
	buf_init(&err, 0);
	buf_init(&out, 0);
	assert_int_equal(load("other: 1\n", &cfg, &err), 0);
	assert_int_equal(cfg.ngroups, 1);
	assert_string_equal(cfg.groups[0].name, "default");
	assert_int_equal(cfg.groups[0].nprefixes, 0);
	assert_int_equal(cfg.delay, 1);
	assert_int_equal(cfg.max_hosts, 131072);
	assert_int_equal(cfg.groups[0].trigger, 1);
	assert_true(cfg.groups[0].host.v[DDOS_C_TOTAL][DDOS_M_PPS] > 0);
	assert_true(cfg.groups[0].baseline == 5);
	assert_int_equal(cfg.groups[0].sliding, 1);
	ddos_config_free(&cfg);
	assert_int_equal(ddos_config_describe(&out), 0);
	buf_cstr(&out);
	assert_non_null(strstr(out.p, "ddos:"));
	assert_non_null(strstr(out.p, "memcached"));
	assert_non_null(strstr(out.p, "carpet_max_share"));
	buf_fini(&err);
	buf_fini(&out);
}

static void test_config_full(void **state)
{
	static const char *y =
		"ddos:\n"
		"  max_hosts: 1000\n"
		"  allow_sources: [192.0.2.0/24]\n"
		"  allow_destinations: 203.0.113.10\n"
		"  groups:\n"
		"    - name: customers-a\n"
		"      prefixes:\n"
		"        - 203.0.113.0/24\n"
		"        - 2001:db8:100::/48\n"
		"      trigger: 5s\n"
		"      cooldown: 2m\n"
		"      baseline: 2.5\n"
		"      baseline_floor_bps: 50Mbps\n"
		"      thresholds:\n"
		"        total: { bps: 1.5G, pps: 0 }\n"
		"        memcached: { bps: 10M }\n"
		"        syn: { pps: 20kpps, fps: 1k }\n"
		"      tiers:\n"
		"        - { name: flowspec, bps: 500M }\n"
		"        - { name: blackhole, bps: 5G, pps: 2M }\n"
		"    - name: b\n"
		"      prefixes: 198.51.100.0/24\n";
	struct ddos_config cfg;
	struct buf err;
	const struct ddos_group_conf *g;

	(void)state;
	buf_init(&err, 0);
	if (load(y, &cfg, &err) != 0)
		fail_msg("%s", err.p);
	assert_int_equal(cfg.max_hosts, 1000);
	assert_int_equal(cfg.nallow_src, 1);
	assert_int_equal(cfg.nallow_dst, 1);
	assert_int_equal(cfg.allow_dst[0].len, 128);
	assert_int_equal(cfg.ngroups, 2);
	g = &cfg.groups[0];
	assert_string_equal(g->name, "customers-a");
	assert_int_equal(g->nprefixes, 2);
	assert_int_equal(g->prefixes[0].len, 96 + 24);
	assert_int_equal(g->prefixes[1].len, 48);
	assert_int_equal(g->trigger, 5);
	assert_int_equal(g->cooldown, 120);
	assert_true(g->baseline == 2.5);
	assert_int_equal(g->floor_bps, 50000000);
	assert_int_equal(g->floor_pps, 20000);
	assert_int_equal(g->host.v[DDOS_C_TOTAL][DDOS_M_BPS], 1500000000ull);
	assert_int_equal(g->host.v[DDOS_C_TOTAL][DDOS_M_PPS], 0);
	assert_int_equal(g->host.v[DDOS_C_VEC + 0][DDOS_M_BPS], 10000000);
	assert_int_equal(g->host.v[DDOS_C_SYN][DDOS_M_PPS], 20000);
	assert_int_equal(g->host.v[DDOS_C_SYN][DDOS_M_FPS], 1000);
	assert_int_equal(g->host.v[DDOS_C_ICMP][DDOS_M_PPS], 20000);   /* a default kept */
	assert_int_equal(g->ntiers, 2);
	assert_string_equal(g->tiers[1].name, "blackhole");
	assert_int_equal(g->tiers[1].pps, 2000000);
	assert_int_equal(cfg.groups[1].nprefixes, 1);
	ddos_config_free(&cfg);
	ddos_config_free(&cfg);   /* twice is harmless */
	buf_fini(&err);
}

static void test_config_errors(void **state)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
		{ "ddos:\n  groups:\n    - name: a\n      prefixes: [203.0.113.0/33]\n",
		  "t.yaml:4:18: ddos.groups[0].prefixes: '203.0.113.0/33' is not a prefix" },
		{ "ddos:\n  groups:\n    - name: a\n      prefixes:\n        - 10.0.0.0/8\n        - 203.0.113.5/24\n",
		  "t.yaml:6:11: ddos.groups[0].prefixes: '203.0.113.5/24' is not a prefix" },
		{ "ddos:\n  groups:\n    - name: a\n      thresholds:\n        synn: { pps: 1 }\n",
		  "t.yaml:5:9: ddos.groups[0].thresholds: unknown traffic class 'synn'" },
		{ "ddos:\n  groups:\n    - name: a\n      thresholds:\n        syn: { ppss: 1 }\n",
		  "t.yaml:5:16: ddos.groups[0].thresholds.syn: unknown metric 'ppss'" },
		{ "ddos:\n  groups:\n    - name: a\n      thresholds:\n        syn: { pps: 1Q }\n",
		  "t.yaml:5:21: ddos.groups[0].thresholds.syn: expected a rate" },
		{ "ddos:\n  groups:\n    - name: a\n      thresholds:\n        syn: 5\n",
		  "t.yaml:5:14: ddos.groups[0].thresholds.syn: expected a mapping of bps:, pps:, fps:" },
		{ "ddos:\n  groups:\n    - name: a\n    - name: a\n",
		  "t.yaml:4:7: ddos.groups[1]: duplicate group name 'a'" },
		{ "ddos:\n  groups:\n    - name: a\n      prefixes: [10.0.0.0/8]\n"
		  "    - name: b\n      prefixes: [192.0.2.0/24, 10.0.0.0/8]\n",
		  "t.yaml:6:32: ddos.groups[1].prefixes: 10.0.0.0/8 is already in group 'a'" },
		{ "ddos:\n  groups:\n    - name: a\n      colour: red\n",
		  "t.yaml:4:7: unknown setting 'colour' in section ddos.groups[0]" },
		{ "ddos:\n  groups: web\n", "t.yaml:2:11: ddos.groups: expected a list of groups" },
		{ "ddos:\n  groups:\n    - prefixes: [10.0.0.0/8]\n",
		  "t.yaml:3:7: ddos.groups[0]: name is required" },
		{ "ddos:\n  groups:\n    - name: a\n      tiers:\n        - { bps: 1G }\n",
		  "t.yaml:5:11: ddos.groups[0].tiers[0]: a tier needs a name" },
		{ "ddos:\n  groups:\n    - name: a\n      tiers:\n        - { name: x }\n",
		  "t.yaml:5:11: ddos.groups[0].tiers[0]: a tier needs bps: or pps:" },
		{ "ddos:\n  groups:\n    - name: a\n      baseline: 0.5\n",
		  "t.yaml:4:17: ddos.groups[0]: baseline: expected 0 (off) or a multiple" },
		{ "ddos:\n  groups:\n    - name: a\n      sliding_second: sometimes\n",
		  "t.yaml:4:23: expected true or false for ddos.groups[0].sliding_second" },
		{ "ddos:\n  delay: 9s\n", "t.yaml:2:10: ddos.delay out of range" },
		{ "ddos:\n  allow_sources: [example.com]\n",
		  "t.yaml:2:19: ddos.allow_sources: 'example.com' is not a prefix" },
		{ "ddos:\n  groups:\n    - name: a\n      prefix_thresholds: [1, 2]\n",
		  "t.yaml:4:26: ddos.groups[0].prefix_thresholds: expected a mapping of traffic classes" },
		{ "ddos:\n  groups:\n    - name: 'a b'\n", "t.yaml:3:7: ddos.groups[0]: name is required" },
	};
	struct buf err;

	(void)state;
	buf_init(&err, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ddos_config cfg;
		int r = load(cases[i].yaml, &cfg, &err);
		if (r == 0 || !err.p || strncmp(err.p, cases[i].want, strlen(cases[i].want)) != 0)
			fail_msg("case %zu: got %d '%s', want '%s'", i, r, err.p ? err.p : "",
				 cases[i].want);
		ddos_config_free(&cfg);
	}
	buf_fini(&err);
}

static void test_parse_helpers(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
		int ok;
	} rates[] = {
		{ "1G", 1000000000ull, 1 }, { "1.5 Gbps", 1500000000ull, 1 }, { "200k", 200000, 1 },
		{ "20kpps", 20000, 1 }, { "0", 0, 1 }, { "off", 0, 1 }, { "37", 37, 1 },
		{ "2T", 2000000000000ull, 1 }, { "-1", 0, 0 }, { "1Q", 0, 0 }, { "", 0, 0 },
		{ "G", 0, 0 }, { "1e30", 0, 0 }, { "nan", 0, 0 },
	};
	static const struct {
		const char *s;
		unsigned len;
		int ok;
	} pfx[] = {
		{ "203.0.113.0/24", 120, 1 }, { "10.1.2.3", 128, 1 }, { "0.0.0.0/0", 96, 1 },
		{ "2001:db8::/32", 32, 1 }, { "::/0", 0, 1 }, { "2001:db8::1", 128, 1 },
		{ "203.0.113.1/24", 0, 0 }, { "10.0.0.0/-1", 0, 0 }, { "10.0.0.0/", 0, 0 },
		{ "2001:db8::/129", 0, 0 }, { "junk", 0, 0 }, { "10.0.0.0/8x", 0, 0 },
	};
	char s[64];

	(void)state;
	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		uint64_t v = 12345;
		int r = ddos_rate_parse(rates[i].s, &v);
		if ((r == 0) != rates[i].ok || (rates[i].ok && v != rates[i].v))
			fail_msg("rate '%s': r=%d v=%llu", rates[i].s, r, (unsigned long long)v);
	}
	for (size_t i = 0; i < sizeof(pfx) / sizeof(pfx[0]); i++) {
		struct ddos_pfx p;
		int r = ddos_pfx_parse(pfx[i].s, &p);
		if ((r == 0) != pfx[i].ok || (pfx[i].ok && p.len != pfx[i].len))
			fail_msg("prefix '%s': r=%d len=%u", pfx[i].s, r, p.len);
	}
	{
		struct ddos_pfx p;
		assert_int_equal(ddos_pfx_parse("203.0.113.0/24", &p), 0);
		assert_string_equal(ddos_pfx_str(&p, s, sizeof(s)), "203.0.113.0/24");
		assert_int_equal(ddos_pfx_parse("2001:db8:1::/48", &p), 0);
		assert_string_equal(ddos_pfx_str(&p, s, sizeof(s)), "2001:db8:1::/48");
	}
	assert_string_equal(ddos_rate_str(1.5e9, s, sizeof(s)), "1.50G");
	assert_string_equal(ddos_rate_str(250000, s, sizeof(s)), "250k");
	assert_int_equal(ddos_vector_by_port(11211), 0);
	assert_string_equal(ddos_vectors[ddos_vector_by_port(53)].name, "DNS");
	assert_int_equal(ddos_vector_by_port(443), -1);
	for (int v = 0; v < DDOS_VEC_N; v++)
		assert_int_equal(ddos_vector_by_port(ddos_vectors[v].port), v);
}

/* ---- prefix lookup ---- */

static void test_lpm(void **state)
{
	struct ddos_lpm *l = ddos_lpm_new();
	static const struct {
		const char *p;
		uint32_t v;
	} adds[] = {
		{ "10.0.0.0/8", 1 }, { "10.1.0.0/16", 2 }, { "10.1.2.0/24", 3 }, { "10.1.2.3/32", 4 },
		{ "2001:db8::/32", 5 }, { "2001:db8:1::/48", 6 }, { "192.0.2.0/31", 7 },
	};
	static const struct {
		const char *a;
		uint32_t v;
		unsigned len;
	} looks[] = {
		{ "10.9.9.9", 1, 104 }, { "10.1.9.9", 2, 112 }, { "10.1.2.9", 3, 120 },
		{ "10.1.2.3", 4, 128 }, { "11.0.0.1", DDOS_LPM_NONE, 0 },
		{ "2001:db8:2::1", 5, 32 }, { "2001:db8:1:ffff::1", 6, 48 },
		{ "2001:db9::1", DDOS_LPM_NONE, 0 }, { "192.0.2.1", 7, 127 },
		{ "192.0.2.2", DDOS_LPM_NONE, 0 }, { "::ffff:10.1.2.3", 4, 128 },
	};

	(void)state;
	assert_non_null(l);
	assert_int_equal(ddos_lpm_lookup(l, ip("10.0.0.1").a), DDOS_LPM_NONE);
	for (size_t i = 0; i < sizeof(adds) / sizeof(adds[0]); i++) {
		struct ddos_pfx p;
		assert_int_equal(ddos_pfx_parse(adds[i].p, &p), 0);
		assert_int_equal(ddos_lpm_add(l, p.a, p.len, adds[i].v), 0);
	}
	assert_int_equal(ddos_lpm_build(l), 0);
	for (size_t i = 0; i < sizeof(looks) / sizeof(looks[0]); i++) {
		unsigned len = 0;
		uint32_t v = ddos_lpm_lookup_len(l, ip(looks[i].a).a, &len);
		if (v != looks[i].v || (v != DDOS_LPM_NONE && len != looks[i].len))
			fail_msg("%s: got %u/%u, want %u/%u", looks[i].a, v, len, looks[i].v, looks[i].len);
	}
	{
		struct ddos_pfx p;
		ddos_pfx_parse("10.1.2.0/23", &p);
		assert_true(ddos_lpm_overlaps(l, p.a, p.len));
		ddos_pfx_parse("172.16.0.0/12", &p);
		assert_false(ddos_lpm_overlaps(l, p.a, p.len));
		ddos_pfx_parse("2001:db8:1:2::/64", &p);
		assert_true(ddos_lpm_overlaps(l, p.a, p.len));
	}
	/* The same prefix twice is refused when the table is built. */
	{
		struct ddos_pfx p;
		ddos_pfx_parse("10.1.2.0/24", &p);
		assert_int_equal(ddos_lpm_add(l, p.a, p.len, 9), 0);
		assert_int_equal(ddos_lpm_build(l), M_EINVAL);
	}
	ddos_lpm_free(l);
	ddos_lpm_free(NULL);
}

/* ---- counters ---- */

static void test_counters_sampling(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_basic, l);
	struct ddos_counters *c = ddos_detector_counters(d);
	struct ddos_target_view v;
	struct flow_rec r;

	(void)state;
	/* 1:100 sampled: 30 packets of 500 bytes stand for 3000 and 1.5 MB. */
	r = rec("198.51.100.1", "203.0.113.9", 6, 443, 30 * 500, 30, (T0 + 1) * 1000, (T0 + 1) * 1000 + 999);
	r.sampling = 100;
	r.tcp_flags = 0x18;
	ddos_detector_add(d, &r);
	/* Already scaled by the decoder: counted as is. */
	r = rec("198.51.100.2", "203.0.113.9", 17, 5000, 1000, 2, (T0 + 1) * 1000, (T0 + 1) * 1000 + 999);
	r.sampling = 100;
	r.flags = FLOW_F_SCALED;
	ddos_detector_add(d, &r);
	/* Outside every group, and without a destination. */
	r = rec("198.51.100.2", "192.0.2.77", 17, 5000, 1000, 2, (T0 + 1) * 1000, (T0 + 1) * 1000 + 999);
	ddos_detector_add(d, &r);
	r.dst.family = 0;
	ddos_detector_add(d, &r);
	run(d, T0 + 1, T0 + 3, NULL, NULL);
	assert_int_equal(ddos_count_host(c, &(struct flow_ip){ .family = 0 }, &v), M_ENOTFOUND);
	assert_int_equal(ddos_count_host(c, (struct flow_ip[]){ ip("203.0.113.9") }, &v), 0);
	/* Second T0+1 was closed at T0+3 (delay 1 s); the view is of the last
	 * closed second, T0+2, so look back through the stats instead. */
	assert_int_equal(ddos_count_stats(c)->counted, 2);
	assert_int_equal(ddos_count_stats(c)->unprotected, 1);
	assert_int_equal(ddos_count_stats(c)->bad, 1);
	ddos_detector_free(d);

	/* The same again, reading the second itself. */
	d = detector(cfg_basic, l);
	c = ddos_detector_counters(d);
	r = rec("198.51.100.1", "203.0.113.9", 6, 443, 30 * 500, 30, (T0 + 1) * 1000, (T0 + 1) * 1000 + 999);
	r.sampling = 100;
	r.tcp_flags = 0x18;
	ddos_detector_add(d, &r);
	run(d, T0 + 1, T0 + 3, NULL, NULL);   /* T0+1 closes at T0+3 (delay 1 s) */
	assert_int_equal(ddos_count_host(c, (struct flow_ip[]){ ip("203.0.113.9") }, &v), 0);
	assert_int_equal(v.second, T0 + 1);
	assert_true(fabs(v.cls[DDOS_C_TOTAL].pps - 3000) < 1);
	assert_true(fabs(v.cls[DDOS_C_TOTAL].bps - 1.5e6 * 8) < 1024);
	assert_true(fabs(v.cls[DDOS_C_TOTAL].fps - 1) < 0.01);
	ddos_detector_free(d);
	free(l);
}

/* A 5-second record is 1/5 of its packets in each of its seconds. */
static void test_spread_short(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_basic, l);
	struct ddos_counters *c = ddos_detector_counters(d);
	struct ddos_target_view v;
	struct flow_rec r = rec("198.51.100.1", "203.0.113.9", 6, 443, 5000 * 100, 5000,
				(T0 + 1) * 1000, (T0 + 6) * 1000 - 1);
	uint64_t sum = 0;

	(void)state;
	ddos_detector_add(d, &r);
	for (int64_t t = T0 + 1; t < T0 + 9; t++) {
		ddos_detector_tick(d, (t + 2) * 1000);
		assert_int_equal(ddos_count_host(c, (struct flow_ip[]){ ip("203.0.113.9") }, &v), 0);
		assert_int_equal(v.second, t);
		if (t <= T0 + 5)
			assert_true(fabs(v.cls[DDOS_C_TOTAL].pps - 1000) <= 1);
		else
			assert_true(v.cls[DDOS_C_TOTAL].pps == 0);
		sum += (uint64_t)v.cls[DDOS_C_TOTAL].pps;
	}
	assert_int_equal(sum, 5000);   /* conserved */
	ddos_detector_free(d);
	free(l);
}

/* Small amounts over long records: 60 packets over 60 seconds are about
 * one a second (not 60 in the first second because a reciprocal rounded
 * down), and every split conserves what it was given. */
static void test_spread_exact(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_basic, l);
	struct ddos_counters *c = ddos_detector_counters(d);
	struct ddos_target_view v;
	uint64_t sum = 0, max = 0;
	int64_t now = T0;

	(void)state;
	for (int i = 0; i < 3; i++) {
		/* The record ends at every phase of the 4 s grid. */
		int64_t t = now + 10 + i;
		struct flow_rec r = rec("198.51.100.1", "203.0.113.9", 6, 443, 60 * 64, 60,
					(t - 60) * 1000, t * 1000 - 1);
		run(d, now, t, NULL, NULL);
		now = t + 90;
		ddos_detector_add(d, &r);
		sum = max = 0;
		for (int64_t u = t; u < t + 90; u++) {
			ddos_detector_tick(d, (u + 1) * 1000);
			assert_int_equal(ddos_count_host(c, (struct flow_ip[]){ ip("203.0.113.9") }, &v), 0);
			sum += (uint64_t)v.cls[DDOS_C_TOTAL].pps;
			if (v.cls[DDOS_C_TOTAL].pps > max)
				max = (uint64_t)v.cls[DDOS_C_TOTAL].pps;
		}
		/* Integer amounts: what rounding leaves (under one packet a
		 * second) adds one to some seconds, not all to the first. */
		assert_int_equal(sum, 60);
		assert_true(max <= 2);
	}
	ddos_detector_free(d);
	free(l);
}

/* 12 packets over 60 s (a fifth of a packet a second) land as one in
 * each of 12 seconds, not 12 in one second; at every phase of the grid
 * and whether the record is late (moved forward) or current. */
static void test_spread_small(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_basic, l);
	struct ddos_counters *c = ddos_detector_counters(d);
	struct ddos_target_view v;
	int64_t now = T0;

	(void)state;
	for (int i = 0; i < 8; i++) {
		int64_t t = now + 10 + i / 2;
		/* Even: exported as it ends (late, moved to H); odd: starting now. */
		int64_t s0 = i % 2 ? t + 1 : t - 60;
		struct flow_rec r = rec("198.51.100.1", "203.0.113.9", 17, 4500, 12 * 100, 12,
					s0 * 1000 + 137 * i, (s0 + 60) * 1000 - 1);
		uint64_t sum = 0, max = 0, nz = 0;
		run(d, now, t, NULL, NULL);
		now = t + 90;
		ddos_detector_add(d, &r);
		for (int64_t u = t; u < t + 90; u++) {
			ddos_detector_tick(d, (u + 1) * 1000);
			assert_int_equal(ddos_count_host(c, (struct flow_ip[]){ ip("203.0.113.9") }, &v), 0);
			sum += (uint64_t)v.cls[DDOS_C_TOTAL].pps;
			nz += v.cls[DDOS_C_TOTAL].pps > 0;
			if (v.cls[DDOS_C_TOTAL].pps > max)
				max = (uint64_t)v.cls[DDOS_C_TOTAL].pps;
		}
		assert_int_equal(sum, 12);   /* nothing lost, nothing invented */
		if (max != 1 || nz != 12)
			fail_msg("record %d: %llu packets at most in a second, %llu seconds", i,
				 (unsigned long long)max, (unsigned long long)nz);
	}
	ddos_detector_free(d);
	free(l);
}

/* A long benign record on a host with a small threshold: 300 packets over
 * 60 s is 5 a second (a little more where its end moved to the grid);
 * with the rounding in its first second that second read about 20 and
 * started an attack against a 10 pps threshold. */
static const char *cfg_small =
	"ddos:\n"
	"  delay: 1s\n"
	"  baseline_warmup: 0\n"
	"  groups:\n"
	"    - name: lab\n"
	"      prefixes: [203.0.113.0/24]\n"
	"      trigger: 1s\n"
	"      cooldown: 5s\n"
	"      baseline: 0\n"
	"      thresholds:\n"
	"        total: { pps: 10, bps: 0 }\n";

static void test_spread_small_no_attack(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_small, l);
	int64_t now = T0;

	(void)state;
	for (int i = 0; i < 4; i++) {
		int64_t t = now + 5 + i;
		struct flow_rec r = rec("198.51.100.1", "203.0.113.9", 6, 443, 300 * 80, 300,
					(t - 60) * 1000 + 250 * i, t * 1000 - 1);
		run(d, now, t, NULL, NULL);
		ddos_detector_add(d, &r);
		now = t;
		run(d, now, now + 70, NULL, NULL);
		now += 70;
	}
	assert_int_equal(l->starts, 0);
	ddos_detector_free(d);
	free(l);
}

/* A host's ring is 16 bits a slot until one of its seconds could pass
 * 32,768 units or packets; then it borrows 32-bit slots (its open
 * seconds rebuilt exactly) and gives them back once nothing is in
 * flight. The group, alone with the host here, counts the same records
 * on 32-bit slots: every second must read the same on both. */
static void same_as_group(struct ddos_detector *d, int64_t t)
{
	struct ddos_counters *c = ddos_detector_counters(d);
	struct ddos_target_view vh, vg;

	ddos_detector_tick(d, (t + 2) * 1000);
	assert_int_equal(ddos_count_host(c, (struct flow_ip[]){ ip("203.0.113.9") }, &vh), 0);
	assert_int_equal(ddos_count_group(c, "web", &vg), 0);
	assert_int_equal(vh.second, t);
	assert_true(vh.cls[DDOS_C_TOTAL].pps == vg.cls[DDOS_C_TOTAL].pps);
	assert_true(vh.cls[DDOS_C_TOTAL].bps == vg.cls[DDOS_C_TOTAL].bps);
	assert_true(vh.cls[DDOS_C_TOTAL].fps == vg.cls[DDOS_C_TOTAL].fps);
}

static void test_host_wide(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_basic, l);
	struct ddos_counters *c = ddos_detector_counters(d);
	struct ddos_target_view v;
	struct flow_rec r;
	int64_t t = T0 + 1;

	(void)state;
	ddos_detector_tick(d, (t + 1) * 1000);
	/* Ten 60-second records in flight (about 1,000 pps and 0.8 Mbit/s
	 * each, ends all over the far grid): on 16 bits. */
	for (int i = 0; i < 10; i++) {
		r = rec("198.51.100.1", "203.0.113.9", 6, 443, 60000 * 100, 60000,
			t * 1000 + i * 37, t * 1000 + i * 37 + 59999 - i * 1000);
		ddos_detector_add(d, &r);
	}
	for (int k = 0; k < 3; k++, t++)
		same_as_group(d, t);
	assert_int_equal(ddos_count_stats(c)->hosts_widened, 0);
	/* Forty one-second records of 800 packets in forty seconds: the
	 * bound passes 32,768, the exact maximum does not: still 16 bits. */
	for (int k = 0; k < 40; k++, t++) {
		r = rec("198.51.100.2", "203.0.113.9", 17, 53, 800 * 60, 800, (t + 1) * 1000,
			(t + 1) * 1000 + 999);
		ddos_detector_add(d, &r);
		same_as_group(d, t);
	}
	assert_int_equal(ddos_count_stats(c)->hosts_widened, 0);
	/* 70,000 packets and 700 Mbit/s in one second, more than 16 bits
	 * hold, over the long records still in flight: 32-bit slots. */
	r = rec("198.51.100.3", "203.0.113.9", 17, 11211, 70000ull * 1250, 70000, (t + 1) * 1000,
		(t + 1) * 1000 + 999);
	ddos_detector_add(d, &r);
	r = rec("198.51.100.4", "203.0.113.9", 6, 443, 30000ull * 40 * 100, 30000 * 40, (t + 1) * 1000,
		(t + 41) * 1000 - 1);
	ddos_detector_add(d, &r);
	assert_int_equal(ddos_count_stats(c)->hosts_widened, 1);
	for (int k = 0; k < 3; k++, t++)
		same_as_group(d, t);
	assert_int_equal(ddos_count_host(c, (struct flow_ip[]){ ip("203.0.113.9") }, &v), 0);
	assert_true(v.cls[DDOS_C_TOTAL].pps >= 30000);   /* and what is left of the long records */
	/* Until nothing is in flight, then back to 16 bits; the next burst
	 * borrows again. */
	for (int k = 0; k < 80; k++, t++)
		same_as_group(d, t);
	assert_int_equal(ddos_count_host(c, (struct flow_ip[]){ ip("203.0.113.9") }, &v), 0);
	assert_true(v.cls[DDOS_C_TOTAL].pps == 0);
	r = rec("198.51.100.3", "203.0.113.9", 17, 11211, 70000ull * 1250, 70000, (t + 1) * 1000,
		(t + 1) * 1000 + 999);
	ddos_detector_add(d, &r);
	assert_int_equal(ddos_count_stats(c)->hosts_widened, 2);
	for (int k = 0; k < 4; k++, t++)
		same_as_group(d, t);
	ddos_detector_free(d);
	free(l);
}

/* Checks a split of n over sp: the floor or the ceiling of each whole
 * second's exact share (computed with reciprocals, so compared with
 * integer division), a first second at most 4 above the floor of its
 * own, a step down on the grid past the near window, and n exactly. */
static void split_check(const struct ddos_span *sp, uint64_t n, const struct ddos_amounts *a)
{
	uint64_t fq = n * 1000 / sp->len, sum;

	if (sp->nfull &&   /* else q is not used (nor bounded: a span of 2 ms) */
	    ((a->q != fq && a->q != fq + 1) || (a->qe != a->q && a->qe + 1 != a->q) || a->qe < fq))
		fail_msg("n %llu len %llu: q %u qe %u, floor %llu", (unsigned long long)n,
			 (unsigned long long)sp->len, a->q, a->qe, (unsigned long long)fq);
	assert_true(a->x <= sp->nfull);
	assert_true(a->a0 <= n * sp->f0 / sp->len + 4);
	if (a->qe != a->q) {
		uint32_t e = sp->s0 + 1 + a->x;
		assert_true(e < sp->nlim || e % DDOS_GRID == 0);
		assert_true(e > sp->s0 + 1);
	}
	if (sp->kind == SP_NEAR)
		assert_int_equal(a->al, n * sp->fl / sp->len);
	sum = (uint64_t)a->a0 + (sp->kind == SP_NEAR ? a->al : 0);
	if (sp->nfull)
		sum += (uint64_t)a->q * a->x + (uint64_t)a->qe * (sp->nfull - a->x);
	assert_int_equal(sum, n);
}

static void test_split_exact(void **state)
{
	static const struct {
		uint64_t n, len;
	} edge[] = { { 49, 49000 }, { 60, 60000 }, { 3, 3000 }, { 7, 7000 }, { 0xffffffffu, 1001 },
		     { 1, 86400000 }, { 98, 49000 }, { 12, 60000 }, { 12, 57000 }, { 59, 60000 } };
	struct ddos_span sp;

	(void)state;
	for (size_t i = 0; i < 100000 + sizeof(edge) / sizeof(edge[0]); i++) {
		uint64_t x = rng_next(), n, len;
		struct ddos_amounts a;
		if (i < sizeof(edge) / sizeof(edge[0])) {
			n = edge[i].n;
			len = edge[i].len;
		} else {
			n = (x & 1) ? (x >> 8) % 100000 : (x >> 8) & 0xffffffffu;
			len = 1001 + (x >> 40) % 120000;
		}
		/* The reciprocal's estimate, made exact. */
		if (ddos_muldiv(n, 1000, len, 1000.0 / (double)len) != n * 1000 / len)
			fail_msg("n %llu len %llu: muldiv", (unsigned long long)n, (unsigned long long)len);
		/* A far span starting on a second (the first open one, or a
		 * few after it): whole seconds. */
		len -= len % 1000;
		memset(&sp, 0, sizeof(sp));
		sp.kind = SP_FAR;
		sp.s0 = (uint32_t)(x >> 60) % (DDOS_LEAD + 1);
		sp.nlim = DDOS_NEAR;
		sp.len = len;
		sp.f0 = 1000;
		sp.nfull = (uint32_t)(len / 1000 - 1);
		sp.kq = 1000.0 / (double)len;
		sp.k0 = 1000.0 / (double)len;
		a = ddos_split(&sp, n);
		split_check(&sp, n, &a);
		/* A near one: partial first and last seconds. */
		sp.kind = SP_NEAR;
		sp.f0 = 1 + (x >> 10) % 1000;
		sp.fl = 1 + (x >> 20) % 1000;
		sp.nfull = (uint32_t)(x >> 30) % 14;
		sp.len = sp.f0 + sp.fl + 1000ull * sp.nfull;
		sp.nlim = sp.s0 + sp.nfull + 2 + DDOS_NEAR / 2;
		sp.kq = 1000.0 / (double)sp.len;
		sp.k0 = (double)sp.f0 / (double)sp.len;
		sp.kl = (double)sp.fl / (double)sp.len;
		a = ddos_split(&sp, n);
		split_check(&sp, n, &a);
	}
}

/* Units of bytes with a ring's carry, as the rings took them before
 * their writes were planned. */
static uint32_t ref_units(uint64_t bytes, uint32_t *rem)
{
	uint64_t b = bytes + *rem, u = b >> DDOS_USHIFT;

	*rem = (uint32_t)(b & ((1u << DDOS_USHIFT) - 1));
	return u > UINT32_MAX ? UINT32_MAX : (uint32_t)u;
}

/* The differences a record leaves in a ring, written the way the rings
 * wrote them before their writes were planned (ddos_plan): the reference
 * a plan must match, slot for slot. */
static void ref_add(struct ddos_slot *near, struct ddos_slot *far, const struct ddos_span *sp,
		    uint32_t u, uint64_t pkts)
{
	const struct ddos_amounts ab = ddos_split(sp, u);
	const struct ddos_amounts ap = ddos_split(sp, pkts > UINT32_MAX ? UINT32_MAX : pkts);
	struct ddos_slot *s0 = &near[sp->s0 % DDOS_NEAR], *s1 = &near[(sp->s0 + 1) % DDOS_NEAR], *e;
	const struct ddos_amounts *a[2] = { &ab, &ap };

	s0->b += ab.a0;
	s0->p += ap.a0;
	if (sp->kind == SP_ONE) {
		s1->b -= ab.a0;
		s1->p -= ap.a0;
		return;
	}
	s1->b += ab.q - ab.a0;
	s1->p += ap.q - ap.a0;
	for (int k = 0; k < 2; k++) {
		uint32_t st = sp->s0 + 1 + a[k]->x;
		if (a[k]->qe == a[k]->q)
			continue;
		e = st >= sp->nlim ? &far[(st / DDOS_GRID) % DDOS_FAR] : &near[st % DDOS_NEAR];
		*(k ? &e->p : &e->b) -= 1;
	}
	if (sp->kind == SP_NEAR) {
		e = &near[(sp->stop - 1) % DDOS_NEAR];
		e->b += ab.al - ab.qe;
		e->p += ap.al - ap.qe;
		e = &near[sp->stop % DDOS_NEAR];
		e->b -= ab.al;
		e->p -= ap.al;
		return;
	}
	e = sp->far ? &far[(sp->stop / DDOS_GRID) % DDOS_FAR] : &near[sp->stop % DDOS_NEAR];
	e->b -= ab.qe;
	e->p -= ap.qe;
}

/* A record's plans, shared by its rings (ddos_rec_split), write what
 * its amounts (ddos_split) written one by one write, in a ring of 32-bit
 * slots (a detail column's too) and one of 16, for a ring with no carry and
 * one with: for a record within one second, one spanning a few seconds,
 * one reaching the far grid (with steps down on it), one longer than the
 * ring, and for units at the edges (0, clamped to UINT32_MAX, bytes so
 * near 2^64 that the carry wraps them to 0). */
static void test_rec_split(void **state)
{
	static const struct {
		int64_t start, dur;
		uint8_t kind;
	} span[] = {
		{ 0, 0, SP_ONE }, { 250, 749, SP_ONE }, { 999, 0, SP_ONE }, { 999, 1, SP_NEAR },
		{ 300, 2000, SP_NEAR }, { 0, 14999, SP_NEAR }, { 500, 40000, SP_FAR },
		{ -3000, 5000, SP_NEAR }, { 100, 86400000, SP_FAR }, { 700, 7300, SP_NEAR },
		{ 0, 30000, SP_FAR }, { 1, 63000, SP_FAR },
	};
	static const uint32_t rems[] = { 0, 1, 20, 21, 42, 62, 63 };   /* 21: UINT64_MAX - 20 wraps */
	const uint32_t H = 1700000000u;
	struct ddos_span sp;
	struct ddos_rec_split x;

	(void)state;
	for (size_t i = 0; i < sizeof(span) / sizeof(span[0]); i++)
		for (int k = 0; k < 300; k++) {
			uint64_t r = rng_next(), pkts = k == 0 ? 0 : k == 1 ? UINT32_MAX + 5ull : r % 100000;
			uint64_t bytes = k == 2 ? UINT64_MAX - 20 : k == 3 ? (uint64_t)UINT32_MAX << 6 :
					 k == 4 ? 63 : (r >> 20) % 320000000;
			int64_t t0 = (int64_t)H * 1000 + span[i].start;
			ddos_span_make(H, t0, t0 + span[i].dur, &sp);
			assert_int_equal(sp.kind, span[i].kind);
			ddos_rec_split_init(&x, &sp, bytes, pkts);
			for (size_t ri = 0; ri < sizeof(rems) / sizeof(rems[0]); ri++) {
				uint32_t rem = rems[ri];
				struct ddos_slots got, want;
				struct ddos_nslots ngot;
				uint32_t rg = rem, rw = rem;   /* carries as the rings keep them */
				const struct ddos_plan *pl = ddos_rec_plan(&x, &rg);
				memset(&got, 0, sizeof(got));
				memset(&want, 0, sizeof(want));
				memset(&ngot, 0, sizeof(ngot));
				ddos_plan_apply(got.at, pl);
				ddos_plan_napply(ngot.at, pl);
				ref_add(want.near, want.far, &sp, ref_units(bytes, &rw), pkts);
				assert_int_equal(rg, rw);
				assert_memory_equal(&got, &want, sizeof(got));
				for (int j = 0; j < DDOS_NEAR + DDOS_FAR; j++) {
					assert_int_equal(ngot.at[j].b, (uint16_t)want.at[j].b);
					assert_int_equal(ngot.at[j].p, (uint16_t)want.at[j].p);
				}
			}
		}
}

/* A steady 1 Gbit/s flow exported as 60-second records (active timeout
 * 60 s): each record arrives when it ends, so all but its last second
 * were judged already. Spread, it reads about 1 Gbit/s in every second,
 * not 60 Gbit/s in one, and no attack is raised against a 10 Gbit/s
 * threshold; the peak reported is within 10% of the truth. */
struct steady {
	int flows;
	double bps_each;
	int phase[256];
};

static void gen_steady(struct ddos_detector *d, int64_t t, void *arg)
{
	const struct steady *s = arg;

	for (int i = 0; i < s->flows; i++) {
		/* Flow i's records cover [k*60 + phase, (k+1)*60 + phase). */
		if ((t - T0 - s->phase[i]) % 60 == 59 && t - T0 >= 59) {
			int64_t end = (t + 1) * 1000 - 1, start = end - 60000 + 1;
			uint64_t bytes = (uint64_t)(s->bps_each / 8 * 60);
			char src[32];
			struct flow_rec r;
			snprintf(src, sizeof(src), "198.51.100.%d", i + 1);
			r = rec(src, "203.0.113.50", 6, 443, bytes, bytes / 1000, start, end);
			r.tcp_flags = 0x10;
			ddos_detector_add(d, &r);
		}
	}
}

static void steady_case(int flows, double tol_each_second)
{
	static const char *y =
		"ddos:\n"
		"  delay: 2s\n"
		"  groups:\n"
		"    - name: web\n"
		"      prefixes: [203.0.113.0/24]\n"
		"      baseline: 0\n"
		"      thresholds:\n"
		"        total: { bps: 10G, pps: 0 }\n"
		"        ack: { pps: 0 }\n";
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(y, l);
	struct ddos_counters *c = ddos_detector_counters(d);
	struct steady s = { flows, 1e9 / flows, { 0 } };
	struct ddos_target_view v;
	double peak = 0, sum = 0, lo = 1e18;
	int n = 0, dips = 0;

	for (int i = 0; i < flows; i++)
		s.phase[i] = (i * 37) % 60;
	/* Records from 60 s on; judge seconds from 130 s on, when every flow
	 * has exported at least once. */
	for (int64_t t = T0; t < T0 + 400; t++) {
		gen_steady(d, t, &s);
		ddos_detector_tick(d, (t + 1) * 1000);
		if (t < T0 + 130)
			continue;
		assert_int_equal(ddos_count_host(c, (struct flow_ip[]){ ip("203.0.113.50") }, &v), 0);
		peak = fmax(peak, v.cls[DDOS_C_TOTAL].bps);
		lo = fmin(lo, v.cls[DDOS_C_TOTAL].bps);
		sum += v.cls[DDOS_C_TOTAL].bps;
		n++;
		if (fabs(v.cls[DDOS_C_TOTAL].bps - 1e9) > tol_each_second * 1e9)
			dips++;
	}
	/* Never above the truth by more than 10%, on average within 5%. */
	if (peak > 1.1e9 || peak < 0.9e9 || fabs(sum / n - 1e9) > 0.05e9)
		fail_msg("flows %d: peak %.3g mean %.3g min %.3g", flows, peak, sum / n, lo);
	if (flows == 1) {
		/* One flow: at most one short seam per record (the end of each
		 * record sits on a 4 s grid). */
		assert_true(dips <= (n / 60 + 1) * 4);
	} else {
		assert_int_equal(dips, 0);
	}
	assert_int_equal(l->starts, 0);
	assert_true(ddos_count_stats(c)->late > 0);
	ddos_detector_free(d);
	free(l);
}

static void test_spread_60s(void **state)
{
	(void)state;
	steady_case(1, 0.10);
	steady_case(100, 0.10);
}

/* The FastNetMon failure: a benign 5 kpps flow, 60-second records, and a
 * 10 kpps threshold. Unspread it reads 300 kpps for one second a minute. */
static void gen_benign(struct ddos_detector *d, int64_t t, void *arg)
{
	(void)arg;
	if ((t - T0) % 60 == 59) {
		struct flow_rec r = rec("198.51.100.1", "203.0.113.7", 17, 4500, 300000 * 100ull, 300000,
					(t - 59) * 1000, (t + 1) * 1000 - 1);
		ddos_detector_add(d, &r);
	}
}

static void test_spread_no_false_attack(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_basic, l);
	struct ddos_target_view v;

	(void)state;
	run(d, T0, T0 + 300, gen_benign, NULL);
	assert_int_equal(l->starts, 0);
	assert_int_equal(ddos_count_host(ddos_detector_counters(d),
					 (struct flow_ip[]){ ip("203.0.113.7") }, &v), 0);
	assert_true(v.cls[DDOS_C_TOTAL].pps < 5500);
	ddos_detector_free(d);
	free(l);
}

/* Records far in the future are moved back; in the past, forward. */
static void test_clamps(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_basic, l);
	struct ddos_counters *c = ddos_detector_counters(d);
	struct flow_rec r;
	struct ddos_target_view v;
	double sum = 0;

	(void)state;
	r = rec("198.51.100.1", "203.0.113.9", 6, 443, 1000, 10, (T0 + 3600) * 1000, (T0 + 3600) * 1000);
	ddos_detector_add(d, &r);
	r = rec("198.51.100.1", "203.0.113.9", 6, 443, 1000, 10, (T0 - 3600) * 1000, (T0 - 3600) * 1000);
	ddos_detector_add(d, &r);
	/* A record claiming a day and a half: cut, never looped over. */
	r = rec("198.51.100.1", "203.0.113.9", 6, 443, 1000, 10, (T0 - 129600) * 1000, T0 * 1000);
	ddos_detector_add(d, &r);
	assert_int_equal(ddos_count_stats(c)->future, 1);
	assert_int_equal(ddos_count_stats(c)->late, 2);
	for (int64_t t = T0; t < T0 + 20; t++) {
		ddos_detector_tick(d, (t + 1) * 1000);
		if (ddos_count_host(c, (struct flow_ip[]){ ip("203.0.113.9") }, &v) == 0)
			sum += v.cls[DDOS_C_TOTAL].pps;
	}
	assert_true(sum >= 20 && sum <= 30);   /* 10 + 10 + the day-long record's first seconds */
	ddos_detector_free(d);
	free(l);
}

/* ---- detection ---- */

static void test_trigger_cooldown(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_basic, l);
	struct flood f = { "203.0.113.20", 17, 0, 40000, 0, 20000, 100, 10, 1 };

	(void)state;
	/* Two seconds over (trigger is 3): nothing. */
	run(d, T0, T0 + 10, NULL, NULL);
	run(d, T0 + 10, T0 + 12, gen_flood, &f);
	run(d, T0 + 12, T0 + 30, NULL, NULL);
	assert_int_equal(l->starts, 0);
	/* Ten seconds over from T0+40. Second s closes at the tick of s + 2
	 * (delay 1 s), but a second whose records already pass the threshold
	 * is known over before it closes: the third second over, T0+42,
	 * counts at the tick of T0+43, once its records are in. */
	run(d, T0 + 30, T0 + 40, NULL, NULL);
	run(d, T0 + 40, T0 + 42, gen_flood, &f);
	assert_int_equal(l->starts, 0);
	gen_flood(d, T0 + 42, &f);
	assert_int_equal(l->starts, 0);   /* nothing decides between ticks */
	ddos_detector_tick(d, (T0 + 43) * 1000);
	assert_int_equal(l->starts, 1);
	assert_int_equal(ddos_detector_stats(d)->early, 1);
	run(d, T0 + 43, T0 + 44, gen_flood, &f);
	assert_int_equal(l->start[0].start, T0 + 40);
	assert_string_equal(l->start[0].target_str, "203.0.113.20");
	assert_int_equal(l->start[0].kind, DDOS_T_HOST);
	assert_int_equal(l->start[0].end, 0);
	assert_non_null(strstr(l->start[0].trigger, "> "));
	{
		struct ddos_target_view v;
		assert_int_equal(ddos_count_host(ddos_detector_counters(d),
						 (struct flow_ip[]){ ip("203.0.113.20") }, &v), 0);
		assert_true(v.in_attack);
		assert_true(v.over);
		assert_true(v.detailed);
		assert_int_equal(v.nsrc, 10);
		assert_true(v.cls[DDOS_C_UDP].pps > 19000);
		assert_string_equal(v.group, "web");
	}
	assert_int_equal(ddos_detector_active(d), 1);
	run(d, T0 + 44, T0 + 50, gen_flood, &f);
	/* Last second over: T0+49. Cool-down 5 s: under T0+50..54, ended when
	 * T0+54 is judged (tick T0+56). */
	run(d, T0 + 50, T0 + 55, NULL, NULL);
	assert_int_equal(l->ends, 0);
	run(d, T0 + 55, T0 + 56, NULL, NULL);
	assert_int_equal(l->ends, 1);
	assert_int_equal(l->end[0].id, l->start[0].id);
	assert_int_equal(l->end[0].last, T0 + 49);
	assert_int_equal(l->end[0].end, T0 + 50);
	assert_true(fabs(l->end[0].peak_pps - 20000) < 10);
	assert_true(fabs(l->end[0].peak_bps - 20000 * 100 * 8) < 20000);
	assert_true(l->end[0].nsrc == 10);
	assert_true(l->end[0].npoints >= 10);
	assert_int_equal(ddos_detector_active(d), 0);
	/* A new attack later gets a new id. */
	run(d, T0 + 60, T0 + 65, gen_flood, &f);
	assert_int_equal(l->starts, 2);
	assert_true(l->start[1].id > l->start[0].id);
	assert_int_equal(ddos_detector_stats(d)->started, 2);
	ddos_detector_free(d);
	free(l);
}

/* ---- early decisions: a second still open that is already over ---- */

/* Chunk k of n of second t: what a sampled exporter sends in that tenth
 * of the second (records without duration, stamped on arrival). */
static void add_chunk(struct ddos_detector *d, const char *dst, int64_t t, int k, int n, double pps,
		      unsigned size)
{
	for (int i = 0; i < 4; i++) {
		char src[32];
		uint64_t p = (uint64_t)(pps / n / 4 + 0.5);
		int64_t at = t * 1000 + k * 1000 / n;
		struct flow_rec r;
		snprintf(src, sizeof(src), "198.51.100.%d", 1 + i);
		r = rec(src, dst, 17, 40000, p * size, p, at, at);
		ddos_detector_add(d, &r);
	}
}

/* Second t as ten chunks with a tick after each: the collector ticks ten
 * times a second. Returns the tick (ms) that saw the first start, or 0. */
static int64_t run_chunked(struct ddos_detector *d, struct log *l, const char *dst, int64_t t,
			   double pps, unsigned size)
{
	int64_t seen = 0;

	for (int k = 0; k < 10; k++) {
		int before = l->starts;
		if (pps > 0)
			add_chunk(d, dst, t, k, 10, pps, size);
		ddos_detector_tick(d, t * 1000 + (k + 1) * 100 - 1);
		if (!seen && l->starts > before)
			seen = t * 1000 + (k + 1) * 100 - 1;
	}
	return seen;
}

#define CFG_EARLY \
	"ddos:\n" \
	"  delay: 1s\n" \
	"  groups:\n" \
	"    - name: web\n" \
	"      prefixes: [203.0.113.0/24]\n" \
	"      trigger: 1s\n" \
	"      cooldown: 3s\n" \
	"      baseline: 0\n" \
	"      thresholds:\n" \
	"        total: { pps: 20k, bps: 0 }\n"

static const char *cfg_early = CFG_EARLY;

/* 24 kpps against 20 kpps (1.2x), arriving through the second: the
 * attack starts at the tick its second's traffic so far passes 20k (the
 * ninth tenth), a second and a tenth before that second closes; the
 * figures it starts with are that second's as they stood, and the second
 * is counted once, when it closes. */
static void test_early_start(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_early, l);
	int64_t at;

	(void)state;
	run(d, T0, T0 + 10, NULL, NULL);
	at = run_chunked(d, l, "203.0.113.5", T0 + 10, 24000, 1000);
	assert_int_equal(l->starts, 1);
	assert_int_equal(at, (T0 + 10) * 1000 + 899);   /* 21.6k after 9 tenths; 19.2k after 8 */
	assert_int_equal(l->start[0].start, T0 + 10);
	assert_string_equal(l->start[0].target_str, "203.0.113.5");
	assert_true(fabs(l->start[0].peak_pps - 21600) < 10);
	assert_true(fabs(l->start[0].packets - 21600) < 10);   /* so far; replaced at the close */
	assert_non_null(strstr(l->start[0].trigger, "total pps"));
	assert_int_equal(ddos_detector_stats(d)->early, 1);
	for (int64_t t = T0 + 11; t < T0 + 15; t++)
		run_chunked(d, l, "203.0.113.5", t, 24000, 1000);
	for (int64_t t = T0 + 15; t < T0 + 22; t++)
		run_chunked(d, l, "203.0.113.5", t, 0, 1000);
	assert_int_equal(l->starts, 1);
	assert_int_equal(l->ends, 1);
	assert_int_equal(l->end[0].start, T0 + 10);
	assert_int_equal(l->end[0].last, T0 + 14);
	assert_true(fabs(l->end[0].peak_pps - 24000) < 10);
	assert_true(fabs(l->end[0].packets - 5 * 24000) < 50);   /* T0+10 counted once */
	assert_int_equal(l->last_np, 5 + 3);   /* five seconds over, three of cool-down */
	assert_true(l->last_tl[0].t == T0 + 10);
	ddos_detector_free(d);

	/* 10x: two tenths of the second (one is exactly the threshold, which
	 * is not over it). */
	d = detector(cfg_early, l);
	run(d, T0, T0 + 10, NULL, NULL);
	at = run_chunked(d, l, "203.0.113.6", T0 + 10, 200000, 1000);
	assert_int_equal(at, (T0 + 10) * 1000 + 199);
	ddos_detector_free(d);
	free(l);
}

/* Tenths k0 .. 9 of second t, then ticks through the following seconds up
 * to `until` (ms, exclusive), every tenth carrying pps as `recs` records of
 * `sampling` (each stamped on arrival); the clock ticks after each tenth.
 * Returns the tick (ms) that saw the first start, or 0. */
static int64_t run_tenths(struct ddos_detector *d, struct log *l, const char *dst, int64_t t,
			  int k0, int64_t until, double pps, int recs, uint32_t sampling)
{
	int64_t seen = 0;

	for (int64_t at = t * 1000 + k0 * 100; at < until; at += 100) {
		int before = l->starts;
		for (int i = 0; i < recs; i++) {
			char src[32];
			uint64_t p = (uint64_t)(pps / 10 / recs / sampling + 0.5);
			struct flow_rec r;
			snprintf(src, sizeof(src), "198.51.100.%d", 1 + i % 200);
			r = rec(src, dst, 17, 40000, p * 1000, p, at + i * 100 / recs, at + i * 100 / recs);
			r.sampling = sampling;
			ddos_detector_add(d, &r);
		}
		ddos_detector_tick(d, at + 99);
		if (!seen && l->starts > before)
			seen = at + 99;
	}
	return seen;
}

/* The last second, sliding: 24 kpps (1.2x) from 0.2 s into second T0+10,
 * so that second holds 19.2k, under 20k. The calendar seconds would decide
 * at T0+11.899 (21.6k of T0+11 so far); the second that ends at the tick,
 * 0.8 x 19.2k of T0+10's tail and 4.8k of T0+11, passes 20k at T0+11.199,
 * 1.0 s after the attack's first packet. The attack starts with T0+11
 * (T0+10, under, is not part of it) and its peak is the closed seconds'
 * 24k. Steady traffic just under the threshold, in many records or in
 * few, never passes. A host that normally carries half the threshold gets
 * the same attack in 40 records a second: 20.2k from 34 records is no
 * clear change from 10k (4 standard errors), so it waits for the calendar
 * (T0+11.899) where a host that carried nothing decides at T0+11.199. */
static void test_early_window(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_early, l);
	int64_t at;

	(void)state;
	run(d, T0, T0 + 10, NULL, NULL);
	at = run_tenths(d, l, "203.0.113.5", T0 + 10, 2, (T0 + 11) * 1000, 24000, 40, 1);
	assert_int_equal(at, 0);
	at = run_tenths(d, l, "203.0.113.5", T0 + 11, 0, (T0 + 15) * 1000, 24000, 40, 1);
	assert_int_equal(l->starts, 1);
	assert_int_equal(at, (T0 + 11) * 1000 + 199);
	assert_int_equal(l->start[0].start, T0 + 11);
	assert_non_null(strstr(l->start[0].trigger, "total pps"));
	assert_true(l->start[0].peak_pps > 20000 && l->start[0].peak_pps <= 24000 * 1.1);
	assert_int_equal(ddos_detector_stats(d)->early, 1);
	assert_int_equal(ddos_detector_stats(d)->window, 1);
	run(d, T0 + 15, T0 + 22, NULL, NULL);
	assert_int_equal(l->ends, 1);
	assert_int_equal(l->end[0].start, T0 + 11);
	assert_true(fabs(l->end[0].peak_pps - 24000) < 10);
	ddos_detector_free(d);

	/* 0.95x for a minute, in 400 records a second or in 20. */
	for (int recs = 40; recs >= 2; recs /= 20) {
		d = detector(cfg_early, l);
		run(d, T0, T0 + 10, NULL, NULL);
		run_tenths(d, l, "203.0.113.5", T0 + 10, 3, (T0 + 70) * 1000, 19000, recs, 1);
		run(d, T0 + 70, T0 + 75, NULL, NULL);
		assert_int_equal(l->starts, 0);
		ddos_detector_free(d);
	}

	/* Few records: the host's baseline decides whether the window may. */
	for (int busy = 0; busy < 2; busy++) {
		d = detector(cfg_early, l);
		if (busy)
			run_tenths(d, l, "203.0.113.5", T0, 0, (T0 + 120) * 1000, 10000, 4, 1);
		else
			run(d, T0, T0 + 120, NULL, NULL);
		run(d, T0 + 120, T0 + 122, NULL, NULL);
		assert_int_equal(l->starts, 0);
		at = run_tenths(d, l, "203.0.113.5", T0 + 122, 2, (T0 + 123) * 1000, 24000, 4, 1);
		assert_int_equal(at, 0);
		at = run_tenths(d, l, "203.0.113.5", T0 + 123, 0, (T0 + 124) * 1000, 24000, 4, 1);
		assert_int_equal(l->starts, 1);
		assert_int_equal(at, (T0 + 123) * 1000 + (busy ? 899 : 199));
		assert_int_equal(ddos_detector_stats(d)->window, busy ? 0 : 1);
		ddos_detector_free(d);
	}

	/* Flows exported every minute on a host new to them (1,000 records a
	 * second of 60 s, 120 kpps in all, 0.6x a 200 kpps threshold): the
	 * current second holds what the records spread into it, and the next
	 * one nearly as much; the window counts only what ends now, so it
	 * never reads a second and a half's worth (216k at a fifth of a
	 * second, over, and a change from a baseline still learning). */
	{
		char y[512];
		snprintf(y, sizeof(y), "%.*s200k, bps: 0 }\n", (int)(strstr(cfg_early, "20k") - cfg_early),
			 cfg_early);
		d = detector(y, l);
	}
	for (int64_t ms = T0 * 1000; ms < (T0 + 120) * 1000; ms += 100) {
		for (int i = 0; i < 100; i++) {
			char src[32];
			struct flow_rec r;
			snprintf(src, sizeof(src), "198.51.100.%d", 1 + i);
			r = rec(src, "203.0.113.5", 6, 443, 120 * 1000, 120, ms - 60000, ms);
			r.tcp_flags = 0x18;
			ddos_detector_add(d, &r);
		}
		ddos_detector_tick(d, ms + 99);
	}
	assert_int_equal(l->starts, 0);
	{
		struct ddos_target_view v;
		assert_int_equal(ddos_count_host(ddos_detector_counters(d),
						 (struct flow_ip[]){ ip("203.0.113.5") }, &v), 0);
		assert_true(fabs(v.cls[DDOS_C_TOTAL].pps - 120000) < 12000);
	}
	ddos_detector_free(d);

	/* sliding_second: off leaves the calendar seconds alone. */
	{
		char y[512];
		snprintf(y, sizeof(y), "%s      sliding_second: off\n", cfg_early);
		d = detector(y, l);
		run(d, T0, T0 + 10, NULL, NULL);
		run_tenths(d, l, "203.0.113.5", T0 + 10, 2, (T0 + 11) * 1000, 24000, 40, 1);
		at = run_tenths(d, l, "203.0.113.5", T0 + 11, 0, (T0 + 12) * 1000, 24000, 40, 1);
		assert_int_equal(at, (T0 + 11) * 1000 + 899);
		assert_int_equal(ddos_detector_stats(d)->window, 0);
		ddos_detector_free(d);
	}
	free(l);
}

/* Bursts shorter than the trigger start nothing, early or not. */
static void test_early_burst(void **state)
{
	static const char *y2 =
		"ddos:\n"
		"  delay: 1s\n"
		"  groups:\n"
		"    - name: web\n"
		"      prefixes: [203.0.113.0/24]\n"
		"      trigger: 2s\n"
		"      cooldown: 3s\n"
		"      baseline: 0\n"
		"      thresholds:\n"
		"        total: { pps: 20k, bps: 0 }\n";
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(y2, l);

	(void)state;
	/* Trigger 2 s: one second at 5x, then quiet; twice. */
	run(d, T0, T0 + 10, NULL, NULL);
	for (int rep = 0; rep < 2; rep++) {
		run_chunked(d, l, "203.0.113.5", T0 + 10 + rep * 10, 100000, 1000);
		for (int64_t t = T0 + 11 + rep * 10; t < T0 + 20 + rep * 10; t++)
			run_chunked(d, l, "203.0.113.5", t, 0, 1000);
	}
	assert_int_equal(l->starts, 0);
	/* Two seconds over: the second one decides before it closes, when
	 * it passes 20k on its own (21k after seven tenths; a 2 s trigger
	 * keeps to calendar seconds, no sliding one). */
	run_chunked(d, l, "203.0.113.5", T0 + 40, 30000, 1000);
	assert_int_equal(l->starts, 0);
	assert_int_equal(run_chunked(d, l, "203.0.113.5", T0 + 41, 30000, 1000), (T0 + 41) * 1000 + 699);
	assert_int_equal(l->start[0].start, T0 + 40);
	ddos_detector_free(d);

	/* Trigger 1 s: 1.5x for half a second is 0.75x over the second. */
	d = detector(cfg_early, l);
	run(d, T0, T0 + 10, NULL, NULL);
	for (int k = 0; k < 10; k++) {
		if (k < 5)
			add_chunk(d, "203.0.113.5", T0 + 10, k, 10, 30000, 1000);
		ddos_detector_tick(d, (T0 + 10) * 1000 + (k + 1) * 100 - 1);
	}
	run(d, T0 + 11, T0 + 20, NULL, NULL);
	assert_int_equal(l->starts, 0);
	/* A router's 60-second records of a benign 5 kpps flow, against 10
	 * kpps and a 1 s trigger: spread, never over. */
	ddos_detector_free(d);
	{
		static const char *y1 =
			"ddos:\n"
			"  delay: 1s\n"
			"  groups:\n"
			"    - name: web\n"
			"      prefixes: [203.0.113.0/24]\n"
			"      trigger: 1s\n"
			"      baseline: 0\n"
			"      thresholds:\n"
			"        total: { pps: 10k, bps: 0 }\n";
		d = detector(y1, l);
		run(d, T0, T0 + 300, gen_benign, NULL);
		assert_int_equal(l->starts, 0);
		ddos_detector_free(d);
	}
	free(l);
}

/* A carpet whose hosts pass their own threshold (1 kpps) before the /24
 * passes its own (400 kpps) within the second: the hosts wait for the
 * /24 to be judged, and it is one attack on the /24. */
static void test_early_carpet(void **state)
{
	static const char *y =
		"ddos:\n"
		"  delay: 1s\n"
		"  groups:\n"
		"    - name: isp\n"
		"      prefixes: [203.0.113.0/24]\n"
		"      trigger: 1s\n"
		"      cooldown: 3s\n"
		"      baseline: 0\n"
		"      thresholds:\n"
		"        total: { pps: 1k, bps: 0 }\n"
		"        amplification: { bps: 0 }\n"
		"      prefix_thresholds:\n"
		"        total: { pps: 400k, bps: 0 }\n"
		"      group_thresholds:\n"
		"        total: { pps: 0, bps: 0 }\n";
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(y, l);

	(void)state;
	for (int64_t t = T0; t < T0 + 6; t++)
		for (int k = 0; k < 10; k++) {
			for (int h = 1; h <= 254; h++) {
				char dst[32];
				struct flow_rec r;
				int64_t at = t * 1000 + k * 100;
				snprintf(dst, sizeof(dst), "203.0.113.%d", h);
				r = rec("198.51.100.9", dst, 17, 53, 200 * 512, 200, at, at);
				ddos_detector_add(d, &r);
			}
			ddos_detector_tick(d, t * 1000 + k * 100 + 99);
		}
	run(d, T0 + 6, T0 + 12, NULL, NULL);
	assert_int_equal(l->starts, 1);
	assert_int_equal(l->start[0].kind, DDOS_T_PREFIX);
	assert_string_equal(l->start[0].target_str, "203.0.113.0/24");
	assert_int_equal(ddos_detector_stats(d)->early, 0);
	ddos_detector_free(d);
	free(l);
}

/* The baseline multiple decides early too. */
static void test_early_baseline(void **state)
{
	static const char *y =
		"ddos:\n"
		"  delay: 1s\n"
		"  baseline_window: 60s\n"
		"  baseline_warmup: 60s\n"
		"  groups:\n"
		"    - name: web\n"
		"      prefixes: [203.0.113.0/24]\n"
		"      trigger: 1s\n"
		"      baseline: 4\n"
		"      baseline_floor_pps: 5k\n"
		"      baseline_floor_bps: 1G\n"
		"      thresholds:\n"
		"        total: { pps: 150k, bps: 0 }\n";
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(y, l);
	struct flood normal = { "203.0.113.30", 6, 0x18, 443, 0, 2000, 500, 5, 1 };
	int64_t at;

	(void)state;
	run(d, T0, T0 + 120, gen_flood, &normal);
	assert_int_equal(l->starts, 0);
	/* 12 kpps: over 4 x 2k = 8k (and the 5k floor) at two thirds of the
	 * second; under the static 150k. */
	at = run_chunked(d, l, "203.0.113.30", T0 + 120, 12000, 500);
	assert_int_equal(l->starts, 1);
	assert_int_equal(at, (T0 + 120) * 1000 + 699);   /* 8.4k after 7 tenths */
	assert_non_null(strstr(l->start[0].trigger, "baseline"));
	assert_int_equal(l->start[0].start, T0 + 120);
	ddos_detector_free(d);
	free(l);
}

static void test_baseline(void **state)
{
	static const char *y =
		"ddos:\n"
		"  delay: 1s\n"
		"  baseline_window: 60s\n"
		"  baseline_warmup: 60s\n"
		"  groups:\n"
		"    - name: web\n"
		"      prefixes: [203.0.113.0/24]\n"
		"      trigger: 2s\n"
		"      baseline: 4\n"
		"      baseline_floor_pps: 5k\n"
		"      baseline_floor_bps: 1G\n"
		"      thresholds:\n"
		"        total: { pps: 150k, bps: 0 }\n";
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(y, l);
	struct flood normal = { "203.0.113.30", 6, 0x18, 443, 0, 2000, 500, 5, 1 };
	struct flood jump = { "203.0.113.30", 6, 0x18, 443, 0, 12000, 500, 5, 1 };
	struct flood small = { "203.0.113.31", 6, 0x18, 443, 0, 100, 500, 1, 1 };
	struct flood small_jump = { "203.0.113.31", 6, 0x18, 443, 0, 3000, 500, 1, 1 };
	struct ddos_target_view v;

	(void)state;
	/* 2 kpps for two minutes: the baseline learns it. */
	run(d, T0, T0 + 120, gen_flood, &normal);
	if (l->starts)
		fail_msg("started: %s", l->start[0].trigger);
	assert_int_equal(ddos_count_host(ddos_detector_counters(d),
					 (struct flow_ip[]){ ip("203.0.113.30") }, &v), 0);
	assert_true(fabs(v.base_pps - 2000) < 100);
	assert_int_equal(l->starts, 0);
	/* 12 kpps: under the static 150k, over 4 x 2k = 8k and the 5k floor. */
	run(d, T0 + 120, T0 + 130, gen_flood, &jump);
	assert_int_equal(l->starts, 1);
	assert_non_null(strstr(l->start[0].trigger, "baseline"));
	/* Learning paused during the attack. */
	assert_int_equal(ddos_count_host(ddos_detector_counters(d),
					 (struct flow_ip[]){ ip("203.0.113.30") }, &v), 0);
	assert_true(v.base_pps < 2500);
	ddos_detector_free(d);

	/* 100 pps normally, then 3 kpps: 30 times the baseline, under the
	 * 5 kpps floor: no alarm. */
	d = detector(y, l);
	run(d, T0, T0 + 120, gen_flood, &small);
	run(d, T0 + 120, T0 + 140, gen_flood, &small_jump);
	assert_int_equal(l->starts, 0);
	ddos_detector_free(d);

	/* Before the warm-up the baseline says nothing. */
	d = detector(y, l);
	run(d, T0, T0 + 20, gen_flood, &normal);
	run(d, T0 + 20, T0 + 30, gen_flood, &jump);
	assert_int_equal(l->starts, 0);
	ddos_detector_free(d);
	free(l);
}

/* 254 hosts of 203.0.113.0/24 at 2 kpps each: one attack on the /24,
 * none on the hosts (each over its own 1 kpps threshold). */
static void add_to(void *d, const struct flow_rec *r)
{
	ddos_detector_add(d, r);
}

static void gen_carpet(struct ddos_detector *d, int64_t t, void *arg)
{
	ddos_test_carpet(arg, t, add_to, d);
}

static const char *cfg_carpet =
	"ddos:\n"
	"  delay: 1s\n"
	"  groups:\n"
	"    - name: isp\n"
	"      prefixes: [203.0.113.0/24, 198.18.0.0/16, 2001:db8::/32]\n"
	"      trigger: 2s\n"
	"      cooldown: 5s\n"
	"      baseline: 0\n"
	"      thresholds:\n"
	"        total: { pps: 1k, bps: 0 }\n"
	"        amplification: { bps: 0 }\n"
	"      prefix_thresholds:\n"
	"        total: { pps: 300k, bps: 0 }\n"
	"      group_thresholds:\n"
	"        total: { pps: 0, bps: 0 }\n";

static void test_carpet(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_carpet, l);

	(void)state;
	run(d, T0, T0 + 20, gen_carpet, "203.0.113.");
	assert_int_equal(l->starts, 1);
	assert_int_equal(l->start[0].kind, DDOS_T_PREFIX);
	assert_string_equal(l->start[0].target_str, "203.0.113.0/24");
	assert_int_equal(l->start[0].plen, 24);
	assert_non_null(strstr(l->start[0].summary, "carpet bombing of 203.0.113.0/24"));
	assert_true(l->start[0].vectors & DDOS_V_CARPET);
	assert_true(l->start[0].hosts >= 250);
	assert_true(fabs(l->start[0].peak_pps - 508000) < 1000);
	assert_true(ddos_detector_stats(d)->suppressed > 0);
	run(d, T0 + 20, T0 + 30, NULL, NULL);
	assert_int_equal(l->ends, 1);
	assert_non_null(strstr(l->end[0].summary, "DNS amplification"));
	assert_int_equal(l->starts, 1);   /* and no host attack ever */
	ddos_detector_free(d);

	/* One host at 400 kpps in the same /24: a host attack, not a carpet. */
	d = detector(cfg_carpet, l);
	{
		struct flood f = { "203.0.113.77", 17, 0, 40000, 0, 400000, 100, 50, 1 };
		run(d, T0, T0 + 10, gen_flood, &f);
	}
	assert_int_equal(l->starts, 1);
	assert_int_equal(l->start[0].kind, DDOS_T_HOST);
	assert_string_equal(l->start[0].target_str, "203.0.113.77");
	ddos_detector_free(d);

	/* IPv6: the /48 aggregate. */
	d = detector(cfg_carpet, l);
	run(d, T0, T0 + 10, gen_carpet, "2001:db8:1::");
	assert_int_equal(l->starts, 1);
	assert_int_equal(l->start[0].kind, DDOS_T_PREFIX);
	assert_string_equal(l->start[0].target_str, "2001:db8:1::/48");
	assert_int_equal(l->start[0].target.family, FLOW_IPV6);
	ddos_detector_free(d);
	free(l);
}

/* A carpet over more hosts than the host table holds: the few hosts it
 * tracks are fewer than carpet_min_hosts, yet most of the /24's traffic
 * went to hosts it could not track, so the traffic is spread. */
static void test_carpet_table_full(void **state)
{
	static const char *y =
		"ddos:\n"
		"  delay: 1s\n"
		"  max_hosts: 16\n"
		"  carpet_min_hosts: 32\n"
		"  groups:\n"
		"    - name: isp\n"
		"      prefixes: [203.0.113.0/24]\n"
		"      trigger: 2s\n"
		"      cooldown: 5s\n"
		"      baseline: 0\n"
		"      thresholds:\n"
		"        total: { pps: 1k, bps: 0 }\n"
		"        amplification: { bps: 0 }\n"
		"      prefix_thresholds:\n"
		"        total: { pps: 300k, bps: 0 }\n"
		"      group_thresholds:\n"
		"        total: { pps: 0, bps: 0 }\n";
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(y, l);
	int prefix = 0;

	(void)state;
	run(d, T0, T0 + 20, gen_carpet, "203.0.113.");
	assert_true(ddos_count_stats(ddos_detector_counters(d))->hosts_dropped > 0);
	for (int i = 0; i < l->starts; i++)
		if (l->start[i].kind == DDOS_T_PREFIX) {
			prefix++;
			assert_string_equal(l->start[i].target_str, "203.0.113.0/24");
			assert_true(l->start[i].vectors & DDOS_V_CARPET);
		}
	assert_int_equal(prefix, 1);
	ddos_detector_free(d);
	free(l);
}

/* Carpet bombing of a whole group spread over several /24s. */
static void gen_group_carpet(struct ddos_detector *d, int64_t t, void *arg)
{
	(void)arg;
	ddos_test_group_carpet(t, add_to, d);
}

static void test_group_carpet(void **state)
{
	static const char *y =
		"ddos:\n"
		"  delay: 1s\n"
		"  groups:\n"
		"    - name: isp\n"
		"      prefixes: [198.18.0.0/16]\n"
		"      trigger: 2s\n"
		"      baseline: 0\n"
		"      thresholds:\n"
		"        total: { pps: 1k, bps: 0 }\n"
		"      prefix_thresholds:\n"
		"        total: { pps: 100k, bps: 0 }\n"
		"      group_thresholds:\n"
		"        total: { pps: 150k, bps: 0 }\n";
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(y, l);

	(void)state;
	/* 8 /24s x 50 hosts x 500 pps = 200 kpps: over the group's 150k, each
	 * /24 (25 kpps) and host (500 pps) under its own. */
	run(d, T0, T0 + 10, gen_group_carpet, NULL);
	assert_int_equal(l->starts, 1);
	assert_int_equal(l->start[0].kind, DDOS_T_GROUP);
	assert_non_null(strstr(l->start[0].summary, "carpet bombing of group isp"));
	assert_non_null(strstr(l->start[0].summary, "SYN flood"));
	assert_string_equal(l->start[0].group, "isp");
	ddos_detector_free(d);
	free(l);
}

/* Each vector is named from its traffic. */
static void test_vectors(void **state)
{
	static const struct {
		struct flood f;
		const char *name;
		uint32_t v;
	} cases[] = {
		{ { "203.0.113.40", 17, 0, 11211, 0, 200000, 1400, 20, 1 }, "memcached amplification", DDOS_V_AMP },
		{ { "203.0.113.40", 17, 0, 53, 0, 200000, 1200, 20, 1 }, "DNS amplification", DDOS_V_AMP },
		{ { "203.0.113.40", 17, 0, 123, 0, 200000, 468, 20, 1 }, "NTP amplification", DDOS_V_AMP },
		{ { "203.0.113.40", 17, 0, 1900, 0, 200000, 300, 20, 1 }, "SSDP amplification", DDOS_V_AMP },
		{ { "203.0.113.40", 17, 0, 389, 0, 200000, 1400, 20, 1 }, "CLDAP amplification", DDOS_V_AMP },
		{ { "203.0.113.40", 6, 0x02, 4444, 0, 200000, 60, 20, 1 }, "SYN flood", DDOS_V_SYN },
		{ { "203.0.113.40", 6, 0x10, 4444, 0, 200000, 60, 20, 1 }, "ACK flood", DDOS_V_ACK },
		{ { "203.0.113.40", 6, 0x14, 4444, 0, 200000, 60, 20, 1 }, "RST flood", DDOS_V_RST },
		{ { "203.0.113.40", 17, 0, 40000, 0, 200000, 100, 20, 1 }, "UDP flood", DDOS_V_UDP },
		{ { "203.0.113.40", 1, 0, 0, 0, 200000, 100, 20, 1 }, "ICMP flood", DDOS_V_ICMP },
		{ { "203.0.113.40", 17, 0, 0, FLOW_F_FRAGMENT, 200000, 1480, 20, 1 }, "IP fragment flood",
		  DDOS_V_FRAG },
		{ { "203.0.113.40", 47, 0, 0, 0, 200000, 100, 20, 1 }, "IP protocol flood", DDOS_V_OTHER },
		{ { "2001:db8::40", 17, 0, 11211, 0, 200000, 1400, 20, 1 }, "memcached amplification",
		  DDOS_V_AMP },
		/* sFlow-like: 1:1000 sampled. */
		{ { "203.0.113.40", 17, 0, 123, 0, 200000, 468, 20, 1000 }, "NTP amplification", DDOS_V_AMP },
	};
	struct log *l = calloc(1, sizeof(*l));

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ddos_detector *d = detector(cfg_basic, l);
		run(d, T0, T0 + 10, gen_flood, (void *)&cases[i].f);
		run(d, T0 + 10, T0 + 20, NULL, NULL);
		if (l->starts != 1 || l->ends != 1 || strcmp(l->end[0].summary, cases[i].name) != 0 ||
		    !(l->end[0].vectors & cases[i].v))
			fail_msg("case %zu: %d starts, %d ends, '%s' (want '%s')", i, l->starts, l->ends,
				 l->ends ? l->end[0].summary : "", cases[i].name);
		if (cases[i].v == DDOS_V_AMP) {
			assert_int_equal(l->end[0].proto, 17);
			assert_true(l->end[0].nport >= 1);
			assert_int_equal(l->end[0].port[0].port, cases[i].f.sport);
		}
		ddos_detector_free(d);
	}
	free(l);
}

/* The rule an attack's tier asks for, under cfg's ddos: section. */
static int rule_of(const char *yaml, const struct ddos_attack *a, struct mitig_request *rq,
		   char *what, size_t n)
{
	struct ddos_config cfg;
	struct buf err;
	int due;

	buf_init(&err, 0);
	if (load(yaml, &cfg, &err) != 0)
		fail_msg("config: %s", err.p);
	due = ddos_attack_mitigation(a, &cfg, rq, what, n);
	ddos_config_free(&cfg);
	buf_fini(&err);
	return due;
}

static const char *cfg_vec = CFG_EARLY
	"      tiers:\n"
	"        - { name: flowspec-discard, bps: 1M }\n";

/* An attack seen at 1:3000 through 8 samples a second (24 kpps against
 * 20 kpps): its first second's fragments are not enough to name it. It
 * starts "unclassified flood (classifying)", with no vector and no
 * protocol, so a filter waits; the protocol counts from 12 samples, the
 * name from 32 (or 4 seconds). */
static void test_classify_few_samples(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_vec, l);
	struct flood f = { "203.0.113.41", 17, 0, 0, FLOW_F_FRAGMENT, 24000, 1480, 8, 3000 };
	struct mitig_request rq;
	char what[320];

	(void)state;
	run(d, T0, T0 + 8, gen_flood, &f);
	run(d, T0 + 8, T0 + 16, NULL, NULL);
	assert_int_equal(l->starts, 1);
	assert_int_equal(l->ends, 1);
	assert_true(l->start[0].classifying);
	assert_true(l->start[0].records < DDOS_PROTO_RECORDS);
	assert_string_equal(l->start[0].summary, "unclassified flood (classifying)");
	assert_int_equal(l->start[0].vectors, 0);
	assert_int_equal(l->start[0].proto, 0);
	assert_false(l->start[0].match_ready);
	assert_int_equal(rule_of(cfg_vec, &l->start[0], &rq, what, sizeof(what)), 0);
	assert_non_null(strstr(what, "waits"));
	/* Established later: the protocol first (a provisional match), then
	 * the name, which keeps the match (fragments of UDP: UDP). */
	assert_true(l->matches >= 1);
	assert_true(l->match[0].match_ready);
	assert_int_equal(l->match[0].match_proto, 17);
	assert_true(l->match[0].records >= DDOS_PROTO_RECORDS);
	assert_string_equal(l->end[0].summary, "IP fragment flood");
	assert_false(l->end[0].classifying);
	assert_int_equal(rule_of(cfg_vec, &l->end[0], &rq, what, sizeof(what)), 1);
	assert_int_equal(rq.rule.proto, 17);
	assert_int_equal(rq.rule.nsport, 0);
	ddos_detector_free(d);
	free(l);
}

/* A memcached reflection at 1:1000 (60 samples a second, each stamped on
 * arrival, ten ticks a second) against 20 kpps: it starts early, from
 * the 24 samples of its open second (too few to name: classifying, the
 * protocol established), and is named from that same second as soon as
 * it holds 32, before it closes; its match goes to UDP from 11211 at
 * once (the first name after a protocol-only match needs no hold). */
static void test_classify_open_second(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_vec, l);
	int64_t named = 0, at;

	(void)state;
	run(d, T0, T0 + 10, NULL, NULL);
	for (at = (T0 + 10) * 1000; at < (T0 + 14) * 1000; at += 100) {
		for (int i = 0; i < 6; i++) {
			char src[32];
			struct flow_rec r;
			snprintf(src, sizeof(src), "198.51.100.%d", 1 + i);
			r = rec(src, "203.0.113.43", 17, 11211, 1400, 1, at + i * 10, at + i * 10);
			r.sampling = 1000;
			ddos_detector_add(d, &r);
		}
		ddos_detector_tick(d, at + 99);
		if (!named && l->matches)
			named = at + 99;
	}
	assert_int_equal(l->starts, 1);
	assert_true(l->start[0].classifying);
	assert_string_equal(l->start[0].summary, "unclassified flood (classifying)");
	assert_true(l->start[0].match_ready);   /* 24 samples of UDP: the protocol */
	assert_int_equal(l->start[0].match_amp, 0);
	assert_int_equal(l->start[0].match_proto, 17);
	assert_true(l->matches >= 1);
	assert_string_equal(l->match[0].summary, "memcached amplification");
	assert_int_equal(l->match[0].match_amp, 1u << 0);
	assert_int_equal(l->match[0].last, l->start[0].last);   /* its second still open */
	assert_true(named > 0 && named < (l->start[0].last + 1) * 1000);
	ddos_detector_free(d);
	free(l);
}

/* A memcached reflection whose first records are fragments (the
 * replies' first fragments, with the port, come later): it starts named
 * "IP fragment flood" with a rule on UDP, then the memcached records
 * come; once the new match has held DDOS_MATCH_HOLD seconds it becomes
 * UDP from 11211, once (no flapping), and the rule follows. */
static void gen_frag_then_memcached(struct ddos_detector *d, int64_t t, void *arg)
{
	struct flood frag = { "203.0.113.42", 17, 0, 0, FLOW_F_FRAGMENT, 50000, 1480, 100, 1 };
	struct flood mc = { "203.0.113.42", 17, 0, 11211, 0, 50000, 1400, 100, 1 };

	(void)arg;
	gen_flood(d, t, t < T0 + 3 ? &frag : &mc);
}

static void test_vector_change(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_vec, l);
	struct mitig_request rq;
	char what[320];

	(void)state;
	run(d, T0, T0 + 10, gen_frag_then_memcached, NULL);
	run(d, T0 + 10, T0 + 20, NULL, NULL);
	assert_int_equal(l->starts, 1);
	assert_int_equal(l->ends, 1);
	assert_string_equal(l->start[0].summary, "IP fragment flood");
	assert_true(l->start[0].match_ready);
	assert_int_equal(l->start[0].match_amp, 0);
	assert_int_equal(rule_of(cfg_vec, &l->start[0], &rq, what, sizeof(what)), 1);
	assert_string_equal(what, "flowspec-discard 203.0.113.42/32 udp (tier flowspec-discard)");
	/* One change of the match, to memcached, after it held. */
	if (l->matches != 1)
		fail_msg("%d changes of the match", l->matches);
	assert_int_equal(l->match[0].match_amp, 1u << 0);   /* ddos_vectors[0]: memcached */
	assert_int_equal(l->match[0].match_proto, 17);
	assert_true(l->match[0].last >= T0 + 3 + DDOS_MATCH_HOLD - 1);
	assert_non_null(strstr(l->match[0].summary, "memcached amplification"));
	assert_int_equal(rule_of(cfg_vec, &l->match[0], &rq, what, sizeof(what)), 1);
	assert_string_equal(what, "flowspec-discard 203.0.113.42/32 udp sport 11211 (tier "
			    "flowspec-discard)");
	assert_non_null(strstr(l->end[0].summary, "memcached amplification"));
	assert_int_equal(l->end[0].match_amp, 1u << 0);
	ddos_detector_free(d);
	free(l);
}

static void test_classify_pure(void **state)
{
	double b[DDOS_C_N] = { 0 }, p[DDOS_C_N] = { 0 };
	uint32_t v, amp;
	char s[192];

	(void)state;
	ddos_classify(b, p, 0.2, &v, &amp, s, sizeof(s));
	assert_string_equal(s, "no traffic");
	/* memcached responses, their fragments: both named, largest first. */
	b[DDOS_C_TOTAL] = 100e9;
	p[DDOS_C_TOTAL] = 100e6;
	b[DDOS_C_UDP] = 100e9;
	p[DDOS_C_UDP] = 100e6;
	b[DDOS_C_AMP] = b[DDOS_C_VEC + 0] = 60e9;
	p[DDOS_C_AMP] = p[DDOS_C_VEC + 0] = 40e6;
	b[DDOS_C_FRAG] = 40e9;
	p[DDOS_C_FRAG] = 60e6;
	ddos_classify(b, p, 0.2, &v, &amp, s, sizeof(s));
	assert_string_equal(s, "memcached amplification + IP fragment flood");
	assert_int_equal(v, DDOS_V_AMP | DDOS_V_FRAG);
	assert_int_equal(amp, 1u);
	/* Nothing reaches the share: the largest is still named. */
	memset(b, 0, sizeof(b));
	memset(p, 0, sizeof(p));
	b[DDOS_C_TOTAL] = 1000;
	p[DDOS_C_TOTAL] = 100;
	p[DDOS_C_ICMP] = 10;
	p[DDOS_C_SYN] = 5;
	ddos_classify(b, p, 0.2, &v, &amp, s, sizeof(s));
	assert_string_equal(s, "ICMP flood");
	/* A tiny buffer is never overrun. */
	ddos_classify(b, p, 0.2, &v, &amp, s, 4);
	assert_true(strlen(s) < 4);
}

static void test_allow_and_tiers(void **state)
{
	static const char *y =
		"ddos:\n"
		"  delay: 1s\n"
		"  allow_sources: [192.0.2.0/24]\n"
		"  groups:\n"
		"    - name: web\n"
		"      prefixes: [203.0.113.0/24, 2001:db8::/32]\n"
		"      allow_destinations: [203.0.113.200, 2001:db8:aa::/48]\n"
		"      trigger: 2s\n"
		"      baseline: 0\n"
		"      thresholds:\n"
		"        total: { pps: 10k, bps: 0 }\n"
		"      prefix_thresholds:\n"
		"        total: { pps: 0, bps: 0 }\n"
		"      tiers:\n"
		"        - { name: flowspec, pps: 20k }\n"
		"        - { name: blackhole, pps: 100k }\n";
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d;

	(void)state;
	/* A speed test from an allow-listed source: not counted at all. */
	d = detector(y, l);
	for (int64_t t = T0; t < T0 + 10; t++) {
		struct flow_rec r = rec("192.0.2.50", "203.0.113.10", 6, 8080, 50000 * 1500ull, 50000,
					t * 1000, t * 1000 + 999);
		ddos_detector_add(d, &r);
		ddos_detector_tick(d, (t + 1) * 1000);
	}
	assert_int_equal(l->starts, 0);
	assert_int_equal(ddos_count_stats(ddos_detector_counters(d))->allowed_src, 10);
	ddos_detector_free(d);

	/* Tiers by peak: 15k none, 50k flowspec, 200k blackhole. */
	{
		static const struct {
			double pps;
			int tier;
			const char *name;
		} tiers[] = { { 15000, 0, NULL }, { 50000, 1, "flowspec" }, { 200000, 2, "blackhole" } };
		for (size_t i = 0; i < 3; i++) {
			struct flood f = { "203.0.113.10", 17, 0, 40000, 0, tiers[i].pps, 100, 10, 1 };
			d = detector(y, l);
			run(d, T0, T0 + 6, gen_flood, &f);
			assert_int_equal(l->starts, 1);
			assert_int_equal(l->start[0].tier, tiers[i].tier);
			if (tiers[i].name)
				assert_string_equal(l->start[0].tier_name, tiers[i].name);
			else
				assert_null(l->start[0].tier_name);
			assert_false(l->start[0].allowlisted);
			ddos_detector_free(d);
		}
	}
	/* An allow-listed destination: reported, flagged, never a tier. */
	{
		struct flood f = { "203.0.113.200", 17, 0, 40000, 0, 200000, 100, 10, 1 };
		struct flood f6 = { "2001:db8:aa::1", 17, 0, 40000, 0, 200000, 100, 10, 1 };
		d = detector(y, l);
		run(d, T0, T0 + 6, gen_flood, &f);
		assert_int_equal(l->starts, 1);
		assert_true(l->start[0].allowlisted);
		assert_int_equal(l->start[0].tier, 0);
		ddos_detector_free(d);
		d = detector(y, l);
		run(d, T0, T0 + 6, gen_flood, &f6);
		assert_int_equal(l->starts, 1);
		assert_true(l->start[0].allowlisted);
		assert_string_equal(l->start[0].target_str, "2001:db8:aa::1");
		ddos_detector_free(d);
	}
	/* Escalation: 50k then 200k moves an ongoing attack to blackhole and
	 * says so at once. */
	{
		struct flood a = { "203.0.113.11", 17, 0, 40000, 0, 50000, 100, 10, 1 };
		struct flood b = { "203.0.113.11", 17, 0, 40000, 0, 200000, 100, 10, 1 };
		d = detector(y, l);
		run(d, T0, T0 + 5, gen_flood, &a);
		assert_int_equal(l->starts, 1);
		assert_int_equal(l->start[0].tier, 1);
		l->updates = 0;
		run(d, T0 + 5, T0 + 7, gen_flood, &b);
		assert_true(l->updates >= 1);
		run(d, T0 + 7, T0 + 80, NULL, NULL);
		assert_int_equal(l->ends, 1);
		assert_int_equal(l->end[0].tier, 2);
		ddos_detector_free(d);
	}
	free(l);
}

static void test_ipv6_host(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_basic, l);
	struct flood f = { "2001:db8:5::5", 6, 0x02, 4444, 0, 100000, 60, 30, 1 };

	(void)state;
	run(d, T0, T0 + 8, gen_flood, &f);
	assert_int_equal(l->starts, 1);
	assert_int_equal(l->start[0].kind, DDOS_T_HOST);
	assert_int_equal(l->start[0].target.family, FLOW_IPV6);
	assert_int_equal(l->start[0].plen, 128);
	assert_string_equal(l->start[0].target_str, "2001:db8:5::5");
	assert_int_equal(l->start[0].nsrc, DDOS_TOP_SRC);
	assert_int_equal(l->start[0].src[0].ip.family, FLOW_IPV6);
	run(d, T0 + 8, T0 + 20, NULL, NULL);
	assert_int_equal(l->ends, 1);
	assert_string_equal(l->end[0].summary, "SYN flood");
	assert_int_equal(l->end[0].proto, 6);
	ddos_detector_free(d);
	free(l);
}

/* A flood of random destinations and sources: the tables stay at their
 * bounds, evictions are counted, memory does not move, and an attack on a
 * real host is still found. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void gen_random(struct ddos_detector *d, int64_t t, void *arg)
{
	const struct flood *f = arg;

	for (int i = 0; i < 5000; i++) {
		uint64_t x = rng();
		struct flow_rec r = rec("10.0.0.1", "198.18.0.1", 17, (uint16_t)x, 100, 1, t * 1000,
					t * 1000 + 999);
		r.dst.a[14] = (uint8_t)(x >> 16);
		r.dst.a[15] = (uint8_t)(x >> 24);
		r.src.a[12] = (uint8_t)(x >> 32);
		r.src.a[13] = (uint8_t)(x >> 40);
		r.src.a[14] = (uint8_t)(x >> 48);
		r.src.a[15] = (uint8_t)(x >> 56);
		ddos_detector_add(d, &r);
		if (i % 2 == 0) {
			/* A second group's /24s, random too, to churn the aggregates. */
			r.dst = ip("2001:db8::1");
			memcpy(r.dst.a + 4, &x, 8);
			ddos_detector_add(d, &r);
		}
	}
	if (f)
		gen_flood(d, t, (void *)f);
}

static void test_bounded_memory(void **state)
{
	static const char *y =
		"ddos:\n"
		"  delay: 1s\n"
		"  max_hosts: 256\n"
		"  max_prefixes: 64\n"
		"  max_detail: 16\n"
		"  max_attacks: 4\n"
		"  groups:\n"
		"    - name: isp\n"
		"      prefixes: [198.18.0.0/16, 2001:db8::/32]\n"
		"      trigger: 2s\n"
		"      cooldown: 5s\n"
		"      baseline: 0\n"
		"      thresholds:\n"
		"        total: { pps: 50k, bps: 0 }\n"
		"      prefix_thresholds:\n"
		"        total: { pps: 0, bps: 0 }\n"
		"      group_thresholds:\n"
		"        total: { pps: 0, bps: 0 }\n";
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(y, l);
	struct ddos_counters *c = ddos_detector_counters(d);
	size_t mem0 = ddos_detector_memory(d);
	const struct ddos_count_stats *st = ddos_count_stats(c);
	struct flood f = { "198.18.200.1", 17, 0, 11211, 0, 100000, 1400, 10, 1 };

	(void)state;
	run(d, T0, T0 + 30, gen_random, NULL);
	assert_true(ddos_count_hosts(c) <= 256);
	assert_true(ddos_count_prefixes(c) <= 64);
	assert_true(ddos_count_details(c) <= 16);
	assert_true(st->hosts_evicted > 10000);
	assert_true(st->hosts_new > 100000);
	assert_true(st->prefixes_evicted + st->prefixes_dropped > 0);
	assert_int_equal(ddos_detector_memory(d), mem0);
	assert_int_equal(l->starts, 0);
	/* The real attack inside the flood. */
	run(d, T0 + 30, T0 + 40, gen_random, &f);
	assert_int_equal(l->starts, 1);
	assert_string_equal(l->start[0].target_str, "198.18.200.1");
	run(d, T0 + 40, T0 + 60, gen_random, NULL);
	assert_int_equal(l->ends, 1);
	assert_string_equal(l->end[0].summary, "memcached amplification");
	assert_true(ddos_count_hosts(c) <= 256);
	assert_true(ddos_detector_memory(d) <= mem0 + 4 * 64 * sizeof(struct ddos_point));
	ddos_detector_free(d);
	free(l);
}

/* A cool-down past 65535 s ends (the count of seconds under is not
 * 16 bits). */
static void test_cooldown_long(void **state)
{
	static const char *y =
		"ddos:\n"
		"  delay: 1s\n"
		"  baseline_warmup: 0\n"
		"  groups:\n"
		"    - name: web\n"
		"      prefixes: [203.0.113.0/24]\n"
		"      trigger: 3s\n"
		"      cooldown: 70000s\n"
		"      baseline: 0\n"
		"      thresholds:\n"
		"        total: { pps: 10k, bps: 0 }\n";
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(y, l);
	struct flood f = { "203.0.113.20", 17, 0, 40000, 0, 20000, 100, 10, 1 };
	const int64_t last = T0 + 9;

	(void)state;
	run(d, T0, T0 + 10, gen_flood, &f);
	assert_int_equal(l->starts, 1);
	/* Under from last + 1: the 70000th second under, last + 70000, is
	 * judged at the tick of last + 70002. */
	run(d, T0 + 10, last + 70001, NULL, NULL);
	assert_int_equal(l->ends, 0);
	assert_int_equal(ddos_detector_active(d), 1);
	run(d, last + 70001, last + 70002, NULL, NULL);
	assert_int_equal(l->ends, 1);
	assert_int_equal(l->end[0].last, last);
	assert_int_equal(ddos_detector_active(d), 0);
	ddos_detector_free(d);
	free(l);
}

/* A full attack table refuses, counts, and recovers. */
static void test_attack_table_full(void **state)
{
	static const char *y =
		"ddos:\n"
		"  delay: 1s\n"
		"  max_attacks: 2\n"
		"  groups:\n"
		"    - name: web\n"
		"      prefixes: [203.0.113.0/24]\n"
		"      trigger: 1s\n"
		"      cooldown: 2s\n"
		"      baseline: 0\n"
		"      thresholds:\n"
		"        total: { pps: 10k, bps: 0 }\n"
		"      prefix_thresholds:\n"
		"        total: { pps: 0, bps: 0 }\n";
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(y, l);
	struct flood f[3] = {
		{ "203.0.113.1", 17, 0, 40000, 0, 50000, 100, 5, 1 },
		{ "203.0.113.2", 17, 0, 40000, 0, 50000, 100, 5, 1 },
		{ "203.0.113.3", 17, 0, 40000, 0, 50000, 100, 5, 1 },
	};

	(void)state;
	for (int64_t t = T0; t < T0 + 5; t++) {
		for (int i = 0; i < 3; i++)
			gen_flood(d, t, &f[i]);
		ddos_detector_tick(d, (t + 1) * 1000);
	}
	assert_int_equal(l->starts, 2);
	assert_true(ddos_detector_stats(d)->refused > 0);
	assert_int_equal(ddos_detector_active(d), 2);
	run(d, T0 + 5, T0 + 10, NULL, NULL);
	assert_int_equal(l->ends, 2);
	ddos_detector_set_next_id(d, 1000);
	run(d, T0 + 10, T0 + 14, gen_flood, &f[2]);
	assert_int_equal(l->starts, 3);
	assert_int_equal(l->start[2].start, T0 + 10);
	assert_int_equal(l->start[2].id, 1000);
	assert_string_equal(l->start[2].id_str, "ddos-1000");
	ddos_detector_free(d);
	free(l);
}

/* A long attack's timeline is downsampled, keeping the peak. */
static void gen_ramp(struct ddos_detector *d, int64_t t, void *arg)
{
	struct flood f = { "203.0.113.60", 17, 0, 40000, 0, 0, 100, 4, 1 };

	(void)arg;
	f.pps = t - T0 == 123 ? 90000 : 20000;
	gen_flood(d, t, &f);
}

static void test_timeline(void **state)
{
	static const char *y =
		"ddos:\n"
		"  delay: 1s\n"
		"  timeline_points: 60\n"
		"  groups:\n"
		"    - name: web\n"
		"      prefixes: [203.0.113.0/24]\n"
		"      trigger: 1s\n"
		"      cooldown: 3s\n"
		"      baseline: 0\n"
		"      thresholds:\n"
		"        total: { pps: 10k, bps: 0 }\n";
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(y, l);
	float mx = 0;

	(void)state;
	run(d, T0, T0 + 300, gen_ramp, NULL);
	run(d, T0 + 300, T0 + 310, NULL, NULL);
	assert_int_equal(l->ends, 1);
	assert_true(l->end[0].npoints <= 60);
	assert_true(l->end[0].npoints >= 30);
	assert_true(l->end[0].step >= 8);
	for (size_t i = 0; i < l->last_np; i++)
		mx = fmaxf(mx, l->last_tl[i].pps);
	assert_true(fabsf(mx - 90000) < 10);
	assert_true(fabs(l->end[0].peak_pps - 90000) < 10);
	assert_true(l->last_tl[0].t == T0);
	assert_true(l->updates >= 25);   /* every 10 s */
	ddos_detector_free(d);
	free(l);
}

/* Exporters with a long active timeout are warned about, once. */
static void count_exporter(void *arg, const struct ddos_exporter_stat *e)
{
	int *n = arg;

	if (e->long_timeout && e->records == 3)
		(*n)++;
}

static void test_exporter_warning(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_basic, l);
	int n = 0;

	(void)state;
	run(d, T0, T0 + 200, gen_benign, NULL);
	assert_int_equal(l->exporters, 1);
	assert_true(l->exp_dur >= 59000 && l->exp_dur <= 60000);
	ddos_count_exporters(ddos_detector_counters(d), count_exporter, &n);
	assert_int_equal(n, 1);
	ddos_detector_free(d);
	free(l);
}

/* Hostile input: absurd counts, sampling 0, zero durations, garbage
 * flags; nothing crashes and the time never runs backwards. */
static void test_hostile_records(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_basic, l);

	(void)state;
	for (int i = 0; i < 2000; i++) {
		uint64_t x = rng();
		struct flow_rec r = rec("198.51.100.1", "203.0.113.90", (uint8_t)x, (uint16_t)(x >> 8),
					x, x >> 3, (int64_t)(x >> 20) - (1LL << 43),
					(int64_t)(x >> 21));
		r.sampling = (uint32_t)(x >> 40);
		r.flags = (uint16_t)(x >> 50);
		r.tcp_flags = (uint8_t)(x >> 33);
		ddos_detector_add(d, &r);
		if (i % 100 == 0)
			ddos_detector_tick(d, (T0 + i / 100) * 1000);
	}
	{
		static const int64_t edge[][2] = {
			{ INT64_MIN, INT64_MAX }, { INT64_MAX, INT64_MIN }, { INT64_MIN, INT64_MIN },
			{ INT64_MAX, INT64_MAX }, { 0, INT64_MAX }, { -1, 0 },
		};
		for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
			struct flow_rec r = rec("198.51.100.1", "203.0.113.90", 17, 53, UINT64_MAX,
						UINT64_MAX, edge[i][0], edge[i][1]);
			r.sampling = UINT32_MAX;
			ddos_detector_add(d, &r);
		}
	}
	ddos_detector_tick(d, (T0 - 100) * 1000);        /* backwards: ignored */
	ddos_detector_tick(d, (T0 + 100000) * 1000);     /* a long sleep */
	assert_true(ddos_count_stats(ddos_detector_counters(d))->clock_jumps >= 2);
	run(d, T0 + 100000, T0 + 100010, NULL, NULL);
	ddos_detector_free(d);
	ddos_detector_free(NULL);
	free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_full),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_parse_helpers),
		cmocka_unit_test(test_lpm),
		cmocka_unit_test(test_counters_sampling),
		cmocka_unit_test(test_spread_short),
		cmocka_unit_test(test_split_exact),
		cmocka_unit_test(test_rec_split),
		cmocka_unit_test(test_spread_exact),
		cmocka_unit_test(test_spread_small),
		cmocka_unit_test(test_spread_small_no_attack),
		cmocka_unit_test(test_classify_few_samples),
		cmocka_unit_test(test_vector_change),
		cmocka_unit_test(test_classify_open_second),
		cmocka_unit_test(test_spread_60s),
		cmocka_unit_test(test_host_wide),
		cmocka_unit_test(test_spread_no_false_attack),
		cmocka_unit_test(test_clamps),
		cmocka_unit_test(test_trigger_cooldown),
		cmocka_unit_test(test_early_start),
		cmocka_unit_test(test_early_window),
		cmocka_unit_test(test_early_burst),
		cmocka_unit_test(test_early_carpet),
		cmocka_unit_test(test_early_baseline),
		cmocka_unit_test(test_baseline),
		cmocka_unit_test(test_carpet),
		cmocka_unit_test(test_carpet_table_full),
		cmocka_unit_test(test_group_carpet),
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_classify_pure),
		cmocka_unit_test(test_allow_and_tiers),
		cmocka_unit_test(test_ipv6_host),
		cmocka_unit_test(test_bounded_memory),
		cmocka_unit_test(test_cooldown_long),
		cmocka_unit_test(test_attack_table_full),
		cmocka_unit_test(test_timeline),
		cmocka_unit_test(test_exporter_warning),
		cmocka_unit_test(test_hostile_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
