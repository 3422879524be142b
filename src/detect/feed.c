/*
 * Feed manager and the simple feed kinds (plain lists, CSV), plus what every
 * kind shares: the item list, statistics with reasons, type detection, time
 * parsing, fetching from a file or over http(s) with libcurl, and the
 * configuration table. Why one manager: a feed that fails keeps its last
 * good list, and a rebuild merges every list into a new set built aside and
 * handed over whole, so readers never see a half-loaded or emptied store.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <curl/curl.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "detect/feed.h"

#ifndef MAMORI_VERSION
#define MAMORI_VERSION "0"
#endif

#define FEED_RETRY_MAX_S 300

/* ---- items ----------------------------------------------------------- */

void feed_items_init(struct feed_items *it, size_t max)
{
	memset(it, 0, sizeof(*it));
	it->max = max ? max : FEED_MAX_ITEMS;
	buf_init(&it->pool, (size_t)4 << 30);
}

void feed_items_fini(struct feed_items *it)
{
	free(it->v);
	buf_fini(&it->pool);
	it->v = NULL;
	it->n = it->cap = 0;
}

void feed_items_reset(struct feed_items *it)
{
	it->n = 0;
	buf_reset(&it->pool);
}

/* Appends one item: the value is copied into the pool, the times and
 * confidence come from meta (may be NULL). M_ELIMIT past it->max. */
int feed_items_push(struct feed_items *it, enum intel_type t, const char *v,
		    size_t len, const struct feed_item *meta)
{
	struct feed_item *x;
	size_t off = it->pool.len;
	int r;

	if (it->n >= it->max || len > INTEL_MAX_VALUE)
		return M_ELIMIT;
	if (it->n == it->cap) {
		size_t ncap = it->cap ? it->cap * 2 : 256;
		struct feed_item *nv;

		if (ncap > it->max)
			ncap = it->max;
		nv = realloc(it->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return M_ENOMEM;
		it->v = nv;
		it->cap = ncap;
	}
	if (off > UINT32_MAX - INTEL_MAX_VALUE)
		return M_ELIMIT;
	if ((r = buf_append(&it->pool, v, len)) < 0)
		return r;
	x = &it->v[it->n++];
	if (meta != NULL)
		*x = *meta;
	else
		memset(x, 0, sizeof(*x));
	x->type = (uint8_t)t;
	x->off = (uint32_t)off;
	x->len = (uint32_t)len;
	return 0;
}

/* ---- stats ----------------------------------------------------------- */

static const char *const feed_reason_names[FEED_R_MAX] = {
	[FEED_R_BAD_VALUE] = "bad_value",
	[FEED_R_NO_TYPE] = "no_type",
	[FEED_R_BAD_ROW] = "bad_row",
	[FEED_R_BAD_FIELD] = "bad_field",
	[FEED_R_PATTERN_TYPE] = "pattern_type",
	[FEED_R_PATTERN_SYNTAX] = "pattern_syntax",
	[FEED_R_PATTERN_OPERATOR] = "pattern_operator",
	[FEED_R_PATTERN_PATH] = "pattern_path",
	[FEED_R_PATTERN_FORM] = "pattern_form",
	[FEED_R_BAD_OBJECT] = "bad_object",
	[FEED_R_LIMIT] = "limit",
	[FEED_R_REVOKED] = "revoked",
	[FEED_R_SUPERSEDED] = "superseded",
	[FEED_R_EXPIRED] = "expired",
	[FEED_R_NOT_IDS] = "not_ids",
	[FEED_R_MISP_TYPE] = "misp_type",
};

const char *feed_reason_str(enum feed_reason r)
{
	if ((int)r < 0 || r >= FEED_R_MAX)
		return "?";
	return feed_reason_names[r];
}

/* Counts r; rejections (not skips) also keep an example, escaped because
 * it came from the feed. */
void feed_stats_note(struct feed_stats *st, enum feed_reason r,
		     const char *what, size_t what_len, const char *why)
{
	char esc[96];

	if (st == NULL || (int)r < 0 || r >= FEED_R_MAX)
		return;
	st->reasons[r]++;
	if (r >= FEED_R_SKIP_FIRST) {
		st->skipped++;
		return;
	}
	st->rejected++;
	if (st->nsamples >= FEED_SAMPLES)
		return;
	log_escape(what ? what : "", what ? what_len : 0, esc, sizeof(esc));
	snprintf(st->samples[st->nsamples++], sizeof(st->samples[0]),
		 "%s: '%s': %s", feed_reason_str(r), esc, why ? why : "");
}

/* ---- types and times ------------------------------------------------- */

static int feed_is_hex(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)v[i]))
			return 0;
	return 1;
}

/* Why by shape and not by trying the store: detection must be cheap and
 * predictable; the store still validates what we guessed. */
enum intel_type feed_detect_type(const char *v, size_t len)
{
	size_t i, dots = 0, colons = 0, at = 0, slash = 0, other = 0;

	if (len == 0 || len > INTEL_MAX_VALUE)
		return 0;
	for (i = 0; i + 2 < len && i < 16; i++)
		if (v[i] == ':' && v[i + 1] == '/' && v[i + 2] == '/')
			return INTEL_URL;
	if ((len == 32 || len == 40 || len == 64) && feed_is_hex(v, len))
		return INTEL_HASH;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '.')
			dots++;
		else if (c == ':')
			colons++;
		else if (c == '@')
			at++;
		else if (c == '/')
			slash++;
		else if (!isxdigit(c))
			other++;
	}
	if (at == 1 && slash == 0)
		return INTEL_EMAIL;
	if (at == 0 && other == 0 && slash <= 1) {
		char tmp[64];
		size_t alen = len;
		unsigned char a[16];

		for (i = 0; i < len; i++)
			if (v[i] == '/')
				alen = i;
		if (alen < sizeof(tmp)) {
			memcpy(tmp, v, alen);
			tmp[alen] = '\0';
			if ((colons >= 2 && inet_pton(AF_INET6, tmp, a) == 1) ||
			    (dots == 3 && colons == 0 &&
			     inet_pton(AF_INET, tmp, a) == 1))
				return INTEL_IP;
		}
	}
	/* All digits and dots but not an address: not a host name either. */
	if (at == 0 && colons == 0 && slash == 0) {
		for (i = 0; i < len && ((v[i] >= '0' && v[i] <= '9') || v[i] == '.'); i++)
			;
		if (i == len)
			return 0;
	}
	if (at == 0 && slash > 0 && dots > 0)
		return INTEL_URL;
	if (at == 0 && dots > 0 && colons == 0 && slash == 0)
		return INTEL_DOMAIN;
	return 0;
}

