/*
 * Flow decoder benchmark: how many flow records (sFlow: samples) and
 * datagrams per second one core decodes, per export format. Datagrams are
 * generated in memory the way routers fill them (NetFlow v5: 30 records;
 * v9 and IPFIX: about 1,400 bytes of data records per datagram, templates
 * and options sampling every 20 datagrams; sFlow: 128-byte sampled
 * headers, about 1,400 bytes per datagram), with varied addresses and
 * ports, then decoded in a loop into a callback that only adds up. It
 * prints figures and never passes or fails.
 *
 * With file arguments it decodes captures written by tools/flowgen.py
 * --write instead (each datagram a 2-byte big-endian length and its
 * bytes) and also prints what a collector would count from them: records,
 * sampling-corrected packets and bytes, errors.
 *
 * Then the same datagrams decoded and counted, as the collector thread
 * does it: records copied out of the decoder's callback into batches of
 * 1,024 (collect.c) and handed to a DDoS detector protecting
 * 203.0.113.0/24 with the thresholds of bench/ddos_compare.sh (20 kpps,
 * 1 Gbit/s per host). Every record goes into that /24 from random
 * sources: a flood, so the host, /24 and group are hot, detailed and
 * under attack, their top-talker sketches updated for every record, the
 * case the no-loss target is about. Records are moved onto a simulated
 * clock that advances a second every 1,000,000 records; two simulated
 * seconds go first, unmeasured, so that the flood is already an attack.
 * Figures are CPU time of the thread (the machine may be shared).
 *
 * With -c and files (tools/flowgen.py --write, or bench_flowsend -w: the
 * mix the no-loss benchmark sends) it decodes and counts those instead.
 *
 * With "shards" it measures the collector's whole path on N threads, as
 * `mamori serve` with ddos.threads: N: each thread decodes its own
 * exporter's datagrams (NetFlow v9, then sFlow; destinations spread over
 * the 512 /24s of 198.18.0.0/15), hands each record to the thread that
 * owns its destination's /24 (ddos_handoff) and counts its own and the
 * others' records in its shard's detector, ticked ten times a second (the
 * groups merged each second). Runs alternate between 1 and N threads, best
 * of each is printed: records counted per second in all, and per thread.
 * No sockets: the kernel's share (recvmmsg) is not in it.
 *
 * Usage: bench_flow [records-per-format]   (default 20,000,000)
 *        bench_flow FILE...
 *        bench_flow -c [-n records] [-p PREFIX] FILE...   (protected: 203.0.113.0/24)
 *        bench_flow shards [threads [seconds [rounds]]]   (default 2 3 3)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "ddos/ddos_conf.h"
#include "ddos/ddos_detect.h"
#include "ddos/ddos_shard.h"
#include "ddos/flow.h"

#include "bench_ddos_group.h"

#define DISTINCT 1024          /* distinct datagrams per format */
#define REC_BATCH 1024         /* records per batch, as collect.c */
#define SIM_RATE 1000000       /* records per simulated second */
#define DGRAM_MAX 1500

struct dg {
	uint8_t b[DGRAM_MAX];
	size_t n;
};

struct sum {
	uint64_t records, bytes, packets, frags;
};

