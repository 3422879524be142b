/*
 * Flow collection decoders: NetFlow v5, NetFlow v9 (RFC 3954), IPFIX
 * (RFC 7011) and sFlow v5 datagrams become one normalised record type, so
 * the counters and the detector downstream never see an export format.
 *
 * A decoder is fed one UDP datagram at a time, with the exporter's address
 * and the receive time, and hands each flow record to a callback before
 * flow_decode() returns. It holds the state the template-based formats need
 * between datagrams: templates per (exporter, observation domain / source
 * id, template id), the sampling rate each exporter announced in options
 * data, IPFIX's system init time, and every exporter's export sequence
 * (what went missing, flow_seq.c). Templates not sent again within the
 * template timeout expire, by the receive times given. The parsing itself
 * is pure: the unit tests, the fuzzers, the benchmark and the collector
 * run the same code.
 *
 * Every input is hostile: every length is checked before it is used, every
 * loop over input is bounded by the bytes that are left (never by a count
 * the packet claims), and the template state is bounded per source and in
 * total, with least-recently-used eviction. What goes wrong is counted in
 * struct flow_stats and flow_decode() says what kind of problem the
 * datagram had; nothing aborts.
 *
 * A decoder is not thread-safe: each collector thread owns one.
 * docs/ddos.md maps every export field to struct flow_rec.
 */
#ifndef MAMORI_FLOW_H
#define MAMORI_FLOW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum flow_format {
	FLOW_FMT_AUTO,      /* by the version at the start of the datagram */
	FLOW_FMT_NETFLOW,   /* NetFlow v5 or v9, by version */
	FLOW_FMT_NF5,
	FLOW_FMT_NF9,
	FLOW_FMT_IPFIX,
	FLOW_FMT_SFLOW,
};

#define FLOW_IPV4 4
#define FLOW_IPV6 6
#define FLOW_IP_STRLEN 46   /* INET6_ADDRSTRLEN */

/* An address: IPv4 is kept v4-mapped (::ffff:a.b.c.d), so v4 and v6 share
 * one comparison and one hash. family 0 means "absent". */
struct flow_ip {
	uint8_t a[16];
	uint8_t family;     /* FLOW_IPV4, FLOW_IPV6 or 0 */
};

/* Record flags. */
#define FLOW_F_FRAGMENT       0x0001  /* IP fragment (offset or MF set) */
#define FLOW_F_SCALED         0x0002  /* bytes and packets already times sampling */
#define FLOW_F_RATE_DEFAULT   0x0004  /* no rate announced yet: the default used */
#define FLOW_F_TIME_ESTIMATED 0x0008  /* the export carried no usable times */
#define FLOW_F_EGRESS         0x0010  /* exported at egress (flowDirection 1) */

/* One flow record. Counts are as exported (one sampled packet per sFlow
 * sample), unless the decoder was configured with FLOW_CFG_SCALE, which
 * multiplies them by the sampling rate and sets FLOW_F_SCALED. */
struct flow_rec {
	struct flow_ip exporter;  /* NetFlow/IPFIX: the UDP source; sFlow: the agent */
	uint32_t domain;          /* v9 source id, IPFIX observation domain id,
				   * v5 engine type << 8 | engine id, sFlow sub-agent */
	struct flow_ip src, dst;
	uint16_t sport, dport;    /* 0 for protocols without ports */
	uint8_t proto;            /* IP protocol number */
	uint8_t tcp_flags;        /* cumulative OR of the flow's TCP flags */
	uint8_t icmp_type, icmp_code;  /* when proto is 1 or 58 */
	uint8_t tos;
	uint8_t src_mask, dst_mask;
	uint8_t format;           /* enum flow_format: NF5, NF9, IPFIX or SFLOW */
	uint16_t flags;           /* FLOW_F_* */
	uint16_t vlan;            /* 0 when unknown */
	uint32_t in_if, out_if;   /* ifIndex; 0 when unknown */
	uint32_t src_as, dst_as;
	uint32_t sampling;        /* 1-in-N packet sampling that applies; >= 1 */
	uint64_t bytes, packets;
	int64_t start_ms, end_ms; /* wall clock, ms since the epoch; start <= end */
};

