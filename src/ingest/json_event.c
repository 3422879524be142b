/*
 * JSON-lines events: Suricata EVE, Windows events rendered as JSON (the
 * {"Event":{"System":...,"EventData":...}} shape NXLog and EVTX converters
 * emit), and generic JSON whose keys, flattened with dots, become fields.
 *
 * One object per call, read with the allocation-free tokenizer in
 * json_scan.c rather than a DOM: values stay slices of the record unless
 * they have escapes, and only names of overflow fields are built in the
 * arena. A first, cheap pass over the top-level keys decides the shape
 * ("event_type" → EVE, an "Event" object → Windows); the second pass maps
 * leaves to ECS fields by their dotted path. Recursion is bounded by the
 * tokenizer's depth limit and paths by JSON_PATH_MAX.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "ingest/ingest.h"
#include "ingest/ingest_time.h"
#include "ingest/json_scan.h"

#define JSON_PATH_MAX 512
#define EVE_PREFIX "suricata.eve."
#define EVE_PREFIX_LEN (sizeof(EVE_PREFIX) - 1)
#define DNS_MAX_ANSWERS 32

enum jmode { JM_GENERIC, JM_EVE, JM_WIN };

struct jctx {
	struct event *ev;
	struct arena *a;
	struct json_scan s;
	int mode;
	size_t base;              /* fixed prefix of path (EVE) */
	size_t plen;
	int ts_prio;              /* which key gave @timestamp (generic) */
	struct str event_type;    /* EVE */
	struct str alert_action;
	struct str win_provider, win_channel, win_code;
	int win_data_n;           /* unnamed EventData items seen */
	char path[JSON_PATH_MAX];
};

static int walk_object(struct jctx *c);
static int walk_value(struct jctx *c, const struct json_token *t);

/* ------------------------------------------------------------------ */
/* Helpers */

/* A copy of name into the arena, then an overflow field (or a known one,
 * when the name is in the schema). Returns the name's overflow number
 * (XN_*), 0 when it has none or is a known field. */
static unsigned put_named(struct jctx *c, const char *name, size_t len,
			  struct str v, int kind)
{
	char *nm;
	unsigned xid;
	int f = schema_lookup_x(name, len, &xid);

	/* Known names need no copy. */
	if (f >= 0) {
		event_set(c->ev, f, v);
		return 0;
	}
	if (c->ev->n_extra >= EVENT_MAX_EXTRA) {
		event_set_parse_error(c->ev, PE_TOO_MANY_FIELDS);
		return xid;
	}
	if (!(nm = arena_alloc(c->a, len ? len : 1)))
		return xid;
	memcpy(nm, name, len);
	(void)event_set_extra(c->ev, c->a, str_make(nm, len), v, kind, xid);
	return xid;
}

/* put_named with the name built from two parts. */
static unsigned put_named2(struct jctx *c, const char *a1, size_t n1,
			   const char *a2, size_t n2, struct str v, int kind)
{
	char tmp[JSON_PATH_MAX + 64];

	if (n1 + n2 > sizeof(tmp)) {
		event_set_parse_error(c->ev, PE_TOO_MANY_FIELDS);
		return 0;
	}
	memcpy(tmp, a1, n1);
	memcpy(tmp + n1, a2, n2);
	return put_named(c, tmp, n1 + n2, v, kind);
}

static int path_is(const struct jctx *c, size_t from, const char *lit)
{
	size_t n = strlen(lit);
	return c->plen - from == n && memcmp(c->path + from, lit, n) == 0;
}

/* Epoch seconds (or milliseconds when 12+ integer digits), with an
 * optional fraction, as found in "time"/"ts" keys of JSON logs. */
static int parse_epoch(struct str v, int64_t *us)
{
	int64_t ip = 0, frac = 0, scale = 100000;
	uint32_t i = 0, nd = 0;

	while (i < v.n && (unsigned)(v.p[i] - '0') <= 9 && nd < 16) {
		ip = ip * 10 + (v.p[i++] - '0');
		nd++;
	}
	if (nd == 0 || (i < v.n && v.p[i] != '.'))
		return M_EPARSE;
	if (i < v.n) {
		i++;
		while (i < v.n && (unsigned)(v.p[i] - '0') <= 9) {
			if (scale) {
				frac += (v.p[i] - '0') * scale;
				scale /= 10;
			}
			i++;
		}
		if (i != v.n)
			return M_EPARSE;
	}
	/* Bounded before scaling: at most year 9999 in milliseconds. */
	if (nd >= 16 || ip > 253402300799999LL)
		return M_EPARSE;
	if (nd >= 12)
		*us = ip * 1000 + frac / 1000;
	else
		*us = ip * 1000000 + frac;
	return M_OK;
}

static int parse_any_time(struct str v, int64_t *us)
{
	if (ingest_time_rfc3339(v.p, v.n, us) == M_OK)
		return M_OK;
	return parse_epoch(v, us);
}

/* ------------------------------------------------------------------ */
/* Suricata EVE */

enum eve_conv {
	EC_PLAIN,
	EC_LOWER,
	EC_TS,
	EC_EVENT_TYPE,
	EC_ACTION,
	EC_TLS_VERSION,
	EC_HTTP_PROTO,
	EC_DNS_TYPE,
	EC_FINGERPRINT,
};

struct eve_map {
	const char *path;
	uint8_t len;
	uint8_t conv;
	int16_t f1, f2;
};

#define EM(p, conv, f1, f2) { p, sizeof(p) - 1, conv, f1, f2 }

