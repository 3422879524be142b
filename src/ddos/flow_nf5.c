/*
 * NetFlow v5: a 24-byte header and up to 30 fixed 48-byte IPv4 records.
 * The header's count must be covered by the datagram (a datagram that
 * claims more records than it holds is rejected whole: its count, not its
 * length, is what lies). Times in records are milliseconds of the router's
 * uptime; the header pairs one uptime with the wall clock, which turns
 * them into absolute times. The sampling interval is in the header's low
 * 14 bits (the top two say the mode); 0 means unsampled.
 */
#include <string.h>

#include "core/err.h"
#include "ddos/flow_int.h"

#define NF5_HDR 24
#define NF5_REC 48

/* The wall-clock time of an uptime value, relative to the header. */
static int64_t nf5_time(const struct flow_msg *m, uint32_t up)
{
	return m->export_ms - (int32_t)(m->uptime_ms - up);
}

int flow_nf5_decode(struct flow_msg *m, const uint8_t *p, size_t n)
{
	struct flow_rec rec;
	uint16_t count;
	uint32_t rate;
	int64_t export_ms;

	if (n < NF5_HDR) {
		m->d->st.truncated++;
		return M_EPARSE;
	}
	count = rd16(p + 2);
	if ((size_t)count * NF5_REC > n - NF5_HDR) {
		m->d->st.truncated++;
		return M_EPARSE;
	}
	m->uptime_ms = rd32(p + 4);
	export_ms = (int64_t)rd32(p + 8) * 1000 + rd32(p + 12) / 1000000;
	flow_anchor(m, export_ms);
	m->domain = (uint32_t)p[20] << 8 | p[21];
	rate = rd16(p + 22) & 0x3fff;
	if (rate == 0)
		rate = 1;
	/* flow_sequence: the flows sent before this datagram. */
	flow_seq_note(m, rd32(p + 16), count, 1, 1, m->uptime_ms);

	/* The record is cleared once per datagram, not per record (a memset
	 * of its 128 bytes is a `rep stosq`, slow to start, as in
	 * flow_data_set): every field is written for every record below or
	 * by flow_emit, but for what the datagram shares (set here) and what
	 * only some records set (cleared per record). */
	memset(&rec, 0, sizeof(rec));
	rec.exporter = *m->exporter;
	rec.domain = m->domain;
	rec.format = FLOW_FMT_NF5;
	for (uint16_t i = 0; i < count; i++) {
		const uint8_t *r = p + NF5_HDR + (size_t)i * NF5_REC;

		rec.flags = 0;
		rec.icmp_type = 0;
		rec.icmp_code = 0;
		flow_ip_v4(&rec.src, r);
		flow_ip_v4(&rec.dst, r + 4);
		rec.in_if = rd16(r + 12);
		rec.out_if = rd16(r + 14);
		rec.packets = rd32(r + 16);
		rec.bytes = rd32(r + 20);
		rec.start_ms = nf5_time(m, rd32(r + 24));
		rec.end_ms = nf5_time(m, rd32(r + 28));
		rec.sport = rd16(r + 32);
		rec.dport = rd16(r + 34);
		rec.tcp_flags = r[37];
		rec.proto = r[38];
		rec.tos = r[39];
		rec.src_as = rd16(r + 40);
		rec.dst_as = rd16(r + 42);
		rec.src_mask = r[44];
		rec.dst_mask = r[45];
		if (rec.proto == 1) {
			/* Routers put ICMP type and code in the destination port. */
			rec.icmp_type = (uint8_t)(rec.dport >> 8);
			rec.icmp_code = (uint8_t)rec.dport;
		}
		flow_emit(m->d, &rec, rate);
	}
	return 0;
}
