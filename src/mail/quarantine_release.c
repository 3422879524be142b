/*
 * The quarantine's way out: SMTP re-injection of a held message with
 * libcurl, the notice to the sender of held outbound mail, and the text
 * cleaning both need.
 *
 * Why the SMTP dialogue is watched: libcurl sends one RCPT TO per recipient
 * and, with CURLOPT_MAIL_RCPT_ALLOWFAILS, goes on past the ones the server
 * refuses, but does not say which were refused. Its debug callback sees each
 * command and each reply, so the reply that follows a RCPT TO is matched to
 * that recipient; an operator learns exactly who did not get a release.
 * libcurl also does the dot-stuffing and the final "." of DATA.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "mail/quarantine_int.h"

#define MAX_BASE_URL 512
#define NOTICE_MAX_RCPT 10     /* recipients named in a notice */
#define NOTICE_SUBJECT 900     /* bytes of the subject quoted */

/* ---- text ---- */

/* Length of the well-formed UTF-8 sequence (RFC 3629) at p, 0 if none:
 * no overlong forms, no surrogates, nothing past U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	static const struct {
		unsigned char mask, lead;
		size_t len;
		unsigned min;
	} form[] = {
		{ 0x80, 0x00, 1, 0 }, { 0xe0, 0xc0, 2, 0x80 },
		{ 0xf0, 0xe0, 3, 0x800 }, { 0xf8, 0xf0, 4, 0x10000 },
	};

	for (size_t f = 0; f < sizeof(form) / sizeof(form[0]); f++) {
		unsigned cp;

		if ((p[0] & form[f].mask) != form[f].lead)
			continue;
		if (form[f].len > n)
			return 0;
		cp = p[0] & (unsigned char)~form[f].mask;
		for (size_t i = 1; i < form[f].len; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3fu);
		}
		if (cp < form[f].min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		return form[f].len;
	}
	return 0;
}

static int is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

int quarantine_text_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq(p + i, n - i);
		if (l == 0 || (l == 1 && is_ctl(p[i])))
			return 0;
		i += l;
	}
	return 1;
}

char *quarantine_clean_text(const char *s, size_t n, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(max + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq(p + i, n - i);
		const char *piece = s + i;
		size_t plen = l;

		if (l == 0) {
			piece = "\xef\xbf\xbd";   /* U+FFFD */
			plen = 3;
			l = 1;
		} else if (l == 1 && is_ctl(p[i])) {
			piece = " ";
		}
		if (o + plen > max)
			break;
		memcpy(out + o, piece, plen);
		o += plen;
		i += l;
	}
	out[o] = '\0';
	return out;
}

/* ---- SMTP ---- */

int quarantine_curl_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : M_EIO;
}

struct smtp_watch {
	struct quarantine_result *res;
	int in_rcpt;                           /* the last command was a RCPT TO */
	char rcpt[QUARANTINE_MAX_ADDR + 8];    /* its address */
	char last[256];                        /* the last final reply line */
	size_t dlen;                           /* bytes used in res->detail */
};

static void note(struct smtp_watch *w, const char *fmt, const char *a, const char *b)
{
	size_t room = sizeof(w->res->detail) - w->dlen;
	int n;

	if (room <= 1)
		return;
	n = snprintf(w->res->detail + w->dlen, room, fmt, a, b);
	if (n > 0)
		w->dlen += (size_t)n < room ? (size_t)n : room - 1;
}

/* One reply line from the server: a final one (code and a space, or just
 * the code) ends the reply to the command before it. */
static void reply_line(struct smtp_watch *w, const char *line, size_t n)
{
	char clean[sizeof(w->last)];
	size_t k = n < sizeof(clean) - 1 ? n : sizeof(clean) - 1;

	if (n < 3 || (n > 3 && line[3] != ' '))
		return;   /* a continuation line ("250-...") */
	memcpy(clean, line, k);
	clean[k] = '\0';
	for (size_t i = 0; i < k; i++)
		if (is_ctl((unsigned char)clean[i]))
			clean[i] = ' ';
	snprintf(w->last, sizeof(w->last), "%s", clean);
	if (!w->in_rcpt)
		return;
	w->in_rcpt = 0;
	if (line[0] == '2') {
		w->res->accepted++;
	} else {
		w->res->refused++;
		note(w, "%s<%s> ", w->dlen ? "; " : "", w->rcpt);
		note(w, "%s%s", clean, "");
	}
}

static int smtp_debug(CURL *h, curl_infotype type, char *data, size_t size, void *arg)
{
	struct smtp_watch *w = arg;

	(void)h;
	if (type == CURLINFO_HEADER_OUT) {
		w->in_rcpt = size > 8 && strncasecmp(data, "RCPT TO:", 8) == 0;
		if (w->in_rcpt) {
			size_t i = 8, o = 0;
			if (i < size && data[i] == '<')
				i++;
			while (i < size && data[i] != '>' && data[i] != '\r' && data[i] != '\n' &&
			       o < sizeof(w->rcpt) - 1)
				w->rcpt[o++] = data[i++];
			w->rcpt[o] = '\0';
		}
	} else if (type == CURLINFO_HEADER_IN) {
		size_t start = 0;
		for (size_t i = 0; i <= size; i++) {
			if (i == size || data[i] == '\n') {
				size_t end = i;
				if (end > start && data[end - 1] == '\r')
					end--;
				if (end > start)
					reply_line(w, data + start, end - start);
				start = i + 1;
			}
		}
	}
	return 0;
}

