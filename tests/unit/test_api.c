/*
 * The HTTP API, end to end over real sockets: the server is started on
 * 127.0.0.1 with an ephemeral port, and a tiny raw HTTP client (plus the
 * `mamori events` client's own HTTP code) asserts status codes, headers and
 * bodies. A recording fake store checks that query parameters reach the
 * store exactly as meant; the pure parameter parser and the client's
 * formatting are tested by tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "api/api.h"
#include "api/api_params.h"
#include "cli/client.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/event.h"
#include "core/log.h"
#include "core/metrics.h"
#include "store/store.h"

#define TOKEN "test-token-0123456789abcdef"

/* ---- a recording fake store ------------------------------------------- */

static const char *const fake_events[] = {
	"{\"@timestamp\":\"2024-05-01T12:00:03.000Z\",\"host.name\":\"web1\","
	"\"event.dataset\":\"syslog\",\"message\":\"third \\u001b[31mred\"}",
	"{\"@timestamp\":\"2024-05-01T12:00:02.000Z\",\"host.name\":\"web2\","
	"\"event.dataset\":\"suricata.eve\",\"message\":\"second\"}",
	"{\"@timestamp\":\"2024-05-01T12:00:01.000Z\",\"host.name\":\"db1\","
	"\"event.dataset\":\"syslog\",\"message\":\"first\"}",
};
#define N_FAKE 3

struct fake_store {
	struct store base;
	struct store_query last;
	char last_text[256];
	char last_names[STORE_MAX_FILTERS][64];
	char last_values[STORE_MAX_FILTERS][64];
	int calls;
};

static int fake_search(struct store *s, const struct store_query *q,
		       struct buf *out, uint64_t *total)
{
	struct fake_store *f = (struct fake_store *)s;
	int first = 1;

	f->last = *q;
	f->calls++;
	snprintf(f->last_text, sizeof(f->last_text), "%s", q->text ? q->text : "");
	for (unsigned i = 0; i < q->n_filters; i++) {
		snprintf(f->last_names[i], 64, "%s", q->filters[i].name);
		snprintf(f->last_values[i], 64, "%s", q->filters[i].value);
	}
	if (q->text && strcmp(q->text, "BAD(") == 0)
		return M_EPARSE;
	if (q->text && strcmp(q->text, "BOOM") == 0)
		return M_EIO;
	*total = N_FAKE;
	if (buf_putc(out, '[') != 0)
		return M_ENOMEM;
	for (uint64_t i = q->offset; i < N_FAKE && i < q->offset + q->limit; i++) {
		if (!first && buf_putc(out, ',') != 0)
			return M_ENOMEM;
		if (buf_puts(out, fake_events[i]) != 0)
			return M_ENOMEM;
		first = 0;
	}
	return buf_putc(out, ']');
}

static const struct store_ops fake_ops = {
	.name = "fake",
	.search = fake_search,
};

static struct fake_store fake = { .base = { .ops = &fake_ops } };
static struct api *api;
static int port;

static int setup_server(void **state)
{
	static char *tokens[] = { "another-token-xxxxxxxx", TOKEN };
	struct api_config cfg = {
		.listen = "127.0.0.1:0",
		.tokens = { tokens, 2 },
		.threads = 2,
		.web_root = "",
		.max_connections = 64,
		.timeout = 5,
	};

	(void)state;
	log_set_level(LOG_ERROR);
	if (api_start(&cfg, &fake.base, &api) != 0)
		return -1;
	port = api_port(api);
	return port > 0 ? 0 : -1;
}

static int teardown_server(void **state)
{
	(void)state;
	api_stop(api);
	api = NULL;
	metrics_fini();
	return 0;
}

/* ---- a tiny raw HTTP client ------------------------------------------- */

struct answer {
	int status;
	char head[8192];       /* status line and headers, NUL-terminated */
	struct buf body;
};

/* Sends raw bytes and reads until the server closes. */
static void http_raw(const char *request, size_t len, struct answer *a)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct buf all;
	char *sep;
	int fd;

	memset(a, 0, sizeof(*a));
	buf_init(&a->body, 64 << 20);
	buf_init(&all, 64 << 20);
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	for (size_t off = 0; off < len;) {
		ssize_t w = send(fd, request + off, len - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;   /* the server may answer and close early */
		off += (size_t)w;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		assert_int_equal(poll(&p, 1, 10000), 1);
		assert_int_equal(buf_reserve(&all, 65536), 0);
		n = recv(fd, all.p + all.len, all.cap - all.len, 0);
		if (n < 0 && errno == ECONNRESET)
			break;
		assert_true(n >= 0);
		if (n == 0)
			break;
		all.len += (size_t)n;
	}
	close(fd);
	assert_int_equal(buf_cstr(&all), 0);
	sep = strstr(all.p, "\r\n\r\n");
	assert_non_null(sep);
	assert_true((size_t)(sep - all.p) < sizeof(a->head));
	memcpy(a->head, all.p, (size_t)(sep - all.p));
	a->head[sep - all.p] = '\0';
	assert_int_equal(strncmp(a->head, "HTTP/1.1 ", 9), 0);
	a->status = (int)strtol(a->head + 9, NULL, 10);
	assert_int_equal(buf_append(&a->body, sep + 4, all.len - (size_t)(sep + 4 - all.p)), 0);
	assert_int_equal(buf_cstr(&a->body), 0);
	buf_fini(&all);
}

static void http_get(const char *target, const char *token, struct answer *a)
{
	char req[16384];
	int n;

	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%sConnection: close\r\n\r\n",
		     target, token ? "Authorization: Bearer " : "", token ? token : "",
		     token ? "\r\n" : "");
	assert_true(n > 0 && (size_t)n < sizeof(req));
	http_raw(req, (size_t)n, a);
}

