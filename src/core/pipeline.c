/*
 * The pipeline's threads and queues. Sensors do I/O only; workers parse, so
 * parsing spreads over every core; one writer thread owns the store's write
 * side, as SQLite wants a single writer. Both queues are bounded, so a slow
 * store pushes back on workers, workers on sensors, and TCP sensors on their
 * peers; nothing accepted is dropped.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "core/queue.h"
#include "ingest/ingest.h"
#include "store/store.h"

#define PIPELINE_MAX_INPUTS 64
#define PIPELINE_MAX_STAGES 16
#define PIPELINE_MAX_WORKERS 64
#define PIPELINE_POOL_MAX 16     /* recycled event batches kept */

struct stage {
	const char *name;
	pipeline_stage_fn fn;
	void *ctx;
};

struct pipeline {
	struct pipeline_config cfg;
	struct store *store;
	struct queue *in, *out;
	pthread_t workers[PIPELINE_MAX_WORKERS];
	unsigned n_workers;
	pthread_t writer;
	int started;
	atomic_int draining;             /* set by pipeline_drain: bounded retries */
	struct input inputs[PIPELINE_MAX_INPUTS];
	unsigned n_inputs;
	struct stage stages[PIPELINE_MAX_STAGES];
	unsigned n_stages;
	pthread_mutex_t lock;            /* inputs table and batch pool */
	struct event_batch *pool;
	unsigned pool_n;
	struct metric *m_out, *m_store_errors, *m_store_lat, *m_lost;
	struct metric *m_depth_in, *m_depth_out, *m_batches;
};

static _Atomic uint64_t id_counter;

/* Ids are the start time in microseconds shifted left by 8, then counted up:
 * unique across restarts unless more than 256 events a microsecond are
 * sustained since start, and increasing, which suits rowid-keyed stores. */
static uint64_t id_reserve(uint64_t n)
{
	uint64_t cur = atomic_load(&id_counter);

	if (cur == 0) {
		uint64_t seed = (uint64_t)clock_now_us() << 8;
		atomic_compare_exchange_strong(&id_counter, &cur, seed);
	}
	return atomic_fetch_add(&id_counter, n);
}

uint64_t event_id_next(void)
{
	return id_reserve(1);
}

/* Raw batches are recycled too: a listener allocates one per batch (a
 * megabyte of buffer) and the store writer frees it on another thread, and
 * with glibc that cross-thread free contends with the listener's own
 * allocations. A small process-wide free list of same-sized batches avoids
 * both the allocation and the contention. */
#define RAW_POOL_MAX 16

static pthread_mutex_t raw_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct raw_batch *raw_pool[RAW_POOL_MAX];
static unsigned raw_pool_n;

struct raw_batch *raw_batch_new(const struct input *in, uint32_t cap_recs,
				size_t cap_bytes)
{
	struct raw_batch *b = NULL;

	pthread_mutex_lock(&raw_pool_lock);
	for (unsigned i = 0; i < raw_pool_n; i++) {
		if (raw_pool[i]->cap == cap_recs && raw_pool[i]->data_cap == cap_bytes) {
			b = raw_pool[i];
			raw_pool[i] = raw_pool[--raw_pool_n];
			break;
		}
	}
	pthread_mutex_unlock(&raw_pool_lock);
	if (b) {
		b->input = in;
		b->n = 0;
		b->len = 0;
		b->recv_us = 0;
		return b;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->recs = malloc((size_t)cap_recs * sizeof(*b->recs));
	b->data = malloc(cap_bytes);
	if (!b->recs || !b->data) {
		free(b->recs);
		free(b->data);
		free(b);
		return NULL;
	}
	b->input = in;
	b->cap = cap_recs;
	b->data_cap = cap_bytes;
	return b;
}

static void raw_batch_destroy(struct raw_batch *b)
{
	free(b->recs);
	free(b->data);
	free(b);
}

void raw_batch_free(struct raw_batch *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&raw_pool_lock);
	if (raw_pool_n < RAW_POOL_MAX) {
		raw_pool[raw_pool_n++] = b;
		b = NULL;
	}
	pthread_mutex_unlock(&raw_pool_lock);
	if (b)
		raw_batch_destroy(b);
}

