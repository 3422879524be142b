/*
 * Fuzz target for the indicator store's parsers: the input is added as an
 * indicator of every type (IP/CIDR, domain, URL, hash, e-mail) and looked
 * up again as every type, and run through the URL normaliser, so a hostile
 * feed value or event field gets an error or a miss, never a crash.
 */
#include <stddef.h>
#include <stdint.h>

#include "detect/intel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct intel_builder *b = intel_builder_new();
	struct intel_set *s;
	char norm[4096];
	size_t nlen = 0;

	if (!b)
		return 0;
	(void)intel_url_normalise(p, size, norm, sizeof(norm), &nlen);
	for (int t = INTEL_IP; t <= INTEL_EMAIL; t++)
		(void)intel_builder_add(b, (enum intel_type)t, p, size, NULL);
	/* Something valid of each type, so lookups walk real tables too. */
	(void)intel_builder_add(b, INTEL_IP, "10.0.0.0/8", 10, NULL);
	(void)intel_builder_add(b, INTEL_IP, "2001:db8::/32", 13, NULL);
	(void)intel_builder_add(b, INTEL_DOMAIN, "example.org", 11, NULL);
	s = intel_builder_finish(b);
	if (!s)
		return 0;
	(void)intel_lookup_ip(s, p, size, 0);
	(void)intel_lookup_domain(s, p, size, 0);
	(void)intel_lookup_url(s, p, size, 0);
	(void)intel_lookup_hash(s, p, size, 0);
	(void)intel_lookup_email(s, p, size, 0);
	intel_set_unref(s);
	return 0;
}
