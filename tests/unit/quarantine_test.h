/*
 * Shared by the quarantine tests (test_quarantine.c, test_mail_api.c): a
 * data directory made and removed, a sample message, and a tiny SMTP
 * server on a loopback thread. The server
 * answers EHLO, MAIL, RCPT, DATA, RSET, NOOP and QUIT, records the envelope
 * and the message of the last transaction, refuses every recipient whose
 * address contains "refuse" (550) and, when told to, the message at the end
 * of DATA (554). Header-only, included by each test executable once.
 */
#ifndef MAMORI_TEST_QUARANTINE_H
#define MAMORI_TEST_QUARANTINE_H

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/buf.h"
#include "mail/msg.h"
#include "mail/quarantine.h"

#define SINK_MAX_RCPT 16

struct smtp_sink {
	int lfd, port;
	pthread_t thr;
	atomic_int stop;
	atomic_int reject_data;
	pthread_mutex_t mu;
	/* the last transaction that ended in DATA */
	char from[512];
	char rcpt[SINK_MAX_RCPT][512];
	int nrcpt;
	struct buf data;
	int messages;        /* messages accepted */
	/* the transaction under way */
	char cur_from[512];
	char cur_rcpt[SINK_MAX_RCPT][512];
	int cur_nrcpt;
};

/* One line without its CRLF; -1 on EOF or error. Byte by byte: slow, and
 * simple, for test-sized messages. */
static inline int sink_line(int fd, char *line, size_t max)
{
	size_t n = 0;

	for (;;) {
		char c;
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 10000) != 1 || recv(fd, &c, 1, 0) != 1)
			return -1;
		if (c == '\n')
			break;
		if (n + 1 < max)
			line[n++] = c;
	}
	if (n && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	return (int)n;
}

static inline void sink_say(int fd, const char *s)
{
	ssize_t w = send(fd, s, strlen(s), MSG_NOSIGNAL);

	(void)w;
}

static inline void sink_session(struct smtp_sink *s, int fd)
{
	char line[2048];
	struct buf msg;

	buf_init(&msg, 64 << 20);
	sink_say(fd, "220 sink ESMTP\r\n");
	while (sink_line(fd, line, sizeof(line)) >= 0) {
		if (!strncasecmp(line, "EHLO", 4) || !strncasecmp(line, "HELO", 4)) {
			sink_say(fd, "250-sink\r\n250 8BITMIME\r\n");
		} else if (!strncasecmp(line, "MAIL FROM:", 10)) {
			snprintf(s->cur_from, sizeof(s->cur_from), "%.500s", line + 10);
			s->cur_nrcpt = 0;
			sink_say(fd, "250 2.1.0 ok\r\n");
		} else if (!strncasecmp(line, "RCPT TO:", 8)) {
			if (strstr(line, "refuse")) {
				sink_say(fd, "550 5.1.1 no such user here\r\n");
			} else {
				if (s->cur_nrcpt < SINK_MAX_RCPT)
					snprintf(s->cur_rcpt[s->cur_nrcpt++], 512, "%.500s", line + 8);
				sink_say(fd, "250 2.1.5 ok\r\n");
			}
		} else if (!strcasecmp(line, "DATA")) {
			sink_say(fd, "354 go ahead\r\n");
			buf_reset(&msg);
			while (sink_line(fd, line, sizeof(line)) >= 0 && strcmp(line, ".") != 0) {
				const char *l = line[0] == '.' ? line + 1 : line;   /* un-stuff */
				buf_puts(&msg, l);
				buf_puts(&msg, "\r\n");
			}
			if (atomic_load(&s->reject_data)) {
				sink_say(fd, "554 5.7.1 message refused by policy\r\n");
				continue;
			}
			pthread_mutex_lock(&s->mu);
			memcpy(s->from, s->cur_from, sizeof(s->from));
			memcpy(s->rcpt, s->cur_rcpt, sizeof(s->rcpt));
			s->nrcpt = s->cur_nrcpt;
			buf_reset(&s->data);
			buf_append(&s->data, msg.p, msg.len);
			buf_cstr(&s->data);
			s->messages++;
			pthread_mutex_unlock(&s->mu);
			sink_say(fd, "250 2.0.0 queued\r\n");
		} else if (!strcasecmp(line, "QUIT")) {
			sink_say(fd, "221 2.0.0 bye\r\n");
			break;
		} else if (!strcasecmp(line, "RSET") || !strcasecmp(line, "NOOP")) {
			sink_say(fd, "250 2.0.0 ok\r\n");
		} else {
			sink_say(fd, "502 5.5.2 unknown command\r\n");
		}
	}
	buf_fini(&msg);
	close(fd);
}

