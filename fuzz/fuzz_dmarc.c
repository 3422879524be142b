/*
 * libFuzzer target for the DMARC record parser (the _dmarc TXT text), the
 * aggregate-report XML parser (reports arrive from strangers), and the
 * organisational-domain lookup on hostile names (the From domain comes
 * from the message). The input is copied to its own allocation so
 * ASan sees any read past its end.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dmarc.h"
#include "mail/dmarc_report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = malloc(size + 1);
	if (!p)
		return 0;
	memcpy(p, data, size);
	struct dmarc_record rec;
	char why[128];
	(void)dmarc_is_record(p, size);
	if (dmarc_parse_record(p, size, &rec, why, sizeof(why)) == 0) {
		if (rec.pct > 100 || strlen(rec.rua) >= sizeof(rec.rua) ||
		    strlen(rec.fo) >= sizeof(rec.fo) || rec.p < 0 || rec.sp < 0 || rec.np < 0)
			__builtin_trap();
	}
	struct dmarc_feedback fb;
	if (dmarc_feedback_parse(p, size, &fb, why, sizeof(why)) == 0) {
		for (size_t i = 0; i < fb.nrecord; i++)
			if (fb.record[i].ndkim > DMARC_FB_MAX_AUTH ||
			    fb.record[i].nspf > DMARC_FB_MAX_AUTH)
				__builtin_trap();
	}
	dmarc_feedback_fini(&fb);
	p[size] = '\0';
	char org[256];
	if (dmarc_org_domain(p, org, sizeof(org)) == 0 && strlen(org) >= sizeof(org))
		__builtin_trap();
	free(p);
	return 0;
}
