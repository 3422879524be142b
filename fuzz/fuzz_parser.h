/*
 * The body shared by the parser fuzz targets: the input is copied to its own
 * allocation (so ASan sees any read past the record's end), parsed into a
 * fresh event with an arena, and the result written as JSON, as the
 * pipeline and the store would.
 */
#ifndef MAMORI_FUZZ_PARSER_H
#define MAMORI_FUZZ_PARSER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/event.h"

static inline int fuzz_parse(int (*parse)(const char *, size_t, struct event *,
					  struct arena *),
			     const uint8_t *data, size_t size)
{
	struct arena a;
	struct event *ev = malloc(sizeof(*ev));
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
	(void)parse(p, size, ev, &a);
	buf_init(&out, 0);
	(void)event_to_json(ev, &out);
	buf_fini(&out);
	arena_fini(&a);
	free(p);
	free(ev);
	return 0;
}

#endif
