/*
 * mdns: the common part of the mail DNS interface and the in-memory zone.
 *
 * The zone answers as a recursive resolver would: it follows CNAME chains (at
 * most 8 steps, then TEMPFAIL like a resolver that gives up), says NXDOMAIN
 * for a name it does not hold and NODATA (rcode OK, no records) for a name it
 * holds without the asked type. Names are kept lower-case in a chained hash
 * table, so a large generated zone (benchmarks) answers in constant time.
 */
#include "mail/mdns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define ZONE_BUCKETS 1024
#define CNAME_MAX 8

void mdns_answer_fini(struct mdns_answer *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		free(a->rr[i].data);
	free(a->rr);
	a->rr = NULL;
	a->n = 0;
}

int mdns_name_ok(const char *name)
{
	size_t len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return 0;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (++label > 63) {
			return 0;
		}
	}
	return label > 0;
}

enum mdns_rcode mdns_query(struct mdns *d, const char *name, int type, struct mdns_answer *out)
{
	memset(out, 0, sizeof(*out));
	if (!name || !mdns_name_ok(name)) {
		out->rcode = MDNS_BADNAME;
		return out->rcode;
	}
	if (!d || d->ops->query(d->impl, name, type, out) < 0) {
		mdns_answer_fini(out);
		out->rcode = MDNS_TEMPFAIL;
	}
	return out->rcode;
}

void mdns_prefetch(struct mdns *d, const char *name, int type)
{
	if (d && d->ops->prefetch && name && mdns_name_ok(name))
		d->ops->prefetch(d->impl, name, type);
}

void mdns_free(struct mdns *d)
{
	if (!d)
		return;
	d->ops->free(d->impl);
	free(d);
}

/* ---- the zone ---- */

struct zone_node {
	struct zone_node *next;
	char *name; /* lower case, no trailing dot */
	int timeout;
	size_t n, cap;
	struct mdns_rr *rr;
};

struct zone {
	struct zone_node *b[ZONE_BUCKETS];
	atomic_ulong queries;
};

static char *zone_key(const char *name)
{
	size_t len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	char *k = malloc(len + 1);
	if (!k)
		return NULL;
	for (size_t i = 0; i < len; i++)
		k[i] = (char)tolower((unsigned char)name[i]);
	k[len] = '\0';
	return k;
}

static unsigned zone_hash(const char *k)
{
	unsigned h = 2166136261u;
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 16777619u;
	return h % ZONE_BUCKETS;
}

static struct zone_node *zone_find(const struct zone *z, const char *key)
{
	for (struct zone_node *n = z->b[zone_hash(key)]; n; n = n->next)
		if (strcmp(n->name, key) == 0)
			return n;
	return NULL;
}

static struct zone_node *zone_get(struct zone *z, const char *name)
{
	char *key = zone_key(name);
	if (!key)
		return NULL;
	struct zone_node *n = zone_find(z, key);
	if (n) {
		free(key);
		return n;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		free(key);
		return NULL;
	}
	n->name = key;
	unsigned h = zone_hash(key);
	n->next = z->b[h];
	z->b[h] = n;
	return n;
}

static struct mdns_rr *zone_push(struct zone_node *n)
{
	if (n->n == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 2;
		struct mdns_rr *rr = realloc(n->rr, cap * sizeof(*rr));
		if (!rr)
			return NULL;
		n->rr = rr;
		n->cap = cap;
	}
	struct mdns_rr *r = &n->rr[n->n++];
	memset(r, 0, sizeof(*r));
	return r;
}

static int copy_rr(struct mdns_answer *out, const struct mdns_rr *src)
{
	struct mdns_rr *rr = realloc(out->rr, (out->n + 1) * sizeof(*rr));
	if (!rr)
		return -1;
	out->rr = rr;
	struct mdns_rr *d = &rr[out->n];
	*d = *src;
	d->data = NULL;
	if (src->data) {
		d->data = malloc(src->len + 1);
		if (!d->data)
			return -1;
		memcpy(d->data, src->data, src->len + 1);
	}
	out->n++;
	return 0;
}

