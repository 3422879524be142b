/*
 * Mitigation rules as values: prefixes, the canonical form of a rule, its
 * key (its identity in the store and at the speaker), the route a back-end
 * announces for it, and the difference between two sets of routes. All
 * pure functions, so the manager, the back-ends' parsers and the unit tests
 * agree on one spelling of everything.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "ddos/mitig_int.h"

/* ---- prefixes ---- */

static void prefix_mask(struct mitig_prefix *p)
{
	size_t bytes = p->af == 4 ? 4 : 16;

	for (size_t i = 0; i < bytes; i++) {
		int keep = (int)p->len - (int)i * 8;
		if (keep >= 8)
			continue;
		p->a[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
	}
	for (size_t i = bytes; i < 16; i++)
		p->a[i] = 0;
}

int mitig_prefix_set(struct mitig_prefix *p, int af, const uint8_t *addr, int len)
{
	int max = af == 4 ? 32 : 128;

	memset(p, 0, sizeof(*p));
	if ((af != 4 && af != 6) || len < 0 || len > max)
		return M_EINVAL;
	p->af = (uint8_t)af;
	p->len = (uint8_t)len;
	memcpy(p->a, addr, af == 4 ? 4 : 16);
	prefix_mask(p);
	return M_OK;
}

int mitig_prefix_parse(const char *s, struct mitig_prefix *out)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	long len;
	struct mitig_prefix p;

	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(addr))
		return M_EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	memset(&p, 0, sizeof(p));
	if (inet_pton(AF_INET, addr, p.a) == 1)
		p.af = 4;
	else if (inet_pton(AF_INET6, addr, p.a) == 1)
		p.af = 6;
	else
		return M_EINVAL;
	len = p.af == 4 ? 32 : 128;
	if (slash) {
		char *end;
		errno = 0;
		if (slash[1] < '0' || slash[1] > '9')
			return M_EINVAL;
		len = strtol(slash + 1, &end, 10);
		if (errno || *end || len < 0 || len > (p.af == 4 ? 32 : 128))
			return M_EINVAL;
	}
	p.len = (uint8_t)len;
	{
		struct mitig_prefix masked = p;
		prefix_mask(&masked);
		if (memcmp(masked.a, p.a, sizeof(p.a)) != 0)
			return M_EINVAL;   /* host bits set: say what was meant */
	}
	*out = p;
	return M_OK;
}

