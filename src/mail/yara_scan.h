/*
 * yara_scan: YARA rules from a directory, compiled once, scanned over
 * buffers (a decoded attachment, an archive entry, a body) by any number
 * of threads.
 *
 * Why a loader that skips bad files: one broken rule file from a feed must
 * not take every other rule down; the file is named with its line and
 * message, the rest load. Each file gets its own namespace (its name), so
 * two feeds may reuse a rule name.
 *
 * Threads and reloads: a rule set is immutable once loaded and
 * reference-counted; a reload builds a new one aside and swaps it, and a
 * scan in flight keeps the old one alive through its reference. Each scan
 * makes its own YR_SCANNER. libyara is initialised once per process (the
 * first load) and finalised when the last rule set goes.
 */
#ifndef MAMORI_MAIL_YARA_SCAN_H
#define MAMORI_MAIL_YARA_SCAN_H

#include <stddef.h>

#define YARA_MAX_FILES 4096              /* rule files read from a directory */
#define YARA_MAX_FILE_BYTES (16u << 20)  /* a larger rule file is skipped */
#define YARA_MAX_MATCHES 64              /* matches kept per scan */

struct yara_rules;

/* Compiles every *.yar and *.yara file (regular files, sorted by name) in
 * dir. Files with errors are skipped; their "file:line: message" lines go
 * to errs (NUL-terminated, cut at errlen) and *nbad counts them (nbad may
 * be NULL). Returns 0 with *out set (a rule set with one reference, maybe
 * empty), or M_ENOTFOUND (no such directory), M_ENOMEM, M_EIO. */
int yara_rules_load_dir(const char *dir, struct yara_rules **out, char *errs,
			size_t errlen, size_t *nbad);
/* Rules and files in the set. */
size_t yara_rules_count(const struct yara_rules *r);
size_t yara_rules_files(const struct yara_rules *r);
/* Takes one more reference (for a reader during a reload). */
struct yara_rules *yara_rules_ref(struct yara_rules *r);
/* Drops one reference; the last frees. NULL is fine. */
void yara_rules_free(struct yara_rules *r);

struct yara_match {
	char rule[128];
	char ns[128];    /* the rule file's name */
	char tags[160];  /* space-separated */
};

struct yara_result {
	size_t n;
	struct yara_match m[YARA_MAX_MATCHES];
	int limited;     /* more matches than YARA_MAX_MATCHES */
	int timed_out;
};

/* Scans len bytes with a timeout in seconds (0: 10). Returns 0; M_EAGAIN
 * when the timeout hit (the matches found so far are kept); M_ENOMEM or
 * M_EIO on a libyara failure. */
int yara_scan_mem(const struct yara_rules *r, const void *data, size_t len,
		  int timeout_s, struct yara_result *res);

#endif
