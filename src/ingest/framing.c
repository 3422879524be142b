/*
 * The stream framer (see framing.h): a state machine over the bytes of one
 * stream that hands out records one at a time. It is written so that the
 * records do not depend on how the stream was split into reads: a record
 * that lies whole inside one input chunk is returned in place (no copy);
 * one that spans chunks is gathered in a carry buffer bounded by max_line.
 * The fuzzer checks that split-invariance.
 */
#include "ingest/framing.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"

#define FRAMING_CARRY_MIN 256

static size_t framing_carry_limit(const struct framer *f)
{
	/* A line is gathered up to max_line + 1 bytes (the extra one may be
	 * the CR of a CRLF); header digits are held while detecting. */
	size_t lim = f->max_line + 1;

	if (lim < FRAMING_MAX_DIGITS + 1)
		lim = FRAMING_MAX_DIGITS + 1;
	return lim;
}

/* Appends n bytes to the carry, growing it by doubling up to its limit;
 * the caller never asks for more than the limit. */
static int framing_carry_append(struct framer *f, const char *p, size_t n)
{
	size_t need = f->carry_len + n;
	size_t cap;
	char *np;

	if (n == 0)
		return 0;
	if (need > f->carry_cap) {
		cap = f->carry_cap ? f->carry_cap : FRAMING_CARRY_MIN;
		while (cap < need)
			cap *= 2;
		if (cap > framing_carry_limit(f))
			cap = framing_carry_limit(f);
		if (cap < need)
			return M_ELIMIT;
		np = realloc(f->carry, cap);
		if (!np)
			return M_ENOMEM;
		f->carry = np;
		f->carry_cap = cap;
	}
	memcpy(f->carry + f->carry_len, p, n);
	f->carry_len = need;
	return 0;
}

void framing_init(struct framer *f, enum framing_mode mode, size_t max_line)
{
	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->max_line = max_line ? max_line : 1;
	f->state = mode == FRAMING_LF ? FRAMING_S_LINE : FRAMING_S_START;
}

void framing_fini(struct framer *f)
{
	free(f->carry);
	f->carry = NULL;
	f->carry_len = f->carry_cap = 0;
}

void framing_reset(struct framer *f, enum framing_mode mode)
{
	f->mode = mode;
	f->state = mode == FRAMING_LF ? FRAMING_S_LINE : FRAMING_S_START;
	f->remain = 0;
	f->flags = 0;
	f->detecting = 0;
	f->emitted = 0;
	f->carry_len = 0;
}

/* The state that follows a finished record. */
static enum framing_state framing_after_record(const struct framer *f)
{
	return f->mode == FRAMING_LF ? FRAMING_S_LINE : FRAMING_S_START;
}

/* Hands out the carry (or an in-place slice) as the current record. */
static void framing_emit(struct framer *f, const char *p, size_t len,
			 struct framing_rec *rec)
{
	rec->p = p;
	rec->len = len;
	rec->flags = f->flags;
	f->emitted = 1;
}

/* Drops trailing LF, CR and NUL bytes (octet frames often end in one). */
static size_t framing_trim(const char *p, size_t len)
{
	while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r' ||
			   p[len - 1] == '\0'))
		len--;
	return len;
}

static void framing_advance(const char **p, size_t *n, size_t k)
{
	*p += k;
	*n -= k;
}

/* START: at a record boundary in AUTO or OCTET mode. */
static void framing_start(struct framer *f, const char **p, size_t *n)
{
	char c;

	while (*n > 0 && ((*p)[0] == '\n' || (*p)[0] == '\r' ||
			  (*p)[0] == '\0'))
		framing_advance(p, n, 1);
	if (*n == 0)
		return;
	c = (*p)[0];
	f->flags = 0;
	if (c >= '1' && c <= '9') {
		f->carry[0] = c;   /* carry holds at least FRAMING_CARRY_MIN */
		f->carry_len = 1;
		f->remain = (uint64_t)(c - '0');
		f->detecting = f->mode == FRAMING_AUTO;
		f->state = FRAMING_S_HEADER;
		framing_advance(p, n, 1);
		return;
	}
	if (f->mode == FRAMING_AUTO) {
		f->mode = FRAMING_LF;
	} else {
		f->flags |= FRAMING_F_BAD_FRAME;
	}
	f->state = FRAMING_S_LINE;
}

