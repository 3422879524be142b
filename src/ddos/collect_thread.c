/*
 * The collector threads (collect_int.h): each receives on its own socket
 * of every listener, decodes, hands each record to the shard that owns its
 * destination, counts its own shard's records and those the others hand
 * it, and ticks its detector.
 *
 * Why one socket per thread and listener (SO_REUSEPORT): the kernel then
 * spreads datagrams over the threads with no lock and no copy, and a
 * classic BPF program attached to the group picks the socket by the
 * exporter's address, so an exporter stays on one thread whatever source
 * ports it uses, and its template state (NetFlow v9, IPFIX) and sequence
 * numbers stay with one decoder. Without the program (an old kernel) the
 * kernel's own hash of addresses and ports does it; an exporter sending
 * from several ports may then reach two threads: each thread's decoder
 * keeps its own templates, so a data set whose template went to the other
 * thread waits, counted as such (no template), until the exporter sends
 * the template again, as after any loss. Nothing is shared.
 *
 * The hand-off (ddos_handoff, ddos_shard.c) has a ring per ordered pair of
 * threads: single producer, single consumer, so a push and a pop are a
 * load and a store each, never a lock nor a wait. Records are staged per
 * destination shard and pushed in batches; a full ring drops the rest of
 * the batch and counts it (mamori_ddos_handoff_drops_total): a stalled
 * receive loop would lose more in the kernel. A thread about to sleep in
 * epoll_wait says so, and a producer that has pushed to it writes its
 * eventfd.
 *
 * Why recvmmsg and a 32 MiB receive buffer: at 100k records/s the kernel's
 * default 212 KB buffer overflows on a busy machine (RECIPES.md); the
 * kernel's own drop count comes with every datagram (SO_RXQ_OVFL) and is
 * exported as a metric. Each datagram also carries the kernel's receive
 * time (SO_TIMESTAMPNS): sFlow samples are placed by it, so a thread that
 * was late to read (a busy machine) does not pile two seconds into one.
 *
 * Why UDP_GRO: the kernel may then hand over a run of datagrams of one
 * size from one sender (an exporter's full datagrams: NetFlow v5's 30
 * records, IPFIX filled to the MTU) as one buffer with their size in a
 * control message, instead of one socket-buffer each; take() cuts it and
 * decodes each datagram as if it came alone. The kernel counts a dropped
 * run as one drop (SO_RXQ_OVFL, /proc/net/udp): the sequence-loss counters
 * still count every datagram or record lost.
 *
 * Mirror-port capture (capture.c) is read by thread 0: its ring is one
 * more file descriptor in its epoll set, and its packets become records
 * handed off as the decoders' are. The ring is also looked at on every turn of
 * the loop (one load of a status word), so a wake-up the socket did not
 * give costs at most one tick.
 */
#include <errno.h>
#include <linux/filter.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "ddos/capture.h"
#include "ddos/collect_int.h"

#define DRAIN_MAX 4096           /* datagrams per listener before the clock is looked at */
#define TICK_US 100000           /* the detector is ticked ten times a second */
#define TICK_PENDING_US 10000    /* ... a hundred while a second waits for the groups' verdict */
#define PUBLISH_US 1000000       /* metrics from the decoders and the detector */
#define MINUTE_US (60 * 1000000LL)  /* sequence loss logged, expired templates freed */
#define SEQ_LOG_MAX 16           /* exporters logged per report; the rest summed */
#define TAKE_MAX 65536           /* records taken from one ring per turn */
#define EV_WAKE 2                /* epoll keys: 0 and 1 are the listeners */
#define EV_CAPTURE 3

#define KERNEL_DROPS_HELP \
	"Packets the kernel dropped on a full socket buffer (SO_RXQ_OVFL; a run of datagrams " \
	"merged by UDP GRO counts once) or capture ring (PACKET_STATISTICS tp_drops)"

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

static int64_t now_ms(void)
{
	return clock_now_us() / 1000;
}

/* ---- hand-off ---- */

