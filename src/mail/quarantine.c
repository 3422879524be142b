/*
 * The quarantine store (quarantine.h): message files, the SQLite index and
 * its history, expiry, and the tokens of the hold links.
 *
 * Why the order of a put is file first, row second: a row is a promise that
 * the message can be released, so it is written only once the file is
 * durable (temporary name, fsync, rename, fsync of the directory). A crash
 * between the two leaves a stray file that no row names, which costs disk
 * but loses nothing the MTA was told was kept (the milter answers only after
 * quarantine_put returned). Temporary files left by a crash are removed at
 * open.
 *
 * One mutex guards the SQLite connection and the busy list; nothing slow
 * (SMTP, reading a message file) runs under it. An entry being re-injected
 * is on the busy list, so a second release, a delete or the expiry of it
 * waits its turn instead of racing the first.
 */
#include "mail/quarantine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sqlite3.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "mail/msg.h"
#include "mail/quarantine_int.h"

#define MAX_FILE ((size_t)MSG_MAX_HEADER_BYTES + MSG_MAX_BODY_BYTES + 4096)
#define EXPIRE_BATCH 256            /* entries one expiry pass looks at */
/* Index rows of entries no longer held (released, deleted, expired, sent:
 * their files are gone) are kept this long for the API's history, then
 * purged, so the index does not grow for ever. */
#define QUARANTINE_KEEP_DONE (90 * 86400)
#define MAX_HDR_TEXT 998            /* From, Subject, Message-ID kept */
#define MAX_ACTOR 128
#define KEY_BYTES 32
#define RELEASED_HDR "X-Mamori-Released: "

static const char *const state_names[QUARANTINE_STATE_COUNT] = {
	"held", "released", "deleted", "expired", "sent",
};


/* ---- small helpers ---- */

const char *quarantine_state_name(enum quarantine_state s)
{
	return (unsigned)s < QUARANTINE_STATE_COUNT ? state_names[s] : "unknown";
}

int quarantine_state_parse(const char *s, size_t n, enum quarantine_state *out)
{
	for (int i = 0; i < QUARANTINE_STATE_COUNT; i++)
		if (strlen(state_names[i]) == n && memcmp(s, state_names[i], n) == 0) {
			*out = (enum quarantine_state)i;
			return 0;
		}
	return M_EINVAL;
}

const char *quarantine_action_name(enum quarantine_action a)
{
	return a == QUARANTINE_ACT_CANCEL ? "cancel" : "send-now";
}

