/*
 * The pipeline: sensors submit raw batches (records as received, not yet
 * parsed); worker threads parse them into events, run the stages (enrich,
 * detect) and hand event batches to the store writer thread.
 *
 *   sensor ──raw_batch──▶ [in queue] ──▶ workers: parse + stages ──event_batch──▶
 *   [out queue] ──▶ writer: store->write_batch()
 *
 * Backpressure: both queues are bounded. pipeline_submit() with a timeout of
 * -1 blocks (TCP sensors stop reading, so the sender is pushed back); with 0
 * it fails at once and the sensor counts a drop (UDP). pipeline_drain() closes
 * the input side and waits until every accepted record is in the store.
 */
#ifndef MAMORI_PIPELINE_H
#define MAMORI_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/event.h"

struct store;
struct metric;

/* How a worker parses a raw batch's records. */
enum raw_format {
	RAW_SYSLOG,   /* RFC 3164 / 5424, CEF inside */
	RAW_JSON,     /* one JSON object a record: EVE, Windows event, generic */
	RAW_FORMAT_COUNT
};

/* Record flags. */
#define RAW_F_TRUNCATED 0x1u   /* the sensor cut the record at the line limit */
#define RAW_F_BAD_FRAME 0x2u   /* the framer could not read a frame header */

struct raw_rec {
	uint32_t off, len;        /* record bytes in data */
	uint32_t peer_off;        /* sender's address text in data ("" = none) */
	uint16_t peer_len;
	uint16_t flags;
};

/* Input descriptor: one per listener / file, registered at start-up. */
struct input {
	uint16_t id;
	char name[48];            /* e.g. "syslog_udp", "json_tcp", "file:/x.json" */
	enum raw_format format;
	struct metric *m_events;  /* mamori_events_in_total{input=...} */
	struct metric *m_stored;  /* mamori_events_out_total{input=...} */
	struct metric *m_bytes;
	struct metric *m_drops;   /* UDP datagrams dropped on a full queue */
	struct metric *m_truncated;
	struct metric *m_parse_err[PE_COUNT];
	long long last_err_log_us; /* rate limit of parse-error logs */
};

struct raw_batch {
	const struct input *input;
	int64_t recv_us;
	uint32_t n, cap;          /* records */
	struct raw_rec *recs;
	char *data;
	size_t len, data_cap;     /* data_cap is fixed: a full batch is submitted */
};

/* Owner: the caller until submitted. cap_recs/cap_bytes bound the batch. */
struct raw_batch *raw_batch_new(const struct input *in, uint32_t cap_recs,
				size_t cap_bytes);
void raw_batch_free(struct raw_batch *b);
/* Appends one record; M_ELIMIT when it does not fit (submit, then retry on a
 * new batch). A record longer than the whole data capacity is cut and
 * flagged RAW_F_TRUNCATED. */
int raw_batch_add(struct raw_batch *b, const char *p, size_t n,
		  const char *peer, size_t peer_len, uint16_t flags);
static inline int raw_batch_full(const struct raw_batch *b, size_t next_len)
{
	return b->n == b->cap || b->len + next_len + 64 > b->data_cap;
}

/* A batch of parsed events and the memory they live in. */
struct event_batch {
	uint64_t batch_id;        /* id of its first event: idempotent stores */
	struct raw_batch *raw;    /* values borrow from raw->data */
	struct arena arena;
	struct event *ev;         /* n events */
	uint32_t n;
	uint32_t cap;             /* events ev can hold (batches are recycled) */
	struct event_batch *next_free;
};

/* A processing stage run by workers on every batch (enrich, detect), on
 * events [from, to) of it at a time: a worker parses a batch in runs of
 * PIPELINE_RUN events and passes each run through every stage (and the
 * store's prepare hook) right after parsing it, while the run is still in
 * the core's cache (a whole batch of 1,024 Windows events is ~4 MB; the
 * detection stage matched a third fewer events a second after parsing
 * them all first, bench_detect). It may add fields (allocating from
 * b->arena) or tag events; it must not block. */
#define PIPELINE_RUN 64u
typedef int (*pipeline_stage_fn)(struct event_batch *b, uint32_t from, uint32_t to,
				 void *ctx);

struct pipeline_config {
	unsigned workers;          /* 0 = one per online core */
	size_t in_queue_batches;   /* capacity of the raw queue */
	size_t out_queue_batches;  /* capacity of the store queue */
	int keep_original;         /* set event.original on every event */
	uint32_t max_batch_events; /* store transaction size (merged batches) */
};

struct pipeline;

/* Owner: the caller. The store is borrowed and must outlive the pipeline. */
struct pipeline *pipeline_new(const struct pipeline_config *cfg,
			      struct store *store);
/* Registers an input; name is copied. NULL when the table is full. */
const struct input *pipeline_add_input(struct pipeline *p, const char *name,
				       enum raw_format fmt);
/* Adds a stage; call before pipeline_start(). */
int pipeline_add_stage(struct pipeline *p, const char *name,
		       pipeline_stage_fn fn, void *ctx);
int pipeline_start(struct pipeline *p);
/* Ownership of b passes to the pipeline on 0. timeout_ms as queue_push(). */
int pipeline_submit(struct pipeline *p, struct raw_batch *b, int timeout_ms);
/* Closes the input, lets workers and the writer finish everything queued. */
void pipeline_drain(struct pipeline *p);
void pipeline_free(struct pipeline *p);

/* Parses one record into ev (exposed for tests and benchmarks). */
void pipeline_parse_record(enum raw_format fmt, const char *p, size_t n,
			   struct event *ev, struct arena *a);

/* A new unique event id (monotonic per process, unique across restarts). */
uint64_t event_id_next(void);

#endif
