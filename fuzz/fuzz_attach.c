/*
 * libFuzzer target for the attachment inspector: type by content, the
 * OLE2 directory reader, and libarchive walks over whatever the input is
 * (small limits so a bomb ends quickly). The input is copied to its own
 * allocation; the libmagic context is made once per process.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/attach.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct attach_ctx *ctx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[128];
	if (!ctx && !(ctx = attach_ctx_new(err, sizeof(err))))
		return 0;
	unsigned char *p = malloc(size ? size : 1);
	if (!p)
		return 0;
	memcpy(p, data, size);

	struct attach_policy pol;
	attach_policy_default(&pol);
	pol.max_total = 8u << 20;
	pol.ratio_floor = 1u << 20;
	pol.max_mem = 4u << 20;
	pol.max_entries = 64;
	struct attach_report rep;
	if (attach_scan(ctx, &pol, "fuzz.pdf.exe", p, size, NULL, NULL, &rep) == 0)
		attach_report_fini(&rep);
	int msi;
	(void)attach_ole_macros(p, size, &msi);
	free(p);
	return 0;
}
