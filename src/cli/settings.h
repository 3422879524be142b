/*
 * The whole configuration of one mamori process: the top-level settings and
 * each section, loaded from YAML over the built-in defaults. serve and
 * check-config share it, so both report the same errors.
 */
#ifndef MAMORI_SETTINGS_H
#define MAMORI_SETTINGS_H

#include <stdint.h>

#include "api/api.h"
#include "core/buf.h"
#include "core/config.h"
#include "detect/detect.h"
#include "detect/feed.h"
#include "detect/incident.h"
#include "detect/notify.h"
#include "ddos/collect.h"
#include "ddos/ddos_conf.h"
#include "ddos/mitig.h"
#include "mail/mail_conf.h"
#include "ingest/ingest.h"

struct global_settings {
	char *data_dir;
	char *log_level;
	int64_t workers;
	int64_t queue_batches;
	int keep_original;
	char *user;
};

struct store_settings {
	char *backend;
	int64_t retention;
	int64_t retention_size;
	int64_t fts_batch;
};

/* intel: the threat-intelligence feeds (docs/intel.md). */
struct intel_settings {
	struct feed_conf *feeds;
	size_t nfeeds;
};

struct settings {
	struct global_settings g;
	struct store_settings store;
	struct ingest_config ingest;
	struct api_config api;
	struct detect_config detect;
	struct soc_config soc;
	struct notify_config notify;
	struct intel_settings intel;
	struct mitig_config mitigation;
	struct ddos_config ddos;                 /* detection: groups, thresholds, tiers */
	struct ddos_collect_config ddos_collect; /* the collector's keys of ddos: */
	struct mail_config mail;                 /* the milter and its policy */
};

/* Loads path (NULL = built-in defaults only) into s. On error, err holds
 * "file:line:col: message" and the result is negative. settings_free() in
 * every case. */
int settings_load(const char *path, struct settings *s, struct buf *err);
void settings_free(struct settings *s);
/* Names (comma-separated) of the settings that differ between a and b but
 * only take effect on a restart. */
int settings_changed_fixed(const struct settings *a, const struct settings *b,
			   struct buf *out);
/* Writes every section with defaults and help as YAML. */
int settings_describe(struct buf *out);

#endif
