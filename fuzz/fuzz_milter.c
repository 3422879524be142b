/*
 * libFuzzer target for the milter protocol (milter_conn_packet): the input
 * is a stream of packets as an MTA would send them (4-byte length, command,
 * data), cut the way the socket loop cuts it, fed to one connection's state
 * machine whose end-of-message hook asks for every kind of reply. Headers,
 * body chunks, macros and addresses all come from the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "mail/milter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void eom(void *arg, const struct milter_session *s, struct milter_reply *r)
{
	(void)arg;
	long i = msg_find(s->m, "Subject", 0);
	if (i >= 0) {
		char *v = msg_hdr_unfolded(s->m, (size_t)i);
		milter_reply_op(r, MILTER_OP_ADD, 0, "X-Subject", v ? v : "");
		free(v);
	}
	milter_reply_op(r, MILTER_OP_INSERT, 0, "Authentication-Results", "fuzz; none");
	milter_reply_op(r, MILTER_OP_CHANGE, 1, "Authentication-Results", "");
	r->verdict = (enum milter_verdict)(s->nrcpt % 5);
	memcpy(r->text, "text\r\n%", 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct milter_hooks h = {NULL, eom};
	struct milter_conn *c = milter_conn_new(&h, 1u << 20, 1);
	struct buf out;
	size_t at = 0;

	if (!c)
		return 0;
	buf_init(&out, 1u << 22);
	while (at + 5 <= size) {
		uint32_t len = (uint32_t)data[at] << 24 | (uint32_t)data[at + 1] << 16 |
			       (uint32_t)data[at + 2] << 8 | data[at + 3];
		at += 4;
		if (len == 0 || len > size - at)
			break;
		/* The packet in its own allocation, so ASan sees reads past it. */
		uint8_t *p = malloc(len);
		if (!p)
			break;
		memcpy(p, data + at, len);
		at += len;
		buf_reset(&out);
		int rc = milter_conn_packet(c, p[0], p + 1, len - 1, &out);
		free(p);
		if (rc != 0)
			break;
	}
	buf_fini(&out);
	milter_conn_free(c);
	return 0;
}
