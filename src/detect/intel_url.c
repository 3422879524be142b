/*
 * URL normalisation for the indicator store. Why: a feed and a proxy log
 * rarely spell the same URL the same way (HTTP://Example.org:80/a/./b%7e),
 * so both sides are reduced to one form (RFC 3986 section 6.2.2 plus the
 * default port) before an exact match. A pure function of its bytes, bounded
 * by the output capacity.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "core/str.h"
#include "detect/intel.h"

static int url_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/* Copies in[0..n) to out at *o with percent-escapes normalised. */
static int url_copy_pct(const char *in, size_t n, char *out, size_t cap,
			size_t *o)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '%' && i + 2 < n &&
		    str_hexval((unsigned char)in[i + 1]) >= 0 &&
		    str_hexval((unsigned char)in[i + 2]) >= 0) {
			int v = str_hexval((unsigned char)in[i + 1]) * 16 +
				str_hexval((unsigned char)in[i + 2]);

			if (url_unreserved((unsigned char)v)) {
				if (*o >= cap)
					return M_ELIMIT;
				out[(*o)++] = (char)v;
			} else {
				if (*o + 3 > cap)
					return M_ELIMIT;
				out[(*o)++] = '%';
				out[(*o)++] = hex[v >> 4];
				out[(*o)++] = hex[v & 15];
			}
			i += 2;
			continue;
		}
		if (*o >= cap)
			return M_ELIMIT;
		out[(*o)++] = (char)c;
	}
	return 0;
}

/* RFC 3986 5.2.4 on an absolute path p[0..n) (p[0] == '/'), in place;
 * returns the new length. Output never grows. */
