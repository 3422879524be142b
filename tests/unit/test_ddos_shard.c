/*
 * Unit tests of the sharded detector (ddos_shard.h): the hand-off ring
 * (order, wrap-around, a full ring counted, two real threads), the
 * partition by destination prefix, and N detectors judging one protected
 * space as one detector does: a group carpet spread over every shard is one
 * attack on the group (whose per-shard parts are each under its
 * threshold), a /24 carpet one attack on the /24, a host attack one
 * attack; attack ids unique over the shards; the group's figures summed.
 * Driven by an injected clock, shards ticked in turn on one thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "ddos/ddos_conf.h"
#include "ddos/ddos_detect.h"
#include "ddos/ddos_shard.h"

#include "ddos_test.h"

#define T0 1700000000LL

/* ---- the ring ---- */

static struct flow_rec seq_rec(uint64_t i)
{
	struct flow_rec r;

	memset(&r, 0, sizeof(r));
	r.bytes = i;
	return r;
}

static void test_spsc_basic(void **state)
{
	struct ddos_spsc q;
	struct flow_rec in[100];
	const struct flow_rec *out;
	uint64_t next = 0, sent = 0;
	size_t n;

	(void)state;
	assert_int_equal(ddos_spsc_init(&q, 50), 0);
	assert_int_equal(q.mask + 1, 64);
	assert_true(ddos_spsc_empty(&q));
	for (int i = 0; i < 100; i++)
		in[i] = seq_rec((uint64_t)i);
	/* A full ring takes what fits and says so. */
	assert_int_equal(ddos_spsc_push(&q, in, 100), 64);
	assert_int_equal(ddos_spsc_push(&q, in, 1), 0);
	sent = 64;
	/* Peek gives a contiguous run; done releases it. */
	n = ddos_spsc_peek(&q, &out, 10);
	assert_int_equal(n, 10);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(out[i].bytes, next++);
	ddos_spsc_done(&q, n);
	/* Wrap around many times: order kept, nothing lost while it fits. */
	for (int round = 0; round < 1000; round++) {
		struct flow_rec b[37];
		for (int i = 0; i < 37; i++)
			b[i] = seq_rec(sent + (uint64_t)i);
		n = ddos_spsc_push(&q, b, 37);
		sent += n;
		while ((n = ddos_spsc_peek(&q, &out, 64)) > 0) {
			for (size_t i = 0; i < n; i++)
				assert_int_equal(out[i].bytes, next++);
			ddos_spsc_done(&q, n);
		}
	}
	assert_int_equal(next, sent);
	assert_true(ddos_spsc_empty(&q));
	ddos_spsc_fini(&q);
	ddos_spsc_fini(NULL);
	/* Ring sizes: 16 MiB towards a thread, within bounds. */
	assert_int_equal(ddos_handoff_ring_size(2), 65536);
	assert_int_equal(ddos_handoff_ring_size(3), 65536);
	assert_int_equal(ddos_handoff_ring_size(4), 32768);
	assert_int_equal(ddos_handoff_ring_size(64), 8192);
}

#define THREAD_RECS 2000000

struct prod {
	struct ddos_spsc *q;
	uint64_t dropped;
};

static void *producer(void *arg)
{
	struct prod *p = arg;
	struct flow_rec b[32];

	for (uint64_t i = 0; i < THREAD_RECS; i += 32) {
		size_t n;
		for (int k = 0; k < 32; k++)
			b[k] = seq_rec(i + (uint64_t)k);
		n = ddos_spsc_push(p->q, b, 32);
		p->dropped += 32 - n;
	}
	return NULL;
}

/* Takes what is ready, checking the order; 0 when nothing was. */
static size_t consume(struct ddos_spsc *q, uint64_t *got, uint64_t *last, int *first)
{
	const struct flow_rec *out;
	size_t n = ddos_spsc_peek(q, &out, 256);

	for (size_t i = 0; i < n; i++) {
		assert_true(*first || out[i].bytes > *last);
		*last = out[i].bytes;
		*first = 0;
	}
	*got += n;
	ddos_spsc_done(q, n);
	return n;
}

