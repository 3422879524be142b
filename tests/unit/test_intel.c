/*
 * Unit tests of the threat-intelligence indicator store: validation on add,
 * longest-prefix match for IPv4/IPv6 (with the IPv4-mapped rule), subdomain
 * matching, URL normalisation, hashes, e-mail, expiry, duplicates, reference
 * counting, and 100,000 random indicators all found while random
 * non-members are not. Batches (one type or mixed) must answer exactly as
 * single lookups and as a slow reference matcher do, across expiry edges
 * and the pipeline's internal bounds; the URL fast check must never call
 * a URL normal that the normaliser would change. The dotted-quad parser
 * must agree with inet_pton, and longest-prefix match over more IPv4
 * prefixes than /16 blocks with a scan of the prefixes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "core/err.h"
#include "detect/intel.h"

static int add(struct intel_builder *b, enum intel_type t, const char *v,
	       const char *src, int64_t valid_until)
{
	struct intel_meta m = {.source = src, .confidence = 80,
			       .valid_until = valid_until};

	return intel_builder_add(b, t, v, strlen(v), &m);
}

static void test_intel_validation(void **state)
{
	static const struct {
		enum intel_type t;
		const char *v;
		int ok;
	} cases[] = {
		{INTEL_IP, "10.0.0.1", 1},
		{INTEL_IP, "10.0.0.0/8", 1},
		{INTEL_IP, "10.0.0.1/33", 0},
		{INTEL_IP, "10.0.0", 0},
		{INTEL_IP, "10.0.0.256", 0},
		{INTEL_IP, "010.0.0.1", 0},
		{INTEL_IP, "10.0.0.1/", 0},
		{INTEL_IP, "10.0.0.1/08", 0},
		{INTEL_IP, "2001:db8::/32", 1},
		{INTEL_IP, "2001:db8::/129", 0},
		{INTEL_IP, "2001:db8:::1", 0},
		{INTEL_IP, "example.org", 0},
		{INTEL_DOMAIN, "example.org", 1},
		{INTEL_DOMAIN, "Example.ORG.", 1},
		{INTEL_DOMAIN, "*.example.org", 1},
		{INTEL_DOMAIN, "", 0},
		{INTEL_DOMAIN, ".", 0},
		{INTEL_DOMAIN, "a..b", 0},
		{INTEL_DOMAIN, "a b.org", 0},
		{INTEL_HASH, "d41d8cd98f00b204e9800998ecf8427e", 1},
		{INTEL_HASH, "da39a3ee5e6b4b0d3255bfef95601890afd80709", 1},
		{INTEL_HASH, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 1},
		{INTEL_HASH, "d41d8cd98f00b204e9800998ecf8427", 0},
		{INTEL_HASH, "g41d8cd98f00b204e9800998ecf8427e", 0},
		{INTEL_EMAIL, "bad@example.org", 1},
		{INTEL_EMAIL, "@example.org", 0},
		{INTEL_EMAIL, "nobody", 0},
		{INTEL_URL, "http://example.org/x", 1},
		{INTEL_URL, "http:///x", 0},
	};
	struct intel_builder *b = intel_builder_new();
	size_t i, bad = 0;

	assert_non_null(b);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = add(b, cases[i].t, cases[i].v, "t", 0);

		if (cases[i].ok) {
			assert_int_equal(r, 0);
		} else {
			assert_int_equal(r, M_EINVAL);
			bad++;
		}
	}
	assert_int_equal(intel_builder_rejected(b), bad);
	assert_int_equal(intel_builder_add(b, INTEL_DOMAIN, "x", 0, NULL),
			 M_EINVAL);
	intel_builder_free(b);
}

static void test_intel_ip(void **state)
{
	static const char *const ind[] = {
		"10.0.0.0/8", "10.1.0.0/16", "10.1.2.3", "192.0.2.0/24",
		"0.0.0.0/1", "2001:db8::/32", "2001:db8:1::/48", "::1",
		"2001:db8:1::5", "::ffff:198.51.100.0/120", "203.0.113.9/32",
		"172.16.5.77/12",
	};
	static const struct {
		const char *q;
		const char *want; /* value of the match, NULL = none */
	} cases[] = {
		{"10.1.2.3", "10.1.2.3"},
		{"10.1.2.4", "10.1.0.0/16"},
		{"10.2.0.1", "10.0.0.0/8"},
		{"11.0.0.1", "0.0.0.0/1"},
		{"128.0.0.1", NULL},
		{"192.0.2.255", "192.0.2.0/24"},
		{"192.0.3.0", NULL},
		{"::1", "::1"},
		{"0:0:0:0:0:0:0:1", "::1"},
		{"::2", NULL},
		{"2001:db8::1", "2001:db8::/32"},
		{"2001:DB8:1::1", "2001:db8:1::/48"},
		{"2001:db8:1:0:0:0:0:5", "2001:db8:1::5"},
		{"2001:db9::1", NULL},
		/* IPv4-mapped: the mapped /120 is 198.51.100.0/24 */
		{"198.51.100.7", "::ffff:198.51.100.0/120"},
		{"::ffff:198.51.100.8", "::ffff:198.51.100.0/120"},
		{"::ffff:10.1.2.3", "10.1.2.3"},
		{"203.0.113.9", "203.0.113.9/32"},
		{"172.31.0.1", "172.16.5.77/12"},
		{"172.32.0.1", NULL},
		{"10.1.2.3/32", NULL},
		{"", NULL},
		{"garbage", NULL},
	};
	struct intel_builder *b = intel_builder_new();
	struct intel_set *s;
	size_t i;

	for (i = 0; i < sizeof(ind) / sizeof(ind[0]); i++)
		assert_int_equal(add(b, INTEL_IP, ind[i], "feed", 0), 0);
	s = intel_builder_finish(b);
	assert_non_null(s);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct intel_indicator *r =
			intel_lookup_ip(s, cases[i].q, strlen(cases[i].q), 0);

		if (cases[i].want == NULL) {
			if (r != NULL)
				fail_msg("%s matched %s", cases[i].q, r->value);
		} else {
			if (r == NULL)
				fail_msg("%s: no match", cases[i].q);
			assert_string_equal(r->value, cases[i].want);
			assert_int_equal(r->type, INTEL_IP);
			assert_string_equal(r->meta.source, "feed");
		}
	}
	intel_set_unref(s);
}

