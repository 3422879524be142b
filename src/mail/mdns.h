/*
 * mdns: the DNS that the mail engines (SPF, DKIM, DMARC, ARC) ask.
 *
 * Why one small interface: the engines must run the same code against the
 * real resolver (libunbound, with its cache, in the milter) and against an
 * in-memory zone (the conformance harness and unit tests, where a name can be
 * made to time out on purpose). A resolver is a table of two functions.
 *
 * Answers are what a recursive resolver returns: CNAME chains are followed,
 * TXT strings of one record are concatenated (RFC 7208 3.3), and the result
 * is one of four outcomes so that a lookup failure can never be mistaken for
 * "no record" (a failure gives temperror, never a pass or a fail).
 *
 * Thread safety: mdns_query may be called from many threads at once on one
 * resolver (the milter runs one thread per SMTP connection).
 */
#ifndef MAMORI_MAIL_MDNS_H
#define MAMORI_MAIL_MDNS_H

#include <stddef.h>
#include <stdint.h>

/* Record types, as on the wire. */
enum mdns_type {
	MDNS_A = 1,
	MDNS_CNAME = 5,
	MDNS_PTR = 12,
	MDNS_MX = 15,
	MDNS_TXT = 16,
	MDNS_AAAA = 28,
};

enum mdns_rcode {
	MDNS_OK = 0,       /* the name exists; n may be 0 (no data of this type) */
	MDNS_NXDOMAIN = 1, /* the name does not exist */
	MDNS_TEMPFAIL = 2, /* timeout, SERVFAIL, resolver trouble: try later */
	MDNS_BADNAME = 3,  /* not a valid domain name (empty label, label > 63, > 253) */
};

struct mdns_rr {
	int type;
	/* A: 4 bytes, AAAA: 16 bytes in addr. */
	uint8_t addr[16];
	/* MX preference. */
	unsigned pref;
	/* TXT: the record's strings concatenated, NUL-terminated, length in len
	 * (may contain NUL bytes). MX, PTR, CNAME: the target name without the
	 * trailing dot. */
	char *data;
	size_t len;
};

/* One answer, owned by the caller after mdns_query; free with
 * mdns_answer_fini. */
struct mdns_answer {
	enum mdns_rcode rcode;
	size_t n;
	struct mdns_rr *rr;
};

struct mdns_ops {
	/* Fill out (already zeroed). Returns 0, or a negative value on an
	 * internal failure (then out->rcode is MDNS_TEMPFAIL). */
	int (*query)(void *impl, const char *name, int type, struct mdns_answer *out);
	void (*free)(void *impl);
	/* Optional: start resolving name/type now without waiting, so that a
	 * later mdns_query finds it in the cache (NULL: nothing to do). */
	void (*prefetch)(void *impl, const char *name, int type);
};

struct mdns {
	const struct mdns_ops *ops;
	void *impl;
};

/* Ask for name/type. The name may end in a dot. Always fills out: on any
 * failure out->rcode is MDNS_TEMPFAIL (or MDNS_BADNAME for a name that is
 * not a domain name). Returns out->rcode. */
enum mdns_rcode mdns_query(struct mdns *d, const char *name, int type, struct mdns_answer *out);
void mdns_answer_fini(struct mdns_answer *a);

/* 1 when name is a syntactically valid domain name for a query. */
int mdns_name_ok(const char *name);

void mdns_free(struct mdns *d);

/* Asks for name/type in the background (libunbound: an async query whose
 * answer only fills the cache). The checks of one message need a handful
 * of independent records (SPF, DKIM keys, DMARC); asked at once they cost
 * one round trip, not one each. Does nothing for the in-memory zone. */
void mdns_prefetch(struct mdns *d, const char *name, int type);

/* ---- in-memory zone (tests, conformance harness, offline checks) ---- */

/* An empty zone: every name is NXDOMAIN until records are added. Names are
 * case-insensitive. Not for use from several threads while being filled. */
struct mdns *mdns_zone_new(void);
/* Add a record. TXT: text of len bytes (the strings already joined). A/AAAA:
 * the address in text form ("192.0.2.1", "2001:db8::1"). MX: pref and host.
 * PTR, CNAME: the target name. Return 0 or -1 (bad address, no memory). */
int mdns_zone_add_txt(struct mdns *z, const char *name, const char *text, size_t len);
int mdns_zone_add_addr(struct mdns *z, const char *name, const char *ip);
int mdns_zone_add_mx(struct mdns *z, const char *name, unsigned pref, const char *host);
int mdns_zone_add_name(struct mdns *z, const char *name, int type, const char *target);
/* Make name exist without records (NODATA for every type). */
int mdns_zone_add_empty(struct mdns *z, const char *name);
/* Queries for name that find no record of the asked type time out
 * (MDNS_TEMPFAIL), as the OpenSPF suite's TIMEOUT marker asks. */
int mdns_zone_set_timeout(struct mdns *z, const char *name);
/* Number of queries answered so far (tests assert lookup counts). */
unsigned long mdns_zone_queries(const struct mdns *z);

/* ---- libunbound (the daemon) ---- */

/* A caching resolver. forward: "ip[@port]" of a resolver to ask (an Unbound
 * or a site resolver), or NULL to use /etc/resolv.conf. timeout_ms bounds
 * one query. Returns NULL and sets *err (static text) on failure. */
struct mdns *mdns_unbound_new(const char *forward, unsigned timeout_ms, const char **err);

#endif
