/*
 * The milter protocol, the message representation and the in-memory DNS the
 * mail engines share: packets fed to the state machine as Postfix sends
 * them, the replies checked byte by byte; then the same conversation over a
 * real loopback socket to the listener; msg_parse / msg_add_* on hostile
 * shapes; the zone's NXDOMAIN / NODATA / TIMEOUT / CNAME answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/metrics.h"
#include "mail/mdns.h"
#include "mail/milter.h"
#include "mail/msg.h"

/* ---- a packet builder ---- */

struct pk {
	uint8_t d[4096];
	size_t n;
};

static void pk_str(struct pk *p, const char *s)
{
	size_t l = strlen(s) + 1;
	memcpy(p->d + p->n, s, l);
	p->n += l;
}

static void pk_u32(struct pk *p, uint32_t v)
{
	uint32_t be = htonl(v);
	memcpy(p->d + p->n, &be, 4);
	p->n += 4;
}

/* What the eom hook saw, and what it answers. */
struct seen {
	char from[512], rcpt0[512], helo[256], ip[64], subject[128], qid[32];
	size_t nrcpt, nhdr, body_len;
	int too_big;
	char first_hdr_raw[128];
	char body[256];
};

static void hook_eom(void *arg, const struct milter_session *s, struct milter_reply *r)
{
	struct seen *w = arg;
	snprintf(w->from, sizeof(w->from), "%s", s->mail_from);
	snprintf(w->rcpt0, sizeof(w->rcpt0), "%s", s->nrcpt ? s->rcpt[0] : "");
	snprintf(w->helo, sizeof(w->helo), "%s", s->helo);
	snprintf(w->ip, sizeof(w->ip), "%s", s->client_ip);
	const char *q = milter_macro(s, "i");
	snprintf(w->qid, sizeof(w->qid), "%s", q ? q : "");
	w->nrcpt = s->nrcpt;
	w->nhdr = s->m->nhdr;
	w->too_big = s->too_big;
	w->body_len = s->m->body_len;
	snprintf(w->body, sizeof(w->body), "%.*s", (int)s->m->body_len, s->m->body ? s->m->body : "");
	if (s->m->nhdr)
		snprintf(w->first_hdr_raw, sizeof(w->first_hdr_raw), "%.*s", (int)s->m->hdr[0].len,
			 s->m->hdr[0].raw);
	long i = msg_find(s->m, "Subject", 0);
	w->subject[0] = '\0';
	if (i >= 0) {
		char *v = msg_hdr_unfolded(s->m, (size_t)i);
		snprintf(w->subject, sizeof(w->subject), "%s", v);
		free(v);
	}
	milter_reply_op(r, MILTER_OP_INSERT, 0, "Authentication-Results", "mx.test; spf=pass");
	milter_reply_op(r, MILTER_OP_CHANGE, 1, "X-Old", "");
	if (strstr(w->subject, "reject")) {
		r->verdict = MILTER_REJECT;
		snprintf(r->text, sizeof(r->text), "DMARC policy says reject\r\n100%%");
	}
}

/* Feeds one packet; returns the reply bytes in out. */
static int feed(struct milter_conn *c, uint8_t cmd, const struct pk *p, struct buf *out)
{
	buf_reset(out);
	return milter_conn_packet(c, cmd, p ? p->d : NULL, p ? p->n : 0, out);
}

/* Walks reply packets: returns the command of the k-th one and its data. */
static int reply_at(const struct buf *out, unsigned k, const uint8_t **data, size_t *len)
{
	size_t at = 0;
	for (unsigned i = 0; at + 5 <= out->len; i++) {
		uint32_t l;
		memcpy(&l, out->p + at, 4);
		l = ntohl(l);
		if (i == k) {
			*data = (const uint8_t *)out->p + at + 5;
			*len = l - 1;
			return (uint8_t)out->p[at + 4];
		}
		at += 4 + l;
	}
	return -1;
}

