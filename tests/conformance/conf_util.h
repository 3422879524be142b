/*
 * conf_util: what every mail conformance harness shares: where the public
 * suites live, reading a file whole, and the "N passed, N failed" tally.
 *
 * The suites are in $MAMORI_CONFORMANCE_DIR (default: ../shared beside the
 * source tree, from MAMORI_SOURCE_DIR or the working directory). When they
 * are absent a harness says so loudly and fails: it never passes on nothing.
 */
#ifndef MAMORI_CONF_UTIL_H
#define MAMORI_CONF_UTIL_H

#include <stddef.h>

struct conf_tally {
	const char *suite;
	unsigned passed, failed, skipped;
};

/* The path of rel inside the conformance directory, in a static buffer
 * (valid until the next call). Exits 1 with a loud message when the
 * directory does not exist. */
const char *conf_path(const char *rel);
/* The whole file, NUL-terminated (caller frees); NULL when unreadable. */
char *conf_read(const char *path, size_t *len);
/* Count one case; on failure print "FAIL suite id: why". */
void conf_result(struct conf_tally *t, const char *id, int ok, const char *why);
/* Print "suite: N passed, N failed[, N skipped]". */
void conf_report(const struct conf_tally *t);

struct mdns;
struct msg;
/* A mail-auth resources file (lines "<fqdn> <TXT value>", an empty line,
 * then the message): the records go into zone z, the message is returned
 * (NULL when it does not parse; msg_free it). */
struct msg *conf_mailauth_msg(const char *txt, size_t len, struct mdns *z);

#endif
