/*
 * quarantine: mail held instead of delivered, and outbound mail held for a
 * while before it leaves (mis-send prevention).
 *
 * Why it looks like this: a held message is a promise that nothing is lost,
 * so each one is a whole file under <data_dir>/quarantine/ (written to a
 * temporary name, fsync'd, renamed, the directory fsync'd) before the index
 * row in SQLite says it exists; a crash leaves either both or a stray file,
 * never a row without its message. The milter puts from many threads while
 * the API reads, so one mutex guards the index; SMTP re-injection runs
 * outside it, with the entry marked busy so two releases cannot both send.
 * Every state change is a row in a history table (who, when, what).
 *
 * Release re-injects through SMTP (libcurl) to the MTA's re-injection
 * listener (Postfix: a 127.0.0.1:10025 smtpd without the milter), with the
 * stored envelope: one MAIL FROM, one RCPT TO per recipient. A release that
 * fails leaves the entry held; recipients refused while others were accepted
 * are reported in the result and the history. A released inbound message
 * carries "X-Mamori-Released: <id>" on top (outbound mail carries no id of
 * ours). Anyone can write that header, so it is a trace, never a pass.
 *
 * Outbound hold: the entry expires with action "send"; the sender gets a
 * notice (quarantine_hold_notice, mailed by the caller) with two links,
 * cancel and send-now, each carrying an HMAC-SHA256 token over id, action
 * and expiry, keyed by the configured key or <data_dir>/quarantine.key
 * (generated once, mode 0600). The files: quarantine.c (store, state
 * changes, tokens), quarantine_query.c (reading back), quarantine_release.c
 * (SMTP, the notice).
 *
 * Ownership: struct quarantine is owned by the opener and released with
 * quarantine_close(); json_t answers and strings handed out are the
 * caller's.
 */
#ifndef MAMORI_MAIL_QUARANTINE_H
#define MAMORI_MAIL_QUARANTINE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

struct msg;
struct quarantine;

#define QUARANTINE_ID_LEN 32        /* 128 random bits, lower-case hex */
#define QUARANTINE_TOKEN_LEN 64     /* HMAC-SHA256, lower-case hex */
#define QUARANTINE_MAX_RCPT 1000    /* recipients of one entry */
#define QUARANTINE_MAX_ADDR 320     /* bytes of one envelope address */
#define QUARANTINE_MAX_REASONS (16 << 10)  /* bytes of the reasons JSON */
#define QUARANTINE_MAX_LIMIT 1000   /* entries in one list answer */

enum quarantine_direction { QUARANTINE_INBOUND = 0, QUARANTINE_OUTBOUND = 1 };

enum quarantine_state {
	QUARANTINE_HELD = 0,
	QUARANTINE_RELEASED,   /* re-injected by an operator */
	QUARANTINE_DELETED,    /* deleted by an operator or cancelled by the sender */
	QUARANTINE_EXPIRED,    /* retention passed, deleted */
	QUARANTINE_SENT,       /* an outbound hold sent (expiry or send-now) */
	QUARANTINE_STATE_COUNT
};

enum quarantine_expiry { QUARANTINE_EXPIRE_DELETE = 0, QUARANTINE_EXPIRE_SEND = 1 };

/* What a hold link does. */
enum quarantine_action { QUARANTINE_ACT_CANCEL = 0, QUARANTINE_ACT_SEND_NOW = 1 };

/* Settings for quarantine_configure (copied; the strings are borrowed).
 * A NULL string or a number <= 0 keeps the current value; the defaults are
 * in brackets. The mail: section maps onto it: release_to → reinject,
 * quarantine_retention → retention, outbound_hold → hold. */
