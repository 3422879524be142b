/*
 * msg: one e-mail message as the mail engines see it.
 *
 * Why this shape: DKIM and ARC hash header fields byte for byte (simple
 * canonicalization), so a header field is kept raw, exactly as it arrived,
 * folding included, with CRLF line ends. The body is the bytes after the
 * empty line, CRLF line ends. The milter builds a message from the header
 * fields and body chunks the MTA passes; the harness, the quarantine and the
 * tests build one from a whole RFC 5322 text with msg_parse. Either way the
 * engines read the same structure.
 *
 * Ownership: a message owns its copies (one arena-like block per field and
 * one growable body); msg_free releases everything.
 */
#ifndef MAMORI_MAIL_MSG_H
#define MAMORI_MAIL_MSG_H

#include <stddef.h>

/* Bounds on hostile input: a message over these is refused by msg_parse and
 * msg_add_header / msg_add_body with MSG_E_LIMIT. */
#define MSG_MAX_HEADERS 1000
#define MSG_MAX_HEADER_BYTES (256 * 1024)  /* all header fields together */
#define MSG_MAX_BODY_BYTES (64u * 1024 * 1024)

enum msg_err {
	MSG_OK = 0,
	MSG_E_NOMEM = -1,
	MSG_E_LIMIT = -2,
	MSG_E_SYNTAX = -3, /* a header line without a colon, an empty name */
};

struct msg_hdr {
	/* The whole field, "Name: value\r\n" with any folded lines, CRLF ends
	 * (the last CRLF included). */
	char *raw;
	size_t len;
	/* The name is raw[0 .. name_len); the value starts after the colon at
	 * raw[name_len + 1] and runs to len - 2 (without the final CRLF). */
	size_t name_len;
};

struct msg {
	struct msg_hdr *hdr;
	size_t nhdr, hdr_cap;
	size_t hdr_bytes;
	char *body;
	size_t body_len, body_cap;
};

struct msg *msg_new(void);
void msg_free(struct msg *m);

/* Parse a whole message (LF or CRLF line ends; bare LF becomes CRLF). A text
 * without an empty line is all header. On error *err_line (when non-NULL) is
 * the 1-based line of the fault. Returns NULL on failure with *err set. */
struct msg *msg_parse(const char *text, size_t len, int *err, size_t *err_line);

/* Append a header field as the milter hands it: name and value apart, value
 * as the MTA sent it (continuation lines with LF or CRLF; the leading space
 * after the colon included when present). Builds "name:value\r\n". */
int msg_add_header(struct msg *m, const char *name, const char *value);
/* Prepend a header field (a trace header we add goes on top). */
int msg_prepend_header(struct msg *m, const char *name, const char *value);
/* Remove header i (0 = top). */
void msg_remove_header(struct msg *m, size_t i);
/* Append body bytes; bare LF becomes CRLF (a CR at a chunk's end is held
 * correctly across chunks). */
int msg_add_body(struct msg *m, const char *data, size_t len);

/* 1 when header i is named name (case-insensitive). */
int msg_hdr_is(const struct msg *m, size_t i, const char *name);
/* The value of header i: pointer into raw after the colon, and its length
 * without the final CRLF (folding and leading space kept). */
const char *msg_hdr_value(const struct msg *m, size_t i, size_t *len);
/* Index of the first (from the top) header named name at or after start,
 * or -1. */
long msg_find(const struct msg *m, const char *name, size_t start);
/* Count of headers named name. */
size_t msg_count(const struct msg *m, const char *name);
/* The value of header i unfolded (CRLF before whitespace removed) and with
 * leading and trailing whitespace trimmed, as a new NUL-terminated string
 * (caller frees). NULL on no memory. */
char *msg_hdr_unfolded(const struct msg *m, size_t i);

/* Serialise to a whole RFC 5322 text with CRLF ends (caller frees). */
char *msg_render(const struct msg *m, size_t *len);

#endif
