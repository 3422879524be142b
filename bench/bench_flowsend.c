/*
 * Flow export sender for the DDoS no-loss benchmark (bench/ddos_compare.sh
 * loss): sends NetFlow v5, v9, IPFIX or sFlow v5 datagrams to a collector
 * on loopback at a target rate of flow records per second (sFlow: flow
 * samples), for a number of seconds, and prints what it sent.
 *
 * Why in C: the python sender the benchmark used topped out near 1.3 M
 * sFlow samples/s, below the collector's target (3 M records/s for
 * NetFlow and IPFIX, 2 M sFlow samples/s per core), so the figure measured
 * the sender. Here the datagrams are built once into a pool and only a
 * few fields are written before each send. On loopback the kernel's
 * whole path, the receiving socket's side included, runs on the sender's
 * core (~5 us a datagram on the development VM, 100-250 k datagrams/s
 * with plain sendmmsg), so a batch goes as UDP GSO sends (UDP_SEGMENT):
 * the kernel cuts each into datagrams of the one size given, which the
 * collector cannot tell from datagrams sent one by one (it does not ask
 * for UDP_GRO), at 0.6-1 M datagrams/s. For that every datagram of a
 * format has the same size (-G: plain sendmmsg, sizes as they fall).
 *
 * What is sent is what a router exports, laid out as tools/flowgen.py
 * lays it out (the decoders in src/ddos/flow_*.c are the definition of
 * valid): NetFlow v5 with 30 records a datagram (1,464 bytes); v9 and
 * IPFIX with 1,400-byte datagrams of IPv4 data records (the data set
 * padded with fewer bytes than a record, as RFC 7011 3.3.1 allows) and
 * the templates (IPv4 and IPv6), the options template and the sampling
 * options record in every 20th datagram of the pool, so each exporter
 * sends them again every 20 datagrams; sFlow with 1,400-byte datagrams of
 * flow samples that carry the sampled frame's header (up to 128 bytes,
 * 8 samples a datagram on average: the last two or three are DNS
 * responses of the sizes that fill the datagram) and, every 64th
 * datagram, counter samples for two interfaces. The traffic is a DDoS mix
 * into a protected network: half SYN flood from spoofed sources, a
 * quarter UDP reflection (DNS, NTP, memcached, SSDP, CLDAP, with
 * fragments), a fifth web traffic from clients, the rest ICMP echo; every
 * destination is a host inside the protected prefix (-n).
 *
 * Several exporters (-e) send in turn, each from its own 127.0.1.x source
 * address (sFlow: its own agent address, 192.0.2.x, which names the
 * exporter there) with its own sequence numbers, kept right as the format
 * wants them (v5: flows sent before, v9: export packets, IPFIX: data
 * records sent before, sFlow: datagrams, and per data source its samples
 * and sample pool), so a collector's sequence-loss counters see no gap
 * the sender made. Export time and uptime are written at send time and
 * record times move with them (a record ends up to 1 s before it is
 * exported and lasts up to 2 s), so records stay current however long
 * the pool is cycled.
 *
 * Pacing is a token bucket in records, 20 ms deep (at least two batches),
 * so a sender the machine pre-empted catches up; -r 0 sends as fast as
 * the socket takes it, which is the sender's own limit. The line starting
 * "sent" is for scripts. It sends to 127.0.0.0/8 only.
 *
 * Usage: bench_flowsend -f v5|v9|ipfix|sflow [-d 127.0.0.1:PORT] [-r RATE]
 *          [-t SECONDS] [-e EXPORTERS] [-n PREFIX] [-s SAMPLING] [-p POOL]
 *          [-b BATCH] [-S SEED] [-G] [-w FILE]
 *   -r  records (sFlow: flow samples) per second, 0 = as fast as possible
 *       (default 1000000; k and M suffixes); -t 3 s; -e 4 exporters;
 *       -n 203.0.113.0/24; -s 1 (1-in-N sampling announced); -p 1024
 *       datagrams in the pool; -b datagrams a batch (default a millisecond
 *       of the rate, 1 to 64); -G no GSO
 *   -w  write the pool as exporter 1 sends it first, in flowgen's --write
 *       format (2-byte length, datagram), and send nothing; bench_flow
 *       FILE decodes it
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DGRAM_MAX 1500
#define MTU_PAYLOAD 1400          /* bytes of a datagram, at most (flowgen's) */
#define TEMPLATE_EVERY 20         /* pool datagrams between template resends */
#define COUNTER_EVERY 64          /* pool datagrams between sFlow counter samples */
#define SAMPLES_MAX 16            /* flow samples in one sFlow datagram */
#define BATCH_MAX 256
#define BATCH_DEFAULT 64
#define GSO_SEGMENTS 64           /* datagrams the kernel cuts one send into */
#define BURST_S 0.02              /* token bucket depth: 20 ms of the rate */
#define EXPORTERS_MAX 200
#define POOL_MAX 65536
#define HDR_BYTES 128             /* sFlow: bytes of the sampled frame kept */
#define IF_UPLINK 1
#define IF_CUSTOMER 2
#define T4 256
#define T6 257
#define TOPT 258

enum fmt { F_V5, F_V9, F_IPFIX, F_SFLOW };