/* HEADER: digits of MSG-LEN, then one space. Anything else while detecting
 * makes the stream LF-framed; in octet mode it is a framing error, and the
 * digits read so far start a line that is returned as a bad frame. */
static void framing_header(struct framer *f, const char **p, size_t *n)
{
	while (*n > 0) {
		char c = (*p)[0];

		if (c >= '0' && c <= '9' &&
		    f->carry_len < FRAMING_MAX_DIGITS) {
			f->remain = f->remain * 10 + (uint64_t)(c - '0');
			f->carry[f->carry_len++] = c;
			framing_advance(p, n, 1);
			continue;
		}
		if (c == ' ') {
			framing_advance(p, n, 1);
			if (f->detecting)
				f->mode = FRAMING_OCTET;
			f->detecting = 0;
			f->carry_len = 0;
			f->state = FRAMING_S_BODY;
			return;
		}
		if (f->detecting)
			f->mode = FRAMING_LF;
		else
			f->flags |= FRAMING_F_BAD_FRAME;
		f->detecting = 0;
		f->remain = 0;
		f->state = FRAMING_S_LINE;
		return;
	}
}

/* LINE: bytes up to LF; returns 1 with a record, 0 when input ran out,
 * or an error. */
static int framing_line(struct framer *f, const char **p, size_t *n,
			struct framing_rec *rec)
{
	const char *nl = memchr(*p, '\n', *n);
	size_t lim = f->max_line + 1;
	int rc;

	if (nl) {
		size_t take = (size_t)(nl - *p);
		size_t total = f->carry_len + take;
		const char *base;
		char last;

		if (f->carry_len == 0) {
			base = *p;
		} else {
			size_t room = framing_carry_limit(f) - f->carry_len;

			rc = framing_carry_append(f, *p,
						  take < room ? take : room);
			if (rc < 0) {
				framing_advance(p, n, take + 1);
				f->carry_len = 0;
				f->state = framing_after_record(f);
				return rc;
			}
			base = f->carry;
		}
		last = take > 0 ? (*p)[take - 1] :
		       (f->carry_len > 0 ? f->carry[f->carry_len - 1] : 0);
		framing_advance(p, n, take + 1);
		f->state = framing_after_record(f);
		if (total > 0 && last == '\r')
			total--;
		if (total == 0) {
			f->carry_len = 0;
			f->flags = 0;
			return 0;
		}
		if (total > f->max_line) {
			total = f->max_line;
			f->flags |= FRAMING_F_TRUNCATED;
		}
		framing_emit(f, base, total, rec);
		return 1;
	}

	/* No LF in this chunk: gather what fits. */
	{
		size_t room = f->carry_len < lim ? lim - f->carry_len : 0;
		size_t app = *n < room ? *n : room;

		rc = framing_carry_append(f, *p, app);
		if (rc < 0) {
			framing_advance(p, n, *n);
			f->carry_len = 0;
			f->state = FRAMING_S_SKIP_LINE;
			return rc;
		}
		framing_advance(p, n, app);
		if (f->carry_len < lim)
			return 0;
		/* max_line + 1 bytes and no LF yet: the line is too long unless
		 * the extra byte is a CR and an LF follows in the next read. */
		if (f->carry_len == lim && f->carry[lim - 1] == '\r' && *n == 0)
			return 0;
		f->flags |= FRAMING_F_TRUNCATED;
		f->state = FRAMING_S_SKIP_LINE;
		framing_emit(f, f->carry, f->max_line, rec);
		return 1;
	}
}

/* BODY: the remaining bytes of an octet-counted frame. */
static int framing_body(struct framer *f, const char **p, size_t *n,
			struct framing_rec *rec)
{
	size_t want, room, app, len;
	int rc;

