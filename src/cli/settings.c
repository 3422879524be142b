/*
 * The configuration sections and their keyword tables. Adding an option is
 * one line in a table; the generic setters in core/config.c do the rest.
 */
#include <stddef.h>
#include <string.h>

#include "cli/settings.h"
#include "core/err.h"
#include "core/log.h"

static const struct conf_keyword global_keywords[] = {
	{ "data_dir", CONF_STR, offsetof(struct global_settings, data_dir), 0, 0,
	  "./var", 0, "directory for the store, the API token and state" },
	{ "log_level", CONF_STR, offsetof(struct global_settings, log_level), 0, 0,
	  "info", 1, "debug, info, warn or error" },
	{ "workers", CONF_INT, offsetof(struct global_settings, workers), 0, 64,
	  "0", 0, "pipeline worker threads; 0 = one per core" },
	{ "queue_batches", CONF_INT, offsetof(struct global_settings, queue_batches), 1, 100000,
	  "64", 0, "capacity of the parse queue, in batches" },
	{ "keep_original", CONF_BOOL, offsetof(struct global_settings, keep_original), 0, 0,
	  "true", 0, "keep every raw record in event.original" },
	{ "user", CONF_STR, offsetof(struct global_settings, user), 0, 0,
	  "", 0, "when started as root, run as this user (data_dir is handed to it; ports below 1024 stay bindable)" },
	CONF_END
};

static const struct conf_keyword store_keywords[] = {
	{ "backend", CONF_STR, offsetof(struct store_settings, backend), 0, 0,
	  "sqlite", 0, "event store back-end" },
	{ "retention", CONF_DURATION, offsetof(struct store_settings, retention), 0,
	  (int64_t)100 * 365 * 86400, "30d", 0, "drop events older than this; 0 = keep" },
	{ "retention_size", CONF_SIZE, offsetof(struct store_settings, retention_size), 0,
	  (int64_t)1 << 50, "0", 0, "drop the oldest events past this size; 0 = no cap" },
	{ "fts_batch", CONF_INT, offsetof(struct store_settings, fts_batch), 100, 10000000,
	  "50000", 0, "events per full-text indexing step" },
	CONF_END
};

static const char *const sections[] = {
	"data_dir", "log_level", "workers", "queue_batches", "keep_original", "user",
	"store", "ingest", "api", "detect", "soc", "notify", "intel", "mitigation", "ddos", "mail", NULL
};

static const struct conf_keyword intel_keywords[] = {
	CONF_END
};

/* intel: only `feeds:`, a list of feeds (feed_conf_keywords per item). */
static int intel_load(const struct conf_doc *doc, struct intel_settings *in, struct buf *err)
{
	static const char *const skip[] = { "feeds", NULL };
	const struct conf_node *sec = NULL, *feeds;
	int r;

	if (doc->root)
		sec = conf_map_get(doc->root, "intel");
	if (!sec || conf_node_is_null(sec))
		return M_OK;
	if ((r = conf_apply_map(doc, sec, "intel", intel_keywords, skip, in, err)) < 0)
		return r;
	feeds = conf_map_get(sec, "feeds");
	if (!feeds || conf_node_is_null(feeds))
		return M_OK;
	return feed_conf_parse_list(doc, feeds, &in->feeds, &in->nfeeds, err);
}

/* Compares the feed lists by what a restart would change: names, kinds,
 * sources and refresh intervals. */
static int intel_changed(const struct intel_settings *a, const struct intel_settings *b)
{
	if (a->nfeeds != b->nfeeds)
		return 1;
	for (size_t i = 0; i < a->nfeeds; i++) {
		const struct feed_conf *x = &a->feeds[i], *y = &b->feeds[i];
		if (strcmp(x->name ? x->name : "", y->name ? y->name : "") ||
		    strcmp(x->kind ? x->kind : "", y->kind ? y->kind : "") ||
		    strcmp(x->url_or_path ? x->url_or_path : "", y->url_or_path ? y->url_or_path : "") ||
		    x->refresh_s != y->refresh_s)
			return 1;
	}
	return 0;
}

int settings_load(const char *path, struct settings *s, struct buf *err)
{
	struct conf_doc doc = { 0 };
	enum log_level lvl;
	int r;

	memset(s, 0, sizeof(*s));
	if (path && (r = conf_load_file(path, &doc, err)) < 0)
		return r;
	if ((r = conf_check_sections(&doc, sections, err)) < 0 ||
	    (r = conf_apply(&doc, NULL, global_keywords, &s->g, err)) < 0 ||
	    (r = conf_apply(&doc, "store", store_keywords, &s->store, err)) < 0 ||
	    (r = conf_apply(&doc, "ingest", ingest_keywords, &s->ingest, err)) < 0 ||
	    (r = conf_apply(&doc, "api", api_keywords, &s->api, err)) < 0 ||
	    (r = conf_apply(&doc, "detect", detect_keywords, &s->detect, err)) < 0 ||
	    (r = conf_apply(&doc, "soc", soc_keywords, &s->soc, err)) < 0 ||
	    (r = notify_config_load(&doc, &s->notify, err)) < 0 ||
	    (r = intel_load(&doc, &s->intel, err)) < 0 ||
	    (r = mitig_config_load(&doc, &s->mitigation, err)) < 0 ||
	    (r = ddos_config_load(&doc, &s->ddos, err)) < 0 ||
	    (r = ddos_collect_config_load(&doc, &s->ddos_collect, err)) < 0 ||
	    (r = mail_config_load(&doc, &s->mail, err)) < 0)
		goto out;
	if (log_level_parse(s->g.log_level, &lvl) < 0) {
		buf_printf(err, "%s: log_level: expected debug, info, warn or error",
			   path ? path : "(defaults)");
		buf_cstr(err);
		r = M_EINVAL;
		goto out;
	}
	if (!s->g.data_dir[0]) {
		buf_printf(err, "%s: data_dir must not be empty", path ? path : "(defaults)");
		buf_cstr(err);
		r = M_EINVAL;
		goto out;
	}
	if (s->ingest.syslog_tls && s->ingest.syslog_tls[0] &&
	    (!s->ingest.tls_cert || !s->ingest.tls_cert[0] ||
	     !s->ingest.tls_key || !s->ingest.tls_key[0])) {
		buf_printf(err, "%s: ingest.syslog_tls needs ingest.tls_cert and ingest.tls_key",
			   path ? path : "(defaults)");
		buf_cstr(err);
		r = M_EINVAL;
		goto out;
	}
out:
	conf_doc_fini(&doc);
	return r;
}

