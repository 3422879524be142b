/*
 * The flow decoder's frame (see flow.h): the dispatch by format, the
 * per-exporter state and its bounds, and the last step every record takes
 * (sampling rate, scaling, time sanity) before the callback.
 *
 * Exporter state lives in a hash table of sources keyed by (exporter
 * address, domain, format) with a least-recently-used list. It is bounded
 * three ways: max_sources, max_templates per source, and max_memory for
 * everything together. A new source or template that does not fit evicts
 * the least recently used one of its kind; a template that still cannot
 * fit is refused and counted. State is created only by templates, so data
 * from spoofed exporters never allocates.
 */
#include "ddos/flow.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ddos/flow_int.h"

#define STAT(f, h) { #f, h, offsetof(struct flow_stats, f) }

const struct flow_stat_desc flow_stat_descs[] = {
	STAT(datagrams, "Datagrams fed to the flow decoder"),
	STAT(records, "Flow records decoded"),
	STAT(bad_datagrams, "Malformed flow datagrams"),
	STAT(unsupported, "Datagrams of an unknown flow format or version"),
	STAT(truncated, "Sets, samples or records that ran past their end"),
	STAT(bad_sets, "Sets with a bad length"),
	STAT(reserved_sets, "Sets with a reserved id, skipped"),
	STAT(templates, "Templates learnt or changed"),
	STAT(templates_refreshed, "Templates sent again unchanged"),
	STAT(templates_withdrawn, "Templates withdrawn by the exporter"),
	STAT(templates_evicted, "Templates evicted to stay within bounds"),
	STAT(templates_bad, "Malformed templates"),
	STAT(templates_refused, "Templates refused by a bound"),
	STAT(templates_expired, "Templates not sent again within the template timeout"),
	STAT(sources_evicted, "Exporter states evicted to stay within bounds"),
	STAT(no_template_sets, "Data sets dropped because their template is unknown"),
	STAT(no_template_bytes, "Bytes of data sets dropped for an unknown template"),
	STAT(options_records, "Options data records applied"),
	STAT(zero_rate, "Sampling rates of zero, taken as 1"),
	STAT(sflow_flow_samples, "sFlow flow samples"),
	STAT(sflow_counter_samples, "sFlow counter samples"),
	STAT(sflow_ifcounters, "sFlow generic interface counter records"),
	STAT(sflow_skipped, "sFlow samples and records of unused types"),
	STAT(sflow_non_ip, "sFlow sampled headers that were not IP"),
	STAT(time_fixed, "Flow records whose start was after their end"),
	STAT(seq_lost_records, "Flows (v5) and data records (IPFIX) missing from the export sequence"),
	STAT(seq_lost_datagrams, "Export packets (v9) and datagrams (sFlow) missing from the sequence"),
	STAT(seq_late, "Datagrams that arrived behind the export sequence (reordered or duplicated)"),
	STAT(seq_resets, "Export sequences started over (exporter restart, jump)"),
	STAT(seq_evicted, "Exporter sequence states evicted to stay within bounds"),
};

const size_t flow_stat_count = sizeof(flow_stat_descs) / sizeof(flow_stat_descs[0]);

/* ---- addresses ---- */

int flow_ip_parse(struct flow_ip *ip, const char *s)
{
	uint8_t b[16];

	if (inet_pton(AF_INET, s, b) == 1) {
		flow_ip_v4(ip, b);
		return 0;
	}
	if (inet_pton(AF_INET6, s, b) == 1) {
		flow_ip_v6(ip, b);
		return 0;
	}
	return M_EINVAL;
}

const char *flow_ip_str(const struct flow_ip *ip, char *out, size_t outsz)
{
	const char *r = NULL;

	if (outsz == 0)
		return out;
	if (ip->family == FLOW_IPV4)
		r = inet_ntop(AF_INET, ip->a + 12, out, (socklen_t)outsz);
	else if (ip->family == FLOW_IPV6)
		r = inet_ntop(AF_INET6, ip->a, out, (socklen_t)outsz);
	if (!r) {
		out[0] = outsz > 1 ? '-' : '\0';
		if (outsz > 1)
			out[1] = '\0';
	}
	return out;
}

/* ---- formats ---- */

enum flow_format flow_detect(const void *p, size_t n)
{
	const uint8_t *b = p;

