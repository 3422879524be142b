/*
 * The normalised event. Every sensor turns what it sees into these; everything
 * downstream reads events only.
 *
 * Known ECS fields are read in O(1): slot[field] gives the position of the
 * value in a small inline array (0 = absent), so clearing an event zeroes a
 * byte per schema field instead of the whole value array, and an event
 * touches only the cache lines of the fields it has. Fields that are not in
 * the schema go to a bounded overflow list. Values are byte slices (struct
 * str) that live in the event's batch arena or receive buffer; numbers are
 * kept as their decimal text.
 */
#ifndef MAMORI_EVENT_H
#define MAMORI_EVENT_H

#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/schema.h"
#include "core/str.h"

#define EVENT_MAX_EXTRA 256   /* overflow fields kept per event */
#define EVENT_MAX_KNOWN 96    /* distinct known fields set per event */

/* Why an input record did not parse cleanly (event.parse_error). */
enum parse_error {
	PE_NONE = 0,
	PE_EMPTY,
	PE_BAD_PRI,
	PE_BAD_VERSION,
	PE_BAD_TIMESTAMP,
	PE_BAD_HEADER,
	PE_BAD_SD,
	PE_BAD_CEF,
	PE_BAD_JSON,
	PE_TRUNCATED,      /* longer than the line limit: cut */
	PE_BAD_FRAME,
	PE_BAD_UTF8,
	PE_TOO_MANY_FIELDS,
	PE_COUNT
};

const char *parse_error_name(enum parse_error e);

/* Event flags. */
#define EV_F_PARSE_ERROR 0x1u   /* tags contain "_parse_error" */
#define EV_F_TRUNCATED   0x2u   /* tags contain "_truncated" */

/* How an overflow value is written as JSON (event_extra.is_number). */
#define EXTRA_STRING 0     /* a JSON string */
#define EXTRA_NUMBER 1     /* bare when it is a valid JSON number, else a string */
#define EXTRA_RAW_JSON 2   /* already valid JSON (e.g. an array the JSON parser
			    * validated); written as is */

struct event_extra {
	struct str name;
	struct str value;
	uint8_t is_number;   /* EXTRA_* */
	uint16_t xid;        /* the name's number (XN_*, schema.fields), 0 none */
};

struct event {
	uint64_t id;          /* unique; assigned by the pipeline */
	int64_t ts_us;        /* @timestamp, microseconds since the epoch (UTC) */
	int64_t recv_us;      /* event.ingested */
	const void *prepared; /* the store's per-event data (e.g. its row, with
			       * the JSON doc), made by its prepare hook on a
			       * worker, in the batch arena; NULL if none */
	uint32_t flags;
	uint16_t parse_error; /* enum parse_error */
	uint16_t input_id;    /* which input received it (metrics index) */
	uint8_t n_known;                  /* used entries of val/fld */
	uint8_t slot[SCHEMA_NFIELDS];     /* 1 + index into val, 0 = absent */
	uint16_t fld[EVENT_MAX_KNOWN];    /* field of each val entry */
	struct str val[EVENT_MAX_KNOWN];
	struct event_extra *extra;   /* arena-allocated, grows by doubling */
	uint32_t n_extra, extra_cap;
};

/* Clears an event for reuse (zeroes the slot map, not the value array). */
void event_clear(struct event *ev);

static inline int event_has(const struct event *ev, int field)
{
	return ev->slot[field] != 0;
}

/* The value of a known field, or {NULL, 0} when absent. */
static inline struct str event_get(const struct event *ev, int field)
{
	unsigned s = ev->slot[field];

	if (!s)
		return (struct str){ 0, 0 };
	return ev->val[s - 1];
}

/* Past EVENT_MAX_KNOWN distinct fields (not reachable with today's schema
 * and parsers, but bounded all the same). */
void event_set_full(struct event *ev);

/* Sets a known field to a borrowed slice (it must outlive the event). */
static inline void event_set(struct event *ev, int field, struct str v)
{
	unsigned s = ev->slot[field];

	if (s) {
		ev->val[s - 1] = v;
		return;
	}
	if (ev->n_known == EVENT_MAX_KNOWN) {
		event_set_full(ev);
		return;
	}
	ev->fld[ev->n_known] = (uint16_t)field;
	ev->val[ev->n_known] = v;
	ev->slot[field] = ++ev->n_known;
}

static inline void event_unset(struct event *ev, int field)
{
	/* The val entry stays as a hole; iteration checks the slot. */
	ev->slot[field] = 0;
}

/* Sets a field by name: a known field by index, otherwise an overflow
 * entry. Name and value are borrowed. M_ELIMIT past EVENT_MAX_EXTRA (the
 * event is then tagged PE_TOO_MANY_FIELDS), M_ENOMEM if the arena is full. */
int event_set_name(struct event *ev, struct arena *a, struct str name,
		   struct str value, int is_number);

/* event_set_name for a name that is not a known field, whose number
 * (schema_lookup_x) the caller has: the lookup made once. */
int event_set_extra(struct event *ev, struct arena *a, struct str name,
		    struct str value, int is_number, unsigned xid);

/* Overflow field by name, or {NULL,0}. Linear in n_extra (bounded). */
struct str event_get_extra(const struct event *ev, struct str name);

/* Overflow field by its name's number (XN_*, nonzero), or {NULL,0}: the
 * same as event_get_extra by that name, without comparing names. */
static inline struct str event_get_xid(const struct event *ev, unsigned xid)
{
	for (uint32_t i = 0; i < ev->n_extra; i++)
		if (ev->extra[i].xid == xid)
			return ev->extra[i].value;
	return (struct str){ 0, 0 };
}

/* Marks a parse error: sets the flag and keeps the first reason. */
void event_set_parse_error(struct event *ev, enum parse_error why);

/* Copies v into the arena and sets the field (for values built on the fly). */
int event_set_copy(struct event *ev, struct arena *a, int field,
		   const char *v, size_t n);

/* Formats a microsecond timestamp as RFC 3339 UTC with milliseconds
 * ("2026-11-25T18:33:33.123Z"); out must hold 32 bytes. Returns length. */
size_t event_format_ts(int64_t ts_us, char *out);

/* Appends the event as one flat JSON object with ECS dotted keys
 * ("@timestamp", "source.ip", ...); long fields that hold valid integers are
 * JSON numbers; tags include "_parse_error"/"_truncated" and the event carries
 * "event.parse_error" with the reason when flagged. */
int event_to_json(const struct event *ev, struct buf *out);
/* The same without one known field (-1 = none), e.g. a field a store keeps
 * in a column of its own. */
int event_to_json_except(const struct event *ev, int skip_field, struct buf *out);

#endif
