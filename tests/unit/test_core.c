/*
 * Unit tests of the core: number parsing, the schema table, arenas, buffers
 * and JSON escaping, the event writer, the queue, and configuration errors
 * with their file:line:col.
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

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/event.h"
#include "core/queue.h"
#include "core/schema.h"
#include "core/str.h"

static void test_str_to_i64(void **state)
{
	static const struct {
		const char *in;
		int ok;
		int64_t v;
	} cases[] = {
		{ "0", 1, 0 }, { "42", 1, 42 }, { "-7", 1, -7 },
		{ "9223372036854775807", 1, INT64_MAX },
		{ "-9223372036854775808", 1, INT64_MIN },
		{ "9223372036854775808", 0, 0 }, { "", 0, 0 }, { "-", 0, 0 },
		{ "12a", 0, 0 }, { " 1", 0, 0 }, { "99999999999999999999999", 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t v = 0;
		int r = str_to_i64(str_cstr(cases[i].in), &v);
		assert_int_equal(r == 0, cases[i].ok);
		if (cases[i].ok)
			assert_true(v == cases[i].v);
	}
}

static void test_schema_lookup(void **state)
{
	for (int f = 0; f < SCHEMA_NFIELDS; f++)
		assert_int_equal(schema_lookup(schema_fields[f].name, schema_fields[f].len), f);
	assert_int_equal(schema_lookup("source.ip", 9), F_SOURCE_IP);
	assert_int_equal(schema_lookup("@timestamp", 10), F_TIMESTAMP);
	assert_int_equal(schema_lookup("source.ipx", 10), -1);
	assert_int_equal(schema_lookup("", 0), -1);
}

static void test_arena(void **state)
{
	struct arena a;
	char *p, *big;

	arena_init(&a, 1024, 64 * 1024);
	p = arena_alloc(&a, 10);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % 8, 0);
	big = arena_alloc(&a, 4000);   /* oversized: own chunk */
	assert_non_null(big);
	memset(big, 'x', 4000);
	p = arena_strndup(&a, "hello", 5);
	assert_string_equal(p, "hello");
	assert_null(arena_alloc(&a, 128 * 1024));   /* over the cap */
	arena_reset(&a);
	for (int i = 0; i < 100; i++)
		assert_non_null(arena_alloc(&a, 100));
	arena_fini(&a);
}

