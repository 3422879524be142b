/*
 * ArcSight Common Event Format: "CEF:Version|Vendor|Product|Version|
 * SignatureID|Name|Severity|Extension". Firewalls, proxies and AV consoles
 * send it over syslog; this turns the header into cef.* fields and the
 * extension's key=value pairs into ECS fields where a mapping is well known,
 * and into cef.extensions.<key> overflow fields otherwise.
 *
 * The extension grammar is loose in practice: values contain unescaped
 * spaces, so a value runs until the next " key=". Escapes (\= \\ \n \r, and
 * \| \\ in the header) are decoded into the arena only when present.
 */
#include <string.h>

#include "core/err.h"
#include "ingest/ingest.h"
#include "ingest/ingest_time.h"

#define CEF_MAX_EXT 320           /* extension pairs read per record */
#define EXT_PREFIX "cef.extensions."
#define EXT_PREFIX_LEN (sizeof(EXT_PREFIX) - 1)

struct cef_kv {
	struct str k, v;
	const struct cef_map *map;   /* its ECS mapping, or NULL */
	uint8_t esc;         /* v has backslash escapes */
	uint8_t used;        /* consumed as another key's label */
};

enum cef_conv {
	CV_PLAIN,
	CV_LOWER,
	CV_TIME,
	CV_HASH,
	CV_DIRECTION,
	CV_USER,             /* suser: source.user.name and user.name */
	CV_DUSER,            /* duser: destination.user.name; user.name if unset */
	CV_LABELED,          /* csN and friends: named by their csNLabel */
};

struct cef_map {
	const char *key;
	uint8_t len;
	uint8_t conv;
	int16_t field;
};

#define CM(k, f, c) { k, sizeof(k) - 1, c, f }

static const struct cef_map cef_maps[] = {
	CM("src", F_SOURCE_IP, CV_PLAIN),
	CM("sourceAddress", F_SOURCE_IP, CV_PLAIN),
	CM("dst", F_DESTINATION_IP, CV_PLAIN),
	CM("destinationAddress", F_DESTINATION_IP, CV_PLAIN),
	CM("spt", F_SOURCE_PORT, CV_PLAIN),
	CM("sourcePort", F_SOURCE_PORT, CV_PLAIN),
	CM("dpt", F_DESTINATION_PORT, CV_PLAIN),
	CM("destinationPort", F_DESTINATION_PORT, CV_PLAIN),
	CM("smac", F_SOURCE_MAC, CV_PLAIN),
	CM("dmac", F_DESTINATION_MAC, CV_PLAIN),
	CM("shost", F_SOURCE_DOMAIN, CV_PLAIN),
	CM("sourceHostName", F_SOURCE_DOMAIN, CV_PLAIN),
	CM("dhost", F_DESTINATION_DOMAIN, CV_PLAIN),
	CM("destinationHostName", F_DESTINATION_DOMAIN, CV_PLAIN),
	CM("suser", F_SOURCE_USER_NAME, CV_USER),
	CM("sourceUserName", F_SOURCE_USER_NAME, CV_USER),
	CM("duser", F_DESTINATION_USER_NAME, CV_DUSER),
	CM("destinationUserName", F_DESTINATION_USER_NAME, CV_DUSER),
	CM("act", F_EVENT_ACTION, CV_PLAIN),
	CM("deviceAction", F_EVENT_ACTION, CV_PLAIN),
	CM("outcome", F_EVENT_OUTCOME, CV_PLAIN),
	CM("request", F_URL_ORIGINAL, CV_PLAIN),
	CM("requestUrl", F_URL_ORIGINAL, CV_PLAIN),
	CM("requestMethod", F_HTTP_REQUEST_METHOD, CV_PLAIN),
	CM("requestClientApplication", F_USER_AGENT_ORIGINAL, CV_PLAIN),
	CM("app", F_NETWORK_PROTOCOL, CV_LOWER),
	CM("applicationProtocol", F_NETWORK_PROTOCOL, CV_LOWER),
	CM("proto", F_NETWORK_TRANSPORT, CV_LOWER),
	CM("transportProtocol", F_NETWORK_TRANSPORT, CV_LOWER),
	CM("deviceDirection", F_NETWORK_DIRECTION, CV_DIRECTION),
	CM("in", F_SOURCE_BYTES, CV_PLAIN),
	CM("bytesIn", F_SOURCE_BYTES, CV_PLAIN),
	CM("out", F_DESTINATION_BYTES, CV_PLAIN),
	CM("bytesOut", F_DESTINATION_BYTES, CV_PLAIN),
	CM("msg", F_MESSAGE, CV_PLAIN),
	CM("message", F_MESSAGE, CV_PLAIN),
	CM("rt", -1, CV_TIME),
	CM("receiptTime", -1, CV_TIME),
	CM("fname", F_FILE_NAME, CV_PLAIN),
	CM("fileName", F_FILE_NAME, CV_PLAIN),
	CM("filePath", F_FILE_PATH, CV_PLAIN),
	CM("fsize", F_FILE_SIZE, CV_PLAIN),
	CM("fileSize", F_FILE_SIZE, CV_PLAIN),
	CM("fileHash", -1, CV_HASH),
	CM("dvc", F_OBSERVER_IP, CV_PLAIN),
	CM("deviceAddress", F_OBSERVER_IP, CV_PLAIN),
	CM("dvchost", F_OBSERVER_HOSTNAME, CV_PLAIN),
	CM("deviceHostName", F_OBSERVER_HOSTNAME, CV_PLAIN),
	CM("sproc", F_PROCESS_NAME, CV_PLAIN),
	CM("sourceProcessName", F_PROCESS_NAME, CV_PLAIN),
	CM("spid", F_PROCESS_PID, CV_PLAIN),
	CM("sourceProcessId", F_PROCESS_PID, CV_PLAIN),
	CM("cs1", -1, CV_LABELED), CM("cs2", -1, CV_LABELED),
	CM("cs3", -1, CV_LABELED), CM("cs4", -1, CV_LABELED),
	CM("cs5", -1, CV_LABELED), CM("cs6", -1, CV_LABELED),
	CM("cn1", -1, CV_LABELED), CM("cn2", -1, CV_LABELED),
	CM("cn3", -1, CV_LABELED),
	CM("cfp1", -1, CV_LABELED), CM("cfp2", -1, CV_LABELED),
	CM("cfp3", -1, CV_LABELED), CM("cfp4", -1, CV_LABELED),
	CM("c6a1", -1, CV_LABELED), CM("c6a2", -1, CV_LABELED),
	CM("c6a3", -1, CV_LABELED), CM("c6a4", -1, CV_LABELED),
	CM("flexString1", -1, CV_LABELED), CM("flexString2", -1, CV_LABELED),
	CM("flexNumber1", -1, CV_LABELED), CM("flexNumber2", -1, CV_LABELED),
	CM("flexDate1", -1, CV_LABELED),
	CM("deviceCustomDate1", -1, CV_LABELED),
	CM("deviceCustomDate2", -1, CV_LABELED),
};

