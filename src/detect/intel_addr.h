/*
 * Private to the indicator store: byte-parallel helpers and the address
 * parsers, shared by intel.c (keys, lookups) and intel_addr.c (dotted
 * quads and prefixes). Why a file of their own: the parsers are pure
 * functions of (bytes, length), tested and fuzzed through the store, and
 * the dotted-quad one is long enough to crowd the store's own code.
 */
#ifndef MAMORI_DETECT_INTEL_ADDR_H
#define MAMORI_DETECT_INTEL_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define INTEL_ONES 0x0101010101010101ull
#define INTEL_HIGHS 0x8080808080808080ull

/* The high bit of each byte of x in [lo, hi], for bytes below 0x80 (a
 * byte from 0x80 up may disturb its neighbours: callers refuse it). */
static inline uint64_t intel_in(uint64_t x, unsigned lo, unsigned hi)
{
	return (x + INTEL_ONES * (0x80 - lo)) &
	       (INTEL_ONES * (0x80 + hi) - x) & INTEL_HIGHS;
}

/* Exact: the high bit of each byte of x equal to c. */
static inline uint64_t intel_eq(uint64_t x, unsigned c)
{
	uint64_t y = x ^ (INTEL_ONES * c);

	return ~(((y & ~INTEL_HIGHS) + ~INTEL_HIGHS) | y | ~INTEL_HIGHS);
}

/* An IPv4 address in network order as a number. */
static inline uint32_t intel_rd_be32(const uint8_t *a)
{
	return ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) |
	       ((uint32_t)a[2] << 8) | a[3];
}

/* Eight bytes at p, the first the least significant. */
static inline uint64_t intel_le64(const unsigned char *p)
{
	uint64_t x;

	memcpy(&x, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	x = __builtin_bswap64(x);
#endif
	return x;
}

/* Clears the bits of the bytes-long address a past plen. */
static inline void intel_mask(uint8_t *a, unsigned bytes, unsigned plen)
{
	unsigned i;

	for (i = 0; i < bytes; i++) {
		if (plen >= 8 * (i + 1))
			continue;
		if (plen <= 8 * i)
			a[i] = 0;
		else
			a[i] &= (uint8_t)(0xff00u >> (plen - 8 * i));
	}
}

/* Strict dotted quad (four parts of 0-255, no leading zeros, nothing
 * else): 0 and the address as a number in *out, or M_EINVAL. */
int intel_parse_v4(const char *s, size_t n, uint32_t *out);

/* "addr" or "addr/len", IPv4 or IPv6: family, prefix length and the
 * network with host bits cleared in addr; IPv4-mapped IPv6 becomes IPv4;
 * with_prefix 0 refuses "/len". 0 or M_EINVAL. */
int intel_parse_ip(const char *s, size_t n, int with_prefix,
		   unsigned *fam, unsigned *plen, uint8_t addr[16]);

#endif
