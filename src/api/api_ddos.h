/*
 * Private to src/api: the DDoS routes (/api/v1/ddos/...) as a pure function
 * of (route, method, query parameters, body) → (status, JSON answer or
 * error), like api_soc.h. api.c owns the HTTP side (limits, auth, metrics,
 * reading the body); this file owns what the routes mean, so the unit test
 * drives it without a socket:
 *
 *   GET    /api/v1/ddos/attacks          active and past attacks (filters, paging)
 *   GET    /api/v1/ddos/attacks/{id}     one attack with its timeline
 *   GET    /api/v1/ddos/top?target=IP    current traffic and top talkers of a protected address
 *   GET    /api/v1/ddos/exporters        telemetry health of every flow exporter
 *   GET    /api/v1/ddos/mitigations      the desired mitigation state
 *   POST   /api/v1/ddos/mitigations      a manual mitigation
 *   DELETE /api/v1/ddos/mitigations?key=|target=   a manual withdrawal
 */
#ifndef MAMORI_API_DDOS_H
#define MAMORI_API_DDOS_H

#include <stddef.h>
#include <stdint.h>

#include "api/api_soc.h"
#include "core/buf.h"
#include "ddos/collect.h"

struct attack_db;
struct mitig;

enum api_ddos_route {
	API_DDOS_NONE = 0,
	API_DDOS_ATTACKS,       /* /api/v1/ddos/attacks */
	API_DDOS_ATTACK,        /* /api/v1/ddos/attacks/{id} */
	API_DDOS_TOP,           /* /api/v1/ddos/top */
	API_DDOS_MITIGATIONS,   /* /api/v1/ddos/mitigations */
	API_DDOS_EXPORTERS,     /* /api/v1/ddos/exporters */
};

struct api_ddos_target {
	enum api_ddos_route route;
	int64_t id;             /* 0 when the path segment is not a valid id */
};

/* Classifies a path: API_DDOS_NONE when it is not a DDoS route. */
enum api_ddos_route api_ddos_match(const char *path, struct api_ddos_target *t);
/* 1 when the route answers method. */
int api_ddos_method_ok(enum api_ddos_route r, const char *method);
/* The Allow header for a 405 on the route. */
const char *api_ddos_allow(enum api_ddos_route r);
/* 1 when the method on the route reads a JSON body. */
int api_ddos_takes_body(enum api_ddos_route r, const char *method);

/* Asks the collector for the top talkers of ip (ddos_collector_top). */
typedef int (*api_ddos_top_fn)(void *arg, const struct flow_ip *ip, struct ddos_top *out);

/* Asks the collector for its exporter list (ddos_collector_exporters):
 * *out owned by the caller. */
typedef int (*api_ddos_exporters_fn)(void *arg, struct ddos_exporter_info **out, size_t *n);

/* What the routes read; a NULL member makes its routes answer 503.
 * Borrowed: each must outlive the API (or be unset before it goes). */
struct api_ddos_ctx {
	struct attack_db *adb;
	struct mitig *mitig;
	api_ddos_top_fn top;
	void *top_arg;
	api_ddos_exporters_fn exporters;
	void *exporters_arg;
};

struct api_ddos_request {
	struct api_ddos_target target;
	const char *method;
	const struct api_soc_param *params;
	size_t n_params;             /* more than API_MAX_PARAMS: refused */
	const char *body;
	size_t body_len;
};

/* Answers one request (ctx NULL: 503). ans->body is initialised by the
 * caller, as for api_soc_handle(). */
void api_ddos_handle(const struct api_ddos_ctx *ctx, const struct api_ddos_request *rq,
		     struct api_soc_answer *ans);

#endif