void ddos_cthread_wake(struct ddos_cthread *t)
{
	uint64_t one = 1;

	if (t->wake >= 0 && write(t->wake, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_msg(LOG_WARN, "ddos", "event=wake_failed err=\"%s\"", strerror(errno));
}

/* The hand-off's callback: records went towards thread `to`. Pairs with
 * the fence in ddos_cthread_main: either that thread sees them before it
 * sleeps, or this one sees it asleep and wakes it. */
static void pushed(void *arg, unsigned to)
{
	struct ddos_cthread *u = &((struct ddos_collector *)arg)->t[to];

	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&u->sleeping, memory_order_relaxed) &&
	    atomic_exchange(&u->sleeping, 0))
		ddos_cthread_wake(u);
}

void ddos_cthread_flush(struct ddos_cthread *t)
{
	ddos_handoff_flush(&t->ho);
	ddos_handoff_take(&t->ho, TAKE_MAX);
}

/* ---- receiving ---- */

static void peer_ip(const struct sockaddr_storage *ss, struct flow_ip *out)
{
	memset(out, 0, sizeof(*out));
	if (ss->ss_family == AF_INET) {
		flow_ip_v4(out, (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr);
	} else if (ss->ss_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a))
			flow_ip_v4(out, a + 12);
		else
			flow_ip_v6(out, a);
	}
}

/* One datagram: decoded, its errors counted. */
static void take_one(struct listener *l, const struct flow_ip *from, int64_t recv_ms,
		     const uint8_t *p, size_t len)
{
	int rc, k;

	rc = flow_decode(l->dec, l->fmt, from, recv_ms, p, len);
	if (rc >= 0)
		return;
	k = rc == M_EPARSE ? ERR_PARSE : rc == M_EUNSUPP ? ERR_UNSUPP : rc == M_ELIMIT ? ERR_LIMIT :
	    ERR_OTHER;
	metric_add(l->m_err[k], 1);
	if (log_ratelimit(&l->log_last, 10 * 1000000LL)) {
		char ip[FLOW_IP_STRLEN];
		log_msg(LOG_WARN, "ddos", "event=decode_failed listener=%s exporter=%s bytes=%zu"
			" error=%s hint=\"counted in mamori_ddos_decode_errors_total; logged once per 10 s\"",
			l->name, flow_ip_str(from, ip, sizeof(ip)), len, ddos_err_kinds[k]);
	}
}

/* Message i of the batch: one datagram, or a run of them (UDP_GRO) cut at
 * the size the kernel gives. Returns the datagrams it held. */
static unsigned take(struct ddos_cthread *t, struct listener *l, int i, int64_t recv_ms)
{
	struct msghdr *h = &t->msgs[i].msg_hdr;
	size_t len = t->msgs[i].msg_len, seg = 0;
	const uint8_t *p = t->iov[i].iov_base;
	struct flow_ip from;
	unsigned n = 0;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm; cm = CMSG_NXTHDR(h, cm)) {
		if (cm->cmsg_level == IPPROTO_UDP && cm->cmsg_type == UDP_GRO &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
			int v;

			memcpy(&v, CMSG_DATA(cm), sizeof(v));
			seg = v > 0 ? (size_t)v : 0;
			continue;
		}
		if (cm->cmsg_level != SOL_SOCKET)
			continue;
		if (cm->cmsg_type == SO_RXQ_OVFL && cm->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
			memcpy(&l->ovfl, CMSG_DATA(cm), sizeof(uint32_t));
		} else if (cm->cmsg_type == SCM_TIMESTAMPNS &&
			   cm->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
			struct timespec ts;
			int64_t tm;

			memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
			tm = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
			/* Never later than now, never older than a minute. */
			if (tm <= recv_ms && tm > recv_ms - 60000)
				recv_ms = tm;
		}
	}
	metric_add(l->m_bytes, len);
	if (h->msg_flags & MSG_TRUNC) {
		metric_add(l->m_dgrams, 1);
		metric_add(l->m_truncated, 1);
		return 1;
	}
	peer_ip(&t->peers[i], &from);
	if (seg == 0 || seg >= len) {
		take_one(l, &from, recv_ms, p, len);
		n = 1;
	} else {
		/* A run: every datagram seg bytes, the last one may be shorter. */
		for (size_t off = 0; off < len; off += seg, n++)
			take_one(l, &from, recv_ms, p + off, len - off < seg ? len - off : seg);
	}
	metric_add(l->m_dgrams, n);
	return n;
}

