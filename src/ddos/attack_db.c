/*
 * The DDoS attack history in SQLite (attack_db.h). One row per attack,
 * rewritten whole at start, at every update and at the end (the detector
 * reports an attack every update_interval, so a row is written a few times
 * a minute at most); the timeline, the top talkers and the mitigation steps
 * are JSON text columns, bounded. The writer thread owns one connection,
 * the readers (API threads) share another; WAL keeps them apart.
 * synchronous=NORMAL: an attack record lost in a power cut is history, not
 * state that drives the network (mitigation.db has that).
 */
#include "ddos/attack_db.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/queue.h"
#include "ddos/mitig.h"

#define NOTE_WHAT_MAX 32
#define NOTE_DETAIL_MAX 512
#define PRUNE_EVERY_US (60 * 1000000LL)

enum { JOB_PUT, JOB_NOTE };

/* A copy of what is written: made on the poster's thread, consumed by the
 * writer, which frees it (and pts). */
struct job {
	int kind;
	char id_str[24];
	/* JOB_PUT */
	uint64_t id;
	int tkind;
	char target[64];
	char ip[FLOW_IP_STRLEN];
	uint8_t plen, proto;
	char group[64];
	char summary[192];
	char trigger[128];
	uint32_t vectors, amp;
	int64_t start, last, end;
	double peak_bps, peak_pps, peak_fps, bytes, packets;
	uint32_t hosts;
	int tier, allowlisted, ended, has_action;
	char tier_name[64];
	char action[320];
	size_t nsrc, nport;
	struct ddos_top_src src[DDOS_TOP_SRC];
	struct ddos_top_port port[DDOS_TOP_PORT];
	struct ddos_point *pts;
	size_t npts;
	uint32_t step;
	/* JOB_NOTE */
	int64_t when;
	char what[NOTE_WHAT_MAX];
	char key[MITIG_KEY_MAX];
	char detail[NOTE_DETAIL_MAX];
};

struct attack_db {
	sqlite3 *w;               /* the writer's */
	sqlite3 *r;               /* the readers' (SQLITE_OPEN_FULLMUTEX) */
	struct queue *q;
	pthread_t thread;
	int started;
	int64_t retention_s, max_rows;
	int64_t last_prune_us;
	pthread_mutex_t mu;       /* posted / done, for attack_db_flush */
	pthread_cond_t cv;
	uint64_t posted, done;
	long long log_last;
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS attack("
	" id INTEGER PRIMARY KEY, id_str TEXT NOT NULL, kind TEXT NOT NULL,"
	" target TEXT NOT NULL, ip TEXT NOT NULL, plen INTEGER NOT NULL, grp TEXT NOT NULL,"
	" summary TEXT NOT NULL, vectors TEXT NOT NULL, trig TEXT NOT NULL,"
	" proto INTEGER NOT NULL, start_s INTEGER NOT NULL, last_s INTEGER NOT NULL,"
	" end_s INTEGER NOT NULL, peak_bps REAL NOT NULL, peak_pps REAL NOT NULL,"
	" peak_fps REAL NOT NULL, bytes REAL NOT NULL, packets REAL NOT NULL,"
	" hosts INTEGER NOT NULL, tier INTEGER NOT NULL, tier_name TEXT NOT NULL,"
	" allowlisted INTEGER NOT NULL, action TEXT NOT NULL, interrupted INTEGER NOT NULL,"
	" sources TEXT NOT NULL, ports TEXT NOT NULL, step INTEGER NOT NULL,"
	" timeline TEXT NOT NULL, mitigations TEXT NOT NULL DEFAULT '[]',"
	" updated INTEGER NOT NULL);"
	"CREATE UNIQUE INDEX IF NOT EXISTS attack_idstr ON attack(id_str);"
	"CREATE INDEX IF NOT EXISTS attack_start ON attack(start_s);"
	"CREATE INDEX IF NOT EXISTS attack_target ON attack(target);"
	"CREATE INDEX IF NOT EXISTS attack_end ON attack(end_s);"
	"PRAGMA user_version=1;";

static int exec_sql(sqlite3 *db, const char *sql, const char *what)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_msg(LOG_ERROR, "ddos", "event=attack_db_error op=%s err=\"%s\"", what,
			msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return M_EIO;
	}
	return M_OK;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		log_msg(LOG_ERROR, "ddos", "event=attack_db_error op=prepare err=\"%s\"",
			sqlite3_errmsg(db));
		*st = NULL;
		return M_EIO;
	}
	return M_OK;
}

