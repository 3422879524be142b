/*
 * Longest-prefix match over IPv4 (v4-mapped) and IPv6 prefixes: which host
 * group an address belongs to, whether a source or destination is on an
 * allow list. Built once from the configuration, read on the hot path.
 *
 * One hash table per prefix length present, probed from the longest length
 * down (configurations hold a handful of distinct lengths, so a lookup is a
 * few probes), behind a 2 x 64 Kibit filter on the first 16 significant
 * bits that answers "no" for addresses outside every prefix with one load.
 */
#ifndef MAMORI_DDOS_LPM_H
#define MAMORI_DDOS_LPM_H

#include <stddef.h>
#include <stdint.h>

#define DDOS_LPM_NONE UINT32_MAX

struct ddos_lpm;

/* An empty table, owned by the caller (ddos_lpm_free); NULL without memory. */
struct ddos_lpm *ddos_lpm_new(void);
void ddos_lpm_free(struct ddos_lpm *l);
/* Adds a prefix (a: 16 bytes, v4-mapped for IPv4; plen 0..128; bits past
 * plen are ignored). M_ELIMIT past 1,048,576 prefixes. Call ddos_lpm_build
 * before looking up. */
int ddos_lpm_add(struct ddos_lpm *l, const uint8_t a[16], unsigned plen, uint32_t value);
/* Builds the lookup tables; M_EINVAL when a prefix was added twice. */
int ddos_lpm_build(struct ddos_lpm *l);
/* The value of the longest prefix containing a, or DDOS_LPM_NONE. */
uint32_t ddos_lpm_lookup(const struct ddos_lpm *l, const uint8_t a[16]);
/* As lookup, also giving the prefix length matched. */
uint32_t ddos_lpm_lookup_len(const struct ddos_lpm *l, const uint8_t a[16], unsigned *plen);
/* 1 when some prefix of the table overlaps a/plen (contains it or lies
 * inside it). Linear: for set-up, not for the hot path. */
int ddos_lpm_overlaps(const struct ddos_lpm *l, const uint8_t a[16], unsigned plen);
size_t ddos_lpm_count(const struct ddos_lpm *l);
size_t ddos_lpm_memory(const struct ddos_lpm *l);

/* The two 64-bit halves of an address (big-endian numbers), and their hash;
 * shared with the counters. */
static inline uint64_t ddos_be64(const uint8_t *p)
{
	uint64_t v;

	__builtin_memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline uint64_t ddos_hash2(uint64_t hi, uint64_t lo, uint64_t seed)
{
	uint64_t h = (hi ^ seed) * 0x9e3779b97f4a7c15ull;

	h ^= lo + 0x632be59bd9b4e019ull + (h << 6) + (h >> 2);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* Keeps the first plen bits of (hi, lo). */
static inline void ddos_mask(uint64_t *hi, uint64_t *lo, unsigned plen)
{
	if (plen >= 128)
		return;
	if (plen >= 64) {
		*lo &= plen == 64 ? 0 : ~0ull << (128 - plen);
		return;
	}
	*lo = 0;
	*hi &= plen == 0 ? 0 : ~0ull << (64 - plen);
}

#endif