/* Reads l until the socket is empty or DRAIN_MAX datagrams were taken.
 * A batch is up to RECV_BATCH messages and about RECV_BYTES: runs
 * (UDP_GRO) are up to 64 KiB each, and 64 of them would leave the L2
 * cache before the decoder reads them. */
static void drain(struct ddos_cthread *t, struct listener *l)
{
	uint64_t got = 0;

	while (got < DRAIN_MAX) {
		int n, vlen = l->vlen > 0 && l->vlen < RECV_BATCH ? l->vlen : RECV_BATCH;
		int64_t recv_ms;
		uint64_t dgrams;
		size_t bytes;

		for (int i = 0; i < vlen; i++) {
			memset(&t->msgs[i], 0, sizeof(t->msgs[i]));
			t->msgs[i].msg_hdr.msg_iov = &t->iov[i];
			t->msgs[i].msg_hdr.msg_iovlen = 1;
			t->msgs[i].msg_hdr.msg_name = &t->peers[i];
			t->msgs[i].msg_hdr.msg_namelen = sizeof(t->peers[i]);
			t->msgs[i].msg_hdr.msg_control = t->ctrl[i].buf;
			t->msgs[i].msg_hdr.msg_controllen = sizeof(t->ctrl[i].buf);
		}
		n = recvmmsg(l->fd, t->msgs, (unsigned)vlen, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    log_ratelimit(&l->log_last, 10 * 1000000LL))
				log_msg(LOG_WARN, "ddos", "event=recv_failed listener=%s err=\"%s\"",
					l->name, strerror(errno));
			return;
		}
		recv_ms = now_ms();
		dgrams = 0;
		bytes = 0;
		for (int i = 0; i < n; i++) {
			dgrams += take(t, l, i, recv_ms);
			bytes += t->msgs[i].msg_len;
		}
		if (t->m_dgrams)
			metric_add(t->m_dgrams, dgrams);
		ddos_cthread_flush(t);
		got += dgrams;
		if (n > 0) {
			size_t avg = bytes / (size_t)n + 1;
			l->vlen = RECV_BYTES / avg < 1 ? 1 : RECV_BYTES / avg > RECV_BATCH ? RECV_BATCH :
				  (int)(RECV_BYTES / avg);
		}
		if (n < vlen)
			return;
	}
}

/* ---- metrics ---- */

struct seq_walk {
	const char *listener;
	int logged, more;
};

/* An exporter whose export sequence had gaps since the last report. */
static void seq_report_one(void *arg, const struct flow_seq_stat *s)
{
	struct seq_walk *w = arg;
	char ip[FLOW_IP_STRLEN];

	if (!s->lost_interval)
		return;
	if (w->logged >= SEQ_LOG_MAX) {
		w->more++;
		return;
	}
	w->logged++;
	log_msg(LOG_WARN, "ddos", "event=exporter_sequence_loss listener=%s exporter=%s domain=%u"
		" format=%s lost=%llu unit=%s lost_total=%llu late_total=%llu restarts=%llu"
		" datagrams=%llu hint=\"missing between the exporter and mamori: attacks are"
		" undercounted by this share; if mamori_ddos_kernel_drops_total grows too, raise"
		" udp_rcvbuf\"", w->listener, flow_ip_str(&s->exporter, ip, sizeof(ip)), s->domain,
		flow_format_name((enum flow_format)s->format), (unsigned long long)s->lost_interval,
		s->unit_records ? "records" : "datagrams", (unsigned long long)s->lost,
		(unsigned long long)s->late, (unsigned long long)s->resets,
		(unsigned long long)s->datagrams);
}

