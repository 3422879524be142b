/*
 * Events: setters for known and overflow fields, and the JSON writer the
 * store and the API use. The writer is hand-written (no DOM) because it runs
 * once per stored event.
 */
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/event.h"

static const char *const parse_error_names[PE_COUNT] = {
	[PE_NONE] = "none",
	[PE_EMPTY] = "empty",
	[PE_BAD_PRI] = "bad_pri",
	[PE_BAD_VERSION] = "bad_version",
	[PE_BAD_TIMESTAMP] = "bad_timestamp",
	[PE_BAD_HEADER] = "bad_header",
	[PE_BAD_SD] = "bad_structured_data",
	[PE_BAD_CEF] = "bad_cef",
	[PE_BAD_JSON] = "bad_json",
	[PE_TRUNCATED] = "truncated",
	[PE_BAD_FRAME] = "bad_frame",
	[PE_BAD_UTF8] = "bad_utf8",
	[PE_TOO_MANY_FIELDS] = "too_many_fields",
};

const char *parse_error_name(enum parse_error e)
{
	if ((unsigned)e >= PE_COUNT)
		return "unknown";
	return parse_error_names[e];
}

void event_clear(struct event *ev)
{
	memset(ev->slot, 0, sizeof(ev->slot));
	ev->n_known = 0;
	ev->id = 0;
	ev->ts_us = 0;
	ev->recv_us = 0;
	ev->flags = 0;
	ev->parse_error = PE_NONE;
	ev->input_id = 0;
	ev->extra = NULL;
	ev->n_extra = ev->extra_cap = 0;
	ev->prepared = NULL;
}

void event_set_full(struct event *ev)
{
	event_set_parse_error(ev, PE_TOO_MANY_FIELDS);
}

void event_set_parse_error(struct event *ev, enum parse_error why)
{
	if (why == PE_TRUNCATED) {
		ev->flags |= EV_F_TRUNCATED;
		return;
	}
	ev->flags |= EV_F_PARSE_ERROR;
	if (ev->parse_error == PE_NONE)
		ev->parse_error = (uint16_t)why;
}

int event_set_name(struct event *ev, struct arena *a, struct str name,
		   struct str value, int is_number)
{
	unsigned xid;
	int f = schema_lookup_x(name.p, name.n, &xid);

	if (f >= 0) {
		event_set(ev, f, value);
		return M_OK;
	}
	return event_set_extra(ev, a, name, value, is_number, xid);
}

int event_set_extra(struct event *ev, struct arena *a, struct str name,
		    struct str value, int is_number, unsigned xid)
{
	struct event_extra *x;

	for (uint32_t i = 0; i < ev->n_extra; i++) {
		if (xid ? ev->extra[i].xid == xid : str_eq(ev->extra[i].name, name)) {
			ev->extra[i].value = value;
			ev->extra[i].is_number = (uint8_t)is_number;
			return M_OK;
		}
	}
	if (ev->n_extra == EVENT_MAX_EXTRA) {
		event_set_parse_error(ev, PE_TOO_MANY_FIELDS);
		return M_ELIMIT;
	}
	if (ev->n_extra == ev->extra_cap) {
		uint32_t cap = ev->extra_cap ? ev->extra_cap * 2 : 8;
		if (cap > EVENT_MAX_EXTRA)
			cap = EVENT_MAX_EXTRA;
		x = arena_alloc(a, cap * sizeof(*x));
		if (!x)
			return M_ENOMEM;
		if (ev->n_extra)
			memcpy(x, ev->extra, ev->n_extra * sizeof(*x));
		ev->extra = x;
		ev->extra_cap = cap;
	}
	x = &ev->extra[ev->n_extra++];
	x->name = name;
	x->value = value;
	x->is_number = (uint8_t)is_number;
	x->xid = (uint16_t)xid;
	return M_OK;
}

struct str event_get_extra(const struct event *ev, struct str name)
{
	for (uint32_t i = 0; i < ev->n_extra; i++)
		if (str_eq(ev->extra[i].name, name))
			return ev->extra[i].value;
	return (struct str){ 0, 0 };
}

