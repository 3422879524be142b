/*
 * The stream framer: turns the bytes of one TCP/TLS connection (or one
 * followed file) into records, without I/O, so the unit test, the fuzzer and
 * the listeners run the same code.
 *
 * Two framings exist on syslog streams (RFC 6587): "octet counting", where
 * every frame is "MSG-LEN SP MSG", and "non-transparent framing", where a
 * record ends at LF. A connection's framing is detected from its first bytes
 * (a non-zero digit, more digits, then a space means octet counting) and kept
 * for the connection's life.
 *
 * Every record is bounded by max_line: a longer one is cut at max_line bytes,
 * flagged FRAMING_F_TRUNCATED, and the rest of it is skipped. In octet mode a
 * frame header that is not "digits SP" (or whose length does not fit in nine
 * digits) is a framing error: the bytes up to the next LF become one record
 * flagged FRAMING_F_BAD_FRAME, and the next frame is expected after it.
 *
 * Memory: a framer owns a carry buffer for a record that spans reads; it
 * grows on demand up to max_line + 1 bytes and never beyond.
 */
#ifndef MAMORI_FRAMING_H
#define MAMORI_FRAMING_H

#include <stddef.h>
#include <stdint.h>

#include "core/pipeline.h"

/* Record flags; FRAMING_F_TRUNCATED is the pipeline's RAW_F_TRUNCATED so a
 * listener passes flags through unchanged. */
#define FRAMING_F_TRUNCATED RAW_F_TRUNCATED
#define FRAMING_F_BAD_FRAME RAW_F_BAD_FRAME

/* Largest octet count accepted: nine digits. */
#define FRAMING_MAX_DIGITS 9

enum framing_mode {
	FRAMING_AUTO,    /* detect from the first bytes (TCP syslog) */
	FRAMING_LF,      /* LF-delimited lines, CR before LF removed (files) */
	FRAMING_OCTET,   /* RFC 6587 octet counting only */
};

enum framing_state {
	FRAMING_S_START,    /* at a record boundary */
	FRAMING_S_HEADER,   /* reading "MSG-LEN" digits */
	FRAMING_S_LINE,     /* inside an LF-terminated record */
	FRAMING_S_BODY,     /* inside an octet-counted frame */
	FRAMING_S_SKIP_LINE,  /* dropping the rest of a too-long line */
	FRAMING_S_SKIP_BODY,  /* dropping the rest of a too-long frame */
};

struct framer {
	enum framing_mode mode;     /* AUTO until the first record decides */
	enum framing_state state;
	size_t max_line;
	uint64_t remain;            /* octet frame bytes still to come */
	uint16_t flags;             /* flags of the record being read */
	int detecting;              /* HEADER state decides the mode */
	int emitted;                /* carry was handed out: clear on next call */
	char *carry;                /* partial record (owned) */
	size_t carry_len, carry_cap;
};

/* One record. p points into the caller's input or into the framer's carry
 * buffer; it is valid until the next call on the framer or until the input
 * is released, whichever comes first. */
struct framing_rec {
	const char *p;
	size_t len;
	uint16_t flags;
};

/* Caller-owned struct. max_line must be at least 1. */
void framing_init(struct framer *f, enum framing_mode mode, size_t max_line);
void framing_fini(struct framer *f);
/* Forgets any partial record and starts over in the given mode (a file
 * that was truncated or rotated starts a new stream). */
void framing_reset(struct framer *f, enum framing_mode mode);

/* Consumes input from *p (*n bytes). Returns 1 with one record in *rec
 * (*p and *n advanced past it), 0 when all input is consumed and no record
 * is complete, M_ENOMEM when the carry buffer cannot grow (that record is
 * then skipped). Empty records are not returned. */
int framing_next(struct framer *f, const char **p, size_t *n,
		 struct framing_rec *rec);

/* At the end of the stream: returns 1 with the unterminated last record (an
 * LF-less line, or a short octet frame flagged FRAMING_F_BAD_FRAME), 0 when
 * there is none. The framer is reset to the start state either way. */
int framing_finish(struct framer *f, struct framing_rec *rec);

/* Bytes currently held for an incomplete record. */
static inline size_t framing_pending(const struct framer *f)
{
	return f->carry_len;
}

#endif
