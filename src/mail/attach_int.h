/*
 * attach_int: what attach.c and attach_archive.c share — the state of one
 * attachment's inspection. Private to the attach files.
 */
#ifndef MAMORI_MAIL_ATTACH_INT_H
#define MAMORI_MAIL_ATTACH_INT_H

#include "mail/attach.h"

struct attach_scan_state {
	struct attach_ctx *ctx;
	const struct attach_policy *pol;
	struct attach_report *rep;
	attach_visit_fn visit;
	void *arg;
	uint64_t total;     /* bytes expanded from archives so far */
	size_t held;        /* entry bytes held in memory now */
	int stop;           /* a bomb or the entry limit: inspect no more */
	int nomem;
};

/* What a walk over an archive's entry names found. */
struct attach_arc_info {
	int ooxml;          /* [Content_Types].xml present */
	int vba;            /* a vbaProject.bin entry */
	char vba_path[128];
	unsigned entries;
};

/* Inspects one file: classifies, reports, recurses into archives.
 * sha256 may be given (a streamed entry), else it is computed. partial: d
 * is only the head of a larger file. */
void attach_inspect(struct attach_scan_state *s, const char *path,
		    const unsigned char *d, size_t n, int depth,
		    const char *sha256, int partial);

/* Adds a finding; fmt gives its detail. */
void attach_add(struct attach_scan_state *s, enum attach_kind kind,
		enum attach_class cls, const char *path, const char *mime,
		const char *sha256, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

/* Reads the archive's entry names only (no data): OOXML, macros. Returns
 * 0, or M_EPARSE when libarchive cannot read it. */
int attach_archive_names(const unsigned char *d, size_t n,
			 struct attach_arc_info *ai);

/* Reads every entry of the archive at d and inspects it one level deeper;
 * only_embedded: an OOXML document, where only "/embeddings/" entries are
 * files of their own. */
void attach_archive_walk(struct attach_scan_state *s, const char *path,
			 const unsigned char *d, size_t n, int depth,
			 int only_embedded);

#endif
