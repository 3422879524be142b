/*
 * Unit tests for the flow decoders (src/ddos/flow*.c): NetFlow v5, NetFlow
 * v9, IPFIX and sFlow v5 datagrams built here byte by byte, with the
 * fields each decoder must produce; templates per exporter and domain,
 * options sampling, withdrawal, variable-length and enterprise fields,
 * time conversion; and hostile input: bad lengths, truncation, absurd
 * templates, too many templates and exporters, zero sampling rates, huge
 * counts. Every datagram is decoded from its own heap block of exactly
 * its size, so AddressSanitizer sees any read past the end; every prefix
 * of the valid datagrams and many random mutations are decoded too.
 * Export sequence numbers per exporter and domain (gaps, the counter's
 * wrap, reordering, duplicates, restarts, bounds) and template ageing on
 * an injected receive clock close the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "ddos/flow.h"

#define RECV_MS 1710072000123LL   /* 2024-03-10T12:00:00.123Z */
#define T0 1710072000u            /* export seconds in headers */
#define MAX_GOT 512

/* ---- a packet builder ---- */

struct pb {
	uint8_t b[70000];
	size_t n;
};

static void p8(struct pb *b, unsigned v)
{
	assert_true(b->n < sizeof(b->b));
	b->b[b->n++] = (uint8_t)v;
}

static void p16(struct pb *b, unsigned v)
{
	p8(b, v >> 8);
	p8(b, v);
}

static void p32(struct pb *b, uint32_t v)
{
	p16(b, v >> 16);
	p16(b, v & 0xffff);
}

static void p64(struct pb *b, uint64_t v)
{
	p32(b, (uint32_t)(v >> 32));
	p32(b, (uint32_t)v);
}

static void pzero(struct pb *b, size_t n)
{
	while (n--)
		p8(b, 0);
}

static void pip(struct pb *b, const char *s)
{
	struct flow_ip ip;

	assert_int_equal(flow_ip_parse(&ip, s), 0);
	if (ip.family == FLOW_IPV4)
		for (int i = 12; i < 16; i++)
			p8(b, ip.a[i]);
	else
		for (int i = 0; i < 16; i++)
			p8(b, ip.a[i]);
}

static void patch16(struct pb *b, size_t at, unsigned v)
{
	b->b[at] = (uint8_t)(v >> 8);
	b->b[at + 1] = (uint8_t)v;
}

static void patch32(struct pb *b, size_t at, uint32_t v)
{
	patch16(b, at, v >> 16);
	patch16(b, at + 2, v & 0xffff);
}

/* A set / FlowSet: id and a length patched by set_end. */
static size_t set_begin(struct pb *b, unsigned id)
{
	size_t at = b->n;

	p16(b, id);
	p16(b, 0);
	return at;
}

static void set_end(struct pb *b, size_t at)
{
	patch16(b, at + 2, (unsigned)(b->n - at));
}

static void nf9_hdr(struct pb *b, uint32_t uptime, uint32_t secs, uint32_t srcid)
{
	b->n = 0;
	p16(b, 9);
	p16(b, 1);
	p32(b, uptime);
	p32(b, secs);
	p32(b, 1);
	p32(b, srcid);
}

static void ipfix_hdr(struct pb *b, uint32_t secs, uint32_t domain)
{
	b->n = 0;
	p16(b, 10);
	p16(b, 0);
	p32(b, secs);
	p32(b, 1);
	p32(b, domain);
}

static void ipfix_end(struct pb *b)
{
	patch16(b, 2, (unsigned)b->n);
}

/* ---- decoding with a collector ---- */

struct got {
	struct flow_rec r[MAX_GOT];
	size_t n;
	struct flow_ifcounters c[8];
	size_t nc;
};

static void on_rec(void *arg, const struct flow_rec *r)
{
	struct got *g = arg;

	assert_true(r->sampling >= 1);
	assert_true(r->start_ms <= r->end_ms);
	if (g->n < MAX_GOT)
		g->r[g->n] = *r;
	g->n++;
}

static void on_ifc(void *arg, const struct flow_ifcounters *c)
{
	struct got *g = arg;

	if (g->nc < 8)
		g->c[g->nc] = *c;
	g->nc++;
}

struct fx {
	struct flow_decoder *d;
	struct got g;
};

static struct fx *fx_new(const struct flow_cfg *cfg)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->d = flow_decoder_new(cfg, on_rec, on_ifc, &f->g);
	assert_non_null(f->d);
	return f;
}

static void fx_free(struct fx *f)
{
	flow_decoder_free(f->d);
	free(f);
}

/* Decodes b as one datagram from exporter `from` in a block of exactly
 * its size; the collected records start afresh. */
static int dec_from(struct fx *f, enum flow_format fmt, const char *from,
		    const uint8_t *p, size_t n)
{
	struct flow_ip ip;
	uint8_t *c = malloc(n ? n : 1);
	int rc;

	assert_non_null(c);
	assert_int_equal(flow_ip_parse(&ip, from), 0);
	memcpy(c, p, n);
	f->g.n = 0;
	f->g.nc = 0;
	rc = flow_decode(f->d, fmt, &ip, RECV_MS, c, n);
	free(c);
	return rc;
}

static int dec(struct fx *f, enum flow_format fmt, const struct pb *b)
{
	return dec_from(f, fmt, "192.0.2.1", b->b, b->n);
}

static void assert_ip(const struct flow_ip *ip, const char *want)
{
	char s[FLOW_IP_STRLEN];

	flow_ip_str(ip, s, sizeof(s));
	if (strcmp(s, want) != 0)
		fail_msg("address %s, want %s", s, want);
}

static const struct flow_stats *st(const struct fx *f)
{
	return flow_decoder_stats(f->d);
}

/* ---- NetFlow v5 ---- */

static void nf5_rec(struct pb *b, const char *src, const char *dst, unsigned sport,
		    unsigned dport, unsigned proto, unsigned flags, uint32_t pkts,
		    uint32_t bytes, uint32_t first, uint32_t last)
{
	pip(b, src);
	pip(b, dst);
	pip(b, "10.0.0.254");   /* next hop */
	p16(b, 3);              /* input */
	p16(b, 7);              /* output */
	p32(b, pkts);
	p32(b, bytes);
	p32(b, first);
	p32(b, last);
	p16(b, sport);
	p16(b, dport);
	p8(b, 0);
	p8(b, flags);
	p8(b, proto);
	p8(b, 0x10);            /* tos */
	p16(b, 64500);
	p16(b, 64501);
	p8(b, 24);
	p8(b, 32);
	p16(b, 0);
}

static void build_nf5(struct pb *b, unsigned count, unsigned nrec, unsigned sampling)
{
	b->n = 0;
	p16(b, 5);
	p16(b, count);
	p32(b, 100000);         /* uptime */
	p32(b, T0);
	p32(b, 500000000);      /* .5 s */
	p32(b, 42);
	p8(b, 1);               /* engine type */
	p8(b, 2);               /* engine id */
	p16(b, sampling);
	for (unsigned i = 0; i < nrec; i++) {
		if (i % 2 == 0)
			nf5_rec(b, "198.51.100.7", "203.0.113.10", 11211, 40000, 17, 0,
				10 + i, 14000 + i, 40000, 99000);
		else
			nf5_rec(b, "198.51.100.8", "203.0.113.11", 0, 0x0303, 1, 0,
				1, 84, 99500, 99500);
	}
}

static void test_nf5(void **state)
{
	struct fx *f = fx_new(NULL);
	struct pb *b = calloc(1, sizeof(*b));
	const struct flow_rec *r;
	int64_t export_ms = (int64_t)T0 * 1000 + 500;

	(void)state;
	build_nf5(b, 2, 2, 0x4000 | 512);
	assert_int_equal(dec(f, FLOW_FMT_AUTO, b), 0);
	assert_int_equal(f->g.n, 2);
	r = &f->g.r[0];
	assert_ip(&r->exporter, "192.0.2.1");
	assert_int_equal(r->domain, 0x0102);
	assert_int_equal(r->format, FLOW_FMT_NF5);
	assert_ip(&r->src, "198.51.100.7");
	assert_ip(&r->dst, "203.0.113.10");
	assert_int_equal(r->src.family, FLOW_IPV4);
	assert_int_equal(r->sport, 11211);
	assert_int_equal(r->dport, 40000);
	assert_int_equal(r->proto, 17);
	assert_int_equal(r->packets, 10);
	assert_int_equal(r->bytes, 14000);
	assert_int_equal(r->in_if, 3);
	assert_int_equal(r->out_if, 7);
	assert_int_equal(r->tos, 0x10);
	assert_int_equal(r->src_as, 64500);
	assert_int_equal(r->dst_as, 64501);
	assert_int_equal(r->src_mask, 24);
	assert_int_equal(r->dst_mask, 32);
	assert_int_equal(r->sampling, 512);
	assert_int_equal(r->flags & FLOW_F_SCALED, 0);
	assert_int_equal(r->start_ms, export_ms - 60000);
	assert_int_equal(r->end_ms, export_ms - 1000);
	r = &f->g.r[1];
	assert_int_equal(r->proto, 1);
	assert_int_equal(r->icmp_type, 3);
	assert_int_equal(r->icmp_code, 3);
	assert_int_equal(r->start_ms, export_ms - 500);
	assert_int_equal(st(f)->records, 2);

	/* A last-switched a little after the header's uptime (the router's
	 * clocks are read at different moments): just after export. */
	build_nf5(b, 1, 1, 0);
	patch32(b, 24 + 28, 100020);
	assert_int_equal(dec(f, FLOW_FMT_NF5, b), 0);
	assert_int_equal(f->g.r[0].end_ms, export_ms + 20);
	fx_free(f);

	/* Scaled: counts times the header's interval; 0 means unsampled. */
	{
		struct flow_cfg cfg = { .flags = FLOW_CFG_SCALE };

		f = fx_new(&cfg);
		build_nf5(b, 2, 2, 0x4000 | 512);
		assert_int_equal(dec(f, FLOW_FMT_NF5, b), 0);
		assert_int_equal(f->g.r[0].bytes, 14000 * 512);
		assert_int_equal(f->g.r[0].packets, 10 * 512);
		assert_true(f->g.r[0].flags & FLOW_F_SCALED);
		build_nf5(b, 1, 1, 0);
		assert_int_equal(dec(f, FLOW_FMT_NETFLOW, b), 0);
		assert_int_equal(f->g.r[0].sampling, 1);
		assert_int_equal(f->g.r[0].bytes, 14000);
		fx_free(f);
	}
	free(b);
}

static void test_nf5_hostile(void **state)
{
	struct fx *f = fx_new(NULL);
	struct pb *b = calloc(1, sizeof(*b));

	(void)state;
	/* The count promises three records, two are there. */
	build_nf5(b, 3, 2, 0);
	assert_int_equal(dec(f, FLOW_FMT_AUTO, b), M_EPARSE);
	assert_int_equal(f->g.n, 0);
	assert_int_equal(st(f)->truncated, 1);
	assert_int_equal(st(f)->bad_datagrams, 1);
	/* A huge count. */
	build_nf5(b, 65535, 1, 0);
	assert_int_equal(dec(f, FLOW_FMT_AUTO, b), M_EPARSE);
	assert_int_equal(f->g.n, 0);
	/* A short header. */
	build_nf5(b, 0, 0, 0);
	b->n = 20;
	assert_int_equal(dec(f, FLOW_FMT_NF5, b), M_EPARSE);
	/* Count 0 is a well-formed empty datagram; extra bytes are ignored. */
	build_nf5(b, 0, 1, 0);
	assert_int_equal(dec(f, FLOW_FMT_NF5, b), 0);
	assert_int_equal(f->g.n, 0);
	/* Too short for any header, and an unknown version. */
	assert_int_equal(dec(f, FLOW_FMT_AUTO, &(struct pb){ .b = { 0, 5 }, .n = 2 }), M_EPARSE);
	build_nf5(b, 1, 1, 0);
	b->b[1] = 7;
	assert_int_equal(dec(f, FLOW_FMT_AUTO, b), M_EUNSUPP);
	assert_int_equal(st(f)->unsupported, 1);
	fx_free(f);
	free(b);
}

/* ---- NetFlow v9 ---- */

/* Template 256: IPv4 flow with uptime times, 4-byte bytes, 8-byte packets. */
static void nf9_tmpl_v4(struct pb *b, unsigned id)
{
	static const uint16_t f[][2] = {
		{ 8, 4 }, { 12, 4 }, { 7, 2 }, { 11, 2 }, { 4, 1 }, { 6, 1 },
		{ 1, 4 }, { 2, 8 }, { 22, 4 }, { 21, 4 }, { 10, 2 }, { 14, 4 },
		{ 5, 1 }, { 58, 2 }, { 61, 1 }, { 88, 2 },
	};
	size_t s = set_begin(b, 0);

	p16(b, id);
	p16(b, sizeof(f) / sizeof(f[0]));
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		p16(b, f[i][0]);
		p16(b, f[i][1]);
	}
	set_end(b, s);
}

static void nf9_rec_v4(struct pb *b, const char *src, const char *dst, unsigned sport,
		       unsigned dport, unsigned proto, unsigned flags, uint32_t bytes,
		       uint64_t pkts, uint32_t first, uint32_t last, unsigned frag)
{
	pip(b, src);
	pip(b, dst);
	p16(b, sport);
	p16(b, dport);
	p8(b, proto);
	p8(b, flags);
	p32(b, bytes);
	p64(b, pkts);
	p32(b, first);
	p32(b, last);
	p16(b, 11);
	p32(b, 12);
	p8(b, 0);
	p16(b, 100);
	p8(b, 1);
	p16(b, frag);
}

