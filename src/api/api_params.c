/*
 * Query parameters of GET /api/v1/events → struct store_query.
 *
 * Why a separate file: this is the part of the API that reads hostile input
 * (every byte of the query string), so it is a pure function of the
 * parameters with no HTTP library in sight; the unit test drives it with
 * tables and a fuzzer can do the same. Every value is bounded, every number
 * range-checked, and an error names the parameter so a caller can fix it.
 */
#include "api/api_params.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/schema.h"

/* Single-use parameters (bit in api_search.seen). */
enum {
	P_FROM = 1u << 0,
	P_TO = 1u << 1,
	P_Q = 1u << 2,
	P_LIMIT = 1u << 3,
	P_OFFSET = 1u << 4,
	P_ORDER = 1u << 5,
};

void api_search_init(struct api_search *s)
{
	memset(&s->q, 0, sizeof(s->q));
	s->q.limit = API_DEFAULT_LIMIT;
	s->seen = 0;
	s->n_params = 0;
	s->err_param[0] = '\0';
	s->err_detail[0] = '\0';
	s->pool_len = 0;
}

/* Records which parameter is wrong and why; always returns M_EINVAL. The
 * name is cut to the buffer and is escaped later, when rendered as JSON. */
static int search_fail(struct api_search *s, const char *name, size_t len,
		       const char *detail)
{
	if (len > API_MAX_FIELD_NAME)
		len = API_MAX_FIELD_NAME;
	memcpy(s->err_param, name, len);
	s->err_param[len] = '\0';
	snprintf(s->err_detail, sizeof(s->err_detail), "%s", detail);
	return M_EINVAL;
}

/* A NUL-terminated copy in the pool; NULL when the pool is full (it is sized
 * for the largest request target, so that means a bug or a huge request). */
static char *search_dup(struct api_search *s, const char *p, size_t n)
{
	char *out;

	if (n + 1 > sizeof(s->pool) - s->pool_len)
		return NULL;
	out = s->pool + s->pool_len;
	memcpy(out, p, n);
	out[n] = '\0';
	s->pool_len += n + 1;
	return out;
}

int api_parse_uint(const char *p, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 19)
		return M_EPARSE;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return M_EPARSE;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	if (v > max)
		return M_ELIMIT;
	*out = v;
	return 0;
}

/* Exactly count digits at p[*pos]; advances *pos. */
static int take_digits(const char *p, size_t n, size_t *pos, unsigned count,
		       unsigned *out)
{
	unsigned v = 0;

	if (*pos + count > n)
		return M_EPARSE;
	for (unsigned i = 0; i < count; i++) {
		char c = p[*pos + i];
		if (c < '0' || c > '9')
			return M_EPARSE;
		v = v * 10 + (unsigned)(c - '0');
	}
	*pos += count;
	*out = v;
	return 0;
}

static int take_char(const char *p, size_t n, size_t *pos, char c)
{
	if (*pos >= n || p[*pos] != c)
		return M_EPARSE;
	(*pos)++;
	return 0;
}

