/*
 * `mamori events ...`: a small client of the HTTP API over plain sockets
 * (plain http only; https waits for libcurl). The HTTP and formatting helpers
 * are exported for the unit tests.
 */
#ifndef MAMORI_CLI_CLIENT_H
#define MAMORI_CLI_CLIENT_H

#include <stdio.h>

#include "core/buf.h"

#define CLI_MAX_ANSWER ((size_t)80 << 20)   /* one HTTP answer, all of it */

struct cli_url {
	char host[256];      /* without brackets for IPv6 */
	char port[8];
	char base[512];      /* path prefix without trailing '/', may be "" */
	int ipv6;
};

/* The subcommand: argv[0] is "events", argv[1] the action ("search").
 * Returns the process exit status: 0 ok, 1 failure, 2 usage. */
int cli_events_main(int argc, char **argv);

/* Parses "http://host[:port][/prefix]". 0 or M_EINVAL (M_EUNSUPP for
 * https), with a reason in err. */
int cli_url_parse(const char *url, struct cli_url *u, struct buf *err);

/* Sends "GET target" (target starts with '/', appended to base) with an
 * optional bearer token and reads the whole answer (bounded by
 * CLI_MAX_ANSWER, timeout_ms for connect and for each read). On 0, *status
 * holds the HTTP status and body the de-chunked body. M_EIO / M_EPARSE /
 * M_ELIMIT otherwise, with a reason in err. */
int cli_http_get(const struct cli_url *u, const char *target,
		 const char *token, int timeout_ms, int *status,
		 struct buf *body, struct buf *err);

/* Prints a search answer ({"total":..,"events":[..]}) as a table of time,
 * host, dataset and message; width 0 = do not cut messages. Control
 * characters in values are shown as '?' so hostile log lines cannot drive
 * the terminal. 0 or M_EPARSE. */
int cli_print_events(FILE *out, const char *json, size_t len, int width);

#endif