static void test_intel_domain(void **state)
{
	static const struct {
		const char *q;
		const char *want;
	} cases[] = {
		{"example.org", "example.org"},
		{"EXAMPLE.org.", "example.org"},
		{"a.b.example.org", "example.org"},
		{"notexample.org", NULL},
		{"example.org.evil", NULL},
		{"org", NULL},
		{"x.deep.example.net", "deep.example.net"},
		{"example.net", NULL},
		{"wild.test", "wild.test"},
		{"a.wild.test", "wild.test"},
		/* bytes from 0x80 up next to capitals: looked at one by one */
		{"\xc3\xbcZ\xc3.Example.ORG", "example.org"},
		{"x.\xff\xdbZ.test", "\xff\xdbz.test"},
		{"x.\xff\xdbz.test", "\xff\xdbz.test"},
		{"x.\xff\xdbY.test", NULL},
		{"", NULL},
		{".", NULL},
	};
	struct intel_builder *b = intel_builder_new();
	struct intel_set *s;
	char longname[300];
	size_t i;

	assert_int_equal(add(b, INTEL_DOMAIN, "Example.Org", NULL, 0), 0);
	assert_int_equal(add(b, INTEL_DOMAIN, "deep.example.net.", NULL, 0), 0);
	assert_int_equal(add(b, INTEL_DOMAIN, "*.wild.test", NULL, 0), 0);
	assert_int_equal(add(b, INTEL_DOMAIN, "\xff\xdbZ.TEST", NULL, 0), 0);
	s = intel_builder_finish(b);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct intel_indicator *r = intel_lookup_domain(
			s, cases[i].q, strlen(cases[i].q), 0);

		if (cases[i].want == NULL) {
			if (r != NULL)
				fail_msg("%s matched %s", cases[i].q, r->value);
		} else {
			if (r == NULL)
				fail_msg("%s: no match", cases[i].q);
			assert_string_equal(r->value, cases[i].want);
			assert_null(r->meta.source);
		}
	}
	/* 127 one-letter labels then example.org: too many labels, and a
	 * name over 255 bytes: both refused without reading past the end. */
	for (i = 0; i + 2 < sizeof(longname); i += 2) {
		longname[i] = 'a';
		longname[i + 1] = '.';
	}
	memcpy(longname + 270, "example.org", 12);
	assert_null(intel_lookup_domain(s, longname, strlen(longname), 0));
	assert_non_null(intel_lookup_domain(s, longname + 250, strlen(longname + 250), 0));
	intel_set_unref(s);
}

static void test_intel_url_normalise(void **state)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
		{"HTTP://Example.ORG:80/a/./b/../c?x=%2f#frag",
		 "http://example.org/a/c?x=%2F"},
		{"https://example.org:443", "https://example.org/"},
		{"https://example.org:80/", "https://example.org:80/"},
		{"http://example.org:8080/A%7eB", "http://example.org:8080/A~B"},
		{"example.org/path", "http://example.org/path"},
		{"http://u:P@Example.org/", "http://u:P@example.org/"},
		{"http://example.org/a/%2e%2e/b", "http://example.org/b"},
		{"http://example.org/../../x", "http://example.org/x"},
		{"http://example.org/a/..", "http://example.org/"},
		{"http://example.org/a/.", "http://example.org/a/"},
		{"http://example.org?q", "http://example.org/?q"},
		{"http://[2001:DB8::1]:80/", "http://[2001:db8::1]/"},
		{"http://example.org/%zz%4", "http://example.org/%zz%4"},
		{"http://example.org:/", "http://example.org/"},
	};
	char out[256];
	size_t i, n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = intel_url_normalise(cases[i].in, strlen(cases[i].in),
					    out, sizeof(out), &n);

		if (r != 0)
			fail_msg("%s: %d", cases[i].in, r);
		out[n] = '\0';
		assert_string_equal(out, cases[i].out);
	}
	assert_int_equal(intel_url_normalise("http://example.org/long", 23,
					     out, 10, &n), M_ELIMIT);
	assert_int_equal(intel_url_normalise("http://", 7, out, sizeof(out),
					     &n), M_EINVAL);
}

static void test_intel_url_hash_email(void **state)
{
	static const char sha256[] =
		"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
	struct intel_builder *b = intel_builder_new();
	struct intel_set *s;
	const struct intel_indicator *r;

	assert_int_equal(add(b, INTEL_URL, "http://evil.example/a/b?x=1", "u", 0), 0);
	assert_int_equal(add(b, INTEL_HASH, sha256, "h", 0), 0);
	assert_int_equal(add(b, INTEL_HASH, "d41d8cd98f00b204e9800998ecf8427e", "h", 0), 0);
	assert_int_equal(add(b, INTEL_EMAIL, "Phish@Evil.Example", "e", 0), 0);
	s = intel_builder_finish(b);

	r = intel_lookup_url(s, "HTTP://EVIL.example:80/a/./c/../b?x=1#top", 41, 0);
	assert_non_null(r);
	assert_string_equal(r->value, "http://evil.example/a/b?x=1");
	assert_null(intel_lookup_url(s, "http://evil.example/a/b?x=2", 27, 0));
	assert_null(intel_lookup_url(s, "http://evil.example/A/b?x=1", 27, 0));

	r = intel_lookup_hash(s, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 64, 0);
	assert_non_null(r);
	assert_string_equal(r->meta.source, "h");
	assert_non_null(intel_lookup_hash(s, "D41D8CD98F00B204E9800998ECF8427E", 32, 0));
	assert_null(intel_lookup_hash(s, "d41d8cd98f00b204e9800998ecf8427", 31, 0));
	assert_null(intel_lookup_hash(s, sha256, 40, 0));
	assert_null(intel_lookup_hash(s, "d41d8cd98f00b204e9800998ecf8427f", 32, 0));

	assert_non_null(intel_lookup_email(s, "phish@evil.example", 18, 0));
	assert_non_null(intel_lookup_email(s, "PHISH@EVIL.EXAMPLE", 18, 0));
	assert_null(intel_lookup_email(s, "phish@evil.exampl", 17, 0));
	/* types do not cross */
	assert_null(intel_lookup_domain(s, "evil.example", 12, 0));
	intel_set_unref(s);
}

static void test_intel_expiry_and_duplicates(void **state)
{
	struct intel_builder *b = intel_builder_new();
	struct intel_set *s;
	const struct intel_indicator *r;

	assert_int_equal(add(b, INTEL_IP, "10.0.0.0/8", "a", 0), 0);
	assert_int_equal(add(b, INTEL_IP, "10.1.1.1", "a", 1000), 0);
	assert_int_equal(add(b, INTEL_DOMAIN, "example.org", "a", 0), 0);
	assert_int_equal(add(b, INTEL_DOMAIN, "a.example.org", "a", 1000), 0);
	assert_int_equal(add(b, INTEL_HASH, "d41d8cd98f00b204e9800998ecf8427e", "old", 500), 0);
	assert_int_equal(add(b, INTEL_HASH, "D41D8CD98F00B204E9800998ECF8427E", "new", 2000), 0);
	assert_int_equal(add(b, INTEL_HASH, "d41d8cd98f00b204e9800998ecf8427e", "older", 100), 0);
	s = intel_builder_finish(b);
	assert_int_equal(intel_set_count(s), 5);

	r = intel_lookup_ip(s, "10.1.1.1", 8, 999);
	assert_string_equal(r->value, "10.1.1.1");
	r = intel_lookup_ip(s, "10.1.1.1", 8, 1001);  /* expired /32 → /8 */
	assert_string_equal(r->value, "10.0.0.0/8");
	r = intel_lookup_ip(s, "10.1.1.1", 8, 0);
	assert_string_equal(r->value, "10.1.1.1");
	r = intel_lookup_domain(s, "x.a.example.org", 15, 5000);
	assert_string_equal(r->value, "example.org");
	r = intel_lookup_hash(s, "d41d8cd98f00b204e9800998ecf8427e", 32, 1500);
	assert_non_null(r);
	assert_string_equal(r->meta.source, "new");
	assert_null(intel_lookup_hash(s, "d41d8cd98f00b204e9800998ecf8427e", 32, 2001));
	intel_set_unref(s);
}

