/*
 * Templates and data records, shared by NetFlow v9 and IPFIX.
 *
 * A template is turned once, when it arrives, into a list of (length,
 * action) pairs: the information element ids mamori reads get an action,
 * everything else (enterprise-specific fields, v9 options scope fields,
 * elements with a length their type cannot have) is skipped by length. A
 * data record is then one pass over that list. Records of options
 * templates are not flows: they carry the exporter's sampling rate per
 * sampler (samplingInterval, samplerRandomInterval, packet interval and
 * space, size and population, probability) and IPFIX's system init time,
 * which are kept with the exporter for the data records that follow.
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ddos/flow_int.h"

/* NTP era 0 starts 2,208,988,800 s before the Unix epoch. */
#define NTP_UNIX_OFFSET 2208988800LL

static int uint_len(uint16_t len)
{
	return len >= 1 && len <= 8;
}

/* The action for information element id of length len. */
static uint8_t field_kind(uint16_t id, uint16_t len)
{
	uint8_t k = FK_SKIP;

	switch (id) {
	case 1: k = FK_BYTES; break;
	case 2: k = FK_PKTS; break;
	case 4: k = FK_PROTO; break;
	case 5: k = FK_TOS; break;
	case 6: k = FK_TCP_FLAGS; break;
	case 7: k = FK_SPORT; break;
	case 8: return len == 4 ? FK_SRC4 : FK_SKIP;
	case 9: case 29: k = FK_SRC_MASK; break;
	case 10: k = FK_IN_IF; break;
	case 11: k = FK_DPORT; break;
	case 12: return len == 4 ? FK_DST4 : FK_SKIP;
	case 13: case 30: k = FK_DST_MASK; break;
	case 14: k = FK_OUT_IF; break;
	case 16: k = FK_SRC_AS; break;
	case 17: k = FK_DST_AS; break;
	case 21: k = FK_UP_END; break;
	case 22: k = FK_UP_START; break;
	case 23: k = FK_BYTES_POST; break;
	case 24: k = FK_PKTS_POST; break;
	case 27: return len == 16 ? FK_SRC6 : FK_SKIP;
	case 28: return len == 16 ? FK_DST6 : FK_SKIP;
	case 32: case 139: k = FK_ICMP; break;
	case 34: case 50: k = FK_SAMP_INTERVAL; break;
	case 48: case 302: k = FK_SAMPLER_ID; break;
	case 58: k = FK_VLAN; break;
	case 61: k = FK_DIRECTION; break;
	case 85: k = FK_BYTES_TOTAL; break;
	case 86: k = FK_PKTS_TOTAL; break;
	case 88: k = FK_FRAG_OFF; break;
	case 150: k = FK_START_S; break;
	case 151: k = FK_END_S; break;
	case 152: k = FK_START_MS; break;
	case 153: k = FK_END_MS; break;
	case 154: return len == 8 ? FK_START_US : FK_SKIP;
	case 155: return len == 8 ? FK_END_US : FK_SKIP;
	case 156: return len == 8 ? FK_START_NS : FK_SKIP;
	case 157: return len == 8 ? FK_END_NS : FK_SKIP;
	case 158: k = FK_START_DUS; break;
	case 159: k = FK_END_DUS; break;
	case 160: k = FK_INIT_MS; break;
	case 161: k = FK_DUR_MS; break;
	case 162: k = FK_DUR_US; break;
	case 176: case 178: k = FK_ICMP_TYPE; break;
	case 177: case 179: k = FK_ICMP_CODE; break;
	case 197: k = FK_FRAG_FLAGS; break;
	case 305: k = FK_PKT_INTERVAL; break;
	case 306: k = FK_PKT_SPACE; break;
	case 309: k = FK_SAMP_SIZE; break;
	case 310: k = FK_SAMP_POP; break;
	case 311: return len == 8 || len == 4 ? FK_SAMP_PROB : FK_SKIP;
	default: return FK_SKIP;
	}
	return uint_len(len) ? k : FK_SKIP;
}