/* The value of a response header (case-insensitive name), or NULL. */
static const char *head_value(struct answer *a, const char *name, char *out,
			      size_t outsz)
{
	size_t nl = strlen(name);

	for (char *line = strstr(a->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
		char *s = line + 2, *e = strstr(s, "\r\n");
		size_t len = e ? (size_t)(e - s) : strlen(s);

		if (len > nl + 1 && s[nl] == ':' && strncasecmp(s, name, nl) == 0) {
			s += nl + 1;
			len -= nl + 1;
			while (len && *s == ' ') {
				s++;
				len--;
			}
			snprintf(out, outsz, "%.*s", (int)len, s);
			return out;
		}
	}
	return NULL;
}

static void answer_fini(struct answer *a)
{
	buf_fini(&a->body);
}

/* Parses the body as JSON (it must be) and checks the Content-Type. */
static json_t *answer_json(struct answer *a)
{
	char ct[128];
	json_t *j;

	assert_non_null(head_value(a, "Content-Type", ct, sizeof(ct)));
	assert_string_equal(ct, "application/json");
	j = json_loadb(a->body.p, a->body.len, 0, NULL);
	assert_non_null(j);
	return j;
}

static void assert_json_error(struct answer *a, int status, const char *param)
{
	json_t *j;

	assert_int_equal(a->status, status);
	j = answer_json(a);
	assert_true(json_is_string(json_object_get(j, "error")));
	assert_true(json_is_string(json_object_get(j, "detail")));
	if (param)
		assert_string_equal(json_string_value(json_object_get(j, "parameter")), param);
	json_decref(j);
}

/* ---- pure parsing ------------------------------------------------------ */

static void test_parse_time(void **state)
{
	static const struct {
		const char *in;
		int ok;
		int64_t us;
	} cases[] = {
		{ "1714564800", 1, 1714564800000000LL },
		{ "1714564800123", 1, 1714564800123000LL },
		{ "0", 1, 0 },
		{ "2024-05-01T12:00:00Z", 1, 1714564800000000LL },
		{ "2024-05-01t12:00:00z", 1, 1714564800000000LL },
		{ "2024-05-01 12:00:00Z", 1, 1714564800000000LL },
		{ "2024-05-01T12:00:00.5Z", 1, 1714564800500000LL },
		{ "2024-05-01T12:00:00.123456789Z", 1, 1714564800123456LL },
		{ "2024-05-01T14:00:00+02:00", 1, 1714564800000000LL },
		{ "2024-05-01T14:00:00 02:00", 1, 1714564800000000LL },
		{ "2024-05-01T10:00:00-02:00", 1, 1714564800000000LL },
		{ "2024-05-01", 1, 1714521600000000LL },
		{ "2024-02-29T00:00:00Z", 1, 1709164800000000LL },
		{ "1970-01-01T00:00:00Z", 1, 0 },
		{ "2023-02-29T00:00:00Z", 0, 0 },
		{ "2024-13-01T00:00:00Z", 0, 0 },
		{ "2024-05-01T24:00:00Z", 0, 0 },
		{ "2024-05-01T12:00:00", 0, 0 },
		{ "2024-05-01T12:00Z", 0, 0 },
		{ "2024-05-01T12:00:00.Z", 0, 0 },
		{ "2024-05-01T12:00:00Zjunk", 0, 0 },
		{ "1969-12-31T23:59:59Z", 0, 0 },
		{ "yesterday", 0, 0 },
		{ "-5", 0, 0 },
		{ "", 0, 0 },
		{ "123456789012345", 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t us = -1;
		int rc = api_parse_time(cases[i].in, strlen(cases[i].in), &us);

		if (cases[i].ok != (rc == 0))
			fail_msg("case %zu (%s): rc %d", i, cases[i].in, rc);
		if (cases[i].ok && us != cases[i].us)
			fail_msg("case %zu (%s): %lld != %lld", i, cases[i].in,
				 (long long)us, (long long)cases[i].us);
	}
}

static void test_search_params(void **state)
{
	static const struct {
		const char *params[6][2];
		const char *err_param;    /* NULL = accepted */
	} cases[] = {
		{ { { "limit", "10" } }, NULL },
		{ { { "limit", "0" } }, "limit" },
		{ { { "limit", "1001" } }, "limit" },
		{ { { "limit", "-1" } }, "limit" },
		{ { { "limit", "1x" } }, "limit" },
		{ { { "limit", "1" }, { "limit", "2" } }, "limit" },
		{ { { "offset", "1000001" } }, "offset" },
		{ { { "order", "sideways" } }, "order" },
		{ { { "from", "nope" } }, "from" },
		{ { { "to", "2024-05-01T12:00:00" } }, "to" },
		{ { { "from", "2000" }, { "to", "1000" } }, "from" },
		{ { { "from", "" }, { "q", "" }, { "limit", "" } }, NULL },
		{ { { "host.name", "web1" }, { "source.ip", "10.0.0.*" } }, NULL },
		{ { { "host.name", "" } }, "host.name" },
		{ { { "hostname", "web1" } }, "hostname" },
		{ { { "filter", "custom.field:x:y" } }, NULL },
		{ { { "filter", "nocolon" } }, "filter" },
		{ { { "filter", "bad name:x" } }, "filter" },
		{ { { "filter", "@timestamp:1" } }, "filter" },
		{ { { "@timestamp", "1" } }, "@timestamp" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct api_search *s = malloc(sizeof(*s));
		int rc = 0;

		assert_non_null(s);
		api_search_init(s);
		for (size_t k = 0; k < 6 && cases[i].params[k][0] && rc == 0; k++)
			rc = api_search_param(s, cases[i].params[k][0],
					      strlen(cases[i].params[k][0]),
					      cases[i].params[k][1],
					      strlen(cases[i].params[k][1]));
		if (rc == 0)
			rc = api_search_finish(s);
		if (cases[i].err_param == NULL && rc != 0)
			fail_msg("case %zu: refused: %s: %s", i, s->err_param, s->err_detail);
		if (cases[i].err_param && (rc == 0 || strcmp(s->err_param, cases[i].err_param) != 0))
			fail_msg("case %zu: expected an error on %s, got rc %d on %s", i,
				 cases[i].err_param, rc, s->err_param);
		free(s);
	}
}

static void test_search_params_limits(void **state)
{
	struct api_search *s = malloc(sizeof(*s));
	char big[API_MAX_VALUE + 2];

	(void)state;
	assert_non_null(s);
	api_search_init(s);
	for (int i = 0; i < STORE_MAX_FILTERS; i++)
		assert_int_equal(api_search_param(s, "host.name", 9, "a", 1), 0);
	assert_int_equal(api_search_param(s, "host.name", 9, "a", 1), M_EINVAL);
	assert_string_equal(s->err_param, "host.name");

	api_search_init(s);
	memset(big, 'x', sizeof(big));
	assert_int_equal(api_search_param(s, "q", 1, big, API_MAX_VALUE + 1), M_EINVAL);
	assert_int_equal(api_search_param(s, "q", 1, "a\0b", 3), M_EINVAL);

	api_search_init(s);
	assert_int_equal(api_search_param(s, "order", 5, "asc", 3), 0);
	assert_int_equal(api_search_param(s, "order", 5, "asc", 3), M_EINVAL);
	/* a flood of parameters stops at the count */
	api_search_init(s);
	for (int i = 0; i < API_MAX_PARAMS; i++)
		s->n_params++;
	assert_int_equal(api_search_param(s, "q", 1, "x", 1), M_EINVAL);
	free(s);
}

/* ---- the server -------------------------------------------------------- */

static void test_health(void **state)
{
	struct answer a;
	json_t *j;

	(void)state;
	http_get("/api/v1/health", NULL, &a);
	assert_int_equal(a.status, 200);
	j = answer_json(&a);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
	assert_true(json_is_string(json_object_get(j, "version")));
	json_decref(j);
	answer_fini(&a);
}

static void test_auth(void **state)
{
	static const char *const bad[] = {
		NULL, "", "wrong", TOKEN "x", "test-token-0123456789abcdeX",
	};
	struct answer a;
	char v[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		http_get("/api/v1/events", bad[i], &a);
		assert_json_error(&a, 401, NULL);
		assert_non_null(head_value(&a, "WWW-Authenticate", v, sizeof(v)));
		assert_int_equal(strncmp(v, "Bearer", 6), 0);
		answer_fini(&a);
	}
	/* A Basic scheme is not a bearer token. */
	http_raw("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
		 TOKEN "\r\nConnection: close\r\n\r\n", strlen("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
		 TOKEN "\r\nConnection: close\r\n\r\n"), &a);
	assert_int_equal(a.status, 401);
	answer_fini(&a);
	/* The scheme is case-insensitive; both configured tokens work. */
	http_raw("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: bearer "
		 TOKEN "\r\nConnection: close\r\n\r\n", strlen("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: bearer "
		 TOKEN "\r\nConnection: close\r\n\r\n"), &a);
	assert_int_equal(a.status, 200);
	answer_fini(&a);
	http_get("/api/v1/events", "another-token-xxxxxxxx", &a);
	assert_int_equal(a.status, 200);
	answer_fini(&a);
	http_get("/metrics", NULL, &a);
	assert_json_error(&a, 401, NULL);
	answer_fini(&a);
}

static void test_events(void **state)
{
	struct answer a;
	json_t *j, *ev;
	char v[128];

	(void)state;
	http_get("/api/v1/events", TOKEN, &a);
	assert_int_equal(a.status, 200);
	assert_non_null(head_value(&a, "Cache-Control", v, sizeof(v)));
	assert_string_equal(v, "no-store");
	j = answer_json(&a);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), N_FAKE);
	assert_int_equal(json_integer_value(json_object_get(j, "limit")), 100);
	assert_int_equal(json_integer_value(json_object_get(j, "offset")), 0);
	assert_int_equal(json_array_size(json_object_get(j, "events")), N_FAKE);
	ev = json_array_get(json_object_get(j, "events"), 1);
	assert_string_equal(json_string_value(json_object_get(ev, "host.name")), "web2");
	json_decref(j);
	answer_fini(&a);
	/* defaults that reached the store */
	assert_int_equal(fake.last.limit, 100);
	assert_int_equal(fake.last.offset, 0);
	assert_int_equal(fake.last.ascending, 0);
	assert_null(fake.last.text);
	assert_int_equal(fake.last.n_filters, 0);

	http_get("/api/v1/events?limit=1&offset=2", TOKEN, &a);
	assert_int_equal(a.status, 200);
	j = answer_json(&a);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), N_FAKE);
	assert_int_equal(json_array_size(json_object_get(j, "events")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "offset")), 2);
	json_decref(j);
	answer_fini(&a);
}

