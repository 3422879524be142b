/*
 * The `ddos:` section: keyword tables for the scalars (the generic setters
 * of core/config.c), and small walkers for what they cannot hold: the
 * groups list, prefix lists with a position per item, the threshold matrix
 * and the tiers. Why walk the prefix lists here instead of using
 * CONF_STRLIST: an operator with 300 prefixes wants the error to point at
 * the bad one, not at the list.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "ddos/ddos_conf.h"

/* Sources: CISA TA14-017A, Netscout/Akamai vector reports. OpenVPN (1194)
 * is left out on purpose: its reflection factor is small and legitimate
 * VPN replies from port 1194 would be named an attack. */
const struct ddos_vector ddos_vectors[DDOS_VEC_N] = {
	{ 11211, "memcached", "memcached" },
	{ 53, "dns", "DNS" },
	{ 123, "ntp", "NTP" },
	{ 1900, "ssdp", "SSDP" },
	{ 389, "cldap", "CLDAP" },
	{ 19, "chargen", "chargen" },
	{ 161, "snmp", "SNMP" },
	{ 3702, "wsd", "WS-Discovery" },
	{ 3283, "arms", "Apple ARMS" },
	{ 111, "portmap", "RPC portmap" },
	{ 137, "netbios", "NetBIOS" },
	{ 10001, "ubiquiti", "Ubiquiti discovery" },
	{ 5683, "coap", "CoAP" },
	{ 17, "qotd", "QOTD" },
	{ 520, "rip", "RIPv1" },
	{ 1434, "mssql", "MS SQL resolution" },
	{ 69, "tftp", "TFTP" },
	{ 427, "slp", "SLP" },
	{ 623, "ipmi", "IPMI/RMCP" },
	{ 5353, "mdns", "mDNS" },
	{ 5351, "natpmp", "NAT-PMP" },
	{ 10074, "mitel", "Mitel TP-240" },
	{ 32414, "plex", "Plex media server" },
	{ 33848, "jenkins", "Jenkins discovery" },
};

int ddos_vector_by_port(uint16_t port)
{
	/* A switch: the compiler makes it a small search, no table in cache. */
	switch (port) {
	case 11211: return 0;
	case 53: return 1;
	case 123: return 2;
	case 1900: return 3;
	case 389: return 4;
	case 19: return 5;
	case 161: return 6;
	case 3702: return 7;
	case 3283: return 8;
	case 111: return 9;
	case 137: return 10;
	case 10001: return 11;
	case 5683: return 12;
	case 17: return 13;
	case 520: return 14;
	case 1434: return 15;
	case 69: return 16;
	case 427: return 17;
	case 623: return 18;
	case 5353: return 19;
	case 5351: return 20;
	case 10074: return 21;
	case 32414: return 22;
	case 33848: return 23;
	default: return -1;
	}
}

static const char *const class_keys[DDOS_C_VEC] = {
	"total", "tcp", "udp", "icmp", "other", "syn", "ack", "rst", "fragment", "amplification",
};

static const char *const metric_keys[DDOS_M_N] = { "bps", "pps", "fps" };

const char *ddos_class_key(int cls)
{
	if (cls < 0 || cls >= DDOS_C_N)
		return "?";
	return cls < DDOS_C_VEC ? class_keys[cls] : ddos_vectors[cls - DDOS_C_VEC].key;
}

const char *ddos_metric_key(int m)
{
	return m >= 0 && m < DDOS_M_N ? metric_keys[m] : "?";
}

static int class_by_key(const char *s)
{
	for (int c = 0; c < DDOS_C_N; c++)
		if (strcmp(s, ddos_class_key(c)) == 0)
			return c;
	return -1;
}

/* ---- prefixes and rates ---- */

