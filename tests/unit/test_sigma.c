/*
 * Unit tests for the Sigma engine: every modifier and detection form on
 * small rules against events parsed by the real JSON parser, each case run
 * twice (Hyperscan, and PCRE2 only) so both engines agree; loader statuses
 * (unsupported feature named, errors with a line); hostile rules (deep
 * nesting, huge lists, catastrophic regular expressions); logsource
 * routing; filters; field mappings; taxonomies; multi-valued (JSON array)
 * fields; correlations, their chains and their conditions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/event.h"
#include "core/hs_child.h"
#include "core/pipeline.h"
#include "detect/sigma.h"
#include "detect/sigma_corr.h"
#include "detect/sigma_int.h"

struct mcase {
	const char *detection;   /* YAML under `detection:` (2-space indent) */
	const char *event;       /* one JSON object */
	int want;
};

/* Generic JSON events keep their own field names; rules without a
 * logsource meet every event. */
static const struct mcase mcases[] = {
	/* plain equality, case-insensitive by default */
	{ "  sel:\n    Image: 'C:\\Windows\\cmd.exe'\n  condition: sel",
	  "{\"Image\":\"c:\\\\windows\\\\CMD.EXE\"}", 1 },
	{ "  sel:\n    Image: 'C:\\Windows\\cmd.exe'\n  condition: sel",
	  "{\"Image\":\"C:\\\\Windows\\\\cmd.exe.bak\"}", 0 },
	/* numbers compare as text */
	{ "  sel:\n    EventID: 4688\n  condition: sel", "{\"EventID\":4688}", 1 },
	{ "  sel:\n    EventID: 4688\n  condition: sel", "{\"EventID\":46880}", 0 },
	/* lists are OR */
	{ "  sel:\n    a:\n      - x\n      - y\n  condition: sel", "{\"a\":\"y\"}", 1 },
	/* maps are AND */
	{ "  sel:\n    a: x\n    b: y\n  condition: sel", "{\"a\":\"x\",\"b\":\"z\"}", 0 },
	{ "  sel:\n    a: x\n    b: y\n  condition: sel", "{\"a\":\"x\",\"b\":\"y\"}", 1 },
	/* list of maps is OR of ANDs */
	{ "  sel:\n    - a: x\n      b: y\n    - c: z\n  condition: sel", "{\"c\":\"Z\"}", 1 },
	/* wildcards */
	{ "  sel:\n    a: 'foo*bar'\n  condition: sel", "{\"a\":\"foo-anything-BAR\"}", 1 },
	{ "  sel:\n    a: 'foo?bar'\n  condition: sel", "{\"a\":\"fooXbar\"}", 1 },
	{ "  sel:\n    a: 'foo?bar'\n  condition: sel", "{\"a\":\"fooXYbar\"}", 0 },
	/* escaped wildcard is literal */
	{ "  sel:\n    a: 'foo\\*bar'\n  condition: sel", "{\"a\":\"fooXbar\"}", 0 },
	{ "  sel:\n    a: 'foo\\*bar'\n  condition: sel", "{\"a\":\"foo*bar\"}", 1 },
	/* backslash before another character is itself */
	{ "  sel:\n    a: 'C:\\Temp\\x*'\n  condition: sel", "{\"a\":\"C:\\\\Temp\\\\x.exe\"}", 1 },
	/* ...but before a star it makes the star literal */
	{ "  sel:\n    a: 'C:\\Temp\\*'\n  condition: sel", "{\"a\":\"C:\\\\Temp\\\\x.exe\"}", 0 },
	/* \\ is one backslash, then a wildcard */
	{ "  sel:\n    a: 'x\\\\*'\n  condition: sel", "{\"a\":\"x\\\\yz\"}", 1 },
	/* contains / startswith / endswith */
	{ "  sel:\n    a|contains: 'needle'\n  condition: sel", "{\"a\":\"hayNEEDLEhay\"}", 1 },
	{ "  sel:\n    a|startswith: 'pre'\n  condition: sel", "{\"a\":\"prefix\"}", 1 },
	{ "  sel:\n    a|startswith: 'pre'\n  condition: sel", "{\"a\":\"xprefix\"}", 0 },
	{ "  sel:\n    a|endswith: '.exe'\n  condition: sel", "{\"a\":\"x.EXE\"}", 1 },
	{ "  sel:\n    a|endswith: '.exe'\n  condition: sel", "{\"a\":\"x.exe.txt\"}", 0 },
	/* all */
	{ "  sel:\n    a|contains|all:\n      - one\n      - two\n  condition: sel",
	  "{\"a\":\"two and one\"}", 1 },
	{ "  sel:\n    a|contains|all:\n      - one\n      - two\n  condition: sel",
	  "{\"a\":\"only one\"}", 0 },
	/* cased */
	{ "  sel:\n    a|cased: 'Foo'\n  condition: sel", "{\"a\":\"foo\"}", 0 },
	{ "  sel:\n    a|cased: 'Foo'\n  condition: sel", "{\"a\":\"Foo\"}", 1 },
	/* re with sub-modifiers; re is case-sensitive by default */
	{ "  sel:\n    a|re: '^ab+c$'\n  condition: sel", "{\"a\":\"abbbc\"}", 1 },
	{ "  sel:\n    a|re: '^ab+c$'\n  condition: sel", "{\"a\":\"ABBC\"}", 0 },
	{ "  sel:\n    a|re|i: '^ab+c$'\n  condition: sel", "{\"a\":\"ABBC\"}", 1 },
	{ "  sel:\n    a|re|s: 'x.y'\n  condition: sel", "{\"a\":\"x\\ny\"}", 1 },
	{ "  sel:\n    a|re: 'x.y'\n  condition: sel", "{\"a\":\"x\\ny\"}", 0 },
	{ "  sel:\n    a|re|m: '^y$'\n  condition: sel", "{\"a\":\"x\\ny\"}", 1 },
	/* back-reference: not Hyperscan, so PCRE2 */
	{ "  sel:\n    a|re: '(ab)\\1'\n  condition: sel", "{\"a\":\"xxababyy\"}", 1 },
	{ "  sel:\n    a|re: '(ab)\\1'\n  condition: sel", "{\"a\":\"xxabyy\"}", 0 },
	/* cidr */
	{ "  sel:\n    ip|cidr: '10.0.0.0/8'\n  condition: sel", "{\"ip\":\"10.20.30.40\"}", 1 },
	{ "  sel:\n    ip|cidr: '10.0.0.0/8'\n  condition: sel", "{\"ip\":\"11.0.0.1\"}", 0 },
	{ "  sel:\n    ip|cidr: '2001:db8::/32'\n  condition: sel", "{\"ip\":\"2001:db8::1\"}", 1 },
	{ "  sel:\n    ip|cidr: '10.0.0.0/8'\n  condition: sel", "{\"ip\":\"not-an-ip\"}", 0 },
	{ "  sel:\n    ip|cidr: '10.0.0.0/8'\n  condition: sel", "{\"ip\":\"::ffff:10.1.2.3\"}", 1 },
	/* several ranges on one field: the value is parsed once an event */
	{ "  sel:\n    ip|cidr: '10.0.0.0/8'\n  filter:\n    ip|cidr:\n      - '192.168.0.0/16'\n      - '10.1.0.0/16'\n"
	  "  condition: sel and not filter", "{\"ip\":\"10.1.2.3\"}", 0 },
	{ "  sel:\n    ip|cidr: '10.0.0.0/8'\n  filter:\n    ip|cidr:\n      - '192.168.0.0/16'\n      - '10.1.0.0/16'\n"
	  "  condition: sel and not filter", "{\"ip\":\"10.2.0.1\"}", 1 },
	{ "  sel:\n    ip|cidr: '10.0.0.0/8'\n  condition: sel", "{\"ip\":[\"192.0.2.1\",\"10.0.0.1\"]}", 1 },
	/* base64: the encoded form of the value */
	{ "  sel:\n    a|base64: 'hello'\n  condition: sel", "{\"a\":\"aGVsbG8=\"}", 1 },
	/* base64offset|contains: the value at each of three offsets */
	{ "  sel:\n    a|base64offset|contains: 'http://'\n  condition: sel",
	  "{\"a\":\"eCBodHRwOi8v\"}", 1 },   /* "x http://" */
	{ "  sel:\n    a|base64offset|contains: 'http://'\n  condition: sel",
	  "{\"a\":\"aHR0cDovLw==\"}", 1 },   /* "http://" */
	{ "  sel:\n    a|base64offset|contains: 'http://'\n  condition: sel",
	  "{\"a\":\"eHggaHR0cDovLw==\"}", 1 }, /* "xx http://" */
	/* wide (UTF-16LE) then base64: PowerShell -EncodedCommand */
	{ "  sel:\n    a|wide|base64offset|contains: 'ping'\n  condition: sel",
	  "{\"a\":\"cABpAG4AZwA=\"}", 1 },
	/* windash: -x also as /x, en dash, em dash, horizontal bar */
	{ "  sel:\n    a|windash|contains: ' -enc '\n  condition: sel", "{\"a\":\"ps /enc x\"}", 1 },
	{ "  sel:\n    a|windash|contains: ' -enc '\n  condition: sel",
	  "{\"a\":\"ps \xe2\x80\x93" "enc x\"}", 1 },
	{ "  sel:\n    a|windash|contains: ' -enc '\n  condition: sel", "{\"a\":\"ps +enc x\"}", 0 },
	/* exists */
	{ "  sel:\n    a|exists: true\n  condition: sel", "{\"a\":\"\"}", 1 },
	{ "  sel:\n    a|exists: true\n  condition: sel", "{\"b\":\"x\"}", 0 },
	{ "  sel:\n    a|exists: false\n  condition: sel", "{\"b\":\"x\"}", 1 },
	/* null: absent or empty */
	{ "  sel:\n    a: null\n  condition: sel", "{\"b\":\"x\"}", 1 },
	{ "  sel:\n    a: null\n  condition: sel", "{\"a\":\"x\"}", 0 },
	/* empty string */
	{ "  sel:\n    a: ''\n  condition: sel", "{\"a\":\"\"}", 1 },
	/* numeric comparisons */
	{ "  sel:\n    n|gt: 10\n  condition: sel", "{\"n\":11}", 1 },
	{ "  sel:\n    n|gt: 10\n  condition: sel", "{\"n\":10}", 0 },
	{ "  sel:\n    n|gte: 10\n  condition: sel", "{\"n\":10}", 1 },
	{ "  sel:\n    n|lt: 1.5\n  condition: sel", "{\"n\":\"1.25\"}", 1 },
	{ "  sel:\n    n|lte: 1.5\n  condition: sel", "{\"n\":\"abc\"}", 0 },
	/* fieldref */
	{ "  sel:\n    a|fieldref: b\n  condition: sel", "{\"a\":\"Same\",\"b\":\"same\"}", 1 },
	{ "  sel:\n    a|fieldref: b\n  condition: sel", "{\"a\":\"x\",\"b\":\"y\"}", 0 },
	/* keywords: anywhere in the original record */
	{ "  keywords:\n    - 'mimikatz'\n  condition: keywords", "{\"x\":\"run Mimikatz now\"}", 1 },
	{ "  keywords:\n    - 'mimikatz'\n  condition: keywords", "{\"x\":\"benign\"}", 0 },
	/* conditions */
	{ "  sel:\n    a: x\n  filter:\n    b: y\n  condition: sel and not filter",
	  "{\"a\":\"x\",\"b\":\"y\"}", 0 },
	{ "  sel:\n    a: x\n  filter:\n    b: y\n  condition: sel and not filter",
	  "{\"a\":\"x\",\"b\":\"z\"}", 1 },
	{ "  sel_a:\n    a: x\n  sel_b:\n    b: y\n  condition: 1 of sel_*", "{\"b\":\"y\"}", 1 },
	{ "  sel_a:\n    a: x\n  sel_b:\n    b: y\n  condition: all of sel_*", "{\"b\":\"y\"}", 0 },
	{ "  sel_a:\n    a: x\n  sel_b:\n    b: y\n  condition: all of them",
	  "{\"a\":\"x\",\"b\":\"y\"}", 1 },
	{ "  sel:\n    a: x\n  condition: not sel", "{\"a\":\"q\"}", 1 },
	/* a rule vetoed by one identifier (`not known and ...`, 15 of them):
	 * known decides alone; with it false the filters still do */
	{ "  known:\n    img|endswith: .exe\n  filter_00:\n    f0: v0\n  filter_01:\n    f1: v1\n  filter_02:\n    f2: v2\n  filter_03:\n    f3: v3\n  filter_04:\n    f4: v4\n  filter_05:\n    f5: v5\n  filter_06:\n    f6: v6\n  filter_07:\n    f7: v7\n  filter_08:\n    f8: v8\n  filter_09:\n    f9: v9\n  filter_10:\n    f10: v10\n  filter_11:\n    f11: v11\n  filter_12:\n    f12: v12\n  filter_13:\n    f13: v13\n  condition: not known and not 1 of filter_*", "{\"img\":\"a.exe\"}", 0 },
	{ "  known:\n    img|endswith: .exe\n  filter_00:\n    f0: v0\n  filter_01:\n    f1: v1\n  filter_02:\n    f2: v2\n  filter_03:\n    f3: v3\n  filter_04:\n    f4: v4\n  filter_05:\n    f5: v5\n  filter_06:\n    f6: v6\n  filter_07:\n    f7: v7\n  filter_08:\n    f8: v8\n  filter_09:\n    f9: v9\n  filter_10:\n    f10: v10\n  filter_11:\n    f11: v11\n  filter_12:\n    f12: v12\n  filter_13:\n    f13: v13\n  condition: not known and not 1 of filter_*", "{\"img\":\"a.dat\"}", 1 },
	{ "  known:\n    img|endswith: .exe\n  filter_00:\n    f0: v0\n  filter_01:\n    f1: v1\n  filter_02:\n    f2: v2\n  filter_03:\n    f3: v3\n  filter_04:\n    f4: v4\n  filter_05:\n    f5: v5\n  filter_06:\n    f6: v6\n  filter_07:\n    f7: v7\n  filter_08:\n    f8: v8\n  filter_09:\n    f9: v9\n  filter_10:\n    f10: v10\n  filter_11:\n    f11: v11\n  filter_12:\n    f12: v12\n  filter_13:\n    f13: v13\n  condition: not known and not 1 of filter_*", "{\"img\":\"a.dat\",\"f13\":\"v13\"}", 0 },
	{ "  known:\n    img|endswith: .exe\n  filter_00:\n    f0: v0\n  filter_01:\n    f1: v1\n  filter_02:\n    f2: v2\n  filter_03:\n    f3: v3\n  filter_04:\n    f4: v4\n  filter_05:\n    f5: v5\n  filter_06:\n    f6: v6\n  filter_07:\n    f7: v7\n  filter_08:\n    f8: v8\n  filter_09:\n    f9: v9\n  filter_10:\n    f10: v10\n  filter_11:\n    f11: v11\n  filter_12:\n    f12: v12\n  filter_13:\n    f13: v13\n  condition: not known and not 1 of filter_*", "{\"img\":\"a.exe\",\"f13\":\"v13\"}", 0 },
	{ "  sel:\n    a: x\n  condition:\n    - sel\n    - not sel", "{\"a\":\"q\"}", 1 },
	/* a value containing regex metacharacters is literal */
	{ "  sel:\n    a|contains: '(.+)[x]$'\n  condition: sel", "{\"a\":\"z(.+)[x]$z\"}", 1 },
	{ "  sel:\n    a|contains: '(.+)[x]$'\n  condition: sel", "{\"a\":\"zz\"}", 0 },
	/* a JSON array (multi-valued field) matches when any element does */
	{ "  sel:\n    answers: '127.0.0.1'\n  condition: sel",
	  "{\"answers\":[\"192.0.2.53\", \"127.0.0.1\"]}", 1 },
	{ "  sel:\n    answers: '127.0.0.1'\n  condition: sel",
	  "{\"answers\":[\"192.0.2.53\", \"127.0.0.10\"]}", 0 },
	{ "  sel:\n    answers|startswith: '192.'\n    answers|endswith: '.53'\n  condition: sel",
	  "{\"answers\":[\"10.0.0.1\",\"192.0.2.53\"]}", 1 },
	/* elements are decoded: a\\x00 in JSON is the four bytes a\x00 */
	{ "  sel:\n    answers|endswith: '\\x00'\n  condition: sel",
	  "{\"answers\":[\"192.0.2.53\",\"a\\\\x00\"]}", 1 },
	{ "  sel:\n    p|endswith: '\\cmd.exe'\n  condition: sel",
	  "{\"p\":[\"C:\\\\Windows\\\\cmd.exe\"]}", 1 },
	{ "  sel:\n    p|endswith: '\\cmd.exe'\n  condition: sel",
	  "{\"p\":[\"C:\\\\Windows\\\\cmd.exe\",\"x\"]}", 1 },
	{ "  sel:\n    a: '\u00e9t\u00e9 \U0001F600'\n  condition: sel",
	  "{\"a\":[\"x\",\"\\u00e9t\\u00E9 \\ud83d\\ude00\"]}", 1 },
	/* as an exception: one element is enough to suppress */
	{ "  sel:\n    q: pool.example\n  filter:\n    answers:\n      - '0.0.0.0'\n"
	  "      - '127.0.0.1'\n  condition: sel and not filter",
	  "{\"q\":\"pool.example\",\"answers\":[\"192.0.2.53\",\"0.0.0.0\"]}", 0 },
	{ "  sel:\n    q: pool.example\n  filter:\n    answers:\n      - '0.0.0.0'\n"
	  "      - '127.0.0.1'\n  condition: sel and not filter",
	  "{\"q\":\"pool.example\",\"answers\":[\"192.0.2.53\",\"192.0.2.54\"]}", 1 },
	/* numbers, CIDR and field references per element */
	{ "  sel:\n    ports|gt: 1000\n  condition: sel", "{\"ports\":[80, 8080]}", 1 },
	{ "  sel:\n    ports|gt: 1000\n  condition: sel", "{\"ports\":[80, 443]}", 0 },
	{ "  sel:\n    ips|cidr: 10.0.0.0/8\n  condition: sel",
	  "{\"ips\":[\"192.0.2.1\",\"10.1.2.3\"]}", 1 },
	{ "  sel:\n    ips|fieldref: src\n  condition: sel",
	  "{\"ips\":[\"192.0.2.1\",\"10.1.2.3\"],\"src\":\"10.1.2.3\"}", 1 },
	/* a known (schema) field given several values */
	{ "  sel:\n    dns.answers.data: 198.51.100.7\n  condition: sel",
	  "{\"dns.answers.data\":[\"198.51.100.6\",\"198.51.100.7\"]}", 1 },
	/* nulls are no value; nested values are their JSON text */
	{ "  sel:\n    a: x\n  condition: sel", "{\"a\":[null, \"x\"]}", 1 },
	{ "  sel:\n    a: 'null'\n  condition: sel", "{\"a\":[null]}", 0 },
	{ "  sel:\n    a|contains: '\"k\":\"v\"'\n  condition: sel",
	  "{\"a\":[[\"x\"],{\"k\":\"v\"}]}", 1 },
	/* keywords look into elements too */
	{ "  keywords:\n    - '\\evil.exe'\n  condition: keywords",
	  "{\"a\":[\"x\",\"C:\\\\evil.exe\"]}", 1 },
	/* text that only looks like an array is one value */
	{ "  sel:\n    a: '[not json]'\n  condition: sel", "{\"a\":\"[not json]\"}", 1 },
	{ "  sel:\n    a|startswith: '[x'\n  condition: sel", "{\"a\":\"[x, y]\"}", 1 },
};