static int is_leap(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
	static const unsigned char dim[12] = { 31, 28, 31, 30, 31, 30,
					       31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days from 1970-01-01 to y-m-d (y >= 1970): whole years, then months. The
 * loops are bounded by the year range checked by the caller. */
static int64_t days_since_epoch(unsigned y, unsigned m, unsigned d)
{
	int64_t days = 0;

	for (unsigned yy = 1970; yy < y; yy++)
		days += is_leap(yy) ? 366 : 365;
	for (unsigned mm = 1; mm < m; mm++)
		days += days_in_month(y, mm);
	return days + d - 1;
}

static int parse_rfc3339(const char *p, size_t n, int64_t *out_us)
{
	unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, oh = 0, om = 0;
	int64_t frac_us = 0, offset_s = 0, t;
	size_t pos = 0;

	if (take_digits(p, n, &pos, 4, &y) || take_char(p, n, &pos, '-') ||
	    take_digits(p, n, &pos, 2, &mo) || take_char(p, n, &pos, '-') ||
	    take_digits(p, n, &pos, 2, &d))
		return M_EPARSE;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return M_EPARSE;
	if (pos == n)
		goto done;   /* a bare date: midnight UTC */
	/* 'T', 't', or a space (RFC 3339 allows it; '+' in a URL is one). */
	if (p[pos] != 'T' && p[pos] != 't' && p[pos] != ' ')
		return M_EPARSE;
	pos++;
	if (take_digits(p, n, &pos, 2, &h) || take_char(p, n, &pos, ':') ||
	    take_digits(p, n, &pos, 2, &mi) || take_char(p, n, &pos, ':') ||
	    take_digits(p, n, &pos, 2, &sec))
		return M_EPARSE;
	if (h > 23 || mi > 59 || sec > 60)
		return M_EPARSE;
	if (sec == 60)
		sec = 59;    /* a leap second sorts with the second before it */
	if (pos < n && p[pos] == '.') {
		unsigned digits = 0;
		int64_t scale = 100000;

		pos++;
		while (pos < n && p[pos] >= '0' && p[pos] <= '9') {
			if (++digits > 9)
				return M_EPARSE;
			frac_us += (p[pos] - '0') * scale;
			scale /= 10;
			pos++;
		}
		if (digits == 0)
			return M_EPARSE;
	}
	if (pos >= n)
		return M_EPARSE;     /* RFC 3339 needs Z or an offset */
	if (p[pos] == 'Z' || p[pos] == 'z') {
		pos++;
	} else if (p[pos] == '+' || p[pos] == '-' || p[pos] == ' ') {
		/* A space is an unescaped '+' that the URL decoding turned. */
		int sign = p[pos] == '-' ? -1 : 1;

		pos++;
		if (take_digits(p, n, &pos, 2, &oh) ||
		    take_char(p, n, &pos, ':') ||
		    take_digits(p, n, &pos, 2, &om) || oh > 23 || om > 59)
			return M_EPARSE;
		offset_s = sign * (int64_t)(oh * 3600 + om * 60);
	} else {
		return M_EPARSE;
	}
	if (pos != n)
		return M_EPARSE;
done:
	t = days_since_epoch(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	    offset_s;
	if (t < 0)
		return M_EPARSE;
	*out_us = t * 1000000 + frac_us;
	return 0;
}

int api_parse_time(const char *s, size_t n, int64_t *out_us)
{
	uint64_t v;
	size_t i;

	if (s == NULL || n == 0 || n > 64)
		return M_EPARSE;
	for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		;
	if (i < n)
		return parse_rfc3339(s, n, out_us);
	/* Epoch: seconds up to 10^11 (year 5138), then milliseconds up to
	 * 10^14; anything larger is neither and is refused. */
	if (api_parse_uint(s, n, 99999999999999ull, &v))
		return M_EPARSE;
	*out_us = v < 100000000000ull ? (int64_t)v * 1000000 : (int64_t)v * 1000;
	return 0;
}

/* ECS-like field names: letters, digits and . _ - @, 1..128 bytes. */
static int field_name_ok(const char *p, size_t n)
{
	if (n == 0 || n > API_MAX_FIELD_NAME)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-' || c == '@'))
			return 0;
	}
	return 1;
}

static int name_is(const char *name, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(name, lit, len) == 0;
}

static int add_filter(struct api_search *s, const char *pname, size_t plen,
		      const char *field, size_t flen, const char *value,
		      size_t vlen)
{
	struct store_filter *f;

	if (!field_name_ok(field, flen))
		return search_fail(s, pname, plen,
				   "field names are letters, digits and . _ - @ (at most 128)");
	if (name_is(field, flen, "@timestamp"))
		return search_fail(s, pname, plen,
				   "filter @timestamp with from= and to=");
	if (vlen == 0)
		return search_fail(s, pname, plen, "empty filter value");
	if (s->q.n_filters >= STORE_MAX_FILTERS)
		return search_fail(s, pname, plen, "too many filters (at most 16)");
	f = &s->q.filters[s->q.n_filters];
	f->name = search_dup(s, field, flen);
	f->value = search_dup(s, value, vlen);
	if (f->name == NULL || f->value == NULL)
		return search_fail(s, pname, plen, "query too long");
	s->q.n_filters++;
	return 0;
}

/* Marks a single-use parameter; M_EINVAL when it came twice. */
static int once(struct api_search *s, unsigned bit, const char *name,
		size_t len)
{
	if (s->seen & bit)
		return search_fail(s, name, len, "given more than once");
	s->seen |= bit;
	return 0;
}

int api_search_param(struct api_search *s, const char *name, size_t name_len,
		     const char *value, size_t value_len)
{
	uint64_t v;
	int64_t t;

	if (value == NULL)
		value_len = 0;
	if (++s->n_params > API_MAX_PARAMS)
		return search_fail(s, name, name_len, "too many query parameters (at most 64)");
	if (value_len > API_MAX_VALUE)
		return search_fail(s, name, name_len, "value longer than 1024 bytes");
	if (value_len && memchr(value, '\0', value_len))
		return search_fail(s, name, name_len, "value contains a NUL byte");

	if (name_is(name, name_len, "from") || name_is(name, name_len, "to")) {
		int is_from = name[0] == 'f';

		if (once(s, is_from ? P_FROM : P_TO, name, name_len))
			return M_EINVAL;
		if (value_len == 0)
			return 0;    /* an empty form field: no bound */
		if (api_parse_time(value, value_len, &t))
			return search_fail(s, name, name_len,
					   "expected an RFC 3339 time (2024-05-01T12:00:00Z) or epoch seconds or milliseconds");
		if (is_from)
			s->q.from_us = t;
		else
			s->q.to_us = t;
		return 0;
	}
	if (name_is(name, name_len, "q")) {
		if (once(s, P_Q, name, name_len))
			return M_EINVAL;
		if (value_len == 0)
			return 0;
		s->q.text = search_dup(s, value, value_len);
		if (s->q.text == NULL)
			return search_fail(s, name, name_len, "query too long");
		return 0;
	}
	if (name_is(name, name_len, "limit")) {
		if (once(s, P_LIMIT, name, name_len))
			return M_EINVAL;
		if (value_len == 0)
			return 0;
		if (api_parse_uint(value, value_len, API_MAX_LIMIT, &v) || v == 0)
			return search_fail(s, name, name_len,
					   "expected an integer from 1 to 1000");
		s->q.limit = (uint32_t)v;
		return 0;
	}
	if (name_is(name, name_len, "offset")) {
		if (once(s, P_OFFSET, name, name_len))
			return M_EINVAL;
		if (value_len == 0)
			return 0;
		if (api_parse_uint(value, value_len, API_MAX_OFFSET, &v))
			return search_fail(s, name, name_len,
					   "expected an integer from 0 to 1000000");
		s->q.offset = v;
		return 0;
	}
	if (name_is(name, name_len, "order")) {
		if (once(s, P_ORDER, name, name_len))
			return M_EINVAL;
		if (value_len == 0 || name_is(value, value_len, "desc"))
			s->q.ascending = 0;
		else if (name_is(value, value_len, "asc"))
			s->q.ascending = 1;
		else
			return search_fail(s, name, name_len,
					   "expected asc or desc");
		return 0;
	}
	if (name_is(name, name_len, "filter")) {
		const char *colon = value_len ? memchr(value, ':', value_len) : NULL;

		if (colon == NULL)
			return search_fail(s, name, name_len,
					   "expected field:value");
		return add_filter(s, name, name_len, value,
				  (size_t)(colon - value), colon + 1,
				  value_len - (size_t)(colon - value) - 1);
	}
	if (name_len > 0 && name_len <= API_MAX_FIELD_NAME &&
	    schema_lookup(name, name_len) >= 0)
		return add_filter(s, name, name_len, name, name_len, value,
				  value_len);
	return search_fail(s, name, name_len,
			   "unknown parameter (not a search option nor an ECS field; use filter=name:value for other fields)");
}

int api_search_finish(struct api_search *s)
{
	if (s->q.from_us && s->q.to_us && s->q.from_us > s->q.to_us)
		return search_fail(s, "from", 4, "from is later than to");
	return 0;
}

int64_t api_parse_id(const char *s, size_t n)
{
	int64_t v = 0;

	if (n == 0 || n > 15 || s[0] == '0')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int api_is(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

const char *api_param_check(const struct api_param_name *tab, size_t ntab, unsigned allowed,
			    unsigned seen, const char *name, size_t name_len,
			    const char *value, size_t value_len, unsigned *bit)
{
	size_t n = value ? value_len : 0;

	*bit = 0;
	for (size_t i = 0; i < ntab; i++)
		if (api_is(name, name_len, tab[i].name))
			*bit = tab[i].bit;
	if (*bit == 0 || !(allowed & *bit))
		return "unknown parameter for this route";
	if (seen & *bit)
		return "given more than once";
	if (n > API_MAX_VALUE || (n && memchr(value, '\0', n)))
		return "value longer than 1024 bytes or with a NUL byte";
	return NULL;
}
