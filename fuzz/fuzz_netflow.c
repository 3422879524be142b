/*
 * libFuzzer target for the NetFlow v5 and v9 decoders (src/ddos/flow_nf5.c,
 * flow_nf9.c, flow_tmpl.c); the body is fuzz_flow_tmpl.h.
 */
#define FUZZ_FMT FLOW_FMT_NETFLOW
#include "fuzz_flow_tmpl.h"