/* One producer, one consumer on two threads: what arrives is in order,
 * nothing twice, and what arrived plus what was counted dropped is what
 * was sent (ASan and the ordering check catch a torn hand-off). */
static void test_spsc_threads(void **state)
{
	struct ddos_spsc q;
	struct prod p = { &q, 0 };
	pthread_t th;
	uint64_t got = 0, last = 0;
	int first = 1;

	(void)state;
	assert_int_equal(ddos_spsc_init(&q, 1024), 0);
	assert_int_equal(pthread_create(&th, NULL, producer, &p), 0);
	for (;;) {
		if (consume(&q, &got, &last, &first))
			continue;
		/* Empty: the producer may be done; a last look after joining. */
		if (pthread_tryjoin_np(th, NULL) == 0) {
			while (consume(&q, &got, &last, &first))
				;
			break;
		}
	}
	assert_int_equal(got + p.dropped, THREAD_RECS);
	assert_true(got > 0);
	ddos_spsc_fini(&q);
}

/* ---- the partition ---- */

static void test_partition(void **state)
{
	struct flow_ip a = ip("203.0.113.7"), b = ip("203.0.113.250"), none;
	unsigned count[4] = { 0 };

	(void)state;
	memset(&none, 0, sizeof(none));
	/* One /24, one shard; the same answer every time. */
	for (unsigned n = 1; n <= 8; n++) {
		assert_true(ddos_shard_of(&a, 24, 48, n) < n);
		assert_int_equal(ddos_shard_of(&a, 24, 48, n), ddos_shard_of(&b, 24, 48, n));
	}
	assert_int_equal(ddos_shard_of(&a, 24, 48, 1), 0);
	assert_int_equal(ddos_shard_of(&none, 24, 48, 4), 0);
	/* /48s the same in IPv6. */
	{
		struct flow_ip x = ip("2001:db8:1:1::1"), y = ip("2001:db8:1:ffff::9");
		assert_int_equal(ddos_shard_of(&x, 24, 48, 4), ddos_shard_of(&y, 24, 48, 4));
	}
	/* The aggregate length is honoured: a /16 keeps 10.1.x.x together. */
	{
		struct flow_ip x = ip("10.1.2.3"), y = ip("10.1.200.3");
		assert_int_equal(ddos_shard_of(&x, 16, 48, 4), ddos_shard_of(&y, 16, 48, 4));
	}
	/* Pinned: tests/integration/test_ddos_threads.py relies on them. */
	{
		struct flow_ip x = ip("198.18.10.10"), y = ip("198.18.11.1"), z = ip("203.0.113.1");
		assert_int_equal(ddos_shard_of(&x, 24, 48, 2), 1);
		assert_int_equal(ddos_shard_of(&y, 24, 48, 2), 1);
		assert_int_equal(ddos_shard_of(&z, 24, 48, 2), 0);
	}
	/* 4,096 /24s over 4 shards: each gets a fair share. */
	for (unsigned i = 0; i < 4096; i++) {
		char s[32];
		struct flow_ip x;
		snprintf(s, sizeof(s), "10.%u.%u.1", i / 256, i % 256);
		x = ip(s);
		count[ddos_shard_of(&x, 24, 48, 4)]++;
	}
	for (int k = 0; k < 4; k++)
		assert_true(count[k] > 900 && count[k] < 1150);
}

/* ---- N detectors as one ---- */

#define NSH 3
#define LOG_MAX 64

struct log {
	int starts, ends;
	struct ddos_attack start[LOG_MAX];
	unsigned shard[LOG_MAX];
	char end_summary[192];     /* the last attack that ended */
};

struct hctx {
	struct log *l;
	unsigned k;
};

static void on_start(void *arg, const struct ddos_attack *a)
{
	struct hctx *h = arg;

	if (h->l->starts < LOG_MAX) {
		h->l->start[h->l->starts] = *a;
		h->l->shard[h->l->starts] = h->k;
	}
	h->l->starts++;
}

