/*
 * Fuzz target for the MISP event reader: the input is one <uuid>.json event
 * file; attributes are filtered (to_ids, types), composite values split,
 * and the result added to the indicator store, so a hostile feed gets
 * counted skips and rejections, never a crash or a leak.
 */
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "detect/feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct feed_defaults d = {.confidence = 50};
	struct feed_items it;
	struct feed_stats st = {0};
	struct intel_builder *b;
	struct buf err;

	feed_items_init(&it, 100000);
	buf_init(&err, 4096);
	(void)feed_parse_misp_event((const char *)data, size, &d, &it, &st, &err);
	b = intel_builder_new();
	if (b != NULL) {
		for (size_t i = 0; i < it.n; i++)
			(void)intel_builder_add(b, (enum intel_type)it.v[i].type,
						it.pool.p + it.v[i].off, it.v[i].len,
						NULL);
		intel_set_unref(intel_builder_finish(b));
	}
	buf_fini(&err);
	feed_items_fini(&it);
	return 0;
}
