/*
 * Fields inside the MSG of well-known programs' syslog lines. Why: the
 * syslog header names the host and the program, but the facts detection
 * needs — who tried to log in from where, which connection a firewall
 * dropped — are in the free text. OpenSSH's sshd (also as sshd-session and
 * sshd-auth since 9.8) and the kernel's netfilter log lines (iptables LOG,
 * nftables `log`, UFW) are by far the most common such sources, so their
 * messages are read here into ECS fields; everything else is left as text.
 *
 * Values are slices of the message (no copies); only addresses that look
 * like addresses and ports that are numbers are set, so a crafted message
 * can add text to fields but never break the event.
 */
#include <string.h>
#include <strings.h>

#include "core/event.h"
#include "core/str.h"
#include "ingest/ingest.h"

static int is_ip_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
	       c == '.' || c == ':';
}

/* An IPv4 or IPv6 address as text: only address characters, a dot or a
 * colon, at most 45 bytes. */
static int looks_ip(struct str s)
{
	int sep = 0;

	if (s.n < 2 || s.n > 45)
		return 0;
	for (size_t i = 0; i < s.n; i++) {
		if (!is_ip_char(s.p[i]))
			return 0;
		sep |= s.p[i] == '.' || s.p[i] == ':';
	}
	return sep;
}

static int looks_port(struct str s)
{
	unsigned v = 0;

	if (s.n == 0 || s.n > 5)
		return 0;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return 0;
		v = v * 10 + (unsigned)(s.p[i] - '0');
	}
	return v <= 65535;
}

/* The next space-delimited word of msg at *i (skipping spaces). */
static struct str word(const char *p, size_t n, size_t *i)
{
	size_t s;

	while (*i < n && p[*i] == ' ')
		(*i)++;
	s = *i;
	while (*i < n && p[*i] != ' ')
		(*i)++;
	return str_make(p + s, *i - s);
}

/* Position just after needle in p, or n when absent. */
static size_t after(const char *p, size_t n, const char *needle)
{
	size_t k = strlen(needle);

	for (size_t i = 0; i + k <= n; i++)
		if (p[i] == needle[0] && memcmp(p + i, needle, k) == 0)
			return i + k;
	return n;
}

static int starts(const char *p, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);

	return n >= k && memcmp(p, prefix, k) == 0;
}

/* "... USER from ADDR port PORT ..." with *i at USER: sets user.name,
 * source.ip and source.port. USER may itself be empty or contain spaces
 * ("Invalid user  from"), so the address is found from " from " and the
 * user is what lies before it. */
static void user_from(struct event *ev, const char *p, size_t n, size_t i)
{
	size_t f = i + after(p + i, n - i, " from "), j;
	struct str user, ip, kw, port;

	if (f >= n)
		return;
	/* The user ends where " from " starts (f - 6). */
	user = str_make(p + i, f - 6 > i ? f - 6 - i : 0);
	if (user.n && user.n <= 256)
		event_set(ev, F_USER_NAME, user);
	j = f;
	ip = word(p, n, &j);
	if (!looks_ip(ip))
		return;
	event_set(ev, F_SOURCE_IP, ip);
	kw = word(p, n, &j);
	if (str_eq(kw, STR_LIT("port"))) {
		port = word(p, n, &j);
		if (looks_port(port))
			event_set(ev, F_SOURCE_PORT, port);
	}
}

static void auth_event(struct event *ev, int success, const char *action)
{
	event_set(ev, F_EVENT_CATEGORY, STR_LIT("authentication"));
	event_set(ev, F_EVENT_OUTCOME, success ? STR_LIT("success") : STR_LIT("failure"));
	event_set(ev, F_EVENT_ACTION, str_cstr(action));
}

