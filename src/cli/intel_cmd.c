/*
 * `mamori intel check|lookup`: the threat-intelligence feeds of a
 * configuration (or one given on the command line) loaded once, outside
 * the daemon, so an operator sees what each feed yields and why values
 * were refused before serve runs it, and can ask whether a value is
 * listed and by which feed.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "detect/feed.h"
#include "detect/intel.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mamori intel check  [-c FILE] [--feed NAME] [--kind KIND --url URL]\n"
		"       mamori intel lookup [-c FILE] [--feed NAME] [--kind KIND --url URL] VALUE...\n"
		"\n"
		"Loads threat-intelligence feeds once, as `mamori serve` would, without\n"
		"starting anything.\n"
		"  check   prints per feed what it yielded: indicators loaded, rejected and\n"
		"          skipped with a count per reason, the first rejected values, and\n"
		"          the error of a feed that failed. Exit 0 when every feed loaded,\n"
		"          1 when one failed, 2 on a bad configuration.\n"
		"  lookup  says for each VALUE (an address, domain, URL, hash or e-mail\n"
		"          address; the type is recognised) whether a feed lists it, which\n"
		"          indicator matched (a CIDR range, a parent domain...), its feed,\n"
		"          confidence and validity. Exit 0 when every value is listed, 1\n"
		"          when one is not, 2 on a bad configuration.\n"
		"\n"
		"  -c, --config FILE  the feeds of FILE's intel.feeds (docs/intel.md)\n"
		"  --feed NAME        only the feed called NAME\n"
		"  --kind KIND        a feed given here instead: plain, csv, stix, taxii, misp\n"
		"  --url URL          its file, directory or http(s) URL (with --kind)\n"
		"  -h, --help         this help\n");
}

/* A feed given on the command line: written as YAML and parsed by the same
 * table as the configuration, so it takes the same defaults and checks. */
static int adhoc_feed(const char *kind, const char *url, struct feed_conf **fc, size_t *n,
		      struct buf *err)
{
	struct conf_doc doc = { 0 };
	struct buf y;
	int r;

	buf_init(&y, 0);
	buf_puts(&y, "feeds:\n  - name: cli\n    kind: '");
	for (const char *p = kind; *p; p++)
		(void)(*p == '\'' ? buf_puts(&y, "''") : buf_putc(&y, *p));
	buf_puts(&y, "'\n    url: '");
	for (const char *p = url; *p; p++)
		(void)(*p == '\'' ? buf_puts(&y, "''") : buf_putc(&y, *p));
	buf_puts(&y, "'\n");
	r = conf_parse("(command line)", y.p, y.len, &doc, err);
	if (r == 0)
		r = feed_conf_parse_list(&doc, conf_map_get(doc.root, "feeds"), fc, n, err);
	conf_doc_fini(&doc);
	buf_fini(&y);
	return r;
}

static int config_feeds(const char *path, struct feed_conf **fc, size_t *n, struct buf *err)
{
	struct conf_doc doc = { 0 };
	const struct conf_node *sec, *feeds;
	int r;

	if ((r = conf_load_file(path, &doc, err)) < 0)
		return r;
	sec = doc.root ? conf_map_get(doc.root, "intel") : NULL;
	feeds = sec ? conf_map_get(sec, "feeds") : NULL;
	if (!feeds || conf_node_is_null(feeds))
		r = 0;
	else
		r = feed_conf_parse_list(&doc, feeds, fc, n, err);
	conf_doc_fini(&doc);
	return r;
}

static void print_time(const char *what, int64_t us)
{
	char t[32];
	time_t s = (time_t)(us / 1000000);
	struct tm tm;

	if (us > 0 && gmtime_r(&s, &tm) && strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm))
		printf(" %s=%s", what, t);
}

static void print_stats(const struct feed_conf *fc, const struct feed_stats *st, int rc,
			const char *errtext)
{
	if (rc < 0) {
		printf("%s: error: %s\n", fc->name, errtext && errtext[0] ? errtext : err_str(rc));
		return;
	}
	printf("%s: ok loaded=%zu rejected=%zu skipped=%zu", fc->name, st->loaded, st->rejected,
	       st->skipped);
	if (st->pending)
		printf(" pending=%zu", st->pending);
	printf(" requests=%zu bytes=%zu\n", st->requests, st->bytes);
	for (int r = 0; r < FEED_R_MAX; r++)
		if (st->reasons[r])
			printf("  %s %s: %zu\n", r < FEED_R_SKIP_FIRST ? "rejected" : "skipped",
			       feed_reason_str((enum feed_reason)r), st->reasons[r]);
	for (size_t i = 0; i < st->nsamples && i < FEED_SAMPLES; i++)
		printf("  e.g. %s\n", st->samples[i]);
}

