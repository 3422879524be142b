/*
 * `mamori ddos replay`: a pcap file through the DDoS detector, offline.
 *
 * Why: an operator wants to know what mamori would have said about last
 * night's attack (a capture of the routers' flow export, or of a mirror
 * port), and to tune ddos.groups thresholds on it, without a live stream.
 * The file is read with libpcap; each packet is either a flow export
 * datagram (UDP whose payload is NetFlow v5/v9, IPFIX or sFlow: decoded as
 * the collector decodes it) or, with --raw or when it is not one, a packet
 * of the traffic itself (one flow record of one packet, sampling 1). The
 * detector runs on the capture's own clock, so a one-hour capture replays in
 * seconds with the same seconds, thresholds and cool-downs as live. Attacks
 * are printed as they start, escalate and end: text, or the events serve
 * would store (--json).
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/settings.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "ddos/collect.h"
#include "ddos/ddos_detect.h"
#include "ddos/flow.h"

#define REPLAY_BATCH 1024

struct replay {
	struct ddos_detector *det;
	struct flow_decoder *dec;
	struct flow_rec recs[REPLAY_BATCH];
	size_t nrec;
	int json;
	int raw_only;
	unsigned long long packets, datagrams, raw, skipped, records, bad;
	unsigned long attacks;
	int64_t now_ms;
};

static void flush(struct replay *r)
{
	if (r->nrec) {
		ddos_detector_add_batch(r->det, r->recs, r->nrec);
		r->nrec = 0;
	}
}

static void on_rec(void *arg, const struct flow_rec *rec)
{
	struct replay *r = arg;
	r->records++;
	r->recs[r->nrec++] = *rec;
	if (r->nrec == REPLAY_BATCH)
		flush(r);
}

static void report(struct replay *r, const struct ddos_attack *a, const char *phase)
{
	if (r->json) {
		struct buf b;
		buf_init(&b, 1 << 20);
		if (ddos_attack_event_json(a, phase, "", 0, r->now_ms, &b) == 0 && buf_cstr(&b) == 0)
			printf("%s\n", b.p);
		buf_fini(&b);
		return;
	}
	char t[32];
	time_t s = (time_t)(r->now_ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s %s %s: %s: %s; peak %.0f pps, %.3g bps%s%s\n", t, a->id_str, phase, a->target_str,
	       a->summary, a->peak_pps, a->peak_bps, a->trigger[0] ? "; " : "", a->trigger);
}

static void on_start(void *arg, const struct ddos_attack *a)
{
	struct replay *r = arg;
	r->attacks++;
	report(r, a, "start");
}

static void on_update(void *arg, const struct ddos_attack *a)
{
	report(arg, a, "update");
}

static void on_end(void *arg, const struct ddos_attack *a)
{
	report(arg, a, "end");
}

/* The UDP payload of an Ethernet/IPv4/IPv6 packet, or NULL; the source
 * address into from. */
static const uint8_t *udp_payload(const uint8_t *p, size_t n, int linktype, size_t *len,
				  struct flow_ip *from)
{
	size_t off = 0;
	unsigned et = 0;
	if (linktype == DLT_EN10MB) {
		if (n < 14)
			return NULL;
		et = (unsigned)(p[12] << 8 | p[13]);
		off = 14;
		for (int v = 0; v < 2 && (et == 0x8100 || et == 0x88a8) && n >= off + 4; v++) {
			et = (unsigned)(p[off + 2] << 8 | p[off + 3]);
			off += 4;
		}
	} else if (linktype == DLT_LINUX_SLL) {
		if (n < 16)
			return NULL;
		et = (unsigned)(p[14] << 8 | p[15]);
		off = 16;
	} else if (linktype == DLT_RAW || linktype == 101 /* LINKTYPE_RAW */) {
		et = n > 0 && (p[0] >> 4) == 6 ? 0x86dd : 0x0800;
	} else {
		return NULL;
	}
	const uint8_t *ip = p + off;
	size_t il = n - off;
	size_t udp;
	if (et == 0x0800) {
		if (il < 20 || (ip[0] >> 4) != 4 || ip[9] != 17 || (ip[6] & 0x3f) || ip[7])
			return NULL; /* not UDP, or a fragment */
		udp = (size_t)(ip[0] & 0x0f) * 4;
		flow_ip_v4(from, ip + 12);
	} else if (et == 0x86dd) {
		if (il < 40 || ip[6] != 17)
			return NULL;
		udp = 40;
		flow_ip_v6(from, ip + 8);
	} else {
		return NULL;
	}
	if (il < udp + 8)
		return NULL;
	*len = il - udp - 8;
	return ip + udp + 8;
}