static const struct {
	const char *name;
	enum intel_type t;
} feed_type_names[] = {
	{"ip", INTEL_IP}, {"ipv4", INTEL_IP}, {"ipv6", INTEL_IP},
	{"cidr", INTEL_IP}, {"ip-src", INTEL_IP}, {"ip-dst", INTEL_IP},
	{"ipv4-addr", INTEL_IP}, {"ipv6-addr", INTEL_IP}, {"address", INTEL_IP},
	{"domain", INTEL_DOMAIN}, {"hostname", INTEL_DOMAIN},
	{"fqdn", INTEL_DOMAIN}, {"domain-name", INTEL_DOMAIN},
	{"url", INTEL_URL}, {"uri", INTEL_URL},
	{"hash", INTEL_HASH}, {"md5", INTEL_HASH}, {"sha1", INTEL_HASH},
	{"sha-1", INTEL_HASH}, {"sha256", INTEL_HASH}, {"sha-256", INTEL_HASH},
	{"email", INTEL_EMAIL}, {"e-mail", INTEL_EMAIL},
	{"email-addr", INTEL_EMAIL}, {"email-src", INTEL_EMAIL},
	{"email-dst", INTEL_EMAIL},
};

enum intel_type feed_type_name(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof(feed_type_names) / sizeof(feed_type_names[0]); i++)
		if (strlen(feed_type_names[i].name) == len &&
		    strncasecmp(feed_type_names[i].name, s, len) == 0)
			return feed_type_names[i].t;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), so no timegm() and no TZ. */
static int64_t feed_days(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Reads exactly n digits at s[*i]; -1 when they are not there. */
static int64_t feed_digits(const char *s, size_t len, size_t *i, int n)
{
	int64_t v = 0;

	for (int k = 0; k < n; k++, (*i)++) {
		if (*i >= len || s[*i] < '0' || s[*i] > '9')
			return -1;
		v = v * 10 + (s[*i] - '0');
	}
	return v;
}

int feed_parse_time(const char *s, size_t len, int64_t *out_us)
{
	int64_t y, mo, d, h = 0, mi = 0, sec = 0, us = 0, off = 0;
	size_t i = 0;

	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	s += i;
	len -= i;
	i = 0;
	if (len == 0 || len > 40)
		return M_EPARSE;
	/* Epoch seconds. */
	if (len <= 12) {
		int64_t v = 0;

		for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			v = v * 10 + (s[i] - '0');
		if (i == len) {
			*out_us = v * 1000000;
			return 0;
		}
		i = 0;
	}
	y = feed_digits(s, len, &i, 4);
	if (y < 0 || i >= len || s[i++] != '-')
		return M_EPARSE;
	mo = feed_digits(s, len, &i, 2);
	if (mo < 1 || mo > 12 || i >= len || s[i++] != '-')
		return M_EPARSE;
	d = feed_digits(s, len, &i, 2);
	if (d < 1 || d > 31)
		return M_EPARSE;
	if (i < len && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
		i++;
		h = feed_digits(s, len, &i, 2);
		if (h < 0 || h > 23 || i >= len || s[i++] != ':')
			return M_EPARSE;
		mi = feed_digits(s, len, &i, 2);
		if (mi < 0 || mi > 59)
			return M_EPARSE;
		if (i < len && s[i] == ':') {
			i++;
			sec = feed_digits(s, len, &i, 2);
			if (sec < 0 || sec > 60)
				return M_EPARSE;
			if (i < len && s[i] == '.') {
				int64_t scale = 100000;
				size_t nd = 0;

				for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nd++) {
					us += (s[i] - '0') * scale;
					scale /= 10;
				}
				if (nd == 0)
					return M_EPARSE;
			}
		}
		if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
			i++;
		} else if (i < len && (s[i] == '+' || s[i] == '-')) {
			int sign = s[i] == '-' ? -1 : 1;
			int64_t oh, om;

			i++;
			oh = feed_digits(s, len, &i, 2);
			if (i < len && s[i] == ':')
				i++;
			om = feed_digits(s, len, &i, 2);
			if (oh < 0 || oh > 23 || om < 0 || om > 59)
				return M_EPARSE;
			off = sign * (oh * 3600 + om * 60);
		}
	}
	if (i != len)
		return M_EPARSE;
	*out_us = ((feed_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) - off) *
		  1000000 + us;
	return 0;
}

/* ---- plain lists ----------------------------------------------------- */

/* Adds one value with the defaults' type, or a detected one. */
static int feed_add_value(const char *v, size_t n, enum intel_type t,
			  const struct feed_item *meta, struct feed_items *out,
			  struct feed_stats *st)
{
	int r;

	if (t == 0)
		t = feed_detect_type(v, n);
	if (t == 0) {
		feed_stats_note(st, FEED_R_NO_TYPE, v, n, "type not recognised");
		return 0;
	}
	if (n > INTEL_MAX_VALUE) {
		feed_stats_note(st, FEED_R_BAD_VALUE, v, n, "value too long");
		return 0;
	}
	r = feed_items_push(out, t, v, n, meta);
	if (r == M_ELIMIT) {
		feed_stats_note(st, FEED_R_LIMIT, v, n, "too many indicators");
		return 0;
	}
	return r;
}

/* One indicator a line: the first whitespace-separated token; lines that
 * start with '#' or ';' and empty lines are ignored. */
int feed_parse_plain(const char *p, size_t len, const struct feed_defaults *d,
		     struct feed_items *out, struct feed_stats *st)
{
	struct feed_item meta = {.confidence = d->confidence,
				 .valid_until = d->valid_until};
	size_t pos = 0;
	int r;

	while (pos < len) {
		size_t eol = pos, s, e;

		while (eol < len && p[eol] != '\n')
			eol++;
		s = pos;
		pos = eol + 1;
		while (s < eol && (p[s] == ' ' || p[s] == '\t' || p[s] == '\r'))
			s++;
		if (s == eol || p[s] == '#' || p[s] == ';')
			continue;
		e = s;
		while (e < eol && p[e] != ' ' && p[e] != '\t' && p[e] != '\r')
			e++;
		if ((r = feed_add_value(p + s, e - s, d->type, &meta, out, st)) < 0)
			return r;
	}
	return 0;
}