static struct sigma_ruleset *build_one(const char *text, int pcre,
				       enum sigma_file_status *st, struct buf *why)
{
	struct sigma_builder *b = sigma_builder_new();
	struct buf err;
	struct sigma_ruleset *rs;

	assert_non_null(b);
	buf_reset(why);
	*st = sigma_builder_add_text(b, "t.yml", text, strlen(text), why);
	buf_cstr(why);
	buf_init(&err, 4096);
	rs = sigma_builder_finish(b, pcre, &err);
	buf_fini(&err);
	return rs;
}

static size_t match_json(struct sigma_ruleset *rs, const char *json)
{
	struct event *ev = calloc(1, sizeof(*ev));
	struct arena a;
	struct sigma_ctx *c = sigma_ctx_get(rs);
	uint32_t out[16];
	size_t n = 0;

	assert_non_null(ev);
	assert_non_null(c);
	arena_init(&a, 0, 0);
	event_clear(ev);
	pipeline_parse_record(RAW_JSON, json, strlen(json), ev, &a);
	assert_int_equal(sigma_match(rs, c, ev, out, 16, &n), 0);
	sigma_ctx_put(rs, c);
	arena_fini(&a);
	free(ev);
	return n;
}

/* The context's cache of scanned values answers a repeated value exactly
 * as a scan does: the same events matched again (from the cache), values
 * with more hits than an entry keeps, values longer than an entry keeps,
 * and the same value in two fields with different databases. */
