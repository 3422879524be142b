/*
 * mime: a message walked into a flat list of MIME parts, for the attachment
 * policy, the malware and YARA scanners, the URL extractor and the BEC
 * checks.
 *
 * Why a flat list: every consumer wants "each leaf with its decoded bytes";
 * the tree is kept as depth + parent index so a consumer that cares
 * (multipart/alternative, a forwarded message/rfc822) can still see it.
 *
 * Ownership: mime_parse returns one object that owns everything it holds
 * (one arena); mime_free releases it in one call. Decoded bytes of a part
 * sent without a transfer encoding point into the message's body: the
 * struct msg must outlive the struct mime_msg.
 *
 * Bounds: depth, part count and the total of decoded bytes are capped by
 * struct mime_limits; what goes past a cap is not decoded, the part is
 * marked truncated and the message counts an error. A parser never aborts:
 * malformed structure (a missing closing boundary, bad base64) is decoded as
 * well as it can be and counted in errors, the first one named in err.
 */
#ifndef MAMORI_MAIL_MIME_H
#define MAMORI_MAIL_MIME_H

#include <stddef.h>

#include "core/arena.h"
#include "mail/addr.h"
#include "mail/msg.h"

#define MIME_DEFAULT_MAX_DEPTH 20
#define MIME_DEFAULT_MAX_PARTS 1000
#define MIME_DEFAULT_MAX_DECODED (64u * 1024 * 1024)

enum mime_cte {
	MIME_CTE_IDENTITY = 0, /* 7bit, 8bit, binary, absent */
	MIME_CTE_BASE64,
	MIME_CTE_QP,
	MIME_CTE_UNKNOWN,      /* x-uuencode and others: kept as sent */
};

struct mime_part {
	int depth;          /* 0 = the message itself */
	int parent;         /* index in mime_msg.parts, -1 for the top */
	char ctype[128];    /* lower case "type/subtype" */
	char charset[40];   /* lower case; "" when none given */
	char boundary[256]; /* multipart only (RFC 2046 allows 70; senders
			     * use more) */
	char disposition[16]; /* lower case "inline", "attachment" or "" */
	char filename[256]; /* UTF-8; RFC 2231 / 2047 decoded; "" when none */
	enum mime_cte cte;
	/* The raw Content-Type and Content-Disposition values (folding
	 * kept, cut at 16 KiB; NULL when absent), for any other parameter
	 * through mime_param(). They point into the message or the result. */
	const char *ctype_raw, *cdisp_raw;
	size_t ctype_raw_len, cdisp_raw_len;
	int is_multipart;   /* a container: data is NULL */
	int is_message;     /* message/rfc822: its parts follow it */
	int is_attachment;  /* disposition attachment, or a file name given */
	int is_body_text;   /* text/plain shown as the body */
	int is_body_html;   /* text/html shown as the body */
	const unsigned char *data; /* decoded bytes (leaves only) */
	size_t len;
	size_t raw_len;     /* bytes as sent, before decoding */
	char sha256[65], sha1[41], md5[33]; /* of the decoded bytes; "" if none */
	int truncated;      /* a limit cut the decoded bytes short */
};

struct mime_limits {
	unsigned max_depth;  /* nested multipart / message levels */
	unsigned max_parts;  /* parts of every kind */
	size_t max_decoded;  /* decoded bytes of all parts together */
	int no_hashes;       /* 1: skip SHA-256/SHA-1/MD5 */
};

struct mime_msg {
	size_t nparts;
	struct mime_part *parts;
	int errors;          /* structure faults seen; 0 for a clean message */
	char err[160];       /* the first one */
	int limited;         /* a limit was reached (depth, parts, bytes) */

	/* Decoded top-level header fields (UTF-8, NUL-terminated, never NULL;
	 * "" when absent). */
	char *subject;
	size_t nsubject;     /* Subject header fields seen */
	struct addr_list from, to, cc, reply_to, sender;
	size_t nfrom;        /* From header fields seen (1 is the only good
			      * count); from.n is the mailboxes in them all */

	struct arena arena;  /* everything above lives here */
};

/* Fills lim with the defaults above. */
void mime_limits_default(struct mime_limits *lim);

/* Walks m into *out (a new object the caller frees with mime_free). lim may
 * be NULL for the defaults. Returns 0, or M_ENOMEM / M_EINVAL; malformed
 * MIME is not a failure (see errors). */
int mime_parse(const struct msg *m, const struct mime_limits *lim,
	       struct mime_msg **out);
void mime_free(struct mime_msg *mm);

/* ---- decoders (mime_decode.c), usable on their own ---- */

/* Base64, skipping every byte outside the alphabet (line breaks, junk,
 * padding). Writes at most cap bytes; returns the bytes written and sets
 * *trunc to 1 when input was left over. *bad counts skipped junk bytes
 * other than whitespace and '='. */
size_t mime_b64_decode(const char *in, size_t n, unsigned char *out,
		       size_t cap, int *trunc, size_t *bad);
/* Quoted-printable (RFC 2045 §6.7): =XX, soft line breaks, a lone '=' kept
 * as it is. Same contract as above. */
size_t mime_qp_decode(const char *in, size_t n, unsigned char *out,
		      size_t cap, int *trunc, size_t *bad);

/* Converts n bytes in charset cs to UTF-8 (a new NUL-terminated string in
 * a; invalid sequences become U+FFFD). NULL on no memory. An unknown
 * charset copies bytes, replacing non-ASCII. */
char *mime_to_utf8(struct arena *a, const char *cs, const char *p, size_t n,
		   size_t *outlen);
/* A header text with RFC 2047 encoded words decoded, UTF-8, in a.
 * Whitespace between adjacent encoded words is dropped; a malformed word is
 * kept as written. */
char *mime_decode_words(struct arena *a, const char *p, size_t n);

/* One parameter of a structured header value (Content-Type,
 * Content-Disposition), with RFC 2231 continuations and charsets joined and
 * decoded and RFC 2047 words in it decoded: a new string in a, or NULL when
 * absent. */
char *mime_param(struct arena *a, const char *val, size_t n, const char *name);

#endif
