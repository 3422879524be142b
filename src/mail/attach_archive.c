/*
 * attach_archive: archives opened with libarchive, entries inspected one
 * level deeper (see attach.h).
 *
 * Why streamed: an entry's bytes are read in 64 KiB pieces, counted and
 * hashed as they come; they are kept in memory only while the entry is
 * under the policy's max_mem (so a nested archive can be opened from
 * memory). A zip bomb is caught by counting: the expanded bytes of one
 * archive over max_ratio times its packed size (once past ratio_floor), or
 * all expanded bytes of the attachment over max_total, stop the walk and
 * are reported — nothing is expanded past those counts.
 *
 * Entries are inspected in order; the walk stops at max_entries files.
 * libarchive reads from memory and never touches the file system.
 */
#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "mail/attach_int.h"

#define READ_PIECE (64 * 1024)
#define NAMES_MAX 10000 /* entry headers read when looking at names */

static struct archive *open_mem(const unsigned char *d, size_t n, int raw)
{
	struct archive *a = archive_read_new();
	if (!a)
		return NULL;
	archive_read_support_filter_all(a);
	if (raw)
		archive_read_support_format_raw(a);
	else
		archive_read_support_format_all(a);
	/* a failed open still returns the handle: its error names why */
	(void)archive_read_open_memory(a, d, n);
	return a;
}

static int ends_with_ci(const char *s, const char *suf)
{
	size_t l = strlen(s), sl = strlen(suf);
	return l >= sl && strcasecmp(s + l - sl, suf) == 0;
}

static const char *entry_name(struct archive_entry *e)
{
	const char *nm = archive_entry_pathname_utf8(e);
	if (!nm)
		nm = archive_entry_pathname(e);
	return nm && *nm ? nm : "(unnamed)";
}

int attach_archive_names(const unsigned char *d, size_t n,
			 struct attach_arc_info *ai)
{
	struct archive_entry *e;
	memset(ai, 0, sizeof(*ai));
	struct archive *a = open_mem(d, n, 0);
	if (!a)
		return M_EPARSE;
	int rc = 0;
	while (ai->entries < NAMES_MAX) {
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			rc = ai->entries ? 0 : M_EPARSE;
			break;
		}
		ai->entries++;
		const char *nm = entry_name(e);
		if (strcmp(nm, "[Content_Types].xml") == 0)
			ai->ooxml = 1;
		if (ends_with_ci(nm, "vbaProject.bin") && !ai->vba) {
			ai->vba = 1;
			snprintf(ai->vba_path, sizeof(ai->vba_path), "%s", nm);
		}
	}
	archive_read_free(a);
	return rc;
}

/* has_format: a header was read. libarchive 3.6 crashes in
 * archive_read_has_encrypted_entries when no format was ever chosen (found
 * by fuzz_attach), so it is asked only after a header. */
static int is_encryption_error(struct archive *a, int has_format)
{
	const char *m = archive_error_string(a);
	return (has_format && archive_read_has_encrypted_entries(a) > 0) ||
	       (m && (strstr(m, "ncrypt") || strstr(m, "assphrase")));
}

static void hex32(const unsigned char *md, char out[65])
{
	static const char hx[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[64] = '\0';
}

/* Reads the current entry: counts, hashes, keeps up to the memory budget.
 * Returns 0, 1 when the walk must stop (bomb), -1 on a read error. */
static int read_entry(struct attach_scan_state *s, struct archive *a,
		      size_t packed, uint64_t *level, const char *path,
		      unsigned char **keep, size_t *kept, int *partial,
		      char sha[65])
{
	const struct attach_policy *p = s->pol;
	unsigned char piece[READ_PIECE];
	size_t cap = 0;
	int rc = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	*keep = NULL;
	*kept = 0;
	*partial = 0;
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		s->nomem = 1;
		return 1;
	}
	for (;;) {
		la_ssize_t r = archive_read_data(a, piece, sizeof(piece));
		if (r == 0)
			break;
		if (r < 0) {
			rc = -1;
			break;
		}
		size_t got = (size_t)r;
		*level += got;
		s->total += got;
		EVP_DigestUpdate(md, piece, got);
		if (s->total > p->max_total) {
			attach_add(s, ATTACH_F_BOMB, ATTACH_ARCHIVE, path, "", "",
				   "expands past %llu bytes",
				   (unsigned long long)p->max_total);
			rc = 1;
			break;
		}
		if (*level > p->ratio_floor && packed &&
		    *level / packed > p->max_ratio) {
			attach_add(s, ATTACH_F_BOMB, ATTACH_ARCHIVE, path, "", "",
				   "expansion ratio over %u:1 (%llu from %zu bytes)",
				   p->max_ratio, (unsigned long long)*level, packed);
			rc = 1;
			break;
		}
		if (*partial)
			continue;
		/* s->held: what the outer levels hold while this one reads */
		if (s->held + *kept + got > p->max_mem) {
			*partial = 1; /* keep the head we have for its type */
			continue;
		}
		if (*kept + got > cap) {
			size_t nc = cap ? cap * 2 : READ_PIECE;
			while (nc < *kept + got)
				nc *= 2;
			if (nc > p->max_mem)
				nc = p->max_mem;
			unsigned char *nb = realloc(*keep, nc);
			if (!nb) {
				s->nomem = 1;
				rc = 1;
				break;
			}
			*keep = nb;
			cap = nc;
		}
		memcpy(*keep + *kept, piece, got);
		*kept += got;
	}
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned ol = 0;
	sha[0] = '\0';
	if (rc == 0 && EVP_DigestFinal_ex(md, out, &ol) == 1 && ol == 32)
		hex32(out, sha);
	EVP_MD_CTX_free(md);
	return rc;
}

