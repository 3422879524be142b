/*
 * The indicator store: build, freeze, look up. Why this shape: lookups run
 * for every field of every event, against a million indicators or more, so
 * the frozen set is laid out for memory latency, not just for probe counts.
 *
 * - A blocked Bloom filter (three bits in one 64-bit word per key, ten
 *   bits per indicator) is small enough to stay in cache: a miss, the
 *   common case in real traffic, costs one cached word.
 * - The table is an array of 64-byte buckets of four 16-byte entries,
 *   linearly probed by bucket, at most half full. An entry holds an IPv4
 *   network and prefix length exactly, or a 63-bit hash fingerprint of any
 *   other key, with its record's offset and a coarse expiry: an IPv4 hit
 *   costs that one line, another hit that line and its record.
 * - A record is the key text, then the public struct intel_indicator, so
 *   that confirming a match reads one or two adjacent lines, and the
 *   caller then finds the indicator in cache.
 * - Each key is hashed with a tag (type, address family, prefix length), so
 *   one table holds every type and prefix length. Longest-prefix match
 *   probes only the lengths present: for IPv4 a bitmap per block of
 *   addresses (about two blocks per IPv4 prefix, so that a block rarely
 *   holds a length that its other addresses probe in vain; single lookups
 *   read a copy by /16, small enough to stay in cache), for IPv6 a
 *   set-wide one; a domain probes only the parents whose label count some
 *   indicator has.
 * - Lookups go through a pipeline in passes over a group of queries, each
 *   pass issuing the memory accesses the next one reads: canonicalise and
 *   hash (fetching filter words, and for IPv4 the block's lengths), list the
 *   IPv4 candidates, test the filter (fetching home buckets), read the
 *   buckets (fetching records), confirm. A batch keeps dozens of misses in
 *   flight; a single lookup is a group of one that fetches its buckets
 *   with its filter words.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "core/arena.h"
#include "core/err.h"
#include "detect/intel.h"
#include "detect/intel_addr.h"

#define INTEL_ARENA_CAP ((size_t)16 << 30)
#define INTEL_DOMAIN_MAX 255u
#define INTEL_EMAIL_MAX 320u

/* Entry keys: 0 is an empty entry; an IPv4 network is stored exactly
 * (INTEL_K_V4 | prefix length << 32 | address), every other key as its
 * hash with the top bit set, so the two never compare equal. */
#define INTEL_K_FP (1ull << 63)
#define INTEL_K_V4 (1ull << 62)

#define INTEL_SLOTS 4u          /* entries per 64-byte bucket */
#define INTEL_FILTER_BITS 10u   /* filter bits per indicator */
#define INTEL_REC_MAX (((size_t)1 << 32) * 8)  /* pool addressable by rec */

/* Pipeline bounds: queries in flight in a batch, their candidate keys,
 * and scratch for canonical forms; one query needs at most INTEL_Q_PROBES
 * probes (an IPv6 address: 129 prefix lengths) and INTEL_Q_SCRATCH bytes,
 * which is what a single lookup reserves. */
#define INTEL_GROUP 32u
#define INTEL_PROBES 512u
#define INTEL_SCRATCH 8192u
#define INTEL_Q_PROBES 129u
#define INTEL_Q_SCRATCH (INTEL_MAX_VALUE + 64u)

struct intel_entry {
	uint64_t k;     /* see INTEL_K_* */
	uint32_t rec;   /* record offset in the pool / 8 */
	uint32_t exp;   /* coarse expiry, see intel_exp32 */
};

struct intel_bucket {
	_Alignas(64) struct intel_entry e[INTEL_SLOTS];
};

struct intel_builder {
	struct arena arena;         /* values */
	struct arena names;         /* source names, kept by the set */
	struct intel_indicator *ind;
	size_t n, cap;
	size_t rejected;
	const char **sources;
	size_t nsources, last_source;
};

struct intel_big {
	void *p;
	size_t size;
};

#define INTEL_NBIG 5

struct intel_set {
	atomic_size_t refs;
	struct arena names;
	size_t count;
	char *pool;                     /* records, big[0] */
	struct intel_bucket *buckets;   /* big[1] */
	size_t nbuckets;
	uint64_t *filter;               /* big[2] */
	size_t nwords;
	uint32_t *v4_lens;              /* big[3]: by block, bit p-1 = /p */
	uint32_t *v4_lens16;            /* big[4]: the same by /16 */
	unsigned v4_shift;              /* block of a: a >> v4_shift */
	struct intel_big big[INTEL_NBIG];
	uint64_t seed;
	uint64_t v6_lens[3];            /* lengths 0..128 */
	uint64_t dom_labels[2];         /* bit c-1: a domain of c labels */
	int v4_default;                 /* 0.0.0.0/0 is present */
	unsigned v4_max;                /* most candidates of an address */
};

/* ---- hashing ---------------------------------------------------------- */

