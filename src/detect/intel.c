/*
 * The indicator store: build, freeze, look up. Why this shape: lookups run
 * for every field of every event, so a frozen set answers with a bounded
 * number of probes into one open-addressing table whatever its size. Each
 * key is hashed together with a tag (type, address family, prefix length),
 * so one table holds every type and every prefix length. Longest-prefix
 * match probes only the prefix lengths actually present: for IPv4 a
 * per-/16 bitmap of candidate lengths, for IPv6 one set-wide bitmap. A
 * small blocked Bloom filter, which fits in cache, answers most misses
 * without touching the table. Values live in one arena.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include <arpa/inet.h>

#include "core/arena.h"
#include "core/err.h"
#include "detect/intel.h"

#define INTEL_ARENA_CAP ((size_t)16 << 30)
#define INTEL_DOMAIN_MAX 255u

struct intel_slot {
	uint32_t fp;    /* high half of the hash */
	uint32_t idx1;  /* indicator index + 1; 0 = empty */
	uint64_t koff;  /* offset of its key record in the pool */
};

/* What a probe needs to confirm a match, next to the key bytes, so that a
 * hit costs the slot and this record, not the indicator as well. For every
 * type but INTEL_IP the key is the value, and is NUL-terminated. */
struct intel_keyrec {
	int64_t valid_until;
	uint32_t tag;
	uint32_t len;
	/* key bytes follow, then a NUL, padded to 8 */
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

struct intel_set {
	atomic_size_t refs;
	struct arena names;
	struct intel_indicator *ind;    /* count entries, in big[0] */
	size_t count;
	char *pool;                     /* key records and IP texts, big[1] */
	struct intel_slot *slots;       /* big[2] */
	size_t slot_mask;
	uint64_t *filter;               /* big[3] */
	size_t filter_mask;         /* words - 1 */
	struct intel_big big[4];
	uint64_t seed;
	uint64_t *v4_lens;          /* 65536 entries: lengths 0..32 by /16 */
	uint64_t v6_lens[3];        /* lengths 0..128 */
	unsigned domain_max_labels;
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

/* A small multiply-mix hash (our own, in the wyhash family of ideas). */
static uint64_t intel_hash(const void *key, size_t n, uint64_t seed)
{
	const unsigned char *p = key;
	uint64_t h = seed ^ intel_mum(n ^ 0xa0761d6478bd642full,
				      0xe7037ed1a0b428dbull);
	unsigned char tail[16];
	size_t left = n;

	while (left > 16) {
		h = intel_mum(intel_rd64(p) ^ 0x8ebc6af09c88c6e3ull,
			      intel_rd64(p + 8) ^ h);
		p += 16;
		left -= 16;
	}
	memset(tail, 0, sizeof(tail));
	memcpy(tail, p, left);
	h = intel_mum(intel_rd64(tail) ^ 0x589965cc75374cc3ull,
		      intel_rd64(tail + 8) ^ h);
	return intel_mum(h ^ 0x1d8e4e27c47d124full, n ^ 0xa0761d6478bd642full);
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

/* Two bits in one 64-bit word. */
static inline uint64_t intel_filter_bits(uint64_t h)
{
	return (1ull << (h >> 58)) | (1ull << ((h >> 26) & 63));
}

static inline size_t intel_filter_word(const struct intel_set *s, uint64_t h)
{
	return (size_t)(h >> 32) & s->filter_mask;
}

/* ---- memory ----------------------------------------------------------- */

/* Zeroed memory for the large frozen arrays, in transparent huge pages
 * where the kernel allows: lookups touch them at random, and TLB misses
 * (dearer still in a VM) otherwise dominate their cost. */
static void *intel_big_alloc(struct intel_big *bg, size_t size)
{
	void *p;

	if (size == 0)
		size = 64;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (size >= ((size_t)2 << 20))
		(void)madvise(p, size, MADV_HUGEPAGE);
	bg->p = p;
	bg->size = size;
	return p;
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
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* Strict dotted quad, no leading zeros. */
static int intel_parse_v4(const char *s, size_t n, uint8_t out[4])
{
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		unsigned v = 0, digits = 0;

		if (part > 0) {
			if (i >= n || s[i] != '.')
				return M_EINVAL;
			i++;
		}
		while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 4) {
			if (digits == 1 && v == 0)
				return M_EINVAL;
			v = v * 10 + (unsigned)(s[i] - '0');
			digits++;
			i++;
		}
		if (digits == 0 || digits > 3 || v > 255)
			return M_EINVAL;
		out[part] = (uint8_t)v;
	}
	return i == n ? 0 : M_EINVAL;
}

static void intel_mask(uint8_t *a, unsigned bytes, unsigned plen)
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

static const uint8_t intel_v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0,
					   0, 0, 0xff, 0xff};

/* Parses "addr" or "addr/len" into family, prefix length and the masked
 * network; IPv4-mapped IPv6 becomes IPv4. with_prefix 0 refuses "/len". */
static int intel_parse_ip(const char *s, size_t n, int with_prefix,
			  unsigned *fam, unsigned *plen, uint8_t addr[16])
{
	char tmp[64];
	size_t alen = n, i;
	unsigned p = 0, maxp;
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
	if (intel_parse_v4(s, alen, addr) == 0) {
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

static int intel_hexdigit(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int intel_canon_hash(const char *s, size_t n, char *out,
			    size_t *out_len)
{
	size_t i;

	if (n != 32 && n != 40 && n != 64)
		return M_EINVAL;
	for (i = 0; i < n; i++) {
		unsigned char c = intel_lower((unsigned char)s[i]);

		if (!intel_hexdigit(c))
			return M_EINVAL;
		out[i] = (char)c;
	}
	*out_len = n;
	return 0;
}

static int intel_canon_email(const char *s, size_t n, char *out, int strict,
			     size_t *out_len)
{
	size_t i, at = n;

	if (n == 0 || n > 320)
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

static void intel_mark_lengths(struct intel_set *s,
			       const struct intel_indicator *ind)
{
	unsigned p = ind->prefix_len;

	if (ind->type == INTEL_DOMAIN) {
		unsigned labels = 1;
		uint32_t i;

		for (i = 0; i < ind->value_len; i++)
			labels += ind->value[i] == '.';
		if (labels > s->domain_max_labels)
			s->domain_max_labels = labels;
	}
	if (ind->type != INTEL_IP)
		return;
	if (ind->family == 6) {
		s->v6_lens[p >> 6] |= 1ull << (p & 63);
	} else {
		size_t first = ((size_t)ind->addr[0] << 8) | ind->addr[1];
		size_t count = p >= 16 ? 1 : (size_t)1 << (16 - p), i;

		for (i = 0; i < count; i++)
			s->v4_lens[first + i] |= 1ull << p;
	}
}

/* Copies the winners into one array and their values into one pool, in
 * slot order, and points the slots at the copies. */
static size_t intel_pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* Bytes of the pool for one indicator: its key record, and for an address
 * its text as well. */
static size_t intel_pool_need(const struct intel_indicator *ind)
{
	size_t kn;

	(void)intel_ind_key(ind, &kn);
	return sizeof(struct intel_keyrec) + intel_pad8(kn + 1) +
	       (ind->type == INTEL_IP ? intel_pad8(ind->value_len + 1u) : 0);
}

/* Copies the winners into one array and their keys and values into one
 * pool, in slot order, and points the slots at the copies. */
static int intel_compact(struct intel_set *s, const struct intel_builder *b)
{
	size_t i, k = 0, bytes = 0, off = 0;

	for (i = 0; i <= s->slot_mask; i++)
		if (s->slots[i].idx1 != 0)
			bytes += intel_pool_need(&b->ind[s->slots[i].idx1 - 1]);
	s->ind = intel_big_alloc(&s->big[0], s->count * sizeof(*s->ind));
	s->pool = intel_big_alloc(&s->big[1], bytes);
	if (s->ind == NULL || s->pool == NULL)
		return M_ENOMEM;
	for (i = 0; i <= s->slot_mask; i++) {
		struct intel_indicator *d;
		struct intel_keyrec rec;
		const void *key;
		size_t kn;

		if (s->slots[i].idx1 == 0)
			continue;
		d = &s->ind[k];
		*d = b->ind[s->slots[i].idx1 - 1];
		key = intel_ind_key(d, &kn);
		rec.valid_until = d->meta.valid_until;
		rec.tag = intel_ind_tag(d);
		rec.len = (uint32_t)kn;
		s->slots[i].koff = off;
		memcpy(s->pool + off, &rec, sizeof(rec));
		off += sizeof(rec);
		memcpy(s->pool + off, key, kn);
		s->pool[off + kn] = '\0';
		if (d->type != INTEL_IP)
			d->value = s->pool + off;
		off += intel_pad8(kn + 1);
		if (d->type == INTEL_IP) {
			memcpy(s->pool + off, d->value, d->value_len + 1u);
			d->value = s->pool + off;
			off += intel_pad8(d->value_len + 1u);
		}
		intel_mark_lengths(s, d);
		s->slots[i].idx1 = (uint32_t)(++k);
	}
	return 0;
}

struct intel_set *intel_builder_finish(struct intel_builder *b)
{
	struct intel_set *s = NULL;
	size_t nslots = 16, nwords = 8, i;

	if (b == NULL)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto fail;
	while (nslots < 2 * b->n)
		nslots <<= 1;
	while (nwords * 64 < 12 * b->n)
		nwords <<= 1;
	s->slots = intel_big_alloc(&s->big[2], nslots * sizeof(*s->slots));
	s->filter = intel_big_alloc(&s->big[3], nwords * sizeof(*s->filter));
	s->v4_lens = calloc(65536, sizeof(*s->v4_lens));
	if (s->slots == NULL || s->filter == NULL || s->v4_lens == NULL)
		goto fail;
	s->slot_mask = nslots - 1;
	s->filter_mask = nwords - 1;
	if (getrandom(&s->seed, sizeof(s->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(s->seed))
		s->seed = 0x2d358dccaa6c78a5ull ^ (uint64_t)(uintptr_t)s;

	for (i = 0; i < b->n; i++) {
		const struct intel_indicator *ind = &b->ind[i];
		size_t kn, pos;
		const void *key = intel_ind_key(ind, &kn);
		uint64_t h = intel_key_hash(s, intel_ind_tag(ind), key, kn);

		for (pos = h & s->slot_mask;; pos = (pos + 1) & s->slot_mask) {
			struct intel_slot *sl = &s->slots[pos];

			if (sl->idx1 == 0) {
				sl->fp = (uint32_t)(h >> 32);
				sl->idx1 = (uint32_t)(i + 1);
				s->filter[intel_filter_word(s, h)] |=
					intel_filter_bits(h);
				s->count++;
				break;
			}
			if (sl->fp == (uint32_t)(h >> 32) &&
			    intel_same(&b->ind[sl->idx1 - 1], ind)) {
				if (intel_outlives(ind, &b->ind[sl->idx1 - 1]))
					sl->idx1 = (uint32_t)(i + 1);
				break;
			}
		}
	}
	if (intel_compact(s, b) < 0)
		goto fail;
	atomic_init(&s->refs, 1);
	s->names = b->names;
	arena_init(&b->names, 0, 0);
	intel_builder_free(b);
	return s;
fail:
	if (s != NULL) {
		for (i = 0; i < 4; i++)
			intel_big_free(&s->big[i]);
		free(s->v4_lens);
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
	for (i = 0; i < 4; i++)
		intel_big_free(&s->big[i]);
	free(s->v4_lens);
	free(s);
}

size_t intel_set_count(const struct intel_set *s)
{
	return s == NULL ? 0 : s->count;
}

/* ---- lookups ---------------------------------------------------------- */

/* One key whose hash is known: the filter first, then at most a cluster
 * of the table. */
static const struct intel_indicator *
intel_probe_h(const struct intel_set *s, uint32_t tag, const void *key,
	      size_t n, uint64_t h, int64_t now)
{
	uint64_t bits = intel_filter_bits(h);
	size_t pos, tries;

	if ((s->filter[intel_filter_word(s, h)] & bits) != bits)
		return NULL;
	pos = h & s->slot_mask;
	for (tries = 0; tries <= s->slot_mask; tries++) {
		const struct intel_slot *sl = &s->slots[pos];
		struct intel_keyrec rec;

		if (sl->idx1 == 0)
			return NULL;
		if (sl->fp == (uint32_t)(h >> 32)) {
			memcpy(&rec, s->pool + sl->koff, sizeof(rec));
			if (rec.tag == tag && rec.len == n &&
			    memcmp(s->pool + sl->koff + sizeof(rec), key, n) == 0)
				return now <= 0 || rec.valid_until == 0 ||
				       rec.valid_until >= now ?
					&s->ind[sl->idx1 - 1] : NULL;
		}
		pos = (pos + 1) & s->slot_mask;
	}
	return NULL;
}

/* A single key: the slot is fetched while the filter is read, so a hit
 * waits for one memory access less. */
static const struct intel_indicator *
intel_probe(const struct intel_set *s, uint32_t tag, const void *key,
	    size_t n, int64_t now)
{
	uint64_t h = intel_key_hash(s, tag, key, n);

	__builtin_prefetch(&s->slots[h & s->slot_mask]);
	return intel_probe_h(s, tag, key, n, h, now);
}

const struct intel_indicator *intel_lookup_ip(const struct intel_set *s,
					      const char *text, size_t len,
					      int64_t now_us)
{
	const struct intel_indicator *r;
	uint8_t addr[16], key[16];
	unsigned fam, plen;
	int w;

	if (s == NULL || text == NULL ||
	    intel_parse_ip(text, len, 0, &fam, &plen, addr) < 0)
		return NULL;
	if (fam == 4) {
		uint64_t lens = s->v4_lens[((size_t)addr[0] << 8) | addr[1]];
		uint32_t a = ((uint32_t)addr[0] << 24) | ((uint32_t)addr[1] << 16) |
			     ((uint32_t)addr[2] << 8) | addr[3];

		uint8_t keys[33][4], plens[33];
		uint64_t hs[33];
		unsigned nc = 0, c;

		/* Hash every candidate first so that their filter words are
		 * fetched in parallel, then probe from the longest. */
		while (lens != 0 && nc < 33) {
			unsigned p = 63u - (unsigned)__builtin_clzll(lens);
			uint32_t m = p == 0 ? 0 : a & (0xffffffffu << (32 - p));

			keys[nc][0] = (uint8_t)(m >> 24);
			keys[nc][1] = (uint8_t)(m >> 16);
			keys[nc][2] = (uint8_t)(m >> 8);
			keys[nc][3] = (uint8_t)m;
			plens[nc] = (uint8_t)p;
			hs[nc] = intel_key_hash(s, intel_tag(INTEL_IP, 4, p),
						keys[nc], 4);
			__builtin_prefetch(&s->filter[intel_filter_word(s, hs[nc])]);
			nc++;
			lens &= ~(1ull << p);
		}
		for (c = 0; c < nc; c++) {
			r = intel_probe_h(s, intel_tag(INTEL_IP, 4, plens[c]),
					  keys[c], 4, hs[c], now_us);
			if (r != NULL)
				return r;
		}
		return NULL;
	}
	for (w = 2; w >= 0; w--) {
		uint64_t lens = s->v6_lens[w];

		while (lens != 0) {
			unsigned b = 63u - (unsigned)__builtin_clzll(lens);
			unsigned p = (unsigned)w * 64 + b;

			memcpy(key, addr, 16);
			intel_mask(key, 16, p);
			r = intel_probe(s, intel_tag(INTEL_IP, 6, p), key, 16,
					now_us);
			if (r != NULL)
				return r;
			lens &= ~(1ull << b);
		}
	}
	return NULL;
}

const struct intel_indicator *intel_lookup_domain(const struct intel_set *s,
						  const char *name, size_t len,
						  int64_t now_us)
{
	char buf[INTEL_DOMAIN_MAX + 1];
	uint16_t starts[INTEL_MAX_LABELS + 1];
	uint64_t hs[INTEL_MAX_LABELS + 1];
	const struct intel_indicator *r;
	unsigned nl = 0, i, first;
	uint32_t tag = intel_tag(INTEL_DOMAIN, 0, 0);
	size_t n;

	if (s == NULL || name == NULL || s->domain_max_labels == 0)
		return NULL;
	if (intel_canon_domain(name, len, buf, 0, &n) < 0)
		return NULL;
	starts[nl++] = 0;
	for (i = 0; i < n; i++)
		if (buf[i] == '.') {
			if (nl >= INTEL_MAX_LABELS)
				return NULL;
			starts[nl++] = (uint16_t)(i + 1);
		}
	first = nl > s->domain_max_labels ? nl - s->domain_max_labels : 0;
	for (i = first; i < nl; i++) {
		hs[i] = intel_key_hash(s, tag, buf + starts[i],
				       n - starts[i]);
		__builtin_prefetch(&s->filter[intel_filter_word(s, hs[i])]);
	}
	for (i = first; i < nl; i++) {
		r = intel_probe_h(s, tag, buf + starts[i],
				  n - starts[i], hs[i], now_us);
		if (r != NULL)
			return r;
	}
	return NULL;
}

const struct intel_indicator *intel_lookup_url(const struct intel_set *s,
					       const char *url, size_t len,
					       int64_t now_us)
{
	char buf[INTEL_MAX_VALUE];
	size_t n;

	if (s == NULL || url == NULL || len == 0 || len > INTEL_MAX_VALUE ||
	    intel_url_normalise(url, len, buf, sizeof(buf), &n) < 0)
		return NULL;
	return intel_probe(s, intel_tag(INTEL_URL, 0, 0), buf, n, now_us);
}

const struct intel_indicator *intel_lookup_hash(const struct intel_set *s,
						const char *hex, size_t len,
						int64_t now_us)
{
	char buf[64];
	size_t n;

	if (s == NULL || hex == NULL || len > sizeof(buf) ||
	    intel_canon_hash(hex, len, buf, &n) < 0)
		return NULL;
	return intel_probe(s, intel_tag(INTEL_HASH, 0, 0), buf, n, now_us);
}

const struct intel_indicator *intel_lookup_email(const struct intel_set *s,
						 const char *addr, size_t len,
						 int64_t now_us)
{
	char buf[320];
	size_t n;

	if (s == NULL || addr == NULL || len > sizeof(buf) ||
	    intel_canon_email(addr, len, buf, 0, &n) < 0)
		return NULL;
	return intel_probe(s, intel_tag(INTEL_EMAIL, 0, 0), buf, n, now_us);
}

/* Canonical key of an exact-match type into buf, its length to *n. */
static int intel_canon_exact(enum intel_type t, const char *v, size_t len,
			     char *buf, size_t cap, size_t *n)
{
	if (v == NULL || len == 0 || len > INTEL_MAX_VALUE || len > cap)
		return M_EINVAL;
	switch (t) {
	case INTEL_HASH:
		return intel_canon_hash(v, len, buf, n);
	case INTEL_EMAIL:
		return len > 320 ? M_EINVAL : intel_canon_email(v, len, buf, 0, n);
	case INTEL_URL:
		return intel_url_normalise(v, len, buf, cap, n);
	default:
		return M_EINVAL;
	}
}

#define INTEL_GROUP 16

int intel_lookup_many(const struct intel_set *s, enum intel_type type,
		      const struct intel_query *q, size_t n,
		      const struct intel_indicator **out, int64_t now_us)
{
	char (*buf)[INTEL_MAX_VALUE] = NULL;
	uint64_t h[INTEL_GROUP];
	size_t klen[INTEL_GROUP];
	int rc[INTEL_GROUP];
	uint32_t tag = intel_tag(type, 0, 0);
	size_t g, j, m;
	int ret = 0;

	if (s == NULL || (q == NULL && n > 0) || (out == NULL && n > 0)) {
		ret = M_EINVAL;
		goto out;
	}
	if (type == INTEL_IP || type == INTEL_DOMAIN) {
		for (j = 0; j < n; j++)
			out[j] = type == INTEL_IP ?
				intel_lookup_ip(s, q[j].p, q[j].len, now_us) :
				intel_lookup_domain(s, q[j].p, q[j].len, now_us);
		goto out;
	}
	if (type != INTEL_HASH && type != INTEL_URL && type != INTEL_EMAIL) {
		ret = M_EINVAL;
		goto out;
	}
	buf = malloc(sizeof(*buf) * INTEL_GROUP);
	if (buf == NULL) {
		ret = M_ENOMEM;
		goto out;
	}
	/* A few keys at a time, in three passes, so that their memory
	 * accesses overlap instead of waiting one after the other. */
	for (g = 0; g < n; g += INTEL_GROUP) {
		m = n - g < INTEL_GROUP ? n - g : INTEL_GROUP;
		for (j = 0; j < m; j++) {
			rc[j] = intel_canon_exact(type, q[g + j].p,
						  q[g + j].len, buf[j],
						  INTEL_MAX_VALUE, &klen[j]);
			out[g + j] = NULL;
			if (rc[j] < 0)
				continue;
			h[j] = intel_key_hash(s, tag, buf[j], klen[j]);
			__builtin_prefetch(&s->filter[intel_filter_word(s, h[j])]);
			__builtin_prefetch(&s->slots[h[j] & s->slot_mask]);
		}
		for (j = 0; j < m; j++) {
			const struct intel_slot *sl;
			uint64_t bits;

			if (rc[j] < 0)
				continue;
			bits = intel_filter_bits(h[j]);
			if ((s->filter[intel_filter_word(s, h[j])] & bits) != bits) {
				rc[j] = -1;
				continue;
			}
			sl = &s->slots[h[j] & s->slot_mask];
			if (sl->idx1 != 0)
				__builtin_prefetch(s->pool + sl->koff);
		}
		for (j = 0; j < m; j++)
			if (rc[j] >= 0)
				out[g + j] = intel_probe_h(s, tag, buf[j],
							   klen[j],
							   h[j], now_us);
	}
out:
	free(buf);
	return ret;
}

size_t intel_set_bytes(const struct intel_set *s)
{
	size_t i, total;

	if (s == NULL)
		return 0;
	total = sizeof(*s) + 65536 * sizeof(*s->v4_lens) + s->names.used;
	for (i = 0; i < 4; i++)
		total += s->big[i].size;
	return total;
}
