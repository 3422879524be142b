/*
 * Unit tests of the threat-intelligence indicator store: validation on add,
 * longest-prefix match for IPv4/IPv6 (with the IPv4-mapped rule), subdomain
 * matching, URL normalisation, hashes, e-mail, expiry, duplicates, reference
 * counting, and 100,000 random indicators all found while random
 * non-members are not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
