/*
 * Syslog parsing: RFC 5424 and RFC 3164 (and the variants devices really
 * send: ISO 8601 stamps in 3164, missing PRI, missing hostname), detected per
 * record, into ECS log.syslog.* fields. CEF carried in the message is handed
 * to cef_parse().
 *
 * It is the hot path of the syslog listeners (target: a million 5424 lines a
 * second per core), so it makes one forward pass over the record, values are
 * slices of it, and the arena is used only for structured-data field names
 * and for values that need unescaping. Every loop is bounded by the record
 * length; nothing here aborts on input.
 */
#include <string.h>

#include "core/err.h"
#include "ingest/ingest.h"
#include "ingest/ingest_time.h"

#define SD_PREFIX "log.syslog.structured_data."
#define SD_PREFIX_LEN (sizeof(SD_PREFIX) - 1)
#define TAG_MAX 64        /* longest 3164 TAG we recognise */
#define PID_MAX 32

/* "0".."191" as slices of one constant, so numeric fields need no arena. */
static const char num_text[] =
	"0123456789"
	"10111213141516171819202122232425262728293031323334353637383940"
	"41424344454647484950515253545556575859606162636465666768697071"
	"72737475767778798081828384858687888990919293949596979899"
	"100101102103104105106107108109110111112113114115116117118119"
	"120121122123124125126127128129130131132133134135136137138139"
	"140141142143144145146147148149150151152153154155156157158159"
	"160161162163164165166167168169170171172173174175176177178179"
	"180181182183184185186187188189190191";

static struct str small_num(unsigned v)
{
	if (v < 10)
		return str_make(num_text + v, 1);
	if (v < 100)
		return str_make(num_text + 10 + (v - 10) * 2, 2);
	return str_make(num_text + 190 + (v - 100) * 3, 3);
}

static const char *const facility_names[24] = {
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console",
	"solaris-cron", "local0", "local1", "local2", "local3", "local4",
	"local5", "local6", "local7",
};

static const char *const severity_names[8] = {
	"Emergency", "Alert", "Critical", "Error", "Warning", "Notice",
	"Informational", "Debug",
};

static int is_digit(char c)
{
	return (unsigned)(c - '0') <= 9;
}

/* SD-NAME: printable US-ASCII except '=', SP, ']' and '"'. */
static int sd_name_char(char c)
{
	return c > 32 && c < 127 && c != '=' && c != ']' && c != '"';
}

static void set_pri(struct event *ev, unsigned pri)
{
	unsigned fac = pri >> 3, sev = pri & 7;

	event_set(ev, F_LOG_SYSLOG_PRIORITY, small_num(pri));
	event_set(ev, F_LOG_SYSLOG_FACILITY_CODE, small_num(fac));
	event_set(ev, F_LOG_SYSLOG_FACILITY_NAME, str_cstr(facility_names[fac]));
	event_set(ev, F_LOG_SYSLOG_SEVERITY_CODE, small_num(sev));
	event_set(ev, F_LOG_SYSLOG_SEVERITY_NAME, str_cstr(severity_names[sev]));
}

static void set_procid(struct event *ev, struct str pid)
{
	int64_t v;

	event_set(ev, F_LOG_SYSLOG_PROCID, pid);
	if (pid.n <= 10 && str_to_i64(pid, &v) == M_OK && v >= 0)
		event_set(ev, F_PROCESS_PID, pid);
}

static void set_host(struct event *ev, struct str h)
{
	event_set(ev, F_LOG_SYSLOG_HOSTNAME, h);
	event_set(ev, F_HOST_NAME, h);
}

static void set_app(struct event *ev, struct str app)
{
	event_set(ev, F_LOG_SYSLOG_APPNAME, app);
	event_set(ev, F_PROCESS_NAME, app);
}

static int starts_cef(const char *p, size_t n)
{
	return n >= 4 && memcmp(p, "CEF:", 4) == 0;
}

/* The MSG part: a UTF-8 BOM is dropped; CEF goes to its own parser, the
 * messages of sshd and the kernel's firewall to syslog_app.c. */
static void set_msg(struct event *ev, struct arena *a, const char *p,
		    size_t n)
{
	if (n >= 3 && (unsigned char)p[0] == 0xef &&
	    (unsigned char)p[1] == 0xbb && (unsigned char)p[2] == 0xbf) {
		p += 3;
		n -= 3;
	}
	event_set(ev, F_MESSAGE, str_make(p, n));
	if (starts_cef(p, n))
		(void)cef_parse(p, n, ev, a);
	else
		syslog_app_enrich(ev, p, n);
}

/* An SD-PARAM value with its escapes (\" \\ \]) removed; other backslashes
 * stay, as RFC 5424 §6.3.3 says. */
static struct str sd_unescape(const char *p, size_t n, struct arena *a)
{
	char *o = arena_alloc(a, n ? n : 1), *w;

