/*
 * The DDoS pillar as `mamori serve` runs it, without a socket where none is
 * needed: the API routes as pure functions (api_ddos_handle) against a real
 * attack history and a real mitigation manager (back-end none) in a fresh
 * temporary directory; what an attack's tier asks of the mitigation layer;
 * the attack event; the collector's keys in the ddos: section; the
 * exporter list (exporters.h) and its route; and the collector itself, fed
 * one NetFlow v5 datagram over loopback and asked for its top talkers and
 * exporters across the thread handoff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "api/api_ddos.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "ddos/attack_db.h"
#include "ddos/collect.h"
#include "ddos/ddos_conf.h"
#include "ddos/exporters.h"
#include "ddos/flow.h"
#include "ddos/mitig.h"

/* ---- helpers ---- */

struct tmp {
	char dir[64];
	char adb[128], mdb[128];
};

static void tmp_make(struct tmp *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/mamori-ddosapi-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->adb, sizeof(t->adb), "%s/ddos.db", t->dir);
	snprintf(t->mdb, sizeof(t->mdb), "%s/mitigation.db", t->dir);
}

static void tmp_remove(struct tmp *t)
{
	static const char *const ext[] = { "", "-wal", "-shm", "-journal" };
	char p[192];

	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", t->adb, ext[i]);
		unlink(p);
		snprintf(p, sizeof(p), "%s%s", t->mdb, ext[i]);
		unlink(p);
	}
	rmdir(t->dir);
}

static int load_doc(const char *yaml, struct conf_doc *doc, struct buf *err)
{
	memset(doc, 0, sizeof(*doc));
	buf_reset(err);
	return conf_parse("t.yaml", yaml, strlen(yaml), doc, err);
}

static json_t *load_json(const struct buf *b)
{
	json_error_t e;
	json_t *j = json_loadb(b->p, b->len, 0, &e);

	if (!j)
		fail_msg("bad JSON (%s): %.*s", e.text, (int)(b->len > 400 ? 400 : b->len), b->p);
	return j;
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static json_int_t jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* An attack on a host (plen 32/128) or a prefix, named by its vectors. */
static void mk_attack(struct ddos_attack *a, uint64_t id, const char *target, unsigned plen,
		      const char *tier, int tiern)
{
	memset(a, 0, sizeof(*a));
	a->id = id;
	snprintf(a->id_str, sizeof(a->id_str), "ddos-%llu", (unsigned long long)id);
	assert_int_equal(flow_ip_parse(&a->target, target), 0);
	a->plen = (uint8_t)plen;
	a->kind = (plen == 32 || plen == 128) ? DDOS_T_HOST : DDOS_T_PREFIX;
	if (a->kind == DDOS_T_HOST)
		snprintf(a->target_str, sizeof(a->target_str), "%s", target);
	else
		snprintf(a->target_str, sizeof(a->target_str), "%s/%u", target, plen);
	a->group = "customers";
	a->vectors = DDOS_V_AMP;
	a->amp = 1u << 0;   /* memcached */
	snprintf(a->summary, sizeof(a->summary), "memcached amplification");
	snprintf(a->trigger, sizeof(a->trigger), "amplification bps 31.2G > 300M");
	a->start = 1714564800;
	a->last = a->start + 10;
	a->peak_bps = 31.2e9;
	a->peak_pps = 2.7e6;
	a->peak_fps = 2700;
	a->bytes = 3.9e10;
	a->packets = 2.7e7;
	a->proto = 17;
	a->tier = tiern;
	a->tier_name = tier;
	a->step = 1;
}

/* A ddos_config with one group "customers" and the given tiers. */
static void mk_config(struct ddos_config *cfg, const char *tiers)
{
	struct conf_doc doc;
	struct buf err;
	char yaml[1024];

	buf_init(&err, 4096);
	snprintf(yaml, sizeof(yaml),
		 "ddos:\n  netflow: 127.0.0.1:0\n  sflow: \"\"\n  groups:\n    - name: customers\n"
		 "      prefixes: [203.0.113.0/24, 2001:db8:100::/48]\n      tiers: %s\n", tiers);
	assert_int_equal(load_doc(yaml, &doc, &err), 0);
	if (ddos_config_load(&doc, cfg, &err) != 0)
		fail_msg("%s", err.p);
	conf_doc_fini(&doc);
	buf_fini(&err);
}

/* ---- routes ---- */

static void test_route_match(void **state)
{
	static const struct {
		const char *path;
		enum api_ddos_route r;
		int64_t id;
	} t[] = {
		{ "/api/v1/ddos/attacks", API_DDOS_ATTACKS, 0 },
		{ "/api/v1/ddos/attacks/42", API_DDOS_ATTACK, 42 },
		{ "/api/v1/ddos/attacks/0", API_DDOS_ATTACK, 0 },
		{ "/api/v1/ddos/attacks/x1", API_DDOS_ATTACK, 0 },
		{ "/api/v1/ddos/attacks/1234567890123456", API_DDOS_ATTACK, 0 },
		{ "/api/v1/ddos/attacks/", API_DDOS_NONE, 0 },
		{ "/api/v1/ddos/attacks/4/x", API_DDOS_NONE, 0 },
		{ "/api/v1/ddos/top", API_DDOS_TOP, 0 },
		{ "/api/v1/ddos/mitigations", API_DDOS_MITIGATIONS, 0 },
		{ "/api/v1/ddos/mitigations/1", API_DDOS_NONE, 0 },
		{ "/api/v1/ddos/exporters", API_DDOS_EXPORTERS, 0 },
		{ "/api/v1/ddos/exporters/1", API_DDOS_NONE, 0 },
		{ "/api/v1/ddos", API_DDOS_NONE, 0 },
		{ "/api/v1/ddos/", API_DDOS_NONE, 0 },
		{ "/api/v1/alerts", API_DDOS_NONE, 0 },
	};
	struct api_ddos_target tg;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(api_ddos_match(t[i].path, &tg), t[i].r);
		assert_int_equal(tg.id, t[i].id);
	}
	assert_true(api_ddos_method_ok(API_DDOS_ATTACKS, "GET"));
	assert_true(api_ddos_method_ok(API_DDOS_ATTACK, "HEAD"));
	assert_false(api_ddos_method_ok(API_DDOS_ATTACKS, "POST"));
	assert_false(api_ddos_method_ok(API_DDOS_TOP, "DELETE"));
	assert_true(api_ddos_method_ok(API_DDOS_EXPORTERS, "GET"));
	assert_false(api_ddos_method_ok(API_DDOS_EXPORTERS, "POST"));
	assert_string_equal(api_ddos_allow(API_DDOS_EXPORTERS), "GET, HEAD");
	assert_true(api_ddos_method_ok(API_DDOS_MITIGATIONS, "POST"));
	assert_true(api_ddos_method_ok(API_DDOS_MITIGATIONS, "DELETE"));
	assert_false(api_ddos_method_ok(API_DDOS_MITIGATIONS, "PATCH"));
	assert_string_equal(api_ddos_allow(API_DDOS_MITIGATIONS), "GET, HEAD, POST, DELETE");
	assert_string_equal(api_ddos_allow(API_DDOS_TOP), "GET, HEAD");
	assert_true(api_ddos_takes_body(API_DDOS_MITIGATIONS, "POST"));
	assert_false(api_ddos_takes_body(API_DDOS_MITIGATIONS, "DELETE"));
	assert_false(api_ddos_takes_body(API_DDOS_ATTACKS, "GET"));
}

