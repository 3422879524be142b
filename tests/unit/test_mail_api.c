/*
 * The mail quarantine routes, end to end: the real HTTP server on
 * 127.0.0.1 with an ephemeral port, a real quarantine in a temporary
 * directory, an SMTP sink on a loopback thread for releases, and libcurl
 * as the client. Status codes, content types, the token-only hold links,
 * and what each answer holds; the route table is checked as a pure
 * function first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "api/api.h"
#include "api/api_mail.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "mail/quarantine.h"
#include "store/store.h"
#include "quarantine_test.h"

#define TOKEN "mail-api-test-token-0123456789"

/* The API needs a store; these routes never search it. */
static int no_search(struct store *s, const struct store_query *q, struct buf *out,
		     uint64_t *total)
{
	(void)s;
	(void)q;
	*total = 0;
	return buf_puts(out, "[]");
}

static const struct store_ops no_ops = { .name = "none", .search = no_search };
static struct store no_store = { .ops = &no_ops };

struct fx {
	char dir[64], qdir[96];   /* the test's directory; the quarantine in it */
	struct quarantine *q;
	struct smtp_sink sink;
	char addr[64];
	struct api *api;
	int port;
};

static void configure(struct fx *f, const char *addr)
{
	struct quarantine_config cfg = { 0 };

	cfg.reinject = (char *)addr;
	cfg.timeout = 10;
	cfg.hold = -1;
	assert_int_equal(quarantine_configure(f->q, &cfg), 0);
}

static int setup(void **state)
{
	static char *tokens[] = { TOKEN };
	struct api_config cfg = {
		.listen = "127.0.0.1:0", .tokens = { tokens, 1 }, .threads = 2, .web_root = "",
		.max_connections = 64, .timeout = 5,
	};
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	qdir_make(f->dir, sizeof(f->dir));
	snprintf(f->qdir, sizeof(f->qdir), "%s/quarantine", f->dir);
	f->q = quarantine_open(f->qdir, NULL, err, sizeof(err));
	if (!f->q)
		fail_msg("%s", err);
	assert_int_equal(sink_start(&f->sink), 0);
	sink_addr(&f->sink, f->addr, sizeof(f->addr));
	configure(f, f->addr);
	assert_int_equal(api_start(&cfg, &no_store, &f->api), 0);
	api_set_mail(f->api, f->q);
	f->port = api_port(f->api);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	api_set_mail(f->api, NULL);
	api_stop(f->api);
	quarantine_close(f->q);
	sink_stop(&f->sink);
	qdir_remove(f->dir);
	free(f);
	return 0;
}

/* ---- a libcurl client ---- */

struct resp {
	long status;
	char ctype[128], allow[64];
	struct buf body;
	json_t *j;           /* the body, when it is JSON */
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	return buf_append(arg, p, size * n) == 0 ? size * n : 0;
}

static void header_copy(const char *p, size_t n, const char *name, char *out, size_t outsz)
{
	size_t nl = strlen(name);

	if (n <= nl + 1 || strncasecmp(p, name, nl) != 0 || p[nl] != ':')
		return;
	p += nl + 1;
	n -= nl + 1;
	while (n && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
	}
	while (n && (p[n - 1] == '\r' || p[n - 1] == '\n'))
		n--;
	snprintf(out, outsz, "%.*s", (int)n, p);
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct resp *r = arg;

	header_copy(p, size * n, "Content-Type", r->ctype, sizeof(r->ctype));
	header_copy(p, size * n, "Allow", r->allow, sizeof(r->allow));
	return size * n;
}

static const char *post_body = "";   /* what a POST sends */

/* One request; the answer in *r (resp_fini after). */
static void http(struct fx *f, const char *method, const char *target, int auth, struct resp *r)
{
	struct curl_slist *h = NULL;
	char url[1024];
	CURL *c = curl_easy_init();

	memset(r, 0, sizeof(*r));
	buf_init(&r->body, 64 << 20);
	assert_non_null(c);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", f->port, target);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(post_body));
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	if (auth) {
		h = curl_slist_append(h, "Authorization: Bearer " TOKEN);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	}
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	assert_int_equal(buf_cstr(&r->body), 0);
	if (strcmp(r->ctype, "application/json") == 0)
		r->j = json_loadb(r->body.p, r->body.len, 0, NULL);
}