struct quarantine_config {
	const char *reinject;  /* host:port of the MTA's re-injection listener, "" = none
				* (release answers M_EUNSUPP) [127.0.0.1:10025] */
	int64_t timeout;       /* seconds for one SMTP re-injection [60] */
	int64_t retention;     /* seconds an inbound entry stays held [30 days] */
	int64_t hold;          /* seconds an outbound hold lasts when the caller
				* does not say [15 minutes] */
	const char *key;       /* secret for the hold links, 16 bytes or more ["" =
				* <dir>.key, 32 random bytes made once, mode 0600] */
	const char *notice_from;   /* From: of the hold notice [postmaster@localhost] */
	int hold_expiry;       /* what an outbound hold does when it ends:
				* QUARANTINE_EXPIRE_SEND (0 here means send) or
				* QUARANTINE_EXPIRE_DELETE + 1 to delete it */
};

/* One entry. For quarantine_put the caller fills sender, rcpt/nrcpt,
 * direction, reasons, score, expires_at (0 = now + retention) and
 * expiry_action, and may fill from, subject and message_id (decoded text;
 * NULL: taken from the message's header fields); it keeps ownership, and
 * the rest is derived. quarantine_get
 * fills every field with heap copies released by quarantine_meta_fini(). */
struct quarantine_meta {
	char id[QUARANTINE_ID_LEN + 1];
	int64_t received;               /* epoch seconds */
	char *sender;                   /* envelope MAIL FROM; "" for the null sender */
	char **rcpt;                    /* envelope RCPT TO */
	size_t nrcpt;
	char *from, *subject, *message_id;   /* header fields, one line, UTF-8 */
	uint64_t size;                  /* bytes stored */
	enum quarantine_direction direction;
	char *reasons;                  /* JSON text (an array or object); NULL = [] */
	double score;
	enum quarantine_state state;
	int64_t expires_at;             /* epoch seconds */
	enum quarantine_expiry expiry_action;
	char sha256[65];                /* of the stored file, hex */
};

void quarantine_meta_fini(struct quarantine_meta *m);

/* A list query; zero it, then set what narrows. */
struct quarantine_filter {
	int state;          /* enum quarantine_state, or -1 for any */
	int direction;      /* enum quarantine_direction, or -1 for any */
	int64_t since;      /* received at or after (epoch seconds); 0 = any */
	uint32_t limit;     /* 0 = 100; at most QUARANTINE_MAX_LIMIT */
	uint64_t offset;
	const char *sender;     /* the envelope sender contains it (no case) */
	const char *recipient;  /* a recipient contains it (no case) */
};

/* What a release or send did. */
struct quarantine_result {
	unsigned accepted;      /* recipients the MTA accepted */
	unsigned refused;       /* recipients the MTA refused (the rest went) */
	char detail[1024];      /* why it failed, or the refused recipients */
};

/* Opens the quarantine whose message files are in dir (created, mode
 * 0700, when missing: its parent must exist), with the index at db_path
 * (NULL: <dir>.db) and the key of the hold links in <dir>.key; so
 * <data_dir>/quarantine gives <data_dir>/quarantine.db and
 * <data_dir>/quarantine.key. Temporary files a crash left in dir are
 * removed. NULL on failure with err set. */
struct quarantine *quarantine_open(const char *dir, const char *db_path, char *err,
				   size_t errlen);
/* Applies settings (copied). M_EINVAL on a key shorter than 16 bytes, a
 * bad address or a From: with control characters; nothing changes then. */
int quarantine_configure(struct quarantine *q, const struct quarantine_config *cfg);
/* Stops the expiry thread, closes the index. NULL is fine. */
void quarantine_close(struct quarantine *q);

/* Stores m with meta; id_out gets the new id. M_EINVAL for a bad envelope
 * (no recipient, an address with control characters or angle brackets, too
 * long) or reasons that are not JSON; M_EIO when the file or the row could
 * not be written (then nothing is kept). */
int quarantine_put(struct quarantine *q, const struct msg *m, const struct quarantine_meta *meta,
		   char id_out[QUARANTINE_ID_LEN + 1]);
