/*
 * E-mail notifications: an RFC 5322 message (Date, Message-ID, MIME
 * text/plain UTF-8, RFC 2047 subject) sent over SMTP with libcurl.
 *
 * Why we build the message ourselves: libcurl only transports it, and a
 * notification's title and fields come from events, i.e. from the network.
 * Every header value is cut to one line here, so a title cannot inject
 * headers, and non-ASCII text is encoded so that 7-bit relays keep it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "core/err.h"
#include "detect/notify.h"

#define LINE_MAX_OUT 76   /* encoded lines stay below RFC 5322's 78 */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Appends s as valid UTF-8 (invalid bytes become U+FFFD). With one_line,
 * every control character becomes a space; otherwise line ends become CRLF,
 * tabs stay and other controls are dropped. */
static int put_clean(struct buf *out, const char *s, size_t n, int one_line)
{
	const unsigned char *p = (const unsigned char *)s;
	int r = 0;

	for (size_t i = 0; i < n && r == 0;) {
		size_t l = utf8_len(p + i, n - i);
		if (l == 0) {
			r = buf_append(out, "\xef\xbf\xbd", 3);
			i++;
			continue;
		}
		if (l == 1 && (p[i] < 0x20 || p[i] == 0x7f)) {
			if (one_line)
				r = buf_putc(out, ' ');
			else if (p[i] == '\n')
				r = buf_append(out, "\r\n", 2);
			else if (p[i] == '\t')
				r = buf_putc(out, '\t');
			else if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
				; /* the \n that follows makes the CRLF */
			else if (p[i] == '\r')
				r = buf_append(out, "\r\n", 2);
			i++;
			continue;
		}
		r = buf_append(out, s + i, l);
		i += l;
	}
	return r;
}

static int is_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 0;
	return 1;
}

/* OpenSSL's encoder in bounded chunks (no line breaks: callers place
 * them). */
static int put_base64(struct buf *out, const unsigned char *p, size_t n)
{
	unsigned char tmp[4 * 64 / 3 + 4];
	int r;

	while (n) {
		size_t chunk = n > 48 ? 48 : n;   /* 64 output chars */
		int w = EVP_EncodeBlock(tmp, p, (int)chunk);
		if ((r = buf_append(out, tmp, (size_t)w)) < 0)
			return r;
		p += chunk;
		n -= chunk;
	}
	return M_OK;
}

/* RFC 2047 "B" encoding: ASCII stays readable; otherwise whole UTF-8
 * characters per encoded word, folded so that no line exceeds 76. */
int notify_rfc2047(const char *s, size_t n, size_t first_line_used, struct buf *out)
{
	struct buf clean;
	size_t used = first_line_used, i = 0;
	int r;

	buf_init(&clean, NOTIFY_MAX_TITLE * 4 + 64);
	if ((r = put_clean(&clean, s, n, 1)) < 0)
		goto out;
	if (is_ascii(clean.p, clean.len)) {
		r = buf_append(out, clean.p ? clean.p : "", clean.len);
		goto out;
	}
	/* Encoded words of whole characters, each line at most LINE_MAX_OUT. */
	while (i < clean.len) {
		size_t avail = LINE_MAX_OUT > used + 12 ? LINE_MAX_OUT - used - 12 : 4;
		size_t raw = avail / 4 * 3, take;
		if (raw < 6)
			raw = 6;
		take = clean.len - i < raw ? clean.len - i : raw;
		while (take > 1 && i + take < clean.len &&
		       ((unsigned char)clean.p[i + take] & 0xc0) == 0x80)
			take--;
		if (used != first_line_used && (r = buf_append(out, "\r\n ", 3)) < 0)
			goto out;
		if ((r = buf_puts(out, "=?UTF-8?B?")) < 0 ||
		    (r = put_base64(out, (const unsigned char *)clean.p + i, take)) < 0 ||
		    (r = buf_puts(out, "?=")) < 0)
			goto out;
		i += take;
		used = 1;
	}
	r = M_OK;
out:
	buf_fini(&clean);
	return r;
}