/* ---- what a tier asks for ---- */

static void test_attack_mitigation(void **state)
{
	static const struct {
		const char *target;
		unsigned plen;
		const char *tier;
		int tiern;
		int allow;
		uint32_t vectors, amp;
		uint8_t proto;
		int due;
		const char *what;   /* prefix of the description */
		enum mitig_action act;
		uint8_t rproto;
		const char *ports;
		uint64_t rate;
	} t[] = {
		{ "203.0.113.10", 32, "blackhole", 2, 0, DDOS_V_AMP, 1, 17, 1,
		  "blackhole 203.0.113.10/32 (tier blackhole)", MITIG_BLACKHOLE, 0, "", 0 },
		{ "203.0.113.10", 32, "flowspec-discard", 1, 0, DDOS_V_AMP | DDOS_V_FRAG, 1 | 2, 17, 1,
		  "flowspec-discard 203.0.113.10/32 udp sport 53,11211", MITIG_DISCARD, 17, "53,11211", 0 },
		{ "203.0.113.10", 32, "flowspec", 1, 0, DDOS_V_AMP, 4, 17, 1,
		  "flowspec-discard 203.0.113.10/32 udp sport 123", MITIG_DISCARD, 17, "123", 0 },
		{ "203.0.113.10", 32, "flowspec-ratelimit", 1, 0, DDOS_V_AMP, 1, 17, 1,
		  "flowspec-ratelimit 203.0.113.10/32 udp sport 11211 to 1.0 Gbps", MITIG_RATELIMIT, 17,
		  "11211", 125000000 },
		{ "203.0.113.20", 32, "flowspec-discard", 1, 0, DDOS_V_SYN, 0, 6, 1,
		  "flowspec-discard 203.0.113.20/32 tcp (tier", MITIG_DISCARD, 6, "", 0 },
		{ "203.0.113.0", 24, "blackhole", 2, 0, DDOS_V_AMP | DDOS_V_CARPET, 2, 17, 1,
		  "blackhole 203.0.113.0/24", MITIG_BLACKHOLE, 0, "", 0 },
		{ "2001:db8:100::7", 128, "blackhole", 2, 0, DDOS_V_UDP, 0, 17, 1,
		  "blackhole 2001:db8:100::7/128", MITIG_BLACKHOLE, 0, "", 0 },
		{ "203.0.113.10", 32, "blackhole", 2, 1, DDOS_V_AMP, 1, 17, 0,
		  "none: the target is on an allow list", 0, 0, "", 0 },
		{ "203.0.113.10", 32, NULL, 0, 0, DDOS_V_AMP, 1, 17, 0,
		  "none: below every mitigation tier", 0, 0, "", 0 },
		{ "203.0.113.10", 32, "notify-only", 1, 0, DDOS_V_AMP, 1, 17, 0,
		  "none: tier 'notify-only' names no action", 0, 0, "", 0 },
	};
	struct ddos_config cfg;

	(void)state;
	mk_config(&cfg, "[{name: flowspec-ratelimit, bps: 1G}, {name: blackhole, bps: 10G}]");
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct ddos_attack a;
		struct mitig_request rq;
		char what[320], ports[64] = "";
		size_t o = 0;
		int due;

		mk_attack(&a, 7, t[i].target, t[i].plen, t[i].tier, t[i].tiern);
		a.allowlisted = t[i].allow;
		a.vectors = t[i].vectors;
		a.amp = t[i].amp;
		a.proto = t[i].proto;
		/* The match, as the detector sets it once established. */
		a.match_ready = 1;
		a.match_amp = (a.vectors & DDOS_V_AMP) ? a.amp : 0;
		a.match_proto = a.match_amp ? 17 : a.proto;
		due = ddos_attack_mitigation(&a, &cfg, &rq, what, sizeof(what));
		if (due != t[i].due || strncmp(what, t[i].what, strlen(t[i].what)) != 0)
			fail_msg("case %zu: due %d, '%s'", i, due, what);
		if (!due)
			continue;
		assert_int_equal(rq.rule.action, t[i].act);
		assert_int_equal(rq.rule.proto, t[i].rproto);
		for (size_t k = 0; k < rq.rule.nsport; k++)
			o += (size_t)snprintf(ports + o, sizeof(ports) - o, "%s%u", k ? "," : "",
					      rq.rule.sport[k]);
		assert_string_equal(ports, t[i].ports);
		assert_int_equal(rq.rule.rate, t[i].rate);
		assert_string_equal(rq.attack_id, "ddos-7");
		assert_false(rq.manual);
		assert_non_null(strstr(rq.reason, "memcached amplification"));
	}
	{
		/* Nothing established yet: a filter waits, a blackhole does not;
		 * the match, not the latest name, makes the rule. */
		struct ddos_attack a;
		struct mitig_request rq;
		char what[320];

		mk_attack(&a, 7, "203.0.113.10", 32, "flowspec-discard", 1);
		a.vectors = DDOS_V_FRAG;
		a.proto = 17;
		a.classifying = 1;
		assert_int_equal(ddos_attack_mitigation(&a, &cfg, &rq, what, sizeof(what)), 0);
		assert_non_null(strstr(what, "flowspec-discard waits"));
		mk_attack(&a, 7, "203.0.113.10", 32, "blackhole", 2);
		assert_int_equal(ddos_attack_mitigation(&a, &cfg, &rq, what, sizeof(what)), 1);
		assert_int_equal(rq.rule.action, MITIG_BLACKHOLE);
		mk_attack(&a, 7, "203.0.113.10", 32, "flowspec-discard", 1);
		a.vectors = DDOS_V_FRAG;
		a.proto = 17;
		a.match_ready = 1;
		a.match_amp = 1;   /* memcached, held while the name moved on */
		a.match_proto = 17;
		assert_int_equal(ddos_attack_mitigation(&a, &cfg, &rq, what, sizeof(what)), 1);
		assert_string_equal(what, "flowspec-discard 203.0.113.10/32 udp sport 11211 "
				    "(tier flowspec-discard)");
	}
	ddos_config_free(&cfg);
}

static void test_rate_human(void **state)
{
	static const struct { double v; const char *unit, *want; } t[] = {
		{ 31.2e9, "bps", "31.2 Gbps" }, { 850e6, "bps", "850 Mbps" },
		{ 12000, "pps", "12.0 kpps" }, { 37, "pps", "37 pps" }, { 0, "bps", "0 bps" },
		{ 999.96e6, "bps", "1.0 Gbps" }, { -5, "bps", "0 bps" }, { 2.5e12, "bps", "2.5 Tbps" },
	};
	char out[32];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_string_equal(ddos_rate_human(t[i].v, t[i].unit, out, sizeof(out)), t[i].want);
}