static const char *const fmt_names[] = { "v5", "v9", "ipfix", "sflow" };

/* One pool datagram and where the fields written at send time are. */
struct dg {
	uint8_t b[DGRAM_MAX];
	uint16_t n;
	uint16_t nrec;            /* flow records; sFlow: flow samples */
	uint16_t ndata;           /* IPFIX: data records, options records too */
	uint16_t rec_off;         /* NetFlow/IPFIX: the first flow record */
	uint16_t rec_len;
	uint16_t t_off;           /* the record's start time; its end follows */
	uint8_t t_width;          /* 4: uptime ms, 8: Unix ms (IPFIX) */
	uint8_t ncnt;             /* sFlow counter samples */
	uint16_t samp[SAMPLES_MAX];   /* sFlow: body of each flow sample */
	uint16_t cnt[2];          /* sFlow: body of each counter sample */
	uint64_t frame_bytes;     /* sFlow: frame lengths of its samples */
	int64_t stamp_ms;         /* the time its record times were written for */
};

struct exporter {
	int fd;
	size_t cur;               /* next pool datagram */
	uint32_t seq;             /* the format's export sequence */
	uint32_t sample_seq, cnt_seq[2];
	uint32_t pool;            /* sFlow sample pool of the uplink */
	uint64_t octets, frames;  /* sFlow: what the uplink counters say */
};

struct opts {
	enum fmt fmt;
	struct sockaddr_in dest;
	double rate, seconds;
	unsigned exporters, sampling, pool, batch;
	int gso;
	uint32_t net, mask;
	uint64_t seed;
	const char *write;
};

/* ---- building ---- */

static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)((rng >> 11) % n);
}

static void w8(struct dg *d, unsigned v) { d->b[d->n++] = (uint8_t)v; }
static void w16(struct dg *d, unsigned v) { w8(d, (v >> 8) & 0xff); w8(d, v & 0xff); }
static void w32(struct dg *d, uint32_t v) { w16(d, v >> 16); w16(d, v & 0xffff); }
static void w64(struct dg *d, uint64_t v) { w32(d, (uint32_t)(v >> 32)); w32(d, (uint32_t)v); }
static void wzero(struct dg *d, size_t k) { memset(d->b + d->n, 0, k); d->n += (uint16_t)k; }

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v & 0xffff); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }
static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

/* One simulated flow (NetFlow) or sampled packet (sFlow), inbound. */
struct pkt {
	uint32_t src, dst, pkts;
	uint16_t sport, dport, size, icmp;
	uint8_t proto, flags, frag;   /* frag: 0 none, 1 first, 2 later */
};

/* Reflection vectors (DNS, NTP, memcached, SSDP, CLDAP): source port, IP
 * size, share of later fragments (%). */
static const struct { uint16_t sport, size; uint8_t later; } vectors[] = {
	{ 53, 1500, 50 }, { 123, 468, 0 }, { 11211, 1428, 50 }, { 1900, 320, 0 },
	{ 389, 1472, 30 },
};

static uint32_t host_in(const struct opts *o)
{
	uint32_t size = ~o->mask + 1u;

	if (o->mask >= 0xfffffffeu)
		return o->net | (size > 1 ? rnd(size) : 0);
	return o->net | (1 + rnd(size - 2));
}

static void make_pkt(const struct opts *o, struct pkt *p)
{
	unsigned r = rnd(100);

	memset(p, 0, sizeof(*p));
	p->dst = host_in(o);
	if (r < 50) {              /* SYN flood, spoofed from 100.64.0.0/10 */
		p->src = 0x64400000u | rnd(1u << 22);
		p->sport = (uint16_t)(1024 + rnd(64511));
		p->dport = rnd(2) ? 443 : 80;
		p->proto = 6;
		p->flags = 0x02;
		p->size = 40;
		p->pkts = 1 + rnd(3);
	} else if (r < 75) {       /* reflection from a few thousand servers */
		unsigned v = rnd(sizeof(vectors) / sizeof(vectors[0]));

		p->src = 0x64400000u | rnd(4096) << 6;
		p->proto = 17;
		p->pkts = 1 + rnd(100);
		if (rnd(100) < vectors[v].later) {
			p->frag = 2;
			p->size = vectors[v].size > 1000 ? 1500 : vectors[v].size;
		} else {
			p->frag = vectors[v].later ? 1 : 0;
			p->sport = vectors[v].sport;
			p->dport = (uint16_t)(1024 + rnd(64511));
			p->size = vectors[v].size;
		}
	} else if (r < 95) {       /* web clients in 198.51.100.0/24 */
		p->src = 0xc6336400u | (1 + rnd(254));
		p->sport = (uint16_t)(1024 + rnd(64511));
		p->dport = rnd(4) ? 443 : 80;
		p->proto = 6;
		p->flags = rnd(2) ? 0x10 : 0x18;
		p->size = rnd(2) ? 52 : 1500;
		p->pkts = 1 + rnd(50);
	} else {                   /* ping */
		p->src = 0xc6336400u | (1 + rnd(254));
		p->proto = 1;
		p->icmp = 0x0800;
		p->size = 84;
		p->pkts = 1 + rnd(10);
	}
}

