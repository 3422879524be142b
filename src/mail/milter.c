/*
 * milter: the milter protocol, server side (see milter.h for why it is not
 * libmilter). Packets are "uint32 length, command byte, data"; the MTA
 * drives, the filter answers only where an answer is due. We negotiate
 * version 6, ask the MTA not to wait for answers to the steps we never act
 * on (SMFIP_NR_*), to keep the space after a header's colon
 * (SMFIP_HDR_LEADSPC, so DKIM's simple canonicalization sees the bytes as
 * sent), and decide once, at the end of the message.
 */
#include "mail/milter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmilter/mfapi.h> /* SMFIF_* action flags */
#include <libmilter/mfdef.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "ingest/listen.h"

#define MILTER_MAX_PACKET (1024u * 1024u + 1u)

/* The steps we never answer one by one, and what we never need. */
#define WANT_NR (SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR | \
		 SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_NR_UNKN | SMFIP_NR_DATA)
#define WANT_NO (SMFIP_NOUNKNOWN | SMFIP_NODATA)
#define WANT_ACTS (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE | SMFIF_ADDRCPT | SMFIF_DELRCPT)

struct milter_conn {
	struct milter_hooks hooks;
	size_t max_msg_bytes;
	uint32_t proto; /* negotiated protocol flags */
	uint32_t acts;
	int negotiated;
	size_t msg_bytes;
	struct milter_session s;
};

/* ---- session state ---- */

static void free_macros(struct milter_session *s)
{
	for (size_t i = 0; i < s->nmacros; i++) {
		free(s->macro_name[i]);
		free(s->macro_value[i]);
	}
	s->nmacros = 0;
}

static void reset_message(struct milter_conn *c)
{
	struct milter_session *s = &c->s;
	for (size_t i = 0; i < s->nrcpt; i++)
		free(s->rcpt[i]);
	free(s->rcpt);
	s->rcpt = NULL;
	s->nrcpt = 0;
	s->mail_from[0] = '\0';
	msg_free(s->m);
	s->m = NULL;
	s->too_big = 0;
	c->msg_bytes = 0;
}

static void reset_connection(struct milter_conn *c)
{
	reset_message(c);
	free_macros(&c->s);
	unsigned long id = c->s.conn_id;
	memset(&c->s, 0, sizeof(c->s));
	c->s.conn_id = id;
}

const char *milter_macro(const struct milter_session *s, const char *name)
{
	size_t nl = strlen(name);
	if (nl >= 2 && name[0] == '{' && name[nl - 1] == '}') {
		name++;
		nl -= 2;
	}
	for (size_t i = 0; i < s->nmacros; i++) {
		const char *m = s->macro_name[i];
		size_t ml = strlen(m);
		if (ml >= 2 && m[0] == '{' && m[ml - 1] == '}') {
			m++;
			ml -= 2;
		}
		if (ml == nl && strncmp(m, name, nl) == 0)
			return s->macro_value[i];
	}
	return NULL;
}

struct milter_conn *milter_conn_new(const struct milter_hooks *h, size_t max_msg_bytes,
				    unsigned long conn_id)
{
	struct milter_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->hooks = *h;
	c->max_msg_bytes = max_msg_bytes ? max_msg_bytes : MSG_MAX_BODY_BYTES;
	c->s.conn_id = conn_id;
	return c;
}

void milter_conn_free(struct milter_conn *c)
{
	if (!c)
		return;
	reset_connection(c);
	free(c);
}

/* ---- replies ---- */

int milter_reply_op(struct milter_reply *r, enum milter_op_kind kind, unsigned index,
		    const char *name, const char *value)
{
	if (r->nops >= MILTER_MAX_OPS)
		return M_ELIMIT;
	char *n = strdup(name), *v = strdup(value ? value : "");
	if (!n || !v) {
		free(n);
		free(v);
		return M_ENOMEM;
	}
	r->ops[r->nops++] = (struct milter_op){kind, index, n, v};
	return 0;
}

void milter_reply_fini(struct milter_reply *r)
{
	for (size_t i = 0; i < r->nops; i++) {
		free(r->ops[i].name);
		free(r->ops[i].value);
	}
	r->nops = 0;
}

static int put_u32(struct buf *out, uint32_t v)
{
	uint32_t be = htonl(v);
	return buf_append(out, &be, 4);
}