static inline uint64_t intel_mum(uint64_t a, uint64_t b)
{
	unsigned __int128 r = (unsigned __int128)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t intel_rd64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline uint64_t intel_rd32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* A small multiply-mix hash (our own, in the wyhash family of ideas). The
 * tail is read as overlapping words, so no byte is copied. */
static inline uint64_t intel_hash(const void *key, size_t n, uint64_t seed)
{
	const unsigned char *p = key;
	uint64_t h = seed ^ 0xa0761d6478bd642full, a, b;

	if (n <= 16) {
		if (n >= 8) {
			a = intel_rd64(p);
			b = intel_rd64(p + n - 8);
		} else if (n >= 4) {
			a = intel_rd32(p);
			b = intel_rd32(p + n - 4);
		} else if (n > 0) {
			a = ((uint64_t)p[0] << 16) | ((uint64_t)p[n >> 1] << 8) |
			    p[n - 1];
			b = 0;
		} else {
			a = b = 0;
		}
	} else {
		size_t left = n;

		while (left > 16) {
			h = intel_mum(intel_rd64(p) ^ 0x8ebc6af09c88c6e3ull,
				      intel_rd64(p + 8) ^ h);
			p += 16;
			left -= 16;
		}
		a = intel_rd64(p + left - 16);
		b = intel_rd64(p + left - 8);
	}
	h = intel_mum(a ^ 0x589965cc75374cc3ull, b ^ h);
	return intel_mum(h ^ 0x1d8e4e27c47d124full, n ^ 0xe7037ed1a0b428dbull);
}

static inline uint32_t intel_tag(enum intel_type t, unsigned fam,
				 unsigned plen)
{
	return ((uint32_t)t << 16) | (fam << 8) | plen;
}

static inline uint64_t intel_key_hash(const struct intel_set *s, uint32_t tag,
				      const void *key, size_t n)
{
	return intel_hash(key, n, s->seed ^ ((uint64_t)tag * 0x9e3779b97f4a7c15ull));
}

/* An IPv4 network and length, packed; hashed with two multiplies. */
static inline uint64_t intel_v4_key(uint32_t net, unsigned plen)
{
	return INTEL_K_V4 | ((uint64_t)plen << 32) | net;
}

static inline uint64_t intel_v4_hash(const struct intel_set *s, uint64_t k)
{
	return intel_mum(intel_mum(k ^ s->seed, 0x9e3779b97f4a7c15ull),
			 k ^ 0xe7037ed1a0b428dbull);
}

/* The filter word (from the low half of the hash), its three bits and the
 * home bucket (from the high half). */
static inline size_t intel_fword(const struct intel_set *s, uint64_t h)
{
	return (size_t)(((h & 0xffffffffull) * s->nwords) >> 32);
}

static inline uint64_t intel_fbits(uint64_t h)
{
	return (1ull << ((h >> 40) & 63)) | (1ull << ((h >> 46) & 63)) |
	       (1ull << ((h >> 52) & 63));
}

static inline size_t intel_home(const struct intel_set *s, uint64_t h)
{
	return (size_t)(((h >> 32) * s->nbuckets) >> 32);
}

/* ---- memory ----------------------------------------------------------- */

#define INTEL_HUGE ((size_t)2 << 20)

/* Zeroed memory for the large frozen arrays. Arrays of 2 MiB or more are
 * aligned and sized to 2 MiB and advised into transparent huge pages:
 * lookups touch them at random, and TLB misses (dearer still in a VM)
 * otherwise add a page walk to every cache miss. Where the kernel gives no
 * huge pages the arrays work as they are; the filter and the IPv4 length
 * table, which every miss touches, are small enough for the TLB anyway. */
static void *intel_big_alloc(struct intel_big *bg, size_t size)
{
	size_t map;
	char *p, *a;

	if (size == 0)
		size = 64;
	if (size < INTEL_HUGE) {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		bg->p = p;
		bg->size = size;
		return p;
	}
	size = (size + INTEL_HUGE - 1) & ~(INTEL_HUGE - 1);
	map = size + INTEL_HUGE;
	p = mmap(NULL, map, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)p + INTEL_HUGE - 1) & ~(uintptr_t)(INTEL_HUGE - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (a + size < p + map)
		munmap(a + size, (size_t)(p + map - (a + size)));
	(void)madvise(a, size, MADV_HUGEPAGE);
	bg->p = a;
	bg->size = size;
	return a;
}

static void intel_big_free(struct intel_big *bg)
{
	if (bg->p != NULL)
		munmap(bg->p, bg->size);
	bg->p = NULL;
}

/* ---- canonical keys --------------------------------------------------- */

static inline unsigned char intel_lower(unsigned char c)
{
	return (unsigned char)(c | (((unsigned)(c - 'A') < 26u) << 5));
}

/* Lower-cases a domain into out, drops one trailing dot and a leading
 * "*."; validates characters and labels when strict. The length goes to
 * *out_len. */
static int intel_canon_domain(const char *s, size_t n, char *out, int strict,
			      size_t *out_len)
{
	size_t i, lab = 0;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (strict && n > 2 && s[0] == '*' && s[1] == '.') {
		s += 2;
		n -= 2;
	}
	if (n == 0 || n > INTEL_DOMAIN_MAX)
		return M_EINVAL;
	for (i = 0; i < n; i++) {
		unsigned char c = intel_lower((unsigned char)s[i]);

		if (c == '.') {
			if (strict && lab == 0)
				return M_EINVAL;
			lab = 0;
		} else {
			if (strict && !((c >= 'a' && c <= 'z') ||
					(c >= '0' && c <= '9') || c == '-' ||
					c == '_' || c >= 0x80))
				return M_EINVAL;
			lab++;
		}
		out[i] = (char)c;
	}
	*out_len = n;
	return 0;
}

/* Bytes i..min(i + 8, n) of p as a word whose first byte is the least
 * significant, zero-padded, without reading outside p[0..n) and without a
 * call for the short tail. */
static inline uint64_t intel_word(const unsigned char *p, size_t n, size_t i)
{
	uint64_t x = 0;
	size_t k;

	if (i + 8 > n && n < 8) {
		for (k = n; k-- > i;)
			x = (x << 8) | p[k];
		return x;
	}
	x = intel_le64(i + 8 <= n ? p + i : p + n - 8);
	return i + 8 <= n ? x : x >> (8 * (8 - (n - i)));
}

/* MD5, SHA-1 or SHA-256 in hex, either case, eight digits at a time: a
 * lower-cased copy goes to out (n bytes), and *key is the caller's bytes
 * when they had no capital, else out. Hashes stay keyed by their text:
 * decoding them to binary costs more than it saves in hashing the key. */
static int intel_hex_canon(const char *s, size_t n, unsigned char *out,
			   const unsigned char **key)
{
	uint64_t bad = 0, up = 0;
	size_t i;

	if (n != 32 && n != 40 && n != 64)
		return M_EINVAL;
	for (i = 0; i < n; i += 8) {
		uint64_t x, upper;

		memcpy(&x, s + i, 8);
		upper = intel_in(x, 'A', 'F');
		bad |= x | ~(intel_in(x, '0', '9') | intel_in(x, 'a', 'f') | upper);
		up |= upper;
		x |= upper >> 2;
		memcpy(out + i, &x, 8);
	}
	if (bad & INTEL_HIGHS)
		return M_EINVAL;
	*key = up ? out : (const unsigned char *)s;
	return 0;
}

/* The canonical text of a hash: validated and lower-cased. */
static int intel_canon_hash(const char *s, size_t n, char *out,
			    size_t *out_len)
{
	const unsigned char *key;

	if (intel_hex_canon(s, n, (unsigned char *)out, &key) < 0)
		return M_EINVAL;
	*out_len = n;
	return 0;
}

static int intel_canon_email(const char *s, size_t n, char *out, int strict,
			     size_t *out_len)
{
	size_t i, at = n;

	if (n == 0 || n > INTEL_EMAIL_MAX)
		return M_EINVAL;
	for (i = 0; i < n; i++) {
		unsigned char c = intel_lower((unsigned char)s[i]);

		if (c == '@')
			at = i;
		if (strict && (c <= ' ' || c == 0x7f))
			return M_EINVAL;
		out[i] = (char)c;
	}
	if (strict && (at == 0 || at == n || at + 1 == n))
		return M_EINVAL;
	*out_len = n;
	return 0;
}

/* ---- builder ---------------------------------------------------------- */

struct intel_builder *intel_builder_new(void)
{
	struct intel_builder *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	arena_init(&b->arena, 1u << 20, INTEL_ARENA_CAP);
	arena_init(&b->names, 0, 0);
	return b;
}

void intel_builder_free(struct intel_builder *b)
{
	if (b == NULL)
		return;
	arena_fini(&b->arena);
	arena_fini(&b->names);
	free(b->ind);
	free(b->sources);
	free(b);
}

size_t intel_builder_rejected(const struct intel_builder *b)
{
	return b->rejected;
}

/* Interns a source name (at most 255 bytes) in the names arena; most feeds
 * add with one name, so the last one is tried first. */
static int intel_source(struct intel_builder *b, const char *name,
			const char **out)
{
	size_t i, n;
	const char **ns;
	char *copy;

	*out = NULL;
	if (name == NULL)
		return 0;
	if (b->nsources > 0 && strcmp(b->sources[b->last_source], name) == 0) {
		*out = b->sources[b->last_source];
		return 0;
	}
	for (i = 0; i < b->nsources; i++)
		if (strcmp(b->sources[i], name) == 0) {
			b->last_source = i;
			*out = b->sources[i];
			return 0;
		}
	n = strnlen(name, 256);
	if (n == 256)
		return M_EINVAL;
	if (b->nsources >= INTEL_MAX_SOURCES)
		return M_ELIMIT;
	copy = arena_strndup(&b->names, name, n);
	ns = realloc(b->sources, (b->nsources + 1) * sizeof(*ns));
	if (copy == NULL || ns == NULL) {
		if (ns != NULL)
			b->sources = ns;
		return M_ENOMEM;
	}
	b->sources = ns;
	b->last_source = b->nsources;
	b->sources[b->nsources++] = copy;
	*out = copy;
	return 0;
}

int intel_builder_add(struct intel_builder *b, enum intel_type type,
		      const char *value, size_t len,
		      const struct intel_meta *meta)
{
	char canon[INTEL_MAX_VALUE + 32];
	struct intel_indicator *ind;
	unsigned fam = 0, plen = 0;
	uint8_t addr[16];
	size_t clen = 0;
	int ret = M_EINVAL;

	if (value == NULL || len == 0 || len > INTEL_MAX_VALUE)
		goto out;
	switch (type) {
	case INTEL_IP:
		ret = intel_parse_ip(value, len, 1, &fam, &plen, addr);
		if (ret == 0) {
			for (clen = 0; clen < len; clen++)
				canon[clen] = (char)intel_lower(
					(unsigned char)value[clen]);
		}
		break;
	case INTEL_DOMAIN:
		ret = intel_canon_domain(value, len, canon, 1, &clen);
		break;
	case INTEL_URL:
		ret = intel_url_normalise(value, len, canon, INTEL_MAX_VALUE,
					  &clen);
		break;
	case INTEL_HASH:
		ret = intel_canon_hash(value, len, canon, &clen);
		break;
	case INTEL_EMAIL:
		ret = intel_canon_email(value, len, canon, 1, &clen);
		break;
	default:
		ret = M_EINVAL;
		break;
	}
	if (ret < 0)
		goto out;
	if (b->n >= INTEL_MAX_INDICATORS) {
		ret = M_ELIMIT;
		goto out;
	}
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 1024;
		struct intel_indicator *ni;

		ni = realloc(b->ind, ncap * sizeof(*ni));
		if (ni == NULL) {
			ret = M_ENOMEM;
			goto out;
		}
		b->ind = ni;
		b->cap = ncap;
	}
	ind = &b->ind[b->n];
	memset(ind, 0, sizeof(*ind));
	ind->type = type;
	if (meta != NULL) {
		ind->meta = *meta;
		if (ind->meta.confidence > 100)
			ind->meta.confidence = 100;
		ret = intel_source(b, meta->source, &ind->meta.source);
		if (ret < 0)
			goto out;
	}
	if (type == INTEL_IP) {
		ind->family = (uint8_t)fam;
		ind->prefix_len = (uint8_t)plen;
		memcpy(ind->addr, addr, 16);
	}
	ind->value = arena_strndup(&b->arena, canon, clen);
	if (ind->value == NULL) {
		ret = M_ENOMEM;
		goto out;
	}
	ind->value_len = (uint32_t)clen;
	b->n++;
	ret = 0;
out:
	if (ret == M_EINVAL)
		b->rejected++;
	return ret;
}

