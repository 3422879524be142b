/*
 * Webhook notifications: a JSON POST over HTTP(S) with libcurl, in a
 * generic shape (every part of the notification as its own member) or the
 * Slack-compatible {"text": ...} that Slack, Mattermost, Rocket.Chat and
 * Teams' incoming-webhook adapters accept.
 *
 * Why we write the JSON with buf_json_escape rather than a JSON library:
 * titles and fields come from events and may hold invalid UTF-8, which must
 * become U+FFFD, not a refused document.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "core/err.h"
#include "detect/notify.h"

static int put_json_str(struct buf *out, const char *s)
{
	int r;

	if ((r = buf_putc(out, '"')) < 0 ||
	    (r = buf_json_escape(out, s ? s : "", s ? strlen(s) : 0)) < 0)
		return r;
	return buf_putc(out, '"');
}

static void iso_time(int64_t us, char *out, size_t outsz)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	char base[32];

	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outsz, "%s.%03dZ", base, (int)((us % 1000000) / 1000));
}

/* Slack's mrkdwn needs &, < and > escaped; the JSON escape comes after. */
static int put_slack_text(struct buf *t, const char *s)
{
	int r = 0;

	for (; s && *s && r == 0; s++) {
		if (*s == '&')
			r = buf_puts(t, "&amp;");
		else if (*s == '<')
			r = buf_puts(t, "&lt;");
		else if (*s == '>')
			r = buf_puts(t, "&gt;");
		else
			r = buf_putc(t, *s);
	}
	return r;
}

/* Slack reads one "text" in mrkdwn: the title in bold with the severity,
 * the kind in italics, the body, then one bullet per field. */
static int format_slack(const struct notification *n, struct buf *out)
{
	struct buf t;
	char sev[32];
	size_t i;
	int r;

	for (i = 0; notify_severity_name(n->severity)[i] && i + 1 < sizeof(sev); i++) {
		char c = notify_severity_name(n->severity)[i];
		sev[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
	}
	sev[i] = '\0';
	buf_init(&t, NOTIFY_MAX_PAYLOAD / 2);
	r = buf_printf(&t, "*[%s] ", sev);
	if (r == 0)
		r = put_slack_text(&t, n->title);
	if (r == 0)
		r = buf_printf(&t, "*\n_%s_", notify_kind_name(n->kind));
	if (r == 0 && n->body && n->body[0]) {
		r = buf_putc(&t, '\n');
		if (r == 0)
			r = put_slack_text(&t, n->body);
	}
	for (i = 0; i < n->nfields && r == 0; i++) {
		if ((r = buf_puts(&t, "\n• ")) == 0 && (r = put_slack_text(&t, n->fields[i].key)) == 0 &&
		    (r = buf_puts(&t, ": ")) == 0)
			r = put_slack_text(&t, n->fields[i].value);
	}
	if (r == 0 && (r = buf_puts(out, "{\"text\":\"")) == 0 &&
	    (r = buf_json_escape(out, t.p ? t.p : "", t.len)) == 0)
		r = buf_puts(out, "\"}");
	buf_fini(&t);
	return r;
}

/* The generic shape: every part of the notification as its own member, the
 * fields as an object of strings, times in RFC 3339 UTC. */
int notify_format_webhook(const struct notify_channel_config *ch,
			  const struct notification *n, struct buf *out)
{
	char when[48];
	int r;

	if (ch->fmt == NOTIFY_FMT_SLACK)
		return format_slack(n, out);
	iso_time(n->time_us, when, sizeof(when));
	if ((r = buf_printf(out, "{\"source\":\"mamori\",\"kind\":\"%s\",\"severity\":\"%s\","
			    "\"time\":\"%s\",\"title\":", notify_kind_name(n->kind),
			    notify_severity_name(n->severity), when)) < 0 ||
	    (r = put_json_str(out, n->title)) < 0 ||
	    (r = buf_puts(out, ",\"body\":")) < 0 ||
	    (r = put_json_str(out, n->body)) < 0 ||
	    (r = buf_puts(out, ",\"fields\":{")) < 0)
		return r;
	for (size_t i = 0; i < n->nfields; i++) {
		if ((i && (r = buf_putc(out, ',')) < 0) ||
		    (r = put_json_str(out, n->fields[i].key)) < 0 ||
		    (r = buf_putc(out, ':')) < 0 ||
		    (r = put_json_str(out, n->fields[i].value)) < 0)
			return r;
	}
	return buf_puts(out, "}}");
}

/* ---- transport ---- */

/* The answer is not needed; reading it (up to a bound) keeps the
 * connection orderly. */
static size_t discard_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	size_t *seen = arg;

	*seen += size * nmemb;
	return *seen > (1 << 20) ? 0 : size * nmemb;
}

/* One POST; any 2xx is delivered. Redirects are not followed: a webhook
 * URL that moves should be reconfigured, not chased with the token. */
int notify_webhook_send(const struct notify_channel_config *ch, const char *body,
			size_t len, char *reason, size_t reasonsz, int *permanent)
{
	struct curl_slist *hdr = NULL, *tmp;
	char errbuf[CURL_ERROR_SIZE] = "", ua[64];
	size_t seen = 0;
	long code = 0;
	CURLcode c;
	CURL *h;
	int r = M_OK;

	*permanent = 0;
	h = curl_easy_init();
	if (!h) {
		snprintf(reason, reasonsz, "curl_easy_init failed");
		return M_ENOMEM;
	}
	snprintf(ua, sizeof(ua), "User-Agent: mamori/%s", MAMORI_VERSION);
	tmp = curl_slist_append(hdr, "Content-Type: application/json");
	if (tmp)
		hdr = tmp;
	tmp = tmp ? curl_slist_append(hdr, ua) : NULL;
	if (tmp)
		hdr = tmp;
	for (size_t i = 0; tmp && i < ch->headers.n; i++) {
		tmp = curl_slist_append(hdr, ch->headers.v[i]);
		if (tmp)
			hdr = tmp;
	}
	if (!tmp) {
		snprintf(reason, reasonsz, "out of memory");
		r = M_ENOMEM;
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, ch->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(ch->timeout * 1000));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(ch->timeout < 10 ? ch->timeout * 1000 : 10000));
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &seen);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, ch->tls_verify ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, ch->tls_verify ? 2L : 0L);
	if (ch->ca_file && ch->ca_file[0])
		curl_easy_setopt(h, CURLOPT_CAINFO, ch->ca_file);
	c = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (c != CURLE_OK) {
		snprintf(reason, reasonsz, "%s%s%s", curl_easy_strerror(c),
			 errbuf[0] ? ": " : "", errbuf);
		*permanent = c == CURLE_URL_MALFORMAT || c == CURLE_UNSUPPORTED_PROTOCOL;
		r = M_EIO;
	} else if (code < 200 || code > 299) {
		snprintf(reason, reasonsz, "HTTP %ld", code);
		/* A 4xx says the request itself is wrong, except these. */
		*permanent = code >= 400 && code < 500 && code != 408 && code != 425 && code != 429;
		r = M_EIO;
	}
out:
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return r;
}
