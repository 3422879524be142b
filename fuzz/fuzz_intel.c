/*
 * Fuzz target for the indicator store's parsers: the input is added as an
 * indicator of every type (IP/CIDR, domain, URL, hash, e-mail) and looked
 * up again as every type, one by one and in one mixed batch (whose answers
 * must be the single lookups'), and run through the URL normaliser, whose
 * fast check must never call normal a URL that normalising would change.
 * A hostile feed value or event field gets an error or a miss, never a
 * crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "detect/intel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct intel_builder *b;
	struct intel_set *s;
	struct intel_typed_query q[12];
	const struct intel_indicator *out[12], *one[12];
	char norm[4096];
	size_t nlen = 0, half = size / 2;
	int t, i;

	if (intel_url_is_normal(p, size) &&
	    (intel_url_normalise(p, size, norm, sizeof(norm), &nlen) != 0 ||
	     nlen != size || memcmp(norm, p, size) != 0))
		abort();
	b = intel_builder_new();
	if (!b)
		return 0;
	(void)intel_url_normalise(p, size, norm, sizeof(norm), &nlen);
	for (t = INTEL_IP; t <= INTEL_EMAIL; t++)
		(void)intel_builder_add(b, (enum intel_type)t, p, size, NULL);
	/* Something valid of each type, so lookups walk real tables too. */
	(void)intel_builder_add(b, INTEL_IP, "10.0.0.0/8", 10, NULL);
	(void)intel_builder_add(b, INTEL_IP, "2001:db8::/32", 13, NULL);
	(void)intel_builder_add(b, INTEL_DOMAIN, "example.org", 11, NULL);
	s = intel_builder_finish(b);
	if (!s)
		return 0;
	one[0] = intel_lookup_ip(s, p, size, 0);
	one[1] = intel_lookup_domain(s, p, size, 0);
	one[2] = intel_lookup_url(s, p, size, 0);
	one[3] = intel_lookup_hash(s, p, size, 0);
	one[4] = intel_lookup_email(s, p, size, 0);
	/* the whole input as every type, then its two halves */
	for (i = 0; i < 12; i++) {
		q[i].type = (enum intel_type)(INTEL_IP + i % 6);
		q[i].p = i < 6 ? p : i < 9 ? p + half : p;
		q[i].len = i < 6 ? size : i < 9 ? size - half : half;
	}
	if (intel_lookup_batch(s, q, 12, out, 0) != 0)
		abort();
	for (i = 0; i < 5; i++)
		if (out[i] != one[i])
			abort();
	if (out[5] != NULL)    /* type 6 is no type */
		abort();
	intel_set_unref(s);
	return 0;
}