/* Appends one packet: cmd and the concatenation of up to three parts, each
 * given with its length (strings include their NUL when the protocol
 * wants one). */
static int packet(struct buf *out, uint8_t cmd, const void *a, size_t al, const void *b, size_t bl,
		  const void *d, size_t dl)
{
	int rc;
	if ((rc = put_u32(out, (uint32_t)(1 + al + bl + dl))) < 0 ||
	    (rc = buf_append(out, &cmd, 1)) < 0)
		return rc;
	if (al && (rc = buf_append(out, a, al)) < 0)
		return rc;
	if (bl && (rc = buf_append(out, b, bl)) < 0)
		return rc;
	if (dl && (rc = buf_append(out, d, dl)) < 0)
		return rc;
	return 0;
}

static int reply_simple(struct buf *out, uint8_t cmd)
{
	return packet(out, cmd, NULL, 0, NULL, 0, NULL, 0);
}

/* A header value for the MTA: our values are single-line or folded with
 * CRLF; the MTA wants LF between lines (Postfix and Sendmail add their own
 * line ends). With SMFIP_HDR_LEADSPC the leading space is ours to give. */
static char *mta_value(const struct milter_conn *c, const char *v)
{
	size_t n = strlen(v);
	char *o = malloc(n + 2);
	if (!o)
		return NULL;
	size_t k = 0;
	if ((c->proto & SMFIP_HDR_LEADSPC) && v[0] != ' ' && v[0] != '\t' && v[0])
		o[k++] = ' ';
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '\r' && i + 1 < n && v[i + 1] == '\n')
			continue;
		o[k++] = v[i];
	}
	o[k] = '\0';
	return o;
}

