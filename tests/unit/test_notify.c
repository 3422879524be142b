/*
 * Unit tests of the notifier: the notify: configuration and its errors,
 * the e-mail message (headers, CRLF, no header injection, RFC 2047
 * subjects that decode back), the webhook shapes (generic and Slack), the
 * rate limiter and digest with an injected clock, the back-off schedule,
 * and real deliveries to a libmicrohttpd listener on 127.0.0.1: success,
 * a 500 then success (retried, counted), a 400 (not retried), a storm
 * becoming a few messages and one digest, and the drop counter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/metrics.h"
#include "detect/notify.h"

/* ---- helpers ---- */

static int load(const char *yaml, struct notify_config *cfg, struct buf *err)
{
	struct conf_doc doc = { 0 };
	int r;

	buf_reset(err);
	r = conf_parse("t.yaml", yaml, strlen(yaml), &doc, err);
	if (r == 0)
		r = notify_config_load(&doc, cfg, err);
	conf_doc_fini(&doc);
	buf_cstr(err);
	return r;
}

static uint64_t metric_now(const char *name, const char *labels)
{
	return metric_value(metric_get(name, "", METRIC_COUNTER, labels));
}

static struct notification sample(const char *title)
{
	struct notification n;

	memset(&n, 0, sizeof(n));
	n.kind = NOTIFY_INCIDENT_OPENED;
	n.severity = NOTIFY_SEV_HIGH;
	n.title = title;
	n.body = "Five failed logins then a success.\nSecond line.";
	n.fields[0] = (struct notify_field){ "incident_id", "42" };
	n.fields[1] = (struct notify_field){ "rule", "brute <force> & co" };
	n.nfields = 2;
	n.time_us = 1764106200123456LL;   /* 2025-11-25T21:30:00.123456Z, a Tuesday */
	return n;
}

/* ---- configuration ---- */

static const char good_yaml[] =
	"notify:\n"
	"  queue: 16\n"
	"  channels:\n"
	"    - name: soc-mail\n"
	"      type: smtp\n"
	"      url: smtp://127.0.0.1:2525\n"
	"      starttls: off\n"
	"      from: \"mamori <soc@example.org>\"\n"
	"      to: [a@example.org, \"B <b@example.org>\"]\n"
	"      min_severity: high\n"
	"      kinds: [incident_opened, incident_escalated]\n"
	"    - name: slack\n"
	"      type: webhook\n"
	"      url: https://hooks.example.org/x\n"
	"      format: slack\n"
	"      headers: [\"Authorization: Bearer t\"]\n"
	"      max_per_window: 3\n"
	"      window: 2m\n";

static void test_config_good(void **state)
{
	struct notify_config cfg;
	struct buf err;

	buf_init(&err, 4096);
	if (load(good_yaml, &cfg, &err) != 0)
		fail_msg("%s", err.p);
	assert_int_equal(cfg.queue, 16);
	assert_int_equal(cfg.nch, 2);
	assert_string_equal(cfg.ch[0].name, "soc-mail");
	assert_int_equal(cfg.ch[0].t, NOTIFY_SMTP);
	assert_int_equal(cfg.ch[0].tls, NOTIFY_TLS_OFF);
	assert_int_equal(cfg.ch[0].min_sev, NOTIFY_SEV_HIGH);
	assert_int_equal(cfg.ch[0].kinds_mask,
			 (1u << NOTIFY_INCIDENT_OPENED) | (1u << NOTIFY_INCIDENT_ESCALATED));
	assert_int_equal(cfg.ch[0].to.n, 2);
	assert_int_equal(cfg.ch[0].max_per_window, 5);
	assert_int_equal(cfg.ch[0].window, 60);
	assert_int_equal(cfg.ch[1].t, NOTIFY_WEBHOOK);
	assert_int_equal(cfg.ch[1].fmt, NOTIFY_FMT_SLACK);
	assert_int_equal(cfg.ch[1].window, 120);
	notify_config_free(&cfg);

	/* No section: defaults, no channel. */
	assert_int_equal(load("data_dir: /x\n", &cfg, &err), 0);
	assert_int_equal(cfg.nch, 0);
	assert_int_equal(cfg.queue, 1024);
	notify_config_free(&cfg);
	buf_fini(&err);
}

