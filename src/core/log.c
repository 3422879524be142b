/*
 * Logging: one line per call on stderr,
 *   2026-11-25T18:33:33.123Z level=warn module=ingest event=... key=value
 * written with a single write() so lines from threads do not interleave.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static _Atomic int log_min = LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error", "fatal" };

void log_set_level(enum log_level lvl)
{
	atomic_store(&log_min, (int)lvl);
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (int i = 0; i <= LOG_FATAL; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -1;
}

static void log_vwrite(enum log_level lvl, const char *module, const char *fmt,
		       va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	int n, m;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
		     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s module=%s ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_names[lvl],
		     module);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void log_msg(enum log_level lvl, const char *module, const char *fmt, ...)
{
	va_list ap;

	if ((int)lvl < atomic_load_explicit(&log_min, memory_order_relaxed))
		return;
	va_start(ap, fmt);
	log_vwrite(lvl, module, fmt, ap);
	va_end(ap);
}

void fatal(const char *module, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_FATAL, module, fmt, ap);
	va_end(ap);
	exit(1);
}

const char *log_escape(const char *s, size_t n, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (outsz == 0)
		return out;
	for (size_t i = 0; i < n && o + 5 < outsz; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

int log_ratelimit(long long *last_us, long long interval_us)
{
	struct timespec ts;
	long long now, prev;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	prev = __atomic_load_n(last_us, __ATOMIC_RELAXED);
	if (prev != 0 && now - prev < interval_us)
		return 0;
	return __atomic_compare_exchange_n(last_us, &prev, now, 0,
					   __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}
