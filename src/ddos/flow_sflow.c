/*
 * sFlow v5 (sflow.org, "sFlow Version 5", 2004): an XDR datagram of
 * samples from one agent. Flow samples (compact, format 1, and expanded,
 * format 3) carry the sampling rate and records; the raw packet header
 * record (0:1) is decoded into one flow record with bytes = frame length
 * and packets = 1, standing for `rate` packets. Without a header record,
 * the sampled IPv4 (0:3) or IPv6 (0:4) record is used instead. Counter
 * samples (2 and 4) hand their generic interface counters (0:1) to the
 * counters callback. Everything else is skipped by its length.
 *
 * Counts in the datagram (samples, records) are only upper bounds: every
 * loop also stops when the bytes run out, and a count that promised more
 * than was there makes the datagram malformed.
 */
#include <string.h>

#include "core/err.h"
#include "ddos/flow_int.h"

#define SF_ENT(fmt) ((fmt) >> 12)
#define SF_FMT(fmt) ((fmt) & 0xfff)

struct sf_ctx {
	struct flow_msg *m;
	struct flow_ip agent;
	uint32_t sub_agent;
};

/* XDR pads opaque data to four bytes; the length is what was meant. */
static size_t sf_step(size_t len, size_t left)
{
	size_t padded = (len + 3) & ~(size_t)3;

	return padded < left ? padded : left;
}

/* An interface value of a flow sample: format 0 is an ifIndex. */
static uint32_t sf_if(uint32_t v)
{
	return (v >> 30) == 0 ? (v & 0x3fffffff) : 0;
}

/* The flow record a sample's records describe, if one does. */
struct sf_flow {
	struct flow_rec r;
	int have;    /* 2: from a raw header, 1: from a sampled IP record */
};

static void sf_raw_header(struct sf_ctx *c, const uint8_t *p, size_t n,
			  struct sf_flow *f)
{
	uint32_t proto, frame_len, hlen;
	enum flow_link link;
	struct flow_rec tmp, *r;

	if (f->have == 2)
		return;   /* one record per sample: the first header */
	if (n < 16) {
		c->m->d->st.truncated++;
		return;
	}
	proto = rd32(p);
	frame_len = rd32(p + 4);
	hlen = rd32(p + 12);
	if (hlen > n - 16) {
		c->m->d->st.truncated++;
		return;
	}
	switch (proto) {
	case 1: link = FLOW_LINK_ETHERNET; break;
	case 11: link = FLOW_LINK_IPV4; break;
	case 12: link = FLOW_LINK_IPV6; break;
	default:
		c->m->d->st.sflow_non_ip++;
		return;
	}
	/* Straight into the sample's record unless a sampled IP record came
	 * first (kept if this header does not decode): no copy per sample. */
	r = f->have ? &tmp : &f->r;
	flow_rec_clear(r);
	if (flow_pkt_decode(p + 16, hlen, link, r) != 0) {
		c->m->d->st.sflow_non_ip++;
		return;
	}
	r->bytes = frame_len;
	if (r != &f->r)
		f->r = *r;
	f->have = 2;
}

/* Sampled IPv4 (0:3) and IPv6 (0:4) records. */
static void sf_sampled_ip(struct sf_ctx *c, const uint8_t *p, size_t n, int v6,
			  struct sf_flow *f)
{
	size_t need = v6 ? 56 : 32, a = v6 ? 16 : 4;
	struct flow_rec *r = &f->r;   /* nothing is there yet */

