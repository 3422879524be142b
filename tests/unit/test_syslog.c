/*
 * Unit tests for syslog_parse(): the RFC 5424 (§6.5) and RFC 3164 (§5.4)
 * examples, the variants devices send, CEF over syslog, and hostile input
 * (every crash a fuzzer found lands here too). Table-driven: input, expected
 * return, parse error, timestamp and field values.
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
#include "core/event.h"
#include "ingest/ingest.h"
#include "parser_test.h"
#include "ingest/ingest_time.h"

#define BOM "\xef\xbb\xbf"

static int parse(struct fixture *fx, const char *p, size_t n)
{
	return parse_with(fx, syslog_parse, p, n, 0);
}

struct tcase {
	const char *in;
	int rc;
	int pe;
	const char *ts;      /* event_format_ts() of ts_us; NULL = recv time */
	struct kv f[20];
};

static void run_cases(struct fixture *fx, const struct tcase *tc, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = parse(fx, tc[i].in, strlen(tc[i].in));
		check_case(fx, tc[i].in, rc, tc[i].rc, tc[i].pe, tc[i].ts, 1,
			   tc[i].f);
	}
}

#define N(x) (sizeof(x) / sizeof((x)[0]))

static const struct tcase rfc5424_cases[] = {
	/* RFC 5424 §6.5, example 1 (no SD, BOM before the message). */
	{ "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
	  BOM "'su root' failed for lonvick on /dev/pts/8",
	  M_OK, PE_NONE, "2003-10-11T22:14:15.003Z",
	  { { "log.syslog.priority", "34" },
	    { "log.syslog.facility.code", "4" },
	    { "log.syslog.facility.name", "auth" },
	    { "log.syslog.severity.code", "2" },
	    { "log.syslog.severity.name", "Critical" },
	    { "log.syslog.version", "1" },
	    { "log.syslog.hostname", "mymachine.example.com" },
	    { "host.name", "mymachine.example.com" },
	    { "log.syslog.appname", "su" },
	    { "process.name", "su" },
	    { "log.syslog.procid", ABSENT },
	    { "process.pid", ABSENT },
	    { "log.syslog.msgid", "ID47" },
	    { "message", "'su root' failed for lonvick on /dev/pts/8" },
	    { "event.dataset", "syslog" } } },
	/* Example 2: offset -07:00 and microseconds. */
	{ "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - "
	  "%% It's time to make the do-nuts.",
	  M_OK, PE_NONE, "2003-08-24T12:14:15.000Z",
	  { { "log.syslog.priority", "165" },
	    { "log.syslog.facility.name", "local4" },
	    { "log.syslog.severity.name", "Notice" },
	    { "host.name", "192.0.2.1" },
	    { "log.syslog.appname", "myproc" },
	    { "log.syslog.procid", "8710" },
	    { "process.pid", "8710" },
	    { "log.syslog.msgid", ABSENT },
	    { "message", "%% It's time to make the do-nuts." } } },
	/* Example 3: structured data and a message. */
	{ "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
	  "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" "
	  "eventID=\"1011\"] " BOM "An application event log entry...",
	  M_OK, PE_NONE, "2003-10-11T22:14:15.003Z",
	  { { "log.syslog.appname", "evntslog" },
	    { "log.syslog.structured_data.exampleSDID@32473.iut", "3" },
	    { "log.syslog.structured_data.exampleSDID@32473.eventSource", "Application" },
	    { "log.syslog.structured_data.exampleSDID@32473.eventID", "1011" },
	    { "message", "An application event log entry..." } } },
	/* Example 4: two SD elements, no message. */
	{ "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
	  "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" "
	  "eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
	  M_OK, PE_NONE, "2003-10-11T22:14:15.003Z",
	  { { "log.syslog.structured_data.exampleSDID@32473.eventID", "1011" },
	    { "log.syslog.structured_data.examplePriority@32473.class", "high" },
	    { "message", ABSENT } } },
	/* SD escapes: \" \\ \] decoded; other backslashes kept. */
	{ "<13>1 2024-01-02T03:04:05Z h a p m [x@1 q=\"say \\\"hi\\\" \\\\ [a\\] \\n\"] m",
	  M_OK, PE_NONE, "2024-01-02T03:04:05.000Z",
	  { { "log.syslog.structured_data.x@1.q", "say \"hi\" \\ [a] \\n" },
	    { "message", "m" } } },
	/* All nil. */
	{ "<0>1 - - - - - -", M_OK, PE_NONE, NULL,
	  { { "log.syslog.priority", "0" },
	    { "log.syslog.facility.name", "kern" },
	    { "log.syslog.severity.name", "Emergency" },
	    { "host.name", ABSENT },
	    { "log.syslog.appname", ABSENT },
	    { "message", ABSENT } } },
	/* Numeric offset +05:30, fraction of 9 digits, non-numeric procid. */
	{ "<191>1 2024-02-29T23:59:59.123456789+05:30 h app worker-1 - - x",
	  M_OK, PE_NONE, "2024-02-29T18:29:59.123Z",
	  { { "log.syslog.priority", "191" },
	    { "log.syslog.facility.name", "local7" },
	    { "log.syslog.severity.name", "Debug" },
	    { "log.syslog.procid", "worker-1" },
	    { "process.pid", ABSENT } } },
	/* CEF in the message. */
	{ "<134>1 2024-01-02T03:04:05Z fw1 cefapp - - - CEF:0|Acme|FW|1.0|100|"
	  "Blocked|7|src=10.0.0.1 dst=10.0.0.2 act=blocked",
	  M_OK, PE_NONE, "2024-01-02T03:04:05.000Z",
	  { { "cef.device.vendor", "Acme" },
	    { "cef.name", "Blocked" },
	    { "source.ip", "10.0.0.1" },
	    { "destination.ip", "10.0.0.2" },
	    { "event.action", "blocked" },
	    { "event.severity", "7" },
	    { "event.dataset", "cef" },
	    { "host.name", "fw1" } } },
	/* Trailing newline is not part of the message. */
	{ "<13>1 2024-01-02T03:04:05Z h a - - - hello\r\n", M_OK, PE_NONE,
	  "2024-01-02T03:04:05.000Z", { { "message", "hello" } } },
	/* Record ending right after MSGID (no SD): lenient. */
	{ "<13>1 2024-01-02T03:04:05Z h a - ID1", M_OK, PE_NONE,
	  "2024-01-02T03:04:05.000Z", { { "log.syslog.msgid", "ID1" } } },
};

