/*
 * Unit tests of the threat-intelligence feeds: exact counts from the STIX
 * 2.1 examples and the real MISP feed in the shared conformance data
 * (MAMORI_CONFORMANCE_DIR, default $MAMORI_SOURCE_DIR/../shared; the tests
 * fail when it is missing), a table of STIX patterns with the reason each
 * is rejected, latest-modified-wins, revoked, valid_from/valid_until,
 * plain-list type detection, CSV mapping and RFC 4180 quoting, the manager
 * keeping a failed feed's previous copy, and TAXII 2.1 paging, auth and
 * errors against an HTTP server started here on 127.0.0.1.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "detect/feed.h"
#include "detect/intel.h"

#define T2020 1577836800000000LL   /* 2020-01-01T00:00:00Z */
#define T2030 1893456000000000LL   /* 2030-01-01T00:00:00Z */

static char g_conf[4096];
static char g_tmp[256];

/* The shared conformance directory; fails the test when it is absent. */
static const char *conf_dir(void)
{
	const char *e = getenv("MAMORI_CONFORMANCE_DIR");
	const char *src = getenv("MAMORI_SOURCE_DIR");
	char probe[4200];
	struct stat sb;

	if (e && e[0])
		snprintf(g_conf, sizeof(g_conf), "%s", e);
	else
		snprintf(g_conf, sizeof(g_conf), "%s/../shared", src ? src : ".");
	snprintf(probe, sizeof(probe), "%s/intel/SOURCE.txt", g_conf);
	if (stat(probe, &sb) != 0)
		fail_msg("conformance data missing: %s not found (set "
			 "MAMORI_CONFORMANCE_DIR)", probe);
	return g_conf;
}

static const char *cpath(const char *rel)
{
	static char p[8][4400];
	static int k;

	k = (k + 1) % 8;
	snprintf(p[k], sizeof(p[k]), "%s/intel/%s", conf_dir(), rel);
	return p[k];
}

static const char *tpath(const char *name)
{
	static char p[8][512];
	static int k;

	k = (k + 1) % 8;
	snprintf(p[k], sizeof(p[k]), "%s/%s", g_tmp, name);
	return p[k];
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	fclose(f);
}

static struct feed_conf fconf(const char *name, const char *kind,
			      const char *src)
{
	struct feed_conf fc = {.name = (char *)name, .kind = (char *)kind,
			       .url_or_path = (char *)src, .confidence = 50,
			       .timeout_s = 10};
	return fc;
}

/* Loads one feed with feed_load_one into a fresh set. */
static struct intel_set *load(const struct feed_conf *fc, struct feed_stats *st,
			      int want)
{
	struct intel_builder *b = intel_builder_new();
	struct buf err;
	int r;

	assert_non_null(b);
	buf_init(&err, 0);
	r = feed_load_one(fc, b, st, &err);
	if (r != want)
		fail_msg("feed_load_one(%s) = %d, want %d: %.*s", fc->url_or_path,
			 r, want, (int)err.len, err.p ? err.p : "");
	buf_fini(&err);
	return intel_builder_finish(b);
}

static int ip(const struct intel_set *s, const char *v)
{
	return intel_lookup_ip(s, v, strlen(v), 0) != NULL;
}

static int dom(const struct intel_set *s, const char *v)
{
	return intel_lookup_domain(s, v, strlen(v), 0) != NULL;
}

static int hash(const struct intel_set *s, const char *v)
{
	return intel_lookup_hash(s, v, strlen(v), 0) != NULL;
}

/* ---- STIX conformance files ------------------------------------------ */

static void test_stix_examples(void **state)
{
	static const struct {
		const char *file;
		size_t loaded, distinct, rejected, skipped;
		size_t path, oper, bad_value, superseded;
	} cases[] = {
		{"stix2/examples/indicator-for-c2-ip-address.json", 1, 1, 0, 0, 0, 0, 0, 0},
		{"stix2/examples/indicator-to-campaign-relationship.json", 1, 1, 0, 0, 0, 0, 0, 0},
		{"stix2/examples/indicators-for-C2-with-COA.json", 2, 2, 0, 0, 0, 0, 0, 0},
		{"stix2/examples/malicious-email-indicator-with-attachment.json", 0, 0, 2, 0, 0, 2, 0, 0},
		{"stix2/examples/infrastructure.json", 0, 0, 0, 0, 0, 0, 0, 0},
		{"stix2/examples/interop-objectmarking-test.json", 0, 0, 0, 0, 0, 0, 0, 0},
		/* 12 indicators: 4 CIDRs, 3 domains, 3 MD5s, and two x509
		 * certificate patterns (object path rejected). */
		{"stix2/examples/threat-reports/apt1.json", 10, 10, 2, 0, 2, 0, 0, 0},
		/* 25 indicators: 2 file:name rejected; 23 OR patterns give 65
		 * values, one ('domain autuo.xicp.net') refused by the store;
		 * 24 domains + 18 addresses distinct. */
		{"stix2/examples/threat-reports/poisonivy.json", 64, 42, 3, 0, 2, 0, 1, 0},
	};
	size_t total = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct feed_conf fc = fconf("stix-ex", "stix", cpath(cases[i].file));
		struct feed_stats st;
		struct intel_set *s = load(&fc, &st, 0);

		assert_non_null(s);
		if (st.loaded != cases[i].loaded || intel_set_count(s) != cases[i].distinct ||
		    st.rejected != cases[i].rejected || st.skipped != cases[i].skipped ||
		    st.reasons[FEED_R_PATTERN_PATH] != cases[i].path ||
		    st.reasons[FEED_R_PATTERN_OPERATOR] != cases[i].oper ||
		    st.reasons[FEED_R_BAD_VALUE] != cases[i].bad_value ||
		    st.reasons[FEED_R_SUPERSEDED] != cases[i].superseded)
			fail_msg("%s: loaded %zu distinct %zu rejected %zu skipped %zu "
				 "path %zu op %zu badval %zu superseded %zu",
				 cases[i].file, st.loaded, intel_set_count(s), st.rejected,
				 st.skipped, st.reasons[FEED_R_PATTERN_PATH],
				 st.reasons[FEED_R_PATTERN_OPERATOR],
				 st.reasons[FEED_R_BAD_VALUE], st.reasons[FEED_R_SUPERSEDED]);
		total += st.loaded;
		intel_set_unref(s);
	}
	assert_int_equal(total, 78);
}

static void test_stix_example_values(void **state)
{
	struct feed_conf fc = fconf("apt1", "stix",
				    cpath("stix2/examples/threat-reports/apt1.json"));
	struct feed_stats st;
	struct intel_set *s = load(&fc, &st, 0);
	const struct intel_indicator *ind;

	(void)state;
	assert_true(ip(s, "223.167.1.2"));      /* inside 223.166.0.0/15 */
	assert_false(ip(s, "223.168.0.1"));
	assert_true(dom(s, "www.hugesoft.org"));
	assert_true(hash(s, "001DD76872D80801692FF942308C64E6"));
	ind = intel_lookup_domain(s, "msnhome.org", 11, 0);
	assert_non_null(ind);
	assert_string_equal(ind->meta.source, "apt1");
	assert_int_equal(ind->meta.confidence, 50);
	/* valid_from 2015-05-15T09:12:16.432678Z becomes first_seen. */
	assert_int_equal(ind->meta.first_seen, 1431681136432678LL);
	assert_int_equal(ind->meta.valid_until, 0);
	/* The rejection examples name the reason. */
	assert_true(st.nsamples >= 1);
	assert_non_null(strstr(st.samples[0], "pattern_path"));
	assert_non_null(strstr(st.samples[0], "x509-certificate:issuer"));
	intel_set_unref(s);

	fc = fconf("coa", "stix", cpath("stix2/examples/indicators-for-C2-with-COA.json"));
	s = load(&fc, &st, 0);
	assert_true(hash(s, "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"));
	assert_true(ip(s, "10.0.0.0"));
	intel_set_unref(s);

	fc = fconf("mail", "stix",
		   cpath("stix2/examples/malicious-email-indicator-with-attachment.json"));
	s = load(&fc, &st, 0);
	assert_int_equal(st.nsamples, 2);
	assert_non_null(strstr(st.samples[0], "operator MATCHES not supported"));
	intel_set_unref(s);
}