struct flow_tmpl *flow_tmpl_new(uint16_t id, uint16_t nfields, uint16_t nscope,
				int options)
{
	size_t mem = sizeof(struct flow_tmpl) +
		     (size_t)nfields * (sizeof(struct flow_field) + sizeof(struct flow_op));
	struct flow_tmpl *t;

	t = malloc(mem);
	if (!t)
		return NULL;
	memset(t, 0, sizeof(*t));
	t->mem = mem;
	t->id = id;
	t->nfields = nfields;
	t->nscope = nscope;
	t->options = options ? 1 : 0;
	t->ops = (struct flow_op *)(t->f + nfields);
	return t;
}

void flow_tmpl_field(struct flow_tmpl *t, int v9, uint16_t i, uint16_t id,
		     uint16_t len, int enterprise)
{
	struct flow_field *f = &t->f[i];

	f->id = id;
	f->len = len;
	if (enterprise || len == FLOW_VARLEN || (v9 && i < t->nscope))
		f->kind = FK_SKIP;
	else
		f->kind = field_kind(id, len);
}

/* ---- data records ---- */

enum {
	H_BYTES = 1u << 0, H_PKTS = 1u << 1, H_BYTES_TOTAL = 1u << 2,
	H_PKTS_TOTAL = 1u << 3, H_BYTES_POST = 1u << 4, H_PKTS_POST = 1u << 5,
	H_UP_START = 1u << 6, H_UP_END = 1u << 7, H_START = 1u << 8,
	H_END = 1u << 9, H_START_DUS = 1u << 10, H_END_DUS = 1u << 11,
	H_DUR = 1u << 12, H_INIT = 1u << 13, H_SAMPLER = 1u << 14,
	H_INTERVAL = 1u << 15, H_PKT_INTERVAL = 1u << 16, H_PKT_SPACE = 1u << 17,
	H_SIZE = 1u << 18, H_POP = 1u << 19, H_PROB = 1u << 20,
	H_ICMP = 1u << 21, H_ICMP_TYPE = 1u << 22, H_ICMP_CODE = 1u << 23,
	H_FRAG = 1u << 24,
};

#define H_RATE (H_INTERVAL | H_PKT_INTERVAL | H_PKT_SPACE | H_SIZE | H_POP | H_PROB)

/* What a field of each kind says a record has, whatever its value (the
 * fragment fields set H_FRAG by their value, in field_store). */
static const uint32_t kind_have[FK_COUNT] = {
	[FK_BYTES] = H_BYTES, [FK_PKTS] = H_PKTS,
	[FK_BYTES_TOTAL] = H_BYTES_TOTAL, [FK_PKTS_TOTAL] = H_PKTS_TOTAL,
	[FK_BYTES_POST] = H_BYTES_POST, [FK_PKTS_POST] = H_PKTS_POST,
	[FK_ICMP] = H_ICMP, [FK_ICMP_TYPE] = H_ICMP_TYPE, [FK_ICMP_CODE] = H_ICMP_CODE,
	[FK_UP_START] = H_UP_START, [FK_UP_END] = H_UP_END,
	[FK_START_S] = H_START, [FK_END_S] = H_END,
	[FK_START_MS] = H_START, [FK_END_MS] = H_END,
	[FK_START_US] = H_START, [FK_END_US] = H_END,
	[FK_START_NS] = H_START, [FK_END_NS] = H_END,
	[FK_START_DUS] = H_START_DUS, [FK_END_DUS] = H_END_DUS,
	[FK_DUR_MS] = H_DUR, [FK_DUR_US] = H_DUR, [FK_INIT_MS] = H_INIT,
	[FK_SAMPLER_ID] = H_SAMPLER, [FK_SAMP_INTERVAL] = H_INTERVAL,
	[FK_PKT_INTERVAL] = H_PKT_INTERVAL, [FK_PKT_SPACE] = H_PKT_SPACE,
	[FK_SAMP_SIZE] = H_SIZE, [FK_SAMP_POP] = H_POP, [FK_SAMP_PROB] = H_PROB,
};