static void test_nf9(void **state)
{
	struct fx *f = fx_new(NULL);
	struct pb *b = calloc(1, sizeof(*b));
	const int64_t ex = (int64_t)T0 * 1000;
	const struct flow_rec *r;
	size_t s;

	(void)state;
	nf9_hdr(b, 3600000, T0, 77);
	nf9_tmpl_v4(b, 256);
	s = set_begin(b, 256);
	nf9_rec_v4(b, "198.51.100.1", "203.0.113.5", 55000, 443, 6, 0x12, 1500, 3,
		   3590000, 3599000, 0);
	/* An uptime from before the 32-bit counter wrapped. */
	nf9_rec_v4(b, "198.51.100.2", "203.0.113.5", 0, 0, 17, 0, 1480, 1,
		   4294960000u, 4294961000u, 185);
	pzero(b, 2);   /* padding */
	set_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_AUTO, b), 0);
	assert_int_equal(f->g.n, 2);
	r = &f->g.r[0];
	assert_int_equal(r->format, FLOW_FMT_NF9);
	assert_int_equal(r->domain, 77);
	assert_ip(&r->src, "198.51.100.1");
	assert_ip(&r->dst, "203.0.113.5");
	assert_int_equal(r->sport, 55000);
	assert_int_equal(r->dport, 443);
	assert_int_equal(r->proto, 6);
	assert_int_equal(r->tcp_flags, 0x12);
	assert_int_equal(r->bytes, 1500);
	assert_int_equal(r->packets, 3);
	assert_int_equal(r->in_if, 11);
	assert_int_equal(r->out_if, 12);
	assert_int_equal(r->vlan, 100);
	assert_true(r->flags & FLOW_F_EGRESS);
	assert_true(r->flags & FLOW_F_RATE_DEFAULT);
	assert_int_equal(r->flags & FLOW_F_FRAGMENT, 0);
	assert_int_equal(r->sampling, 1);
	assert_int_equal(r->start_ms, ex - 10000);
	assert_int_equal(r->end_ms, ex - 1000);
	r = &f->g.r[1];
	assert_true(r->flags & FLOW_F_FRAGMENT);
	assert_int_equal(r->start_ms, ex - (3600000 + 7296));
	assert_int_equal(r->end_ms, ex - (3600000 + 6296));
	assert_int_equal(st(f)->templates, 1);
	fx_free(f);
	free(b);
}

/* Templates are per (exporter, source id): the same id means different
 * layouts for different source ids, and nothing for another exporter. */
static void test_nf9_sources(void **state)
{
	struct fx *f = fx_new(NULL);
	struct pb *b = calloc(1, sizeof(*b));
	size_t s;

	(void)state;
	/* Source id 1: template 300 is IPv6. */
	nf9_hdr(b, 1000, T0, 1);
	s = set_begin(b, 0);
	p16(b, 300);
	p16(b, 5);
	p16(b, 27); p16(b, 16);
	p16(b, 28); p16(b, 16);
	p16(b, 4); p16(b, 1);
	p16(b, 1); p16(b, 8);
	p16(b, 2); p16(b, 4);
	set_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), 0);
	/* Source id 2: template 300 is IPv4. */
	nf9_hdr(b, 1000, T0, 2);
	nf9_tmpl_v4(b, 300);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), 0);
	assert_int_equal(flow_decoder_sources(f->d), 2);

	nf9_hdr(b, 1000, T0, 1);
	s = set_begin(b, 300);
	pip(b, "2001:db8::1");
	pip(b, "2001:db8:1::53");
	p8(b, 17);
	p64(b, 123456789012ull);
	p32(b, 99);
	set_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), 0);
	assert_int_equal(f->g.n, 1);
	assert_ip(&f->g.r[0].src, "2001:db8::1");
	assert_ip(&f->g.r[0].dst, "2001:db8:1::53");
	assert_int_equal(f->g.r[0].src.family, FLOW_IPV6);
	assert_int_equal(f->g.r[0].bytes, 123456789012ull);
	assert_int_equal(f->g.r[0].packets, 99);
	/* No times in the template: the export time, flagged. */
	assert_true(f->g.r[0].flags & FLOW_F_TIME_ESTIMATED);
	assert_int_equal(f->g.r[0].start_ms, (int64_t)T0 * 1000);

	nf9_hdr(b, 1000, T0, 2);
	s = set_begin(b, 300);
	nf9_rec_v4(b, "192.0.2.77", "203.0.113.9", 1, 2, 6, 2, 60, 1, 900, 1000, 0);
	set_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), 0);
	assert_int_equal(f->g.n, 1);
	assert_ip(&f->g.r[0].src, "192.0.2.77");
	/* The same datagram from another exporter has no template. */
	assert_int_equal(dec_from(f, FLOW_FMT_NF9, "192.0.2.2", b->b, b->n), 0);
	assert_int_equal(f->g.n, 0);
	assert_int_equal(st(f)->no_template_sets, 1);
	fx_free(f);
	free(b);
}

static void test_nf9_no_template(void **state)
{
	struct fx *f = fx_new(NULL);
	struct pb *b = calloc(1, sizeof(*b)), *t = calloc(1, sizeof(*t));
	size_t s;

	(void)state;
	nf9_hdr(b, 5000, T0, 0);
	s = set_begin(b, 256);
	nf9_rec_v4(b, "198.51.100.1", "203.0.113.5", 1, 2, 6, 2, 60, 1, 4000, 5000, 0);
	set_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), 0);
	assert_int_equal(f->g.n, 0);
	assert_int_equal(st(f)->no_template_sets, 1);
	assert_int_equal(s, 20);
	assert_int_equal(st(f)->no_template_bytes, b->n - 24);
	/* Data from an unknown exporter allocates nothing. */
	assert_int_equal(flow_decoder_sources(f->d), 0);
	assert_int_equal(flow_decoder_memory(f->d), 0);
	nf9_hdr(t, 5000, T0, 0);
	nf9_tmpl_v4(t, 256);
	assert_int_equal(dec(f, FLOW_FMT_NF9, t), 0);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), 0);
	assert_int_equal(f->g.n, 1);
	/* The same template again is a refresh, not a change. */
	assert_int_equal(dec(f, FLOW_FMT_NF9, t), 0);
	assert_int_equal(st(f)->templates, 1);
	assert_int_equal(st(f)->templates_refreshed, 1);
	fx_free(f);
	free(b);
	free(t);
}

/* Options templates carry the sampling rate: per exporter (interval with
 * a System scope) and per sampler id (FLOW_SAMPLER_ID in data records). */
static void test_nf9_options_sampling(void **state)
{
	struct fx *f = fx_new(NULL);
	struct pb *b = calloc(1, sizeof(*b));
	size_t s;

	(void)state;
	nf9_hdr(b, 5000, T0, 0);
	/* Options template 257: scope System (4 bytes); interval, algorithm. */
	s = set_begin(b, 1);
	p16(b, 257);
	p16(b, 4);
	p16(b, 8);
	p16(b, 1); p16(b, 4);
	p16(b, 34); p16(b, 4);
	p16(b, 35); p16(b, 1);
	pzero(b, 2);
	set_end(b, s);
	/* Options template 258: scope System; sampler id, mode, interval. */
	s = set_begin(b, 1);
	p16(b, 258);
	p16(b, 4);
	p16(b, 12);
	p16(b, 1); p16(b, 4);
	p16(b, 48); p16(b, 1);
	p16(b, 49); p16(b, 1);
	p16(b, 50); p16(b, 4);
	set_end(b, s);
	/* Data template 259: addresses, bytes, packets, sampler id. */
	s = set_begin(b, 0);
	p16(b, 259);
	p16(b, 5);
	p16(b, 8); p16(b, 4);
	p16(b, 12); p16(b, 4);
	p16(b, 1); p16(b, 4);
	p16(b, 2); p16(b, 4);
	p16(b, 48); p16(b, 1);
	set_end(b, s);
	nf9_tmpl_v4(b, 256);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), 0);
	assert_int_equal(st(f)->templates, 4);

	/* Before any options data: the default rate, flagged. */
	nf9_hdr(b, 5000, T0, 0);
	s = set_begin(b, 256);
	nf9_rec_v4(b, "198.51.100.1", "203.0.113.5", 1, 2, 6, 2, 60, 1, 4000, 5000, 0);
	set_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), 0);
	assert_int_equal(f->g.r[0].sampling, 1);
	assert_true(f->g.r[0].flags & FLOW_F_RATE_DEFAULT);

	/* Options data: 1 in 1000 for the exporter. The scope value (1) is
	 * not read as IN_BYTES. */
	nf9_hdr(b, 5000, T0, 0);
	s = set_begin(b, 257);
	p32(b, 1);
	p32(b, 1000);
	p8(b, 2);
	pzero(b, 3);
	set_end(b, s);
	s = set_begin(b, 256);
	nf9_rec_v4(b, "198.51.100.1", "203.0.113.5", 1, 2, 6, 2, 60, 1, 4000, 5000, 0);
	set_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), 0);
	assert_int_equal(f->g.n, 1);
	assert_int_equal(f->g.r[0].sampling, 1000);
	assert_int_equal(f->g.r[0].flags & FLOW_F_RATE_DEFAULT, 0);
	assert_int_equal(st(f)->options_records, 1);

	/* Sampler 2 at 1:500, sampler 3 at 1:100. */
	nf9_hdr(b, 5000, T0, 0);
	s = set_begin(b, 258);
	p32(b, 1); p8(b, 2); p8(b, 2); p32(b, 500);
	p32(b, 1); p8(b, 3); p8(b, 2); p32(b, 100);
	set_end(b, s);
	s = set_begin(b, 259);
	pip(b, "198.51.100.1"); pip(b, "203.0.113.5"); p32(b, 100); p32(b, 1); p8(b, 3);
	pip(b, "198.51.100.1"); pip(b, "203.0.113.5"); p32(b, 100); p32(b, 1); p8(b, 2);
	pip(b, "198.51.100.1"); pip(b, "203.0.113.5"); p32(b, 100); p32(b, 1); p8(b, 9);
	set_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), 0);
	assert_int_equal(f->g.n, 3);
	assert_int_equal(f->g.r[0].sampling, 100);
	assert_int_equal(f->g.r[1].sampling, 500);
	/* An unknown sampler: the exporter's last announced rate. */
	assert_int_equal(f->g.r[2].sampling, 100);

	/* An interval of 0 is taken as 1 and counted. */
	nf9_hdr(b, 5000, T0, 0);
	s = set_begin(b, 257);
	p32(b, 1); p32(b, 0); p8(b, 2);
	set_end(b, s);
	s = set_begin(b, 256);
	nf9_rec_v4(b, "198.51.100.1", "203.0.113.5", 1, 2, 6, 2, 60, 1, 4000, 5000, 0);
	set_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), 0);
	assert_int_equal(st(f)->zero_rate, 1);
	assert_int_equal(f->g.r[0].sampling, 1);
	assert_int_equal(f->g.r[0].flags & FLOW_F_RATE_DEFAULT, 0);
	fx_free(f);
	free(b);
}

/* ---- IPFIX ---- */

static void test_ipfix(void **state)
{
	struct fx *f = fx_new(NULL);
	struct pb *b = calloc(1, sizeof(*b));
	const struct flow_rec *r;
	size_t s;

	(void)state;
	ipfix_hdr(b, T0, 4242);
	s = set_begin(b, 2);
	p16(b, 256);
	p16(b, 11);
	p16(b, 8); p16(b, 4);
	p16(b, 12); p16(b, 4);
	p16(b, 7); p16(b, 2);
	p16(b, 11); p16(b, 2);
	p16(b, 4); p16(b, 1);
	p16(b, 6); p16(b, 2);       /* tcpControlBits, 2 bytes (RFC 7125) */
	p16(b, 1); p16(b, 8);
	p16(b, 2); p16(b, 8);
	p16(b, 152); p16(b, 8);
	p16(b, 153); p16(b, 8);
	p16(b, 197); p16(b, 1);     /* fragmentFlags */
	set_end(b, s);
	s = set_begin(b, 256);
	pip(b, "198.51.100.9"); pip(b, "203.0.113.20"); p16(b, 40001); p16(b, 80);
	p8(b, 6); p16(b, 0x0002); p64(b, 40000000000ull); p64(b, 1000);
	p64(b, 1710071990000ull); p64(b, 1710071999999ull); p8(b, 0);
	pip(b, "198.51.100.10"); pip(b, "203.0.113.20"); p16(b, 0); p16(b, 0);
	p8(b, 17); p16(b, 0); p64(b, 1500); p64(b, 1);
	p64(b, 1710071995000ull); p64(b, 1710071995000ull); p8(b, 0x20);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_AUTO, b), 0);
	assert_int_equal(f->g.n, 2);
	r = &f->g.r[0];
	assert_int_equal(r->format, FLOW_FMT_IPFIX);
	assert_int_equal(r->domain, 4242);
	assert_ip(&r->src, "198.51.100.9");
	assert_int_equal(r->sport, 40001);
	assert_int_equal(r->dport, 80);
	assert_int_equal(r->tcp_flags, 0x02);
	assert_int_equal(r->bytes, 40000000000ull);
	assert_int_equal(r->packets, 1000);
	assert_int_equal(r->start_ms, 1710071990000LL);
	assert_int_equal(r->end_ms, 1710071999999LL);
	assert_int_equal(r->flags & (FLOW_F_FRAGMENT | FLOW_F_TIME_ESTIMATED), 0);
	assert_true(f->g.r[1].flags & FLOW_F_FRAGMENT);

	/* A message length shorter than the datagram bounds the message. */
	b->b[b->n++] = 0xff;
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
	assert_int_equal(f->g.n, 2);
	fx_free(f);
	free(b);
}

