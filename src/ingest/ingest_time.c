/*
 * Timestamp parsing for the log parsers. Hand-written rather than strptime +
 * timegm because those depend on the locale and the process time zone, are
 * slow on the per-line hot path, and accept more than the formats say. All
 * arithmetic is on integers with ranges checked first, so hostile digits
 * cannot overflow.
 */
#include <stdint.h>

#include "core/err.h"
#include "ingest/ingest_time.h"

#define US_PER_SEC 1000000LL
#define US_PER_DAY (86400LL * US_PER_SEC)

/* Civil date ↔ day number in the proleptic Gregorian calendar, counted in
 * 400-year eras (146097 days each) with years starting in March so the leap
 * day is the last day of a year. */
int64_t ingest_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy, doe;

	if (m <= 2)
		y -= 1;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (int64_t)(m > 2 ? m - 3 : m + 9) + 2) / 5 + (int64_t)d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void ingest_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned char dim[12] = { 31, 28, 31, 30, 31, 30,
					       31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly k digits at p[*i]; -1 when they are not all digits. */
static int digits(const char *p, size_t n, size_t *i, unsigned k)
{
	int v = 0;

	if (*i + k > n)
		return -1;
	for (unsigned j = 0; j < k; j++) {
		unsigned c = (unsigned char)p[*i + j] - '0';
		if (c > 9)
			return -1;
		v = v * 10 + (int)c;
	}
	*i += k;
	return v;
}

/* ".123456789" → microseconds (extra digits are read and dropped). */
static int64_t fraction(const char *p, size_t n, size_t *i)
{
	int64_t us = 0;
	unsigned k = 0;

	if (*i >= n || (p[*i] != '.' && p[*i] != ','))
		return 0;
	if (*i + 1 >= n || (unsigned)(p[*i + 1] - '0') > 9)
		return 0;   /* a lone dot is not ours */
	(*i)++;
	while (*i < n && (unsigned)(p[*i] - '0') <= 9 && k < 32) {
		if (k < 6)
			us = us * 10 + (p[*i] - '0');
		k++;
		(*i)++;
	}
	for (; k < 6; k++)
		us *= 10;
	return us;
}

static int64_t make_us(int64_t y, unsigned mo, unsigned d, int h, int mi,
		       int s, int64_t frac)
{
	return ingest_days_from_civil(y, mo, d) * US_PER_DAY +
	       ((int64_t)h * 3600 + mi * 60 + s) * US_PER_SEC + frac;
}

size_t ingest_time_rfc3339_prefix(const char *p, size_t n, int64_t *us)
{
	size_t i = 0;
	int y, mo, d, h, mi, s = 0, off = 0;
	int64_t frac = 0;

	if ((y = digits(p, n, &i, 4)) < 0 || i >= n || p[i++] != '-' ||
	    (mo = digits(p, n, &i, 2)) < 1 || mo > 12 || i >= n ||
	    p[i++] != '-' || (d = digits(p, n, &i, 2)) < 1 ||
	    (unsigned)d > days_in_month(y, (unsigned)mo))
		return 0;
	if (i >= n || (p[i] != 'T' && p[i] != 't' && p[i] != ' '))
		return 0;
	i++;
	if ((h = digits(p, n, &i, 2)) < 0 || h > 23 || i >= n ||
	    p[i++] != ':' || (mi = digits(p, n, &i, 2)) < 0 || mi > 59)
		return 0;
	if (i < n && p[i] == ':') {
		i++;
		if ((s = digits(p, n, &i, 2)) < 0 || s > 60)
			return 0;
		frac = fraction(p, n, &i);
	}
	if (i < n && (p[i] == 'Z' || p[i] == 'z')) {
		i++;
	} else if (i < n && (p[i] == '+' || p[i] == '-')) {
		int sign = p[i] == '-' ? -1 : 1, oh, om = 0;
		size_t j = i + 1;
		if ((oh = digits(p, n, &j, 2)) < 0 || oh > 23)
			return 0;
		if (j < n && p[j] == ':') {
			j++;
			if ((om = digits(p, n, &j, 2)) < 0 || om > 59)
				return 0;
		} else if (j + 1 < n && (unsigned)(p[j] - '0') <= 9) {
			if ((om = digits(p, n, &j, 2)) < 0 || om > 59)
				return 0;
		}
		off = sign * (oh * 3600 + om * 60);
		i = j;
	}
	*us = make_us(y, (unsigned)mo, (unsigned)d, h, mi, s, frac) -
	      (int64_t)off * US_PER_SEC;
	return i;
}

int ingest_time_rfc3339(const char *p, size_t n, int64_t *us)
{
	int64_t v;

	if (ingest_time_rfc3339_prefix(p, n, &v) != n || n == 0)
		return M_EPARSE;
	*us = v;
	return M_OK;
}

unsigned ingest_month_abbr(const char *p)
{
	/* Case-insensitive on the first letter only costs nothing and some
	 * devices write "OCT". */
	unsigned a = (unsigned char)p[0] | 0x20, b = (unsigned char)p[1] | 0x20,
		 c = (unsigned char)p[2] | 0x20;

	switch (a) {
	case 'j':
		if (b == 'a' && c == 'n')
			return 1;
		if (b == 'u' && c == 'n')
			return 6;
		if (b == 'u' && c == 'l')
			return 7;
		return 0;
	case 'f':
		return b == 'e' && c == 'b' ? 2 : 0;
	case 'm':
		if (b == 'a' && c == 'r')
			return 3;
		if (b == 'a' && c == 'y')
			return 5;
		return 0;
	case 'a':
		if (b == 'p' && c == 'r')
			return 4;
		if (b == 'u' && c == 'g')
			return 8;
		return 0;
	case 's':
		return b == 'e' && c == 'p' ? 9 : 0;
	case 'o':
		return b == 'c' && c == 't' ? 10 : 0;
	case 'n':
		return b == 'o' && c == 'v' ? 11 : 0;
	case 'd':
		return b == 'e' && c == 'c' ? 12 : 0;
	}
	return 0;
}

size_t ingest_time_bsd_prefix(const char *p, size_t n, int64_t recv_us,
			      int64_t *us)
{
	size_t i = 4;
	int d, h, mi, s, year = -1;
	unsigned mo;
	int64_t frac, ry;
	unsigned rm, rd;

	if (n < 15 || !(mo = ingest_month_abbr(p)) || p[3] != ' ')
		return 0;
	/* Day: "dd", " d" (RFC 3164 pads with a space) or "d". */
	if (p[i] == ' ')
		i++;
	if ((unsigned)(p[i] - '0') > 9)
		return 0;
	d = p[i++] - '0';
	if (i < n && (unsigned)(p[i] - '0') <= 9)
		d = d * 10 + (p[i++] - '0');
	if (d < 1 || d > 31 || i >= n || p[i++] != ' ')
		return 0;
	/* Optional year before the time: "Oct 11 2024 22:14:15". */
	if (i + 5 <= n && p[i + 4] == ' ') {
		size_t j = i;
		int yy = digits(p, n, &j, 4);
		if (yy >= 0) {
			year = yy;
			i = j + 1;
		}
	}
	if ((h = digits(p, n, &i, 2)) < 0 || h > 23 || i >= n ||
	    p[i++] != ':' || (mi = digits(p, n, &i, 2)) < 0 || mi > 59 ||
	    i >= n || p[i++] != ':' || (s = digits(p, n, &i, 2)) < 0 || s > 60)
		return 0;
	frac = fraction(p, n, &i);
	if (year < 0) {
		/* The year of recv_us, unless that puts the stamp more than a
		 * month ahead of the receive time (then last year's) or more
		 * than eleven months behind it (then next year's). */
		int64_t t;
		ingest_civil_from_days(recv_us >= 0 ? recv_us / US_PER_DAY
						    : (recv_us + 1) / US_PER_DAY - 1,
				       &ry, &rm, &rd);
		year = (int)ry;
		t = make_us(year, mo, 1, 0, 0, 0, 0) + (int64_t)(d - 1) * US_PER_DAY;
		if (t - recv_us > 31 * US_PER_DAY)
			year--;
		else if (recv_us - t > 334 * US_PER_DAY)
			year++;
	}
	if ((unsigned)d > days_in_month(year, mo))
		return 0;
	*us = make_us(year, mo, (unsigned)d, h, mi, s, frac);
	return i;
}