static void test_config_errors(void **state)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
		{ "notify:\n  channels:\n    - name: a\n      type: pager\n      url: x\n",
		  "t.yaml:3:7: notify.channels[0]: type 'pager'" },
		{ "notify:\n  channels:\n    - name: a\n      type: webhook\n      url: http://x\n      colour: red\n",
		  "t.yaml:6:7: unknown setting 'colour'" },
		{ "notify:\n  channels:\n    - name: a\n      type: smtp\n      url: smtp://x:25\n      from: a@b\n",
		  "to: at least one recipient" },
		{ "notify:\n  channels:\n    - name: a\n      type: smtp\n      url: http://x\n      from: a@b\n      to: [c@d]\n",
		  "url: expected smtp://" },
		{ "notify:\n  channels:\n    - name: a\n      type: webhook\n      url: http://x\n      headers: [\"NoColon\"]\n",
		  "headers: 'NoColon'" },
		{ "notify:\n  channels:\n    - name: a\n      type: webhook\n      url: http://x\n"
		  "    - name: a\n      type: webhook\n      url: http://y\n",
		  "t.yaml:6:7: notify.channels[1]: duplicate channel name 'a'" },
		{ "notify:\n  channels:\n    - name: \"a b\"\n      type: webhook\n      url: http://x\n",
		  "name is required" },
		{ "notify:\n  channels:\n    - name: a\n      type: webhook\n      url: http://x\n      max_per_window: 0\n",
		  "t.yaml:6:23: notify.channels[0].max_per_window out of range" },
		{ "notify:\n  channels:\n    - name: a\n      type: webhook\n      url: http://x\n      min_severity: urgent\n",
		  "min_severity 'urgent'" },
		{ "notify:\n  channels:\n    - name: a\n      type: webhook\n      url: http://x\n      kinds: [pager]\n",
		  "unknown kind 'pager'" },
		{ "notify:\n  channels:\n    - name: a\n      type: smtp\n      url: smtp://x\n      from: \"a@b\\r\\nBcc: e@f\"\n      to: [c@d]\n",
		  "line breaks are not allowed" },
		{ "notify:\n  channels:\n    - name: a\n      type: smtp\n      url: smtp://x\n      from: a@b\n      to: [c@d]\n"
		  "      starttls: optional\n      user: u\n      password: p\n",
		  "user/password need starttls: required" },
		{ "notify:\n  channels: 3\n", "t.yaml:2:13: notify.channels: expected a list" },
		{ "notify:\n  colour: red\n", "t.yaml:2:3: unknown setting 'colour' in section notify" },
	};
	struct buf err;

	buf_init(&err, 4096);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct notify_config cfg;
		int r = load(cases[i].yaml, &cfg, &err);
		if (r == 0 || !err.p || !strstr(err.p, cases[i].want))
			fail_msg("case %zu: r=%d err=%s want=%s", i, r, err.p ? err.p : "", cases[i].want);
		notify_config_free(&cfg);
	}
	buf_fini(&err);
}

/* ---- e-mail ---- */

static struct notify_channel_config mail_channel(void)
{
	static char *to[] = { "ops@test.local", "Zoë <z@test.local>" };
	struct notify_channel_config ch;

	memset(&ch, 0, sizeof(ch));
	ch.name = "m";
	ch.t = NOTIFY_SMTP;
	ch.from = "mamori <soc@example.org>";
	ch.to.v = to;
	ch.to.n = 2;
	ch.subject_prefix = "[mamori]";
	return ch;
}

/* Decodes every =?UTF-8?B?...?= word of a header value, joined. */
static void decode_words(const char *v, char *out, size_t outsz)
{
	size_t o = 0;
	const char *p = v;

	while ((p = strstr(p, "=?UTF-8?B?")) != NULL) {
		const char *s = p + 10, *e = strstr(s, "?=");
		unsigned char tmp[256];
		int n;
		assert_non_null(e);
		assert_true((size_t)(e - s) % 4 == 0 && e - s < 200);
		n = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)(e - s));
		assert_true(n >= 0);
		while (n > 0 && (e - s) >= 1 && e[-1] == '=' && tmp[n - 1] == 0) {
			n--;
			e--;
		}
		assert_true(o + (size_t)n < outsz);
		memcpy(out + o, tmp, (size_t)n);
		o += (size_t)n;
		p = strstr(p + 10, "?=") + 2;
	}
	out[o] = '\0';
}