/* One template per kind of time, one record each. */
static void test_ipfix_times(void **state)
{
	struct flow_cfg cfg = { 0 };
	struct fx *f;
	struct pb *b = calloc(1, sizeof(*b));
	const int64_t ex = (int64_t)T0 * 1000;
	size_t s;

	(void)state;
	f = fx_new(&cfg);
	ipfix_hdr(b, T0, 1);
	s = set_begin(b, 2);
	p16(b, 256); p16(b, 2); p16(b, 150); p16(b, 4); p16(b, 151); p16(b, 4);
	p16(b, 257); p16(b, 2); p16(b, 154); p16(b, 8); p16(b, 155); p16(b, 8);
	p16(b, 258); p16(b, 2); p16(b, 22); p16(b, 4); p16(b, 21); p16(b, 4);
	p16(b, 259); p16(b, 2); p16(b, 158); p16(b, 4); p16(b, 159); p16(b, 4);
	p16(b, 260); p16(b, 2); p16(b, 152); p16(b, 8); p16(b, 161); p16(b, 4);
	p16(b, 261); p16(b, 2); p16(b, 153); p16(b, 8); p16(b, 152); p16(b, 8);
	set_end(b, s);
	s = set_begin(b, 3);   /* options: scope domain id; system init time */
	p16(b, 262); p16(b, 2); p16(b, 1); p16(b, 149); p16(b, 4); p16(b, 160); p16(b, 8);
	set_end(b, s);
	/* sysUpTime before the init time is known: estimated from export. */
	s = set_begin(b, 258);
	p32(b, 50000); p32(b, 53000);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
	assert_int_equal(f->g.n, 1);
	assert_int_equal(f->g.r[0].end_ms, ex);
	assert_int_equal(f->g.r[0].start_ms, ex - 3000);
	assert_true(f->g.r[0].flags & FLOW_F_TIME_ESTIMATED);

	ipfix_hdr(b, T0, 1);
	s = set_begin(b, 262);
	p32(b, 1); p64(b, 1710000000000ull);
	set_end(b, s);
	s = set_begin(b, 256);
	p32(b, T0 - 30); p32(b, T0 - 2);
	set_end(b, s);
	s = set_begin(b, 257);   /* NTP: 1900 epoch; fraction 0x80000000 = .5 s */
	p32(b, T0 + 2208988800u); p32(b, 0x80000000u);
	p32(b, T0 + 2208988801u); p32(b, 0x40000000u);
	set_end(b, s);
	s = set_begin(b, 258);
	p32(b, 50000); p32(b, 53000);
	set_end(b, s);
	s = set_begin(b, 259);   /* µs before the export time */
	p32(b, 9000000); p32(b, 250000);
	set_end(b, s);
	s = set_begin(b, 260);   /* start and a duration */
	p64(b, 1710071000000ull); p32(b, 4500);
	set_end(b, s);
	s = set_begin(b, 261);   /* start after end: clamped and counted */
	p64(b, 1710071000000ull); p64(b, 1710071000500ull);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
	assert_int_equal(f->g.n, 6);
	assert_int_equal(f->g.r[0].start_ms, ex - 30000);
	assert_int_equal(f->g.r[0].end_ms, ex - 2000);
	assert_int_equal(f->g.r[1].start_ms, ex + 500);
	assert_int_equal(f->g.r[1].end_ms, ex + 1250);
	assert_int_equal(f->g.r[2].start_ms, 1710000050000LL);
	assert_int_equal(f->g.r[2].end_ms, 1710000053000LL);
	assert_int_equal(f->g.r[2].flags & FLOW_F_TIME_ESTIMATED, 0);
	assert_int_equal(f->g.r[3].start_ms, ex - 9000);
	assert_int_equal(f->g.r[3].end_ms, ex - 250);
	assert_int_equal(f->g.r[4].start_ms, 1710071000000LL);
	assert_int_equal(f->g.r[4].end_ms, 1710071004500LL);
	assert_int_equal(f->g.r[5].start_ms, 1710071000000LL);
	assert_int_equal(f->g.r[5].end_ms, 1710071000000LL);
	assert_int_equal(st(f)->time_fixed, 1);
	fx_free(f);

	/* With the receive clock, exporter times shift by its skew. */
	cfg.flags = FLOW_CFG_RECV_CLOCK;
	f = fx_new(&cfg);
	ipfix_hdr(b, T0 - 3600, 1);   /* an exporter an hour slow */
	s = set_begin(b, 2);
	p16(b, 256); p16(b, 2); p16(b, 150); p16(b, 4); p16(b, 151); p16(b, 4);
	set_end(b, s);
	s = set_begin(b, 256);
	p32(b, T0 - 3600 - 30); p32(b, T0 - 3600 - 2);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
	assert_int_equal(f->g.r[0].start_ms, RECV_MS - 30000);
	assert_int_equal(f->g.r[0].end_ms, RECV_MS - 2000);
	fx_free(f);
	free(b);
}

static void ipfix_tmpl_simple(struct pb *b, unsigned id)
{
	p16(b, id);
	p16(b, 3);
	p16(b, 8); p16(b, 4);
	p16(b, 12); p16(b, 4);
	p16(b, 1); p16(b, 4);
}

static void ipfix_data_simple(struct pb *b, unsigned id, uint32_t bytes)
{
	size_t s = set_begin(b, id);

	pip(b, "198.51.100.1");
	pip(b, "203.0.113.1");
	p32(b, bytes);
	set_end(b, s);
}

static void test_ipfix_withdrawal(void **state)
{
	struct fx *f = fx_new(NULL);
	struct pb *b = calloc(1, sizeof(*b));
	size_t s;

	(void)state;
	ipfix_hdr(b, T0, 9);
	s = set_begin(b, 2);
	ipfix_tmpl_simple(b, 256);
	ipfix_tmpl_simple(b, 257);
	ipfix_tmpl_simple(b, 258);
	set_end(b, s);
	s = set_begin(b, 3);
	p16(b, 300); p16(b, 2); p16(b, 1); p16(b, 149); p16(b, 4); p16(b, 34); p16(b, 4);
	set_end(b, s);
	ipfix_data_simple(b, 256, 1);
	ipfix_data_simple(b, 257, 2);
	ipfix_data_simple(b, 258, 3);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
	assert_int_equal(f->g.n, 3);

	/* Withdraw 256 alone. */
	ipfix_hdr(b, T0, 9);
	s = set_begin(b, 2);
	p16(b, 256); p16(b, 0);
	set_end(b, s);
	ipfix_data_simple(b, 256, 1);
	ipfix_data_simple(b, 257, 2);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
	assert_int_equal(f->g.n, 1);
	assert_int_equal(f->g.r[0].bytes, 2);
	assert_int_equal(st(f)->templates_withdrawn, 1);
	assert_int_equal(st(f)->no_template_sets, 1);

	/* Withdraw every template (id 2): the options template stays. */
	ipfix_hdr(b, T0, 9);
	s = set_begin(b, 2);
	p16(b, 2); p16(b, 0);
	set_end(b, s);
	ipfix_data_simple(b, 257, 2);
	ipfix_data_simple(b, 258, 3);
	s = set_begin(b, 300);
	p32(b, 9); p32(b, 10);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
	assert_int_equal(f->g.n, 0);
	assert_int_equal(st(f)->templates_withdrawn, 3);
	assert_int_equal(st(f)->options_records, 1);

	/* Withdrawing an options template through set 2 is wrong: kept. */
	ipfix_hdr(b, T0, 9);
	s = set_begin(b, 2);
	p16(b, 300); p16(b, 0);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
	assert_int_equal(st(f)->templates_bad, 1);

	/* Withdraw every options template (set 3, id 3). */
	ipfix_hdr(b, T0, 9);
	s = set_begin(b, 3);
	p16(b, 3); p16(b, 0);
	set_end(b, s);
	s = set_begin(b, 300);
	p32(b, 9); p32(b, 10);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
	assert_int_equal(st(f)->templates_withdrawn, 4);
	assert_int_equal(st(f)->options_records, 1);
	assert_int_equal(st(f)->no_template_sets, 4);
	fx_free(f);
	free(b);
}

/* Variable-length fields (short and long form) and enterprise-specific
 * fields are skipped by their length; one that runs past the set stops
 * the set after the records before it. */
static void test_ipfix_varlen_enterprise(void **state)
{
	struct fx *f = fx_new(NULL);
	struct pb *b = calloc(1, sizeof(*b));
	size_t s;

	(void)state;
	ipfix_hdr(b, T0, 1);
	s = set_begin(b, 2);
	p16(b, 256);
	p16(b, 7);
	p16(b, 8); p16(b, 4);
	p16(b, 0x8000 | 1); p16(b, 4); p32(b, 9);      /* PEN 9 "id 1": not bytes */
	p16(b, 12); p16(b, 4);
	p16(b, 96); p16(b, 0xffff);                    /* applicationName */
	p16(b, 0x8000 | 2); p16(b, 0xffff); p32(b, 2636);
	p16(b, 1); p16(b, 4);
	p16(b, 2); p16(b, 4);
	set_end(b, s);
	s = set_begin(b, 256);
	/* short form */
	pip(b, "198.51.100.1"); p32(b, 0xdeadbeef); pip(b, "203.0.113.1");
	p8(b, 3); p8(b, 'd'); p8(b, 'n'); p8(b, 's');
	p8(b, 0);
	p32(b, 1000); p32(b, 10);
	/* long form: 255, then 300 */
	pip(b, "198.51.100.2"); p32(b, 0xdeadbeef); pip(b, "203.0.113.2");
	p8(b, 255); p16(b, 300); pzero(b, 300);
	p8(b, 255); p16(b, 2); p8(b, 1); p8(b, 2);
	p32(b, 2000); p32(b, 20);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
	assert_int_equal(f->g.n, 2);
	assert_ip(&f->g.r[0].src, "198.51.100.1");
	assert_ip(&f->g.r[0].dst, "203.0.113.1");
	assert_int_equal(f->g.r[0].bytes, 1000);
	assert_int_equal(f->g.r[0].packets, 10);
	assert_ip(&f->g.r[1].dst, "203.0.113.2");
	assert_int_equal(f->g.r[1].bytes, 2000);
	assert_int_equal(f->g.r[1].packets, 20);

	/* A third record whose length byte runs past the set. */
	ipfix_hdr(b, T0, 1);
	s = set_begin(b, 256);
	pip(b, "198.51.100.1"); p32(b, 0); pip(b, "203.0.113.1");
	p8(b, 0); p8(b, 0); p32(b, 1); p32(b, 1);
	pip(b, "198.51.100.3"); p32(b, 0); pip(b, "203.0.113.3");
	p8(b, 200); pzero(b, 12);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), M_EPARSE);
	assert_int_equal(f->g.n, 1);
	assert_int_equal(st(f)->truncated, 1);
	/* A long-form length past the set. */
	ipfix_hdr(b, T0, 1);
	s = set_begin(b, 256);
	pip(b, "198.51.100.1"); p32(b, 0); pip(b, "203.0.113.1");
	p8(b, 255); p16(b, 1000); pzero(b, 10);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), M_EPARSE);
	assert_int_equal(f->g.n, 0);
	fx_free(f);
	free(b);
}

