/*
 * The gateway's decision on a message (mail_gw_check), without a socket:
 * the DNS is an in-memory zone, the quarantine a real one in a temporary
 * directory, the settings parsed from YAML as serve reads them. Each case
 * is a message and what must come of it: the verdict, the reply, the header
 * changes, what the quarantine holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/hs_child.h"
#include "core/log.h"
#include "core/metrics.h"
#include "mail/arc.h"
#include "mail/dkim.h"
#include "mail/mail_conf.h"
#include "mail/mail_gw.h"
#include "mail/mdns.h"
#include "mail/milter.h"
#include "mail/msg.h"
#include "mail/quarantine.h"
#include "mail_keys_test.h"
#include "quarantine_test.h"

#include <zlib.h>

struct fx {
	char dir[64];
	struct mdns *z;
	struct mail_config cfg;
	struct mail_gw *g;
};

static void zone(struct mdns *z, const char *name, const char *txt)
{
	assert_int_equal(mdns_zone_add_txt(z, name, txt, strlen(txt)), 0);
}

static struct fx *fx_new(const char *yaml)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/mamori-mailgw.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->z = mdns_zone_new();
	zone(f->z, "bank.example", "v=spf1 ip4:192.0.2.1 -all");
	zone(f->z, "_dmarc.bank.example", "v=DMARC1; p=reject");
	zone(f->z, "shop.example", "v=spf1 ip4:192.0.2.1 -all");
	zone(f->z, "_dmarc.shop.example", "v=DMARC1; p=quarantine");
	zone(f->z, "good.example", "v=spf1 ip4:127.0.0.0/8 -all");
	zone(f->z, "_dmarc.good.example", "v=DMARC1; p=reject");
	zone(f->z, "slow.example", "v=spf1 ip4:192.0.2.1 -all");
	assert_int_equal(mdns_zone_set_timeout(f->z, "_dmarc.slow.example"), 0);
	struct conf_doc doc = {0};
	struct buf err;
	buf_init(&err, 4096);
	char text[4096];
	snprintf(text, sizeof(text), "mail:\n  milter: \"\"\n  authserv_id: mx.test\n%s", yaml);
	assert_int_equal(conf_parse("t.yaml", text, strlen(text), &doc, &err), 0);
	int rc = mail_config_load(&doc, &f->cfg, &err);
	if (rc < 0)
		fail_msg("config: %s", err.p);
	conf_doc_fini(&doc);
	struct mail_gw_deps deps = {0};
	deps.data_dir = f->dir;
	deps.dns = f->z;
	f->g = mail_gw_new(&f->cfg, &deps, &err);
	if (!f->g)
		fail_msg("mail_gw_new: %s", err.p);
	buf_fini(&err);
	return f;
}

static void fx_free(struct fx *f)
{
	mail_gw_free(f->g);
	mail_config_free(&f->cfg);
	mdns_free(f->z);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
}

/* Runs one message from ip with MAIL FROM; returns the reply. */
static void check_msg(struct fx *f, const char *ip, const char *mail_from, const char *text,
		      const char *auth_user, struct milter_reply *r)
{
	struct milter_session s;
	memset(&s, 0, sizeof(s));
	s.af = AF_INET;
	assert_int_equal(inet_pton(AF_INET, ip, s.ip), 1);
	snprintf(s.client_ip, sizeof(s.client_ip), "%s", ip);
	snprintf(s.helo, sizeof(s.helo), "mail.sender.example");
	snprintf(s.mail_from, sizeof(s.mail_from), "%s", mail_from);
	char *rcpt = (char *)"root@test.local";
	s.rcpt = &rcpt;
	s.nrcpt = 1;
	if (auth_user) {
		s.macro_name[0] = (char *)"{auth_authen}";
		s.macro_value[0] = (char *)auth_user;
		s.nmacros = 1;
	}
	int err;
	s.m = msg_parse(text, strlen(text), &err, NULL);
	assert_non_null(s.m);
	memset(r, 0, sizeof(*r));
	mail_gw_check(f->g, &s, r);
	msg_free(s.m);
}

static const struct milter_op *find_op(const struct milter_reply *r, const char *name)
{
	for (size_t i = 0; i < r->nops; i++)
		if (strcasecmp(r->ops[i].name, name) == 0)
			return &r->ops[i];
	return NULL;
}

