/*
 * Unit tests of a DDoS detector reload (ddos_detector_reconfigure), driven
 * by an injected clock as in test_ddos.c: an attack in progress goes on
 * under changed thresholds and ends by the new ones; a lowered threshold
 * starts an attack on traffic already flowing; counters and baselines
 * survive; a target put on an allow list or left out of every group has
 * its attack ended (released) and a host out of every group is forgotten;
 * groups are matched by name, so reordering, renaming and moving prefixes
 * between groups keep each host's attack under its new group; which
 * settings need a restart.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "ddos/ddos_conf.h"
#include "ddos/ddos_count.h"
#include "ddos/ddos_detect.h"

#include "ddos_test.h"

#define T0 1700000000LL

#define LOG_MAX 64
struct log {
	int starts, updates, ends;
	struct ddos_attack start[LOG_MAX], end[LOG_MAX], last_update;
	char start_group[LOG_MAX][64], end_group[LOG_MAX][64], update_group[64];
};

static void on_start(void *arg, const struct ddos_attack *a)
{
	struct log *l = arg;

	if (l->starts < LOG_MAX) {
		l->start[l->starts] = *a;
		snprintf(l->start_group[l->starts], 64, "%s", a->group);
	}
	l->starts++;
}

static void on_update(void *arg, const struct ddos_attack *a)
{
	struct log *l = arg;

	l->last_update = *a;
	snprintf(l->update_group, sizeof(l->update_group), "%s", a->group);
	l->updates++;
}

static void on_end(void *arg, const struct ddos_attack *a)
{
	struct log *l = arg;

	if (l->ends < LOG_MAX) {
		l->end[l->ends] = *a;
		snprintf(l->end_group[l->ends], 64, "%s", a->group);
	}
	l->ends++;
}

static struct ddos_detector *detector(const char *yaml, struct log *l)
{
	struct ddos_config cfg;
	struct ddos_handlers h = { on_start, on_update, on_end, NULL };
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

/* Compiles yaml aside and puts it in force, as the collector does. */
static void reload(struct ddos_detector *d, const char *yaml, struct ddos_reload_stats *st)
{
	struct ddos_config cfg;
	struct ddos_detect_conf *nc;
	struct buf err;

	buf_init(&err, 0);
	if (load(yaml, &cfg, &err) != 0)
		fail_msg("config: %s", err.p);
	nc = ddos_detect_conf_new(&cfg, &err);
	if (!nc)
		fail_msg("compile: %s", err.p ? err.p : "?");
	ddos_config_free(&cfg);
	ddos_detector_reconfigure(d, nc, st);
	buf_fini(&err);
}

/* Floods: each second, pps packets of 100 bytes from 10 sources to each
 * destination listed. */
struct flood {
	const char *dst[4];
	double pps[4];
};

static void add_second(struct ddos_detector *d, const struct flood *f, int64_t t)
{
	for (int k = 0; k < 4 && f->dst[k]; k++)
		for (unsigned i = 0; i < 10; i++) {
			struct flow_rec r;
			char src[32];
			uint64_t p = (uint64_t)(f->pps[k] / 10 + 0.5);
			memset(&r, 0, sizeof(r));
			snprintf(src, sizeof(src), "198.51.100.%u", 1 + i);
			r.exporter = ip("192.0.2.1");
			r.src = ip(src);
			r.dst = ip(f->dst[k]);
			r.proto = 17;
			r.sport = 40000;
			r.dport = 40000;
			r.sampling = 1;
			r.bytes = p * 100;
			r.packets = p;
			r.start_ms = t * 1000;
			r.end_ms = t * 1000 + 999;
			ddos_detector_add(d, &r);
		}
}

static void run(struct ddos_detector *d, int64_t from, int64_t to, const struct flood *f)
{
	for (int64_t t = from; t < to; t++) {
		if (f)
			add_second(d, f, t);
		ddos_detector_tick(d, (t + 1) * 1000);
	}
}

#define GROUP(name, pfx, pps, extra) \
	"    - name: " name "\n" \
	"      prefixes: " pfx "\n" \
	"      trigger: 3s\n" \
	"      cooldown: 5s\n" \
	"      baseline: 0\n" \
	"      thresholds:\n" \
	"        total: { pps: " pps ", bps: 0 }\n" \
	"      prefix_thresholds:\n" \
	"        total: { pps: 0, bps: 0 }\n" \
	"      group_thresholds:\n" \
	"        total: { pps: 0, bps: 0 }\n" \
	extra