/* The interop files are JSON schemas, not STIX: the load fails cleanly. */
static void test_stix_interop_not_stix(void **state)
{
	static const char *const names[] = {
		"attack-pattern", "campaign", "core", "course-of-action", "grouping",
		"indicator", "infrastructure", "intrusion-set", "location",
		"malware-analysis", "malware", "note", "observed-data", "opinion",
		"relationship", "report", "sighting", "threat-actor", "tool",
		"vulnerability"};
	size_t failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char rel[128];
		struct intel_builder *b = intel_builder_new();
		struct feed_stats st;
		struct buf err;
		struct feed_conf fc;

		snprintf(rel, sizeof(rel), "stix2/interop/%s.json", names[i]);
		fc = fconf("interop", "stix", cpath(rel));
		buf_init(&err, 0);
		if (feed_load_one(&fc, b, &st, &err) == M_EPARSE) {
			failed++;
			buf_cstr(&err);
			assert_non_null(strstr(err.p, "feed interop: not a STIX bundle"));
			assert_non_null(strstr(st.last_error, "not a STIX bundle"));
		}
		assert_int_equal(st.loaded, 0);
		buf_fini(&err);
		intel_builder_free(b);
	}
	assert_int_equal(failed, 20);
}

/* ---- STIX patterns --------------------------------------------------- */