static const struct intel_indicator *lookup(const struct intel_set *set, enum intel_type t,
					    const char *v, size_t n, int64_t now)
{
	switch (t) {
	case INTEL_IP: return intel_lookup_ip(set, v, n, now);
	case INTEL_DOMAIN: return intel_lookup_domain(set, v, n, now);
	case INTEL_URL: return intel_lookup_url(set, v, n, now);
	case INTEL_HASH: return intel_lookup_hash(set, v, n, now);
	case INTEL_EMAIL: return intel_lookup_email(set, v, n, now);
	}
	return NULL;
}

int cli_intel_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "feed", required_argument, NULL, 'f' },
		{ "kind", required_argument, NULL, 'k' },
		{ "url", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = NULL, *only = NULL, *kind = NULL, *url = NULL, *cmd;
	struct feed_conf *fc = NULL;
	struct intel_builder *b = NULL;
	struct intel_set *set = NULL;
	struct buf err;
	size_t n = 0, used = 0;
	int c, rc = 2, failed = 0, check;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	if (strcmp(cmd, "check") && strcmp(cmd, "lookup")) {
		fprintf(stderr, "mamori intel: unknown command '%s' (check, lookup)\n", cmd);
		return 2;
	}
	check = !strcmp(cmd, "check");
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'f': only = optarg; break;
		case 'k': kind = optarg; break;
		case 'u': url = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	argc -= 1;
	argv += 1;
	if (check && optind < argc) {
		fprintf(stderr, "mamori intel check: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!check && optind >= argc) {
		fprintf(stderr, "mamori intel lookup: give at least one VALUE\n");
		return 2;
	}
	if (!!kind != !!url || (kind && path)) {
		fprintf(stderr, "mamori intel %s: give -c FILE, or --kind with --url\n", cmd);
		return 2;
	}
	if (!kind && !path) {
		fprintf(stderr, "mamori intel %s: no feeds: give -c FILE or --kind and --url\n", cmd);
		return 2;
	}
	buf_init(&err, 1024);
	if ((kind ? adhoc_feed(kind, url, &fc, &n, &err) : config_feeds(path, &fc, &n, &err)) < 0) {
		fprintf(stderr, "%s\n", err.p ? err.p : "configuration error");
		goto out;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	b = intel_builder_new();
	if (!b) {
		fprintf(stderr, "mamori intel: out of memory\n");
		goto out_curl;
	}
	for (size_t i = 0; i < n; i++) {
		struct feed_stats st;
		int r;

		if (only && strcmp(only, fc[i].name))
			continue;
		used++;
		memset(&st, 0, sizeof(st));
		buf_reset(&err);
		r = feed_load_one(&fc[i], b, &st, &err);
		if (r < 0)
			failed++;
		if (check || r < 0)
			print_stats(&fc[i], &st, r, err.p);
	}
	if (used == 0) {
		fprintf(stderr, "mamori intel %s: %s\n", cmd,
			only ? "no feed by that name" : "no feeds in intel.feeds");
		goto out_curl;
	}
	set = intel_builder_finish(b);
	b = NULL;
	if (!set) {
		fprintf(stderr, "mamori intel: out of memory building the set\n");
		goto out_curl;
	}
	if (check) {
		printf("%zu distinct indicators from %zu feed(s), %zu failed\n", intel_set_count(set),
		       used, (size_t)failed);
		rc = failed ? 1 : 0;
		goto out_curl;
	}
	rc = 0;
	for (int i = optind; i < argc; i++) {
		const char *v = argv[i];
		enum intel_type t = feed_detect_type(v, strlen(v));
		const struct intel_indicator *hit;

		if (t == 0) {
			printf("%s: not an address, domain, URL, hash or e-mail address\n", v);
			rc = 1;
			continue;
		}
		hit = lookup(set, t, v, strlen(v), clock_now_us());
		if (!hit) {
			printf("%s: not listed (%s)\n", v, intel_type_str(t));
			rc = 1;
			continue;
		}
		printf("%s: listed as %s %s by %s confidence=%u", v, intel_type_str(hit->type), hit->value,
		       hit->meta.source ? hit->meta.source : "?", (unsigned)hit->meta.confidence);
		print_time("first_seen", hit->meta.first_seen);
		print_time("last_seen", hit->meta.last_seen);
		print_time("valid_until", hit->meta.valid_until);
		printf("\n");
	}
out_curl:
	intel_builder_free(b);
	intel_set_unref(set);
	curl_global_cleanup();
out:
	feed_conf_free_all(fc, n);
	buf_fini(&err);
	return rc;
}