static void resp_fini(struct resp *r)
{
	json_decref(r->j);
	buf_fini(&r->body);
}

/* The request must answer want; JSON errors carry error and detail, and
 * the parameter at fault when param is given. */
static void expect(struct fx *f, const char *method, const char *target, int auth, long want,
		   const char *param)
{
	struct resp r;

	http(f, method, target, auth, &r);
	if (r.status != want)
		fail_msg("%s %s: %ld (want %ld): %s", method, target, r.status, want, r.body.p);
	if (want >= 400) {
		assert_non_null(r.j);
		assert_true(json_is_string(json_object_get(r.j, "error")));
		assert_true(json_is_string(json_object_get(r.j, "detail")));
		if (param)
			assert_string_equal(json_string_value(json_object_get(r.j, "parameter")), param);
	}
	resp_fini(&r);
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static enum quarantine_state state_of(struct fx *f, const char *id)
{
	struct quarantine_meta m;
	enum quarantine_state s;

	assert_int_equal(quarantine_get(f->q, id, &m, NULL, NULL), 0);
	s = m.state;
	quarantine_meta_fini(&m);
	return s;
}

/* ---- routes as a table ---- */

static void test_routes(void **state)
{
	static const struct {
		const char *path;
		enum api_mail_route r;
		int id_ok;
		enum quarantine_action act;
	} t[] = {
		{ "/api/v1/mail/quarantine", API_MAIL_LIST, 0, 0 },
		{ "/api/v1/mail/quarantine/0123456789abcdef0123456789abcdef", API_MAIL_ITEM, 1, 0 },
		{ "/api/v1/mail/quarantine/0123456789abcdef0123456789abcdef/release", API_MAIL_RELEASE, 1, 0 },
		{ "/api/v1/mail/quarantine/xyz", API_MAIL_ITEM, 0, 0 },
		{ "/api/v1/mail/quarantine/xyz/release", API_MAIL_RELEASE, 0, 0 },
		{ "/api/v1/mail/quarantine/0123456789abcdef0123456789abcdef/delete", API_MAIL_NONE, 0, 0 },
		{ "/api/v1/mail/quarantine/", API_MAIL_NONE, 0, 0 },
		{ "/api/v1/mail/quarantines", API_MAIL_NONE, 0, 0 },
		{ "/api/v1/mail/hold/0123456789abcdef0123456789abcdef/cancel", API_MAIL_HOLD, 1, QUARANTINE_ACT_CANCEL },
		{ "/api/v1/mail/hold/0123456789abcdef0123456789abcdef/send-now", API_MAIL_HOLD, 1, QUARANTINE_ACT_SEND_NOW },
		{ "/api/v1/mail/hold/0123/cancel", API_MAIL_HOLD, 0, QUARANTINE_ACT_CANCEL },
		{ "/api/v1/mail/hold/0123456789abcdef0123456789abcdef/release", API_MAIL_NONE, 0, 0 },
		{ "/api/v1/mail/hold/0123456789abcdef0123456789abcdef", API_MAIL_NONE, 0, 0 },
		{ "/api/v1/mail", API_MAIL_NONE, 0, 0 },
		{ "/api/v1/ddos/attacks", API_MAIL_NONE, 0, 0 },
	};
	struct api_mail_target tg;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (api_mail_match(t[i].path, &tg) != t[i].r || (tg.id[0] != 0) != t[i].id_ok ||
		    (t[i].r == API_MAIL_HOLD && tg.act != t[i].act))
			fail_msg("case %zu: %s", i, t[i].path);
	}
	assert_true(api_mail_method_ok(API_MAIL_LIST, "GET"));
	assert_false(api_mail_method_ok(API_MAIL_LIST, "POST"));
	assert_true(api_mail_method_ok(API_MAIL_ITEM, "DELETE"));
	assert_false(api_mail_method_ok(API_MAIL_ITEM, "POST"));
	assert_true(api_mail_method_ok(API_MAIL_RELEASE, "POST"));
	assert_false(api_mail_method_ok(API_MAIL_RELEASE, "GET"));
	assert_true(api_mail_method_ok(API_MAIL_HOLD, "POST"));
	assert_true(api_mail_method_ok(API_MAIL_HOLD, "HEAD"));
	assert_false(api_mail_method_ok(API_MAIL_HOLD, "DELETE"));
	assert_string_equal(api_mail_allow(API_MAIL_ITEM), "GET, HEAD, DELETE");
	assert_true(api_mail_public(API_MAIL_HOLD));
	assert_false(api_mail_public(API_MAIL_RELEASE));
	assert_false(api_mail_public(API_MAIL_LIST));
}

