/*
 * Private to src/api: the SOC routes (/api/v1/alerts..., /api/v1/incidents...)
 * as a pure function of (route, method, query parameters, body) → (status,
 * JSON answer or error). api.c owns the HTTP side (limits, auth, metrics,
 * reading the body); this file owns what the routes mean, so the unit test
 * can drive it without a socket.
 */
#ifndef MAMORI_API_SOC_H
#define MAMORI_API_SOC_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define API_SOC_MAX_BODY ((size_t)64 << 10)   /* PATCH / POST body, bytes */

struct soc_db;

enum api_soc_route {
	API_SOC_NONE = 0,
	API_SOC_ALERTS,       /* /api/v1/alerts */
	API_SOC_ALERT,        /* /api/v1/alerts/{id} */
	API_SOC_INCIDENTS,    /* /api/v1/incidents */
	API_SOC_INCIDENT,     /* /api/v1/incidents/{id} */
	API_SOC_COMMENTS,     /* /api/v1/incidents/{id}/comments */
};

struct api_soc_target {
	enum api_soc_route route;
	int64_t id;           /* 0 when the path segment is not a valid id */
};

/* Classifies a path: API_SOC_NONE when it is not a SOC route. */
enum api_soc_route api_soc_match(const char *path, struct api_soc_target *t);
/* 1 when the route answers method (GET and HEAD, PATCH, POST). */
int api_soc_method_ok(enum api_soc_route r, const char *method);
/* The Allow header for a 405 on the route. */
const char *api_soc_allow(enum api_soc_route r);
/* 1 when the method on the route reads a JSON body. */
int api_soc_takes_body(enum api_soc_route r, const char *method);

struct api_soc_param {
	const char *name, *value;     /* value may be NULL ("?name") */
	size_t name_len, value_len;
};

struct api_soc_request {
	struct api_soc_target target;
	const char *method;
	const struct api_soc_param *params;
	size_t n_params;                 /* more than API_MAX_PARAMS: refused */
	const char *body;
	size_t body_len;
};

/* status and either body (JSON, on 2xx) or error/param/detail. */
struct api_soc_answer {
	unsigned status;
	struct buf body;                 /* caller inits, caller finis */
	const char *error;
	char param[129];                 /* "" when no one parameter is at fault */
	char detail[320];
};

/* Answers one request against db (NULL: 503). */
void api_soc_handle(struct soc_db *db, const struct api_soc_request *rq,
		    struct api_soc_answer *ans);

#endif