/* Start and end (Unix ms) of a flow exported at now_ms: it ended up to
 * 1 s before and lasted up to 2 s. */
static void rec_times(int64_t now_ms, uint64_t *first, uint64_t *last)
{
	*last = (uint64_t)(now_ms - (int64_t)rnd(1000));
	*first = *last - rnd(2000);
}

static void build_v5(const struct opts *o, struct dg *d, int64_t now_ms, int64_t boot_ms)
{
	d->n = 0;
	w16(d, 5); w16(d, 30); w32(d, (uint32_t)(now_ms - boot_ms));
	w32(d, (uint32_t)(now_ms / 1000)); w32(d, (uint32_t)(now_ms % 1000) * 1000000u);
	w32(d, 0); w8(d, 0); w8(d, 0);
	w16(d, o->sampling > 1 ? 0x4000u | (o->sampling > 0x3fff ? 0x3fff : o->sampling) : 0);
	d->rec_off = 24;
	d->rec_len = 48;
	d->t_off = 24;
	d->t_width = 4;
	for (int i = 0; i < 30; i++) {
		struct pkt p;
		uint64_t first, last;

		make_pkt(o, &p);
		rec_times(now_ms, &first, &last);
		w32(d, p.src); w32(d, p.dst); w32(d, 0); w16(d, IF_UPLINK); w16(d, IF_CUSTOMER);
		w32(d, p.pkts); w32(d, p.pkts * p.size);
		w32(d, (uint32_t)(first - (uint64_t)boot_ms)); w32(d, (uint32_t)(last - (uint64_t)boot_ms));
		w16(d, p.sport); w16(d, p.proto == 1 ? p.icmp : p.dport);
		w8(d, 0); w8(d, p.flags); w8(d, p.proto); w8(d, 0);
		w16(d, 0); w16(d, 0); w8(d, 0); w8(d, 0); w16(d, 0);
	}
	d->nrec = 30;
}

/* v9 and IPFIX field lists (flowgen's): IPv4 and IPv6 flows. */
static const uint16_t f4_v9[][2] = {
	{ 8, 4 }, { 12, 4 }, { 7, 2 }, { 11, 2 }, { 4, 1 }, { 6, 1 }, { 5, 1 }, { 1, 4 },
	{ 2, 4 }, { 22, 4 }, { 21, 4 }, { 10, 2 }, { 14, 2 }, { 88, 2 }, { 32, 2 },
};
static const uint16_t f4_ipfix[][2] = {
	{ 8, 4 }, { 12, 4 }, { 7, 2 }, { 11, 2 }, { 4, 1 }, { 6, 2 }, { 5, 1 }, { 1, 8 },
	{ 2, 8 }, { 152, 8 }, { 153, 8 }, { 10, 4 }, { 14, 4 }, { 88, 2 }, { 32, 2 },
};
#define NFIELDS 15

static void w_template(struct dg *d, uint16_t id, const uint16_t f[][2], int v6)
{
	w16(d, id); w16(d, NFIELDS);
	if (v6) {
		w16(d, 27); w16(d, 16); w16(d, 28); w16(d, 16);
		for (int i = 2; i < NFIELDS - 1; i++) {
			w16(d, f[i][0]); w16(d, f[i][1]);
		}
		w16(d, 139); w16(d, 2);
	} else {
		for (int i = 0; i < NFIELDS; i++) {
			w16(d, f[i][0]); w16(d, f[i][1]);
		}
	}
}

static void set_len(struct dg *d, size_t at)
{
	put16(d->b + at + 2, (unsigned)(d->n - at));
}

/* v9 pads a set to four bytes; IPFIX needs no padding. */
static void set_end(struct dg *d, size_t at, int pad)
{
	while (pad && (d->n - at) % 4)
		w8(d, 0);
	set_len(d, at);
}