static const struct eve_map eve_maps[] = {
	EM("timestamp", EC_TS, -1, -1),
	EM("flow_id", EC_PLAIN, F_SURICATA_EVE_FLOW_ID, -1),
	EM("in_iface", EC_PLAIN, F_SURICATA_EVE_IN_IFACE, -1),
	EM("event_type", EC_EVENT_TYPE, F_SURICATA_EVE_EVENT_TYPE, -1),
	EM("src_ip", EC_PLAIN, F_SOURCE_IP, -1),
	EM("src_port", EC_PLAIN, F_SOURCE_PORT, -1),
	EM("dest_ip", EC_PLAIN, F_DESTINATION_IP, -1),
	EM("dest_port", EC_PLAIN, F_DESTINATION_PORT, -1),
	EM("proto", EC_LOWER, F_NETWORK_TRANSPORT, -1),
	EM("app_proto", EC_LOWER, F_NETWORK_PROTOCOL, -1),
	EM("community_id", EC_PLAIN, F_NETWORK_COMMUNITY_ID, -1),
	EM("host", EC_PLAIN, F_OBSERVER_NAME, -1),
	EM("alert.signature_id", EC_PLAIN, F_RULE_ID, F_SURICATA_EVE_ALERT_SIGNATURE_ID),
	EM("alert.signature", EC_PLAIN, F_RULE_NAME, F_MESSAGE),
	EM("alert.category", EC_PLAIN, F_RULE_CATEGORY, -1),
	EM("alert.severity", EC_PLAIN, F_EVENT_SEVERITY, F_SURICATA_EVE_ALERT_SEVERITY),
	EM("alert.action", EC_ACTION, F_SURICATA_EVE_ALERT_ACTION, -1),
	EM("alert.rev", EC_PLAIN, F_SURICATA_EVE_ALERT_REV, F_RULE_VERSION),
	EM("alert.gid", EC_PLAIN, F_SURICATA_EVE_ALERT_GID, -1),
	EM("dns.type", EC_DNS_TYPE, F_DNS_TYPE, -1),
	EM("dns.id", EC_PLAIN, F_DNS_ID, -1),
	EM("dns.rrname", EC_PLAIN, F_DNS_QUESTION_NAME, -1),
	EM("dns.rrtype", EC_PLAIN, F_DNS_QUESTION_TYPE, -1),
	EM("dns.rcode", EC_PLAIN, F_DNS_RESPONSE_CODE, -1),
	EM("http.hostname", EC_PLAIN, F_URL_DOMAIN, -1),
	EM("http.url", EC_PLAIN, F_URL_ORIGINAL, -1),
	EM("http.http_method", EC_PLAIN, F_HTTP_REQUEST_METHOD, -1),
	EM("http.status", EC_PLAIN, F_HTTP_RESPONSE_STATUS_CODE, -1),
	EM("http.http_user_agent", EC_PLAIN, F_USER_AGENT_ORIGINAL, -1),
	EM("http.length", EC_PLAIN, F_HTTP_RESPONSE_BYTES, -1),
	EM("http.http_refer", EC_PLAIN, F_HTTP_REQUEST_REFERRER, -1),
	EM("http.http_content_type", EC_PLAIN, F_HTTP_RESPONSE_MIME_TYPE, -1),
	EM("http.protocol", EC_HTTP_PROTO, F_HTTP_VERSION, -1),
	EM("tls.sni", EC_PLAIN, F_TLS_CLIENT_SERVER_NAME, -1),
	EM("tls.version", EC_TLS_VERSION, F_TLS_VERSION, -1),
	EM("tls.subject", EC_PLAIN, F_TLS_SERVER_SUBJECT, -1),
	EM("tls.issuerdn", EC_PLAIN, F_TLS_SERVER_ISSUER, -1),
	EM("tls.ja3.hash", EC_PLAIN, F_TLS_CLIENT_JA3, -1),
	EM("tls.ja3s.hash", EC_PLAIN, F_TLS_SERVER_JA3S, -1),
	EM("tls.notbefore", EC_PLAIN, F_TLS_SERVER_NOT_BEFORE, -1),
	EM("tls.notafter", EC_PLAIN, F_TLS_SERVER_NOT_AFTER, -1),
	EM("tls.fingerprint", EC_FINGERPRINT, F_TLS_SERVER_HASH_SHA1, -1),
	EM("flow.bytes_toserver", EC_PLAIN, F_SOURCE_BYTES, -1),
	EM("flow.bytes_toclient", EC_PLAIN, F_DESTINATION_BYTES, -1),
	EM("flow.pkts_toserver", EC_PLAIN, F_SOURCE_PACKETS, -1),
	EM("flow.pkts_toclient", EC_PLAIN, F_DESTINATION_PACKETS, -1),
	EM("fileinfo.filename", EC_PLAIN, F_FILE_NAME, -1),
	EM("fileinfo.size", EC_PLAIN, F_FILE_SIZE, -1),
	EM("fileinfo.md5", EC_PLAIN, F_FILE_HASH_MD5, -1),
	EM("fileinfo.sha1", EC_PLAIN, F_FILE_HASH_SHA1, -1),
	EM("fileinfo.sha256", EC_PLAIN, F_FILE_HASH_SHA256, -1),
	EM("fileinfo.magic", EC_PLAIN, F_FILE_MIME_TYPE, -1),
};

#define N_EVE_MAPS (sizeof(eve_maps) / sizeof(eve_maps[0]))

static const struct eve_map *eve_find(const char *p, size_t n)
{
	for (size_t i = 0; i < N_EVE_MAPS; i++)
		if (eve_maps[i].len == n && p[0] == eve_maps[i].path[0] &&
		    memcmp(eve_maps[i].path, p, n) == 0)
			return &eve_maps[i];
	return NULL;
}

/* "TLS 1.2" → tls.version "1.2", tls.version_protocol "tls"; "SSLv3" →
 * "3.0", "ssl"; anything else is kept as is. */