	if (n < 4)
		return FLOW_FMT_AUTO;
	if (rd32(b) == 5)
		return FLOW_FMT_SFLOW;
	switch (rd16(b)) {
	case 5:
		return FLOW_FMT_NF5;
	case 9:
		return FLOW_FMT_NF9;
	case 10:
		return FLOW_FMT_IPFIX;
	default:
		return FLOW_FMT_AUTO;
	}
}

static const struct {
	const char *name;
	enum flow_format fmt;
} format_names[] = {
	{ "auto", FLOW_FMT_AUTO }, { "netflow", FLOW_FMT_NETFLOW },
	{ "v5", FLOW_FMT_NF5 },    { "v9", FLOW_FMT_NF9 },
	{ "ipfix", FLOW_FMT_IPFIX }, { "sflow", FLOW_FMT_SFLOW },
	{ "netflow5", FLOW_FMT_NF5 }, { "netflow9", FLOW_FMT_NF9 },
};

int flow_format_parse(const char *s, enum flow_format *out)
{
	for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
		if (strcmp(s, format_names[i].name) == 0) {
			*out = format_names[i].fmt;
			return 0;
		}
	}
	return M_EINVAL;
}

const char *flow_format_name(enum flow_format f)
{
	for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++)
		if (format_names[i].fmt == f)
			return format_names[i].name;
	return "unknown";
}

/* ---- decoder ---- */

struct flow_decoder *flow_decoder_new(const struct flow_cfg *cfg,
				      flow_rec_fn on_rec, flow_ifc_fn on_ifc,
				      void *arg)
{
	struct flow_decoder *d;
	uint32_t buckets = 64;

	if (!on_rec)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	if (cfg)
		d->cfg = *cfg;
	if (!d->cfg.max_sources)
		d->cfg.max_sources = FLOW_DEF_SOURCES;
	if (!d->cfg.max_templates)
		d->cfg.max_templates = FLOW_DEF_TEMPLATES;
	if (!d->cfg.max_fields)
		d->cfg.max_fields = FLOW_DEF_FIELDS;
	if (!d->cfg.max_memory)
		d->cfg.max_memory = FLOW_DEF_MEMORY;
	if (!d->cfg.default_rate)
		d->cfg.default_rate = 1;
	if (!d->cfg.template_timeout_ms)
		d->cfg.template_timeout_ms = FLOW_DEF_TEMPLATE_TIMEOUT_MS;
	if (d->cfg.max_fields > FLOW_MAX_FIELDS || d->cfg.max_sources > (1u << 24)) {
		free(d);
		return NULL;
	}
	while (buckets < d->cfg.max_sources)
		buckets *= 2;
	d->hash = calloc(buckets, sizeof(*d->hash));
	d->seq_hash = calloc(buckets, sizeof(*d->seq_hash));
	if (!d->hash || !d->seq_hash) {
		free(d->hash);
		free(d->seq_hash);
		free(d);
		return NULL;
	}
	d->hmask = buckets - 1;
	d->on_rec = on_rec;
	d->on_ifc = on_ifc;
	d->arg = arg;
	return d;
}

static void source_free_templates(struct flow_decoder *d, struct flow_source *s)
{
	for (int b = 0; b < FLOW_TMPL_BUCKETS; b++) {
		struct flow_tmpl *t = s->tmpl[b], *nx;

		for (; t; t = nx) {
			nx = t->next;
			d->mem -= t->mem;
			free(t);
		}
		s->tmpl[b] = NULL;
	}
	s->ntmpl = 0;
}

void flow_decoder_free(struct flow_decoder *d)
{
	struct flow_source *s, *nx;

	if (!d)
		return;
	for (s = FLOW_LRU_OF(d->sources.head, struct flow_source); s; s = nx) {
		nx = FLOW_LRU_OF(s->lru.next, struct flow_source);
		source_free_templates(d, s);
		free(s);
	}
	flow_seq_free_all(d);
	free(d->seq_hash);
	free(d->hash);
	free(d);
}

const struct flow_stats *flow_decoder_stats(const struct flow_decoder *d)
{
	return &d->st;
}

size_t flow_decoder_memory(const struct flow_decoder *d)
{
	return d->mem;
}

uint32_t flow_decoder_sources(const struct flow_decoder *d)
{
	return d->nsources;
}

/* ---- sources ---- */

uint32_t flow_source_hash(const struct flow_ip *ip, uint32_t domain, uint8_t fmt)
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 16; i++)
		h = (h ^ ip->a[i]) * 16777619u;
	for (int i = 0; i < 4; i++)
		h = (h ^ ((domain >> (8 * i)) & 0xff)) * 16777619u;
	h = (h ^ fmt) * 16777619u;
	return (h ^ ip->family) * 16777619u;
}

