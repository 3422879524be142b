/*
 * Benchmark of the threat-intelligence indicator store. Why: the store
 * promises lookups whose cost does not grow with the number of indicators
 * (target: 10 million per second per core), so this builds a realistic
 * million-indicator set (400k IPv4 addresses, 100k CIDR ranges of lengths
 * 8-30, 300k domains, 100k SHA-256, 100k URLs) and measures, on one thread,
 * lookups per second per type with half hits and half misses, the build
 * time and the memory. It prints figures; it never passes or fails.
 *
 *   bench_intel [scale in percent (100)]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/str.h"
#include "detect/intel.h"

#define B_QUERIES (1u << 18)
#define B_STRIDE 112u
#define B_MIN_LOOKUPS 4000000u

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

struct b_queries {
	char *text;
	uint8_t *len;
};

typedef const struct intel_indicator *(*b_lookup_fn)(const struct intel_set *,
						      const char *, size_t,
						      int64_t);

static void b_run(const char *name, const struct intel_set *s, b_lookup_fn fn,
		  const struct b_queries *q)
{
	size_t i, hits = 0, total = 0;
	int64_t t0 = clock_mono_us(), dt;

	while (total < B_MIN_LOOKUPS) {
		for (i = 0; i < B_QUERIES; i++)
			hits += fn(s, q->text + i * B_STRIDE, q->len[i], 0) != NULL;
		total += B_QUERIES;
	}
	dt = clock_mono_us() - t0;
	printf("%-8s %10.0f lookups/s  (%.1f ns each, %.1f%% hits)\n", name,
	       (double)total * 1e6 / (double)(dt ? dt : 1),
	       (double)dt * 1000.0 / (double)total,
	       100.0 * (double)hits / (double)total);
}

/* The same through intel_lookup_many, 256 keys per call. */
static void b_run_many(const char *name, const struct intel_set *s,
		       enum intel_type type, const struct b_queries *q)
{
	struct intel_query batch[256];
	const struct intel_indicator *res[256];
	size_t i, j, hits = 0, total = 0;
	int64_t t0 = clock_mono_us(), dt;

	while (total < B_MIN_LOOKUPS) {
		for (i = 0; i < B_QUERIES; i += 256) {
			for (j = 0; j < 256; j++) {
				batch[j].p = q->text + (i + j) * B_STRIDE;
				batch[j].len = q->len[i + j];
			}
			if (intel_lookup_many(s, type, batch, 256, res, 0) < 0)
				return;
			for (j = 0; j < 256; j++)
				hits += res[j] != NULL;
		}
		total += B_QUERIES;
	}
	dt = clock_mono_us() - t0;
	printf("%-8s %10.0f lookups/s  (%.1f ns each, %.1f%% hits, batched)\n",
	       name, (double)total * 1e6 / (double)(dt ? dt : 1),
	       (double)dt * 1000.0 / (double)total,
	       100.0 * (double)hits / (double)total);
}