static inline void *sink_main(void *arg)
{
	struct smtp_sink *s = arg;

	while (!atomic_load(&s->stop)) {
		struct pollfd p = { .fd = s->lfd, .events = POLLIN };
		int fd;

		if (poll(&p, 1, 50) != 1)
			continue;
		fd = accept(s->lfd, NULL, NULL);
		if (fd >= 0)
			sink_session(s, fd);
	}
	return NULL;
}

/* Starts the sink on 127.0.0.1 and an ephemeral port; 0 or -1. */
static inline int sink_start(struct smtp_sink *s)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	buf_init(&s->data, 64 << 20);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(s->lfd, 8) != 0 || getsockname(s->lfd, (struct sockaddr *)&sin, &sl) != 0)
		return -1;
	s->port = ntohs(sin.sin_port);
	return pthread_create(&s->thr, NULL, sink_main, s) == 0 ? 0 : -1;
}

static inline void sink_stop(struct smtp_sink *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->thr, NULL);
	close(s->lfd);
	buf_fini(&s->data);
	pthread_mutex_destroy(&s->mu);
}

/* "127.0.0.1:<port>" of the sink. */
static inline void sink_addr(const struct smtp_sink *s, char *out, size_t n)
{
	snprintf(out, n, "127.0.0.1:%d", s->port);
}

/* A loopback port that nothing listens on (bound, then closed). */
static inline int closed_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = 0;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &sl) == 0)
		port = ntohs(sin.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* ---- a data directory ---- */

static inline void qdir_make(char *dir, size_t n)
{
	snprintf(dir, n, "/tmp/mamori-quarantine-XXXXXX");
	if (!mkdtemp(dir))
		dir[0] = '\0';
}

static inline void qdir_remove(const char *dir)
{
	static const char *const files[] = {
		"quarantine.db", "quarantine.db-wal", "quarantine.db-shm", "quarantine.db-journal",
		"quarantine.key", "quarantine.key.tmp",
	};
	char p[512];
	DIR *d;
	struct dirent *e;

	snprintf(p, sizeof(p), "%s/quarantine", dir);
	if ((d = opendir(p)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/quarantine/%s", dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	snprintf(p, sizeof(p), "%s/quarantine", dir);
	rmdir(p);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

/* Sets columns of one entry behind the store's back (to move time);
 * 0 or -1. */
static inline int qdb_poke(const char *dir, const char *id, const char *set)
{
	char path[128], sql[256];
	sqlite3 *db;
	int rc;

	snprintf(path, sizeof(path), "%s/quarantine.db", dir);
	snprintf(sql, sizeof(sql), "UPDATE quarantine SET %s WHERE id = '%s'", set, id);
	if (sqlite3_open(path, &db) != SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
	sqlite3_close(db);
	return rc;
}

/* ---- messages ---- */

/* A message with subject (a line that starts with a dot in the body, to
 * check the dot-stuffing both ways). Owner: the caller (msg_free). */
static inline struct msg *sample_msg(const char *subject)
{
	char text[2048];
	int n = snprintf(text, sizeof(text),
			 "From: Alice Example <alice@example.org>\r\n"
			 "To: bob@example.net\r\n"
			 "Subject: %s\r\n"
			 "Message-ID: <m1@example.org>\r\n"
			 "Date: Thu, 26 Nov 2026 04:00:00 +0000\r\n"
			 "\r\n"
			 "Hello Bob,\r\n"
			 ".hidden line that starts with a dot\r\n"
			 "bye\r\n", subject);
	int err;

	return msg_parse(text, (size_t)n, &err, NULL);
}

/* Puts sample_msg(subject) with the envelope; 0 or the error. */
static inline int put_sample(struct quarantine *q, const char *subject, const char *sender,
			     char **rcpt, size_t nrcpt, int outbound, int hold_minutes,
			     char id[QUARANTINE_ID_LEN + 1])
{
	struct quarantine_meta m;
	struct msg *msg = sample_msg(subject);
	int rc;

	memset(&m, 0, sizeof(m));
	m.sender = (char *)sender;
	m.rcpt = rcpt;
	m.nrcpt = nrcpt;
	m.direction = outbound ? QUARANTINE_OUTBOUND : QUARANTINE_INBOUND;
	m.reasons = "[\"dmarc=fail\",{\"engine\":\"spf\",\"result\":\"softfail\"}]";
	m.score = 7.5;
	rc = outbound ? quarantine_hold_outbound(q, msg, &m, hold_minutes, id)
		      : quarantine_put(q, msg, &m, id);
	msg_free(msg);
	return rc;
}

#endif
