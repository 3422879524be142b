/*
 * `mamori ddos mitigate|withdraw|mitigations|reconcile`: the operator's hand
 * on DDoS mitigation, outside the daemon. It opens the same desired state
 * (<data_dir>/mitigation.db) and the same back-end as `mamori serve`, with
 * the same safety rules (allow list, widest blackhole, caps), so a manual
 * blackhole and an automatic one are one thing, and the daemon's next
 * reconciliation keeps what was done here.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "ddos/mitig.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mamori ddos mitigate    [-c FILE] --target PREFIX --action ACTION [options]\n"
		"       mamori ddos withdraw    [-c FILE] (--target PREFIX [--action ACTION] | --key KEY)\n"
		"       mamori ddos mitigations [-c FILE] [--json]\n"
		"       mamori ddos reconcile   [-c FILE] [--dry-run]\n"
		"       mamori ddos replay      [-c FILE] [--raw] [--json] PCAP...\n"
		"\n"
		"Manual DDoS mitigation through the back-end of FILE's mitigation section\n"
		"(GoBGP, ExaBGP, BIRD or nftables; docs/ddos-mitigation.md), with the\n"
		"state kept in <data_dir>/mitigation.db beside `mamori serve`'s.\n"
		"  mitigate     blackhole a prefix, or discard or rate-limit a vector to it\n"
		"  withdraw     withdraw mitigations now, whatever their state\n"
		"  mitigations  list the desired state\n"
		"  reconcile    compare what the speaker announces with the desired state\n"
		"               and fix the difference\n"
		"  replay       run pcap captures (flow export or mirrored traffic) through\n"
		"               the detector and print the attacks\n"
		"\n"
		"`mamori ddos COMMAND --help` describes each. Exit 0 on success, 1 when a\n"
		"mitigation was refused or the back-end failed, 2 on a usage or\n"
		"configuration error.\n");
}

static void usage_mitigate(FILE *f)
{
	fprintf(f,
		"usage: mamori ddos mitigate [-c FILE] --target PREFIX --action ACTION\n"
		"                            [--protocol PROTO] [--source-port PORT[,PORT...]]...\n"
		"                            [--length MIN-MAX] [--rate BYTES] [--reason TEXT]\n"
		"                            [--duration DURATION] [--dry-run]\n"
		"\n"
		"Mitigates now, as an operator: the mitigation stays until `mamori ddos\n"
		"withdraw` (or --duration). Refused when the target is on (or, for a\n"
		"blackhole, overlaps) the allow list, is wider than allowed, or a cap is\n"
		"reached.\n"
		"  -c, --config FILE      configuration (data_dir and mitigation:)\n"
		"  -t, --target PREFIX    10.1.9.9, 10.1.9.9/32, 203.0.113.0/24, 2001:db8::1/128\n"
		"  -a, --action ACTION    blackhole, flowspec-discard or flowspec-ratelimit\n"
		"                         (with the nftables back-end: drop all, drop the\n"
		"                         match, or limit the match)\n"
		"  -p, --protocol PROTO   udp, tcp, icmp, icmpv6, gre, esp or a number\n"
		"  -s, --source-port P    source port(s) of the vector (at most 8)\n"
		"  -l, --length MIN-MAX   packet length range (or one length)\n"
		"  -r, --rate BYTES       bytes per second for flowspec-ratelimit (k, M, G = 10^3..)\n"
		"      --reason TEXT      why (kept with the mitigation and logged)\n"
		"      --duration DUR     withdraw after DUR (30s, 15m, 2h, 1d)\n"
		"  -n, --dry-run          check and print what would be sent; change nothing\n"
		"  -h, --help             this help\n");
}

static void usage_withdraw(FILE *f)
{
	fprintf(f,
		"usage: mamori ddos withdraw [-c FILE] --target PREFIX [--action ACTION]\n"
		"       mamori ddos withdraw [-c FILE] --key KEY\n"
		"\n"
		"Withdraws now every mitigation on PREFIX (only blackholes with --action\n"
		"blackhole, only FlowSpec/filter rules with the other actions), or the one\n"
		"whose key (as `mamori ddos mitigations` prints it) is KEY. Exit 1 when\n"
		"nothing matched or the back-end failed (the next reconcile retries).\n"
		"  -c, --config FILE    configuration\n"
		"  -t, --target PREFIX  the target prefix\n"
		"  -a, --action ACTION  blackhole, flowspec-discard or flowspec-ratelimit\n"
		"  -k, --key KEY        one mitigation by its key\n"
		"  -h, --help           this help\n");
}

static void usage_list(FILE *f)
{
	fprintf(f,
		"usage: mamori ddos mitigations [-c FILE] [--json]\n"
		"\n"
		"Lists the desired state: one line per mitigation with its key, action,\n"
		"state (active, or hold with the time of its withdrawal), whether the\n"
		"back-end has it, the attack and the reason.\n"
		"  -c, --config FILE  configuration\n"
		"  -j, --json         one JSON array instead\n"
		"  -h, --help         this help\n");
}

static void usage_reconcile(FILE *f)
{
	fprintf(f,
		"usage: mamori ddos reconcile [-c FILE] [--dry-run]\n"
		"\n"
		"Withdraws mitigations whose time is over, reads what the speaker announces\n"
		"(GoBGP's RIB; for ExaBGP, BIRD and nftables the record of what was sent),\n"
		"announces what is missing or stale, withdraws what is not desired, and\n"
		"prints each change. `mamori serve` does this at start and every\n"
		"mitigation.reconcile_interval.\n"
		"  -c, --config FILE  configuration\n"
		"  -n, --dry-run      only print the difference\n"
		"  -h, --help         this help\n");
}

struct ddos_ctx {
	char *data_dir;
	struct mitig_config cfg;
	struct mitig *m;
};

static const struct conf_keyword data_dir_kw[] = {
	{ "data_dir", CONF_STR, 0, 0, 0, "./var", 0, "state directory" },
	CONF_END
};

static int mkdir_p(const char *dir)
{
	char tmp[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, dir, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0750) < 0 && errno != EEXIST ? -1 : 0;
}

/* Loads data_dir and the mitigation section; with force_dry_run the
 * configuration is made dry-run (reconcile --dry-run). 0, or 2 on error. */