/* The hot field (flow_hot) of a kind, plus one; 0 for the others. */
static const uint8_t kind_hot[FK_COUNT] = {
	[FK_SRC4] = HOT_SRC4 + 1, [FK_DST4] = HOT_DST4 + 1,
	[FK_SPORT] = HOT_SPORT + 1, [FK_DPORT] = HOT_DPORT + 1,
	[FK_PROTO] = HOT_PROTO + 1, [FK_TCP_FLAGS] = HOT_TCP_FLAGS + 1, [FK_TOS] = HOT_TOS + 1,
	[FK_BYTES] = HOT_BYTES + 1, [FK_PKTS] = HOT_PKTS + 1,
	[FK_UP_START] = HOT_UP_START + 1, [FK_UP_END] = HOT_UP_END + 1,
	[FK_START_MS] = HOT_START_MS + 1, [FK_END_MS] = HOT_END_MS + 1,
	[FK_IN_IF] = HOT_IN_IF + 1, [FK_OUT_IF] = HOT_OUT_IF + 1,
};

/* The value a kind sets: kinds that set the same one share it. */
static uint8_t kind_value(uint8_t k)
{
	switch (k) {
	case FK_SRC6: return FK_SRC4;
	case FK_DST6: return FK_DST4;
	case FK_START_S: case FK_START_US: case FK_START_NS: return FK_START_MS;
	case FK_END_S: case FK_END_US: case FK_END_NS: return FK_END_MS;
	default: return k;
	}
}

/* Checks t's length and, for a template without variable-length fields,
 * lists the fields a record is read for: their offsets are the same in
 * every record, so decoding visits only those, with no bounds check per
 * field, and each value is one unaligned 8-byte load and a shift (a set's
 * last record, with under 8 bytes after it, goes the field-by-field way
 * of rec_decode). A hot field (flow_hot) that is the only one to set its
 * value leaves the list for straight-line code (rec_ops): the order in
 * which the fields are read then does not matter. */
int flow_tmpl_seal(struct flow_tmpl *t)
{
	uint32_t min = 0;
	uint8_t sets[FK_COUNT] = { 0 };
	uint16_t n = 0;

	for (uint16_t i = 0; i < t->nfields; i++) {
		if (t->f[i].len == FLOW_VARLEN) {
			t->varlen = 1;
			min += 1;
		} else {
			min += t->f[i].len;
		}
	}
	if (min == 0 || min > FLOW_MAX_REC_LEN)
		return M_EPARSE;
	t->min_len = min;
	if (t->varlen)
		return 0;
	for (uint32_t i = 0, off = 0; i < t->nfields; off += t->f[i].len, i++) {
		const struct flow_field *f = &t->f[i];
		struct flow_op *o;

		if (f->kind == FK_SKIP)
			continue;
		o = &t->ops[t->nops++];
		o->off = (uint16_t)off;
		o->kind = f->kind;
		o->len = (uint8_t)f->len;
		o->shift = f->len > 8 ? 0 : (uint8_t)(64 - 8 * f->len);
		t->have |= kind_have[f->kind];
		if (sets[kind_value(f->kind)] < 2)
			sets[kind_value(f->kind)]++;
	}
	for (uint16_t i = 0; i < t->nops; i++) {
		const struct flow_op *o = &t->ops[i];
		unsigned h = kind_hot[o->kind];

		if (h && sets[kind_value(o->kind)] == 1) {
			t->hot |= (uint16_t)(1u << (h - 1));
			t->hotf[h - 1].off = o->off;
			t->hotf[h - 1].shift = o->shift;
		} else {
			t->ops[n++] = *o;
		}
	}
	t->nops = n;
	return 0;
}

/* What one record said, before it is turned into a flow_rec. Only the
 * values whose H_ bit is set in have are meaningful. */
struct acc {
	struct flow_rec r;
	uint32_t have;
	uint64_t bytes_total, pkts_total, bytes_post, pkts_post;
	uint32_t up_start, up_end;
	int64_t start_ms, end_ms;       /* exporter wall clock */
	uint64_t start_dus, end_dus;
	uint64_t dur_ms;
	int64_t init_ms;
	uint64_t sampler_id, interval, pkt_interval, pkt_space, size, pop;
	double prob;
	uint16_t icmp;
};

/* dateTimeMicroseconds and dateTimeNanoseconds: NTP timestamps, seconds
 * since 1900 and a binary fraction (RFC 7011 6.1.9, 6.1.10). */
