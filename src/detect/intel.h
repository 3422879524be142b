/*
 * Threat-intelligence indicator store. Why: every event field that can carry
 * an indicator (addresses, domains, URLs, hashes, e-mail addresses) is checked
 * against millions of indicators on the hot path, so a set is built aside,
 * frozen, and then only read: lookups cost a bounded number of hash probes
 * whatever the number of indicators, and a reload swaps the whole set while
 * readers keep the old one through a reference count.
 *
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, and prefixes of at least /96
 * inside ::ffff:0:0/96) are treated as the IPv4 address or prefix, both when
 * added and when looked up. Shorter IPv6 prefixes (e.g. ::/0) never match an
 * IPv4 address.
 */
#ifndef MAMORI_DETECT_INTEL_H
#define MAMORI_DETECT_INTEL_H

#include <stddef.h>
#include <stdint.h>

#define INTEL_MAX_INDICATORS 50000000u
#define INTEL_MAX_VALUE 2048u
#define INTEL_MAX_SOURCES 4096u
#define INTEL_MAX_LABELS 127u

enum intel_type {
	INTEL_IP = 1,    /* IPv4/IPv6 address or CIDR range */
	INTEL_DOMAIN,    /* matches the name and every subdomain */
	INTEL_URL,       /* exact match on the normalised form */
	INTEL_HASH,      /* MD5, SHA-1 or SHA-256 in hex */
	INTEL_EMAIL,
};

struct intel_meta {
	const char *source;   /* feed name (< 256 bytes) or NULL; copied */
	int64_t first_seen;   /* microseconds since the epoch, 0 = unknown */
	int64_t last_seen;
	int64_t valid_until;  /* 0 = never expires */
	uint8_t confidence;   /* 0-100 */
};

struct intel_indicator {
	enum intel_type type;
	uint8_t family;       /* INTEL_IP: 4 or 6 */
	uint8_t prefix_len;   /* INTEL_IP: 32/128 for one address */
	uint32_t value_len;
	const char *value;    /* canonical form, NUL-terminated */
	struct intel_meta meta;
	uint8_t addr[16];     /* INTEL_IP: network, host bits cleared */
};

struct intel_builder;
struct intel_set;

/* A new, empty builder owned by the caller (intel_builder_finish or
 * intel_builder_free releases it). NULL when out of memory. */
struct intel_builder *intel_builder_new(void);
void intel_builder_free(struct intel_builder *b);

/* Validates and copies one indicator. M_EINVAL for a malformed value (the
 * rejection is counted), M_ELIMIT past INTEL_MAX_INDICATORS or
 * INTEL_MAX_SOURCES, M_ENOMEM. A duplicate value is kept once: the copy that
 * expires last wins. meta may be NULL. */
int intel_builder_add(struct intel_builder *b, enum intel_type type,
		      const char *value, size_t len,
		      const struct intel_meta *meta);
size_t intel_builder_rejected(const struct intel_builder *b);

/* Freezes the builder into a set and frees the builder in every case. The
 * caller owns the one reference of the returned set; NULL when out of
 * memory. */
struct intel_set *intel_builder_finish(struct intel_builder *b);

/* Reference counting, safe across threads. The last unref frees the set. */
struct intel_set *intel_set_ref(struct intel_set *s);
void intel_set_unref(struct intel_set *s);
/* Distinct indicators held. */
size_t intel_set_count(const struct intel_set *s);

/* Lookups: the matching indicator, or NULL. now_us > 0 hides indicators
 * whose valid_until is set and earlier; 0 does not check expiry. The
 * returned pointer lives as long as the caller's reference to the set. */
const struct intel_indicator *intel_lookup_ip(const struct intel_set *s,
					      const char *text, size_t len,
					      int64_t now_us);
const struct intel_indicator *intel_lookup_domain(const struct intel_set *s,
						  const char *name, size_t len,
						  int64_t now_us);
const struct intel_indicator *intel_lookup_url(const struct intel_set *s,
					       const char *url, size_t len,
					       int64_t now_us);
const struct intel_indicator *intel_lookup_hash(const struct intel_set *s,
						const char *hex, size_t len,
						int64_t now_us);
const struct intel_indicator *intel_lookup_email(const struct intel_set *s,
						 const char *addr, size_t len,
						 int64_t now_us);

/* One key of a batch. */
struct intel_query {
	const char *p;
	size_t len;
};

/* Looks up n keys of one type, out[i] the match of q[i] or NULL, exactly
 * as the single lookups would. Keys are processed a few at a time (all
 * canonicalised and hashed, then all their filter words read, then all
 * their table lines), so that their memory accesses overlap: several times
 * faster than one by one when the set is larger than the caches. 0, or
 * M_EINVAL for a NULL set or arrays or an unknown type (out then
 * undefined). M_ENOMEM is no longer returned. */
int intel_lookup_many(const struct intel_set *s, enum intel_type type,
		      const struct intel_query *q, size_t n,
		      const struct intel_indicator **out, int64_t now_us);

/* One key of a mixed batch: the type it is looked up as, and its bytes. */
struct intel_typed_query {
	enum intel_type type;
	const char *p;
	size_t len;
};

/* Like intel_lookup_many, for keys of any types: the indicator fields of
 * one event, or of a whole batch of events, in one call. out[i] is what
 * the single lookup of q[i] as q[i].type returns (NULL for a NULL p or an
 * unknown type). 0, or M_EINVAL for a NULL set or arrays. Reads the set
 * only; the stack holds about 28 KiB of work space (7 KiB for a single
 * lookup). */
int intel_lookup_batch(const struct intel_set *s,
		       const struct intel_typed_query *q, size_t n,
		       const struct intel_indicator **out, int64_t now_us);

/* "ip", "domain", "url", "hash" or "email"; "?" for anything else. */
const char *intel_type_str(enum intel_type t);

/* Bytes held by the frozen set (tables, indicators, values, names). */
size_t intel_set_bytes(const struct intel_set *s);

/* URL normalisation shared by add and lookup (intel_url.c): lower-case
 * scheme and host, "http://" assumed when no scheme is given, default port
 * dropped, fragment dropped, unreserved percent-escapes decoded and the
 * others upper-cased, dot segments removed, empty path made "/". Writes at
 * most cap bytes (no NUL) to out; M_ELIMIT when it does not fit, M_EINVAL
 * for an empty or hostless URL. */
int intel_url_normalise(const char *in, size_t len, char *out, size_t cap,
			size_t *out_len);

/* 1 when intel_url_normalise would return the URL unchanged (given room
 * for it), 0 when it would change it or refuse it: one pass without a
 * copy, so that an already normal URL, the usual case in logs, is hashed
 * where it lies. Never 1 for a URL the normaliser would change. */
int intel_url_is_normal(const char *in, size_t len);

#endif
