/*
 * `mamori rules check` and `mamori rules test`: the rule engine without the
 * daemon. Why: a rule author (or a rule update) needs to know, before a
 * reload, which rules load, which use a feature mamori lacks and which are
 * broken, with the line; and which rules a sample of events triggers, parsed
 * by the same parsers as live input.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/arena.h"
#include "core/clock.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/event.h"
#include "core/pipeline.h"
#include "detect/sigma.h"
#include "detect/sigma_corr.h"

#define MAX_PATHS 256
#define MAX_INPUT (256u << 20)

struct opts {
	const char *mappings[MAX_PATHS];
	size_t n_mappings;
	const char *rules[MAX_PATHS];
	size_t n_rules;
	const char *placeholders[MAX_PATHS];
	size_t n_placeholders;
	int no_builtin, bundled, pcre, quiet, counts;
};

static void check_usage(FILE *f)
{
	fprintf(f,
		"usage: mamori rules check [OPTIONS] PATH...\n"
		"       mamori rules check [OPTIONS] --bundled [PATH...]\n"
		"\n"
		"Loads Sigma rules from files and directories (recursively, *.yml and\n"
		"*.yaml) and reports each rule document: `loaded`, `unsupported: WHY`\n"
		"(valid Sigma using a feature mamori does not have) or `error: WHY` (with\n"
		"line:col). Then compiles the whole set as `serve` would.\n"
		"\n"
		"options:\n"
		"  --mappings PATH        extra field mapping file or directory (repeatable)\n"
		"  --no-builtin-mappings  do not load the mappings built into mamori\n"
		"  --placeholder NAME=V1,V2  values for |expand placeholders (repeatable)\n"
		"  --bundled              also load the rules bundled with mamori\n"
		"  --quiet                print only the rules that did not load\n"
		"\n"
		"exit status: 0 all loaded, 1 some unsupported or in error, 2 usage.\n");
}

static void test_usage(FILE *f)
{
	fprintf(f,
		"usage: mamori rules test --rules PATH [OPTIONS] FILE...\n"
		"\n"
		"Parses events from each FILE as `serve` would (JSON objects, one per\n"
		"line or concatenated; other lines as syslog), matches them against the\n"
		"rules and prints `FILE:N: RULE-ID LEVEL TITLE` for every match (N is the\n"
		"record number from 1), then a summary on stderr. Correlation rules run\n"
		"over the events in order.\n"
		"\n"
		"options:\n"
		"  --rules PATH           rule file or directory (repeatable)\n"
		"  --mappings PATH        extra field mapping file or directory (repeatable)\n"
		"  --no-builtin-mappings  do not load the mappings built into mamori\n"
		"  --placeholder NAME=V1,V2  values for |expand placeholders (repeatable)\n"
		"  --bundled              also load the rules bundled with mamori\n"
		"  --counts               print `RULE-ID COUNT` per rule instead of each match\n"
		"  --pcre                 match with PCRE2 only (no Hyperscan; for testing)\n"
		"\n"
		"exit status: 0 ran, 1 a rule or input could not be read, 2 usage.\n");
}

static int parse_opts(int argc, char **argv, struct opts *o, int *first,
		      void (*usage)(FILE *))
{
	int i;

	memset(o, 0, sizeof(*o));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		int has_arg = i + 1 < argc;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 1;
		} else if (!strcmp(a, "--mappings") && has_arg && o->n_mappings < MAX_PATHS) {
			o->mappings[o->n_mappings++] = argv[++i];
		} else if (!strcmp(a, "--rules") && has_arg && o->n_rules < MAX_PATHS) {
			o->rules[o->n_rules++] = argv[++i];
		} else if (!strcmp(a, "--placeholder") && has_arg &&
			   o->n_placeholders < MAX_PATHS) {
			o->placeholders[o->n_placeholders++] = argv[++i];
		} else if (!strcmp(a, "--no-builtin-mappings")) {
			o->no_builtin = 1;
		} else if (!strcmp(a, "--bundled")) {
			o->bundled = 1;
		} else if (!strcmp(a, "--pcre")) {
			o->pcre = 1;
		} else if (!strcmp(a, "--quiet")) {
			o->quiet = 1;
		} else if (!strcmp(a, "--counts")) {
			o->counts = 1;
		} else if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (a[0] == '-') {
			fprintf(stderr, "mamori rules: unknown or incomplete option '%s'\n\n", a);
			usage(stderr);
			return 2;
		} else {
			break;
		}
	}
	*first = i;
	return 0;
}

static int add_placeholder(struct sigma_builder *b, const char *spec)
{
	const char *eq = strchr(spec, '=');
	char name[256];
	char *vals, *save = NULL;
	const char *v[1024];
	size_t n = 0;
	int r;

	if (!eq || eq == spec || (size_t)(eq - spec) >= sizeof(name))
		return M_EINVAL;
	memcpy(name, spec, (size_t)(eq - spec));
	name[eq - spec] = '\0';
	vals = strdup(eq + 1);
	if (!vals)
		return M_ENOMEM;
	for (char *t = strtok_r(vals, ",", &save); t && n < 1024; t = strtok_r(NULL, ",", &save))
		v[n++] = t;
	r = sigma_builder_set_placeholder(b, name, v, n);
	free(vals);
	return r;
}

struct report {
	int quiet;
	size_t shown;
};

static void report_cb(void *ctx, const char *file, enum sigma_file_status st,
		      const char *msg)
{
	struct report *rp = ctx;

	if (st == SIGMA_LOADED) {
		if (rp && !rp->quiet)
			printf("%s: loaded\n", file);
		return;
	}
	printf("%s: %s: %s\n", file, st == SIGMA_UNSUPPORTED ? "unsupported" : "error", msg);
}

/* Builds the set from the options; NULL on a fatal error (printed). */
static struct sigma_ruleset *build(const struct opts *o, const char *const *paths,
				   size_t n_paths, sigma_report_fn fn, void *ctx,
				   size_t counts[3])
{
	struct sigma_builder *b = sigma_builder_new();
	struct sigma_ruleset *rs;
	struct buf err;

	if (!b) {
		fprintf(stderr, "mamori rules: out of memory\n");
		return NULL;
	}
	buf_init(&err, 1 << 16);
	if (!o->no_builtin && sigma_builder_add_builtin(b, 0, NULL, NULL, &err) < 0)
		goto fail;
	for (size_t i = 0; i < o->n_mappings; i++)
		if (sigma_builder_add_mappings(b, o->mappings[i], &err) < 0)
			goto fail;
	for (size_t i = 0; i < o->n_placeholders; i++)
		if (add_placeholder(b, o->placeholders[i]) < 0) {
			buf_printf(&err, "--placeholder %s: expected NAME=V1,V2,...",
				   o->placeholders[i]);
			goto fail;
		}
	if (o->bundled)
		sigma_builder_add_builtin(b, 1, fn, ctx, &err);
	for (size_t i = 0; i < n_paths; i++)
		if (sigma_builder_add_path(b, paths[i], fn, ctx) < 0) {
			buf_printf(&err, "%s: cannot read: %s", paths[i], strerror(errno));
			goto fail;
		}
	sigma_builder_counts(b, &counts[0], &counts[1], &counts[2]);
	rs = sigma_builder_finish(b, o->pcre, &err);
	if (!rs) {
		fprintf(stderr, "mamori rules: %s\n", err.p ? err.p : "cannot compile the rules");
		buf_fini(&err);
		return NULL;
	}
	buf_fini(&err);
	return rs;
fail:
	buf_cstr(&err);
	fprintf(stderr, "mamori rules: %s\n", err.p ? err.p : "out of memory");
	buf_fini(&err);
	sigma_builder_free(b);
	return NULL;
}

