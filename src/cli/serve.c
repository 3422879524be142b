/*
 * `mamori serve`: starts the store, the pipeline, the listeners, the DDoS
 * collector and mitigation, and the API, then waits for signals.
 * SIGTERM/SIGINT drain every queue into the store and exit 0; SIGHUP
 * re-reads the configuration and applies what is reloadable.
 * Signals are blocked in every thread and taken with sigwait() here, so no
 * handler runs in the middle of library code.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/api_ddos.h"
#include "cli/cli.h"
#include "cli/privs.h"
#include "cli/settings.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "ddos/attack_db.h"
#include "ddos/capture.h"
#include "ddos/collect.h"
#include "ddos/mitig.h"
#include "mail/mail_gw.h"
#include "detect/feed.h"
#include "detect/incident.h"
#include "detect/notify.h"
#include "ingest/ingest.h"
#include "store/store.h"

static int mkdir_p(const char *dir)
{
	char path[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path))
		return M_EINVAL;
	memcpy(path, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (path[i] == '/' || path[i] == '\0') {
			char c = path[i];
			path[i] = '\0';
			if (mkdir(path, 0750) < 0 && errno != EEXIST)
				return M_EIO;
			path[i] = c;
		}
	}
	return M_OK;
}

/* Reads the token stored under the data directory, or makes one. The token
 * is printed nowhere but the file; the log names the file. */
static int resolve_token(const char *data_dir, struct conf_list *tokens)
{
	char path[4096], tok[65];
	unsigned char rnd[32];
	static const char hex[] = "0123456789abcdef";
	const char *env = getenv("MAMORI_API_TOKEN");
	int fd;
	ssize_t n;

	if (env && env[0])
		return conf_list_push(tokens, env);
	if (tokens->n > 0)
		return M_OK;
	snprintf(path, sizeof(path), "%s/api-token", data_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, tok, sizeof(tok) - 1);
		close(fd);
		while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
			n--;
		if (n >= 16) {
			tok[n] = '\0';
			log_msg(LOG_INFO, "api", "event=token_loaded file=%s", path);
			goto add;
		}
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return M_EIO;
	for (size_t i = 0; i < sizeof(rnd); i++) {
		tok[2 * i] = hex[rnd[i] >> 4];
		tok[2 * i + 1] = hex[rnd[i] & 15];
	}
	tok[64] = '\0';
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, tok, 64) != 64 || write(fd, "\n", 1) != 1) {
		if (fd >= 0)
			close(fd);
		log_msg(LOG_ERROR, "api", "event=token_write_failed file=%s err=\"%s\"", path,
			strerror(errno));
		return M_EIO;
	}
	close(fd);
	log_msg(LOG_INFO, "api", "event=token_generated file=%s hint=\"send it as 'Authorization: Bearer <token>'\"",
		path);
add:
	return conf_list_push(tokens, tok);
}

/* Settings that follow from others: followed files resume where they
 * stopped (a state file under data_dir), so a restart does not store them
 * twice; compiled rule databases are kept under data_dir, so a restart or
 * a reload of unchanged rules does not compile them again. */
static int settings_derive(struct settings *s)
{
	char state[4096];

	/* Compiled rule databases live beside the store unless said. */
	if (!s->detect.compiled_cache || !s->detect.compiled_cache[0]) {
		snprintf(state, sizeof(state), "%s/rules-cache", s->g.data_dir);
		free(s->detect.compiled_cache);
		s->detect.compiled_cache = strdup(state);
		if (!s->detect.compiled_cache)
			return M_ENOMEM;
	}
	if (s->ingest.json_files.n == 0 || (s->ingest.files_state && s->ingest.files_state[0]))
		return M_OK;
	snprintf(state, sizeof(state), "%s/ingest-files.state", s->g.data_dir);
	free(s->ingest.files_state);
	s->ingest.files_state = strdup(state);
	return s->ingest.files_state ? M_OK : M_ENOMEM;
}

