/*
 * Benchmark of the detection stage. Why: the issue sets the bar at 200,000
 * events per second per core with the whole SigmaHQ corpus loaded, on a
 * realistic mix of sources. This loads every rule of the corpus (with the
 * built-in mappings), parses a mix of events once with the product's
 * parsers (Windows Sysmon process creation, other Sysmon events, Linux
 * syslog, proxy, DNS and firewall events; most of them benign, plus the
 * SigmaHQ regression events), then measures matching alone on one thread
 * and on every core, the events parsed again run by run just before they
 * are matched as serve's workers do (work()), and prints the load time,
 * the rates, the match count and the peak memory, then the rate of each
 * source alone (where the time of the mix goes). It never passes or fails.
 *
 *   bench_detect [conformance dir (../shared)] [seconds per run (3)]
 *
 * BENCH_HS_CACHE=DIR keeps the compiled databases in DIR between runs (a
 * profile of matching then starts in seconds); BENCH_KIND=0..5 makes the
 * mix of one source only (the order of the by-source line); BENCH_EVENTS=N
 * matches N events on one thread and stops, for instruction counts:
 * valgrind --tool=callgrind --toggle-collect=match_one;
 * BENCH_COLD=1 and BENCH_RUN=N: see work();
 * with it, BENCH_MATCHES=FILE writes each event's matching rules to FILE
 * (two builds' files must be alike).
 * BENCH_DBSTATS=1 prints the size of each logsource bucket's Hyperscan
 * databases and of every field database over 100 kB (what a scan may
 * touch; the processor's L2 is 512 kB here).
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/event.h"
#include "core/pipeline.h"
#include "detect/sigma.h"
#include "detect/sigma_corr.h"
#include "detect/sigma_int.h"

#define B_EVENTS 20000u

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static const char *const images[] = {
	"C:\\\\Windows\\\\System32\\\\svchost.exe", "C:\\\\Windows\\\\explorer.exe",
	"C:\\\\Program Files\\\\Google\\\\Chrome\\\\Application\\\\chrome.exe",
	"C:\\\\Windows\\\\System32\\\\conhost.exe", "C:\\\\Windows\\\\System32\\\\taskhostw.exe",
	"C:\\\\Program Files\\\\Microsoft Office\\\\root\\\\Office16\\\\OUTLOOK.EXE",
	"C:\\\\Windows\\\\System32\\\\cmd.exe", "C:\\\\Windows\\\\System32\\\\WindowsPowerShell\\\\v1.0\\\\powershell.exe",
	"C:\\\\Windows\\\\System32\\\\backgroundTaskHost.exe", "C:\\\\Windows\\\\System32\\\\RuntimeBroker.exe",
};

static const char *const cmdlines[] = {
	"svchost.exe -k netsvcs -p -s Schedule", "\\\"C:\\\\Windows\\\\explorer.exe\\\" /factory,{75dff2b7}",
	"chrome.exe --type=renderer --field-trial-handle=1234 --lang=en-US",
	"\\\\??\\\\C:\\\\Windows\\\\system32\\\\conhost.exe 0xffffffff -ForceV1",
	"cmd.exe /c echo hello > C:\\\\Users\\\\bob\\\\out.txt",
	"powershell.exe -NoProfile -File C:\\\\scripts\\\\inventory.ps1",
	"taskhostw.exe Install $(Arg0)", "OUTLOOK.EXE /recycle",
};

/* Version resources of the images (Description, Product, Company) */
static const char *const vendors[][3] = {
	{ "Host Process for Windows Services", "Microsoft\u00ae Windows\u00ae Operating System",
	  "Microsoft Corporation" },
	{ "Google Chrome", "Google Chrome", "Google LLC" },
	{ "Microsoft Outlook", "Microsoft Office", "Microsoft Corporation" },
	{ "Windows PowerShell", "Microsoft\u00ae Windows\u00ae Operating System",
	  "Microsoft Corporation" },
	{ "-", "-", "-" },
};