/* OpenSSH's messages about logins (auth.c, auth2.c, sshd.c). */
static void sshd(struct event *ev, const char *p, size_t n)
{
	size_t i;

	if (!event_has(ev, F_EVENT_MODULE))
		event_set(ev, F_EVENT_MODULE, STR_LIT("sshd"));
	if (starts(p, n, "Failed ") || starts(p, n, "Accepted ")) {
		/* "Failed password for [invalid user ]USER from IP port N ssh2",
		 * "Accepted publickey for USER from IP port N ssh2: ..." */
		int ok = p[0] == 'A';
		size_t m = after(p, n, " for ");

		if (m >= n)
			return;
		i = m;
		if (starts(p + i, n - i, "invalid user "))
			i += 13;
		auth_event(ev, ok, ok ? "ssh_login" : "ssh_login_failed");
		user_from(ev, p, n, i);
		return;
	}
	if (starts(p, n, "Invalid user ")) {
		auth_event(ev, 0, "ssh_invalid_user");
		user_from(ev, p, n, 13);
		return;
	}
	if (starts(p, n, "error: maximum authentication attempts exceeded for ")) {
		i = 53;
		if (starts(p + i, n - i, "invalid user "))
			i += 13;
		auth_event(ev, 0, "ssh_max_attempts");
		user_from(ev, p, n, i);
		return;
	}
	if (starts(p, n, "Connection closed by ") || starts(p, n, "Disconnected from ") ||
	    starts(p, n, "Received disconnect from ") || starts(p, n, "Connection reset by ")) {
		/* "... by [authenticating|invalid] user USER IP port N [preauth]"
		 * or "... by IP port N": only the address is reliable. */
		size_t j = after(p, n, " user ");
		struct str w, port;

		if (j < n) {
			struct str user = word(p, n, &j);

			if (user.n && user.n <= 256)
				event_set(ev, F_USER_NAME, user);
		} else {
			j = after(p, n, starts(p, n, "Received") ? " from " :
				  starts(p, n, "Disconnected") ? " from " : " by ");
		}
		w = word(p, n, &j);
		if (looks_ip(w)) {
			event_set(ev, F_SOURCE_IP, w);
			if (str_eq(word(p, n, &j), STR_LIT("port"))) {
				port = word(p, n, &j);
				if (looks_port(port))
					event_set(ev, F_SOURCE_PORT, port);
			}
		}
		return;
	}
	if (starts(p, n, "pam_unix(sshd:auth): authentication failure;")) {
		/* "... logname= uid=0 euid=0 tty=ssh ruser= rhost=IP  user=USER" */
		size_t j = after(p, n, " rhost=");
		struct str w;

		auth_event(ev, 0, "ssh_login_failed");
		if (j < n) {
			w = word(p, n, &j);
			if (looks_ip(w))
				event_set(ev, F_SOURCE_IP, w);
		}
		j = after(p, n, " user=");
		if (j < n) {
			w = word(p, n, &j);
			if (w.n && w.n <= 256)
				event_set(ev, F_USER_NAME, w);
		}
	}
}

/* A netfilter log line: "[   12.345] PREFIX IN=eth0 OUT= MAC=... SRC=a
 * DST=b LEN=60 ... PROTO=TCP SPT=1 DPT=2 ... SYN URGP=0". The prefix the
 * administrator chose ("[UFW BLOCK] ", "DROP: ", "nft-reject ") tells the
 * action when it names one. */
static void netfilter(struct event *ev, const char *p, size_t n)
{
	size_t in = after(p, n, "IN="), i;
	struct str pre;
	static const struct { const char *word, *action, *type; } acts[] = {
		{ "BLOCK", "block", "denied" }, { "DROP", "drop", "denied" },
		{ "REJECT", "reject", "denied" }, { "DENY", "deny", "denied" },
		{ "ACCEPT", "accept", "allowed" }, { "ALLOW", "allow", "allowed" },
	};

	if (in >= n || after(p, n, " SRC=") >= n || after(p, n, " DST=") >= n)
		return;
	pre = str_make(p, in - 3);
	for (size_t a = 0; a < sizeof(acts) / sizeof(acts[0]); a++) {
		size_t k = strlen(acts[a].word);
		int hit = 0;

		for (size_t j = 0; j + k <= pre.n && !hit; j++)
			hit = strncasecmp(pre.p + j, acts[a].word, k) == 0;
		if (hit) {
			event_set(ev, F_EVENT_ACTION, str_cstr(acts[a].action));
			event_set(ev, F_EVENT_TYPE, str_cstr(acts[a].type));
			break;
		}
	}
	event_set(ev, F_EVENT_CATEGORY, STR_LIT("network"));
	if (!event_has(ev, F_EVENT_MODULE))
		event_set(ev, F_EVENT_MODULE, STR_LIT("iptables"));
	for (i = in - 3; i < n;) {
		struct str w = word(p, n, &i), k, v;
		const char *eq;

		if (!w.n)
			break;
		eq = memchr(w.p, '=', w.n);
		if (!eq)
			continue;
		k = str_make(w.p, (size_t)(eq - w.p));
		v = str_make(eq + 1, w.n - k.n - 1);
		if (str_eq(k, STR_LIT("SRC")) && looks_ip(v))
			event_set(ev, F_SOURCE_IP, v);
		else if (str_eq(k, STR_LIT("DST")) && looks_ip(v))
			event_set(ev, F_DESTINATION_IP, v);
		else if (str_eq(k, STR_LIT("SPT")) && looks_port(v))
			event_set(ev, F_SOURCE_PORT, v);
		else if (str_eq(k, STR_LIT("DPT")) && looks_port(v))
			event_set(ev, F_DESTINATION_PORT, v);
		else if (str_eq(k, STR_LIT("PROTO")))
			event_set(ev, F_NETWORK_TRANSPORT,
				  str_eq(v, STR_LIT("TCP")) ? STR_LIT("tcp") :
				  str_eq(v, STR_LIT("UDP")) ? STR_LIT("udp") :
				  str_eq(v, STR_LIT("ICMP")) ? STR_LIT("icmp") :
				  str_eq(v, STR_LIT("ICMPv6")) ? STR_LIT("ipv6-icmp") : v);
	}
}

void syslog_app_enrich(struct event *ev, const char *msg, size_t n)
{
	struct str app = event_get(ev, F_PROCESS_NAME);

	if (!app.n || !n)
		return;
	if (str_eq(app, STR_LIT("sshd")) || str_eq(app, STR_LIT("sshd-session")) ||
	    str_eq(app, STR_LIT("sshd-auth")))
		sshd(ev, msg, n);
	else if (str_eq(app, STR_LIT("kernel")))
		netfilter(ev, msg, n);
}
