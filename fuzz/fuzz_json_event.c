/*
 * libFuzzer target for json_event_parse() (EVE, Windows and generic JSON, and the json_scan tokenizer): every parser that reads
 * network bytes has its own fuzzer. Each input is parsed into a fresh event
 * with a fresh, capped arena, then written with event_to_json() so the
 * writer sees whatever the parser produced; everything is freed per input.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_parser.h"
#include "ingest/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_parse(json_event_parse, data, size);
}
