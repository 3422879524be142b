/*
 * Mirror-port capture (capture.h): the AF_PACKET socket, its TPACKET_V3
 * ring, the kernel filter, and the walk over a ring block that turns
 * packets into flow records.
 *
 * The socket is made with protocol 0, so it receives nothing until the
 * ring and the filter are in place and it is bound to the interface: no
 * packet of another interface, and none unfiltered, is ever read. The
 * interface is put in promiscuous mode through a socket membership (a
 * mirror port delivers frames addressed to other hosts), which the kernel
 * undoes when the socket closes, so a crash leaves no interface changed.
 *
 * The ring is shared with the kernel: a block belongs to us while its
 * status has TP_STATUS_USER, and is handed back by storing
 * TP_STATUS_KERNEL after we are done reading it (release order, so the
 * kernel never overwrites what we still read). Inside a block, the kernel
 * is trusted for the status word only: the walk checks every offset and
 * length against the block, as a parser of network input does.
 */
#include "ddos/capture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"

#define CAPTURE_FRAME_SIZE 2048      /* TPACKET_V3 needs one; blocks hold many */
#define CAPTURE_MIN_BLOCKS 2
#define CAPTURE_MAX_BLOCKS 1024
#define CAPTURE_RETIRE_MS 50         /* a partly filled block is handed over after this */
#define CAPTURE_MAX_AGE_MS 60000

struct ddos_capture {
	int fd;
	char ifname[IF_NAMESIZE];
	uint8_t *ring;
	size_t ring_len;
	uint32_t bsize, nblocks, cur;
	struct ddos_capture_ctx ctx;
	struct ddos_capture_stats st;
};

/* ---- pure pieces ---- */