static void build_templated(const struct opts *o, struct dg *d, int ipfix, int templates,
			    int64_t now_ms, int64_t boot_ms)
{
	const uint16_t (*f)[2] = ipfix ? f4_ipfix : f4_v9;
	size_t s, rlen = 0;
	unsigned nrec = 0, ndata = 0;

	/* The start time (22 in v9, 152 in IPFIX) is followed by the end. */
	for (int i = 0; i < NFIELDS; i++) {
		if (f[i][0] == 22 || f[i][0] == 152)
			d->t_off = (uint16_t)rlen;
		rlen += f[i][1];
	}
	d->n = 0;
	if (ipfix) {
		w16(d, 10); w16(d, 0); w32(d, (uint32_t)(now_ms / 1000)); w32(d, 0); w32(d, 1);
	} else {
		w16(d, 9); w16(d, 0); w32(d, (uint32_t)(now_ms - boot_ms));
		w32(d, (uint32_t)(now_ms / 1000)); w32(d, 0); w32(d, 1);
	}
	if (templates) {
		s = d->n;
		w16(d, ipfix ? 2 : 0); w16(d, 0);
		w_template(d, T4, f, 0);
		w_template(d, T6, f, 1);
		set_end(d, s, !ipfix);
		s = d->n;
		if (ipfix) {
			/* scope observationDomainId; samplingInterval, samplingAlgorithm */
			w16(d, 3); w16(d, 0); w16(d, TOPT); w16(d, 3); w16(d, 1);
			w16(d, 149); w16(d, 4); w16(d, 34); w16(d, 4); w16(d, 35); w16(d, 1);
		} else {
			/* scope System; SAMPLING_INTERVAL, SAMPLING_ALGORITHM */
			w16(d, 1); w16(d, 0); w16(d, TOPT); w16(d, 4); w16(d, 8);
			w16(d, 1); w16(d, 4); w16(d, 34); w16(d, 4); w16(d, 35); w16(d, 1);
		}
		set_end(d, s, !ipfix);
		s = d->n;
		w16(d, TOPT); w16(d, 0); w32(d, ipfix ? 1 : 0); w32(d, o->sampling); w8(d, 2);
		set_end(d, s, !ipfix);
		nrec = 4;
		ndata = 1;
	}
	s = d->n;
	w16(d, T4); w16(d, 0);
	d->rec_off = d->n;
	d->rec_len = (uint16_t)rlen;
	d->t_width = ipfix ? 8 : 4;
	d->nrec = 0;
	while (d->n + rlen <= MTU_PAYLOAD) {
		struct pkt p;
		uint64_t first, last;

		make_pkt(o, &p);
		rec_times(now_ms, &first, &last);
		w32(d, p.src); w32(d, p.dst); w16(d, p.sport); w16(d, p.dport); w8(d, p.proto);
		if (ipfix)
			w16(d, p.flags);
		else
			w8(d, p.flags);
		w8(d, 0);
		if (ipfix) {
			w64(d, (uint64_t)p.pkts * p.size); w64(d, p.pkts); w64(d, first); w64(d, last);
			w32(d, IF_UPLINK); w32(d, IF_CUSTOMER);
		} else {
			w32(d, p.pkts * p.size); w32(d, p.pkts);
			w32(d, (uint32_t)(first - (uint64_t)boot_ms));
			w32(d, (uint32_t)(last - (uint64_t)boot_ms));
			w16(d, IF_UPLINK); w16(d, IF_CUSTOMER);
		}
		w16(d, p.frag == 2 ? 185 : 0); w16(d, p.icmp);
		d->nrec++;
	}
	/* Padding (shorter than a record) to MTU_PAYLOAD: every datagram the
	 * same size, so a batch goes as one GSO send. */
	wzero(d, MTU_PAYLOAD - d->n);
	set_len(d, s);
	nrec += d->nrec;
	ndata += d->nrec;
	d->ndata = (uint16_t)ndata;
	if (ipfix)
		put16(d->b + 2, d->n);
	else
		put16(d->b + 2, nrec);
}

/* The first bytes of the frame of p (flowgen's packet_header) into h;
 * returns their length; *frame gets the frame length with FCS. */
static size_t frame_header(const struct pkt *p, uint8_t *h, uint32_t *frame)
{
	static const uint8_t eth[14] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x00, 0x66,
					 0x77, 0x88, 0x99, 0xaa, 0x08, 0x00 };
	size_t n = 14, want;
	uint16_t frag = p->frag == 1 ? 0x2000 : p->frag == 2 ? 185 : 0;

	memset(h, 0, HDR_BYTES);
	memcpy(h, eth, sizeof(eth));
	h[n] = 0x45;
	put16(h + n + 2, p->size);
	put16(h + n + 4, 1);
	put16(h + n + 6, frag);
	h[n + 8] = 64;
	h[n + 9] = p->proto;
	put32(h + n + 12, p->src);
	put32(h + n + 16, p->dst);
	n += 20;
	if (p->frag != 2) {
		if (p->proto == 6) {
			put16(h + n, p->sport);
			put16(h + n + 2, p->dport);
			put32(h + n + 4, 1);
			h[n + 12] = 0x50;
			h[n + 13] = p->flags;
			put16(h + n + 14, 1024);
		} else if (p->proto == 1) {
			h[n] = (uint8_t)(p->icmp >> 8);
			h[n + 1] = (uint8_t)p->icmp;
		} else {
			put16(h + n, p->sport);
			put16(h + n + 2, p->dport);
			put16(h + n + 4, p->size > 28 ? p->size - 20u : 8u);
		}
	}
	*frame = 14u + p->size + 4u;
	want = *frame - 4u;
	return want < HDR_BYTES ? want : HDR_BYTES;
}

static void w_counter_sample(struct dg *d, uint32_t ifindex)
{
	w32(d, 2); w32(d, 12 + 8 + 88);
	d->cnt[d->ncnt++] = d->n;
	w32(d, 0); w32(d, ifindex); w32(d, 1);
	w32(d, 1); w32(d, 88);
	/* ifIndex, type, speed, direction, status, then in and out counters
	 * (octets, unicast, multicast, broadcast, discards, errors, unknown /
	 * promiscuous); octets and unicast are written at send time. */
	w32(d, ifindex); w32(d, 6); w64(d, 10000000000ULL); w32(d, 1); w32(d, 3);
	wzero(d, 88 - 24);
}

