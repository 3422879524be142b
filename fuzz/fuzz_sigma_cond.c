/*
 * libFuzzer target for sigma_cond_parse(): rule files come from users and
 * from feeds, so the condition compiler gets its own fuzzer. The input is
 * "condition text NUL names separated by newlines"; a condition that
 * compiles is described and evaluated against a few match bitmaps, and
 * in three-valued logic: whatever that decides, both completions of the
 * unknowns (all false, all true) must agree with.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "detect/sigma_cond.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t tlen = nul ? (size_t)(nul - data) : size;
	/* Private copies so ASan sees reads past either part's end. */
	char *text = malloc(tlen ? tlen : 1);
	char *names_blob = NULL;
	const char *names[SIGMA_COND_MAX_NAMES + 4];
	size_t n_names = 0, i, nlen;
	uint8_t matched[SIGMA_COND_MAX_NAMES + 4];
	struct sigma_cond *c = NULL;
	struct buf err, out;

	if (!text)
		return 0;
	memcpy(text, data, tlen);
	nlen = nul ? size - tlen - 1 : 0;
	names_blob = malloc(nlen + 1);
	if (!names_blob) {
		free(text);
		return 0;
	}
	if (nlen)
		memcpy(names_blob, nul + 1, nlen);
	names_blob[nlen] = '\0';
	if (nul) {
		char *p = names_blob;
		/* up to one past the limit, so the bound is exercised */
		while (n_names < SIGMA_COND_MAX_NAMES + 1) {
			char *nl = memchr(p, '\n', (size_t)(names_blob + nlen - p));
			names[n_names++] = p;
			if (!nl)
				break;
			*nl = '\0';
			p = nl + 1;
		}
	}
	buf_init(&err, 1 << 16);
	buf_init(&out, 1 << 20);
	if (sigma_cond_parse(text, tlen, names, n_names, &c, &err) == 0) {
		(void)sigma_cond_describe(c, &out);
		memset(matched, 0, sizeof(matched));
		(void)sigma_cond_eval(c, matched);
		memset(matched, 1, sizeof(matched));
		(void)sigma_cond_eval(c, matched);
		for (i = 0; i < sizeof(matched); i++)
			matched[i] = (uint8_t)((i * 2654435761u >> 7) & 1);
		(void)sigma_cond_eval(c, matched);
		for (i = 0; i < sizeof(matched); i++)
			matched[i] = (uint8_t)(i & 1);
		(void)sigma_cond_eval(c, matched);
		for (unsigned seed = 0; seed < 4; seed++) {
			uint8_t v3[SIGMA_COND_MAX_NAMES + 4], lo[sizeof(v3)], hi[sizeof(v3)];
			int r3;

			for (i = 0; i < sizeof(v3); i++) {
				v3[i] = (uint8_t)(((i + seed) * 2654435761u >> 9) % 3);
				lo[i] = v3[i] == 1;
				hi[i] = v3[i] != 0;
			}
			r3 = sigma_cond_eval3(c, v3);
			if ((r3 == 0 || r3 == 1) &&
			    (sigma_cond_eval(c, lo) != r3 || sigma_cond_eval(c, hi) != r3))
				__builtin_trap();
		}
	}
	sigma_cond_free(c);
	buf_fini(&err);
	buf_fini(&out);
	free(names_blob);
	free(text);
	return 0;
}