#define N_MAPS (sizeof(cef_maps) / sizeof(cef_maps[0]))

static const struct cef_map *find_map(struct str k)
{
	for (size_t i = 0; i < N_MAPS; i++)
		if (cef_maps[i].len == k.n && cef_maps[i].key[0] == k.p[0] &&
		    memcmp(cef_maps[i].key, k.p, k.n) == 0)
			return &cef_maps[i];
	return NULL;
}

static int key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* Header field: \| and \\ decoded; any other backslash kept. */
static struct str unescape_header(const char *p, size_t n, struct arena *a)
{
	char *o = arena_alloc(a, n ? n : 1), *w;

	if (!o)
		return str_make(p, n);
	w = o;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\' && i + 1 < n && (p[i + 1] == '|' || p[i + 1] == '\\'))
			i++;
		*w++ = p[i];
	}
	return str_make(o, (size_t)(w - o));
}

/* Extension value: \= \\ \n \r (and \| for lenient senders). */
static struct str unescape_ext(struct str v, struct arena *a)
{
	char *o = arena_alloc(a, v.n ? v.n : 1), *w;

	if (!o)
		return v;
	w = o;
	for (uint32_t i = 0; i < v.n; i++) {
		char c = v.p[i];
		if (c == '\\' && i + 1 < v.n) {
			char e = v.p[i + 1];
			if (e == '=' || e == '\\' || e == '|') {
				c = e;
				i++;
			} else if (e == 'n') {
				c = '\n';
				i++;
			} else if (e == 'r') {
				c = '\r';
				i++;
			}
		}
		*w++ = c;
	}
	return str_make(o, (size_t)(w - o));
}

/* CEF's rt: epoch milliseconds, "MMM dd yyyy HH:mm:ss[.SSS][ zone]",
 * "MMM dd HH:mm:ss" or RFC 3339. Zones other than UTC are not applied. */
static int parse_rt(struct str v, int64_t recv_us, int64_t *us)
{
	int64_t x;
	size_t c;

	if (v.n && v.p[0] >= '0' && v.p[0] <= '9' &&
	    str_to_i64(v, &x) == M_OK) {
		/* Range first (year 9999 in ms), so the scaling cannot
		 * overflow; 11 digits or fewer are seconds. */
		if (x > 253402300799999LL)
			return M_EPARSE;
		if (v.n >= 12)
			*us = x * 1000;
		else
			*us = x * 1000000;
		return M_OK;
	}
	c = ingest_time_bsd_prefix(v.p, v.n, recv_us, us);
	if (c && (c == v.n || v.p[c] == ' '))
		return M_OK;
	return ingest_time_rfc3339(v.p, v.n, us);
}

