/*
 * Unit tests for the attachment policy: type by content (PE, ELF, Mach-O,
 * LNK, OLE2 with and without VBA, MSI, PDF, scripts), names (double
 * extensions, mismatch, RLO), and archives built here with libarchive's
 * writer (zip, nested zip, tar.gz, gz of one file, 7z, ISO, OOXML with a
 * vbaProject.bin, an encrypted zip, a zip bomb). Table-driven where it can
 * be; every input is made in memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "mail/attach.h"
#include "mail/mime.h"
#include "mail/msg.h"

static struct attach_ctx *ctx;
static struct attach_policy pol;

static int setup(void **state)
{
	char err[128];
	(void)state;
	ctx = attach_ctx_new(err, sizeof(err));
	if (!ctx) {
		fprintf(stderr, "attach_ctx_new: %s\n", err);
		return -1;
	}
	attach_policy_default(&pol);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	attach_ctx_free(ctx);
	return 0;
}

/* ---- inputs ---- */

struct blob {
	unsigned char *p;
	size_t n;
};

static struct blob pe_file(void)
{
	struct blob b = {calloc(1, 256), 256};
	memcpy(b.p, "MZ", 2);
	b.p[0x3c] = 0x80;
	memcpy(b.p + 0x80, "PE\0\0", 4);
	return b;
}

static struct blob bytes(const void *p, size_t n)
{
	struct blob b = {malloc(n ? n : 1), n};
	memcpy(b.p, p, n);
	return b;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void put_dirent(unsigned char *e, const char *name, int type)
{
	size_t l = strlen(name);
	for (size_t i = 0; i < l; i++)
		e[2 * i] = (unsigned char)name[i];
	e[0x40] = (unsigned char)(2 * (l + 1));
	e[0x42] = (unsigned char)type;
	put32(e + 0x44, 0xffffffffu);
	put32(e + 0x48, 0xffffffffu);
	put32(e + 0x4c, 0xffffffffu);
}

/* A minimal compound file: header, one FAT sector, one directory sector
 * with the root and one entry (name, type); msi: the root's CLSID is
 * MSI's. */
static struct blob ole_file(const char *name, int type, int msi)
{
	struct blob b = {calloc(1, 512 * 3), 512 * 3};
	unsigned char *h = b.p;
	memcpy(h, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8);
	h[0x18] = 0x3e;
	h[0x1a] = 3;
	h[0x1c] = 0xfe;
	h[0x1d] = 0xff;
	h[0x1e] = 9;
	h[0x20] = 6;
	put32(h + 0x2c, 1);          /* FAT sectors */
	put32(h + 0x30, 1);          /* first directory sector */
	put32(h + 0x38, 4096);
	put32(h + 0x3c, 0xfffffffeu);
	put32(h + 0x44, 0xfffffffeu);
	for (int i = 0; i < 109; i++)
		put32(h + 0x4c + 4 * i, 0xffffffffu);
	put32(h + 0x4c, 0);          /* FAT in sector 0 */
	unsigned char *fat = b.p + 512;
	for (int i = 0; i < 128; i++)
		put32(fat + 4 * i, 0xffffffffu);
	put32(fat, 0xfffffffdu);
	put32(fat + 4, 0xfffffffeu);
	unsigned char *dir = b.p + 1024;
	put_dirent(dir, "Root Entry", 5);
	if (msi) {
		static const unsigned char clsid[16] = {0x84, 0x10, 0x0c, 0, 0, 0, 0,
							0, 0xc0, 0, 0, 0, 0, 0, 0,
							0x46};
		memcpy(dir + 0x50, clsid, 16);
	}
	put_dirent(dir + 128, name, type);
	return b;
}

struct ent {
	const char *name;
	const void *data;
	size_t len;
};

/* An archive in memory: format and filter by libarchive's names, options
 * and a passphrase when given. */
static struct blob make_archive(const char *format, const char *filter,
				const char *opts, const char *pass,
				const struct ent *e, size_t ne)
{
	size_t cap = 64u * 1024 * 1024, used = 0;
	struct blob b = {malloc(cap), 0};
	struct archive *a = archive_write_new();
	assert_non_null(b.p);
	assert_int_equal(archive_write_set_format_by_name(a, format), ARCHIVE_OK);
	if (filter)
		assert_int_equal(archive_write_add_filter_by_name(a, filter), ARCHIVE_OK);
	if (opts && archive_write_set_options(a, opts) != ARCHIVE_OK)
		fail_msg("options %s: %s", opts, archive_error_string(a));
	if (pass)
		assert_int_equal(archive_write_set_passphrase(a, pass), ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(a, b.p, cap, &used), ARCHIVE_OK);
	for (size_t i = 0; i < ne; i++) {
		struct archive_entry *en = archive_entry_new();
		archive_entry_set_pathname(en, e[i].name);
		archive_entry_set_size(en, (la_int64_t)e[i].len);
		archive_entry_set_filetype(en, AE_IFREG);
		archive_entry_set_perm(en, 0644);
		assert_int_equal(archive_write_header(a, en), ARCHIVE_OK);
		if (e[i].len)
			assert_int_equal(archive_write_data(a, e[i].data, e[i].len),
					 (la_ssize_t)e[i].len);
		archive_entry_free(en);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	b.n = used;
	return b;
}

static struct blob zip_of(const char *name, struct blob in)
{
	struct ent e = {name, in.p, in.n};
	return make_archive("zip", NULL, NULL, NULL, &e, 1);
}

/* ---- checks ---- */

static const struct attach_finding *find(const struct attach_report *r,
					 enum attach_kind k, enum attach_class c)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->f[i].kind == k && (k != ATTACH_F_CLASS || r->f[i].cls == c))
			return &r->f[i];
	return NULL;
}