/* An outbound hold: stored with direction outbound, expiry_action send,
 * expires_at = now + hold_minutes (negative: the configured hold). */
int quarantine_hold_outbound(struct quarantine *q, const struct msg *m,
			     const struct quarantine_meta *meta, int hold_minutes,
			     char id_out[QUARANTINE_ID_LEN + 1]);

/* {"total":N,"limit":L,"offset":O,"messages":[{...}, ...]}, newest first.
 * Owner of *out: the caller. */
int quarantine_list(struct quarantine *q, const struct quarantine_filter *f, json_t **out);
/* One entry as the list shows it, plus its history and, with
 * with_headers and while the message is stored, its header fields
 * ("headers": [{"name":..,"value":..}], values unfolded, one line, UTF-8). */
int quarantine_entry_json(struct quarantine *q, const char *id, int with_headers,
			  json_t **out);
/* The entry; with raw non-NULL also the stored message (caller frees; NULL
 * with *len 0 once the entry left the quarantine and its file is gone).
 * M_ENOTFOUND, or M_EIO when the file is missing or does not match its
 * sha256. */
int quarantine_get(struct quarantine *q, const char *id, struct quarantine_meta *meta,
		   char **raw, size_t *len);

/* Re-injects a held entry and marks it released (inbound) or sent
 * (outbound); by names who asked. 0 (res->refused may be non-zero: those
 * recipients were refused, the others got it); M_ENOTFOUND; M_EINVAL when
 * it is not held; M_EAGAIN when another release of it is under way;
 * M_EUNSUPP when no re-injection address is set; M_EIO when it could not be
 * delivered (it stays held; res->detail says why). res may be NULL. */
int quarantine_release(struct quarantine *q, const char *id, const char *by,
		       struct quarantine_result *res);
/* Deletes a held entry (file removed, row kept with its history). */
int quarantine_delete(struct quarantine *q, const char *id, const char *by);
/* Applies the expiry action of held entries whose expires_at is at or
 * before now: deletes (state expired) or sends (state sent; one that fails
 * stays held and is tried again next time). Returns how many changed, or a
 * negative error. */
int quarantine_expire(struct quarantine *q, time_t now);
/* Runs quarantine_expire every interval seconds on its own thread until
 * quarantine_close. */
int quarantine_expiry_start(struct quarantine *q, int64_t interval);

/* The token of a hold link, hex, NUL-terminated. */
int quarantine_token(struct quarantine *q, const char *id, enum quarantine_action act,
		     char out[QUARANTINE_TOKEN_LEN + 1]);
/* 0 when token is the one for (id, act) and the hold has not passed;
 * M_EAUTH when it is not (compared in constant time); M_ENOTFOUND for an
 * unknown id; M_ELIMIT when the hold has passed. */
int quarantine_token_check(struct quarantine *q, const char *id, enum quarantine_action act,
			   const char *token);
/* What a hold link does once its token checked: cancel deletes the entry,
 * send-now sends it. Errors as quarantine_delete / quarantine_release. */
int quarantine_hold_act(struct quarantine *q, const char *id, enum quarantine_action act,
			struct quarantine_result *res);
/* The notice to the sender of an outbound hold: a whole RFC 5322 message
 * (CRLF ends) with the cancel and send-now links under base_url (e.g.
 * "https://mamori.example.org"). Owner of *msg_text: the caller. */
int quarantine_hold_notice(struct quarantine *q, const char *id, const char *base_url,
			   char **msg_text);

const char *quarantine_state_name(enum quarantine_state s);
/* 0 and *out, or M_EINVAL. */
int quarantine_state_parse(const char *s, size_t n, enum quarantine_state *out);
const char *quarantine_action_name(enum quarantine_action a);
/* 1 when s is a well-formed id (32 lower-case hex digits). */
int quarantine_id_ok(const char *s, size_t n);

#endif
