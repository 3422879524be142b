/*
 * attach_office: macros in OLE2 compound files (.doc, .xls, .ppt, and the
 * vbaProject.bin inside OOXML), and MSI packages, which are OLE2 too.
 *
 * Why parse instead of grepping for "VBA": the storage names are UTF-16 in
 * directory entries, and a document may mention "VBA" in its text. The
 * compound file format ([MS-CFB]) is small: a 512-byte header, a FAT whose
 * sectors the header (and the DIFAT chain) lists, and a directory chain of
 * 128-byte entries. We read just enough to walk the directory.
 *
 * Bounds: every chain walk stops after as many steps as the file has
 * sectors (so a loop in the FAT ends), and every sector read is checked
 * against the buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "mail/attach.h"

#define ENDOFCHAIN 0xfffffffeu
#define FREESECT 0xffffffffu

struct cfb {
	const unsigned char *d;
	size_t n;
	unsigned ssz;       /* sector size */
	size_t nsect;       /* sectors in the file */
	uint32_t *fat_sec;  /* sector numbers of FAT sectors */
	size_t nfat;
};

static uint32_t rd32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint16_t rd16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Pointer to sector s, or NULL when it is outside the file. */
static const unsigned char *sector(const struct cfb *c, uint32_t s)
{
	if (s >= c->nsect)
		return NULL;
	size_t off = ((size_t)s + 1) * c->ssz;
	if (off + c->ssz > c->n)
		return NULL;
	return c->d + off;
}

/* The FAT entry of sector s: the next sector in its chain. */
static uint32_t fat_next(const struct cfb *c, uint32_t s)
{
	size_t per = c->ssz / 4;
	size_t idx = s / per;
	if (idx >= c->nfat)
		return ENDOFCHAIN;
	const unsigned char *fs = sector(c, c->fat_sec[idx]);
	if (!fs)
		return ENDOFCHAIN;
	return rd32(fs + (s % per) * 4);
}

static int load_fat(struct cfb *c)
{
	const unsigned char *h = c->d;
	uint32_t nfat = rd32(h + 0x2c);
	uint32_t difat = rd32(h + 0x44);
	uint32_t ndifat = rd32(h + 0x48);

	if (nfat > c->nsect)
		return M_EPARSE;
	c->fat_sec = calloc(nfat ? nfat : 1, sizeof(uint32_t));
	if (!c->fat_sec)
		return M_ENOMEM;
	for (uint32_t i = 0; i < nfat && i < 109; i++)
		c->fat_sec[c->nfat++] = rd32(h + 0x4c + 4 * i);
	size_t per = c->ssz / 4 - 1;
	for (uint32_t k = 0; k < ndifat && c->nfat < nfat && k < c->nsect; k++) {
		const unsigned char *ds = sector(c, difat);
		if (!ds)
			break;
		for (size_t i = 0; i < per && c->nfat < nfat; i++)
			c->fat_sec[c->nfat++] = rd32(ds + 4 * i);
		difat = rd32(ds + per * 4);
	}
	return 0;
}

/* The entry's name, UTF-16LE of ASCII only, into out; 0 if not ASCII. */
static int entry_name(const unsigned char *e, char *out, size_t cap)
{
	unsigned len = rd16(e + 0x40);
	if (len < 2 || len > 64 || (len & 1))
		return 0;
	unsigned chars = len / 2 - 1;
	if (chars >= cap)
		return 0;
	for (unsigned i = 0; i < chars; i++) {
		uint16_t ch = rd16(e + 2 * i);
		if (ch == 0 || ch >= 0x80)
			return 0;
		out[i] = (char)ch;
	}
	out[chars] = '\0';
	return 1;
}

int attach_ole_macros(const unsigned char *d, size_t n, int *is_msi)
{
	static const unsigned char msi_clsid[16] = {
		0x84, 0x10, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00,
		0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
	};
	static const unsigned char msi_patch[16] = {
		0x86, 0x10, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00,
		0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
	};
	struct cfb c;
	int found = 0;

	if (is_msi)
		*is_msi = 0;
	if (n < 512 || memcmp(d, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8) != 0)
		return M_EPARSE;
	unsigned shift = rd16(d + 0x1e);
	if (shift != 9 && shift != 12)
		return M_EPARSE;
	memset(&c, 0, sizeof(c));
	c.d = d;
	c.n = n;
	c.ssz = 1u << shift;
	c.nsect = n / c.ssz; /* the header counts as one, so this is a bound */
	int rc = load_fat(&c);
	if (rc)
		goto out;
	uint32_t s = rd32(d + 0x30);
	rc = M_EPARSE;
	for (size_t steps = 0; steps <= c.nsect && s != ENDOFCHAIN && s != FREESECT;
	     steps++) {
		const unsigned char *sp = sector(&c, s);
		if (!sp)
			break;
		rc = 0;
		for (unsigned off = 0; off + 128 <= c.ssz; off += 128) {
			const unsigned char *e = sp + off;
			unsigned type = e[0x42];
			char nm[40];
			if (type == 5 && is_msi &&
			    (memcmp(e + 0x50, msi_clsid, 16) == 0 ||
			     memcmp(e + 0x50, msi_patch, 16) == 0))
				*is_msi = 1;
			if ((type != 1 && type != 2) || !entry_name(e, nm, sizeof(nm)))
				continue;
			if (type == 1 && (strcmp(nm, "Macros") == 0 ||
					  strcmp(nm, "_VBA_PROJECT_CUR") == 0 ||
					  strcmp(nm, "VBA") == 0))
				found = 1;
			if (type == 2 && strcmp(nm, "_VBA_PROJECT") == 0)
				found = 1;
		}
		s = fat_next(&c, s);
	}
	if (found)
		rc = 1;
out:
	free(c.fat_sec);
	return rc;
}