static int send_ops(struct milter_conn *c, const struct milter_reply *r, struct buf *out)
{
	for (size_t i = 0; i < r->nops; i++) {
		const struct milter_op *op = &r->ops[i];
		if (!(c->acts & (op->kind == MILTER_OP_CHANGE ? SMFIF_CHGHDRS : SMFIF_ADDHDRS)))
			continue; /* the MTA did not grant this action */
		char *v = mta_value(c, op->value);
		if (!v)
			return M_ENOMEM;
		int rc;
		uint32_t idx = htonl(op->index);
		size_t nl = strlen(op->name) + 1, vl = strlen(v) + 1;
		if (op->kind == MILTER_OP_ADD)
			rc = packet(out, SMFIR_ADDHEADER, op->name, nl, v, vl, NULL, 0);
		else
			rc = packet(out, op->kind == MILTER_OP_INSERT ? SMFIR_INSHEADER : SMFIR_CHGHEADER,
				    &idx, 4, op->name, nl, v, vl);
		free(v);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Reply text for the MTA: one line, no CR/LF, '%' doubled (Sendmail reads
 * the text as a format). */
static void clean_text(const char *in, char *out, size_t cap)
{
	size_t k = 0;
	for (size_t i = 0; in[i] && k + 2 < cap; i++) {
		char ch = in[i];
		if (ch == '\r' || ch == '\n')
			ch = ' ';
		if (ch == '%')
			out[k++] = '%';
		out[k++] = ch;
	}
	out[k] = '\0';
}

static int send_verdict(struct milter_conn *c, const struct milter_reply *r, struct buf *out)
{
	char line[600], text[420];
	switch (r->verdict) {
	case MILTER_REJECT:
	case MILTER_TEMPFAIL: {
		int rej = r->verdict == MILTER_REJECT;
		const char *code = r->code[0] ? r->code : (rej ? "550" : "451");
		const char *x = r->xcode[0] ? r->xcode : (rej ? "5.7.1" : "4.7.1");
		if ((code[0] != (rej ? '5' : '4')) || !r->text[0])
			return reply_simple(out, rej ? SMFIR_REJECT : SMFIR_TEMPFAIL);
		clean_text(r->text, text, sizeof(text));
		int n = snprintf(line, sizeof(line), "%s %s %s", code, x, text);
		if (n < 0)
			return M_EINVAL;
		return packet(out, SMFIR_REPLYCODE, line, strlen(line) + 1, NULL, 0, NULL, 0);
	}
	case MILTER_DISCARD:
		return reply_simple(out, SMFIR_DISCARD);
	case MILTER_HOLD:
		if (c->acts & SMFIF_QUARANTINE) {
			clean_text(r->reason[0] ? r->reason : "held by mamori", text, sizeof(text));
			int rc = packet(out, SMFIR_QUARANTINE, text, strlen(text) + 1, NULL, 0, NULL, 0);
			if (rc < 0)
				return rc;
		}
		return reply_simple(out, SMFIR_ACCEPT);
	case MILTER_ACCEPT:
	default:
		return reply_simple(out, SMFIR_ACCEPT);
	}
}

/* ---- packets ---- */

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The i-th NUL-terminated string of data, or NULL when there is none. */
static const char *nth_str(const uint8_t *data, size_t len, unsigned i, size_t *at)
{
	size_t p = 0;
	for (unsigned k = 0;; k++) {
		if (p >= len)
			return NULL;
		const uint8_t *z = memchr(data + p, 0, len - p);
		if (!z)
			return NULL;
		if (k == i) {
			if (at)
				*at = (size_t)(z - data) + 1;
			return (const char *)data + p;
		}
		p = (size_t)(z - data) + 1;
	}
}

/* "<a@b>" or "a@b" into out without the brackets. */
static void strip_addr(const char *in, char *out, size_t cap)
{
	while (*in == ' ')
		in++;
	size_t n = strlen(in);
	if (n >= 2 && in[0] == '<') {
		const char *gt = strchr(in, '>');
		n = gt ? (size_t)(gt - in) - 1 : n - 1;
		in++;
	}
	if (n >= cap)
		n = cap - 1;
	memcpy(out, in, n);
	out[n] = '\0';
}

static int on_optneg(struct milter_conn *c, const uint8_t *d, size_t len, struct buf *out)
{
	if (len < MILTER_OPTLEN)
		return M_EPARSE;
	uint32_t ver = get_u32(d), acts = get_u32(d + 4), proto = get_u32(d + 8);
	if (ver < 2)
		return M_EPARSE;
	if (ver > SMFI_PROT_VERSION)
		ver = SMFI_PROT_VERSION;
	c->acts = acts & WANT_ACTS;
	/* Ask only for what the MTA offers; the leading-space flag too. */
	c->proto = proto & (WANT_NR | WANT_NO | SMFIP_HDR_LEADSPC);
	c->negotiated = 1;
	uint8_t r[12];
	uint32_t v[3] = {htonl(ver), htonl(c->acts), htonl(c->proto)};
	memcpy(r, v, 12);
	return packet(out, SMFIC_OPTNEG, r, 12, NULL, 0, NULL, 0);
}

static int on_macro(struct milter_conn *c, const uint8_t *d, size_t len)
{
	if (len < 1)
		return M_EPARSE;
	struct milter_session *s = &c->s;
	for (unsigned i = 0;; i += 2) {
		const char *name = nth_str(d + 1, len - 1, i, NULL);
		const char *val = nth_str(d + 1, len - 1, i + 1, NULL);
		if (!name || !val)
			break;
		size_t k;
		for (k = 0; k < s->nmacros; k++)
			if (strcmp(s->macro_name[k], name) == 0)
				break;
		if (k == s->nmacros) {
			if (s->nmacros >= MILTER_MAX_MACROS)
				continue;
			if (!(s->macro_name[k] = strdup(name)))
				return M_ENOMEM;
			s->macro_value[k] = NULL;
			s->nmacros++;
		}
		free(s->macro_value[k]);
		if (!(s->macro_value[k] = strdup(val)))
			return M_ENOMEM;
	}
	return 0;
}

static int on_connect(struct milter_conn *c, const uint8_t *d, size_t len)
{
	struct milter_session *s = &c->s;
	size_t at = 0;
	const char *host = nth_str(d, len, 0, &at);
	if (!host)
		return M_EPARSE;
	snprintf(s->client_name, sizeof(s->client_name), "%s", host);
	s->af = 0;
	s->client_ip[0] = '\0';
	if (at >= len)
		return 0;
	char fam = (char)d[at++];
	if (fam != SMFIA_INET && fam != SMFIA_INET6)
		return 0;
	if (at + 2 > len)
		return M_EPARSE;
	s->port = (unsigned)(d[at] << 8 | d[at + 1]);
	at += 2;
	const char *addr = nth_str(d + at, len - at, 0, NULL);
	if (!addr)
		return M_EPARSE;
	/* Sendmail writes IPv6 as "IPv6:..." */
	if (strncasecmp(addr, "IPv6:", 5) == 0)
		addr += 5;
	int af = fam == SMFIA_INET ? AF_INET : AF_INET6;
	if (inet_pton(af, addr, s->ip) == 1) {
		s->af = af;
		snprintf(s->client_ip, sizeof(s->client_ip), "%s", addr);
	}
	return 0;
}

static int on_rcpt(struct milter_conn *c, const uint8_t *d, size_t len)
{
	struct milter_session *s = &c->s;
	const char *a = nth_str(d, len, 0, NULL);
	if (!a)
		return M_EPARSE;
	if (s->nrcpt >= MILTER_MAX_RCPT)
		return 0;
	char buf[512];
	strip_addr(a, buf, sizeof(buf));
	char **r = realloc(s->rcpt, (s->nrcpt + 1) * sizeof(*r));
	if (!r)
		return M_ENOMEM;
	s->rcpt = r;
	if (!(r[s->nrcpt] = strdup(buf)))
		return M_ENOMEM;
	s->nrcpt++;
	return 0;
}

static int ensure_msg(struct milter_conn *c)
{
	if (!c->s.m && !(c->s.m = msg_new()))
		return M_ENOMEM;
	return 0;
}

static int on_header(struct milter_conn *c, const uint8_t *d, size_t len)
{
	const char *name = nth_str(d, len, 0, NULL);
	const char *val = nth_str(d, len, 1, NULL);
	if (!name || !val)
		return M_EPARSE;
	int rc = ensure_msg(c);
	if (rc < 0)
		return rc;
	c->msg_bytes += len;
	if (c->s.too_big || c->msg_bytes > c->max_msg_bytes) {
		c->s.too_big = 1;
		return 0;
	}
	char *v = NULL;
	if (!(c->proto & SMFIP_HDR_LEADSPC)) {
		/* Without the flag the MTA dropped the space after the colon. */
		size_t vl = strlen(val);
		if (!(v = malloc(vl + 2)))
			return M_ENOMEM;
		v[0] = ' ';
		memcpy(v + 1, val, vl + 1);
	}
	rc = msg_add_header(c->s.m, name, v ? v : val);
	free(v);
	if (rc == MSG_E_LIMIT) {
		c->s.too_big = 1;
		return 0;
	}
	/* A name the message layer refuses (a colon in it) is kept out. */
	return rc == MSG_E_NOMEM ? M_ENOMEM : 0;
}

static int on_body(struct milter_conn *c, const uint8_t *d, size_t len)
{
	int rc = ensure_msg(c);
	if (rc < 0)
		return rc;
	c->msg_bytes += len;
	if (c->s.too_big || c->msg_bytes > c->max_msg_bytes) {
		c->s.too_big = 1;
		return 0;
	}
	rc = msg_add_body(c->s.m, (const char *)d, len);
	if (rc == MSG_E_LIMIT) {
		c->s.too_big = 1;
		return 0;
	}
	return rc == MSG_E_NOMEM ? M_ENOMEM : 0;
}

static int on_eom(struct milter_conn *c, struct buf *out)
{
	int rc = ensure_msg(c);
	if (rc < 0)
		return rc;
	c->s.msg_no++;
	struct milter_reply r;
	memset(&r, 0, sizeof(r));
	if (c->hooks.eom)
		c->hooks.eom(c->hooks.arg, &c->s, &r);
	rc = send_ops(c, &r, out);
	if (rc == 0)
		rc = send_verdict(c, &r, out);
	milter_reply_fini(&r);
	reset_message(c);
	return rc;
}

/* An answer for a step, unless the MTA agreed not to wait for one. */
static int step_reply(struct milter_conn *c, uint32_t nr_flag, struct buf *out)
{
	if (c->proto & nr_flag)
		return 0;
	return reply_simple(out, SMFIR_CONTINUE);
}

int milter_conn_packet(struct milter_conn *c, uint8_t cmd, const uint8_t *d, size_t len,
		       struct buf *out)
{
	struct milter_session *s = &c->s;
	int rc = 0;
	switch (cmd) {
	case SMFIC_OPTNEG:
		return on_optneg(c, d, len, out);
	case SMFIC_MACRO:
		return on_macro(c, d, len);
	case SMFIC_CONNECT:
		if ((rc = on_connect(c, d, len)) < 0)
			return rc;
		return step_reply(c, SMFIP_NR_CONN, out);
	case SMFIC_HELO: {
		const char *h = nth_str(d, len, 0, NULL);
		if (!h)
			return M_EPARSE;
		snprintf(s->helo, sizeof(s->helo), "%s", h);
		return step_reply(c, SMFIP_NR_HELO, out);
	}
	case SMFIC_MAIL: {
		const char *a = nth_str(d, len, 0, NULL);
		if (!a)
			return M_EPARSE;
		reset_message(c);
		strip_addr(a, s->mail_from, sizeof(s->mail_from));
		return step_reply(c, SMFIP_NR_MAIL, out);
	}
	case SMFIC_RCPT:
		if ((rc = on_rcpt(c, d, len)) < 0)
			return rc;
		return step_reply(c, SMFIP_NR_RCPT, out);
	case SMFIC_DATA:
		return step_reply(c, SMFIP_NR_DATA, out);
	case SMFIC_HEADER:
		if ((rc = on_header(c, d, len)) < 0)
			return rc;
		return step_reply(c, SMFIP_NR_HDR, out);
	case SMFIC_EOH:
		if ((rc = ensure_msg(c)) < 0)
			return rc;
		return step_reply(c, SMFIP_NR_EOH, out);
	case SMFIC_BODY:
		if ((rc = on_body(c, d, len)) < 0)
			return rc;
		return step_reply(c, SMFIP_NR_BODY, out);
	case SMFIC_BODYEOB:
		if (len > 0 && (rc = on_body(c, d, len)) < 0)
			return rc;
		return on_eom(c, out);
	case SMFIC_ABORT:
		reset_message(c);
		return 0;
	case SMFIC_UNKNOWN:
		return step_reply(c, SMFIP_NR_UNKN, out);
	case SMFIC_QUIT_NC:
		reset_connection(c);
		return 0;
	case SMFIC_QUIT:
		return 1;
	default:
		return M_EPARSE;
	}
}

/* ---- the listener: one thread per MTA connection ---- */

struct milter {
	struct milter_conf conf;
	char *listen;
	struct milter_hooks hooks;
	int fd;
	int port;
	pthread_t accept_thread;
	int started;
	atomic_int stopping;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned nconns;
	int *conn_fds; /* max_conns slots, -1 when free */
	atomic_ulong next_conn;
	struct metric *m_conns, *m_msgs, *m_proto_err, *m_refused;
};

struct conn_arg {
	struct milter *m;
	int fd;
	size_t slot;
};

/* Reads exactly n bytes with the idle timeout. 0, 1 on a clean EOF before
 * any byte, or -1. */
static int read_full(struct milter *m, int fd, uint8_t *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int pr = poll(&pfd, 1, (int)m->conf.timeout_s * 1000);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0 || atomic_load(&m->stopping))
			return -1;
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r == 0 && got == 0)
			return 1;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int write_full(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			if (poll(&pfd, 1, 30000) <= 0)
				return -1;
			continue;
		}
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void *conn_main(void *arg)
{
	struct conn_arg *ca = arg;
	struct milter *m = ca->m;
	int fd = ca->fd;
	unsigned long id = atomic_fetch_add(&m->next_conn, 1) + 1;
	struct milter_conn *c = milter_conn_new(&m->hooks, m->conf.max_msg_bytes, id);
	uint8_t *pkt = malloc(MILTER_MAX_PACKET);
	struct buf out;
	buf_init(&out, 4u * 1024 * 1024);
	while (c && pkt) {
		uint8_t hdr[4];
		if (read_full(m, fd, hdr, 4) != 0)
			break;
		uint32_t len = get_u32(hdr);
		if (len == 0 || len > MILTER_MAX_PACKET) {
			metric_add(m->m_proto_err, 1);
			log_msg(LOG_WARN, "mail", "event=milter_bad_packet conn=%lu len=%u", id, len);
			break;
		}
		if (read_full(m, fd, pkt, len) != 0)
			break;
		buf_reset(&out);
		int rc = milter_conn_packet(c, pkt[0], pkt + 1, len - 1, &out);
		if (rc < 0) {
			metric_add(m->m_proto_err, 1);
			log_msg(LOG_WARN, "mail", "event=milter_protocol_error conn=%lu cmd=0x%02x len=%u",
				id, pkt[0], len);
			break;
		}
		if (pkt[0] == SMFIC_BODYEOB)
			metric_add(m->m_msgs, 1);
		if (out.len && write_full(fd, out.p, out.len) < 0)
			break;
		if (rc == 1)
			break;
	}
	buf_fini(&out);
	free(pkt);
	milter_conn_free(c);
	pthread_mutex_lock(&m->mu);
	m->conn_fds[ca->slot] = -1;
	close(fd);
	m->nconns--;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	free(ca);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct milter *m = arg;
	while (!atomic_load(&m->stopping)) {
		struct pollfd pfd = {.fd = m->fd, .events = POLLIN};
		int pr = poll(&pfd, 1, 500);
		if (pr <= 0)
			continue;
		int fd = accept4(m->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&m->mu);
		size_t slot = m->conf.max_conns;
		if (m->nconns < m->conf.max_conns && !atomic_load(&m->stopping))
			for (slot = 0; slot < m->conf.max_conns && m->conn_fds[slot] >= 0; slot++)
				;
		if (slot >= m->conf.max_conns) {
			pthread_mutex_unlock(&m->mu);
			metric_add(m->m_refused, 1);
			close(fd);
			continue;
		}
		struct conn_arg *ca = malloc(sizeof(*ca));
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (ca) {
			*ca = (struct conn_arg){m, fd, slot};
			m->conn_fds[slot] = fd;
			m->nconns++;
			if (pthread_create(&t, &attr, conn_main, ca) != 0) {
				m->conn_fds[slot] = -1;
				m->nconns--;
				free(ca);
				ca = NULL;
			}
		}
		pthread_attr_destroy(&attr);
		pthread_mutex_unlock(&m->mu);
		if (!ca) {
			close(fd);
			continue;
		}
		metric_add(m->m_conns, 1);
	}
	return NULL;
}

struct milter *milter_new(const struct milter_conf *conf, const struct milter_hooks *h,
			  char *err, size_t errlen)
{
	struct milter *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->fd = -1;
	m->conf = *conf;
	if (!m->conf.max_conns)
		m->conf.max_conns = 256;
	if (!m->conf.timeout_s)
		m->conf.timeout_s = 300;
	m->listen = strdup(conf->listen ? conf->listen : "");
	m->conf.listen = m->listen;
	m->hooks = *h;
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	m->conn_fds = malloc(m->conf.max_conns * sizeof(int));
	if (!m->listen || !m->conn_fds) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < m->conf.max_conns; i++)
		m->conn_fds[i] = -1;
	if (ingest_bind("milter", m->listen, SOCK_STREAM, &m->fd) < 0) {
		snprintf(err, errlen, "mail.milter: cannot listen on %s: %s", m->listen,
			 strerror(errno));
		goto fail;
	}
	m->port = ingest_sock_port(m->fd);
	m->m_conns = metric_get("mamori_milter_connections_total", "MTA connections to the milter",
				METRIC_COUNTER, NULL);
	m->m_msgs = metric_get("mamori_milter_messages_total", "messages seen by the milter",
			       METRIC_COUNTER, NULL);
	m->m_proto_err = metric_get("mamori_milter_protocol_errors_total",
				    "malformed milter packets (connection closed)", METRIC_COUNTER, NULL);
	m->m_refused = metric_get("mamori_milter_refused_total",
				  "MTA connections refused at mail.milter_max_connections",
				  METRIC_COUNTER, NULL);
	return m;
fail:
	milter_free(m);
	return NULL;
}

int milter_port(const struct milter *m)
{
	return m->port;
}

int milter_start(struct milter *m)
{
	if (pthread_create(&m->accept_thread, NULL, accept_main, m) != 0)
		return M_EIO;
	m->started = 1;
	return 0;
}

void milter_stop(struct milter *m)
{
	if (!m || !m->started)
		return;
	atomic_store(&m->stopping, 1);
	pthread_join(m->accept_thread, NULL);
	m->started = 0;
	pthread_mutex_lock(&m->mu);
	for (unsigned i = 0; i < m->conf.max_conns; i++)
		if (m->conn_fds[i] >= 0)
			shutdown(m->conn_fds[i], SHUT_RDWR);
	while (m->nconns > 0)
		pthread_cond_wait(&m->cv, &m->mu);
	pthread_mutex_unlock(&m->mu);
}

void milter_free(struct milter *m)
{
	if (!m)
		return;
	milter_stop(m);
	if (m->fd >= 0)
		close(m->fd);
	pthread_mutex_destroy(&m->mu);
	pthread_cond_destroy(&m->cv);
	free(m->conn_fds);
	free(m->listen);
	free(m);
}
