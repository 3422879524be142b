/*
 * `mamori events search`: asks a running mamori for events over its HTTP API
 * and prints them as a compact table (or the raw JSON).
 *
 * Why plain sockets: the request is one GET on loopback or a LAN, and libcurl
 * is not a dependency yet; when https is needed this file switches to it.
 * Why so careful with output: event values come from the network (log lines
 * anyone can send), so every control character is neutralised before it
 * reaches a terminal. Everything read is bounded: the answer, each header
 * block, each chunk, and every wait has a timeout.
 */
#include "cli/client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/err.h"

#ifndef MAMORI_VERSION
#define MAMORI_VERSION "0.0.0"
#endif

#define CLI_DEFAULT_URL "http://127.0.0.1:8080"
#define CLI_TOKEN_FILE "var/api-token"
#define CLI_MAX_HEADER ((size_t)64 << 10)
#define CLI_MAX_TOKEN 512
#define CLI_TIMEOUT_MS 30000

static const char usage_text[] =
	"usage: mamori events search [options] [field=value ...] [TEXT ...]\n"
	"\n"
	"Searches the events stored by a running mamori through its HTTP API.\n"
	"\n"
	"  --url URL        API address (default " CLI_DEFAULT_URL ")\n"
	"  --token T        bearer token (default: $MAMORI_API_TOKEN, then the\n"
	"                   file ./" CLI_TOKEN_FILE ")\n"
	"  --from T         start of the time range: RFC 3339 (2024-05-01T12:00:00Z),\n"
	"                   epoch seconds or milliseconds, or a span back from now\n"
	"                   (30s, 15m, 2h, 7d, 4w)\n"
	"  --to T           end of the time range (same forms; default now)\n"
	"  --limit N        events per page, 1..1000 (default 100)\n"
	"  --offset N       skip the first N matches\n"
	"  --order asc|desc oldest or newest first (default desc)\n"
	"  --json           print the API's JSON answer as it is\n"
	"  -h, --help       this text\n"
	"\n"
	"field=value        exact match on an ECS field (host.name=web1,\n"
	"                   source.ip=10.0.0.1); a trailing * matches a prefix\n"
	"TEXT               full-text search over the message\n"
	"\n"
	"Exit status: 0 on success, 1 when the request failed, 2 on bad usage.\n";

/* ---- URL and HTTP ---------------------------------------------------- */

static int fail_msg(struct buf *err, int rc, const char *fmt, const char *arg)
{
	if (err) {
		buf_reset(err);
		buf_printf(err, fmt, arg);
		buf_cstr(err);
	}
	return rc;
}