static void set_tls_version(struct jctx *c, struct str v)
{
	if (v.n > 4 && memcmp(v.p, "TLS ", 4) == 0) {
		event_set(c->ev, F_TLS_VERSION, str_make(v.p + 4, v.n - 4));
		event_set(c->ev, F_TLS_VERSION_PROTOCOL, STR_LIT("tls"));
	} else if (v.n > 4 && memcmp(v.p, "SSLv", 4) == 0) {
		event_set(c->ev, F_TLS_VERSION,
			  v.p[4] == '3' ? STR_LIT("3.0") : STR_LIT("2.0"));
		event_set(c->ev, F_TLS_VERSION_PROTOCOL, STR_LIT("ssl"));
	} else {
		event_set(c->ev, F_TLS_VERSION, v);
	}
}

static struct str strip_colons(struct arena *a, struct str v)
{
	char *o = arena_alloc(a, v.n ? v.n : 1);
	uint32_t k = 0;

	if (!o)
		return v;
	for (uint32_t i = 0; i < v.n; i++)
		if (v.p[i] != ':')
			o[k++] = v.p[i];
	return str_make(o, k);
}

static int eve_leaf(struct jctx *c, struct str v, int kind)
{
	const char *rel = c->path + c->base;
	size_t rn = c->plen - c->base;
	const struct eve_map *m = rn ? eve_find(rel, rn) : NULL;
	int64_t us;

	if (!m) {
		put_named(c, c->path, c->plen, v, kind);
		return 0;
	}
	switch (m->conv) {
	case EC_PLAIN:
		event_set(c->ev, m->f1, v);
		break;
	case EC_LOWER:
		event_set(c->ev, m->f1, str_lower(c->a, v));
		break;
	case EC_TS:
		if (ingest_time_rfc3339(v.p, v.n, &us) == M_OK)
			c->ev->ts_us = us;
		else
			event_set_parse_error(c->ev, PE_BAD_TIMESTAMP);
		break;
	case EC_EVENT_TYPE:
		c->event_type = v;
		event_set(c->ev, m->f1, v);
		break;
	case EC_ACTION:
		c->alert_action = v;
		event_set(c->ev, m->f1, v);
		break;
	case EC_TLS_VERSION:
		set_tls_version(c, v);
		break;
	case EC_HTTP_PROTO:
		if (v.n > 5 && memcmp(v.p, "HTTP/", 5) == 0)
			v = str_make(v.p + 5, v.n - 5);
		event_set(c->ev, m->f1, v);
		break;
	case EC_DNS_TYPE:
		if (str_eq_cstr(v, "query") || str_eq_cstr(v, "request"))
			v = STR_LIT("query");
		else if (str_eq_cstr(v, "answer") || str_eq_cstr(v, "response"))
			v = STR_LIT("answer");
		event_set(c->ev, m->f1, v);
		break;
	case EC_FINGERPRINT:
		event_set(c->ev, m->f1, strip_colons(c->a, v));
		break;
	}
	if (m->f2 >= 0)
		event_set(c->ev, m->f2, v);
	return 0;
}

/* dns.answers / dns.queries: arrays of objects. The whole array is kept as
 * raw JSON in suricata.eve.dns.*; answers' rdata also go to
 * dns.answers.data (one value, or a JSON array of them), the first A/AAAA
 * answer to dns.resolved_ip, the first query to dns.question.*. */
static int eve_dns_array(struct jctx *c, const struct json_token *open,
			 int queries)
{
	struct str rdata[DNS_MAX_ANSWERS];   /* raw, with quotes */
	struct str ip = { 0, 0 };
	size_t nr = 0, first = 1;
	struct json_token t, k, v;
	int type;

	for (;;) {
		type = json_scan_next(&c->s, &t);
		if (type == JT_ARR_END)
			break;
		if (type == JT_ERROR)
			return -1;
		if (type != JT_OBJ_BEGIN) {
			if (json_scan_skip(&c->s, &t) < 0)
				return -1;
			continue;
		}
		struct str rr = { 0, 0 }, rrtype = { 0, 0 }, rd = { 0, 0 };
		struct json_token rdtok = { 0 };
		for (;;) {
			type = json_scan_next(&c->s, &k);
			if (type == JT_OBJ_END)
				break;
			if (type != JT_KEY || json_scan_next(&c->s, &v) < 0)
				return -1;
			if (v.type == JT_ERROR)
				return -1;
			if (v.type == JT_STRING) {
				struct str val;
				if (json_str_decode(&v, c->a, &val) < 0)
					val = str_make(v.p, v.n);
				if (k.n == 6 && memcmp(k.p, "rrname", 6) == 0)
					rr = val;
				else if (k.n == 6 && memcmp(k.p, "rrtype", 6) == 0)
					rrtype = val;
				else if (k.n == 5 && memcmp(k.p, "rdata", 5) == 0) {
					rd = val;
					rdtok = v;
				}
			} else if (json_scan_skip(&c->s, &v) < 0) {
				return -1;
			}
		}
		if (queries && first && rr.p) {
			event_set(c->ev, F_DNS_QUESTION_NAME, rr);
			if (rrtype.p)
				event_set(c->ev, F_DNS_QUESTION_TYPE, rrtype);
		}
		first = 0;
		if (!queries && rd.p) {
			if (nr < DNS_MAX_ANSWERS)
				rdata[nr++] = str_make(rdtok.p - 1, rdtok.n + 2);
			if (!ip.p && (str_eq_cstr(rrtype, "A") ||
				      str_eq_cstr(rrtype, "AAAA")))
				ip = rd;
			if (nr == 1)
				rdata[DNS_MAX_ANSWERS - 1] = rd;   /* decoded first */
		}
	}
	put_named(c, c->path, c->plen,
		  str_make(open->p, (size_t)(c->s.p - open->p)), EXTRA_RAW_JSON);
	if (ip.p)
		event_set(c->ev, F_DNS_RESOLVED_IP, ip);
	if (nr == 1) {
		event_set(c->ev, F_DNS_ANSWERS_DATA, rdata[DNS_MAX_ANSWERS - 1]);
	} else if (nr > 1) {
		size_t len = 2;
		char *o;
		for (size_t i = 0; i < nr; i++)
			len += rdata[i].n + 1;
		if ((o = arena_alloc(c->a, len))) {
			size_t w = 0;
			o[w++] = '[';
			for (size_t i = 0; i < nr; i++) {
				if (i)
					o[w++] = ',';
				memcpy(o + w, rdata[i].p, rdata[i].n);
				w += rdata[i].n;
			}
			o[w++] = ']';
			event_set(c->ev, F_DNS_ANSWERS_DATA, str_make(o, w));
		}
	}
	return 0;
}

