/*
 * The mail quarantine: put, list, get, delete, expiry, a restart (the store
 * reopened keeps its entries), release by SMTP to a sink on a loopback
 * thread (envelope, dot-stuffing, refused recipients, a refused message, a
 * closed port), the hold links' tokens (valid, wrong, expired, surviving a
 * restart) and the notice to the sender.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/err.h"
#include "core/log.h"
#include "mail/msg.h"
#include "mail/quarantine.h"
#include "quarantine_test.h"

struct fx {
	char dir[64], qdir[96];   /* the test's directory; the quarantine in it */
	struct quarantine *q;
	struct smtp_sink sink;
	char addr[64];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct quarantine_config cfg = { 0 };
	char err[256];

	qdir_make(f->dir, sizeof(f->dir));
	snprintf(f->qdir, sizeof(f->qdir), "%s/quarantine", f->dir);
	assert_true(f->dir[0]);
	f->q = quarantine_open(f->qdir, NULL, err, sizeof(err));
	if (!f->q)
		fail_msg("%s", err);
	assert_int_equal(sink_start(&f->sink), 0);
	sink_addr(&f->sink, f->addr, sizeof(f->addr));
	cfg.reinject = f->addr;
	cfg.timeout = 10;
	cfg.hold = -1;
	assert_int_equal(quarantine_configure(f->q, &cfg), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	quarantine_close(f->q);
	sink_stop(&f->sink);
	qdir_remove(f->dir);
	free(f);
	return 0;
}

static void set_reinject(struct fx *f, const char *addr)
{
	struct quarantine_config cfg = { 0 };

	cfg.reinject = (char *)addr;
	cfg.timeout = 10;
	cfg.hold = -1;
	assert_int_equal(quarantine_configure(f->q, &cfg), 0);
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

static int file_exists(struct fx *f, const char *id, mode_t *mode)
{
	char p[160];
	struct stat st;

	snprintf(p, sizeof(p), "%s/quarantine/%s.eml", f->dir, id);
	if (stat(p, &st) != 0)
		return 0;
	if (mode)
		*mode = st.st_mode & 0777;
	return 1;
}

static json_int_t list_total(struct fx *f, const struct quarantine_filter *flt)
{
	json_t *j = NULL;
	json_int_t n;

	assert_int_equal(quarantine_list(f->q, flt, &j), 0);
	n = json_integer_value(json_object_get(j, "total"));
	json_decref(j);
	return n;
}

static const char *history_action(json_t *e, size_t i)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(e, "history"), i),
						 "action"));
}

/* ---- store ---- */

static void test_put_get(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net", "carol@example.net" };
	char id[QUARANTINE_ID_LEN + 1], *raw = NULL, *want;
	struct quarantine_meta m;
	struct msg *msg;
	size_t len, wlen;
	mode_t mode = 0;
	json_t *e;

	assert_int_equal(put_sample(f->q, "Invoice 42", "alice@example.org", rcpt, 2, 0, 0, id), 0);
	assert_true(quarantine_id_ok(id, strlen(id)));
	assert_true(file_exists(f, id, &mode));
	assert_int_equal(mode, 0600);
	assert_int_equal(quarantine_get(f->q, id, &m, &raw, &len), 0);
	msg = sample_msg("Invoice 42");
	want = msg_render(msg, &wlen);
	assert_int_equal(len, wlen);
	assert_memory_equal(raw, want, len);
	assert_string_equal(m.id, id);
	assert_string_equal(m.sender, "alice@example.org");
	assert_int_equal(m.nrcpt, 2);
	assert_string_equal(m.rcpt[1], "carol@example.net");
	assert_string_equal(m.from, "Alice Example <alice@example.org>");
	assert_string_equal(m.subject, "Invoice 42");
	assert_string_equal(m.message_id, "<m1@example.org>");
	assert_int_equal(m.size, len);
	assert_int_equal(m.state, QUARANTINE_HELD);
	assert_int_equal(m.direction, QUARANTINE_INBOUND);
	assert_int_equal(m.expiry_action, QUARANTINE_EXPIRE_DELETE);
	assert_true(m.expires_at > time(NULL) + 29 * 86400);   /* the default retention */
	assert_int_equal(strlen(m.sha256), 64);
	assert_non_null(strstr(m.reasons, "softfail"));
	quarantine_meta_fini(&m);
	free(raw);
	free(want);
	msg_free(msg);

	assert_int_equal(quarantine_entry_json(f->q, id, 1, &e), 0);
	assert_string_equal(json_string_value(json_object_get(e, "state")), "held");
	assert_string_equal(json_string_value(json_array_get(json_object_get(e, "recipients"), 0)),
			    "bob@example.net");
	assert_true(json_real_value(json_object_get(e, "score")) == 7.5);
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(json_object_get(e, "headers"), 2), "value")), "Invoice 42");
	assert_string_equal(history_action(e, 0), "held");
	json_decref(e);

	assert_int_equal(quarantine_get(f->q, "0123456789abcdef0123456789abcdef", &m, NULL, NULL),
			 M_ENOTFOUND);
	assert_int_equal(quarantine_get(f->q, "../../etc/passwd", &m, NULL, NULL), M_ENOTFOUND);
	assert_int_equal(quarantine_entry_json(f->q, "nope", 0, &e), M_ENOTFOUND);
}