int cli_url_parse(const char *url, struct cli_url *u, struct buf *err)
{
	const char *p, *host_end, *path;
	size_t hl, pl;

	memset(u, 0, sizeof(*u));
	if (strncasecmp(url, "https://", 8) == 0)
		return fail_msg(err, M_EUNSUPP,
				"%s: https is not supported by this client yet (use http:// on a trusted network)",
				url);
	if (strncasecmp(url, "http://", 7) != 0)
		return fail_msg(err, M_EINVAL, "%s: the URL must start with http://", url);
	p = url + 7;
	path = p + strcspn(p, "/?#");
	if (strpbrk(path, "?#"))
		return fail_msg(err, M_EINVAL, "%s: the URL cannot carry a query", url);
	if (*p == '[') {
		host_end = memchr(p, ']', (size_t)(path - p));
		if (host_end == NULL)
			return fail_msg(err, M_EINVAL, "%s: unclosed [ in the host", url);
		hl = (size_t)(host_end - p - 1);
		if (hl == 0 || hl >= sizeof(u->host))
			return fail_msg(err, M_EINVAL, "%s: bad host", url);
		memcpy(u->host, p + 1, hl);
		u->ipv6 = 1;
		p = host_end + 1;
	} else {
		host_end = memchr(p, ':', (size_t)(path - p));
		if (host_end == NULL)
			host_end = path;
		hl = (size_t)(host_end - p);
		if (hl == 0 || hl >= sizeof(u->host))
			return fail_msg(err, M_EINVAL, "%s: bad host", url);
		memcpy(u->host, p, hl);
		p = host_end;
	}
	if (memchr(u->host, '@', hl))
		return fail_msg(err, M_EINVAL, "%s: credentials in the URL are not supported; use --token", url);
	if (p < path && *p == ':') {
		size_t n = (size_t)(path - p - 1);
		unsigned port = 0;

		if (n == 0 || n > 5)
			return fail_msg(err, M_EINVAL, "%s: bad port", url);
		for (size_t i = 1; i <= n; i++) {
			if (p[i] < '0' || p[i] > '9')
				return fail_msg(err, M_EINVAL, "%s: bad port", url);
			port = port * 10 + (unsigned)(p[i] - '0');
		}
		if (port == 0 || port > 65535)
			return fail_msg(err, M_EINVAL, "%s: bad port", url);
		snprintf(u->port, sizeof(u->port), "%u", port);
	} else if (p != path) {
		return fail_msg(err, M_EINVAL, "%s: bad host", url);
	} else {
		snprintf(u->port, sizeof(u->port), "80");
	}
	pl = strlen(path);
	while (pl && path[pl - 1] == '/')
		pl--;
	if (pl >= sizeof(u->base))
		return fail_msg(err, M_EINVAL, "%s: path too long", url);
	for (size_t i = 0; i < pl; i++)
		if ((unsigned char)path[i] <= ' ' || path[i] == 0x7f)
			return fail_msg(err, M_EINVAL, "%s: bad character in the path", url);
	memcpy(u->base, path, pl);
	return 0;
}

/* Connects to the first address that answers; the socket stays
 * non-blocking. Returns the descriptor or -1 with errno set. */
static int http_connect(const struct cli_url *u, int timeout_ms)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, saved = ECONNREFUSED, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(u->host, u->port, &hints, &res);
	if (rc != 0) {
		saved = EHOSTUNREACH;
		goto out;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			goto out;
		if (errno == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			rc = poll(&pfd, 1, timeout_ms);
			if (rc == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
			    soerr == 0)
				goto out;
			saved = rc == 0 ? ETIMEDOUT : soerr ? soerr : errno;
		} else {
			saved = errno;
		}
		close(fd);
		fd = -1;
	}
out:
	if (res)
		freeaddrinfo(res);
	if (fd < 0)
		errno = saved;
	return fd;
}