static int cmd_check(int argc, char **argv)
{
	struct opts o;
	struct report rp = { 0, 0 };
	struct sigma_ruleset *rs;
	size_t counts[3] = { 0 }, disabled = 0;
	int first, r;

	r = parse_opts(argc, argv, &o, &first, check_usage);
	if (r)
		return r == 1 ? 0 : 2;
	if (first >= argc && !o.bundled) {
		check_usage(stderr);
		return 2;
	}
	rp.quiet = o.quiet;
	rs = build(&o, (const char *const *)argv + first, (size_t)(argc - first),
		   report_cb, &rp, counts);
	if (!rs)
		return 1;
	for (uint32_t i = 0; i < sigma_ruleset_count(rs); i++) {
		const char *why = sigma_corr_disabled(rs, i);
		if (why) {
			const struct sigma_rule_info *in = sigma_ruleset_rule(rs, i);
			printf("%s: unsupported: correlation %s\n", in->file, why);
			disabled++;
		}
	}
	printf("%zu loaded, %zu unsupported, %zu errors\n", counts[0] - disabled,
	       counts[1] + disabled, counts[2]);
	sigma_ruleset_unref(rs);
	return counts[1] + counts[2] + disabled ? 1 : 0;
}

/* The whole input file ("-" = standard input), NUL-terminated; the
 * caller frees *out. */