static void test_events_query_mapping(void **state)
{
	struct answer a;

	(void)state;
	http_get("/api/v1/events?from=2024-05-01T12:00:00Z&to=1714568400000"
		 "&q=failed+password&host.name=web1&source.ip=10.0.%2A"
		 "&filter=custom.tag%3Aa%3Ab&limit=25&offset=50&order=asc", TOKEN, &a);
	assert_int_equal(a.status, 200);
	answer_fini(&a);
	assert_int_equal(fake.last.from_us, 1714564800000000LL);
	assert_int_equal(fake.last.to_us, 1714568400000000LL);
	assert_string_equal(fake.last_text, "failed password");
	assert_int_equal(fake.last.limit, 25);
	assert_int_equal(fake.last.offset, 50);
	assert_int_equal(fake.last.ascending, 1);
	assert_int_equal(fake.last.n_filters, 3);
	assert_string_equal(fake.last_names[0], "host.name");
	assert_string_equal(fake.last_values[0], "web1");
	assert_string_equal(fake.last_names[1], "source.ip");
	assert_string_equal(fake.last_values[1], "10.0.*");
	assert_string_equal(fake.last_names[2], "custom.tag");
	assert_string_equal(fake.last_values[2], "a:b");
}

static void test_events_bad_params(void **state)
{
	static const struct { const char *target, *param; } cases[] = {
		{ "/api/v1/events?from=yesterday", "from" },
		{ "/api/v1/events?to=2024-99-01T00:00:00Z", "to" },
		{ "/api/v1/events?limit=5000", "limit" },
		{ "/api/v1/events?limit=0", "limit" },
		{ "/api/v1/events?offset=-1", "offset" },
		{ "/api/v1/events?order=up", "order" },
		{ "/api/v1/events?nosuchfield=1", "nosuchfield" },
		{ "/api/v1/events?filter=x", "filter" },
		{ "/api/v1/events?q=BAD(", "q" },
		{ "/api/v1/events?q=a&q=b", "q" },
		{ "/api/v1/events?host.name=a%00b", "host.name" },
	};
	struct answer a;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		http_get(cases[i].target, TOKEN, &a);
		assert_json_error(&a, 400, cases[i].param);
		answer_fini(&a);
	}
	http_get("/api/v1/events?q=BOOM", TOKEN, &a);
	assert_json_error(&a, 500, NULL);
	answer_fini(&a);
}