static int64_t ntp_ms(const uint8_t *p)
{
	int64_t s = (int64_t)rd32(p) - NTP_UNIX_OFFSET;
	uint64_t frac = rd32(p + 4);

	return s * 1000 + (int64_t)((frac * 1000) >> 32);
}

/* Milliseconds from an untrusted 64-bit value, kept far from overflow. */
static int64_t clamp_ms(uint64_t v)
{
	return v > (uint64_t)INT64_MAX / 4 ? INT64_MAX / 4 : (int64_t)v;
}

static int64_t sec_ms(uint64_t v)
{
	return v > (uint64_t)INT64_MAX / 4000 ? INT64_MAX / 4 : (int64_t)v * 1000;
}

/* Stores field value v (len bytes at p) of kind in a. The presence bits
 * that do not depend on the value are the caller's (kind_have). */
static inline __attribute__((always_inline)) void
field_store(struct acc *a, uint8_t kind, const uint8_t *p, unsigned len,
			       uint64_t v)
{
	switch (kind) {
	case FK_BYTES: a->r.bytes = v; break;
	case FK_PKTS: a->r.packets = v; break;
	case FK_BYTES_TOTAL: a->bytes_total = v; break;
	case FK_PKTS_TOTAL: a->pkts_total = v; break;
	case FK_BYTES_POST: a->bytes_post = v; break;
	case FK_PKTS_POST: a->pkts_post = v; break;
	case FK_PROTO: a->r.proto = (uint8_t)v; break;
	case FK_TOS: a->r.tos = (uint8_t)v; break;
	case FK_TCP_FLAGS: a->r.tcp_flags = (uint8_t)v; break;
	case FK_SPORT: a->r.sport = (uint16_t)v; break;
	case FK_DPORT: a->r.dport = (uint16_t)v; break;
	case FK_SRC4: flow_ip_v4(&a->r.src, p); break;
	case FK_DST4: flow_ip_v4(&a->r.dst, p); break;
	case FK_SRC6: flow_ip_v6(&a->r.src, p); break;
	case FK_DST6: flow_ip_v6(&a->r.dst, p); break;
	case FK_SRC_MASK: a->r.src_mask = (uint8_t)v; break;
	case FK_DST_MASK: a->r.dst_mask = (uint8_t)v; break;
	case FK_IN_IF: a->r.in_if = (uint32_t)v; break;
	case FK_OUT_IF: a->r.out_if = (uint32_t)v; break;
	case FK_SRC_AS: a->r.src_as = (uint32_t)v; break;
	case FK_DST_AS: a->r.dst_as = (uint32_t)v; break;
	case FK_VLAN: a->r.vlan = (uint16_t)(v & 0xfff); break;
	case FK_DIRECTION:
		if (v == 1)
			a->r.flags |= FLOW_F_EGRESS;
		break;
	case FK_ICMP: a->icmp = (uint16_t)v; break;
	case FK_ICMP_TYPE: a->r.icmp_type = (uint8_t)v; break;
	case FK_ICMP_CODE: a->r.icmp_code = (uint8_t)v; break;
	case FK_FRAG_OFF:
		if (v & 0x1fff)
			a->have |= H_FRAG;
		break;
	case FK_FRAG_FLAGS:
		/* RFC 5102 numbers bits from the most significant: MF is bit 2. */
		if (v & 0x20)
			a->have |= H_FRAG;
		break;
	case FK_UP_START: a->up_start = (uint32_t)v; break;
	case FK_UP_END: a->up_end = (uint32_t)v; break;
	case FK_START_S: a->start_ms = sec_ms(v); break;
	case FK_END_S: a->end_ms = sec_ms(v); break;
	case FK_START_MS: a->start_ms = clamp_ms(v); break;
	case FK_END_MS: a->end_ms = clamp_ms(v); break;
	case FK_START_US: case FK_START_NS:
		a->start_ms = ntp_ms(p); break;
	case FK_END_US: case FK_END_NS:
		a->end_ms = ntp_ms(p); break;
	case FK_START_DUS: a->start_dus = v; break;
	case FK_END_DUS: a->end_dus = v; break;
	case FK_DUR_MS: a->dur_ms = v; break;
	case FK_DUR_US: a->dur_ms = v / 1000; break;
	case FK_INIT_MS: a->init_ms = clamp_ms(v); break;
	case FK_SAMPLER_ID: a->sampler_id = v; break;
	case FK_SAMP_INTERVAL: a->interval = v; break;
	case FK_PKT_INTERVAL: a->pkt_interval = v; break;
	case FK_PKT_SPACE: a->pkt_space = v; break;
	case FK_SAMP_SIZE: a->size = v; break;
	case FK_SAMP_POP: a->pop = v; break;
	case FK_SAMP_PROB:
		if (len == 8) {
			memcpy(&a->prob, &v, sizeof(a->prob));
		} else {
			uint32_t bits = (uint32_t)v;
			float f;
			memcpy(&f, &bits, sizeof(f));
			a->prob = f;
		}
		break;
	default:
		break;
	}
}