int ddos_pfx_parse(const char *s, struct ddos_pfx *out)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	uint8_t a4[4];
	long len = -1;

	memset(out, 0, sizeof(*out));
	if (hl == 0 || hl >= sizeof(host))
		return M_EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (slash) {
		char *end;
		if (!slash[1] || slash[1] == '-' || slash[1] == '+' || slash[1] == ' ')
			return M_EINVAL;
		errno = 0;
		len = strtol(slash + 1, &end, 10);
		if (*end || errno)
			return M_EINVAL;
	}
	if (inet_pton(AF_INET, host, a4) == 1) {
		if (len < 0)
			len = 32;
		if (len > 32)
			return M_EINVAL;
		out->a[10] = out->a[11] = 0xff;
		memcpy(out->a + 12, a4, 4);
		out->len = (uint8_t)(96 + len);
		out->v4 = 1;
	} else if (inet_pton(AF_INET6, host, out->a) == 1) {
		if (len < 0)
			len = 128;
		if (len > 128)
			return M_EINVAL;
		out->len = (uint8_t)len;
	} else {
		return M_EINVAL;
	}
	for (unsigned bit = out->len; bit < 128; bit++)
		if (out->a[bit / 8] & (0x80u >> (bit % 8)))
			return M_EINVAL;   /* host bits set: a typo more often than not */
	return M_OK;
}

const char *ddos_pfx_str(const struct ddos_pfx *p, char *out, size_t outsz)
{
	char h[INET6_ADDRSTRLEN];
	int v4 = p->len >= 96 && memcmp(p->a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0;

	if (v4)
		inet_ntop(AF_INET, p->a + 12, h, sizeof(h));
	else
		inet_ntop(AF_INET6, p->a, h, sizeof(h));
	snprintf(out, outsz, "%s/%u", h, v4 ? p->len - 96u : p->len);
	return out;
}

int ddos_rate_parse(const char *s, uint64_t *out)
{
	char *end;
	double v, mult = 1;

	while (*s == ' ')
		s++;
	if (!strcasecmp(s, "off") || !strcasecmp(s, "none")) {
		*out = 0;
		return M_OK;
	}
	if (!((*s >= '0' && *s <= '9') || *s == '.'))
		return M_EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || !isfinite(v) || v < 0)
		return M_EINVAL;
	while (*end == ' ')
		end++;
	switch (*end) {
	case 'k': case 'K': mult = 1e3; end++; break;
	case 'm': case 'M': mult = 1e6; end++; break;
	case 'g': case 'G': mult = 1e9; end++; break;
	case 't': case 'T': mult = 1e12; end++; break;
	default: break;
	}
	if (*end && strcasecmp(end, "bps") && strcasecmp(end, "pps") && strcasecmp(end, "fps") &&
	    strcasecmp(end, "bit/s") && strcasecmp(end, "/s"))
		return M_EINVAL;
	v *= mult;
	if (v > 1e18)
		return M_EINVAL;
	*out = (uint64_t)(v + 0.5);
	return M_OK;
}

const char *ddos_rate_str(double v, char *out, size_t outsz)
{
	static const char sfx[] = " kMGTP";
	int i = 0;

	if (!(v > 0)) {
		snprintf(out, outsz, "0");
		return out;
	}
	while (v >= 1000 && i < 5) {
		v /= 1000;
		i++;
	}
	if (i == 0)
		snprintf(out, outsz, "%.0f", v);
	else
		snprintf(out, outsz, v < 10 ? "%.2f%c" : v < 100 ? "%.1f%c" : "%.0f%c", v, sfx[i]);
	return out;
}

/* ---- defaults ---- */

void ddos_thresholds_default(struct ddos_thresholds *host, struct ddos_thresholds *prefix,
			     struct ddos_thresholds *group)
{
	memset(host, 0, sizeof(*host));
	memset(prefix, 0, sizeof(*prefix));
	memset(group, 0, sizeof(*group));
	host->v[DDOS_C_TOTAL][DDOS_M_BPS] = 1000000000ull;
	host->v[DDOS_C_TOTAL][DDOS_M_PPS] = 150000;
	host->v[DDOS_C_SYN][DDOS_M_PPS] = 50000;
	host->v[DDOS_C_RST][DDOS_M_PPS] = 50000;
	host->v[DDOS_C_ICMP][DDOS_M_PPS] = 20000;
	host->v[DDOS_C_FRAG][DDOS_M_PPS] = 20000;
	host->v[DDOS_C_AMP][DDOS_M_BPS] = 300000000ull;
	prefix->v[DDOS_C_TOTAL][DDOS_M_BPS] = 2000000000ull;
	prefix->v[DDOS_C_TOTAL][DDOS_M_PPS] = 300000;
	group->v[DDOS_C_TOTAL][DDOS_M_BPS] = 10000000000ull;
	group->v[DDOS_C_TOTAL][DDOS_M_PPS] = 1000000;
}

