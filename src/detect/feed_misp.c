/*
 * MISP feeds: a directory or base URL holding manifest.json (event uuid ->
 * summary) and one <uuid>.json per event. Why only to_ids attributes of a
 * fixed list of types: MISP marks with to_ids what is meant for detection;
 * the other attributes are context (links, comments, file names) that would
 * only produce false positives in a value store. Composite types
 * (domain|ip, filename|sha256, ip-dst|port) are split and the matchable
 * halves kept. Event uuids from the manifest are checked before they become
 * file names or URLs, so a hostile manifest cannot point elsewhere.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "core/log.h"
#include "detect/feed.h"

#define MISP_MAX_OBJECTS 100000

enum misp_take {
	MISP_ALL,     /* the whole value */
	MISP_LEFT,    /* before the first '|' */
	MISP_RIGHT,   /* after the first '|' */
	MISP_BOTH,    /* domain|ip: left as the first type, right as IP */
};

static const struct {
	const char *name;
	enum intel_type t;
	enum misp_take take;
} misp_types[] = {
	{"ip-src", INTEL_IP, MISP_ALL},
	{"ip-dst", INTEL_IP, MISP_ALL},
	{"ip-src|port", INTEL_IP, MISP_LEFT},
	{"ip-dst|port", INTEL_IP, MISP_LEFT},
	{"domain", INTEL_DOMAIN, MISP_ALL},
	{"hostname", INTEL_DOMAIN, MISP_ALL},
	{"domain|ip", INTEL_DOMAIN, MISP_BOTH},
	{"url", INTEL_URL, MISP_ALL},
	{"md5", INTEL_HASH, MISP_ALL},
	{"sha1", INTEL_HASH, MISP_ALL},
	{"sha256", INTEL_HASH, MISP_ALL},
	{"filename|md5", INTEL_HASH, MISP_RIGHT},
	{"filename|sha1", INTEL_HASH, MISP_RIGHT},
	{"filename|sha256", INTEL_HASH, MISP_RIGHT},
	{"email-src", INTEL_EMAIL, MISP_ALL},
	{"email-dst", INTEL_EMAIL, MISP_ALL},
	{"email", INTEL_EMAIL, MISP_ALL},
};

/* to_ids is a boolean in current feeds, "1"/"0" or 1/0 in older ones. */
static int misp_truthy(const json_t *v)
{
	const char *s;

	if (json_is_true(v))
		return 1;
	if (json_is_integer(v))
		return json_integer_value(v) != 0;
	s = json_string_value(v);
	return s && (strcmp(s, "1") == 0 || strcmp(s, "true") == 0);
}

static int misp_push(struct feed_items *out, struct feed_stats *st,
		     enum intel_type t, const char *v, size_t n,
		     const struct feed_item *meta)
{
	int r;

	if (n == 0) {
		feed_stats_note(st, FEED_R_BAD_VALUE, v, n, "empty value");
		return 0;
	}
	r = feed_items_push(out, t, v, n, meta);
	if (r == M_ELIMIT) {
		feed_stats_note(st, FEED_R_LIMIT, v, n, "too many indicators");
		return 0;
	}
	return r;
}

/* One attribute into zero, one or two items. */
static int misp_attribute(const json_t *a, const struct feed_defaults *d,
			  struct feed_items *out, struct feed_stats *st)
{
	const char *type = json_string_value(json_object_get(a, "type"));
	const char *val = json_string_value(json_object_get(a, "value"));
	const char *fs = json_string_value(json_object_get(a, "first_seen"));
	const char *ls = json_string_value(json_object_get(a, "last_seen"));
	const char *ts = json_string_value(json_object_get(a, "timestamp"));
	struct feed_item meta = {.confidence = d->confidence,
				 .valid_until = d->valid_until};
	const char *bar;
	size_t k, n;

	if (!json_is_object(a)) {
		feed_stats_note(st, FEED_R_BAD_OBJECT, NULL, 0, "attribute is not an object");
		return 0;
	}
	if (!misp_truthy(json_object_get(a, "to_ids")) ||
	    misp_truthy(json_object_get(a, "deleted"))) {
		feed_stats_note(st, FEED_R_NOT_IDS, NULL, 0, "");
		return 0;
	}
	if (type == NULL || val == NULL) {
		feed_stats_note(st, FEED_R_BAD_OBJECT, type ? type : "", type ? strlen(type) : 0,
				"attribute without type or value");
		return 0;
	}
	for (k = 0; k < sizeof(misp_types) / sizeof(misp_types[0]); k++)
		if (strcmp(type, misp_types[k].name) == 0)
			break;
	if (k == sizeof(misp_types) / sizeof(misp_types[0])) {
		feed_stats_note(st, FEED_R_MISP_TYPE, type, strlen(type), "");
		return 0;
	}
	if ((fs && feed_parse_time(fs, strlen(fs), &meta.first_seen) < 0) ||
	    (ls && feed_parse_time(ls, strlen(ls), &meta.last_seen) < 0)) {
		feed_stats_note(st, FEED_R_BAD_FIELD, val, strlen(val),
				"unparsable first_seen or last_seen");
		return 0;
	}
	if (meta.last_seen == 0 && ts)
		(void)feed_parse_time(ts, strlen(ts), &meta.last_seen);
	n = strlen(val);
	if (misp_types[k].take == MISP_ALL)
		return misp_push(out, st, misp_types[k].t, val, n, &meta);
	bar = memchr(val, '|', n);
	if (bar == NULL) {
		feed_stats_note(st, FEED_R_BAD_VALUE, val, n,
				"composite value without '|'");
		return 0;
	}
	if (misp_types[k].take == MISP_LEFT)
		return misp_push(out, st, misp_types[k].t, val, (size_t)(bar - val), &meta);
	if (misp_types[k].take == MISP_RIGHT)
		return misp_push(out, st, misp_types[k].t, bar + 1,
				 n - (size_t)(bar - val) - 1, &meta);
	if (misp_push(out, st, misp_types[k].t, val, (size_t)(bar - val), &meta) < 0)
		return M_ENOMEM;
	return misp_push(out, st, INTEL_IP, bar + 1, n - (size_t)(bar - val) - 1, &meta);
}

