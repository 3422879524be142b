/*
 * Benchmark of DDoS counting and detection. Why: the issue asks for at
 * least 3,000,000 flow records per second per core through collection,
 * no more than 64 MB for 131,072 tracked hosts, and a per-second
 * evaluation under 10 ms; this measures the counters and the detector
 * alone (decoding is bench_flow's), on one thread, with an injected clock.
 *
 * The stream: 100,000 protected hosts (IPv4 and IPv6), most records to a
 * busy few and the rest spread over all; TCP with established, SYN and RST
 * flags, UDP (some from DNS and NTP ports), ICMP, fragments; durations from
 * single packets to 60-second active-timeout records; a tenth of the
 * records 1:100 sampled packets (sFlow); plus a memcached attack on one host and a carpet
 * attack over one /24. Each simulated second gets `rate` records, then the
 * clock moves a second. Prints records/s, the per-second evaluation time,
 * the attacks found, and memory (the tables' size and the resident set)
 * for this run; then memory and the per-second evaluation with 131,072
 * and 1,000,000 tracked hosts, every one of them busy; then the time to
 * mitigate (first attack packet to the decision) of attacks at 1.2x and
 * 10x a threshold, sFlow 1:100 and 1:1000 and short NetFlow records 1:1
 * and 1:10, and the false attacks of steady traffic at 0.8x-1.0x of it,
 * on a simulated clock. It never passes or fails.
 *
 *   bench_ddos ttm [trials (200)] [seconds (3600)] [seed] [sources: a part of their name]
 *              [calendar: with sliding_second: false]
 *     the time to mitigate and the false attacks alone
 *   bench_ddos [seconds (20)] [records per simulated second (1000000)] [hosts (100000)]
 *              [single: one record per call instead of batches of 30 |
 *               flood: every record into one /24 (198.18.196.0/24), the mix
 *               bench_flowsend sends: SYN flood from spoofed sources, UDP
 *               reflection, web, ICMP; records up to 2 s long ending up to
 *               1 s before the clock; the hot /24, group and hosts are what
 *               the collector's counting costs under attack]
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"
#include "ddos/ddos_detect.h"
#include "ddos/ddos_int.h"   /* the host's layout, printed with the memory figures */

#include "bench_ddos_group.h"

#define POOL (1u << 18)
#define T0 1700000000LL

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng_seed;   /* bench_ddos ttm's seed */
static int calendar_only;   /* bench_ddos ttm ... calendar: sliding_second: false */

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static double unif(void)
{
	return (double)(rng() >> 11) / 9007199254740992.0;
}

/* This thread's CPU time: the machine may be shared, so wall time would
 * measure the neighbours too. */