static void eve_finish(struct jctx *c)
{
	struct event *ev = c->ev;
	struct str et = c->event_type;
	const char *cat = "network", *type = "info", *kind = "event";

	if (str_eq_cstr(et, "alert")) {
		kind = "alert";
		cat = "intrusion_detection";
		/* As Suricata says; an alert without an action is only "info". */
		if (str_eq_cstr(c->alert_action, "blocked"))
			type = "denied";
		else if (str_eq_cstr(c->alert_action, "allowed"))
			type = "allowed";
	} else if (str_eq_cstr(et, "dns") || str_eq_cstr(et, "http") ||
		   str_eq_cstr(et, "tls") || str_eq_cstr(et, "smtp") ||
		   str_eq_cstr(et, "ssh")) {
		type = "protocol";
	} else if (str_eq_cstr(et, "flow") || str_eq_cstr(et, "netflow")) {
		type = "connection";
	} else if (str_eq_cstr(et, "fileinfo")) {
		cat = "file";
	} else if (str_eq_cstr(et, "anomaly")) {
		kind = "alert";
	} else if (str_eq_cstr(et, "stats")) {
		kind = "metric";
		cat = "host";
	}
	event_set(ev, F_EVENT_KIND, str_cstr(kind));
	event_set(ev, F_EVENT_CATEGORY, str_cstr(cat));
	event_set(ev, F_EVENT_TYPE, str_cstr(type));
	if (!event_has(ev, F_EVENT_DATASET))
		event_set(ev, F_EVENT_DATASET, STR_LIT("suricata.eve"));
	event_set(ev, F_EVENT_MODULE, STR_LIT("suricata"));
}

/* ------------------------------------------------------------------ */
/* Windows events */

enum win_conv {
	WC_PLAIN,
	WC_EXE,          /* path → field and process(.parent).name basename */
	WC_PID,          /* decimal or 0x hex */
	WC_USER,         /* DOMAIN\name */
	WC_USER_UNSET,   /* user.name only if not set yet */
	WC_FILE,         /* path → file.path and file.name */
	WC_HASHES,       /* "SHA1=..,MD5=..,SHA256=.." */
	WC_LOWER,
	WC_IP,           /* "-" is no address */
};

struct win_map {
	const char *name;
	uint8_t conv;
	int16_t f1, f2;
};

static const struct win_map win_maps[] = {
	{ "Image", WC_EXE, F_PROCESS_EXECUTABLE, F_PROCESS_NAME },
	{ "CommandLine", WC_PLAIN, F_PROCESS_COMMAND_LINE, -1 },
	{ "ParentImage", WC_EXE, F_PROCESS_PARENT_EXECUTABLE, F_PROCESS_PARENT_NAME },
	{ "ParentCommandLine", WC_PLAIN, F_PROCESS_PARENT_COMMAND_LINE, -1 },
	{ "ProcessId", WC_PID, F_PROCESS_PID, -1 },
	{ "ParentProcessId", WC_PID, F_PROCESS_PARENT_PID, -1 },
	{ "NewProcessName", WC_EXE, F_PROCESS_EXECUTABLE, F_PROCESS_NAME },
	{ "NewProcessId", WC_PID, F_PROCESS_PID, -1 },
	{ "ParentProcessName", WC_EXE, F_PROCESS_PARENT_EXECUTABLE, F_PROCESS_PARENT_NAME },
	{ "User", WC_USER, F_USER_NAME, F_USER_DOMAIN },
	{ "SubjectUserName", WC_USER_UNSET, F_USER_NAME, -1 },
	{ "SubjectDomainName", WC_USER_UNSET, F_USER_DOMAIN, -1 },
	{ "TargetFilename", WC_FILE, F_FILE_PATH, F_FILE_NAME },
	{ "Hashes", WC_HASHES, -1, -1 },
	{ "SourceIp", WC_IP, F_SOURCE_IP, -1 },
	{ "DestinationIp", WC_IP, F_DESTINATION_IP, -1 },
	{ "SourcePort", WC_PLAIN, F_SOURCE_PORT, -1 },
	{ "DestinationPort", WC_PLAIN, F_DESTINATION_PORT, -1 },
	{ "SourceHostname", WC_PLAIN, F_SOURCE_DOMAIN, -1 },
	{ "DestinationHostname", WC_PLAIN, F_DESTINATION_DOMAIN, -1 },
	{ "Protocol", WC_LOWER, F_NETWORK_TRANSPORT, -1 },
	{ "IpAddress", WC_IP, F_SOURCE_IP, -1 },
	{ "IpPort", WC_PLAIN, F_SOURCE_PORT, -1 },
	{ "QueryName", WC_PLAIN, F_DNS_QUESTION_NAME, -1 },
	{ "QueryResults", WC_PLAIN, F_DNS_ANSWERS_DATA, -1 },
};

