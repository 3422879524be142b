/*
 * clamd: a client for ClamAV's daemon — INSTREAM scans, PING, VERSION —
 * over a unix socket or TCP.
 *
 * Why our own client: the protocol is four commands and a length-prefixed
 * stream; linking libclamav would put the signature engine (and its
 * memory) inside the milter. Each call opens one connection, so any
 * number of threads may scan at once; every connect, write and read has a
 * deadline, so a stuck clamd turns into an error (the milter tempfails)
 * instead of a stuck mail.
 *
 * The protocol: "zINSTREAM\0", then chunks (4-byte big-endian length, the
 * bytes), then a zero length; the answer is "stream: OK",
 * "stream: <Name> FOUND" or "<why> ERROR", NUL-terminated.
 */
#ifndef MAMORI_MAIL_CLAMD_H
#define MAMORI_MAIL_CLAMD_H

#include <stddef.h>

struct clamd_cfg {
	/* "/run/clamav/clamd.ctl", "unix:/path", "host:port", "[v6]:port",
	 * or "tcp:host:port" */
	const char *addr;
	int connect_timeout_ms; /* 0: 2000 */
	int io_timeout_ms;      /* per read or write; 0: 30000 */
	size_t max_stream;      /* refuse bigger data ourselves; 0: no limit
				 * (clamd's StreamMaxLength still holds) */
	size_t chunk;           /* bytes per INSTREAM chunk; 0: 64 KiB */
};

enum clamd_status {
	CLAMD_CLEAN = 0,
	CLAMD_INFECTED,
	CLAMD_ERROR,   /* no answer, a bad answer, a timeout: tempfail */
	CLAMD_TOOBIG,  /* over max_stream or clamd's StreamMaxLength */
};

struct clamd_result {
	enum clamd_status status;
	char name[128];   /* the signature, when infected */
	char err[160];    /* why, when an error */
};

/* Scans len bytes. Returns the status (also in r->status). */
enum clamd_status clamd_scan(const struct clamd_cfg *cfg, const void *data,
			     size_t len, struct clamd_result *r);
/* 0 when clamd answers PONG, else M_EIO / M_EAGAIN (timeout) with err. */
int clamd_ping(const struct clamd_cfg *cfg, char *err, size_t errlen);
/* clamd's version line ("ClamAV 1.4.6/..."); 0 or a negative error. */
int clamd_version(const struct clamd_cfg *cfg, char *out, size_t outlen);

#endif