static int send_all(int fd, const char *p, size_t n, int timeout_ms)
{
	while (n > 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		ssize_t w;

		if (poll(&pfd, 1, timeout_ms) != 1)
			return M_EIO;
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w <= 0)
			return M_EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Position of the blank line ending the header block, or 0 when absent. */
static size_t header_end(const char *p, size_t n)
{
	for (size_t i = 3; i < n; i++)
		if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r')
			return i + 1;
	return 0;
}

/* The value of a header (case-insensitive name) inside the header block,
 * trimmed; NULL when absent. */
static const char *header_value(const char *hdr, size_t hlen, const char *name,
				size_t *vlen)
{
	size_t nl = strlen(name);
	const char *line = memchr(hdr, '\n', hlen);

	while (line && (size_t)(line + 1 - hdr) < hlen) {
		const char *s = line + 1;
		const char *e = memchr(s, '\n', hlen - (size_t)(s - hdr));

		if (e == NULL)
			break;
		if ((size_t)(e - s) > nl && s[nl] == ':' && strncasecmp(s, name, nl) == 0) {
			const char *v = s + nl + 1;
			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
				e--;
			*vlen = (size_t)(e - v);
			return v;
		}
		line = e;
	}
	return NULL;
}

/* Decodes a chunked body into out. 0 or M_EPARSE / M_ELIMIT. */
static int dechunk(const char *p, size_t n, struct buf *out)
{
	size_t pos = 0;

	for (;;) {
		uint64_t size = 0;
		size_t digits = 0;
		const char *eol;
		int rc;

		while (pos < n && digits < 16) {
			char c = p[pos];
			int v = c >= '0' && c <= '9' ? c - '0' :
				c >= 'a' && c <= 'f' ? c - 'a' + 10 :
				c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
			if (v < 0)
				break;
			size = size * 16 + (uint64_t)v;
			digits++;
			pos++;
		}
		if (digits == 0 || digits >= 16)
			return M_EPARSE;
		eol = memchr(p + pos, '\n', n - pos);   /* skips extensions */
		if (eol == NULL)
			return M_EPARSE;
		pos = (size_t)(eol - p) + 1;
		if (size == 0)
			return 0;
		if (size > n - pos)
			return M_EPARSE;
		if ((rc = buf_append(out, p + pos, (size_t)size)) != 0)
			return rc;
		pos += (size_t)size;
		if (pos + 2 > n || p[pos] != '\r' || p[pos + 1] != '\n')
			return M_EPARSE;
		pos += 2;
	}
}

int cli_http_get(const struct cli_url *u, const char *target,
		 const char *token, int timeout_ms, int *status,
		 struct buf *body, struct buf *err)
{
	struct buf req, resp;
	const char *v;
	size_t hend = 0, vlen, want = SIZE_MAX;
	int fd, rc = M_EIO, chunked = 0;
	char hostport[300];

	buf_init(&req, 64 << 10);
	buf_init(&resp, CLI_MAX_ANSWER);
	*status = 0;
	buf_reset(body);
	if (token && token[0]) {
		for (const char *t = token; *t; t++)
			if ((unsigned char)*t <= ' ' || *t == 0x7f) {
				rc = fail_msg(err, M_EINVAL, "%s",
					      "the token contains spaces or control characters");
				fd = -1;
				goto out;
			}
	}
	fd = http_connect(u, timeout_ms);
	if (fd < 0) {
		snprintf(hostport, sizeof(hostport), u->ipv6 ? "[%s]:%s" : "%s:%s",
			 u->host, u->port);
		buf_reset(err);
		buf_printf(err, "cannot connect to %s: %s%s", hostport, strerror(errno),
			   errno == ECONNREFUSED ? " (is `mamori serve` running?)" : "");
		buf_cstr(err);
		rc = M_EIO;
		goto out;
	}
	snprintf(hostport, sizeof(hostport), u->ipv6 ? "[%s]:%s" : "%s:%s", u->host,
		 u->port);
	rc = buf_printf(&req, "GET %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: mamori/%s\r\n"
			"Accept: application/json\r\nConnection: close\r\n",
			u->base, target, hostport, MAMORI_VERSION);
	if (rc == 0 && token && token[0])
		rc = buf_printf(&req, "Authorization: Bearer %s\r\n", token);
	if (rc == 0)
		rc = buf_puts(&req, "\r\n");
	if (rc != 0 || send_all(fd, req.p, req.len, timeout_ms) != 0) {
		rc = fail_msg(err, M_EIO, "sending the request failed: %s", strerror(errno));
		goto out;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (hend && resp.len - hend >= want)
			break;
		rc = poll(&pfd, 1, timeout_ms);
		if (rc == 0) {
			rc = fail_msg(err, M_EIO, "%s", "the server did not answer in time");
			goto out;
		}
		if (rc < 0 && errno == EINTR)
			continue;
		if ((rc = buf_reserve(&resp, 64 << 10)) != 0 &&
		    (rc = buf_reserve(&resp, 1)) != 0) {
			rc = fail_msg(err, M_ELIMIT, "%s", "the answer is too large");
			goto out;
		}
		n = recv(fd, resp.p + resp.len, resp.cap - resp.len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			rc = fail_msg(err, M_EIO, "reading the answer failed: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		resp.len += (size_t)n;
		if (hend == 0) {
			hend = header_end(resp.p, resp.len < CLI_MAX_HEADER ? resp.len : CLI_MAX_HEADER);
			if (hend == 0 && resp.len >= CLI_MAX_HEADER) {
				rc = fail_msg(err, M_EPARSE, "%s", "the answer's headers are too long");
				goto out;
			}
			if (hend && (v = header_value(resp.p, hend, "Transfer-Encoding", &vlen)) &&
			    vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0)
				chunked = 1;
			else if (hend && (v = header_value(resp.p, hend, "Content-Length", &vlen))) {
				want = 0;
				for (size_t i = 0; i < vlen && want < CLI_MAX_ANSWER; i++) {
					if (v[i] < '0' || v[i] > '9')
						break;
					want = want * 10 + (size_t)(v[i] - '0');
				}
			}
		}
	}
	if (hend == 0 || resp.len < 12 || memcmp(resp.p, "HTTP/1.", 7) != 0 ||
	    resp.p[8] != ' ' || resp.p[9] < '1' || resp.p[9] > '5' ||
	    resp.p[10] < '0' || resp.p[10] > '9' || resp.p[11] < '0' || resp.p[11] > '9') {
		rc = fail_msg(err, M_EPARSE, "%s", "the answer is not HTTP (wrong --url?)");
		goto out;
	}
	*status = (resp.p[9] - '0') * 100 + (resp.p[10] - '0') * 10 + (resp.p[11] - '0');
	if (chunked)
		rc = dechunk(resp.p + hend, resp.len - hend, body);
	else if (want != SIZE_MAX && resp.len - hend < want)
		rc = M_EPARSE;
	else
		rc = buf_append(body, resp.p + hend,
				want != SIZE_MAX ? want : resp.len - hend);
	if (rc == 0)
		rc = buf_cstr(body);
	if (rc != 0)
		rc = fail_msg(err, rc, "%s", "the answer was cut short or malformed");
out:
	if (fd >= 0)
		close(fd);
	buf_fini(&req);
	buf_fini(&resp);
	return rc;
}

/* ---- table output ---------------------------------------------------- */

/* Prints up to width code points of s (all when width is 0) with control
 * characters, C1 controls and invalid UTF-8 shown as '?', and pads with
 * spaces to width when pad is set. Each code point counts as one column;
 * good enough for a placeholder table. */
static void put_cell(FILE *out, const char *s, size_t width, int pad)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "-");
	size_t cols = 0;

	while (*p && (width == 0 || cols < width)) {
		size_t k = 1;

		if (width && cols + 1 == width && p[1] != '\0') {
			fputs("~", out);    /* marks a cut value */
			cols++;
			break;
		}
		if (*p < 0x20 || *p == 0x7f) {
			fputc(*p == '\n' || *p == '\t' || *p == '\r' ? ' ' : '?', out);
		} else if (*p < 0x80) {
			fputc(*p, out);
		} else {
			unsigned cp;

			if ((*p & 0xe0) == 0xc0 && (p[1] & 0xc0) == 0x80 && *p >= 0xc2) {
				k = 2;
				cp = ((unsigned)(*p & 0x1f) << 6) | (p[1] & 0x3f);
			} else if ((*p & 0xf0) == 0xe0 && (p[1] & 0xc0) == 0x80 &&
				   (p[2] & 0xc0) == 0x80) {
				k = 3;
				cp = 0x800;
			} else if ((*p & 0xf8) == 0xf0 && *p <= 0xf4 && (p[1] & 0xc0) == 0x80 &&
				   (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80) {
				k = 4;
				cp = 0x10000;
			} else {
				k = 1;
				cp = 0;    /* invalid */
			}
			if (cp == 0 || (cp >= 0x80 && cp < 0xa0))
				fputc('?', out);
			else
				fwrite(p, 1, k, out);
		}
		p += k;
		cols++;
	}
	while (pad && cols < width) {
		fputc(' ', out);
		cols++;
	}
}

static const char *ev_str(json_t *ev, const char *const *keys)
{
	for (; *keys; keys++) {
		json_t *v = json_object_get(ev, *keys);
		if (json_is_string(v) && json_string_length(v) > 0)
			return json_string_value(v);
	}
	return NULL;
}

static size_t text_cols(const char *s)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)(s ? s : "-"); *p; p++)
		if ((*p & 0xc0) != 0x80)
			n++;
	return n;
}