static void on_rec(void *arg, const struct flow_rec *r)
{
	struct sum *s = arg;

	s->records++;
	s->bytes += r->bytes * r->sampling;
	s->packets += r->packets * r->sampling;
	s->frags += (r->flags & FLOW_F_FRAGMENT) != 0;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static void w8(struct dg *d, unsigned v) { d->b[d->n++] = (uint8_t)v; }
static void w16(struct dg *d, unsigned v) { w8(d, v >> 8); w8(d, v); }
static void w32(struct dg *d, uint32_t v) { w16(d, v >> 16); w16(d, v & 0xffff); }
static void w64(struct dg *d, uint64_t v) { w32(d, (uint32_t)(v >> 32)); w32(d, (uint32_t)v); }
static uint32_t dst_base = 0xcb007100u, dst_span = 256;   /* 203.0.113.x */
static void wip(struct dg *d) { w32(d, dst_base | rnd(dst_span)); }
static void wsrc(struct dg *d) { w32(d, 0x64400000u | rnd(1u << 22)); }   /* 100.64/10 */
static void patch16(struct dg *d, size_t at, size_t v)
{
	d->b[at] = (uint8_t)(v >> 8);
	d->b[at + 1] = (uint8_t)v;
}

#define T0 1710072000u
#define UPTIME 86400000u

static void gen_v5(struct dg *d)
{
	d->n = 0;
	w16(d, 5); w16(d, 30); w32(d, UPTIME); w32(d, T0); w32(d, 0); w32(d, 0);
	w8(d, 0); w8(d, 1); w16(d, 0x4000 | 1000);
	for (int i = 0; i < 30; i++) {
		wsrc(d); wip(d); w32(d, 0); w16(d, 1); w16(d, 2);
		w32(d, 1 + rnd(100)); w32(d, 1428 * (1 + rnd(100)));
		w32(d, UPTIME - 60000); w32(d, UPTIME - rnd(1000));
		w16(d, 11211); w16(d, 1024 + rnd(60000)); w8(d, 0); w8(d, 0); w8(d, 17); w8(d, 0);
		w16(d, 0); w16(d, 0); w8(d, 0); w8(d, 0); w16(d, 0);
	}
}

/* v9 and IPFIX share a layout: 4+4+2+2+1+1(2)+8+8+times+4+4. */
static void gen_templated(struct dg *d, int ipfix, int with_templates)
{
	size_t s, msg_len_at = 2;

	d->n = 0;
	if (ipfix) {
		w16(d, 10); w16(d, 0); w32(d, T0); w32(d, 0); w32(d, 1);
	} else {
		w16(d, 9); w16(d, 0); w32(d, UPTIME); w32(d, T0); w32(d, 0); w32(d, 1);
	}
	if (with_templates) {
		s = d->n;
		w16(d, ipfix ? 2 : 0); w16(d, 0);
		w16(d, 256); w16(d, 12);
		w16(d, 8); w16(d, 4); w16(d, 12); w16(d, 4); w16(d, 7); w16(d, 2);
		w16(d, 11); w16(d, 2); w16(d, 4); w16(d, 1); w16(d, 6); w16(d, ipfix ? 2 : 1);
		w16(d, 1); w16(d, 8); w16(d, 2); w16(d, 8);
		if (ipfix) {
			w16(d, 152); w16(d, 8); w16(d, 153); w16(d, 8);
		} else {
			w16(d, 22); w16(d, 4); w16(d, 21); w16(d, 4);
		}
		w16(d, 10); w16(d, 4); w16(d, 14); w16(d, 4);
		patch16(d, s + 2, d->n - s);
		s = d->n;
		if (ipfix) {
			w16(d, 3); w16(d, 0); w16(d, 257); w16(d, 2); w16(d, 1);
			w16(d, 149); w16(d, 4); w16(d, 34); w16(d, 4);
		} else {
			w16(d, 1); w16(d, 0); w16(d, 257); w16(d, 4); w16(d, 4);
			w16(d, 1); w16(d, 4); w16(d, 34); w16(d, 4); w16(d, 0);
		}
		patch16(d, s + 2, d->n - s);
		s = d->n;
		w16(d, 257); w16(d, 12); w32(d, 1); w32(d, 1000);
	}
	s = d->n;
	w16(d, 256); w16(d, 0);
	while (d->n + (ipfix ? 55 : 46) + 4 <= 1400) {
		wsrc(d); wip(d); w16(d, 11211); w16(d, 1024 + rnd(60000)); w8(d, 17);
		if (ipfix)
			w16(d, 0);
		else
			w8(d, 0);
		w64(d, 1428 * (1 + rnd(100))); w64(d, 1 + rnd(100));
		if (ipfix) {
			w64(d, (uint64_t)T0 * 1000 - 60000); w64(d, (uint64_t)T0 * 1000 - rnd(1000));
		} else {
			w32(d, UPTIME - 60000); w32(d, UPTIME - rnd(1000));
		}
		w32(d, 1); w32(d, 2);
	}
	patch16(d, s + 2, d->n - s);
	if (ipfix)
		patch16(d, msg_len_at, d->n);
}

static void gen_sflow(struct dg *d)
{
	d->n = 0;
	w32(d, 5); w32(d, 1); w32(d, 0xc00002fe); w32(d, 0); w32(d, 1); w32(d, UPTIME);
	w32(d, 0);
	for (unsigned k = 0; d->n + 8 + 32 + 8 + 16 + 128 + 8 + 16 <= 1400; k++) {
		size_t s;

		w32(d, 1); w32(d, 32 + 8 + 16 + 128 + 8 + 16);
		s = d->n;
		w32(d, k); w32(d, 1); w32(d, 1000); w32(d, k * 1000); w32(d, 0);
		w32(d, 1); w32(d, 2); w32(d, 2);
		w32(d, 1); w32(d, 16 + 128);
		w32(d, 1); w32(d, 1446); w32(d, 4); w32(d, 128);
		for (int i = 0; i < 12; i++)
			w8(d, i);
		w16(d, 0x0800);
		w8(d, 0x45); w8(d, 0); w16(d, 1428); w16(d, 1); w16(d, 0); w8(d, 64); w8(d, 17);
		w16(d, 0); wsrc(d); wip(d);
		w16(d, 11211); w16(d, 1024 + rnd(60000)); w16(d, 1408); w16(d, 0);
		while (d->n - s < 32 + 8 + 16 + 128)
			w8(d, 0);
		w32(d, 1001); w32(d, 16); w32(d, 0); w32(d, 0); w32(d, 0); w32(d, 0);
		patch16(d, 26, (d->b[26] << 8 | d->b[27]) + 1);
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void bench_format(const char *name, struct dg *dgs, size_t ndg, uint64_t want)
{
	struct sum s = { 0 };
	struct flow_decoder *d = flow_decoder_new(NULL, on_rec, NULL, &s);
	struct flow_ip from;
	uint64_t datagrams = 0, errors = 0;
	double t0, t;

	if (!d)
		return;
	flow_ip_parse(&from, "192.0.2.1");
	/* The first pass learns the templates and warms the caches. */
	for (size_t i = 0; i < ndg; i++)
		(void)flow_decode(d, FLOW_FMT_AUTO, &from, 0, dgs[i].b, dgs[i].n);
	memset(&s, 0, sizeof(s));
	t0 = now_s();
	while (s.records < want) {
		for (size_t i = 0; i < ndg; i++)
			errors += flow_decode(d, FLOW_FMT_AUTO, &from, 0, dgs[i].b, dgs[i].n) != 0;
		datagrams += ndg;
	}
	t = now_s() - t0;
	printf("%-8s %12.0f records/s %10.0f datagrams/s  %6.1f ns/record  "
	       "(%llu records, %.1f per datagram, %llu errors)\n", name,
	       (double)s.records / t, (double)datagrams / t, t * 1e9 / (double)s.records,
	       (unsigned long long)s.records, (double)s.records / (double)datagrams,
	       (unsigned long long)errors);
	flow_decoder_free(d);
}


/* ---- decode + count ---- */

static int64_t cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct cnt {
	struct ddos_detector *det;
	struct flow_rec recs[REC_BATCH];
	size_t n;
	int64_t shift;       /* added to record times: the simulated clock */
	int64_t max_end;     /* latest record end seen */
	uint64_t records;
	uint64_t next_sec;   /* records at which the simulated clock moves */
	int attacks;
};

static void on_attack(void *arg, const struct ddos_attack *a)
{
	struct cnt *c = arg;

	if (c->attacks++ == 0)
		printf("           first attack: %s\n", a->summary);
}

static void cnt_flush(struct cnt *c)
{
	if (c->n && c->det)
		ddos_detector_add_batch(c->det, c->recs, c->n);
	c->n = 0;
}

static void on_rec_count(void *arg, const struct flow_rec *r)
{
	struct cnt *c = arg;
	struct flow_rec *o = &c->recs[c->n++];

	*o = *r;
	o->start_ms += c->shift;
	o->end_ms += c->shift;
	if (r->end_ms > c->max_end)
		c->max_end = r->end_ms;
	c->records++;
	if (c->n == REC_BATCH)
		cnt_flush(c);
}

/* The protected prefix of -c (-p): the default is the no-loss
 * benchmark's; a wider one (198.18.0.0/15 and a pool made with
 * bench_flowsend -n 198.18.0.0/15) measures the counting over as many
 * hosts as an ISP's, whose tables no longer fit the caches. */
static const char *protect = "203.0.113.0/24";

static struct ddos_detector *flood_detector(struct cnt *c)
{
	char y[512];
	struct conf_doc doc = { 0 };
	struct ddos_config cfg = { 0 };
	struct ddos_handlers h = { on_attack, NULL, NULL, NULL };
	struct ddos_detector *d = NULL;
	struct buf err;

	buf_init(&err, 0);
	snprintf(y, sizeof(y), "ddos:\n  groups:\n    - name: customers\n      prefixes: [%s]\n"
		 BENCH_COMPARE_THRESHOLDS, protect);
	if (conf_parse("bench.yaml", y, strlen(y), &doc, &err) == 0 &&
	    ddos_config_load(&doc, &cfg, &err) == 0)
		d = ddos_detector_new(&cfg, &h, c, &err);
	if (!d)
		fprintf(stderr, "bench_flow: %s\n", err.p ? err.p : "detector");
	ddos_config_free(&cfg);
	conf_doc_fini(&doc);
	buf_fini(&err);
	return d;
}

/* Decodes and counts the datagrams (each a 2-byte length and its bytes
 * when packed, else the generated array) until `want` records. */
struct dsrc {
	struct dg *dgs;        /* generated, or */
	const uint8_t *buf;    /* packed */
	size_t ndg, nbuf;
};

static uint64_t decode_all(struct flow_decoder *d, const struct dsrc *s, int64_t recv_ms)
{
	struct flow_ip from;
	uint64_t n = 0;

	flow_ip_parse(&from, "192.0.2.1");
	if (s->dgs) {
		for (size_t i = 0; i < s->ndg; i++)
			(void)flow_decode(d, FLOW_FMT_AUTO, &from, recv_ms, s->dgs[i].b, s->dgs[i].n);
		return s->ndg;
	}
	for (size_t off = 0; off + 2 <= s->nbuf; n++) {
		size_t len = (size_t)s->buf[off] << 8 | s->buf[off + 1];

		off += 2;
		if (len > s->nbuf - off)
			len = s->nbuf - off;
		(void)flow_decode(d, FLOW_FMT_AUTO, &from, recv_ms, s->buf + off, len);
		off += len;
	}
	return n;
}

/* Decodes and counts until `until` records, a simulated second every
 * SIM_RATE records; CPU time of ticks into *t_tick. */
static __attribute__((noinline)) void count_run(struct cnt *c, struct flow_decoder *d,
						  const struct dsrc *s, int64_t recv_ms,
						  uint64_t until, int64_t *clock_ms, int64_t *t_tick)
{
	while (c->records < until) {
		decode_all(d, s, recv_ms);
		if (c->records >= c->next_sec) {
			int64_t k = cpu_us();
			cnt_flush(c);
			c->shift += 1000;
			*clock_ms += 1000;
			ddos_detector_tick(c->det, *clock_ms);
			c->next_sec += SIM_RATE;
			*t_tick += cpu_us() - k;
		}
	}
	cnt_flush(c);
}

/* The measured part: CPU time into *us. Apart, so that callgrind can
 * count it alone (--toggle-collect='count_measured*'). */
static __attribute__((noinline)) void count_measured(struct cnt *c, struct flow_decoder *d,
						       const struct dsrc *s, int64_t recv_ms,
						       uint64_t until, int64_t *clock_ms,
						       int64_t *t_tick, int64_t *us)
{
	int64_t t0 = cpu_us();

	count_run(c, d, s, recv_ms, until, clock_ms, t_tick);
	*us = cpu_us() - t0;
}

static void bench_count(const char *name, const struct dsrc *s, uint64_t want)
{
	struct cnt *c = calloc(1, sizeof(*c));
	struct flow_decoder *d = c ? flow_decoder_new(NULL, on_rec_count, NULL, c) : NULL;
	const struct ddos_count_stats *st;
	int64_t recv_ms = (int64_t)T0 * 1000, us, t_tick = 0, clock_ms;
	uint64_t warm;

	if (!d) {
		free(c);
		return;
	}
	/* The first pass learns the templates and the pool's latest time. */
	decode_all(d, s, recv_ms);
	c->n = 0;
	c->records = 0;
	if (!(c->det = flood_detector(c))) {
		flow_decoder_free(d);
		free(c);
		return;
	}
	clock_ms = c->max_end + 1;
	c->next_sec = SIM_RATE;
	ddos_detector_tick(c->det, clock_ms);
	/* Two simulated seconds first, not measured: the flood is then an
	 * attack, its targets detailed, their sketches taking every record. */
	count_run(c, d, s, recv_ms, 2 * SIM_RATE, &clock_ms, &t_tick);
	warm = c->records;
	t_tick = 0;
	count_measured(c, d, s, recv_ms, warm + want, &clock_ms, &t_tick, &us);
	st = ddos_count_stats(ddos_detector_counters(c->det));
	printf("%-8s %12.0f records/s decoded and counted, %6.1f ns/record (%.1f of it in ticks); "
	       "%llu records measured; since the start %llu of %llu counted, %zu hosts, %zu detailed, "
	       "%d attack(s)\n", name,
	       (double)(c->records - warm) * 1e6 / (double)us, (double)us * 1e3 / (double)(c->records - warm),
	       (double)t_tick * 1e3 / (double)(c->records - warm), (unsigned long long)(c->records - warm),
	       (unsigned long long)st->counted, (unsigned long long)st->records,
	       ddos_count_hosts(ddos_detector_counters(c->det)),
	       ddos_count_details(ddos_detector_counters(c->det)), c->attacks);
	ddos_detector_free(c->det);
	flow_decoder_free(d);
	free(c);
}

static void bench_both(const char *name, struct dg *dgs, size_t ndg, uint64_t want, int count)
{
	struct dsrc s = { dgs, NULL, ndg, 0 };

	if (count)
		bench_count(name, &s, want);
	else
		bench_format(name, dgs, ndg, want);
}

static int bench_generated(uint64_t want)
{
	struct dg *dgs = calloc(DISTINCT, sizeof(*dgs));

	if (!dgs)
		return 1;
	for (int count = 0; count < 2; count++) {
		if (count)
			printf("decoded and counted, one core: a flood into 203.0.113.0/24 (the /24, its "
			       "hosts and the group detailed and under attack), batches of %d\n", REC_BATCH);
		else
			printf("flow decoding, one core, %d distinct datagrams per format\n", DISTINCT);
		rng = 0x9e3779b97f4a7c15ULL;
		for (size_t i = 0; i < DISTINCT; i++)
			gen_v5(&dgs[i]);
		bench_both("netflow5", dgs, DISTINCT, want, count);
		for (size_t i = 0; i < DISTINCT; i++)
			gen_templated(&dgs[i], 0, i % 20 == 0);
		bench_both("netflow9", dgs, DISTINCT, want, count);
		for (size_t i = 0; i < DISTINCT; i++)
			gen_templated(&dgs[i], 1, i % 20 == 0);
		bench_both("ipfix", dgs, DISTINCT, want, count);
		for (size_t i = 0; i < DISTINCT; i++)
			gen_sflow(&dgs[i]);
		bench_both("sflow", dgs, DISTINCT, want, count);
	}
	free(dgs);
	return 0;
}

/* Decodes one flowgen capture, prints counts, then times it. */
static int bench_file(const char *path, int count, uint64_t want)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0, ndg = 0;
	struct sum s = { 0 };
	struct flow_decoder *d;
	struct flow_ip from;
	uint64_t errors = 0;
	const struct flow_stats *st;
	double t0, t;
	int rounds = 0;

	if (!f) {
		perror(path);
		return 1;
	}
	for (;;) {
		if (n == cap) {
			uint8_t *nb = realloc(buf, cap ? cap * 2 : 1 << 20);

			if (!nb || cap > (1u << 30)) {
				free(nb ? nb : buf);
				fclose(f);
				return 1;
			}
			buf = nb;
			cap = cap ? cap * 2 : 1 << 20;
		}
		size_t k = fread(buf + n, 1, cap - n, f);
		if (k == 0)
			break;
		n += k;
	}
	fclose(f);
	if (count) {
		struct dsrc src = { NULL, buf, 0, n };

		bench_count(path, &src, want);
		free(buf);
		return 0;
	}
	d = flow_decoder_new(NULL, on_rec, NULL, &s);
	if (!d) {
		free(buf);
		return 1;
	}
	flow_ip_parse(&from, "127.0.0.1");
	for (size_t off = 0; off + 2 <= n;) {
		size_t len = (size_t)buf[off] << 8 | buf[off + 1];

		off += 2;
		if (len > n - off)
			len = n - off;
		errors += flow_decode(d, FLOW_FMT_AUTO, &from, 0, buf + off, len) != 0;
		off += len;
		ndg++;
	}
	st = flow_decoder_stats(d);
	printf("%s: %zu datagrams, %llu records, %llu errors, %llu without template; "
	       "sampling-corrected %llu packets, %llu bytes, %llu fragment records\n",
	       path, ndg, (unsigned long long)s.records, (unsigned long long)errors,
	       (unsigned long long)st->no_template_sets, (unsigned long long)s.packets,
	       (unsigned long long)s.bytes, (unsigned long long)s.frags);
	if (s.records == 0) {
		flow_decoder_free(d);
		free(buf);
		return 0;
	}
	memset(&s, 0, sizeof(s));
	t0 = now_s();
	do {
		for (size_t off = 0; off + 2 <= n;) {
			size_t len = (size_t)buf[off] << 8 | buf[off + 1];

			off += 2;
			if (len > n - off)
				len = n - off;
			(void)flow_decode(d, FLOW_FMT_AUTO, &from, 0, buf + off, len);
			off += len;
		}
		rounds++;
	} while (now_s() - t0 < 1.0);
	t = now_s() - t0;
	printf("%s: %.0f records/s, %.0f datagrams/s\n", path, (double)s.records / t,
	       (double)ndg * rounds / t);
	flow_decoder_free(d);
	free(buf);
	return 0;
}

/* ---- the collector's path on N threads ---- */

struct shard_run {
	unsigned k, n;
	struct ddos_detector *det;
	struct ddos_handoff ho;
	const struct dg *dgs;
	size_t ndg;
	atomic_int *stop;
	uint64_t decoded;
	double cpu;                /* the thread's CPU seconds */
};

static double thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *shard_thread(void *arg)
{
	struct shard_run *r = arg;
	struct flow_decoder *dec = flow_decoder_new(NULL, ddos_handoff_rec, NULL, &r->ho);
	struct flow_ip from;
	int64_t next_tick = 0;
	size_t i = (r->ndg / r->n) * r->k;
	char ip[32];
	double cpu0 = thread_cpu_s();

	if (!dec)
		return NULL;
	/* One exporter per thread, as SO_REUSEPORT steering gives. */
	snprintf(ip, sizeof(ip), "192.0.2.%u", r->k + 1);
	flow_ip_parse(&from, ip);
	while (!atomic_load_explicit(r->stop, memory_order_relaxed)) {
		int64_t mono;
		/* A recvmmsg's worth, then what a collector thread does. */
		for (int b = 0; b < 64; b++, i = (i + 1) % r->ndg)
			(void)flow_decode(dec, FLOW_FMT_AUTO, &from, clock_now_us() / 1000, r->dgs[i].b,
					  r->dgs[i].n);
		ddos_handoff_flush(&r->ho);
		ddos_handoff_take(&r->ho, 65536);
		mono = clock_mono_us();
		if (mono >= next_tick) {
			ddos_detector_tick(r->det, clock_now_us() / 1000);
			next_tick = mono + (ddos_detector_pending(r->det) ? 10000 : 100000);
		}
	}
	ddos_handoff_flush(&r->ho);
	r->cpu = thread_cpu_s() - cpu0;
	r->decoded = flow_decoder_stats(dec)->records;
	flow_decoder_free(dec);
	return NULL;
}

/* Records counted per second by n threads over `seconds`; *per_cpu: per
 * CPU second of the threads (what a free core would give). */
static double shard_once(const char *yaml, unsigned n, const struct dg *dgs, size_t ndg,
			 double seconds, uint64_t *drops, double *per_cpu)
{
	double cpu = 0;
	struct shard_run r[DDOS_SHARDS_MAX];
	pthread_t th[DDOS_SHARDS_MAX];
	struct ddos_spsc *ring = NULL;
	struct ddos_gsync *gs = n > 1 ? ddos_gsync_new(n) : NULL;
	atomic_int stop = 0;
	struct conf_doc doc = { 0 };
	struct ddos_config cfg;
	struct buf err;
	double t0, t, total = 0;

	buf_init(&err, 0);
	if (conf_parse("bench.yaml", yaml, strlen(yaml), &doc, &err) < 0 ||
	    ddos_config_load(&doc, &cfg, &err) < 0) {
		fprintf(stderr, "bench_flow: %s\n", err.p ? err.p : "config");
		exit(1);
	}
	conf_doc_fini(&doc);
	if (n > 1) {
		ring = aligned_alloc(64, (size_t)n * n * sizeof(*ring));
		memset(ring, 0, (size_t)n * n * sizeof(*ring));
		for (unsigned i = 0; i < n * n; i++)
			if (i / n != i % n)
				ddos_spsc_init(&ring[i], ddos_handoff_ring_size(n));
	}
	for (unsigned k = 0; k < n; k++) {
		r[k] = (struct shard_run){ k, n, ddos_detector_new(&cfg, NULL, NULL, &err), { 0 }, dgs,
					   ndg, &stop, 0, 0 };
		if (!r[k].det || (gs && ddos_detector_shard(r[k].det, gs, k) < 0) ||
		    ddos_handoff_init(&r[k].ho, k, n, ring, r[k].det, 24, 48) < 0) {
			fprintf(stderr, "bench_flow: %s\n", err.p ? err.p : "out of memory");
			exit(1);
		}
		ddos_detector_tick(r[k].det, clock_now_us() / 1000);
	}
	t0 = now_s();
	for (unsigned k = 0; k < n; k++)
		pthread_create(&th[k], NULL, shard_thread, &r[k]);
	while (now_s() - t0 < seconds) {
		struct timespec ts = { 0, 20000000 };
		nanosleep(&ts, NULL);
	}
	atomic_store(&stop, 1);
	for (unsigned k = 0; k < n; k++)
		pthread_join(th[k], NULL);
	t = now_s() - t0;
	*drops = 0;
	for (unsigned k = 0; k < n; k++) {
		/* What is still in the rings was decoded, not counted: left out. */
		total += (double)ddos_count_stats(ddos_detector_counters(r[k].det))->records;
		*drops += r[k].ho.drops;
		cpu += r[k].cpu;
		ddos_handoff_fini(&r[k].ho);
		ddos_detector_free(r[k].det);
	}
	for (unsigned i = 0; ring && i < n * n; i++)
		ddos_spsc_fini(&ring[i]);
	free(ring);
	ddos_gsync_free(gs);
	ddos_config_free(&cfg);
	buf_fini(&err);
	*per_cpu = cpu > 0 ? total / cpu : 0;
	return total / t;
}

static int bench_shards(unsigned n, double seconds, int rounds)
{
	static const char *yaml =
		"ddos:\n"
		"  groups:\n"
		"    - name: bench\n"
		"      prefixes: [198.18.0.0/15]\n"
		"      baseline: 0\n"
		"      thresholds:\n"
		"        total: { bps: 0, pps: 0 }\n"
		"        syn: { pps: 0 }\n"
		"        rst: { pps: 0 }\n"
		"        icmp: { pps: 0 }\n"
		"        fragment: { pps: 0 }\n"
		"        amplification: { bps: 0 }\n"
		"      prefix_thresholds:\n"
		"        total: { bps: 0, pps: 0 }\n"
		"      group_thresholds:\n"
		"        total: { bps: 0, pps: 0 }\n";
	struct dg *dgs = calloc(DISTINCT, sizeof(*dgs));
	static const char *const names[2] = { "netflow9", "sflow" };

	if (!dgs || n < 2 || n > DDOS_SHARDS_MAX)
		return 1;
	dst_base = 0xc6120000u;   /* 198.18.0.0/16: 256 /24s, 65,536 hosts */
	dst_span = 1u << 16;
	printf("collector path (decode, hand-off by destination /24, count, tick), %.0f s runs,"
	       " best of %d, 1 and %u threads alternating\n", seconds, rounds, n);
	for (int f = 0; f < 2; f++) {
		double best[2] = { 0, 0 }, best_cpu[2] = { 0, 0 };
		uint64_t drops[2] = { 0, 0 };

		for (size_t i = 0; i < DISTINCT; i++) {
			if (f == 0)
				gen_templated(&dgs[i], 0, i % 20 == 0);
			else
				gen_sflow(&dgs[i]);
		}
		for (int round = 0; round < rounds; round++)
			for (int w = 0; w < 2; w++) {
				uint64_t d;
				double pc, v = shard_once(yaml, w ? n : 1, dgs, DISTINCT, seconds, &d, &pc);
				printf("  %-8s %u thread%s %12.0f records/s %12.0f per CPU second\n", names[f],
				       w ? n : 1, w ? "s" : " ", v, pc);
				fflush(stdout);
				if (v > best[w]) {
					best[w] = v;
					drops[w] = d;
				}
				if (pc > best_cpu[w])
					best_cpu[w] = pc;
			}
		printf("%-8s wall: 1 thread %.0f records/s, %u threads %.0f (%.2fx); per CPU second:"
		       " %.0f and %.0f (%.2f of one thread's: %.2fxN on N free cores);"
		       " hand-off drops %llu\n", names[f], best[0], n, best[1],
		       best[0] > 0 ? best[1] / best[0] : 0, best_cpu[0], best_cpu[1],
		       best_cpu[0] > 0 ? best_cpu[1] / best_cpu[0] : 0,
		       best_cpu[0] > 0 ? best_cpu[1] / best_cpu[0] : 0, (unsigned long long)drops[1]);
	}
	free(dgs);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t want = 20000000;
	int rc = 0, count = 0, i = 1;

	if (argc > 1 && !strcmp(argv[1], "shards")) {
		unsigned n = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 2;
		double secs = argc > 3 ? strtod(argv[3], NULL) : 3;
		int rounds = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 3;

		return bench_shards(n, secs > 0 ? secs : 3, rounds > 0 ? rounds : 3);
	}

	if (argc > 1 && !strcmp(argv[1], "-c")) {
		count = 1;
		i = 2;
		if (argc > i + 1 && !strcmp(argv[i], "-n")) {
			want = strtoull(argv[i + 1], NULL, 10);
			i += 2;
		}
		if (argc > i + 1 && !strcmp(argv[i], "-p")) {
			protect = argv[i + 1];
			i += 2;
		}
	}
	if (!count && argc > 1 && argv[1][0] >= '0' && argv[1][0] <= '9') {
		char *end;

		want = strtoull(argv[1], &end, 10);
		if (*end || want == 0) {
			fprintf(stderr, "usage: bench_flow [records-per-format] | FILE... | -c [-n records] [-p PREFIX] FILE...\n");
			return 2;
		}
		return bench_generated(want);
	}
	if (argc == 1)
		return bench_generated(want);
	if (want == 0 || i >= argc) {
		fprintf(stderr, "usage: bench_flow [records-per-format] | FILE... | -c [-n records] [-p PREFIX] FILE...\n");
		return 2;
	}
	for (; i < argc; i++)
		rc |= bench_file(argv[i], count, want);
	return rc;
}