static void test_put_refused(void **state)
{
	static const struct {
		const char *sender, *rcpt, *reasons;
		int outbound_hold;
	} t[] = {
		{ "a@example.org", "b@example.net\r\nRCPT TO:<evil@x>", NULL, 0 },
		{ "a@example.org", "b@example.net>", NULL, 0 },
		{ "a@example.org>\r\nDATA", "b@example.net", NULL, 0 },
		{ "a@example.org", "", NULL, 0 },
		{ "a@example.org", "\xff\xfe@example.net", NULL, 0 },
		{ "a@example.org", "b@example.net", "not json", 0 },
		{ "a@example.org", "b@example.net", "42", 0 },
		{ "a@example.org", "b@example.net", NULL, 100000 },
	};
	struct fx *f = *state;
	char id[QUARANTINE_ID_LEN + 1];
	struct quarantine_filter flt = { .state = -1, .direction = -1 };

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct quarantine_meta m = { 0 };
		struct msg *msg = sample_msg("x");
		char *r = (char *)t[i].rcpt;
		int rc;

		m.sender = (char *)t[i].sender;
		m.rcpt = &r;
		m.nrcpt = 1;
		m.reasons = (char *)t[i].reasons;
		rc = t[i].outbound_hold ? quarantine_hold_outbound(f->q, msg, &m, t[i].outbound_hold, id)
					: quarantine_put(f->q, msg, &m, id);
		if (rc != M_EINVAL)
			fail_msg("case %zu: %d", i, rc);
		assert_string_equal(id, "");
		msg_free(msg);
	}
	{
		struct quarantine_meta m = { 0 };
		struct msg *msg = sample_msg("x");

		m.sender = "a@example.org";
		assert_int_equal(quarantine_put(f->q, msg, &m, id), M_EINVAL);   /* no recipient */
		msg_free(msg);
	}
	assert_int_equal(list_total(f, &flt), 0);
}

/* Header text from the network is kept as one line of valid UTF-8. */
static void test_put_cleans_headers(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net" };
	char id[QUARANTINE_ID_LEN + 1];
	struct quarantine_meta m;

	assert_int_equal(put_sample(f->q, "caf\xc3\xa9 \xff\x01 bad\r\n folded", "", rcpt, 1, 0, 0,
				    id), 0);
	assert_int_equal(quarantine_get(f->q, id, &m, NULL, NULL), 0);
	assert_string_equal(m.subject, "caf\xc3\xa9 \xef\xbf\xbd  bad folded");
	assert_string_equal(m.sender, "");   /* the null sender is fine */
	quarantine_meta_fini(&m);

	/* What the caller decoded wins over the raw field. */
	{
		struct quarantine_meta in = { 0 };
		struct msg *msg = sample_msg("=?UTF-8?B?5bGx55Sw?=");

		in.sender = "alice@example.org";
		in.rcpt = rcpt;
		in.nrcpt = 1;
		in.subject = "\xe5\xb1\xb1\xe7\x94\xb0\r\n";
		assert_int_equal(quarantine_put(f->q, msg, &in, id), 0);
		msg_free(msg);
		assert_int_equal(quarantine_get(f->q, id, &m, NULL, NULL), 0);
		assert_string_equal(m.subject, "\xe5\xb1\xb1\xe7\x94\xb0  ");
		assert_string_equal(m.message_id, "<m1@example.org>");
		quarantine_meta_fini(&m);
	}
}