static void test_intel_many(void **state)
{
	static const struct {
		enum intel_type t;
		const char *q;
		const char *want;
	} cases[] = {
		{INTEL_HASH, "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e"},
		{INTEL_HASH, "d41d8cd98f00b204e9800998ecf8427f", NULL},
		{INTEL_HASH, "xyz", NULL},
		{INTEL_HASH, "", NULL},
		{INTEL_URL, "http://Evil.example:80/a/../b#f", "http://evil.example/b"},
		{INTEL_URL, "http://evil.example/c", NULL},
		{INTEL_URL, "http://", NULL},
		{INTEL_EMAIL, "X@Y.Z", "x@y.z"},
		{INTEL_EMAIL, "old@y.z", NULL},  /* expired */
		{INTEL_IP, "10.9.9.9", "10.0.0.0/8"},
		{INTEL_DOMAIN, "a.example.org", "example.org"},
	};
	struct intel_builder *b = intel_builder_new();
	struct intel_set *s;
	size_t i, j;

	assert_int_equal(add(b, INTEL_HASH, "d41d8cd98f00b204e9800998ecf8427e", "h", 0), 0);
	assert_int_equal(add(b, INTEL_URL, "http://evil.example/b", "u", 0), 0);
	assert_int_equal(add(b, INTEL_EMAIL, "x@y.z", "e", 0), 0);
	assert_int_equal(add(b, INTEL_EMAIL, "old@y.z", "e", 10), 0);
	assert_int_equal(add(b, INTEL_IP, "10.0.0.0/8", "i", 0), 0);
	assert_int_equal(add(b, INTEL_DOMAIN, "example.org", "d", 0), 0);
	s = intel_builder_finish(b);
	assert_true(intel_set_bytes(s) > 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* a batch of 19 copies crosses the internal grouping */
		struct intel_query q[19];
		const struct intel_indicator *out[19];

		for (j = 0; j < 19; j++) {
			q[j].p = cases[i].q;
			q[j].len = strlen(cases[i].q);
		}
		assert_int_equal(intel_lookup_many(s, cases[i].t, q, 19, out, 100), 0);
		for (j = 0; j < 19; j++) {
			if (cases[i].want == NULL) {
				assert_null(out[j]);
			} else {
				if (out[j] == NULL)
					fail_msg("%s: no match", cases[i].q);
				assert_string_equal(out[j]->value, cases[i].want);
			}
		}
	}
	assert_int_equal(intel_lookup_many(s, INTEL_HASH, NULL, 0, NULL, 0), 0);
	assert_int_equal(intel_lookup_many(NULL, INTEL_HASH, NULL, 0, NULL, 0), M_EINVAL);
	assert_int_equal(intel_lookup_many(s, (enum intel_type)99, NULL, 0, NULL, 0), M_EINVAL);
	intel_set_unref(s);
}

static void test_intel_refcount(void **state)
{
	struct intel_builder *b = intel_builder_new();
	struct intel_set *s, *held;
	const struct intel_indicator *r;

	assert_int_equal(add(b, INTEL_EMAIL, "a@b.c", "x", 0), 0);
	s = intel_builder_finish(b);
	held = intel_set_ref(s);
	intel_set_unref(s);     /* the "reload" drops its reference */
	r = intel_lookup_email(held, "a@b.c", 5, 0);
	assert_non_null(r);
	assert_string_equal(r->meta.source, "x");
	intel_set_unref(held);  /* last one frees; ASan checks for leaks */
	intel_set_unref(NULL);
	intel_builder_free(NULL);
	assert_null(intel_builder_finish(NULL));

	/* an empty set answers NULL everywhere */
	s = intel_builder_finish(intel_builder_new());
	assert_non_null(s);
	assert_null(intel_lookup_ip(s, "1.2.3.4", 7, 0));
	assert_null(intel_lookup_domain(s, "a.b", 3, 0));
	assert_null(intel_lookup_url(s, "http://a/", 9, 0));
	intel_set_unref(s);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

#define N_RANDOM 100000

static void fmt_value(int kind, uint64_t v, char *out, size_t cap)
{
	switch (kind) {
	case 0:
		snprintf(out, cap, "%u.%u.%u.%u", (unsigned)(v >> 24) & 255,
			 (unsigned)(v >> 16) & 255, (unsigned)(v >> 8) & 255,
			 (unsigned)v & 255);
		break;
	case 1:
		snprintf(out, cap, "2001:db8:%x:%x::%x:%x",
			 (unsigned)(v >> 48) & 0xffff, (unsigned)(v >> 32) & 0xffff,
			 (unsigned)(v >> 16) & 0xffff, (unsigned)v & 0xffff);
		break;
	case 2:
		snprintf(out, cap, "h%016llx.example", (unsigned long long)v);
		break;
	case 3:
		snprintf(out, cap, "%016llx%016llx", (unsigned long long)v,
			 (unsigned long long)(v * 31));
		break;
	default:
		snprintf(out, cap, "http://s%llx.test/p/%llu",
			 (unsigned long long)(v & 0xffff),
			 (unsigned long long)v);
		break;
	}
}

static const struct intel_indicator *lookup_kind(const struct intel_set *s,
						 int kind, const char *v)
{
	size_t n = strlen(v);

	switch (kind) {
	case 0:
	case 1:
		return intel_lookup_ip(s, v, n, 0);
	case 2:
		return intel_lookup_domain(s, v, n, 0);
	case 3:
		return intel_lookup_hash(s, v, n, 0);
	default:
		return intel_lookup_url(s, v, n, 0);
	}
}

static void test_intel_random(void **state)
{
	static const enum intel_type types[] = {INTEL_IP, INTEL_IP,
		INTEL_DOMAIN, INTEL_HASH, INTEL_URL};
	uint64_t *vals = malloc(N_RANDOM * sizeof(*vals));
	struct intel_builder *b = intel_builder_new();
	struct intel_set *s;
	char v[128];
	size_t i, found = 0, false_hits = 0;

	assert_non_null(vals);
	for (i = 0; i < N_RANDOM; i++) {
		int kind = (int)(i % 5);

		/* members have the top bit of the low word clear */
		vals[i] = rng() & ~0x80000000ull;
		fmt_value(kind, vals[i], v, sizeof(v));
		assert_int_equal(intel_builder_add(b, types[kind], v, strlen(v), NULL), 0);
	}
	s = intel_builder_finish(b);
	assert_non_null(s);
	for (i = 0; i < N_RANDOM; i++) {
		int kind = (int)(i % 5);
		const struct intel_indicator *r;

		fmt_value(kind, vals[i], v, sizeof(v));
		r = lookup_kind(s, kind, v);
		found += r != NULL;
		fmt_value(kind, rng() | 0x80000000ull, v, sizeof(v));
		false_hits += lookup_kind(s, kind, v) != NULL;
	}
	assert_int_equal(found, N_RANDOM);
	assert_int_equal(false_hits, 0);
	free(vals);
	intel_set_unref(s);
}

/* Random bytes through every entry point: nothing may crash or read out of
 * bounds (run under ASan). */
static void test_intel_garbage(void **state)
{
	static const char alphabet[] = "0123456789abcdefABCDEF.:/%@[]#?-_~ \x80";
	struct intel_builder *b = intel_builder_new();
	struct intel_set *s;
	char v[INTEL_MAX_VALUE + 8];
	size_t i, j, n;

	for (i = 0; i < 20000; i++) {
		n = (size_t)(rng() % (i % 100 == 0 ? sizeof(v) : 80));
		for (j = 0; j < n; j++)
			v[j] = i % 3 == 0 ? (char)rng() :
				alphabet[rng() % (sizeof(alphabet) - 1)];
		(void)intel_builder_add(b, (enum intel_type)(1 + i % 5), v, n, NULL);
	}
	s = intel_builder_finish(b);
	assert_non_null(s);
	for (i = 0; i < 20000; i++) {
		char out[64];
		size_t on;

		n = (size_t)(rng() % (i % 100 == 0 ? sizeof(v) : 80));
		for (j = 0; j < n; j++)
			v[j] = i % 3 == 0 ? (char)rng() :
				alphabet[rng() % (sizeof(alphabet) - 1)];
		(void)intel_lookup_ip(s, v, n, 0);
		(void)intel_lookup_domain(s, v, n, 0);
		(void)intel_lookup_url(s, v, n, 0);
		(void)intel_lookup_hash(s, v, n, 0);
		(void)intel_lookup_email(s, v, n, 0);
		(void)intel_url_normalise(v, n, out, sizeof(out), &on);
	}
	intel_set_unref(s);
}

/* ---- batches, against a reference -------------------------------------- */

/* What the test added, to answer queries the slow, obvious way. */
struct ref_ind {
	enum intel_type t;
	char v[96];           /* as added */
	int fam;              /* IP: 4 or 6 */
	unsigned plen;
	uint8_t net[16];
	char canon[128];      /* others: canonical text */
	int64_t valid_until;
};

static int ref_parse(const char *v, int *fam, uint8_t a[16], unsigned *plen)
{
	char tmp[64];
	const char *slash = strchr(v, '/');
	size_t n = slash ? (size_t)(slash - v) : strlen(v);

	memcpy(tmp, v, n);
	tmp[n] = '\0';
	memset(a, 0, 16);
	if (inet_pton(AF_INET, tmp, a) == 1) {
		*fam = 4;
		*plen = slash ? (unsigned)strtoul(slash + 1, NULL, 10) : 32;
	} else if (inet_pton(AF_INET6, tmp, a) == 1) {
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0,
						   0, 0, 0xff, 0xff};

		*fam = 6;
		*plen = slash ? (unsigned)strtoul(slash + 1, NULL, 10) : 128;
		if (*plen == 128 && memcmp(a, mapped, 12) == 0) {
			memmove(a, a + 12, 4);
			memset(a + 4, 0, 12);
			*fam = 4;
			*plen = 32;
		}
	} else {
		return -1;
	}
	return 0;
}