int cli_print_events(FILE *out, const char *json, size_t len, int width)
{
	static const char *const k_time[] = { "@timestamp", NULL };
	static const char *const k_host[] = { "host.name", "host.hostname",
		"observer.hostname", "observer.name", "log.syslog.hostname", NULL };
	static const char *const k_ds[] = { "event.dataset", "event.module", NULL };
	static const char *const k_msg[] = { "message", "event.original", NULL };
	json_t *root, *events, *ev;
	json_error_t jerr;
	size_t i, n, w_host = 4, w_ds = 7, fixed;
	long long total;
	unsigned long long offset;
	int rc = M_EPARSE;

	root = json_loadb(json, len, 0, &jerr);
	events = json_object_get(root, "events");
	if (!json_is_object(root) || !json_is_array(events) ||
	    !json_is_integer(json_object_get(root, "total")))
		goto out;
	total = json_integer_value(json_object_get(root, "total"));
	offset = (unsigned long long)json_integer_value(json_object_get(root, "offset"));
	n = json_array_size(events);
	json_array_foreach(events, i, ev) {
		size_t c = text_cols(ev_str(ev, k_host));
		if (c > w_host)
			w_host = c;
		c = text_cols(ev_str(ev, k_ds));
		if (c > w_ds)
			w_ds = c;
	}
	if (w_host > 24)
		w_host = 24;
	if (w_ds > 24)
		w_ds = 24;
	fixed = 24 + 2 + w_host + 2 + w_ds + 2;
	if (n > 0) {
		put_cell(out, "TIME", 24, 1);
		fputs("  ", out);
		put_cell(out, "HOST", w_host, 1);
		fputs("  ", out);
		put_cell(out, "DATASET", w_ds, 1);
		fputs("  MESSAGE\n", out);
	}
	json_array_foreach(events, i, ev) {
		if (!json_is_object(ev))
			continue;
		put_cell(out, ev_str(ev, k_time), 24, 1);
		fputs("  ", out);
		put_cell(out, ev_str(ev, k_host), w_host, 1);
		fputs("  ", out);
		put_cell(out, ev_str(ev, k_ds), w_ds, 1);
		fputs("  ", out);
		put_cell(out, ev_str(ev, k_msg),
			 width > 0 ? ((size_t)width > fixed + 20 ? (size_t)width - fixed : 20) : 0,
			 0);
		fputc('\n', out);
	}
	if (n == 0)
		fprintf(out, "no events (total %lld)\n", total);
	else
		fprintf(out, "-- %llu-%llu of %lld events%s\n", offset + 1,
			offset + n, total,
			(long long)(offset + n) < total ? " (--offset for more)" : "");
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* ---- the subcommand -------------------------------------------------- */

/* Appends name=value with both parts percent-encoded. */
static int add_param(struct buf *q, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *parts[2] = { name, value };
	int rc = buf_putc(q, q->len && memchr(q->p, '?', q->len) ? '&' : '?');

	for (int k = 0; k < 2 && rc == 0; k++) {
		if (k == 1)
			rc = buf_putc(q, '=');
		for (const unsigned char *p = (const unsigned char *)parts[k]; *p && rc == 0; p++) {
			if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
			    *p == '_' || *p == '~' || *p == '*' || *p == '@')
				rc = buf_putc(q, (char)*p);
			else {
				char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
				rc = buf_append(q, e, 3);
			}
		}
	}
	return rc;
}

