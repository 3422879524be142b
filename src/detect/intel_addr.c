/*
 * Address parsers of the indicator store (see intel_addr.h). Why they are
 * shaped so: every IPv4 field of every event is parsed before its lookup,
 * and at ten million lookups a second a parse that walked the digits took
 * a third of the time.
 */
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>

#include "core/err.h"
#include "detect/intel_addr.h"

/* The high bits of the bytes of m (as intel_in gives them) as 8 bits, the
 * first byte the lowest. */
static inline unsigned intel_pack8(uint64_t m)
{
	return (unsigned)(((m >> 7) * 0x0102040810204080ull) >> 56);
}

/* The part of a dotted quad that ends before byte end of w (eight bytes of
 * the text, the first the least significant), len bytes long, in a 4-byte
 * lane: its last digit in lane byte 3, the bytes before it cleared. */
static inline uint64_t intel_v4_part(uint64_t w, unsigned end, unsigned len)
{
	static const uint32_t keep[4] = {0, 0xff000000, 0xffff0000, 0xffffff00};

	return ((w << ((8 * (8 - end)) & 63)) >> 32) & keep[len & 3];
}

/* Four parts of up to three digits, right-aligned in the 4-byte lanes of
 * x (two lanes) and y, to their values in the low 16 bits of each lane:
 * each pair of digits, then each pair of pairs, multiplied out at once. */
static inline uint64_t intel_v4_lanes(uint64_t x)
{
	x &= 0x0f0f0f0f0f0f0f0full;
	x = (x * 10 + (x >> 8)) & 0x00ff00ff00ff00ffull;
	return (x * 100 + (x >> 16)) & 0x0000ffff0000ffffull;
}

/* Strict dotted quad, no leading zeros, without a loop or a branch on the
 * text: address lengths vary at random in traffic, and a parse that walked
 * the digits waited on each mispredicted part length. The bytes are
 * classed as digit or dot eight at a time, the dots give the parts, and
 * each part is shifted into a 4-byte lane: parts 0 and 1 lie in the first
 * eight bytes (they end by byte 7), parts 2 and 3 in the last eight. */
int intel_parse_v4(const char *s, size_t n, uint32_t *out)
{
	static const uint16_t least[4] = {0, 0, 10, 100};
	const unsigned char *u = (const unsigned char *)s;
	uint64_t lo, hi, tail, x, y;
	unsigned dig, dot, d, e0, e1, e2, l0, l1, l2, l3, bad;

	if (n < 7 || n > 15)
		return M_EINVAL;
	if (n >= 8) {
		lo = intel_le64(u);
		tail = intel_le64(u + n - 8);           /* bytes n-8 .. n-1 */
		hi = (tail >> (8 * (15 - n))) >> 8;     /* bytes 8 .. n-1 */
	} else {
		for (lo = 0, d = 7; d-- > 0;)
			lo = lo << 8 | u[d];
		tail = lo << 8;
		hi = 0;
	}
	dig = intel_pack8(intel_in(lo, '0', '9')) |
	      intel_pack8(intel_in(hi, '0', '9')) << 8;
	dot = intel_pack8(intel_eq(lo, '.')) | intel_pack8(intel_eq(hi, '.')) << 8;
	bad = ((lo | hi) & INTEL_HIGHS) != 0;
	bad |= (dig | dot) != (1u << n) - 1;
	/* three dots and no fourth; bit 16 stands in for a missing one */
	d = dot;
	e0 = (unsigned)__builtin_ctz(d | 0x10000u);
	d &= d - 1;
	e1 = (unsigned)__builtin_ctz(d | 0x10000u);
	d &= d - 1;
	e2 = (unsigned)__builtin_ctz(d | 0x10000u);
	bad |= (d == 0) | ((d & (d - 1)) != 0);
	l0 = e0;
	l1 = e1 - e0 - 1;
	l2 = e2 - e1 - 1;
	l3 = (unsigned)n - e2 - 1;
	bad |= (l0 - 1 > 2) | (l1 - 1 > 2) | (l2 - 1 > 2) | (l3 - 1 > 2);
	x = intel_v4_part(lo, e0, l0) | intel_v4_part(lo, e1, l1) << 32;
	y = intel_v4_part(tail, e2 + 8 - (unsigned)n, l2) |
	    intel_v4_part(tail, 8, l3) << 32;
	x = intel_v4_lanes(x);
	y = intel_v4_lanes(y);
	bad |= ((x | y) & 0x0000ff000000ff00ull) != 0;      /* over 255 */
	/* a leading zero: a value below the least of its digit count (bit
	 * 16 of each lane is borrowed from when it is) */
	bad |= ((((x | 0x0001000000010000ull) -
		  (least[l0 & 3] | (uint64_t)least[l1 & 3] << 32)) &
		 ((y | 0x0001000000010000ull) -
		  (least[l2 & 3] | (uint64_t)least[l3 & 3] << 32)) &
		 0x0001000000010000ull) != 0x0001000000010000ull);
	*out = (uint32_t)(((x << 8 | x >> 32) & 0xffff) << 16 |
			  ((y << 8 | y >> 32) & 0xffff));
	return bad ? M_EINVAL : 0;
}

static const uint8_t intel_v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0,
					   0, 0, 0xff, 0xff};

/* Parses "addr" or "addr/len" into family, prefix length and the masked
 * network; IPv4-mapped IPv6 becomes IPv4. with_prefix 0 refuses "/len". */
int intel_parse_ip(const char *s, size_t n, int with_prefix,
		   unsigned *fam, unsigned *plen, uint8_t addr[16])
{
	char tmp[64];
	size_t alen = n, i;
	unsigned p = 0, maxp;
	uint32_t a4;
	int has_p = 0;

	if (n == 0 || n >= sizeof(tmp))
		return M_EINVAL;
	for (i = 0; i < n; i++)
		if (s[i] == '/') {
			size_t d;

			if (!with_prefix || i + 1 == n || n - i - 1 > 3)
				return M_EINVAL;
			for (d = i + 1; d < n; d++) {
				if (s[d] < '0' || s[d] > '9')
					return M_EINVAL;
				p = p * 10 + (unsigned)(s[d] - '0');
			}
			if (s[i + 1] == '0' && n - i - 1 > 1)
				return M_EINVAL;
			alen = i;
			has_p = 1;
			break;
		}
	memset(addr, 0, 16);
	if (intel_parse_v4(s, alen, &a4) == 0) {
		addr[0] = (uint8_t)(a4 >> 24);
		addr[1] = (uint8_t)(a4 >> 16);
		addr[2] = (uint8_t)(a4 >> 8);
		addr[3] = (uint8_t)a4;
		*fam = 4;
		maxp = 32;
	} else {
		memcpy(tmp, s, alen);
		tmp[alen] = '\0';
		if (inet_pton(AF_INET6, tmp, addr) != 1)
			return M_EINVAL;
		*fam = 6;
		maxp = 128;
	}
	if (!has_p)
		p = maxp;
	if (p > maxp)
		return M_EINVAL;
	if (*fam == 6 && p >= 96 && memcmp(addr, intel_v4mapped, 12) == 0) {
		memmove(addr, addr + 12, 4);
		memset(addr + 4, 0, 12);
		*fam = 4;
		p -= 96;
	}
	intel_mask(addr, *fam == 4 ? 4 : 16, p);
	*plen = p;
	return 0;
}