static void set_hash(struct event *ev, struct str v)
{
	switch (v.n) {
	case 32:
		event_set(ev, F_FILE_HASH_MD5, v);
		break;
	case 40:
		event_set(ev, F_FILE_HASH_SHA1, v);
		break;
	case 64:
		event_set(ev, F_FILE_HASH_SHA256, v);
		break;
	}
}

static void set_overflow(struct event *ev, struct arena *a, struct str name,
			 struct str v)
{
	size_t len = EXT_PREFIX_LEN + name.n;
	char *nm;

	if (ev->n_extra >= EVENT_MAX_EXTRA) {
		event_set_parse_error(ev, PE_TOO_MANY_FIELDS);
		return;
	}
	if (!(nm = arena_alloc(a, len)))
		return;
	memcpy(nm, EXT_PREFIX, EXT_PREFIX_LEN);
	memcpy(nm + EXT_PREFIX_LEN, name.p, name.n);
	(void)event_set_name(ev, a, str_make(nm, len), v, EXTRA_STRING);
}

/* The label of key k ("cs1" → value of "cs1Label"), or NULL. */
static struct cef_kv *find_label(struct cef_kv *kv, size_t nkv, struct str k)
{
	for (size_t i = 0; i < nkv; i++)
		if (kv[i].k.n == k.n + 5 && memcmp(kv[i].k.p, k.p, k.n) == 0 &&
		    memcmp(kv[i].k.p + k.n, "Label", 5) == 0)
			return &kv[i];
	return NULL;
}

static void apply(struct event *ev, struct arena *a, struct cef_kv *kv,
		  size_t nkv, size_t idx)
{
	struct cef_kv *e = &kv[idx], *lab;
	const struct cef_map *m = e->map;
	struct str v = e->esc ? unescape_ext(e->v, a) : e->v;
	int64_t us;

	if (!m) {
		set_overflow(ev, a, e->k, v);
		return;
	}
	switch (m->conv) {
	case CV_PLAIN:
		event_set(ev, m->field, v);
		break;
	case CV_LOWER:
		event_set(ev, m->field, str_lower(a, v));
		break;
	case CV_TIME:
		if (parse_rt(v, ev->recv_us, &us) == M_OK)
			ev->ts_us = us;
		set_overflow(ev, a, e->k, v);
		break;
	case CV_HASH:
		set_hash(ev, v);
		set_overflow(ev, a, e->k, v);
		break;
	case CV_DIRECTION:
		if (str_eq_cstr(v, "0"))
			event_set(ev, m->field, STR_LIT("inbound"));
		else if (str_eq_cstr(v, "1"))
			event_set(ev, m->field, STR_LIT("outbound"));
		break;
	case CV_USER:
		event_set(ev, m->field, v);
		event_set(ev, F_USER_NAME, v);
		break;
	case CV_DUSER:
		event_set(ev, m->field, v);
		if (!event_has(ev, F_USER_NAME))
			event_set(ev, F_USER_NAME, v);
		break;
	case CV_LABELED:
		lab = find_label(kv, nkv, e->k);
		if (lab && lab->v.n) {
			lab->used = 1;
			set_overflow(ev, a, lab->esc ? unescape_ext(lab->v, a)
						     : lab->v, v);
		} else {
			set_overflow(ev, a, e->k, v);
		}
		break;
	}
}

static struct str trim_right(const char *p, size_t s, size_t e)
{
	while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t'))
		e--;
	return str_make(p + s, e - s);
}

/* Splits the extension into pairs. A value ends where " key=" begins (key
 * chars only between the space and an unescaped '='). Returns the number of
 * pairs, or -1 when the extension does not start with a key. */
static int split_ext(const char *p, size_t n, size_t i, struct cef_kv *kv,
		     struct event *ev)
{
	size_t nkv = 0;

	while (i < n && p[i] == ' ')
		i++;
	while (i < n) {
		size_t ks = i, j, sp = 0;
		int run_ok = 0, esc = 0;

		while (i < n && key_char(p[i]))
			i++;
		if (i == ks || i >= n || p[i] != '=')
			return -1;
		if (nkv == CEF_MAX_EXT) {
			event_set_parse_error(ev, PE_TOO_MANY_FIELDS);
			break;
		}
		kv[nkv].k = str_make(p + ks, i - ks);
		j = ++i;
		for (;;) {
			if (j >= n) {
				kv[nkv].v = trim_right(p, i, n);
				i = n;
				break;
			}
			char c = p[j];
			if (c == '\\' && j + 1 < n) {
				esc = 1;
				run_ok = 0;
				j += 2;
				continue;
			}
			if (c == ' ') {
				sp = j;
				run_ok = 1;
			} else if (c == '=' && run_ok && sp && j > sp + 1) {
				kv[nkv].v = trim_right(p, i, sp);
				i = sp + 1;
				break;
			} else if (!key_char(c)) {
				run_ok = 0;
			}
			j++;
		}
		kv[nkv].esc = (uint8_t)esc;
		kv[nkv].used = 0;
		nkv++;
	}
	return (int)nkv;
}

