/*
 * Benchmark of the threat-intelligence indicator store. Why: the store
 * promises lookups whose cost does not grow with the number of indicators
 * (target: 10 million per second per core), so this builds a realistic
 * million-indicator set (400k IPv4 addresses, 100k CIDR ranges of lengths
 * 8-30, 300k domains, 100k SHA-256, 100k URLs) and measures, on one thread,
 * lookups per second per type, the build time and the memory. It prints
 * figures; it never passes or fails.
 *
 * Two query streams per type, each with half members and half misses:
 * - uniform: every query drawn at random from the whole set, the worst
 *   case for caches (each hit is a cache miss somewhere in the set);
 * - zipf: 2^16 distinct keys repeated with Zipf frequencies (s = 1), as
 *   real traffic repeats its popular names and addresses.
 * Each is run one lookup at a time and in batches of 256 (the batch API);
 * "mixed" interleaves the four types in one typed batch, as the fields of
 * events would be.
 *
 * Rates are lookups per second of this thread's CPU time, the best and the
 * median of several rounds: the machine is shared, and the best round is
 * the one least disturbed by others.
 *
 *   bench_intel [scale in percent (100)] [rounds (7)] [only]
 *
 * only: a comma-separated list of the rows to run (ipv4, domain, sha256,
 * url, all), to compare two builds quickly; default every row.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/str.h"
#include "detect/intel.h"

#define B_QUERIES (1u << 18)
#define B_DISTINCT (1u << 16)
#define B_BATCH 256u
#define B_MAX_ROUNDS 31
#define B_TEXT 112u

static uint64_t b_rng_state = 0x853c49e6748fea9bull;

static uint64_t b_rng(void)
{
	b_rng_state ^= b_rng_state << 13;
	b_rng_state ^= b_rng_state >> 7;
	b_rng_state ^= b_rng_state << 17;
	return b_rng_state;
}

static long b_maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static double b_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* AnonHugePages of the process in KiB, or -1 (what the kernel actually
 * gave, not what was asked). */
static long b_huge_kib(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	long kib = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "AnonHugePages:", 14) == 0) {
			int64_t v;
			char *p = line + 14, *e;

			while (*p == ' ')
				p++;
			e = p;
			while (*e >= '0' && *e <= '9')
				e++;
			if (str_to_i64((struct str){p, (size_t)(e - p)}, &v) == 0)
				kib = (long)v;
		}
	fclose(f);
	return kib;
}

static int b_v4(char *out, size_t cap, uint32_t a, unsigned plen)
{
	if (plen == 32)
		return snprintf(out, cap, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255,
				(a >> 8) & 255, a & 255);
	return snprintf(out, cap, "%u.%u.%u.%u/%u", a >> 24, (a >> 16) & 255,
			(a >> 8) & 255, a & 255, plen);
}

/* Members draw from even seeds, misses from odd ones, so a miss is never a
 * member by accident (except when it falls inside a CIDR: counted). */
static int b_domain(char *out, size_t cap, uint64_t id)
{
	return snprintf(out, cap, "d%llx.%s", (unsigned long long)id,
			(id & 6) == 0 ? "example.com" : (id & 6) == 2 ? "net" :
			(id & 6) == 4 ? "co.uk" : "org");
}

static int b_hash(char *out, size_t cap, uint64_t id)
{
	return snprintf(out, cap, "%016llx%016llx%016llx%016llx",
			(unsigned long long)id, (unsigned long long)(id * 3),
			(unsigned long long)(id * 5), (unsigned long long)(id * 7));
}

static int b_url(char *out, size_t cap, uint64_t id)
{
	return snprintf(out, cap, "http://h%llx.example/path/%llu/index.php?id=%llu",
			(unsigned long long)(id & 0xfff), (unsigned long long)id,
			(unsigned long long)(id >> 20));
}

/* The indicators, to draw members from. */
struct b_data {
	uint32_t *v4, *cidr;
	uint8_t *cidr_len;
	size_t n_v4, n_cidr, n_dom, n_hash, n_url;
};

/* Query i of a type: members and misses alternate; IPv4 members are
 * addresses on the list or inside a listed range, domains are asked as
 * they are or with "www." in front. */