/* The value of header name in msg (unfolded lines kept), into out. */
static int header(const char *msg, const char *name, char *out, size_t outsz)
{
	char pat[64];
	const char *p, *end;

	snprintf(pat, sizeof(pat), "\r\n%s: ", name);
	p = strstr(msg, pat);
	if (!p && strncmp(msg, pat + 2, strlen(pat + 2)) == 0)
		p = msg - 2;
	if (!p)
		return -1;
	p += strlen(pat);
	end = p;
	while ((end = strstr(end, "\r\n")) != NULL && end[2] == ' ')
		end += 2;
	if (!end || (size_t)(end - p) >= outsz)
		return -1;
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
	return 0;
}

static void test_email_format(void **state)
{
	struct notify_channel_config ch = mail_channel();
	struct notification n = sample("Brute force on host-7\r\nBcc: victim@evil.example");
	struct buf out;
	char v[1024];
	const char *body;

	buf_init(&out, 1 << 20);
	assert_int_equal(notify_format_email(&ch, &n, "<1.2@example.org>", &out), 0);
	buf_cstr(&out);
	/* Every line ends in CRLF; no bare LF or CR. */
	for (size_t i = 0; i < out.len; i++) {
		if (out.p[i] == '\n')
			assert_true(i > 0 && out.p[i - 1] == '\r');
		if (out.p[i] == '\r')
			assert_true(i + 1 < out.len && out.p[i + 1] == '\n');
	}
	assert_int_equal(header(out.p, "Date", v, sizeof(v)), 0);
	assert_string_equal(v, "Tue, 25 Nov 2025 21:30:00 +0000");
	assert_int_equal(header(out.p, "Message-ID", v, sizeof(v)), 0);
	assert_string_equal(v, "<1.2@example.org>");
	assert_int_equal(header(out.p, "From", v, sizeof(v)), 0);
	assert_string_equal(v, "mamori <soc@example.org>");
	assert_int_equal(header(out.p, "To", v, sizeof(v)), 0);
	assert_non_null(strstr(v, "<ops@test.local>"));
	assert_non_null(strstr(v, "=?UTF-8?B?"));   /* Zoë */
	assert_int_equal(header(out.p, "Subject", v, sizeof(v)), 0);
	/* The CRLF in the title became spaces: no header was injected. */
	assert_string_equal(v, "[mamori] [HIGH] Brute force on host-7  Bcc: victim@evil.example");
	assert_null(strstr(out.p, "\r\nBcc:"));
	assert_int_equal(header(out.p, "MIME-Version", v, sizeof(v)), 0);
	assert_string_equal(v, "1.0");
	assert_int_equal(header(out.p, "Content-Type", v, sizeof(v)), 0);
	assert_string_equal(v, "text/plain; charset=UTF-8");
	assert_int_equal(header(out.p, "Content-Transfer-Encoding", v, sizeof(v)), 0);
	assert_string_equal(v, "7bit");
	body = strstr(out.p, "\r\n\r\n");
	assert_non_null(body);
	assert_non_null(strstr(body, "Five failed logins then a success.\r\nSecond line.\r\n"));
	assert_non_null(strstr(body, "incident_id: 42\r\n"));
	assert_non_null(strstr(body, "kind: incident_opened\r\nseverity: high\r\n"));
	buf_fini(&out);

	/* A non-ASCII body travels in base64. */
	n.body = "Überlast auf 東京-edge";
	buf_init(&out, 1 << 20);
	assert_int_equal(notify_format_email(&ch, &n, "<1.2@example.org>", &out), 0);
	buf_cstr(&out);
	assert_int_equal(header(out.p, "Content-Transfer-Encoding", v, sizeof(v)), 0);
	assert_string_equal(v, "base64");
	buf_fini(&out);
}