/* sFlow generic interface counters (counter sample record 0:1). */
struct flow_ifcounters {
	struct flow_ip agent;
	uint32_t sub_agent;
	uint32_t source_id;       /* data source: type << 24 | index */
	uint32_t ifindex, iftype, direction, status;
	uint64_t speed;           /* bit/s */
	uint64_t in_octets, out_octets;
	uint32_t in_ucast, in_mcast, in_bcast, in_discards, in_errors;
	uint32_t out_ucast, out_mcast, out_bcast, out_discards, out_errors;
	int64_t recv_ms;
};

/* What went wrong, and how much was done; monotonic counters. */
struct flow_stats {
	uint64_t datagrams;         /* fed to flow_decode() */
	uint64_t records;           /* flow records handed out */
	uint64_t bad_datagrams;     /* malformed: bad header, length or structure */
	uint64_t unsupported;       /* unknown format or version */
	uint64_t truncated;         /* a set, sample or record ran past its end */
	uint64_t bad_sets;          /* set length < 4 or past the message */
	uint64_t reserved_sets;     /* set ids 1 (IPFIX), 2..255 skipped */
	uint64_t templates;         /* templates learnt or changed */
	uint64_t templates_refreshed;  /* the same template sent again */
	uint64_t templates_withdrawn;
	uint64_t templates_evicted; /* to make room (per-source or memory bound) */
	uint64_t templates_bad;     /* zero fields, bad ids, absurd lengths */
	uint64_t templates_refused; /* too many fields, or no memory left */
	uint64_t templates_expired; /* not sent again within the template timeout */
	uint64_t sources_evicted;   /* exporter state dropped to make room */
	uint64_t no_template_sets;  /* data sets dropped: template unknown */
	uint64_t no_template_bytes;
	uint64_t options_records;   /* options data records applied */
	uint64_t zero_rate;         /* a sampling rate of 0, taken as 1 */
	uint64_t sflow_flow_samples;
	uint64_t sflow_counter_samples;
	uint64_t sflow_ifcounters;  /* generic interface counter records */
	uint64_t sflow_skipped;     /* records and samples of types not used */
	uint64_t sflow_non_ip;      /* sampled headers that were not IP */
	uint64_t time_fixed;        /* start after end, set to end */
	/* Export sequence numbers (flow_seq.c): what went missing between
	 * the exporter and us, per (exporter, domain). */
	uint64_t seq_lost_records;  /* NetFlow v5 flows, IPFIX data records */
	uint64_t seq_lost_datagrams;  /* NetFlow v9 export packets, sFlow datagrams */
	uint64_t seq_late;          /* datagrams behind the sequence (reordered, duplicated) */
	uint64_t seq_resets;        /* exporter restarts and jumps: counting starts over */
	uint64_t seq_evicted;       /* sequence state dropped to make room */
};

struct flow_stat_desc {
	const char *name;   /* metric suffix, e.g. "records" */
	const char *help;
	size_t offset;      /* in struct flow_stats */
};

/* One entry per field of struct flow_stats, for a metrics exporter. */
extern const struct flow_stat_desc flow_stat_descs[];
extern const size_t flow_stat_count;

/* Decoder configuration; zero fields take the defaults below. */
#define FLOW_CFG_SCALE      0x1   /* multiply counts by the sampling rate */
#define FLOW_CFG_RECV_CLOCK 0x2   /* anchor times to the receive time, not
				   * the exporter's header clock */

