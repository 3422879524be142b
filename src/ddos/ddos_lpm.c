/*
 * Longest-prefix match: a hash table per prefix length, longest first,
 * behind a filter bitmap (see ddos_lpm.h for why this shape).
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ddos/ddos_lpm.h"

#define LPM_MAX (1u << 20)

struct lpm_ent {
	uint64_t hi, lo;
	uint32_t value;
	uint8_t len;
	uint8_t used;
};

struct lpm_level {
	unsigned len;
	uint32_t mask;             /* slots - 1 */
	struct lpm_ent *slot;
};

struct ddos_lpm {
	struct lpm_ent *ent;       /* as added */
	size_t n, cap;
	struct lpm_level lv[129];  /* longest first; nlv used */
	unsigned nlv;
	uint64_t f4[1024];         /* bit per a[12..13] of v4-mapped addresses */
	uint64_t f6[1024];         /* bit per a[0..1] of the others */
	int built;
};

static const uint8_t v4pre[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

struct ddos_lpm *ddos_lpm_new(void)
{
	return calloc(1, sizeof(struct ddos_lpm));
}

void ddos_lpm_free(struct ddos_lpm *l)
{
	if (!l)
		return;
	for (unsigned i = 0; i < l->nlv; i++)
		free(l->lv[i].slot);
	free(l->ent);
	free(l);
}

int ddos_lpm_add(struct ddos_lpm *l, const uint8_t a[16], unsigned plen, uint32_t value)
{
	struct lpm_ent e = { 0 };

	if (plen > 128)
		return M_EINVAL;
	e.hi = ddos_be64(a);
	e.lo = ddos_be64(a + 8);
	ddos_mask(&e.hi, &e.lo, plen);
	e.len = (uint8_t)plen;
	e.value = value;
	e.used = 1;
	if (l->n >= LPM_MAX)
		return M_ELIMIT;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		struct lpm_ent *ne = realloc(l->ent, nc * sizeof(*ne));
		if (!ne)
			return M_ENOMEM;
		l->ent = ne;
		l->cap = nc;
	}
	l->ent[l->n++] = e;
	l->built = 0;
	return M_OK;
}

static void bits_set(uint64_t *f, unsigned from, unsigned to)
{
	for (unsigned b = from; b <= to; b++)
		f[b / 64] |= 1ull << (b % 64);
}

/* The filter bits a prefix may match: 16 bits of the v4 address for
 * v4-mapped addresses, the first 16 bits for the others. */
static void filter_add(struct ddos_lpm *l, const struct lpm_ent *e)
{
	uint8_t a[16];
	unsigned first;

	for (int i = 0; i < 8; i++) {
		a[i] = (uint8_t)(e->hi >> (56 - 8 * i));
		a[8 + i] = (uint8_t)(e->lo >> (56 - 8 * i));
	}
	/* Does the prefix reach into ::ffff:0:0/96? */
	if (e->len <= 96) {
		unsigned full = e->len / 8, rem = e->len % 8;
		int inside = memcmp(a, v4pre, full) == 0 &&
			(rem == 0 || ((a[full] ^ v4pre[full]) & (0xffu << (8 - rem)) & 0xff) == 0);
		if (inside)
			bits_set(l->f4, 0, 65535);
	} else if (memcmp(a, v4pre, 12) == 0) {
		unsigned v4len = e->len - 96;
		first = (unsigned)a[12] << 8 | a[13];
		if (v4len >= 16)
			bits_set(l->f4, first, first);
		else
			bits_set(l->f4, first, first | (0xffffu >> v4len));
	}
	first = (unsigned)a[0] << 8 | a[1];
	if (e->len >= 16)
		bits_set(l->f6, first, first);
	else
		bits_set(l->f6, first, first | (0xffffu >> e->len));
}

