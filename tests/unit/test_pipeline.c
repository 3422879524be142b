/*
 * The pipeline with a store that records what it is given: every submitted
 * record reaches the store exactly once, in batches, with unique ids and the
 * raw record kept; a full queue answers M_EAGAIN to a non-blocking submit and
 * blocks a blocking one until the store catches up; drain delivers all;
 * stages and the store's prepare hook see each batch in runs, each run
 * right after it is parsed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "store/store.h"

struct fake_store {
	struct store base;
	pthread_mutex_t lock;
	uint64_t events, batches;
	uint64_t *ids;
	size_t n_ids, cap_ids;
	int originals, parse_errors, truncated;
	useconds_t delay;     /* per batch: a slow store */
	pthread_mutex_t gate; /* held by the test to stall the writer */
	int flushed;
};

static int fake_write(struct store *s, uint64_t batch_id, const struct event *ev, size_t n)
{
	struct fake_store *f = (struct fake_store *)s;

	pthread_mutex_lock(&f->gate);
	pthread_mutex_unlock(&f->gate);
	if (f->delay)
		usleep(f->delay);
	pthread_mutex_lock(&f->lock);
	assert_true(batch_id == ev[0].id);
	for (size_t i = 0; i < n; i++) {
		if (f->n_ids == f->cap_ids) {
			f->cap_ids = f->cap_ids ? f->cap_ids * 2 : 1024;
			f->ids = realloc(f->ids, f->cap_ids * sizeof(*f->ids));
		}
		f->ids[f->n_ids++] = ev[i].id;
		if (event_has(&ev[i], F_EVENT_ORIGINAL))
			f->originals++;
		if (ev[i].flags & EV_F_PARSE_ERROR)
			f->parse_errors++;
		if (ev[i].flags & EV_F_TRUNCATED)
			f->truncated++;
		assert_true(ev[i].ts_us != 0);
	}
	f->events += n;
	f->batches++;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static int fake_flush(struct store *s)
{
	((struct fake_store *)s)->flushed = 1;
	return 0;
}

static const struct store_ops fake_ops = {
	.name = "fake",
	.write_batch = fake_write,
	.flush = fake_flush,
};

static struct fake_store *fake_new(void)
{
	struct fake_store *f = calloc(1, sizeof(*f));

	f->base.ops = &fake_ops;
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->gate, NULL);
	return f;
}