/* ---- CSV ------------------------------------------------------------- */

struct csv_field {
	size_t off, len;
};

/* Parses one RFC 4180 record at *pos into fields (copied, unquoted, into
 * scratch). Returns the number of fields (at most FEED_MAX_CSV_COLUMNS are
 * kept), and sets *bad for bad quoting or an unterminated quote. */
static size_t csv_record(const char *p, size_t len, size_t *pos, char delim,
			 struct buf *scratch, struct csv_field *f, int *bad)
{
	size_t nf = 0, i = *pos;

	buf_reset(scratch);
	*bad = 0;
	for (;;) {
		size_t start = scratch->len;

		if (i < len && p[i] == '"') {
			int closed = 0;

			i++;
			while (i < len) {
				if (p[i] == '"') {
					if (i + 1 < len && p[i + 1] == '"') {
						if (buf_putc(scratch, '"') < 0)
							*bad = 1;
						i += 2;
						continue;
					}
					i++;
					closed = 1;
					break;
				}
				if (buf_putc(scratch, p[i]) < 0)
					*bad = 1;
				i++;
			}
			if (!closed)
				*bad = 1;
			if (i < len && p[i] != delim && p[i] != '\n' && p[i] != '\r') {
				*bad = 1;
				while (i < len && p[i] != delim && p[i] != '\n')
					i++;
			}
		} else {
			while (i < len && p[i] != delim && p[i] != '\n' &&
			       !(p[i] == '\r' && (i + 1 == len || p[i + 1] == '\n'))) {
				if (buf_putc(scratch, p[i]) < 0)
					*bad = 1;
				i++;
			}
		}
		if (nf < FEED_MAX_CSV_COLUMNS) {
			f[nf].off = start;
			f[nf].len = scratch->len - start;
		}
		nf++;
		if (i < len && p[i] == delim) {
			i++;
			continue;
		}
		if (i < len && p[i] == '\r')
			i++;
		if (i < len && p[i] == '\n')
			i++;
		break;
	}
	*pos = i;
	return nf < FEED_MAX_CSV_COLUMNS ? nf : FEED_MAX_CSV_COLUMNS;
}