/* ---- freezing --------------------------------------------------------- */

_Static_assert(sizeof(struct intel_indicator) % 8 == 0,
	       "records are 8-byte aligned");
_Static_assert(sizeof(struct intel_bucket) == 64, "one bucket, one line");

static uint32_t intel_ind_tag(const struct intel_indicator *ind)
{
	if (ind->type == INTEL_IP)
		return intel_tag(INTEL_IP, ind->family, ind->prefix_len);
	return intel_tag(ind->type, 0, 0);
}

static const void *intel_ind_key(const struct intel_indicator *ind,
				 size_t *n)
{
	if (ind->type == INTEL_IP) {
		*n = ind->family == 4 ? 4 : 16;
		return ind->addr;
	}
	*n = ind->value_len;
	return ind->value;
}

static int intel_same(const struct intel_indicator *a,
		      const struct intel_indicator *b)
{
	const void *ka, *kb;
	size_t na, nb;

	if (intel_ind_tag(a) != intel_ind_tag(b))
		return 0;
	ka = intel_ind_key(a, &na);
	kb = intel_ind_key(b, &nb);
	return na == nb && memcmp(ka, kb, na) == 0;
}

/* Later expiry wins; 0 means never. */
static int intel_outlives(const struct intel_indicator *a,
			  const struct intel_indicator *b)
{
	if (b->meta.valid_until == 0)
		return 0;
	return a->meta.valid_until == 0 ||
	       a->meta.valid_until > b->meta.valid_until;
}

