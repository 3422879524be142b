/*
 * Unit tests for the pure parts of mirror-port capture (src/ddos/capture.c):
 * the kernel filter, run here by a small classic-BPF interpreter for the
 * few instructions it uses (so "outgoing is dropped, 1 in N is kept, the
 * headers are copied" is checked without a socket), and the walk over a
 * TPACKET_V3 ring block, built here as the kernel lays it out: records
 * from Ethernet, VLAN-offloaded and raw-IP packets, skipped non-IP and
 * short packets, packet times clamped to the clock, and hostile layouts
 * (offsets and lengths past the block, a zero next offset, a packet count
 * that lies), every prefix of a block read from its own heap block.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <linux/if_packet.h>

#include "core/err.h"
#include "ddos/capture.h"

#define NOW_MS 1710072000123LL
#define BLK 4096

/* ---- a classic-BPF interpreter for the filter's instructions ---- */

static uint32_t run_filter(const struct sock_filter *f, size_t n, uint32_t pkttype, uint32_t rnd)
{
	uint32_t a = 0;

	for (size_t pc = 0; pc < n; pc++) {
		const struct sock_filter *i = &f[pc];

		switch (i->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (i->k == (uint32_t)(SKF_AD_OFF + SKF_AD_PKTTYPE))
				a = pkttype;
			else if (i->k == (uint32_t)(SKF_AD_OFF + SKF_AD_RANDOM))
				a = rnd;
			else
				fail_msg("load of k=%u", i->k);
			break;
		case BPF_ALU | BPF_MOD | BPF_K:
			assert_true(i->k > 0);
			a %= i->k;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += a == i->k ? i->jt : i->jf;
			break;
		case BPF_RET | BPF_K:
			return i->k;
		default:
			fail_msg("unexpected instruction %#x", i->code);
		}
	}
	fail_msg("the filter ran off its end");
	return 0;
}

static void test_filter(void **state)
{
	struct sock_filter f[CAPTURE_FILTER_MAX];
	size_t n;
	unsigned kept = 0;

	(void)state;
	/* No sampling: every packet but the host's own, 256 bytes of it. */
	n = ddos_capture_filter(1, 256, f);
	assert_true(n <= CAPTURE_FILTER_MAX);
	assert_int_equal(run_filter(f, n, PACKET_HOST, 7), 256);
	assert_int_equal(run_filter(f, n, PACKET_OTHERHOST, 7), 256);
	assert_int_equal(run_filter(f, n, PACKET_BROADCAST, 7), 256);
	assert_int_equal(run_filter(f, n, PACKET_OUTGOING, 7), 0);
	/* 1 in 10: exactly one random value in each run of ten is kept. */
	n = ddos_capture_filter(10, 128, f);
	assert_true(n <= CAPTURE_FILTER_MAX);
	for (uint32_t r = 1000; r < 2000; r++) {
		uint32_t v = run_filter(f, n, PACKET_OTHERHOST, r);

		assert_true(v == 0 || v == 128);
		kept += v != 0;
		assert_int_equal(v != 0, r % 10 == 0);
	}
	assert_int_equal(kept, 100);
	for (uint32_t r = 0; r < 20; r++)
		assert_int_equal(run_filter(f, n, PACKET_OUTGOING, r), 0);
}

/* ---- a ring block builder ---- */

struct blk {
	uint8_t b[BLK];
	size_t off;        /* where the next packet goes */
	size_t last;       /* header of the last packet, 0 = none */
	uint32_t num;
};

static void blk_init(struct blk *k)
{
	memset(k, 0, sizeof(*k));
	k->off = 48;   /* first packet after the descriptor, as the kernel aligns it */
}

static void blk_seal(struct blk *k)
{
	struct tpacket_block_desc bd;

	memset(&bd, 0, sizeof(bd));
	bd.version = TPACKET_V3;
	bd.hdr.bh1.block_status = TP_STATUS_USER;
	bd.hdr.bh1.num_pkts = k->num;
	bd.hdr.bh1.offset_to_first_pkt = 48;
	bd.hdr.bh1.blk_len = (uint32_t)k->off;
	memcpy(k->b, &bd, sizeof(bd));
}

/* Adds a packet whose captured bytes are p (cap of them), wire length len,
 * link header of mac_len bytes before the network header. */