static int ctx_open(struct ddos_ctx *c, const char *path, int force_dry_run)
{
	struct conf_doc doc = { 0 };
	struct buf err;
	char db[4096];
	int rc = 2;

	memset(c, 0, sizeof(*c));
	buf_init(&err, 4096);
	if (path && conf_load_file(path, &doc, &err) < 0)
		goto out;
	if (conf_apply(&doc, NULL, data_dir_kw, &c->data_dir, &err) < 0 ||
	    mitig_config_load(&doc, &c->cfg, &err) < 0)
		goto out;
	if (!c->data_dir || !c->data_dir[0]) {
		buf_printf(&err, "%s: data_dir must not be empty", path ? path : "(defaults)");
		goto out;
	}
	if (force_dry_run)
		c->cfg.dry_run = 1;
	if (mkdir_p(c->data_dir) < 0) {
		buf_printf(&err, "%s: cannot create: %s", c->data_dir, strerror(errno));
		goto out;
	}
	if ((size_t)snprintf(db, sizeof(db), "%s/mitigation.db", c->data_dir) >= sizeof(db)) {
		buf_printf(&err, "data_dir too long");
		goto out;
	}
	c->m = mitig_new(&c->cfg, db);
	if (!c->m) {
		buf_printf(&err, "%s: cannot open the mitigation store", db);
		goto out;
	}
	rc = 0;
out:
	if (rc) {
		buf_cstr(&err);
		fprintf(stderr, "%s\n", err.p ? err.p : "configuration error");
	}
	conf_doc_fini(&doc);
	buf_fini(&err);
	return rc;
}

static void ctx_close(struct ddos_ctx *c)
{
	mitig_free(c->m);
	mitig_config_free(&c->cfg);
	free(c->data_dir);
}

static int parse_ports(const char *s, struct mitig_rule *r)
{
	while (*s) {
		char *end;
		long v;
		errno = 0;
		v = strtol(s, &end, 10);
		if (end == s || errno || v < 0 || v > 65535 || (*end && *end != ','))
			return M_EINVAL;
		if (r->nsport >= MITIG_MAX_PORTS)
			return M_ELIMIT;
		r->sport[r->nsport++] = (uint16_t)v;
		s = *end ? end + 1 : end;
	}
	return M_OK;
}

static int parse_length(const char *s, struct mitig_rule *r)
{
	char *end;
	long a, b;

	errno = 0;
	a = strtol(s, &end, 10);
	if (end == s || errno || a < 0 || a > 65535)
		return M_EINVAL;
	b = a;
	if (*end == '-') {
		const char *t = end + 1;
		b = strtol(t, &end, 10);
		if (end == t || errno || b < a || b > 65535)
			return M_EINVAL;
	}
	if (*end || b == 0)
		return M_EINVAL;
	r->len_min = (uint16_t)a;
	r->len_max = (uint16_t)b;
	return M_OK;
}

