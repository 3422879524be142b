/*
 * The SOC back-end: alerts and the incidents they are grouped into, stored
 * in their own SQLite database (e.g. <data_dir>/soc.db, WAL), apart from the
 * event store so that retention of events never touches the case history.
 *
 * Why a queue and one writer thread: alerts come from pipeline workers, by
 * the thousand in a storm, and a worker must never wait for SQLite. So
 * soc_alert_submit() copies the alert onto a bounded queue (a full queue
 * drops and counts) and a single writer thread inserts batches in one
 * transaction each, groups them into incidents, and then, after the commit,
 * tells the on_incident hook (the notifier) what happened. Changes made by
 * people (status, assignee, comments) travel the same way, so there is one
 * writer connection and every change reaches the hook from the same thread,
 * in commit order. Readers (the API) use their own connections; WAL lets
 * them read while the writer writes.
 *
 * Grouping: an alert joins the open incident (new or acknowledged) with the
 * same rule id and entity whose last_seen is within the window of the
 * alert's time; otherwise it opens a new incident. A resolved or
 * false-positive incident never absorbs alerts. docs/incidents.md has the
 * model, the escalation rule and the lifecycle.
 */
#ifndef MAMORI_INCIDENT_H
#define MAMORI_INCIDENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"

/* The same values as enum sigma_level. */
enum soc_level {
	SOC_LEVEL_INFORMATIONAL = 0,
	SOC_LEVEL_LOW,
	SOC_LEVEL_MEDIUM,
	SOC_LEVEL_HIGH,
	SOC_LEVEL_CRITICAL,
	SOC_LEVEL_COUNT
};

/* The same values as enum detect_source. */
enum soc_source {
	SOC_SOURCE_SIGMA = 1,
	SOC_SOURCE_CORRELATION,
	SOC_SOURCE_INTEL,
};

enum soc_status {
	SOC_STATUS_NEW = 0,
	SOC_STATUS_ACKNOWLEDGED,
	SOC_STATUS_RESOLVED,
	SOC_STATUS_FALSE_POSITIVE,
	SOC_STATUS_COUNT
};

/* Hard bounds on what one alert may carry; longer strings are refused by
 * soc_alert_submit() (M_ELIMIT), except the event, which is dropped from
 * the alert (kept as {"_omitted":"too large"}) when longer. */
#define SOC_MAX_ID 256            /* rule id, bytes */
#define SOC_MAX_TITLE 1024
#define SOC_MAX_TAGS 64
#define SOC_MAX_TAG 128
#define SOC_MAX_KEY_FIELDS 8
#define SOC_MAX_KEY_NAME 128
#define SOC_MAX_KEY_VALUE 1024
#define SOC_MAX_EVENT_JSON (64 << 10)
#define SOC_MAX_IND 2048          /* indicator type, value or feed */
#define SOC_MAX_NAME 128          /* actor, author, assignee */
#define SOC_MAX_COMMENT (16 << 10)
#define SOC_MAX_COMMENTS 1000     /* per incident */

struct soc_key_field {
	const char *name;    /* e.g. "source.ip" */
	const char *value;
};

struct soc_indicator {
	const char *type;    /* ip, domain, url, hash, email */
	const char *value;
	const char *feed;    /* may be NULL */
	int confidence;      /* 0-100, -1 = unknown */
};

/* One alert. Every pointer is borrowed: soc_alert_submit() copies what it
 * needs before it returns. */
struct soc_alert {
	const char *rule_id;
	const char *rule_title;
	enum soc_level level;
	enum soc_source source;
	const char *const *tags;     /* e.g. "attack.t1059.001" */
	size_t n_tags;
	const char *event_json;      /* the triggering event, one JSON object */
	size_t event_json_len;
	uint64_t event_id;
	int64_t event_ts_us;
	/* The group-by entity: incidents are keyed by rule id + these pairs
	 * (order does not matter; names must be distinct). May be empty. */
	const struct soc_key_field *key;
	size_t n_key;
	const struct soc_indicator *indicator;   /* intel hits; else NULL */
	int64_t ts_us;               /* when it fired; 0 = now */
	/* Alerts of the same rule and key suppressed (detect.suppress) since
	 * the previous one: they count in the incident's alert count. */
	uint64_t suppressed;
};