static void test_list(void **state)
{
	struct fx *f = *state;
	char *r1[] = { "bob@example.net" }, *r2[] = { "carol@Example.NET", "dave@example.com" };
	char id[4][QUARANTINE_ID_LEN + 1];
	struct quarantine_filter flt = { .state = -1, .direction = -1 };
	json_t *j, *msgs;

	assert_int_equal(put_sample(f->q, "one", "alice@example.org", r1, 1, 0, 0, id[0]), 0);
	assert_int_equal(put_sample(f->q, "two", "mallory@evil.test", r2, 2, 0, 0, id[1]), 0);
	assert_int_equal(put_sample(f->q, "three", "alice@example.org", r2, 2, 1, 30, id[2]), 0);
	assert_int_equal(put_sample(f->q, "four", "Alice@Example.org", r1, 1, 0, 0, id[3]), 0);
	assert_int_equal(quarantine_delete(f->q, id[3], "test"), 0);

	assert_int_equal(list_total(f, &flt), 4);
	flt.state = QUARANTINE_HELD;
	assert_int_equal(list_total(f, &flt), 3);
	flt.direction = QUARANTINE_OUTBOUND;
	assert_int_equal(list_total(f, &flt), 1);
	flt.state = QUARANTINE_DELETED;
	flt.direction = -1;
	assert_int_equal(list_total(f, &flt), 1);
	flt.state = -1;
	flt.sender = "ALICE@example";
	assert_int_equal(list_total(f, &flt), 3);
	flt.sender = NULL;
	flt.recipient = "carol@example.net";
	assert_int_equal(list_total(f, &flt), 2);
	flt.recipient = "nobody";
	assert_int_equal(list_total(f, &flt), 0);
	flt.recipient = NULL;
	flt.since = time(NULL) + 3600;
	assert_int_equal(list_total(f, &flt), 0);
	flt.since = 0;

	/* Newest first, paged. */
	flt.limit = 2;
	flt.offset = 1;
	assert_int_equal(quarantine_list(f->q, &flt, &j), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 4);
	msgs = json_object_get(j, "messages");
	assert_int_equal(json_array_size(msgs), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "id")), id[2]);
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "id")), id[1]);
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "direction")),
			    "outbound");
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0),
							      "expiry_action")), "send");
	json_decref(j);
	flt.limit = QUARANTINE_MAX_LIMIT + 1;
	assert_int_equal(quarantine_list(f->q, &flt, &j), M_EINVAL);
}

static void test_delete(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net" };
	char id[QUARANTINE_ID_LEN + 1], *raw = (char *)1;
	struct quarantine_meta m;
	size_t len = 1;
	json_t *e;

	assert_int_equal(put_sample(f->q, "bye", "alice@example.org", rcpt, 1, 0, 0, id), 0);
	assert_int_equal(quarantine_delete(f->q, id, "operator alice"), 0);
	assert_false(file_exists(f, id, NULL));
	assert_int_equal(state_of(f, id), QUARANTINE_DELETED);
	assert_int_equal(quarantine_delete(f->q, id, "operator alice"), M_EINVAL);
	assert_int_equal(quarantine_release(f->q, id, "operator alice", NULL), M_EINVAL);
	assert_int_equal(quarantine_delete(f->q, "0123456789abcdef0123456789abcdef", "x"),
			 M_ENOTFOUND);
	/* The row stays with its history; the message is gone. */
	assert_int_equal(quarantine_get(f->q, id, &m, &raw, &len), 0);
	assert_null(raw);
	assert_int_equal(len, 0);
	quarantine_meta_fini(&m);
	assert_int_equal(quarantine_entry_json(f->q, id, 1, &e), 0);
	assert_string_equal(history_action(e, 1), "deleted");
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(json_object_get(e, "history"), 1), "by")), "operator alice");
	assert_true(json_is_null(json_object_get(e, "headers")));
	json_decref(e);
}

/* Close and reopen: entries, their files and the key are still there; a
 * temporary file a crash left is swept. */
