/*
 * libFuzzer target for the sFlow v5 decoder (src/ddos/flow_sflow.c) and the
 * sampled packet header decoder under it (flow_pkt.c: Ethernet, VLAN,
 * MPLS, IPv4, IPv6 extension headers, TCP/UDP/ICMP). sFlow keeps no state
 * between datagrams, but the input is still a sequence of datagrams, the
 * file format of tools/flowgen.py --write, so its captures are seeds.
 * Besides "never crash, never read past a datagram", every record must
 * have start <= end, a sampling rate >= 1 and packets = 1 (unscaled); the
 * datagram sequence state stays within its bound, and one datagram can
 * count at most one datagram sequence gap of bounded size as lost.
 *
 * Input layout: datagrams, each a 2-byte big-endian length then its bytes;
 * a last short datagram is cut.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ddos/flow.h"

#define MAX_DATAGRAMS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_rec(void *arg, const struct flow_rec *r)
{
	(void)arg;
	if (r->start_ms > r->end_ms || r->sampling < 1 || r->packets != 1 ||
	    r->format != FLOW_FMT_SFLOW)
		abort();
}

static void on_ifc(void *arg, const struct flow_ifcounters *c)
{
	(void)arg;
	if (c->recv_ms != 1710072000000LL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t a1[4] = { 192, 0, 2, 1 };
	struct flow_ip from;
	struct flow_decoder *d = flow_decoder_new(NULL, on_rec, on_ifc, NULL);
	size_t off = 0;

	if (!d)
		return 0;
	flow_ip_v4(&from, a1);
	for (int i = 0; i < MAX_DATAGRAMS && size - off >= 2; i++) {
		size_t len = (size_t)data[off] << 8 | data[off + 1];
		uint8_t *p;

		off += 2;
		if (len > size - off)
			len = size - off;
		p = malloc(len ? len : 1);
		if (!p)
			break;
		memcpy(p, data + off, len);
		(void)flow_decode(d, FLOW_FMT_SFLOW, &from, 1710072000000LL, p, len);
		free(p);
		off += len;
		if (flow_decoder_seq_count(d) > FLOW_DEF_SOURCES ||
		    flow_decoder_stats(d)->seq_lost_datagrams > (uint64_t)(i + 1) << 24 ||
		    flow_decoder_stats(d)->seq_lost_records)
			abort();
	}
	if (flow_decoder_memory(d) != 0)
		abort();   /* sFlow never creates template state */
	flow_decoder_free(d);
	return 0;
}
