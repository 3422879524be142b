/*
 * Private to the flow decoders (src/ddos/flow*.c): the decoder, the
 * per-exporter template state, the bounds-checked big-endian readers, and
 * the template machinery that NetFlow v9 and IPFIX share (their templates
 * differ only in how they are written down; the field numbers of v9 are
 * IPFIX's information element ids for everything mamori reads).
 */
#ifndef MAMORI_FLOW_INT_H
#define MAMORI_FLOW_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "ddos/flow.h"

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

/* An unsigned value in reduced-size encoding (RFC 7011 6.2): 1..8 bytes. */
static inline uint64_t rdn(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	switch (n) {
	case 1: return p[0];
	case 2: return rd16(p);
	case 4: return rd32(p);
	case 8: return rd64(p);
	default:
		for (unsigned i = 0; i < n; i++)
			v = v << 8 | p[i];
		return v;
	}
}

/* Merges a step's result into a message's: the first error wins, but
 * malformed input beats a bound that was hit. */
static inline int flow_rc_merge(int rc, int r)
{
	if (rc == 0 || r == M_EPARSE)
		return r ? r : rc;
	return rc;
}

/* A cleared record. Copied from a zero record rather than memset: GCC
 * makes a memset of its 128 bytes a `rep stosq`, whose start-up costs
 * more than the rest of decoding a sampled header; the copy is eight
 * vector moves. */
static inline void flow_rec_clear(struct flow_rec *r)
{
	static const struct flow_rec zero;

	*r = zero;
}

static inline int flow_all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

#define FLOW_VARLEN 0xffff       /* IPFIX variable-length field */
#define FLOW_TMPL_BUCKETS 64     /* template hash per source */
#define FLOW_SAMPLERS 16         /* sampler ids remembered per source */
#define FLOW_MAX_REC_LEN 65535   /* a record must fit in one message */

/* What the record decoder does with a field; chosen once per template. */
enum flow_fk {
	FK_SKIP,
	FK_BYTES, FK_PKTS,               /* octet/packetDeltaCount */
	FK_BYTES_TOTAL, FK_PKTS_TOTAL,   /* octet/packetTotalCount */
	FK_BYTES_POST, FK_PKTS_POST,     /* v9 OUT_BYTES / OUT_PKTS */
	FK_PROTO, FK_TOS, FK_TCP_FLAGS,
	FK_SPORT, FK_DPORT,
	FK_SRC4, FK_DST4, FK_SRC6, FK_DST6,
	FK_SRC_MASK, FK_DST_MASK,
	FK_IN_IF, FK_OUT_IF, FK_SRC_AS, FK_DST_AS,
	FK_VLAN, FK_DIRECTION,
	FK_ICMP, FK_ICMP_TYPE, FK_ICMP_CODE,
	FK_FRAG_OFF, FK_FRAG_FLAGS,
	FK_UP_START, FK_UP_END,          /* ms of system uptime */
	FK_START_S, FK_END_S,
	FK_START_MS, FK_END_MS,
	FK_START_US, FK_END_US,          /* NTP timestamps */
	FK_START_NS, FK_END_NS,
	FK_START_DUS, FK_END_DUS,        /* µs before the export time */
	FK_DUR_MS, FK_DUR_US,
	FK_INIT_MS,                      /* systemInitTimeMilliseconds */
	FK_SAMPLER_ID,                   /* samplerId, selectorId */
	FK_SAMP_INTERVAL,                /* samplingInterval, samplerRandomInterval */
	FK_PKT_INTERVAL, FK_PKT_SPACE,
	FK_SAMP_SIZE, FK_SAMP_POP, FK_SAMP_PROB,
	FK_COUNT
};

struct flow_field {
	uint16_t id;      /* information element id, enterprise bit cleared */
	uint16_t len;     /* bytes, or FLOW_VARLEN */
	uint8_t kind;     /* enum flow_fk */
};

/* A field a record of a fixed-length template is read for: where it is
 * in the record, and the shift that turns the 8 bytes from there into
 * its value. */
struct flow_op {
	uint16_t off;
	uint8_t kind;     /* enum flow_fk, never FK_SKIP */
	uint8_t len;      /* 1..8; 16 for an IPv6 address */
	uint8_t shift;    /* 64 - 8 * len; 0 when the action reads the bytes */
};

/* The fields nearly every flow template has: when a template has one of
 * them once (and nothing else that sets the same value), a record's value
 * is read by straight-line code rather than through the list of fields. */
enum flow_hot {
	HOT_SRC4, HOT_DST4, HOT_SPORT, HOT_DPORT, HOT_PROTO, HOT_TCP_FLAGS, HOT_TOS,
	HOT_BYTES, HOT_PKTS, HOT_UP_START, HOT_UP_END, HOT_START_MS, HOT_END_MS,
	HOT_IN_IF, HOT_OUT_IF,
	HOT_N
};

