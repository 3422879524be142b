/*
 * mamori: one binary, subcommands. Each subcommand has its own --help.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "core/hs_child.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mamori COMMAND [ARGS]\n"
		"\n"
		"mamori is a self-hosted security operations platform: it collects logs\n"
		"(syslog, CEF, Suricata EVE, JSON), normalises them to ECS events, stores\n"
		"them, runs Sigma rules, correlations and threat-intelligence indicators on\n"
		"every event, groups alerts into incidents, notifies, and serves an HTTP\n"
		"API and console.\n"
		"\n"
		"commands:\n"
		"  serve          run the platform (see `mamori serve --help`)\n"
		"  check-config   validate a YAML configuration\n"
		"  events search  search stored events through the API\n"
		"  rules check    load Sigma rules and report each (loaded/unsupported/error)\n"
		"  rules test     match events from files against Sigma rules\n"
		"  notify test    send a test notification through the configured channels\n"
		"  intel check    load the threat-intelligence feeds once and report each\n"
		"  intel lookup   say whether a feed lists an address, domain, URL or hash\n"
		"  ddos           mitigate, withdraw, list and reconcile DDoS mitigations\n"
		"  mail check     run the mail gateway's checks on a message file\n"
		"  version        print the version\n"
		"  help           this help\n"
		"\n"
		"`mamori COMMAND --help` describes each command.\n");
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	/* Hidden: the Hyperscan compiler child, re-executed by hs_child. */
	hs_child_exec_self(cmd);
	if (!cmd) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
			printf("usage: mamori version\n\nPrints the version of mamori.\n");
			return 0;
		}
		printf("mamori %s\n", MAMORI_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "serve"))
		return cli_serve_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "check-config"))
		return cli_check_config_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "events"))
		return cli_events_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "notify"))
		return cli_notify_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "rules"))
		return cli_rules_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "intel"))
		return cli_intel_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "ddos"))
		return cli_ddos_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "mail"))
		return cli_mail_main(argc - 1, argv + 1);
	fprintf(stderr, "mamori: unknown command '%s'\n\n", cmd);
	usage(stderr);
	return 2;
}