static int64_t cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Resident set now, in bytes. */
static size_t rss_now(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	char line[128], *p;
	unsigned long res = 0;

	if (!f)
		return 0;
	if (fgets(line, sizeof(line), f)) {
		strtoul(line, &p, 10);               /* total pages */
		res = strtoul(p, NULL, 10);          /* resident pages */
	}
	fclose(f);
	return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

struct pool_rec {
	struct flow_rec r;
	int32_t off_ms;      /* start, relative to the simulated second */
	int32_t dur_ms;
};

/* Host i of the protected space: 198.18.0.0/15 for IPv4 (the first 90%),
 * 2001:db8::/32 for IPv6. */
static void host_ip(uint32_t i, uint32_t hosts, struct flow_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (i < hosts - hosts / 10) {
		uint32_t a = (198u << 24) | (18u << 16);
		a += i;
		ip->a[10] = ip->a[11] = 0xff;
		ip->a[12] = (uint8_t)(a >> 24);
		ip->a[13] = (uint8_t)(a >> 16);
		ip->a[14] = (uint8_t)(a >> 8);
		ip->a[15] = (uint8_t)a;
		ip->family = FLOW_IPV4;
	} else {
		ip->a[0] = 0x20;
		ip->a[1] = 0x01;
		ip->a[2] = 0x0d;
		ip->a[3] = 0xb8;
		ip->a[4] = (uint8_t)(i >> 16);   /* 256 hosts per /48 */
		ip->a[5] = (uint8_t)(i >> 8);
		ip->a[15] = (uint8_t)i;
		ip->family = FLOW_IPV6;
	}
}

/* The flood mode's records: destinations in one /24, sources spoofed. */
static void make_flood(struct pool_rec *p, uint32_t hosts)
{
	for (uint32_t k = 0; k < POOL; k++) {
		struct flow_rec *r = &p[k].r;
		double kind = unif();
		uint64_t x = rng();
		memset(r, 0, sizeof(*r));
		r->exporter.family = FLOW_IPV4;
		r->exporter.a[10] = r->exporter.a[11] = 0xff;
		r->exporter.a[12] = 192;
		host_ip(196 * 256 + (uint32_t)(x & 255), hosts, &r->dst);
		r->src.family = FLOW_IPV4;
		r->src.a[10] = r->src.a[11] = 0xff;
		memcpy(r->src.a + 12, &x, 4);
		r->sampling = 1;
		r->dport = kind < 0.7 ? 80 : (uint16_t)(x >> 32);
		r->packets = 1 + (x >> 48) % 4;
		if (kind < 0.5) {           /* SYN flood */
			r->proto = 6;
			r->tcp_flags = 0x02;
			r->sport = (uint16_t)(1024 + (x >> 40) % 60000);
			r->bytes = r->packets * 60;
		} else if (kind < 0.75) {   /* reflection */
			static const uint16_t ports[] = { 53, 123, 11211, 1900, 389 };
			r->proto = 17;
			r->sport = ports[(x >> 40) % 5];
			r->flags = (x >> 44) % 8 == 0 ? FLOW_F_FRAGMENT : 0;
			r->bytes = r->packets * 1200;
		} else if (kind < 0.95) {   /* web */
			r->proto = 6;
			r->tcp_flags = 0x18;
			r->sport = (uint16_t)(1024 + (x >> 40) % 60000);
			r->bytes = r->packets * 900;
		} else {                    /* echo */
			r->proto = 1;
			r->bytes = r->packets * 84;
		}
		p[k].dur_ms = (int32_t)(unif() * 2000);
		p[k].off_ms = 999 - (int32_t)(unif() * 1000) - p[k].dur_ms;
	}
}

static void make_pool(struct pool_rec *p, uint32_t hosts)
{
	for (uint32_t k = 0; k < POOL; k++) {
		struct flow_rec *r = &p[k].r;
		double u = unif(), kind = unif();
		uint32_t h;
		uint64_t x = rng();
		memset(r, 0, sizeof(*r));
		r->exporter.family = FLOW_IPV4;
		r->exporter.a[10] = r->exporter.a[11] = 0xff;
		r->exporter.a[12] = 192;
		r->exporter.a[15] = (uint8_t)(1 + k % 8);
		/* A third of the records to the busier hosts (u^2), the rest
		 * spread over all. */
		h = (uint32_t)(hosts * (unif() < 0.33 ? u * u : u)) % hosts;
		host_ip(h, hosts, &r->dst);
		r->src.family = FLOW_IPV4;
		r->src.a[10] = r->src.a[11] = 0xff;
		memcpy(r->src.a + 12, &x, 4);
		r->sampling = 1;
		r->dport = (uint16_t)(x >> 32);
		if (kind < 0.62) {          /* established TCP */
			r->proto = 6;
			r->tcp_flags = 0x18;
			r->sport = (unif() < 0.5) ? 443 : (uint16_t)(1024 + (x >> 40) % 60000);
			r->packets = 1 + (x >> 48) % 40;
			r->bytes = r->packets * (40 + (x >> 20) % 1400);
		} else if (kind < 0.70) {   /* handshakes, resets */
			r->proto = 6;
			r->tcp_flags = unif() < 0.7 ? 0x02 : 0x14;
			r->sport = (uint16_t)(1024 + (x >> 40) % 60000);
			r->packets = 1 + (x >> 48) % 3;
			r->bytes = r->packets * 60;
		} else if (kind < 0.92) {   /* UDP: QUIC, DNS answers, NTP */
			double w = unif();
			r->proto = 17;
			r->sport = w < 0.5 ? 443 : w < 0.8 ? 53 : w < 0.85 ? 123 : (uint16_t)(1024 + (x >> 40) % 60000);
			r->packets = 1 + (x >> 48) % 20;
			r->bytes = r->packets * (80 + (x >> 20) % 1200);
		} else if (kind < 0.97) {   /* ICMP */
			r->proto = 1;
			r->packets = 1 + (x >> 48) % 4;
			r->bytes = r->packets * 84;
		} else {                    /* fragments */
			r->proto = 17;
			r->flags = FLOW_F_FRAGMENT;
			r->packets = 1 + (x >> 48) % 10;
			r->bytes = r->packets * 1480;
		}
		/* Durations: most flows short, a fifth medium, a tenth exported
		 * by a 60-second active timeout. */
		u = unif();
		if (u < 0.7) {
			p[k].dur_ms = (int32_t)(unif() * 2000);
			p[k].off_ms = (int32_t)(unif() * 1000) - p[k].dur_ms;
		} else if (u < 0.9) {
			p[k].dur_ms = 2000 + (int32_t)(unif() * 13000);
			p[k].off_ms = 999 - p[k].dur_ms;
		} else {
			p[k].dur_ms = 60000;
			p[k].off_ms = 999 - 60000;
			r->packets *= 30;
			r->bytes *= 30;
		}
		if (k % 10 == 0) {         /* sFlow-like 1:100 samples */
			r->sampling = 100;
			r->bytes = r->bytes / r->packets;
			r->packets = 1;
			p[k].dur_ms = 0;
			p[k].off_ms = (int32_t)(unif() * 1000);
		}
		/* The attacks: memcached at one host, DNS carpet over a /24. */
		if (k % 97 == 0) {
			host_ip(12345, hosts, &r->dst);
			r->proto = 17;
			r->sport = 11211;
			r->flags = 0;
			r->tcp_flags = 0;
			r->sampling = 1;
			r->packets = 200;
			r->bytes = 200 * 1400;
			p[k].dur_ms = 900;
			p[k].off_ms = 0;
		} else if (k % 89 == 0) {
			host_ip(196 * 256 + 1 + (uint32_t)(x % 250), hosts, &r->dst);   /* 198.18.196.0/24 */
			r->proto = 17;
			r->sport = 53;
			r->flags = 0;
			r->sampling = 1;
			r->packets = 250;
			r->bytes = 250 * 1200;
			p[k].dur_ms = 900;
			p[k].off_ms = 0;
		}
	}
}

static int starts, ends;
static char first[8][320];

static void on_start(void *arg, const struct ddos_attack *a)
{
	char b[16], p[16];

	(void)arg;
	if (starts < 8)
		snprintf(first[starts], sizeof(first[0]), "%s (second %lld): %s, %sbit/s %spps, tier %s", a->target_str, (long long)(a->start - T0),
			 a->summary, ddos_rate_str(a->peak_bps, b, sizeof(b)),
			 ddos_rate_str(a->peak_pps, p, sizeof(p)), a->tier_name ? a->tier_name : "-");
	starts++;
}

/* An attack's name and size as they stand: a 1 s trigger starts an
 * attack on its first second over, named from what detail the target had
 * then; the name is refreshed every second after. */
static void print_attack(void *arg, const struct ddos_attack *a)
{
	char b[16], p[16];

	(void)arg;
	printf("    now: %s: %s, %sbit/s %spps, tier %s\n", a->target_str, a->summary,
	       ddos_rate_str(a->peak_bps, b, sizeof(b)), ddos_rate_str(a->peak_pps, p, sizeof(p)),
	       a->tier_name ? a->tier_name : "-");
}

static void on_end(void *arg, const struct ddos_attack *a)
{
	(void)arg;
	(void)a;
	ends++;
}

static double ttm_start_ms;   /* simulated time of the first on_start, or -1 */
static int ttm_starts;        /* attacks started in this run */
static double ttm_in_ms;      /* simulated time under attack, ended attacks */
static double ttm_open_ms;    /* start of the attack in progress, or -1 */
static double ttm_peak0;      /* the first attack's peak pps as it started */
static double ttm_match_ms;   /* when the first attack's match (its filter) was established */
static double ttm_named_ms;   /* ... and its vectors named */
static int ttm_cls0;          /* the first attack started classifying */

static void ttm_on_start(void *arg, const struct ddos_attack *a)
{
	int64_t *now = arg;

	if (ttm_start_ms < 0) {
		ttm_start_ms = (double)*now;
		ttm_peak0 = a->peak_pps;
		ttm_cls0 = a->classifying;
		if (a->match_ready)
			ttm_match_ms = (double)*now;
		if (!a->classifying)
			ttm_named_ms = (double)*now;
	}
	ttm_starts++;
	ttm_open_ms = (double)*now;
}

static void ttm_on_update(void *arg, const struct ddos_attack *a)
{
	int64_t *now = arg;

	if (ttm_starts == 1 && ttm_match_ms < 0 && a->match_ready)
		ttm_match_ms = (double)*now;
	if (ttm_starts == 1 && ttm_named_ms < 0 && !a->classifying)
		ttm_named_ms = (double)*now;
}

static void ttm_on_end(void *arg, const struct ddos_attack *a)
{
	int64_t *now = arg;

	(void)a;
	if (ttm_open_ms >= 0)
		ttm_in_ms += (double)*now - ttm_open_ms;
	ttm_open_ms = -1;
}

/* The bench's detector. ttm_mode: the time-to-mitigate set-up instead
 * (one group, 20 kpps and 1 Gbit/s per host, the other per-host defaults
 * and the baseline off, as bench/ddos_compare.sh), whose handlers note
 * *now; ttm_mode 2: the same with a 1 s cool-down (each run of seconds
 * over is an attack of its own). */
static struct ddos_detector *make(uint32_t max_hosts, int64_t *now, int ttm_mode, struct buf *err)
{
	char y[1024];
	struct conf_doc doc = { 0 };
	struct ddos_config cfg = { 0 };
	struct ddos_handlers h = { on_start, NULL, on_end, NULL };
	struct ddos_handlers ht = { ttm_on_start, ttm_on_update, ttm_on_end, NULL };
	struct ddos_detector *d = NULL;

	if (ttm_mode)
		snprintf(y, sizeof(y), "ddos:\n  max_hosts: %u\n  groups:\n" BENCH_COMPARE_GROUP "%s%s",
			 max_hosts, ttm_mode == 2 ? "      cooldown: 1s\n" : "",
			 calendar_only ? "      sliding_second: false\n" : "");
	else
		snprintf(y, sizeof(y),
			 "ddos:\n"
			 "  max_hosts: %u\n"
			 "  max_prefixes: 65536\n"
			 "  groups:\n"
			 "    - name: isp\n"
			 "      prefixes: [198.18.0.0/15, 100.64.0.0/10, 2001:db8::/32]\n"
			 "      prefix_thresholds:\n"
			 "        total: { pps: 2M, bps: 20G }\n"
			 "      group_thresholds:\n"
			 "        total: { pps: 0, bps: 0 }\n"
			 "      tiers:\n"
			 "        - { name: flowspec, bps: 1G }\n"
			 "        - { name: blackhole, bps: 10G }\n", max_hosts);
	if (conf_parse("bench.yaml", y, strlen(y), &doc, err) == 0 &&
	    ddos_config_load(&doc, &cfg, err) == 0)
		d = ddos_detector_new(&cfg, ttm_mode ? &ht : &h, now, err);
	ddos_config_free(&cfg);
	conf_doc_fini(&doc);
	return d;
}

/* Memory and per-second evaluation for n tracked hosts, all of them busy:
 * every host of 100.64.0.0/10 gets one record in each of 6 seconds (IPv4;
 * /24 aggregates follow), and each second's tick is timed in CPU time.
 * The worst case for the evaluation: an idle host costs less. */
static void memory_for(uint32_t n)
{
	struct buf err;
	struct ddos_detector *d;
	size_t before = rss_now(), after;
	int64_t ev[6], sum = 0, mx = 0;
	int nev = 0;

	buf_init(&err, 0);
	d = make(n, NULL, 0, &err);
	if (!d) {
		printf("  %u hosts: %s\n", n, err.p ? err.p : "?");
		buf_fini(&err);
		return;
	}
	ddos_detector_tick(d, T0 * 1000);
	for (int s = 0; s < 6; s++) {
		int64_t t0;
		for (uint32_t i = 0; i < n; i++) {
			struct flow_rec r;
			uint32_t a = (100u << 24) | (64u << 16);
			memset(&r, 0, sizeof(r));
			a += i;
			r.dst.family = r.src.family = r.exporter.family = FLOW_IPV4;
			r.dst.a[10] = r.dst.a[11] = r.src.a[10] = r.src.a[11] = 0xff;
			r.dst.a[12] = (uint8_t)(a >> 24);
			r.dst.a[13] = (uint8_t)(a >> 16);
			r.dst.a[14] = (uint8_t)(a >> 8);
			r.dst.a[15] = (uint8_t)a;
			r.src.a[12] = 192;
			r.proto = 6;
			r.tcp_flags = 0x18;
			r.packets = 10;
			r.bytes = 5000;
			r.sampling = 1;
			r.start_ms = (T0 + s) * 1000;
			r.end_ms = (T0 + s) * 1000 + 500;
			ddos_detector_add(d, &r);
		}
		t0 = cpu_us();
		if (ddos_detector_tick(d, (T0 + s + 1) * 1000) > 0 && s >= 2) {
			/* From the third second on every host has a closed second. */
			ev[nev] = cpu_us() - t0;
			sum += ev[nev];
			if (ev[nev] > mx)
				mx = ev[nev];
			nev++;
		}
	}
	after = rss_now();
	printf("  %7u hosts: %zu tracked, tables %.1f MiB, resident +%.1f MiB; evaluation with every "
	       "host busy: %.1f ms CPU per second (mean of %d), %.1f ms max\n",
	       n, ddos_count_hosts(ddos_detector_counters(d)), ddos_detector_memory(d) / 1048576.0,
	       (after - before) / 1048576.0, nev ? sum / 1000.0 / nev : 0, nev, mx / 1000.0);
	ddos_detector_free(d);
	buf_fini(&err);
}

/* ---- time to mitigate, false attacks ---- */

/* Milliseconds to the next event of a Poisson process of `rate` per second. */
static double exp_gap(double rate)
{
	return -log(1 - unif()) * 1000.0 / rate;
}

static int cmp_dbl(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

/* How an exporter reports the traffic of the simulations below. */
enum src_kind {
	SRC_SFLOW,    /* packet samples, each stamped on arrival */
	SRC_NF,       /* flow records of 1-8 packets lasting up to 1 s, exported 0-0.5 s
		       * after they end (short flows: floods from spoofed sources) */
	SRC_NF_LONG   /* 50 steady flows, each exported every 60 s (active timeout) */
};

struct src {
	const char *name;
	enum src_kind kind;
	uint32_t smp;             /* 1:smp sampling */
};

/* One stream of records to the protected host: pps packets a second (before
 * sampling) from `at` on. attack: the memcached vector, else web traffic. */
struct stream {
	const struct src *src;
	double pps, next;         /* next record's arrival, ms */
	int attack;
};

static double stream_gap(const struct stream *st)
{
	if (st->src->kind == SRC_NF_LONG)
		return 60000.0 / 50;
	return exp_gap(st->pps / st->src->smp / (st->src->kind == SRC_NF ? 4.5 : 1));
}

static void stream_init(struct stream *st, const struct src *src, double pps, double at, int attack)
{
	st->src = src;
	st->pps = pps;
	st->attack = attack;
	st->next = at + (src->kind == SRC_NF_LONG ? unif() * 1200 : stream_gap(st));
}

/* The record that arrives at st->next, and the stream moved to the next. */
static void stream_rec(struct stream *st, struct flow_rec *r)
{
	double at = st->next;

	memset(r, 0, sizeof(*r));
	r->dst.family = r->src.family = r->exporter.family = FLOW_IPV4;
	r->dst.a[10] = r->dst.a[11] = r->src.a[10] = r->src.a[11] = 0xff;
	r->exporter.a[10] = r->exporter.a[11] = 0xff;
	r->dst.a[12] = 203;
	r->dst.a[14] = 113;
	r->dst.a[15] = 10;
	r->src.a[12] = st->attack ? 198 : 192;
	r->src.a[15] = (uint8_t)(rng() & 0xff);
	r->proto = 17;
	r->sport = st->attack ? 11211 : 443;
	r->sampling = st->src->smp;
	r->packets = 1;
	r->start_ms = r->end_ms = (int64_t)at;
	if (st->src->kind == SRC_NF) {
		r->packets = 1 + rng() % 8;
		r->end_ms = (int64_t)(at - unif() * 500);
		r->start_ms = r->end_ms - (int64_t)(unif() * 1000);
	} else if (st->src->kind == SRC_NF_LONG) {
		r->packets = (uint64_t)(st->pps / 50 * 60 / st->src->smp);
		r->start_ms = (int64_t)at - 60000;
	}
	r->bytes = r->packets * (st->attack ? 1400 : 800);
	st->next += stream_gap(st);
}

/* Feeds the detector the streams' records in arrival order up to `until`
 * (ms), ticking every 100 ms as the collector does; stops early at the
 * first attack when stop_at_start. */
static void sim_run(struct ddos_detector *d, int64_t *now, int64_t *next_tick, struct stream *st,
		    size_t n, double until, int stop_at_start)
{
	for (;;) {
		struct stream *s = &st[0];
		struct flow_rec r;
		for (size_t i = 1; i < n; i++)
			if (st[i].next < s->next)
				s = &st[i];
		while (*next_tick <= (int64_t)s->next && *next_tick <= (int64_t)until &&
		       !(stop_at_start && ttm_start_ms >= 0)) {
			*now = *next_tick;
			ddos_detector_tick(d, *now);
			*next_tick += 100;
		}
		if ((stop_at_start && ttm_start_ms >= 0) || s->next > until)
			return;
		stream_rec(s, &r);
		ddos_detector_add(d, &r);
	}
}

static void sim_reset(void)
{
	ttm_start_ms = -1;
	ttm_match_ms = -1;
	ttm_named_ms = -1;
	ttm_cls0 = 0;
	ttm_starts = 0;
	ttm_in_ms = 0;
	ttm_open_ms = -1;
}

static void peak_of(void *arg, const struct ddos_attack *a)
{
	*(double *)arg = a->peak_pps;
}

/* Time from an attack's first packet to the detector's decision, as the
 * collector runs it (a tick every 100 ms, defaults: delay 1 s, trigger
 * 1 s), for an attack of `factor` times a 20 kpps threshold reported by
 * src, starting at a random moment of a second, over a background of a
 * tenth of the threshold. The records of one trial are a Poisson process;
 * `trials` trials give the percentiles. The route at the peer comes after
 * this (the mitigation worker). The attack's peak, as it starts and 4 s
 * later, against the real rate (attack and background). And the time to
 * its match (what a FlowSpec rule needs: the vectors, or the protocol,
 * established from enough records; a blackhole needs none), and how many
 * attacks started "classifying". */
static void ttm(const struct src *src, double factor, int trials)
{
	double *t = calloc((size_t)trials, sizeof(*t)), *p0 = calloc((size_t)trials, sizeof(*p0));
	double *p4 = calloc((size_t)trials, sizeof(*p4)), real = factor * 20000 + 2000;
	double *tm = calloc((size_t)trials, sizeof(*tm)), *tn = calloc((size_t)trials, sizeof(*tn));
	int missed = 0, n = 0, nm = 0, ncls = 0;

	if (!t || !p0 || !p4 || !tm || !tn) {
		free(t);
		free(p0);
		free(p4);
		free(tm);
		free(tn);
		return;
	}
	for (int k = 0; k < trials; k++) {
		struct buf err;
		int64_t now = T0 * 1000, next_tick = now + 100;
		double t_att;
		struct stream st[2];
		struct ddos_detector *d;
		buf_init(&err, 0);
		d = make(1024, &now, 1, &err);
		buf_fini(&err);
		if (!d)
			break;
		sim_reset();
		ddos_detector_tick(d, now);
		/* Ten quiet seconds of background, then the attack at a random
		 * millisecond; the trial ends 5 s later. */
		t_att = (double)(T0 + 10) * 1000 + floor(unif() * 1000);
		stream_init(&st[0], src, 2000, (double)now, 0);
		stream_init(&st[1], src, factor * 20000, t_att, 1);
		sim_run(d, &now, &next_tick, st, 2, t_att + 5000, 1);
		if (ttm_start_ms >= 0 && ttm_start_ms >= t_att) {
			double peak = 0;
			sim_run(d, &now, &next_tick, st, 2, ttm_start_ms + 4000, 0);
			ddos_detector_foreach(d, peak_of, &peak);
			p0[n] = ttm_peak0 / real;
			p4[n] = peak / real;
			t[n++] = (ttm_start_ms - t_att) / 1000.0;
			ncls += ttm_cls0;
			/* Never within the 4 s: counted as 5 s in the percentiles. */
			tn[nm] = ttm_named_ms >= 0 ? (ttm_named_ms - t_att) / 1000.0 : 5.0;
			tm[nm++] = ttm_match_ms >= 0 ? (ttm_match_ms - t_att) / 1000.0 : 5.0;
		} else {
			missed++;
		}
		ddos_detector_free(d);
	}
	qsort(t, (size_t)n, sizeof(*t), cmp_dbl);
	qsort(p0, (size_t)n, sizeof(*p0), cmp_dbl);
	qsort(p4, (size_t)n, sizeof(*p4), cmp_dbl);
	if (n)
		printf("  %4.1fx, %-13s %3d attacks: p50 %.2f s, p95 %.2f s, max %.2f s; peak/real at the "
		       "start %.2f-%.2f (p50 %.2f), 4 s on %.2f-%.2f (p50 %.2f)%s\n", factor, src->name, n,
		       t[n / 2], t[(n * 95 + 99) / 100 - 1], t[n - 1], p0[0], p0[n - 1], p0[n / 2], p4[0],
		       p4[n - 1], p4[n / 2],
		       missed ? " (some not detected, or a false start before the attack)" : "");
	if (missed)
		printf("        %d of %d trials: no decision within 5 s of the attack, or one before it\n",
		       missed, trials);
	qsort(tm, (size_t)nm, sizeof(*tm), cmp_dbl);
	qsort(tn, (size_t)nm, sizeof(*tn), cmp_dbl);
	if (nm)
		printf("        its filter's match (vectors or protocol established): p50 %.2f s, p95 %.2f s, "
		       "max %.2f s; named: p50 %.2f s, p95 %.2f s; %d of %d started classifying\n",
		       tm[nm / 2], tm[(nm * 95 + 99) / 100 - 1], tm[nm - 1], tn[nm / 2],
		       tn[(nm * 95 + 99) / 100 - 1], ncls, n);
	free(t);
	free(p0);
	free(p4);
	free(tm);
	free(tn);
}

/* False attacks: steady benign traffic at `factor` times the 20 kpps
 * threshold (pps: the rate instead, when not 0) for `seconds` simulated
 * seconds, with the default 60 s cool-down (attacks started, share of the
 * time under attack) and with a 1 s one (attacks started: about the runs
 * of seconds judged over). The same traffic for a given seed, whatever
 * came before: two builds compare on equal terms. */
static void falses(const struct src *src, double factor, double pps, int seconds)
{
	int nstart[2];
	double in[2];

	for (int m = 0; m < 2; m++) {
		struct buf err;
		int64_t now = T0 * 1000, next_tick = now + 100;
		struct stream st;
		struct ddos_detector *d;
		buf_init(&err, 0);
		d = make(1024, &now, 1 + m, &err);
		buf_fini(&err);
		if (!d)
			return;
		rng_state = (rng_seed + 1) * 0x9e3779b97f4a7c15ull ^ (uint64_t)(factor * 100 + pps) << 20 ^
			    (uint64_t)src->smp << 40 ^ (uint64_t)src->kind << 60;
		sim_reset();
		ddos_detector_tick(d, now);
		stream_init(&st, src, pps ? pps : factor * 20000, (double)now, 0);
		sim_run(d, &now, &next_tick, &st, 1, (double)now + seconds * 1000.0, 0);
		if (ttm_open_ms >= 0)
			ttm_in_ms += (double)now - ttm_open_ms;
		nstart[m] = ttm_starts;
		in[m] = ttm_in_ms;
		ddos_detector_free(d);
	}
	if (pps)
		printf("  %5.0f pps,", pps);
	else
		printf("  %4.1fx,    ", factor);
	printf(" %-13s %d s: %d false attacks, %.1f%% of the time under attack; with a 1 s "
	       "cool-down %d\n", src->name, seconds, nstart[0], 100.0 * in[0] / (seconds * 1000.0),
	       nstart[1]);
}

/* only: the sources whose name contains it, NULL for all. */
static void ttm_all(int trials, int seconds, const char *only)
{
	static const struct src srcs[] = {
		{ "sFlow 1:100", SRC_SFLOW, 100 },
		{ "sFlow 1:1000", SRC_SFLOW, 1000 },
		{ "NetFlow 1:1", SRC_NF, 1 },
		{ "NetFlow 1:10", SRC_NF, 10 },
	};
	static const struct src nf_long = { "NetFlow 1:10, 60 s records", SRC_NF_LONG, 10 };
	static const double factors[] = { 0.8, 0.9, 1.0 };

	printf("== time to mitigate: first attack packet to the decision (simulated clock, a tick every "
	       "100 ms, delay 1 s, trigger 1 s; 20 kpps threshold)\n");
	for (size_t i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++) {
		if (only && !strstr(srcs[i].name, only))
			continue;
		ttm(&srcs[i], 1.2, trials);
		ttm(&srcs[i], 10, trials);
	}
	if (seconds < 1)
		return;
	printf("== false attacks: steady benign traffic under the 20 kpps threshold (simulated clock)\n");
	for (size_t i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++)
		for (size_t f = 0; f < sizeof(factors) / sizeof(factors[0]) && !(only && !strstr(srcs[i].name, only)); f++)
			falses(&srcs[i], factors[f], 0, seconds);
	if (only && !strstr(nf_long.name, only))
		return;
	falses(&nf_long, 0, 5000, seconds);
	falses(&nf_long, 0.9, 0, seconds);
}

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 20;
	long rate = argc > 2 ? atol(argv[2]) : 1000000;
	uint32_t hosts = argc > 3 ? (uint32_t)atol(argv[3]) : 100000;
	int single = argc > 4 && !strcmp(argv[4], "single");
	int flood = argc > 4 && !strcmp(argv[4], "flood");
	struct pool_rec *pool = calloc(POOL, sizeof(*pool));
	struct buf err;
	struct ddos_detector *d;
	const struct ddos_count_stats *st;
	size_t rss0;
	int64_t add_us = 0, tick_us = 0;
	uint64_t k = 0, total = 0;

	if (argc > 1 && !strcmp(argv[1], "ttm")) {
		/* The simulations alone: trials, seconds, a seed, the sources
		 * ("" for all), calendar seconds only. */
		if (argc > 4) {
			rng_seed = strtoull(argv[4], NULL, 0);
			rng_state ^= rng_seed * 0x2545f4914f6cdd1dull;
		}
		calendar_only = argc > 6 && !strcmp(argv[6], "calendar");
		ttm_all(argc > 2 ? atoi(argv[2]) : 200, argc > 3 ? atoi(argv[3]) : 3600,
			argc > 5 && argv[5][0] ? argv[5] : NULL);
		free(pool);
		return 0;
	}
	if (!pool || seconds < 1 || rate < 1 || hosts < 1000 || hosts > 131072) {
		fprintf(stderr, "usage: bench_ddos [seconds] [records/s] [hosts, 1000..131072]\n");
		return 2;
	}
	buf_init(&err, 0);
	if (flood)
		make_flood(pool, hosts);
	else
		make_pool(pool, hosts);
	rss0 = rss_now();
	d = make(131072, NULL, 0, &err);
	if (!d) {
		fprintf(stderr, "bench_ddos: %s\n", err.p ? err.p : "?");
		return 1;
	}
	ddos_detector_tick(d, T0 * 1000);
	for (int s = 0; s < seconds; s++) {
		int64_t base = (T0 + s) * 1000, t0 = cpu_us(), t1;
		/* As a collector would: a datagram's records (up to 30 for
		 * NetFlow v5) copied out of the decoder's callback, then counted
		 * together. */
		for (long i = 0; i < rate; i += 30) {
			struct flow_rec batch[30];
			size_t nb = rate - i < 30 ? (size_t)(rate - i) : 30;
			for (size_t j = 0; j < nb; j++) {
				struct pool_rec *p = &pool[k++ & (POOL - 1)];
				batch[j] = p->r;
				batch[j].exporter.a[15] = (uint8_t)(1 + (i / 30) % 8);   /* one per datagram */
				batch[j].start_ms = base + p->off_ms;
				batch[j].end_ms = batch[j].start_ms + p->dur_ms;
			}
			if (single)
				for (size_t j = 0; j < nb; j++)
					ddos_detector_add(d, &batch[j]);
			else
				ddos_detector_add_batch(d, batch, nb);
		}
		t1 = cpu_us();
		ddos_detector_tick(d, base + 1000);
		tick_us += cpu_us() - t1;
		add_us += t1 - t0;
		total += (uint64_t)rate;
	}
	st = ddos_count_stats(ddos_detector_counters(d));
	printf("== ddos counters + detector, one thread: %d s x %ld records, %u protected hosts in use%s\n",
	       seconds, rate, flood ? 256 : hosts, flood ? " (flood into one /24)" : "");
	printf("  counting:   %.2f M records/s of CPU time (%.0f ns/record)\n", total / (double)add_us,
	       add_us * 1000.0 / (double)total);
	printf("  with ticks: %.2f M records/s\n", total / (double)(add_us + tick_us));
	printf("  evaluation: %.2f ms CPU per second on average, %.2f ms wall max (%zu hosts, %zu /24 "
	       "and /48, %zu detailed)\n", tick_us / 1000.0 / seconds,
	       ddos_detector_stats(d)->eval_us_max / 1000.0, ddos_count_hosts(ddos_detector_counters(d)),
	       ddos_count_prefixes(ddos_detector_counters(d)), ddos_count_details(ddos_detector_counters(d)));
	printf("  records: %llu counted, %llu moved forward (late), %llu evicted hosts, %llu refused details\n",
	       (unsigned long long)st->counted, (unsigned long long)st->late,
	       (unsigned long long)st->hosts_evicted, (unsigned long long)st->detail_refused);
	printf("  attacks: %d started, %d ended\n", starts, ends);
	for (int i = 0; i < starts && i < 8; i++)
		printf("    at the start: %s\n", first[i]);
	ddos_detector_foreach(d, print_attack, NULL);
	printf("  memory: tables %.1f MiB, resident +%.1f MiB\n", ddos_detector_memory(d) / 1048576.0,
	       (rss_now() - rss0) / 1048576.0);
	ddos_detector_free(d);
	free(pool);
	if (flood) {   /* the rest measures the usual stream */
		buf_fini(&err);
		return 0;
	}
	printf("== memory and evaluation by tracked hosts (a record to each host every second)\n");
	printf("  a tracked host: %zu bytes: head %zu (baseline, key, aggregate, entity, closed second), "
	       "ring bookkeeping %zu (busy, carry, arrivals, %zu of flow counts, 16-bit bound), "
	       "16-bit slots %zu, padding %zu; %zu more, lent, while a second could pass 32,768 units "
	       "or packets\n",
	       sizeof(struct ddos_host), offsetof(struct ddos_host, e.ring.busy),
	       offsetof(struct ddos_host, sl) - offsetof(struct ddos_host, e.ring.busy),
	       sizeof(((struct ddos_ring *)0)->fl), sizeof(struct ddos_nslots),
	       sizeof(struct ddos_host) - offsetof(struct ddos_host, sl) - sizeof(struct ddos_nslots),
	       sizeof(struct ddos_slots));
	memory_for(131072);
	memory_for(1000000);
	ttm_all(200, 3600, NULL);
	buf_fini(&err);
	return 0;
}