static void serve_usage(FILE *f)
{
	fprintf(f,
		"usage: mamori serve [-c FILE]\n"
		"\n"
		"Runs mamori: receives logs (syslog UDP/TCP/TLS, JSON lines over TCP and\n"
		"from files), normalises them to ECS events, stores them, runs the Sigma\n"
		"rules, correlations and threat-intelligence indicators on every event,\n"
		"groups alerts into incidents (<data_dir>/soc.db), notifies (notify:\n"
		"channels) and serves the HTTP API and console. Without -c it runs on the\n"
		"built-in defaults:\n"
		"  store      SQLite under ./var/\n"
		"  API        http://127.0.0.1:8080 (token: $MAMORI_API_TOKEN, or generated\n"
		"             into ./var/api-token on first start)\n"
		"  syslog     127.0.0.1:5514 UDP and TCP\n"
		"  JSON lines 127.0.0.1:5515 TCP\n"
		"  flows      NetFlow v5/v9 and IPFIX on 127.0.0.1:2055 UDP, sFlow on\n"
		"             127.0.0.1:6343 UDP (ddos.netflow, ddos.sflow; \"\" disables)\n"
		"  mirror     off; ddos.capture_interface: eth1 counts every packet of a\n"
		"             mirror (SPAN) port, 1 in ddos.capture_sampling (needs root)\n"
		"  milter     127.0.0.1:8891 TCP for Postfix/Sendmail (mail.milter)\n"
		"\n"
		"DDoS protection (docs/ddos.md): flow records are counted per protected\n"
		"address, /24 (/48) and group (ddos.groups; none by default, so nothing\n"
		"alarms until you say what to protect); attacks are named, stored in\n"
		"<data_dir>/ddos.db, reported as events and notifications, and mitigated\n"
		"through the mitigation: back-end (RTBH, FlowSpec, nftables).\n"
		"\n"
		"Mail gateway (docs/mail.md): every message the MTA passes through the\n"
		"milter is authenticated (SPF, DKIM, ARC, DMARC), read (attachments,\n"
		"ClamAV, YARA, URLs, BEC; DLP on outbound mail) and accepted, tagged,\n"
		"held in <data_dir>/quarantine, refused or deferred; one event each.\n"
		"\n"
		"  -c, --config FILE   YAML configuration (see `mamori check-config --defaults`)\n"
		"  -h, --help          this help\n"
		"\n"
		"Signals: SIGTERM/SIGINT drain every queue into the store and exit 0;\n"
		"SIGHUP reloads the reloadable settings (log_level, api.tokens, the\n"
		"detect rules, mappings and placeholders), every intel feed now, and\n"
		"DDoS protection: ddos.groups (prefixes, thresholds, baseline, trigger,\n"
		"cooldown, tiers), the allow lists, the carpet and baseline settings,\n"
		"and the mitigation policy (dry_run, hold_time, caps, communities, next\n"
		"hops, allow). Counters, baselines and attacks in progress are kept.\n"
		"Listener addresses, the capture, table sizes (ddos.max_*), the\n"
		"mitigation back-end and other fixed settings need a restart: the log\n"
		"names them (event=reload_needs_restart). A bad file changes nothing.\n"
		"Exit status: 0 after a clean stop, 2 on a bad configuration, 1 on a\n"
		"start-up failure (a port in use, an unwritable data directory).\n");
}

/* What the detection sink and the incident hook need: the SOC back-end,
 * the entity fields alerts are grouped by, and the notifier. */
struct serve_ctx {
	struct soc_db *soc;
	struct conf_list group_by;     /* borrowed from the settings or defaults */
	struct notifier *nf;
};

/* A detection hit, on the worker that found it: into the SOC queue (never
 * waits; a full queue is counted in mamori_soc_alerts_dropped_total). */
static void on_alert(void *ctx, const struct detect_alert *a)
{
	struct serve_ctx *sc = ctx;
	int r;

	log_msg(LOG_DEBUG, "detect", "event=alert source=%s rule=%s level=%s event_id=%llu",
		detect_source_name(a->source), a->rule_id, sigma_level_name(a->level),
		(unsigned long long)a->ev->id);
	if (!sc->soc)
		return;
	r = soc_submit_detect(sc->soc, a, &sc->group_by);
	if (r < 0 && r != M_EAGAIN && r != M_ECLOSED)
		log_msg(LOG_WARN, "detect", "event=alert_refused rule=%s error=%s", a->rule_id,
			err_str(r));
}

static void fmt_time(int64_t us, char *out, size_t n)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	if (us <= 0 || !gmtime_r(&t, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, n, "-");
}

/* An incident change, on the SOC writer thread after the commit: opened,
 * escalated and closed incidents become notifications (copied onto the
 * notifier's queue; it routes, rate-limits and retries). */