/* A command line: one of cmdlines, half of them with something unique (a
 * temp file, a process id), as real ones carry: the matcher's cache of
 * scanned values must not see only repeats. */
static void gen_cmd(char *cmd, size_t cap)
{
	const char *cmd0 = cmdlines[rng() % 8];

	if (rng() % 2)
		snprintf(cmd, cap, "%s %08llx.tmp -pid %u", cmd0,
			 (unsigned long long)(rng() & 0xffffffffull), (unsigned)(rng() % 65536));
	else
		snprintf(cmd, cap, "%s", cmd0);
}

static int gen(char *out, size_t cap, unsigned kind, unsigned i)
{
	const char *img = images[rng() % 10];
	char cmd[256];

	gen_cmd(cmd, sizeof(cmd));
	switch (kind) {
	case 0: { /* Sysmon 1: process creation; the parent as varied as the child */
		const char *pimg = images[rng() % 10];
		const char *const *v = vendors[rng() % 5];
		char pcmd[256];

		gen_cmd(pcmd, sizeof(pcmd));
		return snprintf(out, cap,
			"{\"Event\":{\"System\":{\"Provider\":{\"#attributes\":{\"Name\":\"Microsoft-Windows-Sysmon\"}},"
			"\"EventID\":1,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"Computer\":\"ws%u.corp.local\"},"
			"\"EventData\":{\"RuleName\":\"-\",\"UtcTime\":\"2026-11-25 10:00:00.000\",\"ProcessId\":%u,"
			"\"Image\":\"%s\",\"FileVersion\":\"10.0.19041.1\",\"Description\":\"%s\","
			"\"Product\":\"%s\",\"Company\":\"%s\",\"OriginalFileName\":\"x.exe\","
			"\"CommandLine\":\"%s\",\"CurrentDirectory\":\"C:\\\\Windows\\\\system32\\\\\","
			"\"User\":\"CORP\\\\user%u\",\"IntegrityLevel\":\"Medium\","
			"\"Hashes\":\"SHA256=0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\","
			"\"ParentImage\":\"%s\",\"ParentCommandLine\":\"%s\"}}}",
			i % 500, 1000 + i, img, v[0], v[1], v[2], cmd, i % 200, pimg, pcmd);
	}
	case 1: /* Sysmon 3 / 11 / 13 */
		if (i % 3 == 0)
			return snprintf(out, cap,
				"{\"Event\":{\"System\":{\"Provider\":{\"#attributes\":{\"Name\":\"Microsoft-Windows-Sysmon\"}},"
				"\"EventID\":3,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"Computer\":\"ws%u\"},"
				"\"EventData\":{\"Image\":\"%s\",\"User\":\"CORP\\\\u\",\"Protocol\":\"tcp\",\"Initiated\":\"true\","
				"\"SourceIp\":\"10.1.%u.%u\",\"SourcePort\":%u,\"DestinationIp\":\"93.184.216.%u\","
				"\"DestinationHostname\":\"example.com\",\"DestinationPort\":443}}}",
				i % 500, img, i % 250, i % 250, 40000 + i % 20000, i % 250);
		if (i % 3 == 1)
			return snprintf(out, cap,
				"{\"Event\":{\"System\":{\"Provider\":{\"#attributes\":{\"Name\":\"Microsoft-Windows-Sysmon\"}},"
				"\"EventID\":11,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"Computer\":\"ws%u\"},"
				"\"EventData\":{\"Image\":\"%s\",\"TargetFilename\":\"C:\\\\Users\\\\u%u\\\\AppData\\\\Local\\\\Temp\\\\tmp%u.tmp\"}}}",
				i % 500, img, i % 200, i);
		return snprintf(out, cap,
			"{\"Event\":{\"System\":{\"Provider\":{\"#attributes\":{\"Name\":\"Microsoft-Windows-Sysmon\"}},"
			"\"EventID\":13,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"Computer\":\"ws%u\"},"
			"\"EventData\":{\"EventType\":\"SetValue\",\"Image\":\"%s\","
			"\"TargetObject\":\"HKU\\\\S-1-5-21-1\\\\Software\\\\Vendor\\\\App\\\\Setting%u\",\"Details\":\"DWORD (0x00000001)\"}}}",
			i % 500, img, i % 50);
	case 2: /* Linux syslog */
		if (i % 4 == 0)
			return snprintf(out, cap,
				"<38>Nov 25 10:00:00 srv%u sshd[%u]: Failed password for invalid user admin from 203.0.113.%u port %u ssh2",
				i % 20, 1000 + i % 9000, i % 250, 30000 + i % 30000);
		if (i % 4 == 1)
			return snprintf(out, cap,
				"<86>Nov 25 10:00:00 srv%u sudo: bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/apt update",
				i % 20);
		if (i % 4 == 2)
			return snprintf(out, cap,
				"<30>Nov 25 10:00:00 srv%u systemd[1]: Started Session %u of user bob.", i % 20, i);
		return snprintf(out, cap,
			"<78>Nov 25 10:00:00 srv%u CRON[%u]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
			i % 20, i);
	case 3: /* proxy */
		return snprintf(out, cap,
			"{\"event\":{\"module\":\"squid\"},\"source\":{\"ip\":\"10.2.%u.%u\"},"
			"\"url\":{\"original\":\"http://www.example%u.com/path/%u/index.html?q=%u\",\"domain\":\"www.example%u.com\"},"
			"\"http\":{\"request\":{\"method\":\"GET\"},\"response\":{\"status_code\":200}},"
			"\"user_agent\":{\"original\":\"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0\"}}",
			i % 250, i % 250, i % 1000, i, i, i % 1000);
	case 4: /* DNS (Suricata EVE) */
		return snprintf(out, cap,
			"{\"timestamp\":\"2026-11-25T10:00:00.000000+0000\",\"event_type\":\"dns\",\"src_ip\":\"10.3.%u.%u\","
			"\"src_port\":%u,\"dest_ip\":\"10.0.0.53\",\"dest_port\":53,\"proto\":\"UDP\","
			"\"dns\":{\"type\":\"query\",\"id\":%u,\"rrname\":\"host%u.example%u.org\",\"rrtype\":\"A\"}}",
			i % 250, i % 250, 40000 + i % 20000, i % 65536, i, i % 300);
	default: /* firewall */
		return snprintf(out, cap,
			"{\"event\":{\"module\":\"firewall\",\"action\":\"%s\"},\"source\":{\"ip\":\"198.51.100.%u\",\"port\":%u},"
			"\"destination\":{\"ip\":\"10.4.%u.%u\",\"port\":%u},\"network\":{\"transport\":\"tcp\"}}",
			i % 7 ? "allow" : "deny", i % 250, 1024 + i % 60000, i % 250, i % 250,
			(unsigned[]){ 443, 80, 22, 3389, 25, 53 }[i % 6]);
	}
}

