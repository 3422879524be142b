/*
 * Ingestion: parsers (pure functions of bytes, length and arena) and the
 * network/file listeners that feed raw batches into the pipeline.
 *
 * Parser contract: the parser fills ev from the record; values may borrow
 * from p (the record outlives the event) or be allocated from a. It never
 * aborts on input: on a malformed record it keeps what it could read, puts the
 * whole record in message, calls event_set_parse_error() with the reason and
 * returns M_EPARSE. ev->recv_us is set by the caller before the call and is
 * the fallback @timestamp (and the year for RFC 3164 stamps).
 */
#ifndef MAMORI_INGEST_H
#define MAMORI_INGEST_H

#include <stddef.h>

#include "core/arena.h"
#include "core/config.h"
#include "core/event.h"

struct pipeline;

/* Syslog: RFC 5424 or RFC 3164 (detected), with CEF in the message parsed
 * into cef.* and ECS fields. */
int syslog_parse(const char *p, size_t n, struct event *ev, struct arena *a);
/* CEF ("CEF:0|vendor|product|version|id|name|sev|ext") on its own. */
int cef_parse(const char *p, size_t n, struct event *ev, struct arena *a);
/* Reads the fields of well-known programs' messages (sshd logins, netfilter
 * log lines) into ECS fields; msg is the syslog MSG, process.name is set. */
void syslog_app_enrich(struct event *ev, const char *msg, size_t n);
/* One JSON object: Suricata EVE (has "event_type"), Windows event
 * ({"Event":{"System":...,"EventData":...}}), or generic JSON whose keys
 * (flattened with dots) become fields. */
int json_event_parse(const char *p, size_t n, struct event *ev,
		     struct arena *a);

/* Listener configuration (the "ingest:" section). */
struct ingest_config {
	char *syslog_udp;          /* host:port or "" */
	char *syslog_tcp;
	char *syslog_tls;
	char *tls_cert;
	char *tls_key;
	char *tls_ca;              /* optional: require client certificates */
	char *json_tcp;
	struct conf_list json_files;   /* JSON-lines files to follow */
	char *files_state;         /* offsets of followed files, "" = none */
	int64_t max_line;          /* records longer are cut and tagged */
	int64_t udp_rcvbuf;        /* SO_RCVBUF for UDP sockets */
	int64_t max_connections;   /* per TCP listener */
	int64_t idle_timeout;      /* seconds before an idle TCP peer is closed */
};

extern const struct conf_keyword ingest_keywords[];

/* Binds every configured socket (so a port in use fails start-up) and starts
 * the listener threads. Owner of the returned handle: the caller. */
struct ingest;
int ingest_start(const struct ingest_config *cfg, struct pipeline *p,
		 struct ingest **out);
/* Stops reading, submits partial batches (blocking), joins the threads and
 * frees g. The pipeline must still be running (drain it afterwards);
 * ingest_stop(NULL) does nothing. */
void ingest_stop(struct ingest *g);
/* The local port of a listener by input name ("syslog_udp", "syslog_tcp",
 * "syslog_tls", "json_tcp"): useful after binding port 0. M_ENOTFOUND when
 * that listener is not running. */
int ingest_port(const struct ingest *g, const char *name);

#endif