static void test_ipfix_options_sampling(void **state)
{
	struct fx *f = fx_new(NULL);
	struct pb *b = calloc(1, sizeof(*b));
	size_t s;

	(void)state;
	ipfix_hdr(b, T0, 5);
	s = set_begin(b, 3);
	/* 300: scope observationDomainId; samplingInterval. */
	p16(b, 300); p16(b, 2); p16(b, 1); p16(b, 149); p16(b, 4); p16(b, 34); p16(b, 4);
	/* 301: scope selectorId; packet interval and space. */
	p16(b, 301); p16(b, 3); p16(b, 1); p16(b, 302); p16(b, 8); p16(b, 305); p16(b, 4);
	p16(b, 306); p16(b, 4);
	/* 302: scope samplerId; samplerRandomInterval. */
	p16(b, 302); p16(b, 2); p16(b, 1); p16(b, 48); p16(b, 2); p16(b, 50); p16(b, 4);
	/* 303: scope selectorId; samplingProbability (float64). */
	p16(b, 303); p16(b, 2); p16(b, 1); p16(b, 302); p16(b, 8); p16(b, 311); p16(b, 8);
	/* 304: scope selectorId; samplingSize and samplingPopulation. */
	p16(b, 304); p16(b, 3); p16(b, 1); p16(b, 302); p16(b, 8); p16(b, 309); p16(b, 4);
	p16(b, 310); p16(b, 4);
	set_end(b, s);
	s = set_begin(b, 2);
	ipfix_tmpl_simple(b, 256);
	/* 257: with selectorId. */
	p16(b, 257); p16(b, 4); p16(b, 8); p16(b, 4); p16(b, 12); p16(b, 4);
	p16(b, 1); p16(b, 4); p16(b, 302); p16(b, 8);
	/* 258: with samplerId (2 bytes). */
	p16(b, 258); p16(b, 4); p16(b, 8); p16(b, 4); p16(b, 12); p16(b, 4);
	p16(b, 1); p16(b, 4); p16(b, 48); p16(b, 2);
	/* 259: a record-level samplingInterval of 0. */
	p16(b, 259); p16(b, 4); p16(b, 8); p16(b, 4); p16(b, 12); p16(b, 4);
	p16(b, 1); p16(b, 4); p16(b, 34); p16(b, 4);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);

	ipfix_hdr(b, T0, 5);
	s = set_begin(b, 300);
	p32(b, 5); p32(b, 1000);
	set_end(b, s);
	s = set_begin(b, 301);
	p64(b, 7); p32(b, 1); p32(b, 99);
	set_end(b, s);
	s = set_begin(b, 302);
	p16(b, 4); p32(b, 2048);
	set_end(b, s);
	s = set_begin(b, 303);
	{
		double prob = 0.001;
		uint64_t bits;

		memcpy(&bits, &prob, sizeof(bits));
		p64(b, 8); p64(b, bits);
	}
	set_end(b, s);
	s = set_begin(b, 304);
	p64(b, 6); p32(b, 1); p32(b, 4096);
	set_end(b, s);
	ipfix_data_simple(b, 256, 1);
	s = set_begin(b, 257);
	pip(b, "198.51.100.1"); pip(b, "203.0.113.1"); p32(b, 2); p64(b, 7);
	pip(b, "198.51.100.1"); pip(b, "203.0.113.1"); p32(b, 3); p64(b, 8);
	pip(b, "198.51.100.1"); pip(b, "203.0.113.1"); p32(b, 4); p64(b, 6);
	set_end(b, s);
	s = set_begin(b, 258);
	pip(b, "198.51.100.1"); pip(b, "203.0.113.1"); p32(b, 5); p16(b, 4);
	set_end(b, s);
	s = set_begin(b, 259);
	pip(b, "198.51.100.1"); pip(b, "203.0.113.1"); p32(b, 6); p32(b, 0);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
	assert_int_equal(st(f)->options_records, 5);
	assert_int_equal(f->g.n, 6);
	/* No sampler in the record: the last rate announced (1 in 4096). */
	assert_int_equal(f->g.r[0].sampling, 4096);
	assert_int_equal(f->g.r[1].sampling, 100);   /* (1 + 99) / 1 */
	assert_int_equal(f->g.r[2].sampling, 1000);  /* 1 / 0.001 */
	assert_int_equal(f->g.r[3].sampling, 4096);  /* 4096 / 1 */
	assert_int_equal(f->g.r[4].sampling, 2048);
	/* A record's own interval of 0: taken as 1, counted. */
	assert_int_equal(f->g.r[5].sampling, 1);
	assert_int_equal(st(f)->zero_rate, 1);
	fx_free(f);
	free(b);
}

/* ---- sFlow v5 ---- */

static void sf_hdr(struct pb *b, const char *agent, uint32_t sub, uint32_t nsamples)
{
	struct flow_ip ip;

	b->n = 0;
	assert_int_equal(flow_ip_parse(&ip, agent), 0);
	p32(b, 5);
	p32(b, ip.family == FLOW_IPV4 ? 1 : 2);
	pip(b, agent);
	p32(b, sub);
	p32(b, 1234);      /* sequence */
	p32(b, 360000);    /* uptime */
	p32(b, nsamples);
}

/* Starts a sample or record (format, length patched by sf_end). */
static size_t sf_begin(struct pb *b, uint32_t fmt)
{
	size_t at;

	p32(b, fmt);
	at = b->n;
	p32(b, 0);
	return at;
}

static void sf_end(struct pb *b, size_t at)
{
	patch32(b, at, (uint32_t)(b->n - at - 4));
}

/* Ethernet + 802.1Q (VLAN 100) + IPv4 + TCP SYN, 58 bytes. */
static size_t frame_v4_tcp(struct pb *b)
{
	size_t at = b->n;

	pzero(b, 6); pzero(b, 6);
	p16(b, 0x8100); p16(b, 0x2064); p16(b, 0x0800);
	p8(b, 0x45); p8(b, 0); p16(b, 40); p16(b, 1); p16(b, 0x4000);
	p8(b, 64); p8(b, 6); p16(b, 0);
	pip(b, "198.51.100.66"); pip(b, "203.0.113.80");
	p16(b, 31337); p16(b, 80); p32(b, 1); p32(b, 0);
	p8(b, 0x50); p8(b, 0x02); p16(b, 1024); p16(b, 0); p16(b, 0);
	return b->n - at;
}

/* Ethernet + IPv6 + fragment header (first fragment) + UDP from 53. */
static size_t frame_v6_frag_udp(struct pb *b, unsigned frag_off)
{
	size_t at = b->n;

	pzero(b, 12);
	p16(b, 0x86dd);
	p32(b, 0x60000000); p16(b, 1240); p8(b, 44); p8(b, 64);
	pip(b, "2001:db8:53::1"); pip(b, "2001:db8:cafe::10");
	p8(b, 17); p8(b, 0); p16(b, (frag_off << 3) | 1); p32(b, 77);
	p16(b, 53); p16(b, 33000); p16(b, 1232); p16(b, 0);
	return b->n - at;
}

static void sf_raw(struct pb *b, uint32_t proto, uint32_t frame_len,
		   size_t (*frame)(struct pb *))
{
	size_t r = sf_begin(b, 1), hl;

	p32(b, proto);
	p32(b, frame_len);
	p32(b, 4);    /* stripped */
	hl = b->n;
	p32(b, 0);
	patch32(b, hl, (uint32_t)frame(b));
	while ((b->n - hl - 4) % 4)
		p8(b, 0);
	sf_end(b, r);
}

static size_t frame_v6_first(struct pb *b)
{
	return frame_v6_frag_udp(b, 0);
}

static size_t frame_v6_later(struct pb *b)
{
	return frame_v6_frag_udp(b, 185);
}

/* Raw IPv4 (header protocol 11) with UDP from 123. */
static size_t frame_ip4_udp(struct pb *b)
{
	size_t at = b->n;

	p8(b, 0x45); p8(b, 0); p16(b, 468); p16(b, 1); p16(b, 0);
	p8(b, 64); p8(b, 17); p16(b, 0);
	pip(b, "198.51.100.123"); pip(b, "203.0.113.99");
	p16(b, 123); p16(b, 4444); p16(b, 448); p16(b, 0);
	return b->n - at;
}

static void sf_counters(struct pb *b)
{
	size_t s = sf_begin(b, 2), r;

	p32(b, 9);           /* sequence */
	p32(b, 0x00000005);  /* source id: ifIndex 5 */
	p32(b, 2);           /* records */
	r = sf_begin(b, 1);
	p32(b, 5); p32(b, 6); p64(b, 10000000000ull); p32(b, 1); p32(b, 3);
	p64(b, 123456789ull); p32(b, 1000); p32(b, 2); p32(b, 3); p32(b, 4); p32(b, 5);
	p32(b, 6);
	p64(b, 987654321ull); p32(b, 2000); p32(b, 7); p32(b, 8); p32(b, 9); p32(b, 10);
	p32(b, 0);
	sf_end(b, r);
	r = sf_begin(b, 2);  /* ethernet counters: skipped */
	pzero(b, 52);
	sf_end(b, r);
	sf_end(b, s);
}

static void build_sflow_v4(struct pb *b, uint32_t rate)
{
	size_t s, r;

	sf_hdr(b, "192.0.2.200", 7, 3);
	s = sf_begin(b, 1);
	p32(b, 1);          /* sequence */
	p32(b, 3);          /* source id */
	p32(b, rate);
	p32(b, 100000);     /* pool */
	p32(b, 0);          /* drops */
	p32(b, 3);          /* input */
	p32(b, 5);          /* output */
	p32(b, 2);          /* records */
	sf_raw(b, 1, 64, frame_v4_tcp);
	r = sf_begin(b, 1001);   /* extended switch: skipped */
	p32(b, 100); p32(b, 0); p32(b, 100); p32(b, 0);
	sf_end(b, r);
	sf_end(b, s);
	sf_counters(b);
	s = sf_begin(b, (4413u << 12) | 1);   /* another enterprise's sample */
	pzero(b, 12);
	sf_end(b, s);
}

static void test_sflow_v4(void **state)
{
	struct fx *f = fx_new(NULL);
	struct pb *b = calloc(1, sizeof(*b));
	const struct flow_rec *r;
	const struct flow_ifcounters *c;

	(void)state;
	build_sflow_v4(b, 2048);
	assert_int_equal(dec(f, FLOW_FMT_AUTO, b), 0);
	assert_int_equal(f->g.n, 1);
	r = &f->g.r[0];
	assert_int_equal(r->format, FLOW_FMT_SFLOW);
	assert_ip(&r->exporter, "192.0.2.200");
	assert_int_equal(r->domain, 7);
	assert_ip(&r->src, "198.51.100.66");
	assert_ip(&r->dst, "203.0.113.80");
	assert_int_equal(r->sport, 31337);
	assert_int_equal(r->dport, 80);
	assert_int_equal(r->proto, 6);
	assert_int_equal(r->tcp_flags, 0x02);
	assert_int_equal(r->vlan, 100);
	assert_int_equal(r->bytes, 64);
	assert_int_equal(r->packets, 1);
	assert_int_equal(r->sampling, 2048);
	assert_int_equal(r->in_if, 3);
	assert_int_equal(r->out_if, 5);
	assert_int_equal(r->start_ms, RECV_MS);
	assert_int_equal(r->end_ms, RECV_MS);
	assert_int_equal(r->flags & FLOW_F_FRAGMENT, 0);
	assert_int_equal(f->g.nc, 1);
	c = &f->g.c[0];
	assert_ip(&c->agent, "192.0.2.200");
	assert_int_equal(c->ifindex, 5);
	assert_int_equal(c->speed, 10000000000ull);
	assert_int_equal(c->in_octets, 123456789ull);
	assert_int_equal(c->in_errors, 5);
	assert_int_equal(c->out_octets, 987654321ull);
	assert_int_equal(c->out_ucast, 2000);
	assert_int_equal(c->out_errors, 10);
	assert_int_equal(st(f)->sflow_flow_samples, 1);
	assert_int_equal(st(f)->sflow_counter_samples, 1);
	assert_int_equal(st(f)->sflow_ifcounters, 1);
	assert_int_equal(st(f)->sflow_skipped, 3);
	fx_free(f);

	/* Scaled: one sample stands for `rate` packets of its size. */
	{
		struct flow_cfg cfg = { .flags = FLOW_CFG_SCALE };

		f = fx_new(&cfg);
		assert_int_equal(dec(f, FLOW_FMT_SFLOW, b), 0);
		assert_int_equal(f->g.r[0].bytes, 64 * 2048);
		assert_int_equal(f->g.r[0].packets, 2048);
		fx_free(f);
	}
	free(b);
}

static void test_sflow_v6(void **state)
{
	struct fx *f = fx_new(NULL);
	struct pb *b = calloc(1, sizeof(*b));
	const struct flow_rec *r;
	size_t s, rr;

	(void)state;
	sf_hdr(b, "2001:db8::200", 1, 5);
	for (int i = 0; i < 2; i++) {
		s = sf_begin(b, 3);   /* expanded flow sample */
		p32(b, 1); p32(b, 0); p32(b, 3);     /* sequence, source type, index */
		p32(b, 1007); p32(b, 100000); p32(b, 0);   /* rate, pool, drops */
		p32(b, 0); p32(b, 70000);    /* input: format 0, ifIndex 70000 */
		p32(b, 0); p32(b, 80000);
		p32(b, 1);
		sf_raw(b, 1, 1300, i == 0 ? frame_v6_first : frame_v6_later);
		sf_end(b, s);
	}
	s = sf_begin(b, 1);
	p32(b, 2); p32(b, 3); p32(b, 512); p32(b, 0); p32(b, 0); p32(b, 1); p32(b, 2);
	p32(b, 1);
	sf_raw(b, 11, 482, frame_ip4_udp);
	sf_end(b, s);
	/* Sampled IPv4 (0:3) then a raw header: the header wins. */
	s = sf_begin(b, 1);
	p32(b, 4); p32(b, 3); p32(b, 128); p32(b, 0); p32(b, 0); p32(b, 1); p32(b, 2);
	p32(b, 2);
	rr = sf_begin(b, 3);
	p32(b, 1400); p32(b, 17); pip(b, "198.51.100.29"); pip(b, "203.0.113.29");
	p32(b, 1900); p32(b, 5555); p32(b, 0); p32(b, 0);
	sf_end(b, rr);
	sf_raw(b, 11, 482, frame_ip4_udp);
	sf_end(b, s);
	/* Sampled IPv4 only (0:3), no raw header. */
	s = sf_begin(b, 1);
	p32(b, 3); p32(b, 3); p32(b, 256); p32(b, 0); p32(b, 0); p32(b, 1); p32(b, 2);
	p32(b, 1);
	rr = sf_begin(b, 3);
	p32(b, 1400); p32(b, 17); pip(b, "198.51.100.19"); pip(b, "203.0.113.19");
	p32(b, 1900); p32(b, 5555); p32(b, 0); p32(b, 0);
	sf_end(b, rr);
	sf_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_SFLOW, b), 0);
	assert_int_equal(f->g.n, 5);
	r = &f->g.r[0];
	assert_ip(&r->exporter, "2001:db8::200");
	assert_ip(&r->src, "2001:db8:53::1");
	assert_ip(&r->dst, "2001:db8:cafe::10");
	assert_int_equal(r->proto, 17);
	assert_int_equal(r->sport, 53);
	assert_int_equal(r->dport, 33000);
	assert_true(r->flags & FLOW_F_FRAGMENT);
	assert_int_equal(r->bytes, 1300);
	assert_int_equal(r->sampling, 1007);
	assert_int_equal(r->in_if, 70000);
	assert_int_equal(r->out_if, 80000);
	r = &f->g.r[1];   /* a later fragment: no transport header */
	assert_int_equal(r->proto, 17);
	assert_int_equal(r->sport, 0);
	assert_int_equal(r->dport, 0);
	assert_true(r->flags & FLOW_F_FRAGMENT);
	r = &f->g.r[2];
	assert_ip(&r->src, "198.51.100.123");
	assert_int_equal(r->sport, 123);
	assert_int_equal(r->dport, 4444);
	assert_int_equal(r->bytes, 482);
	assert_int_equal(r->sampling, 512);
	r = &f->g.r[3];
	assert_ip(&r->src, "198.51.100.123");
	assert_int_equal(r->sampling, 128);
	r = &f->g.r[4];
	assert_ip(&r->src, "198.51.100.19");
	assert_int_equal(r->sport, 1900);
	assert_int_equal(r->bytes, 1400);
	assert_int_equal(r->sampling, 256);
	fx_free(f);
	free(b);
}