/* The records as received (text, format, time): the batch runs parse them
 * again batch by batch, as serve's workers do. */
struct rec {
	const char *p;
	uint32_t n;
	uint8_t json;
	int64_t ts_us;
};

static struct event *events;
static struct rec *recs;
static size_t n_events;
static struct sigma_ruleset *rs;
static struct sigma_corr_state *corr;
static double run_seconds = 3;
static int cold;                /* match the pre-parsed events[] in turn */
static uint64_t fixed_events;   /* BENCH_EVENTS: a count instead of a time */
static FILE *match_log;         /* BENCH_MATCHES: each event's matching rules */

/* One record parsed as serve's pipeline does (parse_batch): the original
 * kept (keep_original, serve's default). */
static void parse_rec(const struct rec *r, struct event *ev, struct arena *a)
{
	event_clear(ev);
	pipeline_parse_record(r->json ? RAW_JSON : RAW_SYSLOG, r->p, r->n, ev, a);
	event_set(ev, F_EVENT_ORIGINAL, str_make(r->p, r->n));
	if (r->ts_us)
		ev->ts_us = r->ts_us;
}

struct worker {
	pthread_t t;
	uint64_t done, matches, vc_lookups, vc_hits;
	double secs, cpu;     /* wall and this thread's CPU seconds */
};

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Matches events[i] (one event): the rules it meets, into the match log
 * and the correlation state. Returns the count. */