static void test_value_cache(void **state)
{
	static const char rules[] =
		"title: many contains\nid: 11111111-1111-4111-8111-111111111111\n"
		"detection:\n  sel:\n    cmd|contains:\n"
		"      - 'alpha'\n      - 'bravo'\n      - 'charlie'\n      - 'delta'\n"
		"      - 'echo'\n      - 'foxtrot'\n  condition: sel\n"
		"---\n"
		"title: letters\nid: 22222222-2222-4222-8222-222222222222\n"
		"detection:\n  sel:\n    cmd|contains|all:\n"
		"      - 'a'\n      - 'b'\n      - 'c'\n      - 'd'\n      - 'e'\n      - 'f'\n"
		"      - 'g'\n      - 'h'\n      - 'i'\n      - 'j'\n      - 'k'\n      - 'l'\n"
		"      - 'm'\n      - 'n'\n      - 'o'\n      - 'p'\n  condition: sel\n"
		"---\n"
		"title: other field\nid: 33333333-3333-4333-8333-333333333333\n"
		"detection:\n  sel:\n    img|endswith:\n"
		"      - '\\cmd.exe'\n      - '\\alpha'\n      - '\\x.exe'\n      - '\\y.exe'\n"
		"  condition: sel\n";
	static const struct { const char *json; size_t want; } ev[] = {
		{ "{\"cmd\":\"run alpha now\"}", 1 },
		{ "{\"cmd\":\"nothing here\"}", 0 },
		{ "{\"cmd\":\"abcdefghijklmnop\"}", 1 },
		{ "{\"cmd\":\"abcdefghijklmno\"}", 0 },
		{ "{\"cmd\":\"abcdefghijklmnop alpha\"}", 2 },
		{ "{\"cmd\":\"x\\\\alpha\",\"img\":\"x\\\\alpha\"}", 2 },
		{ "{\"img\":\"C:\\\\run alpha now\"}", 0 },
		{ "{\"img\":\"C:\\\\cmd.exe\"}", 1 },
		/* endswith: the strings occur, but not at the end (Hyperscan
		 * reports them; only a hit ending the value counts), then also at
		 * the end, and in other case */
		{ "{\"img\":\"C:\\\\cmd.exe\\\\x.exe.bak\"}", 0 },
		{ "{\"img\":\"C:\\\\cmd.exe\\\\y.exe\"}", 1 },
		{ "{\"img\":\"\\\\alpha\\\\alpha\"}", 1 },
		{ "{\"img\":\"D:\\\\CMD.EXE\"}", 1 },
		{ "{\"cmd\":\"" "................................................................"
		  "................................................................ echo\"}", 1 },
		{ "{\"cmd\":\"" "................................................................"
		  "................................................................ ecko\"}", 0 },
		{ "{\"cmd\":[\"zulu\",\"delta\"]}", 1 },
		{ "{\"cmd\":[\"zulu\",\"yankee\"]}", 0 },
	};
	struct sigma_builder *b = sigma_builder_new();
	struct sigma_ruleset *rs;
	struct buf why, err;

	(void)state;
	buf_init(&why, 256);
	buf_init(&err, 256);
	assert_non_null(b);
	assert_int_equal(sigma_builder_add_text(b, "t.yml", rules, sizeof(rules) - 1, &why),
			 SIGMA_LOADED);
	for (int pcre = 0; pcre <= 1; pcre++) {
		if (pcre) {
			b = sigma_builder_new();
			assert_non_null(b);
			assert_int_equal(sigma_builder_add_text(b, "t.yml", rules, sizeof(rules) - 1,
								&why), SIGMA_LOADED);
		}
		rs = sigma_builder_finish(b, pcre, &err);
		assert_non_null(rs);
		for (int pass = 0; pass < 3; pass++)
			for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
				size_t k = pass == 2 ? sizeof(ev) / sizeof(ev[0]) - 1 - i : i;

				if (match_json(rs, ev[k].json) != ev[k].want)
					fail_msg("pass %d pcre %d: %s: want %zu", pass, pcre, ev[k].json,
						 ev[k].want);
			}
		sigma_ruleset_unref(rs);
	}
	buf_fini(&why);
	buf_fini(&err);
}

/* An event and how many rules it must meet. */
struct jcase {
	const char *json;
	size_t want;
};

/* The rules (n bytes of YAML) as a set: Hyperscan, or PCRE2 only. */
static struct sigma_ruleset *set_of(const char *rules, size_t n, int pcre)
{
	struct sigma_builder *b = sigma_builder_new();
	struct sigma_ruleset *rs;
	struct buf why, err;

	buf_init(&why, 256);
	buf_init(&err, 256);
	assert_non_null(b);
	assert_int_equal(sigma_builder_add_text(b, "t.yml", rules, n, &why), SIGMA_LOADED);
	rs = sigma_builder_finish(b, pcre, &err);
	if (!rs)
		fail_msg("%s", err.p);
	buf_fini(&why);
	buf_fini(&err);
	return rs;
}

/* Each case against rs, passes times over (the value cache records a
 * value on its second sighting and answers from the third). */
static void check_cases(struct sigma_ruleset *rs, const struct jcase *ev, size_t n,
			int passes, int pcre)
{
	for (int pass = 0; pass < passes; pass++)
		for (size_t i = 0; i < n; i++)
			if (match_json(rs, ev[i].json) != ev[i].want)
				fail_msg("pass %d pcre %d: %s: want %zu", pass, pcre, ev[i].json,
					 ev[i].want);
}

/* Expressions tested through a gate (sigma_re_gate): a field with enough
 * plain strings to have its database split, and on it a regex, a wildcard
 * value, a startswith and an equals whose gates join the strings, and a
 * regex without a gate. Each gate hit is a candidate only: values that
 * hold the gate but do not match, hold it twice, hold it in another case,
 * or in one element of an array; each answer three times (the value cache
 * records on the second sighting and answers the third), Hyperscan and
 * PCRE2 alike. */
static void test_gated_expressions(void **state)
{
	static const char tail[] =
		"---\ntitle: gated re\nid: 44444444-4444-4444-8444-444444444441\n"
		"detection:\n  sel:\n    cmd|re: 'cmd\\.exe /c .*>\\s*\\\\\\\\'\n  condition: sel\n"
		"---\ntitle: gated wildcard\nid: 44444444-4444-4444-8444-444444444442\n"
		"detection:\n  sel:\n    cmd: '*powershell* -enc *'\n  condition: sel\n"
		"---\ntitle: gated startswith\nid: 44444444-4444-4444-8444-444444444443\n"
		"detection:\n  sel:\n    cmd|startswith: 'rundll32.exe '\n  condition: sel\n"
		"---\ntitle: gated equals\nid: 44444444-4444-4444-8444-444444444444\n"
		"detection:\n  sel:\n    cmd: 'net user guest /active:yes'\n  condition: sel\n"
		"---\ntitle: no gate\nid: 44444444-4444-4444-8444-444444444445\n"
		"detection:\n  sel:\n    cmd|re: '\\s-[xyz]\\s'\n  condition: sel\n";
	static const struct jcase ev[] = {
		/* the regex is case-sensitive, its gate is not */
		{ "{\"cmd\":\"C:\\\\Windows\\\\CMD.EXE /C dir > \\\\\\\\host\\\\share\"}", 0 },
		{ "{\"cmd\":\"cmd.exe /c dir >  \\\\\\\\host\\\\share\"}", 1 },
		{ "{\"cmd\":\"cmd.exe /c dir > out.txt\"}", 0 },
		{ "{\"cmd\":\"cmd.exe /c a > b; cmd.exe /c c > \\\\\\\\h\\\\s\"}", 1 },
		{ "{\"cmd\":\"x PowerShell.exe -enc AAAA\"}", 1 },
		{ "{\"cmd\":\"powershell -noenc x\"}", 0 },
		{ "{\"cmd\":\"RUNDLL32.EXE shell32.dll\"}", 1 },
		{ "{\"cmd\":\"x rundll32.exe shell32.dll\"}", 0 },
		{ "{\"cmd\":\"net user guest /active:yes\"}", 1 },
		{ "{\"cmd\":\"net user guest /active:yes \"}", 0 },
		{ "{\"cmd\":\"run -y now\"}", 1 },
		{ "{\"cmd\":\"filler0007x and rundll32.exe \"}", 1 },
		{ "{\"cmd\":\"rundll32.exe cmd.exe /c x > \\\\\\\\s\\\\t\"}", 2 },
		{ "{\"cmd\":[\"cmd.exe /c x > y\",\"cmd.exe /c x > \\\\\\\\a\\\\b\"]}", 1 },
		{ "{\"cmd\":[\"cmd.exe /c x > \\\\\\\\a\\\\b\",\"zzz\"]}", 1 },
		{ "{\"cmd\":[\"cmd.exe /c x > y\",\"zzz\"]}", 0 },
	};
	struct buf rules;

	(void)state;
	buf_init(&rules, 0);
	assert_int_equal(buf_puts(&rules, "title: filler\nid: 44444444-4444-4444-8444-444444444440\n"
					  "detection:\n  sel:\n    cmd|contains:\n"), 0);
	for (int i = 0; i < 600; i++)
		assert_int_equal(buf_printf(&rules, "      - 'filler%04dx'\n", i), 0);
	assert_int_equal(buf_puts(&rules, "  condition: sel\n"), 0);
	assert_int_equal(buf_puts(&rules, tail), 0);
	for (int pcre = 0; pcre <= 1; pcre++) {
		struct sigma_ruleset *rs = set_of(rules.p, rules.len, pcre);

		if (!pcre) {
			/* The field's database is split, and gates are in it. */
			const struct sigma_fdb *f = NULL;
			uint32_t n_gated = 0;

			for (uint32_t i = 0; i < rs->n_buckets; i++)
				for (uint32_t k = 0; k < rs->buckets[i].n_fdbs; k++)
					if (!strcmp(rs->fields[rs->buckets[i].fdbs[k].field].name, "cmd"))
						f = &rs->buckets[i].fdbs[k];
			assert_non_null(f);
			assert_non_null(f->db2);
			assert_non_null(f->gated);
			for (uint32_t i = 0; i < f->n; i++)
				n_gated += f->gated[i];
			assert_int_equal(n_gated, 4);
		}
		check_cases(rs, ev, sizeof(ev) / sizeof(ev[0]), 3, pcre);
		sigma_ruleset_unref(rs);
	}
	buf_fini(&rules);
}

/* A field with fewer than four plain strings is tested string by string,
 * not scanned (sigma_fdb.direct): ends with (also occurring before the
 * end), starts with, equals, contains, cased and not, as both engines
 * answer them; a long value is scanned still. */
static void test_direct_strings(void **state)
{
	static const char rules[] =
		"title: ends\nid: 55555555-5555-4555-8555-555555555551\n"
		"detection:\n  sel:\n    img|endswith: '\\cmd.exe'\n  condition: sel\n"
		"---\ntitle: starts or equals\nid: 55555555-5555-4555-8555-555555555552\n"
		"detection:\n  sel:\n    dir|startswith: 'C:\\Temp\\'\n  sel2:\n    dir: 'D:\\x'\n"
		"  condition: sel or sel2\n"
		"---\ntitle: cased contains\nid: 55555555-5555-4555-8555-555555555553\n"
		"detection:\n  sel:\n    msg|contains|cased: 'Foo'\n  condition: sel\n";
	static const struct jcase ev[] = {
		{ "{\"img\":\"C:\\\\Windows\\\\CMD.EXE\"}", 1 },
		{ "{\"img\":\"C:\\\\Windows\\\\cmd.exe\\\\x.txt\"}", 0 },
		{ "{\"img\":\"cmd.exe\"}", 0 },
		{ "{\"dir\":\"c:\\\\temp\\\\a\"}", 1 },
		{ "{\"dir\":\"x c:\\\\temp\\\\a\"}", 0 },
		{ "{\"dir\":\"d:\\\\X\"}", 1 },
		{ "{\"dir\":\"d:\\\\X \"}", 0 },
		{ "{\"msg\":\"a Foo b\"}", 1 },
		{ "{\"msg\":\"a foo b\"}", 0 },
		{ "{\"msg\":\"\"}", 0 },
		{ "{\"img\":[\"a\",\"b\\\\cmd.exe\"]}", 1 },
		/* longer than SIGMA_DIRECT_MAX_VALUE: scanned after all */
		{ "{\"img\":\"C:\\\\Program Files\\\\Some Vendor Incorporated\\\\Some Product Suite\\\\bin\\\\x64\\\\CMD.EXE\"}", 1 },
		{ "{\"img\":\"C:\\\\Program Files\\\\Some Vendor Incorporated\\\\Some Product Suite\\\\bin\\\\cmd.exe\\\\x64\"}", 0 },
	};

	(void)state;
	for (int pcre = 0; pcre <= 1; pcre++) {
		struct sigma_ruleset *rs = set_of(rules, sizeof(rules) - 1, pcre);

		if (!pcre) {
			uint32_t n_direct = 0;

			for (uint32_t i = 0; i < rs->n_buckets; i++)
				for (uint32_t k = 0; k < rs->buckets[i].n_fdbs; k++)
					n_direct += rs->buckets[i].fdbs[k].direct;
			assert_int_equal(n_direct, 3);
		}
		check_cases(rs, ev, sizeof(ev) / sizeof(ev[0]), 1, pcre);
		sigma_ruleset_unref(rs);
	}
}