static void source_evict(struct flow_decoder *d, struct flow_source *s)
{
	uint32_t b = flow_source_hash(&s->exporter, s->domain, s->fmt) & d->hmask;
	struct flow_source **pp = &d->hash[b];

	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = s->hnext;
	flow_lru_unlink(&d->sources, &s->lru);
	source_free_templates(d, s);
	d->mem -= sizeof(*s);
	d->nsources--;
	d->st.sources_evicted++;
	free(s);
}

/* Evicts the least recently used source other than keep; 0 if none. */
static int source_evict_lru(struct flow_decoder *d, const struct flow_source *keep)
{
	struct flow_source *s = FLOW_LRU_OF(d->sources.tail, struct flow_source);

	if (s && s == keep)
		s = FLOW_LRU_OF(s->lru.prev, struct flow_source);
	if (!s)
		return 0;
	source_evict(d, s);
	return 1;
}

struct flow_source *flow_source_get(struct flow_msg *m, int create)
{
	struct flow_decoder *d = m->d;
	uint32_t b = flow_source_hash(m->exporter, m->domain, m->fmt) & d->hmask;
	struct flow_source *s;

	for (s = d->hash[b]; s; s = s->hnext) {
		if (s->domain == m->domain && s->fmt == m->fmt &&
		    s->exporter.family == m->exporter->family &&
		    memcmp(s->exporter.a, m->exporter->a, 16) == 0)
			break;
	}
	if (s) {
		flow_lru_touch(&d->sources, &s->lru);
		return m->src = s;
	}
	if (!create)
		return NULL;
	while (d->nsources >= d->cfg.max_sources && source_evict_lru(d, NULL))
		;
	while (d->mem + sizeof(*s) > d->cfg.max_memory && source_evict_lru(d, NULL))
		;
	if (d->mem + sizeof(*s) > d->cfg.max_memory)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->exporter = *m->exporter;
	s->domain = m->domain;
	s->fmt = m->fmt;
	s->hnext = d->hash[b];
	d->hash[b] = s;
	flow_lru_push(&d->sources, &s->lru);
	d->nsources++;
	d->mem += sizeof(*s);
	return m->src = s;
}

/* ---- templates ---- */

struct flow_tmpl *flow_tmpl_find(struct flow_decoder *d, struct flow_source *s,
				 uint16_t id)
{
	struct flow_tmpl *t;

	for (t = s->tmpl[id % FLOW_TMPL_BUCKETS]; t; t = t->next) {
		if (t->id == id) {
			t->used = ++d->stamp;
			return t;
		}
	}
	return NULL;
}

static void tmpl_unlink(struct flow_decoder *d, struct flow_source *s,
			struct flow_tmpl *t)
{
	struct flow_tmpl **pp = &s->tmpl[t->id % FLOW_TMPL_BUCKETS];

	while (*pp && *pp != t)
		pp = &(*pp)->next;
	if (*pp)
		*pp = t->next;
	s->ntmpl--;
	d->mem -= t->mem;
	free(t);
}

/* Evicts the least recently used template of s other than keep_id. */
static int tmpl_evict_lru(struct flow_decoder *d, struct flow_source *s,
			  uint16_t keep_id)
{
	struct flow_tmpl *old = NULL;

	for (int b = 0; b < FLOW_TMPL_BUCKETS; b++)
		for (struct flow_tmpl *t = s->tmpl[b]; t; t = t->next)
			if (t->id != keep_id && (!old || t->used < old->used))
				old = t;
	if (!old)
		return 0;
	tmpl_unlink(d, s, old);
	d->st.templates_evicted++;
	return 1;
}

static int tmpl_same(const struct flow_tmpl *a, const struct flow_tmpl *b)
{
	if (a->options != b->options || a->nfields != b->nfields ||
	    a->nscope != b->nscope)
		return 0;
	for (uint16_t i = 0; i < a->nfields; i++)
		if (a->f[i].id != b->f[i].id || a->f[i].len != b->f[i].len ||
		    a->f[i].kind != b->f[i].kind)
			return 0;
	return 1;
}