	if (!o)
		return str_make(p, n);
	w = o;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\' && i + 1 < n &&
		    (p[i + 1] == '"' || p[i + 1] == '\\' || p[i + 1] == ']'))
			i++;
		*w++ = p[i];
	}
	return str_make(o, (size_t)(w - o));
}

static void sd_emit(struct event *ev, struct arena *a, struct str id,
		    struct str name, struct str value)
{
	size_t len = SD_PREFIX_LEN + id.n + 1 + name.n;
	char *nm;

	if (ev->n_extra >= EVENT_MAX_EXTRA) {
		event_set_parse_error(ev, PE_TOO_MANY_FIELDS);
		return;
	}
	nm = arena_alloc(a, len);
	if (!nm)
		return;
	memcpy(nm, SD_PREFIX, SD_PREFIX_LEN);
	memcpy(nm + SD_PREFIX_LEN, id.p, id.n);
	nm[SD_PREFIX_LEN + id.n] = '.';
	memcpy(nm + SD_PREFIX_LEN + id.n + 1, name.p, name.n);
	(void)event_set_name(ev, a, str_make(nm, len), value, EXTRA_STRING);
}

/* STRUCTURED-DATA at p[*ip] == '['. Returns 0, or -1 on a malformed element
 * (what was read before it is kept). */
static int parse_sd(const char *p, size_t n, size_t *ip, struct event *ev,
		    struct arena *a)
{
	size_t i = *ip;

	while (i < n && p[i] == '[') {
		size_t s = ++i;
		struct str id;

		while (i < n && sd_name_char(p[i]))
			i++;
		if (i == s)
			return -1;
		id = str_make(p + s, i - s);
		for (;;) {
			struct str name;
			size_t vs;
			int esc = 0;

			if (i >= n)
				return -1;
			if (p[i] == ']') {
				i++;
				break;
			}
			if (p[i] != ' ')
				return -1;
			s = ++i;
			while (i < n && sd_name_char(p[i]))
				i++;
			if (i == s || i + 1 >= n || p[i] != '=' || p[i + 1] != '"')
				return -1;
			name = str_make(p + s, i - s);
			vs = i += 2;
			while (i < n && p[i] != '"') {
				if (p[i] == '\\' && i + 1 < n) {
					esc = 1;
					i++;
				}
				i++;
			}
			if (i >= n)
				return -1;
			sd_emit(ev, a, id, name,
				esc ? sd_unescape(p + vs, i - vs, a)
				    : str_make(p + vs, i - vs));
			i++;
		}
	}
	*ip = i;
	return 0;
}

/* Next header token up to a space; -1 when the record ends first. */
static int token(const char *p, size_t n, size_t *ip, struct str *out)
{
	size_t i = *ip;
	const char *sp = i < n ? memchr(p + i, ' ', n - i) : NULL;

	if (!sp)
		return -1;
	*out = str_make(p + i, (size_t)(sp - p) - i);
	*ip = (size_t)(sp - p) + 1;
	return 0;
}

static int is_nil(struct str s)
{
	return s.n == 1 && s.p[0] == '-';
}

/* RFC 5424 after "<PRI>": p[i] is the first byte of the version. */
static int parse_5424(const char *p, size_t n, size_t i, struct event *ev,
		      struct arena *a)
{
	struct str ver, ts, host, app, procid, msgid;
	int64_t us;

	if (token(p, n, &i, &ver) < 0)
		return PE_BAD_VERSION;
	event_set(ev, F_LOG_SYSLOG_VERSION, ver);
	if (token(p, n, &i, &ts) < 0)
		return PE_BAD_HEADER;
	if (!is_nil(ts)) {
		if (ingest_time_rfc3339(ts.p, ts.n, &us) == M_OK)
			ev->ts_us = us;
		else
			event_set_parse_error(ev, PE_BAD_TIMESTAMP);
	}
	if (token(p, n, &i, &host) < 0)
		return PE_BAD_HEADER;
	if (!is_nil(host) && host.n)
		set_host(ev, host);
	if (token(p, n, &i, &app) < 0)
		return PE_BAD_HEADER;
	if (!is_nil(app) && app.n)
		set_app(ev, app);
	if (token(p, n, &i, &procid) < 0)
		return PE_BAD_HEADER;
	if (!is_nil(procid) && procid.n)
		set_procid(ev, procid);
	/* MSGID is the last header field; SD follows after one space. */
	if (token(p, n, &i, &msgid) < 0) {
		/* "... MSGID" ending the record: no SD and no MSG; lenient. */
		msgid = str_make(p + i, n - i);
		if (!is_nil(msgid) && msgid.n)
			event_set(ev, F_LOG_SYSLOG_MSGID, msgid);
		return PE_NONE;
	}
	if (!is_nil(msgid) && msgid.n)
		event_set(ev, F_LOG_SYSLOG_MSGID, msgid);
	if (i >= n)
		return PE_BAD_SD;
	if (p[i] == '-') {
		i++;
	} else if (p[i] == '[') {
		if (parse_sd(p, n, &i, ev, a) < 0)
			return PE_BAD_SD;
	} else {
		return PE_BAD_SD;
	}
	if (i < n) {
		if (p[i] != ' ')
			return PE_BAD_SD;
		i++;
		set_msg(ev, a, p + i, n - i);
	}
	return PE_NONE;
}