static void on_end(void *arg, const struct ddos_attack *a)
{
	struct hctx *h = arg;

	snprintf(h->l->end_summary, sizeof(h->l->end_summary), "%s", a->summary);
	h->l->ends++;
}

struct set {
	unsigned n;
	struct ddos_gsync *g;
	struct ddos_detector *d[NSH];
	struct hctx h[NSH];
	struct log l;
};

static void set_new(struct set *s, unsigned n, const char *yaml)
{
	struct ddos_config cfg;
	struct ddos_handlers h = { on_start, NULL, on_end, NULL };
	struct buf err;

	memset(s, 0, sizeof(*s));
	s->n = n;
	buf_init(&err, 0);
	if (load(yaml, &cfg, &err) != 0)
		fail_msg("config: %s", err.p);
	if (n > 1)
		assert_non_null(s->g = ddos_gsync_new(n));
	for (unsigned k = 0; k < n; k++) {
		s->h[k] = (struct hctx){ &s->l, k };
		s->d[k] = ddos_detector_new(&cfg, &h, &s->h[k], &err);
		assert_non_null(s->d[k]);
		if (n > 1)
			assert_int_equal(ddos_detector_shard(s->d[k], s->g, k), 0);
		ddos_detector_tick(s->d[k], T0 * 1000);
	}
	ddos_config_free(&cfg);
	buf_fini(&err);
}

static void set_free(struct set *s)
{
	for (unsigned k = 0; k < s->n; k++)
		ddos_detector_free(s->d[k]);
	ddos_gsync_free(s->g);
}

static void set_add(struct set *s, const struct flow_rec *r)
{
	ddos_detector_add(s->d[ddos_shard_of(&r->dst, 24, 48, s->n)], r);
}

/* The clock to now: every shard ticked in turn, a few rounds, as their
 * threads would (shard 0 judges the groups once all have published). */
static void set_tick(struct set *s, int64_t now_ms)
{
	for (int round = 0; round < 3; round++)
		for (unsigned k = 0; k < s->n; k++)
			ddos_detector_tick(s->d[k], now_ms);
}

typedef void (*gen_fn)(struct set *s, int64_t t);

static void run(struct set *s, int64_t from, int64_t to, gen_fn gen)
{
	for (int64_t t = from; t < to; t++) {
		if (gen)
			gen(s, t);
		set_tick(s, (t + 1) * 1000);
	}
}

static const char *cfg_group =
	"ddos:\n"
	"  delay: 1s\n"
	"  groups:\n"
	"    - name: isp\n"
	"      prefixes: [198.18.0.0/16, 203.0.113.0/24]\n"
	"      trigger: 2s\n"
	"      cooldown: 5s\n"
	"      baseline: 0\n"
	"      thresholds:\n"
	"        total: { pps: 1k, bps: 0 }\n"
	"        amplification: { bps: 0 }\n"
	"      prefix_thresholds:\n"
	"        total: { pps: 100k, bps: 0 }\n"
	"      group_thresholds:\n"
	"        total: { pps: 150k, bps: 0 }\n";

/* 8 /24s x 50 hosts x 500 pps of SYN = 200 kpps: over the group's 150k,
 * each /24 (25 kpps) and host under its own; no shard alone holds more
 * than 150k (8 /24s over 3 shards). */
static void set_add_fn(void *s, const struct flow_rec *r)
{
	set_add(s, r);
}

static void gen_group_carpet(struct set *s, int64_t t)
{
	ddos_test_group_carpet(t, set_add_fn, s);
}