static void dump(const struct attach_report *r)
{
	for (size_t i = 0; i < r->n; i++)
		fprintf(stderr, "  %s %s %s '%s' mime=%s '%s'\n",
			attach_kind_name(r->f[i].kind), attach_class_name(r->f[i].cls),
			attach_action_name(r->f[i].action), r->f[i].path, r->f[i].mime,
			r->f[i].detail);
}

/* ---- type by content and by name ---- */

struct ccase {
	const char *name;
	int input;              /* index into the inputs built in the test */
	enum attach_class cls;  /* ATTACH_OTHER: no class finding */
	int double_ext, mismatch;
	enum attach_action worst;
};

enum { IN_PE, IN_ELF, IN_MACHO, IN_LNK, IN_OLE_VBA, IN_OLE_MACROS, IN_OLE_DOC,
       IN_MSI, IN_PDF, IN_PDF_JS, IN_TEXT, IN_SHEBANG, IN_BAT, IN_HTA, IN_VHDX,
       IN_MAX };

static void test_classes(void **state)
{
	struct blob in[IN_MAX];
	static const unsigned char elf[] = "\x7f" "ELF\2\1\1\0\0\0\0\0\0\0\0\0";
	static const unsigned char macho[] = "\xcf\xfa\xed\xfe\x07\0\0\x01";
	static const unsigned char lnk[] = "\x4c\0\0\0\x01\x14\x02\0\0\0\0\0\xc0\0\0\0\0\0\0\x46 rest";
	static const char pdf[] = "%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n";
	static const char pdfjs[] = "%PDF-1.4\n1 0 obj << /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>\n";
	static const char text[] = "Hello,\nplain words here.\n";
	static const char sh[] = "#!/bin/sh\nrm -rf /tmp/x\n";
	static const char bat[] = "@echo off\r\ndel /q c:\\x\r\n";
	static const char hta[] = "<html><HTA:APPLICATION id=x><script>1</script></html>";
	(void)state;
	in[IN_PE] = pe_file();
	in[IN_ELF] = bytes(elf, sizeof(elf) - 1);
	in[IN_MACHO] = bytes(macho, sizeof(macho) - 1);
	in[IN_LNK] = bytes(lnk, sizeof(lnk) - 1);
	in[IN_OLE_VBA] = ole_file("VBA", 1, 0);
	in[IN_OLE_MACROS] = ole_file("Macros", 1, 0);
	in[IN_OLE_DOC] = ole_file("WordDocument", 2, 0);
	in[IN_MSI] = ole_file("SummaryInformation", 2, 1);
	in[IN_PDF] = bytes(pdf, sizeof(pdf) - 1);
	in[IN_PDF_JS] = bytes(pdfjs, sizeof(pdfjs) - 1);
	in[IN_TEXT] = bytes(text, sizeof(text) - 1);
	in[IN_SHEBANG] = bytes(sh, sizeof(sh) - 1);
	in[IN_BAT] = bytes(bat, sizeof(bat) - 1);
	in[IN_HTA] = bytes(hta, sizeof(hta) - 1);
	in[IN_VHDX] = bytes("vhdxfile\0\0\0\0", 12);

	static const struct ccase tc[] = {
		{"setup.exe", IN_PE, ATTACH_EXECUTABLE, 0, 0, ATTACH_REJECT},
		{"noext", IN_PE, ATTACH_EXECUTABLE, 0, 0, ATTACH_REJECT},
		{"report.pdf", IN_PE, ATTACH_EXECUTABLE, 0, 1, ATTACH_REJECT},
		{"invoice.pdf.exe", IN_PE, ATTACH_EXECUTABLE, 1, 0, ATTACH_REJECT},
		{"invoice.pdf          .exe", IN_PE, ATTACH_EXECUTABLE, 1, 0, ATTACH_REJECT},
		{"a.elf", IN_ELF, ATTACH_EXECUTABLE, 0, 0, ATTACH_REJECT},
		{"a", IN_MACHO, ATTACH_EXECUTABLE, 0, 0, ATTACH_REJECT},
		{"doc.lnk", IN_LNK, ATTACH_SHORTCUT, 0, 0, ATTACH_REJECT},
		{"a.doc", IN_OLE_VBA, ATTACH_OFFICE_MACRO, 0, 0, ATTACH_QUARANTINE},
		{"a.xls", IN_OLE_MACROS, ATTACH_OFFICE_MACRO, 0, 0, ATTACH_QUARANTINE},
		{"a.doc", IN_OLE_DOC, ATTACH_OFFICE, 0, 0, ATTACH_ALLOW},
		{"setup.msi", IN_MSI, ATTACH_EXECUTABLE, 0, 0, ATTACH_REJECT},
		{"a.pdf", IN_PDF, ATTACH_PDF, 0, 0, ATTACH_ALLOW},
		{"a.pdf", IN_PDF_JS, ATTACH_PDF, 0, 0, ATTACH_ALLOW},
		{"notes.txt", IN_TEXT, ATTACH_OTHER, 0, 0, ATTACH_ALLOW},
		{"run.js", IN_TEXT, ATTACH_SCRIPT, 0, 0, ATTACH_REJECT},
		{"run.vbs", IN_TEXT, ATTACH_SCRIPT, 0, 0, ATTACH_REJECT},
		{"run.ps1", IN_TEXT, ATTACH_SCRIPT, 0, 0, ATTACH_REJECT},
		{"link.url", IN_TEXT, ATTACH_SHORTCUT, 0, 0, ATTACH_REJECT},
		{"photo.jpg.js", IN_TEXT, ATTACH_SCRIPT, 1, 0, ATTACH_REJECT},
		{"x.sh", IN_SHEBANG, ATTACH_SCRIPT, 0, 0, ATTACH_REJECT},
		{"x.txt", IN_SHEBANG, ATTACH_SCRIPT, 0, 1, ATTACH_REJECT},
		{"x", IN_BAT, ATTACH_SCRIPT, 0, 0, ATTACH_REJECT},
		{"x.hta", IN_HTA, ATTACH_SCRIPT, 0, 0, ATTACH_REJECT},
		{"disk.vhdx", IN_VHDX, ATTACH_DISK_IMAGE, 0, 0, ATTACH_QUARANTINE},
		{"disk.img", IN_TEXT, ATTACH_DISK_IMAGE, 0, 0, ATTACH_QUARANTINE},
		/* U+202E: "invoice\u202efdp.exe" shows as invoiceexe.pdf */
		{"invoice\xe2\x80\xae" "fdp.exe", IN_PE, ATTACH_EXECUTABLE, 1, 0,
		 ATTACH_REJECT},
		/* trailing dots and blanks are dropped by Windows */
		{"a.pdf.exe. ", IN_PE, ATTACH_EXECUTABLE, 1, 0, ATTACH_REJECT},
		{"archive.tar.gz", IN_TEXT, ATTACH_OTHER, 0, 0, ATTACH_ALLOW},
	};
	for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
		struct attach_report r;
		struct blob b = in[tc[i].input];
		assert_int_equal(attach_scan(ctx, &pol, tc[i].name, b.p, b.n, NULL,
					     NULL, &r), 0);
		const struct attach_finding *f = find(&r, ATTACH_F_CLASS, tc[i].cls);
		int bad = 0;
		if (tc[i].cls != ATTACH_OTHER && !f)
			bad = 1;
		if (tc[i].cls == ATTACH_OTHER && r.n &&
		    find(&r, ATTACH_F_CLASS, r.f[0].cls))
			bad = 1;
		if (!!find(&r, ATTACH_F_DOUBLE_EXT, 0) != tc[i].double_ext)
			bad = 1;
		if (!!find(&r, ATTACH_F_MISMATCH, 0) != tc[i].mismatch)
			bad = 1;
		if (r.worst != tc[i].worst)
			bad = 1;
		if (bad) {
			dump(&r);
			fail_msg("case %zu '%s'", i, tc[i].name);
		}
		if (f)
			assert_int_equal(strlen(f->sha256), 64);
		if (tc[i].input == IN_PDF_JS)
			assert_non_null(strstr(f->detail, "javascript"));
		attach_report_fini(&r);
	}
	for (int i = 0; i < IN_MAX; i++)
		free(in[i].p);
}

