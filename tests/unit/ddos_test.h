/*
 * Shared by the DDoS detector unit tests (test_ddos, test_ddos_reload): a
 * ddos: section from YAML text, and an address from its text. Header-only,
 * included by each test executable once, after cmocka.h.
 */
#ifndef MAMORI_DDOS_TEST_H
#define MAMORI_DDOS_TEST_H

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

#endif