/* Once a minute: which exporters lost what (the totals are metrics). */
static void seq_report(struct ddos_cthread *t)
{
	for (int i = 0; i < t->nl; i++) {
		struct seq_walk w = { t->l[i].name, 0, 0 };

		flow_decoder_seq_foreach(t->l[i].dec, seq_report_one, &w);
		if (w.more)
			log_msg(LOG_WARN, "ddos", "event=exporter_sequence_loss listener=%s"
				" more_exporters=%d hint=\"only the first %d are logged\"", t->l[i].name,
				w.more, SEQ_LOG_MAX);
	}
}

/* Adds v - *last to m: each thread's share, so that the metric is the sum
 * over the threads (gauges too: the difference wraps modulo 2^64). */
static void pub_delta(struct metric *m, uint64_t *last, uint64_t v)
{
	if (v != *last)
		metric_add(m, v - *last);
	*last = v;
}

void ddos_cthread_publish(struct ddos_cthread *t)
{
	struct ddos_collector *c = t->c;
	const struct ddos_count_stats *cs = ddos_count_stats(ddos_detector_counters(t->det));
	const struct ddos_detect_stats *ds = ddos_detector_stats(t->det);
	uint64_t v[PUB_N] = { 0 };

	for (int i = 0; i < t->nl; i++) {
		struct listener *l = &t->l[i];
		const struct flow_stats *st = flow_decoder_stats(l->dec);

		for (size_t k = 0; k < flow_stat_count; k++)
			pub_delta(l->m_stat[k], &l->stat_pub[k],
				  *(const uint64_t *)((const char *)st + flow_stat_descs[k].offset));
		if (l->ovfl != l->ovfl_pub)
			metric_add(l->m_drops, (uint32_t)(l->ovfl - l->ovfl_pub));
		l->ovfl_pub = l->ovfl;
		v[PUB_RECORDS] += st->records;
	}
	if (t->k == 0 && c->deps.capture) {
		const struct ddos_capture_stats *ks;

		ddos_capture_poll_stats(c->deps.capture);
		ks = ddos_capture_stats(c->deps.capture);
		metric_set(c->m_cap_packets, ks->packets);
		metric_set(c->m_cap_bytes, ks->bytes);
		metric_set(c->m_cap_records, ks->records);
		metric_set(c->m_cap_kernel, ks->kernel_packets);
		metric_set(c->m_cap_drops, ks->kernel_drops);
		metric_set(c->m_cap_skipped[0], ks->not_ip);
		metric_set(c->m_cap_skipped[1], ks->short_pkts);
		metric_set(c->m_cap_skipped[2], ks->bad_blocks);
		v[PUB_RECORDS] += ks->records;
	}
	v[PUB_COUNTED] = cs->counted;
	v[PUB_UNPROTECTED] = cs->unprotected;
	v[PUB_ALLOWED] = cs->allowed_src;
	v[PUB_LATE] = cs->late;
	v[PUB_STARTED] = ds->started;
	v[PUB_ENDED] = ds->ended;
	v[PUB_ACTIVE] = ddos_detector_active(t->det);
	v[PUB_HOSTS] = ddos_count_hosts(ddos_detector_counters(t->det));
	v[PUB_MEMORY] = ddos_detector_memory(t->det);
	v[PUB_HANDOFF_DROPS] = t->ho.drops;
	for (int k = 0; k < PUB_N; k++)
		if (k != PUB_EVAL)
			pub_delta(c->m_pub[k], &t->pub[k], v[k]);
	/* Each thread judges its own shard in the same second: the time to
	 * judge one is the slowest thread's, not the sum. */
	atomic_store_explicit(&t->eval_us, ds->eval_us_last > 0 ? ds->eval_us_last : 0,
			      memory_order_relaxed);
	for (unsigned k = 0; k < c->nthreads; k++) {
		int64_t e = atomic_load_explicit(&c->t[k].eval_us, memory_order_relaxed);

		if (e > (int64_t)v[PUB_EVAL])
			v[PUB_EVAL] = (uint64_t)e;
	}
	metric_set(c->m_pub[PUB_EVAL], v[PUB_EVAL]);
}

