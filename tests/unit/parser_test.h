/*
 * Shared by the parser unit tests (syslog, CEF, JSON): expected fields as
 * name/value tables, a fixture with an arena, an event and an output buffer,
 * and a parse step that also checks the event serialises. Header-only,
 * included by each test executable once.
 */
#ifndef MAMORI_PARSER_TEST_H
#define MAMORI_PARSER_TEST_H

#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/event.h"
#include "core/schema.h"

#define ABSENT ((const char *)1)   /* the field must not be set */
/* 2024-03-10T12:00:00Z: the receive time (and so the RFC 3164 year). */
#define RECV_US 1710072000000000LL

struct kv {
	const char *name;
	const char *value;   /* ABSENT: the field must not be set */
};

/* A known field by index, or an overflow field by name. */
static inline struct str field(const struct event *ev, const char *name)
{
	int f = schema_lookup(name, strlen(name));

	if (f >= 0)
		return event_get(ev, f);
	return event_get_extra(ev, str_cstr(name));
}

static inline void check_fields(const struct event *ev, const struct kv *f,
				const char *in)
{
	for (; f->name; f++) {
		struct str v = field(ev, f->name);
		if (f->value == ABSENT) {
			if (v.p)
				fail_msg("%s: %s should be absent, is '%.*s'", in,
					 f->name, (int)v.n, v.p);
			continue;
		}
		if (!v.p)
			fail_msg("%s: %s missing (want '%s')", in, f->name, f->value);
		if (!str_eq_cstr(v, f->value))
			fail_msg("%s: %s is '%.*s', want '%s'", in, f->name,
				 (int)v.n, v.p, f->value);
	}
}

struct fixture {
	struct arena a;
	struct event ev;
	struct buf out;
};

static inline int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	arena_init(&fx->a, 0, 0);
	buf_init(&fx->out, 0);
	*state = fx;
	return 0;
}

static inline int teardown(void **state)
{
	struct fixture *fx = *state;

	arena_fini(&fx->a);
	buf_fini(&fx->out);
	free(fx);
	return 0;
}

typedef int (*parser_fn)(const char *p, size_t n, struct event *ev,
			 struct arena *a);

/* Parses into the fixture's fresh event (receive time RECV_US, and
 * ts_us = RECV_US too when preset_ts) and checks that the result
 * serialises, whatever the input was. Returns the parser's result. */
static inline int parse_with(struct fixture *fx, parser_fn fn, const char *p,
			     size_t n, int preset_ts)
{
	int rc;

	arena_reset(&fx->a);
	event_clear(&fx->ev);
	fx->ev.recv_us = RECV_US;
	if (preset_ts)
		fx->ev.ts_us = RECV_US;
	rc = fn(p, n, &fx->ev, &fx->a);
	buf_reset(&fx->out);
	assert_int_equal(event_to_json(&fx->ev, &fx->out), 0);
	return rc;
}

/* Parses every prefix of line, each copied to its own heap block so ASan
 * catches a read past the end. With incomplete_fails, a prefix shorter
 * than the line (less a trailing byte) must not parse as M_OK. */
static inline void parse_every_prefix(struct fixture *fx, parser_fn fn,
				      const char *line, int preset_ts,
				      int incomplete_fails)
{
	size_t n = strlen(line);

	for (size_t k = 0; k <= n; k++) {
		char *c = malloc(k ? k : 1);
		int rc;

		assert_non_null(c);
		memcpy(c, line, k);
		rc = parse_with(fx, fn, c, k, preset_ts);
		if (incomplete_fails && k + 1 < n && rc == M_OK)
			fail_msg("prefix %zu of '%s' parsed", k, line);
		free(c);
	}
}

/* The checks every table row makes: return value, parse error, event time
 * (when want_ts is NULL and recv_default is set, the receive time) and the
 * expected fields. */
static inline void check_case(const struct fixture *fx, const char *in, int rc,
			      int want_rc, int want_pe, const char *want_ts,
			      int recv_default, const struct kv *f)
{
	char ts[32];

	if (rc != want_rc)
		fail_msg("%s: rc %d want %d", in, rc, want_rc);
	if (fx->ev.parse_error != want_pe)
		fail_msg("%s: parse_error %s want %s", in,
			 parse_error_name(fx->ev.parse_error),
			 parse_error_name((enum parse_error)want_pe));
	event_format_ts(fx->ev.ts_us, ts);
	if (want_ts && strcmp(ts, want_ts) != 0)
		fail_msg("%s: ts %s want %s", in, ts, want_ts);
	if (!want_ts && recv_default && fx->ev.ts_us != RECV_US)
		fail_msg("%s: ts %s want the receive time", in, ts);
	check_fields(&fx->ev, f, in);
}

#endif
