/*
 * Unit tests for json_event_parse() and the json_scan tokenizer: Suricata
 * EVE per event type, Windows events (both the "#attributes" rendering and
 * the EventData.Data array form, plus every event of the Sigma regression
 * set when it is present), generic JSON flattening, and hostile input (deep
 * nesting, broken escapes, NUL bytes, huge key counts).
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
#include <sys/stat.h>

#include "core/err.h"
#include "core/event.h"
#include "ingest/ingest.h"
#include "parser_test.h"
#include "ingest/json_scan.h"

static int parse(struct fixture *fx, const char *p, size_t n)
{
	return parse_with(fx, json_event_parse, p, n, 0);
}

struct tcase {
	const char *in;
	int rc;
	int pe;
	const char *ts;
	struct kv f[36];
};

static int extra_kind(const struct event *ev, const char *name)
{
	for (uint32_t i = 0; i < ev->n_extra; i++)
		if (str_eq_cstr(ev->extra[i].name, name))
			return ev->extra[i].is_number;
	return -1;
}

/* The writer's output must itself be JSON. */
static void assert_output_is_json(struct fixture *fx)
{
	struct json_scan s;
	struct json_token t;
	int type;

	json_scan_init(&s, fx->out.p, fx->out.len);
	do {
		type = json_scan_next(&s, &t);
	} while (type > JT_END);
	if (type != JT_END)
		fail_msg("writer output is not JSON: %.*s", (int)fx->out.len, fx->out.p);
}

static void run_cases(struct fixture *fx, const struct tcase *tc, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = parse(fx, tc[i].in, strlen(tc[i].in));
		check_case(fx, tc[i].in, rc, tc[i].rc, tc[i].pe, tc[i].ts, 0,
			   tc[i].f);
		assert_output_is_json(fx);
	}
}

#define N(x) (sizeof(x) / sizeof((x)[0]))