	if (f->have)
		return;
	if (n < need) {
		c->m->d->st.truncated++;
		return;
	}
	flow_rec_clear(r);
	r->bytes = rd32(p);
	r->proto = (uint8_t)rd32(p + 4);
	if (v6) {
		flow_ip_v6(&r->src, p + 8);
		flow_ip_v6(&r->dst, p + 24);
	} else {
		flow_ip_v4(&r->src, p + 8);
		flow_ip_v4(&r->dst, p + 12);
	}
	r->sport = (uint16_t)rd32(p + 8 + 2 * a);
	r->dport = (uint16_t)rd32(p + 12 + 2 * a);
	r->tcp_flags = (uint8_t)rd32(p + 16 + 2 * a);
	r->tos = (uint8_t)rd32(p + 20 + 2 * a);
	if (r->proto == 1 || r->proto == 58) {
		/* The sampled-IP records put ICMP type and code in the ports. */
		r->icmp_type = (uint8_t)r->sport;
		r->icmp_code = (uint8_t)r->dport;
	}
	f->have = 1;
}

static int sf_flow_sample(struct sf_ctx *c, const uint8_t *p, size_t n, int expanded)
{
	struct flow_decoder *d = c->m->d;
	size_t hdr = expanded ? 44 : 32, off;
	uint32_t rate, in_if, out_if, nrec;
	struct sf_flow f;

	d->st.sflow_flow_samples++;
	if (n < hdr) {
		d->st.truncated++;
		return M_EPARSE;
	}
	if (expanded) {
		rate = rd32(p + 12);
		in_if = rd32(p + 24) == 0 ? rd32(p + 28) : 0;
		out_if = rd32(p + 32) == 0 ? rd32(p + 36) : 0;
		nrec = rd32(p + 40);
	} else {
		rate = rd32(p + 8);
		in_if = sf_if(rd32(p + 20));
		out_if = sf_if(rd32(p + 24));
		nrec = rd32(p + 28);
	}
	if (rate == 0) {
		d->st.zero_rate++;
		rate = 1;
	}
	f.have = 0;   /* f.r is written whole by the record that sets have */
	off = hdr;
	for (uint32_t i = 0; i < nrec; i++) {
		uint32_t fmt, len;

		if (n - off < 8) {
			d->st.truncated++;
			return M_EPARSE;
		}
		fmt = rd32(p + off);
		len = rd32(p + off + 4);
		off += 8;
		if (len > n - off) {
			d->st.truncated++;
			return M_EPARSE;
		}
		if (SF_ENT(fmt) == 0 && SF_FMT(fmt) == 1)
			sf_raw_header(c, p + off, len, &f);
		else if (SF_ENT(fmt) == 0 && (SF_FMT(fmt) == 3 || SF_FMT(fmt) == 4))
			sf_sampled_ip(c, p + off, len, SF_FMT(fmt) == 4, &f);
		else
			d->st.sflow_skipped++;
		off += sf_step(len, n - off);
	}
	if (!f.have)
		return 0;
	f.r.exporter = c->agent;
	f.r.domain = c->sub_agent;
	f.r.format = FLOW_FMT_SFLOW;
	f.r.packets = 1;
	f.r.in_if = in_if;
	f.r.out_if = out_if;
	f.r.start_ms = f.r.end_ms = c->m->recv_ms;
	flow_emit(d, &f.r, rate);
	return 0;
}

static void sf_ifcounters(struct sf_ctx *c, uint32_t source_id,
			  const uint8_t *p, size_t n)
{
	struct flow_decoder *d = c->m->d;
	struct flow_ifcounters k;

	if (n < 88) {
		d->st.truncated++;
		return;
	}
	d->st.sflow_ifcounters++;
	if (!d->on_ifc)
		return;
	memset(&k, 0, sizeof(k));
	k.agent = c->agent;
	k.sub_agent = c->sub_agent;
	k.source_id = source_id;
	k.ifindex = rd32(p);
	k.iftype = rd32(p + 4);
	k.speed = rd64(p + 8);
	k.direction = rd32(p + 16);
	k.status = rd32(p + 20);
	k.in_octets = rd64(p + 24);
	k.in_ucast = rd32(p + 32);
	k.in_mcast = rd32(p + 36);
	k.in_bcast = rd32(p + 40);
	k.in_discards = rd32(p + 44);
	k.in_errors = rd32(p + 48);
	k.out_octets = rd64(p + 56);
	k.out_ucast = rd32(p + 64);
	k.out_mcast = rd32(p + 68);
	k.out_bcast = rd32(p + 72);
	k.out_discards = rd32(p + 76);
	k.out_errors = rd32(p + 80);
	k.recv_ms = c->m->recv_ms;
	d->on_ifc(d->arg, &k);
}