__attribute__((noinline)) static size_t match_one(struct sigma_ctx *c, const struct event *ev, size_t i)
{
	uint32_t out[64];
	size_t n = 0;

	sigma_match(rs, c, ev, out, 64, &n);
	if (match_log) {
		fprintf(match_log, "%zu:", i);
		for (size_t m = 0; m < n; m++)
			fprintf(match_log, " %u", out[m]);
		fputc('\n', match_log);
	}
	if (n)
		sigma_corr_observe(corr, ev, out, n, NULL, NULL);
	return n;
}

/* As serve's workers do (pipeline.c process_batch): PIPELINE_RUN records
 * parsed (BENCH_RUN=N: N), then matched while they are still in the
 * core's cache; only the matching counts (this thread's CPU time around
 * it). BENCH_COLD=1: the pre-parsed events matched in turn instead, each
 * one out of every cache (20,000 events are ~60 MB), as no stage of serve
 * sees them. */
static size_t run_len = PIPELINE_RUN;

static void *work(void *arg)
{
	struct worker *w = arg;
	struct sigma_ctx *c = sigma_ctx_get(rs);
	uint64_t l0 = 0, h0 = 0;
	int64_t t0 = clock_mono_us(), end = t0 + (int64_t)(run_seconds * 1e6);
	size_t i = (size_t)(rng() % n_events);
	struct event *bev = cold ? NULL : calloc(run_len, sizeof(*bev));
	struct arena ba;

	arena_init(&ba, 1 << 20, 0);
	sigma_ctx_cache_stats(c, &l0, &h0);
	while (fixed_events ? w->done < fixed_events : clock_mono_us() < end) {
		size_t k, nb = fixed_events && fixed_events - w->done < run_len ?
				       (size_t)(fixed_events - w->done) : run_len;
		size_t first = i;
		double c0;

		if (!cold) {
			arena_reset(&ba);
			for (k = 0; k < nb; k++) {
				parse_rec(&recs[i], &bev[k], &ba);
				if (++i == n_events)
					i = 0;
			}
			i = first;
		}
		c0 = thread_cpu();
		for (k = 0; k < nb; k++) {
			w->matches += match_one(c, cold ? &events[i] : &bev[k], i);
			if (++i == n_events)
				i = 0;
		}
		w->cpu += thread_cpu() - c0;
		w->done += nb;
	}
	w->secs = (double)(clock_mono_us() - t0) / 1e6;
	sigma_ctx_cache_stats(c, &w->vc_lookups, &w->vc_hits);
	w->vc_lookups -= l0;
	w->vc_hits -= h0;
	sigma_ctx_put(rs, c);
	arena_fini(&ba);
	free(bev);
	return NULL;
}