static int ref_in(const uint8_t *a, const uint8_t *net, unsigned plen)
{
	unsigned i;

	for (i = 0; i < plen; i++)
		if (((a[i / 8] ^ net[i / 8]) >> (7 - i % 8)) & 1)
			return 0;
	return 1;
}

static int ref_live(const struct ref_ind *r, int64_t now)
{
	return now <= 0 || r->valid_until == 0 || r->valid_until >= now;
}

static void ref_lower(const char *in, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] + 32) : in[i];
	out[n] = '\0';
}

/* The indicator a query should find: longest live prefix, longest live
 * parent domain, or the live equal canonical value. */
static const struct ref_ind *ref_lookup(const struct ref_ind *ind, size_t n,
					enum intel_type t, const char *q,
					int64_t now)
{
	const struct ref_ind *best = NULL;
	char c[2100];
	size_t i, cn = 0;
	uint8_t a[16];
	unsigned plen;
	int fam;

	if (t == INTEL_IP) {
		if (strchr(q, '/') || ref_parse(q, &fam, a, &plen) < 0)
			return NULL;
		for (i = 0; i < n; i++) {
			if (ind[i].t != INTEL_IP || ind[i].fam != fam ||
			    !ref_live(&ind[i], now) ||
			    !ref_in(a, ind[i].net, ind[i].plen))
				continue;
			if (best == NULL || ind[i].plen > best->plen)
				best = &ind[i];
		}
		return best;
	}
	if (t == INTEL_URL) {
		if (intel_url_normalise(q, strlen(q), c, sizeof(c) - 1, &cn) < 0)
			return NULL;
		c[cn] = '\0';
	} else {
		ref_lower(q, strlen(q), c);
		cn = strlen(c);
	}
	for (i = 0; i < n; i++) {
		size_t vn = strlen(ind[i].canon);

		if (ind[i].t != t || !ref_live(&ind[i], now))
			continue;
		if (t == INTEL_DOMAIN) {
			/* equal, or a parent at a label boundary */
			if (vn > cn || strcmp(c + cn - vn, ind[i].canon) != 0 ||
			    (vn < cn && c[cn - vn - 1] != '.'))
				continue;
			if (best == NULL || vn > strlen(best->canon))
				best = &ind[i];
		} else if (strcmp(c, ind[i].canon) == 0) {
			best = &ind[i];
		}
	}
	return best;
}

#define REF_N 3000
#define REF_Q 20000

/* Random indicators of every type with assorted expiries. */
static void ref_make(struct ref_ind *r, size_t i)
{
	static const int64_t exp[] = {0, 0, 0, 5000000, 5999999, 6000000,
				      -7, 1500000, INT64_MAX};
	static const char *const tld[] = {"example", "test", "co.uk", "org"};
	uint64_t x = rng();
	int kind = (int)(i % 8);
	size_t n;

	memset(r, 0, sizeof(*r));
	r->valid_until = exp[rng() % (sizeof(exp) / sizeof(exp[0]))];
	switch (kind) {
	case 0: /* IPv4 address or network; few first octets, so they nest */
	case 1: {
		unsigned plen = kind == 0 ? 32 : (unsigned)(rng() % 33);
		uint32_t a = ((uint32_t)(10 + x % 3) << 24) | (uint32_t)(x >> 40);

		if (plen < 32)
			a &= plen ? 0xffffffffu << (32 - plen) : 0;
		r->t = INTEL_IP;
		if (plen == 32)
			snprintf(r->v, sizeof(r->v), "%u.%u.%u.%u", a >> 24,
				 (a >> 16) & 255, (a >> 8) & 255, a & 255);
		else
			snprintf(r->v, sizeof(r->v), "%u.%u.%u.%u/%u", a >> 24,
				 (a >> 16) & 255, (a >> 8) & 255, a & 255, plen);
		break;
	}
	case 2: { /* IPv6 network of any length inside 2001:db8::/29 */
		unsigned plen = (unsigned)(rng() % 129);
		uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8};
		char t[64];
		unsigned j;

		for (j = 4; j < 16; j++)
			a[j] = (uint8_t)(rng() % 3);
		for (j = plen; j < 128; j++)
			a[j / 8] &= (uint8_t)~(0x80u >> (j % 8));
		inet_ntop(AF_INET6, a, t, sizeof(t));
		r->t = INTEL_IP;
		snprintf(r->v, sizeof(r->v), "%s/%u", t, plen);
		break;
	}
	case 3: /* nested domains: a few labels over a few names */
	case 4:
		r->t = INTEL_DOMAIN;
		snprintf(r->v, sizeof(r->v), "%s%s%x.%s",
			 x & 1 ? "a." : "", x & 2 ? "B." : "",
			 (unsigned)(x >> 8) % 40, tld[(x >> 4) % 4]);
		break;
	case 5:
		r->t = INTEL_HASH;
		snprintf(r->v, sizeof(r->v), "%016llx%016llx",
			 (unsigned long long)x, (unsigned long long)(x * 7));
		if (i % 3 == 0)
			snprintf(r->v + 32, sizeof(r->v) - 32, "%08X", (unsigned)x);
		break;
	case 6:
		r->t = INTEL_URL;
		snprintf(r->v, sizeof(r->v), "%s://h%x.Example/p/%u/%s",
			 x & 1 ? "http" : "HTTPS", (unsigned)(x >> 8) % 50,
			 (unsigned)(x >> 20) % 100, x & 2 ? "./x?a=1" : "x");
		break;
	default:
		r->t = INTEL_EMAIL;
		snprintf(r->v, sizeof(r->v), "U%x@Mail%x.test",
			 (unsigned)(x >> 8) % 200, (unsigned)x % 3);
		break;
	}
	if (r->t == INTEL_IP) {
		(void)ref_parse(r->v, &r->fam, r->net, &r->plen);
	} else if (r->t == INTEL_URL) {
		(void)intel_url_normalise(r->v, strlen(r->v), r->canon,
					  sizeof(r->canon) - 1, &n);
		r->canon[n] = '\0';
	} else {
		ref_lower(r->v, strlen(r->v), r->canon);
	}
}