	if (f->carry_len == 0) {
		if (f->remain <= f->max_line && *n >= f->remain) {
			const char *base = *p;

			len = (size_t)f->remain;
			framing_advance(p, n, len);
			f->remain = 0;
			f->state = FRAMING_S_START;
			len = framing_trim(base, len);
			if (len == 0)
				return 0;
			framing_emit(f, base, len, rec);
			return 1;
		}
		if (f->remain > f->max_line && *n >= f->max_line) {
			const char *base = *p;

			framing_advance(p, n, f->max_line);
			f->remain -= f->max_line;
			f->state = FRAMING_S_SKIP_BODY;
			len = framing_trim(base, f->max_line);
			if (len == 0)
				return 0;
			f->flags |= FRAMING_F_TRUNCATED;
			framing_emit(f, base, len, rec);
			return 1;
		}
	}
	want = f->remain < *n ? (size_t)f->remain : *n;
	room = f->max_line - f->carry_len;
	app = want < room ? want : room;
	rc = framing_carry_append(f, *p, app);
	if (rc < 0) {
		f->carry_len = 0;
		f->state = FRAMING_S_SKIP_BODY;
		return rc;
	}
	framing_advance(p, n, app);
	f->remain -= app;
	if (f->remain == 0) {
		f->state = FRAMING_S_START;
		len = framing_trim(f->carry, f->carry_len);
		if (len == 0) {
			f->carry_len = 0;
			return 0;
		}
		framing_emit(f, f->carry, len, rec);
		return 1;
	}
	if (f->carry_len == f->max_line) {
		f->state = FRAMING_S_SKIP_BODY;
		len = framing_trim(f->carry, f->carry_len);
		if (len == 0) {
			f->carry_len = 0;
			return 0;
		}
		f->flags |= FRAMING_F_TRUNCATED;
		framing_emit(f, f->carry, len, rec);
		return 1;
	}
	return 0;
}

int framing_next(struct framer *f, const char **p, size_t *n,
		 struct framing_rec *rec)
{
	int rc;

	if (f->emitted) {
		f->emitted = 0;
		f->carry_len = 0;
		f->flags = 0;
	}
	if (!f->carry) {
		/* START and HEADER write digits straight into the carry. */
		f->carry = malloc(FRAMING_CARRY_MIN);
		if (!f->carry) {
			/* The input is lost, but the caller's loop ends. */
			framing_advance(p, n, *n);
			return M_ENOMEM;
		}
		f->carry_cap = FRAMING_CARRY_MIN;
	}
	while (*n > 0) {
		switch (f->state) {
		case FRAMING_S_START:
			framing_start(f, p, n);
			break;
		case FRAMING_S_HEADER:
			framing_header(f, p, n);
			break;
		case FRAMING_S_LINE:
			rc = framing_line(f, p, n, rec);
			if (rc != 0)
				return rc;
			break;
		case FRAMING_S_BODY:
			rc = framing_body(f, p, n, rec);
			if (rc != 0)
				return rc;
			break;
		case FRAMING_S_SKIP_LINE: {
			const char *nl = memchr(*p, '\n', *n);

			if (!nl) {
				framing_advance(p, n, *n);
				break;
			}
			framing_advance(p, n, (size_t)(nl - *p) + 1);
			f->carry_len = 0;
			f->flags = 0;
			f->state = framing_after_record(f);
			break;
		}
		case FRAMING_S_SKIP_BODY: {
			size_t k = f->remain < *n ? (size_t)f->remain : *n;

			framing_advance(p, n, k);
			f->remain -= k;
			if (f->remain == 0) {
				f->carry_len = 0;
				f->flags = 0;
				f->state = FRAMING_S_START;
			}
			break;
		}
		}
	}
	return 0;
}

int framing_finish(struct framer *f, struct framing_rec *rec)
{
	size_t len;
	int out = 0;

	if (f->emitted) {
		f->emitted = 0;
		f->carry_len = 0;
		f->flags = 0;
	}
	switch (f->state) {
	case FRAMING_S_HEADER:
		if (!f->detecting)
			f->flags |= FRAMING_F_BAD_FRAME;
		/* The digits are an unterminated line. */
		__attribute__((fallthrough));
	case FRAMING_S_LINE:
		len = f->carry_len;
		if (len > 0 && f->carry[len - 1] == '\r')
			len--;
		if (len > f->max_line) {
			len = f->max_line;
			f->flags |= FRAMING_F_TRUNCATED;
		}
		out = len > 0;
		break;
	case FRAMING_S_BODY:
		f->flags |= FRAMING_F_BAD_FRAME;
		len = framing_trim(f->carry, f->carry_len);
		out = len > 0;
		break;
	default:
		len = 0;
		break;
	}
	if (out)
		framing_emit(f, f->carry, len, rec);
	else
		f->carry_len = 0;
	if (f->mode == FRAMING_AUTO && f->state == FRAMING_S_HEADER)
		f->mode = FRAMING_LF;
	f->state = framing_after_record(f);
	f->remain = 0;
	f->detecting = 0;
	if (!out)
		f->flags = 0;
	return out;
}