static const char *kind_name(int k)
{
	return k == DDOS_T_PREFIX ? "prefix" : k == DDOS_T_GROUP ? "group" : "host";
}

/* ---- JSON pieces ---- */

static int put_num(struct buf *b, double v)
{
	if (!isfinite(v))
		v = 0;
	return buf_printf(b, "%.0f", v);
}

static int put_str(struct buf *b, const char *s)
{
	int r = buf_putc(b, '"');

	r = r ? r : buf_json_escape(b, s ? s : "", s ? strlen(s) : 0);
	return r ? r : buf_putc(b, '"');
}

static int put_time(struct buf *b, int64_t s)
{
	time_t t = (time_t)s;
	struct tm tm;
	char out[32];

	if (s <= 0 || !gmtime_r(&t, &tm) || !strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return buf_puts(b, "null");
	return buf_printf(b, "\"%s\"", out);
}

int attack_vectors_json(const struct ddos_attack *a, struct buf *out)
{
	static const struct { uint32_t bit; const char *name; } floods[] = {
		{ DDOS_V_SYN, "SYN flood" }, { DDOS_V_ACK, "ACK flood" }, { DDOS_V_RST, "RST flood" },
		{ DDOS_V_TCP, "TCP flood" }, { DDOS_V_UDP, "UDP flood" }, { DDOS_V_ICMP, "ICMP flood" },
		{ DDOS_V_FRAG, "IP fragment flood" }, { DDOS_V_OTHER, "IP protocol flood" },
		{ DDOS_V_CARPET, "carpet bombing" },
	};
	char name[96];
	int r, n = 0;

	r = buf_putc(out, '[');
	for (int i = 0; r == 0 && i < DDOS_VEC_N; i++) {
		if (!(a->amp & (1u << i)))
			continue;
		snprintf(name, sizeof(name), "%s amplification", ddos_vectors[i].name);
		r = (n++ ? buf_putc(out, ',') : 0);
		r = r ? r : put_str(out, name);
	}
	for (size_t i = 0; r == 0 && i < sizeof(floods) / sizeof(floods[0]); i++) {
		if (!(a->vectors & floods[i].bit))
			continue;
		r = (n++ ? buf_putc(out, ',') : 0);
		r = r ? r : put_str(out, floods[i].name);
	}
	return r ? r : buf_putc(out, ']');
}

static int sources_json(const struct job *j, struct buf *b)
{
	char ip[FLOW_IP_STRLEN];
	int r = buf_putc(b, '[');

	for (size_t i = 0; r == 0 && i < j->nsrc; i++) {
		flow_ip_str(&j->src[i].ip, ip, sizeof(ip));
		r = buf_printf(b, "%s{\"ip\":\"%s\",\"bytes\":", i ? "," : "", ip);
		r = r ? r : put_num(b, j->src[i].bytes);
		r = r ? r : buf_putc(b, '}');
	}
	return r ? r : buf_putc(b, ']');
}

static int ports_json(const struct job *j, struct buf *b)
{
	int r = buf_putc(b, '[');

	for (size_t i = 0; r == 0 && i < j->nport; i++) {
		r = buf_printf(b, "%s{\"port\":%u,\"protocol\":%u,\"bytes\":", i ? "," : "",
			       j->port[i].port, j->port[i].proto);
		r = r ? r : put_num(b, j->port[i].bytes);
		r = r ? r : buf_putc(b, '}');
	}
	return r ? r : buf_putc(b, ']');
}

/* [[t,bps,pps,fps],...], at most ATTACK_DB_MAX_POINTS points: a longer
 * timeline is merged by groups, each keeping its largest second. */
static int timeline_json(const struct job *j, struct buf *b, uint32_t *step)
{
	size_t f = (j->npts + ATTACK_DB_MAX_POINTS - 1) / ATTACK_DB_MAX_POINTS;
	int r;

	if (f < 1)
		f = 1;
	*step = j->step * (uint32_t)f;
	r = buf_putc(b, '[');
	for (size_t i = 0; r == 0 && i < j->npts; i += f) {
		struct ddos_point p = j->pts[i];

		for (size_t k = i + 1; k < i + f && k < j->npts; k++) {
			p.bps = fmaxf(p.bps, j->pts[k].bps);
			p.pps = fmaxf(p.pps, j->pts[k].pps);
			p.fps = fmaxf(p.fps, j->pts[k].fps);
		}
		r = buf_printf(b, "%s[%lld,", i ? "," : "", (long long)p.t);
		r = r ? r : put_num(b, p.bps);
		r = r ? r : buf_putc(b, ',');
		r = r ? r : put_num(b, p.pps);
		r = r ? r : buf_putc(b, ',');
		r = r ? r : put_num(b, p.fps);
		r = r ? r : buf_putc(b, ']');
	}
	return r ? r : buf_putc(b, ']');
}

/* ---- the writer ---- */

static const char upsert_sql[] =
	"INSERT INTO attack(id, id_str, kind, target, ip, plen, grp, summary, vectors, trig,"
	" proto, start_s, last_s, end_s, peak_bps, peak_pps, peak_fps, bytes, packets, hosts,"
	" tier, tier_name, allowlisted, action, interrupted, sources, ports, step, timeline,"
	" updated) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,"
	"?20,?21,?22,?23,COALESCE(?24,''),0,?25,?26,?27,?28,?29)"
	" ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, target=excluded.target,"
	" ip=excluded.ip, plen=excluded.plen, grp=excluded.grp, summary=excluded.summary,"
	" vectors=excluded.vectors, trig=excluded.trig, proto=excluded.proto,"
	" start_s=excluded.start_s, last_s=excluded.last_s, end_s=excluded.end_s,"
	" peak_bps=excluded.peak_bps, peak_pps=excluded.peak_pps, peak_fps=excluded.peak_fps,"
	" bytes=excluded.bytes, packets=excluded.packets, hosts=excluded.hosts,"
	" tier=excluded.tier, tier_name=excluded.tier_name, allowlisted=excluded.allowlisted,"
	" action=CASE WHEN ?24 IS NULL THEN attack.action ELSE excluded.action END,"
	" sources=excluded.sources, ports=excluded.ports, step=excluded.step,"
	" timeline=excluded.timeline, updated=excluded.updated";

static int write_put(struct attack_db *db, const struct job *j)
{
	struct ddos_attack va = { 0 };
	struct buf vec, src, prt, tl;
	sqlite3_stmt *st = NULL;
	uint32_t step = 1;
	int rc;

	buf_init(&vec, 4096);
	buf_init(&src, 8192);
	buf_init(&prt, 8192);
	buf_init(&tl, (size_t)ATTACK_DB_MAX_POINTS * 80 + 64);
	va.vectors = j->vectors;
	va.amp = j->amp;
	rc = attack_vectors_json(&va, &vec);
	rc = rc ? rc : sources_json(j, &src);
	rc = rc ? rc : ports_json(j, &prt);
	rc = rc ? rc : timeline_json(j, &tl, &step);
	rc = rc ? rc : buf_cstr(&vec);
	rc = rc ? rc : buf_cstr(&src);
	rc = rc ? rc : buf_cstr(&prt);
	rc = rc ? rc : buf_cstr(&tl);
	if (rc || (rc = prepare(db->w, upsert_sql, &st)) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)j->id);
	sqlite3_bind_text(st, 2, j->id_str, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, kind_name(j->tkind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, j->target, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, j->ip, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, j->plen);
	sqlite3_bind_text(st, 7, j->group, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, j->summary, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, vec.p, (int)vec.len, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, j->trigger, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 11, j->proto);
	sqlite3_bind_int64(st, 12, j->start);
	sqlite3_bind_int64(st, 13, j->last);
	sqlite3_bind_int64(st, 14, j->ended ? (j->end ? j->end : j->last + 1) : 0);
	sqlite3_bind_double(st, 15, isfinite(j->peak_bps) ? j->peak_bps : 0);
	sqlite3_bind_double(st, 16, isfinite(j->peak_pps) ? j->peak_pps : 0);
	sqlite3_bind_double(st, 17, isfinite(j->peak_fps) ? j->peak_fps : 0);
	sqlite3_bind_double(st, 18, isfinite(j->bytes) ? j->bytes : 0);
	sqlite3_bind_double(st, 19, isfinite(j->packets) ? j->packets : 0);
	sqlite3_bind_int64(st, 20, j->hosts);
	sqlite3_bind_int(st, 21, j->tier);
	sqlite3_bind_text(st, 22, j->tier_name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 23, j->allowlisted);
	if (j->has_action)
		sqlite3_bind_text(st, 24, j->action, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 24);
	sqlite3_bind_text(st, 25, src.p, (int)src.len, SQLITE_STATIC);
	sqlite3_bind_text(st, 26, prt.p, (int)prt.len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 27, step);
	sqlite3_bind_text(st, 28, tl.p, (int)tl.len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 29, clock_now_us() / 1000000);
	if (sqlite3_step(st) != SQLITE_DONE) {
		log_msg(LOG_ERROR, "ddos", "event=attack_db_error op=put attack=%s err=\"%s\"",
			j->id_str, sqlite3_errmsg(db->w));
		rc = M_EIO;
	}
out:
	sqlite3_finalize(st);
	buf_fini(&vec);
	buf_fini(&src);
	buf_fini(&prt);
	buf_fini(&tl);
	return rc;
}

static int write_note(struct attack_db *db, const struct job *j)
{
	static const char sql[] =
		"UPDATE attack SET mitigations=json_insert(mitigations,'$[#]',"
		" json_object('time',?2,'what',?3,'key',?4,'detail',?5))"
		" WHERE id_str=?1 AND json_array_length(mitigations) < ?6";
	sqlite3_stmt *st = NULL;
	char when[32];
	time_t t = (time_t)j->when;
	struct tm tm;
	int rc;

	if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(when, sizeof(when), "-");
	if ((rc = prepare(db->w, sql, &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, j->id_str, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, when, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, j->what, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, j->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, j->detail, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, ATTACK_DB_MAX_STEPS);
	if (sqlite3_step(st) != SQLITE_DONE) {
		log_msg(LOG_ERROR, "ddos", "event=attack_db_error op=note attack=%s err=\"%s\"",
			j->id_str, sqlite3_errmsg(db->w));
		rc = M_EIO;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Deletes ended attacks past the retention and beyond max_rows. */
static void prune(struct attack_db *db)
{
	char sql[256];
	int64_t now = clock_now_us() / 1000000;

	if (db->retention_s > 0) {
		snprintf(sql, sizeof(sql), "DELETE FROM attack WHERE end_s > 0 AND end_s < %lld",
			 (long long)(now - db->retention_s));
		exec_sql(db->w, sql, "prune");
	}
	if (db->max_rows > 0) {
		snprintf(sql, sizeof(sql), "DELETE FROM attack WHERE id IN (SELECT id FROM attack"
			 " WHERE end_s > 0 ORDER BY id DESC LIMIT -1 OFFSET %lld)",
			 (long long)db->max_rows);
		exec_sql(db->w, sql, "prune");
	}
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->pts);
	free(j);
}

static void *writer_main(void *arg)
{
	struct attack_db *db = arg;

	for (;;) {
		void *item = NULL;
		struct job *j;
		int rc = queue_pop(db->q, &item, 1000);
		int64_t mono = clock_mono_us();

		if (rc == M_ECLOSED)
			break;
		if (rc == 0) {
			j = item;
			if (j->kind == JOB_PUT)
				write_put(db, j);
			else
				write_note(db, j);
			if (j->kind == JOB_PUT && j->ended && mono - db->last_prune_us > PRUNE_EVERY_US) {
				prune(db);
				db->last_prune_us = mono;
			}
			job_free(j);
			pthread_mutex_lock(&db->mu);
			db->done++;
			pthread_cond_broadcast(&db->cv);
			pthread_mutex_unlock(&db->mu);
		}
	}
	return NULL;
}

static int open_conn(const char *path, int flags, sqlite3 **out)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		log_msg(LOG_ERROR, "ddos", "event=attack_db_open_failed path=\"%s\" err=\"%s\"", path,
			db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return M_EIO;
	}
	sqlite3_busy_timeout(db, 10000);
	*out = db;
	return M_OK;
}

struct attack_db *attack_db_open(const char *path, int64_t retention_s, int64_t max_rows)
{
	struct attack_db *db = calloc(1, sizeof(*db));

	if (!db)
		return NULL;
	pthread_mutex_init(&db->mu, NULL);
	pthread_cond_init(&db->cv, NULL);
	db->retention_s = retention_s;
	db->max_rows = max_rows;
	if (open_conn(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
		      &db->w) < 0 ||
	    exec_sql(db->w, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "open") < 0 ||
	    exec_sql(db->w, schema, "schema") < 0 ||
	    open_conn(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, &db->r) < 0)
		goto fail;
	prune(db);
	db->q = queue_new(ATTACK_DB_QUEUE);
	if (!db->q)
		goto fail;
	if (pthread_create(&db->thread, NULL, writer_main, db) != 0) {
		log_msg(LOG_ERROR, "ddos", "event=thread_failed thread=attack_db");
		goto fail;
	}
	pthread_setname_np(db->thread, "mamori-ddosdb");
	db->started = 1;
	return db;
fail:
	attack_db_close(db);
	return NULL;
}

void attack_db_close(struct attack_db *db)
{
	void *item;

	if (!db)
		return;
	if (db->q) {
		queue_close(db->q);
		if (db->started)
			pthread_join(db->thread, NULL);
		while (queue_pop(db->q, &item, 0) == 0)
			job_free(item);
		queue_free(db->q);
	}
	sqlite3_close(db->w);
	sqlite3_close(db->r);
	pthread_mutex_destroy(&db->mu);
	pthread_cond_destroy(&db->cv);
	free(db);
}

int attack_db_next_id(struct attack_db *db, uint64_t *next)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*next = 1;
	if ((rc = prepare(db->r, "SELECT COALESCE(MAX(id),0) FROM attack", &st)) < 0)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW)
		*next = (uint64_t)sqlite3_column_int64(st, 0) + 1;
	else
		rc = M_EIO;
	sqlite3_finalize(st);
	return rc;
}

int attack_db_recover(struct attack_db *db, void (*fn)(void *arg, const char *id_str),
		      void *arg, size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t cnt = 0;
	int rc;

	if (n)
		*n = 0;
	if ((rc = prepare(db->r, "SELECT id_str FROM attack WHERE end_s = 0", &st)) < 0)
		return rc;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *id = sqlite3_column_text(st, 0);
		if (fn && id)
			fn(arg, (const char *)id);
		cnt++;
	}
	sqlite3_finalize(st);
	if (cnt && (rc = exec_sql(db->r, "UPDATE attack SET end_s = last_s + 1, interrupted = 1"
				  " WHERE end_s = 0", "recover")) < 0)
		return rc;
	if (n)
		*n = cnt;
	return M_OK;
}

