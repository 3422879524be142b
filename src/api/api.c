/*
 * The HTTP API: libmicrohttpd with its own polling threads (epoll where the
 * library has it, a thread pool), so a slow search never stalls a sensor.
 *
 * Why it looks like this: every request is hostile until checked, so the
 * order is fixed and cheap first — request-target length, route, method,
 * declared body size, bearer token, then the route's own parameters (parsed
 * in api_params.c, a pure function). Every answer carries a Content-Type;
 * errors are JSON {"error":..,"detail":..}. The events array the store
 * produces is already JSON text and is spliced into the answer, not
 * re-parsed. Counters per route and status and a latency histogram per route
 * are kept in the core metrics table; the per-request state that times a
 * request is made by MHD's URI-log hook and freed by its completion hook.
 *
 * The SOC routes (/api/v1/alerts..., /api/v1/incidents...) are answered by
 * api_soc.c, a pure function of the request; this file gives them the same
 * checks in the same order and, for PATCH and POST, reads the JSON body
 * into a buffer bounded at 64 KiB before handing it over. The DDoS routes
 * (/api/v1/ddos/...) are answered by api_ddos.c the same way, and the mail
 * quarantine routes (/api/v1/mail/...) by api_mail.c; of those, the hold
 * links (/api/v1/mail/hold/...) are the only API routes without a bearer
 * token: the HMAC token in the link is checked by api_mail.c instead.
 */
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api/api_ddos.h"
#include "api/api_mail.h"
#include "api/api_params.h"
#include "api/api_soc.h"
#include "api/web_assets.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "store/store.h"

#ifndef MAMORI_VERSION
#define MAMORI_VERSION "0.0.0"
#endif

#define API_MAX_BODY ((size_t)1 << 20)      /* declared, on routes that read none */
#define API_MAX_ANSWER ((size_t)64 << 20)   /* one search answer */
#define API_MAX_METRICS ((size_t)8 << 20)
#define API_MAX_TOKENS 64
#define API_MAX_TOKEN_LEN 512
#define API_MAX_STATIC ((off_t)16 << 20)    /* one file under web_root */
#define API_CONN_MEMORY ((size_t)32 << 10)  /* per connection: headers + URL */

#define JSON_TYPE "application/json"
#define CSP "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

const struct conf_keyword api_keywords[] = {
	{ "listen", CONF_ADDR, offsetof(struct api_config, listen), 0, 0,
	  "127.0.0.1:8080", 0,
	  "address of the HTTP API and console; \"\" disables them" },
	{ "tokens", CONF_STRLIST, offsetof(struct api_config, tokens), 0, 0,
	  NULL, 1,
	  "bearer tokens accepted by the API (MAMORI_API_TOKEN is added; with neither, a token is generated into <data_dir>/api-token)" },
	{ "threads", CONF_INT, offsetof(struct api_config, threads), 1, 64,
	  "2", 0, "HTTP worker threads" },
	{ "web_root", CONF_STR, offsetof(struct api_config, web_root), 0, 0,
	  "", 0, "directory to serve the console from; \"\" = the built-in page" },
	{ "max_connections", CONF_INT,
	  offsetof(struct api_config, max_connections), 1, 100000, "256", 0,
	  "concurrent HTTP connections, all clients together" },
	{ "timeout", CONF_DURATION, offsetof(struct api_config, timeout), 1,
	  3600, "30s", 0, "idle time after which a connection is closed" },
	CONF_END
};

enum api_route {
	ROUTE_HEALTH,
	ROUTE_EVENTS,
	ROUTE_METRICS,
	ROUTE_STATIC,
	ROUTE_ALERTS,     /* /api/v1/alerts and /api/v1/alerts/{id} */
	ROUTE_INCIDENTS,  /* /api/v1/incidents, .../{id}, .../{id}/comments */
	ROUTE_DDOS_ATTACKS,      /* /api/v1/ddos/attacks and .../{id} */
	ROUTE_DDOS_TOP,          /* /api/v1/ddos/top */
	ROUTE_DDOS_MITIGATIONS,  /* /api/v1/ddos/mitigations */
	ROUTE_DDOS_EXPORTERS,    /* /api/v1/ddos/exporters */
	ROUTE_MAIL_QUARANTINE,   /* /api/v1/mail/quarantine, .../{id}, .../{id}/release */
	ROUTE_MAIL_HOLD,         /* /api/v1/mail/hold/{id}/cancel|send-now, no bearer token */
	ROUTE_OTHER,      /* 404s and requests refused before routing */
	ROUTE_COUNT
};

static const char *const route_labels[ROUTE_COUNT] = {
	"/api/v1/health", "/api/v1/events", "/metrics", "static",
	"/api/v1/alerts", "/api/v1/incidents", "/api/v1/ddos/attacks", "/api/v1/ddos/top",
	"/api/v1/ddos/mitigations", "/api/v1/ddos/exporters", "/api/v1/mail/quarantine",
	"/api/v1/mail/hold", "other",
};