static void replay_packet(struct replay *r, const struct pcap_pkthdr *h, const uint8_t *p,
			  int linktype)
{
	r->packets++;
	int64_t ms = (int64_t)h->ts.tv_sec * 1000 + h->ts.tv_usec / 1000;
	if (ms > r->now_ms) {
		flush(r);
		ddos_detector_tick(r->det, ms);
		r->now_ms = ms;
	}
	size_t len = 0;
	struct flow_ip from;
	memset(&from, 0, sizeof(from));
	const uint8_t *payload = r->raw_only ? NULL : udp_payload(p, h->caplen, linktype, &len, &from);
	if (payload && flow_detect(payload, len) != FLOW_FMT_AUTO) {
		r->datagrams++;
		if (flow_decode(r->dec, FLOW_FMT_AUTO, &from, ms, payload, len) < 0)
			r->bad++;
		return;
	}
	/* The traffic itself: one packet, counted at its wire length. */
	struct flow_rec rec;
	if ((linktype != DLT_EN10MB && linktype != DLT_RAW && linktype != 101) ||
	    flow_pkt_record(p, h->caplen, linktype == DLT_EN10MB ? FLOW_LINK_ETHERNET : FLOW_LINK_IP,
			    h->len, 1, ms, &rec) != 0) {
		r->skipped++;
		return;
	}
	r->raw++;
	on_rec(r, &rec);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mamori ddos replay [-c FILE] [--raw] [--json] PCAP...\n"
		"\n"
		"Runs pcap files through the DDoS detector of FILE's ddos: section (its\n"
		"groups, thresholds and cool-downs) on the capture's own clock, and prints\n"
		"every attack as it starts, escalates and ends. A UDP packet carrying\n"
		"NetFlow v5/v9, IPFIX or sFlow is decoded as the collector decodes it;\n"
		"any other packet is taken as traffic seen on a mirror port (one packet,\n"
		"no sampling). --raw takes every packet as traffic. Ethernet (with\n"
		"VLAN tags), Linux cooked and raw IP captures are read.\n"
		"\n"
		"  -c, --config FILE   YAML configuration (ddos.groups must protect something)\n"
		"  --raw               every packet is traffic, none is flow export\n"
		"  --json              print the attack events serve would store\n"
		"  -h, --help          this help\n"
		"\n"
		"exit status: 0 when the files were read (attacks or not), 1 when a file\n"
		"cannot be read, 2 on a usage or configuration error.\n");
}

int cli_ddos_replay(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"raw", no_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	struct replay *r = calloc(1, sizeof(*r));
	int c, rc = 2;
	if (!r)
		return 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'r': r->raw_only = 1; break;
		case 'j': r->json = 1; break;
		case 'h': usage(stdout); free(r); return 0;
		default: usage(stderr); free(r); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		free(r);
		return 2;
	}
	struct settings s;
	struct buf err;
	buf_init(&err, 4096);
	if (settings_load(path, &s, &err) < 0) {
		buf_cstr(&err);
		fprintf(stderr, "%s\n", err.p ? err.p : "bad configuration");
		goto out;
	}
	size_t protected = 0;
	for (size_t i = 0; i < s.ddos.ngroups; i++)
		protected += s.ddos.groups[i].nprefixes;
	if (protected == 0) {
		fprintf(stderr, "mamori ddos replay: %s has no ddos.groups: nothing is protected\n",
			path ? path : "the default configuration");
		goto out;
	}
	struct ddos_handlers h = {on_start, on_update, on_end, NULL};
	r->det = ddos_detector_new(&s.ddos, &h, r, &err);
	struct flow_cfg fc = {0};
	fc.default_rate = (uint32_t)(s.ddos_collect.default_rate > 0 ? s.ddos_collect.default_rate : 1);
	r->dec = r->det ? flow_decoder_new(&fc, on_rec, NULL, r) : NULL;
	if (!r->det || !r->dec) {
		buf_cstr(&err);
		fprintf(stderr, "mamori ddos replay: %s\n", err.p ? err.p : "out of memory");
		goto out;
	}
	rc = 0;
	for (int i = optind; i < argc; i++) {
		char perr[PCAP_ERRBUF_SIZE];
		pcap_t *pc = pcap_open_offline(argv[i], perr);
		if (!pc) {
			fprintf(stderr, "mamori ddos replay: %s: %s\n", argv[i], perr);
			rc = 1;
			continue;
		}
		int lt = pcap_datalink(pc);
		struct pcap_pkthdr *ph;
		const u_char *data;
		int n;
		while ((n = pcap_next_ex(pc, &ph, &data)) == 1)
			replay_packet(r, ph, data, lt);
		if (n == PCAP_ERROR) {
			fprintf(stderr, "mamori ddos replay: %s: %s (read up to here)\n", argv[i],
				pcap_geterr(pc));
			rc = 1;
		}
		pcap_close(pc);
	}
	flush(r);
	/* Let every attack cool down and end on the capture's clock. */
	for (int k = 0; k < 3600 && ddos_detector_active(r->det) > 0; k++) {
		r->now_ms += 1000;
		ddos_detector_tick(r->det, r->now_ms);
	}
	fprintf(stderr,
		"packets %llu: flow datagrams %llu (%llu malformed, %llu records), traffic packets "
		"%llu, other %llu; attacks %lu\n",
		r->packets, r->datagrams, r->bad, r->records - r->raw, r->raw, r->skipped,
		r->attacks);
out:
	if (r->dec)
		flow_decoder_free(r->dec);
	if (r->det)
		ddos_detector_free(r->det);
	settings_free(&s);
	buf_fini(&err);
	free(r);
	return rc;
}