static void test_rfc2047(void **state)
{
	static const char *const cases[] = {
		"Überlast",
		"Incident 東京: 攻撃を検知しました — ブルートフォース攻撃が継続中です、確認してください",
		"ascii only, nothing to encode",
		"bad \xff\xfe utf-8 \xe2\x82",
		"emoji 🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨 end",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf out;
		char dec[2048];
		const char *line;
		size_t used = 9;

		buf_init(&out, 1 << 16);
		assert_int_equal(notify_rfc2047(cases[i], strlen(cases[i]), 9, &out), 0);
		buf_cstr(&out);
		if (i == 2) {
			assert_string_equal(out.p, cases[i]);
			buf_fini(&out);
			continue;
		}
		assert_true(strncmp(out.p, "=?UTF-8?B?", 10) == 0);
		/* Lines stay within 76 characters, "Subject: " included. */
		line = out.p;
		for (;;) {
			const char *e = strstr(line, "\r\n");
			size_t len = e ? (size_t)(e - line) : strlen(line);
			assert_true(len + used <= 76);
			if (!e)
				break;
			assert_int_equal(e[2], ' ');
			line = e + 2;
			used = 0;
		}
		decode_words(out.p, dec, sizeof(dec));
		if (i == 3)
			assert_string_equal(dec, "bad \xef\xbf\xbd\xef\xbf\xbd utf-8 \xef\xbf\xbd\xef\xbf\xbd");
		else
			assert_string_equal(dec, cases[i]);
		/* Each word holds whole characters: decode each one alone. */
		for (const char *p = out.p; (p = strstr(p, "=?UTF-8?B?")) != NULL; p += 10) {
			char one[256], w[256];
			const char *e = strstr(p, "?=");
			memcpy(w, p, (size_t)(e - p) + 2);
			w[e - p + 2] = '\0';
			decode_words(w, one, sizeof(one));
			assert_true(((unsigned char)one[0] & 0xc0) != 0x80);
		}
		buf_fini(&out);
	}
}

/* ---- webhook shapes ---- */

static void test_webhook_shapes(void **state)
{
	struct notify_channel_config ch;
	struct notification n = sample("Brute force \"quoted\" \xff");
	struct buf out;
	json_t *j, *f;
	json_error_t je;

	memset(&ch, 0, sizeof(ch));
	ch.fmt = NOTIFY_FMT_GENERIC;
	buf_init(&out, 1 << 20);
	assert_int_equal(notify_format_webhook(&ch, &n, &out), 0);
	j = json_loadb(out.p, out.len, 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "incident_opened");
	assert_string_equal(json_string_value(json_object_get(j, "severity")), "high");
	assert_string_equal(json_string_value(json_object_get(j, "time")), "2025-11-25T21:30:00.123Z");
	assert_string_equal(json_string_value(json_object_get(j, "title")),
			    "Brute force \"quoted\" \xef\xbf\xbd");
	f = json_object_get(j, "fields");
	assert_string_equal(json_string_value(json_object_get(f, "incident_id")), "42");
	assert_string_equal(json_string_value(json_object_get(f, "rule")), "brute <force> & co");
	json_decref(j);

	ch.fmt = NOTIFY_FMT_SLACK;
	buf_reset(&out);
	assert_int_equal(notify_format_webhook(&ch, &n, &out), 0);
	j = json_loadb(out.p, out.len, 0, &je);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 1);
	{
		const char *t = json_string_value(json_object_get(j, "text"));
		assert_non_null(t);
		assert_true(strncmp(t, "*[HIGH] Brute force \"quoted\"", 28) == 0);
		assert_non_null(strstr(t, "brute &lt;force&gt; &amp; co"));
		assert_non_null(strstr(t, "incident_id: 42"));
	}
	json_decref(j);
	buf_fini(&out);
}

/* The largest notification a caller can submit, made of the bytes that
 * expand most (invalid UTF-8, '<', line feeds), renders in every format
 * within the payload bound. */
static void test_worst_case_sizes(void **state)
{
	struct notify_channel_config ch = mail_channel();
	struct notification n = sample("t");
	static char body[NOTIFY_MAX_BODY + 1], key[129], val[1025];
	struct buf out;
	static const char pat[] = "\xff<\n&";

	for (size_t i = 0; i < NOTIFY_MAX_BODY; i++)
		body[i] = pat[i % 4];
	memset(key, '<', 128);
	memset(val, 0xfe, 1024);
	n.body = body;
	for (int i = 0; i < NOTIFY_MAX_FIELDS; i++)
		n.fields[i] = (struct notify_field){ key, val };
	n.nfields = NOTIFY_MAX_FIELDS;
	buf_init(&out, NOTIFY_MAX_PAYLOAD);
	assert_int_equal(notify_format_email(&ch, &n, "<1@x>", &out), 0);
	buf_reset(&out);
	ch.fmt = NOTIFY_FMT_GENERIC;
	assert_int_equal(notify_format_webhook(&ch, &n, &out), 0);
	buf_reset(&out);
	ch.fmt = NOTIFY_FMT_SLACK;
	assert_int_equal(notify_format_webhook(&ch, &n, &out), 0);
	buf_fini(&out);
}