static int post(struct attack_db *db, struct job *j)
{
	int rc;

	pthread_mutex_lock(&db->mu);
	db->posted++;
	pthread_mutex_unlock(&db->mu);
	rc = queue_push(db->q, j, 0);
	if (rc < 0) {
		pthread_mutex_lock(&db->mu);
		db->posted--;
		pthread_mutex_unlock(&db->mu);
		if (log_ratelimit(&db->log_last, 10 * 1000000LL))
			log_msg(LOG_WARN, "ddos", "event=attack_db_queue_full attack=%s", j->id_str);
		job_free(j);
	}
	return rc;
}

int attack_db_put(struct attack_db *db, const struct ddos_attack *a, int ended,
		  const char *action)
{
	struct job *j;

	if (!db || !a)
		return M_EINVAL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return M_ENOMEM;
	j->kind = JOB_PUT;
	j->id = a->id;
	snprintf(j->id_str, sizeof(j->id_str), "%s", a->id_str);
	j->tkind = a->kind;
	snprintf(j->target, sizeof(j->target), "%s", a->target_str);
	flow_ip_str(&a->target, j->ip, sizeof(j->ip));
	j->plen = a->plen;
	snprintf(j->group, sizeof(j->group), "%s", a->group ? a->group : "");
	snprintf(j->summary, sizeof(j->summary), "%s", a->summary);
	snprintf(j->trigger, sizeof(j->trigger), "%s", a->trigger);
	j->vectors = a->vectors;
	j->amp = a->amp;
	j->proto = a->proto;
	j->start = a->start;
	j->last = a->last;
	j->end = a->end;
	j->ended = ended;
	j->peak_bps = a->peak_bps;
	j->peak_pps = a->peak_pps;
	j->peak_fps = a->peak_fps;
	j->bytes = a->bytes;
	j->packets = a->packets;
	j->hosts = a->hosts;
	j->tier = a->tier;
	snprintf(j->tier_name, sizeof(j->tier_name), "%s", a->tier_name ? a->tier_name : "");
	j->allowlisted = a->allowlisted;
	if (action) {
		j->has_action = 1;
		snprintf(j->action, sizeof(j->action), "%s", action);
	}
	j->nsrc = a->nsrc < DDOS_TOP_SRC ? a->nsrc : DDOS_TOP_SRC;
	memcpy(j->src, a->src, j->nsrc * sizeof(j->src[0]));
	j->nport = a->nport < DDOS_TOP_PORT ? a->nport : DDOS_TOP_PORT;
	memcpy(j->port, a->port, j->nport * sizeof(j->port[0]));
	j->step = a->step ? a->step : 1;
	if (a->npoints && a->timeline) {
		j->pts = malloc(a->npoints * sizeof(*j->pts));
		if (j->pts) {
			memcpy(j->pts, a->timeline, a->npoints * sizeof(*j->pts));
			j->npts = a->npoints;
		}
	}
	return post(db, j);
}