/* Every status the API answers with; anything else is counted as "other". */
static const unsigned status_codes[] = {
	200, 201, 202, 400, 401, 403, 404, 405, 409, 410, 413, 414, 500, 502, 503,
};
#define N_STATUS (sizeof(status_codes) / sizeof(status_codes[0]) + 1)

struct token_set {
	char **v;
	size_t *len;
	size_t n;
};

struct api {
	struct MHD_Daemon *daemon;
	struct store *store;
	struct soc_db *_Atomic soc;      /* NULL: the SOC routes answer 503 */
	const struct api_ddos_ctx *_Atomic ddos;   /* NULL: the DDoS routes answer 503 */
	struct quarantine *_Atomic mail;  /* NULL: the mail routes answer 503 */
	struct token_set *tokens;        /* swapped whole on reload */
	pthread_rwlock_t tokens_lock;
	int web_root_fd;                 /* -1: serve the built-in assets */
	int port;
	long long auth_log_last;
	/* Registered on first use; metric_get() returns the same series for
	 * the same labels, so a race only costs a second lookup. */
	struct metric *_Atomic requests[ROUTE_COUNT][N_STATUS];
	struct metric *latency[ROUTE_COUNT];
	struct metric *auth_failures;
};

/* Per request, made in the URI-log hook, freed in the completion hook. */
struct api_req {
	int64_t start_us;
	size_t target_len;       /* the raw request target, query included */
	enum api_route route;
	unsigned status;         /* 0 until a response is queued */
	struct api_soc_target soc;   /* for ROUTE_ALERTS / ROUTE_INCIDENTS */
	struct api_ddos_target ddos; /* for the ROUTE_DDOS_* */
	struct api_mail_target mail; /* for the ROUTE_MAIL_* */
	int body_open;           /* reading a PATCH/POST body into body */
	int body_too_large;
	struct buf body;
};

static struct metric *request_counter(struct api *a, enum api_route route,
				      unsigned status)
{
	struct metric *m;
	char labels[96];
	size_t i;

	for (i = 0; i < N_STATUS - 1 && status_codes[i] != status; i++)
		;
	m = atomic_load_explicit(&a->requests[route][i], memory_order_acquire);
	if (m)
		return m;
	if (i < N_STATUS - 1)
		snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%u\"",
			 route_labels[route], status);
	else
		snprintf(labels, sizeof(labels), "route=\"%s\",code=\"other\"",
			 route_labels[route]);
	m = metric_get("mamori_api_requests_total",
		       "HTTP API requests by route and status", METRIC_COUNTER,
		       labels);
	atomic_store_explicit(&a->requests[route][i], m, memory_order_release);
	return m;
}

/* Queues a response whose body is borrowed (static) or owned by MHD
 * (must_free: malloc'ed, released with free()). Adds the headers every
 * answer carries. */
static enum MHD_Result reply(struct MHD_Connection *c, struct api_req *r,
			     unsigned status, const char *ctype, void *body,
			     size_t len, int must_free, const char *extra_name,
			     const char *extra_value)
{
	struct MHD_Response *resp;
	enum MHD_Result ret = MHD_NO;

	resp = MHD_create_response_from_buffer(len, body,
		must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		if (must_free)
			free(body);
		goto out;
	}
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES ||
	    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") != MHD_YES ||
	    (extra_name && MHD_add_response_header(resp, extra_name, extra_value) != MHD_YES))
		goto out;
	if (r->route == ROUTE_STATIC) {
		if (MHD_add_response_header(resp, "Content-Security-Policy", CSP) != MHD_YES ||
		    MHD_add_response_header(resp, "X-Frame-Options", "DENY") != MHD_YES ||
		    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") != MHD_YES ||
		    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") != MHD_YES)
			goto out;
	} else if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES) {
		goto out;
	}
	ret = MHD_queue_response(c, status, resp);
	if (ret == MHD_YES)
		r->status = status;
out:
	if (resp)
		MHD_destroy_response(resp);
	return ret;
}

/* A JSON error: {"error":"...","detail":"..."} plus "parameter" when one
 * parameter is at fault. */
static enum MHD_Result reply_error(struct MHD_Connection *c, struct api_req *r,
				   unsigned status, const char *error,
				   const char *param, const char *detail,
				   const char *extra_name,
				   const char *extra_value)
{
	struct buf b;
	int rc;

	buf_init(&b, 64 << 10);
	rc = buf_puts(&b, "{\"error\":\"");
	rc = rc ? rc : buf_json_escape(&b, error, strlen(error));
	if (param) {
		rc = rc ? rc : buf_puts(&b, "\",\"parameter\":\"");
		rc = rc ? rc : buf_json_escape(&b, param, strlen(param));
	}
	rc = rc ? rc : buf_puts(&b, "\",\"detail\":\"");
	if (param) {
		rc = rc ? rc : buf_json_escape(&b, param, strlen(param));
		rc = rc ? rc : buf_puts(&b, ": ");
	}
	rc = rc ? rc : buf_json_escape(&b, detail, strlen(detail));
	rc = rc ? rc : buf_puts(&b, "\"}\n");
	if (rc) {
		buf_fini(&b);
		return MHD_NO;
	}
	return reply(c, r, status, JSON_TYPE, b.p, b.len, 1, extra_name,
		     extra_value);
}