struct reader {
	const char *p;
	size_t len, off;
};

static size_t smtp_read(char *dst, size_t size, size_t nmemb, void *arg)
{
	struct reader *rd = arg;
	size_t n = size * nmemb;

	if (n > rd->len - rd->off)
		n = rd->len - rd->off;
	memcpy(dst, rd->p + rd->off, n);
	rd->off += n;
	return n;
}

int quarantine_smtp_send(const char *addr, int64_t timeout, const char *sender,
			 char *const *rcpt, size_t nrcpt, const char *data, size_t len,
			 struct quarantine_result *res)
{
	struct smtp_watch w;
	struct reader rd = { data, len, 0 };
	struct curl_slist *list = NULL, *tmp;
	char host[256], url[300], from[QUARANTINE_MAX_ADDR + 3], errbuf[CURL_ERROR_SIZE] = "";
	char one[QUARANTINE_MAX_ADDR + 3];
	CURL *h = NULL;
	CURLcode c;
	int port, rc = M_EIO;

	memset(res, 0, sizeof(*res));
	memset(&w, 0, sizeof(w));
	w.res = res;
	if (conf_split_addr(addr, host, sizeof(host), &port) != 0 || port <= 0 || port > 65535) {
		snprintf(res->detail, sizeof(res->detail), "bad re-injection address %s", addr);
		return M_EINVAL;
	}
	snprintf(url, sizeof(url), strchr(host, ':') ? "smtp://[%s]:%d" : "smtp://%s:%d", host,
		 port);
	snprintf(from, sizeof(from), "%s%s%s", sender && sender[0] ? "<" : "",
		 sender ? sender : "", sender && sender[0] ? ">" : "");
	for (size_t i = 0; i < nrcpt; i++) {
		snprintf(one, sizeof(one), "<%s>", rcpt[i]);
		tmp = curl_slist_append(list, one);
		if (!tmp) {
			rc = M_ENOMEM;
			snprintf(res->detail, sizeof(res->detail), "out of memory");
			goto out;
		}
		list = tmp;
	}
	h = curl_easy_init();
	if (!h) {
		rc = M_ENOMEM;
		snprintf(res->detail, sizeof(res->detail), "out of memory");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)timeout);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)(timeout < 10 ? timeout : 10));
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, list);
	/* Spelled with three Ls until curl 8.2, which keeps it as an alias. */
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, smtp_read);
	curl_easy_setopt(h, CURLOPT_READDATA, &rd);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);   /* feeds smtp_debug, prints nothing */
	curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, smtp_debug);
	curl_easy_setopt(h, CURLOPT_DEBUGDATA, &w);
	c = curl_easy_perform(h);
	if (c != CURLE_OK) {
		size_t dl = strnlen(res->detail, sizeof(res->detail));
		snprintf(res->detail + dl, sizeof(res->detail) - dl, "%s%s to %s failed: %s%s%s",
			 dl ? "; " : "", res->accepted || res->refused ? "delivery" : "re-injection",
			 addr, errbuf[0] ? errbuf : curl_easy_strerror(c), w.last[0] ? "; server said: " : "",
			 w.last);
		goto out;
	}
	if (res->accepted == 0 && nrcpt > 0) {
		/* A server that never answered a RCPT TO we could see. */
		res->accepted = (unsigned)nrcpt - res->refused;
	}
	rc = 0;
out:
	curl_slist_free_all(list);
	curl_easy_cleanup(h);
	return rc;
}

/* ---- the hold notice ---- */

static int put_header(struct buf *b, const char *name, const char *value)
{
	int r = buf_puts(b, name);

	r = r ? r : buf_puts(b, ": ");
	r = r ? r : buf_puts(b, value);
	return r ? r : buf_puts(b, "\r\n");
}

static int all_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

static int base_url_ok(const char *u, size_t n)
{
	if (n == 0 || n > MAX_BASE_URL || !quarantine_text_ok(u, n) || memchr(u, ' ', n))
		return 0;
	return strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0;
}

static int put_link(struct buf *b, const char *base, size_t blen, const char *id,
		    const char *what, const char *token)
{
	return buf_printf(b, "%.*s/api/v1/mail/hold/%s/%s?token=%s\r\n", (int)blen, base, id, what,
			  token);
}