/* ---- archives ---- */

struct seen {
	char paths[16][128];
	int n;
};

static void visit(void *arg, const char *path, const unsigned char *d,
		  size_t len, int partial, enum attach_class cls)
{
	struct seen *s = arg;
	(void)d;
	(void)len;
	(void)partial;
	(void)cls;
	if (s->n < 16)
		snprintf(s->paths[s->n++], 128, "%s", path);
}

static void test_archives(void **state)
{
	struct blob pe = pe_file();
	struct attach_report r;
	struct seen seen;
	(void)state;

	/* zip with an exe inside: found with its path and hash */
	struct ent e[] = {{"docs/readme.txt", "hello\n", 6},
			  {"docs/invoice.pdf.exe", pe.p, pe.n}};
	struct blob zip = make_archive("zip", NULL, NULL, NULL, e, 2);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(attach_scan(ctx, &pol, "files.zip", zip.p, zip.n, visit,
				     &seen, &r), 0);
	const struct attach_finding *f = find(&r, ATTACH_F_CLASS, ATTACH_EXECUTABLE);
	assert_non_null(f);
	assert_string_equal(f->path, "files.zip/docs/invoice.pdf.exe");
	assert_non_null(find(&r, ATTACH_F_DOUBLE_EXT, 0));
	assert_non_null(find(&r, ATTACH_F_CLASS, ATTACH_ARCHIVE));
	assert_int_equal(r.worst, ATTACH_REJECT);
	assert_int_equal(r.files, 3);
	assert_int_equal(seen.n, 3);
	assert_string_equal(seen.paths[1], "files.zip/docs/readme.txt");
	attach_report_fini(&r);

	/* nested: zip in zip in zip; found inside at depth 3, and past the
	 * depth limit reported as such */
	struct blob z1 = zip_of("inner.exe", pe);
	struct blob z2 = zip_of("l2.zip", z1);
	struct blob z3 = zip_of("l3.zip", z2);
	assert_int_equal(attach_scan(ctx, &pol, "top.zip", z3.p, z3.n, NULL, NULL,
				     &r), 0);
	f = find(&r, ATTACH_F_CLASS, ATTACH_EXECUTABLE);
	assert_non_null(f);
	assert_string_equal(f->path, "top.zip/l3.zip/l2.zip/inner.exe");
	attach_report_fini(&r);
	struct attach_policy shallow = pol;
	shallow.max_depth = 2;
	assert_int_equal(attach_scan(ctx, &shallow, "top.zip", z3.p, z3.n, NULL,
				     NULL, &r), 0);
	assert_null(find(&r, ATTACH_F_CLASS, ATTACH_EXECUTABLE));
	assert_non_null(find(&r, ATTACH_F_LIMIT, 0));
	assert_int_equal(r.worst, ATTACH_QUARANTINE);
	attach_report_fini(&r);

	/* an entry over max_mem is hashed and typed by its head, not opened */
	size_t rn = 300 * 1024;
	struct blob rnd = {malloc(rn), rn};
	uint32_t x = 12345;
	for (size_t i = 0; i < rn; i++) {
		x = x * 1103515245u + 12345u;
		rnd.p[i] = (unsigned char)(x >> 24);
	}
	struct blob rz = zip_of("random.bin", rnd);
	struct blob rzz = zip_of("big.zip", rz);
	struct attach_policy lowmem = pol;
	lowmem.max_mem = 64 * 1024;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(attach_scan(ctx, &lowmem, "outer.zip", rzz.p, rzz.n, visit,
				     &seen, &r), 0);
	f = find(&r, ATTACH_F_LIMIT, 0);
	assert_non_null(f);
	assert_string_equal(f->path, "outer.zip/big.zip");
	assert_int_equal(strlen(f->sha256), 64);
	assert_int_equal(seen.n, 2);
	attach_report_fini(&r);
	/* with the default budget it is opened */
	assert_int_equal(attach_scan(ctx, &pol, "outer.zip", rzz.p, rzz.n, NULL,
				     NULL, &r), 0);
	assert_null(find(&r, ATTACH_F_LIMIT, 0));
	assert_int_equal(r.files, 3);
	attach_report_fini(&r);
	free(rnd.p);
	free(rz.p);
	free(rzz.p);

	/* tar.gz, a lone .gz, 7z */
	struct ent one = {"tool.exe", pe.p, pe.n};
	struct blob tgz = make_archive("ustar", "gzip", NULL, NULL, &one, 1);
	assert_int_equal(attach_scan(ctx, &pol, "a.tgz", tgz.p, tgz.n, NULL, NULL,
				     &r), 0);
	f = find(&r, ATTACH_F_CLASS, ATTACH_EXECUTABLE);
	assert_non_null(f);
	assert_string_equal(f->path, "a.tgz/tool.exe");
	attach_report_fini(&r);

	struct blob gz = make_archive("raw", "gzip", NULL, NULL, &one, 1);
	assert_int_equal(attach_scan(ctx, &pol, "tool.exe.gz", gz.p, gz.n, NULL,
				     NULL, &r), 0);
	f = find(&r, ATTACH_F_CLASS, ATTACH_EXECUTABLE);
	assert_non_null(f);
	assert_string_equal(f->path, "tool.exe.gz/tool.exe");
	attach_report_fini(&r);

	struct blob sz = make_archive("7zip", NULL, NULL, NULL, &one, 1);
	assert_int_equal(attach_scan(ctx, &pol, "a.7z", sz.p, sz.n, NULL, NULL,
				     &r), 0);
	assert_non_null(find(&r, ATTACH_F_CLASS, ATTACH_EXECUTABLE));
	attach_report_fini(&r);

	/* an ISO holding an exe: a disk image, opened */
	struct blob iso = make_archive("iso9660", NULL, NULL, NULL, &one, 1);
	assert_int_equal(attach_scan(ctx, &pol, "a.iso", iso.p, iso.n, NULL, NULL,
				     &r), 0);
	assert_non_null(find(&r, ATTACH_F_CLASS, ATTACH_DISK_IMAGE));
	f = find(&r, ATTACH_F_CLASS, ATTACH_EXECUTABLE);
	if (!f) {
		dump(&r);
		fail_msg("no exe inside the ISO");
	}
	attach_report_fini(&r);

	/* a zip named .pdf is a mismatch */
	assert_int_equal(attach_scan(ctx, &pol, "scan.pdf", zip.p, zip.n, NULL,
				     NULL, &r), 0);
	assert_non_null(find(&r, ATTACH_F_MISMATCH, 0));
	attach_report_fini(&r);

	/* garbage after a zip signature: corrupt, reported, no crash */
	unsigned char junk[64];
	memset(junk, 0x10, sizeof(junk));
	memcpy(junk, "PK\3\4", 4);
	assert_int_equal(attach_scan(ctx, &pol, "bad.zip", junk, sizeof(junk),
				     NULL, NULL, &r), 0);
	if (!find(&r, ATTACH_F_CORRUPT, 0)) {
		dump(&r);
		fail_msg("no corrupt finding");
	}
	attach_report_fini(&r);

	free(pe.p);
	free(zip.p);
	free(z1.p);
	free(z2.p);
	free(z3.p);
	free(tgz.p);
	free(gz.p);
	free(sz.p);
	free(iso.p);
}

