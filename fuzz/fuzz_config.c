/*
 * Fuzz target for the configuration loader: YAML text through conf_parse and
 * the real keyword tables (settings_load's path, minus the file read), so a
 * hostile file gets an error message, never a crash or a leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "api/api.h"
#include "core/buf.h"
#include "core/config.h"
#include "ingest/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_doc doc;
	struct buf err;
	struct ingest_config ic;
	struct api_config ac;

	buf_init(&err, 1 << 16);
	if (conf_parse("fuzz.yaml", (const char *)data, size, &doc, &err) == 0) {
		memset(&ic, 0, sizeof(ic));
		memset(&ac, 0, sizeof(ac));
		conf_apply(&doc, "ingest", ingest_keywords, &ic, &err);
		conf_apply(&doc, "api", api_keywords, &ac, &err);
		conf_free(ingest_keywords, &ic);
		conf_free(api_keywords, &ac);
		conf_doc_fini(&doc);
	}
	buf_fini(&err);
	return 0;
}