/* The expiry action of the only entry of direction. */
static const char *held_expiry(struct fx *f, int direction, char *out, size_t n)
{
	struct quarantine_filter qf = {.state = -1, .direction = direction};
	json_t *j = NULL;
	assert_int_equal(quarantine_list(mail_gw_quarantine(f->g), &qf, &j), 0);
	json_t *m = json_array_get(json_object_get(j, "messages"), 0);
	snprintf(out, n, "%s", json_string_value(json_object_get(m, "expiry_action")));
	json_decref(j);
	return out;
}

static size_t held(struct fx *f, int direction)
{
	struct quarantine_filter qf = {.state = -1, .direction = direction};
	json_t *out = NULL;
	assert_int_equal(quarantine_list(mail_gw_quarantine(f->g), &qf, &out), 0);
	size_t n = json_array_size(json_object_get(out, "messages"));
	json_decref(out);
	return n;
}

static void test_dmarc_reject_and_quarantine(void **state)
{
	(void)state;
	struct fx *f = fx_new("");
	struct milter_reply r;
	check_msg(f, "203.0.113.9", "ceo@bank.example",
		  "From: CEO <ceo@bank.example>\nSubject: wire\n\nsend money\n", NULL, &r);
	assert_int_equal(r.verdict, MILTER_REJECT);
	assert_string_equal(r.xcode, "5.7.1");
	assert_non_null(strstr(r.text, "DMARC policy for bank.example"));
	milter_reply_fini(&r);

	check_msg(f, "203.0.113.9", "sales@shop.example",
		  "From: sales@shop.example\nSubject: offer\n\nbuy\n", NULL, &r);
	assert_int_equal(r.verdict, MILTER_DISCARD);
	milter_reply_fini(&r);
	assert_int_equal(held(f, 0), 1);
	fx_free(f);
}

static void test_pass_and_forged_results(void **state)
{
	(void)state;
	struct fx *f = fx_new("");
	struct milter_reply r;
	check_msg(f, "127.0.0.1", "alice@good.example",
		  "Authentication-Results: other.example; spf=pass\n"
		  "Authentication-Results: mx.test; dmarc=pass\n"
		  "From: Alice <alice@good.example>\nSubject: hi\n\nhello\n",
		  NULL, &r);
	assert_int_equal(r.verdict, MILTER_ACCEPT);
	const struct milter_op *chg = find_op(&r, "Authentication-Results");
	assert_non_null(chg);
	/* First op: the forged one (the 2nd instance) deleted; then ours on top. */
	assert_int_equal(r.ops[0].kind, MILTER_OP_CHANGE);
	assert_int_equal(r.ops[0].index, 2);
	assert_string_equal(r.ops[0].value, "");
	const struct milter_op *ins = NULL;
	for (size_t i = 0; i < r.nops; i++)
		if (r.ops[i].kind == MILTER_OP_INSERT)
			ins = &r.ops[i];
	assert_non_null(ins);
	assert_int_equal(ins->index, 0);
	assert_non_null(strstr(ins->value, "mx.test"));
	assert_non_null(strstr(ins->value, "spf=pass"));
	assert_non_null(strstr(ins->value, "dkim=none"));
	/* SPF passes and aligns: DMARC passes without DKIM. */
	assert_non_null(strstr(ins->value, "dmarc=pass"));
	milter_reply_fini(&r);
	fx_free(f);
}

static void test_override_and_dns_failure(void **state)
{
	(void)state;
	struct fx *f = fx_new("  dmarc_overrides: [\"bank.example=none\"]\n");
	struct milter_reply r;
	check_msg(f, "203.0.113.9", "ceo@bank.example",
		  "From: ceo@bank.example\nSubject: wire\n\nsend\n", NULL, &r);
	assert_int_equal(r.verdict, MILTER_ACCEPT);
	const struct milter_op *tag = find_op(&r, "X-Mamori-Verdict");
	assert_non_null(tag);
	milter_reply_fini(&r);
	/* The DMARC record cannot be fetched: 4.7.1, never a reject. */
	check_msg(f, "203.0.113.9", "x@slow.example", "From: x@slow.example\n\nhi\n", NULL, &r);
	assert_int_equal(r.verdict, MILTER_TEMPFAIL);
	assert_string_equal(r.code, "451");
	milter_reply_fini(&r);
	fx_free(f);
}