struct flow_hot_field {
	uint16_t off;
	uint8_t shift;
};

struct flow_tmpl {
	struct flow_tmpl *next;   /* hash chain */
	uint64_t used;            /* LRU stamp */
	int64_t seen_ms;          /* receive time it was last sent */
	size_t mem;               /* bytes charged for it */
	uint32_t min_len;         /* one record, variable fields empty; >= 1 */
	uint16_t id;
	uint16_t nfields;
	uint16_t nscope;
	uint8_t options;          /* an options template */
	uint8_t varlen;           /* has a variable-length field */
	uint16_t nops;            /* fixed-length templates: the other fields read */
	uint16_t hot;             /* 1 << HOT_*: the hot fields it has */
	uint32_t have;            /* what its fields say a record has (H_*) */
	struct flow_hot_field hotf[HOT_N];
	struct flow_op *ops;      /* after f[nfields], in the same block */
	struct flow_field f[];
};

struct flow_sampler {
	uint64_t id;
	uint32_t rate;
};

/* An intrusive least-recently-used list, most recent first: the source
 * table and the sequence table each keep their entries in one, and evict
 * from its tail. */
struct flow_lru_link {
	struct flow_lru_link *prev, *next;
};

struct flow_lru {
	struct flow_lru_link *head, *tail;
};

/* The entry of type T (whose link is its member `lru`) of link l; NULL for
 * NULL. */
#define FLOW_LRU_OF(l, T) ((l) ? (T *)(void *)((char *)(l) - offsetof(T, lru)) : (T *)NULL)

static inline void flow_lru_unlink(struct flow_lru *l, struct flow_lru_link *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		l->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		l->tail = e->prev;
	e->prev = e->next = NULL;
}

static inline void flow_lru_push(struct flow_lru *l, struct flow_lru_link *e)
{
	e->prev = NULL;
	e->next = l->head;
	if (l->head)
		l->head->prev = e;
	l->head = e;
	if (!l->tail)
		l->tail = e;
}

/* e was used: to the head. */
static inline void flow_lru_touch(struct flow_lru *l, struct flow_lru_link *e)
{
	if (l->head != e) {
		flow_lru_unlink(l, e);
		flow_lru_push(l, e);
	}
}

/* The state of one (exporter, domain) of one template-based format. */
struct flow_source {
	struct flow_source *hnext;        /* hash chain */
	struct flow_lru_link lru;         /* in flow_decoder.sources */
	struct flow_ip exporter;
	uint32_t domain;
	uint8_t fmt;                      /* FLOW_FMT_NF9 or FLOW_FMT_IPFIX */
	uint32_t ntmpl;
	uint32_t rate;                    /* last announced; 0 = none yet */
	int64_t init_ms;                  /* IPFIX system init time; 0 = unknown */
	uint32_t nsamplers;
	uint32_t next_sampler;            /* round-robin slot when full */
	struct flow_sampler samplers[FLOW_SAMPLERS];
	struct flow_tmpl *tmpl[FLOW_TMPL_BUCKETS];
};

/* The export sequence of one (exporter, domain, format): what is expected
 * next, and the gaps that late datagrams may still fill (flow_seq.c). */
#define FLOW_SEQ_GAPS 4

struct flow_seq_gap {
	uint32_t start, end;      /* the missing range [start, end), mod 2^32 */
	uint32_t missing;         /* what of it no late datagram has filled */
	uint64_t at;              /* the exporter's datagram count when it opened */
};

struct flow_seq {
	struct flow_seq *hnext;           /* hash chain */
	struct flow_lru_link lru;         /* in flow_decoder.seqs */
	struct flow_ip exporter;
	uint32_t domain;
	uint8_t fmt;
	uint8_t have_next;                /* next_seq is known */
	uint8_t have_up;                  /* uptime is known */
	uint8_t nback;                    /* datagrams behind in a row */
	uint32_t next_seq;
	uint32_t uptime;                  /* the exporter's, ms; the highest seen */
	uint32_t ngaps;
	struct flow_seq_gap gaps[FLOW_SEQ_GAPS];
	uint64_t datagrams, lost, lost_iv, late, resets;
	int64_t last_ms;
	uint64_t records;                 /* flow records of its datagrams */
	uint32_t rate;                    /* sampling of the last record; 0 = none yet */
	uint8_t rate_default;             /* ... and it was the configured default */
};

struct flow_decoder {
	struct flow_cfg cfg;
	flow_rec_fn on_rec;
	flow_ifc_fn on_ifc;
	void *arg;
	struct flow_stats st;
	struct flow_source **hash;
	uint32_t hmask;
	uint32_t nsources;
	struct flow_lru sources;          /* of struct flow_source */
	size_t mem;
	uint64_t stamp;
	struct flow_seq **seq_hash;       /* as many buckets as hash */
	struct flow_lru seqs;             /* of struct flow_seq */
	uint32_t nseq;
	uint32_t msg_rate;                /* sampling of the message's last record */
	uint8_t msg_rate_default;
};

