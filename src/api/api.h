/*
 * The HTTP API and the placeholder console page (libmicrohttpd, its own
 * thread pool). Routes under /api/v1; /metrics in Prometheus text format;
 * bearer-token authentication for everything but /api/v1/health and the
 * console's static files.
 */
#ifndef MAMORI_API_H
#define MAMORI_API_H

#include <stdint.h>

#include "core/config.h"

struct store;
struct soc_db;
struct api_ddos_ctx;
struct quarantine;

struct api_config {
	char *listen;              /* host:port, "" disables the API */
	struct conf_list tokens;   /* accepted bearer tokens */
	int64_t threads;           /* libmicrohttpd thread pool size */
	char *web_root;            /* directory with the console, "" = built-in page */
	int64_t max_connections;   /* concurrent connections, all clients */
	int64_t timeout;           /* seconds a connection may stay idle */
};

extern const struct conf_keyword api_keywords[];

struct api;

/* Starts the server. tokens must hold at least one token (the caller resolves
 * MAMORI_API_TOKEN and the generated token before); they are copied. The
 * store is borrowed and must outlive api_stop(). Returns 0, M_EINVAL for a
 * bad configuration, M_EIO when the address cannot be bound. Owner of *out:
 * the caller, released with api_stop(). */
int api_start(const struct api_config *cfg, struct store *store,
	      struct api **out);
/* The port the server listens on (useful after listening on port 0). */
int api_port(const struct api *a);
/* Stops the server, waiting for requests in flight; api_stop(NULL) is a
 * no-op. */
void api_stop(struct api *a);
/* Replaces the accepted tokens (SIGHUP); the old set stays on error. */
int api_set_tokens(struct api *a, const struct conf_list *tokens);
/* Serves /api/v1/alerts and /api/v1/incidents from soc (borrowed; NULL
 * makes them answer 503). The database must outlive api_stop() or be
 * unset with api_set_soc(a, NULL) before soc_close(). */
void api_set_soc(struct api *a, struct soc_db *soc);
/* Serves /api/v1/ddos/... from ctx (api_ddos.h; borrowed, NULL makes them
 * answer 503), under the same rule as api_set_soc(). */
void api_set_ddos(struct api *a, const struct api_ddos_ctx *ctx);
/* Serves /api/v1/mail/... from the quarantine q (borrowed; NULL makes them
 * answer 503), under the same rule as api_set_soc(). */
void api_set_mail(struct api *a, struct quarantine *q);

#endif
