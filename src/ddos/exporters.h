/*
 * The exporter list of GET /api/v1/ddos/exporters: one entry per (exporter,
 * domain, format) the flow decoders keep an export sequence for (flow.h,
 * flow_seq.c), with what the counters know of the exporter's address (its
 * longest record: about its active timeout, ddos_count.h).
 *
 * Why a list of copies: the decoders and the counters belong to the
 * collector thread (neither is thread-safe), so the collector builds the
 * list there, when the API asks (collect.h, ddos_collector_exporters), and
 * hands it over whole. The pieces are pure so the unit test builds a list
 * from a decoder without a thread. The list is bounded by the decoders'
 * own bound: at most max_sources entries per listener.
 */
#ifndef MAMORI_DDOS_EXPORTERS_H
#define MAMORI_DDOS_EXPORTERS_H

#include <stddef.h>
#include <stdint.h>

#include "ddos/ddos_count.h"
#include "ddos/flow.h"

struct ddos_exporter_info {
	struct flow_ip exporter;   /* NetFlow/IPFIX: the UDP source; sFlow: the agent */
	const char *listener;      /* "netflow" or "sflow"; static storage */
	uint8_t format;            /* enum flow_format: NF5, NF9, IPFIX or SFLOW */
	uint32_t domain;           /* v5 engine type << 8 | id, v9 source id, IPFIX
				    * observation domain, sFlow sub-agent */
	uint64_t datagrams, records;
	uint64_t lost;             /* in the unit of the format's sequence: */
	int lost_records;          /* 1: flows / data records (v5, IPFIX); 0: datagrams */
	uint64_t late, resets;
	int64_t last_ms;           /* receive time of the last datagram */
	uint32_t sampling;         /* of the last record; 0 before any */
	int sampling_default;      /* that rate was the configured default */
	int templates;             /* live templates (v9, IPFIX); -1 otherwise */
	int has_timing;            /* the counters know the address: */
	int64_t longest_record_ms; /* its longest record (about its active timeout) */
	int long_timeout;          /* longer than ddos.exporter_warn */
	uint64_t records_moved;    /* records that started in a judged second */
};

/* A growable array, owned by whoever holds it (ddos_exporter_list_fini). */
struct ddos_exporter_list {
	struct ddos_exporter_info *v;
	size_t n, cap;
};

/* Appends an entry per sequence state of dec (listener names it; static
 * storage), templates counted live at now_ms. 0 or M_ENOMEM. */
int ddos_exporters_add(struct ddos_exporter_list *l, const char *listener,
		       struct flow_decoder *dec, int64_t now_ms);
/* Sorts by address, ready for ddos_exporters_timing(). */
void ddos_exporters_by_address(struct ddos_exporter_list *l);
/* Several collector threads each decode their own exporters; an exporter
 * whose datagrams reached two of them has an entry from each: joined into
 * one (sums, the latest datagram's sampling). The list must be sorted by
 * address. */
void ddos_exporters_join(struct ddos_exporter_list *l);
/* A ddos_exporter_fn (arg: the list, sorted by address): adds the
 * counters' figures for e's address to every entry of that address (the
 * longest record, the warning, the records moved: called once per shard's
 * counters, it joins them). */
void ddos_exporters_timing(void *arg, const struct ddos_exporter_stat *e);
/* The order the API answers in: most recently heard from first, then by
 * address, listener, format and domain (a total order, so paging is
 * stable between calls). */
void ddos_exporters_by_recent(struct ddos_exporter_list *l);
void ddos_exporter_list_fini(struct ddos_exporter_list *l);

/* "netflow5", "netflow9", "ipfix", "sflow" ("unknown" otherwise). */
const char *ddos_exporter_protocol(uint8_t format);

#endif