/* Decodes one record of t from p (n bytes left in the set). Returns the
 * bytes it took, or 0 when it runs past n. */
static size_t rec_decode(struct acc *a, const struct flow_tmpl *t,
			 const uint8_t *p, size_t n)
{
	size_t off = 0;

	for (uint16_t i = 0; i < t->nfields; i++) {
		const struct flow_field *f = &t->f[i];
		size_t len = f->len;

		if (len == FLOW_VARLEN) {
			/* RFC 7011 7: one length byte, or 255 then two. */
			if (off >= n)
				return 0;
			len = p[off++];
			if (len == 255) {
				if (n - off < 2)
					return 0;
				len = rd16(p + off);
				off += 2;
			}
			if (len > n - off)
				return 0;
			off += len;
			continue;
		}
		if (len > n - off)
			return 0;
		if (f->kind != FK_SKIP) {
			a->have |= kind_have[f->kind];
			field_store(a, f->kind, p + off, (unsigned)len,
				    len <= 8 ? rdn(p + off, (unsigned)len) : 0);
		}
		off += len;
	}
	return off;
}

/* 8 bytes at p as a big-endian number. */
static inline uint64_t ld_be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* The value of hot field i of t in the record at p. */
static inline uint64_t hot_val(const struct flow_tmpl *t, const uint8_t *p, enum flow_hot i)
{
	return ld_be64(p + t->hotf[i].off) >> t->hotf[i].shift;
}

static inline int has_hot(const struct flow_tmpl *t, enum flow_hot i)
{
	return t->hot >> i & 1;
}

/* Decodes one record of a fixed-length template (flow_tmpl_seal) from p,
 * which is followed by at least 8 more bytes of the set: every value,
 * wherever it lies in the record, is one unaligned load and a shift. */
static inline void rec_ops(struct acc *a, const struct flow_tmpl *t, const uint8_t *p)
{
	if (has_hot(t, HOT_SRC4))
		flow_ip_v4(&a->r.src, p + t->hotf[HOT_SRC4].off);
	if (has_hot(t, HOT_DST4))
		flow_ip_v4(&a->r.dst, p + t->hotf[HOT_DST4].off);
	if (has_hot(t, HOT_SPORT))
		a->r.sport = (uint16_t)hot_val(t, p, HOT_SPORT);
	if (has_hot(t, HOT_DPORT))
		a->r.dport = (uint16_t)hot_val(t, p, HOT_DPORT);
	if (has_hot(t, HOT_PROTO))
		a->r.proto = (uint8_t)hot_val(t, p, HOT_PROTO);
	if (has_hot(t, HOT_TCP_FLAGS))
		a->r.tcp_flags = (uint8_t)hot_val(t, p, HOT_TCP_FLAGS);
	if (has_hot(t, HOT_TOS))
		a->r.tos = (uint8_t)hot_val(t, p, HOT_TOS);
	if (has_hot(t, HOT_BYTES))
		a->r.bytes = hot_val(t, p, HOT_BYTES);
	if (has_hot(t, HOT_PKTS))
		a->r.packets = hot_val(t, p, HOT_PKTS);
	if (has_hot(t, HOT_UP_START))
		a->up_start = (uint32_t)hot_val(t, p, HOT_UP_START);
	if (has_hot(t, HOT_UP_END))
		a->up_end = (uint32_t)hot_val(t, p, HOT_UP_END);
	if (has_hot(t, HOT_START_MS))
		a->start_ms = clamp_ms(hot_val(t, p, HOT_START_MS));
	if (has_hot(t, HOT_END_MS))
		a->end_ms = clamp_ms(hot_val(t, p, HOT_END_MS));
	if (has_hot(t, HOT_IN_IF))
		a->r.in_if = (uint32_t)hot_val(t, p, HOT_IN_IF);
	if (has_hot(t, HOT_OUT_IF))
		a->r.out_if = (uint32_t)hot_val(t, p, HOT_OUT_IF);
	for (const struct flow_op *o = t->ops, *e = o + t->nops; o < e; o++) {
		const uint8_t *q = p + o->off;

		field_store(a, o->kind, q, o->len, ld_be64(q) >> o->shift);
	}
}