static void test_sflow_hostile(void **state)
{
	struct fx *f = fx_new(NULL);
	struct pb *b = calloc(1, sizeof(*b));
	size_t s;

	(void)state;
	/* A sampling rate of 0. */
	build_sflow_v4(b, 0);
	assert_int_equal(dec(f, FLOW_FMT_SFLOW, b), 0);
	assert_int_equal(f->g.r[0].sampling, 1);
	assert_int_equal(st(f)->zero_rate, 1);
	/* A sample count far beyond what is there. */
	build_sflow_v4(b, 10);
	patch32(b, 24, 0xffffffffu);
	assert_int_equal(dec(f, FLOW_FMT_SFLOW, b), M_EPARSE);
	assert_int_equal(f->g.n, 1);   /* what was there is kept */
	/* A record count far beyond the sample. */
	build_sflow_v4(b, 10);
	patch32(b, 28 + 8 + 28, 0x7fffffffu);
	assert_int_equal(dec(f, FLOW_FMT_SFLOW, b), M_EPARSE);
	/* A sample longer than the datagram. */
	build_sflow_v4(b, 10);
	patch32(b, 28 + 4, 0xfffffff0u);
	assert_int_equal(dec(f, FLOW_FMT_SFLOW, b), M_EPARSE);
	assert_int_equal(f->g.n, 0);
	/* A header length past its record: counted, no flow. */
	build_sflow_v4(b, 10);
	patch32(b, 28 + 8 + 32 + 8 + 12, 4000);
	assert_int_equal(dec(f, FLOW_FMT_SFLOW, b), 0);
	assert_int_equal(f->g.n, 0);
	/* A header that is not IP (ARP). */
	sf_hdr(b, "192.0.2.200", 0, 1);
	s = sf_begin(b, 1);
	p32(b, 1); p32(b, 3); p32(b, 100); p32(b, 0); p32(b, 0); p32(b, 1); p32(b, 2);
	p32(b, 1);
	{
		size_t r = sf_begin(b, 1);

		p32(b, 1); p32(b, 64); p32(b, 4); p32(b, 16);
		pzero(b, 12); p16(b, 0x0806); p16(b, 1);
		sf_end(b, r);
	}
	sf_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_SFLOW, b), 0);
	assert_int_equal(f->g.n, 0);
	assert_int_equal(st(f)->sflow_non_ip, 1);
	/* An unknown agent address type. */
	sf_hdr(b, "192.0.2.200", 0, 0);
	patch32(b, 4, 3);
	assert_int_equal(dec(f, FLOW_FMT_SFLOW, b), M_EPARSE);
	/* Samples and records of zero length are skipped, not looped on. */
	sf_hdr(b, "192.0.2.200", 0, 1000);
	for (int i = 0; i < 1000; i++) {
		p32(b, 7);
		p32(b, 0);
	}
	assert_int_equal(dec(f, FLOW_FMT_SFLOW, b), 0);
	fx_free(f);
	free(b);
}

/* ---- hostile sets and templates ---- */

static void test_hostile_sets(void **state)
{
	struct fx *f = fx_new(NULL);
	struct pb *b = calloc(1, sizeof(*b));
	size_t s;

	(void)state;
	/* A set of length 0 would loop forever if trusted. */
	nf9_hdr(b, 1, T0, 0);
	p16(b, 0); p16(b, 0); p32(b, 0);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), M_EPARSE);
	assert_int_equal(st(f)->bad_sets, 1);
	nf9_hdr(b, 1, T0, 0);
	p16(b, 256); p16(b, 2); p32(b, 0);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), M_EPARSE);
	/* A set longer than the datagram. */
	nf9_hdr(b, 1, T0, 0);
	p16(b, 256); p16(b, 400); p32(b, 0);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), M_EPARSE);
	assert_int_equal(st(f)->bad_sets, 3);
	/* Reserved FlowSet ids are skipped. */
	nf9_hdr(b, 1, T0, 0);
	s = set_begin(b, 7);
	p32(b, 0);
	set_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), 0);
	assert_int_equal(st(f)->reserved_sets, 1);
	/* IPFIX: message length past the datagram, under the header. */
	ipfix_hdr(b, T0, 1);
	ipfix_data_simple(b, 256, 1);
	ipfix_end(b);
	patch16(b, 2, (unsigned)b->n + 1);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), M_EPARSE);
	patch16(b, 2, 15);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), M_EPARSE);
	/* A set that does not end at the message's end. */
	ipfix_hdr(b, T0, 1);
	ipfix_data_simple(b, 256, 1);
	p16(b, 0);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), M_EPARSE);
	/* A format that does not match the datagram. */
	nf9_hdr(b, 1, T0, 0);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), M_EUNSUPP);
	ipfix_hdr(b, T0, 1);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_NETFLOW, b), M_EUNSUPP);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
	fx_free(f);
	free(b);
}

static void test_hostile_templates(void **state)
{
	struct flow_cfg cfg = { .max_fields = 8 };
	struct fx *f = fx_new(&cfg);
	struct pb *b = calloc(1, sizeof(*b));
	size_t s;

	(void)state;
	/* v9: zero fields, then a good template after it still counts. */
	nf9_hdr(b, 1, T0, 0);
	s = set_begin(b, 0);
	p16(b, 256); p16(b, 0);
	p16(b, 257); p16(b, 1); p16(b, 1); p16(b, 4);
	set_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), M_EPARSE);
	assert_int_equal(st(f)->templates_bad, 1);
	assert_int_equal(st(f)->templates, 1);
	/* v9: an absurd field count in a short set. */
	nf9_hdr(b, 1, T0, 0);
	s = set_begin(b, 0);
	p16(b, 258); p16(b, 65535); p16(b, 1); p16(b, 4);
	set_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), M_EPARSE);
	assert_int_equal(st(f)->templates_bad, 2);
	/* v9: more fields than max_fields (complete): refused. */
	nf9_hdr(b, 1, T0, 0);
	s = set_begin(b, 0);
	p16(b, 259); p16(b, 9);
	for (int i = 0; i < 9; i++) {
		p16(b, 1); p16(b, 4);
	}
	set_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), M_ELIMIT);
	assert_int_equal(st(f)->templates_refused, 1);
	/* v9: field lengths adding up past 65535, a 65535 field, id < 256. */
	nf9_hdr(b, 1, T0, 0);
	s = set_begin(b, 0);
	p16(b, 260); p16(b, 2); p16(b, 1); p16(b, 40000); p16(b, 2); p16(b, 40000);
	p16(b, 261); p16(b, 1); p16(b, 1); p16(b, 65535);
	p16(b, 100); p16(b, 1); p16(b, 1); p16(b, 4);
	set_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), M_EPARSE);
	assert_int_equal(st(f)->templates_bad, 5);
	/* v9 options: lengths that are not multiples of 4, or run past. */
	nf9_hdr(b, 1, T0, 0);
	s = set_begin(b, 1);
	p16(b, 262); p16(b, 3); p16(b, 4); pzero(b, 8);
	set_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), M_EPARSE);
	nf9_hdr(b, 1, T0, 0);
	s = set_begin(b, 1);
	p16(b, 262); p16(b, 4); p16(b, 400); pzero(b, 8);
	set_end(b, s);
	assert_int_equal(dec(f, FLOW_FMT_NF9, b), M_EPARSE);

	/* IPFIX: every field zero bytes long (records of length 0). */
	ipfix_hdr(b, T0, 1);
	s = set_begin(b, 2);
	p16(b, 256); p16(b, 2); p16(b, 1); p16(b, 0); p16(b, 2); p16(b, 0);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), M_EPARSE);
	/* IPFIX: an enterprise field cut in the middle of its number. */
	ipfix_hdr(b, T0, 1);
	s = set_begin(b, 2);
	p16(b, 257); p16(b, 1); p16(b, 0x8001); p16(b, 4); p16(b, 0);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), M_EPARSE);
	/* IPFIX options: scope count 0, and scope count above field count. */
	ipfix_hdr(b, T0, 1);
	s = set_begin(b, 3);
	p16(b, 300); p16(b, 1); p16(b, 0); p16(b, 34); p16(b, 4);
	p16(b, 301); p16(b, 1); p16(b, 2); p16(b, 34); p16(b, 4);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), M_EPARSE);
	/* IPFIX: a huge field count in a short set. */
	ipfix_hdr(b, T0, 1);
	s = set_begin(b, 2);
	p16(b, 258); p16(b, 65535); p16(b, 1); p16(b, 4);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), M_EPARSE);
	assert_true(flow_decoder_memory(f->d) <= FLOW_DEF_MEMORY);
	fx_free(f);
	free(b);
}

/* Too many templates for one exporter: the least recently used go, memory
 * stays bounded, the newest work. A template redefined back and forth
 * (a loop of changes) reuses its slot. */
static void test_bounds_templates(void **state)
{
	struct flow_cfg cfg = { .max_templates = 4 };
	struct fx *f = fx_new(&cfg);
	struct pb *b = calloc(1, sizeof(*b));
	size_t s, mem;

	(void)state;
	for (unsigned id = 256; id < 266; id++) {
		ipfix_hdr(b, T0, 1);
		s = set_begin(b, 2);
		ipfix_tmpl_simple(b, id);
		set_end(b, s);
		ipfix_end(b);
		assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
	}
	assert_int_equal(st(f)->templates, 10);
	assert_int_equal(st(f)->templates_evicted, 6);
	ipfix_hdr(b, T0, 1);
	ipfix_data_simple(b, 256, 1);
	ipfix_data_simple(b, 265, 2);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
	assert_int_equal(f->g.n, 1);
	assert_int_equal(f->g.r[0].bytes, 2);

	/* A template changed back and forth reuses its place. */
	mem = flow_decoder_memory(f->d);
	for (int i = 0; i < 1000; i++) {
		ipfix_hdr(b, T0, 1);
		s = set_begin(b, 2);
		p16(b, 265);
		p16(b, 2 + (i & 1));
		p16(b, 8); p16(b, 4);
		p16(b, 12); p16(b, 4);
		if (i & 1) {
			p16(b, 1); p16(b, 4);
		}
		set_end(b, s);
		ipfix_end(b);
		assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
	}
	assert_true(flow_decoder_memory(f->d) <= mem + 8);
	assert_int_equal(st(f)->templates, 1010);
	assert_int_equal(st(f)->templates_evicted, 6);
	fx_free(f);
	free(b);
}

/* Many exporters: the least recently used lose their state. A tiny
 * memory bound: templates that do not fit are refused. */
static void test_bounds_sources(void **state)
{
	struct flow_cfg cfg = { .max_sources = 8 };
	struct fx *f = fx_new(&cfg);
	struct pb *b = calloc(1, sizeof(*b));
	char ip[32];
	size_t s;

	(void)state;
	ipfix_hdr(b, T0, 1);
	s = set_begin(b, 2);
	ipfix_tmpl_simple(b, 256);
	set_end(b, s);
	ipfix_end(b);
	for (int i = 0; i < 100; i++) {
		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 250, i % 250 + 1);
		assert_int_equal(dec_from(f, FLOW_FMT_IPFIX, ip, b->b, b->n), 0);
		assert_true(flow_decoder_sources(f->d) <= 8);
	}
	assert_int_equal(flow_decoder_sources(f->d), 8);
	assert_int_equal(st(f)->sources_evicted, 92);
	fx_free(f);

	cfg = (struct flow_cfg){ .max_memory = 4096, .max_fields = 1024 };
	f = fx_new(&cfg);
	ipfix_hdr(b, T0, 1);
	s = set_begin(b, 2);
	p16(b, 256);
	p16(b, 600);
	for (int i = 0; i < 600; i++) {
		p16(b, 210); p16(b, 1);   /* paddingOctets */
	}
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), M_ELIMIT);
	assert_int_equal(st(f)->templates_refused, 1);
	assert_true(flow_decoder_memory(f->d) <= 4096);
	/* Small templates from many domains fill and cycle within the bound. */
	for (uint32_t dom = 0; dom < 200; dom++) {
		ipfix_hdr(b, T0, dom);
		s = set_begin(b, 2);
		ipfix_tmpl_simple(b, 256);
		set_end(b, s);
		ipfix_end(b);
		assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
		assert_true(flow_decoder_memory(f->d) <= 4096);
	}
	assert_true(st(f)->sources_evicted > 150);
	fx_free(f);
	free(b);
}