static const struct tcase eve_cases[] = {
	{ "{\"timestamp\":\"2024-01-15T10:00:00.123456+0000\",\"flow_id\":1234567890123456,"
	  "\"in_iface\":\"eth0\",\"event_type\":\"alert\",\"src_ip\":\"192.168.1.10\","
	  "\"src_port\":51234,\"dest_ip\":\"203.0.113.5\",\"dest_port\":443,"
	  "\"proto\":\"TCP\",\"community_id\":\"1:abc=\",\"alert\":{\"action\":\"allowed\","
	  "\"gid\":1,\"signature_id\":2024897,\"rev\":3,\"signature\":\"ET POLICY "
	  "Suspicious TLS\",\"category\":\"Potentially Bad Traffic\",\"severity\":2,"
	  "\"metadata\":{\"created_at\":[\"2018_01_01\"]}},\"app_proto\":\"tls\","
	  "\"flow\":{\"pkts_toserver\":5,\"pkts_toclient\":4,\"bytes_toserver\":600,"
	  "\"bytes_toclient\":3000,\"start\":\"2024-01-15T09:59:59.000000+0000\"}}",
	  M_OK, PE_NONE, "2024-01-15T10:00:00.123Z",
	  { { "suricata.eve.flow_id", "1234567890123456" },
	    { "suricata.eve.in_iface", "eth0" },
	    { "suricata.eve.event_type", "alert" },
	    { "source.ip", "192.168.1.10" },
	    { "source.port", "51234" },
	    { "destination.ip", "203.0.113.5" },
	    { "destination.port", "443" },
	    { "network.transport", "tcp" },
	    { "network.protocol", "tls" },
	    { "network.community_id", "1:abc=" },
	    { "rule.id", "2024897" },
	    { "suricata.eve.alert.signature_id", "2024897" },
	    { "rule.name", "ET POLICY Suspicious TLS" },
	    { "rule.category", "Potentially Bad Traffic" },
	    { "event.severity", "2" },
	    { "suricata.eve.alert.severity", "2" },
	    { "suricata.eve.alert.action", "allowed" },
	    { "suricata.eve.alert.rev", "3" },
	    { "suricata.eve.alert.gid", "1" },
	    { "suricata.eve.alert.metadata.created_at", "[\"2018_01_01\"]" },
	    { "source.packets", "5" },
	    { "destination.bytes", "3000" },
	    { "suricata.eve.flow.start", "2024-01-15T09:59:59.000000+0000" },
	    { "event.kind", "alert" },
	    { "event.category", "intrusion_detection" },
	    { "event.type", "allowed" },
	    { "event.dataset", "suricata.eve" },
	    { "event.module", "suricata" } } },
	{ "{\"timestamp\":\"2024-01-15T10:00:01.000000+0100\",\"event_type\":\"alert\","
	  "\"alert\":{\"action\":\"blocked\",\"signature_id\":1}}",
	  M_OK, PE_NONE, "2024-01-15T09:00:01.000Z",
	  { { "event.type", "denied" } } },
	/* DNS v2 answer with several answers. */
	{ "{\"timestamp\":\"2024-01-15T10:00:00.000000+0000\",\"event_type\":\"dns\","
	  "\"src_ip\":\"10.0.0.53\",\"dest_ip\":\"10.0.0.2\",\"proto\":\"UDP\","
	  "\"dns\":{\"type\":\"answer\",\"id\":4242,\"flags\":\"8180\",\"qr\":true,"
	  "\"rrname\":\"example.com\",\"rrtype\":\"A\",\"rcode\":\"NOERROR\","
	  "\"answers\":[{\"rrname\":\"example.com\",\"rrtype\":\"CNAME\",\"ttl\":60,"
	  "\"rdata\":\"www.example.com\"},{\"rrname\":\"www.example.com\",\"rrtype\":\"A\","
	  "\"ttl\":60,\"rdata\":\"93.184.216.34\"}],\"grouped\":{\"A\":[\"93.184.216.34\"]}}}",
	  M_OK, PE_NONE, NULL,
	  { { "dns.type", "answer" },
	    { "dns.id", "4242" },
	    { "dns.question.name", "example.com" },
	    { "dns.question.type", "A" },
	    { "dns.response_code", "NOERROR" },
	    { "dns.answers.data", "[\"www.example.com\",\"93.184.216.34\"]" },
	    { "dns.resolved_ip", "93.184.216.34" },
	    { "suricata.eve.dns.qr", "true" },
	    { "suricata.eve.dns.flags", "8180" },
	    { "suricata.eve.dns.grouped.A", "[\"93.184.216.34\"]" },
	    { "network.transport", "udp" },
	    { "event.category", "network" },
	    { "event.type", "protocol" },
	    { "event.kind", "event" } } },
	/* DNS v3 request with queries. */
	{ "{\"event_type\":\"dns\",\"dns\":{\"version\":3,\"type\":\"request\",\"id\":1,"
	  "\"queries\":[{\"rrname\":\"evil.test\",\"rrtype\":\"TXT\"}]}}",
	  M_OK, PE_NONE, NULL,
	  { { "dns.type", "query" },
	    { "dns.question.name", "evil.test" },
	    { "dns.question.type", "TXT" },
	    { "suricata.eve.dns.queries", "[{\"rrname\":\"evil.test\",\"rrtype\":\"TXT\"}]" } } },
	/* A single answer: the value itself. */
	{ "{\"event_type\":\"dns\",\"dns\":{\"answers\":[{\"rrtype\":\"AAAA\","
	  "\"rdata\":\"2001:db8::1\"}]}}",
	  M_OK, PE_NONE, NULL,
	  { { "dns.answers.data", "2001:db8::1" },
	    { "dns.resolved_ip", "2001:db8::1" } } },
	/* HTTP. */
	{ "{\"timestamp\":\"2024-01-15T10:00:00.000000+0000\",\"event_type\":\"http\","
	  "\"http\":{\"hostname\":\"www.example.com\",\"url\":\"/index.html?q=1\","
	  "\"http_user_agent\":\"curl/8.0\",\"http_content_type\":\"text/html\","
	  "\"http_refer\":\"http://ref.test/\",\"http_method\":\"GET\",\"protocol\":"
	  "\"HTTP/1.1\",\"status\":200,\"length\":1256}}",
	  M_OK, PE_NONE, NULL,
	  { { "url.domain", "www.example.com" },
	    { "url.original", "/index.html?q=1" },
	    { "user_agent.original", "curl/8.0" },
	    { "http.response.mime_type", "text/html" },
	    { "http.request.referrer", "http://ref.test/" },
	    { "http.request.method", "GET" },
	    { "http.version", "1.1" },
	    { "http.response.status_code", "200" },
	    { "http.response.bytes", "1256" } } },
	/* TLS. */
	{ "{\"event_type\":\"tls\",\"tls\":{\"subject\":\"CN=example.com\",\"issuerdn\":"
	  "\"CN=Test CA\",\"serial\":\"01\",\"fingerprint\":\"ab:cd:ef\",\"sni\":"
	  "\"example.com\",\"version\":\"TLS 1.2\",\"notbefore\":\"2024-01-01T00:00:00\","
	  "\"notafter\":\"2025-01-01T00:00:00\",\"ja3\":{\"hash\":\"e7d705a3286e19ea42f587b344ee6865\","
	  "\"string\":\"771,4865\"},\"ja3s\":{\"hash\":\"f4febc55ea12b31ae17cfb7e614afda8\"}}}",
	  M_OK, PE_NONE, NULL,
	  { { "tls.server.subject", "CN=example.com" },
	    { "tls.server.issuer", "CN=Test CA" },
	    { "tls.server.hash.sha1", "abcdef" },
	    { "tls.client.server_name", "example.com" },
	    { "tls.version", "1.2" },
	    { "tls.version_protocol", "tls" },
	    { "tls.server.not_before", "2024-01-01T00:00:00" },
	    { "tls.server.not_after", "2025-01-01T00:00:00" },
	    { "tls.client.ja3", "e7d705a3286e19ea42f587b344ee6865" },
	    { "tls.server.ja3s", "f4febc55ea12b31ae17cfb7e614afda8" },
	    { "suricata.eve.tls.ja3.string", "771,4865" },
	    { "suricata.eve.tls.serial", "01" } } },
	/* Flow. */
	{ "{\"event_type\":\"flow\",\"proto\":\"TCP\",\"flow\":{\"pkts_toserver\":10,"
	  "\"pkts_toclient\":8,\"bytes_toserver\":1000,\"bytes_toclient\":9000,"
	  "\"state\":\"closed\",\"reason\":\"timeout\",\"alerted\":false}}",
	  M_OK, PE_NONE, NULL,
	  { { "source.packets", "10" },
	    { "destination.packets", "8" },
	    { "source.bytes", "1000" },
	    { "destination.bytes", "9000" },
	    { "suricata.eve.flow.state", "closed" },
	    { "suricata.eve.flow.alerted", "false" },
	    { "event.type", "connection" } } },
	/* Fileinfo. */
	{ "{\"event_type\":\"fileinfo\",\"fileinfo\":{\"filename\":\"/a/b.exe\",\"magic\":"
	  "\"PE32 executable\",\"size\":4096,\"md5\":\"d41d8cd98f00b204e9800998ecf8427e\","
	  "\"sha1\":\"da39a3ee5e6b4b0d3255bfef95601890afd80709\",\"sha256\":"
	  "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\","
	  "\"state\":\"CLOSED\",\"stored\":false}}",
	  M_OK, PE_NONE, NULL,
	  { { "file.name", "/a/b.exe" },
	    { "file.mime_type", "PE32 executable" },
	    { "file.size", "4096" },
	    { "file.hash.md5", "d41d8cd98f00b204e9800998ecf8427e" },
	    { "file.hash.sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
	    { "file.hash.sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
	    { "event.category", "file" } } },
	/* event_type not first; bad timestamp is flagged. */
	{ "{\"x\":{\"event_type\":1},\"event_type\":\"anomaly\",\"timestamp\":\"never\"}",
	  M_EPARSE, PE_BAD_TIMESTAMP, NULL,
	  { { "suricata.eve.x.event_type", "1" } } },
};

/* Composed in the shape EVTX-to-JSON converters produce. */
static const char win_attr_event[] =
	"{\n  \"Event\": {\n    \"#attributes\": {\"xmlns\": \"http://schemas.microsoft.com/win/2004/08/events/event\"},\n"
	"    \"System\": {\n"
	"      \"Provider\": {\"#attributes\": {\"Name\": \"Microsoft-Windows-Sysmon\", \"Guid\": \"5770385F-C22A-43E0-BF4C-06F5698FFBD9\"}},\n"
	"      \"EventID\": 1, \"Version\": 5, \"Level\": 4, \"Task\": 1, \"Opcode\": 0,\n"
	"      \"Keywords\": \"0x8000000000000000\",\n"
	"      \"TimeCreated\": {\"#attributes\": {\"SystemTime\": \"2025-12-03T07:42:38.210937Z\"}},\n"
	"      \"EventRecordID\": 1234, \"Correlation\": null,\n"
	"      \"Execution\": {\"#attributes\": {\"ProcessID\": 3116, \"ThreadID\": 1656}},\n"
	"      \"Channel\": \"Microsoft-Windows-Sysmon/Operational\",\n"
	"      \"Computer\": \"ws01.corp.test\",\n"
	"      \"Security\": {\"#attributes\": {\"UserID\": \"S-1-5-18\"}}\n"
	"    },\n"
	"    \"EventData\": {\n"
	"      \"RuleName\": \"-\", \"ProcessId\": 9720,\n"
	"      \"Image\": \"C:\\\\Windows\\\\System32\\\\cmd.exe\",\n"
	"      \"CommandLine\": \"cmd.exe /c \\\"whoami\\\"\",\n"
	"      \"User\": \"CORP\\\\alice\",\n"
	"      \"Hashes\": \"MD5=1736263E02468939F808C0528E8DBB7E,SHA256=1F9FFC2227F8DEA8B771D543C464CF8166C22A39420A5322B5892A640C4B34B6,IMPHASH=68A9FF9C8D0D4655E46E1A7A190A41D2\",\n"
	"      \"ParentProcessId\": 9076,\n"
	"      \"ParentImage\": \"C:\\\\Windows\\\\explorer.exe\",\n"
	"      \"ParentCommandLine\": \"C:\\\\Windows\\\\explorer.exe\"\n"
	"    }\n  }\n}\n";

static const struct tcase win_cases[] = {
	{ win_attr_event, M_OK, PE_NONE, "2025-12-03T07:42:38.210Z",
	  { { "event.provider", "Microsoft-Windows-Sysmon" },
	    { "winlog.provider_guid", "5770385F-C22A-43E0-BF4C-06F5698FFBD9" },
	    { "event.code", "1" },
	    { "winlog.event_id", "1" },
	    { "winlog.channel", "Microsoft-Windows-Sysmon/Operational" },
	    { "host.name", "ws01.corp.test" },
	    { "winlog.record_id", "1234" },
	    { "winlog.process.pid", "3116" },
	    { "winlog.user.identifier", "S-1-5-18" },
	    { "winlog.event_data.Image", "C:\\Windows\\System32\\cmd.exe" },
	    { "winlog.event_data.CommandLine", "cmd.exe /c \"whoami\"" },
	    { "process.executable", "C:\\Windows\\System32\\cmd.exe" },
	    { "process.name", "cmd.exe" },
	    { "process.command_line", "cmd.exe /c \"whoami\"" },
	    { "process.pid", "9720" },
	    { "process.parent.pid", "9076" },
	    { "process.parent.executable", "C:\\Windows\\explorer.exe" },
	    { "process.parent.name", "explorer.exe" },
	    { "process.parent.command_line", "C:\\Windows\\explorer.exe" },
	    { "user.name", "alice" },
	    { "user.domain", "CORP" },
	    { "winlog.event_data.User", "CORP\\alice" },
	    { "file.hash.md5", "1736263e02468939f808c0528e8dbb7e" },
	    { "file.hash.sha256", "1f9ffc2227f8dea8b771d543c464cf8166c22a39420a5322b5892a640c4b34b6" },
	    { "event.category", "process" },
	    { "event.type", "start" },
	    { "event.module", "sysmon" },
	    { "xmlns", ABSENT } } },
	/* The Data-array form with a hex NewProcessId (Security 4688). */
	{ "{\"Event\":{\"System\":{\"Provider\":{\"Name\":\"Microsoft-Windows-Security-Auditing\"},"
	  "\"EventID\":{\"#text\":\"4688\",\"#attributes\":{\"Qualifiers\":\"\"}},"
	  "\"Channel\":\"Security\",\"Computer\":\"dc1\",\"TimeCreated\":{\"SystemTime\":"
	  "\"2024-02-01T10:00:00.000Z\"}},\"EventData\":{\"Data\":["
	  "{\"Name\":\"SubjectUserName\",\"#text\":\"bob\"},"
	  "{\"Name\":\"NewProcessId\",\"#text\":\"0x1f4\"},"
	  "{\"#text\":\"C:\\\\Windows\\\\notepad.exe\",\"Name\":\"NewProcessName\"},"
	  "{\"Name\":\"Empty\"}]}},\"@timestamp\":\"ignored-outside-Event\"}",
	  M_EPARSE, PE_BAD_TIMESTAMP, "2024-02-01T10:00:00.000Z",
	  { { "event.code", "4688" },
	    { "event.provider", "Microsoft-Windows-Security-Auditing" },
	    { "winlog.channel", "Security" },
	    { "winlog.event_data.SubjectUserName", "bob" },
	    { "winlog.event_data.NewProcessId", "0x1f4" },
	    { "winlog.event_data.Empty", "" },
	    { "process.pid", "500" },
	    { "process.executable", "C:\\Windows\\notepad.exe" },
	    { "process.name", "notepad.exe" },
	    { "user.name", "bob" },
	    { "event.module", "security" },
	    { "event.category", "process" } } },
	/* A single Data object, unnamed Data values, UserData. */
	{ "{\"Event\":{\"System\":{\"EventID\":5858,\"Channel\":\"Microsoft-Windows-WMI-Activity/Operational\"},"
	  "\"EventData\":{\"Data\":{\"Name\":\"Only\",\"#text\":7}},"
	  "\"UserData\":{\"Op\":{\"#attributes\":{\"xmlns\":\"x\"},\"User\":\"D\\\\u\","
	  "\"ClientProcessId\":25920}}}}",
	  M_OK, PE_NONE, NULL,
	  { { "winlog.event_data.Only", "7" },
	    { "winlog.user_data.User", "D\\u" },
	    { "winlog.user_data.ClientProcessId", "25920" },
	    { "user.name", "u" },
	    { "event.module", "windows" } } },
	{ "{\"Event\":{\"System\":{\"EventID\":1},\"EventData\":{\"Data\":[\"a\",2,null,[1]]}}}",
	  M_OK, PE_NONE, NULL,
	  { { "winlog.event_data.param1", "a" },
	    { "winlog.event_data.param2", "2" } } },
	/* "Event" that is not an object: generic. */
	{ "{\"Event\":\"login\",\"user\":{\"name\":\"x\"}}", M_OK, PE_NONE, NULL,
	  { { "Event", "login" }, { "user.name", "x" } } },
};

static const struct tcase generic_cases[] = {
	{ "{\"@timestamp\":\"2024-05-01T01:02:03.456Z\",\"source\":{\"ip\":\"1.2.3.4\","
	  "\"port\":80},\"message\":\"hello\",\"app\":{\"n\":12.5e3,\"ok\":true,"
	  "\"no\":null,\"list\":[1, \"two\", {\"3\":3}]},\"tags\":[\"one\"],"
	  "\"labels\":[\"a\",\"b\"]}",
	  M_OK, PE_NONE, "2024-05-01T01:02:03.456Z",
	  { { "source.ip", "1.2.3.4" },
	    { "source.port", "80" },
	    { "message", "hello" },
	    { "app.n", "12.5e3" },
	    { "app.ok", "true" },
	    { "app.no", ABSENT },
	    { "app.list", "[1, \"two\", {\"3\":3}]" },
	    { "tags", "one" },
	    { "labels", "[\"a\",\"b\"]" },
	    { "@timestamp", ABSENT } } },
	/* Escapes: \u, surrogate pair, lone surrogate, escaped key. */
	{ "{\"m\\u0065ssage\":\"caf\\u00e9 \\ud83d\\ude00 \\ud800x \\udc00 \\/\\b\\f\\n\\r\\t\\\"\\\\\"}",
	  M_OK, PE_NONE, NULL,
	  { { "message", "caf\xc3\xa9 \xf0\x9f\x98\x80 \xef\xbf\xbdx \xef\xbf\xbd /\b\f\n\r\t\"\\" } } },
	/* \u0000 decodes to a NUL byte inside the value. */
	{ "{\"a\":\"x\\u0000y\"}", M_OK, PE_NONE, NULL, { { NULL, NULL } } },
	/* "timestamp" as text and "time" as epoch; "@timestamp" wins. */
	{ "{\"time\":1700000000.5,\"timestamp\":\"2020-01-01T00:00:00Z\"}", M_OK, PE_NONE,
	  "2020-01-01T00:00:00.000Z",
	  { { "time", "1700000000.5" }, { "timestamp", "2020-01-01T00:00:00Z" } } },
	{ "{\"time\":1700000000123}", M_OK, PE_NONE, "2023-11-14T22:13:20.123Z",
	  { { NULL, NULL } } },
	/* Epoch values too large to scale stay plain fields. */
	{ "{\"time\":999999999999999}", M_OK, PE_NONE, NULL,
	  { { "time", "999999999999999" } } },
	{ "{\"time\":9999999999999999.9}", M_OK, PE_NONE, NULL, { { NULL, NULL } } },
	{ "{\"time\":\"soon\"}", M_OK, PE_NONE, NULL, { { "time", "soon" } } },
	{ "{\"@timestamp\":\"garbage\"}", M_EPARSE, PE_BAD_TIMESTAMP, NULL,
	  { { "message", "{\"@timestamp\":\"garbage\"}" } } },
	{ " {} \n", M_OK, PE_NONE, NULL, { { NULL, NULL } } },
	{ "{\"a\":{\"b\":{\"c\":{\"d\":\"deep\"}}},\"a.b\":1}", M_OK, PE_NONE, NULL,
	  { { "a.b.c.d", "deep" }, { "a.b", "1" } } },
	{ "{\"k\":\"\xff\xfe invalid utf8\"}", M_OK, PE_NONE, NULL,
	  { { "k", "\xff\xfe invalid utf8" } } },
	/* Malformed. */
	{ "", M_EPARSE, PE_EMPTY, NULL, { { "message", "" } } },
	{ "{", M_EPARSE, PE_BAD_JSON, NULL, { { "message", "{" } } },
	{ "}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "[]", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "\"s\"", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\" 1}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":1,}", M_EPARSE, PE_BAD_JSON, NULL, { { "a", "1" } } },
	{ "{\"a\":1 \"b\":2}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":[1,]}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":[1}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":1} x", M_EPARSE, PE_BAD_JSON, NULL, { { "a", "1" } } },
	{ "{\"a\":1}{\"b\":2}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":01}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":1.}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":-}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":1e}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":+1}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":tru}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":nul", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":\"\\u12\"}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":\"\\u12", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":\"\\x\"}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":\"\\", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{\"a\":\"tab\there\"}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{'a':1}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
	{ "{1:1}", M_EPARSE, PE_BAD_JSON, NULL, { { NULL, NULL } } },
};