static void listener_metrics(struct listener *l)
{
	char lb[128];

	snprintf(lb, sizeof(lb), "listener=\"%s\"", l->name);
	l->m_dgrams = metric_get("mamori_ddos_datagrams_total",
				 "Flow datagrams received, per listener", METRIC_COUNTER, lb);
	l->m_bytes = metric_get("mamori_ddos_datagram_bytes_total",
				"Bytes of flow datagrams received, per listener", METRIC_COUNTER, lb);
	l->m_drops = metric_get("mamori_ddos_kernel_drops_total", KERNEL_DROPS_HELP,
				METRIC_COUNTER, lb);
	l->m_truncated = metric_get("mamori_ddos_datagrams_truncated_total",
				    "Datagrams longer than 64 KiB, dropped", METRIC_COUNTER, lb);
	for (int k = 0; k < ERR_N; k++) {
		snprintf(lb, sizeof(lb), "listener=\"%s\",kind=\"%s\"", l->name, ddos_err_kinds[k]);
		l->m_err[k] = metric_get("mamori_ddos_decode_errors_total",
					 "Datagrams the decoder refused, per listener and kind",
					 METRIC_COUNTER, lb);
	}
	for (size_t k = 0; k < flow_stat_count; k++) {
		snprintf(lb, sizeof(lb), "listener=\"%s\",stat=\"%s\"", l->name,
			 flow_stat_descs[k].name);
		l->m_stat[k] = metric_get("mamori_ddos_decoder_total",
					  "Flow decoder counters (struct flow_stats, docs/ddos.md), "
					  "per listener", METRIC_COUNTER, lb);
	}
}

void ddos_collect_metrics_init(struct ddos_collector *c)
{
	static const char *const drop_to[4] = { "pipeline", "notify", "mitigation", "history" };
	static const struct { const char *name, *help; enum metric_type type; } pub[PUB_N] = {
		{ "mamori_ddos_records_total", "Flow records decoded", METRIC_COUNTER },
		{ "mamori_ddos_records_counted_total", "Flow records towards a protected destination",
		  METRIC_COUNTER },
		{ "mamori_ddos_records_unprotected_total", "Flow records towards no protected group",
		  METRIC_COUNTER },
		{ "mamori_ddos_records_allowed_total",
		  "Flow records from an allow-listed source (not counted)", METRIC_COUNTER },
		{ "mamori_ddos_records_late_total",
		  "Flow records that started in a judged second (moved forward)", METRIC_COUNTER },
		{ "mamori_ddos_attacks_started_total", "Attacks started", METRIC_COUNTER },
		{ "mamori_ddos_attacks_ended_total", "Attacks ended", METRIC_COUNTER },
		{ "mamori_ddos_attacks_active", "Attacks in progress", METRIC_GAUGE },
		{ "mamori_ddos_hosts_tracked", "Protected addresses tracked", METRIC_GAUGE },
		{ "mamori_ddos_detector_bytes", "Memory of the counters and attacks", METRIC_GAUGE },
		{ "mamori_ddos_eval_microseconds",
		  "Time to judge the last second (the slowest collector thread's)", METRIC_GAUGE },
		{ "mamori_ddos_handoff_drops_total",
		  "Flow records dropped on a full hand-off ring between collector threads",
		  METRIC_COUNTER },
	};
	char lb[128];

	for (unsigned k = 0; k < c->nthreads; k++) {
		for (int i = 0; i < c->t[k].nl; i++)
			listener_metrics(&c->t[k].l[i]);
		if (c->nthreads > 1) {
			/* How the kernel's steering spreads the exporters. */
			snprintf(lb, sizeof(lb), "thread=\"%u\"", k);
			c->t[k].m_dgrams = metric_get("mamori_ddos_thread_datagrams_total",
						      "Flow datagrams received, per collector thread",
						      METRIC_COUNTER, lb);
		}
	}
	if (c->deps.capture) {
		static const char *const skip[3] = { "not_ip", "short", "bad_block" };
		const char *ifn = ddos_capture_ifname(c->deps.capture);

		c->m_cap_drops = metric_get("mamori_ddos_kernel_drops_total", KERNEL_DROPS_HELP,
					    METRIC_COUNTER, "listener=\"capture\"");
		snprintf(lb, sizeof(lb), "interface=\"%s\"", ifn);
		c->m_cap_packets = metric_get("mamori_ddos_capture_packets_total",
					      "Packets read from the capture ring", METRIC_COUNTER, lb);
		c->m_cap_bytes = metric_get("mamori_ddos_capture_bytes_total",
					    "Wire bytes of the packets read from the capture ring",
					    METRIC_COUNTER, lb);
		c->m_cap_records = metric_get("mamori_ddos_capture_records_total",
					      "Captured packets counted as flow records", METRIC_COUNTER,
					      lb);
		c->m_cap_kernel = metric_get("mamori_ddos_capture_kernel_packets_total",
					     "Packets the kernel's capture filter took (kept or dropped)",
					     METRIC_COUNTER, lb);
		for (int k = 0; k < 3; k++) {
			snprintf(lb, sizeof(lb), "interface=\"%s\",kind=\"%s\"", ifn, skip[k]);
			c->m_cap_skipped[k] = metric_get("mamori_ddos_capture_skipped_total",
							 "Captured packets not counted, per kind",
							 METRIC_COUNTER, lb);
		}
	}
	for (int k = 0; k < PUB_N; k++)
		c->m_pub[k] = metric_get(pub[k].name, pub[k].help, pub[k].type, NULL);
	for (int k = 0; k < 4; k++) {
		snprintf(lb, sizeof(lb), "to=\"%s\"", drop_to[k]);
		c->m_dropped[k] = metric_get("mamori_ddos_reports_dropped_total",
					     "Attack reports dropped on a full queue",
					     METRIC_COUNTER, lb);
	}
}

