/*
 * Following JSON-lines files like `tail -F`: one thread polls every file
 * every FOLLOW_POLL_MS, reads what was appended, and frames it into lines
 * (the same framer as TCP, in LF mode). A file is read from its start the
 * first time it is seen. Rotation (the path now names another inode) is
 * handled by reading the old file to its end, keeping its unterminated last
 * line, and starting on the new file from its start; truncation (the file
 * is shorter than what we read) restarts at offset 0. A file that does not
 * exist yet is waited for.
 *
 * Polling instead of inotify keeps this simple and correct on every file
 * system (NFS, overlay); 200 ms of latency is fine for log files.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "ingest/framing.h"
#include "ingest/listen.h"

#define FOLLOW_POLL_MS 200
#define FOLLOW_READ 65536
/* Bytes read from one file per poll before the others get their turn. */
#define FOLLOW_SLICE (16 * 1024 * 1024)
#define FOLLOW_MAX_FILES 32
#define FOLLOW_SAVE_MS 1000
#define FOLLOW_STATE_MAX (256 * 1024)

struct follow_file {
	char *path;
	int fd;
	dev_t dev;
	ino_t ino;
	off_t off;                  /* bytes read from fd */
	off_t committed;            /* end of the last record handed over */
	int resume;                 /* resume_* hold a saved position */
	dev_t resume_dev;
	ino_t resume_ino;
	off_t resume_off;
	struct framer fr;
	struct ingest_batcher bt;
	int missing_logged;
};

struct follower {
	struct follow_file *files;
	size_t n;
	int wake_fd;
	int stopping;               /* set by ingest_stop's thread (atomic) */
	char *buf;
	char *state_path;           /* NULL: offsets are not kept */
	int state_dirty;
	int64_t state_saved_ms;
	pthread_t thread;
	int started;
	long long log_err_us;
};

/* "file:<path>", keeping the path's end when the name must be cut (the
 * input table holds 47 characters, and the file name tells files apart). */
static void follow_input_name(const char *path, char *out, size_t outsz)
{
	size_t len = strlen(path);
	size_t room = outsz - sizeof("file:...");

	if (len + sizeof("file:") <= outsz)
		snprintf(out, outsz, "file:%s", path);
	else
		snprintf(out, outsz, "file:...%s", path + (len - room));
}

static int follow_stopping(struct follower *f)
{
	return __atomic_load_n(&f->stopping, __ATOMIC_RELAXED);
}

static void follow_close(struct follow_file *ff)
{
	if (ff->fd >= 0)
		close(ff->fd);
	ff->fd = -1;
	ff->off = 0;
}

/* Opens the path (when it exists) to read it from the start, or from the
 * saved offset. O_NONBLOCK: a FIFO under that name must not hang us. */
static void follow_open_file(struct follower *f, struct follow_file *ff)
{
	struct stat st;
	int fd = open(ff->path,
		      O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0) {
		if (!ff->missing_logged)
			log_msg(errno == ENOENT ? LOG_INFO : LOG_WARN, "ingest",
				"event=file_waiting path=%s err=\"%s\"",
				ff->path, strerror(errno));
		ff->missing_logged = 1;
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (!ff->missing_logged)
			log_msg(LOG_WARN, "ingest", "event=file_unusable "
				"path=%s err=\"not a regular file\"", ff->path);
		ff->missing_logged = 1;
		close(fd);
		return;
	}
	ff->missing_logged = 0;
	ff->fd = fd;
	ff->dev = st.st_dev;
	ff->ino = st.st_ino;
	ff->off = 0;
	framing_reset(&ff->fr, FRAMING_LF);
	if (ff->resume && ff->resume_dev == st.st_dev &&
	    ff->resume_ino == st.st_ino && ff->resume_off <= st.st_size &&
	    lseek(fd, ff->resume_off, SEEK_SET) == ff->resume_off)
		ff->off = ff->resume_off;
	/* Only the first file seen under the path resumes. */
	ff->resume = 0;
	ff->committed = ff->off;
	f->state_dirty = 1;
	log_msg(LOG_INFO, "ingest", "event=file_following path=%s offset=%lld",
		ff->path, (long long)ff->off);
}

static void follow_emit(struct follow_file *ff, const struct framing_rec *r)
{
	(void)ingest_batcher_add(&ff->bt, r->p, r->len, NULL, 0, r->flags);
}

/* Reads from the current offset to the end (or a slice of it). Returns 1
 * when the slice ran out before the end of the file. */
