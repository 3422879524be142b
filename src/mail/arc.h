/*
 * arc: Authenticated Received Chain (RFC 8617): validating the chain a
 * message arrives with, and sealing it when we relay.
 *
 * Why with DKIM: an ARC-Message-Signature is checked exactly like a
 * DKIM-Signature, and an ARC-Seal is signed the same way over the ARC
 * fields, so both reuse the DKIM engine's parser, canonicalization, key
 * cache and crypto (dkim_int.h). Algorithms: rsa-sha256 and ed25519-sha256;
 * RSA keys under 1024 bits fail (RFC 8301).
 *
 * Thread safety: as dkim.h.
 */
#ifndef MAMORI_MAIL_ARC_H
#define MAMORI_MAIL_ARC_H

#include <stddef.h>
#include <time.h>

#include "mail/dkim.h"
#include "mail/mdns.h"
#include "mail/msg.h"

#define ARC_MAX_INSTANCE 50

enum arc_cv { ARC_NONE = 0, ARC_PASS, ARC_FAIL };

struct arc_verify_out {
	enum arc_cv cv;
	unsigned instances;   /* highest instance seen (0: no ARC fields) */
	/* Lowest instance i such that the AMS of i and of every later
	 * instance verify (RFC 8617 arc.oldest-pass); set on pass only. */
	unsigned oldest_pass;
	char reason[160];     /* why fail, or empty */
	char domains[8][256]; /* d= of the ARC-Seal of instance k+1 */
	/* 1 when the failure was a temporary DNS error (the chain could not
	 * be checked; report temperror rather than fail when wanted). */
	int temperror;
};

/* Validate the ARC chain of m at time now. Returns 0, or a negative value on
 * an internal failure. A malformed chain is cv=fail, never an error. */
int arc_verify(struct mdns *dns, const struct msg *m, time_t now, struct arc_verify_out *out);

const char *arc_cv_str(enum arc_cv cv);

/* Produce the next ARC set for m with signer s (its header list is the
 * AMS h=): ARC-Authentication-Results from authserv_id and auth_results
 * (the results part of our Authentication-Results, e.g.
 * "spf=pass smtp.mailfrom=a.example; dkim=pass header.d=a.example"; NULL or
 * empty gives "none"), ARC-Message-Signature and ARC-Seal with cv=cv_in (the
 * result of arc_verify on m; none when m has no chain). The three values
 * (malloc'd, caller frees) are to be added at the top as "Name: value", in
 * the order ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results
 * from the top. Returns 0, or -1 (the chain already holds 50 sets, the top
 * seal says cv=fail, no memory, crypto failure). */
int arc_seal(const struct dkim_signer *s, const struct msg *m, const char *authserv_id,
	     const char *auth_results, enum arc_cv cv_in, time_t now, char **aar, char **ams,
	     char **as);

#endif