static void test_multiple_from(void **state)
{
	(void)state;
	struct fx *f = fx_new("");
	struct milter_reply r;
	check_msg(f, "127.0.0.1", "alice@good.example",
		  "From: alice@good.example\nFrom: ceo@bank.example\nSubject: x\n\nhi\n", NULL, &r);
	assert_int_equal(r.verdict, MILTER_REJECT);
	assert_non_null(strstr(r.text, "From"));
	milter_reply_fini(&r);
	check_msg(f, "127.0.0.1", "alice@good.example",
		  "From: alice@good.example, ceo@bank.example\nSubject: x\n\nhi\n", NULL, &r);
	assert_int_equal(r.verdict, MILTER_REJECT);
	milter_reply_fini(&r);
	fx_free(f);
}

static void test_outbound_dlp_and_hold(void **state)
{
	(void)state;
	struct fx *f = fx_new("  local_domains: [good.example]\n  internal_networks: [10.0.0.0/8]\n");
	struct milter_reply r;
	/* A card number (Luhn-valid test number) leaving from the inside. */
	check_msg(f, "10.1.2.3", "alice@good.example",
		  "From: alice@good.example\nTo: x@outside.example\nSubject: card\n\n"
		  "my card is 4111 1111 1111 1111 thanks\n",
		  NULL, &r);
	assert_int_equal(r.verdict, MILTER_DISCARD);
	milter_reply_fini(&r);
	assert_int_equal(held(f, 1), 1);
	/* The same from outside is not outbound: no DLP. */
	check_msg(f, "127.0.0.1", "alice@good.example",
		  "From: alice@good.example\nSubject: card\n\n4111 1111 1111 1111\n", NULL, &r);
	assert_int_equal(r.verdict, MILTER_ACCEPT);
	milter_reply_fini(&r);
	fx_free(f);

	/* Digits hidden in HTML markup and entities are still seen. */
	f = fx_new("  internal_networks: [10.0.0.0/8]\n");
	check_msg(f, "10.1.2.3", "alice@good.example",
		  "From: alice@good.example\nSubject: x\nMIME-Version: 1.0\n"
		  "Content-Type: text/html\n\n<p>card <b>4111</b>&#32;1111 1111&nbsp;1111</p>\n",
		  NULL, &r);
	assert_int_equal(r.verdict, MILTER_DISCARD);
	milter_reply_fini(&r);
	fx_free(f);

	/* A pattern of our own. */
	f = fx_new("  internal_networks: [10.0.0.0/8]\n  dlp: reject\n"
		   "  dlp_patterns: [\"employee_id=EMP-[0-9]{6}\"]\n");
	check_msg(f, "10.1.2.3", "alice@good.example",
		  "From: alice@good.example\nSubject: list\n\nstaff: EMP-123456\n", NULL, &r);
	assert_int_equal(r.verdict, MILTER_REJECT);
	assert_non_null(strstr(r.text, "employee_id"));
	milter_reply_fini(&r);
	fx_free(f);

	/* Outbound hold: every authenticated sender's mail waits, and the
	 * sender gets the notice with the links and what to check. */
	struct smtp_sink sink;
	assert_int_equal(sink_start(&sink), 0);
	char yaml[256], addr[64];
	sink_addr(&sink, addr, sizeof(addr));
	snprintf(yaml, sizeof(yaml), "  outbound_hold: 10m\n  release_to: \"%s\"\n", addr);
	f = fx_new(yaml);
	check_msg(f, "198.51.100.7", "bob@good.example",
		  "From: bob@good.example\nTo: x@outside.example\nSubject: report\n\nhere\n", "bob",
		  &r);
	assert_int_equal(r.verdict, MILTER_DISCARD);
	milter_reply_fini(&r);
	assert_int_equal(held(f, 1), 1);
	/* The held copy carries who sent it. */
	{
		struct quarantine_filter qf = {.state = -1, .direction = 1};
		json_t *j = NULL;
		assert_int_equal(quarantine_list(mail_gw_quarantine(f->g), &qf, &j), 0);
		const char *qid = json_string_value(
			json_object_get(json_array_get(json_object_get(j, "messages"), 0), "id"));
		char *raw = NULL;
		size_t rl = 0;
		struct quarantine_meta qm;
		assert_int_equal(quarantine_get(mail_gw_quarantine(f->g), qid, &qm, &raw, &rl), 0);
		assert_non_null(strstr(raw, "auth=pass smtp.auth=bob"));
		free(raw);
		quarantine_meta_fini(&qm);
		json_decref(j);
	}
	pthread_mutex_lock(&sink.mu);
	assert_int_equal(sink.messages, 1);
	assert_string_equal(sink.rcpt[0], "<bob@good.example>");
	buf_cstr(&sink.data);
	assert_non_null(strstr(sink.data.p, "/cancel?token="));
	assert_non_null(strstr(sink.data.p, "Please check:"));
	assert_non_null(strstr(sink.data.p, "first-time external recipient"));
	pthread_mutex_unlock(&sink.mu);
	sink_stop(&sink);
	char act[16];
	assert_string_equal(held_expiry(f, 1, act, sizeof(act)), "send");
	fx_free(f);

	/* The administrator's choice: a hold nobody acted on is deleted. */
	f = fx_new("  outbound_hold: 10m\n  outbound_hold_expiry: delete\n");
	check_msg(f, "198.51.100.7", "bob@good.example",
		  "From: bob@good.example\nTo: x@outside.example\nSubject: report\n\nhere\n", "bob",
		  &r);
	assert_int_equal(r.verdict, MILTER_DISCARD);
	milter_reply_fini(&r);
	assert_string_equal(held_expiry(f, 1, act, sizeof(act)), "delete");
	fx_free(f);
}