/* The bare address inside "Name <addr>" or addr itself, into out. */
static void bare_addr(const char *s, char *out, size_t outsz)
{
	const char *lt = strrchr(s, '<'), *gt;
	size_t n;

	if (lt && (gt = strchr(lt, '>')) != NULL) {
		n = (size_t)(gt - lt - 1);
		s = lt + 1;
	} else {
		while (*s == ' ')
			s++;
		n = strcspn(s, " ");
	}
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

/* Appends an address header value: the display name (if any) RFC 2047
 * encoded when it is not ASCII, then <addr>. */
static int put_address(struct buf *out, const char *a)
{
	const char *lt = strrchr(a, '<');
	char addr[320];
	int r;

	bare_addr(a, addr, sizeof(addr));
	if (lt && lt > a) {
		size_t n = (size_t)(lt - a);
		while (n && a[n - 1] == ' ')
			n--;
		if (n && (r = notify_rfc2047(a, n, 10, out)) < 0)
			return r;
		if (n && (r = buf_putc(out, ' ')) < 0)
			return r;
	}
	return buf_printf(out, "<%s>", addr);
}

/* Unique without coordination: time, pid, a per-process sequence and 32
 * random bits, under the sender's domain (RFC 5322 3.6.4). */
void notify_message_id(const struct notify_channel_config *ch, unsigned seq,
		       char *out, size_t outsz)
{
	char addr[320], dom[256];
	const char *at;
	unsigned rnd = 0;
	size_t j = 0;
	struct timespec ts;

	bare_addr(ch->from ? ch->from : "", addr, sizeof(addr));
	at = strchr(addr, '@');
	for (const char *p = at ? at + 1 : ""; *p && j + 1 < sizeof(dom); p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-')
			dom[j++] = *p;
	dom[j] = '\0';
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = (unsigned)clock();
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(out, outsz, "<%lld.%06ld.%d.%u.%08x@%s>", (long long)ts.tv_sec,
		 ts.tv_nsec / 1000, (int)getpid(), seq, rnd, j ? dom : "mamori.invalid");
}

/* RFC 5322 date in English whatever the locale. */
static int put_date(struct buf *out, int64_t time_us)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mons[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)(time_us / 1000000);
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		return M_EINVAL;
	return buf_printf(out, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
			  tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
			  tm.tm_min, tm.tm_sec);
}

static void upper(const char *s, char *out, size_t outsz)
{
	size_t i = 0;

	for (; s[i] && i + 1 < outsz; i++)
		out[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 32) : s[i];
	out[i] = '\0';
}

/* The text part: the body, then the kind, severity, time and fields as
 * "key: value" lines (CRLF, valid UTF-8). */
static int put_text(struct buf *t, const struct notification *n)
{
	char when[64];
	time_t tt = (time_t)(n->time_us / 1000000);
	struct tm tm;
	int r = 0;

	if (n->body && n->body[0]) {
		r = put_clean(t, n->body, strlen(n->body), 0);
		if (r == 0 && (t->len < 2 || memcmp(t->p + t->len - 2, "\r\n", 2) != 0))
			r = buf_append(t, "\r\n", 2);
		if (r == 0)
			r = buf_append(t, "\r\n", 2);
	}
	gmtime_r(&tt, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (r == 0)
		r = buf_printf(t, "kind: %s\r\nseverity: %s\r\ntime: %s\r\n",
			       notify_kind_name(n->kind), notify_severity_name(n->severity), when);
	for (size_t i = 0; i < n->nfields && r == 0; i++) {
		const char *k = n->fields[i].key ? n->fields[i].key : "";
		const char *v = n->fields[i].value ? n->fields[i].value : "";
		if ((r = put_clean(t, k, strlen(k), 1)) == 0 && (r = buf_append(t, ": ", 2)) == 0 &&
		    (r = put_clean(t, v, strlen(v), 1)) == 0)
			r = buf_append(t, "\r\n", 2);
	}
	if (r == 0)
		r = buf_puts(t, "\r\n-- \r\nmamori\r\n");
	return r;
}

/* Whether the text can travel as 7bit: ASCII, lines of at most 998. */
static int fits_7bit(const struct buf *t)
{
	size_t line = 0;

	for (size_t i = 0; i < t->len; i++) {
		unsigned char c = (unsigned char)t->p[i];
		if (c >= 0x80)
			return 0;
		line = c == '\n' ? 0 : line + 1;
		if (line > 998)
			return 0;
	}
	return 1;
}

/* Headers first (every value one line), then the text part in 7bit when
 * it can travel so, else base64, which survives any relay. */
int notify_format_email(const struct notify_channel_config *ch,
			const struct notification *n, const char *message_id,
			struct buf *out)
{
	struct buf subj, text;
	char sev[32];
	int r;

	buf_init(&subj, NOTIFY_MAX_TITLE + 256);
	buf_init(&text, NOTIFY_MAX_PAYLOAD / 2);
	upper(notify_severity_name(n->severity), sev, sizeof(sev));
	if ((r = buf_printf(&subj, "%s%s[%s] %s", ch->subject_prefix ? ch->subject_prefix : "",
			    ch->subject_prefix && ch->subject_prefix[0] ? " " : "", sev,
			    n->title ? n->title : "")) < 0 ||
	    (r = put_text(&text, n)) < 0)
		goto out;
	if ((r = buf_puts(out, "Date: ")) < 0 || (r = put_date(out, n->time_us)) < 0 ||
	    (r = buf_puts(out, "\r\nFrom: ")) < 0 || (r = put_address(out, ch->from)) < 0 ||
	    (r = buf_puts(out, "\r\nTo: ")) < 0)
		goto out;
	for (size_t i = 0; i < ch->to.n; i++)
		if ((i && (r = buf_puts(out, ",\r\n ")) < 0) || (r = put_address(out, ch->to.v[i])) < 0)
			goto out;
	if ((r = buf_printf(out, "\r\nMessage-ID: %s\r\nSubject: ", message_id)) < 0 ||
	    (r = notify_rfc2047(subj.p ? subj.p : "", subj.len, 9, out)) < 0 ||
	    (r = buf_printf(out, "\r\nMIME-Version: 1.0\r\n"
			    "Content-Type: text/plain; charset=UTF-8\r\n"
			    "Content-Transfer-Encoding: %s\r\n"
			    "Auto-Submitted: auto-generated\r\n"
			    "X-Mamori-Kind: %s\r\nX-Mamori-Severity: %s\r\n\r\n",
			    fits_7bit(&text) ? "7bit" : "base64",
			    notify_kind_name(n->kind), notify_severity_name(n->severity))) < 0)
		goto out;
	if (fits_7bit(&text)) {
		r = buf_append(out, text.p ? text.p : "", text.len);
	} else {
		/* 57 bytes of input make one 76-character line. */
		for (size_t i = 0; i < text.len && r == 0; i += 57) {
			size_t k = text.len - i < 57 ? text.len - i : 57;
			if ((r = put_base64(out, (const unsigned char *)text.p + i, k)) == 0)
				r = buf_append(out, "\r\n", 2);
		}
	}
out:
	buf_fini(&subj);
	buf_fini(&text);
	return r;
}

/* ---- transport ---- */

struct reader {
	const char *p;
	size_t len, off;
};

static size_t read_cb(char *dst, size_t size, size_t nmemb, void *arg)
{
	struct reader *rd = arg;
	size_t n = size * nmemb, left = rd->len - rd->off;

	if (n > left)
		n = left;
	memcpy(dst, rd->p + rd->off, n);
	rd->off += n;
	return n;
}

/* Whether a failed SMTP transfer can succeed later: not after a refused
 * login, a refused TLS requirement, a malformed URL or a 5xx answer. */
static int smtp_permanent(CURLcode c, long code)
{
	return c == CURLE_LOGIN_DENIED || c == CURLE_URL_MALFORMAT ||
	       c == CURLE_UNSUPPORTED_PROTOCOL || c == CURLE_USE_SSL_FAILED ||
	       (code >= 500 && code < 600);
}

/* libcurl speaks SMTP, STARTTLS and AUTH; the envelope uses the bare
 * addresses. A recipient the server refuses does not stop the others
 * (CURLOPT_MAIL_RCPT_ALLLOWFAILS); only the protocols smtp and smtps are allowed. */
int notify_smtp_send(const struct notify_channel_config *ch, const char *msg,
		     size_t len, char *reason, size_t reasonsz, int *permanent)
{
	struct reader rd = { msg, len, 0 };
	struct curl_slist *rcpt = NULL, *tmp;
	char errbuf[CURL_ERROR_SIZE] = "", addr[330], from[330];
	CURL *h;
	CURLcode c = CURLE_OK;
	long code = 0;
	int smtps = strncasecmp(ch->url, "smtps://", 8) == 0;
	int r = M_OK;

	*permanent = 0;
	h = curl_easy_init();
	if (!h) {
		snprintf(reason, reasonsz, "curl_easy_init failed");
		return M_ENOMEM;
	}
	for (size_t i = 0; i < ch->to.n; i++) {
		char a[320];
		bare_addr(ch->to.v[i], a, sizeof(a));
		snprintf(addr, sizeof(addr), "<%s>", a);
		tmp = curl_slist_append(rcpt, addr);
		if (!tmp) {
			r = M_ENOMEM;
			snprintf(reason, reasonsz, "out of memory");
			goto out;
		}
		rcpt = tmp;
	}
	{
		char a[320];
		bare_addr(ch->from, a, sizeof(a));
		snprintf(from, sizeof(from), "<%s>", a);
	}
	curl_easy_setopt(h, CURLOPT_URL, ch->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(ch->timeout * 1000));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(ch->timeout < 10 ? ch->timeout * 1000 : 10000));
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
	/* Spelled with three Ls until curl 8.2, which keeps it as an alias. */
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(h, CURLOPT_READDATA, &rd);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_USE_SSL,
			 smtps || ch->tls == NOTIFY_TLS_REQUIRED ? (long)CURLUSESSL_ALL :
			 ch->tls == NOTIFY_TLS_OPTIONAL ? (long)CURLUSESSL_TRY : (long)CURLUSESSL_NONE);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, ch->tls_verify ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, ch->tls_verify ? 2L : 0L);
	if (ch->ca_file && ch->ca_file[0])
		curl_easy_setopt(h, CURLOPT_CAINFO, ch->ca_file);
	if (ch->user && ch->user[0]) {
		curl_easy_setopt(h, CURLOPT_USERNAME, ch->user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, ch->password ? ch->password : "");
	}
	c = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (c != CURLE_OK) {
		snprintf(reason, reasonsz, "%s%s%s (smtp %ld)", curl_easy_strerror(c),
			 errbuf[0] ? ": " : "", errbuf, code);
		*permanent = smtp_permanent(c, code);
		r = M_EIO;
	}
out:
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(h);
	return r;
}