/* One message being decoded. */
struct flow_msg {
	struct flow_decoder *d;
	struct flow_source *src;      /* NULL until needed (or unknown) */
	const struct flow_ip *exporter;
	uint32_t domain;
	uint8_t fmt;
	int64_t recv_ms;
	int64_t export_ms;            /* the header's clock, skew applied */
	int64_t skew_ms;              /* added to exporter wall-clock times */
	uint32_t uptime_ms;           /* v9 header sysUptime */
	uint32_t nrecs;               /* data and options records decoded */
	uint8_t recs_unknown;         /* a data set could not be counted */
	struct flow_seq *seq;         /* its sequence state, once noted (may be NULL) */
};

/* flow.c */
uint32_t flow_source_hash(const struct flow_ip *ip, uint32_t domain, uint8_t fmt);
struct flow_source *flow_source_get(struct flow_msg *m, int create);
struct flow_tmpl *flow_tmpl_find(struct flow_decoder *d, struct flow_source *s,
				 uint16_t id);
/* The template for a data set: NULL when unknown, or when it expired
 * (not sent again within the template timeout: it is dropped then). */
struct flow_tmpl *flow_tmpl_live(struct flow_msg *m, uint16_t id);
/* Takes ownership of t (frees it when refused). 0, or M_ELIMIT. */
int flow_tmpl_put(struct flow_msg *m, struct flow_tmpl *t);
/* Templates held for (exporter, domain, fmt): all of them when now_ms < 0,
 * else those not expired at now_ms. Looks only (no LRU touch); 0 when the
 * source has no state. */
int flow_source_templates(const struct flow_decoder *d, const struct flow_ip *ip,
			  uint32_t domain, uint8_t fmt, int64_t now_ms);
void flow_tmpl_withdraw(struct flow_msg *m, uint16_t id, int options);
void flow_tmpl_withdraw_all(struct flow_msg *m, int options);
void flow_set_rate(struct flow_msg *m, int have_id, uint64_t sampler_id,
		   uint64_t rate);
uint32_t flow_sampler_rate(const struct flow_source *s, uint64_t id);
/* Applies the sampling rate (0: none known, the default applies) and the
 * scaling, checks the times, and hands r to the callback. */
void flow_emit(struct flow_decoder *d, struct flow_rec *r, uint64_t rate);

/* Sets the message's clock from the header's export time: the exporter's
 * clock, or with FLOW_CFG_RECV_CLOCK (or no clock at all) the receive time,
 * with the difference kept as skew for absolute times in records. */
static inline void flow_anchor(struct flow_msg *m, int64_t export_ms)
{
	if ((m->d->cfg.flags & FLOW_CFG_RECV_CLOCK) || export_ms <= 0) {
		m->skew_ms = m->recv_ms - export_ms;
		m->export_ms = m->recv_ms;
	} else {
		m->skew_ms = 0;
		m->export_ms = export_ms;
	}
}

/* flow_tmpl.c */
/* A template under construction (owned by the caller until
 * flow_tmpl_put): its fields are set one by one, then it is sealed. */
struct flow_tmpl *flow_tmpl_new(uint16_t id, uint16_t nfields, uint16_t nscope,
				int options);
/* Sets field i; an enterprise-specific field never maps to a record field. */
void flow_tmpl_field(struct flow_tmpl *t, int v9, uint16_t i, uint16_t id,
		     uint16_t len, int enterprise);
/* Computes min_len; M_EPARSE for an empty or impossible record. */
int flow_tmpl_seal(struct flow_tmpl *t);
/* Decodes the data records of one set with template t. Returns 0 or
 * M_EPARSE when a record ran past the set. */
int flow_data_set(struct flow_msg *m, const struct flow_tmpl *t,
		  const uint8_t *p, size_t n);

/* flow_seq.c */
/* Notes one datagram of m's (exporter, domain, format) with sequence
 * number seq, which the datagram advances by count (records or 1);
 * count_known 0 when it could not be counted (the next datagram then
 * sets the expectation again). has_up: uptime is the exporter's uptime in
 * ms, which going back says it restarted. */
void flow_seq_note(struct flow_msg *m, uint32_t seq, uint32_t count, int count_known,
		   int has_up, uint32_t uptime);
void flow_seq_free_all(struct flow_decoder *d);

/* flow_nf5.c, flow_nf9.c, flow_ipfix.c, flow_sflow.c */
int flow_nf5_decode(struct flow_msg *m, const uint8_t *p, size_t n);
int flow_nf9_decode(struct flow_msg *m, const uint8_t *p, size_t n);
int flow_ipfix_decode(struct flow_msg *m, const uint8_t *p, size_t n);
int flow_sflow_decode(struct flow_msg *m, const uint8_t *p, size_t n);

#endif
