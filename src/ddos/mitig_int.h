/*
 * Private to the mitigation files: the manager's struct, the back-end
 * table, the external-command runner and the SQLite layer.
 */
#ifndef MAMORI_MITIG_INT_H
#define MAMORI_MITIG_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "ddos/mitig.h"

struct mitig;

/* A back-end is a small table of functions chosen by name. Incremental
 * back-ends (GoBGP, ExaBGP) announce and withdraw one route at a time;
 * full-state ones (BIRD, nftables) are handed every desired route at once
 * by sync. list reads what the speaker announces; NULL means it cannot be
 * read, and the manager's own record of what it sent stands in. */
struct mitig_backend {
	const char *name;
	int full_state;
	int (*announce)(struct mitig *m, const struct mitig_route *r, struct buf *err);
	int (*withdraw)(struct mitig *m, const struct mitig_route *r, struct buf *err);
	int (*sync)(struct mitig *m, const struct mitig_route *r, size_t n, struct buf *err);
	int (*list)(struct mitig *m, struct mitig_route **out, size_t *n, struct buf *err);
};

extern const struct mitig_backend mitig_be_gobgp;
extern const struct mitig_backend mitig_be_exabgp;
extern const struct mitig_backend mitig_be_bird;
extern const struct mitig_backend mitig_be_nft;

struct mitig {
	pthread_mutex_t lock;
	struct mitig_config cfg;         /* a deep copy */
	const struct mitig_backend *be;  /* NULL for backend none */
	sqlite3 *db;
	mitig_observer_fn observer;
	void *observer_arg;
	int64_t next_retry;              /* no failed entry before this (seconds) */
	int need_reconcile;              /* a withdrawal failed: tick reconciles */
	int64_t next_reconcile;          /* not before this, after a failed one */
};

/* ---- external commands (mitig_exec.c) ---- */

/* Runs argv[0] (searched in PATH when it has no '/') with fork and execve,
 * no shell; writes input (may be NULL) to its standard input; kills it
 * after timeout_ms. Its standard output goes to out (may be NULL) and its
 * standard error, or what went wrong, to err; both capped at 1 MiB.
 * 0 when it exited 0; M_EIO otherwise. */
int mitig_exec(char *const argv[], const char *input, size_t inlen, int timeout_ms,
	       struct buf *out, struct buf *err);
/* Writes data to a FIFO whose reader must already be there (O_NONBLOCK
 * open; M_EAGAIN with no reader within timeout_ms). */
int mitig_fifo_write(const char *path, const char *data, size_t len, int timeout_ms,
		     struct buf *err);

/* ---- the store (mitig_db.c); every call with m->lock held ---- */

int mitig_db_open(const char *path, sqlite3 **out);
int mitig_db_begin(sqlite3 *db);
int mitig_db_commit(sqlite3 *db);
void mitig_db_rollback(sqlite3 *db);
/* 0 and *e, or M_ENOTFOUND. */
int mitig_db_get(sqlite3 *db, const char *key, struct mitig_entry *e);
int mitig_db_put(sqlite3 *db, const struct mitig_entry *e);
int mitig_db_del(sqlite3 *db, const char *key);
/* Every entry (oldest first); where: an SQL condition or NULL, in which
 * ?1 is iarg and ?2 is sarg. */
int mitig_db_select(sqlite3 *db, const char *where, int64_t iarg, const char *sarg,
		    struct mitig_entry **out, size_t *n);
int mitig_db_count(sqlite3 *db, const char *where, size_t *n);
/* The record of what was sent (for back-ends that cannot be read). */
int mitig_db_sent_put(sqlite3 *db, const struct mitig_route *r);
int mitig_db_sent_del(sqlite3 *db, const char *key);
int mitig_db_sent_list(sqlite3 *db, struct mitig_route **out, size_t *n);
int mitig_db_sent_replace(sqlite3 *db, const struct mitig_route *r, size_t n);

/* ---- shared helpers ---- */

int mitig_config_copy(struct mitig_config *dst, const struct mitig_config *src);
/* The command timeout of m in milliseconds. */
int mitig_timeout_ms(const struct mitig *m);
/* Appends a route array element; *n bounded by max. */
int mitig_routes_push(struct mitig_route **v, size_t *n, size_t max,
		      const struct mitig_route *r);
/* The float bits of a FlowSpec traffic-rate (RFC 8955): 0 for discard. */
uint32_t mitig_rate_bits(const struct mitig_rule *r);
/* A route read back from a speaker: key from the rule, fingerprint from
 * what the speaker says it announces with it. */
int mitig_route_from_speaker(const struct mitig_rule *r, const struct mitig_prefix *nh,
			     const uint32_t *comm, size_t ncomm, struct mitig_route *out);
/* Formats a community as "65535:666". */
void mitig_comm_str(uint32_t c, char *out, size_t outsz);

#endif