enum soc_change_kind {
	SOC_CHANGE_OPENED = 1,       /* an alert opened a new incident */
	SOC_CHANGE_UPDATED,          /* an alert joined an incident */
	SOC_CHANGE_ESCALATED,        /* ... and raised its severity */
	SOC_CHANGE_STATUS,           /* a person changed the status */
	SOC_CHANGE_ASSIGNED,         /* a person changed the assignee */
	SOC_CHANGE_COMMENTED,
};

/* What the on_incident hook is told. Valid for the duration of the call. */
struct soc_incident_change {
	enum soc_change_kind kind;
	int64_t incident_id;
	int64_t alert_id;            /* the alert, for OPENED/UPDATED/ESCALATED */
	const char *rule_id;
	const char *title;
	const char *entity;          /* JSON object, e.g. {"source.ip":"10.0.0.1"} */
	enum soc_level severity;     /* now */
	enum soc_level old_severity; /* before (== severity unless escalated) */
	enum soc_status status;      /* now */
	enum soc_status old_status;
	const char *assignee;        /* NULL when nobody */
	const char *actor;           /* who, for STATUS/ASSIGNED/COMMENTED */
	uint64_t count;              /* alerts in the incident */
	int64_t first_seen_us, last_seen_us;
};

/* Called from the soc writer thread after the commit; must not block for
 * long (copy and queue, as notifier_submit() does) and must not call back
 * into the soc functions that wait for the writer. */
typedef void (*soc_incident_fn)(void *ctx, const struct soc_incident_change *c);

struct soc_config {
	char *path;              /* the database file; "" = <data_dir>/soc.db */
	int64_t window;          /* seconds: grouping window */
	int64_t queue;           /* alerts waiting for the writer */
	int64_t batch;           /* alerts per transaction */
	int64_t retention;       /* seconds alerts are kept; 0 = forever */
	/* The entity an alert is grouped by (first field the event has);
	 * empty = SOC_DEFAULT_GROUP_BY. */
	struct conf_list group_by;
};

#define SOC_DEFAULT_GROUP_BY "source.ip", "host.name", "user.name", "destination.ip"


extern const struct conf_keyword soc_keywords[];

const char *soc_level_name(enum soc_level l);
const char *soc_status_name(enum soc_status s);
const char *soc_source_name(enum soc_source s);
const char *soc_change_name(enum soc_change_kind k);
int soc_level_parse(const char *s, size_t n, enum soc_level *out);
int soc_status_parse(const char *s, size_t n, enum soc_status *out);

/* The severity of an incident of base level `level` holding `count` alerts:
 * +1 level from 10 alerts, +2 from 100, capped at critical. */
enum soc_level soc_escalate(enum soc_level level, uint64_t count);
/* 1 when an incident may go from `from` to `to` (see docs/incidents.md). */
int soc_transition_ok(enum soc_status from, enum soc_status to);

struct soc_db;

/* Opens (creating) the database at cfg->path (must be set) and starts the
 * writer thread. on_incident may be NULL. Owner of *out: the caller,
 * released with soc_close(). M_EINVAL for a bad config, M_EIO. */
int soc_open(const struct soc_config *cfg, soc_incident_fn on_incident,
	     void *ctx, struct soc_db **out);
/* Drains the queue (up to 10 s), stops the writer, closes; NULL is a no-op. */
void soc_close(struct soc_db *db);

/* Copies the alert onto the queue without waiting: 0; M_EAGAIN when the
 * queue is full (counted in mamori_soc_alerts_dropped_total); M_EINVAL or
 * M_ELIMIT for an alert that breaks the rules above; M_ECLOSED when closing.
 * Thread-safe. */