#define FLOW_DEF_SOURCES   1024
#define FLOW_DEF_TEMPLATES 256
#define FLOW_DEF_FIELDS    128
#define FLOW_DEF_MEMORY    (16u << 20)
#define FLOW_DEF_TEMPLATE_TIMEOUT_MS (1800 * 1000LL)
#define FLOW_MAX_FIELDS    1024   /* upper bound of max_fields */
#define FLOW_SEQ_HOLD      8      /* datagrams a sequence gap waits for late arrivals */

struct flow_cfg {
	uint32_t max_sources;    /* (exporter, domain) pairs with templates, and
				  * as many with sequence state */
	uint32_t max_templates;  /* per source */
	uint32_t max_fields;     /* per template, at most FLOW_MAX_FIELDS */
	size_t max_memory;       /* bytes of all template and exporter state */
	uint32_t default_rate;   /* 1-in-N used until an exporter announces one */
	unsigned flags;          /* FLOW_CFG_* */
	int64_t template_timeout_ms;  /* a template not sent again for this long
				       * (by receive time) expires; < 0 never */
};

typedef void (*flow_rec_fn)(void *arg, const struct flow_rec *r);
typedef void (*flow_ifc_fn)(void *arg, const struct flow_ifcounters *c);

struct flow_decoder;

/* Returns a decoder owned by the caller (flow_decoder_free), or NULL when
 * out of memory or cfg is invalid. cfg may be NULL for the defaults;
 * on_ifc may be NULL. Callbacks run inside flow_decode() and must not call
 * back into the decoder; the record they get is valid during the call. */
struct flow_decoder *flow_decoder_new(const struct flow_cfg *cfg,
				      flow_rec_fn on_rec, flow_ifc_fn on_ifc,
				      void *arg);
void flow_decoder_free(struct flow_decoder *d);

/* Decodes one datagram of n bytes received from `from` at recv_ms (wall
 * clock, ms). Records are delivered in order as they are decoded, so a
 * datagram that turns out malformed part-way may have delivered some.
 * Returns 0 when the datagram was well formed (data sets whose template is
 * unknown are counted, not errors), M_EPARSE when it was malformed or
 * truncated, M_EUNSUPP for an unknown format or version, M_ELIMIT when a
 * template was refused by a bound, M_ENOMEM when one could not be
 * allocated, M_EINVAL for bad arguments. */
int flow_decode(struct flow_decoder *d, enum flow_format fmt,
		const struct flow_ip *from, int64_t recv_ms,
		const void *p, size_t n);

const struct flow_stats *flow_decoder_stats(const struct flow_decoder *d);
/* Bytes of template and exporter state held now (<= cfg max_memory). */
size_t flow_decoder_memory(const struct flow_decoder *d);
/* (exporter, domain) pairs with state now. */
uint32_t flow_decoder_sources(const struct flow_decoder *d);

/* Sequence-number loss of one exporter and domain (v5 engine, v9 source
 * id, IPFIX observation domain, sFlow sub-agent). Loss is in the unit the
 * format's sequence counts: flows or data records for NetFlow v5 and
 * IPFIX, datagrams for NetFlow v9 and sFlow. A gap counts as lost once
 * FLOW_SEQ_HOLD more datagrams of the exporter came without filling it
 * (a datagram that arrives late fills its gap: not lost). */
struct flow_seq_stat {
	struct flow_ip exporter;
	uint32_t domain;
	uint8_t format;           /* enum flow_format: NF5, NF9, IPFIX or SFLOW */
	int unit_records;         /* 1: lost counts records; 0: datagrams */
	uint64_t datagrams;       /* received */
	uint64_t lost;            /* since the state was made */
	uint64_t lost_interval;   /* since the last flow_decoder_seq_foreach() */
	uint64_t late;
	uint64_t resets;
	int64_t last_ms;          /* receive time of the last datagram */
	uint64_t records;         /* flow records handed out (options records not) */
	uint32_t sampling;        /* 1-in-N of the last record; 0 before any */
	int sampling_default;     /* the last record had no announced rate: the
				   * configured default applied */
	int templates;            /* live v9/IPFIX templates (options ones too) of
				   * the exporter and domain; -1 for v5 and sFlow */
};