/* Constant time in the candidate's bytes: every configured token is compared
 * over its whole length whatever the candidate holds, and the loop never
 * exits early, so timing tells nothing about how much matched. */
static int token_ok(struct api *a, const char *cand, size_t n)
{
	unsigned ok = 0;

	pthread_rwlock_rdlock(&a->tokens_lock);
	for (size_t t = 0; t < a->tokens->n; t++) {
		const unsigned char *tok = (const unsigned char *)a->tokens->v[t];
		size_t tl = a->tokens->len[t];
		unsigned diff = (unsigned)(tl ^ n) != 0;

		for (size_t i = 0; i < tl; i++) {
			unsigned char ch = i < n ? (unsigned char)cand[i] : 0;
			diff |= (unsigned)(ch ^ tok[i]);
		}
		ok |= diff == 0;
	}
	pthread_rwlock_unlock(&a->tokens_lock);
	return ok != 0;
}

/* 0 when the request carries "Authorization: Bearer <a configured token>". */
static int check_auth(struct api *a, struct MHD_Connection *c)
{
	const char *h = NULL;
	size_t n = 0;

	if (MHD_lookup_connection_value_n(c, MHD_HEADER_KIND,
					  MHD_HTTP_HEADER_AUTHORIZATION,
					  strlen(MHD_HTTP_HEADER_AUTHORIZATION),
					  &h, &n) != MHD_YES || h == NULL)
		return M_EAUTH;
	if (n < 7 || strncasecmp(h, "Bearer ", 7) != 0)
		return M_EAUTH;
	h += 7;
	n -= 7;
	while (n && (*h == ' ' || *h == '\t')) {
		h++;
		n--;
	}
	while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	if (n == 0 || n > API_MAX_TOKEN_LEN || !token_ok(a, h, n))
		return M_EAUTH;
	return 0;
}

static enum MHD_Result handle_health(struct MHD_Connection *c,
				     struct api_req *r)
{
	static const char body[] =
		"{\"status\":\"ok\",\"version\":\"" MAMORI_VERSION "\"}\n";

	return reply(c, r, MHD_HTTP_OK, JSON_TYPE, (void *)body,
		     sizeof(body) - 1, 0, NULL, NULL);
}

static enum MHD_Result handle_metrics(struct MHD_Connection *c,
				      struct api_req *r)
{
	static const char type[] = "text/plain; version=0.0.4; charset=utf-8";
	struct buf b;

	buf_init(&b, API_MAX_METRICS);
	if (metrics_render(&b) < 0) {
		buf_fini(&b);
		return reply_error(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
				   "internal error", NULL,
				   "metrics could not be rendered", NULL, NULL);
	}
	if (b.len == 0) {
		buf_fini(&b);
		return reply(c, r, MHD_HTTP_OK, type, (void *)"", 0, 0, NULL,
			     NULL);
	}
	return reply(c, r, MHD_HTTP_OK, type, b.p, b.len, 1, NULL, NULL);
}

struct param_walk {
	struct api_search *s;
	int rc;
};

static enum MHD_Result param_cb(void *cls, enum MHD_ValueKind kind,
				const char *key, size_t key_size,
				const char *value, size_t value_size)
{
	struct param_walk *w = cls;

	(void)kind;
	w->rc = api_search_param(w->s, key, key_size, value, value_size);
	return w->rc == 0 ? MHD_YES : MHD_NO;
}

static enum MHD_Result handle_events(struct api *a, struct MHD_Connection *c,
				     struct api_req *r)
{
	struct api_search *s;
	struct param_walk w;
	struct buf events, out;
	uint64_t total = 0;
	enum MHD_Result ret;
	int rc;