/* Per-event marks are 16-bit generations: past 65,535 events on one
 * context they start again from cleared arrays. A predicate hit only in
 * the first 65,535 events keeps the last generation it was marked with;
 * the last event of the next 65,535 has that generation again, and a mark
 * left standing would veto its match. */
static void test_stamp_wrap(void **state)
{
	static const char rules[] =
		"title: bravo not alpha\nid: 22222222-2222-4222-8222-222222222222\n"
		"detection:\n  sel:\n    cmd|contains: 'bravo'\n  filter:\n    cmd|contains: 'alpha'\n"
		"  condition: sel and not filter\n"
		"---\n"
		"title: charlie\nid: 33333333-3333-4333-8333-333333333333\n"
		"detection:\n  sel:\n    cmd|contains: 'charlie'\n  condition: sel\n";
	static const char *const json[2] = { "{\"cmd\":\"alpha charlie\"}",
					     "{\"cmd\":\"bravo\"}" };
	struct event *ev = calloc(2, sizeof(*ev));
	enum sigma_file_status st;
	struct sigma_ruleset *rs;
	struct sigma_ctx *c;
	struct arena a;
	struct buf why;

	(void)state;
	buf_init(&why, 256);
	rs = build_one(rules, 0, &st, &why);
	assert_non_null(rs);
	assert_non_null(ev);
	arena_init(&a, 0, 0);
	for (int k = 0; k < 2; k++) {
		event_clear(&ev[k]);
		pipeline_parse_record(RAW_JSON, json[k], strlen(json[k]), &ev[k], &a);
	}
	c = sigma_ctx_get(rs);
	assert_non_null(c);
	for (uint32_t i = 0; i < 2 * 65535u; i++) {
		uint32_t out[4];
		size_t n = 0;

		assert_int_equal(sigma_match(rs, c, &ev[i >= 65535u], out, 4, &n), 0);
		if (n != 1)
			fail_msg("event %u: %zu matches", i, n);
	}
	sigma_ctx_put(rs, c);
	sigma_ruleset_unref(rs);
	arena_fini(&a);
	free(ev);
	buf_fini(&why);
}

/* Compiled databases kept on disk: a second build of the same rules takes
 * every database from the cache and matches the same; a pattern Hyperscan
 * refuses stays with PCRE2 after a cached build; a damaged file is a miss;
 * other rules miss. */
static struct sigma_ruleset *build_cached(const char *rules, const char *dir)
{
	struct sigma_builder *b = sigma_builder_new();
	struct sigma_ruleset *rs;
	struct buf why, err;

	assert_non_null(b);
	buf_init(&why, 256);
	buf_init(&err, 256);
	assert_int_equal(sigma_builder_add_text(b, "t.yml", rules, strlen(rules), &why),
			 SIGMA_LOADED);
	assert_int_equal(sigma_builder_set_hs_cache(b, dir), 0);
	rs = sigma_builder_finish(b, 0, &err);
	assert_non_null(rs);
	buf_fini(&why);
	buf_fini(&err);
	return rs;
}

/* Two rules, one with a pattern Hyperscan refuses (a back-reference). */
static const char cache_rules[] =
	"title: a\nid: 44444444-4444-4444-8444-444444444444\ndetection:\n  sel:\n"
	"    cmd|contains:\n      - 'alpha'\n      - 'bravo'\n  condition: sel\n"
	"---\n"
	"title: backref\nid: 55555555-5555-4555-8555-555555555555\ndetection:\n  sel:\n"
	"    cmd|re: '(ab)c\\1'\n  condition: sel\n";

/* Removes the files of dir and dir; how many files there were. */
static int rm_cache_dir(const char *dir)
{
	char path[512];
	struct dirent *e;
	DIR *d = opendir(dir);
	int files = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		assert_int_equal(unlink(path), 0);
		files++;
	}
	closedir(d);
	assert_int_equal(rmdir(dir), 0);
	return files;
}

static void test_hs_cache(void **state)
{
	const char *rules = cache_rules;
	static const char other[] =
		"title: c\nid: 66666666-6666-4666-8666-666666666666\ndetection:\n  sel:\n"
		"    cmd|contains: 'charlie'\n  condition: sel\n";
	char dir[] = "/tmp/mamori-hscache-XXXXXX", path[512];
	struct sigma_ruleset *rs;
	uint32_t hits, misses;
	DIR *d;
	struct dirent *e;

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (int round = 0; round < 4; round++) {
		if (round == 2) {
			/* Damage every cached file. */
			d = opendir(dir);
			assert_non_null(d);
			while ((e = readdir(d)) != NULL) {
				FILE *f;

				if (e->d_name[0] == '.')
					continue;
				snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
				f = fopen(path, "r+");
				assert_non_null(f);
				fseek(f, 30, SEEK_SET);
				fputs("garbage", f);
				fclose(f);
			}
			closedir(d);
		}
		rs = build_cached(rules, dir);
		sigma_ruleset_hs_cache_stats(rs, &hits, &misses);
		if (round == 1 || round == 3) {
			assert_true(hits > 0);
			assert_int_equal(misses, 0);
		} else {
			assert_int_equal(hits, 0);
			assert_true(misses > 0);
		}
		assert_int_equal(match_json(rs, "{\"cmd\":\"x alpha\"}"), 1);
		assert_int_equal(match_json(rs, "{\"cmd\":\"abcab\"}"), 1);
		assert_int_equal(match_json(rs, "{\"cmd\":\"abcac\"}"), 0);
		assert_int_equal(match_json(rs, "{\"cmd\":\"charlie\"}"), 0);
		sigma_ruleset_unref(rs);
	}
	rs = build_cached(other, dir);
	sigma_ruleset_hs_cache_stats(rs, &hits, &misses);
	assert_int_equal(hits, 0);
	assert_int_equal(match_json(rs, "{\"cmd\":\"charlie\"}"), 1);
	sigma_ruleset_unref(rs);
	assert_true(rm_cache_dir(dir) >= 2);
}

/* Hyperscan compiles in a child (core/hs_child.h): a build asks one child
 * for the widths and every database and writes the cache; the pattern
 * Hyperscan's parser refuses (its width comes back so) goes to PCRE2.
 * When the child
 * dies at its first request, or none starts, the build compiles
 * in-process, writes the same cache and matches the same. */
static void test_hs_compiler_child(void **state)
{
	(void)state;
	/* Faults are injected into a forked child (an exec'd one starts
	 * without them): no other thread runs here. */
	hs_child_use_exec(NULL, NULL);
	for (int fault = 0; fault <= 2; fault++) {
		char dir[] = "/tmp/mamori-hschild-XXXXXX";
		unsigned c0, p0, c1, p1;
		struct sigma_ruleset *rs;

		assert_non_null(mkdtemp(dir));
		hs_child_set_fault(fault);
		hs_child_stats(&c0, &p0);
		rs = build_cached(cache_rules, dir);
		hs_child_stats(&c1, &p1);
		hs_child_set_fault(0);
		if (fault == 0) {
			/* The widths and the database. */
			assert_true(c1 - c0 >= 2);
			assert_int_equal(p1 - p0, 0);
		} else {
			assert_int_equal(c1 - c0, 0);
			assert_true(p1 - p0 >= 2);
		}
		assert_int_equal(match_json(rs, "{\"cmd\":\"x bravo\"}"), 1);
		assert_int_equal(match_json(rs, "{\"cmd\":\"abcab\"}"), 1);
		assert_int_equal(match_json(rs, "{\"cmd\":\"abcac\"}"), 0);
		assert_int_equal(match_json(rs, "{\"cmd\":\"charlie\"}"), 0);
		sigma_ruleset_unref(rs);
		assert_true(rm_cache_dir(dir) >= 1);
	}
	hs_child_use_exec("/proc/self/exe", HS_CHILD_EXEC_ARG);
}

static void test_modifiers(void **state)
{
	struct buf why, text;

	(void)state;
	buf_init(&why, 1 << 16);
	buf_init(&text, 1 << 16);
	for (size_t i = 0; i < sizeof(mcases) / sizeof(mcases[0]); i++) {
		for (int pcre = 0; pcre < 2; pcre++) {
			enum sigma_file_status st;
			struct sigma_ruleset *rs;
			size_t n;

			buf_reset(&text);
			buf_printf(&text, "title: t\nid: t-%zu\ndetection:\n%s\n",
				   i, mcases[i].detection);
			buf_cstr(&text);
			rs = build_one(text.p, pcre, &st, &why);
			if (st != SIGMA_LOADED || !rs)
				fail_msg("case %zu: not loaded: %s", i, why.p ? why.p : "");
			n = match_json(rs, mcases[i].event);
			if ((int)n != mcases[i].want)
				fail_msg("case %zu (%s): got %zu, want %d\n%s\n%s", i,
					 pcre ? "pcre" : "hyperscan", n, mcases[i].want,
					 mcases[i].detection, mcases[i].event);
			sigma_ruleset_unref(rs);
		}
	}
	buf_fini(&why);
	buf_fini(&text);
}

struct lcase {
	const char *text;
	enum sigma_file_status want;
	const char *why;   /* substring of the reason */
};