static const struct tcase rfc3164_cases[] = {
	/* RFC 3164 §5.4, example 1. */
	{ "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
	  M_OK, PE_NONE, "2023-10-11T22:14:15.000Z",
	  { { "log.syslog.priority", "34" },
	    { "log.syslog.facility.name", "auth" },
	    { "log.syslog.severity.name", "Critical" },
	    { "log.syslog.hostname", "mymachine" },
	    { "host.name", "mymachine" },
	    { "log.syslog.appname", "su" },
	    { "process.name", "su" },
	    { "log.syslog.version", ABSENT },
	    { "message", "'su root' failed for lonvick on /dev/pts/8" },
	    { "event.dataset", "syslog" } } },
	/* Example 2: no TAG, space-padded day. */
	{ "<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
	  M_OK, PE_NONE, "2024-02-05T17:32:18.000Z",
	  { { "log.syslog.priority", "13" },
	    { "log.syslog.facility.name", "user" },
	    { "log.syslog.severity.name", "Notice" },
	    { "host.name", "10.0.0.99" },
	    { "log.syslog.appname", ABSENT },
	    { "message", "Use the BFG!" } } },
	/* Example 3: "CST 1987" is not part of the stamp: CST is the host. */
	{ "<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time to "
	  "make the do-nuts.  %%  Ingredients: Mix=OK, Jumbo=OK, Jam=OK, "
	  "Glaze=OK, Sugar=OK, Chocolate=OK, Lemonade=OK, Coffee=OK",
	  M_OK, PE_NONE, "2023-08-24T05:34:00.000Z",
	  { { "host.name", "CST" },
	    { "log.syslog.appname", ABSENT },
	    { "log.syslog.facility.name", "local4" } } },
	/* Example 4: no valid stamp; everything after the PRI is MSG. */
	{ "<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 "
	  "sched[0]: That's All Folks!",
	  M_OK, PE_NONE, NULL,
	  { { "log.syslog.priority", "0" },
	    { "log.syslog.severity.name", "Emergency" },
	    { "host.name", ABSENT },
	    { "message", "1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org "
			 "10.1.2.3 sched[0]: That's All Folks!" } } },
	/* TAG[pid]. */
	{ "<38>Mar 10 11:59:01 web01 sshd[4123]: Accepted publickey for root",
	  M_OK, PE_NONE, "2024-03-10T11:59:01.000Z",
	  { { "host.name", "web01" },
	    { "log.syslog.appname", "sshd" },
	    { "log.syslog.procid", "4123" },
	    { "process.pid", "4123" },
	    { "message", "Accepted publickey for root" } } },
	/* Missing hostname. */
	{ "<38>Mar 10 11:59:01 sshd[4123]: hello", M_OK, PE_NONE,
	  "2024-03-10T11:59:01.000Z",
	  { { "host.name", ABSENT },
	    { "log.syslog.appname", "sshd" },
	    { "message", "hello" } } },
	{ "<38>Mar 10 11:59:01 cron: job done", M_OK, PE_NONE,
	  "2024-03-10T11:59:01.000Z",
	  { { "host.name", ABSENT },
	    { "log.syslog.appname", "cron" },
	    { "message", "job done" } } },
	/* Missing PRI. */
	{ "Mar 10 11:59:01 host1 postfix/smtpd[99]: connect from x",
	  M_OK, PE_NONE, "2024-03-10T11:59:01.000Z",
	  { { "log.syslog.priority", ABSENT },
	    { "host.name", "host1" },
	    { "log.syslog.appname", "postfix/smtpd" },
	    { "process.pid", "99" },
	    { "message", "connect from x" } } },
	/* ISO 8601 stamp in 3164 (rsyslog's high-precision template). */
	{ "<30>2024-03-09T08:00:00.250+01:00 nas kernel: disk ok",
	  M_OK, PE_NONE, "2024-03-09T07:00:00.250Z",
	  { { "host.name", "nas" },
	    { "log.syslog.appname", "kernel" },
	    { "message", "disk ok" } } },
	/* Year rollover: a December stamp received in January is last year's. */
	{ "<13>Dec 31 23:59:59 h a: x", M_OK, PE_NONE, "2023-12-31T23:59:59.000Z",
	  { { NULL, NULL } } },
	/* Stamp with a year and milliseconds (Cisco-like, trailing colon). */
	{ "<189>Feb 17 13:40:03.673: %SYS-5-CONFIG_I: Configured from console",
	  M_OK, PE_NONE, "2024-02-17T13:40:03.673Z",
	  { { "log.syslog.severity.name", "Notice" } } },
	{ "<13>Oct 11 2022 22:14:15 host app: m", M_OK, PE_NONE,
	  "2022-10-11T22:14:15.000Z",
	  { { "host.name", "host" }, { "log.syslog.appname", "app" } } },
	/* Plain text without anything. */
	{ "just some text", M_OK, PE_NONE, NULL,
	  { { "message", "just some text" },
	    { "log.syslog.priority", ABSENT } } },
	/* CEF after the 3164 header, with and without a tag. */
	{ "<134>Feb 14 19:04:54 fw CEF:0|Vendor|Prod|1|sig|Name|5|src=1.2.3.4",
	  M_OK, PE_NONE, "2024-02-14T19:04:54.000Z",
	  { { "host.name", "fw" },
	    { "log.syslog.appname", ABSENT },
	    { "cef.device.vendor", "Vendor" },
	    { "source.ip", "1.2.3.4" } } },
	{ "<134>Feb 14 19:04:54 fw app[1]: CEF:0|V|P|1|sig|N|Low|suser=bob",
	  M_OK, PE_NONE, "2024-02-14T19:04:54.000Z",
	  { { "log.syslog.appname", "app" },
	    { "cef.severity", "Low" },
	    { "event.severity", "3" },
	    { "user.name", "bob" } } },
	{ "<134>Feb 14 19:04:54 CEF:0|V|P|1|sig|N|1|", M_OK, PE_NONE,
	  "2024-02-14T19:04:54.000Z",
	  { { "host.name", ABSENT }, { "cef.device.product", "P" } } },
	{ "CEF:0|V|P|1|sig|N|1|dpt=443", M_OK, PE_NONE, NULL,
	  { { "destination.port", "443" } } },
};