/* Bytes per second: 125000, 125k, 1.5M, 10G (powers of 1000). */
static int parse_rate(const char *s, uint64_t *out)
{
	char *end;
	double v, mult = 1;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v <= 0)
		return M_EINVAL;
	if (*end == 'k' || *end == 'K')
		mult = 1e3;
	else if (*end == 'M')
		mult = 1e6;
	else if (*end == 'G')
		mult = 1e9;
	if (mult > 1)
		end++;
	if (*end || v * mult > 1e12 || v * mult < 1)
		return M_EINVAL;
	*out = (uint64_t)(v * mult + 0.5);
	return M_OK;
}

static int parse_duration(const char *s, int64_t *out)
{
	char *end;
	long long v;
	int64_t mult = 1;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || errno || v <= 0)
		return M_EINVAL;
	switch (*end) {
	case '\0': case 's': break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	default: return M_EINVAL;
	}
	if (*end && end[1])
		return M_EINVAL;
	if (v > 365LL * 86400 / mult)
		return M_EINVAL;
	*out = (int64_t)v * mult;
	return M_OK;
}

static int cmd_mitigate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "target", required_argument, NULL, 't' },
		{ "action", required_argument, NULL, 'a' },
		{ "protocol", required_argument, NULL, 'p' },
		{ "source-port", required_argument, NULL, 's' },
		{ "length", required_argument, NULL, 'l' },
		{ "rate", required_argument, NULL, 'r' },
		{ "reason", required_argument, NULL, 'R' },
		{ "duration", required_argument, NULL, 'D' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct mitig_request req;
	struct mitig_result res;
	struct ddos_ctx ctx;
	const char *path = NULL, *target = NULL, *action = NULL;
	int c, rc;

	memset(&req, 0, sizeof(req));
	req.manual = 1;
	snprintf(req.reason, sizeof(req.reason), "manual (mamori ddos mitigate)");
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:t:a:p:s:l:r:nh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 't': target = optarg; break;
		case 'a': action = optarg; break;
		case 'p':
			if (mitig_proto_parse(optarg, &req.rule.proto) < 0) {
				fprintf(stderr, "mamori ddos mitigate: --protocol '%s': expected udp, tcp, icmp,"
					" icmpv6, gre, esp or 1..255\n", optarg);
				return 2;
			}
			break;
		case 's':
			if (parse_ports(optarg, &req.rule) < 0) {
				fprintf(stderr, "mamori ddos mitigate: --source-port '%s': expected ports"
					" 0..65535, comma-separated, at most 8\n", optarg);
				return 2;
			}
			break;
		case 'l':
			if (parse_length(optarg, &req.rule) < 0) {
				fprintf(stderr, "mamori ddos mitigate: --length '%s': expected MIN-MAX or one"
					" length, 1..65535\n", optarg);
				return 2;
			}
			break;
		case 'r':
			if (parse_rate(optarg, &req.rule.rate) < 0) {
				fprintf(stderr, "mamori ddos mitigate: --rate '%s': expected bytes per second"
					" (e.g. 125000, 125k, 10M)\n", optarg);
				return 2;
			}
			break;
		case 'R': snprintf(req.reason, sizeof(req.reason), "%s", optarg); break;
		case 'D':
			if (parse_duration(optarg, &req.duration) < 0) {
				fprintf(stderr, "mamori ddos mitigate: --duration '%s': expected e.g. 30s,"
					" 15m, 2h, 1d\n", optarg);
				return 2;
			}
			break;
		case 'n': req.dry_run = 1; break;
		case 'h': usage_mitigate(stdout); return 0;
		default: usage_mitigate(stderr); return 2;
		}
	}
	if (optind < argc || !target || !action) {
		fprintf(stderr, "mamori ddos mitigate: %s\n", optind < argc ? "unexpected argument" :
			"--target and --action are required");
		usage_mitigate(stderr);
		return 2;
	}
	if (mitig_prefix_parse(target, &req.rule.dst) < 0) {
		fprintf(stderr, "mamori ddos mitigate: --target '%s': expected an address or a prefix"
			" without host bits (e.g. 10.1.9.9/32, 203.0.113.0/24)\n", target);
		return 2;
	}
	if (mitig_action_parse(action, &req.rule.action) < 0) {
		fprintf(stderr, "mamori ddos mitigate: --action '%s': expected blackhole,"
			" flowspec-discard or flowspec-ratelimit\n", action);
		return 2;
	}
	if (req.rule.action == MITIG_RATELIMIT && !req.rule.rate) {
		fprintf(stderr, "mamori ddos mitigate: flowspec-ratelimit needs --rate\n");
		return 2;
	}
	if ((rc = ctx_open(&ctx, path, 0)) != 0)
		return rc;
	memset(&res, 0, sizeof(res));
	rc = mitig_start(ctx.m, &req, clock_now_us() / 1000000, &res);
	switch (res.outcome) {
	case MITIG_O_DRY_RUN:
		printf("dry-run: %s\n%s\n", res.key, res.detail);
		break;
	case MITIG_O_REFUSED:
		printf("refused: %s%s%s\n", res.key, res.key[0] ? ": " : "", res.detail);
		break;
	case MITIG_O_FAILED:
		printf("failed: %s: %s (recorded; retried by the next reconcile)\n", res.key, res.detail);
		break;
	default:
		printf("%s: %s%s%s%s\n", mitig_outcome_name(res.outcome), res.key,
		       res.detail[0] ? " (" : "", res.detail, res.detail[0] ? ")" : "");
		break;
	}
	ctx_close(&ctx);
	return rc == 0 ? 0 : 1;
}