#define HEAD "ddos:\n  delay: 1s\n  baseline_warmup: 0\n  update_interval: 60s\n"

static const char *cfg_10k = HEAD "  groups:\n"
	GROUP("web", "[203.0.113.0/24, 198.18.0.0/16]", "10k", "");

/* An attack goes on when the threshold moves but stays passed, keeps its
 * id, counters and baseline, and ends by the new threshold's verdict. */
static void test_reload_keeps_attack(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_10k, l);
	struct flood f = { { "203.0.113.20", "203.0.113.30" }, { 20000, 300 } };
	struct ddos_reload_stats st;
	struct ddos_target_view v0, v1;
	struct flow_ip quiet = ip("203.0.113.30");

	(void)state;
	run(d, T0, T0 + 10, &f);
	assert_int_equal(l->starts, 1);
	assert_int_equal(ddos_detector_active(d), 1);
	assert_int_equal(ddos_count_host(ddos_detector_counters(d), &quiet, &v0), 0);
	assert_true(v0.base_pps > 250);

	reload(d, HEAD "  groups:\n" GROUP("web", "[203.0.113.0/24, 198.18.0.0/16]", "15k", ""), &st);
	assert_int_equal(st.groups, 1);
	assert_int_equal(st.prefixes, 2);
	assert_int_equal(st.attacks_kept, 1);
	assert_int_equal(st.attacks_ended, 0);
	assert_int_equal(st.hosts_dropped, 0);
	assert_int_equal(ddos_detector_active(d), 1);
	/* What was learnt is still there. */
	assert_int_equal(ddos_count_host(ddos_detector_counters(d), &quiet, &v1), 0);
	assert_true(fabs(v1.base_pps - v0.base_pps) < 1e-6);
	assert_int_equal(ddos_count_hosts(ddos_detector_counters(d)), 2);
	/* One update says it goes on under the reloaded group. */
	run(d, T0 + 10, T0 + 20, &f);
	assert_int_equal(l->starts, 1);
	assert_int_equal(l->ends, 0);
	assert_true(l->updates >= 1);
	assert_int_equal(l->last_update.id, l->start[0].id);
	assert_string_equal(l->update_group, "web");

	/* Above the traffic now: five seconds under (cool-down) end it. */
	reload(d, HEAD "  groups:\n" GROUP("web", "[203.0.113.0/24, 198.18.0.0/16]", "30k", ""), &st);
	assert_int_equal(st.attacks_kept, 1);
	run(d, T0 + 20, T0 + 24, &f);
	assert_int_equal(l->ends, 0);
	run(d, T0 + 24, T0 + 30, &f);
	assert_int_equal(l->ends, 1);
	assert_int_equal(l->end[0].id, l->start[0].id);
	assert_int_equal(l->end[0].released, 0);
	assert_true(l->end[0].peak_pps > 19000);
	run(d, T0 + 30, T0 + 40, &f);
	assert_int_equal(l->starts, 1);
	ddos_detector_free(d);
	free(l);
}

/* Traffic under the threshold is an attack once the threshold is lowered
 * below it, after the trigger. */
static void test_reload_lower_threshold(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_10k, l);
	struct flood f = { { "203.0.113.20" }, { 8000 } };
	struct ddos_reload_stats st;

	(void)state;
	run(d, T0, T0 + 20, &f);
	assert_int_equal(l->starts, 0);
	reload(d, HEAD "  groups:\n" GROUP("web", "[203.0.113.0/24, 198.18.0.0/16]", "5k", ""), &st);
	assert_int_equal(st.attacks_kept, 0);
	run(d, T0 + 20, T0 + 26, &f);
	assert_int_equal(l->starts, 1);
	assert_string_equal(l->start[0].target_str, "203.0.113.20");
	assert_true(l->start[0].start >= T0 + 19);
	assert_non_null(strstr(l->start[0].trigger, "> 5.00k"));
	ddos_detector_free(d);
	free(l);
}

#define TIERS "      tiers:\n        - { name: blackhole, pps: 1k }\n"