static int follow_read(struct follower *f, struct follow_file *ff)
{
	size_t total = 0;
	struct framing_rec r;

	while (total < FOLLOW_SLICE && !follow_stopping(f)) {
		ssize_t got = read(ff->fd, f->buf, FOLLOW_READ);
		const char *p = f->buf;
		size_t n;
		int rc;

		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (log_ratelimit(&f->log_err_us, 10000000))
				log_msg(LOG_WARN, "ingest", "event=file_read_failed"
					" path=%s err=\"%s\"", ff->path,
					strerror(errno));
			return 0;
		}
		if (got == 0)
			return 0;
		ff->off += got;
		total += (size_t)got;
		n = (size_t)got;
		while ((rc = framing_next(&ff->fr, &p, &n, &r)) != 0)
			if (rc == 1)
				follow_emit(ff, &r);
	}
	return 1;
}

/* Keeps the unterminated last line of a file that is finished with. */
static void follow_finish(struct follow_file *ff)
{
	struct framing_rec r;

	if (framing_finish(&ff->fr, &r) == 1)
		follow_emit(ff, &r);
}

static void follow_poll(struct follower *f, struct follow_file *ff)
{
	struct stat st;

	if (ff->fd < 0) {
		follow_open_file(f, ff);
		if (ff->fd < 0)
			return;
	}
	if (follow_read(f, ff))
		goto flush;   /* more to read: next poll, after the others */
	if (fstat(ff->fd, &st) == 0 && st.st_size < ff->off) {
		log_msg(LOG_INFO, "ingest", "event=file_truncated path=%s",
			ff->path);
		follow_finish(ff);
		if (lseek(ff->fd, 0, SEEK_SET) == 0) {
			ff->off = 0;
			framing_reset(&ff->fr, FRAMING_LF);
			(void)follow_read(f, ff);
		} else {
			follow_close(ff);
		}
		goto flush;
	}
	if (stat(ff->path, &st) == 0 &&
	    (st.st_ino != ff->ino || st.st_dev != ff->dev)) {
		/* Rotated: lines written to the old file before the writer
		 * moved on are read first. */
		(void)follow_read(f, ff);
		follow_finish(ff);
		follow_close(ff);
		log_msg(LOG_INFO, "ingest", "event=file_rotated path=%s",
			ff->path);
		follow_open_file(f, ff);
		if (ff->fd >= 0)
			(void)follow_read(f, ff);
	}
flush:
	(void)ingest_batcher_flush(&ff->bt, -1);
	/* Everything but an unfinished last line has been handed over. */
	if (ff->fd >= 0 && ff->committed != ff->off -
			   (off_t)framing_pending(&ff->fr)) {
		ff->committed = ff->off - (off_t)framing_pending(&ff->fr);
		f->state_dirty = 1;
	}
}

/* Writes the offsets aside, then renames over the old state. */
static void follow_save(struct follower *f)
{
	char tmp[4096];
	FILE *out;
	int ok = 1;

	if (!f->state_path || !f->state_dirty)
		return;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", f->state_path) >=
	    sizeof(tmp))
		return;
	out = fopen(tmp, "w");
	if (!out) {
		ok = 0;
		goto done;
	}
	for (size_t i = 0; i < f->n; i++) {
		const struct follow_file *ff = &f->files[i];

		if (ff->fd < 0)
			continue;
		if (fprintf(out, "%lld %llu %llu %s\n",
			    (long long)ff->committed,
			    (unsigned long long)ff->dev,
			    (unsigned long long)ff->ino, ff->path) < 0)
			ok = 0;
	}
	if (fflush(out) != 0 || fsync(fileno(out)) != 0)
		ok = 0;
	if (fclose(out) != 0)
		ok = 0;
	if (ok && rename(tmp, f->state_path) != 0)
		ok = 0;
done:
	if (!ok) {
		if (log_ratelimit(&f->log_err_us, 60000000))
			log_msg(LOG_WARN, "ingest", "event=state_save_failed "
				"path=%s err=\"%s\"", f->state_path,
				strerror(errno));
		unlink(tmp);
		return;
	}
	f->state_dirty = 0;
	f->state_saved_ms = clock_mono_us() / 1000;
}

/* Parses one "offset dev inode path" line into *ff if the path matches. */
static void follow_state_line(struct follower *f, char *line)
{
	unsigned long long v[3];
	char *p = line, *end;

	for (int i = 0; i < 3; i++) {
		errno = 0;
		v[i] = strtoull(p, &end, 10);
		if (errno || end == p || *end != ' ')
			return;
		p = end + 1;
	}
	for (size_t i = 0; i < f->n; i++) {
		struct follow_file *ff = &f->files[i];

		if (strcmp(ff->path, p) != 0)
			continue;
		ff->resume = 1;
		ff->resume_off = (off_t)v[0];
		ff->resume_dev = (dev_t)v[1];
		ff->resume_ino = (ino_t)v[2];
	}
}