#define N_WIN_MAPS (sizeof(win_maps) / sizeof(win_maps[0]))

static struct str basename_of(struct str v)
{
	for (uint32_t i = v.n; i > 0; i--)
		if (v.p[i - 1] == '\\' || v.p[i - 1] == '/')
			return str_make(v.p + i, v.n - i);
	return v;
}

/* "0x1f4" → "500" in the arena; decimal text is kept. */
static int pid_text(struct arena *a, struct str v, struct str *out)
{
	uint64_t x = 0;
	char tmp[24], *o;
	int k = 0;

	if (v.n > 2 && v.p[0] == '0' && (v.p[1] == 'x' || v.p[1] == 'X')) {
		if (v.n > 18)
			return -1;
		for (uint32_t i = 2; i < v.n; i++) {
			char ch = v.p[i];
			unsigned d;
			if (ch >= '0' && ch <= '9')
				d = (unsigned)(ch - '0');
			else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
				d = (unsigned)((ch | 0x20) - 'a' + 10);
			else
				return -1;
			x = x << 4 | d;
		}
		do {
			tmp[k++] = (char)('0' + x % 10);
			x /= 10;
		} while (x);
		if (!(o = arena_alloc(a, (size_t)k)))
			return -1;
		for (int i = 0; i < k; i++)
			o[i] = tmp[k - 1 - i];
		*out = str_make(o, (size_t)k);
		return 0;
	}
	int64_t d;
	if (str_to_i64(v, &d) < 0 || d < 0)
		return -1;
	*out = v;
	return 0;
}

static void set_hashes(struct jctx *c, struct str v)
{
	uint32_t i = 0;

	while (i < v.n) {
		uint32_t s = i, eq = 0, e;
		while (i < v.n && v.p[i] != ',') {
			if (v.p[i] == '=' && !eq)
				eq = i;
			i++;
		}
		e = i++;
		if (!eq)
			continue;
		struct str alg = str_make(v.p + s, eq - s),
			   h = str_lower(c->a, str_make(v.p + eq + 1, e - eq - 1));
		if (str_eq_cstr(alg, "MD5"))
			event_set(c->ev, F_FILE_HASH_MD5, h);
		else if (str_eq_cstr(alg, "SHA1"))
			event_set(c->ev, F_FILE_HASH_SHA1, h);
		else if (str_eq_cstr(alg, "SHA256"))
			event_set(c->ev, F_FILE_HASH_SHA256, h);
	}
}

/* The win_maps entry (+ 1) of each overflow number of a
 * winlog.event_data.<name> a map names: an item's mapping found by the
 * number its name lookup gave, not by comparing it with every map. */
static uint8_t win_map_of[SCHEMA_NXNAMES];
static pthread_once_t win_map_once = PTHREAD_ONCE_INIT;

static void win_map_init(void)
{
	char nm[128];
	unsigned xid;
	int n;

	for (size_t i = 0; i < N_WIN_MAPS && i < UINT8_MAX; i++) {
		n = snprintf(nm, sizeof(nm), "winlog.event_data.%s", win_maps[i].name);
		if (n > 0 && (size_t)n < sizeof(nm) && schema_lookup_x(nm, (size_t)n, &xid) < 0 && xid)
			win_map_of[xid] = (uint8_t)(i + 1);
	}
}

/* One EventData (or UserData) item: winlog.event_data.<name> plus ECS. */
static void win_data(struct jctx *c, const char *prefix, struct str name,
		     struct str v, int kind)
{
	const struct win_map *m = NULL;
	struct str x;
	char packed[JSON_PATH_MAX];
	unsigned xid;

	/* Some providers (Defender, ...) name items with spaces ("Threat
	 * Name"); rules and queries name them without, as Sigma does. */
	if (memchr(name.p, ' ', name.n) && name.n <= sizeof(packed)) {
		size_t k = 0;
		for (uint32_t i = 0; i < name.n; i++)
			if (name.p[i] != ' ')
				packed[k++] = name.p[i];
		name = str_make(arena_strndup(c->a, packed, k), k);
		if (!name.p)
			return;
	}
	xid = put_named2(c, prefix, strlen(prefix), name.p, name.n, v, kind);
	if (xid && strcmp(prefix, "winlog.event_data.") == 0) {
		/* A numbered name: mapped exactly when a map names it. */
		pthread_once(&win_map_once, win_map_init);
		if (win_map_of[xid])
			m = &win_maps[win_map_of[xid] - 1];
	} else {
		for (size_t i = 0; i < N_WIN_MAPS; i++) {
			if (str_eq_cstr(name, win_maps[i].name)) {
				m = &win_maps[i];
				break;
			}
		}
	}
	if (!m)
		return;
	switch (m->conv) {
	case WC_PLAIN:
		event_set(c->ev, m->f1, v);
		break;
	case WC_EXE:
	case WC_FILE:
		event_set(c->ev, m->f1, v);
		event_set(c->ev, m->f2, basename_of(v));
		break;
	case WC_PID:
		if (pid_text(c->a, v, &x) == 0)
			event_set(c->ev, m->f1, x);
		break;
	case WC_USER:
		for (uint32_t i = 0; i < v.n; i++) {
			if (v.p[i] == '\\') {
				event_set(c->ev, m->f2, str_make(v.p, i));
				event_set(c->ev, m->f1, str_make(v.p + i + 1, v.n - i - 1));
				return;
			}
		}
		event_set(c->ev, m->f1, v);
		break;
	case WC_USER_UNSET:
		if (!event_has(c->ev, m->f1) && !str_eq_cstr(v, "-"))
			event_set(c->ev, m->f1, v);
		break;
	case WC_HASHES:
		set_hashes(c, v);
		break;
	case WC_LOWER:
		event_set(c->ev, m->f1, str_lower(c->a, v));
		break;
	case WC_IP:
		if (v.n && !str_eq_cstr(v, "-"))
			event_set(c->ev, m->f1, v);
		break;
	}
}

