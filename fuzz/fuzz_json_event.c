/*
 * libFuzzer target for json_event_parse() (EVE, Windows and generic JSON, and the json_scan tokenizer): every parser that reads
 * network bytes has its own fuzzer. Each input is parsed into a fresh event
 * with a fresh, capped arena, then written with event_to_json() so the
 * writer sees whatever the parser produced; everything is freed per input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/event.h"
#include "ingest/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena a;
	struct event *ev = malloc(sizeof(*ev));
	/* A private copy so ASan sees reads past the record's end. */
	char *p = malloc(size ? size : 1);
	struct buf out;

	if (!ev || !p) {
		free(ev);
		free(p);
		return 0;
	}
	memcpy(p, data, size);
	memset(ev, 0, sizeof(*ev));
	event_clear(ev);
	ev->recv_us = 1710072000000000LL;
	arena_init(&a, 4096, 64u << 20);
	(void)json_event_parse(p, size, ev, &a);
	buf_init(&out, 0);
	(void)event_to_json(ev, &out);
	buf_fini(&out);
	arena_fini(&a);
	free(p);
	free(ev);
	return 0;
}