/* ---- rate limit, digest, back-off ---- */

static void test_limiter(void **state)
{
	struct notify_limiter l;
	struct notification n = sample("t"), d;
	struct buf title, body;
	const int64_t s = 1000000, t0 = 1000 * s;
	char name[32];
	int sends = 0;

	buf_init(&title, 4096);
	buf_init(&body, 16384);
	notify_limiter_init(&l, 3, 60 * s);
	assert_int_equal(notify_limiter_deadline(&l), 0);
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "alert %d", i);
		n.title = name;
		n.severity = i == 7 ? NOTIFY_SEV_CRITICAL : NOTIFY_SEV_MEDIUM;
		if (notify_limiter_offer(&l, &n, t0 + i * s) == NOTIFY_LIMIT_SEND)
			sends++;
	}
	assert_int_equal(sends, 3);
	assert_int_equal(notify_limiter_deadline(&l), t0 + 60 * s);
	/* Nothing before the window ends. */
	assert_int_equal(notify_limiter_poll(&l, t0 + 59 * s, 0, &d, &title, &body), 0);
	assert_int_equal(notify_limiter_poll(&l, t0 + 60 * s, 0, &d, &title, &body), 1);
	assert_int_equal(d.kind, NOTIFY_DIGEST);
	assert_int_equal(d.severity, NOTIFY_SEV_CRITICAL);
	assert_non_null(strstr(d.title, "7 notifications held back"));
	assert_non_null(strstr(d.body, "critical: 1\n"));
	assert_non_null(strstr(d.body, "medium: 6\n"));
	assert_non_null(strstr(d.body, "  - alert 3\n"));
	assert_non_null(strstr(d.body, "  - alert 7\n"));
	assert_null(strstr(d.body, "alert 8"));   /* only the first five titles */
	/* Once only. */
	assert_int_equal(notify_limiter_poll(&l, t0 + 61 * s, 0, &d, &title, &body), 0);
	/* A new window opens with the next notification. */
	assert_int_equal(notify_limiter_offer(&l, &n, t0 + 100 * s), NOTIFY_LIMIT_SEND);
	assert_int_equal(notify_limiter_deadline(&l), t0 + 160 * s);
	/* A quiet window closes without a digest. */
	assert_int_equal(notify_limiter_poll(&l, t0 + 160 * s, 0, &d, &title, &body), 0);
	assert_int_equal(notify_limiter_deadline(&l), 0);
	/* force sends a waiting digest before the window ends. */
	for (int i = 0; i < 4; i++)
		notify_limiter_offer(&l, &n, t0 + 200 * s);
	assert_int_equal(notify_limiter_poll(&l, t0 + 201 * s, 1, &d, &title, &body), 1);
	assert_non_null(strstr(d.title, "1 notifications held back"));
	/* ...but the window stays open with its budget spent. */
	assert_int_equal(notify_limiter_deadline(&l), t0 + 260 * s);
	assert_int_equal(notify_limiter_offer(&l, &n, t0 + 202 * s), NOTIFY_LIMIT_DIGESTED);
	assert_int_equal(notify_limiter_poll(&l, t0 + 260 * s, 0, &d, &title, &body), 1);
	assert_int_equal(notify_limiter_offer(&l, &n, t0 + 261 * s), NOTIFY_LIMIT_SEND);
	buf_fini(&title);
	buf_fini(&body);
}

static void test_backoff(void **state)
{
	struct notify_channel_config ch;
	static const int64_t want[] = { 0, 0, 100, 200, 400, 800, 1000, 1000, 1000 };

	memset(&ch, 0, sizeof(ch));
	ch.retry_base_ms = 100;
	ch.retry_max_ms = 1000;
	for (int a = 1; a <= 8; a++)
		assert_int_equal(notify_backoff_ms(&ch, a), want[a]);
	ch.retry_base_ms = 1000;
	ch.retry_max_ms = 60000;
	assert_int_equal(notify_backoff_ms(&ch, 60), 60000);   /* no overflow */
}

/* ---- deliveries to a local listener ---- */