/* ---- the thread ---- */

void *ddos_cthread_main(void *arg)
{
	struct ddos_cthread *t = arg;
	struct ddos_collector *c = t->c;
	int64_t next_tick = 0, next_pub = 0;
	struct epoll_event evs[4];

	ddos_detector_tick(t->det, now_ms());
	while (!atomic_load(&c->stop)) {
		int64_t mono = clock_mono_us();
		int wait = next_tick > mono ? (int)((next_tick - mono) / 1000) + 1 : 0;
		int n;

		if (c->nthreads > 1) {
			atomic_store(&t->sleeping, 1);
			atomic_thread_fence(memory_order_seq_cst);
			if (!ddos_handoff_idle(&t->ho))
				wait = 0;
		}
		n = epoll_wait(t->ep, evs, 4, wait);
		atomic_store_explicit(&t->sleeping, 0, memory_order_relaxed);
		if (n < 0 && errno != EINTR) {
			log_msg(LOG_ERROR, "ddos", "event=epoll_failed err=\"%s\"", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint32_t k = evs[i].data.u32;
			if (k == EV_WAKE) {
				uint64_t v;
				if (read(t->wake, &v, sizeof(v)) < 0 && errno != EAGAIN)
					log_msg(LOG_WARN, "ddos", "event=wake_read_failed");
			} else if (k < (uint32_t)t->nl) {
				drain(t, &t->l[k]);
			}
		}
		if (t->k == 0 && c->deps.capture)
			ddos_capture_read(c->deps.capture, now_ms(), ddos_handoff_rec, &t->ho);
		ddos_cthread_flush(t);
		mono = clock_mono_us();
		if (mono >= next_tick) {
			ddos_detector_tick(t->det, now_ms());
			next_tick = mono + (ddos_detector_pending(t->det) ? TICK_PENDING_US : TICK_US);
		}
		ddos_collect_serve(t);
		ddos_collect_apply_reload(t);
		if (mono >= next_pub) {
			ddos_cthread_publish(t);
			next_pub = mono + PUBLISH_US;
		}
		if (mono >= t->next_minute) {
			if (t->next_minute) {
				seq_report(t);
				for (int i = 0; i < t->nl; i++)
					flow_decoder_expire(t->l[i].dec, now_ms());
			}
			t->next_minute = mono + MINUTE_US;
		}
	}
	ddos_cthread_flush(t);
	ddos_cthread_publish(t);
	return NULL;
}

/* With several threads: the socket of the group is chosen by the
 * exporter's address (IPv4 source, or the IPv6 source's four words
 * folded), modulo n, so one exporter stays on one thread. The program
 * sees the packet from the UDP payload; SKF_NET_OFF reaches the IP
 * header. */
static int steer(int fd, unsigned n)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, (uint32_t)SKF_NET_OFF),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 4),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 2, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 12),
		BPF_JUMP(BPF_JMP | BPF_JA, 10, 0, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 8),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 12),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 16),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 20),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		/* Spread neighbouring addresses: fold the high half in. */
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog prog = { (unsigned short)(sizeof(code) / sizeof(code[0])), code };

	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog));
}