	buf_init(&events, API_MAX_ANSWER - 256);
	buf_init(&out, API_MAX_ANSWER);
	/* About 10 KiB: on the heap, not on a pool thread's stack. */
	s = malloc(sizeof(*s));
	if (s == NULL) {
		ret = reply_error(c, r, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "out of memory", NULL, "try again", NULL, NULL);
		goto out;
	}
	api_search_init(s);
	w.s = s;
	w.rc = 0;
	MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, param_cb, &w);
	if (w.rc == 0)
		w.rc = api_search_finish(s);
	if (w.rc) {
		ret = reply_error(c, r, MHD_HTTP_BAD_REQUEST, "bad parameter",
				  s->err_param, s->err_detail, NULL, NULL);
		goto out;
	}
	rc = a->store->ops->search(a->store, &s->q, &events, &total);
	if (rc == M_EPARSE || rc == M_EINVAL) {
		ret = reply_error(c, r, MHD_HTTP_BAD_REQUEST, "bad parameter",
				  s->q.text ? "q" : NULL,
				  s->q.text ? "the full-text query is not valid (quote terms with \"...\")"
					    : "the store refused the query",
				  NULL, NULL);
		goto out;
	}
	if (rc == M_ELIMIT) {
		ret = reply_error(c, r, MHD_HTTP_BAD_REQUEST, "bad parameter",
				  "limit", "the answer would be too large; ask for fewer events",
				  NULL, NULL);
		goto out;
	}
	if (rc < 0) {
		log_msg(LOG_ERROR, "api", "event=search_failed err=%s", err_str(rc));
		ret = reply_error(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "internal error", NULL, "the search failed",
				  NULL, NULL);
		goto out;
	}
	rc = buf_printf(&out, "{\"total\":%" PRIu64 ",\"limit\":%" PRIu32
			",\"offset\":%" PRIu64 ",\"events\":", total, s->q.limit,
			s->q.offset);
	if (rc == 0 && events.len == 0)
		rc = buf_puts(&out, "[]");
	else if (rc == 0)
		rc = buf_append(&out, events.p, events.len);
	if (rc == 0)
		rc = buf_puts(&out, "}\n");
	if (rc) {
		ret = reply_error(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "internal error", NULL,
				  "the answer could not be built", NULL, NULL);
		goto out;
	}
	ret = reply(c, r, MHD_HTTP_OK, JSON_TYPE, out.p, out.len, 1, NULL, NULL);
	out.p = NULL;   /* MHD owns it now */
out:
	free(s);
	buf_fini(&events);
	buf_fini(&out);
	return ret;
}

struct soc_param_walk {
	struct api_soc_param v[API_MAX_PARAMS + 1];
	size_t n;
};

static enum MHD_Result soc_param_cb(void *cls, enum MHD_ValueKind kind,
				    const char *key, size_t key_size,
				    const char *value, size_t value_size)
{
	struct soc_param_walk *w = cls;

	(void)kind;
	if (w->n > API_MAX_PARAMS)
		return MHD_NO;   /* one past the limit: api_soc refuses it */
	w->v[w->n].name = key;
	w->v[w->n].name_len = key_size;
	w->v[w->n].value = value;
	w->v[w->n].value_len = value ? value_size : 0;
	w->n++;
	return MHD_YES;
}

static int is_ddos(enum api_route route)
{
	return route == ROUTE_DDOS_ATTACKS || route == ROUTE_DDOS_TOP ||
	       route == ROUTE_DDOS_MITIGATIONS || route == ROUTE_DDOS_EXPORTERS;
}

static int is_mail(enum api_route route)
{
	return route == ROUTE_MAIL_QUARANTINE || route == ROUTE_MAIL_HOLD;
}

static int is_routed(enum api_route route)
{
	return route == ROUTE_ALERTS || route == ROUTE_INCIDENTS || is_ddos(route) ||
	       is_mail(route);
}

/* The SOC, DDoS and mail routes: the query parameters (and the body read so
 * far) go to api_soc.c, api_ddos.c or api_mail.c, whose answer is sent as it
 * is. */
static enum MHD_Result handle_soc(struct api *a, struct MHD_Connection *c,
				  struct api_req *r, const char *method)
{
	struct soc_param_walk *w;
	struct api_soc_request rq;
	struct api_soc_answer ans;
	const char *ctype = JSON_TYPE;
	enum MHD_Result ret;

	/* About 3 KiB of parameter slots: on the heap, not a pool stack. */
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return reply_error(c, r, MHD_HTTP_SERVICE_UNAVAILABLE,
				   "out of memory", NULL, "try again", NULL, NULL);
	MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, soc_param_cb, w);
	buf_init(&ans.body, API_MAX_ANSWER);
	if (is_ddos(r->route)) {
		struct api_ddos_request dq = {
			.target = r->ddos, .method = method, .params = w->v, .n_params = w->n,
			.body = r->body.p, .body_len = r->body.len,
		};
		api_ddos_handle(atomic_load_explicit(&a->ddos, memory_order_acquire), &dq, &ans);
	} else if (is_mail(r->route)) {
		struct api_mail_request mq = {
			.target = r->mail, .method = method, .params = w->v, .n_params = w->n,
		};
		api_mail_handle(atomic_load_explicit(&a->mail, memory_order_acquire), &mq, &ans,
				&ctype);
	} else {
		memset(&rq, 0, sizeof(rq));
		rq.target = r->soc;
		rq.method = method;
		rq.params = w->v;
		rq.n_params = w->n;
		rq.body = r->body.p;
		rq.body_len = r->body.len;
		api_soc_handle(atomic_load_explicit(&a->soc, memory_order_acquire), &rq, &ans);
	}
	if (ans.status >= 200 && ans.status < 300) {
		ret = reply(c, r, ans.status, ctype, ans.body.p, ans.body.len,
			    1, NULL, NULL);
		ans.body.p = NULL;   /* MHD owns it now */
	} else {
		if (ans.status == MHD_HTTP_INTERNAL_SERVER_ERROR)
			log_msg(LOG_ERROR, "api", "event=request_failed route=%s",
				route_labels[r->route]);
		ret = reply_error(c, r, ans.status ? ans.status : 500,
				  ans.error ? ans.error : "internal error",
				  ans.param[0] ? ans.param : NULL,
				  ans.detail[0] ? ans.detail : "no answer", NULL, NULL);
	}
	buf_fini(&ans.body);
	free(w);
	return ret;
}

