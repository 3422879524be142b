/*
 * Private to the collector (collect.c: configuration, reports, the API's
 * requests, reload, lifecycle; collect_thread.c: the threads that receive,
 * decode, hand off, count and judge). ddos.threads sets how many threads:
 * each has its own socket per listener, decoders and detector, and owns
 * a shard of the protected space (ddos_shard.h). With one thread nothing
 * is shared and nothing handed off: the collector of before.
 */
#ifndef MAMORI_DDOS_COLLECT_INT_H
#define MAMORI_DDOS_COLLECT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "ddos/collect.h"
#include "ddos/ddos_shard.h"
#include "ddos/flow.h"

#define RECV_BATCH 64            /* messages per recvmmsg() at most */
#define RECV_BYTES (128u << 10)  /* ... and about this many bytes (UDP_GRO runs) */
#define MAX_DGRAM 65536
#define TOP_SLOTS 8              /* API requests (top talkers, exporters) at once */
#define ACTION_MAX 320
#define EVENT_BATCH_BYTES (16u << 10)
#define WARNED_MAX 1024          /* exporters whose long-timeout warning is told once */

enum { ERR_PARSE, ERR_UNSUPP, ERR_LIMIT, ERR_OTHER, ERR_N };

/* One socket of a listener, on one thread. The metrics are the
 * listener's, shared by its threads (each adds what it saw). */
struct listener {
	const char *name;          /* "netflow" or "sflow" */
	char addr[128];
	int fd;
	int port;
	enum flow_format fmt;
	struct flow_decoder *dec;
	uint32_t ovfl;             /* the kernel's drop count, as last reported */
	uint32_t ovfl_pub;         /* ... as last added to m_drops */
	uint64_t *stat_pub;        /* flow_stats as last added, one per flow_stat_descs entry */
	struct metric *m_dgrams, *m_bytes, *m_drops, *m_truncated, *m_err[ERR_N];
	struct metric **m_stat;
	long long log_last;
	int vlen;                  /* messages the next recvmmsg() asks for (drain) */
};

/* What a thread remembers of an attack in progress. */
struct live {
	uint64_t id;               /* 0 = free */
	int tier;                  /* the strongest tier a mitigation was asked for */
	int seen_tier;             /* the strongest tier seen (asked for or not) */
	int posted;                /* a mitigation was posted: post its end */
	int blackhole;             /* a blackhole was asked for: it stays, whatever the vector */
	char key[MITIG_KEY_MAX];   /* the filter rule asked for last (mitig_rule_key) */
	int match_ready;           /* the attack's match as last reported */
	uint32_t match_amp;
	uint8_t match_proto;
	char summary[192];         /* its name then (for "vector changed from") */
	char action[ACTION_MAX];
};

/* Figures a thread adds to the shared metrics: each publication adds the
 * difference since the last one, so the metric is the sum over threads;
 * PUB_EVAL (the threads judge their shards side by side) is their
 * largest. */
enum {
	PUB_RECORDS, PUB_COUNTED, PUB_UNPROTECTED, PUB_ALLOWED, PUB_LATE, PUB_STARTED, PUB_ENDED,
	PUB_ACTIVE, PUB_HOSTS, PUB_MEMORY, PUB_EVAL, PUB_HANDOFF_DROPS, PUB_N
};

struct ddos_cthread {
	struct ddos_collector *c;
	unsigned k;                /* its shard */
	pthread_t th;
	int started;
	struct listener l[2];
	int nl;
	int ep, wake;
	_Atomic int sleeping;      /* in epoll_wait: producers wake it */
	struct ddos_detector *det;
	const struct ddos_config *dc;   /* in force on this thread */
	int dry_run;
	struct live *live;
	size_t nlive;

	struct ddos_handoff ho;    /* records to its detector or to their shard's thread */

	char *bufs;
	struct mmsghdr msgs[RECV_BATCH];
	struct iovec iov[RECV_BATCH];
	struct sockaddr_storage peers[RECV_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(struct timespec)) +
			 CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctrl[RECV_BATCH];