/* The bytes a flow sample of p takes in the datagram (XDR-padded). */
static size_t sample_size(const struct pkt *p, uint8_t *h, uint32_t *frame, size_t *hlen)
{
	*hlen = frame_header(p, h, frame);
	return 8 + 32 + 8 + 16 + ((*hlen + 3) & ~(size_t)3) + 8 + 16;
}

static void w_flow_sample(const struct opts *o, struct dg *d, const uint8_t *h, size_t hlen,
			  uint32_t frame)
{
	size_t hpad = (hlen + 3) & ~(size_t)3;

	w32(d, 1); w32(d, (uint32_t)(32 + 8 + 16 + hpad + 8 + 16));
	d->samp[d->nrec++] = d->n;
	/* sequence and pool are written at send time */
	w32(d, 0); w32(d, IF_UPLINK); w32(d, o->sampling); w32(d, 0); w32(d, 0);
	w32(d, IF_UPLINK); w32(d, IF_CUSTOMER); w32(d, 2);
	w32(d, 1); w32(d, (uint32_t)(16 + hpad));
	w32(d, 1); w32(d, frame); w32(d, 4); w32(d, (uint32_t)hlen);
	memcpy(d->b + d->n, h, hlen);
	d->n += (uint16_t)hlen;
	wzero(d, hpad - hlen);
	w32(d, 1001); w32(d, 16); wzero(d, 16);
	d->frame_bytes += frame;
}

/* Samples take 132 to 216 bytes (a header of 44 to 128): the datagram is
 * filled at random until what is left fits two or three samples, which
 * are then DNS responses of the sizes that fill it exactly, so every
 * datagram is MTU_PAYLOAD bytes and a batch goes as one GSO send. */
#define SAMPLE_MIN 132
#define SAMPLE_MAX 216

static void build_sflow(const struct opts *o, struct dg *d, int counters)
{
	uint8_t h[HDR_BYTES];
	struct pkt p;
	uint32_t frame;
	size_t hlen, left, k, z;

	d->n = 0;
	d->nrec = 0;
	d->ncnt = 0;
	d->frame_bytes = 0;
	w32(d, 5); w32(d, 1); w32(d, 0xc0000201u); w32(d, 0); w32(d, 0); w32(d, 0); w32(d, 0);
	if (counters) {
		w_counter_sample(d, IF_UPLINK);
		w_counter_sample(d, IF_CUSTOMER);
	}
	for (;;) {
		make_pkt(o, &p);
		z = sample_size(&p, h, &frame, &hlen);
		if ((size_t)(MTU_PAYLOAD - d->n) < z + 2 * SAMPLE_MIN || d->nrec + 4 > SAMPLES_MAX)
			break;
		w_flow_sample(o, d, h, hlen, frame);
	}
	left = MTU_PAYLOAD - d->n;
	for (k = (left + SAMPLE_MAX - 1) / SAMPLE_MAX; k > 0; k--) {
		size_t part = (left / k) & ~(size_t)3;

		make_pkt(o, &p);
		p.proto = 17;
		p.frag = 0;
		p.sport = 53;
		p.dport = (uint16_t)(1024 + rnd(64511));
		/* a header of part - 88 bytes: the whole frame below 128 */
		p.size = (uint16_t)(part - 88 < HDR_BYTES ? part - 88 - 14 : 512 + rnd(988));
		z = sample_size(&p, h, &frame, &hlen);
		w_flow_sample(o, d, h, hlen, frame);
		left -= z;
	}
	put32(d->b + 24, (uint32_t)(d->nrec + d->ncnt));
}

/* ---- sending ---- */

/* Writes what changes per send into d for exporter e (index i) at now_ms
 * and moves e's sequences past it. */