void settings_free(struct settings *s)
{
	conf_free(global_keywords, &s->g);
	conf_free(store_keywords, &s->store);
	conf_free(ingest_keywords, &s->ingest);
	conf_free(api_keywords, &s->api);
	conf_free(detect_keywords, &s->detect);
	conf_free(soc_keywords, &s->soc);
	notify_config_free(&s->notify);
	mitig_config_free(&s->mitigation);
	ddos_config_free(&s->ddos);
	ddos_collect_config_free(&s->ddos_collect);
	mail_config_free(&s->mail);
	feed_conf_free_all(s->intel.feeds, s->intel.nfeeds);
	s->intel.feeds = NULL;
	s->intel.nfeeds = 0;
}

int settings_changed_fixed(const struct settings *a, const struct settings *b,
			   struct buf *out)
{
	int r;

	if ((r = conf_changed_fixed(NULL, global_keywords, &a->g, &b->g, out)) < 0 ||
	    (r = conf_changed_fixed("store", store_keywords, &a->store, &b->store, out)) < 0 ||
	    (r = conf_changed_fixed("ingest", ingest_keywords, &a->ingest, &b->ingest, out)) < 0 ||
	    (r = conf_changed_fixed("api", api_keywords, &a->api, &b->api, out)) < 0 ||
	    (r = conf_changed_fixed("detect", detect_keywords, &a->detect, &b->detect, out)) < 0 ||
	    (r = conf_changed_fixed("soc", soc_keywords, &a->soc, &b->soc, out)) < 0 ||
	    (r = conf_changed_fixed("mitigation", mitig_keywords, &a->mitigation, &b->mitigation,
				    out)) < 0 ||
	    (r = conf_changed_fixed("ddos", ddos_collect_keywords, &a->ddos_collect,
				    &b->ddos_collect, out)) < 0 ||
	    (r = conf_changed_fixed("mail", mail_keywords, &a->mail, &b->mail, out)) < 0)
		return r;
	/* The detector's groups, thresholds, tiers and allow lists reload
	 * (serve.c, ddos_detector_reconfigure); its table sizes do not. */
	if ((r = ddos_config_changed_fixed(&a->ddos, &b->ddos, out)) < 0)
		return r;
	/* The notifier and the feed manager are built once, at start. */
	if (a->notify.nch != b->notify.nch ||
	    a->notify.queue != b->notify.queue)
		r = buf_printf(out, "%snotify", out->len ? "," : "");
	for (size_t i = 0; r == 0 && i < a->notify.nch && a->notify.nch == b->notify.nch; i++) {
		const struct notify_channel_config *x = &a->notify.ch[i], *y = &b->notify.ch[i];
		if (strcmp(x->name, y->name) || strcmp(x->url ? x->url : "", y->url ? y->url : "")) {
			r = buf_printf(out, "%snotify.channels", out->len ? "," : "");
			break;
		}
	}
	if (r == 0 && intel_changed(&a->intel, &b->intel))
		r = buf_printf(out, "%sintel.feeds", out->len ? "," : "");
	return r < 0 ? r : M_OK;
}

int settings_describe(struct buf *out)
{
	int r;

	if ((r = conf_describe(NULL, global_keywords, out)) < 0 ||
	    (r = buf_putc(out, '\n')) < 0 ||
	    (r = conf_describe("store", store_keywords, out)) < 0 ||
	    (r = buf_putc(out, '\n')) < 0 ||
	    (r = conf_describe("ingest", ingest_keywords, out)) < 0 ||
	    (r = buf_putc(out, '\n')) < 0 ||
	    (r = conf_describe("api", api_keywords, out)) < 0 ||
	    (r = buf_putc(out, '\n')) < 0 ||
	    (r = conf_describe("detect", detect_keywords, out)) < 0 ||
	    (r = buf_putc(out, '\n')) < 0 ||
	    (r = conf_describe("soc", soc_keywords, out)) < 0 ||
	    (r = buf_putc(out, '\n')) < 0 ||
	    (r = notify_config_describe(out)) < 0 ||
	    (r = buf_putc(out, '\n')) < 0 ||
	    (r = buf_puts(out, "intel:\n  # feeds: a list of threat-intelligence feeds (docs/intel.md); each item takes:\n")) < 0)
		return r;
	for (const struct conf_keyword *k = feed_conf_keywords; k->name; k++)
		if ((r = buf_printf(out, "  #   %s (default \"%s\"): %s\n", k->name,
				    k->def ? k->def : "", k->help ? k->help : "")) < 0)
			return r;
	if ((r = buf_putc(out, '\n')) < 0 || (r = mitig_config_describe(out)) < 0 ||
	    (r = buf_putc(out, '\n')) < 0 || (r = ddos_config_describe(out)) < 0 ||
	    (r = ddos_collect_config_describe(out)) < 0 ||
	    (r = buf_putc(out, '\n')) < 0 || (r = mail_config_describe(out)) < 0)
		return r;
	return M_OK;
}