static void test_stix_patterns(void **state)
{
	static const struct {
		const char *pat;
		int reason;        /* -1 accepted */
		size_t n;          /* values when accepted */
		const char *why;   /* substring of the reason text */
	} cases[] = {
		{"[ipv4-addr:value = '198.51.100.1']", -1, 1, NULL},
		{"[ipv4-addr:value = '198.51.100.0/24']", -1, 1, NULL},
		{"[ipv6-addr:value = '2001:db8::/32']", -1, 1, NULL},
		{"[domain-name:value = 'evil.example']", -1, 1, NULL},
		{"[url:value = 'http://evil.example/a?b=c']", -1, 1, NULL},
		{"[email-addr:value = 'bad@evil.example']", -1, 1, NULL},
		{"[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']", -1, 1, NULL},
		{"[file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']", -1, 1, NULL},
		{"[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']", -1, 1, NULL},
		{"[file:hashes.md5 = 'd41d8cd98f00b204e9800998ecf8427e' AND file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']", -1, 2, NULL},
		{"[domain-name:value = 'a.example' OR ipv4-addr:value = '192.0.2.1' OR url:value = 'http://x.example/']", -1, 3, NULL},
		{"[ipv4-addr:value = '192.0.2.1'] OR [domain-name:value = 'b.example']", -1, 2, NULL},
		{"([ipv4-addr:value = '192.0.2.1'] OR ([domain-name:value = 'c.example']))", -1, 2, NULL},
		{"[(ipv4-addr:value = '192.0.2.1' OR ipv4-addr:value == '192.0.2.2')]", -1, 2, NULL},
		{"[domain-name:value = 'it''s']", FEED_R_PATTERN_SYNTAX, 0, "expected"},
		{"[url:value = 'http://x.example/\\'q']", -1, 1, NULL},
		{"  [ domain-name:value='d.example' ]  ", -1, 1, NULL},
		/* rejected */
		{"[email-message:subject MATCHES '^x']", FEED_R_PATTERN_OPERATOR, 0, "MATCHES"},
		{"[domain-name:value LIKE '%.example']", FEED_R_PATTERN_OPERATOR, 0, "LIKE"},
		{"[ipv4-addr:value ISSUBSET '10.0.0.0/8']", FEED_R_PATTERN_OPERATOR, 0, "ISSUBSET"},
		{"[ipv4-addr:value != '10.0.0.1']", FEED_R_PATTERN_OPERATOR, 0, "other than ="},
		{"[ipv4-addr:value NOT = '10.0.0.1']", FEED_R_PATTERN_OPERATOR, 0, "NOT ="},
		{"[domain-name:value IN ('a.example', 'b.example')]", FEED_R_PATTERN_OPERATOR, 0, "IN"},
		{"[file:size > 100]", FEED_R_PATTERN_OPERATOR, 0, "other than ="},
		{"[EXISTS windows-registry-key:key]", FEED_R_PATTERN_OPERATOR, 0, "EXISTS"},
		{"[file:name = 'evil.exe']", FEED_R_PATTERN_PATH, 0, "object path"},
		{"[x509-certificate:issuer = 'CN=x' AND x509-certificate:serial_number = '1']", FEED_R_PATTERN_PATH, 0, "object path"},
		{"[file:hashes.'SHA-512' = 'aa']", FEED_R_PATTERN_PATH, 0, "hash algorithm"},
		{"[file:hashes.MD5 = 'abcd']", FEED_R_BAD_VALUE, 0, "hash length"},
		{"[ipv4-addr:value = '192.0.2.1' AND domain-name:value = 'a.example']", FEED_R_PATTERN_FORM, 0, "AND of comparisons"},
		{"[ipv4-addr:value = '192.0.2.1'] AND [domain-name:value = 'a.example']", FEED_R_PATTERN_FORM, 0, "AND of observation"},
		{"[ipv4-addr:value = '192.0.2.1'] FOLLOWEDBY [domain-name:value = 'a.example']", FEED_R_PATTERN_FORM, 0, "FOLLOWEDBY"},
		{"[ipv4-addr:value = '192.0.2.1'] WITHIN 300 SECONDS", FEED_R_PATTERN_FORM, 0, "qualifiers"},
		{"[ipv4-addr:value = '192.0.2.1'] REPEATS 5 TIMES", FEED_R_PATTERN_FORM, 0, "qualifiers"},
		{"[ipv4-addr:value = '192.0.2.1'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'", FEED_R_PATTERN_FORM, 0, "qualifiers"},
		{"[network-traffic:dst_port = 443]", FEED_R_PATTERN_FORM, 0, "non-string"},
		{"[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e' AND (file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427f' OR file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf84270')]", FEED_R_PATTERN_FORM, 0, "AND of comparisons"},
		/* syntax */
		{"", FEED_R_PATTERN_SYNTAX, 0, "empty"},
		{"ipv4-addr:value = '1.2.3.4'", FEED_R_PATTERN_SYNTAX, 0, "expected [ or ("},
		{"[ipv4-addr:value = '1.2.3.4'", FEED_R_PATTERN_SYNTAX, 0, "expected ]"},
		{"[ipv4-addr:value = '1.2.3.4]", FEED_R_PATTERN_SYNTAX, 0, "unexpected character"},
		{"[ipv4-addr:value = ]", FEED_R_PATTERN_SYNTAX, 0, "expected a literal"},
		{"[ipv4-addr:value = '1.2.3.4'] garbage", FEED_R_PATTERN_SYNTAX, 0, "after the pattern"},
		{"[]", FEED_R_PATTERN_SYNTAX, 0, "object path"},
		{"[value = '1']", FEED_R_PATTERN_SYNTAX, 0, "object path"},
		{"[ipv4-addr:value = '1.2.3.4'] OR", FEED_R_PATTERN_SYNTAX, 0, "expected [ or ("},
		{"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ipv4-addr:value = '1.2.3.4']", FEED_R_PATTERN_SYNTAX, 0, "expected an object path"},
		{"((((((((((((((((((((((((((((((((((((([ipv4-addr:value = '1.2.3.4']))))))))))))))))))))))))))))))))))))", FEED_R_PATTERN_SYNTAX, 0, "nested too deep"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct feed_items out;
		struct feed_item meta = {.confidence = 70};
		const char *why = NULL;
		int r;

		feed_items_init(&out, 0);
		r = feed_stix_pattern(cases[i].pat, strlen(cases[i].pat), &meta, &out, &why);
		if (r != cases[i].reason)
			fail_msg("%s: reason %d (%s), want %d", cases[i].pat, r,
				 why ? why : "", cases[i].reason);
		if (r < 0 && out.n != cases[i].n)
			fail_msg("%s: %zu values, want %zu", cases[i].pat, out.n, cases[i].n);
		if (r >= 0 && out.n != 0)
			fail_msg("%s: rejected but %zu values kept", cases[i].pat, out.n);
		if (cases[i].why && (why == NULL || strstr(why, cases[i].why) == NULL))
			fail_msg("%s: why '%s', want '%s'", cases[i].pat, why ? why : "",
				 cases[i].why);
		feed_items_fini(&out);
	}
}

static void test_stix_pattern_values(void **state)
{
	struct feed_items out;
	struct feed_item meta = {.confidence = 70, .valid_until = 5};
	const char *why;
	const char *pat = "[url:value = 'http://x.example/it\\'s\\\\' OR "
			  "domain-name:value = 'y.example']";

	(void)state;
	feed_items_init(&out, 0);
	assert_int_equal(feed_stix_pattern(pat, strlen(pat), &meta, &out, &why), -1);
	assert_int_equal(out.n, 2);
	assert_int_equal(out.v[0].type, INTEL_URL);
	assert_int_equal(out.v[0].len, strlen("http://x.example/it's\\"));
	assert_memory_equal(out.pool.p + out.v[0].off, "http://x.example/it's\\", out.v[0].len);
	assert_int_equal(out.v[0].confidence, 70);
	assert_int_equal(out.v[0].valid_until, 5);
	assert_int_equal(out.v[1].type, INTEL_DOMAIN);
	feed_items_fini(&out);
}

/* ---- STIX bundle rules (inline) -------------------------------------- */

#define IND(id, mod, pat, extra)                                              \
	"{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"indicator--" id \
	"\",\"created\":\"2020-01-01T00:00:00.000Z\",\"modified\":\"" mod         \
	"\",\"pattern_type\":\"stix\",\"pattern\":\"" pat                         \
	"\",\"valid_from\":\"2020-01-01T00:00:00Z\"" extra "}"

static int parse_stix(const char *json, int64_t now, struct feed_items *out,
		      struct feed_stats *st)
{
	struct feed_defaults d = {.confidence = 40, .now_us = now};
	struct buf err;
	int r;

	memset(st, 0, sizeof(*st));
	buf_init(&err, 0);
	r = feed_parse_stix(json, strlen(json), &d, out, st, &err);
	buf_fini(&err);
	return r;
}

static int has_item(const struct feed_items *it, const char *v)
{
	for (size_t i = 0; i < it->n; i++)
		if (it->v[i].len == strlen(v) &&
		    memcmp(it->pool.p + it->v[i].off, v, it->v[i].len) == 0)
			return (int)i + 1;
	return 0;
}

static void test_stix_latest_wins_and_revoked(void **state)
{
	const char *bundle =
		"{\"type\":\"bundle\",\"id\":\"bundle--1\",\"objects\":["
		IND("a", "2021-01-01T00:00:00.000Z", "[domain-name:value = 'old.example']", "") ","
		IND("a", "2021-03-01T00:00:00.000Z", "[domain-name:value = 'new.example']", "") ","
		IND("a", "2021-02-01T00:00:00.000Z", "[domain-name:value = 'mid.example']", "") ","
		/* revoked in its latest version: dropped */
		IND("b", "2021-01-01T00:00:00.000Z", "[ipv4-addr:value = '192.0.2.1']", "") ","
		IND("b", "2021-01-02T00:00:00.000Z", "[ipv4-addr:value = '192.0.2.1']", ",\"revoked\":true") ","
		/* revoked, then un-revoked by a later version */
		IND("c", "2021-01-02T00:00:00.000Z", "[ipv4-addr:value = '192.0.2.3']", ",\"revoked\":false") ","
		IND("c", "2021-01-01T00:00:00.000Z", "[ipv4-addr:value = '192.0.2.3']", ",\"revoked\":true") ","
		/* same modified: the one read last wins */
		IND("d", "2021-01-01T00:00:00.000Z", "[domain-name:value = 'first.example']", "") ","
		IND("d", "2021-01-01T00:00:00.000Z", "[domain-name:value = 'second.example']", "") ","
		/* fractional seconds decide */
		IND("e", "2021-01-01T00:00:00.002Z", "[domain-name:value = 'e2.example']", "") ","
		IND("e", "2021-01-01T00:00:00.0019Z", "[domain-name:value = 'e1.example']", "") ","
		/* other pattern types and objects */
		"{\"type\":\"indicator\",\"id\":\"indicator--f\",\"modified\":\"2021-01-01T00:00:00Z\","
		"\"pattern_type\":\"sigma\",\"pattern\":\"title: x\"},"
		"{\"type\":\"indicator\",\"id\":\"indicator--g\",\"modified\":\"2021-01-01T00:00:00Z\"},"
		"{\"type\":\"indicator\",\"modified\":\"2021-01-01T00:00:00Z\",\"pattern\":\"[ipv4-addr:value = '192.0.2.9']\"},"
		"{\"type\":\"malware\",\"id\":\"malware--1\"},"
		"42"
		"]}";
	struct feed_items out;
	struct feed_stats st;

	(void)state;
	feed_items_init(&out, 0);
	assert_int_equal(parse_stix(bundle, T2020, &out, &st), 0);
	assert_true(has_item(&out, "new.example"));
	assert_false(has_item(&out, "old.example"));
	assert_false(has_item(&out, "mid.example"));
	assert_false(has_item(&out, "192.0.2.1"));
	assert_true(has_item(&out, "192.0.2.3"));
	assert_true(has_item(&out, "second.example"));
	assert_false(has_item(&out, "first.example"));
	assert_true(has_item(&out, "e2.example"));
	assert_false(has_item(&out, "e1.example"));
	assert_int_equal(out.n, 4);
	assert_int_equal(st.reasons[FEED_R_SUPERSEDED], 2 + 1 + 1 + 1 + 1);
	assert_int_equal(st.reasons[FEED_R_REVOKED], 1);
	assert_int_equal(st.reasons[FEED_R_PATTERN_TYPE], 1);
	assert_int_equal(st.reasons[FEED_R_BAD_OBJECT], 2);
	assert_int_equal(st.rejected, 3);
	assert_int_equal(st.skipped, 7);
	feed_items_fini(&out);
}

static void test_stix_validity(void **state)
{
	const char *bundle =
		"{\"type\":\"bundle\",\"id\":\"bundle--1\",\"objects\":["
		IND("a", "2021-01-01T00:00:00Z", "[domain-name:value = 'expired.example']",
		    ",\"valid_until\":\"2020-06-01T00:00:00Z\"") ","
		IND("b", "2021-01-01T00:00:00Z", "[domain-name:value = 'until.example']",
		    ",\"valid_until\":\"2031-06-01T12:30:00+02:00\",\"confidence\":85") ","
		"{\"type\":\"indicator\",\"id\":\"indicator--c\",\"modified\":\"2021-01-01T00:00:00Z\","
		"\"pattern_type\":\"stix\",\"pattern\":\"[domain-name:value = 'later.example']\","
		"\"valid_from\":\"2030-01-01T00:00:00Z\"},"
		IND("d", "2021-01-01T00:00:00Z", "[domain-name:value = 'badtime.example']",
		    ",\"valid_until\":\"next tuesday\"")
		"]}";
	struct feed_items out;
	struct feed_stats st;
	int k;

	(void)state;
	feed_items_init(&out, 0);
	/* now = 2025-01-01 */
	assert_int_equal(parse_stix(bundle, 1735689600000000LL, &out, &st), 0);
	assert_false(has_item(&out, "expired.example"));
	assert_int_equal(st.reasons[FEED_R_EXPIRED], 1);
	assert_int_equal(st.reasons[FEED_R_BAD_FIELD], 1);
	k = has_item(&out, "until.example");
	assert_true(k);
	assert_int_equal(out.v[k - 1].valid_until, 1938076200000000LL);
	assert_int_equal(out.v[k - 1].confidence, 85);
	k = has_item(&out, "later.example");
	assert_true(k);
	assert_int_equal(out.v[k - 1].valid_from, T2030);
	assert_int_equal(out.v[k - 1].confidence, 40);
	feed_items_fini(&out);
}

static void test_stix_bad_documents(void **state)
{
	static const char *const docs[] = {
		"", "{", "[]", "null", "{\"type\":\"bundle\",\"objects\":{}}",
		"{\"hello\":1}", "{\"type\":\"bundle\",\"objects\":[1,2,",
	};
	struct feed_items out;
	struct feed_stats st;

	(void)state;
	feed_items_init(&out, 0);
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		assert_int_equal(parse_stix(docs[i], T2020, &out, &st), M_EPARSE);
	/* An envelope and a lone object are accepted. */
	assert_int_equal(parse_stix("{\"objects\":[" IND("a", "2021-01-01T00:00:00Z",
			 "[ipv4-addr:value = '192.0.2.7']", "") "]}", T2020, &out, &st), 0);
	assert_int_equal(parse_stix(IND("a", "2021-01-01T00:00:00Z",
			 "[ipv4-addr:value = '192.0.2.8']", ""), T2020, &out, &st), 0);
	assert_int_equal(out.n, 2);
	feed_items_fini(&out);
}

/* ---- MISP ------------------------------------------------------------ */

static void test_misp_feed_dir(void **state)
{
	struct feed_conf fc = fconf("circl", "misp", cpath("misp-feed"));
	struct feed_stats st;
	struct intel_set *s;
	const struct intel_indicator *ind;

	(void)state;
	s = load(&fc, &st, 0);
	/* 152 attributes, 127 to_ids; of those, filename (2) and
	 * malware-sample (27) are not indicator types: 98 values. */
	assert_int_equal(st.reasons[FEED_R_NOT_IDS], 25);
	assert_int_equal(st.reasons[FEED_R_MISP_TYPE], 29);
	assert_int_equal(st.skipped, 54);
	assert_int_equal(st.rejected, 0);
	assert_int_equal(st.loaded, 127 - 29);
	assert_int_equal(st.requests, 3);   /* manifest + 2 events */
	/* 16 ip-dst, 7 domain + 4 hostname, 17 url, 27 + 27 hashes */
	assert_int_equal(intel_set_count(s), 98);
	assert_true(ip(s, "50.6.80.163"));
	assert_true(dom(s, "commonplaces.davidson.edu"));
	assert_non_null(intel_lookup_url(s, "http://be-stlines-tore.com/tr35esf", 34, 0));
	ind = intel_lookup_ip(s, "91.219.31.18", 12, 0);
	assert_non_null(ind);
	assert_string_equal(ind->meta.source, "circl");
	assert_int_equal(ind->meta.last_seen, 1461831365000000LL);
	intel_set_unref(s);
}

static void test_misp_event_types(void **state)
{
	const char *ev =
		"{\"Event\":{\"uuid\":\"x\",\"Attribute\":["
		"{\"type\":\"ip-src|port\",\"value\":\"192.0.2.1|8080\",\"to_ids\":true},"
		"{\"type\":\"ip-dst|port\",\"value\":\"2001:db8::1|443\",\"to_ids\":\"1\"},"
		"{\"type\":\"domain|ip\",\"value\":\"evil.example|192.0.2.2\",\"to_ids\":1},"
		"{\"type\":\"filename|md5\",\"value\":\"a|b.exe|d41d8cd98f00b204e9800998ecf8427e\",\"to_ids\":true},"
		"{\"type\":\"filename|sha256\",\"value\":\"x.exe|e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\"to_ids\":true},"
		"{\"type\":\"sha1\",\"value\":\"da39a3ee5e6b4b0d3255bfef95601890afd80709\",\"to_ids\":true,"
		"\"first_seen\":\"2021-01-01T00:00:00.000000+00:00\",\"last_seen\":\"2021-02-01T00:00:00Z\"},"
		"{\"type\":\"email-src\",\"value\":\"a@evil.example\",\"to_ids\":true},"
		"{\"type\":\"email\",\"value\":\"b@evil.example\",\"to_ids\":true,\"deleted\":true},"
		"{\"type\":\"email-dst\",\"value\":\"c@evil.example\",\"to_ids\":false},"
		"{\"type\":\"domain|ip\",\"value\":\"nobar.example\",\"to_ids\":true},"
		"{\"type\":\"comment\",\"value\":\"hello\",\"to_ids\":true},"
		"{\"type\":\"ip-dst\",\"to_ids\":true},"
		"{\"type\":\"sha256\",\"value\":\"x\",\"to_ids\":true,\"first_seen\":\"yesterday\"},"
		"7],"
		"\"Object\":[{\"name\":\"domain-ip\",\"Attribute\":["
		"{\"type\":\"hostname\",\"value\":\"obj.evil.example\",\"to_ids\":true}]},"
		"{\"name\":\"bad\",\"Attribute\":5}]}}";
	struct feed_defaults d = {.confidence = 60};
	struct feed_items out;
	struct feed_stats st;
	struct buf err;
	int k;

	(void)state;
	memset(&st, 0, sizeof(st));
	feed_items_init(&out, 0);
	buf_init(&err, 0);
	assert_int_equal(feed_parse_misp_event(ev, strlen(ev), &d, &out, &st, &err), 0);
	assert_true(has_item(&out, "192.0.2.1"));
	assert_true(has_item(&out, "2001:db8::1"));
	assert_true(has_item(&out, "evil.example"));
	assert_true(has_item(&out, "192.0.2.2"));
	/* The hash is after the first '|': "b.exe|..." is not a hash and the
	 * store refuses it later; MISP file names cannot contain '|'. */
	assert_true(has_item(&out, "b.exe|d41d8cd98f00b204e9800998ecf8427e"));
	assert_true(has_item(&out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	k = has_item(&out, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	assert_true(k);
	assert_int_equal(out.v[k - 1].first_seen, 1609459200000000LL);
	assert_int_equal(out.v[k - 1].last_seen, 1612137600000000LL);
	assert_int_equal(out.v[k - 1].confidence, 60);
	assert_true(has_item(&out, "a@evil.example"));
	assert_false(has_item(&out, "b@evil.example"));
	assert_false(has_item(&out, "c@evil.example"));
	assert_true(has_item(&out, "obj.evil.example"));
	assert_int_equal(out.n, 9);
	assert_int_equal(st.reasons[FEED_R_NOT_IDS], 2);
	assert_int_equal(st.reasons[FEED_R_MISP_TYPE], 1);
	assert_int_equal(st.reasons[FEED_R_BAD_VALUE], 1);
	assert_int_equal(st.reasons[FEED_R_BAD_OBJECT], 3);
	assert_int_equal(st.reasons[FEED_R_BAD_FIELD], 1);
	assert_int_equal(feed_parse_misp_event("{}", 2, &d, &out, &st, &err), M_EPARSE);
	assert_int_equal(feed_parse_misp_event("{\"Event\":", 9, &d, &out, &st, &err), M_EPARSE);
	buf_fini(&err);
	feed_items_fini(&out);
}

static void test_misp_bad_manifest(void **state)
{
	struct feed_conf fc = fconf("misp-bad", "misp", g_tmp);
	struct intel_builder *b = intel_builder_new();
	struct feed_stats st;
	struct buf err;

	(void)state;
	buf_init(&err, 0);
	write_file(tpath("manifest.json"), "{\"../../etc/passwd\":{}}");
	assert_int_equal(feed_load_one(&fc, b, &st, &err), M_EPARSE);
	buf_cstr(&err);
	assert_non_null(strstr(err.p, "feed misp-bad: manifest.json: '../../etc/passwd' is not an event uuid"));
	buf_reset(&err);
	write_file(tpath("manifest.json"), "{\"5721c2e4-05ec-4af3-9264-411b950d210e\":{}}");
	assert_int_equal(feed_load_one(&fc, b, &st, &err), M_EIO);
	buf_cstr(&err);
	assert_non_null(strstr(err.p, "feed misp-bad: cannot open"));
	unlink(tpath("manifest.json"));
	buf_fini(&err);
	intel_builder_free(b);
}

/* ---- plain and CSV --------------------------------------------------- */

static void test_detect_type(void **state)
{
	static const struct {
		const char *v;
		enum intel_type t;
	} cases[] = {
		{"192.0.2.1", INTEL_IP}, {"192.0.2.0/24", INTEL_IP},
		{"2001:db8::1", INTEL_IP}, {"2001:db8::/32", INTEL_IP},
		{"::ffff:192.0.2.1", INTEL_IP},
		{"evil.example", INTEL_DOMAIN}, {"xn--p1ai", 0},
		{"a.b.c.example", INTEL_DOMAIN},
		{"http://evil.example/x", INTEL_URL}, {"evil.example/path", INTEL_URL},
		{"hxxp://x", INTEL_URL},
		{"d41d8cd98f00b204e9800998ecf8427e", INTEL_HASH},
		{"da39a3ee5e6b4b0d3255bfef95601890afd80709", INTEL_HASH},
		{"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", INTEL_HASH},
		{"d41d8cd98f00b204e9800998ecf8427", 0},
		{"bad@evil.example", INTEL_EMAIL},
		{"hello", 0}, {"", 0}, {"1.2.3", 0}, {"1.2.3.999", 0},
		{"deadbeef", 0}, {"1.2.3.4.5", 0}, {"a.1.2.3", INTEL_DOMAIN},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* An exact-size copy without a NUL, as values are in a feed
		 * (fuzz_feed_csv found a read past the end here). */
		size_t n = strlen(cases[i].v);
		char *v = malloc(n ? n : 1);
		enum intel_type t;

		assert_non_null(v);
		memcpy(v, cases[i].v, n);
		t = feed_detect_type(v, n);
		free(v);
		if (t != cases[i].t)
			fail_msg("%s: type %d, want %d", cases[i].v, t, cases[i].t);
	}
}

static void test_parse_time(void **state)
{
	static const struct {
		const char *s;
		int ok;
		int64_t us;
	} cases[] = {
		{"1461830405", 1, 1461830405000000LL},
		{"0", 1, 0},
		{"2016-04-28", 1, 1461801600000000LL},
		{"2015-05-15T09:12:16.432678Z", 1, 1431681136432678LL},
		{"2015-05-15T09:12:16.432Z", 1, 1431681136432000LL},
		{"2015-05-15T09:12:16Z", 1, 1431681136000000LL},
		{"2015-05-15 09:12:16", 1, 1431681136000000LL},
		{"2015-05-15T11:12:16+02:00", 1, 1431681136000000LL},
		{"2015-05-15T04:12:16-0500", 1, 1431681136000000LL},
		{"2015-05-15T09:12Z", 1, 1431681120000000LL},
		{"1969-12-31T23:59:59Z", 1, -1000000LL},
		{"2000-02-29T00:00:00Z", 1, 951782400000000LL},
		{" 2016-04-28 ", 1, 1461801600000000LL},
		{"2016-13-01", 0, 0}, {"2016-04-28T25:00:00Z", 0, 0},
		{"2016-04-28T10:00:00.Z", 0, 0}, {"2016-04-28X", 0, 0},
		{"", 0, 0}, {"yesterday", 0, 0}, {"12ab", 0, 0},
		{"2016-04-28T10:00:00Zjunk", 0, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t us = 0;
		int r = feed_parse_time(cases[i].s, strlen(cases[i].s), &us);

		if ((r == 0) != cases[i].ok || (r == 0 && us != cases[i].us))
			fail_msg("'%s': r=%d us=%lld", cases[i].s, r, (long long)us);
	}
}

static void test_plain(void **state)
{
	const char *text =
		"# a comment\n"
		"; another\n"
		"\n"
		"192.0.2.1\n"
		"  198.51.100.0/24   ; SBL123\n"
		"evil.example\r\n"
		"http://evil.example/x?a=1#frag\n"
		"d41d8cd98f00b204e9800998ecf8427e # md5\n"
		"bad@evil.example\n"
		"hello\n"
		"1.2.3.999\n"
		"2001:db8::/32\n"
		"no-newline.example";
	struct feed_defaults d = {.confidence = 33};
	struct feed_items out;
	struct feed_stats st;
	struct feed_conf fc;
	struct intel_set *s;

	(void)state;
	memset(&st, 0, sizeof(st));
	feed_items_init(&out, 0);
	assert_int_equal(feed_parse_plain(text, strlen(text), &d, &out, &st), 0);
	assert_int_equal(out.n, 8);
	/* hello, 1.2.3.999 (all digits: not a host name) */
	assert_int_equal(st.reasons[FEED_R_NO_TYPE], 2);
	assert_int_equal(out.v[0].type, INTEL_IP);
	assert_int_equal(out.v[1].type, INTEL_IP);
	assert_int_equal(out.v[2].type, INTEL_DOMAIN);
	assert_int_equal(out.v[3].type, INTEL_URL);
	assert_int_equal(out.v[4].type, INTEL_HASH);
	assert_int_equal(out.v[5].type, INTEL_EMAIL);
	assert_int_equal(out.v[6].type, INTEL_IP);
	assert_int_equal(out.v[7].type, INTEL_DOMAIN);
	assert_int_equal(out.v[0].confidence, 33);
	assert_memory_equal(out.pool.p + out.v[3].off, "http://evil.example/x?a=1#frag", 30);
	feed_items_fini(&out);

	/* Through the loader. */
	write_file(tpath("plain.txt"), text);
	fc = fconf("plain", "plain", tpath("plain.txt"));
	s = load(&fc, &st, 0);
	assert_int_equal(st.loaded, 8);
	assert_int_equal(st.reasons[FEED_R_BAD_VALUE], 0);
	assert_int_equal(st.rejected, 2);
	assert_true(ip(s, "198.51.100.7"));
	assert_true(dom(s, "a.no-newline.example"));
	intel_set_unref(s);

	/* A fixed type: everything is read as a domain, and the store checks
	 * only the characters: 192.0.2.1, evil.example, the MD5, hello,
	 * 1.2.3.999 and no-newline.example pass; the other 4 do not. */
	fc.type = (char *)"domain";
	s = load(&fc, &st, 0);
	assert_int_equal(st.loaded, 6);
	assert_int_equal(st.reasons[FEED_R_BAD_VALUE], 4);
	intel_set_unref(s);
	fc.type = (char *)"bogus";
	s = load(&fc, &st, M_EINVAL);
	intel_set_unref(s);
}

static void test_csv(void **state)
{
	const char *text =
		"# generated by a feed\n"
		"value,kind,score,first,last,until\n"
		"192.0.2.1,ip,90,2021-01-01,2021-02-01,2031-01-01T00:00:00Z\r\n"
		"\"evil.example\",domain,,,,\n"
		"\"http://x.example/a,b\",url,10,,,\n"
		"\"http://x.example/say \"\"hi\"\"\",url,,,,\n"
		"\"multi\nline.example\",domain,,,,\n"
		"  spaced.example  ,domain,,,,\n"
		"d41d8cd98f00b204e9800998ecf8427e,,,,,\n"
		"old.example,domain,,,,2020-01-01\n"
		"unknown.example,frob,,,,\n"
		"conf.example,domain,101,,,\n"
		"time.example,domain,,soon,,\n"
		"\"bad\"quote.example,domain,,,,\n"
		",domain,,,,\n"
		"short.example\n"
		"\"unterminated.example,domain,,,,\n";
	struct feed_conf fc = fconf("csv", "csv", "");
	struct feed_defaults d = {.confidence = 50, .now_us = 1735689600000000LL};
	struct feed_items out;
	struct feed_stats st;
	int k;

	(void)state;
	fc.csv_header = 1;
	fc.csv_value_col = 1;
	fc.csv_type_col = 2;
	fc.csv_confidence_col = 3;
	fc.csv_first_seen_col = 4;
	fc.csv_last_seen_col = 5;
	fc.csv_valid_until_col = 6;
	memset(&st, 0, sizeof(st));
	feed_items_init(&out, 0);
	assert_int_equal(feed_parse_csv(text, strlen(text), &fc, &d, &out, &st), 0);
	k = has_item(&out, "192.0.2.1");
	assert_true(k);
	assert_int_equal(out.v[k - 1].type, INTEL_IP);
	assert_int_equal(out.v[k - 1].confidence, 90);
	assert_int_equal(out.v[k - 1].first_seen, 1609459200000000LL);
	assert_int_equal(out.v[k - 1].last_seen, 1612137600000000LL);
	assert_int_equal(out.v[k - 1].valid_until, 1924992000000000LL);
	assert_true(has_item(&out, "evil.example"));
	k = has_item(&out, "http://x.example/a,b");
	assert_true(k);
	assert_int_equal(out.v[k - 1].confidence, 10);
	assert_true(has_item(&out, "http://x.example/say \"hi\""));
	assert_true(has_item(&out, "multi\nline.example"));
	assert_true(has_item(&out, "spaced.example"));
	k = has_item(&out, "d41d8cd98f00b204e9800998ecf8427e");
	assert_true(k);
	assert_int_equal(out.v[k - 1].type, INTEL_HASH);   /* detected */
	/* short.example has no type column: detected as a domain. */
	assert_true(has_item(&out, "short.example"));
	assert_int_equal(out.n, 8);
	assert_int_equal(st.reasons[FEED_R_EXPIRED], 1);
	assert_int_equal(st.reasons[FEED_R_NO_TYPE], 1);
	assert_int_equal(st.reasons[FEED_R_BAD_FIELD], 2);
	assert_int_equal(st.reasons[FEED_R_BAD_ROW], 3);   /* bad quote, empty, unterminated */
	feed_items_fini(&out);

	/* Tab-separated, value in column 2, no header. */
	{
		const char *tsv = "x\t192.0.2.5\n"
				  "y\tevil.example\n";
		struct feed_conf f2 = fconf("tsv", "csv", "");

		f2.csv_delimiter = (char *)"\\t";
		f2.csv_value_col = 2;
		memset(&st, 0, sizeof(st));
		feed_items_init(&out, 0);
		assert_int_equal(feed_parse_csv(tsv, strlen(tsv), &f2, &d, &out, &st), 0);
		assert_int_equal(out.n, 2);
		assert_true(has_item(&out, "192.0.2.5"));
		feed_items_fini(&out);
	}
}

static void test_csv_short_row_counted(void **state)
{
	const char *text = "a.example,domain\nb.example\n";
	struct feed_conf fc = fconf("csv", "csv", "");
	struct feed_defaults d = {.confidence = 50};
	struct feed_items out;
	struct feed_stats st;

	(void)state;
	fc.csv_value_col = 1;
	fc.csv_type_col = 2;
	memset(&st, 0, sizeof(st));
	feed_items_init(&out, 0);
	assert_int_equal(feed_parse_csv(text, strlen(text), &fc, &d, &out, &st), 0);
	/* A missing type column means "detect". */
	assert_int_equal(out.n, 2);
	fc.csv_value_col = 3;
	feed_items_reset(&out);
	memset(&st, 0, sizeof(st));
	assert_int_equal(feed_parse_csv(text, strlen(text), &fc, &d, &out, &st), 0);
	assert_int_equal(out.n, 0);
	assert_int_equal(st.reasons[FEED_R_BAD_ROW], 2);
	feed_items_fini(&out);
}

/* ---- manager --------------------------------------------------------- */

static void test_manager_keeps_previous(void **state)
{
	struct feed_conf fc[2];
	struct feed_manager *m;
	struct intel_set *s = NULL, *s2 = NULL;
	struct buf report, err;
	const struct feed_stats *st;
	int64_t now = T2020;

	(void)state;
	write_file(tpath("a.txt"), "192.0.2.1\nevil.example\n");
	write_file(tpath("b.json"), "{\"type\":\"bundle\",\"objects\":["
		   IND("a", "2021-01-01T00:00:00Z", "[ipv4-addr:value = '198.51.100.1']", "")
		   "]}");
	fc[0] = fconf("list-a", "plain", tpath("a.txt"));
	fc[0].refresh_s = 60;
	fc[1] = fconf("stix-b", "stix", tpath("b.json"));
	fc[1].refresh_s = 3600;
	buf_init(&report, 0);
	buf_init(&err, 0);
	m = feed_manager_new(fc, 2, &err);
	assert_non_null(m);
	assert_int_equal(feed_manager_refresh(m, now, 0, &s, &report), 0);
	assert_non_null(s);
	assert_int_equal(intel_set_count(s), 3);
	buf_cstr(&report);
	assert_non_null(strstr(report.p, "feed=list-a status=ok loaded=2"));
	assert_non_null(strstr(report.p, "feed=stix-b status=ok loaded=1"));
	assert_int_equal(intel_lookup_ip(s, "198.51.100.1", 12, 0)->meta.source[0], 's');

	/* Nothing due: no new set. */
	buf_reset(&report);
	assert_int_equal(feed_manager_refresh(m, now + 30000000, 0, &s2, &report), 0);
	assert_null(s2);
	assert_int_equal(report.len, 0);
	assert_int_equal(feed_manager_next_due(m), now + 60000000);

	/* Feed a breaks (file gone), b breaks (bad JSON): both keep their
	 * previous copy and the failure is reported with the feed's name. */
	unlink(tpath("a.txt"));
	write_file(tpath("b.json"), "{\"type\":\"bundle\",\"objects\":[");
	buf_reset(&report);
	assert_int_equal(feed_manager_refresh(m, now + 61000000, 1, &s2, &report), 0);
	buf_cstr(&report);
	assert_non_null(strstr(report.p, "feed=list-a status=error error=\"feed list-a: cannot open"));
	assert_non_null(strstr(report.p, "feed=stix-b status=error error=\"feed stix-b: STIX: bad JSON"));
	assert_non_null(strstr(report.p, "kept=2"));
	assert_null(s2);   /* nothing changed */
	st = feed_manager_stats(m, 0);
	assert_int_equal(st->last_err, M_EIO);
	assert_int_equal(st->loaded, 2);
	assert_int_equal(st->last_success_us, now);
	assert_int_equal(st->last_attempt_us, now + 61000000);
	assert_non_null(strstr(st->last_error, "list-a"));
	assert_int_equal(feed_manager_held(m, 0), 2);

	/* a comes back with different content: a new set, b still in force. */
	write_file(tpath("a.txt"), "203.0.113.9\n");
	buf_reset(&report);
	assert_int_equal(feed_manager_refresh(m, now + 122000000, 0, &s2, &report), 0);
	assert_non_null(s2);
	assert_int_equal(intel_set_count(s2), 2);
	assert_true(ip(s2, "203.0.113.9"));
	assert_true(ip(s2, "198.51.100.1"));
	assert_false(dom(s2, "evil.example"));
	/* The old set is still whole for its readers. */
	assert_true(dom(s, "evil.example"));
	intel_set_unref(s);
	intel_set_unref(s2);
	buf_fini(&report);
	buf_fini(&err);
	feed_manager_free(m);
}

static void test_manager_valid_from(void **state)
{
	struct feed_conf fc = fconf("future", "stix", tpath("f.json"));
	struct feed_manager *m;
	struct intel_set *s = NULL;
	struct buf err;

	(void)state;
	write_file(tpath("f.json"), "{\"type\":\"bundle\",\"objects\":["
		   "{\"type\":\"indicator\",\"id\":\"indicator--x\",\"modified\":\"2021-01-01T00:00:00Z\","
		   "\"pattern\":\"[domain-name:value = 'soon.example']\",\"valid_from\":\"2030-01-01T00:00:00Z\"},"
		   IND("y", "2021-01-01T00:00:00Z", "[domain-name:value = 'now.example']",
		       ",\"valid_until\":\"2031-01-01T00:00:00Z\"")
		   "]}");
	fc.refresh_s = 365 * 86400;
	buf_init(&err, 0);
	m = feed_manager_new(&fc, 1, &err);
	assert_non_null(m);
	assert_int_equal(feed_manager_refresh(m, T2020, 0, &s, NULL), 0);
	assert_non_null(s);
	assert_false(dom(s, "soon.example"));
	assert_true(dom(s, "now.example"));
	assert_int_equal(feed_manager_stats(m, 0)->pending, 1);
	assert_int_equal(feed_manager_stats(m, 0)->loaded, 2);
	{
		/* feed_load_one (now is the real clock, before 2030) leaves
		 * the future indicator out. */
		struct feed_stats st;
		struct intel_set *s1 = load(&fc, &st, 0);

		if (T2030 > time(NULL) * 1000000LL) {
			assert_int_equal(st.pending, 1);
			assert_int_equal(st.loaded, 1);
			assert_false(dom(s1, "soon.example"));
		}
		intel_set_unref(s1);
	}
	assert_int_equal(feed_manager_next_due(m), T2030 < T2020 + 365 * 86400000000LL ?
			 T2030 : T2020 + 365 * 86400000000LL);
	intel_set_unref(s);
	/* Past valid_from (and the feed not due): a rebuild from memory. */
	assert_int_equal(feed_manager_refresh(m, T2030 + 1, 0, &s, NULL), 0);
	assert_non_null(s);
	assert_true(dom(s, "soon.example"));
	/* valid_until travels into the store, which hides it after. */
	assert_non_null(intel_lookup_domain(s, "now.example", 11, T2030));
	assert_null(intel_lookup_domain(s, "now.example", 11, T2030 + 366 * 86400000000LL));
	intel_set_unref(s);
	buf_fini(&err);
	feed_manager_free(m);
}

static void test_manager_config_errors(void **state)
{
	struct feed_conf fc[2];
	struct buf err;

	(void)state;
	buf_init(&err, 0);
	fc[0] = fconf("x", "rss", "/dev/null");
	assert_null(feed_manager_new(fc, 1, &err));
	buf_cstr(&err);
	assert_non_null(strstr(err.p, "feed x: unknown kind 'rss'"));
	buf_reset(&err);
	fc[0] = fconf("x", "taxii", "http://127.0.0.1:1/");
	assert_null(feed_manager_new(fc, 1, &err));
	buf_cstr(&err);
	assert_non_null(strstr(err.p, "needs a collection"));
	buf_reset(&err);
	fc[0] = fconf("x", "plain", "/dev/null");
	fc[1] = fconf("x", "plain", "/dev/null");
	assert_null(feed_manager_new(fc, 2, &err));
	buf_cstr(&err);
	assert_non_null(strstr(err.p, "name used twice"));
	buf_reset(&err);
	fc[0] = fconf("", "plain", "/dev/null");
	assert_null(feed_manager_new(fc, 1, &err));
	buf_fini(&err);
}

static void test_config_parse(void **state)
{
	const char *yaml =
		"intel:\n"
		"  feeds:\n"
		"    - name: abuse\n"
		"      kind: csv\n"
		"      url: https://example.invalid/feed.csv\n"
		"      refresh: 15m\n"
		"      header: true\n"
		"      value_column: 2\n"
		"      type_column: 3\n"
		"    - name: otx\n"
		"      kind: taxii\n"
		"      url: https://example.invalid/taxii2/api1/\n"
		"      collection: c-1\n"
		"      bearer: secret\n"
		"      max_bytes: 10M\n";
	struct conf_doc doc = {0};
	struct feed_conf *fc = NULL;
	size_t n = 0;
	struct buf err;

	(void)state;
	buf_init(&err, 0);
	assert_int_equal(conf_parse("test.yaml", yaml, strlen(yaml), &doc, &err), 0);
	assert_int_equal(feed_conf_parse_list(&doc,
		conf_map_get(conf_map_get(doc.root, "intel"), "feeds"), &fc, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(fc[0].name, "abuse");
	assert_string_equal(fc[0].kind, "csv");
	assert_int_equal(fc[0].refresh_s, 900);
	assert_int_equal(fc[0].csv_header, 1);
	assert_int_equal(fc[0].csv_value_col, 2);
	assert_int_equal(fc[0].csv_type_col, 3);
	assert_int_equal(fc[0].confidence, 50);
	assert_int_equal(fc[0].timeout_s, 60);
	assert_string_equal(fc[1].collection, "c-1");
	assert_string_equal(fc[1].bearer, "secret");
	assert_int_equal(fc[1].max_bytes, 10 << 20);
	assert_int_equal(fc[1].refresh_s, 3600);
	feed_conf_free_all(fc, n);
	conf_doc_fini(&doc);

	/* An unknown key is an error with its position. */
	yaml = "feeds:\n  - name: a\n    url: /x\n    colour: red\n";
	assert_int_equal(conf_parse("t.yaml", yaml, strlen(yaml), &doc, &err), 0);
	buf_reset(&err);
	assert_true(feed_conf_parse_list(&doc, conf_map_get(doc.root, "feeds"),
					 &fc, &n, &err) < 0);
	buf_cstr(&err);
	assert_non_null(strstr(err.p, "t.yaml:4"));
	conf_doc_fini(&doc);
	buf_fini(&err);
}

/* ---- HTTP: TAXII paging, auth, errors, limits ------------------------ */

struct srv {
	struct MHD_Daemon *d;
	unsigned short port;
	pthread_mutex_t mu;
	int requests;
	char last_accept[128];
	char queries[8][256];
	int nq;
};

static struct srv g_srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const char *taxii_page1 =
	"{\"more\":true,\"next\":\"p2 & more\",\"objects\":["
	IND("t1", "2021-01-01T00:00:00Z", "[ipv4-addr:value = '192.0.2.10']", "") ","
	IND("t2", "2021-01-01T00:00:00Z", "[domain-name:value = 'page1.example']", "") ","
	IND("t3", "2021-01-01T00:00:00Z", "[domain-name:value = 'revoke-me.example']", "")
	"]}";
static const char *taxii_page1_nonext =
	"{\"more\":true,\"objects\":["
	IND("t1", "2021-01-01T00:00:00Z", "[ipv4-addr:value = '192.0.2.10']", "") ","
	IND("t2", "2021-01-01T00:00:00Z", "[domain-name:value = 'page1.example']", "")
	"]}";
static const char *taxii_page2 =
	"{\"more\":false,\"objects\":["
	IND("t2", "2021-05-01T00:00:00Z", "[domain-name:value = 'page2.example']", "") ","
	IND("t3", "2021-05-01T00:00:00Z", "[domain-name:value = 'revoke-me.example']", ",\"revoked\":true") ","
	IND("t4", "2021-01-01T00:00:00Z", "[file:name = 'x.exe']", "")
	"]}";

static enum MHD_Result srv_reply(struct MHD_Connection *c, unsigned status,
				 const char *body, size_t len, const char *ctype,
				 const char *hname, const char *hval)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", ctype);
	if (hname)
		MHD_add_response_header(r, hname, hval);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result srv_file(struct MHD_Connection *c, const char *path)
{
	FILE *f = fopen(path, "rb");
	char *p;
	long n;
	enum MHD_Result ret;

	if (f == NULL)
		return srv_reply(c, 404, "no", 2, "text/plain", NULL, NULL);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	if (p == NULL || fread(p, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(p);
		return MHD_NO;
	}
	fclose(f);
	ret = srv_reply(c, 200, p, (size_t)n, "application/json", NULL, NULL);
	free(p);
	return ret;
}

static enum MHD_Result srv_handle(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	const char *next = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "next");
	const char *after = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "added_after");
	const char *acc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	const char *tx = "application/taxii+json;version=2.1";

	(void)cls; (void)method; (void)version; (void)upload; (void)upload_size;
	(void)con_cls;
	pthread_mutex_lock(&g_srv.mu);
	g_srv.requests++;
	snprintf(g_srv.last_accept, sizeof(g_srv.last_accept), "%s", acc ? acc : "");
	if (g_srv.nq < 8)
		snprintf(g_srv.queries[g_srv.nq++], sizeof(g_srv.queries[0]),
			 "%s next=%s added_after=%s", url, next ? next : "-",
			 after ? after : "-");
	pthread_mutex_unlock(&g_srv.mu);

	if (strcmp(url, "/taxii2/api1/collections/c1/objects/") == 0) {
		if (acc == NULL || strcmp(acc, tx) != 0)
			return srv_reply(c, 406, "{}", 2, tx, NULL, NULL);
		if (next == NULL)
			return srv_reply(c, 200, taxii_page1, strlen(taxii_page1), tx, NULL, NULL);
		if (strcmp(next, "p2 & more") == 0)
			return srv_reply(c, 200, taxii_page2, strlen(taxii_page2), tx, NULL, NULL);
		return srv_reply(c, 400, "{}", 2, tx, NULL, NULL);
	}
	/* Paging without next: by X-TAXII-Date-Added-Last. */
	if (strcmp(url, "/taxii2/api1/collections/c2/objects/") == 0) {
		if (after == NULL || strcmp(after, "2020-01-01T00:00:00Z") == 0)
			return srv_reply(c, 200, taxii_page1_nonext,
					 strlen(taxii_page1_nonext), tx,
					 "X-TAXII-Date-Added-Last", "2021-06-01T00:00:00.000Z");
		if (strcmp(after, "2021-06-01T00:00:00.000Z") == 0)
			return srv_reply(c, 200, taxii_page2, strlen(taxii_page2), tx, NULL, NULL);
		return srv_reply(c, 400, "{}", 2, tx, NULL, NULL);
	}
	/* A server whose next never changes. */
	if (strcmp(url, "/taxii2/api1/collections/same/objects/") == 0) {
		static const char same[] = "{\"more\":true,\"next\":\"n\",\"objects\":[]}";

		return srv_reply(c, 200, same, sizeof(same) - 1, tx, NULL, NULL);
	}
	if (strcmp(url, "/taxii2/api1/collections/loop/objects/") == 0) {
		static const char loop[] = "{\"more\":true,\"objects\":[]}";

		return srv_reply(c, 200, loop, sizeof(loop) - 1, tx, NULL, NULL);
	}
	if (strcmp(url, "/taxii2/api1/collections/secret/objects/") == 0) {
		if (auth == NULL || strcmp(auth, "Bearer s3cret") != 0)
			return srv_reply(c, 401, "{}", 2, tx, NULL, NULL);
		return srv_reply(c, 200, taxii_page2, strlen(taxii_page2), tx, NULL, NULL);
	}
	if (strcmp(url, "/basic.txt") == 0) {
		/* "user:pw" */
		if (auth == NULL || strcmp(auth, "Basic dXNlcjpwdw==") != 0)
			return srv_reply(c, 401, "no", 2, "text/plain", NULL, NULL);
		return srv_reply(c, 200, "192.0.2.77\n", 11, "text/plain", NULL, NULL);
	}
	if (strcmp(url, "/list.txt") == 0)
		return srv_reply(c, 200, "192.0.2.55\nhttp.example\n", 24, "text/plain", NULL, NULL);
	if (strcmp(url, "/error.txt") == 0)
		return srv_reply(c, 500, "oops", 4, "text/plain", NULL, NULL);
	if (strcmp(url, "/big.txt") == 0) {
		static char big[100000];

		memset(big, 'a', sizeof(big));
		return srv_reply(c, 200, big, sizeof(big), "text/plain", NULL, NULL);
	}
	if (strncmp(url, "/misp/", 6) == 0 && strstr(url, "..") == NULL) {
		char p[4400];

		snprintf(p, sizeof(p), "%s/intel/misp-feed/%s", g_conf, url + 6);
		return srv_file(c, p);
	}
	return srv_reply(c, 404, "no", 2, "text/plain", NULL, NULL);
}

static int srv_start(void)
{
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *di;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = 0;
	g_srv.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
				   srv_handle, NULL,
				   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				   MHD_OPTION_END);
	if (g_srv.d == NULL)
		return -1;
	di = MHD_get_daemon_info(g_srv.d, MHD_DAEMON_INFO_BIND_PORT);
	if (di == NULL)
		return -1;
	g_srv.port = di->port;
	return 0;
}

static const char *url(const char *path)
{
	static char u[8][256];
	static int k;

	k = (k + 1) % 8;
	snprintf(u[k], sizeof(u[k]), "http://127.0.0.1:%u%s", g_srv.port, path);
	return u[k];
}

static void srv_clear(void)
{
	pthread_mutex_lock(&g_srv.mu);
	g_srv.nq = 0;
	g_srv.requests = 0;
	pthread_mutex_unlock(&g_srv.mu);
}

static void test_taxii_paging(void **state)
{
	struct feed_conf fc = fconf("taxii", "taxii", url("/taxii2/api1/"));
	struct feed_stats st;
	struct intel_set *s;

	(void)state;
	srv_clear();
	fc.collection = (char *)"c1";
	s = load(&fc, &st, 0);
	assert_int_equal(g_srv.nq, 2);
	assert_string_equal(g_srv.queries[0],
			    "/taxii2/api1/collections/c1/objects/ next=- added_after=-");
	assert_string_equal(g_srv.queries[1],
			    "/taxii2/api1/collections/c1/objects/ next=p2 & more added_after=-");
	assert_string_equal(g_srv.last_accept, "application/taxii+json;version=2.1");
	assert_int_equal(st.requests, 2);
	/* t1 from page 1; t2 replaced by its page-2 version; t3 revoked on
	 * page 2; t4 rejected (file:name). */
	assert_true(ip(s, "192.0.2.10"));
	assert_true(dom(s, "page2.example"));
	assert_false(dom(s, "page1.example"));
	assert_false(dom(s, "revoke-me.example"));
	assert_int_equal(intel_set_count(s), 2);
	assert_int_equal(st.reasons[FEED_R_SUPERSEDED], 2);
	assert_int_equal(st.reasons[FEED_R_REVOKED], 1);
	assert_int_equal(st.reasons[FEED_R_PATTERN_PATH], 1);
	intel_set_unref(s);

	/* added_after from the config, then from X-TAXII-Date-Added-Last. */
	srv_clear();
	fc.collection = (char *)"c2";
	fc.added_after = (char *)"2020-01-01T00:00:00Z";
	s = load(&fc, &st, 0);
	intel_set_unref(s);
	srv_clear();
	fc.added_after = NULL;
	s = load(&fc, &st, 0);
	assert_int_equal(g_srv.nq, 2);
	assert_string_equal(g_srv.queries[1],
			    "/taxii2/api1/collections/c2/objects/ next=- added_after=2021-06-01T00:00:00.000Z");
	assert_int_equal(intel_set_count(s), 2);
	intel_set_unref(s);
}

static void test_http_errors_and_auth(void **state)
{
	struct feed_conf fc = fconf("taxii", "taxii", url("/taxii2/api1"));
	struct intel_builder *b;
	struct feed_stats st;
	struct intel_set *s;
	struct buf err;

	(void)state;
	buf_init(&err, 0);
	fc.collection = (char *)"secret";
	b = intel_builder_new();
	assert_int_equal(feed_load_one(&fc, b, &st, &err), M_EAUTH);
	buf_cstr(&err);
	assert_non_null(strstr(err.p, "feed taxii: "));
	assert_non_null(strstr(err.p, "HTTP status 401"));
	intel_builder_free(b);
	fc.bearer = (char *)"s3cret";
	s = load(&fc, &st, 0);
	assert_true(dom(s, "page2.example"));
	intel_set_unref(s);

	/* more: true forever is bounded... by "more without next". */
	fc.collection = (char *)"loop";
	buf_reset(&err);
	b = intel_builder_new();
	assert_int_equal(feed_load_one(&fc, b, &st, &err), M_EPARSE);
	buf_cstr(&err);
	assert_non_null(strstr(err.p, "more is true but there is no next"));
	intel_builder_free(b);

	fc.collection = (char *)"same";
	buf_reset(&err);
	srv_clear();
	b = intel_builder_new();
	assert_int_equal(feed_load_one(&fc, b, &st, &err), M_EPARSE);
	buf_cstr(&err);
	assert_non_null(strstr(err.p, "paging does not advance"));
	assert_int_equal(g_srv.requests, 2);
	intel_builder_free(b);

	fc = fconf("basic", "plain", url("/basic.txt"));
	s = load(&fc, &st, M_EAUTH);
	intel_set_unref(s);
	fc.username = (char *)"user";
	fc.password = (char *)"pw";
	s = load(&fc, &st, 0);
	assert_true(ip(s, "192.0.2.77"));
	intel_set_unref(s);

	fc = fconf("http500", "plain", url("/error.txt"));
	buf_reset(&err);
	b = intel_builder_new();
	assert_int_equal(feed_load_one(&fc, b, &st, &err), M_EIO);
	buf_cstr(&err);
	assert_non_null(strstr(err.p, "feed http500: http://127.0.0.1:"));
	assert_non_null(strstr(err.p, "/error.txt: HTTP status 500"));
	intel_builder_free(b);

	fc = fconf("big", "plain", url("/big.txt"));
	fc.max_bytes = 50000;
	buf_reset(&err);
	b = intel_builder_new();
	assert_int_equal(feed_load_one(&fc, b, &st, &err), M_ELIMIT);
	buf_cstr(&err);
	assert_non_null(strstr(err.p, "larger than max_bytes"));
	intel_builder_free(b);

	/* Credentials and the query stay out of messages. */
	{
		char u[256];

		snprintf(u, sizeof(u), "http://me:pw@127.0.0.1:%u/error.txt?key=K1",
			 g_srv.port);
		fc = fconf("http500", "plain", u);
		buf_reset(&err);
		b = intel_builder_new();
		assert_int_equal(feed_load_one(&fc, b, &st, &err), M_EIO);
		buf_cstr(&err);
		assert_non_null(strstr(err.p, "http://***@127.0.0.1:"));
		assert_null(strstr(err.p, "pw"));
		assert_null(strstr(err.p, "K1"));
		intel_builder_free(b);
	}

	fc = fconf("scheme", "plain", "ftp://127.0.0.1/x");
	buf_reset(&err);
	b = intel_builder_new();
	assert_int_equal(feed_load_one(&fc, b, &st, &err), M_EINVAL);
	intel_builder_free(b);

	/* Nothing listens on port 1 of loopback. */
	fc = fconf("refused", "plain", "http://127.0.0.1:1/x");
	fc.timeout_s = 5;
	buf_reset(&err);
	b = intel_builder_new();
	assert_int_equal(feed_load_one(&fc, b, &st, &err), M_EIO);
	intel_builder_free(b);
	buf_fini(&err);
}

static void test_http_misp_and_manager(void **state)
{
	struct feed_conf fc[2];
	struct feed_manager *m;
	struct intel_set *s = NULL, *s2 = NULL;
	struct buf report, err;

	(void)state;
	fc[0] = fconf("misp-http", "misp", url("/misp/"));
	fc[1] = fconf("list", "plain", url("/list.txt"));
	fc[1].refresh_s = 10;
	buf_init(&report, 0);
	buf_init(&err, 0);
	m = feed_manager_new(fc, 2, &err);
	assert_non_null(m);
	assert_int_equal(feed_manager_refresh(m, T2020, 0, &s, &report), 0);
	assert_non_null(s);
	assert_int_equal(feed_manager_stats(m, 0)->loaded, 98);
	assert_int_equal(intel_set_count(s), 100);
	assert_true(ip(s, "192.0.2.55"));
	/* The list now answers 500: the previous copy stays. */
	feed_manager_free(m);
	fc[1] = fconf("list", "plain", url("/error.txt"));
	m = feed_manager_new(fc, 2, &err);
	assert_non_null(m);
	assert_int_equal(feed_manager_refresh(m, T2020, 0, &s2, NULL), 0);
	assert_non_null(s2);
	assert_int_equal(intel_set_count(s2), 98);
	assert_int_equal(feed_manager_stats(m, 1)->last_err, M_EIO);
	intel_set_unref(s2);
	intel_set_unref(s);
	feed_manager_free(m);
	buf_fini(&report);
	buf_fini(&err);
}

static int setup(void **state)
{
	(void)state;
	conf_dir();
	snprintf(g_tmp, sizeof(g_tmp), "/tmp/mamori-feed-XXXXXX");
	if (mkdtemp(g_tmp) == NULL)
		return -1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return srv_start();
}

static int teardown(void **state)
{
	static const char *const files[] = {"a.txt", "b.json", "f.json",
					    "plain.txt", "manifest.json"};

	(void)state;
	if (g_srv.d)
		MHD_stop_daemon(g_srv.d);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(tpath(files[i]));
	rmdir(g_tmp);
	curl_global_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stix_examples),
		cmocka_unit_test(test_stix_example_values),
		cmocka_unit_test(test_stix_interop_not_stix),
		cmocka_unit_test(test_stix_patterns),
		cmocka_unit_test(test_stix_pattern_values),
		cmocka_unit_test(test_stix_latest_wins_and_revoked),
		cmocka_unit_test(test_stix_validity),
		cmocka_unit_test(test_stix_bad_documents),
		cmocka_unit_test(test_misp_feed_dir),
		cmocka_unit_test(test_misp_event_types),
		cmocka_unit_test(test_misp_bad_manifest),
		cmocka_unit_test(test_detect_type),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_csv),
		cmocka_unit_test(test_csv_short_row_counted),
		cmocka_unit_test(test_manager_keeps_previous),
		cmocka_unit_test(test_manager_valid_from),
		cmocka_unit_test(test_manager_config_errors),
		cmocka_unit_test(test_config_parse),
		cmocka_unit_test(test_taxii_paging),
		cmocka_unit_test(test_http_errors_and_auth),
		cmocka_unit_test(test_http_misp_and_manager),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
