/*
 * Private to the soc back-end (incident.c: the writer; incident_query.c: the
 * readers): the shared state of one open database.
 */
#ifndef MAMORI_INCIDENT_INT_H
#define MAMORI_INCIDENT_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "core/metrics.h"
#include "detect/incident.h"

#define SOC_PATH_MAX 4096
#define SOC_READ_POOL 8            /* idle read connections kept */
#define SOC_MAX_PENDING_CMDS 256   /* people's changes waiting at once */
#define SOC_MAX_QUEUE_BYTES ((size_t)64 << 20)

struct soc_cmd;                    /* a change made by a person (incident.c) */
struct soc_item;                   /* a queued alert copy (incident.c) */

struct soc_db {
	char path[SOC_PATH_MAX];
	int64_t window_us;
	int64_t retention_us;
	size_t queue_cap, batch_max;
	soc_incident_fn on_incident;
	void *ctx;

	/* the writer */
	sqlite3 *wdb;
	pthread_t thread;
	int thread_started;
	int64_t last_prune_us;

	pthread_mutex_t mu;
	pthread_cond_t work;           /* the writer waits for items here */
	pthread_cond_t done;           /* submitters wait for outcomes here */
	struct soc_item **ring;        /* queue_cap slots */
	size_t head, n;
	size_t queued_bytes;
	struct soc_cmd *cmds, **cmds_tail;
	size_t n_cmds;
	uint64_t seq_in, seq_done;     /* alerts accepted / written or failed */
	int stopping;

	uint64_t submitted, dropped, stored, failed;
	struct metric *m_dropped, *m_stored, *m_failed, *m_opened;

	/* readers */
	pthread_mutex_t pool_mu;
	sqlite3 *pool[SOC_READ_POOL];
	size_t n_pool;
};

/* Runs SQL without results; logs once on failure. 0 or M_EIO. */
int soc_exec(sqlite3 *db, const char *sql, const char *what);
/* Opens a connection to the database (WAL, busy timeout). Owner: caller. */
int soc_connect(const char *path, int readonly, sqlite3 **out);
void soc_read_pool_fini(struct soc_db *db);

#endif
