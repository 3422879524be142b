/*
 * Fuzz target for the store's full-text query handling (src/store/ftsq.c):
 * a user's search text is normalised, compiled, and matched against a
 * message, as a search over the not-yet-indexed tail does. Input: query and
 * message separated by the first NUL (no NUL: the input is both).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "store/ftsq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *q = (const char *)data;
	const char *nul = memchr(data, 0, size);
	size_t qn = nul ? (size_t)(nul - q) : size;
	const char *msg = nul ? nul + 1 : q;
	size_t mn = nul ? size - qn - 1 : size;
	struct buf text, norm;
	struct ftsq *c = NULL;

	buf_init(&text, 1 << 20);
	buf_init(&norm, 1 << 20);
	if (buf_append(&text, q, qn) == 0 && buf_cstr(&text) == 0 &&
	    ftsq_normalise(text.p ? text.p : "", &norm) == 0 &&
	    ftsq_compile(norm.p, norm.len, &c) == 0) {
		(void)ftsq_match(c, msg, mn);
		ftsq_free(c);
	}
	/* The raw text compiled as a query too: users may send FTS5 syntax. */
	if (ftsq_compile(q, qn, &c) == 0) {
		(void)ftsq_match(c, msg, mn);
		ftsq_free(c);
	}
	buf_fini(&text);
	buf_fini(&norm);
	return 0;
}