static int zone_query(void *impl, const char *name, int type, struct mdns_answer *out)
{
	struct zone *z = impl;
	atomic_fetch_add(&z->queries, 1);
	char *key = zone_key(name);
	if (!key)
		return -1;
	int rc = 0;
	for (int step = 0;; step++) {
		struct zone_node *n = zone_find(z, key);
		if (!n) {
			out->rcode = MDNS_NXDOMAIN;
			break;
		}
		const struct mdns_rr *cname = NULL;
		for (size_t i = 0; i < n->n; i++) {
			if (n->rr[i].type == type) {
				if (copy_rr(out, &n->rr[i]) < 0) {
					rc = -1;
					goto done;
				}
			} else if (n->rr[i].type == MDNS_CNAME) {
				cname = &n->rr[i];
			}
		}
		if (out->n > 0 || !cname || type == MDNS_CNAME) {
			out->rcode = (out->n == 0 && n->timeout) ? MDNS_TEMPFAIL : MDNS_OK;
			break;
		}
		if (step == CNAME_MAX) {
			out->rcode = MDNS_TEMPFAIL;
			break;
		}
		char *next = zone_key(cname->data);
		if (!next) {
			rc = -1;
			break;
		}
		free(key);
		key = next;
	}
done:
	free(key);
	return rc;
}

static void zone_free(void *impl)
{
	struct zone *z = impl;
	for (size_t b = 0; b < ZONE_BUCKETS; b++) {
		struct zone_node *n = z->b[b];
		while (n) {
			struct zone_node *next = n->next;
			for (size_t i = 0; i < n->n; i++)
				free(n->rr[i].data);
			free(n->rr);
			free(n->name);
			free(n);
			n = next;
		}
	}
	free(z);
}

static const struct mdns_ops zone_ops = {zone_query, zone_free, NULL};

struct mdns *mdns_zone_new(void)
{
	struct mdns *d = calloc(1, sizeof(*d));
	struct zone *z = calloc(1, sizeof(*z));
	if (!d || !z) {
		free(d);
		free(z);
		return NULL;
	}
	d->ops = &zone_ops;
	d->impl = z;
	return d;
}

static struct zone_node *zone_of(struct mdns *d, const char *name)
{
	if (!d || d->ops != &zone_ops || !name)
		return NULL;
	return zone_get(d->impl, name);
}

static int set_data(struct mdns_rr *r, const char *text, size_t len)
{
	r->data = malloc(len + 1);
	if (!r->data)
		return -1;
	memcpy(r->data, text, len);
	r->data[len] = '\0';
	r->len = len;
	return 0;
}

int mdns_zone_add_txt(struct mdns *d, const char *name, const char *text, size_t len)
{
	struct zone_node *n = zone_of(d, name);
	struct mdns_rr *r = n ? zone_push(n) : NULL;
	if (!r)
		return -1;
	r->type = MDNS_TXT;
	if (set_data(r, text, len) < 0) {
		n->n--;
		return -1;
	}
	return 0;
}

int mdns_zone_add_addr(struct mdns *d, const char *name, const char *ip)
{
	uint8_t addr[16] = {0};
	int type;
	if (inet_pton(AF_INET, ip, addr) == 1)
		type = MDNS_A;
	else if (inet_pton(AF_INET6, ip, addr) == 1)
		type = MDNS_AAAA;
	else
		return -1;
	struct zone_node *n = zone_of(d, name);
	struct mdns_rr *r = n ? zone_push(n) : NULL;
	if (!r)
		return -1;
	r->type = type;
	memcpy(r->addr, addr, sizeof(addr));
	return 0;
}

int mdns_zone_add_mx(struct mdns *d, const char *name, unsigned pref, const char *host)
{
	struct zone_node *n = zone_of(d, name);
	struct mdns_rr *r = n ? zone_push(n) : NULL;
	if (!r)
		return -1;
	r->type = MDNS_MX;
	r->pref = pref;
	size_t len = strlen(host);
	if (len > 1 && host[len - 1] == '.')
		len--;
	if (set_data(r, host, len) < 0) {
		n->n--;
		return -1;
	}
	return 0;
}

int mdns_zone_add_name(struct mdns *d, const char *name, int type, const char *target)
{
	if (type != MDNS_PTR && type != MDNS_CNAME)
		return -1;
	struct zone_node *n = zone_of(d, name);
	struct mdns_rr *r = n ? zone_push(n) : NULL;
	if (!r)
		return -1;
	r->type = type;
	size_t len = strlen(target);
	if (len > 1 && target[len - 1] == '.')
		len--;
	if (set_data(r, target, len) < 0) {
		n->n--;
		return -1;
	}
	return 0;
}

int mdns_zone_add_empty(struct mdns *d, const char *name)
{
	return zone_of(d, name) ? 0 : -1;
}

int mdns_zone_set_timeout(struct mdns *d, const char *name)
{
	struct zone_node *n = zone_of(d, name);
	if (!n)
		return -1;
	n->timeout = 1;
	return 0;
}

unsigned long mdns_zone_queries(const struct mdns *d)
{
	if (!d || d->ops != &zone_ops)
		return 0;
	struct zone *z = d->impl;
	return atomic_load(&z->queries);
}