static int sf_counter_sample(struct sf_ctx *c, const uint8_t *p, size_t n, int expanded)
{
	struct flow_decoder *d = c->m->d;
	size_t hdr = expanded ? 16 : 12, off;
	uint32_t source_id, nrec;

	d->st.sflow_counter_samples++;
	if (n < hdr) {
		d->st.truncated++;
		return M_EPARSE;
	}
	if (expanded) {
		source_id = rd32(p + 4) << 24 | (rd32(p + 8) & 0xffffff);
		nrec = rd32(p + 12);
	} else {
		source_id = rd32(p + 4);
		nrec = rd32(p + 8);
	}
	off = hdr;
	for (uint32_t i = 0; i < nrec; i++) {
		uint32_t fmt, len;

		if (n - off < 8) {
			d->st.truncated++;
			return M_EPARSE;
		}
		fmt = rd32(p + off);
		len = rd32(p + off + 4);
		off += 8;
		if (len > n - off) {
			d->st.truncated++;
			return M_EPARSE;
		}
		if (SF_ENT(fmt) == 0 && SF_FMT(fmt) == 1)
			sf_ifcounters(c, source_id, p + off, len);
		else
			d->st.sflow_skipped++;
		off += sf_step(len, n - off);
	}
	return 0;
}

int flow_sflow_decode(struct flow_msg *m, const uint8_t *p, size_t n)
{
	struct flow_decoder *d = m->d;
	struct sf_ctx c;
	size_t off = 8;
	uint32_t atype, nsamples;
	int rc = 0;

	memset(&c, 0, sizeof(c));
	c.m = m;
	if (n < 8) {
		d->st.truncated++;
		return M_EPARSE;
	}
	atype = rd32(p + 4);
	if (atype == 1) {
		if (n - off < 4)
			goto truncated;
		flow_ip_v4(&c.agent, p + off);
		off += 4;
	} else if (atype == 2) {
		if (n - off < 16)
			goto truncated;
		flow_ip_v6(&c.agent, p + off);
		off += 16;
	} else {
		return M_EPARSE;
	}
	/* sub-agent id, sequence number, uptime, number of samples */
	if (n - off < 16)
		goto truncated;
	c.sub_agent = rd32(p + off);
	nsamples = rd32(p + off + 12);
	m->domain = c.sub_agent;
	/* The sequence counts datagrams of the agent's sub-agent; the agent
	 * address in the datagram, not its UDP source, names the exporter. */
	m->exporter = &c.agent;
	flow_seq_note(m, rd32(p + off + 4), 1, 1, 1, rd32(p + off + 8));
	off += 16;

	for (uint32_t i = 0; i < nsamples; i++) {
		uint32_t fmt, len;
		const uint8_t *s;

		if (n - off < 8)
			goto truncated;
		fmt = rd32(p + off);
		len = rd32(p + off + 4);
		off += 8;
		if (len > n - off)
			goto truncated;
		s = p + off;
		if (SF_ENT(fmt) != 0) {
			d->st.sflow_skipped++;
		} else {
			switch (SF_FMT(fmt)) {
			case 1: rc = flow_rc_merge(rc, sf_flow_sample(&c, s, len, 0)); break;
			case 3: rc = flow_rc_merge(rc, sf_flow_sample(&c, s, len, 1)); break;
			case 2: rc = flow_rc_merge(rc, sf_counter_sample(&c, s, len, 0)); break;
			case 4: rc = flow_rc_merge(rc, sf_counter_sample(&c, s, len, 1)); break;
			default: d->st.sflow_skipped++; break;
			}
		}
		off += sf_step(len, n - off);
	}
	return rc;

truncated:
	d->st.truncated++;
	return M_EPARSE;
}