static void test_shards_group_carpet(void **state)
{
	struct set *s = calloc(1, sizeof(*s));
	struct ddos_target_view v;
	unsigned per[NSH] = { 0 };

	(void)state;
	/* The /24s really are spread: no shard gets them all. */
	for (int n = 0; n < 8; n++) {
		char dst[32];
		struct flow_ip x;
		snprintf(dst, sizeof(dst), "198.18.%d.1", n);
		x = ip(dst);
		per[ddos_shard_of(&x, 24, 48, NSH)]++;
	}
	for (int k = 0; k < NSH; k++)
		assert_true(per[k] < 8 && per[k] * 500 * 50 < 150000);

	for (unsigned n = 1; n <= NSH; n += NSH - 1) {
		set_new(s, n, cfg_group);
		run(s, T0, T0 + 10, gen_group_carpet);
		assert_int_equal(s->l.starts, 1);
		assert_int_equal(s->l.start[0].kind, DDOS_T_GROUP);
		assert_int_equal(s->l.shard[0], 0);
		assert_non_null(strstr(s->l.start[0].summary, "carpet bombing of group isp"));
		assert_non_null(strstr(s->l.start[0].summary, "SYN flood"));
		assert_true(fabs(s->l.start[0].peak_pps - 200000) < 2000);
		assert_int_equal(s->l.start[0].hosts, 8);   /* /24s with traffic */
		assert_true(s->l.start[0].nsrc >= 1);
		/* The group's figures are the whole group's. */
		assert_int_equal(ddos_detector_group_view(s->d[0], "isp", &v), 0);
		assert_true(fabs(v.cls[DDOS_C_TOTAL].pps - 200000) < 2000);
		assert_true(v.in_attack);
		run(s, T0 + 10, T0 + 20, NULL);
		assert_int_equal(s->l.ends, 1);
		assert_int_equal(s->l.starts, 1);
		set_free(s);
	}
	free(s);
}

/* 254 hosts of one /24 at 2 kpps (over their 1k) = 508 kpps (over the
 * /24's 100k and the group's 150k, but the group's traffic is one /24:
 * not spread): one attack, on the /24, from the shard that owns it. */
static void gen_carpet(struct set *s, int64_t t)
{
	ddos_test_carpet("203.0.113.", t, set_add_fn, s);
}

static void gen_host(struct set *s, int64_t t)
{
	for (int i = 0; i < 20; i++) {
		char src[32];
		struct flow_rec r;
		snprintf(src, sizeof(src), "198.51.100.%d", i + 1);
		r = rec(src, "198.18.77.9", 17, 11211, 400 * 1400, 400, t * 1000, t * 1000 + 999);
		set_add(s, &r);
	}
}

static void test_shards_prefix_and_host(void **state)
{
	struct set *s = calloc(1, sizeof(*s));
	struct flow_ip p = ip("203.0.113.1"), h = ip("198.18.77.9");
	uint64_t id0;

	(void)state;
	set_new(s, NSH, cfg_group);
	run(s, T0, T0 + 10, gen_carpet);
	assert_int_equal(s->l.starts, 1);
	assert_int_equal(s->l.start[0].kind, DDOS_T_PREFIX);
	assert_string_equal(s->l.start[0].target_str, "203.0.113.0/24");
	assert_int_equal(s->l.shard[0], ddos_shard_of(&p, 24, 48, NSH));
	id0 = s->l.start[0].id;
	/* Then a host elsewhere: its own attack, from its own shard, with
	 * the next id of the whole set. */
	run(s, T0 + 10, T0 + 20, gen_host);
	assert_int_equal(s->l.starts, 2);
	assert_int_equal(s->l.start[1].kind, DDOS_T_HOST);
	assert_string_equal(s->l.start[1].target_str, "198.18.77.9");
	assert_int_equal(s->l.shard[1], ddos_shard_of(&h, 24, 48, NSH));
	assert_true(s->l.start[1].id == id0 + 1);
	/* 20 records a second: named once 32 were seen (DDOS_CLASSIFY_RECORDS). */
	run(s, T0 + 20, T0 + 40, NULL);
	assert_int_equal(s->l.ends, 2);
	assert_non_null(strstr(s->l.end_summary, "memcached"));
	set_free(s);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spsc_basic),
		cmocka_unit_test(test_spsc_threads),
		cmocka_unit_test(test_partition),
		cmocka_unit_test(test_shards_group_carpet),
		cmocka_unit_test(test_shards_prefix_and_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