static void test_restart(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net" };
	char id[QUARANTINE_ID_LEN + 1], tok1[QUARANTINE_TOKEN_LEN + 1], tok2[QUARANTINE_TOKEN_LEN + 1];
	char err[256], stray[160], *raw;
	struct quarantine_filter flt = { .state = -1, .direction = -1 };
	struct quarantine_meta m;
	struct stat st;
	size_t len;
	FILE *fp;

	assert_int_equal(put_sample(f->q, "survivor", "alice@example.org", rcpt, 1, 1, 30, id), 0);
	assert_int_equal(quarantine_token(f->q, id, QUARANTINE_ACT_CANCEL, tok1), 0);
	quarantine_close(f->q);
	snprintf(stray, sizeof(stray), "%s/quarantine/.deadbeef.tmp", f->dir);
	fp = fopen(stray, "w");
	assert_non_null(fp);
	fputs("half a message", fp);
	fclose(fp);
	f->q = quarantine_open(f->qdir, NULL, err, sizeof(err));
	assert_non_null(f->q);
	assert_int_not_equal(stat(stray, &st), 0);
	set_reinject(f, f->addr);
	assert_int_equal(list_total(f, &flt), 1);
	assert_int_equal(quarantine_get(f->q, id, &m, &raw, &len), 0);
	assert_string_equal(m.subject, "survivor");
	assert_int_equal(m.state, QUARANTINE_HELD);
	assert_non_null(raw);
	free(raw);
	quarantine_meta_fini(&m);
	assert_int_equal(quarantine_token(f->q, id, QUARANTINE_ACT_CANCEL, tok2), 0);
	assert_string_equal(tok1, tok2);
	assert_int_equal(quarantine_token_check(f->q, id, QUARANTINE_ACT_CANCEL, tok1), 0);
	snprintf(stray, sizeof(stray), "%s/quarantine.key", f->dir);
	assert_int_equal(stat(stray, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

/* A message file changed on disk is not released. */
static void test_damaged_file(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net" };
	char id[QUARANTINE_ID_LEN + 1], p[160], *raw;
	struct quarantine_result res;
	struct quarantine_meta m;
	size_t len;
	FILE *fp;

	assert_int_equal(put_sample(f->q, "tamper", "alice@example.org", rcpt, 1, 0, 0, id), 0);
	snprintf(p, sizeof(p), "%s/quarantine/%s.eml", f->dir, id);
	fp = fopen(p, "a");
	assert_non_null(fp);
	fputs("added\r\n", fp);
	fclose(fp);
	assert_int_equal(quarantine_get(f->q, id, &m, &raw, &len), M_EIO);
	assert_int_equal(quarantine_release(f->q, id, "test", &res), M_EIO);
	assert_non_null(strstr(res.detail, "damaged"));
	assert_int_equal(state_of(f, id), QUARANTINE_HELD);
	assert_int_equal(f->sink.messages, 0);
}

/* ---- release ---- */

static void test_release(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net", "carol@example.net" };
	char id[QUARANTINE_ID_LEN + 1], hdr[80], *raw;
	struct quarantine_result res;
	struct quarantine_meta m;
	size_t len;
	json_t *e;

	assert_int_equal(put_sample(f->q, "release me", "alice@example.org", rcpt, 2, 0, 0, id), 0);
	assert_int_equal(quarantine_get(f->q, id, &m, &raw, &len), 0);
	quarantine_meta_fini(&m);
	assert_int_equal(quarantine_release(f->q, id, "operator bob", &res), 0);
	assert_int_equal(res.accepted, 2);
	assert_int_equal(res.refused, 0);
	pthread_mutex_lock(&f->sink.mu);
	assert_int_equal(f->sink.messages, 1);
	assert_string_equal(f->sink.from, "<alice@example.org>");
	assert_int_equal(f->sink.nrcpt, 2);
	assert_string_equal(f->sink.rcpt[0], "<bob@example.net>");
	assert_string_equal(f->sink.rcpt[1], "<carol@example.net>");
	/* Our trace header on top, then the message byte for byte (the line
	 * with a leading dot survived the stuffing). */
	snprintf(hdr, sizeof(hdr), "X-Mamori-Released: %s\r\n", id);
	assert_int_equal(strncmp(f->sink.data.p, hdr, strlen(hdr)), 0);
	assert_int_equal(f->sink.data.len, strlen(hdr) + len);
	assert_memory_equal(f->sink.data.p + strlen(hdr), raw, len);
	pthread_mutex_unlock(&f->sink.mu);
	free(raw);

	assert_int_equal(state_of(f, id), QUARANTINE_RELEASED);
	assert_false(file_exists(f, id, NULL));
	assert_int_equal(quarantine_release(f->q, id, "operator bob", &res), M_EINVAL);
	assert_non_null(strstr(res.detail, "released"));
	assert_int_equal(quarantine_entry_json(f->q, id, 0, &e), 0);
	assert_string_equal(history_action(e, 1), "released");
	assert_non_null(strstr(json_string_value(json_object_get(
		json_array_get(json_object_get(e, "history"), 1), "detail")), "2 recipient"));
	json_decref(e);
}

static void test_release_null_sender(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net" };
	char id[QUARANTINE_ID_LEN + 1];

	assert_int_equal(put_sample(f->q, "bounce", "", rcpt, 1, 0, 0, id), 0);
	assert_int_equal(quarantine_release(f->q, id, "test", NULL), 0);
	pthread_mutex_lock(&f->sink.mu);
	assert_string_equal(f->sink.from, "<>");
	pthread_mutex_unlock(&f->sink.mu);
}

/* Some recipients refused: the others got it, and we are told who not. */
static void test_release_partial(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net", "refuse-me@example.net", "carol@example.net" };
	char id[QUARANTINE_ID_LEN + 1];
	struct quarantine_result res;
	json_t *e;

	assert_int_equal(put_sample(f->q, "partial", "alice@example.org", rcpt, 3, 0, 0, id), 0);
	assert_int_equal(quarantine_release(f->q, id, "test", &res), 0);
	assert_int_equal(res.accepted, 2);
	assert_int_equal(res.refused, 1);
	assert_non_null(strstr(res.detail, "<refuse-me@example.net> 550 5.1.1"));
	pthread_mutex_lock(&f->sink.mu);
	assert_int_equal(f->sink.nrcpt, 2);
	pthread_mutex_unlock(&f->sink.mu);
	assert_int_equal(state_of(f, id), QUARANTINE_RELEASED);
	assert_int_equal(quarantine_entry_json(f->q, id, 0, &e), 0);
	assert_non_null(strstr(json_string_value(json_object_get(
		json_array_get(json_object_get(e, "history"), 1), "detail")), "refuse-me"));
	json_decref(e);
}

/* Nothing delivered: every recipient refused, the message refused, no
 * server, no address. The entry stays held, with the reason. */
static void test_release_fails(void **state)
{
	struct fx *f = *state;
	char *all_refused[] = { "refuse1@example.net", "refuse2@example.net" };
	char *rcpt[] = { "bob@example.net" };
	char id[QUARANTINE_ID_LEN + 1], addr[64];
	struct quarantine_result res;
	json_t *e;

	assert_int_equal(put_sample(f->q, "nobody", "alice@example.org", all_refused, 2, 0, 0, id), 0);
	assert_int_equal(quarantine_release(f->q, id, "test", &res), M_EIO);
	assert_int_equal(res.refused, 2);
	assert_non_null(strstr(res.detail, "refuse2@example.net"));
	assert_int_equal(state_of(f, id), QUARANTINE_HELD);

	assert_int_equal(put_sample(f->q, "refused", "alice@example.org", rcpt, 1, 0, 0, id), 0);
	atomic_store(&f->sink.reject_data, 1);
	assert_int_equal(quarantine_release(f->q, id, "test", &res), M_EIO);
	atomic_store(&f->sink.reject_data, 0);
	assert_non_null(strstr(res.detail, "554 5.7.1"));
	assert_int_equal(state_of(f, id), QUARANTINE_HELD);
	assert_true(file_exists(f, id, NULL));

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", closed_port());
	set_reinject(f, addr);
	assert_int_equal(quarantine_release(f->q, id, "operator carol", &res), M_EIO);
	assert_non_null(strstr(res.detail, addr));
	assert_int_equal(state_of(f, id), QUARANTINE_HELD);
	assert_int_equal(quarantine_entry_json(f->q, id, 0, &e), 0);
	assert_string_equal(history_action(e, 2), "release-failed");
	json_decref(e);

	set_reinject(f, "");
	assert_int_equal(quarantine_release(f->q, id, "test", &res), M_EUNSUPP);
	/* Back again: it goes out. */
	set_reinject(f, f->addr);
	assert_int_equal(quarantine_release(f->q, id, "test", &res), 0);
	assert_int_equal(state_of(f, id), QUARANTINE_RELEASED);
}

/* ---- expiry and the outbound hold ---- */

static void test_expire(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net" };
	char in[QUARANTINE_ID_LEN + 1], out[QUARANTINE_ID_LEN + 1], stuck[QUARANTINE_ID_LEN + 1];
	char addr[64];
	time_t now = time(NULL);

	assert_int_equal(put_sample(f->q, "old", "alice@example.org", rcpt, 1, 0, 0, in), 0);
	assert_int_equal(put_sample(f->q, "held out", "alice@example.org", rcpt, 1, 1, 1, out), 0);
	assert_int_equal(quarantine_expire(f->q, now), 0);
	assert_int_equal(quarantine_expire(f->q, now + 120), 1);       /* the hold passed */
	assert_int_equal(state_of(f, out), QUARANTINE_SENT);
	assert_int_equal(f->sink.messages, 1);
	assert_int_equal(state_of(f, in), QUARANTINE_HELD);
	assert_int_equal(quarantine_expire(f->q, now + 31 * 86400), 1);   /* the retention */
	assert_int_equal(state_of(f, in), QUARANTINE_EXPIRED);
	assert_false(file_exists(f, in, NULL));
	assert_int_equal(f->sink.messages, 1);   /* an inbound one is never sent */

	/* A send that fails stays held and is tried again. */
	assert_int_equal(put_sample(f->q, "stuck", "alice@example.org", rcpt, 1, 1, 0, stuck), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", closed_port());
	set_reinject(f, addr);
	assert_int_equal(quarantine_expire(f->q, now + 10), 0);
	assert_int_equal(quarantine_expire(f->q, now + 20), 0);
	assert_int_equal(state_of(f, stuck), QUARANTINE_HELD);
	{
		json_t *e;

		/* Two failed passes, one history row. */
		assert_int_equal(quarantine_entry_json(f->q, stuck, 0, &e), 0);
		assert_int_equal(json_array_size(json_object_get(e, "history")), 2);
		assert_string_equal(history_action(e, 1), "release-failed");
		json_decref(e);
	}
	set_reinject(f, f->addr);
	assert_int_equal(quarantine_expire(f->q, now + 10), 1);
	assert_int_equal(state_of(f, stuck), QUARANTINE_SENT);

	/* Entries that ended long ago leave the index; held ones stay. */
	char keep[QUARANTINE_ID_LEN + 1];
	assert_int_equal(put_sample(f->q, "keep", "alice@example.org", rcpt, 1, 0, 0, keep), 0);
	assert_int_equal(qdb_poke(f->dir, keep, "updated = 0, expires_at = 99999999999"), 0);
	quarantine_expire(f->q, now + 91 * 86400);
	struct quarantine_meta m;
	assert_int_equal(quarantine_get(f->q, out, &m, NULL, NULL), M_ENOTFOUND);
	assert_int_equal(quarantine_get(f->q, in, &m, NULL, NULL), M_ENOTFOUND);
	assert_int_equal(quarantine_get(f->q, keep, &m, NULL, NULL), 0);
	quarantine_meta_fini(&m);
}

/* The expiry thread runs and stops with the store. */
static void test_expiry_thread(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net" };
	char id[QUARANTINE_ID_LEN + 1];

	assert_int_equal(put_sample(f->q, "soon", "alice@example.org", rcpt, 1, 1, 0, id), 0);
	assert_int_equal(quarantine_expiry_start(f->q, 1), 0);
	assert_int_equal(quarantine_expiry_start(f->q, 1), M_EINVAL);
	for (int i = 0; i < 50 && state_of(f, id) == QUARANTINE_HELD; i++)
		usleep(100000);
	assert_int_equal(state_of(f, id), QUARANTINE_SENT);
}

static void test_tokens(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net" };
	char id[QUARANTINE_ID_LEN + 1], other[QUARANTINE_ID_LEN + 1];
	char cancel[QUARANTINE_TOKEN_LEN + 1], send[QUARANTINE_TOKEN_LEN + 1], bad[80];
	char again[QUARANTINE_TOKEN_LEN + 1], set[64];
	struct quarantine_config cfg = { 0 };

	assert_int_equal(put_sample(f->q, "hold", "alice@example.org", rcpt, 1, 1, 10, id), 0);
	assert_int_equal(put_sample(f->q, "hold 2", "alice@example.org", rcpt, 1, 1, 10, other), 0);
	assert_int_equal(quarantine_token(f->q, id, QUARANTINE_ACT_CANCEL, cancel), 0);
	assert_int_equal(quarantine_token(f->q, id, QUARANTINE_ACT_SEND_NOW, send), 0);
	assert_int_equal(strlen(cancel), QUARANTINE_TOKEN_LEN);
	assert_string_not_equal(cancel, send);

	assert_int_equal(quarantine_token_check(f->q, id, QUARANTINE_ACT_CANCEL, cancel), 0);
	assert_int_equal(quarantine_token_check(f->q, id, QUARANTINE_ACT_SEND_NOW, send), 0);
	assert_int_equal(quarantine_token_check(f->q, id, QUARANTINE_ACT_SEND_NOW, cancel), M_EAUTH);
	assert_int_equal(quarantine_token_check(f->q, other, QUARANTINE_ACT_CANCEL, cancel), M_EAUTH);
	memcpy(bad, cancel, sizeof(cancel));
	bad[10] = bad[10] == 'a' ? 'b' : 'a';
	assert_int_equal(quarantine_token_check(f->q, id, QUARANTINE_ACT_CANCEL, bad), M_EAUTH);
	assert_int_equal(quarantine_token_check(f->q, id, QUARANTINE_ACT_CANCEL, cancel + 1), M_EAUTH);
	snprintf(bad, sizeof(bad), "%s00", cancel);
	assert_int_equal(quarantine_token_check(f->q, id, QUARANTINE_ACT_CANCEL, bad), M_EAUTH);
	assert_int_equal(quarantine_token_check(f->q, id, QUARANTINE_ACT_CANCEL, ""), M_EAUTH);
	assert_int_equal(quarantine_token_check(f->q, id, QUARANTINE_ACT_CANCEL, NULL), M_EAUTH);
	assert_int_equal(quarantine_token_check(f->q, "0123456789abcdef0123456789abcdef",
						QUARANTINE_ACT_CANCEL, cancel), M_ENOTFOUND);

	/* The expiry is part of what is signed: moving it voids the token;
	 * a genuine token for a hold that has passed is refused as expired. */
	snprintf(set, sizeof(set), "expires_at = %lld", (long long)time(NULL) - 5);
	assert_int_equal(qdb_poke(f->dir, id, set), 0);
	assert_int_equal(quarantine_token_check(f->q, id, QUARANTINE_ACT_CANCEL, cancel), M_EAUTH);
	assert_int_equal(quarantine_token(f->q, id, QUARANTINE_ACT_CANCEL, again), 0);
	assert_int_equal(quarantine_token_check(f->q, id, QUARANTINE_ACT_CANCEL, again), M_ELIMIT);

	/* A configured key replaces the generated one. */
	cfg.reinject = f->addr;
	cfg.hold = -1;
	cfg.key = "short";
	assert_int_equal(quarantine_configure(f->q, &cfg), M_EINVAL);
	cfg.key = "a configured secret of some length";
	assert_int_equal(quarantine_configure(f->q, &cfg), 0);
	assert_int_equal(quarantine_token(f->q, other, QUARANTINE_ACT_CANCEL, again), 0);
	assert_int_equal(quarantine_token_check(f->q, other, QUARANTINE_ACT_CANCEL, again), 0);
	assert_int_equal(quarantine_token(f->q, id, QUARANTINE_ACT_SEND_NOW, again), 0);
	assert_string_not_equal(again, send);
}

static void test_hold_act(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net" };
	char a[QUARANTINE_ID_LEN + 1], b[QUARANTINE_ID_LEN + 1];
	struct quarantine_result res;
	json_t *e;

	assert_int_equal(put_sample(f->q, "cancel me", "alice@example.org", rcpt, 1, 1, 10, a), 0);
	assert_int_equal(put_sample(f->q, "send me", "alice@example.org", rcpt, 1, 1, 10, b), 0);
	assert_int_equal(quarantine_hold_act(f->q, a, QUARANTINE_ACT_CANCEL, &res), 0);
	assert_int_equal(state_of(f, a), QUARANTINE_DELETED);
	assert_int_equal(quarantine_hold_act(f->q, a, QUARANTINE_ACT_SEND_NOW, &res), M_EINVAL);
	assert_int_equal(quarantine_hold_act(f->q, b, QUARANTINE_ACT_SEND_NOW, &res), 0);
	assert_int_equal(state_of(f, b), QUARANTINE_SENT);
	assert_int_equal(f->sink.messages, 1);
	pthread_mutex_lock(&f->sink.mu);
	assert_null(strstr(f->sink.data.p, "X-Mamori"));   /* outbound: no ids of ours */
	assert_non_null(strstr(f->sink.data.p, "Subject: send me\r\n"));
	pthread_mutex_unlock(&f->sink.mu);
	assert_int_equal(quarantine_hold_act(f->q, b, QUARANTINE_ACT_CANCEL, &res), M_EINVAL);
	assert_int_equal(quarantine_entry_json(f->q, a, 0, &e), 0);
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(json_object_get(e, "history"), 1), "by")), "sender (cancel link)");
	json_decref(e);
}

static void test_hold_notice(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net", "carol@example.net" };
	char id[QUARANTINE_ID_LEN + 1], in[QUARANTINE_ID_LEN + 1], tok[QUARANTINE_TOKEN_LEN + 1];
	char link[256], *text = NULL;
	struct msg *m;
	int err;

	assert_int_equal(put_sample(f->q, "Quarterly numbers", "alice@example.org", rcpt, 2, 1, 15,
				    id), 0);
	assert_int_equal(quarantine_hold_notice(f->q, id, "https://mamori.example.org/", &text), 0);
	assert_non_null(strstr(text, "To: <alice@example.org>\r\n"));
	assert_non_null(strstr(text, "From: postmaster@localhost\r\n"));
	assert_non_null(strstr(text, "Subject: Held before sending: Quarterly numbers\r\n"));
	assert_non_null(strstr(text, "Auto-Submitted: auto-generated\r\n"));
	assert_non_null(strstr(text, "carol@example.net"));
	assert_int_equal(quarantine_token(f->q, id, QUARANTINE_ACT_CANCEL, tok), 0);
	snprintf(link, sizeof(link), "https://mamori.example.org/api/v1/mail/hold/%s/cancel?token=%s\r\n",
		 id, tok);
	assert_non_null(strstr(text, link));
	assert_int_equal(quarantine_token(f->q, id, QUARANTINE_ACT_SEND_NOW, tok), 0);
	snprintf(link, sizeof(link), "/api/v1/mail/hold/%s/send-now?token=%s\r\n", id, tok);
	assert_non_null(strstr(text, link));
	for (const char *p = strchr(text, '\n'); p; p = strchr(p + 1, '\n'))
		assert_int_equal(p[-1], '\r');    /* CRLF only */
	m = msg_parse(text, strlen(text), &err, NULL);
	assert_non_null(m);
	assert_true(msg_find(m, "Message-ID", 0) >= 0);
	msg_free(m);
	free(text);

	assert_int_equal(quarantine_hold_notice(f->q, id, "javascript:alert(1)", &text), M_EINVAL);
	assert_int_equal(quarantine_hold_notice(f->q, id, "https://x/\r\nBcc: y", &text), M_EINVAL);
	assert_int_equal(put_sample(f->q, "in", "alice@example.org", rcpt, 2, 0, 0, in), 0);
	assert_int_equal(quarantine_hold_notice(f->q, in, "https://x", &text), M_EINVAL);
	assert_null(text);
}

/* ---- threads ---- */

struct putter {
	struct quarantine *q;
	int n, fails;
};

static void *put_many(void *arg)
{
	struct putter *p = arg;
	char *rcpt[] = { "bob@example.net" };
	char id[QUARANTINE_ID_LEN + 1];

	for (int i = 0; i < p->n; i++)
		if (put_sample(p->q, "many", "alice@example.org", rcpt, 1, 0, 0, id) != 0)
			p->fails++;
	return NULL;
}

static void test_concurrent_puts(void **state)
{
	struct fx *f = *state;
	struct putter p[4];
	pthread_t t[4];
	struct quarantine_filter flt = { .state = QUARANTINE_HELD, .direction = -1 };

	for (int i = 0; i < 4; i++) {
		p[i] = (struct putter){ f->q, 20, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, put_many, &p[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(p[i].fails, 0);
	}
	assert_int_equal(list_total(f, &flt), 80);
}

static void test_open_configure(void **state)
{
	struct fx *f = *state;
	struct quarantine_config cfg = { 0 };
	char *rcpt[] = { "bob@example.net" };
	char id[QUARANTINE_ID_LEN + 1], err[256], *text;

	assert_null(quarantine_open("/nonexistent-mamori/a/b", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot create"));
	assert_null(quarantine_open("", NULL, err, sizeof(err)));
	cfg.reinject = "no port";
	assert_int_equal(quarantine_configure(f->q, &cfg), M_EINVAL);
	cfg.reinject = NULL;
	cfg.notice_from = "x@example.org\r\nBcc: y@example.org";
	assert_int_equal(quarantine_configure(f->q, &cfg), M_EINVAL);
	/* A NULL or zero setting keeps what was there. */
	cfg.notice_from = "Mail Gateway <gateway@example.org>";
	assert_int_equal(quarantine_configure(f->q, &cfg), 0);
	assert_int_equal(put_sample(f->q, "x", "alice@example.org", rcpt, 1, 1, -1, id), 0);
	assert_int_equal(quarantine_hold_notice(f->q, id, "http://127.0.0.1:8080", &text), 0);
	assert_non_null(strstr(text, "From: Mail Gateway <gateway@example.org>\r\n"));
	assert_non_null(strstr(text, "@example.org>\r\n"));   /* Message-ID domain */
	free(text);
	assert_int_equal(quarantine_release(f->q, id, "test", NULL), 0);   /* reinject kept */
}

struct releaser {
	struct quarantine *q;
	const char *id;
	int rc;
};

static void *release_one(void *arg)
{
	struct releaser *r = arg;

	r->rc = quarantine_release(r->q, r->id, "racer", NULL);
	return NULL;
}

/* Four releases of one entry at once: it goes out once. */
static void test_release_race(void **state)
{
	struct fx *f = *state;
	char *rcpt[] = { "bob@example.net" };
	char id[QUARANTINE_ID_LEN + 1];
	struct releaser r[4];
	pthread_t t[4];
	int ok = 0;

	assert_int_equal(put_sample(f->q, "race", "alice@example.org", rcpt, 1, 0, 0, id), 0);
	for (int i = 0; i < 4; i++) {
		r[i] = (struct releaser){ f->q, id, 1 };
		assert_int_equal(pthread_create(&t[i], NULL, release_one, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		if (r[i].rc == 0)
			ok++;
		else
			assert_true(r[i].rc == M_EAGAIN || r[i].rc == M_EINVAL);
	}
	assert_int_equal(ok, 1);
	assert_int_equal(f->sink.messages, 1);
	assert_int_equal(state_of(f, id), QUARANTINE_RELEASED);
}

static void test_names(void **state)
{
	static const char *const names[] = { "held", "released", "deleted", "expired", "sent" };
	enum quarantine_state s;

	(void)state;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(quarantine_state_parse(names[i], strlen(names[i]), &s), 0);
		assert_int_equal(s, i);
		assert_string_equal(quarantine_state_name(s), names[i]);
	}
	assert_int_equal(quarantine_state_parse("hel", 3, &s), M_EINVAL);
	assert_true(quarantine_id_ok("0123456789abcdef0123456789abcdef", 32));
	assert_false(quarantine_id_ok("0123456789ABCDEF0123456789abcdef", 32));
	assert_false(quarantine_id_ok("0123456789abcdef0123456789abcde", 31));
	assert_string_equal(quarantine_action_name(QUARANTINE_ACT_SEND_NOW), "send-now");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_open_configure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_cleans_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_null_sender, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_partial, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_act, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_notice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_puts, setup, teardown),
	};

	log_set_level(LOG_FATAL);
	return cmocka_run_group_tests_name("quarantine", tests, NULL, NULL);
}