static const struct tcase hostile_cases[] = {
	{ "", M_EPARSE, PE_EMPTY, NULL, { { "message", "" } } },
	{ "\n", M_EPARSE, PE_EMPTY, NULL, { { NULL, NULL } } },
	{ "<", M_EPARSE, PE_BAD_PRI, NULL, { { "message", "<" } } },
	{ "<>", M_EPARSE, PE_BAD_PRI, NULL, { { NULL, NULL } } },
	{ "<1", M_EPARSE, PE_BAD_PRI, NULL, { { NULL, NULL } } },
	{ "<999>1 - - - - - -", M_EPARSE, PE_BAD_PRI, NULL,
	  { { "message", "<999>1 - - - - - -" },
	    { "log.syslog.priority", ABSENT } } },
	{ "<192>x", M_EPARSE, PE_BAD_PRI, NULL, { { NULL, NULL } } },
	{ "<99999999999999999999999999999999>x", M_EPARSE, PE_BAD_PRI, NULL,
	  { { NULL, NULL } } },
	{ "<-1>x", M_EPARSE, PE_BAD_PRI, NULL, { { NULL, NULL } } },
	{ "<13>", M_OK, PE_NONE, NULL,
	  { { "log.syslog.priority", "13" }, { "message", "" } } },
	/* 5424 header cut short. */
	{ "<13>1 ", M_EPARSE, PE_BAD_HEADER, NULL,
	  { { "message", "<13>1 " } } },
	{ "<13>1 2024-01-01T00:00:00Z host", M_EPARSE, PE_BAD_HEADER,
	  "2024-01-01T00:00:00.000Z", { { NULL, NULL } } },
	{ "<13>2 - h a p m - msg", M_EPARSE, PE_BAD_VERSION, NULL,
	  { { "log.syslog.version", "2" } } },
	{ "<13>1 yesterday h a p m - msg", M_EPARSE, PE_BAD_TIMESTAMP, NULL,
	  { { "host.name", "h" }, { "message", "<13>1 yesterday h a p m - msg" } } },
	{ "<13>1 2024-13-01T00:00:00Z h a p m - msg", M_EPARSE, PE_BAD_TIMESTAMP,
	  NULL, { { NULL, NULL } } },
	{ "<13>1 2023-02-29T00:00:00Z h a p m - msg", M_EPARSE, PE_BAD_TIMESTAMP,
	  NULL, { { NULL, NULL } } },
	/* Unterminated or malformed SD. */
	{ "<13>1 - h a p m [id", M_EPARSE, PE_BAD_SD, NULL,
	  { { "message", "<13>1 - h a p m [id" } } },
	{ "<13>1 - h a p m [id a=\"b", M_EPARSE, PE_BAD_SD, NULL, { { NULL, NULL } } },
	{ "<13>1 - h a p m [id a=\"b\\", M_EPARSE, PE_BAD_SD, NULL, { { NULL, NULL } } },
	{ "<13>1 - h a p m [id a=\"b\\\"", M_EPARSE, PE_BAD_SD, NULL, { { NULL, NULL } } },
	{ "<13>1 - h a p m [id a=b]", M_EPARSE, PE_BAD_SD, NULL, { { NULL, NULL } } },
	{ "<13>1 - h a p m [ a=\"b\"]", M_EPARSE, PE_BAD_SD, NULL, { { NULL, NULL } } },
	{ "<13>1 - h a p m [id a=\"b\"]x", M_EPARSE, PE_BAD_SD, NULL,
	  { { "log.syslog.structured_data.id.a", "b" } } },
	{ "<13>1 - h a p m x", M_EPARSE, PE_BAD_SD, NULL, { { NULL, NULL } } },
	{ "<13>1 - h a p m ", M_EPARSE, PE_BAD_SD, NULL, { { NULL, NULL } } },
	/* 3164 shapes that are not quite stamps. */
	{ "<13>Oct 32 22:14:15 h a: m", M_OK, PE_NONE, NULL,
	  { { "message", "Oct 32 22:14:15 h a: m" } } },
	{ "<13>Oct 11 25:14:15 h a: m", M_OK, PE_NONE, NULL, { { NULL, NULL } } },
	{ "<13>Oct 11 22:14:15", M_OK, PE_NONE, "2023-10-11T22:14:15.000Z",
	  { { "message", "" } } },
	{ "<13>Oct 11 22:14:15x h", M_OK, PE_NONE, NULL, { { NULL, NULL } } },
	{ "<13>Feb 29 00:00:00 h a: leap day received in a leap year", M_OK,
	  PE_NONE, "2024-02-29T00:00:00.000Z", { { NULL, NULL } } },
	{ "<13>2024-01-0", M_OK, PE_NONE, NULL, { { "message", "2024-01-0" } } },
	{ "<13>h[: x", M_OK, PE_NONE, NULL, { { NULL, NULL } } },
	{ "<13>[1]: x", M_OK, PE_NONE, NULL, { { NULL, NULL } } },
	/* Invalid UTF-8 is kept as bytes (the JSON writer replaces it). */
	{ "<13>1 - h a - - - \xff\xfe\xc3", M_OK, PE_NONE, NULL,
	  { { "message", "\xff\xfe\xc3" } } },
	{ "<13>1 - h\xff a - - [i p=\"\xff\"] m", M_OK, PE_NONE, NULL,
	  { { "log.syslog.structured_data.i.p", "\xff" }, { "host.name", "h\xff" } } },
	/* SD-NAMEs are printable US-ASCII (RFC 5424 §6). */
	{ "<13>1 - h a - - [i\xc3 p=\"v\"] m", M_EPARSE, PE_BAD_SD, NULL,
	  { { NULL, NULL } } },
};