/* ---- keyword tables ---- */

#define DC(f) offsetof(struct ddos_config, f)
#define GC(f) offsetof(struct ddos_group_conf, f)

static const struct conf_keyword ddos_keywords[] = {
	{ "delay", CONF_DURATION, DC(delay), 0, 5, "1s", 0,
	  "a second is judged this long after it ends, so late records still land in it" },
	{ "max_hosts", CONF_INT, DC(max_hosts), 16, 16777216, "131072", 0,
	  "protected addresses tracked at once; beyond, the least busy is evicted" },
	{ "max_prefixes", CONF_INT, DC(max_prefixes), 16, 4194304, "16384", 0,
	  "/24 and /48 aggregates tracked at once (carpet bombing)" },
	{ "max_detail", CONF_INT, DC(max_detail), 16, 1048576, "1024", 0,
	  "targets near a threshold with per-class counters and top talkers" },
	{ "max_attacks", CONF_INT, DC(max_attacks), 1, 65536, "256", 0, "simultaneous attacks" },
	{ "max_exporters", CONF_INT, DC(max_exporters), 1, 65536, "1024", 0,
	  "exporters with statistics (active timeout)" },
	{ "timeline_points", CONF_INT, DC(timeline_points), 60, 86400, "3600", 0,
	  "per-second points kept per attack; longer attacks are downsampled (peaks kept)" },
	{ "update_interval", CONF_DURATION, DC(update_interval), 1, 3600, "10s", 1,
	  "an ongoing attack is reported this often (and when it changes tier)" },
	{ "exporter_warn", CONF_DURATION, DC(exporter_warn), 1, 3600, "15s", 1,
	  "warn about exporters whose records span longer (their active timeout)" },
	{ "prefix_v4", CONF_INT, DC(prefix_v4), 8, 32, "24", 0, "IPv4 aggregate for carpet bombing" },
	{ "prefix_v6", CONF_INT, DC(prefix_v6), 16, 128, "48", 0, "IPv6 aggregate for carpet bombing" },
	{ "carpet_max_share", CONF_INT, DC(carpet_max_share), 1, 100, "50", 1,
	  "percent: an aggregate over its threshold is a carpet attack when no single host "
	  "(or prefix, for a group) carries more than this share" },
	{ "carpet_min_hosts", CONF_INT, DC(carpet_min_hosts), 2, 65536, "4", 1,
	  "hosts with traffic an aggregate needs to count as carpet bombing" },
	{ "vector_share", CONF_INT, DC(vector_share), 1, 100, "20", 1,
	  "percent of an attack's traffic a vector needs to be named" },
	{ "baseline_window", CONF_DURATION, DC(baseline_window), 60, 2592000, "10m", 1,
	  "time constant of the per-host baseline (EWMA of normal traffic)" },
	{ "baseline_warmup", CONF_DURATION, DC(baseline_warmup), 0, 2592000, "5m", 1,
	  "seconds a host is watched before its baseline can raise an alarm" },
	CONF_END
};

static const struct conf_keyword group_keywords[] = {
	{ "name", CONF_STR, GC(name), 0, 0, "", 1, "group name (letters, digits, '_', '-', '.')" },
	{ "trigger", CONF_DURATION, GC(trigger), 1, 3600, "1s", 1,
	  "seconds a threshold must hold before an attack starts (a second counts as soon as "
	  "its traffic so far passes it)" },
	{ "cooldown", CONF_DURATION, GC(cooldown), 1, 86400, "60s", 1,
	  "seconds under every threshold before an attack ends" },
	{ "baseline", CONF_STR, GC(baseline_s), 0, 0, "5", 1,
	  "alarm when a host passes this multiple of its learnt baseline; 0 = off" },
	{ "baseline_floor_bps", CONF_STR, GC(floor_bps_s), 0, 0, "100M", 1,
	  "the baseline alarm never fires below this rate" },
	{ "baseline_floor_pps", CONF_STR, GC(floor_pps_s), 0, 0, "20k", 1,
	  "the baseline alarm never fires below this rate" },
	{ "sliding_second", CONF_BOOL, GC(sliding), 0, 0, "true", 1,
	  "with a 1 s trigger, a host's second that ends at each tick (not only the calendar "
	  "second) can start an attack, when it is over a threshold and clearly above the "
	  "host's baseline" },
	CONF_END
};