static void csv_trim(const char **v, size_t *n)
{
	while (*n > 0 && ((*v)[0] == ' ' || (*v)[0] == '\t')) {
		(*v)++;
		(*n)--;
	}
	while (*n > 0 && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
		(*n)--;
}

/* Column col (1-based) of the record, trimmed; 0 when absent. */
static int csv_col(const struct buf *scratch, const struct csv_field *f,
		   size_t nf, int64_t col, const char **v, size_t *n)
{
	if (col <= 0 || (size_t)col > nf)
		return 0;
	*v = scratch->p ? scratch->p + f[col - 1].off : "";
	*n = f[col - 1].len;
	csv_trim(v, n);
	return 1;
}

/* A time column: empty leaves *out alone; -1 for a bad value. */
static int csv_time(const struct buf *scratch, const struct csv_field *f,
		    size_t nf, int64_t col, int64_t *out)
{
	const char *v;
	size_t n;

	if (!csv_col(scratch, f, nf, col, &v, &n) || n == 0)
		return 0;
	return feed_parse_time(v, n, out) == 0 ? 0 : -1;
}

/* One data row into an item, following the column mapping. */
static int csv_row(const struct buf *sc, const struct csv_field *f, size_t nf,
		   const struct feed_conf *fc, const struct feed_defaults *d,
		   struct feed_items *out, struct feed_stats *st)
{
	struct feed_item meta = {.confidence = d->confidence,
				 .valid_until = d->valid_until};
	int64_t vcol = fc->csv_value_col > 0 ? fc->csv_value_col : 1;
	enum intel_type t = d->type;
	const char *v, *x;
	size_t n, xn;

	if (!csv_col(sc, f, nf, vcol, &v, &n) || n == 0) {
		feed_stats_note(st, FEED_R_BAD_ROW, NULL, 0, "no value column");
		return 0;
	}
	if (csv_col(sc, f, nf, fc->csv_type_col, &x, &xn) && xn > 0) {
		t = feed_type_name(x, xn);
		if (t == 0) {
			feed_stats_note(st, FEED_R_NO_TYPE, x, xn, "unknown type name");
			return 0;
		}
	}
	if (csv_col(sc, f, nf, fc->csv_confidence_col, &x, &xn) && xn > 0) {
		int64_t c = 0;
		size_t i;

		for (i = 0; i < xn && i < 4 && x[i] >= '0' && x[i] <= '9'; i++)
			c = c * 10 + (x[i] - '0');
		if (i == 0 || c > 100 || (i < xn && x[i] != '.')) {
			feed_stats_note(st, FEED_R_BAD_FIELD, x, xn, "confidence not 0-100");
			return 0;
		}
		meta.confidence = (uint8_t)c;
	}
	if (csv_time(sc, f, nf, fc->csv_first_seen_col, &meta.first_seen) < 0 ||
	    csv_time(sc, f, nf, fc->csv_last_seen_col, &meta.last_seen) < 0 ||
	    csv_time(sc, f, nf, fc->csv_valid_until_col, &meta.valid_until) < 0) {
		feed_stats_note(st, FEED_R_BAD_FIELD, v, n, "unparsable time");
		return 0;
	}
	if (meta.valid_until > 0 && d->now_us > 0 && meta.valid_until <= d->now_us) {
		feed_stats_note(st, FEED_R_EXPIRED, v, n, "valid_until passed");
		return 0;
	}
	return feed_add_value(v, n, t, &meta, out, st);
}

int feed_parse_csv(const char *p, size_t len, const struct feed_conf *fc,
		   const struct feed_defaults *d, struct feed_items *out,
		   struct feed_stats *st)
{
	struct csv_field *f;
	struct buf scratch;
	char delim = ',';
	size_t pos = 0, row = 0;
	int r = 0;

	if (fc->csv_delimiter && fc->csv_delimiter[0]) {
		delim = fc->csv_delimiter[0];
		if (strcmp(fc->csv_delimiter, "\\t") == 0 ||
		    strcmp(fc->csv_delimiter, "tab") == 0)
			delim = '\t';
	}
	f = calloc(FEED_MAX_CSV_COLUMNS, sizeof(*f));
	if (f == NULL)
		return M_ENOMEM;
	buf_init(&scratch, (size_t)INTEL_MAX_VALUE * 8);
	while (pos < len && r == 0) {
		size_t nf, start = pos;
		int bad;

		/* Comment and empty lines, outside quotes only. */
		if (p[pos] == '#' || p[pos] == '\n' || p[pos] == '\r') {
			while (pos < len && p[pos] != '\n')
				pos++;
			pos++;
			continue;
		}
		nf = csv_record(p, len, &pos, delim, &scratch, f, &bad);
		if (pos <= start)
			break;
		if (row++ == 0 && fc->csv_header)
			continue;
		if (bad) {
			feed_stats_note(st, FEED_R_BAD_ROW, p + start,
					pos - start > 80 ? 80 : pos - start,
					"bad quoting or field too long");
			continue;
		}
		r = csv_row(&scratch, f, nf, fc, d, out, st);
	}
	buf_fini(&scratch);
	free(f);
	return r;
}

/* ---- fetching -------------------------------------------------------- */

/* One message, prefixed with the feed's name, appended to err. */
void feed_errf(struct buf *err, const struct feed_conf *fc,
		      const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_printf(err, "feed %s: %s", fc && fc->name ? fc->name : "?", msg);
}

static int feed_is_http(const char *s)
{
	return strncasecmp(s, "http://", 7) == 0 ||
	       strncasecmp(s, "https://", 8) == 0;
}

static size_t feed_max_bytes(const struct feed_conf *fc)
{
	return fc->max_bytes > 0 ? (size_t)fc->max_bytes : (size_t)FEED_DEF_MAX_BYTES;
}

static int feed_read_file(const struct feed_conf *fc, const char *path,
			  struct buf *body, struct feed_stats *st,
			  struct buf *err)
{
	size_t max = feed_max_bytes(fc);
	struct stat sb;
	int fd, ret = M_EIO;

	if (strncmp(path, "file://", 7) == 0)
		path += 7;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		feed_errf(err, fc, "cannot open %s: %s", path, strerror(errno));
		return M_EIO;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		feed_errf(err, fc, "%s is not a regular file", path);
		goto out;
	}
	if ((uint64_t)sb.st_size > max) {
		feed_errf(err, fc, "%s is larger than max_bytes (%zu)", path, max);
		ret = M_ELIMIT;
		goto out;
	}
	if ((ret = buf_reserve(body, (size_t)sb.st_size + 1)) < 0) {
		feed_errf(err, fc, "out of memory reading %s", path);
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (body->len >= max + 1 || body->cap - body->len == 0) {
			if (body->len > max) {
				feed_errf(err, fc, "%s grew past max_bytes", path);
				ret = M_ELIMIT;
				goto out;
			}
			if ((ret = buf_reserve(body, 65536)) < 0)
				goto out;
		}
		n = read(fd, body->p + body->len, body->cap - body->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			feed_errf(err, fc, "read %s: %s", path, strerror(errno));
			ret = M_EIO;
			goto out;
		}
		if (n == 0)
			break;
		body->len += (size_t)n;
	}
	if (body->len > max) {
		feed_errf(err, fc, "%s grew past max_bytes", path);
		ret = M_ELIMIT;
		goto out;
	}
	if (st) {
		st->requests++;
		st->bytes += body->len;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

struct feed_http {
	struct buf *body;
	size_t max;
	int over, oom;
	const char *hdr_name;
	struct buf *hdr_val;
};

static size_t feed_http_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct feed_http *h = ud;
	size_t n = size * nmemb;

	if (h->body->len + n > h->max) {
		h->over = 1;
		return 0;
	}
	if (buf_append(h->body, ptr, n) < 0) {
		h->oom = 1;
		return 0;
	}
	return n;
}

/* Keeps the value of one response header (the last one seen). */
static size_t feed_http_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct feed_http *h = ud;
	size_t n = size * nmemb, k;

	if (h->hdr_name == NULL || h->hdr_val == NULL)
		return n;
	k = strlen(h->hdr_name);
	if (n > k + 1 && ptr[k] == ':' && strncasecmp(ptr, h->hdr_name, k) == 0) {
		const char *v = ptr + k + 1;
		size_t vn = n - k - 1;

		while (vn > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vn--;
		}
		while (vn > 0 && (v[vn - 1] == '\r' || v[vn - 1] == '\n' ||
				  v[vn - 1] == ' '))
			vn--;
		buf_reset(h->hdr_val);
		if (buf_append(h->hdr_val, v, vn) < 0)
			buf_reset(h->hdr_val);
	}
	return n;
}

/* The URL as error messages show it: without "user:password@" and without
 * the query, where some feeds put their API key. */
static const char *feed_url_show(const char *url, char *out, size_t cap)
{
	const char *host = strstr(url, "://"), *at, *end;
	size_t o = 0;

	host = host ? host + 3 : url;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	for (const char *p = url; *p && *p != '?' && *p != '#' && o + 1 < cap; p++) {
		if (at && p == host) {
			memcpy(out + o, "***@", 4 < cap - o - 1 ? 4 : cap - o - 1);
			o += 4 < cap - o - 1 ? 4 : cap - o - 1;
			p = at;
			continue;
		}
		out[o++] = *p;
	}
	out[o] = '\0';
	return out;
}

static int feed_http_get(const struct feed_conf *fc, const char *url,
			 const char *const *headers, struct buf *body,
			 const char *hdr_name, struct buf *hdr_val,
			 struct feed_stats *st, struct buf *err)
{
	struct feed_http h = {.body = body, .max = feed_max_bytes(fc),
			      .hdr_name = hdr_name, .hdr_val = hdr_val};
	char ebuf[CURL_ERROR_SIZE] = "", shown[512];
	struct curl_slist *hl = NULL, *nl;
	char auth[1024];
	long code = 0, tmo = fc->timeout_s > 0 ? (long)fc->timeout_s : 60;
	CURLcode cr;
	CURL *c;
	int ret = M_EIO;