/* A destination now on an allow list: its attack ends, released (the
 * collector withdraws its mitigation at once); it is still watched, and
 * an attack on it from then on is allowlisted, with no tier. A host whose
 * prefix left every group: its attack ends, released, and it is
 * forgotten. */
static void test_reload_allow_and_unprotected(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(HEAD "  groups:\n"
					   GROUP("web", "[203.0.113.0/24, 198.18.0.0/16]", "10k", TIERS), l);
	struct flood f = { { "203.0.113.20", "198.18.0.5" }, { 20000, 20000 } };
	struct ddos_reload_stats st;
	struct ddos_target_view v;
	struct flow_ip gone = ip("198.18.0.5"), kept = ip("203.0.113.20");

	(void)state;
	run(d, T0, T0 + 10, &f);
	assert_int_equal(l->starts, 2);
	assert_int_equal(l->start[0].tier, 1);
	reload(d, HEAD "  allow_destinations: [203.0.113.20]\n  groups:\n"
	       GROUP("web", "[203.0.113.0/24]", "10k", TIERS), &st);
	assert_int_equal(st.attacks_ended, 2);
	assert_int_equal(st.attacks_kept, 0);
	assert_int_equal(st.hosts_dropped, 1);
	assert_int_equal(st.prefixes, 1);
	assert_int_equal(l->ends, 2);
	for (int i = 0; i < 2; i++) {
		/* Reported as the running configuration saw them. */
		assert_string_equal(l->end_group[i], "web");
		assert_int_equal(l->end[i].tier, 1);
		if (!strcmp(l->end[i].target_str, "203.0.113.20"))
			assert_int_equal(l->end[i].released, DDOS_RELEASED_ALLOWED);
		else
			assert_int_equal(l->end[i].released, DDOS_RELEASED_UNPROTECTED);
	}
	assert_int_equal(ddos_detector_active(d), 0);
	assert_int_equal(ddos_count_host(ddos_detector_counters(d), &gone, &v), M_ENOTFOUND);
	assert_int_equal(ddos_count_host(ddos_detector_counters(d), &kept, &v), 0);
	/* Still watched: a new attack, allow-listed and without a tier. The
	 * unprotected host is not counted any more. */
	run(d, T0 + 10, T0 + 20, &f);
	assert_int_equal(l->starts, 3);
	assert_string_equal(l->start[2].target_str, "203.0.113.20");
	assert_int_equal(l->start[2].allowlisted, 1);
	assert_int_equal(l->start[2].tier, 0);
	assert_int_equal(ddos_count_host(ddos_detector_counters(d), &gone, &v), M_ENOTFOUND);

	/* Off the allow list again: the attack goes on, now mitigable. */
	reload(d, HEAD "  groups:\n" GROUP("web", "[203.0.113.0/24]", "10k", TIERS), &st);
	assert_int_equal(st.attacks_kept, 1);
	assert_int_equal(st.attacks_ended, 0);
	run(d, T0 + 20, T0 + 22, &f);
	assert_int_equal(l->last_update.id, l->start[2].id);
	assert_int_equal(l->last_update.allowlisted, 0);
	assert_int_equal(l->last_update.tier, 1);
	assert_string_equal(l->last_update.tier_name, "blackhole");
	ddos_detector_free(d);
	free(l);
}

/* Groups match by name whatever their order; a prefix moved to another
 * (new) group takes its hosts, and their attacks, along. */
