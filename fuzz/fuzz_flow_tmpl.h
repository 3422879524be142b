/*
 * The body of the template-based flow fuzzers (fuzz_netflow.c, fuzz_ipfix.c):
 * each defines FUZZ_FMT and includes this. One input is a sequence of
 * datagrams fed to one fresh decoder, so templates from the first shape how
 * the later ones decode. The decoder has small bounds so eviction and
 * refusal run often; besides "never crash, never read past a datagram", the
 * bounds and the record invariants (start <= end, a sampling rate >= 1) are
 * checked after every datagram, and the export sequence state: bounded,
 * and never more lost than one bounded gap per datagram (a restart or a
 * jump is not a loss of billions). The receive clock jumps past the
 * template timeout every 8 datagrams, so templates expire (on lookup and
 * in the sweep) while others are learnt.
 *
 * Input layout: datagrams, each a 2-byte big-endian length then its bytes
 * (the file format of tools/flowgen.py --write); the length's top bit
 * switches to a second exporter address. A last short datagram is cut.
 */
#ifndef FUZZ_FMT
#error "define FUZZ_FMT before including fuzz_flow_tmpl.h"
#endif

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
	if (r->start_ms > r->end_ms || r->sampling < 1 || !r->format)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t a1[4] = { 192, 0, 2, 1 }, a2[4] = { 192, 0, 2, 2 };
	struct flow_cfg cfg = { .max_sources = 2, .max_templates = 8, .max_fields = 64,
				.max_memory = 32768, .flags = FLOW_CFG_SCALE,
				.template_timeout_ms = 30 * 60000 };
	struct flow_ip from[2];
	struct flow_decoder *d = flow_decoder_new(&cfg, on_rec, NULL, NULL);
	const struct flow_stats *st;
	size_t off = 0;

	if (!d)
		return 0;
	flow_ip_v4(&from[0], a1);
	flow_ip_v4(&from[1], a2);
	for (int i = 0; i < MAX_DATAGRAMS && size - off >= 2; i++) {
		size_t len = (size_t)(data[off] & 0x7f) << 8 | data[off + 1];
		int alt = data[off] >> 7;
		uint8_t *p;

		off += 2;
		if (len > size - off)
			len = size - off;
		p = malloc(len ? len : 1);
		if (!p)
			break;
		memcpy(p, data + off, len);
		(void)flow_decode(d, FUZZ_FMT, &from[alt], 1710072000000LL + (i / 8) * 40 * 60000LL,
				  p, len);
		free(p);
		off += len;
		if (flow_decoder_memory(d) > cfg.max_memory ||
		    flow_decoder_sources(d) > cfg.max_sources ||
		    flow_decoder_seq_count(d) > cfg.max_sources)
			abort();
		st = flow_decoder_stats(d);
		if (st->seq_lost_records + st->seq_lost_datagrams > (uint64_t)(i + 1) << 24)
			abort();
	}
	(void)flow_decoder_expire(d, 1710072000000LL + 10 * 40 * 60000LL);
	if (flow_decoder_memory(d) != 0 && flow_decoder_sources(d) == 0)
		abort();
	flow_decoder_free(d);
	return 0;
}
