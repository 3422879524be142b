/*
 * Benchmark of the SQLite event store: how fast one writer thread stores
 * realistic syslog events (batches of 10,000 through write_batch), how long
 * the background full-text indexer needs to catch up, search latencies for
 * a few query shapes, the size on disk and the peak RSS. Why: the store's
 * design (lean write path, index built off the ingest path) is justified by
 * these figures, so they must be reproducible. It prints figures; it never
 * passes or fails.
 *
 *   bench_store [events (2000000)] [dir (a new /tmp dir, removed)] [-o]
 *   -o adds event.original (the raw line), as keep_original does.
 *   -m indexes only at flush (no background indexing while writing).
 *   -w measures writing and indexing only (no searches).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/event.h"
#include "core/str.h"
#include "store/store.h"

#define B_BATCH 10000

static const char *const b_words[] = {
	"failed", "password", "for", "invalid", "user", "from", "port", "ssh2",
	"accepted", "publickey", "session", "opened", "closed", "connection",
	"reset", "by", "peer", "disconnect", "received", "timeout", "kernel",
	"eth0", "link", "up", "down", "job", "started", "finished", "error",
	"warning", "denied", "allowed", "root", "admin", "backup", "database",
	"query", "slow", "request", "GET", "POST", "upstream", "client", "server",
	"certificate", "expired", "renewed", "dhcp", "lease", "address",
	"assigned", "queue", "delivered", "deferred", "bounced", "relay",
	"status", "sent", "policy", "rejected", "blocked", "quarantine",
};
static const char *const b_apps[] = { "sshd", "cron", "nginx", "postfix/smtpd",
				      "kernel", "dhcpd", "sudo", "systemd" };

static uint64_t b_rng = 0x9e3779b97f4a7c15ull;

static uint64_t b_rand(void)
{
	b_rng ^= b_rng << 13;
	b_rng ^= b_rng >> 7;
	b_rng ^= b_rng << 17;
	return b_rng;
}

static int64_t b_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static char *b_fmt(struct arena *a, size_t cap, const char *fmt, unsigned x,
		   unsigned y, unsigned z)
{
	char *p = arena_alloc(a, cap);

	if (p)
		snprintf(p, cap, fmt, x, y, z);
	return p;
}

/* One syslog-like event: host, app, pid, a ~80-byte message of varied
 * words, numbers and addresses, and the sender's address. */
static void b_make(struct event *e, struct arena *a, uint64_t id, int64_t ts,
		   int original)
{
	char *msg = arena_alloc(a, 160);
	size_t n = 0;

	event_clear(e);
	e->id = id;
	e->ts_us = ts;
	e->recv_us = ts + 1500;
	while (n < 80) {
		unsigned k = (unsigned)(b_rand() % 10);
		int w;
		if (k == 0)
			w = snprintf(msg + n, 160 - n, "%s%u", n ? " " : "",
				     (unsigned)(b_rand() % 65536));
		else if (k == 1)
			w = snprintf(msg + n, 160 - n, "%s10.%u.%u.%u", n ? " " : "",
				     (unsigned)(b_rand() % 256), (unsigned)(b_rand() % 256),
				     (unsigned)(b_rand() % 256));
		else
			w = snprintf(msg + n, 160 - n, "%s%s", n ? " " : "",
				     b_words[b_rand() % (sizeof(b_words) / sizeof(b_words[0]))]);
		n += (size_t)w;
	}
	unsigned h = (unsigned)(b_rand() % 200);
	const char *app = b_apps[b_rand() % (sizeof(b_apps) / sizeof(b_apps[0]))];
	char *host = b_fmt(a, 24, "host%03u.example.net", h, 0, 0);
	char *ip = b_fmt(a, 24, "172.16.%u.%u", h / 250, h % 250 + 1, 0);
	char *pid = b_fmt(a, 12, "%u", (unsigned)(b_rand() % 40000), 0, 0);
	event_set(e, F_MESSAGE, str_make(msg, n));
	event_set(e, F_HOST_NAME, str_cstr(host));
	event_set(e, F_SOURCE_IP, str_cstr(ip));
	event_set(e, F_LOG_SYSLOG_APPNAME, str_cstr(app));
	event_set(e, F_LOG_SYSLOG_PROCID, str_cstr(pid));
	event_set(e, F_LOG_SYSLOG_FACILITY_CODE, STR_LIT("4"));
	event_set(e, F_LOG_SYSLOG_SEVERITY_CODE, STR_LIT("6"));
	event_set(e, F_EVENT_DATASET, STR_LIT("syslog"));
	event_set(e, F_EVENT_KIND, STR_LIT("event"));
	event_set(e, F_OBSERVER_HOSTNAME, STR_LIT("mamori"));
	if (original) {
		char *raw = arena_alloc(a, 320);
		int w = snprintf(raw, 320, "<38>Nov 25 18:33:33 %s %s[%s]: %.*s", host,
				 app, pid, (int)n, msg);
		event_set(e, F_EVENT_ORIGINAL, str_make(raw, (size_t)w));
	}
}

static int b_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void b_query(const struct store_ops *ops, struct store *st, const char *name,
		    const struct store_query *q, int runs)
{
	int64_t lat[64];
	uint64_t total = 0;
	struct buf out;
	int r = 0;

	buf_init(&out, 0);
	if (runs > 64)
		runs = 64;
	for (int i = 0; i < runs; i++) {
		buf_reset(&out);
		int64_t t0 = b_now();
		r = ops->search(st, q, &out, &total);
		lat[i] = b_now() - t0;
		if (r < 0)
			break;
	}
	if (r < 0) {
		printf("  %-34s error %s\n", name, err_str(r));
	} else {
		qsort(lat, (size_t)runs, sizeof(lat[0]), b_cmp);
		printf("  %-34s p50 %8.2f ms  p99 %8.2f ms  total %llu  page %zu B\n", name,
		       lat[runs / 2] / 1000.0, lat[(runs * 99) / 100] / 1000.0,
		       (unsigned long long)total, out.len);
	}
	buf_fini(&out);
}