static void test_bec_display_name(void **state)
{
	(void)state;
	struct fx *f = fx_new("  local_domains: [test.local]\n"
			      "  protected_names: [\"Taro Yamada <taro@test.local>\"]\n");
	struct milter_reply r;
	check_msg(f, "127.0.0.1", "alice@good.example",
		  "From: Taro Yamada <alice@good.example>\nReply-To: pay@elsewhere.example\n"
		  "Subject: urgent\n\npay now\n",
		  NULL, &r);
	/* Display name (60) + Reply-To elsewhere: past score_quarantine (50). */
	assert_int_equal(r.verdict, MILTER_DISCARD);
	milter_reply_fini(&r);
	assert_int_equal(held(f, 0), 1);
	fx_free(f);
}

/* ARC: a message from bank.example forwarded through fwd.example, which
 * broke SPF; the forwarder sealed it. Trusted: delivered; not: rejected. */
static void test_arc_trusted_forwarder(void **state)
{
	(void)state;
	struct tkey k;
	tkey_make(&k, EVP_PKEY_ED25519, 0);
	char err[128];
	struct dkim_signer *s = dkim_signer_new("fwd.example", "arc", k.pem, k.pem_len, NULL, err,
						sizeof(err));
	assert_non_null(s);
	const char *rec = k.rec;
	const char *text = "From: CEO <ceo@bank.example>\r\nTo: list@fwd.example\r\n"
			   "Subject: minutes\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\nhello\r\n";
	int perr;
	struct msg *m = msg_parse(text, strlen(text), &perr, NULL);
	char *aar = NULL, *ams = NULL, *as = NULL;
	assert_int_equal(arc_seal(s, m, "fwd.example", "spf=pass smtp.mailfrom=bank.example",
				  ARC_NONE, time(NULL), &aar, &ams, &as),
			 0);
	struct buf b;
	buf_init(&b, 1 << 16);
	buf_printf(&b, "ARC-Seal: %s\r\nARC-Message-Signature: %s\r\n"
		       "ARC-Authentication-Results: %s\r\n%s",
		   as, ams, aar, text);
	buf_cstr(&b);
	for (int trusted = 0; trusted < 2; trusted++) {
		struct fx *f = fx_new(trusted ? "  arc_trusted: [fwd.example]\n" : "");
		zone(f->z, "arc._domainkey.fwd.example", rec);
		struct milter_reply r;
		check_msg(f, "203.0.113.9", "ceo@bank.example", b.p, NULL, &r);
		if (r.verdict != (trusted ? MILTER_ACCEPT : MILTER_REJECT))
			fprintf(stderr, "arc case %d: verdict %d %s\n", trusted, r.verdict, r.text);
		assert_int_equal(r.verdict, trusted ? MILTER_ACCEPT : MILTER_REJECT);
		if (trusted) {
			const struct milter_op *ar = NULL;
			for (size_t i = 0; i < r.nops; i++)
				if (r.ops[i].kind == MILTER_OP_INSERT)
					ar = &r.ops[i];
			assert_non_null(ar);
			assert_non_null(strstr(ar->value, "arc=pass"));
		}
		milter_reply_fini(&r);
		fx_free(f);
	}
	buf_fini(&b);
	free(aar);
	free(ams);
	free(as);
	msg_free(m);
	dkim_signer_free(s);
	tkey_free(&k);
}

