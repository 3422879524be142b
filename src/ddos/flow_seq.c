/*
 * Export sequence numbers: what the network (or the exporter) lost between
 * a router and the collector. Each format numbers something different:
 * NetFlow v5 counts flows (the header's flow_sequence is the number sent
 * before this datagram), IPFIX counts data records per observation domain,
 * NetFlow v9 counts export packets per source id, sFlow counts datagrams
 * per agent and sub-agent. The decoders call flow_seq_note() once per
 * datagram with the sequence and what the datagram adds to it.
 *
 * Why gaps wait: UDP reorders a little, and a datagram that comes late
 * was not lost. A gap is held for FLOW_SEQ_HOLD more datagrams of the
 * same exporter, a late datagram inside it fills its share, and what is
 * still missing then counts as lost; counters only ever go up.
 *
 * Why a jump is not a loss: an exporter that restarts begins again near
 * zero (its uptime, where the header has one, goes back too), and one
 * that restarts with a random start lands anywhere. A jump forward of
 * more than SEQ_MAX_GAP, a step back past SEQ_BACK_WINDOW, or SEQ_BACK_MAX
 * datagrams behind in a row start counting over (seq_resets), never a
 * loss of billions. Comparisons are modulo 2^32, so the wrap of the
 * counter is an ordinary step.
 *
 * The state is bounded like the template state: at most max_sources
 * entries, the least recently heard from evicted first. It is made by any
 * datagram, spoofed ones included, so it holds nothing but counters (and
 * the last sampling rate, for the API's exporter list: exporters.h).
 */
#include <stdlib.h>
#include <string.h>

#include "ddos/flow_int.h"

#define SEQ_MAX_GAP (1u << 24)       /* a longer jump forward is a restart */
#define SEQ_BACK_WINDOW (1u << 16)   /* a longer step back is a restart */
#define SEQ_BACK_MAX 8               /* datagrams behind in a row: a restart */
#define SEQ_RESTART_MS 10000         /* uptime back by more: a restart */

static int unit_records(uint8_t fmt)
{
	return fmt == FLOW_FMT_NF5 || fmt == FLOW_FMT_IPFIX;
}

static void seq_evict(struct flow_decoder *d, struct flow_seq *e)
{
	uint32_t b = flow_source_hash(&e->exporter, e->domain, e->fmt) & d->hmask;
	struct flow_seq **pp = &d->seq_hash[b];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	flow_lru_unlink(&d->seqs, &e->lru);
	d->nseq--;
	d->st.seq_evicted++;
	free(e);
}

static struct flow_seq *seq_get(struct flow_msg *m)
{
	struct flow_decoder *d = m->d;
	uint32_t b = flow_source_hash(m->exporter, m->domain, m->fmt) & d->hmask;
	struct flow_seq *e;

	for (e = d->seq_hash[b]; e; e = e->hnext) {
		if (e->domain == m->domain && e->fmt == m->fmt &&
		    e->exporter.family == m->exporter->family &&
		    memcmp(e->exporter.a, m->exporter->a, 16) == 0)
			break;
	}
	if (e) {
		flow_lru_touch(&d->seqs, &e->lru);
		return e;
	}
	while (d->nseq >= d->cfg.max_sources && d->seqs.tail)
		seq_evict(d, FLOW_LRU_OF(d->seqs.tail, struct flow_seq));
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->exporter = *m->exporter;
	e->domain = m->domain;
	e->fmt = m->fmt;
	e->hnext = d->seq_hash[b];
	d->seq_hash[b] = e;
	flow_lru_push(&d->seqs, &e->lru);
	d->nseq++;
	return e;
}

void flow_seq_free_all(struct flow_decoder *d)
{
	struct flow_seq *e, *nx;

	for (e = FLOW_LRU_OF(d->seqs.head, struct flow_seq); e; e = nx) {
		nx = FLOW_LRU_OF(e->lru.next, struct flow_seq);
		free(e);
	}
	d->seqs.head = d->seqs.tail = NULL;
	d->nseq = 0;
}

/* What a gap still misses is lost. */
static void gap_commit(struct flow_decoder *d, struct flow_seq *e, uint32_t i)
{
	uint64_t n = e->gaps[i].missing;

	e->lost += n;
	e->lost_iv += n;
	if (unit_records(e->fmt))
		d->st.seq_lost_records += n;
	else
		d->st.seq_lost_datagrams += n;
	e->gaps[i] = e->gaps[--e->ngaps];
}

static void gap_open(struct flow_decoder *d, struct flow_seq *e, uint32_t start, uint32_t len)
{
	if (e->ngaps == FLOW_SEQ_GAPS) {
		uint32_t old = 0;

		for (uint32_t i = 1; i < e->ngaps; i++)
			if (e->gaps[i].at < e->gaps[old].at)
				old = i;
		gap_commit(d, e, old);
	}
	e->gaps[e->ngaps++] = (struct flow_seq_gap){ start, start + len, len, e->datagrams };
}