/* The entry key and hash of an indicator. */
static uint64_t intel_ind_hash(const struct intel_set *s,
			       const struct intel_indicator *ind, uint64_t *k)
{
	const void *key;
	size_t kn;
	uint64_t h;

	if (ind->type == INTEL_IP && ind->family == 4) {
		*k = intel_v4_key(intel_rd_be32(ind->addr), ind->prefix_len);
		return intel_v4_hash(s, *k);
	}
	key = intel_ind_key(ind, &kn);
	h = intel_key_hash(s, intel_ind_tag(ind), key, kn);
	*k = h | INTEL_K_FP;
	return h;
}

/* Coarse expiry in an entry, so that most checks need not read the
 * record: 0 never expires, 1 always asks the record, otherwise the
 * second of valid_until (floored, saturated at UINT32_MAX). */
static uint32_t intel_exp32(int64_t vu)
{
	if (vu == 0)
		return 0;
	if (vu < 2000000)
		return 1;
	if (vu / 1000000 >= (int64_t)UINT32_MAX)
		return UINT32_MAX;
	return (uint32_t)(vu / 1000000);
}

#define INTEL_V4_SPREAD 2

/* How finely the IPv4 length bitmap of batches divides the address space:
 * at least INTEL_V4_SPREAD blocks per IPv4 prefix, from /16 (256 KiB) to
 * /24 (64 MiB, for 4 million prefixes or more): 4 bytes a block, 8 to 16
 * bytes per IPv4 prefix. Why: a lookup probes every length its block has,
 * and a /32 sets a length that the other addresses of its block probe in
 * vain. With 500,000 IPv4 prefixes a /16 holds about eight, and an
 * address 2.8 candidates; by /20, 1.1, and probing them costs half the
 * instructions (357 -> 189 a lookup in a batch).
 * One block per prefix measured 4% more instructions a lookup, four 2.5%
 * fewer for twice the memory, which the caches then hold less of. */
static unsigned intel_v4_shift(const struct intel_builder *b)
{
	size_t i, n = 0;
	unsigned bits = 16;

	for (i = 0; i < b->n; i++)
		n += b->ind[i].type == INTEL_IP && b->ind[i].family == 4;
	while (bits < 24 && ((size_t)1 << bits) < INTEL_V4_SPREAD * n)
		bits++;
	return 32 - bits;
}

/* Sets the length of an IPv4 prefix in every block of lens (by a >>
 * shift) that it covers: at most 2^(32 - shift) blocks for each length,
 * since there are no more distinct prefixes of a length than that. */
static void intel_mark_v4(uint32_t *lens, unsigned shift,
			  const struct intel_indicator *ind)
{
	unsigned p = ind->prefix_len, bits = 32 - shift;
	size_t first = intel_rd_be32(ind->addr) >> shift;
	size_t count = p >= bits ? 1 : (size_t)1 << (bits - p), i;

	for (i = 0; i < count; i++)
		lens[first + i] |= 1u << (p - 1);
}

/* The most candidates an IPv4 address can have: a block of the finer
 * bitmap holds only lengths of prefixes that overlap it, which overlap
 * its /16 too, so the /16 bitmap bounds both. */
static unsigned intel_v4_most(const struct intel_set *s)
{
	unsigned most = 0, c;
	size_t i;

	for (i = 0; i < 65536; i++) {
		c = (unsigned)__builtin_popcount(s->v4_lens16[i]);
		most = c > most ? c : most;
	}
	return most + (unsigned)s->v4_default;
}

static void intel_mark_lengths(struct intel_set *s,
			       const struct intel_indicator *ind)
{
	unsigned p = ind->prefix_len;

	if (ind->type == INTEL_DOMAIN) {
		unsigned labels = 1;
		uint32_t i;

		for (i = 0; i < ind->value_len; i++)
			labels += ind->value[i] == '.';
		if (labels <= 128)
			s->dom_labels[(labels - 1) >> 6] |= 1ull << ((labels - 1) & 63);
	}
	if (ind->type != INTEL_IP)
		return;
	if (ind->family == 6) {
		s->v6_lens[p >> 6] |= 1ull << (p & 63);
	} else if (p == 0) {
		s->v4_default = 1;
	} else {
		intel_mark_v4(s->v4_lens, s->v4_shift, ind);
		intel_mark_v4(s->v4_lens16, 16, ind);
	}
}

static size_t intel_pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* A record is the key, then the indicator, then the value text when it
 * is not the key: [text NUL] [struct intel_indicator] [address text NUL],
 * each part padded to 8. The key ends where the indicator starts, so that
 * confirming a match reads the key and the indicator's first bytes, one
 * or two adjacent lines, and the caller then finds the indicator in cache.
 * An address is confirmed from the indicator itself (addr). */
static size_t intel_rec_prefix(const struct intel_indicator *ind)
{
	if (ind->type == INTEL_IP)
		return 0;
	return intel_pad8(ind->value_len + 1u);
}

static size_t intel_rec_size(const struct intel_indicator *ind)
{
	return intel_rec_prefix(ind) + sizeof(*ind) +
	       (ind->type == INTEL_IP ? intel_pad8(ind->value_len + 1u) : 0);
}

/* The key bytes of a record of an n-byte key (not an address). */
static inline const unsigned char *
intel_rec_key(const struct intel_indicator *ind, size_t n)
{
	return (const unsigned char *)ind - n - 1;
}

/* Copies the winners into records in one pool, in table order, and points
 * the entries at them. Entries hold builder index + 1 on entry. */
