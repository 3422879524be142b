/*
 * attach: what an attachment is, by its content, and what the policy says
 * about it.
 *
 * Why by content: a name is chosen by the sender; the bytes are what runs.
 * A file is classified from its leading bytes (our own checks for the
 * classes that matter, libmagic for the MIME type), archives are opened
 * with libarchive and every entry inspected the same way, to a bounded
 * depth. The name still counts where Windows acts on it: a text file named
 * .js is a script, "invoice.pdf.exe" is a double extension, and a name
 * that promises a document over content that is a program is a mismatch.
 *
 * This module produces findings; it decides nothing. Each finding carries
 * the action the policy gives its class or kind, and the report carries
 * the worst of them; the milter turns that into a verdict.
 *
 * Threads: one struct attach_ctx may be shared by every milter thread;
 * libmagic's handle is not thread-safe, so its use is serialised inside
 * (a lookup is a few microseconds on the first 64 KiB).
 */
#ifndef MAMORI_MAIL_ATTACH_H
#define MAMORI_MAIL_ATTACH_H

#include <stddef.h>
#include <stdint.h>

enum attach_class {
	ATTACH_OTHER = 0,
	ATTACH_EXECUTABLE,   /* PE, ELF, Mach-O, MSI, DOS .com by name */
	ATTACH_SCRIPT,       /* js, vbs, ps1, hta, wsf, bat, cmd, sh, shebang */
	ATTACH_SHORTCUT,     /* .lnk (by content), .url, .scf */
	ATTACH_DISK_IMAGE,   /* iso, udf, img, vhd, vhdx, dmg */
	ATTACH_ARCHIVE,      /* zip, 7z, rar, tar, gz, bz2, xz, cab, ... */
	ATTACH_OFFICE_MACRO, /* OOXML with vbaProject.bin, OLE2 with VBA */
	ATTACH_OFFICE,       /* Office documents without macros */
	ATTACH_PDF,
	ATTACH_CLASS_MAX
};

enum attach_kind {
	ATTACH_F_CLASS = 0,  /* a file of a class other than OTHER */
	ATTACH_F_DOUBLE_EXT, /* invoice.pdf.exe, padding, U+202E */
	ATTACH_F_MISMATCH,   /* a document's name on a program's bytes */
	ATTACH_F_ENCRYPTED,  /* an archive entry we cannot read */
	ATTACH_F_BOMB,       /* expansion ratio or total size over the limit */
	ATTACH_F_LIMIT,      /* nesting or entry count over the limit */
	ATTACH_F_CORRUPT,    /* an archive libarchive cannot read */
	ATTACH_F_KIND_MAX
};

enum attach_action {
	ATTACH_ALLOW = 0,
	ATTACH_QUARANTINE,
	ATTACH_REJECT,
};

struct attach_policy {
	enum attach_action cls[ATTACH_CLASS_MAX];  /* for ATTACH_F_CLASS */
	enum attach_action kind[ATTACH_F_KIND_MAX]; /* for the other kinds */
	unsigned max_depth;     /* archive nesting (1 = open the top only) */
	unsigned max_entries;   /* files inspected per attachment */
	uint64_t max_total;     /* bytes expanded per attachment */
	unsigned max_ratio;     /* expanded / compressed, per archive ... */
	uint64_t ratio_floor;   /* ... once it expanded at least this much */
	size_t max_mem;         /* bytes of entries held at once (to inspect
				 * nested archives); larger entries are
				 * streamed, hashed and classified by their
				 * head only */
};

struct attach_finding {
	enum attach_kind kind;
	enum attach_class cls;
	enum attach_action action;
	char path[512];      /* "a.zip/dir/b.exe"; '/' joins archive levels */
	char mime[80];       /* libmagic's type of the file */
	char sha256[65];     /* of the file's bytes; "" when not read */
	char detail[128];    /* "pe", "vbaProject.bin", "ratio 1000:1", ... */
};

#define ATTACH_MAX_FINDINGS 256

struct attach_report {
	size_t n;
	struct attach_finding *f;  /* owned; attach_report_fini frees */
	size_t files;        /* files inspected, archive entries included */
	int limited;         /* findings past ATTACH_MAX_FINDINGS dropped */
	enum attach_action worst;
};

struct attach_ctx;

/* Loads libmagic's database. Returns NULL (with a message in err) on
 * failure. The caller owns the result. */
struct attach_ctx *attach_ctx_new(char *err, size_t errlen);
void attach_ctx_free(struct attach_ctx *c);

void attach_policy_default(struct attach_policy *p);

/* Called for every file inspected (the attachment, then each archive entry
 * in order), so YARA can scan entries: data is the whole file, or its head
 * when it was larger than max_mem (partial = 1). */
typedef void (*attach_visit_fn)(void *arg, const char *path,
				const unsigned char *data, size_t len,
				int partial, enum attach_class cls);

/* Inspects one attachment (its decoded bytes and the name it came with,
 * which may be "" or NULL). Fills *rep (caller-owned; free with
 * attach_report_fini). visit may be NULL. Returns 0 or M_ENOMEM / M_EINVAL;
 * hostile content is never an error, only findings. */
int attach_scan(struct attach_ctx *c, const struct attach_policy *p,
		const char *name, const unsigned char *data, size_t len,
		attach_visit_fn visit, void *arg, struct attach_report *rep);
void attach_report_fini(struct attach_report *rep);

/* Content class alone (no policy, no archive walk; no libmagic). */
enum attach_class attach_sniff(const unsigned char *d, size_t n,
			       const char **detail);

/* 1 when the OLE2 compound file has a VBA storage ("Macros",
 * "_VBA_PROJECT_CUR", "VBA"), 0 when not, M_EPARSE when it is not a
 * readable compound file. *is_msi set when the root is an MSI package. */
int attach_ole_macros(const unsigned char *d, size_t n, int *is_msi);

const char *attach_class_name(enum attach_class c);
const char *attach_kind_name(enum attach_kind k);
const char *attach_action_name(enum attach_action a);
/* The reverse, for configuration: 0, or M_EINVAL for an unknown name. */
int attach_class_parse(const char *s, enum attach_class *out);
int attach_kind_parse(const char *s, enum attach_kind *out);
int attach_action_parse(const char *s, enum attach_action *out);

#endif
