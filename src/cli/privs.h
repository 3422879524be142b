/*
 * Dropping root: when started as root with `user` set, mamori hands its
 * data directory to that user and runs as it before it reads any input,
 * keeping only the capability to bind ports below 1024 when the
 * configuration asks for one (syslog 514, syslog-TLS 6514).
 */
#ifndef MAMORI_PRIVS_H
#define MAMORI_PRIVS_H

struct settings;

/* 0 when done or nothing to do; M_EINVAL for an unknown user (a
 * configuration error), M_EIO when a step failed (logged). */
int privs_drop(const struct settings *s);

#endif