/* "TAG[pid]: " or "TAG: " at p[*ip]; on success the tag (and pid) are set
 * and *ip moves past the colon and one space. */
static int parse_tag(const char *p, size_t n, size_t *ip, struct event *ev)
{
	size_t i = *ip, j = i, k;

	while (j < n && j - i < TAG_MAX && p[j] != ' ' && p[j] != ':' &&
	       p[j] != '[')
		j++;
	if (j == i || j >= n)
		return -1;
	if (p[j] == '[') {
		k = j + 1;
		while (k < n && p[k] != ']' && k - j <= PID_MAX)
			k++;
		if (k >= n || p[k] != ']')
			return -1;
		set_app(ev, str_make(p + i, j - i));
		if (k > j + 1)
			set_procid(ev, str_make(p + j + 1, k - j - 1));
		k++;
		if (k < n && p[k] == ':')
			k++;
	} else if (p[j] == ':') {
		set_app(ev, str_make(p + i, j - i));
		k = j + 1;
	} else {
		return -1;
	}
	if (k < n && p[k] == ' ')
		k++;
	*ip = k;
	return 0;
}

/* RFC 3164 and its variants, after the optional "<PRI>". */
static int parse_3164(const char *p, size_t n, size_t i, struct event *ev,
		      struct arena *a)
{
	int64_t us;
	size_t c = 0;
	int have_ts = 0;

	if (n - i >= 15 && ingest_month_abbr(p + i)) {
		c = ingest_time_bsd_prefix(p + i, n - i, ev->recv_us, &us);
	} else if (n - i >= 10 && is_digit(p[i]) && p[i + 4] == '-') {
		c = ingest_time_rfc3339_prefix(p + i, n - i, &us);
	}
	if (c) {
		i += c;
		if (i < n && p[i] == ':')   /* Cisco: "Feb 17 13:40:03.673: " */
			i++;
		if (i >= n || p[i] == ' ') {
			ev->ts_us = us;
			have_ts = 1;
			while (i < n && p[i] == ' ')
				i++;
		} else {
			i -= c;   /* not a stamp after all: all of it is MSG */
		}
	}
	if (have_ts && i < n && !starts_cef(p + i, n - i)) {
		/* HOSTNAME, unless the token is already the TAG. */
		const char *sp = memchr(p + i, ' ', n - i);
		size_t tl = sp ? (size_t)(sp - (p + i)) : 0;
		if (sp && tl > 0 && p[i + tl - 1] != ':' &&
		    !memchr(p + i, '[', tl)) {
			set_host(ev, str_make(p + i, tl));
			i += tl + 1;
		}
	}
	if (i < n && !starts_cef(p + i, n - i))
		(void)parse_tag(p, n, &i, ev);
	set_msg(ev, a, p + i, n - i);
	return PE_NONE;
}

int syslog_parse(const char *p, size_t n, struct event *ev, struct arena *a)
{
	size_t i = 0;
	int pe = PE_NONE;

	ev->ts_us = ev->recv_us;
	while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	if (n == 0) {
		pe = PE_EMPTY;
		goto out;
	}
	if (p[0] == '<') {
		unsigned pri = 0;
		for (i = 1; i < n && i <= 4 && is_digit(p[i]); i++)
			pri = pri * 10 + (unsigned)(p[i] - '0');
		if (i == 1 || i > 4 || i >= n || p[i] != '>' || pri > 191) {
			pe = PE_BAD_PRI;
			goto out;
		}
		set_pri(ev, pri);
		i++;
	}
	/* "VERSION SP" right after the PRI means RFC 5424. */
	if (i < n && p[i] >= '1' && p[i] <= '9') {
		size_t k = i + 1;
		while (k < n && k - i < 3 && is_digit(p[k]))
			k++;
		if (k < n && p[k] == ' ' && i > 0) {
			if (k - i != 1 || p[i] != '1')
				event_set_parse_error(ev, PE_BAD_VERSION);
			pe = parse_5424(p, n, i, ev, a);
			goto out;
		}
	}
	pe = parse_3164(p, n, i, ev, a);
out:
	if (pe != PE_NONE)
		event_set_parse_error(ev, pe);
	if (!event_has(ev, F_EVENT_DATASET))
		event_set(ev, F_EVENT_DATASET, STR_LIT("syslog"));
	if (ev->flags & EV_F_PARSE_ERROR) {
		event_set(ev, F_MESSAGE, str_make(p, n));
		return M_EPARSE;
	}
	return M_OK;
}