	if (hdr_val)
		buf_reset(hdr_val);
	c = curl_easy_init();
	if (c == NULL) {
		feed_errf(err, fc, "cannot start an HTTP request");
		return M_ENOMEM;
	}
	for (size_t i = 0; headers && headers[i] && i < 16; i++) {
		nl = curl_slist_append(hl, headers[i]);
		if (nl == NULL)
			goto nomem;
		hl = nl;
	}
	if (fc->bearer && fc->bearer[0]) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", fc->bearer);
		nl = curl_slist_append(hl, auth);
		explicit_bzero(auth, sizeof(auth));
		if (nl == NULL)
			goto nomem;
		hl = nl;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, tmo);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, tmo < 30 ? tmo : 30L);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h.max);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "mamori/" MAMORI_VERSION);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, feed_http_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, feed_http_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	if (hl)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	if (fc->username && fc->username[0]) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, fc->username);
		curl_easy_setopt(c, CURLOPT_PASSWORD,
				 fc->password ? fc->password : "");
	}
	if (fc->ca_file && fc->ca_file[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, fc->ca_file);
	cr = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (st)
		st->requests++;
	feed_url_show(url, shown, sizeof(shown));
	url = shown;
	if (h.over || cr == CURLE_FILESIZE_EXCEEDED) {
		feed_errf(err, fc, "%s: response larger than max_bytes (%zu)",
			  url, h.max);
		ret = M_ELIMIT;
	} else if (h.oom) {
		feed_errf(err, fc, "%s: out of memory", url);
		ret = M_ENOMEM;
	} else if (cr != CURLE_OK) {
		feed_errf(err, fc, "%s: %s", url,
			  ebuf[0] ? ebuf : curl_easy_strerror(cr));
		ret = M_EIO;
	} else if (code < 200 || code > 299) {
		feed_errf(err, fc, "%s: HTTP status %ld", url, code);
		ret = (code == 401 || code == 403) ? M_EAUTH : M_EIO;
	} else {
		if (st)
			st->bytes += body->len;
		ret = 0;
	}
	goto out;
nomem:
	feed_errf(err, fc, "out of memory");
	ret = M_ENOMEM;
out:
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return ret;
}

int feed_fetch(const struct feed_conf *fc, const char *src,
	       const char *const *headers, struct buf *body,
	       const char *hdr_name, struct buf *hdr_val,
	       struct feed_stats *st, struct buf *err)
{
	buf_reset(body);
	if (src == NULL || src[0] == '\0') {
		feed_errf(err, fc, "no url_or_path");
		return M_EINVAL;
	}
	if (feed_is_http(src))
		return feed_http_get(fc, src, headers, body, hdr_name, hdr_val,
				     st, err);
	if (strstr(src, "://") != NULL && strncmp(src, "file://", 7) != 0) {
		feed_errf(err, fc, "unsupported URL scheme in %s", src);
		return M_EINVAL;
	}
	return feed_read_file(fc, src, body, st, err);
}

/* ---- loading one feed ------------------------------------------------ */

static int feed_kind_ok(const char *k)
{
	static const char *const kinds[] = {"plain", "csv", "stix", "taxii",
					    "misp"};

	for (size_t i = 0; k && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(k, kinds[i]) == 0)
			return 1;
	return 0;
}

/* Fetches and parses into items (not yet validated by the store). */
static int feed_parse_any(const struct feed_conf *fc, int64_t now_us,
			  struct feed_items *items, struct feed_stats *st,
			  struct buf *err)
{
	struct feed_defaults d = {.now_us = now_us};
	struct buf body, perr;
	int r;

	d.confidence = (uint8_t)(fc->confidence >= 0 && fc->confidence <= 100 ?
				 fc->confidence : 50);
	if (fc->valid_for_s > 0)
		d.valid_until = now_us + fc->valid_for_s * 1000000;
	if (fc->type && fc->type[0] && strcmp(fc->type, "auto") != 0) {
		d.type = feed_type_name(fc->type, strlen(fc->type));
		if (d.type == 0) {
			feed_errf(err, fc, "unknown type '%s'", fc->type);
			return M_EINVAL;
		}
	}
	if (!feed_kind_ok(fc->kind)) {
		feed_errf(err, fc, "unknown kind '%s' (plain, csv, stix, taxii, misp)",
			  fc->kind ? fc->kind : "");
		return M_EINVAL;
	}
	if (strcmp(fc->kind, "taxii") == 0)
		return feed_load_taxii(fc, &d, items, st, err);
	if (strcmp(fc->kind, "misp") == 0)
		return feed_load_misp(fc, &d, items, st, err);
	buf_init(&body, feed_max_bytes(fc) + 1);
	buf_init(&perr, 1024);
	r = feed_fetch(fc, fc->url_or_path, NULL, &body, NULL, NULL, st, err);
	if (r < 0)
		goto out;
	if (strcmp(fc->kind, "plain") == 0)
		r = feed_parse_plain(body.p ? body.p : "", body.len, &d, items, st);
	else if (strcmp(fc->kind, "csv") == 0)
		r = feed_parse_csv(body.p ? body.p : "", body.len, fc, &d, items, st);
	else
		r = feed_parse_stix(body.p ? body.p : "", body.len, &d, items, st, &perr);
	if (r < 0)
		feed_errf(err, fc, "%.*s", (int)perr.len,
			  perr.len ? perr.p : err_str(r));
out:
	buf_fini(&perr);
	buf_fini(&body);
	return r;
}

static void feed_item_meta(const struct feed_item *x, const char *source,
			   struct intel_meta *m)
{
	m->source = source;
	m->first_seen = x->first_seen;
	m->last_seen = x->last_seen;
	m->valid_until = x->valid_until;
	m->confidence = x->confidence;
}

/* Adds the items to b. keep (may be NULL) gets the accepted items, so a
 * manager can re-add them later; rejected values are counted in st. */
static int feed_items_add(const struct feed_conf *fc,
			  const struct feed_items *items,
			  struct intel_builder *b, struct feed_items *keep,
			  int64_t now_us, struct feed_stats *st)
{
	for (size_t i = 0; i < items->n; i++) {
		const struct feed_item *x = &items->v[i];
		const char *v = items->pool.p + x->off;
		struct intel_meta m;
		int r;

		/* Straight into a caller's builder, an indicator that is not
		 * valid yet would be live at once: leave it out. */
		if (keep == NULL && x->valid_from > now_us) {
			st->pending++;
			continue;
		}
		feed_item_meta(x, fc->name, &m);
		r = intel_builder_add(b, (enum intel_type)x->type, v, x->len, &m);
		if (r == M_EINVAL) {
			feed_stats_note(st, FEED_R_BAD_VALUE, v, x->len,
					"the store refused the value");
			continue;
		}
		if (r == M_ELIMIT) {
			feed_stats_note(st, FEED_R_LIMIT, v, x->len,
					"store limit reached");
			continue;
		}
		if (r < 0)
			return r;
		st->loaded++;
		if (x->valid_from > now_us)
			st->pending++;
		if (keep && (r = feed_items_push(keep, (enum intel_type)x->type,
						 v, x->len, x)) < 0)
			return r;
	}
	return 0;
}