static void test_outbound_many_recipients(void **state)
{
	(void)state;
	struct fx *f = fx_new("  local_domains: [good.example]\n  internal_networks: [10.0.0.0/8]\n"
			      "  outbound_max_external: 1\n");
	struct milter_session s;
	memset(&s, 0, sizeof(s));
	s.af = AF_INET;
	inet_pton(AF_INET, "10.0.0.5", s.ip);
	snprintf(s.mail_from, sizeof(s.mail_from), "alice@good.example");
	char *rcpt[3] = {(char *)"a@one.example", (char *)"b@two.example", (char *)"c@good.example"};
	s.rcpt = rcpt;
	s.nrcpt = 3;
	const char *t = "From: alice@good.example\nTo: a@one.example, b@two.example\n"
			"Cc: c@good.example\nSubject: party\n\nhi\n";
	int err;
	s.m = msg_parse(t, strlen(t), &err, NULL);
	struct milter_reply r;
	memset(&r, 0, sizeof(r));
	mail_gw_check(f->g, &s, &r);
	assert_int_equal(r.verdict, MILTER_ACCEPT);
	int del_to = 0, del_cc = 0, add_to = 0, tag = 0;
	for (size_t i = 0; i < r.nops; i++) {
		const struct milter_op *o = &r.ops[i];
		del_to += o->kind == MILTER_OP_CHANGE && !strcmp(o->name, "To") && !o->value[0];
		del_cc += o->kind == MILTER_OP_CHANGE && !strcmp(o->name, "Cc") && !o->value[0];
		add_to += o->kind == MILTER_OP_ADD && !strcmp(o->name, "To") &&
			  strstr(o->value, "undisclosed-recipients");
		tag += !strcmp(o->name, "X-Mamori-Verdict");
		if (o->kind == MILTER_OP_INSERT && !strcmp(o->name, "Authentication-Results"))
			assert_non_null(strstr(o->value, "iprev=pass (internal network)"));
	}
	assert_int_equal(del_to, 1);
	assert_int_equal(del_cc, 1);
	assert_int_equal(add_to, 1);
	assert_int_equal(tag, 0); /* nothing of ours leaks out on outbound mail */
	milter_reply_fini(&r);
	msg_free(s.m);
	fx_free(f);

	f = fx_new("  local_domains: [good.example]\n  internal_networks: [10.0.0.0/8]\n"
		   "  outbound_max_external: 1\n  outbound_external_action: quarantine\n");
	check_msg(f, "10.0.0.5", "alice@good.example", t, NULL, &r);
	/* One envelope recipient here: under the limit. */
	assert_int_equal(r.verdict, MILTER_ACCEPT);
	milter_reply_fini(&r);
	memset(&s, 0, sizeof(s));
	s.af = AF_INET;
	inet_pton(AF_INET, "10.0.0.5", s.ip);
	snprintf(s.mail_from, sizeof(s.mail_from), "alice@good.example");
	s.rcpt = rcpt;
	s.nrcpt = 3;
	s.m = msg_parse(t, strlen(t), &err, NULL);
	memset(&r, 0, sizeof(r));
	mail_gw_check(f->g, &s, &r);
	assert_int_equal(r.verdict, MILTER_DISCARD);
	milter_reply_fini(&r);
	msg_free(s.m);
	assert_int_equal(held(f, 1), 1);
	fx_free(f);
}