static const char *type_for(const char *path)
{
	static const struct { const char *ext, *type; } types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
		{ ".json", "application/json" },
		{ ".txt", "text/plain; charset=utf-8" },
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return NULL;
}

/* A path under web_root is safe when every segment is made of ordinary
 * characters and none starts with a dot: no "..", no hidden files. */
static int static_path_ok(const char *path)
{
	size_t n = strlen(path);

	if (n < 2 || n > 256 || path[0] != '/')
		return 0;
	for (size_t i = 1; i < n; i++) {
		char ch = path[i];
		if (ch == '/' && (path[i - 1] == '/' || i + 1 == n))
			return 0;
		if (ch == '.' && path[i - 1] == '/')
			return 0;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == '-' || ch == '/'))
			return 0;
	}
	return 1;
}

/* MHD_YES/MHD_NO when answered, -1 when there is no such file. */
static int serve_static(struct api *a, struct MHD_Connection *c,
			struct api_req *r, const char *path)
{
	struct MHD_Response *resp = NULL;
	const char *type;
	struct stat st;
	int fd = -1, ret = -1;

	if (strcmp(path, "/") == 0)
		path = "/index.html";
	if (a->web_root_fd < 0) {
		for (const struct web_asset *w = web_assets; w->path; w++)
			if (strcmp(w->path, path) == 0)
				return reply(c, r, MHD_HTTP_OK, w->content_type,
					     (void *)w->data, w->len, 0, NULL,
					     NULL);
		return -1;
	}
	if (!static_path_ok(path) || (type = type_for(path)) == NULL)
		return -1;
	fd = openat(a->web_root_fd, path + 1,
		    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		goto out;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > API_MAX_STATIC)
		goto out;
	/* MHD wants a blocking descriptor; O_NONBLOCK only kept open() from
	 * hanging on a FIFO, which S_ISREG has ruled out. */
	if (fcntl(fd, F_SETFL, 0) != 0)
		goto out;
	resp = MHD_create_response_from_fd((size_t)st.st_size, fd);
	if (resp == NULL)
		goto out;
	fd = -1;   /* the response owns it */
	ret = MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES ||
	    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") != MHD_YES ||
	    MHD_add_response_header(resp, "Content-Security-Policy", CSP) != MHD_YES ||
	    MHD_add_response_header(resp, "X-Frame-Options", "DENY") != MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") != MHD_YES)
		goto out;
	ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
	if (ret == MHD_YES)
		r->status = MHD_HTTP_OK;
out:
	if (resp)
		MHD_destroy_response(resp);
	if (fd >= 0)
		close(fd);
	return ret;
}

static enum api_route route_of(const char *url, struct api_soc_target *soc,
			       struct api_ddos_target *ddos, struct api_mail_target *mail)
{
	switch (api_mail_match(url, mail)) {
	case API_MAIL_LIST:
	case API_MAIL_ITEM:
	case API_MAIL_RELEASE:
		return ROUTE_MAIL_QUARANTINE;
	case API_MAIL_HOLD:
		return ROUTE_MAIL_HOLD;
	default:
		break;
	}
	switch (api_ddos_match(url, ddos)) {
	case API_DDOS_ATTACKS:
	case API_DDOS_ATTACK:
		return ROUTE_DDOS_ATTACKS;
	case API_DDOS_TOP:
		return ROUTE_DDOS_TOP;
	case API_DDOS_MITIGATIONS:
		return ROUTE_DDOS_MITIGATIONS;
	case API_DDOS_EXPORTERS:
		return ROUTE_DDOS_EXPORTERS;
	default:
		break;
	}
	switch (api_soc_match(url, soc)) {
	case API_SOC_ALERTS:
	case API_SOC_ALERT:
		return ROUTE_ALERTS;
	case API_SOC_INCIDENTS:
	case API_SOC_INCIDENT:
	case API_SOC_COMMENTS:
		return ROUTE_INCIDENTS;
	default:
		break;
	}
	if (strcmp(url, "/api/v1/health") == 0)
		return ROUTE_HEALTH;
	if (strcmp(url, "/api/v1/events") == 0)
		return ROUTE_EVENTS;
	if (strcmp(url, "/metrics") == 0)
		return ROUTE_METRICS;
	if (strncmp(url, "/api/", 5) == 0 || strcmp(url, "/api") == 0)
		return ROUTE_OTHER;
	return ROUTE_STATIC;
}