static void on_incident(void *ctx, const struct soc_incident_change *c)
{
	struct serve_ctx *sc = ctx;
	struct notification n = { 0 };
	char title[NOTIFY_MAX_TITLE], id[32], count[32], first[32], last[32], body[1024];
	const char *what;

	switch (c->kind) {
	case SOC_CHANGE_OPENED:
		n.kind = NOTIFY_INCIDENT_OPENED;
		what = "opened";
		break;
	case SOC_CHANGE_ESCALATED:
		n.kind = NOTIFY_INCIDENT_ESCALATED;
		what = "escalated";
		break;
	case SOC_CHANGE_STATUS:
		if (c->status != SOC_STATUS_RESOLVED && c->status != SOC_STATUS_FALSE_POSITIVE)
			return;
		n.kind = NOTIFY_INCIDENT_RESOLVED;
		what = c->status == SOC_STATUS_RESOLVED ? "resolved" : "closed as false positive";
		break;
	default:
		return;
	}
	log_msg(LOG_INFO, "soc", "event=incident_%s id=%" PRId64 " rule=%s severity=%s count=%" PRIu64,
		c->kind == SOC_CHANGE_STATUS ? soc_status_name(c->status) : soc_change_name(c->kind),
		c->incident_id, c->rule_id ? c->rule_id : "", soc_level_name(c->severity), c->count);
	if (!sc->nf)
		return;
	n.severity = (enum notify_severity)c->severity;
	snprintf(title, sizeof(title), "Incident #%" PRId64 " %s: %s", c->incident_id, what,
		 c->title && c->title[0] ? c->title : (c->rule_id ? c->rule_id : "?"));
	snprintf(id, sizeof(id), "%" PRId64, c->incident_id);
	snprintf(count, sizeof(count), "%" PRIu64, c->count);
	fmt_time(c->first_seen_us, first, sizeof(first));
	fmt_time(c->last_seen_us, last, sizeof(last));
	if (c->kind == SOC_CHANGE_ESCALATED)
		snprintf(body, sizeof(body), "Severity rose from %s to %s after %" PRIu64 " alerts.\n"
			 "Details: GET /api/v1/incidents/%" PRId64 "\n", soc_level_name(c->old_severity),
			 soc_level_name(c->severity), c->count, c->incident_id);
	else if (c->kind == SOC_CHANGE_STATUS)
		snprintf(body, sizeof(body), "%s by %s after %" PRIu64 " alerts.\n"
			 "Details: GET /api/v1/incidents/%" PRId64 "\n", soc_status_name(c->status),
			 c->actor ? c->actor : "?", c->count, c->incident_id);
	else
		snprintf(body, sizeof(body), "A new incident was opened by rule %s.\n"
			 "Details: GET /api/v1/incidents/%" PRId64 "\n", c->rule_id ? c->rule_id : "?",
			 c->incident_id);
	n.title = title;
	n.body = body;
	n.fields[n.nfields++] = (struct notify_field){ "incident", id };
	n.fields[n.nfields++] = (struct notify_field){ "rule", c->rule_id ? c->rule_id : "" };
	n.fields[n.nfields++] = (struct notify_field){ "severity", soc_level_name(c->severity) };
	n.fields[n.nfields++] = (struct notify_field){ "status", soc_status_name(c->status) };
	n.fields[n.nfields++] = (struct notify_field){ "entity", c->entity ? c->entity : "{}" };
	n.fields[n.nfields++] = (struct notify_field){ "alerts", count };
	n.fields[n.nfields++] = (struct notify_field){ "first_seen", first };
	n.fields[n.nfields++] = (struct notify_field){ "last_seen", last };
	if (c->assignee)
		n.fields[n.nfields++] = (struct notify_field){ "assignee", c->assignee };
	if (notifier_submit(sc->nf, &n) < 0)
		log_msg(LOG_WARN, "notify", "event=notification_dropped incident=%" PRId64, c->incident_id);
}

/* The DDoS pillar: attack history, mitigation manager and its worker, the
 * collector thread. Started after the pipeline (attacks become events),
 * stopped before it drains. The mirror-port capture is opened earlier,
 * before the privilege drop: its socket needs CAP_NET_RAW. */
struct ddos_runner {
	struct ddos_capture *cap;
	struct attack_db *adb;
	struct mitig *mitig;
	struct mitig_worker *mw;
	struct ddos_collector *col;
	struct api_ddos_ctx api;
};

static int ddos_top(void *arg, const struct flow_ip *ip, struct ddos_top *out)
{
	return ddos_collector_top(arg, ip, out, 2000);
}

static int ddos_exporters(void *arg, struct ddos_exporter_info **out, size_t *n)
{
	return ddos_collector_exporters(arg, out, n, 2000);
}

/* An attack left open by the last run: its automatic mitigations enter
 * their hold, so they are withdrawn unless it is seen again. */
static void ddos_end_open(void *arg, const char *id_str)
{
	size_t n = 0;

	if (mitig_end(arg, id_str, clock_now_us() / 1000000, &n) == 0 && n)
		log_msg(LOG_INFO, "ddos", "event=interrupted_attack_closed attack=%s mitigations_held=%zu",
			id_str, n);
}

