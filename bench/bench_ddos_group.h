/*
 * Shared by the DDoS benchmarks: the protected group bench/ddos_compare.sh
 * gives mamori (20 kpps and 1 Gbit/s per host, no class thresholds), as
 * YAML lines under "groups:".
 */
#ifndef MAMORI_BENCH_DDOS_GROUP_H
#define MAMORI_BENCH_DDOS_GROUP_H

#define BENCH_COMPARE_GROUP                          \
	"    - name: customers\n"                    \
	"      prefixes: [203.0.113.0/24]\n"         \
	BENCH_COMPARE_THRESHOLDS

/* The same group's settings after its prefixes (bench_flow -p protects
 * another prefix with them). */
#define BENCH_COMPARE_THRESHOLDS                     \
	"      baseline: 0\n"                        \
	"      thresholds:\n"                        \
	"        total: { bps: 1G, pps: 20k }\n"     \
	"        syn: { pps: off }\n"                \
	"        rst: { pps: off }\n"                \
	"        icmp: { pps: off }\n"               \
	"        fragment: { pps: off }\n"           \
	"        amplification: { bps: off }\n"

#endif