int feed_load_one(const struct feed_conf *fc, struct intel_builder *b,
		  struct feed_stats *st, struct buf *err)
{
	struct feed_stats local;
	struct feed_items items;
	int64_t now = clock_now_us();
	int r;

	if (st == NULL)
		st = &local;
	memset(st, 0, sizeof(*st));
	st->last_attempt_us = now;
	feed_items_init(&items, 0);
	r = feed_parse_any(fc, now, &items, st, err);
	if (r == 0)
		r = feed_items_add(fc, &items, b, NULL, now, st);
	feed_items_fini(&items);
	st->last_err = r;
	if (r == 0)
		st->last_success_us = now;
	else if (err && err->len)
		log_escape(err->p, err->len, st->last_error, sizeof(st->last_error));
	return r;
}

/* ---- manager --------------------------------------------------------- */

struct feed_state {
	struct feed_conf conf;
	struct feed_items good;     /* last good list, validated */
	struct feed_stats stats;    /* of the last attempt (counts of the last
				     * success are kept on failure) */
	int has_good;
	int64_t next_due_us;        /* 0 = at the next refresh */
};

struct feed_manager {
	struct feed_state *f;
	size_t n;
	int built;                  /* a set was handed out */
	int64_t pending_from_us;    /* earliest valid_from still ahead, 0 none */
};

static char *feed_strdup(const char *s)
{
	return strdup(s ? s : "");
}

void feed_conf_fini(struct feed_conf *fc)
{
	if (fc == NULL)
		return;
	free(fc->name);
	free(fc->kind);
	free(fc->url_or_path);
	free(fc->type);
	free(fc->csv_delimiter);
	free(fc->collection);
	free(fc->added_after);
	free(fc->username);
	if (fc->password)
		explicit_bzero(fc->password, strlen(fc->password));
	free(fc->password);
	if (fc->bearer)
		explicit_bzero(fc->bearer, strlen(fc->bearer));
	free(fc->bearer);
	free(fc->ca_file);
	memset(fc, 0, sizeof(*fc));
}

void feed_conf_free_all(struct feed_conf *fc, size_t n)
{
	for (size_t i = 0; fc && i < n; i++)
		feed_conf_fini(&fc[i]);
	free(fc);
}

static int feed_conf_copy(struct feed_conf *dst, const struct feed_conf *src)
{
	*dst = *src;
	dst->name = feed_strdup(src->name);
	dst->kind = feed_strdup(src->kind);
	dst->url_or_path = feed_strdup(src->url_or_path);
	dst->type = feed_strdup(src->type);
	dst->csv_delimiter = feed_strdup(src->csv_delimiter);
	dst->collection = feed_strdup(src->collection);
	dst->added_after = feed_strdup(src->added_after);
	dst->username = feed_strdup(src->username);
	dst->password = feed_strdup(src->password);
	dst->bearer = feed_strdup(src->bearer);
	dst->ca_file = feed_strdup(src->ca_file);
	if (!dst->name || !dst->kind || !dst->url_or_path || !dst->type ||
	    !dst->csv_delimiter || !dst->collection || !dst->added_after ||
	    !dst->username || !dst->password || !dst->bearer || !dst->ca_file)
		return M_ENOMEM;
	return 0;
}

/* Checks what can be checked without fetching. */
static int feed_conf_check(const struct feed_conf *fc, struct buf *err)
{
	if (fc->name == NULL || fc->name[0] == '\0' || strlen(fc->name) > 255) {
		buf_printf(err, "feed: a name of 1-255 bytes is required");
		return M_EINVAL;
	}
	if (!feed_kind_ok(fc->kind)) {
		feed_errf(err, fc, "unknown kind '%s' (plain, csv, stix, taxii, misp)",
			  fc->kind ? fc->kind : "");
		return M_EINVAL;
	}
	if (fc->url_or_path == NULL || fc->url_or_path[0] == '\0') {
		feed_errf(err, fc, "url_or_path is required");
		return M_EINVAL;
	}
	if (strcmp(fc->kind, "taxii") == 0 &&
	    (fc->collection == NULL || fc->collection[0] == '\0')) {
		feed_errf(err, fc, "a TAXII feed needs a collection");
		return M_EINVAL;
	}
	if (fc->type && fc->type[0] && strcmp(fc->type, "auto") != 0 &&
	    feed_type_name(fc->type, strlen(fc->type)) == 0) {
		feed_errf(err, fc, "unknown type '%s'", fc->type);
		return M_EINVAL;
	}
	if (fc->csv_value_col < 0 || fc->csv_value_col > FEED_MAX_CSV_COLUMNS ||
	    fc->csv_type_col < 0 || fc->csv_type_col > FEED_MAX_CSV_COLUMNS ||
	    fc->csv_confidence_col < 0 || fc->csv_confidence_col > FEED_MAX_CSV_COLUMNS ||
	    fc->csv_first_seen_col < 0 || fc->csv_first_seen_col > FEED_MAX_CSV_COLUMNS ||
	    fc->csv_last_seen_col < 0 || fc->csv_last_seen_col > FEED_MAX_CSV_COLUMNS ||
	    fc->csv_valid_until_col < 0 || fc->csv_valid_until_col > FEED_MAX_CSV_COLUMNS) {
		feed_errf(err, fc, "CSV columns count from 1 to %d",
			  FEED_MAX_CSV_COLUMNS);
		return M_EINVAL;
	}
	if (fc->refresh_s < 0 || fc->confidence < 0 || fc->confidence > 100) {
		feed_errf(err, fc, "refresh_s must be >= 0 and confidence 0-100");
		return M_EINVAL;
	}
	return 0;
}

struct feed_manager *feed_manager_new(const struct feed_conf *fc, size_t n,
				      struct buf *err)
{
	struct feed_manager *m;

