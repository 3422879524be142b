/*
 * Fuzz target for the STIX 2.1 reader: the input is parsed as a pattern on
 * its own and as a bundle (JSON DOM, latest-modified-wins, validity), and
 * what is accepted goes through the indicator store, so a hostile feed gets
 * a counted rejection, never a crash, a hang or a leak.
 */
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "detect/feed.h"

/* Adds every item to a builder and freezes it, as the loader does. */
static void to_store(const struct feed_items *it)
{
	struct intel_builder *b = intel_builder_new();

	if (b == NULL)
		return;
	for (size_t i = 0; i < it->n; i++)
		(void)intel_builder_add(b, (enum intel_type)it->v[i].type,
					it->pool.p + it->v[i].off, it->v[i].len, NULL);
	intel_set_unref(intel_builder_finish(b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct feed_defaults d = {.confidence = 50, .now_us = 1700000000000000LL};
	struct feed_item meta = {.confidence = 50};
	struct feed_items it;
	struct feed_stats st = {0};
	struct buf err;
	const char *why;

	feed_items_init(&it, 100000);
	buf_init(&err, 4096);
	(void)feed_stix_pattern(p, size, &meta, &it, &why);
	(void)feed_parse_stix(p, size, &d, &it, &st, &err);
	to_store(&it);
	buf_fini(&err);
	feed_items_fini(&it);
	return 0;
}