static int b_query(const struct b_data *d, enum intel_type t, size_t i,
		   char *out, size_t cap)
{
	uint64_t id;
	uint32_t a;

	switch (t) {
	case INTEL_IP:
		if (i & 1) {
			a = (uint32_t)b_rng();
		} else if (i & 2) {
			size_t c = b_rng() % d->n_cidr;

			a = d->cidr[c] | ((uint32_t)b_rng() &
					  ~(0xffffffffu << (32 - d->cidr_len[c])));
		} else {
			a = d->v4[b_rng() % d->n_v4];
		}
		return b_v4(out, cap, a, 32);
	case INTEL_DOMAIN:
		id = 2 * (b_rng() % d->n_dom) + (i & 1);
		if (i & 2) {
			memcpy(out, "www.", 4);
			return 4 + b_domain(out + 4, cap - 4, id);
		}
		return b_domain(out, cap, id);
	case INTEL_HASH:
		return b_hash(out, cap, 2 * (b_rng() % d->n_hash) + (i & 1));
	default:
		return b_url(out, cap, 2 * (b_rng() % d->n_url) + (i & 1));
	}
}

/* A stream of queries, packed. */
struct b_stream {
	enum intel_type type;
	char *text;
	struct intel_query *q;
	size_t n;
};

static void b_stream_free(struct b_stream *st)
{
	free(st->text);
	free(st->q);
	st->text = NULL;
	st->q = NULL;
}

static int b_stream_alloc(struct b_stream *st, enum intel_type t, size_t n)
{
	st->type = t;
	st->n = n;
	st->text = malloc(n * B_TEXT);
	st->q = malloc(n * sizeof(*st->q));
	return st->text && st->q ? 0 : M_ENOMEM;
}

/* Uniform: every query drawn afresh from the whole set. */
static int b_uniform(const struct b_data *d, enum intel_type t,
		     struct b_stream *st)
{
	size_t i, off = 0;

	if (b_stream_alloc(st, t, B_QUERIES) < 0)
		return M_ENOMEM;
	for (i = 0; i < B_QUERIES; i++) {
		int n = b_query(d, t, i, st->text + off, B_TEXT);

		st->q[i].p = st->text + off;
		st->q[i].len = (size_t)n;
		off += (size_t)n;
	}
	return 0;
}

/* Zipf (s = 1) over B_DISTINCT keys, half of them members, rank r drawn
 * with probability proportional to 1/r. */
static int b_zipf(const struct b_data *d, enum intel_type t,
		  struct b_stream *st)
{
	struct b_stream keys;
	double *cdf = malloc(B_DISTINCT * sizeof(*cdf)), sum = 0;
	size_t i, off = 0;
	int ret = M_ENOMEM;

