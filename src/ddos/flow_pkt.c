/*
 * A sampled packet header (sFlow's raw header record; later mirror-port
 * capture) into flow record fields. Sampled headers are cut at a fixed
 * length (128 bytes by default), so a header that stops early is normal:
 * decoding stops where the bytes do, keeping what it found. Every chain
 * it follows is bounded: four VLAN tags, eight MPLS labels, eight IPv6
 * extension headers.
 */
#include <string.h>

#include "core/err.h"
#include "ddos/flow_int.h"

#define MAX_VLAN_TAGS 4
#define MAX_MPLS_LABELS 8
#define MAX_V6_EXT 8

/* Ports, flags or type/code of the transport header at p (n bytes). */
static void pkt_l4(const uint8_t *p, size_t n, struct flow_rec *r)
{
	switch (r->proto) {
	case 6:   /* TCP */
		if (n >= 14)
			r->tcp_flags = p[13];
		/* fall through */
	case 17:  /* UDP */
	case 132: /* SCTP */
	case 136: /* UDP-Lite */
		if (n >= 4) {
			r->sport = rd16(p);
			r->dport = rd16(p + 2);
		}
		break;
	case 1:
	case 58:
		if (n >= 2) {
			r->icmp_type = p[0];
			r->icmp_code = p[1];
		}
		break;
	default:
		break;
	}
}

static int pkt_ipv4(const uint8_t *p, size_t n, struct flow_rec *r)
{
	size_t ihl;
	uint16_t frag;

	if (n < 20)
		return M_EPARSE;
	if (p[0] >> 4 != 4)
		return M_EUNSUPP;
	ihl = (size_t)(p[0] & 0x0f) * 4;
	r->tos = p[1];
	frag = rd16(p + 6);
	r->proto = p[9];
	flow_ip_v4(&r->src, p + 12);
	flow_ip_v4(&r->dst, p + 16);
	if (frag & 0x3fff)   /* MF or an offset */
		r->flags |= FLOW_F_FRAGMENT;
	if (ihl >= 20 && ihl <= n && (frag & 0x1fff) == 0)
		pkt_l4(p + ihl, n - ihl, r);
	return 0;
}

static int pkt_ipv6(const uint8_t *p, size_t n, struct flow_rec *r)
{
	uint8_t nh;
	size_t off = 40;

	if (n < 40)
		return M_EPARSE;
	if (p[0] >> 4 != 6)
		return M_EUNSUPP;
	r->tos = (uint8_t)((rd16(p) >> 4) & 0xff);
	nh = p[6];
	flow_ip_v6(&r->src, p + 8);
	flow_ip_v6(&r->dst, p + 24);
	for (int i = 0; i < MAX_V6_EXT; i++) {
		size_t len;

		if (nh == 0 || nh == 43 || nh == 60) {   /* hop-by-hop, routing, dest */
			if (n - off < 2)
				break;
			len = ((size_t)p[off + 1] + 1) * 8;
		} else if (nh == 44) {                   /* fragment */
			uint16_t fo;

			if (n - off < 8)
				break;
			fo = rd16(p + off + 2);
			r->flags |= FLOW_F_FRAGMENT;
			if (fo >> 3) {
				/* Not the first fragment: no transport header. */
				r->proto = p[off];
				return 0;
			}
			len = 8;
		} else if (nh == 51) {                   /* authentication header */
			if (n - off < 2)
				break;
			len = ((size_t)p[off + 1] + 2) * 4;
		} else {
			break;
		}
		nh = p[off];
		if (len > n - off) {
			off = n;
			break;
		}
		off += len;
	}
	r->proto = nh;
	if (off <= n)
		pkt_l4(p + off, n - off, r);
	return 0;
}

/* IP after an MPLS label stack: the version nibble says which. */
static int pkt_ip_guess(const uint8_t *p, size_t n, struct flow_rec *r)
{
	if (n < 1)
		return M_EPARSE;
	if (p[0] >> 4 == 4)
		return pkt_ipv4(p, n, r);
	if (p[0] >> 4 == 6)
		return pkt_ipv6(p, n, r);
	return M_EUNSUPP;
}

int flow_pkt_decode(const uint8_t *p, size_t n, enum flow_link link,
		    struct flow_rec *r)
{
	uint16_t type;
	size_t off = 12;
	int tags = 0;

	if (link == FLOW_LINK_IP)
		link = n > 0 && p[0] >> 4 == 6 ? FLOW_LINK_IPV6 : FLOW_LINK_IPV4;
	if (link == FLOW_LINK_IPV4)
		return pkt_ipv4(p, n, r);
	if (link == FLOW_LINK_IPV6)
		return pkt_ipv6(p, n, r);
	if (n < 14)
		return M_EPARSE;
	type = rd16(p + off);
	off += 2;
	while ((type == 0x8100 || type == 0x88a8 || type == 0x9100) && tags < MAX_VLAN_TAGS) {
		if (n - off < 4)
			return M_EPARSE;
		if (tags++ == 0)
			r->vlan = rd16(p + off) & 0x0fff;
		type = rd16(p + off + 2);
		off += 4;
	}
	switch (type) {
	case 0x0800:
		return pkt_ipv4(p + off, n - off, r);
	case 0x86dd:
		return pkt_ipv6(p + off, n - off, r);
	case 0x8847:
	case 0x8848:
		for (int i = 0; i < MAX_MPLS_LABELS; i++) {
			int bottom;

			if (n - off < 4)
				return M_EPARSE;
			bottom = p[off + 2] & 1;
			off += 4;
			if (bottom)
				return pkt_ip_guess(p + off, n - off, r);
		}
		return M_EUNSUPP;
	default:
		return M_EUNSUPP;
	}
}

int flow_pkt_record(const uint8_t *p, size_t caplen, enum flow_link link, uint64_t wire_len,
		    uint32_t sampling, int64_t ms, struct flow_rec *r)
{
	int rc;

	flow_rec_clear(r);
	rc = flow_pkt_decode(p, caplen, link, r);
	if (rc != 0)
		return rc;
	r->bytes = wire_len;
	r->packets = 1;
	r->sampling = sampling ? sampling : 1;
	r->start_ms = r->end_ms = ms;
	return 0;
}