/* A datagram behind the sequence: 1 when it fell into a gap, whose
 * missing share it takes back. */
static int gap_fill(struct flow_seq *e, uint32_t seq, uint32_t count)
{
	for (uint32_t i = 0; i < e->ngaps; i++) {
		struct flow_seq_gap *g = &e->gaps[i];
		uint32_t span = g->end - g->start;

		if (seq - g->start < span) {
			uint32_t fill = count;

			if (fill > span - (seq - g->start))
				fill = span - (seq - g->start);
			g->missing -= fill < g->missing ? fill : g->missing;
			return 1;
		}
	}
	return 0;
}

/* Counting starts over: the gaps of the old sequence say nothing. */
static void seq_reset(struct flow_decoder *d, struct flow_seq *e)
{
	e->ngaps = 0;
	e->nback = 0;
	e->resets++;
	d->st.seq_resets++;
}

void flow_seq_note(struct flow_msg *m, uint32_t seq, uint32_t count, int count_known,
		   int has_up, uint32_t uptime)
{
	struct flow_decoder *d = m->d;
	struct flow_seq *e = seq_get(m);
	int32_t dist;

	if (!e)
		return;
	m->seq = e;
	e->datagrams++;
	e->last_ms = m->recv_ms;
	if (has_up) {
		int32_t step = (int32_t)(uptime - e->uptime);

		if (e->have_up && step < -SEQ_RESTART_MS) {
			seq_reset(d, e);
			e->have_next = 0;
			e->uptime = uptime;
		} else if (!e->have_up || step > 0) {
			e->uptime = uptime;
		}
		e->have_up = 1;
	}
	if (!e->have_next) {
		e->next_seq = seq + count;
		e->have_next = 1;
		goto out;
	}
	dist = (int32_t)(seq - e->next_seq);
	if (dist == 0) {
		e->next_seq = seq + count;
		e->nback = 0;
	} else if (dist > 0) {
		if ((uint32_t)dist > SEQ_MAX_GAP)
			seq_reset(d, e);
		else
			gap_open(d, e, e->next_seq, (uint32_t)dist);
		e->next_seq = seq + count;
		e->nback = 0;
	} else if (gap_fill(e, seq, count)) {
		e->late++;
		d->st.seq_late++;
	} else if ((uint32_t)-(int64_t)dist > SEQ_BACK_WINDOW || ++e->nback >= SEQ_BACK_MAX) {
		seq_reset(d, e);
		e->next_seq = seq + count;
	} else {
		/* Behind, in no gap: a duplicate, or later than its gap waited. */
		e->late++;
		d->st.seq_late++;
	}
out:
	/* A datagram that could not be counted leaves the next one unknown. */
	e->have_next = e->have_next && count_known;
	for (uint32_t i = 0; i < e->ngaps;) {
		if (e->datagrams - e->gaps[i].at >= FLOW_SEQ_HOLD)
			gap_commit(d, e, i);
		else
			i++;
	}
}

/* Every entry, most recently heard from first; reset: start lost_iv
 * afresh (the periodic report); now_ms < 0: count every template held. */
static void seq_walk(struct flow_decoder *d, int64_t now_ms, int reset, flow_seq_fn fn,
		     void *arg)
{
	for (struct flow_seq *e = FLOW_LRU_OF(d->seqs.head, struct flow_seq); e;
	     e = FLOW_LRU_OF(e->lru.next, struct flow_seq)) {
		struct flow_seq_stat s;
		int templated = e->fmt == FLOW_FMT_NF9 || e->fmt == FLOW_FMT_IPFIX;

		memset(&s, 0, sizeof(s));
		s.exporter = e->exporter;
		s.domain = e->domain;
		s.format = e->fmt;
		s.unit_records = unit_records(e->fmt);
		s.datagrams = e->datagrams;
		s.lost = e->lost;
		s.lost_interval = e->lost_iv;
		s.late = e->late;
		s.resets = e->resets;
		s.last_ms = e->last_ms;
		s.records = e->records;
		s.sampling = e->rate;
		s.sampling_default = e->rate_default;
		s.templates = templated ? flow_source_templates(d, &e->exporter, e->domain, e->fmt,
								 now_ms) : -1;
		fn(arg, &s);
		if (reset)
			e->lost_iv = 0;
	}
}

void flow_decoder_seq_foreach(struct flow_decoder *d, flow_seq_fn fn, void *arg)
{
	seq_walk(d, -1, 1, fn, arg);
}

void flow_decoder_seq_visit(struct flow_decoder *d, int64_t now_ms, flow_seq_fn fn, void *arg)
{
	seq_walk(d, now_ms < 0 ? 0 : now_ms, 0, fn, arg);
}

uint32_t flow_decoder_seq_count(const struct flow_decoder *d)
{
	return d->nseq;
}