static int cmd_withdraw(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "target", required_argument, NULL, 't' },
		{ "action", required_argument, NULL, 'a' },
		{ "key", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = NULL, *target = NULL, *action = NULL, *key = NULL;
	struct mitig_prefix p;
	enum mitig_action a = 0;
	struct ddos_ctx ctx;
	size_t n = 0;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:t:a:k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 't': target = optarg; break;
		case 'a': action = optarg; break;
		case 'k': key = optarg; break;
		case 'h': usage_withdraw(stdout); return 0;
		default: usage_withdraw(stderr); return 2;
		}
	}
	if (optind < argc || !!target == !!key) {
		fprintf(stderr, "mamori ddos withdraw: give --target or --key\n");
		usage_withdraw(stderr);
		return 2;
	}
	if (target && mitig_prefix_parse(target, &p) < 0) {
		fprintf(stderr, "mamori ddos withdraw: --target '%s': expected an address or a prefix"
			" without host bits\n", target);
		return 2;
	}
	if (action && mitig_action_parse(action, &a) < 0) {
		fprintf(stderr, "mamori ddos withdraw: --action '%s': expected blackhole,"
			" flowspec-discard or flowspec-ratelimit\n", action);
		return 2;
	}
	if ((rc = ctx_open(&ctx, path, 0)) != 0)
		return rc;
	rc = mitig_withdraw(ctx.m, key, target ? &p : NULL, a, clock_now_us() / 1000000, &n);
	if (rc == M_ENOTFOUND)
		printf("nothing to withdraw for %s\n", key ? key : target);
	else if (rc < 0)
		printf("withdrew %zu from the desired state; the back-end failed (see the log); the next"
		       " reconcile retries\n", n);
	else
		printf("withdrawn: %zu\n", n);
	ctx_close(&ctx);
	return rc == 0 ? 0 : 1;
}

static void fmt_time(int64_t s, char *out, size_t outsz)
{
	time_t t = (time_t)s;
	struct tm tm;

	if (s <= 0 || !gmtime_r(&t, &tm) || !strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, outsz, "-");
}