/* The declared body size, 0 when none; -1 when it is not a number. */
static long long content_length(struct MHD_Connection *c)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_CONTENT_LENGTH);
	long long n = 0;

	if (v == NULL)
		return MHD_lookup_connection_value(c, MHD_HEADER_KIND,
			MHD_HTTP_HEADER_TRANSFER_ENCODING) ? LLONG_MAX : 0;
	for (; *v; v++) {
		if (*v < '0' || *v > '9' || n > LLONG_MAX / 10 - 10)
			return -1;
		n = n * 10 + (*v - '0');
	}
	return n;
}

static enum MHD_Result api_handle(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	struct api *a = cls;
	struct api_req *r = *req_cls;
	int is_get, rc, takes_body = 0;
	long long body;
	size_t body_max;

	(void)version;
	if (r == NULL)
		return MHD_NO;   /* the URI hook could not allocate: drop */
	if (r->status) {
		/* Answered already; MHD is draining a body we do not want. */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->body_open) {
		/* A SOC PATCH/POST that passed every check: collect the body
		 * (bounded), then answer once MHD says it is complete. */
		if (*upload_data_size) {
			if (!r->body_too_large &&
			    buf_append(&r->body, upload_data, *upload_data_size) != 0)
				r->body_too_large = 1;
			*upload_data_size = 0;
			return MHD_YES;
		}
		if (r->body_too_large)
			return reply_error(c, r, MHD_HTTP_CONTENT_TOO_LARGE,
					   "body too large", NULL,
					   "request bodies are limited to 64 KiB",
					   NULL, NULL);
		return handle_soc(a, c, r, method);
	}
	r->route = route_of(url, &r->soc, &r->ddos, &r->mail);
	if (r->target_len > API_MAX_URL) {
		r->route = ROUTE_OTHER;
		return reply_error(c, r, MHD_HTTP_URI_TOO_LONG, "uri too long",
				   NULL, "the request target is limited to 8192 bytes",
				   NULL, NULL);
	}
	is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		 strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	if (r->route == ROUTE_ALERTS || r->route == ROUTE_INCIDENTS) {
		if (!api_soc_method_ok(r->soc.route, method))
			return reply_error(c, r, MHD_HTTP_METHOD_NOT_ALLOWED,
					   "method not allowed", NULL,
					   "see the Allow header",
					   MHD_HTTP_HEADER_ALLOW,
					   api_soc_allow(r->soc.route));
		takes_body = api_soc_takes_body(r->soc.route, method);
	} else if (is_ddos(r->route)) {
		if (!api_ddos_method_ok(r->ddos.route, method))
			return reply_error(c, r, MHD_HTTP_METHOD_NOT_ALLOWED,
					   "method not allowed", NULL,
					   "see the Allow header",
					   MHD_HTTP_HEADER_ALLOW,
					   api_ddos_allow(r->ddos.route));
		takes_body = api_ddos_takes_body(r->ddos.route, method);
	} else if (is_mail(r->route)) {
		if (!api_mail_method_ok(r->mail.route, method))
			return reply_error(c, r, MHD_HTTP_METHOD_NOT_ALLOWED,
					   "method not allowed", NULL,
					   "see the Allow header",
					   MHD_HTTP_HEADER_ALLOW,
					   api_mail_allow(r->mail.route));
	} else if (!is_get) {
		if (r->route == ROUTE_STATIC)
			r->route = ROUTE_OTHER;
		return reply_error(c, r, MHD_HTTP_METHOD_NOT_ALLOWED,
				   "method not allowed", NULL,
				   "this resource answers GET and HEAD",
				   MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	}
	/* Only SOC PATCH/POST read a body. Elsewhere one that is declared
	 * too large (or chunked, or unreadable) is refused before a byte of
	 * it is read; a small one is left unread and MHD closes the
	 * connection after the answer. */
	body = content_length(c);
	body_max = takes_body ? API_SOC_MAX_BODY : API_MAX_BODY;
	if (body < 0 || (unsigned long long)body > body_max) {
		if (r->route == ROUTE_STATIC)
			r->route = ROUTE_OTHER;
		return reply_error(c, r, MHD_HTTP_CONTENT_TOO_LARGE,
				   "body too large", NULL,
				   takes_body ? "request bodies are limited to 64 KiB (with a Content-Length)"
					      : "request bodies are limited to 1 MiB",
				   NULL, NULL);
	}
	if (r->route == ROUTE_STATIC) {
		rc = serve_static(a, c, r, url);
		if (rc >= 0)
			return (enum MHD_Result)rc;
		r->route = ROUTE_OTHER;
	}
	if (r->route == ROUTE_OTHER)
		return reply_error(c, r, MHD_HTTP_NOT_FOUND, "not found", NULL,
				   "no such resource", NULL, NULL);
	if (r->route == ROUTE_HEALTH)
		return handle_health(c, r);
	if (r->route == ROUTE_MAIL_HOLD && api_mail_public(r->mail.route))
		return handle_soc(a, c, r, method);   /* the link's token is the credential */
	if (check_auth(a, c) != 0) {
		metric_add(a->auth_failures, 1);
		if (log_ratelimit(&a->auth_log_last, 10 * 1000000LL))
			log_msg(LOG_WARN, "api", "event=auth_failed route=%s",
				route_labels[r->route]);
		return reply_error(c, r, MHD_HTTP_UNAUTHORIZED, "unauthorized",
				   NULL, "send Authorization: Bearer <token>",
				   MHD_HTTP_HEADER_WWW_AUTHENTICATE,
				   "Bearer realm=\"mamori\"");
	}
	if (r->route == ROUTE_METRICS)
		return handle_metrics(c, r);
	if (is_routed(r->route)) {
		if (takes_body) {
			buf_init(&r->body, API_SOC_MAX_BODY);
			r->body_open = 1;
			return MHD_YES;   /* MHD calls again with the body */
		}
		return handle_soc(a, c, r, method);
	}
	return handle_events(a, c, r);
}

static void *api_uri_hook(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct api_req *r = calloc(1, sizeof(*r));

	(void)cls;
	(void)c;
	if (r == NULL)
		return NULL;
	r->start_us = clock_mono_us();
	r->target_len = strnlen(uri, API_MAX_URL + 1);
	r->route = ROUTE_OTHER;
	return r;
}

static void api_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			  enum MHD_RequestTerminationCode toe)
{
	struct api *a = cls;
	struct api_req *r = *req_cls;
	int64_t us;

	(void)c;
	(void)toe;
	if (r == NULL)
		return;
	if (r->status) {
		us = clock_mono_us() - r->start_us;
		metric_add(request_counter(a, r->route, r->status), 1);
		metric_observe_us(a->latency[r->route], us > 0 ? (uint64_t)us : 0);
	}
	buf_fini(&r->body);
	free(r);
	*req_cls = NULL;
}

