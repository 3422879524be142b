/*
 * dkim_int: what the DKIM and ARC engines share privately: the tag=value
 * list parser, header and body canonicalization, parsed signatures, key
 * records and their cache, and the one signature check both engines use.
 *
 * Why one private header: an ARC-Message-Signature is a DKIM signature under
 * another name and an ARC-Seal is hashed and signed the same way, so ARC
 * reuses every piece here instead of carrying a second copy.
 */
#ifndef MAMORI_MAIL_DKIM_INT_H
#define MAMORI_MAIL_DKIM_INT_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>

#include "mail/dkim.h"
#include "mail/mdns.h"
#include "mail/msg.h"

/* ---- tag=value lists (RFC 6376 3.2) ---- */

#define DKIM_MAX_TAGS 32

struct dkim_tag {
	const char *name; /* points into the parsed text */
	size_t nlen;
	const char *val;  /* value without surrounding FWS */
	size_t vlen;
};

struct dkim_tags {
	size_t n;
	struct dkim_tag t[DKIM_MAX_TAGS];
};

/* Parse a tag list. Fails (-1) on a syntax error, a duplicate tag or more
 * than DKIM_MAX_TAGS tags. Pointers in out point into s. */
int dkim_tags_parse(const char *s, size_t len, struct dkim_tags *out);
const struct dkim_tag *dkim_tags_get(const struct dkim_tags *t, const char *name);
/* 1 when the tag's value equals lit (case-insensitive). */
int dkim_tag_eq(const struct dkim_tag *t, const char *lit);
/* Copy the value with every whitespace byte removed into dst (NUL ended).
 * -1 when it does not fit. */
int dkim_tag_copy_nows(const struct dkim_tag *t, char *dst, size_t cap);
/* Parse a decimal value (up to 15 digits) into *v; -1 when not one. */
int dkim_tag_num(const struct dkim_tag *t, long long *v);

/* Base64 decode, skipping whitespace; -1 on a bad character or overflow. */
int dkim_b64_decode(const char *s, size_t len, unsigned char *out, size_t cap, size_t *out_len);

/* ---- growable buffer with a hard maximum ---- */

struct dkim_buf {
	char *p;
	size_t n, cap;
};

#define DKIM_BUF_MAX (4u * 1024 * 1024)

int dkim_buf_add(struct dkim_buf *b, const void *p, size_t n);
int dkim_buf_str(struct dkim_buf *b, const char *s);
void dkim_buf_fini(struct dkim_buf *b);

/* ---- canonicalization (RFC 6376 3.4) ---- */

enum dkim_canon { DKIM_C_SIMPLE = 0, DKIM_C_RELAXED = 1 };

/* Append header field raw (the whole field with its CRLF) canonicalized.
 * When cut_from < cut_to, bytes [cut_from, cut_to) of raw are left out (the
 * b= value of the signature being checked) and the final CRLF is dropped. */
int dkim_canon_header(struct dkim_buf *out, const char *raw, size_t len,
		      enum dkim_canon c, size_t cut_from, size_t cut_to, int last);

/* Hash the canonical body with SHA-256. limit < 0: the whole body.
 * *canon_len is the length of the canonical body when the whole body was
 * read, or limit when the body is at least that long. Returns 0, or -1 on
 * a crypto failure, or 1 when the body is shorter than limit. */
int dkim_body_sha256(const char *body, size_t len, enum dkim_canon c,
		     long long limit, unsigned char out[32]);

/* ---- a set of header fields (a message's, or a message plus new ones) ---- */

struct dkim_hdrs {
	const struct msg_hdr *h;
	size_t n;
};

/* 1 when field h is named name (case-insensitive, spaces before the colon
 * ignored). */
int dkim_hdr_named(const struct msg_hdr *h, const char *name, size_t nlen);

/* ---- parsed signatures ---- */

enum dkim_kind { DKIM_K_SIG = 0, DKIM_K_AMS = 1, DKIM_K_AS = 2 };
enum dkim_alg { DKIM_A_RSA_SHA256 = 0, DKIM_A_RSA_SHA1 = 1, DKIM_A_ED25519_SHA256 = 2 };

#define DKIM_MAX_H 128
#define DKIM_MAX_SIG_BYTES 1024 /* an 8192-bit RSA signature */

struct dkim_hname {
	const char *p; /* into the header's raw text */
	size_t n;
};

struct dkim_sig {
	enum dkim_kind kind;
	enum dkim_alg alg;
	char a[32];
	enum dkim_canon hc, bc;
	char d[256], s[64], i[256];
	char cv[8];
	unsigned inst;
	unsigned char b[DKIM_MAX_SIG_BYTES];
	size_t blen;
	char b_prefix[16];
	unsigned char bh[64];
	size_t bhlen;
	long long l, t, x; /* -1 when absent */
	struct dkim_hname h[DKIM_MAX_H];
	size_t nh;
	const struct msg_hdr *field; /* the signature's own field */
	size_t cut_from, cut_to;     /* the b= value inside field->raw */
};