/* The collector's keys (collect.c, ddos_collect_keywords) share the section. */
static const char *const ddos_skip[] = {
	"groups", "allow_sources", "allow_destinations",
	"netflow", "sflow", "udp_rcvbuf", "default_sampling", "receive_clock", "attacks_db",
	"attack_retention", "attack_history", "capture_interface", "capture_sampling",
	"capture_ring", "template_timeout", "threads", NULL
};
static const char *const group_skip[] = {
	"prefixes", "allow_sources", "allow_destinations", "thresholds", "prefix_thresholds",
	"group_thresholds", "tiers", NULL
};

/* ---- errors ---- */

static int cerr(struct buf *err, const struct conf_doc *doc, const struct conf_node *n,
		const char *path, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int cerr(struct buf *err, const struct conf_doc *doc, const struct conf_node *n,
		const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_printf(err, "%s:%d:%d: %s: %s", doc && doc->file ? doc->file : "(config)",
		   n ? conf_node_line(n) : 0, n ? conf_node_col(n) : 0, path, msg);
	buf_cstr(err);
	return M_EINVAL;
}

/* Map iteration: children alternate key, value. */
#define MAP_EACH(k, map) \
	for (const struct conf_node *k = conf_node_child(map); k && conf_node_next(k); \
	     k = conf_node_next(conf_node_next(k)))

/* ---- walkers ---- */

#define DDOS_MAX_PREFIXES 4096   /* per list */

static int parse_pfx_list(const struct conf_doc *doc, const struct conf_node *list,
			  const char *path, struct ddos_pfx **out, size_t *n, struct buf *err)
{
	size_t cnt = 0, i = 0;

	*out = NULL;
	*n = 0;
	if (!list || conf_node_is_null(list))
		return M_OK;
	if (conf_node_kind(list) == CONF_NODE_SCALAR) {
		/* One prefix written without a list. */
		if (!(*out = calloc(1, sizeof(**out))))
			return M_ENOMEM;
		*n = 1;
		if (ddos_pfx_parse(conf_node_value(list), *out) < 0)
			return cerr(err, doc, list, path, "'%s' is not a prefix (e.g. 203.0.113.0/24, "
				    "2001:db8::/32; host bits must be zero)", conf_node_value(list));
		return M_OK;
	}
	if (conf_node_kind(list) != CONF_NODE_SEQ)
		return cerr(err, doc, list, path, "expected a list of prefixes");
	for (const struct conf_node *it = conf_node_child(list); it; it = conf_node_next(it))
		cnt++;
	if (cnt > DDOS_MAX_PREFIXES)
		return cerr(err, doc, list, path, "at most %d prefixes", DDOS_MAX_PREFIXES);
	if (cnt == 0)
		return M_OK;
	if (!(*out = calloc(cnt, sizeof(**out))))
		return M_ENOMEM;
	for (const struct conf_node *it = conf_node_child(list); it; it = conf_node_next(it), i++) {
		*n = i + 1;
		if (conf_node_kind(it) != CONF_NODE_SCALAR)
			return cerr(err, doc, it, path, "expected a prefix");
		if (ddos_pfx_parse(conf_node_value(it), &(*out)[i]) < 0)
			return cerr(err, doc, it, path, "'%s' is not a prefix (e.g. 203.0.113.0/24, "
				    "2001:db8::/32; host bits must be zero)", conf_node_value(it));
	}
	return M_OK;
}

static int parse_rate_node(const struct conf_doc *doc, const struct conf_node *v,
			   const char *path, uint64_t *out, struct buf *err)
{
	if (conf_node_kind(v) != CONF_NODE_SCALAR || ddos_rate_parse(conf_node_value(v), out) < 0)
		return cerr(err, doc, v, path, "expected a rate (e.g. 1G, 1.5Gbps, 200k, 0 = off)");
	return M_OK;
}

/* thresholds: { total: { bps: 1G, pps: 100k }, syn: { pps: 20k }, ... }.
 * Metrics given override the defaults; 0 or off removes one. */
static int parse_thresholds(const struct conf_doc *doc, const struct conf_node *map,
			    const char *path, struct ddos_thresholds *t, struct buf *err)
{
	char p[160];
	int r;

	if (!map || conf_node_is_null(map))
		return M_OK;
	if (conf_node_kind(map) != CONF_NODE_MAP)
		return cerr(err, doc, map, path,
			    "expected a mapping of traffic classes (total:, udp:, syn:, memcached:, ...)");
	MAP_EACH(k, map) {
		const struct conf_node *v = conf_node_next(k);
		int cls = conf_node_kind(k) == CONF_NODE_SCALAR ? class_by_key(conf_node_value(k)) : -1;
		if (cls < 0)
			return cerr(err, doc, k, path, "unknown traffic class '%s' (expected total, tcp, "
				    "udp, icmp, other, syn, ack, rst, fragment, amplification or a "
				    "vector such as memcached, dns, ntp)",
				    conf_node_kind(k) == CONF_NODE_SCALAR ? conf_node_value(k) : "?");
		snprintf(p, sizeof(p), "%s.%s", path, ddos_class_key(cls));
		if (conf_node_kind(v) != CONF_NODE_MAP)
			return cerr(err, doc, v, p, "expected a mapping of bps:, pps:, fps:");
		MAP_EACH(mk, v) {
			int m = -1;
			for (int i = 0; i < DDOS_M_N && conf_node_kind(mk) == CONF_NODE_SCALAR; i++)
				if (strcmp(conf_node_value(mk), metric_keys[i]) == 0)
					m = i;
			if (m < 0)
				return cerr(err, doc, mk, p, "unknown metric '%s' (expected bps, pps or fps)",
					    conf_node_kind(mk) == CONF_NODE_SCALAR ? conf_node_value(mk) : "?");
			if ((r = parse_rate_node(doc, conf_node_next(mk), p, &t->v[cls][m], err)) < 0)
				return r;
		}
	}
	return M_OK;
}

static int name_ok(const char *s)
{
	if (!s[0] || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '.'))
			return 0;
	return 1;
}