/* The capture socket, when ddos.capture_interface names one: while still
 * root. M_EIO with the reason in err (no such interface, not permitted). */
static int ddos_open_capture(struct ddos_runner *dr, const struct settings *s, struct buf *err)
{
	const struct ddos_collect_config *cc = &s->ddos_collect;

	if (!cc->capture_if || !cc->capture_if[0])
		return M_OK;
	dr->cap = ddos_capture_open(cc->capture_if, (uint32_t)cc->capture_sampling,
				    (size_t)cc->capture_ring, err);
	return dr->cap ? M_OK : M_EIO;
}

static int ddos_start(struct ddos_runner *dr, const struct settings *s, struct pipeline *pipe,
		      struct notifier *nf, struct buf *err)
{
	char path[4096];
	struct ddos_collect_deps deps = { 0 };
	struct ddos_capture *cap = dr->cap;
	uint64_t next = 1;
	size_t n = 0;

	memset(dr, 0, sizeof(*dr));
	dr->cap = cap;
	if (!ddos_collect_enabled(&s->ddos_collect)) {
		log_msg(LOG_INFO, "ddos", "event=off reason=\"ddos.netflow, ddos.sflow and"
			" ddos.capture_interface are empty\"");
		return M_OK;
	}
	if (s->ddos_collect.attacks_db && s->ddos_collect.attacks_db[0])
		snprintf(path, sizeof(path), "%s", s->ddos_collect.attacks_db);
	else
		snprintf(path, sizeof(path), "%s/ddos.db", s->g.data_dir);
	dr->adb = attack_db_open(path, s->ddos_collect.attack_retention, s->ddos_collect.attack_history);
	if (!dr->adb)
		return M_EIO;
	snprintf(path, sizeof(path), "%s/mitigation.db", s->g.data_dir);
	dr->mitig = mitig_new(&s->mitigation, path);
	if (!dr->mitig)
		return M_EIO;
	if (attack_db_recover(dr->adb, ddos_end_open, dr->mitig, &n) < 0 ||
	    attack_db_next_id(dr->adb, &next) < 0)
		return M_EIO;
	dr->mw = mitig_worker_new(dr->mitig);
	if (!dr->mw)
		return M_ENOMEM;
	deps.pipe = pipe;
	deps.nf = nf;
	deps.mw = dr->mw;
	deps.adb = dr->adb;
	deps.capture = dr->cap;
	deps.dry_run = s->mitigation.dry_run || s->mitigation.kind == MITIG_BE_NONE;
	dr->col = ddos_collector_new(&s->ddos_collect, &s->ddos, &deps, next, err);
	if (!dr->col)
		return M_EIO;
	mitig_set_observer(dr->mitig, ddos_collector_mitig_observer, dr->col);
	if (mitig_worker_start(dr->mw) < 0 || ddos_collector_start(dr->col) < 0)
		return M_EIO;
	dr->api.adb = dr->adb;
	dr->api.mitig = dr->mitig;
	dr->api.top = ddos_top;
	dr->api.top_arg = dr->col;
	dr->api.exporters = ddos_exporters;
	dr->api.exporters_arg = dr->col;
	log_msg(LOG_INFO, "ddos", "event=started groups=%zu mitigation=%s dry_run=%d next_attack=%llu"
		" interrupted_attacks=%zu", s->ddos.ngroups, s->mitigation.backend, deps.dry_run,
		(unsigned long long)next, n);
	return M_OK;
}

/* First half of the stop: no more attacks, the queued mitigation requests
 * applied; then no more events (the pipeline drains next). */
static void ddos_stop(struct ddos_runner *dr)
{
	ddos_collector_stop(dr->col);
	mitig_worker_free(dr->mw);
	dr->mw = NULL;
	ddos_collector_close_events(dr->col);
}

/* Second half, after the API: what the API threads could still use. */
static void ddos_free(struct ddos_runner *dr)
{
	if (dr->mitig)
		mitig_set_observer(dr->mitig, NULL, NULL);
	ddos_collector_free(dr->col);
	ddos_capture_free(dr->cap);
	mitig_free(dr->mitig);
	attack_db_close(dr->adb);
	memset(dr, 0, sizeof(*dr));
}

/* The feed thread: loads every feed at start, then each when it is due,
 * and hands every new indicator set to the detector. SIGHUP reloads all
 * of them now. A feed that fails keeps its previous indicators. */