static void test_ooxml(void **state)
{
	struct attach_report r;
	struct blob vba = ole_file("VBA", 1, 0);
	struct blob pe = pe_file();
	static const char ct[] = "<?xml version=\"1.0\"?><Types/>";
	static const char doc[] = "<w:document/>";
	(void)state;

	struct ent docm[] = {{"[Content_Types].xml", ct, sizeof(ct) - 1},
			     {"word/document.xml", doc, sizeof(doc) - 1},
			     {"word/vbaProject.bin", vba.p, vba.n}};
	struct blob b = make_archive("zip", NULL, NULL, NULL, docm, 3);
	assert_int_equal(attach_scan(ctx, &pol, "q3.docx", b.p, b.n, NULL, NULL,
				     &r), 0);
	const struct attach_finding *f = find(&r, ATTACH_F_CLASS, ATTACH_OFFICE_MACRO);
	assert_non_null(f);
	assert_string_equal(f->detail, "word/vbaProject.bin");
	assert_null(find(&r, ATTACH_F_CLASS, ATTACH_ARCHIVE));
	assert_null(find(&r, ATTACH_F_MISMATCH, 0));
	assert_int_equal(r.worst, ATTACH_QUARANTINE);
	attach_report_fini(&r);
	free(b.p);

	/* xlsm; and a plain docx with an embedded exe */
	struct ent xlsm[] = {{"[Content_Types].xml", ct, sizeof(ct) - 1},
			     {"xl/vbaProject.bin", vba.p, vba.n}};
	b = make_archive("zip", NULL, NULL, NULL, xlsm, 2);
	assert_int_equal(attach_scan(ctx, &pol, "b.xlsm", b.p, b.n, NULL, NULL,
				     &r), 0);
	assert_non_null(find(&r, ATTACH_F_CLASS, ATTACH_OFFICE_MACRO));
	attach_report_fini(&r);
	free(b.p);

	struct ent docx[] = {{"[Content_Types].xml", ct, sizeof(ct) - 1},
			     {"word/document.xml", doc, sizeof(doc) - 1},
			     {"word/embeddings/oleObject1.bin", pe.p, pe.n}};
	b = make_archive("zip", NULL, NULL, NULL, docx, 3);
	assert_int_equal(attach_scan(ctx, &pol, "c.docx", b.p, b.n, NULL, NULL,
				     &r), 0);
	assert_non_null(find(&r, ATTACH_F_CLASS, ATTACH_OFFICE));
	f = find(&r, ATTACH_F_CLASS, ATTACH_EXECUTABLE);
	assert_non_null(f);
	assert_string_equal(f->path, "c.docx/word/embeddings/oleObject1.bin");
	assert_int_equal(r.files, 2); /* the xml parts are not files */
	attach_report_fini(&r);
	free(b.p);
	free(vba.p);
	free(pe.p);
}

