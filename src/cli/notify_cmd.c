/*
 * `mamori notify test`: sends one test notification through the configured
 * channels and prints, per channel, whether it was delivered. Why: the first
 * time a SOC learns that its SMTP relay refuses mamori's login must not be
 * during an incident; this runs the exact delivery path of `serve` (queue,
 * thread, retries) and waits for its outcome.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "detect/notify.h"

int cli_notify_main(int argc, char **argv);

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mamori notify test [--config FILE] [--channel NAME] [OPTIONS]\n"
		"\n"
		"Sends a test notification (kind `test`) through every channel of the\n"
		"`notify:` section of FILE, or only through channel NAME, and prints one\n"
		"line per channel: `NAME: sent` or `NAME: failed: REASON`. A test\n"
		"notification skips the channels' severity and kinds filters and their\n"
		"rate limit; failed attempts are retried as configured.\n"
		"\n"
		"options:\n"
		"  -c, --config FILE      YAML configuration with a notify: section\n"
		"  --channel NAME         only this channel\n"
		"  --severity SEV         informational (default), low, medium, high, critical\n"
		"  --title TEXT           subject/title (default: \"mamori test notification\")\n"
		"  --timeout SECONDS      give up waiting after this long (default 120)\n"
		"  -h, --help             this help\n"
		"\n"
		"exit status: 0 every channel delivered, 1 a channel failed, 2 usage or\n"
		"configuration error.\n");
}

/* Keeps only the channel named name in cfg (moving it first, freeing the
 * others); M_ENOTFOUND when no channel has that name. */
static int keep_channel(struct notify_config *cfg, const char *name)
{
	size_t keep = cfg->nch;
	struct notify_config rest;

	for (size_t i = 0; i < cfg->nch; i++)
		if (strcmp(cfg->ch[i].name, name) == 0)
			keep = i;
	if (keep == cfg->nch)
		return M_ENOTFOUND;
	if (keep != 0) {
		struct notify_channel_config t = cfg->ch[0];
		cfg->ch[0] = cfg->ch[keep];
		cfg->ch[keep] = t;
	}
	/* Free channels 1.. through a view of the array past the first. */
	rest = (struct notify_config){ 0, NULL, 0 };
	rest.ch = calloc(cfg->nch - 1 ? cfg->nch - 1 : 1, sizeof(*rest.ch));
	if (!rest.ch)
		return M_ENOMEM;
	memcpy(rest.ch, cfg->ch + 1, (cfg->nch - 1) * sizeof(*rest.ch));
	rest.nch = cfg->nch - 1;
	notify_config_free(&rest);
	cfg->nch = 1;
	return M_OK;
}

/* The same notifier as serve, one notification, a flush, then the outcome
 * per channel from the notifier's own counters. */
static int run_test(struct notify_config *cfg, enum notify_severity sev, const char *title,
		    long timeout_s)
{
	struct notifier *nf;
	struct notification n;
	char host[256] = "", body[512];
	int failed = 0, r;

	nf = notifier_new(cfg);
	if (!nf) {
		fprintf(stderr, "mamori notify test: cannot create the notifier\n");
		return 1;
	}
	if (notifier_start(nf) < 0) {
		notifier_free(nf);
		return 1;
	}
	gethostname(host, sizeof(host) - 1);
	snprintf(body, sizeof(body),
		 "This is a test notification sent by `mamori notify test` on %s.\n"
		 "If you read this, the channel works.", host);
	memset(&n, 0, sizeof(n));
	n.kind = NOTIFY_TEST;
	n.severity = sev;
	n.title = title;
	n.body = body;
	n.fields[0] = (struct notify_field){ "host", host };
	n.fields[1] = (struct notify_field){ "mamori_version", MAMORI_VERSION };
	n.nfields = 2;
	n.time_us = clock_now_us();
	if ((r = notifier_submit(nf, &n)) < 0) {
		fprintf(stderr, "mamori notify test: submit failed: %s\n", err_str(r));
		notifier_free(nf);
		return 1;
	}
	if (notifier_flush(nf, (int)(timeout_s * 1000)) < 0)
		fprintf(stderr, "mamori notify test: still delivering after %lds\n", timeout_s);
	for (size_t i = 0; i < cfg->nch; i++) {
		struct notify_stats st;
		if (notifier_channel_stats(nf, cfg->ch[i].name, &st) < 0)
			continue;
		if (st.sent) {
			printf("%s: sent (%s%s%s)\n", cfg->ch[i].name, cfg->ch[i].type,
			       st.retries ? ", after retries: " : "", st.retries ? st.last_error : "");
		} else {
			failed = 1;
			printf("%s: failed: %s\n", cfg->ch[i].name,
			       st.last_error[0] ? st.last_error : "not delivered in time");
		}
	}
	fflush(stdout);
	notifier_free(nf);
	return failed;
}

/* argv[0] is "notify"; the only subcommand is "test". */
int cli_notify_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "channel", required_argument, NULL, 'C' },
		{ "severity", required_argument, NULL, 's' },
		{ "title", required_argument, NULL, 't' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = NULL, *channel = NULL, *title = "mamori test notification";
	enum notify_severity sev = NOTIFY_SEV_INFORMATIONAL;
	long timeout_s = 120;
	struct conf_doc doc = { 0 };
	struct notify_config cfg = { 0 };
	struct buf err;
	int c, r, rc = 2;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "test") != 0) {
		fprintf(stderr, "mamori notify: unknown subcommand '%s'\n\n", argv[1]);
		usage(stderr);
		return 2;
	}
	argc--;
	argv++;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			channel = optarg;
			break;
		case 's':
			if (notify_severity_parse(optarg, &sev) < 0) {
				fprintf(stderr, "mamori notify test: unknown severity '%s'\n", optarg);
				return 2;
			}
			break;
		case 't':
			title = optarg;
			break;
		case 'T': {
			char *end;
			timeout_s = strtol(optarg, &end, 10);
			if (*end || timeout_s < 1 || timeout_s > 3600) {
				fprintf(stderr, "mamori notify test: --timeout expects 1..3600 seconds\n");
				return 2;
			}
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mamori notify test: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	buf_init(&err, 4096);
	if (path && (r = conf_load_file(path, &doc, &err)) < 0) {
		fprintf(stderr, "%s\n", err.p ? err.p : "configuration error");
		goto out;
	}
	if ((r = notify_config_load(&doc, &cfg, &err)) < 0) {
		fprintf(stderr, "%s\n", err.p ? err.p : "configuration error");
		goto out;
	}
	if (cfg.nch == 0) {
		fprintf(stderr, "mamori notify test: no channels in the notify: section%s%s\n",
			path ? " of " : " (use --config FILE)", path ? path : "");
		goto out;
	}
	if (channel && (r = keep_channel(&cfg, channel)) < 0) {
		fprintf(stderr, "mamori notify test: no channel named '%s'\n", channel);
		goto out;
	}
	rc = run_test(&cfg, sev, title, timeout_s);
out:
	notify_config_free(&cfg);
	conf_doc_fini(&doc);
	buf_fini(&err);
	return rc;
}