static int read_all(const char *path, char **out, size_t *len)
{
	struct buf b;
	int rc;

	buf_init(&b, MAX_INPUT);
	if ((rc = buf_read_file(&b, path)) < 0) {
		buf_fini(&b);
		return rc;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

/* The next record: a JSON object (brace depth, strings respected) when the
 * text starts with '{', else one line. */
static int next_record(const char *p, size_t len, size_t *pos, size_t *start,
		       size_t *n)
{
	size_t i = *pos;

	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	if (i >= len)
		return 0;
	*start = i;
	if (p[i] == '{') {
		int depth = 0, in_str = 0;

		for (; i < len; i++) {
			char c = p[i];

			if (in_str) {
				if (c == '\\')
					i++;
				else if (c == '"')
					in_str = 0;
				continue;
			}
			if (c == '"')
				in_str = 1;
			else if (c == '{')
				depth++;
			else if (c == '}' && --depth == 0) {
				i++;
				break;
			}
		}
	} else {
		while (i < len && p[i] != '\n')
			i++;
	}
	*n = i - *start;
	*pos = i;
	return 1;
}

struct test_ctx {
	const struct sigma_ruleset *rs;
	uint64_t *hits;
	int counts;
	const char *file;
	size_t rec;
};

static void print_hit(struct test_ctx *t, uint32_t rule)
{
	const struct sigma_rule_info *in = sigma_ruleset_rule(t->rs, rule);

	t->hits[rule]++;
	if (!t->counts)
		printf("%s:%zu: %s %s %s\n", t->file, t->rec, in->id,
		       sigma_level_name(in->level), in->title);
}

static void corr_emit(void *ctx, const struct sigma_corr_hit *hit,
		      const struct event *ev)
{
	(void)ev;
	print_hit(ctx, hit->rule);
}

static int cmd_test(int argc, char **argv)
{
	struct opts o;
	struct sigma_ruleset *rs;
	struct sigma_ctx *c;
	struct sigma_corr_state *cs;
	struct test_ctx t;
	struct arena a;
	struct event *ev;
	size_t counts[3] = { 0 }, events = 0, matched = 0;
	int64_t now;
	int first, r, rc = 0;

	r = parse_opts(argc, argv, &o, &first, test_usage);
	if (r)
		return r == 1 ? 0 : 2;
	if ((o.n_rules == 0 && !o.bundled) || first >= argc) {
		test_usage(stderr);
		return 2;
	}
	rs = build(&o, o.rules, o.n_rules, report_cb, &(struct report){ 1, 0 }, counts);
	if (!rs)
		return 1;
	c = sigma_ctx_get(rs);
	cs = sigma_corr_state_new(rs);
	ev = calloc(1, sizeof(*ev));
	memset(&t, 0, sizeof(t));
	t.rs = rs;
	t.counts = o.counts;
	t.hits = calloc(sigma_ruleset_count(rs) + 1, sizeof(*t.hits));
	if (!c || !cs || !ev || !t.hits) {
		fprintf(stderr, "mamori rules: out of memory\n");
		rc = 1;
		goto out;
	}
	arena_init(&a, 0, 0);
	now = clock_now_us();
	for (int fi = first; fi < argc; fi++) {
		char *text;
		size_t len, pos = 0, start, n;

		if (read_all(argv[fi], &text, &len) < 0) {
			fprintf(stderr, "mamori rules: %s: cannot read: %s\n", argv[fi],
				strerror(errno));
			rc = 1;
			continue;
		}
		t.file = argv[fi];
		t.rec = 0;
		while (next_record(text, len, &pos, &start, &n)) {
			uint32_t out[64];
			size_t nm = 0;

			t.rec++;
			events++;
			event_clear(ev);
			/* One receive time for the run: what a stamp without a
			 * year (RFC 3164) is read against, as serve does. */
			ev->recv_us = now;
			arena_reset(&a);
			pipeline_parse_record(text[start] == '{' ? RAW_JSON : RAW_SYSLOG,
					      text + start, n, ev, &a);
			if (sigma_match(rs, c, ev, out, 64, &nm) < 0)
				continue;
			if (nm)
				matched++;
			for (size_t k = 0; k < nm; k++)
				if (sigma_rule_generates(rs, out[k]))
					print_hit(&t, out[k]);
			sigma_corr_observe(cs, ev, out, nm, corr_emit, &t);
		}
		free(text);
	}
	arena_fini(&a);
	if (o.counts)
		for (uint32_t i = 0; i < sigma_ruleset_count(rs); i++)
			if (t.hits[i])
				printf("%s %llu\n", sigma_ruleset_rule(rs, i)->id,
				       (unsigned long long)t.hits[i]);
	fprintf(stderr, "%zu rules loaded (%zu unsupported, %zu errors); %zu events, %zu matched\n",
		counts[0], counts[1], counts[2], events, matched);
out:
	free(t.hits);
	free(ev);
	sigma_corr_state_free(cs);
	if (c)
		sigma_ctx_put(rs, c);
	sigma_ruleset_unref(rs);
	return rc;
}

int cli_rules_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		FILE *f = argc < 2 ? stderr : stdout;

		fprintf(f, "usage: mamori rules check|test ...\n\n");
		check_usage(f);
		fprintf(f, "\n");
		test_usage(f);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(argv[1], "test"))
		return cmd_test(argc - 1, argv + 1);
	fprintf(stderr, "mamori rules: unknown subcommand '%s'\n", argv[1]);
	return 2;
}