static void test_encrypted(void **state)
{
	struct attach_report r;
	struct ent e = {"secret.exe", "MZ not really", 13};
	struct archive *probe = archive_write_new();
	(void)state;

	/* libarchive may be built without zip encryption: then skip */
	archive_write_set_format_zip(probe);
	int ok = archive_write_set_options(probe, "zip:encryption=zipcrypt") ==
		 ARCHIVE_OK;
	archive_write_free(probe);
	if (!ok) {
		fprintf(stderr, "libarchive without zip encryption; skipped\n");
		skip();
	}
	struct blob b = make_archive("zip", NULL, "zip:encryption=zipcrypt", "pw",
				     &e, 1);
	assert_int_equal(attach_scan(ctx, &pol, "locked.zip", b.p, b.n, NULL, NULL,
				     &r), 0);
	const struct attach_finding *f = find(&r, ATTACH_F_ENCRYPTED, 0);
	if (!f) {
		dump(&r);
		fail_msg("encrypted entry not reported");
	}
	assert_string_equal(f->path, "locked.zip/secret.exe");
	assert_int_equal(r.worst, ATTACH_QUARANTINE);
	attach_report_fini(&r);

	struct attach_policy strict = pol;
	strict.kind[ATTACH_F_ENCRYPTED] = ATTACH_REJECT;
	assert_int_equal(attach_scan(ctx, &strict, "locked.zip", b.p, b.n, NULL,
				     NULL, &r), 0);
	assert_int_equal(r.worst, ATTACH_REJECT);
	attach_report_fini(&r);
	free(b.p);
}