/* Relaying with mail.arc_seal: the three ARC fields go on top and the
 * message with them validates (cv=pass) against our key. */
static void test_arc_seal_on_relay(void **state)
{
	(void)state;
	char keyfile[] = "/tmp/mamori-arckey.XXXXXX";
	int fd = mkstemp(keyfile);
	assert_true(fd >= 0);
	struct tkey k;
	tkey_make(&k, EVP_PKEY_ED25519, 0);
	assert_int_equal(write(fd, k.pem, k.pem_len), (ssize_t)k.pem_len);
	close(fd);
	char yaml[512];
	const char *rec = k.rec;
	snprintf(yaml, sizeof(yaml),
		 "  dkim_domain: relay.example\n  dkim_selector: arc\n  dkim_key: %s\n"
		 "  arc_seal: true\n",
		 keyfile);
	struct fx *f = fx_new(yaml);
	zone(f->z, "arc._domainkey.relay.example", rec);
	const char *t = "From: Alice <alice@good.example>\r\nTo: list@relay.example\r\n"
			"Subject: hello\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\nbody\r\n";
	struct milter_reply r;
	check_msg(f, "127.0.0.1", "alice@good.example", t, NULL, &r);
	assert_int_equal(r.verdict, MILTER_ACCEPT);
	int err;
	struct msg *m = msg_parse(t, strlen(t), &err, NULL);
	int n = 0;
	for (size_t i = 0; i < r.nops; i++) {
		if (r.ops[i].kind != MILTER_OP_INSERT || strncmp(r.ops[i].name, "ARC-", 4))
			continue;
		assert_int_equal(msg_prepend_header(m, r.ops[i].name, r.ops[i].value), 0);
		n++;
	}
	assert_int_equal(n, 3);
	assert_true(msg_hdr_is(m, 0, "ARC-Seal"));
	struct arc_verify_out av;
	assert_int_equal(arc_verify(f->z, m, time(NULL), &av), 0);
	assert_int_equal(av.cv, ARC_PASS);
	assert_string_equal(av.domains[0], "relay.example");
	msg_free(m);
	milter_reply_fini(&r);
	fx_free(f);
	tkey_free(&k);
	unlink(keyfile);
}

/* Aggregate reports: three messages of good.example counted, the day ends,
 * one gzipped XML report goes to its rua; a rua outside the domain without
 * its _report._dmarc record gets nothing; a second tick sends nothing. */