void attach_archive_walk(struct attach_scan_state *s, const char *path,
			 const unsigned char *d, size_t n, int depth,
			 int only_embedded)
{
	struct archive_entry *e;
	uint64_t level = 0;
	unsigned entries = 0;
	int raw = 0;
	char sub[512];

	struct archive *a = open_mem(d, n, 0);
	if (!a) {
		s->nomem = 1;
		return;
	}
	while (!s->stop && !s->nomem) {
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			if (entries == 0 && !raw && archive_filter_count(a) > 1) {
				/* a compressed single file (.gz of no tar) */
				archive_read_free(a);
				a = open_mem(d, n, 1);
				if (!a) {
					s->nomem = 1;
					return;
				}
				raw = 1;
				continue;
			}
			if (is_encryption_error(a, entries > 0))
				attach_add(s, ATTACH_F_ENCRYPTED, ATTACH_ARCHIVE, path, "",
					   "", "encrypted archive");
			else
				attach_add(s, ATTACH_F_CORRUPT, ATTACH_ARCHIVE, path, "", "",
					   "%s", archive_error_string(a)
							 ? archive_error_string(a)
							 : "unreadable archive");
			break;
		}
		entries++;
		const char *nm = entry_name(e);
		if (raw) {
			/* name the single file after the archive minus .gz */
			const char *b = strrchr(path, '/');
			b = b ? b + 1 : path;
			const char *dot = strrchr(b, '.');
			int bl = dot && dot != b ? (int)(dot - b) : (int)strlen(b);
			snprintf(sub, sizeof(sub), "%s/%.*s", path, bl, b);
		} else {
			snprintf(sub, sizeof(sub), "%s/%s", path, nm);
		}
		if (archive_entry_filetype(e) != AE_IFREG)
			continue;
		if (only_embedded && !strstr(nm, "/embeddings/"))
			continue;
		if (archive_entry_is_encrypted(e)) {
			attach_add(s, ATTACH_F_ENCRYPTED, ATTACH_ARCHIVE, sub, "", "",
				   "encrypted entry");
			continue;
		}
		if (archive_entry_size_is_set(e) &&
		    (uint64_t)archive_entry_size(e) > s->pol->max_total) {
			attach_add(s, ATTACH_F_BOMB, ATTACH_ARCHIVE, sub, "", "",
				   "declares %lld bytes",
				   (long long)archive_entry_size(e));
			s->stop = 1;
			break;
		}
		unsigned char *keep;
		size_t kept;
		int partial;
		char sha[65];
		int rr = read_entry(s, a, n, &level, sub, &keep, &kept, &partial, sha);
		if (rr == 1) {
			free(keep);
			s->stop = 1;
			break;
		}
		if (rr < 0) {
			if (is_encryption_error(a, 1))
				attach_add(s, ATTACH_F_ENCRYPTED, ATTACH_ARCHIVE, sub, "",
					   "", "encrypted entry");
			else
				attach_add(s, ATTACH_F_CORRUPT, ATTACH_ARCHIVE, sub, "", "",
					   "%s", archive_error_string(a)
							 ? archive_error_string(a)
							 : "read error");
			free(keep);
			break;
		}
		s->held += kept;
		attach_inspect(s, sub, keep ? keep : (const unsigned char *)"", kept,
			       depth + 1, sha, partial);
		s->held -= kept;
		free(keep);
	}
	archive_read_free(a);
}