/* Releases the recycled raw batches (at shutdown). */
static void raw_batch_pool_drain(void)
{
	pthread_mutex_lock(&raw_pool_lock);
	while (raw_pool_n > 0)
		raw_batch_destroy(raw_pool[--raw_pool_n]);
	pthread_mutex_unlock(&raw_pool_lock);
}

int raw_batch_add(struct raw_batch *b, const char *p, size_t n,
		  const char *peer, size_t peer_len, uint16_t flags)
{
	struct raw_rec *r;

	if (peer_len > 255)
		peer_len = 255;
	if (b->n == b->cap)
		return M_ELIMIT;
	if (b->len + n + peer_len > b->data_cap) {
		if (b->n > 0)
			return M_ELIMIT;
		/* A record longer than a whole batch: cut it. */
		if (peer_len >= b->data_cap)
			peer_len = 0;
		n = b->data_cap - peer_len;
		flags |= RAW_F_TRUNCATED;
	}
	if (b->n == 0)
		b->recv_us = clock_now_us();
	r = &b->recs[b->n++];
	r->off = (uint32_t)b->len;
	r->len = (uint32_t)n;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	r->peer_off = (uint32_t)b->len;
	r->peer_len = (uint16_t)peer_len;
	if (peer_len) {
		memcpy(b->data + b->len, peer, peer_len);
		b->len += peer_len;
	}
	r->flags = flags;
	return M_OK;
}

static void event_batch_free(struct event_batch *eb)
{
	if (!eb)
		return;
	raw_batch_free(eb->raw);
	arena_fini(&eb->arena);
	free(eb->ev);
	free(eb);
}

/* Event batches are recycled through a small free list: an event array of a
 * few thousand events is megabytes, and allocating it fresh per batch costs
 * page faults and zeroing on every batch. */
static struct event_batch *event_batch_get(struct pipeline *p, uint32_t n)
{
	struct event_batch *eb = NULL;

	pthread_mutex_lock(&p->lock);
	if (p->pool) {
		eb = p->pool;
		p->pool = eb->next_free;
		p->pool_n--;
	}
	pthread_mutex_unlock(&p->lock);
	if (!eb) {
		eb = calloc(1, sizeof(*eb));
		if (!eb)
			return NULL;
		arena_init(&eb->arena, 256 * 1024, 0);
	}
	if (n == 0)
		n = 1;
	if (eb->cap < n) {
		struct event *ev = realloc(eb->ev, (size_t)n * sizeof(*ev));
		if (!ev) {
			event_batch_free(eb);
			return NULL;
		}
		eb->ev = ev;
		eb->cap = n;
	}
	eb->n = 0;
	eb->raw = NULL;
	eb->next_free = NULL;
	return eb;
}