static void test_rfc5424(void **state)
{
	run_cases(*state, rfc5424_cases, N(rfc5424_cases));
}

static void test_rfc3164(void **state)
{
	run_cases(*state, rfc3164_cases, N(rfc3164_cases));
}

static void test_hostile(void **state)
{
	run_cases(*state, hostile_cases, N(hostile_cases));
}

static void test_microseconds(void **state)
{
	struct fixture *fx = *state;
	const char *in = "<165>1 2003-08-24T05:14:15.000003-07:00 h a - - - x";

	assert_int_equal(parse(fx, in, strlen(in)), M_OK);
	/* 2003-08-24T12:14:15.000003Z */
	assert_int_equal(fx->ev.ts_us, 1061727255000003LL);
}

static void test_year_rollover(void **state)
{
	struct fixture *fx = *state;
	const char *dec = "<13>Dec 31 23:59:59 h a: x";
	const char *jan = "<13>Jan  1 00:00:01 h a: x";
	char ts[32];

	/* December line received on 2 January 2025: 2024. */
	arena_reset(&fx->a);
	event_clear(&fx->ev);
	fx->ev.recv_us = 1735776000000000LL;   /* 2025-01-02T00:00:00Z */
	assert_int_equal(syslog_parse(dec, strlen(dec), &fx->ev, &fx->a), M_OK);
	event_format_ts(fx->ev.ts_us, ts);
	assert_string_equal(ts, "2024-12-31T23:59:59.000Z");
	/* January line received on 31 December 2024 (clock skew): 2025. */
	event_clear(&fx->ev);
	fx->ev.recv_us = 1735603200000000LL;   /* 2024-12-31T00:00:00Z */
	assert_int_equal(syslog_parse(jan, strlen(jan), &fx->ev, &fx->a), M_OK);
	event_format_ts(fx->ev.ts_us, ts);
	assert_string_equal(ts, "2025-01-01T00:00:01.000Z");
	/* Same month: this year. */
	event_clear(&fx->ev);
	fx->ev.recv_us = 1704153600000000LL;   /* 2024-01-02T00:00:00Z */
	assert_int_equal(syslog_parse(jan, strlen(jan), &fx->ev, &fx->a), M_OK);
	event_format_ts(fx->ev.ts_us, ts);
	assert_string_equal(ts, "2024-01-01T00:00:01.000Z");
}

