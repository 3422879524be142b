/*
 * Mirror-port capture for the DDoS collector: an AF_PACKET socket on one
 * interface with a TPACKET_V3 memory-mapped receive ring, read by the
 * collector thread (collect.c) when poll says a block is ready. Every
 * packet becomes one flow record of one packet at its wire length
 * (flow_pkt_decode() reads the headers), counted by the detector exactly
 * like a NetFlow or sFlow record.
 *
 * Why TPACKET_V3: the kernel fills whole blocks of packets and hands a
 * block over at once (or when it times out), so a busy mirror port costs
 * one poll per block instead of one system call per packet, and nothing is
 * copied twice. Why a kernel filter (classic BPF): packets the host sent
 * (PACKET_OUTGOING; on `lo` every packet is seen going out and coming in)
 * and, with 1-in-N sampling, the packets not taken never reach the ring,
 * and only the first bytes of each packet (the headers) are copied.
 *
 * The socket needs CAP_NET_RAW: `mamori serve` opens it before it drops
 * its privileges (src/cli/privs.c); the mapped ring stays usable after.
 */
#ifndef MAMORI_DDOS_CAPTURE_H
#define MAMORI_DDOS_CAPTURE_H

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "ddos/flow.h"

#define CAPTURE_SNAPLEN 256        /* bytes of each packet copied: the headers */
#define CAPTURE_BLOCK_SIZE (1u << 20)
#define CAPTURE_FILTER_MAX 8       /* instructions of the kernel filter */

/* What the capture saw; monotonic counters. */
struct ddos_capture_stats {
	uint64_t packets;          /* read from the ring */
	uint64_t bytes;            /* their wire length */
	uint64_t records;          /* handed to the callback */
	uint64_t not_ip;           /* neither IPv4 nor IPv6 (ARP, LLDP, ...) */
	uint64_t short_pkts;       /* headers cut before the addresses */
	uint64_t bad_blocks;       /* a ring block whose layout did not add up */
	uint64_t blocks;           /* ring blocks read */
	uint64_t kernel_packets;   /* passed the filter (PACKET_STATISTICS tp_packets) */
	uint64_t kernel_drops;     /* lost on a full ring (tp_drops) */
	uint64_t kernel_freezes;   /* times the ring was full (tp_freeze_q_cnt) */
};

struct ddos_capture;

/* Opens the capture on interface ifname, taking 1 in `sampling` packets
 * (>= 1; the kernel chooses at random), with a ring of about ring_bytes
 * (rounded to whole 1 MiB blocks, at least 2). NULL with a message in err
 * when the interface does not exist, the process may not capture
 * (CAP_NET_RAW), or the ring cannot be set up. Owner: the caller,
 * ddos_capture_free(). */
struct ddos_capture *ddos_capture_open(const char *ifname, uint32_t sampling, size_t ring_bytes,
				       struct buf *err);
void ddos_capture_free(struct ddos_capture *c);
/* The socket, to wait on with poll or epoll (readable: a block is ready). */
int ddos_capture_fd(const struct ddos_capture *c);
const char *ddos_capture_ifname(const struct ddos_capture *c);
uint32_t ddos_capture_sampling(const struct ddos_capture *c);

/* Reads every ready block (at most one ring's worth), hands each record to
 * fn and gives the blocks back to the kernel. now_ms is the wall clock:
 * packet times later than it or older than a minute are replaced by it.
 * Returns the records handed out. Not thread-safe: one reader. */
size_t ddos_capture_read(struct ddos_capture *c, int64_t now_ms, flow_rec_fn fn, void *arg);
/* Adds the kernel's counters since the last call (PACKET_STATISTICS
 * resets them on read) to the stats. */
void ddos_capture_poll_stats(struct ddos_capture *c);
const struct ddos_capture_stats *ddos_capture_stats(const struct ddos_capture *c);

/* ---- pure pieces (the unit tests and the fuzzer call them) ---- */

/* How to read the packets of a block. */
struct ddos_capture_ctx {
	int ethernet;              /* link header is Ethernet (or lo's); else raw IP at tp_net */
	uint32_t sampling;         /* 1-in-N, put in every record */
	uint32_t ifindex;          /* put in in_if and domain */
	int64_t now_ms;
};

/* Walks one TPACKET_V3 block of blksz bytes (its descriptor, then the
 * packets the descriptor counts, each found by tp_next_offset) and hands
 * one record per IP packet to fn. The layout is checked as if hostile:
 * every offset and length must stay inside the block. Returns the packets
 * walked, or M_EPARSE when the layout broke off (those walked before still
 * count). Does not look at or change the block's status. */
int ddos_capture_block(const uint8_t *blk, size_t blksz, const struct ddos_capture_ctx *ctx,
		       struct ddos_capture_stats *st, flow_rec_fn fn, void *arg);

/* Writes the kernel filter into out (at least CAPTURE_FILTER_MAX
 * instructions): drop what the host sent, keep 1 in `sampling` of the rest
 * at random, copy snaplen bytes of each. Returns the instruction count. */
size_t ddos_capture_filter(uint32_t sampling, uint32_t snaplen, struct sock_filter *out);

#endif