static void test_event_json(void **state)
{
	struct ddos_attack a;
	struct buf b;
	json_t *j, *ev, *dd;

	(void)state;
	mk_attack(&a, 3, "203.0.113.10", 32, "blackhole", 2);
	a.nsrc = 1;
	assert_int_equal(flow_ip_parse(&a.src[0].ip, "100.64.1.2"), 0);
	a.src[0].bytes = 1e9;
	buf_init(&b, 1 << 16);
	assert_int_equal(ddos_attack_event_json(&a, "start", "blackhole 203.0.113.10/32", 1,
						1714564803250LL, &b), 0);
	j = load_json(&b);
	assert_string_equal(jstr(j, "@timestamp"), "2024-05-01T12:00:03.250Z");
	ev = json_object_get(j, "event");
	assert_string_equal(jstr(ev, "module"), "ddos");
	assert_string_equal(jstr(ev, "kind"), "alert");
	assert_string_equal(jstr(ev, "type"), "start");
	assert_string_equal(jstr(ev, "action"), "ddos-attack-started");
	assert_int_equal(jint(ev, "severity"), 10);
	assert_string_equal(jstr(j, "message"),
			    "DDoS attack on 203.0.113.10: memcached amplification, 31.2 Gbps");
	assert_string_equal(jstr(json_object_get(j, "destination"), "ip"), "203.0.113.10");
	dd = json_object_get(j, "ddos");
	assert_string_equal(jstr(dd, "attack_id"), "ddos-3");
	assert_string_equal(jstr(dd, "tier"), "blackhole");
	assert_string_equal(jstr(dd, "action"), "blackhole 203.0.113.10/32");
	assert_string_equal(json_string_value(json_array_get(json_object_get(dd, "vectors"), 0)),
			    "memcached amplification");
	assert_string_equal(json_string_value(json_array_get(json_object_get(dd, "top_sources"), 0)),
			    "100.64.1.2");
	assert_true(json_is_null(json_object_get(dd, "end")));
	json_decref(j);
	buf_fini(&b);
}

/* ---- configuration ---- */

static void test_collect_config(void **state)
{
	static const struct { const char *yaml; int ok; const char *err; } t[] = {
		{ "ddos:\n  netflow: 127.0.0.1:9995\n  sflow: \"\"\n  udp_rcvbuf: 64M\n"
		  "  max_hosts: 1000\n  groups: [{name: a, prefixes: [10.0.0.0/8]}]\n", 1, NULL },
		{ "ddos:\n  netflow: nonsense\n", 0, "netflow" },
		{ "ddos:\n  default_sampling: 0\n", 0, "default_sampling" },
		{ "ddos:\n  netflow_port: 9995\n", 0, "netflow_port" },
	};
	struct buf err;

	(void)state;
	buf_init(&err, 4096);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct conf_doc doc;
		struct ddos_collect_config cc;
		struct ddos_config dc;
		int r1, r2;

		assert_int_equal(load_doc(t[i].yaml, &doc, &err), 0);
		r1 = ddos_collect_config_load(&doc, &cc, &err);
		r2 = r1 == 0 ? ddos_config_load(&doc, &dc, &err) : 0;
		if (r1 == 0)
			ddos_config_free(&dc);
		buf_cstr(&err);
		if (t[i].ok) {
			if (r1 || r2)
				fail_msg("case %zu: %s", i, err.p);
			assert_string_equal(cc.netflow, "127.0.0.1:9995");
			assert_string_equal(cc.sflow, "");
			assert_int_equal(cc.rcvbuf, 64 << 20);
			assert_true(ddos_collect_enabled(&cc));
		} else {
			if (r1 == 0 && r2 == 0)
				fail_msg("case %zu accepted", i);
			assert_non_null(strstr(err.p, t[i].err));
		}
		ddos_collect_config_free(&cc);
		conf_doc_fini(&doc);
	}
	buf_fini(&err);
}

/* ---- the attack history ---- */