const char *mitig_prefix_str(const struct mitig_prefix *p, char *out, size_t outsz)
{
	char a[INET6_ADDRSTRLEN];

	if (!inet_ntop(p->af == 4 ? AF_INET : AF_INET6, p->a, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(out, outsz, "%s/%u", a, p->len);
	return out;
}

static int bits_equal(const uint8_t *x, const uint8_t *y, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(x, y, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((x[whole] ^ y[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

int mitig_prefix_contains(const struct mitig_prefix *outer, const struct mitig_prefix *inner)
{
	return outer->af == inner->af && outer->len <= inner->len &&
	       bits_equal(outer->a, inner->a, outer->len);
}

int mitig_prefix_overlaps(const struct mitig_prefix *a, const struct mitig_prefix *b)
{
	return mitig_prefix_contains(a, b) || mitig_prefix_contains(b, a);
}

/* ---- names ---- */

const char *mitig_action_name(enum mitig_action a)
{
	switch (a) {
	case MITIG_BLACKHOLE: return "blackhole";
	case MITIG_DISCARD: return "discard";
	case MITIG_RATELIMIT: return "ratelimit";
	}
	return "?";
}

int mitig_action_parse(const char *s, enum mitig_action *out)
{
	static const struct { const char *name; enum mitig_action a; } names[] = {
		{ "blackhole", MITIG_BLACKHOLE }, { "rtbh", MITIG_BLACKHOLE },
		{ "discard", MITIG_DISCARD }, { "flowspec-discard", MITIG_DISCARD },
		{ "drop", MITIG_DISCARD },
		{ "ratelimit", MITIG_RATELIMIT }, { "rate-limit", MITIG_RATELIMIT },
		{ "flowspec-ratelimit", MITIG_RATELIMIT }, { "limit", MITIG_RATELIMIT },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*out = names[i].a;
			return M_OK;
		}
	}
	return M_EINVAL;
}

int mitig_proto_parse(const char *s, uint8_t *out)
{
	static const struct { const char *name; uint8_t p; } names[] = {
		{ "icmp", 1 }, { "tcp", 6 }, { "udp", 17 }, { "gre", 47 }, { "esp", 50 },
		{ "icmpv6", 58 }, { "ipv6-icmp", 58 }, { "sctp", 132 },
	};
	char *end;
	long v;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*out = names[i].p;
			return M_OK;
		}
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || *end || errno || v < 1 || v > 255)
		return M_EINVAL;
	*out = (uint8_t)v;
	return M_OK;
}

/* ---- rules ---- */

static int cmp_u16(const void *a, const void *b)
{
	uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;
	return (x > y) - (x < y);
}

static int why_set(char *why, size_t whysz, const char *msg)
{
	if (why && whysz)
		snprintf(why, whysz, "%s", msg);
	return M_EINVAL;
}

int mitig_rule_check(struct mitig_rule *r, char *why, size_t whysz)
{
	size_t n = 0;

	if (r->action != MITIG_BLACKHOLE && r->action != MITIG_DISCARD &&
	    r->action != MITIG_RATELIMIT)
		return why_set(why, whysz, "unknown action");
	if ((r->dst.af != 4 && r->dst.af != 6) || r->dst.len > (r->dst.af == 4 ? 32 : 128))
		return why_set(why, whysz, "no target prefix");
	prefix_mask(&r->dst);
	if (r->action == MITIG_BLACKHOLE) {
		/* A blackhole drops everything to the prefix: a match means nothing. */
		r->proto = 0;
		r->nsport = 0;
		memset(r->sport, 0, sizeof(r->sport));
		r->len_min = r->len_max = 0;
		r->rate = 0;
		return M_OK;
	}
	if (r->nsport > MITIG_MAX_PORTS)
		return why_set(why, whysz, "too many source ports (at most 8)");
	if (r->nsport && r->proto != 6 && r->proto != 17 && r->proto != 132)
		return why_set(why, whysz, "source ports need protocol tcp, udp or sctp");
	qsort(r->sport, r->nsport, sizeof(r->sport[0]), cmp_u16);
	for (size_t i = 0; i < r->nsport; i++)
		if (i == 0 || r->sport[i] != r->sport[n - 1])
			r->sport[n++] = r->sport[i];
	for (size_t i = n; i < MITIG_MAX_PORTS; i++)
		r->sport[i] = 0;
	r->nsport = (uint8_t)n;
	if (r->len_min && !r->len_max)
		r->len_max = 65535;
	if (r->len_max && r->len_min > r->len_max)
		return why_set(why, whysz, "packet length: minimum above maximum");
	if (r->action == MITIG_DISCARD) {
		r->rate = 0;
	} else if (r->rate == 0 || r->rate > (uint64_t)1000000000000) {
		return why_set(why, whysz, "rate-limit needs a rate of 1 to 10^12 bytes/s");
	}
	return M_OK;
}

int mitig_rule_key(const struct mitig_rule *r, char *out, size_t outsz)
{
	char p[64];
	struct buf b;
	int rc;

	buf_init(&b, outsz);
	mitig_prefix_str(&r->dst, p, sizeof(p));
	if (r->action == MITIG_BLACKHOLE) {
		rc = buf_printf(&b, "blackhole %s", p);
	} else {
		rc = buf_printf(&b, "filter %s", p);
		if (rc == 0 && r->proto)
			rc = buf_printf(&b, " proto %u", r->proto);
		for (size_t i = 0; rc == 0 && i < r->nsport; i++)
			rc = buf_printf(&b, "%s%u", i ? "," : " sport ", r->sport[i]);
		if (rc == 0 && r->len_max)
			rc = buf_printf(&b, " length %u-%u", r->len_min, r->len_max);
	}
	if (rc == 0 && b.len < outsz) {
		memcpy(out, b.p, b.len);
		out[b.len] = '\0';
	} else if (rc == 0) {
		rc = M_ELIMIT;
	}
	buf_fini(&b);
	return rc;
}

static int parse_u(const char *s, const char **end, unsigned long max, unsigned long *v)
{
	char *e;

	errno = 0;
	if (*s < '0' || *s > '9')
		return M_EPARSE;
	*v = strtoul(s, &e, 10);
	if (errno || *v > max)
		return M_EPARSE;
	*end = e;
	return M_OK;
}

int mitig_key_parse(const char *key, struct mitig_rule *out)
{
	char word[64];
	const char *s = key, *sp;
	unsigned long v;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (strncmp(s, "blackhole ", 10) == 0) {
		out->action = MITIG_BLACKHOLE;
		s += 10;
	} else if (strncmp(s, "filter ", 7) == 0) {
		out->action = MITIG_DISCARD;
		s += 7;
	} else {
		return M_EPARSE;
	}
	sp = strchr(s, ' ');
	n = sp ? (size_t)(sp - s) : strlen(s);
	if (n >= sizeof(word))
		return M_EPARSE;
	memcpy(word, s, n);
	word[n] = '\0';
	if (mitig_prefix_parse(word, &out->dst) < 0)
		return M_EPARSE;
	s += n;
	while (*s == ' ' && out->action != MITIG_BLACKHOLE) {
		s++;
		if (strncmp(s, "proto ", 6) == 0) {
			if (parse_u(s + 6, &s, 255, &v) < 0 || v == 0)
				return M_EPARSE;
			out->proto = (uint8_t)v;
		} else if (strncmp(s, "sport ", 6) == 0) {
			s += 6;
			do {
				if (*s == ',')
					s++;
				if (out->nsport >= MITIG_MAX_PORTS || parse_u(s, &s, 65535, &v) < 0)
					return M_EPARSE;
				out->sport[out->nsport++] = (uint16_t)v;
			} while (*s == ',');
		} else if (strncmp(s, "length ", 7) == 0) {
			if (parse_u(s + 7, &s, 65535, &v) < 0 || *s != '-')
				return M_EPARSE;
			out->len_min = (uint16_t)v;
			if (parse_u(s + 1, &s, 65535, &v) < 0)
				return M_EPARSE;
			out->len_max = (uint16_t)v;
		} else {
			return M_EPARSE;
		}
	}
	if (*s)
		return M_EPARSE;
	return mitig_rule_check(out, NULL, 0) < 0 ? M_EPARSE : M_OK;
}

/* ---- routes ---- */

void mitig_comm_str(uint32_t c, char *out, size_t outsz)
{
	snprintf(out, outsz, "%u:%u", c >> 16, c & 0xffff);
}

uint32_t mitig_rate_bits(const struct mitig_rule *r)
{
	float f = r->action == MITIG_RATELIMIT ? (float)r->rate : 0.0f;
	uint32_t bits;

	memcpy(&bits, &f, sizeof(bits));
	return bits;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* The fingerprint: the key and what is announced with it. Communities are
 * sorted: a speaker may hand them back in another order. */
static int route_fp(const struct mitig_rule *r, const char *key, const struct mitig_prefix *nh,
		    const uint32_t *comm, size_t ncomm, char *out, size_t outsz)
{
	uint32_t c[MITIG_MAX_COMMUNITIES];
	char s[64];
	int n;

	if (r->action == MITIG_BLACKHOLE) {
		size_t used;
		if (ncomm > MITIG_MAX_COMMUNITIES)
			return M_ELIMIT;
		if (ncomm)
			memcpy(c, comm, ncomm * sizeof(*c));
		qsort(c, ncomm, sizeof(*c), cmp_u32);
		if (nh && nh->af) {
			char a[INET6_ADDRSTRLEN];
			inet_ntop(nh->af == 4 ? AF_INET : AF_INET6, nh->a, a, sizeof(a));
			n = snprintf(out, outsz, "%s next-hop %s community", key, a);
		} else {
			n = snprintf(out, outsz, "%s community", key);
		}
		if (n < 0 || (size_t)n >= outsz)
			return M_ELIMIT;
		used = (size_t)n;
		for (size_t i = 0; i < ncomm; i++) {
			mitig_comm_str(c[i], s, sizeof(s));
			n = snprintf(out + used, outsz - used, "%s%s", i ? "," : " ", s);
			if (n < 0 || (size_t)n >= outsz - used)
				return M_ELIMIT;
			used += (size_t)n;
		}
		return M_OK;
	}
	if (r->action == MITIG_DISCARD)
		n = snprintf(out, outsz, "%s then discard", key);
	else
		n = snprintf(out, outsz, "%s then rate-limit %llu", key, (unsigned long long)r->rate);
	return n < 0 || (size_t)n >= outsz ? M_ELIMIT : M_OK;
}

int mitig_route_make(const struct mitig_config *cfg, const struct mitig_rule *r,
		     struct mitig_route *out)
{
	const struct mitig_prefix *nh = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	out->rule = *r;
	if ((rc = mitig_rule_key(r, out->key, sizeof(out->key))) < 0)
		return rc;
	if (cfg->kind == MITIG_BE_NFTABLES)
		return route_fp(r, out->key, NULL, NULL, 0, out->fp, sizeof(out->fp));
	if (r->action == MITIG_BLACKHOLE)
		nh = r->dst.af == 4 ? &cfg->nh4 : &cfg->nh6;
	return route_fp(r, out->key, nh, cfg->comm, cfg->ncomm, out->fp, sizeof(out->fp));
}

int mitig_route_from_speaker(const struct mitig_rule *r, const struct mitig_prefix *nh,
			     const uint32_t *comm, size_t ncomm, struct mitig_route *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	out->rule = *r;
	if ((rc = mitig_rule_key(r, out->key, sizeof(out->key))) < 0)
		return rc;
	return route_fp(r, out->key, nh, comm, ncomm, out->fp, sizeof(out->fp));
}

int mitig_routes_push(struct mitig_route **v, size_t *n, size_t max,
		      const struct mitig_route *r)
{
	struct mitig_route *nv;

	if (*n >= max)
		return M_ELIMIT;
	if (*n == 0 || (*n >= 8 && (*n & (*n - 1)) == 0)) {   /* capacity 8, 16, 32... */
		size_t cap = *n ? *n * 2 : 8;
		nv = realloc(*v, cap * sizeof(*nv));
		if (!nv)
			return M_ENOMEM;
		*v = nv;
	}
	(*v)[(*n)++] = *r;
	return M_OK;
}

/* ---- diff ---- */

static int cmp_route_ptr(const void *a, const void *b)
{
	const struct mitig_route *x = *(const struct mitig_route *const *)a;
	const struct mitig_route *y = *(const struct mitig_route *const *)b;
	return strcmp(x->key, y->key);
}

static const struct mitig_route **sorted(const struct mitig_route *v, size_t n)
{
	const struct mitig_route **p = malloc((n ? n : 1) * sizeof(*p));

	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i++)
		p[i] = &v[i];
	qsort(p, n, sizeof(*p), cmp_route_ptr);
	return p;
}

int mitig_diff_compute(const struct mitig_route *desired, size_t nd,
		       const struct mitig_route *announced, size_t na,
		       struct mitig_diff *out)
{
	const struct mitig_route **d, **a;
	size_t i = 0, j = 0, lim = nd + na + 1;
	int rc = M_OK;

	memset(out, 0, sizeof(*out));
	d = sorted(desired, nd);
	a = sorted(announced, na);
	if (!d || !a) {
		free(d);
		free(a);
		return M_ENOMEM;
	}
	while (rc == 0 && (i < nd || j < na)) {
		int c = i >= nd ? 1 : j >= na ? -1 : strcmp(d[i]->key, a[j]->key);
		if (c < 0) {
			rc = mitig_routes_push(&out->announce, &out->nannounce, lim, d[i++]);
		} else if (c > 0) {
			rc = mitig_routes_push(&out->withdraw, &out->nwithdraw, lim, a[j++]);
			while (j < na && strcmp(a[j]->key, a[j - 1]->key) == 0)
				j++;
		} else {
			/* Duplicates at the speaker (one key twice) count once. */
			if (strcmp(d[i]->fp, a[j]->fp) != 0)
				rc = mitig_routes_push(&out->announce, &out->nannounce, lim, d[i]);
			else
				out->unchanged++;
			i++;
			j++;
			while (j < na && strcmp(a[j]->key, a[j - 1]->key) == 0)
				j++;
		}
	}
	free(d);
	free(a);
	if (rc < 0)
		mitig_diff_fini(out);
	return rc;
}

void mitig_diff_fini(struct mitig_diff *d)
{
	free(d->announce);
	free(d->withdraw);
	memset(d, 0, sizeof(*d));
}