static void test_reload_groups_by_name(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(HEAD "  groups:\n"
					   GROUP("a", "[203.0.113.0/24]", "10k", "")
					   GROUP("b", "[198.18.0.0/16]", "10k", ""), l);
	struct flood f = { { "203.0.113.20", "198.18.0.5", "198.18.1.9" }, { 20000, 20000, 200 } };
	struct ddos_reload_stats st;
	struct ddos_target_view v;
	struct flow_ip moved = ip("203.0.113.20"), small = ip("198.18.1.9");
	uint64_t id_a, id_b;

	(void)state;
	run(d, T0, T0 + 10, &f);
	assert_int_equal(l->starts, 2);
	id_a = !strcmp(l->start_group[0], "a") ? l->start[0].id : l->start[1].id;
	id_b = !strcmp(l->start_group[0], "b") ? l->start[0].id : l->start[1].id;
	/* b first now, a gone, its prefix in the new group c. */
	reload(d, HEAD "  groups:\n"
	       GROUP("b", "[198.18.0.0/16]", "12k", "")
	       GROUP("c", "[203.0.113.0/24]", "10k", ""), &st);
	assert_int_equal(st.groups, 2);
	assert_int_equal(st.attacks_kept, 2);
	assert_int_equal(st.attacks_ended, 0);
	assert_int_equal(st.hosts_moved, 1);
	assert_int_equal(st.hosts_dropped, 0);
	assert_int_equal(ddos_count_host(ddos_detector_counters(d), &moved, &v), 0);
	assert_string_equal(v.group, "c");
	assert_true(v.in_attack);
	assert_int_equal(ddos_count_host(ddos_detector_counters(d), &small, &v), 0);
	assert_string_equal(v.group, "b");
	run(d, T0 + 10, T0 + 20, &f);
	assert_int_equal(l->starts, 2);
	assert_int_equal(l->ends, 0);
	/* The moved host's aggregate is the one of its new group. */
	assert_int_equal(ddos_count_prefix(ddos_detector_counters(d), &moved, &v), 0);
	assert_string_equal(v.group, "c");
	assert_int_equal(ddos_count_prefix(ddos_detector_counters(d), &small, &v), 0);
	assert_string_equal(v.group, "b");
	assert_int_equal(ddos_count_group(ddos_detector_counters(d), "b", &v), 0);
	assert_true(v.cls[DDOS_C_TOTAL].pps > 19000);
	assert_int_equal(ddos_count_group(ddos_detector_counters(d), "a", &v), M_ENOTFOUND);
	/* Both end when the traffic stops, under their new groups. */
	run(d, T0 + 20, T0 + 30, NULL);
	assert_int_equal(l->ends, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(l->end[i].released, 0);
		if (l->end[i].id == id_a)
			assert_string_equal(l->end_group[i], "c");
		else
			assert_true(l->end[i].id == id_b && !strcmp(l->end_group[i], "b"));
	}
	ddos_detector_free(d);
	free(l);
}

/* A group-wide attack follows its group's name to its new index; a group
 * removed ends its attack, released. */
static void test_reload_group_attack(void **state)
{
	static const char *grp =
		"    - name: g\n"
		"      prefixes: [198.18.0.0/16]\n"
		"      trigger: 2s\n"
		"      cooldown: 5s\n"
		"      baseline: 0\n"
		"      thresholds:\n"
		"        total: { pps: 0, bps: 0 }\n"
		"      prefix_thresholds:\n"
		"        total: { pps: 0, bps: 0 }\n"
		"      group_thresholds:\n"
		"        total: { pps: 10k, bps: 0 }\n";
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d;
	struct flood f = { { "198.18.0.1", "198.18.1.1", "198.18.2.1", "198.18.3.1" },
			   { 4000, 4000, 4000, 4000 } };
	struct ddos_reload_stats st;
	char y1[2048], y2[2048];

	(void)state;
	snprintf(y1, sizeof(y1), "%s  groups:\n%s%s", HEAD,
		 GROUP("x", "[203.0.113.0/24]", "10k", ""), grp);
	d = detector(y1, l);
	run(d, T0, T0 + 10, &f);
	assert_int_equal(l->starts, 1);
	assert_int_equal(l->start[0].kind, DDOS_T_GROUP);
	/* g first now: its index changes, its attack goes on. */
	snprintf(y2, sizeof(y2), "%s  groups:\n%s%s", HEAD, grp,
		 GROUP("x", "[203.0.113.0/24]", "10k", ""));
	reload(d, y2, &st);
	assert_int_equal(st.attacks_kept, 1);
	run(d, T0 + 10, T0 + 15, &f);
	assert_int_equal(l->ends, 0);
	assert_string_equal(l->update_group, "g");
	/* g removed: its attack ends, released; its hosts are forgotten. */
	reload(d, HEAD "  groups:\n" GROUP("x", "[203.0.113.0/24]", "10k", ""), &st);
	assert_int_equal(st.attacks_ended, 1);
	assert_int_equal(st.hosts_dropped, 4);
	assert_int_equal(l->ends, 1);
	assert_int_equal(l->end[0].released, DDOS_RELEASED_UNPROTECTED);
	assert_string_equal(l->end_group[0], "g");
	run(d, T0 + 15, T0 + 25, &f);
	assert_int_equal(l->starts, 1);
	assert_int_equal(ddos_count_hosts(ddos_detector_counters(d)), 0);
	ddos_detector_free(d);
	free(l);
}