static const struct lcase lcases[] = {
	{ "title: t\ndetection:\n  sel:\n    a|nosuchmod: x\n  condition: sel\n",
	  SIGMA_UNSUPPORTED, "4:5: modifier |nosuchmod" },
	{ "title: t\ndetection:\n  sel:\n    a|expand: '%unset%'\n  condition: sel\n",
	  SIGMA_UNSUPPORTED, "placeholder %unset% has no values configured" },
	{ "title: t\ndetection:\n  sel:\n    a: x\n  condition: sel | count() > 5\n",
	  SIGMA_UNSUPPORTED, "condition" },
	{ "title: t\ndetection:\n  sel:\n    a: x\n", SIGMA_ERROR, "no condition" },
	{ "title: t\ndetection:\n  sel:\n    a: x\n  condition: nosuch\n",
	  SIGMA_ERROR, "5:14: condition" },
	{ "detection:\n  sel:\n    a: x\n  condition: sel\n", SIGMA_ERROR, "no title" },
	{ "title: t\n", SIGMA_ERROR, "no detection" },
	{ "title: t\ndetection: [\n", SIGMA_ERROR, "" },
	{ "title: t\ndetection:\n  sel:\n    n|gt: abc\n  condition: sel\n",
	  SIGMA_ERROR, "needs a number" },
	{ "title: t\ndetection:\n  sel:\n    ip|cidr: 300.1.1.1/8\n  condition: sel\n",
	  SIGMA_ERROR, "|cidr" },
	{ "title: t\ndetection:\n  sel:\n    a|exists: maybe\n  condition: sel\n",
	  SIGMA_ERROR, "|exists" },
	{ "title: t\ndetection:\n  sel:\n    a|i: x\n  condition: sel\n",
	  SIGMA_ERROR, "need |re" },
	{ "title: t\ncorrelation:\n  type: nosuch\n  rules: [a]\n  timespan: 5m\n",
	  SIGMA_UNSUPPORTED, "correlation type nosuch" },
	{ "title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n",
	  SIGMA_ERROR, "needs a gt, gte or eq condition" },
	{ "title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: soon\n"
	  "  condition: {gte: 3}\n", SIGMA_ERROR, "timespan" },
	/* "fewer than" can only be decided when a window closes */
	{ "title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n"
	  "  condition: {lt: 3}\n", SIGMA_UNSUPPORTED, "only a lower bound" },
	{ "title: t\ncorrelation:\n  type: value_count\n  rules: [a]\n  timespan: 5m\n"
	  "  condition: {gte: 3}\n", SIGMA_ERROR, "needs condition.field" },
	{ "title: t\ncorrelation:\n  type: value_sum\n  rules: [a]\n  timespan: 5m\n"
	  "  condition: {field: [x, y], gt: 3}\n", SIGMA_ERROR, "takes one condition.field" },
	{ "title: t\ncorrelation:\n  type: value_avg\n  rules: [a]\n  timespan: 5m\n"
	  "  condition: {field: x, percentile: 50, gt: 3}\n", SIGMA_ERROR,
	  "belongs to value_percentile" },
	{ "title: t\ncorrelation:\n  type: value_percentile\n  rules: [a]\n  timespan: 5m\n"
	  "  condition: {field: x, percentile: 101, gt: 3}\n", SIGMA_ERROR, "0 to 100" },
	{ "title: t\ncorrelation:\n  type: value_percentile\n  rules: [a]\n  timespan: 5m\n"
	  "  condition: {field: x}\n", SIGMA_ERROR, "no gt, gte, lt, lte, eq or neq" },
	{ "title: t\ncorrelation:\n  type: temporal\n  rules: [a, b]\n  timespan: 5m\n"
	  "  condition: 'a and b'\n", SIGMA_UNSUPPORTED, "expression" },
	{ "title: t\ncorrelation:\n  type: temporal_ordered\n  rules: [a, b, c]\n"
	  "  timespan: 5m\n  condition: {gte: 2}\n", SIGMA_UNSUPPORTED, "other than all" },
	{ "title: t\ncorrelation:\n  type: temporal\n  rules: [a, b]\n  timespan: 5m\n"
	  "  condition: {gte: 3}\n", SIGMA_ERROR, "never hold" },
	{ "title: t\ncorrelation:\n  type: temporal\n  rules: [a]\n  timespan: 5m\n",
	  SIGMA_ERROR, "two rules or more" },
	/* taxonomies: sigma and ecs */
	{ "title: t\ntaxonomy: ocsf\ndetection:\n  sel:\n    a: x\n  condition: sel\n",
	  SIGMA_UNSUPPORTED, "2:11: taxonomy ocsf" },
	{ "title: t\ntaxonomy: ecs\ndetection:\n  sel:\n    a: x\n  condition: sel\n",
	  SIGMA_LOADED, "" },
};

static void test_load_status(void **state)
{
	struct buf why;

	(void)state;
	buf_init(&why, 1 << 16);
	for (size_t i = 0; i < sizeof(lcases) / sizeof(lcases[0]); i++) {
		struct sigma_builder *b = sigma_builder_new();
		enum sigma_file_status st;

		buf_reset(&why);
		st = sigma_builder_add_text(b, "t.yml", lcases[i].text,
					    strlen(lcases[i].text), &why);
		buf_cstr(&why);
		if (st != lcases[i].want || !strstr(why.p ? why.p : "", lcases[i].why))
			fail_msg("case %zu: status %d (want %d), why '%s' (want '%s')", i,
				 st, lcases[i].want, why.p ? why.p : "", lcases[i].why);
		sigma_builder_free(b);
	}
	buf_fini(&why);
}

/* Hostile rules: rejected or bounded, never a crash or a hang. */
static void test_hostile(void **state)
{
	struct buf t, why;
	enum sigma_file_status st;
	struct sigma_ruleset *rs;

	(void)state;
	buf_init(&t, 16 << 20);
	buf_init(&why, 1 << 16);
	/* 70,000 values in one item: over the bound, named. */
	buf_puts(&t, "title: t\ndetection:\n  sel:\n    a:\n");
	for (int i = 0; i < 70000; i++)
		buf_printf(&t, "      - v%d\n", i);
	buf_puts(&t, "  condition: sel\n");
	buf_cstr(&t);
	rs = build_one(t.p, 0, &st, &why);
	assert_int_equal(st, SIGMA_ERROR);
	assert_non_null(strstr(why.p, "more than 65536 values"));
	sigma_ruleset_unref(rs);
	/* Nesting past the bound. */
	buf_reset(&t);
	buf_puts(&t, "title: t\ndetection:\n  sel:\n");
	for (int i = 0; i < 20; i++)
		buf_printf(&t, "%*s-\n", 4 + 2 * i, "");
	buf_printf(&t, "%*s- a: x\n  condition: sel\n", 4 + 2 * 20, "");
	buf_cstr(&t);
	rs = build_one(t.p, 0, &st, &why);
	assert_int_not_equal(st, SIGMA_LOADED);
	sigma_ruleset_unref(rs);
	/* Catastrophic backtracking: Hyperscan does not backtrack; PCRE2 stops
	 * at its match limit. Both answer, and quickly. */
	for (int pcre = 0; pcre < 2; pcre++) {
		char ev[256];

		rs = build_one("title: t\ndetection:\n  sel:\n    a|re: '^(a+)+$'\n"
			       "  condition: sel\n", pcre, &st, &why);
		assert_int_equal(st, SIGMA_LOADED);
		memset(ev, 0, sizeof(ev));
		memcpy(ev, "{\"a\":\"", 6);
		memset(ev + 6, 'a', 40);
		memcpy(ev + 46, "!\"}", 3);
		assert_int_equal(match_json(rs, ev), 0);
		sigma_ruleset_unref(rs);
	}
	/* A condition that names 300 identifiers: over the bound. */
	buf_reset(&t);
	buf_puts(&t, "title: t\ndetection:\n");
	for (int i = 0; i < 300; i++)
		buf_printf(&t, "  s%d:\n    a: x\n", i);
	buf_puts(&t, "  condition: 1 of s*\n");
	buf_cstr(&t);
	rs = build_one(t.p, 0, &st, &why);
	assert_int_equal(st, SIGMA_ERROR);
	sigma_ruleset_unref(rs);
	buf_fini(&t);
	buf_fini(&why);
}

/* Logsource routing and field mapping with a Windows Sysmon event. */
static const char sysmon_ev[] =
	"{\"Event\":{\"System\":{\"Provider\":{\"#attributes\":{\"Name\":"
	"\"Microsoft-Windows-Sysmon\"}},\"EventID\":1,\"Channel\":"
	"\"Microsoft-Windows-Sysmon/Operational\",\"Computer\":\"ws1\"},"
	"\"EventData\":{\"Image\":\"C:\\\\Windows\\\\System32\\\\whoami.exe\","
	"\"CommandLine\":\"whoami /all\",\"User\":\"CORP\\\\bob\"}}}";

static void test_logsource(void **state)
{
	struct sigma_builder *b = sigma_builder_new();
	struct sigma_ruleset *rs;
	struct buf err;
	const char *rules =
		"title: proc\nid: r-proc\nlogsource: {product: windows, category: process_creation}\n"
		"detection:\n  sel:\n    Image|endswith: '\\whoami.exe'\n    Computer: ws1\n"
		"  condition: sel\n"
		"---\n"
		"title: file\nid: r-file\nlogsource: {product: windows, category: file_event}\n"
		"detection:\n  sel:\n    Image|endswith: '\\whoami.exe'\n  condition: sel\n"
		"---\n"
		"title: linux\nid: r-linux\nlogsource: {product: linux, category: process_creation}\n"
		"detection:\n  sel:\n    Image|endswith: '/whoami'\n  condition: sel\n"
		"---\n"
		"title: sysmon service\nid: r-svc\nlogsource: {product: windows, service: sysmon}\n"
		"detection:\n  sel:\n    EventID: 1\n  condition: sel\n";
	struct buf why;
	size_t n;

	(void)state;
	buf_init(&err, 4096);
	buf_init(&why, 4096);
	assert_int_equal(sigma_builder_add_builtin(b, 0, NULL, NULL, &err), 0);
	assert_int_equal(sigma_builder_add_text(b, "t.yml", rules, strlen(rules), &why),
			 SIGMA_LOADED);
	rs = sigma_builder_finish(b, 0, &err);
	assert_non_null(rs);
	n = match_json(rs, sysmon_ev);
	assert_int_equal(n, 2);   /* proc and the service rule, not file/linux */
	sigma_ruleset_unref(rs);
	buf_fini(&err);
	buf_fini(&why);
}

struct ecase {
	const char *ev;
	size_t want;
};

/* Each case's match count against rules, built once with Hyperscan and
 * once PCRE2 only, over `rounds` passes (the merged databases waited for
 * before the second). merged[mode], failed[mode]: the set's merge counts. */
static void run_cases(const char *rules, const struct ecase *cases, size_t n_cases,
		      int rounds, uint32_t merged[2], uint32_t failed[2])
{
	for (int pcre_only = 0; pcre_only < 2; pcre_only++) {
		struct sigma_builder *b = sigma_builder_new();
		struct sigma_ruleset *rs;
		struct buf err, why;

		buf_init(&err, 4096);
		buf_init(&why, 4096);
		assert_int_equal(sigma_builder_add_builtin(b, 0, NULL, NULL, &err), 0);
		assert_int_equal(sigma_builder_add_text(b, "t.yml", rules, strlen(rules), &why),
				 SIGMA_LOADED);
		rs = sigma_builder_finish(b, pcre_only, &err);
		assert_non_null(rs);
		for (int round = 0; round < rounds; round++) {
			if (round == 1)
				sigma_ruleset_merge_wait(rs);
			for (size_t i = 0; i < n_cases; i++) {
				size_t n = match_json(rs, cases[i].ev);

				if (n != cases[i].want)
					fail_msg("%s case %zu round %d: %zu matches, want %zu",
						 pcre_only ? "PCRE2" : "Hyperscan", i, round, n,
						 cases[i].want);
			}
		}
		sigma_ruleset_merge_stats(rs, &merged[pcre_only], &failed[pcre_only]);
		sigma_ruleset_unref(rs);
		buf_fini(&err);
		buf_fini(&why);
	}
}