struct listener {
	struct MHD_Daemon *d;
	int port;
	pthread_mutex_t lock;
	int fail_first;          /* answer this many requests with fail_status */
	int fail_status;
	int requests;
	char bodies[64][2048];
	int nbodies;
	char auth[128];
};

struct upload {
	char body[8192];
	size_t len;
};

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version,
			       const char *data, size_t *size, void **ctx)
{
	struct listener *l = cls;
	struct upload *u = *ctx;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int status;
	const char *auth;

	if (!u) {
		u = calloc(1, sizeof(*u));
		if (!u)
			return MHD_NO;
		*ctx = u;
		return MHD_YES;
	}
	if (*size) {
		size_t k = *size < sizeof(u->body) - 1 - u->len ? *size : sizeof(u->body) - 1 - u->len;
		memcpy(u->body + u->len, data, k);
		u->len += k;
		*size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&l->lock);
	l->requests++;
	if (l->fail_first > 0) {
		l->fail_first--;
		status = l->fail_status;
	} else {
		status = 200;
		if (l->nbodies < 64)
			snprintf(l->bodies[l->nbodies++], sizeof(l->bodies[0]), "%.*s", (int)u->len, u->body);
	}
	auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	snprintf(l->auth, sizeof(l->auth), "%s", auth ? auth : "");
	pthread_mutex_unlock(&l->lock);
	resp = MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx,
		      enum MHD_RequestTerminationCode toe)
{
	free(*ctx);
	*ctx = NULL;
}

static void listener_start(struct listener *l)
{
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;

	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = 0;
	l->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
				handler, l, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
	assert_non_null(l->d);
	info = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_BIND_PORT);
	assert_non_null(info);
	l->port = info->port;
}

static void listener_stop(struct listener *l)
{
	MHD_stop_daemon(l->d);
	pthread_mutex_destroy(&l->lock);
}

static struct notifier *webhook_notifier(const struct listener *l, const char *name,
					 const char *extra, struct notify_config *cfg)
{
	char yaml[2048];
	struct buf err;
	struct notifier *nf;

	snprintf(yaml, sizeof(yaml),
		 "notify:\n  channels:\n    - name: %s\n      type: webhook\n"
		 "      url: http://127.0.0.1:%d/hook\n      retry_base_ms: 20\n"
		 "      retry_max_ms: 100\n      timeout: 5s\n"
		 "      headers: [\"Authorization: Bearer s3cret\"]\n%s",
		 name, l->port, extra ? extra : "");
	buf_init(&err, 4096);
	if (load(yaml, cfg, &err) < 0)
		fail_msg("%s", err.p);
	buf_fini(&err);
	nf = notifier_new(cfg);
	assert_non_null(nf);
	assert_int_equal(notifier_start(nf), 0);
	return nf;
}

static void test_webhook_delivery(void **state)
{
	struct listener l;
	struct notify_config cfg;
	struct notifier *nf;
	struct notification n = sample("Incident 42 opened");
	struct notify_stats st;
	uint64_t sent0 = metric_now("mamori_notify_sent_total", "channel=\"wh-ok\"");
	json_t *j;
	json_error_t je;

	listener_start(&l);
	nf = webhook_notifier(&l, "wh-ok", NULL, &cfg);
	assert_int_equal(notifier_submit(nf, &n), 0);
	assert_int_equal(notifier_flush(nf, 10000), 0);
	assert_int_equal(notifier_channel_stats(nf, "wh-ok", &st), 0);
	assert_int_equal(st.sent, 1);
	assert_int_equal(st.failed, 0);
	assert_int_equal(metric_now("mamori_notify_sent_total", "channel=\"wh-ok\"") - sent0, 1);
	pthread_mutex_lock(&l.lock);
	assert_int_equal(l.nbodies, 1);
	assert_string_equal(l.auth, "Bearer s3cret");
	j = json_loads(l.bodies[0], 0, &je);
	pthread_mutex_unlock(&l.lock);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "title")), "Incident 42 opened");
	json_decref(j);
	notifier_free(nf);
	notify_config_free(&cfg);
	listener_stop(&l);
}