struct intel_runner {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop, force, started;
	struct feed_manager *m;
	struct detect *det;
};

static void *intel_main(void *arg)
{
	struct intel_runner *ir = arg;
	struct buf report;

	buf_init(&report, 4096);
	pthread_mutex_lock(&ir->mu);
	while (!ir->stop) {
		int force = ir->force;
		struct intel_set *set = NULL;
		int64_t next, now;
		struct timespec ts;

		ir->force = 0;
		pthread_mutex_unlock(&ir->mu);
		buf_reset(&report);
		if (feed_manager_refresh(ir->m, clock_now_us(), force, &set, &report) < 0)
			log_msg(LOG_ERROR, "intel", "event=intel_build_failed hint=\"the previous indicators stay\"");
		for (char *p = report.p, *nl; p && p < report.p + report.len; p = nl + 1) {
			nl = memchr(p, '\n', (size_t)(report.p + report.len - p));
			if (!nl)
				nl = report.p + report.len;
			if (nl > p)
				/* The report is not NUL-terminated: search the line only. */
				log_msg(memmem(p, (size_t)(nl - p), "status=error", 12) ? LOG_WARN : LOG_INFO,
					"intel", "event=feed_loaded %.*s", (int)(nl - p), p);
		}
		if (set) {
			log_msg(LOG_INFO, "intel", "event=indicators_loaded indicators=%zu feeds=%zu",
				intel_set_count(set), feed_manager_count(ir->m));
			detect_set_intel(ir->det, set);
		}
		pthread_mutex_lock(&ir->mu);
		if (ir->stop || ir->force)
			continue;
		/* Sleep until the next feed is due; wake at least every minute
		 * so an indicator whose validity starts is put in force. */
		now = clock_now_us();
		next = feed_manager_next_due(ir->m);
		if (next <= 0 || next - now > 60 * 1000000LL)
			next = now + 60 * 1000000LL;
		if (next < now + 1000)
			next = now + 1000;
		ts.tv_sec = (time_t)(next / 1000000);
		ts.tv_nsec = (long)(next % 1000000) * 1000;
		pthread_cond_timedwait(&ir->cv, &ir->mu, &ts);
	}
	pthread_mutex_unlock(&ir->mu);
	buf_fini(&report);
	return NULL;
}

static int intel_start(struct intel_runner *ir, const struct intel_settings *in,
		       struct detect *det, struct buf *err)
{
	memset(ir, 0, sizeof(*ir));
	if (in->nfeeds == 0)
		return M_OK;
	ir->m = feed_manager_new(in->feeds, in->nfeeds, err);
	if (!ir->m)
		return M_EINVAL;
	ir->det = det;
	ir->force = 1;
	pthread_mutex_init(&ir->mu, NULL);
	pthread_cond_init(&ir->cv, NULL);
	if (pthread_create(&ir->th, NULL, intel_main, ir) != 0) {
		feed_manager_free(ir->m);
		ir->m = NULL;
		pthread_mutex_destroy(&ir->mu);
		pthread_cond_destroy(&ir->cv);
		return M_EIO;
	}
	ir->started = 1;
	return M_OK;
}

static void intel_kick(struct intel_runner *ir, int stop)
{
	if (!ir->started)
		return;
	pthread_mutex_lock(&ir->mu);
	if (stop)
		ir->stop = 1;
	else
		ir->force = 1;
	pthread_cond_signal(&ir->cv);
	pthread_mutex_unlock(&ir->mu);
}

static void intel_stop(struct intel_runner *ir)
{
	if (!ir->started)
		return;
	intel_kick(ir, 1);
	pthread_join(ir->th, NULL);
	feed_manager_free(ir->m);
	pthread_mutex_destroy(&ir->mu);
	pthread_cond_destroy(&ir->cv);
	ir->started = 0;
}

/* SIGHUP, the DDoS part: the mitigation policy first (what the detector
 * asks for from now on is decided under it), then the detection
 * configuration, compiled here and put in force by the collector thread
 * between two ticks; counters, baselines and attacks in progress stay.
 * s->ddos moves into the collector. A configuration the detector refuses
 * leaves the running one. */
static void reload_ddos(struct ddos_runner *dr, const struct settings *running,
			struct settings *s, struct buf *err)
{
	struct ddos_reload_stats st = { 0 };
	size_t nas = s->ddos.nallow_src, nad = s->ddos.nallow_dst, ntiers = 0;
	int dry, r;