/* A field that several buckets of an event's logsource look at is
 * scanned once, in a database merged from theirs (sigma_fdb_merged): the
 * keywords of `windows` and of process_creation, Image of both, and a
 * registry event's TargetObject for registry_event and registry_set (two
 * categories of one event). Each hit must still do what it did in its own
 * bucket's database: the counts are those of the PCRE2-only set, which
 * merges nothing, and those before the merges were ready. */
static void test_merged_databases(void **state)
{
	const char *rules =
		"title: w-kw\nid: w-kw\nlogsource: {product: windows}\n"
		"detection:\n  keywords:\n    - mimikatz\n    - sekurlsa\n  condition: keywords\n"
		"---\n"
		"title: p-kw\nid: p-kw\nlogsource: {product: windows, category: process_creation}\n"
		"detection:\n  keywords:\n    - 'perfc.dat'\n  condition: keywords\n"
		"---\n"
		"title: p-img\nid: p-img\nlogsource: {product: windows, category: process_creation}\n"
		"detection:\n  sel:\n    Image|endswith: '\\whoami.exe'\n  condition: sel\n"
		"---\n"
		"title: w-img\nid: w-img\nlogsource: {product: windows}\n"
		"detection:\n  sel:\n    Image|endswith:\n      - '\\whoami.exe'\n      - '\\net.exe'\n"
		"    CommandLine|contains: '/all'\n  condition: sel\n"
		"---\n"
		"title: reg-ev\nid: reg-ev\nlogsource: {product: windows, category: registry_event}\n"
		"detection:\n  sel:\n    TargetObject|contains: '\\CurrentVersion\\Run\\'\n"
		"  condition: sel\n"
		"---\n"
		"title: reg-set\nid: reg-set\nlogsource: {product: windows, category: registry_set}\n"
		"detection:\n  sel:\n    TargetObject|endswith: '\\Evil'\n  condition: sel\n";
#define PROC(img, cmd) \
	"{\"Event\":{\"System\":{\"Provider\":{\"#attributes\":{\"Name\":" \
	"\"Microsoft-Windows-Sysmon\"}},\"EventID\":1,\"Channel\":" \
	"\"Microsoft-Windows-Sysmon/Operational\",\"Computer\":\"ws1\"}," \
	"\"EventData\":{\"Image\":\"C:\\\\Windows\\\\System32\\\\" img "\"," \
	"\"CommandLine\":\"" cmd "\",\"User\":\"CORP\\\\bob\"}}}"
#define REG(key) \
	"{\"Event\":{\"System\":{\"Provider\":{\"#attributes\":{\"Name\":" \
	"\"Microsoft-Windows-Sysmon\"}},\"EventID\":13,\"Channel\":" \
	"\"Microsoft-Windows-Sysmon/Operational\",\"Computer\":\"ws1\"}," \
	"\"EventData\":{\"EventType\":\"SetValue\",\"Image\":\"C:\\\\x.exe\"," \
	"\"TargetObject\":\"HKU\\\\S-1\\\\Software\\\\Microsoft\\\\Windows\\\\" key "\"}}}"
	static const struct ecase cases[] = {
		{ PROC("whoami.exe", "whoami /all perfc.dat"), 3 },   /* p-kw p-img w-img */
		{ PROC("whoami.exe", "mimikatz whoami"), 2 },         /* w-kw p-img */
		{ PROC("net.exe", "net user /all"), 1 },              /* w-img */
		{ PROC("notepad.exe", "notepad sekurlsa perfc.dat"), 2 }, /* w-kw p-kw */
		{ PROC("notepad.exe", "notepad x.txt"), 0 },
		{ REG("CurrentVersion\\\\Run\\\\Evil"), 2 },          /* reg-ev reg-set */
		{ REG("CurrentVersion\\\\Run\\\\Good"), 1 },          /* reg-ev */
		{ REG("Other\\\\Evil"), 1 },                          /* reg-set */
	};
#undef PROC
#undef REG

	uint32_t merged[2], failed[2];

	(void)state;
	/* Round 0 asks for the merges (each source scanned meanwhile), round
	 * 1 scans them, round 2 answers from the value cache. */
	run_cases(rules, cases, sizeof(cases) / sizeof(cases[0]), 3, merged, failed);
	assert_int_equal(failed[0], 0);
	assert_int_equal(failed[1], 0);
	assert_true(merged[0] >= 3);   /* keywords, Image, TargetObject */
	assert_int_equal(merged[1], 0);
}

/* Overflow fields are found by their name's number (event_extra.xid,
 * schema.fields) when it has one and by hash when not, and both ways give
 * what the rules ask: a numbered EventData item, an item of no number, the
 * UserData spelling of a numbered item (the field's alt), the ECS spelling
 * Winlogbeat ships, an event without a plan (force) and with one. */
static void test_overflow_numbers(void **state)
{
	const char *rules =
		"title: img\nid: img\nlogsource: {product: windows, category: process_creation}\n"
		"detection:\n  sel:\n    Image|endswith: '\\whoami.exe'\n  condition: sel\n"
		"---\n"
		"title: custom\nid: custom\nlogsource: {product: windows, category: process_creation}\n"
		"detection:\n  sel:\n    FooCustomItem|contains: evil\n  condition: sel\n"
		"---\n"
		"title: both\nid: both\nlogsource: {product: windows}\n"
		"detection:\n  a:\n    Image|endswith: '\\whoami.exe'\n"
		"  b:\n    FooCustomItem: 'evil'\n  condition: a and not b\n";
#define SYSMON(items) \
	"{\"Event\":{\"System\":{\"Provider\":{\"#attributes\":{\"Name\":" \
	"\"Microsoft-Windows-Sysmon\"}},\"EventID\":1,\"Channel\":" \
	"\"Microsoft-Windows-Sysmon/Operational\"},\"EventData\":{" items "}}}"
#define ECS(part, items) \
	"{\"event\":{\"provider\":\"Microsoft-Windows-Sysmon\",\"code\":\"1\"}," \
	"\"winlog\":{\"channel\":\"Microsoft-Windows-Sysmon/Operational\"," \
	"\"" part "\":{" items "}}}"
	static const struct ecase cases[] = {
		{ SYSMON("\"Image\":\"C:\\\\w\\\\whoami.exe\""), 2 },                /* img both */
		{ SYSMON("\"Image\":\"C:\\\\w\\\\whoami.exe\",\"FooCustomItem\":\"evil\""), 2 }, /* img custom */
		{ SYSMON("\"FooCustomItem\":\"so evil\""), 1 },                             /* custom */
		{ SYSMON("\"FooCustomItem\":\"good\",\"Image\":\"C:\\\\x.exe\""), 0 },
		{ ECS("event_data", "\"Image\":\"C:\\\\w\\\\whoami.exe\""), 2 },
		{ ECS("user_data", "\"Image\":\"C:\\\\w\\\\whoami.exe\""), 2 },
		{ ECS("user_data", "\"Image\":\"C:\\\\w\\\\whoami.exe\",\"FooCustomItem\":\"evil\""), 2 },       /* img custom */
		{ ECS("event_data", "\"FooCustomItem\":\"evil\""), 1 },
	};
#undef SYSMON
#undef ECS
	uint32_t merged[2], failed[2];

	(void)state;
	run_cases(rules, cases, sizeof(cases) / sizeof(cases[0]), 2, merged, failed);
}

/* Filters beside the rules (the Sigma filters format): the filter's
 * condition is added to each rule it names, among the rules of its
 * logsource, so an exclusion reads `not selection` (as pySigma and
 * SigmaHQ's documentation write them). */
struct fcase {
	const char *filter;
	size_t want;   /* matches of r1 on sysmon_ev (user CORP\bob) */
};

static const struct fcase fcases[] = {
	/* exclusion */
	{ "title: admins\nlogsource: {product: windows, category: process_creation}\n"
	  "filter:\n  rules: [r1]\n  selection:\n    User|startswith: 'CORP\\bob'\n"
	  "  condition: not selection\n", 0 },
	{ "title: admins\nlogsource: {product: windows, category: process_creation}\n"
	  "filter:\n  rules: [r1]\n  selection:\n    User|startswith: 'CORP\\eve'\n"
	  "  condition: not selection\n", 1 },
	/* a plain condition keeps only what it selects */
	{ "title: only bob\nlogsource: {product: windows, category: process_creation}\n"
	  "filter:\n  rules: r1\n  selection:\n    User|startswith: 'CORP\\bob'\n"
	  "  condition: selection\n", 1 },
	{ "title: only eve\nlogsource: {product: windows, category: process_creation}\n"
	  "filter:\n  rules: [who]\n  selection:\n    User|startswith: 'CORP\\eve'\n"
	  "  condition: selection\n", 0 },   /* by name */
	/* a wider logsource contains the rule's */
	{ "title: admins\nlogsource: {product: windows}\n"
	  "filter:\n  rules: [r1]\n  selection:\n    User|startswith: 'CORP\\bob'\n"
	  "  condition: not selection\n", 0 },
	/* another logsource does not: the filter is not applied */
	{ "title: admins\nlogsource: {product: windows, category: file_event}\n"
	  "filter:\n  rules: [r1]\n  selection:\n    User|startswith: 'CORP\\bob'\n"
	  "  condition: not selection\n", 1 },
	/* a filter for other rules */
	{ "title: admins\nlogsource: {product: windows, category: process_creation}\n"
	  "filter:\n  rules: [r2, not-loaded]\n  selection:\n    User|startswith: 'CORP\\bob'\n"
	  "  condition: not selection\n", 1 },
	/* rules: any, every rule of the logsource */
	{ "title: admins\nlogsource: {product: windows, category: process_creation}\n"
	  "filter:\n  rules: any\n  selection:\n    User|startswith: 'CORP\\bob'\n"
	  "  condition: not selection\n", 0 },
};

static void test_filter(void **state)
{
	const char *rules =
		"title: who\nid: r1\nname: who\n"
		"logsource: {product: windows, category: process_creation}\n"
		"detection:\n  sel:\n    Image|endswith: '\\whoami.exe'\n  condition: sel\n";
	struct buf err, why;

	(void)state;
	buf_init(&err, 4096);
	buf_init(&why, 4096);
	for (size_t i = 0; i < sizeof(fcases) / sizeof(fcases[0]); i++) {
		struct sigma_builder *b = sigma_builder_new();
		struct sigma_ruleset *rs;
		const char *f = fcases[i].filter;
		size_t n;

		assert_non_null(b);
		sigma_builder_add_builtin(b, 0, NULL, NULL, &err);
		assert_int_equal(sigma_builder_add_text(b, "r.yml", rules, strlen(rules), &why),
				 SIGMA_LOADED);
		if (sigma_builder_add_text(b, "f.yml", f, strlen(f), &why) != SIGMA_LOADED)
			fail_msg("filter %zu not loaded: %s", i, buf_cstr(&why) < 0 ? "" : why.p);
		rs = sigma_builder_finish(b, 0, &err);
		assert_non_null(rs);
		n = match_json(rs, sysmon_ev);
		if (n != fcases[i].want)
			fail_msg("filter %zu: %zu matches, want %zu\n%s", i, n, fcases[i].want, f);
		sigma_ruleset_unref(rs);
	}
	buf_fini(&err);
	buf_fini(&why);
}

