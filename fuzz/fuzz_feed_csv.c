/*
 * Fuzz target for the CSV and plain-list readers and the time parser. The
 * first byte picks the column mapping (value, type and time columns, header
 * row, delimiter), the rest is the feed; the same bytes are read as a plain
 * list and as a time, and accepted items go through the indicator store.
 */
#include <stddef.h>
#include <stdint.h>

#include "detect/feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char delims[4][2] = {",", ";", "|", "\t"};
	struct feed_defaults d = {.confidence = 50, .now_us = 1700000000000000LL};
	struct feed_conf fc = {0};
	struct feed_items it;
	struct feed_stats st = {0};
	struct intel_builder *b;
	const char *p;
	int64_t t;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	p = (const char *)data + 1;
	size--;
	fc.csv_value_col = 1 + (sel & 3);
	fc.csv_type_col = (sel >> 2) & 3;
	fc.csv_header = (sel >> 4) & 1;
	fc.csv_delimiter = delims[(sel >> 5) & 3];
	fc.csv_confidence_col = (sel >> 7) ? 2 : 0;
	fc.csv_first_seen_col = 3;
	fc.csv_valid_until_col = 4;
	feed_items_init(&it, 100000);
	(void)feed_parse_csv(p, size, &fc, &d, &it, &st);
	(void)feed_parse_plain(p, size, &d, &it, &st);
	(void)feed_parse_time(p, size, &t);
	(void)feed_detect_type(p, size);
	b = intel_builder_new();
	if (b != NULL) {
		for (size_t i = 0; i < it.n; i++)
			(void)intel_builder_add(b, (enum intel_type)it.v[i].type,
						it.pool.p + it.v[i].off, it.v[i].len,
						NULL);
		intel_set_unref(intel_builder_finish(b));
	}
	feed_items_fini(&it);
	return 0;
}