static void test_buf_limit_and_escape(void **state)
{
	struct buf b;

	buf_init(&b, 8);
	assert_int_equal(buf_append(&b, "12345678", 8), 0);
	assert_int_equal(buf_append(&b, "9", 1), M_ELIMIT);
	assert_int_equal(b.len, 8);
	buf_fini(&b);

	static const struct {
		const char *in;
		size_t n;
		const char *out;
	} cases[] = {
		{ "plain", 5, "plain" },
		{ "a\"b\\c", 5, "a\\\"b\\\\c" },
		{ "\n\t\r\x01", 4, "\\n\\t\\r\\u0001" },
		{ "caf\xc3\xa9", 5, "caf\xc3\xa9" },
		{ "bad\xff!", 5, "bad\xef\xbf\xbd!" },
		{ "\xc3", 1, "\xef\xbf\xbd" },             /* truncated sequence */
		{ "\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* surrogate */
		{ "nul\0x", 5, "nul\\u0000x" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_init(&b, 0);
		assert_int_equal(buf_json_escape(&b, cases[i].in, cases[i].n), 0);
		buf_cstr(&b);
		assert_string_equal(b.p, cases[i].out);
		buf_fini(&b);
	}
}

static void test_escape_large_values(void **state)
{
	/* 3-byte sequences across the 64 KiB slice boundaries stay whole. */
	size_t n = 3 * 70000;
	char *in = malloc(n);
	struct buf b;

	for (size_t i = 0; i < n; i += 3)
		memcpy(in + i, "\xe2\x82\xac", 3);   /* EURO SIGN */
	buf_init(&b, 0);
	assert_int_equal(buf_json_escape(&b, in, n), 0);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.p, in, n);
	buf_fini(&b);
	/* Past the maximum: an error, and the buffer is as it was. */
	buf_init(&b, 1000);
	assert_int_equal(buf_append(&b, "ab", 2), 0);
	assert_int_equal(buf_json_escape(&b, in, n), M_ELIMIT);
	assert_int_equal(b.len, 2);
	buf_fini(&b);
	free(in);
}

static void test_event_json(void **state)
{
	struct event *ev = calloc(1, sizeof(*ev));
	struct arena a;
	struct buf b;

	arena_init(&a, 0, 0);
	buf_init(&b, 0);
	event_clear(ev);
	ev->id = 12345;
	ev->ts_us = 1764095613123456LL;   /* 2025-11-25T18:33:33.123Z */
	event_set(ev, F_MESSAGE, STR_LIT("hello \"world\""));
	event_set(ev, F_SOURCE_PORT, STR_LIT("514"));
	event_set(ev, F_DESTINATION_PORT, STR_LIT("05x"));   /* not a number */
	event_set(ev, F_HOST_NAME, STR_LIT("web1"));
	event_unset(ev, F_HOST_NAME);
	assert_int_equal(event_set_name(ev, &a, STR_LIT("custom.key"), STR_LIT("1.5e3"), EXTRA_NUMBER), 0);
	assert_int_equal(event_set_name(ev, &a, STR_LIT("user.name"), STR_LIT("root"), 0), 0);
	assert_true(str_eq_cstr(event_get(ev, F_USER_NAME), "root"));
	assert_true(str_eq_cstr(event_get_extra(ev, STR_LIT("custom.key")), "1.5e3"));
	event_set_parse_error(ev, PE_BAD_PRI);
	assert_int_equal(event_to_json(ev, &b), 0);
	buf_cstr(&b);
	assert_string_equal(b.p,
		"{\"@timestamp\":\"2025-11-25T18:33:33.123Z\",\"event.id\":\"12345\","
		"\"message\":\"hello \\\"world\\\"\",\"source.port\":514,"
		"\"destination.port\":\"05x\",\"user.name\":\"root\","
		"\"tags\":[\"_parse_error\"],\"event.parse_error\":\"bad_pri\","
		"\"custom.key\":1.5e3}");
	buf_fini(&b);
	arena_fini(&a);
	free(ev);
}

/* Overflow names listed in schema.fields get their number when set (and
 * only those); a numbered name set again replaces its value; every name
 * reads back by name, a numbered one by number too. */
static void test_event_xname(void **state)
{
	struct event *ev = calloc(1, sizeof(*ev));
	struct arena a;
	unsigned xid = 99;

	(void)state;
	assert_non_null(ev);
	arena_init(&a, 0, 0);
	event_clear(ev);
	assert_int_equal(schema_lookup_x("winlog.channel", 14, &xid), -1);
	assert_int_equal(xid, XN_WINLOG_CHANNEL);
	assert_int_equal(schema_lookup_x("user.name", 9, &xid), F_USER_NAME);
	assert_int_equal(xid, 0);
	assert_int_equal(schema_lookup_x("winlog.channelx", 15, &xid), -1);
	assert_int_equal(xid, 0);
	assert_int_equal(event_set_name(ev, &a, STR_LIT("winlog.event_data.Image"),
					STR_LIT("a.exe"), 0), 0);
	assert_int_equal(event_set_name(ev, &a, STR_LIT("winlog.event_data.NotListed"),
					STR_LIT("x"), 0), 0);
	assert_int_equal(event_set_name(ev, &a, STR_LIT("winlog.event_data.Image"),
					STR_LIT("b.exe"), 0), 0);
	assert_int_equal(event_set_name(ev, &a, STR_LIT("winlog.event_data.image"),
					STR_LIT("c.exe"), 0), 0);   /* another name */
	assert_int_equal(ev->n_extra, 3);
	assert_int_equal(ev->extra[0].xid, XN_WINLOG_EVENT_DATA_IMAGE);
	assert_int_equal(ev->extra[1].xid, 0);
	assert_int_equal(ev->extra[2].xid, 0);
	assert_true(str_eq_cstr(event_get_xid(ev, XN_WINLOG_EVENT_DATA_IMAGE), "b.exe"));
	assert_true(str_eq_cstr(event_get_extra(ev, STR_LIT("winlog.event_data.Image")), "b.exe"));
	assert_true(str_eq_cstr(event_get_extra(ev, STR_LIT("winlog.event_data.image")), "c.exe"));
	assert_null(event_get_xid(ev, XN_WINLOG_CHANNEL).p);
	for (unsigned i = 1; i < SCHEMA_NXNAMES; i++) {
		assert_int_equal(schema_lookup_x(schema_xnames[i].name, schema_xnames[i].len, &xid), -1);
		assert_int_equal(xid, i);
	}
	arena_fini(&a);
	free(ev);
}

static void test_event_extra_bound(void **state)
{
	struct event *ev = calloc(1, sizeof(*ev));
	struct arena a;
	char name[32];
	int r = 0, i;

	arena_init(&a, 0, 0);
	event_clear(ev);
	for (i = 0; i < EVENT_MAX_EXTRA + 10 && r == 0; i++) {
		int n = snprintf(name, sizeof(name), "x%d", i);
		r = event_set_name(ev, &a, str_make(arena_strndup(&a, name, (size_t)n), (size_t)n),
				   STR_LIT("v"), 0);
	}
	assert_int_equal(r, M_ELIMIT);
	assert_int_equal(ev->n_extra, EVENT_MAX_EXTRA);
	assert_true(ev->flags & EV_F_PARSE_ERROR);
	assert_int_equal(ev->parse_error, PE_TOO_MANY_FIELDS);
	arena_fini(&a);
	free(ev);
}

static void *producer(void *arg)
{
	struct queue *q = arg;

	for (uintptr_t i = 1; i <= 10000; i++)
		assert_int_equal(queue_push(q, (void *)i, -1), 0);
	return NULL;
}

static void test_queue(void **state)
{
	struct queue *q = queue_new(4);
	pthread_t t[2];
	void *item;
	uint64_t sum = 0;

	assert_int_equal(queue_pop(q, &item, 0), M_EAGAIN);
	pthread_create(&t[0], NULL, producer, q);
	pthread_create(&t[1], NULL, producer, q);
	for (int i = 0; i < 20000; i++) {
		assert_int_equal(queue_pop(q, &item, -1), 0);
		sum += (uintptr_t)item;
	}
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	assert_true(sum == 2 * (10000ULL * 10001 / 2));
	for (int i = 0; i < 4; i++)
		assert_int_equal(queue_push(q, (void *)1, 0), 0);
	assert_int_equal(queue_push(q, (void *)1, 0), M_EAGAIN);
	assert_int_equal(queue_push(q, (void *)1, 10), M_EAGAIN);
	queue_close(q);
	assert_int_equal(queue_push(q, (void *)1, -1), M_ECLOSED);
	for (int i = 0; i < 4; i++)   /* a closed queue still hands out what it holds */
		assert_int_equal(queue_pop(q, &item, -1), 0);
	assert_int_equal(queue_pop(q, &item, -1), M_ECLOSED);
	queue_free(q);
}

struct test_conf {
	char *name;
	int64_t n;
	int64_t size;
	int64_t dur;
	int flag;
	char *addr;
	struct conf_list list;
};

static const struct conf_keyword test_kw[] = {
	{ "name", CONF_STR, offsetof(struct test_conf, name), 0, 0, "dflt", 0, "a name" },
	{ "n", CONF_INT, offsetof(struct test_conf, n), 1, 10, "5", 0, "a number" },
	{ "size", CONF_SIZE, offsetof(struct test_conf, size), 0, INT64_MAX, "1k", 0, "a size" },
	{ "dur", CONF_DURATION, offsetof(struct test_conf, dur), 0, INT64_MAX, "1m", 0, "a duration" },
	{ "flag", CONF_BOOL, offsetof(struct test_conf, flag), 0, 0, "false", 0, "a flag" },
	{ "addr", CONF_ADDR, offsetof(struct test_conf, addr), 0, 0, "127.0.0.1:1", 0, "an address" },
	{ "list", CONF_STRLIST, offsetof(struct test_conf, list), 0, 0, "", 0, "a list" },
	CONF_END
};

static void test_config_ok(void **state)
{
	const char *y = "sec:\n  name: abc\n  n: 7\n  size: 10M\n  dur: 2h\n  flag: yes\n"
			"  addr: \"[::1]:8080\"\n  list: [a, b, c]\n";
	struct conf_doc doc;
	struct test_conf c = { 0 };
	struct buf err;

	buf_init(&err, 0);
	assert_int_equal(conf_parse("t.yaml", y, strlen(y), &doc, &err), 0);
	assert_int_equal(conf_apply(&doc, "sec", test_kw, &c, &err), 0);
	assert_string_equal(c.name, "abc");
	assert_int_equal(c.n, 7);
	assert_int_equal(c.size, 10 << 20);
	assert_int_equal(c.dur, 7200);
	assert_int_equal(c.flag, 1);
	assert_string_equal(c.addr, "[::1]:8080");
	assert_int_equal(c.list.n, 3);
	assert_string_equal(c.list.v[2], "c");
	conf_free(test_kw, &c);
	/* Missing section: defaults. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(conf_apply(&doc, "other", test_kw, &c, &err), 0);
	assert_string_equal(c.name, "dflt");
	assert_int_equal(c.n, 5);
	assert_int_equal(c.size, 1024);
	conf_free(test_kw, &c);
	conf_doc_fini(&doc);
	buf_fini(&err);
}

static void test_config_errors(void **state)
{
	static const struct {
		const char *yaml;
		const char *err;
	} cases[] = {
		{ "sec:\n  n: 11\n", "t.yaml:2:6: sec.n out of range (1..10)" },
		{ "sec:\n  n: seven\n", "t.yaml:2:6: expected an integer for sec.n" },
		{ "sec:\n  bogus: 1\n", "t.yaml:2:3: unknown setting 'bogus' in section sec" },
		{ "sec:\n  flag: maybe\n", "t.yaml:2:9: expected true or false for sec.flag" },
		{ "sec:\n  addr: nohost\n", "t.yaml:2:9: expected host:port (e.g. 127.0.0.1:5514) or \"\" for sec.addr" },
		{ "sec:\n  size: 12 parsecs\n", "t.yaml:2:9: expected a size (e.g. 64k, 10M, 2G) for sec.size" },
		{ "sec: [1, 2]\n", "t.yaml:1:6: expected a mapping for section sec" },
		{ "sec:\n  name: [a]\n", "t.yaml:2:9: expected a single value for sec.name" },
		{ "sec:\n  n: &a 1\n", "t.yaml:2:6: anchors are not supported" },
		{ "- a\n", "t.yaml:1:1: expected a mapping of settings at the top level" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf_doc doc;
		struct test_conf c = { 0 };
		struct buf err;
		int r;

		buf_init(&err, 0);
		r = conf_parse("t.yaml", cases[i].yaml, strlen(cases[i].yaml), &doc, &err);
		if (r == 0) {
			r = conf_apply(&doc, "sec", test_kw, &c, &err);
			conf_free(test_kw, &c);
			conf_doc_fini(&doc);
		}
		assert_true(r < 0);
		assert_non_null(err.p);
		assert_string_equal(err.p, cases[i].err);
		buf_fini(&err);
	}
	/* Syntax error: line and column from the YAML parser. */
	struct conf_doc doc;
	struct buf err;
	const char *bad = "a: 1\nb: [1, 2\n";
	buf_init(&err, 0);
	assert_true(conf_parse("bad.yaml", bad, strlen(bad), &doc, &err) < 0);
	assert_non_null(strstr(err.p, "bad.yaml:3:1: "));
	buf_fini(&err);
}

static void test_split_addr(void **state)
{
	char host[64];
	int port;

	assert_int_equal(conf_split_addr("127.0.0.1:5514", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 5514);
	assert_int_equal(conf_split_addr("[::1]:80", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_true(conf_split_addr("::1:80", host, sizeof(host), &port) < 0);
	assert_true(conf_split_addr("h:99999", host, sizeof(host), &port) < 0);
	assert_true(conf_split_addr(":80", host, sizeof(host), &port) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_str_to_i64),
		cmocka_unit_test(test_schema_lookup),
		cmocka_unit_test(test_arena),
		cmocka_unit_test(test_buf_limit_and_escape),
		cmocka_unit_test(test_escape_large_values),
		cmocka_unit_test(test_event_json),
		cmocka_unit_test(test_event_xname),
		cmocka_unit_test(test_event_extra_bound),
		cmocka_unit_test(test_queue),
		cmocka_unit_test(test_config_ok),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_split_addr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
