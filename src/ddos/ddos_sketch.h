/*
 * Private to the DDoS counters: the top-talker sketches of a hot target
 * (its sources, its source ports). Inline: every record of a target under
 * attack updates two of them, for each of its host, /24 and group.
 *
 * Space-saving (Metwally et al.): k counters; a key that is there adds
 * its weight, a key that is not takes the place of the smallest counter
 * and adds to its count, so every heavy hitter's estimate is an upper
 * bound and every key with more than 1/k of the weight is there. Under a
 * flood from spoofed sources nearly every record is a new key, so what a
 * miss costs is what counts: the counters are a binary min-heap on their
 * count (the smallest at the root, found at once; the replaced root sinks
 * in at most log2 k steps) and each has a 16-bit digest of its key in an
 * array beside them, compared four at a time as a 64-bit word (a zero
 * 16-bit lane, the usual bit trick), so a miss reads the digests, not the
 * keys. Which of several equal smallest counters is
 * replaced is the heap's choice: any is a valid space-saving step.
 */
#ifndef MAMORI_DDOS_SKETCH_H
#define MAMORI_DDOS_SKETCH_H

#include <stdint.h>
#include <string.h>

struct ddos_hh {           /* a space-saving counter */
	uint64_t hi, lo;   /* source address, or proto << 16 | port */
	uint64_t n;        /* bytes, an upper estimate; 0 = empty */
};


/* The digest of a key: never 0, which marks an empty counter. */
static inline unsigned ddos_hh_tag(uint64_t hi, uint64_t lo)
{
	uint64_t x = (hi ^ (lo * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;

	return (unsigned)(x >> 48) | 1;
}

/* The counter of lane l of digest word j, as memcpy loaded it. */
static inline unsigned ddos_hh_lane(unsigned j, unsigned l)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return 4 * j + 3 - l;
#else
	return 4 * j + l;
#endif
}

/* Counter i's count grew: it moves down the heap past smaller children. */
static inline void ddos_hh_sink(struct ddos_hh *t, uint16_t *g, unsigned k, unsigned i)
{
	struct ddos_hh x = t[i];
	uint16_t tag = g[i];

	for (;;) {
		unsigned c = 2 * i + 1;
		if (c >= k)
			break;
		if (c + 1 < k && t[c + 1].n < t[c].n)
			c++;
		if (t[c].n >= x.n)
			break;
		t[i] = t[c];
		g[i] = g[c];
		i = c;
	}
	t[i] = x;
	g[i] = tag;
}

/* Adds weight w (0 counts as 1) to key (hi, lo) in the k counters t with
 * their digests g (k a multiple of 4). All zero is an empty sketch. */
static inline void ddos_hh_add(struct ddos_hh *t, uint16_t *g, unsigned k, uint64_t hi, uint64_t lo,
			       uint64_t w)
{
	const uint64_t ones = 0x0001000100010001ull, highs = 0x8000800080008000ull;
	unsigned tag = ddos_hh_tag(hi, lo);
	uint64_t pat = tag * ones;

	for (unsigned j = 0; j < k / 4; j++) {
		uint64_t x;
		memcpy(&x, g + 4 * j, sizeof(x));   /* four digests; lane order does not matter */
		x ^= pat;
		/* A lane of x is zero where the digest matches; lanes above a
		 * zero one may show too (the borrow): the key is compared. */
		for (uint64_t z = (x - ones) & ~x & highs; z; z &= z - 1) {
			unsigned i = ddos_hh_lane(j, (unsigned)__builtin_ctzll(z) / 16);
			if (t[i].lo == lo && t[i].hi == hi) {
				t[i].n += w;
				ddos_hh_sink(t, g, k, i);
				return;
			}
		}
	}
	/* Not there: the smallest counter (the root) takes the key and keeps
	 * its count (the rule that keeps every estimate an upper bound). */
	t[0].hi = hi;
	t[0].lo = lo;
	t[0].n += w ? w : 1;
	g[0] = (uint16_t)tag;
	ddos_hh_sink(t, g, k, 0);
}

#endif