struct win_sys {
	const char *path;   /* relative to "Event.System." */
	const char *name;   /* overflow name */
	int16_t field;
};

static const struct win_sys win_sys[] = {
	{ "Provider.Name", "winlog.provider_name", F_EVENT_PROVIDER },
	{ "Provider.Guid", "winlog.provider_guid", -1 },
	{ "EventID", "winlog.event_id", F_EVENT_CODE },
	{ "Channel", "winlog.channel", -1 },
	{ "Computer", "winlog.computer_name", F_HOST_NAME },
	{ "EventRecordID", "winlog.record_id", -1 },
	{ "Execution.ProcessID", "winlog.process.pid", -1 },
	{ "Execution.ThreadID", "winlog.process.thread.id", -1 },
	{ "Security.UserID", "winlog.user.identifier", -1 },
	{ "Version", "winlog.version", -1 },
	{ "Level", "winlog.level", -1 },
	{ "Task", "winlog.task", -1 },
	{ "Opcode", "winlog.opcode", -1 },
	{ "Keywords", "winlog.keywords", -1 },
	{ "Correlation.ActivityID", "winlog.activity_id", -1 },
};

#define N_WIN_SYS (sizeof(win_sys) / sizeof(win_sys[0]))

/* A leaf under "Event.": rel is the path after it. */
static void win_leaf(struct jctx *c, const char *rel, size_t rn, struct str v,
		     int kind)
{
	int64_t us;

	if (rn > 7 && memcmp(rel, "System.", 7) == 0) {
		const char *r = rel + 7;
		size_t n = rn - 7;
		if (n == 22 && memcmp(r, "TimeCreated.SystemTime", 22) == 0) {
			if (ingest_time_rfc3339(v.p, v.n, &us) == M_OK)
				c->ev->ts_us = us;
			else
				event_set_parse_error(c->ev, PE_BAD_TIMESTAMP);
			return;
		}
		for (size_t i = 0; i < N_WIN_SYS; i++) {
			if (strlen(win_sys[i].path) == n &&
			    memcmp(win_sys[i].path, r, n) == 0) {
				if (win_sys[i].field >= 0)
					event_set(c->ev, win_sys[i].field, v);
				put_named(c, win_sys[i].name, strlen(win_sys[i].name),
					  v, kind);
				if (i == 0)
					c->win_provider = v;
				else if (i == 2)
					c->win_code = v;
				else if (i == 3)
					c->win_channel = v;
				return;
			}
		}
		put_named2(c, "winlog.", 7, rel, rn, v, kind);
		return;
	}
	if (rn > 10 && memcmp(rel, "EventData.", 10) == 0) {
		win_data(c, "winlog.event_data.", str_make(rel + 10, rn - 10), v, kind);
		return;
	}
	if (rn > 9 && memcmp(rel, "UserData.", 9) == 0) {
		/* UserData wraps its items in one element named after the
		 * event; the items are what rules look at. */
		const char *dot = memchr(rel + 9, '.', rn - 9);
		if (dot) {
			size_t off = (size_t)(dot + 1 - rel);
			win_data(c, "winlog.user_data.", str_make(rel + off, rn - off),
				 v, kind);
			return;
		}
	}
	if (rn == 21 && memcmp(rel, "RenderingInfo.Message", 21) == 0) {
		event_set(c->ev, F_MESSAGE, v);
		return;
	}
	if (rn == 19 && memcmp(rel, "RenderingInfo.Level", 19) == 0) {
		event_set(c->ev, F_LOG_LEVEL, v);
		return;
	}
	put_named2(c, "winlog.", 7, rel, rn, v, kind);
}

/* EventData.Data in the XML-like form: [{"Name":"X","#text":"v"}, ...], a
 * single such object, or unnamed values (named param1, param2, ...). */
static int win_data_item(struct jctx *c, const struct json_token *t)
{
	struct json_token k, v;
	struct str name = { 0, 0 }, val = { 0, 0 };
	int kind = EXTRA_STRING, type;
	char pn[24];

	if (t->type != JT_OBJ_BEGIN) {
		if (t->type == JT_ARR_BEGIN) {
			if (json_scan_skip(&c->s, t) < 0)
				return -1;
			return 0;
		}
		if (t->type == JT_NULL)
			return 0;
		if (t->type == JT_STRING) {
			if (json_str_decode(t, c->a, &val) < 0)
				return 0;
		} else {
			val = str_make(t->p, t->n);
			kind = t->type == JT_NUMBER ? EXTRA_NUMBER : EXTRA_RAW_JSON;
		}
		int len = 5;
		unsigned num = (unsigned)++c->win_data_n, div = 1;
		memcpy(pn, "param", 5);
		while (num / div >= 10)
			div *= 10;
		for (; div; div /= 10)
			pn[len++] = (char)('0' + num / div % 10);
		win_data(c, "winlog.event_data.", str_make(pn, (size_t)len), val, kind);
		return 0;
	}
	for (;;) {
		type = json_scan_next(&c->s, &k);
		if (type == JT_OBJ_END)
			break;
		if (type != JT_KEY)
			return -1;
		type = json_scan_next(&c->s, &v);
		if (type == JT_ERROR)
			return -1;
		if (k.n == 4 && memcmp(k.p, "Name", 4) == 0 && type == JT_STRING) {
			if (json_str_decode(&v, c->a, &name) < 0)
				return 0;
		} else if (k.n == 5 && memcmp(k.p, "#text", 5) == 0 &&
			   (type == JT_STRING || type == JT_NUMBER)) {
			if (type == JT_STRING) {
				if (json_str_decode(&v, c->a, &val) < 0)
					return 0;
			} else {
				val = str_make(v.p, v.n);
				kind = EXTRA_NUMBER;
			}
		} else if (json_scan_skip(&c->s, &v) < 0) {
			return -1;
		}
	}
	if (name.n && name.n < 256)
		win_data(c, "winlog.event_data.", name, val.p ? val : STR_LIT(""), kind);
	return 0;
}

