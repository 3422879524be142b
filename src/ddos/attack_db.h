/*
 * The DDoS attack history: every attack the detector reports, with its
 * vectors, peaks, top talkers, mitigation steps and per-second timeline,
 * in SQLite (<data_dir>/ddos.db), so the API can list active and past
 * attacks and a restart loses none of them.
 *
 * Writes come from threads that must not block (the collector judges every
 * second; the mitigation observer runs under the manager's lock): they are
 * copied onto a bounded queue and one writer thread applies them, each in
 * its own transaction. Reads (the API) use a second connection; WAL lets
 * them run beside the writer. Bounded: the queue, the timeline (at most
 * ATTACK_DB_MAX_POINTS points a row, downsampled keeping peaks), the
 * mitigation steps per attack, and the rows (retention by age and count).
 */
#ifndef MAMORI_ATTACK_DB_H
#define MAMORI_ATTACK_DB_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "ddos/ddos_detect.h"

#define ATTACK_DB_MAX_POINTS 3600     /* timeline points kept per attack */
#define ATTACK_DB_MAX_STEPS 32        /* mitigation steps kept per attack */
#define ATTACK_DB_QUEUE 4096          /* writes waiting for the writer */

struct attack_db;

/* Opens (creating) path and starts the writer. retention_s: ended attacks
 * older than this are deleted (0 = kept); max_rows: the most kept (oldest
 * ended first). NULL on failure, the reason logged. Owner: the caller,
 * attack_db_close(). */
struct attack_db *attack_db_open(const char *path, int64_t retention_s, int64_t max_rows);
/* Applies what is queued, stops the writer and closes. NULL is fine. */
void attack_db_close(struct attack_db *db);

/* The id the next attack should take (max stored + 1, at least 1). */
int attack_db_next_id(struct attack_db *db, uint64_t *next);
/* Attacks left open by a stop or a crash are closed at their last second
 * and flagged interrupted; fn (may be NULL) gets each one's id_str (so
 * their automatic mitigations can be ended). Synchronous: call at start,
 * before attacks are posted. Sets *n (may be NULL) to how many. */
int attack_db_recover(struct attack_db *db, void (*fn)(void *arg, const char *id_str),
		      void *arg, size_t *n);

/* Queues the attack as it is now (a copy: timeline, talkers, action).
 * ended: it is over. action: what mamori asked the network to do (may be
 * NULL: unchanged). Never waits: M_EAGAIN when the queue is full (counted
 * by the caller), M_ECLOSED when closing. */
int attack_db_put(struct attack_db *db, const struct ddos_attack *a, int ended,
		  const char *action);
/* Queues one mitigation step of attack id_str (what: announce, hold,
 * withdraw, refuse, ...; key: the mitigation's key; detail may be NULL). */
int attack_db_note(struct attack_db *db, const char *id_str, int64_t when,
		   const char *what, const char *key, const char *detail);
/* Waits up to timeout_ms until everything queued so far is written;
 * 0 or M_EAGAIN. */
int attack_db_flush(struct attack_db *db, int timeout_ms);

/* A listing. Zero fields mean "any". */
struct attack_query {
	int active;              /* 1: only in progress, -1: only ended, 0: both */
	int64_t from_s, to_s;    /* attacks overlapping [from, to] (epoch s) */
	const char *target;      /* "203.0.113.10", "203.0.113.0/24": exact */
	const char *group;
	uint32_t limit;          /* 0 = 100 */
	uint64_t offset;
};

/* {"total":N,"limit":L,"offset":O,"attacks":[...]} newest first, without
 * timelines. M_EIO when the database fails. */
int attack_db_list_json(struct attack_db *db, const struct attack_query *q, struct buf *out);
/* One attack with its timeline and mitigation steps; M_ENOTFOUND. */
int attack_db_get_json(struct attack_db *db, uint64_t id, struct buf *out);

/* Names of an attack's vectors as a JSON array into out:
 * ["memcached amplification","IP fragment flood"]. */
int attack_vectors_json(const struct ddos_attack *a, struct buf *out);

#endif