static double run(unsigned threads, int quiet)
{
	struct worker *w = calloc(threads, sizeof(*w));
	uint64_t done = 0, matches = 0, lookups = 0, hits = 0;
	double secs = 0, cpu = 0, sum = 0;

	for (unsigned i = 0; i < threads; i++)
		pthread_create(&w[i].t, NULL, work, &w[i]);
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(w[i].t, NULL);
		done += w[i].done;
		matches += w[i].matches;
		lookups += w[i].vc_lookups;
		cpu += w[i].cpu;
		hits += w[i].vc_hits;
		if (w[i].secs > secs)
			secs = w[i].secs;
	}
	for (unsigned i = 0; i < threads; i++)
		sum += w[i].cpu > 0 ? (double)w[i].done / w[i].cpu : 0.0;
	free(w);
	if (quiet)
		return cpu > 0 ? (double)done / cpu : 0.0;
	if (cold) {
		printf("detect %u thread%s, cold events: %.0f events/s (%.0f per core), %.4f matches per event\n",
		       threads, threads > 1 ? "s" : "", done / secs, done / secs / threads,
		       (double)matches / (double)done);
		printf("   %.0f events per CPU-second (what one core does when the machine is shared)\n",
		       cpu > 0 ? (double)done / cpu : 0.0);
	} else if (threads == 1) {
		printf("detect 1 thread: %.0f events per CPU-second, %.4f matches per event\n",
		       cpu > 0 ? (double)done / cpu : 0.0, (double)matches / (double)done);
	} else {
		printf("detect %u threads: %.0f events per CPU-second per core, %.0f events/s on the %u\n",
		       threads, cpu > 0 ? (double)done / cpu : 0.0, sum, threads);
	}
	printf("   scanned-value cache: %.1f%% of %.2f lookups per event answered without a scan\n",
	       lookups ? 100.0 * (double)hits / (double)lookups : 0.0, (double)lookups / (double)done);
	return cpu > 0 ? (double)done / cpu : 0.0;
}

/* The regression events (concatenated JSON objects) as extra malicious
 * samples. */
static size_t add_regression(const char *dir, struct arena *a, size_t at, size_t cap);

static size_t add_regression(const char *dir, struct arena *a, size_t at, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return at;
	while ((e = readdir(d)) && at < cap) {
		char path[4096];
		size_t len = strlen(e->d_name);

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0) {
			FILE *f = fopen(path, "rb");
			char *text = malloc(1 << 22);
			size_t n = f ? fread(text, 1, (1 << 22) - 1, f) : 0;
			int depth = 0, in_str = 0;
			size_t start = 0;

			if (f)
				fclose(f);
			for (size_t i = 0; text && i < n && at < cap; i++) {
				char ch = text[i];
				if (in_str) {
					if (ch == '\\')
						i++;
					else if (ch == '"')
						in_str = 0;
					continue;
				}
				if (ch == '"')
					in_str = 1;
				else if (ch == '{' && depth++ == 0)
					start = i;
				else if (ch == '}' && --depth == 0) {
					char *copy = arena_strndup(a, text + start, i + 1 - start);

					recs[at] = (struct rec){ copy, (uint32_t)(i + 1 - start), 1, 0 };
					parse_rec(&recs[at], &events[at], a);
					at++;
				}
			}
			free(text);
		} else if (!strchr(e->d_name, '.')) {
			at = add_regression(path, a, at, cap);
		}
	}
	closedir(d);
	return at;
}

static const char *const kind_names[] = { "process creation", "other Sysmon", "Linux syslog",
					   "proxy", "DNS", "firewall" };

/* Fills events[n_events..B_EVENTS) with generated events: the mix, or one
 * kind only (only >= 0). Returns how many were made. */
static size_t generate(struct arena *a, int only)
{
	static const unsigned weights[] = { 40, 15, 15, 10, 10, 10 };
	char rec[4096], *copy;
	size_t start = n_events;

	for (unsigned i = 0; n_events < B_EVENTS; i++) {
		unsigned r = (unsigned)(rng() % 100), kind = 0, acc = 0;
		int len;

		for (kind = 0; kind < 6; kind++) {
			acc += weights[kind];
			if (r < acc)
				break;
		}
		if (only >= 0)
			kind = (unsigned)only;
		len = gen(rec, sizeof(rec), kind, i);
		if (len <= 0 || (size_t)len >= sizeof(rec))
			continue;
		copy = arena_strndup(a, rec, (size_t)len);
		recs[n_events] = (struct rec){ copy, (uint32_t)len, rec[0] == '{',
					       1764064800000000ll + (int64_t)i * 1000 };
		parse_rec(&recs[n_events], &events[n_events], a);
		n_events++;
	}
	return n_events - start;
}