static void stamp(const struct opts *o, struct dg *d, struct exporter *e, unsigned i,
		  int64_t now_ms, int64_t boot_ms)
{
	uint8_t *b = d->b;
	uint32_t up = (uint32_t)(now_ms - boot_ms);
	int64_t delta = now_ms - d->stamp_ms;

	if (o->fmt != F_SFLOW && delta != 0) {
		for (unsigned k = 0; k < d->nrec; k++) {
			uint8_t *t = b + d->rec_off + (size_t)k * d->rec_len + d->t_off;

			if (d->t_width == 8) {
				put64(t, get64(t) + (uint64_t)delta);
				put64(t + 8, get64(t + 8) + (uint64_t)delta);
			} else {
				put32(t, get32(t) + (uint32_t)delta);
				put32(t + 4, get32(t + 4) + (uint32_t)delta);
			}
		}
		d->stamp_ms = now_ms;
	}
	switch (o->fmt) {
	case F_V5:
		put32(b + 4, up);
		put32(b + 8, (uint32_t)(now_ms / 1000));
		put32(b + 12, (uint32_t)(now_ms % 1000) * 1000000u);
		put32(b + 16, e->seq);
		b[21] = (uint8_t)i;
		e->seq += d->nrec;
		break;
	case F_V9:
		put32(b + 4, up);
		put32(b + 8, (uint32_t)(now_ms / 1000));
		put32(b + 12, ++e->seq);
		break;
	case F_IPFIX:
		put32(b + 4, (uint32_t)(now_ms / 1000));
		put32(b + 8, e->seq);
		e->seq += d->ndata;
		break;
	case F_SFLOW:
		put32(b + 8, 0xc0000200u + 1 + i);   /* agent 192.0.2.(i+1) */
		put32(b + 16, ++e->seq);
		put32(b + 20, up);
		for (unsigned k = 0; k < d->ncnt; k++) {
			uint8_t *c = b + d->cnt[k];
			uint8_t *r = c + 12 + 8;

			put32(c, ++e->cnt_seq[k]);
			put64(r + (k == 0 ? 24 : 56), e->octets);
			put32(r + (k == 0 ? 32 : 64), (uint32_t)e->frames);
		}
		for (unsigned k = 0; k < d->nrec; k++) {
			uint8_t *s = b + d->samp[k];

			e->pool += o->sampling;
			put32(s, ++e->sample_seq);
			put32(s + 12, e->pool);
		}
		e->octets += d->frame_bytes * o->sampling;
		e->frames += (uint64_t)d->nrec * o->sampling;
		break;
	}
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

/* Exporter i's socket, bound to 127.0.1.(i+1) and connected to dest. */
static int exporter_socket(const struct opts *o, unsigned i)
{
	struct sockaddr_in src;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), v = 4 << 20;

	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	memset(&src, 0, sizeof(src));
	src.sin_family = AF_INET;
	src.sin_addr.s_addr = htonl(0x7f000101u + i);
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
	    connect(fd, (const struct sockaddr *)&o->dest, sizeof(o->dest)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct totals {
	uint64_t datagrams, records, bytes, errors;
	double seconds;
	int gso, first_errno;
};

union gso_cmsg {
	char buf[CMSG_SPACE(sizeof(uint16_t))];
	struct cmsghdr align;
};

/* Groups the batch's datagrams (iov[0..n)) into sendmmsg messages: with
 * gso, a run of datagrams of one size (the last may be shorter) goes as
 * one message that the kernel cuts into them (UDP_SEGMENT), which the
 * receiver cannot tell from datagrams sent one by one; without, one
 * message per datagram. Returns the number of messages; runs[i] gets
 * the datagrams of message i. */
static unsigned group(struct iovec *iov, unsigned n, int gso, struct mmsghdr *msgs,
		      union gso_cmsg *ctl, unsigned *runs)
{
	unsigned m = 0;

	for (unsigned k = 0; k < n; m++) {
		size_t z = iov[k].iov_len, total = z;
		unsigned len = 1;

		while (gso && k + len < n && len < GSO_SEGMENTS && total + iov[k + len].iov_len <= 65507 &&
		       iov[k + len - 1].iov_len == z && iov[k + len].iov_len <= z) {
			total += iov[k + len].iov_len;
			len++;
		}
		memset(&msgs[m], 0, sizeof(msgs[m]));
		msgs[m].msg_hdr.msg_iov = &iov[k];
		msgs[m].msg_hdr.msg_iovlen = len;
		if (len > 1) {
			struct cmsghdr *cm;

			memset(&ctl[m], 0, sizeof(ctl[m]));
			msgs[m].msg_hdr.msg_control = ctl[m].buf;
			msgs[m].msg_hdr.msg_controllen = sizeof(ctl[m].buf);
			cm = CMSG_FIRSTHDR(&msgs[m].msg_hdr);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
			memcpy(CMSG_DATA(cm), &(uint16_t){ (uint16_t)z }, sizeof(uint16_t));
		}
		runs[m] = len;
		k += len;
	}
	return m;
}

static int send_loop(const struct opts *o, struct dg *pool, struct exporter *ex,
		     int64_t boot_ms, struct totals *t)
{
	struct mmsghdr msgs[BATCH_MAX];
	struct iovec iov[BATCH_MAX];
	union gso_cmsg ctl[BATCH_MAX];
	unsigned runs[BATCH_MAX];
	double t0 = mono_s(), last = t0, tokens = 0, burst, end = t0 + o->seconds;
	double per_dg = 0;
	unsigned next = 0;
	int gso = o->gso;

	for (unsigned i = 0; i < o->pool; i++)
		per_dg += pool[i].nrec;
	per_dg /= o->pool;
	burst = o->rate * BURST_S;
	if (burst < 2.0 * o->batch * per_dg)
		burst = 2.0 * o->batch * per_dg;
	tokens = o->batch * per_dg;
	for (;;) {
		struct exporter *e = &ex[next];
		unsigned idx = next, nmsg, sent = 0, base = 0;
		uint64_t recs = 0;
		double now = mono_s();
		int64_t ms;

		if (now >= end)
			break;
		for (unsigned k = 0; k < o->batch; k++)
			recs += pool[(e->cur + k) % o->pool].nrec;
		if (o->rate > 0) {
			tokens += (now - last) * o->rate;
			if (tokens > burst)
				tokens = burst;
			last = now;
			if (tokens < (double)recs) {
				double wait = ((double)recs - tokens) / o->rate;

				if (wait > 50e-6)
					sleep_s(wait);
				continue;
			}
			tokens -= (double)recs;
		}
		next = (next + 1) % o->exporters;
		ms = wall_ms();
		for (unsigned k = 0; k < o->batch; k++) {
			struct dg *d = &pool[(e->cur + k) % o->pool];

			stamp(o, d, e, idx, ms, boot_ms);
			iov[k].iov_base = d->b;
			iov[k].iov_len = d->n;
		}
		nmsg = group(iov, o->batch, gso, msgs, ctl, runs);
		/* A message refused (nothing listening yet: ECONNREFUSED) is
		 * counted and skipped; the collector then sees its gap. A kernel
		 * without UDP GSO refuses the first one: then without. */
		while (sent < nmsg) {
			int n = sendmmsg(e->fd, msgs + sent, nmsg - sent, 0);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (gso && (errno == EINVAL || errno == EIO || errno == ENOPROTOOPT) &&
				    t->datagrams == 0) {
					gso = 0;
					nmsg = sent + group(iov + base, o->batch - base, 0, msgs + sent,
							    ctl + sent, runs + sent);
					continue;
				}
				if (!t->errors++)
					t->first_errno = errno;
				base += runs[sent];
				n = 1;
			} else {
				for (int k = 0; k < n; k++) {
					for (unsigned j = 0; j < runs[sent + k]; j++) {
						const struct dg *d = &pool[(e->cur + base + j) % o->pool];

						t->datagrams++;
						t->records += d->nrec;
						t->bytes += d->n;
					}
					base += runs[sent + k];
				}
			}
			sent += (unsigned)n;
		}
		e->cur = (e->cur + o->batch) % o->pool;
	}
	t->seconds = mono_s() - t0;
	t->gso = gso;
	return 0;
}

/* ---- options ---- */

static int parse_num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s)
		return -1;
	if (*end == 'k' || *end == 'K')
		v *= 1e3, end++;
	else if (*end == 'M' || *end == 'm')
		v *= 1e6, end++;
	if (*end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	double v;

	if (parse_num(s, lo, hi, &v) != 0 || v != (double)(unsigned)v)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int parse_dest(const char *s, struct sockaddr_in *a)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	unsigned port;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1 || parse_uint(colon + 1, 1, 65535, &port))
		return -1;
	/* Loopback only: this is a flood. */
	if ((ntohl(a->sin_addr.s_addr) >> 24) != 127)
		return -1;
	a->sin_port = htons((uint16_t)port);
	return 0;
}