/* "15m", "2h", "7d", "4w", "30s" → epoch seconds that long ago; "now" →
 * now. Anything else is passed to the server as written. */
static const char *relative_time(const char *v, char *tmp, size_t tmpsz)
{
	size_t n = strlen(v);
	long long amount = 0, unit;
	time_t now = time(NULL);

	if (strcmp(v, "now") == 0) {
		snprintf(tmp, tmpsz, "%lld", (long long)now);
		return tmp;
	}
	if (n < 2 || n > 8)
		return v;
	switch (v[n - 1]) {
	case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	case 'w': unit = 604800; break;
	default: return v;
	}
	for (size_t i = 0; i + 1 < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return v;
		amount = amount * 10 + (v[i] - '0');
	}
	if (amount * unit > (long long)now)
		amount = (long long)now / unit;
	snprintf(tmp, tmpsz, "%lld", (long long)now - amount * unit);
	return tmp;
}

/* The token from the first place that has one: --token, MAMORI_API_TOKEN,
 * ./var/api-token (first line). Returns a heap copy or NULL. */
static char *find_token(const char *opt)
{
	const char *env = getenv("MAMORI_API_TOKEN");
	char line[CLI_MAX_TOKEN + 2];
	FILE *f;
	size_t n;

	if (opt && opt[0])
		return strdup(opt);
	if (env && env[0])
		return strdup(env);
	f = fopen(CLI_TOKEN_FILE, "re");
	if (f == NULL)
		return NULL;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
		line[--n] = '\0';
	return n ? strdup(line) : NULL;
}