/* Bytes of a bucket's databases, and its field databases over 100 kB. */
static void db_stats(const struct sigma_ruleset *set)
{
	for (uint32_t i = 0; i < set->n_buckets; i++) {
		const struct sigma_bucket *bk = &set->buckets[i];
		size_t total = 0;

		for (uint32_t k = 0; k < bk->n_fdbs; k++) {
			size_t s1 = 0, s2 = 0;

			if (bk->fdbs[k].db)
				hs_database_size(bk->fdbs[k].db, &s1);
			if (bk->fdbs[k].db2)
				hs_database_size(bk->fdbs[k].db2, &s2);
			total += s1 + s2;
			if (s1 + s2 > 100000 || bk->keyword_fdb == k + 1)
				printf("   %s/%s/%s %s: %u patterns, %zu + %zu bytes (strings + regexes)\n",
				       bk->product, bk->category, bk->service,
				       set->fields[bk->fdbs[k].field].name, bk->fdbs[k].n, s1, s2);
		}
		printf("bucket %s/%s/%s: %u rules, %u field databases, %zu bytes\n", bk->product,
		       bk->category, bk->service, bk->n_rules, bk->n_fdbs, total);
	}
}

int main(int argc, char **argv)
{
	const char *shared = argc > 1 ? argv[1] : getenv("MAMORI_CONFORMANCE_DIR");
	static const char *const dirs[] = { "rules", "rules-emerging-threats",
					    "rules-threat-hunting", "rules-placeholder",
					    "rules-compliance" };
	struct sigma_builder *b;
	struct sigma_ruleset *rs2;
	char cache_dir[256] = "/tmp/mamori-bench-hs-XXXXXX";
	struct buf err;
	struct arena a;
	struct rusage ru;
	size_t loaded, unsupported, errors;
	char path[4096];
	int64_t t0;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int only = -1;

	if (!shared)
		shared = "../shared";
	if (argc > 2)
		run_seconds = atof(argv[2]);
	b = sigma_builder_new();
	buf_init(&err, 1 << 16);
	if (getenv("BENCH_HS_CACHE"))
		snprintf(cache_dir, sizeof(cache_dir), "%s", getenv("BENCH_HS_CACHE"));
	else if (!mkdtemp(cache_dir))
		cache_dir[0] = '\0';
	t0 = clock_mono_us();
	sigma_builder_add_builtin(b, 1, NULL, NULL, &err);
	sigma_builder_set_hs_cache(b, cache_dir);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/sigma/%s", shared, dirs[i]);
		if (sigma_builder_add_path(b, path, NULL, NULL) < 0) {
			fprintf(stderr, "bench_detect: %s: cannot read the corpus (set MAMORI_CONFORMANCE_DIR)\n",
				path);
			return 1;
		}
	}
	sigma_builder_counts(b, &loaded, &unsupported, &errors);
	rs = sigma_builder_finish(b, 0, &err);
	if (getenv("BENCH_DBSTATS") && rs)
		db_stats(rs);
	if (!rs) {
		fprintf(stderr, "bench_detect: %s\n", err.p);
		return 1;
	}
	corr = sigma_corr_state_new(rs);
	printf("rules: %zu loaded, %zu unsupported, %zu errors; load and compile %.2f s\n",
	       loaded, unsupported, errors, (double)(clock_mono_us() - t0) / 1e6);
	if (cache_dir[0]) {
		/* What a restart or a reload of the same rules costs. */
		t0 = clock_mono_us();
		b = sigma_builder_new();
		sigma_builder_add_builtin(b, 1, NULL, NULL, &err);
		for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
			snprintf(path, sizeof(path), "%s/sigma/%s", shared, dirs[i]);
			sigma_builder_add_path(b, path, NULL, NULL);
		}
		sigma_builder_set_hs_cache(b, cache_dir);
		rs2 = sigma_builder_finish(b, 0, &err);
		if (rs2) {
			uint32_t hits, misses;

			sigma_ruleset_hs_cache_stats(rs2, &hits, &misses);
			printf("       again with the compiled databases cached on disk: %.2f s "
			       "(%u of %u databases from the cache)\n",
			       (double)(clock_mono_us() - t0) / 1e6, hits, hits + misses);
			sigma_ruleset_unref(rs2);
		}
		if (!getenv("BENCH_HS_CACHE")) {
			DIR *d = opendir(cache_dir);
			struct dirent *e;

			while (d && (e = readdir(d)) != NULL)
				if (e->d_name[0] != '.' &&
				    snprintf(path, sizeof(path), "%s/%s", cache_dir, e->d_name) <
					    (int)sizeof(path))
					unlink(path);
			if (d)
				closedir(d);
			rmdir(cache_dir);
		}
	}

	events = calloc(B_EVENTS, sizeof(*events));
	recs = calloc(B_EVENTS, sizeof(*recs));
	cold = getenv("BENCH_COLD") && atoi(getenv("BENCH_COLD")) > 0;
	if (getenv("BENCH_RUN") && atoi(getenv("BENCH_RUN")) > 0)
		run_len = (size_t)atoi(getenv("BENCH_RUN"));
	arena_init(&a, 1 << 20, 0);
	snprintf(path, sizeof(path), "%s/sigma/regression", shared);
	if (getenv("BENCH_KIND"))
		only = atoi(getenv("BENCH_KIND")) % 6;
	n_events = only < 0 ? add_regression(path, &a, 0, 400) : 0;
	printf("mix: %zu regression events (malicious) + ", n_events);
	if (only < 0)
		printf("%zu generated (40%% Sysmon process creation, 15%% other Sysmon, 15%% Linux syslog,\n"
		       "     10%% proxy, 10%% DNS, 10%% firewall)\n", generate(&a, -1));
	else
		printf("%zu generated, %s only (BENCH_KIND)\n", generate(&a, only), kind_names[only]);
	/* BENCH_EVENTS, for instruction counts (callgrind
	 * --toggle-collect=work): that many events on one thread, nothing
	 * else. */
	if (getenv("BENCH_EVENTS"))
		fixed_events = strtoull(getenv("BENCH_EVENTS"), NULL, 10);
	if (fixed_events && getenv("BENCH_MATCHES") &&
	    !(match_log = fopen(getenv("BENCH_MATCHES"), "w")))
		perror(getenv("BENCH_MATCHES"));
	{
		/* One pass first, and the merged databases it asked for built
		 * (matching goes on without them meanwhile): not the rate. */
		struct sigma_ctx *c = sigma_ctx_get(rs);
		int64_t t1 = clock_mono_us();
		uint32_t merged, failed;

		for (size_t i = 0; c && i < n_events; i++) {
			uint32_t out[64];
			size_t n = 0;

			sigma_match(rs, c, &events[i], out, 64, &n);
		}
		sigma_ctx_put(rs, c);
		sigma_ruleset_merge_wait(rs);
		sigma_ruleset_merge_stats(rs, &merged, &failed);
		printf("first pass over the %zu events and the %u merged databases it asked for: "
		       "%.2f s (%u failed)\n", n_events, merged,
		       (double)(clock_mono_us() - t1) / 1e6, failed);
	}
	run(1, 0);
	if (match_log)
		fclose(match_log);
	if (cores > 1 && !fixed_events)
		run((unsigned)cores, 0);
	/* Each source alone: where the time of the mix goes. */
	if (only < 0 && !fixed_events) {
		printf("by source, one thread, events per CPU-second:");
		if (run_seconds > 1)
			run_seconds = 1;
		for (int k = 0; k < 6; k++) {
			n_events = 0;
			generate(&a, k);
			printf("%s %s %.0f", k ? "," : "", kind_names[k], run(1, 1));
		}
		printf("\n");
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("peak memory: %.0f MiB\n", ru.ru_maxrss / 1024.0);
	sigma_corr_state_free(corr);
	sigma_ruleset_unref(rs);
	arena_fini(&a);
	free(events);
	free(recs);
	buf_fini(&err);
	return 0;
}