	if (!dr->col)
		return;
	if (dr->mitig && mitig_reload(dr->mitig, &s->mitigation) < 0)
		log_msg(LOG_ERROR, "serve", "event=mitigation_reload_failed error=\"out of memory\""
			" hint=\"the running mitigation policy stays\"");
	for (size_t i = 0; i < s->ddos.ngroups; i++) {
		nas += s->ddos.groups[i].nallow_src;
		nad += s->ddos.groups[i].nallow_dst;
		ntiers += s->ddos.groups[i].ntiers;
	}
	/* The back-end stays as it runs, so "none" stays a dry run. */
	dry = s->mitigation.dry_run || running->mitigation.kind == MITIG_BE_NONE;
	buf_reset(err);
	r = ddos_collector_reload(dr->col, &s->ddos, dry, &st, 5000, err);
	if (r == M_EAGAIN) {
		log_msg(LOG_WARN, "ddos", "event=ddos_reload_queued hint=\"the collector thread puts it in"
			" force at its next turn\"");
		return;
	}
	if (r < 0) {
		buf_cstr(err);
		log_msg(LOG_ERROR, "ddos", "event=ddos_reload_failed error=\"%s\" hint=\"the running ddos"
			" configuration stays\"", err->p ? err->p : err_str(r));
		return;
	}
	log_msg(LOG_INFO, "ddos", "event=ddos_reloaded groups=%zu prefixes=%zu tiers=%zu"
		" allow_sources=%zu allow_destinations=%zu attacks_kept=%zu attacks_ended=%zu"
		" hosts_moved=%zu hosts_forgotten=%zu allow_changed=%zu mitigation_dry_run=%d"
		" hold_time=%lld", st.groups, st.prefixes, ntiers, nas, nad, st.attacks_kept,
		st.attacks_ended, st.hosts_moved, st.hosts_dropped, st.allow_changed, dry,
		(long long)s->mitigation.hold_time);
}

/* SIGHUP: re-reads the file and applies what can change while running:
 * the log level and the API tokens (the generated token and
 * MAMORI_API_TOKEN are resolved again), the detection rules, the feeds,
 * and the DDoS detection and mitigation policy (reload_ddos). A bad file
 * changes nothing. */
static void reload(const char *path, const struct settings *running, struct api *api,
		   struct detect *det, struct intel_runner *ir, struct ddos_runner *dr)
{
	const char *data_dir = running->g.data_dir;
	struct settings s;
	struct buf err, fixed;
	enum log_level lvl;

	buf_init(&err, 4096);
	if (settings_load(path, &s, &err) < 0) {
		log_msg(LOG_ERROR, "serve", "event=reload_failed error=\"%s\" hint=\"the running configuration stays\"",
			err.p ? err.p : "?");
		goto out;
	}
	buf_init(&fixed, 4096);
	if (settings_derive(&s) == 0 && settings_changed_fixed(running, &s, &fixed) == 0 &&
	    fixed.len) {
		buf_cstr(&fixed);
		log_msg(LOG_WARN, "serve", "event=reload_needs_restart settings=%s", fixed.p);
	}
	buf_fini(&fixed);
	if (log_level_parse(s.g.log_level, &lvl) == 0)
		log_set_level(lvl);
	if (api && resolve_token(data_dir, &s.api.tokens) == 0)
		api_set_tokens(api, &s.api.tokens);
	if (det) {
		buf_reset(&err);
		if (detect_reload(det, &s.detect, &err) < 0)
			log_msg(LOG_ERROR, "serve", "event=rules_reload_failed error=\"%s\" hint=\"the running rules stay\"",
				err.p ? err.p : "?");
	}
	intel_kick(ir, 0);
	reload_ddos(dr, running, &s, &err);
	log_msg(LOG_INFO, "serve", "event=reloaded file=%s", path ? path : "(defaults)");
out:
	settings_free(&s);
	buf_fini(&err);
}