struct corr_seen {
	int fired;
	uint64_t count;
	char group[128];
};

static void on_corr(void *ctx, const struct sigma_corr_hit *hit, const struct event *ev)
{
	struct corr_seen *s = ctx;

	(void)ev;
	s->fired++;
	s->count = hit->count;
	snprintf(s->group, sizeof(s->group), "%s", hit->group);
}

/* Feeds JSON events with a timestamp (seconds) through match + correlate. */
static int feed(struct sigma_ruleset *rs, struct sigma_corr_state *cs,
		const char *json, int64_t ts_s, struct corr_seen *seen)
{
	struct event *ev = calloc(1, sizeof(*ev));
	struct arena a;
	struct sigma_ctx *c = sigma_ctx_get(rs);
	uint32_t out[16];
	size_t n = 0;
	int f;

	arena_init(&a, 0, 0);
	event_clear(ev);
	pipeline_parse_record(RAW_JSON, json, strlen(json), ev, &a);
	ev->ts_us = ts_s * 1000000;
	sigma_match(rs, c, ev, out, 16, &n);
	f = sigma_corr_observe(cs, ev, out, n, on_corr, seen);
	sigma_ctx_put(rs, c);
	arena_fini(&a);
	free(ev);
	return f;
}

static void test_correlation(void **state)
{
	struct sigma_builder *b = sigma_builder_new();
	struct sigma_ruleset *rs;
	struct sigma_corr_state *cs;
	struct corr_seen seen = { 0 };
	struct buf err, why;
	const char *text =
		"title: failed login\nid: base-fail\nname: failed_login\n"
		"detection:\n  sel:\n    outcome: failure\n  condition: sel\n"
		"---\n"
		"title: ok login\nname: ok_login\n"
		"detection:\n  sel:\n    outcome: success\n  condition: sel\n"
		"---\n"
		"title: brute force\nid: corr-count\ncorrelation:\n  type: event_count\n"
		"  rules: [failed_login]\n  group-by: [src]\n  timespan: 1m\n"
		"  condition: {gte: 3}\n"
		"---\n"
		"title: many users\nid: corr-users\ncorrelation:\n  type: value_count\n"
		"  rules: [base-fail]\n  group-by: [src]\n  timespan: 1m\n"
		"  condition: {field: user, gte: 2}\n"
		"---\n"
		"title: fail then success\nid: corr-ord\ncorrelation:\n  type: temporal_ordered\n"
		"  rules: [failed_login, ok_login]\n  group-by: [src]\n  timespan: 1m\n";
	uint32_t corr_count;

	(void)state;
	buf_init(&err, 4096);
	buf_init(&why, 4096);
	assert_int_equal(sigma_builder_add_text(b, "c.yml", text, strlen(text), &why),
			 SIGMA_LOADED);
	rs = sigma_builder_finish(b, 0, &err);
	assert_non_null(rs);
	corr_count = sigma_ruleset_find(rs, "corr-count")->index;
	/* The base rules are referenced by non-generating correlations. */
	assert_false(sigma_rule_generates(rs, sigma_ruleset_find(rs, "base-fail")->index));
	cs = sigma_corr_state_new(rs);
	assert_non_null(cs);
	/* Two failures for a, one for b: nothing yet (value_count sees user x
	 * twice for a: one distinct value). */
	feed(rs, cs, "{\"outcome\":\"failure\",\"src\":\"a\",\"user\":\"x\"}", 100, &seen);
	feed(rs, cs, "{\"outcome\":\"failure\",\"src\":\"b\",\"user\":\"x\"}", 101, &seen);
	feed(rs, cs, "{\"outcome\":\"failure\",\"src\":\"a\",\"user\":\"x\"}", 102, &seen);
	assert_int_equal(seen.fired, 0);
	/* A failure for a after the window: the first one has expired. */
	feed(rs, cs, "{\"outcome\":\"failure\",\"src\":\"a\",\"user\":\"x\"}", 161, &seen);
	assert_int_equal(seen.fired, 0);
	/* Third within a minute of the 102 and 161 ones: fires once, a second
	 * user fires value_count too. */
	feed(rs, cs, "{\"outcome\":\"failure\",\"src\":\"a\",\"user\":\"y\"}", 162, &seen);
	assert_int_equal(seen.fired, 2);
	assert_string_equal(seen.group, "src=a");
	/* fail then success within the window: temporal_ordered. */
	seen.fired = 0;
	feed(rs, cs, "{\"outcome\":\"success\",\"src\":\"b\"}", 130, &seen);
	assert_int_equal(seen.fired, 1);
	/* success before any failure: nothing. */
	seen.fired = 0;
	feed(rs, cs, "{\"outcome\":\"success\",\"src\":\"c\"}", 130, &seen);
	feed(rs, cs, "{\"outcome\":\"failure\",\"src\":\"c\",\"user\":\"x\"}", 131, &seen);
	assert_int_equal(seen.fired, 0);
	(void)corr_count;
	sigma_corr_state_free(cs);
	sigma_ruleset_unref(rs);
	buf_fini(&err);
	buf_fini(&why);
}

/* A set from text (builtin mappings included), asserting it loads. */
static struct sigma_ruleset *build_text(const char *text)
{
	struct sigma_builder *b = sigma_builder_new();
	struct sigma_ruleset *rs;
	struct buf err, why;

	buf_init(&err, 4096);
	buf_init(&why, 4096);
	assert_non_null(b);
	assert_int_equal(sigma_builder_add_builtin(b, 0, NULL, NULL, &err), 0);
	if (sigma_builder_add_text(b, "c.yml", text, strlen(text), &why) != SIGMA_LOADED)
		fail_msg("not loaded: %s", buf_cstr(&why) < 0 ? "" : why.p);
	rs = sigma_builder_finish(b, 0, &err);
	assert_non_null(rs);
	buf_fini(&err);
	buf_fini(&why);
	return rs;
}

/* A full group table evicts the least recently seen groups: a flood of
 * one-off keys neither blinds the correlation to a key seen since nor
 * costs a pass over the table per event; the evictions are counted. */
static void test_correlation_full_table(void **state)
{
	struct sigma_ruleset *rs;
	struct sigma_corr_state *cs;
	struct corr_seen seen = { 0 };
	char json[128];
	const char *text =
		"title: failed login\nname: failed_login\n"
		"detection:\n  sel:\n    outcome: failure\n  condition: sel\n"
		"---\n"
		"title: brute force\nid: corr-count\ncorrelation:\n  type: event_count\n"
		"  rules: [failed_login]\n  group-by: [src]\n  timespan: 1h\n"
		"  condition: {gte: 3}\n";

	(void)state;
	rs = build_text(text);
	cs = sigma_corr_state_new(rs);
	assert_non_null(cs);
	sigma_corr_set_max_groups(cs, 100);
	/* "stale" twice, long before the flood; "kept" twice, during it. */
	feed(rs, cs, "{\"outcome\":\"failure\",\"src\":\"stale\"}", 100, &seen);
	feed(rs, cs, "{\"outcome\":\"failure\",\"src\":\"stale\"}", 101, &seen);
	for (int i = 0; i < 1000; i++) {
		snprintf(json, sizeof(json), "{\"outcome\":\"failure\",\"src\":\"x%d\"}", i);
		feed(rs, cs, json, 200 + i / 100, &seen);
		if (i % 50 == 0)
			feed(rs, cs, "{\"outcome\":\"failure\",\"src\":\"kept\"}", 200 + i / 100,
			     &seen);
		assert_true(sigma_corr_groups(cs) <= 100);
	}
	/* "kept", every third event (a firing group starts over): had it been
	 * evicted on the way, fewer. */
	assert_int_equal(seen.fired, 6);
	assert_true(sigma_corr_evicted(cs) >= 900);
	/* "kept" was seen recently: still tracked, its 21st event is the third
	 * since it last fired. */
	seen.fired = 0;
	feed(rs, cs, "{\"outcome\":\"failure\",\"src\":\"kept\"}", 300, &seen);
	assert_int_equal(seen.fired, 1);
	assert_string_equal(seen.group, "src=kept");
	assert_int_equal(seen.count, 3);
	/* "stale" was the least recently seen: evicted, it starts again. */
	seen.fired = 0;
	feed(rs, cs, "{\"outcome\":\"failure\",\"src\":\"stale\"}", 301, &seen);
	feed(rs, cs, "{\"outcome\":\"failure\",\"src\":\"stale\"}", 302, &seen);
	assert_int_equal(seen.fired, 0);
	feed(rs, cs, "{\"outcome\":\"failure\",\"src\":\"stale\"}", 303, &seen);
	assert_int_equal(seen.fired, 1);
	assert_string_equal(seen.group, "src=stale");
	sigma_corr_state_free(cs);
	sigma_ruleset_unref(rs);
}

/* value_percentile (nearest rank, as pySigma), neq, value_count over two
 * fields, temporal with a condition on the number of rules. */