static int parse_tiers(const struct conf_doc *doc, const struct conf_node *list,
		       const char *path, struct ddos_group_conf *g, struct buf *err)
{
	char p[160];
	size_t i = 0;
	int r;

	if (!list || conf_node_is_null(list))
		return M_OK;
	if (conf_node_kind(list) != CONF_NODE_SEQ)
		return cerr(err, doc, list, path, "expected a list of tiers ({name:, bps:, pps:})");
	for (const struct conf_node *it = conf_node_child(list); it; it = conf_node_next(it), i++) {
		struct ddos_tier *t;
		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		if (i >= DDOS_MAX_TIERS)
			return cerr(err, doc, it, path, "at most %d tiers", DDOS_MAX_TIERS);
		if (conf_node_kind(it) != CONF_NODE_MAP)
			return cerr(err, doc, it, p, "expected a mapping (name:, bps:, pps:)");
		t = &g->tiers[i];
		g->ntiers = i + 1;
		MAP_EACH(k, it) {
			const struct conf_node *v = conf_node_next(k);
			const char *key = conf_node_kind(k) == CONF_NODE_SCALAR ? conf_node_value(k) : "?";
			if (!strcmp(key, "name")) {
				if (conf_node_kind(v) != CONF_NODE_SCALAR || !name_ok(conf_node_value(v)))
					return cerr(err, doc, v, p, "name: letters, digits, '_', '-', '.' "
						    "(at most 64)");
				free(t->name);
				if (!(t->name = strdup(conf_node_value(v))))
					return M_ENOMEM;
			} else if (!strcmp(key, "bps")) {
				if ((r = parse_rate_node(doc, v, p, &t->bps, err)) < 0)
					return r;
			} else if (!strcmp(key, "pps")) {
				if ((r = parse_rate_node(doc, v, p, &t->pps, err)) < 0)
					return r;
			} else {
				return cerr(err, doc, k, p, "unknown setting '%s' (expected name, bps, pps)", key);
			}
		}
		if (!t->name)
			return cerr(err, doc, it, p, "a tier needs a name");
		if (!t->bps && !t->pps)
			return cerr(err, doc, it, p, "a tier needs bps: or pps:");
		for (size_t j = 0; j < i; j++)
			if (!strcmp(g->tiers[j].name, t->name))
				return cerr(err, doc, it, p, "duplicate tier name '%s'", t->name);
	}
	return M_OK;
}

