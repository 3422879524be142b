/*
 * libFuzzer target for syslog_parse() (RFC 5424, RFC 3164 and CEF over syslog): every parser that reads
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
	return fuzz_parse(syslog_parse, data, size);
}