static void test_correlation_types(void **state)
{
	struct sigma_ruleset *rs;
	struct sigma_corr_state *cs;
	struct corr_seen seen = { 0 };
	const char *text =
		"title: request\nname: req\n"
		"detection:\n  sel:\n    kind: req\n  condition: sel\n"
		"---\n"
		"title: logon\nname: logon\n"
		"detection:\n  sel:\n    kind: logon\n  condition: sel\n"
		"---\n"
		"title: flow\nname: flow\n"
		"detection:\n  sel:\n    kind: flow\n  condition: sel\n"
		"---\n"
		"title: slow\nid: p50\ncorrelation:\n  type: value_percentile\n"
		"  rules: [req]\n  group-by: [host]\n  timespan: 1h\n"
		"  condition: {field: ms, percentile: 50, gt: 100}\n"
		"---\n"
		"title: not exactly two\nid: neq\ncorrelation:\n  type: event_count\n"
		"  rules: [logon]\n  group-by: [user]\n  timespan: 1h\n"
		"  condition: {gte: 2, neq: 2, lte: 3}\n"
		"---\n"
		"title: pairs\nid: pairs\ncorrelation:\n  type: value_count\n"
		"  rules: [flow]\n  group-by: [site]\n  timespan: 1h\n"
		"  condition: {field: [src, dst], gte: 3}\n";

	(void)state;
	rs = build_text(text);
	cs = sigma_corr_state_new(rs);
	assert_non_null(cs);
	/* p50 of {50, 500} is 500 (index 1 of 2); of {50} alone, 50. */
	feed(rs, cs, "{\"kind\":\"req\",\"host\":\"h1\",\"ms\":50}", 10, &seen);
	assert_int_equal(seen.fired, 0);
	feed(rs, cs, "{\"kind\":\"req\",\"host\":\"h1\",\"ms\":\"500\"}", 11, &seen);
	assert_int_equal(seen.fired, 1);
	assert_int_equal(seen.count, 500);
	assert_string_equal(seen.group, "host=h1");
	/* p50 of {50, 60, 500}: 60. Not a number: not counted. */
	seen.fired = 0;
	feed(rs, cs, "{\"kind\":\"req\",\"host\":\"h2\",\"ms\":50}", 10, &seen);
	feed(rs, cs, "{\"kind\":\"req\",\"host\":\"h2\",\"ms\":\"slow\"}", 10, &seen);
	feed(rs, cs, "{\"kind\":\"req\",\"host\":\"h2\",\"ms\":60}", 11, &seen);
	feed(rs, cs, "{\"kind\":\"req\",\"host\":\"h2\",\"ms\":500}", 12, &seen);
	assert_int_equal(seen.fired, 0);
	/* neq: 2 events do not fire, 3 do (and the count starts over). */
	feed(rs, cs, "{\"kind\":\"logon\",\"user\":\"u\"}", 20, &seen);
	feed(rs, cs, "{\"kind\":\"logon\",\"user\":\"u\"}", 21, &seen);
	assert_int_equal(seen.fired, 0);
	feed(rs, cs, "{\"kind\":\"logon\",\"user\":\"u\"}", 22, &seen);
	assert_int_equal(seen.fired, 1);
	assert_int_equal(seen.count, 3);
	/* value_count over (src, dst): three distinct pairs, one repeated. */
	seen.fired = 0;
	feed(rs, cs, "{\"kind\":\"flow\",\"site\":\"s\",\"src\":\"a\",\"dst\":\"x\"}", 30, &seen);
	feed(rs, cs, "{\"kind\":\"flow\",\"site\":\"s\",\"src\":\"a\",\"dst\":\"x\"}", 31, &seen);
	feed(rs, cs, "{\"kind\":\"flow\",\"site\":\"s\",\"src\":\"a\",\"dst\":\"y\"}", 32, &seen);
	feed(rs, cs, "{\"kind\":\"flow\",\"site\":\"s\",\"src\":\"b\"}", 33, &seen);
	assert_int_equal(seen.fired, 0);
	feed(rs, cs, "{\"kind\":\"flow\",\"site\":\"s\",\"src\":\"b\",\"dst\":\"x\"}", 34, &seen);
	assert_int_equal(seen.fired, 1);
	assert_string_equal(seen.group, "site=s");
	sigma_corr_state_free(cs);
	sigma_ruleset_unref(rs);

	/* temporal, two of three rules within the window. */
	rs = build_text(
		"title: a\nname: ra\ndetection:\n  sel:\n    k: a\n  condition: sel\n---\n"
		"title: b\nname: rb\ndetection:\n  sel:\n    k: b\n  condition: sel\n---\n"
		"title: c\nname: rc\ndetection:\n  sel:\n    k: c\n  condition: sel\n---\n"
		"title: two of three\nid: t2\ncorrelation:\n  type: temporal\n"
		"  rules: [ra, rb, rc]\n  group-by: [h]\n  timespan: 1m\n"
		"  condition: {gte: 2}\n");
	cs = sigma_corr_state_new(rs);
	assert_non_null(cs);
	memset(&seen, 0, sizeof(seen));
	feed(rs, cs, "{\"k\":\"a\",\"h\":\"1\"}", 0, &seen);
	feed(rs, cs, "{\"k\":\"a\",\"h\":\"1\"}", 5, &seen);
	assert_int_equal(seen.fired, 0);
	feed(rs, cs, "{\"k\":\"c\",\"h\":\"1\"}", 30, &seen);
	assert_int_equal(seen.fired, 1);
	assert_int_equal(seen.count, 2);
	feed(rs, cs, "{\"k\":\"a\",\"h\":\"2\"}", 0, &seen);
	feed(rs, cs, "{\"k\":\"b\",\"h\":\"2\"}", 61, &seen);
	assert_int_equal(seen.fired, 1);
	sigma_corr_state_free(cs);
	sigma_ruleset_unref(rs);
}

/* Chains: a correlation over a correlation (the specification's failed
 * logins followed by a success); the inner one only feeds the outer.
 * A loop, a missing rule, and a chain over a correlation that cannot run
 * are named. */
static void test_correlation_chain(void **state)
{
	struct sigma_ruleset *rs;
	struct sigma_corr_state *cs;
	struct corr_seen seen = { 0 };
	const char *text =
		"title: outer\nid: outer\ncorrelation:\n  type: temporal_ordered\n"
		"  rules: [many, ok]\n  group-by: [user]\n  timespan: 10m\n"
		"---\n"
		"title: many\nname: many\ncorrelation:\n  type: event_count\n"
		"  rules: [fail]\n  group-by: [user]\n  timespan: 10m\n  condition: {gte: 3}\n"
		"---\n"
		"title: fail\nname: fail\ndetection:\n  sel:\n    r: fail\n  condition: sel\n"
		"---\n"
		"title: ok\nname: ok\ndetection:\n  sel:\n    r: ok\n  condition: sel\n"
		"---\n"
		"title: loop a\nid: la\ncorrelation:\n  type: event_count\n"
		"  rules: [lb]\n  timespan: 10m\n  condition: {gte: 1}\n"
		"---\n"
		"title: loop b\nid: lb\ncorrelation:\n  type: event_count\n"
		"  rules: [la]\n  timespan: 10m\n  condition: {gte: 1}\n"
		"---\n"
		"title: missing\nid: miss\ncorrelation:\n  type: temporal\n"
		"  rules: [ok, nosuch1, nosuch2]\n  timespan: 10m\n"
		"---\n"
		"title: over missing\nid: over\ncorrelation:\n  type: event_count\n"
		"  rules: [miss]\n  timespan: 10m\n  condition: {gte: 1}\n";
	const char *why;

	(void)state;
	rs = build_text(text);
	assert_null(sigma_corr_disabled(rs, sigma_ruleset_find(rs, "outer")->index));
	assert_null(sigma_corr_disabled(rs, sigma_ruleset_find(rs, "many")->index));
	why = sigma_corr_disabled(rs, sigma_ruleset_find(rs, "la")->index);
	assert_non_null(why);
	assert_non_null(strstr(why, "loops"));
	why = sigma_corr_disabled(rs, sigma_ruleset_find(rs, "miss")->index);
	assert_non_null(why);
	assert_string_equal(why, "refers to rules nosuch1, nosuch2, which are not loaded");
	why = sigma_corr_disabled(rs, sigma_ruleset_find(rs, "over")->index);
	assert_non_null(why);
	assert_string_equal(why, "refers to correlation miss, which cannot run");
	/* generate false: the rules and the inner correlation are silent. */
	assert_false(sigma_rule_generates(rs, sigma_ruleset_find(rs, "fail")->index));
	assert_false(sigma_rule_generates(rs, sigma_ruleset_find(rs, "many")->index));
	assert_true(sigma_rule_generates(rs, sigma_ruleset_find(rs, "outer")->index));
	cs = sigma_corr_state_new(rs);
	assert_non_null(cs);
	feed(rs, cs, "{\"r\":\"fail\",\"user\":\"bob\"}", 0, &seen);
	feed(rs, cs, "{\"r\":\"fail\",\"user\":\"bob\"}", 60, &seen);
	feed(rs, cs, "{\"r\":\"fail\",\"user\":\"bob\"}", 120, &seen);
	assert_int_equal(seen.fired, 0);   /* "many" fired, silently */
	feed(rs, cs, "{\"r\":\"ok\",\"user\":\"alice\"}", 130, &seen);
	assert_int_equal(seen.fired, 0);
	feed(rs, cs, "{\"r\":\"ok\",\"user\":\"bob\"}", 180, &seen);
	assert_int_equal(seen.fired, 1);
	assert_string_equal(seen.group, "user=bob");
	/* Two failures then a success: nothing. */
	seen.fired = 0;
	feed(rs, cs, "{\"r\":\"fail\",\"user\":\"carol\"}", 0, &seen);
	feed(rs, cs, "{\"r\":\"fail\",\"user\":\"carol\"}", 1, &seen);
	feed(rs, cs, "{\"r\":\"ok\",\"user\":\"carol\"}", 2, &seen);
	assert_int_equal(seen.fired, 0);
	sigma_corr_state_free(cs);
	sigma_ruleset_unref(rs);
}

/* taxonomy: ecs reads the event's own field names: a Windows rule's field
 * is not turned into winlog.event_data.<name>. */
static void test_taxonomy(void **state)
{
	struct sigma_ruleset *rs;

	(void)state;
	rs = build_text("title: ecs\nid: e\ntaxonomy: ecs\n"
			"logsource: {product: windows, category: process_creation}\n"
			"detection:\n  sel:\n    host.name: ws1\n  condition: sel\n"
			"---\n"
			"title: sigma\nid: s\n"
			"logsource: {product: windows, category: process_creation}\n"
			"detection:\n  sel:\n    Computer: ws1\n  condition: sel\n");
	assert_int_equal(match_json(rs, sysmon_ev), 2);
	sigma_ruleset_unref(rs);
}

/* Placeholders configured: the |expand rule loads and matches. */
static void test_expand(void **state)
{
	struct sigma_builder *b = sigma_builder_new();
	const char *vals[] = { "dc1", "dc2" };
	const char *text = "title: t\ndetection:\n  sel:\n    host|expand: '%dcs%'\n"
			   "  condition: sel\n";
	struct buf err, why;
	struct sigma_ruleset *rs;

	(void)state;
	buf_init(&err, 4096);
	buf_init(&why, 4096);
	assert_int_equal(sigma_builder_set_placeholder(b, "dcs", vals, 2), 0);
	assert_int_equal(sigma_builder_add_text(b, "t.yml", text, strlen(text), &why),
			 SIGMA_LOADED);
	rs = sigma_builder_finish(b, 0, &err);
	assert_non_null(rs);
	assert_int_equal(match_json(rs, "{\"host\":\"DC2\"}"), 1);
	assert_int_equal(match_json(rs, "{\"host\":\"dc3\"}"), 0);
	sigma_ruleset_unref(rs);
	buf_fini(&err);
	buf_fini(&why);
}

int main(int argc, char **argv)
{
	hs_child_exec_self(argc > 1 ? argv[1] : NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_modifiers),
		cmocka_unit_test(test_value_cache),
		cmocka_unit_test(test_gated_expressions),
		cmocka_unit_test(test_direct_strings),
		cmocka_unit_test(test_stamp_wrap),
		cmocka_unit_test(test_hs_cache),
		cmocka_unit_test(test_hs_compiler_child),
		cmocka_unit_test(test_load_status),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_logsource),
		cmocka_unit_test(test_merged_databases),
		cmocka_unit_test(test_overflow_numbers),
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_correlation),
		cmocka_unit_test(test_correlation_full_table),
		cmocka_unit_test(test_correlation_types),
		cmocka_unit_test(test_correlation_chain),
		cmocka_unit_test(test_taxonomy),
		cmocka_unit_test(test_expand),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
