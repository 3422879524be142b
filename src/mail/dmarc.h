/*
 * dmarc: Domain-based Message Authentication, Reporting and Conformance
 * (RFC 7489), with the np= tag for non-existent subdomains (RFC 9091).
 *
 * Why this shape: DMARC is a decision on results SPF and DKIM already
 * produced, plus one or two DNS lookups for the policy; so dmarc_check takes
 * those results (not the message) and the caller's random draw for pct=,
 * which keeps it a deterministic function the tests can pin down. The
 * record parser is pure and exported for the fuzzer.
 *
 * Organisational domains come from the Public Suffix List through libpsl:
 * the Debian list (/usr/share/publicsuffix) loaded once per process, or
 * libpsl's built-in copy when that file is missing. The list's implicit "*"
 * rule applies, so a TLD absent from the list still yields an org domain.
 */
#ifndef MAMORI_MAIL_DMARC_H
#define MAMORI_MAIL_DMARC_H

#include <stddef.h>

struct mdns;
struct psl_ctx_st; /* libpsl's psl_ctx_t */

enum dmarc_policy {
	DMARC_POLICY_ABSENT = -1, /* no policy applies (no record, error) */
	DMARC_POLICY_NONE = 0,
	DMARC_POLICY_QUARANTINE = 1,
	DMARC_POLICY_REJECT = 2,
};

enum dmarc_align {
	DMARC_ALIGN_RELAXED = 0,
	DMARC_ALIGN_STRICT = 1,
};

enum dmarc_result {
	DMARC_RESULT_NONE = 0,
	DMARC_RESULT_PASS,
	DMARC_RESULT_FAIL,
	DMARC_RESULT_TEMPERROR,
	DMARC_RESULT_PERMERROR,
};

struct dmarc_record {
	int p, sp, np;     /* enum dmarc_policy; sp defaults to p, np to sp */
	int adkim, aspf;   /* enum dmarc_align */
	unsigned pct;      /* 0..100, default 100 */
	char rua[512], ruf[512]; /* as published (truncated to fit) */
	unsigned ri;       /* seconds, default 86400 */
	char fo[16];       /* default "0" */
	int p_from_rua;    /* p was absent or invalid; p=none because rua= is valid */
	int has_sp, has_np;
};

/* Parse a DMARC record (the TXT text). Returns 0, or -1 with a reason in
 * why when the text is not a usable record: v=DMARC1 not first, or p=
 * missing/invalid without a valid rua= (RFC 7489 6.6.3 step 6). Unknown
 * tags are ignored; bad values of optional tags fall back to defaults. */
int dmarc_parse_record(const char *txt, size_t len, struct dmarc_record *out, char *why,
		       size_t whylen);
/* 1 when the text starts with the v=DMARC1 tag (a candidate record). */
int dmarc_is_record(const char *txt, size_t len);

/* Registrable domain of domain under psl (public suffix + one label),
 * lower case, into out. Returns 0, or -1 when there is none (the domain is
 * a public suffix, empty, or has an empty label). psl NULL = the default
 * list. */
int dmarc_registrable_domain(const struct psl_ctx_st *psl, const char *domain, char *out,
			     size_t cap);
/* Organisational domain (RFC 7489 3.2) with the default list: the
 * registrable domain, or the domain itself when it is a public suffix.
 * Returns 0, or -1 on an invalid name. */
int dmarc_org_domain(const char *domain, char *out, size_t cap);
/* The default list (loaded once, thread-safe); NULL only if libpsl has
 * neither the system list nor a built-in one. */
const struct psl_ctx_st *dmarc_psl(void);

struct dmarc_dkim {
	int pass;       /* 1 when this signature verified */
	const char *d;  /* its d= domain */
};

/* dmarc_auth flags. */
#define DMARC_F_NO_NP 0x1 /* plain RFC 7489: ignore np= (RFC 9091) */
/* DMARCbis (draft-ietf-dmarc-dmarcbis) policy discovery: without a record
 * at the From domain, walk up its labels (at most 8) to the first one with
 * a record, instead of jumping to the organisational domain. */
#define DMARC_F_TREEWALK 0x2

struct dmarc_auth {
	const char *from_domain; /* RFC 5322.From domain */
	int spf_result;          /* enum spf_result; only SPF_PASS authenticates */
	const char *spf_domain;  /* MAIL FROM domain, or HELO when MAIL FROM is empty */
	size_t ndkim;
	const struct dmarc_dkim *dkim;
	unsigned flags;          /* DMARC_F_* (0 = RFC 7489 + RFC 9091) */
};

struct dmarc_outcome {
	int result;       /* enum dmarc_result */
	int policy;       /* enum dmarc_policy: the p, sp or np that applies */
	int disposition;  /* enum dmarc_policy after pct sampling (never ABSENT) */
	int spf_aligned, dkim_aligned;
	int used_np;      /* 1 when np= decided (RFC 9091) */
	char record_domain[256]; /* where the record was found */
	char org_domain[256];
	struct dmarc_record rec;
	char reason[160];
};

/* Evaluate DMARC for one message. pct_roll is the caller's uniform draw in
 * 0..99: the policy applies when pct_roll < pct. Fills out; returns 0 or a
 * negative M_* code on an internal failure. */
int dmarc_check(struct mdns *dns, const struct dmarc_auth *in, unsigned pct_roll,
		struct dmarc_outcome *out);

const char *dmarc_result_str(int r);
const char *dmarc_policy_str(int p); /* "absent" for DMARC_POLICY_ABSENT */

#endif