static int misp_attributes(const json_t *arr, const struct feed_defaults *d,
			   struct feed_items *out, struct feed_stats *st)
{
	size_t i;
	json_t *a;
	int r;

	if (arr == NULL)
		return 0;
	if (!json_is_array(arr)) {
		feed_stats_note(st, FEED_R_BAD_OBJECT, NULL, 0, "Attribute is not a list");
		return 0;
	}
	json_array_foreach(arr, i, a) {
		if ((r = misp_attribute(a, d, out, st)) < 0)
			return r;
	}
	return 0;
}

int feed_parse_misp_event(const char *p, size_t len,
			  const struct feed_defaults *d, struct feed_items *out,
			  struct feed_stats *st, struct buf *err)
{
	json_error_t je;
	json_t *root, *ev, *objs, *o;
	size_t i;
	int r;

	root = json_loadb(p, len, 0, &je);
	if (root == NULL) {
		buf_printf(err, "bad JSON at line %d column %d: %s", je.line,
			   je.column, je.text);
		return M_EPARSE;
	}
	ev = json_object_get(root, "Event");
	if (!json_is_object(ev)) {
		buf_printf(err, "no \"Event\" object");
		json_decref(root);
		return M_EPARSE;
	}
	r = misp_attributes(json_object_get(ev, "Attribute"), d, out, st);
	objs = json_object_get(ev, "Object");
	if (r == 0 && json_is_array(objs)) {
		json_array_foreach(objs, i, o) {
			if (i >= MISP_MAX_OBJECTS) {
				feed_stats_note(st, FEED_R_LIMIT, NULL, 0, "too many objects");
				break;
			}
			if ((r = misp_attributes(json_object_get(o, "Attribute"), d,
						 out, st)) < 0)
				break;
		}
	}
	json_decref(root);
	return r;
}

/* A MISP uuid: 36 characters of hex digits and dashes (or 32 without). */
static int misp_uuid_ok(const char *s)
{
	size_t n = strlen(s);

	if (n != 36 && n != 32)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F') || c == '-'))
			return 0;
	}
	return 1;
}

static int misp_join(struct buf *out, const char *base, const char *name)
{
	size_t n = strlen(base);

	buf_reset(out);
	if (buf_printf(out, "%s%s%s", base, n > 0 && base[n - 1] == '/' ? "" : "/",
		       name) < 0)
		return M_ENOMEM;
	return buf_cstr(out);
}

int feed_load_misp(const struct feed_conf *fc, const struct feed_defaults *d,
		   struct feed_items *out, struct feed_stats *st,
		   struct buf *err)
{
	struct buf path, body, perr;
	json_error_t je;
	json_t *man = NULL;
	const char *uuid;
	json_t *v;
	size_t nev = 0;
	int r;

	buf_init(&path, 8192);
	buf_init(&body, (fc->max_bytes > 0 ? (size_t)fc->max_bytes :
			 (size_t)FEED_DEF_MAX_BYTES) + 1);
	buf_init(&perr, 1024);
	if ((r = misp_join(&path, fc->url_or_path, "manifest.json")) < 0)
		goto out;
	if ((r = feed_fetch(fc, path.p, NULL, &body, NULL, NULL, st, err)) < 0)
		goto out;
	man = json_loadb(body.p ? body.p : "", body.len, 0, &je);
	if (!json_is_object(man)) {
		feed_errf(err, fc, "manifest.json: %s at line %d: %s",
			  man ? "not a JSON object" : "bad JSON", je.line,
			  man ? "" : je.text);
		r = M_EPARSE;
		goto out;
	}
	json_object_foreach(man, uuid, v) {
		char name[64];

		if (++nev > FEED_MAX_MISP_EVENTS) {
			feed_errf(err, fc, "more than %d events in manifest.json",
				  FEED_MAX_MISP_EVENTS);
			r = M_ELIMIT;
			goto out;
		}
		if (!misp_uuid_ok(uuid)) {
			char esc[80];

			feed_errf(err, fc, "manifest.json: '%s' is not an event uuid",
				  log_escape(uuid, strlen(uuid), esc, sizeof(esc)));
			r = M_EPARSE;
			goto out;
		}
		snprintf(name, sizeof(name), "%s.json", uuid);
		if ((r = misp_join(&path, fc->url_or_path, name)) < 0)
			goto out;
		if ((r = feed_fetch(fc, path.p, NULL, &body, NULL, NULL, st, err)) < 0)
			goto out;
		buf_reset(&perr);
		r = feed_parse_misp_event(body.p ? body.p : "", body.len, d, out,
					  st, &perr);
		if (r < 0) {
			feed_errf(err, fc, "%s: %.*s", name, (int)perr.len,
				  perr.p ? perr.p : "");
			goto out;
		}
	}
out:
	if (r == M_ENOMEM && err && err->len == 0)
		feed_errf(err, fc, "out of memory");
	json_decref(man);
	buf_fini(&path);
	buf_fini(&body);
	buf_fini(&perr);
	return r;
}