	if (n > FEED_MAX_FEEDS) {
		buf_printf(err, "feed: at most %u feeds", FEED_MAX_FEEDS);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (feed_conf_check(&fc[i], err) < 0)
			return NULL;
		for (size_t j = 0; j < i; j++)
			if (strcmp(fc[i].name, fc[j].name) == 0) {
				feed_errf(err, &fc[i], "name used twice");
				return NULL;
			}
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL || (n > 0 && (m->f = calloc(n, sizeof(*m->f))) == NULL))
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		m->n = i + 1;
		feed_items_init(&m->f[i].good, 0);
		if (feed_conf_copy(&m->f[i].conf, &fc[i]) < 0)
			goto nomem;
	}
	return m;
nomem:
	buf_printf(err, "feed: out of memory");
	feed_manager_free(m);
	return NULL;
}

void feed_manager_free(struct feed_manager *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++) {
		feed_conf_fini(&m->f[i].conf);
		feed_items_fini(&m->f[i].good);
	}
	free(m->f);
	free(m);
}

static void feed_report_line(struct buf *report, const struct feed_state *fs)
{
	const struct feed_stats *st = &fs->stats;

	if (report == NULL)
		return;
	if (st->last_err != 0) {
		buf_printf(report, "feed=%s status=error error=\"%s\" kept=%zu\n",
			   fs->conf.name, st->last_error, fs->good.n);
		return;
	}
	buf_printf(report, "feed=%s status=ok loaded=%zu rejected=%zu skipped=%zu",
		   fs->conf.name, st->loaded, st->rejected, st->skipped);
	for (int r = 0; r < FEED_R_MAX; r++)
		if (st->reasons[r])
			buf_printf(report, " %s=%zu", feed_reason_str((enum feed_reason)r),
				   st->reasons[r]);
	buf_putc(report, '\n');
}

/* Loads one feed into a fresh list validated by a scratch builder; on
 * success the list replaces the good one, on failure the old one stays. */
static int feed_state_load(struct feed_state *fs, int64_t now_us)
{
	struct feed_stats st;
	struct feed_items raw, keep;
	struct intel_builder *b = NULL;
	struct buf err;
	int r;

	memset(&st, 0, sizeof(st));
	st.last_attempt_us = now_us;
	st.last_success_us = fs->stats.last_success_us;
	buf_init(&err, 4096);
	feed_items_init(&raw, 0);
	feed_items_init(&keep, 0);
	r = feed_parse_any(&fs->conf, now_us, &raw, &st, &err);
	if (r == 0) {
		b = intel_builder_new();
		if (b == NULL)
			r = M_ENOMEM;
		else
			r = feed_items_add(&fs->conf, &raw, b, &keep, now_us, &st);
		if (r < 0 && err.len == 0)
			feed_errf(&err, &fs->conf, "%s", err_str(r));
	}
	intel_builder_free(b);
	feed_items_fini(&raw);
	if (r == 0) {
		feed_items_fini(&fs->good);
		fs->good = keep;
		fs->has_good = 1;
		st.last_success_us = now_us;
		fs->stats = st;
	} else {
		feed_items_fini(&keep);
		/* Keep the counts of the last success, record the failure. */
		fs->stats.last_attempt_us = now_us;
		fs->stats.last_err = r;
		fs->stats.requests = st.requests;
		fs->stats.bytes = st.bytes;
		/* Escaped: parser messages can quote bytes of the feed. */
		log_escape(err.p ? err.p : "", err.len, fs->stats.last_error,
			   sizeof(fs->stats.last_error));
		log_msg(LOG_WARN, "intel", "event=feed_failed feed=%s error=\"%s\" kept=%zu",
			fs->conf.name, fs->stats.last_error, fs->good.n);
	}
	buf_fini(&err);
	return r;
}

/* A new set from every feed's good list; items whose valid_from is still
 * ahead are withheld (and the earliest such time remembered), items that
 * expired are left out. */
static struct intel_set *feed_manager_build(struct feed_manager *m,
					    int64_t now_us)
{
	struct intel_builder *b = intel_builder_new();

	m->pending_from_us = 0;
	if (b == NULL)
		return NULL;
	for (size_t i = 0; i < m->n; i++) {
		const struct feed_state *fs = &m->f[i];

		for (size_t k = 0; k < fs->good.n; k++) {
			const struct feed_item *x = &fs->good.v[k];
			struct intel_meta meta;
			int r;

			if (x->valid_from > now_us) {
				if (m->pending_from_us == 0 ||
				    x->valid_from < m->pending_from_us)
					m->pending_from_us = x->valid_from;
				continue;
			}
			if (x->valid_until > 0 && x->valid_until <= now_us)
				continue;
			feed_item_meta(x, fs->conf.name, &meta);
			r = intel_builder_add(b, (enum intel_type)x->type,
					      fs->good.pool.p + x->off, x->len,
					      &meta);
			if (r == M_ENOMEM) {
				intel_builder_free(b);
				return NULL;
			}
		}
	}
	return intel_builder_finish(b);
}

int feed_manager_refresh(struct feed_manager *m, int64_t now_us, int force,
			 struct intel_set **out_new_set, struct buf *report)
{
	int changed = !m->built;

	*out_new_set = NULL;
	for (size_t i = 0; i < m->n; i++) {
		struct feed_state *fs = &m->f[i];
		int64_t every = fs->conf.refresh_s;

		if (!force && fs->stats.last_attempt_us != 0 &&
		    (fs->next_due_us == 0 || now_us < fs->next_due_us))
			continue;
		if (feed_state_load(fs, now_us) == 0) {
			changed = 1;
		} else if (every > FEED_RETRY_MAX_S || every == 0) {
			every = FEED_RETRY_MAX_S;
		}
		fs->next_due_us = every > 0 ? now_us + every * 1000000 : 0;
		feed_report_line(report, fs);
	}
	if (m->pending_from_us != 0 && now_us >= m->pending_from_us)
		changed = 1;
	if (!changed)
		return 0;
	*out_new_set = feed_manager_build(m, now_us);
	if (*out_new_set == NULL) {
		if (report)
			buf_printf(report, "feeds: out of memory building the set\n");
		return M_ENOMEM;
	}
	m->built = 1;
	return 0;
}

size_t feed_manager_count(const struct feed_manager *m)
{
	return m ? m->n : 0;
}

const struct feed_conf *feed_manager_conf(const struct feed_manager *m, size_t i)
{
	return m && i < m->n ? &m->f[i].conf : NULL;
}

const struct feed_stats *feed_manager_stats(const struct feed_manager *m,
					    size_t i)
{
	return m && i < m->n ? &m->f[i].stats : NULL;
}