size_t ddos_capture_filter(uint32_t sampling, uint32_t snaplen, struct sock_filter *out)
{
	size_t n = 0;
	int sample = sampling > 1;

	/* Drop what this host sent: on lo every packet passes twice. */
	out[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE);
	out[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING,
						sample ? 4 : 1, 0);
	if (sample) {
		/* A 32-bit random number per packet; keep it when it is 0 mod N. */
		out[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
							SKF_AD_OFF + SKF_AD_RANDOM);
		out[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, sampling);
		out[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1);
	}
	out[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, snaplen);
	out[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
	return n;
}

/* One packet: its captured bytes (cap of them) and its wire length. */
static void capture_packet(const struct ddos_capture_ctx *ctx, const struct tpacket3_hdr *h,
			   const uint8_t *p, size_t cap, struct ddos_capture_stats *st,
			   flow_rec_fn fn, void *arg)
{
	int64_t ms = (int64_t)h->tp_sec * 1000 + h->tp_nsec / 1000000;
	struct flow_rec r;
	int rc;

	st->packets++;
	st->bytes += h->tp_len;
	if (ms > ctx->now_ms || ms <= ctx->now_ms - CAPTURE_MAX_AGE_MS)
		ms = ctx->now_ms;
	rc = flow_pkt_record(p, cap, ctx->ethernet ? FLOW_LINK_ETHERNET : FLOW_LINK_IP, h->tp_len,
			     ctx->sampling, ms, &r);
	if (rc == M_EUNSUPP) {
		st->not_ip++;
		return;
	}
	if (rc != 0) {
		st->short_pkts++;
		return;
	}
	r.in_if = ctx->ifindex;
	r.domain = ctx->ifindex;
	/* The NIC took the tag off (VLAN offload): the kernel kept it. */
	if (!r.vlan && (h->tp_status & TP_STATUS_VLAN_VALID))
		r.vlan = h->hv1.tp_vlan_tci & 0x0fff;
	st->records++;
	fn(arg, &r);
}

int ddos_capture_block(const uint8_t *blk, size_t blksz, const struct ddos_capture_ctx *ctx,
		       struct ddos_capture_stats *st, flow_rec_fn fn, void *arg)
{
	struct tpacket_block_desc bd;
	uint32_t num;
	size_t off;
	int walked = 0;

	if (blksz < sizeof(bd))
		goto bad;
	memcpy(&bd, blk, sizeof(bd));
	num = bd.hdr.bh1.num_pkts;
	off = bd.hdr.bh1.offset_to_first_pkt;
	/* Each packet moves off forward by at least a header, so the walk
	 * ends within the block whatever num_pkts claims. */
	for (uint32_t i = 0; i < num; i++) {
		struct tpacket3_hdr h;
		size_t left, start, cap;

		if (off < sizeof(bd) || off > blksz || blksz - off < sizeof(h))
			goto bad;
		memcpy(&h, blk + off, sizeof(h));
		left = blksz - off;
		if (h.tp_mac < sizeof(h) || h.tp_mac > left || h.tp_snaplen > left - h.tp_mac)
			goto bad;
		start = h.tp_mac;
		cap = h.tp_snaplen;
		if (!ctx->ethernet) {
			/* No link header we read: the IP header is at tp_net. */
			size_t hdr = (size_t)h.tp_net - h.tp_mac;

			if (h.tp_net < h.tp_mac || hdr > h.tp_snaplen)
				goto bad;
			start = h.tp_net;
			cap = h.tp_snaplen - hdr;
		}
		capture_packet(ctx, &h, blk + off + start, cap, st, fn, arg);
		walked++;
		if (i + 1 < num) {
			if (h.tp_next_offset < sizeof(h) || h.tp_next_offset > left)
				goto bad;
			off += h.tp_next_offset;
		}
	}
	return walked;
bad:
	st->bad_blocks++;
	return M_EPARSE;
}

/* ---- the socket ---- */

/* Says what failed, frees c. */
static void capture_fail(struct ddos_capture *c, struct buf *err, const char *what, int e)
{
	buf_printf(err, "ddos.capture_interface: cannot capture on %s: %s: %s%s", c->ifname, what,
		   strerror(e), e == EPERM || e == EACCES ?
		   " (capture needs root or CAP_NET_RAW: start `mamori serve` as root; it opens the"
		   " socket before it drops privileges)" : "");
	ddos_capture_free(c);
}

struct ddos_capture *ddos_capture_open(const char *ifname, uint32_t sampling, size_t ring_bytes,
				       struct buf *err)
{
	struct sock_filter insn[CAPTURE_FILTER_MAX];
	struct sock_fprog prog;
	struct tpacket_req3 req;
	struct packet_mreq mr;
	struct sockaddr_ll sll;
	struct ifreq ifr;
	struct ddos_capture *c;
	unsigned ifindex;
	int v = TPACKET_V3;
	size_t nb;

	if (!ifname || !ifname[0] || strlen(ifname) >= IF_NAMESIZE) {
		buf_printf(err, "ddos.capture_interface: bad interface name '%.64s'",
			   ifname ? ifname : "");
		return NULL;
	}
	ifindex = if_nametoindex(ifname);
	if (ifindex == 0) {
		buf_printf(err, "ddos.capture_interface: no interface '%s' on this host (see `ip link`)",
			   ifname);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		buf_puts(err, "ddos.capture_interface: out of memory");
		return NULL;
	}
	c->fd = -1;
	c->ring = MAP_FAILED;
	snprintf(c->ifname, sizeof(c->ifname), "%s", ifname);
	c->ctx.ifindex = ifindex;
	c->ctx.sampling = sampling ? sampling : 1;
	c->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		capture_fail(c, err, "socket", errno);
		return NULL;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(c->fd, SIOCGIFHWADDR, &ifr) < 0) {
		capture_fail(c, err, "SIOCGIFHWADDR", errno);
		return NULL;
	}
	/* lo shows an Ethernet header of zeros; tunnels and the like show
	 * none we read, and their IP header is found at tp_net. */
	c->ctx.ethernet = ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER ||
			  ifr.ifr_hwaddr.sa_family == ARPHRD_LOOPBACK;
	if (setsockopt(c->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0) {
		capture_fail(c, err, "PACKET_VERSION TPACKET_V3", errno);
		return NULL;
	}
	prog.len = (unsigned short)ddos_capture_filter(c->ctx.sampling, CAPTURE_SNAPLEN, insn);
	prog.filter = insn;
	if (setsockopt(c->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0) {
		capture_fail(c, err, "SO_ATTACH_FILTER", errno);
		return NULL;
	}
	nb = ring_bytes / CAPTURE_BLOCK_SIZE;
	nb = nb < CAPTURE_MIN_BLOCKS ? CAPTURE_MIN_BLOCKS : nb > CAPTURE_MAX_BLOCKS ?
	     CAPTURE_MAX_BLOCKS : nb;
	memset(&req, 0, sizeof(req));
	req.tp_block_size = CAPTURE_BLOCK_SIZE;
	req.tp_block_nr = (unsigned)nb;
	req.tp_frame_size = CAPTURE_FRAME_SIZE;
	req.tp_frame_nr = (unsigned)(nb * (CAPTURE_BLOCK_SIZE / CAPTURE_FRAME_SIZE));
	req.tp_retire_blk_tov = CAPTURE_RETIRE_MS;
	if (setsockopt(c->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0) {
		capture_fail(c, err, "PACKET_RX_RING", errno);
		return NULL;
	}
	c->bsize = CAPTURE_BLOCK_SIZE;
	c->nblocks = (uint32_t)nb;
	c->ring_len = nb * CAPTURE_BLOCK_SIZE;
	c->ring = mmap(NULL, c->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, c->fd, 0);
	if (c->ring == MAP_FAILED) {
		capture_fail(c, err, "mmap of the ring", errno);
		return NULL;
	}
	memset(&mr, 0, sizeof(mr));
	mr.mr_ifindex = (int)ifindex;
	mr.mr_type = PACKET_MR_PROMISC;
	if (setsockopt(c->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
		capture_fail(c, err, "PACKET_MR_PROMISC", errno);
		return NULL;
	}
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = (int)ifindex;
	if (bind(c->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		capture_fail(c, err, "bind", errno);
		return NULL;
	}
	return c;
}

void ddos_capture_free(struct ddos_capture *c)
{
	if (!c)
		return;
	if (c->ring != MAP_FAILED && c->ring)
		munmap(c->ring, c->ring_len);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

int ddos_capture_fd(const struct ddos_capture *c)
{
	return c ? c->fd : -1;
}

const char *ddos_capture_ifname(const struct ddos_capture *c)
{
	return c ? c->ifname : "";
}

uint32_t ddos_capture_sampling(const struct ddos_capture *c)
{
	return c ? c->ctx.sampling : 1;
}

size_t ddos_capture_read(struct ddos_capture *c, int64_t now_ms, flow_rec_fn fn, void *arg)
{
	uint64_t before = c->st.records;

	c->ctx.now_ms = now_ms;
	/* At most one ring's worth, so the caller's clock is looked at
	 * again before the kernel can have refilled what we gave back. */
	for (uint32_t n = 0; n < c->nblocks; n++) {
		uint8_t *blk = c->ring + (size_t)c->cur * c->bsize;
		struct tpacket_block_desc *bd = (struct tpacket_block_desc *)blk;

		if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
			break;
		(void)ddos_capture_block(blk, c->bsize, &c->ctx, &c->st, fn, arg);
		c->st.blocks++;
		__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		c->cur = (c->cur + 1) % c->nblocks;
	}
	return (size_t)(c->st.records - before);
}

void ddos_capture_poll_stats(struct ddos_capture *c)
{
	struct tpacket_stats_v3 ks;
	socklen_t len = sizeof(ks);

	memset(&ks, 0, sizeof(ks));
	if (getsockopt(c->fd, SOL_PACKET, PACKET_STATISTICS, &ks, &len) < 0)
		return;
	/* tp_packets counts the dropped ones too. */
	c->st.kernel_packets += ks.tp_packets;
	c->st.kernel_drops += ks.tp_drops;
	c->st.kernel_freezes += ks.tp_freeze_q_cnt;
}

const struct ddos_capture_stats *ddos_capture_stats(const struct ddos_capture *c)
{
	return &c->st;
}
