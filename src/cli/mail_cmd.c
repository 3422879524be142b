/*
 * `mamori mail check`: the mail gateway's decision on one message file,
 * without an MTA. Why: an operator tuning mail: (a DMARC override, an
 * attachment action, a BEC name list) wants to see what a given message
 * would get before a customer's mail does. It runs the very code the milter
 * runs (mail_gw_check), with the mail: settings of FILE, the configured
 * resolver and clamd, and a scratch data directory, so nothing is held in
 * or released from the real quarantine.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/settings.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "mail/mail_gw.h"
#include "mail/milter.h"
#include "mail/msg.h"

int cli_mail_main(int argc, char **argv);

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mamori mail check [-c FILE] [--ip ADDR] [--helo NAME] [--from ADDR]\n"
		"                         [--rcpt ADDR]... [--auth USER] [--json] MESSAGE\n"
		"\n"
		"Runs the mail gateway's checks on MESSAGE (an RFC 5322 file, LF or CRLF)\n"
		"as if the MTA had received it from --ip with HELO --helo, MAIL FROM\n"
		"--from and RCPT TO --rcpt: SPF, DKIM, ARC, DMARC through the resolver of\n"
		"mail.dns, MIME and attachment policy, clamd (mail.clamd), YARA, URLs,\n"
		"BEC and, with --auth or an --ip in mail.internal_networks, the outbound\n"
		"checks. Prints the verdict, the SMTP reply, the header changes and the\n"
		"reasons; --json prints the event the message would make instead.\n"
		"Nothing is stored: held messages go to a scratch directory.\n"
		"\n"
		"options:\n"
		"  -c, --config FILE   YAML configuration (its mail: section)\n"
		"  --ip ADDR           client address (default 127.0.0.1)\n"
		"  --helo NAME         HELO/EHLO name (default: the client address)\n"
		"  --from ADDR         envelope sender (default: the From address)\n"
		"  --rcpt ADDR         envelope recipient (repeatable; default postmaster@localhost)\n"
		"  --auth USER         the sender authenticated as USER (outbound)\n"
		"  --json              print the event instead of the summary\n"
		"  -h, --help          this help\n"
		"\n"
		"exit status: 0 accepted (or tagged), 1 rejected, held or deferred,\n"
		"2 usage, configuration or input error.\n");
}

static const char *verdict_text(enum milter_verdict v)
{
	switch (v) {
	case MILTER_REJECT:
		return "reject";
	case MILTER_TEMPFAIL:
		return "tempfail";
	case MILTER_DISCARD:
		return "quarantine (held by mamori)";
	case MILTER_HOLD:
		return "hold (MTA hold queue)";
	default:
		return "accept";
	}
}

static int check_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"ip", required_argument, NULL, 'i'},
		{"helo", required_argument, NULL, 'H'},   {"from", required_argument, NULL, 'f'},
		{"rcpt", required_argument, NULL, 'r'},   {"auth", required_argument, NULL, 'a'},
		{"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = NULL, *ip = "127.0.0.1", *helo = NULL, *from = NULL, *auth = NULL;
	char *rcpts[64];
	size_t nrcpt = 0;
	int json = 0, c, rc = 2;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'i': ip = optarg; break;
		case 'H': helo = optarg; break;
		case 'f': from = optarg; break;
		case 'r':
			if (nrcpt < 64)
				rcpts[nrcpt++] = optarg;
			break;
		case 'a': auth = optarg; break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	struct milter_session s;
	memset(&s, 0, sizeof(s));
	if (inet_pton(AF_INET, ip, s.ip) == 1) {
		s.af = AF_INET;
	} else if (inet_pton(AF_INET6, ip, s.ip) == 1) {
		s.af = AF_INET6;
	} else {
		fprintf(stderr, "mamori mail check: --ip %s is not an address\n", ip);
		return 2;
	}
	snprintf(s.client_ip, sizeof(s.client_ip), "%s", ip);
	snprintf(s.client_name, sizeof(s.client_name), "[%s]", ip);
	snprintf(s.helo, sizeof(s.helo), "%s", helo ? helo : ip);
	struct buf text;
	buf_init(&text, MSG_MAX_BODY_BYTES + MSG_MAX_HEADER_BYTES);
	if (buf_read_file(&text, argv[optind]) < 0) {
		buf_fini(&text);
		fprintf(stderr, "mamori mail check: cannot read %s\n", argv[optind]);
		return 2;
	}
	int perr = 0;
	size_t line = 0;
	s.m = msg_parse(text.p, text.len, &perr, &line);
	buf_fini(&text);
	if (!s.m) {
		fprintf(stderr, "mamori mail check: %s:%zu: not an RFC 5322 message (%s)\n",
			argv[optind], line,
			perr == MSG_E_LIMIT ? "over the size limits" : "a header line without a name");
		return 2;
	}
	if (from) {
		snprintf(s.mail_from, sizeof(s.mail_from), "%s", from);
	} else {
		long i = msg_find(s.m, "From", 0);
		char *v = i >= 0 ? msg_hdr_unfolded(s.m, (size_t)i) : NULL;
		const char *lt = v ? strchr(v, '<') : NULL;
		const char *a = lt ? lt + 1 : v;
		if (a)
			snprintf(s.mail_from, sizeof(s.mail_from), "%.*s", (int)strcspn(a, ">, "), a);
		free(v);
	}
	char *def_rcpt = (char *)"postmaster@localhost";
	s.rcpt = nrcpt ? rcpts : &def_rcpt;
	s.nrcpt = nrcpt ? nrcpt : 1;
	if (auth) {
		s.macro_name[0] = (char *)"{auth_authen}";
		s.macro_value[0] = (char *)auth;
		s.nmacros = 1;
	}

	struct settings st;
	struct buf err;
	buf_init(&err, 4096);
	char dir[] = "/tmp/mamori-mail-check.XXXXXX";
	struct mail_gw *g = NULL;
	if (settings_load(path, &st, &err) < 0) {
		buf_cstr(&err);
		fprintf(stderr, "%s\n", err.p ? err.p : "bad configuration");
		goto out_settings;
	}
	if (!mkdtemp(dir)) {
		fprintf(stderr, "mamori mail check: cannot make a scratch directory\n");
		goto out_settings;
	}
	log_set_level(LOG_WARN);
	free(st.mail.milter);
	st.mail.milter = strdup("");
	struct mail_gw_deps deps = {0};
	deps.data_dir = dir;
	g = mail_gw_new(&st.mail, &deps, &err);
	if (!g) {
		buf_cstr(&err);
		fprintf(stderr, "%s\n", err.p ? err.p : "mail: cannot start");
		goto out_dir;
	}
	struct milter_reply r;
	memset(&r, 0, sizeof(r));
	struct buf ev;
	buf_init(&ev, 1 << 20);
	mail_gw_check_json(g, &s, &r, &ev);
	buf_cstr(&ev);
	if (json) {
		printf("%s\n", ev.p ? ev.p : "{}");
	} else {
		printf("verdict: %s\n", verdict_text(r.verdict));
		if (r.verdict == MILTER_REJECT || r.verdict == MILTER_TEMPFAIL)
			printf("reply: %s %s %s\n", r.code, r.xcode, r.text);
		for (size_t i = 0; i < r.nops; i++) {
			const struct milter_op *o = &r.ops[i];
			if (o->kind == MILTER_OP_CHANGE && !o->value[0])
				printf("header removed: %s (#%u)\n", o->name, o->index);
			else
				printf("header %s: %s:%s\n",
				       o->kind == MILTER_OP_CHANGE ? "changed" : "added", o->name,
				       o->value);
		}
		const char *reasons = ev.p ? strstr(ev.p, "\"reasons\":") : NULL;
		if (reasons)
			printf("reasons: %.*s\n", (int)(strlen(reasons) - 2 - 10), reasons + 10);
	}
	rc = r.verdict == MILTER_ACCEPT ? 0 : 1;
	buf_fini(&ev);
	milter_reply_fini(&r);
	mail_gw_free(g);
out_dir: {
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "mamori mail check: could not remove %s\n", dir);
}
out_settings:
	settings_free(&st);
	buf_fini(&err);
	msg_free(s.m);
	return rc;
}

int cli_mail_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "check"))
		return check_main(argc - 1, argv + 1);
	fprintf(stderr, "mamori mail: unknown subcommand '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