static void test_eve(void **state)
{
	struct fixture *fx = *state;

	run_cases(fx, eve_cases, N(eve_cases));
	/* Arrays are written as raw JSON, booleans bare, numbers bare. */
	parse(fx, eve_cases[0].in, strlen(eve_cases[0].in));
	assert_int_equal(extra_kind(&fx->ev, "suricata.eve.alert.metadata.created_at"),
			 EXTRA_RAW_JSON);
	assert_non_null(strstr(fx->out.p, "\"suricata.eve.alert.metadata.created_at\":[\"2018_01_01\"]"));
	assert_non_null(strstr(fx->out.p, "\"source.port\":51234"));
}

static void test_windows(void **state)
{
	run_cases(*state, win_cases, N(win_cases));
}

static void test_generic(void **state)
{
	struct fixture *fx = *state;
	const char *in;
	struct str v;

	run_cases(fx, generic_cases, N(generic_cases));
	in = "{\"n\":42,\"s\":\"42\",\"b\":false}";
	assert_int_equal(parse(fx, in, strlen(in)), M_OK);
	assert_int_equal(extra_kind(&fx->ev, "n"), EXTRA_NUMBER);
	assert_int_equal(extra_kind(&fx->ev, "s"), EXTRA_STRING);
	assert_int_equal(extra_kind(&fx->ev, "b"), EXTRA_RAW_JSON);
	assert_non_null(strstr(fx->out.p, "\"n\":42"));
	assert_non_null(strstr(fx->out.p, "\"s\":\"42\""));
	assert_non_null(strstr(fx->out.p, "\"b\":false"));
	in = "{\"a\":\"x\\u0000y\"}";
	assert_int_equal(parse(fx, in, strlen(in)), M_OK);
	v = field(&fx->ev, "a");
	assert_int_equal(v.n, 3);
	assert_memory_equal(v.p, "x\0y", 3);
}