int flow_tmpl_put(struct flow_msg *m, struct flow_tmpl *t)
{
	struct flow_decoder *d = m->d;
	struct flow_source *s = m->src;
	struct flow_tmpl *old;

	old = flow_tmpl_find(d, s, t->id);
	if (old && tmpl_same(old, t)) {
		d->st.templates_refreshed++;
		old->seen_ms = m->recv_ms;
		free(t);
		return 0;
	}
	if (old) {
		tmpl_unlink(d, s, old);
	} else {
		while (s->ntmpl >= d->cfg.max_templates && tmpl_evict_lru(d, s, t->id))
			;
	}
	/* Room in memory: other exporters' state goes first, then this
	 * exporter's least recently used templates. */
	while (d->mem + t->mem > d->cfg.max_memory) {
		if (!source_evict_lru(d, s) && !tmpl_evict_lru(d, s, t->id))
			break;
	}
	if (d->mem + t->mem > d->cfg.max_memory) {
		d->st.templates_refused++;
		free(t);
		return M_ELIMIT;
	}
	t->used = ++d->stamp;
	t->seen_ms = m->recv_ms;
	t->next = s->tmpl[t->id % FLOW_TMPL_BUCKETS];
	s->tmpl[t->id % FLOW_TMPL_BUCKETS] = t;
	s->ntmpl++;
	d->mem += t->mem;
	d->st.templates++;
	return 0;
}

/* 1 when t was last sent longer than the template timeout before now. */
static int tmpl_expired(const struct flow_decoder *d, const struct flow_tmpl *t, int64_t now)
{
	return d->cfg.template_timeout_ms > 0 && now - t->seen_ms > d->cfg.template_timeout_ms;
}

struct flow_tmpl *flow_tmpl_live(struct flow_msg *m, uint16_t id)
{
	struct flow_tmpl *t;

	if (!m->src)
		return NULL;
	t = flow_tmpl_find(m->d, m->src, id);
	if (t && tmpl_expired(m->d, t, m->recv_ms)) {
		/* RFC 7011 8.4: over UDP, a template not refreshed within its
		 * lifetime is gone; the exporter may have changed it. */
		tmpl_unlink(m->d, m->src, t);
		m->d->st.templates_expired++;
		return NULL;
	}
	return t;
}

int flow_source_templates(const struct flow_decoder *d, const struct flow_ip *ip,
			  uint32_t domain, uint8_t fmt, int64_t now_ms)
{
	uint32_t b = flow_source_hash(ip, domain, fmt) & d->hmask;
	const struct flow_source *s;
	int n = 0;

	for (s = d->hash[b]; s; s = s->hnext)
		if (s->domain == domain && s->fmt == fmt && s->exporter.family == ip->family &&
		    memcmp(s->exporter.a, ip->a, 16) == 0)
			break;
	if (!s)
		return 0;
	if (now_ms < 0)
		return (int)s->ntmpl;
	for (int i = 0; i < FLOW_TMPL_BUCKETS; i++)
		for (const struct flow_tmpl *t = s->tmpl[i]; t; t = t->next)
			n += !tmpl_expired(d, t, now_ms);
	return n;
}

uint32_t flow_decoder_expire(struct flow_decoder *d, int64_t now_ms)
{
	uint32_t n = 0;

	for (struct flow_source *s = FLOW_LRU_OF(d->sources.head, struct flow_source); s;
	     s = FLOW_LRU_OF(s->lru.next, struct flow_source)) {
		for (int b = 0; b < FLOW_TMPL_BUCKETS; b++) {
			struct flow_tmpl *t = s->tmpl[b], *nx;

			for (; t; t = nx) {
				nx = t->next;
				if (tmpl_expired(d, t, now_ms)) {
					tmpl_unlink(d, s, t);
					d->st.templates_expired++;
					n++;
				}
			}
		}
	}
	return n;
}

void flow_tmpl_withdraw(struct flow_msg *m, uint16_t id, int options)
{
	struct flow_tmpl *t;

	if (!m->src)
		return;
	t = flow_tmpl_find(m->d, m->src, id);
	if (!t)
		return;
	if (!t->options != !options) {
		m->d->st.templates_bad++;
		return;
	}
	tmpl_unlink(m->d, m->src, t);
	m->d->st.templates_withdrawn++;
}

void flow_tmpl_withdraw_all(struct flow_msg *m, int options)
{
	struct flow_source *s = m->src;

	if (!s)
		return;
	for (int b = 0; b < FLOW_TMPL_BUCKETS; b++) {
		struct flow_tmpl *t = s->tmpl[b], *nx;

		for (; t; t = nx) {
			nx = t->next;
			if (!t->options == !options) {
				tmpl_unlink(m->d, s, t);
				m->d->st.templates_withdrawn++;
			}
		}
	}
}

