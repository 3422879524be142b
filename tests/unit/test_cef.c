/*
 * Unit tests for cef_parse(): header escapes, extension values with spaces
 * and escapes, custom-field labels, the ECS mapping, and hostile input.
 * Table-driven: input, expected return, parse error and field values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/event.h"
#include "ingest/ingest.h"
#include "parser_test.h"

static int parse(struct fixture *fx, const char *p, size_t n)
{
	return parse_with(fx, cef_parse, p, n, 1);
}

struct tcase {
	const char *in;
	int rc;
	int pe;
	const char *ts;
	struct kv f[20];
};

static void run_cases(struct fixture *fx, const struct tcase *tc, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = parse(fx, tc[i].in, strlen(tc[i].in));
		check_case(fx, tc[i].in, rc, tc[i].rc, tc[i].pe, tc[i].ts, 0,
			   tc[i].f);
	}
}

#define N(x) (sizeof(x) / sizeof((x)[0]))

static const struct tcase cases[] = {
	{ "CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|"
	  "src=10.0.0.1 dst=2.1.2.2 spt=1232",
	  M_OK, PE_NONE, NULL,
	  { { "cef.version", "0" },
	    { "cef.device.vendor", "Security" },
	    { "cef.device.product", "threatmanager" },
	    { "cef.device.version", "1.0" },
	    { "cef.device.event_class_id", "100" },
	    { "cef.name", "worm successfully stopped" },
	    { "cef.severity", "10" },
	    { "event.severity", "10" },
	    { "observer.vendor", "Security" },
	    { "observer.product", "threatmanager" },
	    { "event.code", "100" },
	    { "source.ip", "10.0.0.1" },
	    { "destination.ip", "2.1.2.2" },
	    { "source.port", "1232" },
	    { "event.dataset", "cef" },
	    { "message", "CEF:0|Security|threatmanager|1.0|100|worm successfully "
			 "stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232" } } },
	/* Header escapes. */
	{ "CEF:0|security|threat\\|manager|1.0|100|detected a \\\\ in packet|10|",
	  M_OK, PE_NONE, NULL,
	  { { "cef.device.product", "threat|manager" },
	    { "cef.name", "detected a \\ in packet" } } },
	/* A backslash before anything else in the header stays. */
	{ "CEF:0|a\\b|p|v|id|n|1|", M_OK, PE_NONE, NULL,
	  { { "cef.device.vendor", "a\\b" } } },
	/* Extension escapes and values with spaces. */
	{ "CEF:0|V|P|1|id|n|5|msg=detected a \\= in message fname=C:\\\\x\\\\y.exe "
	  "cs2=line1\\nline2\\rend cs2Label=Multi Line",
	  M_OK, PE_NONE, NULL,
	  { { "message", "detected a = in message" },
	    { "file.name", "C:\\x\\y.exe" },
	    { "cef.extensions.Multi Line", "line1\nline2\rend" },
	    { "cef.extensions.cs2", ABSENT },
	    { "cef.extensions.cs2Label", ABSENT } } },
	{ "CEF:0|V|P|1|id|n|5|msg=User logged in from the office   suser=alice "
	  "duser=bob act=allow",
	  M_OK, PE_NONE, NULL,
	  { { "message", "User logged in from the office" },
	    { "user.name", "alice" },
	    { "source.user.name", "alice" },
	    { "destination.user.name", "bob" },
	    { "event.action", "allow" } } },
	/* Labels before or after their key; a label without key stays. */
	{ "CEF:0|V|P|1|id|n|5|cs1Label=Rule Name cs1=Block all cn1=42 "
	  "cn1Label=count cs3Label=orphan",
	  M_OK, PE_NONE, NULL,
	  { { "cef.extensions.Rule Name", "Block all" },
	    { "cef.extensions.count", "42" },
	    { "cef.extensions.cs3Label", "orphan" },
	    { "cef.extensions.cs1Label", ABSENT },
	    { "cef.extensions.cs1", ABSENT } } },
	/* Unlabelled custom field keeps its key. */
	{ "CEF:0|V|P|1|id|n|5|cs4=x", M_OK, PE_NONE, NULL,
	  { { "cef.extensions.cs4", "x" } } },
	/* '=' inside a value that is not " key=" (URL query). */
	{ "CEF:0|V|P|1|id|n|5|request=http://x.test/a?b=c&d=e requestMethod=GET "
	  "app=HTTPS proto=TCP",
	  M_OK, PE_NONE, NULL,
	  { { "url.original", "http://x.test/a?b=c&d=e" },
	    { "http.request.method", "GET" },
	    { "network.protocol", "https" },
	    { "network.transport", "tcp" } } },
	/* rt as epoch milliseconds and as "MMM dd yyyy HH:mm:ss". */
	{ "CEF:0|V|P|1|id|n|5|rt=1700000000000", M_OK, PE_NONE,
	  "2023-11-14T22:13:20.000Z", { { "cef.extensions.rt", "1700000000000" } } },
	{ "CEF:0|V|P|1|id|n|5|rt=Nov 14 2023 22:13:20.250 UTC", M_OK, PE_NONE,
	  "2023-11-14T22:13:20.250Z", { { NULL, NULL } } },
	{ "CEF:0|V|P|1|id|n|5|rt=2023-11-14T22:13:20Z", M_OK, PE_NONE,
	  "2023-11-14T22:13:20.000Z", { { NULL, NULL } } },
	{ "CEF:0|V|P|1|id|n|5|rt=sometime", M_OK, PE_NONE,
	  "2024-03-10T12:00:00.000Z", { { "cef.extensions.rt", "sometime" } } },
	/* Fuzzer find: an rt this large overflowed the ms → us scaling. */
	{ "CEF:0|V|P|1|id|n|5|rt=17001700000000000", M_OK, PE_NONE,
	  "2024-03-10T12:00:00.000Z", { { "cef.extensions.rt", "17001700000000000" } } },
	{ "CEF:0|V|P|1|id|n|5|rt=99999999999", M_OK, PE_NONE, NULL, { { NULL, NULL } } },
	{ "CEF:0|V|P|1|id|n|5|rt=9223372036854775807", M_OK, PE_NONE,
	  "2024-03-10T12:00:00.000Z", { { NULL, NULL } } },
	/* Hashes by length, hosts, misc. */
	{ "CEF:0|V|P|1|id|n|5|fileHash=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 "
	  "shost=ws1.corp dhost=evil.test dvchost=fw01 dvc=10.9.9.9 in=100 out=2000 "
	  "deviceDirection=1 outcome=success smac=00:11:22:33:44:55",
	  M_OK, PE_NONE, NULL,
	  { { "file.hash.sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
	    { "source.domain", "ws1.corp" },
	    { "destination.domain", "evil.test" },
	    { "observer.hostname", "fw01" },
	    { "observer.ip", "10.9.9.9" },
	    { "source.bytes", "100" },
	    { "destination.bytes", "2000" },
	    { "network.direction", "outbound" },
	    { "event.outcome", "success" },
	    { "source.mac", "00:11:22:33:44:55" } } },
	/* Unknown keys go to cef.extensions.<key>. */
	{ "CEF:0|V|P|1|id|n|5|foo=bar baz ad.Thing=1", M_OK, PE_NONE, NULL,
	  { { "cef.extensions.foo", "bar baz" },
	    { "cef.extensions.ad.Thing", "1" } } },
	/* Severity words. */
	{ "CEF:0|V|P|1|id|n|Very-High|", M_OK, PE_NONE, NULL,
	  { { "event.severity", "10" }, { "cef.severity", "Very-High" } } },
	{ "CEF:0|V|P|1|id|n|High|", M_OK, PE_NONE, NULL, { { "event.severity", "8" } } },
	{ "CEF:0|V|P|1|id|n|medium|", M_OK, PE_NONE, NULL, { { "event.severity", "6" } } },
	{ "CEF:0|V|P|1|id|n|11|", M_OK, PE_NONE, NULL,
	  { { "event.severity", ABSENT }, { "cef.severity", "11" } } },
	{ "CEF:0|V|P|1|id|n|Unknown|", M_OK, PE_NONE, NULL,
	  { { "event.severity", ABSENT } } },
	/* Trailing spaces and newline. */
	{ "CEF:1|V|P|1|id|n|1|act=x  \r\n", M_OK, PE_NONE, NULL,
	  { { "event.action", "x" }, { "cef.version", "1" } } },
	/* Hostile. */
	{ "", M_EPARSE, PE_BAD_CEF, NULL, { { "message", "" } } },
	{ "CEF:", M_EPARSE, PE_BAD_CEF, NULL, { { "message", "CEF:" } } },
	{ "CEF:0|a|b", M_EPARSE, PE_BAD_CEF, NULL,
	  { { "cef.version", "0" }, { "cef.device.vendor", "a" },
	    { "cef.device.product", ABSENT } } },
	{ "CEF:0|a|b|c|d|e|f", M_EPARSE, PE_BAD_CEF, NULL, { { NULL, NULL } } },
	{ "CEF:0|a|b|c|d|e|f\\|", M_EPARSE, PE_BAD_CEF, NULL, { { NULL, NULL } } },
	{ "cef:0|a|b|c|d|e|f|", M_EPARSE, PE_BAD_CEF, NULL, { { NULL, NULL } } },
	{ "CEF:0|a|b|c|d|e|1|garbage without pairs", M_EPARSE, PE_BAD_CEF, NULL,
	  { { "cef.name", "e" },
	    { "message", "CEF:0|a|b|c|d|e|1|garbage without pairs" } } },
	{ "CEF:0|a|b|c|d|e|1|=x", M_EPARSE, PE_BAD_CEF, NULL, { { NULL, NULL } } },
	{ "CEF:0|a|b|c|d|e|1|k=", M_OK, PE_NONE, NULL,
	  { { "cef.extensions.k", "" } } },
	{ "CEF:0|a|b|c|d|e|1|msg=abc\\", M_OK, PE_NONE, NULL,
	  { { "message", "abc\\" } } },
	{ "CEF:0|a|b|c|d|e|1|msg=a\\ b=c", M_OK, PE_NONE, NULL,
	  { { "message", "a\\ b=c" } } },
	{ "CEF:0|a|b|c|d|e|1|a=1 =2 b=3", M_OK, PE_NONE, NULL,
	  { { "cef.extensions.a", "1 =2" }, { "cef.extensions.b", "3" } } },
	{ "CEF:0|\xff|\xc3|c|d|e|1|k=\xfe", M_OK, PE_NONE, NULL,
	  { { "cef.device.vendor", "\xff" }, { "cef.extensions.k", "\xfe" } } },
	{ "CEF:0|||||||", M_OK, PE_NONE, NULL, { { "cef.device.vendor", "" } } },
};