int cli_serve_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = NULL;
	struct settings s;
	struct buf err;
	struct store *store = NULL;
	struct pipeline *pipe = NULL;
	struct ingest *ingest = NULL;
	struct api *api = NULL;
	struct detect *det = NULL;
	struct serve_ctx sctx = { 0 };
	struct intel_runner intel = { 0 };
	struct ddos_runner ddos = { 0 };
	struct mail_gw *mail = NULL;
	static char *default_group_by[] = { SOC_DEFAULT_GROUP_BY };
	char soc_path[4096];
	const struct store_ops *ops;
	struct store_config scfg;
	struct pipeline_config pcfg;
	enum log_level lvl;
	sigset_t sigs;
	int c, sig, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'h': serve_usage(stdout); return 0;
		default: serve_usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mamori serve: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	buf_init(&err, 4096);
	if (settings_load(path, &s, &err) < 0) {
		fprintf(stderr, "%s\n", err.p ? err.p : "configuration error");
		settings_free(&s);
		buf_fini(&err);
		return 2;
	}
	if (log_level_parse(s.g.log_level, &lvl) == 0)
		log_set_level(lvl);

	/* Block the signals we wait for before any thread starts. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* libcurl (feeds, notifications) is initialised once, before threads. */
	curl_global_init(CURL_GLOBAL_DEFAULT);

	if (mkdir_p(s.g.data_dir) < 0) {
		log_msg(LOG_ERROR, "serve", "event=data_dir_failed dir=%s err=\"%s\"", s.g.data_dir,
			strerror(errno));
		goto out;
	}
	if (s.api.listen && s.api.listen[0] && resolve_token(s.g.data_dir, &s.api.tokens) < 0)
		goto out;

	if (settings_derive(&s) < 0)
		goto out;
	buf_reset(&err);
	if (ddos_open_capture(&ddos, &s, &err) < 0) {
		buf_cstr(&err);
		fprintf(stderr, "%s: %s\n", path ? path : "(defaults)", err.p ? err.p : "capture");
		log_msg(LOG_ERROR, "ddos", "event=capture_failed error=\"%s\"", err.p ? err.p : "");
		goto out;
	}
	if ((c = privs_drop(&s)) < 0) {
		rc = c == M_EINVAL ? 2 : 1;
		goto out;
	}
	ops = store_backend(s.store.backend);
	if (!ops) {
		fprintf(stderr, "%s: store.backend: unknown back-end '%s' (known: sqlite)\n",
			path ? path : "(defaults)", s.store.backend);
		rc = 2;
		goto out;
	}
	scfg = (struct store_config){
		.backend = s.store.backend,
		.path = s.g.data_dir,
		.retention_seconds = s.store.retention,
		.retention_bytes = s.store.retention_size,
		.fts_batch = s.store.fts_batch,
	};
	if (ops->open(&scfg, &store) < 0) {
		log_msg(LOG_ERROR, "serve", "event=store_open_failed dir=%s", s.g.data_dir);
		goto out;
	}
	pcfg = (struct pipeline_config){
		.workers = (unsigned)s.g.workers,
		.in_queue_batches = (size_t)s.g.queue_batches,
		.out_queue_batches = 8,
		.keep_original = s.g.keep_original,
	};
	/* The notifier first: incidents and DDoS attacks are told through it. */
	if (s.notify.nch > 0) {
		sctx.nf = notifier_new(&s.notify);
		if (!sctx.nf || notifier_start(sctx.nf) < 0) {
			log_msg(LOG_ERROR, "serve", "event=notifier_start_failed");
			goto out;
		}
	}
	if (s.detect.enabled) {
		/* The SOC back-end before the pipeline: alerts can come as soon
		 * as it runs. */
		{
			struct soc_config sc = s.soc;

			if (!sc.path || !sc.path[0]) {
				snprintf(soc_path, sizeof(soc_path), "%s/soc.db", s.g.data_dir);
				sc.path = soc_path;
			}
			if (soc_open(&sc, on_incident, &sctx, &sctx.soc) < 0) {
				log_msg(LOG_ERROR, "serve", "event=soc_open_failed path=%s", sc.path);
				goto out;
			}
		}
		sctx.group_by = s.soc.group_by;
		if (sctx.group_by.n == 0) {
			sctx.group_by.v = default_group_by;
			sctx.group_by.n = sizeof(default_group_by) / sizeof(default_group_by[0]);
		}
		det = detect_new(&s.detect, on_alert, &sctx, &err);
		if (!det) {
			fprintf(stderr, "%s: detect: %s\n", path ? path : "(defaults)",
				err.p ? err.p : "cannot load the rules");
			rc = 2;
			goto out;
		}
	}
	pipe = pipeline_new(&pcfg, store);
	if (pipe && det && pipeline_add_stage(pipe, "detect", detect_stage, det) < 0) {
		log_msg(LOG_ERROR, "serve", "event=pipeline_stage_failed stage=detect");
		goto out;
	}
	if (!pipe || pipeline_start(pipe) < 0) {
		log_msg(LOG_ERROR, "serve", "event=pipeline_start_failed");
		goto out;
	}
	if (ingest_start(&s.ingest, pipe, &ingest) < 0)
		goto out;
	buf_reset(&err);
	if ((c = ddos_start(&ddos, &s, pipe, sctx.nf, &err)) < 0) {
		if (err.len) {
			buf_cstr(&err);
			fprintf(stderr, "%s: %s\n", path ? path : "(defaults)", err.p);
			log_msg(LOG_ERROR, "ddos", "event=start_failed error=\"%s\"", err.p);
		}
		goto out;
	}
	if (s.mail.milter && s.mail.milter[0]) {
		struct mail_gw_deps md = { 0 };

		md.pipe = pipe;
		md.det = det;
		md.data_dir = s.g.data_dir;
		md.api_listen = s.api.listen;
		buf_reset(&err);
		mail = mail_gw_new(&s.mail, &md, &err);
		if (!mail) {
			buf_cstr(&err);
			fprintf(stderr, "%s: %s\n", path ? path : "(defaults)", err.p ? err.p : "mail");
			log_msg(LOG_ERROR, "mail", "event=start_failed error=\"%s\"", err.p ? err.p : "");
			rc = err.p && strstr(err.p, "cannot listen") ? 1 : 2;
			goto out;
		}
	}
	if (s.api.listen && s.api.listen[0] && api_start(&s.api, store, &api) < 0)
		goto out;
	if (api && mail)
		api_set_mail(api, mail_gw_quarantine(mail));
	if (mail && mail_gw_start(mail) < 0) {
		log_msg(LOG_ERROR, "mail", "event=start_failed");
		goto out;
	}
	if (api && sctx.soc)
		api_set_soc(api, sctx.soc);
	if (api && ddos.col)
		api_set_ddos(api, &ddos.api);
	if (det && intel_start(&intel, &s.intel, det, &err) < 0) {
		fprintf(stderr, "%s: intel: %s\n", path ? path : "(defaults)",
			err.p ? err.p : "cannot start the feeds");
		rc = 2;
		goto out;
	}
	if (!det && s.intel.nfeeds > 0)
		log_msg(LOG_WARN, "serve", "event=intel_unused hint=\"feeds need detect.enabled: true\"");
	log_msg(LOG_INFO, "serve", "event=ready version=%s config=%s data_dir=%s api=%s ddos=%s mail=%s",
		MAMORI_VERSION, path ? path : "(defaults)", s.g.data_dir,
		s.api.listen && s.api.listen[0] ? s.api.listen : "off", ddos.col ? "on" : "off",
		mail ? s.mail.milter : "off");

	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(path, &s, api, det, &intel, &ddos);
			continue;
		}
		log_msg(LOG_INFO, "serve", "event=stopping signal=%s", sig == SIGTERM ? "TERM" : "INT");
		break;
	}
	rc = 0;