static void test_webhook_retry_then_success(void **state)
{
	struct listener l;
	struct notify_config cfg;
	struct notifier *nf;
	struct notification n = sample("retry me");
	struct notify_stats st;
	uint64_t r0 = metric_now("mamori_notify_retries_total", "channel=\"wh-retry\"");

	listener_start(&l);
	l.fail_first = 2;
	l.fail_status = 500;
	nf = webhook_notifier(&l, "wh-retry", NULL, &cfg);
	assert_int_equal(notifier_submit(nf, &n), 0);
	assert_int_equal(notifier_flush(nf, 10000), 0);
	assert_int_equal(notifier_channel_stats(nf, "wh-retry", &st), 0);
	assert_int_equal(st.sent, 1);
	assert_int_equal(st.retries, 2);
	assert_int_equal(st.failed, 0);
	assert_string_equal(st.last_error, "HTTP 500");
	assert_int_equal(metric_now("mamori_notify_retries_total", "channel=\"wh-retry\"") - r0, 2);
	pthread_mutex_lock(&l.lock);
	assert_int_equal(l.requests, 3);
	assert_int_equal(l.nbodies, 1);
	pthread_mutex_unlock(&l.lock);
	notifier_free(nf);
	notify_config_free(&cfg);
	listener_stop(&l);
}

static void test_webhook_failures(void **state)
{
	struct listener l;
	struct notify_config cfg;
	struct notifier *nf;
	struct notification n = sample("doomed");
	struct notify_stats st;
	uint64_t f0 = metric_now("mamori_notify_failed_total", "channel=\"wh-fail\"");

	/* 400: the request is wrong, one attempt only. */
	listener_start(&l);
	l.fail_first = 100;
	l.fail_status = 400;
	nf = webhook_notifier(&l, "wh-fail", "      max_attempts: 4\n", &cfg);
	assert_int_equal(notifier_submit(nf, &n), 0);
	assert_int_equal(notifier_flush(nf, 10000), 0);
	assert_int_equal(notifier_channel_stats(nf, "wh-fail", &st), 0);
	assert_int_equal(st.sent, 0);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.retries, 0);
	pthread_mutex_lock(&l.lock);
	assert_int_equal(l.requests, 1);
	pthread_mutex_unlock(&l.lock);
	notifier_free(nf);
	notify_config_free(&cfg);

	/* 503 forever: max_attempts attempts, then one failure. */
	l.fail_first = 100;
	l.fail_status = 503;
	l.requests = 0;
	nf = webhook_notifier(&l, "wh-fail", "      max_attempts: 4\n", &cfg);
	assert_int_equal(notifier_submit(nf, &n), 0);
	assert_int_equal(notifier_flush(nf, 10000), 0);
	assert_int_equal(notifier_channel_stats(nf, "wh-fail", &st), 0);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.retries, 3);
	pthread_mutex_lock(&l.lock);
	assert_int_equal(l.requests, 4);
	pthread_mutex_unlock(&l.lock);
	assert_int_equal(metric_now("mamori_notify_failed_total", "channel=\"wh-fail\"") - f0, 2);
	notifier_free(nf);
	notify_config_free(&cfg);
	listener_stop(&l);

	/* Nobody listening: a connection error, retried then failed. */
	{
		struct listener gone;
		listener_start(&gone);
		listener_stop(&gone);   /* the port is now closed */
		nf = webhook_notifier(&gone, "wh-gone", "      max_attempts: 2\n", &cfg);
		assert_int_equal(notifier_submit(nf, &n), 0);
		assert_int_equal(notifier_flush(nf, 10000), 0);
		assert_int_equal(notifier_channel_stats(nf, "wh-gone", &st), 0);
		assert_int_equal(st.failed, 1);
		assert_non_null(strstr(st.last_error, "connect"));
		notifier_free(nf);
		notify_config_free(&cfg);
	}
}

