/*
 * Shared by the DDoS detector unit tests (test_ddos, test_ddos_reload): a
 * ddos: section from YAML text, an address from its text, and a record. Header-only,
 * included by each test executable once, after cmocka.h.
 */
#ifndef MAMORI_DDOS_TEST_H
#define MAMORI_DDOS_TEST_H

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/config.h"
#include "ddos/ddos_conf.h"

static inline int load(const char *yaml, struct ddos_config *cfg, struct buf *err)
{
	struct conf_doc doc = { 0 };
	int r;

	buf_reset(err);
	r = conf_parse("t.yaml", yaml, strlen(yaml), &doc, err);
	if (r == 0)
		r = ddos_config_load(&doc, cfg, err);
	conf_doc_fini(&doc);
	buf_cstr(err);
	return r;
}

static inline struct flow_ip ip(const char *s)
{
	struct flow_ip a;

	assert_int_equal(flow_ip_parse(&a, s), 0);
	return a;
}

/* One unsampled record from exporter 192.0.2.1, to destination port 40000. */
static inline struct flow_rec rec(const char *src, const char *dst, uint8_t proto, uint16_t sport,
				  uint64_t bytes, uint64_t pkts, int64_t start_ms, int64_t end_ms)
{
	struct flow_rec r;

	memset(&r, 0, sizeof(r));
	r.exporter = ip("192.0.2.1");
	r.src = ip(src);
	r.dst = ip(dst);
	r.proto = proto;
	r.sport = sport;
	r.dport = 40000;
	r.sampling = 1;
	r.bytes = bytes;
	r.packets = pkts;
	r.start_ms = start_ms;
	r.end_ms = end_ms;
	return r;
}

typedef void (*ddos_test_add_fn)(void *arg, const struct flow_rec *r);

/* Second t of a SYN carpet over a group: 8 /24s of 198.18.0.0/16 x 50
 * hosts x 500 pps = 200 kpps, 25 kpps a /24. */
static inline void ddos_test_group_carpet(int64_t t, ddos_test_add_fn add, void *arg)
{
	for (int n = 0; n < 8; n++)
		for (int h = 1; h <= 50; h++) {
			char dst[32];
			struct flow_rec r;
			snprintf(dst, sizeof(dst), "198.18.%d.%d", n, h);
			r = rec("192.0.2.9", dst, 6, 1234, 500 * 60, 500, t * 1000, t * 1000 + 999);
			r.tcp_flags = 0x02;
			add(arg, &r);
		}
}

/* Second t of a DNS carpet: 254 hosts of net ("203.0.113." or
 * "2001:db8:1::") at 2 kpps each, from sources that move each second. */
static inline void ddos_test_carpet(const char *net, int64_t t, ddos_test_add_fn add, void *arg)
{
	int v6 = strchr(net, ':') != NULL;

	for (int h = 1; h <= 254; h++) {
		char dst[64], src[64];
		struct flow_rec r;
		snprintf(dst, sizeof(dst), v6 ? "%s%x" : "%s%d", net, h);
		snprintf(src, sizeof(src), "198.51.100.%d", 1 + (h * 7 + (int)t) % 250);
		r = rec(src, dst, 17, 53, 2000 * 512, 2000, t * 1000, t * 1000 + 999);
		add(arg, &r);
	}
}

#endif