static int parse_group(const struct conf_doc *doc, const struct conf_node *item, size_t idx,
		       struct ddos_group_conf *g, struct buf *err)
{
	char path[64], p[128];
	const struct conf_node *n;
	char *end;
	int r;

	snprintf(path, sizeof(path), "ddos.groups[%zu]", idx);
	if (conf_node_kind(item) != CONF_NODE_MAP)
		return cerr(err, doc, item, path, "expected a mapping (name:, prefixes:, thresholds:, ...)");
	if ((r = conf_apply_map(doc, item, path, group_keywords, group_skip, g, err)) < 0)
		return r;
	if (!name_ok(g->name))
		return cerr(err, doc, item, path,
			    "name is required: letters, digits, '_', '-', '.' (at most 64)");
	errno = 0;
	g->baseline = strtod(g->baseline_s, &end);
	if (!strcasecmp(g->baseline_s, "off"))
		g->baseline = 0;
	else if (end == g->baseline_s || *end || errno || !isfinite(g->baseline) ||
		 (g->baseline != 0 && (g->baseline < 1 || g->baseline > 1000)))
		return cerr(err, doc, (n = conf_map_get(item, "baseline")) ? n : item, path,
			    "baseline: expected 0 (off) or a multiple from 1 to 1000");
	if (ddos_rate_parse(g->floor_bps_s, &g->floor_bps) < 0)
		return cerr(err, doc, (n = conf_map_get(item, "baseline_floor_bps")) ? n : item, path,
			    "baseline_floor_bps: expected a rate (e.g. 100M)");
	if (ddos_rate_parse(g->floor_pps_s, &g->floor_pps) < 0)
		return cerr(err, doc, (n = conf_map_get(item, "baseline_floor_pps")) ? n : item, path,
			    "baseline_floor_pps: expected a rate (e.g. 20k)");
	snprintf(p, sizeof(p), "%s.prefixes", path);
	if ((r = parse_pfx_list(doc, conf_map_get(item, "prefixes"), p, &g->prefixes,
				&g->nprefixes, err)) < 0)
		return r;
	snprintf(p, sizeof(p), "%s.allow_sources", path);
	if ((r = parse_pfx_list(doc, conf_map_get(item, "allow_sources"), p, &g->allow_src,
				&g->nallow_src, err)) < 0)
		return r;
	snprintf(p, sizeof(p), "%s.allow_destinations", path);
	if ((r = parse_pfx_list(doc, conf_map_get(item, "allow_destinations"), p, &g->allow_dst,
				&g->nallow_dst, err)) < 0)
		return r;
	ddos_thresholds_default(&g->host, &g->prefix, &g->group);
	snprintf(p, sizeof(p), "%s.thresholds", path);
	if ((r = parse_thresholds(doc, conf_map_get(item, "thresholds"), p, &g->host, err)) < 0)
		return r;
	snprintf(p, sizeof(p), "%s.prefix_thresholds", path);
	if ((r = parse_thresholds(doc, conf_map_get(item, "prefix_thresholds"), p, &g->prefix, err)) < 0)
		return r;
	snprintf(p, sizeof(p), "%s.group_thresholds", path);
	if ((r = parse_thresholds(doc, conf_map_get(item, "group_thresholds"), p, &g->group, err)) < 0)
		return r;
	snprintf(p, sizeof(p), "%s.tiers", path);
	return parse_tiers(doc, conf_map_get(item, "tiers"), p, g, err);
}

/* A prefix claimed by two groups is ambiguous; found by sorting. */
struct pfx_ref {
	struct ddos_pfx p;
	size_t group, item;
};

static int pfx_ref_cmp(const void *x, const void *y)
{
	const struct pfx_ref *a = x, *b = y;
	int c = memcmp(a->p.a, b->p.a, 16);

	if (c)
		return c;
	return (int)a->p.len - (int)b->p.len;
}

static const struct conf_node *list_item(const struct conf_doc *doc, size_t group,
					 const char *key, size_t item)
{
	const struct conf_node *list = conf_map_get(doc->root ? conf_map_get(doc->root, "ddos") : NULL,
						    "groups");
	const struct conf_node *g = conf_node_child(list), *it;

	for (size_t i = 0; g && i < group; i++)
		g = conf_node_next(g);
	it = conf_node_child(conf_map_get(g, key));
	for (size_t i = 0; it && i < item; i++)
		it = conf_node_next(it);
	return it ? it : g;
}