static void test_bomb(void **state)
{
	struct attach_report r;
	size_t big = 24u * 1024 * 1024;
	unsigned char *zeros = calloc(1, big);
	(void)state;
	assert_non_null(zeros);

	struct ent e = {"zeros.bin", zeros, big};
	struct blob b = make_archive("zip", NULL, NULL, NULL, &e, 1);
	free(zeros);
	assert_true(b.n < big / 100);

	struct attach_policy p = pol;
	p.ratio_floor = 1u * 1024 * 1024;
	assert_int_equal(attach_scan(ctx, &p, "bomb.zip", b.p, b.n, NULL, NULL, &r), 0);
	const struct attach_finding *f = find(&r, ATTACH_F_BOMB, 0);
	if (!f) {
		dump(&r);
		fail_msg("no bomb finding");
	}
	assert_non_null(strstr(f->detail, "ratio"));
	assert_int_equal(r.worst, ATTACH_REJECT);
	attach_report_fini(&r);

	/* the total bound catches it too */
	p = pol;
	p.max_ratio = 1000000;
	p.max_total = 4u * 1024 * 1024;
	assert_int_equal(attach_scan(ctx, &p, "bomb.zip", b.p, b.n, NULL, NULL, &r), 0);
	f = find(&r, ATTACH_F_BOMB, 0);
	assert_non_null(f);
	attach_report_fini(&r);
	free(b.p);

	/* too many entries */
	struct ent many[40];
	char names[40][16];
	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "f%d.txt", i);
		many[i] = (struct ent){names[i], "x", 1};
	}
	b = make_archive("zip", NULL, NULL, NULL, many, 40);
	p = pol;
	p.max_entries = 10;
	assert_int_equal(attach_scan(ctx, &p, "many.zip", b.p, b.n, NULL, NULL, &r), 0);
	assert_non_null(find(&r, ATTACH_F_LIMIT, 0));
	assert_int_equal(r.files, 10);
	attach_report_fini(&r);
	free(b.p);
}

