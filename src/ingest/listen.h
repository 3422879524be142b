/*
 * Private to the ingest listeners (ingest.c, listen_udp.c, listen_tcp.c,
 * follow.c): the shared batcher and socket helpers, and each listener's
 * open / start / stop / free. Every listener is opened (socket bound, files
 * checked, TLS loaded) before any thread starts, so a bad address or
 * certificate fails start-up instead of a thread later.
 *
 * Life of a listener: *_open() binds and registers its input; *_start()
 * starts its thread; *_stop() asks the thread to finish (it flushes its
 * batch with a blocking submit and exits); *_free() joins and frees. stop and
 * free are split so ingest_stop() can stop every thread at once.
 */
#ifndef MAMORI_INGEST_LISTEN_H
#define MAMORI_INGEST_LISTEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/pipeline.h"
#include "ingest/ingest.h"

/* Records per raw batch and the smallest batch data size. */
#define INGEST_BATCH_RECS 1024
#define INGEST_BATCH_BYTES (1024 * 1024)
/* "[v6addr]:port" at most. */
#define INGEST_PEER_MAX 64

/* Gathers one listener's records into raw batches. Owned by the listener's
 * thread; not shared between threads. */
struct ingest_batcher {
	struct pipeline *p;
	const struct input *in;
	struct raw_batch *b;
	size_t cap_bytes;
	int submit_timeout_ms;      /* -1 for streams (push back), short for UDP */
	long long log_last_us;      /* rate limit for drop logs */
};

void ingest_batcher_init(struct ingest_batcher *bt, struct pipeline *p,
			 const struct input *in, size_t max_line,
			 int submit_timeout_ms);
/* Appends one record, submitting the batch first when it is full. Counts
 * truncated records. 0, or the submit error when the record (or the batch
 * before it) had to be dropped (counted in m_drops). */
int ingest_batcher_add(struct ingest_batcher *bt, const char *p, size_t n,
		       const char *peer, size_t peer_len, uint16_t flags);
/* Submits the batch if it holds records, with the given timeout. */
int ingest_batcher_flush(struct ingest_batcher *bt, int timeout_ms);
static inline int ingest_batcher_pending(const struct ingest_batcher *bt)
{
	return bt->b && bt->b->n > 0;
}
/* Flushes with a blocking submit and frees the batch. */
void ingest_batcher_fini(struct ingest_batcher *bt);

/* Binds a socket of the given type (SOCK_DGRAM / SOCK_STREAM) to addr
 * ("host:port"); stream sockets also listen. Logs and returns M_EIO (or
 * M_EINVAL for a bad address) with the address named. */
int ingest_bind(const char *what, const char *addr, int socktype, int *fd);
/* The local port of a bound socket, or M_EIO. */
int ingest_sock_port(int fd);
/* "ip:port" (or "[v6]:port") of sa into out; returns the length. */
size_t ingest_peer_text(const struct sockaddr *sa, socklen_t len, char *out,
			size_t outsz);
/* A new eventfd used to wake a listener's thread; -1 on failure. */
int ingest_wake_fd(void);
void ingest_wake(int fd);

/* UDP: one datagram a record, received with recvmmsg. */
struct udp_listener;
int udp_listener_open(const char *name, const char *addr,
		      const struct ingest_config *cfg, struct pipeline *p,
		      enum raw_format fmt, struct udp_listener **out);
int udp_listener_start(struct udp_listener *u);
int udp_listener_port(const struct udp_listener *u);
const char *udp_listener_name(const struct udp_listener *u);
void udp_listener_stop(struct udp_listener *u);
void udp_listener_free(struct udp_listener *u);

/* TCP and TLS streams: one thread and one libevent base per listener. */
struct tcp_listener;
int tcp_listener_open(const char *name, const char *addr, int tls,
		      const struct ingest_config *cfg, struct pipeline *p,
		      enum raw_format fmt, struct tcp_listener **out);
int tcp_listener_start(struct tcp_listener *t);
int tcp_listener_port(const struct tcp_listener *t);
const char *tcp_listener_name(const struct tcp_listener *t);
void tcp_listener_stop(struct tcp_listener *t);
void tcp_listener_free(struct tcp_listener *t);

/* Followed JSON-lines files: one thread for all of them. */
struct follower;
int follower_open(const struct conf_list *files,
		  const struct ingest_config *cfg, struct pipeline *p,
		  struct follower **out);
int follower_start(struct follower *f);
void follower_stop(struct follower *f);
void follower_free(struct follower *f);

#endif