static void test_dmarc_aggregate_report(void **state)
{
	(void)state;
	struct smtp_sink sink;
	assert_int_equal(sink_start(&sink), 0);
	char addr[64], yaml[256];
	sink_addr(&sink, addr, sizeof(addr));
	snprintf(yaml, sizeof(yaml), "  release_to: \"%s\"\n  dmarc_report_org: Test Org\n", addr);
	struct fx *f = fx_new(yaml);
	zone(f->z, "_dmarc.rep.example",
	     "v=DMARC1; p=none; rua=mailto:agg@rep.example,mailto:x@elsewhere.example");
	zone(f->z, "rep.example", "v=spf1 ip4:127.0.0.0/8 -all");
	struct milter_reply r;
	for (int i = 0; i < 3; i++) {
		check_msg(f, "127.0.0.1", "a@rep.example", "From: a@rep.example\nSubject: x\n\nhi\n",
			  NULL, &r);
		assert_int_equal(r.verdict, MILTER_ACCEPT);
		milter_reply_fini(&r);
	}
	time_t now = time(NULL);
	assert_int_equal(mail_gw_dmarc_tick(f->g, now), 0); /* the day is not over */
	assert_int_equal(mail_gw_dmarc_tick(f->g, now + 86400), 1);
	pthread_mutex_lock(&sink.mu);
	assert_int_equal(sink.messages, 1);
	assert_string_equal(sink.rcpt[0], "<agg@rep.example>");
	buf_cstr(&sink.data);
	char *att = strstr(sink.data.p, "filename=\"Test Org!rep.example!");
	assert_non_null(att);
	char *b64 = strstr(att, "\r\n\r\n");
	assert_non_null(b64);
	b64 += 4;
	/* Base64 lines until the closing boundary. */
	unsigned char gz[8192];
	size_t gl = 0;
	for (char *line = b64; strncmp(line, "--", 2) != 0;) {
		char *eol = strstr(line, "\r\n");
		assert_non_null(eol);
		int n = EVP_DecodeBlock(gz + gl, (const unsigned char *)line, (int)(eol - line));
		assert_true(n >= 0);
		gl += (size_t)n;
		while (eol - line > 0 && line[eol - line - 1] == '=') {
			gl--;
			line[eol - line - 1] = 0;
		}
		line = eol + 2;
	}
	pthread_mutex_unlock(&sink.mu);
	unsigned char xml[65536];
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	assert_int_equal(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
	zs.next_in = gz;
	zs.avail_in = (uInt)gl;
	zs.next_out = xml;
	zs.avail_out = sizeof(xml) - 1;
	assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
	xml[zs.total_out] = 0;
	inflateEnd(&zs);
	assert_non_null(strstr((char *)xml, "<domain>rep.example</domain>"));
	assert_non_null(strstr((char *)xml, "<count>3</count>"));
	assert_non_null(strstr((char *)xml, "<org_name>Test Org</org_name>"));
	/* Sent once. */
	assert_int_equal(mail_gw_dmarc_tick(f->g, now + 86400), 0);
	fx_free(f);
	sink_stop(&sink);
}

/* YARA over the decoded parts, and an executable by content under a
 * harmless name. */
static void test_yara_and_attachments(void **state)
{
	(void)state;
	char dir[] = "/tmp/mamori-yara.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128], yaml[256];
	snprintf(path, sizeof(path), "%s/t.yar", dir);
	FILE *fp = fopen(path, "w");
	fprintf(fp, "rule Targeted_Dropper : apt { strings: $a = \"EVIL-MARKER-123\" condition: $a }\n");
	fclose(fp);
	snprintf(yaml, sizeof(yaml), "  yara_rules: %s\n", dir);
	struct fx *f = fx_new(yaml);
	struct milter_reply r;
	/* The marker base64-encoded in an attachment: found after decoding. */
	check_msg(f, "127.0.0.1", "a@good.example",
		  "From: a@good.example\nMIME-Version: 1.0\n"
		  "Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nhi\n"
		  "--B\nContent-Type: application/octet-stream\nContent-Disposition: attachment; "
		  "filename=a.txt\nContent-Transfer-Encoding: base64\n\nRVZJTC1NQVJLRVItMTIz\n--B--\n",
		  NULL, &r);
	assert_int_equal(r.verdict, MILTER_REJECT);
	assert_non_null(strstr(r.text, "Targeted_Dropper"));
	milter_reply_fini(&r);
	/* A PE under a .pdf name: refused by content (attach_executable). */
	check_msg(f, "127.0.0.1", "a@good.example",
		  "From: a@good.example\nMIME-Version: 1.0\n"
		  "Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nhi\n"
		  "--B\nContent-Type: application/pdf\nContent-Disposition: attachment; "
		  "filename=invoice.pdf\nContent-Transfer-Encoding: base64\n\n"
		  "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAgAAAAA4fug4AtAnNIbgBTM0hVGhpcyBwcm9ncmFtIGNhbm5vdCBiZSBydW4gaW4gRE9TIG1vZGUuDQ0KJAAAAAAAAABQRQAATAEDAA==\n"
		  "--B--\n",
		  NULL, &r);
	assert_int_equal(r.verdict, MILTER_REJECT);
	assert_non_null(strstr(r.text, "invoice.pdf"));
	milter_reply_fini(&r);
	fx_free(f);
	unlink(path);
	rmdir(dir);
}

/* Outbound signing with a key per domain: each From domain signed with its
 * own key, the signature verifies; a domain without a key is not signed. */
static void test_dkim_sign_per_domain(void **state)
{
	(void)state;
	struct tkey ka, kb;
	tkey_make(&ka, EVP_PKEY_ED25519, 0);
	tkey_make(&kb, EVP_PKEY_RSA, 2048);
	char pa[] = "/tmp/mamori-dkimA.XXXXXX", pb[] = "/tmp/mamori-dkimB.XXXXXX";
	int fa = mkstemp(pa), fb = mkstemp(pb);
	assert_int_equal(write(fa, ka.pem, ka.pem_len), (ssize_t)ka.pem_len);
	assert_int_equal(write(fb, kb.pem, kb.pem_len), (ssize_t)kb.pem_len);
	close(fa);
	close(fb);
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
		 "  internal_networks: [10.0.0.0/8]\n"
		 "  dkim_keys: [\"a.example:s1:%s\", \"b.example:s2:%s\"]\n", pa, pb);
	struct fx *f = fx_new(yaml);
	zone(f->z, "s1._domainkey.a.example", ka.rec);
	zone(f->z, "s2._domainkey.b.example", kb.rec);
	static const char *const doms[] = {"a.example", "b.example", "c.example"};
	for (int i = 0; i < 3; i++) {
		char text[256];
		snprintf(text, sizeof(text),
			 "From: x@%s\r\nTo: y@outside.example\r\nSubject: hi\r\n"
			 "Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\nbody\r\n",
			 doms[i]);
		struct milter_reply r;
		check_msg(f, "10.0.0.1", "x@a.example", text, NULL, &r);
		assert_int_equal(r.verdict, MILTER_ACCEPT);
		const struct milter_op *sig = find_op(&r, "DKIM-Signature");
		if (i == 2) {
			assert_null(sig);
		} else {
			assert_non_null(sig);
			int err;
			struct msg *m = msg_parse(text, strlen(text), &err, NULL);
			assert_int_equal(msg_prepend_header(m, "DKIM-Signature", sig->value), 0);
			struct dkim_verify_out out;
			assert_int_equal(dkim_verify(f->z, m, time(NULL), &out), 0);
			assert_int_equal(out.n, 1);
			assert_int_equal(out.sig[0].result, DKIM_PASS);
			assert_string_equal(out.sig[0].d, doms[i]);
			msg_free(m);
		}
		milter_reply_fini(&r);
	}
	fx_free(f);
	unlink(pa);
	unlink(pb);
	tkey_free(&ka);
	tkey_free(&kb);
}