static void test_ole_parser(void **state)
{
	(void)state;
	/* truncated and looping compound files are errors, never crashes */
	struct blob o = ole_file("VBA", 1, 0);
	int msi;
	assert_int_equal(attach_ole_macros(o.p, o.n, &msi), 1);
	assert_int_equal(attach_ole_macros(o.p, 1000, &msi), M_EPARSE);
	assert_int_equal(attach_ole_macros(o.p, 100, &msi), M_EPARSE);
	/* the directory's FAT entry points at itself: the walk still ends */
	put32(o.p + 512 + 4, 1);
	assert_int_equal(attach_ole_macros(o.p, o.n, &msi), 1);
	/* an absurd FAT count */
	put32(o.p + 0x2c, 0x7fffffff);
	assert_int_equal(attach_ole_macros(o.p, o.n, &msi), M_EPARSE);
	free(o.p);
	assert_int_equal(attach_sniff((const unsigned char *)"", 0, NULL),
			 ATTACH_OTHER);
}

static void test_names(void **state)
{
	enum attach_class c;
	enum attach_kind k;
	enum attach_action a;
	(void)state;
	for (int i = 0; i < ATTACH_CLASS_MAX; i++) {
		assert_int_equal(attach_class_parse(attach_class_name((enum attach_class)i), &c), 0);
		assert_int_equal(c, i);
	}
	for (int i = 0; i < ATTACH_F_KIND_MAX; i++) {
		assert_int_equal(attach_kind_parse(attach_kind_name((enum attach_kind)i), &k), 0);
		assert_int_equal(k, i);
	}
	assert_int_equal(attach_action_parse("Quarantine", &a), 0);
	assert_int_equal(a, ATTACH_QUARANTINE);
	assert_int_equal(attach_action_parse("drop", &a), M_EINVAL);
	assert_int_equal(attach_class_parse("nope", &c), M_EINVAL);
}

