/*
 * Structured logging to stderr: one call with level, module and key=value
 * fields, e.g.
 *   log_msg(LOG_WARN, "ingest", "event=parse_error input=%s reason=%s", ...);
 * Bytes that came from the network must pass through log_escape() first.
 * log_ratelimited() logs at most once per interval per key.
 */
#ifndef MAMORI_LOG_H
#define MAMORI_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_FATAL };

void log_set_level(enum log_level lvl);
int log_level_parse(const char *s, enum log_level *out);
void log_msg(enum log_level lvl, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Logs and exits with status 1: start-up failures and broken invariants only. */
void fatal(const char *module, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* Copies up to n bytes of s into out (size outsz) with non-printable bytes,
 * quotes and backslashes escaped as \xHH; returns out. */
const char *log_escape(const char *s, size_t n, char *out, size_t outsz);

/* Returns 1 when a message keyed by *last_us may be logged now (at most once
 * per interval_us), updating it; thread-safe. */
int log_ratelimit(long long *last_us, long long interval_us);

#endif