static int parse_prefix(const char *s, uint32_t *net, uint32_t *mask)
{
	char ip[32];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	unsigned bits = 32;
	struct in_addr a;

	if (len >= sizeof(ip))
		return -1;
	memcpy(ip, s, len);
	ip[len] = 0;
	if (inet_pton(AF_INET, ip, &a) != 1 || (slash && parse_uint(slash + 1, 8, 32, &bits)))
		return -1;
	*mask = bits == 32 ? 0xffffffffu : ~(0xffffffffu >> bits);
	*net = ntohl(a.s_addr) & *mask;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_flowsend -f v5|v9|ipfix|sflow [-d 127.0.0.1:PORT] [-r RECORDS/S, 0 = max]\n"
		"         [-t SECONDS] [-e EXPORTERS] [-n PROTECTED-PREFIX] [-s SAMPLING] [-p POOL]\n"
		"         [-b BATCH] [-S SEED] [-G] [-w FILE]\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	double v;
	int c, have_fmt = 0, have_dest = 0;

	memset(o, 0, sizeof(*o));
	o->rate = 1e6;
	o->seconds = 3;
	o->exporters = 4;
	o->sampling = 1;
	o->pool = 1024;
	o->batch = 0;              /* chosen from the rate in main() */
	o->gso = 1;
	o->seed = 1;
	parse_prefix("203.0.113.0/24", &o->net, &o->mask);
	while ((c = getopt(argc, argv, "f:d:r:t:e:n:s:p:b:S:w:G")) != -1) {
		int bad = 0;

		switch (c) {
		case 'f':
			have_fmt = 1;
			for (o->fmt = F_V5; o->fmt <= F_SFLOW; o->fmt++)
				if (strcmp(optarg, fmt_names[o->fmt]) == 0)
					break;
			bad = o->fmt > F_SFLOW;
			break;
		case 'd': bad = parse_dest(optarg, &o->dest); have_dest = 1; break;
		case 'r': bad = parse_num(optarg, 0, 1e9, &o->rate); break;
		case 't': bad = parse_num(optarg, 0.01, 86400, &o->seconds); break;
		case 'e': bad = parse_uint(optarg, 1, EXPORTERS_MAX, &o->exporters); break;
		case 'n': bad = parse_prefix(optarg, &o->net, &o->mask); break;
		case 's': bad = parse_uint(optarg, 1, 1u << 24, &o->sampling); break;
		case 'p': bad = parse_uint(optarg, 1, POOL_MAX, &o->pool); break;
		case 'b': bad = parse_uint(optarg, 1, BATCH_MAX, &o->batch); break;
		case 'S': bad = parse_num(optarg, 0, 1e15, &v); o->seed = (uint64_t)v + 1; break;
		case 'w': o->write = optarg; break;
		case 'G': o->gso = 0; break;
		default: bad = 1; break;
		}
		if (bad) {
			if (c != '?')
				fprintf(stderr, "bench_flowsend: bad -%c %s\n", c, optarg);
			usage();
			return -1;
		}
	}
	if (!have_fmt || optind != argc) {
		usage();
		return -1;
	}
	if (!have_dest)
		parse_dest(o->fmt == F_SFLOW ? "127.0.0.1:6343" : "127.0.0.1:2055", &o->dest);
	return 0;
}

