/*
 * libFuzzer target for the MIME walker and its helpers: the first byte
 * picks what reads the rest — a whole message (msg_parse then mime_parse
 * with small limits), an address list, a Content-Type parameter, or RFC
 * 2047 words. Every field of the result is read so ASan sees any pointer
 * past its bytes; everything is freed per input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "mail/addr.h"
#include "mail/mime.h"
#include "mail/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static void touch(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		sink += b[i];
}

static void touch_list(const struct addr_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		touch(l->v[i].display, strlen(l->v[i].display));
		touch(l->v[i].addr, strlen(l->v[i].addr));
		touch(l->v[i].domain, strlen(l->v[i].domain));
		if (l->v[i].group)
			touch(l->v[i].group, strlen(l->v[i].group));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int mode = data[0] & 3;
	char *p = malloc(size);
	if (!p)
		return 0;
	memcpy(p, data + 1, size - 1);
	size_t n = size - 1;
	struct arena a;
	arena_init(&a, 4096, 64u << 20);

	if (mode == 0) {
		int err;
		size_t line;
		struct msg *m = msg_parse(p, n, &err, &line);
		if (m) {
			struct mime_limits lim;
			struct mime_msg *mm;
			mime_limits_default(&lim);
			lim.max_parts = 200;
			lim.max_decoded = 1u << 20;
			if (mime_parse(m, &lim, &mm) == 0) {
				for (size_t i = 0; i < mm->nparts; i++) {
					const struct mime_part *pt = &mm->parts[i];
					if (pt->data)
						touch(pt->data, pt->len);
					touch(pt->filename, strlen(pt->filename));
				}
				touch(mm->subject, strlen(mm->subject));
				touch_list(&mm->from);
				touch_list(&mm->to);
				touch_list(&mm->cc);
				touch_list(&mm->reply_to);
				mime_free(mm);
			}
			msg_free(m);
		}
	} else if (mode == 1) {
		struct addr_list l;
		if (addr_parse_list(&a, p, n, &l) == 0)
			touch_list(&l);
	} else if (mode == 2) {
		char *v = mime_param(&a, p, n, "filename");
		if (v)
			touch(v, strlen(v));
		v = mime_param(&a, p, n, "name");
		if (v)
			touch(v, strlen(v));
	} else {
		char *v = mime_decode_words(&a, p, n);
		if (v)
			touch(v, strlen(v));
	}
	arena_fini(&a);
	free(p);
	return 0;
}