/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]: 1 with *val set,
 * 0 when argv[*i] is another option, -1 when the value is missing. */
static int opt_value(int argc, char **argv, int *i, const char *name,
		     const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*val = argv[++*i];
	return 1;
}

/* "name=value" where name looks like a field: a filter, not search text. */
static int is_filter_arg(const char *a)
{
	const char *eq = strchr(a, '=');

	if (eq == NULL || eq == a || eq - a > 128)
		return 0;
	for (const char *p = a; p < eq; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
		      *p == '-' || *p == '@'))
			return 0;
	return 1;
}

/* "name=value" on the command line → filter=name:value. */
static int add_filter_arg(struct buf *target, const char *a)
{
	const char *eq = strchr(a, '=');
	struct buf f;
	int rc;

	buf_init(&f, 4096);
	rc = buf_append(&f, a, (size_t)(eq - a));
	rc = rc ? rc : buf_putc(&f, ':');
	rc = rc ? rc : buf_puts(&f, eq + 1);
	rc = rc ? rc : buf_cstr(&f);
	rc = rc ? rc : add_param(target, "filter", f.p);
	buf_fini(&f);
	return rc;
}

/* Prints what the server said about a failed request. */
static void report_http_error(int status, const struct buf *body)
{
	json_t *root = json_loadb(body->p ? body->p : "", body->len, 0, NULL);
	const char *error = json_string_value(json_object_get(root, "error"));
	const char *detail = json_string_value(json_object_get(root, "detail"));

	if (status == 401)
		fprintf(stderr, "mamori: the API refused the token (401 unauthorized); "
			"pass --token or set MAMORI_API_TOKEN\n");
	else if (error) {
		fprintf(stderr, "mamori: the API answered %d: ", status);
		put_cell(stderr, error, 200, 0);
		if (detail) {
			fputs(" (", stderr);
			put_cell(stderr, detail, 400, 0);
			fputs(")", stderr);
		}
		fputc('\n', stderr);
	} else {
		fprintf(stderr, "mamori: the API answered %d\n", status);
	}
	json_decref(root);
}