static int check_overlaps(const struct conf_doc *doc, struct ddos_config *cfg, struct buf *err)
{
	size_t n = 0, k = 0;
	struct pfx_ref *v;
	int r = M_OK;

	for (size_t g = 0; g < cfg->ngroups; g++)
		n += cfg->groups[g].nprefixes;
	if (n > 65536)
		return cerr(err, doc, NULL, "ddos.groups", "at most 65536 prefixes in all groups");
	if (n < 2)
		return M_OK;
	if (!(v = calloc(n, sizeof(*v))))
		return M_ENOMEM;
	for (size_t g = 0; g < cfg->ngroups; g++)
		for (size_t i = 0; i < cfg->groups[g].nprefixes; i++)
			v[k++] = (struct pfx_ref){ cfg->groups[g].prefixes[i], g, i };
	qsort(v, n, sizeof(*v), pfx_ref_cmp);
	for (size_t i = 1; i < n && r == M_OK; i++) {
		if (pfx_ref_cmp(&v[i - 1], &v[i]) == 0) {
			char s[64], path[64];
			const struct pfx_ref *a = v[i - 1].group > v[i].group ||
				(v[i - 1].group == v[i].group && v[i - 1].item > v[i].item) ? &v[i - 1] : &v[i];
			const struct pfx_ref *b = a == &v[i] ? &v[i - 1] : &v[i];
			snprintf(path, sizeof(path), "ddos.groups[%zu].prefixes", a->group);
			r = cerr(err, doc, list_item(doc, a->group, "prefixes", a->item), path,
				 "%s is already in group '%s'", ddos_pfx_str(&a->p, s, sizeof(s)),
				 cfg->groups[b->group].name);
		}
	}
	free(v);
	return r;
}

int ddos_config_load(const struct conf_doc *doc, struct ddos_config *cfg, struct buf *err)
{
	const struct conf_node *sec = NULL, *list;
	size_t n = 0, idx = 0;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	if (doc && doc->root)
		sec = conf_map_get(doc->root, "ddos");
	if ((r = conf_apply_map(doc, sec, "ddos", ddos_keywords, ddos_skip, cfg, err)) < 0)
		return r;
	if ((r = parse_pfx_list(doc, conf_map_get(sec, "allow_sources"), "ddos.allow_sources",
				&cfg->allow_src, &cfg->nallow_src, err)) < 0 ||
	    (r = parse_pfx_list(doc, conf_map_get(sec, "allow_destinations"), "ddos.allow_destinations",
				&cfg->allow_dst, &cfg->nallow_dst, err)) < 0)
		return r;
	list = conf_map_get(sec, "groups");
	if (list && !conf_node_is_null(list)) {
		if (conf_node_kind(list) != CONF_NODE_SEQ)
			return cerr(err, doc, list, "ddos.groups", "expected a list of groups");
		for (const struct conf_node *it = conf_node_child(list); it; it = conf_node_next(it))
			n++;
		if (n > DDOS_MAX_GROUPS)
			return cerr(err, doc, list, "ddos.groups", "at most %d groups", DDOS_MAX_GROUPS);
	}
	if (n == 0) {
		/* The default group: default thresholds, no prefixes, so nothing is
		 * protected until the operator says what is. */
		if (!(cfg->groups = calloc(1, sizeof(*cfg->groups))))
			return M_ENOMEM;
		cfg->ngroups = 1;
		if ((r = conf_apply_map(NULL, NULL, "ddos.groups", group_keywords, NULL,
					cfg->groups, err)) < 0)
			return r;
		free(cfg->groups->name);
		if (!(cfg->groups->name = strdup("default")))
			return M_ENOMEM;
		cfg->groups->baseline = 5;
		ddos_rate_parse(cfg->groups->floor_bps_s, &cfg->groups->floor_bps);
		ddos_rate_parse(cfg->groups->floor_pps_s, &cfg->groups->floor_pps);
		ddos_thresholds_default(&cfg->groups->host, &cfg->groups->prefix, &cfg->groups->group);
		return M_OK;
	}
	if (!(cfg->groups = calloc(n, sizeof(*cfg->groups))))
		return M_ENOMEM;
	for (const struct conf_node *it = conf_node_child(list); it; it = conf_node_next(it), idx++) {
		cfg->ngroups = idx + 1;
		if ((r = parse_group(doc, it, idx, &cfg->groups[idx], err)) < 0)
			return r;
		for (size_t j = 0; j < idx; j++)
			if (!strcmp(cfg->groups[j].name, cfg->groups[idx].name)) {
				char path[64];
				snprintf(path, sizeof(path), "ddos.groups[%zu]", idx);
				return cerr(err, doc, it, path, "duplicate group name '%s'",
					    cfg->groups[idx].name);
			}
	}
	return check_overlaps(doc, cfg, err);
}