/* ---- over HTTP ---- */

static void test_auth(void **state)
{
	struct fx *f = *state;

	expect(f, "GET", "/api/v1/mail/quarantine", 0, 401, NULL);
	expect(f, "POST", "/api/v1/mail/quarantine/0123456789abcdef0123456789abcdef/release", 0, 401,
	       NULL);
	expect(f, "DELETE", "/api/v1/mail/quarantine/0123456789abcdef0123456789abcdef", 0, 401, NULL);
	expect(f, "GET", "/api/v1/mail/quarantine", 1, 200, NULL);
	/* The hold links need no bearer token, only their own. */
	expect(f, "GET", "/api/v1/mail/hold/0123456789abcdef0123456789abcdef/cancel?token=x", 0, 403,
	       "token");
	expect(f, "PUT", "/api/v1/mail/quarantine", 1, 405, NULL);
}

static void test_list(void **state)
{
	struct fx *f = *state;
	char *r1[] = { "bob@example.net" }, *r2[] = { "carol@example.net" };
	char id[3][QUARANTINE_ID_LEN + 1];
	struct resp r;

	assert_int_equal(put_sample(f->q, "one", "alice@example.org", r1, 1, 0, 0, id[0]), 0);
	assert_int_equal(put_sample(f->q, "two", "mallory@evil.test", r2, 1, 0, 0, id[1]), 0);
	assert_int_equal(put_sample(f->q, "three", "alice@example.org", r2, 1, 1, 30, id[2]), 0);

	http(f, "GET", "/api/v1/mail/quarantine", 1, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(r.j);
	assert_int_equal(json_integer_value(json_object_get(r.j, "total")), 3);
	assert_string_equal(jstr(json_array_get(json_object_get(r.j, "messages"), 0), "id"), id[2]);
	resp_fini(&r);

	static const struct {
		const char *q;
		int total;
	} t[] = {
		{ "?state=held", 3 }, { "?state=released", 0 }, { "?direction=outbound", 1 },
		{ "?direction=inbound&sender=ALICE", 1 }, { "?recipient=carol", 2 },
		{ "?sender=alice&recipient=carol&state=held", 1 },
		{ "?since=2099-01-01T00:00:00Z", 0 }, { "?since=2020-01-01", 3 },
		{ "?sender=", 3 }, { "?limit=1&offset=2", 3 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char target[256];

		snprintf(target, sizeof(target), "/api/v1/mail/quarantine%s", t[i].q);
		http(f, "GET", target, 1, &r);
		if (r.status != 200 || !r.j ||
		    json_integer_value(json_object_get(r.j, "total")) != t[i].total)
			fail_msg("case %s: %ld %s", t[i].q, r.status, r.body.p);
		resp_fini(&r);
	}
	http(f, "GET", "/api/v1/mail/quarantine?limit=1&offset=2", 1, &r);
	assert_int_equal(json_array_size(json_object_get(r.j, "messages")), 1);
	assert_string_equal(jstr(json_array_get(json_object_get(r.j, "messages"), 0), "id"), id[0]);
	resp_fini(&r);

	expect(f, "GET", "/api/v1/mail/quarantine?state=bogus", 1, 400, "state");
	expect(f, "GET", "/api/v1/mail/quarantine?direction=sideways", 1, 400, "direction");
	expect(f, "GET", "/api/v1/mail/quarantine?limit=0", 1, 400, "limit");
	expect(f, "GET", "/api/v1/mail/quarantine?limit=1001", 1, 400, "limit");
	expect(f, "GET", "/api/v1/mail/quarantine?offset=-1", 1, 400, "offset");
	expect(f, "GET", "/api/v1/mail/quarantine?since=yesterday", 1, 400, "since");
	expect(f, "GET", "/api/v1/mail/quarantine?limit=1&limit=2", 1, 400, "limit");
	expect(f, "GET", "/api/v1/mail/quarantine?colour=red", 1, 400, "colour");
	expect(f, "GET", "/api/v1/mail/quarantine?raw=1", 1, 400, "raw");
	expect(f, "GET", "/api/v1/mail/quarantine?token=x", 1, 400, "token");
}

static void test_get(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net" };
	char id[QUARANTINE_ID_LEN + 1], target[128], *raw;
	struct quarantine_meta m;
	struct resp r;
	size_t len;
	json_t *h;

	assert_int_equal(put_sample(f->q, "look at me", "alice@example.org", rcpt, 1, 0, 0, id), 0);
	snprintf(target, sizeof(target), "/api/v1/mail/quarantine/%s", id);
	http(f, "GET", target, 1, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(r.j);
	assert_string_equal(jstr(r.j, "subject"), "look at me");
	assert_string_equal(jstr(r.j, "state"), "held");
	assert_string_equal(jstr(r.j, "from"), "Alice Example <alice@example.org>");
	h = json_object_get(r.j, "headers");
	assert_int_equal(json_array_size(h), 5);
	assert_string_equal(jstr(json_array_get(h, 0), "name"), "From");
	assert_null(json_object_get(r.j, "body"));
	assert_null(strstr(r.body.p, "Hello Bob"));   /* headers only */
	assert_string_equal(jstr(json_array_get(json_object_get(r.j, "history"), 0), "action"), "held");
	resp_fini(&r);

	snprintf(target, sizeof(target), "/api/v1/mail/quarantine/%s?raw=1", id);
	http(f, "GET", target, 1, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "message/rfc822");
	assert_int_equal(quarantine_get(f->q, id, &m, &raw, &len), 0);
	assert_int_equal(r.body.len, len);
	assert_memory_equal(r.body.p, raw, len);
	free(raw);
	quarantine_meta_fini(&m);
	resp_fini(&r);

	snprintf(target, sizeof(target), "/api/v1/mail/quarantine/%s", id);
	expect(f, "HEAD", target, 1, 200, NULL);
	snprintf(target, sizeof(target), "/api/v1/mail/quarantine/%s?raw=maybe", id);
	expect(f, "GET", target, 1, 400, "raw");
	expect(f, "GET", "/api/v1/mail/quarantine/0123456789abcdef0123456789abcdef", 1, 404, NULL);
	expect(f, "GET", "/api/v1/mail/quarantine/..%2F..%2Fetc%2Fpasswd", 1, 404, NULL);
	expect(f, "GET", "/api/v1/mail/quarantine/ABC", 1, 404, NULL);
}

static void test_release_delete(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net", "refuse@example.net" };
	char id[QUARANTINE_ID_LEN + 1], id2[QUARANTINE_ID_LEN + 1], id3[QUARANTINE_ID_LEN + 1];
	char target[160], addr[64];
	struct resp r;
	json_t *e;

	assert_int_equal(put_sample(f->q, "free me", "alice@example.org", rcpt, 2, 0, 0, id), 0);
	snprintf(target, sizeof(target), "/api/v1/mail/quarantine/%s/release?by=alice", id);
	expect(f, "GET", target, 1, 405, NULL);
	http(f, "POST", target, 1, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(r.j);
	assert_string_equal(jstr(r.j, "state"), "released");
	assert_int_equal(json_integer_value(json_object_get(r.j, "accepted")), 1);
	assert_int_equal(json_integer_value(json_object_get(r.j, "refused")), 1);
	assert_non_null(strstr(jstr(r.j, "detail"), "refuse@example.net"));
	resp_fini(&r);
	assert_int_equal(f->sink.messages, 1);
	assert_int_equal(state_of(f, id), QUARANTINE_RELEASED);
	assert_int_equal(quarantine_entry_json(f->q, id, 0, &e), 0);
	assert_string_equal(jstr(json_array_get(json_object_get(e, "history"), 1), "by"), "api:alice");
	json_decref(e);
	expect(f, "POST", target, 1, 409, NULL);
	snprintf(target, sizeof(target), "/api/v1/mail/quarantine/%s", id);
	expect(f, "DELETE", target, 1, 409, NULL);
	snprintf(target, sizeof(target), "/api/v1/mail/quarantine/%s?raw=1", id);
	expect(f, "GET", target, 1, 404, NULL);   /* released: no longer stored */

	/* The MTA is down: 502, and the message stays held. */
	assert_int_equal(put_sample(f->q, "stuck", "alice@example.org", rcpt, 1, 0, 0, id2), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", closed_port());
	configure(f, addr);
	snprintf(target, sizeof(target), "/api/v1/mail/quarantine/%s/release", id2);
	http(f, "POST", target, 1, &r);
	assert_int_equal(r.status, 502);
	assert_non_null(r.j);
	assert_non_null(strstr(jstr(r.j, "detail"), addr));
	resp_fini(&r);
	assert_int_equal(state_of(f, id2), QUARANTINE_HELD);
	configure(f, "");
	expect(f, "POST", target, 1, 503, NULL);
	configure(f, f->addr);

	/* A client that sends an empty JSON object with the POST is fine. */
	assert_int_equal(put_sample(f->q, "with a body", "alice@example.org", rcpt, 1, 0, 0, id3), 0);
	post_body = "{}";
	snprintf(target, sizeof(target), "/api/v1/mail/quarantine/%s/release", id3);
	http(f, "POST", target, 1, &r);
	post_body = "";
	assert_int_equal(r.status, 200);
	resp_fini(&r);
	assert_int_equal(state_of(f, id3), QUARANTINE_RELEASED);
	snprintf(target, sizeof(target), "/api/v1/mail/quarantine/%s?by=carol", id2);
	http(f, "DELETE", target, 1, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.j, "state"), "deleted");
	resp_fini(&r);
	assert_int_equal(state_of(f, id2), QUARANTINE_DELETED);
	expect(f, "DELETE", target, 1, 409, NULL);
	expect(f, "DELETE", "/api/v1/mail/quarantine/0123456789abcdef0123456789abcdef", 1, 404, NULL);
	expect(f, "POST", "/api/v1/mail/quarantine/0123456789abcdef0123456789abcdef/release", 1, 404,
	       NULL);
	snprintf(target, sizeof(target), "/api/v1/mail/quarantine/%s?by=%s", id2,
		 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	expect(f, "DELETE", target, 1, 400, "by");
}

static void test_hold_links(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net" };
	char a[QUARANTINE_ID_LEN + 1], b[QUARANTINE_ID_LEN + 1], c[QUARANTINE_ID_LEN + 1];
	char tok[QUARANTINE_TOKEN_LEN + 1], stok[QUARANTINE_TOKEN_LEN + 1], target[256], set[64];
	struct resp r;

	assert_int_equal(put_sample(f->q, "hold a", "alice@example.org", rcpt, 1, 1, 15, a), 0);
	assert_int_equal(put_sample(f->q, "hold b", "alice@example.org", rcpt, 1, 1, 15, b), 0);
	assert_int_equal(put_sample(f->q, "hold c", "alice@example.org", rcpt, 1, 1, 15, c), 0);

	/* GET asks; it never acts (link scanners open links). */
	assert_int_equal(quarantine_token(f->q, a, QUARANTINE_ACT_CANCEL, tok), 0);
	snprintf(target, sizeof(target), "/api/v1/mail/hold/%s/cancel?token=%s", a, tok);
	http(f, "GET", target, 0, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "text/html; charset=utf-8");
	assert_non_null(strstr(r.body.p, "<form method=\"post\">"));
	resp_fini(&r);
	assert_int_equal(state_of(f, a), QUARANTINE_HELD);
	/* POST acts. */
	http(f, "POST", target, 0, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body.p, "cancelled"));
	resp_fini(&r);
	assert_int_equal(state_of(f, a), QUARANTINE_DELETED);
	expect(f, "POST", target, 0, 409, NULL);
	expect(f, "DELETE", target, 0, 405, NULL);

	/* Send now, with the right token for that action only. */
	assert_int_equal(quarantine_token(f->q, b, QUARANTINE_ACT_CANCEL, tok), 0);
	assert_int_equal(quarantine_token(f->q, b, QUARANTINE_ACT_SEND_NOW, stok), 0);
	snprintf(target, sizeof(target), "/api/v1/mail/hold/%s/send-now?token=%s", b, tok);
	expect(f, "POST", target, 0, 403, "token");
	snprintf(target, sizeof(target), "/api/v1/mail/hold/%s/send-now?token=%s", b, stok);
	http(f, "POST", target, 0, &r);
	assert_int_equal(r.status, 200);
	resp_fini(&r);
	assert_int_equal(state_of(f, b), QUARANTINE_SENT);
	assert_int_equal(f->sink.messages, 1);

	/* Bad, missing, unknown, malformed. */
	snprintf(target, sizeof(target), "/api/v1/mail/hold/%s/cancel?token=%s", c, stok);
	expect(f, "POST", target, 0, 403, "token");
	snprintf(target, sizeof(target), "/api/v1/mail/hold/%s/cancel", c);
	expect(f, "POST", target, 0, 403, "token");
	snprintf(target, sizeof(target), "/api/v1/mail/hold/%s/cancel?token=a&token=b", c);
	expect(f, "POST", target, 0, 400, "token");
	snprintf(target, sizeof(target), "/api/v1/mail/hold/%s/cancel?token=%s", "0123456789abcdef0123456789abcdef", stok);
	expect(f, "GET", target, 0, 403, "token");
	expect(f, "GET", "/api/v1/mail/hold/nothex/cancel?token=abc", 0, 403, "token");
	assert_int_equal(state_of(f, c), QUARANTINE_HELD);

	/* A genuine link to a hold that has passed. */
	snprintf(set, sizeof(set), "expires_at = %lld", (long long)time(NULL) - 60);
	assert_int_equal(qdb_poke(f->dir, c, set), 0);
	assert_int_equal(quarantine_token(f->q, c, QUARANTINE_ACT_CANCEL, tok), 0);
	snprintf(target, sizeof(target), "/api/v1/mail/hold/%s/cancel?token=%s", c, tok);
	expect(f, "POST", target, 0, 410, NULL);
	assert_int_equal(state_of(f, c), QUARANTINE_HELD);
}

static void test_unavailable(void **state)
{
	struct fx *f = *state;

	api_set_mail(f->api, NULL);
	expect(f, "GET", "/api/v1/mail/quarantine", 1, 503, NULL);
	expect(f, "GET", "/api/v1/mail/hold/0123456789abcdef0123456789abcdef/cancel?token=x", 0, 503,
	       NULL);
	api_set_mail(f->api, f->q);
	expect(f, "GET", "/api/v1/mail/quarantine", 1, 200, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),
		cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unavailable, setup, teardown),
	};
	int rc;

	log_set_level(LOG_FATAL);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests_name("mail_api", tests, NULL, NULL);
	metrics_fini();
	curl_global_cleanup();
	return rc;
}