static void conversation(struct milter_conn *c, struct seen *w, const char *subject, struct buf *out)
{
	struct pk p = {.n = 0};
	p.n = 0;
	pk_u32(&p, 6);
	pk_u32(&p, SMFI_CURR_ACTS);
	pk_u32(&p, SMFI_CURR_PROT);
	assert_int_equal(feed(c, SMFIC_OPTNEG, &p, out), 0);
	const uint8_t *d = NULL;
	size_t l = 0;
	assert_int_equal(reply_at(out, 0, &d, &l), SMFIC_OPTNEG);
	assert_int_equal(l, 12);
	uint32_t proto;
	memcpy(&proto, d + 8, 4);
	proto = ntohl(proto);
	assert_true(proto & SMFIP_HDR_LEADSPC);
	assert_true(proto & SMFIP_NR_HDR);

	p.n = 0;
	pk_str(&p, "mail.example.org");
	p.d[p.n++] = SMFIA_INET;
	p.d[p.n++] = 0x30;
	p.d[p.n++] = 0x39;
	pk_str(&p, "192.0.2.7");
	assert_int_equal(feed(c, SMFIC_CONNECT, &p, out), 0);
	assert_int_equal(out->len, 0); /* no reply: NR_CONN */
	p.n = 0;
	pk_str(&p, "mail.example.org");
	feed(c, SMFIC_HELO, &p, out);
	p.n = 0;
	p.d[p.n++] = SMFIC_MAIL;
	pk_str(&p, "i");
	pk_str(&p, "4XyzQ1");
	assert_int_equal(feed(c, SMFIC_MACRO, &p, out), 0);
	p.n = 0;
	pk_str(&p, "<alice@example.org>");
	pk_str(&p, "SIZE=100");
	feed(c, SMFIC_MAIL, &p, out);
	p.n = 0;
	pk_str(&p, "<bob@test.local>");
	feed(c, SMFIC_RCPT, &p, out);
	p.n = 0;
	pk_str(&p, "From");
	pk_str(&p, " Alice <alice@example.org>");
	feed(c, SMFIC_HEADER, &p, out);
	p.n = 0;
	pk_str(&p, "Subject");
	pk_str(&p, subject);
	feed(c, SMFIC_HEADER, &p, out);
	feed(c, SMFIC_EOH, NULL, out);
	p.n = 0;
	memcpy(p.d, "hello\r\nworld\r\n", 14);
	p.n = 14;
	feed(c, SMFIC_BODY, &p, out);
	assert_int_equal(out->len, 0);
	assert_int_equal(feed(c, SMFIC_BODYEOB, NULL, out), 0);
	(void)w;
}

static void test_milter_conversation(void **state)
{
	(void)state;
	struct seen w;
	memset(&w, 0, sizeof(w));
	struct milter_hooks h = {&w, hook_eom};
	struct milter_conn *c = milter_conn_new(&h, 0, 1);
	struct buf out;
	buf_init(&out, 1 << 20);
	conversation(c, &w, " folded\n\tsubject", &out);
	assert_string_equal(w.from, "alice@example.org");
	assert_string_equal(w.rcpt0, "bob@test.local");
	assert_string_equal(w.helo, "mail.example.org");
	assert_string_equal(w.ip, "192.0.2.7");
	assert_string_equal(w.qid, "4XyzQ1");
	assert_string_equal(w.subject, "folded\tsubject");
	assert_string_equal(w.first_hdr_raw, "From: Alice <alice@example.org>\r\n");
	assert_int_equal(w.nhdr, 2);
	assert_string_equal(w.body, "hello\r\nworld\r\n");
	const uint8_t *d = NULL;
	size_t l = 0;
	assert_int_equal(reply_at(&out, 0, &d, &l), SMFIR_INSHEADER);
	assert_int_equal(d[3], 0); /* index 0 */
	assert_string_equal((const char *)d + 4, "Authentication-Results");
	assert_string_equal((const char *)d + 4 + 23, " mx.test; spf=pass");
	assert_int_equal(reply_at(&out, 1, &d, &l), SMFIR_CHGHEADER);
	assert_int_equal(d[3], 1);
	assert_int_equal(reply_at(&out, 2, &d, &l), SMFIR_ACCEPT);

	/* Second message on the same connection: a reject with a reply code,
	 * CR/LF removed from the text and % doubled. */
	conversation(c, &w, " please reject", &out);
	assert_int_equal(reply_at(&out, 2, &d, &l), SMFIR_REPLYCODE);
	assert_string_equal((const char *)d, "550 5.7.1 DMARC policy says reject  100%%");
	/* QUIT ends. */
	assert_int_equal(feed(c, SMFIC_QUIT, NULL, &out), 1);
	buf_fini(&out);
	milter_conn_free(c);
}