int attack_db_note(struct attack_db *db, const char *id_str, int64_t when,
		   const char *what, const char *key, const char *detail)
{
	struct job *j;

	if (!db || !id_str || !id_str[0])
		return M_EINVAL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return M_ENOMEM;
	j->kind = JOB_NOTE;
	snprintf(j->id_str, sizeof(j->id_str), "%s", id_str);
	j->when = when;
	snprintf(j->what, sizeof(j->what), "%s", what ? what : "");
	snprintf(j->key, sizeof(j->key), "%s", key ? key : "");
	snprintf(j->detail, sizeof(j->detail), "%s", detail ? detail : "");
	return post(db, j);
}

int attack_db_flush(struct attack_db *db, int timeout_ms)
{
	struct timespec ts;
	int64_t until = clock_now_us() + (int64_t)timeout_ms * 1000;
	uint64_t want;
	int rc = M_OK;

	pthread_mutex_lock(&db->mu);
	want = db->posted;
	ts.tv_sec = (time_t)(until / 1000000);
	ts.tv_nsec = (long)(until % 1000000) * 1000;
	while (db->done < want) {
		if (pthread_cond_timedwait(&db->cv, &db->mu, &ts) != 0) {
			rc = db->done < want ? M_EAGAIN : M_OK;
			break;
		}
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

/* ---- reading ---- */

#define ROW_COLS "id, id_str, kind, target, ip, plen, grp, summary, vectors, trig, proto," \
		 " start_s, last_s, end_s, peak_bps, peak_pps, peak_fps, bytes, packets, hosts," \
		 " tier, tier_name, allowlisted, action, interrupted, sources, ports"

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? (const char *)t : "";
}

/* A JSON column written by us; "[]" when it is empty. */
static int put_raw(struct buf *b, sqlite3_stmt *st, int i)
{
	const char *s = col(st, i);

	return buf_puts(b, s[0] ? s : "[]");
}

/* The fields of one row (ROW_COLS), without the closing brace. */
static int row_json(sqlite3_stmt *st, struct buf *b)
{
	int64_t start = sqlite3_column_int64(st, 11), last = sqlite3_column_int64(st, 12);
	int64_t end = sqlite3_column_int64(st, 13);
	int r;

	r = buf_printf(b, "{\"id\":%lld,\"attack_id\":", (long long)sqlite3_column_int64(st, 0));
	r = r ? r : put_str(b, col(st, 1));
	r = r ? r : buf_puts(b, ",\"kind\":");
	r = r ? r : put_str(b, col(st, 2));
	r = r ? r : buf_puts(b, ",\"target\":");
	r = r ? r : put_str(b, col(st, 3));
	r = r ? r : buf_puts(b, ",\"ip\":");
	r = r ? r : put_str(b, col(st, 4));
	r = r ? r : buf_printf(b, ",\"prefix_length\":%d,\"group\":", sqlite3_column_int(st, 5));
	r = r ? r : put_str(b, col(st, 6));
	r = r ? r : buf_puts(b, ",\"summary\":");
	r = r ? r : put_str(b, col(st, 7));
	r = r ? r : buf_puts(b, ",\"vectors\":");
	r = r ? r : put_raw(b, st, 8);
	r = r ? r : buf_puts(b, ",\"trigger\":");
	r = r ? r : put_str(b, col(st, 9));
	r = r ? r : buf_printf(b, ",\"protocol\":%d,\"active\":%s,\"start\":",
			       sqlite3_column_int(st, 10), end == 0 ? "true" : "false");
	r = r ? r : put_time(b, start);
	r = r ? r : buf_puts(b, ",\"last\":");
	r = r ? r : put_time(b, last);
	r = r ? r : buf_puts(b, ",\"end\":");
	r = r ? r : put_time(b, end);
	r = r ? r : buf_printf(b, ",\"duration_s\":%lld,\"peak_bps\":",
			       (long long)((end ? end : last + 1) - start));
	r = r ? r : put_num(b, sqlite3_column_double(st, 14));
	r = r ? r : buf_puts(b, ",\"peak_pps\":");
	r = r ? r : put_num(b, sqlite3_column_double(st, 15));
	r = r ? r : buf_puts(b, ",\"peak_fps\":");
	r = r ? r : put_num(b, sqlite3_column_double(st, 16));
	r = r ? r : buf_puts(b, ",\"bytes\":");
	r = r ? r : put_num(b, sqlite3_column_double(st, 17));
	r = r ? r : buf_puts(b, ",\"packets\":");
	r = r ? r : put_num(b, sqlite3_column_double(st, 18));
	r = r ? r : buf_printf(b, ",\"hosts\":%lld,\"tier\":%d,\"tier_name\":",
			       (long long)sqlite3_column_int64(st, 19), sqlite3_column_int(st, 20));
	r = r ? r : put_str(b, col(st, 21));
	r = r ? r : buf_printf(b, ",\"allowlisted\":%s,\"action\":",
			       sqlite3_column_int(st, 22) ? "true" : "false");
	r = r ? r : put_str(b, col(st, 23));
	r = r ? r : buf_printf(b, ",\"interrupted\":%s,\"top_sources\":",
			       sqlite3_column_int(st, 24) ? "true" : "false");
	r = r ? r : put_raw(b, st, 25);
	r = r ? r : buf_puts(b, ",\"top_ports\":");
	r = r ? r : put_raw(b, st, 26);
	return r;
}

/* The WHERE clause of a listing, with its parameters bound from ?1. */
static void where_sql(const struct attack_query *q, char *out, size_t n)
{
	snprintf(out, n, " WHERE 1=1%s%s%s%s%s",
		 q->active > 0 ? " AND end_s = 0" : q->active < 0 ? " AND end_s > 0" : "",
		 q->from_s ? " AND (end_s = 0 OR end_s >= ?1)" : "",
		 q->to_s ? " AND start_s <= ?2" : "",
		 q->target ? " AND (target = ?3 OR ip = ?3)" : "",
		 q->group ? " AND grp = ?4" : "");
}

static void where_bind(sqlite3_stmt *st, const struct attack_query *q)
{
	if (q->from_s)
		sqlite3_bind_int64(st, 1, q->from_s);
	if (q->to_s)
		sqlite3_bind_int64(st, 2, q->to_s);
	if (q->target)
		sqlite3_bind_text(st, 3, q->target, -1, SQLITE_STATIC);
	if (q->group)
		sqlite3_bind_text(st, 4, q->group, -1, SQLITE_STATIC);
}

int attack_db_list_json(struct attack_db *db, const struct attack_query *q, struct buf *out)
{
	char where[256], sql[1024];
	sqlite3_stmt *st = NULL;
	uint32_t limit = q->limit ? q->limit : 100;
	long long total = 0;
	int rc, n = 0, s;

	where_sql(q, where, sizeof(where));
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM attack%s", where);
	if ((rc = prepare(db->r, sql, &st)) < 0)
		return rc;
	where_bind(st, q);
	if (sqlite3_step(st) == SQLITE_ROW)
		total = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	snprintf(sql, sizeof(sql), "SELECT " ROW_COLS " FROM attack%s ORDER BY start_s DESC, id DESC"
		 " LIMIT %u OFFSET %llu", where, limit, (unsigned long long)q->offset);
	if ((rc = prepare(db->r, sql, &st)) < 0)
		return rc;
	where_bind(st, q);
	rc = buf_printf(out, "{\"total\":%lld,\"limit\":%u,\"offset\":%llu,\"attacks\":[", total,
			limit, (unsigned long long)q->offset);
	while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
		rc = n++ ? buf_putc(out, ',') : 0;
		rc = rc ? rc : row_json(st, out);
		rc = rc ? rc : buf_putc(out, '}');
	}
	if (rc == 0 && s != SQLITE_DONE) {
		log_msg(LOG_ERROR, "ddos", "event=attack_db_error op=list err=\"%s\"",
			sqlite3_errmsg(db->r));
		rc = M_EIO;
	}
	sqlite3_finalize(st);
	return rc ? rc : buf_puts(out, "]}\n");
}

int attack_db_get_json(struct attack_db *db, uint64_t id, struct buf *out)
{
	sqlite3_stmt *st = NULL;
	int rc, s;

	if ((rc = prepare(db->r, "SELECT " ROW_COLS ", step, timeline, mitigations FROM attack"
			  " WHERE id = ?1", &st)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		rc = row_json(st, out);
		rc = rc ? rc : buf_printf(out, ",\"timeline\":{\"step\":%d,"
					  "\"fields\":[\"t\",\"bps\",\"pps\",\"fps\"],\"points\":",
					  sqlite3_column_int(st, 27));
		rc = rc ? rc : put_raw(out, st, 28);
		rc = rc ? rc : buf_puts(out, "},\"mitigations\":");
		rc = rc ? rc : put_raw(out, st, 29);
		rc = rc ? rc : buf_puts(out, "}\n");
	} else if (s == SQLITE_DONE) {
		rc = M_ENOTFOUND;
	} else {
		log_msg(LOG_ERROR, "ddos", "event=attack_db_error op=get err=\"%s\"",
			sqlite3_errmsg(db->r));
		rc = M_EIO;
	}
	sqlite3_finalize(st);
	return rc;
}