int event_set_copy(struct event *ev, struct arena *a, int field,
		   const char *v, size_t n)
{
	char *p = arena_alloc(a, n ? n : 1);

	if (!p)
		return M_ENOMEM;
	memcpy(p, v, n);
	event_set(ev, field, str_make(p, n));
	return M_OK;
}

size_t event_format_ts(int64_t ts_us, char *out)
{
	time_t secs = (time_t)(ts_us / 1000000);
	int64_t frac = ts_us % 1000000;
	struct tm tm;

	if (frac < 0) {
		frac += 1000000;
		secs -= 1;
	}
	if (!gmtime_r(&secs, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
		memcpy(out, "1970-01-01T00:00:00.000Z", 25);
		return 24;
	}
	/* Fixed-width formatting without printf: this runs per event. */
	int y = tm.tm_year + 1900;
	int ms = (int)(frac / 1000);
	char *o = out;
	*o++ = (char)('0' + y / 1000);
	*o++ = (char)('0' + y / 100 % 10);
	*o++ = (char)('0' + y / 10 % 10);
	*o++ = (char)('0' + y % 10);
	*o++ = '-';
	*o++ = (char)('0' + (tm.tm_mon + 1) / 10);
	*o++ = (char)('0' + (tm.tm_mon + 1) % 10);
	*o++ = '-';
	*o++ = (char)('0' + tm.tm_mday / 10);
	*o++ = (char)('0' + tm.tm_mday % 10);
	*o++ = 'T';
	*o++ = (char)('0' + tm.tm_hour / 10);
	*o++ = (char)('0' + tm.tm_hour % 10);
	*o++ = ':';
	*o++ = (char)('0' + tm.tm_min / 10);
	*o++ = (char)('0' + tm.tm_min % 10);
	*o++ = ':';
	*o++ = (char)('0' + tm.tm_sec / 10);
	*o++ = (char)('0' + tm.tm_sec % 10);
	*o++ = '.';
	*o++ = (char)('0' + ms / 100);
	*o++ = (char)('0' + ms / 10 % 10);
	*o++ = (char)('0' + ms % 10);
	*o++ = 'Z';
	*o = '\0';
	return (size_t)(o - out);
}

/* True when v is a number by JSON's grammar (so it can be written bare). */
static int is_json_number(struct str v)
{
	uint32_t i = 0;

	if (v.n == 0 || v.n > 64)
		return 0;
	if (v.p[i] == '-')
		i++;
	if (i == v.n)
		return 0;
	if (v.p[i] == '0') {
		i++;
	} else if (v.p[i] >= '1' && v.p[i] <= '9') {
		while (i < v.n && v.p[i] >= '0' && v.p[i] <= '9')
			i++;
	} else {
		return 0;
	}
	if (i < v.n && v.p[i] == '.') {
		uint32_t s = ++i;
		while (i < v.n && v.p[i] >= '0' && v.p[i] <= '9')
			i++;
		if (i == s)
			return 0;
	}
	if (i < v.n && (v.p[i] == 'e' || v.p[i] == 'E')) {
		i++;
		if (i < v.n && (v.p[i] == '+' || v.p[i] == '-'))
			i++;
		uint32_t s = i;
		while (i < v.n && v.p[i] >= '0' && v.p[i] <= '9')
			i++;
		if (i == s)
			return 0;
	}
	return i == v.n;
}

static int json_key(struct buf *out, const char *name, size_t n, int *first)
{
	int r;

	if (!*first && (r = buf_putc(out, ',')) < 0)
		return r;
	*first = 0;
	if ((r = buf_putc(out, '"')) < 0 || (r = buf_json_escape(out, name, n)) < 0 ||
	    (r = buf_append(out, "\":", 2)) < 0)
		return r;
	return M_OK;
}

static int json_value(struct buf *out, struct str v, int number)
{
	int r;

	if (number && is_json_number(v))
		return buf_append(out, v.p, v.n);
	if ((r = buf_putc(out, '"')) < 0 || (r = buf_json_escape(out, v.p, v.n)) < 0)
		return r;
	return buf_putc(out, '"');
}

int event_to_json(const struct event *ev, struct buf *out)
{
	return event_to_json_except(ev, -1, out);
}

int event_to_json_except(const struct event *ev, int skip_field, struct buf *out)
{
	char ts[32];
	size_t tn;
	int first = 1, r;

	if ((r = buf_putc(out, '{')) < 0)
		return r;
	tn = event_format_ts(ev->ts_us, ts);
	if ((r = json_key(out, "@timestamp", 10, &first)) < 0 ||
	    (r = json_value(out, str_make(ts, tn), 0)) < 0)
		return r;
	if (ev->id) {
		char idb[24];
		int k = 0;
		uint64_t id = ev->id;
		char tmp[24];
		do {
			tmp[k++] = (char)('0' + id % 10);
			id /= 10;
		} while (id);
		for (int i = 0; i < k; i++)
			idb[i] = tmp[k - 1 - i];
		if ((r = json_key(out, "event.id", 8, &first)) < 0 ||
		    (r = json_value(out, str_make(idb, (size_t)k), 0)) < 0)
			return r;
	}
	if (ev->recv_us) {
		tn = event_format_ts(ev->recv_us, ts);
		if ((r = json_key(out, "event.ingested", 14, &first)) < 0 ||
		    (r = json_value(out, str_make(ts, tn), 0)) < 0)
			return r;
	}
	for (unsigned i = 0; i < ev->n_known; i++) {
		int f = ev->fld[i];
		if (ev->slot[f] != i + 1)
			continue;   /* unset or superseded */
		if (f == F_TIMESTAMP || f == F_EVENT_INGESTED ||
		    (f == F_EVENT_ID && ev->id) || f == F_TAGS || f == skip_field)
			continue;
		const struct schema_field_info *fi = &schema_fields[f];
		if ((r = json_key(out, fi->name, fi->len, &first)) < 0 ||
		    (r = json_value(out, ev->val[i], fi->type == SCHEMA_LONG)) < 0)
			return r;
	}
	if (ev->flags & (EV_F_PARSE_ERROR | EV_F_TRUNCATED) || event_has(ev, F_TAGS)) {
		int tfirst = 1;
		if ((r = json_key(out, "tags", 4, &first)) < 0 || (r = buf_putc(out, '[')) < 0)
			return r;
		if (event_has(ev, F_TAGS)) {
			if ((r = json_value(out, event_get(ev, F_TAGS), 0)) < 0)
				return r;
			tfirst = 0;
		}
		if (ev->flags & EV_F_PARSE_ERROR) {
			if ((r = buf_puts(out, tfirst ? "\"_parse_error\"" : ",\"_parse_error\"")) < 0)
				return r;
			tfirst = 0;
		}
		if (ev->flags & EV_F_TRUNCATED) {
			if ((r = buf_puts(out, tfirst ? "\"_truncated\"" : ",\"_truncated\"")) < 0)
				return r;
		}
		if ((r = buf_putc(out, ']')) < 0)
			return r;
	}
	if (ev->flags & EV_F_PARSE_ERROR) {
		const char *pe = parse_error_name(ev->parse_error);
		if ((r = json_key(out, "event.parse_error", 17, &first)) < 0 ||
		    (r = json_value(out, str_cstr(pe), 0)) < 0)
			return r;
	}
	for (uint32_t i = 0; i < ev->n_extra; i++) {
		const struct event_extra *x = &ev->extra[i];
		if ((r = json_key(out, x->name.p, x->name.n, &first)) < 0)
			return r;
		if (x->is_number == EXTRA_RAW_JSON) {
			/* Pre-rendered JSON (arrays kept as text). */
			if ((r = buf_append(out, x->value.p, x->value.n)) < 0)
				return r;
		} else if ((r = json_value(out, x->value, x->is_number)) < 0) {
			return r;
		}
	}
	return buf_putc(out, '}');
}