static void test_cases(void **state)
{
	run_cases(*state, cases, N(cases));
}

static void test_many_pairs(void **state)
{
	struct fixture *fx = *state;
	struct buf b;

	buf_init(&b, 0);
	assert_int_equal(buf_puts(&b, "CEF:0|V|P|1|id|n|5|"), 0);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(buf_printf(&b, "k%d=v %d ", i, i), 0);
	assert_int_equal(parse(fx, b.p, b.len), M_EPARSE);
	assert_int_equal(fx->ev.parse_error, PE_TOO_MANY_FIELDS);
	assert_true(fx->ev.n_extra <= EVENT_MAX_EXTRA);
	assert_true(str_eq_cstr(field(&fx->ev, "cef.extensions.k0"), "v 0"));
	buf_fini(&b);
}

static void test_nul_bytes(void **state)
{
	struct fixture *fx = *state;
	static const char in[] = "CEF:0|V\0x|P|1|id|n|5|msg=a\0b src=1.2.3.4";
	struct str v;

	assert_int_equal(parse(fx, in, sizeof(in) - 1), M_OK);
	v = field(&fx->ev, "cef.device.vendor");
	assert_int_equal(v.n, 3);
	v = field(&fx->ev, "message");
	assert_int_equal(v.n, 3);
	assert_memory_equal(v.p, "a\0b", 3);
	assert_true(str_eq_cstr(field(&fx->ev, "source.ip"), "1.2.3.4"));
}

static void test_every_prefix(void **state)
{
	struct fixture *fx = *state;

	for (size_t l = 0; l < N(cases); l++)
		parse_every_prefix(fx, cef_parse, cases[l].in, 1, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_pairs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nul_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_prefix, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
