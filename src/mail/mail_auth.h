/*
 * mail_auth: the sender-authentication step of the gateway: SPF, DKIM, ARC
 * and DMARC on one message, and the Authentication-Results header (RFC
 * 8601) that reports them.
 *
 * Why apart from the milter: the benchmark and `mamori mail check` run the
 * same checks on a message from a file, with the same DNS interface.
 */
#ifndef MAMORI_MAIL_AUTH_H
#define MAMORI_MAIL_AUTH_H

#include <stdint.h>
#include <time.h>

#include "core/buf.h"
#include "mail/arc.h"
#include "mail/dkim.h"
#include "mail/dmarc.h"
#include "mail/mdns.h"
#include "mail/msg.h"
#include "mail/spf.h"

struct mail_auth_in {
	int af;              /* AF_INET / AF_INET6; 0 = unknown client (no SPF) */
	const uint8_t *ip;
	const char *helo;
	const char *mail_from; /* "" = null sender */
	const char *receiver;  /* our host name, for SPF %{r} */
	const struct msg *m;
	const char *from_domain; /* RFC5322.From domain; NULL when none or several */
	time_t now;
	unsigned pct_roll;   /* 0..99, for DMARC pct= */
};

struct mail_auth {
	struct spf_outcome spf;
	int spf_done;
	struct dkim_verify_out dkim;
	struct arc_verify_out arc;
	int arc_present;
	struct dmarc_outcome dmarc;
	int dmarc_done;
};

/* Runs every check; out is zeroed first. Returns 0 or a negative M_* code
 * on an internal failure (no memory). */
int mail_auth_run(struct mdns *dns, const struct mail_auth_in *in, struct mail_auth *out);
void mail_auth_fini(struct mail_auth *a);

/* The DMARC step's input as mail_auth_run built it (for aggregate
 * reports); dk must hold DKIM_MAX_SIGS entries. */
void mail_auth_dmarc_input(const struct mail_auth *a, const struct mail_auth_in *in,
			   struct dmarc_auth *da, struct dmarc_dkim *dk);

/* Whether a DNS failure kept a check from deciding (SPF, DKIM or DMARC
 * temperror). */
int mail_auth_temperror(const struct mail_auth *a);

/* The value of our Authentication-Results field (without the name),
 * folded with CRLF TAB between results. */
int mail_auth_header(const struct mail_auth *a, const struct mail_auth_in *in,
		     const char *authserv_id, struct buf *out);

/* The authserv-id of an Authentication-Results value (the first token),
 * into out; 0 or -1 when there is none. */
int mail_auth_servid(const char *value, size_t len, char *out, size_t cap);

#endif