/* A query drawn near the indicators: a member as added or in another
 * case, an address inside a network, a subdomain, a near miss. */
static enum intel_type ref_query(const struct ref_ind *ind, size_t n,
				 char *q, size_t cap)
{
	const struct ref_ind *r = &ind[rng() % n];
	uint64_t x = rng();

	switch (r->t) {
	case INTEL_IP:
		if (r->fam == 4)
			snprintf(q, cap, "%u.%u.%u.%u", r->net[0],
				 (unsigned)(x & 1 ? r->net[1] : x >> 8 & 255),
				 (unsigned)(x >> 16 & 255), (unsigned)(x >> 24 & 255));
		else
			snprintf(q, cap, "2001:db8:%x:%x::%x", (unsigned)(x % 3),
				 (unsigned)(x >> 8 & 3), (unsigned)(x >> 16 & 3));
		if (x % 17 == 0)
			snprintf(q, cap, "::ffff:10.%u.%u.%u", (unsigned)(x >> 8 & 3),
				 (unsigned)(x >> 16 & 255), (unsigned)(x >> 24 & 255));
		return INTEL_IP;
	case INTEL_DOMAIN:
		snprintf(q, cap, "%s%s%s", x & 1 ? "www." : "",
			 x & 2 ? "A." : "", r->v);
		if (x % 5 == 0)
			q[strlen(q) - 1] ^= 1;
		return INTEL_DOMAIN;
	case INTEL_URL:
		snprintf(q, cap, "%s", r->canon);
		if (x & 1)
			snprintf(q, cap, "%s", r->v);
		if (x % 5 == 0)
			q[strlen(q) - 1] ^= 1;
		return INTEL_URL;
	default:
		snprintf(q, cap, "%s", r->v);
		if (x & 1)
			ref_lower(r->v, strlen(r->v), q);
		if (x % 5 == 0)
			q[0] ^= 1;
		return r->t;
	}
}

static void test_intel_batch_reference(void **state)
{
	static const int64_t nows[] = {0, 1, 4999999, 5000000, 5999999,
				       6000000, 6000001, 1700000000000000};
	struct ref_ind *ind = calloc(REF_N, sizeof(*ind));
	struct intel_typed_query *tq = calloc(REF_Q, sizeof(*tq));
	const struct intel_indicator **out = calloc(REF_Q, sizeof(*out));
	const struct intel_indicator **many = calloc(REF_Q, sizeof(*many));
	struct intel_query *q = calloc(REF_Q, sizeof(*q));
	char (*text)[128] = calloc(REF_Q, sizeof(*text));
	struct intel_builder *b = intel_builder_new();
	struct intel_set *s;
	size_t i, j, n = 0, hits = 0;

	assert_true(ind && tq && out && many && q && text && b);
	for (i = 0; i < REF_N; i++) {
		struct intel_meta m = {.valid_until = 0};
		size_t k;

		ref_make(&ind[n], i);
		m.valid_until = ind[n].valid_until;
		/* keys stay unique, so the reference needs no duplicates rule */
		for (k = 0; k < n; k++)
			if (ind[k].t == ind[n].t &&
			    (ind[k].t == INTEL_IP ?
			     ind[k].fam == ind[n].fam && ind[k].plen == ind[n].plen &&
			     memcmp(ind[k].net, ind[n].net, 16) == 0 :
			     strcmp(ind[k].canon, ind[n].canon) == 0))
				break;
		if (k < n)
			continue;
		assert_int_equal(intel_builder_add(b, ind[n].t, ind[n].v,
						   strlen(ind[n].v), &m), 0);
		n++;
	}
	s = intel_builder_finish(b);
	assert_non_null(s);
	assert_int_equal(intel_set_count(s), n);
	for (i = 0; i < REF_Q; i++) {
		tq[i].type = ref_query(ind, n, text[i], sizeof(text[i]));
		tq[i].p = text[i];
		tq[i].len = strlen(text[i]);
	}
	for (j = 0; j < sizeof(nows) / sizeof(nows[0]); j++) {
		int64_t now = nows[j];

		assert_int_equal(intel_lookup_batch(s, tq, REF_Q, out, now), 0);
		for (i = 0; i < REF_Q; i++) {
			const struct ref_ind *want =
				ref_lookup(ind, n, tq[i].type, text[i], now);
			const struct intel_indicator *single = NULL;

			switch (tq[i].type) {
			case INTEL_IP:
				single = intel_lookup_ip(s, text[i], tq[i].len, now);
				break;
			case INTEL_DOMAIN:
				single = intel_lookup_domain(s, text[i], tq[i].len, now);
				break;
			case INTEL_URL:
				single = intel_lookup_url(s, text[i], tq[i].len, now);
				break;
			case INTEL_HASH:
				single = intel_lookup_hash(s, text[i], tq[i].len, now);
				break;
			default:
				single = intel_lookup_email(s, text[i], tq[i].len, now);
				break;
			}
			if (out[i] != single)
				fail_msg("%s (type %d, now %lld): batch %s, single %s",
					 text[i], tq[i].type, (long long)now,
					 out[i] ? out[i]->value : "-",
					 single ? single->value : "-");
			if ((want == NULL) != (single == NULL) ||
			    (want && single->type != want->t))
				fail_msg("%s (type %d, now %lld): got %s, want %s",
					 text[i], tq[i].type, (long long)now,
					 single ? single->value : "-",
					 want ? want->v : "-");
			if (want && want->t == INTEL_IP &&
			    (single->prefix_len != want->plen ||
			     single->family != want->fam))
				fail_msg("%s: got %s, want %s", text[i],
					 single->value, want->v);
			if (want && want->t != INTEL_IP &&
			    strcmp(single->value, want->canon) != 0)
				fail_msg("%s: got %s, want %s", text[i],
					 single->value, want->canon);
			hits += single != NULL;
		}
		/* the same, one type per call */
		for (i = INTEL_IP; i <= INTEL_EMAIL; i++) {
			size_t k, m = 0;

			for (k = 0; k < REF_Q; k++)
				if (tq[k].type == (enum intel_type)i) {
					q[m].p = tq[k].p;
					q[m].len = tq[k].len;
					m++;
				}
			assert_int_equal(intel_lookup_many(s, (enum intel_type)i,
							   q, m, many, now), 0);
			for (k = 0, m = 0; k < REF_Q; k++)
				if (tq[k].type == (enum intel_type)i)
					assert_ptr_equal(many[m++], out[k]);
		}
	}
	/* the queries find something, and not everything */
	j = REF_Q * (sizeof(nows) / sizeof(nows[0]));
	assert_true(hits > j / 10 && hits < j - j / 10);
	intel_set_unref(s);
	free(ind);
	free(tq);
	free(out);
	free(many);
	free(q);
	free(text);
}