static int win_data_array(struct jctx *c)
{
	struct json_token t;
	int type;

	for (;;) {
		type = json_scan_next(&c->s, &t);
		if (type == JT_ARR_END)
			return 0;
		if (type == JT_ERROR || type == JT_END)
			return -1;
		if (win_data_item(c, &t) < 0)
			return -1;
	}
}

static void win_finish(struct jctx *c)
{
	struct event *ev = c->ev;
	int64_t id = -1;
	const char *cat = NULL, *type = NULL;

	event_set(ev, F_EVENT_KIND, STR_LIT("event"));
	if (str_eq_cstr(c->win_provider, "Microsoft-Windows-Sysmon"))
		event_set(ev, F_EVENT_MODULE, STR_LIT("sysmon"));
	else if (str_eq_cstr(c->win_channel, "Security"))
		event_set(ev, F_EVENT_MODULE, STR_LIT("security"));
	else
		event_set(ev, F_EVENT_MODULE, STR_LIT("windows"));
	if (!event_has(ev, F_EVENT_DATASET) && c->win_channel.n)
		event_set(ev, F_EVENT_DATASET, c->win_channel);
	if (str_to_i64(c->win_code, &id) < 0)
		return;
	if (str_eq_cstr(c->win_provider, "Microsoft-Windows-Sysmon")) {
		switch (id) {
		case 1: cat = "process"; type = "start"; break;
		case 3: cat = "network"; type = "connection"; break;
		case 5: cat = "process"; type = "end"; break;
		case 11: cat = "file"; type = "creation"; break;
		case 12: case 13: case 14: cat = "registry"; type = "change"; break;
		case 22: cat = "network"; type = "protocol"; break;
		case 23: case 26: cat = "file"; type = "deletion"; break;
		}
	} else if (str_eq_cstr(c->win_channel, "Security")) {
		switch (id) {
		case 4688: cat = "process"; type = "start"; break;
		case 4689: cat = "process"; type = "end"; break;
		case 4624: cat = "authentication"; type = "start"; break;
		case 4625:
			cat = "authentication";
			type = "start";
			event_set(ev, F_EVENT_OUTCOME, STR_LIT("failure"));
			break;
		}
	}
	if (cat) {
		event_set(ev, F_EVENT_CATEGORY, str_cstr(cat));
		event_set(ev, F_EVENT_TYPE, str_cstr(type));
	}
}

/* ------------------------------------------------------------------ */
/* Generic JSON and the walk */

static void generic_leaf(struct jctx *c, struct str v, int kind)
{
	int64_t us;
	int prio = 0;

	/* Top-level time keys: "@timestamp" over "timestamp" over "time". */
	if (path_is(c, 0, "@timestamp"))
		prio = 3;
	else if (path_is(c, 0, "timestamp"))
		prio = 2;
	else if (path_is(c, 0, "time"))
		prio = 1;
	if (prio) {
		if (parse_any_time(v, &us) == M_OK) {
			if (prio > c->ts_prio) {
				c->ev->ts_us = us;
				c->ts_prio = prio;
			}
			if (prio == 3)
				return;
		} else if (prio == 3) {
			event_set_parse_error(c->ev, PE_BAD_TIMESTAMP);
			return;
		}
	}
	put_named(c, c->path, c->plen, v, kind);
}

static void leaf(struct jctx *c, struct str v, int kind)
{
	if (c->mode == JM_EVE) {
		eve_leaf(c, v, kind);
	} else if (c->mode == JM_WIN && c->plen > 6 &&
		   memcmp(c->path, "Event.", 6) == 0) {
		/* "xmlns" attributes carry no information for rules. */
		if (c->plen >= 5 && memcmp(c->path + c->plen - 5, "xmlns", 5) == 0 &&
		    (c->plen == 5 || c->path[c->plen - 6] == '.'))
			return;
		win_leaf(c, c->path + 6, c->plen - 6, v, kind);
	} else {
		generic_leaf(c, v, kind);
	}
}

/* A known field given an array: a one-scalar array is unwrapped so the
 * field holds the value, not JSON text. */
static struct str unwrap_single(struct jctx *c, struct str raw)
{
	struct json_scan s;
	struct json_token a, b, e;
	struct str out;

	json_scan_init(&s, raw.p, raw.n);
	if (json_scan_next(&s, &a) != JT_ARR_BEGIN)
		return raw;
	int type = json_scan_next(&s, &b);
	if (type != JT_STRING && type != JT_NUMBER)
		return raw;
	if (json_scan_next(&s, &e) != JT_ARR_END)
		return raw;
	if (type == JT_NUMBER)
		return str_make(b.p, b.n);
	if (json_str_decode(&b, c->a, &out) < 0)
		return raw;
	return out;
}