static int intel_compact(struct intel_set *s, const struct intel_builder *b)
{
	size_t i, j, bytes = 0, off = 0;

	for (i = 0; i < s->nbuckets; i++)
		for (j = 0; j < INTEL_SLOTS; j++)
			if (s->buckets[i].e[j].k != 0)
				bytes += intel_rec_size(
					&b->ind[s->buckets[i].e[j].rec - 1]);
	if (bytes >= INTEL_REC_MAX)
		return M_ELIMIT;
	s->pool = intel_big_alloc(&s->big[0], bytes);
	if (s->pool == NULL)
		return M_ENOMEM;
	for (i = 0; i < s->nbuckets; i++)
		for (j = 0; j < INTEL_SLOTS; j++) {
			struct intel_entry *e = &s->buckets[i].e[j];
			const struct intel_indicator *src;
			struct intel_indicator *d;
			size_t pre;
			char *text;

			if (e->k == 0)
				continue;
			src = &b->ind[e->rec - 1];
			pre = intel_rec_prefix(src);
			d = (struct intel_indicator *)(void *)(s->pool + off + pre);
			*d = *src;
			if (d->type == INTEL_IP)
				text = (char *)(d + 1);
			else
				text = (char *)d - src->value_len - 1;
			memcpy(text, src->value, src->value_len);
			text[src->value_len] = '\0';
			d->value = text;
			e->rec = (uint32_t)((off + pre) / 8);
			e->exp = intel_exp32(d->meta.valid_until);
			off += intel_rec_size(d);
			intel_mark_lengths(s, d);
		}
	return 0;
}

/* Inserts builder indicator i, or keeps the copy of the same key that
 * expires last. The table always has a free entry. */
static void intel_insert(struct intel_set *s, const struct intel_builder *b,
			 size_t i)
{
	const struct intel_indicator *ind = &b->ind[i];
	uint64_t k, h = intel_ind_hash(s, ind, &k);
	size_t pos = intel_home(s, h), j;

	for (;;) {
		struct intel_bucket *bk = &s->buckets[pos];

		for (j = 0; j < INTEL_SLOTS; j++) {
			struct intel_entry *e = &bk->e[j];

			if (e->k == 0) {
				e->k = k;
				e->rec = (uint32_t)(i + 1);
				s->filter[intel_fword(s, h)] |= intel_fbits(h);
				s->count++;
				return;
			}
			if (e->k == k && intel_same(&b->ind[e->rec - 1], ind)) {
				if (intel_outlives(ind, &b->ind[e->rec - 1]))
					e->rec = (uint32_t)(i + 1);
				return;
			}
		}
		pos = pos + 1 == s->nbuckets ? 0 : pos + 1;
	}
}

struct intel_set *intel_builder_finish(struct intel_builder *b)
{
	struct intel_set *s = NULL;
	size_t i;