/* 10,000 SD params: the first EVENT_MAX_EXTRA are kept, the event is
 * tagged, nothing grows without bound. */
static void test_many_sd_params(void **state)
{
	struct fixture *fx = *state;
	struct buf b;

	buf_init(&b, 0);
	assert_int_equal(buf_puts(&b, "<13>1 - h a - - [big"), 0);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(buf_printf(&b, " p%d=\"v%d\"", i, i), 0);
	assert_int_equal(buf_puts(&b, "] msg"), 0);
	assert_int_equal(parse(fx, b.p, b.len), M_EPARSE);
	assert_int_equal(fx->ev.parse_error, PE_TOO_MANY_FIELDS);
	assert_int_equal(fx->ev.n_extra, EVENT_MAX_EXTRA);
	assert_true(str_eq_cstr(field(&fx->ev, "log.syslog.structured_data.big.p0"), "v0"));
	assert_true(fx->a.used < 4 * 1024 * 1024);
	buf_fini(&b);
}

/* Fields inside well-known programs' messages: OpenSSH's login lines
 * (sshd, and sshd-session of OpenSSH 9.8+) and netfilter log lines. */
static const struct tcase app_cases[] = {
	{ "<38>Nov 26 10:00:01 web1 sshd[1001]: Failed password for root from 203.0.113.50 port 40001 ssh2",
	  M_OK, PE_NONE, "2023-11-26T10:00:01.000Z",
	  { { "event.module", "sshd" }, { "event.category", "authentication" },
	    { "event.outcome", "failure" }, { "event.action", "ssh_login_failed" },
	    { "user.name", "root" }, { "source.ip", "203.0.113.50" },
	    { "source.port", "40001" } } },
	{ "<38>1 2026-11-26T10:00:01Z web1 sshd-session 77 - - Failed password for invalid user "
	  "ad min from 2001:db8::7 port 5 ssh2",
	  M_OK, PE_NONE, "2026-11-26T10:00:01.000Z",
	  { { "event.module", "sshd" }, { "event.outcome", "failure" },
	    { "user.name", "ad min" }, { "source.ip", "2001:db8::7" }, { "source.port", "5" } } },
	{ "<38>Nov 26 10:00:02 web1 sshd[1002]: Accepted publickey for deploy from 198.51.100.4 port "
	  "50000 ssh2: ED25519 SHA256:abc",
	  M_OK, PE_NONE, "2023-11-26T10:00:02.000Z",
	  { { "event.outcome", "success" }, { "event.action", "ssh_login" },
	    { "user.name", "deploy" }, { "source.ip", "198.51.100.4" }, { "source.port", "50000" } } },
	{ "<38>Nov 26 10:00:03 web1 sshd[1003]: Invalid user oracle from 192.0.2.9 port 41000",
	  M_OK, PE_NONE, "2023-11-26T10:00:03.000Z",
	  { { "event.action", "ssh_invalid_user" }, { "user.name", "oracle" },
	    { "source.ip", "192.0.2.9" }, { "source.port", "41000" } } },
	{ "<38>Nov 26 10:00:04 web1 sshd[1004]: Connection closed by authenticating user root "
	  "192.0.2.9 port 41001 [preauth]",
	  M_OK, PE_NONE, "2023-11-26T10:00:04.000Z",
	  { { "user.name", "root" }, { "source.ip", "192.0.2.9" }, { "source.port", "41001" },
	    { "event.outcome", ABSENT } } },
	{ "<38>Nov 26 10:00:05 web1 sshd[1005]: pam_unix(sshd:auth): authentication failure; "
	  "logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.10  user=alice",
	  M_OK, PE_NONE, "2023-11-26T10:00:05.000Z",
	  { { "event.outcome", "failure" }, { "source.ip", "192.0.2.10" }, { "user.name", "alice" } } },
	/* Not an address: no source.ip; nothing else breaks. */
	{ "<38>Nov 26 10:00:06 web1 sshd[1006]: Failed password for root from <script> port x ssh2",
	  M_OK, PE_NONE, "2023-11-26T10:00:06.000Z",
	  { { "user.name", "root" }, { "source.ip", ABSENT }, { "source.port", ABSENT } } },
	/* Another program saying the same words: left alone. */
	{ "<38>Nov 26 10:00:07 web1 myapp[1]: Failed password for root from 203.0.113.50 port 1 ssh2",
	  M_OK, PE_NONE, "2023-11-26T10:00:07.000Z",
	  { { "user.name", ABSENT }, { "source.ip", ABSENT }, { "event.module", ABSENT } } },
	{ "<4>Nov 26 10:00:08 fw1 kernel: [12345.678901] [UFW BLOCK] IN=eth0 OUT= "
	  "MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=198.51.100.23 DST=203.0.113.10 LEN=60 "
	  "TOS=0x00 PREC=0x00 TTL=52 ID=54321 DF PROTO=TCP SPT=51515 DPT=22 WINDOW=29200 RES=0x00 SYN URGP=0",
	  M_OK, PE_NONE, "2023-11-26T10:00:08.000Z",
	  { { "event.module", "iptables" }, { "event.category", "network" },
	    { "event.action", "block" }, { "event.type", "denied" },
	    { "source.ip", "198.51.100.23" }, { "destination.ip", "203.0.113.10" },
	    { "source.port", "51515" }, { "destination.port", "22" },
	    { "network.transport", "tcp" } } },
	{ "<4>1 2026-11-26T10:00:09Z fw1 kernel - - - nft-accept IN=eth1 OUT=eth0 SRC=2001:db8::1 "
	  "DST=2001:db8::2 LEN=80 PROTO=UDP SPT=53 DPT=33000",
	  M_OK, PE_NONE, "2026-11-26T10:00:09.000Z",
	  { { "event.action", "accept" }, { "event.type", "allowed" },
	    { "source.ip", "2001:db8::1" }, { "destination.port", "33000" },
	    { "network.transport", "udp" } } },
	/* A kernel line that is not a netfilter log. */
	{ "<4>Nov 26 10:00:10 fw1 kernel: eth0: link up, IN=1 but no addresses",
	  M_OK, PE_NONE, "2023-11-26T10:00:10.000Z",
	  { { "event.module", ABSENT }, { "source.ip", ABSENT }, { "event.category", ABSENT } } },
};

