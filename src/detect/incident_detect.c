/*
 * The bridge from the detection stage to the SOC back-end: one detection hit
 * (struct detect_alert, valid only during the sink call on a worker thread)
 * becomes a struct soc_alert and is submitted.
 *
 * Why it is here and not in serve: choosing the entity an alert is grouped
 * by is part of the incident model (docs/incidents.md), so it is written
 * once, next to it, and tested with it. The entity is, in order: the
 * correlation's group-by values; for an indicator hit, the event field that
 * matched; otherwise the first of the configured group-by fields that the
 * event has. Everything is copied into bounded stack buffers, then
 * soc_alert_submit() copies again onto the queue, so the worker never waits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/event.h"
#include "core/schema.h"
#include "detect/detect.h"
#include "detect/incident.h"

#define KEY_BUF (SOC_MAX_KEY_NAME + 1 + SOC_MAX_KEY_VALUE + 1)

struct entity {
	struct soc_key_field f[SOC_MAX_KEY_FIELDS];
	char text[SOC_MAX_KEY_FIELDS][KEY_BUF];
	size_t n;
};

/* The value of a field by name: a known field or an overflow one. */
static struct str field_value(const struct event *ev, const char *name)
{
	size_t n = strlen(name);
	int f = schema_lookup(name, n);

	if (f >= 0)
		return event_get(ev, f);
	return event_get_extra(ev, str_make(name, n));
}

/* Adds name=value (value not NUL-terminated, cut to the bound). */
static void entity_add(struct entity *e, const char *name, size_t nlen,
		       const char *value, size_t vlen)
{
	char *t;

	if (e->n >= SOC_MAX_KEY_FIELDS || nlen == 0 || nlen > SOC_MAX_KEY_NAME)
		return;
	if (vlen > SOC_MAX_KEY_VALUE)
		vlen = SOC_MAX_KEY_VALUE;
	t = e->text[e->n];
	memcpy(t, name, nlen);
	t[nlen] = '\0';
	memcpy(t + nlen + 1, value, vlen);
	t[nlen + 1 + vlen] = '\0';
	e->f[e->n].name = t;
	e->f[e->n].value = t + nlen + 1;
	e->n++;
}

/* "f=v, g=w" as the correlation engine writes it; 0 when it does not
 * split into distinct plausible names (the caller then keeps it whole). */
static int entity_from_group(struct entity *e, const char *group)
{
	const char *p = group;

	while (*p) {
		const char *end = strstr(p, ", "), *eq;
		size_t len = end ? (size_t)(end - p) : strlen(p);

		eq = memchr(p, '=', len);
		if (eq == NULL || eq == p || e->n >= SOC_MAX_KEY_FIELDS)
			return 0;
		for (size_t i = 0; i < e->n; i++)
			if (strlen(e->f[i].name) == (size_t)(eq - p) &&
			    memcmp(e->f[i].name, p, (size_t)(eq - p)) == 0)
				return 0;
		entity_add(e, p, (size_t)(eq - p), eq + 1, len - (size_t)(eq - p) - 1);
		p += len;
		if (end)
			p += 2;
	}
	return e->n > 0;
}

static void entity_pick(struct entity *e, const struct detect_alert *a,
			const struct conf_list *group_by)
{
	e->n = 0;
	if (a->source == DETECT_CORRELATION && a->group && a->group[0]) {
		if (entity_from_group(e, a->group))
			return;
		e->n = 0;
		entity_add(e, "correlation.group", 17, a->group, strlen(a->group));
		return;
	}
	if (a->source == DETECT_INTEL && a->field && a->ev) {
		struct str v = field_value(a->ev, a->field);

		if (v.p == NULL && a->indicator)
			v = str_make(a->indicator->value, a->indicator->value_len);
		if (v.p) {
			entity_add(e, a->field, strlen(a->field), v.p, v.n);
			return;
		}
	}
	for (size_t i = 0; a->ev && group_by && i < group_by->n; i++) {
		struct str v = field_value(a->ev, group_by->v[i]);

		if (v.p && v.n) {
			entity_add(e, group_by->v[i], strlen(group_by->v[i]), v.p, v.n);
			return;
		}
	}
}

int soc_submit_detect(struct soc_db *db, const struct detect_alert *a,
		      const struct conf_list *group_by)
{
	static const char omitted[] = "{\"_omitted\":\"too large\"}";
	struct entity *e;
	struct soc_indicator ind;
	struct soc_alert sa;
	struct buf ev;
	const char *tags[SOC_MAX_TAGS];
	char feed[256], title[SOC_MAX_TITLE + 1];
	int rc;

	if (db == NULL || a == NULL)
		return M_EINVAL;
	/* About 9 KiB of entity text: on the heap, not a worker's stack. */
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return M_ENOMEM;
	memset(&sa, 0, sizeof(sa));
	buf_init(&ev, SOC_MAX_EVENT_JSON);
	sa.rule_id = a->rule_id;
	/* A title or tags past the bounds are cut, not a reason to lose the
	 * alert. */
	snprintf(title, sizeof(title), "%s", a->rule_title ? a->rule_title : "");
	sa.rule_title = title;
	sa.level = (enum soc_level)a->level;
	sa.source = (enum soc_source)a->source;
	sa.suppressed = a->suppressed;
	for (uint32_t i = 0; i < a->n_tags && sa.n_tags < SOC_MAX_TAGS; i++)
		if (a->tags[i] && strnlen(a->tags[i], SOC_MAX_TAG + 1) <= SOC_MAX_TAG)
			tags[sa.n_tags++] = a->tags[i];
	sa.tags = tags;
	if (a->ev) {
		rc = event_to_json(a->ev, &ev);
		sa.event_json = rc == 0 ? ev.p : omitted;
		sa.event_json_len = rc == 0 ? ev.len : sizeof(omitted) - 1;
		sa.event_id = a->ev->id;
		sa.event_ts_us = a->ev->ts_us;
	}
	entity_pick(e, a, group_by);
	sa.key = e->f;
	sa.n_key = e->n;
	if (a->source == DETECT_INTEL && a->indicator) {
		snprintf(feed, sizeof(feed), "%s",
			 a->indicator->meta.source ? a->indicator->meta.source : "");
		ind.type = intel_type_str(a->indicator->type);
		ind.value = a->indicator->value;
		ind.feed = feed[0] ? feed : NULL;
		ind.confidence = a->indicator->meta.confidence;
		sa.indicator = &ind;
	}
	rc = soc_alert_submit(db, &sa);
	buf_fini(&ev);
	free(e);
	return rc;
}
