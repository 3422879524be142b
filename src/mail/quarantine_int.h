/*
 * Private to the quarantine (quarantine.c: the store, its state changes
 * and tokens; quarantine_query.c: reading entries back; quarantine_release.c:
 * SMTP re-injection and the hold notice): what one file needs of another.
 */
#ifndef MAMORI_MAIL_QUARANTINE_INT_H
#define MAMORI_MAIL_QUARANTINE_INT_H

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "mail/quarantine.h"

#define QUARANTINE_MAX_BUSY 64      /* re-injections at once */

struct quarantine {
	pthread_mutex_t mu;          /* db, busy, settings, key */
	sqlite3 *db;
	int dirfd;                   /* <data_dir>/quarantine */
	char keypath[PATH_MAX];
	char *reinject, *notice_from;
	int64_t timeout, retention, hold;
	enum quarantine_expiry hold_expiry; /* SEND unless configured */
	unsigned char *key;
	size_t keylen;
	char busy[QUARANTINE_MAX_BUSY][QUARANTINE_ID_LEN + 1];
	/* the expiry thread */
	pthread_mutex_t tmu;
	pthread_cond_t tcv;
	pthread_t thr;
	int thr_on, stopping;
	int64_t interval;
	long long fail_log_last;     /* log_ratelimit of failed releases */
};

/* The index columns in the order quarantine_query.c reads them. */
#define QUARANTINE_COLS \
	"id, received, sender, rcpt, hfrom, subject, message_id, size, direction, " \
	"reasons, score, state, expires_at, expiry_action, sha256"

/* SQLite helpers; callers hold q->mu. quarantine_db_fail logs the
 * connection's error once and returns M_EIO. */
int quarantine_db_fail(struct quarantine *q, const char *what);
sqlite3_stmt *quarantine_db_prepare(struct quarantine *q, const char *sql);
void quarantine_db_bind(sqlite3_stmt *st, int i, const char *s);   /* NULL binds NULL */
const char *quarantine_db_col(sqlite3_stmt *st, int i);            /* "" for NULL */

/* The stored message of id, checked against sha (hex). M_ENOTFOUND when
 * the file is gone, M_EIO when it cannot be read or does not match. Owner
 * of *out: the caller. Needs no lock. */
int quarantine_file_read(struct quarantine *q, const char *id, const char *sha, char **out,
			 size_t *len);
/* The row of id into meta (quarantine_meta_fini after, whatever the
 * result); M_ENOTFOUND for an unknown or malformed id. q->mu held. */
int quarantine_meta_load(struct quarantine *q, const char *id, struct quarantine_meta *meta);

/* Sends data (a whole message, CRLF ends) to the SMTP server at addr
 * ("host:port"), MAIL FROM sender ("" = the null sender), one RCPT TO per
 * recipient, within timeout seconds. 0 when the message was accepted for
 * at least one recipient (res->refused counts the others); M_EIO with
 * res->detail otherwise. */
int quarantine_smtp_send(const char *addr, int64_t timeout, const char *sender,
			 char *const *rcpt, size_t nrcpt, const char *data, size_t len,
			 struct quarantine_result *res);

/* A copy of s[0..n) fit for one line of JSON or a header: valid UTF-8
 * (invalid bytes become U+FFFD), control characters as spaces, at most max
 * bytes (cut on a character boundary). NULL on no memory. */
char *quarantine_clean_text(const char *s, size_t n, size_t max);
/* 1 when s[0..n) is valid UTF-8 without control characters. */
int quarantine_text_ok(const char *s, size_t n);

/* curl_global_init, once, from quarantine_open. */
int quarantine_curl_global_init(void);

/* The configured From: of hold notices (caller frees). */
char *quarantine_notice_from(struct quarantine *q);

#endif