static void test_attack_db(void **state)
{
	struct tmp t;
	struct attack_db *db;
	struct ddos_attack a, b;
	struct ddos_point *pts;
	struct attack_query q;
	struct buf out;
	uint64_t next;
	size_t n;
	json_t *j, *x;

	(void)state;
	tmp_make(&t);
	db = attack_db_open(t.adb, 0, 0);
	assert_non_null(db);
	assert_int_equal(attack_db_next_id(db, &next), 0);
	assert_int_equal(next, 1);
	/* Attack 1: on a host, ended, with a long timeline. */
	mk_attack(&a, 1, "203.0.113.10", 32, "blackhole", 2);
	pts = calloc(5000, sizeof(*pts));
	for (int i = 0; i < 5000; i++)
		pts[i] = (struct ddos_point){ a.start + i, (float)(1e9 + (i == 4321 ? 5e9 : 0)), 1000, 1 };
	a.timeline = pts;
	a.npoints = 5000;
	assert_int_equal(attack_db_put(db, &a, 0, "blackhole 203.0.113.10/32 (tier blackhole)"), 0);
	assert_int_equal(attack_db_note(db, "ddos-1", a.start + 1, "announce",
					"blackhole 203.0.113.10/32", NULL), 0);
	a.end = a.last + 1;
	assert_int_equal(attack_db_put(db, &a, 1, NULL), 0);
	/* Attack 2: a carpet, still active. */
	mk_attack(&b, 2, "203.0.113.0", 24, NULL, 0);
	b.start = a.start + 100000;
	b.last = b.start + 5;
	b.vectors |= DDOS_V_CARPET;
	assert_int_equal(attack_db_put(db, &b, 0, "none: below every mitigation tier"), 0);
	assert_int_equal(attack_db_flush(db, 5000), 0);

	buf_init(&out, 1 << 24);
	memset(&q, 0, sizeof(q));
	assert_int_equal(attack_db_list_json(db, &q, &out), 0);
	j = load_json(&out);
	assert_int_equal(jint(j, "total"), 2);
	x = json_array_get(json_object_get(j, "attacks"), 0);
	assert_string_equal(jstr(x, "attack_id"), "ddos-2");      /* newest first */
	assert_true(json_is_true(json_object_get(x, "active")));
	assert_string_equal(jstr(x, "target"), "203.0.113.0/24");
	assert_string_equal(jstr(x, "kind"), "prefix");
	assert_int_equal(jint(x, "prefix_length"), 24);
	assert_null(json_object_get(x, "timeline"));
	json_decref(j);

	q.active = 1;
	buf_reset(&out);
	assert_int_equal(attack_db_list_json(db, &q, &out), 0);
	j = load_json(&out);
	assert_int_equal(jint(j, "total"), 1);
	json_decref(j);
	q.active = -1;
	q.target = "203.0.113.10";
	buf_reset(&out);
	assert_int_equal(attack_db_list_json(db, &q, &out), 0);
	j = load_json(&out);
	assert_int_equal(jint(j, "total"), 1);
	x = json_array_get(json_object_get(j, "attacks"), 0);
	assert_string_equal(jstr(x, "end"), "2024-05-01T12:00:11Z");
	assert_int_equal(jint(x, "duration_s"), 11);
	assert_string_equal(jstr(x, "action"), "blackhole 203.0.113.10/32 (tier blackhole)");
	json_decref(j);
	memset(&q, 0, sizeof(q));
	q.from_s = b.start - 10;       /* only the carpet overlaps */
	buf_reset(&out);
	assert_int_equal(attack_db_list_json(db, &q, &out), 0);
	j = load_json(&out);
	assert_int_equal(jint(j, "total"), 1);
	json_decref(j);

	buf_reset(&out);
	assert_int_equal(attack_db_get_json(db, 1, &out), 0);
	j = load_json(&out);
	x = json_object_get(j, "timeline");
	assert_int_equal(jint(x, "step"), 2);       /* 5000 points merged by two */
	assert_int_equal(json_array_size(json_object_get(x, "points")), 2500);
	assert_int_equal(json_integer_value(json_array_get(json_array_get(json_object_get(x, "points"),
									   2160), 1)), 6000000000LL);
	assert_string_equal(jstr(json_array_get(json_object_get(j, "mitigations"), 0), "what"),
			    "announce");
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "vectors"), 0)),
			    "memcached amplification");
	json_decref(j);
	buf_reset(&out);
	assert_int_equal(attack_db_get_json(db, 99, &out), M_ENOTFOUND);

	/* A restart: the open attack is closed and reported; ids go on. */
	attack_db_close(db);
	db = attack_db_open(t.adb, 0, 0);
	assert_non_null(db);
	assert_int_equal(attack_db_recover(db, NULL, NULL, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(attack_db_next_id(db, &next), 0);
	assert_int_equal(next, 3);
	buf_reset(&out);
	assert_int_equal(attack_db_get_json(db, 2, &out), 0);
	j = load_json(&out);
	assert_true(json_is_true(json_object_get(j, "interrupted")));
	assert_false(json_is_true(json_object_get(j, "active")));
	json_decref(j);
	attack_db_close(db);

	/* max_rows keeps the newest ended attacks. */
	db = attack_db_open(t.adb, 0, 1);
	assert_non_null(db);
	buf_reset(&out);
	memset(&q, 0, sizeof(q));
	assert_int_equal(attack_db_list_json(db, &q, &out), 0);
	j = load_json(&out);
	assert_int_equal(jint(j, "total"), 1);
	json_decref(j);
	attack_db_close(db);
	buf_fini(&out);
	free(pts);
	tmp_remove(&t);
}

/* ---- the routes against a real history and mitigation manager ---- */

struct fixture {
	struct tmp t;
	struct attack_db *adb;
	struct mitig_config mc;
	struct mitig *m;
	struct api_ddos_ctx ctx;
	int top_rc;
	int exp_rc;
};

static int fake_top(void *arg, const struct flow_ip *ip, struct ddos_top *out)
{
	struct fixture *f = arg;
	char s[FLOW_IP_STRLEN];

	memset(out, 0, sizeof(*out));
	if (f->top_rc)
		return f->top_rc;
	assert_string_equal(flow_ip_str(ip, s, sizeof(s)), "203.0.113.10");
	out->has_host = out->has_prefix = 1;
	out->host.kind = DDOS_T_HOST;
	out->host.second = 1714564800;
	out->host.cls[DDOS_C_TOTAL] = (struct ddos_rates){ 8e9, 7e5, 700 };
	out->host.cls[DDOS_C_UDP] = (struct ddos_rates){ 8e9, 7e5, 700 };
	out->host.detailed = 1;
	out->host.in_attack = 1;
	out->host.nsrc = 1;
	flow_ip_parse(&out->host.src[0].ip, "100.64.1.2");
	out->host.src[0].bytes = 12345;
	out->host.nport = 1;
	out->host.port[0] = (struct ddos_top_port){ 11211, 17, 999 };
	out->prefix.kind = DDOS_T_PREFIX;
	snprintf(out->group, sizeof(out->group), "customers");
	snprintf(out->prefix_str, sizeof(out->prefix_str), "203.0.113.0/24");
	out->nattacks = 1;
	snprintf(out->attacks[0].id, sizeof(out->attacks[0].id), "ddos-1");
	snprintf(out->attacks[0].target, sizeof(out->attacks[0].target), "203.0.113.10");
	snprintf(out->attacks[0].summary, sizeof(out->attacks[0].summary), "memcached amplification");
	return 0;
}

/* Three exporters, as the collector would list them (most recent first). */
static int fake_exporters(void *arg, struct ddos_exporter_info **out, size_t *n)
{
	struct fixture *f = arg;
	struct ddos_exporter_info *v;

	*out = NULL;
	*n = 0;
	if (f->exp_rc)
		return f->exp_rc;
	v = calloc(3, sizeof(*v));
	assert_non_null(v);
	flow_ip_parse(&v[0].exporter, "192.0.2.1");
	v[0].listener = "netflow";
	v[0].format = FLOW_FMT_IPFIX;
	v[0].domain = 7;
	v[0].datagrams = 120;
	v[0].records = 3000;
	v[0].lost = 57;
	v[0].lost_records = 1;
	v[0].late = 1;
	v[0].last_ms = 1714564800123LL;
	v[0].sampling = 1000;
	v[0].templates = 3;
	v[0].has_timing = 1;
	v[0].longest_record_ms = 60000;
	v[0].long_timeout = 1;
	v[0].records_moved = 12;
	flow_ip_parse(&v[1].exporter, "2001:db8::9");
	v[1].listener = "sflow";
	v[1].format = FLOW_FMT_SFLOW;
	v[1].domain = 2;
	v[1].datagrams = 50;
	v[1].lost = 3;
	v[1].last_ms = 1714564799000LL;
	v[1].templates = -1;
	flow_ip_parse(&v[2].exporter, "192.0.2.1");
	v[2].listener = "netflow";
	v[2].format = FLOW_FMT_NF5;
	v[2].domain = 1 << 8 | 2;
	v[2].lost_records = 1;
	v[2].last_ms = 1714564000000LL;
	v[2].sampling = 1;
	v[2].sampling_default = 1;
	v[2].templates = -1;
	*out = v;
	*n = 3;
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct conf_doc doc;
	struct buf err;
	struct ddos_attack a;

	tmp_make(&f->t);
	f->adb = attack_db_open(f->t.adb, 0, 0);
	assert_non_null(f->adb);
	buf_init(&err, 4096);
	assert_int_equal(load_doc("mitigation:\n  backend: none\n  allow: [198.51.100.0/24]\n",
				  &doc, &err), 0);
	assert_int_equal(mitig_config_load(&doc, &f->mc, &err), 0);
	conf_doc_fini(&doc);
	buf_fini(&err);
	f->m = mitig_new(&f->mc, f->t.mdb);
	assert_non_null(f->m);
	mk_attack(&a, 1, "203.0.113.10", 32, "blackhole", 2);
	a.end = a.last + 1;
	assert_int_equal(attack_db_put(f->adb, &a, 1, "blackhole 203.0.113.10/32"), 0);
	mk_attack(&a, 2, "2001:db8:100::7", 128, NULL, 0);
	a.start += 3600;
	a.last = a.start + 1;
	assert_int_equal(attack_db_put(f->adb, &a, 0, "none"), 0);
	assert_int_equal(attack_db_flush(f->adb, 5000), 0);
	f->ctx = (struct api_ddos_ctx){ f->adb, f->m, fake_top, f, fake_exporters, f };
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	mitig_free(f->m);
	mitig_config_free(&f->mc);
	attack_db_close(f->adb);
	tmp_remove(&f->t);
	free(f);
	return 0;
}

/* Splits "a=1&b=2" into params (no decoding: tests use plain values). */
struct req {
	struct api_soc_param p[80];
	char q[1024];
	struct api_ddos_request rq;
	struct api_soc_answer ans;
};

static json_t *call(const struct api_ddos_ctx *ctx, const char *method, const char *path,
		    const char *query, const char *body, unsigned want, struct api_soc_answer *keep)
{
	struct req *r = calloc(1, sizeof(*r));
	json_t *j = NULL;

	assert_int_not_equal(api_ddos_match(path, &r->rq.target), API_DDOS_NONE);
	r->rq.method = method;
	if (query) {
		snprintf(r->q, sizeof(r->q), "%s", query);
		for (char *s = r->q; s && *s;) {
			char *amp = strchr(s, '&'), *eq;
			if (amp)
				*amp = '\0';
			eq = strchr(s, '=');
			r->p[r->rq.n_params].name = s;
			r->p[r->rq.n_params].name_len = eq ? (size_t)(eq - s) : strlen(s);
			r->p[r->rq.n_params].value = eq ? eq + 1 : NULL;
			r->p[r->rq.n_params].value_len = eq ? strlen(eq + 1) : 0;
			r->rq.n_params++;
			s = amp ? amp + 1 : NULL;
		}
	}
	r->rq.params = r->p;
	r->rq.body = body;
	r->rq.body_len = body ? strlen(body) : 0;
	buf_init(&r->ans.body, 1 << 24);
	api_ddos_handle(ctx, &r->rq, &r->ans);
	if (r->ans.status != want)
		fail_msg("%s %s?%s: status %u (want %u): %s %s: %s", method, path, query ? query : "",
			 r->ans.status, want, r->ans.error ? r->ans.error : "", r->ans.param,
			 r->ans.detail);
	if (r->ans.status >= 200 && r->ans.status < 300)
		j = load_json(&r->ans.body);
	if (keep) {
		keep->status = r->ans.status;
		keep->error = r->ans.error;
		memcpy(keep->param, r->ans.param, sizeof(keep->param));
		memcpy(keep->detail, r->ans.detail, sizeof(keep->detail));
	}
	buf_fini(&r->ans.body);
	free(r);
	return j;
}

static void test_api_attacks(void **state)
{
	struct fixture *f = *state;
	struct api_soc_answer a;
	json_t *j;

	j = call(&f->ctx, "GET", "/api/v1/ddos/attacks", NULL, NULL, 200, NULL);
	assert_int_equal(jint(j, "total"), 2);
	json_decref(j);
	j = call(&f->ctx, "GET", "/api/v1/ddos/attacks", "active=true", NULL, 200, NULL);
	assert_int_equal(jint(j, "total"), 1);
	assert_string_equal(jstr(json_array_get(json_object_get(j, "attacks"), 0), "target"),
			    "2001:db8:100::7");
	json_decref(j);
	/* The target is normalised: upper case, a /32 for a host. */
	j = call(&f->ctx, "GET", "/api/v1/ddos/attacks", "target=2001:DB8:100::7", NULL, 200, NULL);
	assert_int_equal(jint(j, "total"), 1);
	json_decref(j);
	j = call(&f->ctx, "GET", "/api/v1/ddos/attacks", "target=203.0.113.10/32&active=false",
		 NULL, 200, NULL);
	assert_int_equal(jint(j, "total"), 1);
	json_decref(j);
	j = call(&f->ctx, "GET", "/api/v1/ddos/attacks",
		 "from=2024-05-01T12:30:00Z&to=2024-05-01T14:00:00Z&group=customers", NULL, 200, NULL);
	assert_int_equal(jint(j, "total"), 1);
	json_decref(j);
	j = call(&f->ctx, "GET", "/api/v1/ddos/attacks", "limit=1&offset=1", NULL, 200, NULL);
	assert_int_equal(jint(j, "total"), 2);
	assert_int_equal(json_array_size(json_object_get(j, "attacks")), 1);
	assert_string_equal(jstr(json_array_get(json_object_get(j, "attacks"), 0), "attack_id"),
			    "ddos-1");
	json_decref(j);
	j = call(&f->ctx, "GET", "/api/v1/ddos/attacks/1", NULL, NULL, 200, NULL);
	assert_string_equal(jstr(j, "summary"), "memcached amplification");
	assert_non_null(json_object_get(j, "timeline"));
	json_decref(j);

	call(&f->ctx, "GET", "/api/v1/ddos/attacks/42", NULL, NULL, 404, NULL);
	call(&f->ctx, "GET", "/api/v1/ddos/attacks/x", NULL, NULL, 400, &a);
	assert_string_equal(a.param, "id");
	call(&f->ctx, "GET", "/api/v1/ddos/attacks", "active=yes", NULL, 400, &a);
	assert_string_equal(a.param, "active");
	call(&f->ctx, "GET", "/api/v1/ddos/attacks", "color=red", NULL, 400, &a);
	assert_string_equal(a.param, "color");
	call(&f->ctx, "GET", "/api/v1/ddos/attacks", "limit=5&limit=6", NULL, 400, &a);
	assert_non_null(strstr(a.detail, "more than once"));
	call(&f->ctx, "GET", "/api/v1/ddos/attacks", "limit=0", NULL, 400, NULL);
	call(&f->ctx, "GET", "/api/v1/ddos/attacks", "target=300.1.1.1", NULL, 400, NULL);
	call(&f->ctx, "GET", "/api/v1/ddos/attacks", "from=2024-05-02&to=2024-05-01", NULL, 400, &a);
	assert_string_equal(a.param, "from");
	call(&f->ctx, "GET", "/api/v1/ddos/attacks/1", "target=203.0.113.10", NULL, 400, NULL);
	call(NULL, "GET", "/api/v1/ddos/attacks", NULL, NULL, 503, NULL);
	call(NULL, "GET", "/api/v1/ddos/top", "target=203.0.113.10", NULL, 503, NULL);
	call(NULL, "GET", "/api/v1/ddos/mitigations", NULL, NULL, 503, NULL);
}

static void test_api_top(void **state)
{
	struct fixture *f = *state;
	struct api_ddos_ctx no_top = f->ctx;
	json_t *j, *h;

	j = call(&f->ctx, "GET", "/api/v1/ddos/top", "target=203.0.113.10", NULL, 200, NULL);
	assert_string_equal(jstr(j, "group"), "customers");
	h = json_object_get(j, "host");
	assert_int_equal(jint(h, "bps"), 8000000000LL);
	assert_true(json_is_true(json_object_get(h, "in_attack")));
	assert_int_equal(jint(json_object_get(json_object_get(h, "classes"), "udp"), "pps"), 700000);
	assert_string_equal(jstr(json_array_get(json_object_get(h, "top_sources"), 0), "ip"),
			    "100.64.1.2");
	assert_int_equal(jint(json_array_get(json_object_get(h, "top_ports"), 0), "port"), 11211);
	assert_string_equal(jstr(json_object_get(j, "prefix"), "prefix"), "203.0.113.0/24");
	assert_true(json_is_null(json_object_get(j, "group_traffic")));
	assert_string_equal(jstr(json_array_get(json_object_get(j, "attacks"), 0), "attack_id"),
			    "ddos-1");
	json_decref(j);
	call(&f->ctx, "GET", "/api/v1/ddos/top", NULL, NULL, 400, NULL);
	call(&f->ctx, "GET", "/api/v1/ddos/top", "target=junk", NULL, 400, NULL);
	call(&f->ctx, "GET", "/api/v1/ddos/top", "group=x", NULL, 400, NULL);
	f->top_rc = M_ENOTFOUND;
	call(&f->ctx, "GET", "/api/v1/ddos/top", "target=203.0.113.10", NULL, 404, NULL);
	f->top_rc = M_EAGAIN;
	call(&f->ctx, "GET", "/api/v1/ddos/top", "target=203.0.113.10", NULL, 503, NULL);
	f->top_rc = M_ECLOSED;
	call(&f->ctx, "GET", "/api/v1/ddos/top", "target=203.0.113.10", NULL, 503, NULL);
	f->top_rc = 0;
	no_top.top = NULL;
	call(&no_top, "GET", "/api/v1/ddos/top", "target=203.0.113.10", NULL, 503, NULL);
}

static void test_api_exporters(void **state)
{
	struct fixture *f = *state;
	struct api_ddos_ctx none = f->ctx;
	struct api_soc_answer a;
	json_t *j, *e;

	j = call(&f->ctx, "GET", "/api/v1/ddos/exporters", NULL, NULL, 200, NULL);
	assert_int_equal(jint(j, "total"), 3);
	assert_int_equal(jint(j, "limit"), 100);
	assert_int_equal(json_array_size(json_object_get(j, "exporters")), 3);
	e = json_array_get(json_object_get(j, "exporters"), 0);
	assert_string_equal(jstr(e, "exporter"), "192.0.2.1");
	assert_string_equal(jstr(e, "listener"), "netflow");
	assert_string_equal(jstr(e, "protocol"), "ipfix");
	assert_int_equal(jint(e, "observation_domain"), 7);
	assert_int_equal(jint(e, "domain"), 7);
	assert_int_equal(jint(e, "datagrams"), 120);
	assert_int_equal(jint(e, "records"), 3000);
	assert_int_equal(jint(e, "records_lost"), 57);
	assert_true(json_is_null(json_object_get(e, "datagrams_lost")));
	assert_int_equal(jint(e, "datagrams_late"), 1);
	assert_int_equal(jint(e, "sequence_resets"), 0);
	assert_string_equal(jstr(e, "last_seen"), "2024-05-01T12:00:00.123Z");
	assert_int_equal(jint(e, "sampling"), 1000);
	assert_true(json_is_false(json_object_get(e, "sampling_default")));
	assert_int_equal(jint(e, "templates"), 3);
	assert_int_equal(jint(e, "longest_record_ms"), 60000);
	assert_true(json_is_true(json_object_get(e, "long_active_timeout")));
	assert_int_equal(jint(e, "records_moved"), 12);
	e = json_array_get(json_object_get(j, "exporters"), 1);
	assert_string_equal(jstr(e, "exporter"), "2001:db8::9");
	assert_string_equal(jstr(e, "protocol"), "sflow");
	assert_int_equal(jint(e, "sub_agent"), 2);
	assert_int_equal(jint(e, "datagrams_lost"), 3);
	assert_true(json_is_null(json_object_get(e, "records_lost")));
	assert_true(json_is_null(json_object_get(e, "sampling")));
	assert_true(json_is_null(json_object_get(e, "templates")));
	assert_true(json_is_null(json_object_get(e, "long_active_timeout")));
	e = json_array_get(json_object_get(j, "exporters"), 2);
	assert_string_equal(jstr(e, "protocol"), "netflow5");
	assert_int_equal(jint(e, "engine_type"), 1);
	assert_int_equal(jint(e, "engine_id"), 2);
	assert_true(json_is_true(json_object_get(e, "sampling_default")));
	json_decref(j);
	/* Paging and the address filter. */
	j = call(&f->ctx, "GET", "/api/v1/ddos/exporters", "limit=1&offset=1", NULL, 200, NULL);
	assert_int_equal(jint(j, "total"), 3);
	assert_int_equal(json_array_size(json_object_get(j, "exporters")), 1);
	assert_string_equal(jstr(json_array_get(json_object_get(j, "exporters"), 0), "protocol"),
			    "sflow");
	json_decref(j);
	j = call(&f->ctx, "GET", "/api/v1/ddos/exporters", "exporter=192.0.2.1&offset=1", NULL, 200,
		 NULL);
	assert_int_equal(jint(j, "total"), 2);
	assert_int_equal(json_array_size(json_object_get(j, "exporters")), 1);
	assert_string_equal(jstr(json_array_get(json_object_get(j, "exporters"), 0), "protocol"),
			    "netflow5");
	json_decref(j);
	j = call(&f->ctx, "GET", "/api/v1/ddos/exporters", "exporter=2001:DB8::9", NULL, 200, NULL);
	assert_int_equal(jint(j, "total"), 1);
	json_decref(j);
	/* Refusals. */
	call(&f->ctx, "GET", "/api/v1/ddos/exporters", "exporter=junk", NULL, 400, &a);
	assert_string_equal(a.param, "exporter");
	call(&f->ctx, "GET", "/api/v1/ddos/exporters", "exporter=192.0.2.0/24", NULL, 400, NULL);
	call(&f->ctx, "GET", "/api/v1/ddos/exporters", "limit=0", NULL, 400, NULL);
	call(&f->ctx, "GET", "/api/v1/ddos/exporters", "limit=1001", NULL, 400, NULL);
	call(&f->ctx, "GET", "/api/v1/ddos/exporters", "target=192.0.2.1", NULL, 400, &a);
	assert_string_equal(a.param, "target");
	f->exp_rc = M_EAGAIN;
	call(&f->ctx, "GET", "/api/v1/ddos/exporters", NULL, NULL, 503, NULL);
	f->exp_rc = M_ECLOSED;
	call(&f->ctx, "GET", "/api/v1/ddos/exporters", NULL, NULL, 503, NULL);
	f->exp_rc = M_ENOMEM;
	call(&f->ctx, "GET", "/api/v1/ddos/exporters", NULL, NULL, 503, NULL);
	f->exp_rc = 0;
	none.exporters = NULL;
	call(&none, "GET", "/api/v1/ddos/exporters", NULL, NULL, 503, NULL);
	call(NULL, "GET", "/api/v1/ddos/exporters", NULL, NULL, 503, NULL);
}

static void test_api_mitigations(void **state)
{
	struct fixture *f = *state;
	struct api_soc_answer a;
	json_t *j, *m;

	j = call(&f->ctx, "POST", "/api/v1/ddos/mitigations", NULL,
		 "{\"target\":\"203.0.113.10\",\"action\":\"flowspec-discard\",\"protocol\":\"udp\","
		 "\"source_ports\":[11211,53],\"duration\":\"2h\",\"reason\":\"ticket 4711\"}", 201, NULL);
	assert_string_equal(jstr(j, "key"), "filter 203.0.113.10/32 proto 17 sport 53,11211");
	assert_string_equal(jstr(j, "outcome"), "announced");
	json_decref(j);
	j = call(&f->ctx, "POST", "/api/v1/ddos/mitigations", NULL,
		 "{\"target\":\"203.0.113.0/24\",\"action\":\"blackhole\",\"dry_run\":true}", 200, NULL);
	assert_string_equal(jstr(j, "outcome"), "dry-run");
	json_decref(j);
	j = call(&f->ctx, "POST", "/api/v1/ddos/mitigations", NULL,
		 "{\"target\":\"2001:db8:100::7\",\"action\":\"flowspec-ratelimit\",\"protocol\":17,"
		 "\"rate\":125000,\"length\":[512,1500],\"duration\":600}", 201, NULL);
	assert_string_equal(jstr(j, "key"), "filter 2001:db8:100::7/128 proto 17 length 512-1500");
	json_decref(j);

	j = call(&f->ctx, "GET", "/api/v1/ddos/mitigations", NULL, NULL, 200, NULL);
	assert_int_equal(jint(j, "total"), 2);
	for (size_t i = 0; i < 2; i++) {
		m = json_array_get(json_object_get(j, "mitigations"), i);
		assert_true(json_is_true(json_object_get(m, "manual")));
		assert_string_equal(jstr(m, "state"), "active");
		assert_false(json_is_null(json_object_get(m, "expires")));
		if (strcmp(jstr(m, "action"), "ratelimit") == 0) {
			assert_int_equal(jint(m, "rate"), 125000);
		} else {
			assert_string_equal(jstr(m, "reason"), "ticket 4711");
			assert_string_equal(jstr(m, "target"), "203.0.113.10/32");
		}
	}
	json_decref(j);

	/* Refusals and bad bodies. */
	call(&f->ctx, "POST", "/api/v1/ddos/mitigations", NULL,
	     "{\"target\":\"198.51.100.7\",\"action\":\"blackhole\"}", 409, &a);
	assert_non_null(strstr(a.detail, "allow"));
	call(&f->ctx, "POST", "/api/v1/ddos/mitigations", NULL,
	     "{\"target\":\"203.0.113.0/16\",\"action\":\"blackhole\"}", 400, &a);
	assert_string_equal(a.param, "target");
	call(&f->ctx, "POST", "/api/v1/ddos/mitigations", NULL,
	     "{\"target\":\"203.0.113.9\",\"action\":\"nuke\"}", 400, &a);
	assert_string_equal(a.param, "action");
	call(&f->ctx, "POST", "/api/v1/ddos/mitigations", NULL,
	     "{\"target\":\"203.0.113.9\",\"action\":\"blackhole\",\"colour\":1}", 400, &a);
	assert_string_equal(a.param, "colour");
	call(&f->ctx, "POST", "/api/v1/ddos/mitigations", NULL,
	     "{\"target\":\"203.0.113.9\",\"action\":\"discard\",\"source_ports\":[1,2,3,4,5,6,7,8,9]}",
	     400, &a);
	assert_string_equal(a.param, "source_ports");
	call(&f->ctx, "POST", "/api/v1/ddos/mitigations", NULL,
	     "{\"target\":\"203.0.113.9\",\"action\":\"discard\",\"source_ports\":[53]}", 400, &a);
	assert_non_null(strstr(a.detail, "protocol"));
	call(&f->ctx, "POST", "/api/v1/ddos/mitigations", NULL,
	     "{\"target\":\"203.0.113.9\",\"action\":\"ratelimit\"}", 400, &a);
	assert_non_null(strstr(a.detail, "rate"));
	call(&f->ctx, "POST", "/api/v1/ddos/mitigations", NULL,
	     "{\"target\":\"203.0.113.9\",\"action\":\"blackhole\",\"duration\":\"forever\"}", 400, &a);
	assert_string_equal(a.param, "duration");
	call(&f->ctx, "POST", "/api/v1/ddos/mitigations", NULL, "[1,2]", 400, NULL);
	call(&f->ctx, "POST", "/api/v1/ddos/mitigations", NULL, "{\"target\":", 400, NULL);
	call(&f->ctx, "POST", "/api/v1/ddos/mitigations", NULL, NULL, 400, NULL);
	call(&f->ctx, "POST", "/api/v1/ddos/mitigations", "target=1.2.3.4", "{}", 400, NULL);

	/* Withdrawals. */
	call(&f->ctx, "DELETE", "/api/v1/ddos/mitigations", NULL, NULL, 400, NULL);
	call(&f->ctx, "DELETE", "/api/v1/ddos/mitigations",
	     "key=x&target=203.0.113.10", NULL, 400, NULL);
	call(&f->ctx, "DELETE", "/api/v1/ddos/mitigations",
	     "key=x&action=blackhole", NULL, 400, &a);
	assert_string_equal(a.param, "action");
	j = call(&f->ctx, "DELETE", "/api/v1/ddos/mitigations",
		 "key=filter 203.0.113.10/32 proto 17 sport 53,11211", NULL, 200, NULL);
	assert_int_equal(jint(j, "withdrawn"), 1);
	json_decref(j);
	call(&f->ctx, "DELETE", "/api/v1/ddos/mitigations",
	     "key=filter 203.0.113.10/32 proto 17 sport 53,11211", NULL, 404, NULL);
	call(&f->ctx, "DELETE", "/api/v1/ddos/mitigations",
	     "target=2001:db8:100::7&action=blackhole", NULL, 404, NULL);
	j = call(&f->ctx, "DELETE", "/api/v1/ddos/mitigations", "target=2001:db8:100::7", NULL,
		 200, NULL);
	assert_int_equal(jint(j, "withdrawn"), 1);
	json_decref(j);
	j = call(&f->ctx, "GET", "/api/v1/ddos/mitigations", NULL, NULL, 200, NULL);
	assert_int_equal(jint(j, "total"), 0);
	json_decref(j);
}

/* ---- the collector, over loopback ---- */

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* One NetFlow v5 datagram: one record src → dst, a second ago. */
static size_t nf5(uint8_t *d, const char *src, const char *dst, uint32_t pkts, uint32_t bytes)
{
	int64_t now = clock_now_us();
	struct in_addr a;

	memset(d, 0, 72);
	put16(d, 5);
	put16(d + 2, 1);
	put32(d + 4, 100000);                         /* sysUptime, ms */
	put32(d + 8, (uint32_t)(now / 1000000));
	put32(d + 12, (uint32_t)(now % 1000000) * 1000);
	inet_pton(AF_INET, src, &a);
	memcpy(d + 24, &a, 4);
	inet_pton(AF_INET, dst, &a);
	memcpy(d + 28, &a, 4);
	put32(d + 40, pkts);
	put32(d + 44, bytes);
	put32(d + 48, 99000);                         /* first */
	put32(d + 52, 99500);                         /* last */
	put16(d + 56, 11211);
	put16(d + 58, 40000);
	d[62] = 17;
	return 72;
}

static void test_collector(void **state)
{
	struct ddos_config dc;
	struct ddos_collect_config cc;
	struct ddos_collector *c;
	struct ddos_top *top = calloc(1, sizeof(*top));
	struct ddos_exporter_info *exp = NULL;
	size_t nexp = 0;
	char s[FLOW_IP_STRLEN];
	struct sockaddr_in to = { 0 };
	struct flow_ip ip;
	struct conf_doc doc;
	struct buf err;
	uint8_t dg[72];
	int fd, rc = -1;

	(void)state;
	buf_init(&err, 4096);
	mk_config(&dc, "[]");
	assert_int_equal(load_doc("ddos:\n  netflow: 127.0.0.1:0\n  sflow: \"\"\n", &doc, &err), 0);
	assert_int_equal(ddos_collect_config_load(&doc, &cc, &err), 0);
	conf_doc_fini(&doc);
	c = ddos_collector_new(&cc, &dc, NULL, 1, &err);
	if (!c)
		fail_msg("%s", err.p);
	assert_int_equal(ddos_collector_port(c, 1), 0);
	assert_int_not_equal(ddos_collector_port(c, 0), 0);
	assert_int_equal(ddos_collector_start(c), 0);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	to.sin_family = AF_INET;
	to.sin_port = htons((uint16_t)ddos_collector_port(c, 0));
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	nf5(dg, "198.51.100.9", "203.0.113.7", 1000, 1000000);
	assert_int_equal(sendto(fd, dg, sizeof(dg), 0, (struct sockaddr *)&to, sizeof(to)), 72);
	assert_int_equal(flow_ip_parse(&ip, "203.0.113.7"), 0);
	for (int i = 0; i < 50 && rc != 0; i++) {
		usleep(100000);
		rc = ddos_collector_top(c, &ip, top, 1000);
	}
	assert_int_equal(rc, 0);
	assert_true(top->has_host);
	assert_true(top->has_prefix);
	assert_string_equal(top->group, "customers");
	assert_string_equal(top->prefix_str, "203.0.113.0/24");
	assert_int_equal(flow_ip_parse(&ip, "198.51.100.1"), 0);
	assert_int_equal(ddos_collector_top(c, &ip, top, 1000), M_ENOTFOUND);
	/* The exporter, as the API lists it. */
	assert_int_equal(ddos_collector_exporters(c, &exp, &nexp, 1000), 0);
	assert_int_equal(nexp, 1);
	assert_string_equal(flow_ip_str(&exp[0].exporter, s, sizeof(s)), "127.0.0.1");
	assert_string_equal(exp[0].listener, "netflow");
	assert_int_equal(exp[0].format, FLOW_FMT_NF5);
	assert_int_equal(exp[0].datagrams, 1);
	assert_int_equal(exp[0].records, 1);
	assert_int_equal(exp[0].lost, 0);
	assert_true(exp[0].has_timing);
	assert_int_equal(exp[0].longest_record_ms, 500);
	free(exp);
	close(fd);
	ddos_collector_stop(c);
	assert_int_equal(ddos_collector_top(c, &ip, top, 1000), M_ECLOSED);
	assert_int_equal(ddos_collector_exporters(c, &exp, &nexp, 1000), M_ECLOSED);
	assert_null(exp);
	ddos_collector_free(c);
	ddos_collect_config_free(&cc);
	ddos_config_free(&dc);
	free(top);
	buf_fini(&err);
}

static void rec_nop(void *arg, const struct flow_rec *r)
{
	(void)arg;
	(void)r;
}

/* The exporter list from a decoder, joined with the counters' timing by
 * address, most recently heard from first. */
static void test_exporter_list(void **state)
{
	struct flow_decoder *d = flow_decoder_new(NULL, rec_nop, NULL, NULL);
	struct ddos_exporter_list l = { 0 };
	struct ddos_exporter_stat es;
	struct flow_ip a, b;
	uint8_t dg[72];
	uint32_t seq = 0;

	(void)state;
	assert_non_null(d);
	assert_int_equal(flow_ip_parse(&a, "192.0.2.1"), 0);
	assert_int_equal(flow_ip_parse(&b, "192.0.2.2"), 0);
	nf5(dg, "198.51.100.9", "203.0.113.7", 10, 1000);
	/* a: twelve datagrams of one flow each; the flows 3 and 4 lost. */
	for (int i = 0; i < 12; i++, seq++) {
		if (i == 3)
			seq += 2;
		put32(dg + 16, seq);
		assert_int_equal(flow_decode(d, FLOW_FMT_AUTO, &a, 1000 + i, dg, sizeof(dg)), 0);
	}
	/* b: one datagram, sampled 1 in 100, heard from last. */
	put32(dg + 16, 0);
	put16(dg + 22, 0x4000 | 100);
	assert_int_equal(flow_decode(d, FLOW_FMT_AUTO, &b, 5000, dg, sizeof(dg)), 0);
	assert_int_equal(ddos_exporters_add(&l, "netflow", d, 6000), 0);
	assert_int_equal(l.n, 2);
	ddos_exporters_by_address(&l);
	memset(&es, 0, sizeof(es));
	es.ip = b;
	es.max_duration_ms = 61000;
	es.long_timeout = 1;
	es.late = 4;
	ddos_exporters_timing(&l, &es);
	assert_int_equal(flow_ip_parse(&es.ip, "10.0.0.1"), 0);
	ddos_exporters_timing(&l, &es);
	ddos_exporters_by_recent(&l);
	assert_memory_equal(l.v[0].exporter.a, b.a, 16);
	assert_string_equal(l.v[0].listener, "netflow");
	assert_int_equal(l.v[0].format, FLOW_FMT_NF5);
	assert_int_equal(l.v[0].records, 1);
	assert_int_equal(l.v[0].sampling, 100);
	assert_int_equal(l.v[0].sampling_default, 0);
	assert_int_equal(l.v[0].templates, -1);
	assert_int_equal(l.v[0].last_ms, 5000);
	assert_true(l.v[0].has_timing);
	assert_true(l.v[0].long_timeout);
	assert_int_equal(l.v[0].longest_record_ms, 61000);
	assert_int_equal(l.v[0].records_moved, 4);
	assert_memory_equal(l.v[1].exporter.a, a.a, 16);
	assert_int_equal(l.v[1].datagrams, 12);
	assert_int_equal(l.v[1].records, 12);
	assert_int_equal(l.v[1].lost, 2);
	assert_true(l.v[1].lost_records);
	assert_int_equal(l.v[1].sampling, 1);
	assert_false(l.v[1].has_timing);
	assert_string_equal(ddos_exporter_protocol(FLOW_FMT_NF9), "netflow9");
	assert_string_equal(ddos_exporter_protocol(FLOW_FMT_AUTO), "unknown");
	ddos_exporter_list_fini(&l);
	ddos_exporter_list_fini(&l);
	flow_decoder_free(d);
}

/* A port in use is named in the error. */
static void test_collector_port_in_use(void **state)
{
	struct ddos_config dc;
	struct ddos_collect_config cc;
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);
	struct conf_doc doc;
	struct buf err;
	char yaml[128];
	int fd;

	(void)state;
	buf_init(&err, 4096);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(yaml, sizeof(yaml), "ddos:\n  sflow: 127.0.0.1:%u\n", ntohs(sa.sin_port));
	mk_config(&dc, "[]");
	assert_int_equal(load_doc(yaml, &doc, &err), 0);
	assert_int_equal(ddos_collect_config_load(&doc, &cc, &err), 0);
	conf_doc_fini(&doc);
	free(cc.netflow);
	cc.netflow = strdup("");
	buf_reset(&err);
	assert_null(ddos_collector_new(&cc, &dc, NULL, 1, &err));
	buf_cstr(&err);
	assert_non_null(strstr(err.p, "ddos.sflow: cannot listen on 127.0.0.1:"));
	close(fd);
	ddos_collect_config_free(&cc);
	ddos_config_free(&dc);
	buf_fini(&err);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_route_match),
		cmocka_unit_test(test_attack_mitigation),
		cmocka_unit_test(test_rate_human),
		cmocka_unit_test(test_event_json),
		cmocka_unit_test(test_collect_config),
		cmocka_unit_test(test_attack_db),
		cmocka_unit_test(test_exporter_list),
		cmocka_unit_test(test_collector),
		cmocka_unit_test(test_collector_port_in_use),
	};
	const struct CMUnitTest routes[] = {
		cmocka_unit_test(test_api_attacks),
		cmocka_unit_test(test_api_top),
		cmocka_unit_test(test_api_exporters),
		cmocka_unit_test(test_api_mitigations),
	};
	int rc;

	log_set_level(LOG_ERROR);
	rc = cmocka_run_group_tests_name("ddos_serve", pure, NULL, NULL);
	rc += cmocka_run_group_tests_name("ddos_api", routes, setup, teardown);
	metrics_fini();
	return rc;
}
