/*
 * libFuzzer target for dlp_scan(): one scanner with the default keywords
 * and two custom patterns is built on the first input and kept (as the
 * milter keeps it); each input is copied to its own allocation, scanned,
 * the samples checked to be bounded strings, and the result freed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct dlp_pattern fuzz_patterns[] = {
	{ "employee_id", "EMP-[0-9]{6}" },
	{ "words", "(?i)secret\\s+\\w+" },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dlp *d;
	struct dlp_result r;
	char *p;
	size_t i, k;

	if (!d) {
		struct dlp_conf c;

		memset(&c, 0, sizeof(c));
		c.patterns = fuzz_patterns;
		c.n_patterns = 2;
		d = dlp_new(&c, NULL, 0);
		if (!d)
			abort();
	}
	p = malloc(size ? size : 1);
	if (!p)
		return 0;
	memcpy(p, data, size);
	if (dlp_scan(d, p, size, &r) == 0) {
		for (i = 0; i < r.n; i++)
			for (k = 0; k < r.item[i].n_samples; k++)
				if (!memchr(r.item[i].sample[k], '\0',
					    DLP_SAMPLE_MAX))
					abort();
		dlp_result_fini(&r);
	}
	free(p);
	return 0;
}