/* ---- packet headers ---- */

static void test_pkt_decode(void **state)
{
	struct pb *b = calloc(1, sizeof(*b));
	struct flow_rec r;

	(void)state;
	/* QinQ + MPLS (two labels) + IPv4 with options + UDP. */
	pzero(b, 12);
	p16(b, 0x88a8); p16(b, 0x0010); p16(b, 0x8100); p16(b, 0x0020);
	p16(b, 0x8847);
	p32(b, 0x00010040); p32(b, 0x00020140);
	p8(b, 0x46); p8(b, 0); p16(b, 100); p16(b, 0); p16(b, 0);
	p8(b, 64); p8(b, 17); p16(b, 0);
	pip(b, "198.51.100.1"); pip(b, "203.0.113.1"); p32(b, 0x01010101);
	p16(b, 389); p16(b, 9999);
	memset(&r, 0, sizeof(r));
	assert_int_equal(flow_pkt_decode(b->b, b->n, FLOW_LINK_ETHERNET, &r), 0);
	assert_int_equal(r.vlan, 0x10);
	assert_ip(&r.src, "198.51.100.1");
	assert_int_equal(r.sport, 389);
	assert_int_equal(r.dport, 9999);
	/* Cut inside the UDP header: addresses, no ports. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(flow_pkt_decode(b->b, b->n - 2, FLOW_LINK_ETHERNET, &r), 0);
	assert_int_equal(r.proto, 17);
	assert_int_equal(r.sport, 0);
	/* Cut inside the IPv4 header. */
	assert_int_equal(flow_pkt_decode(b->b, 40, FLOW_LINK_ETHERNET, &r), M_EPARSE);

	/* IPv6 + hop-by-hop + ICMPv6 echo request. */
	b->n = 0;
	p32(b, 0x60000000); p16(b, 16); p8(b, 0); p8(b, 64);
	pip(b, "2001:db8::1"); pip(b, "2001:db8::2");
	p8(b, 58); p8(b, 0); pzero(b, 6);
	p8(b, 128); p8(b, 0); p16(b, 0);
	memset(&r, 0, sizeof(r));
	assert_int_equal(flow_pkt_decode(b->b, b->n, FLOW_LINK_IPV6, &r), 0);
	assert_int_equal(r.proto, 58);
	assert_int_equal(r.icmp_type, 128);
	/* A chain of extension headers longer than the bound stops. */
	b->n = 0;
	p32(b, 0x60000000); p16(b, 80); p8(b, 60); p8(b, 64);
	pip(b, "2001:db8::1"); pip(b, "2001:db8::2");
	for (int i = 0; i < 10; i++) {
		p8(b, 60); p8(b, 0); pzero(b, 6);
	}
	memset(&r, 0, sizeof(r));
	assert_int_equal(flow_pkt_decode(b->b, b->n, FLOW_LINK_IPV6, &r), 0);
	assert_int_equal(r.proto, 60);
	/* Not IP. */
	b->n = 0;
	pzero(b, 12); p16(b, 0x0806); pzero(b, 28);
	assert_int_equal(flow_pkt_decode(b->b, b->n, FLOW_LINK_ETHERNET, &r), M_EUNSUPP);
	assert_int_equal(flow_pkt_decode(b->b, 10, FLOW_LINK_ETHERNET, &r), M_EPARSE);
	/* An IPv4 later fragment: no ports read from its payload. */
	b->n = 0;
	p8(b, 0x45); p8(b, 0); p16(b, 60); p16(b, 1); p16(b, 185);
	p8(b, 64); p8(b, 17); p16(b, 0);
	pip(b, "198.51.100.1"); pip(b, "203.0.113.1");
	p16(b, 11211); p16(b, 80);
	memset(&r, 0, sizeof(r));
	assert_int_equal(flow_pkt_decode(b->b, b->n, FLOW_LINK_IPV4, &r), 0);
	assert_true(r.flags & FLOW_F_FRAGMENT);
	assert_int_equal(r.sport, 0);
	free(b);
}

static void test_formats(void **state)
{
	enum flow_format fmt;
	static const uint8_t v5[4] = { 0, 5, 0, 0 }, v9[4] = { 0, 9, 0, 0 },
			     ipfix[4] = { 0, 10, 0, 0 }, sflow[4] = { 0, 0, 0, 5 },
			     junk[4] = { 1, 2, 3, 4 };
	struct flow_ip ip;
	char s[FLOW_IP_STRLEN];
	size_t total = 0;

	(void)state;
	assert_int_equal(flow_detect(v5, 4), FLOW_FMT_NF5);
	assert_int_equal(flow_detect(v9, 4), FLOW_FMT_NF9);
	assert_int_equal(flow_detect(ipfix, 4), FLOW_FMT_IPFIX);
	assert_int_equal(flow_detect(sflow, 4), FLOW_FMT_SFLOW);
	assert_int_equal(flow_detect(junk, 4), FLOW_FMT_AUTO);
	assert_int_equal(flow_detect(v5, 3), FLOW_FMT_AUTO);
	assert_int_equal(flow_format_parse("ipfix", &fmt), 0);
	assert_int_equal(fmt, FLOW_FMT_IPFIX);
	assert_int_equal(flow_format_parse("netflow", &fmt), 0);
	assert_int_equal(fmt, FLOW_FMT_NETFLOW);
	assert_int_equal(flow_format_parse("jflow", &fmt), M_EINVAL);
	assert_string_equal(flow_format_name(FLOW_FMT_SFLOW), "sflow");
	assert_int_equal(flow_ip_parse(&ip, "not an address"), M_EINVAL);
	assert_int_equal(flow_ip_parse(&ip, "::ffff:192.0.2.1"), 0);
	assert_string_equal(flow_ip_str(&ip, s, sizeof(s)), "::ffff:192.0.2.1");
	memset(&ip, 0, sizeof(ip));
	assert_string_equal(flow_ip_str(&ip, s, sizeof(s)), "-");
	/* The stats table covers struct flow_stats exactly. */
	for (size_t i = 0; i < flow_stat_count; i++) {
		assert_int_equal(flow_stat_descs[i].offset, i * sizeof(uint64_t));
		total += sizeof(uint64_t);
	}
	assert_int_equal(total, sizeof(struct flow_stats));
	/* Bad configuration and arguments. */
	{
		struct flow_cfg cfg = { .max_fields = FLOW_MAX_FIELDS + 1 };
		struct flow_decoder *d;

		assert_null(flow_decoder_new(&cfg, on_rec, NULL, NULL));
		assert_null(flow_decoder_new(NULL, NULL, NULL, NULL));
		d = flow_decoder_new(NULL, on_rec, NULL, NULL);
		assert_int_equal(flow_decode(d, FLOW_FMT_AUTO, NULL, 0, NULL, 5), M_EINVAL);
		flow_decoder_free(d);
		flow_decoder_free(NULL);
	}
}

/* ---- every prefix, and mutations ---- */

struct sample {
	enum flow_format fmt;
	struct pb *b;
};

/* The valid datagrams of the tests above, in a sequence that teaches the
 * templates before their data. */
static size_t build_samples(struct sample *out)
{
	size_t n = 0, s;
	struct pb *b;

#define NEXT(f) (out[n].fmt = (f), b = out[n++].b = calloc(1, sizeof(struct pb)), \
		 assert_non_null(b))
	NEXT(FLOW_FMT_NF5);
	build_nf5(b, 2, 2, 100);
	NEXT(FLOW_FMT_NF9);
	nf9_hdr(b, 3600000, T0, 77);
	nf9_tmpl_v4(b, 256);
	s = set_begin(b, 1);
	p16(b, 257); p16(b, 4); p16(b, 4); p16(b, 1); p16(b, 4); p16(b, 34); p16(b, 4);
	set_end(b, s);
	s = set_begin(b, 257);
	p32(b, 1); p32(b, 64);
	set_end(b, s);
	s = set_begin(b, 256);
	nf9_rec_v4(b, "198.51.100.1", "203.0.113.5", 55000, 443, 6, 0x12, 1500, 3,
		   3590000, 3599000, 0);
	set_end(b, s);
	NEXT(FLOW_FMT_IPFIX);
	ipfix_hdr(b, T0, 1);
	s = set_begin(b, 2);
	p16(b, 256); p16(b, 5);
	p16(b, 8); p16(b, 4); p16(b, 0x8000 | 1); p16(b, 4); p32(b, 9);
	p16(b, 96); p16(b, 0xffff); p16(b, 1); p16(b, 4); p16(b, 22); p16(b, 4);
	set_end(b, s);
	s = set_begin(b, 3);
	p16(b, 300); p16(b, 3); p16(b, 1); p16(b, 149); p16(b, 4); p16(b, 34); p16(b, 4);
	p16(b, 160); p16(b, 8);
	set_end(b, s);
	s = set_begin(b, 300);
	p32(b, 1); p32(b, 100); p64(b, 1710000000000ull);
	set_end(b, s);
	s = set_begin(b, 256);
	pip(b, "198.51.100.1"); p32(b, 0); p8(b, 2); p8(b, 'a'); p8(b, 'b');
	p32(b, 100); p32(b, 5000);
	set_end(b, s);
	ipfix_end(b);
	NEXT(FLOW_FMT_SFLOW);
	build_sflow_v4(b, 1000);
#undef NEXT
	return n;
}

static void test_every_prefix(void **state)
{
	struct sample smp[8];
	size_t ns = build_samples(smp);

	(void)state;
	for (size_t i = 0; i < ns; i++) {
		struct fx *f = fx_new(NULL);

		/* The whole datagram first, so templates exist for prefixes. */
		assert_int_equal(dec(f, smp[i].fmt, smp[i].b), 0);
		assert_true(f->g.n >= 1);
		for (size_t k = 0; k < smp[i].b->n; k++) {
			int rc = dec_from(f, FLOW_FMT_AUTO, "192.0.2.1", smp[i].b->b, k);

			/* v9 may end cleanly at a FlowSet boundary; the others
			 * carry a length or a count that a prefix breaks. */
			if (smp[i].fmt != FLOW_FMT_NF9 && rc == 0)
				fail_msg("format %d: prefix %zu of %zu decoded cleanly",
					 smp[i].fmt, k, smp[i].b->n);
		}
		fx_free(f);
		free(smp[i].b);
	}
}

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

/* Random byte changes to valid datagrams, fed to a decoder with small
 * bounds: nothing may crash, read out of bounds, leak or exceed them. */
static void test_mutations(void **state)
{
	struct flow_cfg cfg = { .max_sources = 4, .max_templates = 4,
				.max_memory = 16384, .flags = FLOW_CFG_SCALE };
	struct sample smp[8];
	size_t ns = build_samples(smp);
	struct fx *f = fx_new(&cfg);
	uint8_t *c = malloc(sizeof(((struct pb *)0)->b));

	(void)state;
	assert_non_null(c);
	for (int it = 0; it < 40000; it++) {
		const struct pb *b = smp[rnd((uint32_t)ns)].b;
		size_t n = b->n;
		int edits = 1 + (int)rnd(4);
		char from[24];

		memcpy(c, b->b, n);
		for (int e = 0; e < edits; e++) {
			size_t at = rnd((uint32_t)n);

			switch (rnd(4)) {
			case 0: c[at] = (uint8_t)rnd(256); break;
			case 1: c[at] ^= (uint8_t)(1u << rnd(8)); break;
			case 2: c[at] = rnd(2) ? 0xff : 0; break;
			default: n = at + 1; break;   /* truncate */
			}
		}
		snprintf(from, sizeof(from), "192.0.2.%u", 1 + rnd(6));
		(void)dec_from(f, FLOW_FMT_AUTO, from, c, n);
		assert_true(flow_decoder_memory(f->d) <= cfg.max_memory);
		assert_true(flow_decoder_sources(f->d) <= cfg.max_sources);
	}
	assert_true(st(f)->records > 1000);
	assert_true(st(f)->bad_datagrams > 1000);
	fx_free(f);
	free(c);
	for (size_t i = 0; i < ns; i++)
		free(smp[i].b);
}

/* Every value a record can give, compared one by one (the structure's
 * padding is not part of it). */
static void assert_rec_equal(const struct flow_rec *a, const struct flow_rec *b)
{
	assert_memory_equal(&a->exporter, &b->exporter, sizeof(a->exporter));
	assert_memory_equal(a->src.a, b->src.a, 16);
	assert_memory_equal(a->dst.a, b->dst.a, 16);
	assert_int_equal(a->src.family, b->src.family);
	assert_int_equal(a->dst.family, b->dst.family);
	assert_int_equal(a->domain, b->domain);
	assert_int_equal(a->sport, b->sport);
	assert_int_equal(a->dport, b->dport);
	assert_int_equal(a->proto, b->proto);
	assert_int_equal(a->tcp_flags, b->tcp_flags);
	assert_int_equal(a->icmp_type, b->icmp_type);
	assert_int_equal(a->icmp_code, b->icmp_code);
	assert_int_equal(a->tos, b->tos);
	assert_int_equal(a->src_mask, b->src_mask);
	assert_int_equal(a->dst_mask, b->dst_mask);
	assert_int_equal(a->format, b->format);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->vlan, b->vlan);
	assert_int_equal(a->in_if, b->in_if);
	assert_int_equal(a->out_if, b->out_if);
	assert_int_equal(a->src_as, b->src_as);
	assert_int_equal(a->dst_as, b->dst_as);
	assert_int_equal(a->sampling, b->sampling);
	assert_int_equal(a->bytes, b->bytes);
	assert_int_equal(a->packets, b->packets);
	assert_int_equal(a->start_ms, b->start_ms);
	assert_int_equal(a->end_ms, b->end_ms);
}