/* Nesting: 32 levels are fine, 33 are refused, 10,000 do not recurse. */
static void test_depth(void **state)
{
	struct fixture *fx = *state;
	struct buf b;

	buf_init(&b, 0);
	for (int depth = 31; depth <= 33; depth++) {
		buf_reset(&b);
		for (int i = 0; i < depth; i++)
			assert_int_equal(buf_puts(&b, "{\"a\":"), 0);
		assert_int_equal(buf_puts(&b, "1"), 0);
		for (int i = 0; i < depth; i++)
			assert_int_equal(buf_putc(&b, '}'), 0);
		int rc = parse(fx, b.p, b.len);
		if (depth <= JSON_MAX_DEPTH) {
			assert_int_equal(rc, M_OK);
		} else {
			assert_int_equal(rc, M_EPARSE);
			assert_int_equal(fx->ev.parse_error, PE_BAD_JSON);
		}
	}
	buf_reset(&b);
	assert_int_equal(buf_puts(&b, "{\"a\":"), 0);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(buf_putc(&b, '['), 0);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(buf_putc(&b, ']'), 0);
	assert_int_equal(buf_putc(&b, '}'), 0);
	assert_int_equal(parse(fx, b.p, b.len), M_EPARSE);
	assert_int_equal(fx->ev.parse_error, PE_BAD_JSON);
	buf_reset(&b);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(buf_puts(&b, "{\"k\":"), 0);
	assert_int_equal(parse(fx, b.p, b.len), M_EPARSE);
	assert_int_equal(fx->ev.parse_error, PE_BAD_JSON);
	buf_fini(&b);
}