int quarantine_id_ok(const char *s, size_t n)
{
	if (s == NULL || n != QUARANTINE_ID_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static void hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int unhex(const char *s, size_t n, unsigned char *out)
{
	for (size_t i = 0; i < n / 2; i++) {
		int v = 0;
		for (int k = 0; k < 2; k++) {
			char c = s[2 * i + (size_t)k];
			int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
				c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
			if (d < 0)
				return M_EPARSE;
			v = v * 16 + d;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

static int random_bytes(unsigned char *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = getrandom(p + got, n - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return M_EIO;
		got += (size_t)r;
	}
	return 0;
}

static void fmt_err(char *err, size_t errlen, const char *what, int e)
{
	if (err && errlen)
		snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", e ? strerror(e) : "");
}

void quarantine_meta_fini(struct quarantine_meta *m)
{
	if (m == NULL)
		return;
	free(m->sender);
	for (size_t i = 0; i < m->nrcpt; i++)
		free(m->rcpt[i]);
	free(m->rcpt);
	free(m->from);
	free(m->subject);
	free(m->message_id);
	free(m->reasons);
	memset(m, 0, sizeof(*m));
}

/* ---- the busy list (callers hold q->mu) ---- */

static int busy_find(struct quarantine *q, const char *id)
{
	for (int i = 0; i < QUARANTINE_MAX_BUSY; i++)
		if (q->busy[i][0] && strcmp(q->busy[i], id) == 0)
			return i;
	return -1;
}

static int busy_add(struct quarantine *q, const char *id)
{
	for (int i = 0; i < QUARANTINE_MAX_BUSY; i++)
		if (!q->busy[i][0]) {
			memcpy(q->busy[i], id, QUARANTINE_ID_LEN + 1);
			return 0;
		}
	return M_EAGAIN;
}

static void busy_del(struct quarantine *q, const char *id)
{
	int i = busy_find(q, id);

	if (i >= 0)
		q->busy[i][0] = '\0';
}

/* ---- SQLite ---- */

static const char schema_sql[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=FULL;"
	"CREATE TABLE IF NOT EXISTS quarantine("
	" id TEXT PRIMARY KEY, received INTEGER NOT NULL, sender TEXT NOT NULL,"
	" rcpt TEXT NOT NULL, hfrom TEXT NOT NULL, subject TEXT NOT NULL,"
	" message_id TEXT NOT NULL, size INTEGER NOT NULL, direction TEXT NOT NULL,"
	" reasons TEXT NOT NULL, score REAL NOT NULL, state TEXT NOT NULL,"
	" expires_at INTEGER NOT NULL, expiry_action TEXT NOT NULL, sha256 TEXT NOT NULL,"
	" updated INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS quarantine_by_state ON quarantine(state, expires_at);"
	"CREATE INDEX IF NOT EXISTS quarantine_by_received ON quarantine(received);"
	"CREATE TABLE IF NOT EXISTS quarantine_history("
	" id TEXT NOT NULL, at INTEGER NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL,"
	" detail TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS quarantine_history_by_id ON quarantine_history(id, at);";


int quarantine_db_fail(struct quarantine *q, const char *what)
{
	log_msg(LOG_ERROR, "quarantine", "event=db_error op=%s error=\"%s\"", what,
		sqlite3_errmsg(q->db));
	return M_EIO;
}

static int exec_sql(struct quarantine *q, const char *sql, const char *what)
{
	return sqlite3_exec(q->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : quarantine_db_fail(q, what);
}

sqlite3_stmt *quarantine_db_prepare(struct quarantine *q, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
		quarantine_db_fail(q, "prepare");
		return NULL;
	}
	return st;
}

void quarantine_db_bind(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

const char *quarantine_db_col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? (const char *)t : "";
}

/* A history row; q->mu held. */
static int history_add(struct quarantine *q, const char *id, int64_t at, const char *action,
		       const char *actor, const char *detail)
{
	sqlite3_stmt *st = quarantine_db_prepare(q,
		"INSERT INTO quarantine_history(id, at, action, actor, detail)"
		" VALUES(?1, ?2, ?3, ?4, ?5)");
	int rc;

	char *who = quarantine_clean_text(actor && actor[0] ? actor : "unknown",
					  actor && actor[0] ? strlen(actor) : 7, MAX_ACTOR);

	if (!st || !who) {
		sqlite3_finalize(st);
		free(who);
		return st ? M_ENOMEM : M_EIO;
	}
	quarantine_db_bind(st, 1, id);
	sqlite3_bind_int64(st, 2, at);
	quarantine_db_bind(st, 3, action);
	quarantine_db_bind(st, 4, who);
	quarantine_db_bind(st, 5, detail ? detail : "");
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : quarantine_db_fail(q, "history");
	sqlite3_finalize(st);
	free(who);
	return rc;
}

/* Moves a held entry to state; 1 when it was held and moved, 0 when it was
 * not held, or an error. q->mu held; transition() is what callers use. */
static int set_state(struct quarantine *q, const char *id, enum quarantine_state s, int64_t now)
{
	sqlite3_stmt *st = quarantine_db_prepare(q,
		"UPDATE quarantine SET state = ?2, updated = ?3 WHERE id = ?1 AND state = 'held'");
	int rc;

	if (!st)
		return M_EIO;
	quarantine_db_bind(st, 1, id);
	quarantine_db_bind(st, 2, quarantine_state_name(s));
	sqlite3_bind_int64(st, 3, now);
	rc = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(q->db) > 0 : quarantine_db_fail(q, "state");
	sqlite3_finalize(st);
	return rc;
}

/* The state change and its history row, both or neither: 1 when the entry
 * was held and moved, 0 when it was not held, or an error. q->mu held. */
static int transition(struct quarantine *q, const char *id, enum quarantine_state s,
		      const char *by, const char *detail)
{
	int64_t now = time(NULL);
	int rc;

	if (exec_sql(q, "BEGIN IMMEDIATE", "begin") != 0)
		return M_EIO;
	rc = set_state(q, id, s, now);
	if (rc == 1 && history_add(q, id, now, quarantine_state_name(s), by, detail) != 0)
		rc = M_EIO;
	if (rc == 1 && exec_sql(q, "COMMIT", "commit") != 0)
		rc = M_EIO;
	if (rc != 1)
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* A failed release: the history gets one row per run of failures by the
 * same actor (the expiry retries every pass), the latest reason in it.
 * q->mu held. */
static void note_failure(struct quarantine *q, const char *id, const char *by,
			 const char *detail)
{
	sqlite3_stmt *st = quarantine_db_prepare(q,
		"UPDATE quarantine_history SET at = ?2, detail = ?3 WHERE rowid ="
		" (SELECT max(rowid) FROM quarantine_history WHERE id = ?1)"
		" AND action = 'release-failed' AND actor = ?4");
	int64_t now = time(NULL);
	int changed = 0;

	if (st) {
		quarantine_db_bind(st, 1, id);
		sqlite3_bind_int64(st, 2, now);
		quarantine_db_bind(st, 3, detail);
		quarantine_db_bind(st, 4, by ? by : "");
		changed = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(q->db) > 0;
		sqlite3_finalize(st);
	}
	if (!changed)
		history_add(q, id, now, "release-failed", by, detail);
}

/* ---- files ---- */

static void file_name(const char *id, char *out, size_t n)
{
	snprintf(out, n, "%s.eml", id);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return M_EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* tmp, fsync, rename, fsync the directory: after this the file survives a
 * crash under its final name, or does not exist. */
static int file_write(struct quarantine *q, const char *id, const char *data, size_t len)
{
	char tmp[QUARANTINE_ID_LEN + 16], fin[QUARANTINE_ID_LEN + 8];
	int fd, e = 0;

	snprintf(tmp, sizeof(tmp), ".%s.tmp", id);
	file_name(id, fin, sizeof(fin));
	fd = openat(q->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		e = errno;
		goto fail;
	}
	if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		e = errno;
		close(fd);
		goto fail;
	}
	if (close(fd) != 0 || renameat(q->dirfd, tmp, q->dirfd, fin) != 0) {
		e = errno;
		goto fail;
	}
	if (fsync(q->dirfd) != 0) {
		e = errno;
		unlinkat(q->dirfd, fin, 0);
		goto fail_logged;
	}
	return 0;
fail:
	unlinkat(q->dirfd, tmp, 0);
fail_logged:
	log_msg(LOG_ERROR, "quarantine", "event=write_failed id=%s error=\"%s\"", id, strerror(e));
	return M_EIO;
}

/* The stored message, checked against its sha256. M_ENOTFOUND when the
 * file is gone. Owner of *out: the caller. */
int quarantine_file_read(struct quarantine *q, const char *id, const char *sha, char **out,
		     size_t *len)
{
	unsigned char md[32];
	char name[QUARANTINE_ID_LEN + 8], got[65];
	struct stat sb;
	char *p = NULL;
	size_t off = 0;
	int fd, rc = M_EIO;

	*out = NULL;
	*len = 0;
	file_name(id, name, sizeof(name));
	fd = openat(q->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? M_ENOTFOUND : M_EIO;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (size_t)sb.st_size > MAX_FILE)
		goto out;
	p = malloc((size_t)sb.st_size + 1);
	if (!p) {
		rc = M_ENOMEM;
		goto out;
	}
	while (off < (size_t)sb.st_size) {
		ssize_t r = read(fd, p + off, (size_t)sb.st_size - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto out;
		off += (size_t)r;
	}
	p[off] = '\0';
	if (!EVP_Digest(p, off, md, NULL, EVP_sha256(), NULL))
		goto out;
	hex(md, sizeof(md), got);
	if (strcmp(got, sha) != 0) {
		log_msg(LOG_ERROR, "quarantine", "event=file_damaged id=%s", id);
		goto out;
	}
	*out = p;
	*len = off;
	p = NULL;
	rc = 0;
out:
	free(p);
	close(fd);
	return rc;
}

static void file_remove(struct quarantine *q, const char *id)
{
	char name[QUARANTINE_ID_LEN + 8];

	file_name(id, name, sizeof(name));
	if (unlinkat(q->dirfd, name, 0) != 0 && errno != ENOENT)
		log_msg(LOG_WARN, "quarantine", "event=unlink_failed id=%s error=\"%s\"", id,
			strerror(errno));
}

/* At open: temporary files a crash left behind are removed; message files
 * that no row names are counted and reported, not removed (a crash between
 * the rename and the commit leaves one, which the MTA will have sent again;
 * but so would a lost index, and then they are all that is left). */
static void sweep(struct quarantine *q)
{
	int fd = dup(q->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	sqlite3_stmt *st = quarantine_db_prepare(q, "SELECT 1 FROM quarantine WHERE id = ?1");
	struct dirent *e;
	size_t orphans = 0;

	if (!d || !st) {
		if (!d && fd >= 0)
			close(fd);
		if (d)
			closedir(d);
		sqlite3_finalize(st);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (e->d_name[0] == '.' && n > 4 && strcmp(e->d_name + n - 4, ".tmp") == 0) {
			unlinkat(q->dirfd, e->d_name, 0);
		} else if (n == QUARANTINE_ID_LEN + 4 &&
			   strcmp(e->d_name + QUARANTINE_ID_LEN, ".eml") == 0) {
			sqlite3_reset(st);
			sqlite3_bind_text(st, 1, e->d_name, QUARANTINE_ID_LEN, SQLITE_TRANSIENT);
			if (sqlite3_step(st) == SQLITE_DONE)
				orphans++;
		}
	}
	closedir(d);
	sqlite3_finalize(st);
	if (orphans)
		log_msg(LOG_WARN, "quarantine", "event=unindexed_files count=%zu hint=\"message files"
			" no index row names (a crash while storing, or a lost index); kept\"", orphans);
}

/* ---- the key of the hold links ---- */

/* Loads <dir>.key, or makes it (32 random bytes as hex,
 * mode 0600, written aside and renamed). q->mu held. */
static int key_ready(struct quarantine *q)
{
	unsigned char k[KEY_BYTES];
	char text[2 * KEY_BYTES + 2], tmp[PATH_MAX + 8];
	ssize_t n;
	int fd;

	if (q->key)
		return 0;
	fd = open(q->keypath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		n = read(fd, text, sizeof(text));
		close(fd);
		if (n < 2 * KEY_BYTES || unhex(text, 2 * KEY_BYTES, k) != 0) {
			log_msg(LOG_ERROR, "quarantine",
				"event=bad_key path=%s hint=\"remove it to make a new one"
				" (links sent so far stop working)\"", q->keypath);
			return M_EINVAL;
		}
	} else {
		if (errno != ENOENT || random_bytes(k, sizeof(k)) != 0)
			return M_EIO;
		hex(k, sizeof(k), text);
		text[2 * KEY_BYTES] = '\n';
		snprintf(tmp, sizeof(tmp), "%s.tmp", q->keypath);
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0 || write_all(fd, text, 2 * KEY_BYTES + 1) != 0 || fsync(fd) != 0 ||
		    close(fd) != 0 || rename(tmp, q->keypath) != 0) {
			log_msg(LOG_ERROR, "quarantine", "event=key_write_failed path=%s error=\"%s\"",
				q->keypath, strerror(errno));
			if (fd >= 0)
				unlink(tmp);
			return M_EIO;
		}
		log_msg(LOG_INFO, "quarantine", "event=key_created path=%s", q->keypath);
	}
	q->key = malloc(KEY_BYTES);
	if (!q->key)
		return M_ENOMEM;
	memcpy(q->key, k, KEY_BYTES);
	q->keylen = KEY_BYTES;
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(text, sizeof(text));
	return 0;
}

/* HMAC-SHA256(key, "id|action|expires_at") as hex. q->mu held. */
static int token_compute(struct quarantine *q, const char *id, enum quarantine_action act,
			 int64_t expires_at, char out[QUARANTINE_TOKEN_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char data[128];
	int n, rc;

	if ((rc = key_ready(q)) != 0)
		return rc;
	n = snprintf(data, sizeof(data), "%s|%s|%" PRId64, id, quarantine_action_name(act),
		     expires_at);
	if (!HMAC(EVP_sha256(), q->key, (int)q->keylen, (const unsigned char *)data, (size_t)n,
		  md, &mdlen) || mdlen != 32)
		return M_EIO;
	hex(md, 32, out);
	return 0;
}

/* ---- open, configure, close ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

/* libcurl's global state, set up once before any thread uses it. */
static void curl_init(void)
{
	quarantine_curl_global_init();
}

struct quarantine *quarantine_open(const char *dir, const char *db_path, char *err,
				   size_t errlen)
{
	struct quarantine *q;
	char path[PATH_MAX];
	size_t n = dir ? strlen(dir) : 0;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 0 || n > PATH_MAX - 16) {
		fmt_err(err, errlen, "quarantine: no directory, or a path too long", 0);
		return NULL;
	}
	pthread_once(&curl_once, curl_init);
	q = calloc(1, sizeof(*q));
	if (!q) {
		fmt_err(err, errlen, "quarantine: out of memory", 0);
		return NULL;
	}
	pthread_mutex_init(&q->mu, NULL);
	pthread_mutex_init(&q->tmu, NULL);
	pthread_cond_init(&q->tcv, NULL);
	q->dirfd = -1;
	q->timeout = 60;
	q->retention = 30 * 86400;
	q->hold = 15 * 60;
	q->hold_expiry = QUARANTINE_EXPIRE_SEND;
	q->reinject = strdup("127.0.0.1:10025");
	q->notice_from = strdup("postmaster@localhost");
	if (!q->reinject || !q->notice_from) {
		fmt_err(err, errlen, "quarantine: out of memory", 0);
		goto fail;
	}
	snprintf(q->keypath, sizeof(q->keypath), "%.*s.key", (int)n, dir);
	snprintf(path, sizeof(path), "%.*s", (int)n, dir);
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		fmt_err(err, errlen, "quarantine: cannot create the message directory", errno);
		goto fail;
	}
	q->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->dirfd < 0) {
		fmt_err(err, errlen, "quarantine: cannot open the message directory", errno);
		goto fail;
	}
	if (!db_path || !db_path[0]) {
		snprintf(path, sizeof(path), "%.*s.db", (int)n, dir);
		db_path = path;
	}
	if (sqlite3_open_v2(db_path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		fmt_err(err, errlen, "quarantine: cannot open the index", 0);
		goto fail;
	}
	sqlite3_busy_timeout(q->db, 10000);
	if (exec_sql(q, schema_sql, "schema") != 0) {
		fmt_err(err, errlen, "quarantine: cannot create the index tables", 0);
		goto fail;
	}
	sweep(q);
	return q;
fail:
	quarantine_close(q);
	return NULL;
}

int quarantine_configure(struct quarantine *q, const struct quarantine_config *cfg)
{
	char host[256];
	char *re = NULL, *nf = NULL;
	unsigned char *key = NULL;
	size_t klen = 0;
	int port;

	if (cfg->reinject && cfg->reinject[0] &&
	    (conf_split_addr(cfg->reinject, host, sizeof(host), &port) != 0 || port <= 0 ||
	     port > 65535 || !host[0]))
		return M_EINVAL;
	if (cfg->notice_from && !quarantine_text_ok(cfg->notice_from, strlen(cfg->notice_from)))
		return M_EINVAL;
	if (cfg->key && cfg->key[0]) {
		klen = strlen(cfg->key);
		if (klen < 16)
			return M_EINVAL;
		key = malloc(klen);
		if (!key)
			return M_ENOMEM;
		memcpy(key, cfg->key, klen);
	}
	re = cfg->reinject ? strdup(cfg->reinject) : NULL;
	nf = cfg->notice_from && cfg->notice_from[0] ? strdup(cfg->notice_from) : NULL;
	if ((cfg->reinject && !re) || (cfg->notice_from && cfg->notice_from[0] && !nf)) {
		free(re);
		free(nf);
		free(key);
		return M_ENOMEM;
	}
	pthread_mutex_lock(&q->mu);
	if (re) {
		free(q->reinject);
		q->reinject = re;
	}
	if (nf) {
		free(q->notice_from);
		q->notice_from = nf;
	}
	if (cfg->timeout > 0)
		q->timeout = cfg->timeout;
	if (cfg->retention > 0)
		q->retention = cfg->retention;
	if (cfg->hold > 0)
		q->hold = cfg->hold;
	q->hold_expiry = cfg->hold_expiry == QUARANTINE_EXPIRE_DELETE + 1 ? QUARANTINE_EXPIRE_DELETE
									    : QUARANTINE_EXPIRE_SEND;
	if (key) {
		if (q->key)
			OPENSSL_cleanse(q->key, q->keylen);
		free(q->key);
		q->key = key;
		q->keylen = klen;
	}
	pthread_mutex_unlock(&q->mu);
	return 0;
}

char *quarantine_notice_from(struct quarantine *q)
{
	char *s;

	pthread_mutex_lock(&q->mu);
	s = strdup(q->notice_from);
	pthread_mutex_unlock(&q->mu);
	return s;
}

void quarantine_close(struct quarantine *q)
{
	if (q == NULL)
		return;
	if (q->thr_on) {
		pthread_mutex_lock(&q->tmu);
		q->stopping = 1;
		pthread_cond_signal(&q->tcv);
		pthread_mutex_unlock(&q->tmu);
		pthread_join(q->thr, NULL);
	}
	if (q->db)
		sqlite3_close(q->db);
	if (q->dirfd >= 0)
		close(q->dirfd);
	if (q->key)
		OPENSSL_cleanse(q->key, q->keylen);
	free(q->key);
	free(q->reinject);
	free(q->notice_from);
	pthread_cond_destroy(&q->tcv);
	pthread_mutex_destroy(&q->tmu);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

/* ---- put ---- */

/* An envelope address: printable, valid UTF-8, no angle brackets (they
 * would end the address in MAIL FROM / RCPT TO), bounded. */
static int addr_ok(const char *a, int may_be_empty)
{
	size_t n;

	if (a == NULL)
		return may_be_empty;
	n = strnlen(a, QUARANTINE_MAX_ADDR + 1);
	if (n > QUARANTINE_MAX_ADDR || (n == 0 && !may_be_empty))
		return 0;
	if (memchr(a, '<', n) || memchr(a, '>', n))
		return 0;
	return quarantine_text_ok(a, n);
}

/* given (what the caller decoded, e.g. an RFC 2047 subject) cleaned, else
 * the unfolded, cleaned value of the first header named name; "" when
 * there is none. NULL on no memory. */
static char *header_text(const struct msg *m, const char *name, const char *given)
{
	long i = msg_find(m, name, 0);
	char *v, *c;

	if (given)
		return quarantine_clean_text(given, strlen(given), MAX_HDR_TEXT);
	if (i < 0)
		return strdup("");
	v = msg_hdr_unfolded(m, (size_t)i);
	if (!v)
		return NULL;
	c = quarantine_clean_text(v, strlen(v), MAX_HDR_TEXT);
	free(v);
	return c;
}

static char *rcpt_json(const struct quarantine_meta *meta)
{
	json_t *a = json_array();
	char *s;

	if (!a)
		return NULL;
	for (size_t i = 0; i < meta->nrcpt; i++)
		if (json_array_append_new(a, json_string(meta->rcpt[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

/* The reasons as compact JSON: NULL → [], anything else must parse. */
static int reasons_json(const char *in, char **out)
{
	json_t *j;

	*out = NULL;
	if (!in || !in[0]) {
		*out = strdup("[]");
		return *out ? 0 : M_ENOMEM;
	}
	if (strlen(in) > QUARANTINE_MAX_REASONS)
		return M_EINVAL;
	j = json_loads(in, JSON_REJECT_DUPLICATES, NULL);
	if (!j || !(json_is_array(j) || json_is_object(j))) {
		json_decref(j);
		return M_EINVAL;
	}
	*out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return *out ? 0 : M_ENOMEM;
}

static int put(struct quarantine *q, const struct msg *m, const struct quarantine_meta *meta,
	       int64_t hold, char id_out[QUARANTINE_ID_LEN + 1])
{
	unsigned char rnd[16], md[32];
	char id[QUARANTINE_ID_LEN + 1], sha[65];
	char *raw = NULL, *rcpt = NULL, *reasons = NULL, *hfrom = NULL, *subj = NULL, *mid = NULL;
	enum quarantine_direction dir = meta->direction;
	enum quarantine_expiry act = meta->expiry_action;
	sqlite3_stmt *st = NULL;
	int64_t now = time(NULL), exp;
	size_t len = 0;
	int rc = M_EINVAL;

	id_out[0] = '\0';
	if (!addr_ok(meta->sender, 1) || meta->nrcpt == 0 || meta->nrcpt > QUARANTINE_MAX_RCPT ||
	    !meta->rcpt || (dir != QUARANTINE_INBOUND && dir != QUARANTINE_OUTBOUND))
		return M_EINVAL;
	for (size_t i = 0; i < meta->nrcpt; i++)
		if (!addr_ok(meta->rcpt[i], 0))
			return M_EINVAL;
	if ((rc = reasons_json(meta->reasons, &reasons)) != 0)
		return rc;
	rc = M_ENOMEM;
	raw = msg_render(m, &len);
	rcpt = rcpt_json(meta);
	hfrom = header_text(m, "From", meta->from);
	subj = header_text(m, "Subject", meta->subject);
	mid = header_text(m, "Message-ID", meta->message_id);
	if (!raw || !rcpt || !hfrom || !subj || !mid)
		goto out;
	rc = M_EIO;
	if (random_bytes(rnd, sizeof(rnd)) != 0 || !EVP_Digest(raw, len, md, NULL, EVP_sha256(), NULL))
		goto out;
	hex(rnd, sizeof(rnd), id);
	hex(md, sizeof(md), sha);
	if (file_write(q, id, raw, len) != 0)
		goto out;

	pthread_mutex_lock(&q->mu);
	if (hold >= 0) {
		exp = now + hold;
		act = q->hold_expiry;
		dir = QUARANTINE_OUTBOUND;
	} else {
		exp = meta->expires_at > 0 ? meta->expires_at : now + q->retention;
	}
	if (exec_sql(q, "BEGIN IMMEDIATE", "begin") != 0)
		goto unlock;
	st = quarantine_db_prepare(q, "INSERT INTO quarantine(" QUARANTINE_COLS ", updated)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'held', ?12, ?13, ?14, ?2)");
	if (!st)
		goto rollback;
	quarantine_db_bind(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	quarantine_db_bind(st, 3, meta->sender ? meta->sender : "");
	quarantine_db_bind(st, 4, rcpt);
	quarantine_db_bind(st, 5, hfrom);
	quarantine_db_bind(st, 6, subj);
	quarantine_db_bind(st, 7, mid);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)len);
	quarantine_db_bind(st, 9, dir == QUARANTINE_OUTBOUND ? "outbound" : "inbound");
	quarantine_db_bind(st, 10, reasons);
	sqlite3_bind_double(st, 11, isfinite(meta->score) ? meta->score : 0);
	sqlite3_bind_int64(st, 12, exp);
	quarantine_db_bind(st, 13, act == QUARANTINE_EXPIRE_SEND ? "send" : "delete");
	quarantine_db_bind(st, 14, sha);
	if (sqlite3_step(st) != SQLITE_DONE) {
		quarantine_db_fail(q, "insert");
		goto rollback;
	}
	if (history_add(q, id, now, "held", dir == QUARANTINE_OUTBOUND ? "outbound hold" : "policy",
			reasons) != 0 ||
	    exec_sql(q, "COMMIT", "commit") != 0)
		goto rollback;
	rc = 0;
	goto unlock;
rollback:
	sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
unlock:
	pthread_mutex_unlock(&q->mu);
	if (rc == 0)
		memcpy(id_out, id, sizeof(id));
	else
		file_remove(q, id);
out:
	sqlite3_finalize(st);
	free(raw);
	free(rcpt);
	free(reasons);
	free(hfrom);
	free(subj);
	free(mid);
	return rc;
}

int quarantine_put(struct quarantine *q, const struct msg *m, const struct quarantine_meta *meta,
		   char id_out[QUARANTINE_ID_LEN + 1])
{
	return put(q, m, meta, -1, id_out);
}

int quarantine_hold_outbound(struct quarantine *q, const struct msg *m,
			     const struct quarantine_meta *meta, int hold_minutes,
			     char id_out[QUARANTINE_ID_LEN + 1])
{
	int64_t hold;

	if (hold_minutes > 7 * 24 * 60)
		return M_EINVAL;
	pthread_mutex_lock(&q->mu);
	hold = hold_minutes >= 0 ? (int64_t)hold_minutes * 60 : q->hold;
	pthread_mutex_unlock(&q->mu);
	return put(q, m, meta, hold, id_out);
}

/* ---- state changes ---- */

/* Re-injects id and moves it to final. */
static int deliver(struct quarantine *q, const char *id, const char *by,
		   enum quarantine_state final, struct quarantine_result *res)
{
	struct quarantine_result local;
	struct quarantine_meta m;
	char *raw = NULL, *data = NULL, *addr = NULL, detail[1200];
	size_t len = 0, hl = 0;
	int64_t timeout;
	int rc;

	if (!res)
		res = &local;
	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&q->mu);
	rc = quarantine_meta_load(q, id, &m);
	if (rc == 0 && m.state != QUARANTINE_HELD) {
		snprintf(res->detail, sizeof(res->detail), "the message is %s, not held",
			 quarantine_state_name(m.state));
		rc = M_EINVAL;
	} else if (rc == 0 && busy_find(q, id) >= 0) {
		snprintf(res->detail, sizeof(res->detail), "a release of it is under way");
		rc = M_EAGAIN;
	} else if (rc == 0 && !q->reinject[0]) {
		snprintf(res->detail, sizeof(res->detail), "no re-injection address is configured");
		rc = M_EUNSUPP;
	} else if (rc == 0 && (rc = busy_add(q, id)) != 0) {
		snprintf(res->detail, sizeof(res->detail), "too many releases under way; try again");
	} else if (rc == 0 && !(addr = strdup(q->reinject))) {
		busy_del(q, id);
		rc = M_ENOMEM;
	}
	timeout = q->timeout;
	pthread_mutex_unlock(&q->mu);
	if (rc != 0) {
		if (rc == M_ENOTFOUND)
			snprintf(res->detail, sizeof(res->detail), "no such message");
		quarantine_meta_fini(&m);
		return rc;
	}

	/* An inbound message released gets our trace header on top; mail
	 * that leaves for the outside world does not carry our ids. */
	if (m.direction == QUARANTINE_INBOUND)
		hl = strlen(RELEASED_HDR) + QUARANTINE_ID_LEN + 2;
	rc = quarantine_file_read(q, id, m.sha256, &raw, &len);
	if (rc == 0 && !(data = malloc(hl + len + 1)))
		rc = M_ENOMEM;
	if (rc == 0) {
		if (hl)
			snprintf(data, hl + 1, RELEASED_HDR "%s\r\n", id);
		memcpy(data + hl, raw, len);
		rc = quarantine_smtp_send(addr, timeout, m.sender, m.rcpt, m.nrcpt, data, hl + len,
					  res);
	} else {
		snprintf(res->detail, sizeof(res->detail), "%s", rc == M_ENOMEM ? "out of memory" :
			 "the stored message is missing or damaged");
		rc = rc == M_ENOMEM ? rc : M_EIO;
	}

	pthread_mutex_lock(&q->mu);
	busy_del(q, id);
	if (rc == 0) {
		snprintf(detail, sizeof(detail), "%u recipient(s) accepted%s%s", res->accepted,
			 res->refused ? ", refused: " : "", res->refused ? res->detail : "");
		if (transition(q, id, final, by, detail) != 1)
			/* Delivered, but the index still says held: it could go
			 * twice. Said loudly, once, here. */
			log_msg(LOG_ERROR, "quarantine", "event=state_not_saved id=%s state=%s",
				id, quarantine_state_name(final));
	} else {
		note_failure(q, id, by, res->detail);
	}
	pthread_mutex_unlock(&q->mu);
	if (rc == 0)
		file_remove(q, id);
	else if (log_ratelimit(&q->fail_log_last, 60 * 1000000LL))
		log_msg(LOG_WARN, "quarantine", "event=release_failed id=%s err=%s", id,
			err_str(rc));
	free(raw);
	free(data);
	free(addr);
	quarantine_meta_fini(&m);
	return rc;
}

int quarantine_release(struct quarantine *q, const char *id, const char *by,
		       struct quarantine_result *res)
{
	return deliver(q, id, by, QUARANTINE_RELEASED, res);
}

/* Moves a held, idle entry to s and removes its file. */
static int drop(struct quarantine *q, const char *id, const char *by, enum quarantine_state s)
{
	struct quarantine_meta m;
	int rc;

	pthread_mutex_lock(&q->mu);
	rc = quarantine_meta_load(q, id, &m);
	if (rc == 0 && (m.state != QUARANTINE_HELD))
		rc = M_EINVAL;
	else if (rc == 0 && busy_find(q, id) >= 0)
		rc = M_EAGAIN;
	if (rc == 0) {
		rc = transition(q, id, s, by, "");
		rc = rc == 1 ? 0 : rc == 0 ? M_EINVAL : rc;
	}
	pthread_mutex_unlock(&q->mu);
	if (rc == 0)
		file_remove(q, id);
	quarantine_meta_fini(&m);
	return rc;
}

int quarantine_delete(struct quarantine *q, const char *id, const char *by)
{
	return drop(q, id, by, QUARANTINE_DELETED);
}

/* Rows of entries that ended more than QUARANTINE_KEEP_DONE ago go, with
 * their history. */
static void purge_done(struct quarantine *q, time_t now)
{
	static const char *const sql[] = {
		"DELETE FROM quarantine_history WHERE id IN (SELECT id FROM quarantine"
		" WHERE state != 'held' AND updated < ?1)",
		"DELETE FROM quarantine WHERE state != 'held' AND updated < ?1",
	};
	int purged = 0;
	pthread_mutex_lock(&q->mu);
	if (exec_sql(q, "BEGIN IMMEDIATE", "begin") == 0) {
		int ok = 1;
		for (size_t i = 0; ok && i < 2; i++) {
			sqlite3_stmt *st = quarantine_db_prepare(q, sql[i]);
			ok = st != NULL;
			if (st) {
				sqlite3_bind_int64(st, 1, (sqlite3_int64)now - QUARANTINE_KEEP_DONE);
				ok = sqlite3_step(st) == SQLITE_DONE;
				if (i == 1)
					purged = sqlite3_changes(q->db);
				sqlite3_finalize(st);
			}
		}
		exec_sql(q, ok ? "COMMIT" : "ROLLBACK", ok ? "commit" : "rollback");
	}
	pthread_mutex_unlock(&q->mu);
	if (purged)
		log_msg(LOG_INFO, "quarantine", "event=purged entries=%d", purged);
}

int quarantine_expire(struct quarantine *q, time_t now)
{
	char (*ids)[QUARANTINE_ID_LEN + 1];
	unsigned char *send;
	sqlite3_stmt *st;
	size_t n = 0;
	int done = 0, s;

	ids = calloc(EXPIRE_BATCH, sizeof(*ids));
	send = calloc(EXPIRE_BATCH, 1);
	if (!ids || !send) {
		free(ids);
		free(send);
		return M_ENOMEM;
	}
	pthread_mutex_lock(&q->mu);
	st = quarantine_db_prepare(q,
		"SELECT id, expiry_action FROM quarantine WHERE state = 'held'"
		" AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2");
	if (st) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
		sqlite3_bind_int(st, 2, EXPIRE_BATCH);
		while (n < EXPIRE_BATCH && (s = sqlite3_step(st)) == SQLITE_ROW) {
			snprintf(ids[n], sizeof(ids[n]), "%s", quarantine_db_col(st, 0));
			send[n++] = strcmp(quarantine_db_col(st, 1), "send") == 0;
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&q->mu);
	if (!st) {
		free(ids);
		free(send);
		return M_EIO;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = send[i] ? deliver(q, ids[i], "expiry", QUARANTINE_SENT, NULL)
				 : drop(q, ids[i], "expiry", QUARANTINE_EXPIRED);
		if (rc == 0)
			done++;
	}
	if (done)
		log_msg(LOG_INFO, "quarantine", "event=expired count=%d", done);
	free(ids);
	free(send);
	purge_done(q, now);
	return done;
}

static void *expiry_main(void *arg)
{
	struct quarantine *q = arg;
	struct timespec ts;

	pthread_mutex_lock(&q->tmu);
	while (!q->stopping) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)q->interval;
		pthread_cond_timedwait(&q->tcv, &q->tmu, &ts);
		if (q->stopping)
			break;
		pthread_mutex_unlock(&q->tmu);
		quarantine_expire(q, time(NULL));
		pthread_mutex_lock(&q->tmu);
	}
	pthread_mutex_unlock(&q->tmu);
	return NULL;
}

int quarantine_expiry_start(struct quarantine *q, int64_t interval)
{
	if (q->thr_on || interval < 1 || interval > 86400)
		return M_EINVAL;
	q->interval = interval;
	if (pthread_create(&q->thr, NULL, expiry_main, q) != 0)
		return M_EIO;
	q->thr_on = 1;
	return 0;
}

/* ---- hold links ---- */

int quarantine_token(struct quarantine *q, const char *id, enum quarantine_action act,
		     char out[QUARANTINE_TOKEN_LEN + 1])
{
	struct quarantine_meta m;
	int rc;

	out[0] = '\0';
	pthread_mutex_lock(&q->mu);
	rc = quarantine_meta_load(q, id, &m);
	if (rc == 0)
		rc = token_compute(q, id, act, m.expires_at, out);
	pthread_mutex_unlock(&q->mu);
	quarantine_meta_fini(&m);
	return rc;
}

int quarantine_token_check(struct quarantine *q, const char *id, enum quarantine_action act,
			   const char *token)
{
	char want[QUARANTINE_TOKEN_LEN + 1];
	struct quarantine_meta m;
	int rc;

	pthread_mutex_lock(&q->mu);
	rc = quarantine_meta_load(q, id, &m);
	if (rc == 0)
		rc = token_compute(q, id, act, m.expires_at, want);
	pthread_mutex_unlock(&q->mu);
	if (rc == 0) {
		/* The length is no secret; the bytes are compared in constant time. */
		if (!token || strnlen(token, QUARANTINE_TOKEN_LEN + 1) != QUARANTINE_TOKEN_LEN ||
		    CRYPTO_memcmp(want, token, QUARANTINE_TOKEN_LEN) != 0)
			rc = M_EAUTH;
		else if (time(NULL) > m.expires_at)
			rc = M_ELIMIT;
	}
	OPENSSL_cleanse(want, sizeof(want));
	quarantine_meta_fini(&m);
	return rc;
}

int quarantine_hold_act(struct quarantine *q, const char *id, enum quarantine_action act,
			struct quarantine_result *res)
{
	if (res)
		memset(res, 0, sizeof(*res));
	if (act == QUARANTINE_ACT_CANCEL)
		return drop(q, id, "sender (cancel link)", QUARANTINE_DELETED);
	return deliver(q, id, "sender (send-now link)", QUARANTINE_SENT, res);
}