/* Batches that fill a group by probes (every prefix length present, IPv6
 * addresses list up to 129 candidates), by scratch (long URLs that need
 * normalising) and by count, with unknown types and NULL keys mixed in. */
static void test_intel_batch_bounds(void **state)
{
	struct intel_builder *b = intel_builder_new();
	struct intel_typed_query tq[600];
	const struct intel_indicator *out[600];
	char url[2000], v[64], (*text)[64] = calloc(600, sizeof(*text));
	struct intel_set *s;
	unsigned p;
	size_t i;

	assert_non_null(text);
	for (p = 0; p <= 128; p++) {
		snprintf(v, sizeof(v), "2001:db8::/%u", p);
		assert_int_equal(add(b, INTEL_IP, v, "6", 0), 0);
	}
	for (p = 0; p <= 32; p++) {
		snprintf(v, sizeof(v), "10.0.0.0/%u", p);
		assert_int_equal(add(b, INTEL_IP, v, "4", 0), 0);
	}
	memset(url, 'a', sizeof(url));
	memcpy(url, "HTTP://Long.example/", 20);
	url[sizeof(url) - 1] = '\0';
	assert_int_equal(add(b, INTEL_URL, url, "u", 0), 0);
	s = intel_builder_finish(b);
	assert_non_null(s);
	for (i = 0; i < 600; i++) {
		switch (i % 5) {
		case 0:
			snprintf(text[i], 64, "2001:db8::%zx", i);
			tq[i] = (struct intel_typed_query){INTEL_IP, text[i], strlen(text[i])};
			break;
		case 1:
			snprintf(text[i], 64, "10.0.%zu.%zu", i % 3, i % 256);
			tq[i] = (struct intel_typed_query){INTEL_IP, text[i], strlen(text[i])};
			break;
		case 2:
			tq[i] = (struct intel_typed_query){INTEL_URL, url, strlen(url)};
			break;
		case 3:
			tq[i] = (struct intel_typed_query){(enum intel_type)(i % 2 ? 0 : 77),
							   "10.0.0.1", 8};
			break;
		default:
			tq[i] = (struct intel_typed_query){INTEL_IP, NULL, 3};
			break;
		}
	}
	assert_int_equal(intel_lookup_batch(s, tq, 600, out, 0), 0);
	for (i = 0; i < 600; i++) {
		switch (i % 5) {
		case 0:
			assert_non_null(out[i]);
			/* 2001:db8::x is inside 2001:db8::/116 and longer */
			assert_true(out[i]->prefix_len >= 116);
			assert_int_equal(out[i]->family, 6);
			break;
		case 1:
			assert_non_null(out[i]);
			assert_ptr_equal(out[i], intel_lookup_ip(s, text[i],
						strlen(text[i]), 0));
			break;
		case 2:
			assert_non_null(out[i]);
			assert_string_equal(out[i]->meta.source, "u");
			break;
		default:
			assert_null(out[i]);
			break;
		}
	}
	assert_int_equal(intel_lookup_batch(s, tq, 0, NULL, 0), 0);
	assert_int_equal(intel_lookup_batch(NULL, tq, 1, out, 0), M_EINVAL);
	assert_int_equal(intel_lookup_batch(s, NULL, 1, out, 0), M_EINVAL);
	assert_int_equal(intel_lookup_batch(s, tq, 1, NULL, 0), M_EINVAL);
	intel_set_unref(s);
	free(text);
}

/* An expiry decided from the entry's coarse second must agree with the
 * exact microseconds at every edge. */
static void test_intel_expiry_edges(void **state)
{
	static const int64_t vus[] = {1, 999999, 1000000, 1999999, 2000000,
				      2000001, 5500000, -1, INT64_MAX,
				      (int64_t)UINT32_MAX * 1000000 + 5};
	static const int64_t deltas[] = {-1000001, -1000000, -999999, -1, 0, 1,
					 999999, 1000000, 1000001};
	size_t i, j;

	for (i = 0; i < sizeof(vus) / sizeof(vus[0]); i++) {
		struct intel_builder *b = intel_builder_new();
		struct intel_set *s;

		assert_int_equal(add(b, INTEL_IP, "192.0.2.1", "x", vus[i]), 0);
		assert_int_equal(add(b, INTEL_HASH, "d41d8cd98f00b204e9800998ecf8427e",
				     "x", vus[i]), 0);
		s = intel_builder_finish(b);
		for (j = 0; j < sizeof(deltas) / sizeof(deltas[0]); j++) {
			int64_t now;
			int live;

			if (__builtin_add_overflow(vus[i], deltas[j], &now) || now <= 0)
				continue;
			live = vus[i] >= now;
			if ((intel_lookup_ip(s, "192.0.2.1", 9, now) != NULL) != live)
				fail_msg("ip valid_until %lld now %lld", (long long)vus[i],
					 (long long)now);
			if ((intel_lookup_hash(s, "d41d8cd98f00b204e9800998ecf8427e",
					       32, now) != NULL) != live)
				fail_msg("hash valid_until %lld now %lld",
					 (long long)vus[i], (long long)now);
		}
		intel_set_unref(s);
	}
}

/* Dotted quads: the parser that lookups use classes all bytes at once and
 * must agree with inet_pton (strict: four parts, no leading zeros) on every
 * text, valid or not, and give the same address. With 0.0.0.0/0 in the set
 * every valid IPv4 text matches; a member /32 gives its address back. */