/* Reads saved offsets; a missing state file means a first start. */
static void follow_load(struct follower *f)
{
	char *text = NULL, *line, *nl;
	ssize_t got;
	size_t len = 0;
	int fd = open(f->state_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (errno != ENOENT)
			log_msg(LOG_WARN, "ingest", "event=state_load_failed "
				"path=%s err=\"%s\"", f->state_path,
				strerror(errno));
		return;
	}
	text = malloc(FOLLOW_STATE_MAX + 1);
	if (!text)
		goto out;
	while (len < FOLLOW_STATE_MAX &&
	       (got = read(fd, text + len, FOLLOW_STATE_MAX - len)) > 0)
		len += (size_t)got;
	text[len] = '\0';
	for (line = text; line < text + len; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl)
			break;   /* a torn last line is ignored */
		*nl = '\0';
		follow_state_line(f, line);
	}
out:
	free(text);
	close(fd);
}

static void *follow_thread(void *arg)
{
	struct follower *f = arg;
	struct pollfd pfd = { .fd = f->wake_fd, .events = POLLIN };

	while (!follow_stopping(f)) {
		for (size_t i = 0; i < f->n && !follow_stopping(f); i++)
			follow_poll(f, &f->files[i]);
		if (f->state_dirty &&
		    clock_mono_us() / 1000 - f->state_saved_ms >= FOLLOW_SAVE_MS)
			follow_save(f);
		if (poll(&pfd, 1, FOLLOW_POLL_MS) > 0)
			break;
	}
	for (size_t i = 0; i < f->n; i++) {
		struct follow_file *ff = &f->files[i];

		(void)ingest_batcher_flush(&ff->bt, -1);
		if (ff->fd >= 0)
			ff->committed = ff->off -
					(off_t)framing_pending(&ff->fr);
	}
	f->state_dirty = 1;
	follow_save(f);
	return NULL;
}

int follower_open(const struct conf_list *files,
		  const struct ingest_config *cfg, struct pipeline *p,
		  struct follower **out)
{
	struct follower *f;
	size_t max_line = cfg->max_line > 0 ? (size_t)cfg->max_line : 65536;
	int rc = M_ENOMEM;

	*out = NULL;
	if (files->n > FOLLOW_MAX_FILES) {
		log_msg(LOG_ERROR, "ingest", "event=too_many_files count=%zu "
			"max=%d", files->n, FOLLOW_MAX_FILES);
		return M_ELIMIT;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return M_ENOMEM;
	f->wake_fd = ingest_wake_fd();
	f->files = calloc(files->n ? files->n : 1, sizeof(*f->files));
	f->buf = malloc(FOLLOW_READ);
	if (f->wake_fd < 0 || !f->files || !f->buf)
		goto fail;
	for (size_t i = 0; i < files->n; i++) {
		struct follow_file *ff = &f->files[i];
		const struct input *in;
		char name[48];

		ff->fd = -1;
		framing_init(&ff->fr, FRAMING_LF, max_line);
		f->n++;
		if (!files->v[i] || !files->v[i][0]) {
			log_msg(LOG_ERROR, "ingest", "event=bad_file path=\"\"");
			rc = M_EINVAL;
			goto fail;
		}
		ff->path = strdup(files->v[i]);
		if (!ff->path)
			goto fail;
		follow_input_name(ff->path, name, sizeof(name));
		in = pipeline_add_input(p, name, RAW_JSON);
		if (!in) {
			log_msg(LOG_ERROR, "ingest",
				"event=too_many_inputs input=%s", name);
			rc = M_ELIMIT;
			goto fail;
		}
		ingest_batcher_init(&ff->bt, p, in, max_line, -1);
	}
	if (cfg->files_state && cfg->files_state[0]) {
		f->state_path = strdup(cfg->files_state);
		if (!f->state_path)
			goto fail;
		follow_load(f);
	}
	*out = f;
	return 0;
fail:
	follower_free(f);
	return rc;
}

int follower_start(struct follower *f)
{
	if (pthread_create(&f->thread, NULL, follow_thread, f) != 0) {
		log_msg(LOG_ERROR, "ingest", "event=thread_failed "
			"listener=json_files");
		return M_EIO;
	}
	pthread_setname_np(f->thread, "mamori-follow");
	f->started = 1;
	return 0;
}

void follower_stop(struct follower *f)
{
	if (!f)
		return;
	__atomic_store_n(&f->stopping, 1, __ATOMIC_RELAXED);
	ingest_wake(f->wake_fd);
}

void follower_free(struct follower *f)
{
	if (!f)
		return;
	if (f->started)
		pthread_join(f->thread, NULL);
	for (size_t i = 0; i < f->n; i++) {
		struct follow_file *ff = &f->files[i];

		ingest_batcher_fini(&ff->bt);
		follow_close(ff);
		framing_fini(&ff->fr);
		free(ff->path);
	}
	if (f->wake_fd >= 0)
		close(f->wake_fd);
	free(f->files);
	free(f->buf);
	free(f->state_path);
	free(f);
}