	if (b == NULL)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto fail;
	/* Half-full buckets: most keys sit in their home bucket. */
	s->nbuckets = b->n / (INTEL_SLOTS / 2) + 1;
	s->nwords = (b->n * INTEL_FILTER_BITS + 63) / 64 + 1;
	s->buckets = intel_big_alloc(&s->big[1],
				     s->nbuckets * sizeof(*s->buckets));
	s->filter = intel_big_alloc(&s->big[2], s->nwords * sizeof(*s->filter));
	s->v4_shift = intel_v4_shift(b);
	s->v4_lens = intel_big_alloc(&s->big[3], ((size_t)1 << (32 - s->v4_shift)) *
				     sizeof(*s->v4_lens));
	s->v4_lens16 = intel_big_alloc(&s->big[4], 65536 * sizeof(*s->v4_lens16));
	if (s->buckets == NULL || s->filter == NULL || s->v4_lens == NULL ||
	    s->v4_lens16 == NULL)
		goto fail;
	if (getrandom(&s->seed, sizeof(s->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(s->seed))
		s->seed = 0x2d358dccaa6c78a5ull ^ (uint64_t)(uintptr_t)s;
	for (i = 0; i < b->n; i++)
		intel_insert(s, b, i);
	if (intel_compact(s, b) < 0)
		goto fail;
	s->v4_max = intel_v4_most(s);
	atomic_init(&s->refs, 1);
	s->names = b->names;
	arena_init(&b->names, 0, 0);
	intel_builder_free(b);
	return s;
fail:
	if (s != NULL) {
		for (i = 0; i < INTEL_NBIG; i++)
			intel_big_free(&s->big[i]);
		free(s);
	}
	intel_builder_free(b);
	return NULL;
}

struct intel_set *intel_set_ref(struct intel_set *s)
{
	if (s != NULL)
		atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void intel_set_unref(struct intel_set *s)
{
	size_t i;

	if (s == NULL)
		return;
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	arena_fini(&s->names);
	for (i = 0; i < INTEL_NBIG; i++)
		intel_big_free(&s->big[i]);
	free(s);
}

size_t intel_set_count(const struct intel_set *s)
{
	return s == NULL ? 0 : s->count;
}

size_t intel_set_bytes(const struct intel_set *s)
{
	size_t i, total;

	if (s == NULL)
		return 0;
	total = sizeof(*s) + s->names.used;
	for (i = 0; i < INTEL_NBIG; i++)
		total += s->big[i].size;
	return total;
}

/* ---- lookups ---------------------------------------------------------- */

/* One candidate key of a query: a query has one, or one per prefix length
 * (IP) or per suffix (domain), most specific first. */
struct intel_probe {
	uint64_t h;
	uint64_t k;                  /* entry key sought; 0 once filtered out */
	const unsigned char *key;    /* key bytes, unless IPv4 */
	uint32_t len;
	uint32_t tag;
	const struct intel_entry *e; /* its entry in the home bucket */
};

/* The queries in flight: their probes (query j has qn[j] from qfirst[j]),
 * scratch for the canonical forms that differ from the caller's bytes,
 * and the IPv4 addresses whose candidate prefixes are not listed yet
 * (v4_wait: a bit per query) because their block's lengths are being
 * fetched. */
struct intel_group {
	const struct intel_set *s;
	struct intel_probe *p;          /* cap_p of them */
	unsigned char *scratch;         /* cap_s bytes */
	unsigned nq, np, nwait, cap_p;
	int eager;                      /* fetch home buckets at once */
	const uint32_t *v4_lens;        /* the set's, fine or by /16 */
	unsigned v4_shift;
	size_t used, cap_s;
	uint32_t v4_wait;
	uint16_t qfirst[INTEL_GROUP], qn[INTEL_GROUP];
	uint32_t v4[INTEL_GROUP];
};

_Static_assert(INTEL_GROUP <= 32, "v4_wait is a 32-bit mask");
_Static_assert(INTEL_PROBES >= INTEL_Q_PROBES &&
	       INTEL_SCRATCH >= INTEL_Q_SCRATCH &&
	       INTEL_Q_SCRATCH >= INTEL_Q_PROBES * 16 &&
	       INTEL_Q_SCRATCH >= INTEL_MAX_VALUE + 32,
	       "one query always fits a group");

static inline void intel_emit(struct intel_group *g, uint64_t h, uint64_t k,
			      const void *key, size_t len, uint32_t tag)
{
	struct intel_probe *pr = &g->p[g->np++];

	pr->h = h;
	pr->k = k;
	pr->key = key;
	pr->len = (uint32_t)len;
	pr->tag = tag;
	__builtin_prefetch(&g->s->filter[intel_fword(g->s, h)]);
	if (g->eager)
		__builtin_prefetch(&g->s->buckets[intel_home(g->s, h)]);
}

static inline void intel_emit_hashed(struct intel_group *g, uint32_t tag,
				     const void *key, size_t len)
{
	uint64_t h = intel_key_hash(g->s, tag, key, len);

	intel_emit(g, h, h | INTEL_K_FP, key, len, tag);
}

/* The candidate prefixes of IPv4 address a, longest first: the lengths
 * present in its block, then /0. */
static void intel_expand_v4(struct intel_group *g, uint32_t a)
{
	const struct intel_set *s = g->s;
	uint32_t lens = g->v4_lens[a >> g->v4_shift];

	while (lens != 0) {
		unsigned b = 31u - (unsigned)__builtin_clz(lens);
		uint64_t k = intel_v4_key(a & (0xffffffffu << (31 - b)), b + 1);

		intel_emit(g, intel_v4_hash(s, k), k, NULL, 0, 0);
		lens &= ~(1u << b);
	}
	if (s->v4_default)
		intel_emit(g, intel_v4_hash(s, intel_v4_key(0, 0)),
			   intel_v4_key(0, 0), NULL, 0, 0);
}

/* An IPv4 address waits for intel_expand (its block's lengths are fetched
 * meanwhile); an IPv6 address lists its candidates at once. */
static void intel_prep_ip(struct intel_group *g, const char *text,
			  size_t len)
{
	const struct intel_set *s = g->s;
	uint8_t addr[16];
	unsigned fam = 4, plen, w;
	uint32_t a;

	/* Dotted quads, most of them, skip the general parser. */
	if (intel_parse_v4(text, len, &a) < 0) {
		if (intel_parse_ip(text, len, 0, &fam, &plen, addr) < 0)
			return;
		a = intel_rd_be32(addr);
	}
	if (fam == 4) {
		__builtin_prefetch(&g->v4_lens[a >> g->v4_shift]);
		g->v4[g->nq] = a;
		g->v4_wait |= 1u << g->nq;
		g->nwait++;
		return;
	}
	for (w = 3; w-- > 0;) {
		uint64_t lens = s->v6_lens[w];

		while (lens != 0) {
			unsigned b = 63u - (unsigned)__builtin_clzll(lens);
			unsigned p = w * 64 + b;
			unsigned char *key = g->scratch + g->used;

			g->used += 16;
			memcpy(key, addr, 16);
			intel_mask(key, 16, p);
			intel_emit_hashed(g, intel_tag(INTEL_IP, 6, p), key, 16);
			lens &= ~(1ull << b);
		}
	}
}

/* Lists the candidates of the IPv4 addresses that wait. */
static void intel_expand(struct intel_group *g)
{
	while (g->v4_wait != 0) {
		unsigned j = (unsigned)__builtin_ctz(g->v4_wait);

		g->qfirst[j] = (uint16_t)g->np;
		intel_expand_v4(g, g->v4[j]);
		g->qn[j] = (uint16_t)(g->np - g->qfirst[j]);
		g->v4_wait &= g->v4_wait - 1;
	}
	g->nwait = 0;
}

/* A copy of n bytes lower-cased into scratch, or the caller's bytes when
 * they have no capital letter (the usual case); checked: the caller has
 * looked already, and a copy is wanted. */
static const unsigned char *intel_lowered(struct intel_group *g,
					  const char *p, size_t n, int checked)
{
	const unsigned char *u = (const unsigned char *)p;
	uint64_t odd = 0;
	unsigned char *o;
	size_t i;

	/* eight at a time; a byte from 0x80 up goes the slow way */
	for (i = 0; i < n && !checked; i += 8) {
		uint64_t x = intel_word(u, n, i);

		odd |= (x & INTEL_HIGHS) | intel_in(x, 'A', 'Z');
	}
	if (odd == 0 && !checked)
		return u;
	o = g->scratch + g->used;
	g->used += n;
	for (i = 0; i < n; i++)
		o[i] = intel_lower(u[i]);
	return o;
}

/* The name and each parent domain, longest first, as far as some
 * indicator has that many labels. */
static void intel_prep_domain(struct intel_group *g, const char *name,
			      size_t n)
{
	const struct intel_set *s = g->s;
	uint16_t starts[INTEL_MAX_LABELS + 1];
	const uint32_t tag = intel_tag(INTEL_DOMAIN, 0, 0);
	const unsigned char *key;
	uint64_t odd = 0;
	unsigned nl = 1, i;

	if ((s->dom_labels[0] | s->dom_labels[1]) == 0)
		return;
	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > INTEL_DOMAIN_MAX)
		return;
	/* the labels and whether a byte needs lower-casing (or a closer
	 * look), eight bytes at a time */
	starts[0] = 0;
	for (i = 0; i < n; i += 8) {
		uint64_t x = intel_word((const unsigned char *)name, n, i);
		uint64_t d = intel_eq(x, '.');

		odd |= (x & INTEL_HIGHS) | intel_in(x, 'A', 'Z');
		while (d != 0) {
			if (nl >= INTEL_MAX_LABELS)
				return;
			starts[nl++] = (uint16_t)(i + ((unsigned)__builtin_ctzll(d) >> 3) + 1);
			d &= d - 1;
		}
	}
	key = odd ? intel_lowered(g, name, n, 1) : (const unsigned char *)name;
	for (i = 0; i < nl; i++) {
		unsigned c = nl - i - 1;    /* labels - 1 */

		if (s->dom_labels[c >> 6] & (1ull << (c & 63)))
			intel_emit_hashed(g, tag, key + starts[i],
					  n - starts[i]);
	}
}

static void intel_prep(struct intel_group *g, enum intel_type t,
		       const char *p, size_t len)
{
	unsigned char *o = g->scratch + g->used;
	const unsigned char *key;
	size_t n;

	g->qfirst[g->nq] = (uint16_t)g->np;
	if (p == NULL)
		t = 0;
	switch (t) {
	case INTEL_IP:
		intel_prep_ip(g, p, len);
		break;
	case INTEL_DOMAIN:
		intel_prep_domain(g, p, len);
		break;
	case INTEL_URL:
		if (len == 0 || len > INTEL_MAX_VALUE)
			break;
		if (intel_url_is_normal(p, len)) {
			intel_emit_hashed(g, intel_tag(INTEL_URL, 0, 0), p, len);
		} else if (intel_url_normalise(p, len, (char *)o,
					       INTEL_MAX_VALUE, &n) == 0) {
			g->used += n;
			intel_emit_hashed(g, intel_tag(INTEL_URL, 0, 0), o, n);
		}
		break;
	case INTEL_HASH:
		if (intel_hex_canon(p, len, o, &key) == 0) {
			if (key == o)
				g->used += len;
			intel_emit_hashed(g, intel_tag(INTEL_HASH, 0, 0), key, len);
		}
		break;
	case INTEL_EMAIL:
		if (len > 0 && len <= INTEL_EMAIL_MAX)
			intel_emit_hashed(g, intel_tag(INTEL_EMAIL, 0, 0),
					  intel_lowered(g, p, len, 0), len);
		break;
	default:
		break;
	}
	g->qn[g->nq] = (uint16_t)(g->np - g->qfirst[g->nq]);
	g->nq++;
}

/* Whether a record is the key of a fingerprint match (a false match is
 * about one in 2^63 per entry, but a lookup must be exact). */
static inline int intel_verify(const struct intel_indicator *ind,
			       const struct intel_probe *pr)
{
	if (intel_ind_tag(ind) != pr->tag)
		return 0;
	if (ind->type == INTEL_IP)
		return memcmp(ind->addr, pr->key, 16) == 0;
	if (ind->value_len != pr->len)
		return 0;
	return memcmp(intel_rec_key(ind, pr->len), pr->key, pr->len) == 0;
}

/* now_us > 0 hides what expired before it; the entry's coarse expiry
 * decides unless now falls in the same second. */
static inline int intel_live(const struct intel_entry *e,
			     const struct intel_indicator *ind, int64_t now)
{
	int64_t sec;

	if (now <= 0 || e->exp == 0)
		return 1;
	if (e->exp > 1) {
		sec = now / 1000000;
		if (sec < (int64_t)e->exp)
			return 1;
		if (sec > (int64_t)e->exp && e->exp != UINT32_MAX)
			return 0;
	}
	return ind->meta.valid_until >= now;
}

static inline const struct intel_indicator *
intel_rec(const struct intel_set *s, const struct intel_entry *e)
{
	return (const struct intel_indicator *)(const void *)(
		s->pool + (size_t)e->rec * 8);
}

/* Walks the buckets from the probe's home to the first free entry. */
static const struct intel_indicator *
intel_find(const struct intel_set *s, const struct intel_probe *pr,
	   int64_t now)
{
	size_t pos = intel_home(s, pr->h), tries, j;

	for (tries = 0; tries < s->nbuckets; tries++) {
		const struct intel_bucket *bk = &s->buckets[pos];

		for (j = 0; j < INTEL_SLOTS; j++) {
			const struct intel_entry *e = &bk->e[j];
			const struct intel_indicator *ind;

			if (e->k == 0)
				return NULL;
			if (e->k != pr->k)
				continue;
			ind = intel_rec(s, e);
			if ((pr->k & INTEL_K_FP) && !intel_verify(ind, pr))
				continue;
			return intel_live(e, ind, now) ? ind : NULL;
		}
		pos = pos + 1 == s->nbuckets ? 0 : pos + 1;
	}
	return NULL;
}

/* Answers every query of the group into out[0..nq), in three passes so
 * that each pass's memory accesses are in flight together: the filter
 * words (fetched while the group was prepared) drop most probes and fetch
 * the home buckets of the rest; the home buckets give the entry, and fetch
 * its record; then each query takes its first live match. A probe whose
 * home bucket is full without it walks on in the last pass. */
static void intel_flush(struct intel_group *g,
			const struct intel_indicator **out, int64_t now)
{
	const struct intel_set *s = g->s;
	unsigned i, j;

	intel_expand(g);
	for (i = 0; i < g->np; i++) {
		struct intel_probe *pr = &g->p[i];
		uint64_t bits = intel_fbits(pr->h);

		if ((s->filter[intel_fword(s, pr->h)] & bits) == bits)
			__builtin_prefetch(&s->buckets[intel_home(s, pr->h)]);
		else
			pr->k = 0;
	}
	for (i = 0; i < g->np; i++) {
		struct intel_probe *pr = &g->p[i];
		const struct intel_bucket *bk;

		pr->e = NULL;
		if (pr->k == 0)
			continue;
		bk = &s->buckets[intel_home(s, pr->h)];
		for (j = 0; j < INTEL_SLOTS; j++) {
			const struct intel_entry *e = &bk->e[j];

			if (e->k == pr->k) {
				const char *rec = (const char *)intel_rec(s, e);

				/* an IPv4 entry is its key: no record to
				 * confirm, a hit costs this one line */
				pr->e = e;
				if (pr->len != 0) {
					__builtin_prefetch(rec);
					__builtin_prefetch(rec - pr->len - 1);
				}
				break;
			}
			if (e->k == 0) {
				pr->k = 0;
				break;
			}
		}
		if (j == INTEL_SLOTS)   /* full: the walk goes on next door */
			__builtin_prefetch(bk + 1 == s->buckets + s->nbuckets ?
					   s->buckets : bk + 1);
	}
	for (j = 0; j < g->nq; j++) {
		const struct intel_indicator *r = NULL;

		for (i = g->qfirst[j]; i < g->qfirst[j] + g->qn[j] && r == NULL;
		     i++) {
			const struct intel_probe *pr = &g->p[i];
			const struct intel_indicator *ind;

			if (pr->k == 0)
				continue;
			if (pr->e == NULL) {
				r = intel_find(s, pr, now);
				continue;
			}
			ind = intel_rec(s, pr->e);
			if ((pr->k & INTEL_K_FP) && !intel_verify(ind, pr))
				r = intel_find(s, pr, now);
			else if (intel_live(pr->e, ind, now))
				r = ind;
		}
		out[j] = r;
	}
	g->nq = g->np = 0;
	g->used = 0;
}

static inline void intel_group_init(struct intel_group *g,
				    const struct intel_set *s,
				    struct intel_probe *p, unsigned cap_p,
				    unsigned char *scratch, size_t cap_s)
{
	g->s = s;
	g->p = p;
	g->cap_p = cap_p;
	g->scratch = scratch;
	g->cap_s = cap_s;
	g->nq = g->np = g->nwait = 0;
	g->eager = 0;
	g->v4_lens = s->v4_lens;
	g->v4_shift = s->v4_shift;
	g->used = 0;
	g->v4_wait = 0;
}

/* Whether one more query might not fit: the addresses that wait will list
 * at most v4_max candidates each. */
static inline int intel_group_full(const struct intel_group *g)
{
	return g->nq == INTEL_GROUP ||
	       g->np + g->s->v4_max * g->nwait + INTEL_Q_PROBES > g->cap_p ||
	       g->used + INTEL_Q_SCRATCH > g->cap_s;
}

static const struct intel_indicator *
intel_lookup_one(const struct intel_set *s, enum intel_type t,
		 const char *p, size_t len, int64_t now)
{
	const struct intel_indicator *r;
	struct intel_probe probes[INTEL_Q_PROBES];
	unsigned char scratch[INTEL_Q_SCRATCH];
	struct intel_group g;

	if (s == NULL || p == NULL)
		return NULL;
	intel_group_init(&g, s, probes, INTEL_Q_PROBES, scratch, sizeof(scratch));
	/* Alone, a lookup waits for each access in turn: the home buckets
	 * are fetched with the filter words, so that a hit waits for one
	 * memory latency, not two (a miss only costs bandwidth). */
	g.eager = 1;
	/* The /16 bitmap stays in cache and the finer one does not: here it
	 * would add a memory latency before the buckets are fetched, where in
	 * a batch that wait is shared by the group. */
	g.v4_lens = s->v4_lens16;
	g.v4_shift = 16;
	intel_prep(&g, t, p, len);
	intel_flush(&g, &r, now);
	return r;
}

const struct intel_indicator *intel_lookup_ip(const struct intel_set *s,
					      const char *text, size_t len,
					      int64_t now_us)
{
	return intel_lookup_one(s, INTEL_IP, text, len, now_us);
}

const struct intel_indicator *intel_lookup_domain(const struct intel_set *s,
						  const char *name, size_t len,
						  int64_t now_us)
{
	return intel_lookup_one(s, INTEL_DOMAIN, name, len, now_us);
}

const struct intel_indicator *intel_lookup_url(const struct intel_set *s,
					       const char *url, size_t len,
					       int64_t now_us)
{
	return intel_lookup_one(s, INTEL_URL, url, len, now_us);
}

const struct intel_indicator *intel_lookup_hash(const struct intel_set *s,
						const char *hex, size_t len,
						int64_t now_us)
{
	return intel_lookup_one(s, INTEL_HASH, hex, len, now_us);
}

const struct intel_indicator *intel_lookup_email(const struct intel_set *s,
						 const char *addr, size_t len,
						 int64_t now_us)
{
	return intel_lookup_one(s, INTEL_EMAIL, addr, len, now_us);
}

/* The batch loop shared by both batch entry points: tq gives each key its
 * type, or every key of q has type t. */
static void intel_run(const struct intel_set *s,
		      const struct intel_typed_query *tq,
		      const struct intel_query *q, enum intel_type t, size_t n,
		      const struct intel_indicator **out, int64_t now)
{
	struct intel_probe probes[INTEL_PROBES];
	unsigned char scratch[INTEL_SCRATCH];
	struct intel_group g;
	size_t i, base = 0;

	intel_group_init(&g, s, probes, INTEL_PROBES, scratch, sizeof(scratch));
	for (i = 0; i < n; i++) {
		if (intel_group_full(&g)) {
			intel_flush(&g, out + base, now);
			base = i;
		}
		if (tq != NULL)
			intel_prep(&g, tq[i].type, tq[i].p, tq[i].len);
		else
			intel_prep(&g, t, q[i].p, q[i].len);
	}
	intel_flush(&g, out + base, now);
}

int intel_lookup_many(const struct intel_set *s, enum intel_type type,
		      const struct intel_query *q, size_t n,
		      const struct intel_indicator **out, int64_t now_us)
{
	if (s == NULL || (n > 0 && (q == NULL || out == NULL)) ||
	    type < INTEL_IP || type > INTEL_EMAIL)
		return M_EINVAL;
	intel_run(s, NULL, q, type, n, out, now_us);
	return 0;
}

int intel_lookup_batch(const struct intel_set *s,
		       const struct intel_typed_query *q, size_t n,
		       const struct intel_indicator **out, int64_t now_us)
{
	if (s == NULL || (n > 0 && (q == NULL || out == NULL)))
		return M_EINVAL;
	intel_run(s, q, NULL, 0, n, out, now_us);
	return 0;
}

const char *intel_type_str(enum intel_type t)
{
	switch (t) {
	case INTEL_IP: return "ip";
	case INTEL_DOMAIN: return "domain";
	case INTEL_URL: return "url";
	case INTEL_HASH: return "hash";
	case INTEL_EMAIL: return "email";
	}
	return "?";
}
