/*
 * Metrics: counters, gauges and histograms registered at start-up and updated
 * lock-free (relaxed atomics) on hot paths; /metrics renders them in the
 * Prometheus text format. Registration is for start-up (a mutex guards it);
 * a metric lives until metrics_fini().
 */
#ifndef MAMORI_METRICS_H
#define MAMORI_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/buf.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

#define METRIC_HIST_BUCKETS 12

struct metric {
	const char *name;      /* e.g. "mamori_events_in_total" */
	const char *help;
	char labels[128];      /* rendered label set, e.g. input="syslog_udp" */
	enum metric_type type;
	_Atomic uint64_t value;                       /* counter / gauge */
	_Atomic uint64_t bucket[METRIC_HIST_BUCKETS]; /* histogram, cumulative at render */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_us;
};

/* Registers (or finds, for the same name and labels) a metric. labels may be
 * NULL or a rendered label set. Never NULL: aborts at start-up when the fixed
 * table is full, which is a programming error. */
struct metric *metric_get(const char *name, const char *help,
			  enum metric_type type, const char *labels);

static inline void metric_add(struct metric *m, uint64_t n)
{
	atomic_fetch_add_explicit(&m->value, n, memory_order_relaxed);
}

static inline void metric_set(struct metric *m, uint64_t v)
{
	atomic_store_explicit(&m->value, v, memory_order_relaxed);
}

static inline uint64_t metric_value(struct metric *m)
{
	return atomic_load_explicit(&m->value, memory_order_relaxed);
}

/* Records one observation in microseconds (histogram buckets in seconds,
 * from 100 µs to 10 s). */
void metric_observe_us(struct metric *m, uint64_t us);

/* Appends every metric in Prometheus text exposition format. */
int metrics_render(struct buf *out);
void metrics_fini(void);

#endif
