/*
 * libFuzzer target for the IPFIX decoder (src/ddos/flow_ipfix.c,
 * flow_tmpl.c); the body is fuzz_flow_tmpl.h.
 */
#define FUZZ_FMT FLOW_FMT_IPFIX
#include "fuzz_flow_tmpl.h"