/* Binds l (its address; port_override > 0 replaces the port, so that the
 * threads of a listener on port 0 share the port the first one got). */
static int bind_udp(struct listener *l, int64_t rcvbuf, int reuse, int port_override,
		    struct buf *err)
{
	struct addrinfo hints, *res = NULL;
	char host[256], port_s[16];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int port, one = 1, v, got = 0, rc;
	socklen_t gl = sizeof(got);

	if (conf_split_addr(l->addr, host, sizeof(host), &port) != 0 || port < 0 || port > 65535) {
		buf_printf(err, "ddos.%s: bad address '%s' (expected host:port)", l->name, l->addr);
		return M_EINVAL;
	}
	if (port_override > 0)
		port = port_override;
	snprintf(port_s, sizeof(port_s), "%d", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] && strcmp(host, "*") ? host : NULL, port_s, &hints, &res);
	if (rc != 0 || !res) {
		buf_printf(err, "ddos.%s: cannot resolve '%s': %s", l->name, l->addr,
			   rc ? gai_strerror(rc) : "no address");
		if (res)
			freeaddrinfo(res);
		return M_EINVAL;
	}
	l->fd = socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd >= 0 && reuse)
		(void)setsockopt(l->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (l->fd < 0 || bind(l->fd, res->ai_addr, res->ai_addrlen) < 0) {
		buf_printf(err, "ddos.%s: cannot listen on %s: %s", l->name, l->addr, strerror(errno));
		freeaddrinfo(res);
		return M_EIO;
	}
	freeaddrinfo(res);
	(void)setsockopt(l->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
	(void)setsockopt(l->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	(void)setsockopt(l->fd, IPPROTO_UDP, UDP_GRO, &one, sizeof(one));
	if (rcvbuf > 0) {
		v = rcvbuf > 0x3fffffff ? 0x3fffffff : (int)rcvbuf;
		/* SO_RCVBUF is doubled by the kernel: ask for half. FORCE passes
		 * net.core.rmem_max when we may (CAP_NET_ADMIN). */
		v /= 2;
		if (setsockopt(l->fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
			(void)setsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
		if (getsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &got, &gl) == 0 && got < 2 * v &&
		    !port_override)
			log_msg(LOG_WARN, "ddos", "event=udp_rcvbuf_capped listener=%s want=%lld got=%d"
				" hint=\"raise net.core.rmem_max (sysctl) or run as root\"", l->name,
				(long long)rcvbuf, got);
	}
	if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) == 0)
		l->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
				((struct sockaddr_in6 *)&ss)->sin6_port);
	return M_OK;
}

int ddos_cthread_init(struct ddos_cthread *t, const struct ddos_collect_config *cc,
		      struct buf *err)
{
	struct ddos_collector *c = t->c;
	struct flow_cfg fc = { 0 };
	struct epoll_event ev;
	int multi = c->nthreads > 1;

