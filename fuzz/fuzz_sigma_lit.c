/*
 * libFuzzer target for sigma_lit.c: the reader of a predicate's expression
 * (does it stand for a plain string?) and the plain-string test that
 * replaces PCRE2 for those. The input is "expression NUL value"; the first
 * byte's low bit asks for caseless. An expression taken as a plain string
 * must be one PCRE2 compiles, and both must give the same answer on the
 * value: any difference aborts. The expression's gate (sigma_re_gate)
 * must be in the value whenever PCRE2 finds a match there, or it aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "detect/sigma_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul;
	struct sigma_pred p;
	size_t rlen, vlen;
	char *re, *val;
	int caseless, ec;
	PCRE2_SIZE eo;
	pcre2_code *pc;

	if (size < 1)
		return 0;
	caseless = data[0] & 1;
	data++;
	size--;
	nul = memchr(data, 0, size);
	rlen = nul ? (size_t)(nul - data) : size;
	vlen = nul ? size - rlen - 1 : 0;
	re = malloc(rlen + 1);
	val = malloc(vlen ? vlen : 1);
	if (!re || !val) {
		free(re);
		free(val);
		return 0;
	}
	memcpy(re, data, rlen);
	re[rlen] = '\0';
	if (vlen)
		memcpy(val, nul + 1, vlen);
	memset(&p, 0, sizeof(p));
	p.kind = SPK_STR;
	p.flags = caseless ? SPF_CASELESS : 0;
	p.re = re;
	if (sigma_lit_prepare(&p) == 0 && p.lit) {
		int got = sigma_lit_match(&p, val, vlen);

		pc = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
				   caseless ? PCRE2_CASELESS : 0, &ec, &eo, NULL);
		if (!pc)
			abort();
		{
			pcre2_match_data *md = pcre2_match_data_create_from_pattern(pc, NULL);
			int want = pcre2_match(pc, (PCRE2_SPTR)val, vlen, 0, 0, md, NULL) >= 0;

			pcre2_match_data_free(md);
			pcre2_code_free(pc);
			if (got != want)
				abort();
		}
	}
	{
		char g[256];
		size_t gn = sigma_re_gate(re, g, sizeof(g));

		pc = gn ? pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
					caseless ? PCRE2_CASELESS : 0, &ec, &eo, NULL) : NULL;
		if (pc) {
			pcre2_match_data *md = pcre2_match_data_create_from_pattern(pc, NULL);
			int found = 0;

			if (pcre2_match(pc, (PCRE2_SPTR)val, vlen, 0, 0, md, NULL) >= 0) {
				for (size_t at = 0; !found && at + gn <= vlen; at++)
					found = strncasecmp(val + at, g, gn) == 0;
				if (!found)
					abort();
			}
			pcre2_match_data_free(md);
			pcre2_code_free(pc);
		}
	}
	free(p.lit_s);
	free(re);
	free(val);
	return 0;
}