/* The rate the sampling fields of a record give; 0 when they give none
 * (or give zero, which the caller counts). have_rate says whether any
 * sampling field was there. */
static uint64_t acc_rate(const struct acc *a, int *have_rate)
{
	uint64_t sum;

	*have_rate = 1;
	if (a->have & H_INTERVAL)
		return a->interval;
	if ((a->have & (H_PKT_INTERVAL | H_PKT_SPACE)) == (H_PKT_INTERVAL | H_PKT_SPACE)) {
		/* interval packets taken, then space packets skipped. */
		if (a->pkt_interval == 0)
			return 0;
		if (__builtin_add_overflow(a->pkt_interval, a->pkt_space, &sum))
			return UINT64_MAX;
		return (sum + a->pkt_interval / 2) / a->pkt_interval;
	}
	if ((a->have & (H_SIZE | H_POP)) == (H_SIZE | H_POP))
		return a->size ? (a->pop + a->size / 2) / a->size : 0;
	if (a->have & H_PROB) {
		if (!(a->prob > 1e-9) || a->prob > 1.0)
			return 0;
		return (uint64_t)(1.0 / a->prob + 0.5);
	}
	*have_rate = 0;
	return 0;
}

static void options_apply(struct flow_msg *m, struct acc *a)
{
	int have_rate;
	uint64_t rate = acc_rate(a, &have_rate);

	m->d->st.options_records++;
	if (have_rate)
		flow_set_rate(m, !!(a->have & H_SAMPLER),
			      (a->have & H_SAMPLER) ? a->sampler_id : 0, rate);
	if ((a->have & H_INIT) && m->src)
		m->src->init_ms = a->init_ms;
}

/* The wall-clock start and end of a data record. */
static void acc_times(const struct flow_msg *m, struct acc *a)
{
	struct flow_rec *r = &a->r;
	int hs = 0, he = 0, est = 0;
	int64_t s = 0, e = 0, init = 0;

	if (a->have & H_INIT)
		init = a->init_ms;
	else if (m->src)
		init = m->src->init_ms;

	if (a->have & H_START) {
		s = a->start_ms + m->skew_ms;
		hs = 1;
	} else if (a->have & H_START_DUS) {
		s = m->export_ms - clamp_ms(a->start_dus / 1000);
		hs = 1;
	}
	if (a->have & H_END) {
		e = a->end_ms + m->skew_ms;
		he = 1;
	} else if (a->have & H_END_DUS) {
		e = m->export_ms - clamp_ms(a->end_dus / 1000);
		he = 1;
	}
	if (m->fmt == FLOW_FMT_NF9) {
		/* v9 uptimes are relative to the header's sysUptime. */
		if (!hs && (a->have & H_UP_START)) {
			s = m->export_ms - (int32_t)(m->uptime_ms - a->up_start);
			hs = 1;
		}
		if (!he && (a->have & H_UP_END)) {
			e = m->export_ms - (int32_t)(m->uptime_ms - a->up_end);
			he = 1;
		}
	} else if (init > 0) {
		if (!hs && (a->have & H_UP_START)) {
			s = init + a->up_start + m->skew_ms;
			hs = 1;
		}
		if (!he && (a->have & H_UP_END)) {
			e = init + a->up_end + m->skew_ms;
			he = 1;
		}
	} else if (!hs && !he && (a->have & (H_UP_START | H_UP_END))) {
		/* No init time known: assume the flow ended at export. */
		e = m->export_ms;
		s = e;
		if ((a->have & (H_UP_START | H_UP_END)) == (H_UP_START | H_UP_END))
			s = e - (int32_t)(a->up_end - a->up_start);
		hs = he = 1;
		est = 1;
	}
	if (a->have & H_DUR) {
		int64_t dur = clamp_ms(a->dur_ms);

		if (hs && !he) {
			e = s + dur;
			he = 1;
		} else if (he && !hs) {
			s = e - dur;
			hs = 1;
		}
	}
	if (!hs && !he) {
		s = e = m->export_ms;
		est = 1;
	} else if (!hs) {
		s = e;
	} else if (!he) {
		e = s;
	}
	r->start_ms = s;
	r->end_ms = e;
	if (est)
		r->flags |= FLOW_F_TIME_ESTIMATED;
}