static void test_milter_bad_packets(void **state)
{
	(void)state;
	struct seen w;
	struct milter_hooks h = {&w, hook_eom};
	struct milter_conn *c = milter_conn_new(&h, 64, 1);
	struct buf out;
	buf_init(&out, 1 << 20);
	struct pk p = {.n = 0};
	/* Short OPTNEG, unknown command, header without its NUL. */
	pk_u32(&p, 6);
	assert_int_equal(feed(c, SMFIC_OPTNEG, &p, &out), M_EPARSE);
	assert_int_equal(feed(c, 'Z', NULL, &out), M_EPARSE);
	p.n = 0;
	memcpy(p.d, "From", 4);
	p.n = 4;
	assert_int_equal(feed(c, SMFIC_HEADER, &p, &out), M_EPARSE);
	/* A message past max_msg_bytes is marked too big, not stored. */
	p.n = 0;
	pk_str(&p, "Subject");
	pk_str(&p, " x");
	assert_int_equal(feed(c, SMFIC_HEADER, &p, &out), 0);
	p.n = 0;
	memset(p.d, 'a', 100);
	p.n = 100;
	assert_int_equal(feed(c, SMFIC_BODY, &p, &out), 0);
	memset(&w, 0, sizeof(w));
	assert_int_equal(feed(c, SMFIC_BODYEOB, NULL, &out), 0);
	assert_int_equal(w.too_big, 1);
	assert_int_equal(w.body_len, 0);
	buf_fini(&out);
	milter_conn_free(c);
}