static int cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = NULL;
	struct mitig_entry *e = NULL;
	struct ddos_ctx ctx;
	size_t n = 0;
	int c, rc, json = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'j': json = 1; break;
		case 'h': usage_list(stdout); return 0;
		default: usage_list(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage_list(stderr);
		return 2;
	}
	if ((rc = ctx_open(&ctx, path, 0)) != 0)
		return rc;
	if ((rc = mitig_list(ctx.m, &e, &n)) < 0) {
		fprintf(stderr, "mamori ddos mitigations: cannot read the store: %s\n", err_str(rc));
		ctx_close(&ctx);
		return 1;
	}
	if (json) {
		json_t *arr = json_array();
		char *s;
		for (size_t i = 0; arr && i < n; i++) {
			char t1[32], t2[32], pfx[64];
			fmt_time(e[i].created, t1, sizeof(t1));
			fmt_time(e[i].expires, t2, sizeof(t2));
			json_array_append_new(arr, json_pack(
				"{s:s, s:s, s:s, s:I, s:s, s:s, s:b, s:b, s:b, s:s, s:s, s:s, s:s}",
				"key", e[i].key, "action", mitig_action_name(e[i].rule.action),
				"target", mitig_prefix_str(&e[i].rule.dst, pfx, sizeof(pfx)),
				"rate", (json_int_t)e[i].rule.rate,
				"state", e[i].state == MITIG_HOLD ? "hold" : "active",
				"expires", t2, "manual", e[i].manual, "dry_run", e[i].dry_run,
				"announced", e[i].announced, "attack_id", e[i].attack_id,
				"reason", e[i].reason, "created", t1, "last_error", e[i].last_error));
		}
		s = arr ? json_dumps(arr, JSON_INDENT(2)) : NULL;
		printf("%s\n", s ? s : "[]");
		free(s);
		json_decref(arr);
	} else {
		for (size_t i = 0; i < n; i++) {
			char t[32], reason[MITIG_REASON_MAX * 4], attack[MITIG_ID_MAX * 4];
			char lerr[MITIG_ERR_MAX * 4];
			fmt_time(e[i].expires, t, sizeof(t));
			log_escape(e[i].reason, strlen(e[i].reason), reason, sizeof(reason));
			log_escape(e[i].attack_id, strlen(e[i].attack_id), attack, sizeof(attack));
			log_escape(e[i].last_error, strlen(e[i].last_error), lerr, sizeof(lerr));
			printf("%s\taction=%s", e[i].key, mitig_action_name(e[i].rule.action));
			if (e[i].rule.action == MITIG_RATELIMIT)
				printf(" rate=%" PRIu64, e[i].rule.rate);
			printf(" state=%s expires=%s %s%s attack=%s reason=\"%s\"%s%s%s\n",
			       e[i].state == MITIG_HOLD ? "hold" : "active", t,
			       e[i].dry_run ? "dry-run" : e[i].announced ? "announced" : "pending",
			       e[i].manual ? " manual" : "", attack[0] ? attack : "-",
			       reason, lerr[0] ? " error=\"" : "", lerr,
			       e[i].last_error[0] ? "\"" : "");
		}
		printf("%zu mitigation(s)\n", n);
	}
	free(e);
	ctx_close(&ctx);
	return 0;
}

static int cmd_reconcile(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = NULL;
	struct mitig_diff d;
	struct ddos_ctx ctx;
	int c, rc, dry = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:nh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'n': dry = 1; break;
		case 'h': usage_reconcile(stdout); return 0;
		default: usage_reconcile(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage_reconcile(stderr);
		return 2;
	}
	if ((rc = ctx_open(&ctx, path, dry)) != 0)
		return rc;
	rc = mitig_reconcile(ctx.m, clock_now_us() / 1000000, &d);
	for (size_t i = 0; i < d.nwithdraw; i++)
		printf("%s %s\n", dry ? "would withdraw" : "withdraw", d.withdraw[i].fp);
	for (size_t i = 0; i < d.nannounce; i++)
		printf("%s %s\n", dry ? "would announce" : "announce", d.announce[i].fp);
	printf("reconcile: %zu to announce, %zu to withdraw, %zu unchanged%s%s\n", d.nannounce,
	       d.nwithdraw, d.unchanged, rc < 0 ? "; failed: " : "", rc < 0 ? err_str(rc) : "");
	mitig_diff_fini(&d);
	ctx_close(&ctx);
	return rc == 0 ? 0 : 1;
}

int cli_ddos_main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	/* A speaker that goes away while we write to it must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (!getenv("MAMORI_LOG_LEVEL"))
		log_set_level(LOG_WARN);
	else {
		enum log_level lvl;
		if (log_level_parse(getenv("MAMORI_LOG_LEVEL"), &lvl) == 0)
			log_set_level(lvl);
	}
	cmd = argv[1];
	if (!strcmp(cmd, "mitigate"))
		return cmd_mitigate(argc - 1, argv + 1);
	if (!strcmp(cmd, "withdraw"))
		return cmd_withdraw(argc - 1, argv + 1);
	if (!strcmp(cmd, "mitigations"))
		return cmd_list(argc - 1, argv + 1);
	if (!strcmp(cmd, "reconcile"))
		return cmd_reconcile(argc - 1, argv + 1);
	if (!strcmp(cmd, "replay"))
		return cli_ddos_replay(argc - 1, argv + 1);
	fprintf(stderr, "mamori ddos: unknown command '%s' (mitigate, withdraw, mitigations,"
		" reconcile, replay)\n", cmd);
	return 2;
}