/* libmicrohttpd's own complaints (bad requests it refused, socket errors). */
static void api_mhd_log(void *cls, const char *fmt, va_list ap)
{
	static long long last;
	char msg[256], esc[512];
	int n;

	(void)cls;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	n = (int)strnlen(msg, sizeof(msg));
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		n--;
	if (log_ratelimit(&last, 1000000LL))
		log_msg(LOG_WARN, "api", "event=mhd msg=\"%s\"",
			log_escape(msg, (size_t)n, esc, sizeof(esc)));
}

static void token_set_free(struct token_set *ts)
{
	if (ts == NULL)
		return;
	for (size_t i = 0; i < ts->n; i++) {
		/* Tokens are secrets: do not leave them in freed memory. */
		explicit_bzero(ts->v[i], ts->len[i]);
		free(ts->v[i]);
	}
	free(ts->v);
	free(ts->len);
	free(ts);
}

/* A validated copy of the configured tokens. Owner: the caller. */
static int token_set_new(const struct conf_list *list, struct token_set **out)
{
	size_t n = list->n;
	struct token_set *ts;
	int rc = M_ENOMEM;

	*out = NULL;
	if (n == 0 || n > API_MAX_TOKENS) {
		log_msg(LOG_ERROR, "api", "event=config reason=\"%s\"",
			n ? "too many tokens (at most 64)" : "no API token");
		return M_EINVAL;
	}
	ts = calloc(1, sizeof(*ts));
	if (ts == NULL)
		return M_ENOMEM;
	ts->v = calloc(n, sizeof(*ts->v));
	ts->len = calloc(n, sizeof(*ts->len));
	if (ts->v == NULL || ts->len == NULL)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		size_t len = list->v[i] ? strlen(list->v[i]) : 0;

		if (len == 0 || len > API_MAX_TOKEN_LEN) {
			log_msg(LOG_ERROR, "api",
				"event=config reason=\"token %zu is empty or longer than 512 bytes\"",
				i + 1);
			rc = M_EINVAL;
			goto fail;
		}
		if (len < 16)
			log_msg(LOG_WARN, "api",
				"event=weak_token token=%zu length=%zu hint=\"use 32 random characters or more\"",
				i + 1, len);
		ts->v[i] = strdup(list->v[i]);
		if (ts->v[i] == NULL)
			goto fail;
		ts->len[i] = len;
		ts->n = i + 1;
	}
	*out = ts;
	return 0;
fail:
	token_set_free(ts);
	return rc;
}

int api_set_tokens(struct api *a, const struct conf_list *tokens)
{
	struct token_set *ts, *old;
	int rc;

	if ((rc = token_set_new(tokens, &ts)) != 0)
		return rc;
	pthread_rwlock_wrlock(&a->tokens_lock);
	old = a->tokens;
	a->tokens = ts;
	pthread_rwlock_unlock(&a->tokens_lock);
	token_set_free(old);
	log_msg(LOG_INFO, "api", "event=tokens_reloaded count=%zu", ts->n);
	return 0;
}