/* ---- sampling ---- */

void flow_set_rate(struct flow_msg *m, int have_id, uint64_t sampler_id,
		   uint64_t rate)
{
	struct flow_source *s = m->src;
	uint32_t i;

	if (!s)
		return;
	if (rate == 0) {
		m->d->st.zero_rate++;
		rate = 1;
	}
	if (rate > UINT32_MAX)
		rate = UINT32_MAX;
	s->rate = (uint32_t)rate;
	if (!have_id)
		return;
	for (i = 0; i < s->nsamplers; i++) {
		if (s->samplers[i].id == sampler_id) {
			s->samplers[i].rate = (uint32_t)rate;
			return;
		}
	}
	if (s->nsamplers < FLOW_SAMPLERS) {
		i = s->nsamplers++;
	} else {
		i = s->next_sampler;
		s->next_sampler = (s->next_sampler + 1) % FLOW_SAMPLERS;
	}
	s->samplers[i].id = sampler_id;
	s->samplers[i].rate = (uint32_t)rate;
}

uint32_t flow_sampler_rate(const struct flow_source *s, uint64_t id)
{
	for (uint32_t i = 0; i < s->nsamplers; i++)
		if (s->samplers[i].id == id)
			return s->samplers[i].rate;
	return 0;
}

static uint64_t mul_sat(uint64_t a, uint64_t b)
{
	uint64_t r;

	if (__builtin_mul_overflow(a, b, &r))
		return UINT64_MAX;
	return r;
}

void flow_emit(struct flow_decoder *d, struct flow_rec *r, uint64_t rate)
{
	if (rate == 0) {
		rate = d->cfg.default_rate;
		r->flags |= FLOW_F_RATE_DEFAULT;
	}
	if (rate > UINT32_MAX)
		rate = UINT32_MAX;
	r->sampling = (uint32_t)rate;
	if (d->cfg.flags & FLOW_CFG_SCALE) {
		r->bytes = mul_sat(r->bytes, rate);
		r->packets = mul_sat(r->packets, rate);
		r->flags |= FLOW_F_SCALED;
	}
	if (r->start_ms > r->end_ms) {
		r->start_ms = r->end_ms;
		d->st.time_fixed++;
	}
	d->st.records++;
	d->msg_rate = r->sampling;
	d->msg_rate_default = !!(r->flags & FLOW_F_RATE_DEFAULT);
	d->on_rec(d->arg, r);
}

/* ---- dispatch ---- */

int flow_decode(struct flow_decoder *d, enum flow_format fmt,
		const struct flow_ip *from, int64_t recv_ms,
		const void *p, size_t n)
{
	static const struct flow_ip none;
	struct flow_msg m;
	enum flow_format got;
	uint64_t records;
	int rc;

	if (!d || (!p && n))
		return M_EINVAL;
	d->st.datagrams++;
	if (n < 4) {
		d->st.bad_datagrams++;
		return M_EPARSE;
	}
	memset(&m, 0, sizeof(m));
	m.d = d;
	m.exporter = from ? from : &none;
	m.recv_ms = recv_ms;
	got = flow_detect(p, n);
	if (fmt == FLOW_FMT_AUTO || (fmt == FLOW_FMT_NETFLOW &&
				     (got == FLOW_FMT_NF5 || got == FLOW_FMT_NF9)))
		fmt = got;
	if (fmt != got || fmt == FLOW_FMT_AUTO) {
		d->st.unsupported++;
		return M_EUNSUPP;
	}
	m.fmt = (uint8_t)fmt;
	records = d->st.records;
	d->msg_rate = 0;
	switch (fmt) {
	case FLOW_FMT_NF5:
		rc = flow_nf5_decode(&m, p, n);
		break;
	case FLOW_FMT_NF9:
		rc = flow_nf9_decode(&m, p, n);
		break;
	case FLOW_FMT_IPFIX:
		rc = flow_ipfix_decode(&m, p, n);
		break;
	default:
		rc = flow_sflow_decode(&m, p, n);
		break;
	}
	if (rc == M_EPARSE)
		d->st.bad_datagrams++;
	/* What the exporter's records were and said, for its sequence state
	 * (noted once per datagram, so still there). */
	if (m.seq) {
		m.seq->records += d->st.records - records;
		if (d->msg_rate) {
			m.seq->rate = d->msg_rate;
			m.seq->rate_default = d->msg_rate_default;
		}
	}
	return rc;
}