	struct metric *m_dgrams;   /* with several threads: datagrams this one received */
	uint64_t pub[PUB_N];       /* as last added */
	_Atomic int64_t eval_us;   /* its last second's judging, µs */
	long long log_last;
	int64_t next_minute;       /* monotonic µs */
};

enum { SLOT_FREE, SLOT_PENDING, SLOT_DONE, SLOT_ABANDONED };
enum { ASK_TOP, ASK_EXPORTERS };

/* Parts of a top-talker answer: the host, its aggregate and the attacks of
 * the shard that owns it; the group over every shard (shard 0). */
#define TOP_TARGET 1
#define TOP_GROUP 2

/* One API request to one collector thread. The answer is written under
 * the mutex, only while the slot is pending, and taken by the asker (with
 * the arrays it holds). */
struct top_slot {
	int state;
	int kind;                  /* ASK_* */
	unsigned thread;           /* who answers */
	int parts;                 /* ASK_TOP: TOP_* */
	int rc;
	struct flow_ip ip;
	struct ddos_top ans;
	struct ddos_exporter_list exp;
	struct ddos_exporter_stat *xs;   /* ASK_EXPORTERS: the counters' figures */
	size_t nxs;
};

/* A reload handed to the collector threads (ddos_collector_reload). */
struct reload_req {
	struct ddos_detect_conf **nc;   /* one per thread */
	struct ddos_config *dc;    /* moved in from the caller's settings */
	int dry_run;
	unsigned left;             /* threads yet to put it in force; under mu */
	unsigned char applied[DDOS_SHARDS_MAX];   /* by thread; under mu */
	int abandoned;             /* under mu */
	int replaced;              /* a later reload took its place before the threads did */
	struct ddos_config *old;   /* the configuration it replaces: freed by the last thread */
	struct ddos_reload_stats st;
};

struct ddos_collector {
	unsigned nthreads;
	struct ddos_cthread *t;
	struct ddos_gsync *gs;     /* NULL with one thread */
	struct ddos_spsc *ring;    /* [from * nthreads + to] */
	unsigned plen_v4, plen_v6; /* the aggregates' lengths: the partition */
	const struct ddos_config *dc;   /* the caller's, then dc_own after a reload */
	struct ddos_config *dc_own;
	struct reload_req *reload; /* pending, under mu */
	struct ddos_collect_deps deps;
	const struct input *in;
	atomic_int stop;
	int started;

	pthread_mutex_t mu;        /* the request slots, reloads, closed */
	pthread_cond_t cv;
	struct top_slot slots[TOP_SLOTS];
	int closed;

	pthread_mutex_t ev_mu;     /* events from other threads (the mitigation observer), warned */
	int events_open;
	struct flow_ip warned[WARNED_MAX];   /* exporters warned of (several threads) */
	size_t nwarned;

	struct metric *m_cap_packets, *m_cap_bytes, *m_cap_records, *m_cap_drops,
		*m_cap_kernel, *m_cap_skipped[3];
	struct metric *m_pub[PUB_N];
	struct metric *m_dropped[4];
};

/* collect.c */
extern const char *const ddos_err_kinds[ERR_N];
extern const struct ddos_handlers ddos_collect_handlers;
/* The thread's share of the API's requests and of a pending reload. */
void ddos_collect_serve(struct ddos_cthread *t);
void ddos_collect_apply_reload(struct ddos_cthread *t);

/* collect_thread.c */
int ddos_cthread_init(struct ddos_cthread *t, const struct ddos_collect_config *cc,
		      struct buf *err);
void ddos_cthread_fini(struct ddos_cthread *t);
void *ddos_cthread_main(void *arg);
/* Everything received so far into the detectors (own batch and staged
 * hand-offs, then what the other threads handed over). */
void ddos_cthread_flush(struct ddos_cthread *t);
void ddos_cthread_wake(struct ddos_cthread *t);
void ddos_collect_metrics_init(struct ddos_collector *c);
void ddos_cthread_publish(struct ddos_cthread *t);

#endif