static void test_intel_parse_v4(void **state)
{
	static const struct {
		const char *q;
		int ok;
	} cases[] = {
		{"1.2.3.4", 1}, {"0.0.0.0", 1}, {"255.255.255.255", 1},
		{"100.200.250.199", 1}, {"9.99.199.249", 1}, {"10.0.0.1", 1},
		{"256.1.1.1", 0}, {"1.2.3.256", 0}, {"1.2.300.4", 0},
		{"1.2.3", 0}, {"1.2.3.4.5", 0}, {"01.2.3.4", 0}, {"1.2.3.04", 0},
		{"1.2.00.4", 0}, {"1..3.4", 0}, {".1.2.3", 0}, {"1.2.3.", 0},
		{"1.2.3.4 ", 0}, {" 1.2.3.4", 0}, {"1234.1.1.1", 0},
		{"1.2.3.1000", 0}, {"1.2.3.-1", 0}, {"1.2.3.a", 0},
		{"1.2.3.\xd9\xa1", 0}, {"1.2.3.4/32", 0}, {"1.2.3.4/0", 0},
		{"1.2.3.4\n", 0}, {"1.2.3.4:80", 0}, {"1.2.3", 0},
		{"1.2.3.4.", 0}, {"1.2.3..4", 0}, {"255.255.255.2555", 0},
		{"", 0}, {"1", 0}, {"1.2.3.44444", 0}, {"....", 0},
		{".......", 0}, {"000.0.0.0", 0}, {"0.0.0.00", 0},
	};
	static const char alphabet[] = "0123456789..0125.";
	struct intel_builder *b = intel_builder_new();
	struct intel_set *s;
	uint32_t addrs[512];
	char v[32], z[32];
	size_t i, j, n;

	assert_int_equal(add(b, INTEL_IP, "0.0.0.0/0", "any", 0), 0);
	for (i = 0; i < 512; i++) {
		addrs[i] = (uint32_t)rng();
		fmt_value(0, addrs[i], v, sizeof(v));
		assert_int_equal(add(b, INTEL_IP, v, "one", 0), 0);
	}
	s = intel_builder_finish(b);
	assert_non_null(s);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct intel_indicator *r =
			intel_lookup_ip(s, cases[i].q, strlen(cases[i].q), 0);

		if ((r != NULL) != cases[i].ok)
			fail_msg("'%s': %s", cases[i].q, r ? "parsed" : "refused");
	}
	/* each member, alone and in a batch, at every text length */
	for (i = 0; i < 512; i++) {
		const struct intel_indicator *r;
		struct intel_query q;
		uint8_t want[4];

		fmt_value(0, addrs[i], v, sizeof(v));
		r = intel_lookup_ip(s, v, strlen(v), 0);
		assert_non_null(r);
		assert_int_equal(r->prefix_len, 32);
		assert_int_equal(inet_pton(AF_INET, v, want), 1);
		assert_memory_equal(r->addr, want, 4);
		q.p = v;
		q.len = strlen(v);
		assert_int_equal(intel_lookup_many(s, INTEL_IP, &q, 1, &r, 0), 0);
		assert_non_null(r);
		assert_memory_equal(r->addr, want, 4);
	}
	/* random texts of digits and dots, in a buffer of their own length
	 * (ASan sees a read past the end) */
	for (i = 0; i < 200000; i++) {
		const struct intel_indicator *r;
		uint8_t want[4];
		char *h;
		int ok;

		if (i % 2 == 0) {
			n = (size_t)(rng() % 18);
			for (j = 0; j < n; j++)
				v[j] = alphabet[rng() % (sizeof(alphabet) - 1)];
		} else {
			/* a valid address with one byte changed, added or cut */
			size_t at;

			fmt_value(0, rng(), v, sizeof(v));
			n = strlen(v);
			at = (size_t)(rng() % n);
			if (i % 6 == 1)
				v[at] = alphabet[rng() % (sizeof(alphabet) - 1)];
			else if (i % 6 == 3 && n < 17)
				memmove(v + at + 1, v + at, n++ - at);
			else
				memmove(v + at, v + at + 1, n-- - at - 1);
		}
		memcpy(z, v, n);
		z[n] = '\0';
		ok = inet_pton(AF_INET, z, want) == 1;
		h = malloc(n + 1);
		assert_non_null(h);
		memcpy(h, v, n);
		r = intel_lookup_ip(s, h, n, 0);
		free(h);
		if ((r != NULL) != ok)
			fail_msg("'%s': %s, inet_pton %s", z, r ? "parsed" : "refused",
				 ok ? "parses" : "refuses");
		if (r != NULL && r->prefix_len == 32)
			assert_memory_equal(r->addr, want, 4);
	}
	intel_set_unref(s);
}

/* Longest-prefix match over a set with more IPv4 prefixes than /16 blocks
 * (so batches read the finer length bitmap, single lookups the /16 one),
 * with overlapping prefixes, /0, /1, /31, /32, expiring longer prefixes
 * and a rebuild without them, checked against a scan of the prefixes. */
#define LPM_HOSTS 50000
#define LPM_RANGES 400