/* Many reloads while records flow: nothing leaks or breaks (ASan). */
static void test_reload_churn(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_10k, l);
	struct flood f = { { "203.0.113.20", "198.18.0.5", "203.0.113.7" }, { 20000, 20000, 500 } };
	static const char *const cfgs[] = {
		HEAD "  groups:\n" GROUP("web", "[203.0.113.0/24, 198.18.0.0/16]", "10k", ""),
		HEAD "  groups:\n" GROUP("a", "[203.0.113.0/24]", "10k", "")
			GROUP("b", "[198.18.0.0/16]", "10k", ""),
		HEAD "  allow_destinations: [198.18.0.0/24]\n  groups:\n"
			GROUP("b", "[198.18.0.0/16, 203.0.113.0/24]", "30k", ""),
		HEAD "  groups:\n" GROUP("z", "[192.0.2.0/24]", "10k", ""),
	};

	(void)state;
	for (int i = 0; i < 12; i++) {
		struct ddos_reload_stats st;
		run(d, T0 + 5 * i, T0 + 5 * i + 5, &f);
		reload(d, cfgs[i % 4], &st);
		assert_int_equal(ddos_detector_active(d), st.attacks_kept);
	}
	run(d, T0 + 60, T0 + 80, NULL);
	ddos_detector_free(d);
	free(l);
}

/* Only the table sizes, the delay and the aggregate lengths need a
 * restart. */
static void test_changed_fixed(void **state)
{
	struct ddos_config a, b;
	struct buf err, out;

	(void)state;
	buf_init(&err, 0);
	buf_init(&out, 0);
	assert_int_equal(load(cfg_10k, &a, &err), 0);
	assert_int_equal(load(HEAD "  carpet_max_share: 40\n  allow_sources: [192.0.2.0/24]\n"
			      "  groups:\n" GROUP("other", "[192.0.2.0/24]", "1k", ""), &b, &err), 0);
	assert_int_equal(ddos_config_changed_fixed(&a, &b, &out), 0);
	assert_int_equal(out.len, 0);
	ddos_config_free(&b);
	assert_int_equal(load(HEAD "  max_hosts: 1000\n  prefix_v4: 22\n  groups:\n"
			      GROUP("web", "[203.0.113.0/24, 198.18.0.0/16]", "10k", ""), &b, &err), 0);
	assert_int_equal(ddos_config_changed_fixed(&a, &b, &out), 0);
	buf_cstr(&out);
	assert_string_equal(out.p, "ddos.max_hosts,ddos.prefix_v4");
	ddos_config_free(&a);
	ddos_config_free(&b);
	buf_fini(&err);
	buf_fini(&out);
}

/* Table sizes asked of a reload are ignored: the tables keep theirs. */
static void test_reload_sizes_stay(void **state)
{
	struct log *l = calloc(1, sizeof(*l));
	struct ddos_detector *d = detector(cfg_10k, l);
	struct flood f = { { "203.0.113.20" }, { 20000 } };
	size_t mem = ddos_detector_memory(d);

	(void)state;
	run(d, T0, T0 + 10, &f);
	reload(d, HEAD "  max_hosts: 16\n  max_attacks: 1\n  groups:\n"
	       GROUP("web", "[203.0.113.0/24, 198.18.0.0/16]", "10k", ""), NULL);
	assert_true(ddos_detector_memory(d) >= mem);
	run(d, T0 + 10, T0 + 20, &f);
	assert_int_equal(l->starts, 1);
	ddos_detector_free(d);
	free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reload_keeps_attack),
		cmocka_unit_test(test_reload_lower_threshold),
		cmocka_unit_test(test_reload_allow_and_unprotected),
		cmocka_unit_test(test_reload_groups_by_name),
		cmocka_unit_test(test_reload_group_attack),
		cmocka_unit_test(test_reload_churn),
		cmocka_unit_test(test_changed_fixed),
		cmocka_unit_test(test_reload_sizes_stay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