static int64_t b_dir_bytes(const char *dir, int rm)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat sb;
	char path[1024];
	int64_t total = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &sb) == 0 && !strstr(de->d_name, "-shm"))
			total += sb.st_size;
		if (rm)
			unlink(path);
	}
	closedir(d);
	if (rm)
		rmdir(dir);
	return total;
}

int main(int argc, char **argv)
{
	uint64_t n = 2000000, parsed = 0;
	char tmpdir[64] = "/tmp/mamori-bench-store-XXXXXX";
	const char *dir = NULL;
	int original = 0, own_dir = 0, manual = 0, write_only = 0;
	struct store *st = NULL;
	const struct store_ops *ops = store_backend("sqlite");
	struct arena a;
	struct event *ev;
	int64_t t_write = 0, t0, ts0 = (int64_t)1764000000 * 1000000;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0) {
			original = 1;
		} else if (strcmp(argv[i], "-m") == 0) {
			manual = 1;
		} else if (strcmp(argv[i], "-w") == 0) {
			write_only = 1;
		} else if (argv[i][0] >= '0' && argv[i][0] <= '9' && !parsed) {
			char *end;
			n = strtoull(argv[i], &end, 10);
			parsed = 1;
		} else {
			dir = argv[i];
		}
	}
	if (!dir) {
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			return 1;
		}
		dir = tmpdir;
		own_dir = 1;
	}
	struct store_config cfg = { .backend = "sqlite", .path = dir, .fts_batch = manual ? -1 : 100000 };
	if (ops->open(&cfg, &st) < 0) {
		fprintf(stderr, "open failed\n");
		return 1;
	}
	ev = calloc(B_BATCH, sizeof(*ev));
	arena_init(&a, 1 << 20, 0);
	if (!ev)
		return 1;

	printf("bench_store: %llu events, batches of %d, event.original %s, indexing %s, dir %s\n",
	       (unsigned long long)n, B_BATCH, original ? "on" : "off",
	       manual ? "at flush" : "background", dir);
	uint64_t id = (uint64_t)ts0 << 8;
	int64_t wall0 = b_now();
	for (uint64_t done = 0; done < n; done += B_BATCH) {
		size_t k = n - done < B_BATCH ? (size_t)(n - done) : B_BATCH;
		arena_reset(&a);
		for (size_t i = 0; i < k; i++)
			b_make(&ev[i], &a, id + done + i, ts0 + (int64_t)(done + i) * 1000, original);
		t0 = b_now();
		if (ops->write_batch(st, id + done, ev, k) < 0) {
			fprintf(stderr, "write_batch failed\n");
			return 1;
		}
		t_write += b_now() - t0;
		ops->maintain(st);
	}
	int64_t wall = b_now() - wall0;
	printf("write:      %.0f events/s in write_batch (%.2f s), %.0f events/s wall incl. generation\n",
	       (double)n * 1e6 / (double)t_write, t_write / 1e6, (double)n * 1e6 / (double)wall);
	t0 = b_now();
	ops->flush(st);
	printf("fts:        caught up %.2f s after the last write\n", (b_now() - t0) / 1e6);

	struct store_query q = { .limit = 50 };
	if (write_only)
		goto done;
	printf("search (after catch-up):\n");
	b_query(ops, st, "newest 50, no filter", &q, 20);
	q.from_us = ts0 + (int64_t)n * 1000 - 3600LL * 1000000 / 10;
	b_query(ops, st, "newest 50, last 6 min", &q, 20);
	q.from_us = 0;
	q.filters[0] = (struct store_filter){ "host.name", "host042.example.net" };
	q.n_filters = 1;
	b_query(ops, st, "host.name exact", &q, 20);
	q.filters[0] = (struct store_filter){ "source.ip", "172.16.0.1*" };
	b_query(ops, st, "source.ip prefix", &q, 20);
	q.filters[0] = (struct store_filter){ "log.syslog.appname", "sshd" };
	b_query(ops, st, "appname (JSON field)", &q, 10);
	q.n_filters = 0;
	q.text = "failed password";
	b_query(ops, st, "text: failed password", &q, 20);
	q.text = "\"password expired\"";
	b_query(ops, st, "text: \"password expired\" (phrase)", &q, 20);
	q.text = "quarantine NOT relay";
	b_query(ops, st, "text: quarantine NOT relay", &q, 20);
	q.text = "certif*";
	b_query(ops, st, "text: certif*", &q, 20);
	q.text = "denied";
	q.filters[0] = (struct store_filter){ "host.name", "host007.example.net" };
	q.n_filters = 1;
	b_query(ops, st, "text + host.name", &q, 20);
	q.offset = 5000;
	b_query(ops, st, "text + host.name, offset 5000", &q, 10);

done:;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	ops->close(st);
	int64_t bytes = b_dir_bytes(dir, own_dir);
	printf("size:       %.1f MiB on disk (%.0f B/event)\n", bytes / 1048576.0,
	       (double)bytes / (double)n);
	printf("peak RSS:   %.1f MiB\n", ru.ru_maxrss / 1024.0);
	arena_fini(&a);
	free(ev);
	return 0;
}