size_t feed_manager_held(const struct feed_manager *m, size_t i)
{
	return m && i < m->n ? m->f[i].good.n : 0;
}

int64_t feed_manager_next_due(const struct feed_manager *m)
{
	int64_t due = 0;

	for (size_t i = 0; m && i < m->n; i++) {
		int64_t t = m->f[i].next_due_us;

		if (m->f[i].stats.last_attempt_us == 0)
			return 1;
		if (t != 0 && (due == 0 || t < due))
			due = t;
	}
	if (m && m->pending_from_us != 0 && (due == 0 || m->pending_from_us < due))
		due = m->pending_from_us;
	return due;
}

/* ---- configuration --------------------------------------------------- */

#define FC_OFF(f) offsetof(struct feed_conf, f)

const struct conf_keyword feed_conf_keywords[] = {
	{"name", CONF_STR, FC_OFF(name), 0, 0, "", 1, "source name on every indicator"},
	{"kind", CONF_STR, FC_OFF(kind), 0, 0, "plain", 1, "plain, csv, stix, taxii or misp"},
	{"url", CONF_STR, FC_OFF(url_or_path), 0, 0, "", 1,
	 "file or directory path, or http(s) URL (TAXII: the API root)"},
	{"refresh", CONF_DURATION, FC_OFF(refresh_s), 0, 365ll * 86400, "1h", 1,
	 "time between loads; 0 = once"},
	{"timeout", CONF_DURATION, FC_OFF(timeout_s), 1, 3600, "60s", 1, "per HTTP request"},
	{"max_bytes", CONF_SIZE, FC_OFF(max_bytes), 1024, 4ll << 30, "256M", 1,
	 "largest file or HTTP response"},
	{"confidence", CONF_INT, FC_OFF(confidence), 0, 100, "50", 1,
	 "when the feed gives none"},
	{"valid_for", CONF_DURATION, FC_OFF(valid_for_s), 0, 3650ll * 86400, "0", 1,
	 "plain/csv/misp: indicators expire this long after a load; 0 = never"},
	{"type", CONF_STR, FC_OFF(type), 0, 0, "auto", 1,
	 "plain/csv: ip, domain, url, hash, email or auto"},
	{"header", CONF_BOOL, FC_OFF(csv_header), 0, 0, "false", 1, "csv: first row is a header"},
	{"delimiter", CONF_STR, FC_OFF(csv_delimiter), 0, 0, ",", 1, "csv: one character or tab"},
	{"value_column", CONF_INT, FC_OFF(csv_value_col), 1, FEED_MAX_CSV_COLUMNS, "1", 1,
	 "csv: column of the value (from 1)"},
	{"type_column", CONF_INT, FC_OFF(csv_type_col), 0, FEED_MAX_CSV_COLUMNS, "0", 1,
	 "csv: column of the type; 0 = none"},
	{"confidence_column", CONF_INT, FC_OFF(csv_confidence_col), 0,
	 FEED_MAX_CSV_COLUMNS, "0", 1, "csv"},
	{"first_seen_column", CONF_INT, FC_OFF(csv_first_seen_col), 0,
	 FEED_MAX_CSV_COLUMNS, "0", 1, "csv"},
	{"last_seen_column", CONF_INT, FC_OFF(csv_last_seen_col), 0,
	 FEED_MAX_CSV_COLUMNS, "0", 1, "csv"},
	{"valid_until_column", CONF_INT, FC_OFF(csv_valid_until_col), 0,
	 FEED_MAX_CSV_COLUMNS, "0", 1, "csv"},
	{"collection", CONF_STR, FC_OFF(collection), 0, 0, "", 1, "taxii: collection id"},
	{"added_after", CONF_STR, FC_OFF(added_after), 0, 0, "", 1,
	 "taxii: only objects added after this RFC 3339 time"},
	{"username", CONF_STR, FC_OFF(username), 0, 0, "", 1, "HTTP basic auth"},
	{"password", CONF_STR, FC_OFF(password), 0, 0, "", 1, "HTTP basic auth"},
	{"bearer", CONF_STR, FC_OFF(bearer), 0, 0, "", 1, "HTTP bearer token"},
	{"ca_file", CONF_STR, FC_OFF(ca_file), 0, 0, "", 1, "CA bundle for https"},
	CONF_END
};

int feed_conf_parse_list(const struct conf_doc *doc,
			 const struct conf_node *seq, struct feed_conf **out,
			 size_t *n, struct buf *err)
{
	struct feed_conf *v = NULL;
	size_t cnt = 0, i = 0;
	const struct conf_node *it;
	int r = 0;

	*out = NULL;
	*n = 0;
	if (seq == NULL || conf_node_is_null(seq))
		return 0;
	if (conf_node_kind(seq) != CONF_NODE_SEQ) {
		buf_printf(err, "%s:%d:%d: expected a list of feeds",
			   doc && doc->file ? doc->file : "?", conf_node_line(seq),
			   conf_node_col(seq));
		return M_EINVAL;
	}
	for (it = conf_node_child(seq); it; it = conf_node_next(it))
		cnt++;
	if (cnt > FEED_MAX_FEEDS) {
		buf_printf(err, "%s:%d:%d: at most %u feeds",
			   doc && doc->file ? doc->file : "?", conf_node_line(seq),
			   conf_node_col(seq), FEED_MAX_FEEDS);
		return M_EINVAL;
	}
	if (cnt == 0)
		return 0;
	v = calloc(cnt, sizeof(*v));
	if (v == NULL)
		return M_ENOMEM;
	for (it = conf_node_child(seq); it && i < cnt; it = conf_node_next(it), i++) {
		char path[40];

		snprintf(path, sizeof(path), "intel.feeds[%zu]", i);
		r = conf_apply_map(doc, it, path, feed_conf_keywords, NULL, &v[i], err);
		if (r == 0 && feed_conf_check(&v[i], err) < 0)
			r = M_EINVAL;
		for (size_t j = 0; r == 0 && j < i; j++)
			if (strcmp(v[i].name, v[j].name) == 0) {
				feed_errf(err, &v[i], "name used twice");
				r = M_EINVAL;
			}
		if (r < 0) {
			i++;
			break;
		}
	}
	if (r < 0) {
		feed_conf_free_all(v, i);
		return r;
	}
	*out = v;
	*n = cnt;
	return 0;
}