typedef void (*flow_seq_fn)(void *arg, const struct flow_seq_stat *s);

/* Calls fn for every exporter and domain with sequence state (at most
 * cfg max_sources, least recently heard from evicted first), most recently
 * heard from first, then starts every lost_interval afresh. templates
 * counts every template held. */
void flow_decoder_seq_foreach(struct flow_decoder *d, flow_seq_fn fn, void *arg);
/* The same walk for a reader that is not the periodic report (the API's
 * exporter list): lost_interval is left alone, and templates counts only
 * those not expired at now_ms (receive-time clock). */
void flow_decoder_seq_visit(struct flow_decoder *d, int64_t now_ms, flow_seq_fn fn, void *arg);
/* Exporters and domains with sequence state now. */
uint32_t flow_decoder_seq_count(const struct flow_decoder *d);

/* Drops every template not sent again within the template timeout of
 * now_ms (data of an expired template is dropped when it arrives anyway;
 * this frees their memory). Returns how many expired. */
uint32_t flow_decoder_expire(struct flow_decoder *d, int64_t now_ms);

/* The format at the start of a datagram: NF5, NF9, IPFIX, SFLOW or AUTO
 * when unknown. */
enum flow_format flow_detect(const void *p, size_t n);
/* "auto", "netflow", "v5", "v9", "ipfix", "sflow". */
int flow_format_parse(const char *s, enum flow_format *out);
const char *flow_format_name(enum flow_format f);

/* Link types of a sampled packet header. */
enum flow_link {
	FLOW_LINK_ETHERNET,
	FLOW_LINK_IPV4,
	FLOW_LINK_IPV6,
	FLOW_LINK_IP,       /* raw IP of either version: IPv6 by its version nibble, else IPv4 */
};

/* Decodes a captured packet header (Ethernet with up to four VLAN tags and
 * MPLS labels, IPv4, IPv6 with extension headers, TCP, UDP, SCTP, ICMP)
 * into the address, port, protocol, flags, fragment and ICMP fields of r,
 * which it does not otherwise clear. A header cut short leaves the fields
 * it did not reach alone. Returns 0 when the IP addresses were found,
 * M_EUNSUPP for a packet that is not IP, M_EPARSE when too short. */
int flow_pkt_decode(const uint8_t *p, size_t n, enum flow_link link,
		    struct flow_rec *r);

/* A packet seen on the wire (a mirror port, a capture file) as one flow
 * record: r cleared, its headers decoded (flow_pkt_decode), wire_len bytes,
 * one packet taken 1 in sampling (0 = 1), at ms. Returns what
 * flow_pkt_decode returned; r is meant to be used only on 0. */
int flow_pkt_record(const uint8_t *p, size_t caplen, enum flow_link link, uint64_t wire_len,
		    uint32_t sampling, int64_t ms, struct flow_rec *r);

/* An address from its bytes (IPv4 as v4-mapped IPv6). Inline: the
 * template decoder sets two per record. */
static inline void flow_ip_v4(struct flow_ip *ip, const uint8_t v4[4])
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	memcpy(ip->a, mapped, sizeof(mapped));
	memcpy(ip->a + 12, v4, 4);
	ip->family = FLOW_IPV4;
}

static inline void flow_ip_v6(struct flow_ip *ip, const uint8_t v6[16])
{
	memcpy(ip->a, v6, 16);
	ip->family = FLOW_IPV6;
}

/* Parses a textual IPv4 or IPv6 address; 0 or M_EINVAL. */
int flow_ip_parse(struct flow_ip *ip, const char *s);
/* Writes the address (or "-" when absent) into out; returns out. */
const char *flow_ip_str(const struct flow_ip *ip, char *out, size_t outsz);

#endif