int quarantine_hold_notice(struct quarantine *q, const char *id, const char *base_url,
			   char **msg_text)
{
	char tok_cancel[QUARANTINE_TOKEN_LEN + 1], tok_send[QUARANTINE_TOKEN_LEN + 1];
	char date[64], until[64], subject[NOTICE_SUBJECT + 64], mid[160];
	struct quarantine_meta m;
	char *from = NULL, *subj = NULL;
	const char *dom;
	size_t blen = base_url ? strlen(base_url) : 0;
	time_t now = time(NULL), exp;
	struct tm tm;
	struct buf b;
	int rc;

	*msg_text = NULL;
	while (blen && base_url[blen - 1] == '/')
		blen--;
	if (!base_url_ok(base_url, blen))
		return M_EINVAL;
	rc = quarantine_get(q, id, &m, NULL, NULL);
	if (rc != 0)
		return rc;
	buf_init(&b, 1 << 20);
	if (m.direction != QUARANTINE_OUTBOUND || m.state != QUARANTINE_HELD || !m.sender[0]) {
		rc = M_EINVAL;
		goto out;
	}
	if ((rc = quarantine_token(q, id, QUARANTINE_ACT_CANCEL, tok_cancel)) != 0 ||
	    (rc = quarantine_token(q, id, QUARANTINE_ACT_SEND_NOW, tok_send)) != 0)
		goto out;
	rc = M_ENOMEM;
	from = quarantine_notice_from(q);
	subj = quarantine_clean_text(m.subject, strlen(m.subject), NOTICE_SUBJECT);
	if (!from || !subj)
		goto out;
	exp = (time_t)m.expires_at;
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", gmtime_r(&now, &tm));
	strftime(until, sizeof(until), "%Y-%m-%d %H:%M UTC", gmtime_r(&exp, &tm));
	dom = strrchr(from, '@');
	snprintf(mid, sizeof(mid), "<hold.%s.%lld@%s>", id, (long long)now,
		 dom && dom[1] && all_ascii(dom + 1) ? dom + 1 : "mamori.invalid");
	/* A subject in 8-bit would need SMTPUTF8; an encoded or plain ASCII one
	 * is quoted as it is, anything else only in the body. */
	if (subj[0] && all_ascii(subj))
		snprintf(subject, sizeof(subject), "Held before sending: %s", subj);
	else
		snprintf(subject, sizeof(subject), "Your message is held before sending");

	rc = put_header(&b, "From", from);
	rc = rc ? rc : buf_printf(&b, "To: <%s>\r\n", m.sender);
	rc = rc ? rc : put_header(&b, "Subject", subject);
	rc = rc ? rc : put_header(&b, "Date", date);
	rc = rc ? rc : put_header(&b, "Message-ID", mid);
	rc = rc ? rc : put_header(&b, "MIME-Version", "1.0");
	rc = rc ? rc : put_header(&b, "Content-Type", "text/plain; charset=utf-8");
	rc = rc ? rc : put_header(&b, "Content-Transfer-Encoding", "8bit");
	rc = rc ? rc : put_header(&b, "Auto-Submitted", "auto-generated");
	rc = rc ? rc : put_header(&b, "X-Mamori-Hold", id);
	rc = rc ? rc : buf_printf(&b, "\r\nYour message is held and will be sent at %s\r\n"
				  "unless you cancel it.\r\n\r\n  Subject: %s\r\n", until,
				  subj[0] ? subj : "(none)");
	for (size_t i = 0; rc == 0 && i < m.nrcpt && i < NOTICE_MAX_RCPT; i++)
		rc = buf_printf(&b, "  %s %s\r\n", i ? "   " : "To:", m.rcpt[i]);
	if (rc == 0 && m.nrcpt > NOTICE_MAX_RCPT)
		rc = buf_printf(&b, "      and %zu more\r\n", m.nrcpt - NOTICE_MAX_RCPT);
	/* What the gateway noticed (external or first-time recipients, DLP):
	 * the warnings the sender should read before the hold ends. */
	json_t *rs = rc == 0 && m.reasons ? json_loads(m.reasons, 0, NULL) : NULL;
	for (size_t i = 0; rc == 0 && json_is_array(rs) && i < json_array_size(rs) && i < 16; i++) {
		const char *d = json_string_value(json_object_get(json_array_get(rs, i), "detail"));
		char *c = d ? quarantine_clean_text(d, strlen(d), 300) : NULL;
		if (c)
			rc = buf_printf(&b, "%s  ! %s\r\n", i ? "" : "\r\nPlease check:\r\n", c);
		free(c);
	}
	json_decref(rs);
	rc = rc ? rc : buf_puts(&b, "\r\nTo cancel it, open:\r\n");
	rc = rc ? rc : put_link(&b, base_url, blen, id, "cancel", tok_cancel);
	rc = rc ? rc : buf_puts(&b, "\r\nTo send it now, open:\r\n");
	rc = rc ? rc : put_link(&b, base_url, blen, id, "send-now", tok_send);
	rc = rc ? rc : buf_puts(&b, "\r\n-- \r\nmamori mail gateway\r\n");
	rc = rc ? rc : buf_cstr(&b);
	if (rc != 0)
		goto out;
	*msg_text = b.p;
	b.p = NULL;
out:
	buf_fini(&b);
	free(from);
	free(subj);
	quarantine_meta_fini(&m);
	return rc;
}