int soc_alert_submit(struct soc_db *db, const struct soc_alert *a);

/* What one alert did, for soc_alert_add(). */
struct soc_add_result {
	enum soc_change_kind kind;   /* OPENED, UPDATED or ESCALATED */
	int64_t alert_id, incident_id;
	enum soc_level severity;
	uint64_t count;
};
/* Adds one alert through the writer and waits for the outcome (tests, tools;
 * pipeline workers use soc_alert_submit). 0 or a negative code. */
int soc_alert_add(struct soc_db *db, const struct soc_alert *a,
		  struct soc_add_result *out);

/* Waits up to timeout_ms (-1 = forever) until every alert submitted before
 * the call has been written (or has failed); 0, or M_EAGAIN on timeout. */
int soc_flush(struct soc_db *db, int timeout_ms);

struct soc_stats {
	uint64_t submitted, dropped, stored, failed;
	size_t queued;
};
void soc_get_stats(struct soc_db *db, struct soc_stats *out);

/* Turns one detection hit (struct detect_alert of detect.h, on the worker
 * that found it) into an alert and submits it, as soc_alert_submit(). The
 * entity is the correlation's group-by values, or for an indicator hit the
 * event field that matched, or else the first field of group_by (e.g.
 * source.ip, host.name, user.name) that the event has; none = by rule. */
struct detect_alert;
int soc_submit_detect(struct soc_db *db, const struct detect_alert *a,
		      const struct conf_list *group_by);

/* ---- changes made by people (through the writer; they wait) ---- */

/* What a PATCH sets; a NULL field is left alone. assignee "" unassigns. */
struct soc_update {
	const char *actor;                /* required */
	const enum soc_status *status;
	const char *assignee;
};

/* 0; M_ENOTFOUND for no such incident; M_EINVAL when the status change is
 * not allowed (why says which ones are, cut to whysz). Every change is
 * recorded in the history; an unchanged value is not a change. */
int soc_incident_update(struct soc_db *db, int64_t id,
			const struct soc_update *u, char *why, size_t whysz);
/* Adds a comment; *comment_id set. M_ENOTFOUND; M_ELIMIT past
 * SOC_MAX_COMMENTS; M_EINVAL for an empty author or text. */
int soc_incident_comment(struct soc_db *db, int64_t id, const char *author,
			 const char *text, int64_t *comment_id);

/* ---- reads (any thread; each takes a read connection from a pool) ---- */

struct soc_alert_query {
	int64_t from_us, to_us;      /* alert time, inclusive; 0 = open */
	const char *rule_id;         /* NULL = any */
	unsigned level_mask;         /* bit per soc_level; 0 = any */
	int64_t incident_id;         /* 0 = any */
	uint32_t limit;              /* 1..1000 */
	uint64_t offset;
};

struct soc_incident_query {
	unsigned status_mask;        /* bit per soc_status; 0 = any */
	unsigned severity_mask;      /* bit per soc_level; 0 = any */
	const char *assignee;        /* NULL = any */
	const char *rule_id;
	int64_t from_us, to_us;      /* incidents active in [from, to] */
	uint32_t limit;
	uint64_t offset;
};

/* Appends {"total":N,"limit":L,"offset":O,"alerts":[...]}. */
int soc_alerts_json(struct soc_db *db, const struct soc_alert_query *q,
		    struct buf *out);
/* Appends one alert object; M_ENOTFOUND. */
int soc_alert_json(struct soc_db *db, int64_t id, struct buf *out);
/* Appends {"total":N,"limit":L,"offset":O,"incidents":[...]}. */
int soc_incidents_json(struct soc_db *db, const struct soc_incident_query *q,
		       struct buf *out);
/* Appends one incident with its comments, history and latest n_alerts
 * alerts (at most 100); M_ENOTFOUND. */
int soc_incident_json(struct soc_db *db, int64_t id, uint32_t n_alerts,
		      struct buf *out);

#endif