static int terminal_width(void)
{
	struct winsize ws;

	if (!isatty(STDOUT_FILENO))
		return 0;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

static int events_search(int argc, char **argv)
{
	const char *url = CLI_DEFAULT_URL, *token_opt = NULL, *v;
	const char *opts[] = { "--from", "--to", "--limit", "--offset", "--order" };
	const char *names[] = { "from", "to", "limit", "offset", "order" };
	const char *vals[5] = { NULL };
	struct buf target, text, body, err;
	struct cli_url u;
	char *token = NULL, tmp[32];
	int json = 0, opts_done = 0, status = 0, ret = 1, m;

	buf_init(&target, 16 << 10);
	buf_init(&text, 8 << 10);
	buf_init(&body, CLI_MAX_ANSWER);
	buf_init(&err, 4 << 10);
	if (buf_puts(&target, "/api/v1/events") != 0)
		goto out;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (!opts_done && a[0] == '-' && a[1] != '\0') {
			int matched = 0;

			if (strcmp(a, "--") == 0) {
				opts_done = 1;
				continue;
			}
			if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
				fputs(usage_text, stdout);
				ret = 0;
				goto out;
			}
			if (strcmp(a, "--json") == 0) {
				json = 1;
				continue;
			}
			if ((m = opt_value(argc, argv, &i, "--url", &url)) ||
			    (m = opt_value(argc, argv, &i, "--token", &token_opt)))
				matched = m;
			for (size_t k = 0; !matched && k < 5; k++)
				if ((m = opt_value(argc, argv, &i, opts[k], &v)) != 0) {
					matched = m;
					vals[k] = v;
				}
			if (matched == 0) {
				fprintf(stderr, "mamori: unknown option %s\n\n%s", a, usage_text);
				ret = 2;
				goto out;
			}
			if (matched < 0) {
				fprintf(stderr, "mamori: %s needs a value\n", a);
				ret = 2;
				goto out;
			}
			continue;
		}
		if (is_filter_arg(a)) {
			if (add_filter_arg(&target, a) != 0) {
				fprintf(stderr, "mamori: filter too long\n");
				ret = 2;
				goto out;
			}
			continue;
		}
		if ((text.len && buf_putc(&text, ' ') != 0) || buf_puts(&text, a) != 0) {
			fprintf(stderr, "mamori: search text too long\n");
			ret = 2;
			goto out;
		}
	}
	for (size_t k = 0; k < 5; k++) {
		if (vals[k] == NULL)
			continue;
		v = k < 2 ? relative_time(vals[k], tmp, sizeof(tmp)) : vals[k];
		if (add_param(&target, names[k], v) != 0)
			goto out;
	}
	if (text.len && (buf_cstr(&text) != 0 || add_param(&target, "q", text.p) != 0))
		goto out;
	if (buf_cstr(&target) != 0)
		goto out;
	if (cli_url_parse(url, &u, &err) != 0) {
		fprintf(stderr, "mamori: %s\n", err.p ? err.p : "bad --url");
		ret = 2;
		goto out;
	}
	token = find_token(token_opt);
	if (token == NULL)
		fprintf(stderr, "mamori: no token (--token, MAMORI_API_TOKEN or ./%s); "
			"trying without one\n", CLI_TOKEN_FILE);
	m = cli_http_get(&u, target.p, token, CLI_TIMEOUT_MS, &status, &body, &err);
	if (m != 0) {
		fprintf(stderr, "mamori: %s\n", err.p ? err.p : err_str(m));
		goto out;
	}
	if (status != 200) {
		report_http_error(status, &body);
		goto out;
	}
	if (json) {
		fwrite(body.p, 1, body.len, stdout);
		if (body.len && body.p[body.len - 1] != '\n')
			fputc('\n', stdout);
	} else if (cli_print_events(stdout, body.p, body.len, terminal_width()) != 0) {
		fprintf(stderr, "mamori: the API's answer is not a search result\n");
		goto out;
	}
	ret = fflush(stdout) == 0 ? 0 : 1;
out:
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	buf_fini(&target);
	buf_fini(&text);
	buf_fini(&body);
	buf_fini(&err);
	return ret;
}

int cli_events_main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "search") == 0)
		return events_search(argc, argv);
	fprintf(stderr, "mamori: unknown events action \"%s\" (try: mamori events search --help)\n",
		argv[1]);
	return 2;
}