static void test_many_keys(void **state)
{
	struct fixture *fx = *state;
	struct buf b;

	buf_init(&b, 0);
	assert_int_equal(buf_putc(&b, '{'), 0);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(buf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i, i), 0);
	assert_int_equal(buf_putc(&b, '}'), 0);
	assert_int_equal(parse(fx, b.p, b.len), M_EPARSE);
	assert_int_equal(fx->ev.parse_error, PE_TOO_MANY_FIELDS);
	assert_int_equal(fx->ev.n_extra, EVENT_MAX_EXTRA);
	/* A path longer than the path buffer is skipped and flagged. */
	buf_reset(&b);
	assert_int_equal(buf_puts(&b, "{\"ok\":1,\""), 0);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(buf_putc(&b, 'x'), 0);
	assert_int_equal(buf_puts(&b, "\":{\"y\":[1,2]},\"after\":2}"), 0);
	assert_int_equal(parse(fx, b.p, b.len), M_EPARSE);
	assert_int_equal(fx->ev.parse_error, PE_TOO_MANY_FIELDS);
	assert_true(str_eq_cstr(field(&fx->ev, "after"), "2"));
	buf_fini(&b);
}

static void test_nul_bytes(void **state)
{
	struct fixture *fx = *state;
	static const char raw_nul[] = "{\"a\":\"x\0y\"}";
	static const char after[] = "{\"a\":1}\0";

	assert_int_equal(parse(fx, raw_nul, sizeof(raw_nul) - 1), M_EPARSE);
	assert_int_equal(fx->ev.parse_error, PE_BAD_JSON);
	assert_int_equal(parse(fx, after, sizeof(after) - 1), M_EPARSE);
	assert_int_equal(parse(fx, "\0", 1), M_EPARSE);
}