/* Parse field f as a signature of kind. 0, or -1 with why set (a permerror
 * or, for ARC, a structural fault). */
int dkim_sig_parse(const struct msg_hdr *f, enum dkim_kind kind, struct dkim_sig *sig,
		   char *why, size_t wl);

/* ---- keys ---- */

#define DKIM_KEY_TESTING 1u /* t=y */
#define DKIM_KEY_STRICT 2u  /* t=s */

struct dkim_key {
	EVP_PKEY *pk; /* one reference, owned */
	int type;     /* EVP_PKEY_RSA or EVP_PKEY_ED25519 */
	unsigned bits;
	unsigned flags;
	int sha256_ok; /* h= absent or lists sha256 */
	int sha1_ok;
	int email_ok;  /* s= absent, * or email */
};

/* Parse a key record. 0; DKIM_FAIL for a revoked key (empty p=); or
 * DKIM_PERMERROR with why set. */
int dkim_key_parse(const char *txt, size_t len, struct dkim_key *out, char *why, size_t wl);
/* Fetch s._domainkey.d and parse it, through the bounded shared cache.
 * Returns 0 (out filled, caller finishes it), or a dkim_result for the
 * failure (TEMPERROR, PERMERROR, FAIL) with why set. */
int dkim_key_fetch(struct mdns *dns, const char *s, const char *d, struct dkim_key *out,
		   char *why, size_t wl);
void dkim_key_fini(struct dkim_key *k);
/* Empty the cache (tests). */
void dkim_key_cache_clear(void);

/* ---- crypto on a SHA-256 digest of the canonical header data ---- */

int dkim_crypto_verify(enum dkim_alg alg, EVP_PKEY *pk, const unsigned char *dg, size_t dglen,
		       const unsigned char *sig, size_t siglen);
/* Sign; *sig is malloc'd. */
int dkim_crypto_sign(EVP_PKEY *pk, const unsigned char *dg, size_t dglen, unsigned char **sig,
		     size_t *siglen);
/* SHA-256 or SHA-1 of a buffer. */
int dkim_digest(enum dkim_alg alg, const void *p, size_t n, unsigned char *out, size_t *outlen);

/* ---- verification context: one message, body hashes shared ---- */

#define DKIM_BH_CACHE 8

struct dkim_ctx {
	struct mdns *dns;
	struct dkim_hdrs hdrs;
	const char *body;
	size_t body_len;
	time_t now;
	size_t nbh;
	struct {
		enum dkim_canon c;
		long long l;
		int rc;
		unsigned char h[32];
	} bh[DKIM_BH_CACHE];
};

/* Check a parsed DKIM-Signature or ARC-Message-Signature against the
 * headers and body: key, body hash, header signature. Returns a
 * dkim_result, with why set, *bits the key size and *key_flags the key's
 * DKIM_KEY_* flags (either may be NULL). */
enum dkim_result dkim_sig_check(struct dkim_ctx *ctx, const struct dkim_sig *sig, char *why,
				size_t wl, unsigned *bits, unsigned *key_flags);
/* The canonical header data of sig over hdrs (selected fields bottom-up,
 * then the signature field without its b= value). */
int dkim_sig_header_data(const struct dkim_hdrs *hdrs, const struct dkim_sig *sig,
			 struct dkim_buf *out);
/* Verify sig.b over data with a fetched key; a dkim_result. */
enum dkim_result dkim_sig_verify_data(struct dkim_ctx *ctx, const struct dkim_sig *sig,
				      const char *data, size_t len, char *why, size_t wl,
				      unsigned *bits);

/* The signer's insides, for ARC sealing. */
struct dkim_signer {
	char domain[256];
	char selector[64];
	EVP_PKEY *pk;
	enum dkim_alg alg;
	enum dkim_canon hc, bc;
	char headers[1024]; /* colon list, lower case */
};

/* Sign prefix + "" + suffix (the value with an empty b=) for a field named
 * name, over the canonical data head (the covered fields, already
 * canonicalized) and produce prefix + b64 + suffix (malloc'd). */
int dkim_sign_value(const struct dkim_signer *s, const char *name, const char *head,
		    size_t head_len, const char *prefix, const char *suffix, char **value);

/* Canonicalize the fields of the signer's header list over hdrs. */
int dkim_sign_headers(const struct dkim_signer *s, const struct dkim_hdrs *hdrs,
		      struct dkim_buf *out);

#endif