static struct tpacket3_hdr *blk_add(struct blk *k, const uint8_t *p, size_t cap, uint32_t len,
				    unsigned mac_len, int64_t ms)
{
	struct tpacket3_hdr h;
	size_t mac = 64;   /* header, then the sockaddr_ll, as the kernel lays it out */

	assert_true(k->off + mac + cap + 16 <= BLK);
	memset(&h, 0, sizeof(h));
	h.tp_sec = (uint32_t)(ms / 1000);
	h.tp_nsec = (uint32_t)(ms % 1000) * 1000000u;
	h.tp_snaplen = (uint32_t)cap;
	h.tp_len = len;
	h.tp_mac = (uint16_t)mac;
	h.tp_net = (uint16_t)(mac + mac_len);
	h.tp_status = TP_STATUS_USER;
	if (k->last) {
		struct tpacket3_hdr prev;

		memcpy(&prev, k->b + k->last, sizeof(prev));
		prev.tp_next_offset = (uint32_t)(k->off - k->last);
		memcpy(k->b + k->last, &prev, sizeof(prev));
	}
	memcpy(k->b + k->off, &h, sizeof(h));
	memcpy(k->b + k->off + mac, p, cap);
	k->last = k->off;
	k->off = (k->off + mac + cap + 15) & ~(size_t)15;
	k->num++;
	return (struct tpacket3_hdr *)(k->b + k->last);
}

/* Ethernet + IPv4 + UDP from 192.0.2.1:sport to 127.0.0.77:40000. */
static size_t udp4(uint8_t *o, int ether, uint16_t sport)
{
	static const uint8_t ip[28] = {
		0x45, 0, 0, 28 + 100, 0, 0, 0, 0, 64, 17, 0, 0,
		192, 0, 2, 1, 127, 0, 0, 77,
		0, 0, 0x9c, 0x40, 0, 108, 0, 0,
	};
	size_t n = 0;

	if (ether) {
		memset(o, 0, 12);
		o[12] = 0x08;
		o[13] = 0x00;
		n = 14;
	}
	memcpy(o + n, ip, sizeof(ip));
	o[n + 20] = (uint8_t)(sport >> 8);
	o[n + 21] = (uint8_t)sport;
	return n + sizeof(ip);
}

/* Ethernet + IPv6 + TCP SYN from 2001:db8::1 to 2001:db8::2 port 443. */
static size_t tcp6(uint8_t *o)
{
	size_t n = 14;

	memset(o, 0, 14 + 40 + 20);
	o[12] = 0x86;
	o[13] = 0xdd;
	o[n] = 0x60;
	o[n + 5] = 20;
	o[n + 6] = 6;
	o[n + 7] = 64;
	o[n + 8] = 0x20; o[n + 9] = 0x01; o[n + 10] = 0x0d; o[n + 11] = 0xb8; o[n + 23] = 1;
	o[n + 24] = 0x20; o[n + 25] = 0x01; o[n + 26] = 0x0d; o[n + 27] = 0xb8; o[n + 39] = 2;
	n += 40;
	o[n] = 0xc3; o[n + 1] = 0x50;
	o[n + 2] = 0x01; o[n + 3] = 0xbb;
	o[n + 12] = 0x50;
	o[n + 13] = 0x02;
	return n + 20;
}

struct got {
	struct flow_rec r[16];
	size_t n;
};

static void on_rec(void *arg, const struct flow_rec *r)
{
	struct got *g = arg;

	assert_int_equal(r->packets, 1);
	assert_true(r->sampling >= 1);
	assert_true(r->start_ms == r->end_ms);
	if (g->n < 16)
		g->r[g->n] = *r;
	g->n++;
}

/* Walks k from its own heap block of exactly n bytes. */
static int walk(const struct blk *k, size_t n, const struct ddos_capture_ctx *ctx,
		struct ddos_capture_stats *st, struct got *g)
{
	uint8_t *c = malloc(n ? n : 1);
	int rc;

	assert_non_null(c);
	memcpy(c, k->b, n);
	g->n = 0;
	rc = ddos_capture_block(c, n, ctx, st, on_rec, g);
	free(c);
	return rc;
}