/* Resolves the listen address to one socket address (numeric or a name such
 * as localhost; "" or "*" as host = every interface). */
static int resolve_listen(const char *listen, struct sockaddr_storage *ss,
			  socklen_t *sslen)
{
	struct addrinfo hints, *res = NULL;
	char host[256], port_s[16];
	int port, rc;

	if (conf_split_addr(listen, host, sizeof(host), &port) != 0 ||
	    port < 0 || port > 65535) {
		log_msg(LOG_ERROR, "api", "event=config reason=\"bad listen address\"");
		return M_EINVAL;
	}
	snprintf(port_s, sizeof(port_s), "%d", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] && strcmp(host, "*") != 0 ? host : NULL, port_s,
			 &hints, &res);
	if (rc != 0 || res == NULL || res->ai_addrlen > sizeof(*ss)) {
		log_msg(LOG_ERROR, "api", "event=config reason=\"cannot resolve listen host\" detail=\"%s\"",
			rc ? gai_strerror(rc) : "no address");
		if (res)
			freeaddrinfo(res);
		return M_EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

void api_set_soc(struct api *a, struct soc_db *soc)
{
	if (a)
		atomic_store_explicit(&a->soc, soc, memory_order_release);
}

void api_set_ddos(struct api *a, const struct api_ddos_ctx *ctx)
{
	if (a)
		atomic_store_explicit(&a->ddos, ctx, memory_order_release);
}

void api_set_mail(struct api *a, struct quarantine *q)
{
	if (a)
		atomic_store_explicit(&a->mail, q, memory_order_release);
}

int api_port(const struct api *a)
{
	return a ? a->port : 0;
}

void api_stop(struct api *a)
{
	if (a == NULL)
		return;
	if (a->daemon)
		MHD_stop_daemon(a->daemon);
	token_set_free(a->tokens);
	pthread_rwlock_destroy(&a->tokens_lock);
	if (a->web_root_fd >= 0)
		close(a->web_root_fd);
	free(a);
}

int api_start(const struct api_config *cfg, struct store *store,
	      struct api **out)
{
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	const union MHD_DaemonInfo *info;
	struct api *a;
	unsigned flags;
	int rc;

	*out = NULL;
	if (cfg->listen == NULL || cfg->listen[0] == '\0' || store == NULL ||
	    store->ops == NULL || store->ops->search == NULL)
		return M_EINVAL;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return M_ENOMEM;
	a->store = store;
	a->web_root_fd = -1;
	pthread_rwlock_init(&a->tokens_lock, NULL);
	if ((rc = token_set_new(&cfg->tokens, &a->tokens)) != 0)
		goto fail;
	if ((rc = resolve_listen(cfg->listen, &ss, &sslen)) != 0)
		goto fail;
	if (cfg->web_root && cfg->web_root[0]) {
		a->web_root_fd = open(cfg->web_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (a->web_root_fd < 0) {
			log_msg(LOG_ERROR, "api", "event=config reason=\"cannot open web_root\" errno=%d",
				errno);
			rc = M_EINVAL;
			goto fail;
		}
	}
	for (int i = 0; i < ROUTE_COUNT; i++) {
		char labels[64];

		snprintf(labels, sizeof(labels), "route=\"%s\"", route_labels[i]);
		a->latency[i] = metric_get("mamori_api_request_duration_seconds",
					   "HTTP API request latency by route",
					   METRIC_HISTOGRAM, labels);
	}
	a->auth_failures = metric_get("mamori_api_auth_failures_total",
				      "API requests refused for a missing or wrong token",
				      METRIC_COUNTER, NULL);

	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES
		 ? MHD_USE_EPOLL : MHD_USE_POLL;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	a->daemon = MHD_start_daemon(flags, 0, NULL, NULL, api_handle, a,
		MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_THREAD_POOL_SIZE,
			(unsigned)(cfg->threads > 1 ? cfg->threads : 1),
		MHD_OPTION_CONNECTION_LIMIT,
			(unsigned)(cfg->max_connections > 0 ? cfg->max_connections : 256),
		MHD_OPTION_CONNECTION_TIMEOUT,
			(unsigned)(cfg->timeout > 0 ? cfg->timeout : 30),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, API_CONN_MEMORY,
		MHD_OPTION_URI_LOG_CALLBACK, api_uri_hook, a,
		MHD_OPTION_NOTIFY_COMPLETED, api_completed, a,
		MHD_OPTION_END);
	if (a->daemon == NULL) {
		log_msg(LOG_ERROR, "api", "event=start_failed listen=%s reason=\"cannot listen (address in use?)\"",
			cfg->listen);
		rc = M_EIO;
		goto fail;
	}
	info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
	a->port = info ? info->port : 0;
	log_msg(LOG_INFO, "api", "event=listening listen=%s port=%d threads=%lld",
		cfg->listen, a->port, (long long)cfg->threads);
	*out = a;
	return 0;
fail:
	api_stop(a);
	return rc;
}
