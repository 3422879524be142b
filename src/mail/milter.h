/*
 * milter: the Sendmail/Postfix milter protocol (version 6), server side.
 *
 * Why not libmilter: libmilter keeps process-wide state (one filter per
 * process, smfi_main only once) and its smfi_main starts a thread that
 * sigwait()s SIGTERM, SIGHUP and SIGINT, competing with the serve loop that
 * takes the same signals: a SIGHUP meant for a reload could stop the milter,
 * a SIGTERM could be eaten and the process never exit. The protocol itself
 * is small, so it is spoken here, with the reference implementation's own
 * definitions (libmilter/mfdef.h) for every command, reply and flag.
 *
 * Shape: milter_conn_packet() is a pure state machine over one packet
 * (command byte + data) that appends the replies to a buffer, so the socket
 * loop, the unit tests and the fuzzer run the same code. The socket side
 * runs one thread per MTA connection (bounded), since the checks at the end
 * of a message block on DNS and clamd.
 */
#ifndef MAMORI_MAIL_MILTER_H
#define MAMORI_MAIL_MILTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "mail/msg.h"

#define MILTER_MAX_RCPT 1000
#define MILTER_MAX_MACROS 64
#define MILTER_MAX_OPS 64

/* What the MTA told us about the current SMTP session and message. */
struct milter_session {
	unsigned long conn_id; /* per process, from 1 */
	unsigned msg_no;       /* messages on this connection, from 1 */
	char client_name[256]; /* reverse name or "[ip]" */
	int af;                /* AF_INET, AF_INET6, or 0 (unix/unknown) */
	uint8_t ip[16];
	unsigned port;
	char client_ip[64]; /* text form, "" when unknown */
	char helo[256];
	char mail_from[512]; /* envelope sender without <>; "" = null sender */
	char **rcpt;         /* envelope recipients without <> */
	size_t nrcpt;
	struct msg *m;       /* headers and body as received */
	int too_big;         /* the message passed max_msg_bytes */
	/* Macros the MTA sent: {i} queue id, {auth_authen}, {j}, {daemon_name}... */
	char *macro_name[MILTER_MAX_MACROS];
	char *macro_value[MILTER_MAX_MACROS];
	size_t nmacros;
};

/* A macro's value ("i", "{auth_authen}"; braces optional), or NULL. */
const char *milter_macro(const struct milter_session *s, const char *name);

enum milter_verdict {
	MILTER_ACCEPT = 0, /* deliver, with the header changes */
	MILTER_REJECT,     /* 5xx with the reply text */
	MILTER_TEMPFAIL,   /* 4xx with the reply text */
	MILTER_DISCARD,    /* accept and drop (held in our quarantine) */
	MILTER_HOLD,       /* accept into the MTA's hold queue (Postfix "hold") */
};

enum milter_op_kind { MILTER_OP_INSERT, MILTER_OP_ADD, MILTER_OP_CHANGE };

struct milter_op {
	enum milter_op_kind kind;
	unsigned index; /* INSERT: position (0 = top); CHANGE: n-th field of the name, from 1 */
	char *name;
	char *value; /* CHANGE with "" deletes the field */
};

/* The decision at the end of a message, filled by the eom hook. */
struct milter_reply {
	enum milter_verdict verdict;
	char code[4];    /* "550", "451"; empty: the MTA's default */
	char xcode[12];  /* "5.7.1" */
	char text[400];  /* reply text (one line) */
	char reason[128]; /* MILTER_HOLD: the hold reason */
	struct milter_op ops[MILTER_MAX_OPS];
	size_t nops;
};

int milter_reply_op(struct milter_reply *r, enum milter_op_kind kind, unsigned index,
		    const char *name, const char *value);
void milter_reply_fini(struct milter_reply *r);

struct milter_hooks {
	void *arg;
	/* At the end of each message, on the connection's thread. The session
	 * (and its message) stays valid for the call only. */
	void (*eom)(void *arg, const struct milter_session *s, struct milter_reply *r);
};

struct milter_conf {
	const char *listen;    /* "127.0.0.1:8891" */
	unsigned max_conns;    /* simultaneous MTA connections */
	unsigned timeout_s;    /* idle read timeout per connection */
	size_t max_msg_bytes;  /* larger messages get too_big (policy decides) */
};

/* ---- one connection's protocol state (pure; tests and fuzzer use it) ---- */

struct milter_conn;
struct milter_conn *milter_conn_new(const struct milter_hooks *h, size_t max_msg_bytes,
				    unsigned long conn_id);
void milter_conn_free(struct milter_conn *c);
/* Feed one packet: cmd and its data. Replies are appended to out (whole
 * packets). Returns 0 to go on, 1 when the MTA said QUIT, or M_EPARSE for a
 * malformed packet (the connection should be closed). */
int milter_conn_packet(struct milter_conn *c, uint8_t cmd, const uint8_t *data, size_t len,
		       struct buf *out);

/* ---- the listener ---- */

struct milter;
/* Binds the listening socket now (before privileges are dropped). NULL on
 * failure with err set. */
struct milter *milter_new(const struct milter_conf *conf, const struct milter_hooks *h,
			  char *err, size_t errlen);
int milter_port(const struct milter *m);
int milter_start(struct milter *m);
/* Stops accepting, closes every connection, waits for their threads. */
void milter_stop(struct milter *m);
void milter_free(struct milter *m);

#endif