	keys.text = NULL;
	keys.q = NULL;
	if (cdf == NULL || b_uniform(d, t, &keys) < 0 ||
	    b_stream_alloc(st, t, B_QUERIES) < 0)
		goto out;
	for (i = 0; i < B_DISTINCT; i++) {
		sum += 1.0 / (double)(i + 1);
		cdf[i] = sum;
	}
	for (i = 0; i < B_QUERIES; i++) {
		double u = (double)(b_rng() >> 11) * 0x1p-53 * sum;
		size_t lo = 0, hi = B_DISTINCT - 1;

		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (cdf[mid] < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		/* keys are in random order, so the rank of a key says
		 * nothing of whether it is a member */
		memcpy(st->text + off, keys.q[lo].p, keys.q[lo].len);
		st->q[i].p = st->text + off;
		st->q[i].len = keys.q[lo].len;
		off += keys.q[lo].len;
	}
	ret = 0;
out:
	free(cdf);
	b_stream_free(&keys);
	return ret;
}

typedef const struct intel_indicator *(*b_lookup_fn)(const struct intel_set *,
						      const char *, size_t,
						      int64_t);

static b_lookup_fn b_single_fn(enum intel_type t)
{
	switch (t) {
	case INTEL_IP:
		return intel_lookup_ip;
	case INTEL_DOMAIN:
		return intel_lookup_domain;
	case INTEL_HASH:
		return intel_lookup_hash;
	default:
		return intel_lookup_url;
	}
}

static int b_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

enum b_mode { B_SINGLE, B_MANY, B_MIXED };

/* One round over the stream(s); returns the hits. */
static size_t b_round(const struct intel_set *s, enum b_mode mode,
		      const struct b_stream *st,
		      const struct intel_typed_query *tq, size_t ntq)
{
	const struct intel_indicator *res[B_BATCH];
	size_t i, j, m, hits = 0;

	if (mode == B_SINGLE) {
		b_lookup_fn fn = b_single_fn(st->type);

		for (i = 0; i < st->n; i++)
			hits += fn(s, st->q[i].p, st->q[i].len, 0) != NULL;
		return hits;
	}
	for (i = 0; i < (mode == B_MIXED ? ntq : st->n); i += B_BATCH) {
		m = (mode == B_MIXED ? ntq : st->n) - i;
		m = m < B_BATCH ? m : B_BATCH;
		if (mode == B_MIXED) {
			if (intel_lookup_batch(s, tq + i, m, res, 0) < 0)
				return 0;
		} else if (intel_lookup_many(s, st->type, st->q + i, m, res, 0) < 0) {
			return 0;
		}
		for (j = 0; j < m; j++)
			hits += res[j] != NULL;
	}
	return hits;
}

static const char *b_only;

/* Whether name is in the comma-separated b_only list (or there is none). */
static int b_wanted(const char *name)
{
	size_t n = strlen(name);
	const char *p = b_only;

	if (p == NULL)
		return 1;
	while ((p = strstr(p, name)) != NULL) {
		if ((p == b_only || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return 1;
		p += n;
	}
	return 0;
}

static void b_measure(const char *name, const char *stream,
		      const struct intel_set *s, enum b_mode mode,
		      const struct b_stream *st,
		      const struct intel_typed_query *tq, size_t ntq,
		      int rounds)
{
	double rate[B_MAX_ROUNDS];
	size_t n = mode == B_MIXED ? ntq : st->n, hits = 0;
	int r;

	if (!b_wanted(name))
		return;
	(void)b_round(s, mode, st, tq, ntq);   /* warm up */
	for (r = 0; r < rounds; r++) {
		double t0 = b_cpu_s(), dt;

		hits = b_round(s, mode, st, tq, ntq);
		dt = b_cpu_s() - t0;
		rate[r] = (double)n / (dt > 0 ? dt : 1e-9);
	}
	qsort(rate, (size_t)rounds, sizeof(rate[0]), b_cmp_double);
	printf("%-7s %-8s %-7s %6.2f M/s best %6.2f M/s median  "
	       "(%5.1f ns, %4.1f%% hits)\n", name, stream,
	       mode == B_SINGLE ? "single" : mode == B_MANY ? "batched" : "mixed",
	       rate[rounds - 1] / 1e6, rate[rounds / 2] / 1e6,
	       1e9 / rate[rounds - 1], 100.0 * (double)hits / (double)n);
}

int main(int argc, char **argv)
{
	static const enum intel_type types[4] = {INTEL_IP, INTEL_DOMAIN,
		INTEL_HASH, INTEL_URL};
	static const char *const names[4] = {"ipv4", "domain", "sha256", "url"};
	double scale = 1.0;
	struct b_data d;
	struct b_stream uni[4], zipf[4];
	struct intel_typed_query *tq = NULL;
	struct intel_builder *b = NULL;
	struct intel_set *s = NULL;
	struct intel_meta meta = {.source = "bench", .confidence = 70};
	char v[B_TEXT];
	int64_t t0, t_build, pct;
	long rss0, rss1, huge;
	int ret = 1, n, rounds = 7, k;
	size_t i, total;

	memset(&d, 0, sizeof(d));
	memset(uni, 0, sizeof(uni));
	memset(zipf, 0, sizeof(zipf));
	if (argc > 1 && str_to_i64((struct str){argv[1], strlen(argv[1])}, &pct) == 0 &&
	    pct > 0 && pct <= 5000)
		scale = (double)pct / 100.0;
	if (argc > 2 && str_to_i64((struct str){argv[2], strlen(argv[2])}, &pct) == 0 &&
	    pct > 0 && pct <= B_MAX_ROUNDS)
		rounds = (int)pct;
	if (argc > 3)
		b_only = argv[3];
	d.n_v4 = (size_t)(400000 * scale);
	d.n_cidr = (size_t)(100000 * scale);
	d.n_dom = (size_t)(300000 * scale);
	d.n_hash = (size_t)(100000 * scale);
	d.n_url = (size_t)(100000 * scale);
	d.v4 = malloc((d.n_v4 + 1) * sizeof(*d.v4));
	d.cidr = malloc((d.n_cidr + 1) * sizeof(*d.cidr));
	d.cidr_len = malloc(d.n_cidr + 1);
	b = intel_builder_new();
	if (!d.v4 || !d.cidr || !d.cidr_len || !b)
		goto out;

	rss0 = b_maxrss_kib();
	t0 = clock_mono_us();
	for (i = 0; i < d.n_v4; i++) {
		d.v4[i] = (uint32_t)b_rng();
		n = b_v4(v, sizeof(v), d.v4[i], 32);
		if (intel_builder_add(b, INTEL_IP, v, (size_t)n, &meta) < 0)
			goto out;
	}
	for (i = 0; i < d.n_cidr; i++) {
		d.cidr_len[i] = (uint8_t)(i % 1000 == 0 ? 8 + b_rng() % 8 :
					  16 + b_rng() % 15);
		d.cidr[i] = (uint32_t)b_rng() & (0xffffffffu << (32 - d.cidr_len[i]));
		n = b_v4(v, sizeof(v), d.cidr[i], d.cidr_len[i]);
		if (intel_builder_add(b, INTEL_IP, v, (size_t)n, &meta) < 0)
			goto out;
	}
	for (i = 0; i < d.n_dom; i++) {
		n = b_domain(v, sizeof(v), 2 * i);
		if (intel_builder_add(b, INTEL_DOMAIN, v, (size_t)n, &meta) < 0)
			goto out;
	}
	for (i = 0; i < d.n_hash; i++) {
		n = b_hash(v, sizeof(v), 2 * i);
		if (intel_builder_add(b, INTEL_HASH, v, (size_t)n, &meta) < 0)
			goto out;
	}
	for (i = 0; i < d.n_url; i++) {
		n = b_url(v, sizeof(v), 2 * i);
		if (intel_builder_add(b, INTEL_URL, v, (size_t)n, &meta) < 0)
			goto out;
	}
	s = intel_builder_finish(b);
	b = NULL;
	if (s == NULL)
		goto out;
	t_build = clock_mono_us() - t0;
	rss1 = b_maxrss_kib();
	huge = b_huge_kib();
	total = d.n_v4 + d.n_cidr + d.n_dom + d.n_hash + d.n_url;
	printf("indicators %zu (distinct %zu), build %.2f s, set %zu MiB "
	       "(%.0f bytes per indicator), peak RSS while building +%ld MiB "
	       "(%ld MiB total)\n",
	       total, intel_set_count(s), (double)t_build / 1e6,
	       intel_set_bytes(s) >> 20,
	       (double)intel_set_bytes(s) / (double)(intel_set_count(s) ? intel_set_count(s) : 1),
	       (rss1 - rss0) / 1024, rss1 / 1024);
	if (huge >= 0)
		printf("huge pages: %ld MiB of the process's memory "
		       "(AnonHugePages)\n", huge >> 10);
	else
		printf("huge pages: unknown (no /proc/self/smaps_rollup)\n");

	for (k = 0; k < 4; k++)
		if (b_uniform(&d, types[k], &uni[k]) < 0 ||
		    b_zipf(&d, types[k], &zipf[k]) < 0)
			goto out;
	/* Mixed: the four uniform streams interleaved, type by type. */
	tq = malloc(4 * B_QUERIES * sizeof(*tq));
	if (tq == NULL)
		goto out;
	for (i = 0; i < 4 * (size_t)B_QUERIES; i++) {
		const struct b_stream *st = &uni[i % 4];

		tq[i].type = st->type;
		tq[i].p = st->q[i / 4].p;
		tq[i].len = st->q[i / 4].len;
	}

	printf("-- uniform random queries over the whole set (worst case "
	       "for caches) --\n");
	for (k = 0; k < 4; k++) {
		b_measure(names[k], "uniform", s, B_SINGLE, &uni[k], NULL, 0, rounds);
		b_measure(names[k], "uniform", s, B_MANY, &uni[k], NULL, 0, rounds);
	}
	b_measure("all", "uniform", s, B_MIXED, NULL, tq, 4 * (size_t)B_QUERIES,
		  rounds);
	printf("-- zipf s=1 over %u distinct keys per type (realistic "
	       "repetition) --\n", B_DISTINCT);
	for (k = 0; k < 4; k++) {
		b_measure(names[k], "zipf", s, B_SINGLE, &zipf[k], NULL, 0, rounds);
		b_measure(names[k], "zipf", s, B_MANY, &zipf[k], NULL, 0, rounds);
	}
	ret = 0;
out:
	if (ret != 0)
		fprintf(stderr, "bench_intel: setup failed\n");
	intel_builder_free(b);
	intel_set_unref(s);
	for (k = 0; k < 4; k++) {
		b_stream_free(&uni[k]);
		b_stream_free(&zipf[k]);
	}
	free(tq);
	free(d.v4);
	free(d.cidr);
	free(d.cidr_len);
	return ret;
}