void ddos_config_free(struct ddos_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->ngroups; i++) {
		struct ddos_group_conf *g = &cfg->groups[i];
		conf_free(group_keywords, g);
		free(g->prefixes);
		free(g->allow_src);
		free(g->allow_dst);
		for (size_t t = 0; t < DDOS_MAX_TIERS; t++)
			free(g->tiers[t].name);
	}
	free(cfg->groups);
	free(cfg->allow_src);
	free(cfg->allow_dst);
	conf_free(ddos_keywords, cfg);
	memset(cfg, 0, sizeof(*cfg));
}

int ddos_config_changed_fixed(const struct ddos_config *a, const struct ddos_config *b,
			      struct buf *out)
{
	/* Groups, their thresholds and tiers and the allow lists are all
	 * reloadable: only the scalars can need a restart. */
	return conf_changed_fixed("ddos", ddos_keywords, a, b, out);
}

int ddos_config_describe(struct buf *out)
{
	struct ddos_thresholds h, p, g;
	char rb[16];
	int r;

	if ((r = conf_describe("ddos", ddos_keywords, out)) < 0 ||
	    (r = buf_puts(out, "  # groups, allow_sources and allow_destinations are reloadable (SIGHUP)\n"
			  "  # allow_sources: prefixes whose traffic is never counted "
			  "(speed tests, scanners you run)\n"
			  "  # allow_destinations: prefixes that are watched but never mitigated\n"
			  "  # groups: a list; without it one group \"default\" protects nothing. "
			  "Each item takes:\n"
			  "  #   prefixes: [203.0.113.0/24, 2001:db8::/32]\n"
			  "  #   allow_sources, allow_destinations: as above, for this group\n")) < 0)
		return r;
	for (const struct conf_keyword *k = group_keywords; k->name; k++)
		if ((r = buf_printf(out, "  #   %s (default \"%s\"): %s\n", k->name,
				    k->def ? k->def : "", k->help)) < 0)
			return r;
	if ((r = buf_puts(out, "  #   thresholds (per host), prefix_thresholds (per /24 or /48),\n"
			  "  #   group_thresholds (whole group): {class: {bps:, pps:, fps:}}; classes:\n"
			  "  #    ")) < 0)
		return r;
	for (int c = 0; c < DDOS_C_N; c++)
		if ((r = buf_printf(out, " %s", ddos_class_key(c))) < 0)
			return r;
	if ((r = buf_puts(out, "\n  #   tiers: [{name: flowspec, bps: 1G}, {name: blackhole, bps: 10G}]\n"
			  "  # default thresholds:\n")) < 0)
		return r;
	ddos_thresholds_default(&h, &p, &g);
	for (int w = 0; w < 3; w++) {
		const struct ddos_thresholds *t = w == 0 ? &h : w == 1 ? &p : &g;
		if ((r = buf_printf(out, "  #   %s:", w == 0 ? "thresholds" : w == 1 ?
				    "prefix_thresholds" : "group_thresholds")) < 0)
			return r;
		for (int c = 0; c < DDOS_C_N; c++)
			for (int m = 0; m < DDOS_M_N; m++)
				if (t->v[c][m] && (r = buf_printf(out, " %s.%s=%s", ddos_class_key(c),
								  metric_keys[m],
								  ddos_rate_str((double)t->v[c][m], rb,
										sizeof(rb)))) < 0)
					return r;
		if ((r = buf_puts(out, "\n")) < 0)
			return r;
	}
	return M_OK;
}