int ddos_lpm_build(struct ddos_lpm *l)
{
	unsigned count[129] = { 0 };

	for (unsigned i = 0; i < l->nlv; i++)
		free(l->lv[i].slot);
	l->nlv = 0;
	memset(l->f4, 0, sizeof(l->f4));
	memset(l->f6, 0, sizeof(l->f6));
	for (size_t i = 0; i < l->n; i++) {
		count[l->ent[i].len]++;
		filter_add(l, &l->ent[i]);
	}
	for (int len = 128; len >= 0; len--) {
		struct lpm_level *lv;
		uint32_t slots = 4;
		if (!count[len])
			continue;
		while (slots < count[len] * 2)
			slots *= 2;
		lv = &l->lv[l->nlv];
		lv->len = (unsigned)len;
		lv->mask = slots - 1;
		if (!(lv->slot = calloc(slots, sizeof(*lv->slot))))
			return M_ENOMEM;
		l->nlv++;
		for (size_t i = 0; i < l->n; i++) {
			const struct lpm_ent *e = &l->ent[i];
			uint32_t h;
			if (e->len != len)
				continue;
			h = (uint32_t)ddos_hash2(e->hi, e->lo, len) & lv->mask;
			while (lv->slot[h].used) {
				if (lv->slot[h].hi == e->hi && lv->slot[h].lo == e->lo)
					return M_EINVAL;   /* the same prefix twice */
				h = (h + 1) & lv->mask;
			}
			lv->slot[h] = *e;
		}
	}
	l->built = 1;
	return M_OK;
}

uint32_t ddos_lpm_lookup_len(const struct ddos_lpm *l, const uint8_t a[16], unsigned *plen)
{
	uint64_t hi, lo;
	unsigned b;

	if (!l || !l->nlv)
		return DDOS_LPM_NONE;
	if (memcmp(a, v4pre, 12) == 0) {
		b = (unsigned)a[12] << 8 | a[13];
		if (!(l->f4[b / 64] >> (b % 64) & 1))
			return DDOS_LPM_NONE;
	} else {
		b = (unsigned)a[0] << 8 | a[1];
		if (!(l->f6[b / 64] >> (b % 64) & 1))
			return DDOS_LPM_NONE;
	}
	hi = ddos_be64(a);
	lo = ddos_be64(a + 8);
	for (unsigned i = 0; i < l->nlv; i++) {
		const struct lpm_level *lv = &l->lv[i];
		uint64_t mh = hi, ml = lo;
		uint32_t h;
		ddos_mask(&mh, &ml, lv->len);
		h = (uint32_t)ddos_hash2(mh, ml, lv->len) & lv->mask;
		while (lv->slot[h].used) {
			if (lv->slot[h].hi == mh && lv->slot[h].lo == ml) {
				if (plen)
					*plen = lv->len;
				return lv->slot[h].value;
			}
			h = (h + 1) & lv->mask;
		}
	}
	return DDOS_LPM_NONE;
}

uint32_t ddos_lpm_lookup(const struct ddos_lpm *l, const uint8_t a[16])
{
	return ddos_lpm_lookup_len(l, a, NULL);
}

int ddos_lpm_overlaps(const struct ddos_lpm *l, const uint8_t a[16], unsigned plen)
{
	uint64_t hi = ddos_be64(a), lo = ddos_be64(a + 8);

	if (!l)
		return 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct lpm_ent *e = &l->ent[i];
		unsigned m = e->len < plen ? e->len : plen;
		uint64_t h1 = hi, l1 = lo, h2 = e->hi, l2 = e->lo;
		ddos_mask(&h1, &l1, m);
		ddos_mask(&h2, &l2, m);
		if (h1 == h2 && l1 == l2)
			return 1;
	}
	return 0;
}

size_t ddos_lpm_count(const struct ddos_lpm *l)
{
	return l ? l->n : 0;
}

size_t ddos_lpm_memory(const struct ddos_lpm *l)
{
	size_t m;

	if (!l)
		return 0;
	m = sizeof(*l) + l->cap * sizeof(struct lpm_ent);
	for (unsigned i = 0; i < l->nlv; i++)
		m += ((size_t)l->lv[i].mask + 1) * sizeof(struct lpm_ent);
	return m;
}