static void test_storm_becomes_digest(void **state)
{
	struct listener l;
	struct notify_config cfg;
	struct notifier *nf;
	struct notify_stats st;
	char title[64];
	json_t *j;
	json_error_t je;

	listener_start(&l);
	nf = webhook_notifier(&l, "wh-storm",
			      "      max_per_window: 2\n      window: 1h\n"
			      "      min_severity: medium\n", &cfg);
	for (int i = 0; i < 200; i++) {
		struct notification n = sample(title);
		snprintf(title, sizeof(title), "storm %d", i);
		n.severity = i % 2 ? NOTIFY_SEV_HIGH : NOTIFY_SEV_LOW;  /* low ones filtered */
		assert_int_equal(notifier_submit(nf, &n), 0);
	}
	/* flush sends the waiting digest without waiting for the hour. */
	assert_int_equal(notifier_flush(nf, 10000), 0);
	assert_int_equal(notifier_channel_stats(nf, "wh-storm", &st), 0);
	assert_int_equal(st.sent, 3);
	assert_int_equal(st.digested, 98);
	pthread_mutex_lock(&l.lock);
	assert_int_equal(l.nbodies, 3);
	j = json_loads(l.bodies[2], 0, &je);
	pthread_mutex_unlock(&l.lock);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "digest");
	assert_non_null(strstr(json_string_value(json_object_get(j, "title")), "98 notifications"));
	assert_non_null(strstr(json_string_value(json_object_get(j, "body")), "storm 5"));
	json_decref(j);
	notifier_free(nf);
	notify_config_free(&cfg);
	listener_stop(&l);
}

/* min_severity and kinds decide which channel sees what; a test
 * notification reaches every channel. */
static void test_routing(void **state)
{
	struct listener l;
	struct notify_config cfg;
	struct notifier *nf;
	struct notification n = sample("routed");
	json_t *j;
	json_error_t je;

	listener_start(&l);
	nf = webhook_notifier(&l, "wh-route",
			      "      min_severity: high\n      kinds: [incident_resolved]\n", &cfg);
	n.kind = NOTIFY_INCIDENT_OPENED;          /* wrong kind */
	assert_int_equal(notifier_submit(nf, &n), 0);
	n.kind = NOTIFY_INCIDENT_RESOLVED;
	n.severity = NOTIFY_SEV_MEDIUM;           /* not severe enough */
	assert_int_equal(notifier_submit(nf, &n), 0);
	n.severity = NOTIFY_SEV_CRITICAL;         /* this one */
	assert_int_equal(notifier_submit(nf, &n), 0);
	n.kind = NOTIFY_TEST;
	n.severity = NOTIFY_SEV_INFORMATIONAL;    /* bypasses both filters */
	assert_int_equal(notifier_submit(nf, &n), 0);
	assert_int_equal(notifier_flush(nf, 10000), 0);
	pthread_mutex_lock(&l.lock);
	assert_int_equal(l.nbodies, 2);
	j = json_loads(l.bodies[0], 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "incident_resolved");
	assert_string_equal(json_string_value(json_object_get(j, "severity")), "critical");
	json_decref(j);
	j = json_loads(l.bodies[1], 0, &je);
	pthread_mutex_unlock(&l.lock);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "test");
	json_decref(j);
	notifier_free(nf);
	notify_config_free(&cfg);
	listener_stop(&l);
}

static void test_drops(void **state)
{
	struct notify_config cfg = { 0 };
	struct notifier *nf;
	struct notification n = sample("x");
	uint64_t d0 = metric_now("mamori_notify_dropped_total", NULL);
	int ok = 0, full = 0;

	cfg.queue = 4;
	nf = notifier_new(&cfg);
	assert_non_null(nf);
	/* Not started: nothing drains the queue. */
	for (int i = 0; i < 10; i++) {
		int r = notifier_submit(nf, &n);
		if (r == 0)
			ok++;
		else if (r == M_EAGAIN)
			full++;
	}
	assert_int_equal(ok, 4);
	assert_int_equal(full, 6);
	assert_int_equal(metric_now("mamori_notify_dropped_total", NULL) - d0, 6);
	n.kind = NOTIFY_DIGEST;
	assert_int_equal(notifier_submit(nf, &n), M_EINVAL);
	n.kind = NOTIFY_GENERIC;
	n.severity = (enum notify_severity)9;
	assert_int_equal(notifier_submit(nf, &n), M_EINVAL);
	notifier_free(nf);   /* the 4 queued are counted as dropped too */
	assert_int_equal(metric_now("mamori_notify_dropped_total", NULL) - d0, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_good),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_email_format),
		cmocka_unit_test(test_rfc2047),
		cmocka_unit_test(test_webhook_shapes),
		cmocka_unit_test(test_worst_case_sizes),
		cmocka_unit_test(test_limiter),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_webhook_delivery),
		cmocka_unit_test(test_webhook_retry_then_success),
		cmocka_unit_test(test_webhook_failures),
		cmocka_unit_test(test_storm_becomes_digest),
		cmocka_unit_test(test_routing),
		cmocka_unit_test(test_drops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