static void event_batch_put(struct pipeline *p, struct event_batch *eb)
{
	raw_batch_free(eb->raw);
	eb->raw = NULL;
	arena_reset(&eb->arena);
	pthread_mutex_lock(&p->lock);
	if (p->pool_n < PIPELINE_POOL_MAX) {
		eb->next_free = p->pool;
		p->pool = eb;
		p->pool_n++;
		eb = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	event_batch_free(eb);
}

void pipeline_parse_record(enum raw_format fmt, const char *p, size_t n,
			   struct event *ev, struct arena *a)
{
	switch (fmt) {
	case RAW_SYSLOG:
		syslog_parse(p, n, ev, a);
		break;
	case RAW_JSON:
		json_event_parse(p, n, ev, a);
		break;
	default:
		event_set(ev, F_MESSAGE, str_make(p, n));
		break;
	}
	if (ev->ts_us == 0)
		ev->ts_us = ev->recv_us;
}

/* Logs a malformed record at most once per 10 s per input, with an escaped
 * sample, so a flood of bad input cannot flood the log. */
static void log_parse_error(struct input *in, const struct raw_batch *raw,
			    uint32_t idx, const struct event *ev)
{
	const struct raw_rec *r = &raw->recs[idx];
	char sample[256];

	if (!log_ratelimit(&in->last_err_log_us, 10 * 1000000LL))
		return;
	log_msg(LOG_WARN, "pipeline", "event=parse_error input=%s reason=%s sample=\"%s\"",
		in->name, parse_error_name((enum parse_error)ev->parse_error),
		log_escape(raw->data + r->off, r->len > 60 ? 60 : r->len, sample, sizeof(sample)));
}

/* The event batch of a raw batch, nothing parsed yet (parse_run). Owner
 * of the result: caller; it takes ownership of raw. */
static struct event_batch *batch_begin(struct pipeline *p, struct raw_batch *raw)
{
	struct event_batch *eb = event_batch_get(p, raw->n);

	if (!eb)
		return NULL;
	eb->raw = raw;
	eb->batch_id = id_reserve(raw->n ? raw->n : 1);
	return eb;
}

/* Parse outcomes of a batch, counted as its runs are parsed. */
struct parse_tally {
	uint64_t perr[PE_COUNT];
	int64_t first_err;
};

/* Parses records [from, to) of eb's raw batch into eb->ev[from, to). */
static void parse_run(struct pipeline *p, struct event_batch *eb, uint32_t from,
		      uint32_t to, struct parse_tally *t)
{
	const struct raw_batch *raw = eb->raw;
	const struct input *in = raw->input;

	for (uint32_t i = from; i < to; i++) {
		const struct raw_rec *r = &raw->recs[i];
		const char *rec = raw->data + r->off;
		struct event *ev = &eb->ev[eb->n++];

		event_clear(ev);
		ev->id = eb->batch_id + i;
		ev->recv_us = raw->recv_us;
		ev->input_id = in ? in->id : 0;
		pipeline_parse_record(in ? in->format : RAW_SYSLOG, rec, r->len,
				      ev, &eb->arena);
		if (p->cfg.keep_original || (ev->flags & EV_F_PARSE_ERROR))
			event_set(ev, F_EVENT_ORIGINAL, str_make(rec, r->len));
		if (r->flags & RAW_F_TRUNCATED)
			event_set_parse_error(ev, PE_TRUNCATED);
		if (r->flags & RAW_F_BAD_FRAME) {
			event_set_parse_error(ev, PE_BAD_FRAME);
			event_set(ev, F_EVENT_ORIGINAL, str_make(rec, r->len));
		}
		if (r->peer_len && !event_has(ev, F_LOG_SOURCE_ADDRESS))
			event_set(ev, F_LOG_SOURCE_ADDRESS,
				  str_make(raw->data + r->peer_off, r->peer_len));
		if (ev->flags & EV_F_PARSE_ERROR) {
			t->perr[ev->parse_error < PE_COUNT ? ev->parse_error : PE_NONE]++;
			if (t->first_err < 0)
				t->first_err = (int64_t)i;
		}
		if (ev->flags & EV_F_TRUNCATED)
			t->perr[PE_TRUNCATED]++;
	}
}

/* The input's metrics and parse-error log for a parsed batch. */
static void batch_tally(struct pipeline *p, struct event_batch *eb,
			const struct parse_tally *t)
{
	const struct raw_batch *raw = eb->raw;
	const struct input *in = raw->input;

	if (!in)
		return;
	metric_add(in->m_events, raw->n);
	if (t->first_err >= 0)
		log_parse_error(&p->inputs[in->id], raw, (uint32_t)t->first_err,
				&eb->ev[t->first_err]);
	for (int k = 1; k < PE_COUNT; k++)
		if (t->perr[k] && in->m_parse_err[k])
			metric_add(in->m_parse_err[k], t->perr[k]);
}

/* A raw batch through parsing, every stage and the store's prepare hook,
 * PIPELINE_RUN events at a time (see pipeline_stage_fn). */
static void process_batch(struct pipeline *p, struct event_batch *eb, struct buf *scratch)
{
	struct parse_tally t = { .first_err = -1 };
	uint32_t n = eb->raw->n;

	for (uint32_t from = 0; from < n; from += PIPELINE_RUN) {
		uint32_t to = n - from > PIPELINE_RUN ? from + PIPELINE_RUN : n;

		parse_run(p, eb, from, to, &t);
		for (unsigned s = 0; s < p->n_stages; s++)
			p->stages[s].fn(eb, from, to, p->stages[s].ctx);
		if (p->store->ops->prepare)
			p->store->ops->prepare(p->store, eb->ev + from, to - from, &eb->arena,
					       scratch);
	}
	batch_tally(p, eb, &t);
}

static void *worker_main(void *arg)
{
	struct pipeline *p = arg;
	struct buf scratch;
	void *item;

	buf_init(&scratch, 64 << 20);
	while (queue_pop(p->in, &item, -1) == 0) {
		struct raw_batch *raw = item;
		struct event_batch *eb;

		for (;;) {
			eb = batch_begin(p, raw);
			if (eb)
				break;
			/* Out of memory: wait rather than drop. */
			log_msg(LOG_ERROR, "pipeline", "event=alloc_failed retry_ms=100");
			usleep(100000);
		}
		process_batch(p, eb, &scratch);
		if (queue_push(p->out, eb, -1) < 0) {
			/* Only after drain closed out early: a broken invariant. */
			log_msg(LOG_ERROR, "pipeline", "event=out_queue_closed lost=%u", eb->n);
			metric_add(p->m_lost, eb->n);
			event_batch_put(p, eb);
		}
	}
	buf_fini(&scratch);
	return NULL;
}

/* Writes one batch, retrying a failing store with back-off. Nothing is
 * given up while running; once draining (SIGTERM), a store that still fails
 * after ten tries loses the batch, counted and logged, so a broken disk
 * cannot hang the shutdown. */
static void write_one(struct pipeline *p, struct event_batch *eb)
{
	int attempts = 0;

	for (;;) {
		int64_t t0 = clock_mono_us();
		int r = p->store->ops->write_batch(p->store, eb->batch_id, eb->ev, eb->n);
		int draining = atomic_load(&p->draining);
		metric_observe_us(p->m_store_lat, (uint64_t)(clock_mono_us() - t0));
		if (r == 0) {
			metric_add(p->m_out, eb->n);
			if (eb->raw && eb->raw->input)
				metric_add(eb->raw->input->m_stored, eb->n);
			metric_add(p->m_batches, 1);
			break;
		}
		metric_add(p->m_store_errors, 1);
		attempts++;
		log_msg(LOG_ERROR, "pipeline", "event=store_write_failed err=\"%s\" events=%u attempt=%d",
			err_str(r), eb->n, attempts);
		if (draining && attempts >= 10) {
			metric_add(p->m_lost, eb->n);
			log_msg(LOG_ERROR, "pipeline", "event=events_lost count=%u", eb->n);
			break;
		}
		usleep(draining ? 100000 : attempts < 10 ? 100000 * (useconds_t)attempts : 1000000);
	}
	event_batch_put(p, eb);
}

static void *writer_main(void *arg)
{
	struct pipeline *p = arg;
	int64_t last_maint = clock_mono_us();
	void *item;
	int r;

	for (;;) {
		metric_set(p->m_depth_in, queue_depth(p->in));
		metric_set(p->m_depth_out, queue_depth(p->out));
		r = queue_pop(p->out, &item, 0);
		if (r == M_EAGAIN) {
			/* Idle: upkeep first (full-text indexing, retention). */
			if (p->store->ops->maintain &&
			    p->store->ops->maintain(p->store) > 0) {
				last_maint = clock_mono_us();
				continue;
			}
			r = queue_pop(p->out, &item, 200);
			if (r == M_EAGAIN)
				continue;
		}
		if (r == M_ECLOSED)
			break;
		write_one(p, item);
		if (p->store->ops->maintain && clock_mono_us() - last_maint > 1000000) {
			p->store->ops->maintain(p->store);
			last_maint = clock_mono_us();
		}
	}
	if (p->store->ops->flush)
		p->store->ops->flush(p->store);
	return NULL;
}

struct pipeline *pipeline_new(const struct pipeline_config *cfg,
			      struct store *store)
{
	struct pipeline *p = calloc(1, sizeof(*p));
	long cores;

	if (!p)
		return NULL;
	p->cfg = *cfg;
	if (p->cfg.workers == 0) {
		cores = sysconf(_SC_NPROCESSORS_ONLN);
		p->cfg.workers = cores > 0 ? (unsigned)cores : 1;
	}
	if (p->cfg.workers > PIPELINE_MAX_WORKERS)
		p->cfg.workers = PIPELINE_MAX_WORKERS;
	if (p->cfg.in_queue_batches == 0)
		p->cfg.in_queue_batches = 64;
	if (p->cfg.out_queue_batches == 0)
		p->cfg.out_queue_batches = 16;
	p->store = store;
	p->in = queue_new(p->cfg.in_queue_batches);
	p->out = queue_new(p->cfg.out_queue_batches);
	if (!p->in || !p->out) {
		pipeline_free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	p->m_out = metric_get("mamori_events_stored_total",
			      "Events written to the store", METRIC_COUNTER, NULL);
	p->m_batches = metric_get("mamori_store_batches_total",
				  "Batches written to the store", METRIC_COUNTER, NULL);
	p->m_store_errors = metric_get("mamori_store_errors_total",
				       "Failed store writes (retried)", METRIC_COUNTER, NULL);
	p->m_store_lat = metric_get("mamori_store_write_seconds",
				    "Latency of one store batch write", METRIC_HISTOGRAM, NULL);
	p->m_lost = metric_get("mamori_events_lost_total",
			       "Events accepted but not stored (store failed at shutdown)",
			       METRIC_COUNTER, NULL);
	p->m_depth_in = metric_get("mamori_queue_depth", "Batches waiting in a queue",
				   METRIC_GAUGE, "queue=\"parse\"");
	p->m_depth_out = metric_get("mamori_queue_depth", "Batches waiting in a queue",
				    METRIC_GAUGE, "queue=\"store\"");
	return p;
}

const struct input *pipeline_add_input(struct pipeline *p, const char *name,
				       enum raw_format fmt)
{
	struct input *in;
	char labels[128], l2[160];

	pthread_mutex_lock(&p->lock);
	if (p->n_inputs == PIPELINE_MAX_INPUTS) {
		pthread_mutex_unlock(&p->lock);
		return NULL;
	}
	in = &p->inputs[p->n_inputs];
	in->id = (uint16_t)p->n_inputs++;
	pthread_mutex_unlock(&p->lock);

	snprintf(in->name, sizeof(in->name), "%s", name);
	in->format = fmt;
	/* Label values are escaped: names may hold a file path. */
	char esc[100];
	size_t o = 0;
	for (size_t i = 0; in->name[i] && o + 2 < sizeof(esc); i++) {
		if (in->name[i] == '"' || in->name[i] == '\\')
			esc[o++] = '\\';
		esc[o++] = in->name[i];
	}
	esc[o] = '\0';
	snprintf(labels, sizeof(labels), "input=\"%s\"", esc);
	in->m_events = metric_get("mamori_events_in_total",
				  "Records received and parsed, per input", METRIC_COUNTER, labels);
	in->m_stored = metric_get("mamori_events_out_total",
				  "Events stored, per input", METRIC_COUNTER, labels);
	in->m_bytes = metric_get("mamori_input_bytes_total", "Bytes received, per input",
				 METRIC_COUNTER, labels);
	in->m_drops = metric_get("mamori_input_drops_total",
				 "Records dropped on a full queue (UDP only), per input",
				 METRIC_COUNTER, labels);
	in->m_truncated = metric_get("mamori_input_truncated_total",
				     "Records cut at the line limit, per input",
				     METRIC_COUNTER, labels);
	for (int k = 1; k < PE_COUNT; k++) {
		snprintf(l2, sizeof(l2), "%s,reason=\"%s\"", labels,
			 parse_error_name((enum parse_error)k));
		in->m_parse_err[k] = metric_get("mamori_parse_errors_total",
						"Malformed records, per input and reason",
						METRIC_COUNTER, l2);
	}
	return in;
}

int pipeline_add_stage(struct pipeline *p, const char *name,
		       pipeline_stage_fn fn, void *ctx)
{
	if (p->started || p->n_stages == PIPELINE_MAX_STAGES)
		return M_ELIMIT;
	p->stages[p->n_stages++] = (struct stage){ name, fn, ctx };
	return M_OK;
}

int pipeline_start(struct pipeline *p)
{
	if (pthread_create(&p->writer, NULL, writer_main, p) != 0)
		return M_EIO;
	pthread_setname_np(p->writer, "mamori-writer");
	p->started = 1;
	for (unsigned i = 0; i < p->cfg.workers; i++) {
		if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) {
			log_msg(LOG_ERROR, "pipeline", "event=thread_create_failed");
			break;
		}
		pthread_setname_np(p->workers[i], "mamori-worker");
		p->n_workers++;
	}
	if (p->n_workers == 0) {
		queue_close(p->out);
		pthread_join(p->writer, NULL);
		p->started = 0;
		return M_EIO;
	}
	log_msg(LOG_INFO, "pipeline", "event=started workers=%u", p->n_workers);
	return M_OK;
}

int pipeline_submit(struct pipeline *p, struct raw_batch *b, int timeout_ms)
{
	if (b->n == 0) {
		raw_batch_free(b);
		return M_OK;
	}
	const struct input *in = b->input;
	size_t len = b->len;
	int r = queue_push(p->in, b, timeout_ms);

	if (r == 0 && in)
		metric_add(in->m_bytes, len);
	return r;
}

void pipeline_drain(struct pipeline *p)
{
	if (!p->started)
		return;
	atomic_store(&p->draining, 1);
	queue_close(p->in);
	for (unsigned i = 0; i < p->n_workers; i++)
		pthread_join(p->workers[i], NULL);
	p->n_workers = 0;
	queue_close(p->out);
	pthread_join(p->writer, NULL);
	p->started = 0;
	log_msg(LOG_INFO, "pipeline", "event=drained stored=%llu",
		(unsigned long long)metric_value(p->m_out));
}

void pipeline_free(struct pipeline *p)
{
	void *item;

	if (!p)
		return;
	pipeline_drain(p);
	/* Anything left (only if never started) is freed, not leaked. */
	if (p->in) {
		queue_close(p->in);
		while (queue_pop(p->in, &item, 0) == 0)
			raw_batch_free(item);
	}
	if (p->out) {
		queue_close(p->out);
		while (queue_pop(p->out, &item, 0) == 0)
			event_batch_free(item);
	}
	while (p->pool) {
		struct event_batch *eb = p->pool;
		p->pool = eb->next_free;
		event_batch_free(eb);
	}
	queue_free(p->in);
	queue_free(p->out);
	pthread_mutex_destroy(&p->lock);
	free(p);
	raw_batch_pool_drain();
}
