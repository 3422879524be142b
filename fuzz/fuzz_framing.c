/*
 * libFuzzer target for the stream framer (src/ingest/framing.c). Besides
 * "never crash, never overrun", it checks the framer's two promises: no
 * record is empty or longer than max_line, and the records do not depend
 * on how the stream was split into reads (the input is framed whole and
 * again in chunks whose sizes come from the input, and both must agree).
 *
 * Input layout: byte 0 picks the mode and max_line, byte 1 seeds the chunk
 * sizes, the rest is the stream.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/framing.h"

struct out {
	unsigned char *p;
	size_t len, cap;
};

static void out_rec(struct out *o, const struct framing_rec *r,
		    size_t max_line)
{
	uint32_t len = (uint32_t)r->len;

	if (r->len == 0 || r->len > max_line)
		abort();
	if (o->len + 6 + r->len > o->cap)
		abort();   /* each record consumes input: cannot happen */
	o->p[o->len++] = (unsigned char)r->flags;
	o->p[o->len++] = 0xff;
	memcpy(o->p + o->len, &len, sizeof(len));
	o->len += sizeof(len);
	memcpy(o->p + o->len, r->p, r->len);
	o->len += r->len;
}

static void run(const uint8_t *data, size_t size, enum framing_mode mode,
		size_t max_line, uint8_t seed, int chunked, struct out *o)
{
	struct framer f;
	struct framing_rec r;
	size_t off = 0;
	uint32_t x = seed * 2654435761u + 1;

	framing_init(&f, mode, max_line);
	while (off < size) {
		size_t k = size - off;
		const char *p;
		size_t n;

		if (chunked) {
			x = x * 1103515245u + 12345u;
			k = 1 + (x >> 16) % 17;
			if (k > size - off)
				k = size - off;
		}
		p = (const char *)data + off;
		n = k;
		for (;;) {
			int rc = framing_next(&f, &p, &n, &r);

			if (rc == 1) {
				out_rec(o, &r, max_line);
				continue;
			}
			if (rc < 0 || n != 0)
				abort();
			break;
		}
		off += k;
	}
	if (framing_finish(&f, &r) == 1)
		out_rec(o, &r, max_line);
	framing_fini(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t limits[8] = { 1, 2, 3, 8, 16, 64, 1024, 65536 };
	struct out a = { 0 }, b = { 0 };
	enum framing_mode mode;
	size_t max_line;
	uint8_t seed;

	if (size < 2)
		return 0;
	mode = (enum framing_mode)(data[0] % 3);
	max_line = limits[(data[0] >> 2) & 7];
	seed = data[1];
	data += 2;
	size -= 2;

	a.cap = b.cap = size * 7 + 16;
	a.p = malloc(a.cap);
	b.p = malloc(b.cap);
	if (!a.p || !b.p)
		abort();
	run(data, size, mode, max_line, seed, 0, &a);
	run(data, size, mode, max_line, seed, 1, &b);
	if (a.len != b.len || memcmp(a.p, b.p, a.len) != 0)
		abort();
	free(a.p);
	free(b.p);
	return 0;
}