static size_t url_remove_dots(char *p, size_t n)
{
	size_t i = 0, o = 0;

	while (i < n) {
		size_t j = i + 1, seg;

		while (j < n && p[j] != '/')
			j++;
		seg = j - i - 1;
		if (seg == 1 && p[i + 1] == '.') {
			if (j == n)
				p[o++] = '/';
		} else if (seg == 2 && p[i + 1] == '.' && p[i + 2] == '.') {
			while (o > 0 && p[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			if (j == n)
				p[o++] = '/';
		} else {
			memmove(p + o, p + i, j - i);
			o += j - i;
		}
		i = j;
	}
	return o == 0 ? (p[0] = '/', 1) : o;
}

int intel_url_normalise(const char *in, size_t len, char *out, size_t cap,
			size_t *out_len)
{
	size_t i = 0, o = 0, sch_end = 0, auth, auth_end, host, host_end;
	size_t port = 0, path_start, end = len, k;
	int ret = M_EINVAL, has_scheme = 0;

	for (k = 0; k < len; k++) {
		unsigned char c = (unsigned char)in[k];

		if (c == ':') {
			has_scheme = k > 0 && k + 2 < len && in[k + 1] == '/' &&
				     in[k + 2] == '/';
			sch_end = k;
			break;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (k > 0 && ((c >= '0' && c <= '9') || c == '+' ||
				 c == '-' || c == '.'))))
			break;
	}
	for (k = 0; k < len; k++)
		if (in[k] == '#') {
			end = k;
			break;
		}
	if (has_scheme) {
		if (sch_end + 3 > cap)
			return M_ELIMIT;
		for (k = 0; k < sch_end; k++)
			out[o++] = (char)str_lower_byte((unsigned char)in[k]);
		i = sch_end + 3;
	} else {
		if (cap < 4)
			return M_ELIMIT;
		memcpy(out, "http", 4);
		o = sch_end = 4;
	}
	if (o + 3 > cap)
		return M_ELIMIT;
	memcpy(out + o, "://", 3);
	o += 3;

	/* Authority: [userinfo@]host[:port] up to '/', '?' or the end. */
	auth = i;
	auth_end = i;
	while (auth_end < end && in[auth_end] != '/' && in[auth_end] != '?')
		auth_end++;
	host = auth;
	for (k = auth; k < auth_end; k++)
		if (in[k] == '@')
			host = k + 1;
	host_end = auth_end;
	for (k = auth_end; k > host; k--) {
		if (in[k - 1] == ']')
			break;
		if (in[k - 1] == ':') {
			host_end = k - 1;
			port = k;
			break;
		}
	}
	if (host_end == host)
		goto out;
	if (host > auth) {
		ret = url_copy_pct(in + auth, host - auth, out, cap, &o);
		if (ret < 0)
			goto out;
	}
	for (k = host; k < host_end; k++) {
		if (o >= cap) {
			ret = M_ELIMIT;
			goto out;
		}
		out[o++] = (char)str_lower_byte((unsigned char)in[k]);
	}
	if (port) {
		size_t plen = auth_end - port;
		int dflt = plen == 0 ||
			   (plen == 2 && memcmp(in + port, "80", 2) == 0 &&
			    sch_end == 4 && memcmp(out, "http", 4) == 0) ||
			   (plen == 3 && memcmp(in + port, "443", 3) == 0 &&
			    sch_end == 5 && memcmp(out, "https", 5) == 0);

		if (!dflt) {
			if (o + 1 + plen > cap) {
				ret = M_ELIMIT;
				goto out;
			}
			out[o++] = ':';
			memcpy(out + o, in + port, plen);
			o += plen;
		}
	}

	/* Path, then the query as it is (escapes normalised). */
	path_start = o;
	k = auth_end;
	while (k < end && in[k] != '?')
		k++;
	if (k == auth_end) {
		if (o >= cap) {
			ret = M_ELIMIT;
			goto out;
		}
		out[o++] = '/';
	} else {
		ret = url_copy_pct(in + auth_end, k - auth_end, out, cap, &o);
		if (ret < 0)
			goto out;
		o = path_start + url_remove_dots(out + path_start,
						 o - path_start);
	}
	ret = url_copy_pct(in + k, end - k, out, cap, &o);
	if (ret < 0)
		goto out;
	*out_len = o;
	ret = 0;
out:
	return ret;
}

/* Byte classes for the fast check of the authority. */
enum { URL_END = 1, URL_ODD = 2 };

static const unsigned char url_auth_cls[256] = {
	['/'] = URL_END, ['?'] = URL_END,
	[':'] = URL_ODD, ['@'] = URL_ODD, ['%'] = URL_ODD, ['#'] = URL_ODD,
	['['] = URL_ODD, [']'] = URL_ODD,
	['A'] = URL_ODD, ['B'] = URL_ODD, ['C'] = URL_ODD, ['D'] = URL_ODD,
	['E'] = URL_ODD, ['F'] = URL_ODD, ['G'] = URL_ODD, ['H'] = URL_ODD,
	['I'] = URL_ODD, ['J'] = URL_ODD, ['K'] = URL_ODD, ['L'] = URL_ODD,
	['M'] = URL_ODD, ['N'] = URL_ODD, ['O'] = URL_ODD, ['P'] = URL_ODD,
	['Q'] = URL_ODD, ['R'] = URL_ODD, ['S'] = URL_ODD, ['T'] = URL_ODD,
	['U'] = URL_ODD, ['V'] = URL_ODD, ['W'] = URL_ODD, ['X'] = URL_ODD,
	['Y'] = URL_ODD, ['Z'] = URL_ODD,
};

#define URL_ONES 0x0101010101010101ull
#define URL_HIGHS 0x8080808080808080ull

/* The high bit of each byte of x that equals c. A borrow can also mark
 * bytes above a real match, never without one: callers only ever treat a
 * mark as "not normal", so a false one costs speed, not correctness. */
static inline uint64_t url_eq(uint64_t x, unsigned char c)
{
	uint64_t y = x ^ (URL_ONES * c);

	return (y - URL_ONES) & ~y & URL_HIGHS;
}

/* Bytes i..min(i + 8, n) of p as a word whose first byte is the least
 * significant, as the shifts below assume, zero-padded, without reading
 * outside p[0..n). */
static inline uint64_t url_word(const unsigned char *p, size_t n, size_t i)
{
	uint64_t x = 0;
	size_t k;

	if (i + 8 > n && n < 8) {
		for (k = n; k-- > i;)
			x = (x << 8) | p[k];
		return x;
	}
	memcpy(&x, i + 8 <= n ? p + i : p + n - 8, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	x = __builtin_bswap64(x);
#endif
	return i + 8 <= n ? x : x >> (8 * (8 - (n - i)));
}

/* The conditions under which every step above is the identity: a
 * lower-case scheme with "://", an authority without capitals, port,
 * userinfo or brackets, a path that starts with '/', and after it no
 * escape, no fragment and no "/." (which covers every "." and ".."
 * segment). Anything else is left to the normaliser, so this may say 0
 * for a URL that is in fact normal. The part after the authority, most of
 * a URL, is checked eight bytes at a time. */
int intel_url_is_normal(const char *in, size_t len)
{
	const unsigned char *u = (const unsigned char *)in;
	uint64_t x, carry = 0, odd = 0;
	size_t k = 0, auth;
	unsigned c = 0;

	while (k < len && ((unsigned)(u[k] - 'a') < 26u ||
			   (k > 0 && ((unsigned)(u[k] - '0') < 10u ||
				      u[k] == '+' || u[k] == '-' ||
				      u[k] == '.'))))
		k++;
	if (k == 0 || len - k < 5 || memcmp(in + k, "://", 3) != 0)
		return 0;
	k += 3;
	auth = k;
	while (k < len && (c = url_auth_cls[u[k]]) == 0)
		k++;
	if (k == auth || k == len || c != URL_END || u[k] != '/')
		return 0;
	/* a zero byte of padding matches none of the bytes sought */
	for (; k < len; k += 8) {
		uint64_t sl;

		x = url_word(u, len, k);
		sl = url_eq(x, '/');
		odd |= url_eq(x, '%') | url_eq(x, '#') |
		       (((sl << 8) | carry) & url_eq(x, '.'));
		carry = sl >> 56;
	}
	return odd == 0;
}