static void test_bad_settings(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"mail:\n  attach_script: maybe\n",
		"mail:\n  dns_failure: ignore\n",
		"mail:\n  score_quarantine: 50\n  score_reject: 10\n",
		"mail:\n  dmarc_overrides: [\"nodomain\"]\n",
		"mail:\n  dkim_domain: a.example\n",
		"mail:\n  outbound_external_action: drop\n",
		"mail:\n  dlp_patterns: [\"noequals\"]\n",
		"mail:\n  outbound_hold_expiry: later\n",
		"mail:\n  dkim_keys: [\"a.example:/k.pem\"]\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct conf_doc doc = {0};
		struct buf err;
		buf_init(&err, 4096);
		assert_int_equal(conf_parse("t.yaml", bad[i], strlen(bad[i]), &doc, &err), 0);
		struct mail_config cfg;
		assert_true(mail_config_load(&doc, &cfg, &err) < 0);
		buf_cstr(&err);
		assert_non_null(strstr(err.p, "mail."));
		mail_config_free(&cfg);
		conf_doc_fini(&doc);
		buf_fini(&err);
	}
}

int main(int argc, char **argv)
{
	hs_child_exec_self(argc > 1 ? argv[1] : NULL);
	log_set_level(LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dmarc_reject_and_quarantine),
		cmocka_unit_test(test_pass_and_forged_results),
		cmocka_unit_test(test_override_and_dns_failure),
		cmocka_unit_test(test_multiple_from),
		cmocka_unit_test(test_outbound_dlp_and_hold),
		cmocka_unit_test(test_bec_display_name),
		cmocka_unit_test(test_arc_trusted_forwarder),
		cmocka_unit_test(test_outbound_many_recipients),
		cmocka_unit_test(test_arc_seal_on_relay),
		cmocka_unit_test(test_dmarc_aggregate_report),
		cmocka_unit_test(test_yara_and_attachments),
		cmocka_unit_test(test_dkim_sign_per_domain),
		cmocka_unit_test(test_bad_settings),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	metrics_fini();
	return rc;
}
