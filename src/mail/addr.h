/*
 * addr: RFC 5322 address lists (From, To, Cc, Reply-To, Sender) as the BEC
 * and DMARC checks need them: every mailbox with its decoded display name
 * and its address, groups flattened (each mailbox keeps its group's name),
 * comments dropped (an old "addr (Name)" comment serves as the name when
 * there is no other).
 *
 * Why tolerant: a phishing From is often malformed on purpose; the parser
 * keeps every mailbox it can find and counts what it had to repair, so the
 * caller sees "two addresses" or "no '@'" instead of a silent guess.
 *
 * Strings live in the caller's arena.
 */
#ifndef MAMORI_MAIL_ADDR_H
#define MAMORI_MAIL_ADDR_H

#include <stddef.h>

#include "core/arena.h"

#define ADDR_MAX 256        /* mailboxes kept per list */
#define ADDR_MAX_LEN 512    /* bytes of one address */

struct addr {
	const char *display; /* UTF-8, RFC 2047 decoded, unquoted; "" if none */
	const char *addr;    /* local@domain, CFWS removed; "" when empty */
	const char *domain;  /* points after the last '@' in addr; "" if none */
	const char *group;   /* the group's name, or NULL */
	int valid;           /* an '@' with a non-empty local part and domain */
};

struct addr_list {
	size_t n;
	struct addr *v;
	int errors;          /* repairs: unbalanced quotes, <, (, bad mailbox */
	int limited;         /* more than ADDR_MAX mailboxes */
};

/* Parses an unfolded header value s[0..n) into out (all strings in a).
 * Returns 0, or M_ENOMEM. Malformed input is not a failure. */
int addr_parse_list(struct arena *a, const char *s, size_t n,
		    struct addr_list *out);

#endif
