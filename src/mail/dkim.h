/*
 * dkim: DomainKeys Identified Mail, verifying (RFC 6376, RFC 8301, RFC 8463)
 * and signing.
 *
 * Why this shape: the milter hands a whole message (msg.h) and wants one
 * result per signature for Authentication-Results and DMARC; DNS goes
 * through mdns so the harness and the daemon run the same code. Algorithms:
 * rsa-sha256 and ed25519-sha256; rsa-sha1 and RSA keys under 1024 bits are
 * refused as RFC 8301 says (result fail with a reason).
 *
 * Thread safety: dkim_verify may run in many threads at once; the parsed key
 * cache it shares is locked and bounded. A signer is immutable once made and
 * may be shared by threads.
 */
#ifndef MAMORI_MAIL_DKIM_H
#define MAMORI_MAIL_DKIM_H

#include <stddef.h>
#include <time.h>

#include "mail/mdns.h"
#include "mail/msg.h"

enum dkim_result {
	DKIM_NONE = 0,
	DKIM_PASS,
	DKIM_FAIL,
	DKIM_NEUTRAL,
	DKIM_POLICY,
	DKIM_TEMPERROR,
	DKIM_PERMERROR,
};

/* At most this many DKIM-Signature fields are checked (from the top); the
 * rest are counted in ignored. */
#define DKIM_MAX_SIGS 8
/* A signature's t= may be this far in the future (clock skew between the
 * signer and us) before the signature fails. */
#define DKIM_T_FUTURE_SLOP 86400

struct dkim_sig_result {
	enum dkim_result result;
	char d[256];
	char s[64];
	char a[32];
	char i[256];       /* i= as given, or "@d" when absent */
	char b_prefix[16]; /* first 8 characters of b=, for header.b */
	char reason[128];
	unsigned key_bits;
	int testing;       /* the key says t=y */
};

struct dkim_verify_out {
	size_t n;
	size_t ignored; /* signatures past DKIM_MAX_SIGS */
	struct dkim_sig_result sig[DKIM_MAX_SIGS];
};

/* Verify every DKIM-Signature of m (top first) at time now. out->n == 0
 * means no signature (result none). Returns 0, or a negative value on an
 * internal failure (no memory). */
int dkim_verify(struct mdns *dns, const struct msg *m, time_t now, struct dkim_verify_out *out);

const char *dkim_result_str(enum dkim_result r);

struct dkim_signer;

/* A signer for domain/selector with a PEM private key (RSA of 1024 bits or
 * more, or Ed25519; PKCS#8 or traditional). headers: colon list of field
 * names for h=, or NULL for a default (from, to, subject, date, ...).
 * Canonicalization relaxed/relaxed. Returns NULL with err set on failure.
 * Owned by the caller; free with dkim_signer_free. */
struct dkim_signer *dkim_signer_new(const char *domain, const char *selector, const char *pem_key,
				    size_t pem_len, const char *headers, char *err, size_t errlen);
/* Set header/body canonicalization ("relaxed/relaxed", "simple/simple", ...);
 * 0 or -1. */
int dkim_signer_set_canon(struct dkim_signer *s, const char *c);
void dkim_signer_free(struct dkim_signer *s);

/* Sign m at time now. *header_value (malloc'd, caller frees) is the value of
 * a DKIM-Signature field, on one line, to be added at the top as
 * "DKIM-Signature: " followed by the value (one space after the colon, as
 * signed). Returns 0 or a negative value. */
int dkim_sign(const struct dkim_signer *s, const struct msg *m, time_t now, char **header_value);

#endif
