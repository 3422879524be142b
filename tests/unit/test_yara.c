/*
 * Unit tests for yara_scan: a rules directory written by the test (good
 * files, a broken one that must be skipped and named with its line, a file
 * that is not a rule file, the same rule name in two files), matches with
 * tags, several threads scanning one rule set, a timeout, and the
 * reference count a reload relies on.
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
#include <unistd.h>

#include "core/err.h"
#include "mail/yara_scan.h"

static char dir[64];

struct rfile {
	const char *name;
	const char *text;
};

static const struct rfile files[] = {
	{"a_good.yar",
	 "rule Evil_Marker : mail malware\n"
	 "{\n"
	 "  strings:\n"
	 "    $a = \"EVIL_MARKER_1337\"\n"
	 "  condition:\n"
	 "    $a\n"
	 "}\n"
	 "rule Pe_Header : exe\n"
	 "{\n"
	 "  condition:\n"
	 "    uint16(0) == 0x5a4d\n"
	 "}\n"},
	{"b_broken.yar",
	 "rule Broken\n"
	 "{\n"
	 "  strings: $a = \"x\"\n"
	 "  condition: $a and and\n"
	 "}\n"},
	{"c_same_name.yara",
	 "rule Evil_Marker\n"
	 "{\n"
	 "  strings:\n"
	 "    $b = /invoice[0-9]{4}\\.exe/ nocase\n"
	 "  condition:\n"
	 "    $b\n"
	 "}\n"},
	{"d_slow.yar",
	 "rule Slow\n"
	 "{\n"
	 "  condition:\n"
	 "    filesize > 4000000 and\n"
	 "    for all i in (0..filesize - 1) : (\n"
	 "      for all j in (0..filesize - 1) : (uint8(i) != 0xff or uint8(j) == 1)\n"
	 "    )\n"
	 "}\n"},
	{"notes.txt", "this is not a rule file {\n"},
	{"e_undefined.yar", "rule U { condition: no_such_identifier }\n"},
	/* an include is found beside the including file, whatever the cwd */
	{"shared.yinc", "rule Shared_Inc { strings: $s = \"SHARED_INC\" condition: $s }\n"},
	{"f_include.yar", "include \"shared.yinc\"\nrule Uses_Inc { condition: Shared_Inc }\n"},
};

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/mamori-yara-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
		FILE *f = fopen(path, "w");
		if (!f)
			return -1;
		fputs(files[i].text, f);
		fclose(f);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
		unlink(path);
	}
	rmdir(dir);
	return 0;
}

static struct yara_rules *load(char *errs, size_t errlen, size_t *nbad)
{
	struct yara_rules *r = NULL;
	assert_int_equal(yara_rules_load_dir(dir, &r, errs, errlen, nbad), 0);
	assert_non_null(r);
	return r;
}

static void test_load(void **state)
{
	char errs[1024];
	size_t nbad;
	(void)state;
	struct yara_rules *r = load(errs, sizeof(errs), &nbad);

	assert_int_equal(nbad, 2);
	if (yara_rules_files(r) != 4)
		fail_msg("%zu files; errors: %s", yara_rules_files(r), errs);
	assert_int_equal(yara_rules_count(r), 6);
	if (!strstr(errs, "b_broken.yar:4:") || !strstr(errs, "e_undefined.yar:1:"))
		fail_msg("errors: %s", errs);
	assert_null(strstr(errs, "notes.txt"));
	yara_rules_free(r);

	/* no directory */
	struct yara_rules *none = NULL;
	assert_int_equal(yara_rules_load_dir("/nonexistent/mamori-yara", &none,
					     errs, sizeof(errs), NULL),
			 M_ENOTFOUND);
	assert_null(none);
	/* a tiny error buffer is cut, not overrun */
	char tiny[8];
	r = load(tiny, sizeof(tiny), NULL);
	assert_true(strlen(tiny) < sizeof(tiny));
	yara_rules_free(r);
}

struct mcase {
	const char *data;
	size_t n;       /* matches */
	const char *rule, *ns, *tags; /* of the first match */
};

static void test_scan(void **state)
{
	static const struct mcase tc[] = {
		{"nothing to see", 0, NULL, NULL, NULL},
		{"xx EVIL_MARKER_1337 yy", 1, "Evil_Marker", "a_good.yar", "mail malware"},
		{"MZ header", 1, "Pe_Header", "a_good.yar", "exe"},
		{"get INVOICE2024.EXE", 1, "Evil_Marker", "c_same_name.yara", ""},
		{"MZ EVIL_MARKER_1337 invoice1234.exe", 3, NULL, NULL, NULL},
		{"", 0, NULL, NULL, NULL},
		{"SHARED_INC", 2, "Shared_Inc", "f_include.yar", ""},
	};
	struct yara_result res;
	(void)state;
	struct yara_rules *r = load(NULL, 0, NULL);
	for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
		assert_int_equal(yara_scan_mem(r, tc[i].data, strlen(tc[i].data), 5,
					       &res), 0);
		if (res.n != tc[i].n)
			fail_msg("case %zu: %zu matches, want %zu", i, res.n, tc[i].n);
		if (tc[i].rule) {
			assert_string_equal(res.m[0].rule, tc[i].rule);
			assert_string_equal(res.m[0].ns, tc[i].ns);
			assert_string_equal(res.m[0].tags, tc[i].tags);
		}
	}
	yara_rules_free(r);
}

struct worker {
	struct yara_rules *r;
	int hits;
};

static void *scan_many(void *arg)
{
	struct worker *w = arg;
	struct yara_result res;
	for (int i = 0; i < 200; i++)
		if (yara_scan_mem(w->r, "EVIL_MARKER_1337", 16, 5, &res) == 0 &&
		    res.n == 1)
			w->hits++;
	return NULL;
}

static void test_threads_and_ref(void **state)
{
	pthread_t th[4];
	struct worker w[4];
	(void)state;
	struct yara_rules *r = load(NULL, 0, NULL);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){yara_rules_ref(r), 0};
		pthread_create(&th[i], NULL, scan_many, &w[i]);
	}
	/* a reload: the old set is dropped by its owner while scans run */
	yara_rules_free(r);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].hits, 200);
		yara_rules_free(w[i].r);
	}
	/* libyara was finalised with the last set; a new load starts again */
	r = load(NULL, 0, NULL);
	yara_rules_free(r);
	yara_rules_free(NULL);
}

static void test_timeout(void **state)
{
	struct yara_result res;
	size_t n = 5u * 1000 * 1000;
	unsigned char *b = malloc(n);
	(void)state;
	assert_non_null(b);
	memset(b, 0xff, n);
	struct yara_rules *r = load(NULL, 0, NULL);
	time_t t0 = time(NULL);
	int rc = yara_scan_mem(r, b, n, 1, &res);
	time_t t1 = time(NULL);
	assert_int_equal(rc, M_EAGAIN);
	assert_true(res.timed_out);
	assert_true(t1 - t0 < 10);
	yara_rules_free(r);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_threads_and_ref),
		cmocka_unit_test(test_timeout),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