static void test_not_found_and_methods(void **state)
{
	static const char post[] =
		"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
		"Connection: close\r\n\r\n{}";
	static const char big[] =
		"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n"
		"Connection: close\r\n\r\n";
	struct answer a;
	char v[64];

	(void)state;
	http_get("/api/v1/nothing", TOKEN, &a);
	assert_json_error(&a, 404, NULL);
	answer_fini(&a);
	http_get("/no/such/page.html", NULL, &a);
	assert_json_error(&a, 404, NULL);
	answer_fini(&a);
	http_get("/../../etc/passwd", NULL, &a);
	assert_json_error(&a, 404, NULL);
	answer_fini(&a);
	http_raw(post, sizeof(post) - 1, &a);
	assert_json_error(&a, 405, NULL);
	assert_non_null(head_value(&a, "Allow", v, sizeof(v)));
	assert_string_equal(v, "GET, HEAD");
	answer_fini(&a);
	http_raw(big, sizeof(big) - 1, &a);
	assert_json_error(&a, 413, NULL);
	answer_fini(&a);
}

static void test_long_url(void **state)
{
	char *target = malloc(API_MAX_URL + 100);
	struct answer a;
	size_t n;

	(void)state;
	assert_non_null(target);
	n = (size_t)snprintf(target, API_MAX_URL + 100, "/api/v1/events?q=");
	memset(target + n, 'a', API_MAX_URL + 50 - n);
	target[API_MAX_URL + 50] = '\0';
	http_get(target, TOKEN, &a);
	assert_json_error(&a, 414, NULL);
	answer_fini(&a);
	free(target);
}