static void data_emit(struct flow_msg *m, struct acc *a)
{
	struct flow_rec *r = &a->r;
	uint64_t rate = 0;
	int have_rate;

	if (!(a->have & H_BYTES))
		r->bytes = (a->have & H_BYTES_TOTAL) ? a->bytes_total :
			   (a->have & H_BYTES_POST) ? a->bytes_post : 0;
	if (!(a->have & H_PKTS))
		r->packets = (a->have & H_PKTS_TOTAL) ? a->pkts_total :
			     (a->have & H_PKTS_POST) ? a->pkts_post : 0;
	if (r->proto == 1 || r->proto == 58) {
		if (a->have & H_ICMP) {
			r->icmp_type = (uint8_t)(a->icmp >> 8);
			r->icmp_code = (uint8_t)a->icmp;
		} else if (!(a->have & (H_ICMP_TYPE | H_ICMP_CODE)) && r->sport == 0) {
			/* Exporters without an ICMP field use the port. */
			r->icmp_type = (uint8_t)(r->dport >> 8);
			r->icmp_code = (uint8_t)r->dport;
		}
	}
	if (a->have & H_FRAG)
		r->flags |= FLOW_F_FRAGMENT;
	acc_times(m, a);

	if ((a->have & H_SAMPLER) && m->src)
		rate = flow_sampler_rate(m->src, a->sampler_id);
	if (!rate && (a->have & H_RATE)) {   /* rare in data records */
		rate = acc_rate(a, &have_rate);
		if (have_rate && rate == 0) {
			m->d->st.zero_rate++;
			rate = 1;
		}
	}
	if (!rate && m->src)
		rate = m->src->rate;
	flow_emit(m->d, r, rate);
}

int flow_data_set(struct flow_msg *m, const struct flow_tmpl *t,
		  const uint8_t *p, size_t n)
{
	size_t off = 0;
	struct acc a;

	/* The record is cleared once per set, not per record (a memset of
	 * its size, `rep stosq`, was a seventh of the decoding time): every
	 * record of the set has the same template, so decoding writes the
	 * same fields each time, and data_emit and flow_emit write bytes,
	 * packets, times and sampling in every record. What they only set
	 * on some records is cleared here per record. The other values of
	 * the accumulator are read only when their presence bit is set. */
	memset(&a.r, 0, sizeof(a.r));
	/* What is left after the last whole record is padding. */
	while (n - off >= t->min_len) {
		size_t used;

		a.r.flags = 0;
		a.r.icmp_type = 0;
		a.r.icmp_code = 0;
		if (!t->varlen && n - off >= t->min_len + 8) {
			a.have = t->have;
			rec_ops(&a, t, p + off);
			used = t->min_len;
		} else {
			a.have = 0;
			used = rec_decode(&a, t, p + off, n - off);
			if (!used) {
				m->d->st.truncated++;
				return M_EPARSE;
			}
		}
		off += used;
		m->nrecs++;
		if (t->options) {
			options_apply(m, &a);
		} else {
			a.r.exporter = *m->exporter;
			a.r.domain = m->domain;
			a.r.format = m->fmt;
			data_emit(m, &a);
		}
	}
	return 0;
}