/* One IPFIX datagram: template 256 (fields ids[i] of lens[i] bytes), then
 * records first..first+count-1 of recs (each rlen bytes) in one set. */
static void tmpl_datagram(struct pb *b, const uint16_t *ids, const uint16_t *lens, int nf,
			  const uint8_t *recs, size_t rlen, int first, int count)
{
	size_t s;

	ipfix_hdr(b, T0, 9);
	s = set_begin(b, 2);
	p16(b, 256);
	p16(b, (unsigned)nf);
	for (int i = 0; i < nf; i++) {
		p16(b, ids[i]);
		p16(b, lens[i]);
		if (ids[i] & 0x8000)
			p32(b, 32473);   /* the enterprise number */
	}
	set_end(b, s);
	s = set_begin(b, 256);
	memcpy(b->b + b->n, recs + (size_t)first * rlen, (size_t)count * rlen);
	b->n += (size_t)count * rlen;
	set_end(b, s);
	ipfix_end(b);
}

/* The record decoder reads a fixed-length template's records with one
 * 8-byte load per field while 8 more bytes of the set follow the record,
 * and field by field otherwise (a set's last record, records shorter than
 * 8 bytes). Random templates of the fields it reads (every length they
 * may have, values near the record's end, unknown and enterprise fields
 * between them) and random records: each record decoded among others
 * equals the same record decoded alone, the last of its set. */
static void test_tmpl_paths_agree(void **state)
{
	static const uint16_t known[] = {
		1, 2, 4, 5, 6, 7, 9, 10, 11, 13, 14, 16, 17, 21, 22, 23, 24, 29, 30, 32, 34,
		48, 50, 58, 61, 85, 86, 88, 139, 150, 151, 152, 153, 154, 155, 156, 157, 158,
		159, 160, 161, 162, 176, 177, 178, 179, 197, 302, 305, 306, 309, 310, 311,
	};
	struct pb *b = calloc(1, sizeof(*b));
	uint8_t recs[8 * 400];
	struct flow_rec *alone = calloc(8, sizeof(*alone));
	uint64_t fast = 0;

	(void)state;
	assert_non_null(b);
	assert_non_null(alone);
	for (int it = 0; it < 3000; it++) {
		uint16_t ids[24], lens[24];
		int nf = 1 + (int)rnd(24), count = 2 + (int)rnd(6);
		size_t rlen = 0;
		struct fx *f;

		for (int i = 0; i < nf; i++) {
			switch (rnd(8)) {
			case 0: ids[i] = rnd(2) ? 8 : 12; lens[i] = 4; break;
			case 1: ids[i] = rnd(2) ? 27 : 28; lens[i] = 16; break;
			case 2: ids[i] = (uint16_t)(400 + rnd(50)); lens[i] = (uint16_t)(1 + rnd(12)); break;
			case 3:   /* enterprise-specific: skipped by length */
				ids[i] = (uint16_t)(0x8000 | rnd(2)); lens[i] = (uint16_t)(1 + rnd(6)); break;
			default:
				ids[i] = known[rnd(sizeof(known) / sizeof(known[0]))];
				lens[i] = (uint16_t)(1 + rnd(8));
				break;
			}
			rlen += lens[i];
		}
		for (size_t i = 0; i < rlen * (size_t)count; i++)
			recs[i] = (uint8_t)rnd(256);
		f = fx_new(NULL);
		for (int k = 0; k < count; k++) {
			tmpl_datagram(b, ids, lens, nf, recs, rlen, k, 1);
			assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
			assert_int_equal(f->g.n, 1);
			alone[k] = f->g.r[0];
		}
		tmpl_datagram(b, ids, lens, nf, recs, rlen, 0, count);
		assert_int_equal(dec(f, FLOW_FMT_IPFIX, b), 0);
		assert_int_equal(f->g.n, (size_t)count);
		for (int k = 0; k < count; k++)
			assert_rec_equal(&f->g.r[k], &alone[k]);
		if (rlen >= 8)
			fast += (uint64_t)count - 1;
		fx_free(f);
	}
	assert_true(fast > 3000);
	free(alone);
	free(b);
}

/* ---- export sequence numbers ---- */

/* A NetFlow v9 datagram with no sets: only its header counts here. */
static int nf9_seq(struct fx *f, const char *from, uint32_t srcid, uint32_t seq, uint32_t uptime)
{
	struct pb *b = calloc(1, sizeof(*b));
	int rc;

	assert_non_null(b);
	nf9_hdr(b, uptime, T0, srcid);
	patch32(b, 12, seq);
	rc = dec_from(f, FLOW_FMT_AUTO, from, b->b, b->n);
	free(b);
	return rc;
}

struct seq_got {
	struct flow_seq_stat s[8];
	size_t n;
};

static void on_seq(void *arg, const struct flow_seq_stat *s)
{
	struct seq_got *g = arg;

	if (g->n < 8)
		g->s[g->n] = *s;
	g->n++;
}

/* The sequence state of (exporter, domain); fails when there is none. */
static struct flow_seq_stat seq_of(struct fx *f, const char *exporter, uint32_t domain)
{
	struct seq_got g = { .n = 0 };
	struct flow_ip ip;

	assert_int_equal(flow_ip_parse(&ip, exporter), 0);
	flow_decoder_seq_foreach(f->d, on_seq, &g);
	for (size_t i = 0; i < g.n && i < 8; i++)
		if (g.s[i].domain == domain && memcmp(g.s[i].exporter.a, ip.a, 16) == 0)
			return g.s[i];
	fail_msg("no sequence state for %s/%u", exporter, domain);
	return g.s[0];
}

static void test_seq_nf9(void **state)
{
	struct fx *f = fx_new(NULL);
	struct flow_seq_stat s;
	uint32_t seq = 100, up = 5000000;

	(void)state;
	/* In order: nothing lost. */
	for (int i = 0; i < 20; i++)
		assert_int_equal(nf9_seq(f, "192.0.2.1", 7, seq++, up += 100), 0);
	assert_int_equal(st(f)->seq_lost_datagrams, 0);
	/* A gap of 3 counts once it has waited FLOW_SEQ_HOLD datagrams. */
	seq += 3;
	assert_int_equal(nf9_seq(f, "192.0.2.1", 7, seq++, up += 100), 0);
	assert_int_equal(st(f)->seq_lost_datagrams, 0);
	for (int i = 0; i < FLOW_SEQ_HOLD; i++)
		nf9_seq(f, "192.0.2.1", 7, seq++, up += 100);
	assert_int_equal(st(f)->seq_lost_datagrams, 3);
	/* Reordered: 2 before 1, and 4 after 5 and 6: nothing lost. */
	nf9_seq(f, "192.0.2.1", 7, seq + 1, up += 100);
	nf9_seq(f, "192.0.2.1", 7, seq, up);
	nf9_seq(f, "192.0.2.1", 7, seq + 3, up += 100);
	nf9_seq(f, "192.0.2.1", 7, seq + 4, up += 100);
	nf9_seq(f, "192.0.2.1", 7, seq + 2, up);
	seq += 5;
	for (int i = 0; i < 2 * FLOW_SEQ_HOLD; i++)
		nf9_seq(f, "192.0.2.1", 7, seq++, up += 100);
	assert_int_equal(st(f)->seq_lost_datagrams, 3);
	assert_int_equal(st(f)->seq_late, 2);
	/* Another source id of the same exporter is a sequence of its own. */
	nf9_seq(f, "192.0.2.1", 8, 1, up);
	nf9_seq(f, "192.0.2.1", 8, 3, up);
	for (int i = 0; i < FLOW_SEQ_HOLD; i++)
		nf9_seq(f, "192.0.2.1", 7, seq++, up += 100);
	for (uint32_t i = 4; i < 4 + FLOW_SEQ_HOLD; i++)
		nf9_seq(f, "192.0.2.1", 8, i, up);
	assert_int_equal(st(f)->seq_lost_datagrams, 4);
	s = seq_of(f, "192.0.2.1", 7);
	assert_int_equal(s.lost, 3);
	assert_int_equal(s.late, 2);
	assert_int_equal(s.resets, 0);
	assert_int_equal(s.unit_records, 0);
	assert_int_equal(s.format, FLOW_FMT_NF9);
	assert_int_equal(s.last_ms, RECV_MS);
	s = seq_of(f, "192.0.2.1", 8);
	assert_int_equal(s.lost, 1);
	assert_int_equal(s.datagrams, 2 + FLOW_SEQ_HOLD);
	/* lost_interval starts afresh after each walk. */
	assert_int_equal(seq_of(f, "192.0.2.1", 8).lost_interval, 0);
	assert_int_equal(flow_decoder_seq_count(f->d), 2);
	fx_free(f);
}

static void test_seq_wrap_restart(void **state)
{
	struct fx *f = fx_new(NULL);
	uint32_t seq = 0xfffffffcu, up = 90000000;

	(void)state;
	/* Through the wrap of the counter, one datagram missing at 0. */
	for (int i = 0; i < 4; i++)
		nf9_seq(f, "192.0.2.2", 1, seq++, up += 10);
	assert_int_equal(seq, 0);
	seq++;
	for (int i = 0; i < 2 * FLOW_SEQ_HOLD; i++)
		nf9_seq(f, "192.0.2.2", 1, seq++, up += 10);
	assert_int_equal(st(f)->seq_lost_datagrams, 1);
	assert_int_equal(st(f)->seq_resets, 0);
	/* The router reboots: uptime and sequence start again. Not a loss of
	 * four billion. */
	up = 40000;
	seq = 0;
	for (int i = 0; i < 2 * FLOW_SEQ_HOLD; i++)
		nf9_seq(f, "192.0.2.2", 1, seq++, up += 10);
	assert_int_equal(st(f)->seq_lost_datagrams, 1);
	assert_int_equal(st(f)->seq_resets, 1);
	/* A jump far ahead (a restart with a random start, no uptime help):
	 * counting starts over there. */
	seq += 0x40000000u;
	for (int i = 0; i < 2 * FLOW_SEQ_HOLD; i++)
		nf9_seq(f, "192.0.2.2", 1, seq++, up += 10);
	assert_int_equal(st(f)->seq_lost_datagrams, 1);
	assert_int_equal(st(f)->seq_resets, 2);
	/* A duplicate of the last datagram: late, not a restart. */
	nf9_seq(f, "192.0.2.2", 1, seq - 1, up);
	nf9_seq(f, "192.0.2.2", 1, seq++, up += 10);
	assert_int_equal(st(f)->seq_late, 1);
	assert_int_equal(st(f)->seq_resets, 2);
	fx_free(f);
}

/* An IPFIX message of n data records of template 300 (sent first). */
static void ipfix_seq(struct fx *f, const char *from, uint32_t seq, unsigned n, int with_tmpl)
{
	struct pb *b = calloc(1, sizeof(*b));
	size_t s;

	assert_non_null(b);
	ipfix_hdr(b, T0, 9);
	patch32(b, 8, seq);
	if (with_tmpl) {
		s = set_begin(b, 2);
		ipfix_tmpl_simple(b, 300);
		set_end(b, s);
	}
	if (n) {
		s = set_begin(b, 300);
		for (unsigned i = 0; i < n; i++) {
			pip(b, "198.51.100.1");
			pip(b, "203.0.113.1");
			p32(b, 100);
		}
		set_end(b, s);
	}
	ipfix_end(b);
	assert_int_equal(dec_from(f, FLOW_FMT_AUTO, from, b->b, b->n), 0);
	free(b);
}

static void test_seq_ipfix(void **state)
{
	struct fx *f = fx_new(NULL);
	uint32_t seq = 5000000;

	(void)state;
	/* The sequence counts data records: 3 per message here. */
	ipfix_seq(f, "192.0.2.3", seq, 3, 1);
	seq += 3;
	for (int i = 0; i < 10; i++, seq += 3)
		ipfix_seq(f, "192.0.2.3", seq, 3, 0);
	assert_int_equal(st(f)->seq_lost_records, 0);
	/* A message of 3 records lost; a template-only message adds none. */
	seq += 3;
	ipfix_seq(f, "192.0.2.3", seq, 0, 1);
	for (int i = 0; i < FLOW_SEQ_HOLD + 1; i++, seq += 3)
		ipfix_seq(f, "192.0.2.3", seq, 3, 0);
	assert_int_equal(st(f)->seq_lost_records, 3);
	/* Reordered by one message: nothing lost. */
	ipfix_seq(f, "192.0.2.3", seq + 3, 3, 0);
	ipfix_seq(f, "192.0.2.3", seq, 3, 0);
	seq += 6;
	for (int i = 0; i < FLOW_SEQ_HOLD + 1; i++, seq += 3)
		ipfix_seq(f, "192.0.2.3", seq, 3, 0);
	assert_int_equal(st(f)->seq_lost_records, 3);
	assert_int_equal(st(f)->seq_late, 1);
	/* The exporter restarts at 0 (IPFIX has no uptime): far behind, so
	 * counting starts over. */
	seq = 0;
	for (int i = 0; i < 2 * FLOW_SEQ_HOLD; i++, seq += 3)
		ipfix_seq(f, "192.0.2.3", seq, 3, 0);
	assert_int_equal(st(f)->seq_lost_records, 3);
	assert_int_equal(st(f)->seq_resets, 1);
	assert_int_equal(seq_of(f, "192.0.2.3", 9).unit_records, 1);
	fx_free(f);
}