static void test_head(void **state)
{
	static const char head[] =
		"HEAD /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct answer a;
	char v[64];

	(void)state;
	http_raw(head, sizeof(head) - 1, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(a.body.len, 0);
	assert_non_null(head_value(&a, "Content-Type", v, sizeof(v)));
	answer_fini(&a);
}

static void test_static(void **state)
{
	struct answer a;
	char v[256];

	(void)state;
	http_get("/", NULL, &a);
	assert_int_equal(a.status, 200);
	assert_non_null(head_value(&a, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "text/html; charset=utf-8");
	assert_non_null(head_value(&a, "Content-Security-Policy", v, sizeof(v)));
	assert_non_null(strstr(a.body.p, "<!doctype html>"));
	assert_non_null(strstr(a.body.p, "mamori"));
	answer_fini(&a);
	http_get("/index.html", NULL, &a);
	assert_int_equal(a.status, 200);
	answer_fini(&a);
}

static void test_static_assets(void **state)
{
	static const struct { const char *path, *type, *needle; } cases[] = {
		{ "/app.js", "text/javascript; charset=utf-8", "/api/v1/events" },
		{ "/style.css", "text/css; charset=utf-8", "--accent" },
	};
	struct answer a;
	char v[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		http_get(cases[i].path, NULL, &a);
		assert_int_equal(a.status, 200);
		assert_non_null(head_value(&a, "Content-Type", v, sizeof(v)));
		assert_string_equal(v, cases[i].type);
		assert_non_null(strstr(a.body.p, cases[i].needle));
		answer_fini(&a);
	}
}

/* A request bigger than the connection's memory is refused by
 * libmicrohttpd itself; what matters is that nothing leaks or hangs. */
static void test_huge_request(void **state)
{
	size_t n = 48 << 10;
	char *req = malloc(n + 64);
	struct answer a;

	(void)state;
	assert_non_null(req);
	memcpy(req, "GET /api/v1/health?", 19);
	memset(req + 19, 'a', n - 19);
	memcpy(req + n, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 42);
	http_raw(req, n + 42, &a);
	assert_true(a.status == 414 || a.status == 431 || a.status == 400);
	answer_fini(&a);
	free(req);
	/* the server still answers */
	http_get("/api/v1/health", NULL, &a);
	assert_int_equal(a.status, 200);
	answer_fini(&a);
}

/* web_root: files from a directory, nothing outside it, no symlinks, no
 * hidden files. */
static void test_web_root(void **state)
{
	static char *tok[] = { TOKEN };
	char dir[] = "/tmp/mamori-api-webXXXXXX", path[256];
	struct api_config cfg = {
		.listen = "127.0.0.1:0", .tokens = { tok, 1 }, .threads = 1,
		.web_root = dir, .max_connections = 8, .timeout = 5,
	};
	struct api *b = NULL;
	int saved_port = port;
	struct answer a;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/index.html", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("<!doctype html><p>from disk</p>", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/.secret.txt", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("hidden", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/passwd.txt", dir);
	assert_int_equal(symlink("/etc/passwd", path), 0);

	assert_int_equal(api_start(&cfg, &fake.base, &b), 0);
	port = api_port(b);
	http_get("/", NULL, &a);
	assert_int_equal(a.status, 200);
	assert_non_null(strstr(a.body.p, "from disk"));
	answer_fini(&a);
	http_get("/.secret.txt", NULL, &a);
	assert_int_equal(a.status, 404);
	answer_fini(&a);
	http_get("/passwd.txt", NULL, &a);
	assert_int_equal(a.status, 404);
	answer_fini(&a);
	http_get("/a/../index.html", NULL, &a);
	assert_int_equal(a.status, 404);
	answer_fini(&a);
	api_stop(b);
	port = saved_port;

	unlink(path);
	snprintf(path, sizeof(path), "%s/.secret.txt", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/index.html", dir);
	unlink(path);
	rmdir(dir);
}

static void test_metrics(void **state)
{
	struct answer a;
	char v[128];

	(void)state;
	http_get("/api/v1/health", NULL, &a);
	answer_fini(&a);
	http_get("/api/v1/events?limit=nope", TOKEN, &a);
	answer_fini(&a);
	http_get("/metrics", TOKEN, &a);
	assert_int_equal(a.status, 200);
	assert_non_null(head_value(&a, "Content-Type", v, sizeof(v)));
	assert_int_equal(strncmp(v, "text/plain", 10), 0);
	assert_non_null(strstr(a.body.p, "# TYPE mamori_api_requests_total counter"));
	assert_non_null(strstr(a.body.p,
		"mamori_api_requests_total{route=\"/api/v1/health\",code=\"200\"}"));
	assert_non_null(strstr(a.body.p,
		"mamori_api_requests_total{route=\"/api/v1/events\",code=\"400\"}"));
	assert_non_null(strstr(a.body.p,
		"mamori_api_requests_total{route=\"/api/v1/events\",code=\"401\"}"));
	assert_non_null(strstr(a.body.p,
		"mamori_api_request_duration_seconds_bucket{route=\"/api/v1/health\",le="));
	assert_non_null(strstr(a.body.p, "mamori_api_auth_failures_total"));
	answer_fini(&a);
}

static void test_start_errors(void **state)
{
	static char *tok[] = { TOKEN };
	struct api_config cfg = {
		.listen = "127.0.0.1:0", .tokens = { tok, 1 }, .threads = 1,
		.web_root = "", .max_connections = 8, .timeout = 5,
	};
	char listen[32];
	struct api *b = NULL;

	(void)state;
	cfg.tokens.n = 0;
	assert_int_equal(api_start(&cfg, &fake.base, &b), M_EINVAL);
	assert_null(b);
	cfg.tokens.n = 1;
	cfg.listen = "nonsense";
	assert_int_equal(api_start(&cfg, &fake.base, &b), M_EINVAL);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	cfg.listen = listen;   /* taken by the test server */
	assert_int_equal(api_start(&cfg, &fake.base, &b), M_EIO);
	cfg.listen = "127.0.0.1:0";
	cfg.web_root = "/nonexistent/dir";
	assert_int_equal(api_start(&cfg, &fake.base, &b), M_EINVAL);
	api_stop(NULL);
}

/* ---- the client -------------------------------------------------------- */

static void test_client_url(void **state)
{
	static const struct {
		const char *url;
		int rc;
		const char *host, *port, *base;
	} cases[] = {
		{ "http://127.0.0.1:8080", 0, "127.0.0.1", "8080", "" },
		{ "http://localhost", 0, "localhost", "80", "" },
		{ "http://[::1]:9000/mamori/", 0, "::1", "9000", "/mamori" },
		{ "HTTP://h:1/", 0, "h", "1", "" },
		{ "https://h", M_EUNSUPP, NULL, NULL, NULL },
		{ "ftp://h", M_EINVAL, NULL, NULL, NULL },
		{ "http://", M_EINVAL, NULL, NULL, NULL },
		{ "http://h:0", M_EINVAL, NULL, NULL, NULL },
		{ "http://h:65536", M_EINVAL, NULL, NULL, NULL },
		{ "http://h:8x", M_EINVAL, NULL, NULL, NULL },
		{ "http://u:p@h", M_EINVAL, NULL, NULL, NULL },
		{ "http://h/?q=1", M_EINVAL, NULL, NULL, NULL },
		{ "http://[::1", M_EINVAL, NULL, NULL, NULL },
	};
	struct buf err;

	(void)state;
	buf_init(&err, 4096);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cli_url u;
		int rc = cli_url_parse(cases[i].url, &u, &err);

		if (rc != cases[i].rc)
			fail_msg("case %zu (%s): rc %d", i, cases[i].url, rc);
		if (rc == 0) {
			assert_string_equal(u.host, cases[i].host);
			assert_string_equal(u.port, cases[i].port);
			assert_string_equal(u.base, cases[i].base);
		} else {
			assert_true(err.len > 0);
		}
	}
	buf_fini(&err);
}

static void test_client_print(void **state)
{
	static const char answer[] =
		"{\"total\":7,\"limit\":2,\"offset\":0,\"events\":["
		"{\"@timestamp\":\"2024-05-01T12:00:03.000Z\",\"host.name\":\"web1\","
		"\"event.dataset\":\"syslog\",\"message\":\"evil \\u001b[2J\\u009b1m line\\nnext\"},"
		"{\"@timestamp\":\"2024-05-01T12:00:02.000Z\",\"observer.hostname\":\"fw1\","
		"\"event.original\":\"h\\u00e9llo\"}]}";
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	(void)state;
	assert_non_null(f);
	assert_int_equal(cli_print_events(f, answer, sizeof(answer) - 1, 0), 0);
	fclose(f);
	assert_null(memchr(out, 0x1b, len));
	assert_null(strstr(out, "\xc2\x9b"));
	assert_non_null(strstr(out, "evil ?[2J?1m line next"));
	assert_non_null(strstr(out, "fw1"));
	assert_non_null(strstr(out, "h\xc3\xa9llo"));
	assert_non_null(strstr(out, "1-2 of 7 events"));
	free(out);

	f = open_memstream(&out, &len);
	assert_int_equal(cli_print_events(f, "[1,2]", 5, 0), M_EPARSE);
	assert_int_equal(cli_print_events(f, "{", 1, 0), M_EPARSE);
	fclose(f);
	free(out);
}

static void test_client_http(void **state)
{
	struct cli_url u;
	struct buf body, err;
	char url[64];
	int status = 0;

	(void)state;
	buf_init(&body, CLI_MAX_ANSWER);
	buf_init(&err, 4096);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	assert_int_equal(cli_url_parse(url, &u, &err), 0);
	assert_int_equal(cli_http_get(&u, "/api/v1/health", NULL, 5000, &status, &body, &err), 0);
	assert_int_equal(status, 200);
	assert_non_null(strstr(body.p, "\"status\":\"ok\""));
	assert_int_equal(cli_http_get(&u, "/api/v1/events?limit=2", TOKEN, 5000, &status, &body, &err), 0);
	assert_int_equal(status, 200);
	assert_non_null(strstr(body.p, "\"total\":3"));
	assert_int_equal(cli_http_get(&u, "/api/v1/events", "bad", 5000, &status, &body, &err), 0);
	assert_int_equal(status, 401);
	/* header injection through the token is refused */
	assert_int_equal(cli_http_get(&u, "/api/v1/events", "a\r\nX: y", 5000, &status, &body, &err),
			 M_EINVAL);
	buf_fini(&body);
	buf_fini(&err);
}

/* Runs `mamori events ...` with stdout and stderr captured. */
static int run_cli(char **argv, int argc, char **out, char **errout)
{
	FILE *fo = tmpfile(), *fe = tmpfile();
	int so = dup(STDOUT_FILENO), se = dup(STDERR_FILENO), rc;
	long n;

	assert_non_null(fo);
	assert_non_null(fe);
	fflush(stdout);
	fflush(stderr);
	dup2(fileno(fo), STDOUT_FILENO);
	dup2(fileno(fe), STDERR_FILENO);
	rc = cli_events_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, STDOUT_FILENO);
	dup2(se, STDERR_FILENO);
	close(so);
	close(se);
	for (int k = 0; k < 2; k++) {
		FILE *f = k ? fe : fo;
		char **dst = k ? errout : out;

		n = ftell(f);
		assert_true(n >= 0);
		*dst = calloc(1, (size_t)n + 1);
		assert_non_null(*dst);
		rewind(f);
		if (n > 0)
			assert_int_equal(fread(*dst, 1, (size_t)n, f), (size_t)n);
		fclose(f);
	}
	return rc;
}

static void test_client_main(void **state)
{
	char url[64], *out, *err;
	int rc;

	(void)state;
	unsetenv("MAMORI_API_TOKEN");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	{
		char *argv[] = { "events", "search", "--url", url, "--token", TOKEN,
				 "--json", "--limit", "2", "--from", "2024-05-01T00:00:00Z",
				 "--to=1h", "host.name=web*", "failed", "password", NULL };
		rc = run_cli(argv, 15, &out, &err);
		assert_int_equal(rc, 0);
		assert_non_null(strstr(out, "\"total\":3"));
		assert_string_equal(fake.last_text, "failed password");
		assert_int_equal(fake.last.limit, 2);
		assert_int_equal(fake.last.from_us, 1714521600000000LL);
		assert_true(fake.last.to_us > 1714521600000000LL);
		assert_int_equal(fake.last.n_filters, 1);
		assert_string_equal(fake.last_names[0], "host.name");
		assert_string_equal(fake.last_values[0], "web*");
		free(out);
		free(err);
	}
	{
		char *argv[] = { "events", "search", "--url", url, NULL };
		setenv("MAMORI_API_TOKEN", TOKEN, 1);
		rc = run_cli(argv, 4, &out, &err);
		unsetenv("MAMORI_API_TOKEN");
		assert_int_equal(rc, 0);
		assert_non_null(strstr(out, "TIME"));
		assert_non_null(strstr(out, "web2"));
		assert_non_null(strstr(out, "suricata.eve"));
		assert_non_null(strstr(out, "1-3 of 3 events"));
		assert_null(strchr(out, 0x1b));
		free(out);
		free(err);
	}
	{
		char *argv[] = { "events", "search", "--url", url, "--token", "wrong", NULL };
		rc = run_cli(argv, 6, &out, &err);
		assert_int_equal(rc, 1);
		assert_non_null(strstr(err, "401"));
		free(out);
		free(err);
	}
	{
		char *argv[] = { "events", "search", "--url", url, "--token", TOKEN,
				 "--from", "whenever", NULL };
		rc = run_cli(argv, 8, &out, &err);
		assert_int_equal(rc, 1);
		assert_non_null(strstr(err, "from"));
		free(out);
		free(err);
	}
	{
		/* a port nothing listens on: the test server's port + 1 may be
		 * taken, so use a socket bound and closed just now */
		char dead[64];
		struct sockaddr_in sin = { .sin_family = AF_INET };
		socklen_t sl = sizeof(sin);
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
		assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
		close(fd);
		snprintf(dead, sizeof(dead), "http://127.0.0.1:%u", ntohs(sin.sin_port));
		char *argv[] = { "events", "search", "--url", dead, "--token", TOKEN, NULL };
		rc = run_cli(argv, 6, &out, &err);
		assert_int_equal(rc, 1);
		assert_non_null(strstr(err, "cannot connect"));
		free(out);
		free(err);
	}
	{
		char *argv[] = { "events", "search", "--bogus", NULL };
		rc = run_cli(argv, 3, &out, &err);
		assert_int_equal(rc, 2);
		free(out);
		free(err);
	}
	{
		char *argv[] = { "events", "search", "--help", NULL };
		rc = run_cli(argv, 3, &out, &err);
		assert_int_equal(rc, 0);
		assert_non_null(strstr(out, "usage: mamori events search"));
		free(out);
		free(err);
	}
	{
		char *argv[] = { "events", "frobnicate", NULL };
		rc = run_cli(argv, 2, &out, &err);
		assert_int_equal(rc, 2);
		free(out);
		free(err);
	}
}

/* ---- over the real SQLite store ---------------------------------------- */

static char sq_dir[64];
static struct store *sq_store;

struct sq_row {
	int64_t sec;
	const char *host, *dataset, *message, *source_ip, *tag;
};

static const struct sq_row sq_rows[] = {
	{ 1714564801, "web1", "syslog", "Failed password for root from 10.0.0.5", "10.0.0.5", NULL },
	{ 1714564802, "web2", "syslog", "Accepted publickey for alice", NULL, NULL },
	{ 1714564803, "db1", "suricata.eve", "ET SCAN nmap probe", "10.0.9.9", NULL },
	{ 1714564804, "web1", "syslog", "session closed for user alice", NULL, "blue" },
	{ 1714564805, "web10", "syslog", "Failed password for invalid user admin", "192.0.2.7", NULL },
};
#define N_SQ (sizeof(sq_rows) / sizeof(sq_rows[0]))

static int setup_sqlite(void **state)
{
	static char *tokens[] = { TOKEN };
	struct api_config cfg = {
		.listen = "127.0.0.1:0", .tokens = { tokens, 1 }, .threads = 2,
		.web_root = "", .max_connections = 64, .timeout = 5,
	};
	const struct store_ops *ops = store_backend("sqlite");
	struct store_config sc = { .backend = "sqlite", .fts_batch = 1000 };
	struct event *evs;
	struct arena ar;
	int rc;

	(void)state;
	log_set_level(LOG_ERROR);
	snprintf(sq_dir, sizeof(sq_dir), "/tmp/mamori-api-sqXXXXXX");
	if (ops == NULL || mkdtemp(sq_dir) == NULL)
		return -1;
	sc.path = sq_dir;
	if (ops->open(&sc, &sq_store) != 0)
		return -1;
	evs = calloc(N_SQ, sizeof(*evs));
	if (evs == NULL)
		return -1;
	arena_init(&ar, 0, 0);
	for (size_t i = 0; i < N_SQ; i++) {
		struct event *ev = &evs[i];

		event_clear(ev);
		ev->id = 1000 + i;
		ev->ts_us = sq_rows[i].sec * 1000000;
		ev->recv_us = ev->ts_us;
		event_set(ev, F_HOST_NAME, str_cstr(sq_rows[i].host));
		event_set(ev, F_EVENT_DATASET, str_cstr(sq_rows[i].dataset));
		event_set(ev, F_MESSAGE, str_cstr(sq_rows[i].message));
		if (sq_rows[i].source_ip)
			event_set(ev, F_SOURCE_IP, str_cstr(sq_rows[i].source_ip));
		if (sq_rows[i].tag)
			event_set_name(ev, &ar, STR_LIT("custom.tag"),
				       str_cstr(sq_rows[i].tag), 0);
	}
	rc = sq_store->ops->write_batch(sq_store, 77, evs, N_SQ);
	if (rc == 0)   /* the same batch twice is stored once */
		rc = sq_store->ops->write_batch(sq_store, 77, evs, N_SQ);
	if (rc == 0)
		rc = sq_store->ops->flush(sq_store);
	arena_fini(&ar);
	free(evs);
	if (rc != 0)
		return -1;
	if (api_start(&cfg, sq_store, &api) != 0)
		return -1;
	port = api_port(api);
	return 0;
}

static int teardown_sqlite(void **state)
{
	char cmd[128];

	(void)state;
	api_stop(api);
	api = NULL;
	sq_store->ops->close(sq_store);
	metrics_fini();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sq_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* GET target and check the total and, in order, the hosts of the page. */
static void sq_expect(const char *target, long long total, const char *hosts)
{
	struct answer a;
	json_t *j, *ev;
	size_t i;
	char got[256] = "";
	size_t used = 0;

	http_get(target, TOKEN, &a);
	if (a.status != 200)
		fail_msg("%s: status %d: %s", target, a.status, a.body.p);
	j = answer_json(&a);
	if (json_integer_value(json_object_get(j, "total")) != total)
		fail_msg("%s: total %lld, expected %lld", target,
			 (long long)json_integer_value(json_object_get(j, "total")), total);
	json_array_foreach(json_object_get(j, "events"), i, ev) {
		const char *h = json_string_value(json_object_get(ev, "host.name"));

		assert_non_null(h);
		assert_non_null(json_object_get(ev, "@timestamp"));
		assert_non_null(json_object_get(ev, "message"));
		used += (size_t)snprintf(got + used, sizeof(got) - used, "%s%s",
					 i ? "," : "", h);
		assert_true(used < sizeof(got));
	}
	if (strcmp(got, hosts) != 0)
		fail_msg("%s: hosts %s, expected %s", target, got, hosts);
	json_decref(j);
	answer_fini(&a);
}

static void test_sqlite_search(void **state)
{
	(void)state;
	sq_expect("/api/v1/events", 5, "web10,web1,db1,web2,web1");
	sq_expect("/api/v1/events?order=asc", 5, "web1,web2,db1,web1,web10");
	sq_expect("/api/v1/events?limit=2&offset=1", 5, "web1,db1");
	sq_expect("/api/v1/events?offset=10", 5, "");
	sq_expect("/api/v1/events?q=password", 2, "web10,web1");
	sq_expect("/api/v1/events?q=alice&host.name=web2", 1, "web2");
	sq_expect("/api/v1/events?host.name=web1", 2, "web1,web1");
	sq_expect("/api/v1/events?host.name=web1*", 3, "web10,web1,web1");
	sq_expect("/api/v1/events?source.ip=10.0.*", 2, "db1,web1");
	sq_expect("/api/v1/events?filter=custom.tag:blue", 1, "web1");
	sq_expect("/api/v1/events?event.dataset=suricata.eve", 1, "db1");
	sq_expect("/api/v1/events?from=2024-05-01T12:00:02Z&to=1714564804000", 3, "web1,db1,web2");
	sq_expect("/api/v1/events?from=1714564806", 0, "");
}

/* Several clients at once: the pool threads share the store's readers. */
static void *sq_client(void *arg)
{
	const char *const targets[] = {
		"/api/v1/events?q=password", "/api/v1/events?host.name=web1*",
		"/api/v1/events?limit=1&offset=3", "/metrics", "/api/v1/health",
	};
	struct cli_url u;
	struct buf body, err;
	char url[64];
	intptr_t bad = 0;

	buf_init(&body, CLI_MAX_ANSWER);
	buf_init(&err, 4096);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	if (cli_url_parse(url, &u, &err) != 0)
		bad++;
	for (int i = 0; i < 40 && !bad; i++) {
		int status = 0;

		if (cli_http_get(&u, targets[(i + (intptr_t)arg) % 5], TOKEN, 10000,
				 &status, &body, &err) != 0 || status != 200)
			bad++;
	}
	buf_fini(&body);
	buf_fini(&err);
	return (void *)bad;
}

static void test_sqlite_concurrent(void **state)
{
	pthread_t th[6];

	(void)state;
	for (intptr_t i = 0; i < 6; i++)
		assert_int_equal(pthread_create(&th[i], NULL, sq_client, (void *)i), 0);
	for (int i = 0; i < 6; i++) {
		void *bad = NULL;

		assert_int_equal(pthread_join(th[i], &bad), 0);
		assert_null(bad);
	}
}

static void test_sqlite_bad_query(void **state)
{
	struct answer a;

	(void)state;
	http_get("/api/v1/events?q=%22unclosed", TOKEN, &a);
	assert_json_error(&a, 400, "q");
	answer_fini(&a);
	http_get("/api/v1/events?q=AND+OR", TOKEN, &a);
	assert_json_error(&a, 400, "q");
	answer_fini(&a);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_search_params),
		cmocka_unit_test(test_search_params_limits),
		cmocka_unit_test(test_client_url),
		cmocka_unit_test(test_client_print),
	};
	const struct CMUnitTest server[] = {
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_events_query_mapping),
		cmocka_unit_test(test_events_bad_params),
		cmocka_unit_test(test_not_found_and_methods),
		cmocka_unit_test(test_long_url),
		cmocka_unit_test(test_head),
		cmocka_unit_test(test_static),
		cmocka_unit_test(test_static_assets),
		cmocka_unit_test(test_huge_request),
		cmocka_unit_test(test_web_root),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_start_errors),
		cmocka_unit_test(test_client_http),
		cmocka_unit_test(test_client_main),
	};
	int failed = cmocka_run_group_tests_name("api_pure", pure, NULL, NULL);

	const struct CMUnitTest sqlite[] = {
		cmocka_unit_test(test_sqlite_search),
		cmocka_unit_test(test_sqlite_bad_query),
		cmocka_unit_test(test_sqlite_concurrent),
	};

	failed += cmocka_run_group_tests_name("api_server", server, setup_server,
					      teardown_server);
	failed += cmocka_run_group_tests_name("api_sqlite", sqlite, setup_sqlite,
					      teardown_sqlite);
	return failed;
}