static const struct str sev_low = STR_LIT("3"), sev_med = STR_LIT("6"),
			sev_high = STR_LIT("8"), sev_vhigh = STR_LIT("10");

static void set_severity(struct event *ev, struct str s)
{
	int64_t v;

	event_set(ev, F_CEF_SEVERITY, s);
	if (str_to_i64(s, &v) == M_OK && v >= 0 && v <= 10)
		event_set(ev, F_EVENT_SEVERITY, s);
	else if (s.n == 3 && strncasecmp(s.p, "low", 3) == 0)
		event_set(ev, F_EVENT_SEVERITY, sev_low);
	else if (s.n == 6 && strncasecmp(s.p, "medium", 6) == 0)
		event_set(ev, F_EVENT_SEVERITY, sev_med);
	else if (s.n == 4 && strncasecmp(s.p, "high", 4) == 0)
		event_set(ev, F_EVENT_SEVERITY, sev_high);
	else if (s.n == 9 && strncasecmp(s.p, "very-high", 9) == 0)
		event_set(ev, F_EVENT_SEVERITY, sev_vhigh);
}

static const int header_fields[7] = {
	F_CEF_VERSION, F_CEF_DEVICE_VENDOR, F_CEF_DEVICE_PRODUCT,
	F_CEF_DEVICE_VERSION, F_CEF_DEVICE_EVENT_CLASS_ID, F_CEF_NAME,
	F_CEF_SEVERITY,
};

int cef_parse(const char *p, size_t n, struct event *ev, struct arena *a)
{
	struct cef_kv kv[CEF_MAX_EXT];
	size_t i, k;
	int nkv, had_msg;

	while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	had_msg = event_has(ev, F_MESSAGE);
	if (n < 4 || memcmp(p, "CEF:", 4) != 0)
		goto bad;
	i = 4;
	for (k = 0; k < 7; k++) {
		size_t s = i;
		int esc = 0;
		struct str v;

		while (i < n && p[i] != '|') {
			if (p[i] == '\\' && i + 1 < n) {
				esc = 1;
				i++;
			}
			i++;
		}
		if (i >= n)
			goto bad;
		v = esc ? unescape_header(p + s, i - s, a) : str_make(p + s, i - s);
		if (k == 6)
			set_severity(ev, v);
		else
			event_set(ev, header_fields[k], v);
		i++;
	}
	event_set(ev, F_OBSERVER_VENDOR, event_get(ev, F_CEF_DEVICE_VENDOR));
	event_set(ev, F_OBSERVER_PRODUCT, event_get(ev, F_CEF_DEVICE_PRODUCT));
	event_set(ev, F_OBSERVER_VERSION, event_get(ev, F_CEF_DEVICE_VERSION));
	event_set(ev, F_EVENT_CODE, event_get(ev, F_CEF_DEVICE_EVENT_CLASS_ID));
	if (!event_has(ev, F_EVENT_DATASET))
		event_set(ev, F_EVENT_DATASET, STR_LIT("cef"));
	if (!event_has(ev, F_EVENT_MODULE))
		event_set(ev, F_EVENT_MODULE, STR_LIT("cef"));
	nkv = split_ext(p, n, i, kv, ev);
	if (nkv < 0) {
		event_set_parse_error(ev, PE_BAD_CEF);
		nkv = 0;
	}
	/* Labels first, so a label that precedes or follows its key is
	 * consumed either way. */
	for (k = 0; k < (size_t)nkv; k++) {
		const struct cef_map *m = kv[k].map = find_map(kv[k].k);
		if (m && m->conv == CV_LABELED) {
			apply(ev, a, kv, (size_t)nkv, k);
			kv[k].used = 1;
		}
	}
	for (k = 0; k < (size_t)nkv; k++)
		if (!kv[k].used)
			apply(ev, a, kv, (size_t)nkv, k);
	if (!had_msg && !event_has(ev, F_MESSAGE))
		event_set(ev, F_MESSAGE, str_make(p, n));
	if (ev->flags & EV_F_PARSE_ERROR) {
		event_set(ev, F_MESSAGE, str_make(p, n));
		return M_EPARSE;
	}
	return M_OK;
bad:
	event_set_parse_error(ev, PE_BAD_CEF);
	event_set(ev, F_MESSAGE, str_make(p, n));
	return M_EPARSE;
}