static void test_app_messages(void **state)
{
	run_cases(*state, app_cases, N(app_cases));
	for (size_t l = 0; l < N(app_cases); l++)
		parse_every_prefix(*state, syslog_parse, app_cases[l].in, 0, 0);
}

/* NUL bytes inside: lengths, not C strings, bound everything. */
static void test_nul_bytes(void **state)
{
	struct fixture *fx = *state;
	static const char in[] = "<13>1 - h\0st a - - [i p=\"a\0b\"] m\0sg";
	static const char in2[] = "<13>Oct 11 22:14:15 h\0 tag\0[1]: \0";
	struct str v;

	assert_int_equal(parse(fx, in, sizeof(in) - 1), M_OK);
	v = field(&fx->ev, "host.name");
	assert_int_equal(v.n, 4);
	assert_memory_equal(v.p, "h\0st", 4);
	v = field(&fx->ev, "message");
	assert_int_equal(v.n, 4);
	assert_memory_equal(v.p, "m\0sg", 4);
	v = event_get_extra(&fx->ev, STR_LIT("log.syslog.structured_data.i.p"));
	assert_int_equal(v.n, 3);
	(void)parse(fx, in2, sizeof(in2) - 1);
	(void)parse(fx, "\0", 1);
	(void)parse(fx, "<\0>", 3);
}