static void fake_free(struct fake_store *f)
{
	pthread_mutex_destroy(&f->lock);
	pthread_mutex_destroy(&f->gate);
	free(f->ids);
	free(f);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_everything_arrives_once(void **state)
{
	struct fake_store *f = fake_new();
	struct pipeline_config cfg = { .workers = 2, .in_queue_batches = 4,
				       .out_queue_batches = 2, .keep_original = 1 };
	struct pipeline *p = pipeline_new(&cfg, &f->base);
	const struct input *in = pipeline_add_input(p, "test", RAW_SYSLOG);
	char line[256];
	const int batches = 200, per = 500;

	assert_non_null(in);
	assert_int_equal(pipeline_start(p), 0);
	for (int b = 0; b < batches; b++) {
		struct raw_batch *rb = raw_batch_new(in, per, 128 * 1024);
		for (int i = 0; i < per; i++) {
			int n = snprintf(line, sizeof(line),
					 "<13>1 2026-11-25T10:00:00Z host app - - - message %d/%d", b, i);
			uint16_t fl = (i == 7) ? RAW_F_TRUNCATED : 0;
			if (i == 9)
				n = snprintf(line, sizeof(line), "<999> broken");
			assert_int_equal(raw_batch_add(rb, line, (size_t)n, "127.0.0.1:9", 11, fl), 0);
		}
		assert_int_equal(pipeline_submit(p, rb, -1), 0);
	}
	pipeline_drain(p);
	assert_int_equal(f->events, (uint64_t)batches * per);
	assert_int_equal(f->originals, batches * per);
	assert_int_equal(f->truncated, batches);
	assert_true(f->parse_errors >= batches);
	assert_true(f->flushed);
	qsort(f->ids, f->n_ids, sizeof(*f->ids), cmp_u64);
	for (size_t i = 1; i < f->n_ids; i++)
		assert_true(f->ids[i] > f->ids[i - 1]);
	assert_int_equal(metric_value(in->m_events), (uint64_t)batches * per);
	assert_int_equal(metric_value(in->m_stored), (uint64_t)batches * per);
	pipeline_free(p);
	fake_free(f);
}

static void test_backpressure(void **state)
{
	struct fake_store *f = fake_new();
	struct pipeline_config cfg = { .workers = 1, .in_queue_batches = 2,
				       .out_queue_batches = 1 };
	struct pipeline *p;
	const struct input *in;
	int accepted = 0, refused = 0;

	pthread_mutex_lock(&f->gate);   /* the store is stuck */
	p = pipeline_new(&cfg, &f->base);
	in = pipeline_add_input(p, "bp", RAW_SYSLOG);
	assert_int_equal(pipeline_start(p), 0);
	for (int b = 0; b < 20; b++) {
		struct raw_batch *rb = raw_batch_new(in, 4, 1024);
		assert_int_equal(raw_batch_add(rb, "<13>x", 5, NULL, 0, 0), 0);
		int r = pipeline_submit(p, rb, 50);
		if (r == 0) {
			accepted++;
		} else {
			assert_int_equal(r, M_EAGAIN);
			raw_batch_free(rb);
			refused++;
		}
	}
	/* Queue (2) + worker holding one + store queue (1) + writer holding one. */
	assert_true(accepted <= 6);
	assert_true(refused >= 14);
	pthread_mutex_unlock(&f->gate);   /* the store recovers */
	pipeline_drain(p);
	assert_int_equal(f->events, (uint64_t)accepted);
	pipeline_free(p);
	fake_free(f);
}

static int failing_write(struct store *s, uint64_t batch_id, const struct event *ev, size_t n)
{
	return M_EIO;
}

static const struct store_ops failing_ops = {
	.name = "failing",
	.write_batch = failing_write,
};

/* A store that never succeeds cannot hang the shutdown: after bounded
 * retries the batch is counted as lost. */
static void test_failing_store_drains(void **state)
{
	struct store st = { &failing_ops };
	struct pipeline_config cfg = { .workers = 1 };
	struct pipeline *p = pipeline_new(&cfg, &st);
	const struct input *in = pipeline_add_input(p, "failing", RAW_SYSLOG);
	struct raw_batch *rb = raw_batch_new(in, 4, 1024);
	struct metric *lost = metric_get("mamori_events_lost_total", "", METRIC_COUNTER, NULL);
	uint64_t lost0 = metric_value(lost);

	assert_int_equal(pipeline_start(p), 0);
	assert_int_equal(raw_batch_add(rb, "<13>x", 5, NULL, 0, 0), 0);
	assert_int_equal(raw_batch_add(rb, "<13>y", 5, NULL, 0, 0), 0);
	assert_int_equal(pipeline_submit(p, rb, -1), 0);
	pipeline_drain(p);
	assert_int_equal(metric_value(lost) - lost0, 2);
	pipeline_free(p);
}

static void test_raw_batch_limits(void **state)
{
	struct raw_batch *rb = raw_batch_new(NULL, 2, 64);
	char big[200];

	memset(big, 'a', sizeof(big));
	/* A record larger than the whole batch is cut and flagged. */
	assert_int_equal(raw_batch_add(rb, big, sizeof(big), "peer", 4, 0), 0);
	assert_true(rb->recs[0].flags & RAW_F_TRUNCATED);
	assert_true(rb->len <= 64);
	assert_int_equal(raw_batch_add(rb, "x", 1, NULL, 0, 0), M_ELIMIT);
	raw_batch_free(rb);
	rb = raw_batch_new(NULL, 1, 64);
	assert_int_equal(raw_batch_add(rb, "x", 1, NULL, 0, 0), 0);
	assert_int_equal(raw_batch_add(rb, "y", 1, NULL, 0, 0), M_ELIMIT);
	raw_batch_free(rb);
}

/* What a stage and the prepare hook saw: every run in order, each event
 * parsed (its message read back) when its run reached the stage and the
 * next run not yet parsed. */
struct run_log {
	struct store base;
	uint32_t runs, prepared, events, stage_bad, prep_bad;
	uint32_t next;     /* the run the stage expects next starts here */
	uint32_t prep_at;  /* the prepare hook's next start */
	uint64_t batch_id;
};

static int runs_stage(struct event_batch *b, uint32_t from, uint32_t to, void *ctx)
{
	struct run_log *l = ctx;

	if (from == 0) {
		l->next = 0;
		l->prep_at = 0;
		l->batch_id = b->batch_id;
	}
	if (from != l->next || to <= from || to - from > PIPELINE_RUN || b->n != to)
		l->stage_bad++;
	for (uint32_t i = from; i < to; i++) {
		char want[32];
		struct str m = event_get(&b->ev[i], F_MESSAGE);

		snprintf(want, sizeof(want), "message %u", i);
		if (b->ev[i].id != b->batch_id + i || m.n != strlen(want) ||
		    memcmp(m.p, want, m.n) != 0)
			l->stage_bad++;
		/* A stage may add fields from the batch's arena. */
		event_set_copy(&b->ev[i], &b->arena, F_TAGS, "seen", 4);
	}
	l->next = to;
	l->runs++;
	l->events += to - from;
	return 0;
}

static int runs_prepare(struct store *st, struct event *ev, size_t n, struct arena *a,
			struct buf *scratch)
{
	struct run_log *l = (struct run_log *)st;

	(void)a;
	(void)scratch;
	if (n == 0 || ev[0].id != l->batch_id + l->prep_at || l->prep_at + n != l->next)
		l->prep_bad++;
	for (size_t i = 0; i < n; i++)
		if (!event_has(&ev[i], F_TAGS))
			l->prep_bad++;
	l->prep_at += (uint32_t)n;
	l->prepared++;
	return 0;
}

static int runs_write(struct store *s, uint64_t batch_id, const struct event *ev, size_t n)
{
	(void)s;
	(void)batch_id;
	(void)ev;
	(void)n;
	return 0;
}

static const struct store_ops runs_ops = {
	.name = "runs",
	.prepare = runs_prepare,
	.write_batch = runs_write,
};

static void test_stages_run_wise(void **state)
{
	struct run_log l = { .base = { &runs_ops } };
	struct pipeline_config cfg = { .workers = 1 };
	struct pipeline *p = pipeline_new(&cfg, &l.base);
	const struct input *in = pipeline_add_input(p, "runs", RAW_SYSLOG);
	/* Sizes around the run length: one short run, exact runs, a tail. */
	const uint32_t sizes[] = { 1, PIPELINE_RUN - 1, PIPELINE_RUN, PIPELINE_RUN + 1,
				   5 * PIPELINE_RUN + 17 };
	uint32_t want_runs = 0, want_events = 0;

	assert_non_null(in);
	assert_int_equal(pipeline_add_stage(p, "runs", runs_stage, &l), 0);
	assert_int_equal(pipeline_start(p), 0);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct raw_batch *rb = raw_batch_new(in, sizes[k], 64 * 1024);
		char line[64];

		for (uint32_t i = 0; i < sizes[k]; i++) {
			int n = snprintf(line, sizeof(line), "message %u", i);

			assert_int_equal(raw_batch_add(rb, line, (size_t)n, NULL, 0, 0), 0);
		}
		assert_int_equal(pipeline_submit(p, rb, -1), 0);
		want_runs += (sizes[k] + PIPELINE_RUN - 1) / PIPELINE_RUN;
		want_events += sizes[k];
	}
	pipeline_drain(p);
	assert_int_equal(l.stage_bad, 0);
	assert_int_equal(l.prep_bad, 0);
	assert_int_equal(l.runs, want_runs);
	assert_int_equal(l.prepared, want_runs);
	assert_int_equal(l.events, want_events);
	pipeline_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_everything_arrives_once),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_failing_store_drains),
		cmocka_unit_test(test_raw_batch_limits),
		cmocka_unit_test(test_stages_run_wise),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	metrics_fini();
	return r;
}
