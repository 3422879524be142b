/*
 * dkim_key: DKIM key records (RFC 6376 3.6.1, RFC 8463), a bounded
 * thread-safe cache of parsed keys, and the signature primitives.
 *
 * Why a cache keyed by the record text: decoding a public key (DER for RSA)
 * costs more than the rest of a verification, and the same few records
 * (large senders' selectors) come back all day. The DNS answer is still
 * asked every time (the resolver caches it and honours the TTL); only the
 * parse is reused, so a changed record is never served stale. The cache
 * holds DKIM_KEY_CACHE entries, replaced round-robin, under one mutex; a hit
 * hands out its own reference to the EVP_PKEY.
 */
#include "mail/dkim_int.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rsa.h>
#include <openssl/x509.h>

#define DKIM_KEY_CACHE 256
#define DKIM_KEY_MAX_TXT 8192

static void set_why(char *why, size_t wl, const char *s)
{
	if (why && wl)
		snprintf(why, wl, "%s", s);
}

/* 1 when the colon list of the tag holds word (case-insensitive). */
static int list_has(const struct dkim_tag *t, const char *word)
{
	size_t wl = strlen(word), i = 0;
	while (i < t->vlen) {
		while (i < t->vlen && (t->val[i] == ' ' || t->val[i] == '\t' || t->val[i] == '\r' ||
				       t->val[i] == '\n'))
			i++;
		size_t s = i;
		while (i < t->vlen && t->val[i] != ':')
			i++;
		size_t e = i;
		while (e > s && (t->val[e - 1] == ' ' || t->val[e - 1] == '\t' ||
				 t->val[e - 1] == '\r' || t->val[e - 1] == '\n'))
			e--;
		if (e - s == wl && strncasecmp(t->val + s, word, wl) == 0)
			return 1;
		i++;
	}
	return 0;
}

int dkim_key_parse(const char *txt, size_t len, struct dkim_key *out, char *why, size_t wl)
{
	struct dkim_tags tags;
	unsigned char der[4096];
	size_t dl = 0;

	memset(out, 0, sizeof(*out));
	if (len > DKIM_KEY_MAX_TXT || dkim_tags_parse(txt, len, &tags) != 0) {
		set_why(why, wl, "key record syntax error");
		return DKIM_PERMERROR;
	}
	const struct dkim_tag *v = dkim_tags_get(&tags, "v");
	if (v && (!dkim_tag_eq(v, "DKIM1") || v != &tags.t[0])) {
		set_why(why, wl, "key record v= is not DKIM1");
		return DKIM_PERMERROR;
	}
	const struct dkim_tag *k = dkim_tags_get(&tags, "k");
	out->type = EVP_PKEY_RSA;
	if (k && dkim_tag_eq(k, "ed25519")) {
		out->type = EVP_PKEY_ED25519;
	} else if (k && !dkim_tag_eq(k, "rsa")) {
		set_why(why, wl, "key record k= is an unknown key type");
		return DKIM_PERMERROR;
	}
	const struct dkim_tag *h = dkim_tags_get(&tags, "h");
	out->sha256_ok = !h || list_has(h, "sha256");
	out->sha1_ok = !h || list_has(h, "sha1");
	const struct dkim_tag *s = dkim_tags_get(&tags, "s");
	out->email_ok = !s || list_has(s, "*") || list_has(s, "email");
	const struct dkim_tag *t = dkim_tags_get(&tags, "t");
	if (t && list_has(t, "y"))
		out->flags |= DKIM_KEY_TESTING;
	if (t && list_has(t, "s"))
		out->flags |= DKIM_KEY_STRICT;
	const struct dkim_tag *p = dkim_tags_get(&tags, "p");
	if (!p) {
		set_why(why, wl, "key record without p=");
		return DKIM_PERMERROR;
	}
	if (dkim_b64_decode(p->val, p->vlen, der, sizeof(der), &dl) != 0) {
		set_why(why, wl, "key record p= is not base64");
		return DKIM_PERMERROR;
	}
	if (dl == 0) {
		set_why(why, wl, "key revoked (empty p=)");
		return DKIM_FAIL;
	}
	if (out->type == EVP_PKEY_ED25519) {
		if (dl != 32) {
			set_why(why, wl, "ed25519 key is not 32 bytes");
			return DKIM_PERMERROR;
		}
		out->pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, dl);
	} else {
		const unsigned char *q = der;
		out->pk = d2i_PUBKEY(NULL, &q, (long)dl);
		if (out->pk && (q != der + dl || EVP_PKEY_get_base_id(out->pk) != EVP_PKEY_RSA)) {
			EVP_PKEY_free(out->pk);
			out->pk = NULL;
		}
		if (!out->pk) {
			/* some publish the bare PKCS#1 RSAPublicKey */
			q = der;
			out->pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)dl);
			if (out->pk && q != der + dl) {
				EVP_PKEY_free(out->pk);
				out->pk = NULL;
			}
		}
	}
	if (!out->pk) {
		set_why(why, wl, "key record p= is not a valid public key");
		return DKIM_PERMERROR;
	}
	out->bits = (unsigned)EVP_PKEY_get_bits(out->pk);
	return 0;
}

