/*
 * dmarc_report: DMARC aggregate reports (RFC 7489 section 7.2, Appendix C).
 *
 * Why accumulate in memory first: every message adds to a counter keyed by
 * (period, policy domain, source IP, disposition, evaluated results,
 * authentication results), and most messages hit an existing key, so the
 * milter threads bump a counter under a mutex and a timer flushes the rows
 * to SQLite in one transaction (adding to what is stored). Rendering reads
 * SQLite, so a restart loses at most one flush interval.
 *
 * Ownership: a dmarc_report owns its rows; the sqlite3 handle is the
 * caller's (opened by the store), borrowed for the call.
 */
#ifndef MAMORI_MAIL_DMARC_REPORT_H
#define MAMORI_MAIL_DMARC_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"
#include "mail/dmarc.h"

struct sqlite3;
struct dmarc_report;

#define DMARC_REPORT_MAX_ROWS 65536 /* default bound on rows held between flushes */

/* period: seconds per reporting period (86400 = daily, RFC 7489 ri=
 * default); max_rows: bound on distinct rows held (0 = the default).
 * NULL on allocation failure. */
struct dmarc_report *dmarc_report_new(unsigned period, size_t max_rows);
void dmarc_report_free(struct dmarc_report *r);

/* Count one message that DMARC evaluated (result pass or fail; others are
 * not reported). ip is 4 or 16 bytes by af. Thread-safe. Returns 0,
 * M_ELIMIT when the row bound is reached (flush, then add again), or
 * M_EINVAL for an outcome that is not reportable. */
int dmarc_report_add(struct dmarc_report *r, time_t now, int af, const uint8_t *ip,
		     const struct dmarc_auth *in, const struct dmarc_outcome *o);
size_t dmarc_report_rows(struct dmarc_report *r);

/* Create the tables (idempotent). */
int dmarc_report_schema(struct sqlite3 *db);
/* Move the rows into SQLite in one transaction, adding counts to stored
 * rows; the memory is emptied on success. */
int dmarc_report_flush(struct dmarc_report *r, struct sqlite3 *db);

struct dmarc_report_meta {
	const char *org_name;      /* the reporting organisation */
	const char *email;         /* its contact address */
	const char *extra_contact; /* may be NULL */
	const char *report_id;     /* unique per report */
};

/* Render the aggregate report XML of one policy domain and the period
 * starting at begin (a multiple of the period) into xml. Returns 0,
 * M_ENOTFOUND when no rows are stored, or an error code. */
int dmarc_report_render(struct sqlite3 *db, const struct dmarc_report_meta *m,
			const char *domain, time_t begin, unsigned period, struct buf *xml);
/* gzip (RFC 1952) n bytes into a malloc'd *out (caller frees). */
int dmarc_report_gzip(const void *p, size_t n, unsigned char **out, size_t *outlen);

/* ---- incoming aggregate reports (dmarc_feedback.c) ---- */

#define DMARC_FB_MAX_AUTH 8        /* dkim / spf results kept per record */
#define DMARC_FB_MAX_RECORDS 100000

struct dmarc_fb_auth {
	char domain[256];
	char selector[64];
	char scope[16];
	char result[16];
};

struct dmarc_fb_record {
	char source_ip[64];
	unsigned long long count;
	char disposition[16], dkim[16], spf[16]; /* policy_evaluated, lower case */
	char header_from[256], envelope_from[256], envelope_to[256];
	size_t ndkim, nspf; /* kept (at most DMARC_FB_MAX_AUTH each) */
	struct dmarc_fb_auth dkim_res[DMARC_FB_MAX_AUTH], spf_res[DMARC_FB_MAX_AUTH];
};

/* A parsed aggregate report. Text fields are "" when absent; enumerated
 * values (p, adkim, disposition, results...) are lower case as sent. */
struct dmarc_feedback {
	char version[16];
	char org_name[256], email[256], extra_contact[256], report_id[256];
	long long begin, end;
	char domain[256], adkim[8], aspf[8], p[16], sp[16], np[16], fo[16], testing[8];
	int pct; /* -1 when absent */
	size_t nrecord;
	struct dmarc_fb_record *record; /* malloc'd */
};

/* Parse RFC 7489 Appendix C XML (also the DMARCbis additions; unknown
 * elements and attributes are skipped; no DTD, no external entities).
 * Returns 0, or M_EPARSE / M_ELIMIT / M_ENOMEM with a reason in why. The
 * caller frees with dmarc_feedback_fini (also after a failure). */
int dmarc_feedback_parse(const char *xml, size_t len, struct dmarc_feedback *out, char *why,
			 size_t whylen);
void dmarc_feedback_fini(struct dmarc_feedback *f);

#endif