int main(int argc, char **argv)
{
	double scale = 1.0;
	size_t n_v4, n_cidr, n_dom, n_hash, n_url, i;
	uint32_t *v4 = NULL, *cidr = NULL;
	uint8_t *cidr_len = NULL;
	struct intel_builder *b = NULL;
	struct intel_set *s = NULL;
	struct b_queries q = {NULL, NULL};
	struct intel_meta meta = {.source = "bench", .confidence = 70};
	char v[B_STRIDE];
	int64_t t0, t_build;
	long rss0, rss1;
	int ret = 1, n;

	if (argc > 1) {
		int64_t pct;

		if (str_to_i64((struct str){argv[1], strlen(argv[1])}, &pct) == 0 && pct > 0 &&
		    pct <= 5000)
			scale = (double)pct / 100.0;
	}
	n_v4 = (size_t)(400000 * scale);
	n_cidr = (size_t)(100000 * scale);
	n_dom = (size_t)(300000 * scale);
	n_hash = (size_t)(100000 * scale);
	n_url = (size_t)(100000 * scale);
	v4 = malloc((n_v4 + 1) * sizeof(*v4));
	cidr = malloc((n_cidr + 1) * sizeof(*cidr));
	cidr_len = malloc(n_cidr + 1);
	q.text = malloc((size_t)B_QUERIES * B_STRIDE);
	q.len = malloc(B_QUERIES);
	b = intel_builder_new();
	if (!v4 || !cidr || !cidr_len || !q.text || !q.len || !b)
		goto out;

	rss0 = b_maxrss_kib();
	t0 = clock_mono_us();
	for (i = 0; i < n_v4; i++) {
		v4[i] = (uint32_t)b_rng();
		n = b_v4(v, sizeof(v), v4[i], 32);
		if (intel_builder_add(b, INTEL_IP, v, (size_t)n, &meta) < 0)
			goto out;
	}
	for (i = 0; i < n_cidr; i++) {
		cidr_len[i] = (uint8_t)(i % 1000 == 0 ? 8 + b_rng() % 8 : 16 + b_rng() % 15);
		cidr[i] = (uint32_t)b_rng() & (0xffffffffu << (32 - cidr_len[i]));
		n = b_v4(v, sizeof(v), cidr[i], cidr_len[i]);
		if (intel_builder_add(b, INTEL_IP, v, (size_t)n, &meta) < 0)
			goto out;
	}
	for (i = 0; i < n_dom; i++) {
		n = b_domain(v, sizeof(v), 2 * i);
		if (intel_builder_add(b, INTEL_DOMAIN, v, (size_t)n, &meta) < 0)
			goto out;
	}
	for (i = 0; i < n_hash; i++) {
		n = b_hash(v, sizeof(v), 2 * i);
		if (intel_builder_add(b, INTEL_HASH, v, (size_t)n, &meta) < 0)
			goto out;
	}
	for (i = 0; i < n_url; i++) {
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
	printf("indicators %zu (distinct %zu), build %.2f s, set %zu MiB, "
	       "peak RSS while building +%ld MiB (%ld MiB total)\n",
	       n_v4 + n_cidr + n_dom + n_hash + n_url, intel_set_count(s),
	       (double)t_build / 1e6, intel_set_bytes(s) >> 20,
	       (rss1 - rss0) / 1024, rss1 / 1024);

	/* IP: half exact members or addresses inside a CIDR, half random. */
	for (i = 0; i < B_QUERIES; i++) {
		uint32_t a;

		if (i & 1)
			a = (uint32_t)b_rng();
		else if (i & 2) {
			size_t c = b_rng() % n_cidr;

			a = cidr[c] | ((uint32_t)b_rng() &
				       ~(0xffffffffu << (32 - cidr_len[c])));
		}
		else
			a = v4[b_rng() % n_v4];
		q.len[i] = (uint8_t)b_v4(q.text + i * B_STRIDE, B_STRIDE, a, 32);
	}
	b_run("ipv4", s, intel_lookup_ip, &q);

	for (i = 0; i < B_QUERIES; i++) {
		char *o = q.text + i * B_STRIDE;
		uint64_t id = 2 * (b_rng() % n_dom) + (i & 1);

		if (i & 2) {
			memcpy(o, "www.", 4);
			n = 4 + b_domain(o + 4, B_STRIDE - 4, id);
		} else {
			n = b_domain(o, B_STRIDE, id);
		}
		q.len[i] = (uint8_t)n;
	}
	b_run("domain", s, intel_lookup_domain, &q);

	for (i = 0; i < B_QUERIES; i++)
		q.len[i] = (uint8_t)b_hash(q.text + i * B_STRIDE, B_STRIDE,
					   2 * (b_rng() % n_hash) + (i & 1));
	b_run("sha256", s, intel_lookup_hash, &q);
	b_run_many("sha256", s, INTEL_HASH, &q);

	for (i = 0; i < B_QUERIES; i++)
		q.len[i] = (uint8_t)b_url(q.text + i * B_STRIDE, B_STRIDE,
					  2 * (b_rng() % n_url) + (i & 1));
	b_run("url", s, intel_lookup_url, &q);
	b_run_many("url", s, INTEL_URL, &q);
	ret = 0;
out:
	if (ret != 0)
		fprintf(stderr, "bench_intel: setup failed\n");
	intel_builder_free(b);
	intel_set_unref(s);
	free(v4);
	free(cidr);
	free(cidr_len);
	free(q.text);
	free(q.len);
	return ret;
}