/* The way the milter uses it: MIME parts, then each attachment. */
static void test_from_mail(void **state)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	struct blob pe = pe_file();
	struct blob zip = zip_of("invoice.pdf.exe", pe);
	size_t cap = zip.n * 2 + 1024, n = 0;
	char *text = malloc(cap);
	(void)state;
	assert_non_null(text);
	n += (size_t)snprintf(text, cap,
			      "From: a@example.org\r\nSubject: invoice\r\n"
			      "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
			      "--b\r\n\r\nsee attached\r\n--b\r\n"
			      "Content-Type: application/zip; name=\"inv.zip\"\r\n"
			      "Content-Transfer-Encoding: base64\r\n\r\n");
	for (size_t i = 0; i < zip.n; i += 3) {
		unsigned v = (unsigned)zip.p[i] << 16;
		if (i + 1 < zip.n)
			v |= (unsigned)zip.p[i + 1] << 8;
		if (i + 2 < zip.n)
			v |= zip.p[i + 2];
		text[n++] = b64[v >> 18 & 63];
		text[n++] = b64[v >> 12 & 63];
		text[n++] = i + 1 < zip.n ? b64[v >> 6 & 63] : '=';
		text[n++] = i + 2 < zip.n ? b64[v & 63] : '=';
		if (i % 57 == 54) {
			text[n++] = '\r';
			text[n++] = '\n';
		}
	}
	n += (size_t)snprintf(text + n, cap - n, "\r\n--b--\r\n");

	int err;
	size_t line;
	struct msg *m = msg_parse(text, n, &err, &line);
	struct mime_msg *mm;
	assert_non_null(m);
	assert_int_equal(mime_parse(m, NULL, &mm), 0);
	int attachments = 0;
	for (size_t i = 0; i < mm->nparts; i++) {
		const struct mime_part *pt = &mm->parts[i];
		if (!pt->is_attachment || !pt->data)
			continue;
		attachments++;
		assert_int_equal(pt->len, zip.n);
		struct attach_report r;
		assert_int_equal(attach_scan(ctx, &pol, pt->filename, pt->data, pt->len,
					     NULL, NULL, &r), 0);
		const struct attach_finding *f = find(&r, ATTACH_F_DOUBLE_EXT, 0);
		assert_non_null(f);
		assert_string_equal(f->path, "inv.zip/invoice.pdf.exe");
		assert_int_equal(r.worst, ATTACH_REJECT);
		attach_report_fini(&r);
	}
	assert_int_equal(attachments, 1);
	mime_free(mm);
	msg_free(m);
	free(text);
	free(zip.p);
	free(pe.p);
}

/* Every crash fuzz_attach found, replayed. */
static void test_fuzz_regressions(void **state)
{
	/* a broken gzip: libarchive crashed when asked about encryption
	 * before any format was chosen */
	static const unsigned char gz_crash[] =
		"\x1f\x8b\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c"
		"\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\xff\xff\xff\xff"
		"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
		"\xff\xff\xff\xff\xff\xff\xff\xd7\xd7\xd7\xd7\xd7\xd7\xd7\xff\xff"
		"\xff\xff\xff\xff\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c"
		"\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x08";
	static const struct blob cases[] = {
		{(unsigned char *)gz_crash, sizeof(gz_crash) - 1},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct attach_report r;
		assert_int_equal(attach_scan(ctx, &pol, "fuzz.pdf.exe", cases[i].p,
					     cases[i].n, NULL, NULL, &r), 0);
		attach_report_fini(&r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classes),
		cmocka_unit_test(test_archives),
		cmocka_unit_test(test_ooxml),
		cmocka_unit_test(test_encrypted),
		cmocka_unit_test(test_bomb),
		cmocka_unit_test(test_ole_parser),
		cmocka_unit_test(test_fuzz_regressions),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_from_mail),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