void dkim_key_fini(struct dkim_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pk);
	k->pk = NULL;
}

struct key_slot {
	uint64_t hash;
	char *txt;
	size_t len;
	int rc;
	char why[96];
	struct dkim_key key;
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct key_slot cache[DKIM_KEY_CACHE];
static size_t cache_next;

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void copy_result(const struct key_slot *sl, struct dkim_key *out, char *why, size_t wl)
{
	*out = sl->key;
	if (out->pk && EVP_PKEY_up_ref(out->pk) != 1)
		out->pk = NULL;
	set_why(why, wl, sl->why);
}

/* Parse through the cache; the result as dkim_key_parse returns it. */
static int key_parse_cached(const char *txt, size_t len, struct dkim_key *out, char *why,
			    size_t wl)
{
	uint64_t h = fnv1a(txt, len);
	int rc;

	pthread_mutex_lock(&cache_mu);
	for (size_t i = 0; i < DKIM_KEY_CACHE; i++) {
		struct key_slot *sl = &cache[i];
		if (sl->txt && sl->hash == h && sl->len == len && memcmp(sl->txt, txt, len) == 0) {
			copy_result(sl, out, why, wl);
			rc = sl->rc;
			pthread_mutex_unlock(&cache_mu);
			if (rc == 0 && !out->pk)
				return DKIM_TEMPERROR;
			return rc;
		}
	}
	pthread_mutex_unlock(&cache_mu);

	char w[96] = "";
	rc = dkim_key_parse(txt, len, out, w, sizeof(w));
	set_why(why, wl, w);
	char *copy = malloc(len + 1);
	if (!copy)
		return rc;
	memcpy(copy, txt, len);
	copy[len] = '\0';
	pthread_mutex_lock(&cache_mu);
	struct key_slot *sl = &cache[cache_next];
	cache_next = (cache_next + 1) % DKIM_KEY_CACHE;
	free(sl->txt);
	dkim_key_fini(&sl->key);
	sl->txt = copy;
	sl->len = len;
	sl->hash = h;
	sl->rc = rc;
	snprintf(sl->why, sizeof(sl->why), "%s", w);
	sl->key = *out;
	if (sl->key.pk && EVP_PKEY_up_ref(sl->key.pk) != 1)
		sl->key.pk = NULL;
	pthread_mutex_unlock(&cache_mu);
	return rc;
}

void dkim_key_cache_clear(void)
{
	pthread_mutex_lock(&cache_mu);
	for (size_t i = 0; i < DKIM_KEY_CACHE; i++) {
		free(cache[i].txt);
		cache[i].txt = NULL;
		dkim_key_fini(&cache[i].key);
	}
	cache_next = 0;
	pthread_mutex_unlock(&cache_mu);
}

int dkim_key_fetch(struct mdns *dns, const char *s, const char *d, struct dkim_key *out,
		   char *why, size_t wl)
{
	char name[512];
	struct mdns_answer a;
	int rc;

	memset(out, 0, sizeof(*out));
	int n = snprintf(name, sizeof(name), "%s._domainkey.%s", s, d);
	if (n < 0 || (size_t)n >= sizeof(name) || !mdns_name_ok(name)) {
		set_why(why, wl, "key name is not a domain name");
		return DKIM_PERMERROR;
	}
	memset(&a, 0, sizeof(a));
	enum mdns_rcode r = mdns_query(dns, name, MDNS_TXT, &a);
	if (r == MDNS_TEMPFAIL) {
		set_why(why, wl, "key lookup failed temporarily");
		rc = DKIM_TEMPERROR;
		goto out;
	}
	if (r != MDNS_OK) {
		set_why(why, wl, r == MDNS_NXDOMAIN ? "no key record (NXDOMAIN)" : "bad key name");
		rc = DKIM_PERMERROR;
		goto out;
	}
	const struct mdns_rr *txt = NULL;
	for (size_t i = 0; i < a.n; i++)
		if (a.rr[i].type == MDNS_TXT) {
			txt = &a.rr[i];
			break;
		}
	if (!txt) {
		set_why(why, wl, "no key record");
		rc = DKIM_PERMERROR;
		goto out;
	}
	rc = key_parse_cached(txt->data, txt->len, out, why, wl);
out:
	mdns_answer_fini(&a);
	return rc;
}

int dkim_digest(enum dkim_alg alg, const void *p, size_t n, unsigned char *out, size_t *outlen)
{
	unsigned int l = 0;
	const EVP_MD *md = alg == DKIM_A_RSA_SHA1 ? EVP_sha1() : EVP_sha256();
	if (EVP_Digest(p, n, out, &l, md, NULL) != 1)
		return -1;
	*outlen = l;
	return 0;
}

int dkim_crypto_verify(enum dkim_alg alg, EVP_PKEY *pk, const unsigned char *dg, size_t dglen,
		       const unsigned char *sig, size_t siglen)
{
	int ok = 0;

	if (alg == DKIM_A_ED25519_SHA256) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		if (md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) == 1)
			ok = EVP_DigestVerify(md, sig, siglen, dg, dglen) == 1;
		EVP_MD_CTX_free(md);
		return ok;
	}
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);
	if (c && EVP_PKEY_verify_init(c) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(c, alg == DKIM_A_RSA_SHA1 ? EVP_sha1() : EVP_sha256()) == 1)
		ok = EVP_PKEY_verify(c, sig, siglen, dg, dglen) == 1;
	EVP_PKEY_CTX_free(c);
	return ok;
}

int dkim_crypto_sign(EVP_PKEY *pk, const unsigned char *dg, size_t dglen, unsigned char **sig,
		     size_t *siglen)
{
	int rc = -1;
	size_t n = 0;
	unsigned char *out = NULL;

	*sig = NULL;
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		if (md && EVP_DigestSignInit(md, NULL, NULL, NULL, pk) == 1 &&
		    EVP_DigestSign(md, NULL, &n, dg, dglen) == 1 && (out = malloc(n)) &&
		    EVP_DigestSign(md, out, &n, dg, dglen) == 1)
			rc = 0;
		EVP_MD_CTX_free(md);
	} else {
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);
		if (c && EVP_PKEY_sign_init(c) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) == 1 &&
		    EVP_PKEY_sign(c, NULL, &n, dg, dglen) == 1 && (out = malloc(n)) &&
		    EVP_PKEY_sign(c, out, &n, dg, dglen) == 1)
			rc = 0;
		EVP_PKEY_CTX_free(c);
	}
	if (rc) {
		free(out);
		return rc;
	}
	*sig = out;
	*siglen = n;
	return 0;
}