	t->ep = t->wake = -1;
	t->l[0].fd = t->l[1].fd = -1;
	t->dc = c->dc;
	t->dry_run = c->deps.dry_run;
	t->nlive = c->dc->max_attacks > 0 ? (size_t)c->dc->max_attacks : 256;
	t->live = calloc(t->nlive, sizeof(*t->live));
	t->bufs = malloc((size_t)RECV_BATCH * MAX_DGRAM);
	if (!t->live || !t->bufs)
		goto nomem;
	for (int i = 0; i < RECV_BATCH; i++) {
		t->iov[i].iov_base = t->bufs + (size_t)i * MAX_DGRAM;
		t->iov[i].iov_len = MAX_DGRAM;
	}
	t->det = ddos_detector_new(c->dc, &ddos_collect_handlers, t, err);
	if (!t->det)
		return M_ENOMEM;
	if ((multi && ddos_detector_shard(t->det, c->gs, t->k) < 0) ||
	    ddos_handoff_init(&t->ho, t->k, c->nthreads, c->ring, t->det, c->plen_v4, c->plen_v6) < 0)
		goto nomem;
	t->ho.pushed = pushed;
	t->ho.arg = c;
	fc.default_rate = (uint32_t)(cc->default_rate > 0 ? cc->default_rate : 1);
	fc.flags = cc->recv_clock ? FLOW_CFG_RECV_CLOCK : 0;
	fc.template_timeout_ms = cc->template_timeout > 0 ? cc->template_timeout * 1000 : -1;
	for (int k = 0; k < 2; k++) {
		const char *addr = k == 0 ? cc->netflow : cc->sflow;
		struct listener *l = &t->l[t->nl];

		if (!addr || !addr[0])
			continue;
		l->name = k == 0 ? "netflow" : "sflow";
		l->fmt = k == 0 ? FLOW_FMT_AUTO : FLOW_FMT_SFLOW;
		snprintf(l->addr, sizeof(l->addr), "%s", addr);
		t->nl++;
		l->m_stat = calloc(flow_stat_count, sizeof(*l->m_stat));
		l->stat_pub = calloc(flow_stat_count, sizeof(*l->stat_pub));
		l->dec = flow_decoder_new(&fc, ddos_handoff_rec, NULL, &t->ho);
		if (!l->m_stat || !l->stat_pub || !l->dec)
			goto nomem;
		if (bind_udp(l, cc->rcvbuf, multi, t->k ? c->t[0].l[t->nl - 1].port : 0, err) < 0)
			return M_EIO;
		if (multi && t->k == c->nthreads - 1 && steer(c->t[0].l[t->nl - 1].fd, c->nthreads) < 0)
			log_msg(LOG_WARN, "ddos", "event=reuseport_steering_failed listener=%s err=\"%s\""
				" hint=\"the kernel's hash of addresses and ports spreads the datagrams:"
				" an exporter sending from several ports may reach two threads\"",
				l->name, strerror(errno));
	}
	t->ep = epoll_create1(EPOLL_CLOEXEC);
	t->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->ep < 0 || t->wake < 0) {
		buf_printf(err, "ddos: epoll/eventfd: %s", strerror(errno));
		return M_EIO;
	}
	for (int i = 0; i < t->nl; i++) {
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t)i;
		epoll_ctl(t->ep, EPOLL_CTL_ADD, t->l[i].fd, &ev);
	}
	ev.events = EPOLLIN;
	ev.data.u32 = EV_WAKE;
	epoll_ctl(t->ep, EPOLL_CTL_ADD, t->wake, &ev);
	if (t->k == 0 && c->deps.capture) {
		ev.events = EPOLLIN;
		ev.data.u32 = EV_CAPTURE;
		epoll_ctl(t->ep, EPOLL_CTL_ADD, ddos_capture_fd(c->deps.capture), &ev);
	}
	return M_OK;
nomem:
	buf_puts(err, "ddos: out of memory");
	return M_ENOMEM;
}

void ddos_cthread_fini(struct ddos_cthread *t)
{
	for (int i = 0; i < 2; i++) {
		if (t->l[i].fd >= 0)
			close(t->l[i].fd);
		flow_decoder_free(t->l[i].dec);
		free(t->l[i].m_stat);
		free(t->l[i].stat_pub);
	}
	if (t->ep >= 0)
		close(t->ep);
	if (t->wake >= 0)
		close(t->wake);
	ddos_handoff_fini(&t->ho);
	ddos_detector_free(t->det);
	free(t->live);
	free(t->bufs);
}
