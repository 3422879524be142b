/*
 * The exporter list (exporters.h): sequence states of the decoders, joined
 * by address with the counters' per-exporter timing.
 *
 * Why the join is by address only: the counters see records, which name
 * their exporter but not which listener or sequence they came in; a router
 * that exports several source ids shares one active timeout anyway. Both
 * sides are bounded (max_sources per decoder, max_exporters in the
 * counters), and the join sorts once and searches (n log n, not n * m),
 * because it runs on the collector thread, between datagrams.
 */
#include "ddos/exporters.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"

struct add_walk {
	struct ddos_exporter_list *l;
	const char *listener;
};

static void add_one(void *arg, const struct flow_seq_stat *s)
{
	struct add_walk *w = arg;
	struct ddos_exporter_info *x;

	if (w->l->n >= w->l->cap)
		return;   /* cannot happen: room for every state was made */
	x = &w->l->v[w->l->n++];
	memset(x, 0, sizeof(*x));
	x->exporter = s->exporter;
	x->listener = w->listener;
	x->format = s->format;
	x->domain = s->domain;
	x->datagrams = s->datagrams;
	x->records = s->records;
	x->lost = s->lost;
	x->lost_records = s->unit_records;
	x->late = s->late;
	x->resets = s->resets;
	x->last_ms = s->last_ms;
	x->sampling = s->sampling;
	x->sampling_default = s->sampling_default;
	x->templates = s->templates;
}

int ddos_exporters_add(struct ddos_exporter_list *l, const char *listener,
		       struct flow_decoder *dec, int64_t now_ms)
{
	size_t want = l->n + flow_decoder_seq_count(dec);
	struct add_walk w = { l, listener };

	if (want > l->cap) {
		struct ddos_exporter_info *v = realloc(l->v, want * sizeof(*v));

		if (!v)
			return M_ENOMEM;
		l->v = v;
		l->cap = want;
	}
	flow_decoder_seq_visit(dec, now_ms, add_one, &w);
	return 0;
}

static int cmp_addr(const struct flow_ip *a, const struct flow_ip *b)
{
	int c = memcmp(a->a, b->a, 16);

	return c ? c : (int)a->family - (int)b->family;
}

static int cmp_by_address(const void *pa, const void *pb)
{
	return cmp_addr(&((const struct ddos_exporter_info *)pa)->exporter,
			&((const struct ddos_exporter_info *)pb)->exporter);
}

void ddos_exporters_by_address(struct ddos_exporter_list *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), cmp_by_address);
}

void ddos_exporters_timing(void *arg, const struct ddos_exporter_stat *e)
{
	struct ddos_exporter_list *l = arg;
	size_t lo = 0, hi = l->n;

	/* The first entry not below e's address. The counters keep IPv4
	 * v4-mapped like the decoders, and their family is that of the
	 * record's exporter, so the whole address compares. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cmp_addr(&l->v[mid].exporter, &e->ip) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < l->n && cmp_addr(&l->v[lo].exporter, &e->ip) == 0; lo++) {
		struct ddos_exporter_info *x = &l->v[lo];

		/* Several shards may each know part of the exporter's records:
		 * the longest, either's warning, the moved ones summed. */
		x->has_timing = 1;
		if (e->max_duration_ms > x->longest_record_ms)
			x->longest_record_ms = e->max_duration_ms;
		x->long_timeout |= e->long_timeout;
		x->records_moved += e->late;
	}
}

/* Same exporter, listener, format and domain. */
static int same_source(const struct ddos_exporter_info *a, const struct ddos_exporter_info *b)
{
	return cmp_addr(&a->exporter, &b->exporter) == 0 && a->format == b->format &&
	       a->domain == b->domain &&
	       strcmp(a->listener ? a->listener : "", b->listener ? b->listener : "") == 0;
}

void ddos_exporters_join(struct ddos_exporter_list *l)
{
	size_t o = 0;

	for (size_t i = 0; i < l->n; i++) {
		struct ddos_exporter_info *x = NULL;

		/* Entries of one address are adjacent; few per address. */
		for (size_t j = o; j-- > 0 && cmp_addr(&l->v[j].exporter, &l->v[i].exporter) == 0;)
			if (same_source(&l->v[j], &l->v[i])) {
				x = &l->v[j];
				break;
			}
		if (!x) {
			l->v[o++] = l->v[i];
			continue;
		}
		x->datagrams += l->v[i].datagrams;
		x->records += l->v[i].records;
		x->lost += l->v[i].lost;
		x->late += l->v[i].late;
		x->resets += l->v[i].resets;
		if (l->v[i].templates > x->templates)
			x->templates = l->v[i].templates;
		if (l->v[i].last_ms > x->last_ms) {
			x->last_ms = l->v[i].last_ms;
			x->sampling = l->v[i].sampling;
			x->sampling_default = l->v[i].sampling_default;
		}
	}
	l->n = o;
}

static int cmp_by_recent(const void *pa, const void *pb)
{
	const struct ddos_exporter_info *a = pa, *b = pb;
	int c;

	if (a->last_ms != b->last_ms)
		return a->last_ms > b->last_ms ? -1 : 1;
	if ((c = cmp_addr(&a->exporter, &b->exporter)) != 0)
		return c;
	if ((c = strcmp(a->listener ? a->listener : "", b->listener ? b->listener : "")) != 0)
		return c;
	if (a->format != b->format)
		return a->format < b->format ? -1 : 1;
	if (a->domain != b->domain)
		return a->domain < b->domain ? -1 : 1;
	return 0;
}

void ddos_exporters_by_recent(struct ddos_exporter_list *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), cmp_by_recent);
}

void ddos_exporter_list_fini(struct ddos_exporter_list *l)
{
	if (!l)
		return;
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

const char *ddos_exporter_protocol(uint8_t format)
{
	switch (format) {
	case FLOW_FMT_NF5: return "netflow5";
	case FLOW_FMT_NF9: return "netflow9";
	case FLOW_FMT_IPFIX: return "ipfix";
	case FLOW_FMT_SFLOW: return "sflow";
	default: return "unknown";
	}
}