struct lpm_pfx {
	uint32_t net;
	unsigned plen;
	int64_t valid_until;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* The expected match of a: the longest live range or host. */
static int lpm_ref(const struct lpm_pfx *p, size_t np, const uint32_t *hosts,
		   uint32_t a, int64_t now, struct lpm_pfx *out)
{
	int found = 0;
	size_t i;

	if (bsearch(&a, hosts, LPM_HOSTS, sizeof(*hosts), cmp_u32) != NULL) {
		out->net = a;
		out->plen = 32;
		return 1;
	}
	for (i = 0; i < np; i++) {
		uint32_t mask = p[i].plen ? 0xffffffffu << (32 - p[i].plen) : 0;

		if ((a & mask) != p[i].net ||
		    (now > 0 && p[i].valid_until != 0 && p[i].valid_until < now) ||
		    (found && out->plen >= p[i].plen))
			continue;
		*out = p[i];
		found = 1;
	}
	return found;
}

static void lpm_check(const struct intel_set *s, const struct lpm_pfx *p,
		      size_t np, const uint32_t *hosts, int64_t now)
{
	enum { Q = 4000 };
	static char text[Q][16];
	static struct intel_query q[Q];
	static const struct intel_indicator *out[Q];
	uint32_t a[Q];
	size_t i;

	for (i = 0; i < Q; i++) {
		const struct lpm_pfx *r = &p[rng() % np];
		uint32_t span = r->plen ? ~(0xffffffffu << (32 - r->plen)) : ~0u;

		switch (i % 5) {
		case 0:
			a[i] = (uint32_t)rng();
			break;
		case 1:
			a[i] = hosts[rng() % LPM_HOSTS];
			break;
		case 2:
			a[i] = r->net;                  /* first address */
			break;
		case 3:
			a[i] = r->net | span;           /* last, and beyond */
			a[i] += (uint32_t)(rng() & 1);
			break;
		default:
			a[i] = r->net | ((uint32_t)rng() & span);
			break;
		}
		fmt_value(0, a[i], text[i], sizeof(text[i]));
		q[i].p = text[i];
		q[i].len = strlen(text[i]);
	}
	assert_int_equal(intel_lookup_many(s, INTEL_IP, q, Q, out, now), 0);
	for (i = 0; i < Q; i++) {
		const struct intel_indicator *single =
			intel_lookup_ip(s, q[i].p, q[i].len, now);
		struct lpm_pfx want = {0, 0, 0};
		int found = lpm_ref(p, np, hosts, a[i], now, &want);
		uint8_t net[4] = {(uint8_t)(want.net >> 24), (uint8_t)(want.net >> 16),
				  (uint8_t)(want.net >> 8), (uint8_t)want.net};

		if (single != out[i])
			fail_msg("%s now %lld: single %s, batch %s", text[i],
				 (long long)now, single ? single->value : "-",
				 out[i] ? out[i]->value : "-");
		if (!found) {
			if (single != NULL)
				fail_msg("%s now %lld: %s, want none", text[i],
					 (long long)now, single->value);
			continue;
		}
		if (single == NULL)
			fail_msg("%s now %lld: none, want /%u", text[i],
				 (long long)now, want.plen);
		if (single->prefix_len != want.plen || single->family != 4 ||
		    memcmp(single->addr, net, 4) != 0)
			fail_msg("%s now %lld: %s, want /%u", text[i],
				 (long long)now, single->value, want.plen);
	}
}

static void test_intel_v4_lpm(void **state)
{
	/* nested and overlapping, some expiring at 5 s or 7 s */
	static const struct {
		const char *v;
		int64_t valid_until;
	} fixed[] = {
		{"0.0.0.0/0", 7000000}, {"128.0.0.0/1", 0}, {"10.0.0.0/8", 0},
		{"10.1.0.0/16", 0}, {"10.1.2.0/24", 5000000},
		{"10.1.2.128/25", 0}, {"10.1.2.4/31", 7000000},
		{"10.1.2.5/32", 5000000}, {"10.1.2.6/32", 0},
		{"192.0.2.0/24", 0}, {"192.0.2.0/23", 0}, {"192.0.0.0/22", 5000000},
		{"203.0.113.0/28", 0}, {"203.0.113.16/28", 7000000},
		{"::/0", 0}, {"2001:db8::1/128", 0}, {"::ffff:0:0/96", 5000000},
	};
	static const int64_t nows[] = {0, 1, 5000000, 5000001, 7000001};
	uint32_t *hosts = malloc(LPM_HOSTS * sizeof(*hosts));
	struct lpm_pfx p[LPM_RANGES + 32];
	struct intel_builder *b;
	struct intel_set *s;
	size_t np = 0, i, pass;
	char v[64];

	assert_non_null(hosts);
	for (pass = 0; pass < 2; pass++) {
		/* pass 1: rebuilt without the prefixes that expire, as a feed
		 * that drops them would */
		rng_state = 0x2545f4914f6cdd1dull;
		b = intel_builder_new();
		np = 0;
		for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
			unsigned fam, plen;
			uint8_t addr[16];
			const char *slash = strchr(fixed[i].v, '/');

			if (pass == 1 && fixed[i].valid_until != 0)
				continue;
			assert_int_equal(add(b, INTEL_IP, fixed[i].v, "f",
					     fixed[i].valid_until), 0);
			/* "::ffff:0:0/96" is IPv4 0.0.0.0/0 */
			fam = strchr(fixed[i].v, ':') ? 6 : 4;
			if (strcmp(fixed[i].v, "::ffff:0:0/96") == 0)
				fam = 4, memset(addr, 0, 4);
			else if (fam == 4) {
				memcpy(v, fixed[i].v, (size_t)(slash - fixed[i].v));
				v[slash - fixed[i].v] = '\0';
				assert_int_equal(inet_pton(AF_INET, v, addr), 1);
			}
			if (fam == 6)
				continue;
			plen = (unsigned)strtoul(slash + 1, NULL, 10);
			if (plen == 96)
				plen = 0;
			p[np].net = ((uint32_t)addr[0] << 24) | ((uint32_t)addr[1] << 16) |
				    ((uint32_t)addr[2] << 8) | addr[3];
			p[np].plen = plen;
			p[np].valid_until = fixed[i].valid_until;
			np++;
		}
		for (i = 0; i < LPM_RANGES; i++) {
			unsigned plen = 1 + (unsigned)(rng() % 31);
			uint32_t net = (uint32_t)rng() & (0xffffffffu << (32 - plen));

			p[np].net = net;
			p[np].plen = plen;
			p[np].valid_until = 0;
			snprintf(v, sizeof(v), "%u.%u.%u.%u/%u", net >> 24,
				 (net >> 16) & 255, (net >> 8) & 255, net & 255, plen);
			assert_int_equal(add(b, INTEL_IP, v, "r", 0), 0);
			np++;
		}
		for (i = 0; i < LPM_HOSTS; i++) {
			hosts[i] = (uint32_t)rng();
			fmt_value(0, hosts[i], v, sizeof(v));
			assert_int_equal(add(b, INTEL_IP, v, "h", 0), 0);
		}
		qsort(hosts, LPM_HOSTS, sizeof(*hosts), cmp_u32);
		s = intel_builder_finish(b);
		assert_non_null(s);
		for (i = 0; i < sizeof(nows) / sizeof(nows[0]); i++)
			lpm_check(s, p, np, hosts, nows[i]);
		/* IPv6 beside: ::/0 never answers an IPv4 address */
		assert_string_equal(intel_lookup_ip(s, "2001:db8::1", 11, 0)->value,
				    "2001:db8::1/128");
		assert_string_equal(intel_lookup_ip(s, "2001:db8::2", 11, 0)->value,
				    "::/0");
		intel_set_unref(s);
	}
	free(hosts);
}

/* The fast check never says "normal" for a URL the normaliser changes. */
static void test_intel_url_is_normal(void **state)
{
	static const struct {
		const char *u;
		int normal;
	} cases[] = {
		{"http://example.org/a/b?x=1", 1},
		{"https://a.b/", 1},
		{"http://example.org/.well-known/x", 0},  /* "/.": left to the normaliser */
		{"http://example.org/a/./b", 0},
		{"http://example.org/a/../b", 0},
		{"http://example.org", 0},
		{"http://Example.org/", 0},
		{"HTTP://example.org/", 0},
		{"http://example.org:80/", 0},
		{"http://u@example.org/", 0},
		{"http://example.org/%7e", 0},
		{"http://example.org/#x", 0},
		{"http://example.org?q", 0},
		{"example.org/", 0},
		{"http:///", 0},
		{"http://example.org/A/B?Q=/./", 0},
		{"http://example.org/A/B?Q=1", 1},
		{"", 0},
	};
	static const char *const parts[] = {
		"http", "https", "HTTP", "ftp", "h2", "://", ":/", "/", ".", "..",
		"/.", "/..", "/./", "/../", "a", "B", "z9", "%", "%2e", "%2F", "%41",
		"#", "?", "&", "=", ":", ":80", ":443", "@", "[", "]", "::1", "x.y",
		"-", "~", "\xc3\xa9", "\x01", " ", "//", "?a=/./b", "Example.COM",
	};
	char in[256], out[1024];
	size_t i, n, on, agree = 0;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (intel_url_is_normal(cases[i].u, strlen(cases[i].u)) !=
		    cases[i].normal)
			fail_msg("%s: expected %d", cases[i].u, cases[i].normal);
	for (i = 0; i < 300000; i++) {
		int k = 1 + (int)(rng() % 10), j, normal, r;

		n = 0;
		if (rng() % 2) {
			memcpy(in, "http://", 7);
			n = 7;
		}
		for (j = 0; j < k; j++) {
			const char *p = parts[rng() % (sizeof(parts) / sizeof(parts[0]))];
			size_t l = strlen(p);

			if (n + l >= sizeof(in))
				break;
			memcpy(in + n, p, l);
			n += l;
		}
		normal = intel_url_is_normal(in, n);
		r = intel_url_normalise(in, n, out, sizeof(out), &on);
		if (normal && (r != 0 || on != n || memcmp(in, out, n) != 0)) {
			in[n] = '\0';
			fail_msg("%s said normal", in);
		}
		agree += normal;
	}
	assert_true(agree > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intel_validation),
		cmocka_unit_test(test_intel_ip),
		cmocka_unit_test(test_intel_domain),
		cmocka_unit_test(test_intel_url_normalise),
		cmocka_unit_test(test_intel_url_hash_email),
		cmocka_unit_test(test_intel_expiry_and_duplicates),
		cmocka_unit_test(test_intel_many),
		cmocka_unit_test(test_intel_refcount),
		cmocka_unit_test(test_intel_random),
		cmocka_unit_test(test_intel_garbage),
		cmocka_unit_test(test_intel_batch_reference),
		cmocka_unit_test(test_intel_batch_bounds),
		cmocka_unit_test(test_intel_expiry_edges),
		cmocka_unit_test(test_intel_url_is_normal),
		cmocka_unit_test(test_intel_parse_v4),
		cmocka_unit_test(test_intel_v4_lpm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