static void test_every_prefix(void **state)
{
	struct fixture *fx = *state;
	const char *lines[] = { eve_cases[0].in, eve_cases[2].in, eve_cases[6].in,
				win_cases[1].in, generic_cases[0].in, generic_cases[1].in };

	/* Only the complete object parses. */
	for (size_t l = 0; l < N(lines); l++)
		parse_every_prefix(fx, json_event_parse, lines[l], 0, 1);
}

static void test_scan_helpers(void **state)
{
	const char *two = " {\"a\":[1,{}]}\n{\"b\":2}";
	size_t n;

	(void)state;
	n = json_value_len(two, strlen(two));
	assert_int_equal(n, strlen(" {\"a\":[1,{}]}\n"));
	assert_int_equal(json_value_len(two + n, strlen(two + n)), strlen("{\"b\":2}"));
	assert_int_equal(json_value_len("{", 1), 0);
	assert_int_equal(json_value_len("", 0), 0);
}

/* Every event of the Sigma regression set (EVTX rendered as JSON, several
 * concatenated objects per file) parses as a Windows event. Skipped when
 * the data is not on this machine. */
static int walk_regression(struct fixture *fx, const char *dir, int *files,
			   int *events, int depth)
{
	DIR *d;
	struct dirent *de;
	char path[4096];

	if (depth > 16 || !(d = opendir(dir)))
		return 0;
	while ((de = readdir(d))) {
		struct stat st;
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
			continue;
		if (stat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			walk_regression(fx, path, files, events, depth + 1);
			continue;
		}
		if (len < 5 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		FILE *f = fopen(path, "rb");
		assert_non_null(f);
		char *data = malloc((size_t)st.st_size + 1);
		assert_non_null(data);
		size_t got = fread(data, 1, (size_t)st.st_size, f);
		fclose(f);
		size_t off = 0;
		(*files)++;
		while (off < got) {
			size_t vl = json_value_len(data + off, got - off);
			if (vl == 0) {
				size_t k = off;
				while (k < got && (data[k] == ' ' || data[k] == '\n' ||
						   data[k] == '\r' || data[k] == '\t'))
					k++;
				if (k != got)
					fail_msg("%s: not JSON at offset %zu", path, off);
				break;
			}
			int rc = parse(fx, data + off, vl);
			if (rc != M_OK)
				fail_msg("%s: event at %zu: %s", path, off,
					 parse_error_name(fx->ev.parse_error));
			if (!event_has(&fx->ev, F_EVENT_CODE) ||
			    !event_has(&fx->ev, F_HOST_NAME) ||
			    !event_has(&fx->ev, F_EVENT_PROVIDER) ||
			    fx->ev.ts_us == RECV_US)
				fail_msg("%s: event at %zu lacks System fields", path, off);
			assert_output_is_json(fx);
			(*events)++;
			off += vl;
		}
		free(data);
	}
	closedir(d);
	return 0;
}

static void test_sigma_regression(void **state)
{
	struct fixture *fx = *state;
	/* The public conformance data lives beside the repository
	 * (MAMORI_CONFORMANCE_DIR, default <source>/../shared). Its absence is
	 * a failure that says so, never a silent pass. */
	const char *conf = getenv("MAMORI_CONFORMANCE_DIR");
	const char *src = getenv("MAMORI_SOURCE_DIR");
	char dir[4096];
	struct stat st;
	int files = 0, events = 0;

	if (conf && conf[0])
		snprintf(dir, sizeof(dir), "%s/sigma/regression", conf);
	else
		snprintf(dir, sizeof(dir), "%s/../shared/sigma/regression", src ? src : ".");
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		fail_msg("conformance data not found at %s: set MAMORI_CONFORMANCE_DIR "
			 "to the folder holding sigma/regression", dir);
	walk_regression(fx, dir, &files, &events, 0);
	print_message("sigma regression: %d files, %d events parsed\n", files, events);
	assert_true(events > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_eve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_windows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_generic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_depth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nul_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_prefix, setup, teardown),
		cmocka_unit_test(test_scan_helpers),
		cmocka_unit_test_setup_teardown(test_sigma_regression, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
