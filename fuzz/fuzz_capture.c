/*
 * libFuzzer target for the walk over a TPACKET_V3 ring block of mirror-port
 * capture (src/ddos/capture.c, ddos_capture_block) and the packet header
 * decoder under it (flow_pkt.c). The kernel writes the block, but the walk
 * checks it as if it were hostile; so does this target. Besides "never
 * crash, never read past the block": every record is one packet, sampled
 * at the context's rate, at a time within the last minute of the clock,
 * and no more records come out than packets went in.
 *
 * Input layout: one byte of flags (bit 0: Ethernet link, else raw IP at
 * tp_net), then the block.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ddos/capture.h"

#define NOW_MS 1710072000123LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_rec(void *arg, const struct flow_rec *r)
{
	(void)arg;
	if (r->packets != 1 || r->sampling != 7 || r->start_ms != r->end_ms ||
	    r->start_ms > NOW_MS || r->start_ms <= NOW_MS - 60000 || r->in_if != 5)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ddos_capture_ctx ctx = { 0, 7, 5, NOW_MS };
	struct ddos_capture_stats st;
	uint8_t *p;
	int rc;

	if (size < 1)
		return 0;
	ctx.ethernet = data[0] & 1;
	p = malloc(size - 1 ? size - 1 : 1);
	if (!p)
		return 0;
	memcpy(p, data + 1, size - 1);
	memset(&st, 0, sizeof(st));
	rc = ddos_capture_block(p, size - 1, &ctx, &st, on_rec, NULL);
	free(p);
	if (st.records > st.packets || (rc >= 0 && (uint64_t)rc != st.packets) ||
	    st.records + st.not_ip + st.short_pkts != st.packets)
		abort();
	return 0;
}
