/*
 * attach: type by content, names, and the policy's actions. See attach.h
 * for why content first. Archives are walked in attach_archive.c and OLE2
 * compound files read in attach_office.c.
 *
 * Bounds: a file's type is read from its first 64 KiB (libmagic) or from
 * fixed offsets; findings are capped at ATTACH_MAX_FINDINGS; recursion into
 * archives is capped by the policy's max_depth, max_entries, max_total,
 * max_ratio and max_mem.
 */
#include "mail/attach.h"

#include <ctype.h>
#include <magic.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "mail/attach_int.h"

#define MAGIC_HEAD (64 * 1024)

struct attach_ctx {
	magic_t magic;
	pthread_mutex_t lock;
};

struct attach_ctx *attach_ctx_new(char *err, size_t errlen)
{
	struct attach_ctx *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->magic = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR);
	if (!c->magic || magic_load(c->magic, NULL) != 0) {
		snprintf(err, errlen, "libmagic: %s",
			 c->magic && magic_error(c->magic) ? magic_error(c->magic)
							   : "cannot open");
		if (c->magic)
			magic_close(c->magic);
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void attach_ctx_free(struct attach_ctx *c)
{
	if (!c)
		return;
	magic_close(c->magic);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void attach_policy_default(struct attach_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->cls[ATTACH_OTHER] = ATTACH_ALLOW;
	p->cls[ATTACH_EXECUTABLE] = ATTACH_REJECT;
	p->cls[ATTACH_SCRIPT] = ATTACH_REJECT;
	p->cls[ATTACH_SHORTCUT] = ATTACH_REJECT;
	p->cls[ATTACH_DISK_IMAGE] = ATTACH_QUARANTINE;
	p->cls[ATTACH_ARCHIVE] = ATTACH_ALLOW;
	p->cls[ATTACH_OFFICE_MACRO] = ATTACH_QUARANTINE;
	p->cls[ATTACH_OFFICE] = ATTACH_ALLOW;
	p->cls[ATTACH_PDF] = ATTACH_ALLOW;
	p->kind[ATTACH_F_DOUBLE_EXT] = ATTACH_REJECT;
	p->kind[ATTACH_F_MISMATCH] = ATTACH_QUARANTINE;
	p->kind[ATTACH_F_ENCRYPTED] = ATTACH_QUARANTINE;
	p->kind[ATTACH_F_BOMB] = ATTACH_REJECT;
	p->kind[ATTACH_F_LIMIT] = ATTACH_QUARANTINE;
	p->kind[ATTACH_F_CORRUPT] = ATTACH_QUARANTINE;
	p->max_depth = 5;
	p->max_entries = 1000;
	p->max_total = 256u * 1024 * 1024;
	p->max_ratio = 100;
	p->ratio_floor = 10u * 1024 * 1024;
	p->max_mem = 32u * 1024 * 1024;
}

const char *attach_class_name(enum attach_class c)
{
	static const char *const n[ATTACH_CLASS_MAX] = {
		"other", "executable", "script", "shortcut", "disk-image",
		"archive", "office-macro", "office", "pdf",
	};
	return (unsigned)c < ATTACH_CLASS_MAX ? n[c] : "?";
}

const char *attach_kind_name(enum attach_kind k)
{
	static const char *const n[ATTACH_F_KIND_MAX] = {
		"class", "double-extension", "mismatch", "encrypted", "bomb",
		"limit", "corrupt",
	};
	return (unsigned)k < ATTACH_F_KIND_MAX ? n[k] : "?";
}

const char *attach_action_name(enum attach_action a)
{
	switch (a) {
	case ATTACH_ALLOW: return "allow";
	case ATTACH_QUARANTINE: return "quarantine";
	case ATTACH_REJECT: return "reject";
	}
	return "?";
}

int attach_class_parse(const char *s, enum attach_class *out)
{
	for (int i = 0; i < ATTACH_CLASS_MAX; i++)
		if (strcasecmp(s, attach_class_name((enum attach_class)i)) == 0) {
			*out = (enum attach_class)i;
			return 0;
		}
	return M_EINVAL;
}

int attach_kind_parse(const char *s, enum attach_kind *out)
{
	for (int i = 0; i < ATTACH_F_KIND_MAX; i++)
		if (strcasecmp(s, attach_kind_name((enum attach_kind)i)) == 0) {
			*out = (enum attach_kind)i;
			return 0;
		}
	return M_EINVAL;
}

int attach_action_parse(const char *s, enum attach_action *out)
{
	for (int i = ATTACH_ALLOW; i <= ATTACH_REJECT; i++)
		if (strcasecmp(s, attach_action_name((enum attach_action)i)) == 0) {
			*out = (enum attach_action)i;
			return 0;
		}
	return M_EINVAL;
}

/* ---- content ---- */

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
	       (uint32_t)p[3];
}

static int at(const unsigned char *d, size_t n, size_t off, const char *sig,
	      size_t sl)
{
	return off <= n && sl <= n - off && memcmp(d + off, sig, sl) == 0;
}

enum attach_class attach_sniff(const unsigned char *d, size_t n,
			       const char **detail)
{
	static const char lnk[20] = "\x4c\0\0\0\x01\x14\x02\0\0\0\0\0\xc0\0\0\0\0\0\0\x46";
	const char *dt = "";
	enum attach_class c = ATTACH_OTHER;

	if (at(d, n, 0, "MZ", 2)) {
		c = ATTACH_EXECUTABLE;
		dt = "dos-mz";
		if (n >= 0x40) {
			uint32_t pe = le32(d + 0x3c);
			if (pe < n && at(d, n, pe, "PE\0\0", 4))
				dt = "pe";
		}
	} else if (at(d, n, 0, "\x7f" "ELF", 4)) {
		c = ATTACH_EXECUTABLE, dt = "elf";
	} else if (n >= 4 && (be32(d) == 0xfeedface || be32(d) == 0xfeedfacf ||
			      be32(d) == 0xcefaedfe || be32(d) == 0xcffaedfe)) {
		c = ATTACH_EXECUTABLE, dt = "mach-o";
	} else if (n >= 8 && be32(d) == 0xcafebabe && be32(d + 4) < 40) {
		c = ATTACH_EXECUTABLE, dt = "mach-o-fat"; /* Java: >= 45 */
	} else if (at(d, n, 0, lnk, sizeof(lnk))) {
		c = ATTACH_SHORTCUT, dt = "lnk";
	} else if (at(d, n, 0, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8)) {
		c = ATTACH_OFFICE, dt = "ole2";
	} else if (n >= 5 && memmem(d, n < 1024 ? n : 1024, "%PDF-", 5)) {
		c = ATTACH_PDF, dt = "pdf";
	} else if (at(d, n, 0, "PK\3\4", 4) || at(d, n, 0, "PK\5\6", 4) ||
		   at(d, n, 0, "PK\7\x08", 4)) {
		c = ATTACH_ARCHIVE, dt = "zip";
	} else if (at(d, n, 0, "7z\xbc\xaf\x27\x1c", 6)) {
		c = ATTACH_ARCHIVE, dt = "7z";
	} else if (at(d, n, 0, "Rar!\x1a\x07", 6)) {
		c = ATTACH_ARCHIVE, dt = "rar";
	} else if (at(d, n, 0, "\x1f\x8b", 2)) {
		c = ATTACH_ARCHIVE, dt = "gzip";
	} else if (at(d, n, 0, "BZh", 3) && n > 3 && d[3] >= '1' && d[3] <= '9') {
		c = ATTACH_ARCHIVE, dt = "bzip2";
	} else if (at(d, n, 0, "\xfd" "7zXZ\0", 6)) {
		c = ATTACH_ARCHIVE, dt = "xz";
	} else if (at(d, n, 0, "\x28\xb5\x2f\xfd", 4)) {
		c = ATTACH_ARCHIVE, dt = "zstd";
	} else if (at(d, n, 0, "MSCF\0\0\0\0", 8)) {
		c = ATTACH_ARCHIVE, dt = "cab";
	} else if (at(d, n, 257, "ustar", 5)) {
		c = ATTACH_ARCHIVE, dt = "tar";
	} else if (at(d, n, 0, "070701", 6) || at(d, n, 0, "070707", 6)) {
		c = ATTACH_ARCHIVE, dt = "cpio";
	} else if (at(d, n, 0x8001, "CD001", 5) || at(d, n, 0x8801, "CD001", 5) ||
		   at(d, n, 0x9001, "CD001", 5)) {
		c = ATTACH_DISK_IMAGE, dt = "iso9660";
	} else if (at(d, n, 0x8001, "BEA01", 5)) {
		c = ATTACH_DISK_IMAGE, dt = "udf";
	} else if (at(d, n, 0, "vhdxfile", 8)) {
		c = ATTACH_DISK_IMAGE, dt = "vhdx";
	} else if (at(d, n, 0, "conectix", 8) ||
		   (n >= 512 && at(d, n, n - 512, "conectix", 8))) {
		c = ATTACH_DISK_IMAGE, dt = "vhd";
	} else if (n >= 512 && at(d, n, n - 512, "koly", 4)) {
		c = ATTACH_DISK_IMAGE, dt = "dmg";
	} else if (at(d, n, 0, "#!", 2)) {
		c = ATTACH_SCRIPT, dt = "shebang";
	} else if (n >= 16 && memmem(d, n < MAGIC_HEAD ? n : MAGIC_HEAD,
				     "<HTA:APPLICATION", 16)) {
		c = ATTACH_SCRIPT, dt = "hta";
	} else if (at(d, n, 0, "{\\rtf", 5)) {
		c = ATTACH_OFFICE, dt = "rtf";
	}
	if (detail)
		*detail = dt;
	return c;
}

/* ---- names ---- */

struct ext_map {
	const char *ext;
	enum attach_class cls;
	int benign; /* a name that promises a harmless document */
};

static const struct ext_map exts[] = {
	{"exe", ATTACH_EXECUTABLE, 0}, {"dll", ATTACH_EXECUTABLE, 0},
	{"scr", ATTACH_EXECUTABLE, 0}, {"com", ATTACH_EXECUTABLE, 0},
	{"pif", ATTACH_EXECUTABLE, 0}, {"cpl", ATTACH_EXECUTABLE, 0},
	{"msi", ATTACH_EXECUTABLE, 0}, {"msp", ATTACH_EXECUTABLE, 0},
	{"sys", ATTACH_EXECUTABLE, 0}, {"ocx", ATTACH_EXECUTABLE, 0},
	{"jar", ATTACH_EXECUTABLE, 0}, {"app", ATTACH_EXECUTABLE, 0},
	{"js", ATTACH_SCRIPT, 0},      {"jse", ATTACH_SCRIPT, 0},
	{"vbs", ATTACH_SCRIPT, 0},     {"vbe", ATTACH_SCRIPT, 0},
	{"vb", ATTACH_SCRIPT, 0},      {"wsf", ATTACH_SCRIPT, 0},
	{"wsh", ATTACH_SCRIPT, 0},     {"ps1", ATTACH_SCRIPT, 0},
	{"psm1", ATTACH_SCRIPT, 0},    {"hta", ATTACH_SCRIPT, 0},
	{"bat", ATTACH_SCRIPT, 0},     {"cmd", ATTACH_SCRIPT, 0},
	{"sh", ATTACH_SCRIPT, 0},      {"reg", ATTACH_SCRIPT, 0},
	{"lnk", ATTACH_SHORTCUT, 0},   {"url", ATTACH_SHORTCUT, 0},
	{"scf", ATTACH_SHORTCUT, 0},   {"iso", ATTACH_DISK_IMAGE, 0},
	{"img", ATTACH_DISK_IMAGE, 0}, {"vhd", ATTACH_DISK_IMAGE, 0},
	{"vhdx", ATTACH_DISK_IMAGE, 0}, {"dmg", ATTACH_DISK_IMAGE, 0},
	{"udf", ATTACH_DISK_IMAGE, 0}, {"zip", ATTACH_ARCHIVE, 0},
	{"7z", ATTACH_ARCHIVE, 0},     {"rar", ATTACH_ARCHIVE, 0},
	{"tar", ATTACH_ARCHIVE, 0},    {"gz", ATTACH_ARCHIVE, 0},
	{"tgz", ATTACH_ARCHIVE, 0},    {"bz2", ATTACH_ARCHIVE, 0},
	{"xz", ATTACH_ARCHIVE, 0},     {"cab", ATTACH_ARCHIVE, 0},
	{"arj", ATTACH_ARCHIVE, 0},    {"lzh", ATTACH_ARCHIVE, 0},
	{"docm", ATTACH_OFFICE_MACRO, 1}, {"xlsm", ATTACH_OFFICE_MACRO, 1},
	{"pptm", ATTACH_OFFICE_MACRO, 1}, {"dotm", ATTACH_OFFICE_MACRO, 1},
	{"xlam", ATTACH_OFFICE_MACRO, 1}, {"doc", ATTACH_OFFICE, 1},
	{"docx", ATTACH_OFFICE, 1},    {"xls", ATTACH_OFFICE, 1},
	{"xlsx", ATTACH_OFFICE, 1},    {"ppt", ATTACH_OFFICE, 1},
	{"pptx", ATTACH_OFFICE, 1},    {"rtf", ATTACH_OFFICE, 1},
	{"odt", ATTACH_OFFICE, 1},     {"pdf", ATTACH_PDF, 1},
	{"txt", ATTACH_OTHER, 1},      {"csv", ATTACH_OTHER, 1},
	{"jpg", ATTACH_OTHER, 1},      {"jpeg", ATTACH_OTHER, 1},
	{"png", ATTACH_OTHER, 1},      {"gif", ATTACH_OTHER, 1},
	{"bmp", ATTACH_OTHER, 1},      {"tif", ATTACH_OTHER, 1},
	{"tiff", ATTACH_OTHER, 1},     {"mp3", ATTACH_OTHER, 1},
	{"mp4", ATTACH_OTHER, 1},      {"htm", ATTACH_OTHER, 1},
	{"html", ATTACH_OTHER, 1},
};

static const struct ext_map *ext_lookup(const char *e, size_t l)
{
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if (strlen(exts[i].ext) == l && strncasecmp(exts[i].ext, e, l) == 0)
			return &exts[i];
	return NULL;
}

static int dangerous(const struct ext_map *m)
{
	return m && (m->cls == ATTACH_EXECUTABLE || m->cls == ATTACH_SCRIPT ||
		     m->cls == ATTACH_SHORTCUT);
}

/* The last path component, with the trailing dots and blanks Windows drops
 * cut off: base[0..*bl). */
static const char *base_name(const char *path, size_t *bl)
{
	const char *b = path;
	for (const char *q = path; *q; q++)
		if (*q == '/' || *q == '\\')
			b = q + 1;
	size_t l = strlen(b);
	while (l && (b[l - 1] == '.' || b[l - 1] == ' '))
		l--;
	*bl = l;
	return b;
}

/* The extension: after the last '.', or NULL. */
static const struct ext_map *name_ext(const char *b, size_t l, size_t *dot)
{
	const char *d = NULL;
	for (size_t i = 0; i < l; i++)
		if (b[i] == '.')
			d = b + i;
	if (!d)
		return NULL;
	*dot = (size_t)(d - b);
	return ext_lookup(d + 1, l - *dot - 1);
}

/* ---- findings ---- */

static enum attach_action action_for(const struct attach_policy *p,
				     enum attach_kind k, enum attach_class c)
{
	enum attach_action a = k == ATTACH_F_CLASS ? p->cls[c] : p->kind[k];
	return a <= ATTACH_REJECT ? a : ATTACH_REJECT;
}

static void copy_cut(char *dst, size_t cap, const char *s)
{
	size_t l = strlen(s);
	if (l >= cap) {
		l = cap - 1;
		while (l > 0 && ((unsigned char)s[l] & 0xc0) == 0x80)
			l--;
	}
	memcpy(dst, s, l);
	dst[l] = '\0';
}

void attach_add(struct attach_scan_state *s, enum attach_kind kind,
		enum attach_class cls, const char *path, const char *mime,
		const char *sha256, const char *fmt, ...)
{
	struct attach_report *r = s->rep;
	if (r->n >= ATTACH_MAX_FINDINGS) {
		r->limited = 1;
	} else {
		struct attach_finding *f = &r->f[r->n++];
		memset(f, 0, sizeof(*f));
		f->kind = kind;
		f->cls = cls;
		f->action = action_for(s->pol, kind, cls);
		copy_cut(f->path, sizeof(f->path), path ? path : "");
		copy_cut(f->mime, sizeof(f->mime), mime ? mime : "");
		copy_cut(f->sha256, sizeof(f->sha256), sha256 ? sha256 : "");
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
		va_end(ap);
	}
	enum attach_action a = action_for(s->pol, kind, cls);
	if (a > r->worst)
		r->worst = a;
}

static void sha256_hex(const unsigned char *d, size_t n, char out[65])
{
	static const char hx[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned ml = 0;
	out[0] = '\0';
	if (EVP_Digest(d, n, md, &ml, EVP_sha256(), NULL) != 1)
		return;
	for (unsigned i = 0; i < ml && i < 32; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[2 * (ml < 32 ? ml : 32)] = '\0';
}

static void magic_type(struct attach_ctx *c, const unsigned char *d, size_t n,
		       char *out, size_t cap)
{
	pthread_mutex_lock(&c->lock);
	const char *m = magic_buffer(c->magic, d, n < MAGIC_HEAD ? n : MAGIC_HEAD);
	copy_cut(out, cap, m ? m : "application/octet-stream");
	pthread_mutex_unlock(&c->lock);
}

static enum attach_class class_of_mime(const char *m)
{
	static const char *const scripts[] = {
		"text/x-shellscript", "text/x-msdos-batch", "application/javascript",
		"text/javascript", "application/x-powershell", "text/x-perl",
		"text/x-python", "text/x-script.python", "application/x-sh",
	};
	for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++)
		if (strcmp(m, scripts[i]) == 0)
			return ATTACH_SCRIPT;
	if (strcmp(m, "application/x-ms-shortcut") == 0)
		return ATTACH_SHORTCUT;
	if (strcmp(m, "application/x-iso9660-image") == 0)
		return ATTACH_DISK_IMAGE;
	return ATTACH_OTHER;
}

static int ci_has(const char *s, size_t n, const char *pat)
{
	size_t pl = strlen(pat);
	for (size_t i = 0; i + pl <= n; i++)
		if (strncasecmp(s + i, pat, pl) == 0)
			return 1;
	return 0;
}

/* Name checks: double extensions, padding, right-to-left override. */
static void check_name(struct attach_scan_state *s, const char *path,
		       const char *mime, const char *sha)
{
	size_t bl, dot;
	const char *b = base_name(path, &bl);
	const struct ext_map *last = name_ext(b, bl, &dot);

	if (ci_has(b, bl, "\xe2\x80\xae")) {
		attach_add(s, ATTACH_F_DOUBLE_EXT, ATTACH_OTHER, path, mime, sha,
			   "right-to-left override in the name");
		return;
	}
	if (!dangerous(last))
		return;
	/* the extension before the last one */
	size_t pl = dot, pdot;
	while (pl && b[pl - 1] == ' ')
		pl--;
	int padded = dot - pl >= 3;
	const struct ext_map *prev = name_ext(b, pl, &pdot);
	if ((prev && prev->benign) || padded)
		attach_add(s, ATTACH_F_DOUBLE_EXT, last->cls, path, mime, sha,
			   "%s.%s%s", prev ? prev->ext : "", last->ext,
			   padded ? " (blank-padded)" : "");
}

void attach_inspect(struct attach_scan_state *s, const char *path,
		    const unsigned char *d, size_t n, int depth,
		    const char *sha256, int partial)
{
	const struct attach_policy *p = s->pol;
	char sha[65], mime[80];
	const char *dt;

	if (s->stop)
		return;
	if (s->rep->files >= p->max_entries) {
		attach_add(s, ATTACH_F_LIMIT, ATTACH_OTHER, path, "", "",
			   "more than %u files", p->max_entries);
		s->stop = 1;
		return;
	}
	s->rep->files++;
	if (sha256)
		copy_cut(sha, sizeof(sha), sha256);
	else
		sha256_hex(d, n, sha);
	magic_type(s->ctx, d, n, mime, sizeof(mime));

	enum attach_class c = attach_sniff(d, n, &dt);
	size_t bl, dot = 0;
	const char *b = base_name(path, &bl);
	const struct ext_map *ext = name_ext(b, bl, &dot);
	int is_arc = c == ATTACH_ARCHIVE || (c == ATTACH_DISK_IMAGE &&
					     strcmp(dt, "iso9660") == 0);
	int ooxml = 0;
	char detail[128];
	copy_cut(detail, sizeof(detail), dt);

	if (c == ATTACH_OFFICE && strcmp(dt, "ole2") == 0) {
		int msi = 0;
		int r = attach_ole_macros(d, n, &msi);
		if (msi) {
			c = ATTACH_EXECUTABLE;
			copy_cut(detail, sizeof(detail), "msi");
		} else if (r == 1) {
			c = ATTACH_OFFICE_MACRO;
			copy_cut(detail, sizeof(detail), "ole2 vba storage");
		} else if (r < 0 && !partial) {
			attach_add(s, ATTACH_F_CORRUPT, ATTACH_OFFICE, path, mime, sha,
				   "unreadable OLE2 compound file");
		}
	} else if (c == ATTACH_ARCHIVE && strcmp(dt, "zip") == 0 && !partial) {
		struct attach_arc_info ai;
		if (attach_archive_names(d, n, &ai) == 0 && ai.ooxml) {
			ooxml = 1;
			is_arc = 0;
			c = ai.vba ? ATTACH_OFFICE_MACRO : ATTACH_OFFICE;
			copy_cut(detail, sizeof(detail), ai.vba ? ai.vba_path : "ooxml");
		}
	} else if (c == ATTACH_PDF) {
		size_t h = n < 4u * 1024 * 1024 ? n : 4u * 1024 * 1024;
		const char *txt = (const char *)d;
		int js = memmem(txt, h, "/JavaScript", 11) || memmem(txt, h, "/JS", 3);
		int launch = memmem(txt, h, "/Launch", 7) != NULL;
		int emb = memmem(txt, h, "/EmbeddedFile", 13) != NULL;
		snprintf(detail, sizeof(detail), "pdf%s%s%s", js ? " javascript" : "",
			 launch ? " launch" : "", emb ? " embedded-file" : "");
	}
	if (c == ATTACH_OTHER) {
		enum attach_class mc = class_of_mime(mime);
		if (mc != ATTACH_OTHER) {
			c = mc;
			copy_cut(detail, sizeof(detail), mime);
		} else if (ext && (ext->cls == ATTACH_EXECUTABLE ||
				   ext->cls == ATTACH_SCRIPT ||
				   ext->cls == ATTACH_SHORTCUT ||
				   ext->cls == ATTACH_DISK_IMAGE)) {
			/* Windows acts on the name: a text file named .js runs */
			c = ext->cls;
			snprintf(detail, sizeof(detail), "by name .%s", ext->ext);
		}
	}
	if (c != ATTACH_OTHER)
		attach_add(s, ATTACH_F_CLASS, c, path, mime, sha, "%s", detail);
	check_name(s, path, mime, sha);
	if (ext && ext->benign &&
	    (c == ATTACH_EXECUTABLE || c == ATTACH_SCRIPT || c == ATTACH_SHORTCUT ||
	     c == ATTACH_DISK_IMAGE || (c == ATTACH_ARCHIVE && ext->cls != ATTACH_ARCHIVE)))
		attach_add(s, ATTACH_F_MISMATCH, c, path, mime, sha,
			   "named .%s, content %s", ext->ext, detail);
	if (s->visit)
		s->visit(s->arg, path, d, n, partial, c);

	if ((is_arc || ooxml) && !partial) {
		if ((unsigned)depth >= p->max_depth)
			attach_add(s, ATTACH_F_LIMIT, c, path, mime, sha,
				   "archive nesting deeper than %u", p->max_depth);
		else
			attach_archive_walk(s, path, d, n, depth, ooxml);
	} else if ((is_arc || ooxml) && partial) {
		attach_add(s, ATTACH_F_LIMIT, c, path, mime, sha,
			   "archive larger than %zu bytes not opened", p->max_mem);
	}
}

int attach_scan(struct attach_ctx *c, const struct attach_policy *p,
		const char *name, const unsigned char *data, size_t len,
		attach_visit_fn visit, void *arg, struct attach_report *rep)
{
	struct attach_scan_state s;

	memset(rep, 0, sizeof(*rep));
	if (!c || !p || (!data && len))
		return M_EINVAL;
	rep->f = calloc(ATTACH_MAX_FINDINGS, sizeof(*rep->f));
	if (!rep->f)
		return M_ENOMEM;
	memset(&s, 0, sizeof(s));
	s.ctx = c;
	s.pol = p;
	s.rep = rep;
	s.visit = visit;
	s.arg = arg;
	attach_inspect(&s, name && *name ? name : "(unnamed)",
		       data ? data : (const unsigned char *)"", len, 0, NULL, 0);
	if (s.nomem) {
		attach_report_fini(rep);
		return M_ENOMEM;
	}
	return 0;
}

void attach_report_fini(struct attach_report *rep)
{
	if (!rep)
		return;
	free(rep->f);
	rep->f = NULL;
	rep->n = 0;
}