static void test_block(void **state)
{
	struct ddos_capture_ctx ctx = { 1, 4, 3, NOW_MS };
	struct ddos_capture_stats st;
	struct blk k;
	struct got g;
	uint8_t p[256];
	size_t n;
	char ip[FLOW_IP_STRLEN];
	struct tpacket3_hdr *h;
	static const uint8_t arp[42] = { [12] = 0x08, [13] = 0x06 };

	(void)state;
	blk_init(&k);
	n = udp4(p, 1, 11211);
	blk_add(&k, p, n, 14 + 128, 14, NOW_MS - 500);
	blk_add(&k, arp, sizeof(arp), 60, 14, NOW_MS - 400);        /* not IP */
	n = tcp6(p);
	blk_add(&k, p, n, 1514, 14, NOW_MS + 5000);                 /* from the future */
	n = udp4(p, 1, 53);
	blk_add(&k, p, 20, 200, 14, NOW_MS - 3 * 60000);            /* cut short; too old */
	n = udp4(p, 1, 123);
	h = blk_add(&k, p, n, 90, 14, NOW_MS - 100);
	h->tp_status |= TP_STATUS_VLAN_VALID;
	h->hv1.tp_vlan_tci = 0x2000 | 42;                           /* priority 1, VLAN 42 */
	blk_seal(&k);

	memset(&st, 0, sizeof(st));
	assert_int_equal(walk(&k, k.off, &ctx, &st, &g), 5);
	assert_int_equal(g.n, 3);
	assert_int_equal(st.packets, 5);
	assert_int_equal(st.records, 3);
	assert_int_equal(st.not_ip, 1);
	assert_int_equal(st.short_pkts, 1);
	assert_int_equal(st.bad_blocks, 0);
	assert_int_equal(st.bytes, 14 + 128 + 60 + 1514 + 200 + 90);

	assert_string_equal(flow_ip_str(&g.r[0].src, ip, sizeof(ip)), "192.0.2.1");
	assert_string_equal(flow_ip_str(&g.r[0].dst, ip, sizeof(ip)), "127.0.0.77");
	assert_int_equal(g.r[0].proto, 17);
	assert_int_equal(g.r[0].sport, 11211);
	assert_int_equal(g.r[0].dport, 40000);
	assert_int_equal(g.r[0].bytes, 14 + 128);
	assert_int_equal(g.r[0].sampling, 4);
	assert_int_equal(g.r[0].in_if, 3);
	assert_int_equal(g.r[0].start_ms, NOW_MS - 500);
	assert_int_equal(g.r[0].exporter.family, 0);

	assert_string_equal(flow_ip_str(&g.r[1].dst, ip, sizeof(ip)), "2001:db8::2");
	assert_int_equal(g.r[1].proto, 6);
	assert_int_equal(g.r[1].dport, 443);
	assert_int_equal(g.r[1].tcp_flags, 0x02);
	assert_int_equal(g.r[1].bytes, 1514);
	assert_int_equal(g.r[1].start_ms, NOW_MS);                  /* clamped */

	assert_int_equal(g.r[2].sport, 123);
	assert_int_equal(g.r[2].vlan, 42);
}

static void test_block_raw_ip(void **state)
{
	struct ddos_capture_ctx ctx = { 0, 1, 9, NOW_MS };
	struct ddos_capture_stats st;
	struct blk k;
	struct got g;
	uint8_t p[256];
	size_t n;

	(void)state;
	/* A tunnel: no link header, the IP header at tp_net = tp_mac. */
	blk_init(&k);
	n = udp4(p, 0, 389);
	blk_add(&k, p, n, 128, 0, NOW_MS - 10);
	/* A link header the walk must skip by tp_net (a cooked header). */
	memset(p, 0xee, 16);
	n = udp4(p + 16, 0, 1900);
	blk_add(&k, p, 16 + n, 16 + 128, 16, NOW_MS - 10);
	blk_seal(&k);
	memset(&st, 0, sizeof(st));
	assert_int_equal(walk(&k, k.off, &ctx, &st, &g), 2);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.r[0].sport, 389);
	assert_int_equal(g.r[0].sampling, 1);
	assert_int_equal(g.r[0].domain, 9);
	assert_int_equal(g.r[1].sport, 1900);
	assert_int_equal(g.r[1].bytes, 16 + 128);
}

