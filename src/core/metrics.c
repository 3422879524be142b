/*
 * A fixed table of metrics. Registration (start-up) takes a mutex; updates
 * are relaxed atomics; rendering walks the table and groups series by name so
 * each family gets one HELP/TYPE header.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"

#define METRICS_MAX 1024

static struct metric metrics_table[METRICS_MAX];
static size_t metrics_n;
static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;

/* Upper bounds of histogram buckets, in microseconds. */
static const uint64_t hist_le_us[METRIC_HIST_BUCKETS] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 1000000, 10000000
};

struct metric *metric_get(const char *name, const char *help,
			  enum metric_type type, const char *labels)
{
	struct metric *m = NULL;

	if (!labels)
		labels = "";
	pthread_mutex_lock(&metrics_lock);
	for (size_t i = 0; i < metrics_n; i++) {
		if (strcmp(metrics_table[i].name, name) == 0 &&
		    strcmp(metrics_table[i].labels, labels) == 0) {
			m = &metrics_table[i];
			goto out;
		}
	}
	if (metrics_n == METRICS_MAX) {
		pthread_mutex_unlock(&metrics_lock);
		fatal("metrics", "event=table_full name=%s", name);
	}
	m = &metrics_table[metrics_n++];
	m->name = name;
	m->help = help;
	m->type = type;
	snprintf(m->labels, sizeof(m->labels), "%s", labels);
out:
	pthread_mutex_unlock(&metrics_lock);
	return m;
}

void metric_observe_us(struct metric *m, uint64_t us)
{
	for (int i = 0; i < METRIC_HIST_BUCKETS; i++) {
		if (us <= hist_le_us[i]) {
			atomic_fetch_add_explicit(&m->bucket[i], 1, memory_order_relaxed);
			break;
		}
	}
	atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->sum_us, us, memory_order_relaxed);
}

static int render_histogram(struct buf *out, struct metric *m)
{
	uint64_t cum = 0;
	const char *sep = m->labels[0] ? "," : "";
	int r;

	for (int i = 0; i < METRIC_HIST_BUCKETS; i++) {
		cum += atomic_load_explicit(&m->bucket[i], memory_order_relaxed);
		r = buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", m->name,
			       m->labels, sep, (double)hist_le_us[i] / 1e6,
			       (unsigned long long)cum);
		if (r < 0)
			return r;
	}
	uint64_t count = atomic_load_explicit(&m->count, memory_order_relaxed);
	r = buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", m->name, m->labels,
		       sep, (unsigned long long)count);
	if (r < 0)
		return r;
	if (m->labels[0])
		r = buf_printf(out, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", m->name,
			       m->labels,
			       (double)atomic_load(&m->sum_us) / 1e6, m->name,
			       m->labels, (unsigned long long)count);
	else
		r = buf_printf(out, "%s_sum %.6f\n%s_count %llu\n", m->name,
			       (double)atomic_load(&m->sum_us) / 1e6, m->name,
			       (unsigned long long)count);
	return r;
}

int metrics_render(struct buf *out)
{
	static const char *const type_names[] = { "counter", "gauge", "histogram" };
	size_t n;
	int r = 0;

	pthread_mutex_lock(&metrics_lock);
	n = metrics_n;
	pthread_mutex_unlock(&metrics_lock);

	char *done = calloc(n ? n : 1, 1);
	if (!done)
		return -1;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (done[i])
			continue;
		struct metric *head = &metrics_table[i];
		r = buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", head->name,
			       head->help, head->name, type_names[head->type]);
		for (size_t j = i; j < n && r == 0; j++) {
			struct metric *m = &metrics_table[j];
			if (done[j] || strcmp(m->name, head->name) != 0)
				continue;
			done[j] = 1;
			if (m->type == METRIC_HISTOGRAM)
				r = render_histogram(out, m);
			else if (m->labels[0])
				r = buf_printf(out, "%s{%s} %llu\n", m->name, m->labels,
					       (unsigned long long)metric_value(m));
			else
				r = buf_printf(out, "%s %llu\n", m->name,
					       (unsigned long long)metric_value(m));
		}
	}
	free(done);
	return r;
}

void metrics_fini(void)
{
	pthread_mutex_lock(&metrics_lock);
	memset(metrics_table, 0, sizeof(metrics_table));
	metrics_n = 0;
	pthread_mutex_unlock(&metrics_lock);
}