/* The listener over a real loopback socket. */
static void test_milter_socket(void **state)
{
	(void)state;
	struct seen w;
	memset(&w, 0, sizeof(w));
	struct milter_hooks h = {&w, hook_eom};
	struct milter_conf conf = {"127.0.0.1:0", 4, 5, 0};
	char err[256];
	struct milter *m = milter_new(&conf, &h, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(milter_start(m), 0);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)milter_port(m))};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	struct pk p = {.n = 0};
	uint8_t wire[64];
	pk_u32(&p, 6);
	pk_u32(&p, SMFI_CURR_ACTS);
	pk_u32(&p, SMFI_CURR_PROT);
	uint32_t l = htonl((uint32_t)p.n + 1);
	memcpy(wire, &l, 4);
	wire[4] = SMFIC_OPTNEG;
	memcpy(wire + 5, p.d, p.n);
	assert_int_equal(write(fd, wire, 5 + p.n), (ssize_t)(5 + p.n));
	uint8_t rep[17];
	size_t got = 0;
	while (got < sizeof(rep)) {
		ssize_t r = read(fd, rep + got, sizeof(rep) - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_int_equal(rep[4], SMFIC_OPTNEG);
	/* A packet claiming 16 MiB: the milter closes the connection. */
	l = htonl(16u << 20);
	memcpy(wire, &l, 4);
	assert_int_equal(write(fd, wire, 4), 4);
	assert_int_equal(read(fd, rep, 1), 0);
	close(fd);
	milter_stop(m);
	milter_free(m);
}

static void test_msg_parse(void **state)
{
	(void)state;
	int err;
	size_t line;
	const char *t = "From: a@b\nSubject: one\n two\nX: y\n\nbody\nline\n";
	struct msg *m = msg_parse(t, strlen(t), &err, &line);
	assert_non_null(m);
	assert_int_equal(m->nhdr, 3);
	assert_string_equal(m->hdr[1].raw, "Subject: one\r\n two\r\n");
	assert_string_equal(m->body, "body\r\nline\r\n");
	char *u = msg_hdr_unfolded(m, 1);
	assert_string_equal(u, "one two");
	free(u);
	assert_int_equal(msg_count(m, "subject"), 1);
	assert_int_equal(msg_prepend_header(m, "Authentication-Results", " x; none"), 0);
	assert_true(msg_hdr_is(m, 0, "authentication-results"));
	msg_remove_header(m, 0);
	size_t len;
	char *r = msg_render(m, &len);
	assert_string_equal(r, "From: a@b\r\nSubject: one\r\n two\r\nX: y\r\n\r\nbody\r\nline\r\n");
	free(r);
	/* Body chunks with a CR at a chunk's end. */
	assert_int_equal(msg_add_body(m, "x\r", 2), 0);
	assert_int_equal(msg_add_body(m, "\ny\rz", 4), 0);
	assert_string_equal(m->body, "body\r\nline\r\nx\r\ny\r\nz");
	msg_free(m);
	/* Hostile: a continuation first, a line without a colon. */
	assert_null(msg_parse(" x: y\n", 6, &err, &line));
	assert_int_equal(err, MSG_E_SYNTAX);
	assert_null(msg_parse("a: b\nnocolon\n", 13, &err, &line));
	assert_int_equal(line, 2);
	/* Too many header fields. */
	struct buf b;
	buf_init(&b, 1 << 20);
	for (int i = 0; i < MSG_MAX_HEADERS + 1; i++)
		buf_puts(&b, "X: y\n");
	assert_null(msg_parse(b.p, b.len, &err, &line));
	assert_int_equal(err, MSG_E_LIMIT);
	buf_fini(&b);
}

static void test_mdns_zone(void **state)
{
	(void)state;
	struct mdns *z = mdns_zone_new();
	assert_int_equal(mdns_zone_add_txt(z, "Example.ORG.", "v=spf1 -all", 11), 0);
	assert_int_equal(mdns_zone_add_addr(z, "example.org", "192.0.2.1"), 0);
	assert_int_equal(mdns_zone_add_addr(z, "example.org", "2001:db8::1"), 0);
	assert_int_equal(mdns_zone_add_mx(z, "example.org", 10, "mx.example.org."), 0);
	assert_int_equal(mdns_zone_add_name(z, "alias.example.org", MDNS_CNAME, "example.org"), 0);
	assert_int_equal(mdns_zone_set_timeout(z, "slow.example.org"), 0);
	assert_int_equal(mdns_zone_add_addr(z, "x", "not-an-ip"), -1);
	struct mdns_answer a;
	assert_int_equal(mdns_query(z, "example.org", MDNS_TXT, &a), MDNS_OK);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.rr[0].data, "v=spf1 -all");
	mdns_answer_fini(&a);
	assert_int_equal(mdns_query(z, "alias.example.org", MDNS_AAAA, &a), MDNS_OK);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.rr[0].addr[15], 1);
	mdns_answer_fini(&a);
	assert_int_equal(mdns_query(z, "example.org", MDNS_PTR, &a), MDNS_OK);
	assert_int_equal(a.n, 0); /* NODATA */
	mdns_answer_fini(&a);
	assert_int_equal(mdns_query(z, "nope.example.org", MDNS_A, &a), MDNS_NXDOMAIN);
	mdns_answer_fini(&a);
	assert_int_equal(mdns_query(z, "slow.example.org", MDNS_TXT, &a), MDNS_TEMPFAIL);
	mdns_answer_fini(&a);
	assert_int_equal(mdns_query(z, "a..b", MDNS_TXT, &a), MDNS_BADNAME);
	mdns_answer_fini(&a);
	char label[80];
	memset(label, 'a', 64);
	label[64] = '\0';
	assert_int_equal(mdns_query(z, label, MDNS_TXT, &a), MDNS_BADNAME);
	mdns_answer_fini(&a);
	assert_int_equal(mdns_zone_queries(z), 5);
	mdns_free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_milter_conversation),
		cmocka_unit_test(test_milter_bad_packets),
		cmocka_unit_test(test_milter_socket),
		cmocka_unit_test(test_msg_parse),
		cmocka_unit_test(test_mdns_zone),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	metrics_fini();
	return rc;
}