static void set_hdr(struct blk *k, size_t at, size_t field, uint32_t v, size_t width)
{
	if (width == 2) {
		uint16_t x = (uint16_t)v;
		memcpy(k->b + at + field, &x, 2);
	} else {
		memcpy(k->b + at + field, &v, 4);
	}
}

static void test_block_hostile(void **state)
{
	struct ddos_capture_ctx ctx = { 1, 1, 1, NOW_MS };
	struct ddos_capture_stats st;
	struct blk k, bad;
	struct got g;
	uint8_t p[256];
	size_t n, second;

	(void)state;
	blk_init(&k);
	n = udp4(p, 1, 11211);
	blk_add(&k, p, n, 142, 14, NOW_MS);
	second = k.off;
	blk_add(&k, p, n, 142, 14, NOW_MS);
	blk_seal(&k);

	/* Every prefix of the block: never a read past it, never more than
	 * two records. */
	for (size_t cut = 0; cut <= k.off; cut++) {
		memset(&st, 0, sizeof(st));
		int rc = walk(&k, cut, &ctx, &st, &g);

		assert_true(g.n <= 2);
		assert_true(rc == M_EPARSE || rc == 2);
		assert_int_equal(st.bad_blocks, rc == M_EPARSE);
	}

	/* A count that lies: the second packet has no next one. */
	bad = k;
	bad.num = 1000000;
	blk_seal(&bad);
	memset(&st, 0, sizeof(st));
	assert_int_equal(walk(&bad, bad.off, &ctx, &st, &g), M_EPARSE);
	assert_int_equal(g.n, 2);

	/* A zero next offset would walk in place forever. */
	bad = k;
	set_hdr(&bad, 48, offsetof(struct tpacket3_hdr, tp_next_offset), 0, 4);
	memset(&st, 0, sizeof(st));
	assert_int_equal(walk(&bad, bad.off, &ctx, &st, &g), M_EPARSE);
	assert_int_equal(g.n, 1);

	/* tp_mac past the block, inside the header, and a snap length past
	 * the block. */
	bad = k;
	set_hdr(&bad, second, offsetof(struct tpacket3_hdr, tp_mac), 0xfff0, 2);
	assert_int_equal(walk(&bad, bad.off, &ctx, &st, &g), M_EPARSE);
	bad = k;
	set_hdr(&bad, second, offsetof(struct tpacket3_hdr, tp_mac), 4, 2);
	assert_int_equal(walk(&bad, bad.off, &ctx, &st, &g), M_EPARSE);
	bad = k;
	set_hdr(&bad, second, offsetof(struct tpacket3_hdr, tp_snaplen), 0x7fffffff, 4);
	assert_int_equal(walk(&bad, bad.off, &ctx, &st, &g), M_EPARSE);
	assert_int_equal(g.n, 1);

	/* First packet inside the descriptor, or past the block. */
	bad = k;
	memcpy(&bad.b[offsetof(struct tpacket_block_desc, hdr.bh1.offset_to_first_pkt)],
	       &(uint32_t){ 8 }, 4);
	assert_int_equal(walk(&bad, bad.off, &ctx, &st, &g), M_EPARSE);
	memcpy(&bad.b[offsetof(struct tpacket_block_desc, hdr.bh1.offset_to_first_pkt)],
	       &(uint32_t){ 0xffffff00 }, 4);
	assert_int_equal(walk(&bad, bad.off, &ctx, &st, &g), M_EPARSE);

	/* Raw IP with tp_net before tp_mac, or past the snap length. */
	ctx.ethernet = 0;
	bad = k;
	set_hdr(&bad, second, offsetof(struct tpacket3_hdr, tp_net), 2, 2);
	assert_int_equal(walk(&bad, bad.off, &ctx, &st, &g), M_EPARSE);
	set_hdr(&bad, second, offsetof(struct tpacket3_hdr, tp_net), 64 + (uint32_t)n + 1, 2);
	assert_int_equal(walk(&bad, bad.off, &ctx, &st, &g), M_EPARSE);

	/* An empty block is fine. */
	blk_init(&bad);
	blk_seal(&bad);
	memset(&st, 0, sizeof(st));
	assert_int_equal(walk(&bad, 48, &ctx, &st, &g), 0);
	assert_int_equal(st.bad_blocks, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_block),
		cmocka_unit_test(test_block_raw_ip),
		cmocka_unit_test(test_block_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
