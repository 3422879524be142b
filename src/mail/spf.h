/*
 * spf: Sender Policy Framework (RFC 7208) for the mail pillar.
 *
 * Why this shape: the milter asks one question per message, "may this IP
 * send for this domain?", and the answer must be the same whether the DNS
 * is libunbound or the in-memory zone of the conformance harness; so the
 * engine is a pure function of (DNS, request) -> outcome, with the clock
 * passed in (%{t}) and no global state. The record parser and the macro
 * expander are exported on their own so the fuzzers and unit tests call
 * the very code the engine runs.
 *
 * Cost: one evaluation does at most 10 DNS-querying terms (plus the MX and
 * PTR address lookups, 10 names each), parses records into fixed arrays on
 * the stack and expands macros into stack buffers; the only heap memory is
 * what the resolver hands back and the explanation string.
 */
#ifndef MAMORI_MAIL_SPF_H
#define MAMORI_MAIL_SPF_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct mdns;

enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

/* Hard bounds of RFC 7208 4.6.4 and of our own. */
#define SPF_MAX_LOOKUPS 10     /* DNS-querying terms per evaluation */
#define SPF_MAX_VOID 2         /* lookups answering NXDOMAIN or no data */
#define SPF_MAX_NAMES 10       /* MX hosts per mx, PTR names per ptr / %{p} */
#define SPF_MAX_TERMS 128      /* terms in one record (more: permerror) */
#define SPF_MAX_RECORD 4096    /* bytes of one record (more: permerror) */

/* Request flags. */
#define SPF_F_RFC4408 0x1 /* RFC 4408 rules: no void-lookup limit */

struct spf_request {
	int af;            /* AF_INET or AF_INET6 (v4-mapped v6 is taken as v4) */
	uint8_t ip[16];    /* 4 or 16 bytes, network order */
	const char *helo;  /* EHLO/HELO argument, may be NULL */
	const char *mail_from; /* MAIL FROM address; NULL or "" = postmaster@helo */
	const char *receiver;  /* %{r}, may be NULL ("unknown") */
	time_t now;        /* %{t} */
	unsigned flags;    /* SPF_F_* */
};

struct spf_outcome {
	enum spf_result result;
	char domain[256];      /* the domain checked (MAIL FROM or HELO domain) */
	char *explanation;     /* malloc'd; on fail only (exp= text or default) */
	int exp_default;       /* 1 when explanation is our default text */
	char mechanism[128];   /* the term that decided, e.g. "-all", "redirect=x" */
	unsigned dns_lookups, void_lookups;
	char reason[160];      /* why a permerror / temperror / none */
};

/* check_host() for the MAIL FROM identity (RFC 7208 2.4; HELO's
 * postmaster when MAIL FROM is empty). Fills out (zeroed first); returns 0,
 * or a negative M_* code on an internal failure (out->result is then
 * SPF_TEMPERROR). The caller frees out with spf_outcome_fini. */
int spf_check(struct mdns *dns, const struct spf_request *rq, struct spf_outcome *out);
/* check_host() for the HELO identity (RFC 7208 2.3). */
int spf_check_helo(struct mdns *dns, const struct spf_request *rq, struct spf_outcome *out);
void spf_outcome_fini(struct spf_outcome *o);
const char *spf_result_str(enum spf_result r);
/* "pass" -> SPF_PASS; -1 when unknown. */
int spf_result_parse(const char *s);

/* ---- the record parser (pure) ---- */

enum spf_mech {
	SPF_M_ALL = 1,
	SPF_M_INCLUDE,
	SPF_M_A,
	SPF_M_MX,
	SPF_M_PTR,
	SPF_M_IP4,
	SPF_M_IP6,
	SPF_M_EXISTS,
};

struct spf_term {
	uint8_t mech;      /* enum spf_mech */
	uint8_t qual;      /* enum spf_result the term gives on a match */
	uint8_t cidr4, cidr6;
	uint16_t off, len; /* the whole term in the record text */
	uint16_t arg, arglen; /* domain-spec (a mx ptr include exists); arglen 0 = none */
	uint8_t addr[16];  /* ip4 / ip6 */
};

struct spf_record {
	size_t nterm;
	struct spf_term term[SPF_MAX_TERMS];
	/* redirect= and exp= domain-specs, offsets into the text; len 0 = absent */
	uint16_t redirect, redirect_len;
	uint16_t exp, exp_len;
	int has_redirect, has_exp;
};

/* 1 when the TXT text is an SPF record ("v=spf1" then space or end). */
int spf_is_record(const char *txt, size_t len);
/* Parse an SPF record (starting with v=spf1). Returns 0, or -1 with a
 * reason in why on any syntax error (which is a permerror). Offsets in out
 * point into txt, so txt must outlive out. */
int spf_parse_record(const char *txt, size_t len, struct spf_record *out, char *why,
		     size_t whylen);

/* ---- macros (RFC 7208 section 7) ---- */

struct spf_macro_env {
	const char *sender;  /* %{s} local@domain */
	const char *local;   /* %{l} */
	const char *odomain; /* %{o} */
	const char *domain;  /* %{d} the current domain */
	const char *helo;    /* %{h} */
	const char *receiver; /* %{r}; NULL = "unknown" */
	int af;
	uint8_t ip[16];
	time_t now;
	/* %{p}: writes the validated name of ip (or "unknown"); may be NULL
	 * (then "unknown"). */
	void (*ptr_name)(void *arg, char *out, size_t cap);
	void *arg;
};

/* Check a macro-string; exp = 1 allows the explanation-only letters c r t.
 * Returns 0 when valid, -1 when not. */
int spf_macro_check(const char *s, size_t len, int exp);
/* Expand s into out (cap bytes, NUL-terminated). Returns the length, or -1
 * on a syntax error, -2 when the result does not fit. */
long spf_macro_expand(const struct spf_macro_env *env, const char *s, size_t len, int exp,
		      char *out, size_t cap);

#endif