/* Every prefix of valid lines parses without reading past its end (ASan
 * catches over-reads: each prefix is copied to its own heap block). */
static void test_every_prefix(void **state)
{
	struct fixture *fx = *state;
	const char *lines[] = {
		rfc5424_cases[2].in, rfc5424_cases[4].in, rfc5424_cases[7].in,
		rfc3164_cases[0].in, rfc3164_cases[4].in, rfc3164_cases[8].in,
		rfc3164_cases[10].in, rfc3164_cases[14].in,
	};

	for (size_t l = 0; l < N(lines); l++)
		parse_every_prefix(fx, syslog_parse, lines[l], 0, 0);
}

static void test_time_helpers(void **state)
{
	int64_t us, y;
	unsigned m, d;

	(void)state;
	assert_int_equal(ingest_days_from_civil(1970, 1, 1), 0);
	assert_int_equal(ingest_days_from_civil(2000, 3, 1), 11017);
	ingest_civil_from_days(11017, &y, &m, &d);
	assert_int_equal(y, 2000);
	assert_int_equal(m, 3);
	assert_int_equal(d, 1);
	assert_int_equal(ingest_time_rfc3339("1970-01-01T00:00:00Z", 20, &us), 0);
	assert_int_equal(us, 0);
	assert_int_equal(ingest_time_rfc3339("2024-01-15T10:00:00.5+0000", 26, &us), 0);
	assert_int_equal(us, 1705312800500000LL);
	assert_int_equal(ingest_time_rfc3339("2024-01-15 10:00:00", 19, &us), 0);
	assert_int_not_equal(ingest_time_rfc3339("2024-01-15T10:00:00Q", 20, &us), 0);
	assert_int_not_equal(ingest_time_rfc3339("9999-99-99T99:99:99Z", 20, &us), 0);
	assert_int_equal(ingest_month_abbr("Dec"), 12);
	assert_int_equal(ingest_month_abbr("Dex"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rfc5424, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rfc3164, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_microseconds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_year_rollover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_sd_params, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nul_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_app_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_prefix, setup, teardown),
		cmocka_unit_test(test_time_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