static int write_pool(const struct opts *o, struct dg *pool, int64_t boot_ms)
{
	struct exporter e;
	FILE *f = fopen(o->write, "wb");
	int64_t ms = wall_ms();
	int rc = 0;

	if (!f) {
		perror(o->write);
		return 1;
	}
	memset(&e, 0, sizeof(e));
	for (unsigned i = 0; i < o->pool && rc == 0; i++) {
		uint8_t len[2] = { (uint8_t)(pool[i].n >> 8), (uint8_t)pool[i].n };

		stamp(o, &pool[i], &e, 0, ms, boot_ms);
		if (fwrite(len, 1, 2, f) != 2 || fwrite(pool[i].b, 1, pool[i].n, f) != pool[i].n)
			rc = 1;
	}
	if (fclose(f) != 0 || rc) {
		perror(o->write);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct dg *pool = NULL;
	struct exporter *ex = NULL;
	struct totals t = { 0 };
	uint64_t recs = 0, bytes = 0;
	int64_t now, boot_ms;
	char dst[INET_ADDRSTRLEN];
	int rc = 1;

	if (parse_opts(argc, argv, &o) != 0)
		return 2;
	rng = 0x9e3779b97f4a7c15ULL * o.seed;
	now = wall_ms();
	boot_ms = now - 86400000;
	pool = calloc(o.pool, sizeof(*pool));
	ex = calloc(o.exporters, sizeof(*ex));
	if (!pool || !ex)
		goto out;
	for (unsigned i = 0; i < o.exporters; i++)
		ex[i].fd = -1;
	for (unsigned i = 0; i < o.pool; i++) {
		struct dg *d = &pool[i];

		switch (o.fmt) {
		case F_V5: build_v5(&o, d, now, boot_ms); break;
		case F_V9: build_templated(&o, d, 0, i % TEMPLATE_EVERY == 0, now, boot_ms); break;
		case F_IPFIX: build_templated(&o, d, 1, i % TEMPLATE_EVERY == 0, now, boot_ms); break;
		case F_SFLOW: build_sflow(&o, d, i % COUNTER_EVERY == 0); break;
		}
		d->stamp_ms = now;
		recs += d->nrec;
		bytes += d->n;
	}
	if (o.write) {
		rc = write_pool(&o, pool, boot_ms);
		printf("bench_flowsend: wrote %s: %u %s datagrams, %llu records\n", o.write, o.pool,
		       fmt_names[o.fmt], (unsigned long long)recs);
		goto out;
	}
	for (unsigned i = 0; i < o.exporters; i++) {
		ex[i].fd = exporter_socket(&o, i);
		if (ex[i].fd < 0) {
			fprintf(stderr, "bench_flowsend: exporter socket 127.0.1.%u: %s\n", i + 1,
				strerror(errno));
			goto out;
		}
	}
	/* A batch leaves at once (one GSO send): at most a millisecond of the
	 * rate, as a router's export is spread over time, and 64 at high
	 * rates, where the sends cost most. */
	if (o.batch == 0) {
		double per_ms = o.rate * 1e-3 / ((double)recs / o.pool);

		o.batch = o.rate <= 0 || per_ms >= BATCH_DEFAULT ? BATCH_DEFAULT :
			  per_ms < 1 ? 1 : (unsigned)per_ms;
	}
	if (o.batch > o.pool)
		o.batch = o.pool;
	inet_ntop(AF_INET, &o.dest.sin_addr, dst, sizeof(dst));
	printf("bench_flowsend: %s to %s:%u from %u exporters, pool %u datagrams (%.1f %s and "
	       "%.0f bytes each), batch %u, asked %s\n", fmt_names[o.fmt], dst,
	       ntohs(o.dest.sin_port), o.exporters, o.pool, (double)recs / o.pool,
	       o.fmt == F_SFLOW ? "flow samples" : "records", (double)bytes / o.pool, o.batch,
	       o.rate > 0 ? "a paced rate" : "as fast as possible");
	rc = send_loop(&o, pool, ex, boot_ms, &t);
	printf("sent datagrams=%llu records=%llu bytes=%llu seconds=%.3f rate=%.0f asked=%.0f "
	       "datagram_rate=%.0f errors=%llu gso=%d\n", (unsigned long long)t.datagrams,
	       (unsigned long long)t.records, (unsigned long long)t.bytes, t.seconds,
	       (double)t.records / t.seconds, o.rate, (double)t.datagrams / t.seconds,
	       (unsigned long long)t.errors, t.gso);
	if (t.errors)
		printf("bench_flowsend: %llu sends failed, the first with \"%s\"\n",
		       (unsigned long long)t.errors, strerror(t.first_errno));
out:
	for (unsigned i = 0; ex && i < o.exporters; i++)
		if (ex[i].fd >= 0)
			close(ex[i].fd);
	free(ex);
	free(pool);
	return rc;
}