out:
	/* Order: stop intake (the DDoS collector, then the mitigation worker
	 * applies what it was asked), drain the pipeline into the store, then
	 * the API (searches may run until the end), then the store. */
	intel_stop(&intel);
	if (ingest)
		ingest_stop(ingest);
	ddos_stop(&ddos);
	/* The milter stops before the pipeline drains: its last events land. */
	mail_gw_stop(mail);
	if (pipe) {
		pipeline_drain(pipe);
		pipeline_free(pipe);
	}
	if (api)
		api_stop(api);
	ddos_free(&ddos);
	mail_gw_free(mail);
	/* No more alerts: the SOC writer drains into soc.db and tells the
	 * notifier, which then delivers what it holds. */
	soc_close(sctx.soc);
	notifier_free(sctx.nf);
	detect_free(det);
	if (store)
		store->ops->close(store);
	if (rc == 0)
		log_msg(LOG_INFO, "serve", "event=stopped");
	settings_free(&s);
	buf_fini(&err);
	metrics_fini();
	curl_global_cleanup();
	return rc;
}

int cli_check_config_main(int argc, char **argv)
{
	struct settings s;
	struct buf err, out;
	int r;

	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: mamori check-config [FILE | --defaults]\n"
		       "\n"
		       "Validates a YAML configuration without starting anything: prints\n"
		       "'FILE: ok' and exits 0, or prints 'file:line:col: message' and exits 2.\n"
		       "--defaults prints every setting with its default and meaning.\n");
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "--defaults")) {
		buf_init(&out, 0);
		r = settings_describe(&out);
		if (r == 0)
			fwrite(out.p, 1, out.len, stdout);
		buf_fini(&out);
		return r == 0 ? 0 : 1;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: mamori check-config [FILE | --defaults]\n");
		return 2;
	}
	buf_init(&err, 4096);
	r = settings_load(argv[1], &s, &err);
	if (r < 0)
		fprintf(stderr, "%s\n", err.p ? err.p : "configuration error");
	else
		printf("%s: ok\n", argv[1]);
	settings_free(&s);
	buf_fini(&err);
	return r < 0 ? 2 : 0;
}