static int walk_array(struct jctx *c, const struct json_token *t)
{
	const char *start = t->p;
	struct str raw;

	if (c->mode == JM_EVE) {
		if (path_is(c, c->base, "dns.answers"))
			return eve_dns_array(c, t, 0);
		if (path_is(c, c->base, "dns.queries"))
			return eve_dns_array(c, t, 1);
	} else if (c->mode == JM_WIN && path_is(c, 0, "Event.EventData.Data")) {
		return win_data_array(c);
	}
	if (json_scan_skip(&c->s, t) < 0)
		return -1;
	raw = str_make(start, (size_t)(c->s.p - start));
	if (c->mode == JM_GENERIC) {
		int f = schema_lookup(c->path, c->plen);
		if (f >= 0) {
			event_set(c->ev, f, unwrap_single(c, raw));
			return 0;
		}
	}
	leaf(c, raw, EXTRA_RAW_JSON);
	return 0;
}

static int walk_value(struct jctx *c, const struct json_token *t)
{
	struct str v;

	switch (t->type) {
	case JT_OBJ_BEGIN:
		if (c->mode == JM_WIN && path_is(c, 0, "Event.EventData.Data"))
			return win_data_item(c, t);
		return walk_object(c);
	case JT_ARR_BEGIN:
		return walk_array(c, t);
	case JT_STRING:
		if (json_str_decode(t, c->a, &v) < 0)
			return 0;
		leaf(c, v, EXTRA_STRING);
		return 0;
	case JT_NUMBER:
		leaf(c, str_make(t->p, t->n), EXTRA_NUMBER);
		return 0;
	case JT_TRUE:
	case JT_FALSE:
		leaf(c, str_make(t->p, t->n), EXTRA_RAW_JSON);
		return 0;
	case JT_NULL:
		return 0;
	}
	return -1;
}

/* Appends ".key" (or "key" at the base) to the path; 1 when the key is
 * transparent (Windows "#attributes"/"#text"), -1 when the path is full. */
static int path_push(struct jctx *c, struct str k)
{
	if (c->mode == JM_WIN && k.n && k.p[0] == '#' &&
	    (str_eq_cstr(k, "#attributes") || str_eq_cstr(k, "#text")))
		return 1;
	if (c->plen + 1 + k.n > JSON_PATH_MAX)
		return -1;
	if (c->plen > c->base)
		c->path[c->plen++] = '.';
	memcpy(c->path + c->plen, k.p, k.n);
	c->plen += k.n;
	return 0;
}

static int walk_object(struct jctx *c)
{
	struct json_token k, v;
	struct str key;
	int type;

	for (;;) {
		size_t save = c->plen;

		type = json_scan_next(&c->s, &k);
		if (type == JT_OBJ_END)
			return 0;
		if (type != JT_KEY)
			return -1;
		if (json_str_decode(&k, c->a, &key) < 0)
			key = str_make(k.p, k.n);
		type = json_scan_next(&c->s, &v);
		if (type == JT_ERROR || type == JT_END)
			return -1;
		if (path_push(c, key) < 0) {
			event_set_parse_error(c->ev, PE_TOO_MANY_FIELDS);
			if (json_scan_skip(&c->s, &v) < 0)
				return -1;
			continue;
		}
		if (walk_value(c, &v) < 0)
			return -1;
		c->plen = save;
	}
}

/* The shape of the object from its top-level keys, stopping early. */
static int detect_mode(const char *p, size_t n)
{
	struct json_scan s;
	struct json_token t, v;

	json_scan_init(&s, p, n);
	if (json_scan_next(&s, &t) != JT_OBJ_BEGIN)
		return JM_GENERIC;
	for (;;) {
		if (json_scan_next(&s, &t) != JT_KEY)
			return JM_GENERIC;
		if (t.n == 10 && memcmp(t.p, "event_type", 10) == 0)
			return JM_EVE;
		if (json_scan_next(&s, &v) < 0 || v.type == JT_ERROR)
			return JM_GENERIC;
		if (t.n == 5 && memcmp(t.p, "Event", 5) == 0 &&
		    v.type == JT_OBJ_BEGIN)
			return JM_WIN;
		if (json_scan_skip(&s, &v) < 0)
			return JM_GENERIC;
	}
}

int json_event_parse(const char *p, size_t n, struct event *ev,
		     struct arena *a)
{
	struct jctx ctx, *c = &ctx;
	struct json_token t;
	int r = 0;

	ev->ts_us = ev->recv_us;
	while (n && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' '))
		n--;
	if (n == 0) {
		event_set_parse_error(ev, PE_EMPTY);
		event_set(ev, F_MESSAGE, str_make(p, 0));
		return M_EPARSE;
	}
	c->ev = ev;
	c->a = a;
	c->mode = detect_mode(p, n);
	c->base = 0;
	c->plen = 0;
	c->ts_prio = 0;
	c->event_type = c->alert_action = (struct str){ 0, 0 };
	c->win_provider = c->win_channel = c->win_code = (struct str){ 0, 0 };
	c->win_data_n = 0;
	if (c->mode == JM_EVE) {
		memcpy(c->path, EVE_PREFIX, EVE_PREFIX_LEN);
		c->base = c->plen = EVE_PREFIX_LEN;
	}
	json_scan_init(&c->s, p, n);
	if (json_scan_next(&c->s, &t) != JT_OBJ_BEGIN || walk_object(c) < 0 ||
	    json_scan_next(&c->s, &t) != JT_END)
		r = -1;
	if (c->mode == JM_EVE)
		eve_finish(c);
	else if (c->mode == JM_WIN)
		win_finish(c);
	if (r < 0)
		event_set_parse_error(ev, PE_BAD_JSON);
	if (ev->flags & EV_F_PARSE_ERROR) {
		event_set(ev, F_MESSAGE, str_make(p, n));
		return M_EPARSE;
	}
	return M_OK;
}