static void test_seq_ipfix_unknown_template(void **state)
{
	struct fx *f = fx_new(NULL);
	struct pb *b = calloc(1, sizeof(*b));
	uint32_t seq = 10;
	size_t s;

	(void)state;
	assert_non_null(b);
	ipfix_seq(f, "192.0.2.4", seq, 2, 1);
	seq += 2;
	/* A data set of a template never sent: its records cannot be
	 * counted, so the next message sets the count again. */
	ipfix_hdr(b, T0, 9);
	patch32(b, 8, seq);
	s = set_begin(b, 301);
	pzero(b, 24);
	set_end(b, s);
	ipfix_end(b);
	assert_int_equal(dec_from(f, FLOW_FMT_AUTO, "192.0.2.4", b->b, b->n), 0);
	seq += 5;   /* whatever it held */
	for (int i = 0; i < 2 * FLOW_SEQ_HOLD; i++, seq += 2)
		ipfix_seq(f, "192.0.2.4", seq, 2, 0);
	assert_int_equal(st(f)->seq_lost_records, 0);
	assert_int_equal(st(f)->seq_resets, 0);
	free(b);
	fx_free(f);
}

static void test_seq_nf5_sflow(void **state)
{
	struct fx *f = fx_new(NULL);
	struct pb *b = calloc(1, sizeof(*b));
	uint32_t seq = 1000;

	(void)state;
	assert_non_null(b);
	/* v5: flow_sequence counts flows; 4 per datagram here. */
	for (int i = 0; i < 3 + FLOW_SEQ_HOLD; i++) {
		build_nf5(b, 4, 4, 0);
		patch32(b, 16, seq);
		assert_int_equal(dec(f, FLOW_FMT_AUTO, b), 0);
		seq += i == 1 ? 4 + 7 : 4;    /* 7 flows lost after the second */
	}
	assert_int_equal(st(f)->seq_lost_records, 7);
	/* sFlow: the datagram sequence of each agent and sub-agent; the agent
	 * in the datagram is the exporter, whatever the UDP source. */
	for (uint32_t i = 0; i < 3 + FLOW_SEQ_HOLD; i++) {
		sf_hdr(b, "198.51.100.99", 2, 0);
		patch32(b, 16, i < 2 ? i : i + 2);   /* 2 and 3 lost */
		assert_int_equal(dec_from(f, FLOW_FMT_SFLOW, i % 2 ? "192.0.2.5" : "192.0.2.6",
					  b->b, b->n), 0);
	}
	assert_int_equal(st(f)->seq_lost_datagrams, 2);
	assert_int_equal(seq_of(f, "198.51.100.99", 2).lost, 2);
	assert_int_equal(seq_of(f, "198.51.100.99", 2).format, FLOW_FMT_SFLOW);
	free(b);
	fx_free(f);
}

/* The exporter's view for the API (flow_decoder_seq_visit): records,
 * the sampling of the last record, live templates; lost_interval is left
 * to the periodic report. */
static void test_seq_visit(void **state)
{
	struct flow_cfg cfg = { .template_timeout_ms = 1000, .default_rate = 64 };
	struct fx *f = fx_new(&cfg);
	struct seq_got g = { .n = 0 };
	uint32_t seq = 100, up = 5000000;

	(void)state;
	ipfix_seq(f, "192.0.2.3", 0, 3, 1);
	ipfix_seq(f, "192.0.2.3", 3, 2, 0);
	flow_decoder_seq_visit(f->d, RECV_MS + 500, on_seq, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.s[0].records, 5);
	assert_int_equal(g.s[0].datagrams, 2);
	assert_int_equal(g.s[0].sampling, 64);
	assert_int_equal(g.s[0].sampling_default, 1);
	assert_int_equal(g.s[0].templates, 1);
	/* Past the template timeout the template is not live any more, though
	 * still held until data asks for it or the sweep comes. */
	g.n = 0;
	flow_decoder_seq_visit(f->d, RECV_MS + 5000, on_seq, &g);
	assert_int_equal(g.s[0].templates, 0);
	assert_int_equal(seq_of(f, "192.0.2.3", 9).templates, 1);
	/* v9 without data: no records, no rate yet; a loss stays in
	 * lost_interval until the periodic walk. */
	nf9_seq(f, "192.0.2.1", 7, seq++, up += 100);
	seq += 2;
	for (int i = 0; i < FLOW_SEQ_HOLD + 1; i++)
		nf9_seq(f, "192.0.2.1", 7, seq++, up += 100);
	g.n = 0;
	flow_decoder_seq_visit(f->d, RECV_MS, on_seq, &g);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.s[0].format, FLOW_FMT_NF9);   /* most recent first */
	assert_int_equal(g.s[0].lost, 2);
	assert_int_equal(g.s[0].lost_interval, 2);
	assert_int_equal(g.s[0].records, 0);
	assert_int_equal(g.s[0].sampling, 0);
	assert_int_equal(g.s[0].templates, 0);
	assert_int_equal(seq_of(f, "192.0.2.1", 7).lost_interval, 2);
	assert_int_equal(seq_of(f, "192.0.2.1", 7).lost_interval, 0);
	fx_free(f);
}

static void test_seq_bounds(void **state)
{
	struct flow_cfg cfg = { .max_sources = 4 };
	struct fx *f = fx_new(&cfg);
	char from[24];

	(void)state;
	/* Spoofed exporters: the state stays bounded, the oldest go. */
	for (unsigned i = 0; i < 100; i++) {
		snprintf(from, sizeof(from), "10.0.%u.%u", i / 200, 1 + i % 200);
		nf9_seq(f, from, 1, i * 7919u, 1000);
		assert_true(flow_decoder_seq_count(f->d) <= 4);
	}
	assert_int_equal(flow_decoder_seq_count(f->d), 4);
	assert_int_equal(st(f)->seq_evicted, 96);
	assert_int_equal(st(f)->seq_lost_datagrams, 0);
	fx_free(f);
}

/* ---- template ageing ---- */

/* Decodes b from 192.0.2.9 received at recv_ms (the decoder's only clock). */
static int dec_at(struct fx *f, int64_t recv_ms, const struct pb *b)
{
	struct flow_ip ip;
	uint8_t *c = malloc(b->n ? b->n : 1);
	int rc;

	assert_non_null(c);
	assert_int_equal(flow_ip_parse(&ip, "192.0.2.9"), 0);
	memcpy(c, b->b, b->n);
	f->g.n = 0;
	rc = flow_decode(f->d, FLOW_FMT_AUTO, &ip, recv_ms, c, b->n);
	free(c);
	return rc;
}

static void nf9_data_only(struct pb *b, unsigned id)
{
	size_t s;

	nf9_hdr(b, 3600000, T0, 5);
	s = set_begin(b, id);
	nf9_rec_v4(b, "198.51.100.1", "203.0.113.5", 55000, 443, 6, 0x12, 1500, 3,
		   3590000, 3599000, 0);
	set_end(b, s);
}

static void test_template_ageing(void **state)
{
	const int64_t min = 60000, t0 = RECV_MS;
	struct flow_cfg cfg = { .template_timeout_ms = 30 * min };
	struct fx *f = fx_new(&cfg);
	struct pb *b = calloc(1, sizeof(*b));
	size_t mem;

	(void)state;
	assert_non_null(b);
	/* NetFlow v9: a template at t0, data up to the timeout decodes. */
	nf9_hdr(b, 3600000, T0, 5);
	nf9_tmpl_v4(b, 256);
	assert_int_equal(dec_at(f, t0, b), 0);
	nf9_data_only(b, 256);
	assert_int_equal(dec_at(f, t0 + 30 * min, b), 0);
	assert_int_equal(f->g.n, 1);
	/* Using a template does not keep it alive; being sent again does. */
	nf9_hdr(b, 3600000, T0, 5);
	nf9_tmpl_v4(b, 256);
	assert_int_equal(dec_at(f, t0 + 20 * min, b), 0);
	assert_int_equal(st(f)->templates_refreshed, 1);
	nf9_data_only(b, 256);
	assert_int_equal(dec_at(f, t0 + 45 * min, b), 0);
	assert_int_equal(f->g.n, 1);
	assert_int_equal(st(f)->templates_expired, 0);
	/* Past the timeout from its last sending: expired, data dropped and
	 * counted, its memory given back, and it stays gone. */
	mem = flow_decoder_memory(f->d);
	assert_int_equal(dec_at(f, t0 + 50 * min + 1, b), 0);
	assert_true(flow_decoder_memory(f->d) < mem);
	assert_int_equal(f->g.n, 0);
	assert_int_equal(st(f)->templates_expired, 1);
	assert_int_equal(st(f)->no_template_sets, 1);
	assert_int_equal(dec_at(f, t0 + 50 * min + 2, b), 0);
	assert_int_equal(st(f)->templates_expired, 1);
	assert_int_equal(st(f)->no_template_sets, 2);
	/* Sent again: decodes again. */
	nf9_hdr(b, 3600000, T0, 5);
	nf9_tmpl_v4(b, 256);
	assert_int_equal(dec_at(f, t0 + 60 * min, b), 0);
	nf9_data_only(b, 256);
	assert_int_equal(dec_at(f, t0 + 61 * min, b), 0);
	assert_int_equal(f->g.n, 1);

	/* IPFIX, and the sweep that frees what nobody looks up any more. */
	ipfix_hdr(b, T0, 9);
	{
		size_t s = set_begin(b, 2);

		ipfix_tmpl_simple(b, 300);
		ipfix_tmpl_simple(b, 301);
		set_end(b, s);
	}
	ipfix_end(b);
	assert_int_equal(dec_at(f, t0 + 100 * min, b), 0);
	ipfix_hdr(b, T0, 9);
	ipfix_data_simple(b, 300, 7);
	ipfix_end(b);
	assert_int_equal(dec_at(f, t0 + 129 * min, b), 0);
	assert_int_equal(f->g.n, 1);
	/* The v9 template, last sent at 60 min, goes; then both IPFIX ones. */
	assert_int_equal(flow_decoder_expire(f->d, t0 + 129 * min), 1);
	mem = flow_decoder_memory(f->d);
	assert_int_equal(flow_decoder_expire(f->d, t0 + 131 * min), 2);
	assert_int_equal(st(f)->templates_expired, 4);
	assert_true(flow_decoder_memory(f->d) < mem);
	assert_int_equal(dec_at(f, t0 + 131 * min, b), 0);
	assert_int_equal(f->g.n, 0);
	fx_free(f);

	/* A negative timeout: templates never expire. */
	cfg.template_timeout_ms = -1;
	f = fx_new(&cfg);
	nf9_hdr(b, 3600000, T0, 5);
	nf9_tmpl_v4(b, 256);
	assert_int_equal(dec_at(f, t0, b), 0);
	nf9_data_only(b, 256);
	assert_int_equal(dec_at(f, t0 + 10000 * min, b), 0);
	assert_int_equal(f->g.n, 1);
	assert_int_equal(flow_decoder_expire(f->d, t0 + 10000 * min), 0);
	fx_free(f);

	/* The default is FLOW_DEF_TEMPLATE_TIMEOUT_MS. */
	f = fx_new(NULL);
	nf9_hdr(b, 3600000, T0, 5);
	nf9_tmpl_v4(b, 256);
	assert_int_equal(dec_at(f, t0, b), 0);
	nf9_data_only(b, 256);
	assert_int_equal(dec_at(f, t0 + FLOW_DEF_TEMPLATE_TIMEOUT_MS, b), 0);
	assert_int_equal(f->g.n, 1);
	assert_int_equal(dec_at(f, t0 + FLOW_DEF_TEMPLATE_TIMEOUT_MS + 1, b), 0);
	assert_int_equal(f->g.n, 0);
	assert_int_equal(st(f)->templates_expired, 1);
	fx_free(f);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nf5),
		cmocka_unit_test(test_nf5_hostile),
		cmocka_unit_test(test_nf9),
		cmocka_unit_test(test_nf9_sources),
		cmocka_unit_test(test_nf9_no_template),
		cmocka_unit_test(test_nf9_options_sampling),
		cmocka_unit_test(test_ipfix),
		cmocka_unit_test(test_ipfix_times),
		cmocka_unit_test(test_ipfix_withdrawal),
		cmocka_unit_test(test_ipfix_varlen_enterprise),
		cmocka_unit_test(test_ipfix_options_sampling),
		cmocka_unit_test(test_sflow_v4),
		cmocka_unit_test(test_sflow_v6),
		cmocka_unit_test(test_sflow_hostile),
		cmocka_unit_test(test_hostile_sets),
		cmocka_unit_test(test_hostile_templates),
		cmocka_unit_test(test_bounds_templates),
		cmocka_unit_test(test_bounds_sources),
		cmocka_unit_test(test_pkt_decode),
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_tmpl_paths_agree),
		cmocka_unit_test(test_seq_nf9),
		cmocka_unit_test(test_seq_wrap_restart),
		cmocka_unit_test(test_seq_ipfix),
		cmocka_unit_test(test_seq_ipfix_unknown_template),
		cmocka_unit_test(test_seq_nf5_sflow),
		cmocka_unit_test(test_seq_visit),
		cmocka_unit_test(test_seq_bounds),
		cmocka_unit_test(test_template_ageing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
